//! Chunk batches and progress: grouping, the byte bound, batches spanning blobs, and how often
//! progress is reported.

use super::*;

#[test]
fn ranges_group_consecutive_indices() {
    assert_eq!(ranges(&[]), vec![]);
    assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), vec![(0, 3), (5, 6), (7, 9)]);
}

#[test]
fn batch_limit_is_one_chunk_to_the_reply_bound() {
    assert_eq!(batch_limit(1), CHUNK_SIZE as u64);
    assert_eq!(batch_limit(u64::MAX), MAX_CHUNK_BATCH_BYTES);
    assert_eq!(batch_limit(3 * CHUNK_SIZE as u64), 3 * CHUNK_SIZE as u64);
}

#[test]
fn batches_respect_the_byte_bound_and_span_blobs() {
    let (src, _) = source();
    for (batch_bytes, bound) in [
        (2 * CHUNK_SIZE as u64, 2 * CHUNK_SIZE as u64),
        (1, CHUNK_SIZE as u64),
        (u64::MAX, MAX_CHUNK_BATCH_BYTES),
    ] {
        let mut exp = Exporter::new(&src, 1);
        let (_, mut imp, mut store, mut sim) = started(
            &exp,
            ImportConfig {
                batch_bytes,
                ..config()
            },
        );
        sim.run(&mut imp, &mut store, &mut exp, 10_000);
        assert_eq!(imp.state().phase(), ImportPhase::Done);
        assert!(!exp.batches.is_empty());
        for (refs, bytes) in &exp.batches {
            assert!(*bytes <= bound, "{bytes} > {bound}");
            assert!(refs.len() <= MAX_CHUNKS_PER_BATCH);
        }
        let spans = exp
            .batches
            .iter()
            .any(|(refs, _)| refs.windows(2).any(|w| w[0].blob != w[1].blob));
        assert!(
            spans,
            "batch_bytes {batch_bytes}: some batch holds chunks of several blobs"
        );
        // Partial last chunks (1, 1000, CHUNK_SIZE + 1 ...) are fetched with their exact size.
        assert_eq!(
            exp.batches.iter().map(|(_, b)| b).sum::<u64>(),
            exp.header.total_blob_bytes
        );
    }
}

#[test]
fn progress_is_reported_per_batch_at_first_then_once_per_report_bytes() {
    let mib = 1024 * 1024;
    // Every batch within the first REPORT_BYTES.
    assert!(report_due(0, 2 * mib));
    assert!(report_due(REPORT_BYTES - 2 * mib, REPORT_BYTES + mib));
    // Then only the batches that cross a multiple of REPORT_BYTES.
    assert!(!report_due(REPORT_BYTES, REPORT_BYTES + 2 * mib));
    assert!(!report_due(REPORT_BYTES + 2 * mib, REPORT_BYTES + 4 * mib));
    assert!(report_due(2 * REPORT_BYTES - mib, 2 * REPORT_BYTES + mib));
    let batches = (0..512u64).filter(|i| report_due(i * 2 * mib, (i + 1) * 2 * mib));
    let per_report = REPORT_BYTES / (2 * mib);
    assert_eq!(
        batches.count() as u64,
        per_report + (512 - per_report) / per_report,
        "1 GiB in 2 MiB batches: every batch of the first REPORT_BYTES, then one per REPORT_BYTES"
    );
}
