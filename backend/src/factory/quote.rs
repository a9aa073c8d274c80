//! The cycles quote of a creation, from its manifest and the configured prices, and the
//! storage funding deposited after install from the measured footprint.
//!
//! ## Funding
//!
//! With `s` = `prices.storage_gib_second`, `T` = the freezing threshold (s), `D` = `funded_days`:
//!
//! ```text
//! storage_cycles(bytes, secs) = ceil(bytes × s × secs / 2^30)
//! capsule bytes  C = blob bytes + 2,048 × (memories + connections + 1) + 64 × chunks
//! quote.storage    = storage_cycles(BASE_FOOTPRINT_BYTES + C, T)        attached to create_canister
//! funding_estimate = storage_cycles(BASE_FOOTPRINT_BYTES + C, D × 86,400)   reserved at export
//! after install:   M = memory_size from canister_status (backend still a controller)
//!                  footprint = M + C
//!                  deposit   = storage_cycles(footprint, T + D × 86,400) − quote.storage
//! ```
//!
//! so the canister holds its freezing reserve for the footprint it will have plus `D` days of
//! its storage. With the 13-node price (127,000 cycles per GiB-second: 10.97 B per GiB-day),
//! `T` = 30 days, `D` = 180 and a measured base of 160 MiB, the storage funded is about
//! 0.36 T cycles for a 1 MiB capsule, 2.66 T for 1 GiB and 18.80 T for 8 GiB
//! (`funding_figures_for_1_mib_1_gib_and_8_gib` prints them).

use manifests::ManifestHeader;

use super::types::{FactoryConfig, Quote};
use migration::protocol::{MANIFEST_PAGE_BYTES, MAX_CHUNK_BATCH_BYTES};

const GIB: u128 = 1 << 30;
/// Stored bytes per memory or connection record, a generous estimate.
const RECORD_BYTES: u128 = 2_048;
/// The personal canister's footprint before any data (module, heap, stable-structure
/// overhead), as estimated at export; the deposit after install uses the measured one.
pub const BASE_FOOTPRINT_BYTES: u128 = 160 << 20;
const DAY_SECONDS: u128 = 86_400;

/// Storage of `bytes` for `seconds` at `storage_gib_second`, rounded up; saturates.
pub fn storage_cycles(bytes: u128, seconds: u128, storage_gib_second: u128) -> u128 {
    match bytes
        .saturating_mul(storage_gib_second)
        .saturating_mul(seconds)
    {
        u128::MAX => u128::MAX,
        byte_seconds => byte_seconds.div_ceil(GIB),
    }
}

/// The bytes a capsule adds to its personal canister: blob bytes plus an estimate per record
/// and per chunk hash.
pub fn capsule_bytes(blob_bytes: u64, records: u64, chunks: u64) -> u128 {
    (blob_bytes as u128)
        .saturating_add((records as u128).saturating_mul(RECORD_BYTES))
        .saturating_add((chunks as u128).saturating_mul(64))
}

/// The funding deposited after install for a canister measured at `memory_bytes` that will
/// hold `capsule_bytes` more: storage of the footprint for the freezing threshold plus
/// `funded_days`, less the storage the quote already attached to `create_canister`.
/// Returns (footprint, cycles to deposit).
pub fn funding_deposit(
    memory_bytes: u64,
    capsule_bytes: u128,
    quote: &Quote,
    cfg: &FactoryConfig,
) -> (u128, u128) {
    let footprint = (memory_bytes as u128).saturating_add(capsule_bytes);
    let seconds = (cfg.freezing_threshold_seconds as u128)
        .saturating_add((cfg.funded_days() as u128).saturating_mul(DAY_SECONDS));
    let needed = storage_cycles(footprint, seconds, cfg.prices.storage_gib_second);
    (footprint, needed.saturating_sub(quote.storage))
}

