//! The importer against the real export side ([`crate::export`], wrapped by [`exporter`]): a
//! source capsule store exported by the export walk, its manifest pages and chunks served as
//! the backend's export queries serve them, with faults injected around the real calls and
//! between committed steps. This root holds the fixtures; each module tests one part.

use std::collections::{BTreeMap, VecDeque};

use crate::protocol::{
    ChunkBatch, ChunkRef, ExportError, ImportConfig, ImportPhase, MigrationInit,
};
use blobstore::hash::{CHUNK_SIZE, blob_hashes};
use candid::Principal;
use capsule::{
    BlobRef, CapsuleInput, CapsuleMemories, ConnectionInput, ConnectionStatus, Error, Limits,
    ManifestWalk, MemoryUpdate,
};
use ic_stable_structures::VectorMemory;
use manifests::{ManifestHeader, PageCursor, PageLeaves, RawPageReply};
use serde_bytes::ByteArray;
use test_support::bytes::data;
use test_support::capsules::{
    Store, blob_ref, ctx, new_store, note, owner, sample_capsule, upload,
};

use super::*;

/// Asserts that the state `$st`'s error matches the pattern (guards allowed), printing the
/// error when it does not.
macro_rules! assert_error_matches {
    ($st:expr, $($pattern:tt)+) => {
        assert!(matches!(&$st.error, $($pattern)+), "{:?}", $st.error)
    };
}

mod batches;
mod corrupted;
mod exporter;
mod failures;
mod import;
mod resume;
mod verify;

use exporter::{Exporter, Sim};

type Hash = [u8; 32];

fn mem() -> VectorMemory {
    VectorMemory::default()
}

/// The personal canister's stable memories; opening them again is what an upgrade (or the
/// next message after a trap) sees.
#[derive(Clone)]
struct Disk {
    capsule: CapsuleMemories<VectorMemory>,
    import: [VectorMemory; 7],
}

impl Disk {
    fn new() -> Self {
        Disk {
            capsule: CapsuleMemories::in_memory(),
            import: std::array::from_fn(|_| mem()),
        }
    }

    fn open(&self) -> (Importer<VectorMemory>, Store) {
        let mut store = CapsuleStore::init(self.capsule.clone(), Limits::default(), blob_limits());
        store.set_sole_owner(Some(owner()));
        let i = &self.import;
        let importer = Importer::init(ImportMemories {
            state: i[0].clone(),
            leaves: i[1].clone(),
            headers: i[2].clone(),
            open: i[3].clone(),
            todo: i[4].clone(),
            orphans: i[5].clone(),
            pinned: i[6].clone(),
        });
        (importer, store)
    }
}

const SIZES: [usize; 6] = [0, 1, 1000, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 17];

/// A capsule with 9 memories over 6 blobs (sizes [`SIZES`]) and 4 connections.
fn source() -> (Store, Vec<BlobRef>) {
    let mut s = new_store();
    let blobs = sample_capsule(&mut s, &ctx(), &SIZES, 9, 4);
    (s, blobs)
}

/// Uploads `bytes` to the owner's capsule in `s`.
fn upload_blob(s: &mut Store, bytes: &[u8]) -> BlobRef {
    blob_ref(&upload(s, &ctx(), bytes), "application/octet-stream")
}

fn manifest_of(s: &Store) -> (ManifestHeader, Vec<PageLeaves>) {
    let mut w = ManifestWalk::new(owner());
    let mut pages = vec![];
    loop {
        if let Some(h) = w.step(s, 1000, |p| pages.push(p.clone())).unwrap() {
            return (h, pages);
        }
    }
}

fn config() -> ImportConfig {
    ImportConfig {
        calls_in_flight: 3,
        batch_bytes: 2 * CHUNK_SIZE as u64,
        records_per_step: 3,
    }
}

/// A fresh canister whose import of `exp`'s migration has started with `config`, and the
/// runner that will drive it.
fn started(exp: &Exporter, config: ImportConfig) -> (Disk, Importer<VectorMemory>, Store, Sim) {
    let disk = Disk::new();
    let (mut imp, store) = disk.open();
    assert!(imp.start(Some(exp.init(config))));
    (disk, imp, store, Sim::new())
}

/// Imports `exp`'s migration on `disk` until the importer stops.
fn import_all(exp: &mut Exporter, disk: &Disk) -> (Importer<VectorMemory>, Store, Sim) {
    let (mut imp, mut store) = disk.open();
    assert!(imp.start(Some(exp.init(config()))));
    let mut sim = Sim::new();
    let steps = sim.run(&mut imp, &mut store, exp, 10_000);
    assert!(steps < 10_000, "the import does not finish");
    (imp, store, sim)
}

/// Imports `exp`'s migration on a fresh canister, which fails; its state and store.
fn failed_with(exp: &mut Exporter) -> (ImportState, Store) {
    let disk = Disk::new();
    let (imp, store, _) = import_all(exp, &disk);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Failed, "{:?}", st.error);
    (st, store)
}

/// Imports [`source`] on a fresh canister from an exporter of migration 5 that `setup` prepares
/// (the faults to inject), which fails; its state.
fn failed_after(setup: impl FnOnce(&mut Exporter)) -> ImportState {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    setup(&mut exp);
    failed_with(&mut exp).0
}

fn blob_bytes(store: &Store, hash: &Hash) -> Vec<u8> {
    let d = store.get_blob(&ctx(), &ByteArray::new(*hash)).unwrap();
    let mut bytes = vec![];
    for i in 0..d.chunk_hashes.len() as u64 {
        bytes.extend_from_slice(
            &store
                .get_blob_chunk(&ctx(), &ByteArray::new(*hash), i)
                .unwrap(),
        );
    }
    bytes
}
