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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use backend::factory::types::{CreationRecord, CreationState, FactoryError};
use candid::{CandidType, Principal};
use capsule::migration::{ImportPhase, ImportStatus, MAX_REPLY_BYTES, PersonalInitArgs};
use capsule::*;
use e2e::*;
use emulator::MessageId;
use emulator::stats::{CanisterStats, MethodStats};
use serde::Deserialize;
use serde_bytes::ByteBuf;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const GIB: f64 = (1u64 << 30) as f64;

/// Instruction limits (IC): update, callback and timer messages; queries; install hooks.
const UPDATE_LIMIT: u64 = 40_000_000_000;
const QUERY_LIMIT: u64 = 5_000_000_000;
const INSTALL_LIMIT: u64 = 300_000_000_000;

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

/// Time each benchmark round adds on top of the emulator's own 1 ms (as `World::run_until`).
const ROUND_TIME: Duration = Duration::from_millis(200);

/// Methods only the benchmark calls (non-replicated polling queries): left out of every figure.
const POLLED: &[&str] = &["get_creation_status", "import_status"];

/// A synthetic capsule.
struct Scenario {
    name: &'static str,
    /// Sizes of the capsule's distinct blobs.
    blob_sizes: Vec<usize>,
    memories: u64,
    connections: u32,
    /// Seed of the owner (and so of the blob bytes).
    owner: u32,
}

/// Blob sizes of a realistic mix adding up to exactly `total` bytes: small files and
/// thumbnails (1–64 KiB, half of them), photos (100 KiB–1 MiB), large photos (1–4 MiB) and
/// short videos (4–16 MiB), drawn from a fixed seed.
fn blob_mix(total: usize, seed: u64) -> Vec<usize> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut sizes = vec![];
    let mut sum = 0;
    while sum < total {
        let class = next() % 100;
        let (lo, hi) = match class {
            0..50 => (KIB, 64 * KIB),
            50..85 => (100 * KIB, MIB),
            85..97 => (MIB, 4 * MIB),
            _ => (4 * MIB, 16 * MIB),
        };
        let size = (lo + (next() as usize) % (hi - lo)).min(total - sum);
        sizes.push(size);
        sum += size;
    }
    sizes
}

fn scenarios(quick: bool) -> Vec<Scenario> {
    if quick {
        vec![
            Scenario {
                name: "quick-mixed-4MiB",
                blob_sizes: blob_mix(4 * MIB, 1),
                memories: 200,
                connections: 10,
                owner: 1,
            },
            Scenario {
                name: "quick-large-8MiB",
                blob_sizes: blob_mix(8 * MIB, 2),
                memories: 50,
                connections: 5,
                owner: 2,
            },
            Scenario {
                name: "quick-records-400",
                blob_sizes: vec![],
                memories: 400,
                connections: 20,
                owner: 3,
            },
        ]
    } else {
        vec![
            Scenario {
                name: "mixed-64MiB",
                blob_sizes: blob_mix(64 * MIB, 1),
                memories: 1_000,
                connections: 100,
                owner: 1,
            },
            Scenario {
                name: "large-1GiB",
                blob_sizes: blob_mix(1024 * MIB, 2),
                memories: 1_000,
                connections: 100,
                owner: 2,
            },
            Scenario {
                name: "records-100k",
                blob_sizes: vec![],
                memories: 100_000,
                connections: 100,
                owner: 3,
            },
        ]
    }
}

// ------------------------------------------------------------------------------ filling

/// Submits every message and runs rounds until all have completed; panics on any error.
fn run_batch(w: &World, calls: Vec<(Principal, &str, Vec<u8>)>) {
    let emu = w.emu();
    let ids: Vec<MessageId> = calls
        .into_iter()
        .map(|(who, method, arg)| emu.submit(w.backend, who, method, arg).unwrap())
        .collect();
    for id in ids {
        let reply = emu.await_message(id).unwrap();
        let (r,): (Result<candid::Reserved, Error>,) = candid::decode_args(&reply).unwrap();
        r.unwrap();
    }
}

