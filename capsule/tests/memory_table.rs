//! Memories in buckets: any sequence of writes, removals and bulk imports reads back as a plain
//! map would, across bucket boundaries, owners, memories an earlier layout stored one per entry
//! and buckets of packed memories (layout 3); the stored bytes are the canonical leaf encodings.

use std::collections::BTreeMap;

use candid::Principal;
use capsule::storable::{Packed, pack};
use capsule::store::memory_table::{BUCKET_IDS, BUCKET_V1, BUCKET_V2, MemoryTable, encode};
use capsule::{Memory, MemoryKind};
use ic_stable_structures::{StableBTreeMap, VectorMemory};
use proptest::prelude::*;

fn owner(n: u8) -> Principal {
    Principal::from_slice(&[n; 29])
}

fn memory(id: u64, version: u8) -> Memory {
    Memory {
        id,
        title: format!("memory {id} v{version}"),
        description: "d".repeat((id % 7) as usize),
        tags: vec![],
        kind: MemoryKind::Note,
        created_at: id,
        updated_at: version as u64,
        blobs: vec![],
        encryption: None,
    }
}

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u64, u8),
    Remove(u8, u64),
    PutAbsent(u8, Vec<u64>),
    TakeFirst(u8, usize),
}

fn op() -> impl Strategy<Value = Op> {
    // Ids from a small range, so buckets fill, empty and are shared.
    let id = 0u64..(3 * BUCKET_IDS + 5);
    prop_oneof![
        (0u8..2, id.clone(), any::<u8>()).prop_map(|(o, i, v)| Op::Put(o, i, v)),
        (0u8..2, id.clone()).prop_map(|(o, i)| Op::Remove(o, i)),
        (0u8..2, proptest::collection::vec(id, 0..40)).prop_map(|(o, ids)| Op::PutAbsent(o, ids)),
        (0u8..2, 0usize..20).prop_map(|(o, n)| Op::TakeFirst(o, n)),
    ]
}

/// Raw bytes of a bucket map entry.
type RawBuckets = StableBTreeMap<(Principal, u64), Vec<u8>, VectorMemory>;

/// A table whose per-memory map (layouts 1 and 2) already holds `legacy` of owner 0, and whose
/// buckets hold `v1` of owner 1 as layout 3 wrote them (packed memories, format [`BUCKET_V1`]).
fn table_with_old(legacy: &[u64], v1: &[u64]) -> MemoryTable<VectorMemory> {
    table_and_buckets(legacy, v1).0
}

/// [`table_with_old`], with the buckets' memory to look at the raw bytes.
fn table_and_buckets(legacy: &[u64], v1: &[u64]) -> (MemoryTable<VectorMemory>, VectorMemory) {
    let (buckets, old) = (VectorMemory::default(), VectorMemory::default());
    let mut m: StableBTreeMap<(Principal, u64), Packed<Memory>, VectorMemory> =
        StableBTreeMap::init(old.clone());
    for id in legacy {
        m.insert((owner(0), *id), Packed(memory(*id, 0)));
    }
    let mut raw: RawBuckets = StableBTreeMap::init(buckets.clone());
    for id in v1 {
        let key = (owner(1), id / BUCKET_IDS);
        let mut bucket = raw.get(&key).unwrap_or_else(|| vec![BUCKET_V1]);
        let packed = pack(&memory(*id, 0));
        bucket.extend_from_slice(&id.to_le_bytes());
        bucket.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        bucket.extend_from_slice(&packed);
        raw.insert(key, bucket);
    }
    (MemoryTable::init(buckets.clone(), old), buckets)
}

/// `memories` as a bulk import passes them: id and canonical encoding.
fn encoded(memories: &[Memory]) -> Vec<(u64, Vec<u8>)> {
    memories.iter().map(|m| (m.id, encode(m))).collect()
}

fn as_entries(v: &[(u64, Vec<u8>)]) -> Vec<(u64, &[u8])> {
    v.iter().map(|(id, e)| (*id, &e[..])).collect()
}

