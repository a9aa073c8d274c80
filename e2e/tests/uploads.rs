//! Upload sessions on the real canisters: a flood of sessions from many principals does not
//! stop another user's upload, declared sizes count against the capsule, abandoned sessions
//! expire (their chunks released), sessions opened under the previous backend are counted and
//! expire after the upgrade, and the personal canister expires its owner's abandoned uploads
//! by itself.
//!
//! What the stores hold is read natively from a copy of the canister's stable memory (the
//! memory ids of `backend/src/memory.rs` and `personal/src/memory.rs`, the same for the
//! capsule and blob stores of both).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use blobstore::ic_stable_structures::VectorMemory;
use blobstore::ic_stable_structures::memory_manager::{MemoryManager, VirtualMemory};
use blobstore::{BlobError, OwnerUploads, StoreStats};
use candid::Principal;
use capsule::*;
use e2e::*;
use serde_bytes::ByteBuf;
use test_support::capsules::capsule_memories_on;

type Snapshot = CapsuleStore<VirtualMemory<VectorMemory>>;

/// Sessions one principal may hold (`blobstore::Limits::default()`, the backend's limits).
const PER_OWNER: u64 = 16;
/// The TTL of a plain upload (the default, the backend's).
const TTL: Duration = Duration::from_secs(24 * 3600);
const GIB: u64 = 1 << 30;

/// The capsule store of `canister` as its stable memory holds it now (a copy).
fn snapshot(w: &World, canister: Principal) -> Snapshot {
    let bytes = w.ic.get_stable_memory(canister);
    let manager = MemoryManager::init(Rc::new(RefCell::new(bytes)));
    CapsuleStore::init(
        capsule_memories_on(&manager),
        Limits::default(),
        blobstore::Limits::default(),
    )
}

fn stats(w: &World, canister: Principal) -> StoreStats {
    snapshot(w, canister).blob_store().stats()
}

fn create_capsule(w: &World, canister: Principal, who: Principal) {
    let _: CapsuleInfo = w
        .capsule(
            canister,
            who,
            "create_capsule",
            (CapsuleInput {
                name: format!("{who}"),
                bio: String::new(),
                settings: None,
            },),
        )
        .unwrap();
}

fn begin(w: &World, canister: Principal, who: Principal, size: u64) -> Result<u64, Error> {
    w.capsule(
        canister,
        who,
        "begin_blob_upload",
        (BlobUploadRequest {
            size,
            expected_hash: None,
        },),
    )
}

fn put(
    w: &World,
    canister: Principal,
    who: Principal,
    upload: u64,
    index: u64,
    bytes: &[u8],
) -> Result<Hash32, Error> {
    w.capsule(
        canister,
        who,
        "put_blob_chunk",
        (upload, index, ByteBuf::from(bytes.to_vec())),
    )
}

fn abort(w: &World, canister: Principal, who: Principal, upload: u64) -> Result<(), Error> {
    w.capsule(canister, who, "abort_blob_upload", (upload,))
}

/// Lets time pass beyond the TTL, a round at a time for the canisters' timers.
fn pass_the_ttl(w: &World) {
    w.ic.advance_time(TTL + Duration::from_secs(1));
    for _ in 0..3 {
        w.ic.tick();
    }
}

/// Expired sessions the backend's timer has not dropped yet go with the next begins: each
/// `begin_blob_upload` drops up to two (`capsule::EXPIRE_ON_BEGIN`). Begins (and aborts) as
/// `who` as many times as that takes for what is still open; the caller checks that nothing
/// is left. Returns the sessions that were still open and the begins it took.
fn expire_by_begins(w: &World, who: Principal) -> (u64, u64) {
    let open = stats(w, w.backend).open_uploads;
    let rounds = open.div_ceil(EXPIRE_ON_BEGIN as u64);
    for _ in 0..rounds {
        let up = begin(w, w.backend, who, 1).expect("a begin after the TTL");
        abort(w, w.backend, who, up).unwrap();
    }
    (open, rounds)
}

