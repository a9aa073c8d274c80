#![cfg(feature = "personal-canister")]
//! After the handoff, natively: the storage funding after install, sponsored top-ups and the
//! purge guard's decisions (checks, holds, backoff, giving up, clearing), with the reserve's
//! books balanced throughout.

use backend::factory::registry::purge::{PURGE_CHECK_WINDOW_NS, PurgeGate};
use backend::factory::registry::{Factory, FactoryMemories, Step};
use backend::factory::types::*;
use candid::Principal;
use capsule::*;
use ic_stable_structures::VectorMemory;

type Caps = CapsuleStore<VectorMemory>;
type F = Factory<VectorMemory>;

const SEC: u64 = 1_000_000_000;
const HOUR: u64 = 3_600 * SEC;
const MEMORY: u64 = 150 << 20;

fn caps() -> Caps {
    CapsuleStore::init(
        CapsuleMemories::in_memory(),
        Limits::default(),
        blobstore::Limits::default(),
    )
}

fn user(n: u8) -> Principal {
    Principal::from_slice(&[n; 10])
}

fn personal(n: u8) -> Principal {
    Principal::from_slice(&[n, 0, 0, 0, 0, 0, 0, 1, 1, 1])
}

fn funded() -> F {
    let mut f = Factory::init(FactoryMemories::in_memory());
    f.top_up(100_000_000_000_000);
    f
}

fn books(f: &F) {
    let r = f.reserve_status(0, 0, 0);
    assert_eq!(
        r.reserve + r.total_consumed - r.total_returned,
        r.total_topped_up
    );
}

/// User `n`'s creation driven to `Installing` with its canister created.
fn to_installing(f: &mut F, c: &mut Caps, n: u8) -> u64 {
    let ctx = Ctx {
        caller: user(n),
        now: 1,
    };
    c.create_capsule(&ctx, CapsuleInput::default()).unwrap();
    c.add_memory(
        &ctx,
        MemoryInput {
            title: "note".into(),
            description: String::new(),
            tags: vec![],
            kind: MemoryKind::Note,
            blobs: vec![],
            encryption: None,
        },
    )
    .unwrap();
    let id = f
        .request(user(n), CreatePersonalCanisterConfig::default(), c, SEC)
        .unwrap()
        .migration_id;
    f.admit_queued(c, 2 * SEC);
    for _ in 0..100 {
        if f.export_step(id, c, 3 * SEC).unwrap() != CreationState::Exporting {
            break;
        }
    }
    let cycles = f.take_creation_cycles(id, 3 * SEC, u128::MAX).unwrap();
    f.created(id, Ok(personal(n)), cycles, c, 4 * SEC);
    assert!(matches!(f.next_step(id, 4 * SEC), Step::Install { .. }));
    id
}

/// User `n`'s creation driven to `Completed` (funded after install).
fn to_completed(f: &mut F, c: &mut Caps, n: u8) -> u64 {
    let id = to_installing(f, c, n);
    f.begin_funding(id, MEMORY, 5 * SEC, u128::MAX).unwrap();
    f.installed(id, Ok(()), c, 5 * SEC);
    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(n), header, c, 6 * SEC).unwrap();
    f.handed_off(id, Ok(()), c, 7 * SEC);
    assert_eq!(f.record(id).unwrap().state, CreationState::Completed);
    id
}

