//! `probe`: the emulator's own test canister (ic-cdk 0.20, ic-cdk-timers 1.0, ic-stable-structures 0.7).
//!
//! Every method exercises one piece of IC semantics the emulator must reproduce: heap and stable-memory
//! rollback on trap, queries that do not persist, inter-canister calls with cycles, callback traps and the
//! cleanup callback, bounded-wait calls, timers, self-calls, upgrades, management-canister calls.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use candid::Principal;
use ic_cdk::call::{Call, CallFailed};
use ic_stable_structures::memory_manager::{MemoryId, MemoryManager, VirtualMemory};
use ic_stable_structures::{DefaultMemoryImpl, StableCell};

type Mem = VirtualMemory<DefaultMemoryImpl>;

thread_local! {
    static HEAP_COUNTER: Cell<u64> = const { Cell::new(0) };
    static STEP: Cell<u64> = const { Cell::new(0) };
    static CLEANUPS: Cell<u64> = const { Cell::new(0) };
    static TIMER_FIRED: Cell<u64> = const { Cell::new(0) };
    static TIMER_TIME: Cell<u64> = const { Cell::new(0) };
    static UPGRADED: Cell<bool> = const { Cell::new(false) };
    static BALLAST: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static MM: MemoryManager<DefaultMemoryImpl> = MemoryManager::init(DefaultMemoryImpl::default());
    static STABLE_COUNTER: RefCell<StableCell<u64, Mem>> =
        RefCell::new(StableCell::init(MM.with(|m| m.get(MemoryId::new(0))), 0));
    static SAVED_HEAP: RefCell<StableCell<u64, Mem>> =
        RefCell::new(StableCell::init(MM.with(|m| m.get(MemoryId::new(1))), 0));
}

fn stable_get() -> u64 {
    STABLE_COUNTER.with(|c| *c.borrow().get())
}

fn stable_set(v: u64) {
    STABLE_COUNTER.with(|c| c.borrow_mut().set(v));
}

#[ic_cdk::init]
fn init() {
    ic_cdk::println!("probe init");
}

#[ic_cdk::pre_upgrade]
fn pre_upgrade() {
    let heap = HEAP_COUNTER.get();
    SAVED_HEAP.with(|c| c.borrow_mut().set(heap));
}

#[ic_cdk::post_upgrade]
fn post_upgrade() {
    UPGRADED.set(true);
}

/// `(heap counter, stable counter)`.
#[ic_cdk::query]
fn get() -> (u64, u64) {
    (HEAP_COUNTER.get(), stable_get())
}

/// `(step, cleanups, timers fired, upgraded, heap counter saved by pre_upgrade)`.
#[ic_cdk::query]
fn flags() -> (u64, u64, u64, bool, u64) {
    (
        STEP.get(),
        CLEANUPS.get(),
        TIMER_FIRED.get(),
        UPGRADED.get(),
        SAVED_HEAP.with(|c| *c.borrow().get()),
    )
}

/// Increments both counters; returns the heap counter.
#[ic_cdk::update]
fn inc() -> u64 {
    HEAP_COUNTER.set(HEAP_COUNTER.get() + 1);
    stable_set(stable_get() + 1);
    HEAP_COUNTER.get()
}

/// Writes `v` to both counters, then traps: nothing of it may persist.
#[ic_cdk::update]
fn set_then_trap(v: u64) {
    HEAP_COUNTER.set(v);
    stable_set(v);
    ic_cdk::trap(format!("set_then_trap({v})"));
}

/// A query that changes state: the change must not be kept.
#[ic_cdk::query]
fn query_mutate() -> u64 {
    HEAP_COUNTER.set(HEAP_COUNTER.get() + 100);
    stable_set(stable_get() + 100);
    HEAP_COUNTER.get()
}

/// Counts cleanups: dropped only when the cleanup callback drops the future.
struct CleanupMarker;
impl Drop for CleanupMarker {
    fn drop(&mut self) {
        CLEANUPS.set(CLEANUPS.get() + 1);
    }
}

/// Sets step 1, calls `target.inc`, sets step 2 and traps in the callback.
/// Expected: step stays 1 (callback rolled back), the cleanup callback ran once.
#[ic_cdk::update]
async fn call_then_trap(target: Principal) {
    call_then_trap_holding(CleanupMarker, target).await
}

