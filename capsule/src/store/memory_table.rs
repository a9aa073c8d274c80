//! Memories in buckets: [`BUCKET_IDS`] consecutive ids of one capsule per B-tree entry, each
//! memory stored as its canonical manifest leaf encoding.
//!
//! A stable B-tree insert rewrites its whole node (every entry's key and value), which made one
//! entry per memory the costliest part of writing memories in bulk (about 110 K instructions per
//! memory when a migration imports them). A bucket holds the memories whose ids share
//! `id / BUCKET_IDS`, so an import writes one entry per bucket, and one memory is still read or
//! written by one B-tree operation.
//!
//! A bucket's bytes: a format byte, then one frame per memory in id order: the id (`u64`
//! little-endian), the length of the memory's bytes (`u32` little-endian) and the bytes.
//!
//! - [`BUCKET_V2`] (layout 4): the bytes are the memory's [`MemoryLeaf`] in the manifest's
//!   canonical encoding ([`manifests::Leaf::encode`]), the bytes a manifest hashes. An import
//!   stores the verified bytes it received as they are, and the manifest walk hashes and
//!   serves stored bytes without decoding or encoding a memory.
//! - [`BUCKET_V1`] (layout 3): the bytes are the packed memory ([`crate::storable::pack`]).
//!   Such buckets are read as they are and written back as [`BUCKET_V2`].
//!
//! Layouts before 3 kept one entry per memory, `(owner, id) → Packed<Memory>`. That map is kept
//! as `legacy`: its memories are read as they are, and move to their bucket when they are
//! written (an update) or leave with a delete. A store that never had them pays one look at an
//! empty map.

use std::borrow::Cow;

use candid::Principal;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory as StableMemory, StableBTreeMap, Storable};
use manifests::{Leaf, MemoryLeaf};

use crate::storable::{Packed, unpack};
use crate::types::Memory;

/// Ids per bucket.
pub const BUCKET_IDS: u64 = 16;

/// Format byte of a bucket of packed memories (layout 3; read, never written).
pub const BUCKET_V1: u8 = 1;

/// Format byte of a bucket of canonical leaf encodings (see the module documentation).
pub const BUCKET_V2: u8 = 2;

/// Bytes of a frame's header: id and length.
const FRAME_HEADER: usize = 12;

/// The bytes the table stores for `memory`: its leaf's canonical encoding.
pub fn encode(memory: &Memory) -> Vec<u8> {
    MemoryLeaf::from(memory).encode()
}

/// The memory whose stored bytes are `bytes` (written by [`encode`] or an import).
fn decode(bytes: &[u8]) -> Memory {
    // As for `Packed`: bytes this store did not write are corrupted state; trap.
    let leaf = MemoryLeaf::decode(bytes).unwrap_or_else(|e| panic!("capsule store: {e}"));
    Memory::try_from(leaf).unwrap_or_else(|e| panic!("capsule store: {e}"))
}

/// A memory of a [`BUCKET_V1`] bucket, packed.
fn unpack_memory(packed: &[u8]) -> Memory {
    unpack(packed).unwrap_or_else(|e| panic!("capsule store: {e}"))
}

/// A bucket's stored bytes, format byte first: read and written as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bucket(Vec<u8>);

impl Default for Bucket {
    fn default() -> Self {
        Bucket(vec![BUCKET_V2])
    }
}

impl Storable for Bucket {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // As for `Packed`: bytes this store did not write are corrupted state; trap.
        match bytes.first() {
            Some(&BUCKET_V1 | &BUCKET_V2) => Bucket(bytes.into_owned()),
            other => panic!("capsule store: unknown memory bucket format {other:?}"),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// A bucket of [`MemoryTable::put_absent`]'s range walk: as read (or left unchanged by an
/// earlier run of the same call), or written since, to be read again from the map if its ids
/// come back (no copy of every bucket written is kept in memory).
enum Seen {
    Read(Bucket),
    Written,
}

impl Bucket {
    fn is_v1(&self) -> bool {
        self.0[0] == BUCKET_V1
    }

    /// (id, stored bytes) of every memory, in id order, in the bucket's own format.
    fn frames(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut rest = &self.0[1..];
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (head, tail) = rest
                .split_first_chunk::<FRAME_HEADER>()
                .expect("capsule store: a memory bucket is cut short");
            let id = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
            let (bytes, tail) = tail.split_at(len);
            rest = tail;
            Some((id, bytes))
        })
    }

    /// (id, canonical encoding) of every memory, in id order: borrowed from a [`BUCKET_V2`]
    /// bucket, encoded from a [`BUCKET_V1`] one.
    fn encodings(&self) -> impl Iterator<Item = (u64, Cow<'_, [u8]>)> {
        let v1 = self.is_v1();
        self.frames().map(move |(id, bytes)| {
            let enc = if v1 {
                Cow::Owned(encode(&unpack_memory(bytes)))
            } else {
                Cow::Borrowed(bytes)
            };
            (id, enc)
        })
    }

    /// The memory of a frame's stored bytes.
    fn memory(&self, bytes: &[u8]) -> Memory {
        if self.is_v1() {
            unpack_memory(bytes)
        } else {
            decode(bytes)
        }
    }

