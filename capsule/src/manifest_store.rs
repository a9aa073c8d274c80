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
use manifests::raw::FRAME_PREFIX_BYTES;
use manifests::{
    BlobLeaf, CapsuleLeaf, ConnectionLeaf, FramedLeaves, Leaf, ManifestHeader, ManifestPage,
    ManifestPageReply, MemoryLeaf, PAGE_OVERHEAD_BYTES, PageCursor, PageLeaves, RawPage,
    RawPageReply, Section, cursor_after, encoding_wire_bound,
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

/// Key: (scope, section tag, index in section of the entry's first leaf).
type LeafKey = (u64, u8, u64);

/// Format byte of a run of leaves in postcard (a `Vec<StoredLeaf>`), the layout before
/// [`RUN_FRAMED`]; still read.
pub const RUN_V1: u8 = 2;

/// Format byte of a run of leaves as their canonical bytes, framed
/// ([`manifests::FramedLeaves`]): what every write stores now. The bytes an exporter hashed
/// are the bytes it stores and serves, and an importer stores the bytes it verified, so no
/// leaf is encoded twice or decoded before it is used.
pub const RUN_FRAMED: u8 = 3;

/// Leaves are written in runs of consecutive leaves up to this many bytes of canonical
/// encoding (at least one leaf): one B-tree insert per run instead of one per leaf (an insert
/// rewrites its whole node, the costliest part of staging a leaf), while reading one leaf by
/// index skips at most one run's frames.
pub const RUN_BYTES: usize = 16 * 1024;

/// A stored entry: one leaf (what layout 1 wrote, in candid, and the first packed layout), a
/// run in postcard ([`RUN_V1`]), or a run of framed canonical bytes ([`RUN_FRAMED`]).
enum Entry {
    One(StoredLeaf),
    Run(Vec<StoredLeaf>),
    Framed(FramedLeaves),
}

impl StoredLeaf {
    /// The leaf of `section` whose canonical encoding is `bytes`.
    ///
    /// # Panics
    /// If the bytes do not decode: the store only holds what was verified or encoded when it
    /// was written, so this is corrupted state (as for [`Packed`]).
    fn decode(section: Section, bytes: &[u8]) -> StoredLeaf {
        fn get<L: Leaf>(bytes: &[u8]) -> L {
            L::decode(bytes).unwrap_or_else(|e| panic!("manifest store: {e}"))
        }
        match section {
            Section::Capsule => StoredLeaf::Capsule(get(bytes)),
            Section::Connections => StoredLeaf::Connection(get(bytes)),
            Section::Memories => StoredLeaf::Memory(get(bytes)),
            Section::Blobs => StoredLeaf::Blob(get(bytes)),
        }
    }

    /// Appends this leaf's frame to `out`.
    fn frame_into(&self, out: &mut FramedLeaves) {
        match self {
            StoredLeaf::Capsule(l) => out.push(l),
            StoredLeaf::Connection(l) => out.push(l),
            StoredLeaf::Memory(l) => out.push(l),
            StoredLeaf::Blob(l) => out.push(l),
        }
    }
}

impl Entry {
    /// The entry's leaves as frames (entries of the earlier layouts are encoded here).
    fn frames(&self) -> Cow<'_, FramedLeaves> {
        match self {
            Entry::Framed(f) => Cow::Borrowed(f),
            Entry::One(l) => {
                let mut f = FramedLeaves::default();
                l.frame_into(&mut f);
                Cow::Owned(f)
            }
            Entry::Run(v) => {
                let mut f = FramedLeaves::default();
                v.iter().for_each(|l| l.frame_into(&mut f));
                Cow::Owned(f)
            }
        }
    }

    fn len(&self) -> u64 {
        match self {
            Entry::One(_) => 1,
            Entry::Run(v) => v.len() as u64,
            Entry::Framed(f) => f.count().unwrap_or_else(|e| panic!("manifest store: {e}")) as u64,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Entry::One(l) => pack(l),
            Entry::Run(v) => postcard::to_extend(v, vec![RUN_V1])
                .expect("manifest store: a run of leaves cannot be encoded"),
            Entry::Framed(f) => {
                let mut out = Vec::with_capacity(1 + f.byte_len());
                out.push(RUN_FRAMED);
                out.extend_from_slice(&f.0);
                out
            }
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
            Some(&RUN_FRAMED) => Entry::Framed(FramedLeaves(bytes[1..].to_vec())),
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
        self.append_framed(scope, leaves.section(), &FramedLeaves::of(leaves));
    }

    /// Appends leaves of `section`, framed, after those stored for it (bytes as they are).
    pub fn append_framed(&mut self, scope: u64, section: Section, leaves: &FramedLeaves) {
        let start = self.count(scope, section);
        self.put_framed(scope, section, start, leaves);
    }

    /// Stores a page at its own start index (idempotent: a page pulled twice is written twice
    /// to the same keys).
    pub fn put_page(&mut self, scope: u64, page: &ManifestPage) {
        let leaves = FramedLeaves::of(&page.leaves);
        self.put_framed(scope, page.leaves.section(), page.start, &leaves);
    }

    /// Stores a page of canonical bytes at its own start index, the bytes as they are (run
    /// boundaries are those [`ManifestStore::put_page`] would choose for the same leaves).
    ///
    /// # Panics
    /// If a frame is cut short: the caller stores pages it verified
    /// ([`manifests::PageVerifier::push_raw`] splits every frame).
    pub fn put_raw_page(&mut self, scope: u64, page: &RawPage) {
        self.put_framed(scope, page.section, page.start, &page.leaves);
    }

    /// Writes `leaves` from index `start` in runs of up to [`RUN_BYTES`] of canonical bytes;
    /// the run boundaries depend only on the leaves, so writing the same page again writes
    /// the same keys.
    fn put_framed(&mut self, scope: u64, section: Section, start: u64, leaves: &FramedLeaves) {
        let tag = section.tag();
        let mut index = start;
        let mut run = FramedLeaves::default();
        let (mut bytes, mut n) = (0usize, 0u64);
        for frame in leaves.frames() {
            let frame = frame.unwrap_or_else(|e| panic!("manifest store: {e}"));
            bytes += frame.len();
            run.push_frame(frame);
            n += 1;
            if bytes >= RUN_BYTES {
                self.leaves
                    .insert((scope, tag, index), Entry::Framed(std::mem::take(&mut run)));
                index += n;
                (bytes, n) = (0, 0);
            }
        }
        if n > 0 {
            self.leaves.insert((scope, tag, index), Entry::Framed(run));
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

    /// The canonical bytes of the leaves of `section` from `start` on, in order, as long as
    /// `keep` accepts them.
    fn scan_frames(
        &self,
        scope: u64,
        section: Section,
        start: u64,
        mut keep: impl FnMut(&[u8]) -> bool,
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
            let entry = e.value();
            for (k, frame) in entry.frames().frames().enumerate() {
                if at + (k as u64) < start {
                    continue;
                }
                if !keep(frame.unwrap_or_else(|e| panic!("manifest store: {e}"))) {
                    return;
                }
            }
        }
    }

    /// Leaves of `section` from `start` on, decoded, as long as `keep` accepts them.
    fn scan(
        &self,
        scope: u64,
        section: Section,
        start: u64,
        mut keep: impl FnMut(StoredLeaf) -> bool,
    ) {
        self.scan_frames(scope, section, start, |f| {
            keep(StoredLeaf::decode(section, f))
        })
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
        let frames = entry.frames();
        let frame = frames.frames().nth((index - start) as usize)?;
        Some(StoredLeaf::decode(
            section,
            frame.unwrap_or_else(|e| panic!("manifest store: {e}")),
        ))
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

    /// Up to `limit` leaves of `section` from `start`, framed as they are stored: canonical
    /// encodings, not decoded.
    pub fn frames(&self, scope: u64, section: Section, start: u64, limit: usize) -> FramedLeaves {
        let mut out = FramedLeaves::default();
        let mut n = 0;
        if limit > 0 {
            self.scan_frames(scope, section, start, |frame| {
                out.push_frame(frame);
                n += 1;
                n < limit
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
        let raw = self.page_by(scope, cursor, max_bytes, encoding_wire_bound)?;
        let page = raw
            .page
            .decode()
            .unwrap_or_else(|e| panic!("manifest store: {e}"));
        Some(ManifestPageReply {
            header: raw.header,
            page,
        })
    }

    /// The page starting at `cursor` as canonical bytes ([`RawPageReply`]), as many leaves as
    /// fit in `max_bytes` of reply (at least one); no leaf is decoded. `None` if the scope has
    /// no header or the cursor is past the section's end.
    pub fn raw_page(
        &self,
        scope: u64,
        cursor: PageCursor,
        max_bytes: usize,
    ) -> Option<RawPageReply> {
        self.page_by(scope, cursor, max_bytes, |len| FRAME_PREFIX_BYTES + len)
    }

    /// The leaves from `cursor` on, framed, while their reply size (`size` of each leaf's
    /// encoding length, after [`PAGE_OVERHEAD_BYTES`]) fits in `max_bytes`; at least one.
    fn page_by(
        &self,
        scope: u64,
        cursor: PageCursor,
        max_bytes: usize,
        size: impl Fn(usize) -> usize,
    ) -> Option<RawPageReply> {
        let header = self.header(scope)?;
        let section = cursor.section;
        if cursor.index >= header.count(section) {
            return None;
        }
        let mut leaves = FramedLeaves::default();
        let (mut used, mut n) = (PAGE_OVERHEAD_BYTES, 0u64);
        self.scan_frames(scope, section, cursor.index, |frame| {
            let size = size(frame.len());
            if n > 0 && used + size > max_bytes {
                return false;
            }
            used += size;
            n += 1;
            leaves.push_frame(frame);
            section != Section::Capsule
        });
        let next = cursor_after(&header, section, cursor.index + n);
        Some(RawPageReply {
            header,
            page: RawPage {
                section,
                start: cursor.index,
                leaves,
                next,
            },
        })
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
