//! Fault injection and observability (the emulator's extras beside the PocketIC API).

mod common;

use candid::Principal;
use common::{call_unbounded, counters, setup, update};
use emulator::{ErrorCode, RejectCode};

fn anon() -> Principal {
    Principal::anonymous()
}

#[test]
fn reject_next_n_calls_then_recover() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    pic.reject_next(
        b,
        Some("inc"),
        2,
        RejectCode::SysTransient,
        "injected: queue full",
    );
    for _ in 0..2 {
        let r = call_unbounded(&pic, a, b, "inc");
        assert_eq!(r, "reject:2:injected: queue full");
    }
    let r = call_unbounded(&pic, a, b, "inc");
    assert!(r.starts_with("reply:"), "{r}");
    assert_eq!(counters(&pic, b), (1, 1));
}

#[test]
fn trapping_method_and_failing_management_calls() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    pic.trap_method(b, "inc");
    let err = update::<_, (u64,)>(&pic, b, "inc", ()).unwrap_err();
    assert_eq!(err.error_code, ErrorCode::CanisterCalledTrap);
    assert!(err.reject_message.contains("injected trap"));
    pic.clear_faults();
    assert_eq!(update::<_, (u64,)>(&pic, b, "inc", ()).unwrap().0, 1);

    pic.fail_next_create_canister(1);
    let r: (Result<Principal, String>,) =
        update(&pic, a, "create_child", (1_000_000u128,)).unwrap();
    assert!(r.0.is_err());
    let r: (Result<Principal, String>,) =
        update(&pic, a, "create_child", (1_000_000u128,)).unwrap();
    assert!(r.0.is_ok());

    pic.fail_next_install_code(1);
    let wasm = common::probe_wasm();
    assert!(
        pic.reinstall_canister(b, wasm.clone(), candid::encode_args(()).unwrap(), None)
            .is_err()
    );
    assert_eq!(
        counters(&pic, b),
        (1, 1),
        "a failed install changes nothing"
    );
    pic.reinstall_canister(b, wasm, candid::encode_args(()).unwrap(), None)
        .unwrap();
    assert_eq!(counters(&pic, b), (0, 0));
}

#[test]
fn pause_and_delay_hold_messages() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    // Pausing the management canister holds a flow that waits on it.
    pic.pause(Principal::management_canister());
    let msg = pic
        .submit_call(a, anon(), "info", candid::encode_one(b).unwrap())
        .unwrap();
    pic.tick_n(10);
    assert!(pic.ingress_status(msg.clone()).is_none());
    pic.resume(Principal::management_canister());
    assert!(pic.await_call(msg).is_ok());

    // A delay of K rounds on B.
    pic.delay_delivery(b, 5);
    let r0 = pic.round();
    update::<_, (u64,)>(&pic, b, "inc", ()).unwrap();
    assert!(pic.round() - r0 >= 6, "{}", pic.round() - r0);
    pic.delay_delivery(b, 0);
    let r0 = pic.round();
    update::<_, (u64,)>(&pic, b, "inc", ()).unwrap();
    assert_eq!(pic.round() - r0, 1);
}

#[test]
fn out_of_cycles_rejects_and_recovers() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    pic.drain_cycles(a);
    let err = update::<_, (u64,)>(&pic, a, "inc", ()).unwrap_err();
    assert_eq!(err.reject_code, RejectCode::SysTransient);
    assert_eq!(err.error_code, ErrorCode::CanisterOutOfCycles);
    pic.set_cycles(a, 10_000_000_000_000);
    assert_eq!(update::<_, (u64,)>(&pic, a, "inc", ()).unwrap().0, 1);
}

#[test]
fn heap_delta_limit_defers_to_the_next_round() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    pic.update_config(|c| c.heap_delta_per_round = 1024 * 1024);
    let arg = candid::encode_one(2u64).unwrap();
    let m1 = pic
        .submit_call(a, anon(), "grow_heap", arg.clone())
        .unwrap();
    let m2 = pic.submit_call(a, anon(), "grow_heap", arg).unwrap();
    pic.tick();
    assert!(pic.ingress_status(m1).is_some());
    assert!(
        pic.ingress_status(m2.clone()).is_none(),
        "second message waits: heap delta exhausted"
    );
    pic.tick();
    assert!(pic.ingress_status(m2).is_some());
}

#[test]
fn stats_logs_and_trace() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let r: (String,) = update(&pic, a, "send_bytes", (b, 1000u64)).unwrap();
    assert!(r.0.starts_with("reply:"));
    update::<_, ()>(&pic, a, "log", ("observable".to_string(),)).unwrap();
    let sa = pic.stats(a);
    let sb = pic.stats(b);
    let send = &sa.methods["send_bytes"];
    assert_eq!(send.calls_received, 1);
    assert_eq!(send.calls_made, 1);
    assert!(send.bytes_out >= 1000);
    assert_eq!(send.executions, 2, "the request and its reply callback");
    assert!(send.instructions_total >= send.instructions_max && send.instructions_max > 0);
    assert!(send.cycles_burnt > 0);
    let echo = &sb.methods["echo"];
    assert_eq!(echo.calls_received, 1);
    assert!(echo.bytes_in >= 1000 && echo.bytes_out >= 1000);
    assert!(sa.rounds >= 2);
    assert!(sa.total.heap_delta > 0);
    assert!(pic.debug_prints(a).contains(&"observable".to_string()));
    let trace = pic.trace_string();
    assert!(
        trace.contains("send_bytes") && trace.contains("echo"),
        "{trace}"
    );
}
