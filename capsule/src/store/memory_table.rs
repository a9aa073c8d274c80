//! Memories in buckets: [`BUCKET_IDS`] consecutive ids of one capsule per B-tree entry.
//!
//! A stable B-tree insert rewrites its whole node (every entry's key and value), which made one
//! entry per memory the costliest part of writing memories in bulk (about 110 K instructions per
//! memory when a migration imports them). A bucket holds the memories whose ids share
//! `id / BUCKET_IDS`, so an import writes one entry per bucket, and one memory is still read or
//! written by one B-tree operation.
//!
//! A bucket's bytes: the format byte [`BUCKET_V1`], then one frame per memory in id order: the
//! id (`u64` little-endian), the length of the packed memory (`u32` little-endian) and the
//! packed memory ([`crate::storable::pack`]).
//!
//! Layouts before 3 kept one entry per memory, `(owner, id) → Packed<Memory>`. That map is kept
//! as `legacy`: its memories are read as they are, and move to their bucket when they are
//! written (an update) or leave with a delete. A store that never had them pays one look at an
//! empty map.

use std::borrow::Cow;

use candid::Principal;
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory as StableMemory, StableBTreeMap, Storable};

use crate::storable::{Packed, pack, unpack};
use crate::types::Memory;

/// Ids per bucket.
pub const BUCKET_IDS: u64 = 16;

/// Format byte of a bucket (see the module documentation).
pub const BUCKET_V1: u8 = 1;

/// Bytes of a frame's header: id and length.
const FRAME_HEADER: usize = 12;

/// A bucket's stored bytes, format byte first: read and written as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bucket(Vec<u8>);

impl Default for Bucket {
    fn default() -> Self {
        Bucket(vec![BUCKET_V1])
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
            Some(&BUCKET_V1) => Bucket(bytes.into_owned()),
            other => panic!("capsule store: unknown memory bucket format {other:?}"),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

impl Bucket {
    /// (id, packed memory) of every memory, in id order.
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
            let (packed, tail) = tail.split_at(len);
            rest = tail;
            Some((id, packed))
        })
    }

    /// Whether the bucket holds no memory.
    fn is_empty(&self) -> bool {
        self.0.len() == 1
    }

    fn push(&mut self, id: u64, packed: &[u8]) {
        self.0.extend_from_slice(&id.to_le_bytes());
        let len = u32::try_from(packed.len()).expect("a memory is under 4 GiB");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(packed);
    }

    fn get(&self, id: u64) -> Option<Memory> {
        self.frames()
            .find(|(i, _)| *i == id)
            .map(|(_, packed)| decode(packed))
    }

    fn contains(&self, id: u64) -> bool {
        self.frames().any(|(i, _)| i == id)
    }

    /// This bucket with `writes` (id → packed memory, or `None` to remove; sorted by id)
    /// applied.
    fn with(&self, writes: &[(u64, Option<Vec<u8>>)]) -> Bucket {
        let mut out = Bucket(Vec::with_capacity(self.0.len()));
        out.0.push(BUCKET_V1);
        let mut writes = writes.iter().peekable();
        for (id, packed) in self.frames() {
            while let Some((w, new)) = writes.next_if(|(w, _)| *w < id) {
                if let Some(p) = new {
                    out.push(*w, p);
                }
            }
            match writes.next_if(|(w, _)| *w == id) {
                Some((_, Some(p))) => out.push(id, p),
                Some((_, None)) => {}
                None => out.push(id, packed),
            }
        }
        for (w, new) in writes {
            if let Some(p) = new {
                out.push(*w, p);
            }
        }
        out
    }
}

fn decode(packed: &[u8]) -> Memory {
    unpack(packed).unwrap_or_else(|e| panic!("capsule store: {e}"))
}

fn bucket_of(id: u64) -> u64 {
    id / BUCKET_IDS
}

