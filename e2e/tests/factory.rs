//! End to end on the emulator: the factory's rules, faults and recoveries.

use std::time::Duration;

use backend::factory::types::*;
use candid::{Nat, Principal};
use capsule::*;
use e2e::*;
#[cfg(not(feature = "pocketic"))]
use emulator::RejectCode;
use migration::protocol::{ChunkBatch, ChunkRef, ExportError};
use serde_bytes::ByteArray;

const BLOBS: [usize; 3] = [1000, 256 * 1024 + 5, 600 * 1024];

fn capsule_info(w: &World, canister: Principal, who: Principal) -> CapsuleInfo {
    w.capsule(canister, who, "get_capsule", ()).unwrap()
}

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn repeated_and_concurrent_requests_make_one_canister() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &BLOBS, 5, 1);
    let canisters_before = w.emu().canister_ids().len();
    // Three calls in the same round, then more while it runs.
    let ids: Vec<_> = (0..3)
        .map(|_| {
            w.ic.submit_call(
                w.backend,
                alice,
                "create_personal_canister",
                candid::encode_one(CreatePersonalCanisterConfig::default()).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let records: Vec<CreationRecord> = ids
        .into_iter()
        .map(|id| {
            let bytes = w.ic.await_call(id).unwrap();
            candid::decode_one::<Result<CreationRecord, FactoryError>>(&bytes)
                .unwrap()
                .unwrap()
        })
        .collect();
    assert!(
        records
            .iter()
            .all(|r| r.migration_id == records[0].migration_id)
    );
    w.run_until(50, |w| {
        w.status(alice).unwrap().state >= CreationState::Importing
    });
    let again = w.create_personal_canister(alice).unwrap();
    assert_eq!(again.migration_id, records[0].migration_id);
    let rec = completed(&w, alice);
    assert_eq!(
        w.emu().canister_ids().len(),
        canisters_before + 1,
        "exactly one canister created"
    );
    assert_eq!(stats(&w).attempted, 1);
    assert_eq!(
        w.create_personal_canister(alice).unwrap().canister_id,
        rec.canister_id
    );
}

#[test]
fn creations_over_the_in_flight_limit_wait_their_turn() {
    let w = World::new();
    set_config(
        &w,
        FactoryConfig {
            max_in_flight: 1,
            ..config(&w)
        },
    );
    for n in 1..=3 {
        w.fill_capsule(user(n), &BLOBS[..1], 2, 0);
        w.create_personal_canister(user(n)).unwrap();
    }
    let mut max_active = 0;
    w.run_until(6_000, |w| {
        let states: Vec<CreationState> =
            (1..=3).map(|n| w.status(user(n)).unwrap().state).collect();
        max_active = max_active.max(states.iter().filter(|s| s.is_active()).count());
        states.iter().all(|s| *s == CreationState::Completed)
    });
    assert_eq!(max_active, 1);
    // They started in order.
    let started: Vec<u64> = (1..=3)
        .map(|n| {
            let r = w.status(user(n)).unwrap();
            r.timeline
                .iter()
                .find(|t| t.state == CreationState::Exporting)
                .unwrap()
                .at
        })
        .collect();
    assert!(started.windows(2).all(|p| p[0] < p[1]), "{started:?}");
}

#[test]
fn disabled_creation_and_admin_rights() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &[], 1, 0);
    let (r,): (Result<FactoryConfig, FactoryError>,) =
        w.update(alice, "admin_set_creation_enabled", (false,));
    assert_eq!(r, Err(FactoryError::NotAdmin));
    let (r,): (Result<FactoryConfig, FactoryError>,) =
        w.update(admin(), "admin_set_creation_enabled", (false,));
    assert!(!r.unwrap().creation_enabled);
    assert_eq!(
        w.create_personal_canister(alice),
        Err(FactoryError::CreationDisabled)
    );
    assert_eq!(w.status(alice), Err(FactoryError::NoCreation));
    // An admin named by a controller may act; only controllers manage admins.
    let (r,): (Result<Vec<Principal>, FactoryError>,) =
        w.update(alice, "admin_set_admin", (user(9), true));
    assert_eq!(r, Err(FactoryError::NotController));
    let (r,): (Result<Vec<Principal>, FactoryError>,) =
        w.update(admin(), "admin_set_admin", (user(9), true));
    assert_eq!(r.unwrap(), vec![user(9)]);
    let (r,): (Result<FactoryConfig, FactoryError>,) =
        w.update(user(9), "admin_set_creation_enabled", (true,));
    assert!(r.unwrap().creation_enabled);
    w.create_personal_canister(alice).unwrap();
}

