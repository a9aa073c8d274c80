//! The `ic0` system API as wasmtime host functions.
//!
//! Host functions read and write a [`MessageCtx`], the state of the one message being executed.
//! The scheduler builds the context, runs the message and, if it did not trap, applies what the
//! context recorded (reply, calls, cycles, stable memory, timer, certified data).

use candid::Principal;
use wasmtime::{Caller, Linker};

use super::Ctx;
use crate::stable::StableMemory;

mod calls;
mod cycles;
mod identity;
mod message;
mod misc;
mod stable;

/// Which entry point runs: decides which system API functions may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiType {
    /// `canister_init`.
    Init,
    /// `canister_pre_upgrade`.
    PreUpgrade,
    /// `canister_post_upgrade`.
    PostUpgrade,
    /// `canister_update <name>`.
    Update,
    /// `canister_query <name>` (never persists).
    Query,
    /// `canister_composite_query <name>` (never persists; may call queries).
    CompositeQuery,
    /// A reply callback.
    ReplyCallback,
    /// A reject callback.
    RejectCallback,
    /// A cleanup callback.
    Cleanup,
    /// `canister_global_timer`.
    Timer,
    /// `canister_inspect_message` (ingress filter; never persists).
    InspectMessage,
}

impl ApiType {
    fn can_call(self) -> bool {
        matches!(
            self,
            ApiType::Update
                | ApiType::CompositeQuery
                | ApiType::ReplyCallback
                | ApiType::RejectCallback
                | ApiType::Timer
        )
    }
    fn can_reply(self) -> bool {
        matches!(
            self,
            ApiType::Update
                | ApiType::Query
                | ApiType::CompositeQuery
                | ApiType::ReplyCallback
                | ApiType::RejectCallback
        )
    }
    fn has_arg(self) -> bool {
        matches!(
            self,
            ApiType::Init
                | ApiType::PostUpgrade
                | ApiType::Update
                | ApiType::Query
                | ApiType::CompositeQuery
                | ApiType::ReplyCallback
                | ApiType::InspectMessage
        )
    }
}

/// A call being assembled between `call_new` and `call_perform`.
#[derive(Debug, Clone)]
pub struct PendingCall {
    /// Destination.
    pub callee: Principal,
    /// Method name.
    pub method: String,
    /// Reply closure `(table index, env)`.
    pub reply: (u32, u32),
    /// Reject closure.
    pub reject: (u32, u32),
    /// Cleanup closure.
    pub cleanup: Option<(u32, u32)>,
    /// Argument bytes.
    pub payload: Vec<u8>,
    /// Attached cycles (already taken from the balance).
    pub cycles: u128,
    /// Bounded-wait timeout in seconds.
    pub timeout_secs: Option<u32>,
}

/// How the message ended towards its call context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `msg_reply` with these bytes.
    Reply(Vec<u8>),
    /// `msg_reject` with this message.
    Reject(String),
}

/// Why a message trapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapKind {
    /// `ic0.trap` (ic-cdk panics end here too).
    Called(String),
    /// A wasm trap (unreachable, out-of-bounds, ...).
    Wasm(String),
    /// The instruction limit was exceeded.
    InstructionLimit(u64),
    /// A system API was used wrongly.
    ContractViolation(String),
    /// Memory could not grow.
    OutOfMemory(String),
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrapKind::Called(m) => write!(f, "Canister called `ic0.trap` with message: '{m}'"),
            TrapKind::Wasm(m) => write!(f, "Canister trapped: {m}"),
            TrapKind::InstructionLimit(l) => write!(
                f,
                "Canister exceeded the limit of {l} instructions for single message execution."
            ),
            TrapKind::ContractViolation(m) => write!(f, "Canister violated contract: {m}"),
            TrapKind::OutOfMemory(m) => write!(f, "Canister cannot grow memory: {m}"),
        }
    }
}

