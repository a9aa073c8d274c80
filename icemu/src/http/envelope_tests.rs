//! Envelope authentication: every way a request can fail to authenticate is refused with its
//! own error; the request id is the content's representation-independent hash.

use std::borrow::Cow;

use candid::Principal;
use ed25519_dalek::Signer as _;
use ic_transport_types::{Delegation, DelegationPermissions, Envelope, EnvelopeContent};
use p256::pkcs8::EncodePublicKey;

use super::*;

const NOW: u64 = 1_800_000_000_000_000_000;
const MINUTE: u64 = 60_000_000_000;

fn canister() -> Principal {
    Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 1, 1])
}

/// Signs a message, returning the signature's bytes.
type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

/// A signing key of any kind: DER public key and a signing function.
struct Key {
    der: Vec<u8>,
    sign: SignFn,
}

fn ed25519(seed: u8) -> Key {
    let k = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let mut der = ED25519_DER_PREFIX.to_vec();
    der.extend_from_slice(k.verifying_key().as_bytes());
    Key {
        der,
        sign: Box::new(move |m| k.sign(m).to_bytes().to_vec()),
    }
}

fn p256_key(seed: u8) -> Key {
    use p256::ecdsa::signature::Signer;
    let k = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
    let der = k.verifying_key().to_public_key_der().unwrap().to_vec();
    Key {
        der,
        sign: Box::new(move |m| {
            let s: p256::ecdsa::Signature = k.sign(m);
            s.to_vec()
        }),
    }
}

fn k256_key(seed: u8) -> Key {
    use k256::ecdsa::signature::Signer;
    let k = k256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
    let der = k.verifying_key().to_public_key_der().unwrap().to_vec();
    Key {
        der,
        sign: Box::new(move |m| {
            let s: k256::ecdsa::Signature = k.sign(m);
            s.to_vec()
        }),
    }
}

fn call(sender: Principal, expiry: u64) -> EnvelopeContent {
    EnvelopeContent::Call {
        nonce: None,
        ingress_expiry: expiry,
        sender,
        canister_id: canister(),
        method_name: "inc".into(),
        arg: vec![0x44, 0x49, 0x44, 0x4c, 0, 0],
        sender_info: None,
    }
}

fn request_signable(c: &EnvelopeContent) -> Vec<u8> {
    let mut m = b"\x0Aic-request".to_vec();
    m.extend_from_slice(c.to_request_id().as_slice());
    m
}

fn envelope(
    content: EnvelopeContent,
    pubkey: Option<Vec<u8>>,
    sig: Option<Vec<u8>>,
    chain: Option<Vec<SignedDelegation>>,
) -> Vec<u8> {
    Envelope {
        content: Cow::Owned(content),
        sender_pubkey: pubkey,
        sender_sig: sig,
        sender_delegation: chain,
    }
    .encode_bytes()
}

/// A request signed by `key` for its own principal.
fn signed(key: &Key, content: impl Fn(Principal) -> EnvelopeContent) -> Vec<u8> {
    let c = content(Principal::self_authenticating(&key.der));
    let sig = (key.sign)(&request_signable(&c));
    envelope(c, Some(key.der.clone()), Some(sig), None)
}

#[test]
fn signed_requests_of_every_key_kind_verify_and_carry_their_request_id() {
    for key in [ed25519(1), p256_key(2), k256_key(3)] {
        let body = signed(&key, |s| call(s, NOW + MINUTE));
        let v = verify(&body, Endpoint::Call, NOW).unwrap();
        assert_eq!(v.request_id, *v.content.to_request_id());
        assert_eq!(
            *v.content.sender(),
            Principal::self_authenticating(&key.der)
        );
    }
}

#[test]
fn anonymous_requests_carry_no_signature() {
    let body = envelope(call(Principal::anonymous(), NOW + MINUTE), None, None, None);
    assert!(verify(&body, Endpoint::Call, NOW).is_ok());
    let key = ed25519(1);
    let c = call(Principal::anonymous(), NOW + MINUTE);
    let sig = (key.sign)(&request_signable(&c));
    let body = envelope(c, Some(key.der), Some(sig), None);
    assert!(matches!(
        verify(&body, Endpoint::Call, NOW),
        Err(Refused::Authentication(_))
    ));
}

#[test]
fn a_named_sender_without_a_signature_is_refused() {
    let key = ed25519(1);
    let c = call(Principal::self_authenticating(&key.der), NOW + MINUTE);
    let body = envelope(c, Some(key.der), None, None);
    assert!(matches!(
        verify(&body, Endpoint::Call, NOW),
        Err(Refused::Authentication(_))
    ));
}

#[test]
fn a_tampered_signature_or_another_keys_signature_is_refused() {
    let key = ed25519(1);
    let c = call(Principal::self_authenticating(&key.der), NOW + MINUTE);
    let mut sig = (key.sign)(&request_signable(&c));
    sig[0] ^= 1;
    let body = envelope(c.clone(), Some(key.der.clone()), Some(sig), None);
    assert!(matches!(
        verify(&body, Endpoint::Call, NOW),
        Err(Refused::Signature(_))
    ));
    // An ECDSA key verifying a signature made by another ECDSA key.
    let (a, b) = (p256_key(2), p256_key(4));
    let c = call(Principal::self_authenticating(&a.der), NOW + MINUTE);
    let sig = (b.sign)(&request_signable(&c));
    let body = envelope(c, Some(a.der), Some(sig), None);
    assert!(matches!(
        verify(&body, Endpoint::Call, NOW),
        Err(Refused::Signature(_))
    ));
}

