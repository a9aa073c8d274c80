//! Non-replicated execution: queries (and the composite queries they start, see
//! [`crate::composite`]) and `canister_inspect_message`. Nothing a canister does here is kept.

use candid::Principal;

use crate::engine::{ApiType, Entry, Response};
use crate::reject::{ErrorCode, RejectResponse};
use crate::scheduler::{Inner, trap_reject};
use crate::state::{Status, reject};

impl Inner {
    /// Runs `canister_inspect_message` (if exported) for an ingress update; keeps nothing.
    pub fn inspect_message(
        &mut self,
        id: Principal,
        sender: Principal,
        method: &str,
        arg: &[u8],
    ) -> Result<(), RejectResponse> {
        let Some(mut c) = self.canisters.remove(&id) else {
            return Ok(());
        };
        let exported = c
            .instance
            .as_ref()
            .is_some_and(|i| i.module().exports("canister_inspect_message"));
        if !exported || c.status != Status::Running {
            self.canisters.insert(id, c);
            return Ok(());
        }
        let mut msg = self.base_ctx(
            &c,
            ApiType::InspectMessage,
            sender,
            self.config.query_instruction_limit,
        );
        msg.arg = arg.to_vec();
        msg.method_name = method.into();
        msg.stable = std::mem::take(&mut c.stable);
        msg.stable.begin();
        let inst = c.instance.as_mut().unwrap();
        let mut ex = inst.run(&Entry::Export("canister_inspect_message".into()), msg);
        let _ = inst.rollback();
        ex.msg.stable.rollback();
        c.stable = std::mem::take(&mut ex.msg.stable);
        let prints = std::mem::take(&mut ex.msg.debug_prints);
        self.canisters.insert(id, c);
        self.record_prints(id, prints, false);
        if let Some(t) = ex.trap {
            return Err(trap_reject(id, &t));
        }
        if !ex.msg.accepted_message {
            return Err(reject(
                ErrorCode::CanisterRejectedMessage,
                format!("Error from Canister {id}: Canister rejected the message"),
            ));
        }
        Ok(())
    }

    /// A non-replicated query: runs on the current state, keeps nothing.
    pub fn query_now(
        &mut self,
        id: Principal,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
    ) -> Result<Vec<u8>, RejectResponse> {
        let Some(mut c) = self.canisters.remove(&id) else {
            return Err(reject(
                ErrorCode::CanisterNotFound,
                format!("Canister {id} not found"),
            ));
        };
        let result = self.query_on(&mut c, sender, method, arg, true);
        self.canisters.insert(id, c);
        result
    }

    /// Runs query (or composite query) `method` of `c`, taken out of the canister map; `top`
    /// when a user called it (only those see a data certificate).
    pub(crate) fn query_on(
        &mut self,
        c: &mut crate::state::Canister,
        sender: Principal,
        method: &str,
        arg: Vec<u8>,
        top: bool,
    ) -> Result<Vec<u8>, RejectResponse> {
        let id = c.id;
        if c.status != Status::Running {
            let code = if c.status == Status::Stopped {
                ErrorCode::CanisterStopped
            } else {
                ErrorCode::CanisterStopping
            };
            return Err(reject(code, format!("Canister {id} is not running")));
        }
        let export = format!("canister_query {method}");
        if top
            && c.instance
                .as_ref()
                .is_some_and(|i| i.module().exports(&crate::composite::export(method)))
        {
            let mut graph = crate::composite::Graph::default();
            return self.composite_query_on(c, sender, method, arg, 0, &mut graph);
        }
        let has = c.instance.as_ref().map(|i| i.module().exports(&export));
        match has {
            None => {
                return Err(reject(
                    ErrorCode::CanisterWasmModuleNotFound,
                    format!(
                        "Error from Canister {id}: Attempted to execute a message, but the canister contains no Wasm module."
                    ),
                ));
            }
            Some(false) => {
                return Err(reject(
                    ErrorCode::CanisterMethodNotFound,
                    format!("Error from Canister {id}: Canister has no query method '{method}'."),
                ));
            }
            Some(true) => {}
        }
        let limit = self.config.query_instruction_limit;
        let mut msg = self.base_ctx(c, ApiType::Query, sender, limit);
        msg.data_certificate = self.certifier.as_ref().map(|cf| {
            std::sync::Arc::new(crate::certify::DataCertificate::new(
                cf.clone(),
                id,
                c.certified_data.clone(),
                self.time,
            ))
        });
        msg.arg = arg;
        msg.method_name = method.into();
        msg.stable = std::mem::take(&mut c.stable);
        msg.stable.begin();
        let inst = c.instance.as_mut().unwrap();
        let mut ex = inst.run(&Entry::Export(export), msg);
        let _ = inst.rollback();
        ex.msg.stable.rollback();
        c.stable = std::mem::take(&mut ex.msg.stable);
        let prints = std::mem::take(&mut ex.msg.debug_prints);
        self.record_prints(id, prints, false);
        let st = self.stats.entry(id).or_default();
        st.method(method)
            .add_execution(ex.instructions, 0, ex.trap.is_some());
        st.total
            .add_execution(ex.instructions, 0, ex.trap.is_some());
        if let Some(t) = ex.trap {
            return Err(trap_reject(id, &t));
        }
        match ex.msg.response {
            Some(Response::Reply(b)) => Ok(b),
            Some(Response::Reject(m)) => {
                Err(RejectResponse::new(ErrorCode::CanisterRejectedMessage, m))
            }
            None => Err(reject(
                ErrorCode::CanisterDidNotReply,
                format!("Error from Canister {id}: Canister did not reply to the call"),
            )),
        }
    }
}
