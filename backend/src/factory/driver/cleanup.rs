//! The admin's cleanup of a creation's canister: its calls, each journaled in the record's
//! `cleanup` before the next (see the protocol table in the driver's module doc).

use super::*;

/// Cleans up a creation's canister (any state but `Completed`; a running creation is failed
/// first): removes the owner from its controllers, reinstalls the backend's own personal module
/// (so the code that returns the cycles is ours, whatever the owner installed), has it send its
/// cycles to `deposit_returned_cycles` (credited as accepted there), stops and deletes it. Each
/// call's result is journaled in the record's `cleanup` before the next. A canister already
/// gone, or no longer controlled by the backend, ends the cleanup with nothing to return.
/// Returns the cycles credited by this cleanup.
pub async fn cleanup(id: u64) -> Result<u128, FactoryError> {
    let canister_id =
        state::write(|caps| crate::factory::with(|f| f.begin_cleanup(id, caps, now())))?;
    let started_at = crate::factory::with(|f| f.record(id))
        .and_then(|r| r.cleanup)
        .map_or(0, |c| c.started_at);
    let Some(canister_id) = canister_id else {
        return Ok(crate::factory::with(|f| f.cleanup_done(id)));
    };
    let outcome = cleanup_steps(id, started_at, canister_id).await;
    if !crate::factory::with(|f| f.cleanup_is_current(id, started_at)) {
        return Err(superseded());
    }
    match outcome {
        Ok(()) => Ok(crate::factory::with(|f| f.cleanup_done(id))),
        Err(reason) => Err(crate::factory::with(|f| f.cleanup_failed(id, reason))),
    }
}

fn superseded() -> FactoryError {
    FactoryError::CleanupFailed {
        reason: "superseded: the creation was retried or cleaned up again meanwhile".into(),
    }
}

/// The cleanup's calls. After every await it journals the step, or stops when the cleanup is
/// no longer current (a retry after it went stale took the creation over).
async fn cleanup_steps(id: u64, started_at: u64, canister_id: Principal) -> Result<(), String> {
    let me = ic_cdk::api::canister_self();
    let current = || -> Result<(), String> {
        if crate::factory::with(|f| f.cleanup_is_current(id, started_at)) {
            Ok(())
        } else {
            Err(superseded().to_string())
        }
    };
    let journal = |step: CleanupStep| -> Result<(), String> {
        current()?;
        crate::factory::with(|f| f.cleanup_step(id, step));
        Ok(())
    };
    let info = canister_info(&CanisterInfoArgs {
        canister_id,
        num_requested_changes: None,
    })
    .await;
    let info = match info {
        Ok(info) => info,
        // Deleted already (by the owner, who is a controller until the handoff).
        Err(e) if is_gone(&e) => return Ok(()),
        Err(e) => return Err(format!("canister_info: {e}")),
    };
    journal(CleanupStep::Started)?;
    if !info.controllers.contains(&me) {
        return Ok(()); // The owner took it over: it is theirs, with its cycles.
    }
    let owner_removed = update_settings(&UpdateSettingsArgs {
        canister_id,
        settings: CanisterSettings {
            controllers: Some(vec![me]),
            ..Default::default()
        },
    })
    .await;
    match owner_removed {
        Ok(()) => journal(CleanupStep::OwnerRemoved)?,
        Err(e) if is_gone(&e) => return Ok(()),
        Err(e) => return Err(format!("update_settings: {e}")),
    }
    let owner = crate::factory::with(|f| f.record(id)).map_or(me, |r| r.owner);
    let arg = Encode!(&PersonalInitArgs {
        owner,
        backend: Some(me),
        migration: None,
    })
    .map_err(|e| e.to_string())?;
    let reinstalled = install_code(&InstallCodeArgs {
        mode: CanisterInstallMode::Reinstall,
        canister_id,
        wasm_module: PERSONAL_WASM.to_vec(),
        arg,
    })
    .await;
    // A canister too poor to be reinstalled, or holding less than it costs to send cycles
    // back, has nothing worth returning: it is deleted without asking (else a drained canister
    // could never be cleaned up).
    let worth_returning = match reinstalled {
        Ok(()) => {
            journal(CleanupStep::Reinstalled)?;
            let status = canister_status(&CanisterStatusArgs { canister_id })
                .await
                .map_err(|e| format!("canister_status: {e}"))?;
            current()?;
            status.cycles > MIN_CYCLES_WORTH_RETURNING
        }
        Err(_) => false,
    };
    if worth_returning {
        // The owner may have stopped it: a stopped canister cannot send its cycles.
        start_canister(&StartCanisterArgs { canister_id })
            .await
            .map_err(|e| format!("start_canister: {e}"))?;
        current()?;
        // What the reply says is ignored: `deposit_returned_cycles` credited what arrived. A
        // failed call stops the cleanup (the admin calls again) rather than deleting cycles.
        Call::bounded_wait(canister_id, "return_cycles")
            .with_arg(me)
            .await
            .map_err(|e| format!("return_cycles: {e}"))?;
        journal(CleanupStep::CyclesReturned)?;
    }
    stop_canister(&StopCanisterArgs { canister_id })
        .await
        .map_err(|e| format!("stop_canister: {e}"))?;
    journal(CleanupStep::Stopped)?;
    delete_canister(&DeleteCanisterArgs { canister_id })
        .await
        .map_err(|e| format!("delete_canister: {e}"))?;
    Ok(())
}

/// Below this balance a canister under cleanup is deleted without returning its cycles: the
/// personal canister keeps 5 B for itself and the calls cost about as much again.
const MIN_CYCLES_WORTH_RETURNING: u128 = 10_000_000_000;

/// A management call rejected because the canister no longer exists.
fn is_gone(e: &CallErr) -> bool {
    matches!(e, CallErr::CallRejected(r) if r.reject_code() == Ok(ic_cdk::call::RejectCode::DestinationInvalid))
}
