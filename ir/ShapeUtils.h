//===- ShapeUtils.h - shape helpers shared by kiln ops and builders -------===//
//
// Small, dependency-free helpers for the shape rules of the kiln dialect
// (NumPy broadcasting, negative axes, element-type classes). The op verifiers
// and result-type inference use them; graph builders (the DSL, importers) may
// use them to resolve shapes the same way the IR will check them.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_SHAPEUTILS_H
#define KILN_IR_SHAPEUTILS_H

#include "mlir/IR/Types.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <optional>

namespace kiln {

/// Element-type classes of CONTRACT.md: `Float` = f32|f16|bf16|f64,
/// `Signed` = Float|i64|i32|i8, `Numeric` = all but i1, `Any` = all nine.
enum class ElementKind { Float, Signed, Numeric, Any };

/// Returns true if `type` is one of the element types of `kind`.
bool isElementOfKind(mlir::Type type, ElementKind kind);

/// Returns a short description of `kind` for diagnostics ("float type").
llvm::StringRef describeElementKind(ElementKind kind);

/// NumPy broadcast of two static shapes (right-aligned, each dim pair equal or
/// one of them 1); std::nullopt when they are not broadcastable.
std::optional<llvm::SmallVector<int64_t>>
broadcastShapes(llvm::ArrayRef<int64_t> lhs, llvm::ArrayRef<int64_t> rhs);

/// Returns true if `from` broadcasts to exactly `to` (NumPy rules).
bool isBroadcastableTo(llvm::ArrayRef<int64_t> from,
                       llvm::ArrayRef<int64_t> to);

/// Maps `axis` in [-rank, rank) to [0, rank); std::nullopt when out of range.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

/// Product of `shape` (1 for rank 0).
int64_t getElementCount(llvm::ArrayRef<int64_t> shape);

/// Returns true if `from` converts to `to` without losing any value, so that
/// a conversion back (or on to a third type) sees the original value, e.g.
/// bf16 -> f32, i8 -> i32, i8 -> f16, i1 -> anything.
bool isExactConversion(mlir::Type from, mlir::Type to);

/// Prints a shape as `[2, 3, 4]` (`[]` for rank 0) in diagnostics:
/// `diag << ShapeString{shape}` or `os << ShapeString{shape}`.
struct ShapeString {
  llvm::ArrayRef<int64_t> shape;
};
llvm::raw_ostream &operator<<(llvm::raw_ostream &os, ShapeString shape);

} // namespace kiln

#endif // KILN_IR_SHAPEUTILS_H
