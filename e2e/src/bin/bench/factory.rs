//! The factory scale scenario: what the scheduler, a request, the stats and a page of the
//! creation list cost with many past creations, side by side with an empty registry in the
//! same run.
//!
//! Per side, in one emulated IC running `backend-bench.wasm.gz` (the backend plus
//! `bench_seed_creations`, feature `bench-seed`):
//! 1. `bench_seed_creations` records `past` completed creations (half of them with their
//!    shared copy purged, half within their retention), in batches (not measured);
//! 2. `in_flight` owners with 7 MiB capsules ask for their personal canisters at once (the
//!    largest `create_personal_canister` is recorded); each personal canister is held (its
//!    messages paused) once its creation is importing, so all are in flight together; the
//!    largest pump message up to then (export steps and the calls steps issue included) is
//!    recorded, then a minute runs with all of them in flight: its largest pump message is
//!    the scheduler's own cost; then the canisters are released and the creations complete;
//! 3. `admin_get_stats` and `admin_list_creations` (a page of [`LIST_PAGE`], from the start
//!    and from the middle of the registry) are called once each;
//! 4. a minute passes (timers cleared while busy still wake the canister once: counted
//!    apart), then an hour (60 rounds of a minute) with no migration open and no deadline
//!    due: the backend's timer messages in that hour are counted.

use std::time::Duration;

use backend::factory::types::{CreationPage, CreationState, FactoryError, FactoryStats};
use candid::Principal;
use e2e::*;
use emulator::stats::CanisterStats;

use serde::Serialize;

/// Records per `admin_list_creations` page measured (the endpoint's largest page is 100).
pub const LIST_PAGE: u32 = 20;
/// Past creations recorded per `bench_seed_creations` call.
const SEED_BATCH: u64 = 2_000;

/// What one side measured (serialized under these names in `migration.json`).
#[derive(Serialize)]
pub struct Scale {
    pub completed_records: u64,
    pub in_flight: u32,
    /// The largest pump message in a minute with every creation in flight and importing.
    pub pump_max_instructions: u64,
    /// Pump messages in that minute.
    #[serde(rename = "pump_messages_per_minute")]
    pub pump_messages: u64,
    /// The largest pump message from the requests until all were importing: export steps
    /// (bounded by their instruction share) and the calls the steps issue included.
    #[serde(rename = "pump_max_with_steps_instructions")]
    pub pump_max_with_steps: u64,
    /// Timer messages in the minute after the last completion (timers cleared while busy).
    pub settle_timer_messages: u64,
    /// Timer messages in the hour after that minute: nothing open, nothing due.
    pub idle_timer_messages_per_hour: u64,
    pub request_instructions: u64,
    pub stats_instructions: u64,
    /// Records per measured `admin_list_creations` page ([`LIST_PAGE`]).
    pub list_page_size: u32,
    pub list_page_instructions: u64,
}

/// Timer messages: the system's `canister_global_timer` and ic-cdk-timers' executor self-call.
fn timer_messages(s: &CanisterStats) -> (u64, u64) {
    let t = timer_stats(s);
    (t.executions, t.instructions_max)
}

fn max_of(s: &CanisterStats, method: &str) -> u64 {
    s.methods.get(method).map_or(0, |m| m.instructions_max)
}

