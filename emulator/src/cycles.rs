//! Configuration: limits, prices and time, all with the IC's defaults and all changeable.

use std::time::Duration;

/// Cycle prices (13-node application subnet defaults).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Prices {
    /// Charged by `create_canister` from the attached cycles.
    pub create_canister_fee: u128,
    /// Base fee of every update message / callback.
    pub update_message_fee: u128,
    /// Cycles per instruction executed (updates; queries are free).
    pub cycles_per_instruction: u128,
    /// Base fee of an inter-canister call.
    pub call_fee: u128,
    /// Fee per byte of request (method name + argument) and of response, paid by the caller.
    pub call_fee_per_byte: u128,
    /// Storage cost per GiB per second (used for the freezing reserve).
    pub storage_fee_per_gib_second: u128,
}

impl Default for Prices {
    fn default() -> Self {
        Self {
            create_canister_fee: 500_000_000_000,
            update_message_fee: 5_000_000,
            cycles_per_instruction: 1,
            call_fee: 260_000,
            call_fee_per_byte: 1_000,
            storage_fee_per_gib_second: 127_000,
        }
    }
}

/// Limits and behaviour of an emulator instance.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Config {
    /// Largest ingress message (method name + argument).
    pub max_ingress_bytes: usize,
    /// Largest inter-canister request.
    pub max_call_bytes: usize,
    /// Largest reply.
    pub max_reply_bytes: usize,
    /// Instructions per update, callback or timer message.
    pub update_instruction_limit: u64,
    /// Instructions per query.
    pub query_instruction_limit: u64,
    /// Instructions per install / upgrade (pre + post upgrade together).
    pub install_instruction_limit: u64,
    /// Heap delta (dirtied heap + stable bytes) per canister per round; further messages wait.
    pub heap_delta_per_round: u64,
    /// Instructions per canister per round; further messages wait for the next round.
    pub round_instructions_per_canister: u64,
    /// Instructions a round executes before it starts no further message: the replica's
    /// `max_instructions_per_round` (4 B) less one slice (2 B), as its scheduler sets the round's
    /// budget. Messages between canisters keep executing within the round (the replica's inner
    /// iterations) until this is spent; the rest wait for the next round. Checked between
    /// iterations: `1` makes a round a single iteration (every hop between canisters takes a
    /// round).
    #[serde(default = "default_round_instructions")]
    pub round_instructions: u64,
    /// Execution threads of the replica's scheduler (4 on application subnets): a round's
    /// instructions count as spread over them (the busiest canister, or the total divided by
    /// this, whichever is more).
    #[serde(default = "default_scheduler_cores")]
    pub scheduler_cores: u64,
    /// Time added by every round.
    pub time_per_round: Duration,
    /// Rounds `await_call` runs before giving up.
    pub max_rounds_per_call: u64,
    /// Cycles of canisters created through the provisional API with no amount.
    pub default_canister_cycles: u128,
    /// Default freezing threshold in seconds (30 days).
    pub freezing_threshold_secs: u64,
    /// Stable memory limit in bytes.
    pub max_stable_bytes: u64,
    /// Largest chunk for `upload_chunk`.
    pub max_chunk_bytes: usize,
    /// Prices.
    pub prices: Prices,
    /// Initial time (nanoseconds since the epoch).
    pub initial_time_nanos: u64,
}

fn default_round_instructions() -> u64 {
    2_000_000_000
}

fn default_scheduler_cores() -> u64 {
    4
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_ingress_bytes: 2 * 1024 * 1024,
            max_call_bytes: 2 * 1024 * 1024,
            max_reply_bytes: 2 * 1024 * 1024,
            update_instruction_limit: 40_000_000_000,
            query_instruction_limit: 5_000_000_000,
            install_instruction_limit: 300_000_000_000,
            heap_delta_per_round: 75 * 1024 * 1024,
            round_instructions_per_canister: 40_000_000_000,
            round_instructions: default_round_instructions(),
            scheduler_cores: default_scheduler_cores(),
            time_per_round: Duration::from_millis(1),
            max_rounds_per_call: 10_000,
            default_canister_cycles: 100_000_000_000_000,
            freezing_threshold_secs: 30 * 24 * 3600,
            max_stable_bytes: 500 * 1024 * 1024 * 1024,
            max_chunk_bytes: 1024 * 1024,
            prices: Prices::default(),
            // 2025-01-01T00:00:00Z
            initial_time_nanos: 1_735_689_600_000_000_000,
        }
    }
}

impl Config {
    /// Cycles a canister of `memory_bytes` must keep to stay above its freezing threshold.
    pub fn freezing_reserve(&self, memory_bytes: u64, threshold_secs: u64) -> u128 {
        const GIB: u128 = 1 << 30;
        (memory_bytes as u128 * self.prices.storage_fee_per_gib_second * threshold_secs as u128)
            / GIB
    }

    /// Cycles charged for executing `instructions` in one update-like message.
    pub fn execution_cost(&self, instructions: u64) -> u128 {
        self.prices.update_message_fee + instructions as u128 * self.prices.cycles_per_instruction
    }

    /// Fee of a call with `bytes` of method name and argument.
    pub fn call_cost(&self, bytes: usize) -> u128 {
        self.prices.call_fee + self.prices.call_fee_per_byte * bytes as u128
    }
}
