//! Helpers of the stable-layout upgrade tests (`tests/packed_layout_upgrade.rs`,
//! `tests/framed_layout_upgrade.rs`): states made by the modules of earlier commits
//! (`e2e/fixtures`), read back after an upgrade to the current modules.

use candid::Principal;
use capsule::migration::ImportStatus;
use capsule::{BlobDescriptor, Error};
use manifests::{ManifestPageReply, PageCursor, PageVerifier};
use serde_bytes::ByteBuf;
use sha2::Digest;

use crate::{BACKEND_CYCLES, World, admin, data, everything_at, fixture, wasm};
use backend::factory::types::FactoryError;
use capsule::migration::PersonalInitArgs;
use capsule::{Memory, MemoryUpdate};

/// After an upgrade: the upload `upload` of `bytes` (its first chunk sent before) finishes
/// with their hash, and a memory added now follows `memories` (the capsule's before), which are
/// unchanged. Returns the capsule's contents now.
pub fn finish_and_add(
    w: &World,
    canister: Principal,
    who: Principal,
    upload: u64,
    bytes: &[u8],
    memories: &[Memory],
) -> crate::Everything {
    let finished = finish_upload(w, canister, who, upload, bytes);
    assert_eq!(
        finished.hash.into_array(),
        blobstore::hash::blob_hashes(bytes).0
    );
    let _: Memory = w
        .capsule(canister, who, "add_memory", (crate::note("after"),))
        .unwrap();
    let now = crate::everything_at(w, canister, who);
    assert_eq!(now.1.items.len(), memories.len() + 1);
    assert_eq!(now.1.items[..memories.len()], memories[..]);
    now
}

/// The backend's owners of the layout upgrade tests, filled under the old module: three
/// capsules with blobs, memories and connections, and carol's upload in progress (one chunk of
/// three sent).
pub struct Owners {
    pub alice: Principal,
    pub bob: Principal,
    pub carol: Principal,
    pub alice_blobs: Vec<BlobDescriptor>,
    pub bob_blobs: Vec<BlobDescriptor>,
    pub carol_blobs: Vec<BlobDescriptor>,
    /// Carol's upload: its bytes and id.
    pub pending: Vec<u8>,
    pub upload: u64,
}

/// Fills the backend of `w` with [`Owners`].
pub fn fill_owners(w: &World) -> Owners {
    let (alice, bob, carol) = (crate::user(1), crate::user(2), crate::user(3));
    let alice_blobs = w.fill_capsule(alice, &[1000, 300 * 1024], 4, 2);
    let bob_blobs = w.fill_capsule(bob, &[3 * 1024 * 1024, 700 * 1024], 9, 3);
    let carol_blobs = w.fill_capsule(carol, &[600 * 1024 + 7], 3, 3);
    let pending = data(2 * blobstore::hash::CHUNK_SIZE + 11, 77);
    let upload = upload_first_chunk(w, w.backend, carol, &pending);
    Owners {
        alice,
        bob,
        carol,
        alice_blobs,
        bob_blobs,
        carol_blobs,
        pending,
        upload,
    }
}

/// The schema version of the current stable layout (`SCHEMA_VERSION` of both canisters).
pub const CURRENT_LAYOUT: u32 = 4;

/// Every blob of `blobs`, read back chunk by chunk from `who`'s capsule on `canister`, has its
/// descriptor's size and chunk hashes and hashes to its id.
pub fn assert_blobs_readable(
    w: &World,
    canister: Principal,
    who: Principal,
    blobs: &[BlobDescriptor],
) {
    for d in blobs {
        let got: BlobDescriptor = w.capsule(canister, who, "get_blob", (d.hash,)).unwrap();
        assert_eq!((got.size, &got.chunk_hashes), (d.size, &d.chunk_hashes));
        let mut bytes = vec![];
        for i in 0..d.size.div_ceil(blobstore::hash::CHUNK_SIZE as u64) {
            let chunk: ByteBuf = w
                .capsule(canister, who, "get_blob_chunk", (d.hash, i))
                .unwrap();
            bytes.extend_from_slice(&chunk);
        }
        assert_eq!(blobstore::hash::blob_hashes(&bytes).0, d.hash.into_array());
    }
}

