//! The factory and the importer together, the real wasm of both canisters, through random
//! interleavings on the emulator (a property test): calls rejected with every code, replies
//! held back until bounded waits time out (lost replies), timer messages that trap after their
//! awaits, upgrades of either side, an admin's cleanup, and owner actions in every state (stop,
//! start, delete, uninstall, reinstall a lying module, withdraw the cycles, upgrade, retry, edit
//! the capsule).
//!
//! Why the emulator and not a scripted fake behind a trait: the emulator is the project's one
//! model of the IC (messages, rounds, rejects, traps and their rollback, timers, cycles, the
//! management canister), and here it runs the very modules that are deployed. A second model
//! written for this test would be one more thing that can drift from the replica; faults the
//! emulator injects reach the code through the same system API the IC uses.
//!
//! After every run, once the faults are gone and the deadlines have passed, it checks:
//! - every creation is final;
//! - no canister exists that no record names;
//! - reserve + spent − returned = topped up, to the cycle, and the reserve is backed;
//! - a `Completed` creation's canister has only the owner as controller and holds the export
//!   root (unless the owner changed its code after the handoff: an owner's call sent just
//!   before it may run just after, see `Run::owner`), and the shared capsule points to it;
//! - a `Failed` creation's capsule is unchanged (as the owner last wrote it) and writable.
//!
//! `PROPTEST_CASES` sets the number of runs (default 24; each is a few emulated hours).

#![cfg(not(feature = "pocketic"))]

use std::collections::BTreeMap;
use std::time::Duration;

use backend::factory::types::*;
use candid::Principal;
use capsule::*;
use e2e::*;
use emulator::RejectCode;
use migration::protocol::ImportStatus;
use proptest::prelude::*;

/// The timer executor of ic-cdk-timers: every timer message of both canisters runs in it.
const TIMER: &str = "<ic-cdk internal> timer_executor";
const ROUND: Duration = Duration::from_millis(200);
const OWNERS: usize = 2;

#[derive(Clone, Copy, Debug)]
enum Target {
    Backend,
    Management,
    Personal(usize),
}

/// The methods one canister calls on the other (rejects are aimed at these, not at the test's
/// own ingress calls).
const BACKEND_METHODS: [&str; 5] = [
    "export_raw_manifest_page",
    "export_chunks",
    "report_import_progress",
    "report_import_done",
    "deposit_returned_cycles",
];
const PERSONAL_METHODS: [&str; 3] = ["import_status", "api_version", "return_cycles"];

#[derive(Clone, Debug)]
enum OwnerAction {
    Stop,
    Start,
    Delete,
    Uninstall,
    /// Reinstall the hostile module in this mode.
    Lie(&'static str),
    Drain,
    Upgrade,
    Retry,
    Edit,
}

#[derive(Clone, Debug)]
enum Event {
    /// Rounds of 200 ms.
    Run(u8),
    /// The next `n` calls of one method (by index) on the target are rejected with `code`
    /// (on the management canister: of any method).
    Reject(Target, usize, RejectCode, u8),
    /// Messages to the target are held while ten minutes pass: bounded waits time out and the
    /// replies arrive after their callers gave up.
    Stall(Target),
    /// Every timer message of the backend (or of a personal canister) traps for a few rounds.
    TrapTimers(Option<usize>, u8),
    UpgradeBackend,
    AdminCleanup(usize),
    Owner(usize, OwnerAction),
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Backend),
        Just(Target::Management),
        (0..OWNERS).prop_map(Target::Personal),
    ]
}

fn code() -> impl Strategy<Value = RejectCode> {
    prop_oneof![
        Just(RejectCode::SysFatal),
        Just(RejectCode::SysTransient),
        Just(RejectCode::DestinationInvalid),
        Just(RejectCode::CanisterReject),
        Just(RejectCode::CanisterError),
        Just(RejectCode::SysUnknown),
    ]
}

