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

/// This file's source: part of the compiled-module cache key.
pub const SOURCE: &str = include_str!("instrument.rs");

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

/// The IC's static cost of one instruction (dfinity/ic `instruction_to_cost`, wasm32).
pub fn instruction_cost(op: &Operator) -> u64 {
    use Operator::*;
    match op {
        Block { .. } | Else | End | Loop { .. } => 0,
        I32DivS | I32DivU | I32RemS | I32RemU | I64DivS | I64DivU | I64RemS | I64RemU => 10,
        F32Add | F32Sub | F32Mul | F32Ceil | F32Floor | F32Trunc | F32Nearest | F64Add | F64Sub
        | F64Mul | F64Ceil | F64Floor | F64Trunc | F64Nearest => 2,
        F32Div => 3,
        F64Div => 5,
        F32Min | F32Max | F64Min | F64Max => 18,
        F32Copysign => 2,
        F64Copysign => 3,
        F32Sqrt => 5,
        F64Sqrt => 8,
        F32Eq | F32Ne | F32Lt | F32Gt | F32Le | F32Ge | F64Eq | F64Ne | F64Lt | F64Gt | F64Le
        | F64Ge => 3,
        F32ConvertI32S | F64ConvertI64S | F32ConvertI64S | F64ConvertI32S => 3,
        F64ConvertI32U | F32ConvertI64U | F32ConvertI32U | F64ConvertI64U => 16,
        I64TruncSatF32S | I64TruncSatF32U | I64TruncSatF64S | I64TruncSatF64U | I32TruncSatF32S
        | I32TruncSatF32U | I32TruncSatF64S | I32TruncSatF64U => 20,
        I32TruncF32S | I32TruncF32U | I32TruncF64S | I32TruncF64U | I64TruncF32S | I64TruncF32U
        | I64TruncF64S | I64TruncF64U => 20,
        GlobalGet { .. } | GlobalSet { .. } => 2,
        TableGet { .. } | TableSet { .. } => 5,
        TableGrow { .. } | MemoryGrow { .. } => 300,
        MemorySize { .. } => 20,
        TableSize { .. } => 100,
        MemoryFill { .. }
        | MemoryCopy { .. }
        | TableFill { .. }
        | TableCopy { .. }
        | MemoryInit { .. }
        | TableInit { .. } => 100,
        DataDrop { .. } | ElemDrop { .. } => 300,
        Call { .. } => 5,
        CallIndirect { .. } => 10,
        ReturnCall { .. } => 3,
        ReturnCallIndirect { .. } => 60,
        If { .. } | Br { .. } | BrIf { .. } | BrTable { .. } => 2,
        RefIsNull => 5,
        RefFunc { .. } => 130,
        I8x16Shuffle { .. } => 3,
        I8x16LtU | I8x16GtU | I16x8LtU | I16x8GtU | I32x4LtU | I32x4GtU => 2,
        I8x16Popcnt | I8x16Shl | I8x16ShrS => 3,
        I8x16ShrU | I16x8ExtAddPairwiseI8x16U | I16x8Shl | I16x8ShrS | I16x8ShrU => 2,
        I16x8ExtMulHighI8x16S | I16x8ExtMulHighI8x16U => 2,
        I32x4ExtAddPairwiseI16x8U => 3,
        I32x4Shl | I32x4ShrS | I32x4ShrU | I32x4Mul => 2,
        I32x4ExtMulLowI16x8S
        | I32x4ExtMulHighI16x8S
        | I32x4ExtMulLowI16x8U
        | I32x4ExtMulHighI16x8U => 2,
        I64x2Shl | I64x2ShrU => 2,
        I64x2ShrS => 3,
        I64x2Mul => 4,
        F32x4Ceil | F32x4Floor | F32x4Trunc | F32x4Nearest | F32x4Abs | F32x4Neg | F32x4Add
        | F32x4Sub | F32x4Mul => 2,
        F32x4Sqrt => 5,
        F32x4Div => 10,
        F32x4Min | F32x4Max => 4,
        F64x2Ceil | F64x2Floor | F64x2Trunc | F64x2Nearest | F64x2Abs | F64x2Neg | F64x2Add
        | F64x2Sub | F64x2Mul => 2,
        F64x2Sqrt => 14,
        F64x2Div => 12,
        F64x2Min => 4,
        F64x2Max => 5,
        I32x4TruncSatF32x4S => 2,
        I32x4TruncSatF32x4U | F32x4ConvertI32x4U => 4,
        I32x4TruncSatF64x2SZero => 2,
        I32x4TruncSatF64x2UZero => 3,
        // Constants, integer arithmetic and comparisons, loads/stores, locals, select, drop,
        // return, unreachable, nop and the remaining SIMD operators cost 1.
        _ => 1,
    }
}

