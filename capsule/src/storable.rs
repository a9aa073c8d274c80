//! Stable-structure encodings of stored records.
//!
//! [`Packed`] is the encoding of what this crate and the importer store: one format byte
//! ([`PACKED_V1`]), then the value in [postcard](https://docs.rs/postcard) (serde, varints, no
//! field names or type table), several times cheaper to write and read than candid. A value
//! written by an earlier layout in candid (bytes that start with candid's `DIDL` magic) is still
//! read, so a store opened over the previous layout needs no migration pass: each record moves
//! to the new encoding the next time it is written.
//!
//! A format byte other than `D` (candid) names the postcard schema of the value; a type whose
//! fields change gets a new format byte and a decoder for the older one.
//!
//! [`Candid`] stays for values stored in candid (a personal canister's configuration), which
//! grow by `Option` fields. The factory's registry is [`Packed`]: its records of layouts 1 and
//! 2 are candid, read as above.

use std::borrow::Cow;

use candid::{CandidType, Decode, Encode};
use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A record stored as candid bytes. Candid lets a later schema add `opt` fields and still read
/// what an earlier version wrote, which is what upgrades need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candid<T>(pub T);

impl<T: CandidType + DeserializeOwned> Storable for Candid<T> {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.encode())
    }

    fn into_bytes(self) -> Vec<u8> {
        self.encode()
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // The store only reads what it wrote itself; failing here means corrupted state, which
        // no caller can fix, so trapping (and rolling the message back) is the right outcome.
        Candid(Decode!(&bytes, T).expect("capsule store: undecodable record in stable memory"))
    }

    const BOUND: Bound = Bound::Unbounded;
}

impl<T: CandidType> Candid<T> {
    fn encode(&self) -> Vec<u8> {
        Encode!(&self.0).expect("capsule store: record cannot be candid-encoded")
    }
}

/// Format byte of the first postcard layout of every [`Packed`] type.
pub const PACKED_V1: u8 = 1;

/// The first bytes of every candid message (the earlier layout's records).
pub const CANDID_MAGIC: &[u8; 4] = b"DIDL";

/// Why stored bytes could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PackedError {
    #[error("empty record")]
    Empty,
    #[error("unknown record format {0} (written by a newer module?)")]
    UnknownFormat(u8),
    #[error("undecodable record: {0}")]
    Undecodable(String),
}

/// A record stored in the compact binary encoding (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packed<T>(pub T);

/// The stored bytes of `value`: [`PACKED_V1`], then postcard.
pub fn pack<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_extend(value, vec![PACKED_V1]).expect("capsule store: record cannot be encoded")
}

/// Reads bytes written by [`pack`], or candid bytes of the earlier layout.
pub fn unpack<T: CandidType + DeserializeOwned>(bytes: &[u8]) -> Result<T, PackedError> {
    match bytes.first() {
        None => Err(PackedError::Empty),
        Some(&PACKED_V1) => {
            postcard::from_bytes(&bytes[1..]).map_err(|e| PackedError::Undecodable(e.to_string()))
        }
        Some(_) if bytes.starts_with(CANDID_MAGIC) => {
            Decode!(bytes, T).map_err(|e| PackedError::Undecodable(e.to_string()))
        }
        Some(&other) => Err(PackedError::UnknownFormat(other)),
    }
}

impl<T: Serialize + CandidType + DeserializeOwned> Storable for Packed<T> {
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(pack(&self.0))
    }

    fn into_bytes(self) -> Vec<u8> {
        pack(&self.0)
    }

    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // As for `Candid`: undecodable stored bytes are corrupted state; trap.
        match unpack(&bytes) {
            Ok(v) => Packed(v),
            Err(e) => panic!("capsule store: {e}"),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}