/// Begins an upload of `bytes` into `who`'s capsule and sends its first chunk only.
pub fn upload_first_chunk(w: &World, canister: Principal, who: Principal, bytes: &[u8]) -> u64 {
    let upload = w.begin_upload(canister, who, bytes.len() as u64, None);
    w.put_chunks(canister, who, upload, bytes, ..1);
    upload
}

/// Sends the rest of an upload begun by [`upload_first_chunk`] and finishes it.
pub fn finish_upload(
    w: &World,
    canister: Principal,
    who: Principal,
    upload: u64,
    bytes: &[u8],
) -> BlobDescriptor {
    w.put_chunks(canister, who, upload, bytes, 1..);
    w.capsule(canister, who, "finish_blob_upload", (upload,))
        .unwrap()
}

/// Checks that an install of a module of stable layout `old` over a state of layout `current`
/// was refused with the schema error naming both.
pub fn assert_refused_as_newer(r: Result<(), String>, current: u32, old: u32) {
    let e = r.expect_err("an older module over a newer layout must be refused");
    let expected = format!("schema {current}, newer than this build's {old}");
    assert!(e.contains(&expected), "unexpected refusal: {e}");
}

/// A manifest read back page by page and verified: the root its pages give and the number of
/// pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedManifest {
    pub root: [u8; 32],
    pub pages: usize,
}

/// Pulls every page of the manifest of migration `migration_id` from the backend's
/// `admin_get_manifest_page` (as the admin) and verifies them ([`PageVerifier`]).
pub fn verified_export(w: &World, migration_id: u64) -> VerifiedManifest {
    verified_pages(|at| {
        let (r,): (Result<ManifestPageReply, FactoryError>,) = w.query(
            crate::admin(),
            "admin_get_manifest_page",
            (migration_id, at),
        );
        r.unwrap_or_else(|e| panic!("admin_get_manifest_page({migration_id}, {at:?}): {e:?}"))
    })
}

/// Pulls every page of `canister`'s `get_manifest_page` (as `who`) and verifies them.
pub fn verified_personal_manifest(
    w: &World,
    canister: Principal,
    who: Principal,
) -> VerifiedManifest {
    verified_pages(|at| {
        let (r,): (Result<ManifestPageReply, Error>,) = w
            .try_query(canister, who, "get_manifest_page", (at,))
            .unwrap_or_else(|e| panic!("get_manifest_page: {e:?}"));
        r.unwrap_or_else(|e| panic!("get_manifest_page({at:?}): {e:?}"))
    })
}

fn verified_pages(mut page: impl FnMut(PageCursor) -> ManifestPageReply) -> VerifiedManifest {
    let mut cursor = Some(PageCursor::FIRST);
    let mut verifier: Option<PageVerifier> = None;
    let mut pages = 0;
    while let Some(at) = cursor {
        let reply = page(at);
        let v = verifier.get_or_insert_with(|| {
            PageVerifier::new(reply.header.clone()).expect("a consistent header")
        });
        v.push_reply(&reply)
            .unwrap_or_else(|e| panic!("page at {at:?}: {e}"));
        pages += 1;
        cursor = reply.page.next;
    }
    let header = verifier
        .expect("at least one page")
        .finish()
        .expect("the pages give the header's root");
    VerifiedManifest {
        root: header.root,
        pages,
    }
}

/// SHA-256 of a module's bytes as installed (gzipped or not): the `module_hash` the IC reports.
pub fn module_hash_of(module: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(module).to_vec()
}

/// SHA-256 of the personal module the backend ships (its `personal_module` query).
pub fn shipped_personal_hash(w: &World) -> Vec<u8> {
    let (m,): (backend::factory::types::PersonalModule,) =
        w.query(crate::admin(), "personal_module", ());
    m.sha256.into_array().to_vec()
}

