//! A test written against `pocket_ic::PocketIc`: the only change for the emulator is the
//! `use` line below (`pocket_ic::` → `emulator::pocket_ic::`).

use std::time::Duration;

use candid::{Principal, decode_one, encode_args, encode_one};
use emulator::pocket_ic::{
    CanisterSettings, ErrorCode, PocketIc, PocketIcBuilder, RejectCode, query_candid, update_candid,
};

fn wasm() -> Vec<u8> {
    emulator::canisters::build_canister("probe")
        .unwrap()
        .to_vec()
}

#[test]
fn counter_canister_lifecycle() {
    let pic = PocketIcBuilder::new().with_application_subnet().build();
    let canister_id = pic.create_canister();
    pic.add_cycles(canister_id, 2_000_000_000_000);
    pic.install_canister(canister_id, wasm(), encode_one(()).unwrap(), None);

    let reply = pic
        .update_call(
            canister_id,
            Principal::anonymous(),
            "inc",
            encode_one(()).unwrap(),
        )
        .unwrap();
    assert_eq!(decode_one::<u64>(&reply).unwrap(), 1);
    let (n,): (u64,) = update_candid(&pic, canister_id, "inc", ()).unwrap();
    assert_eq!(n, 2);
    let (heap, stable): (u64, u64) = query_candid(&pic, canister_id, "get", ()).unwrap();
    assert_eq!((heap, stable), (2, 2));

    let err = pic
        .update_call(
            canister_id,
            Principal::anonymous(),
            "set_then_trap",
            encode_one(5u64).unwrap(),
        )
        .unwrap_err();
    assert_eq!(err.reject_code, RejectCode::CanisterError);
    assert_eq!(err.error_code, ErrorCode::CanisterCalledTrap);

    let msg = pic
        .submit_call(
            canister_id,
            Principal::anonymous(),
            "inc",
            encode_one(()).unwrap(),
        )
        .unwrap();
    let reply = pic.await_call(msg).unwrap();
    assert_eq!(decode_one::<u64>(&reply).unwrap(), 3);

    let t0 = pic.get_time();
    pic.advance_time(Duration::from_secs(60));
    pic.tick();
    assert!(
        pic.get_time().as_nanos_since_unix_epoch()
            >= t0.as_nanos_since_unix_epoch() + 60_000_000_000
    );

    assert!(pic.get_stable_memory(canister_id).starts_with(b"MGR"));
    let status = pic.canister_status(canister_id, None).unwrap();
    assert_eq!(status.settings.controllers, vec![Principal::anonymous()]);
    assert!(status.module_hash.is_some());
    assert!(pic.cycle_balance(canister_id) > 2_000_000_000_000);

    let logs = pic
        .fetch_canister_logs(canister_id, Principal::anonymous())
        .unwrap();
    assert!(logs.iter().any(|l| l.content == b"probe init"));

    pic.upgrade_canister(canister_id, wasm(), encode_args(()).unwrap(), None)
        .unwrap();
    let (heap, stable): (u64, u64) = query_candid(&pic, canister_id, "get", ()).unwrap();
    assert_eq!((heap, stable), (0, 3));

    let owner = Principal::from_slice(&[1, 2, 3]);
    pic.set_controllers(canister_id, None, vec![owner]).unwrap();
    assert_eq!(pic.get_controllers(canister_id), vec![owner]);
    assert!(pic.stop_canister(canister_id, None).is_err());
    pic.stop_canister(canister_id, Some(owner)).unwrap();
    pic.delete_canister(canister_id, Some(owner)).unwrap();
    assert!(!pic.canister_exists(canister_id));
}

#[test]
fn settings_and_chunked_install() {
    let pic = PocketIc::new();
    let user = Principal::from_slice(&[42]);
    let settings = CanisterSettings {
        controllers: Some(vec![user]),
        ..Default::default()
    };
    let canister_id = pic.create_canister_with_settings(Some(user), Some(settings));
    assert_eq!(pic.get_controllers(canister_id), vec![user]);

    let wasm = wasm();
    let mut hashes = Vec::new();
    for chunk in wasm.chunks(500_000) {
        hashes.push(
            pic.upload_chunk(canister_id, Some(user), chunk.to_vec())
                .unwrap(),
        );
    }
    assert_eq!(
        pic.stored_chunks(canister_id, Some(user)).unwrap().len(),
        hashes.len()
    );
    let wasm_hash = emulator::engine::sha256(&wasm).to_vec();
    pic.install_chunked_canister(
        canister_id,
        Some(user),
        emulator::pocket_ic::CanisterInstallMode::Install,
        canister_id,
        hashes,
        wasm_hash.clone(),
        encode_args(()).unwrap(),
    )
    .unwrap();
    let status = pic.canister_status(canister_id, Some(user)).unwrap();
    assert_eq!(status.module_hash, Some(wasm_hash));
    pic.clear_chunk_store(canister_id, Some(user)).unwrap();
    assert!(
        pic.stored_chunks(canister_id, Some(user))
            .unwrap()
            .is_empty()
    );
}
