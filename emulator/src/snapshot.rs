//! Saving the whole emulated subnet to a directory, incrementally, and loading it back.
//!
//! A snapshot is taken between rounds, where every canister's heap, globals and stable memory
//! are committed and messages in flight, call contexts and callbacks are plain data: so *any*
//! state can be saved, also with messages queued, paused or delayed.
//!
//! ```text
//! DIR/state.json                    index: time, round, config, faults, queue, call contexts,
//!                                   callbacks, stats and every canister's metadata
//! DIR/modules/<sha256>.wasm         module bytes as installed (content-addressed, written once)
//! DIR/chunks/<sha256>.bin           wasm chunk-store entries (content-addressed, written once)
//! DIR/canisters/<id>/heap.<g>.pages   page log of the committed heap
//! DIR/canisters/<id>/stable.<g>.pages page log of stable memory
//! DIR/canisters/<id>/log.jsonl      canister log, append-only
//! ```
//!
//! A page log is a sequence of records `page index (u64 LE) ‖ 4096 bytes`; replaying it in
//! order gives the memory (pages never written are zero). A save appends only the pages
//! changed since the previous save (tracked by the heap's dirty-page bytemap and stable
//! memory's write journal); when a log holds more than twice the live pages, or the memory was
//! replaced (install, reinstall, `set_stable_memory`), a new generation `<g>` is written in full.
//! The index records each log's file and valid length, and is replaced atomically (write, then
//! rename): it is the commit point, so a process that dies mid-save leaves the previous state.
//! Not saved: the message trace, the captured `debug_print` lines ([`crate::Emulator::logs`];
//! canister logs are saved) and results of completed ingress messages.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use candid::Principal;
use ic_management_canister_types::{Change, LogVisibility};
use serde::{Deserialize, Serialize};

use crate::cycles::Config;
use crate::engine::{self, CanisterInstance, GlobalValue};
use crate::error::EmulatorError;
use crate::faults::Faults;
use crate::scheduler::Inner;
pub use crate::scheduler::persisted::{LogFile, PageLog};
use crate::scheduler::persisted::{Persisted, SavedFiles};
use crate::stable::{PAGE, StableMemory};
use crate::state::{CallContext, Callback, Canister, Origin, Queued, Status};
use crate::stats::CanisterStats;

/// Version of the on-disk format.
pub const FORMAT: u32 = 1;
const INDEX: &str = "state.json";
const RECORD: u64 = 8 + PAGE as u64;

#[derive(Serialize, Deserialize)]
struct CanisterMeta {
    id: Principal,
    controllers: Vec<Principal>,
    status: Status,
    balance: u128,
    module_hash: Option<String>,
    heap_len: u64,
    globals: Vec<GlobalValue>,
    heap: Option<PageLog>,
    stable_size: u64,
    stable: PageLog,
    #[serde(with = "crate::serde_helpers::hex_bytes")]
    certified_data: Vec<u8>,
    global_timer: u64,
    version: u64,
    freezing_threshold: u64,
    log_visibility: LogVisibility,
    chunks: Vec<String>,
    history: Vec<Change>,
    log: LogFile,
    open_call_contexts: usize,
    env_vars: Vec<(String, String)>,
    code_generation: u64,
}

#[derive(Serialize, Deserialize)]
struct Index {
    format: u32,
    time: u64,
    round: u64,
    next_canister_index: u64,
    rand_counter: u64,
    tracing: bool,
    next_id: u64,
    config: Config,
    faults: Faults,
    queue: Vec<Queued>,
    call_contexts: Vec<(u64, CallContext)>,
    callbacks: Vec<(u64, Callback)>,
    pending_ingress: Vec<u64>,
    stop_waiters: Vec<(Principal, Vec<Origin>)>,
    stats: Vec<(Principal, CanisterStats)>,
    canisters: Vec<CanisterMeta>,
}

#[derive(Serialize, Deserialize)]
struct LogRecord {
    i: u64,
    t: u64,
    m: String,
}

/// What a save wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// Heap and stable pages written.
    pub pages_written: u64,
    /// Page logs rewritten in full (new canisters, installs, compaction).
    pub full_rewrites: u64,
    /// Bytes written, index included.
    pub bytes_written: u64,
}

