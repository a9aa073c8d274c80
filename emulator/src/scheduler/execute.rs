//! Running code: the system-API context of a message, executing it and applying what it did.

use super::*;

impl Inner {
    /// The system-API context for running code of `c`.
    pub fn base_ctx(
        &self,
        c: &Canister,
        api: ApiType,
        caller: Principal,
        limit: u64,
    ) -> MessageCtx {
        MessageCtx {
            api: Some(api),
            canister_id: Some(c.id),
            caller: Some(caller),
            time: self.time,
            controllers: c.controllers.clone(),
            balance: c.balance,
            global_timer: c.global_timer,
            limit,
            canister_version: c.version,
            status: match c.status {
                Status::Running => 1,
                Status::Stopping => 2,
                Status::Stopped => 3,
            },
            limits: ApiLimits {
                max_reply_bytes: self.config.max_reply_bytes,
                max_call_bytes: self.config.max_call_bytes,
                max_stable_pages: self.config.max_stable_bytes / crate::stable::WASM_PAGE,
                call_fee: self.config.prices.call_fee,
                call_fee_per_byte: self.config.prices.call_fee_per_byte,
                create_fee: self.config.prices.create_canister_fee,
                freezing_reserve: self
                    .config
                    .freezing_reserve(c.memory_size(), c.freezing_threshold),
            },
            env_vars: c.env_vars.clone(),
            replicated: !matches!(
                api,
                ApiType::Query | ApiType::CompositeQuery | ApiType::InspectMessage
            ),
            ..Default::default()
        }
    }

    /// Records printed lines in the canister log and the captured log.
    pub fn record_prints(
        &mut self,
        id: Principal,
        prints: Vec<String>,
        keep_in_canister_log: bool,
    ) {
        for text in prints {
            if keep_in_canister_log && let Some(c) = self.canisters.get_mut(&id) {
                {
                    let idx = c.logs.len() as u64;
                    c.logs.push((idx, self.time, text.clone().into_bytes()));
                }
            }
            self.logs.push(LogLine {
                round: self.round,
                timestamp_nanos: self.time,
                canister: id,
                text,
            });
        }
    }

