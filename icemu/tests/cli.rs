//! The CLI over a persistent state directory, process after process, with the real backend.

mod common;

use std::time::Instant;

use common::{blob_literal, bytes, icemu, ok, with_backend};

const CREATE: &str = r#"(record { name = "Alice"; bio = "hello"; settings = null })"#;

#[test]
fn deploy_call_tick_and_call_again_in_later_processes() {
    let t = with_backend("later");
    let s = &t.0;
    let out = ok(
        s,
        &["call", "--as", "alice", "backend", "create_capsule", CREATE],
    );
    assert!(out.contains("Ok = record"), "{out}");
    assert!(
        out.contains("name = \"Alice\""),
        "field names from the .did: {out}"
    );
    let round = ok(s, &["tick", "5"]);
    assert!(round.starts_with("round "), "{round}");
    // A later process: the capsule is still there.
    let start = Instant::now();
    let out = ok(s, &["call", "--as", "alice", "backend", "get_capsule"]);
    let warm = start.elapsed();
    println!("warm-state query call in a new process: {warm:.2?}");
    assert!(out.contains("bio = \"hello\""), "{out}");
    let start = Instant::now();
    let out = ok(
        s,
        &["call", "--as", "alice", "backend", "create_capsule", CREATE],
    );
    println!(
        "warm-state update call in a new process: {:.2?}",
        start.elapsed()
    );
    assert!(out.contains("CapsuleExists"), "state intact: {out}");
    // Another identity has no capsule.
    let out = ok(s, &["call", "--as", "bob", "backend", "get_capsule"]);
    assert!(out.contains("Err"), "{out}");
    // Status, stats, identity, canisters, logs.
    let status = ok(s, &["status", "backend"]);
    assert!(status.contains("module hash: 0x"), "{status}");
    assert!(status.contains("controllers:"), "{status}");
    let admin = ok(s, &["identity", "admin"]);
    assert!(
        status.contains(admin.trim()),
        "admin controls the backend: {status}"
    );
    let stats = ok(s, &["stats", "backend"]);
    assert!(stats.contains("create_capsule"), "{stats}");
    let list = ok(s, &["canisters"]);
    assert!(list.starts_with("backend "), "{list}");
    ok(s, &["logs", "backend"]);
    // Time moves.
    ok(s, &["advance", "3600"]);
    ok(s, &["run-until-idle"]);
}

