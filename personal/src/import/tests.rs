//! The importer over a fake in-process exporter: a source capsule store whose manifest pages and
//! chunks are served as the backend's export queries would, with faults injected between
//! committed steps.

use std::collections::{BTreeMap, VecDeque};

use blobstore::hash::{CHUNK_SIZE, blob_hashes};
use candid::Principal;
use capsule::migration::{
    ChunkBatch, ChunkData, ChunkRef, ExportError, ImportConfig, ImportPhase, MigrationInit,
};
use capsule::{
    BlobRef, BlobUploadRequest, CapsuleInput, CapsuleMemories, CapsuleSettings, CapsuleStore,
    ConnectionInput, ConnectionStatus, Ctx, EncryptionEnvelope, Error, Limits, ManifestWalk,
    MemoryInput, MemoryKind, MemoryUpdate,
};
use ic_stable_structures::VectorMemory;
use manifests::{ManifestHeader, ManifestPageReply, PageCursor, PageLeaves};
use serde_bytes::{ByteArray, ByteBuf};

use super::*;

mod failures;

type Store = CapsuleStore<VectorMemory>;
type Hash = [u8; 32];

fn owner() -> Principal {
    Principal::from_slice(&[42; 29])
}

fn ctx() -> Ctx {
    Ctx {
        caller: owner(),
        now: 7_000,
    }
}

fn mem() -> VectorMemory {
    VectorMemory::default()
}

fn new_store() -> Store {
    CapsuleStore::init(
        CapsuleMemories {
            capsules: mem(),
            memories: mem(),
            connections: mem(),
            capsule_blobs: mem(),
            blobs: blobstore::Memories {
                chunk_index: mem(),
                chunk_data: mem(),
                free_slots: mem(),
                blobs: mem(),
                blob_chunks: mem(),
                uploads: mem(),
                upload_chunks: mem(),
                uploads_by_owner: mem(),
                upload_expiry: mem(),
            },
        },
        Limits::default(),
        blobstore::Limits::default(),
    )
}

/// The personal canister's stable memories; opening them again is what an upgrade (or the
/// next message after a trap) sees.
#[derive(Clone)]
struct Disk {
    capsule: [VectorMemory; 13],
    import: [VectorMemory; 7],
}

impl Disk {
    fn new() -> Self {
        Disk {
            capsule: std::array::from_fn(|_| mem()),
            import: std::array::from_fn(|_| mem()),
        }
    }

