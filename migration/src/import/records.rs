//! Records: the verified connections and memories written from the staged manifest, some per
//! message; then what a replaced migration left (pinned blobs, orphan uploads) released.

use super::*;

impl<M: Memory> Importer<M> {
    /// One unit of records of `section` from leaf `next`: at most `records_per_step` of them.
    pub(super) fn records<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        m: &MigrationInit,
        section: Section,
        next: u64,
    ) -> Outcome {
        let scope = m.migration_id;
        let per_step = m.config.records_per_step.clamp(1, 5_000) as usize;
        let Some(header) = self.staged.header(scope) else {
            return Err(ImportError::HeaderMissing);
        };
        let n = match section {
            Section::Connections => {
                let leaves = self.staged.leaves(scope, section, next, per_step);
                let v = leaves
                    .into_iter()
                    .map(|l| match l {
                        StoredLeaf::Connection(c) => Ok(c),
                        _ => Err(ImportError::UnexpectedLeaf { section }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                store.import_connections(owner, &v).map_err(|(i, error)| {
                    ImportError::ConnectionNotImportable {
                        peer: v[i].peer,
                        error,
                    }
                })?;
                st.progress.connections_done += v.len() as u64;
                v.len()
            }
            Section::Memories => {
                // Stored as they were verified: each memory's bytes are decoded for the
                // checks and written as they are.
                let framed = self.staged.frames(scope, section, next, per_step);
                let v = framed
                    .frames()
                    .collect::<Result<Vec<&[u8]>, _>>()
                    .unwrap_or_else(|e| panic!("importer: staged leaves: {e}"));
                store
                    .import_memory_encodings(owner, &v)
                    .map_err(|(i, error)| ImportError::MemoryNotImportable {
                        id: memory_id_of_encoding(v[i])
                            .expect("staged memory leaves were decoded when verified"),
                        error,
                    })?;
                st.progress.memories_done += v.len() as u64;
                v.len()
            }
            _ => return Err(ImportError::NotARecordSection { section }),
        };
        let next = next + n as u64;
        st.step = if next < header.count(section) && n > 0 {
            Step::Records { section, next }
        } else if section == Section::Connections {
            Step::Records {
                section: Section::Memories,
                next: 0,
            }
        } else {
            Step::Prune
        };
        Ok(())
    }

    /// One unit of releasing what a replaced migration left: pinned blobs unpinned, orphan
    /// uploads aborted; then verification begins.
    pub(super) fn prune<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
    ) -> Outcome {
        let pinned: Vec<[u8; 32]> = self.pinned.keys().take(LEAVES_PER_STEP).collect();
        for h in &pinned {
            store
                .unpin_blob(h)
                .map_err(|error| ImportError::UnpinFailed {
                    blob: to_hex(h),
                    error,
                })?;
            self.pinned.remove(h);
        }
        let orphans: Vec<([u8; 32], u64)> = self
            .orphans
            .iter()
            .take(LEAVES_PER_STEP)
            .map(|e| e.into_pair())
            .collect();
        for (h, upload) in &orphans {
            // Gone already (expired) is fine: there is nothing left to release.
            let _ = store.abort_blob_import(owner, *upload);
            self.orphans.remove(h);
        }
        if self.pinned.is_empty() && self.orphans.is_empty() {
            st.step = Step::Verifying {
                cleared: false,
                walk: ManifestWalk::new(owner),
            };
        }
        Ok(())
    }
}
