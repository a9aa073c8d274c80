//! Stable encodings of the store's records (schema version 2).
//!
//! Schema 2 added the per-owner totals ([`OwnerKey`] → [`OwnerTotals`]), the expiry index
//! ([`ExpiryKey`]) and the expiry time at the end of [`UploadMeta`]; `BlobStore::init`
//! migrates a schema-1 store by building them from the open sessions.
//!
//! Keys are fixed-size and big-endian, so byte order equals the derived `Ord` and ranges over
//! `(blob, index)` or `(upload, index)` come out in index order. Values are `Unbounded` so a
//! later schema may append fields; decoders read the fields they know.
//!
//! Records are only ever written by this crate, so a record that does not decode means the
//! memory is not this store's (or is corrupt): decoding panics (a trap on the IC, which rolls
//! the message back) rather than guess.

use std::borrow::Cow;

use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;

use crate::hash::Hash;
use crate::types::{UploadId, UploadKind};

/// Reads fixed-width fields from a record, panicking on a short record.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, what }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        if self.bytes.len() < n {
            panic!("blobstore: corrupt {} record (too short)", self.what);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N));
        out
    }

    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A stored chunk: where its bytes are, the position its hash was verified at, its users.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkEntry {
    /// Slot in the chunk data area.
    pub slot: u64,
    /// Length in bytes (1..=CHUNK_SIZE).
    pub len: u32,
    /// Index in the blob the hash was computed for (the hash depends on the offset).
    pub index: u32,
    /// Whether the chunk is a whole single-chunk blob (its hash is then a root hash).
    pub single: bool,
    /// Blob positions plus open-session positions using the chunk.
    pub refs: u64,
}

impl Storable for ChunkEntry {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(25);
        v.extend_from_slice(&self.slot.to_be_bytes());
        v.extend_from_slice(&self.len.to_be_bytes());
        v.extend_from_slice(&self.index.to_be_bytes());
        v.push(u8::from(self.single));
        v.extend_from_slice(&self.refs.to_be_bytes());
        v
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "chunk entry");
        Self {
            slot: r.u64(),
            len: r.u32(),
            index: r.u32(),
            single: r.u8() != 0,
            refs: r.u64(),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// A stored blob's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlobMeta {
    pub size: u64,
    pub chunk_count: u64,
    pub refs: u64,
}

impl Storable for BlobMeta {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24);
        v.extend_from_slice(&self.size.to_be_bytes());
        v.extend_from_slice(&self.chunk_count.to_be_bytes());
        v.extend_from_slice(&self.refs.to_be_bytes());
        v
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "blob");
        Self {
            size: r.u64(),
            chunk_count: r.u64(),
            refs: r.u64(),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// Key of a blob's chunk list entry: `(blob hash, chunk index)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BlobChunkKey {
    pub blob: Hash,
    pub index: u32,
}

impl Storable for BlobChunkKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(36);
        v.extend_from_slice(&self.blob);
        v.extend_from_slice(&self.index.to_be_bytes());
        v
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "blob chunk key");
        Self {
            blob: r.array(),
            index: r.u32(),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 36,
        is_fixed_size: true,
    };
}

/// Key of a session's chunk entry: `(upload id, chunk index)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct UploadChunkKey {
    pub upload: UploadId,
    pub index: u32,
}

impl Storable for UploadChunkKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(12);
        v.extend_from_slice(&self.upload.to_be_bytes());
        v.extend_from_slice(&self.index.to_be_bytes());
        v
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "upload chunk key");
        Self {
            upload: r.u64(),
            index: r.u32(),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 12,
        is_fixed_size: true,
    };
}

/// A session's chunk entry. In a plain upload only received chunks have one; an import has
/// one per chunk from the start, with `present` telling whether the session holds it yet.
/// A present entry holds one reference on the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UploadChunk {
    pub hash: Hash,
    pub present: bool,
}

impl Storable for UploadChunk {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(33);
        v.extend_from_slice(&self.hash);
        v.push(u8::from(self.present));
        v
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "upload chunk");
        Self {
            hash: r.array(),
            present: r.u8() != 0,
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

const KIND_UPLOAD: u8 = 0;
const KIND_UPLOAD_EXPECTED: u8 = 1;
const KIND_IMPORT: u8 = 2;

/// Encodes "never expires" in [`UploadMeta`]'s expiry field.
const NEVER: u64 = u64::MAX;

/// An open session's record.
///
/// Layout: kind tag u8 | hash [32] | size | chunk count | received | created (u64 BE) |
/// owner length u8 | owner | expiry u64 BE (schema 2; `u64::MAX` = never). A schema-1 record
/// ends after the owner and decodes with `expires_ns: None`; the schema-2 migration rewrites
/// every record with its expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UploadMeta {
    pub owner: Vec<u8>,
    pub kind: UploadKind,
    pub size: u64,
    pub chunk_count: u64,
    pub received: u64,
    pub created_ns: u64,
    /// When the session may be expired; `None` for imports (never).
    pub expires_ns: Option<u64>,
}