    fn open(&self) -> (Importer<VectorMemory>, Store) {
        let c = &self.capsule;
        let mut store = CapsuleStore::init(
            CapsuleMemories {
                capsules: c[0].clone(),
                memories: c[1].clone(),
                connections: c[2].clone(),
                capsule_blobs: c[3].clone(),
                blobs: blobstore::Memories {
                    chunk_index: c[4].clone(),
                    chunk_data: c[5].clone(),
                    free_slots: c[6].clone(),
                    blobs: c[7].clone(),
                    blob_chunks: c[8].clone(),
                    uploads: c[9].clone(),
                    upload_chunks: c[10].clone(),
                    uploads_by_owner: c[11].clone(),
                    upload_expiry: c[12].clone(),
                },
            },
            Limits::default(),
            crate::state::blob_limits(),
        );
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

/// Deterministic, non-periodic bytes (xorshift).
fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (seed as u64 + 1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn upload(s: &mut Store, bytes: &[u8]) -> BlobRef {
    let id = s
        .begin_blob_upload(
            &ctx(),
            BlobUploadRequest {
                size: bytes.len() as u64,
                expected_hash: None,
            },
        )
        .unwrap();
    for (i, c) in bytes.chunks(CHUNK_SIZE).enumerate() {
        s.put_blob_chunk(&ctx(), id, i as u64, c).unwrap();
    }
    let d = s.finish_blob_upload(&ctx(), id).unwrap();
    BlobRef {
        hash: d.hash,
        size: d.size,
        mime_type: "application/octet-stream".into(),
    }
}

const SIZES: [usize; 6] = [0, 1, 1000, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 17];

/// A capsule with 9 memories over 6 blobs (sizes [`SIZES`]) and 4 connections.
fn source() -> (Store, Vec<BlobRef>) {
    let mut s = new_store();
    s.create_capsule(
        &ctx(),
        CapsuleInput {
            name: "Ada".into(),
            bio: "mathematician".into(),
            settings: Some(CapsuleSettings {
                public_profile: true,
                locale: "en-GB".into(),
            }),
        },
    )
    .unwrap();
    let blobs: Vec<BlobRef> = SIZES
        .iter()
        .enumerate()
        .map(|(i, len)| upload(&mut s, &data(*len, i as u8)))
        .collect();
    for i in 0..9 {
        s.add_memory(
            &ctx(),
            MemoryInput {
                title: format!("memory {i}"),
                description: "d".repeat(i),
                tags: vec![format!("t{}", i % 3)],
                kind: if i % 2 == 0 {
                    MemoryKind::Photo
                } else {
                    MemoryKind::Note
                },
                blobs: vec![
                    blobs[i % blobs.len()].clone(),
                    blobs[(i + 1) % blobs.len()].clone(),
                ],
                encryption: (i == 4).then(|| EncryptionEnvelope {
                    scheme: "x25519".into(),
                    wrapped_key: ByteBuf::from(vec![i as u8; 40]),
                }),
            },
        )
        .unwrap();
    }
    for n in 0..4u8 {
        s.add_connection(
            &ctx(),
            ConnectionInput {
                peer: Principal::from_slice(&[n + 1; 10]),
                relationship: format!("friend {n}"),
                status: ConnectionStatus::Accepted,
            },
        )
        .unwrap();
    }
    (s, blobs)
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

/// The backend's export side over a source store, with fault injection and transfer counts.
struct Exporter<'a> {
    src: &'a Store,
    migration_id: u64,
    pages: ManifestStore<VectorMemory>,
    header: ManifestHeader,
    /// Times each (blob, chunk) was delivered.
    pulled: BTreeMap<(Hash, u64), u32>,
    /// Every batch asked for: (chunk refs, bytes).
    batches: Vec<(Vec<ChunkRef>, u64)>,
    /// The next this many chunk calls are rejected (SYS_TRANSIENT).
    reject_next: u32,
    /// The next this many chunk calls answer NotImporting.
    not_importing_next: u32,
    /// This chunk is served with one bit flipped.
    tamper: Option<(Hash, u64)>,
    /// The next chunk call fails with this fault.
    fault_next: Option<CallFault>,
    /// The next chunk call is answered with this error.
    refuse_next: Option<ExportError>,
    /// The next batch of two or more chunks is served without its last chunk.
    short_batch: bool,
    /// The next batch of two or more chunks is served in reverse order.
    swap_batch: bool,
}

impl<'a> Exporter<'a> {
    fn new(src: &'a Store, migration_id: u64) -> Self {
        let (header, leaves) = manifest_of(src);
        let mut pages = ManifestStore::init(mem(), mem());
        for l in &leaves {
            pages.append(migration_id, l);
        }
        pages.set_header(migration_id, header.clone());
        Exporter {
            src,
            migration_id,
            pages,
            header,
            pulled: BTreeMap::new(),
            batches: vec![],
            reject_next: 0,
            not_importing_next: 0,
            tamper: None,
            fault_next: None,
            refuse_next: None,
            short_batch: false,
            swap_batch: false,
        }
    }

    fn init(&self, config: ImportConfig) -> MigrationInit {
        MigrationInit {
            migration_id: self.migration_id,
            manifest_root: ByteArray::new(self.header.root),
            api_version: capsule::API_VERSION,
            config,
        }
    }

    fn page(
        &self,
        id: u64,
        cursor: PageCursor,
    ) -> Result<Result<ManifestPageReply, ExportError>, CallFault> {
        assert_eq!(id, self.migration_id);
        // Small pages, so the manifest takes many messages.
        Ok(self
            .pages
            .page(id, cursor, manifests::PAGE_OVERHEAD_BYTES + 600)
            .ok_or(ExportError::CursorOutOfRange {
                cursor: cursor.to_string(),
            }))
    }

    fn chunks(
        &mut self,
        id: u64,
        refs: Vec<ChunkRef>,
    ) -> Result<Result<ChunkBatch, ExportError>, CallFault> {
        assert_eq!(id, self.migration_id);
        if self.reject_next > 0 {
            self.reject_next -= 1;
            return Err(CallFault::Rejected {
                code: capsule::migration::RejectCode::SysTransient,
                message: "the backend's queue is full".into(),
            });
        }
        if let Some(fault) = self.fault_next.take() {
            return Err(fault);
        }
        if let Some(error) = self.refuse_next.take() {
            return Ok(Err(error));
        }
        if self.not_importing_next > 0 {
            self.not_importing_next -= 1;
            return Ok(Err(ExportError::NotImporting {
                migration_id: id,
                state: "Installing".into(),
            }));
        }
        let mut chunks = vec![];
        let mut bytes = 0;
        for r in &refs {
            let hash = self
                .src
                .blob_store()
                .chunk_hash_at(&r.blob, r.index)
                .expect("the importer asks only for chunks of the manifest");
            let mut b = self.src.blob_store().read_chunk(&hash).unwrap();
            if self.tamper == Some((r.blob.into_array(), r.index)) {
                b[0] ^= 1;
            }
            bytes += b.len() as u64;
            *self
                .pulled
                .entry((r.blob.into_array(), r.index))
                .or_default() += 1;
            chunks.push(ChunkData {
                blob: r.blob,
                index: r.index,
                bytes: ByteBuf::from(b),
            });
        }
        assert!(
            bytes <= MAX_CHUNK_BATCH_BYTES,
            "the backend refuses {bytes} bytes"
        );
        self.batches.push((refs, bytes));
        if chunks.len() > 1 && std::mem::take(&mut self.short_batch) {
            chunks.pop();
        }
        if chunks.len() > 1 && std::mem::take(&mut self.swap_batch) {
            chunks.reverse();
        }
        Ok(Ok(ChunkBatch { chunks }))
    }

    fn done(&self, report: &ImportReport) -> Result<Result<(), ExportError>, CallFault> {
        assert_eq!(report.migration_id, self.migration_id);
        Ok(if report.header.root == self.header.root {
            Ok(())
        } else {
            // As the backend answers: the creation fails, and so does every repeat.
            Err(ExportError::RootMismatch {
                detail: "the imported data does not match the export".into(),
            })
        })
    }

    fn chunks_in(&self, blob: &Hash) -> u64 {
        self.pulled.keys().filter(|(b, _)| b == blob).count() as u64
    }
}

fn config() -> ImportConfig {
    ImportConfig {
        calls_in_flight: 3,
        batch_bytes: 2 * CHUNK_SIZE as u64,
        records_per_step: 3,
    }
}

enum Pending {
    Page(u64, u64, PageCursor),
    Chunks(u64, u64, Vec<ChunkRef>),
    Report(u64, Box<ImportReport>),
}

/// Runs the canister side: every action, with the exporter answering calls in order. Stops
/// after `max_steps` actions (pending calls are then lost, as in a trap or an upgrade).
/// Returns the number of steps taken.
struct Sim {
    now: u64,
    pending: VecDeque<Pending>,
    reports: u32,
}

impl Sim {
    fn new() -> Self {
        Sim {
            now: 1_000,
            pending: VecDeque::new(),
            reports: 0,
        }
    }

    fn run(
        &mut self,
        imp: &mut Importer<VectorMemory>,
        store: &mut Store,
        exp: &mut Exporter,
        max_steps: usize,
    ) -> usize {
        for step in 0..max_steps {
            self.now += 1;
            let now = self.now;
            match imp.next(store, owner(), now) {
                Action::FetchPage {
                    call,
                    migration_id,
                    cursor,
                } => self
                    .pending
                    .push_back(Pending::Page(call, migration_id, cursor)),
                Action::FetchChunks {
                    call,
                    migration_id,
                    refs,
                } => self
                    .pending
                    .push_back(Pending::Chunks(call, migration_id, refs)),
                Action::ReportDone { call, report } => {
                    self.pending.push_back(Pending::Report(call, report))
                }
                Action::Work => imp.work(store, owner(), now),
                Action::Wait { until } => match self.pending.pop_front() {
                    Some(p) => self.answer(imp, store, exp, p),
                    None => self.now = until.expect("waiting with nothing in flight needs a time"),
                },
                Action::Stop => match self.pending.pop_front() {
                    Some(p) => self.answer(imp, store, exp, p),
                    None => return step,
                },
            }
        }
        max_steps
    }

    fn answer(
        &mut self,
        imp: &mut Importer<VectorMemory>,
        store: &mut Store,
        exp: &mut Exporter,
        p: Pending,
    ) {
        let now = self.now;
        match p {
            Pending::Page(call, id, cursor) => {
                let r = exp.page(id, cursor);
                imp.on_page(store, owner(), now, call, r)
            }
            Pending::Chunks(call, id, refs) => {
                let r = exp.chunks(id, refs);
                if imp.on_chunks(store, owner(), now, call, r).is_some() {
                    self.reports += 1;
                }
            }
            Pending::Report(call, report) => {
                let r = exp.done(&report);
                imp.on_report(store, owner(), now, call, r)
            }
        }
    }

    /// A crash: calls in flight are lost; the canister restarts from stable memory.
    fn crash(&mut self, disk: &Disk) -> (Importer<VectorMemory>, Store) {
        self.pending.clear();
        let (mut imp, store) = disk.open();
        imp.restart();
        (imp, store)
    }
}

fn import_all(exp: &mut Exporter, disk: &Disk) -> (Importer<VectorMemory>, Store, Sim) {
    let (mut imp, mut store) = disk.open();
    assert!(imp.start(Some(exp.init(config()))));
    let mut sim = Sim::new();
    let steps = sim.run(&mut imp, &mut store, exp, 10_000);
    assert!(steps < 10_000, "the import does not finish");
    (imp, store, sim)
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

// ------------------------------------------------------------------------------------------

#[test]
fn ranges_group_consecutive_indices() {
    assert_eq!(ranges(&[]), vec![]);
    assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), vec![(0, 3), (5, 6), (7, 9)]);
}

#[test]
fn batch_limit_is_one_chunk_to_the_reply_bound() {
    assert_eq!(batch_limit(1), CHUNK_SIZE as u64);
    assert_eq!(batch_limit(u64::MAX), MAX_CHUNK_BATCH_BYTES);
    assert_eq!(batch_limit(3 * CHUNK_SIZE as u64), 3 * CHUNK_SIZE as u64);
}

#[test]
fn an_import_reaches_done_with_the_exported_root() {
    let (src, blobs) = source();
    let mut exp = Exporter::new(&src, 7);
    let disk = Disk::new();
    let (imp, mut store, sim) = import_all(&mut exp, &disk);

    let status = imp.status(capsule::API_VERSION);
    assert_eq!(status.phase, ImportPhase::Done, "{:?}", status.error);
    assert_eq!(status.root, Some(ByteArray::new(exp.header.root)));
    assert_eq!(status.migration_id, Some(7));
    let p = &status.progress;
    assert_eq!(
        (p.bytes_done, p.bytes_total),
        (exp.header.total_blob_bytes, exp.header.total_blob_bytes)
    );
    assert_eq!(
        (p.chunks_done, p.chunks_total),
        (exp.header.total_chunks, exp.header.total_chunks)
    );
    assert_eq!((p.memories_done, p.memories_total), (9, 9));
    assert_eq!((p.connections_done, p.connections_total), (4, 4));
    // Progress is reported after every stored batch.
    assert_eq!(sim.reports as usize, exp.batches.len());

    // The root recomputed from the store is the exported one; every chunk came exactly once.
    assert_eq!(manifest_of(&store).0.root, exp.header.root);
    assert_eq!(exp.pulled.len() as u64, exp.header.total_chunks);
    assert!(exp.pulled.values().all(|n| *n == 1));
    assert_eq!(
        store.get_capsule(&ctx()).unwrap(),
        src.get_capsule(&ctx()).unwrap()
    );
    for b in &blobs {
        assert_eq!(
            blob_hashes(&blob_bytes(&store, &b.hash)).0,
            b.hash.into_array()
        );
    }
    // The capsule is the owner's again.
    assert!(store.update_capsule(&ctx(), Default::default()).is_ok());
    assert_eq!(imp.state().write_block(), None);

    // The served manifest is the exported one, page by page.
    let mut cursor = Some(PageCursor::FIRST);
    let mut leaves = 0;
    while let Some(c) = cursor {
        let reply = imp.own_page(c).unwrap();
        assert_eq!(reply.header, exp.header);
        leaves += reply.page.leaves.len();
        cursor = reply.page.next;
    }
    assert_eq!(leaves as u64, 1 + 4 + 9 + 6);
}

#[test]
fn batches_respect_the_byte_bound_and_span_blobs() {
    let (src, _) = source();
    for (batch_bytes, bound) in [
        (2 * CHUNK_SIZE as u64, 2 * CHUNK_SIZE as u64),
        (1, CHUNK_SIZE as u64),
        (u64::MAX, MAX_CHUNK_BATCH_BYTES),
    ] {
        let mut exp = Exporter::new(&src, 1);
        let disk = Disk::new();
        let (mut imp, mut store) = disk.open();
        imp.start(Some(exp.init(ImportConfig {
            batch_bytes,
            ..config()
        })));
        Sim::new().run(&mut imp, &mut store, &mut exp, 10_000);
        assert_eq!(imp.state().phase(), ImportPhase::Done);
        assert!(!exp.batches.is_empty());
        for (refs, bytes) in &exp.batches {
            assert!(*bytes <= bound, "{bytes} > {bound}");
            assert!(refs.len() <= MAX_CHUNKS_PER_BATCH);
        }
        let spans = exp
            .batches
            .iter()
            .any(|(refs, _)| refs.windows(2).any(|w| w[0].blob != w[1].blob));
        assert!(
            spans,
            "batch_bytes {batch_bytes}: some batch holds chunks of several blobs"
        );
        // Partial last chunks (1, 1000, CHUNK_SIZE + 1 ...) are fetched with their exact size.
        assert_eq!(
            exp.batches.iter().map(|(_, b)| b).sum::<u64>(),
            exp.header.total_blob_bytes
        );
    }
}

#[test]
fn an_import_resumes_after_a_crash_at_every_step() {
    let (src, _) = source();
    // The steps of an import without crash.
    let total = {
        let mut exp = Exporter::new(&src, 3);
        let disk = Disk::new();
        let (mut imp, mut store) = disk.open();
        imp.start(Some(exp.init(config())));
        Sim::new().run(&mut imp, &mut store, &mut exp, 10_000)
    };
    assert!(total > 30, "{total} steps");
    for crash_at in 0..total {
        let mut exp = Exporter::new(&src, 3);
        let disk = Disk::new();
        let (mut imp, mut store) = disk.open();
        imp.start(Some(exp.init(config())));
        let mut sim = Sim::new();
        sim.run(&mut imp, &mut store, &mut exp, crash_at);
        drop((imp, store));
        let (mut imp, mut store) = sim.crash(&disk);
        sim.run(&mut imp, &mut store, &mut exp, 10_000);
        let st = imp.state();
        assert_eq!(
            st.phase(),
            ImportPhase::Done,
            "crash at {crash_at}: {:?}",
            st.error
        );
        assert_eq!(
            manifest_of(&store).0.root,
            exp.header.root,
            "crash at {crash_at}"
        );
        // A delivered chunk is stored in the same message: none is delivered twice.
        assert!(
            exp.pulled.values().all(|n| *n == 1),
            "crash at {crash_at}: a chunk was pulled twice"
        );
        assert_eq!(exp.pulled.len() as u64, exp.header.total_chunks);
    }
}

#[test]
fn calls_lost_without_a_restart_are_planned_again_when_stale() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 3);
    let disk = Disk::new();
    let (mut imp, mut store) = disk.open();
    imp.start(Some(exp.init(config())));
    let mut sim = Sim::new();
    // Run into the chunk phase, then lose every call in flight (their callbacks trapped).
    while imp.state().phase() != ImportPhase::Chunks {
        sim.run(&mut imp, &mut store, &mut exp, 1);
    }
    sim.run(&mut imp, &mut store, &mut exp, 3);
    assert!(!imp.state().in_flight.is_empty());
    sim.pending.clear();
    assert!(matches!(
        imp.next(&mut store, owner(), sim.now + 1),
        Action::Wait { .. }
    ));
    sim.now += STALE_CALL_NS + 1;
    sim.run(&mut imp, &mut store, &mut exp, 10_000);
    assert_eq!(imp.state().phase(), ImportPhase::Done);
    assert_eq!(manifest_of(&store).0.root, exp.header.root);
}

