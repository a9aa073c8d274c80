//! The wasm engine: loading, rewriting, compiling (with caches) and running canister modules.
//!
//! One process-wide wasmtime [`wasmtime::Engine`]; compiled modules are cached in memory and on
//! disk, keyed by the SHA-256 of the module as installed, so tests never recompile the same wasm.
//! A [`CanisterInstance`] is a live instance whose heap and mutable globals are *committed* or
//! *rolled back* after each message, at a cost proportional to the pages the message dirtied.

pub mod instrument;
pub mod system_api;

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use wasmtime::{Global, Linker, Memory, Module, Store, Table, Val};

use crate::error::EmulatorError;
use instrument::{BYTEMAP_EXPORT, COUNTER_EXPORT, ModuleInfo, PAGE_SIZE, TABLE_EXPORT};
pub use system_api::{ApiType, MessageCtx, PendingCall, Response, TrapKind};

/// Bump when the rewrite changes, so stale disk-cache entries are not used.
const INSTRUMENTATION_VERSION: u32 = 1;

/// Store data of an instance: handles the host functions need, and the current message.
#[derive(Default)]
pub struct Ctx {
    /// The executing message.
    pub msg: MessageCtx,
    /// Heap (memory 0).
    pub memory: Option<Memory>,
    /// Dirty-page bytemap.
    pub bytemap: Option<Memory>,
    /// Instruction counter.
    pub counter: Option<Global>,
}

/// A rewritten, compiled canister module.
pub struct CompiledModule {
    /// SHA-256 of the module bytes as installed (gzipped or not): the IC's `module_hash`.
    pub hash: [u8; 32],
    /// The compiled, instrumented module.
    pub module: Module,
    /// What the rewrite learned.
    pub info: ModuleInfo,
    /// The module bytes as installed (kept so a state snapshot can store the module).
    pub installed: Arc<[u8]>,
}

impl CompiledModule {
    /// Whether the module exports `name` as a function.
    pub fn exports(&self, name: &str) -> bool {
        self.info.exported_functions.iter().any(|n| n == name)
    }
}

fn engine() -> &'static wasmtime::Engine {
    static ENGINE: OnceLock<wasmtime::Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config
            .wasm_multi_memory(true)
            .wasm_simd(true)
            .wasm_bulk_memory(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        #[cfg(feature = "profiling")]
        if std::env::var_os("ICEMU_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        wasmtime::Engine::new(&config).expect("wasmtime engine")
    })
}

fn linker() -> &'static Linker<Ctx> {
    static LINKER: OnceLock<Linker<Ctx>> = OnceLock::new();
    LINKER.get_or_init(|| {
        let mut l = Linker::new(engine());
        system_api::link(&mut l).expect("link ic0");
        l
    })
}

/// The `ic0` functions the emulator implements, with their types: read from the linker itself,
/// so the import check at install and the host functions cannot drift apart.
pub fn ic0_functions() -> &'static std::collections::BTreeMap<String, wasmtime::FuncType> {
    static FUNCS: OnceLock<std::collections::BTreeMap<String, wasmtime::FuncType>> =
        OnceLock::new();
    FUNCS.get_or_init(|| {
        let mut store = Store::new(engine(), Ctx::default());
        let funcs: Vec<(String, wasmtime::Func)> = linker()
            .iter(&mut store)
            .filter(|(module, _, _)| *module == "ic0")
            .filter_map(|(_, name, ext)| ext.into_func().map(|f| (name.to_string(), f)))
            .collect();
        funcs
            .into_iter()
            .map(|(name, f)| {
                let ty = f.ty(&store);
                (name, ty)
            })
            .collect()
    })
}

fn memory_cache() -> &'static Mutex<HashMap<[u8; 32], Arc<CompiledModule>>> {
    static CACHE: OnceLock<Mutex<HashMap<[u8; 32], Arc<CompiledModule>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Where compiled modules are cached on disk: `$EMULATOR_CACHE_DIR`, else a folder in the
/// system temp dir.
pub fn disk_cache_dir() -> PathBuf {
    std::env::var_os("EMULATOR_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("icp-emulator-module-cache"))
}

/// Decompresses a gzipped module (magic `1f 8b`); returns plain wasm unchanged.
pub fn decompress(bytes: &[u8]) -> Result<Vec<u8>, EmulatorError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| EmulatorError::InvalidWasm(format!("gzip: {e}")))?;
        Ok(out)
    } else if bytes.starts_with(b"\0asm") {
        Ok(bytes.to_vec())
    } else {
        Err(EmulatorError::InvalidWasm(
            "neither wasm nor gzipped wasm".into(),
        ))
    }
}

