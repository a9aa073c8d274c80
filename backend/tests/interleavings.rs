//! The factory's state machine under random interleavings of everything the IC and the owners
//! can do: replies and rejects of every kind, a `create_canister` reply that comes late, lost
//! replies (repeated reports), upgrades of the backend, and owners who stop, delete, take over or
//! reinstall their personal canister with a lying module, retry, or edit their capsule; admins
//! clean up in the middle of it all.
//!
//! A small simulated IC stands in for the management canister and the personal canisters, and
//! plays the driver's part: it asks `next_step`, performs the step against the simulated
//! canisters and hands the result to the registry, exactly as `driver.rs` does after its awaits.
//! After every operation the invariants hold:
//! - reserve + spent − returned = topped up, to the cycle;
//! - every canister that exists is named by a record (`created_canisters`);
//! - a `Completed` record's canister exists, holds the export root (its report was accepted)
//!   and has only the owner as controller; the shared capsule points at it;
//! - a `Failed` record's capsule is not frozen;
//! - every state from `Exporting` to `Verifying` has a deadline.
//!
//! And at the end, after the pending calls return and time passes: every record is final.

use std::collections::{BTreeMap, BTreeSet};

use backend::factory::registry::{CallError, Factory, FactoryMemories, Step, StepFailure};
use backend::factory::types::*;
use candid::Principal;
use capsule::*;
use ic_stable_structures::VectorMemory;
use migration::protocol::{ImportPhase, ImportStatus, Progress};
use proptest::prelude::*;
use test_support::capsules::note;

type Caps = CapsuleStore<VectorMemory>;
type F = Factory<VectorMemory>;

const SEC: u64 = 1_000_000_000;
const USERS: u8 = 3;
const TOPPED_UP: u128 = 30_000_000_000_000;
const CREATION_FEE: u128 = 500_000_000_000;

fn backend() -> Principal {
    Principal::from_slice(&[0xbb; 10])
}

fn user(n: u8) -> Principal {
    Principal::from_slice(&[n + 1; 10])
}

fn ctx(n: u8, now: u64) -> Ctx {
    Ctx {
        caller: user(n),
        now,
    }
}

#[derive(Clone, Debug)]
struct Canister {
    controllers: Vec<Principal>,
    cycles: u128,
    stopped: bool,
    /// The owner installed a module that answers garbage.
    lying: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Request(u8),
    Pump,
    /// The oldest `create_canister` call in flight returns (a canister, or a reject).
    ResolveCreate(bool),
    /// An upgrade of the backend (refused while a create is in flight, as `pre_upgrade` does).
    Upgrade,
    /// The importer reports its root (honestly or not); repeated, it is a lost reply's retry.
    ReportDone(u8, bool),
    OwnerStops(u8),
    OwnerDeletes(u8),
    OwnerTakesOver(u8),
    OwnerInstallsALyingModule(u8),
    Advance(u16),
    CleanupBegin(u8),
    CleanupFinish(u8),
    Edit(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    prop_oneof![
        3 => u.clone().prop_map(Op::Request),
        6 => Just(Op::Pump),
        3 => any::<bool>().prop_map(Op::ResolveCreate),
        1 => Just(Op::Upgrade),
        3 => (u.clone(), prop::bool::weighted(0.8)).prop_map(|(u, h)| Op::ReportDone(u, h)),
        1 => u.clone().prop_map(Op::OwnerStops),
        1 => u.clone().prop_map(Op::OwnerDeletes),
        1 => u.clone().prop_map(Op::OwnerTakesOver),
        1 => u.clone().prop_map(Op::OwnerInstallsALyingModule),
        3 => (1u16..4_000).prop_map(Op::Advance),
        1 => u.clone().prop_map(Op::CleanupBegin),
        1 => u.clone().prop_map(Op::CleanupFinish),
        1 => u.prop_map(Op::Edit),
    ]
}

struct Sim {
    f: F,
    c: Caps,
    now: u64,
    canisters: BTreeMap<Principal, Canister>,
    next_canister: u64,
    /// `create_canister` calls in flight: (migration, cycles attached).
    creates: Vec<(u64, u128)>,
    /// Cleanups whose update call is awaiting (the admin's message): migration → started at.
    cleanups: BTreeMap<u64, u64>,
    /// Migrations whose honest report the backend accepted.
    verified: BTreeSet<u64>,
}

impl Sim {
    fn new() -> Sim {
        let mut f = Factory::init(FactoryMemories::in_memory());
        f.set_config(FactoryConfig {
            export_leaves_per_step: 2,
            max_in_flight: 2,
            ..FactoryConfig::default()
        });
        f.top_up(TOPPED_UP);
        let mut c = CapsuleStore::init(
            CapsuleMemories::in_memory(),
            Limits::default(),
            blobstore::Limits::default(),
        );
        for n in 0..USERS {
            c.create_capsule(
                &ctx(n, SEC),
                CapsuleInput {
                    name: format!("user {n}"),
                    ..Default::default()
                },
            )
            .unwrap();
            for i in 0..3 {
                c.add_memory(&ctx(n, SEC), note(&format!("m{i}"))).unwrap();
            }
        }
        Sim {
            f,
            c,
            now: 2 * SEC,
            canisters: BTreeMap::new(),
            next_canister: 0,
            creates: vec![],
            cleanups: BTreeMap::new(),
            verified: BTreeSet::new(),
        }
    }

