//! Identity and status: self id, controllers, canister status and version, subnet.

use super::*;

pub(super) fn link(l: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    // ---- identity and status
    l.func_wrap(
        "ic0",
        "canister_self_size",
        |c: Caller<'_, Ctx>| -> R<u32> {
            Ok(c.data()
                .msg
                .canister_id
                .map(|p| p.as_slice().len())
                .unwrap_or(0) as u32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "canister_self_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let b = c
                .data()
                .msg
                .canister_id
                .map(|p| p.as_slice().to_vec())
                .unwrap_or_default();
            copy_out(&mut c, &b, dst, off, size)
        },
    )?;
    l.func_wrap("ic0", "subnet_self_size", |_c: Caller<'_, Ctx>| -> R<u32> {
        Ok(crate::SUBNET_ID.as_slice().len() as u32)
    })?;
    l.func_wrap(
        "ic0",
        "subnet_self_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            copy_out(&mut c, crate::SUBNET_ID.as_slice(), dst, off, size)
        },
    )?;
    l.func_wrap("ic0", "canister_status", |c: Caller<'_, Ctx>| -> R<u32> {
        Ok(c.data().msg.status)
    })?;
    l.func_wrap("ic0", "canister_version", |c: Caller<'_, Ctx>| -> R<u64> {
        Ok(c.data().msg.canister_version)
    })?;
    l.func_wrap(
        "ic0",
        "is_controller",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<u32> {
            let b = read_mem(&mut c, src, size)?;
            let p = match Principal::try_from_slice(&b) {
                Ok(p) => p,
                Err(_) => return Err(violation(&mut c, "is_controller: invalid principal")),
            };
            Ok(c.data().msg.controllers.contains(&p) as u32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "in_replicated_execution",
        // Spec, "Replicated execution check": 1 when the canister runs in replicated mode,
        // which includes a query method executed as an update.
        |c: Caller<'_, Ctx>| -> R<u32> { Ok(c.data().msg.replicated as u32) },
    )?;
    l.func_wrap("ic0", "root_key_size", |_c: Caller<'_, Ctx>| -> R<u32> {
        Ok(0)
    })?;
    l.func_wrap(
        "ic0",
        "root_key_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            copy_out(&mut c, &[], dst, off, size)
        },
    )?;
    Ok(())
}
