//! The capsule store seen as a manifest: records ↔ manifest leaves, the manifest of a capsule
//! built in bounded steps ([`ManifestWalk`]), and the import side that writes verified leaves and
//! chunks into a store.
//!
//! The same walk serves both ends of a migration: the exporter runs it over the capsule it
//! freezes, the importer runs it over what it stored (the chunk hashes it verified on arrival
//! and the records it wrote, re-encoded), and the two roots must be equal.

use std::borrow::Cow;

use blobstore::hash::{Hash, to_hex};
use candid::{CandidType, Principal};
use ic_stable_structures::Memory as StableMemory;
use manifests::encoding::memory_id_of_encoding;
use manifests::{
    BlobLeaf, BlobRefLeaf, CapsuleLeaf, CapsuleSettingsLeaf, ConnectionLeaf, EncryptionLeaf,
    FramedLeaves, Leaf, ManifestBuilder, ManifestError, ManifestHeader, MemoryLeaf, PageLeaves,
    Section,
};
use serde::{Deserialize, Serialize};
use serde_bytes::{ByteArray, ByteBuf};

use crate::error::{CapsuleResult, Error};
use crate::store::{CapsuleRecord, CapsuleStore};
use crate::types::*;

// ------------------------------------------------------------------ records → leaves

impl From<&CapsuleRecord> for CapsuleLeaf {
    fn from(r: &CapsuleRecord) -> Self {
        CapsuleLeaf {
            owner: r.owner,
            name: r.name.clone(),
            bio: r.bio.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            settings: CapsuleSettingsLeaf {
                public_profile: r.settings.public_profile,
                locale: r.settings.locale.clone(),
            },
        }
    }
}