/// SHA-256.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Loads, checks imports, rewrites and compiles a module, using the caches.
///
/// Lookup order: the in-process cache, then the disk cache (a compiled `.cwasm` plus a `.info`
/// sidecar with what the rewrite learned, so a warm process neither rewrites nor compiles),
/// then a full rewrite and compilation whose results are written to the disk cache.
pub fn compile(installed: &[u8]) -> Result<Arc<CompiledModule>, EmulatorError> {
    let hash = sha256(installed);
    if let Some(m) = memory_cache().lock().unwrap().get(&hash) {
        return Ok(m.clone());
    }
    let dir = disk_cache_dir();
    // The key covers the module, the rewrite's source and the crate version, so a changed
    // rewrite never loads a stale compiled module.
    let rewrite = sha256(instrument::SOURCE.as_bytes());
    let key = format!(
        "{}-v{INSTRUMENTATION_VERSION}-{}-{}",
        hex::encode(hash),
        hex::encode(&rewrite[..6]),
        env!("CARGO_PKG_VERSION")
    );
    let path = dir.join(format!("{key}.cwasm"));
    let info_path = dir.join(format!("{key}.info"));
    let cached_info: Option<ModuleInfo> = std::fs::read(&info_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    // SAFETY: the file was written by `Module::serialize` of this same engine configuration
    // (the key carries the rewrite and crate versions; wasmtime checks its own compatibility).
    let cached = cached_info
        .as_ref()
        .and_then(|_| unsafe { Module::deserialize_file(engine(), &path) }.ok());
    let (module, info) = match (cached, cached_info) {
        (Some(m), Some(info)) => (m, info),
        _ => {
            let wasm = decompress(installed)?;
            let (rewritten, info) = instrument::instrument(&wasm)?;
            for (module, name) in &info.imports {
                if module != "ic0" || !ic0_functions().contains_key(name) {
                    return Err(EmulatorError::UnknownImport {
                        module: module.clone(),
                        name: name.clone(),
                    });
                }
            }
            let m = Module::new(engine(), &rewritten)
                .map_err(|e| EmulatorError::Engine(format!("{e:?}")))?;
            if let Ok(bytes) = m.serialize() {
                let _ = std::fs::create_dir_all(&dir);
                let tag = format!("{}.tmp{}", hex::encode(hash), std::process::id());
                let (tmp, tmp_info) = (dir.join(&tag), dir.join(format!("{tag}i")));
                let info_json = serde_json::to_vec(&info).unwrap_or_default();
                if std::fs::write(&tmp, bytes).is_ok()
                    && std::fs::rename(&tmp, &path).is_ok()
                    && std::fs::write(&tmp_info, info_json).is_ok()
                {
                    let _ = std::fs::rename(&tmp_info, &info_path);
                }
            }
            (m, info)
        }
    };
    let compiled = Arc::new(CompiledModule {
        hash,
        module,
        info,
        installed: Arc::from(installed),
    });
    memory_cache()
        .lock()
        .unwrap()
        .insert(hash, compiled.clone());
    Ok(compiled)
}

/// What to run.
#[derive(Debug, Clone)]
pub enum Entry {
    /// An exported function by name.
    Export(String),
    /// A closure from the function table: `(index, env)`.
    Closure(u32, u32),
}

/// The outcome of one execution.
pub struct Execution {
    /// The context after the run (reply, calls, prints, ...).
    pub msg: MessageCtx,
    /// Instructions used.
    pub instructions: u64,
    /// `Some` if it trapped.
    pub trap: Option<TrapKind>,
}

/// A live canister instance with a committed heap image.
pub struct CanisterInstance {
    module: Arc<CompiledModule>,
    store: Store<Ctx>,
    instance: wasmtime::Instance,
    table: Option<Table>,
    globals: Vec<Global>,
    committed_heap: Vec<u8>,
    committed_globals: Vec<Val>,
    /// Committed heap pages changed since the last [`mark_saved`](Self::mark_saved).
    unsaved: std::collections::BTreeSet<usize>,
    /// Whether a saved copy of the committed image exists (else everything is unsaved).
    saved_base: bool,
}

/// A mutable global's value in a state snapshot.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum GlobalValue {
    /// `i32`.
    I32(i32),
    /// `i64`.
    I64(i64),
    /// `f32` bits.
    F32(u32),
    /// `f64` bits.
    F64(u64),
    /// `v128`.
    V128(u128),
}

impl GlobalValue {
    fn from_val(v: &Val) -> Option<Self> {
        Some(match v {
            Val::I32(x) => Self::I32(*x),
            Val::I64(x) => Self::I64(*x),
            Val::F32(x) => Self::F32(*x),
            Val::F64(x) => Self::F64(*x),
            Val::V128(x) => Self::V128(x.as_u128()),
            _ => return None,
        })
    }

