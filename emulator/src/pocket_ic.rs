//! The `pocket-ic` crate's API on the emulator: a test written for `pocket_ic::PocketIc` runs
//! here after changing `use pocket_ic::...` to `use emulator::pocket_ic::...`.
//!
//! Same method names, argument and result types (`CanisterSettings`, `CanisterStatusResult`,
//! `CanisterLogRecord` are the `ic-management-canister-types` 0.8 types pocket-ic 16 re-exports;
//! [`RejectResponse`], [`RejectCode`], [`ErrorCode`] and [`Time`] mirror pocket-ic's).
//! [`PocketIc`] dereferences to [`Emulator`] for the extras (faults, stats, trace).

use std::ops::Deref;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{CandidType, Principal};
use ic_management_canister_types as mgmt;
pub use ic_management_canister_types::{
    CanisterId, CanisterInstallMode, CanisterLogRecord, CanisterSettings, CanisterStatusResult,
};
use serde::de::DeserializeOwned;

use crate::cycles::Config;
use crate::emulator::{Emulator, MessageId};
pub use crate::reject::{ErrorCode, RejectCode, RejectResponse};
use crate::state::reject;

/// A point in time, as `pocket_ic::Time`.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Time(Duration);

impl Time {
    /// Nanoseconds since the epoch.
    pub fn as_nanos_since_unix_epoch(&self) -> u64 {
        self.0.as_nanos() as u64
    }
    /// From nanoseconds since the epoch.
    pub const fn from_nanos_since_unix_epoch(nanos: u64) -> Self {
        Time(Duration::from_nanos(nanos))
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0 + d)
    }
}

impl From<SystemTime> for Time {
    fn from(t: SystemTime) -> Self {
        Time(t.duration_since(UNIX_EPOCH).unwrap_or_default())
    }
}

/// Effective principal of a message (kept for signature compatibility).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RawEffectivePrincipal {
    /// None.
    None,
    /// A subnet.
    SubnetId(Vec<u8>),
    /// A canister.
    CanisterId(Vec<u8>),
}

/// Id of a submitted call, as `pocket_ic::common::rest::RawMessageId`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawMessageId {
    /// Effective principal.
    pub effective_principal: RawEffectivePrincipal,
    /// Message id bytes.
    pub message_id: Vec<u8>,
}

/// Compression of a blob, as `pocket_ic::common::rest::BlobCompression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobCompression {
    /// Gzip.
    Gzip,
    /// Plain bytes.
    NoCompression,
}

/// Builder, as `pocket_ic::PocketIcBuilder` (subnet choices are accepted and ignored: the
/// emulator has one application subnet).
#[derive(Default)]
pub struct PocketIcBuilder {
    config: Config,
}

impl PocketIcBuilder {
    /// A builder.
    pub fn new() -> Self {
        Self::default()
    }
    /// Accepted; the emulator always has one application subnet.
    pub fn with_application_subnet(self) -> Self {
        self
    }
    /// Accepted and ignored.
    pub fn with_nns_subnet(self) -> Self {
        self
    }
    /// Accepted and ignored.
    pub fn with_ii_subnet(self) -> Self {
        self
    }
    /// Accepted and ignored.
    pub fn with_system_subnet(self) -> Self {
        self
    }
    /// Accepted and ignored.
    pub fn with_nonmainnet_features(self, _on: bool) -> Self {
        self
    }
    /// Initial time.
    pub fn with_initial_time(mut self, t: Time) -> Self {
        self.config.initial_time_nanos = t.as_nanos_since_unix_epoch();
        self
    }
    /// Emulator configuration (an extra).
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    /// Builds the instance.
    pub fn build(self) -> PocketIc {
        PocketIc {
            emu: Emulator::with_config(self.config),
        }
    }
}

/// `pocket_ic::PocketIc` on the emulator.
pub struct PocketIc {
    emu: Emulator,
}

impl Default for PocketIc {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for PocketIc {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emu
    }
}

fn anon(sender: Option<Principal>) -> Principal {
    sender.unwrap_or_else(Principal::anonymous)
}

impl PocketIc {
    /// Calls management method `method`, whose argument is `{ canister_id }`, as `sender`.
    fn on_canister<R: DeserializeOwned + CandidType>(
        &self,
        sender: Option<Principal>,
        method: &str,
        canister_id: CanisterId,
    ) -> Result<R, RejectResponse> {
        self.emu.management(
            anon(sender),
            method,
            &mgmt::CanisterIdRecord { canister_id },
        )
    }

    /// A fresh instance.
    pub fn new() -> Self {
        PocketIcBuilder::new().build()
    }

