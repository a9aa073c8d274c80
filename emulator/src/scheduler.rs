//! Rounds, message delivery and execution: the heart of the emulator.
//!
//! A round (the replica's `execute_round`): time advances; due global timers fire and heartbeats
//! run; bounded-wait calls past their deadline get a `SYS_UNKNOWN` reject; then *inner
//! iterations* (the replica's `inner_round`): every message queued for this round or earlier is
//! delivered in FIFO order, and the calls and responses between canisters that those executions
//! produce are delivered in the next iteration of the same round (the replica inducts messages
//! between canisters of one subnet after each iteration), until nothing is left or the round's
//! instruction budget ([`Config::round_instructions`]) is spent. A message is always delivered
//! only after the message that made it has committed. Requests to the management canister and
//! its responses take the replica's slow path through message routing: they are delivered in
//! the next round (a canister's management call is answered two rounds later), as are rejects
//! the replica generates at induction (unknown, stopped or stopping callee).

use std::collections::{BTreeMap, VecDeque};

use candid::Principal;

use crate::cycles::Config;
use crate::engine::system_api::ApiLimits;
use crate::engine::{ApiType, CanisterInstance, Entry, Execution, MessageCtx, Response, TrapKind};
use crate::faults::Faults;
use crate::reject::{ErrorCode, RejectCode, RejectResponse};
use crate::state::{
    Bookkeeping, CallContext, Callback, Canister, Message, Origin, Payload, Queued, Status, reject,
};
use crate::stats::{CanisterStats, LogLine, TraceEvent, TraceKind};

/// The whole emulated subnet.
pub struct Inner {
    /// Limits and prices.
    pub config: Config,
    /// Current time (ns).
    pub time: u64,
    /// Current round.
    pub round: u64,
    /// Canisters.
    pub canisters: BTreeMap<Principal, Canister>,
    /// Index of the next canister id.
    pub next_canister_index: u64,
    /// Messages in flight.
    pub queue: VecDeque<Queued>,
    /// Call contexts, callbacks, ingress results.
    pub book: Bookkeeping,
    /// Injected faults.
    pub faults: Faults,
    /// Statistics.
    pub stats: BTreeMap<Principal, CanisterStats>,
    /// Message trace.
    pub trace: Vec<TraceEvent>,
    /// Captured `debug_print` lines (all canisters, queries included).
    pub logs: Vec<LogLine>,
    /// Who waits for a canister to stop.
    pub stop_waiters: BTreeMap<Principal, Vec<Origin>>,
    /// Counter for `raw_rand`.
    pub rand_counter: u64,
    /// Whether the trace records events.
    pub tracing: bool,
    /// Whether a round is executing (messages produced now are delivered in this round).
    pub(crate) in_round: bool,
    /// Instructions executed in the current round, all canisters together.
    pub(crate) round_total: u64,
    /// Instructions executed in the current round by the busiest canister.
    pub(crate) round_max: u64,
    /// Finalization overhead charged to the current round's budget by its inner iterations.
    pub(crate) round_overhead: u64,
    /// The directory this state was last saved to or loaded from (incremental saves).
    pub(crate) persisted: Option<crate::snapshot::Persisted>,
    /// Makes the certificates non-replicated queries see (none: they see none).
    pub(crate) certifier: Option<std::sync::Arc<dyn crate::certify::Certifier>>,
}

/// The IC's trap reject for a canister.
pub fn trap_reject(canister: Principal, trap: &TrapKind) -> RejectResponse {
    let code = match trap {
        TrapKind::Called(_) => ErrorCode::CanisterCalledTrap,
        TrapKind::Wasm(_) => ErrorCode::CanisterTrapped,
        TrapKind::InstructionLimit(_) => ErrorCode::CanisterInstructionLimitExceeded,
        TrapKind::ContractViolation(_) => ErrorCode::CanisterContractViolation,
        TrapKind::OutOfMemory(_) => ErrorCode::CanisterOutOfMemory,
    };
    reject(code, format!("Error from Canister {canister}: {trap}"))
}