/// Does this operator end a basic block (the next one starts right after it)?
fn ends_block(op: &Operator) -> bool {
    use Operator::*;
    matches!(
        op,
        Block { .. }
            | Loop { .. }
            | If { .. }
            | Else
            | End
            | Br { .. }
            | BrIf { .. }
            | BrTable { .. }
            | Return
            | Unreachable
            | Call { .. }
            | CallIndirect { .. }
            | ReturnCall { .. }
            | ReturnCallIndirect { .. }
    )
}

/// The value type and byte width of a store to memory 0, if `op` is one.
fn store_kind(op: &Operator) -> Option<(ValType, u32, u64)> {
    use Operator::*;
    let (ty, width, memarg) = match op {
        I32Store { memarg } => (ValType::I32, 4, memarg),
        I64Store { memarg } => (ValType::I64, 8, memarg),
        F32Store { memarg } => (ValType::F32, 4, memarg),
        F64Store { memarg } => (ValType::F64, 8, memarg),
        I32Store8 { memarg } => (ValType::I32, 1, memarg),
        I32Store16 { memarg } => (ValType::I32, 2, memarg),
        I64Store8 { memarg } => (ValType::I64, 1, memarg),
        I64Store16 { memarg } => (ValType::I64, 2, memarg),
        I64Store32 { memarg } => (ValType::I64, 4, memarg),
        V128Store { memarg } => (ValType::V128, 16, memarg),
        V128Store8Lane { memarg, .. }
        | V128Store16Lane { memarg, .. }
        | V128Store32Lane { memarg, .. }
        | V128Store64Lane { memarg, .. } => (ValType::V128, 8, memarg),
        _ => return None,
    };
    if memarg.memory != 0 {
        return None;
    }
    Some((ty, width, memarg.offset))
}

/// Indices the injected code refers to.
#[derive(Clone, Copy)]
struct Injected {
    counter: u32,
    bytemap: u32,
    oom_fn: u32,
    charge_fn: u32,
    mark_fn: u32,
    track_stores: bool,
}

/// Extra locals appended to every function: i32 addr, i32 a, i32 b, i64, f32, f64, v128.
struct Temps {
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

fn charge(f: &mut Function, inj: Injected, cost: u64, check: bool) {
    if cost > 0 {
        f.instruction(&Instruction::GlobalGet(inj.counter));
        f.instruction(&Instruction::I64Const(cost as i64));
        f.instruction(&Instruction::I64Sub);
        f.instruction(&Instruction::GlobalSet(inj.counter));
    }
    if check {
        f.instruction(&Instruction::GlobalGet(inj.counter));
        f.instruction(&Instruction::I64Const(0));
        f.instruction(&Instruction::I64LtS);
        f.instruction(&Instruction::If(BlockType::Empty));
        f.instruction(&Instruction::Call(inj.oom_fn));
        f.instruction(&Instruction::End);
    }
}

fn bytemap_store(inj: Injected) -> Instruction<'static> {
    Instruction::I32Store8(MemArg {
        offset: 0,
        align: 0,
        memory_index: inj.bytemap,
    })
}

