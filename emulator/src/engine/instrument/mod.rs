//! Rewrites a canister module before it runs, as the replica does.
//!
//! * Exports the function table as `table` (Rust cdylibs do not), so callbacks can be called by index.
//! * Injects instruction counting with the IC's cost table ([`instruction_cost`]): a mutable `i64`
//!   global (`canister counter_instructions`) is decremented at the start of every basic block by
//!   the summed cost of the block; at function entries and loop headers it is also checked, and
//!   when it is negative the function `__emu_out_of_instructions` traps. Bulk memory and table
//!   operations additionally pay 1 per byte/element through `__emu_charge_dynamic`.
//! * Tracks dirtied heap pages: every store to memory 0 (and every bulk write) marks its 4 KiB
//!   pages in an extra memory, the *bytemap*, exported as `__emu_bytemap`. Rollback and commit
//!   then cost what a message changed, not what the heap holds.
//! * Exports every mutable global as `__emu_global_<index>` so it can be saved and restored.
//!
//! Everything is appended (types, functions, globals, memories), so no existing index moves.

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, CustomSection, DataCountSection, DataSection,
    ElementSection, ExportKind, ExportSection, Function, FunctionSection, GlobalSection,
    GlobalType, ImportSection, Instruction, MemArg, MemorySection, MemoryType, Module,
    StartSection, TableSection, TagSection, TypeSection, ValType,
};
use wasmparser::{ExternalKind, Operator, Parser, Payload, TypeRef};

use crate::error::EmulatorError;

mod cost;
mod emit;

pub use cost::instruction_cost;
use cost::{ends_block, store_kind};
use emit::*;

/// The rewrite's source: part of the compiled-module cache key.
pub const SOURCE: &str = concat!(
    include_str!("mod.rs"),
    include_str!("cost.rs"),
    include_str!("emit.rs")
);

/// Export name of the instruction counter global (the replica's name).
pub const COUNTER_EXPORT: &str = "canister counter_instructions";
/// Export name of the dirty-page bytemap memory.
pub const BYTEMAP_EXPORT: &str = "__emu_bytemap";
/// Export name of the function table.
pub const TABLE_EXPORT: &str = "table";
/// Prefix of the exports of mutable globals.
pub const GLOBAL_EXPORT_PREFIX: &str = "__emu_global_";
/// Granularity of dirty-page tracking (an OS page, as on the replica).
pub const PAGE_SIZE: usize = 4096;
/// Bytemap size in wasm pages: one byte per 4 KiB page of a 4 GiB heap.
const BYTEMAP_WASM_PAGES: u64 = (1 << 32) / PAGE_SIZE as u64 / 65536;

/// What the rewrite learned about the module.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ModuleInfo {
    /// `(module, name)` of every function import.
    pub imports: Vec<(String, String)>,
    /// Names of exported functions.
    pub exported_functions: Vec<String>,
    /// Names of the exported mutable globals added by the rewrite.
    pub global_exports: Vec<String>,
    /// Whether the module has a function table (exported as [`TABLE_EXPORT`]).
    pub has_table: bool,
    /// Whether the module defines memory 0 (required for the dirty-page tracking).
    pub has_memory: bool,
    /// Custom sections `icp:public <name>` / `icp:private <name>`: `(name, is_public, bytes)`.
    pub metadata: Vec<(String, bool, Vec<u8>)>,
}

/// Indices the injected code refers to.
#[derive(Clone, Copy)]
pub(super) struct Injected {
    counter: u32,
    bytemap: u32,
    oom_fn: u32,
    charge_fn: u32,
    mark_fn: u32,
    track_stores: bool,
}

/// Extra locals appended to every function: i32 addr, i32 a, i32 b, i64, f32, f64, v128.
pub(super) struct Temps {
    addr: u32,
    a: u32,
    b: u32,
    i64: u32,
    f32: u32,
    f64: u32,
    v128: u32,
}

fn err(msg: impl Into<String>) -> EmulatorError {
    EmulatorError::InvalidWasm(msg.into())
}

