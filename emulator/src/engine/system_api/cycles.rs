//! Cycles: balance, accepting, attaching to calls, burning.

use super::*;

pub(super) fn link(l: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    // ---- cycles
    link_u128(l, "msg_cycles_available128", |c| {
        c.data().msg.cycles_available
    })?;
    link_u128(l, "msg_cycles_refunded128", |c| {
        c.data().msg.cycles_refunded
    })?;
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
    link_u128(l, "canister_cycle_balance128", |c| c.data().msg.balance)?;
    link_u128(l, "canister_liquid_cycle_balance128", liquid)?;
    l.func_wrap(
        "ic0",
        "cost_call",
        |mut c: Caller<'_, Ctx>, name_size: u64, arg_size: u64, dst: u32| -> R<()> {
            let lim = &c.data().msg.limits;
            let v = lim.call_fee + lim.call_fee_per_byte * (name_size as u128 + arg_size as u128);
            write_u128(&mut c, dst, v)
        },
    )?;
    link_u128(l, "cost_create_canister", |c| {
        c.data().msg.limits.create_fee
    })?;
    Ok(())
}

/// Links `ic0.<name>(dst)`, which writes the 128-bit `value` of the message's context to `dst`.
fn link_u128(
    l: &mut Linker<Ctx>,
    name: &'static str,
    value: fn(&Caller<'_, Ctx>) -> u128,
) -> wasmtime::Result<()> {
    l.func_wrap(
        "ic0",
        name,
        move |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = value(&c);
            write_u128(&mut c, dst, v)
        },
    )?;
    Ok(())
}
