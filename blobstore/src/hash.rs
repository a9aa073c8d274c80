//! The hashing scheme of the blob store (see DESIGN.md, "Hashing and chunking").
//!
//! A blob is split in aligned chunks of [`CHUNK_SIZE`] bytes (the last one may be shorter).
//! A chunk's hash is its BLAKE3 *chaining value at its offset* in the blob, so merging a blob's
//! chunk hashes along BLAKE3's own tree gives exactly `blake3(blob)`: the blob id is the value
//! `b3sum` prints for the file, and every byte is hashed once.
//!
//! Special cases:
//! - a blob of one chunk (1 to `CHUNK_SIZE` bytes): the chunk's hash is the plain root hash;
//! - the empty blob has no chunks; its hash is `blake3(b"")`.
//!
//! Because the offset (and whether the chunk is the whole blob) enters the hash, the same bytes
//! at another position hash differently; verifying a chunk needs its index and the blob's size.

use blake3::hazmat::{HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root};

/// Size of a chunk: 256 KiB, a power of two multiple of BLAKE3's 1 KiB chunk.
pub const CHUNK_SIZE: usize = 256 * 1024;

/// A 32-byte BLAKE3 value: a blob's root hash or a chunk's chaining value.
pub type Hash = [u8; 32];

/// Number of chunks a blob of `size` bytes is split into (0 for the empty blob).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK_SIZE as u64)
}

/// Expected length of chunk `index` of a blob of `size` bytes, or `None` if out of range.
pub fn chunk_len(size: u64, index: u64) -> Option<usize> {
    let count = chunk_count(size);
    if index >= count {
        return None;
    }
    let start = index * CHUNK_SIZE as u64;
    Some((size - start).min(CHUNK_SIZE as u64) as usize)
}

/// Hash of chunk `index` of a blob of `blob_size` bytes, given the chunk's bytes.
///
/// The caller checks `bytes.len() == chunk_len(blob_size, index)`; this function does not.
pub fn chunk_hash(blob_size: u64, index: u64, bytes: &[u8]) -> Hash {
    if chunk_count(blob_size) <= 1 {
        return *blake3::hash(bytes).as_bytes();
    }
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(index * CHUNK_SIZE as u64);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// Merges a blob's chunk hashes (in order) into the blob's root hash, equal to `blake3(blob)`.
///
/// Costs one BLAKE3 compression per chunk, independent of the blob's size in bytes.
pub fn merge_chunk_hashes(chunks: &[Hash]) -> Hash {
    match chunks.len() {
        0 => *blake3::hash(b"").as_bytes(),
        1 => chunks[0],
        n => {
            let split = left_len(n);
            let left = merge_non_root(&chunks[..split]);
            let right = merge_non_root(&chunks[split..]);
            *merge_subtrees_root(&left, &right, Mode::Hash).as_bytes()
        }
    }
}

/// Number of chunks in the left subtree of `n > 1` chunks: the largest power of two below `n`.
/// Chunks are a power of two of BLAKE3 chunks, so BLAKE3's left-subtree rule lands on our chunk
/// boundaries.
fn left_len(n: usize) -> usize {
    debug_assert!(n > 1);
    n.div_ceil(2).next_power_of_two()
}

fn merge_non_root(chunks: &[Hash]) -> Hash {
    if chunks.len() == 1 {
        return chunks[0];
    }
    let split = left_len(chunks.len());
    let left = merge_non_root(&chunks[..split]);
    let right = merge_non_root(&chunks[split..]);
    merge_subtrees_non_root(&left, &right, Mode::Hash)
}

/// Splits `bytes` into chunks and returns the blob hash and the chunk hashes.
pub fn blob_hashes(bytes: &[u8]) -> (Hash, Vec<Hash>) {
    let size = bytes.len() as u64;
    let chunks: Vec<Hash> = bytes
        .chunks(CHUNK_SIZE)
        .enumerate()
        .map(|(i, c)| chunk_hash(size, i as u64, c))
        .collect();
    (merge_chunk_hashes(&chunks), chunks)
}

/// Incremental hasher over a stream (a file): feed bytes in any pieces, get the blob hash and
/// chunk hashes at the end. Holds at most one chunk in memory.
#[derive(Default)]
pub struct StreamHasher {
    buf: Vec<u8>,
    cvs: Vec<Hash>,
    size: u64,
}

impl StreamHasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream, in pieces of any size.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.buf.len() == CHUNK_SIZE {
                self.flush_full();
            }
            let take = (CHUNK_SIZE - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }

    fn flush_full(&mut self) {
        // More bytes follow this full chunk, so the blob has at least two chunks: non-root CV.
        let index = self.cvs.len() as u64;
        let mut hasher = blake3::Hasher::new();
        hasher.set_input_offset(index * CHUNK_SIZE as u64);
        hasher.update(&self.buf);
        self.cvs.push(hasher.finalize_non_root());
        self.size += self.buf.len() as u64;
        self.buf.clear();
    }

    /// Returns `(blob hash, chunk hashes, size)`.
    pub fn finalize(mut self) -> (Hash, Vec<Hash>, u64) {
        let size = self.size + self.buf.len() as u64;
        if !self.buf.is_empty() {
            let index = self.cvs.len() as u64;
            self.cvs.push(chunk_hash(size, index, &self.buf));
        }
        (merge_chunk_hashes(&self.cvs), self.cvs, size)
    }
}

