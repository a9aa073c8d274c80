//! Saving and loading the state (incrementally), and injected rejects of management methods.

mod common;

use candid::Principal;
use common::{counters, flags, query, setup, update};
use emulator::{Emulator, ErrorCode, RejectCode};

/// Reply of the probe's `info`.
type InfoResult = Result<(Vec<Principal>, Option<Vec<u8>>), String>;

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("emulator-snapshot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn a_saved_state_loads_with_heap_stable_memory_timers_and_faults() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    for _ in 0..3 {
        update::<_, (u64,)>(&pic, a, "inc", ()).unwrap();
    }
    update::<_, (u64,)>(&pic, a, "grow_heap", (3u64,)).unwrap();
    update::<_, ()>(&pic, b, "log", ("hello log".to_string(),)).unwrap();
    // A one-shot timer 10 s from now: it must fire after loading.
    update::<_, ()>(&pic, a, "start_timer", (10u64, false)).unwrap();
    pic.trap_method(b, "inc");
    let dir = temp_dir("roundtrip");
    let first = pic.save_state(&dir).unwrap();
    assert!(first.full_rewrites >= 4, "{first:?}");

    let loaded = Emulator::load_state(&dir).unwrap();
    let q = |e: &Emulator, id| -> (u64, u64) {
        e.query_candid(id, Principal::anonymous(), "get", ())
            .unwrap()
    };
    assert_eq!(q(&loaded, a), counters(&pic, a));
    assert_eq!(q(&loaded, a), (3, 3));
    assert_eq!(loaded.time_nanos(), pic.time_nanos());
    assert_eq!(loaded.round(), pic.round());
    // The injected trap survived.
    let err = loaded
        .update_candid::<_, (u64,)>(b, Principal::anonymous(), "inc", ())
        .unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterCalledTrap);
    // The canister log survived.
    let logs: Vec<String> = loaded
        .canister_log(b)
        .into_iter()
        .map(|l| l.2)
        .filter(|l| l.contains("hello log"))
        .collect();
    assert_eq!(logs.len(), 1);
    // The timer fires after loading.
    loaded.advance_time(std::time::Duration::from_secs(11));
    loaded.tick_n(5);
    let f: (u64, u64, u64, bool, u64) = loaded
        .query_candid(a, Principal::anonymous(), "flags", ())
        .unwrap();
    assert_eq!(f.2, 1, "timer fired after the load");
    assert_eq!(flags(&pic, a).2, 0);

    // An incremental save writes only the pages the next message dirtied.
    loaded
        .update_candid::<_, (u64,)>(a, Principal::anonymous(), "inc", ())
        .unwrap();
    let second = loaded.save_state(&dir).unwrap();
    assert_eq!(second.full_rewrites, 0, "{second:?}");
    assert!(
        second.pages_written > 0 && second.pages_written < 64,
        "{second:?}"
    );
    let again = Emulator::load_state(&dir).unwrap();
    assert_eq!(q(&again, a), (4, 4));
    assert_eq!(
        again
            .query_candid::<_, (u64, u64, u64, bool, u64)>(a, Principal::anonymous(), "flags", ())
            .unwrap()
            .2,
        1
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn messages_in_flight_are_saved_and_delivered_after_loading() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    pic.pause(b);
    let msg = pic
        .submit(
            a,
            Principal::anonymous(),
            "call_unbounded",
            candid::encode_args((b, "inc".to_string())).unwrap(),
        )
        .unwrap();
    pic.tick_n(3);
    assert!(pic.messages_in_flight() > 0);
    let dir = temp_dir("inflight");
    pic.save_state(&dir).unwrap();
    let loaded = Emulator::load_state(&dir).unwrap();
    assert!(loaded.messages_in_flight() > 0);
    loaded.resume(b);
    loaded.run_until_idle(100);
    assert_eq!(
        loaded
            .query_candid::<_, (u64, u64)>(b, Principal::anonymous(), "get", ())
            .unwrap(),
        (1, 1),
        "the held call was delivered after the load"
    );
    // The ingress message of the first process is still answered in its history.
    assert!(loaded.ingress_status(msg).is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reject_next_applies_to_management_methods() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    pic.reject_next(
        Principal::management_canister(),
        Some("create_canister"),
        1,
        RejectCode::SysTransient,
        "injected: subnet busy",
    );
    let r: (Result<Principal, String>,) =
        update(&pic, a, "create_child", (1_000_000u128,)).unwrap();
    let e = r.0.unwrap_err();
    assert!(e.contains("injected: subnet busy"), "{e}");
    // Other management methods are not affected, and the rule is used up.
    let info: (InfoResult,) = update(&pic, a, "info", (a,)).unwrap();
    assert!(info.0.is_ok());
    let r: (Result<Principal, String>,) =
        update(&pic, a, "create_child", (1_000_000u128,)).unwrap();
    assert!(r.0.is_ok());

    // canister_info by method, twice.
    pic.reject_next(
        Principal::management_canister(),
        Some("canister_info"),
        2,
        RejectCode::CanisterError,
        "injected: info fails",
    );
    for _ in 0..2 {
        let info: (InfoResult,) = update(&pic, a, "info", (a,)).unwrap();
        assert!(info.0.unwrap_err().contains("injected: info fails"));
    }
    let info: (InfoResult,) = update(&pic, a, "info", (a,)).unwrap();
    assert!(info.0.is_ok());
    let _: (u64, u64) = query(&pic, a, "get", ()).unwrap();
}
