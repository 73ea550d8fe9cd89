//===- KilnOps.h - kiln dialect operations ----------------------*- C++ -*-===//
//
// Declares the kiln op classes (`kiln::AddOp`, `kiln::MatmulOp`, ...)
// generated from KilnOps.td. Every op implements InferTypeOpInterface: a
// builder may call `OpTy::inferReturnTypes(ctx, loc, operands, attrs, nullptr,
// {}, types)` before creating an op and gets a diagnostic at `loc` instead of
// a crash when the operands do not fit.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_KILNOPS_H
#define KILN_IR_KILNOPS_H

#include "ir/KilnDialect.h"
#include "ir/ShapeUtils.h"

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_OP_CLASSES
#include "ir/KilnOps.h.inc"

#endif // KILN_IR_KILNOPS_H