impl Storable for UploadMeta {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        let (tag, hash) = match &self.kind {
            UploadKind::Upload { expected: None } => (KIND_UPLOAD, [0u8; 32]),
            UploadKind::Upload {
                expected: Some(hash),
            } => (KIND_UPLOAD_EXPECTED, *hash),
            UploadKind::Import { blob } => (KIND_IMPORT, *blob),
        };
        let mut v = Vec::with_capacity(66 + self.owner.len());
        v.push(tag);
        v.extend_from_slice(&hash);
        v.extend_from_slice(&self.size.to_be_bytes());
        v.extend_from_slice(&self.chunk_count.to_be_bytes());
        v.extend_from_slice(&self.received.to_be_bytes());
        v.extend_from_slice(&self.created_ns.to_be_bytes());
        // The store bounds owners to MAX_OWNER_LEN (< 256) bytes.
        v.push(self.owner.len() as u8);
        v.extend_from_slice(&self.owner);
        v.extend_from_slice(&self.expires_ns.unwrap_or(NEVER).to_be_bytes());
        Cow::Owned(v)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "upload");
        let tag = r.u8();
        let hash: Hash = r.array();
        let kind = match tag {
            KIND_UPLOAD => UploadKind::Upload { expected: None },
            KIND_UPLOAD_EXPECTED => UploadKind::Upload {
                expected: Some(hash),
            },
            KIND_IMPORT => UploadKind::Import { blob: hash },
            other => panic!("blobstore: corrupt upload record (kind {other})"),
        };
        let size = r.u64();
        let chunk_count = r.u64();
        let received = r.u64();
        let created_ns = r.u64();
        let owner_len = r.u8() as usize;
        let owner = r.take(owner_len).to_vec();
        let expires_ns = if r.is_empty() {
            None // Schema 1.
        } else {
            Some(r.u64()).filter(|t| *t != NEVER)
        };
        Self {
            owner,
            kind,
            size,
            chunk_count,
            received,
            created_ns,
            expires_ns,
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

/// Key of the expiry index: `(expiry time, upload id)`, so the index runs earliest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ExpiryKey {
    pub expires_ns: u64,
    pub upload: UploadId,
}

impl Storable for ExpiryKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&self.expires_ns.to_be_bytes());
        v.extend_from_slice(&self.upload.to_be_bytes());
        v
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "expiry key");
        Self {
            expires_ns: r.u64(),
            upload: r.u64(),
        }
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: 16,
        is_fixed_size: true,
    };
}

/// Key of the per-owner totals: the owner's id bytes (at most `MAX_OWNER_LEN`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct OwnerKey(pub Vec<u8>);

impl Storable for OwnerKey {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        Self(bytes.into_owned())
    }

    const BOUND: Bound = Bound::Bounded {
        max_size: crate::store::MAX_OWNER_LEN as u32,
        is_fixed_size: false,
    };
}

/// An owner's open sessions: how many, and the sum of their declared sizes. Only owners with
/// at least one open session have an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OwnerTotals {
    pub sessions: u64,
    pub declared_bytes: u64,
}

impl Storable for OwnerTotals {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(&self.sessions.to_be_bytes());
        v.extend_from_slice(&self.declared_bytes.to_be_bytes());
        v
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        let mut r = Reader::new(&bytes, "owner totals");
        Self {
            sessions: r.u64(),
            declared_bytes: r.u64(),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Storable + Clone + PartialEq + std::fmt::Debug>(value: T) {
        let bytes = value.to_bytes().into_owned();
        assert_eq!(T::from_bytes(Cow::Owned(bytes)), value);
    }

    #[test]
    fn records_round_trip() {
        round_trip(ChunkEntry {
            slot: 7,
            len: 262_144,
            index: 3,
            single: false,
            refs: u64::MAX,
        });
        round_trip(BlobMeta {
            size: 1 << 40,
            chunk_count: 4,
            refs: 2,
        });
        round_trip(BlobChunkKey {
            blob: [9; 32],
            index: u32::MAX,
        });
        round_trip(UploadChunkKey {
            upload: 5,
            index: 1,
        });
        round_trip(UploadChunk {
            hash: [1; 32],
            present: true,
        });
        for (kind, expires_ns) in [
            (UploadKind::Upload { expected: None }, Some(5)),
            (
                UploadKind::Upload {
                    expected: Some([3; 32]),
                },
                Some(u64::MAX - 1),
            ),
            (UploadKind::Import { blob: [4; 32] }, None),
        ] {
            round_trip(UploadMeta {
                owner: vec![1, 2, 3],
                kind,
                size: 10,
                chunk_count: 1,
                received: 0,
                created_ns: 99,
                expires_ns,
            });
        }
        round_trip(ExpiryKey {
            expires_ns: 7,
            upload: u64::MAX,
        });
        round_trip(OwnerKey(vec![9; 29]));
        round_trip(OwnerTotals {
            sessions: 16,
            declared_bytes: 1 << 33,
        });
    }

    #[test]
    fn a_schema_1_upload_record_decodes_without_expiry() {
        let meta = UploadMeta {
            owner: b"alice".to_vec(),
            kind: UploadKind::Upload { expected: None },
            size: 10,
            chunk_count: 1,
            received: 1,
            created_ns: 42,
            expires_ns: Some(1_000),
        };
        let mut bytes = meta.to_bytes().into_owned();
        bytes.truncate(bytes.len() - 8); // What schema 1 wrote.
        let old = UploadMeta::from_bytes(Cow::Owned(bytes));
        assert_eq!(
            old,
            UploadMeta {
                expires_ns: None,
                ..meta
            }
        );
    }

    #[test]
    fn key_bytes_sort_like_keys() {
        let a = BlobChunkKey {
            blob: [1; 32],
            index: 255,
        };
        let b = BlobChunkKey {
            blob: [1; 32],
            index: 256,
        };
        assert!(a < b && a.to_bytes() < b.to_bytes());
        let c = UploadChunkKey {
            upload: 1,
            index: u32::MAX,
        };
        let d = UploadChunkKey {
            upload: 2,
            index: 0,
        };
        assert!(c < d && c.to_bytes() < d.to_bytes());
        let e = ExpiryKey {
            expires_ns: 1,
            upload: u64::MAX,
        };
        let f = ExpiryKey {
            expires_ns: 256,
            upload: 0,
        };
        assert!(e < f && e.to_bytes() < f.to_bytes());
    }
}