fn io(path: &Path, e: std::io::Error) -> EmulatorError {
    EmulatorError::State(format!("{}: {e}", path.display()))
}

fn bad(msg: impl Into<String>) -> EmulatorError {
    EmulatorError::State(msg.into())
}

/// Whether `dir` holds a saved state.
pub fn exists(dir: &Path) -> bool {
    dir.join(INDEX).is_file()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EmulatorError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io(path, e))
}

fn write_once(path: &Path, bytes: &[u8]) -> Result<u64, EmulatorError> {
    if path.is_file() {
        return Ok(0);
    }
    write_atomic(path, bytes)?;
    Ok(bytes.len() as u64)
}

/// Writes page records: a new generation (`prev` = `None` or `full`) or appended to `prev`.
fn write_pages(
    dir: &Path,
    kind: &str,
    prev: Option<&PageLog>,
    full: bool,
    pages: &mut dyn Iterator<Item = (u64, [u8; PAGE])>,
) -> Result<(PageLog, u64), EmulatorError> {
    let (mut log, file) = match prev {
        Some(p) if !full => {
            let path = dir.join(&p.file);
            let mut f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            f.set_len(p.len).map_err(|e| io(&path, e))?;
            f.seek(SeekFrom::Start(p.len)).map_err(|e| io(&path, e))?;
            (p.clone(), f)
        }
        _ => {
            let generation = prev.map(|p| p.generation + 1).unwrap_or(0);
            let file = format!("{kind}.{generation}.pages");
            let path = dir.join(&file);
            let f = File::create(&path).map_err(|e| io(&path, e))?;
            let log = PageLog {
                file,
                generation,
                len: 0,
            };
            (log, f)
        }
    };
    let path = dir.join(&log.file);
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut n = 0;
    for (i, page) in pages {
        w.write_all(&i.to_le_bytes()).map_err(|e| io(&path, e))?;
        w.write_all(&page).map_err(|e| io(&path, e))?;
        n += 1;
    }
    w.flush().map_err(|e| io(&path, e))?;
    log.len += n * RECORD;
    Ok((log, n))
}

fn read_pages(dir: &Path, log: &PageLog) -> Result<Vec<(u64, [u8; PAGE])>, EmulatorError> {
    let path = dir.join(&log.file);
    let mut f = File::open(&path).map_err(|e| io(&path, e))?;
    let mut buf = vec![0u8; log.len as usize];
    f.read_exact(&mut buf).map_err(|e| io(&path, e))?;
    Ok(buf
        .chunks_exact(RECORD as usize)
        .map(|r| {
            let i = u64::from_le_bytes(r[..8].try_into().unwrap());
            (i, r[8..].try_into().unwrap())
        })
        .collect())
}

fn heap_page(heap: &[u8], i: usize) -> [u8; PAGE] {
    let mut p = [0u8; PAGE];
    let s = i * PAGE;
    if s < heap.len() {
        let e = (s + PAGE).min(heap.len());
        p[..e - s].copy_from_slice(&heap[s..e]);
    }
    p
}

/// Whether a log of `prev_len` bytes plus `new` records should be compacted (more than twice
/// the live pages).
fn should_compact(prev: &PageLog, new: u64, live: u64) -> bool {
    prev.len / RECORD + new > 2 * live + 64
}

