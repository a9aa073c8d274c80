//! Shared helpers: the probe canister, built once per test binary.

#![allow(dead_code)]

use candid::Principal;
use emulator::pocket_ic::PocketIc;

/// Candid update and query as the anonymous principal.
pub use emulator::pocket_ic::{query_candid as query, update_candid as update};

/// The probe canister's wasm (built by `cargo build` on first use, then cached).
pub fn probe_wasm() -> Vec<u8> {
    emulator::canisters::build_canister("probe")
        .expect("build probe")
        .to_vec()
}

/// A fresh emulator with `n` probe canisters installed (anonymous controller).
pub fn setup(n: usize) -> (PocketIc, Vec<Principal>) {
    let pic = PocketIc::new();
    let wasm = probe_wasm();
    let ids = (0..n)
        .map(|_| {
            let id = pic.create_canister();
            pic.install_canister(id, wasm.clone(), candid::encode_args(()).unwrap(), None);
            id
        })
        .collect();
    (pic, ids)
}

/// Probe `from` calls `to.method` (no arguments) with `call_unbounded`; the outcome as the probe
/// reports it: `reply:...` or `reject:<code>:<message>`.
pub fn call_unbounded(pic: &PocketIc, from: Principal, to: Principal, method: &str) -> String {
    let (outcome,): (String,) =
        update(pic, from, "call_unbounded", (to, method.to_string())).unwrap();
    outcome
}

/// `(heap counter, stable counter)` of a probe.
pub fn counters(pic: &PocketIc, id: Principal) -> (u64, u64) {
    query(pic, id, "get", ()).unwrap()
}

/// `(step, cleanups, timers fired, upgraded, saved heap)` of a probe.
pub fn flags(pic: &PocketIc, id: Principal) -> (u64, u64, u64, bool, u64) {
    query(pic, id, "flags", ()).unwrap()
}
