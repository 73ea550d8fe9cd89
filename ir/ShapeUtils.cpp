//===- ShapeUtils.cpp - shape helpers shared by kiln ops and builders ----===//
//
// Implements the shape rules declared in ShapeUtils.h.
//
//===----------------------------------------------------------------------===//

#include "ir/ShapeUtils.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;

namespace kiln {

static bool isFloatElement(Type type) {
  return type.isF32() || type.isF16() || type.isBF16() || type.isF64();
}

static bool isSignedIntElement(Type type) {
  return type.isSignlessInteger(64) || type.isSignlessInteger(32) ||
         type.isSignlessInteger(8);
}

bool isElementOfKind(Type type, ElementKind kind) {
  bool isSigned = isFloatElement(type) || isSignedIntElement(type);
  switch (kind) {
  case ElementKind::Float:
    return isFloatElement(type);
  case ElementKind::Signed:
    return isSigned;
  case ElementKind::Numeric:
    return isSigned || type.isUnsignedInteger(8);
  case ElementKind::Any:
    return isSigned || type.isUnsignedInteger(8) || type.isSignlessInteger(1);
  }
  return false;
}

llvm::StringRef describeElementKind(ElementKind kind) {
  switch (kind) {
  case ElementKind::Float:
    return "a float type (f32, f16, bf16, f64)";
  case ElementKind::Signed:
    return "a signed type (f32, f16, bf16, f64, i64, i32, i8)";
  case ElementKind::Numeric:
    return "a numeric type (f32, f16, bf16, f64, i64, i32, i8, ui8)";
  case ElementKind::Any:
    return "a kiln element type (f32, f16, bf16, f64, i64, i32, i8, ui8, i1)";
  }
  return "";
}

std::optional<llvm::SmallVector<int64_t>>
broadcastShapes(llvm::ArrayRef<int64_t> lhs, llvm::ArrayRef<int64_t> rhs) {
  size_t rank = std::max(lhs.size(), rhs.size());
  llvm::SmallVector<int64_t> result(rank);
  for (size_t i = 0; i < rank; ++i) {
    // Walk both shapes right-aligned; a missing dim acts as 1.
    int64_t l = i < lhs.size() ? lhs[lhs.size() - 1 - i] : 1;
    int64_t r = i < rhs.size() ? rhs[rhs.size() - 1 - i] : 1;
    if (l != r && l != 1 && r != 1)
      return std::nullopt;
    result[rank - 1 - i] = l == 1 ? r : l;
  }
  return result;
}

bool isBroadcastableTo(llvm::ArrayRef<int64_t> from,
                       llvm::ArrayRef<int64_t> to) {
  if (from.size() > to.size())
    return false;
  for (size_t i = 0; i < from.size(); ++i) {
    int64_t f = from[from.size() - 1 - i];
    if (f != 1 && f != to[to.size() - 1 - i])
      return false;
  }
  return true;
}

std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

int64_t getElementCount(llvm::ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

/// Number of significant bits an integer type needs to be held exactly.
static unsigned getIntegerMagnitudeBits(IntegerType type) {
  return type.isUnsigned() ? type.getWidth() : type.getWidth() - 1;
}

bool isExactConversion(Type from, Type to) {
  if (from == to || from.isSignlessInteger(1))
    return true;
  if (to.isSignlessInteger(1))
    return false;
  auto fromInt = dyn_cast<IntegerType>(from);
  if (fromInt) {
    if (auto toInt = dyn_cast<IntegerType>(to)) {
      // Unsigned to signed needs one more bit; signed never fits unsigned.
      if (!fromInt.isUnsigned() && toInt.isUnsigned())
        return false;
      return getIntegerMagnitudeBits(fromInt) <= getIntegerMagnitudeBits(toInt);
    }
    if (auto toFloat = dyn_cast<FloatType>(to))
      return getIntegerMagnitudeBits(fromInt) <=
             llvm::APFloat::semanticsPrecision(toFloat.getFloatSemantics());
    return false;
  }
  auto fromFloat = dyn_cast<FloatType>(from);
  auto toFloat = dyn_cast<FloatType>(to);
  if (!fromFloat || !toFloat)
    return false;
  // Both precision and exponent range must grow: f16 <-> bf16 are not exact.
  const llvm::fltSemantics &f = fromFloat.getFloatSemantics();
  const llvm::fltSemantics &t = toFloat.getFloatSemantics();
  return llvm::APFloat::semanticsPrecision(f) <=
             llvm::APFloat::semanticsPrecision(t) &&
         llvm::APFloat::semanticsMaxExponent(f) <=
             llvm::APFloat::semanticsMaxExponent(t) &&
         llvm::APFloat::semanticsMinExponent(f) >=
             llvm::APFloat::semanticsMinExponent(t);
}

llvm::raw_ostream &operator<<(llvm::raw_ostream &os, ShapeString shape) {
  os << '[';
  llvm::interleaveComma(shape.shape, os);
  return os << ']';
}

} // namespace kiln
