//===- ir/ElementTypes.h - kiln::DType <-> MLIR element types --*- C++ -*-===//
//
// The runtime names element types with kiln::DType; the IR uses builtin MLIR
// types. This is the one mapping between them, shared by the DSL, the
// importers and codegen.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_IR_ELEMENTTYPES_H
#define KILN_IR_ELEMENTTYPES_H

#include "kiln/runtime.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/MLIRContext.h"

#include <optional>

namespace kiln {

/// The MLIR element type for `dtype` (i64/i32/i8 signless, u8 as ui8).
inline mlir::Type toMlirElementType(DType dtype, mlir::MLIRContext *ctx) {
  mlir::Builder b(ctx);
  switch (dtype) {
  case DType::f32:
    return b.getF32Type();
  case DType::f16:
    return b.getF16Type();
  case DType::bf16:
    return b.getBF16Type();
  case DType::f64:
    return b.getF64Type();
  case DType::i64:
    return b.getIntegerType(64);
  case DType::i32:
    return b.getIntegerType(32);
  case DType::i8:
    return b.getIntegerType(8);
  case DType::u8:
    return mlir::IntegerType::get(ctx, 8, mlir::IntegerType::Unsigned);
  case DType::i1:
    return b.getI1Type();
  }
  return {};
}

/// The DType of an MLIR element type; nullopt for types kiln does not support.
inline std::optional<DType> fromMlirElementType(mlir::Type type) {
  if (type.isF32())
    return DType::f32;
  if (type.isF16())
    return DType::f16;
  if (type.isBF16())
    return DType::bf16;
  if (type.isF64())
    return DType::f64;
  if (type.isSignlessInteger(64))
    return DType::i64;
  if (type.isSignlessInteger(32))
    return DType::i32;
  if (type.isSignlessInteger(8))
    return DType::i8;
  if (type.isUnsignedInteger(8))
    return DType::u8;
  if (type.isSignlessInteger(1))
    return DType::i1;
  return std::nullopt;
}

inline mlir::RankedTensorType toMlirTensorType(DType dtype,
                                               llvm::ArrayRef<int64_t> shape,
                                               mlir::MLIRContext *ctx) {
  return mlir::RankedTensorType::get(shape, toMlirElementType(dtype, ctx));
}

} // namespace kiln

#endif // KILN_IR_ELEMENTTYPES_H
