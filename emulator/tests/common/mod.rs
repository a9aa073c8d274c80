//! Shared helpers: the probe canister, built once per test binary.

#![allow(dead_code)]

use candid::Principal;
use candid::utils::{ArgumentDecoder, ArgumentEncoder};
use emulator::RejectResponse;
use emulator::pocket_ic::PocketIc;

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

/// Candid update as the anonymous principal.
pub fn update<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
    pic: &PocketIc,
    id: Principal,
    method: &str,
    args: A,
) -> Result<R, RejectResponse> {
    pic.update_candid(id, Principal::anonymous(), method, args)
}

/// Candid query as the anonymous principal.
pub fn query<A: ArgumentEncoder, R: for<'a> ArgumentDecoder<'a>>(
    pic: &PocketIc,
    id: Principal,
    method: &str,
    args: A,
) -> Result<R, RejectResponse> {
    pic.query_candid(id, Principal::anonymous(), method, args)
}

/// `(heap counter, stable counter)` of a probe.
pub fn counters(pic: &PocketIc, id: Principal) -> (u64, u64) {
    query(pic, id, "get", ()).unwrap()
}

/// `(step, cleanups, timers fired, upgraded, saved heap)` of a probe.
pub fn flags(pic: &PocketIc, id: Principal) -> (u64, u64, u64, bool, u64) {
    query(pic, id, "flags", ()).unwrap()
}
