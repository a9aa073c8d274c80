//! `icemu fault ...`: fault injection kept in the state.

use super::*;

pub(crate) fn reject_code(code: u8) -> Result<RejectCode> {
    Ok(match code {
        1 => RejectCode::SysFatal,
        2 => RejectCode::SysTransient,
        3 => RejectCode::DestinationInvalid,
        4 => RejectCode::CanisterReject,
        5 => RejectCode::CanisterError,
        6 => RejectCode::SysUnknown,
        c => bail!("reject code {c} is not 1..6"),
    })
}

/// Resolves a canister for faults (`aaaaa-aa` allowed).
pub(crate) fn fault_target(st: &StateDir, c: &str) -> Result<Principal> {
    if c == "aaaaa-aa" || c == "management" || c == "ic" {
        return Ok(Principal::management_canister());
    }
    st.canister(c)
}

/// Calls a management method on `id` as its first controller.
pub(crate) fn as_controller(st: &mut StateDir, id: Principal, method: &str) -> Result<()> {
    let s = st
        .emu
        .canister_status(id)
        .ok_or_else(|| anyhow!("canister {id} does not exist"))?;
    let ctrl = *s
        .settings
        .controllers
        .first()
        .ok_or_else(|| anyhow!("canister {id} has no controller"))?;
    let () = st
        .emu
        .management(ctrl, method, &mgmt::CanisterIdRecord { canister_id: id })
        .map_err(Rejected)?;
    Ok(())
}

pub(crate) fn fault(st: &mut StateDir, f: FaultCmd, io: &mut Io) -> Result<()> {
    match f {
        FaultCmd::Reject {
            canister,
            method,
            code,
            count,
            message,
        } => {
            let id = fault_target(st, &canister)?;
            st.emu
                .reject_next(id, method.as_deref(), count, reject_code(code)?, &message);
        }
        FaultCmd::Trap { canister, method } => {
            let id = st.canister(&canister)?;
            st.emu.trap_method(id, &method);
        }
        FaultCmd::Delay { canister, rounds } => {
            let id = fault_target(st, &canister)?;
            st.emu.delay_delivery(id, rounds);
        }
        FaultCmd::Pause { canister } => {
            let id = fault_target(st, &canister)?;
            st.emu.pause(id);
        }
        FaultCmd::Resume { canister } => {
            let id = fault_target(st, &canister)?;
            st.emu.resume(id);
        }
        FaultCmd::Stop { canister } => {
            let id = st.canister(&canister)?;
            as_controller(st, id, "stop_canister")?;
        }
        FaultCmd::Start { canister } => {
            let id = st.canister(&canister)?;
            as_controller(st, id, "start_canister")?;
        }
        FaultCmd::Delete { canister } => {
            let id = st.canister(&canister)?;
            let stopped = st
                .emu
                .canister_status(id)
                .is_some_and(|s| s.status == mgmt::CanisterStatusType::Stopped);
            if !stopped {
                as_controller(st, id, "stop_canister")?;
            }
            as_controller(st, id, "delete_canister")?;
            st.names.canisters.retain(|_, n| n.id != id);
        }
        FaultCmd::SetCycles { canister, cycles } => {
            let id = st.canister(&canister)?;
            st.emu.set_cycles(id, parse_u128(&cycles)?);
        }
        FaultCmd::DrainCycles { canister } => {
            let id = st.canister(&canister)?;
            st.emu.drain_cycles(id);
        }
        FaultCmd::FailCreateCanister { n } => st.emu.fail_next_create_canister(n),
        FaultCmd::FailInstallCode { n } => st.emu.fail_next_install_code(n),
        FaultCmd::Limits(l) => {
            let d = emulator::Config::default();
            st.emu.update_config(|c| {
                // Each limit: back to the default with --reset, then the value given, if any.
                macro_rules! set {
                    ($f:ident, $g:ident) => {
                        if l.reset {
                            c.$g = d.$g;
                        }
                        if let Some(v) = l.$f {
                            c.$g = v;
                        }
                    };
                }
                set!(max_ingress_bytes, max_ingress_bytes);
                set!(max_call_bytes, max_call_bytes);
                set!(max_reply_bytes, max_reply_bytes);
                set!(update_instructions, update_instruction_limit);
                set!(query_instructions, query_instruction_limit);
                set!(install_instructions, install_instruction_limit);
                set!(heap_delta_per_round, heap_delta_per_round);
                set!(round_instructions, round_instructions_per_canister);
                set!(max_stable_bytes, max_stable_bytes);
            });
            let c = st.emu.config();
            outln!(
                io,
                "ingress {} B, call {} B, reply {} B, update {} / query {} / install {} instructions, heap delta {} B/round, {} instructions/round, stable {} B",
                c.max_ingress_bytes,
                c.max_call_bytes,
                c.max_reply_bytes,
                c.update_instruction_limit,
                c.query_instruction_limit,
                c.install_instruction_limit,
                c.heap_delta_per_round,
                c.round_instructions_per_canister,
                c.max_stable_bytes
            );
        }
        FaultCmd::Clear => st.emu.clear_faults(),
        FaultCmd::List => {
            let f = st.emu.faults();
            outln!(io, "{}", serde_json::to_string_pretty(&f)?);
        }
    }
    Ok(())
}