    /// The underlying emulator.
    pub fn emulator(&self) -> &Emulator {
        &self.emu
    }

    /// Runs one round.
    pub fn tick(&self) {
        self.emu.tick()
    }

    /// Current time.
    pub fn get_time(&self) -> Time {
        Time::from_nanos_since_unix_epoch(self.emu.time_nanos())
    }

    /// Sets the time.
    pub fn set_time(&self, time: Time) {
        self.emu.set_time_nanos(time.as_nanos_since_unix_epoch())
    }

    /// Sets the time (certified time is the same thing here).
    pub fn set_certified_time(&self, time: Time) {
        self.set_time(time)
    }

    /// Moves time forward.
    pub fn advance_time(&self, duration: Duration) {
        self.emu.advance_time(duration)
    }

    /// No root key: the emulator does not certify.
    pub fn root_key(&self) -> Option<Vec<u8>> {
        None
    }

    /// Controllers of a canister.
    pub fn get_controllers(&self, canister_id: CanisterId) -> Vec<Principal> {
        self.emu
            .lock()
            .canisters
            .get(&canister_id)
            .map(|c| c.controllers.clone())
            .unwrap_or_default()
    }

    /// Cycle balance.
    pub fn cycle_balance(&self, canister_id: CanisterId) -> u128 {
        self.emu
            .lock()
            .canisters
            .get(&canister_id)
            .map(|c| c.balance)
            .unwrap_or(0)
    }

    /// Adds cycles; returns the new balance.
    pub fn add_cycles(&self, canister_id: CanisterId, amount: u128) -> u128 {
        let mut g = self.emu.lock();
        let c = g
            .canisters
            .get_mut(&canister_id)
            .expect("canister not found");
        c.balance += amount;
        c.balance
    }

