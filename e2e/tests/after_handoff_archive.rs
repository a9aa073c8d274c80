//! "Download my capsule": the archive written from a personal canister (its manifest pages and
//! blob chunks) verifies offline, and restored into a fresh personal canister, or back into the
//! shared backend once the moved copy is purged, it ends with the same root and the same
//! records.
#![cfg(not(feature = "pocketic"))]

use std::collections::BTreeMap;

use backend::factory::types::CreationState;
use blobstore::hash::CHUNK_SIZE;
use candid::Principal;
use capsule::{BlobDescriptor, CapsuleInfo, Error, Hash32};
use e2e::*;
use manifests::archive;
use manifests::{Manifest, ManifestPageReply, PageCursor};
use migration::protocol::PersonalInitArgs;
use serde_bytes::{ByteArray, ByteBuf};

/// The archive of `who`'s capsule on `canister`, as a client writes it: the manifest from
/// `get_manifest_page` (verified page by page against its header), each blob from its chunks.
fn download(w: &World, canister: Principal, who: Principal) -> (Manifest, Vec<u8>) {
    let mut pages = vec![];
    let mut cursor = Some(PageCursor::FIRST);
    let mut header = None;
    while let Some(c) = cursor {
        let reply: ManifestPageReply = w.capsule(canister, who, "get_manifest_page", (c,)).unwrap();
        cursor = reply.page.next;
        header = Some(reply.header);
        pages.push(reply.page);
    }
    let manifest = Manifest::from_pages(header.unwrap(), pages).unwrap();
    let mut blobs: BTreeMap<[u8; 32], Vec<u8>> = BTreeMap::new();
    for leaf in &manifest.blobs {
        let mut bytes = vec![];
        for i in 0..leaf.chunk_hashes.len() as u64 {
            let chunk: ByteBuf = w
                .capsule(
                    canister,
                    who,
                    "get_blob_chunk",
                    (ByteArray::new(leaf.hash), i),
                )
                .unwrap();
            bytes.extend_from_slice(&chunk);
        }
        blobs.insert(leaf.hash, bytes);
    }
    let tar = archive::write(Vec::new(), &manifest, |leaf| {
        Ok(std::io::Cursor::new(blobs[&leaf.hash].clone()))
    })
    .unwrap();
    (manifest, tar)
}

/// Restores `tar` into `canister` as `who` (see `personal::restore`); returns the root the
/// canister recomputes from what it stored.
fn restore(w: &World, canister: Principal, who: Principal, tar: &[u8]) -> Hash32 {
    let contents = archive::read(tar).unwrap();
    let manifest = contents.manifest.unwrap();
    let call = |method: &str, arg: Vec<u8>| -> Vec<u8> {
        w.ic.update_call(canister, who, method, arg)
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    };
    let ok = |method: &str, arg: Vec<u8>| {
        let (r,): (Result<(), Error>,) = candid::decode_args(&call(method, arg)).unwrap();
        r.unwrap_or_else(|e| panic!("{method}: {e:?}"));
    };
    ok(
        "restore_capsule",
        candid::encode_one(&manifest.capsule).unwrap(),
    );
    for leaf in &manifest.blobs {
        let bytes = &contents.blobs[&blobstore::hash::to_hex(&leaf.hash)];
        let (begun,): (Result<personal_upload::RestoreUpload, Error>,) = candid::decode_args(
            &call("restore_blob_begin", candid::encode_one(leaf).unwrap()),
        )
        .unwrap();
        let begun = begun.unwrap();
        for i in begun.missing {
            let chunk =
                &bytes[i as usize * CHUNK_SIZE..((i as usize + 1) * CHUNK_SIZE).min(bytes.len())];
            ok(
                "restore_blob_chunk",
                candid::encode_args((begun.upload, i, ByteBuf::from(chunk.to_vec()))).unwrap(),
            );
        }
        let (done,): (Result<BlobDescriptor, Error>,) = candid::decode_args(&call(
            "restore_blob_finish",
            candid::encode_one(begun.upload).unwrap(),
        ))
        .unwrap();
        assert_eq!(done.unwrap().hash.into_array(), leaf.hash);
    }
    for batch in manifest.memories.chunks(3) {
        let records = personal_upload::RestoreRecords {
            connections: vec![],
            memories: batch.to_vec(),
        };
        ok("restore_records", candid::encode_one(&records).unwrap());
    }
    let records = personal_upload::RestoreRecords {
        connections: manifest.connections.clone(),
        memories: vec![],
    };
    ok("restore_records", candid::encode_one(&records).unwrap());
    let (root,): (Result<Hash32, Error>,) =
        candid::decode_args(&call("capsule_root", candid::encode_args(()).unwrap())).unwrap();
    root.unwrap()
}