/// Fills `who`'s capsule on the backend through the capsule API (not measured): blobs first
/// (one upload each), then memories referencing them round-robin, then connections.
fn fill(w: &World, who: Principal, s: &Scenario) {
    let _: CapsuleInfo = w
        .capsule(
            w.backend,
            who,
            "create_capsule",
            (CapsuleInput {
                name: format!("bench {}", s.name),
                bio: "a synthetic capsule of the migration benchmark".into(),
                settings: None,
            },),
        )
        .unwrap();
    let blobs: Vec<BlobDescriptor> = s
        .blob_sizes
        .iter()
        .enumerate()
        .map(|(i, size)| {
            w.upload(
                w.backend,
                who,
                &data(*size, s.owner as u64 * 1_000_000 + i as u64),
            )
        })
        .collect();
    let mime = |size: u64| match size {
        0..65_536 => "application/pdf",
        65_536..4_194_304 => "image/jpeg",
        _ => "video/mp4",
    };
    let per_batch = 500u64;
    let mut i = 0u64;
    while i < s.memories {
        let end = (i + per_batch).min(s.memories);
        let calls = (i..end)
            .map(|m| {
                let attached: Vec<BlobRef> = blobs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j as u64 % s.memories == m)
                    .map(|(_, d)| BlobRef {
                        hash: d.hash,
                        size: d.size,
                        mime_type: mime(d.size).into(),
                    })
                    .collect();
                let input = MemoryInput {
                    title: format!("memory {m} of {}", s.name),
                    description: "a day at the lake with everyone, ".repeat((m % 5) as usize + 1),
                    tags: (0..(m % 4)).map(|t| format!("tag{t}")).collect(),
                    kind: if attached.is_empty() {
                        MemoryKind::Note
                    } else {
                        MemoryKind::Photo
                    },
                    blobs: attached,
                    encryption: (m % 7 == 3).then(|| EncryptionEnvelope {
                        scheme: "x25519-xsalsa20poly1305".into(),
                        wrapped_key: ByteBuf::from(data(48, m)),
                    }),
                };
                (who, "add_memory", candid::encode_args((input,)).unwrap())
            })
            .collect();
        run_batch(w, calls);
        i = end;
    }
    let calls = (0..s.connections)
        .map(|n| {
            let input = ConnectionInput {
                peer: user(1_000_000 + n),
                relationship: ["friend", "sister", "colleague"][n as usize % 3].into(),
                status: ConnectionStatus::Accepted,
            };
            (
                who,
                "add_connection",
                candid::encode_args((input,)).unwrap(),
            )
        })
        .collect();
    run_batch(w, calls);
}

// ------------------------------------------------------------------------------ metering

/// Per-method differences between two snapshots of a canister's statistics.
#[derive(Default, Clone)]
struct Window {
    methods: BTreeMap<String, MethodStats>,
}

impl Window {
    fn between(before: Option<&CanisterStats>, after: &CanisterStats) -> Window {
        let mut methods = BTreeMap::new();
        for (name, a) in &after.methods {
            if POLLED.contains(&name.as_str()) {
                continue;
            }
            let b = before
                .and_then(|b| b.methods.get(name))
                .cloned()
                .unwrap_or_default();
            if a.executions == b.executions && a.calls_received == b.calls_received {
                continue;
            }
            methods.insert(
                name.clone(),
                MethodStats {
                    executions: a.executions - b.executions,
                    calls_received: a.calls_received - b.calls_received,
                    calls_made: a.calls_made - b.calls_made,
                    instructions_total: a.instructions_total - b.instructions_total,
                    // Running maximum: it moved in the window, or the window's maximum is at
                    // most the earlier one (an upper bound, reported as such).
                    instructions_max: a.instructions_max,
                    bytes_in: a.bytes_in - b.bytes_in,
                    bytes_out: a.bytes_out - b.bytes_out,
                    cycles_burnt: a.cycles_burnt - b.cycles_burnt,
                    traps: a.traps - b.traps,
                    heap_delta: a.heap_delta - b.heap_delta,
                },
            );
        }
        Window { methods }
    }