/// Rewrites `wasm` (already decompressed); returns the new module and what was learned.
pub fn instrument(wasm: &[u8]) -> Result<(Vec<u8>, ModuleInfo), EmulatorError> {
    let mut info = ModuleInfo::default();
    let mut re = RoundtripReencoder;
    let e = |x: wasm_encoder::reencode::Error| err(x.to_string());
    let pe = |x: wasmparser::BinaryReaderError| err(x.to_string());

    // Pass 1: counts and signatures.
    let mut func_types: Vec<wasmparser::FuncType> = Vec::new();
    let mut n_types = 0u32;
    let mut imported_funcs = 0u32;
    let mut imported_globals = 0u32;
    let mut imported_mems = 0u32;
    let mut defined_funcs: Vec<u32> = Vec::new();
    let mut defined_globals: Vec<bool> = Vec::new(); // mutability
    let mut defined_mems = 0u32;
    let mut tables = 0u32;
    let mut table_exported = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(pe)? {
            Payload::TypeSection(r) => {
                for group in r {
                    for sub in group.map_err(pe)?.into_types() {
                        n_types += 1;
                        match sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => func_types.push(f),
                            _ => return Err(err("only function types are supported")),
                        }
                    }
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports() {
                    let imp = imp.map_err(pe)?;
                    match imp.ty {
                        TypeRef::Func(_) => {
                            imported_funcs += 1;
                            info.imports
                                .push((imp.module.to_string(), imp.name.to_string()));
                        }
                        TypeRef::Global(_) => imported_globals += 1,
                        TypeRef::Memory(_) => imported_mems += 1,
                        TypeRef::Table(_) => tables += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(r) => {
                for t in r {
                    defined_funcs.push(t.map_err(pe)?);
                }
            }
            Payload::TableSection(r) => tables += r.count(),
            Payload::MemorySection(r) => defined_mems += r.count(),
            Payload::GlobalSection(r) => {
                for g in r {
                    defined_globals.push(g.map_err(pe)?.ty.mutable);
                }
            }
            Payload::ExportSection(r) => {
                for ex in r {
                    let ex = ex.map_err(pe)?;
                    match ex.kind {
                        ExternalKind::Func => info.exported_functions.push(ex.name.to_string()),
                        ExternalKind::Table if ex.index == 0 && ex.name == TABLE_EXPORT => {
                            table_exported = true
                        }
                        _ => {}
                    }
                }
            }
            Payload::CustomSection(c) => {
                let name = c.name();
                if let Some(n) = name.strip_prefix("icp:public ") {
                    info.metadata.push((n.to_string(), true, c.data().to_vec()));
                } else if let Some(n) = name.strip_prefix("icp:private ") {
                    info.metadata
                        .push((n.to_string(), false, c.data().to_vec()));
                }
            }
            _ => {}
        }
    }
    if imported_mems > 0 {
        return Err(err("imported memories are not supported"));
    }
    info.has_table = tables > 0;
    info.has_memory = defined_mems > 0;

    let inj = Injected {
        counter: imported_globals + defined_globals.len() as u32,
        bytemap: defined_mems,
        oom_fn: imported_funcs + defined_funcs.len() as u32,
        charge_fn: imported_funcs + defined_funcs.len() as u32 + 1,
        mark_fn: imported_funcs + defined_funcs.len() as u32 + 2,
        track_stores: defined_mems > 0,
    };
    let ty_void = n_types;
    let ty_charge = n_types + 1;
    let ty_mark = n_types + 2;

    // Pass 2: re-encode with additions.
    let mut types = TypeSection::new();
    let mut imports: Option<ImportSection> = None;
    let mut functions = FunctionSection::new();
    let mut table_sec: Option<TableSection> = None;
    let mut memories = MemorySection::new();
    let mut tags: Option<TagSection> = None;
    let mut globals = GlobalSection::new();
    let mut exports = ExportSection::new();
    let mut start: Option<StartSection> = None;
    let mut elements: Option<ElementSection> = None;
    let mut data_count: Option<DataCountSection> = None;
    let mut code = CodeSection::new();
    let mut data: Option<DataSection> = None;
    let mut customs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut func_idx = 0usize;

    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(pe)? {
            Payload::TypeSection(r) => re.parse_type_section(&mut types, r).map_err(e)?,
            Payload::ImportSection(r) => {
                let mut s = ImportSection::new();
                re.parse_import_section(&mut s, r).map_err(e)?;
                imports = Some(s);
            }
            Payload::FunctionSection(r) => {
                re.parse_function_section(&mut functions, r).map_err(e)?
            }
            Payload::TableSection(r) => {
                let mut s = TableSection::new();
                re.parse_table_section(&mut s, r).map_err(e)?;
                table_sec = Some(s);
            }
            Payload::MemorySection(r) => re.parse_memory_section(&mut memories, r).map_err(e)?,
            Payload::TagSection(r) => {
                let mut s = TagSection::new();
                re.parse_tag_section(&mut s, r).map_err(e)?;
                tags = Some(s);
            }
            Payload::GlobalSection(r) => re.parse_global_section(&mut globals, r).map_err(e)?,
            Payload::ExportSection(r) => re.parse_export_section(&mut exports, r).map_err(e)?,
            Payload::StartSection { func, .. } => {
                start = Some(StartSection {
                    function_index: func,
                })
            }
            Payload::ElementSection(r) => {
                let mut s = ElementSection::new();
                re.parse_element_section(&mut s, r).map_err(e)?;
                elements = Some(s);
            }
            Payload::DataCountSection { count, .. } => {
                data_count = Some(DataCountSection { count })
            }
            Payload::DataSection(r) => {
                let mut s = DataSection::new();
                re.parse_data_section(&mut s, r).map_err(e)?;
                data = Some(s);
            }
            Payload::CodeSectionEntry(body) => {
                let ty = &func_types[defined_funcs[func_idx] as usize];
                func_idx += 1;
                code.function(&instrument_body(
                    &mut re,
                    body,
                    ty.params().len() as u32,
                    inj,
                )?);
            }
            Payload::CustomSection(c) => customs.push((c.name().to_string(), c.data().to_vec())),
            _ => {}
        }
    }

    // Injected types and functions.
    types.ty().function([], []);
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32, ValType::I32], []);
    functions.function(ty_void);
    functions.function(ty_charge);
    functions.function(ty_mark);
    code.function(&oom_body());
    code.function(&charge_body(inj));
    code.function(&mark_body(inj));
    globals.global(
        GlobalType {
            val_type: ValType::I64,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i64_const(0),
    );
    memories.memory(MemoryType {
        minimum: BYTEMAP_WASM_PAGES,
        maximum: Some(BYTEMAP_WASM_PAGES),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    exports.export(COUNTER_EXPORT, ExportKind::Global, inj.counter);
    exports.export(BYTEMAP_EXPORT, ExportKind::Memory, inj.bytemap);
    if info.has_table && !table_exported {
        exports.export(TABLE_EXPORT, ExportKind::Table, 0);
    }
    for (i, mutable) in defined_globals.iter().enumerate() {
        if *mutable {
            let name = format!("{GLOBAL_EXPORT_PREFIX}{}", imported_globals as usize + i);
            exports.export(&name, ExportKind::Global, imported_globals + i as u32);
            info.global_exports.push(name);
        }
    }

    let mut module = Module::new();
    module.section(&types);
    if let Some(s) = &imports {
        module.section(s);
    }
    module.section(&functions);
    if let Some(s) = &table_sec {
        module.section(s);
    }
    module.section(&memories);
    if let Some(s) = &tags {
        module.section(s);
    }
    module.section(&globals);
    module.section(&exports);
    if let Some(s) = &start {
        module.section(s);
    }
    if let Some(s) = &elements {
        module.section(s);
    }
    if let Some(s) = &data_count {
        module.section(s);
    }
    module.section(&code);
    if let Some(s) = &data {
        module.section(s);
    }
    for (name, bytes) in &customs {
        if name == "name" {
            // Keep function names for readable traps.
            module.section(&CustomSection {
                name: name.into(),
                data: bytes.into(),
            });
        }
    }
    Ok((module.finish(), info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_ic_table() {
        assert_eq!(instruction_cost(&Operator::Call { function_index: 0 }), 5);
        assert_eq!(instruction_cost(&Operator::I64DivU), 10);
        assert_eq!(instruction_cost(&Operator::Br { relative_depth: 0 }), 2);
        assert_eq!(instruction_cost(&Operator::I32Add), 1);
        assert_eq!(instruction_cost(&Operator::End), 0);
        assert_eq!(
            instruction_cost(&Operator::MemoryCopy {
                dst_mem: 0,
                src_mem: 0
            }),
            100
        );
    }
}
