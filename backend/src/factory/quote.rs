//! The cycles quote of a creation, from its manifest and the configured prices.

use manifests::ManifestHeader;

use super::types::{FactoryConfig, Quote};
use capsule::migration::{MANIFEST_PAGE_BYTES, MAX_CHUNK_BATCH_BYTES};

const GIB: u128 = 1 << 30;
/// Stored bytes per memory or connection record, a generous estimate.
const RECORD_BYTES: u128 = 2_048;
/// Room for the personal canister's module, heap and stable-structure overhead.
const BASE_STORAGE_BYTES: u128 = 64 << 20;

/// What creating the personal canister for `header` costs, in cycles:
/// - the IC's creation fee;
/// - the install: a message and the install's instructions;
/// - the transfer the personal canister pays: one call per manifest page, per chunk batch and
///   per progress report, each with its bytes, plus its instructions per imported byte;
/// - storage of the data for the freezing threshold;
/// - the admin-set buffer.
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

    let stored = add(moved, BASE_STORAGE_BYTES);
    let storage = match mul(
        mul(stored, p.storage_gib_second),
        cfg.freezing_threshold_seconds as u128,
    ) {
        u128::MAX => u128::MAX,
        byte_seconds => byte_seconds.div_ceil(GIB),
    };

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