/// Marks the page of `addr_local + offset` as dirty.
fn mark_page(f: &mut Function, inj: Injected, addr_local: u32, offset: u64) {
    f.instruction(&Instruction::LocalGet(addr_local));
    if offset != 0 {
        f.instruction(&Instruction::I32Const(offset as u32 as i32));
        f.instruction(&Instruction::I32Add);
    }
    f.instruction(&Instruction::I32Const(12));
    f.instruction(&Instruction::I32ShrU);
    f.instruction(&Instruction::I32Const(1));
    f.instruction(&bytemap_store(inj));
}

fn emit_op(
    re: &mut RoundtripReencoder,
    f: &mut Function,
    op: Operator,
    inj: Injected,
    t: &Temps,
) -> Result<(), EmulatorError> {
    let e = |x: wasm_encoder::reencode::Error| err(x.to_string());
    if inj.track_stores {
        if let Some((ty, width, offset)) = store_kind(&op) {
            let val = match ty {
                ValType::I32 => t.a,
                ValType::I64 => t.i64,
                ValType::F32 => t.f32,
                ValType::F64 => t.f64,
                _ => t.v128,
            };
            f.instruction(&Instruction::LocalSet(val));
            f.instruction(&Instruction::LocalSet(t.addr));
            mark_page(f, inj, t.addr, offset);
            if width > 1 {
                mark_page(f, inj, t.addr, offset + width as u64 - 1);
            }
            f.instruction(&Instruction::LocalGet(t.addr));
            f.instruction(&Instruction::LocalGet(val));
            f.instruction(&re.instruction(op).map_err(e)?);
            return Ok(());
        }
        match op {
            Operator::MemoryFill { mem: 0 }
            | Operator::MemoryCopy { dst_mem: 0, .. }
            | Operator::MemoryInit { mem: 0, .. } => {
                // Stack: [dst, src_or_value, len].
                f.instruction(&Instruction::LocalSet(t.b));
                f.instruction(&Instruction::LocalSet(t.a));
                f.instruction(&Instruction::LocalSet(t.addr));
                f.instruction(&Instruction::LocalGet(t.addr));
                f.instruction(&Instruction::LocalGet(t.b));
                f.instruction(&Instruction::Call(inj.mark_fn));
                f.instruction(&Instruction::LocalGet(t.addr));
                f.instruction(&Instruction::LocalGet(t.a));
                f.instruction(&Instruction::LocalGet(t.b));
                f.instruction(&Instruction::Call(inj.charge_fn));
                f.instruction(&re.instruction(op).map_err(e)?);
                return Ok(());
            }
            _ => {}
        }
    }
    if matches!(
        op,
        Operator::MemoryFill { .. }
            | Operator::MemoryCopy { .. }
            | Operator::MemoryInit { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. }
    ) {
        // The length is on top of the stack.
        f.instruction(&Instruction::Call(inj.charge_fn));
    }
    f.instruction(&re.instruction(op).map_err(e)?);
    Ok(())
}

fn instrument_body(
    re: &mut RoundtripReencoder,
    body: wasmparser::FunctionBody,
    n_params: u32,
    inj: Injected,
) -> Result<Function, EmulatorError> {
    let pe = |x: wasmparser::BinaryReaderError| err(x.to_string());
    let e = |x: wasm_encoder::reencode::Error| err(x.to_string());
    let mut locals: Vec<(u32, ValType)> = Vec::new();
    let mut n_locals = n_params;
    for l in body.get_locals_reader().map_err(pe)? {
        let (count, ty) = l.map_err(pe)?;
        n_locals += count;
        locals.push((count, re.val_type(ty).map_err(e)?));
    }
    let t = Temps {
        addr: n_locals,
        a: n_locals + 1,
        b: n_locals + 2,
        i64: n_locals + 3,
        f32: n_locals + 4,
        f64: n_locals + 5,
        v128: n_locals + 6,
    };
    locals.push((3, ValType::I32));
    locals.push((1, ValType::I64));
    locals.push((1, ValType::F32));
    locals.push((1, ValType::F64));
    locals.push((1, ValType::V128));
    let mut f = Function::new(locals);

    let mut block: Vec<Operator> = Vec::new();
    let mut cost = 0u64;
    let mut reentrant = true;
    let mut reader = body.get_operators_reader().map_err(pe)?;
    while !reader.eof() {
        let op = reader.read().map_err(pe)?;
        cost += instruction_cost(&op);
        let boundary = ends_block(&op);
        let is_loop = matches!(op, Operator::Loop { .. });
        block.push(op);
        if boundary {
            charge(&mut f, inj, cost, reentrant);
            for op in block.drain(..) {
                emit_op(re, &mut f, op, inj, &t)?;
            }
            cost = 0;
            reentrant = is_loop;
        }
    }
    if !block.is_empty() {
        return Err(err("function body does not end with `end`"));
    }
    Ok(f)
}