#[test]
fn a_tampered_chunk_fails_the_import_and_is_not_stored() {
    let (src, blobs) = source();
    let big = blobs[5].hash.into_array(); // 3 chunks
    let mut exp = Exporter::new(&src, 9);
    exp.tamper = Some((big, 1));
    let disk = Disk::new();
    let (imp, mut store, _) = import_all(&mut exp, &disk);

    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Failed);
    let error = st.error.clone().unwrap();
    assert!(
        matches!(&error, ImportError::ChunkRejected { blob, index: 1, .. } if *blob == to_hex(&big)),
        "{error:?}"
    );
    assert!(error.to_string().contains("does not match"), "{error}");
    assert!(matches!(st.step, Step::Chunks { .. }));
    // Nothing wrong stored: the blob is not held, its chunk 1 is still missing.
    assert!(matches!(
        store.get_blob(&ctx(), &ByteArray::new(big)),
        Err(Error::BlobNotInCapsule { .. })
    ));
    let ob = imp
        .open
        .iter()
        .map(|e| e.value().0)
        .find(|o| o.hash.into_array() == big)
        .unwrap();
    assert!(
        store
            .blob_store()
            .missing_chunks(ob.upload)
            .unwrap()
            .contains(&1)
    );
    // The capsule stays frozen: the owner's writes are refused, naming the migration.
    assert!(st.write_block().unwrap().contains("migration 9"));
    assert!(matches!(
        store.update_capsule(&ctx(), Default::default()),
        Err(Error::CapsuleFrozen { reason }) if reason.contains("migration 9")
    ));
}

