//! Behaviour of the capsule store, natively over in-memory stable memories.

use blobstore::hash::CHUNK_SIZE;
use candid::Principal;
use capsule::*;
use ic_stable_structures::VectorMemory;
use serde_bytes::{ByteArray, ByteBuf};
use test_support::bytes::data;
use test_support::capsules::{Store, blob_ref, note};

fn memories() -> CapsuleMemories<VectorMemory> {
    CapsuleMemories::in_memory()
}

fn store_with(limits: Limits) -> Store {
    test_support::capsules::store_with(limits, blobstore::Limits::default()).0
}

fn store() -> Store {
    store_with(Limits::default())
}

fn user(n: u8) -> Principal {
    test_support::capsules::user(n.into())
}

fn ctx(n: u8) -> Ctx {
    Ctx {
        caller: user(n),
        now: 1_000 + n as u64,
    }
}

/// Uploads `bytes` to `who`'s capsule through the API, chunks in reverse order.
fn upload(s: &mut Store, who: u8, bytes: &[u8]) -> BlobDescriptor {
    test_support::capsules::upload(s, &ctx(who), bytes)
}

const ALICE: u8 = 1;
const BOB: u8 = 2;

fn with_capsule(s: &mut Store, who: u8) -> CapsuleInfo {
    s.create_capsule(
        &ctx(who),
        CapsuleInput {
            name: format!("user {who}"),
            bio: "bio".into(),
            settings: None,
        },
    )
    .unwrap()
}

#[test]
fn capsule_lifecycle() {
    let mut s = store();
    assert_eq!(s.get_capsule(&ctx(ALICE)), Err(Error::CapsuleNotFound));
    let info = with_capsule(&mut s, ALICE);
    assert_eq!(info.owner, user(ALICE));
    assert_eq!(info.created_at, ctx(ALICE).now);
    assert_eq!(
        s.create_capsule(&ctx(ALICE), CapsuleInput::default()),
        Err(Error::CapsuleExists)
    );
    let settings = CapsuleSettings {
        public_profile: true,
        locale: "en-GB".into(),
    };
    let updated = s
        .update_capsule(
            &ctx(ALICE),
            CapsuleUpdate {
                name: Some("Alice".into()),
                bio: None,
                settings: Some(settings.clone()),
            },
        )
        .unwrap();
    assert_eq!(updated.name, "Alice");
    assert_eq!(updated.bio, "bio");
    assert_eq!(updated.settings, settings);
    assert_eq!(s.get_capsule(&ctx(ALICE)).unwrap(), updated);
    // Bob sees only his own (absent) capsule.
    assert_eq!(s.get_capsule(&ctx(BOB)), Err(Error::CapsuleNotFound));
}

#[test]
fn anonymous_is_rejected_everywhere() {
    let mut s = store();
    let anon = Ctx {
        caller: Principal::anonymous(),
        now: 1,
    };
    assert_eq!(
        s.create_capsule(&anon, CapsuleInput::default()),
        Err(Error::Anonymous)
    );
    assert_eq!(s.get_capsule(&anon), Err(Error::Anonymous));
    assert_eq!(s.add_memory(&anon, note("x")), Err(Error::Anonymous));
    assert_eq!(
        s.begin_blob_upload(
            &anon,
            BlobUploadRequest {
                size: 1,
                expected_hash: None
            }
        ),
        Err(Error::Anonymous)
    );
    assert_eq!(
        s.list_memories(
            &anon,
            MemoryPageRequest {
                start_after: None,
                limit: 10
            }
        ),
        Err(Error::Anonymous)
    );
    assert!(s.capsule_record(Principal::anonymous()).is_none());
}