#[test]
fn a_flood_of_sessions_does_not_block_a_new_user_and_expires() {
    let w = World::new();
    let b = w.backend;
    let base = stats(&w, b);
    // 100 principals, each at its maximum of open sessions; the first session of each holds a
    // chunk of its own, the others declare one byte and send nothing.
    let flooders: Vec<Principal> = (1..=100).map(user).collect();
    let mut first = vec![];
    for (n, who) in flooders.iter().enumerate() {
        create_capsule(&w, b, *who);
        for i in 0..PER_OWNER {
            let up = begin(&w, b, *who, 1).unwrap();
            if i == 0 {
                put(&w, b, *who, up, 0, &[n as u8]).unwrap();
                first.push(up);
            }
        }
        assert_eq!(
            begin(&w, b, *who, 1),
            Err(Error::Blob(BlobError::TooManyUploadsForOwner {
                max: PER_OWNER
            }))
        );
    }
    let flooded = stats(&w, b);
    assert_eq!(flooded.open_uploads, base.open_uploads + 100 * PER_OWNER);
    assert_eq!(flooded.chunks, base.chunks + 100);

    // A new user uploads, whole, and reads it back.
    let newcomer = user(5_000);
    create_capsule(&w, b, newcomer);
    let bytes = data(600 * 1024 + 3, 7);
    let d = w.upload(b, newcomer, &bytes);
    assert_eq!(d.hash.into_array(), blobstore::hash::blob_hashes(&bytes).0);
    let chunk: ByteBuf = w
        .capsule(b, newcomer, "get_blob_chunk", (d.hash, 2u64))
        .unwrap();
    assert_eq!(&chunk[..], &bytes[2 * 256 * 1024..]);

    // Declared sizes count against the capsule's 8 GiB: two open 4 GiB sessions leave no room
    // for one more byte (the 600 KiB stored count too).
    let big = [
        begin(&w, b, newcomer, 4 * GIB).unwrap(),
        begin(&w, b, newcomer, 4 * GIB - d.size).unwrap(),
    ];
    assert_eq!(
        begin(&w, b, newcomer, 1),
        Err(Error::LimitReached {
            what: "blob bytes".into(),
            max: 8 * GIB
        })
    );
    abort(&w, b, newcomer, big[1]).unwrap();
    let again = begin(&w, b, newcomer, 4 * GIB - d.size).expect("room back after abort");
    abort(&w, b, newcomer, again).unwrap();
    abort(&w, b, newcomer, big[0]).unwrap();

    // A day later the backend's own timer drops the flood, a budget per message, with no
    // further call: every session dropped, every chunk it held released.
    w.ic.advance_time(TTL + Duration::from_secs(1));
    let rounds = w.run_until(1_000, |w| stats(w, b).open_uploads == base.open_uploads);
    println!("the backend's timer dropped 1,600 sessions in {rounds} rounds");
    let after = stats(&w, b);
    assert_eq!(after.open_uploads, base.open_uploads);
    assert_eq!(
        after.chunks,
        base.chunks + 3,
        "only the newcomer's blob's chunks remain"
    );
    assert_eq!(after.stored_bytes, base.stored_bytes + d.size);
    let snap = snapshot(&w, b);
    for who in &flooders {
        assert_eq!(
            snap.blob_store().owner_uploads(who.as_slice()),
            OwnerUploads::default()
        );
    }
    assert_eq!(snap.next_upload_expiry(), None);
    // A flooder's expired session is unknown; it may open its maximum again.
    assert_eq!(
        put(&w, b, flooders[0], first[0], 0, &[0]),
        Err(Error::UnknownUpload { upload: first[0] })
    );
    for _ in 0..PER_OWNER {
        begin(&w, b, flooders[0], 1).unwrap();
    }
}

#[test]
fn sessions_opened_under_the_previous_backend_count_and_expire_after_the_upgrade() {
    let w = World::with_backend_wasm(previous_backend(), true);
    let b = w.backend;
    let (alice, bob) = (user(1), user(2));
    create_capsule(&w, b, alice);
    create_capsule(&w, b, bob);
    // Under the previous module: alice declares the whole 8 GiB in two sessions (it did not
    // count declared sizes) and begins a small upload with one of its two chunks; bob opens
    // his 16 sessions.
    let huge = [
        begin(&w, b, alice, 4 * GIB).unwrap(),
        begin(&w, b, alice, 4 * GIB).unwrap(),
    ];
    let small = data(256 * 1024 + 10, 3);
    let partial = begin(&w, b, alice, small.len() as u64).unwrap();
    put(&w, b, alice, partial, 1, &small[256 * 1024..]).unwrap();
    let bobs: Vec<u64> = (0..PER_OWNER)
        .map(|_| begin(&w, b, bob, 1).unwrap())
        .collect();

    w.ic.upgrade_canister(
        b,
        wasm("backend"),
        candid::encode_args(()).unwrap(),
        Some(admin()),
    )
    .expect("upgrade from the previous layout");

    // The sessions were indexed on upgrade: counted per owner, with their declared bytes.
    let snap = snapshot(&w, b);
    assert_eq!(
        snap.blob_store().owner_uploads(alice.as_slice()),
        OwnerUploads {
            sessions: 3,
            declared_bytes: 8 * GIB + small.len() as u64
        }
    );
    assert_eq!(
        snap.blob_store().owner_uploads(bob.as_slice()).sessions,
        PER_OWNER
    );
    assert!(snap.next_upload_expiry().is_some());
    assert_eq!(
        begin(&w, b, bob, 1),
        Err(Error::Blob(BlobError::TooManyUploadsForOwner {
            max: PER_OWNER
        }))
    );
    assert!(matches!(
        begin(&w, b, alice, 1),
        Err(Error::LimitReached { .. })
    ));
    // An old session goes on where it stopped.
    put(&w, b, alice, partial, 0, &small[..256 * 1024]).unwrap();
    let d: BlobDescriptor = w
        .capsule(b, alice, "finish_blob_upload", (partial,))
        .unwrap();
    assert_eq!(d.hash.into_array(), blobstore::hash::blob_hashes(&small).0);

    // A day after they began, the old sessions expire.
    pass_the_ttl(&w);
    create_capsule(&w, b, user(3));
    expire_by_begins(&w, user(3));
    let snap = snapshot(&w, b);
    assert_eq!(snap.blob_store().stats().open_uploads, 0);
    assert_eq!(
        snap.blob_store().owner_uploads(alice.as_slice()),
        OwnerUploads::default()
    );
    assert_eq!(
        put(&w, b, bob, bobs[0], 0, &[1]),
        Err(Error::UnknownUpload { upload: bobs[0] })
    );
    assert_eq!(
        abort(&w, b, alice, huge[0]),
        Err(Error::UnknownUpload { upload: huge[0] })
    );
    begin(&w, b, alice, 4 * GIB).expect("alice's room is back");
    begin(&w, b, bob, 1).expect("bob's slots are back");
}