/// Sets step 1, calls `target.inc`, sets step 2 and traps in the callback, holding `marker`
/// across the call: only the cleanup callback drops it.
async fn call_then_trap_holding<M>(marker: M, target: Principal) {
    STEP.set(1);
    let _ = Call::unbounded_wait(target, "inc").await;
    STEP.set(2);
    if STEP.get() == 2 {
        ic_cdk::trap("trap in callback");
    }
    std::mem::forget(marker);
}

/// Attaches `amount` cycles to `target.accept_cycles(keep)`; returns `(accepted by callee, refunded)`.
#[ic_cdk::update]
async fn send_cycles(target: Principal, amount: u128, keep: u128) -> (u128, u128) {
    let res = Call::unbounded_wait(target, "accept_cycles")
        .with_arg(keep)
        .with_cycles(amount)
        .await
        .expect("call failed");
    let accepted: u128 = res.candid().expect("decode");
    (accepted, ic_cdk::api::msg_cycles_refunded())
}

/// Accepts at most `max` of the attached cycles.
#[ic_cdk::update]
fn accept_cycles(max: u128) -> u128 {
    ic_cdk::api::msg_cycles_accept(max)
}

#[ic_cdk::query]
fn balance() -> u128 {
    ic_cdk::api::canister_cycle_balance()
}

/// Starts a one-shot timer after `secs` seconds and an interval timer every `secs` seconds (if `repeat`).
#[ic_cdk::update]
fn start_timer(secs: u64, repeat: bool) {
    if repeat {
        ic_cdk_timers::set_timer_interval(Duration::from_secs(secs), || async {
            TIMER_FIRED.set(TIMER_FIRED.get() + 1);
        });
    } else {
        ic_cdk_timers::set_timer(Duration::from_secs(secs), async {
            TIMER_FIRED.set(TIMER_FIRED.get() + 1);
            TIMER_TIME.set(ic_cdk::api::time());
            ic_cdk::println!("timer fired");
        });
    }
}

fn describe(res: Result<ic_cdk::call::Response, CallFailed>) -> String {
    match res {
        Ok(r) => format!("reply:{}", r.len()),
        Err(CallFailed::CallRejected(r)) => {
            format!("reject:{}:{}", r.raw_reject_code(), r.reject_message())
        }
        Err(e) => format!("failed:{e}"),
    }
}

/// Calls `target.method()` with a bounded wait of `timeout` seconds.
#[ic_cdk::update]
async fn call_bounded(target: Principal, method: String, timeout: u32) -> String {
    STEP.set(10);
    let res = Call::bounded_wait(target, &method)
        .change_timeout(timeout)
        .await;
    describe(res)
}

/// Calls `target.method()` with an unbounded wait; describes the outcome.
#[ic_cdk::update]
async fn call_unbounded(target: Principal, method: String) -> String {
    describe(Call::unbounded_wait(target, &method).await)
}

/// Calls itself `n` times (`inc`), returns the heap counter.
#[ic_cdk::update]
async fn self_calls(n: u64) -> u64 {
    for _ in 0..n {
        Call::unbounded_wait(ic_cdk::api::canister_self(), "inc")
            .await
            .expect("self call");
    }
    HEAP_COUNTER.get()
}

/// Burns instructions: `n` rounds of a cheap hash loop. Returns the performance counter.
#[ic_cdk::update]
fn burn(n: u64) -> u64 {
    let mut x: u64 = 1;
    for i in 0..n {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    std::hint::black_box(x);
    ic_cdk::api::performance_counter(0)
}

/// Returns its argument.
#[ic_cdk::update]
fn echo(b: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
    b
}

/// Replies with `n` bytes.
#[ic_cdk::update]
fn make_bytes(n: u64) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(vec![7u8; n as usize])
}

/// Sends `n` bytes to `target.echo`; describes the outcome.
#[ic_cdk::update]
async fn send_bytes(target: Principal, n: u64) -> String {
    let payload = serde_bytes::ByteBuf::from(vec![7u8; n as usize]);
    describe(Call::unbounded_wait(target, "echo").with_arg(payload).await)
}

/// Grows the heap by `mib` MiB of dirtied pages (kept).
#[ic_cdk::update]
fn grow_heap(mib: u64) -> u64 {
    BALLAST.with(|b| {
        let mut b = b.borrow_mut();
        b.extend(std::iter::repeat_n(1u8, (mib as usize) << 20));
        b.len() as u64
    })
}