#[test]
fn a_manifest_with_another_root_fails_at_the_manifest() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 4);
    let disk = Disk::new();
    let (mut imp, mut store) = disk.open();
    let mut init = exp.init(config());
    init.manifest_root = ByteArray::new([7; 32]);
    imp.start(Some(init));
    Sim::new().run(&mut imp, &mut store, &mut exp, 10_000);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Failed);
    assert!(matches!(st.step, Step::Manifest { .. }));
    assert!(
        matches!(
            st.error,
            Some(ImportError::ManifestRootMismatch {
                migration_id: 4,
                ..
            })
        ),
        "{:?}",
        st.error
    );
    assert!(exp.pulled.is_empty());
    assert_eq!(
        store.get_capsule(&ctx()).unwrap_err(),
        Error::CapsuleNotFound,
        "nothing is written before the manifest is verified"
    );
}

#[test]
fn rejected_batches_are_retried_with_backoff() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    exp.reject_next = 4;
    exp.not_importing_next = 2;
    let disk = Disk::new();
    let (imp, store, _) = import_all(&mut exp, &disk);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Done, "{:?}", st.error);
    assert_eq!(st.retries, 6);
    assert_eq!(st.attempts, 0);
    assert!(exp.pulled.values().all(|n| *n == 1));
    assert_eq!(manifest_of(&store).0.root, exp.header.root);
}