    fn only(mut self, names: &[&str]) -> Window {
        self.methods.retain(|k, _| names.contains(&k.as_str()));
        self
    }

    fn sum(&self, f: impl Fn(&MethodStats) -> u64) -> u64 {
        self.methods.values().map(f).sum()
    }

    fn instructions(&self) -> u64 {
        self.sum(|m| m.instructions_total)
    }

    fn calls_made(&self) -> u64 {
        self.sum(|m| m.calls_made)
    }

    fn method(&self, name: &str) -> MethodStats {
        self.methods.get(name).cloned().unwrap_or_default()
    }
}

/// Instructions of a canister's snapshot, polling queries left out.
fn work(s: &CanisterStats) -> u64 {
    s.total.instructions_total
        - POLLED
            .iter()
            .filter_map(|m| s.methods.get(*m))
            .map(|m| m.instructions_total)
            .sum::<u64>()
}

/// Method names the `.did` files declare as queries.
fn query_methods() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = vec![];
    for did in ["backend/backend.did", "personal/personal.did"] {
        let text = std::fs::read_to_string(root.join(did)).unwrap_or_default();
        for line in text.lines() {
            let line = line.trim();
            if line.trim_end_matches(';').ends_with("query")
                && let Some((name, _)) = line.split_once(':')
            {
                out.push(name.trim().trim_matches('"').to_string());
            }
        }
    }
    out
}

/// The instruction limit of a message of `method`.
fn limit_of(method: &str, queries: &[String]) -> u64 {
    if method.starts_with("canister_init")
        || method.starts_with("canister_post_upgrade")
        || method.starts_with("canister_pre_upgrade")
    {
        INSTALL_LIMIT
    } else if queries.iter().any(|q| q == method) {
        QUERY_LIMIT
    } else {
        UPDATE_LIMIT
    }
}

/// What one side (pipeline or naive copy) cost.
#[derive(Default)]
struct Run {
    rounds: u64,
    backend: Window,
    personal: Window,
    cycles: u128,
    /// Instructions per backend creation state / personal import phase (pipeline only).
    backend_phases: BTreeMap<String, u64>,
    personal_phases: BTreeMap<String, u64>,
}

impl Run {
    fn instructions(&self) -> u64 {
        self.backend.instructions() + self.personal.instructions()
    }

    fn calls(&self) -> u64 {
        self.backend.calls_made() + self.personal.calls_made()
    }

    /// The largest single message against its limit: (ratio, canister/method).
    fn max_message(&self, queries: &[String]) -> (f64, String) {
        let mut best = (0.0, String::new());
        for (side, w) in [("backend", &self.backend), ("personal", &self.personal)] {
            for (name, m) in &w.methods {
                let r = m.instructions_max as f64 / limit_of(name, queries) as f64;
                if r > best.0 {
                    best = (r, format!("{side}.{name}"));
                }
            }
        }
        best
    }
}

fn status(w: &World, who: Principal) -> CreationRecord {
    let (r,): (Result<CreationRecord, FactoryError>,) = w.query(who, "get_creation_status", ());
    r.unwrap()
}

fn import_phase(w: &World, personal: Principal, who: Principal) -> Option<ImportPhase> {
    let r: Result<(ImportStatus,), _> = w.try_query(personal, who, "import_status", ());
    r.ok().map(|(s,)| s.phase)
}

