//! Stable-structure encodings of the capsule store's records.

use std::borrow::Cow;

use candid::{CandidType, Decode, Encode};
use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;
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