/// The `module_hash` of `canister` (`canister_status`, asked by its controller `controller`).
pub fn installed_module_hash(w: &World, canister: Principal, controller: Principal) -> Vec<u8> {
    w.ic.canister_status(canister, Some(controller))
        .unwrap_or_else(|e| panic!("canister_status: {e:?}"))
        .module_hash
        .expect("a module is installed")
}

/// `canister`'s `import_status`, asked by `who` (its owner or a controller).
pub fn import_status(w: &World, canister: Principal, who: Principal) -> ImportStatus {
    let (s,): (ImportStatus,) = w
        .try_query(canister, who, "import_status", ())
        .unwrap_or_else(|e| panic!("import_status: {e:?}"));
    s
}

/// Requests `canister` received for `method` so far (the emulator's statistics).
#[cfg(not(feature = "pocketic"))]
pub fn calls_received(w: &World, canister: Principal, method: &str) -> u64 {
    w.emu()
        .stats(canister)
        .methods
        .get(method)
        .map_or(0, |m| m.calls_received)
}

/// A personal canister installed from the fixture `old_module` (of stable layout `old_layout`),
/// filled (memories, blobs, connections, an upload in progress) and upgraded to the current
/// module: everything reads back identical, the upload finishes, an edit works; the old module
/// installed again is refused with the schema error, the state left as it was.
pub fn personal_upgrade_keeps_everything_and_refuses_the_old_module(
    old_module: &str,
    who: Principal,
    old_layout: u32,
) {
    let w = World::new();
    let pc = w.ic.create_canister_with_settings(Some(admin()), None);
    w.ic.add_cycles(pc, BACKEND_CYCLES);
    let init = PersonalInitArgs {
        owner: who,
        backend: None,
        migration: None,
    };
    w.ic.install_canister(
        pc,
        fixture(old_module),
        candid::encode_args((init,)).unwrap(),
        Some(admin()),
    );
    let blobs = w.fill_capsule_at(pc, who, &[5_000, 400 * 1024], 6, 3);
    let pending = data(blobstore::hash::CHUNK_SIZE + 99, 5);
    let upload = upload_first_chunk(&w, pc, who, &pending);
    let before = everything_at(&w, pc, who);

    w.ic.upgrade_canister(
        pc,
        wasm("personal"),
        candid::encode_one(None::<PersonalInitArgs>).unwrap(),
        Some(admin()),
    )
    .unwrap_or_else(|e| panic!("upgrade from layout {old_layout}: {e:?}"));
    assert_eq!(everything_at(&w, pc, who), before);
    assert_blobs_readable(&w, pc, who, &blobs);
    let finished = finish_upload(&w, pc, who, upload, &pending);
    assert_eq!(
        finished.hash.into_array(),
        blobstore::hash::blob_hashes(&pending).0
    );
    let updated: Memory = w
        .capsule(
            pc,
            who,
            "update_memory",
            (
                2u64,
                MemoryUpdate {
                    title: Some("rewritten under the current layout".into()),
                    ..MemoryUpdate::default()
                },
            ),
        )
        .unwrap();
    let now = everything_at(&w, pc, who);
    // Memory ids start at 1: memory 2 is the second.
    assert_eq!(now.1.items[1], updated);
    assert_eq!(now.1.items[..1], before.1.items[..1]);
    assert_eq!(now.1.items[2..], before.1.items[2..]);

    w.skip_accounting_check();
    assert_refused_as_newer(
        w.ic.upgrade_canister(
            pc,
            fixture(old_module),
            candid::encode_one(None::<PersonalInitArgs>).unwrap(),
            Some(admin()),
        )
        .map_err(|e| format!("{e:?}")),
        CURRENT_LAYOUT,
        old_layout,
    );
    assert_eq!(everything_at(&w, pc, who), now);
}