/// What creating the personal canister for `header` costs, in cycles:
/// - the IC's creation fee;
/// - the install: a message and the install's instructions;
/// - the transfer the personal canister pays: one call per manifest page, per chunk batch and
///   per progress report, each with its bytes, plus its instructions per imported byte;
/// - storage of the data for the freezing threshold;
/// - the admin-set buffer;
///
/// and, not attached to `create_canister` but reserved with it, the estimated funding of
/// `funded_days` of storage (see the module doc).
///
/// Every figure saturates: a quote too large to represent is `u128::MAX`, which no reserve covers.
pub fn quote(header: &ManifestHeader, cfg: &FactoryConfig) -> Quote {
    let add = |a: u128, b: u128| a.saturating_add(b);
    let mul = |a: u128, b: u128| a.saturating_mul(b);
    let p = &cfg.prices;
    let blob_bytes = header.total_blob_bytes as u128;
    let records = header.memory_count as u128 + header.connection_count as u128 + 1;
    let metadata_bytes = add(
        mul(records, RECORD_BYTES),
        mul(header.total_chunks as u128, 64),
    );

    let install = add(p.update_message, mul(p.install_instructions, p.instruction));

    let pages = metadata_bytes.div_ceil(MANIFEST_PAGE_BYTES as u128).max(1);
    let batches = blob_bytes.div_ceil(MAX_CHUNK_BATCH_BYTES as u128);
    // Each batch is followed by a progress report; + done.
    let calls = add(add(pages, mul(2, batches)), 2);
    let moved = add(blob_bytes, metadata_bytes);
    let transfer = add(
        add(
            mul(calls, add(p.call, p.update_message)),
            mul(moved, p.call_byte),
        ),
        mul(mul(moved, p.import_instructions_per_byte), p.instruction),
    );

    let stored = add(moved, BASE_FOOTPRINT_BYTES);
    let storage = storage_cycles(
        stored,
        cfg.freezing_threshold_seconds as u128,
        p.storage_gib_second,
    );
    let funding_estimate = storage_cycles(
        stored,
        mul(cfg.funded_days() as u128, DAY_SECONDS),
        p.storage_gib_second,
    );

    let total = [install, transfer, storage, cfg.quote_buffer]
        .into_iter()
        .fold(p.create_canister, add);
    Quote {
        creation_fee: p.create_canister,
        install,
        transfer,
        storage,
        buffer: cfg.quote_buffer,
        total,
        funding_estimate: Some(funding_estimate),
    }
}