/// Lower-case hex of a hash.
pub fn to_hex(hash: &Hash) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in hash {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses 64 hex digits into a hash.
pub fn from_hex(s: &str) -> Option<Hash> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// The b3sum sizes of the issue: the blob hash equals `blake3(bytes)` (what b3sum prints).
    #[test]
    fn blob_hash_equals_blake3_for_boundary_sizes() {
        for len in [
            0,
            1,
            1023,
            1024,
            262_143,
            262_144,
            262_145,
            3 * 1024 * 1024 + 7,
        ] {
            let bytes = data(len);
            let (root, chunks) = blob_hashes(&bytes);
            assert_eq!(root, *blake3::hash(&bytes).as_bytes(), "size {len}");
            assert_eq!(chunks.len() as u64, chunk_count(len as u64));
            let mut s = StreamHasher::new();
            for piece in bytes.chunks(100_003) {
                s.update(piece);
            }
            let (sroot, schunks, ssize) = s.finalize();
            assert_eq!(
                (sroot, schunks, ssize),
                (root, chunks, len as u64),
                "stream, size {len}"
            );
        }
    }

    #[test]
    fn same_bytes_at_two_offsets_hash_differently() {
        let chunk = data(CHUNK_SIZE);
        let size = 3 * CHUNK_SIZE as u64;
        assert_ne!(chunk_hash(size, 0, &chunk), chunk_hash(size, 1, &chunk));
        assert_ne!(chunk_hash(size, 1, &chunk), chunk_hash(size, 2, &chunk));
        // And a whole single-chunk blob differs from the same bytes as a first chunk.
        assert_ne!(
            chunk_hash(CHUNK_SIZE as u64, 0, &chunk),
            chunk_hash(size, 0, &chunk)
        );
    }

    #[test]
    fn chunk_len_covers_the_blob() {
        assert_eq!(chunk_len(0, 0), None);
        assert_eq!(chunk_len(1, 0), Some(1));
        assert_eq!(chunk_len(262_145, 0), Some(CHUNK_SIZE));
        assert_eq!(chunk_len(262_145, 1), Some(1));
        assert_eq!(chunk_len(262_145, 2), None);
    }

    #[test]
    fn hex_round_trip() {
        let h = *blake3::hash(b"abc").as_bytes();
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(
            to_hex(&h),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        assert_eq!(from_hex("zz"), None);
    }
}
