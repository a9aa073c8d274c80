//! Deterministic bytes: the same seed gives the same bytes on every run and platform.

/// The xorshift64 generator (shifts 13, 7, 17): a stream of `u64` that never repeats within a
/// test's reach. A zero state stays zero, so seed it with a non-zero state.
#[derive(Clone, Debug)]
pub struct XorShift64(u64);

impl XorShift64 {
    pub fn new(state: u64) -> Self {
        Self(state)
    }
}

impl Iterator for XorShift64 {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        Some(x)
    }
}

/// `len` non-periodic bytes, distinct per seed (each state's low byte): no two chunks of a blob,
/// nor two seeds' blobs, are alike.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    XorShift64::new(0x9E37_79B9_7F4A_7C15 ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D))
        .take(len)
        .map(|x| x as u8)
        .collect()
}

/// `len` pseudo-random bytes, distinct per seed (bits 24..32 of each state). The blob store's
/// schema-1 fixture (`blobstore/tests/fixtures/store-v1.bin`) was written with these bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    XorShift64::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        .take(len)
        .map(|x| (x >> 24) as u8)
        .collect()
}

/// The BLAKE3 test-vector input: byte `i` is `i mod 251`.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generators_are_deterministic_and_distinct_per_seed() {
        assert_eq!(data(1000, 3), data(1000, 3));
        assert_ne!(data(1000, 3), data(1000, 4));
        assert_eq!(noise(1000, 3), noise(1000, 3));
        assert_ne!(noise(1000, 3), noise(1000, 4));
        // A prefix of a longer run is the shorter run.
        assert_eq!(data(2000, 9)[..1000], data(1000, 9)[..]);
    }

    #[test]
    fn data_is_not_periodic_over_a_chunk() {
        let d = data(3 * 262_144, 1);
        assert_ne!(d[..262_144], d[262_144..2 * 262_144]);
        let distinct: std::collections::BTreeSet<u8> = d.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn the_generators_keep_the_bytes_fixtures_were_written_with() {
        // Golden prefixes (computed independently of this code): a change here changes every blob a
        // test, or a committed fixture, holds.
        assert_eq!(noise(8, 60), [18, 13, 206, 237, 231, 128, 50, 107]);
        assert_eq!(data(4, 0), [173, 118, 54, 116]);
        assert_eq!(pattern(253)[250..], [250, 0, 1]);
    }
}

/// Stored bytes as they are: a [`Storable`](ic_stable_structures::Storable) that reads a stable
/// structure's values without decoding them, or writes bytes in a layout of the test's making.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawBytes(pub Vec<u8>);

impl ic_stable_structures::Storable for RawBytes {
    fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.0)
    }
    fn into_bytes(self) -> Vec<u8> {
        self.0
    }
    fn from_bytes(bytes: std::borrow::Cow<[u8]>) -> Self {
        RawBytes(bytes.into_owned())
    }
    const BOUND: ic_stable_structures::storable::Bound =
        ic_stable_structures::storable::Bound::Unbounded;
}