#[test]
fn callers_are_checked() {
    let w = World::new();
    assert_eq!(
        w.create_personal_canister(Principal::anonymous()),
        Err(FactoryError::Anonymous)
    );
    assert_eq!(
        w.create_personal_canister(user(5)),
        Err(FactoryError::NoCapsule)
    );
    let alice = user(1);
    let blobs = w.fill_capsule(alice, &BLOBS, 2, 0);
    let rec = w.create_personal_canister(alice).unwrap();
    w.run_until(200, |w| {
        w.status(alice).unwrap().state == CreationState::Importing
            || w.status(alice).unwrap().state.is_final()
    });
    // Export queries answer only the registered personal canister.
    let refs = vec![ChunkRef {
        blob: blobs[0].hash,
        index: 0,
    }];
    let (r,): (Result<ChunkBatch, ExportError>,) =
        w.query(alice, "export_chunks", (rec.migration_id, refs));
    assert_eq!(
        r.unwrap_err(),
        ExportError::NotTheMigrationCanister {
            migration_id: rec.migration_id
        }
    );
    let (r,): (Result<ChunkBatch, ExportError>,) =
        w.query(admin(), "export_chunks", (999u64, Vec::<ChunkRef>::new()));
    assert_eq!(
        r.unwrap_err(),
        ExportError::UnknownMigration { migration_id: 999 }
    );
    // Admin endpoints refuse users.
    let (r,): (Result<FactoryStats, FactoryError>,) = w.query(alice, "admin_get_stats", ());
    assert_eq!(r, Err(FactoryError::NotAdmin));
    completed(&w, alice);
}

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn an_insufficient_reserve_creates_nothing_and_spends_nothing() {
    let w = World::new();
    set_config(
        &w,
        FactoryConfig {
            reserve_threshold: RESERVE,
            ..config(&w)
        },
    );
    let alice = user(1);
    w.fill_capsule(alice, &BLOBS, 3, 1);
    let root_before = capsule_info(&w, w.backend, alice);
    let canisters = w.emu().canister_ids().len();
    w.create_personal_canister(alice).unwrap();
    let rec = w.run_to_final(alice, 500);
    assert_eq!(rec.state, CreationState::Failed);
    assert!(
        matches!(rec.error, Some(FactoryError::InsufficientCycles { available, .. }) if available == RESERVE)
    );
    assert_eq!(rec.canister_id, None);
    assert_eq!(w.emu().canister_ids().len(), canisters);
    assert_eq!(w.reserve_status().reserve, RESERVE);
    // The capsule is unfrozen and unchanged.
    assert_eq!(capsule_info(&w, w.backend, alice), root_before);
    let _: Memory = w
        .capsule(w.backend, alice, "add_memory", (note("writable again"),))
        .unwrap();
}

