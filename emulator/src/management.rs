//! The management canister `aaaaa-aa`, decoded with `ic-management-canister-types`.
//!
//! Requests are handled in the round they are delivered (a canister's request arrives in the
//! round after it was made, through message routing as on the replica); the response reaches a
//! canister caller in the next round. `stop_canister` answers once the canister has no open call contexts.

use candid::{CandidType, Decode, Encode, Nat, Principal};
use ic_management_canister_types as mgmt;
use serde::de::DeserializeOwned;

use crate::engine::{self, ApiType, CanisterInstance, sha256};
use crate::reject::{ErrorCode, RejectResponse};
use crate::scheduler::{Inner, trap_reject};
use crate::stable::StableMemory;
use crate::state::{Canister, Origin, Status, reject};
use crate::stats::TraceKind;

type MResult = Result<Vec<u8>, RejectResponse>;

fn decode<T: CandidType + DeserializeOwned>(arg: &[u8]) -> Result<T, RejectResponse> {
    Decode!(arg, T).map_err(|e| {
        reject(
            ErrorCode::InvalidManagementPayload,
            format!("Error decoding candid: {e}"),
        )
    })
}

fn encode<T: CandidType>(v: &T) -> Vec<u8> {
    Encode!(v).expect("candid encode")
}

fn unit() -> Vec<u8> {
    Encode!().unwrap()
}

fn nat_u64(n: &Nat) -> u64 {
    u64::try_from(n.0.clone()).unwrap_or(u64::MAX)
}

fn nat_u128(n: &Nat) -> u128 {
    u128::try_from(n.0.clone()).unwrap_or(u128::MAX)
}

/// Controllers as the replica stores them: a set (`BTreeSet<PrincipalId>`), so sorted and
/// without duplicates, in `canister_status`, `canister_info` and the history alike.
pub fn sorted_set(mut controllers: Vec<Principal>) -> Vec<Principal> {
    controllers.sort();
    controllers.dedup();
    controllers
}

/// Mirrors of the replica's canister-history types (`ic_management_canister_types_private`),
/// only to take their `size_of` as the replica does; never constructed.
#[allow(dead_code)]
mod replica_layout {
    /// `PrincipalId` (a `candid::Principal`: length byte and 29 bytes).
    pub struct PrincipalId(pub u8, pub [u8; 29]);
    pub enum ChangeOrigin {
        FromUser(PrincipalId),
        FromCanister(PrincipalId, Option<u64>),
    }
    pub enum InstallMode {
        Install,
        Reinstall,
        Upgrade,
    }
    pub enum SnapshotSource {
        TakenFromCanister,
        MetadataUpload,
    }
    pub enum ChangeDetails {
        Creation(Vec<PrincipalId>, Option<[u8; 32]>),
        CodeUninstall,
        CodeDeployment(InstallMode, [u8; 32]),
        ControllersChange(Vec<PrincipalId>),
        LoadSnapshot(
            u64,
            (u64, PrincipalId),
            u64,
            SnapshotSource,
            Option<PrincipalId>,
        ),
        SettingsChange(Option<Vec<PrincipalId>>, Option<[u8; 32]>),
        Rename(PrincipalId, u64, (PrincipalId, u64, u64), PrincipalId),
    }
    pub struct CanisterChange {
        pub timestamp_nanos: u64,
        pub canister_version: u64,
        pub origin: ChangeOrigin,
        pub details: ChangeDetails,
    }
}

/// `canister_status`'s `canister_history_size`: the replica's `CanisterChange::count_bytes`
/// summed over the stored changes: `size_of::<CanisterChange>()` each, plus
/// `size_of::<PrincipalId>()` per controller a creation or controllers change stores on the heap.
pub fn history_size(history: &[mgmt::Change]) -> u64 {
    let change = std::mem::size_of::<replica_layout::CanisterChange>();
    let principal = std::mem::size_of::<replica_layout::PrincipalId>();
    history
        .iter()
        .map(|c| {
            let controllers = match &c.details {
                Some(mgmt::ChangeDetails::Creation(r)) => r.controllers.len(),
                Some(mgmt::ChangeDetails::ControllersChange(r)) => r.controllers.len(),
                _ => 0,
            };
            (change + controllers * principal) as u64
        })
        .sum()
}

/// The canister id for index `i` (the IC's format: 8-byte index, then `0x01 0x01`).
pub fn canister_id(i: u64) -> Principal {
    let mut b = i.to_be_bytes().to_vec();
    b.extend_from_slice(&[1, 1]);
    Principal::from_slice(&b)
}

