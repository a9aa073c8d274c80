//! Local work between calls, as many units per message as fit under the instruction budget:
//! each unit is one step's bounded work (`reset.rs`, `records.rs`, `verify.rs`, or the
//! manifest's end in `receive.rs`).

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
        match st.step.clone() {
            Step::Manifest { .. } => self.finish_manifest(st, store),
            Step::Resetting { old, stage } => self.reset(st, store, owner, now, old, stage),
            Step::Records { section, next } => self.records(st, store, owner, &m, section, next),
            Step::Prune => self.prune(st, store, owner),
            Step::Verifying { cleared, walk } => self.verify(st, store, &m, cleared, walk),
            _ => Ok(()),
        }
    }
}
