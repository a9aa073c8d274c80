//! Calls: `call_new` ... `call_perform`.

use super::*;

pub(super) fn link(l: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    // ---- calls
    l.func_wrap(
        "ic0",
        "call_new",
        |mut c: Caller<'_, Ctx>,
         callee_src: u32,
         callee_size: u32,
         name_src: u32,
         name_size: u32,
         reply_fun: u32,
         reply_env: u32,
         reject_fun: u32,
         reject_env: u32|
         -> R<()> {
            if !api(&c).can_call() {
                return Err(violation(&mut c, "call_new: calls are not allowed here"));
            }
            if c.data().msg.pending_call.is_some() {
                // A new call discards the one being assembled (returning its cycles).
                let old = c.data_mut().msg.pending_call.take().unwrap();
                c.data_mut().msg.balance += old.cycles;
            }
            let callee = read_mem(&mut c, callee_src, callee_size)?;
            let name = read_mem(&mut c, name_src, name_size)?;
            let callee = Principal::try_from_slice(&callee)
                .map_err(|_| violation(&mut c, "call_new: invalid callee"))?;
            c.data_mut().msg.pending_call = Some(PendingCall {
                callee,
                method: String::from_utf8_lossy(&name).into(),
                reply: (reply_fun, reply_env),
                reject: (reject_fun, reject_env),
                cleanup: None,
                payload: Vec::new(),
                cycles: 0,
                timeout_secs: None,
            });
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_on_cleanup",
        |mut c: Caller<'_, Ctx>, fun: u32, env: u32| -> R<()> {
            match c.data_mut().msg.pending_call.as_mut() {
                Some(p) if p.cleanup.is_none() => {
                    p.cleanup = Some((fun, env));
                    Ok(())
                }
                _ => Err(violation(
                    &mut c,
                    "call_on_cleanup: no call or cleanup already set",
                )),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_data_append",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            if c.data().msg.pending_call.is_none() {
                return Err(violation(&mut c, "call_data_append: no call"));
            }
            charge(&mut c, 50 * size as u64)?;
            let bytes = read_mem(&mut c, src, size)?;
            let max = c.data().msg.limits.max_call_bytes;
            let p = c.data_mut().msg.pending_call.as_mut().unwrap();
            p.payload.extend_from_slice(&bytes);
            let len = p.payload.len();
            if len > max {
                return Err(violation(
                    &mut c,
                    format!("call_data_append: payload size ({len}) cannot be larger than {max}"),
                ));
            }
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_with_best_effort_response",
        |mut c: Caller<'_, Ctx>, timeout: u32| -> R<()> {
            match c.data_mut().msg.pending_call.as_mut() {
                Some(p) if p.timeout_secs.is_none() => {
                    p.timeout_secs = Some(timeout.clamp(1, 300));
                    Ok(())
                }
                _ => Err(violation(
                    &mut c,
                    "call_with_best_effort_response: no call or already set",
                )),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_cycles_add128",
        |mut c: Caller<'_, Ctx>, high: u64, low: u64| -> R<()> {
            let amount = u128_of(high, low);
            if c.data().msg.pending_call.is_none() {
                return Err(violation(&mut c, "call_cycles_add128: no call"));
            }
            if liquid(&c) < amount {
                return Err(violation(
                    &mut c,
                    "call_cycles_add128: insufficient liquid cycles",
                ));
            }
            let m = &mut c.data_mut().msg;
            m.balance -= amount;
            m.pending_call.as_mut().unwrap().cycles += amount;
            Ok(())
        },
    )?;
    l.func_wrap("ic0", "call_perform", |mut c: Caller<'_, Ctx>| -> R<u32> {
        let Some(call) = c.data_mut().msg.pending_call.take() else {
            return Err(violation(&mut c, "call_perform: no call"));
        };
        let lim = &c.data().msg.limits;
        let fee = lim.call_fee
            + lim.call_fee_per_byte * (call.method.len() as u128 + call.payload.len() as u128);
        if liquid(&c) < fee {
            // SYS_TRANSIENT: not enough cycles; the attached cycles come back.
            c.data_mut().msg.balance += call.cycles;
            return Ok(2);
        }
        let m = &mut c.data_mut().msg;
        m.balance -= fee;
        m.calls.push(call);
        Ok(0)
    })?;
    Ok(())
}
