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

pub use crate::codec::{DecodeFault, Decoder, Encoder, LenCounter, Sink};
use crate::merkle;
use crate::model::{
    BlobLeaf, BlobRefLeaf, CapsuleLeaf, ConnectionLeaf, EncryptionLeaf, MemoryLeaf,
};
use crate::section::Section;
use blobstore::hash::Hash;

/// Version of the leaf encoding and tree layout; part of the header and of the root.
pub const ENCODING_VERSION: u32 = 1;

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

    /// The leaf hash: BLAKE3 of the encoding in this kind's domain. The encoding is written
    /// to a buffer first and hashed in one update: a leaf has a dozen small fields, and each
    /// update of the hasher has a fixed cost.
    fn leaf_hash(&self) -> Hash {
        let mut bytes = Vec::with_capacity(256);
        self.encode_into(&mut bytes);
        leaf_hash_of_encoding(Self::SECTION, &bytes)
    }

    /// Reads one leaf from the front of `d` (the inverse of [`Leaf::encode_into`]).
    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeFault>
    where
        Self: Sized;

    /// The leaf whose canonical encoding is exactly `bytes`.
    fn decode(bytes: &[u8]) -> crate::Result<Self>
    where
        Self: Sized,
    {
        let mut d = Decoder::new(bytes);
        let leaf = Self::decode_from(&mut d).and_then(|l| d.finish().map(|()| l));
        leaf.map_err(|e| crate::ManifestError::DecodeError {
            what: format!("{} leaf", Self::SECTION),
            message: e.to_string(),
        })
    }
}

/// The hash of the leaf of `section` whose canonical encoding is `bytes`: equal to
/// [`Leaf::leaf_hash`] of that leaf, without decoding it.
pub fn leaf_hash_of_encoding(section: Section, bytes: &[u8]) -> Hash {
    let mut hasher = merkle::leaf_hasher(section);
    hasher.update(bytes);
    *hasher.finalize().as_bytes()
}

/// The id of the memory leaf whose canonical encoding is `bytes` (its first field), without
/// decoding the rest.
pub fn memory_id_of_encoding(bytes: &[u8]) -> crate::Result<u64> {
    Decoder::new(bytes)
        .u64()
        .map_err(|e| crate::ManifestError::DecodeError {
            what: format!("{} leaf", Section::Memories),
            message: e.to_string(),
        })
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

    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeFault> {
        Ok(CapsuleLeaf {
            owner: d.principal()?,
            name: d.str()?,
            bio: d.str()?,
            created_at: d.u64()?,
            updated_at: d.u64()?,
            settings: crate::model::CapsuleSettingsLeaf {
                public_profile: d.bool()?,
                locale: d.str()?,
            },
        })
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

    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeFault> {
        Ok(ConnectionLeaf {
            peer: d.principal()?,
            relationship: d.str()?,
            status: d.str()?,
            created_at: d.u64()?,
            updated_at: d.u64()?,
        })
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

    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeFault> {
        let id = d.u64()?;
        let title = d.str()?;
        let description = d.str()?;
        let tags = (0..d.count()?).map(|_| d.str()).collect::<Result<_, _>>()?;
        let kind = d.str()?;
        let created_at = d.u64()?;
        let updated_at = d.u64()?;
        let blobs = (0..d.count()?)
            .map(|_| {
                Ok(BlobRefLeaf {
                    hash: d.hash()?,
                    size: d.u64()?,
                    mime_type: d.str()?,
                })
            })
            .collect::<Result<_, _>>()?;
        let encryption = if d.bool()? {
            Some(EncryptionLeaf {
                scheme: d.str()?,
                wrapped_key: d.bytes()?.to_vec(),
            })
        } else {
            None
        };
        Ok(MemoryLeaf {
            id,
            title,
            description,
            tags,
            kind,
            created_at,
            updated_at,
            blobs,
            encryption,
        })
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

    fn decode_from(d: &mut Decoder<'_>) -> Result<Self, DecodeFault> {
        Ok(BlobLeaf {
            hash: d.hash()?,
            size: d.u64()?,
            chunk_hashes: (0..d.count()?)
                .map(|_| d.hash())
                .collect::<Result<_, _>>()?,
        })
    }
}
