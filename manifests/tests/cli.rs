//! The `manifest` binary: hash (b3sum-compatible), show and diff on candid text and JSON.

mod common;

use blobstore::hash::{blob_hashes, chunk_count, to_hex};
use candid::types::value::IDLArgs;
use candid::{CandidType, TypeEnv};
use manifests::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn manifest_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_manifest"))
}

fn run(args: &[&str]) -> Output {
    manifest_cmd().args(args).output().expect("run manifest")
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = manifest_cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The manifest a successful `manifest show --json` printed.
fn shown_json(out: &Output) -> Manifest {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A page reply as `dfx canister call` prints it with the .did (named fields).
fn candid_named(reply: &ManifestPageReply) -> String {
    let bytes = candid::encode_one(reply).unwrap();
    IDLArgs::from_bytes_with_types(&bytes, &TypeEnv::new(), &[ManifestPageReply::ty()])
        .unwrap()
        .to_string()
}

/// A page reply as printed without the .did: numeric field ids like `_1234_`.
fn candid_numeric(reply: &ManifestPageReply) -> String {
    let bytes = candid::encode_one(reply).unwrap();
    IDLArgs::from_bytes(&bytes).unwrap().to_string()
}

/// The same with every numeric label written `_1234_`, as Motoko and older printers show
/// fields known only by their id.
fn candid_underscore_ids(reply: &ManifestPageReply) -> String {
    let text = candid_numeric(reply);
    let mut out = String::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let rest = &line[indent..];
        out.push_str(&line[..indent]);
        // A label starts the line (`1_246_878_287 = ...`) or follows `variant { `.
        let (prefix, rest) = match rest.find("variant { ") {
            Some(i) => rest.split_at(i + "variant { ".len()),
            None => ("", rest),
        };
        out.push_str(prefix);
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        let label = &rest[..end];
        let after = &rest[end..];
        if !label.is_empty() && (after.starts_with(" =") || after.starts_with(" }")) {
            out.push_str(&format!("_{}_", label.replace('_', "")));
            out.push_str(after);
        } else {
            out.push_str(rest);
        }
        out.push('\n');
    }
    out
}

/// The fixture manifest in several pages.
fn fixture() -> (Manifest, Vec<ManifestPageReply>) {
    let m = common::manifest();
    let replies = m.page_replies(PAGE_OVERHEAD_BYTES + 400).unwrap();
    assert!(replies.len() >= 4, "{} pages", replies.len());
    (m, replies)
}

#[test]
fn hash_matches_blake3_and_b3sum() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = [
        0usize,
        1,
        1023,
        1024,
        262_143,
        262_144,
        262_145,
        3 * 1024 * 1024 + 7,
    ];
    let mut paths = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let bytes = common::data(i as u8 + 1, *size);
        let path = dir.path().join(format!("file-{size}.bin"));
        std::fs::write(&path, &bytes).unwrap();
        let out = run(&["hash", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let mut lines = text.lines();
        let expected = format!("{}  {}", blake3::hash(&bytes).to_hex(), path.display());
        assert_eq!(lines.next().unwrap(), expected, "size {size}");
        let (_, chunks) = blob_hashes(&bytes);
        let printed: Vec<&str> = lines.collect();
        assert_eq!(
            printed.len() as u64,
            chunk_count(*size as u64),
            "size {size}"
        );
        for (k, (line, chunk)) in printed.iter().zip(&chunks).enumerate() {
            assert_eq!(
                *line,
                format!("  chunk {k} {}", to_hex(chunk)),
                "size {size}"
            );
        }
        paths.push(path);
    }
    let args: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
    let ours = run(&[&["hash", "--no-chunks"][..], &args].concat());
    assert!(ours.status.success());
    let expected: String = paths
        .iter()
        .map(|p| {
            format!(
                "{}  {}\n",
                blake3::hash(&std::fs::read(p).unwrap()).to_hex(),
                p.display()
            )
        })
        .collect();
    assert_eq!(stdout(&ours), expected);
    // When the b3sum binary is installed, our lines are byte for byte its output.
    if let Ok(b3) = Command::new("b3sum").args(&args).output() {
        assert!(b3.status.success());
        assert_eq!(stdout(&ours), stdout(&b3), "output differs from b3sum");
    } else {
        eprintln!("b3sum not on PATH: compared with the blake3 crate only");
    }
}

#[test]
fn hash_json_and_stdin() {
    let bytes = common::data(9, 600_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.jpg");
    std::fs::write(&path, &bytes).unwrap();
    let out = run(&["hash", "--json", path.to_str().unwrap()]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let (root, chunks) = blob_hashes(&bytes);
    assert_eq!(v[0]["hash"], to_hex(&root));
    assert_eq!(v[0]["size"], 600_000);
    assert_eq!(v[0]["chunks"].as_array().unwrap().len(), 3);
    assert_eq!(v[0]["chunks"][2], to_hex(&chunks[2]));

    let out = run_stdin(&["hash", "-"], "abc");
    assert_eq!(
        stdout(&out),
        format!(
            "{}  -\n  chunk 0 {}\n",
            blake3::hash(b"abc").to_hex(),
            blake3::hash(b"abc").to_hex()
        )
    );
}

#[test]
fn hash_of_a_missing_file_is_exit_2_and_the_others_still_print() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good", "hello");
    let missing = dir.path().join("missing").to_str().unwrap().to_string();
    let out = run(&["hash", "--no-chunks", &missing, &good]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&missing), "{}", stderr(&out));
    assert!(stderr(&out).contains("No such file"), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{}  {good}\n", blake3::hash(b"hello").to_hex())
    );
}

#[test]
fn show_reads_named_candid_pages() {
    let (m, replies) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let text: String = replies
        .iter()
        .map(candid_named)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("record {") && text.contains("header ="),
        "{text}"
    );
    let file = write(dir.path(), "pages.txt", &text);
    let out = run(&["show", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = stdout(&out);
    assert!(
        s.starts_with(&format!("manifest {} (verified)", to_hex(&m.header.root))),
        "{s}"
    );
    assert!(
        s.contains(&format!("owner        {}", m.header.owner)),
        "{s}"
    );
    assert!(s.contains("memories     4"), "{s}");
    assert!(s.contains("blobs        3 (601000 bytes, 4 chunks)"), "{s}");
    assert!(
        s.contains(r#"5  document  "Letters"  2 blobs, 1000 bytes"#),
        "{s}"
    );
    assert!(s.contains("encrypted (vetkeys-aes-gcm-v1"), "{s}");
}

#[test]
fn show_reads_numeric_field_ids_and_pages_in_separate_files_in_any_order() {
    let (m, replies) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, r) in replies.iter().enumerate().rev() {
        let text = candid_numeric(r);
        assert!(
            text.contains("4_244_638_093 = record") && !text.contains("header"),
            "{text}"
        );
        files.push(write(dir.path(), &format!("page-{i}.txt"), &text));
    }
    let mut args = vec!["show", "--json"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args);
    assert_eq!(shown_json(&out), m);
}

#[test]
fn show_reads_underscore_field_ids() {
    let (m, replies) = fixture();
    let text: String = replies.iter().map(candid_underscore_ids).collect();
    assert!(text.contains("_4244638093_ = record"), "{text}");
    assert!(text.contains("variant { _1600918133_ }"), "{text}");
    let out = run_stdin(&["show", "--json"], &text);
    assert_eq!(shown_json(&out), m);
}

#[test]
fn show_accepts_ok_variants_and_untyped_numbers_on_stdin() {
    let (m, replies) = fixture();
    let text: String = replies
        .iter()
        .map(|r| {
            let t = candid_named(r);
            // As a method returning Result prints it, and as typed by hand (no type annotations).
            let inner = t
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            let inner = inner.trim_end_matches(',');
            format!("(variant {{ Ok = {inner} }})\n")
                .replace(" : nat64", "")
                .replace(" : nat32", "")
        })
        .collect();
    assert!(!text.contains("nat64"));
    let out = run_stdin(&["show", "-"], &text);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&to_hex(&m.header.root)));
}

