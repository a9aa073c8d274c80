//! Indexes over the creation records, so that what the scheduler, a request or the stats look
//! up costs the same with 10 or 1,000,000 past creations.
//!
//! | index | holds | ordered by | read by |
//! |---|---|---|---|
//! | `queue` | `NotStarted` records | (time queued, id): first come, first admitted | [`Factory::admit_queued`] |
//! | `active` | `Exporting` … `Verifying` records (at most `max_in_flight`), with their retry time and deadline | id | [`Factory::due_migrations`], [`Factory::next_wake`] |
//! | `purge_queue` | `Completed` records whose shared copy is still there | (retention clock start, id); 0 when the owner asked to purge now | [`Factory::purge_due`], [`Factory::next_wake`] |
//! | `summaries` | every record's [`CreationSummary`], in a small fixed binary encoding | id | [`Factory::list`] |
//!
//! Final records (`Failed`, and `Completed` once purged) are in no index. `save` moves a record
//! between indexes whenever its state changes; [`Factory::ensure_indexes`] builds them once
//! from the records of a layout that had none.

use ic_stable_structures::Storable;
use ic_stable_structures::storable::Bound;

use super::*;

/// Version of the index layout; bump it (and rebuild) when what an index holds changes.
const INDEX_VERSION: u32 = 2;

/// Most owners one [`Factory::purge_due`] returns (the pump purges under an instruction budget
/// and asks again in its next message).
const PURGE_DUE_BATCH: usize = 64;

/// Where a record belongs in the indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IndexKey {
    None,
    Queued(u64, u64),
    /// (id, retry time, deadline): the scheduler finds what is due without decoding records.
    Active(u64, u64, u64),
    PurgeDue(u64, u64),
}

