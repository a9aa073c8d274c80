//! [`ManifestError`]: what went wrong while building, paging or verifying a manifest, and what
//! to do about it.

use crate::section::{PageCursor, Section};
use blobstore::hash::{Hash, to_hex};
use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};

/// Every error of this crate. A failed call changes nothing: builders and verifiers keep the
/// state they had before the call, so the caller can fix the input and retry.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The leaves recompute a root different from the header's.
    #[error(
        "manifest root mismatch: the header says {}, the leaves give {}; the leaves or the header were altered or come from another export: fetch the manifest again from the exporter",
        to_hex(expected),
        to_hex(actual)
    )]
    RootMismatch {
        #[serde(with = "crate::serde_hex::hash")]
        expected: Hash,
        #[serde(with = "crate::serde_hex::hash")]
        actual: Hash,
    },
    /// A section's leaves recompute a section root different from the header's.
    #[error(
        "{section} section root mismatch: the header says {}, the leaves give {}; some {section} leaf was altered: fetch the manifest again from the exporter",
        to_hex(expected),
        to_hex(actual)
    )]
    SectionRootMismatch {
        section: Section,
        #[serde(with = "crate::serde_hex::hash")]
        expected: Hash,
        #[serde(with = "crate::serde_hex::hash")]
        actual: Hash,
    },
    /// The header's `root` is not the root of its own fields.
    #[error(
        "inconsistent header: its root field is {} but its fields hash to {}; the header was altered: fetch it again",
        to_hex(claimed),
        to_hex(computed)
    )]
    HeaderInconsistent {
        #[serde(with = "crate::serde_hex::hash")]
        claimed: Hash,
        #[serde(with = "crate::serde_hex::hash")]
        computed: Hash,
    },
    /// The header's root is not the root this manifest was expected to have (e.g. the root in
    /// the personal canister's init arguments).
    #[error(
        "unexpected manifest: its root is {} but {} was expected; this is another export: ask for the manifest of the expected migration",
        to_hex(actual),
        to_hex(expected)
    )]
    UnexpectedRoot {
        #[serde(with = "crate::serde_hex::hash")]
        expected: Hash,
        #[serde(with = "crate::serde_hex::hash")]
        actual: Hash,
    },
    /// A manifest of an encoding version this code does not know.
    #[error(
        "unsupported manifest encoding version {version} (this code supports {supported}): use a tool built for that version"
    )]
    UnsupportedVersion { version: u32, supported: u32 },
    /// A section's leaf count differs from the header's (or from what was pushed).
    #[error(
        "{section}: expected {expected} leaves, got {actual}; leaves are missing or extra: fetch the section again"
    )]
    CountMismatch {
        section: Section,
        expected: u64,
        actual: u64,
    },
    /// A leaf's key is not greater than the previous leaf's key in its section.
    #[error(
        "{section}: leaf {index} has key {key}, not after the previous key {previous}; push leaves sorted by key (connections by peer, memories by id, blobs by hash)"
    )]
    OutOfOrder {
        section: Section,
        index: u64,
        key: String,
        previous: String,
    },
    /// Two leaves of a section have the same key.
    #[error("{section}: duplicate key {key} at leaf {index}; each key may appear once")]
    Duplicate {
        section: Section,
        index: u64,
        key: String,
    },
    /// Leaves of `section` after leaves of the later section `current` (or a second capsule).
    #[error(
        "{section} leaves arrive after {current} leaves; sections go in order capsule, connections, memories, blobs"
    )]
    SectionOrder { section: Section, current: Section },
    /// Leaves before the capsule leaf, or a manifest finished without one.
    #[error("the capsule leaf is missing; it must come first, exactly once")]
    MissingCapsule,
    /// The capsule's owner differs from the header's owner.
    #[error(
        "the capsule's owner {capsule} differs from the header's owner {header}: the page belongs to another capsule"
    )]
    OwnerMismatch {
        header: Principal,
        capsule: Principal,
    },
    /// A blob leaf whose hash, size and chunk hashes do not agree.
    #[error(
        "blob {}: {reason}; recompute the blob's chunk hashes from its stored chunks",
        to_hex(hash)
    )]
    BlobInconsistent {
        #[serde(with = "crate::serde_hex::hash")]
        hash: Hash,
        reason: String,
    },
    /// A memory references a blob that the blobs section does not contain.
    #[error(
        "memory {memory_id} references blob {} which is not in the blobs section: add its blob leaf",
        to_hex(hash)
    )]
    MissingBlob {
        memory_id: u64,
        #[serde(with = "crate::serde_hex::hash")]
        hash: Hash,
    },
    /// A memory's reference gives a size different from the blob leaf's.
    #[error(
        "memory {memory_id} says blob {} has {memory_size} bytes, its blob leaf says {blob_size}: fix the memory's blob reference",
        to_hex(hash)
    )]
    BlobSizeMismatch {
        memory_id: u64,
        #[serde(with = "crate::serde_hex::hash")]
        hash: Hash,
        memory_size: u64,
        blob_size: u64,
    },
    /// A blob leaf that no memory references.
    #[error("blob {} is referenced by no memory: drop its blob leaf", to_hex(hash))]
    UnreferencedBlob {
        #[serde(with = "crate::serde_hex::hash")]
        hash: Hash,
    },
    /// A page other than the one expected next (dropped, repeated or reordered page).
    #[error(
        "unexpected page at {actual}; expected {}: request pages in order, starting from the cursor the previous page gave",
        expected.as_ref().map_or("no more pages".to_string(), |c| c.to_string())
    )]
    UnexpectedPage {
        expected: Option<PageCursor>,
        actual: PageCursor,
    },
    /// A page whose `next` cursor is not the position right after it.
    #[error(
        "page at {at} says the next page is {}, but it should be {}: the exporter pages wrongly",
        show_cursor(actual),
        show_cursor(expected)
    )]
    BadNextCursor {
        at: PageCursor,
        expected: Option<PageCursor>,
        actual: Option<PageCursor>,
    },
    /// A page with no leaves.
    #[error("empty page at {at}: every page carries at least one leaf")]
    EmptyPage { at: PageCursor },
    /// A cursor that points outside the manifest.
    #[error(
        "cursor {cursor} is outside the manifest ({count} leaves in that section): start again from the first page"
    )]
    BadCursor { cursor: PageCursor, count: u64 },
    /// Verification finished before all pages arrived.
    #[error("the manifest is incomplete: the next page is {next}; fetch the remaining pages")]
    Incomplete { next: PageCursor },
    /// A sum overflowed u64.
    #[error("{what} overflows u64: the manifest is not plausible")]
    Overflow { what: String },
    /// Input that could not be decoded (candid, candid text or JSON).
    #[error("cannot decode {what}: {message}")]
    DecodeError { what: String, message: String },
}

fn show_cursor(c: &Option<PageCursor>) -> String {
    c.as_ref()
        .map_or("none (last page)".to_string(), |c| c.to_string())
}

/// `Result` with [`ManifestError`].
pub type Result<T, E = ManifestError> = std::result::Result<T, E>;
