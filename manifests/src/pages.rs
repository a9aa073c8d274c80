//! Pages: how a manifest is served and fetched in bounded messages.
//!
//! The exporter's page query returns a [`ManifestPageReply`]: the header (same on every page)
//! and one [`ManifestPage`]. In candid:
//!
//! ```candid
//! type Section = variant { Capsule; Connections; Memories; Blobs };
//! type PageCursor = record { section : Section; index : nat64 };
//! type ManifestPage = record {
//!   start : nat64;                  // index in its section of the page's first leaf
//!   leaves : PageLeaves;            // one section only
//!   next : opt PageCursor;          // where the next page starts; null after the last page
//! };
//! type PageLeaves = variant {
//!   Capsule : CapsuleLeaf;
//!   Connections : vec ConnectionLeaf;
//!   Memories : vec MemoryLeaf;
//!   Blobs : vec BlobLeaf;
//! };
//! type ManifestPageReply = record { header : ManifestHeader; page : ManifestPage };
//! ```
//!
//! Paging rules (checked by [`crate::PageVerifier`]): the first page is the capsule page at
//! `{ Capsule, 0 }`; each page holds at least one leaf of a single section, contiguous from
//! `start`; `next` is [`cursor_after`] the page (the rest of its section, else index 0 of the
//! next non-empty section, else `null`). Empty sections have no page. Pages are bounded by a
//! byte budget ([`PageBudget`]) on an upper bound of their candid size, not by a leaf count, so a
//! page stays under the message limit however large the leaves; a single leaf larger than the
//! budget still gets a page of its own.

use crate::encoding::Leaf;
use crate::error::{ManifestError, Result};
use crate::model::{BlobLeaf, CapsuleLeaf, ConnectionLeaf, Manifest, ManifestHeader, MemoryLeaf};
pub use crate::section::PageCursor;
use crate::section::Section;
use candid::CandidType;
use serde::{Deserialize, Serialize};

/// Default page budget: 1 MiB of candid, half the 2 MiB reply limit.
pub const DEFAULT_PAGE_BYTES: usize = 1024 * 1024;

/// Bytes a [`PageBudget`] reserves for everything in a reply but the leaves: the candid magic
/// and type table, the header, the page's `start`, variant tag, vector length and `next`.
/// A bare [`ManifestPageReply`] uses about 700 of them; the rest leaves room for a wrapper such
/// as `variant { Ok : ManifestPageReply; Err : ... }` with a small error type.
pub const PAGE_OVERHEAD_BYTES: usize = 2048;

/// The leaves of one page: a single section's.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum PageLeaves {
    Capsule(CapsuleLeaf),
    Connections(Vec<ConnectionLeaf>),
    Memories(Vec<MemoryLeaf>),
    Blobs(Vec<BlobLeaf>),
}

impl PageLeaves {
    /// The section of these leaves.
    pub fn section(&self) -> Section {
        match self {
            PageLeaves::Capsule(_) => Section::Capsule,
            PageLeaves::Connections(_) => Section::Connections,
            PageLeaves::Memories(_) => Section::Memories,
            PageLeaves::Blobs(_) => Section::Blobs,
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        match self {
            PageLeaves::Capsule(_) => 1,
            PageLeaves::Connections(v) => v.len(),
            PageLeaves::Memories(v) => v.len(),
            PageLeaves::Blobs(v) => v.len(),
        }
    }

    /// Whether there is no leaf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One page of a manifest.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ManifestPage {
    /// Index, in its section, of the first leaf of `leaves`.
    pub start: u64,
    pub leaves: PageLeaves,
    /// Where the next page starts, `None` after the last page.
    pub next: Option<PageCursor>,
}

impl ManifestPage {
    /// A page of `leaves` starting at `start`, with `next` computed from `header`'s counts.
    /// This is how an exporter that reads leaves from its own storage makes pages.
    pub fn new(header: &ManifestHeader, start: u64, leaves: PageLeaves) -> ManifestPage {
        let end = start.saturating_add(leaves.len() as u64);
        let next = cursor_after(header, leaves.section(), end);
        ManifestPage {
            start,
            leaves,
            next,
        }
    }

    /// Where this page starts.
    pub fn cursor(&self) -> PageCursor {
        PageCursor {
            section: self.leaves.section(),
            index: self.start,
        }
    }
}

/// The reply of the exporter's page query: the manifest header and one page.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ManifestPageReply {
    pub header: ManifestHeader,
    pub page: ManifestPage,
}

