//! The capsule API's error type. Every expected failure is a variant that says what happened;
//! the `Display` text says what to do about it.

use blobstore::BlobError;
use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};

/// Errors of the capsule API (candid `variant`).
#[derive(thiserror::Error, CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum Error {
    #[error("anonymous callers cannot use capsules: sign in with an identity")]
    Anonymous,
    #[error("only the capsule owner {owner} may do this")]
    NotOwner { owner: Principal },
    #[error("this caller has no capsule yet: call create_capsule first")]
    CapsuleNotFound,
    #[error("this caller already has a capsule: use update_capsule")]
    CapsuleExists,
    #[error(
        "capsule is read-only while it moves to a personal canister ({reason}); try again when that ends"
    )]
    CapsuleFrozen { reason: String },
    #[error("this capsule has moved to personal canister {canister_id}: use that canister")]
    CapsuleMoved { canister_id: Principal },
    #[error("no memory with id {id} in this capsule")]
    MemoryNotFound { id: u64 },
    #[error("no connection with {peer} in this capsule")]
    ConnectionNotFound { peer: Principal },
    #[error("a connection with {peer} exists already: use update_connection")]
    ConnectionExists { peer: Principal },
    #[error("a capsule cannot connect to its own owner")]
    SelfConnection,
    /// A text field is longer than its limit; `len` and `max` count UTF-8 bytes, not characters.
    #[error("{field} is {len} bytes long (UTF-8), more than the maximum of {max}: shorten it")]
    FieldTooLong { field: String, len: u64, max: u64 },
    #[error("too many {what}: the limit is {max}")]
    LimitReached { what: String, max: u64 },
    #[error("page limit {limit} is out of range: ask for 1 to {max} items")]
    InvalidPageLimit { limit: u32, max: u32 },
    #[error("blob {hash} is not held by this capsule: upload it with begin_blob_upload first")]
    BlobNotInCapsule { hash: String },
    #[error("blob {hash} has size {actual}, not the {declared} declared in the reference")]
    BlobSizeMismatch {
        hash: String,
        declared: u64,
        actual: u64,
    },
    #[error("upload {upload} belongs to another caller or does not exist")]
    UnknownUpload { upload: u64 },
    #[error("import rejected: {reason}")]
    ImportRejected { reason: String },
    /// The canister's manifest is asked for before its import is verified.
    #[error("no verified manifest yet: the import is in phase {phase}")]
    ManifestNotVerified { phase: String },
    /// A manifest page is asked for past the manifest's end.
    #[error("cursor {cursor} is past the end of the manifest")]
    CursorOutOfRange { cursor: String },
    /// Only a controller of the canister may do this.
    #[error("only a controller of this canister may do this")]
    NotController,
    /// Sending cycles to another canister failed.
    #[error("{0}")]
    CyclesNotReturned(Box<CyclesNotReturned>),
    #[error("blob store: {0}")]
    Blob(BlobError),
}

/// Why cycles sent back to a canister did not arrive: `refunded` of `amount` came back.
#[derive(thiserror::Error, CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[error(
    "deposit_returned_cycles on {canister_id} failed ({reason}); {refunded} of {amount} cycles came back"
)]
pub struct CyclesNotReturned {
    pub canister_id: Principal,
    pub reason: String,
    pub amount: u128,
    pub refunded: u128,
}

impl From<BlobError> for Error {
    fn from(e: BlobError) -> Self {
        Error::Blob(e)
    }
}

/// Result of a capsule API call.
pub type CapsuleResult<T> = Result<T, Error>;
