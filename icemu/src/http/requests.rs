//! Request statuses: what `/request_status/<request id>` shows of each update call received
//! over HTTP (interface specification, "Request status" and "Request: Call"), from submission
//! until it expires.
//!
//! A call is `processing` from submission until the emulator completes it, then `replied` or
//! `rejected`; once its `ingress_expiry` passes, its reply is dropped and it is `done`; a
//! further [`FORGET_AFTER_NS`] later it is forgotten (absent).

use std::collections::HashMap;
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

/// The requests received and not yet forgotten.
#[derive(Default)]
pub struct Requests {
    map: Mutex<HashMap<[u8; 32], RequestRecord>>,
}

impl Requests {
    /// Records a submitted request; `false` (and nothing changes) when `id` is already known:
    /// the interface specification has a request id executed at most once.
    pub fn insert(&self, id: [u8; 32], sender: Principal, expiry: u64, message: MessageId) -> bool {
        let mut m = self.lock();
        if m.contains_key(&id) {
            return false;
        }
        m.insert(
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
        self.lock().contains_key(id)
    }

    /// Moves completed messages' results in from the emulator, drops the replies of expired
    /// requests and forgets long-expired ones; `now` is the wall clock (ns).
    pub fn refresh(&self, emu: &Emulator, now: u64) {
        let mut m = self.lock();
        m.retain(|_, r| now <= r.expiry.saturating_add(FORGET_AFTER_NS));
        for r in m.values_mut() {
            if matches!(r.outcome, Outcome::Processing)
                && let Some(res) = emu.take_ingress_status(r.message)
            {
                r.outcome = match res {
                    Ok(b) => Outcome::Replied(b),
                    Err(e) => Outcome::Rejected(e),
                };
            }
            if now > r.expiry && matches!(r.outcome, Outcome::Replied(_) | Outcome::Rejected(_)) {
                r.outcome = Outcome::Done;
            }
        }
    }

    /// The record of `id`.
    pub fn get(&self, id: &[u8; 32]) -> Option<RequestRecord> {
        self.lock().get(id).cloned()
    }

    /// Every record, for the state tree.
    pub fn all(&self) -> Vec<([u8; 32], RequestRecord)> {
        self.lock().iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], RequestRecord>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}
