//! Planning: the next batch of chunks to ask for (bounded by bytes per reply), and calls
//! that failed put back in the queue.

use super::*;

impl<M: Memory> Importer<M> {
    /// Puts the work of a lost or failed call back to be planned again.
    pub(super) fn requeue(&mut self, call: InFlight) {
        if let CallKind::Chunks(refs) = call.kind {
            for (leaf, index) in refs {
                self.return_chunk(leaf, index);
            }
        }
    }

    pub(super) fn return_chunk(&mut self, leaf: u64, index: u64) {
        if let Some(Packed(mut ob)) = self.open.get(&leaf) {
            ob.in_flight = ob.in_flight.saturating_sub(1);
            self.open.insert(leaf, Packed(ob));
            self.todo.insert((leaf, index), index + 1);
        }
    }

    /// Plans the next batch: chunks still to ask for, in blob order, opening blobs as needed;
    /// at most `batch_bytes` (clamped to one chunk .. [`MAX_CHUNK_BATCH_BYTES`]) and
    /// [`MAX_CHUNKS_PER_BATCH`] chunks. Returns (leaf index, blob, chunk index) triples.
    pub(super) fn plan_batch<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        m: &MigrationInit,
        planned: &mut Vec<(u64, Hash, u64)>,
    ) -> Outcome {
        let result = self.plan_into(st, store, owner, now, m, planned);
        if result.is_err() {
            for (leaf, _, index) in planned.drain(..) {
                self.return_chunk(leaf, index);
            }
        }
        result
    }

    pub(super) fn plan_into<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        m: &MigrationInit,
        planned: &mut Vec<(u64, Hash, u64)>,
    ) -> Outcome {
        let max_bytes = batch_limit(m.config.batch_bytes);
        let scope = m.migration_id;
        let blob_count = self
            .staged
            .header(scope)
            .map_or(0, |h| h.count(Section::Blobs));
        let mut bytes = 0u64;
        while planned.len() < MAX_CHUNKS_PER_BATCH {
            if let Some(entry) = self.todo.first_key_value() {
                let ((leaf, start), end) = entry;
                let Some(Packed(mut ob)) = self.open.get(&leaf) else {
                    self.todo.remove(&(leaf, start));
                    continue;
                };
                // As many chunks of the range as the batch takes; the range and the open blob
                // are written once for all of them.
                let mut next = start;
                while next < end && planned.len() < MAX_CHUNKS_PER_BATCH {
                    let len = chunk_len(ob.size, next).unwrap_or(0) as u64;
                    if !planned.is_empty() && bytes + len > max_bytes {
                        break;
                    }
                    planned.push((leaf, ob.hash.into_array(), next));
                    bytes += len;
                    next += 1;
                }
                if next == start {
                    break; // The batch is full.
                }
                self.todo.remove(&(leaf, start));
                if next < end {
                    self.todo.insert((leaf, next), end);
                }
                ob.in_flight += next - start;
                self.open.insert(leaf, Packed(ob));
                if next < end {
                    break; // The batch is full.
                }
                continue;
            }
            let Step::Chunks { next_blob } = &mut st.step else {
                break;
            };
            if *next_blob >= blob_count || self.open.len() >= MAX_OPEN_BLOBS {
                break;
            }
            let index = *next_blob;
            let Some(StoredLeaf::Blob(leaf)) = self.staged.leaf(scope, Section::Blobs, index)
            else {
                return Err(ImportError::BlobLeafMissing { index });
            };
            let not_begun = |error| ImportError::BlobNotBegun {
                blob: to_hex(&leaf.hash),
                error,
            };
            let (upload, missing) = match self.orphans.remove(&leaf.hash) {
                Some(upload) => match store.blob_store().missing_chunks(upload) {
                    Ok(missing) => (upload, missing),
                    Err(_) => store
                        .begin_blob_import(owner, &leaf, now)
                        .map_err(not_begun)?,
                },
                None => store
                    .begin_blob_import(owner, &leaf, now)
                    .map_err(not_begun)?,
            };
            *next_blob += 1;
            let missing_bytes: u64 = missing
                .iter()
                .map(|i| chunk_len(leaf.size, *i).unwrap_or(0) as u64)
                .sum();
            let count = leaf.chunk_hashes.len() as u64;
            st.progress.chunks_done += count.saturating_sub(missing.len() as u64);
            st.progress.bytes_done += leaf.size.saturating_sub(missing_bytes);
            if missing.is_empty() {
                store.finish_blob_import(owner, upload).map_err(|error| {
                    ImportError::BlobNotFinished {
                        blob: to_hex(&leaf.hash),
                        error,
                    }
                })?;
                continue;
            }
            self.open.insert(
                index,
                Packed(OpenBlob {
                    hash: ByteArray::new(leaf.hash),
                    size: leaf.size,
                    upload,
                    in_flight: 0,
                }),
            );
            for (start, end) in ranges(&missing) {
                self.todo.insert((index, start), end);
            }
        }
        Ok(())
    }
}