#[test]
fn the_funding_is_computed_from_the_measured_memory_journaled_once_and_given_back_on_reject() {
    let mut f = funded();
    let mut c = caps();
    let id = to_installing(&mut f, &mut c, 1);
    let reserve = f.reserve();
    let rec = f.record(id).unwrap();
    let m = rec.manifest.clone().unwrap();
    let capsule = backend::factory::quote::capsule_bytes(
        m.blob_bytes,
        m.memories + m.connections + 1,
        m.chunks,
    );
    let (footprint, expected) = backend::factory::quote::funding_deposit(
        MEMORY,
        capsule,
        rec.quote.as_ref().unwrap(),
        &f.config(),
    );

    // Too little spendable: refused, nothing taken.
    assert!(matches!(
        f.begin_funding(id, MEMORY, 5 * SEC, 1_000),
        Err(FactoryError::InsufficientCycles { .. })
    ));
    assert_eq!(f.reserve(), reserve);
    assert_eq!(f.record(id).unwrap().funding, None);

    let cycles = f.begin_funding(id, MEMORY, 5 * SEC, u128::MAX).unwrap();
    assert_eq!(cycles, expected);
    assert_eq!(f.reserve(), reserve - cycles);
    let funding = f.record(id).unwrap().funding.unwrap();
    assert_eq!(
        (
            funding.measured_memory_bytes,
            funding.footprint_bytes as u128,
            funding.deposited
        ),
        (MEMORY, footprint, cycles)
    );
    books(&f);
    // Journaled: a resumed step deposits nothing more.
    assert_eq!(f.begin_funding(id, MEMORY, 6 * SEC, u128::MAX).unwrap(), 0);
    // A rejected deposit: the reserve gets it back, and the step measures again.
    f.funding_rejected(id, cycles);
    assert_eq!(f.reserve(), reserve);
    books(&f);
    assert!(f.begin_funding(id, 2 * MEMORY, 7 * SEC, u128::MAX).unwrap() > cycles);
    books(&f);
}

#[test]
fn sponsored_top_ups_are_bounded_per_user_and_counted() {
    let mut f = funded();
    let mut c = caps();
    let installing = to_installing(&mut f, &mut c, 2);
    assert!(matches!(
        f.begin_sponsor(installing, 1, 5 * SEC, u128::MAX),
        Err(FactoryError::InvalidState { .. })
    ));
    let id = to_completed(&mut f, &mut c, 1);
    let limit = f.config().max_sponsored_per_user();
    let reserve = f.reserve();
    assert!(matches!(
        f.begin_sponsor(id, 0, 8 * SEC, u128::MAX),
        Err(FactoryError::InvalidArgument { .. })
    ));
    assert_eq!(
        f.begin_sponsor(id, limit + 1, 8 * SEC, u128::MAX),
        Err(FactoryError::SponsorLimitReached {
            limit,
            sponsored: 0,
            requested: limit + 1
        })
    );
    assert_eq!(f.reserve(), reserve);
    assert_eq!(
        f.begin_sponsor(id, limit / 2, 8 * SEC, u128::MAX),
        Ok(personal(1))
    );
    assert_eq!(f.reserve(), reserve - limit / 2);
    books(&f);
    f.sponsor_rejected(id, limit / 2);
    assert_eq!(f.reserve(), reserve);
    assert_eq!(f.record(id).unwrap().funding.unwrap().sponsored, 0);
    books(&f);
    assert_eq!(
        f.begin_sponsor(id, limit, 8 * SEC, u128::MAX),
        Ok(personal(1))
    );
    assert!(matches!(
        f.begin_sponsor(id, 1, 8 * SEC, u128::MAX),
        Err(FactoryError::SponsorLimitReached { .. })
    ));
    assert_eq!(
        f.begin_sponsor(99, 1, 8 * SEC, u128::MAX),
        Err(FactoryError::UnknownMigration { migration_id: 99 })
    );
}

fn outlook(root: [u8; 32], days: u64) -> Result<PersonalOutlook, PurgeHold> {
    Ok(PersonalOutlook {
        balance: 1,
        days_until_frozen: days,
        root: Some(serde_bytes::ByteArray::new(root)),
    })
}

