//! Helpers of the stable-layout upgrade tests (`tests/packed_layout_upgrade.rs` from layout 1,
//! `tests/framed_layout_upgrade.rs` from layout 2, `tests/leaf_bucket_layout_upgrade.rs` from
//! layout 3): states made by the modules of earlier commits (`e2e/fixtures`), read back after an
//! upgrade to the current modules.

use std::collections::BTreeSet;

use candid::Principal;
use capsule::{BlobDescriptor, Error};
use manifests::{
    BlobLeaf, CapsuleLeaf, CapsuleSettingsLeaf, ConnectionLeaf, ManifestBuilder, ManifestPageReply,
    MemoryLeaf, PageCursor, PageVerifier, peer_order,
};
use migration::protocol::ImportStatus;
use serde_bytes::ByteBuf;
use sha2::Digest;

use crate::{
    BACKEND_CYCLES, Everything, World, admin, data, everything_at, everything_of, fixture, wasm,
};
use backend::factory::types::{CreationRecord, CreationState, FactoryError};
use capsule::{CapsuleInfo, Connection, Hash32, Memory, MemoryUpdate};
use migration::protocol::PersonalInitArgs;

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

impl Owners {
    /// The three capsules as their owners read them on the backend (alice, bob, carol).
    pub fn everything(&self, w: &World) -> [Everything; 3] {
        [self.alice, self.bob, self.carol].map(|who| everything_of(w, who))
    }

    /// After the backend's upgrade, with alice's creation completed before it: the three
    /// capsules read back as `before`, every blob of the three reads back, and alice's creation
    /// is still `Completed`.
    pub fn assert_read_back(&self, w: &World, before: &[Everything; 3]) {
        assert_eq!(before, &self.everything(w));
        assert_blobs_readable(w, w.backend, self.carol, &self.carol_blobs);
        assert_blobs_readable(w, w.backend, self.bob, &self.bob_blobs);
        assert_blobs_readable(w, w.backend, self.alice, &self.alice_blobs);
        assert_eq!(
            w.status(self.alice).unwrap().state,
            CreationState::Completed
        );
    }

    /// Carol's upload finishes on the backend where it stopped, with its bytes' hash, and a
    /// memory added now follows her memories of `before`, which are unchanged. Returns her
    /// capsule's contents now.
    pub fn finish_carols_upload(&self, w: &World, before: &[Everything; 3]) -> Everything {
        let (carol, memories) = (self.carol, &before[2].1.items);
        let finished = finish_upload(w, w.backend, carol, self.upload, &self.pending);
        assert_eq!(
            finished.hash.into_array(),
            blobstore::hash::blob_hashes(&self.pending).0
        );
        let _: Memory = w
            .capsule(w.backend, carol, "add_memory", (crate::note("after"),))
            .unwrap();
        let now = everything_of(w, carol);
        assert_eq!(now.1.items.len(), memories.len() + 1);
        assert_eq!(now.1.items[..memories.len()], memories[..]);
        now
    }
}

/// The manifest of the creation `done` read back from the backend page by page, verified to
/// the root its record holds.
pub fn assert_export_verifies(w: &World, done: &CreationRecord) -> VerifiedManifest {
    let export = verified_export(w, done.migration_id);
    assert_eq!(
        export.root,
        done.manifest.as_ref().unwrap().root.into_array()
    );
    export
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
        assert_chunks_hash_to_id(w, canister, who, d);
    }
}

