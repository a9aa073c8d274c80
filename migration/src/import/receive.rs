//! Receiving: a manifest page verified and staged, a batch of chunks stored, the import
//! finished once everything arrived.

use super::*;

impl<M: Memory> Importer<M> {
    /// The answer to a [`Action::FetchPage`].
    pub fn on_page<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        call: u64,
        reply: Result<Result<RawPageReply, ExportError>, CallFault>,
    ) {
        self.with(|imp, st| {
            let Some(c) = st.take_call(call) else {
                return; // Forgotten (stale or replaced): its page is asked for again.
            };
            let CallKind::Page(cursor) = c.kind else {
                return;
            };
            let reply = match answer(st, now, reply) {
                Some(r) => r,
                None => return,
            };
            if let Err(e) = imp.accept_page(st, store, owner, cursor, reply) {
                st.fail(e);
            }
        })
    }

    pub(super) fn accept_page<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        cursor: PageCursor,
        reply: RawPageReply,
    ) -> Outcome {
        let Some(m) = st.migration.clone() else {
            return Ok(());
        };
        let Step::Manifest { verifier } = &mut st.step else {
            return Ok(()); // A late answer.
        };
        if reply.page.cursor() != cursor {
            return Err(ImportError::PageOutOfOrder {
                asked: cursor,
                sent: reply.page.cursor(),
            });
        }
        let v = match verifier {
            Some(v) => v,
            None => {
                let root = m.manifest_root.into_array();
                let v = PageVerifier::new_expecting(reply.header.clone(), &root).map_err(|e| {
                    ImportError::ManifestRootMismatch {
                        migration_id: m.migration_id,
                        reason: e.to_string(),
                    }
                })?;
                if v.header().owner != owner {
                    return Err(ImportError::OwnerMismatch {
                        manifest_owner: v.header().owner,
                        owner,
                    });
                }
                verifier.insert(v)
            }
        };
        v.push_raw_reply(&reply)
            .map_err(|e| ImportError::PageRejected {
                cursor,
                reason: e.to_string(),
            })?;
        let complete = v.is_complete();
        // What was verified is stored as it came: the canonical bytes, not decoded.
        self.staged.put_raw_page(m.migration_id, &reply.page);
        if complete {
            self.finish_manifest(st, store)?;
        }
        Ok(())
    }

    /// Every page arrived: check the root, write the capsule leaf (frozen), set the totals.
    pub(super) fn finish_manifest<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
    ) -> Outcome {
        let (Some(m), Step::Manifest { verifier: Some(v) }) = (st.migration.clone(), &st.step)
        else {
            return Ok(());
        };
        let header = v
            .clone()
            .finish()
            .map_err(|e| ImportError::ManifestUnverified {
                reason: e.to_string(),
            })?;
        self.staged.set_header(m.migration_id, header.clone());
        let Some(StoredLeaf::Capsule(leaf)) = self.staged.leaf(m.migration_id, Section::Capsule, 0)
        else {
            return Err(ImportError::NoCapsuleLeaf);
        };
        store
            .import_capsule(&leaf, &freeze_reason(m.migration_id))
            .map_err(|error| ImportError::CapsuleNotCreated { error })?;
        st.progress = Progress::of_manifest(&header);
        st.step = Step::Chunks { next_blob: 0 };
        Ok(())
    }

    /// The answer to a [`Action::FetchChunks`]. Returns the progress to report to the backend
    /// when the batch was stored and a report is due ([`report_due`]).
    pub fn on_chunks<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        call: u64,
        reply: Result<Result<ChunkBatch, ExportError>, CallFault>,
    ) -> Option<ImportProgress> {
        let reply = match &reply {
            Ok(Ok(batch)) => Ok(Ok(batch.as_ref())),
            Ok(Err(e)) => Ok(Err(e.clone())),
            Err(f) => Err(f.clone()),
        };
        self.on_chunk_refs(store, owner, now, call, reply)
    }

    /// [`Importer::on_chunks`] with the reply decoded in place (the driver's way: chunk bytes
    /// go from the reply's buffer to stable memory without a copy).
    pub fn on_chunk_refs<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        call: u64,
        reply: Result<Result<ChunkBatchRef<'_>, ExportError>, CallFault>,
    ) -> Option<ImportProgress> {
        self.with(|imp, st| {
            let c = st.take_call(call)?;
            let CallKind::Chunks(asked) = c.kind else {
                return None;
            };
            let Some(batch) = answer(st, now, reply) else {
                for (leaf, index) in asked {
                    imp.return_chunk(leaf, index);
                }
                return None;
            };
            let migration_id = st.scope();
            let before = st.progress.bytes_done;
            match imp.store_batch(st, store, owner, &asked, batch) {
                Ok(()) => report_due(before, st.progress.bytes_done).then(|| ImportProgress {
                    migration_id,
                    progress: st.progress.clone(),
                }),
                Err(e) => {
                    st.fail(e);
                    None
                }
            }
        })
    }

    pub(super) fn store_batch<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        asked: &[(u64, u64)],
        batch: ChunkBatchRef<'_>,
    ) -> Outcome {
        let mut stored = 0usize;
        let mut result = Ok(());
        if batch.chunks.len() != asked.len() {
            result = Err(ImportError::ChunkCountMismatch {
                asked: asked.len() as u64,
                sent: batch.chunks.len() as u64,
            });
        }
        // Open blobs read once and written back once per batch, however many of their chunks
        // it holds.
        let mut touched: BTreeMap<u64, Option<OpenBlob>> = BTreeMap::new();
        for (&(leaf, index), chunk) in asked.iter().zip(batch.chunks.iter()) {
            if result.is_err() {
                break;
            }
            let open = &self.open;
            let entry = touched
                .entry(leaf)
                .or_insert_with(|| open.get(&leaf).map(|p| p.0));
            let Some(ob) = entry.as_mut() else {
                stored += 1; // Finished meanwhile: nothing to store.
                continue;
            };
            if chunk.blob != ob.hash || chunk.index != index {
                result = Err(ImportError::ChunkOutOfOrder {
                    blob: to_hex(&ob.hash),
                    index,
                    sent_blob: to_hex(&chunk.blob),
                    sent_index: chunk.index,
                });
                break;
            }
            if let Err(error) = store.put_imported_chunk(owner, ob.upload, index, chunk.bytes) {
                let blob = to_hex(&ob.hash);
                result = Err(match error {
                    CapsuleError::Blob(
                        BlobError::ChunkHashMismatch { .. } | BlobError::ChunkSizeMismatch { .. },
                    ) => ImportError::ChunkRejected { blob, index, error },
                    error => ImportError::ChunkNotStored { blob, index, error },
                });
                break;
            }
            stored += 1;
            ob.in_flight = ob.in_flight.saturating_sub(1);
            st.progress.chunks_done += 1;
            st.progress.bytes_done += chunk.bytes.len() as u64;
        }
        for (leaf, ob) in touched {
            if let Some(ob) = ob {
                self.open.insert(leaf, Packed(ob));
            }
        }
        // Chunks not stored are asked for again if the import resumes.
        for &(leaf, index) in asked.iter().skip(stored) {
            self.return_chunk(leaf, index);
        }
        result?;
        st.attempts = 0;
        let mut leaves: Vec<u64> = asked.iter().map(|(l, _)| *l).collect();
        leaves.dedup();
        for leaf in leaves {
            self.finish_if_complete(store, owner, leaf)?;
        }
        Ok(())
    }

    pub(super) fn finish_if_complete<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        leaf: u64,
    ) -> Outcome {
        let Some(Packed(ob)) = self.open.get(&leaf) else {
            return Ok(());
        };
        let queued = self
            .todo
            .keys_range((leaf, 0)..=(leaf, u64::MAX))
            .next()
            .is_some();
        if ob.in_flight > 0 || queued {
            return Ok(());
        }
        let missing = store.blob_store().missing_chunks(ob.upload).map_err(|e| {
            ImportError::BlobSessionLost {
                blob: to_hex(&ob.hash),
                error: e.into(),
            }
        })?;
        if !missing.is_empty() {
            for (start, end) in ranges(&missing) {
                self.todo.insert((leaf, start), end);
            }
            return Ok(());
        }
        store
            .finish_blob_import(owner, ob.upload)
            .map_err(|error| ImportError::BlobNotFinished {
                blob: to_hex(&ob.hash),
                error,
            })?;
        self.open.remove(&leaf);
        Ok(())
    }
}

/// Sorts out a call's result: `Some(reply)` to act on; `None` when the call must be retried
/// later (backoff counted) or failed the import (error set).
pub(super) fn answer<T>(
    st: &mut ImportState,
    now: u64,
    reply: Result<Result<T, ExportError>, CallFault>,
) -> Option<T> {
    match reply {
        Ok(Ok(r)) => Some(r),
        Ok(Err(e @ ExportError::NotImporting { .. })) => {
            // The backend is not (yet, or no longer) importing: wait, a bounded number of times.
            st.backoff(now, RetryCause::Backend(e));
            None
        }
        Ok(Err(error)) => {
            st.fail(ImportError::BackendRefused { error });
            None
        }
        Err(fault) if fault.is_retryable() => {
            st.backoff(now, RetryCause::Call(fault));
            None
        }
        Err(fault) => {
            st.fail(ImportError::CallFailed { fault });
            None
        }
    }
}
