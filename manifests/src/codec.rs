//! The primitives of the canonical encoding (the table in [`crate::encoding`]): an
//! [`Encoder`] writing `u64`, `u32`, `bool`, length-prefixed bytes and strings, principals and
//! hashes into a [`Sink`]. Both the leaf encoding ([`crate::encoding`]) and the manifest root
//! ([`crate::ManifestHeader::compute_root`]) write through it; it depends on no other module.

use blobstore::hash::Hash;
use candid::Principal;

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
