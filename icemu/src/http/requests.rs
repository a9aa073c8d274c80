//! Request statuses: what `/request_status/<request id>` shows of each update call received
//! over HTTP (interface specification, "Request status" and "Request: Call"), from submission
//! until it expires.
//!
//! A call is `processing` from submission until the emulator completes it, then `replied` or
//! `rejected`; once its `ingress_expiry` passes, its reply is dropped and it is `done`; a
//! further [`FORGET_AFTER_NS`] later it is forgotten (absent).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use candid::Principal;
use emulator::{Emulator, MessageId, RejectResponse};

/// How long a `done` request stays in the tree after its expiry.
pub const FORGET_AFTER_NS: u64 = 5 * 60 * 1_000_000_000;

/// What became of a request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Submitted, not completed.
    Processing,
    /// The reply's bytes.
    Replied(Vec<u8>),
    /// The reject.
    Rejected(RejectResponse),
    /// Completed and expired: the reply was dropped.
    Done,
}

/// One request's status.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Who sent it (only they may read its status).
    pub sender: Principal,
    /// Its `ingress_expiry` (ns).
    pub expiry: u64,
    /// Its outcome so far.
    pub outcome: Outcome,
    message: MessageId,
}

#[derive(Default)]
struct Inner {
    map: HashMap<[u8; 32], RequestRecord>,
    /// Requests whose record changed (or that were forgotten) since [`Requests::take_changes`].
    changed: HashSet<[u8; 32]>,
}

/// The requests received and not yet forgotten.
#[derive(Default)]
pub struct Requests {
    inner: Mutex<Inner>,
}

impl Requests {
    /// Records a submitted request; `false` (and nothing changes) when `id` is already known:
    /// the interface specification has a request id executed at most once.
    pub fn insert(&self, id: [u8; 32], sender: Principal, expiry: u64, message: MessageId) -> bool {
        let mut g = self.lock();
        if g.map.contains_key(&id) {
            return false;
        }
        g.changed.insert(id);
        g.map.insert(
            id,
            RequestRecord {
                sender,
                expiry,
                outcome: Outcome::Processing,
                message,
            },
        );
        true
    }

    /// Whether `id` was received.
    pub fn contains(&self, id: &[u8; 32]) -> bool {
        self.lock().map.contains_key(id)
    }

    /// Moves completed messages' results in from the emulator, drops the replies of expired
    /// requests and forgets long-expired ones; `now` is the wall clock (ns).
    pub fn refresh(&self, emu: &Emulator, now: u64) {
        let mut g = self.lock();
        let Inner { map, changed } = &mut *g;
        map.retain(|id, r| {
            let keep = now <= r.expiry.saturating_add(FORGET_AFTER_NS);
            if !keep {
                changed.insert(*id);
            }
            keep
        });
        for (id, r) in map.iter_mut() {
            if matches!(r.outcome, Outcome::Processing)
                && let Some(res) = emu.take_ingress_status(r.message)
            {
                r.outcome = match res {
                    Ok(b) => Outcome::Replied(b),
                    Err(e) => Outcome::Rejected(e),
                };
                changed.insert(*id);
            }
            if now > r.expiry && matches!(r.outcome, Outcome::Replied(_) | Outcome::Rejected(_)) {
                r.outcome = Outcome::Done;
                changed.insert(*id);
            }
        }
    }

    /// The record of `id`.
    pub fn get(&self, id: &[u8; 32]) -> Option<RequestRecord> {
        self.lock().map.get(id).cloned()
    }

    /// The requests whose record changed since the last call, each with its record now
    /// (`None`: forgotten), for the state tree.
    pub fn take_changes(&self) -> Vec<([u8; 32], Option<RequestRecord>)> {
        let mut g = self.lock();
        let changed = std::mem::take(&mut g.changed);
        changed
            .into_iter()
            .map(|id| (id, g.map.get(&id).cloned()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