#[test]
fn the_purge_guard_holds_backs_off_gives_up_and_clears() {
    let mut f = funded();
    let mut c = caps();
    let id = to_completed(&mut f, &mut c, 1);
    let root = f.record(id).unwrap().manifest.unwrap().root.into_array();
    f.request_purge(user(1)).unwrap();
    // A time of today's order (the purge queue's keys count back by the retention).
    let t = 1_700_000_000 * SEC;
    assert_eq!(f.purge_due(t), vec![user(1)]);
    let gate = f.purge_gate(user(1));
    assert_eq!(
        gate,
        PurgeGate::Check {
            migration_id: id,
            canister_id: personal(1),
            export_root: root
        }
    );
    // While a check runs the purge is not due (nobody waits on it), until its window ends.
    f.begin_purge_check(id, t);
    assert!(f.purge_due(t).is_empty());
    assert_eq!(f.purge_due(t + PURGE_CHECK_WINDOW_NS), vec![user(1)]);

    // Too few days: held, next check an hour later, then two.
    assert!(!f.purge_checked(id, root, outlook(root, 10), t + SEC));
    let check = f.record(id).unwrap().purge_check.unwrap();
    assert_eq!(
        check.hold,
        Some(PurgeHold::LowCycles {
            days_left: 10,
            required_days: 30
        })
    );
    assert_eq!(check.next_check_at, Some(t + SEC + HOUR));
    assert!(f.purge_due(t + HOUR).is_empty());
    assert_eq!(f.purge_due(t + SEC + HOUR), vec![user(1)]);
    assert_eq!(f.next_wake(t + 2 * SEC), Some(t + SEC + HOUR));
    let t2 = t + 2 * HOUR;
    f.begin_purge_check(id, t2);
    let other = [9u8; 32];
    assert!(!f.purge_checked(id, root, outlook(other, 100), t2));
    let check = f.record(id).unwrap().purge_check.unwrap();
    assert!(matches!(check.hold, Some(PurgeHold::RootMismatch { .. })));
    assert_eq!(check.next_check_at, Some(t2 + 2 * HOUR));

    // The checks used up: never due by the clock, the reason kept; the owner asking again
    // starts over.
    for i in 3..=f.config().purge_check_max_attempts() {
        let at = t2 + i as u64 * 100 * HOUR;
        f.begin_purge_check(id, at);
        f.purge_checked(
            id,
            root,
            Err(PurgeHold::NoAnswer {
                code: 5,
                message: "trapped".into(),
            }),
            at,
        );
    }
    let check = f.record(id).unwrap().purge_check.unwrap();
    assert_eq!(check.next_check_at, None);
    assert!(matches!(check.hold, Some(PurgeHold::NoAnswer { .. })));
    assert!(f.purge_due(u64::MAX - 1).is_empty());
    assert_eq!(f.next_wake(t2), None);
    f.request_purge(user(1)).unwrap();
    assert_eq!(f.purge_due(t2), vec![user(1)]);

    // Enough days and the export root: cleared, due at once, and the gate says purge.
    f.begin_purge_check(id, t2);
    assert!(f.purge_checked(id, root, outlook(root, 30), t2 + SEC));
    assert_eq!(f.purge_gate(user(1)), PurgeGate::Cleared);
    assert_eq!(f.purge_due(t2 + SEC), vec![user(1)]);
    let check = f.record(id).unwrap().purge_check.unwrap();
    assert!(check.cleared && check.hold.is_none());
}

/// A held purge does not stand in the way of other owners' purges.
#[test]
fn a_held_purge_does_not_block_the_others() {
    let mut f = funded();
    let mut c = caps();
    let a = to_completed(&mut f, &mut c, 1);
    to_completed(&mut f, &mut c, 2);
    let root = f.record(a).unwrap().manifest.unwrap().root.into_array();
    let t = 1_700_000_000 * SEC;
    f.request_purge(user(1)).unwrap();
    f.begin_purge_check(a, t);
    f.purge_checked(a, root, outlook(root, 1), t + SEC);
    f.request_purge(user(2)).unwrap();
    assert_eq!(f.purge_due(t + 2 * SEC), vec![user(2)]);
}