#[test]
fn oversized_fields_are_rejected_and_change_nothing() {
    let mut s = store_with(Limits {
        max_name_len: 5,
        max_tags: 1,
        ..Limits::default()
    });
    let err = s
        .create_capsule(
            &ctx(ALICE),
            CapsuleInput {
                name: "too long".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        Error::FieldTooLong {
            field: "name".into(),
            len: 8,
            max: 5
        }
    );
    assert_eq!(s.get_capsule(&ctx(ALICE)), Err(Error::CapsuleNotFound));

    s.create_capsule(
        &ctx(ALICE),
        CapsuleInput {
            name: "ok".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let before = s.get_capsule(&ctx(ALICE)).unwrap();
    let mut m = note("t");
    m.tags = vec!["a".into(), "b".into()];
    assert_eq!(
        s.add_memory(&ctx(ALICE), m),
        Err(Error::LimitReached {
            what: "tags on a memory".into(),
            max: 1
        })
    );
    assert_eq!(s.get_capsule(&ctx(ALICE)).unwrap(), before);
}

#[test]
fn memories_add_get_list_update_delete() {
    let mut s = store();
    with_capsule(&mut s, ALICE);
    let ids: Vec<u64> = (0..25)
        .map(|i| {
            s.add_memory(&ctx(ALICE), note(&format!("m{i}")))
                .unwrap()
                .id
        })
        .collect();
    assert_eq!(ids, (1..=25).collect::<Vec<_>>());
    assert_eq!(s.get_memory(&ctx(ALICE), 3).unwrap().title, "m2");

    // Pages of 10 cover every memory once, in id order.
    let mut seen = vec![];
    let mut start_after = None;
    loop {
        let page = s
            .list_memories(
                &ctx(ALICE),
                MemoryPageRequest {
                    start_after,
                    limit: 10,
                },
            )
            .unwrap();
        seen.extend(page.items.iter().map(|m| m.id));
        match page.next {
            Some(n) => start_after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ids);

    let upd = s
        .update_memory(
            &ctx(ALICE),
            3,
            MemoryUpdate {
                title: Some("renamed".into()),
                kind: Some(MemoryKind::Document),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        (upd.title.as_str(), upd.kind),
        ("renamed", MemoryKind::Document)
    );
    s.delete_memory(&ctx(ALICE), 3).unwrap();
    assert_eq!(
        s.get_memory(&ctx(ALICE), 3),
        Err(Error::MemoryNotFound { id: 3 })
    );
    assert_eq!(
        s.delete_memory(&ctx(ALICE), 3),
        Err(Error::MemoryNotFound { id: 3 })
    );
    assert_eq!(s.get_capsule(&ctx(ALICE)).unwrap().memory_count, 24);
    // Ids are never reused.
    assert_eq!(s.add_memory(&ctx(ALICE), note("new")).unwrap().id, 26);
    // Bob cannot see Alice's memories.
    with_capsule(&mut s, BOB);
    assert_eq!(
        s.get_memory(&ctx(BOB), 1),
        Err(Error::MemoryNotFound { id: 1 })
    );
}

#[test]
fn page_limits_are_checked() {
    let mut s = store();
    with_capsule(&mut s, ALICE);
    for limit in [0, 101] {
        assert_eq!(
            s.list_memories(
                &ctx(ALICE),
                MemoryPageRequest {
                    start_after: None,
                    limit
                }
            ),
            Err(Error::InvalidPageLimit { limit, max: 100 })
        );
        assert_eq!(
            s.list_connections(
                &ctx(ALICE),
                ConnectionPageRequest {
                    start_after: None,
                    limit
                }
            ),
            Err(Error::InvalidPageLimit { limit, max: 100 })
        );
    }
}

#[test]
fn memory_count_is_bounded() {
    let mut s = store_with(Limits {
        max_memories: 2,
        ..Limits::default()
    });
    with_capsule(&mut s, ALICE);
    s.add_memory(&ctx(ALICE), note("a")).unwrap();
    s.add_memory(&ctx(ALICE), note("b")).unwrap();
    assert_eq!(
        s.add_memory(&ctx(ALICE), note("c")),
        Err(Error::LimitReached {
            what: "memories".into(),
            max: 2
        })
    );
}

#[test]
fn blobs_upload_attach_read_and_release() {
    let mut s = store();
    with_capsule(&mut s, ALICE);
    let bytes = data(2 * CHUNK_SIZE + 123, 7);
    let d = upload(&mut s, ALICE, &bytes);
    assert_eq!(d.hash.into_array(), *blake3::hash(&bytes).as_bytes());
    assert_eq!(d.chunk_hashes.len(), 3);
    assert_eq!(d.memory_refs, 0);

    // Chunk and range reads give back the bytes.
    let c1 = s.get_blob_chunk(&ctx(ALICE), &d.hash, 1).unwrap();
    assert_eq!(&c1[..], &bytes[CHUNK_SIZE..2 * CHUNK_SIZE]);
    let r = s
        .read_blob_range(&ctx(ALICE), &d.hash, CHUNK_SIZE as u64 - 10, 20)
        .unwrap();
    assert_eq!(&r[..], &bytes[CHUNK_SIZE - 10..CHUNK_SIZE + 10]);

    let mut m = note("photo");
    m.kind = MemoryKind::Photo;
    m.blobs = vec![blob_ref(&d, "image/jpeg")];
    m.encryption = Some(EncryptionEnvelope {
        scheme: "x25519".into(),
        wrapped_key: ByteBuf::from(vec![9; 48]),
    });
    let mem = s.add_memory(&ctx(ALICE), m.clone()).unwrap();
    assert_eq!(s.get_blob(&ctx(ALICE), &d.hash).unwrap().memory_refs, 1);
    let second = s.add_memory(&ctx(ALICE), m).unwrap();
    assert_eq!(s.get_blob(&ctx(ALICE), &d.hash).unwrap().memory_refs, 2);
    let cap = s.get_capsule(&ctx(ALICE)).unwrap();
    assert_eq!((cap.blob_count, cap.blob_bytes), (1, bytes.len() as u64));

    // Bob holds no reference to Alice's blob, even though he knows its hash.
    with_capsule(&mut s, BOB);
    let not_held = Error::BlobNotInCapsule {
        hash: blobstore::hash::to_hex(&d.hash),
    };
    assert_eq!(
        s.get_blob_chunk(&ctx(BOB), &d.hash, 0),
        Err(not_held.clone())
    );
    let mut steal = note("steal");
    steal.blobs = vec![blob_ref(&d, "image/jpeg")];
    assert_eq!(s.add_memory(&ctx(BOB), steal), Err(not_held));

    // Deleting the last referencing memory releases the blob.
    s.delete_memory(&ctx(ALICE), mem.id).unwrap();
    assert_eq!(s.get_blob(&ctx(ALICE), &d.hash).unwrap().memory_refs, 1);
    s.delete_memory(&ctx(ALICE), second.id).unwrap();
    assert!(matches!(
        s.get_blob(&ctx(ALICE), &d.hash),
        Err(Error::BlobNotInCapsule { .. })
    ));
    let cap = s.get_capsule(&ctx(ALICE)).unwrap();
    assert_eq!((cap.blob_count, cap.blob_bytes), (0, 0));
    assert!(s.blob_store().blob(&d.hash).is_none());
}

#[test]
fn the_same_blob_uploaded_twice_is_held_once() {
    let mut s = store();
    with_capsule(&mut s, ALICE);
    with_capsule(&mut s, BOB);
    let bytes = data(CHUNK_SIZE + 1, 3);
    let a = upload(&mut s, ALICE, &bytes);
    let again = upload(&mut s, ALICE, &bytes);
    assert_eq!(a, again);
    assert_eq!(s.get_capsule(&ctx(ALICE)).unwrap().blob_count, 1);
    // Bob uploads the same bytes: stored once, held by both capsules.
    upload(&mut s, BOB, &bytes);
    assert_eq!(s.blob_store().blob(&a.hash).unwrap().refs, 2);
}

#[test]
fn blob_references_are_checked() {
    let mut s = store();
    with_capsule(&mut s, ALICE);
    let d = upload(&mut s, ALICE, &data(1000, 1));
    let mut m = note("wrong size");
    m.blobs = vec![BlobRef {
        hash: d.hash,
        size: 999,
        mime_type: "text/plain".into(),
    }];
    assert_eq!(
        s.add_memory(&ctx(ALICE), m),
        Err(Error::BlobSizeMismatch {
            hash: blobstore::hash::to_hex(&d.hash),
            declared: 999,
            actual: 1000
        })
    );
    let mut m = note("unknown blob");
    m.blobs = vec![BlobRef {
        hash: ByteArray::new([7; 32]),
        size: 1,
        mime_type: "text/plain".into(),
    }];
    assert!(matches!(
        s.add_memory(&ctx(ALICE), m),
        Err(Error::BlobNotInCapsule { .. })
    ));
    assert_eq!(s.get_capsule(&ctx(ALICE)).unwrap().memory_count, 0);
}

#[test]
fn uploads_belong_to_their_caller() {
    let mut s = store();
    with_capsule(&mut s, ALICE);
    with_capsule(&mut s, BOB);
    let id = s
        .begin_blob_upload(
            &ctx(ALICE),
            BlobUploadRequest {
                size: 10,
                expected_hash: None,
            },
        )
        .unwrap();
    assert_eq!(
        s.put_blob_chunk(&ctx(BOB), id, 0, &[0; 10]),
        Err(Error::UnknownUpload { upload: id })
    );
    assert_eq!(
        s.finish_blob_upload(&ctx(BOB), id),
        Err(Error::UnknownUpload { upload: id })
    );
    assert_eq!(
        s.abort_blob_upload(&ctx(BOB), id),
        Err(Error::UnknownUpload { upload: id })
    );
    s.abort_blob_upload(&ctx(ALICE), id).unwrap();
    assert_eq!(
        s.finish_blob_upload(&ctx(ALICE), id),
        Err(Error::UnknownUpload { upload: id })
    );
}

#[test]
fn a_wrong_expected_hash_fails_the_upload() {
    let mut s = store();
    with_capsule(&mut s, ALICE);
    let id = s
        .begin_blob_upload(
            &ctx(ALICE),
            BlobUploadRequest {
                size: 4,
                expected_hash: Some(ByteArray::new([0; 32])),
            },
        )
        .unwrap();
    s.put_blob_chunk(&ctx(ALICE), id, 0, b"abcd").unwrap();
    assert!(matches!(
        s.finish_blob_upload(&ctx(ALICE), id),
        Err(Error::Blob(blobstore::BlobError::BlobHashMismatch { .. }))
    ));
    assert_eq!(s.get_capsule(&ctx(ALICE)).unwrap().blob_count, 0);
}

#[test]
fn blob_bytes_per_capsule_are_bounded() {
    let mut s = store_with(Limits {
        max_blob_bytes: 100,
        ..Limits::default()
    });
    with_capsule(&mut s, ALICE);
    assert_eq!(
        s.begin_blob_upload(
            &ctx(ALICE),
            BlobUploadRequest {
                size: 101,
                expected_hash: None
            }
        ),
        Err(Error::LimitReached {
            what: "blob bytes".into(),
            max: 100
        })
    );
    upload(&mut s, ALICE, &data(60, 1));
    assert!(
        s.begin_blob_upload(
            &ctx(ALICE),
            BlobUploadRequest {
                size: 41,
                expected_hash: None
            }
        )
        .is_err()
    );
}

#[test]
fn connections_add_list_update_remove() {
    let mut s = store();
    with_capsule(&mut s, ALICE);
    let input = |n: u8| ConnectionInput {
        peer: user(n),
        relationship: "friend".into(),
        status: ConnectionStatus::Pending,
    };
    for n in 10..15 {
        s.add_connection(&ctx(ALICE), input(n)).unwrap();
    }
    assert_eq!(
        s.add_connection(&ctx(ALICE), input(10)),
        Err(Error::ConnectionExists { peer: user(10) })
    );
    assert_eq!(
        s.add_connection(&ctx(ALICE), input(ALICE)),
        Err(Error::SelfConnection)
    );
    let first = s
        .list_connections(
            &ctx(ALICE),
            ConnectionPageRequest {
                start_after: None,
                limit: 3,
            },
        )
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let rest = s
        .list_connections(
            &ctx(ALICE),
            ConnectionPageRequest {
                start_after: first.next,
                limit: 3,
            },
        )
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert_eq!(rest.next, None);
    let mut peers: Vec<Principal> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|c| c.peer)
        .collect();
    peers.dedup();
    assert_eq!(peers.len(), 5);

    let c = s
        .update_connection(
            &ctx(ALICE),
            user(11),
            ConnectionUpdate {
                relationship: None,
                status: Some(ConnectionStatus::Accepted),
            },
        )
        .unwrap();
    assert_eq!(c.status, ConnectionStatus::Accepted);
    s.remove_connection(&ctx(ALICE), user(11)).unwrap();
    assert_eq!(
        s.remove_connection(&ctx(ALICE), user(11)),
        Err(Error::ConnectionNotFound { peer: user(11) })
    );
    assert_eq!(
        s.update_connection(&ctx(ALICE), user(11), ConnectionUpdate::default()),
        Err(Error::ConnectionNotFound { peer: user(11) })
    );
    assert_eq!(s.get_capsule(&ctx(ALICE)).unwrap().connection_count, 4);
}

#[test]
fn a_sole_owner_store_rejects_everyone_else() {
    let mut s = store();
    s.set_sole_owner(Some(user(ALICE)));
    with_capsule(&mut s, ALICE);
    assert_eq!(
        s.get_capsule(&ctx(BOB)),
        Err(Error::NotOwner { owner: user(ALICE) })
    );
    assert_eq!(
        s.create_capsule(&ctx(BOB), CapsuleInput::default()),
        Err(Error::NotOwner { owner: user(ALICE) })
    );
}

#[test]
fn a_frozen_capsule_reads_but_does_not_change() {
    let mut s = store();
    with_capsule(&mut s, ALICE);
    let m = s.add_memory(&ctx(ALICE), note("kept")).unwrap();
    s.set_frozen(user(ALICE), Some("exporting".into())).unwrap();
    let frozen = Err(Error::CapsuleFrozen {
        reason: "exporting".into(),
    });
    assert_eq!(s.add_memory(&ctx(ALICE), note("new")).map(|_| ()), frozen);
    assert_eq!(s.delete_memory(&ctx(ALICE), m.id), frozen);
    assert_eq!(
        s.update_capsule(&ctx(ALICE), CapsuleUpdate::default())
            .map(|_| ()),
        frozen
    );
    assert_eq!(
        s.begin_blob_upload(
            &ctx(ALICE),
            BlobUploadRequest {
                size: 1,
                expected_hash: None
            }
        )
        .map(|_| ()),
        frozen
    );
    assert_eq!(s.get_memory(&ctx(ALICE), m.id).unwrap(), m);
    s.set_frozen(user(ALICE), None).unwrap();
    s.delete_memory(&ctx(ALICE), m.id).unwrap();
}

#[test]
fn reopening_the_memories_keeps_everything() {
    let mem = memories();
    let mut s = CapsuleStore::init(mem.clone(), Limits::default(), blobstore::Limits::default());
    with_capsule(&mut s, ALICE);
    let bytes = data(CHUNK_SIZE * 2, 5);
    let d = upload(&mut s, ALICE, &bytes);
    let mut m = note("with blob");
    m.blobs = vec![blob_ref(&d, "video/mp4")];
    let memory = s.add_memory(&ctx(ALICE), m).unwrap();
    s.add_connection(
        &ctx(ALICE),
        ConnectionInput {
            peer: user(BOB),
            relationship: "sister".into(),
            status: ConnectionStatus::Accepted,
        },
    )
    .unwrap();
    let capsule = s.get_capsule(&ctx(ALICE)).unwrap();
    drop(s);

    // What an upgrade does: a new process opens the same stable memories.
    let s = CapsuleStore::init(mem.clone(), Limits::default(), blobstore::Limits::default());
    assert_eq!(s.get_capsule(&ctx(ALICE)).unwrap(), capsule);
    assert_eq!(s.get_memory(&ctx(ALICE), memory.id).unwrap(), memory);
    let chunk = s.get_blob_chunk(&ctx(ALICE), &d.hash, 1).unwrap();
    assert_eq!(&chunk[..], &bytes[CHUNK_SIZE..]);
    let conns = s
        .list_connections(
            &ctx(ALICE),
            ConnectionPageRequest {
                start_after: None,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(conns.items[0].relationship, "sister");
}