proptest! {
    #[test]
    fn the_table_behaves_as_a_map(
        legacy in proptest::collection::btree_set(0u64..(3 * BUCKET_IDS), 0..10),
        v1 in proptest::collection::btree_set(0u64..(3 * BUCKET_IDS), 0..20),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let legacy: Vec<u64> = legacy.into_iter().collect();
        let v1: Vec<u64> = v1.into_iter().collect();
        let mut t = table_with_old(&legacy, &v1);
        let mut model: BTreeMap<(u8, u64), Memory> = legacy
            .iter()
            .map(|id| ((0, *id), memory(*id, 0)))
            .chain(v1.iter().map(|id| ((1, *id), memory(*id, 0))))
            .collect();
        for op in ops {
            match op {
                Op::Put(o, id, v) => {
                    t.put(owner(o), &memory(id, v));
                    model.insert((o, id), memory(id, v));
                }
                Op::Remove(o, id) => {
                    prop_assert_eq!(t.remove(owner(o), id), model.remove(&(o, id)));
                }
                Op::PutAbsent(o, ids) => {
                    let ms: Vec<Memory> = ids.iter().map(|id| memory(*id, 9)).collect();
                    let new = t.put_absent(owner(o), &as_entries(&encoded(&ms)));
                    let mut expected = vec![];
                    for m in ms {
                        let fresh = !model.contains_key(&(o, m.id));
                        expected.push(fresh);
                        if fresh {
                            model.insert((o, m.id), m);
                        }
                    }
                    prop_assert_eq!(new, expected);
                }
                Op::TakeFirst(o, n) => {
                    let taken = t.take_first(owner(o), n);
                    let expected: Vec<Memory> = model
                        .range((o, 0)..=(o, u64::MAX))
                        .take(n)
                        .map(|(_, m)| m.clone())
                        .collect();
                    for m in &expected {
                        model.remove(&(o, m.id));
                    }
                    prop_assert_eq!(taken, expected);
                }
            }
        }
        for o in 0..2u8 {
            let all: Vec<Memory> = model.range((o, 0)..=(o, u64::MAX)).map(|(_, m)| m.clone()).collect();
            prop_assert_eq!(&t.from(owner(o), 0, usize::MAX), &all);
            let encodings: Vec<Vec<u8>> = all.iter().map(encode).collect();
            prop_assert_eq!(t.encodings_from(owner(o), 0, usize::MAX), encodings);
            for start in [0, 1, BUCKET_IDS - 1, BUCKET_IDS, 2 * BUCKET_IDS + 3] {
                let expected: Vec<Memory> = all.iter().filter(|m| m.id >= start).take(5).cloned().collect();
                prop_assert_eq!(t.from(owner(o), start, 5), expected);
            }
            for id in 0..(3 * BUCKET_IDS + 5) {
                prop_assert_eq!(t.get(owner(o), id), model.get(&(o, id)).cloned());
            }
        }
    }
}

#[test]
fn a_bulk_import_writes_one_entry_per_bucket() {
    let buckets = VectorMemory::default();
    let mut t = MemoryTable::init(buckets.clone(), VectorMemory::default());
    let ms: Vec<Memory> = (1..=100).map(|id| memory(id, 0)).collect();
    let enc = encoded(&ms);
    assert!(
        t.put_absent(owner(1), &as_entries(&enc))
            .iter()
            .all(|new| *new)
    );
    let raw: RawBuckets = StableBTreeMap::init(buckets);
    // Ids 1..=100 fall in buckets 0..=6.
    assert_eq!(raw.len(), 100 / BUCKET_IDS + 1);
    // A bucket holds the encodings as they were passed: format byte, then id, length, bytes.
    let first = raw.get(&(owner(1), 0)).unwrap();
    assert_eq!(first[0], BUCKET_V2);
    assert_eq!(first[1..9], 1u64.to_le_bytes());
    assert_eq!(first[9..13], (enc[0].1.len() as u32).to_le_bytes());
    assert_eq!(first[13..13 + enc[0].1.len()], enc[0].1[..]);
    // A repeat (an import resumed after a restart) writes nothing new.
    assert!(
        t.put_absent(owner(1), &as_entries(&enc))
            .iter()
            .all(|new| !*new)
    );
    assert_eq!(t.from(owner(1), 0, 1_000), ms);
}

#[test]
fn a_write_turns_a_bucket_of_packed_memories_into_encodings_keeping_its_other_memories() {
    let (mut t, buckets) = table_and_buckets(&[], &[1, 2, 3]);
    let format = || {
        let raw: RawBuckets = StableBTreeMap::init(buckets.clone());
        raw.get(&(owner(1), 0)).unwrap()[0]
    };
    assert_eq!(format(), BUCKET_V1);
    // Read as they are, encoded on the way out.
    let encodings = |versions: [u8; 3]| {
        [1, 2, 3]
            .into_iter()
            .zip(versions)
            .map(|(id, v)| encode(&memory(id, v)))
            .collect::<Vec<_>>()
    };
    assert_eq!(t.encodings_from(owner(1), 0, 10), encodings([0, 0, 0]));
    t.put(owner(1), &memory(2, 7));
    assert_eq!(format(), BUCKET_V2);
    assert_eq!(t.encodings_from(owner(1), 0, 10), encodings([0, 7, 0]));
    assert_eq!(
        t.from(owner(1), 0, 10),
        vec![memory(1, 0), memory(2, 7), memory(3, 0)]
    );
}
