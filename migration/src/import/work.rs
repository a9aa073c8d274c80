//! Local work between calls: writing the verified records, then verifying what is stored,
//! as many units per message as fit under the instruction budget.

use super::*;

impl<M: Memory> Importer<M> {
    /// Local work (reset, records, prune, verification) in units of [`Importer::work`] for as
    /// long as there is some and `more()` says the message has room for another unit (the
    /// driver asks the instruction counter). Does at least one unit.
    pub fn work_for<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        mut more: impl FnMut() -> bool,
    ) {
        loop {
            self.work(store, owner, now);
            if !self.has_local_work() || !more() {
                return;
            }
        }
    }

    /// Whether the next thing to do is local work (no call to make or wait for).
    pub fn has_local_work(&self) -> bool {
        let st = &self.state.get().0;
        st.error.is_none()
            && matches!(
                st.step,
                Step::Resetting { .. }
                    | Step::Records { .. }
                    | Step::Prune
                    | Step::Verifying { .. }
            )
    }

    /// One bounded unit of local work (reset, records, prune, verification).
    pub fn work<S: Memory>(&mut self, store: &mut CapsuleStore<S>, owner: Principal, now: u64) {
        self.with(|imp, st| {
            if st.error.is_some() {
                return;
            }
            if let Err(e) = imp.work_inner(st, store, owner, now) {
                st.fail(e);
            }
        })
    }

    pub(super) fn work_inner<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
    ) -> Outcome {
        let Some(m) = st.migration.clone() else {
            return Ok(());
        };
        let scope = m.migration_id;
        match st.step.clone() {
            Step::Manifest { .. } => self.finish_manifest(st, store),
            Step::Resetting { old, stage } => {
                let next = match stage {
                    ResetStage::ClearStaged => {
                        let mut done = self.staged.clear(old, LEAVES_PER_STEP);
                        if old != scope && done {
                            // Pages of the new id staged by an earlier attempt are stale too.
                            done = self.staged.clear(scope, LEAVES_PER_STEP);
                        }
                        done.then_some(ResetStage::ClearOwn)
                    }
                    ResetStage::ClearOwn => {
                        let mut done = self.staged.clear(OWN_SCOPE, LEAVES_PER_STEP);
                        if done {
                            done = self.staged.clear(scope, LEAVES_PER_STEP);
                        }
                        done.then_some(ResetStage::KeepUploads)
                    }
                    ResetStage::KeepUploads => {
                        // Open uploads become orphans: a blob still wanted reuses its session.
                        let batch: Vec<(u64, OpenBlob)> = self
                            .open
                            .iter()
                            .take(LEAVES_PER_STEP)
                            .map(|e| {
                                let (k, v) = e.into_pair();
                                (k, v.0)
                            })
                            .collect();
                        for (leaf, ob) in &batch {
                            self.open.remove(leaf);
                            self.orphans.insert(ob.hash.into_array(), ob.upload);
                        }
                        let todo: Vec<(u64, u64)> =
                            self.todo.keys().take(LEAVES_PER_STEP).collect();
                        for k in &todo {
                            self.todo.remove(k);
                        }
                        (self.open.is_empty() && self.todo.is_empty())
                            .then_some(ResetStage::PinBlobs { after: None })
                    }
                    ResetStage::PinBlobs { after } => {
                        let held =
                            store.held_blobs(owner, after.map(|a| a.into_array()), LEAVES_PER_STEP);
                        for h in &held {
                            if !self.pinned.contains_key(h) {
                                store.pin_blob(h).map_err(|error| ImportError::PinFailed {
                                    blob: to_hex(h),
                                    error,
                                })?;
                                self.pinned.insert(*h, 0);
                            }
                        }
                        Some(match held.last() {
                            Some(last) if held.len() == LEAVES_PER_STEP => ResetStage::PinBlobs {
                                after: Some(ByteArray::new(*last)),
                            },
                            _ => ResetStage::DropRecords,
                        })
                    }
                    ResetStage::DropRecords => {
                        let done = store
                            .drop_capsule_contents(owner, now, LEAVES_PER_STEP)
                            .map_err(|error| ImportError::ResetFailed { error })?;
                        if done {
                            st.step = Step::Manifest { verifier: None };
                            return Ok(());
                        }
                        Some(ResetStage::DropRecords)
                    }
                };
                if let Some(stage) = next {
                    st.step = Step::Resetting { old, stage };
                }
                Ok(())
            }
            Step::Records { section, next } => {
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
            Step::Prune => {
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
            Step::Verifying { cleared, mut walk } => {
                if !cleared {
                    // What an earlier layout copied under OWN_SCOPE is not used any more.
                    let done = self.staged.clear(OWN_SCOPE, LEAVES_PER_STEP);
                    st.step = Step::Verifying {
                        cleared: done,
                        walk,
                    };
                    return Ok(());
                }
                let header = walk
                    .step_framed(store, LEAVES_PER_STEP, |_, _| {})
                    .map_err(|error| ImportError::WalkFailed { error })?;
                let Some(header) = header else {
                    st.step = Step::Verifying {
                        cleared: true,
                        walk,
                    };
                    return Ok(());
                };
                if header.root != m.manifest_root.into_array() {
                    let expected = self.staged.header(scope);
                    return Err(root_mismatch(expected.as_ref(), &header));
                }
                // The stored records give the migration's root, so the staged (verified)
                // manifest is the manifest of what this canister holds: it serves
                // `get_manifest_page` from there.
                st.step = Step::Reporting { header };
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
