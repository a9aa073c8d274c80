//! Reopening over the same memory (an upgrade) and what init refuses.

use super::*;

#[test]
fn reopening_over_the_same_memory_keeps_everything() {
    // As in a canister: virtual memories of a MemoryManager over one stable memory.
    let stable = DefaultMemoryImpl::default();
    let x = noise(CS, 40);
    let a = [x.as_slice(), b"a"].concat();
    let b = [x.as_slice(), noise(CS, 41).as_slice()].concat();
    let partial = noise(CS + 5, 42);
    let (ha, hb, open, import, stats, b_chunks);
    {
        let manager = MemoryManager::init(stable.clone());
        let mut s = BlobStore::init(blob_memories_on(&manager), Limits::default());
        ha = upload(&mut s, OWNER, &a);
        hb = upload(&mut s, OTHER, &b);
        s.add_ref(&hb).expect("ref");
        open = s
            .begin_upload(OWNER, partial.len() as u64, Some(b3(&partial)), 7)
            .expect("begin");
        s.put_chunk(OWNER, open, 1, &partial[CS..]).expect("put");
        let (hp, cp) = hash::blob_hashes(&partial);
        import = s
            .begin_import(OTHER, hp, partial.len() as u64, cp, 8)
            .expect("import");
        upload(&mut s, OWNER, &noise(300, 43));
        s.release(&b3(&noise(300, 43))).expect("release");
        stats = s.stats();
        b_chunks = s.blob_chunk_hashes(&hb).expect("chunks");
    }
    // "Upgrade": new heap state, same stable memory.
    let manager = MemoryManager::init(stable);
    let mut s = BlobStore::init(
        blob_memories_on(&manager),
        Limits {
            max_read_len: 1000,
            ..Limits::default()
        },
    );
    assert_eq!(
        s.limits().max_read_len,
        1000,
        "limits come from init, not from storage"
    );
    assert_eq!(s.stats(), stats);
    assert_eq!(s.blob(&ha).expect("a").refs, 1);
    assert_eq!(s.blob(&hb).expect("b").refs, 2);
    assert_eq!(s.blob_chunk_hashes(&hb), Some(b_chunks));
    assert_eq!(read_all(&s, &ha), a);
    assert_eq!(read_all(&s, &hb), b);
    assert_eq!(s.missing_chunks(open), Ok(vec![0]));
    assert_eq!(
        s.missing_chunks(import),
        Ok(vec![0]),
        "chunk 1 was linked from the open upload"
    );
    assert_eq!(s.upload(open).expect("open").created_ns, 7);

    assert_eq!(s.stats().free_slots, 1);

    // Sessions go on where they stopped; the freed slot is reused; ids are not reused.
    s.put_chunk(OWNER, open, 0, &partial[..CS]).expect("put");
    assert_eq!(
        (s.stats().allocated_slots, s.stats().free_slots),
        (stats.allocated_slots, 0)
    );
    assert_eq!(
        s.finish_upload(OWNER, open).expect("finish").hash,
        b3(&partial)
    );
    s.put_verified_chunk(OTHER, import, 0, &partial[..CS])
        .expect("put");
    assert_eq!(s.finish_upload(OTHER, import).expect("finish").refs, 2);
    let next = s.begin_upload(OWNER, 1, None, 9).expect("begin");
    assert!(next > import);
    assert_eq!(s.schema_version(), blobstore::SCHEMA_VERSION);
}

#[test]
#[should_panic(expected = "do not belong together")]
fn init_refuses_a_mix_of_empty_and_used_memories() {
    let mem = memories();
    drop(BlobStore::init(mem.clone(), Limits::default()));
    let mixed = Memories {
        blobs: VectorMemory::default(),
        ..mem
    };
    let _ = BlobStore::init(mixed, Limits::default());
}

#[test]
#[should_panic(expected = "does not hold a blob store")]
fn init_refuses_foreign_chunk_data() {
    let mem = memories();
    drop(BlobStore::init(mem.clone(), Limits::default()));
    mem.chunk_data.write(0, b"NOTASTORE");
    let _ = BlobStore::init(mem, Limits::default());
}

#[test]
#[should_panic(expected = "newer than this code")]
fn init_refuses_a_newer_schema() {
    let mem = memories();
    drop(BlobStore::init(mem.clone(), Limits::default()));
    // The schema version is the little-endian u32 after the 8-byte magic.
    mem.chunk_data
        .write(8, &(blobstore::SCHEMA_VERSION + 1).to_le_bytes());
    let _ = BlobStore::init(mem, Limits::default());
}
