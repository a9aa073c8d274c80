//! `blake3_bench`: hashes `len` bytes with BLAKE3 and reports the instructions it took.

/// Returns `(instructions spent hashing, hash)`; filling the buffer is not counted.
#[ic_cdk::update]
fn bench(len: u64) -> (u64, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let before = ic_cdk::api::performance_counter(0);
    let hash = blake3::hash(std::hint::black_box(&data));
    let after = ic_cdk::api::performance_counter(0);
    (after - before, hash.as_bytes().to_vec())
}
