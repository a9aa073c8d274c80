//! Where the emulator must behave as the replica and the IC interface specification say
//! (issue 14): each test would fail on the behaviour it replaced.

mod common;

use std::time::Duration;

use candid::Principal;
use common::{call_unbounded, counters, flags, query, setup, update};
use emulator::ErrorCode;
use ic_management_canister_types::{CanisterInfoResult, ChangeDetails, ChangeOrigin};

// ---- 1. the ic0 import check is the linker

/// A module importing every function the linker defines, each with the linker's type, installs:
/// the check at install reads the linker, so a function linked is a function accepted.
#[test]
fn every_linked_ic0_function_may_be_imported() {
    use wasm_encoder::{
        CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
        ImportSection, Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
    };
    let funcs = emulator::engine::ic0_functions();
    for name in [
        "cost_http_request",
        "cost_http_request_v2",
        "cost_sign_with_ecdsa",
        "cost_sign_with_schnorr",
        "cost_vetkd_derive_key",
        "msg_caller_info_data_size",
        "msg_caller_info_data_copy",
        "msg_caller_info_signer_size",
        "msg_caller_info_signer_copy",
        "subnet_self_node_count",
        "in_replicated_execution",
        "msg_reply",
    ] {
        assert!(funcs.contains_key(name), "ic0.{name} is not linked");
    }
    let val = |t: &wasmtime::ValType| match t {
        wasmtime::ValType::I32 => ValType::I32,
        wasmtime::ValType::I64 => ValType::I64,
        wasmtime::ValType::F32 => ValType::F32,
        wasmtime::ValType::F64 => ValType::F64,
        other => panic!("unexpected ic0 type {other}"),
    };
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    for (i, (name, ty)) in funcs.iter().enumerate() {
        let params: Vec<ValType> = ty.params().map(|t| val(&t)).collect();
        let results: Vec<ValType> = ty.results().map(|t| val(&t)).collect();
        types.ty().function(params, results);
        imports.import("ic0", name, EntityType::Function(i as u32));
    }
    let n = funcs.len() as u32;
    types.ty().function([], []);
    let mut functions = FunctionSection::new();
    functions.function(n);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("canister_update noop", ExportKind::Func, n);
    exports.export("memory", ExportKind::Memory, 0);
    let mut code = CodeSection::new();
    let mut body = Function::new([]);
    body.instruction(&Instruction::End);
    code.function(&body);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&memories)
        .section(&exports)
        .section(&code);
    let wasm = module.finish();

    let pic = emulator::pocket_ic::PocketIc::new();
    let id = pic.create_canister();
    pic.reinstall_canister(id, wasm, vec![], None)
        .unwrap_or_else(|e| panic!("a module importing every linked ic0 function: {e}"));
}

/// An ordinary ic-cdk 0.20 canister asking prices of what is not modelled, the caller info and
/// the node count installs and runs (the probe imports them: it would not install otherwise).
#[test]
fn ordinary_cdk_imports_run() {
    let (pic, ids) = setup(1);
    let (http, threshold, nodes, info, signer): (u128, u128, u32, u64, bool) =
        update(&pic, ids[0], "costs", ()).unwrap();
    assert!(http > 0 && threshold > 0);
    assert_eq!(nodes, 13);
    assert_eq!((info, signer), (0, false));
}

// ---- 2. rounds: messages between canisters keep executing within the round

#[test]
fn calls_between_canisters_complete_within_the_round() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let round = pic.round();
    let r: (u64,) = update(&pic, a, "self_calls", (3u64,)).unwrap();
    assert_eq!(r.0, 3);
    assert_eq!(
        pic.round() - round,
        1,
        "ingress, 3 self-calls and 3 responses: one round"
    );
    let round = pic.round();
    let r = call_unbounded(&pic, a, b, "inc");
    assert!(r.starts_with("reply:"), "{r}");
    assert_eq!(pic.round() - round, 1);
    assert_eq!(counters(&pic, b), (1, 1));
}

#[test]
fn a_one_way_call_is_delivered_in_the_round_of_the_update_that_sent_it() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    update::<_, ()>(&pic, a, "notify_inc", (b,)).unwrap();
    // No further round: the notification ran in the round the update replied in.
    assert_eq!(counters(&pic, b), (1, 1));
    assert_eq!(pic.messages_in_flight(), 0);
}

#[test]
fn management_calls_take_the_slow_path_through_message_routing() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let round = pic.round();
    type Info = Result<(Vec<Principal>, Option<Vec<u8>>), String>;
    let r: (Info,) = update(&pic, a, "info", (b,)).unwrap();
    assert!(r.0.is_ok());
    // Round 1 the update calls aaaaa-aa; round 2 the subnet executes it; round 3 the response
    // is inducted and the callback replies.
    assert_eq!(pic.round() - round, 3);
}

#[test]
fn the_round_instruction_budget_ends_a_round() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    pic.update_config(|c| c.round_instructions = 1);
    let round = pic.round();
    let r: (u64,) = update(&pic, a, "self_calls", (3u64,)).unwrap();
    assert_eq!(r.0, 3);
    // Every execution spends the budget, so every hop waits for the next round.
    assert_eq!(pic.round() - round, 7);
}