    fn record(&self, n: u8) -> Option<CreationRecord> {
        self.f.record_of(user(n))
    }

    /// The canister of user `n`'s creation, while the owner still controls it (owners act on
    /// their canister before the handoff; after it, the canister is theirs to do with as they
    /// please and out of this model).
    fn owned_canister(&self, n: u8) -> Option<Principal> {
        let rec = self.record(n)?;
        let id = rec.canister_id?;
        (rec.state != CreationState::Completed
            && self
                .canisters
                .get(&id)
                .is_some_and(|c| c.controllers.contains(&user(n))))
        .then_some(id)
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::Request(n) => {
                let _ = self.f.request(
                    user(n),
                    CreatePersonalCanisterConfig::default(),
                    &mut self.c,
                    now,
                );
            }
            Op::Pump => self.pump(),
            Op::ResolveCreate(ok) => self.resolve_create(ok),
            Op::Upgrade => {
                if self.f.upgrade_blocker().is_some() {
                    assert!(
                        !self.creates.is_empty(),
                        "refused only for a create in flight"
                    );
                    return;
                }
                assert!(
                    self.creates.is_empty(),
                    "a create in flight must block upgrades"
                );
                self.cleanups.clear(); // The admin's awaiting cleanup dies with the old module.
                self.f.after_upgrade(&mut self.c, now);
            }
            Op::ReportDone(n, honest) => self.report(n, honest),
            Op::OwnerStops(n) => {
                if let Some(id) = self.owned_canister(n) {
                    self.canisters.get_mut(&id).unwrap().stopped = true;
                }
            }
            Op::OwnerDeletes(n) => {
                if let Some(id) = self.owned_canister(n) {
                    self.canisters.remove(&id);
                }
            }
            Op::OwnerTakesOver(n) => {
                if let Some(id) = self.owned_canister(n) {
                    self.canisters.get_mut(&id).unwrap().controllers = vec![user(n)];
                }
            }
            Op::OwnerInstallsALyingModule(n) => {
                if let Some(id) = self.owned_canister(n) {
                    self.canisters.get_mut(&id).unwrap().lying = true;
                }
            }
            Op::Advance(secs) => self.now += secs as u64 * SEC,
            Op::CleanupBegin(n) => {
                let Some(rec) = self.record(n) else { return };
                let id = rec.migration_id;
                match self.f.begin_cleanup(id, &mut self.c, now) {
                    Ok(_) => {
                        let started = self.f.record(id).unwrap().cleanup.unwrap().started_at;
                        self.cleanups.insert(id, started);
                    }
                    Err(FactoryError::CleanupInProgress { .. }) => {
                        assert!(self.cleanups.contains_key(&id) || rec.cleanup.is_some());
                    }
                    Err(_) => {}
                }
            }
            Op::CleanupFinish(n) => {
                let Some(rec) = self.record(n) else { return };
                if let Some(started) = self.cleanups.remove(&rec.migration_id) {
                    self.finish_cleanup(rec.migration_id, started);
                }
            }
            Op::Edit(n) => {
                let _ = self.c.add_memory(&ctx(n, now), note("edit"));
            }
        }
    }

