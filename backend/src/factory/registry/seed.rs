//! Benchmark only (cargo feature `bench-seed`, never in the production wasm): fills the
//! registry with the completed creations a factory holds after years of service, so the
//! benchmark can show that its per-message cost does not grow with them.

use super::*;

impl<M: StableMemory> Factory<M> {
    /// Records `count` completed creations of made-up owners numbered from `first`: every
    /// other one has its shared copy purged already, the rest wait for their retention (from
    /// `now`). No capsule, canister or cycle is involved; counters move as if they had run.
    pub fn seed_completed(&mut self, first: u64, count: u64, now: u64) {
        use CreationState::*;
        for n in first..first.saturating_add(count) {
            let mut bytes = b"bench-seed".to_vec();
            bytes.extend_from_slice(&n.to_be_bytes());
            let owner = Principal::from_slice(&bytes);
            if self.by_owner.contains_key(&owner) {
                continue;
            }
            let migration_id = self.update_st(|s| {
                s.attempted += 1;
                s.succeeded += 1;
                s.next_migration_id += 1;
                s.next_migration_id
            });
            let timeline = [
                NotStarted, Exporting, Creating, Installing, Importing, Verifying, Completed,
            ]
            .into_iter()
            .map(|state| StateTime { state, at: now })
            .collect();
            let manifest = ManifestSummary {
                root: ByteArray::new([n as u8; 32]),
                memories: 120,
                connections: 12,
                blobs: 40,
                blob_bytes: 64 << 20,
                chunks: 256,
            };
            let rec = CreationRecord {
                migration_id,
                owner,
                name: Some(format!("capsule {n}")),
                subnet_id: None,
                state: Completed,
                canister_id: Some(owner),
                created_at: now,
                updated_at: now,
                attempts: 1,
                timeline,
                progress: Progress {
                    bytes_total: manifest.blob_bytes,
                    bytes_done: manifest.blob_bytes,
                    chunks_total: manifest.chunks,
                    chunks_done: manifest.chunks,
                    memories_done: manifest.memories,
                    memories_total: manifest.memories,
                    connections_done: manifest.connections,
                    connections_total: manifest.connections,
                },
                error: None,
                failed_in: None,
                manifest: Some(manifest),
                quote: None,
                cycles_consumed: 0,
                step_retries: 0,
                next_try_at: 0,
                purge_requested: false,
                shared_capsule_purged: n % 2 == 0,
                create_call_since: None,
                created_canisters: Some(vec![owner]),
                cleanup: None,
                deadline_at: None,
                attempts_today: None,
                step_journal: None,
                funding: None,
                purge_check: None,
            };
            self.by_owner.insert(owner, migration_id);
            self.save(rec);
        }
    }
}
