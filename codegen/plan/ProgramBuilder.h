//===- codegen/plan/ProgramBuilder.h - kiln IR -> Program ------*- C++ -*-===//
//
// Lowers a verified, pipeline-processed model function to a Program: one
// kernel call per kiln op in order, buffers for inputs, parameters, constants
// and outputs, and arena offsets from the buffer plan.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_PLAN_PROGRAMBUILDER_H
#define KILN_CODEGEN_PLAN_PROGRAMBUILDER_H

#include "kiln/program.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace kiln {

struct BuiltProgram {
  Program program;
  /// Parameters (from `weights`) and constants (from the IR) by name.
  TensorMap weights;
};

/// Builds the Program for `func`. Every parameter must have a value of the
/// right dtype and shape in `weights`; all missing or mismatched ones are
/// reported together.
StatusOr<BuiltProgram> buildProgram(mlir::func::FuncOp func,
                                    const TensorMap &weights,
                                    const std::string &target);

/// The attributes of `op` as JSON, with ODS defaults filled in.
nlohmann::json attributesToJson(mlir::Operation *op);

} // namespace kiln

#endif // KILN_CODEGEN_PLAN_PROGRAMBUILDER_H