    /// The driver's pump: admission, then one step of every active creation that is due.
    fn pump(&mut self) {
        let now = self.now;
        self.f.admit_queued(&mut self.c, now);
        for id in self.f.due_migrations(now) {
            let step = self.f.next_step(id, now);
            let owner = self.f.record(id).unwrap().owner;
            match step {
                Step::Wait => {}
                Step::Fail(err) => self.f.fail(id, err, &mut self.c, now),
                Step::Export => {
                    while self.f.export_step(id, &mut self.c, now) == Ok(CreationState::Exporting) {
                    }
                }
                Step::Create => {
                    let cycles = self.f.take_creation_cycles(id, now, u128::MAX).unwrap();
                    self.creates.push((id, cycles));
                }
                Step::Install { canister_id, .. } => {
                    let result = match self.canisters.get_mut(&canister_id) {
                        None => Err(gone("install_code")),
                        Some(c) if !c.controllers.contains(&backend()) => Err(StepFailure::Call(
                            "install_code",
                            call_error(5, "only controllers may install code"),
                        )),
                        Some(c) => {
                            c.lying = false; // The backend's own module is installed.
                            if c.stopped {
                                Err(stopped("api_version"))
                            } else {
                                Ok(())
                            }
                        }
                    };
                    self.f.installed(id, result, &mut self.c, now);
                }
                Step::WatchImport { canister_id } => {
                    let status = self.import_status(canister_id, ImportPhase::Chunks);
                    self.f.import_checked(id, status, &mut self.c, now);
                }
                Step::Handoff { canister_id } => {
                    let result = match self.import_status(canister_id, ImportPhase::Done) {
                        Err(e) => Err(e),
                        Ok(_) => {
                            let c = self.canisters.get_mut(&canister_id).unwrap();
                            if c.controllers == [owner] {
                                Ok(())
                            } else if !c.controllers.contains(&backend()) {
                                Err(StepFailure::Call(
                                    "update_settings",
                                    call_error(5, "only controllers may update settings"),
                                ))
                            } else {
                                c.controllers = vec![owner];
                                Ok(())
                            }
                        }
                    };
                    self.f.handed_off(id, result, &mut self.c, now);
                }
            }
        }
    }

    fn import_status(
        &self,
        canister_id: Principal,
        phase: ImportPhase,
    ) -> Result<ImportStatus, StepFailure> {
        match self.canisters.get(&canister_id) {
            None => Err(gone("import_status")),
            Some(c) if c.stopped => Err(stopped("import_status")),
            Some(c) if c.lying => Err(StepFailure::Fatal(FactoryError::UntrustedReply {
                step: "import_status".into(),
                reason: "not candid".into(),
            })),
            Some(_) => Ok(ImportStatus {
                migration_id: None,
                phase,
                progress: Progress::default(),
                error: None,
                root: None,
                api_version: capsule::API_VERSION,
            }),
        }
    }

    fn resolve_create(&mut self, ok: bool) {
        if self.creates.is_empty() {
            return;
        }
        let (id, cycles) = self.creates.remove(0);
        let owner = self.f.record(id).unwrap().owner;
        let result = if ok {
            self.next_canister += 1;
            let p = Principal::from_slice(&[0xcc, self.next_canister as u8, 0, 0, 1]);
            self.canisters.insert(
                p,
                Canister {
                    controllers: vec![backend(), owner],
                    cycles: cycles - CREATION_FEE,
                    stopped: false,
                    lying: false,
                },
            );
            Ok(p)
        } else {
            Err(call_error(2, "queue full"))
        };
        self.f.created(id, result, cycles, &mut self.c, self.now);
    }

    fn report(&mut self, n: u8, honest: bool) {
        let Some(rec) = self.record(n) else { return };
        let Some(canister) = rec.canister_id else {
            return;
        };
        let id = rec.migration_id;
        let Some(mut header) = self.f.manifests().header(id) else {
            return;
        };
        if self.canisters.get(&canister).is_none_or(|c| c.stopped) {
            return; // A stopped or deleted canister reports nothing.
        }
        if !honest {
            header.memories_root[0] ^= 1;
            header.root = header.compute_root();
        }
        let before = rec.state;
        let r = self
            .f
            .report_done(id, canister, header, &mut self.c, self.now);
        match (before, honest) {
            (CreationState::Importing, true) => {
                assert_eq!(r, Ok(()));
                self.verified.insert(id);
            }
            (CreationState::Verifying | CreationState::Completed, true) => {
                assert_eq!(r, Ok(()), "a repeated report gets the outcome reached")
            }
            (_, false) => assert!(r.is_err()),
            _ => {}
        }
    }

    /// The cleanup's calls, as `driver::cleanup_steps` makes them: it stops when a retry took
    /// the creation over meanwhile (checked after each await; here, before the calls).
    fn finish_cleanup(&mut self, id: u64, started: u64) {
        if !self.f.cleanup_is_current(id, started) {
            return;
        }
        let rec = self.f.record(id).unwrap();
        if let Some(canister_id) = rec.canister_id
            && let Some(c) = self.canisters.get_mut(&canister_id)
            && c.controllers.contains(&backend())
        {
            c.controllers = vec![backend()];
            c.lying = false;
            c.stopped = false;
            let returned = if c.cycles > 10_000_000_000 {
                c.cycles - 5_000_000_000
            } else {
                0
            };
            c.cycles -= returned;
            if returned > 0 {
                // `deposit_returned_cycles` credits what it accepted.
                assert_eq!(self.f.cleanup_expecting(canister_id), Some(id));
                self.f.credit_returned(id, returned);
            }
            self.canisters.remove(&canister_id);
        }
        self.f.cleanup_done(id);
    }