#[test]
fn too_many_failed_calls_in_a_row_fail_the_import() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    exp.reject_next = MAX_ATTEMPTS;
    let disk = Disk::new();
    let (imp, _, _) = import_all(&mut exp, &disk);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Failed);
    let error = st.error.unwrap();
    assert_eq!(
        error,
        ImportError::RetriesExhausted {
            attempts: MAX_ATTEMPTS,
            last: RetryCause::Call(CallFault::Rejected {
                code: capsule::migration::RejectCode::SysTransient,
                message: "the backend's queue is full".into(),
            }),
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "the backend did not answer after {MAX_ATTEMPTS} attempts: call rejected (2): the backend's queue is full"
        )
    );
    assert!(matches!(st.step, Step::Chunks { .. }));
}

#[test]
fn a_failed_import_resumes_when_started_again_with_the_same_migration() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 5);
    exp.reject_next = MAX_ATTEMPTS;
    let disk = Disk::new();
    let (_, _, mut sim) = import_all(&mut exp, &disk);
    let pulled_before = exp.pulled.len();
    let (mut imp, mut store) = disk.open();
    assert!(imp.start(Some(exp.init(config()))));
    sim.run(&mut imp, &mut store, &mut exp, 10_000);
    assert_eq!(imp.state().phase(), ImportPhase::Done);
    assert_eq!(pulled_before, 0);
    assert!(exp.pulled.values().all(|n| *n == 1));
}

