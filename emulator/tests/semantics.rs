//! IC semantics, each shown on the probe canister (ic-cdk 0.20, ic-cdk-timers 1.0,
//! ic-stable-structures 0.7, unmodified).

mod common;

use std::time::Duration;

use candid::Principal;
use common::{call_unbounded, counters, flags, probe_wasm, query, setup, update};
use emulator::pocket_ic::{PocketIc, RawMessageId};
use emulator::{ErrorCode, RejectCode};

/// `probe.info`: `(controllers, module hash)` or an error.
type InfoResult = Result<(Vec<Principal>, Option<Vec<u8>>), String>;

#[test]
fn trap_rolls_back_heap_and_stable_memory() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    assert_eq!(update::<_, (u64,)>(&pic, a, "inc", ()).unwrap().0, 1);
    let err = update::<_, ()>(&pic, a, "set_then_trap", (42u64,)).unwrap_err();
    assert_eq!(err.reject_code, RejectCode::CanisterError);
    assert_eq!(err.error_code, ErrorCode::CanisterCalledTrap);
    assert!(
        err.reject_message.contains("set_then_trap(42)"),
        "{}",
        err.reject_message
    );
    assert_eq!(counters(&pic, a), (1, 1));
    // The canister still works and builds on the committed state.
    assert_eq!(update::<_, (u64,)>(&pic, a, "inc", ()).unwrap().0, 2);
    assert_eq!(counters(&pic, a), (2, 2));
}

#[test]
fn trap_after_memory_growth_rolls_back_growth() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    update::<_, (u64,)>(&pic, a, "inc", ()).unwrap();
    let before = pic
        .canister_status(a, None)
        .unwrap()
        .memory_metrics
        .wasm_memory_size;
    let err = update::<_, ()>(&pic, a, "grow_then_trap", (8u64,)).unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterCalledTrap);
    assert_eq!(counters(&pic, a), (1, 1));
    let after = pic
        .canister_status(a, None)
        .unwrap()
        .memory_metrics
        .wasm_memory_size;
    assert_eq!(before, after);
    assert_eq!(
        update::<_, (u64,)>(&pic, a, "grow_heap", (8u64,))
            .unwrap()
            .0,
        8 << 20
    );
    assert_eq!(update::<_, (u64,)>(&pic, a, "inc", ()).unwrap().0, 2);
}

#[test]
fn query_changes_are_not_kept_also_when_called_by_a_canister() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    update::<_, (u64,)>(&pic, a, "inc", ()).unwrap();
    assert_eq!(
        query::<_, (u64,)>(&pic, a, "query_mutate", ()).unwrap().0,
        101
    );
    assert_eq!(counters(&pic, a), (1, 1));
    // Through an update call of the query method, and through another canister.
    assert_eq!(
        update::<_, (u64,)>(&pic, a, "query_mutate", ()).unwrap().0,
        101
    );
    let r = call_unbounded(&pic, b, a, "query_mutate");
    assert!(r.starts_with("reply:"), "{r}");
    assert_eq!(counters(&pic, a), (1, 1));
}

#[test]
fn callback_trap_rolls_back_then_runs_cleanup() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let err = update::<_, ()>(&pic, a, "call_then_trap", (b,)).unwrap_err();
    assert_eq!(err.reject_code, RejectCode::CanisterError);
    assert!(
        err.reject_message.contains("trap in callback"),
        "{}",
        err.reject_message
    );
    let (step, cleanups, ..) = flags(&pic, a);
    assert_eq!(
        step, 1,
        "the callback's write of step 2 must be rolled back"
    );
    assert_eq!(
        cleanups, 1,
        "the cleanup callback must have run and committed"
    );
    assert_eq!(
        counters(&pic, b),
        (1, 1),
        "the callee's committed work stays"
    );
}

