//! [`ManifestBuilder`]: builds a manifest header from leaves pushed section by section, in
//! canonical order, with O(log n) state that a canister persists between messages.

use crate::encoding::{ENCODING_VERSION, Leaf, leaf_hash_of_encoding, memory_id_of_encoding};
use crate::error::{ManifestError, Result};
use crate::merkle::MerkleAccumulator;
use crate::model::{
    BlobLeaf, CapsuleLeaf, ConnectionLeaf, ManifestHeader, MemoryLeaf, Section, peer_order,
};
use crate::pages::PageLeaves;
use crate::raw::FramedLeaves;
use blobstore::hash::{Hash, chunk_count, merge_chunk_hashes, to_hex};
use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Builds a [`ManifestHeader`] incrementally.
///
/// Push the capsule leaf first, then connections sorted by peer ([`peer_order`]), memories
/// sorted by id, blobs sorted by hash; a section with no leaves is simply skipped. Each push
/// checks order, uniqueness and (for blobs) that hash, size and chunk hashes agree, and adds
/// the leaf hash to its section's [`MerkleAccumulator`]. A push that fails changes nothing.
///
/// The state is small (a few dozen hashes) and is `CandidType` + serde: a backend timer can
/// store it (e.g. with [`ManifestBuilder::to_bytes`]) after each batch of leaves and resume in the
/// next message, so a capsule with 100,000 memories is built over as many messages as needed.
/// [`ManifestBuilder::finish`] gives the header at the end.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ManifestBuilder {
    section: Section,
    owner: Option<Principal>,
    #[serde(with = "crate::serde_hex::hash_opt")]
    capsule_root: Option<Hash>,
    connections: MerkleAccumulator,
    memories: MerkleAccumulator,
    blobs: MerkleAccumulator,
    last_peer: Option<Principal>,
    last_memory_id: Option<u64>,
    #[serde(with = "crate::serde_hex::hash_opt")]
    last_blob: Option<Hash>,
    total_blob_bytes: u64,
    total_chunks: u64,
}

impl Default for ManifestBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ManifestBuilder {
    /// A builder expecting the capsule leaf.
    pub fn new() -> Self {
        ManifestBuilder {
            section: Section::Capsule,
            owner: None,
            capsule_root: None,
            connections: MerkleAccumulator::new(),
            memories: MerkleAccumulator::new(),
            blobs: MerkleAccumulator::new(),
            last_peer: None,
            last_memory_id: None,
            last_blob: None,
            total_blob_bytes: 0,
            total_chunks: 0,
        }
    }

    /// The section of the last leaf pushed (`Capsule` at the start).
    pub fn section(&self) -> Section {
        self.section
    }

    /// The capsule owner, once the capsule leaf was pushed.
    pub fn owner(&self) -> Option<Principal> {
        self.owner
    }

    /// Number of leaves pushed into `section`.
    pub fn count(&self, section: Section) -> u64 {
        match section {
            Section::Capsule => self.capsule_root.is_some() as u64,
            Section::Connections => self.connections.count(),
            Section::Memories => self.memories.count(),
            Section::Blobs => self.blobs.count(),
        }
    }

    /// Sum of the sizes of the blob leaves pushed so far.
    pub fn total_blob_bytes(&self) -> u64 {
        self.total_blob_bytes
    }

    /// Sum of the chunk counts of the blob leaves pushed so far.
    pub fn total_chunks(&self) -> u64 {
        self.total_chunks
    }

    /// The root of `section` over the leaves pushed so far (`None` for the capsule before its
    /// leaf).
    pub fn section_root(&self, section: Section) -> Option<Hash> {
        match section {
            Section::Capsule => self.capsule_root,
            Section::Connections => Some(self.connections.section_root(section)),
            Section::Memories => Some(self.memories.section_root(section)),
            Section::Blobs => Some(self.blobs.section_root(section)),
        }
    }

    /// Checks that a leaf of `section` may come now.
    fn enter(&self, section: Section) -> Result<()> {
        match (self.capsule_root, section) {
            (None, Section::Capsule) => Ok(()),
            (None, _) => Err(ManifestError::MissingCapsule),
            (Some(_), Section::Capsule) => Err(ManifestError::Duplicate {
                section,
                index: 1,
                key: self.owner.map(|p| p.to_text()).unwrap_or_default(),
            }),
            (Some(_), _) if section < self.section => Err(ManifestError::SectionOrder {
                section,
                current: self.section,
            }),
            _ => Ok(()),
        }
    }

