//! The factory's types for what follows the handoff: the storage funding, sponsored top-ups,
//! the purge guard, and the personal module the backend publishes.

use candid::{CandidType, Principal};
use serde::{Deserialize, Serialize};

pub use capsule::after_handoff::ApiVersion;

use super::FactoryError;

/// Cycles given to a creation's canister beyond what `create_canister` carried.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Funding {
    /// The canister's memory size right after install (`canister_status`, while the backend
    /// is still a controller), bytes.
    pub measured_memory_bytes: u64,
    /// What the canister will hold: the measured memory plus the capsule's bytes.
    pub footprint_bytes: u64,
    /// Days of storage of the footprint funded beyond the freezing threshold.
    pub funded_days: u32,
    /// Cycles deposited for them (`deposit_cycles`), beyond the quote's storage, over every
    /// canister of the creation. Journaled before the call; given back to the reserve if the
    /// call is rejected.
    pub deposited: u128,
    /// Cycles admins sponsored from the reserve since (`admin_sponsor_top_up`), in total.
    pub sponsored: u128,
    /// The canister the last funding went to (a retry with a new canister funds it again);
    /// `deposited` counts every canister's.
    pub funded_canister: Option<Principal>,
}

/// The purge guard of a completed creation: the shared copy is purged only after the personal
/// canister answered `cycles_outlook` with the export root and enough days of cycles.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct PurgeCheck {
    /// Checks made (answered or not) since the purge fell due.
    pub checks: u32,
    pub last_check_at: Option<u64>,
    /// The last check passed: the purge proceeds.
    pub cleared: bool,
    /// Why the purge waits (the last check's finding), while it does.
    pub hold: Option<PurgeHold>,
    /// When the next check is due; `None` when cleared, or when the checks are used up
    /// (`purge_check_max_attempts`: the shared copy stays until the owner asks again).
    pub next_check_at: Option<u64>,
    /// The record's key in the purge queue (set by the registry): the queue orders waiting
    /// purges by their next check.
    pub queue_key: u64,
}

/// Why a purge waits.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum PurgeHold {
    /// A check is running (the personal canister has until `until` to answer).
    Checking { until: u64 },
    /// The personal canister did not answer `cycles_outlook` (rejected, trapped, stopped,
    /// timed out).
    NoAnswer { code: u32, message: String },
    /// The check's call could not be made (not enqueued, or the backend's liquid cycles were
    /// short).
    NotAsked { reason: String },
    /// Its answer did not decode.
    UntrustedReply { reason: String },
    /// It does not hold the export root (`actual`, if it has one).
    RootMismatch {
        expected: String,
        actual: Option<String>,
    },
    /// It holds fewer days of cycles than the purge requires: top it up (`deposit_cycles`).
    LowCycles { days_left: u64, required_days: u32 },
}

/// The personal canister's `cycles_outlook`, as the backend reads it (decoded under a quota):
/// the fields of [`capsule::after_handoff::CyclesOutlook`] the purge check uses, and only those.
/// A strict subset on purpose (candid decodes a record into one with fewer fields): the backend
/// depends on nothing else of the reply, so a personal module may add to its outlook without
/// the backend's purge check changing.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct PersonalOutlook {
    pub balance: u128,
    pub days_until_frozen: u64,
    /// The root of the data it holds, once its import is verified.
    pub root: Option<capsule::Hash32>,
}

/// The personal canister module the backend ships (`personal_module`): its bytes come in
/// `chunk_count` chunks of `chunk_size` bytes (the last may be shorter) from
/// `personal_module_chunk`, each small enough for one reply and for one `upload_chunk`.
#[derive(CandidType, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct PersonalModule {
    pub api_version: ApiVersion,
    /// SHA-256 of the module: the `module_hash` the IC reports once it is installed.
    pub sha256: capsule::Hash32,
    pub size: u64,
    pub chunk_size: u64,
    pub chunk_count: u32,
}

