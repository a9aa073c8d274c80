//! A bounded-wait call whose reply is copied into the canister's memory once.
//!
//! `ic_cdk::call::Call` reads a reply with `ic_cdk::api::msg_arg_data`, which zero-fills its
//! buffer before the system copies the reply into it: two passes over every byte, and the IC
//! charges both (bulk memory operations and `msg_arg_data_copy` cost an instruction per byte).
//! A chunk batch is about 2 MB, so the zero-fill alone cost an importer one instruction per
//! byte of blob imported, about 5 % of its whole cost (measured with probes on the 1 GiB
//! benchmark: 2.0 instructions per byte between the reply's arrival and the first line after
//! the `await`).
//!
//! [`call`] makes the same call as `Call::bounded_wait(..).with_raw_args(..)` and reads the
//! reply with `ic0::msg_arg_data_copy_uninit` into a buffer that is not initialised first.
//! Everything else follows ic-cdk's `CallFuture` (ic-cdk 0.20): one callback for reply and
//! reject, a cleanup callback that cancels the waiting task if the callback traps, the same
//! executor contexts, and a future that, dropped while the executor recovers from a trap,
//! leaves a state the late callback recognises.

use std::cell::RefCell;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use candid::Principal;
use ic_cdk_executor::{MethodHandle, TaskHandle};
use migration::protocol::CallFault;

/// The timeout of a bounded-wait call, as `Call::bounded_wait` sets it.
const TIMEOUT_SECONDS: u32 = 300;

/// The reject code the cleanup callback reports (`CANISTER_REJECT`, as ic-cdk does); nobody
/// reads it, the waiting task is cancelled.
const CLEANUP_REJECT_CODE: u32 = 4;

/// Calls `method` of `callee` with the candid-encoded `args` (no cycles, bounded wait) and
/// returns the reply's bytes, read once; a reject or a call the system did not take is a
/// [`CallFault`].
pub fn call(callee: Principal, method: &str, args: Vec<u8>) -> ReplyOnce {
    ReplyOnce {
        state: Rc::new(RefCell::new(State::Prepared {
            callee,
            method: method.to_string(),
            args,
        })),
    }
}

enum State {
    Prepared {
        callee: Principal,
        method: String,
        args: Vec<u8>,
    },
    Executing {
        waker: Waker,
        method: MethodHandle,
        task: Option<TaskHandle>,
    },
    Complete(Result<Vec<u8>, CallFault>),
    /// The future was dropped while the executor recovered from a trap.
    Trapped,
    PostComplete,
}

/// The future of [`call`].
pub struct ReplyOnce {
    state: Rc<RefCell<State>>,
}

impl Future for ReplyOnce {
    type Output = Result<Vec<u8>, CallFault>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.state.borrow_mut();
        match mem::replace(&mut *state, State::PostComplete) {
            State::Prepared {
                callee,
                method,
                args,
            } => {
                let env = Rc::into_raw(this.state.clone()) as usize;
                // SAFETY: `callback` and `cleanup` are entry points taking `env`, a pointer from
                // `Rc::into_raw`. If `call_perform` returns 0, exactly one of them runs and takes
                // that reference back (a callback that traps is rolled back, then `cleanup`
                // runs); otherwise it is taken back below.
                unsafe {
                    ic0::call_new(callee.as_slice(), &method, callback, env, callback, env);
                    ic0::call_on_cleanup(cleanup, env);
                }
                if !args.is_empty() {
                    ic0::call_data_append(&args);
                }
                ic0::call_with_best_effort_response(TIMEOUT_SECONDS);
                if ic0::call_perform() != 0 {
                    // SAFETY: the system did not take the call, so no callback owns `env`.
                    drop(unsafe { Rc::from_raw(env as *const RefCell<State>) });
                    return Poll::Ready(Err(CallFault::NotSent {
                        reason: "call_perform refused the call".into(),
                    }));
                }
                *state = State::Executing {
                    waker: cx.waker().clone(),
                    method: ic_cdk_executor::extend_current_method_context(),
                    task: TaskHandle::current(),
                };
                Poll::Pending
            }
            State::Executing { method, task, .. } => {
                *state = State::Executing {
                    waker: cx.waker().clone(),
                    method,
                    task,
                };
                Poll::Pending
            }
            State::Complete(result) => Poll::Ready(result),
            State::Trapped => ic_cdk::trap("call already trapped"),
            State::PostComplete => ic_cdk::trap("a call's future polled after it completed"),
        }
    }
}

impl Drop for ReplyOnce {
    fn drop(&mut self) {
        // Dropped because a trap elsewhere cancelled the task: the callback, if it comes,
        // must know.
        if ic_cdk_executor::is_recovering_from_trap() {
            *self.state.borrow_mut() = State::Trapped;
        }
    }
}

/// The reply's bytes, copied into a buffer that is not initialised first.
fn reply_bytes() -> Vec<u8> {
    let len = ic0::msg_arg_data_size();
    let mut buf = Vec::with_capacity(len);
    ic0::msg_arg_data_copy_uninit(&mut buf.spare_capacity_mut()[..len], 0);
    // SAFETY: `msg_arg_data_copy_uninit` initialised all `len` bytes (or trapped).
    unsafe { buf.set_len(len) };
    buf
}

/// Reply and reject callback of `ic0.call_new`.
///
/// # Safety
/// Only the system calls it, with an `env` from `Rc::into_raw` of the call's state.
unsafe extern "C" fn callback(env: usize) {
    // SAFETY: see the function's contract.
    let state = unsafe { Rc::from_raw(env as *const RefCell<State>) };
    let result = match ic0::msg_reject_code() {
        0 => Ok(reply_bytes()),
        code => Err(CallFault::rejected(code, ic_cdk::api::msg_reject_msg())),
    };
    let (waker, method) = match mem::replace(&mut *state.borrow_mut(), State::Complete(result)) {
        State::Executing { waker, method, .. } => (waker, method),
        // The task was cancelled: nothing waits for this reply.
        State::Trapped => ic_cdk::trap("call already trapped"),
        _ => unreachable!("a call in flight is executing or trapped"),
    };
    ic_cdk_executor::in_callback_executor_context_for(method, || waker.wake());
}

/// Cleanup callback of `ic0.call_on_cleanup`: the callback trapped (its changes are rolled
/// back); the waiting task is cancelled.
///
/// # Safety
/// Only the system calls it, with an `env` from `Rc::into_raw` of the call's state.
unsafe extern "C" fn cleanup(env: usize) {
    // SAFETY: see the function's contract.
    let state = unsafe { Rc::from_raw(env as *const RefCell<State>) };
    let failed = State::Complete(Err(CallFault::rejected(
        CLEANUP_REJECT_CODE,
        "cleanup".into(),
    )));
    let (method, task) = match mem::replace(&mut *state.borrow_mut(), failed) {
        State::Executing { method, task, .. } => (method, task),
        State::Trapped => return,
        _ => unreachable!("a call in flight is executing or trapped"),
    };
    ic_cdk_executor::in_trap_recovery_context_for(method, || {
        ic_cdk_executor::cancel_all_tasks_attached_to_current_method();
        if let Some(task) = task {
            ic_cdk_executor::cancel_task(&task);
        }
    });
}