/// `canister_info` of `target` through the management canister: `(controllers, module hash)`.
#[ic_cdk::update]
async fn info(target: Principal) -> Result<(Vec<Principal>, Option<Vec<u8>>), String> {
    let arg = ic_cdk_management_canister::CanisterInfoArgs {
        canister_id: target,
        num_requested_changes: None,
    };
    ic_cdk_management_canister::canister_info(&arg)
        .await
        .map(|r| (r.controllers, r.module_hash))
        .map_err(|e| e.to_string())
}

/// `canister_status` of `target`: only a controller may ask.
#[ic_cdk::update]
async fn status_of(target: Principal) -> Result<String, String> {
    let arg = ic_cdk_management_canister::CanisterStatusArgs {
        canister_id: target,
    };
    ic_cdk_management_canister::canister_status(&arg)
        .await
        .map(|r| format!("{:?}", r.status))
        .map_err(|e| e.to_string())
}

/// Stops `target` through the management canister.
#[ic_cdk::update]
async fn stop_other(target: Principal) -> Result<(), String> {
    let arg = ic_cdk_management_canister::StopCanisterArgs {
        canister_id: target,
    };
    ic_cdk_management_canister::stop_canister(&arg)
        .await
        .map_err(|e| e.to_string())
}

/// Creates a canister with `cycles`, controllers `[self]`; returns its id.
#[ic_cdk::update]
async fn create_child(cycles: u128) -> Result<Principal, String> {
    let arg = ic_cdk_management_canister::CreateCanisterArgs { settings: None };
    ic_cdk_management_canister::create_canister_with_extra_cycles(&arg, cycles)
        .await
        .map(|r| r.canister_id)
        .map_err(|e| e.to_string())
}

/// 32 random bytes from the management canister.
#[ic_cdk::update]
async fn rand() -> Vec<u8> {
    ic_cdk_management_canister::raw_rand()
        .await
        .expect("raw_rand")
}

/// Prints a line to the canister log.
#[ic_cdk::update]
fn log(msg: String) {
    ic_cdk::println!("{msg}");
}

/// Rejects explicitly.
#[ic_cdk::update(manual_reply = true)]
fn reject_me(msg: String) {
    ic_cdk::api::msg_reject(msg);
}

/// `(time, self id)`.
#[ic_cdk::query]
fn whoami() -> (u64, Principal, Principal) {
    (
        ic_cdk::api::time(),
        ic_cdk::api::canister_self(),
        ic_cdk::api::msg_caller(),
    )
}

/// Grows the heap by `mib` MiB, then traps: the growth must be undone too.
#[ic_cdk::update]
fn grow_then_trap(mib: u64) {
    grow_heap(mib);
    HEAP_COUNTER.set(777);
    ic_cdk::trap("grow_then_trap");
}

/// Ingress filter: refuses `refused_by_inspect`, accepts everything else.
#[ic_cdk::inspect_message]
fn inspect_message() {
    if ic_cdk::api::msg_method_name() != "refused_by_inspect" {
        ic_cdk::api::accept_message();
    }
}

/// Never reached by ingress (inspect_message refuses it); callable by canisters.
#[ic_cdk::update]
fn refused_by_inspect() -> u64 {
    inc()
}

/// The `time()` the last one-shot timer of `start_timer` ran at (0: never).
#[ic_cdk::query]
fn timer_time() -> u64 {
    TIMER_TIME.get()
}

/// Traps in its cleanup callback: dropped by the cleanup only.
struct TrappingMarker;
impl Drop for TrappingMarker {
    fn drop(&mut self) {
        ic_cdk::trap("trap in cleanup");
    }
}

/// Like `call_then_trap`, but the cleanup callback traps too.
#[ic_cdk::update]
async fn call_then_trap_twice(target: Principal) {
    call_then_trap_holding(TrappingMarker, target).await
}

/// `in_replicated_execution()` from a query method.
#[ic_cdk::query]
fn replicated() -> bool {
    ic_cdk::api::in_replicated_execution()
}

/// Sends a one-way `inc` to `target` and returns at once.
#[ic_cdk::update]
fn notify_inc(target: Principal) {
    Call::unbounded_wait(target, "inc")
        .oneway()
        .expect("oneway");
}

