//! Request envelopes (interface specification, "Envelope: Authentication" and "Request ids"):
//! decoding, the request id, the sender check and signature verification.
//!
//! A request is a CBOR map `{content, sender_pubkey?, sender_sig?, sender_delegation?}`. Its id
//! is the representation-independent hash of `content`. The anonymous sender (`0x04`) sends no
//! key or signature; any other sender must be the self-authenticating principal of
//! `sender_pubkey`, and `sender_sig` must be a signature of `"\x0Aic-request" · request id` by
//! the last key of the delegation chain (or by `sender_pubkey` when there is none). Keys are
//! Ed25519, ECDSA on P-256 or on secp256k1 (DER, SHA-256 hashed, 64-byte `r‖s` signatures);
//! canister signatures are not modelled and are refused.

use candid::Principal;
use ic_transport_types::{Envelope, EnvelopeContent, SignedDelegation};
use p256::pkcs8::DecodePublicKey;

use super::keys::ED25519_DER_PREFIX;

/// The longest `ingress_expiry` may lie ahead (5 minutes, plus a minute of clock drift).
pub const MAX_INGRESS_TTL_NS: u64 = 6 * 60 * 1_000_000_000;
/// The longest delegation chain accepted.
pub const MAX_DELEGATIONS: usize = 20;
/// The most targets a delegation may name.
pub const MAX_TARGETS: usize = 1000;

/// Why a request is refused (answered with HTTP 400, or 403 for [`Refused::Forbidden`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    /// The body is not a CBOR envelope.
    #[error("the body is not a CBOR request envelope: {0}")]
    Malformed(String),
    /// The request type does not belong to the endpoint.
    #[error("a {found} request sent to the {endpoint} endpoint")]
    WrongEndpoint {
        /// The request's type.
        found: &'static str,
        /// The endpoint.
        endpoint: &'static str,
    },
    /// `ingress_expiry` is in the past or too far ahead.
    #[error(
        "ingress_expiry {expiry} is outside [{now}, {now} + {MAX_INGRESS_TTL_NS}] (wall clock, ns)"
    )]
    Expiry {
        /// The request's expiry.
        expiry: u64,
        /// Now.
        now: u64,
    },
    /// The anonymous sender sent a key or signature, or another sender none.
    #[error("{0}")]
    Authentication(String),
    /// The sender is not the principal of `sender_pubkey`.
    #[error("sender {sender} is not the principal {derived} of sender_pubkey")]
    SenderMismatch {
        /// The `sender` field.
        sender: Principal,
        /// `self_authenticating(sender_pubkey)`.
        derived: Principal,
    },
    /// A signature does not verify.
    #[error("invalid signature: {0}")]
    Signature(String),
    /// A delegation does not allow this request.
    #[error("delegation: {0}")]
    Delegation(String),
    /// The canister is not the one in the URL.
    #[error("the request is for canister {canister}, sent to effective canister id {effective}")]
    EffectiveCanister {
        /// The request's canister.
        canister: Principal,
        /// The URL's.
        effective: Principal,
    },
    /// The sender may not read this.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

/// A request whose signature checked out.
#[derive(Debug)]
pub struct Verified {
    /// The content.
    pub content: EnvelopeContent,
    /// The request id.
    pub request_id: [u8; 32],
}

/// The kind of endpoint a request arrived at.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Endpoint {
    /// `call`.
    Call,
    /// `query`.
    Query,
    /// `read_state`.
    ReadState,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Query => "query",
            Self::ReadState => "read_state",
        }
    }
}

fn kind(c: &EnvelopeContent) -> &'static str {
    match c {
        EnvelopeContent::Call { .. } => "call",
        EnvelopeContent::Query { .. } => "query",
        EnvelopeContent::ReadState { .. } => "read_state",
    }
}

/// Decodes and authenticates `body` sent to `endpoint`, at wall-clock time `now` (ns).
pub fn verify(body: &[u8], endpoint: Endpoint, now: u64) -> Result<Verified, Refused> {
    let env: Envelope<'static> =
        serde_cbor::from_slice(body).map_err(|e| Refused::Malformed(e.to_string()))?;
    let content = env.content.into_owned();
    if kind(&content) != endpoint.name() {
        return Err(Refused::WrongEndpoint {
            found: kind(&content),
            endpoint: endpoint.name(),
        });
    }
    let expiry = content.ingress_expiry();
    if expiry < now || expiry > now.saturating_add(MAX_INGRESS_TTL_NS) {
        return Err(Refused::Expiry { expiry, now });
    }
    let request_id = *content.to_request_id();
    let sender = *content.sender();
    if sender == Principal::anonymous() {
        if env.sender_pubkey.is_some()
            || env.sender_sig.is_some()
            || env.sender_delegation.is_some()
        {
            return Err(Refused::Authentication(
                "an anonymous request carries no sender_pubkey, sender_sig or delegation".into(),
            ));
        }
        return Ok(Verified {
            content,
            request_id,
        });
    }
    let (Some(pubkey), Some(sig)) = (env.sender_pubkey, env.sender_sig) else {
        return Err(Refused::Authentication(format!(
            "sender {sender} is not anonymous: sender_pubkey and sender_sig are required"
        )));
    };
    let derived = Principal::self_authenticating(&pubkey);
    if derived != sender {
        return Err(Refused::SenderMismatch { sender, derived });
    }
    let target = match &content {
        EnvelopeContent::Call { canister_id, .. } | EnvelopeContent::Query { canister_id, .. } => {
            Some(*canister_id)
        }
        EnvelopeContent::ReadState { .. } => None,
    };
    let key = check_delegations(
        &pubkey,
        env.sender_delegation.as_deref().unwrap_or(&[]),
        target,
        endpoint,
        now,
    )?;
    let mut signable = b"\x0Aic-request".to_vec();
    signable.extend_from_slice(&request_id);
    verify_signature(&key, &signable, &sig).map_err(Refused::Signature)?;
    Ok(Verified {
        content,
        request_id,
    })
}