/// Limits and prices the system API needs during a message.
#[derive(Debug, Clone, Default)]
pub struct ApiLimits {
    /// Largest reply.
    pub max_reply_bytes: usize,
    /// Largest inter-canister request.
    pub max_call_bytes: usize,
    /// Stable memory limit in wasm pages.
    pub max_stable_pages: u64,
    /// Base fee of a call.
    pub call_fee: u128,
    /// Fee per byte of a call (method name + argument).
    pub call_fee_per_byte: u128,
    /// Creation fee (for `cost_create_canister`).
    pub create_fee: u128,
    /// Cycles the canister must keep (freezing threshold reserve).
    pub freezing_reserve: u128,
}

/// The state of one executing message.
#[derive(Default)]
pub struct MessageCtx {
    /// Entry point kind.
    pub api: Option<ApiType>,
    /// The executing canister.
    pub canister_id: Option<Principal>,
    /// `msg_caller`.
    pub caller: Option<Principal>,
    /// Argument, or reply payload in a reply callback.
    pub arg: Vec<u8>,
    /// `msg_method_name`.
    pub method_name: String,
    /// `(code, message)` in a reject callback.
    pub reject: Option<(u32, String)>,
    /// `time`.
    pub time: u64,
    /// Controllers, for `is_controller`.
    pub controllers: Vec<Principal>,
    /// The canister's balance, updated as the message runs.
    pub balance: u128,
    /// Cycles still available in the call context.
    pub cycles_available: u128,
    /// Cycles accepted by this message.
    pub cycles_accepted: u128,
    /// Cycles refunded with the response (callbacks).
    pub cycles_refunded: u128,
    /// Cycles burnt by `cycles_burn128`.
    pub cycles_burnt: u128,
    /// Whether the call context was already answered before this message.
    pub already_responded: bool,
    /// Reply being built.
    pub reply_buf: Vec<u8>,
    /// The response this message gave.
    pub response: Option<Response>,
    /// Call being assembled.
    pub pending_call: Option<PendingCall>,
    /// Calls performed.
    pub calls: Vec<PendingCall>,
    /// Stable memory (moved in for the execution).
    pub stable: StableMemory,
    /// Lines printed.
    pub debug_prints: Vec<String>,
    /// Why it trapped, when the system API decided.
    pub trap: Option<TrapKind>,
    /// `certified_data_set`.
    pub certified_data: Option<Vec<u8>>,
    /// The certificate `data_certificate_*` return (non-replicated queries with a certifier).
    pub data_certificate: Option<std::sync::Arc<crate::certify::DataCertificate>>,
    /// Current global timer (0 = unset); updated by `global_timer_set`.
    pub global_timer: u64,
    /// Whether `global_timer_set` was called.
    pub global_timer_changed: bool,
    /// Instruction limit of this message.
    pub limit: u64,
    /// Instructions of earlier messages in the same call context.
    pub call_context_instructions: u64,
    /// `msg_deadline` (0 = unbounded).
    pub deadline: u64,
    /// `canister_version`.
    pub canister_version: u64,
    /// `canister_status`: 1 running, 2 stopping, 3 stopped.
    pub status: u32,
    /// Limits and prices.
    pub limits: ApiLimits,
    /// Whether an ingress `canister_inspect_message` called `accept_message`.
    pub accepted_message: bool,
    /// Stable pages first dirtied by this message.
    pub stable_dirty_pages: u64,
    /// Environment variables.
    pub env_vars: Vec<(String, String)>,
    /// Whether this execution is replicated (`in_replicated_execution`): updates, callbacks,
    /// timers, install hooks, and query methods called as an update (by ingress or by another
    /// canister); not queries called as queries nor `canister_inspect_message`.
    pub replicated: bool,
}

type R<T> = wasmtime::Result<T>;

fn trap(caller: &mut Caller<'_, Ctx>, kind: TrapKind) -> wasmtime::Error {
    let msg = kind.to_string();
    caller.data_mut().msg.trap.get_or_insert(kind);
    wasmtime::Error::msg(msg)
}

