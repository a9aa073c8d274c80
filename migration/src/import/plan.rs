//! Planning: what to do next (the call to make, local work, or waiting), the next batch of
//! chunks to ask for (bounded by bytes per reply), and calls that failed put back in the
//! queue.

use super::*;

impl<M: Memory> Importer<M> {
    /// What to do next; starts (registers) the call it returns.
    pub fn next<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
    ) -> Action {
        self.with(|imp, st| imp.next_inner(st, store, owner, now))
    }

    fn next_inner<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
    ) -> Action {
        if st.error.is_some() {
            return Action::Stop;
        }
        let Some(m) = st.migration.clone() else {
            return Action::Stop;
        };
        // Calls that never came back: plan their work again.
        let (stale, live): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut st.in_flight)
            .into_iter()
            .partition(|c| now.saturating_sub(c.since) > STALE_CALL_NS);
        st.in_flight = live;
        for c in stale {
            self.requeue(c);
        }
        let calls_cap = m.config.calls_in_flight.clamp(1, MAX_CALLS_IN_FLIGHT) as usize;
        let backing_off = st.retry_at > now;
        let wait = |st: &ImportState| Action::Wait {
            until: (st.retry_at > now).then_some(st.retry_at),
        };
        match st.step.clone() {
            Step::Idle | Step::Done { .. } => Action::Stop,
            Step::Resetting { .. }
            | Step::Records { .. }
            | Step::Prune
            | Step::Verifying { .. } => Action::Work,
            Step::Manifest { verifier } => {
                if !st.in_flight.is_empty() || backing_off {
                    return wait(st);
                }
                let cursor = match &verifier {
                    None => PageCursor::FIRST,
                    Some(v) => match v.next_cursor() {
                        Some(c) => c,
                        None => return Action::Work,
                    },
                };
                let call = st.call(now, CallKind::Page(cursor));
                Action::FetchPage {
                    call,
                    migration_id: m.migration_id,
                    cursor,
                }
            }
            Step::Chunks { .. } => {
                if st.in_flight.len() >= calls_cap || backing_off {
                    return wait(st);
                }
                let mut planned = Vec::new();
                let result = self.plan_batch(st, store, owner, now, &m, &mut planned);
                match result.map(|()| planned) {
                    Err(e) => {
                        st.fail(e);
                        Action::Stop
                    }
                    Ok(refs) if refs.is_empty() => {
                        if st.in_flight.is_empty() && self.open.is_empty() {
                            st.step = Step::Records {
                                section: Section::Connections,
                                next: 0,
                            };
                            Action::Work
                        } else {
                            wait(st)
                        }
                    }
                    Ok(planned) => {
                        let refs = planned
                            .iter()
                            .map(|(_, blob, index)| ChunkRef {
                                blob: ByteArray::new(*blob),
                                index: *index,
                            })
                            .collect();
                        let call = st.call(
                            now,
                            CallKind::Chunks(planned.iter().map(|(l, _, i)| (*l, *i)).collect()),
                        );
                        Action::FetchChunks {
                            call,
                            migration_id: m.migration_id,
                            refs,
                        }
                    }
                }
            }
            Step::Reporting { header } => {
                if !st.in_flight.is_empty() || backing_off {
                    return wait(st);
                }
                let call = st.call(now, CallKind::Report);
                Action::ReportDone {
                    call,
                    report: Box::new(ImportReport {
                        migration_id: m.migration_id,
                        header,
                    }),
                }
            }
        }
    }

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

/// Sorted indices as half-open ranges.
pub(super) fn ranges(indices: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &i in indices {
        match out.last_mut() {
            Some((_, end)) if *end == i => *end = i + 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}
