//===- passes/Matchers.h - Small value matchers shared by passes -*- C++
//-*-===//
//
// Splat constants and flattened products/sums: what kiln-fuse-epilogues and
// kiln-raise-composites look for in the ops exporters write.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_MATCHERS_H
#define KILN_PASSES_MATCHERS_H

#include "mlir/IR/BuiltinAttributes.h"
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
