//! The capsule archive: written from a manifest and its blobs, verified offline by the library
//! and by `manifest verify`, which names every entry that differs.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use blobstore::hash::to_hex;
use manifests::archive::{self, Difference};
use manifests::*;

fn blob_bytes() -> BTreeMap<Hash, Vec<u8>> {
    [common::data(1, 1000), common::data(2, 600_000), vec![]]
        .into_iter()
        .map(|b| (BlobLeaf::from_bytes(&b).hash, b))
        .collect()
}

fn archive_of(m: &Manifest) -> Vec<u8> {
    let blobs = blob_bytes();
    archive::write(Vec::new(), m, |leaf| {
        Ok(std::io::Cursor::new(blobs[&leaf.hash].clone()))
    })
    .unwrap()
}

/// The archive's entries, in order.
fn entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = vec![];
            e.read_to_end(&mut bytes).unwrap();
            (name, bytes)
        })
        .collect()
}

/// A tar of `entries`.
fn rebuild(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn names(diffs: &[Difference]) -> Vec<&str> {
    diffs.iter().map(|d| d.entry.as_str()).collect()
}

#[test]
fn an_archive_holds_the_json_files_each_blob_by_its_hash_and_verifies() {
    let m = common::manifest();
    let bytes = archive_of(&m);
    let e = entries(&bytes);
    let names: Vec<&str> = e.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected = vec![
        "capsule-archive.json",
        "manifest.json",
        "capsule.json",
        "memories.json",
        "connections.json",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    expected.extend(m.blobs.iter().map(|b| format!("blobs/{}", to_hex(&b.hash))));
    assert_eq!(names, expected);
    // Each blob file's name is the hash of its bytes (what b3sum prints).
    for (name, content) in &e[5..] {
        assert_eq!(
            name,
            &format!("blobs/{}", to_hex(blake3::hash(content).as_bytes()))
        );
    }
    let index: serde_json::Value = serde_json::from_slice(&e[0].1).unwrap();
    assert_eq!(index["root"], to_hex(&m.header.root));
    let back: Manifest = serde_json::from_slice(&e[1].1).unwrap();
    assert_eq!(back, m);

    let report = archive::verify(&bytes[..]).unwrap();
    assert!(report.is_ok(), "{:?}", report.differences);
    assert_eq!(report.root, m.header.root);
    assert_eq!(report.recomputed_root, Some(m.header.root));
    assert_eq!((report.blobs, report.blob_bytes), (3, 601_000));
    // Read back whole, for an import.
    let contents = archive::read(&bytes[..]).unwrap();
    assert_eq!(contents.manifest, Some(m.clone()));
    assert_eq!(
        contents.blobs[&to_hex(&m.blobs[0].hash)].len() as u64,
        m.blobs[0].size
    );
}

#[test]
fn every_entry_that_differs_is_named() {
    let m = common::manifest();
    let good = entries(&archive_of(&m));
    let big = to_hex(&BlobLeaf::from_bytes(&common::data(2, 600_000)).hash);

    // A flipped byte in a blob: its content no longer hashes to its name; the root changes.
    let mut e = good.clone();
    let i = e
        .iter()
        .position(|(n, _)| *n == format!("blobs/{big}"))
        .unwrap();
    e[i].1[300_000] ^= 1;
    let r = archive::verify(&rebuild(&e)[..]).unwrap();
    assert!(!r.is_ok());
    assert_eq!(
        names(&r.differences),
        vec![format!("blobs/{big}").as_str(), "root"]
    );
    assert!(r.differences[0].reason.contains("hashes to"));

    // A memory edited in memories.json.
    let mut e = good.clone();
    let mut memories: Vec<MemoryLeaf> = serde_json::from_slice(&e[3].1).unwrap();
    memories[0].title.push('!');
    e[3].1 = serde_json::to_vec(&memories).unwrap();
    let r = archive::verify(&rebuild(&e)[..]).unwrap();
    assert_eq!(names(&r.differences), vec!["memories.json", "root"]);
    assert!(
        r.differences[0]
            .reason
            .contains(&format!("memory {}", memories[0].id))
    );

    // A blob missing, and a stray file under blobs/.
    let mut e = good.clone();
    e.retain(|(n, _)| *n != format!("blobs/{big}"));
    let stray = BlobLeaf::from_bytes(b"stray");
    e.push((format!("blobs/{}", to_hex(&stray.hash)), b"stray".to_vec()));
    let r = archive::verify(&rebuild(&e)[..]).unwrap();
    let named = names(&r.differences);
    assert!(
        named.contains(&format!("blobs/{big}").as_str()),
        "{named:?}"
    );
    assert!(named.contains(&format!("blobs/{}", to_hex(&stray.hash)).as_str()));
    assert!(named.contains(&"root"));

    // No manifest at all: not an archive to verify.
    let e: Vec<_> = good
        .iter()
        .filter(|(n, _)| n != "manifest.json")
        .cloned()
        .collect();
    assert!(archive::verify(&rebuild(&e)[..]).is_err());
}

/// Runs `manifest verify <path>`.
fn cli_verify(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_manifest"))
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn the_cli_verifies_an_archive_and_names_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let m = common::manifest();
    let good = dir.path().join("capsule.tar");
    std::fs::write(&good, archive_of(&m)).unwrap();
    let out = cli_verify(&good);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!(
            "verified {} (3 blobs, 601000 bytes)",
            to_hex(&m.header.root)
        )
    );

    let mut e = entries(&archive_of(&m));
    e[2].1 = br#"{"not":"a capsule"}"#.to_vec();
    let bad = dir.path().join("bad.tar");
    std::fs::write(&bad, rebuild(&e)).unwrap();
    let out = cli_verify(&bad);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("capsule.json: does not parse"),
        "{stdout}"
    );

    let out = cli_verify(&dir.path().join("missing.tar"));
    assert_eq!(out.status.code(), Some(2));
}
