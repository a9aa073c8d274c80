//! Observability: per-canister and per-method statistics, captured logs, a message trace.

use std::collections::BTreeMap;
use std::fmt;

use candid::Principal;

/// Counters for one method (or a canister's total).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MethodStats {
    /// Messages executed (requests, callbacks, timers).
    pub executions: u64,
    /// Requests received.
    pub calls_received: u64,
    /// Calls made.
    pub calls_made: u64,
    /// Instructions, summed.
    pub instructions_total: u64,
    /// Largest single message.
    pub instructions_max: u64,
    /// Argument bytes received.
    pub bytes_in: u64,
    /// Reply bytes sent plus request bytes of calls made.
    pub bytes_out: u64,
    /// Cycles burnt (execution and call fees).
    pub cycles_burnt: u128,
    /// Executions that trapped.
    pub traps: u64,
    /// Heap and stable bytes dirtied by committed messages.
    pub heap_delta: u64,
}

impl MethodStats {
    /// Adds `other`'s counters to these (`instructions_max` becomes the larger of the two).
    pub fn add(&mut self, other: &MethodStats) {
        self.executions += other.executions;
        self.calls_received += other.calls_received;
        self.calls_made += other.calls_made;
        self.instructions_total += other.instructions_total;
        self.instructions_max = self.instructions_max.max(other.instructions_max);
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.cycles_burnt += other.cycles_burnt;
        self.traps += other.traps;
        self.heap_delta += other.heap_delta;
    }

    pub(crate) fn add_execution(&mut self, instructions: u64, burnt: u128, trapped: bool) {
        self.executions += 1;
        self.instructions_total += instructions;
        self.instructions_max = self.instructions_max.max(instructions);
        self.cycles_burnt += burnt;
        self.traps += trapped as u64;
    }
}

/// Statistics of one canister.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CanisterStats {
    /// Per method (callbacks are counted under the method whose call context they belong to).
    pub methods: BTreeMap<String, MethodStats>,
    /// All methods together.
    pub total: MethodStats,
    /// Rounds in which the canister executed something.
    pub rounds: u64,
    pub(crate) last_round: u64,
}

impl CanisterStats {
    pub(crate) fn method(&mut self, name: &str) -> &mut MethodStats {
        self.methods.entry(name.to_string()).or_default()
    }

    /// The methods whose names `keep` accepts, added together (`instructions_max` is the largest
    /// of theirs).
    pub fn sum_of(&self, keep: impl Fn(&str) -> bool) -> MethodStats {
        let mut sum = MethodStats::default();
        for (_, m) in self.methods.iter().filter(|(name, _)| keep(name)) {
            sum.add(m);
        }
        sum
    }

    pub(crate) fn touch_round(&mut self, round: u64) {
        if self.last_round != round {
            self.last_round = round;
            self.rounds += 1;
        }
    }
}

/// One captured `debug_print` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Round in which it was printed.
    pub round: u64,
    /// Time.
    pub timestamp_nanos: u64,
    /// The canister.
    pub canister: Principal,
    /// The text.
    pub text: String,
}

/// One event of the message trace.
#[derive(Debug, Clone)]
pub struct TraceEvent {
    /// Round.
    pub round: u64,
    /// What happened.
    pub kind: TraceKind,
    /// Sender (or the canister, for executions).
    pub from: Principal,
    /// Receiver.
    pub to: Principal,
    /// Method or callback description.
    pub method: String,
    /// Details (outcome, sizes, codes).
    pub detail: String,
}

/// Kinds of trace events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// An ingress message was submitted.
    Ingress,
    /// A request was delivered and executed.
    Request,
    /// A response was delivered to a callback.
    Response,
    /// A global timer ran.
    Timer,
    /// The management canister handled a request.
    Management,
    /// A message was rejected without executing (faults, stopped, not found...).
    Rejected,
    /// A bounded-wait call timed out.
    Timeout,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[round {}] {:?} {} -> {} {}: {}",
            self.round, self.kind, self.from, self.to, self.method, self.detail
        )
    }
}