fn violation(caller: &mut Caller<'_, Ctx>, msg: impl Into<String>) -> wasmtime::Error {
    trap(caller, TrapKind::ContractViolation(msg.into()))
}

/// Deducts `n` instructions; traps when the limit is exhausted.
pub fn charge(caller: &mut Caller<'_, Ctx>, n: u64) -> R<()> {
    let counter = caller.data().counter.expect("counter");
    let left = counter.get(&mut *caller).i64().unwrap_or(0);
    let new = left.saturating_sub(n.min(i64::MAX as u64) as i64);
    counter.set(&mut *caller, wasmtime::Val::I64(new))?;
    if new < 0 {
        let limit = caller.data().msg.limit;
        return Err(trap(caller, TrapKind::InstructionLimit(limit)));
    }
    Ok(())
}

/// Instructions used so far by this message.
fn used(caller: &mut Caller<'_, Ctx>) -> u64 {
    let counter = caller.data().counter.expect("counter");
    let left = counter.get(&mut *caller).i64().unwrap_or(0);
    (caller.data().msg.limit as i64 - left).max(0) as u64
}

fn read_mem(caller: &mut Caller<'_, Ctx>, off: u32, len: u32) -> R<Vec<u8>> {
    let mem = match caller.data().memory {
        Some(m) => m,
        None => return Err(violation(caller, "module has no memory")),
    };
    let data = mem.data(&*caller);
    let (s, e) = (off as usize, off as usize + len as usize);
    if e > data.len() {
        return Err(violation(
            caller,
            format!("read of [{s}, {e}) out of heap bounds"),
        ));
    }
    Ok(data[s..e].to_vec())
}

fn write_mem(caller: &mut Caller<'_, Ctx>, dst: u32, bytes: &[u8]) -> R<()> {
    let (mem, map) = match (caller.data().memory, caller.data().bytemap) {
        (Some(m), Some(b)) => (m, b),
        _ => return Err(violation(caller, "module has no memory")),
    };
    let (s, e) = (dst as usize, dst as usize + bytes.len());
    {
        let data = mem.data_mut(&mut *caller);
        if e > data.len() {
            return Err(violation(
                caller,
                format!("write of [{s}, {e}) out of heap bounds"),
            ));
        }
        data[s..e].copy_from_slice(bytes);
    }
    if !bytes.is_empty() {
        let map = map.data_mut(&mut *caller);
        map[s / 4096..=(e - 1) / 4096].fill(1);
    }
    Ok(())
}

fn copy_out(caller: &mut Caller<'_, Ctx>, src: &[u8], dst: u32, off: u32, size: u32) -> R<()> {
    let (o, s) = (off as usize, size as usize);
    if o.checked_add(s).is_none_or(|end| end > src.len()) {
        return Err(violation(
            caller,
            format!("copy of [{o}, {}) out of {} bytes", o + s, src.len()),
        ));
    }
    charge(caller, 20 + size as u64)?;
    let bytes = src[o..o + s].to_vec();
    write_mem(caller, dst, &bytes)
}

fn write_u128(caller: &mut Caller<'_, Ctx>, dst: u32, v: u128) -> R<()> {
    write_mem(caller, dst, &v.to_le_bytes())
}

fn api(caller: &Caller<'_, Ctx>) -> ApiType {
    caller.data().msg.api.unwrap_or(ApiType::Update)
}

fn u128_of(high: u64, low: u64) -> u128 {
    ((high as u128) << 64) | low as u128
}

/// Liquid balance: what is above the freezing reserve.
fn liquid(caller: &Caller<'_, Ctx>) -> u128 {
    let m = &caller.data().msg;
    m.balance.saturating_sub(m.limits.freezing_reserve)
}

/// Registers every `ic0` function on `linker`.
pub fn link(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    let l = linker;
    message::link(l)?;
    cycles::link(l)?;
    identity::link(l)?;
    calls::link(l)?;
    stable::link(l)?;
    misc::link(l)?;
    Ok(())
}