    /// Submits an update call.
    pub fn submit_call(
        &self,
        canister_id: CanisterId,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<RawMessageId, RejectResponse> {
        let id = self.emu.submit(canister_id, sender, method, payload)?;
        Ok(RawMessageId {
            effective_principal: RawEffectivePrincipal::CanisterId(canister_id.as_slice().to_vec()),
            message_id: id.0.to_be_bytes().to_vec(),
        })
    }

    fn message_id(raw: &RawMessageId) -> MessageId {
        let mut b = [0u8; 8];
        let n = raw.message_id.len().min(8);
        b[8 - n..].copy_from_slice(&raw.message_id[raw.message_id.len() - n..]);
        MessageId(u64::from_be_bytes(b))
    }

    /// Runs rounds until the call completes.
    pub fn await_call(&self, message_id: RawMessageId) -> Result<Vec<u8>, RejectResponse> {
        self.emu.await_message(Self::message_id(&message_id))
    }

    /// The result, if the call completed (no rounds run).
    pub fn ingress_status(
        &self,
        message_id: RawMessageId,
    ) -> Option<Result<Vec<u8>, RejectResponse>> {
        self.emu.ingress_status(Self::message_id(&message_id))
    }

    /// Waits without running rounds: the result if completed, else a reject.
    pub fn await_call_no_ticks(&self, message_id: RawMessageId) -> Result<Vec<u8>, RejectResponse> {
        self.ingress_status(message_id).unwrap_or_else(|| {
            Err(reject(
                ErrorCode::IngressMessageTimeout,
                "message has not completed",
            ))
        })
    }

    /// Update call.
    pub fn update_call(
        &self,
        canister_id: CanisterId,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.emu.update(canister_id, sender, method, payload)
    }

    /// Query call.
    pub fn query_call(
        &self,
        canister_id: CanisterId,
        sender: Principal,
        method: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.emu.query(canister_id, sender, method, payload)
    }

    /// Canister logs (controllers, or anyone when the visibility is public).
    pub fn fetch_canister_logs(
        &self,
        canister_id: CanisterId,
        sender: Principal,
    ) -> Result<Vec<CanisterLogRecord>, RejectResponse> {
        let g = self.emu.lock();
        let c = g.canisters.get(&canister_id).ok_or_else(|| {
            reject(
                ErrorCode::CanisterNotFound,
                format!("Canister {canister_id} not found"),
            )
        })?;
        let allowed = match &c.log_visibility {
            mgmt::LogVisibility::Public => true,
            mgmt::LogVisibility::Controllers => c.controllers.contains(&sender),
            mgmt::LogVisibility::AllowedViewers(v) => {
                v.contains(&sender) || c.controllers.contains(&sender)
            }
        };
        if !allowed {
            return Err(reject(
                ErrorCode::CanisterRejectedMessage,
                format!(
                    "Caller {sender} is not allowed to read the logs of canister {canister_id}"
                ),
            ));
        }
        Ok(c.logs
            .iter()
            .map(|(idx, t, content)| CanisterLogRecord {
                idx: *idx,
                timestamp_nanos: *t,
                content: content.clone(),
            })
            .collect())
    }

    /// `canister_status` as `sender`.
    pub fn canister_status(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
    ) -> Result<CanisterStatusResult, RejectResponse> {
        self.on_canister(sender, "canister_status", canister_id)
    }

    /// Creates a canister (anonymous controller, default cycles).
    pub fn create_canister(&self) -> CanisterId {
        self.create_canister_with_settings(None, None)
    }

    /// Creates a canister as `sender` with `settings`.
    pub fn create_canister_with_settings(
        &self,
        sender: Option<Principal>,
        settings: Option<CanisterSettings>,
    ) -> CanisterId {
        let arg = mgmt::ProvisionalCreateCanisterWithCyclesArgs {
            amount: None,
            settings,
            specified_id: None,
            sender_canister_version: None,
        };
        let r: mgmt::CanisterIdRecord = self
            .emu
            .management(
                anon(sender),
                "provisional_create_canister_with_cycles",
                &arg,
            )
            .unwrap_or_else(|e| panic!("create_canister failed: {e}"));
        r.canister_id
    }

    fn install_mode(
        &self,
        canister_id: CanisterId,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
        mode: CanisterInstallMode,
    ) -> Result<(), RejectResponse> {
        let a = mgmt::InstallCodeArgs {
            mode,
            canister_id,
            wasm_module,
            arg,
            sender_canister_version: None,
        };
        self.emu.management(anon(sender), "install_code", &a)
    }

    /// Installs code (panics on failure, like pocket-ic).
    pub fn install_canister(
        &self,
        canister_id: CanisterId,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) {
        self.install_mode(
            canister_id,
            wasm_module,
            arg,
            sender,
            CanisterInstallMode::Install,
        )
        .unwrap_or_else(|e| panic!("install_canister failed: {e}"))
    }

    /// Upgrades (pre_upgrade, new module, post_upgrade; stable memory kept).
    pub fn upgrade_canister(
        &self,
        canister_id: CanisterId,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.install_mode(
            canister_id,
            wasm_module,
            arg,
            sender,
            CanisterInstallMode::Upgrade(None),
        )
    }

    /// Reinstalls (heap and stable memory cleared).
    pub fn reinstall_canister(
        &self,
        canister_id: CanisterId,
        wasm_module: Vec<u8>,
        arg: Vec<u8>,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.install_mode(
            canister_id,
            wasm_module,
            arg,
            sender,
            CanisterInstallMode::Reinstall,
        )
    }

    /// Removes the code.
    pub fn uninstall_canister(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.on_canister(sender, "uninstall_code", canister_id)
    }

    /// Uploads a chunk; returns its hash.
    pub fn upload_chunk(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
        chunk: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        let r: mgmt::ChunkHash = self.emu.management(
            anon(sender),
            "upload_chunk",
            &mgmt::UploadChunkArgs { canister_id, chunk },
        )?;
        Ok(r.hash)
    }

    /// Hashes of the stored chunks.
    pub fn stored_chunks(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
    ) -> Result<Vec<Vec<u8>>, RejectResponse> {
        let r: Vec<mgmt::ChunkHash> = self.on_canister(sender, "stored_chunks", canister_id)?;
        Ok(r.into_iter().map(|h| h.hash).collect())
    }

    /// Clears the chunk store.
    pub fn clear_chunk_store(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.on_canister(sender, "clear_chunk_store", canister_id)
    }

    /// Installs code assembled from chunks.
    #[allow(clippy::too_many_arguments)]
    pub fn install_chunked_canister(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
        mode: CanisterInstallMode,
        store_canister_id: CanisterId,
        chunk_hashes_list: Vec<Vec<u8>>,
        wasm_module_hash: Vec<u8>,
        arg: Vec<u8>,
    ) -> Result<(), RejectResponse> {
        let a = mgmt::InstallChunkedCodeArgs {
            mode,
            target_canister: canister_id,
            store_canister: Some(store_canister_id),
            chunk_hashes_list: chunk_hashes_list
                .into_iter()
                .map(|hash| mgmt::ChunkHash { hash })
                .collect(),
            wasm_module_hash,
            arg,
            sender_canister_version: None,
        };
        self.emu
            .management(anon(sender), "install_chunked_code", &a)
    }

    /// Changes settings.
    pub fn update_canister_settings(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
        settings: CanisterSettings,
    ) -> Result<(), RejectResponse> {
        let a = mgmt::UpdateSettingsArgs {
            canister_id,
            settings,
            sender_canister_version: None,
        };
        self.emu.management(anon(sender), "update_settings", &a)
    }

    /// Sets the controllers.
    pub fn set_controllers(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
        new_controllers: Vec<Principal>,
    ) -> Result<(), RejectResponse> {
        let settings = CanisterSettings {
            controllers: Some(new_controllers),
            ..Default::default()
        };
        self.update_canister_settings(canister_id, sender, settings)
    }

    /// Starts a canister.
    pub fn start_canister(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.on_canister(sender, "start_canister", canister_id)
    }

    /// Stops a canister (runs rounds until its open call contexts are closed).
    pub fn stop_canister(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.on_canister(sender, "stop_canister", canister_id)
    }

    /// Deletes a stopped canister.
    pub fn delete_canister(
        &self,
        canister_id: CanisterId,
        sender: Option<Principal>,
    ) -> Result<(), RejectResponse> {
        self.on_canister(sender, "delete_canister", canister_id)
    }

    /// Whether the canister exists.
    pub fn canister_exists(&self, canister_id: CanisterId) -> bool {
        self.emu.canister_exists(canister_id)
    }

    /// The whole stable memory.
    pub fn get_stable_memory(&self, canister_id: CanisterId) -> Vec<u8> {
        self.emu
            .lock()
            .canisters
            .get(&canister_id)
            .map(|c| c.stable.to_bytes())
            .unwrap_or_default()
    }

    /// Replaces the stable memory.
    pub fn set_stable_memory(
        &self,
        canister_id: CanisterId,
        data: Vec<u8>,
        compression: BlobCompression,
    ) {
        let data = match compression {
            BlobCompression::NoCompression => data,
            BlobCompression::Gzip => {
                use std::io::Read;
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&data[..])
                    .read_to_end(&mut out)
                    .expect("gzip stable memory");
                out
            }
        };
        if let Some(c) = self.emu.lock().canisters.get_mut(&canister_id) {
            c.stable.set_bytes(&data);
        }
    }
}