    /// Runs one message of a call context; applies its effects or rolls it back.
    /// Returns the trap, if it trapped.
    #[allow(clippy::too_many_arguments)]
    pub fn execute(
        &mut self,
        id: Principal,
        ctx_id: u64,
        api: ApiType,
        entry: Entry,
        arg: Vec<u8>,
        reject_info: Option<(u32, String)>,
        refund: u128,
        persist: bool,
    ) -> Option<TrapKind> {
        let ctx = self.book.call_contexts.get(&ctx_id)?.clone();
        let limit = self.config.update_instruction_limit;
        let mut c = self.canisters.remove(&id)?;
        let mut msg = self.base_ctx(&c, api, ctx.caller, limit);
        msg.arg = arg;
        if matches!(api, ApiType::Update | ApiType::Query) {
            msg.method_name = ctx.method.clone();
        }
        msg.reject = reject_info;
        msg.cycles_available = if api == ApiType::Cleanup {
            0
        } else {
            ctx.cycles_available
        };
        msg.cycles_refunded = refund;
        msg.already_responded = ctx.responded;
        msg.call_context_instructions = ctx.instructions;
        msg.deadline = ctx.deadline;
        // Everything run here is replicated, also a query method called as an update.
        msg.replicated = true;
        msg.stable = std::mem::take(&mut c.stable);
        msg.stable.begin();
        let inst = c.instance.as_mut().expect("executing canister has code");
        let Execution {
            mut msg,
            instructions,
            trap,
        } = inst.run(&entry, msg);
        let fee = self.config.execution_cost(instructions);
        let prints = std::mem::take(&mut msg.debug_prints);
        let st = self.stats.entry(id).or_default();
        st.touch_round(self.round);
        let mstats = st.method(&ctx.method);
        mstats.add_execution(instructions, fee, trap.is_some());
        st.total.add_execution(instructions, fee, trap.is_some());
        c.round_instructions += instructions;
        self.round_total += instructions;
        self.round_max = self.round_max.max(c.round_instructions);

        if let Some(trap) = trap {
            let _ = inst.rollback();
            msg.stable.rollback();
            c.stable = msg.stable;
            c.balance = c.balance.saturating_sub(fee);
            self.canisters.insert(id, c);
            self.record_prints(id, prints, true);
            let line = format!("[TRAP]: {trap}");
            self.record_prints(id, vec![line], true);
            let detail = format!("trapped after {instructions} instructions: {trap}");
            self.trace(TraceKind::Rejected, id, id, &ctx.method, detail);
            return Some(trap);
        }
        if persist {
            let delta = inst.commit() + msg.stable_dirty_pages * crate::stable::PAGE as u64;
            msg.stable.commit();
            c.round_heap_delta += delta;
            c.balance = msg.balance.saturating_sub(fee);
            if let Some(data) = msg.certified_data.take() {
                c.certified_data = data;
            }
            if msg.global_timer_changed {
                c.global_timer = msg.global_timer;
            }
            let st = self.stats.entry(id).or_default();
            st.method(&ctx.method).heap_delta += delta;
            st.total.heap_delta += delta;
        } else {
            let _ = inst.rollback();
            msg.stable.rollback();
            c.balance = c.balance.saturating_sub(fee);
        }
        c.stable = std::mem::take(&mut msg.stable);
        let generation = c.code_generation;
        self.canisters.insert(id, c);
        self.record_prints(id, prints, true);

        let calls = std::mem::take(&mut msg.calls);
        let n_calls = calls.len();
        let mut call_fees = 0u128;
        let mut bytes_out = 0u64;
        for call in calls {
            let cb = self.book.id();
            call_fees += self
                .config
                .call_cost(call.method.len() + call.payload.len());
            bytes_out += call.payload.len() as u64;
            let deadline = call
                .timeout_secs
                .map(|s| self.time + s as u64 * 1_000_000_000);
            self.book.callbacks.insert(
                cb,
                Callback {
                    canister: id,
                    call_context: ctx_id,
                    reply: call.reply,
                    reject: call.reject,
                    cleanup: call.cleanup,
                    deadline,
                    callee: call.callee,
                    method: call.method.clone(),
                    code_generation: generation,
                },
            );
            self.enqueue(Message::Request {
                from: id,
                to: call.callee,
                method: call.method,
                arg: call.payload,
                cycles: call.cycles,
                origin: Origin::Canister {
                    caller: id,
                    callback: cb,
                },
                deadline: deadline.unwrap_or(0),
            });
        }
        let ctx_mut = self.book.call_contexts.get_mut(&ctx_id).expect("context");
        ctx_mut.outstanding += n_calls;
        ctx_mut.instructions += instructions;
        if api != ApiType::Cleanup {
            ctx_mut.cycles_available = msg.cycles_available;
        }
        let response = msg.response.take();
        let origin = ctx_mut.origin.clone();
        if response.is_some() {
            ctx_mut.responded = true;
        }
        let refund = if response.is_some() {
            std::mem::take(&mut ctx_mut.cycles_available)
        } else {
            0
        };
        if let Some(resp) = response {
            let payload = match resp {
                Response::Reply(bytes) => {
                    bytes_out += bytes.len() as u64;
                    Ok(bytes)
                }
                Response::Reject(m) => {
                    Err(RejectResponse::new(ErrorCode::CanisterRejectedMessage, m))
                }
            };
            self.respond(&origin, payload, refund);
        }
        let st = self.stats.entry(id).or_default();
        let m = st.method(&ctx.method);
        m.calls_made += n_calls as u64;
        m.bytes_out += bytes_out;
        m.cycles_burnt += call_fees;
        st.total.calls_made += n_calls as u64;
        st.total.bytes_out += bytes_out;
        st.total.cycles_burnt += call_fees;
        None
    }

    /// Runs code outside any call context (install hooks); the caller applies the effects.
    #[allow(clippy::too_many_arguments)]
    pub fn run_hook(
        &mut self,
        c: &Canister,
        inst: &mut CanisterInstance,
        api: ApiType,
        export: &str,
        arg: Vec<u8>,
        caller: Principal,
        limit: u64,
        stable: crate::stable::StableMemory,
    ) -> Execution {
        let mut msg = self.base_ctx(c, api, caller, limit);
        msg.arg = arg;
        msg.stable = stable;
        inst.run(&Entry::Export(export.into()), msg)
    }
}
