//! The management canister `aaaaa-aa`, decoded with `ic-management-canister-types`.
//!
//! Requests are handled in the round they are delivered (a canister's request arrives in the
//! round after it was made, through message routing as on the replica); the response reaches a
//! canister caller in the next round. `stop_canister` answers once the canister has no open call contexts.
//!
//! `dispatch.rs` decodes and answers each method; `install.rs` runs `install_code` in every mode.

use candid::{CandidType, Decode, Encode, Nat, Principal};
use ic_management_canister_types as mgmt;
use serde::de::DeserializeOwned;

use crate::engine::{self, ApiType, CanisterInstance, sha256};
use crate::reject::{ErrorCode, RejectResponse};
use crate::scheduler::{Inner, trap_reject};
use crate::stable::StableMemory;
use crate::state::{Canister, Origin, Status, reject};
use crate::stats::TraceKind;

mod dispatch;
mod install;

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
}