    fn check(&self) {
        let r = self.f.reserve_status(0, 0, 0);
        assert_eq!(
            r.reserve + r.total_consumed - r.total_returned,
            r.total_topped_up,
            "reserve + spent - returned = topped up"
        );
        assert_eq!(r.total_topped_up, TOPPED_UP);
        let mut named = BTreeSet::new();
        for n in 0..USERS {
            let Some(rec) = self.record(n) else { continue };
            named.extend(rec.created_canisters.clone().unwrap_or_default());
            let capsule = self.c.capsule_record(user(n)).unwrap();
            match rec.state {
                CreationState::Completed => {
                    let id = rec
                        .canister_id
                        .expect("a completed creation has its canister");
                    let c = self.canisters.get(&id).expect("the canister exists");
                    assert_eq!(c.controllers, vec![user(n)], "only the owner controls it");
                    assert!(
                        self.verified.contains(&rec.migration_id),
                        "its root was verified"
                    );
                    assert_eq!(capsule.moved_to, Some(id));
                }
                CreationState::Failed => {
                    assert_eq!(
                        capsule.frozen, None,
                        "a failed creation's capsule is writable"
                    );
                }
                CreationState::NotStarted => {}
                _ => assert!(rec.deadline_at.is_some(), "{} has a deadline", rec.state),
            }
        }
        for id in self.canisters.keys() {
            assert!(named.contains(id), "canister {id} is named by no record");
        }
        // The indexes say what a scan of every record says.
        let all = self.f.list(None, 1_000).items;
        let active: Vec<u64> = all
            .iter()
            .filter(|r| r.state.is_active())
            .map(|r| r.migration_id)
            .collect();
        assert_eq!(self.f.active_migrations(), active, "active index");
        let due: Vec<u64> = all
            .iter()
            .filter(|r| r.state.is_active())
            .map(|r| self.f.record(r.migration_id).unwrap())
            .filter(|r| r.next_try_at <= self.now || r.deadline_at.is_some_and(|d| d <= self.now))
            .map(|r| r.migration_id)
            .collect();
        assert_eq!(
            self.f.due_migrations(self.now),
            due,
            "due creations, from the index"
        );
        let queued = all
            .iter()
            .filter(|r| r.state == CreationState::NotStarted)
            .count() as u64;
        let stats = self.f.stats();
        assert_eq!(stats.queued, queued, "queue index");
        assert_eq!(stats.in_progress, active.len() as u64, "in-progress count");
    }

    /// The pending calls return, time passes: everything ends.
    fn drain(&mut self) {
        self.cleanups.clear();
        for _ in 0..1_000 {
            while !self.creates.is_empty() {
                self.resolve_create(true);
            }
            self.pump();
            self.check();
            if self.f.active_migrations().is_empty() && self.f.stats().queued == 0 {
                return;
            }
            self.now += 600 * SEC;
        }
        let open: Vec<_> = self
            .f
            .active_migrations()
            .into_iter()
            .map(|id| self.f.record(id).unwrap().state)
            .collect();
        panic!("creations never ended: {open:?}");
    }
}

fn call_error(code: u32, message: &str) -> CallError {
    CallError::rejected(code, message.into())
}

fn gone(step: &'static str) -> StepFailure {
    StepFailure::Call(step, call_error(3, "canister not found"))
}

fn stopped(step: &'static str) -> StepFailure {
    StepFailure::Call(step, call_error(5, "canister is stopped"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_interleaving_wedges_fools_or_double_charges_the_factory(
        ops in prop::collection::vec(op(), 1..120)
    ) {
        let mut sim = Sim::new();
        for op in &ops {
            sim.apply(op);
            sim.check();
        }
        sim.drain();
    }
}

/// The cooperative path through the same simulation completes, so the property above is not
/// vacuous: creations do reach `Completed` under it.
#[test]
fn the_simulation_completes_a_cooperative_creation() {
    let mut sim = Sim::new();
    sim.apply(&Op::Request(0));
    for _ in 0..3 {
        sim.apply(&Op::Pump);
    }
    sim.apply(&Op::ResolveCreate(true));
    sim.apply(&Op::Pump);
    sim.apply(&Op::ReportDone(0, true));
    sim.apply(&Op::ReportDone(0, true)); // a lost reply's retry
    sim.apply(&Op::Pump);
    sim.check();
    assert_eq!(sim.record(0).unwrap().state, CreationState::Completed);
}