#[test]
fn a_due_timer_runs_in_the_round_it_fires() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    update::<_, ()>(&pic, a, "start_timer", (5u64, false)).unwrap();
    pic.advance_time(Duration::from_secs(4));
    pic.tick();
    assert_eq!(flags(&pic, a).2, 0, "not yet due");
    pic.advance_time(Duration::from_secs(1));
    pic.tick();
    // canister_global_timer and ic-cdk-timers' self-call to timer_executor, in one round.
    assert_eq!(flags(&pic, a).2, 1);
    let fired_at: (u64,) = query(&pic, a, "timer_time", ()).unwrap();
    assert_eq!(fired_at.0, pic.get_time().as_nanos_since_unix_epoch());
    // Time moved on afterwards is not the time the timer ran at.
    pic.advance_time(Duration::from_secs(3600));
    pic.tick();
    let again: (u64,) = query(&pic, a, "timer_time", ()).unwrap();
    assert_eq!(again, fired_at);
}

// ---- 3. a trapping cleanup callback

#[test]
fn a_trapping_cleanup_is_reported_with_the_callback_trap() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let err = update::<_, ()>(&pic, a, "call_then_trap_twice", (b,)).unwrap_err();
    // The replica's `HypervisorError::Cleanup`: the callback's code, both messages.
    assert_eq!(err.error_code, ErrorCode::CanisterCalledTrap);
    let m = &err.reject_message;
    let cb = m.find("trap in callback").expect(m);
    let also = m.find("\n\ncall_on_cleanup also failed:\n\n").expect(m);
    let cleanup = m.find("trap in cleanup").expect(m);
    assert!(cb < also && also < cleanup, "{m}");
    assert_eq!(
        flags(&pic, a).0,
        1,
        "the callback and the cleanup were rolled back"
    );
}

// ---- 4. canister_info: the origin's canister version, controllers as stored

#[test]
fn canister_info_reports_the_senders_version_and_sorted_controllers() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    pic.set_controllers(b, None, vec![Principal::anonymous(), a])
        .unwrap();
    let z = Principal::from_slice(&[0xff; 10]);
    let m = Principal::from_slice(&[0x42]);
    let wanted = vec![z, a, m, Principal::anonymous(), z];
    let r: (Result<u64, String>,) = update(&pic, a, "set_controllers_of", (b, wanted)).unwrap();
    let sent_version = r.0.unwrap();
    let mut sorted = vec![z, a, m, Principal::anonymous()];
    sorted.sort();
    assert_ne!(
        sorted,
        vec![z, a, m, Principal::anonymous()],
        "a test of sorting"
    );

    let r: (Result<CanisterInfoResult, String>,) =
        update(&pic, a, "info_full", (b, 10u64)).unwrap();
    let info = r.0.unwrap();
    assert_eq!(info.controllers, sorted);
    let last = info.recent_changes.last().unwrap();
    match &last.origin {
        ChangeOrigin::FromCanister(o) => {
            assert_eq!(o.canister_id, a);
            assert_eq!(o.canister_version, Some(sent_version));
        }
        other => panic!("{other:?}"),
    }
    match &last.details {
        Some(ChangeDetails::ControllersChange(c)) => assert_eq!(c.controllers, sorted),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        pic.canister_status(b, Some(a))
            .unwrap()
            .settings
            .controllers,
        sorted
    );
}

// ---- 5. a query method run as an update is replicated execution

#[test]
fn a_query_called_as_an_update_is_replicated_execution() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    let q: (bool,) = query(&pic, a, "replicated", ()).unwrap();
    assert!(!q.0);
    let u: (bool,) = update(&pic, a, "replicated", ()).unwrap();
    assert!(
        u.0,
        "in_replicated_execution() must be 1 in an update call of a query method"
    );
}

// ---- 6. subnet id and canister history size

#[test]
fn the_subnet_id_is_29_bytes_like_real_subnet_ids() {
    let (pic, ids) = setup(1);
    let (subnet,): (Principal,) = query(&pic, ids[0], "subnet", ()).unwrap();
    assert_eq!(subnet.as_slice().len(), 29);
    assert_eq!(
        *subnet.as_slice().last().unwrap(),
        0x02,
        "self-authenticating"
    );
    assert_eq!(subnet, *emulator::SUBNET_ID);
}

#[test]
fn canister_history_size_counts_the_stored_changes() {
    let (pic, ids) = setup(1);
    let a = ids[0];
    let size = |pic: &emulator::pocket_ic::PocketIc| -> u64 {
        let st = pic.canister_status(a, None).unwrap();
        u64::try_from(st.memory_metrics.canister_history_size.0).unwrap()
    };
    let h0 = size(&pic);
    assert!(h0 > 0, "creation and installation are in the history");
    let x = Principal::from_slice(&[1, 2, 3]);
    pic.set_controllers(a, None, vec![Principal::anonymous()])
        .unwrap();
    let h1 = size(&pic);
    pic.set_controllers(a, None, vec![Principal::anonymous(), x])
        .unwrap();
    let h2 = size(&pic);
    // Each change costs the same base, and a `PrincipalId` (30 bytes) per controller it holds.
    assert!(h1 > h0);
    assert_eq!((h2 - h1) - (h1 - h0), 30);
}
