//! The IC HTTP interface of `icemu serve` (interface specification, "HTTPS Interface"), so the
//! official agents work against the emulator unchanged:
//!
//! - `GET /api/v2/status`: CBOR, with the root key;
//! - `POST /api/v2/canister/<id>/call` (asynchronous: 202) and `/api/v3|v4/canister/<id>/call`
//!   (synchronous: a certificate of the request's status, or 202 when it takes longer than
//!   `serve --call-timeout-secs`, 10 s by default);
//! - `POST /api/v2|v3/canister/<id>/query`: the reply, signed by the node's Ed25519 key;
//! - `POST /api/v2|v3/canister/<id>/read_state` and `/api/v2|v3/subnet/<id>/read_state`: a
//!   certificate of the requested paths.
//!
//! Requests are authenticated ([`envelope`]); certificates are signed state-tree witnesses
//! ([`certify`]). Clock: request expiries and delegation expirations are checked against the
//! wall clock, the agent's reference; the certified `/time` is the emulator's, which `serve`
//! keeps at or after the wall clock.

pub mod certify;
pub mod envelope;
pub mod keys;
pub mod requests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use candid::Principal;
use emulator::{Emulator, RejectResponse};
use ic_transport_types::{
    EnvelopeContent, NodeSignature, QueryResponse, ReadStateResponse, RejectCode, ReplyResponse,
    RequestId,
};
use serde::Serialize;

use certify::{Path, Signer, canister_range, cbor};
use envelope::{Endpoint, Refused, verify};
use requests::{Outcome, Requests};

/// The interface specification version served.
pub const IC_API_VERSION: &str = "0.18.0";

/// An HTTP answer.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    fn cbor<T: Serialize>(status: u16, v: &T) -> Self {
        Self {
            status,
            content_type: "application/cbor",
            body: cbor(v),
        }
    }

    fn text(status: u16, msg: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: msg.into().into_bytes(),
        }
    }
}

impl From<Refused> for Reply {
    fn from(r: Refused) -> Self {
        let status = if matches!(r, Refused::Forbidden(_)) {
            403
        } else {
            400
        };
        Reply::text(status, r.to_string())
    }
}

/// The HTTP interface over one emulator.
pub struct Ic {
    emu: Arc<Emulator>,
    signer: Arc<Signer>,
    requests: Requests,
    /// The state tree, updated by each certificate with what changed.
    state: std::sync::Mutex<certify::StateTree>,
    sync_wait: Duration,
}

/// Wall-clock time in ns since the epoch.
pub fn wall_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What an endpoint path names.
#[derive(Debug, PartialEq, Eq)]
struct Route {
    version: u8,
    subnet: bool,
    id: Principal,
    endpoint: Endpoint,
}

fn route(path: &str) -> Option<Result<Route, Reply>> {
    let rest = path.strip_prefix("/api/v")?;
    let (version, rest) = rest.split_once('/')?;
    let version: u8 = version.parse().ok().filter(|v| (2..=4).contains(v))?;
    let mut parts = rest.split('/');
    let scope = parts.next()?;
    let id = parts.next()?;
    let endpoint = match parts.next()? {
        "call" => Endpoint::Call,
        "query" => Endpoint::Query,
        "read_state" => Endpoint::ReadState,
        _ => return None,
    };
    if parts.next().is_some() || !matches!(scope, "canister" | "subnet") {
        return None;
    }
    let subnet = scope == "subnet";
    // v4 exists only for calls; the subnet scope only for read_state here.
    if (version == 4 && endpoint != Endpoint::Call) || (subnet && endpoint != Endpoint::ReadState) {
        return None;
    }
    Some(match Principal::from_text(id) {
        Ok(id) => Ok(Route {
            version,
            subnet,
            id,
            endpoint,
        }),
        Err(e) => Err(Reply::text(400, format!("bad id {id:?} in the path: {e}"))),
    })
}

#[derive(Serialize)]
struct Status<'a> {
    ic_api_version: &'a str,
    impl_version: &'a str,
    replica_health_status: &'a str,
    #[serde(with = "serde_bytes")]
    root_key: Vec<u8>,
}

#[derive(Serialize)]
struct NonReplicatedRejection {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    reject_code: u64,
    reject_message: String,
    error_code: String,
}

#[derive(Serialize)]
struct CallReplied {
    status: &'static str,
    #[serde(with = "serde_bytes")]
    certificate: Vec<u8>,
}

fn error_code(r: &RejectResponse) -> String {
    format!("IC{:04}", r.error_code as u32)
}

