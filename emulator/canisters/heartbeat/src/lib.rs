//! `heartbeat`: counts `canister_heartbeat` executions.

use std::cell::Cell;

thread_local! {
    static BEATS: Cell<u64> = const { Cell::new(0) };
}

#[ic_cdk::heartbeat]
fn heartbeat() {
    BEATS.set(BEATS.get() + 1);
}

/// Heartbeats so far.
#[ic_cdk::query]
fn beats() -> u64 {
    BEATS.get()
}
