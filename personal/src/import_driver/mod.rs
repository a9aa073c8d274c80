//! The importer's canister wiring (wasm only): timers and calls to the backend. The importer
//! itself, a state machine with no calls, is `migration::import` (re-exported as
//! [`crate::import`]).
//!
//! One "pump" runs at a time (a Drop guard in the heap): it asks
//! [`Importer::next`](crate::import::Importer::next) for work, keeps up to `calls_in_flight`
//! calls outstanding, and hands each result to the importer in the first lines after its
//! `await` (nothing that can trap runs in between: the reply is decoded into a `Result` and
//! passed on). Local work (records, verification) runs in bounded units, as many per message as
//! fit in [`WORK_INSTRUCTIONS`], each message in a fresh zero-delay timer. A periodic watchdog
//! restarts a pump that stopped (backoff over, a callback trapped, calls lost); timers do not
//! survive upgrades, so `post_upgrade` arms them again.
//!
//! A call's failure reaches the importer as a [`CallFault`] (the reject code typed); the importer
//! decides what is retried ([`CallFault::is_retryable`]): rejects other than SYS_FATAL and calls
//! not sent are retried with backoff, at most [`MAX_ATTEMPTS`](crate::import::MAX_ATTEMPTS)
//! times in a row; SYS_FATAL and undecodable replies fail the import.

mod reply_once;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use candid::utils::ArgumentEncoder;
use candid::{CandidType, Principal};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use ic_cdk::api::time;
use manifests::{PageCursor, RawPageReply};
use migration::protocol::{ChunkBatchRef, ChunkRef, ExportError, ImportProgress, ImportReport};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::import::{Action, CallFault};
use crate::state;

/// How often the watchdog looks for a stalled import.
pub const WATCHDOG_PERIOD: Duration = Duration::from_secs(30);

/// Instructions a message spends on local work before it leaves the rest to the next one: a
/// tenth of the 40 B limit of an update or timer message, less the largest unit of work
/// (a records step of up to 5,000 leaves) it may start just below the mark.
pub const WORK_INSTRUCTIONS: u64 = 3_000_000_000;

/// A pump holding the guard longer than this is considered dead (its task was dropped without
/// running its destructor).
const PUMP_STALE_NS: u64 = 15 * 60 * 1_000_000_000;

thread_local! {
    static RUNNING: Cell<Option<u64>> = const { Cell::new(None) };
    /// The watchdog interval, while an import has work to do.
    static WATCHDOG: Cell<Option<ic_cdk_timers::TimerId>> = const { Cell::new(None) };
}

/// Marks the pump as running; dropping it (also when a trap drops the task) clears the mark.
struct Running;