/// An error code that fits a reject code (for injected rejects).
pub fn error_code_for(code: RejectCode) -> ErrorCode {
    match code {
        RejectCode::SysFatal => ErrorCode::SubnetOversubscribed,
        RejectCode::SysTransient => ErrorCode::CanisterQueueFull,
        RejectCode::DestinationInvalid => ErrorCode::CanisterNotFound,
        RejectCode::CanisterReject => ErrorCode::CanisterRejectedMessage,
        RejectCode::CanisterError => ErrorCode::CanisterCalledTrap,
        RejectCode::SysUnknown => ErrorCode::DeadlineExpired,
    }
}

impl Inner {
    /// A fresh subnet.
    pub fn new(config: Config) -> Self {
        Self {
            time: config.initial_time_nanos,
            config,
            round: 0,
            canisters: BTreeMap::new(),
            next_canister_index: 0,
            queue: VecDeque::new(),
            book: Bookkeeping::default(),
            faults: Faults::default(),
            stats: BTreeMap::new(),
            trace: Vec::new(),
            logs: Vec::new(),
            stop_waiters: BTreeMap::new(),
            rand_counter: 0,
            tracing: true,
            persisted: None,
            in_round: false,
            round_total: 0,
            round_max: 0,
            round_overhead: 0,
            certifier: None,
        }
    }

    pub(crate) fn trace(
        &mut self,
        kind: TraceKind,
        from: Principal,
        to: Principal,
        method: &str,
        detail: String,
    ) {
        if !self.tracing {
            return;
        }
        self.trace.push(TraceEvent {
            round: self.round,
            kind,
            from,
            to,
            method: method.into(),
            detail,
        });
    }

    /// Queues `message` (plus any injected delay): produced by an execution during a round, a
    /// message between canisters is delivered in the same round (next inner iteration); a
    /// request to the management canister, and anything queued between rounds (ingress), in
    /// the next round.
    pub fn enqueue(&mut self, message: Message) {
        let to_subnet = matches!(&message, Message::Request { to, .. }
            if *to == Principal::management_canister());
        self.enqueue_at(message, !self.in_round || to_subnet);
    }

    /// Queues `message` for this round (`next_round == false`, only meaningful during a round)
    /// or the next, plus any injected delay.
    fn enqueue_at(&mut self, message: Message, next_round: bool) {
        let delay = self
            .faults
            .delays
            .get(&message.destination())
            .copied()
            .unwrap_or(0);
        let base = if next_round || !self.in_round {
            self.round + 1
        } else {
            self.round
        };
        self.queue.push_back(Queued {
            round: base + delay,
            message,
        });
    }

    /// Answers whoever waits on `origin` with a canister's response (delivered within the
    /// round to a canister caller).
    pub fn respond(&mut self, origin: &Origin, payload: Payload, refund: u128) {
        self.respond_at(origin, payload, refund, false)
    }

    /// Answers whoever waits on `origin` with a response from the subnet (the management
    /// canister, stop requests, induction-time rejects): a canister caller gets it in the next
    /// round, as responses through message routing arrive on the replica.
    pub fn respond_from_subnet(&mut self, origin: &Origin, payload: Payload, refund: u128) {
        self.respond_at(origin, payload, refund, true)
    }

    fn respond_at(&mut self, origin: &Origin, payload: Payload, refund: u128, next: bool) {
        match origin {
            Origin::Ingress(id) => {
                self.book.ingress.insert(*id, Some(payload));
            }
            Origin::Canister { caller, callback } => self.enqueue_at(
                Message::Response {
                    callback: *callback,
                    to: *caller,
                    payload,
                    refund,
                },
                next,
            ),
            Origin::System => {}
        }
    }

