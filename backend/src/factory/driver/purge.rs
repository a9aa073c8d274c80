//! The pump's purges and upload expiry, and the purge guard's check of a personal canister
//! (see the protocol table in the driver's module doc).

use super::*;

/// Upload sessions one pump expires at most. Each releases its chunks (about 95 K
/// instructions per chunk: up to 1.5 B for a 4 GiB upload), so the budget is checked before
/// each one.
const UPLOADS_EXPIRED_PER_PUMP: usize = 8;

/// Drops upload sessions past their expiry, a bounded number per message, within the purge
/// budget. Returns whether none is due any more.
pub(super) fn expire_uploads(now: u64) -> bool {
    for _ in 0..UPLOADS_EXPIRED_PER_PUMP {
        if ic_cdk::api::performance_counter(0) > PURGE_INSTRUCTIONS_PER_MESSAGE {
            return false;
        }
        if state::write(|caps| caps.expire_uploads(now, 1)) == 0 {
            return true;
        }
    }
    state::read(|caps| caps.next_upload_expiry()).is_none_or(|at| at > now)
}

/// After a capsule write: makes sure the scheduler wakes up when the earliest open upload
/// session expires (one index lookup; a session opened on an idle backend arms it).
pub fn wake_for_uploads() {
    if let Some(at) = state::read(|caps| caps.next_upload_expiry()) {
        wake_by(at);
    }
}

/// Instructions a pump message may spend purging (2.5% of the 40 B limit); the rest waits for
/// the next pump.
const PURGE_INSTRUCTIONS_PER_MESSAGE: u64 = 1_000_000_000;
/// Capsule items (or manifest leaves, ×10) removed per purge step: tens of millions of
/// instructions, so the budget check above is never overshot by much.
const PURGE_ITEMS_PER_STEP: usize = 50;

/// Purges shared capsules whose retention after a completed move has passed, then the
/// manifest their migration exported (its root and counts stay in the record). Bounded by
/// instructions per message, shared by every owner due. Returns whether every purge due now
/// is done (false: the budget ran out, or more are due than one batch).
pub(super) fn purge_expired(now: u64) -> bool {
    let due = crate::factory::with(|f| f.purge_due(now));
    for owner in due {
        match crate::factory::with(|f| f.purge_gate(owner)) {
            PurgeGate::Cleared => {}
            PurgeGate::Skip => continue,
            PurgeGate::Unverifiable { migration_id } => {
                crate::factory::with(|f| {
                    f.defer_purge_check(migration_id, now, UNVERIFIABLE_PURGE_DEFER_NS)
                });
                continue;
            }
            PurgeGate::Check {
                migration_id,
                canister_id,
                export_root,
            } => {
                if PURGE_CHECKS.with(|c| c.borrow().len()) >= MAX_PURGE_CHECKS_IN_FLIGHT {
                    crate::factory::with(|f| {
                        f.defer_purge_check(migration_id, now, PURGE_CHECK_DEFER_NS)
                    });
                } else {
                    crate::factory::with(|f| f.begin_purge_check(migration_id, now));
                    PURGE_CHECKS.with(|c| c.borrow_mut().insert(migration_id));
                    ic_cdk::futures::spawn(check_purge(migration_id, canister_id, export_root));
                }
                continue;
            }
        }
        loop {
            if ic_cdk::api::performance_counter(0) > PURGE_INSTRUCTIONS_PER_MESSAGE {
                return false;
            }
            let capsule_gone = state::write(|caps| caps.purge_step(owner, PURGE_ITEMS_PER_STEP));
            if !capsule_gone {
                continue;
            }
            if crate::factory::with(|f| f.clear_exported_manifest(owner, 10 * PURGE_ITEMS_PER_STEP))
            {
                crate::factory::with(|f| f.mark_purged(owner));
                break;
            }
        }
    }
    crate::factory::with(|f| f.purge_due(now).is_empty())
}

/// Purge checks in flight at most; more wait [`PURGE_CHECK_DEFER_NS`].
const MAX_PURGE_CHECKS_IN_FLIGHT: usize = 16;
const PURGE_CHECK_DEFER_NS: u64 = 30_000_000_000;
/// How long a purge that nothing can check waits before it is looked at again.
const UNVERIFIABLE_PURGE_DEFER_NS: u64 = 86_400_000_000_000;

thread_local! {
    /// Migrations whose purge check is in flight.
    static PURGE_CHECKS: RefCell<BTreeSet<u64>> = const { RefCell::new(BTreeSet::new()) };
}

/// The purge guard's check: the personal canister's `cycles_outlook` (a bounded wait; a reject,
/// a trap, a timeout or an undecodable reply is a failed check), judged by the registry.
async fn check_purge(id: u64, canister_id: Principal, export_root: [u8; 32]) {
    let reply = Call::bounded_wait(canister_id, "cycles_outlook")
        .change_timeout(PURGE_CHECK_CALL_SECONDS)
        .await;
    PURGE_CHECKS.with(|c| c.borrow_mut().remove(&id));
    let outlook = match reply {
        Ok(reply) => decode_untrusted::<PersonalOutlook>(&reply, "cycles_outlook").map_err(|e| {
            PurgeHold::UntrustedReply {
                reason: match e {
                    StepFailure::Fatal(FactoryError::UntrustedReply { reason, .. }) => reason,
                    other => format!("{other:?}"),
                },
            }
        }),
        Err(e) => Err(call_error(e).into_purge_hold()),
    };
    if crate::factory::with(|f| f.purge_checked(id, export_root, outlook, now())) {
        kick();
    } else {
        // The next check's time (or none) changed what the idle scheduler waits for.
        if let Some(at) = crate::factory::with(|f| f.next_wake(now())) {
            wake_by(at);
        }
    }
}