#[test]
fn the_sender_must_be_the_principal_of_the_key() {
    let key = ed25519(1);
    let other = Principal::self_authenticating(ed25519(2).der);
    let c = call(other, NOW + MINUTE);
    let sig = (key.sign)(&request_signable(&c));
    let body = envelope(c, Some(key.der), Some(sig), None);
    assert!(matches!(
        verify(&body, Endpoint::Call, NOW),
        Err(Refused::SenderMismatch { sender, .. }) if sender == other
    ));
}

#[test]
fn expired_and_too_distant_expiries_are_refused() {
    let key = ed25519(1);
    for expiry in [NOW - 1, NOW + MAX_INGRESS_TTL_NS + 1] {
        let body = signed(&key, |s| call(s, expiry));
        assert_eq!(
            verify(&body, Endpoint::Call, NOW).err(),
            Some(Refused::Expiry { expiry, now: NOW })
        );
    }
}

#[test]
fn a_request_sent_to_another_endpoint_or_not_cbor_is_refused() {
    let body = signed(&ed25519(1), |s| call(s, NOW + MINUTE));
    assert_eq!(
        verify(&body, Endpoint::Query, NOW).err(),
        Some(Refused::WrongEndpoint {
            found: "call",
            endpoint: "query"
        })
    );
    assert!(matches!(
        verify(b"not cbor", Endpoint::Call, NOW),
        Err(Refused::Malformed(_))
    ));
}

#[test]
fn canister_signature_keys_are_refused_as_not_modelled() {
    // DER of a canister signature public key: OID 1.3.6.1.4.1.56387.1.2, then a bit string.
    let mut der = vec![0x30, 0x1d, 0x30, 0x0c];
    der.extend_from_slice(&[
        0x06, 0x0c, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xb8, 0x43, 0x01, 0x02,
    ]);
    der.extend_from_slice(&[0x03, 0x0d, 0x00, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    let c = call(Principal::self_authenticating(&der), NOW + MINUTE);
    let body = envelope(c, Some(der), Some(vec![0; 64]), None);
    let err = verify(&body, Endpoint::Call, NOW).unwrap_err();
    assert!(err.to_string().contains("not modelled"), "{err}");
}

/// A request from `root`'s principal signed by `session` through one delegation.
fn delegated(
    root: &Key,
    session: &Key,
    d: Delegation,
    signer: &Key,
    content: EnvelopeContent,
) -> Vec<u8> {
    let signature = (signer.sign)(&d.signable());
    let sig = (session.sign)(&request_signable(&content));
    envelope(
        content,
        Some(root.der.clone()),
        Some(sig),
        Some(vec![SignedDelegation {
            delegation: d,
            signature,
        }]),
    )
}

fn delegation(session: &Key, expiration: u64) -> Delegation {
    Delegation {
        pubkey: session.der.clone(),
        expiration,
        targets: None,
        permissions: None,
    }
}

#[test]
fn a_delegation_chain_authenticates_the_root_keys_principal() {
    let (root, session) = (ed25519(1), p256_key(2));
    let sender = Principal::self_authenticating(&root.der);
    let d = Delegation {
        targets: Some(vec![canister()]),
        ..delegation(&session, NOW + MINUTE)
    };
    let body = delegated(&root, &session, d, &root, call(sender, NOW + MINUTE));
    let v = verify(&body, Endpoint::Call, NOW).unwrap();
    assert_eq!(*v.content.sender(), sender);
}

#[test]
fn bad_delegations_are_refused_each_for_its_reason() {
    let (root, session, stranger) = (ed25519(1), p256_key(2), ed25519(3));
    let sender = Principal::self_authenticating(&root.der);
    let cases: Vec<(Delegation, &Key, &str)> = vec![
        // Signed by a key that is not the chain's previous one.
        (
            delegation(&session, NOW + MINUTE),
            &stranger,
            "does not verify",
        ),
        // Expired.
        (delegation(&session, NOW - 1), &root, "expired"),
        // For other canisters only.
        (
            Delegation {
                targets: Some(vec![Principal::from_slice(&[9; 10])]),
                ..delegation(&session, NOW + MINUTE)
            },
            &root,
            "does not allow canister",
        ),
        // Queries only, used for a call.
        (
            Delegation {
                permissions: Some(DelegationPermissions::Queries),
                ..delegation(&session, NOW + MINUTE)
            },
            &root,
            "only queries",
        ),
    ];
    for (d, signer, why) in cases {
        let body = delegated(&root, &session, d, signer, call(sender, NOW + MINUTE));
        let err = verify(&body, Endpoint::Call, NOW).unwrap_err();
        assert!(
            matches!(&err, Refused::Delegation(m) if m.contains(why)),
            "{why}: {err}"
        );
    }
    // The request signed by the root key instead of the delegated session key.
    let d = delegation(&session, NOW + MINUTE);
    let body = delegated(&root, &root, d, &root, call(sender, NOW + MINUTE));
    assert!(matches!(
        verify(&body, Endpoint::Call, NOW),
        Err(Refused::Signature(_))
    ));
}
