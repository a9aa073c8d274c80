//! The factory's state machine, natively: requests, queueing, export and quote, the reserve,
//! step results, verification, failure, retry, purge and the export queries. This root holds
//! the fixtures and the steps that drive a creation; each module tests one part.

use backend::factory::export;
use backend::factory::registry::{CallError, Factory, FactoryMemories, Step, StepFailure};
use backend::factory::types::*;
use blobstore::hash::CHUNK_SIZE;
use candid::Principal;
use capsule::*;
use ic_stable_structures::VectorMemory;
use manifests::{PageCursor, PageVerifier};
use migration::protocol::{ChunkRef, ExportError, MAX_CHUNK_BATCH_BYTES, Progress};
use serde_bytes::ByteArray;
use test_support::capsules::{blob_ref, new_store as caps, note, upload};

type Caps = CapsuleStore<VectorMemory>;
type F = Factory<VectorMemory>;

const SEC: u64 = 1_000_000_000;
const DAY: u64 = 86_400 * SEC;

#[path = "factory/cleanup.rs"]
mod cleanup;
#[path = "factory/config.rs"]
mod config;
#[path = "factory/errors.rs"]
mod errors;
#[path = "factory/export.rs"]
mod export_queries;
#[path = "factory/import.rs"]
mod import;
#[path = "factory/purge.rs"]
mod purge;
#[path = "factory/requests.rs"]
mod requests;
#[path = "factory/reserve.rs"]
mod reserve;
#[path = "factory/retry.rs"]
mod retry;
#[path = "factory/steps.rs"]
mod steps;
#[path = "factory/timeouts.rs"]
mod timeouts;

fn factory() -> F {
    let mut f = Factory::init(FactoryMemories::in_memory());
    f.set_config(FactoryConfig {
        export_leaves_per_step: 3,
        ..FactoryConfig::default()
    });
    f
}

fn funded() -> F {
    let mut f = factory();
    f.top_up(100_000_000_000_000);
    f
}

/// A funded factory and a store holding a capsule ([`with_capsule`]) for each of `users`.
fn funded_with(users: &[u8]) -> (F, Caps) {
    let mut c = caps();
    for &n in users {
        with_capsule(&mut c, n);
    }
    (funded(), c)
}

/// A funded factory with user 1's creation in Importing ([`to_importing`]).
fn importing() -> (F, Caps, u64) {
    let (mut f, mut c) = funded_with(&[1]);
    let id = to_importing(&mut f, &mut c, 1);
    (f, c, id)
}

fn user(n: u8) -> Principal {
    Principal::from_slice(&[n; 10])
}

fn personal(n: u8) -> Principal {
    Principal::from_slice(&[n, 0, 0, 0, 0, 0, 0, 1, 1, 1])
}

fn ctx(n: u8) -> Ctx {
    Ctx {
        caller: user(n),
        now: SEC / 2,
    }
}

/// A capsule for user `n`: five memories sharing a three-chunk blob, and a connection.
fn with_capsule(c: &mut Caps, n: u8) {
    c.create_capsule(
        &ctx(n),
        CapsuleInput {
            name: format!("user {n}"),
            ..Default::default()
        },
    )
    .unwrap();
    let bytes: Vec<u8> = (0..CHUNK_SIZE * 2 + 100)
        .map(|i| (i * 7 % 251) as u8 ^ n)
        .collect();
    let blob = blob_ref(&upload(c, &ctx(n), &bytes), "image/png");
    for i in 0..5 {
        c.add_memory(
            &ctx(n),
            MemoryInput {
                title: format!("m{i}"),
                description: String::new(),
                tags: vec![],
                kind: MemoryKind::Photo,
                blobs: vec![blob.clone()],
                encryption: None,
            },
        )
        .unwrap();
    }
    c.add_connection(
        &ctx(n),
        ConnectionInput {
            peer: user(n + 100),
            relationship: "friend".into(),
            status: ConnectionStatus::Accepted,
        },
    )
    .unwrap();
}

fn request(f: &mut F, c: &mut Caps, n: u8, now: u64) -> Result<CreationRecord, FactoryError> {
    f.request(user(n), CreatePersonalCanisterConfig::default(), c, now)
}

fn states(r: &CreationRecord) -> Vec<CreationState> {
    r.timeline.iter().map(|t| t.state).collect()
}

