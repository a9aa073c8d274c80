//! The replicated state: canisters, call contexts, callbacks and queued messages.

use std::collections::{BTreeMap, HashMap};

use candid::Principal;
use ic_management_canister_types::{Change, LogVisibility};

use crate::engine::CanisterInstance;
use crate::reject::{ErrorCode, RejectResponse};
use crate::stable::StableMemory;

/// Lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// Accepts messages.
    Running,
    /// Waits for open call contexts to close; rejects new requests.
    Stopping,
    /// Rejects requests.
    Stopped,
}

/// One canister.
pub struct Canister {
    /// Id.
    pub id: Principal,
    /// Controllers.
    pub controllers: Vec<Principal>,
    /// Status.
    pub status: Status,
    /// Cycle balance.
    pub balance: u128,
    /// The running code, if installed.
    pub instance: Option<CanisterInstance>,
    /// Module hash of the installed module.
    pub module_hash: Option<[u8; 32]>,
    /// Stable memory.
    pub stable: StableMemory,
    /// Certified data.
    pub certified_data: Vec<u8>,
    /// Global timer (0 = none).
    pub global_timer: u64,
    /// Canister version (bumped by installs and settings changes).
    pub version: u64,
    /// Freezing threshold in seconds.
    pub freezing_threshold: u64,
    /// Log visibility.
    pub log_visibility: LogVisibility,
    /// Wasm chunk store: hash → bytes.
    pub chunks: BTreeMap<[u8; 32], Vec<u8>>,
    /// Canister history.
    pub history: Vec<Change>,
    /// Canister log.
    pub logs: Vec<(u64, u64, Vec<u8>)>,
    /// Open call contexts.
    pub open_call_contexts: usize,
    /// Environment variables.
    pub env_vars: Vec<(String, String)>,
    /// Code generation: callbacks made by older code are not run after a reinstall/upgrade.
    pub code_generation: u64,
    /// Instructions executed in the current round.
    pub round_instructions: u64,
    /// Heap delta in the current round.
    pub round_heap_delta: u64,
}

impl Canister {
    /// A new, empty, running canister.
    pub fn new(id: Principal, controllers: Vec<Principal>, balance: u128, threshold: u64) -> Self {
        Self {
            id,
            controllers,
            status: Status::Running,
            balance,
            instance: None,
            module_hash: None,
            stable: StableMemory::default(),
            certified_data: Vec::new(),
            global_timer: 0,
            version: 0,
            freezing_threshold: threshold,
            log_visibility: LogVisibility::Controllers,
            chunks: BTreeMap::new(),
            history: Vec::new(),
            logs: Vec::new(),
            open_call_contexts: 0,
            env_vars: Vec::new(),
            code_generation: 0,
            round_instructions: 0,
            round_heap_delta: 0,
        }
    }

    /// Heap + stable bytes (for the freezing reserve and status).
    pub fn memory_size(&self) -> u64 {
        self.instance
            .as_ref()
            .map(|i| i.heap_size() as u64)
            .unwrap_or(0)
            + self.stable.size() * crate::stable::WASM_PAGE
    }
}

/// Who is waiting for a call context's response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Origin {
    /// An ingress message.
    Ingress(u64),
    /// Another (or the same) canister's callback.
    Canister {
        /// The caller.
        caller: Principal,
        /// The caller's callback.
        callback: u64,
    },
    /// A system task (global timer): nobody waits.
    System,
}

/// An open call context.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CallContext {
    /// Owning canister.
    pub canister: Principal,
    /// Who waits.
    pub origin: Origin,
    /// Method (for stats and trace).
    pub method: String,
    /// Caller principal.
    pub caller: Principal,
    /// Whether it has been answered.
    pub responded: bool,
    /// Cycles still available to accept.
    pub cycles_available: u128,
    /// Outstanding callbacks.
    pub outstanding: usize,
    /// Instructions used by its executions so far.
    pub instructions: u64,
    /// `msg_deadline` of the request (0 = unbounded).
    pub deadline: u64,
    /// Message of the last trap in this context (used when it ends without a reply).
    pub last_trap: Option<RejectResponse>,
}

/// A registered callback.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Callback {
    /// The calling canister.
    pub canister: Principal,
    /// Its call context.
    pub call_context: u64,
    /// Reply closure.
    pub reply: (u32, u32),
    /// Reject closure.
    pub reject: (u32, u32),
    /// Cleanup closure.
    pub cleanup: Option<(u32, u32)>,
    /// Bounded-wait deadline (nanoseconds), if any.
    pub deadline: Option<u64>,
    /// Destination (trace).
    pub callee: Principal,
    /// Method (trace).
    pub method: String,
    /// Code generation of the caller when the call was made.
    pub code_generation: u64,
}

/// A reply or a reject.
pub type Payload = Result<Vec<u8>, RejectResponse>;

/// A message in flight.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Message {
    /// A call.
    Request {
        /// Sender.
        from: Principal,
        /// Destination.
        to: Principal,
        /// Method.
        method: String,
        /// Argument.
        #[serde(with = "crate::serde_helpers::hex_bytes")]
        arg: Vec<u8>,
        /// Attached cycles.
        cycles: u128,
        /// Who waits.
        origin: Origin,
        /// Bounded-wait deadline (0 = none).
        deadline: u64,
    },
    /// A response to a callback.
    Response {
        /// The callback.
        callback: u64,
        /// The calling canister.
        to: Principal,
        /// Reply or reject.
        #[serde(with = "crate::serde_helpers::hex_payload")]
        payload: Payload,
        /// Cycles refunded.
        refund: u128,
    },
}

impl Message {
    /// Destination canister.
    pub fn destination(&self) -> Principal {
        match self {
            Message::Request { to, .. } => *to,
            Message::Response { to, .. } => *to,
        }
    }
}

/// A queued message with its delivery round.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Queued {
    /// Earliest round it may be delivered in.
    pub round: u64,
    /// The message.
    pub message: Message,
}

/// Everything that is not a canister.
#[derive(Default)]
pub struct Bookkeeping {
    /// Call contexts by id.
    pub call_contexts: HashMap<u64, CallContext>,
    /// Callbacks by id.
    pub callbacks: HashMap<u64, Callback>,
    /// Ingress results: `None` while running.
    pub ingress: HashMap<u64, Option<Payload>>,
    /// Next id for contexts, callbacks and messages.
    pub next_id: u64,
}

impl Bookkeeping {
    /// A fresh id.
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// Reject helper.
pub fn reject(code: ErrorCode, msg: impl Into<String>) -> RejectResponse {
    RejectResponse::new(code, msg)
}
