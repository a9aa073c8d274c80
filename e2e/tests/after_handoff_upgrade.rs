//! The owner upgrades their personal canister to the module the backend ships: fetched from
//! `personal_module` in chunks, its SHA-256 checked, installed in upgrade mode by the owner
//! (chunked: `upload_chunk` + `install_chunked_code`). The data survives; a downgrade and a
//! major jump are refused and leave the running module in place.
#![cfg(not(feature = "pocketic"))]

use backend::factory::types::*;
use candid::Principal;
use e2e::*;
use serde_bytes::ByteBuf;
use sha2::Digest;

/// The module `backend` ships, fetched chunk by chunk and checked against its hash.
fn fetch_module(w: &World, who: Principal) -> (PersonalModule, Vec<u8>) {
    let (m,): (PersonalModule,) = w.query(who, "personal_module", ());
    let mut bytes = vec![];
    for i in 0..m.chunk_count {
        let (chunk,): (Result<ByteBuf, FactoryError>,) =
            w.query(who, "personal_module_chunk", (i,));
        let chunk = chunk.unwrap();
        assert!(chunk.len() as u64 <= m.chunk_size);
        bytes.extend_from_slice(&chunk);
    }
    assert_eq!(bytes.len() as u64, m.size);
    let sha: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    assert_eq!(sha, m.sha256.into_array(), "the module's hash");
    let (past,): (Result<ByteBuf, FactoryError>,) =
        w.query(who, "personal_module_chunk", (m.chunk_count,));
    assert!(matches!(past, Err(FactoryError::InvalidArgument { .. })));
    (m, bytes)
}

fn module_version(w: &World, canister: Principal, who: Principal) -> ApiVersion {
    let (v,): (ApiVersion,) = w.try_query(canister, who, "module_version", ()).unwrap();
    v
}

/// Upgrades `canister` to `module` as `owner` through the chunk store.
fn chunked_upgrade(
    w: &World,
    canister: Principal,
    owner: Principal,
    module: &[u8],
    chunk_size: usize,
) -> Result<(), RejectResponse> {
    let mut hashes = vec![];
    for chunk in module.chunks(chunk_size) {
        hashes.push(w.ic.upload_chunk(canister, Some(owner), chunk.to_vec())?);
    }
    let sha: [u8; 32] = sha2::Sha256::digest(module).into();
    let none: Option<PersonalInitArgsNone> = None;
    w.ic.install_chunked_canister(
        canister,
        Some(owner),
        emulator::pocket_ic::CanisterInstallMode::Upgrade(None),
        canister,
        hashes,
        sha.to_vec(),
        candid::encode_one(none).unwrap(),
    )
}

/// `opt PersonalInitArgs` = null: an upgrade that keeps the stored configuration.
type PersonalInitArgsNone = migration::protocol::PersonalInitArgs;

#[test]
fn the_owner_upgrades_to_the_shipped_minor_release_and_keeps_everything() {
    let w = World::new();
    let alice = user(1);
    let blobs = w.fill_capsule(alice, &[3 * 1024 * 1024, 700 * 1024], 5, 2);
    w.create_personal_canister(alice).unwrap();
    let rec = completed(&w, alice);
    let canister = rec.canister_id.unwrap();
    let root = rec.manifest.unwrap().root;

    // The module the backend ships is the one running, and says the same version.
    let (shipped, module) = fetch_module(&w, alice);
    assert_eq!(shipped.api_version, PERSONAL_API_VERSION);
    assert_eq!(module, wasm("personal"));
    assert_eq!(module_version(&w, canister, alice), shipped.api_version);
    let before = everything_on(&w, canister, alice);

    // A backend release ships the next minor version of the personal module.
    w.upgrade_backend(wasm("backend-personal-next")).unwrap();
    let (next, next_module) = fetch_module(&w, alice);
    assert_eq!(
        next.api_version,
        ApiVersion {
            major: shipped.api_version.major,
            minor: shipped.api_version.minor + 1
        }
    );
    assert_eq!(next_module, wasm("personal-minor-next"));
    // Only the owner (the only controller) may install: the backend no longer can.
    let stranger =
        w.ic.upgrade_canister(canister, next_module.clone(), none_arg(), Some(user(2)));
    assert!(stranger.is_err());
    chunked_upgrade(&w, canister, alice, &next_module, next.chunk_size as usize).unwrap();
    assert_eq!(module_version(&w, canister, alice), next.api_version);
    assert_eq!(everything_on(&w, canister, alice), before);
    for d in &blobs {
        let chunk: ByteBuf = w
            .capsule(canister, alice, "get_blob_chunk", (d.hash, 0u64))
            .unwrap();
        assert!(!chunk.is_empty());
    }
    let o = w.cycles_outlook(canister, alice).unwrap();
    assert_eq!(o.root, Some(root), "the manifest survived the upgrade");
    assert_eq!(o.module_version, next.api_version);

    // Back to the older minor: refused, the newer module keeps running with the data.
    let down =
        w.ic.upgrade_canister(canister, wasm("personal"), none_arg(), Some(alice))
            .unwrap_err();
    assert!(
        down.reject_message.contains("downgrade"),
        "{}",
        down.reject_message
    );
    // A major jump: refused the same way.
    let major =
        w.ic.upgrade_canister(
            canister,
            wasm("personal-major-next"),
            none_arg(),
            Some(alice),
        )
        .unwrap_err();
    assert!(
        major.reject_message.contains("major"),
        "{}",
        major.reject_message
    );
    assert_eq!(module_version(&w, canister, alice), next.api_version);
    assert_eq!(everything_on(&w, canister, alice), before);
    // The same module again (a plain re-install of the running version) is accepted.
    w.ic.upgrade_canister(canister, next_module, none_arg(), Some(alice))
        .unwrap();
    assert_eq!(w.cycles_outlook(canister, alice).unwrap().root, Some(root));
}

fn none_arg() -> Vec<u8> {
    candid::encode_one(None::<PersonalInitArgsNone>).unwrap()
}

/// Everything of `who`'s capsule on `canister`, as its owner reads it.
fn everything_on(w: &World, canister: Principal, who: Principal) -> Everything {
    let info: capsule::CapsuleInfo = w.capsule(canister, who, "get_capsule", ()).unwrap();
    let memories: capsule::MemoryPage = w
        .capsule(
            canister,
            who,
            "list_memories",
            (capsule::MemoryPageRequest {
                start_after: None,
                limit: 100,
            },),
        )
        .unwrap();
    let connections: capsule::ConnectionPage = w
        .capsule(
            canister,
            who,
            "list_connections",
            (capsule::ConnectionPageRequest {
                start_after: None,
                limit: 100,
            },),
        )
        .unwrap();
    (info, memories, connections)
}