#[test]
fn unaccepted_cycles_are_refunded() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let a_before = pic.cycle_balance(a);
    let b_before = pic.cycle_balance(b);
    let (accepted, refunded): (u128, u128) = update(
        &pic,
        a,
        "send_cycles",
        (b, 1_000_000_000u128, 400_000_000u128),
    )
    .unwrap();
    assert_eq!(accepted, 400_000_000);
    assert_eq!(refunded, 600_000_000);
    let a_spent = a_before - pic.cycle_balance(a);
    let b_gain = pic.cycle_balance(b) as i128 - b_before as i128;
    // A paid the accepted cycles plus fees (well under the 600 M that came back).
    assert!(a_spent > 400_000_000 && a_spent < 500_000_000, "{a_spent}");
    // B got the accepted cycles minus its execution fee.
    assert!(b_gain > 300_000_000 && b_gain <= 400_000_000, "{b_gain}");
}

#[test]
fn timers_fire_through_the_global_timer() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    update::<_, ()>(&pic, a, "start_timer", (5u64, false)).unwrap();
    pic.tick();
    pic.tick();
    assert_eq!(flags(&pic, a).2, 0, "not yet due");
    pic.advance_time(Duration::from_secs(6));
    for _ in 0..4 {
        pic.tick();
    }
    assert_eq!(flags(&pic, a).2, 1);
    assert!(pic.debug_prints(a).iter().any(|l| l == "timer fired"));
    // An interval timer fires once per interval.
    update::<_, ()>(&pic, a, "start_timer", (10u64, true)).unwrap();
    for _ in 0..3 {
        pic.advance_time(Duration::from_secs(10));
        for _ in 0..4 {
            pic.tick();
        }
    }
    assert_eq!(flags(&pic, a).2, 4);
    // The timer ran through ic-cdk-timers' bounded-wait self-call.
    assert!(
        pic.trace()
            .iter()
            .any(|e| e.method == "<ic-cdk internal> timer_executor")
    );
}

#[test]
fn bounded_wait_call_times_out_with_sys_unknown() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    pic.pause(b);
    let msg = pic
        .submit_call(
            a,
            Principal::anonymous(),
            "call_bounded",
            candid::encode_args((b, "inc".to_string(), 5u32)).unwrap(),
        )
        .unwrap();
    for _ in 0..5 {
        pic.tick();
    }
    assert!(
        pic.ingress_status(msg.clone()).is_none(),
        "must wait for the deadline"
    );
    pic.advance_time(Duration::from_secs(6));
    pic.tick();
    let r: String = candid::decode_one(&pic.await_call(msg).unwrap()).unwrap();
    assert!(r.starts_with("reject:6:"), "{r}");
    // The expired request is dropped, not delivered later.
    pic.resume(b);
    pic.tick_n(5);
    assert_eq!(counters(&pic, b), (0, 0));
    // An unbounded call waits as long as it takes.
    let msg = call_paused(&pic, a, b);
    pic.advance_time(Duration::from_secs(3600));
    pic.tick_n(5);
    assert!(pic.ingress_status(msg.clone()).is_none());
    pic.resume(b);
    let r: String = candid::decode_one(&pic.await_call(msg).unwrap()).unwrap();
    assert!(r.starts_with("reply:"), "{r}");
}

#[test]
fn upgrade_keeps_stable_memory_and_resets_the_heap() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    update::<_, (u64,)>(&pic, a, "inc", ()).unwrap();
    update::<_, (u64,)>(&pic, a, "inc", ()).unwrap();
    assert_eq!(counters(&pic, a), (2, 2));
    pic.upgrade_canister(a, probe_wasm(), candid::encode_args(()).unwrap(), None)
        .unwrap();
    assert_eq!(counters(&pic, a), (0, 2));
    let (_, _, _, upgraded, saved) = flags(&pic, a);
    assert!(upgraded, "post_upgrade ran");
    assert_eq!(saved, 2, "pre_upgrade ran on the old heap");
    // Reinstall clears stable memory too.
    pic.reinstall_canister(a, probe_wasm(), candid::encode_args(()).unwrap(), None)
        .unwrap();
    assert_eq!(counters(&pic, a), (0, 0));
}