impl Ic {
    /// The interface over `emu`, with the keys of the state directory `dir`. Sets the emulator's
    /// certifier, and moves its clock up to the wall clock when it is behind (agents refuse
    /// certificates older than a few minutes), as if the subnet had been down meanwhile.
    /// A synchronous call waits up to `sync_wait` for its outcome, then answers 202.
    pub fn new(dir: &std::path::Path, emu: Arc<Emulator>, sync_wait: Duration) -> Result<Self> {
        let keys = keys::Keys::load_or_create(dir)?;
        let signer = Arc::new(Signer::new(keys, *emulator::SUBNET_ID));
        emu.set_certifier(certify::certifier(&signer));
        let now = wall_now();
        if emu.time_nanos() < now {
            emu.set_time_nanos(now);
        }
        Ok(Self {
            emu,
            state: std::sync::Mutex::new(signer.state_tree()),
            signer,
            requests: Requests::default(),
            sync_wait,
        })
    }

    /// `GET /api/v2/status`.
    pub fn status(&self) -> Reply {
        Reply::cbor(
            200,
            &Status {
                ic_api_version: IC_API_VERSION,
                impl_version: concat!("icemu ", env!("CARGO_PKG_VERSION")),
                replica_health_status: "healthy",
                root_key: self.signer.root_key(),
            },
        )
    }

    /// A `POST` to `path`: `None` when `path` is not an endpoint of the interface.
    pub fn post(&self, path: &str, body: &[u8]) -> Option<Reply> {
        let r = match route(path)? {
            Ok(r) => r,
            Err(reply) => return Some(reply),
        };
        let now = wall_now();
        let reply = match verify(body, r.endpoint, now) {
            Err(e) => e.into(),
            Ok(v) => match r.endpoint {
                Endpoint::Call => self.call(&r, v),
                Endpoint::Query => self.query(&r, v),
                Endpoint::ReadState => self.read_state(&r, v, now),
            },
        };
        Some(reply)
    }

    /// Whether `id` is a canister id this subnet holds.
    fn in_range(id: Principal) -> bool {
        let (lo, hi) = canister_range();
        id.as_slice().len() == 10 && lo <= id && id <= hi
    }

    fn check_effective(r: &Route, canister: Principal) -> Result<(), Reply> {
        if !Self::in_range(r.id) {
            return Err(Reply::text(
                400,
                format!("effective canister id {} is not on this subnet", r.id),
            ));
        }
        // Calls to the management canister name their effective canister in the URL only.
        if canister != r.id && canister != Principal::management_canister() {
            return Err(Refused::EffectiveCanister {
                canister,
                effective: r.id,
            }
            .into());
        }
        Ok(())
    }