    /// Instructions the current round has used against [`Config::round_instructions`]: its
    /// canisters run on `scheduler_cores` threads, so the busiest canister or the total spread
    /// over the threads, plus the finalization overhead of its inner iterations.
    fn round_used(&self) -> u64 {
        let cores = self.config.scheduler_cores.max(1);
        self.round_max.max(self.round_total / cores) + self.round_overhead
    }

    fn round_budget_spent(&self) -> bool {
        self.round_used() >= self.config.round_instructions
    }

    /// Runs one round.
    pub fn tick(&mut self) {
        self.round += 1;
        self.time += self.config.time_per_round.as_nanos() as u64;
        for c in self.canisters.values_mut() {
            c.round_instructions = 0;
            c.round_heap_delta = 0;
        }
        self.round_total = 0;
        self.round_max = 0;
        self.round_overhead = 0;
        self.in_round = true;
        // Heartbeats and global timers run first, in the first iteration (replica:
        // `add_heartbeat_and_global_timer_tasks`).
        self.fire_timers();
        self.run_heartbeats();
        self.expire_deadlines();
        // Inner iterations: what one iteration's executions send to canisters is delivered in
        // the next, within this round, until nothing is deliverable or the budget is spent. As
        // the replica's loop, the budget is checked between iterations (within one, a canister
        // stops at its own per-round limit), so a budget of 1 makes every round one iteration.
        loop {
            let pending = std::mem::take(&mut self.queue);
            let mut held = VecDeque::new();
            let mut delivered = 0u64;
            for q in pending {
                let dest = q.message.destination();
                let busy = self.canisters.get(&dest).is_some_and(|c| {
                    c.round_instructions >= self.config.round_instructions_per_canister
                        || c.round_heap_delta >= self.config.heap_delta_per_round
                });
                if q.round > self.round || self.faults.paused.contains(&dest) || busy {
                    held.push_back(q);
                    continue;
                }
                self.deliver(q.message);
                delivered += 1;
            }
            held.extend(self.queue.drain(..));
            self.queue = held;
            // The replica charges each iteration's finalization to the round's budget.
            self.round_overhead += 12_000 * self.canisters.len() as u64;
            if delivered == 0 || self.round_budget_spent() {
                break;
            }
        }
        self.in_round = false;
        // Stopping canisters become stopped at the end of the round (replica:
        // `process_stopping_canisters`).
        self.complete_stops();
    }

    fn fire_timers(&mut self) {
        let due: Vec<Principal> = self
            .canisters
            .values()
            .filter(|c| {
                c.status == Status::Running
                    && c.global_timer != 0
                    && c.global_timer <= self.time
                    && c.instance
                        .as_ref()
                        .is_some_and(|i| i.module().exports("canister_global_timer"))
                    && !self.faults.paused.contains(&c.id)
            })
            .map(|c| c.id)
            .collect();
        for id in due {
            self.canisters.get_mut(&id).unwrap().global_timer = 0;
            self.run_system_task(id, "canister_global_timer");
        }
    }

    /// Runs `canister_heartbeat` of every running canister that exports it.
    fn run_heartbeats(&mut self) {
        let due: Vec<Principal> = self
            .canisters
            .values()
            .filter(|c| {
                c.status == Status::Running
                    && c.instance
                        .as_ref()
                        .is_some_and(|i| i.module().exports("canister_heartbeat"))
                    && !self.faults.paused.contains(&c.id)
            })
            .map(|c| c.id)
            .collect();
        for id in due {
            self.run_system_task(id, "canister_heartbeat");
        }
    }

    /// Runs a system task (global timer, heartbeat) in a call context nobody waits on.
    fn run_system_task(&mut self, id: Principal, export: &str) {
        let c = self.canisters.get_mut(&id).unwrap();
        c.open_call_contexts += 1;
        let ctx = self.book.id();
        self.book.call_contexts.insert(
            ctx,
            CallContext {
                canister: id,
                origin: Origin::System,
                method: export.into(),
                caller: id,
                responded: true,
                cycles_available: 0,
                outstanding: 0,
                instructions: 0,
                deadline: 0,
                last_trap: None,
            },
        );
        self.trace(TraceKind::Timer, id, id, export, String::new());
        let entry = Entry::Export(export.into());
        self.execute(id, ctx, ApiType::Timer, entry, Vec::new(), None, 0, true);
        self.close_if_done(ctx);
    }

