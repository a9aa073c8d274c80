//! The migration benchmark: synthetic capsules moved to personal canisters by the pipeline
//! (export → create → install → pull → verify → handoff) and, in the same run, copied the naive
//! way (the backend pushes every blob chunk, memory and connection through the public capsule
//! API, one awaited call at a time: `bench_naive_copy`, feature `bench-naive`). Every figure
//! comes from the emulator's IC-style metering; nothing is timed.
//!
//! ```text
//! bench [--quick] [--records-only] [--no-naive] [--wasm-dir DIR] [--factory-only] [--out PATH]
//!                                   (scripts/bench.sh builds and runs it)
//! ```
//!
//! Per scenario, in one emulated IC:
//! 1. the backend (`target/wasm/backend.wasm.gz`, the production module) is installed and the
//!    capsule filled through the capsule API (not measured);
//! 2. the migration runs to `Completed`, one round at a time (time advances 200 ms per round,
//!    as in the e2e tests); after every round the backend's creation state and the personal
//!    canister's import phase are read with non-replicated queries (their instructions are
//!    subtracted) and the round's instructions are attributed to the state each canister was
//!    in when the round began;
//! 3. the backend is upgraded to `backend-bench.wasm.gz` (the same code plus
//!    `bench_naive_copy`), a personal canister is installed without a migration, owned by the
//!    backend (its capsule API accepts only its owner), and the naive copy runs under the same
//!    time policy.
//!
//! Then the factory scale scenario ([`factory`]): the scheduler's, a request's and the admin
//! queries' cost with many past creations, beside an empty registry.
//!
//! Writes `{"scenarios": [...], "factory": {...}}` (see [`Metrics`] and [`factory::Scale`])
//! and prints the tables.

mod factory;
mod meter;
mod report;
mod scenarios;
mod table;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use backend::factory::types::{CreationRecord, CreationState, FactoryError};
use candid::{CandidType, Principal};
use capsule::*;
use e2e::*;
use emulator::MessageId;
use emulator::stats::{CanisterStats, MethodStats};
use migration::protocol::{ImportPhase, ImportStatus, MAX_REPLY_BYTES, PersonalInitArgs};
use serde::Deserialize;
use serde_bytes::ByteBuf;

use meter::*;
use report::*;
use scenarios::*;
use table::*;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const GIB: f64 = (1u64 << 30) as f64;

/// `--wasm-dir DIR`: the modules (`backend`, `backend-bench`, `personal`) are read from
/// `DIR/<name>.wasm.gz` instead of `target/wasm` (to measure an earlier build, such as the
/// fixtures of an earlier commit, with this driver).
static WASM_DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// The module `name`, from `--wasm-dir` or `target/wasm`.
fn module(name: &str) -> Vec<u8> {
    match WASM_DIR.get().cloned().flatten() {
        None => wasm(name),
        Some(dir) => {
            let path = dir.join(format!("{name}.wasm.gz"));
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        }
    }
}

fn main() {
    let mut quick = false;
    let mut factory_only = false;
    let mut records_only = false;
    let mut skip_naive = false;
    let mut wasm_dir = None;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--factory-only" => factory_only = true,
            "--records-only" => records_only = true,
            "--no-naive" => skip_naive = true,
            "--wasm-dir" => wasm_dir = Some(PathBuf::from(args.next().expect("--wasm-dir DIR"))),
            "--out" => out = Some(PathBuf::from(args.next().expect("--out PATH"))),
            "-h" | "--help" => {
                println!(
                    "usage: bench [--quick] [--factory-only] [--records-only] [--no-naive] [--wasm-dir DIR] [--out PATH]"
                );
                return;
            }
            other => panic!(
                "unknown argument {other} (usage: bench [--quick] [--factory-only] [--records-only] [--no-naive] [--wasm-dir DIR] [--out PATH])"
            ),
        }
    }
    let out = out.unwrap_or_else(|| {
        let name = if quick {
            "migration-quick.json"
        } else {
            "migration.json"
        };
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/bench")
            .join(name)
    });
    WASM_DIR.set(wasm_dir).expect("set once");
    let queries = query_methods();
    let mut results = vec![];
    // `--factory-only`: the factory scale scenario alone (`"scenarios"` stays empty).
    // `--records-only`: the records scenario alone (no blobs), then the factory's.
    let migrations = if factory_only {
        vec![]
    } else if records_only {
        scenarios(quick)
            .into_iter()
            .filter(|s| s.blob_sizes.is_empty())
            .collect()
    } else {
        scenarios(quick)
    };
    for s in migrations {
        eprintln!(
            "bench: {} ({} blobs, {} bytes, {} memories, {} connections)",
            s.name,
            s.blob_sizes.len(),
            s.blob_sizes.iter().sum::<usize>(),
            s.memories,
            s.connections
        );
        let m = measure(&s, &queries, !skip_naive);
        eprintln!(
            "bench: {} done: {} rounds, naive {:.1}x rounds",
            m.name, m.rounds, m.baseline_round_ratio
        );
        results.push(m);
    }
    let (factory, scale_table) = factory::report(quick);
    let report = Report {
        scenarios: &results,
        factory,
    };
    let mut text = serde_json::to_string_pretty(&report).expect("the report is JSON");
    text.push('\n');
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, text).unwrap();
    print!("{}", table(&results));
    print!("{scale_table}");
    if let (Some(a), Some(b)) = (
        results.iter().find(|m| m.name.starts_with("mixed")),
        results.iter().find(|m| m.name.starts_with("large")),
    ) {
        // Per-byte figures: equal per byte (1.00) is linear growth of the totals.
        let growth = |f: fn(&Metrics) -> f64| f(b) / f(a);
        println!(
            "growth {} -> {} per byte moved (1.00 = linear): instructions {:.3}, cycles {:.3}, rounds {:.3}",
            a.name,
            b.name,
            growth(|m| m.personal_instructions_per_byte + m.backend_instructions_per_byte),
            growth(|m| m.cycles_per_gib),
            growth(|m| m.rounds as f64 / m.bytes as f64),
        );
    }
    println!("wrote {}", out.display());
}
