//! Composite queries (interface specification, "Composite query methods"): they call query and
//! composite query methods on their subnet, see their own changes across their callbacks, keep
//! nothing, and fail as the replica does when called in replicated mode, when they call update
//! methods or the management canister, loop, or build too deep a call graph.

mod common;

use candid::Principal;
use common::{query, setup, update};
use emulator::ErrorCode;

type FanOut = (u64, Vec<String>);

#[test]
fn a_composite_query_calls_queries_and_keeps_nothing() {
    let (pic, ids) = setup(3);
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let _: (u64,) = update(&pic, b, "inc", ()).unwrap();
    for _ in 0..2 {
        let _: (u64,) = update(&pic, c, "inc", ()).unwrap();
    }
    let out: FanOut = query(&pic, a, "fan_out", (vec![b, c], "get")).unwrap();
    // Its own change is seen after the calls; each callee answered with its counters.
    assert_eq!(
        out,
        (100, vec!["reply:2".to_string(), "reply:4".to_string()])
    );
    // Nothing is kept, by the caller or the callees.
    let (heap, _): (u64, u64) = query(&pic, a, "get", ()).unwrap();
    assert_eq!(heap, 0);
    // A composite query may call another composite query.
    let (n,): (Result<u64, String>,) = query(&pic, a, "chain", (vec![b, c],)).unwrap();
    assert_eq!(n, Ok(2));
}

#[test]
fn a_composite_query_cannot_run_replicated_nor_call_updates_itself_or_the_management_canister() {
    let (pic, ids) = setup(2);
    let (a, b) = (ids[0], ids[1]);
    let err = update::<_, FanOut>(&pic, a, "fan_out", (vec![b], "get")).unwrap_err();
    assert_eq!(
        err.error_code,
        ErrorCode::CompositeQueryCalledInReplicatedMode
    );
    let out: FanOut = query(&pic, a, "fan_out", (vec![b], "inc")).unwrap();
    assert!(
        out.1[0].starts_with("reject:5:") && out.1[0].contains("no query method 'inc'"),
        "{out:?}"
    );
    let out: FanOut = query(&pic, a, "fan_out", (vec![a], "get")).unwrap();
    assert!(out.1[0].contains("loop detected"), "{out:?}");
    let out: FanOut = query(
        &pic,
        a,
        "fan_out",
        (vec![Principal::management_canister()], "raw_rand"),
    )
    .unwrap();
    assert!(out.1[0].contains("management canister"), "{out:?}");
    // A loop through another canister is a loop too.
    let (n,): (Result<u64, String>,) = query(&pic, a, "chain", (vec![b, a],)).unwrap();
    assert!(n.unwrap_err().contains("loop detected"));
}

#[test]
fn a_call_graph_deeper_than_the_replicas_limit_fails() {
    let (pic, ids) = setup(8);
    // Depth 5 (six canisters on the path) is allowed; one more is too deep.
    let (n,): (Result<u64, String>,) = query(&pic, ids[0], "chain", (ids[1..6].to_vec(),)).unwrap();
    assert_eq!(n, Ok(5));
    let (n,): (Result<u64, String>,) = query(&pic, ids[0], "chain", (ids[1..7].to_vec(),)).unwrap();
    let e = n.unwrap_err();
    assert!(e.contains("deeper than"), "{e}");
}
