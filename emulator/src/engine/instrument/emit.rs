//! The injected code: instruction charges, dirty-page marks, and the helper functions the
//! rewrite appends.

use super::*;

pub(super) fn charge(f: &mut Function, inj: Injected, cost: u64, check: bool) {
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

pub(super) fn bytemap_store(inj: Injected) -> Instruction<'static> {
    Instruction::I32Store8(MemArg {
        offset: 0,
        align: 0,
        memory_index: inj.bytemap,
    })
}

/// Marks the page of `addr_local + offset` as dirty.
pub(super) fn mark_page(f: &mut Function, inj: Injected, addr_local: u32, offset: u64) {
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

pub(super) fn emit_op(
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

pub(super) fn instrument_body(
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

pub(super) fn oom_body() -> Function {
    let mut f = Function::new([]);
    f.instruction(&Instruction::Unreachable);
    f.instruction(&Instruction::End);
    f
}

/// `(param $n i32) (result i32)`: counter -= n; trap when negative; return n.
pub(super) fn charge_body(inj: Injected) -> Function {
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
pub(super) fn mark_body(inj: Injected) -> Function {
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
