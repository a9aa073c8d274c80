//! Manifest leaves kept in stable memory, by scope (a migration id), section and index, with
//! the header; pages are served from here.
//!
//! The exporter stores the manifest it builds with its migration, so pages can be served (and
//! inspected by admins) by index, whatever happens to the capsule later. The importer stages the
//! verified pages it pulls here before it writes records.

use std::borrow::Cow;

use candid::{CandidType, Deserialize};
use ic_stable_structures::storable::Bound;
use ic_stable_structures::{Memory as StableMemory, StableBTreeMap, Storable};
use manifests::{
    BlobLeaf, CapsuleLeaf, ConnectionLeaf, Leaf, ManifestHeader, ManifestPage, ManifestPageReply,
    MemoryLeaf, PageBudget, PageCursor, PageLeaves, Section,
};
use serde::Serialize;

use crate::storable::{Packed, pack, unpack};

/// One stored leaf.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum StoredLeaf {
    Capsule(CapsuleLeaf),
    Connection(ConnectionLeaf),
    Memory(MemoryLeaf),
    Blob(BlobLeaf),
}

impl StoredLeaf {
    /// Length of the leaf's canonical encoding (about its stored size).
    fn encoded_len(&self) -> usize {
        match self {
            StoredLeaf::Capsule(l) => l.encoded_len(),
            StoredLeaf::Connection(l) => l.encoded_len(),
            StoredLeaf::Memory(l) => l.encoded_len(),
            StoredLeaf::Blob(l) => l.encoded_len(),
        }
    }
}

/// Key: (scope, section tag, index in section of the entry's first leaf).
type LeafKey = (u64, u8, u64);

/// Format byte of a run of leaves (a postcard `Vec<StoredLeaf>`).
pub const RUN_V1: u8 = 2;

/// Leaves are written in runs of consecutive leaves up to this many bytes of canonical
/// encoding (at least one leaf): one B-tree insert per run instead of one per leaf (an insert
/// rewrites its whole node, the costliest part of staging a leaf), while reading one leaf by
/// index decodes at most one run.
pub const RUN_BYTES: usize = 16 * 1024;

/// A stored entry: one leaf (what layout 1 wrote, in candid, and the first packed layout) or
/// a run of consecutive leaves.
enum Entry {
    One(StoredLeaf),
    Run(Vec<StoredLeaf>),
}

impl Entry {
    fn len(&self) -> u64 {
        match self {
            Entry::One(_) => 1,
            Entry::Run(v) => v.len() as u64,
        }
    }

    fn into_leaves(self) -> Vec<StoredLeaf> {
        match self {
            Entry::One(l) => vec![l],
            Entry::Run(v) => v,
        }
    }

    fn get(self, offset: u64) -> Option<StoredLeaf> {
        match self {
            Entry::One(l) => (offset == 0).then_some(l),
            Entry::Run(v) => v.into_iter().nth(offset as usize),
        }
    }
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        match self {
            Entry::One(l) => pack(l),
            Entry::Run(v) => postcard::to_extend(v, vec![RUN_V1])
                .expect("manifest store: a run of leaves cannot be encoded"),
        }
    }
}

