//! Composite queries (interface specification, "Composite query methods"): a
//! `canister_composite_query <name>` export runs only as a non-replicated query; it may call
//! query and composite query methods of canisters on its subnet, and its callbacks run as it
//! did, in non-replicated mode; nothing any canister of the call graph does is kept.
//!
//! Limits as the replica applies them: a call graph at most [`MAX_DEPTH`] deep
//! (`IC0525`), at most [`MAX_GRAPH_INSTRUCTIONS`] instructions in all (`IC0526`), no canister
//! called again while it is already in the graph (`IC0517`); update methods and the management
//! canister cannot be called from it (`IC0536`, `IC0302`-like reject), and calling a composite
//! query method in replicated mode fails (`IC0527`, checked where updates are dispatched).

use candid::Principal;

use crate::engine::{ApiType, Entry, Response};
use crate::reject::{ErrorCode, RejectResponse};
use crate::scheduler::{Inner, callback_entry, trap_reject};
use crate::state::{Canister, reject};

/// The deepest call graph a composite query may build (the replica's `MAX_QUERY_CALL_DEPTH`).
pub const MAX_DEPTH: usize = 6;
/// Instructions a composite query's whole call graph may use (the replica's
/// `max_query_call_graph_instructions`).
pub const MAX_GRAPH_INSTRUCTIONS: u64 = 50_000_000_000;

/// The export name of composite query `method`.
pub fn export(method: &str) -> String {
    format!("canister_composite_query {method}")
}

/// One composite query's call graph so far.
#[derive(Default)]
pub(crate) struct Graph {
    /// Instructions used by all its executions.
    pub instructions: u64,
    /// The canisters on the current path from the user's call.
    pub path: Vec<Principal>,
}

impl Inner {
    /// Runs composite query `method` of `c` (taken out of the canister map, as every canister
    /// on the current path of the graph is) for `sender` at `depth` (0 for the user's call).
    pub(crate) fn composite_query_on(
        &mut self,
        c: &mut Canister,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
        depth: usize,
        graph: &mut Graph,
    ) -> Result<Vec<u8>, RejectResponse> {
        let id = c.id;
        graph.path.push(id);
        let limit = self.config.query_instruction_limit;
        let mut msg = self.base_ctx(c, ApiType::CompositeQuery, sender, limit);
        msg.arg = arg;
        msg.method_name = method.into();
        msg.stable = std::mem::take(&mut c.stable);
        msg.stable.begin();
        let inst = c.instance.as_mut().expect("checked by the caller");
        let mut ex = inst.run(&Entry::Export(export(method)), msg);
        let mut queue = std::collections::VecDeque::new();
        let result = loop {
            graph.instructions += ex.instructions;
            let prints = std::mem::take(&mut ex.msg.debug_prints);
            self.record_prints(id, prints, false);
            if let Some(t) = &ex.trap {
                break Err(trap_reject(id, t));
            }
            if graph.instructions > MAX_GRAPH_INSTRUCTIONS {
                break Err(reject(
                    ErrorCode::QueryCallGraphTotalInstructionLimitExceeded,
                    format!(
                        "Error from Canister {id}: the composite query's call graph used more than {MAX_GRAPH_INSTRUCTIONS} instructions"
                    ),
                ));
            }
            match ex.msg.response.take() {
                Some(Response::Reply(b)) => break Ok(b),
                Some(Response::Reject(m)) => {
                    break Err(RejectResponse::new(ErrorCode::CanisterRejectedMessage, m));
                }
                None => {}
            }
            queue.extend(std::mem::take(&mut ex.msg.calls));
            let Some(call) = queue.pop_front() else {
                break Err(reject(
                    ErrorCode::CanisterDidNotReply,
                    format!("Error from Canister {id}: Canister did not reply to the call"),
                ));
            };
            let answer =
                self.graph_call(id, &call.callee, &call.method, call.payload, depth, graph);
            let stable = std::mem::take(&mut ex.msg.stable);
            let (api, entry, arg, rej) = callback_entry(answer, call.reply, call.reject);
            let mut msg = self.base_ctx(c, api, sender, limit);
            // Callbacks of a composite query run in non-replicated mode, as the query did.
            msg.replicated = false;
            msg.arg = arg;
            msg.reject = rej;
            msg.method_name = method.into();
            msg.stable = stable;
            let inst = c.instance.as_mut().expect("checked by the caller");
            ex = inst.run(&entry, msg);
        };
        let inst = c.instance.as_mut().expect("checked by the caller");
        let _ = inst.rollback();
        ex.msg.stable.rollback();
        c.stable = std::mem::take(&mut ex.msg.stable);
        let st = self.stats.entry(id).or_default();
        st.method(method)
            .add_execution(ex.instructions, 0, result.is_err());
        graph.path.pop();
        result
    }

    /// One call of the graph, from `caller` at `depth`.
    fn graph_call(
        &mut self,
        caller: Principal,
        callee: &Principal,
        method: &str,
        arg: Vec<u8>,
        depth: usize,
        graph: &mut Graph,
    ) -> Result<Vec<u8>, RejectResponse> {
        if *callee == Principal::management_canister() {
            return Err(reject(
                ErrorCode::CanisterMethodNotFound,
                format!(
                    "Error from Canister {caller}: composite queries cannot call the management canister"
                ),
            ));
        }
        if depth + 1 >= MAX_DEPTH {
            return Err(reject(
                ErrorCode::QueryCallGraphTooDeep,
                format!(
                    "Error from Canister {caller}: the composite query's call graph is deeper than {MAX_DEPTH}"
                ),
            ));
        }
        if graph.path.contains(callee) {
            return Err(reject(
                ErrorCode::QueryCallGraphLoopDetected,
                format!(
                    "Error from Canister {caller}: loop detected: {callee} is already in the composite query's call graph"
                ),
            ));
        }
        let Some(mut c) = self.canisters.remove(callee) else {
            return Err(reject(
                ErrorCode::CanisterNotFound,
                format!("Canister {callee} not found"),
            ));
        };
        let result = self.graph_callee(&mut c, caller, method, arg, depth, graph);
        self.canisters.insert(*callee, c);
        result
    }

    fn graph_callee(
        &mut self,
        c: &mut Canister,
        caller: Principal,
        method: &str,
        arg: Vec<u8>,
        depth: usize,
        graph: &mut Graph,
    ) -> Result<Vec<u8>, RejectResponse> {
        let id = c.id;
        let (query, composite) = match &c.instance {
            Some(i) => (
                i.module().exports(&format!("canister_query {method}")),
                i.module().exports(&export(method)),
            ),
            None => (false, false),
        };
        if composite && c.status == crate::state::Status::Running {
            return self.composite_query_on(c, caller, method, arg, depth + 1, graph);
        }
        if query || c.instance.is_none() || c.status != crate::state::Status::Running {
            let before = self
                .stats
                .get(&id)
                .map(|s| s.total.instructions_total)
                .unwrap_or(0);
            let r = self.query_on(c, caller, method, arg, false);
            let after = self
                .stats
                .get(&id)
                .map(|s| s.total.instructions_total)
                .unwrap_or(0);
            graph.instructions += after.saturating_sub(before);
            return r;
        }
        Err(reject(
            ErrorCode::CanisterMethodNotFound,
            format!("Error from Canister {id}: Canister has no query method '{method}'."),
        ))
    }
}