/// The API version of the personal module the backend embeds: the major is the capsule API
/// version; the minor counts compatible releases of the personal canister, 0 unless the build
/// sets `PERSONAL_API_MINOR` (as `scripts/build.sh` does for a backend that embeds the
/// one-minor-ahead test module). It equals what the module's own `module_version` answers:
/// `e2e/tests/after_handoff_upgrade.rs` checks it.
pub const PERSONAL_API_VERSION: ApiVersion = ApiVersion {
    major: capsule::API_VERSION,
    minor: match option_env!("PERSONAL_API_MINOR") {
        Some(minor) => parse_u32(minor),
        None => 0,
    },
};

/// A decimal `u32` at compile time (a build with a malformed value fails).
const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    assert!(!b.is_empty(), "PERSONAL_API_MINOR must be a number");
    let mut n: u32 = 0;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "PERSONAL_API_MINOR must be a number");
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

/// Bytes per chunk of `personal_module_chunk`: under the 2 MiB reply limit, and exactly the
/// IC's `upload_chunk` limit (1 MiB), so a client uploads each chunk as it comes.
pub const PERSONAL_MODULE_CHUNK_BYTES: usize = 1 << 20;

impl PersonalModule {
    /// Describes `module` (its SHA-256 is `sha256`).
    pub fn describe(module: &[u8], sha256: [u8; 32], api_version: ApiVersion) -> PersonalModule {
        PersonalModule {
            api_version,
            sha256: serde_bytes::ByteArray::new(sha256),
            size: module.len() as u64,
            chunk_size: PERSONAL_MODULE_CHUNK_BYTES as u64,
            chunk_count: module.len().div_ceil(PERSONAL_MODULE_CHUNK_BYTES) as u32,
        }
    }

    /// Chunk `index` of `module`; an index past the last is `InvalidArgument`.
    pub fn chunk(module: &[u8], index: u32) -> Result<&[u8], FactoryError> {
        module
            .chunks(PERSONAL_MODULE_CHUNK_BYTES)
            .nth(index as usize)
            .ok_or_else(|| FactoryError::InvalidArgument {
                reason: format!(
                    "the module has {} chunks; there is no chunk {index}",
                    module.len().div_ceil(PERSONAL_MODULE_CHUNK_BYTES)
                ),
            })
    }
}

#[cfg(test)]
mod outlook_tests {
    use super::*;
    use candid::{Decode, Encode};
    use capsule::after_handoff::CyclesOutlook;

    #[test]
    fn the_backend_reads_its_fields_of_a_personal_canisters_outlook() {
        let full = CyclesOutlook {
            balance: 3_000_000_000_000,
            memory_bytes: 1 << 30,
            storage_per_day: 10_972_800_000,
            timers_per_day: 480_000_000,
            burn_per_day: 11_452_800_000,
            freezing_threshold_seconds: 30 * 86_400,
            freezing_threshold_cycles: 329_184_000_000,
            days_until_frozen: 233,
            root: Some(serde_bytes::ByteArray::new([9; 32])),
            module_version: ApiVersion { major: 1, minor: 1 },
        };
        let read = Decode!(&Encode!(&full).unwrap(), PersonalOutlook).unwrap();
        assert_eq!(
            read,
            PersonalOutlook {
                balance: full.balance,
                days_until_frozen: full.days_until_frozen,
                root: full.root,
            }
        );
    }
}

#[cfg(test)]
mod module_tests {
    use super::*;

    #[test]
    fn the_module_comes_back_whole_from_its_chunks() {
        let module: Vec<u8> = (0..(2 * PERSONAL_MODULE_CHUNK_BYTES + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let d = PersonalModule::describe(&module, [7; 32], PERSONAL_API_VERSION);
        assert_eq!((d.size, d.chunk_count), (module.len() as u64, 3));
        let back: Vec<u8> = (0..d.chunk_count)
            .flat_map(|i| PersonalModule::chunk(&module, i).unwrap().to_vec())
            .collect();
        assert_eq!(back, module);
        assert!(matches!(
            PersonalModule::chunk(&module, 3),
            Err(FactoryError::InvalidArgument { .. })
        ));
        assert_eq!(
            PersonalModule::describe(&[], [0; 32], PERSONAL_API_VERSION).chunk_count,
            0
        );
    }
}
