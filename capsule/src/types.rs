//! The capsule API types, identical on the backend and on every personal canister.
//!
//! Hashes travel as candid `blob` (32 bytes, [`Hash32`]); bulk bytes as `blob` too
//! (`serde_bytes::ByteBuf`), never as `vec nat8`, which costs ~67 instructions per byte to decode.

use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};
use serde_bytes::{ByteArray, ByteBuf};

/// A 32-byte BLAKE3 value (a blob hash or a chunk hash), candid `blob`.
pub type Hash32 = ByteArray<32>;

/// Identifier of a memory inside its capsule (assigned by the capsule, never reused).
pub type MemoryId = u64;

/// Identifier of a blob upload session.
pub type UploadId = u64;

/// Settings of a capsule.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct CapsuleSettings {
    /// Whether the owner's profile (name and bio) may be shown to connections.
    pub public_profile: bool,
    /// The owner's preferred locale, e.g. `en-GB` (free text, bounded).
    pub locale: String,
}

/// A capsule as returned by the API.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CapsuleInfo {
    pub owner: Principal,
    pub name: String,
    pub bio: String,
    pub settings: CapsuleSettings,
    pub created_at: u64,
    pub updated_at: u64,
    pub memory_count: u64,
    pub connection_count: u64,
    pub blob_count: u64,
    /// Sum of the sizes of the distinct blobs the capsule holds.
    pub blob_bytes: u64,
    /// On the shared backend, after a completed move: the personal canister that now holds the
    /// capsule. This copy is read-only (writes answer `CapsuleMoved`) until it is purged.
    pub moved_to: Option<Principal>,
}

/// Arguments of `create_capsule`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct CapsuleInput {
    pub name: String,
    pub bio: String,
    pub settings: Option<CapsuleSettings>,
}

/// Arguments of `update_capsule`; `None` leaves a field as it is.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct CapsuleUpdate {
    pub name: Option<String>,
    pub bio: Option<String>,
    pub settings: Option<CapsuleSettings>,
}

/// What a memory is.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryKind {
    Note,
    Photo,
    Video,
    Audio,
    Document,
    Other,
}

impl MemoryKind {
    /// The stable lower-case name used in manifests.
    pub fn as_str(&self) -> &'static str {
        match self {
            MemoryKind::Note => "note",
            MemoryKind::Photo => "photo",
            MemoryKind::Video => "video",
            MemoryKind::Audio => "audio",
            MemoryKind::Document => "document",
            MemoryKind::Other => "other",
        }
    }

    /// Inverse of [`MemoryKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "note" => MemoryKind::Note,
            "photo" => MemoryKind::Photo,
            "video" => MemoryKind::Video,
            "audio" => MemoryKind::Audio,
            "document" => MemoryKind::Document,
            "other" => MemoryKind::Other,
            _ => return None,
        })
    }
}

/// A reference from a memory to a blob the capsule holds.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    /// The blob's BLAKE3 hash (what `b3sum` prints for the file).
    pub hash: Hash32,
    pub size: u64,
    pub mime_type: String,
}

/// Key material of client-side encrypted content; moved byte for byte, never interpreted.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct EncryptionEnvelope {
    /// Name of the scheme, e.g. `x25519-xsalsa20poly1305`.
    pub scheme: String,
    pub wrapped_key: ByteBuf,
}

/// A memory as returned by the API.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    pub id: MemoryId,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub kind: MemoryKind,
    pub created_at: u64,
    pub updated_at: u64,
    pub blobs: Vec<BlobRef>,
    pub encryption: Option<EncryptionEnvelope>,
}

/// Arguments of `add_memory`. Blobs must have been uploaded to the capsule first.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct MemoryInput {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub kind: MemoryKind,
    pub blobs: Vec<BlobRef>,
    pub encryption: Option<EncryptionEnvelope>,
}

/// Arguments of `update_memory`; `None` leaves a field as it is.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct MemoryUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    pub kind: Option<MemoryKind>,
    pub blobs: Option<Vec<BlobRef>>,
    /// `Some(None)` removes the envelope.
    pub encryption: Option<Option<EncryptionEnvelope>>,
}

/// A page of memories: ids after `start_after` (exclusive), at most `limit` of them.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct MemoryPageRequest {
    pub start_after: Option<MemoryId>,
    pub limit: u32,
}

/// A page of connections: peers after `start_after` (exclusive), at most `limit` of them.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnectionPageRequest {
    pub start_after: Option<Principal>,
    pub limit: u32,
}

/// A page of memories; `next` is the `start_after` for the following page.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct MemoryPage {
    pub items: Vec<Memory>,
    pub next: Option<MemoryId>,
}

/// State of a connection between the owner and a peer.
#[derive(CandidType, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionStatus {
    Pending,
    Accepted,
    Blocked,
}

impl ConnectionStatus {
    /// The stable lower-case name used in manifests.
    pub fn as_str(&self) -> &'static str {
        match self {
            ConnectionStatus::Pending => "pending",
            ConnectionStatus::Accepted => "accepted",
            ConnectionStatus::Blocked => "blocked",
        }
    }

    /// Inverse of [`ConnectionStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ConnectionStatus::Pending,
            "accepted" => ConnectionStatus::Accepted,
            "blocked" => ConnectionStatus::Blocked,
            _ => return None,
        })
    }
}

/// A connection as returned by the API.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub peer: Principal,
    /// Free text such as `friend`, `sister`, `colleague` (bounded).
    pub relationship: String,
    pub status: ConnectionStatus,
    pub created_at: u64,
    pub updated_at: u64,
}

/// Arguments of `add_connection`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ConnectionInput {
    pub peer: Principal,
    pub relationship: String,
    pub status: ConnectionStatus,
}

/// Arguments of `update_connection`; `None` leaves a field as it is.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct ConnectionUpdate {
    pub relationship: Option<String>,
    pub status: Option<ConnectionStatus>,
}

/// A page of connections, ordered by peer.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ConnectionPage {
    pub items: Vec<Connection>,
    pub next: Option<Principal>,
}

/// Arguments of `begin_blob_upload`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct BlobUploadRequest {
    /// Exact size of the blob in bytes; fixes the number and sizes of its 256 KiB chunks.
    pub size: u64,
    /// The BLAKE3 hash the finished blob must have (`b3sum` of the file), if known.
    pub expected_hash: Option<Hash32>,
}

/// A blob held by the capsule.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct BlobDescriptor {
    pub hash: Hash32,
    pub size: u64,
    /// The chunk hashes in order (BLAKE3 chaining values at their offsets).
    pub chunk_hashes: Vec<Hash32>,
    /// How many memories of the capsule reference the blob.
    pub memory_refs: u64,
}
