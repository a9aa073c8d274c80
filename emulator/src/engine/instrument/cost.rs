//! The IC's instruction costs, and what the rewrite needs to know of an operator.

use wasm_encoder::ValType;
use wasmparser::Operator;

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
pub(super) fn ends_block(op: &Operator) -> bool {
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
pub(super) fn store_kind(op: &Operator) -> Option<(ValType, u32, u64)> {
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
