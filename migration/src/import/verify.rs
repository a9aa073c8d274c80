//! Verifying and reporting: the manifest recomputed from what this canister stored (a
//! `ManifestWalk` over its own store) must have the migration's root; the backend is then told
//! (`report_import_done`), and its answer ends the import.

use super::*;

impl<M: Memory> Importer<M> {
    /// One unit of verification: what an earlier layout copied under [`OWN_SCOPE`] cleared
    /// first, then the walk over the own store, [`LEAVES_PER_STEP`] leaves a unit.
    pub(super) fn verify<S: Memory>(
        &mut self,
        st: &mut ImportState,
        store: &mut CapsuleStore<S>,
        m: &MigrationInit,
        cleared: bool,
        mut walk: ManifestWalk,
    ) -> Outcome {
        let scope = m.migration_id;
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

    /// The answer to a [`Action::ReportDone`]: `Ok` means the backend verified the root.
    pub fn on_report<S: Memory>(
        &mut self,
        store: &mut CapsuleStore<S>,
        owner: Principal,
        now: u64,
        call: u64,
        reply: Result<Result<(), ExportError>, CallFault>,
    ) {
        self.with(|_, st| {
            if st.take_call(call).is_none() {
                return;
            }
            if answer(st, now, reply).is_none() {
                return;
            }
            let Step::Reporting { header } = st.step.clone() else {
                return;
            };
            if let Err(error) = store.set_frozen(owner, None) {
                st.fail(ImportError::UnfreezeFailed { error });
                return;
            }
            st.step = Step::Done { header };
        })
    }
}

/// Names what differs between the verified manifest and the one recomputed from storage.
pub(super) fn root_mismatch(
    expected: Option<&ManifestHeader>,
    actual: &ManifestHeader,
) -> ImportError {
    let mut parts = vec![];
    if let Some(expected) = expected {
        for section in Section::ALL {
            if expected.count(section) != actual.count(section) {
                parts.push(format!(
                    "{section}: {} leaves expected, {} stored",
                    expected.count(section),
                    actual.count(section)
                ));
            } else if expected.section_root(section) != actual.section_root(section) {
                parts.push(format!("{section}: section root differs"));
            }
        }
    }
    if parts.is_empty() {
        parts.push("header fields (owner or totals) differ".into());
    }
    ImportError::StoredRootMismatch {
        actual: to_hex(&actual.root),
        differences: parts,
    }
}