/// The blob `d` of `who`'s capsule on `canister`, read back chunk by chunk (`get_blob_chunk`),
/// hashes to its id.
pub fn assert_chunks_hash_to_id(
    w: &World,
    canister: Principal,
    who: Principal,
    d: &BlobDescriptor,
) {
    let mut bytes = vec![];
    for i in 0..d.size.div_ceil(blobstore::hash::CHUNK_SIZE as u64) {
        let chunk: ByteBuf = w
            .capsule(canister, who, "get_blob_chunk", (d.hash, i))
            .unwrap();
        bytes.extend_from_slice(&chunk);
    }
    assert_eq!(blobstore::hash::blob_hashes(&bytes).0, d.hash.into_array());
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

/// The modules of an earlier stable layout (fixtures in `e2e/fixtures`) and the backend method
/// their importer pulls manifest pages through.
#[derive(Debug, Clone, Copy)]
pub struct OldLayout {
    /// Its schema version.
    pub layout: u32,
    /// The fixture of its backend module.
    pub backend: &'static str,
    /// The fixture of its personal module (the one its backend ships).
    pub personal: &'static str,
    /// The backend method its importer pulls manifest pages through: `export_manifest_page` up
    /// to layout 2, `export_raw_manifest_page` since layout 3.
    pub page_method: &'static str,
}

impl OldLayout {
    /// A world whose backend runs this layout's module, its reserve funded.
    pub fn world(&self) -> World {
        World::with_backend_wasm(fixture(self.backend), true)
    }

    /// A world on this layout's backend where `who`'s capsule is filled
    /// ([`World::fill_capsule`]: blobs of `blob_sizes`, `memories` memories, `connections`
    /// connections). Returns the world, the blobs and the capsule's contents.
    pub fn world_with_capsule(
        &self,
        who: Principal,
        blob_sizes: &[usize],
        memories: u64,
        connections: u32,
    ) -> (World, Vec<BlobDescriptor>, Everything) {
        let w = self.world();
        let blobs = w.fill_capsule(who, blob_sizes, memories, connections);
        let before = everything_of(&w, who);
        (w, blobs, before)
    }

    /// Upgrades the backend of `w` to the current module; the reserve's books are checked when
    /// `w` goes out of scope.
    pub fn upgrade_backend(&self, w: &World) {
        w.upgrade_backend(wasm("backend"))
            .unwrap_or_else(|e| panic!("upgrade the backend from layout {}: {e:?}", self.layout));
        w.check_accounting_at_end();
    }

    /// This layout's backend module installed over the upgraded backend of `w` is refused with
    /// the schema error.
    pub fn assert_backend_refused(&self, w: &World) {
        assert_refused_as_newer(
            w.upgrade_backend(fixture(self.backend))
                .map_err(|e| format!("{e:?}")),
            CURRENT_LAYOUT,
            self.layout,
        );
    }

    /// Upgrades the personal canister `canister` to the current module, as its controller
    /// `controller`.
    pub fn upgrade_personal(&self, w: &World, canister: Principal, controller: Principal) {
        w.ic.upgrade_canister(
            canister,
            wasm("personal"),
            candid::encode_one(None::<PersonalInitArgs>).unwrap(),
            Some(controller),
        )
        .unwrap_or_else(|e| {
            panic!(
                "upgrade the personal canister from layout {}: {e:?}",
                self.layout
            )
        });
    }

    /// This layout's personal module installed over `canister` (as its controller `controller`)
    /// is refused with the schema error, and `who`'s capsule there reads as it did.
    pub fn assert_personal_refused(
        &self,
        w: &World,
        canister: Principal,
        controller: Principal,
        who: Principal,
    ) {
        let now = everything_at(w, canister, who);
        assert_refused_as_newer(
            w.ic.upgrade_canister(
                canister,
                fixture(self.personal),
                candid::encode_one(None::<PersonalInitArgs>).unwrap(),
                Some(controller),
            )
            .map_err(|e| format!("{e:?}")),
            CURRENT_LAYOUT,
            self.layout,
        );
        assert_eq!(everything_at(w, canister, who), now);
    }
}

/// A personal canister installed from `old`'s personal module, filled (memories, blobs,
/// connections, an upload in progress) and upgraded to the current module: everything reads
/// back identical, a walk over the stored records gives their root, the upload finishes, an
/// edit works; the old module installed again is refused with the schema error, the state left
/// as it was.
pub fn personal_upgrade_keeps_everything_and_refuses_the_old_module(
    old: &OldLayout,
    who: Principal,
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
        fixture(old.personal),
        candid::encode_args((init,)).unwrap(),
        Some(admin()),
    );
    let blobs = w.fill_capsule_at(pc, who, &[5_000, 400 * 1024], 6, 3);
    let pending = data(blobstore::hash::CHUNK_SIZE + 99, 5);
    let upload = upload_first_chunk(&w, pc, who, &pending);
    let before = everything_at(&w, pc, who);

    old.upgrade_personal(&w, pc, admin());
    assert_eq!(everything_at(&w, pc, who), before);
    assert_blobs_readable(&w, pc, who, &blobs);
    // The current module's walk over the records the old layout stored gives the root of
    // those records as read through the API.
    assert_eq!(
        capsule_root(&w, pc, who),
        manifest_root_from_api(&w, pc, who)
    );
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
    old.assert_personal_refused(&w, pc, admin(), who);
    assert_eq!(everything_at(&w, pc, who), now);
}

