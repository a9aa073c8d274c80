//! The stored encoding: [`Packed`] records round-trip, records the earlier (candid) layout
//! wrote are read by a store opened over them, bytes of an unknown format are refused, and the
//! packed form is smaller than candid (the figures are printed).

use candid::{Encode, Principal};
use capsule::manifest_store::StoredLeaf;
use capsule::storable::{CANDID_MAGIC, Candid, PACKED_V1, Packed, PackedError, pack, unpack};
use capsule::store::CapsuleRecord;
use capsule::*;
use ic_stable_structures::{StableBTreeMap, Storable, VectorMemory};
use manifests::{BlobRefLeaf, EncryptionLeaf, MemoryLeaf};
use serde_bytes::ByteBuf;
use test_support::bytes::RawBytes;
use test_support::capsules::owner;

fn memory(id: u64) -> Memory {
    Memory {
        id,
        title: format!("memory {id}"),
        description: "a day at the lake with everyone, ".repeat(3),
        tags: vec!["tag0".into(), "tag1".into()],
        kind: MemoryKind::Photo,
        created_at: 1_700_000_000_000_000_000 + id,
        updated_at: 1_700_000_000_000_000_001 + id,
        blobs: vec![],
        encryption: Some(EncryptionEnvelope {
            scheme: "x25519-xsalsa20poly1305".into(),
            wrapped_key: ByteBuf::from(vec![7u8; 48]),
        }),
    }
}

fn leaf(id: u64) -> MemoryLeaf {
    MemoryLeaf {
        id,
        title: format!("memory {id}"),
        description: "a day at the lake with everyone, ".repeat(3),
        tags: vec!["tag0".into()],
        kind: "photo".into(),
        created_at: 1,
        updated_at: 2,
        blobs: vec![BlobRefLeaf {
            hash: [9; 32],
            size: 1234,
            mime_type: "image/jpeg".into(),
        }],
        encryption: Some(EncryptionLeaf {
            scheme: "s".into(),
            wrapped_key: vec![1, 2, 3],
        }),
    }
}

#[test]
fn packed_records_round_trip_and_start_with_the_format_byte() {
    let m = memory(5);
    let bytes = Packed(m.clone()).into_bytes();
    assert_eq!(bytes[0], PACKED_V1);
    assert_eq!(Packed::<Memory>::from_bytes(bytes.into()).0, m);

    let l = StoredLeaf::Memory(leaf(3));
    let bytes = Packed(l.clone()).to_bytes().into_owned();
    assert_eq!(unpack::<StoredLeaf>(&bytes), Ok(l));

    let rec = CapsuleRecord {
        frozen: Some("exporting".into()),
        moved_to: Some(Principal::from_slice(&[1, 2, 3])),
        ..CapsuleRecord::empty(owner(), 99)
    };
    assert_eq!(unpack::<CapsuleRecord>(&pack(&rec)), Ok(rec));
}

#[test]
fn candid_bytes_of_the_earlier_layout_are_still_read() {
    let m = memory(8);
    let candid = Candid(m.clone()).into_bytes();
    assert!(candid.starts_with(CANDID_MAGIC));
    assert_eq!(Packed::<Memory>::from_bytes(candid.into()).0, m);
}

#[test]
fn unknown_or_broken_bytes_are_refused_with_a_typed_error() {
    assert_eq!(unpack::<Memory>(&[]), Err(PackedError::Empty));
    assert_eq!(
        unpack::<Memory>(&[9, 1, 2]),
        Err(PackedError::UnknownFormat(9))
    );
    assert!(matches!(
        unpack::<Memory>(&[PACKED_V1, 0xff]),
        Err(PackedError::Undecodable(_))
    ));
    assert!(matches!(
        unpack::<Memory>(b"DIDL\x00\x01\x71"),
        Err(PackedError::Undecodable(_))
    ));
}

