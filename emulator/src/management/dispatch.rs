//! The management canister's methods: each request decoded, checked and answered.

use super::*;

impl Inner {
    pub(super) fn dispatch(
        &mut self,
        caller: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
        origin: &Origin,
        kept: &mut u128,
    ) -> Option<MResult> {
        Some(match method {
            "create_canister" => (|| {
                let a: mgmt::CreateCanisterArgs = decode(arg)?;
                let fee = self.config.prices.create_canister_fee;
                if cycles < fee {
                    return Err(reject(
                        ErrorCode::InsufficientCyclesForCreateCanister,
                        format!(
                            "Creating a canister requires a fee of {fee} that is deducted from the canister's initial balance but only {cycles} cycles were received with the create_canister request."
                        ),
                    ));
                }
                let id = self.create(
                    caller,
                    a.settings,
                    cycles - fee,
                    origin,
                    a.sender_canister_version,
                )?;
                *kept = cycles;
                Ok(encode(&mgmt::CanisterIdRecord { canister_id: id }))
            })(),
            "provisional_create_canister_with_cycles" => (|| {
                let a: mgmt::ProvisionalCreateCanisterWithCyclesArgs = decode(arg)?;
                let amount = a
                    .amount
                    .as_ref()
                    .map(nat_u128)
                    .unwrap_or(self.config.default_canister_cycles);
                let id = self.create(
                    caller,
                    a.settings,
                    amount,
                    origin,
                    a.sender_canister_version,
                )?;
                Ok(encode(&mgmt::CanisterIdRecord { canister_id: id }))
            })(),
            "provisional_top_up_canister" => (|| {
                let a: mgmt::ProvisionalTopUpCanisterArgs = decode(arg)?;
                self.canister_ref(a.canister_id)?;
                self.canisters.get_mut(&a.canister_id).unwrap().balance += nat_u128(&a.amount);
                Ok(unit())
            })(),
            "deposit_cycles" => (|| {
                let a: mgmt::CanisterIdRecord = decode(arg)?;
                self.canister_ref(a.canister_id)?;
                self.canisters.get_mut(&a.canister_id).unwrap().balance += cycles;
                *kept = cycles;
                Ok(unit())
            })(),
            "install_code" => (|| {
                let a: mgmt::InstallCodeArgs = decode(arg)?;
                let v = a.sender_canister_version;
                self.install(
                    caller,
                    a.canister_id,
                    a.mode,
                    a.wasm_module,
                    a.arg,
                    origin,
                    v,
                )?;
                Ok(unit())
            })(),
            "install_chunked_code" => (|| {
                let a: mgmt::InstallChunkedCodeArgs = decode(arg)?;
                let store = a.store_canister.unwrap_or(a.target_canister);
                self.controlled(caller, store, "install_chunked_code")?;
                let sc = self.canister_ref(store)?;
                let mut wasm = Vec::new();
                for h in &a.chunk_hashes_list {
                    let key: [u8; 32] = h.hash.clone().try_into().unwrap_or([0; 32]);
                    match sc.chunks.get(&key) {
                        Some(b) => wasm.extend_from_slice(b),
                        None => {
                            return Err(reject(
                                ErrorCode::InvalidManagementPayload,
                                format!(
                                    "chunk {} is not in the chunk store of {store}",
                                    hex::encode(&h.hash)
                                ),
                            ));
                        }
                    }
                }
                if sha256(&wasm).as_slice() != a.wasm_module_hash.as_slice() {
                    return Err(reject(
                        ErrorCode::InvalidManagementPayload,
                        format!(
                            "wasm module hash mismatch: expected {}, got {}",
                            hex::encode(&a.wasm_module_hash),
                            hex::encode(sha256(&wasm))
                        ),
                    ));
                }
                let v = a.sender_canister_version;
                self.install(caller, a.target_canister, a.mode, wasm, a.arg, origin, v)?;
                Ok(unit())
            })(),
            "upload_chunk" => (|| {
                let a: mgmt::UploadChunkArgs = decode(arg)?;
                let max = self.config.max_chunk_bytes;
                let c = self.controlled(caller, a.canister_id, "upload_chunk")?;
                if a.chunk.len() > max {
                    return Err(reject(
                        ErrorCode::InvalidManagementPayload,
                        format!("chunk larger than {max} bytes"),
                    ));
                }
                let h = sha256(&a.chunk);
                c.chunks.insert(h, a.chunk);
                Ok(encode(&mgmt::ChunkHash { hash: h.to_vec() }))
            })(),
            "clear_chunk_store" => (|| {
                let a: mgmt::CanisterIdRecord = decode(arg)?;
                self.controlled(caller, a.canister_id, "clear_chunk_store")?
                    .chunks
                    .clear();
                Ok(unit())
            })(),
            "stored_chunks" => (|| {
                let a: mgmt::CanisterIdRecord = decode(arg)?;
                let c = self.controlled(caller, a.canister_id, "stored_chunks")?;
                let list: Vec<mgmt::ChunkHash> = c
                    .chunks
                    .keys()
                    .map(|h| mgmt::ChunkHash { hash: h.to_vec() })
                    .collect();
                Ok(encode(&list))
            })(),
            "update_settings" => (|| {
                let a: mgmt::UpdateSettingsArgs = decode(arg)?;
                self.controlled(caller, a.canister_id, "update_settings")?;
                let changes_controllers = a.settings.controllers.is_some();
                self.apply_settings(a.canister_id, a.settings);
                let c = self.canisters.get_mut(&a.canister_id).unwrap();
                c.version += 1;
                if changes_controllers {
                    // The new set as stored (sorted, without duplicates).
                    let controllers = c.controllers.clone();
                    let d = mgmt::ChangeDetails::ControllersChange(mgmt::ControllersChangeRecord {
                        controllers,
                    });
                    let v = a.sender_canister_version;
                    self.push_change(a.canister_id, caller, origin, v, d);
                }
                Ok(unit())
            })(),
            "canister_status" => (|| {
                let a: mgmt::CanisterIdRecord = decode(arg)?;
                // Controllers and the canister itself may ask.
                if caller != a.canister_id {
                    self.controlled(caller, a.canister_id, "canister_status")?;
                }
                self.canister_ref(a.canister_id)?;
                Ok(encode(&self.status_of(a.canister_id)))
            })(),
            "canister_info" => (|| {
                let a: mgmt::CanisterInfoArgs = decode(arg)?;
                let c = self.canister_ref(a.canister_id)?;
                let n = a.num_requested_changes.unwrap_or(0) as usize;
                let skip = c.history.len().saturating_sub(n);
                Ok(encode(&mgmt::CanisterInfoResult {
                    total_num_changes: c.history.len() as u64,
                    recent_changes: c.history[skip..].to_vec(),
                    module_hash: c.module_hash.map(|h| h.to_vec()),
                    controllers: c.controllers.clone(),
                }))
            })(),
            "start_canister" => (|| {
                let a: mgmt::CanisterIdRecord = decode(arg)?;
                self.controlled(caller, a.canister_id, "start_canister")?
                    .status = Status::Running;
                for w in self.stop_waiters.remove(&a.canister_id).unwrap_or_default() {
                    let r = reject(
                        ErrorCode::CanisterStoppingCancelled,
                        format!("Canister {}'s stop request was cancelled.", a.canister_id),
                    );
                    self.respond_from_subnet(&w, Err(r), 0);
                }
                Ok(unit())
            })(),
            "stop_canister" => {
                let r = (|| {
                    let a: mgmt::CanisterIdRecord = decode(arg)?;
                    let c = self.controlled(caller, a.canister_id, "stop_canister")?;
                    if c.status == Status::Stopped {
                        return Ok(None);
                    }
                    c.status = Status::Stopping;
                    self.stop_waiters
                        .entry(a.canister_id)
                        .or_default()
                        .push(origin.clone());
                    Ok(Some(()))
                })();
                match r {
                    Ok(None) => Ok(unit()),
                    Ok(Some(())) => return None,
                    Err(e) => Err(e),
                }
            }
            "delete_canister" => (|| {
                let a: mgmt::CanisterIdRecord = decode(arg)?;
                let c = self.controlled(caller, a.canister_id, "delete_canister")?;
                if c.status != Status::Stopped {
                    return Err(reject(
                        ErrorCode::CanisterNotStopped,
                        format!(
                            "Canister {} must be stopped before it is deleted.",
                            a.canister_id
                        ),
                    ));
                }
                self.canisters.remove(&a.canister_id);
                Ok(unit())
            })(),
            "uninstall_code" => (|| {
                let a: mgmt::UninstallCodeArgs = decode(arg)?;
                let c = self.controlled(caller, a.canister_id, "uninstall_code")?;
                c.instance = None;
                c.module_hash = None;
                c.stable = StableMemory::default();
                c.certified_data.clear();
                c.global_timer = 0;
                c.version += 1;
                c.code_generation += 1;
                self.push_change(
                    a.canister_id,
                    caller,
                    origin,
                    a.sender_canister_version,
                    mgmt::ChangeDetails::CodeUninstall,
                );
                Ok(unit())
            })(),
            "raw_rand" => {
                self.rand_counter += 1;
                let mut seed = self.rand_counter.to_le_bytes().to_vec();
                seed.extend_from_slice(&self.round.to_le_bytes());
                Ok(encode(&sha256(&seed).to_vec()))
            }
            "fetch_canister_logs" => Err(reject(
                ErrorCode::CanisterRejectedMessage,
                "fetch_canister_logs can only be called as a query by users",
            )),
            other => Err(reject(
                ErrorCode::CanisterMethodNotFound,
                format!(
                    "Management canister has no method '{other}' (not modelled by the emulator)"
                ),
            )),
        })
    }
}