    fn expire_deadlines(&mut self) {
        let now = self.time;
        let mut expired: Vec<(u64, Principal)> = self
            .book
            .callbacks
            .iter()
            .filter(|(_, cb)| cb.deadline.is_some_and(|d| d <= now))
            .map(|(id, cb)| (*id, cb.canister))
            .collect();
        expired.sort();
        for (id, caller) in expired {
            if let Some(cb) = self.book.callbacks.get_mut(&id) {
                cb.deadline = None;
                let (callee, method) = (cb.callee, cb.method.clone());
                self.trace(
                    TraceKind::Timeout,
                    caller,
                    callee,
                    &method,
                    "deadline expired".into(),
                );
                // Delivered in this round, before anything else can answer it.
                self.queue.push_front(Queued {
                    round: self.round,
                    message: Message::Response {
                        callback: id,
                        to: caller,
                        payload: Err(reject(
                            ErrorCode::DeadlineExpired,
                            "Call deadline has expired.",
                        )),
                        refund: 0,
                    },
                });
            }
        }
    }

    fn complete_stops(&mut self) {
        let stopped: Vec<Principal> = self
            .canisters
            .values()
            .filter(|c| c.status == Status::Stopping && c.open_call_contexts == 0)
            .map(|c| c.id)
            .collect();
        for id in stopped {
            self.canisters.get_mut(&id).unwrap().status = Status::Stopped;
            for origin in self.stop_waiters.remove(&id).unwrap_or_default() {
                self.respond_from_subnet(&origin, Ok(candid::encode_args(()).unwrap()), 0);
            }
        }
    }