#[test]
fn show_json_round_trips_and_diff_compares_across_formats() {
    let (m, replies) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let candid = write(
        dir.path(),
        "a.txt",
        &replies.iter().map(candid_named).collect::<String>(),
    );
    let out = run(&["show", "--json", &candid]);
    assert!(out.status.success());
    let json = write(dir.path(), "a.json", &stdout(&out));
    let summary_from_json = stdout(&run(&["show", &json]));
    let summary_from_candid = stdout(&run(&["show", &candid]));
    assert_eq!(summary_from_json, summary_from_candid);

    // Page replies as JSON are accepted too.
    let pages_json = write(
        dir.path(),
        "pages.json",
        &serde_json::to_string(&replies).unwrap(),
    );
    let out = run(&["diff", &candid, &pages_json]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = run(&["diff", &candid, &json]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("identical {}\n", to_hex(&m.header.root))
    );
}

#[test]
fn diff_reports_differences_with_exit_1() {
    let (a, replies) = fixture();
    let mut b = a.clone();
    b.memories.iter_mut().find(|x| x.id == 2).unwrap().title = "Beach, 2023".into();
    b.connections.remove(0);
    let b = Manifest::from_leaves(b.capsule, b.connections, b.memories, b.blobs).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fa = write(
        dir.path(),
        "a.txt",
        &replies.iter().map(candid_numeric).collect::<String>(),
    );
    let fb = write(
        dir.path(),
        "b.txt",
        &b.page_replies(DEFAULT_PAGE_BYTES)
            .unwrap()
            .iter()
            .map(candid_named)
            .collect::<String>(),
    );
    let out = run(&["diff", &fa, &fb]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = stdout(&out);
    assert!(
        s.starts_with(&format!(
            "root differs: A {} B {}",
            to_hex(&a.header.root),
            to_hex(&b.header.root)
        )),
        "{s}"
    );
    assert!(
        s.contains(&format!("connection removed: {}", a.connections[0].peer)),
        "{s}"
    );
    assert!(
        s.contains(r#"memory 2 metadata changed: title: "Beach" -> "Beach, 2023""#),
        "{s}"
    );
    let out = run(&["diff", "--json", &fa, &fb]);
    assert_eq!(out.status.code(), Some(1));
    let v: Vec<Difference> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v, diff(&a, &b));
}

fn assert_input_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "stdout: {}", stdout(out));
    let err = stderr(out);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(stdout(out).is_empty());
}

