//! The Merkle tree over the leaves: domains, nodes, section roots, the manifest root, and the
//! streaming [`MerkleAccumulator`].
//!
//! Every node kind hashes in its own BLAKE3 key-derivation context ([`domain`]):
//!
//! - leaf: `H_kind(encoding)`, one context per section ([`crate::encoding`] defines the bytes);
//! - inner node: `H_inner(left || right)`;
//! - section root: `H_section(tag u8 || count u64le || tree_root)`, where `tree_root` is the root
//!   of the section's binary tree over its leaf hashes in canonical order, or 32 zero bytes for
//!   an empty section (so every section, empty or not, has a defined root that also binds its
//!   kind and leaf count);
//! - manifest root ([`crate::ManifestHeader::compute_root`]): `H_root(version u32le || owner (u32le length + bytes) || connection_count ||
//!   memory_count || blob_count || total_blob_bytes || total_chunks (each u64le) || capsule_root
//!   || connections_root || memories_root || blobs_root)`.
//!
//! The tree over `n` leaves has the shape of RFC 6962 (and of BLAKE3's own tree): one leaf is
//! its own root; otherwise the left subtree holds the largest power of two of leaves that is
//! smaller than `n`, the right subtree the rest. A single stack of perfect subtrees computes it
//! in a stream ([`MerkleAccumulator`]); [`tree_root`] computes it recursively.

use crate::section::Section;
use blake3::hazmat::{ContextKey, HasherExt, hash_derive_key_context};
use blobstore::hash::Hash;
use candid::CandidType;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Common prefix of every context string.
pub const DOMAIN_PREFIX: &str = "personal-canister manifest v1";

/// The node kinds that have their own hashing domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    Leaf(Section),
    Inner,
    SectionRoot,
    Root,
}

impl Domain {
    /// Every domain, in the order of their context keys.
    pub const ALL: [Domain; 7] = [
        Domain::Leaf(Section::Capsule),
        Domain::Leaf(Section::Connections),
        Domain::Leaf(Section::Memories),
        Domain::Leaf(Section::Blobs),
        Domain::Inner,
        Domain::SectionRoot,
        Domain::Root,
    ];
}

/// The BLAKE3 key-derivation context string of a node kind.
pub fn domain(d: Domain) -> &'static str {
    match d {
        Domain::Leaf(Section::Capsule) => "personal-canister manifest v1 capsule leaf",
        Domain::Leaf(Section::Connections) => "personal-canister manifest v1 connection leaf",
        Domain::Leaf(Section::Memories) => "personal-canister manifest v1 memory leaf",
        Domain::Leaf(Section::Blobs) => "personal-canister manifest v1 blob leaf",
        Domain::Inner => "personal-canister manifest v1 inner node",
        Domain::SectionRoot => "personal-canister manifest v1 section root",
        Domain::Root => "personal-canister manifest v1 root",
    }
}

fn index(d: Domain) -> usize {
    match d {
        Domain::Leaf(s) => s.tag() as usize,
        Domain::Inner => 4,
        Domain::SectionRoot => 5,
        Domain::Root => 6,
    }
}

/// A hasher in the domain `d`; the context keys are derived once per process.
pub fn hasher(d: Domain) -> blake3::Hasher {
    static KEYS: OnceLock<[ContextKey; 7]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| Domain::ALL.map(|d| hash_derive_key_context(domain(d))));
    blake3::Hasher::new_from_context_key(&keys[index(d)])
}

/// A hasher for leaves of `section`.
pub fn leaf_hasher(section: Section) -> blake3::Hasher {
    hasher(Domain::Leaf(section))
}

/// The inner node over two subtrees.
pub fn inner(left: &Hash, right: &Hash) -> Hash {
    let mut h = hasher(Domain::Inner);
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

/// A section's root from its leaf count and tree root (`None` for an empty section).
pub fn section_root(section: Section, count: u64, tree_root: Option<&Hash>) -> Hash {
    let mut h = hasher(Domain::SectionRoot);
    h.update(&[section.tag()]);
    h.update(&count.to_le_bytes());
    h.update(tree_root.unwrap_or(&[0u8; 32]));
    *h.finalize().as_bytes()
}

/// The tree root over `leaves` in one go (recursive; `None` when empty).
pub fn tree_root(leaves: &[Hash]) -> Option<Hash> {
    match leaves.len() {
        0 => None,
        1 => Some(leaves[0]),
        n => {
            let split = largest_power_of_two_below(n);
            let left = tree_root(&leaves[..split])?;
            let right = tree_root(&leaves[split..])?;
            Some(inner(&left, &right))
        }
    }
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn largest_power_of_two_below(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Streaming Merkle root: push leaf hashes in order, ask for the root at any time.
///
/// Holds one hash per set bit of the leaf count (at most 64), so its state is O(log n) and it
/// serializes in candid: a canister can persist it between messages and continue.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleAccumulator {
    count: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first; their sizes are the set bits of
    /// `count`, from the highest down.
    #[serde(with = "crate::serde_hex::hash_vec")]
    stack: Vec<Hash>,
}

impl MerkleAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves pushed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the state is well formed (one stack entry per set bit of the count); false only
    /// for a state decoded from tampered bytes.
    pub fn is_well_formed(&self) -> bool {
        self.stack.len() == self.count.count_ones() as usize
    }

    /// Appends the next leaf hash.
    ///
    /// # Panics
    /// After 2^64 - 1 leaves.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut c = self.count;
        while c & 1 == 1 {
            let left = self
                .stack
                .pop()
                .expect("accumulator stack matches its count");
            node = inner(&left, &node);
            c >>= 1;
        }
        self.stack.push(node);
        self.count = self.count.checked_add(1).expect("more than 2^64 leaves");
    }

    /// Root of the tree over the leaves pushed so far (`None` when empty); same as
    /// [`tree_root`] over the same leaves.
    pub fn root(&self) -> Option<Hash> {
        let mut iter = self.stack.iter().rev();
        let mut acc = *iter.next()?;
        for left in iter {
            acc = inner(left, &acc);
        }
        Some(acc)
    }

    /// The section root of `section` over the leaves pushed so far.
    pub fn section_root(&self, section: Section) -> Hash {
        section_root(section, self.count, self.root().as_ref())
    }
}
