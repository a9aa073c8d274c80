//! Certified data, time, timers, counters, debugging, environment variables.

use super::*;

pub(super) fn link(l: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    // ---- certification
    l.func_wrap(
        "ic0",
        "certified_data_set",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            if size > 32 {
                return Err(violation(&mut c, "certified_data_set: more than 32 bytes"));
            }
            let b = read_mem(&mut c, src, size)?;
            c.data_mut().msg.certified_data = Some(b);
            Ok(())
        },
    )?;
    // Interface specification, "Certified data": a certificate is available only in
    // non-replicated query calls; `data_certificate_size`/`_copy` trap elsewhere.
    l.func_wrap(
        "ic0",
        "data_certificate_present",
        |c: Caller<'_, Ctx>| -> R<u32> { Ok(c.data().msg.data_certificate.is_some() as u32) },
    )?;
    l.func_wrap(
        "ic0",
        "data_certificate_size",
        |mut c: Caller<'_, Ctx>| -> R<u32> {
            match &c.data().msg.data_certificate {
                Some(cert) => Ok(cert.bytes().len() as u32),
                None => Err(violation(
                    &mut c,
                    "data_certificate_size: no certificate here (only in non-replicated queries)",
                )),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "data_certificate_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let Some(cert) = c.data().msg.data_certificate.clone() else {
                return Err(violation(
                    &mut c,
                    "data_certificate_copy: no certificate here (only in non-replicated queries)",
                ));
            };
            copy_out(&mut c, cert.bytes(), dst, off, size)
        },
    )?;

    // ---- time, timers, counters
    l.func_wrap("ic0", "time", |c: Caller<'_, Ctx>| -> R<u64> {
        Ok(c.data().msg.time)
    })?;
    l.func_wrap(
        "ic0",
        "global_timer_set",
        |mut c: Caller<'_, Ctx>, ts: u64| -> R<u64> {
            let m = &mut c.data_mut().msg;
            let old = m.global_timer;
            m.global_timer = ts;
            m.global_timer_changed = true;
            Ok(old)
        },
    )?;
    l.func_wrap(
        "ic0",
        "performance_counter",
        |mut c: Caller<'_, Ctx>, kind: u32| -> R<u64> {
            let u = used(&mut c);
            match kind {
                0 => Ok(u),
                1 => Ok(u + c.data().msg.call_context_instructions),
                _ => Err(violation(
                    &mut c,
                    format!("performance_counter: unknown type {kind}"),
                )),
            }
        },
    )?;

    // ---- debugging
    l.func_wrap(
        "ic0",
        "debug_print",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            let b = read_mem(&mut c, src, size.min(64 * 1024))?;
            c.data_mut()
                .msg
                .debug_prints
                .push(String::from_utf8_lossy(&b).into());
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "trap",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            let b = read_mem(&mut c, src, size.min(64 * 1024))?;
            Err(trap(
                &mut c,
                TrapKind::Called(String::from_utf8_lossy(&b).into()),
            ))
        },
    )?;

    // ---- environment variables
    l.func_wrap("ic0", "env_var_count", |c: Caller<'_, Ctx>| -> R<u32> {
        Ok(c.data().msg.env_vars.len() as u32)
    })?;
    l.func_wrap(
        "ic0",
        "env_var_name_size",
        |mut c: Caller<'_, Ctx>, i: u32| -> R<u32> {
            match c.data().msg.env_vars.get(i as usize) {
                Some((n, _)) => Ok(n.len() as u32),
                None => Err(violation(&mut c, "env_var_name_size: index out of range")),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_name_copy",
        |mut c: Caller<'_, Ctx>, i: u32, dst: u32, off: u32, size: u32| -> R<()> {
            let n = match c.data().msg.env_vars.get(i as usize) {
                Some((n, _)) => n.clone().into_bytes(),
                None => return Err(violation(&mut c, "env_var_name_copy: index out of range")),
            };
            copy_out(&mut c, &n, dst, off, size)
        },
    )?;
    fn env_value(c: &mut Caller<'_, Ctx>, src: u32, size: u32) -> R<Option<String>> {
        let name = String::from_utf8_lossy(&read_mem(c, src, size)?).into_owned();
        Ok(c.data()
            .msg
            .env_vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone()))
    }
    l.func_wrap(
        "ic0",
        "env_var_name_exists",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<u32> {
            Ok(env_value(&mut c, src, size)?.is_some() as u32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_value_size",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<u32> {
            match env_value(&mut c, src, size)? {
                Some(v) => Ok(v.len() as u32),
                None => Err(violation(&mut c, "env_var_value_size: no such variable")),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_value_copy",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32, dst: u32, off: u32, len: u32| -> R<()> {
            match env_value(&mut c, src, size)? {
                Some(v) => copy_out(&mut c, v.as_bytes(), dst, off, len),
                None => Err(violation(&mut c, "env_var_value_copy: no such variable")),
            }
        },
    )?;
    Ok(())
}
