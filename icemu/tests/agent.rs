//! `icemu serve` speaks the IC HTTP interface: the official Rust agent (`ic-agent`), with its
//! default checks (certificates verified against the fetched root key, query responses'
//! node signatures verified against the subnet's node keys), calls the backend and a probe
//! canister: update calls with certificates, queries, read_state of canister information and of
//! request statuses, every kind of sender key, delegations, and certified data.

mod common;

use std::sync::Arc;

use candid::Principal;
use common::{Served, Temp, http, ok, with_backend};
use ic_agent::agent::CallResponse;
use ic_agent::identity::{
    BasicIdentity, DelegatedIdentity, Prime256v1Identity, Secp256k1Identity, SignedDelegation,
};
use ic_agent::{Agent, AgentError, Identity};
use ic_transport_types::{Delegation, RequestStatusResponse};

fn serve(t: &Temp) -> Served {
    Served::start::<&str>(&t.0, &[])
}

/// POSTs CBOR `body` to `path`; returns the status code.
fn post(port: u16, path: &str, body: &[u8]) -> u16 {
    http(
        port,
        "POST",
        path,
        &[("Content-Type", "application/cbor")],
        body,
    )
    .status
}

async fn agent(port: u16, identity: Arc<dyn Identity>) -> Agent {
    let a = Agent::builder()
        .with_url(format!("http://127.0.0.1:{port}"))
        .with_arc_identity(identity)
        .build()
        .unwrap();
    a.fetch_root_key().await.unwrap();
    a
}

fn id_of(state: &Temp, name: &str) -> Principal {
    let out = ok(&state.0, &["canisters"]);
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {out}"));
    Principal::from_text(line.split_whitespace().nth(1).unwrap()).unwrap()
}

/// The caller the probe sees in an update call made by `agent`.
async fn whoami(agent: &Agent, probe: Principal) -> Principal {
    let who = agent
        .update(&probe, "whoami")
        .with_arg(args("()"))
        .call_and_wait()
        .await
        .unwrap();
    let (_, _, caller): (u64, Principal, Principal) = candid::decode_args(&who).unwrap();
    caller
}

/// The key of icemu's identity `name`: its seed is the SHA-256 of `icemu identity\0<name>`.
fn icemu_identity(name: &str) -> BasicIdentity {
    let seed: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        format!("icemu identity\0{name}"),
    ))
    .into();
    BasicIdentity::from_raw_key(&seed)
}

/// Asserts that `err` is an HTTP 403 (forbidden) answer.
#[track_caller]
fn assert_forbidden(err: &AgentError) {
    assert!(
        matches!(err, AgentError::HttpError(p) if p.status == 403),
        "{err:?}"
    );
}

fn args(text: &str) -> Vec<u8> {
    candid_parser::parse_idl_args(text)
        .unwrap()
        .to_bytes()
        .unwrap()
}

fn reply_text(bytes: &[u8]) -> String {
    candid::IDLArgs::from_bytes(bytes).unwrap().to_string()
}

/// Deploys the emulator's probe canister as `probe`.
fn deploy_probe(t: &Temp) -> Principal {
    let wasm = emulator::canisters::build_canister("probe").unwrap();
    let path = t.0.join("probe.wasm");
    std::fs::write(&path, wasm.as_slice()).unwrap();
    ok(&t.0, &["deploy", "probe", path.to_str().unwrap()]);
    id_of(t, "probe")
}

