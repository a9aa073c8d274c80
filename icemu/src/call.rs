//! `icemu call`, and waiting for replies while `serve` runs the rounds.

use super::*;

pub(crate) fn call(st: &mut StateDir, a: CallArgs, io: &mut Io) -> Result<()> {
    let id = st.canister(&a.canister)?;
    let sender = st.identity(&a.as_);
    let iface = interface_of(st, id, a.did.as_deref())?;
    let typed = iface.as_ref().and_then(|i| i.method(&a.method));
    let arg_text = match (&a.argument, &a.arg_file) {
        (_, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (Some(t), None) => t.clone(),
        (None, None) => "()".into(),
    };
    let arg = match (&iface, &typed) {
        (Some(i), Some((args, _, _))) => i.encode(&arg_text, args)?,
        _ => text::encode_untyped(&arg_text)?,
    };
    let query = a.query || (!a.update && typed.as_ref().is_some_and(|t| t.2));
    let cycles = a.with_cycles.as_deref().map(parse_u128).transpose()?;
    let reply = if query {
        st.emu.query(id, sender, &a.method, arg)
    } else if st.served {
        // `serve`'s background rounds run the message; wait for them.
        served_update(&st.emu, id, sender, &a.method, arg, cycles.unwrap_or(0))
    } else {
        st.emu
            .update_with_cycles(id, sender, &a.method, arg, cycles.unwrap_or(0))
    }
    .map_err(Rejected)?;
    if a.raw {
        outln!(io, "{}", hex::encode(&reply));
        return Ok(());
    }
    let decoded = match (&iface, &typed) {
        (Some(i), Some((_, rets, _))) => i.decode(&reply, rets)?,
        _ => text::decode_untyped(&reply)?,
    };
    match &a.output_blob {
        Some(path) => {
            let blob = text::first_blob(&decoded)
                .ok_or_else(|| anyhow!("the reply has no blob: {decoded}"))?;
            std::fs::write(path, &blob).with_context(|| format!("writing {}", path.display()))?;
            outln!(io, "{} bytes written to {}", blob.len(), path.display());
        }
        None => outln!(io, "{decoded}"),
    }
    Ok(())
}

/// The candid interface of canister `id`: `did` when given, else the `.did` remembered at
/// deploy, else the `candid:service` metadata embedded in its module, else none (untyped).
pub(crate) fn interface_of(
    st: &StateDir,
    id: Principal,
    did: Option<&Path>,
) -> Result<Option<Interface>> {
    if let Some(d) = did.map(Path::to_path_buf).or_else(|| st.did_of(id)) {
        return Interface::load(&d).map(Some);
    }
    meta::embedded_interface(st, id)
}

/// An update call while `serve` runs the rounds: submits it and waits for its reply.
pub(crate) fn served_update(
    emu: &Emulator,
    canister: Principal,
    sender: Principal,
    method: &str,
    arg: Vec<u8>,
    cycles: u128,
) -> Result<Vec<u8>, RejectResponse> {
    served_wait(
        emu,
        emu.submit_with_cycles(canister, sender, method, arg, cycles)?,
        SERVED_CALL_TIMEOUT,
    )
}

/// How long a forwarded update call waits for `serve`'s rounds to reply.
const SERVED_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Waits (polling) for the background rounds of `serve` to complete message `id`.
pub(crate) fn served_wait(
    emu: &Emulator,
    id: emulator::MessageId,
    timeout: Duration,
) -> Result<Vec<u8>, RejectResponse> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = emu.take_ingress_status(id) {
            return r;
        }
        if Instant::now() > deadline {
            return Err(RejectResponse::new(
                emulator::ErrorCode::IngressMessageTimeout,
                format!(
                    "no reply within {} s (the message is still in flight)",
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
