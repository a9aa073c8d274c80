//! Delivering messages: requests start call contexts, responses run callbacks (and cleanup).

use super::*;

impl Inner {
    pub(super) fn deliver(&mut self, message: Message) {
        match message {
            Message::Request {
                from,
                to,
                method,
                arg,
                cycles,
                origin,
                deadline,
            } => {
                if deadline != 0 && deadline <= self.time {
                    // An expired best-effort request is dropped; the caller got SYS_UNKNOWN.
                    return;
                }
                if to == Principal::management_canister() {
                    if let Some(r) = self.faults.take_reject(to, &method) {
                        self.trace(
                            TraceKind::Rejected,
                            from,
                            to,
                            &method,
                            r.reject_message.clone(),
                        );
                        self.respond_from_subnet(&origin, Err(r), cycles);
                        return;
                    }
                    self.handle_management(from, &method, &arg, cycles, origin);
                } else {
                    self.deliver_request(from, to, method, arg, cycles, origin, deadline);
                }
            }
            Message::Response {
                callback,
                to,
                payload,
                refund,
            } => self.deliver_response(callback, to, payload, refund),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn deliver_request(
        &mut self,
        from: Principal,
        to: Principal,
        method: String,
        arg: Vec<u8>,
        cycles: u128,
        origin: Origin,
        deadline: u64,
    ) {
        // A reject the replica generates when inducting the request (unknown, stopped or
        // stopping callee; injected rejects are modelled so): the request took the slow path,
        // so the caller gets it in the next round.
        let traced = |inner: &mut Self, r: &RejectResponse| {
            let message = r.reject_message.clone();
            inner.trace(TraceKind::Rejected, from, to, &method, message);
        };
        let fail = |inner: &mut Self, r: RejectResponse| {
            traced(inner, &r);
            inner.respond_from_subnet(&origin, Err(r), cycles);
        };
        // A reject from executing the request (no module, no such method, out of cycles):
        // within the round.
        let fail_in_execution = |inner: &mut Self, r: RejectResponse| {
            traced(inner, &r);
            inner.respond(&origin, Err(r), cycles);
        };
        let Some(c) = self.canisters.get(&to) else {
            return fail(
                self,
                reject(
                    ErrorCode::CanisterNotFound,
                    format!("Canister {to} not found"),
                ),
            );
        };
        if let Some(r) = self.faults.take_reject(to, &method) {
            return fail(self, r);
        }
        match c.status {
            Status::Stopped => {
                return fail(
                    self,
                    reject(
                        ErrorCode::CanisterStopped,
                        format!("Canister {to} is stopped"),
                    ),
                );
            }
            Status::Stopping => {
                let r = reject(
                    ErrorCode::CanisterStopping,
                    format!("Canister {to} is stopping"),
                );
                return fail(self, r);
            }
            Status::Running => {}
        }
        let Some(inst) = &c.instance else {
            let r = reject(
                ErrorCode::CanisterWasmModuleNotFound,
                format!(
                    "Error from Canister {to}: Attempted to execute a message, but the canister contains no Wasm module."
                ),
            );
            return fail_in_execution(self, r);
        };
        let module = inst.module().clone();
        let (api, export, persist) = if module.exports(&format!("canister_update {method}")) {
            (ApiType::Update, format!("canister_update {method}"), true)
        } else if module.exports(&format!("canister_query {method}")) {
            (ApiType::Query, format!("canister_query {method}"), false)
        } else if module.exports(&format!("canister_composite_query {method}")) {
            // Interface specification, "Composite query methods": never in replicated mode.
            let r = reject(
                ErrorCode::CompositeQueryCalledInReplicatedMode,
                format!(
                    "Error from Canister {to}: Composite query cannot be called in replicated mode"
                ),
            );
            return fail_in_execution(self, r);
        } else {
            let r = reject(
                ErrorCode::CanisterMethodNotFound,
                format!("Error from Canister {to}: Canister has no update method '{method}'."),
            );
            return fail_in_execution(self, r);
        };
        let reserve = self
            .config
            .freezing_reserve(c.memory_size(), c.freezing_threshold);
        if c.balance < reserve + self.config.prices.update_message_fee {
            let r = reject(
                ErrorCode::CanisterOutOfCycles,
                format!(
                    "Canister {to} is out of cycles: balance {}, needs {}",
                    c.balance,
                    reserve + self.config.prices.update_message_fee
                ),
            );
            return fail_in_execution(self, r);
        }
        let ctx = self.book.id();
        let caller = from;
        self.book.call_contexts.insert(
            ctx,
            CallContext {
                canister: to,
                origin: origin.clone(),
                method: method.clone(),
                caller,
                responded: false,
                cycles_available: cycles,
                outstanding: 0,
                instructions: 0,
                deadline,
                last_trap: None,
            },
        );
        self.canisters.get_mut(&to).unwrap().open_call_contexts += 1;
        let st = self.stats.entry(to).or_default();
        let m = st.method(&method);
        m.calls_received += 1;
        m.bytes_in += arg.len() as u64;
        st.total.calls_received += 1;
        st.total.bytes_in += arg.len() as u64;
        self.trace(
            TraceKind::Request,
            from,
            to,
            &method,
            format!("{} bytes, {cycles} cycles", arg.len()),
        );
        if self.faults.trapping_methods.contains(&(to, method.clone())) {
            let r = trap_reject(to, &TrapKind::Called(format!("injected trap in {method}")));
            self.book.call_contexts.get_mut(&ctx).unwrap().last_trap = Some(r);
        } else if let Some(trap) =
            self.execute(to, ctx, api, Entry::Export(export), arg, None, 0, persist)
            && let Some(c) = self.book.call_contexts.get_mut(&ctx)
        {
            c.last_trap = Some(trap_reject(to, &trap));
        }
        self.close_if_done(ctx);
    }

    pub(super) fn deliver_response(
        &mut self,
        callback: u64,
        to: Principal,
        payload: Payload,
        refund: u128,
    ) {
        let Some(cb) = self.book.callbacks.remove(&callback) else {
            return; // already answered (deadline) or dropped
        };
        let fee = self.config.prices.call_fee_per_byte
            * payload.as_ref().map(|b| b.len()).unwrap_or(0) as u128;
        let Some(c) = self.canisters.get_mut(&to) else {
            return;
        };
        c.balance = (c.balance + refund).saturating_sub(fee);
        let runnable = c.instance.is_some() && c.code_generation == cb.code_generation;
        let detail = match &payload {
            Ok(b) => format!("reply {} bytes, refund {refund}", b.len()),
            Err(r) => format!("reject {:?}: {}", r.reject_code, r.reject_message),
        };
        self.trace(TraceKind::Response, cb.callee, to, &cb.method, detail);
        if runnable && self.book.call_contexts.contains_key(&cb.call_context) {
            let (api, entry, arg, rej) = callback_entry(payload, cb.reply, cb.reject);
            if let Some(trap) =
                self.execute(to, cb.call_context, api, entry, arg, rej, refund, true)
            {
                let mut r = trap_reject(to, &trap);
                if let Some((f, env)) = cb.cleanup {
                    let entry = Entry::Closure(f, env);
                    let cleanup_trap = self.execute(
                        to,
                        cb.call_context,
                        ApiType::Cleanup,
                        entry,
                        Vec::new(),
                        None,
                        0,
                        true,
                    );
                    // As the replica (`HypervisorError::Cleanup`): the callback's error code,
                    // both messages.
                    if let Some(t) = cleanup_trap {
                        let cleanup = trap_reject(to, &t);
                        r.reject_message = format!(
                            "{}\n\ncall_on_cleanup also failed:\n\n{}",
                            r.reject_message, cleanup.reject_message
                        );
                    }
                }
                if let Some(ctx) = self.book.call_contexts.get_mut(&cb.call_context) {
                    ctx.last_trap = Some(r);
                }
            }
        }
        if let Some(ctx) = self.book.call_contexts.get_mut(&cb.call_context) {
            ctx.outstanding = ctx.outstanding.saturating_sub(1);
        }
        self.close_if_done(cb.call_context);
    }

    /// Closes a call context with no outstanding callbacks, rejecting it if it never replied.
    pub fn close_if_done(&mut self, ctx_id: u64) {
        let Some(ctx) = self.book.call_contexts.get(&ctx_id) else {
            return;
        };
        if ctx.outstanding > 0 {
            return;
        }
        let ctx = self.book.call_contexts.remove(&ctx_id).unwrap();
        if !ctx.responded {
            let r = ctx.last_trap.clone().unwrap_or_else(|| {
                reject(
                    ErrorCode::CanisterDidNotReply,
                    format!(
                        "Error from Canister {}: Canister did not produce a response",
                        ctx.canister
                    ),
                )
            });
            self.respond(&ctx.origin, Err(r), ctx.cycles_available);
        }
        if let Some(c) = self.canisters.get_mut(&ctx.canister) {
            c.open_call_contexts = c.open_call_contexts.saturating_sub(1);
        }
    }
}