    fn order<K>(
        section: Section,
        index: u64,
        previous: Option<K>,
        key: K,
        cmp: impl Fn(&K, &K) -> Ordering,
        show: impl Fn(&K) -> String,
    ) -> Result<()> {
        match previous.as_ref().map(|p| cmp(p, &key)) {
            None | Some(Ordering::Less) => Ok(()),
            Some(Ordering::Equal) => Err(ManifestError::Duplicate {
                section,
                index,
                key: show(&key),
            }),
            Some(Ordering::Greater) => Err(ManifestError::OutOfOrder {
                section,
                index,
                key: show(&key),
                previous: show(previous.as_ref().expect("compared")),
            }),
        }
    }

    /// Pushes the capsule leaf (first, exactly once).
    pub fn push_capsule(&mut self, leaf: &CapsuleLeaf) -> Result<()> {
        self.push_capsule_hashed(leaf, leaf.leaf_hash())
    }

    /// [`ManifestBuilder::push_capsule`] with the leaf's hash computed by the caller (from the
    /// canonical bytes it holds).
    fn push_capsule_hashed(&mut self, leaf: &CapsuleLeaf, hash: Hash) -> Result<()> {
        self.enter(Section::Capsule)?;
        self.owner = Some(leaf.owner);
        self.capsule_root = Some(crate::merkle::section_root(
            Section::Capsule,
            1,
            Some(&hash),
        ));
        Ok(())
    }

    /// Pushes the next connection (peers strictly increasing in [`peer_order`]).
    pub fn push_connection(&mut self, leaf: &ConnectionLeaf) -> Result<()> {
        self.push_connection_hashed(leaf, leaf.leaf_hash())
    }

    fn push_connection_hashed(&mut self, leaf: &ConnectionLeaf, hash: Hash) -> Result<()> {
        self.enter(Section::Connections)?;
        Self::order(
            Section::Connections,
            self.connections.count(),
            self.last_peer,
            leaf.peer,
            peer_order,
            Principal::to_text,
        )?;
        self.connections.push(hash);
        self.last_peer = Some(leaf.peer);
        self.section = Section::Connections;
        Ok(())
    }

    /// Pushes the next memory (ids strictly increasing).
    pub fn push_memory(&mut self, leaf: &MemoryLeaf) -> Result<()> {
        self.push_memory_hashed(leaf, leaf.leaf_hash())
    }

    fn push_memory_hashed(&mut self, leaf: &MemoryLeaf, hash: Hash) -> Result<()> {
        self.push_memory_id_hashed(leaf.id, hash)
    }

    /// Pushes the memory leaf with id `id` and leaf hash `hash`.
    fn push_memory_id_hashed(&mut self, id: u64, hash: Hash) -> Result<()> {
        self.enter(Section::Memories)?;
        Self::order(
            Section::Memories,
            self.memories.count(),
            self.last_memory_id,
            id,
            u64::cmp,
            u64::to_string,
        )?;
        self.memories.push(hash);
        self.last_memory_id = Some(id);
        self.section = Section::Memories;
        Ok(())
    }

    /// Pushes the next blob (hashes strictly increasing, bytewise). Checks that the chunk
    /// hashes match the size and merge into the blob hash.
    pub fn push_blob(&mut self, leaf: &BlobLeaf) -> Result<()> {
        self.push_blob_hashed(leaf, leaf.leaf_hash())
    }

    fn push_blob_hashed(&mut self, leaf: &BlobLeaf, hash: Hash) -> Result<()> {
        self.enter(Section::Blobs)?;
        Self::order(
            Section::Blobs,
            self.blobs.count(),
            self.last_blob,
            leaf.hash,
            Hash::cmp,
            to_hex,
        )?;
        check_blob(leaf)?;
        let total_blob_bytes = self
            .total_blob_bytes
            .checked_add(leaf.size)
            .ok_or_else(|| ManifestError::Overflow {
                what: "total blob bytes".into(),
            })?;
        let total_chunks = self
            .total_chunks
            .checked_add(leaf.chunk_hashes.len() as u64)
            .ok_or_else(|| ManifestError::Overflow {
                what: "total chunks".into(),
            })?;
        self.blobs.push(hash);
        self.last_blob = Some(leaf.hash);
        self.total_blob_bytes = total_blob_bytes;
        self.total_chunks = total_chunks;
        self.section = Section::Blobs;
        Ok(())
    }

    /// Pushes a page's leaves, all or none: on error the builder is unchanged.
    pub fn push_leaves(&mut self, leaves: &PageLeaves) -> Result<()> {
        self.push_leaves_framed(leaves).map(drop)
    }