/// `subnet_self()`.
#[ic_cdk::query]
fn subnet() -> Principal {
    ic_cdk::api::subnet_self()
}

/// Asks the price of what the emulator does not model (HTTPS outcalls, threshold keys) and
/// reads the caller info and the node count: imports `ic0` functions ordinary canisters use.
#[ic_cdk::update]
fn costs() -> (u128, u128, u32, usize, bool) {
    let http = ic_cdk::api::cost_http_request(100, 1_000);
    let ecdsa = ic_cdk::api::cost_sign_with_ecdsa("key_1", 0).unwrap_or(0)
        + ic_cdk::api::cost_sign_with_schnorr("key_1", 0).unwrap_or(0)
        + ic_cdk::api::cost_vetkd_derive_key("key_1", 0).unwrap_or(0);
    (
        http,
        ecdsa,
        ic_cdk::api::subnet_self_node_count(),
        ic_cdk::api::msg_caller_info_data().len(),
        ic_cdk::api::msg_caller_info_signer().is_some(),
    )
}

/// `canister_info` of `target` with its last `n` changes.
#[ic_cdk::update]
async fn info_full(
    target: Principal,
    n: u64,
) -> Result<ic_cdk_management_canister::CanisterInfoResult, String> {
    let arg = ic_cdk_management_canister::CanisterInfoArgs {
        canister_id: target,
        num_requested_changes: Some(n),
    };
    ic_cdk_management_canister::canister_info(&arg)
        .await
        .map_err(|e| e.to_string())
}

/// Sets `target`'s controllers through the management canister (as a controller of it);
/// returns the `canister_version()` it sent as `sender_canister_version`.
#[ic_cdk::update]
async fn set_controllers_of(target: Principal, controllers: Vec<Principal>) -> Result<u64, String> {
    let version = ic_cdk::api::canister_version();
    let arg = ic_cdk_management_canister::UpdateSettingsArgs {
        canister_id: target,
        settings: ic_cdk_management_canister::CanisterSettings {
            controllers: Some(controllers),
            ..Default::default()
        },
    };
    ic_cdk_management_canister::update_settings(&arg)
        .await
        .map(|()| version)
        .map_err(|e| e.to_string())
}

/// `canister_version()`.
#[ic_cdk::query]
fn version() -> u64 {
    ic_cdk::api::canister_version()
}

/// Sets the canister's certified data.
#[ic_cdk::update]
fn set_certified(data: serde_bytes::ByteBuf) {
    ic_cdk::api::certified_data_set(&data);
}

/// The data certificate this execution sees (`None` in replicated execution or without one).
#[ic_cdk::query]
fn certificate() -> Option<serde_bytes::ByteBuf> {
    ic_cdk::api::data_certificate().map(serde_bytes::ByteBuf::from)
}

/// A composite query: bumps its own heap counter, then calls `method` of each of `targets` in
/// turn; returns the counter it sees after the calls (its own change, kept within the query)
/// and each call's outcome (`reply:<u64 sum of the reply's counters>` for `get`).
#[ic_cdk::query(composite = true)]
async fn fan_out(targets: Vec<Principal>, method: String) -> (u64, Vec<String>) {
    HEAP_COUNTER.set(HEAP_COUNTER.get() + 100);
    let mut out = Vec::new();
    for t in targets {
        let r = Call::unbounded_wait(t, &method).await;
        out.push(match r {
            Ok(r) => match r.candid_tuple::<(u64, u64)>() {
                Ok((a, b)) => format!("reply:{}", a + b),
                Err(_) => format!("reply:{}", r.len()),
            },
            Err(e) => describe(Err(e)),
        });
    }
    (HEAP_COUNTER.get(), out)
}

/// A composite query calling `chain` of `targets[0]` with the rest; returns how many canisters
/// the chain went through (0 when `targets` is empty), or the first failure.
#[ic_cdk::query(composite = true)]
async fn chain(targets: Vec<Principal>) -> Result<u64, String> {
    let Some((first, rest)) = targets.split_first() else {
        return Ok(0);
    };
    let r = Call::unbounded_wait(*first, "chain")
        .with_arg(rest.to_vec())
        .await;
    match r {
        Ok(r) => r
            .candid::<Result<u64, String>>()
            .map_err(|e| e.to_string())?
            .map(|n| n + 1),
        Err(e) => Err(describe(Err(e))),
    }
}
