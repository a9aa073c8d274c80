//! The figures of one scenario (the objects of `migration.json`'s `"scenarios"`), measured by
//! running the pipeline and, in the same world, the naive copy.

use serde::Serialize;

use super::*;

/// Figures of one scenario: the headline figures first, then the details they come from.
/// Serialized as is: the field names are the keys of `migration.json`.
#[derive(Serialize)]
pub struct Metrics {
    pub name: String,
    pub bytes: u64,
    pub blob_bytes: u64,
    pub rounds: u64,
    pub calls: u64,
    pub reply_fill_ratio: f64,
    pub personal_instructions_per_byte: f64,
    pub backend_instructions_per_byte: f64,
    pub personal_instructions_per_record: f64,
    pub backend_instructions_per_record: f64,
    pub max_message_instructions_ratio: f64,
    pub cycles_per_gib: f64,
    pub verification_instructions: u64,
    pub baseline_instruction_ratio: f64,
    pub baseline_call_ratio: f64,
    pub baseline_round_ratio: f64,
    // Details.
    pub reply_fill_basis: &'static str,
    pub max_message: String,
    /// Records: the capsule's memories and connections (the leaves the importer writes as
    /// records; the capsule leaf and blob leaves are not counted).
    pub records: u64,
    pub memories: u64,
    pub connections: u32,
    pub blobs: u64,
    pub export_chunks_replies: u64,
    pub export_raw_manifest_page_replies: u64,
    pub instructions: u64,
    pub backend_instructions: u64,
    pub personal_instructions: u64,
    pub cycles: u128,
    pub verification_instructions_backend: u64,
    pub verification_instructions_personal: u64,
    /// Instructions per backend creation state (at the start of each round).
    #[serde(rename = "backend_phase_instructions")]
    pub backend_phases: BTreeMap<String, u64>,
    /// Instructions per personal import phase (at the start of each round).
    #[serde(rename = "personal_phase_instructions")]
    pub personal_phases: BTreeMap<String, u64>,
    /// Each method's share of the run (the emulator's counters).
    pub backend_methods: BTreeMap<String, MethodStats>,
    pub personal_methods: BTreeMap<String, MethodStats>,
    /// The naive copy of the same capsule (zeros with `--no-naive`).
    pub naive: NaiveFigures,
}

/// What the naive copy cost.
#[derive(Serialize)]
pub struct NaiveFigures {
    pub rounds: u64,
    pub calls: u64,
    pub instructions: u64,
    pub backend_instructions: u64,
    pub personal_instructions: u64,
    pub cycles: u128,
    pub max_message_instructions_ratio: f64,
    pub max_message: String,
    pub backend_methods: BTreeMap<String, MethodStats>,
    pub personal_methods: BTreeMap<String, MethodStats>,
}

/// Fills a capsule for scenario `s`, migrates it and (with `naive`) copies it the naive way.
pub fn measure(s: &Scenario, queries: &[String], naive: bool) -> Metrics {
    let w = match WASM_DIR.get().cloned().flatten() {
        None => World::new(),
        Some(_) => World::with_backend_wasm(module("backend"), true),
    };
    let who = user(s.owner);
    fill(&w, who, s);
    let (ours, personal) = migrate(&w, who);
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
    let pages = ours.backend.method("export_raw_manifest_page");
    let bytes = chunks.bytes_out + pages.bytes_out;
    let (reply_fill_ratio, reply_fill_basis) = if chunks.calls_received > 0 {
        (
            blob_bytes as f64 / chunks.calls_received as f64 / MAX_REPLY_BYTES as f64,
            "chunk bytes per export_chunks reply",
        )
    } else {
        (
            pages.bytes_out as f64 / pages.calls_received.max(1) as f64 / MAX_REPLY_BYTES as f64,
            "bytes per export_raw_manifest_page reply (no chunks)",
        )
    };
    let per_byte = |i: u64| i as f64 / bytes.max(1) as f64;
    let (max_ratio, max_method) = ours.max_message(queries);
    let verification_backend = ours.backend_phases.get("Exporting").copied().unwrap_or(0);
    let verification_personal = match ours.personal_phases.get("Verifying") {
        Some(&v) if v > 0 => v,
        // The personal canister's verification began and ended within one round, so its
        // instructions were counted with the round's phase at its start (Records): measure the
        // same walk over its store through its `capsule_root` instead.
        _ => root_walk_instructions(&w, personal, who),
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let records = s.memories + s.connections as u64;
    let (naive_max, naive_max_method) = naive.max_message(queries);
    Metrics {
        name: s.name.into(),
        bytes,
        blob_bytes,
        rounds: ours.rounds,
        calls: ours.calls(),
        reply_fill_ratio,
        personal_instructions_per_byte: per_byte(ours.personal.instructions()),
        backend_instructions_per_byte: per_byte(ours.backend.instructions()),
        personal_instructions_per_record: ratio(
            ours.personal.instructions() as f64,
            records as f64,
        ),
        backend_instructions_per_record: ratio(ours.backend.instructions() as f64, records as f64),
        max_message_instructions_ratio: max_ratio,
        cycles_per_gib: ours.cycles as f64 / (bytes.max(1) as f64 / GIB),
        verification_instructions: verification_backend + verification_personal,
        baseline_instruction_ratio: ratio(naive.instructions() as f64, ours.instructions() as f64),
        baseline_call_ratio: ratio(naive.calls() as f64, ours.calls() as f64),
        baseline_round_ratio: ratio(naive.rounds as f64, ours.rounds as f64),
        reply_fill_basis,
        max_message: max_method,
        records,
        memories: s.memories,
        connections: s.connections,
        blobs: s.blob_sizes.len() as u64,
        export_chunks_replies: chunks.calls_received,
        export_raw_manifest_page_replies: pages.calls_received,
        instructions: ours.instructions(),
        backend_instructions: ours.backend.instructions(),
        personal_instructions: ours.personal.instructions(),
        cycles: ours.cycles,
        verification_instructions_backend: verification_backend,
        verification_instructions_personal: verification_personal,
        backend_phases: ours.backend_phases.clone(),
        personal_phases: ours.personal_phases.clone(),
        backend_methods: ours.backend.methods.clone(),
        personal_methods: ours.personal.methods.clone(),
        naive: NaiveFigures {
            rounds: naive.rounds,
            calls: naive.calls(),
            instructions: naive.instructions(),
            backend_instructions: naive.backend.instructions(),
            personal_instructions: naive.personal.instructions(),
            cycles: naive.cycles,
            max_message_instructions_ratio: naive_max,
            max_message: naive_max_method,
            backend_methods: naive.backend.methods.clone(),
            personal_methods: naive.personal.methods.clone(),
        },
    }
}

/// The whole `migration.json`.
#[derive(Serialize)]
pub struct Report<'a> {
    pub scenarios: &'a [Metrics],
    pub factory: factory::Report,
}

/// Instructions of one `capsule_root` of `who` on the personal canister: the walk over its
/// store (`ManifestWalk`) that its import's Verifying step runs, in one message.
fn root_walk_instructions(w: &World, personal: Principal, who: Principal) -> u64 {
    let spent = || {
        w.emu()
            .stats(personal)
            .methods
            .get("capsule_root")
            .map_or(0, |m| m.instructions_total)
    };
    let before = spent();
    let root: serde_bytes::ByteBuf = w
        .capsule(personal, who, "capsule_root", ())
        .expect("capsule_root of the migrated capsule");
    assert_eq!(root.len(), 32);
    spent() - before
}