#[test]
fn a_new_migration_resets_the_import_and_keeps_the_chunks() {
    let (mut src, blobs) = source();
    // First attempt: interrupted in the chunk phase (half of the batches stored).
    let disk = Disk::new();
    let first_pulled;
    {
        let mut exp = Exporter::new(&src, 1);
        let (mut imp, mut store) = disk.open();
        imp.start(Some(exp.init(config())));
        let mut sim = Sim::new();
        while exp.batches.len() < 3 {
            sim.run(&mut imp, &mut store, &mut exp, 1);
        }
        assert_eq!(imp.state().phase(), ImportPhase::Chunks);
        first_pulled = exp.pulled.clone();
    }
    // The owner changes the source capsule: a new blob, a memory edited, one deleted.
    let new_blob = upload(&mut src, &data(CHUNK_SIZE + 300, 99));
    src.update_memory(
        &ctx(),
        3,
        MemoryUpdate {
            title: Some("edited".into()),
            blobs: Some(vec![new_blob.clone(), blobs[5].clone()]),
            ..Default::default()
        },
    )
    .unwrap();
    src.delete_memory(&ctx(), 8).unwrap();
    // Second migration, installed over the first (post_upgrade with new init args).
    let mut exp = Exporter::new(&src, 2);
    let mut sim = Sim::new();
    let (mut imp, mut store) = sim.crash(&disk);
    assert!(imp.start(Some(exp.init(config()))));
    assert_eq!(imp.state().phase(), ImportPhase::Manifest);
    sim.run(&mut imp, &mut store, &mut exp, 10_000);
    let st = imp.state();
    assert_eq!(st.phase(), ImportPhase::Done, "{:?}", st.error);
    assert_eq!(manifest_of(&store).0.root, exp.header.root);
    assert_eq!(store.get_capsule(&ctx()).unwrap().memory_count, 8);
    // Chunks stored by the first attempt were not pulled again.
    for key in first_pulled.keys() {
        assert!(!exp.pulled.contains_key(key), "{key:?} pulled again");
    }
    assert_eq!(exp.chunks_in(&new_blob.hash.into_array()), 2);
    assert_eq!(
        exp.pulled.len() + first_pulled.len(),
        exp.header.total_chunks as usize,
        "every chunk of the new manifest came exactly once over both attempts"
    );
    // The staged pages of the first migration are gone.
    assert_eq!(imp.staged.header(1), None);
    assert_eq!(imp.staged.count(1, Section::Memories), 0);
}