/// A row of the factory table: its label and the figure it reads from a run.
type Row = (&'static str, fn(&Scale) -> u64);

pub fn run(past: u64, in_flight: u32) -> Scale {
    let w = World::with_backend("backend-bench");
    let emu = w.emu();
    let mut first = 0;
    while first < past {
        let count = SEED_BATCH.min(past - first);
        let (r,): (Result<FactoryStats, FactoryError>,) =
            w.update(admin(), "bench_seed_creations", (first, count));
        assert_eq!(r.unwrap().succeeded, first + count);
        first += count;
    }
    let owners: Vec<Principal> = (0..in_flight).map(|i| user(5_000 + i)).collect();
    for o in &owners {
        w.fill_capsule(*o, &[4 << 20, 3 << 20, 300_000], 20, 3);
    }
    emu.clear_observations();
    for o in &owners {
        w.create_personal_canister(*o).unwrap();
    }
    let request_instructions = max_of(&emu.stats(w.backend), "create_personal_canister");
    // Each personal canister is held as soon as its creation is importing, so that all of
    // them are in flight together.
    let mut held = vec![];
    w.run_until(20_000, |w| {
        for o in &owners {
            let rec = w.status(*o).unwrap();
            assert!(
                !rec.state.is_final(),
                "{:?} before all were importing",
                rec.state
            );
            if rec.state == CreationState::Importing
                && let Some(p) = rec.canister_id
                && !held.contains(&p)
            {
                w.emu().pause(p);
                held.push(p);
            }
        }
        held.len() == owners.len()
    });
    let (_, pump_max_with_steps) = timer_messages(&emu.stats(w.backend));
    // A minute with every creation in flight and importing: the scheduler's own cost.
    emu.clear_observations();
    w.run_rounds(60, Duration::from_secs(1));
    let (pump_messages, pump_max_instructions) = timer_messages(&emu.stats(w.backend));
    for p in &held {
        emu.resume(*p);
    }
    w.run_until(20_000, |w| w.all_final(&owners));
    for o in &owners {
        completed(&w, *o);
    }

    emu.clear_observations();
    let (st,): (Result<FactoryStats, FactoryError>,) = w.query(admin(), "admin_get_stats", ());
    let st = st.unwrap();
    assert_eq!(st.succeeded, past + in_flight as u64);
    assert_eq!((st.in_progress, st.queued), (0, 0));
    let stats_instructions = max_of(&emu.stats(w.backend), "admin_get_stats");
    let mut list_page_instructions = 0;
    for start in [None, Some(past / 2)] {
        emu.clear_observations();
        let (page,): (Result<CreationPage, FactoryError>,) =
            w.query(admin(), "admin_list_creations", (start, LIST_PAGE));
        assert_eq!(
            page.unwrap().items.len() as u32,
            LIST_PAGE.min((past + in_flight as u64) as u32)
        );
        list_page_instructions =
            list_page_instructions.max(max_of(&emu.stats(w.backend), "admin_list_creations"));
    }

    // Timers cleared while creations ran still wake the canister once at their old time (an
    // ic-cdk-timers property): they are counted apart, in the minute after the last completion.
    emu.clear_observations();
    w.run_rounds(6, Duration::from_secs(10));
    let (settle_timer_messages, _) = timer_messages(&emu.stats(w.backend));
    emu.clear_observations();
    w.run_rounds(60, Duration::from_secs(60));
    let (idle_timer_messages_per_hour, _) = timer_messages(&emu.stats(w.backend));
    Scale {
        completed_records: past + in_flight as u64,
        in_flight,
        pump_max_instructions,
        pump_messages,
        pump_max_with_steps,
        settle_timer_messages,
        idle_timer_messages_per_hour,
        request_instructions,
        stats_instructions,
        list_page_size: LIST_PAGE,
        list_page_instructions,
    }
}

/// The `"factory"` object: the figures with many past creations, and the same run with none.
#[derive(Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub scale: Scale,
    pub baseline_empty_registry: Scale,
}

/// The `"factory"` object: the figures with `past` records, and the same run with none as
/// the baseline.
pub fn report(quick: bool) -> (Report, String) {
    let past = if quick { 2_000 } else { 100_000 };
    let in_flight = if quick { 3 } else { 10 };
    eprintln!("bench: factory scale, empty registry (baseline)");
    let empty = run(0, in_flight);
    eprintln!("bench: factory scale, {past} past creations");
    let full = run(past, in_flight);
    let mut t = format!(
        "\nfactory scale ({} in flight; instructions, messages)  {:>16} {:>16}\n",
        in_flight,
        "0 past",
        format!("{past} past")
    );
    let rows: [Row; 8] = [
        ("largest pump, all importing", |s| s.pump_max_instructions),
        ("pump messages / minute", |s| s.pump_messages),
        ("largest pump with steps", |s| s.pump_max_with_steps),
        ("timer messages, minute after", |s| s.settle_timer_messages),
        ("idle timer messages / hour", |s| {
            s.idle_timer_messages_per_hour
        }),
        ("create_personal_canister", |s| s.request_instructions),
        ("admin_get_stats", |s| s.stats_instructions),
        ("admin_list_creations page", |s| s.list_page_instructions),
    ];
    for (name, f) in rows {
        t.push_str(&format!("{name:<50}{:>16}{:>17}\n", f(&empty), f(&full)));
    }
    let report = Report {
        scale: full,
        baseline_empty_registry: empty,
    };
    (report, t)
}