impl Inner {
    /// Handles a request to `aaaaa-aa` and answers `origin` (unless it must wait).
    pub fn handle_management(
        &mut self,
        caller: Principal,
        method: &str,
        arg: &[u8],
        cycles: u128,
        origin: Origin,
    ) {
        let mgmt_id = Principal::management_canister();
        let mut kept = 0u128;
        let result = self.dispatch(caller, method, arg, cycles, &origin, &mut kept);
        let detail = match &result {
            Some(Ok(b)) => format!("reply {} bytes", b.len()),
            Some(Err(r)) => format!("reject {:?}: {}", r.error_code, r.reject_message),
            None => "waiting".into(),
        };
        self.trace(TraceKind::Management, caller, mgmt_id, method, detail);
        if let Some(result) = result {
            self.respond_from_subnet(&origin, result, cycles.saturating_sub(kept));
        }
    }

    fn canister_ref(&self, id: Principal) -> Result<&Canister, RejectResponse> {
        self.canisters.get(&id).ok_or_else(|| {
            reject(
                ErrorCode::CanisterNotFound,
                format!("Canister {id} not found"),
            )
        })
    }

    fn controlled(
        &mut self,
        caller: Principal,
        id: Principal,
        method: &str,
    ) -> Result<&mut Canister, RejectResponse> {
        let c = self.canister_ref(id)?;
        if !c.controllers.contains(&caller) {
            let code = ErrorCode::CanisterInvalidController;
            return Err(reject(
                code,
                format!(
                    "Only controllers of canister {id} can call ic00 method {method}. Caller {caller} is not a controller."
                ),
            ));
        }
        Ok(self.canisters.get_mut(&id).unwrap())
    }

    /// The origin of a change: a canister's carries the `sender_canister_version` of its
    /// request (spec, "Canister history": the canister version of the originator, if it gave one).
    fn change_origin(
        caller: Principal,
        is_canister: bool,
        sender_version: Option<u64>,
    ) -> mgmt::ChangeOrigin {
        if is_canister {
            mgmt::ChangeOrigin::FromCanister(mgmt::FromCanisterRecord {
                canister_id: caller,
                canister_version: sender_version,
            })
        } else {
            mgmt::ChangeOrigin::FromUser(mgmt::FromUserRecord { user_id: caller })
        }
    }

    fn push_change(
        &mut self,
        id: Principal,
        caller: Principal,
        origin: &Origin,
        sender_version: Option<u64>,
        details: mgmt::ChangeDetails,
    ) {
        let time = self.time;
        let is_canister = matches!(origin, Origin::Canister { .. });
        if let Some(c) = self.canisters.get_mut(&id) {
            c.history.push(mgmt::Change {
                timestamp_nanos: time,
                canister_version: c.version,
                origin: Self::change_origin(caller, is_canister, sender_version),
                details: Some(details),
            });
        }
    }

    /// Creates a canister; returns its id.
    pub fn create(
        &mut self,
        caller: Principal,
        settings: Option<mgmt::CanisterSettings>,
        cycles: u128,
        origin: &Origin,
        sender_version: Option<u64>,
    ) -> Result<Principal, RejectResponse> {
        if self.faults.fail_create_canister > 0 {
            self.faults.fail_create_canister -= 1;
            return Err(reject(
                ErrorCode::SubnetOversubscribed,
                "injected fault: create_canister fails",
            ));
        }
        let id = canister_id(self.next_canister_index);
        self.next_canister_index += 1;
        let controllers = sorted_set(
            settings
                .as_ref()
                .and_then(|s| s.controllers.clone())
                .unwrap_or_else(|| vec![caller]),
        );
        let c = Canister::new(
            id,
            controllers.clone(),
            cycles,
            self.config.freezing_threshold_secs,
        );
        self.canisters.insert(id, c);
        if let Some(s) = settings {
            self.apply_settings(id, s);
        }
        self.push_change(
            id,
            caller,
            origin,
            sender_version,
            mgmt::ChangeDetails::Creation(mgmt::CreationRecord {
                controllers,
                environment_variables_hash: None,
            }),
        );
        Ok(id)
    }

    fn apply_settings(&mut self, id: Principal, s: mgmt::CanisterSettings) {
        let c = self.canisters.get_mut(&id).unwrap();
        if let Some(ctrl) = s.controllers {
            c.controllers = sorted_set(ctrl);
        }
        if let Some(t) = s.freezing_threshold {
            c.freezing_threshold = nat_u64(&t);
        }
        if let Some(v) = s.log_visibility {
            c.log_visibility = v;
        }
        if let Some(vars) = s.environment_variables {
            c.env_vars = vars.into_iter().map(|v| (v.name, v.value)).collect();
        }
    }

