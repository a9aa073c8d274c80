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
//! - [`mod@diff`]: [`diff()`] lists what differs between two manifests.
//! - `text` (feature `cli`): reads manifests from candid text (as `dfx canister call` prints
//!   it) and JSON, for the `manifest` command-line tool.
//!
//! Hashes are `blob` in candid and hex in JSON; principals are `principal` / text.
//! Build for canisters with `default-features = false` (no CLI dependencies).
//!
//! # In canisters
//!
//! The exporter converts its records into leaves (connections in `Principal` order, memories
//! by id, one [`BlobLeaf`] per distinct blob with the chunk hashes it stored, by hash), feeds
//! them to a [`ManifestBuilder`] over as many messages as needed (persisting the builder in
//! between), and serves pages made with [`PageBudget`] and [`ManifestPage::new`]. The importer
//! checks each page with a [`PageVerifier`] (persisted in between too) before storing its
//! leaves, and at the end recomputes the root from what it stored with a fresh builder.
//!
//! ```
//! use manifests::*;
//! # let capsule = CapsuleLeaf { owner: candid::Principal::anonymous(), name: "c".into(),
//! #     bio: String::new(), created_at: 0, updated_at: 0,
//! #     settings: CapsuleSettingsLeaf { public_profile: false, locale: "en".into() } };
//! # let blob = BlobLeaf::from_bytes(b"photo bytes");
//! # let memories: Vec<MemoryLeaf> = (0..10).map(|id| MemoryLeaf { id, title: format!("m{id}"),
//! #     description: String::new(), tags: vec![], kind: "photo".into(), created_at: 0,
//! #     updated_at: 0, blobs: vec![BlobRefLeaf { hash: blob.hash, size: blob.size,
//! #     mime_type: "image/jpeg".into() }], encryption: None }).collect();
//! // Exporter: build in steps, saving the state between messages.
//! let mut saved = ManifestBuilder::new().to_bytes();
//! let mut b = ManifestBuilder::from_bytes(&saved)?;
//! b.push_capsule(&capsule)?;
//! saved = b.to_bytes();
//! for batch in memories.chunks(4) {
//!     let mut b = ManifestBuilder::from_bytes(&saved)?;
//!     b.push_leaves(&PageLeaves::Memories(batch.to_vec()))?;
//!     saved = b.to_bytes();
//! }
//! let mut b = ManifestBuilder::from_bytes(&saved)?;
//! b.push_blob(&blob)?;
//! let header = b.finish()?;
//!
//! // Exporter: the page query at `cursor`.
//! let page_at = |cursor: PageCursor| -> ManifestPageReply {
//!     let leaves = match cursor.section {
//!         Section::Capsule => PageLeaves::Capsule(capsule.clone()),
//!         Section::Memories => {
//!             let mut budget = PageBudget::new(DEFAULT_PAGE_BYTES);
//!             PageLeaves::Memories(memories[cursor.index as usize..].iter()
//!                 .take_while(|l| budget.admit(*l)).cloned().collect())
//!         }
//!         Section::Blobs => PageLeaves::Blobs(vec![blob.clone()]),
//!         Section::Connections => unreachable!("no connections here"),
//!     };
//!     ManifestPageReply { header: header.clone(), page: ManifestPage::new(&header, cursor.index, leaves) }
//! };
//!
//! // Importer: verify page by page against the root it was given.
//! let first = page_at(PageCursor::FIRST);
//! let mut v = PageVerifier::new_expecting(first.header.clone(), &header.root)?;
//! v.push_reply(&first)?;
//! while let Some(cursor) = v.next_cursor() {
//!     let reply = page_at(cursor);
//!     v.push_reply(&reply)?; // then store reply.page's leaves
//! }
//! assert_eq!(v.finish()?.root, header.root);
//! # Ok::<(), ManifestError>(())
//! ```

#[cfg(feature = "cli")]
pub mod archive;
pub mod builder;
pub mod codec;
pub mod diff;
pub mod encoding;
pub mod error;
pub mod merkle;
pub mod model;
pub mod pages;
pub mod raw;
pub mod section;
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
    PageCursor, PageLeaves, cursor_after, encoding_wire_bound, leaf_wire_bound,
};
pub use raw::{FramedLeaves, RawPage, RawPageReply};
pub use verify::{PageVerifier, check_header};
