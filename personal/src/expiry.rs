//! Expiry of the owner's abandoned plain uploads.
//!
//! One timer, armed for the earliest expiry time while some open plain upload can expire (never
//! for imports, which do not expire): when it fires it drops at most [`EXPIRE_PER_MESSAGE`]
//! due sessions and arms itself again for the next expiry time, at once if more are due.
//! `begin_blob_upload` also drops up to two expired sessions (in the capsule store), so the
//! timer only matters for sessions the owner leaves behind and never follows with another
//! upload. Timers do not survive upgrades: `post_upgrade` arms it again.

use std::cell::Cell;

use crate::state;

/// Sessions one timer message drops. Each costs a few index operations plus the release of
/// the chunks it received (about 95 K instructions a chunk measured on the emulator: 1.5 B for
/// a 4 GiB session's 16,384 chunks), so eight stay well under the 40 B of a message; and the
/// owner's declared bytes (at most the capsule's 8 GiB) bound all her sessions' chunks to
/// 32,768, about 3 B instructions.
pub const EXPIRE_PER_MESSAGE: usize = 8;

#[cfg(target_arch = "wasm32")]
type Timer = ic_cdk_timers::TimerId;
#[cfg(not(target_arch = "wasm32"))]
type Timer = ();

/// An armed timer still unfired this long after its time is taken as lost (its message trapped
/// and was rolled back, `ARMED` with it) and armed again.
const LOST_AFTER_NS: u64 = 10 * 60 * 1_000_000_000;

thread_local! {
    /// The armed timer: the time it fires at, and its id.
    static ARMED: Cell<Option<(u64, Timer)>> = const { Cell::new(None) };
}

/// Makes sure a timer fires at the earliest expiry time, if any session can expire. Cheap
/// (one index lookup); call it after anything that may open a session and after an upgrade.
pub fn ensure_armed(now: u64) {
    let Some(next) = state::read(|s| s.next_upload_expiry()) else {
        return;
    };
    if let Some((at, timer)) = ARMED.get() {
        if at <= next && now < at.saturating_add(LOST_AFTER_NS) {
            return;
        }
        cancel(timer);
    }
    ARMED.set(Some((next, arm(next.saturating_sub(now)))));
}

#[cfg(target_arch = "wasm32")]
fn arm(delay_ns: u64) -> Timer {
    ic_cdk_timers::set_timer(std::time::Duration::from_nanos(delay_ns), async { fire() })
}

#[cfg(target_arch = "wasm32")]
fn cancel(timer: Timer) {
    ic_cdk_timers::clear_timer(timer);
}

#[cfg(not(target_arch = "wasm32"))]
fn arm(_delay_ns: u64) -> Timer {}

#[cfg(not(target_arch = "wasm32"))]
fn cancel(_timer: Timer) {}

/// The timer's work: drop what is due (bounded), then arm for what remains.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn fire() {
    ARMED.set(None);
    let now = ic_cdk::api::time();
    state::store_mut(|s| s.expire_uploads(now, EXPIRE_PER_MESSAGE));
    ensure_armed(now);
}
