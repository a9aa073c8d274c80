//! Indexes over the creation records, so that what the scheduler, a request or the stats look
//! up costs the same with 10 or 1,000,000 past creations.
//!
//! | index | holds | ordered by | read by |
//! |---|---|---|---|
//! | `queue` | `NotStarted` records | (time queued, id): first come, first admitted | [`Factory::admit_queued`] |
//! | `active` | `Exporting` … `Verifying` records (at most `max_in_flight`) | id | [`Factory::active_migrations`], [`Factory::next_wake`] |
//! | `purge_queue` | `Completed` records whose shared copy is still there | (retention clock start, id); 0 when the owner asked to purge now | [`Factory::purge_due`], [`Factory::next_wake`] |
//!
//! Final records (`Failed`, and `Completed` once purged) are in no index. `save` moves a record
//! between indexes whenever its state changes; [`Factory::ensure_indexes`] builds them once
//! from the records of a layout that had none.

use super::*;

/// Version of the index layout; bump it (and rebuild) when what an index holds changes.
const INDEX_VERSION: u32 = 1;

/// Most owners one [`Factory::purge_due`] returns (the pump purges under an instruction budget
/// and asks again in its next message).
const PURGE_DUE_BATCH: usize = 64;

/// Where a record belongs in the indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IndexKey {
    None,
    Queued(u64, u64),
    Active(u64),
    PurgeDue(u64, u64),
}

impl IndexKey {
    pub(super) fn of(rec: &CreationRecord) -> IndexKey {
        let entered = rec.timeline.last().map_or(rec.updated_at, |t| t.at);
        let id = rec.migration_id;
        match rec.state {
            CreationState::NotStarted => IndexKey::Queued(entered, id),
            s if s.is_active() => IndexKey::Active(id),
            CreationState::Completed if !rec.shared_capsule_purged => {
                IndexKey::PurgeDue(if rec.purge_requested { 0 } else { entered }, id)
            }
            _ => IndexKey::None,
        }
    }
}

impl<M: StableMemory> Factory<M> {
    /// Moves a record's index entry from `old` to `new`.
    pub(super) fn reindex(&mut self, old: IndexKey, new: IndexKey) {
        if old == new {
            return;
        }
        match old {
            IndexKey::None => {}
            IndexKey::Queued(at, id) => {
                self.queue.remove(&(at, id));
            }
            IndexKey::Active(id) => {
                self.active.remove(&id);
            }
            IndexKey::PurgeDue(at, id) => {
                self.purge_queue.remove(&(at, id));
            }
        }
        match new {
            IndexKey::None => {}
            IndexKey::Queued(at, id) => {
                self.queue.insert((at, id), ());
            }
            IndexKey::Active(id) => {
                self.active.insert(id, ());
            }
            IndexKey::PurgeDue(at, id) => {
                self.purge_queue.insert((at, id), ());
            }
        }
    }

    /// Builds the indexes from the records when the stored layout predates them (an upgrade
    /// from an older module). Reads every record once; runs in `post_upgrade`, whose limit
    /// (300 B instructions) covers millions of records. Returns whether it rebuilt.
    pub fn ensure_indexes(&mut self) -> bool {
        if self.st().index_version == Some(INDEX_VERSION) {
            return false;
        }
        let keys: Vec<IndexKey> = self
            .records
            .iter()
            .map(|e| IndexKey::of(&e.value().0))
            .collect();
        self.queue.clear_new();
        self.active.clear_new();
        self.purge_queue.clear_new();
        for key in keys {
            self.reindex(IndexKey::None, key);
        }
        self.update_st(|s| s.index_version = Some(INDEX_VERSION));
        true
    }

    /// Active creations (`Exporting` … `Verifying`), at most `max_in_flight` of them.
    pub fn active_migrations(&self) -> Vec<u64> {
        self.active.keys().collect()
    }

    /// Up to `n` queued creations, first come first.
    pub(super) fn queued(&self, n: usize) -> Vec<u64> {
        self.queue.keys().take(n).map(|(_, id)| id).collect()
    }

    /// Owners whose shared capsule is due for purging (completed, retention passed or the
    /// owner asked, not purged yet), oldest first, at most a batch.
    pub fn purge_due(&self, now: u64) -> Vec<Principal> {
        self.purge_queue
            .keys()
            .take_while(|(since, _)| self.purge_time(*since) <= now)
            .take(PURGE_DUE_BATCH)
            .filter_map(|(_, id)| self.record(id).map(|r| r.owner))
            .collect()
    }

    /// When a purge-queue entry falls due: at once when the owner asked (0), else when the
    /// retention after completion has passed.
    fn purge_time(&self, since: u64) -> u64 {
        match since {
            0 => 0,
            _ => since.saturating_add(self.config().retention_seconds.saturating_mul(NS_PER_SEC)),
        }
    }

    /// When the scheduler must next look at the factory by the clock alone: the earliest
    /// retry time or deadline of an active creation, or the next purge. Work that is ready now
    /// is driven by the tasks that made it ready (each ends by asking for a pump), so it is
    /// not counted here. `None`: nothing will ever fall due without a new message.
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        let active = self
            .active
            .keys()
            .filter_map(|id| self.record(id))
            .flat_map(|r| {
                [Some(r.next_try_at), r.deadline_at]
                    .into_iter()
                    .flatten()
                    .filter(move |t| *t > now)
            });
        let purge = self
            .purge_queue
            .keys()
            .next()
            .map(|(since, _)| self.purge_time(since));
        active.chain(purge).min()
    }
}