#[test]
fn bad_input_is_exit_2_with_a_clear_message() {
    let (m, replies) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.txt",
        &replies.iter().map(candid_named).collect::<String>(),
    );

    let garbage = write(dir.path(), "garbage.txt", "hello world");
    assert_input_error(
        &run(&["show", &garbage]),
        "expected '(' at line 1, column 1",
    );
    assert_input_error(&run(&["diff", &good, &garbage]), "garbage.txt");

    let text = candid_named(&replies[1]);
    let truncated = write(dir.path(), "truncated.txt", &text[..text.len() / 2]);
    assert_input_error(&run(&["show", &truncated]), "truncated.txt");

    let empty = write(dir.path(), "empty.txt", "  \n");
    assert_input_error(&run(&["show", &empty]), "empty");

    let missing = dir.path().join("nope.txt");
    assert_input_error(&run(&["show", missing.to_str().unwrap()]), "nope.txt");

    // Candid that is not a page reply.
    let other = write(dir.path(), "other.txt", "(record { foo = 1 })");
    assert_input_error(&run(&["show", &other]), "not a manifest page reply");

    // A canister error.
    let err = write(
        dir.path(),
        "err.txt",
        r#"(variant { Err = variant { NotOwner } })"#,
    );
    assert_input_error(&run(&["show", &err]), "the canister returned an error");

    // A page missing.
    let partial: String = replies[..replies.len() - 1]
        .iter()
        .map(candid_named)
        .collect();
    let partial = write(dir.path(), "partial.txt", &partial);
    assert_input_error(&run(&["show", &partial]), "incomplete");

    // A tampered leaf: the title of a memory edited in the candid text.
    let all: String = replies.iter().map(candid_named).collect();
    assert!(all.contains("\"First note\""));
    let tampered = write(
        dir.path(),
        "tampered.txt",
        &all.replace("\"First note\"", "\"Forged note\""),
    );
    assert_input_error(&run(&["show", &tampered]), "memories section root mismatch");
    assert_input_error(&run(&["diff", &good, &tampered]), "root mismatch");

    // A tampered JSON manifest.
    let mut forged = m.clone();
    forged.capsule.name = "Mallory".into();
    let json = write(
        dir.path(),
        "forged.json",
        &serde_json::to_string(&forged).unwrap(),
    );
    assert_input_error(&run(&["show", &json]), "capsule section root mismatch");
    let bad_json = write(dir.path(), "bad.json", "{\"header\": 1}");
    assert_input_error(&run(&["show", &bad_json]), "cannot decode JSON manifest");

    // Pages of two different manifests.
    let b = common::big_manifest(3);
    let mixed = candid_named(&replies[0])
        + &b.page_replies(DEFAULT_PAGE_BYTES)
            .unwrap()
            .iter()
            .map(candid_named)
            .collect::<String>();
    let mixed = write(dir.path(), "mixed.txt", &mixed);
    assert_input_error(&run(&["show", &mixed]), "pages of two manifests");

    // Usage errors are exit 2 too (clap).
    assert_eq!(run(&["diff", &good]).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn help_texts_explain_formats_and_exit_codes() {
    let top = stdout(&run(&["--help"]));
    assert!(
        top.contains("hash") && top.contains("show") && top.contains("diff"),
        "{top}"
    );
    assert!(top.contains("Exit codes"), "{top}");
    let hash = stdout(&run(&["hash", "--help"]));
    assert!(
        hash.contains("b3sum") && hash.contains("--no-chunks"),
        "{hash}"
    );
    let show = stdout(&run(&["show", "--help"]));
    assert!(
        show.contains("dfx canister call") && show.contains("_1234_"),
        "{show}"
    );
    let diff = stdout(&run(&["diff", "--help"]));
    assert!(
        diff.contains("exits 1") && diff.contains("Exits 2"),
        "{diff}"
    );
}
#[test]
fn no_verify_shows_what_was_altered() {
    let (m, replies) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let good: String = replies.iter().map(candid_named).collect();
    let good = write(dir.path(), "good.txt", &good);
    let mut forged = m.clone();
    forged.memories[0].title = "Forged".into();
    let forged = write(
        dir.path(),
        "forged.json",
        &serde_json::to_string(&forged).unwrap(),
    );
    assert_eq!(run(&["diff", &good, &forged]).status.code(), Some(2));
    let out = run(&["diff", "--no-verify", &good, &forged]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Same header (the forger kept it), so only the leaf shows.
    assert_eq!(
        stdout(&out),
        "memory 1 metadata changed: title: \"First note\" -> \"Forged\"\n"
    );
    let out = run(&["show", "--no-verify", &forged]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("(NOT verified)"));
    let out = run(&["show", &good]);
    assert!(stdout(&out).contains("(verified)"));
}

#[test]
fn hash_escapes_paths_like_b3sum() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["a\\b", "n\nl", "sp ace"];
    let paths: Vec<String> = names.iter().map(|n| write(dir.path(), n, n)).collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let out = run(&[&["hash", "--no-chunks"][..], &args].concat());
    assert!(out.status.success());
    let d = dir.path().display();
    let expected = format!(
        "\\{}  {d}/a\\\\b\n\\{}  {d}/n\\nl\n{}  {d}/sp ace\n",
        blake3::hash(b"a\\b").to_hex(),
        blake3::hash(b"n\nl").to_hex(),
        blake3::hash(b"sp ace").to_hex()
    );
    assert_eq!(stdout(&out), expected);
    if let Ok(b3) = Command::new("b3sum").args(&args).output() {
        assert_eq!(stdout(&out), stdout(&b3));
    }
}