    fn dispatch(
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

    fn record_prints_into(&mut self, c: &mut Canister, prints: Vec<String>) {
        for text in prints {
            let idx = c.logs.len() as u64;
            c.logs.push((idx, self.time, text.clone().into_bytes()));
            self.logs.push(crate::stats::LogLine {
                round: self.round,
                timestamp_nanos: self.time,
                canister: c.id,
                text,
            });
        }
    }

    /// `canister_status` of `id` (no access check).
    pub fn status_of(&self, id: Principal) -> mgmt::CanisterStatusResult {
        let c = &self.canisters[&id];
        let heap = c
            .instance
            .as_ref()
            .map(|i| i.heap_size() as u64)
            .unwrap_or(0);
        let stable = c.stable.size() * crate::stable::WASM_PAGE;
        let per_day = self.config.freezing_reserve(c.memory_size(), 86_400);
        mgmt::CanisterStatusResult {
            status: match c.status {
                Status::Running => mgmt::CanisterStatusType::Running,
                Status::Stopping => mgmt::CanisterStatusType::Stopping,
                Status::Stopped => mgmt::CanisterStatusType::Stopped,
            },
            ready_for_migration: false,
            version: c.version,
            settings: mgmt::DefiniteCanisterSettings {
                controllers: c.controllers.clone(),
                freezing_threshold: Nat::from(c.freezing_threshold),
                log_visibility: c.log_visibility.clone(),
                environment_variables: c
                    .env_vars
                    .iter()
                    .map(|(n, v)| mgmt::EnvironmentVariable {
                        name: n.clone(),
                        value: v.clone(),
                    })
                    .collect(),
                ..Default::default()
            },
            module_hash: c.module_hash.map(|h| h.to_vec()),
            memory_size: Nat::from(heap + stable),
            memory_metrics: mgmt::MemoryMetrics {
                wasm_memory_size: Nat::from(heap),
                stable_memory_size: Nat::from(stable),
                global_memory_size: Nat::from(0u64),
                wasm_binary_size: Nat::from(0u64),
                custom_sections_size: Nat::from(0u64),
                canister_history_size: Nat::from(history_size(&c.history)),
                wasm_chunk_store_size: Nat::from(
                    c.chunks.values().map(|v| v.len() as u64).sum::<u64>(),
                ),
                snapshots_size: Nat::from(0u64),
                log_memory_store_size: Nat::from(0u64),
            },
            cycles: Nat::from(c.balance),
            reserved_cycles: Nat::from(0u64),
            idle_cycles_burned_per_day: Nat::from(per_day),
            query_stats: mgmt::QueryStats {
                num_calls_total: Nat::from(0u64),
                num_instructions_total: Nat::from(0u64),
                request_payload_bytes_total: Nat::from(0u64),
                response_payload_bytes_total: Nat::from(0u64),
            },
        }
    }

    /// `install_code` in any mode; on failure nothing changes.
    #[allow(clippy::too_many_arguments)]
    pub fn install(
        &mut self,
        caller: Principal,
        id: Principal,
        mode: mgmt::CanisterInstallMode,
        wasm: Vec<u8>,
        arg: Vec<u8>,
        origin: &Origin,
        sender_version: Option<u64>,
    ) -> Result<(), RejectResponse> {
        self.controlled(caller, id, "install_code")?;
        if self.faults.fail_install_code > 0 {
            self.faults.fail_install_code -= 1;
            return Err(reject(
                ErrorCode::CanisterInstallCodeRateLimited,
                "injected fault: install_code fails",
            ));
        }
        let module = engine::compile(&wasm).map_err(|e| {
            reject(
                ErrorCode::CanisterInvalidWasm,
                format!("Error from Canister {id}: Canister's Wasm module is not valid: {e}"),
            )
        })?;
        let mut c = self.canisters.remove(&id).unwrap();
        let result = self.install_into(&mut c, caller, module, &mode, arg);
        let ok = result.is_ok();
        let hash = c.module_hash;
        self.canisters.insert(id, c);
        result?;
        if ok {
            let m = match mode {
                mgmt::CanisterInstallMode::Install => mgmt::CodeDeploymentMode::Install,
                mgmt::CanisterInstallMode::Reinstall => mgmt::CodeDeploymentMode::Reinstall,
                mgmt::CanisterInstallMode::Upgrade(_) => mgmt::CodeDeploymentMode::Upgrade,
            };
            let d = mgmt::ChangeDetails::CodeDeployment(mgmt::CodeDeploymentRecord {
                mode: m,
                module_hash: hash.map(|h| h.to_vec()).unwrap_or_default(),
            });
            self.push_change(id, caller, origin, sender_version, d);
        }
        Ok(())
    }

    fn install_into(
        &mut self,
        c: &mut Canister,
        caller: Principal,
        module: std::sync::Arc<engine::CompiledModule>,
        mode: &mgmt::CanisterInstallMode,
        arg: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        let id = c.id;
        let limit = self.config.install_instruction_limit;
        let upgrade = matches!(mode, mgmt::CanisterInstallMode::Upgrade(_));
        match mode {
            mgmt::CanisterInstallMode::Install if c.instance.is_some() => {
                return Err(reject(
                    ErrorCode::CanisterNonEmpty,
                    format!(
                        "Canister {id} cannot be installed because the canister is not empty. Try installing with mode='reinstall' instead."
                    ),
                ));
            }
            mgmt::CanisterInstallMode::Upgrade(_) if c.instance.is_none() => {
                return Err(reject(
                    ErrorCode::CanisterWasmModuleNotFound,
                    format!(
                        "Error from Canister {id}: Attempted to upgrade a canister that has no Wasm module."
                    ),
                ));
            }
            _ => {}
        }
        let skip_pre = matches!(mode, mgmt::CanisterInstallMode::Upgrade(Some(f)) if f.skip_pre_upgrade == Some(true));
        let mut used = 0u64;
        let mut stable = std::mem::take(&mut c.stable);
        stable.begin();
        let mut prints = Vec::new();
        if upgrade && !skip_pre {
            let mut old = c.instance.take().unwrap();
            if old.module().exports("canister_pre_upgrade") {
                let ex = self.run_hook(
                    c,
                    &mut old,
                    ApiType::PreUpgrade,
                    "canister_pre_upgrade",
                    Vec::new(),
                    caller,
                    limit,
                    stable,
                );
                let _ = old.rollback();
                let mut msg = ex.msg;
                prints.extend(std::mem::take(&mut msg.debug_prints));
                stable = msg.stable;
                used += ex.instructions;
                if let Some(t) = ex.trap {
                    stable.rollback();
                    c.stable = stable;
                    c.instance = Some(old);
                    self.record_prints_into(c, prints);
                    let mut r = trap_reject(id, &t);
                    r.reject_message = format!("{} (in canister_pre_upgrade)", r.reject_message);
                    return Err(r);
                }
            }
            c.instance = Some(old);
        }
        let old_stable = if upgrade {
            None
        } else {
            Some(std::mem::take(&mut stable))
        };
        let mut inst = CanisterInstance::new(module.clone()).map_err(|e| {
            reject(
                ErrorCode::CanisterInvalidWasm,
                format!("Error from Canister {id}: {e}"),
            )
        })?;
        let (hook, api) = if upgrade {
            ("canister_post_upgrade", ApiType::PostUpgrade)
        } else {
            ("canister_init", ApiType::Init)
        };
        let mut timer = 0;
        let mut timer_changed = false;
        let mut certified = None;
        let mut balance = c.balance;
        if module.exports(hook) {
            let saved_timer = c.global_timer;
            c.global_timer = 0;
            let ex = self.run_hook(
                c,
                &mut inst,
                api,
                hook,
                arg,
                caller,
                limit.saturating_sub(used),
                stable,
            );
            c.global_timer = saved_timer;
            let mut msg = ex.msg;
            prints.extend(std::mem::take(&mut msg.debug_prints));
            stable = msg.stable;
            used += ex.instructions;
            if let Some(t) = ex.trap {
                match old_stable {
                    Some(s) => c.stable = s,
                    None => {
                        stable.rollback();
                        c.stable = stable;
                    }
                }
                self.record_prints_into(c, prints);
                let mut r = trap_reject(id, &t);
                r.reject_message = format!("{} (in {hook})", r.reject_message);
                return Err(r);
            }
            timer = msg.global_timer;
            timer_changed = msg.global_timer_changed;
            certified = msg.certified_data.take();
            balance = msg.balance;
        }
        inst.commit();
        stable.commit();
        c.stable = stable;
        c.instance = Some(inst);
        c.module_hash = Some(module.hash);
        c.version += 1;
        c.code_generation += 1;
        c.global_timer = if timer_changed { timer } else { 0 };
        if !upgrade {
            c.certified_data.clear();
        }
        if let Some(d) = certified {
            c.certified_data = d;
        }
        c.balance = balance.saturating_sub(self.config.execution_cost(used));
        let st = self.stats.entry(id).or_default();
        st.method(hook)
            .add_execution(used, self.config.execution_cost(used), false);
        st.total
            .add_execution(used, self.config.execution_cost(used), false);
        self.record_prints_into(c, prints);
        Ok(())
    }
}