impl Running {
    fn acquire(now: u64) -> Option<Running> {
        RUNNING.with(|r| match r.get() {
            Some(since) if now.saturating_sub(since) < PUMP_STALE_NS => None,
            _ => {
                r.set(Some(now));
                Some(Running)
            }
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(None));
    }
}

/// With work to do (install or upgrade mid-import: `start`), arms the watchdog and starts the
/// pump now. Without, no timer runs: the watchdog goes when the import stops (done or failed).
pub fn arm(start: bool) {
    if start {
        WATCHDOG.set(Some(ic_cdk_timers::set_timer_interval(
            WATCHDOG_PERIOD,
            pump,
        )));
        schedule(Duration::ZERO);
    }
}

/// The import has stopped for good: the watchdog has nothing left to watch.
fn disarm() {
    if let Some(timer) = WATCHDOG.take() {
        ic_cdk_timers::clear_timer(timer);
    }
}

fn schedule(delay: Duration) {
    ic_cdk_timers::set_timer(delay, pump());
}

type CallTask = Pin<Box<dyn Future<Output = ()>>>;

async fn pump() {
    let Some(_running) = Running::acquire(time()) else {
        return;
    };
    let config = state::config();
    let (Some(owner), Some(backend)) = (config.owner, config.backend) else {
        return;
    };
    let mut calls: FuturesUnordered<CallTask> = FuturesUnordered::new();
    loop {
        let action = state::importer(|imp, store| imp.next(store, owner, time()));
        match action {
            Action::FetchPage {
                call,
                migration_id,
                cursor,
            } => calls.push(Box::pin(fetch_page(
                backend,
                owner,
                call,
                migration_id,
                cursor,
            ))),
            Action::FetchChunks {
                call,
                migration_id,
                refs,
            } => calls.push(Box::pin(fetch_chunks(
                backend,
                owner,
                call,
                migration_id,
                refs,
            ))),
            Action::ReportDone { call, report } => {
                calls.push(Box::pin(report_done(backend, owner, call, report)))
            }
            Action::Work | Action::Wait { .. } | Action::Stop if !calls.is_empty() => {
                calls.next().await;
            }
            Action::Work => {
                let more = || ic_cdk::api::performance_counter(0) < WORK_INSTRUCTIONS;
                state::importer(|imp, store| imp.work_for(store, owner, time(), more));
                schedule(Duration::ZERO); // What is left gets a message of its own.
                return;
            }
            Action::Wait { until } => {
                if let Some(until) = until {
                    schedule(Duration::from_nanos(until.saturating_sub(time())));
                }
                return;
            }
            Action::Stop => {
                disarm();
                return;
            }
        }
    }
}

/// Decodes a call's outcome into what the importer takes; never traps.
fn outcome<T: CandidType + DeserializeOwned>(
    r: Result<Vec<u8>, CallFault>,
) -> Result<T, CallFault> {
    r.and_then(|bytes| decode(&bytes))
}

/// Decodes a reply, borrowing from `bytes` where `T` does; never traps.
fn decode<'a, T: CandidType + Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CallFault> {
    candid::decode_one(bytes).map_err(|e| CallFault::UndecodableReply {
        reason: e.to_string(),
    })
}

/// Calls `method` of the backend (bounded wait, no cycles) and returns the reply's bytes, read
/// into memory once ([`reply_once`]: pages and chunk batches are replies of up to 2 MB).
async fn call<A: ArgumentEncoder>(
    backend: Principal,
    method: &str,
    args: A,
) -> Result<Vec<u8>, CallFault> {
    let args = candid::encode_args(args).expect("importer: call arguments encode in candid");
    reply_once::call(backend, method, args).await
}

async fn fetch_page(
    backend: Principal,
    owner: Principal,
    call_id: u64,
    migration_id: u64,
    cursor: PageCursor,
) {
    let r = call(backend, "export_raw_manifest_page", (migration_id, cursor)).await;
    let reply = outcome::<Result<RawPageReply, ExportError>>(r);
    state::importer(|imp, store| imp.on_page(store, owner, time(), call_id, reply));
}

async fn fetch_chunks(
    backend: Principal,
    owner: Principal,
    call_id: u64,
    migration_id: u64,
    refs: Vec<ChunkRef>,
) {
    // Decoded in place: the chunks' bytes borrow the reply's buffer.
    let bytes = call(backend, "export_chunks", (migration_id, refs)).await;
    let reply = bytes
        .as_deref()
        .map_err(Clone::clone)
        .and_then(decode::<Result<ChunkBatchRef<'_>, ExportError>>);
    let report =
        state::importer(|imp, store| imp.on_chunk_refs(store, owner, time(), call_id, reply));
    if let Some(progress) = report {
        // Reported on the side: the batch's slot is free for the next pull at once.
        ic_cdk::futures::spawn(report_progress(backend, progress));
    }
}

/// Progress reports are informative: a failed one is not retried (the next batch reports).
async fn report_progress(backend: Principal, progress: ImportProgress) {
    let r = call(backend, "report_import_progress", (progress,)).await;
    let _ = outcome::<Result<(), ExportError>>(r);
}

async fn report_done(
    backend: Principal,
    owner: Principal,
    call_id: u64,
    report: Box<ImportReport>,
) {
    let r = call(backend, "report_import_done", (report,)).await;
    let reply = outcome::<Result<(), ExportError>>(r);
    state::importer(|imp, store| imp.on_report(store, owner, time(), call_id, reply));
}