    fn to_val(self) -> Val {
        match self {
            Self::I32(x) => Val::I32(x),
            Self::I64(x) => Val::I64(x),
            Self::F32(x) => Val::F32(x),
            Self::F64(x) => Val::F64(x),
            Self::V128(x) => Val::V128(x.into()),
        }
    }
}

impl CanisterInstance {
    /// Instantiates `module` with a fresh heap.
    pub fn new(module: Arc<CompiledModule>) -> Result<Self, EmulatorError> {
        let mut store = Store::new(engine(), Ctx::default());
        let instance = linker()
            .instantiate(&mut store, &module.module)
            .map_err(|e| EmulatorError::Engine(format!("instantiate: {e:?}")))?;
        let memory = instance.get_memory(&mut store, "memory").or_else(|| {
            module.module.exports().find_map(|e| {
                e.ty().memory().and_then(|_| {
                    (e.name() != BYTEMAP_EXPORT).then(|| instance.get_memory(&mut store, e.name()))
                })?
            })
        });
        let bytemap = instance.get_memory(&mut store, BYTEMAP_EXPORT);
        let counter = instance.get_global(&mut store, COUNTER_EXPORT);
        let table = instance.get_table(&mut store, TABLE_EXPORT);
        let globals: Vec<Global> = module
            .info
            .global_exports
            .iter()
            .filter_map(|n| instance.get_global(&mut store, n))
            .collect();
        store.data_mut().memory = memory;
        store.data_mut().bytemap = bytemap;
        store.data_mut().counter = counter;
        let committed_heap = memory.map(|m| m.data(&store).to_vec()).unwrap_or_default();
        let committed_globals = globals.iter().map(|g| g.get(&mut store)).collect();
        Ok(Self {
            module,
            store,
            instance,
            table,
            globals,
            committed_heap,
            committed_globals,
            unsaved: Default::default(),
            saved_base: false,
        })
    }

    /// Re-creates an instance of `module` from a saved committed image (heap and mutable
    /// globals, see [`heap_image`](Self::heap_image) and [`globals`](Self::globals)). The
    /// restored image counts as saved.
    pub fn restore(
        module: Arc<CompiledModule>,
        heap: Vec<u8>,
        globals: &[GlobalValue],
    ) -> Result<Self, EmulatorError> {
        let mut inst = Self::new(module)?;
        if globals.len() != inst.globals.len() {
            return Err(EmulatorError::Engine(format!(
                "snapshot has {} globals, the module {}",
                globals.len(),
                inst.globals.len()
            )));
        }
        let globals = globals.iter().map(|g| g.to_val()).collect();
        inst.restore_image(heap, globals)?;
        inst.unsaved.clear();
        inst.saved_base = true;
        Ok(inst)
    }

    /// The committed heap.
    pub fn heap_image(&self) -> &[u8] {
        &self.committed_heap
    }

    /// The committed values of the module's mutable globals.
    pub fn globals(&self) -> Vec<GlobalValue> {
        self.committed_globals
            .iter()
            .filter_map(GlobalValue::from_val)
            .collect()
    }

    /// Committed heap pages (4 KiB) changed since the last save, or `None` when the whole
    /// image must be written (never saved: a new instance).
    pub fn unsaved_pages(&self) -> Option<Vec<usize>> {
        self.saved_base
            .then(|| self.unsaved.iter().copied().collect())
    }

    /// Records that the committed image has been saved.
    pub fn mark_saved(&mut self) {
        self.unsaved.clear();
        self.saved_base = true;
    }

    /// The module this instance runs.
    pub fn module(&self) -> &Arc<CompiledModule> {
        &self.module
    }

    /// Committed heap size in bytes.
    pub fn heap_size(&self) -> usize {
        self.committed_heap.len()
    }

    /// Runs `entry` with `msg`; the heap stays as the run left it until
    /// [`commit`](Self::commit) or [`rollback`](Self::rollback).
    pub fn run(&mut self, entry: &Entry, msg: MessageCtx) -> Execution {
        let limit = msg.limit;
        self.store.data_mut().msg = msg;
        let counter = self
            .store
            .data()
            .counter
            .expect("instrumented module has a counter");
        let _ = counter.set(&mut self.store, Val::I64(limit.min(i64::MAX as u64) as i64));
        let result: wasmtime::Result<()> = match entry {
            Entry::Export(name) => match self
                .instance
                .get_typed_func::<(), ()>(&mut self.store, name)
            {
                Ok(f) => f.call(&mut self.store, ()),
                Err(e) => Err(e),
            },
            Entry::Closure(idx, env) => self.call_closure(*idx, *env),
        };
        let left = counter.get(&mut self.store).i64().unwrap_or(0);
        let instructions = (limit as i64 - left).max(0) as u64;
        let mut msg = std::mem::take(&mut self.store.data_mut().msg);
        let trap = match result {
            Ok(()) => None,
            Err(e) => Some(msg.trap.take().unwrap_or_else(|| {
                if left < 0 {
                    TrapKind::InstructionLimit(limit)
                } else {
                    match e.downcast_ref::<wasmtime::Trap>() {
                        Some(t) => TrapKind::Wasm(t.to_string()),
                        None => TrapKind::Wasm(format!("{e}")),
                    }
                }
            })),
        };
        Execution {
            msg,
            instructions: instructions.min(limit),
            trap,
        }
    }