/// Runs the pipeline for `who` to `Completed`; returns its cost and the personal canister.
fn migrate(w: &World, who: Principal) -> (Run, Principal) {
    let emu = w.emu();
    let create_fee = emu.config().prices.create_canister_fee;
    let b0 = emu.stats(w.backend);
    let cycles0 = w.ic.cycle_balance(w.backend);
    let round0 = emu.round();
    let mut run = Run::default();

    w.create_personal_canister(who).unwrap();
    let mut state = status(w, who).state;
    let mut phase: Option<ImportPhase> = None;
    let mut personal: Option<Principal> = None;
    let (mut last_b, mut last_p) = (work(&emu.stats(w.backend)), 0u64);
    // The backend builds the manifest (its root computation) in pump messages from the request
    // until the state first leaves Exporting; a pump can move NotStarted → Exporting → Creating
    // in one message, so those rounds are counted as "Exporting" whatever the state read at
    // their start. The request's own message is "Request".
    let request = emu.stats(w.backend).methods["create_personal_canister"].instructions_total
        - b0.methods
            .get("create_personal_canister")
            .map_or(0, |m| m.instructions_total);
    run.backend_phases.insert("Request".into(), request);
    run.backend_phases
        .insert("Exporting".into(), last_b - work(&b0) - request);
    let mut exported = state > CreationState::Exporting;
    let max_rounds = 2_000_000;
    loop {
        assert!(
            emu.round() - round0 < max_rounds,
            "no final state after {max_rounds} rounds\n{}",
            w.tail_of_trace()
        );
        w.ic.advance_time(ROUND_TIME);
        w.ic.tick();
        let b = work(&emu.stats(w.backend));
        let bucket = if exported { state.name() } else { "Exporting" };
        *run.backend_phases.entry(bucket.into()).or_default() += b - last_b;
        last_b = b;
        if let Some(p) = personal {
            let now = work(&emu.stats(p));
            let name = phase.map_or("Install".to_string(), |p| format!("{p:?}"));
            *run.personal_phases.entry(name).or_default() += now - last_p;
            last_p = now;
        }
        let rec = status(w, who);
        state = rec.state;
        exported |= state > CreationState::Exporting;
        if personal.is_none()
            && let Some(p) = rec.canister_id
        {
            personal = Some(p);
            // Whatever it ran before (its install) counts as the install.
            last_p = work(&emu.stats(p));
            run.personal_phases.insert("Install".into(), last_p);
        }
        if let Some(p) = personal {
            phase = import_phase(w, p, who);
        }
        if state.is_final() {
            assert_eq!(
                state,
                CreationState::Completed,
                "migration failed: {:?}\n{}",
                rec.error,
                w.tail_of_trace()
            );
            break;
        }
    }
    let personal = personal.expect("a completed migration has a canister");
    run.rounds = emu.round() - round0;
    run.backend = Window::between(Some(&b0), &emu.stats(w.backend));
    run.personal = Window::between(None, &emu.stats(personal));
    let backend_spent = cycles0 - w.ic.cycle_balance(w.backend);
    run.cycles = backend_spent - w.ic.cycle_balance(personal) - create_fee;
    (run, personal)
}

/// `bench_naive_copy`'s report (mirrors `backend::naive::NaiveReport`, built only with the
/// `bench-naive` feature).
#[derive(CandidType, Deserialize, Debug)]
struct NaiveReport {
    memories: u64,
    connections: u64,
    blobs: u64,
    blob_bytes: u64,
    calls: u64,
}