#[test]
fn invalid_states_are_refused() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &[], 1, 0);
    let (r,): (Result<CreationRecord, FactoryError>,) = w.update(alice, "purge_shared_capsule", ());
    assert_eq!(r, Err(FactoryError::NoCreation));
    let rec = w.create_personal_canister(alice).unwrap();
    // While the creation is in flight (how far the factory's timer took it by the time the
    // purge request runs depends on rounds, not on the request), the purge is refused with the
    // state it was in.
    let (r,): (Result<CreationRecord, FactoryError>,) = w.update(alice, "purge_shared_capsule", ());
    let Err(FactoryError::InvalidState { state, .. }) = r else {
        panic!("a purge during the creation was not refused: {r:?}");
    };
    assert!(!state.is_final(), "refused in {state:?}");
    assert!(
        w.status(alice).unwrap().state >= state,
        "the refusal named a state the creation was never in"
    );
    completed(&w, alice);
    // Cleanup works from every state but Completed.
    let (r,): (Result<Nat, FactoryError>,) =
        w.update(admin(), "admin_cleanup_creation", (rec.migration_id,));
    assert!(matches!(
        r,
        Err(FactoryError::InvalidState {
            state: CreationState::Completed,
            ..
        })
    ));
}

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn transient_rejects_of_the_pulls_and_reports_are_retried() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &BLOBS, 4, 2);
    let emu = w.emu();
    // The personal canister's pulls and reports are rejected a few times.
    for method in [
        "export_raw_manifest_page",
        "export_chunks",
        "report_import_done",
    ] {
        emu.reject_next(
            w.backend,
            Some(method),
            2,
            RejectCode::SysTransient,
            "injected: queue full",
        );
    }
    w.create_personal_canister(alice).unwrap();
    let rec = completed(&w, alice);
    assert_eq!(w.ic.get_controllers(rec.canister_id.unwrap()), vec![alice]);
    assert_eq!(rec.attempts, 1);
    let injected = w
        .emu()
        .trace_string()
        .matches("injected: queue full")
        .count();
    // Six rejects injected; the trace shows each one (as the reject and as the caller's response).
    assert!(
        injected >= 6,
        "every injected reject was delivered: {injected}"
    );
}

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn a_failing_create_fails_cleanly_and_a_retry_completes() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &BLOBS, 3, 1);
    // No retries allowed: the first (transient) failure of create_canister fails the creation.
    set_config(
        &w,
        FactoryConfig {
            max_step_retries: 0,
            ..config(&w)
        },
    );
    w.emu().fail_next_create_canister(1);
    w.create_personal_canister(alice).unwrap();
    let rec = w.run_to_final(alice, 500);
    assert_eq!(
        (rec.state, rec.failed_in),
        (CreationState::Failed, Some(CreationState::Creating))
    );
    assert!(
        matches!(&rec.error, Some(FactoryError::CallFailed { step, .. }) if step == "create_canister"),
        "{:?}",
        rec.error
    );
    assert_eq!(
        rec.cycles_consumed, 0,
        "a rejected create refunds its cycles"
    );
    assert_eq!(w.reserve_status().reserve, RESERVE);
    set_config(
        &w,
        FactoryConfig {
            max_step_retries: 8,
            ..config(&w)
        },
    );
    let retry = w.create_personal_canister(alice).unwrap();
    assert_eq!(retry.attempts, 2);
    let rec = completed(&w, alice);
    assert_eq!(rec.attempts, 2);
}

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn traps_between_steps_are_resumed_by_the_timer() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &BLOBS, 6, 1);
    w.create_personal_canister(alice).unwrap();
    // Every timer message of the backend traps for a while (rolled back), at each state.
    let timer = "<ic-cdk internal> timer_executor";
    let mut seen = vec![];
    for _ in 0..40 {
        let state = w.status(alice).unwrap().state;
        if state.is_final() {
            break;
        }
        seen.push(state);
        w.emu().trap_method(w.backend, timer);
        w.run_rounds(5, Duration::from_millis(500));
        w.emu().clear_faults();
        w.run_rounds(3, Duration::from_millis(200));
    }
    let rec = completed(&w, alice);
    assert!(
        seen.len() > 1,
        "traps were injected in several states: {seen:?}"
    );
    assert_eq!(rec.attempts, 1);
}