    fn call(&self, r: &Route, v: envelope::Verified) -> Reply {
        let EnvelopeContent::Call {
            canister_id,
            method_name,
            arg,
            sender,
            ingress_expiry,
            ..
        } = v.content
        else {
            unreachable!("verify checked the request type")
        };
        if let Err(reply) = Self::check_effective(r, canister_id) {
            return reply;
        }
        let rid = v.request_id;
        // A request id is executed at most once: a repeat only waits for the first's outcome.
        if !self.requests.contains(&rid) {
            match self.emu.submit(canister_id, sender, &method_name, arg) {
                Ok(mid) => {
                    self.requests.insert(rid, sender, ingress_expiry, mid);
                }
                Err(rej) => {
                    return Reply::cbor(
                        200,
                        &NonReplicatedRejection {
                            status: (r.version >= 3).then_some("non_replicated_rejection"),
                            reject_code: rej.reject_code as u64,
                            error_code: error_code(&rej),
                            reject_message: rej.reject_message,
                        },
                    );
                }
            }
        }
        let accepted = Reply {
            status: 202,
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
        };
        if r.version == 2 {
            return accepted;
        }
        let deadline = Instant::now() + self.sync_wait;
        loop {
            self.requests.refresh(&self.emu, wall_now());
            let done = self
                .requests
                .get(&rid)
                .is_some_and(|rec| !matches!(rec.outcome, Outcome::Processing));
            if done {
                let path: Path = vec![b"request_status".to_vec(), rid.to_vec()];
                let certificate = self.certificate(&[path]);
                return Reply::cbor(
                    200,
                    &CallReplied {
                        status: "replied",
                        certificate,
                    },
                );
            }
            if Instant::now() >= deadline {
                return accepted;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A certificate of `paths` in the current state: the kept tree is brought up to date
    /// (time, canisters, request statuses that changed), then witnessed and signed. The tree's
    /// lock is held from taking the changes to signing, so certificates never go back in time.
    fn certificate(&self, paths: &[Path]) -> Vec<u8> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (time, canisters) = self.emu.certified_state();
        st.set_time(time);
        st.set_canisters(canisters);
        for (rid, record) in self.requests.take_changes() {
            st.set_request(&rid, record.as_ref());
        }
        self.signer.certificate(st.tree(), paths)
    }

    fn query(&self, r: &Route, v: envelope::Verified) -> Reply {
        let EnvelopeContent::Query {
            canister_id,
            method_name,
            arg,
            sender,
            ..
        } = v.content
        else {
            unreachable!("verify checked the request type")
        };
        if let Err(reply) = Self::check_effective(r, canister_id) {
            return reply;
        }
        let result = self.emu.query(canister_id, sender, &method_name, arg);
        let timestamp = self.emu.time_nanos();
        let mut response = match result {
            Ok(arg) => QueryResponse::Replied {
                reply: ReplyResponse { arg },
                signatures: Vec::new(),
            },
            Err(rej) => QueryResponse::Rejected {
                reject: ic_transport_types::RejectResponse {
                    reject_code: RejectCode::try_from(rej.reject_code as u64)
                        .unwrap_or(RejectCode::SysFatal),
                    error_code: Some(error_code(&rej)),
                    reject_message: rej.reject_message,
                },
                signatures: Vec::new(),
            },
        };
        let signable = response.signable(RequestId::new(&v.request_id), timestamp);
        let signature = NodeSignature {
            timestamp,
            signature: ed25519_dalek::Signer::sign(&self.signer.keys().node, &signable)
                .to_bytes()
                .to_vec(),
            identity: self.signer.keys().node_id(),
        };
        match &mut response {
            QueryResponse::Replied { signatures, .. }
            | QueryResponse::Rejected { signatures, .. } => signatures.push(signature),
        }
        Reply::cbor(200, &response)
    }

    fn read_state(&self, r: &Route, v: envelope::Verified, now: u64) -> Reply {
        let EnvelopeContent::ReadState { paths, sender, .. } = v.content else {
            unreachable!("verify checked the request type")
        };
        if !r.subnet && !Self::in_range(r.id) {
            return Reply::text(
                400,
                format!("effective canister id {} is not on this subnet", r.id),
            );
        }
        if r.subnet && r.id != self.signer.subnet_id() {
            return Reply::text(404, format!("subnet {} is not this subnet", r.id));
        }
        self.requests.refresh(&self.emu, now);
        let paths: Vec<Path> = paths
            .iter()
            .map(|p| p.iter().map(|l| l.as_bytes().to_vec()).collect())
            .collect();
        for path in &paths {
            if let Err(reply) = self.readable(r, sender, path) {
                return reply;
            }
        }
        let certificate = self.certificate(&paths);
        Reply::cbor(200, &ReadStateResponse { certificate })
    }

    fn metadata_readable(
        &self,
        id: Principal,
        sender: Principal,
        name: &[u8],
    ) -> Result<(), Reply> {
        let (_, canisters) = self.emu.certified_state();
        let Some(c) = canisters.iter().find(|c| c.id == id) else {
            return Ok(());
        };
        let private = c
            .metadata
            .iter()
            .any(|(n, public, _)| !public && n.as_bytes() == name);
        if private && !c.controllers.contains(&sender) {
            return Err(Refused::Forbidden(format!(
                "the metadata section {} of {id} is private to its controllers",
                String::from_utf8_lossy(name)
            ))
            .into());
        }
        Ok(())
    }

    /// Whether `sender` may read `path` through the endpoint `r` (interface specification,
    /// "Request: Read state").
    fn readable(&self, r: &Route, sender: Principal, path: &[Vec<u8>]) -> Result<(), Reply> {
        let label = |i: usize| path.get(i).map(|l| l.as_slice());
        let invalid = || Reply::text(404, "Invalid path requested.");
        match label(0) {
            Some(b"time") if path.len() == 1 => Ok(()),
            Some(b"subnet") | Some(b"canister_ranges") | Some(b"api_boundary_nodes") => Ok(()),
            Some(b"canister") if !r.subnet => {
                let Some(id) = label(1) else {
                    return Err(invalid());
                };
                if id != r.id.as_slice() {
                    return Err(Reply::text(
                        400,
                        format!(
                            "canister paths must name the effective canister id {}",
                            r.id
                        ),
                    ));
                }
                match (label(2), path.len()) {
                    (Some(b"controllers" | b"module_hash"), 3) => Ok(()),
                    // A private section only for the canister's controllers.
                    (Some(b"metadata"), 4) => self.metadata_readable(r.id, sender, &path[3]),
                    _ => Err(invalid()),
                }
            }
            Some(b"request_status") if !r.subnet => {
                let Some(rid) = label(1) else {
                    return Err(invalid());
                };
                let rid: [u8; 32] = rid.try_into().map_err(|_| invalid())?;
                match self.requests.get(&rid) {
                    Some(rec) if rec.sender != sender => Err(Refused::Forbidden(format!(
                        "request {} was sent by {}, not {sender}",
                        hex::encode(rid),
                        rec.sender
                    ))
                    .into()),
                    _ => Ok(()),
                }
            }
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests;