impl Inner {
    /// Saves the state to `dir` (see the module docs); incremental when `dir` is where the
    /// state was last saved to or loaded from.
    pub fn save_to(&mut self, dir: &Path) -> Result<SaveReport, EmulatorError> {
        let mut report = SaveReport::default();
        for sub in ["modules", "chunks", "canisters"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
        }
        let same_dir = self.persisted.as_ref().is_some_and(|p| p.dir == dir);
        let previous = if same_dir {
            std::mem::take(&mut self.persisted.as_mut().unwrap().files)
        } else {
            BTreeMap::new()
        };
        let result = self.save_canisters(dir, &previous, &mut report);
        let (metas, files) = match result {
            Ok(x) => x,
            Err(e) => {
                if let Some(p) = self.persisted.as_mut().filter(|_| same_dir) {
                    p.files = previous;
                }
                return Err(e);
            }
        };
        let index = Index {
            format: FORMAT,
            time: self.time,
            round: self.round,
            next_canister_index: self.next_canister_index,
            rand_counter: self.rand_counter,
            tracing: self.tracing,
            next_id: self.book.next_id,
            config: self.config.clone(),
            faults: self.faults.clone(),
            queue: self.queue.iter().cloned().collect(),
            call_contexts: sorted(&self.book.call_contexts),
            callbacks: sorted(&self.book.callbacks),
            pending_ingress: {
                let mut v: Vec<u64> = (self.book.ingress.iter())
                    .filter(|(_, r)| r.is_none())
                    .map(|(k, _)| *k)
                    .collect();
                v.sort_unstable();
                v
            },
            stop_waiters: self
                .stop_waiters
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            stats: self.stats.iter().map(|(k, v)| (*k, v.clone())).collect(),
            canisters: metas,
        };
        let json = serde_json::to_vec(&index).map_err(|e| bad(format!("encode index: {e}")))?;
        report.bytes_written += json.len() as u64;
        write_atomic(&dir.join(INDEX), &json)?;
        // Committed: mark everything saved, drop obsolete files.
        for c in self.canisters.values_mut() {
            if let Some(i) = c.instance.as_mut() {
                i.mark_saved();
            }
            c.stable.mark_saved();
        }
        for (id, old) in &previous {
            let cdir = dir.join("canisters").join(id.to_text());
            match files.get(id) {
                None => {
                    let _ = fs::remove_dir_all(&cdir);
                }
                Some(new) => {
                    for (o, n) in [(&old.heap, &new.heap), (&old.stable, &new.stable)] {
                        if let Some(o) = o
                            && n.as_ref().is_none_or(|n| n.file != o.file)
                        {
                            let _ = fs::remove_file(cdir.join(&o.file));
                        }
                    }
                }
            }
        }
        self.persisted = Some(Persisted {
            dir: dir.to_path_buf(),
            files,
        });
        Ok(report)
    }

