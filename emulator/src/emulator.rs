//! [`Emulator`]: the public handle, with fault injection, statistics, logs and a trace.
//!
//! Methods take `&self` (the state sits behind a mutex), like `pocket_ic::PocketIc`.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use candid::{CandidType, Principal};
use serde::de::DeserializeOwned;

use crate::cycles::Config;
use crate::faults::RejectRule;
use crate::reject::{ErrorCode, RejectCode, RejectResponse};
use crate::scheduler::Inner;
use crate::state::{Message, Origin, reject};
use crate::stats::{CanisterStats, LogLine, TraceEvent, TraceKind};

/// Id of a submitted ingress message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// A deterministic single-process IC.
pub struct Emulator {
    inner: Mutex<Inner>,
}

impl Default for Emulator {
    fn default() -> Self {
        Self::new()
    }
}

impl Emulator {
    /// An empty subnet with the IC's default limits and prices.
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// An empty subnet with `config`.
    pub fn with_config(config: Config) -> Self {
        Self {
            inner: Mutex::new(Inner::new(config)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current configuration.
    pub fn config(&self) -> Config {
        self.lock().config.clone()
    }

    /// Changes the configuration (limits, prices, time per round) from now on.
    pub fn update_config(&self, f: impl FnOnce(&mut Config)) {
        f(&mut self.lock().config)
    }

    /// A stable principal for a named test identity (`"alice"`, `"admin"`...).
    pub fn identity(name: &str) -> Principal {
        Principal::self_authenticating(name.as_bytes())
    }

    // ---- time and rounds

    /// Runs one round.
    pub fn tick(&self) {
        self.lock().tick()
    }

    /// Runs `n` rounds.
    pub fn tick_n(&self, n: u64) {
        let mut g = self.lock();
        for _ in 0..n {
            g.tick();
        }
    }

    /// Runs rounds until no message is in flight (at most `max` rounds); returns rounds run.
    pub fn run_until_idle(&self, max: u64) -> u64 {
        let mut g = self.lock();
        let mut n = 0;
        while n < max && !g.queue.is_empty() {
            g.tick();
            n += 1;
        }
        n
    }

    /// Moves time forward (no round runs).
    pub fn advance_time(&self, d: Duration) {
        self.lock().time += d.as_nanos() as u64;
    }

    /// Sets the time (nanoseconds since the epoch).
    pub fn set_time_nanos(&self, t: u64) {
        self.lock().time = t;
    }

    /// Current time in nanoseconds since the epoch.
    pub fn time_nanos(&self) -> u64 {
        self.lock().time
    }

    /// Rounds run so far.
    pub fn round(&self) -> u64 {
        self.lock().round
    }

    // ---- messages

    /// Submits an ingress update call; it executes in the next round.
    pub fn submit(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<MessageId, RejectResponse> {
        self.submit_with_cycles(canister, sender, method, arg, 0)
    }

    /// Submits an ingress update call carrying `cycles` (a test convenience: on the IC ingress
    /// messages carry no cycles and a cycles wallet canister forwards them). Cycles the callee
    /// does not accept are dropped with the reply.
    pub fn submit_with_cycles(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
        cycles: u128,
    ) -> Result<MessageId, RejectResponse> {
        let mut g = self.lock();
        let size = method.len() + arg.len();
        if size > g.config.max_ingress_bytes {
            return Err(reject(
                ErrorCode::CanisterRejectedMessage,
                format!(
                    "Ingress message of {size} bytes exceeds the limit of {} bytes",
                    g.config.max_ingress_bytes
                ),
            ));
        }
        if canister != Principal::management_canister() && !g.canisters.contains_key(&canister) {
            return Err(reject(
                ErrorCode::CanisterNotFound,
                format!("Canister {canister} not found"),
            ));
        }
        if canister != Principal::management_canister() {
            g.inspect_message(canister, sender, method, &arg)?;
        }
        let id = g.book.id();
        g.book.ingress.insert(id, None);
        g.trace(
            TraceKind::Ingress,
            sender,
            canister,
            method,
            format!("{} bytes", arg.len()),
        );
        g.enqueue(Message::Request {
            from: sender,
            to: canister,
            method: method.into(),
            arg,
            cycles,
            origin: Origin::Ingress(id),
            deadline: 0,
        });
        Ok(MessageId(id))
    }

    /// The result of an ingress message, if it completed.
    pub fn ingress_status(&self, id: MessageId) -> Option<Result<Vec<u8>, RejectResponse>> {
        self.lock().book.ingress.get(&id.0).cloned().flatten()
    }

    /// Runs rounds until the message completes (at most `max_rounds_per_call`).
    pub fn await_message(&self, id: MessageId) -> Result<Vec<u8>, RejectResponse> {
        let mut g = self.lock();
        let max = g.config.max_rounds_per_call;
        for _ in 0..=max {
            match g.book.ingress.get(&id.0) {
                Some(Some(r)) => return r.clone(),
                Some(None) => g.tick(),
                None => {
                    return Err(reject(
                        ErrorCode::IngressMessageTimeout,
                        format!("unknown message {}", id.0),
                    ));
                }
            }
        }
        Err(reject(
            ErrorCode::IngressMessageTimeout,
            format!(
                "message {} did not complete within {max} rounds (paused or waiting forever?)",
                id.0
            ),
        ))
    }

    /// Submits an update call and runs rounds until it completes (its result is not kept in
    /// the ingress history).
    pub fn update(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.update_with_cycles(canister, sender, method, arg, 0)
    }

    /// [`update`](Self::update) carrying `cycles`, as [`submit_with_cycles`](Self::submit_with_cycles).
    pub fn update_with_cycles(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
        cycles: u128,
    ) -> Result<Vec<u8>, RejectResponse> {
        let id = self.submit_with_cycles(canister, sender, method, arg, cycles)?;
        let result = self.await_message(id);
        self.lock().book.ingress.remove(&id.0);
        result
    }

    /// The result of an ingress message if it completed, removing it from the ingress history
    /// (for long-running drivers that poll and must not accumulate replies).
    pub fn take_ingress_status(&self, id: MessageId) -> Option<Result<Vec<u8>, RejectResponse>> {
        let mut g = self.lock();
        match g.book.ingress.get(&id.0) {
            Some(Some(_)) => g.book.ingress.remove(&id.0).flatten(),
            _ => None,
        }
    }

    // ---- persistence

    /// Saves the whole state to `dir`, incrementally when `dir` is where it was last saved to
    /// or loaded from: only pages changed since then are written (see [`crate::snapshot`]).
    /// Any state can be saved (also with messages in flight); it is taken between rounds.
    pub fn save_state(
        &self,
        dir: &std::path::Path,
    ) -> Result<crate::SaveReport, crate::EmulatorError> {
        self.lock().save_to(dir)
    }

    /// Loads a state saved by [`save_state`](Self::save_state).
    pub fn load_state(dir: &std::path::Path) -> Result<Self, crate::EmulatorError> {
        Ok(Self {
            inner: Mutex::new(Inner::load_from(dir)?),
        })
    }

    /// Runs a query on the current state; nothing it does is kept.
    pub fn query(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        self.lock().query_now(canister, sender, method, arg)
    }

    /// Candid update call: encodes `args`, decodes the reply (panics on a decoding error).
    pub fn update_candid<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        args: A,
    ) -> Result<R, RejectResponse> {
        let bytes = self.update(canister, sender, method, encode(args))?;
        Ok(decode_reply(method, &bytes))
    }

    /// Candid query call.
    pub fn query_candid<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
        &self,
        canister: Principal,
        sender: Principal,
        method: &str,
        args: A,
    ) -> Result<R, RejectResponse> {
        let bytes = self.query(canister, sender, method, encode(args))?;
        Ok(decode_reply(method, &bytes))
    }

    /// Calls the management canister as `sender` (an ingress message) and decodes the reply.
    pub fn management<A: CandidType, R: DeserializeOwned + CandidType>(
        &self,
        sender: Principal,
        method: &str,
        arg: &A,
    ) -> Result<R, RejectResponse> {
        let bytes = self.update(
            Principal::management_canister(),
            sender,
            method,
            candid::encode_one(arg).expect("encode"),
        )?;
        Ok(
            candid::decode_one(&bytes)
                .unwrap_or_else(|e| panic!("decoding reply of {method}: {e}")),
        )
    }

    // ---- faults

    /// Rejects the next `n` requests to `canister` (and `method`, if given) with `code`.
    /// With `Principal::management_canister()` it rejects requests to `aaaaa-aa` (from
    /// canisters and ingress alike), e.g. `create_canister` or `install_code`.
    pub fn reject_next(
        &self,
        canister: Principal,
        method: Option<&str>,
        n: u32,
        code: RejectCode,
        message: &str,
    ) {
        self.lock().faults.reject_rules.push(RejectRule {
            canister,
            method: method.map(Into::into),
            remaining: n,
            code,
            message: message.into(),
        });
    }

    /// Makes `method` of `canister` trap as soon as it is called (until [`Self::clear_faults`]).
    pub fn trap_method(&self, canister: Principal, method: &str) {
        self.lock()
            .faults
            .trapping_methods
            .insert((canister, method.into()));
    }

    /// Delays delivery of every message to `canister` by `rounds` extra rounds (0 clears).
    pub fn delay_delivery(&self, canister: Principal, rounds: u64) {
        self.lock().faults.delays.insert(canister, rounds);
    }

    /// Holds every message to `canister` (use `Principal::management_canister()` for `aaaaa-aa`).
    pub fn pause(&self, canister: Principal) {
        self.lock().faults.paused.insert(canister);
    }

    /// Resumes delivery to `canister`.
    pub fn resume(&self, canister: Principal) {
        self.lock().faults.paused.remove(&canister);
    }

    /// Makes the next `n` `create_canister` calls fail.
    pub fn fail_next_create_canister(&self, n: u32) {
        self.lock().faults.fail_create_canister = n;
    }

    /// Makes the next `n` `install_code` calls fail.
    pub fn fail_next_install_code(&self, n: u32) {
        self.lock().faults.fail_install_code = n;
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults = Default::default();
    }

    /// Sets a canister's cycle balance.
    pub fn set_cycles(&self, canister: Principal, amount: u128) {
        if let Some(c) = self.lock().canisters.get_mut(&canister) {
            c.balance = amount;
        }
    }

    /// Sets a canister's balance to zero.
    pub fn drain_cycles(&self, canister: Principal) {
        self.set_cycles(canister, 0)
    }

    // ---- observability

    /// Statistics of `canister`.
    pub fn stats(&self, canister: Principal) -> CanisterStats {
        self.lock()
            .stats
            .get(&canister)
            .cloned()
            .unwrap_or_default()
    }

    /// Every captured `debug_print` line.
    pub fn logs(&self) -> Vec<LogLine> {
        self.lock().logs.clone()
    }

    /// The `debug_print` lines of one canister.
    pub fn debug_prints(&self, canister: Principal) -> Vec<String> {
        self.lock()
            .logs
            .iter()
            .filter(|l| l.canister == canister)
            .map(|l| l.text.clone())
            .collect()
    }

    /// The message trace.
    pub fn trace(&self) -> Vec<TraceEvent> {
        self.lock().trace.clone()
    }

    /// The message trace, one event per line (print it when a test fails).
    pub fn trace_string(&self) -> String {
        self.lock().trace.iter().map(|e| format!("{e}\n")).collect()
    }

    /// Clears statistics, captured logs and the trace (e.g. after a benchmark's setup).
    pub fn clear_observations(&self) {
        let mut g = self.lock();
        g.stats.clear();
        g.logs.clear();
        g.trace.clear();
    }

    /// Turns the message trace on or off (on by default).
    pub fn set_tracing(&self, on: bool) {
        self.lock().tracing = on;
    }

    /// Ids of all canisters.
    pub fn canister_ids(&self) -> Vec<Principal> {
        self.lock().canisters.keys().copied().collect()
    }

    /// Whether `canister` exists.
    pub fn canister_exists(&self, canister: Principal) -> bool {
        self.lock().canisters.contains_key(&canister)
    }

    /// Messages in flight.
    pub fn messages_in_flight(&self) -> usize {
        self.lock().queue.len()
    }

    /// The canister log of `canister` without access checks: `(index, timestamp, text)`.
    pub fn canister_log(&self, canister: Principal) -> Vec<(u64, u64, String)> {
        self.lock()
            .canisters
            .get(&canister)
            .map(|c| {
                c.logs
                    .iter()
                    .map(|(i, t, m)| (*i, *t, String::from_utf8_lossy(m).into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `canister_status` of `canister` without access checks (`None` if it does not exist).
    pub fn canister_status(
        &self,
        canister: Principal,
    ) -> Option<ic_management_canister_types::CanisterStatusResult> {
        let g = self.lock();
        g.canisters
            .contains_key(&canister)
            .then(|| g.status_of(canister))
    }

    /// The full history of `canister` (every change `canister_info` would list, oldest first),
    /// without access checks (`None` if it does not exist). On the IC only canisters may call
    /// `canister_info`; this is the test's view of the same record.
    pub fn canister_history(
        &self,
        canister: Principal,
    ) -> Option<Vec<ic_management_canister_types::Change>> {
        self.lock()
            .canisters
            .get(&canister)
            .map(|c| c.history.clone())
    }

    /// Sets who makes the certificates non-replicated queries see (`ic0.data_certificate_*`).
    pub fn set_certifier(&self, certifier: std::sync::Arc<dyn crate::Certifier>) {
        self.lock().certifier = Some(certifier);
    }

    /// What the state tree shows of every canister, and the time, read at one instant.
    pub fn certified_state(&self) -> (u64, Vec<crate::CertifiedCanister>) {
        let g = self.lock();
        let canisters = g
            .canisters
            .values()
            .map(|c| {
                let mut controllers = c.controllers.clone();
                controllers.sort();
                crate::CertifiedCanister {
                    id: c.id,
                    controllers,
                    module_hash: c.module_hash,
                    certified_data: c.certified_data.clone(),
                    metadata: c
                        .instance
                        .as_ref()
                        .map(|i| i.module().info.metadata.clone())
                        .unwrap_or_default(),
                }
            })
            .collect();
        (g.time, canisters)
    }

    /// Statistics of every canister that has any.
    pub fn all_stats(&self) -> Vec<(Principal, CanisterStats)> {
        self.lock()
            .stats
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// The active faults.
    pub fn faults(&self) -> crate::faults::Faults {
        self.lock().faults.clone()
    }
}

/// Candid arguments of a test call (panics on an encoding error).
fn encode<A: ArgumentEncoder>(args: A) -> Vec<u8> {
    candid::encode_args(args).expect("encode")
}

/// The candid reply of `method` (panics on a decoding error: the caller named the wrong type).
fn decode_reply<R: for<'a> ArgumentDecoder<'a>>(method: &str, bytes: &[u8]) -> R {
    candid::decode_args(bytes).unwrap_or_else(|e| panic!("decoding reply of {method}: {e}"))
}