/// Candid update call as the anonymous principal, as `pocket_ic::update_candid`.
pub fn update_candid<I: ArgumentEncoder, O: for<'a> ArgumentDecoder<'a>>(
    env: &PocketIc,
    canister_id: CanisterId,
    method: &str,
    input: I,
) -> Result<O, RejectResponse> {
    update_candid_as(env, canister_id, Principal::anonymous(), method, input)
}

/// Candid update call as `sender`.
pub fn update_candid_as<I: ArgumentEncoder, O: for<'a> ArgumentDecoder<'a>>(
    env: &PocketIc,
    canister_id: CanisterId,
    sender: Principal,
    method: &str,
    input: I,
) -> Result<O, RejectResponse> {
    env.emu.update_candid(canister_id, sender, method, input)
}

/// Candid query call as the anonymous principal.
pub fn query_candid<I: ArgumentEncoder, O: for<'a> ArgumentDecoder<'a>>(
    env: &PocketIc,
    canister_id: CanisterId,
    method: &str,
    input: I,
) -> Result<O, RejectResponse> {
    query_candid_as(env, canister_id, Principal::anonymous(), method, input)
}

/// Candid query call as `sender`.
pub fn query_candid_as<I: ArgumentEncoder, O: for<'a> ArgumentDecoder<'a>>(
    env: &PocketIc,
    canister_id: CanisterId,
    sender: Principal,
    method: &str,
    input: I,
) -> Result<O, RejectResponse> {
    env.emu.query_candid(canister_id, sender, method, input)
}

/// Candid update call, as `pocket_ic::call_candid` (the effective principal is ignored).
pub fn call_candid<I: ArgumentEncoder, O: for<'a> ArgumentDecoder<'a>>(
    env: &PocketIc,
    canister_id: CanisterId,
    _effective_principal: RawEffectivePrincipal,
    method: &str,
    input: I,
) -> Result<O, RejectResponse> {
    update_candid(env, canister_id, method, input)
}

/// Candid update call as `sender`, as `pocket_ic::call_candid_as`.
pub fn call_candid_as<I: ArgumentEncoder, O: for<'a> ArgumentDecoder<'a>>(
    env: &PocketIc,
    canister_id: CanisterId,
    _effective_principal: RawEffectivePrincipal,
    sender: Principal,
    method: &str,
    input: I,
) -> Result<O, RejectResponse> {
    update_candid_as(env, canister_id, sender, method, input)
}
