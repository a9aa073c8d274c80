//! The canonical byte encoding of every leaf. This module is the only definition of it.
//!
//! Candid is not canonical (field order, LEB128 widths and type tables vary between encoders),
//! so leaves are hashed over this simple encoding instead:
//!
//! | value | bytes |
//! |---|---|
//! | `u64` | 8 bytes little-endian |
//! | `bool` | 1 byte, `0` or `1` |
//! | byte string, UTF-8 string | length as `u32` little-endian, then the bytes |
//! | principal | its raw bytes as a byte string (`u32` length + bytes) |
//! | hash | the 32 bytes, no length |
//! | `Option<T>` | `0`, or `1` followed by `T` |
//! | `Vec<T>` | element count as `u32` little-endian, then the elements |
//! | record | its fields in the order listed below, nothing between them |
//!
//! Leaves, field by field:
//!
//! - [`CapsuleLeaf`]: owner (principal), name, bio, created_at, updated_at,
//!   settings.public_profile (bool), settings.locale.
//! - [`ConnectionLeaf`]: peer (principal), relationship, status, created_at, updated_at.
//! - [`MemoryLeaf`]: id, title, description, tags (vec of strings), kind, created_at,
//!   updated_at, blobs (vec of {hash, size, mime_type}), encryption (option of {scheme,
//!   wrapped_key (byte string)}).
//! - [`BlobLeaf`]: hash, size, chunk_hashes (vec of hashes).
//!
//! Every length and count must be below 2^32 (a canister cannot hold a 4 GiB string).
//! The leaf kind is not part of the bytes: it enters the leaf hash as a BLAKE3 key-derivation
//! context ([`crate::merkle`]), so equal bytes of two kinds hash differently. Any change to this
//! encoding or to the tree layout must bump [`ENCODING_VERSION`], which enters the root.

use crate::merkle;
use crate::model::{BlobLeaf, CapsuleLeaf, ConnectionLeaf, MemoryLeaf, Section};
use blobstore::hash::Hash;
use candid::Principal;

/// Version of the leaf encoding and tree layout; part of the header and of the root.
pub const ENCODING_VERSION: u32 = 1;

/// Where encoded bytes go: a buffer, a hasher, or a length counter.
pub trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for blake3::Hasher {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Counts bytes without storing them.
#[derive(Default)]
pub struct LenCounter(pub usize);

impl Sink for LenCounter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// Writes the primitives of the encoding into a [`Sink`].
pub struct Encoder<'a, S: Sink>(pub &'a mut S);

impl<S: Sink> Encoder<'_, S> {
    pub fn u64(&mut self, v: u64) {
        self.0.put(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.0.put(&v.to_le_bytes());
    }

    pub fn bool(&mut self, v: bool) {
        self.0.put(&[v as u8]);
    }

    /// A length or count as `u32`.
    ///
    /// # Panics
    /// If `n >= 2^32`, which no canister can hold.
    pub fn len(&mut self, n: usize) {
        let n = u32::try_from(n).expect("manifest encoding: length or count >= 2^32");
        self.u32(n);
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.0.put(v);
    }

    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    pub fn principal(&mut self, p: &Principal) {
        self.bytes(p.as_slice());
    }

    pub fn hash(&mut self, h: &Hash) {
        self.0.put(h);
    }
}

/// A manifest leaf: its section, canonical encoding, hash and sort key.
pub trait Leaf {
    /// The section this kind of leaf belongs to (and its hashing domain).
    const SECTION: Section;

    /// Writes the canonical encoding into `sink`.
    fn encode_into<S: Sink>(&self, sink: &mut S);

    /// The canonical encoding.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Length of the canonical encoding, without building it.
    fn encoded_len(&self) -> usize {
        let mut counter = LenCounter::default();
        self.encode_into(&mut counter);
        counter.0
    }

    /// The leaf hash: BLAKE3 of the encoding in this kind's domain.
    fn leaf_hash(&self) -> Hash {
        let mut hasher = merkle::leaf_hasher(Self::SECTION);
        self.encode_into(&mut hasher);
        *hasher.finalize().as_bytes()
    }
}

impl Leaf for CapsuleLeaf {
    const SECTION: Section = Section::Capsule;

    fn encode_into<S: Sink>(&self, sink: &mut S) {
        let mut e = Encoder(sink);
        e.principal(&self.owner);
        e.str(&self.name);
        e.str(&self.bio);
        e.u64(self.created_at);
        e.u64(self.updated_at);
        e.bool(self.settings.public_profile);
        e.str(&self.settings.locale);
    }
}

impl Leaf for ConnectionLeaf {
    const SECTION: Section = Section::Connections;

    fn encode_into<S: Sink>(&self, sink: &mut S) {
        let mut e = Encoder(sink);
        e.principal(&self.peer);
        e.str(&self.relationship);
        e.str(&self.status);
        e.u64(self.created_at);
        e.u64(self.updated_at);
    }
}

impl Leaf for MemoryLeaf {
    const SECTION: Section = Section::Memories;

    fn encode_into<S: Sink>(&self, sink: &mut S) {
        let mut e = Encoder(sink);
        e.u64(self.id);
        e.str(&self.title);
        e.str(&self.description);
        e.len(self.tags.len());
        for tag in &self.tags {
            e.str(tag);
        }
        e.str(&self.kind);
        e.u64(self.created_at);
        e.u64(self.updated_at);
        e.len(self.blobs.len());
        for blob in &self.blobs {
            e.hash(&blob.hash);
            e.u64(blob.size);
            e.str(&blob.mime_type);
        }
        match &self.encryption {
            None => e.bool(false),
            Some(enc) => {
                e.bool(true);
                e.str(&enc.scheme);
                e.bytes(&enc.wrapped_key);
            }
        }
    }
}

impl Leaf for BlobLeaf {
    const SECTION: Section = Section::Blobs;

    fn encode_into<S: Sink>(&self, sink: &mut S) {
        let mut e = Encoder(sink);
        e.hash(&self.hash);
        e.u64(self.size);
        e.len(self.chunk_hashes.len());
        for h in &self.chunk_hashes {
            e.hash(h);
        }
    }
}
