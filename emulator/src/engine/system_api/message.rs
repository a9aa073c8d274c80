//! The message: its argument, caller and method name, and replies.

use super::*;

pub(super) fn link(l: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    // ---- message argument and caller
    l.func_wrap(
        "ic0",
        "msg_arg_data_size",
        |mut c: Caller<'_, Ctx>| -> R<u32> {
            if !api(&c).has_arg() {
                return Err(violation(&mut c, "msg_arg_data_size: no argument here"));
            }
            Ok(c.data().msg.arg.len() as u32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_arg_data_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            if !api(&c).has_arg() {
                return Err(violation(&mut c, "msg_arg_data_copy: no argument here"));
            }
            let arg = std::mem::take(&mut c.data_mut().msg.arg);
            let r = copy_out(&mut c, &arg, dst, off, size);
            c.data_mut().msg.arg = arg;
            r
        },
    )?;
    l.func_wrap("ic0", "msg_caller_size", |c: Caller<'_, Ctx>| -> R<u32> {
        Ok(c.data().msg.caller.map(|p| p.as_slice().len()).unwrap_or(0) as u32)
    })?;
    l.func_wrap(
        "ic0",
        "msg_caller_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let bytes = c
                .data()
                .msg
                .caller
                .map(|p| p.as_slice().to_vec())
                .unwrap_or_default();
            copy_out(&mut c, &bytes, dst, off, size)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_reject_code",
        |mut c: Caller<'_, Ctx>| -> R<u32> {
            match api(&c) {
                ApiType::ReplyCallback => Ok(0),
                ApiType::RejectCallback => {
                    Ok(c.data().msg.reject.as_ref().map(|r| r.0).unwrap_or(0))
                }
                _ => Err(violation(&mut c, "msg_reject_code outside a callback")),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_reject_msg_size",
        |mut c: Caller<'_, Ctx>| -> R<u32> {
            match &c.data().msg.reject {
                Some((_, m)) if api(&c) == ApiType::RejectCallback => Ok(m.len() as u32),
                _ => Err(violation(
                    &mut c,
                    "msg_reject_msg_size outside a reject callback",
                )),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_reject_msg_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let m = match &c.data().msg.reject {
                Some((_, m)) if api(&c) == ApiType::RejectCallback => m.clone().into_bytes(),
                _ => {
                    return Err(violation(
                        &mut c,
                        "msg_reject_msg_copy outside a reject callback",
                    ));
                }
            };
            copy_out(&mut c, &m, dst, off, size)
        },
    )?;
    l.func_wrap("ic0", "msg_deadline", |c: Caller<'_, Ctx>| -> R<u64> {
        Ok(c.data().msg.deadline)
    })?;
    l.func_wrap(
        "ic0",
        "msg_method_name_size",
        |c: Caller<'_, Ctx>| -> R<u32> { Ok(c.data().msg.method_name.len() as u32) },
    )?;
    l.func_wrap(
        "ic0",
        "msg_method_name_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let m = c.data().msg.method_name.clone().into_bytes();
            copy_out(&mut c, &m, dst, off, size)
        },
    )?;
    l.func_wrap("ic0", "accept_message", |mut c: Caller<'_, Ctx>| -> R<()> {
        c.data_mut().msg.accepted_message = true;
        Ok(())
    })?;

    l.func_wrap(
        "ic0",
        "msg_caller_info_data_size",
        |_c: Caller<'_, Ctx>| -> R<u32> { Ok(0) },
    )?;
    l.func_wrap(
        "ic0",
        "msg_caller_info_data_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            copy_out(&mut c, &[], dst, off, size)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_caller_info_signer_size",
        |_c: Caller<'_, Ctx>| -> R<u32> { Ok(0) },
    )?;
    l.func_wrap(
        "ic0",
        "msg_caller_info_signer_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            copy_out(&mut c, &[], dst, off, size)
        },
    )?;
    l.func_wrap(
        "ic0",
        "subnet_self_node_count",
        |_c: Caller<'_, Ctx>| -> R<u32> { Ok(13) },
    )?;
    // Prices of features the emulator does not model (HTTPS outcalls, threshold keys): the
    // 13-node list prices, so canisters that only ask the price still run.
    l.func_wrap(
        "ic0",
        "cost_http_request",
        |mut c: Caller<'_, Ctx>, req: u64, max_res: u64, dst: u32| -> R<()> {
            let v = 49_140_000u128 + 5_200 * req as u128 + 10_400 * max_res as u128;
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "cost_http_request_v2",
        |mut c: Caller<'_, Ctx>, _src: u32, _size: u32, dst: u32| -> R<()> {
            write_u128(&mut c, dst, 49_140_000u128 + 10_400 * 2_000_000)
        },
    )?;
    for name in [
        "cost_sign_with_ecdsa",
        "cost_sign_with_schnorr",
        "cost_vetkd_derive_key",
    ] {
        l.func_wrap(
            "ic0",
            name,
            |mut c: Caller<'_, Ctx>, _src: u32, _size: u32, _alg: u32, dst: u32| -> R<u32> {
                write_u128(&mut c, dst, 26_153_846_153)?;
                Ok(0)
            },
        )?;
    }

    // ---- replies
    l.func_wrap("ic0", "msg_reply_data_append", |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
        if !api(&c).can_reply() || c.data().msg.already_responded || c.data().msg.response.is_some() {
            return Err(violation(&mut c, "msg_reply_data_append: cannot reply here or already replied"));
        }
        charge(&mut c, 50 * size as u64)?;
        let bytes = read_mem(&mut c, src, size)?;
        let max = c.data().msg.limits.max_reply_bytes;
        let total = c.data().msg.reply_buf.len() + bytes.len();
        if total > max {
            return Err(violation(
                &mut c,
                format!("msg_reply_data_append: application payload size ({total}) cannot be larger than {max}"),
            ));
        }
        c.data_mut().msg.reply_buf.extend_from_slice(&bytes);
        Ok(())
    })?;
    l.func_wrap("ic0", "msg_reply", |mut c: Caller<'_, Ctx>| -> R<()> {
        if !api(&c).can_reply() || c.data().msg.already_responded || c.data().msg.response.is_some()
        {
            return Err(violation(
                &mut c,
                "msg_reply: cannot reply here or already replied",
            ));
        }
        let buf = std::mem::take(&mut c.data_mut().msg.reply_buf);
        c.data_mut().msg.response = Some(Response::Reply(buf));
        Ok(())
    })?;
    l.func_wrap(
        "ic0",
        "msg_reject",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            if !api(&c).can_reply()
                || c.data().msg.already_responded
                || c.data().msg.response.is_some()
            {
                return Err(violation(
                    &mut c,
                    "msg_reject: cannot reply here or already replied",
                ));
            }
            let bytes = read_mem(&mut c, src, size)?;
            c.data_mut().msg.response =
                Some(Response::Reject(String::from_utf8_lossy(&bytes).into()));
            Ok(())
        },
    )?;
    Ok(())
}