impl Quote {
    /// What a creation reserves: what `create_canister` carries plus the funding estimate.
    pub fn reserved(&self) -> u128 {
        self.total
            .saturating_add(self.funding_estimate.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(memories: u64, blob_bytes: u64) -> ManifestHeader {
        ManifestHeader {
            version: 1,
            owner: candid::Principal::anonymous(),
            connection_count: 0,
            memory_count: memories,
            blob_count: 1,
            total_blob_bytes: blob_bytes,
            total_chunks: blob_bytes.div_ceil(256 * 1024),
            capsule_root: [0; 32],
            connections_root: [0; 32],
            memories_root: [0; 32],
            blobs_root: [0; 32],
            root: [0; 32],
        }
    }

    #[test]
    fn the_quote_adds_up_and_grows_with_the_data() {
        let cfg = FactoryConfig::default();
        let small = quote(&header(10, 1 << 20), &cfg);
        assert_eq!(
            small.total,
            small.creation_fee + small.install + small.transfer + small.storage + small.buffer
        );
        assert_eq!(small.creation_fee, 500_000_000_000);
        let big = quote(&header(10, 1 << 30), &cfg);
        assert!(big.transfer > small.transfer && big.storage > small.storage);
        // Moving a GiB costs about a thousand cycles per byte plus the import's instructions.
        let per_byte = (big.transfer - small.transfer) / ((1u128 << 30) - (1 << 20));
        assert!((1_000..1_100).contains(&per_byte), "{per_byte}");
    }

    /// The funding figures of the module doc: 1 MiB, 1 GiB and 8 GiB capsules on a canister
    /// measured at 160 MiB after install, with the default configuration.
    #[test]
    fn funding_figures_for_1_mib_1_gib_and_8_gib() {
        let cfg = FactoryConfig::default();
        assert_eq!(cfg.funded_days(), 180);
        let per_gib_day = storage_cycles(GIB, DAY_SECONDS, cfg.prices.storage_gib_second);
        assert_eq!(per_gib_day, 10_972_800_000);
        let measured: u64 = 160 << 20;
        let mut figures = vec![];
        for (label, bytes) in [
            ("1 MiB", 1u64 << 20),
            ("1 GiB", 1 << 30),
            ("8 GiB", 8 << 30),
        ] {
            let h = header(10, bytes);
            let q = quote(&h, &cfg);
            let c = capsule_bytes(bytes, 11, h.total_chunks);
            let (footprint, deposit) = funding_deposit(measured, c, &q, &cfg);
            let funded = q.storage + deposit;
            // Threshold (30 days) plus 180 days of the measured footprint, exactly.
            let expected =
                storage_cycles(footprint, 210 * DAY_SECONDS, cfg.prices.storage_gib_second);
            assert_eq!(funded, expected);
            let days =
                funded / storage_cycles(footprint, DAY_SECONDS, cfg.prices.storage_gib_second);
            assert!((209..=210).contains(&days), "{label}: {days} days");
            println!(
                "{label}: footprint {footprint} B, storage funded {funded} cycles ({:.2} T; {:.2} T deposited after install)",
                funded as f64 / 1e12,
                deposit as f64 / 1e12
            );
            figures.push(funded);
        }
        let t = |x: u128| (x as f64 / 1e10).round() / 100.0;
        assert_eq!(
            figures.iter().map(|f| t(*f)).collect::<Vec<_>>(),
            vec![0.36, 2.66, 18.8]
        );
    }

    /// A canister measured bigger than the estimate gets the difference; the estimate
    /// reserved at export covers a canister measured at the estimated base.
    #[test]
    fn the_deposit_follows_the_measured_footprint() {
        let cfg = FactoryConfig::default();
        let h = header(3, 5 << 20);
        let q = quote(&h, &cfg);
        let c = capsule_bytes(5 << 20, 4, h.total_chunks);
        let (_, at_estimate) = funding_deposit(BASE_FOOTPRINT_BYTES as u64, c, &q, &cfg);
        assert!(at_estimate.abs_diff(q.funding_estimate.unwrap()) <= 1);
        let (_, bigger) = funding_deposit(2 * BASE_FOOTPRINT_BYTES as u64, c, &q, &cfg);
        assert!(bigger > at_estimate);
        assert_eq!(q.reserved(), q.total + q.funding_estimate.unwrap());
    }

    /// The funding settings are validated against each other and their ranges.
    #[test]
    fn funding_settings_are_validated() {
        let ok = FactoryConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        for (cfg, field) in [
            (
                FactoryConfig {
                    funded_days: Some(3_651),
                    ..ok.clone()
                },
                "funded_days",
            ),
            (
                FactoryConfig {
                    funded_days: Some(10),
                    ..ok.clone()
                },
                "purge_min_days",
            ),
            (
                FactoryConfig {
                    purge_min_days: Some(181),
                    ..ok.clone()
                },
                "purge_min_days",
            ),
            (
                FactoryConfig {
                    purge_check_max_attempts: Some(0),
                    ..ok.clone()
                },
                "purge_check_max_attempts",
            ),
            (
                FactoryConfig {
                    max_sponsored_per_user: Some(u128::MAX),
                    ..ok.clone()
                },
                "max_sponsored_per_user",
            ),
        ] {
            match cfg.validate() {
                Err(crate::factory::types::FactoryError::InvalidConfig { field: f, .. }) => {
                    assert_eq!(f, field)
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        let short = FactoryConfig {
            funded_days: Some(10),
            purge_min_days: Some(5),
            ..ok
        };
        assert_eq!(short.validate(), Ok(()));
    }

    /// Figures beyond any real capsule or price saturate instead of wrapping: no reserve covers them.
    #[test]
    fn an_absurd_manifest_saturates_the_quote() {
        let mut h = header(u64::MAX, u64::MAX);
        h.connection_count = u64::MAX;
        // Validated prices keep even this under u128::MAX; unvalidated ones would wrap.
        let mut cfg = FactoryConfig::default();
        assert!(quote(&h, &cfg).total < u128::MAX);
        cfg.prices.call_byte = u128::MAX / 3;
        cfg.prices.storage_gib_second = u128::MAX / 3;
        let q = quote(&h, &cfg);
        assert_eq!(
            (q.transfer, q.storage, q.total),
            (u128::MAX, u128::MAX, u128::MAX)
        );
    }
}