/// Upgrades the backend to the bench module and copies `who`'s capsule the naive way.
fn naive_copy(w: &World, who: Principal, s: &Scenario) -> Run {
    let emu = w.emu();
    w.ic.upgrade_canister(
        w.backend,
        module("backend-bench"),
        candid::encode_args(()).unwrap(),
        Some(admin()),
    )
    .expect("upgrade the backend to backend-bench");
    let target = w.ic.create_canister_with_settings(Some(admin()), None);
    w.ic.add_cycles(target, BACKEND_CYCLES);
    let init = PersonalInitArgs {
        owner: w.backend,
        backend: None,
        migration: None,
    };
    w.ic.install_canister(
        target,
        module("personal"),
        candid::encode_args((init,)).unwrap(),
        Some(admin()),
    );
    let b0 = emu.stats(w.backend);
    let t0 = emu.stats(target);
    let cycles0 = w.ic.cycle_balance(w.backend) + w.ic.cycle_balance(target);
    let round0 = emu.round();
    let arg = candid::encode_args((who, target)).unwrap();
    let id = emu
        .submit(w.backend, admin(), "bench_naive_copy", arg)
        .unwrap();
    let reply = loop {
        w.ic.advance_time(ROUND_TIME);
        w.ic.tick();
        if let Some(r) = emu.ingress_status(id) {
            break r.expect("bench_naive_copy");
        }
    };
    let rounds = emu.round() - round0;
    let (report,): (Result<NaiveReport, String>,) = candid::decode_args(&reply).unwrap();
    let report = report.expect("the naive copy");
    assert_eq!(
        (report.memories, report.connections, report.blobs),
        (s.memories, s.connections as u64, s.blob_sizes.len() as u64),
        "the naive copy moved everything"
    );
    let run = Run {
        rounds,
        // The backend's share is the copy's call context (its callbacks included); its
        // interval timer and upgrade hooks are not part of the copy.
        backend: Window::between(Some(&b0), &emu.stats(w.backend)).only(&["bench_naive_copy"]),
        personal: Window::between(Some(&t0), &emu.stats(target)),
        cycles: cycles0 - w.ic.cycle_balance(w.backend) - w.ic.cycle_balance(target),
        ..Run::default()
    };
    let copied: CapsuleInfo = w.capsule(target, w.backend, "get_capsule", ()).unwrap();
    assert_eq!(copied.blob_bytes, s.blob_sizes.iter().sum::<usize>() as u64);
    run
}

// ------------------------------------------------------------------------------ figures

/// A JSON value (the few shapes the report needs; numbers must be finite).
enum J {
    N(f64),
    S(String),
    O(Vec<(String, J)>),
}

