//===- passes/Matchers.h - Value matchers shared by passes ------*- C++ -*-===//
//
// Splat constants, flattened products/sums and last-axis reductions: what
// kiln-fuse-epilogues, kiln-raise-composites and kiln-fuse-attention look for
// in the ops exporters write.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_MATCHERS_H
#define KILN_PASSES_MATCHERS_H

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"

#include <algorithm>
#include <cmath>
#include <optional>

namespace kiln {

/// The value of a splat float constant, if `v` is one.
inline std::optional<double> splatFloat(mlir::Value v) {
  mlir::DenseElementsAttr constant;
  if (!mlir::matchPattern(v, mlir::m_Constant(&constant)) ||
      !constant.isSplat() ||
      !mlir::isa<mlir::FloatType>(constant.getElementType()))
    return std::nullopt;
  return constant.getSplatValue<llvm::APFloat>().convertToDouble();
}

/// Whether `v` is a splat float constant equal to `value` (to f32).
inline bool isSplatNear(mlir::Value v, double value) {
  std::optional<double> c = splatFloat(v);
  return c && std::fabs(*c - value) <= 1e-7 * std::max(1.0, std::fabs(value));
}

/// Whether `axis` (negative counts from the end) is the last of `rank`.
inline bool isLastAxis(int64_t axis, int64_t rank) {
  return axis == -1 || axis == rank - 1;
}

/// Whether reduce op `op` reduces only the last axis of its input, keeping
/// it (keepdims).
template <typename ReduceOp> bool reducesLastAxis(ReduceOp op) {
  int64_t rank =
      mlir::cast<mlir::RankedTensorType>(op.getX().getType()).getRank();
  llvm::ArrayRef<int64_t> axes = op.getAxes();
  return op.getKeepdims() && axes.size() == 1 && isLastAxis(axes[0], rank);
}

/// The operands of a product of muls (or terms of a sum of adds, OpTy)
/// rooted at `v`: the root itself and single-use ops of `type` below it are
/// opened, up to `limit` of them; anything else is one operand.
template <typename OpTy>
void flatten(mlir::Value v, llvm::SmallVectorImpl<mlir::Value> &operands,
             llvm::SmallVectorImpl<mlir::Operation *> &opened, mlir::Type type,
             size_t limit, bool root = true) {
  auto op = v.getDefiningOp<OpTy>();
  if (op && opened.size() < limit && op.getType() == type &&
      (root || op->hasOneUse())) {
    opened.push_back(op);
    flatten<OpTy>(op->getOperand(0), operands, opened, type, limit, false);
    flatten<OpTy>(op->getOperand(1), operands, opened, type, limit, false);
    return;
  }
  operands.push_back(v);
}

/// Removes from `operands` one splat near each of `values` (in any order);
/// false when a value has none.
inline bool takeSplats(llvm::SmallVectorImpl<mlir::Value> &operands,
                       llvm::ArrayRef<double> values) {
  for (double value : values) {
    auto it = llvm::find_if(
        operands, [&](mlir::Value v) { return isSplatNear(v, value); });
    if (it == operands.end())
      return false;
    operands.erase(it);
  }
  return true;
}

} // namespace kiln

#endif // KILN_PASSES_MATCHERS_H
