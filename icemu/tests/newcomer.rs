//! What a newcomer does by hand: a migration driven to its end with `run-until-idle`, the
//! personal canister called by its derived name with the interface from its module's
//! metadata, files uploaded and downloaded with `upload` / `download`.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Temp, bytes, icemu, ok, with_backend};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `icemu args` in `s`, checks it exits with `code` and says `needle` on stderr.
fn fails(s: &Path, args: &[&str], code: i32, needle: &str) -> Output {
    let o = icemu(s, args);
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    o
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Ada's capsule with one uploaded photo referenced by a memory; returns the file and its
/// blob id.
fn ada_with_a_photo(s: &Path, dir: &Path, size: usize) -> (std::path::PathBuf, String) {
    ok(
        s,
        &[
            "call",
            "backend",
            "admin_top_up_reserve",
            "(opt 100_000_000_000_000)",
        ],
    );
    let out = ok(
        s,
        &[
            "call",
            "--as",
            "ada",
            "backend",
            "create_capsule",
            r#"(record { name = "Ada"; bio = ""; settings = null })"#,
        ],
    );
    assert!(out.contains("Ok = record"), "{out}");
    let file = dir.join("photo.jpg");
    let data = bytes(size, 11);
    std::fs::write(&file, &data).unwrap();
    let out = ok(
        s,
        &["upload", "--as", "ada", "backend", file.to_str().unwrap()],
    );
    let id = blake3::hash(&data).to_hex().to_string();
    assert_eq!(
        out.trim(),
        format!("{id}  {}", file.display()),
        "upload prints `<blob id>  <file>`, the blob id being b3sum's hash"
    );
    let lit = common::blob_literal(blake3::hash(&data).as_bytes());
    let memory = format!(
        r#"(record {{ title = "photo"; description = ""; tags = vec {{}}; kind = variant {{ Photo }}; encryption = null; blobs = vec {{ record {{ hash = {lit}; size = {size}; mime_type = "image/jpeg" }} }} }})"#
    );
    let out = ok(
        s,
        &["call", "--as", "ada", "backend", "add_memory", &memory],
    );
    assert!(out.contains("Ok = record"), "{out}");
    (file, id)
}

/// `icemu call` arguments: ada asks the backend for her personal canister.
const ADA_CREATES_PERSONAL: &[&str] = &[
    "call",
    "--as",
    "ada",
    "backend",
    "create_personal_canister",
    "(record {})",
];

/// `run-until-idle` arguments: `limits` (e.g. `--max 3`), then poll ada's
/// `get_creation_status` until its reply contains `status`.
fn until_status<'a>(limits: &[&'a str], status: &'a str) -> Vec<&'a str> {
    let mut args = vec!["run-until-idle"];
    args.extend_from_slice(limits);
    args.extend([
        "--until",
        status,
        "--as",
        "ada",
        "--poll",
        "backend",
        "get_creation_status",
    ]);
    args
}

