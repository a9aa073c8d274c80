//! Fault injection: rejects, traps, delays, paused delivery and failing management calls.

use std::collections::{BTreeMap, BTreeSet};

use candid::Principal;

use crate::reject::{ErrorCode, RejectCode, RejectResponse};

/// Reject the next `remaining` requests to a canister (and method, if given).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RejectRule {
    /// Destination canister.
    pub canister: Principal,
    /// Method, or any method.
    pub method: Option<String>,
    /// How many more requests to reject.
    pub remaining: u32,
    /// Reject code to answer with.
    pub code: RejectCode,
    /// Reject message.
    pub message: String,
}

/// All active faults.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Faults {
    /// Reject rules, applied in order.
    pub reject_rules: Vec<RejectRule>,
    /// Methods that trap as soon as they are called.
    pub trapping_methods: BTreeSet<(Principal, String)>,
    /// Extra rounds before messages to a canister are delivered.
    #[serde(with = "crate::serde_helpers::principal_map")]
    pub delays: BTreeMap<Principal, u64>,
    /// Canisters (or `aaaaa-aa`) whose incoming messages are held.
    pub paused: BTreeSet<Principal>,
    /// Number of upcoming `create_canister` calls that fail.
    pub fail_create_canister: u32,
    /// Number of upcoming `install_code` calls that fail.
    pub fail_install_code: u32,
}

impl Faults {
    /// The reject to answer a request to `canister`.`method` with, if a rule applies,
    /// consuming one use of it.
    pub fn take_reject(&mut self, canister: Principal, method: &str) -> Option<RejectResponse> {
        let rule = self.reject_rules.iter_mut().find(|r| {
            r.remaining > 0
                && r.canister == canister
                && r.method.as_deref().is_none_or(|m| m == method)
        })?;
        rule.remaining -= 1;
        let out = RejectResponse {
            reject_code: rule.code,
            reject_message: rule.message.clone(),
            error_code: error_code_for(rule.code),
            certified: true,
        };
        self.reject_rules.retain(|r| r.remaining > 0);
        Some(out)
    }
}

/// An error code that fits a reject code (for injected rejects).
fn error_code_for(code: RejectCode) -> ErrorCode {
    match code {
        RejectCode::SysFatal => ErrorCode::SubnetOversubscribed,
        RejectCode::SysTransient => ErrorCode::CanisterQueueFull,
        RejectCode::DestinationInvalid => ErrorCode::CanisterNotFound,
        RejectCode::CanisterReject => ErrorCode::CanisterRejectedMessage,
        RejectCode::CanisterError => ErrorCode::CanisterCalledTrap,
        RejectCode::SysUnknown => ErrorCode::DeadlineExpired,
    }
}
