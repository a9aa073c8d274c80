//! The endpoints' refusals, each with its status: paths a request may not read, canisters that
//! are not the effective one, subnets that are not this one, calls refused before they run.

use std::borrow::Cow;

use candid::Principal;
use ed25519_dalek::Signer as _;
use ic_certification::hash_tree::Label;
use ic_transport_types::{Envelope, EnvelopeContent};

use super::*;

fn ic() -> (Ic, std::path::PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("icemu-http-{}-{}", std::process::id(), wall_now()));
    std::fs::create_dir_all(&dir).unwrap();
    let emu = Arc::new(Emulator::new());
    let ic = Ic::new(&dir, emu, Duration::from_millis(200)).unwrap();
    (ic, dir)
}

fn canister(i: u8) -> Principal {
    Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, i, 1, 1])
}

fn expiry() -> u64 {
    wall_now() + 60_000_000_000
}

/// An envelope from `key`'s principal (anonymous when `None`).
fn envelope(
    key: Option<&ed25519_dalek::SigningKey>,
    content: impl Fn(Principal) -> EnvelopeContent,
) -> Vec<u8> {
    match key {
        None => Envelope {
            content: Cow::Owned(content(Principal::anonymous())),
            sender_pubkey: None,
            sender_sig: None,
            sender_delegation: None,
        }
        .encode_bytes(),
        Some(k) => {
            let mut der = keys::ED25519_DER_PREFIX.to_vec();
            der.extend_from_slice(k.verifying_key().as_bytes());
            let c = content(Principal::self_authenticating(&der));
            let mut msg = b"\x0Aic-request".to_vec();
            msg.extend_from_slice(c.to_request_id().as_slice());
            Envelope {
                content: Cow::Owned(c),
                sender_pubkey: Some(der),
                sender_sig: Some(k.sign(&msg).to_bytes().to_vec()),
                sender_delegation: None,
            }
            .encode_bytes()
        }
    }
}

fn read_state(paths: Vec<Vec<&[u8]>>) -> impl Fn(Principal) -> EnvelopeContent {
    move |sender| EnvelopeContent::ReadState {
        ingress_expiry: expiry(),
        sender,
        paths: paths
            .iter()
            .map(|p| p.iter().map(|l| Label::from_bytes(l)).collect())
            .collect(),
    }
}

fn call(to: Principal) -> impl Fn(Principal) -> EnvelopeContent {
    move |sender| EnvelopeContent::Call {
        nonce: None,
        ingress_expiry: expiry(),
        sender,
        canister_id: to,
        method_name: "m".into(),
        arg: b"DIDL\x00\x00".to_vec(),
        sender_info: None,
    }
}