    /// Whether the bucket holds no memory.
    fn is_empty(&self) -> bool {
        self.0.len() == 1
    }

    fn push(&mut self, id: u64, bytes: &[u8]) {
        self.0.extend_from_slice(&id.to_le_bytes());
        let len = u32::try_from(bytes.len()).expect("a memory is under 4 GiB");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(bytes);
    }

    fn get(&self, id: u64) -> Option<Memory> {
        self.frames()
            .find(|(i, _)| *i == id)
            .map(|(_, bytes)| self.memory(bytes))
    }

    fn contains(&self, id: u64) -> bool {
        self.frames().any(|(i, _)| i == id)
    }

    /// This bucket with `writes` (id → canonical encoding, or `None` to remove; sorted by id)
    /// applied, as a [`BUCKET_V2`] bucket.
    fn with(&self, writes: &[(u64, Option<&[u8]>)]) -> Bucket {
        let mut out = Bucket(Vec::with_capacity(self.0.len()));
        out.0.push(BUCKET_V2);
        let mut writes = writes.iter().peekable();
        for (id, enc) in self.encodings() {
            while let Some((w, new)) = writes.next_if(|(w, _)| *w < id) {
                if let Some(b) = new {
                    out.push(*w, b);
                }
            }
            match writes.next_if(|(w, _)| *w == id) {
                Some((_, Some(b))) => out.push(id, b),
                Some((_, None)) => {}
                None => out.push(id, &enc),
            }
        }
        for (w, new) in writes {
            if let Some(b) = new {
                out.push(*w, b);
            }
        }
        out
    }
}

fn bucket_of(id: u64) -> u64 {
    id / BUCKET_IDS
}

/// The runs of consecutive `ids` that fall in one bucket: (bucket, their index range).
fn bucket_runs(ids: &[u64]) -> impl Iterator<Item = (u64, std::ops::Range<usize>)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let first = ids.get(i)?;
        let b = bucket_of(*first);
        let end = i + ids[i..]
            .iter()
            .take_while(|id| bucket_of(**id) == b)
            .count();
        let run = (b, i..end);
        i = end;
        Some(run)
    })
}

/// Every capsule's memories (see the module documentation).
pub struct MemoryTable<M: StableMemory> {
    buckets: StableBTreeMap<(Principal, u64), Bucket, M>,
    /// One entry per memory, as layouts before 3 stored them.
    legacy: StableBTreeMap<(Principal, u64), Packed<Memory>, M>,
}

impl<M: StableMemory> MemoryTable<M> {
    /// Opens the table: buckets in `buckets`, memories of earlier layouts in `legacy`.
    pub fn init(buckets: M, legacy: M) -> Self {
        MemoryTable {
            buckets: StableBTreeMap::init(buckets),
            legacy: StableBTreeMap::init(legacy),
        }
    }

    pub fn get(&self, owner: Principal, id: u64) -> Option<Memory> {
        if let Some(m) = self
            .buckets
            .get(&(owner, bucket_of(id)))
            .and_then(|b| b.get(id))
        {
            return Some(m);
        }
        if self.legacy.is_empty() {
            return None;
        }
        self.legacy.get(&(owner, id)).map(|m| m.0)
    }

    /// Writes `memory`, new or replacing the one with its id.
    pub fn put(&mut self, owner: Principal, memory: &Memory) {
        self.remove_legacy(owner, memory.id);
        let key = (owner, bucket_of(memory.id));
        let bucket = self.buckets.get(&key).unwrap_or_default();
        let enc = encode(memory);
        self.buckets
            .insert(key, bucket.with(&[(memory.id, Some(&enc))]));
    }

    /// Removes memory `id`; returns it if it was there.
    pub fn remove(&mut self, owner: Principal, id: u64) -> Option<Memory> {
        let key = (owner, bucket_of(id));
        if let Some(bucket) = self.buckets.get(&key)
            && let Some(m) = bucket.get(id)
        {
            let rest = bucket.with(&[(id, None)]);
            if rest.is_empty() {
                self.buckets.remove(&key);
            } else {
                self.buckets.insert(key, rest);
            }
            return Some(m);
        }
        self.remove_legacy(owner, id)
    }

    fn remove_legacy(&mut self, owner: Principal, id: u64) -> Option<Memory> {
        if self.legacy.is_empty() {
            return None;
        }
        self.legacy.remove(&(owner, id)).map(|m| m.0)
    }

    /// Up to `limit` memories of `owner` with ids from `start` on, in id order.
    pub fn from(&self, owner: Principal, start: u64, limit: usize) -> Vec<Memory> {
        self.collect_from(owner, start, limit, Bucket::memory, |m| m)
    }

    /// The canonical encodings ([`encode`]) of up to `limit` memories of `owner` with ids from
    /// `start` on, in id order: what a manifest hashes, copied as stored.
    pub fn encodings_from(&self, owner: Principal, start: u64, limit: usize) -> Vec<Vec<u8>> {
        self.collect_from(
            owner,
            start,
            limit,
            |b, bytes| {
                if b.is_v1() {
                    encode(&unpack_memory(bytes))
                } else {
                    bytes.to_vec()
                }
            },
            |m| encode(&m),
        )
    }

