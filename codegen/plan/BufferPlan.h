//===- codegen/plan/BufferPlan.h - Liveness-based buffer planning ---------===//
//
// The single source of memory figures. Every intermediate value of a model
// function gets a byte range in one arena; two values share bytes only when
// their live ranges (definition to last use, in execution order) do not
// overlap. Passes (e.g. recompute under a memory budget) and codegen both use
// this analysis, so what a pass predicts is what the runtime allocates.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_PLAN_BUFFERPLAN_H
#define KILN_CODEGEN_PLAN_BUFFERPLAN_H

#include "kiln/program.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"

#include <cstdint>
#include <vector>

namespace kiln {

/// The plan for a function: which values live in the arena and where.
struct BufferPlan {
  /// Execution step of each op in the function body (its position).
  llvm::DenseMap<mlir::Operation *, int64_t> step;
  /// Arena values and their intervals (same order). A reshape of an arena
  /// value is a view of it: it is not listed here, and `indexOf` maps it to
  /// its source's interval, which lives until the last use of either.
  std::vector<mlir::Value> values;
  std::vector<LiveInterval> intervals;
  llvm::DenseMap<mlir::Value, int64_t> indexOf;
  int64_t arenaBytes = 0;
  /// Sum of the intervals' sizes (the arena without reuse; views count
  /// once).
  int64_t intermediateBytes = 0;
  /// Largest sum of bytes live at one step: a lower bound on arenaBytes.
  int64_t peakLiveBytes = 0;
};

/// Byte size of a static tensor type.
int64_t tensorBytes(mlir::Type type);

/// True for values that are placed in the arena: op results that are not
/// constants and not returned by the function.
bool isArenaValue(mlir::Value v);

/// Plans the arena of `func` (its ops in order are the execution order).
BufferPlan planBuffers(mlir::func::FuncOp func);

} // namespace kiln

#endif // KILN_CODEGEN_PLAN_BUFFERPLAN_H
