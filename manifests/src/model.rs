//! The manifest model: the leaves (one record per capsule, connection, memory and blob), the
//! sections they belong to, the header that commits to all of them, and [`Manifest`], a whole
//! manifest in memory (for tools and tests; canisters build and check manifests page by page).
//!
//! Every hash field is a `blob` in candid and lower-case hex in JSON (see [`crate::serde_hex`]);
//! principals are `principal` in candid and text in JSON.

use blobstore::hash::{Hash, blob_hashes};
use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};

use crate::codec::Encoder;
pub use crate::section::Section;

/// The capsule's own metadata: exactly one per manifest, the first leaf.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CapsuleLeaf {
    /// The capsule's owner; equals [`ManifestHeader::owner`].
    pub owner: Principal,
    pub name: String,
    pub bio: String,
    /// Nanoseconds since the Unix epoch (IC time).
    pub created_at: u64,
    pub updated_at: u64,
    pub settings: CapsuleSettingsLeaf,
}

/// Capsule settings, part of [`CapsuleLeaf`].
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CapsuleSettingsLeaf {
    pub public_profile: bool,
    pub locale: String,
}

/// A memory's metadata and its references to blobs. Sorted by `id`, ids unique.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct MemoryLeaf {
    pub id: u64,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// `"note"`, `"photo"`, `"video"`, `"document"`, ...
    pub kind: String,
    pub created_at: u64,
    pub updated_at: u64,
    /// The memory's blobs, in the memory's own order (the order is part of the leaf).
    pub blobs: Vec<BlobRefLeaf>,
    pub encryption: Option<EncryptionLeaf>,
}

/// A memory's reference to a blob: the blob's hash (`b3sum` of its bytes), size and MIME type.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct BlobRefLeaf {
    #[serde(with = "crate::serde_hex::hash")]
    pub hash: Hash,
    pub size: u64,
    pub mime_type: String,
}

/// The envelope of an encrypted memory: the scheme and the wrapped (encrypted) content key.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct EncryptionLeaf {
    pub scheme: String,
    #[serde(with = "crate::serde_hex::bytes")]
    pub wrapped_key: Vec<u8>,
}

/// A connection from the capsule owner to a peer. Sorted by `peer` (see [`peer_order`]),
/// peers unique.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLeaf {
    pub peer: Principal,
    pub relationship: String,
    /// `"pending"`, `"accepted"`, `"blocked"`.
    pub status: String,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A blob's content commitment: its hash, size and the hashes of its 256 KiB chunks
/// ([`blobstore::hash`]). One per distinct blob referenced by any memory, sorted by `hash`
/// (bytewise). `hash` must equal `merge_chunk_hashes(chunk_hashes)` and the number of chunk
/// hashes must equal `chunk_count(size)`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct BlobLeaf {
    #[serde(with = "crate::serde_hex::hash")]
    pub hash: Hash,
    pub size: u64,
    #[serde(with = "crate::serde_hex::hash_vec")]
    pub chunk_hashes: Vec<Hash>,
}

impl BlobLeaf {
    /// The blob leaf of `bytes` (hashes every byte; for tools and tests).
    pub fn from_bytes(bytes: &[u8]) -> BlobLeaf {
        let (hash, chunk_hashes) = blob_hashes(bytes);
        BlobLeaf {
            hash,
            size: bytes.len() as u64,
            chunk_hashes,
        }
    }
}

/// The canonical order of connections: by the peer principal's length, then its bytes.
///
/// This is exactly `candid::Principal`'s `Ord`, so a `BTreeMap<Principal, _>` (or a stable
/// B-tree keyed by principal) iterates connections in manifest order.
pub fn peer_order(a: &Principal, b: &Principal) -> std::cmp::Ordering {
    let (a, b) = (a.as_slice(), b.as_slice());
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The header of a manifest: counts, totals, the section roots and the root.
///
/// `root` commits to every other field, and the section roots commit to the leaves (see
/// [`crate::merkle`]); [`ManifestHeader::compute_root`] recomputes it from the fields.
/// The root is the migration's identity.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ManifestHeader {
    /// [`crate::ENCODING_VERSION`] of the leaf encoding and tree layout.
    pub version: u32,
    pub owner: Principal,
    pub connection_count: u64,
    pub memory_count: u64,
    pub blob_count: u64,
    /// Sum of the sizes of the distinct blobs (the blobs section).
    pub total_blob_bytes: u64,
    /// Sum of the chunk counts of the distinct blobs.
    pub total_chunks: u64,
    #[serde(with = "crate::serde_hex::hash")]
    pub capsule_root: Hash,
    #[serde(with = "crate::serde_hex::hash")]
    pub connections_root: Hash,
    #[serde(with = "crate::serde_hex::hash")]
    pub memories_root: Hash,
    #[serde(with = "crate::serde_hex::hash")]
    pub blobs_root: Hash,
    #[serde(with = "crate::serde_hex::hash")]
    pub root: Hash,
}

impl ManifestHeader {
    /// Number of leaves in `section` (always 1 for the capsule).
    pub fn count(&self, section: Section) -> u64 {
        match section {
            Section::Capsule => 1,
            Section::Connections => self.connection_count,
            Section::Memories => self.memory_count,
            Section::Blobs => self.blob_count,
        }
    }

    /// Root of `section`.
    pub fn section_root(&self, section: Section) -> Hash {
        match section {
            Section::Capsule => self.capsule_root,
            Section::Connections => self.connections_root,
            Section::Memories => self.memories_root,
            Section::Blobs => self.blobs_root,
        }
    }

    /// Recomputes the root from the header's other fields: `H_root` over the version, the
    /// owner, the counts and totals and the four section roots ([`crate::merkle`]).
    pub fn compute_root(&self) -> Hash {
        let mut h = crate::merkle::hasher(crate::merkle::Domain::Root);
        let mut e = Encoder(&mut h);
        e.u32(self.version);
        e.principal(&self.owner);
        e.u64(self.connection_count);
        e.u64(self.memory_count);
        e.u64(self.blob_count);
        e.u64(self.total_blob_bytes);
        e.u64(self.total_chunks);
        e.hash(&self.capsule_root);
        e.hash(&self.connections_root);
        e.hash(&self.memories_root);
        e.hash(&self.blobs_root);
        *h.finalize().as_bytes()
    }
}

/// A whole manifest in memory: the header and every leaf, each section in canonical order.
///
/// Build one with [`Manifest::from_leaves`] (sorts, then builds) or [`Manifest::from_pages`]
/// (verifies pages against a header); check one read from elsewhere with [`Manifest::verify`].
/// This is also the JSON form written by `manifest show --json`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub header: ManifestHeader,
    pub capsule: CapsuleLeaf,
    pub connections: Vec<ConnectionLeaf>,
    pub memories: Vec<MemoryLeaf>,
    pub blobs: Vec<BlobLeaf>,
}
