//! Metering: per-method windows of the emulator's statistics, the pipeline run round by round
//! with its instructions attributed to each canister's phase, and the naive copy.

use super::*;

/// Instruction limits (IC): update, callback and timer messages; queries; install hooks.
pub const UPDATE_LIMIT: u64 = 40_000_000_000;
pub const QUERY_LIMIT: u64 = 5_000_000_000;
pub const INSTALL_LIMIT: u64 = 300_000_000_000;

/// Time each benchmark round adds on top of the emulator's own 1 ms (as `World::run_until`).
pub const ROUND_TIME: Duration = Duration::from_millis(200);

/// Methods only the benchmark calls (non-replicated polling queries): left out of every figure.
pub const POLLED: &[&str] = &["get_creation_status", "import_status"];

/// Per-method differences between two snapshots of a canister's statistics.
#[derive(Default, Clone)]
pub struct Window {
    pub methods: BTreeMap<String, MethodStats>,
}

impl Window {
    pub fn between(before: Option<&CanisterStats>, after: &CanisterStats) -> Window {
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

    pub fn only(mut self, names: &[&str]) -> Window {
        self.methods.retain(|k, _| names.contains(&k.as_str()));
        self
    }

    pub fn sum(&self, f: impl Fn(&MethodStats) -> u64) -> u64 {
        self.methods.values().map(f).sum()
    }

    pub fn instructions(&self) -> u64 {
        self.sum(|m| m.instructions_total)
    }

    pub fn calls_made(&self) -> u64 {
        self.sum(|m| m.calls_made)
    }

    pub fn method(&self, name: &str) -> MethodStats {
        self.methods.get(name).cloned().unwrap_or_default()
    }
}

/// Instructions of a canister's snapshot, polling queries left out.
pub fn work(s: &CanisterStats) -> u64 {
    s.total.instructions_total
        - POLLED
            .iter()
            .filter_map(|m| s.methods.get(*m))
            .map(|m| m.instructions_total)
            .sum::<u64>()
}

/// Method names the `.did` files declare as queries.
pub fn query_methods() -> Vec<String> {
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
pub fn limit_of(method: &str, queries: &[String]) -> u64 {
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
pub struct Run {
    pub rounds: u64,
    pub backend: Window,
    pub personal: Window,
    pub cycles: u128,
    /// Instructions per backend creation state / personal import phase (pipeline only).
    pub backend_phases: BTreeMap<String, u64>,
    pub personal_phases: BTreeMap<String, u64>,
}

impl Run {
    pub fn instructions(&self) -> u64 {
        self.backend.instructions() + self.personal.instructions()
    }

    pub fn calls(&self) -> u64 {
        self.backend.calls_made() + self.personal.calls_made()
    }

    /// The largest single message against its limit: (ratio, canister/method).
    pub fn max_message(&self, queries: &[String]) -> (f64, String) {
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

pub fn status(w: &World, who: Principal) -> CreationRecord {
    let (r,): (Result<CreationRecord, FactoryError>,) = w.query(who, "get_creation_status", ());
    r.unwrap()
}

pub fn import_phase(w: &World, personal: Principal, who: Principal) -> Option<ImportPhase> {
    let r: Result<(ImportStatus,), _> = w.try_query(personal, who, "import_status", ());
    r.ok().map(|(s,)| s.phase)
}

/// Runs the pipeline for `who` to `Completed`; returns its cost and the personal canister.
pub fn migrate(w: &World, who: Principal) -> (Run, Principal) {
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
pub struct NaiveReport {
    memories: u64,
    connections: u64,
    blobs: u64,
    blob_bytes: u64,
    calls: u64,
}

/// Upgrades the backend to the bench module and copies `who`'s capsule the naive way.
pub fn naive_copy(w: &World, who: Principal, s: &Scenario) -> Run {
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
