//! `icemu deploy`: create (or find) the canister, install or upgrade its module.

use super::*;

/// The .did to use for a wasm when `--did` is not given (see `DeployArgs::did`).
pub(crate) fn guess_did(wasm: &Path) -> Option<PathBuf> {
    let file = wasm.file_name()?.to_str()?;
    let stem = file
        .strip_suffix(".wasm.gz")
        .or_else(|| file.strip_suffix(".wasm"))
        .unwrap_or(file);
    let beside = wasm.with_file_name(format!("{stem}.did"));
    if beside.is_file() {
        return Some(beside);
    }
    let base = stem.split(['.', '-']).next()?;
    let guess = PathBuf::from(base).join(format!("{base}.did"));
    guess.is_file().then_some(guess)
}

pub(crate) fn deploy(st: &mut StateDir, a: DeployArgs, io: &mut Io) -> Result<()> {
    let t0 = Instant::now();
    let wasm = std::fs::read(&a.wasm).with_context(|| format!("reading {}", a.wasm.display()))?;
    let did = a.did.clone().or_else(|| guess_did(&a.wasm));
    let did = match did {
        Some(d) => Some(
            d.canonicalize()
                .with_context(|| format!("resolving {}", d.display()))?,
        ),
        None => None,
    };
    let iface = did.as_deref().map(Interface::load).transpose()?;
    let arg = match &iface {
        Some(i) => i.encode(&a.arg, &i.init_args())?,
        None => text::encode_untyped(&a.arg)?,
    };
    let sender = st.identity(&a.as_);
    let existing = st
        .names
        .canisters
        .get(&a.name)
        .map(|n| n.id)
        .filter(|id| st.emu.canister_exists(*id));
    let (id, mode) = match existing {
        Some(id) => {
            let mode = match a.mode.as_deref().unwrap_or("upgrade") {
                "upgrade" => mgmt::CanisterInstallMode::Upgrade(None),
                "reinstall" => mgmt::CanisterInstallMode::Reinstall,
                "install" => mgmt::CanisterInstallMode::Install,
                m => bail!("unknown mode {m} (install | reinstall | upgrade)"),
            };
            (id, mode)
        }
        None => {
            let cycles = parse_u128(&a.cycles)?;
            let args = mgmt::ProvisionalCreateCanisterWithCyclesArgs {
                amount: Some(Nat::from(cycles)),
                settings: Some(mgmt::CanisterSettings {
                    controllers: Some(vec![sender]),
                    ..Default::default()
                }),
                specified_id: None,
                sender_canister_version: None,
            };
            let r: mgmt::CanisterIdRecord = st
                .emu
                .management(sender, "provisional_create_canister_with_cycles", &args)
                .map_err(Rejected)?;
            (r.canister_id, mgmt::CanisterInstallMode::Install)
        }
    };
    let max = st.emu.config().max_ingress_bytes;
    if wasm.len() + arg.len() + 1024 <= max {
        let args = mgmt::InstallCodeArgs {
            mode,
            canister_id: id,
            wasm_module: wasm,
            arg,
            sender_canister_version: None,
        };
        let () = st
            .emu
            .management(sender, "install_code", &args)
            .map_err(Rejected)?;
    } else {
        // Too big for one message: upload chunks into the canister's own chunk store.
        let mut hashes = Vec::new();
        for chunk in wasm.chunks(1 << 20) {
            let up = mgmt::UploadChunkArgs {
                canister_id: id,
                chunk: chunk.to_vec(),
            };
            let h: mgmt::ChunkHash = st
                .emu
                .management(sender, "upload_chunk", &up)
                .map_err(Rejected)?;
            hashes.push(h);
        }
        let args = mgmt::InstallChunkedCodeArgs {
            mode,
            target_canister: id,
            store_canister: None,
            chunk_hashes_list: hashes,
            wasm_module_hash: emulator::engine::sha256(&wasm).to_vec(),
            arg,
            sender_canister_version: None,
        };
        let () = st
            .emu
            .management(sender, "install_chunked_code", &args)
            .map_err(Rejected)?;
        let clear = mgmt::ClearChunkStoreArgs { canister_id: id };
        let () = st
            .emu
            .management(sender, "clear_chunk_store", &clear)
            .map_err(Rejected)?;
    }
    st.names.canisters.insert(
        a.name.clone(),
        Named {
            id,
            did: did.clone(),
            derived: false,
        },
    );
    outln!(io, "{} {id}", a.name);
    errln!(
        io,
        "icemu: deployed {} ({}){} in {:.2?}",
        a.name,
        a.wasm.display(),
        did.map(|d| format!(", types from {}", d.display()))
            .unwrap_or_default(),
        t0.elapsed()
    );
    Ok(())
}
