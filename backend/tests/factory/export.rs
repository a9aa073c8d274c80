//! The export queries: manifest pages that verify against the export root, and chunks of this
//! export only, in bounded batches.

use super::*;

#[test]
fn the_export_serves_pages_that_verify_and_only_its_own_chunks() {
    let (mut f, mut c) = funded_with(&[1, 2]);
    let id = to_importing(&mut f, &mut c, 1);
    let header = f.manifests().header(id).unwrap();

    // Pages, pulled as the personal canister does, verify against the export root.
    let mut v = PageVerifier::new_expecting(header.clone(), &header.root).unwrap();
    let mut cursor = Some(PageCursor::FIRST);
    let mut blobs = vec![];
    while let Some(at) = cursor {
        let reply = export::manifest_page(&f, id, personal(1), at, false).unwrap();
        if let manifests::PageLeaves::Blobs(b) = &reply.page.leaves {
            blobs.extend(b.clone());
        }
        v.push_reply(&reply).unwrap();
        cursor = reply.page.next;
    }
    assert_eq!(v.finish().unwrap().root, header.root);
    assert_eq!(
        export::manifest_page(&f, id, user(1), PageCursor::FIRST, false).unwrap_err(),
        ExportError::NotTheMigrationCanister { migration_id: id }
    );

    // Raw pages: the same leaves as canonical bytes, verified the same way.
    let mut v = PageVerifier::new_expecting(header.clone(), &header.root).unwrap();
    let mut cursor = Some(PageCursor::FIRST);
    while let Some(at) = cursor {
        let raw = export::raw_manifest_page(&f, id, personal(1), at).unwrap();
        let typed = export::manifest_page(&f, id, personal(1), at, false).unwrap();
        assert_eq!(raw.page.decode().unwrap(), typed.page);
        v.push_raw_reply(&raw).unwrap();
        cursor = raw.page.next;
    }
    assert_eq!(v.finish().unwrap().root, header.root);
    assert_eq!(
        export::raw_manifest_page(&f, id, user(1), PageCursor::FIRST).unwrap_err(),
        ExportError::NotTheMigrationCanister { migration_id: id }
    );
    let past = PageCursor {
        section: manifests::Section::Memories,
        index: header.memory_count,
    };
    assert_eq!(
        export::raw_manifest_page(&f, id, personal(1), past).unwrap_err(),
        ExportError::CursorOutOfRange {
            cursor: past.to_string()
        }
    );

    // Chunks: the right bytes, in order; nothing outside the manifest; bounded batches.
    let blob = &blobs[0];
    let refs: Vec<ChunkRef> = (0..3)
        .map(|i| ChunkRef {
            blob: ByteArray::new(blob.hash),
            index: i,
        })
        .collect();
    let batch = export::chunks(&f, &c, id, personal(1), &refs, |_| {}).unwrap();
    for (i, chunk) in batch.chunks.iter().enumerate() {
        let hash = blobstore::hash::chunk_hash(blob.size, i as u64, &chunk.bytes);
        assert_eq!(hash, blob.chunk_hashes[i]);
    }
    let other = c.get_capsule(&ctx(2)).unwrap();
    assert_eq!(other.blob_count, 1);
    let other_blob = c.blob_leaves(user(2), None, 1).remove(0);
    // One chunk, asked for by the personal canister.
    let one = |hash: [u8; 32], index: u64| {
        let chunk = ChunkRef {
            blob: ByteArray::new(hash),
            index,
        };
        export::chunks(&f, &c, id, personal(1), &[chunk], |_| {})
    };
    assert!(matches!(
        one(other_blob.hash, 0),
        Err(ExportError::BlobNotInManifest { .. })
    ));
    assert!(matches!(
        one(blob.hash, 3),
        Err(ExportError::ChunkOutOfRange {
            index: 3,
            chunk_count: 3,
            ..
        })
    ));
    let too_many: Vec<ChunkRef> = (0..9).map(|_| refs[0].clone()).collect();
    assert_eq!(
        export::chunks(&f, &c, id, personal(1), &too_many, |_| {}).unwrap_err(),
        ExportError::BatchTooLarge {
            bytes: 9 * CHUNK_SIZE as u64,
            max: MAX_CHUNK_BATCH_BYTES
        }
    );
    assert!(matches!(
        export::chunks(&f, &c, id, user(1), &refs, |_| {}),
        Err(ExportError::NotTheMigrationCanister { .. })
    ));
}