#[test]
fn writes_are_refused_while_importing() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 11);
    let disk = Disk::new();
    let (mut imp, mut store) = disk.open();
    assert_eq!(
        imp.state().write_block(),
        None,
        "no migration: writes allowed"
    );
    imp.start(Some(exp.init(config())));
    let mut sim = Sim::new();
    let mut seen = vec![];
    loop {
        let st = imp.state();
        let phase = st.phase();
        if !seen.contains(&phase) {
            seen.push(phase);
        }
        if phase == ImportPhase::Done {
            assert_eq!(st.write_block(), None);
            break;
        }
        let reason = st.write_block().expect("writes refused while importing");
        assert!(reason.contains("migration 11"), "{reason}");
        // Once the capsule leaf is written, the store itself refuses (frozen record).
        if let Ok(info) = store.get_capsule(&ctx()) {
            let _ = info;
            assert!(matches!(
                store.add_memory(
                    &ctx(),
                    MemoryInput {
                        title: "x".into(),
                        description: String::new(),
                        tags: vec![],
                        kind: MemoryKind::Note,
                        blobs: vec![],
                        encryption: None,
                    }
                ),
                Err(Error::CapsuleFrozen { .. })
            ));
        }
        assert!(sim.run(&mut imp, &mut store, &mut exp, 1) == 1);
    }
    assert_eq!(
        seen,
        [
            ImportPhase::Manifest,
            ImportPhase::Chunks,
            ImportPhase::Records,
            ImportPhase::Verifying,
            ImportPhase::Reporting,
            ImportPhase::Done
        ]
    );
}