/// The runs of consecutive `memories` that fall in one bucket: (bucket, their index range).
fn bucket_runs(memories: &[Memory]) -> impl Iterator<Item = (u64, std::ops::Range<usize>)> {
    let mut i = 0;
    std::iter::from_fn(move || {
        let first = memories.get(i)?;
        let b = bucket_of(first.id);
        let end = i + memories[i..]
            .iter()
            .take_while(|m| bucket_of(m.id) == b)
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
        self.buckets
            .insert(key, bucket.with(&[(memory.id, Some(pack(memory)))]));
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
        let mut out = Vec::new();
        if limit == 0 {
            return out;
        }
        'buckets: for e in self
            .buckets
            .range((owner, bucket_of(start))..=(owner, u64::MAX))
        {
            for (id, packed) in e.value().frames() {
                if id < start {
                    continue;
                }
                out.push(decode(packed));
                if out.len() == limit {
                    break 'buckets;
                }
            }
        }
        if self.legacy.is_empty() {
            return out;
        }
        let old: Vec<Memory> = self
            .legacy
            .range((owner, start)..=(owner, u64::MAX))
            .take(limit)
            .map(|e| e.value().0)
            .collect();
        if old.is_empty() {
            return out;
        }
        let mut merged = Vec::with_capacity(out.len() + old.len());
        let (mut a, mut b) = (out.into_iter().peekable(), old.into_iter().peekable());
        while merged.len() < limit {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.id <= y.id => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, _) => b.next(),
            };
            match next {
                Some(m) => merged.push(m),
                None => break,
            }
        }
        merged
    }

    /// Writes those of `memories` whose id is not stored yet (nor earlier in `memories`), one
    /// bucket write per run of memories in the same bucket (one per bucket when they are sorted
    /// by id, as a manifest's are); returns, for each, whether it was new.
    pub fn put_absent(&mut self, owner: Principal, memories: &[Memory]) -> Vec<bool> {
        let mut new = Vec::with_capacity(memories.len());
        // The buckets already there, read in one pass when the ids are dense (an import's
        // are): one B-tree walk instead of one lookup per bucket.
        let lo = memories.iter().map(|m| bucket_of(m.id)).min().unwrap_or(0);
        let hi = memories.iter().map(|m| bucket_of(m.id)).max().unwrap_or(0);
        let mut known: Option<std::collections::BTreeMap<u64, Bucket>> =
            (!memories.is_empty() && hi - lo <= memories.len() as u64).then(|| {
                self.buckets
                    .range((owner, lo)..=(owner, hi))
                    .map(|e| (e.key().1, e.value()))
                    .collect()
            });
        for (b, run) in bucket_runs(memories) {
            let key = (owner, b);
            let bucket = match &mut known {
                Some(k) => k.remove(&b).unwrap_or_default(),
                None => self.buckets.get(&key).unwrap_or_default(),
            };
            let mut writes = Vec::new();
            for m in &memories[run] {
                let held = bucket.contains(m.id)
                    || writes.iter().any(|(id, _)| *id == m.id)
                    || (!self.legacy.is_empty() && self.legacy.contains_key(&(owner, m.id)));
                if !held {
                    writes.push((m.id, Some(pack(m))));
                }
                new.push(!held);
            }
            let bucket = if writes.is_empty() {
                bucket
            } else {
                writes.sort_unstable_by_key(|(id, _)| *id);
                let written = bucket.with(&writes);
                self.buckets.insert(key, written.clone());
                written
            };
            if let Some(k) = &mut known {
                k.insert(b, bucket);
            }
        }
        new
    }

    /// Removes and returns up to `limit` of `owner`'s memories, lowest ids first (whole buckets
    /// at a time where the limit allows).
    pub fn take_first(&mut self, owner: Principal, limit: usize) -> Vec<Memory> {
        let first = self.from(owner, 0, limit);
        for (b, run) in bucket_runs(&first) {
            let key = (owner, b);
            if let Some(bucket) = self.buckets.get(&key) {
                let writes: Vec<(u64, Option<Vec<u8>>)> =
                    first[run.clone()].iter().map(|m| (m.id, None)).collect();
                let rest = bucket.with(&writes);
                if rest.is_empty() {
                    self.buckets.remove(&key);
                } else if rest != bucket {
                    self.buckets.insert(key, rest);
                }
            }
            for m in &first[run] {
                self.remove_legacy(owner, m.id);
            }
        }
        first
    }
}