fn owner_action() -> impl Strategy<Value = OwnerAction> {
    prop_oneof![
        Just(OwnerAction::Stop),
        Just(OwnerAction::Start),
        Just(OwnerAction::Delete),
        Just(OwnerAction::Uninstall),
        prop_oneof![
            Just("lying"),
            Just("garbage"),
            Just("bomb"),
            Just("trap"),
            Just("wrong_type")
        ]
        .prop_map(OwnerAction::Lie),
        Just(OwnerAction::Drain),
        Just(OwnerAction::Upgrade),
        Just(OwnerAction::Retry),
        Just(OwnerAction::Retry),
        Just(OwnerAction::Edit),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (1u8..30).prop_map(Event::Run),
        3 => (target(), 0usize..5, code(), 1u8..4).prop_map(|(t, m, c, n)| Event::Reject(t, m, c, n)),
        1 => target().prop_map(Event::Stall),
        1 => (prop::option::of(0..OWNERS), 1u8..8).prop_map(|(c, n)| Event::TrapTimers(c, n)),
        1 => Just(Event::UpgradeBackend),
        1 => (0..OWNERS).prop_map(Event::AdminCleanup),
        4 => ((0..OWNERS), owner_action()).prop_map(|(o, a)| Event::Owner(o, a)),
    ]
}

struct Run {
    w: World,
    owners: Vec<Principal>,
    /// Each owner's capsule as they last wrote it.
    written: BTreeMap<Principal, Everything>,
    hostile: Vec<u8>,
}

impl Run {
    fn new() -> Run {
        let w = World::new();
        set_config(
            &w,
            FactoryConfig {
                max_attempts_per_owner_per_day: Some(100),
                ..config(&w)
            },
        );
        let owners: Vec<Principal> = (0..OWNERS).map(|i| user(40 + i as u32)).collect();
        let mut written = BTreeMap::new();
        for (i, who) in owners.iter().enumerate() {
            w.fill_capsule(*who, &[1_000 + i, 256 * 1024 + 5, 700 * 1024], 4, 2);
            written.insert(*who, everything_of(&w, *who));
            w.create_personal_canister(*who).unwrap();
        }
        let hostile = emulator::canisters::build_canister("hostile")
            .expect("build the hostile canister")
            .to_vec();
        Run {
            w,
            owners,
            written,
            hostile,
        }
    }

    fn personal(&self, i: usize) -> Option<Principal> {
        self.w
            .status(self.owners[i])
            .ok()
            .and_then(|r| r.canister_id)
    }

    fn principal(&self, t: Target) -> Option<Principal> {
        match t {
            Target::Backend => Some(self.w.backend),
            Target::Management => Some(Principal::management_canister()),
            Target::Personal(i) => self.personal(i),
        }
    }

    fn rounds(&self, n: u64, step: Duration) {
        self.w.run_rounds(n, step);
    }

    fn apply(&mut self, e: &Event) {
        let w = &self.w;
        match e {
            Event::Run(n) => self.rounds(*n as u64, ROUND),
            Event::Reject(t, m, code, n) => {
                let method = match t {
                    Target::Backend => Some(BACKEND_METHODS[m % BACKEND_METHODS.len()]),
                    Target::Personal(_) => Some(PERSONAL_METHODS[m % PERSONAL_METHODS.len()]),
                    Target::Management => None,
                };
                if let Some(p) = self.principal(*t) {
                    let why = "injected by the property test";
                    w.emu().reject_next(p, method, *n as u32, *code, why);
                }
            }
            Event::Stall(t) => {
                if let Some(p) = self.principal(*t) {
                    w.emu().pause(p);
                    self.rounds(5, Duration::from_secs(120));
                    w.emu().resume(p);
                }
            }
            Event::TrapTimers(c, n) => {
                let canister = match c {
                    None => Some(w.backend),
                    Some(i) => self.personal(*i),
                };
                if let Some(c) = canister {
                    w.emu().trap_method(c, TIMER);
                    self.rounds(*n as u64, ROUND);
                    w.emu().clear_faults();
                }
            }
            Event::UpgradeBackend => {
                let r = w.upgrade_backend(wasm("backend"));
                if let Err(e) = r {
                    // Refused while a create_canister call is in flight, or hit by a reject
                    // injected on the management canister; nothing else.
                    assert!(
                        e.reject_message.contains("upgrade refused")
                            || e.reject_message.contains("injected by the property test"),
                        "the backend's upgrade failed: {e:?}"
                    );
                }
            }
            Event::AdminCleanup(i) => {
                // Sent, not awaited: the cleanup's calls interleave with the events that follow
                // (it may be refused: `Completed`, a cleanup running).
                if let Ok(rec) = w.status(self.owners[*i]) {
                    let arg = candid::encode_one(rec.migration_id).unwrap();
                    let _ =
                        w.ic.submit_call(w.backend, admin(), "admin_cleanup_creation", arg);
                }
            }
            Event::Owner(i, action) => self.owner(*i, action),
        }
    }