#[test]
fn the_personal_canister_expires_abandoned_uploads_by_itself() {
    let w = World::new();
    let carol = user(3);
    w.fill_capsule(carol, &[1000], 1, 0);
    w.create_personal_canister(carol).unwrap();
    let personal = completed(&w, carol).canister_id.unwrap();
    let base = stats(&w, personal);
    assert_eq!(base.open_uploads, 0);

    // Three uploads, abandoned: one with a chunk.
    let ups: Vec<u64> = (0..3)
        .map(|_| begin(&w, personal, carol, 10).unwrap())
        .collect();
    put(&w, personal, carol, ups[0], 0, b"0123456789").unwrap();
    let open = stats(&w, personal);
    assert_eq!((open.open_uploads, open.chunks), (3, base.chunks + 1));
    assert!(snapshot(&w, personal).next_upload_expiry().is_some());

    // No further call from carol: the canister's own timer drops them after the TTL.
    pass_the_ttl(&w);
    let after = stats(&w, personal);
    assert_eq!(after.open_uploads, 0);
    assert_eq!(
        (after.chunks, after.stored_bytes),
        (base.chunks, base.stored_bytes)
    );
    assert_eq!(snapshot(&w, personal).next_upload_expiry(), None);
    assert_eq!(
        put(&w, personal, carol, ups[1], 0, b"0123456789"),
        Err(Error::UnknownUpload { upload: ups[1] })
    );
}

#[test]
#[cfg(not(feature = "pocketic"))] // sets the emulator's round budget to catch the import mid-way
fn a_personal_canister_upgraded_from_the_previous_layout_mid_import_keeps_its_import_sessions() {
    // The previous backend creates bob's personal canister with the previous personal module
    // (the one it embeds); its import is caught with import sessions open.
    let w = World::with_backend_wasm(previous_backend(), true);
    let bob = user(2);
    let sizes = [3 * 1024 * 1024, 2 * 1024 * 1024 + 5, 5 * 1024 * 1024];
    let blobs = w.fill_capsule(bob, &sizes, 3, 1);
    w.create_personal_canister(bob).unwrap();
    // Between canisters of one subnet the importer's batches run within a round (as on the
    // replica), so sessions may open and close between two looks: the rounds are made one inner
    // iteration each (a round budget of 1 instruction) until the import is caught mid-way.
    let budget = w.emu().config().round_instructions;
    w.emu().update_config(|c| c.round_instructions = 1);
    w.run_until(3_000, |w| {
        let r = w.status(bob).unwrap();
        r.state == backend::factory::types::CreationState::Importing
            && r.canister_id.is_some_and(|p| stats(w, p).open_uploads > 0)
    });
    w.emu().update_config(|c| c.round_instructions = budget);
    let personal = w.status(bob).unwrap().canister_id.unwrap();
    let open = stats(&w, personal).open_uploads;

    // Its owner upgrades it to the current module mid-import: the import sessions are indexed
    // (counted for the owner) and none of them can expire.
    let arg = candid::encode_one(None::<migration::protocol::PersonalInitArgs>).unwrap();
    w.ic.upgrade_canister(personal, wasm("personal"), arg, Some(bob))
        .expect("upgrade of the personal canister from the previous layout");
    let snap = snapshot(&w, personal);
    assert_eq!(snap.blob_store().stats().open_uploads, open);
    assert_eq!(
        snap.blob_store().owner_uploads(bob.as_slice()).sessions,
        open
    );
    assert_eq!(snap.next_upload_expiry(), None, "imports never expire");

    // The backend is upgraded too, and the import completes under the current modules.
    w.upgrade_backend(wasm("backend")).expect("backend upgrade");
    let rec = completed(&w, bob);
    assert_eq!(rec.canister_id, Some(personal));
    let done = stats(&w, personal);
    assert_eq!(done.open_uploads, 0);
    assert_eq!(done.blobs, blobs.len() as u64);
}