#[test]
fn a_migration_runs_to_its_end_in_one_command_and_the_personal_canister_has_a_name_and_types() {
    let t = with_backend("newcomer");
    let s = &t.0;
    let (file, id) = ada_with_a_photo(s, s, 1_300_000);
    let out = ok(s, ADA_CREATES_PERSONAL);
    assert!(out.contains("NotStarted"), "{out}");
    // One command to the end, with emulated time passing 1 s per round.
    let out = ok(s, &until_status(&[], "Completed"));
    assert!(out.starts_with("reached: "), "{out}");
    let rounds: u64 = out
        .split(": ")
        .nth(2)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("rounds in {out}"));
    println!("migration of a 1.3 MB photo: {out}");
    assert!(
        out.contains(&format!("{rounds} rounds, {rounds}.0 s emulated")),
        "one second per round: {out}"
    );
    let status = ok(
        s,
        &["call", "--as", "ada", "backend", "get_creation_status"],
    );
    assert!(status.contains("state = variant { Completed }"), "{status}");
    // The personal canister is listed with a derived name: module name and owner.
    let list = ok(s, &["canisters"]);
    let line = list
        .lines()
        .find(|l| l.starts_with("personal-ada "))
        .unwrap_or_else(|| panic!("personal-ada listed: {list}"));
    assert!(line.contains("name derived"), "{line}");
    // Called by that name with no --did: field names come from the module's candid:service,
    // and arguments are typed (`10` is sent as the nat32 the method takes).
    let out = ok(s, &["call", "--as", "ada", "personal-ada", "get_capsule"]);
    assert!(out.contains("name = \"Ada\""), "typed reply: {out}");
    let out = ok(
        s,
        &[
            "call",
            "--as",
            "ada",
            "personal-ada",
            "list_memories",
            "(record { start_after = null; limit = 10 })",
        ],
    );
    assert!(out.contains("title = \"photo\""), "typed argument: {out}");
    // Its interface is the committed .did, byte for byte.
    let did = ok(s, &["metadata", "personal-ada", "candid:service"]);
    assert_eq!(
        did,
        std::fs::read_to_string(common::repo().join("personal/personal.did")).unwrap()
    );
    // The photo comes back from the personal canister, verified.
    let back = s.join("back.jpg");
    let out = ok(
        s,
        &[
            "download",
            "--as",
            "ada",
            "personal-ada",
            &id,
            "--out",
            back.to_str().unwrap(),
        ],
    );
    assert!(out.contains("hash verified"), "{out}");
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&file).unwrap());
    // Nothing else to do: the subnet goes idle (the 30 s import watchdog is further apart
    // than the 15 s quiet window).
    let out = ok(s, &["run-until-idle"]);
    assert!(out.starts_with("idle: "), "{out}");
    // The status shows the owner by name.
    let st = ok(s, &["status", "personal-ada"]);
    assert!(st.contains("(ada)"), "{st}");
}

