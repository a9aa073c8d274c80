//! Engine-level checks: the rewrite validates, metering counts, heap rollback works.

use emulator::engine::{self, ApiType, CanisterInstance, Entry, MessageCtx, Response};

fn ctx(api: ApiType, arg: Vec<u8>) -> MessageCtx {
    MessageCtx {
        api: Some(api),
        canister_id: Some(candid::Principal::from_slice(&[1])),
        caller: Some(candid::Principal::anonymous()),
        arg,
        limit: 5_000_000_000,
        status: 1,
        limits: engine::system_api::ApiLimits {
            max_reply_bytes: 2 << 20,
            max_call_bytes: 2 << 20,
            max_stable_pages: 1 << 20,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn probe_runs_and_rolls_back_heap() {
    let wasm = emulator::canisters::build_canister("probe").unwrap();
    let module = engine::compile(&wasm).unwrap();
    assert!(module.exports("canister_update inc"));
    let mut inst = CanisterInstance::new(module).unwrap();
    let init = inst.run(
        &Entry::Export("canister_init".into()),
        ctx(ApiType::Init, candid::encode_args(()).unwrap()),
    );
    assert!(init.trap.is_none(), "{:?}", init.trap);
    let mut stable = init.msg.stable;
    stable.commit();
    inst.commit();

    let mut m = ctx(ApiType::Update, candid::encode_args(()).unwrap());
    m.stable = stable;
    let ex = inst.run(&Entry::Export("canister_update inc".into()), m);
    assert!(ex.trap.is_none(), "{:?}", ex.trap);
    assert!(ex.instructions > 100, "{}", ex.instructions);
    let Some(Response::Reply(r)) = ex.msg.response else {
        panic!()
    };
    assert_eq!(candid::decode_one::<u64>(&r).unwrap(), 1);
    let dirty = inst.commit();
    assert!(dirty > 0);
    let mut stable = ex.msg.stable;
    stable.commit();

    let mut m = ctx(ApiType::Update, candid::encode_one(42u64).unwrap());
    m.stable = stable;
    let ex = inst.run(&Entry::Export("canister_update set_then_trap".into()), m);
    assert!(
        matches!(ex.trap, Some(engine::TrapKind::Called(_))),
        "{:?}",
        ex.trap
    );
    inst.rollback().unwrap();
    let mut stable = ex.msg.stable;
    stable.rollback();

    let mut m = ctx(ApiType::Query, candid::encode_args(()).unwrap());
    m.stable = stable;
    let ex = inst.run(&Entry::Export("canister_query get".into()), m);
    let Some(Response::Reply(r)) = ex.msg.response else {
        panic!("{:?}", ex.trap)
    };
    assert_eq!(candid::decode_args::<(u64, u64)>(&r).unwrap(), (1, 1));
}
