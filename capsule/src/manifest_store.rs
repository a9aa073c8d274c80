//! Manifest leaves kept in stable memory, by scope (a migration id), section and index, with
//! the header; pages are served from here.
//!
//! The exporter stores the manifest it builds with its migration, so pages can be served (and
//! inspected by admins) by index, whatever happens to the capsule later. The importer stages the
//! verified pages it pulls here before it writes records.

use candid::{CandidType, Deserialize};
use ic_stable_structures::{Memory as StableMemory, StableBTreeMap};
use manifests::{
    BlobLeaf, CapsuleLeaf, ConnectionLeaf, ManifestHeader, ManifestPage, ManifestPageReply,
    MemoryLeaf, PageBudget, PageCursor, PageLeaves, Section,
};
use serde::Serialize;

use crate::storable::Packed;

/// One stored leaf.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum StoredLeaf {
    Capsule(CapsuleLeaf),
    Connection(ConnectionLeaf),
    Memory(MemoryLeaf),
    Blob(BlobLeaf),
}

/// Key: (scope, section tag, index in section).
type LeafKey = (u64, u8, u64);

/// Stored manifests, each under a scope.
pub struct ManifestStore<M: StableMemory> {
    leaves: StableBTreeMap<LeafKey, Packed<StoredLeaf>, M>,
    headers: StableBTreeMap<u64, Packed<ManifestHeader>, M>,
}

impl<M: StableMemory> ManifestStore<M> {
    pub fn init(leaves: M, headers: M) -> Self {
        ManifestStore {
            leaves: StableBTreeMap::init(leaves),
            headers: StableBTreeMap::init(headers),
        }
    }

    /// Number of leaves stored for `section` of `scope`.
    pub fn count(&self, scope: u64, section: Section) -> u64 {
        let tag = section.tag();
        self.leaves
            .keys_range((scope, tag, 0)..=(scope, tag, u64::MAX))
            .next_back()
            .map_or(0, |(_, _, i)| i + 1)
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
        let mut index = page.start;
        let mut put = |leaf: StoredLeaf| {
            self.leaves.insert((scope, tag, index), Packed(leaf));
            index += 1;
        };
        match page.leaves {
            PageLeaves::Capsule(c) => put(StoredLeaf::Capsule(c)),
            PageLeaves::Connections(v) => {
                v.into_iter().for_each(|l| put(StoredLeaf::Connection(l)))
            }
            PageLeaves::Memories(v) => v.into_iter().for_each(|l| put(StoredLeaf::Memory(l))),
            PageLeaves::Blobs(v) => v.into_iter().for_each(|l| put(StoredLeaf::Blob(l))),
        }
    }

    fn put_at(&mut self, scope: u64, start: u64, leaves: &PageLeaves) {
        let tag = leaves.section().tag();
        let mut index = start;
        let mut put = |leaf: StoredLeaf| {
            self.leaves.insert((scope, tag, index), Packed(leaf));
            index += 1;
        };
        match leaves {
            PageLeaves::Capsule(c) => put(StoredLeaf::Capsule(c.clone())),
            PageLeaves::Connections(v) => v
                .iter()
                .for_each(|l| put(StoredLeaf::Connection(l.clone()))),
            PageLeaves::Memories(v) => v.iter().for_each(|l| put(StoredLeaf::Memory(l.clone()))),
            PageLeaves::Blobs(v) => v.iter().for_each(|l| put(StoredLeaf::Blob(l.clone()))),
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
        self.leaves.get(&(scope, section.tag(), index)).map(|l| l.0)
    }

    /// Up to `limit` leaves of `section` from `start`.
    pub fn leaves(
        &self,
        scope: u64,
        section: Section,
        start: u64,
        limit: usize,
    ) -> Vec<StoredLeaf> {
        let tag = section.tag();
        self.leaves
            .range((scope, tag, start)..=(scope, tag, u64::MAX))
            .take(limit)
            .map(|e| e.value().0)
            .collect()
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
        let tag = cursor.section.tag();
        let mut budget = PageBudget::new(max_bytes);
        let mut leaves = empty_leaves(cursor.section);
        for entry in self
            .leaves
            .range((scope, tag, cursor.index)..=(scope, tag, u64::MAX))
        {
            let admitted = match (&mut leaves, entry.value().0) {
                (PageLeaves::Capsule(slot), StoredLeaf::Capsule(c)) => {
                    *slot = c;
                    budget.admit(slot);
                    break;
                }
                (PageLeaves::Connections(v), StoredLeaf::Connection(l)) => {
                    budget.admit(&l) && push(v, l)
                }
                (PageLeaves::Memories(v), StoredLeaf::Memory(l)) => budget.admit(&l) && push(v, l),
                (PageLeaves::Blobs(v), StoredLeaf::Blob(l)) => budget.admit(&l) && push(v, l),
                _ => false,
            };
            if !admitted {
                break;
            }
        }
        let page = ManifestPage::new(&header, cursor.index, leaves);
        Some(ManifestPageReply { header, page })
    }

    /// Removes up to `budget` leaves of `scope` (and its header once no leaf is left); returns
    /// whether the scope is gone.
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