#[test]
fn a_stopped_backend_and_a_stopped_personal_canister_are_waited_for() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &[3 * 1024 * 1024, 2 * 1024 * 1024], 4, 1);
    w.create_personal_canister(alice).unwrap();
    w.run_until(500, |w| {
        w.status(alice).unwrap().state == CreationState::Importing
    });
    let personal = w.status(alice).unwrap().canister_id.unwrap();
    w.ic.stop_canister(w.backend, Some(admin())).unwrap();
    w.run_rounds(20, Duration::from_millis(500));
    w.ic.start_canister(w.backend, Some(admin())).unwrap();
    w.ic.stop_canister(personal, Some(w.backend)).unwrap();
    w.run_rounds(20, Duration::from_millis(500));
    w.ic.start_canister(personal, Some(w.backend)).unwrap();
    let rec = completed(&w, alice);
    assert_eq!(rec.canister_id, Some(personal));
}

#[test]
fn the_backend_is_upgraded_in_the_middle_of_an_import() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &[3 * 1024 * 1024, 5 * 1024 * 1024], 10, 2);
    w.create_personal_canister(alice).unwrap();
    w.run_until(500, |w| {
        let r = w.status(alice).unwrap();
        r.state == CreationState::Importing && r.progress.bytes_done > 0
    });
    w.ic.stop_canister(w.backend, Some(admin())).unwrap();
    w.ic.upgrade_canister(
        w.backend,
        wasm("backend"),
        candid::encode_args(()).unwrap(),
        Some(admin()),
    )
    .unwrap();
    w.ic.start_canister(w.backend, Some(admin())).unwrap();
    let rec = completed(&w, alice);
    assert_eq!(rec.attempts, 1);
    assert_eq!(w.reserve_status().reserve, RESERVE - rec.cycles_consumed);
}

#[test]
#[cfg(not(feature = "pocketic"))] // uses the emulator's fault controls
fn a_tampered_chunk_fails_the_creation_and_the_data_stays_intact() {
    let w = World::with_backend("backend-test");
    let alice = user(1);
    w.fill_capsule(alice, &BLOBS, 3, 1);
    let before = capsule_info(&w, w.backend, alice);
    let () = w.update(admin(), "test_tamper_chunks", (true,));
    w.create_personal_canister(alice).unwrap();
    let rec = w.run_to_final(alice, 3_000);
    assert_eq!(rec.state, CreationState::Failed, "{}", w.tail_of_trace());
    assert_eq!(rec.failed_in, Some(CreationState::Importing));
    assert!(
        matches!(
            &rec.error,
            Some(FactoryError::ImportFailed {
                reason,
                cause: Some(migration::protocol::ImportErrorKind::ChunkRejected),
            }) if reason.contains("chunk")
        ),
        "{:?}",
        rec.error
    );
    assert_eq!(capsule_info(&w, w.backend, alice), before);
    let _: Memory = w
        .capsule(w.backend, alice, "add_memory", (note("still writable"),))
        .unwrap();

    // Cleanup: the personal canister returns its cycles and is deleted; the reserve is credited.
    let personal = rec.canister_id.unwrap();
    let reserve_before = w.reserve_status().reserve;
    let (r,): (Result<Nat, FactoryError>,) =
        w.update(admin(), "admin_cleanup_creation", (rec.migration_id,));
    let returned: u128 = r.unwrap().0.try_into().unwrap();
    assert!(returned > 0);
    assert!(!w.emu().canister_exists(personal));
    assert_eq!(w.reserve_status().reserve, reserve_before + returned);
    let rec = w.status(alice).unwrap();
    assert_eq!(rec.canister_id, None);
    // The quote and the storage funding deposited after install, less what came back.
    let deposited = rec.funding.as_ref().map_or(0, |f| f.deposited);
    assert_eq!(
        rec.cycles_consumed,
        rec.quote.unwrap().total + deposited - returned
    );
}