#[test]
fn a_root_mismatch_names_the_differing_section() {
    let (src, _) = source();
    let (h, _) = manifest_of(&src);
    let mut other = h.clone();
    other.memories_root = [1; 32];
    let err = root_mismatch(Some(&h), &other);
    assert!(
        matches!(&err, ImportError::StoredRootMismatch { differences, .. }
            if *differences == ["memories: section root differs"]),
        "{err:?}"
    );
    assert!(!err.to_string().contains("blobs"), "{err}");
    other.memory_count += 1;
    assert!(
        root_mismatch(Some(&h), &other)
            .to_string()
            .contains("memories: 9 leaves expected, 10 stored")
    );
}

#[test]
fn the_manifest_is_not_served_before_verification() {
    let disk = Disk::new();
    let (imp, _) = disk.open();
    assert_eq!(
        imp.own_page(PageCursor::FIRST),
        Err(Error::ManifestNotVerified {
            phase: "Idle".into()
        })
    );
}

#[test]
fn a_cursor_past_the_verified_manifest_is_out_of_range() {
    let (src, _) = source();
    let mut exp = Exporter::new(&src, 7);
    let disk = Disk::new();
    let (imp, _, _) = import_all(&mut exp, &disk);
    assert!(imp.own_page(PageCursor::FIRST).is_ok());
    let past = PageCursor {
        section: manifests::Section::Blobs,
        index: 1_000,
    };
    assert_eq!(
        imp.own_page(past),
        Err(Error::CursorOutOfRange {
            cursor: past.to_string()
        })
    );
}

#[test]
fn progress_is_reported_per_batch_at_first_then_once_per_report_bytes() {
    let mib = 1024 * 1024;
    // Every batch within the first REPORT_BYTES.
    assert!(report_due(0, 2 * mib));
    assert!(report_due(REPORT_BYTES - 2 * mib, REPORT_BYTES + mib));
    // Then only the batches that cross a multiple of REPORT_BYTES.
    assert!(!report_due(REPORT_BYTES, REPORT_BYTES + 2 * mib));
    assert!(!report_due(REPORT_BYTES + 2 * mib, REPORT_BYTES + 4 * mib));
    assert!(report_due(2 * REPORT_BYTES - mib, 2 * REPORT_BYTES + mib));
    let batches = (0..512u64).filter(|i| report_due(i * 2 * mib, (i + 1) * 2 * mib));
    let per_report = REPORT_BYTES / (2 * mib);
    assert_eq!(
        batches.count() as u64,
        per_report + (512 - per_report) / per_report,
        "1 GiB in 2 MiB batches: every batch of the first REPORT_BYTES, then one per REPORT_BYTES"
    );
}
