//! After completion: purging the shared copy and the exported manifest.

use super::*;

impl<M: StableMemory> Factory<M> {
    /// The owner asks to purge the shared copy now.
    pub fn request_purge(&mut self, owner: Principal) -> Result<CreationRecord, FactoryError> {
        let rec = self.record_of(owner).ok_or(FactoryError::NoCreation)?;
        if rec.state != CreationState::Completed {
            return Err(FactoryError::InvalidState {
                state: rec.state,
                expected: "Completed".into(),
            });
        }
        self.with_record(rec.migration_id, |r| {
            r.purge_requested = true;
            r.clone()
        })
    }

    /// Removes up to `budget` leaves of the manifest `owner`'s migration exported (its header,
    /// and with it every page, goes with the last leaf); returns whether it is gone. The
    /// record keeps the root and the counts.
    pub fn clear_exported_manifest(&mut self, owner: Principal, budget: usize) -> bool {
        match self.by_owner.get(&owner) {
            Some(id) => self.manifests.clear(id, budget),
            None => true,
        }
    }

    pub fn mark_purged(&mut self, owner: Principal) {
        if let Some(id) = self.by_owner.get(&owner) {
            let _ = self.with_record(id, |r| r.shared_capsule_purged = true);
        }
    }
}