#[tokio::test(flavor = "current_thread")]
async fn ic_agent_calls_queries_and_reads_state_with_verified_certificates() {
    let t = with_backend("agent");
    let backend = id_of(&t, "backend");
    let probe = deploy_probe(&t);
    let module_hash = ok(&t.0, &["status", "backend"])
        .lines()
        .find_map(|l| l.trim().strip_prefix("module hash: ").map(str::to_string))
        .unwrap();
    let s = serve(&t);

    // Status: the root key is a DER-wrapped BLS12-381 G2 key.
    let ada: Arc<dyn Identity> = Arc::new(BasicIdentity::from_raw_key(&[7; 32]));
    let a = agent(s.port, ada.clone()).await;
    let status = a.status().await.unwrap();
    let root_key = status.root_key.unwrap();
    assert_eq!(root_key.len(), 133);
    assert_eq!(a.read_root_key(), root_key);

    // An update: the agent checks the certificate of its request status.
    let created = a
        .update(&backend, "create_capsule")
        .with_arg(args(
            r#"(record { name = "Agent"; bio = "b"; settings = null })"#,
        ))
        .call_and_wait()
        .await
        .unwrap();
    assert!(
        reply_text(&created).contains("\"Agent\""),
        "{}",
        reply_text(&created)
    );

    // A query: the agent checks the node's signature (its key read from the subnet's state).
    let capsule = a
        .query(&backend, "get_capsule")
        .with_arg(args("()"))
        .call()
        .await
        .unwrap();
    assert!(reply_text(&capsule).contains("\"Agent\""));

    // read_state: module hash and controllers.
    let hash = a
        .read_state_canister_info(backend, "module_hash")
        .await
        .unwrap();
    assert_eq!(format!("0x{}", hex::encode(&hash)), module_hash);
    let controllers = a.read_state_canister_controllers(backend).await.unwrap();
    let admin = Principal::from_text(ok(&t.0, &["identity", "admin"]).trim()).unwrap();
    assert_eq!(controllers, vec![admin]);

    // Metadata: the backend's candid:service, as `icemu metadata` (and dfx) read it.
    let did = a
        .read_state_canister_metadata(backend, "candid:service")
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(did).unwrap().trim(),
        ok(&t.0, &["metadata", "backend", "candid:service"]).trim()
    );

    // A signed update sent twice runs once; its status is read back through read_state.
    let signed = a.update(&probe, "inc").with_arg(args("()")).sign().unwrap();
    let first = a
        .update_signed(probe, signed.signed_update.clone())
        .await
        .unwrap();
    let CallResponse::Response(first) = first else {
        panic!("no synchronous reply")
    };
    assert_eq!(candid::decode_one::<u64>(&first).unwrap(), 1);
    let again = a
        .update_signed(probe, signed.signed_update.clone())
        .await
        .unwrap();
    assert_eq!(again, CallResponse::Response(first.clone()));
    let counters = a
        .query(&probe, "get")
        .with_arg(args("()"))
        .call()
        .await
        .unwrap();
    let (heap, _): (u64, u64) = candid::decode_args(&counters).unwrap();
    assert_eq!(heap, 1, "the repeated request ran again");
    let (status, _) = a
        .request_status_raw(&signed.request_id, probe)
        .await
        .unwrap();
    let RequestStatusResponse::Replied(reply) = status else {
        panic!("{status:?}")
    };
    assert_eq!(reply.arg, first);
    // The asynchronous v2 call answers 202 at once; the reply is read from the request status.
    let signed = a.update(&probe, "inc").with_arg(args("()")).sign().unwrap();
    let status = post(
        s.port,
        &format!("/api/v2/canister/{probe}/call"),
        &signed.signed_update,
    );
    assert_eq!(status, 202);
    let reply = loop {
        match a
            .request_status_raw(&signed.request_id, probe)
            .await
            .unwrap()
            .0
        {
            RequestStatusResponse::Replied(r) => break r.arg,
            RequestStatusResponse::Processing
            | RequestStatusResponse::Received
            | RequestStatusResponse::Unknown => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(candid::decode_one::<u64>(&reply).unwrap(), 2);
    // Another sender may not read that status.
    let eve: Arc<dyn Identity> = Arc::new(BasicIdentity::from_raw_key(&[8; 32]));
    let e = agent(s.port, eve).await;
    let err = e
        .request_status_raw(&signed.request_id, probe)
        .await
        .unwrap_err();
    assert_forbidden(&err);

    // Without the served root key (the IC's by default), nothing verifies.
    let stranger = Agent::builder()
        .with_url(format!("http://127.0.0.1:{}", s.port))
        .with_arc_identity(ada.clone())
        .build()
        .unwrap();
    let err = stranger
        .query(&backend, "get_capsule")
        .with_arg(args("()"))
        .call()
        .await
        .unwrap_err();
    assert!(
        matches!(err, AgentError::CertificateVerificationFailed()),
        "{err:?}"
    );

    // A call to a canister that does not exist is rejected before it runs.
    let missing = Principal::from_slice(&[0, 0, 0, 0, 0, 0, 0, 99, 1, 1]);
    let err = a
        .update(&missing, "anything")
        .with_arg(args("()"))
        .call_and_wait()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("IC0301"), "{err}");

    // Every kind of sender key: the canister sees the self-authenticating principal of it.
    let k256 = Secp256k1Identity::from_private_key(k256::SecretKey::from_slice(&[3; 32]).unwrap());
    let p256 = Prime256v1Identity::from_private_key(p256::SecretKey::from_slice(&[4; 32]).unwrap());
    let ids: Vec<Arc<dyn Identity>> = vec![ada.clone(), Arc::new(k256), Arc::new(p256)];
    for id in ids {
        let a = agent(s.port, id.clone()).await;
        let caller = whoami(&a, probe).await;
        assert_eq!(caller, id.sender().unwrap());
        assert_eq!(
            caller,
            Principal::self_authenticating(id.public_key().unwrap())
        );
    }

    // icemu's identity names are keys: an agent signing with the key of `ada` (SHA-256 of
    // "icemu identity\0ada") is the principal `icemu identity ada` prints, so the CLI and a
    // browser calling as `ada` are the same caller.
    let named = agent(s.port, Arc::new(icemu_identity("ada"))).await;
    let caller = whoami(&named, probe).await;
    assert_eq!(caller.to_text(), ok(&t.0, &["identity", "ada"]).trim());

    // A delegation from Ada's key to a session key, for the probe only.
    let session =
        Prime256v1Identity::from_private_key(p256::SecretKey::from_slice(&[5; 32]).unwrap());
    let delegate = |targets: Vec<Principal>| {
        let d = Delegation {
            pubkey: session.public_key().unwrap(),
            expiration: (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                + 3_600_000_000_000) as u64,
            targets: Some(targets),
            permissions: None,
        };
        let signature = ada.sign_delegation(&d).unwrap().signature.unwrap();
        DelegatedIdentity::new_unchecked(
            ada.public_key().unwrap(),
            Box::new(Prime256v1Identity::from_private_key(
                p256::SecretKey::from_slice(&[5; 32]).unwrap(),
            )),
            vec![SignedDelegation {
                delegation: d,
                signature,
            }],
        )
    };
    let d = agent(s.port, Arc::new(delegate(vec![probe]))).await;
    let caller = whoami(&d, probe).await;
    assert_eq!(caller, ada.sender().unwrap());
    let d = agent(s.port, Arc::new(delegate(vec![backend]))).await;
    let err = d
        .update(&probe, "whoami")
        .with_arg(args("()"))
        .call_and_wait()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AgentError::HttpError(p) if p.status == 400
            && String::from_utf8_lossy(&p.content).contains("does not allow canister")),
        "{err:?}"
    );

    // A private metadata section is for the controllers only (the deployer, `admin`).
    let secret = t.0.join("secret.wasm");
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    for (name, payload) in [
        ("icp:private secret", "hush"),
        ("icp:public hello", "world"),
    ] {
        wasm.extend_from_slice(&[0, (1 + name.len() + payload.len()) as u8, name.len() as u8]);
        wasm.extend_from_slice(name.as_bytes());
        wasm.extend_from_slice(payload.as_bytes());
    }
    std::fs::write(&secret, &wasm).unwrap();
    ok(&t.0, &["deploy", "secret", secret.to_str().unwrap()]);
    let secret = id_of(&t, "secret");
    assert_eq!(
        a.read_state_canister_metadata(secret, "hello")
            .await
            .unwrap(),
        b"world"
    );
    let err = a
        .read_state_canister_metadata(secret, "secret")
        .await
        .unwrap_err();
    assert_forbidden(&err);
    let admin_agent = agent(s.port, Arc::new(icemu_identity("admin"))).await;
    assert_eq!(
        admin_agent
            .read_state_canister_metadata(secret, "secret")
            .await
            .unwrap(),
        b"hush"
    );

    // Certified data: the query's certificate verifies and holds the data.
    a.update(&probe, "set_certified")
        .with_arg(candid::encode_one(serde_bytes::ByteBuf::from(vec![5u8; 32])).unwrap())
        .call_and_wait()
        .await
        .unwrap();
    let cert = a
        .query(&probe, "certificate")
        .with_arg(args("()"))
        .call()
        .await
        .unwrap();
    let cert: Option<serde_bytes::ByteBuf> = candid::decode_one(&cert).unwrap();
    let cert: ic_agent::Certificate = serde_cbor::from_slice(&cert.unwrap()).unwrap();
    a.verify(&cert, probe).unwrap();
    let data = ic_agent::lookup_value(
        &cert,
        [b"canister".as_slice(), probe.as_slice(), b"certified_data"],
    )
    .unwrap();
    assert_eq!(data, [5u8; 32]);
}
