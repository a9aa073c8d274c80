//! Resetting: a newer migration replaces an older one. In stages, each bounded: the staged
//! pages of both cleared, open uploads kept as orphans (a blob still wanted reuses its
//! session), the blobs the capsule holds pinned so that its records can be dropped without
//! losing their chunks, then the records dropped.

use super::*;

impl<M: Memory> Importer<M> {
    /// One unit of the reset from migration `old`, at `stage`.
    pub(super) fn reset<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        old: u64,
        stage: ResetStage,
    ) -> Outcome {
        let scope = st.scope();
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
                let todo: Vec<(u64, u64)> = self.todo.keys().take(LEAVES_PER_STEP).collect();
                for k in &todo {
                    self.todo.remove(k);
                }
                (self.open.is_empty() && self.todo.is_empty())
                    .then_some(ResetStage::PinBlobs { after: None })
            }
            ResetStage::PinBlobs { after } => {
                let held = store.held_blobs(owner, after.map(|a| a.into_array()), LEAVES_PER_STEP);
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
}
