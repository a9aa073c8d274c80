//! The capsule manifest: what a migration moves, and the root hash that identifies it.
//!
//! A manifest has four sections of leaves — the capsule's metadata ([`CapsuleLeaf`]), its
//! connections ([`ConnectionLeaf`], sorted by peer), its memories ([`MemoryLeaf`], sorted by id)
//! and the distinct blobs the memories reference ([`BlobLeaf`], sorted by hash, with their
//! 256 KiB chunk hashes) — and a [`ManifestHeader`] with counts, totals, section roots and the
//! root.
//!
//! - [`encoding`]: the one canonical byte encoding of every leaf ([`Leaf`]), versioned by
//!   [`ENCODING_VERSION`].
//! - [`merkle`]: domain-separated leaf, inner, section and root nodes, and the streaming
//!   [`MerkleAccumulator`].
//! - [`builder`]: [`ManifestBuilder`], fed section by section in canonical order over as many
//!   messages as needed (its state is candid-serializable), gives the header.
//! - [`pages`]: [`ManifestPage`] / [`ManifestPageReply`], the exporter's page query reply,
//!   bounded in bytes ([`PageBudget`]).
//! - [`verify`]: [`PageVerifier`] checks pages one at a time against a header;
//!   [`Manifest::verify`] recomputes a whole manifest.
//! - [`diff`]: [`diff()`] lists what differs between two manifests.
//! - `text` (feature `cli`): reads manifests from candid text (as `dfx canister call` prints
//!   it) and JSON, for the `manifest` command-line tool.
//!
//! Hashes are `blob` in candid and hex in JSON; principals are `principal` / text.
//! Build for canisters with `default-features = false` (no CLI dependencies).

pub mod builder;
pub mod diff;
pub mod encoding;
pub mod error;
pub mod merkle;
pub mod model;
pub mod pages;
pub mod serde_hex;
#[cfg(feature = "cli")]
pub mod text;
pub mod verify;

pub use blobstore::hash::Hash;
pub use builder::{ManifestBuilder, check_blob};
pub use diff::{ChunkDiff, Difference, FieldChange, diff};
pub use encoding::{ENCODING_VERSION, Leaf};
pub use error::{ManifestError, Result};
pub use merkle::{MerkleAccumulator, tree_root};
pub use model::{
    BlobLeaf, BlobRefLeaf, CapsuleLeaf, CapsuleSettingsLeaf, ConnectionLeaf, EncryptionLeaf,
    Manifest, ManifestHeader, MemoryLeaf, Section, peer_order,
};
pub use pages::{
    DEFAULT_PAGE_BYTES, ManifestPage, ManifestPageReply, PAGE_OVERHEAD_BYTES, PageBudget,
    PageCursor, PageLeaves, cursor_after, leaf_wire_bound,
};
pub use verify::{PageVerifier, check_header};
