//! Cycles: balance, accepting, attaching to calls, burning.

use super::*;

pub(super) fn link(l: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    // ---- cycles
    l.func_wrap(
        "ic0",
        "msg_cycles_available128",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = c.data().msg.cycles_available;
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_cycles_refunded128",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = c.data().msg.cycles_refunded;
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_cycles_accept128",
        |mut c: Caller<'_, Ctx>, high: u64, low: u64, dst: u32| -> R<()> {
            let want = u128_of(high, low);
            let m = &mut c.data_mut().msg;
            let got = want.min(m.cycles_available);
            m.cycles_available -= got;
            m.cycles_accepted += got;
            m.balance += got;
            write_u128(&mut c, dst, got)
        },
    )?;
    l.func_wrap(
        "ic0",
        "cycles_burn128",
        |mut c: Caller<'_, Ctx>, high: u64, low: u64, dst: u32| -> R<()> {
            let want = u128_of(high, low);
            let burn = want.min(liquid(&c));
            let m = &mut c.data_mut().msg;
            m.balance -= burn;
            m.cycles_burnt += burn;
            write_u128(&mut c, dst, burn)
        },
    )?;
    l.func_wrap(
        "ic0",
        "canister_cycle_balance128",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = c.data().msg.balance;
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "canister_liquid_cycle_balance128",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = liquid(&c);
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "cost_call",
        |mut c: Caller<'_, Ctx>, name_size: u64, arg_size: u64, dst: u32| -> R<()> {
            let lim = &c.data().msg.limits;
            let v = lim.call_fee + lim.call_fee_per_byte * (name_size as u128 + arg_size as u128);
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "cost_create_canister",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = c.data().msg.limits.create_fee;
            write_u128(&mut c, dst, v)
        },
    )?;
    Ok(())
}