#[test]
fn stopped_canister_rejects_calls() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    pic.stop_canister(b, None).unwrap();
    let err = update::<_, (u64,)>(&pic, b, "inc", ()).unwrap_err();
    assert_eq!(err.reject_code, RejectCode::CanisterError);
    assert_eq!(err.error_code, ErrorCode::CanisterStopped);
    let r = call_unbounded(&pic, a, b, "inc");
    assert!(r.starts_with("reject:5:"), "{r}");
    assert_eq!(
        query::<_, (u64, u64)>(&pic, b, "get", ())
            .unwrap_err()
            .error_code,
        ErrorCode::CanisterStopped
    );
    pic.start_canister(b, None).unwrap();
    assert_eq!(update::<_, (u64,)>(&pic, b, "inc", ()).unwrap().0, 1);
    // Deleting needs a stopped canister.
    assert_eq!(
        pic.delete_canister(b, None).unwrap_err().error_code,
        ErrorCode::CanisterNotStopped
    );
    pic.stop_canister(b, None).unwrap();
    pic.delete_canister(b, None).unwrap();
    let r = call_unbounded(&pic, a, b, "inc");
    assert!(r.starts_with("reject:3:"), "{r}");
}

#[test]
fn stopping_waits_for_open_call_contexts() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    // A has an open call context waiting on B.
    let msg = call_paused(&pic, a, b);
    pic.tick_n(2);
    let stop = pic
        .submit_call(
            Principal::management_canister(),
            Principal::anonymous(),
            "stop_canister",
            candid::encode_one(ic_management_canister_types::CanisterIdRecord { canister_id: a })
                .unwrap(),
        )
        .unwrap();
    pic.tick_n(3);
    assert!(pic.ingress_status(stop.clone()).is_none(), "stopping waits");
    let st = pic.canister_status(a, None).unwrap();
    assert_eq!(
        st.status,
        ic_management_canister_types::CanisterStatusType::Stopping
    );
    assert_eq!(
        update::<_, (u64,)>(&pic, a, "inc", ())
            .unwrap_err()
            .error_code,
        ErrorCode::CanisterStopping
    );
    pic.resume(b);
    pic.await_call(msg).unwrap();
    pic.await_call(stop).unwrap();
    assert_eq!(
        pic.canister_status(a, None).unwrap().status,
        ic_management_canister_types::CanisterStatusType::Stopped
    );
}

#[test]
fn payloads_over_2_mib_are_rejected() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let big = serde_bytes::ByteBuf::from(vec![1u8; 2 * 1024 * 1024 + 1]);
    let err = pic
        .update_call(
            a,
            Principal::anonymous(),
            "echo",
            candid::encode_one(&big).unwrap(),
        )
        .unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterRejectedMessage);
    // Inter-canister request over the limit: call_data_append traps in the caller.
    let err =
        update::<_, (String,)>(&pic, a, "send_bytes", (b, 2u64 * 1024 * 1024 + 1)).unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterContractViolation);
    // Reply over the limit.
    let err =
        update::<_, (serde_bytes::ByteBuf,)>(&pic, a, "make_bytes", (2u64 * 1024 * 1024 + 1,))
            .unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterContractViolation);
    // Under the limit all is well.
    let r: (String,) = update(&pic, a, "send_bytes", (b, 1024u64 * 1024)).unwrap();
    assert!(r.0.starts_with("reply:"), "{}", r.0);
}

#[test]
fn instruction_limit_traps_and_rolls_back() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    let used: (u64,) = update(&pic, a, "burn", (1_000u64,)).unwrap();
    assert!(used.0 > 1_000 && used.0 < 1_000_000, "{}", used.0);
    pic.update_config(|c| c.update_instruction_limit = 50_000_000);
    update::<_, (u64,)>(&pic, a, "inc", ()).unwrap();
    let err = update::<_, (u64,)>(&pic, a, "burn", (100_000_000u64,)).unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterInstructionLimitExceeded);
    assert!(
        err.reject_message.contains("50000000 instructions"),
        "{}",
        err.reject_message
    );
    assert_eq!(counters(&pic, a), (1, 1));
    let st = pic.stats(a);
    assert_eq!(st.methods["burn"].traps, 1);
    assert!(st.methods["burn"].instructions_max >= 50_000_000);
}

