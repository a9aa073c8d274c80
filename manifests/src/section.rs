//! Positions in a manifest: its four [`Section`]s, in manifest order, and a [`PageCursor`]
//! (a section and a leaf index in it). The bottom of the crate: every other module may use
//! these, and this one uses none of them.

use candid::CandidType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The four sections of a manifest, in manifest order.
#[derive(
    CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum Section {
    /// One leaf: the [`CapsuleLeaf`](crate::CapsuleLeaf).
    Capsule,
    /// [`ConnectionLeaf`](crate::ConnectionLeaf)s sorted by peer.
    Connections,
    /// [`MemoryLeaf`](crate::MemoryLeaf)s sorted by id.
    Memories,
    /// [`BlobLeaf`](crate::BlobLeaf)s sorted by hash.
    Blobs,
}

impl Section {
    /// All sections in manifest order.
    pub const ALL: [Section; 4] = [
        Section::Capsule,
        Section::Connections,
        Section::Memories,
        Section::Blobs,
    ];

    /// The byte that identifies the section inside section-root nodes.
    pub fn tag(self) -> u8 {
        match self {
            Section::Capsule => 0,
            Section::Connections => 1,
            Section::Memories => 2,
            Section::Blobs => 3,
        }
    }

    /// The section after this one, if any.
    pub fn next(self) -> Option<Section> {
        match self {
            Section::Capsule => Some(Section::Connections),
            Section::Connections => Some(Section::Memories),
            Section::Memories => Some(Section::Blobs),
            Section::Blobs => None,
        }
    }

    /// Lower-case name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Section::Capsule => "capsule",
            Section::Connections => "connections",
            Section::Memories => "memories",
            Section::Blobs => "blobs",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A position in a manifest: a section and a leaf index in it.
#[derive(
    CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct PageCursor {
    pub section: Section,
    pub index: u64,
}

impl PageCursor {
    /// Where every manifest starts: the capsule leaf.
    pub const FIRST: PageCursor = PageCursor {
        section: Section::Capsule,
        index: 0,
    };
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} leaf {}", self.section, self.index)
    }
}