    /// [`ManifestBuilder::push_leaves`], returning the leaves framed: each leaf is encoded once,
    /// and the bytes hashed are the bytes returned (what an exporter stores and serves).
    pub fn push_leaves_framed(&mut self, leaves: &PageLeaves) -> Result<FramedLeaves> {
        let mut next = self.clone();
        let mut f = FramedLeaves::default();
        match leaves {
            PageLeaves::Capsule(c) => {
                let h = f.push_hashed(c);
                next.push_capsule_hashed(c, h)?
            }
            PageLeaves::Connections(v) => v.iter().try_for_each(|l| {
                let h = f.push_hashed(l);
                next.push_connection_hashed(l, h)
            })?,
            PageLeaves::Memories(v) => v.iter().try_for_each(|l| {
                let h = f.push_hashed(l);
                next.push_memory_hashed(l, h)
            })?,
            PageLeaves::Blobs(v) => v.iter().try_for_each(|l| {
                let h = f.push_hashed(l);
                next.push_blob_hashed(l, h)
            })?,
        }
        *self = next;
        Ok(f)
    }

    /// Pushes the leaf of `section` whose canonical encoding is `bytes`: decoded for the
    /// checks (order, blob consistency, totals), hashed over `bytes` as they are, so the leaf
    /// is not encoded again. On error the builder is unchanged.
    pub fn push_encoded(&mut self, section: Section, bytes: &[u8]) -> Result<()> {
        let hash = leaf_hash_of_encoding(section, bytes);
        match section {
            Section::Capsule => self.push_capsule_hashed(&CapsuleLeaf::decode(bytes)?, hash),
            Section::Connections => {
                self.push_connection_hashed(&ConnectionLeaf::decode(bytes)?, hash)
            }
            Section::Memories => self.push_memory_hashed(&MemoryLeaf::decode(bytes)?, hash),
            Section::Blobs => self.push_blob_hashed(&BlobLeaf::decode(bytes)?, hash),
        }
    }

    /// Pushes leaves of `section` that a store wrote as canonical encodings (its own records,
    /// not bytes received), all or none: each is hashed over its bytes as they are. Memory
    /// leaves, the many, are read for their id only (the order check); the other kinds are
    /// decoded for their checks as in [`ManifestBuilder::push_encoded`].
    pub fn push_stored(&mut self, section: Section, leaves: &FramedLeaves) -> Result<()> {
        let mut next = self.clone();
        for bytes in leaves.frames() {
            let bytes = bytes?;
            if section == Section::Memories {
                let id = memory_id_of_encoding(bytes)?;
                next.push_memory_id_hashed(id, leaf_hash_of_encoding(section, bytes))?;
            } else {
                next.push_encoded(section, bytes)?;
            }
        }
        *self = next;
        Ok(())
    }

    /// The header of the leaves pushed so far (all sections after the last one pushed are
    /// empty). Does not consume the builder.
    pub fn finish(&self) -> Result<ManifestHeader> {
        let (Some(owner), Some(capsule_root)) = (self.owner, self.capsule_root) else {
            return Err(ManifestError::MissingCapsule);
        };
        let mut header = ManifestHeader {
            version: ENCODING_VERSION,
            owner,
            connection_count: self.connections.count(),
            memory_count: self.memories.count(),
            blob_count: self.blobs.count(),
            total_blob_bytes: self.total_blob_bytes,
            total_chunks: self.total_chunks,
            capsule_root,
            connections_root: self.connections.section_root(Section::Connections),
            memories_root: self.memories.section_root(Section::Memories),
            blobs_root: self.blobs.section_root(Section::Blobs),
            root: [0; 32],
        };
        header.root = header.compute_root();
        Ok(header)
    }

    /// The builder's state as candid bytes, to store between messages.
    pub fn to_bytes(&self) -> Vec<u8> {
        candid::encode_one(self).expect("a builder always encodes")
    }

    /// Restores a state saved with [`ManifestBuilder::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let b: Self = candid::decode_one(bytes).map_err(|e| ManifestError::DecodeError {
            what: "manifest builder state".into(),
            message: e.to_string(),
        })?;
        if [&b.connections, &b.memories, &b.blobs]
            .iter()
            .all(|a| a.is_well_formed())
        {
            Ok(b)
        } else {
            Err(ManifestError::DecodeError {
                what: "manifest builder state".into(),
                message: "an accumulator's stack does not match its count".into(),
            })
        }
    }
}

/// Checks that a blob leaf's hash, size and chunk hashes agree.
pub fn check_blob(leaf: &BlobLeaf) -> Result<()> {
    let expected = chunk_count(leaf.size);
    if leaf.chunk_hashes.len() as u64 != expected {
        return Err(ManifestError::BlobInconsistent {
            hash: leaf.hash,
            reason: format!(
                "{} bytes make {expected} chunks but the leaf lists {} chunk hashes",
                leaf.size,
                leaf.chunk_hashes.len()
            ),
        });
    }
    let merged = merge_chunk_hashes(&leaf.chunk_hashes);
    if merged != leaf.hash {
        return Err(ManifestError::BlobInconsistent {
            hash: leaf.hash,
            reason: format!(
                "its chunk hashes merge to {}, not to the blob hash",
                to_hex(&merged)
            ),
        });
    }
    Ok(())
}