#[test]
fn management_calls_by_non_controllers_are_rejected() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let stranger = Principal::from_slice(&[9, 9, 9]);
    let err = pic.canister_status(b, Some(stranger)).unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterInvalidController);
    assert_eq!(
        pic.stop_canister(b, Some(stranger)).unwrap_err().error_code,
        ErrorCode::CanisterInvalidController
    );
    assert_eq!(
        pic.upgrade_canister(b, probe_wasm(), vec![], Some(stranger))
            .unwrap_err()
            .error_code,
        ErrorCode::CanisterInvalidController
    );
    assert!(
        pic.set_controllers(b, Some(stranger), vec![stranger])
            .is_err()
    );
    // A canister that is not a controller.
    let r: (Result<String, String>,) = update(&pic, a, "status_of", (b,)).unwrap();
    assert!(r.0.unwrap_err().contains("controller"));
    let r: (Result<(), String>,) = update(&pic, a, "stop_other", (b,)).unwrap();
    assert!(r.0.is_err());
    // Once a controller, it may.
    pic.set_controllers(b, None, vec![Principal::anonymous(), a])
        .unwrap();
    let r: (Result<String, String>,) = update(&pic, a, "status_of", (b,)).unwrap();
    assert_eq!(r.0.unwrap(), "Running");
}

#[test]
fn canister_info_is_open_to_non_controllers() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let r: (InfoResult,) = update(&pic, a, "info", (b,)).unwrap();
    let (controllers, hash) = r.0.unwrap();
    assert_eq!(controllers, vec![Principal::anonymous()]);
    let expected = emulator::engine::sha256(&probe_wasm()).to_vec();
    assert_eq!(hash, Some(expected));
    // After a handoff the caller is not a controller and still sees it.
    let owner = Principal::from_slice(&[7]);
    pic.set_controllers(b, None, vec![owner]).unwrap();
    let r: (InfoResult,) = update(&pic, a, "info", (b,)).unwrap();
    assert_eq!(r.0.unwrap().0, vec![owner]);
}

#[test]
fn self_calls_run_after_the_caller_commits_within_the_round() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    let round = pic.round();
    let r: (u64,) = update(&pic, a, "self_calls", (3u64,)).unwrap();
    assert_eq!(r.0, 3);
    assert_eq!(counters(&pic, a), (3, 3));
    // Ingress + 3 calls and 3 responses: each hop is an inner iteration of the same round.
    assert_eq!(pic.round() - round, 1);
    assert_eq!(pic.stats(a).methods["self_calls"].calls_made, 3);
}

#[test]
fn gzipped_modules_install_and_hash_as_installed() {
    use std::io::Write;
    let pic = PocketIc::new();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&probe_wasm()).unwrap();
    let gz = gz.finish().unwrap();
    let id = pic.create_canister();
    pic.install_canister(id, gz.clone(), candid::encode_args(()).unwrap(), None);
    assert_eq!(update::<_, (u64,)>(&pic, id, "inc", ()).unwrap().0, 1);
    let st = pic.canister_status(id, None).unwrap();
    assert_eq!(st.module_hash, Some(emulator::engine::sha256(&gz).to_vec()));
}

#[test]
fn unknown_import_fails_install_naming_the_function() {
    let pic = PocketIc::new();
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend_from_slice(&[0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
    wasm.extend_from_slice(&[0x02, 0x0f, 0x01, 0x03, b'i', b'c', b'0', 0x07]);
    wasm.extend_from_slice(b"foo_bar");
    wasm.extend_from_slice(&[0x00, 0x00]);
    let id = pic.create_canister();
    let err = pic.reinstall_canister(id, wasm, vec![], None).unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterInvalidWasm);
    assert!(
        err.reject_message.contains("ic0.foo_bar"),
        "{}",
        err.reject_message
    );
}

#[test]
fn canisters_create_canisters_paying_the_fee() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    let fee = pic.config().prices.create_canister_fee;
    let before = pic.cycle_balance(a);
    let r: (Result<Principal, String>,) =
        update(&pic, a, "create_child", (1_000_000_000_000u128,)).unwrap();
    let child = r.0.unwrap();
    // ic-cdk-management-canister attaches the fee plus the extra cycles; the fee is charged.
    assert_eq!(pic.cycle_balance(child), 1_000_000_000_000);
    assert!(fee > 0);
    assert_eq!(pic.get_controllers(child), vec![a]);
    assert!(before - pic.cycle_balance(a) >= 1_000_000_000_000);
    let r: (Vec<u8>,) = update(&pic, a, "rand", ()).unwrap();
    assert_eq!(r.0.len(), 32);
}

