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
use crate::reject::{ErrorCode, RejectResponse};
use crate::state::{
    Bookkeeping, CallContext, Callback, Canister, Message, Origin, Payload, Queued, Status, reject,
};
use crate::stats::{CanisterStats, LogLine, TraceEvent, TraceKind};

mod deliver;
mod execute;
pub(crate) mod persisted;

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
    pub(crate) persisted: Option<persisted::Persisted>,
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

/// What a call's answer runs in the caller: its reply closure on the reply's bytes, or its
/// reject closure with the reject's code and message. Returns `(api, entry, arg, reject)`.
pub(crate) fn callback_entry(
    answer: Result<Vec<u8>, RejectResponse>,
    reply: (u32, u32),
    reject: (u32, u32),
) -> (ApiType, Entry, Vec<u8>, Option<(u32, String)>) {
    match answer {
        Ok(bytes) => (
            ApiType::ReplyCallback,
            Entry::Closure(reply.0, reply.1),
            bytes,
            None,
        ),
        Err(r) => (
            ApiType::RejectCallback,
            Entry::Closure(reject.0, reject.1),
            Vec::new(),
            Some((r.reject_code as u32, r.reject_message)),
        ),
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
        let time = self.time;
        let due = self.due_for("canister_global_timer", |c| {
            c.global_timer != 0 && c.global_timer <= time
        });
        for id in due {
            self.canisters.get_mut(&id).unwrap().global_timer = 0;
            self.run_system_task(id, "canister_global_timer");
        }
    }

    /// Runs `canister_heartbeat` of every running canister that exports it.
    fn run_heartbeats(&mut self) {
        for id in self.due_for("canister_heartbeat", |_| true) {
            self.run_system_task(id, "canister_heartbeat");
        }
    }

    /// The running, unpaused canisters that export system task `export` and for which `due`
    /// holds.
    fn due_for(&self, export: &str, due: impl Fn(&Canister) -> bool) -> Vec<Principal> {
        self.canisters
            .values()
            .filter(|c| {
                c.status == Status::Running
                    && due(c)
                    && c.instance
                        .as_ref()
                        .is_some_and(|i| i.module().exports(export))
                    && !self.faults.paused.contains(&c.id)
            })
            .map(|c| c.id)
            .collect()
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
}