fn oom_body() -> Function {
    let mut f = Function::new([]);
    f.instruction(&Instruction::Unreachable);
    f.instruction(&Instruction::End);
    f
}

/// `(param $n i32) (result i32)`: counter -= n; trap when negative; return n.
fn charge_body(inj: Injected) -> Function {
    let mut f = Function::new([]);
    f.instruction(&Instruction::GlobalGet(inj.counter));
    f.instruction(&Instruction::LocalGet(0));
    f.instruction(&Instruction::I64ExtendI32U);
    f.instruction(&Instruction::I64Sub);
    f.instruction(&Instruction::GlobalSet(inj.counter));
    f.instruction(&Instruction::GlobalGet(inj.counter));
    f.instruction(&Instruction::I64Const(0));
    f.instruction(&Instruction::I64LtS);
    f.instruction(&Instruction::If(BlockType::Empty));
    f.instruction(&Instruction::Call(inj.oom_fn));
    f.instruction(&Instruction::End);
    f.instruction(&Instruction::LocalGet(0));
    f.instruction(&Instruction::End);
    f
}

/// `(param $dst i32) (param $len i32)`: marks the pages of `[dst, dst + len)` dirty.
fn mark_body(inj: Injected) -> Function {
    // local 2: page, local 3: last page
    let mut f = Function::new([(2, ValType::I32)]);
    if inj.track_stores {
        f.instruction(&Instruction::LocalGet(1));
        f.instruction(&Instruction::I32Eqz);
        f.instruction(&Instruction::If(BlockType::Empty));
        f.instruction(&Instruction::Return);
        f.instruction(&Instruction::End);
        f.instruction(&Instruction::LocalGet(0));
        f.instruction(&Instruction::I32Const(12));
        f.instruction(&Instruction::I32ShrU);
        f.instruction(&Instruction::LocalSet(2));
        // last = (dst + len - 1) >> 12, or the last page when it wraps (the op traps anyway).
        f.instruction(&Instruction::LocalGet(0));
        f.instruction(&Instruction::LocalGet(1));
        f.instruction(&Instruction::I32Add);
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&Instruction::I32Sub);
        f.instruction(&Instruction::I32Const(12));
        f.instruction(&Instruction::I32ShrU);
        f.instruction(&Instruction::LocalSet(3));
        f.instruction(&Instruction::LocalGet(3));
        f.instruction(&Instruction::LocalGet(2));
        f.instruction(&Instruction::I32LtU);
        f.instruction(&Instruction::If(BlockType::Empty));
        f.instruction(&Instruction::I32Const(
            ((1u64 << 32) / PAGE_SIZE as u64 - 1) as i32,
        ));
        f.instruction(&Instruction::LocalSet(3));
        f.instruction(&Instruction::End);
        f.instruction(&Instruction::Loop(BlockType::Empty));
        f.instruction(&Instruction::LocalGet(2));
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&bytemap_store(inj));
        f.instruction(&Instruction::LocalGet(2));
        f.instruction(&Instruction::I32Const(1));
        f.instruction(&Instruction::I32Add);
        f.instruction(&Instruction::LocalTee(2));
        f.instruction(&Instruction::LocalGet(3));
        f.instruction(&Instruction::I32LeU);
        f.instruction(&Instruction::BrIf(0));
        f.instruction(&Instruction::End);
    }
    f.instruction(&Instruction::End);
    f
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