impl J {
    fn write(&self, out: &mut String, indent: usize) {
        match self {
            J::N(x) => {
                assert!(x.is_finite(), "non-finite figure {x}");
                if x.fract() == 0.0 && x.abs() < 9e15 {
                    write!(out, "{}", *x as i64).unwrap();
                } else {
                    write!(out, "{x}").unwrap();
                }
            }
            J::S(s) => {
                out.push('"');
                for c in s.chars() {
                    match c {
                        '"' => out.push_str("\\\""),
                        '\\' => out.push_str("\\\\"),
                        c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            J::O(fields) => {
                out.push_str("{\n");
                for (i, (k, v)) in fields.iter().enumerate() {
                    out.push_str(&" ".repeat(indent + 2));
                    J::S(k.clone()).write(out, 0);
                    out.push_str(": ");
                    v.write(out, indent + 2);
                    if i + 1 < fields.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push('}');
            }
        }
    }
}

fn n(x: impl Into<f64>) -> J {
    J::N(x.into())
}

/// Figures of one scenario (the keys of `migration.json`).
struct Metrics {
    name: String,
    bytes: u64,
    blob_bytes: u64,
    rounds: u64,
    calls: u64,
    reply_fill_ratio: f64,
    personal_instructions_per_byte: f64,
    backend_instructions_per_byte: f64,
    /// Records: the capsule's memories and connections (the leaves the importer writes as
    /// records; the capsule leaf and blob leaves are not counted).
    records: u64,
    personal_instructions_per_record: f64,
    backend_instructions_per_record: f64,
    backend_phases: BTreeMap<String, u64>,
    personal_phases: BTreeMap<String, u64>,
    max_message_instructions_ratio: f64,
    max_message: String,
    cycles_per_gib: f64,
    verification_instructions: u64,
    baseline_instruction_ratio: f64,
    baseline_call_ratio: f64,
    baseline_round_ratio: f64,
    json: J,
}

fn per_method(w: &Window) -> J {
    J::O(
        w.methods
            .iter()
            .map(|(name, m)| {
                (
                    name.clone(),
                    J::O(vec![
                        ("executions".into(), n(m.executions as f64)),
                        ("calls_received".into(), n(m.calls_received as f64)),
                        ("calls_made".into(), n(m.calls_made as f64)),
                        ("instructions_total".into(), n(m.instructions_total as f64)),
                        ("instructions_max".into(), n(m.instructions_max as f64)),
                        ("bytes_in".into(), n(m.bytes_in as f64)),
                        ("bytes_out".into(), n(m.bytes_out as f64)),
                    ]),
                )
            })
            .collect(),
    )
}

fn phases(p: &BTreeMap<String, u64>) -> J {
    J::O(p.iter().map(|(k, v)| (k.clone(), n(*v as f64))).collect())
}

fn measure(s: &Scenario, queries: &[String], naive: bool) -> Metrics {
    let w = match WASM_DIR.get().cloned().flatten() {
        None => World::new(),
        Some(_) => World::with_backend_wasm(module("backend"), true),
    };
    let who = user(s.owner);
    fill(&w, who, s);
    let (ours, _personal) = migrate(&w, who);
    eprintln!(
        "bench: {} pipeline: {} rounds, backend {} instructions {:?}, personal {} {:?}",
        s.name,
        ours.rounds,
        ours.backend.instructions(),
        ours.backend_phases,
        ours.personal.instructions(),
        ours.personal_phases
    );
    // Without the naive copy its figures are zero (and the baseline ratios with them).
    let naive = if naive {
        naive_copy(&w, who, s)
    } else {
        Run::default()
    };

    let blob_bytes = s.blob_sizes.iter().sum::<usize>() as u64;
    let chunks = ours.backend.method("export_chunks");
    let pages = ours.backend.method("export_manifest_page");
    let bytes = chunks.bytes_out + pages.bytes_out;
    let (reply_fill_ratio, reply_fill_basis) = if chunks.calls_received > 0 {
        (
            blob_bytes as f64 / chunks.calls_received as f64 / MAX_REPLY_BYTES as f64,
            "chunk bytes per export_chunks reply",
        )
    } else {
        (
            pages.bytes_out as f64 / pages.calls_received.max(1) as f64 / MAX_REPLY_BYTES as f64,
            "bytes per export_manifest_page reply (no chunks)",
        )
    };
    let per_byte = |i: u64| i as f64 / bytes.max(1) as f64;
    let (max_ratio, max_method) = ours.max_message(queries);
    let verification_backend = ours.backend_phases.get("Exporting").copied().unwrap_or(0);
    let verification_personal = ours.personal_phases.get("Verifying").copied().unwrap_or(0);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let records = s.memories + s.connections as u64;
    let m = Metrics {
        name: s.name.into(),
        bytes,
        blob_bytes,
        rounds: ours.rounds,
        calls: ours.calls(),
        reply_fill_ratio,
        personal_instructions_per_byte: per_byte(ours.personal.instructions()),
        backend_instructions_per_byte: per_byte(ours.backend.instructions()),
        records,
        personal_instructions_per_record: ratio(
            ours.personal.instructions() as f64,
            records as f64,
        ),
        backend_instructions_per_record: ratio(ours.backend.instructions() as f64, records as f64),
        backend_phases: ours.backend_phases.clone(),
        personal_phases: ours.personal_phases.clone(),
        max_message_instructions_ratio: max_ratio,
        max_message: max_method.clone(),
        cycles_per_gib: ours.cycles as f64 / (bytes.max(1) as f64 / GIB),
        verification_instructions: verification_backend + verification_personal,
        baseline_instruction_ratio: ratio(naive.instructions() as f64, ours.instructions() as f64),
        baseline_call_ratio: ratio(naive.calls() as f64, ours.calls() as f64),
        baseline_round_ratio: ratio(naive.rounds as f64, ours.rounds as f64),
        json: J::O(vec![]),
    };
    let (naive_max, naive_max_method) = naive.max_message(queries);
    let json = J::O(vec![
        ("name".into(), J::S(m.name.clone())),
        ("bytes".into(), n(m.bytes as f64)),
        ("blob_bytes".into(), n(m.blob_bytes as f64)),
        ("rounds".into(), n(m.rounds as f64)),
        ("calls".into(), n(m.calls as f64)),
        ("reply_fill_ratio".into(), n(m.reply_fill_ratio)),
        (
            "personal_instructions_per_byte".into(),
            n(m.personal_instructions_per_byte),
        ),
        (
            "backend_instructions_per_byte".into(),
            n(m.backend_instructions_per_byte),
        ),
        (
            "personal_instructions_per_record".into(),
            n(m.personal_instructions_per_record),
        ),
        (
            "backend_instructions_per_record".into(),
            n(m.backend_instructions_per_record),
        ),
        (
            "max_message_instructions_ratio".into(),
            n(m.max_message_instructions_ratio),
        ),
        ("cycles_per_gib".into(), n(m.cycles_per_gib)),
        (
            "verification_instructions".into(),
            n(m.verification_instructions as f64),
        ),
        (
            "baseline_instruction_ratio".into(),
            n(m.baseline_instruction_ratio),
        ),
        ("baseline_call_ratio".into(), n(m.baseline_call_ratio)),
        ("baseline_round_ratio".into(), n(m.baseline_round_ratio)),
        // Details.
        ("reply_fill_basis".into(), J::S(reply_fill_basis.into())),
        ("max_message".into(), J::S(max_method)),
        ("records".into(), n(m.records as f64)),
        ("memories".into(), n(s.memories as f64)),
        ("connections".into(), n(s.connections)),
        ("blobs".into(), n(s.blob_sizes.len() as f64)),
        (
            "export_chunks_replies".into(),
            n(chunks.calls_received as f64),
        ),
        (
            "export_manifest_page_replies".into(),
            n(pages.calls_received as f64),
        ),
        ("instructions".into(), n(ours.instructions() as f64)),
        (
            "backend_instructions".into(),
            n(ours.backend.instructions() as f64),
        ),
        (
            "personal_instructions".into(),
            n(ours.personal.instructions() as f64),
        ),
        ("cycles".into(), n(ours.cycles as f64)),
        (
            "verification_instructions_backend".into(),
            n(verification_backend as f64),
        ),
        (
            "verification_instructions_personal".into(),
            n(verification_personal as f64),
        ),
        (
            "backend_phase_instructions".into(),
            phases(&ours.backend_phases),
        ),
        (
            "personal_phase_instructions".into(),
            phases(&ours.personal_phases),
        ),
        ("backend_methods".into(), per_method(&ours.backend)),
        ("personal_methods".into(), per_method(&ours.personal)),
        (
            "naive".into(),
            J::O(vec![
                ("rounds".into(), n(naive.rounds as f64)),
                ("calls".into(), n(naive.calls() as f64)),
                ("instructions".into(), n(naive.instructions() as f64)),
                (
                    "backend_instructions".into(),
                    n(naive.backend.instructions() as f64),
                ),
                (
                    "personal_instructions".into(),
                    n(naive.personal.instructions() as f64),
                ),
                ("cycles".into(), n(naive.cycles as f64)),
                ("max_message_instructions_ratio".into(), n(naive_max)),
                ("max_message".into(), J::S(naive_max_method)),
                ("backend_methods".into(), per_method(&naive.backend)),
                ("personal_methods".into(), per_method(&naive.personal)),
            ]),
        ),
    ]);
    Metrics { json, ..m }
}

fn si(x: f64) -> String {
    let a = x.abs();
    if a >= 1e12 {
        format!("{:.2}T", x / 1e12)
    } else if a >= 1e9 {
        format!("{:.2}G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}K", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// A table row: its label and how a scenario's cell is written.
type Row = (&'static str, Box<dyn Fn(&Metrics) -> String>);

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / MIB as f64)
}

fn table(ms: &[Metrics]) -> String {
    let mut t = String::new();
    let rows: Vec<Row> = vec![
        ("bytes moved", Box::new(|m| mib(m.bytes))),
        ("blob bytes", Box::new(|m| mib(m.blob_bytes))),
        ("rounds", Box::new(|m| m.rounds.to_string())),
        ("calls", Box::new(|m| m.calls.to_string())),
        (
            "reply fill (>= 0.85)",
            Box::new(|m| format!("{:.3}", m.reply_fill_ratio)),
        ),
        (
            "personal instr/B (<= 25)",
            Box::new(|m| format!("{:.2}", m.personal_instructions_per_byte)),
        ),
        (
            "backend instr/B (<= 60)",
            Box::new(|m| format!("{:.2}", m.backend_instructions_per_byte)),
        ),
        (
            "personal instr/record",
            Box::new(|m| si(m.personal_instructions_per_record)),
        ),
        (
            "backend instr/record",
            Box::new(|m| si(m.backend_instructions_per_record)),
        ),
        (
            "max msg / limit (<= 0.10)",
            Box::new(|m| format!("{:.4}", m.max_message_instructions_ratio)),
        ),
        ("  largest message", Box::new(|m| m.max_message.clone())),
        ("cycles/GiB (<= 1.3T)", Box::new(|m| si(m.cycles_per_gib))),
        (
            "verification instr",
            Box::new(|m| si(m.verification_instructions as f64)),
        ),
        (
            "naive/ours instr (>= 1)",
            Box::new(|m| format!("{:.2}", m.baseline_instruction_ratio)),
        ),
        (
            "naive/ours calls",
            Box::new(|m| format!("{:.1}", m.baseline_call_ratio)),
        ),
        (
            "naive/ours rounds",
            Box::new(|m| format!("{:.1}", m.baseline_round_ratio)),
        ),
    ];
    let width = ms
        .iter()
        .map(|m| m.name.len().max(m.max_message.len()))
        .max()
        .unwrap_or(10)
        + 2;
    write!(t, "{:<28}", "scenario").unwrap();
    for m in ms {
        write!(t, "{:>width$}", m.name).unwrap();
    }
    t.push('\n');
    for (label, f) in rows {
        write!(t, "{label:<28}").unwrap();
        for m in ms {
            write!(t, "{:>width$}", f(m)).unwrap();
        }
        t.push('\n');
    }
    t.push_str(&phase_table(ms, width));
    t
}

/// Where the instructions go: per canister and per phase (the backend's creation state, the
/// personal canister's import phase, at the start of each round), then the methods of each
/// canister (callbacks count under the method whose call context they belong to; the
/// importer's calls are made from timers).
fn phase_table(ms: &[Metrics], width: usize) -> String {
    let mut t = String::from("instructions by phase\n");
    let mut row = |label: String, cell: &dyn Fn(&Metrics) -> Option<u64>| {
        write!(t, "{label:<28}").unwrap();
        for m in ms {
            let text = cell(m).map_or("-".to_string(), |x| si(x as f64));
            write!(t, "{text:>width$}").unwrap();
        }
        t.push('\n');
    };
    type Phases = fn(&Metrics) -> &BTreeMap<String, u64>;
    let sides: [(&str, Phases); 2] = [
        ("backend", |m| &m.backend_phases),
        ("personal", |m| &m.personal_phases),
    ];
    for (side, phases) in sides {
        let names: std::collections::BTreeSet<&String> =
            ms.iter().flat_map(|m| phases(m).keys()).collect();
        for name in names {
            row(format!("  {side} {name}"), &|m| {
                phases(m).get(name).copied()
            });
            row("    per record".to_string(), &|m| {
                phases(m).get(name).map(|x| x / m.records.max(1))
            });
        }
    }
    t
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
    let mut text = String::from("{\n  \"scenarios\": [\n");
    for (i, m) in results.iter().enumerate() {
        text.push_str("    ");
        m.json.write(&mut text, 4);
        text.push_str(if i + 1 < results.len() { ",\n" } else { "\n" });
    }
    let (scale, scale_table) = factory::report(quick);
    text.push_str("  ],\n  \"factory\": ");
    scale.write(&mut text, 2);
    text.push_str("\n}\n");
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