/// Walks the chain from `pubkey`; returns the key that must sign the request.
fn check_delegations(
    pubkey: &[u8],
    chain: &[SignedDelegation],
    target: Option<Principal>,
    endpoint: Endpoint,
    now: u64,
) -> Result<Vec<u8>, Refused> {
    if chain.len() > MAX_DELEGATIONS {
        return Err(Refused::Delegation(format!(
            "{} delegations (at most {MAX_DELEGATIONS})",
            chain.len()
        )));
    }
    let mut seen = vec![pubkey.to_vec()];
    let mut key = pubkey.to_vec();
    for (i, sd) in chain.iter().enumerate() {
        let d = &sd.delegation;
        verify_signature(&key, &d.signable(), &sd.signature)
            .map_err(|e| Refused::Delegation(format!("delegation {i}: {e}")))?;
        if d.expiration < now {
            return Err(Refused::Delegation(format!(
                "delegation {i} expired at {} (now {now})",
                d.expiration
            )));
        }
        if let Some(targets) = &d.targets {
            if targets.len() > MAX_TARGETS {
                return Err(Refused::Delegation(format!(
                    "delegation {i} names {} targets (at most {MAX_TARGETS})",
                    targets.len()
                )));
            }
            if let Some(t) = target
                && !targets.contains(&t)
            {
                return Err(Refused::Delegation(format!(
                    "delegation {i} does not allow canister {t}"
                )));
            }
        }
        if d.permissions == Some(ic_transport_types::DelegationPermissions::Queries)
            && endpoint == Endpoint::Call
        {
            return Err(Refused::Delegation(format!(
                "delegation {i} allows only queries and read_state"
            )));
        }
        if seen.contains(&d.pubkey) {
            return Err(Refused::Delegation(format!(
                "delegation {i} repeats a key of the chain"
            )));
        }
        seen.push(d.pubkey.clone());
        key = d.pubkey.clone();
    }
    Ok(key)
}

/// Verifies `sig` of `msg` by the DER public key `der`.
pub fn verify_signature(der: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), String> {
    if der.len() == 44 && der.starts_with(&ED25519_DER_PREFIX) {
        let key = ed25519_dalek::VerifyingKey::from_bytes(der[12..].try_into().expect("32 bytes"))
            .map_err(|e| format!("Ed25519 public key: {e}"))?;
        return verify_with::<ed25519_dalek::Signature>(&key, "Ed25519", msg, sig);
    }
    if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
        return verify_with::<p256::ecdsa::Signature>(&key, "ECDSA P-256", msg, sig);
    }
    if let Ok(key) = k256::ecdsa::VerifyingKey::from_public_key_der(der) {
        return verify_with::<k256::ecdsa::Signature>(&key, "ECDSA secp256k1", msg, sig);
    }
    // 1.3.6.1.4.1.56387.1.2, the canister signature scheme's OID.
    const CANISTER_SIG_OID: [u8; 12] = [
        0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb8, 0x43, 0x01, 0x02,
    ];
    if der.windows(12).any(|w| w == CANISTER_SIG_OID) {
        return Err("canister signatures are not modelled by the emulator".into());
    }
    Err("the public key is not Ed25519, ECDSA P-256 or ECDSA secp256k1 (DER)".into())
}

/// Verifies `sig` of `msg` with `key` of signature `scheme` (named in the errors).
fn verify_with<S>(
    key: &impl p256::ecdsa::signature::Verifier<S>,
    scheme: &str,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), String>
where
    S: for<'a> TryFrom<&'a [u8], Error = p256::ecdsa::signature::Error>,
{
    let sig = S::try_from(sig).map_err(|e| format!("{scheme} signature: {e}"))?;
    key.verify(msg, &sig)
        .map_err(|_| format!("the {scheme} signature does not verify"))
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