    /// What an owner does. Acts on the personal canister only while the backend is one of its
    /// controllers, that is before control passed to the owner (the record may say `Verifying`
    /// a little longer: the handoff's last callback has not run yet). Afterwards the canister
    /// is theirs to do anything with, and nothing is checked of it.
    ///
    /// The controllers are read when the owner's call is sent; the call runs in the next
    /// round, and the handoff's `update_settings` (to the owner alone) may run before it in
    /// that round. The owner's call then acts on a canister that is already theirs: `check`
    /// tells these apart by the canister's history (`owner_changed_code_after_handoff`).
    fn owner(&mut self, i: usize, action: &OwnerAction) {
        let who = self.owners[i];
        let w = &self.w;
        let canister = w
            .status(who)
            .ok()
            .and_then(|r| r.canister_id)
            .filter(|c| w.ic.canister_exists(*c))
            .filter(|c| w.ic.get_controllers(*c).contains(&w.backend));
        match (action, canister) {
            (OwnerAction::Retry, _) => {
                let _ = w.create_personal_canister(who);
            }
            (OwnerAction::Edit, _) => {
                let edit: Result<Memory, capsule::Error> =
                    w.capsule(w.backend, who, "add_memory", (note("edited"),));
                if edit.is_ok() {
                    self.written.insert(who, everything_of(w, who));
                }
            }
            (_, None) => {}
            (OwnerAction::Stop, Some(c)) => {
                let _ = w.ic.stop_canister(c, Some(who));
            }
            (OwnerAction::Start, Some(c)) => {
                let _ = w.ic.start_canister(c, Some(who));
            }
            (OwnerAction::Delete, Some(c)) => {
                let _ = w.ic.stop_canister(c, Some(who));
                let _ = w.ic.delete_canister(c, Some(who));
            }
            (OwnerAction::Uninstall, Some(c)) => {
                let _ = w.ic.uninstall_canister(c, Some(who));
            }
            (OwnerAction::Lie(mode), Some(c)) => {
                let arg = candid::encode_one(Some(mode.to_string())).unwrap();
                let _ =
                    w.ic.reinstall_canister(c, self.hostile.clone(), arg, Some(who));
            }
            (OwnerAction::Drain, Some(c)) => w.emu().drain_cycles(c),
            (OwnerAction::Upgrade, Some(c)) => {
                let arg =
                    candid::encode_one(None::<migration::protocol::PersonalInitArgs>).unwrap();
                let _ = w.ic.upgrade_canister(c, wasm("personal"), arg, Some(who));
            }
        }
    }

    /// Faults off; time passes until every creation is final (deadlines are at most a few
    /// hours for these capsules).
    fn settle(&self) {
        let w = &self.w;
        w.emu().clear_faults();
        for c in w.emu().canister_ids() {
            w.emu().resume(c);
        }
        let all_final = |w: &World| {
            self.owners
                .iter()
                .all(|o| w.status(*o).map_or(true, |r| r.state.is_final()))
        };
        for step in [ROUND, Duration::from_secs(60), Duration::from_secs(600)] {
            for _ in 0..600 {
                if all_final(w) {
                    return;
                }
                w.ic.advance_time(step);
                w.ic.tick();
            }
        }
        let open: Vec<_> = self.owners.iter().map(|o| w.status(*o)).collect();
        panic!("creations never ended: {open:?}\n{}", w.tail_of_trace());
    }