#[test]
fn an_api_version_mismatch_fails_with_a_clear_error() {
    let w = World::with_backend("backend-test");
    let alice = user(1);
    w.fill_capsule(alice, &[], 2, 0);
    let () = w.update(admin(), "test_expect_api_version", (Some(99u32),));
    w.create_personal_canister(alice).unwrap();
    let rec = w.run_to_final(alice, 500);
    assert_eq!(
        rec.error,
        Some(FactoryError::ApiVersionMismatch {
            expected: 99,
            actual: API_VERSION
        })
    );
    assert_eq!(rec.failed_in, Some(CreationState::Installing));
}

#[test]
fn a_retry_after_the_owner_edited_the_capsule_moves_the_new_data() {
    let w = World::with_backend("backend-test");
    let alice = user(1);
    w.fill_capsule(alice, &BLOBS, 4, 1);
    let () = w.update(admin(), "test_tamper_chunks", (true,));
    w.create_personal_canister(alice).unwrap();
    let failed = w.run_to_final(alice, 3_000);
    assert_eq!(failed.state, CreationState::Failed);
    let old_root = failed.manifest.unwrap().root;
    let () = w.update(admin(), "test_tamper_chunks", (false,));
    // The owner edits the (unfrozen) capsule, then retries.
    let _: Memory = w
        .capsule(
            w.backend,
            alice,
            "add_memory",
            (note("added after the failure"),),
        )
        .unwrap();
    w.create_personal_canister(alice).unwrap();
    let rec = completed(&w, alice);
    assert_ne!(rec.manifest.unwrap().root, old_root);
    assert_eq!(
        rec.canister_id, failed.canister_id,
        "the same canister is reused"
    );
    let info = capsule_info(&w, rec.canister_id.unwrap(), alice);
    assert_eq!(info.memory_count, 5);
}

#[test]
fn twenty_users_migrate_at_once() {
    let w = World::new();
    let users: Vec<Principal> = (1..=20).map(user).collect();
    for (i, u) in users.iter().enumerate() {
        w.fill_capsule(*u, &[1000 + i * 5000, 256 * 1024 + i], 3, 1);
    }
    for u in &users {
        w.create_personal_canister(*u).unwrap();
    }
    w.run_until(10_000, |w| w.all_final(&users));
    let mut consumed = 0;
    for u in &users {
        let r = w.status(*u).unwrap();
        assert_eq!(r.state, CreationState::Completed, "{u}: {:?}", r.error);
        assert_eq!(w.ic.get_controllers(r.canister_id.unwrap()), vec![*u]);
        consumed += r.cycles_consumed;
    }
    let s = stats(&w);
    assert_eq!((s.attempted, s.succeeded, s.failed), (20, 20, 0));
    assert_eq!(s.total_cycles_consumed, consumed);
    assert_eq!(w.reserve_status().reserve, RESERVE - consumed);
}

#[test]
fn the_backend_without_the_factory_serves_capsules_only() {
    let w = World::with_backend("backend-core");
    let alice = user(1);
    let blobs = w.fill_capsule(alice, &BLOBS, 3, 1);
    assert_eq!(
        capsule_info(&w, w.backend, alice).blob_count,
        blobs.len() as u64
    );
    let r: Result<(Result<CreationRecord, FactoryError>,), _> = w.try_update(
        w.backend,
        alice,
        "create_personal_canister",
        (CreatePersonalCanisterConfig::default(),),
    );
    let err = r.unwrap_err();
    assert!(
        err.reject_message.contains("create_personal_canister"),
        "{err:?}"
    );
    let d: BlobDescriptor = w
        .capsule(
            w.backend,
            alice,
            "get_blob",
            (ByteArray::new(blobs[1].hash.into_array()),),
        )
        .unwrap();
    assert_eq!(d.size, BLOBS[1] as u64);
}