/// Runs export steps until the creation leaves Exporting.
fn export_all(f: &mut F, c: &mut Caps, id: u64, now: u64) -> CreationState {
    for _ in 0..100 {
        let s = f.export_step(id, c, now).unwrap();
        if s != CreationState::Exporting {
            return s;
        }
    }
    panic!("export did not finish");
}

/// User `n`'s creation, requested, admitted and exported at the three times `at`: `Creating`.
fn to_creating_at(f: &mut F, c: &mut Caps, n: u8, at: [u64; 3]) -> u64 {
    let id = request(f, c, n, at[0]).unwrap().migration_id;
    f.admit_queued(c, at[1]);
    assert_eq!(export_all(f, c, id, at[2]), CreationState::Creating);
    id
}

/// User 1's creation, requested at 0, admitted at 1 and exported at 2: `Creating`.
fn to_creating(f: &mut F, c: &mut Caps) -> u64 {
    to_creating_at(f, c, 1, [0, 1, 2])
}

/// The create step of a `Creating` creation: its cycles taken at `taken_at`, the canister
/// `personal(n)` created at `created_at`.
fn create(f: &mut F, c: &mut Caps, id: u64, n: u8, taken_at: u64, created_at: u64) {
    let cycles = f.take_creation_cycles(id, taken_at, u128::MAX).unwrap();
    f.created(id, Ok(personal(n)), cycles, c, created_at);
}

/// User 1's creation in `Creating` ([`to_creating`]) on a funded factory that retries a
/// step's call `max_step_retries` times.
fn creating_with_retries(max_step_retries: u32) -> (F, Caps, u64) {
    let (mut f, mut c) = funded_with(&[1]);
    f.set_config(FactoryConfig {
        max_step_retries,
        ..f.config()
    });
    let id = to_creating(&mut f, &mut c);
    (f, c, id)
}

/// The create step failing with `error`: cycles taken at `taken_at`, the reply at `replied_at`.
fn create_fails(
    f: &mut F,
    c: &mut Caps,
    id: u64,
    error: CallError,
    taken_at: u64,
    replied_at: u64,
) {
    let cycles = f.take_creation_cycles(id, taken_at, u128::MAX).unwrap();
    f.created(id, Err(error), cycles, c, replied_at);
}

/// Drives a creation from request to Importing, with `personal(n)` as its personal canister.
fn to_importing(f: &mut F, c: &mut Caps, n: u8) -> u64 {
    let id = to_creating_at(f, c, n, [SEC, 2 * SEC, 3 * SEC]);
    assert_eq!(f.next_step(id, 3 * SEC), Step::Create);
    create(f, c, id, n, 3 * SEC, 4 * SEC);
    assert!(
        matches!(f.next_step(id, 4 * SEC), Step::Install { canister_id, .. } if canister_id == personal(n))
    );
    f.installed(id, Ok(()), c, 5 * SEC);
    assert_eq!(f.record(id).unwrap().state, CreationState::Importing);
    id
}

/// `personal(n)` reports the import done at `now` with the exported header: `Verifying`.
fn report_done(f: &mut F, c: &mut Caps, id: u64, n: u8, now: u64) {
    let header = f.manifests().header(id).unwrap();
    f.report_done(id, personal(n), header, c, now).unwrap();
}

/// An importing creation reported done at `now` and handed off a second later: `Completed`.
fn complete(f: &mut F, c: &mut Caps, id: u64, n: u8, now: u64) {
    report_done(f, c, id, n, now);
    f.handed_off(id, Ok(()), c, now + SEC);
}

/// Fails the creation as a failed import would, with `reason`.
fn fail_import(f: &mut F, c: &mut Caps, id: u64, reason: &str, now: u64) {
    f.fail(
        id,
        FactoryError::ImportFailed {
            reason: reason.into(),
            cause: None,
        },
        c,
        now,
    );
}

fn status(phase: migration::protocol::ImportPhase) -> migration::protocol::ImportStatus {
    migration::protocol::ImportStatus {
        migration_id: Some(1),
        phase,
        progress: Progress::default(),
        error: None,
        root: None,
        api_version: capsule::API_VERSION,
    }
}

fn accounting_holds(f: &F) {
    let r = f.reserve_status(0, 0, 0);
    assert_eq!(
        r.reserve + r.total_consumed - r.total_returned,
        r.total_topped_up,
        "reserve + spent - returned = topped up"
    );
}