/// `who`'s capsule on the personal canister `canister` holds what it held on the backend
/// (`before`): the same memories and connections, and the capsule's owner, name, bio,
/// settings, creation time and counts (its `updated_at` and `moved_to` are the copy's own).
pub fn assert_moved_intact(w: &World, canister: Principal, who: Principal, before: &Everything) {
    let (info, memories, connections) = everything_at(w, canister, who);
    assert_eq!(
        (&memories, &connections),
        (&before.1, &before.2),
        "memories and connections"
    );
    let kept = |i: &CapsuleInfo| {
        (
            i.owner,
            i.name.clone(),
            i.bio.clone(),
            i.settings.clone(),
            i.created_at,
            (i.memory_count, i.connection_count),
            (i.blob_count, i.blob_bytes),
        )
    };
    assert_eq!(kept(&info), kept(&before.0), "the capsule");
}

/// The manifest root of what `canister` stores for `who`, recomputed by the module it runs
/// (`capsule_root`: a walk over every record, as `who`).
pub fn capsule_root(w: &World, canister: Principal, who: Principal) -> [u8; 32] {
    let root: ByteBuf = w
        .capsule(canister, who, "capsule_root", ())
        .unwrap_or_else(|e| panic!("capsule_root: {e:?}"));
    root.as_slice().try_into().expect("a 32-byte root")
}

/// The manifest root of `who`'s capsule on `canister` built here ([`ManifestBuilder`], the
/// `manifests` crate's canonical encoding) from what the capsule API returns: the capsule, its
/// connections and memories (one page each, so at most 100), and every blob its memories
/// reference (their descriptors from `get_blob`). Checks that those blobs are all the capsule
/// holds (a held blob no memory references, such as a finished upload, is not supported).
pub fn manifest_root_from_api(w: &World, canister: Principal, who: Principal) -> [u8; 32] {
    let (info, memories, connections) = everything_at(w, canister, who);
    assert_eq!(memories.next, None, "one page of memories");
    assert_eq!(memories.items.len() as u64, info.memory_count);
    assert_eq!(connections.items.len() as u64, info.connection_count);
    let mut b = ManifestBuilder::new();
    b.push_capsule(&CapsuleLeaf {
        owner: info.owner,
        name: info.name.clone(),
        bio: info.bio.clone(),
        created_at: info.created_at,
        updated_at: info.updated_at,
        settings: CapsuleSettingsLeaf {
            public_profile: info.settings.public_profile,
            locale: info.settings.locale.clone(),
        },
    })
    .unwrap();
    let mut peers: Vec<&Connection> = connections.items.iter().collect();
    peers.sort_by(|a, c| peer_order(&a.peer, &c.peer));
    for c in peers {
        b.push_connection(&ConnectionLeaf::from(c)).unwrap();
    }
    let mut ids: Vec<&Memory> = memories.items.iter().collect();
    ids.sort_by_key(|m| m.id);
    for m in ids {
        b.push_memory(&MemoryLeaf::from(m)).unwrap();
    }
    let referenced: BTreeSet<[u8; 32]> = memories
        .items
        .iter()
        .flat_map(|m| m.blobs.iter().map(|r| r.hash.into_array()))
        .collect();
    assert_eq!(
        referenced.len() as u64,
        info.blob_count,
        "every blob held is referenced"
    );
    for hash in referenced {
        let d: BlobDescriptor = w
            .capsule(canister, who, "get_blob", (Hash32::new(hash),))
            .unwrap();
        b.push_blob(&BlobLeaf {
            hash,
            size: d.size,
            chunk_hashes: d.chunk_hashes.iter().map(|h| h.into_array()).collect(),
        })
        .unwrap();
    }
    b.finish().unwrap().root
}

/// Manifest pages an importer of an earlier layout stages before
/// [`OldLayout::hold_mid_manifest`] holds it: the capsule, connections and memories sections (a
/// manifest of these tests has one page per section), the blobs section left to pull.
pub const STAGED_PAGES: u64 = 3;

#[cfg(not(feature = "pocketic"))]
mod mid_manifest;
#[cfg(not(feature = "pocketic"))]
pub use mid_manifest::MidManifest;
