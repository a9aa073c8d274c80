//! The `ic0` system API as wasmtime host functions.
//!
//! Host functions read and write a [`MessageCtx`], the state of the one message being executed.
//! The scheduler builds the context, runs the message and, if it did not trap, applies what the
//! context recorded (reply, calls, cycles, stable memory, timer, certified data).

use candid::Principal;
use wasmtime::{Caller, Linker};

use super::Ctx;
use crate::stable::StableMemory;

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
    // ---- message argument and caller
    l.func_wrap(
        "ic0",
        "msg_arg_data_size",
        |mut c: Caller<'_, Ctx>| -> R<u32> {
            if !api(&c).has_arg() {
                return Err(violation(&mut c, "msg_arg_data_size: no argument here"));
            }
            Ok(c.data().msg.arg.len() as u32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_arg_data_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            if !api(&c).has_arg() {
                return Err(violation(&mut c, "msg_arg_data_copy: no argument here"));
            }
            let arg = std::mem::take(&mut c.data_mut().msg.arg);
            let r = copy_out(&mut c, &arg, dst, off, size);
            c.data_mut().msg.arg = arg;
            r
        },
    )?;
    l.func_wrap("ic0", "msg_caller_size", |c: Caller<'_, Ctx>| -> R<u32> {
        Ok(c.data().msg.caller.map(|p| p.as_slice().len()).unwrap_or(0) as u32)
    })?;
    l.func_wrap(
        "ic0",
        "msg_caller_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let bytes = c
                .data()
                .msg
                .caller
                .map(|p| p.as_slice().to_vec())
                .unwrap_or_default();
            copy_out(&mut c, &bytes, dst, off, size)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_reject_code",
        |mut c: Caller<'_, Ctx>| -> R<u32> {
            match api(&c) {
                ApiType::ReplyCallback => Ok(0),
                ApiType::RejectCallback => {
                    Ok(c.data().msg.reject.as_ref().map(|r| r.0).unwrap_or(0))
                }
                _ => Err(violation(&mut c, "msg_reject_code outside a callback")),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_reject_msg_size",
        |mut c: Caller<'_, Ctx>| -> R<u32> {
            match &c.data().msg.reject {
                Some((_, m)) if api(&c) == ApiType::RejectCallback => Ok(m.len() as u32),
                _ => Err(violation(
                    &mut c,
                    "msg_reject_msg_size outside a reject callback",
                )),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_reject_msg_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let m = match &c.data().msg.reject {
                Some((_, m)) if api(&c) == ApiType::RejectCallback => m.clone().into_bytes(),
                _ => {
                    return Err(violation(
                        &mut c,
                        "msg_reject_msg_copy outside a reject callback",
                    ));
                }
            };
            copy_out(&mut c, &m, dst, off, size)
        },
    )?;
    l.func_wrap("ic0", "msg_deadline", |c: Caller<'_, Ctx>| -> R<u64> {
        Ok(c.data().msg.deadline)
    })?;
    l.func_wrap(
        "ic0",
        "msg_method_name_size",
        |c: Caller<'_, Ctx>| -> R<u32> { Ok(c.data().msg.method_name.len() as u32) },
    )?;
    l.func_wrap(
        "ic0",
        "msg_method_name_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let m = c.data().msg.method_name.clone().into_bytes();
            copy_out(&mut c, &m, dst, off, size)
        },
    )?;
    l.func_wrap("ic0", "accept_message", |mut c: Caller<'_, Ctx>| -> R<()> {
        c.data_mut().msg.accepted_message = true;
        Ok(())
    })?;

    l.func_wrap(
        "ic0",
        "msg_caller_info_data_size",
        |_c: Caller<'_, Ctx>| -> R<u32> { Ok(0) },
    )?;
    l.func_wrap(
        "ic0",
        "msg_caller_info_data_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            copy_out(&mut c, &[], dst, off, size)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_caller_info_signer_size",
        |_c: Caller<'_, Ctx>| -> R<u32> { Ok(0) },
    )?;
    l.func_wrap(
        "ic0",
        "msg_caller_info_signer_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            copy_out(&mut c, &[], dst, off, size)
        },
    )?;
    l.func_wrap(
        "ic0",
        "subnet_self_node_count",
        |_c: Caller<'_, Ctx>| -> R<u32> { Ok(13) },
    )?;
    // Prices of features the emulator does not model (HTTPS outcalls, threshold keys): the
    // 13-node list prices, so canisters that only ask the price still run.
    l.func_wrap(
        "ic0",
        "cost_http_request",
        |mut c: Caller<'_, Ctx>, req: u64, max_res: u64, dst: u32| -> R<()> {
            let v = 49_140_000u128 + 5_200 * req as u128 + 10_400 * max_res as u128;
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "cost_http_request_v2",
        |mut c: Caller<'_, Ctx>, _src: u32, _size: u32, dst: u32| -> R<()> {
            write_u128(&mut c, dst, 49_140_000u128 + 10_400 * 2_000_000)
        },
    )?;
    for name in [
        "cost_sign_with_ecdsa",
        "cost_sign_with_schnorr",
        "cost_vetkd_derive_key",
    ] {
        l.func_wrap(
            "ic0",
            name,
            |mut c: Caller<'_, Ctx>, _src: u32, _size: u32, _alg: u32, dst: u32| -> R<u32> {
                write_u128(&mut c, dst, 26_153_846_153)?;
                Ok(0)
            },
        )?;
    }

    // ---- replies
    l.func_wrap("ic0", "msg_reply_data_append", |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
        if !api(&c).can_reply() || c.data().msg.already_responded || c.data().msg.response.is_some() {
            return Err(violation(&mut c, "msg_reply_data_append: cannot reply here or already replied"));
        }
        charge(&mut c, 50 * size as u64)?;
        let bytes = read_mem(&mut c, src, size)?;
        let max = c.data().msg.limits.max_reply_bytes;
        let total = c.data().msg.reply_buf.len() + bytes.len();
        if total > max {
            return Err(violation(
                &mut c,
                format!("msg_reply_data_append: application payload size ({total}) cannot be larger than {max}"),
            ));
        }
        c.data_mut().msg.reply_buf.extend_from_slice(&bytes);
        Ok(())
    })?;
    l.func_wrap("ic0", "msg_reply", |mut c: Caller<'_, Ctx>| -> R<()> {
        if !api(&c).can_reply() || c.data().msg.already_responded || c.data().msg.response.is_some()
        {
            return Err(violation(
                &mut c,
                "msg_reply: cannot reply here or already replied",
            ));
        }
        let buf = std::mem::take(&mut c.data_mut().msg.reply_buf);
        c.data_mut().msg.response = Some(Response::Reply(buf));
        Ok(())
    })?;
    l.func_wrap(
        "ic0",
        "msg_reject",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            if !api(&c).can_reply()
                || c.data().msg.already_responded
                || c.data().msg.response.is_some()
            {
                return Err(violation(
                    &mut c,
                    "msg_reject: cannot reply here or already replied",
                ));
            }
            let bytes = read_mem(&mut c, src, size)?;
            c.data_mut().msg.response =
                Some(Response::Reject(String::from_utf8_lossy(&bytes).into()));
            Ok(())
        },
    )?;

    // ---- cycles
    l.func_wrap(
        "ic0",
        "msg_cycles_available128",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = c.data().msg.cycles_available;
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_cycles_refunded128",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = c.data().msg.cycles_refunded;
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "msg_cycles_accept128",
        |mut c: Caller<'_, Ctx>, high: u64, low: u64, dst: u32| -> R<()> {
            let want = u128_of(high, low);
            let m = &mut c.data_mut().msg;
            let got = want.min(m.cycles_available);
            m.cycles_available -= got;
            m.cycles_accepted += got;
            m.balance += got;
            write_u128(&mut c, dst, got)
        },
    )?;
    l.func_wrap(
        "ic0",
        "cycles_burn128",
        |mut c: Caller<'_, Ctx>, high: u64, low: u64, dst: u32| -> R<()> {
            let want = u128_of(high, low);
            let burn = want.min(liquid(&c));
            let m = &mut c.data_mut().msg;
            m.balance -= burn;
            m.cycles_burnt += burn;
            write_u128(&mut c, dst, burn)
        },
    )?;
    l.func_wrap(
        "ic0",
        "canister_cycle_balance128",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = c.data().msg.balance;
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "canister_liquid_cycle_balance128",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = liquid(&c);
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "cost_call",
        |mut c: Caller<'_, Ctx>, name_size: u64, arg_size: u64, dst: u32| -> R<()> {
            let lim = &c.data().msg.limits;
            let v = lim.call_fee + lim.call_fee_per_byte * (name_size as u128 + arg_size as u128);
            write_u128(&mut c, dst, v)
        },
    )?;
    l.func_wrap(
        "ic0",
        "cost_create_canister",
        |mut c: Caller<'_, Ctx>, dst: u32| -> R<()> {
            let v = c.data().msg.limits.create_fee;
            write_u128(&mut c, dst, v)
        },
    )?;

    // ---- identity and status
    l.func_wrap(
        "ic0",
        "canister_self_size",
        |c: Caller<'_, Ctx>| -> R<u32> {
            Ok(c.data()
                .msg
                .canister_id
                .map(|p| p.as_slice().len())
                .unwrap_or(0) as u32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "canister_self_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let b = c
                .data()
                .msg
                .canister_id
                .map(|p| p.as_slice().to_vec())
                .unwrap_or_default();
            copy_out(&mut c, &b, dst, off, size)
        },
    )?;
    l.func_wrap("ic0", "subnet_self_size", |_c: Caller<'_, Ctx>| -> R<u32> {
        Ok(crate::SUBNET_ID.as_slice().len() as u32)
    })?;
    l.func_wrap(
        "ic0",
        "subnet_self_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            copy_out(&mut c, crate::SUBNET_ID.as_slice(), dst, off, size)
        },
    )?;
    l.func_wrap("ic0", "canister_status", |c: Caller<'_, Ctx>| -> R<u32> {
        Ok(c.data().msg.status)
    })?;
    l.func_wrap("ic0", "canister_version", |c: Caller<'_, Ctx>| -> R<u64> {
        Ok(c.data().msg.canister_version)
    })?;
    l.func_wrap(
        "ic0",
        "is_controller",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<u32> {
            let b = read_mem(&mut c, src, size)?;
            let p = match Principal::try_from_slice(&b) {
                Ok(p) => p,
                Err(_) => return Err(violation(&mut c, "is_controller: invalid principal")),
            };
            Ok(c.data().msg.controllers.contains(&p) as u32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "in_replicated_execution",
        // Spec, "Replicated execution check": 1 when the canister runs in replicated mode,
        // which includes a query method executed as an update.
        |c: Caller<'_, Ctx>| -> R<u32> { Ok(c.data().msg.replicated as u32) },
    )?;
    l.func_wrap("ic0", "root_key_size", |_c: Caller<'_, Ctx>| -> R<u32> {
        Ok(0)
    })?;
    l.func_wrap(
        "ic0",
        "root_key_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            copy_out(&mut c, &[], dst, off, size)
        },
    )?;

    // ---- calls
    l.func_wrap(
        "ic0",
        "call_new",
        |mut c: Caller<'_, Ctx>,
         callee_src: u32,
         callee_size: u32,
         name_src: u32,
         name_size: u32,
         reply_fun: u32,
         reply_env: u32,
         reject_fun: u32,
         reject_env: u32|
         -> R<()> {
            if !api(&c).can_call() {
                return Err(violation(&mut c, "call_new: calls are not allowed here"));
            }
            if c.data().msg.pending_call.is_some() {
                // A new call discards the one being assembled (returning its cycles).
                let old = c.data_mut().msg.pending_call.take().unwrap();
                c.data_mut().msg.balance += old.cycles;
            }
            let callee = read_mem(&mut c, callee_src, callee_size)?;
            let name = read_mem(&mut c, name_src, name_size)?;
            let callee = Principal::try_from_slice(&callee)
                .map_err(|_| violation(&mut c, "call_new: invalid callee"))?;
            c.data_mut().msg.pending_call = Some(PendingCall {
                callee,
                method: String::from_utf8_lossy(&name).into(),
                reply: (reply_fun, reply_env),
                reject: (reject_fun, reject_env),
                cleanup: None,
                payload: Vec::new(),
                cycles: 0,
                timeout_secs: None,
            });
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_on_cleanup",
        |mut c: Caller<'_, Ctx>, fun: u32, env: u32| -> R<()> {
            match c.data_mut().msg.pending_call.as_mut() {
                Some(p) if p.cleanup.is_none() => {
                    p.cleanup = Some((fun, env));
                    Ok(())
                }
                _ => Err(violation(
                    &mut c,
                    "call_on_cleanup: no call or cleanup already set",
                )),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_data_append",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            if c.data().msg.pending_call.is_none() {
                return Err(violation(&mut c, "call_data_append: no call"));
            }
            charge(&mut c, 50 * size as u64)?;
            let bytes = read_mem(&mut c, src, size)?;
            let max = c.data().msg.limits.max_call_bytes;
            let p = c.data_mut().msg.pending_call.as_mut().unwrap();
            p.payload.extend_from_slice(&bytes);
            let len = p.payload.len();
            if len > max {
                return Err(violation(
                    &mut c,
                    format!("call_data_append: payload size ({len}) cannot be larger than {max}"),
                ));
            }
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_with_best_effort_response",
        |mut c: Caller<'_, Ctx>, timeout: u32| -> R<()> {
            match c.data_mut().msg.pending_call.as_mut() {
                Some(p) if p.timeout_secs.is_none() => {
                    p.timeout_secs = Some(timeout.clamp(1, 300));
                    Ok(())
                }
                _ => Err(violation(
                    &mut c,
                    "call_with_best_effort_response: no call or already set",
                )),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "call_cycles_add128",
        |mut c: Caller<'_, Ctx>, high: u64, low: u64| -> R<()> {
            let amount = u128_of(high, low);
            if c.data().msg.pending_call.is_none() {
                return Err(violation(&mut c, "call_cycles_add128: no call"));
            }
            if liquid(&c) < amount {
                return Err(violation(
                    &mut c,
                    "call_cycles_add128: insufficient liquid cycles",
                ));
            }
            let m = &mut c.data_mut().msg;
            m.balance -= amount;
            m.pending_call.as_mut().unwrap().cycles += amount;
            Ok(())
        },
    )?;
    l.func_wrap("ic0", "call_perform", |mut c: Caller<'_, Ctx>| -> R<u32> {
        let Some(call) = c.data_mut().msg.pending_call.take() else {
            return Err(violation(&mut c, "call_perform: no call"));
        };
        let lim = &c.data().msg.limits;
        let fee = lim.call_fee
            + lim.call_fee_per_byte * (call.method.len() as u128 + call.payload.len() as u128);
        if liquid(&c) < fee {
            // SYS_TRANSIENT: not enough cycles; the attached cycles come back.
            c.data_mut().msg.balance += call.cycles;
            return Ok(2);
        }
        let m = &mut c.data_mut().msg;
        m.balance -= fee;
        m.calls.push(call);
        Ok(0)
    })?;

    // ---- stable memory (64-bit and legacy 32-bit)
    fn stable_read(c: &mut Caller<'_, Ctx>, dst: u64, off: u64, size: u64) -> R<()> {
        charge(c, 20 + size)?;
        let mut buf = vec![0u8; size as usize];
        if !c.data().msg.stable.read(off, &mut buf) {
            return Err(trap(
                c,
                TrapKind::Wasm("stable memory out of bounds".into()),
            ));
        }
        write_mem(c, dst as u32, &buf)
    }
    fn stable_write(c: &mut Caller<'_, Ctx>, off: u64, src: u64, size: u64) -> R<()> {
        charge(c, 20 + size)?;
        let bytes = read_mem(c, src as u32, size as u32)?;
        match c.data_mut().msg.stable.write(off, &bytes) {
            Some(newly) => {
                c.data_mut().msg.stable_dirty_pages += newly;
                charge(c, 1000 * newly)
            }
            None => Err(trap(
                c,
                TrapKind::Wasm("stable memory out of bounds".into()),
            )),
        }
    }
    fn stable_grow(c: &mut Caller<'_, Ctx>, n: u64) -> i64 {
        let max = c.data().msg.limits.max_stable_pages;
        c.data_mut()
            .msg
            .stable
            .grow(n, max)
            .map(|o| o as i64)
            .unwrap_or(-1)
    }
    l.func_wrap("ic0", "stable64_size", |c: Caller<'_, Ctx>| -> R<u64> {
        Ok(c.data().msg.stable.size())
    })?;
    l.func_wrap(
        "ic0",
        "stable64_grow",
        |mut c: Caller<'_, Ctx>, n: u64| -> R<u64> {
            charge(&mut c, 300)?;
            Ok(stable_grow(&mut c, n) as u64)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable64_read",
        |mut c: Caller<'_, Ctx>, dst: u64, off: u64, size: u64| -> R<()> {
            stable_read(&mut c, dst, off, size)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable64_write",
        |mut c: Caller<'_, Ctx>, off: u64, src: u64, size: u64| -> R<()> {
            stable_write(&mut c, off, src, size)
        },
    )?;
    l.func_wrap("ic0", "stable_size", |mut c: Caller<'_, Ctx>| -> R<u32> {
        let s = c.data().msg.stable.size();
        if s > u32::MAX as u64 / 65536 {
            return Err(violation(
                &mut c,
                "stable_size: memory too large for 32-bit API",
            ));
        }
        Ok(s as u32)
    })?;
    l.func_wrap(
        "ic0",
        "stable_grow",
        |mut c: Caller<'_, Ctx>, n: u32| -> R<i32> {
            let cur = c.data().msg.stable.size();
            if cur + n as u64 > 65536 {
                return Ok(-1);
            }
            Ok(stable_grow(&mut c, n as u64) as i32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable_read",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            stable_read(&mut c, dst as u64, off as u64, size as u64)
        },
    )?;
    l.func_wrap(
        "ic0",
        "stable_write",
        |mut c: Caller<'_, Ctx>, off: u32, src: u32, size: u32| -> R<()> {
            stable_write(&mut c, off as u64, src as u64, size as u64)
        },
    )?;

    // ---- certification
    l.func_wrap(
        "ic0",
        "certified_data_set",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            if size > 32 {
                return Err(violation(&mut c, "certified_data_set: more than 32 bytes"));
            }
            let b = read_mem(&mut c, src, size)?;
            c.data_mut().msg.certified_data = Some(b);
            Ok(())
        },
    )?;
    // Interface specification, "Certified data": a certificate is available only in
    // non-replicated query calls; `data_certificate_size`/`_copy` trap elsewhere.
    l.func_wrap(
        "ic0",
        "data_certificate_present",
        |c: Caller<'_, Ctx>| -> R<u32> { Ok(c.data().msg.data_certificate.is_some() as u32) },
    )?;
    l.func_wrap(
        "ic0",
        "data_certificate_size",
        |mut c: Caller<'_, Ctx>| -> R<u32> {
            match &c.data().msg.data_certificate {
                Some(cert) => Ok(cert.bytes().len() as u32),
                None => Err(violation(
                    &mut c,
                    "data_certificate_size: no certificate here (only in non-replicated queries)",
                )),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "data_certificate_copy",
        |mut c: Caller<'_, Ctx>, dst: u32, off: u32, size: u32| -> R<()> {
            let Some(cert) = c.data().msg.data_certificate.clone() else {
                return Err(violation(
                    &mut c,
                    "data_certificate_copy: no certificate here (only in non-replicated queries)",
                ));
            };
            copy_out(&mut c, cert.bytes(), dst, off, size)
        },
    )?;

    // ---- time, timers, counters
    l.func_wrap("ic0", "time", |c: Caller<'_, Ctx>| -> R<u64> {
        Ok(c.data().msg.time)
    })?;
    l.func_wrap(
        "ic0",
        "global_timer_set",
        |mut c: Caller<'_, Ctx>, ts: u64| -> R<u64> {
            let m = &mut c.data_mut().msg;
            let old = m.global_timer;
            m.global_timer = ts;
            m.global_timer_changed = true;
            Ok(old)
        },
    )?;
    l.func_wrap(
        "ic0",
        "performance_counter",
        |mut c: Caller<'_, Ctx>, kind: u32| -> R<u64> {
            let u = used(&mut c);
            match kind {
                0 => Ok(u),
                1 => Ok(u + c.data().msg.call_context_instructions),
                _ => Err(violation(
                    &mut c,
                    format!("performance_counter: unknown type {kind}"),
                )),
            }
        },
    )?;

    // ---- debugging
    l.func_wrap(
        "ic0",
        "debug_print",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            let b = read_mem(&mut c, src, size.min(64 * 1024))?;
            c.data_mut()
                .msg
                .debug_prints
                .push(String::from_utf8_lossy(&b).into());
            Ok(())
        },
    )?;
    l.func_wrap(
        "ic0",
        "trap",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<()> {
            let b = read_mem(&mut c, src, size.min(64 * 1024))?;
            Err(trap(
                &mut c,
                TrapKind::Called(String::from_utf8_lossy(&b).into()),
            ))
        },
    )?;

    // ---- environment variables
    l.func_wrap("ic0", "env_var_count", |c: Caller<'_, Ctx>| -> R<u32> {
        Ok(c.data().msg.env_vars.len() as u32)
    })?;
    l.func_wrap(
        "ic0",
        "env_var_name_size",
        |mut c: Caller<'_, Ctx>, i: u32| -> R<u32> {
            match c.data().msg.env_vars.get(i as usize) {
                Some((n, _)) => Ok(n.len() as u32),
                None => Err(violation(&mut c, "env_var_name_size: index out of range")),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_name_copy",
        |mut c: Caller<'_, Ctx>, i: u32, dst: u32, off: u32, size: u32| -> R<()> {
            let n = match c.data().msg.env_vars.get(i as usize) {
                Some((n, _)) => n.clone().into_bytes(),
                None => return Err(violation(&mut c, "env_var_name_copy: index out of range")),
            };
            copy_out(&mut c, &n, dst, off, size)
        },
    )?;
    fn env_value(c: &mut Caller<'_, Ctx>, src: u32, size: u32) -> R<Option<String>> {
        let name = String::from_utf8_lossy(&read_mem(c, src, size)?).into_owned();
        Ok(c.data()
            .msg
            .env_vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone()))
    }
    l.func_wrap(
        "ic0",
        "env_var_name_exists",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<u32> {
            Ok(env_value(&mut c, src, size)?.is_some() as u32)
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_value_size",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32| -> R<u32> {
            match env_value(&mut c, src, size)? {
                Some(v) => Ok(v.len() as u32),
                None => Err(violation(&mut c, "env_var_value_size: no such variable")),
            }
        },
    )?;
    l.func_wrap(
        "ic0",
        "env_var_value_copy",
        |mut c: Caller<'_, Ctx>, src: u32, size: u32, dst: u32, off: u32, len: u32| -> R<()> {
            match env_value(&mut c, src, size)? {
                Some(v) => copy_out(&mut c, v.as_bytes(), dst, off, len),
                None => Err(violation(&mut c, "env_var_value_copy: no such variable")),
            }
        },
    )?;
    Ok(())
}
