//! Cycles the driver deposits into personal canisters: the storage funding after install and
//! admins' sponsored top-ups (journaled in the registry before each call).

use super::*;

/// Measures the installed canister (`canister_status`: the backend is still a controller)
/// and deposits the storage funding for its footprint (see [`crate::factory::quote`]). The deposit is
/// taken from the reserve and journaled in the record before the call; a rejected call gives
/// it back.
pub(super) async fn fund(id: u64, canister_id: Principal) -> Result<(), StepFailure> {
    let status = canister_status(&CanisterStatusArgs { canister_id })
        .await
        .map_err(|e| StepFailure::Call("canister_status", call_error(e)))?;
    let memory: u64 = status.memory_size.0.try_into().unwrap_or(u64::MAX);
    let cycles = crate::factory::with(|f| {
        f.begin_funding(
            id,
            memory,
            now(),
            ic_cdk::api::canister_liquid_cycle_balance(),
        )
    })
    .map_err(StepFailure::Fatal)?;
    if cycles == 0 {
        return Ok(());
    }
    let deposited = deposit_cycles(&DepositCyclesArgs { canister_id }, cycles).await;
    if let Err(e) = deposited {
        crate::factory::with(|f| f.funding_rejected(id, cycles));
        return Err(StepFailure::Call("deposit_cycles", call_error(e)));
    }
    Ok(())
}

/// An admin's sponsored top-up: `cycles` from the reserve into the completed creation's
/// canister (bounded per user), journaled before the call and given back if it is rejected.
pub async fn sponsor(id: u64, cycles: u128) -> Result<(), FactoryError> {
    let canister_id = crate::factory::with(|f| {
        f.begin_sponsor(
            id,
            cycles,
            now(),
            ic_cdk::api::canister_liquid_cycle_balance(),
        )
    })?;
    let deposited = deposit_cycles(&DepositCyclesArgs { canister_id }, cycles).await;
    if let Err(e) = deposited {
        crate::factory::with(|f| f.sponsor_rejected(id, cycles));
        return Err(FactoryError::DepositFailed {
            canister_id,
            message: e.to_string(),
        });
    }
    Ok(())
}