/// The candid shapes of the personal canister's restore types.
mod personal_upload {
    #[derive(candid::CandidType, serde::Deserialize, Clone, Debug)]
    pub struct RestoreUpload {
        pub upload: u64,
        pub missing: Vec<u64>,
    }

    #[derive(candid::CandidType, serde::Deserialize, Clone, Debug)]
    pub struct RestoreRecords {
        pub connections: Vec<manifests::ConnectionLeaf>,
        pub memories: Vec<manifests::MemoryLeaf>,
    }
}

#[test]
fn the_downloaded_archive_verifies_and_restores_into_a_fresh_canister_with_the_same_root() {
    let w = World::new();
    let alice = user(1);
    w.fill_capsule(alice, &[3 * 1024 * 1024 + 5, 700 * 1024, 1000], 7, 3);
    w.create_personal_canister(alice).unwrap();
    let rec = completed(&w, alice);
    assert_eq!(rec.state, CreationState::Completed);
    let canister = rec.canister_id.unwrap();
    let root = rec.manifest.unwrap().root;

    let (manifest, tar) = download(&w, canister, alice);
    assert_eq!(manifest.header.root, root.into_array());
    let report = archive::verify(&tar[..]).unwrap();
    assert!(report.is_ok(), "{:?}", report.differences);
    assert_eq!(report.root, root.into_array());
    assert_eq!(
        (report.blobs, report.blob_bytes),
        (3, manifest.header.total_blob_bytes)
    );
    // The CLI reads the same file (its own tests run `manifest verify`).
    let file = std::env::temp_dir().join(format!("capsule-{}.tar", std::process::id()));
    std::fs::write(&file, &tar).unwrap();
    assert!(
        archive::verify(std::fs::File::open(&file).unwrap())
            .unwrap()
            .is_ok()
    );
    std::fs::remove_file(&file).unwrap();

    // A fresh personal canister of alice's, restored from the archive.
    let fresh = w.ic.create_canister_with_settings(Some(alice), None);
    w.ic.add_cycles(fresh, 10_000_000_000_000);
    w.ic.install_canister(
        fresh,
        wasm("personal"),
        candid::encode_one(PersonalInitArgs {
            owner: alice,
            backend: None,
            migration: None,
        })
        .unwrap(),
        Some(alice),
    );
    // Only the owner restores.
    let refused: Result<(), Error> =
        w.capsule(fresh, user(2), "restore_capsule", (&manifest.capsule,));
    assert_eq!(refused, Err(Error::NotOwner { owner: alice }));
    assert_eq!(restore(&w, fresh, alice, &tar), root);
    // The same records, read through the capsule API.
    let info = |c| -> CapsuleInfo { w.capsule(c, alice, "get_capsule", ()).unwrap() };
    let (a, b) = (info(canister), info(fresh));
    assert_eq!(
        (a.name, a.created_at, a.updated_at),
        (b.name, b.created_at, b.updated_at)
    );
    let memories = |c| -> capsule::MemoryPage {
        w.capsule(
            c,
            alice,
            "list_memories",
            (capsule::MemoryPageRequest {
                start_after: None,
                limit: 100,
            },),
        )
        .unwrap()
    };
    assert_eq!(memories(canister), memories(fresh));
    let connections = |c| -> capsule::ConnectionPage {
        w.capsule(
            c,
            alice,
            "list_connections",
            (capsule::ConnectionPageRequest {
                start_after: None,
                limit: 100,
            },),
        )
        .unwrap()
    };
    assert_eq!(connections(canister), connections(fresh));

    // Back into the shared backend: refused while the moved copy is there, restored once it
    // is purged, with the same root.
    let refused: Result<(), Error> =
        w.capsule(w.backend, alice, "restore_capsule", (&manifest.capsule,));
    assert_eq!(
        refused,
        Err(Error::CapsuleMoved {
            canister_id: canister
        })
    );
    w.request_purge(alice).unwrap();
    w.run_for_until(std::time::Duration::from_secs(1), 120, |w| {
        w.status(alice).unwrap().shared_capsule_purged
    });
    assert_eq!(restore(&w, w.backend, alice, &tar), root);
    assert_eq!(memories(w.backend), memories(canister));
    assert_eq!(connections(w.backend), connections(canister));
    // Someone else cannot restore alice's capsule into their own name.
    let refused: Result<(), Error> =
        w.capsule(w.backend, user(5), "restore_capsule", (&manifest.capsule,));
    assert!(
        matches!(refused, Err(Error::ImportRejected { .. })),
        "{refused:?}"
    );

    // Restoring into a canister that holds a migration is refused.
    let refused: Result<(), Error> =
        w.capsule(canister, alice, "restore_capsule", (&manifest.capsule,));
    assert!(
        matches!(refused, Err(Error::ImportRejected { .. })),
        "{refused:?}"
    );
}