/// A personal canister running another module than the one the backend ships (here: the same
/// code with an extra custom section, installed by its co-controller mid-import) is upgraded to
/// the backend's module before the handoff, not failed.
#[test]
fn an_older_personal_module_is_upgraded_before_handoff() {
    use sha2::Digest;
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &BLOBS, 4, 1);
    w.create_personal_canister(alice).unwrap();
    w.run_until(500, |w| {
        w.status(alice).unwrap().state == CreationState::Importing
    });
    let personal = w.status(alice).unwrap().canister_id.unwrap();

    // The shipped module, unzipped, plus a custom section: same behaviour, another hash.
    let shipped = wasm("personal");
    let mut other = vec![];
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&shipped[..]), &mut other)
        .unwrap();
    other.extend_from_slice(&[0, 6, 5, b'o', b't', b'h', b'e', b'r']);
    let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &other).unwrap();
    let other = gz.finish().unwrap();
    let arg = candid::encode_one(None::<migration::protocol::PersonalInitArgs>).unwrap();
    w.ic.upgrade_canister(personal, other.clone(), arg, Some(alice))
        .unwrap();
    let hash = |bytes: &[u8]| sha2::Sha256::digest(bytes).to_vec();
    let status = w.ic.canister_status(personal, Some(alice)).unwrap();
    assert_eq!(status.module_hash, Some(hash(&other)));

    let rec = completed(&w, alice);
    assert_eq!(rec.attempts, 1);
    let status = w.ic.canister_status(personal, Some(alice)).unwrap();
    assert_eq!(
        status.module_hash,
        Some(hash(&shipped)),
        "upgraded to the shipped module"
    );
    assert_eq!(w.ic.get_controllers(personal), vec![alice]);
}

/// Timer messages the backend executed (the system's global timer and ic-cdk-timers' executor).
#[cfg(not(feature = "pocketic"))]
fn timer_messages(w: &World) -> u64 {
    timer_stats(&w.emu().stats(w.backend)).executions
}

/// The scheduler runs only while there is work: once the creation has completed, an hour
/// passes without a single timer message, and the backend still wakes up on its own to purge
/// the shared copy when the retention has passed.
#[test]
#[cfg(not(feature = "pocketic"))] // counts messages with the emulator's statistics
fn an_idle_backend_runs_no_timer_and_still_purges_on_time() {
    let w = World::new();
    let mut c = config(&w);
    c.retention_seconds = 2 * 3600;
    set_config(&w, c);
    let alice = user(1);
    w.fill_capsule(alice, &BLOBS, 3, 1);
    w.create_personal_canister(alice).unwrap();
    completed(&w, alice);
    w.run_rounds(20, Duration::from_secs(1));
    w.emu().clear_observations();
    w.run_rounds(60, Duration::from_secs(60));
    assert_eq!(
        timer_messages(&w),
        0,
        "an idle hour runs no timer message: {:?}",
        w.emu().stats(w.backend).methods.keys().collect::<Vec<_>>()
    );
    assert!(!w.status(alice).unwrap().shared_capsule_purged);
    w.run_rounds(70, Duration::from_secs(60));
    assert!(
        w.status(alice).unwrap().shared_capsule_purged,
        "purged after the retention: {:?}",
        w.status(alice).unwrap().purge_check
    );
    assert!(timer_messages(&w) > 0);
    let gone: Result<CapsuleInfo, capsule::Error> = w.capsule(w.backend, alice, "get_capsule", ());
    assert!(gone.is_err(), "the shared copy is gone: {gone:?}");
}

#[test]
fn return_cycles_refuses_others_and_says_what_came_back() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &[], 1, 0);
    w.create_personal_canister(alice).unwrap();
    let personal = completed(&w, alice).canister_id.unwrap();
    let (r,): (Result<Nat, Error>,) = w
        .try_update(personal, user(2), "return_cycles", (w.backend,))
        .unwrap();
    assert_eq!(r, Err(Error::NotController));
    // A target without `deposit_returned_cycles` rejects: every cycle comes back.
    let (r,): (Result<Nat, Error>,) = w
        .try_update(personal, alice, "return_cycles", (personal,))
        .unwrap();
    assert!(
        matches!(
            &r,
            Err(Error::CyclesNotReturned(c))
                if c.canister_id == personal && c.amount > 0 && c.refunded == c.amount
        ),
        "{r:?}"
    );
}
