//! Leaves as their canonical bytes: what an exporter stores and sends and what an importer
//! hashes and stages, so that a leaf is encoded once, where it is exported, and decoded once,
//! where it is written as a record.
//!
//! [`FramedLeaves`] holds leaves of one section, each as a *frame*: its length as `u32`
//! little-endian, then its canonical encoding ([`crate::encoding`]). The length prefix is not
//! hashed; it only lets a reader split, count and skip leaves without decoding them.
//! [`RawPage`] is a [`ManifestPage`] whose leaves are framed, [`RawPageReply`] the reply that
//! carries it with the header.

use candid::CandidType;
use serde::{Deserialize, Serialize};

use crate::encoding::{Leaf, leaf_hash_of_encoding};
use crate::error::{ManifestError, Result};
use crate::model::{BlobLeaf, CapsuleLeaf, ConnectionLeaf, ManifestHeader, MemoryLeaf};
use crate::pages::{ManifestPage, PageLeaves};
use crate::section::{PageCursor, Section};

/// Bytes of a frame's length prefix.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// Leaves of one section as frames (see the module documentation). In candid, a `blob`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(transparent)]
pub struct FramedLeaves(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl CandidType for FramedLeaves {
    fn _ty() -> candid::types::Type {
        serde_bytes::ByteBuf::_ty()
    }

    fn idl_serialize<S: candid::types::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<(), S::Error> {
        serializer.serialize_blob(&self.0)
    }
}

impl FramedLeaves {
    /// Appends `leaf`, encoded.
    pub fn push<L: Leaf>(&mut self, leaf: &L) {
        self.push_leaf(leaf);
    }

    /// Appends `leaf`, encoded in one pass (its length written after it); returns where its
    /// encoding lies in the bytes.
    fn push_leaf<L: Leaf>(&mut self, leaf: &L) -> std::ops::Range<usize> {
        let start = self.0.len();
        self.0.extend_from_slice(&[0; FRAME_PREFIX_BYTES]);
        leaf.encode_into(&mut self.0);
        let body = start + FRAME_PREFIX_BYTES;
        let len = u32::try_from(self.0.len() - body).expect("a leaf is under 4 GiB");
        self.0[start..body].copy_from_slice(&len.to_le_bytes());
        body..self.0.len()
    }

    /// Appends `leaf`, encoded, and returns its leaf hash, computed over the bytes appended.
    pub fn push_hashed<L: Leaf>(&mut self, leaf: &L) -> crate::Hash {
        let at = self.push_leaf(leaf);
        leaf_hash_of_encoding(L::SECTION, &self.0[at])
    }

    /// Appends a frame as it is (a frame read from other framed leaves).
    pub fn push_frame(&mut self, encoding: &[u8]) {
        let len = u32::try_from(encoding.len()).expect("a leaf is under 4 GiB");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(encoding);
    }

    /// The leaves of `leaves`, framed.
    pub fn of(leaves: &PageLeaves) -> Self {
        let mut f = FramedLeaves::default();
        match leaves {
            PageLeaves::Capsule(c) => f.push(c),
            PageLeaves::Connections(v) => v.iter().for_each(|l| f.push(l)),
            PageLeaves::Memories(v) => v.iter().for_each(|l| f.push(l)),
            PageLeaves::Blobs(v) => v.iter().for_each(|l| f.push(l)),
        }
        f
    }

    /// Total size in bytes, prefixes included.
    pub fn byte_len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each leaf's canonical encoding, in order; an error where a frame is cut short.
    pub fn frames(&self) -> Frames<'_> {
        Frames { rest: &self.0 }
    }

    /// Number of leaves (checks the framing, decodes no leaf).
    pub fn count(&self) -> Result<usize> {
        self.frames().try_fold(0, |n, f| f.map(|_| n + 1))
    }

    /// The leaves, decoded, as the section's [`PageLeaves`]. A capsule page holds exactly
    /// one leaf.
    pub fn decode(&self, section: Section) -> Result<PageLeaves> {
        fn all<L: Leaf>(f: &FramedLeaves) -> Result<Vec<L>> {
            f.frames().map(|b| L::decode(b?)).collect()
        }
        Ok(match section {
            Section::Capsule => {
                let mut v: Vec<CapsuleLeaf> = all(self)?;
                if v.len() != 1 {
                    return Err(ManifestError::DecodeError {
                        what: "capsule page".into(),
                        message: format!("{} capsule leaves, expected 1", v.len()),
                    });
                }
                PageLeaves::Capsule(v.remove(0))
            }
            Section::Connections => PageLeaves::Connections(all::<ConnectionLeaf>(self)?),
            Section::Memories => PageLeaves::Memories(all::<MemoryLeaf>(self)?),
            Section::Blobs => PageLeaves::Blobs(all::<BlobLeaf>(self)?),
        })
    }
}

/// The frames of [`FramedLeaves`], see [`FramedLeaves::frames`].
pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let cut = || ManifestError::DecodeError {
            what: "framed leaves".into(),
            message: "a frame is cut short".into(),
        };
        let Some((len, body)) = self.rest.split_first_chunk::<FRAME_PREFIX_BYTES>() else {
            self.rest = &[];
            return Some(Err(cut()));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if body.len() < len {
            self.rest = &[];
            return Some(Err(cut()));
        }
        let (frame, rest) = body.split_at(len);
        self.rest = rest;
        Some(Ok(frame))
    }
}

/// A page of one section with its leaves as framed canonical bytes: a `ManifestPage` that
/// is not decoded.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct RawPage {
    pub section: Section,
    /// Index, in its section, of the first leaf.
    pub start: u64,
    pub leaves: FramedLeaves,
    /// Where the next page starts, `None` after the last page.
    pub next: Option<PageCursor>,
}

impl RawPage {
    /// Where this page starts.
    pub fn cursor(&self) -> PageCursor {
        PageCursor {
            section: self.section,
            index: self.start,
        }
    }

    /// `page` with its leaves encoded.
    pub fn of(page: &ManifestPage) -> Self {
        RawPage {
            section: page.leaves.section(),
            start: page.start,
            leaves: FramedLeaves::of(&page.leaves),
            next: page.next,
        }
    }

    /// The page with its leaves decoded.
    pub fn decode(&self) -> Result<ManifestPage> {
        Ok(ManifestPage {
            start: self.start,
            leaves: self.leaves.decode(self.section)?,
            next: self.next,
        })
    }
}

/// The reply of the exporter's raw page query: the manifest header and one `RawPage`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct RawPageReply {
    pub header: ManifestHeader,
    pub page: RawPage,
}