impl IndexKey {
    pub(super) fn of(rec: &CreationRecord) -> IndexKey {
        let entered = rec.timeline.last().map_or(rec.updated_at, |t| t.at);
        let id = rec.migration_id;
        match rec.state {
            CreationState::NotStarted => IndexKey::Queued(entered, id),
            s if s.is_active() => {
                IndexKey::Active(id, rec.next_try_at, rec.deadline_at.unwrap_or(u64::MAX))
            }
            CreationState::Completed if !rec.shared_capsule_purged => {
                // A purge guard that checked keeps its own key (its next check; 0 when cleared).
                let key = match &rec.purge_check {
                    Some(c) => c.queue_key,
                    None if rec.purge_requested => 0,
                    None => entered,
                };
                IndexKey::PurgeDue(key, id)
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
            IndexKey::Active(id, _, _) => {
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
            IndexKey::Active(id, retry, deadline) => {
                self.active.insert(id, (retry, deadline));
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
        let summaries: Vec<StoredSummary> = self
            .records
            .iter()
            .map(|e| StoredSummary((&e.value().0).into()))
            .collect();
        for summary in summaries {
            self.summaries.insert(summary.0.migration_id, summary);
        }
        self.update_st(|s| s.index_version = Some(INDEX_VERSION));
        true
    }

    /// Active creations (`Exporting` … `Verifying`), at most `max_in_flight` of them.
    pub fn active_migrations(&self) -> Vec<u64> {
        self.active.keys().collect()
    }

    /// Active creations the driver may have to step now: their retry time has come (0: ready
    /// since their last step) or their deadline has passed. Read from the index alone.
    pub fn due_migrations(&self, now: u64) -> Vec<u64> {
        self.active
            .iter()
            .filter(|e| {
                let (retry, deadline) = e.value();
                retry <= now || deadline <= now
            })
            .map(|e| *e.key())
            .collect()
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
    /// A page of the creation list (summaries, by migration id).
    pub fn list(&self, start_after: Option<u64>, limit: usize) -> CreationPage {
        let start = start_after.map_or(0, |id| id.saturating_add(1));
        let mut items: Vec<CreationSummary> = self
            .summaries
            .range(start..)
            .take(limit + 1)
            .map(|e| e.value().0)
            .collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|r| r.migration_id)
        } else {
            None
        };
        CreationPage { items, next }
    }

    pub fn next_wake(&self, now: u64) -> Option<u64> {
        let active = self
            .active
            .values()
            .flat_map(|(retry, deadline)| [retry, deadline].into_iter().filter(move |t| *t > now));
        let purge = self
            .purge_queue
            .keys()
            .next()
            .map(|(since, _)| self.purge_time(since))
            // A purge guard that used up its checks waits for the owner, not the clock.
            .filter(|at| *at != u64::MAX);
        active.chain(purge).min()
    }
}

/// A [`CreationSummary`] as stored: a version byte and fixed-width fields (about 100 bytes),
/// decoded with a few thousand instructions where the candid record takes about a million.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct StoredSummary(pub CreationSummary);

const SUMMARY_VERSION: u8 = 1;
const NO_STATE: u8 = 0xFF;

fn state_code(s: CreationState) -> u8 {
    CreationState::ALL
        .iter()
        .position(|x| *x == s)
        .expect("every state is in ALL") as u8
}

fn put_principal(out: &mut Vec<u8>, p: &Principal) {
    let bytes = p.as_slice();
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

impl Storable for StoredSummary {
    const BOUND: Bound = Bound::Bounded {
        max_size: 128,
        is_fixed_size: false,
    };

    fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Owned(self.clone().into_bytes())
    }

    fn into_bytes(self) -> Vec<u8> {
        let s = self.0;
        let mut out = Vec::with_capacity(128);
        out.push(SUMMARY_VERSION);
        out.extend_from_slice(&s.migration_id.to_be_bytes());
        put_principal(&mut out, &s.owner);
        out.push(state_code(s.state));
        match &s.canister_id {
            None => out.push(0),
            Some(p) => {
                out.push(1);
                put_principal(&mut out, p);
            }
        }
        for v in [s.created_at, s.updated_at] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&s.attempts.to_be_bytes());
        for v in [s.bytes_done, s.bytes_total] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.push(s.failed_in.map_or(NO_STATE, state_code));
        out.extend_from_slice(&s.cycles_consumed.to_be_bytes());
        out
    }

    fn from_bytes(bytes: std::borrow::Cow<[u8]>) -> Self {
        let mut r = Reader(&bytes);
        let version = r.u8();
        assert_eq!(version, SUMMARY_VERSION, "unknown creation summary version");
        let migration_id = r.u64();
        let owner = r.principal();
        let state = r.state();
        let canister_id = (r.u8() == 1).then(|| r.principal());
        let created_at = r.u64();
        let updated_at = r.u64();
        let attempts = u32::from_be_bytes(r.take());
        let bytes_done = r.u64();
        let bytes_total = r.u64();
        let failed_in = match r.u8() {
            NO_STATE => None,
            code => Some(CreationState::ALL[code as usize]),
        };
        let cycles_consumed = u128::from_be_bytes(r.take());
        StoredSummary(CreationSummary {
            migration_id,
            owner,
            state,
            canister_id,
            created_at,
            updated_at,
            attempts,
            bytes_done,
            bytes_total,
            failed_in,
            cycles_consumed,
        })
    }
}

/// Reads the fields of a stored summary in order (a short or corrupt entry traps: stable
/// memory is written only by `into_bytes`).
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().expect("split at N")
    }

    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }

    fn principal(&mut self) -> Principal {
        let len = self.u8() as usize;
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Principal::from_slice(head)
    }

    fn state(&mut self) -> CreationState {
        CreationState::ALL[self.u8() as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(canister: Option<Principal>, failed_in: Option<CreationState>) -> CreationSummary {
        CreationSummary {
            migration_id: u64::MAX - 1,
            owner: Principal::from_slice(&[7; 29]),
            state: CreationState::Failed,
            canister_id: canister,
            created_at: 1,
            updated_at: u64::MAX,
            attempts: 3,
            bytes_done: 10,
            bytes_total: 1 << 40,
            failed_in,
            cycles_consumed: u128::MAX,
        }
    }

    #[test]
    fn stored_summaries_round_trip_within_their_bound() {
        let cases = [
            summary(None, None),
            summary(
                Some(Principal::from_slice(&[9; 29])),
                Some(CreationState::Importing),
            ),
            summary(
                Some(Principal::management_canister()),
                Some(CreationState::NotStarted),
            ),
        ];
        for s in cases {
            let bytes = StoredSummary(s.clone()).into_bytes();
            let Bound::Bounded { max_size, .. } = StoredSummary::BOUND else {
                unreachable!()
            };
            assert!(bytes.len() <= max_size as usize, "{} bytes", bytes.len());
            assert_eq!(StoredSummary::from_bytes(bytes.into()).0, s);
        }
    }
}