    fn call_closure(&mut self, idx: u32, env: u32) -> wasmtime::Result<()> {
        let table = self
            .table
            .ok_or_else(|| wasmtime::Error::msg("module has no function table"))?;
        let f = table
            .get(&mut self.store, idx as u64)
            .and_then(|r| r.as_func().flatten().cloned())
            .ok_or_else(|| wasmtime::Error::msg(format!("no function at table index {idx}")))?;
        let f = f.typed::<u32, ()>(&self.store)?;
        f.call(&mut self.store, env)
    }

    fn dirty_pages(&mut self) -> Vec<usize> {
        let Some(map) = self.store.data().bytemap else {
            return Vec::new();
        };
        let heap_len = self
            .store
            .data()
            .memory
            .map(|m| m.data_size(&self.store))
            .unwrap_or(0);
        let pages = heap_len.div_ceil(PAGE_SIZE);
        let data = map.data(&self.store);
        data[..pages.min(data.len())]
            .iter()
            .enumerate()
            .filter_map(|(i, b)| (*b != 0).then_some(i))
            .collect()
    }

    fn clear_marks(&mut self, pages: &[usize]) {
        if let Some(map) = self.store.data().bytemap {
            let data = map.data_mut(&mut self.store);
            for p in pages {
                data[*p] = 0;
            }
        }
    }

    /// Keeps the last run's heap and globals; returns the bytes of heap it dirtied.
    pub fn commit(&mut self) -> u64 {
        let pages = self.dirty_pages();
        if let Some(mem) = self.store.data().memory {
            let data = mem.data(&self.store);
            if data.len() > self.committed_heap.len() {
                self.committed_heap.resize(data.len(), 0);
            }
            for p in &pages {
                let s = p * PAGE_SIZE;
                let e = (s + PAGE_SIZE).min(data.len());
                self.committed_heap[s..e].copy_from_slice(&data[s..e]);
            }
        }
        self.clear_marks(&pages);
        if self.saved_base {
            self.unsaved.extend(pages.iter().copied());
        }
        self.committed_globals = self
            .globals
            .iter()
            .map(|g| g.get(&mut self.store))
            .collect();
        (pages.len() * PAGE_SIZE) as u64
    }

    /// Undoes the last run: heap, memory growth and globals back to the last commit.
    pub fn rollback(&mut self) -> Result<(), EmulatorError> {
        let grown = self
            .store
            .data()
            .memory
            .is_some_and(|m| m.data_size(&self.store) > self.committed_heap.len());
        if grown {
            // Wasm memories cannot shrink: start a new instance from the committed image.
            let heap = std::mem::take(&mut self.committed_heap);
            let globals = std::mem::take(&mut self.committed_globals);
            let unsaved = std::mem::take(&mut self.unsaved);
            let saved_base = self.saved_base;
            *self = Self::new(self.module.clone())?;
            self.restore_image(heap, globals)?;
            self.unsaved = unsaved;
            self.saved_base = saved_base;
            return Ok(());
        }
        let pages = self.dirty_pages();
        if let Some(mem) = self.store.data().memory {
            let data = mem.data_mut(&mut self.store);
            for p in &pages {
                let s = p * PAGE_SIZE;
                let e = (s + PAGE_SIZE).min(data.len());
                data[s..e].copy_from_slice(&self.committed_heap[s..e]);
            }
        }
        self.clear_marks(&pages);
        for (g, v) in self.globals.iter().zip(self.committed_globals.iter()) {
            let _ = g.set(&mut self.store, *v);
        }
        Ok(())
    }

    fn restore_image(&mut self, heap: Vec<u8>, globals: Vec<Val>) -> Result<(), EmulatorError> {
        if let Some(mem) = self.store.data().memory {
            let cur = mem.data_size(&self.store);
            if heap.len() > cur {
                let delta = (heap.len() - cur).div_ceil(65536) as u64;
                mem.grow(&mut self.store, delta)
                    .map_err(|e| EmulatorError::Engine(format!("grow: {e:?}")))?;
            }
            mem.data_mut(&mut self.store)[..heap.len()].copy_from_slice(&heap);
        }
        for (g, v) in self.globals.iter().zip(globals.iter()) {
            let _ = g.set(&mut self.store, *v);
        }
        self.committed_heap = heap;
        self.committed_globals = globals;
        Ok(())
    }
}