    /// Up to `limit` of `owner`'s memories with ids from `start` on, in id order, each made by
    /// `of_frame` (from its bucket and stored bytes) or `of_legacy` (a memory of the per-memory
    /// map).
    fn collect_from<T>(
        &self,
        owner: Principal,
        start: u64,
        limit: usize,
        of_frame: impl Fn(&Bucket, &[u8]) -> T,
        of_legacy: impl Fn(Memory) -> T,
    ) -> Vec<T> {
        let mut out: Vec<(u64, T)> = Vec::new();
        if limit == 0 {
            return vec![];
        }
        'buckets: for e in self
            .buckets
            .range((owner, bucket_of(start))..=(owner, u64::MAX))
        {
            let bucket = e.value();
            for (id, bytes) in bucket.frames() {
                if id < start {
                    continue;
                }
                out.push((id, of_frame(&bucket, bytes)));
                if out.len() == limit {
                    break 'buckets;
                }
            }
        }
        if self.legacy.is_empty() {
            return out.into_iter().map(|(_, t)| t).collect();
        }
        let old: Vec<(u64, T)> = self
            .legacy
            .range((owner, start)..=(owner, u64::MAX))
            .take(limit)
            .map(|e| (e.key().1, of_legacy(e.value().0)))
            .collect();
        let mut merged = Vec::with_capacity(limit.min(out.len() + old.len()));
        let (mut a, mut b) = (out.into_iter().peekable(), old.into_iter().peekable());
        while merged.len() < limit {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, _) => b.next(),
            };
            match next {
                Some((_, t)) => merged.push(t),
                None => break,
            }
        }
        merged
    }

    /// Writes those of `memories` (id and canonical encoding, as [`encode`] makes it) whose id
    /// is not stored yet (nor earlier in `memories`), one bucket write per run of memories in the
    /// same bucket (one per bucket when they are sorted by id, as a manifest's are); returns,
    /// for each, whether it was new. The encodings are stored as they are.
    pub fn put_absent(&mut self, owner: Principal, memories: &[(u64, &[u8])]) -> Vec<bool> {
        let ids: Vec<u64> = memories.iter().map(|(id, _)| *id).collect();
        let mut new = Vec::with_capacity(memories.len());
        // The buckets already there, read in one pass when the ids are dense (an import's
        // are): one B-tree walk instead of one lookup per bucket.
        let lo = ids.iter().map(|id| bucket_of(*id)).min().unwrap_or(0);
        let hi = ids.iter().map(|id| bucket_of(*id)).max().unwrap_or(0);
        let mut known: Option<std::collections::BTreeMap<u64, Seen>> =
            (!ids.is_empty() && hi - lo <= ids.len() as u64).then(|| {
                self.buckets
                    .range((owner, lo)..=(owner, hi))
                    .map(|e| (e.key().1, Seen::Read(e.value())))
                    .collect()
            });
        for (b, run) in bucket_runs(&ids) {
            let key = (owner, b);
            let bucket = match known.as_mut().map(|k| k.remove(&b)) {
                Some(Some(Seen::Read(bucket))) => bucket,
                // Not there when the walk read the range.
                Some(None) => Bucket::default(),
                Some(Some(Seen::Written)) | None => self.buckets.get(&key).unwrap_or_default(),
            };
            let mut writes: Vec<(u64, Option<&[u8]>)> = Vec::new();
            for &(id, enc) in &memories[run] {
                let held = bucket.contains(id)
                    || writes.iter().any(|(w, _)| *w == id)
                    || (!self.legacy.is_empty() && self.legacy.contains_key(&(owner, id)));
                if !held {
                    writes.push((id, Some(enc)));
                }
                new.push(!held);
            }
            let seen = if writes.is_empty() {
                Seen::Read(bucket)
            } else {
                writes.sort_unstable_by_key(|(id, _)| *id);
                self.buckets.insert(key, bucket.with(&writes));
                Seen::Written
            };
            if let Some(k) = &mut known {
                k.insert(b, seen);
            }
        }
        new
    }

    /// Removes and returns up to `limit` of `owner`'s memories, lowest ids first (whole buckets
    /// at a time where the limit allows).
    pub fn take_first(&mut self, owner: Principal, limit: usize) -> Vec<Memory> {
        let first = self.from(owner, 0, limit);
        let ids: Vec<u64> = first.iter().map(|m| m.id).collect();
        for (b, run) in bucket_runs(&ids) {
            let key = (owner, b);
            if let Some(bucket) = self.buckets.get(&key) {
                let writes: Vec<(u64, Option<&[u8]>)> =
                    ids[run.clone()].iter().map(|id| (*id, None)).collect();
                let rest = bucket.with(&writes);
                if rest.is_empty() {
                    self.buckets.remove(&key);
                } else if rest.frames().map(|f| f.0).ne(bucket.frames().map(|f| f.0)) {
                    self.buckets.insert(key, rest);
                }
            }
            for id in &ids[run] {
                self.remove_legacy(owner, *id);
            }
        }
        first
    }
}