impl Storable for Entry {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.encode())
    }

    fn into_bytes(self) -> Vec<u8> {
        self.encode()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // As for `Packed`: undecodable stored bytes are corrupted state; trap.
        match bytes.first() {
            Some(&RUN_V1) => Entry::Run(
                postcard::from_bytes(&bytes[1..])
                    .unwrap_or_else(|e| panic!("manifest store: undecodable run of leaves: {e}")),
            ),
            _ => Entry::One(unpack(&bytes).unwrap_or_else(|e| panic!("manifest store: {e}"))),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// Stored manifests, each under a scope.
pub struct ManifestStore<M: StableMemory> {
    leaves: StableBTreeMap<LeafKey, Entry, M>,
    headers: StableBTreeMap<u64, Packed<ManifestHeader>, M>,
}

impl<M: StableMemory> ManifestStore<M> {
    pub fn init(leaves: M, headers: M) -> Self {
        ManifestStore {
            leaves: StableBTreeMap::init(leaves),
            headers: StableBTreeMap::init(headers),
        }
    }

    /// Number of leaves stored for `section` of `scope` (leaves are stored contiguously from 0).
    pub fn count(&self, scope: u64, section: Section) -> u64 {
        let tag = section.tag();
        self.leaves
            .range((scope, tag, 0)..=(scope, tag, u64::MAX))
            .next_back()
            .map_or(0, |e| e.key().2 + e.value().len())
    }

    /// Appends a page of leaves after those stored for its section.
    pub fn append(&mut self, scope: u64, leaves: &PageLeaves) {
        let start = self.count(scope, leaves.section());
        self.put_at(scope, start, leaves);
    }

    /// Stores a page at its own start index (idempotent: a page pulled twice is written twice
    /// to the same keys).
    pub fn put_page(&mut self, scope: u64, page: &ManifestPage) {
        self.put_at(scope, page.start, &page.leaves);
    }

    /// Like [`ManifestStore::put_page`], taking the page (its leaves are moved, not copied).
    pub fn put_owned_page(&mut self, scope: u64, page: ManifestPage) {
        let tag = page.leaves.section().tag();
        let leaves: Vec<StoredLeaf> = match page.leaves {
            PageLeaves::Capsule(c) => vec![StoredLeaf::Capsule(c)],
            PageLeaves::Connections(v) => v.into_iter().map(StoredLeaf::Connection).collect(),
            PageLeaves::Memories(v) => v.into_iter().map(StoredLeaf::Memory).collect(),
            PageLeaves::Blobs(v) => v.into_iter().map(StoredLeaf::Blob).collect(),
        };
        self.put_runs(scope, tag, page.start, leaves);
    }

    fn put_at(&mut self, scope: u64, start: u64, leaves: &PageLeaves) {
        let tag = leaves.section().tag();
        let leaves: Vec<StoredLeaf> = match leaves {
            PageLeaves::Capsule(c) => vec![StoredLeaf::Capsule(c.clone())],
            PageLeaves::Connections(v) => v.iter().cloned().map(StoredLeaf::Connection).collect(),
            PageLeaves::Memories(v) => v.iter().cloned().map(StoredLeaf::Memory).collect(),
            PageLeaves::Blobs(v) => v.iter().cloned().map(StoredLeaf::Blob).collect(),
        };
        self.put_runs(scope, tag, start, leaves);
    }

    /// Writes `leaves` from index `start` in runs of up to [`RUN_BYTES`]; the run boundaries
    /// depend only on the leaves, so writing the same page again writes the same keys.
    fn put_runs(&mut self, scope: u64, tag: u8, start: u64, leaves: Vec<StoredLeaf>) {
        let mut index = start;
        let mut run: Vec<StoredLeaf> = Vec::new();
        let mut bytes = 0usize;
        for leaf in leaves {
            bytes += leaf.encoded_len();
            run.push(leaf);
            if bytes >= RUN_BYTES {
                let n = run.len() as u64;
                self.leaves
                    .insert((scope, tag, index), Entry::Run(std::mem::take(&mut run)));
                index += n;
                bytes = 0;
            }
        }
        if !run.is_empty() {
            self.leaves.insert((scope, tag, index), Entry::Run(run));
        }
    }

    /// The entry holding leaf `index` of `tag`, with its first leaf's index, if one does.
    fn entry_holding(&self, scope: u64, tag: u8, index: u64) -> Option<(u64, Entry)> {
        let e = self
            .leaves
            .range((scope, tag, 0)..=(scope, tag, index))
            .next_back()?;
        let (start, entry) = (e.key().2, e.value());
        (start + entry.len() > index).then_some((start, entry))
    }

    /// Leaves of `section` from `start` on, in order, as long as `keep` accepts them.
    fn scan(
        &self,
        scope: u64,
        section: Section,
        start: u64,
        mut keep: impl FnMut(StoredLeaf) -> bool,
    ) {
        let tag = section.tag();
        let first = self
            .entry_holding(scope, tag, start)
            .map_or(start, |(first, _)| first);
        for e in self
            .leaves
            .range((scope, tag, first)..=(scope, tag, u64::MAX))
        {
            let at = e.key().2;
            for (k, leaf) in e.value().into_leaves().into_iter().enumerate() {
                if at + (k as u64) < start {
                    continue;
                }
                if !keep(leaf) {
                    return;
                }
            }
        }
    }

    pub fn set_header(&mut self, scope: u64, header: ManifestHeader) {
        self.headers.insert(scope, Packed(header));
    }

    pub fn header(&self, scope: u64) -> Option<ManifestHeader> {
        self.headers.get(&scope).map(|h| h.0)
    }

    /// The leaf at `index` of `section`.
    pub fn leaf(&self, scope: u64, section: Section, index: u64) -> Option<StoredLeaf> {
        let (start, entry) = self.entry_holding(scope, section.tag(), index)?;
        entry.get(index - start)
    }

    /// Up to `limit` leaves of `section` from `start`.
    pub fn leaves(
        &self,
        scope: u64,
        section: Section,
        start: u64,
        limit: usize,
    ) -> Vec<StoredLeaf> {
        let mut out = Vec::new();
        if limit > 0 {
            self.scan(scope, section, start, |leaf| {
                out.push(leaf);
                out.len() < limit
            });
        }
        out
    }

    /// The page starting at `cursor`, as many leaves as fit in `max_bytes` of reply (at least
    /// one). `None` if the scope has no header or the cursor is past the section's end.
    pub fn page(
        &self,
        scope: u64,
        cursor: PageCursor,
        max_bytes: usize,
    ) -> Option<ManifestPageReply> {
        let header = self.header(scope)?;
        if cursor.index >= header.count(cursor.section) {
            return None;
        }
        let mut budget = PageBudget::new(max_bytes);
        let mut leaves = empty_leaves(cursor.section);
        self.scan(scope, cursor.section, cursor.index, |leaf| {
            match (&mut leaves, leaf) {
                (PageLeaves::Capsule(slot), StoredLeaf::Capsule(c)) => {
                    *slot = c;
                    budget.admit(slot);
                    false
                }
                (PageLeaves::Connections(v), StoredLeaf::Connection(l)) => {
                    budget.admit(&l) && push(v, l)
                }
                (PageLeaves::Memories(v), StoredLeaf::Memory(l)) => budget.admit(&l) && push(v, l),
                (PageLeaves::Blobs(v), StoredLeaf::Blob(l)) => budget.admit(&l) && push(v, l),
                _ => false,
            }
        });
        let page = ManifestPage::new(&header, cursor.index, leaves);
        Some(ManifestPageReply { header, page })
    }

    /// Removes up to `budget` entries (runs of leaves) of `scope` (and its header once no
    /// entry is left); returns whether the scope is gone.
    pub fn clear(&mut self, scope: u64, budget: usize) -> bool {
        let keys: Vec<LeafKey> = self
            .leaves
            .keys_range((scope, 0, 0)..=(scope, u8::MAX, u64::MAX))
            .take(budget)
            .collect();
        for k in &keys {
            self.leaves.remove(k);
        }
        let done = self
            .leaves
            .keys_range((scope, 0, 0)..=(scope, u8::MAX, u64::MAX))
            .next()
            .is_none();
        if done {
            self.headers.remove(&scope);
        }
        done
    }
}

fn push<T>(v: &mut Vec<T>, x: T) -> bool {
    v.push(x);
    true
}

fn empty_leaves(section: Section) -> PageLeaves {
    match section {
        Section::Capsule => PageLeaves::Capsule(CapsuleLeaf {
            owner: candid::Principal::anonymous(),
            name: String::new(),
            bio: String::new(),
            created_at: 0,
            updated_at: 0,
            settings: manifests::CapsuleSettingsLeaf {
                public_profile: false,
                locale: String::new(),
            },
        }),
        Section::Connections => PageLeaves::Connections(vec![]),
        Section::Memories => PageLeaves::Memories(vec![]),
        Section::Blobs => PageLeaves::Blobs(vec![]),
    }
}