#[test]
fn a_store_opened_over_the_earlier_candid_layout_reads_and_rewrites_its_records() {
    let mem = CapsuleMemories::in_memory();
    // What the earlier layout wrote: every record in candid.
    {
        let mut capsules: StableBTreeMap<Principal, Candid<CapsuleRecord>, VectorMemory> =
            StableBTreeMap::init(mem.capsules.clone());
        let mut memories: StableBTreeMap<(Principal, u64), Candid<Memory>, VectorMemory> =
            StableBTreeMap::init(mem.memories.clone());
        let mut connections: StableBTreeMap<
            (Principal, Principal),
            Candid<Connection>,
            VectorMemory,
        > = StableBTreeMap::init(mem.connections.clone());
        let mut rec = CapsuleRecord::empty(owner(), 5);
        rec.name = "old".into();
        rec.memory_count = 2;
        rec.next_memory_id = 3;
        rec.connection_count = 1;
        capsules.insert(owner(), Candid(rec));
        memories.insert((owner(), 1), Candid(memory(1)));
        memories.insert((owner(), 2), Candid(memory(2)));
        let peer = Principal::from_slice(&[7; 10]);
        connections.insert(
            (owner(), peer),
            Candid(Connection {
                peer,
                relationship: "friend".into(),
                status: ConnectionStatus::Accepted,
                created_at: 1,
                updated_at: 2,
            }),
        );
    }
    let mut store =
        CapsuleStore::init(mem.clone(), Limits::default(), blobstore::Limits::default());
    let ctx = Ctx {
        caller: owner(),
        now: 10,
    };
    let info = store.get_capsule(&ctx).unwrap();
    assert_eq!(
        (info.name.as_str(), info.memory_count, info.connection_count),
        ("old", 2, 1)
    );
    assert_eq!(store.get_memory(&ctx, 1).unwrap(), memory(1));
    let page = store
        .list_connections(
            &ctx,
            ConnectionPageRequest {
                start_after: None,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(page.items[0].relationship, "friend");
    // A write moves the memory to its bucket (layout 4: its canonical leaf encoding); the
    // untouched one stays candid in the per-memory map and still reads.
    let updated = store
        .update_memory(
            &ctx,
            2,
            MemoryUpdate {
                title: Some("new title".into()),
                ..MemoryUpdate::default()
            },
        )
        .unwrap();
    let raw: StableBTreeMap<(Principal, u64), RawBytes, VectorMemory> =
        StableBTreeMap::init(mem.memories.clone());
    assert!(raw.get(&(owner(), 2)).is_none());
    assert!(raw.get(&(owner(), 1)).unwrap().0.starts_with(CANDID_MAGIC));
    let buckets: StableBTreeMap<(Principal, u64), RawBytes, VectorMemory> =
        StableBTreeMap::init(mem.memory_buckets.clone());
    let bucket = buckets.get(&(owner(), 0)).unwrap().0;
    assert_eq!(bucket[0], capsule::store::memory_table::BUCKET_V2);
    // The bucket's one frame: id 2, the length, then the memory's leaf encoding.
    assert_eq!(bucket[1..9], 2u64.to_le_bytes());
    assert_eq!(
        bucket[13..],
        capsule::store::memory_table::encode(&updated)[..]
    );
    assert_eq!(store.get_memory(&ctx, 2).unwrap(), updated);
    assert_eq!(store.get_memory(&ctx, 1).unwrap(), memory(1));
}

#[test]
fn packed_is_smaller_than_candid() {
    let m = memory(12345);
    let l = StoredLeaf::Memory(leaf(12345));
    let (pm, cm) = (pack(&m).len(), Encode!(&m).unwrap().len());
    let (pl, cl) = (pack(&l).len(), Encode!(&l).unwrap().len());
    println!(
        "memory record: packed {pm} B, candid {cm} B; staged memory leaf: packed {pl} B, candid {cl} B"
    );
    assert!(pm < cm && pl < cl);
}
