//! The primitives of the canonical encoding (the table in [`crate::encoding`]): an
//! [`Encoder`] writing `u64`, `u32`, `bool`, length-prefixed bytes and strings, principals and
//! hashes into a [`Sink`], and the [`Decoder`] that reads them back. Both the leaf encoding ([`crate::encoding`]) and the manifest root
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

/// Reads the primitives [`Encoder`] writes, from the front of a byte slice. Every read checks
/// that the bytes are there (and, for strings, that they are UTF-8); it never panics.
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

/// Why bytes are not a canonical encoding: what was being read when they ran out or were
/// malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeFault(pub &'static str);

impl std::fmt::Display for DecodeFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

type Read<T> = std::result::Result<T, DecodeFault>;

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    fn take(&mut self, n: usize, what: &'static str) -> Read<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(DecodeFault(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub fn u64(&mut self) -> Read<u64> {
        let b = self.take(8, "a u64 is cut short")?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub fn u32(&mut self) -> Read<u32> {
        let b = self.take(4, "a u32 is cut short")?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    pub fn bool(&mut self) -> Read<bool> {
        match self.take(1, "a bool is missing")?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeFault("a bool is neither 0 nor 1")),
        }
    }

    /// A length or count; bounded by the bytes left, so a forged count cannot make a caller
    /// reserve more than the input could hold.
    pub fn count(&mut self) -> Read<usize> {
        let n = self.u32()? as usize;
        if n > self.bytes.len() {
            return Err(DecodeFault("a length or count exceeds the bytes left"));
        }
        Ok(n)
    }

    pub fn bytes(&mut self) -> Read<&'a [u8]> {
        let n = self.count()?;
        self.take(n, "a byte string is cut short")
    }

    pub fn str(&mut self) -> Read<String> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| DecodeFault("a string is not UTF-8"))
    }

    pub fn principal(&mut self) -> Read<Principal> {
        let b = self.bytes()?;
        Principal::try_from_slice(b).map_err(|_| DecodeFault("a principal is longer than 29 bytes"))
    }

    pub fn hash(&mut self) -> Read<Hash> {
        let b = self.take(32, "a hash is cut short")?;
        Ok(b.try_into().expect("32 bytes"))
    }

    /// Checks that every byte was read.
    pub fn finish(self) -> Read<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeFault("bytes are left after the value"))
        }
    }
}