/// The cursor after leaf `end - 1` of `section`: `end` in the same section while it has more
/// leaves, else index 0 of the next section with leaves, else `None` (manifest finished).
pub fn cursor_after(header: &ManifestHeader, section: Section, end: u64) -> Option<PageCursor> {
    if end < header.count(section) {
        return Some(PageCursor {
            section,
            index: end,
        });
    }
    let mut s = section.next();
    while let Some(sec) = s {
        if header.count(sec) > 0 {
            return Some(PageCursor {
                section: sec,
                index: 0,
            });
        }
        s = sec.next();
    }
    None
}

/// An upper bound of a leaf's size inside a candid page: its canonical encoding plus one byte
/// per 32 (candid prefixes each hash with its length) plus slack.
pub fn leaf_wire_bound(leaf: &impl Leaf) -> usize {
    encoding_wire_bound(leaf.encoded_len())
}

/// [`leaf_wire_bound`] of a leaf whose canonical encoding is `n` bytes long.
pub fn encoding_wire_bound(n: usize) -> usize {
    n + n / 32 + 16
}

/// Fills a page up to a byte budget (an upper bound of the reply's candid size).
///
/// ```
/// # use manifests::{PageBudget, Leaf};
/// # fn leaves() -> Vec<manifests::MemoryLeaf> { vec![] }
/// let mut budget = PageBudget::new(manifests::DEFAULT_PAGE_BYTES);
/// let page: Vec<_> = leaves().into_iter().take_while(|l| budget.admit(l)).collect();
/// ```
#[derive(Clone, Debug)]
pub struct PageBudget {
    max_bytes: usize,
    used: usize,
    leaves: usize,
}

impl PageBudget {
    /// A budget of `max_bytes` for the whole reply (of which [`PAGE_OVERHEAD_BYTES`] are
    /// reserved for the header and framing).
    pub fn new(max_bytes: usize) -> Self {
        PageBudget {
            max_bytes,
            used: PAGE_OVERHEAD_BYTES,
            leaves: 0,
        }
    }

    /// Counts `leaf` in and returns true if it fits; the first leaf always fits, so a page
    /// always makes progress.
    pub fn admit(&mut self, leaf: &impl Leaf) -> bool {
        let size = leaf_wire_bound(leaf);
        if self.leaves > 0 && self.used + size > self.max_bytes {
            return false;
        }
        self.used += size;
        self.leaves += 1;
        true
    }

    /// Bytes counted so far (an upper bound of the reply's candid size).
    pub fn used(&self) -> usize {
        self.used
    }
}

fn take_page<T: Leaf + Clone>(leaves: &[T], max_bytes: usize) -> Vec<T> {
    let mut budget = PageBudget::new(max_bytes);
    leaves
        .iter()
        .take_while(|l| budget.admit(*l))
        .cloned()
        .collect()
}

impl Manifest {
    /// The page starting at `cursor`, filled up to `max_bytes`.
    pub fn page(&self, cursor: PageCursor, max_bytes: usize) -> Result<ManifestPage> {
        let held = match cursor.section {
            Section::Capsule => 1,
            Section::Connections => self.connections.len(),
            Section::Memories => self.memories.len(),
            Section::Blobs => self.blobs.len(),
        };
        let count = self.header.count(cursor.section).min(held as u64);
        if cursor.index >= count {
            return Err(ManifestError::BadCursor { cursor, count });
        }
        let i = cursor.index as usize;
        let leaves = match cursor.section {
            Section::Capsule => PageLeaves::Capsule(self.capsule.clone()),
            Section::Connections => {
                PageLeaves::Connections(take_page(&self.connections[i..], max_bytes))
            }
            Section::Memories => PageLeaves::Memories(take_page(&self.memories[i..], max_bytes)),
            Section::Blobs => PageLeaves::Blobs(take_page(&self.blobs[i..], max_bytes)),
        };
        Ok(ManifestPage::new(&self.header, cursor.index, leaves))
    }

    /// All pages in order, each bounded by `max_bytes` (see [`PageBudget`]). Fails with
    /// [`ManifestError::BadCursor`] only if the header's counts exceed the leaves held (a
    /// manifest that [`Manifest::verify`] rejects).
    pub fn pages(&self, max_bytes: usize) -> Result<Vec<ManifestPage>> {
        let mut out = Vec::new();
        let mut cursor = Some(PageCursor::FIRST);
        while let Some(c) = cursor {
            let page = self.page(c, max_bytes)?;
            cursor = page.next;
            out.push(page);
        }
        Ok(out)
    }

    /// All pages as the exporter's replies (header + page).
    pub fn page_replies(&self, max_bytes: usize) -> Result<Vec<ManifestPageReply>> {
        Ok(self
            .pages(max_bytes)?
            .into_iter()
            .map(|page| ManifestPageReply {
                header: self.header.clone(),
                page,
            })
            .collect())
    }
}