    fn deliver(&mut self, message: Message) {
        match message {
            Message::Request {
                from,
                to,
                method,
                arg,
                cycles,
                origin,
                deadline,
            } => {
                if deadline != 0 && deadline <= self.time {
                    // An expired best-effort request is dropped; the caller got SYS_UNKNOWN.
                    return;
                }
                if to == Principal::management_canister() {
                    if let Some((code, msg)) = self.faults.take_reject(to, &method) {
                        let r = RejectResponse {
                            reject_code: code,
                            reject_message: msg,
                            error_code: error_code_for(code),
                            certified: true,
                        };
                        self.trace(
                            TraceKind::Rejected,
                            from,
                            to,
                            &method,
                            r.reject_message.clone(),
                        );
                        self.respond_from_subnet(&origin, Err(r), cycles);
                        return;
                    }
                    self.handle_management(from, &method, &arg, cycles, origin);
                } else {
                    self.deliver_request(from, to, method, arg, cycles, origin, deadline);
                }
            }
            Message::Response {
                callback,
                to,
                payload,
                refund,
            } => self.deliver_response(callback, to, payload, refund),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn deliver_request(
        &mut self,
        from: Principal,
        to: Principal,
        method: String,
        arg: Vec<u8>,
        cycles: u128,
        origin: Origin,
        deadline: u64,
    ) {
        // A reject the replica generates when inducting the request (unknown, stopped or
        // stopping callee; injected rejects are modelled so): the request took the slow path,
        // so the caller gets it in the next round.
        let fail = |inner: &mut Self, r: RejectResponse| {
            inner.trace(
                TraceKind::Rejected,
                from,
                to,
                &method,
                r.reject_message.clone(),
            );
            inner.respond_from_subnet(&origin, Err(r), cycles);
        };
        // A reject from executing the request (no module, no such method, out of cycles):
        // within the round.
        let fail_in_execution = |inner: &mut Self, r: RejectResponse| {
            inner.trace(
                TraceKind::Rejected,
                from,
                to,
                &method,
                r.reject_message.clone(),
            );
            inner.respond(&origin, Err(r), cycles);
        };
        let Some(c) = self.canisters.get(&to) else {
            return fail(
                self,
                reject(
                    ErrorCode::CanisterNotFound,
                    format!("Canister {to} not found"),
                ),
            );
        };
        if let Some((code, msg)) = self.faults.take_reject(to, &method) {
            let r = RejectResponse {
                reject_code: code,
                reject_message: msg,
                error_code: error_code_for(code),
                certified: true,
            };
            return fail(self, r);
        }
        match c.status {
            Status::Stopped => {
                return fail(
                    self,
                    reject(
                        ErrorCode::CanisterStopped,
                        format!("Canister {to} is stopped"),
                    ),
                );
            }
            Status::Stopping => {
                let r = reject(
                    ErrorCode::CanisterStopping,
                    format!("Canister {to} is stopping"),
                );
                return fail(self, r);
            }
            Status::Running => {}
        }
        let Some(inst) = &c.instance else {
            let r = reject(
                ErrorCode::CanisterWasmModuleNotFound,
                format!(
                    "Error from Canister {to}: Attempted to execute a message, but the canister contains no Wasm module."
                ),
            );
            return fail_in_execution(self, r);
        };
        let module = inst.module().clone();
        let (api, export, persist) = if module.exports(&format!("canister_update {method}")) {
            (ApiType::Update, format!("canister_update {method}"), true)
        } else if module.exports(&format!("canister_query {method}")) {
            (ApiType::Query, format!("canister_query {method}"), false)
        } else if module.exports(&crate::composite::export(&method)) {
            // Interface specification, "Composite query methods": never in replicated mode.
            let r = reject(
                ErrorCode::CompositeQueryCalledInReplicatedMode,
                format!(
                    "Error from Canister {to}: Composite query cannot be called in replicated mode"
                ),
            );
            return fail_in_execution(self, r);
        } else {
            let r = reject(
                ErrorCode::CanisterMethodNotFound,
                format!("Error from Canister {to}: Canister has no update method '{method}'."),
            );
            return fail_in_execution(self, r);
        };
        let reserve = self
            .config
            .freezing_reserve(c.memory_size(), c.freezing_threshold);
        if c.balance < reserve + self.config.prices.update_message_fee {
            let r = reject(
                ErrorCode::CanisterOutOfCycles,
                format!(
                    "Canister {to} is out of cycles: balance {}, needs {}",
                    c.balance,
                    reserve + self.config.prices.update_message_fee
                ),
            );
            return fail_in_execution(self, r);
        }
        let ctx = self.book.id();
        let caller = from;
        self.book.call_contexts.insert(
            ctx,
            CallContext {
                canister: to,
                origin: origin.clone(),
                method: method.clone(),
                caller,
                responded: false,
                cycles_available: cycles,
                outstanding: 0,
                instructions: 0,
                deadline,
                last_trap: None,
            },
        );
        self.canisters.get_mut(&to).unwrap().open_call_contexts += 1;
        let st = self.stats.entry(to).or_default();
        let m = st.method(&method);
        m.calls_received += 1;
        m.bytes_in += arg.len() as u64;
        st.total.calls_received += 1;
        st.total.bytes_in += arg.len() as u64;
        self.trace(
            TraceKind::Request,
            from,
            to,
            &method,
            format!("{} bytes, {cycles} cycles", arg.len()),
        );
        if self.faults.trapping_methods.contains(&(to, method.clone())) {
            let r = trap_reject(to, &TrapKind::Called(format!("injected trap in {method}")));
            self.book.call_contexts.get_mut(&ctx).unwrap().last_trap = Some(r);
        } else if let Some(trap) =
            self.execute(to, ctx, api, Entry::Export(export), arg, None, 0, persist)
            && let Some(c) = self.book.call_contexts.get_mut(&ctx)
        {
            c.last_trap = Some(trap_reject(to, &trap));
        }
        self.close_if_done(ctx);
    }

    fn deliver_response(&mut self, callback: u64, to: Principal, payload: Payload, refund: u128) {
        let Some(cb) = self.book.callbacks.remove(&callback) else {
            return; // already answered (deadline) or dropped
        };
        let fee = self.config.prices.call_fee_per_byte
            * payload.as_ref().map(|b| b.len()).unwrap_or(0) as u128;
        let Some(c) = self.canisters.get_mut(&to) else {
            return;
        };
        c.balance = (c.balance + refund).saturating_sub(fee);
        let runnable = c.instance.is_some() && c.code_generation == cb.code_generation;
        let detail = match &payload {
            Ok(b) => format!("reply {} bytes, refund {refund}", b.len()),
            Err(r) => format!("reject {:?}: {}", r.reject_code, r.reject_message),
        };
        self.trace(TraceKind::Response, cb.callee, to, &cb.method, detail);
        if runnable && self.book.call_contexts.contains_key(&cb.call_context) {
            let (api, entry, arg, rej) = match payload {
                Ok(bytes) => (
                    ApiType::ReplyCallback,
                    Entry::Closure(cb.reply.0, cb.reply.1),
                    bytes,
                    None,
                ),
                Err(r) => (
                    ApiType::RejectCallback,
                    Entry::Closure(cb.reject.0, cb.reject.1),
                    Vec::new(),
                    Some((r.reject_code as u32, r.reject_message)),
                ),
            };
            if let Some(trap) =
                self.execute(to, cb.call_context, api, entry, arg, rej, refund, true)
            {
                let mut r = trap_reject(to, &trap);
                if let Some((f, env)) = cb.cleanup {
                    let entry = Entry::Closure(f, env);
                    let cleanup_trap = self.execute(
                        to,
                        cb.call_context,
                        ApiType::Cleanup,
                        entry,
                        Vec::new(),
                        None,
                        0,
                        true,
                    );
                    // As the replica (`HypervisorError::Cleanup`): the callback's error code,
                    // both messages.
                    if let Some(t) = cleanup_trap {
                        let cleanup = trap_reject(to, &t);
                        r.reject_message = format!(
                            "{}\n\ncall_on_cleanup also failed:\n\n{}",
                            r.reject_message, cleanup.reject_message
                        );
                    }
                }
                if let Some(ctx) = self.book.call_contexts.get_mut(&cb.call_context) {
                    ctx.last_trap = Some(r);
                }
            }
        }
        if let Some(ctx) = self.book.call_contexts.get_mut(&cb.call_context) {
            ctx.outstanding = ctx.outstanding.saturating_sub(1);
        }
        self.close_if_done(cb.call_context);
    }

    /// Closes a call context with no outstanding callbacks, rejecting it if it never replied.
    pub fn close_if_done(&mut self, ctx_id: u64) {
        let Some(ctx) = self.book.call_contexts.get(&ctx_id) else {
            return;
        };
        if ctx.outstanding > 0 {
            return;
        }
        let ctx = self.book.call_contexts.remove(&ctx_id).unwrap();
        if !ctx.responded {
            let r = ctx.last_trap.clone().unwrap_or_else(|| {
                reject(
                    ErrorCode::CanisterDidNotReply,
                    format!(
                        "Error from Canister {}: Canister did not produce a response",
                        ctx.canister
                    ),
                )
            });
            self.respond(&ctx.origin, Err(r), ctx.cycles_available);
        }
        if let Some(c) = self.canisters.get_mut(&ctx.canister) {
            c.open_call_contexts = c.open_call_contexts.saturating_sub(1);
        }
    }

    /// The system-API context for running code of `c`.
    pub fn base_ctx(
        &self,
        c: &Canister,
        api: ApiType,
        caller: Principal,
        limit: u64,
    ) -> MessageCtx {
        MessageCtx {
            api: Some(api),
            canister_id: Some(c.id),
            caller: Some(caller),
            time: self.time,
            controllers: c.controllers.clone(),
            balance: c.balance,
            global_timer: c.global_timer,
            limit,
            canister_version: c.version,
            status: match c.status {
                Status::Running => 1,
                Status::Stopping => 2,
                Status::Stopped => 3,
            },
            limits: ApiLimits {
                max_reply_bytes: self.config.max_reply_bytes,
                max_call_bytes: self.config.max_call_bytes,
                max_stable_pages: self.config.max_stable_bytes / crate::stable::WASM_PAGE,
                call_fee: self.config.prices.call_fee,
                call_fee_per_byte: self.config.prices.call_fee_per_byte,
                create_fee: self.config.prices.create_canister_fee,
                freezing_reserve: self
                    .config
                    .freezing_reserve(c.memory_size(), c.freezing_threshold),
            },
            env_vars: c.env_vars.clone(),
            replicated: !matches!(
                api,
                ApiType::Query | ApiType::CompositeQuery | ApiType::InspectMessage
            ),
            ..Default::default()
        }
    }

    /// Records printed lines in the canister log and the captured log.
    pub fn record_prints(
        &mut self,
        id: Principal,
        prints: Vec<String>,
        keep_in_canister_log: bool,
    ) {
        for text in prints {
            if keep_in_canister_log && let Some(c) = self.canisters.get_mut(&id) {
                {
                    let idx = c.logs.len() as u64;
                    c.logs.push((idx, self.time, text.clone().into_bytes()));
                }
            }
            self.logs.push(LogLine {
                round: self.round,
                timestamp_nanos: self.time,
                canister: id,
                text,
            });
        }
    }

    /// Runs one message of a call context; applies its effects or rolls it back.
    /// Returns the trap, if it trapped.
    #[allow(clippy::too_many_arguments)]
    pub fn execute(
        &mut self,
        id: Principal,
        ctx_id: u64,
        api: ApiType,
        entry: Entry,
        arg: Vec<u8>,
        reject_info: Option<(u32, String)>,
        refund: u128,
        persist: bool,
    ) -> Option<TrapKind> {
        let ctx = self.book.call_contexts.get(&ctx_id)?.clone();
        let limit = self.config.update_instruction_limit;
        let mut c = self.canisters.remove(&id)?;
        let mut msg = self.base_ctx(&c, api, ctx.caller, limit);
        msg.arg = arg;
        if matches!(api, ApiType::Update | ApiType::Query) {
            msg.method_name = ctx.method.clone();
        }
        msg.reject = reject_info;
        msg.cycles_available = if api == ApiType::Cleanup {
            0
        } else {
            ctx.cycles_available
        };
        msg.cycles_refunded = refund;
        msg.already_responded = ctx.responded;
        msg.call_context_instructions = ctx.instructions;
        msg.deadline = ctx.deadline;
        // Everything run here is replicated, also a query method called as an update.
        msg.replicated = true;
        msg.stable = std::mem::take(&mut c.stable);
        msg.stable.begin();
        let inst = c.instance.as_mut().expect("executing canister has code");
        let Execution {
            mut msg,
            instructions,
            trap,
        } = inst.run(&entry, msg);
        let fee = self.config.execution_cost(instructions);
        let prints = std::mem::take(&mut msg.debug_prints);
        let st = self.stats.entry(id).or_default();
        st.touch_round(self.round);
        let mstats = st.method(&ctx.method);
        mstats.add_execution(instructions, fee, trap.is_some());
        st.total.add_execution(instructions, fee, trap.is_some());
        c.round_instructions += instructions;
        self.round_total += instructions;
        self.round_max = self.round_max.max(c.round_instructions);

        if let Some(trap) = trap {
            let _ = inst.rollback();
            msg.stable.rollback();
            c.stable = msg.stable;
            c.balance = c.balance.saturating_sub(fee);
            self.canisters.insert(id, c);
            self.record_prints(id, prints, true);
            let line = format!("[TRAP]: {trap}");
            self.record_prints(id, vec![line], true);
            let detail = format!("trapped after {instructions} instructions: {trap}");
            self.trace(TraceKind::Rejected, id, id, &ctx.method, detail);
            return Some(trap);
        }
        if persist {
            let delta = inst.commit() + msg.stable_dirty_pages * crate::stable::PAGE as u64;
            msg.stable.commit();
            c.round_heap_delta += delta;
            c.balance = msg.balance.saturating_sub(fee);
            if let Some(data) = msg.certified_data.take() {
                c.certified_data = data;
            }
            if msg.global_timer_changed {
                c.global_timer = msg.global_timer;
            }
            let st = self.stats.entry(id).or_default();
            st.method(&ctx.method).heap_delta += delta;
            st.total.heap_delta += delta;
        } else {
            let _ = inst.rollback();
            msg.stable.rollback();
            c.balance = c.balance.saturating_sub(fee);
        }
        c.stable = std::mem::take(&mut msg.stable);
        let generation = c.code_generation;
        self.canisters.insert(id, c);
        self.record_prints(id, prints, true);

        let calls = std::mem::take(&mut msg.calls);
        let n_calls = calls.len();
        let mut call_fees = 0u128;
        let mut bytes_out = 0u64;
        for call in calls {
            let cb = self.book.id();
            call_fees += self
                .config
                .call_cost(call.method.len() + call.payload.len());
            bytes_out += call.payload.len() as u64;
            let deadline = call
                .timeout_secs
                .map(|s| self.time + s as u64 * 1_000_000_000);
            self.book.callbacks.insert(
                cb,
                Callback {
                    canister: id,
                    call_context: ctx_id,
                    reply: call.reply,
                    reject: call.reject,
                    cleanup: call.cleanup,
                    deadline,
                    callee: call.callee,
                    method: call.method.clone(),
                    code_generation: generation,
                },
            );
            self.enqueue(Message::Request {
                from: id,
                to: call.callee,
                method: call.method,
                arg: call.payload,
                cycles: call.cycles,
                origin: Origin::Canister {
                    caller: id,
                    callback: cb,
                },
                deadline: deadline.unwrap_or(0),
            });
        }
        let ctx_mut = self.book.call_contexts.get_mut(&ctx_id).expect("context");
        ctx_mut.outstanding += n_calls;
        ctx_mut.instructions += instructions;
        if api != ApiType::Cleanup {
            ctx_mut.cycles_available = msg.cycles_available;
        }
        let response = msg.response.take();
        let origin = ctx_mut.origin.clone();
        if response.is_some() {
            ctx_mut.responded = true;
        }
        let refund = if response.is_some() {
            std::mem::take(&mut ctx_mut.cycles_available)
        } else {
            0
        };
        if let Some(resp) = response {
            let payload = match resp {
                Response::Reply(bytes) => {
                    bytes_out += bytes.len() as u64;
                    Ok(bytes)
                }
                Response::Reject(m) => {
                    Err(RejectResponse::new(ErrorCode::CanisterRejectedMessage, m))
                }
            };
            self.respond(&origin, payload, refund);
        }
        let st = self.stats.entry(id).or_default();
        let m = st.method(&ctx.method);
        m.calls_made += n_calls as u64;
        m.bytes_out += bytes_out;
        m.cycles_burnt += call_fees;
        st.total.calls_made += n_calls as u64;
        st.total.bytes_out += bytes_out;
        st.total.cycles_burnt += call_fees;
        None
    }

    /// Runs code outside any call context (install hooks); the caller applies the effects.
    #[allow(clippy::too_many_arguments)]
    pub fn run_hook(
        &mut self,
        c: &Canister,
        inst: &mut CanisterInstance,
        api: ApiType,
        export: &str,
        arg: Vec<u8>,
        caller: Principal,
        limit: u64,
        stable: crate::stable::StableMemory,
    ) -> Execution {
        let mut msg = self.base_ctx(c, api, caller, limit);
        msg.arg = arg;
        msg.stable = stable;
        inst.run(&Entry::Export(export.into()), msg)
    }
}