    #[allow(clippy::type_complexity)]
    fn save_canisters(
        &self,
        dir: &Path,
        previous: &BTreeMap<Principal, SavedFiles>,
        report: &mut SaveReport,
    ) -> Result<(Vec<CanisterMeta>, BTreeMap<Principal, SavedFiles>), EmulatorError> {
        let mut metas = Vec::new();
        let mut files = BTreeMap::new();
        for c in self.canisters.values() {
            let cdir = dir.join("canisters").join(c.id.to_text());
            fs::create_dir_all(&cdir).map_err(|e| io(&cdir, e))?;
            let prev = previous.get(&c.id).cloned().unwrap_or_default();
            // Module and chunk store: content-addressed, written once.
            let mut module_hash = None;
            if let Some(inst) = &c.instance {
                let m = inst.module();
                let h = hex::encode(m.hash);
                report.bytes_written +=
                    write_once(&dir.join("modules").join(format!("{h}.wasm")), &m.installed)?;
                module_hash = Some(h);
            }
            let mut chunks = Vec::new();
            for (h, bytes) in &c.chunks {
                let h = hex::encode(h);
                report.bytes_written +=
                    write_once(&dir.join("chunks").join(format!("{h}.bin")), bytes)?;
                chunks.push(h);
            }
            // Heap.
            let (heap, heap_len, globals) = match &c.instance {
                None => (None, 0, Vec::new()),
                Some(inst) => {
                    let image = inst.heap_image();
                    let live = image.len().div_ceil(PAGE) as u64;
                    let unsaved = inst.unsaved_pages();
                    let full = match (&prev.heap, &unsaved) {
                        (Some(p), Some(u)) => should_compact(p, u.len() as u64, live),
                        _ => true,
                    };
                    let (log, n) = if full {
                        report.full_rewrites += 1;
                        let mut it = (0..live as usize)
                            .map(|i| (i as u64, heap_page(image, i)))
                            .filter(|(_, p)| p.iter().any(|b| *b != 0));
                        write_pages(&cdir, "heap", prev.heap.as_ref(), true, &mut it)?
                    } else {
                        let u = unsaved.unwrap();
                        let mut it = u.iter().map(|i| (*i as u64, heap_page(image, *i)));
                        write_pages(&cdir, "heap", prev.heap.as_ref(), false, &mut it)?
                    };
                    report.pages_written += n;
                    report.bytes_written += n * RECORD;
                    (Some(log), image.len() as u64, inst.globals())
                }
            };
            // Stable memory.
            let stored = c.stable.stored_pages();
            let unsaved = c.stable.unsaved_pages();
            let full = match (&prev.stable, &unsaved) {
                (Some(p), Some(u)) => should_compact(p, u.len() as u64, stored.len() as u64),
                _ => true,
            };
            let (stable, n) = if full {
                report.full_rewrites += 1;
                let mut it = stored
                    .iter()
                    .map(|i| (*i, c.stable.page(*i)))
                    .filter(|(_, p)| p.iter().any(|b| *b != 0));
                write_pages(&cdir, "stable", prev.stable.as_ref(), true, &mut it)?
            } else {
                let u = unsaved.unwrap();
                let mut it = u.iter().map(|i| (*i, c.stable.page(*i)));
                write_pages(&cdir, "stable", prev.stable.as_ref(), false, &mut it)?
            };
            report.pages_written += n;
            report.bytes_written += n * RECORD;
            // Canister log: append the new lines.
            let mut log = prev.log.clone();
            let lpath = cdir.join("log.jsonl");
            if (c.logs.len() as u64) < log.lines || (log.len == 0 && log.lines == 0) {
                log = LogFile::default();
                File::create(&lpath).map_err(|e| io(&lpath, e))?;
            }
            if (c.logs.len() as u64) > log.lines {
                let mut f = OpenOptions::new()
                    .write(true)
                    .open(&lpath)
                    .map_err(|e| io(&lpath, e))?;
                f.set_len(log.len).map_err(|e| io(&lpath, e))?;
                f.seek(SeekFrom::Start(log.len))
                    .map_err(|e| io(&lpath, e))?;
                let mut out = Vec::new();
                for (i, t, m) in &c.logs[log.lines as usize..] {
                    let rec = LogRecord {
                        i: *i,
                        t: *t,
                        m: String::from_utf8_lossy(m).into_owned(),
                    };
                    serde_json::to_writer(&mut out, &rec).map_err(|e| bad(e.to_string()))?;
                    out.push(b'\n');
                }
                f.write_all(&out).map_err(|e| io(&lpath, e))?;
                log.len += out.len() as u64;
                log.lines = c.logs.len() as u64;
                report.bytes_written += out.len() as u64;
            }
            metas.push(CanisterMeta {
                id: c.id,
                controllers: c.controllers.clone(),
                status: c.status,
                balance: c.balance,
                module_hash,
                heap_len,
                globals,
                heap: heap.clone(),
                stable_size: c.stable.size(),
                stable: stable.clone(),
                certified_data: c.certified_data.clone(),
                global_timer: c.global_timer,
                version: c.version,
                freezing_threshold: c.freezing_threshold,
                log_visibility: c.log_visibility.clone(),
                chunks,
                history: c.history.clone(),
                log: log.clone(),
                open_call_contexts: c.open_call_contexts,
                env_vars: c.env_vars.clone(),
                code_generation: c.code_generation,
            });
            files.insert(
                c.id,
                SavedFiles {
                    heap,
                    stable: Some(stable),
                    log,
                },
            );
        }
        Ok((metas, files))
    }

