//! Stable memory (64-bit and legacy 32-bit).

use super::*;

pub(super) fn link(l: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    // ---- stable memory (64-bit and legacy 32-bit)
    fn stable_read(c: &mut Caller<'_, Ctx>, dst: u64, off: u64, size: u64) -> R<()> {
        charge(c, 20 + size)?;
        let mut buf = vec![0u8; size as usize];
        if !c.data().msg.stable.read(off, &mut buf) {
            return Err(trap(
                c,
                TrapKind::Wasm("stable memory out of bounds".into()),
            ));
        }
        write_mem(c, dst as u32, &buf)
    }
    fn stable_write(c: &mut Caller<'_, Ctx>, off: u64, src: u64, size: u64) -> R<()> {
        charge(c, 20 + size)?;
        let bytes = read_mem(c, src as u32, size as u32)?;
        match c.data_mut().msg.stable.write(off, &bytes) {
            Some(newly) => {
                c.data_mut().msg.stable_dirty_pages += newly;
                charge(c, 1000 * newly)
            }
            None => Err(trap(
                c,
                TrapKind::Wasm("stable memory out of bounds".into()),
            )),
        }
    }
    fn stable_grow(c: &mut Caller<'_, Ctx>, n: u64) -> i64 {
        let max = c.data().msg.limits.max_stable_pages;
        c.data_mut()
            .msg
            .stable
            .grow(n, max)
            .map(|o| o as i64)
            .unwrap_or(-1)
    }
    l.func_wrap("ic0", "stable64_size", |c: Caller<'_, Ctx>| -> R<u64> {
        Ok(c.data().msg.stable.size())
    })?;
    l.func_wrap(
        "ic0",
        "stable64_grow",
        |mut c: Caller<'_, Ctx>, n: u64| -> R<u64> {
            charge(&mut c, 300)?;
            Ok(stable_grow(&mut c, n) as u64)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable64_read",
        |mut c: Caller<'_, Ctx>, dst: u64, off: u64, size: u64| -> R<()> {
            stable_read(&mut c, dst, off, size)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable64_write",
        |mut c: Caller<'_, Ctx>, off: u64, src: u64, size: u64| -> R<()> {
            stable_write(&mut c, off, src, size)
        },
    )?;
    l.func_wrap("ic0", "stable_size", |mut c: Caller<'_, Ctx>| -> R<u32> {
        let s = c.data().msg.stable.size();
        if s > u32::MAX as u64 / 65536 {
            return Err(violation(
                &mut c,
                "stable_size: memory too large for 32-bit API",
            ));
        }
        Ok(s as u32)
    })?;
    l.func_wrap(
        "ic0",
        "stable_grow",
        |mut c: Caller<'_, Ctx>, n: u32| -> R<i32> {
            let cur = c.data().msg.stable.size();
            if cur + n as u64 > 65536 {
                return Ok(-1);
            }
            Ok(stable_grow(&mut c, n as u64) as i32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable_read",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            stable_read(&mut c, dst as u64, off as u64, size as u64)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable_write",
        |mut c: Caller<'_, Ctx>, off: u32, src: u32, size: u32| -> R<()> {
            stable_write(&mut c, off as u64, src as u64, size as u64)
        },
    )?;
    Ok(())
}