impl From<Memory> for MemoryLeaf {
    /// The leaf of a memory read for a manifest: its strings move, nothing is copied.
    fn from(m: Memory) -> Self {
        MemoryLeaf {
            id: m.id,
            title: m.title,
            description: m.description,
            tags: m.tags,
            kind: m.kind.as_str().to_string(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            blobs: m
                .blobs
                .into_iter()
                .map(|b| BlobRefLeaf {
                    hash: b.hash.into_array(),
                    size: b.size,
                    mime_type: b.mime_type,
                })
                .collect(),
            encryption: m.encryption.map(|e| EncryptionLeaf {
                scheme: e.scheme,
                wrapped_key: e.wrapped_key.into_vec(),
            }),
        }
    }
}

impl From<&Memory> for MemoryLeaf {
    fn from(m: &Memory) -> Self {
        MemoryLeaf {
            id: m.id,
            title: m.title.clone(),
            description: m.description.clone(),
            tags: m.tags.clone(),
            kind: m.kind.as_str().to_string(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            blobs: m
                .blobs
                .iter()
                .map(|b| BlobRefLeaf {
                    hash: b.hash.into_array(),
                    size: b.size,
                    mime_type: b.mime_type.clone(),
                })
                .collect(),
            encryption: m.encryption.as_ref().map(|e| EncryptionLeaf {
                scheme: e.scheme.clone(),
                wrapped_key: e.wrapped_key.to_vec(),
            }),
        }
    }
}

impl From<&Connection> for ConnectionLeaf {
    fn from(c: &Connection) -> Self {
        ConnectionLeaf {
            peer: c.peer,
            relationship: c.relationship.clone(),
            status: c.status.as_str().to_string(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

// ------------------------------------------------------------------ leaves → records

impl TryFrom<MemoryLeaf> for Memory {
    type Error = Error;

    /// The memory of a leaf: its strings move, nothing is copied.
    fn try_from(l: MemoryLeaf) -> Result<Self, Error> {
        let kind = memory_kind(&l)?;
        Ok(Memory {
            id: l.id,
            title: l.title,
            description: l.description,
            tags: l.tags,
            kind,
            created_at: l.created_at,
            updated_at: l.updated_at,
            blobs: l
                .blobs
                .into_iter()
                .map(|b| BlobRef {
                    hash: ByteArray::new(b.hash),
                    size: b.size,
                    mime_type: b.mime_type,
                })
                .collect(),
            encryption: l.encryption.map(|e| EncryptionEnvelope {
                scheme: e.scheme,
                wrapped_key: ByteBuf::from(e.wrapped_key),
            }),
        })
    }
}

/// The kind a memory leaf names, or why it is refused.
fn memory_kind(l: &MemoryLeaf) -> Result<MemoryKind, Error> {
    MemoryKind::parse(&l.kind).ok_or_else(|| Error::ImportRejected {
        reason: format!("memory {} has unknown kind {:?}", l.id, l.kind),
    })
}

impl TryFrom<&ConnectionLeaf> for Connection {
    type Error = Error;

    fn try_from(l: &ConnectionLeaf) -> Result<Self, Error> {
        let status = ConnectionStatus::parse(&l.status).ok_or_else(|| Error::ImportRejected {
            reason: format!(
                "connection with {} has unknown status {:?}",
                l.peer, l.status
            ),
        })?;
        Ok(Connection {
            peer: l.peer,
            relationship: l.relationship.clone(),
            status,
            created_at: l.created_at,
            updated_at: l.updated_at,
        })
    }
}

// ------------------------------------------------------------------ the manifest walk

/// Where a [`ManifestWalk`] stands: the section it is in and the last key it emitted.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum WalkPosition {
    Capsule,
    Connections { after: Option<Principal> },
    Memories { after: Option<u64> },
    Blobs { after: Option<ByteArray<32>> },
    Done { header: Box<ManifestHeader> },
}

/// Builds the manifest of one capsule over as many messages as needed: each [`ManifestWalk::step`]
/// handles at most a given number of leaves, and the walk (a few hundred bytes) is stored between
/// steps. The capsule must not change while the walk runs (the exporter freezes it).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ManifestWalk {
    pub owner: Principal,
    builder: ManifestBuilder,
    position: WalkPosition,
}

impl ManifestWalk {
    pub fn new(owner: Principal) -> Self {
        ManifestWalk {
            owner,
            builder: ManifestBuilder::new(),
            position: WalkPosition::Capsule,
        }
    }

    pub fn position(&self) -> &WalkPosition {
        &self.position
    }

    /// The header, once the walk is done.
    pub fn header(&self) -> Option<&ManifestHeader> {
        match &self.position {
            WalkPosition::Done { header } => Some(header.as_ref()),
            _ => None,
        }
    }

    /// Emits up to `budget` leaves (at least one unless done) to `sink`, in manifest order and
    /// in batches of one section, and returns the header when the walk has finished.
    pub fn step<M: StableMemory>(
        &mut self,
        store: &CapsuleStore<M>,
        budget: usize,
        mut sink: impl FnMut(&PageLeaves),
    ) -> CapsuleResult<Option<ManifestHeader>> {
        self.step_framed(store, budget, |section, framed| {
            let leaves = framed
                .decode(section)
                .unwrap_or_else(|e| panic!("capsule store: a stored leaf does not decode: {e}"));
            sink(&leaves)
        })
    }

    /// [`ManifestWalk::step`] whose sink gets the leaves framed ([`FramedLeaves`]), with their
    /// section. Each leaf is encoded at most once, for its hash and for what the sink stores;
    /// memories are not encoded at all: the store holds their canonical encodings.
    pub fn step_framed<M: StableMemory>(
        &mut self,
        store: &CapsuleStore<M>,
        budget: usize,
        mut sink: impl FnMut(Section, &FramedLeaves),
    ) -> CapsuleResult<Option<ManifestHeader>> {
        let mut left = budget.max(1);
        while left > 0 {
            let mut framed = FramedLeaves::default();
            let (section, count, next) = match &self.position {
                WalkPosition::Done { header } => return Ok(Some(*header.clone())),
                WalkPosition::Capsule => {
                    let leaf = store
                        .capsule_leaf(self.owner)
                        .ok_or(Error::CapsuleNotFound)?;
                    framed.push(&leaf);
                    let next = WalkPosition::Connections { after: None };
                    (Section::Capsule, 1, Some(next))
                }
                WalkPosition::Connections { after } => {
                    let v = store.connection_leaves(self.owner, *after, left);
                    v.iter().for_each(|l| framed.push(l));
                    let next = match v.last() {
                        Some(last) if v.len() == left => WalkPosition::Connections {
                            after: Some(last.peer),
                        },
                        _ => WalkPosition::Memories { after: None },
                    };
                    (Section::Connections, v.len(), Some(next))
                }
                WalkPosition::Memories { after } => {
                    let v = store.memory_encodings_after(self.owner, *after, left);
                    v.iter().for_each(|e| framed.push_frame(e));
                    let next = match v.last() {
                        Some(last) if v.len() == left => WalkPosition::Memories {
                            after: Some(memory_id_of_encoding(last).map_err(manifest_error)?),
                        },
                        _ => WalkPosition::Blobs { after: None },
                    };
                    (Section::Memories, v.len(), Some(next))
                }
                WalkPosition::Blobs { after } => {
                    let v = store.blob_leaves(self.owner, after.map(|h| h.into_array()), left);
                    v.iter().for_each(|l| framed.push(l));
                    // The last section: after a short batch the walk is done (`None`).
                    let next = match v.last() {
                        Some(last) if v.len() == left => Some(WalkPosition::Blobs {
                            after: Some(ByteArray::new(last.hash)),
                        }),
                        _ => None,
                    };
                    (Section::Blobs, v.len(), next)
                }
            };
            self.builder
                .push_stored(section, &framed)
                .map_err(manifest_error)?;
            left = left.saturating_sub(count.max(1));
            if count > 0 {
                sink(section, &framed);
            }
            self.position = match next {
                Some(next) => next,
                None => WalkPosition::Done {
                    header: Box::new(self.builder.finish().map_err(manifest_error)?),
                },
            };
        }
        Ok(self.header().cloned())
    }

    /// Runs [`ManifestWalk::step`] with units of at most `unit` leaves, one after another while
    /// `one_more` (asked after each unit) says so: at least one unit, so every call makes
    /// progress. Returns the header when the walk has finished.
    pub fn step_while<M: StableMemory>(
        &mut self,
        store: &CapsuleStore<M>,
        unit: usize,
        mut one_more: impl FnMut() -> bool,
        mut sink: impl FnMut(Section, &FramedLeaves),
    ) -> CapsuleResult<Option<ManifestHeader>> {
        loop {
            if let Some(header) = self.step_framed(store, unit, &mut sink)? {
                return Ok(Some(header));
            }
            if !one_more() {
                return Ok(None);
            }
        }
    }
}

/// One of the blob store's ways to open an import session (`begin_import`,
/// `begin_expiring_import`): owner, blob hash, size, chunk hashes, now → upload id.
type BeginImport<M> = fn(
    &mut blobstore::BlobStore<M>,
    &[u8],
    Hash,
    u64,
    Vec<Hash>,
    u64,
) -> Result<u64, blobstore::BlobError>;

fn manifest_error(e: ManifestError) -> Error {
    Error::ImportRejected {
        reason: e.to_string(),
    }
}

// ------------------------------------------------------------------ store: leaves out, leaves in

impl<M: StableMemory> CapsuleStore<M> {
    /// The capsule's metadata leaf.
    pub fn capsule_leaf(&self, owner: Principal) -> Option<CapsuleLeaf> {
        self.capsule_record(owner).as_ref().map(CapsuleLeaf::from)
    }

    /// Up to `limit` connection leaves of `owner` after `after`, in manifest order.
    pub fn connection_leaves(
        &self,
        owner: Principal,
        after: Option<Principal>,
        limit: usize,
    ) -> Vec<ConnectionLeaf> {
        self.connections_after(owner, after, limit)
            .iter()
            .map(ConnectionLeaf::from)
            .collect()
    }

    /// Up to `limit` memory leaves of `owner` after id `after`, in id order.
    pub fn memory_leaves(
        &self,
        owner: Principal,
        after: Option<u64>,
        limit: usize,
    ) -> Vec<MemoryLeaf> {
        self.memories_after(owner, after, limit)
            .into_iter()
            .map(MemoryLeaf::from)
            .collect()
    }

    /// Up to `limit` blob leaves of `owner` after hash `after`, in hash order, from the chunk
    /// hashes the blob store holds (verified when the chunks arrived).
    pub fn blob_leaves(
        &self,
        owner: Principal,
        after: Option<Hash>,
        limit: usize,
    ) -> Vec<BlobLeaf> {
        self.blobs_after(owner, after, limit)
            .into_iter()
            .filter_map(|hash| {
                let info = self.blob_store().blob(&hash)?;
                let chunk_hashes = self.blob_store().blob_chunk_hashes(&hash)?;
                Some(BlobLeaf {
                    hash,
                    size: info.size,
                    chunk_hashes,
                })
            })
            .collect()
    }

    /// Writes the capsule leaf of an import: creates the owner's capsule, frozen with `reason`
    /// until the import finishes. An existing capsule of that owner must be empty.
    pub fn import_capsule(&mut self, leaf: &CapsuleLeaf, reason: &str) -> CapsuleResult<()> {
        let mut rec = match self.capsule_record(leaf.owner) {
            Some(rec) => {
                if rec.memory_count > 0 || rec.connection_count > 0 {
                    return Err(Error::ImportRejected {
                        reason: "the capsule already holds memories or connections".into(),
                    });
                }
                rec
            }
            None => CapsuleRecord::empty(leaf.owner, leaf.created_at),
        };
        rec.name = leaf.name.clone();
        rec.bio = leaf.bio.clone();
        rec.settings = CapsuleSettings {
            public_profile: leaf.settings.public_profile,
            locale: leaf.settings.locale.clone(),
        };
        rec.created_at = leaf.created_at;
        rec.updated_at = leaf.updated_at;
        rec.frozen = Some(reason.to_string());
        self.put_record(rec);
        Ok(())
    }

    /// Writes an imported connection as it was (timestamps included).
    pub fn import_connection(
        &mut self,
        owner: Principal,
        leaf: &ConnectionLeaf,
    ) -> CapsuleResult<()> {
        self.import_connections(owner, std::slice::from_ref(leaf))
            .map_err(|(_, e)| e)
    }

    /// Writes imported connections in order; the capsule record is read and written once.
    /// On error, returns the index of the leaf that failed: the ones before it are written
    /// (a repeat skips them), nothing after it is.
    pub fn import_connections(
        &mut self,
        owner: Principal,
        leaves: &[ConnectionLeaf],
    ) -> Result<(), (usize, Error)> {
        self.import_leaves(owner, leaves, |store, rec, leaf| {
            let conn = Connection::try_from(leaf)?;
            if store.put_connection_if_absent(rec.owner, conn) {
                rec.connection_count += 1;
            }
            Ok(())
        })
    }

    /// Writes an imported memory with its id; every blob it references must have been imported.
    pub fn import_memory(&mut self, owner: Principal, leaf: &MemoryLeaf) -> CapsuleResult<()> {
        self.import_memories(owner, std::slice::from_ref(leaf))
            .map_err(|(_, e)| e)
    }

    /// Writes imported memories in order (see [`CapsuleStore::import_memory`]); the capsule
    /// record is read and written once. On error, returns the index of the leaf that failed:
    /// the ones before it are written (a repeat skips them), nothing after it is.
    pub fn import_memories(
        &mut self,
        owner: Principal,
        leaves: &[MemoryLeaf],
    ) -> Result<(), (usize, Error)> {
        self.write_imported_memories(
            owner,
            leaves
                .iter()
                .map(|l| Ok((Cow::Borrowed(l), Cow::Owned(l.encode())))),
        )
    }

    /// [`CapsuleStore::import_memories`] for memories in their canonical leaf encoding (the
    /// bytes of a verified manifest): each is decoded for the checks and stored as it came,
    /// not encoded again. Bytes that are not a memory leaf are refused like an invalid leaf.
    pub fn import_memory_encodings(
        &mut self,
        owner: Principal,
        encodings: &[&[u8]],
    ) -> Result<(), (usize, Error)> {
        self.write_imported_memories(
            owner,
            encodings.iter().map(|bytes| {
                let leaf = MemoryLeaf::decode(bytes).map_err(manifest_error)?;
                Ok((Cow::Owned(leaf), Cow::Borrowed(*bytes)))
            }),
        )
    }

    /// Checks `memories` (leaf and canonical encoding) in order and writes the valid ones
    /// before the first refused one together (one write per bucket of ids); returns the index
    /// of the refused one with its error.
    fn write_imported_memories<'a>(
        &mut self,
        owner: Principal,
        memories: impl Iterator<Item = CapsuleResult<(Cow<'a, MemoryLeaf>, Cow<'a, [u8]>)>>,
    ) -> Result<(), (usize, Error)> {
        let mut rec = self.record_of(owner).map_err(|e| (0, e))?;
        let before = rec.clone();
        let mut valid = Vec::new();
        let mut refused = None;
        for (i, m) in memories.enumerate() {
            match m
                .and_then(|(leaf, enc)| self.check_importable(owner, &leaf).map(|()| (leaf, enc)))
            {
                Ok(m) => valid.push(m),
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
        }
        let entries: Vec<(u64, &[u8])> = valid.iter().map(|(l, enc)| (l.id, &enc[..])).collect();
        let new = self.put_memories_if_absent(owner, &entries);
        for ((leaf, _), new) in valid.iter().zip(new) {
            if !new {
                continue; // Imported before a restart: nothing to do.
            }
            for b in &leaf.blobs {
                self.attach_blob(owner, &b.hash);
            }
            rec.memory_count += 1;
            rec.next_memory_id = rec.next_memory_id.max(leaf.id + 1);
        }
        if rec != before {
            self.put_record(rec);
        }
        refused.map_or(Ok(()), Err)
    }

    /// Writes `leaves` in order with `put`, which updates the owner's capsule record in
    /// memory; the record is read once and written once, if `put` changed it. Stops at the
    /// first leaf `put` refuses and returns its index with the error.
    fn import_leaves<L>(
        &mut self,
        owner: Principal,
        leaves: &[L],
        mut put: impl FnMut(&mut Self, &mut CapsuleRecord, &L) -> CapsuleResult<()>,
    ) -> Result<(), (usize, Error)> {
        let mut rec = self.record_of(owner).map_err(|e| (0, e))?;
        let before = rec.clone();
        let mut result = Ok(());
        for (i, leaf) in leaves.iter().enumerate() {
            if let Err(e) = put(self, &mut rec, leaf) {
                result = Err((i, e));
                break;
            }
        }
        if rec != before {
            self.put_record(rec);
        }
        result
    }

    /// Checks that `leaf` is a memory this store can hold: a known kind, and blobs held by
    /// `owner`'s capsule with the sizes the leaf declares.
    fn check_importable(&self, owner: Principal, leaf: &MemoryLeaf) -> CapsuleResult<()> {
        memory_kind(leaf)?;
        for b in &leaf.blobs {
            let size = self.held_blob_size(owner, &b.hash)?;
            if size != b.size {
                return Err(Error::BlobSizeMismatch {
                    hash: to_hex(&b.hash),
                    declared: b.size,
                    actual: size,
                });
            }
        }
        Ok(())
    }

    /// Starts importing a blob whose chunk hashes come from a verified manifest. Chunks the
    /// store holds already are linked at once; returns the upload and the chunk indices still
    /// to transfer (empty when the blob is held already).
    pub fn begin_blob_import(
        &mut self,
        owner: Principal,
        leaf: &BlobLeaf,
        now: u64,
    ) -> CapsuleResult<(u64, Vec<u64>)> {
        self.begin_leaf_import(owner, leaf, now, blobstore::BlobStore::begin_import)
    }

    /// [`CapsuleStore::begin_blob_import`] for a restore the owner drives (an archive brought
    /// back): the session expires like a plain upload, so an abandoned restore does not hold
    /// its room (and a place among the store's open sessions) forever.
    pub fn begin_blob_restore(
        &mut self,
        owner: Principal,
        leaf: &BlobLeaf,
        now: u64,
    ) -> CapsuleResult<(u64, Vec<u64>)> {
        self.begin_leaf_import(
            owner,
            leaf,
            now,
            blobstore::BlobStore::begin_expiring_import,
        )
    }

    /// Opens an import session for `leaf` with `begin` (one of the blob store's two kinds).
    fn begin_leaf_import(
        &mut self,
        owner: Principal,
        leaf: &BlobLeaf,
        now: u64,
        begin: BeginImport<M>,
    ) -> CapsuleResult<(u64, Vec<u64>)> {
        self.record_of(owner)?;
        let upload = begin(
            self.blob_store_mut(),
            owner.as_slice(),
            leaf.hash,
            leaf.size,
            leaf.chunk_hashes.clone(),
            now,
        )?;
        let missing = self.blob_store().missing_chunks(upload)?;
        Ok((upload, missing))
    }

    /// Stores one transferred chunk after checking it hashes to the manifest's value at `index`.
    pub fn put_imported_chunk(
        &mut self,
        owner: Principal,
        upload: u64,
        index: u64,
        bytes: &[u8],
    ) -> CapsuleResult<()> {
        Ok(self
            .blob_store_mut()
            .put_verified_chunk(owner.as_slice(), upload, index, bytes)?)
    }

    /// Finishes a blob import: the capsule now holds the blob (its `updated_at` is kept).
    pub fn finish_blob_import(
        &mut self,
        owner: Principal,
        upload: u64,
    ) -> CapsuleResult<BlobDescriptor> {
        self.finish_upload_for(owner, upload, None)
    }
}