    /// Loads a state saved by [`save_to`](Self::save_to).
    pub fn load_from(dir: &Path) -> Result<Self, EmulatorError> {
        let ipath = dir.join(INDEX);
        let bytes = fs::read(&ipath).map_err(|e| io(&ipath, e))?;
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("{}: {e}", ipath.display())))?;
        if index.format != FORMAT {
            return Err(bad(format!(
                "{}: format {} (this emulator reads {FORMAT})",
                ipath.display(),
                index.format
            )));
        }
        let mut inner = Inner::new(index.config);
        inner.time = index.time;
        inner.round = index.round;
        inner.next_canister_index = index.next_canister_index;
        inner.rand_counter = index.rand_counter;
        inner.tracing = index.tracing;
        inner.faults = index.faults;
        inner.queue = index.queue.into_iter().collect();
        inner.book.next_id = index.next_id;
        inner.book.call_contexts = index.call_contexts.into_iter().collect();
        inner.book.callbacks = index.callbacks.into_iter().collect();
        inner.book.ingress = index
            .pending_ingress
            .into_iter()
            .map(|k| (k, None))
            .collect();
        inner.stop_waiters = index.stop_waiters.into_iter().collect();
        inner.stats = index.stats.into_iter().collect();
        let mut files = BTreeMap::new();
        for m in index.canisters {
            let cdir = dir.join("canisters").join(m.id.to_text());
            let controllers = crate::management::sorted_set(m.controllers);
            let mut c = Canister::new(m.id, controllers, m.balance, m.freezing_threshold);
            c.status = m.status;
            if let Some(h) = &m.module_hash {
                let mpath = dir.join("modules").join(format!("{h}.wasm"));
                let wasm = fs::read(&mpath).map_err(|e| io(&mpath, e))?;
                let module = engine::compile(&wasm)?;
                let mut heap = vec![0u8; m.heap_len as usize];
                if let Some(log) = &m.heap {
                    for (i, p) in read_pages(&cdir, log)? {
                        let s = i as usize * PAGE;
                        if s < heap.len() {
                            let e = (s + PAGE).min(heap.len());
                            heap[s..e].copy_from_slice(&p[..e - s]);
                        }
                    }
                }
                c.instance = Some(CanisterInstance::restore(module.clone(), heap, &m.globals)?);
                c.module_hash = Some(module.hash);
            }
            c.stable = StableMemory::restore(m.stable_size, read_pages(&cdir, &m.stable)?);
            c.certified_data = m.certified_data;
            c.global_timer = m.global_timer;
            c.version = m.version;
            c.log_visibility = m.log_visibility;
            for h in &m.chunks {
                let p = dir.join("chunks").join(format!("{h}.bin"));
                let bytes = fs::read(&p).map_err(|e| io(&p, e))?;
                let key: [u8; 32] = hex::decode(h)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| bad(format!("bad chunk hash {h}")))?;
                c.chunks.insert(key, bytes);
            }
            c.history = m.history;
            if m.log.len > 0 {
                let lpath = cdir.join("log.jsonl");
                let mut f = File::open(&lpath).map_err(|e| io(&lpath, e))?;
                let mut buf = vec![0u8; m.log.len as usize];
                f.read_exact(&mut buf).map_err(|e| io(&lpath, e))?;
                for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let r: LogRecord =
                        serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
                    c.logs.push((r.i, r.t, r.m.into_bytes()));
                }
            }
            c.open_call_contexts = m.open_call_contexts;
            c.env_vars = m.env_vars;
            c.code_generation = m.code_generation;
            files.insert(
                m.id,
                SavedFiles {
                    heap: m.heap,
                    stable: Some(m.stable),
                    log: m.log,
                },
            );
            inner.canisters.insert(m.id, c);
        }
        inner.persisted = Some(Persisted {
            dir: dir.to_path_buf(),
            files,
        });
        Ok(inner)
    }
}

fn sorted<V: Clone>(m: &std::collections::HashMap<u64, V>) -> Vec<(u64, V)> {
    let mut v: Vec<(u64, V)> = m.iter().map(|(k, v)| (*k, v.clone())).collect();
    v.sort_by_key(|(k, _)| *k);
    v
}

/// Canisters whose ids are listed in the saved index at `dir` (without loading anything).
pub fn saved_canisters(dir: &Path) -> Result<BTreeSet<Principal>, EmulatorError> {
    #[derive(Deserialize)]
    struct Id {
        id: Principal,
    }
    #[derive(Deserialize)]
    struct Ids {
        canisters: Vec<Id>,
    }
    let ipath = dir.join(INDEX);
    let bytes = fs::read(&ipath).map_err(|e| io(&ipath, e))?;
    let ids: Ids = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    Ok(ids.canisters.into_iter().map(|c| c.id).collect())
}