#[test]
fn canister_logs_and_fetch_canister_logs() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    update::<_, ()>(&pic, a, "log", ("hello log".to_string(),)).unwrap();
    let _ = update::<_, ()>(&pic, a, "set_then_trap", (1u64,));
    let logs = pic.fetch_canister_logs(a, Principal::anonymous()).unwrap();
    let texts: Vec<String> = logs
        .iter()
        .map(|l| String::from_utf8_lossy(&l.content).into_owned())
        .collect();
    assert!(texts.iter().any(|t| t == "hello log"), "{texts:?}");
    assert!(
        texts
            .iter()
            .any(|t| t.contains("[TRAP]") && t.contains("set_then_trap(1)")),
        "{texts:?}"
    );
    assert!(
        pic.fetch_canister_logs(a, Principal::from_slice(&[5]))
            .is_err()
    );
}

#[test]
fn explicit_rejects_are_canister_reject() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let err = update::<_, ()>(&pic, a, "reject_me", ("no thanks".to_string(),)).unwrap_err();
    assert_eq!(err.reject_code, RejectCode::CanisterReject);
    assert_eq!(err.error_code, ErrorCode::CanisterRejectedMessage);
    assert_eq!(err.reject_message, "no thanks");
    let r = call_unbounded(&pic, a, b, "no_such_method");
    assert!(r.starts_with("reject:5:"), "{r}");
    let err = update::<_, ()>(&pic, a, "no_such_method", ()).unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterMethodNotFound);
}

#[test]
fn callers_and_identities() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    let alice = emulator::Emulator::identity("alice");
    assert_ne!(alice, emulator::Emulator::identity("bob"));
    let (time, me, caller): (u64, Principal, Principal) =
        pic.query_candid(a, alice, "whoami", ()).unwrap();
    assert_eq!(me, a);
    assert_eq!(caller, alice);
    assert_eq!(time, pic.get_time().as_nanos_since_unix_epoch());
}

#[test]
fn the_handle_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PocketIc>();
    check::<emulator::Emulator>();
}

#[test]
fn inspect_message_filters_ingress_only() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let err = update::<_, (u64,)>(&pic, a, "refused_by_inspect", ()).unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterRejectedMessage);
    assert_eq!(counters(&pic, a), (0, 0));
    let r = call_unbounded(&pic, b, a, "refused_by_inspect");
    assert!(r.starts_with("reply:"), "{r}");
    assert_eq!(counters(&pic, a), (1, 1));
}

#[test]
fn callbacks_of_replaced_code_are_not_run() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let msg = call_paused(&pic, a, b);
    pic.tick_n(2);
    pic.upgrade_canister(a, probe_wasm(), candid::encode_args(()).unwrap(), None)
        .unwrap();
    pic.resume(b);
    let err = pic.await_call(msg).unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterDidNotReply);
    assert_eq!(counters(&pic, b), (1, 1), "the callee ran");
    assert_eq!(
        update::<_, (u64,)>(&pic, a, "inc", ()).unwrap().0,
        1,
        "the new code works"
    );
}

#[test]
fn heartbeat_runs_every_round() {
    let pic = PocketIc::new();
    let id = pic.create_canister();
    let wasm = emulator::canisters::build_canister("heartbeat")
        .unwrap()
        .to_vec();
    pic.install_canister(id, wasm, candid::encode_args(()).unwrap(), None);
    let (before,): (u64,) = query(&pic, id, "beats", ()).unwrap();
    pic.tick_n(5);
    let (after,): (u64,) = query(&pic, id, "beats", ()).unwrap();
    assert_eq!(after - before, 5);
    pic.stop_canister(id, None).unwrap();
    pic.start_canister(id, None).unwrap();
}

/// Pauses `b` and submits `a`'s unbounded call of `b`'s `inc`: `a` has an open call context
/// waiting on `b` until `b` resumes.
fn call_paused(pic: &PocketIc, a: Principal, b: Principal) -> RawMessageId {
    pic.pause(b);
    pic.submit_call(
        a,
        Principal::anonymous(),
        "call_unbounded",
        candid::encode_args((b, "inc".to_string())).unwrap(),
    )
    .unwrap()
}