#[test]
fn run_until_idle_says_when_it_stops_short() {
    let t = with_backend("short");
    let s = &t.0;
    ada_with_a_photo(s, s, 300_000);
    ok(s, ADA_CREATES_PERSONAL);
    // Three rounds are not enough: exit 3, and it says so.
    fails(
        s,
        &["run-until-idle", "--max", "3"],
        3,
        "not idle after --max 3 rounds",
    );
    let o = fails(
        s,
        &until_status(&["--max", "3"], "Completed"),
        3,
        "not done (the reply of `backend get_creation_status` contains `Completed`) after --max 3 rounds",
    );
    assert!(
        stderr(&o).contains("last reply: ("),
        "the last reply is shown: {}",
        stderr(&o)
    );
    // The rounds ran and were saved although the command failed: the migration goes on.
    ok(s, &until_status(&[], "Completed"));
    // Waiting for something that never comes on an idle subnet: exit 3 once idle.
    fails(s, &until_status(&[], "Failed"), 3, "idle before the reply");
    // A poll that is rejected is the call's exit status.
    let o = icemu(
        s,
        &[
            "run-until-idle",
            "--until",
            "x",
            "--poll",
            "backend",
            "no_such_method",
        ],
    );
    assert!(matches!(o.status.code(), Some(11..=16)), "{}", stderr(&o));
    assert!(stderr(&o).contains("no_such_method"), "{}", stderr(&o));
    // Usage errors: --until without --poll, a negative round length.
    let o = icemu(s, &["run-until-idle", "--until", "x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = icemu(s, &["run-until-idle", "--secs-per-round", "-1"]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn run_until_idle_time_per_round_is_configurable() {
    let t = Temp::new("pace");
    let out = ok(
        &t.0,
        &[
            "run-until-idle",
            "--secs-per-round",
            "0.5",
            "--quiet-secs",
            "2",
        ],
    );
    assert!(out.starts_with("idle: 4 rounds, 2.0 s emulated"), "{out}");
    let status = ok(&t.0, &["status"]);
    assert!(status.contains("round 4,"), "{status}");
}

#[test]
fn upload_and_download_errors_are_clear_and_change_nothing() {
    let t = with_backend("files");
    let s = &t.0;
    let file = s.join("f.bin");
    std::fs::write(&file, bytes(700_000, 3)).unwrap();
    // No capsule yet: the canister's typed error, exit 1.
    let o = fails(
        s,
        &["upload", "--as", "bob", "backend", file.to_str().unwrap()],
        1,
        "begin_blob_upload answered Err",
    );
    assert!(stdout(&o).is_empty(), "no blob id printed: {}", stdout(&o));
    // A file that does not exist.
    fails(
        s,
        &["upload", "--as", "bob", "backend", "/nonexistent/file"],
        1,
        "/nonexistent/file",
    );
    // An unknown canister name.
    fails(
        s,
        &["upload", "nowhere", file.to_str().unwrap()],
        1,
        "unknown canister `nowhere`",
    );
    // Downloads: a malformed id, an unknown blob; nothing is left at --out.
    ok(
        s,
        &[
            "call",
            "--as",
            "bob",
            "backend",
            "create_capsule",
            r#"(record { name = "Bob"; bio = ""; settings = null })"#,
        ],
    );
    let out = s.join("out.bin");
    fails(
        s,
        &[
            "download",
            "--as",
            "bob",
            "backend",
            "abc",
            "--out",
            out.to_str().unwrap(),
        ],
        1,
        "not a blob id",
    );
    let unknown = "00".repeat(32);
    let o = fails(
        s,
        &[
            "download",
            "--as",
            "bob",
            "backend",
            &unknown,
            "--out",
            out.to_str().unwrap(),
        ],
        1,
        "get_blob answered Err",
    );
    assert!(stderr(&o).contains("BlobNotInCapsule"), "{}", stderr(&o));
    assert!(!out.exists());
    // Bob uploads, Alice cannot read his blob.
    let id = ok(
        s,
        &["upload", "--as", "bob", "backend", file.to_str().unwrap()],
    );
    let id = id.split_whitespace().next().unwrap().to_string();
    let o = icemu(
        s,
        &[
            "download",
            "--as",
            "alice",
            "backend",
            &id,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!out.exists() && !s.join("out.bin.part").exists());
    // Several files in one command, a partial last chunk and an exact multiple of 256 KiB.
    let a = s.join("a.bin");
    let b = s.join("b.bin");
    std::fs::write(&a, bytes(256 * 1024 * 2, 5)).unwrap();
    std::fs::write(&b, bytes(10, 6)).unwrap();
    let out2 = ok(
        s,
        &[
            "upload",
            "--as",
            "bob",
            "backend",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
        ],
    );
    let ids: Vec<&str> = out2
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{out2}");
    for (id, f) in ids.iter().zip([&a, &b]) {
        let back = s.join("back");
        ok(
            s,
            &[
                "download",
                "--as",
                "bob",
                "backend",
                id,
                "--out",
                back.to_str().unwrap(),
            ],
        );
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(f).unwrap());
    }
}

#[test]
fn a_module_without_a_did_beside_it_is_typed_from_its_metadata() {
    let t = Temp::new("meta");
    // A copy of the backend's module where no .did can be guessed.
    let wasm = t.0.join("somewhere.wasm.gz");
    std::fs::copy(common::backend_wasm(), &wasm).unwrap();
    let o = icemu(&t.0, &["deploy", "thing", wasm.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = ok(
        &t.0,
        &[
            "call",
            "--as",
            "ada",
            "thing",
            "create_capsule",
            r#"(record { name = "Ada"; bio = ""; settings = null })"#,
        ],
    );
    assert!(
        out.contains("name = \"Ada\""),
        "field names from candid:service: {out}"
    );
}
