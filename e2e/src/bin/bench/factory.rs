//! The factory scale scenario: what the scheduler, a request, the stats and a page of the
//! creation list cost with many past creations, side by side with an empty registry in the
//! same run.
//!
//! Per side, in one emulated IC running `backend-bench.wasm.gz` (the backend plus
//! `bench_seed_creations`, feature `bench-seed`):
//! 1. `bench_seed_creations` records `past` completed creations (half of them with their
//!    shared copy purged, half within their retention), in batches (not measured);
//! 2. `in_flight` owners with small capsules ask for their personal canisters at once and the
//!    creations run to `Completed` (200 ms per round): the largest pump message (the
//!    scheduler's timer messages, export steps included) and the largest
//!    `create_personal_canister` are recorded;
//! 3. `admin_get_stats` and `admin_list_creations` (a page of [`LIST_PAGE`], from the start
//!    and from the middle of the registry) are called once each;
//! 4. an hour passes (60 rounds of a minute) with no migration open and no deadline due: the
//!    backend's timer messages in that hour are counted.

use std::time::Duration;

use backend::factory::types::{CreationPage, FactoryError, FactoryStats};
use candid::Principal;
use e2e::*;
use emulator::stats::CanisterStats;

use super::{J, n};

/// Records per `admin_list_creations` page measured (the endpoint's largest page is 100).
pub const LIST_PAGE: u32 = 20;
/// Past creations recorded per `bench_seed_creations` call.
const SEED_BATCH: u64 = 2_000;

/// What one side measured.
pub struct Scale {
    pub completed_records: u64,
    pub in_flight: u32,
    pub pump_max_instructions: u64,
    pub pump_messages: u64,
    pub idle_timer_messages_per_hour: u64,
    pub request_instructions: u64,
    pub stats_instructions: u64,
    pub list_page_instructions: u64,
}

/// Timer messages: the system's `canister_global_timer` and ic-cdk-timers' executor self-call.
fn is_timer(method: &str) -> bool {
    method.contains("timer")
}

fn timer_messages(s: &CanisterStats) -> (u64, u64) {
    s.methods
        .iter()
        .filter(|(name, _)| is_timer(name))
        .fold((0, 0), |(count, max), (_, m)| {
            (count + m.executions, max.max(m.instructions_max))
        })
}

fn max_of(s: &CanisterStats, method: &str) -> u64 {
    s.methods.get(method).map_or(0, |m| m.instructions_max)
}

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
        w.fill_capsule(*o, &[20_000, 300_000], 20, 3);
    }
    emu.clear_observations();
    for o in &owners {
        w.create_personal_canister(*o).unwrap();
    }
    w.run_until(20_000, |w| {
        owners
            .iter()
            .all(|o| w.status(*o).unwrap().state.is_final())
    });
    for o in &owners {
        completed(&w, *o);
    }
    let s = emu.stats(w.backend);
    let (pump_messages, pump_max_instructions) = timer_messages(&s);
    let request_instructions = max_of(&s, "create_personal_canister");

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

    emu.clear_observations();
    for _ in 0..60 {
        w.ic.advance_time(Duration::from_secs(60));
        w.ic.tick();
    }
    let (idle_timer_messages_per_hour, _) = timer_messages(&emu.stats(w.backend));
    Scale {
        completed_records: past + in_flight as u64,
        in_flight,
        pump_max_instructions,
        pump_messages,
        idle_timer_messages_per_hour,
        request_instructions,
        stats_instructions,
        list_page_instructions,
    }
}

impl Scale {
    pub fn json(&self) -> Vec<(String, J)> {
        vec![
            ("completed_records".into(), n(self.completed_records as f64)),
            ("in_flight".into(), n(self.in_flight)),
            (
                "pump_max_instructions".into(),
                n(self.pump_max_instructions as f64),
            ),
            ("pump_messages".into(), n(self.pump_messages as f64)),
            (
                "idle_timer_messages_per_hour".into(),
                n(self.idle_timer_messages_per_hour as f64),
            ),
            (
                "request_instructions".into(),
                n(self.request_instructions as f64),
            ),
            (
                "stats_instructions".into(),
                n(self.stats_instructions as f64),
            ),
            ("list_page_size".into(), n(LIST_PAGE)),
            (
                "list_page_instructions".into(),
                n(self.list_page_instructions as f64),
            ),
        ]
    }
}

/// The `"factory"` object: the figures with `past` records, and the same run with none as
/// the baseline.
pub fn report(quick: bool) -> (J, String) {
    let past = if quick { 2_000 } else { 100_000 };
    let in_flight = if quick { 3 } else { 10 };
    eprintln!("bench: factory scale, empty registry (baseline)");
    let empty = run(0, in_flight);
    eprintln!("bench: factory scale, {past} past creations");
    let full = run(past, in_flight);
    let mut fields = full.json();
    fields.push(("baseline_empty_registry".into(), J::O(empty.json())));
    let mut t = format!(
        "\nfactory scale ({} in flight)      {:>16} {:>16}\n",
        in_flight,
        "0 past",
        format!("{past} past")
    );
    let rows: [(&str, fn(&Scale) -> u64); 6] = [
        ("largest pump message (instr)", |s| s.pump_max_instructions),
        ("pump messages", |s| s.pump_messages),
        ("idle timer messages / hour", |s| {
            s.idle_timer_messages_per_hour
        }),
        ("create_personal_canister (instr)", |s| {
            s.request_instructions
        }),
        ("admin_get_stats (instr)", |s| s.stats_instructions),
        ("admin_list_creations page (instr)", |s| {
            s.list_page_instructions
        }),
    ];
    for (name, f) in rows {
        t.push_str(&format!("{name:<34}{:>16}{:>17}\n", f(&empty), f(&full)));
    }
    (J::O(fields), t)
}