    fn check(&self) {
        let w = &self.w;
        let mut named = vec![w.backend];
        for who in &self.owners {
            let rec = w.status(*who).unwrap();
            named.extend(rec.created_canisters.clone().unwrap_or_default());
            match rec.state {
                CreationState::Completed => {
                    let c = rec
                        .canister_id
                        .expect("a completed creation has its canister");
                    // Gone only if the owner deleted it after the handoff (see `owner`): the
                    // backend stops being a controller before the record says `Completed`.
                    if w.ic.canister_exists(c) {
                        assert_eq!(
                            w.ic.get_controllers(c),
                            vec![*who],
                            "only the owner controls it"
                        );
                    }
                    if w.ic.canister_exists(c) && !owner_changed_code_after_handoff(w, c, *who) {
                        // The owner may have stopped it or drained it while it was importing:
                        // as its only controller they start it, and anyone may top it up.
                        let _ = w.ic.start_canister(c, Some(*who));
                        w.ic.add_cycles(c, 1_000_000_000_000);
                        let (status,): (ImportStatus,) =
                            w.try_query(c, *who, "import_status", ()).unwrap();
                        let root = rec.manifest.as_ref().unwrap().root;
                        assert_eq!(status.root.map(|r| r.into_array()), Some(root.into_array()));
                    }
                    let shared: CapsuleInfo =
                        w.capsule(w.backend, *who, "get_capsule", ()).unwrap();
                    assert_eq!(
                        shared.moved_to,
                        Some(c),
                        "the shared copy says where it went"
                    );
                    let moved: Result<Memory, capsule::Error> =
                        w.capsule(w.backend, *who, "add_memory", (note("after"),));
                    assert_eq!(
                        moved.unwrap_err(),
                        capsule::Error::CapsuleMoved { canister_id: c }
                    );
                }
                CreationState::Failed => {
                    assert_eq!(
                        &everything_of(w, *who),
                        &self.written[who],
                        "a failed creation's capsule is as its owner last wrote it"
                    );
                    let writable: Result<Memory, capsule::Error> =
                        w.capsule(w.backend, *who, "add_memory", (note("writable"),));
                    assert!(writable.is_ok(), "{writable:?}");
                }
                other => panic!("{other} is not final"),
            }
        }
        for c in w.emu().canister_ids() {
            assert!(named.contains(&c), "canister {c} is named by no record");
        }
        w.assert_reserve_accounting();
        let ends: Vec<String> = self
            .owners
            .iter()
            .map(|o| {
                let r = w.status(*o).unwrap();
                format!("{} after {} attempt(s) {:?}", r.state, r.attempts, r.error)
            })
            .collect();
        eprintln!("run ended: {ends:?}");
    }
}

/// Whether the owner installed, reinstalled, upgraded or uninstalled code on `c` after the
/// backend handed it over (its `update_settings` to the owner alone, in the canister's history).
/// From then on the canister is theirs, and what it runs is no longer the factory's doing.
fn owner_changed_code_after_handoff(w: &World, c: Principal, owner: Principal) -> bool {
    use ic_management_canister_types::{ChangeDetails, ChangeOrigin};
    let changes = w.emu().canister_history(c).expect("the canister exists");
    let handoff = changes
        .iter()
        .rposition(|ch| {
            matches!(&ch.origin, ChangeOrigin::FromCanister(o) if o.canister_id == w.backend)
                && matches!(&ch.details,
                    Some(ChangeDetails::ControllersChange(r)) if r.controllers == [owner])
        })
        .expect("a completed creation's canister was handed to its owner by the backend");
    changes[handoff + 1..].iter().any(|ch| {
        matches!(&ch.origin, ChangeOrigin::FromUser(u) if u.user_id == owner)
            && matches!(
                &ch.details,
                Some(ChangeDetails::CodeUninstall | ChangeDetails::CodeDeployment(_))
            )
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(24),
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_interleaving_wedges_fools_or_double_charges_the_factory(
        events in prop::collection::vec(event(), 10..40)
    ) {
        let mut run = Run::new();
        for e in &events {
            run.apply(e);
        }
        run.settle();
        run.check();
    }
}
