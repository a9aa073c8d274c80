//! Serde adapters for hashes and byte strings.
//!
//! In binary formats (candid: its deserializer is not human-readable) a [`type@Hash`] is a byte string,
//! so its candid type is `blob` (`vec nat8`) and decoding it costs about one instruction per byte
//! instead of ~67 for a `Vec<u8>` decoded element by element. In human-readable formats (JSON) it
//! is a lower-case hex string. Used through `#[serde(with = "...")]` on every hash field, so the
//! representation is the same everywhere in this crate.

use blobstore::hash::{Hash, from_hex, to_hex};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Lower-case hex of arbitrary bytes.
pub fn bytes_to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses an even number of hex digits (either case) into bytes.
pub fn bytes_from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

struct HashVisitor;

impl<'de> Visitor<'de> for HashVisitor {
    type Value = Hash;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a 32-byte hash (64 hex digits or 32 bytes)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Hash, E> {
        from_hex(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Hash, E> {
        v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hash, A::Error> {
        let mut out = [0u8; 32];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<u8>()?.is_some() {
            return Err(de::Error::invalid_length(33, &self));
        }
        Ok(out)
    }
}

/// A hash that (de)serializes through [`hash`]; used for elements of sequences and options.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct HashRepr(pub Hash);

impl Serialize for HashRepr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hash::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for HashRepr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hash::deserialize(d).map(HashRepr)
    }
}

/// `#[serde(with = "crate::serde_hex::hash")]` for a [`type@Hash`] field.
pub mod hash {
    use super::*;

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&to_hex(h))
        } else {
            s.serialize_bytes(h)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(HashVisitor)
        } else {
            d.deserialize_bytes(HashVisitor)
        }
    }
}

/// `#[serde(with = "crate::serde_hex::hash_vec")]` for a `Vec<Hash>` field.
pub mod hash_vec {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Hash], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for h in v {
            seq.serialize_element(&HashRepr(*h))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
        let v: Vec<HashRepr> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|h| h.0).collect())
    }
}

/// `#[serde(with = "crate::serde_hex::hash_opt")]` for an `Option<Hash>` field.
pub mod hash_opt {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Hash>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(h) => s.serialize_some(&HashRepr(*h)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Hash>, D::Error> {
        Ok(Option::<HashRepr>::deserialize(d)?.map(|h| h.0))
    }
}

/// `#[serde(with = "crate::serde_hex::bytes")]` for a `Vec<u8>` field: `blob` in candid (decoded
/// as one byte string, like `serde_bytes`), hex in JSON.
pub mod bytes {
    use super::*;

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a byte string (hex digits or bytes)")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            bytes_from_hex(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&bytes_to_hex(v))
        } else {
            s.serialize_bytes(v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            d.deserialize_str(BytesVisitor)
        } else {
            d.deserialize_byte_buf(BytesVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_bytes_round_trip() {
        assert_eq!(bytes_to_hex(&[0, 15, 255]), "000fff");
        assert_eq!(bytes_from_hex("000FfF"), Some(vec![0, 15, 255]));
        assert_eq!(bytes_from_hex("abc"), None);
        assert_eq!(bytes_from_hex("zz"), None);
        assert_eq!(bytes_from_hex(""), Some(vec![]));
    }
}