#[test]
fn identities_are_deterministic() {
    let t = common::Temp::new("ident");
    let a = ok(&t.0, &["identity", "alice"]);
    let b = ok(&t.0, &["identity", "alice"]);
    let c = ok(&t.0, &["identity", "bob"]);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(ok(&t.0, &["identity", "anonymous"]).trim(), "2vxsx-fae");
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn rejects_and_traps_exit_non_zero_with_the_code_on_stderr() {
    let t = with_backend("rejects");
    let s = &t.0;
    // Unknown method: CANISTER_ERROR (5) → exit 15.
    let o = icemu(s, &["call", "backend", "no_such_method"]);
    assert_eq!(o.status.code(), Some(15), "{}", stderr(&o));
    assert!(stderr(&o).contains("IC0536"), "{}", stderr(&o));
    // Unknown canister: DESTINATION_INVALID (3) → exit 13.
    let unknown = candid::Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 99, 1, 1]).to_text();
    let o = icemu(s, &["call", &unknown, "x"]);
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    assert!(stderr(&o).contains("IC0301"), "{}", stderr(&o));
    // An injected reject (SYS_TRANSIENT) on one method, once.
    ok(
        s,
        &[
            "fault",
            "reject",
            "--canister",
            "backend",
            "--method",
            "create_capsule",
            "--code",
            "2",
            "--count",
            "1",
            "--message",
            "injected busy",
        ],
    );
    let o = icemu(
        s,
        &["call", "--as", "carol", "backend", "create_capsule", CREATE],
    );
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert!(stderr(&o).contains("injected busy"), "{}", stderr(&o));
    ok(
        s,
        &["call", "--as", "carol", "backend", "create_capsule", CREATE],
    );
    // A trapping method: CANISTER_ERROR with the trap's message.
    ok(
        s,
        &[
            "fault",
            "trap",
            "--canister",
            "backend",
            "--method",
            "update_capsule",
        ],
    );
    let o = icemu(
        s,
        &[
            "call",
            "--as",
            "carol",
            "backend",
            "update_capsule",
            r#"(record { name = null; bio = null; settings = null })"#,
        ],
    );
    assert_eq!(o.status.code(), Some(15), "{}", stderr(&o));
    assert!(stderr(&o).contains("injected trap"), "{}", stderr(&o));
    ok(s, &["fault", "clear"]);
    // Stopped canister.
    ok(s, &["fault", "stop", "backend"]);
    let o = icemu(
        s,
        &["call", "--as", "carol", "backend", "create_capsule", CREATE],
    );
    assert_eq!(o.status.code(), Some(15), "{}", stderr(&o));
    assert!(stderr(&o).contains("IC0508"), "{}", stderr(&o));
    ok(s, &["fault", "start", "backend"]);
    // Usage error: exit 2 from clap.
    let o = icemu(s, &["call"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_on_every_command() {
    let t = common::Temp::new("help");
    for cmd in [
        vec!["--help"],
        vec!["deploy", "--help"],
        vec!["call", "--help"],
        vec!["deposit-cycles", "--help"],
        vec!["tick", "--help"],
        vec!["advance", "--help"],
        vec!["run-until-idle", "--help"],
        vec!["status", "--help"],
        vec!["stats", "--help"],
        vec!["logs", "--help"],
        vec!["identity", "--help"],
        vec!["encode", "--help"],
        vec!["serve", "--help"],
        vec!["fault", "--help"],
        vec!["fault", "reject", "--help"],
        vec!["fault", "limits", "--help"],
    ] {
        let out = ok(&t.0, &cmd);
        assert!(out.contains("Usage"), "{cmd:?}: {out}");
    }
}

#[test]
fn five_mib_blob_uploads_and_reads_back_with_output_blob() {
    let t = with_backend("blob");
    let s = &t.0;
    let data = bytes(5 << 20, 7);
    let hash = blake3::hash(&data);
    ok(
        s,
        &["call", "--as", "alice", "backend", "create_capsule", CREATE],
    );
    let begin = format!(
        "(record {{ size = {} : nat64; expected_hash = opt {} }})",
        data.len(),
        blob_literal(hash.as_bytes())
    );
    let out = ok(
        s,
        &[
            "call",
            "--as",
            "alice",
            "backend",
            "begin_blob_upload",
            &begin,
        ],
    );
    let upload: u64 = out
        .split("Ok =")
        .nth(1)
        .and_then(|r| r.trim().split([' ', ':']).next())
        .and_then(|n| n.replace('_', "").parse().ok())
        .unwrap_or_else(|| panic!("upload id in {out}"));
    let start = Instant::now();
    for (i, chunk) in data.chunks(256 << 10).enumerate() {
        let file = t.0.join("chunk.candid");
        std::fs::write(&file, format!("({upload}, {i}, {})", blob_literal(chunk))).unwrap();
        let out = ok(
            s,
            &[
                "call",
                "--as",
                "alice",
                "backend",
                "put_blob_chunk",
                "--arg-file",
                file.to_str().unwrap(),
            ],
        );
        assert!(out.contains("Ok"), "chunk {i}: {out}");
    }
    println!("20 chunk uploads of 256 KiB: {:.2?}", start.elapsed());
    let out = ok(
        s,
        &[
            "call",
            "--as",
            "alice",
            "backend",
            "finish_blob_upload",
            &upload.to_string(),
        ],
    );
    assert!(out.contains("Ok"), "{out}");
    // Read back 1 MiB at a time into files.
    let hash_lit = blob_literal(hash.as_bytes());
    let mut back = Vec::new();
    for part in 0..5u64 {
        let f = t.0.join(format!("part{part}"));
        let arg = format!(
            "({hash_lit}, {} : nat64, {} : nat64)",
            part << 20,
            1u64 << 20
        );
        let out = ok(
            s,
            &[
                "call",
                "--as",
                "alice",
                "backend",
                "read_blob_range",
                &arg,
                "--output-blob",
                f.to_str().unwrap(),
            ],
        );
        assert!(out.contains("1048576 bytes"), "{out}");
        back.extend(std::fs::read(&f).unwrap());
    }
    assert_eq!(back.len(), data.len());
    assert_eq!(blake3::hash(&back), hash, "same BLAKE3 (b3sum) as uploaded");
    // One chunk through get_blob_chunk too.
    let f = t.0.join("chunk19");
    ok(
        s,
        &[
            "call",
            "--as",
            "alice",
            "backend",
            "get_blob_chunk",
            &format!("({hash_lit}, 19)"),
            "--output-blob",
            f.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&f).unwrap(), &data[19 << 18..]);
}

#[test]
fn encode_prints_candid_bytes() {
    let t = common::Temp::new("encode");
    let hex = ok(&t.0, &["encode", "(1 : nat64)"]);
    assert_eq!(hex.trim(), hex::encode(candid::encode_one(1u64).unwrap()));
    let did = common::repo().join("backend/backend.did");
    let hex = ok(
        &t.0,
        &[
            "encode",
            "--did",
            did.to_str().unwrap(),
            "--method",
            "get_blob_chunk",
            r#"(blob "\01\02", 3)"#,
        ],
    );
    let expect = candid::encode_args((serde_bytes::ByteBuf::from(vec![1u8, 2]), 3u64)).unwrap();
    assert_eq!(hex.trim(), hex::encode(expect));
}

#[test]
fn fault_limits_are_set_kept_and_reset() {
    let t = common::Temp::new("limits");
    let s = &t.0;
    let defaults = ok(s, &["fault", "limits"]);
    assert!(defaults.starts_with("ingress "), "{defaults}");
    let set = ok(
        s,
        &[
            "fault",
            "limits",
            "--max-ingress-bytes",
            "1000",
            "--round-instructions",
            "5",
        ],
    );
    assert!(set.starts_with("ingress 1000 B, "), "{set}");
    assert!(set.contains(", 5 instructions/round, "), "{set}");
    // Kept for the next process.
    assert_eq!(ok(s, &["fault", "limits"]), set);
    // --reset restores every limit; a value given with it applies after the reset.
    let reset = ok(s, &["fault", "limits", "--reset", "--max-call-bytes", "7"]);
    assert!(reset.contains(", call 7 B, "), "{reset}");
    assert!(!reset.contains("ingress 1000 B"), "{reset}");
    assert!(!reset.contains(", 5 instructions/round"), "{reset}");
    assert_eq!(ok(s, &["fault", "limits", "--reset"]), defaults);
}
