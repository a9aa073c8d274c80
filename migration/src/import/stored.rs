//! The importer's cell as stored: [`ImportState`] in postcard after the format byte
//! [`STATE_V3`]. Earlier layouts are still read:
//!
//! - [`STATE_V2`]: the same fields after a version number of the importer's own, which nothing
//!   read (the canister's schema version and these format bytes decide the layout); it is
//!   dropped on reading.
//! - The layout before typed failures (format byte [`PACKED_V1`], or candid from the layout
//!   before that): its failure text becomes [`ImportError::Recorded`], so an import that failed
//!   before an upgrade still reads as failed, with the same text.

use std::borrow::Cow;

use capsule::storable::{CANDID_MAGIC, PACKED_V1, unpack};
use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;

use super::*;

/// Format byte of the layout with [`ImportState::error`] as an [`ImportError`] and a version
/// field of its own ([`ImportStateV2`]).
pub const STATE_V2: u8 = 2;

/// Format byte of [`ImportState`] as it is.
pub const STATE_V3: u8 = 3;

/// [`ImportState`] as the importer's cell stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredState(pub ImportState);

/// [`ImportState`] as layout 1 stored it (the same fields in the same order; the failure as
/// text).
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ImportStateV1 {
    pub schema_version: u32,
    pub migration: Option<MigrationInit>,
    pub step: Step,
    pub error: Option<String>,
    pub progress: Progress,
    pub attempts: u32,
    pub retries: u64,
    pub retry_at: u64,
    pub in_flight: Vec<InFlight>,
    pub next_call: u64,
}

impl From<ImportStateV1> for ImportState {
    fn from(v1: ImportStateV1) -> Self {
        ImportState {
            migration: v1.migration,
            step: v1.step,
            error: v1.error.map(|message| ImportError::Recorded { message }),
            progress: v1.progress,
            attempts: v1.attempts,
            retries: v1.retries,
            retry_at: v1.retry_at,
            in_flight: v1.in_flight,
            next_call: v1.next_call,
        }
    }
}

/// [`ImportState`] as [`STATE_V2`] stored it: a version field first, then the same fields in
/// the same order.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ImportStateV2 {
    pub schema_version: u32,
    pub migration: Option<MigrationInit>,
    pub step: Step,
    pub error: Option<ImportError>,
    pub progress: Progress,
    pub attempts: u32,
    pub retries: u64,
    pub retry_at: u64,
    pub in_flight: Vec<InFlight>,
    pub next_call: u64,
}

impl From<ImportStateV2> for ImportState {
    fn from(v2: ImportStateV2) -> Self {
        ImportState {
            migration: v2.migration,
            step: v2.step,
            error: v2.error,
            progress: v2.progress,
            attempts: v2.attempts,
            retries: v2.retries,
            retry_at: v2.retry_at,
            in_flight: v2.in_flight,
            next_call: v2.next_call,
        }
    }
}

// `encode`, `decode` and the `Storable` methods are `#[inline]` so that they are compiled in
// the crate that opens the importer's cell (the personal canister), which decodes the same
// types with candid: the candid decoder of the earlier layout is then compiled once, not once
// per crate.

/// The stored bytes of `st`.
#[inline]
pub fn encode(st: &ImportState) -> Vec<u8> {
    postcard::to_extend(st, vec![STATE_V3]).expect("importer: state cannot be encoded")
}

/// Reads what [`encode`] wrote, or what an earlier layout wrote.
#[inline]
pub fn decode(bytes: &[u8]) -> Result<ImportState, String> {
    match bytes.first() {
        Some(&STATE_V3) => postcard::from_bytes(&bytes[1..]).map_err(|e| e.to_string()),
        Some(&STATE_V2) => postcard::from_bytes::<ImportStateV2>(&bytes[1..])
            .map(ImportState::from)
            .map_err(|e| e.to_string()),
        Some(&PACKED_V1) => unpack::<ImportStateV1>(bytes)
            .map(ImportState::from)
            .map_err(|e| e.to_string()),
        Some(_) if bytes.starts_with(CANDID_MAGIC) => unpack::<ImportStateV1>(bytes)
            .map(ImportState::from)
            .map_err(|e| e.to_string()),
        Some(other) => Err(format!("unknown importer state format {other}")),
        None => Err("empty importer state".into()),
    }
}

impl Storable for StoredState {
    #[inline]
    fn to_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(encode(&self.0))
    }

    #[inline]
    fn into_bytes(self) -> Vec<u8> {
        encode(&self.0)
    }

    #[inline]
    fn from_bytes(bytes: Cow<[u8]>) -> Self {
        // Undecodable stored state is corrupted state: trap rather than start over.
        match decode(&bytes) {
            Ok(st) => StoredState(st),
            Err(e) => panic!("importer: {e}"),
        }
    }

    const BOUND: Bound = Bound::Unbounded;
}
