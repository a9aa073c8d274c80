//! The personal canister's reports: progress, and the root it recomputed (idempotent).

use super::*;

impl<M: StableMemory> Factory<M> {
    /// The registered personal canister of an importing migration, or the reason it is not.
    pub fn check_importer(
        &self,
        migration_id: u64,
        caller: Principal,
    ) -> Result<CreationRecord, migration::protocol::ExportError> {
        use migration::protocol::ExportError;
        let rec = self
            .record(migration_id)
            .ok_or(ExportError::UnknownMigration { migration_id })?;
        if rec.canister_id != Some(caller) {
            return Err(ExportError::NotTheMigrationCanister { migration_id });
        }
        if rec.state != CreationState::Importing {
            return Err(ExportError::NotImporting {
                migration_id,
                state: rec.state.to_string(),
            });
        }
        Ok(rec)
    }

    pub fn report_progress(
        &mut self,
        migration_id: u64,
        caller: Principal,
        progress: Progress,
        now: u64,
    ) -> Result<(), migration::protocol::ExportError> {
        self.check_importer(migration_id, caller)?;
        let _ = self.with_record(migration_id, |r| {
            r.progress = progress;
            r.updated_at = now;
        });
        Ok(())
    }

    /// The importer reports the header it recomputed from stored data: equal roots move the
    /// creation to `Verifying`; a mismatch fails it, naming the sections that differ.
    ///
    /// Idempotent: a report repeated after its reply was lost gets the outcome already reached
    /// (`Ok` once the creation is `Verifying` or `Completed` with this root; `RootMismatch`
    /// again after a mismatch), so the importer and the backend end in the same final state.
    pub fn report_done<C: StableMemory>(
        &mut self,
        migration_id: u64,
        caller: Principal,
        header: ManifestHeader,
        capsules: &mut CapsuleStore<C>,
        now: u64,
    ) -> Result<(), migration::protocol::ExportError> {
        use migration::protocol::ExportError;
        let rec = self
            .record(migration_id)
            .ok_or(ExportError::UnknownMigration { migration_id })?;
        if rec.canister_id != Some(caller) {
            return Err(ExportError::NotTheMigrationCanister { migration_id });
        }
        let exported_root = rec.manifest.as_ref().map(|m| m.root.into_array());
        let consistent = header.compute_root() == header.root;
        match rec.state {
            CreationState::Importing => {}
            CreationState::Verifying | CreationState::Completed
                if consistent && exported_root == Some(header.root) =>
            {
                return Ok(());
            }
            CreationState::Failed
                if matches!(rec.error, Some(FactoryError::RootMismatch { .. })) =>
            {
                let detail = rec.error.map(|e| e.to_string()).unwrap_or_default();
                return Err(ExportError::RootMismatch { detail });
            }
            state => {
                return Err(ExportError::NotImporting {
                    migration_id,
                    state: state.to_string(),
                });
            }
        }
        let expected = self.manifests.header(migration_id);
        let Some(expected) = expected else {
            self.fail(
                migration_id,
                FactoryError::ExportManifestMissing { migration_id },
                capsules,
                now,
            );
            return Err(ExportError::UnknownMigration { migration_id });
        };
        let Err(sections) = migration::export::check_report(&expected, &header) else {
            let _ = self.transition(
                migration_id,
                CreationState::Importing,
                CreationState::Verifying,
                now,
                |r| {
                    r.progress.bytes_done = r.progress.bytes_total;
                    r.progress.chunks_done = r.progress.chunks_total;
                    r.progress.memories_done = r.progress.memories_total;
                    r.progress.connections_done = r.progress.connections_total;
                    r.step_retries = 0;
                },
            );
            return Ok(());
        };
        let err = FactoryError::RootMismatch {
            expected: blobstore::hash::to_hex(&expected.root),
            actual: blobstore::hash::to_hex(&header.root),
            sections: sections.iter().map(|s| s.name().to_string()).collect(),
        };
        self.fail(migration_id, err.clone(), capsules, now);
        Err(ExportError::RootMismatch {
            detail: err.to_string(),
        })
    }
}