fn text(r: &Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[test]
fn routes_name_version_scope_id_and_endpoint() {
    let id = "rwlgt-iiaaa-aaaaa-aaaaa-cai";
    let r = route(&format!("/api/v3/canister/{id}/query")).unwrap().ok();
    assert_eq!(
        r,
        Some(Route {
            version: 3,
            subnet: false,
            id: Principal::from_text(id).unwrap(),
            endpoint: Endpoint::Query
        })
    );
    assert!(route(&format!("/api/v4/canister/{id}/call")).is_some());
    assert!(route(&format!("/api/v4/canister/{id}/query")).is_none());
    assert!(route(&format!("/api/v5/canister/{id}/call")).is_none());
    assert!(route(&format!("/api/v2/canister/{id}/call/x")).is_none());
    assert!(route("/api/v1/call").is_none());
    assert!(
        matches!(route("/api/v2/canister/not-a-principal/call"), Some(Err(r)) if r.status == 400)
    );
}

#[test]
fn read_state_refuses_what_the_request_may_not_read() {
    let (ic, dir) = ic();
    let (x, y) = (canister(1), canister(2));
    let at = |path: &str, body: Vec<u8>| ic.post(path, &body).unwrap();
    let on_x = format!("/api/v3/canister/{x}/read_state");
    // Another canister's information, through this effective canister: 400.
    let r = at(
        &on_x,
        envelope(
            None,
            read_state(vec![vec![b"canister", y.as_slice(), b"controllers"]]),
        ),
    );
    assert_eq!(r.status, 400, "{}", text(&r));
    assert!(text(&r).contains("effective canister id"));
    // Metadata of a canister without a module: absent (200 with an absence proof).
    let r = at(
        &on_x,
        envelope(
            None,
            read_state(vec![vec![
                b"canister",
                x.as_slice(),
                b"metadata",
                b"candid:service",
            ]]),
        ),
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    // Paths the specification does not let a request read: 404.
    for path in [
        vec![b"nothing".as_slice()],
        vec![b"canister", x.as_slice(), b"certified_data"],
    ] {
        let r = at(&on_x, envelope(None, read_state(vec![path])));
        assert_eq!(r.status, 404, "{}", text(&r));
    }
    // The readable ones: 200 with a certificate.
    let r = at(
        &on_x,
        envelope(None, read_state(vec![vec![b"time"], vec![b"subnet"]])),
    );
    assert_eq!(r.status, 200, "{}", text(&r));
    // Not a canister id of this subnet: 400. Another subnet: 404; canister paths there: 404.
    let outside = Principal::self_authenticating(b"elsewhere");
    let r = at(
        &format!("/api/v3/canister/{outside}/read_state"),
        envelope(None, read_state(vec![vec![b"time"]])),
    );
    assert_eq!(r.status, 400);
    let r = at(
        &format!("/api/v3/subnet/{outside}/read_state"),
        envelope(None, read_state(vec![vec![b"time"]])),
    );
    assert_eq!(r.status, 404);
    let subnet = format!("/api/v3/subnet/{}/read_state", *emulator::SUBNET_ID);
    let r = at(
        &subnet,
        envelope(
            None,
            read_state(vec![vec![b"canister", x.as_slice(), b"controllers"]]),
        ),
    );
    assert_eq!(r.status, 404);
    let r = at(&subnet, envelope(None, read_state(vec![vec![b"subnet"]])));
    assert_eq!(r.status, 200);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn calls_refused_before_running_and_other_senders_request_statuses() {
    let (ic, dir) = ic();
    let x = canister(1);
    // A call whose canister is not the effective one: 400.
    let r = ic
        .post(
            &format!("/api/v3/canister/{x}/call"),
            &envelope(None, call(canister(2))),
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", text(&r));
    assert!(text(&r).contains("effective canister id"));
    // A canister that does not exist: a non-replicated rejection (v3 names it, v2 does not).
    for (v, status) in [(3, Some("non_replicated_rejection")), (2, None)] {
        let r = ic
            .post(
                &format!("/api/v{v}/canister/{x}/call"),
                &envelope(None, call(x)),
            )
            .unwrap();
        assert_eq!(r.status, 200);
        let m: std::collections::BTreeMap<String, serde_cbor::Value> =
            serde_cbor::from_slice(&r.body).unwrap();
        assert_eq!(m.get("reject_code"), Some(&serde_cbor::Value::Integer(3)));
        assert_eq!(
            m.get("error_code"),
            Some(&serde_cbor::Value::Text("IC0301".into()))
        );
        assert_eq!(
            m.get("status").cloned(),
            status.map(|s| serde_cbor::Value::Text(s.into()))
        );
    }
    // A call accepted (the canister exists, without a module), then its status: the sender
    // reads it, anyone else gets 403.
    let created: ic_management_canister_types::CanisterIdRecord = ic
        .emu
        .management(
            Principal::anonymous(),
            "provisional_create_canister_with_cycles",
            &ic_management_canister_types::ProvisionalCreateCanisterWithCyclesArgs {
                amount: None,
                settings: None,
                specified_id: None,
                sender_canister_version: None,
            },
        )
        .unwrap();
    let id = created.canister_id;
    let body = envelope(None, call(id));
    let r = ic
        .post(&format!("/api/v2/canister/{id}/call"), &body)
        .unwrap();
    assert_eq!(r.status, 202);
    let env: Envelope = serde_cbor::from_slice(&body).unwrap();
    let rid = env.content.to_request_id();
    let status_path = || read_state(vec![vec![b"request_status".as_slice(), rid.as_slice()]]);
    let path = format!("/api/v3/canister/{id}/read_state");
    assert_eq!(
        ic.post(&path, &envelope(None, status_path()))
            .unwrap()
            .status,
        200
    );
    let eve = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let r = ic
        .post(&path, &envelope(Some(&eve), status_path()))
        .unwrap();
    assert_eq!(r.status, 403, "{}", text(&r));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The kept state tree, updated change by change, equals a tree built afresh from the final
/// state (same root hash), and shows each request status and canister as it is now.
#[test]
fn the_kept_state_tree_follows_every_change() {
    use ic_certification::{AsHashTree, LookupResult};
    let (ic, dir) = ic();
    let requests = Requests::default();
    let rid = [7u8; 32];
    requests.insert(
        rid,
        Principal::anonymous(),
        u64::MAX / 2,
        emulator::MessageId(1),
    );
    let record = requests.get(&rid).unwrap();
    let mut kept = ic.signer.state_tree();
    let canister = |controllers: Vec<Principal>| emulator::CertifiedCanister {
        id: canister(1),
        controllers,
        module_hash: Some([1; 32]),
        certified_data: vec![],
        metadata: vec![("candid:service".into(), true, b"service : {}".to_vec())],
    };
    let status = |t: &certify::StateTree| match t.tree().as_hash_tree().lookup_path([
        b"request_status".as_slice(),
        &rid,
        b"status",
    ]) {
        LookupResult::Found(v) => Some(String::from_utf8(v.to_vec()).unwrap()),
        _ => None,
    };
    kept.set_time(1);
    kept.set_canisters(vec![canister(vec![Principal::anonymous()])]);
    kept.set_request(&rid, Some(&record));
    assert_eq!(status(&kept).as_deref(), Some("processing"));
    let mut replied = record.clone();
    replied.outcome = requests::Outcome::Replied(b"DIDL\x00\x00".to_vec());
    kept.set_request(&rid, Some(&replied));
    assert_eq!(status(&kept).as_deref(), Some("replied"));
    let admin = Principal::self_authenticating(b"admin");
    kept.set_canisters(vec![canister(vec![admin])]);
    kept.set_time(2);
    // Afresh, from the final state only.
    let mut fresh = ic.signer.state_tree();
    fresh.set_time(2);
    fresh.set_canisters(vec![canister(vec![admin])]);
    fresh.set_request(&rid, Some(&replied));
    assert_eq!(kept.tree().root_hash(), fresh.tree().root_hash());
    // Forgotten requests and deleted canisters leave nothing behind.
    kept.set_request(&rid, None);
    kept.set_canisters(vec![]);
    assert_eq!(status(&kept), None);
    let mut empty = ic.signer.state_tree();
    empty.set_time(2);
    assert_eq!(kept.tree().root_hash(), empty.tree().root_hash());
    std::fs::remove_dir_all(dir).unwrap();
}
