//===- KilnOps.cpp - kiln op result-type inference, verifiers, folders ---===//
//
// Result-type inference is the single source of shape rules: it runs when a
// builder asks for a result type (before an op exists), when the parser infers
// the type of a unary op, and as the verifier (InferTypeOpInterface checks the
// inferred type against the op's). It therefore checks everything it reads and
// reports failures as "'kiln.<op>' op <what was expected>, <what was found>"
// at the given location, or silently when no location is given.
//
//===----------------------------------------------------------------------===//

#include "ir/KilnOps.h"
#include "ir/KilnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallBitVector.h"

using namespace mlir;
using namespace kiln;

//===----------------------------------------------------------------------===//
// Diagnostics and checks shared by the inference functions
//===----------------------------------------------------------------------===//

namespace {
/// Emits "'<op name>' op <message>" at the inference location, if there is
/// one; every call returns failure so checks read `return diag.error(...)`.
class ShapeDiagnostics {
public:
  ShapeDiagnostics(std::optional<Location> location, StringRef opName)
      : location(location), opName(opName) {}

  template <typename... Args> LogicalResult error(const Args &...args) const {
    if (!location)
      return failure();
    std::string text;
    llvm::raw_string_ostream os(text);
    os << "'" << opName << "' op ";
    (os << ... << args);
    return emitError(*location, text);
  }

private:
  std::optional<Location> location;
  StringRef opName;
};
} // namespace

/// Returns `type` as a statically shaped tensor whose element type is of
/// `kind`, or emits why `name` is not one.
static FailureOr<RankedTensorType> getTensor(const ShapeDiagnostics &diag,
                                             StringRef name, Type type,
                                             ElementKind kind) {
  auto tensor = dyn_cast_or_null<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return diag.error("expected ", name,
                      " to be a statically shaped tensor, got ", type);
  if (!isElementOfKind(tensor.getElementType(), kind))
    return diag.error("expected ", name, " to have ", describeElementKind(kind),
                      ", got ", tensor.getElementType());
  return tensor;
}

static LogicalResult checkSameElementType(const ShapeDiagnostics &diag,
                                          StringRef lhsName, ShapedType lhs,
                                          StringRef rhsName, ShapedType rhs) {
  if (lhs.getElementType() == rhs.getElementType())
    return success();
  return diag.error("element types differ: ", lhsName, " has ",
                    lhs.getElementType(), ", ", rhsName, " has ",
                    rhs.getElementType());
}

static LogicalResult checkRank(const ShapeDiagnostics &diag, StringRef name,
                               ShapedType type, int64_t rank,
                               StringRef layout = "") {
  if (type.getRank() == rank)
    return success();
  return diag.error("expected ", name, " of rank ", rank, layout, ", got rank ",
                    type.getRank());
}

static LogicalResult checkShape(const ShapeDiagnostics &diag, StringRef name,
                                ShapedType type, ArrayRef<int64_t> expected) {
  if (type.getShape() == expected)
    return success();
  return diag.error("expected ", name, " of shape ", ShapeString{expected},
                    ", got ", ShapeString{type.getShape()});
}

static LogicalResult checkLength(const ShapeDiagnostics &diag, StringRef name,
                                 ArrayRef<int64_t> values, size_t expected) {
  if (values.size() == expected)
    return success();
  return diag.error("expected ", expected, " entries in ", name, ", got ",
                    values.size(), " (", ShapeString{values}, ")");
}

/// Checks that every entry is > 0 (`minimum` = 1) or >= 0 (`minimum` = 0).
static LogicalResult checkAtLeast(const ShapeDiagnostics &diag, StringRef name,
                                  ArrayRef<int64_t> values, int64_t minimum) {
  if (llvm::all_of(values, [&](int64_t v) { return v >= minimum; }))
    return success();
  return diag.error("expected ", name, " to be ",
                    minimum == 1 ? "positive" : "non-negative", ", got ",
                    ShapeString{values});
}

static FailureOr<int64_t> getNormalizedAxis(const ShapeDiagnostics &diag,
                                            StringRef name, int64_t axis,
                                            ShapedType type) {
  if (std::optional<int64_t> normalized = normalizeAxis(axis, type.getRank()))
    return *normalized;
  return diag.error(name, " ", axis, " is out of range for rank ",
                    type.getRank(), " (expected [", -type.getRank(), ", ",
                    type.getRank(), "))");
}

static LogicalResult inferNormOp(const ShapeDiagnostics &diag,
                                 RankedTensorType x, int64_t axis,
                                 ArrayRef<std::pair<StringRef, Type>> params,
                                 SmallVectorImpl<Type> &inferredReturnTypes) {
  FailureOr<int64_t> normalized = getNormalizedAxis(diag, "axis", axis, x);
  if (failed(normalized))
    return failure();
  ArrayRef<int64_t> normalizedShape = x.getShape().drop_front(*normalized);
  for (auto [name, type] : params) {
    FailureOr<RankedTensorType> param =
        getTensor(diag, name, type, ElementKind::Float);
    if (failed(param) ||
        failed(checkSameElementType(diag, "x", x, name, *param)))
      return failure();
    if (param->getShape() != normalizedShape)
      return diag.error("expected ", name, " of shape x.shape[", axis,
                        ":] = ", ShapeString{normalizedShape}, ", got ",
                        ShapeString{param->getShape()});
  }
  inferredReturnTypes.push_back(x);
  return success();
}

//===----------------------------------------------------------------------===//
// Inference shared by op families (called from KilnOps.td)
//===----------------------------------------------------------------------===//

namespace kiln::detail {

template <typename AdaptorT>
static LogicalResult verifyAdaptor(MLIRContext *context,
                                   std::optional<Location> location,
                                   AdaptorT &adaptor) {
  if (location)
    return adaptor.verify(*location);
  ScopedDiagnosticHandler silence(context,
                                  [](Diagnostic &) { return success(); });
  return adaptor.verify(UnknownLoc::get(context));
}

static LogicalResult inferUnaryOp(std::optional<Location> location,
                                  StringRef opName, Type x, ElementKind kind,
                                  SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, opName);
  FailureOr<RankedTensorType> tensor = getTensor(diag, "x", x, kind);
  if (failed(tensor))
    return failure();
  inferredReturnTypes.push_back(*tensor);
  return success();
}

/// Broadcast shape of `lhs` and `rhs`, or an error naming both shapes.
static FailureOr<SmallVector<int64_t>>
getBroadcastShape(const ShapeDiagnostics &diag, StringRef lhsName,
                  ArrayRef<int64_t> lhs, StringRef rhsName,
                  ArrayRef<int64_t> rhs) {
  if (std::optional<SmallVector<int64_t>> shape = broadcastShapes(lhs, rhs))
    return *shape;
  return diag.error("shapes are not broadcastable: ", lhsName, " has ",
                    ShapeString{lhs}, ", ", rhsName, " has ", ShapeString{rhs});
}

static LogicalResult inferBinaryOp(std::optional<Location> location,
                                   StringRef opName, Type lhsType, Type rhsType,
                                   ElementKind kind,
                                   SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, opName);
  FailureOr<RankedTensorType> lhs = getTensor(diag, "lhs", lhsType, kind);
  if (failed(lhs))
    return failure();
  FailureOr<RankedTensorType> rhs = getTensor(diag, "rhs", rhsType, kind);
  if (failed(rhs) ||
      failed(checkSameElementType(diag, "lhs", *lhs, "rhs", *rhs)))
    return failure();
  FailureOr<SmallVector<int64_t>> shape =
      getBroadcastShape(diag, "lhs", lhs->getShape(), "rhs", rhs->getShape());
  if (failed(shape))
    return failure();
  inferredReturnTypes.push_back(
      RankedTensorType::get(*shape, lhs->getElementType()));
  return success();
}

/// Output size of one pooled dim; ceil mode drops a last window that would
/// start in the right padding (ONNX, PyTorch).
static int64_t getPooledSize(int64_t input, int64_t padBefore, int64_t padAfter,
                             int64_t kernel, int64_t stride, bool ceilMode) {
  int64_t span = input + padBefore + padAfter - kernel;
  if (span < 0)
    return 0;
  int64_t size =
      (ceilMode ? llvm::divideCeil(span, stride) : span / stride) + 1;
  if (ceilMode && (size - 1) * stride >= input + padBefore)
    --size;
  return size;
}

static LogicalResult inferPool2dOp(std::optional<Location> location,
                                   StringRef opName, Type xType,
                                   ArrayRef<int64_t> kernel,
                                   ArrayRef<int64_t> strides,
                                   ArrayRef<int64_t> pads, bool ceilMode,
                                   SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, opName);
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", xType, ElementKind::Float);
  if (failed(x) || failed(checkRank(diag, "x", *x, 4, " [N, C, H, W]")) ||
      failed(checkLength(diag, "kernel", kernel, 2)) ||
      failed(checkAtLeast(diag, "kernel", kernel, 1)) ||
      failed(checkLength(diag, "strides", strides, 2)) ||
      failed(checkAtLeast(diag, "strides", strides, 1)) ||
      failed(checkLength(diag, "pads", pads, 4)) ||
      failed(checkAtLeast(diag, "pads", pads, 0)))
    return failure();
  ArrayRef<int64_t> shape = x->getShape();
  SmallVector<int64_t> result{shape[0], shape[1], 0, 0};
  for (int i = 0; i < 2; ++i) {
    result[2 + i] = getPooledSize(shape[2 + i], pads[i], pads[2 + i], kernel[i],
                                  strides[i], ceilMode);
    if (result[2 + i] <= 0)
      return diag.error("kernel ", ShapeString{kernel},
                        " does not fit the padded input: x has ",
                        ShapeString{shape}, ", pads ", ShapeString{pads});
  }
  inferredReturnTypes.push_back(
      RankedTensorType::get(result, x->getElementType()));
  return success();
}

static LogicalResult
inferSoftmaxOp(std::optional<Location> location, StringRef opName, Type xType,
               int64_t axis, SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, opName);
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", xType, ElementKind::Float);
  if (failed(x) || failed(getNormalizedAxis(diag, "axis", axis, *x)))
    return failure();
  inferredReturnTypes.push_back(*x);
  return success();
}

static LogicalResult inferReduceOp(std::optional<Location> location,
                                   StringRef opName, Type xType,
                                   ArrayRef<int64_t> axes, bool keepdims,
                                   ElementKind kind,
                                   SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, opName);
  FailureOr<RankedTensorType> x = getTensor(diag, "x", xType, kind);
  if (failed(x))
    return failure();
  int64_t rank = x->getRank();
  // Empty axes reduce every dim.
  llvm::SmallBitVector reduced(rank, axes.empty());
  for (int64_t axis : axes) {
    FailureOr<int64_t> normalized = getNormalizedAxis(diag, "axis", axis, *x);
    if (failed(normalized))
      return failure();
    if (reduced.test(*normalized))
      return diag.error("axis ", *normalized,
                        " appears more than once in axes ", ShapeString{axes});
    reduced.set(*normalized);
  }
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < rank; ++i) {
    if (!reduced.test(i))
      shape.push_back(x->getDimSize(i));
    else if (keepdims)
      shape.push_back(1);
  }
  inferredReturnTypes.push_back(
      RankedTensorType::get(shape, x->getElementType()));
  return success();
}

} // namespace kiln::detail

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

LogicalResult
GeluOp::inferReturnTypes(MLIRContext *context, std::optional<Location> location,
                         Adaptor adaptor,
                         SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  StringRef approximate = adaptor.getApproximate();
  if (approximate != "none" && approximate != "tanh")
    return diag.error("expected approximate to be \"none\" or \"tanh\", got \"",
                      approximate, "\"");
  return detail::inferUnaryOp(location, getOperationName(),
                              adaptor.getX().getType(), ElementKind::Float,
                              inferredReturnTypes);
}

LogicalResult
CompareOp::inferReturnTypes(MLIRContext *context,
                            std::optional<Location> location, Adaptor adaptor,
                            SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  StringRef predicate = adaptor.getPredicate();
  if (!llvm::is_contained({"eq", "ne", "lt", "le", "gt", "ge"}, predicate))
    return diag.error("expected predicate to be one of eq, ne, lt, le, gt, ge, "
                      "got \"",
                      predicate, "\"");
  SmallVector<Type> broadcast;
  if (failed(detail::inferBinaryOp(
          location, getOperationName(), adaptor.getLhs().getType(),
          adaptor.getRhs().getType(), ElementKind::Any, broadcast)))
    return failure();
  auto result = cast<RankedTensorType>(broadcast.front());
  if (result.getElementType().isSignlessInteger(1) && predicate != "eq" &&
      predicate != "ne")
    return diag.error("predicate \"", predicate,
                      "\" is not defined on i1 operands, expected eq or ne");
  inferredReturnTypes.push_back(
      result.clone(IntegerType::get(context, /*width=*/1)));
  return success();
}

LogicalResult
WhereOp::inferReturnTypes(MLIRContext *context,
                          std::optional<Location> location, Adaptor adaptor,
                          SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> cond =
      getTensor(diag, "cond", adaptor.getCond().getType(), ElementKind::Any);
  if (failed(cond))
    return failure();
  if (!cond->getElementType().isSignlessInteger(1))
    return diag.error("expected cond to have element type i1, got ",
                      cond->getElementType());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Any);
  if (failed(x))
    return failure();
  FailureOr<RankedTensorType> y =
      getTensor(diag, "y", adaptor.getY().getType(), ElementKind::Any);
  if (failed(y) || failed(checkSameElementType(diag, "x", *x, "y", *y)))
    return failure();
  FailureOr<SmallVector<int64_t>> xy =
      detail::getBroadcastShape(diag, "x", x->getShape(), "y", y->getShape());
  if (failed(xy))
    return failure();
  FailureOr<SmallVector<int64_t>> shape = detail::getBroadcastShape(
      diag, "cond", cond->getShape(), "broadcast(x, y)", *xy);
  if (failed(shape))
    return failure();
  inferredReturnTypes.push_back(
      RankedTensorType::get(*shape, x->getElementType()));
  return success();
}

LogicalResult
CastOp::inferReturnTypes(MLIRContext *context, std::optional<Location> location,
                         Adaptor adaptor,
                         SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Any);
  if (failed(x))
    return failure();
  Type dtype = adaptor.getDtype();
  if (!isElementOfKind(dtype, ElementKind::Any))
    return diag.error("expected dtype to be ",
                      describeElementKind(ElementKind::Any), ", got ", dtype);
  inferredReturnTypes.push_back(x->clone(dtype));
  return success();
}

//===----------------------------------------------------------------------===//
// Linear algebra and NN
//===----------------------------------------------------------------------===//

/// The matmul result type, shared by kiln.matmul and kiln.fused_matmul.
template <typename AdaptorT>
static LogicalResult inferMatmul(const ShapeDiagnostics &diag,
                                 AdaptorT &adaptor,
                                 SmallVectorImpl<Type> &inferredReturnTypes) {
  FailureOr<RankedTensorType> a =
      getTensor(diag, "a", adaptor.getA().getType(), ElementKind::Numeric);
  if (failed(a))
    return failure();
  FailureOr<RankedTensorType> b =
      getTensor(diag, "b", adaptor.getB().getType(), ElementKind::Numeric);
  if (failed(b) || failed(checkSameElementType(diag, "a", *a, "b", *b)))
    return failure();
  if (a->getRank() < 2 || b->getRank() < 2)
    return diag.error("expected a and b of rank >= 2, got a of rank ",
                      a->getRank(), " and b of rank ", b->getRank());
  ArrayRef<int64_t> aShape = a->getShape(), bShape = b->getShape();
  int64_t aRows = aShape[aShape.size() - 2], aCols = aShape.back();
  int64_t bRows = bShape[bShape.size() - 2], bCols = bShape.back();
  int64_t m = adaptor.getTransposeA() ? aCols : aRows;
  int64_t aK = adaptor.getTransposeA() ? aRows : aCols;
  int64_t bK = adaptor.getTransposeB() ? bCols : bRows;
  int64_t n = adaptor.getTransposeB() ? bRows : bCols;
  if (aK != bK)
    return diag.error("contraction dims differ: lhs has K=", aK,
                      ", rhs has K=", bK);
  FailureOr<SmallVector<int64_t>> shape = kiln::detail::getBroadcastShape(
      diag, "batch dims of a", aShape.drop_back(2), "batch dims of b",
      bShape.drop_back(2));
  if (failed(shape))
    return failure();
  shape->append({m, n});
  inferredReturnTypes.push_back(
      RankedTensorType::get(*shape, a->getElementType()));
  return success();
}

LogicalResult
MatmulOp::inferReturnTypes(MLIRContext *context,
                           std::optional<Location> location, Adaptor adaptor,
                           SmallVectorImpl<Type> &inferredReturnTypes) {
  return inferMatmul(ShapeDiagnostics(location, getOperationName()), adaptor,
                     inferredReturnTypes);
}

/// The conv2d result type, shared by kiln.conv2d and kiln.fused_conv2d
/// (`biasValue` is null for the latter, whose bias is an epilogue step).
template <typename AdaptorT>
static LogicalResult inferConv2d(const ShapeDiagnostics &diag,
                                 AdaptorT &adaptor, Value biasValue,
                                 SmallVectorImpl<Type> &inferredReturnTypes) {
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Float);
  if (failed(x) || failed(checkRank(diag, "x", *x, 4, " [N, C, H, W]")))
    return failure();
  FailureOr<RankedTensorType> w =
      getTensor(diag, "w", adaptor.getW().getType(), ElementKind::Float);
  if (failed(w) || failed(checkSameElementType(diag, "x", *x, "w", *w)) ||
      failed(checkRank(diag, "w", *w, 4, " [O, C/groups, KH, KW]")))
    return failure();
  ArrayRef<int64_t> strides = adaptor.getStrides();
  ArrayRef<int64_t> pads = adaptor.getPads();
  ArrayRef<int64_t> dilations = adaptor.getDilations();
  int64_t groups = adaptor.getGroups();
  if (failed(checkLength(diag, "strides", strides, 2)) ||
      failed(checkAtLeast(diag, "strides", strides, 1)) ||
      failed(checkLength(diag, "pads", pads, 4)) ||
      failed(checkAtLeast(diag, "pads", pads, 0)) ||
      failed(checkLength(diag, "dilations", dilations, 2)) ||
      failed(checkAtLeast(diag, "dilations", dilations, 1)))
    return failure();
  if (groups < 1)
    return diag.error("expected groups to be positive, got ", groups);
  ArrayRef<int64_t> xShape = x->getShape(), wShape = w->getShape();
  int64_t channels = xShape[1], outChannels = wShape[0];
  if (channels % groups != 0)
    return diag.error("input channels C=", channels,
                      " are not divisible by groups=", groups);
  if (outChannels % groups != 0)
    return diag.error("output channels O=", outChannels,
                      " are not divisible by groups=", groups);
  if (wShape[1] != channels / groups)
    return diag.error("expected w dim 1 to be C/groups=", channels / groups,
                      ", got ", wShape[1]);
  if (biasValue) {
    FailureOr<RankedTensorType> bias =
        getTensor(diag, "bias", biasValue.getType(), ElementKind::Float);
    if (failed(bias) ||
        failed(checkSameElementType(diag, "x", *x, "bias", *bias)) ||
        failed(checkShape(diag, "bias", *bias, {outChannels})))
      return failure();
  }
  SmallVector<int64_t> shape{xShape[0], outChannels, 0, 0};
  for (int i = 0; i < 2; ++i) {
    int64_t padded = xShape[2 + i] + pads[i] + pads[2 + i];
    int64_t extent = dilations[i] * (wShape[2 + i] - 1) + 1;
    if (padded < extent)
      return diag.error("dilated kernel ", ShapeString{wShape.drop_front(2)},
                        " (extent ", extent, ") does not fit the padded input ",
                        ShapeString{xShape.drop_front(2)}, " + pads ",
                        ShapeString{pads});
    shape[2 + i] = (padded - extent) / strides[i] + 1;
  }
  inferredReturnTypes.push_back(
      RankedTensorType::get(shape, x->getElementType()));
  return success();
}

LogicalResult
Conv2dOp::inferReturnTypes(MLIRContext *context,
                           std::optional<Location> location, Adaptor adaptor,
                           SmallVectorImpl<Type> &inferredReturnTypes) {
  return inferConv2d(ShapeDiagnostics(location, getOperationName()), adaptor,
                     adaptor.getBias(), inferredReturnTypes);
}

LogicalResult GlobalAvgPoolOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Float);
  if (failed(x) || failed(checkRank(diag, "x", *x, 4, " [N, C, H, W]")))
    return failure();
  inferredReturnTypes.push_back(RankedTensorType::get(
      {x->getDimSize(0), x->getDimSize(1), 1, 1}, x->getElementType()));
  return success();
}

LogicalResult
BatchNormOp::inferReturnTypes(MLIRContext *context,
                              std::optional<Location> location, Adaptor adaptor,
                              SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Float);
  if (failed(x))
    return failure();
  if (x->getRank() < 2)
    return diag.error("expected x of rank >= 2 [N, C, ...], got rank ",
                      x->getRank());
  int64_t channels = x->getDimSize(1);
  std::pair<StringRef, Value> params[] = {{"scale", adaptor.getScale()},
                                          {"bias", adaptor.getBias()},
                                          {"mean", adaptor.getMean()},
                                          {"var", adaptor.getVar()}};
  for (auto [name, value] : params) {
    FailureOr<RankedTensorType> param =
        getTensor(diag, name, value.getType(), ElementKind::Float);
    if (failed(param) ||
        failed(checkSameElementType(diag, "x", *x, name, *param)) ||
        failed(checkShape(diag, name, *param, {channels})))
      return failure();
  }
  inferredReturnTypes.push_back(*x);
  return success();
}

LogicalResult
LayerNormOp::inferReturnTypes(MLIRContext *context,
                              std::optional<Location> location, Adaptor adaptor,
                              SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Float);
  if (failed(x))
    return failure();
  return inferNormOp(diag, *x, adaptor.getAxis(),
                     {{"scale", adaptor.getScale().getType()},
                      {"bias", adaptor.getBias().getType()}},
                     inferredReturnTypes);
}

LogicalResult
RmsNormOp::inferReturnTypes(MLIRContext *context,
                            std::optional<Location> location, Adaptor adaptor,
                            SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Float);
  if (failed(x))
    return failure();
  return inferNormOp(diag, *x, adaptor.getAxis(),
                     {{"scale", adaptor.getScale().getType()}},
                     inferredReturnTypes);
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

LogicalResult
ReshapeOp::inferReturnTypes(MLIRContext *context,
                            std::optional<Location> location, Adaptor adaptor,
                            SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Any);
  if (failed(x))
    return failure();
  ArrayRef<int64_t> shape = adaptor.getShape();
  if (failed(checkAtLeast(diag, "shape", shape, 0)))
    return failure();
  if (getElementCount(shape) != x->getNumElements())
    return diag.error("element count differs: x has ", x->getNumElements(),
                      " elements (", ShapeString{x->getShape()}, "), shape ",
                      ShapeString{shape}, " has ", getElementCount(shape));
  inferredReturnTypes.push_back(x->clone(shape));
  return success();
}

LogicalResult
TransposeOp::inferReturnTypes(MLIRContext *context,
                              std::optional<Location> location, Adaptor adaptor,
                              SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Any);
  if (failed(x))
    return failure();
  ArrayRef<int64_t> perm = adaptor.getPerm();
  int64_t rank = x->getRank();
  if (static_cast<int64_t>(perm.size()) != rank)
    return diag.error("expected perm of length ", rank, " (rank of x), got ",
                      ShapeString{perm});
  llvm::SmallBitVector seen(rank);
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || seen.test(p))
      return diag.error("expected perm to be a permutation of [0, ", rank,
                        "), got ", ShapeString{perm});
    seen.set(p);
    shape.push_back(x->getDimSize(p));
  }
  inferredReturnTypes.push_back(x->clone(shape));
  return success();
}

LogicalResult
ConcatOp::inferReturnTypes(MLIRContext *context,
                           std::optional<Location> location, Adaptor adaptor,
                           SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  ValueRange xs = adaptor.getXs();
  if (xs.empty())
    return diag.error("expected at least one operand, got none");
  FailureOr<RankedTensorType> first =
      getTensor(diag, "xs[0]", xs[0].getType(), ElementKind::Any);
  if (failed(first))
    return failure();
  FailureOr<int64_t> axis =
      getNormalizedAxis(diag, "axis", adaptor.getAxis(), *first);
  if (failed(axis))
    return failure();
  SmallVector<int64_t> shape(first->getShape());
  for (auto [index, value] : llvm::enumerate(xs.drop_front())) {
    std::string name = "xs[" + std::to_string(index + 1) + "]";
    FailureOr<RankedTensorType> x =
        getTensor(diag, name, value.getType(), ElementKind::Any);
    if (failed(x) ||
        failed(checkSameElementType(diag, "xs[0]", *first, name, *x)))
      return failure();
    if (x->getRank() != first->getRank())
      return diag.error("ranks differ: xs[0] has rank ", first->getRank(), ", ",
                        name, " has rank ", x->getRank());
    for (int64_t d = 0; d < x->getRank(); ++d) {
      if (d == *axis)
        continue;
      if (x->getDimSize(d) != first->getDimSize(d))
        return diag.error("dim ", d, " differs outside axis ", *axis,
                          ": xs[0] has ", ShapeString{first->getShape()}, ", ",
                          name, " has ", ShapeString{x->getShape()});
    }
    shape[*axis] += x->getDimSize(*axis);
  }
  inferredReturnTypes.push_back(first->clone(shape));
  return success();
}

LogicalResult
SliceOp::inferReturnTypes(MLIRContext *context,
                          std::optional<Location> location, Adaptor adaptor,
                          SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Any);
  if (failed(x))
    return failure();
  ArrayRef<int64_t> starts = adaptor.getStarts(), ends = adaptor.getEnds(),
                    steps = adaptor.getSteps();
  size_t rank = x->getRank();
  if (failed(checkLength(diag, "starts", starts, rank)) ||
      failed(checkLength(diag, "ends", ends, rank)) ||
      failed(checkLength(diag, "steps", steps, rank)))
    return failure();
  SmallVector<int64_t> shape;
  for (size_t d = 0; d < rank; ++d) {
    int64_t dim = x->getDimSize(d), start = starts[d], end = ends[d],
            step = steps[d];
    if (step == 0)
      return diag.error("expected non-zero steps, got 0 in dim ", d);
    if (step > 0) {
      if (start < 0 || start > end || end > dim)
        return diag.error("expected 0 <= start <= end <= ", dim, " in dim ", d,
                          " (step ", step, "), got start ", start, ", end ",
                          end);
      shape.push_back(llvm::divideCeil(end - start, step));
      continue;
    }
    // An empty dim admits only start = end = -1.
    if (end < -1 || end > start || start > std::max<int64_t>(dim - 1, -1))
      return diag.error("expected -1 <= end <= start < ", dim, " in dim ", d,
                        " (step ", step, "), got start ", start, ", end ", end);
    shape.push_back(llvm::divideCeil(start - end, -step));
  }
  inferredReturnTypes.push_back(x->clone(shape));
  return success();
}

LogicalResult
GatherOp::inferReturnTypes(MLIRContext *context,
                           std::optional<Location> location, Adaptor adaptor,
                           SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> data =
      getTensor(diag, "data", adaptor.getData().getType(), ElementKind::Any);
  if (failed(data))
    return failure();
  FailureOr<RankedTensorType> indices = getTensor(
      diag, "indices", adaptor.getIndices().getType(), ElementKind::Any);
  if (failed(indices))
    return failure();
  Type indexType = indices->getElementType();
  if (!indexType.isSignlessInteger(32) && !indexType.isSignlessInteger(64))
    return diag.error("expected indices of element type i32 or i64, got ",
                      indexType);
  FailureOr<int64_t> axis =
      getNormalizedAxis(diag, "axis", adaptor.getAxis(), *data);
  if (failed(axis))
    return failure();
  ArrayRef<int64_t> dataShape = data->getShape();
  SmallVector<int64_t> shape(dataShape.take_front(*axis));
  llvm::append_range(shape, indices->getShape());
  llvm::append_range(shape, dataShape.drop_front(*axis + 1));
  inferredReturnTypes.push_back(data->clone(shape));
  return success();
}

LogicalResult BroadcastToOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> x =
      getTensor(diag, "x", adaptor.getX().getType(), ElementKind::Any);
  if (failed(x))
    return failure();
  ArrayRef<int64_t> shape = adaptor.getShape();
  if (failed(checkAtLeast(diag, "shape", shape, 0)))
    return failure();
  if (!isBroadcastableTo(x->getShape(), shape))
    return diag.error("x of shape ", ShapeString{x->getShape()},
                      " does not broadcast to shape ", ShapeString{shape});
  inferredReturnTypes.push_back(x->clone(shape));
  return success();
}

LogicalResult
ConstantOp::inferReturnTypes(MLIRContext *context,
                             std::optional<Location> location, Adaptor adaptor,
                             SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> type =
      getTensor(diag, "value", adaptor.getValue().getType(), ElementKind::Any);
  if (failed(type))
    return failure();
  inferredReturnTypes.push_back(*type);
  return success();
}

//===----------------------------------------------------------------------===//
// Folders
//===----------------------------------------------------------------------===//

/// Returns true if `attr` is a splat whose every element equals `value`.
static bool isSplatOf(Attribute attr, int64_t value) {
  auto splat = dyn_cast_or_null<SplatElementsAttr>(attr);
  if (!splat)
    return false;
  Type elementType = splat.getElementType();
  if (isa<FloatType>(elementType)) {
    APFloat splatValue = splat.getSplatValue<APFloat>();
    APFloat expected(static_cast<double>(value));
    bool losesInfo = false;
    expected.convert(splatValue.getSemantics(), APFloat::rmNearestTiesToEven,
                     &losesInfo);
    return splatValue.compare(expected) == APFloat::cmpEqual;
  }
  if (isa<IntegerType>(elementType))
    return splat.getSplatValue<APInt>().getSExtValue() == value;
  return false;
}

/// Returns `x` when the op's result has x's type (broadcasting by the
/// constant would otherwise change the shape), else null.
static OpFoldResult foldToOperand(Operation *op, Value x) {
  return op->getResult(0).getType() == x.getType() ? x : OpFoldResult();
}

// add(x, 0) = x, add(0, x) = x, for a splat 0 that does not broadcast x.
// The sign of zero is ignored (x + 0 is -0 + 0 = +0 in IEEE for x = -0).
OpFoldResult AddOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 0))
    return foldToOperand(*this, getLhs());
  if (isSplatOf(adaptor.getLhs(), 0))
    return foldToOperand(*this, getRhs());
  return {};
}

// sub(x, 0) = x
OpFoldResult SubOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 0))
    return foldToOperand(*this, getLhs());
  return {};
}

// mul(x, 1) = x, mul(1, x) = x
OpFoldResult MulOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 1))
    return foldToOperand(*this, getLhs());
  if (isSplatOf(adaptor.getLhs(), 1))
    return foldToOperand(*this, getRhs());
  return {};
}

// div(x, 1) = x
OpFoldResult DivOp::fold(FoldAdaptor adaptor) {
  if (isSplatOf(adaptor.getRhs(), 1))
    return foldToOperand(*this, getLhs());
  return {};
}

// cast(x: T, T) = x
// cast(cast(x: A, B), C) = cast(x: A, C) when A -> B is exact; = x when C = A.
// (f32 -> bf16 -> f32 rounds, so it stays.)
OpFoldResult CastOp::fold(FoldAdaptor adaptor) {
  if (getX().getType() == getType())
    return getX();
  auto inner = getX().getDefiningOp<CastOp>();
  if (!inner)
    return {};
  Type source = inner.getX().getType().getElementType();
  if (!isExactConversion(source, inner.getType().getElementType()))
    return {};
  if (inner.getX().getType() == getType())
    return inner.getX();
  getXMutable().assign(inner.getX());
  return getResult();
}

// reshape(x: T, shape(T)) = x
// reshape(reshape(x, s1), s2) = reshape(x, s2)
OpFoldResult ReshapeOp::fold(FoldAdaptor adaptor) {
  if (getX().getType() == getType())
    return getX();
  if (auto inner = getX().getDefiningOp<ReshapeOp>()) {
    if (inner.getX().getType() == getType())
      return inner.getX();
    getXMutable().assign(inner.getX());
    return getResult();
  }
  return {};
}

// transpose(x, identity) = x
// transpose(transpose(x, p), q) = transpose(x, p∘q) with (p∘q)[i] = p[q[i]]
OpFoldResult TransposeOp::fold(FoldAdaptor adaptor) {
  auto isIdentity = [](ArrayRef<int64_t> perm) {
    for (auto [i, p] : llvm::enumerate(perm))
      if (static_cast<int64_t>(i) != p)
        return false;
    return true;
  };
  if (isIdentity(getPerm()))
    return getX();
  auto inner = getX().getDefiningOp<TransposeOp>();
  if (!inner)
    return {};
  ArrayRef<int64_t> p = inner.getPerm();
  SmallVector<int64_t> composed =
      llvm::map_to_vector(getPerm(), [&](int64_t q) { return p[q]; });
  if (isIdentity(composed))
    return inner.getX();
  getXMutable().assign(inner.getX());
  setPerm(composed);
  return getResult();
}

// broadcast_to(x: T, shape(T)) = x
OpFoldResult BroadcastToOp::fold(FoldAdaptor adaptor) {
  return foldToOperand(*this, getX());
}

OpFoldResult ConstantOp::fold(FoldAdaptor adaptor) { return getValueAttr(); }

//===----------------------------------------------------------------------===//
// Fused ops
//===----------------------------------------------------------------------===//

/// Checks the epilogue chain of a fused op against its extras and scales:
/// known steps, one extra per `add_*` step and one scale per `scale` step,
/// biases broadcast along `channelDim` of `result`, residuals of its type.
static LogicalResult verifyEpilogue(const ShapeDiagnostics &diag,
                                    RankedTensorType result, int64_t channelDim,
                                    ArrayAttr epilogue, ArrayAttr scales,
                                    ArrayAttr epsilons, ValueRange extras) {
  static const StringRef activations[] = {
      "relu", "gelu", "gelu_tanh", "silu", "tanh", "sigmoid", "hardswish"};
  size_t nextExtra = 0, nextScale = 0, nextEpsilon = 0;
  for (auto [index, attr] : llvm::enumerate(epilogue)) {
    StringRef step = cast<StringAttr>(attr).getValue();
    if (step == "scale" || step == "shift" || step == "max" || step == "min") {
      ++nextScale;
      continue;
    }
    if (llvm::is_contained(activations, step))
      continue;
    if (step != "add_bias" && step != "add_residual" && step != "batch_norm")
      return diag.error("epilogue step ", index, " is '", step,
                        "', expected add_bias, add_residual, batch_norm, "
                        "scale, shift, max, min, relu, gelu, gelu_tanh, silu, "
                        "tanh, "
                        "sigmoid or hardswish");
    size_t operands = step == "batch_norm" ? 4 : 1;
    if (step == "batch_norm") {
      if (channelDim != 1)
        return diag.error("epilogue step ", index,
                          " 'batch_norm' needs the channels at dim 1");
      ++nextEpsilon;
    }
    if (nextExtra + operands > extras.size())
      return diag.error("epilogue step ", index, " '", step, "' needs ",
                        operands, " extra operand(s) from #", nextExtra, " (",
                        extras.size(), " given)");
    for (size_t i = 1; i < operands; ++i) {
      std::string name = "extra operand " + std::to_string(nextExtra);
      FailureOr<RankedTensorType> param = getTensor(
          diag, name, extras[nextExtra++].getType(), ElementKind::Float);
      if (failed(param) ||
          failed(
              checkSameElementType(diag, "the result", result, name, *param)) ||
          failed(checkShape(diag, name + " (batch_norm)", *param,
                            {result.getDimSize(channelDim)})))
        return failure();
    }
    std::string name = "extra operand " + std::to_string(nextExtra);
    FailureOr<RankedTensorType> extra = getTensor(
        diag, name, extras[nextExtra++].getType(), ElementKind::Float);
    if (failed(extra) ||
        failed(checkSameElementType(diag, "the result", result, name, *extra)))
      return failure();
    if (step == "add_residual") {
      if (failed(checkShape(diag, name + " (residual)", *extra,
                            result.getShape())))
        return failure();
      continue;
    }
    if (step == "batch_norm") {
      if (failed(checkShape(diag, name + " (batch_norm)", *extra,
                            {result.getDimSize(channelDim)})))
        return failure();
      continue;
    }
    // A bias is [C], or C at the channel dim right-aligned to the result
    // with every other dim 1.
    int64_t channels = result.getDimSize(channelDim);
    ArrayRef<int64_t> shape = extra->getShape();
    int64_t offset = result.getRank() - extra->getRank();
    bool ok = shape.size() == 1 && shape[0] == channels;
    if (!ok && offset >= 0 && offset <= channelDim) {
      ok = true;
      for (auto [d, size] : llvm::enumerate(shape))
        ok &= size == (int64_t(d) + offset == channelDim ? channels : 1);
    }
    if (!ok)
      return diag.error("expected ", name, " (bias) to broadcast along dim ",
                        channelDim, " of the result (", channels,
                        " channels), got ", ShapeString{shape});
  }
  if (nextExtra != extras.size())
    return diag.error("epilogue consumes ", nextExtra, " extra operands, got ",
                      extras.size());
  if (nextScale != scales.size())
    return diag.error("epilogue has ", nextScale, " scale steps, got ",
                      scales.size(), " scales");
  if (nextEpsilon != epsilons.size())
    return diag.error("epilogue has ", nextEpsilon, " batch_norm steps, got ",
                      epsilons.size(), " epsilons");
  return success();
}

LogicalResult FusedMatmulOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  if (failed(inferMatmul(diag, adaptor, inferredReturnTypes)))
    return failure();
  auto result = cast<RankedTensorType>(inferredReturnTypes.back());
  if (!isElementOfKind(result.getElementType(), ElementKind::Float))
    return diag.error("expected a float element type, got ",
                      result.getElementType());
  return verifyEpilogue(diag, result, result.getRank() - 1,
                        adaptor.getEpilogue(), adaptor.getScales(),
                        adaptor.getEpsilons(), adaptor.getExtras());
}

LogicalResult FusedConv2dOp::inferReturnTypes(
    MLIRContext *context, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  if (failed(inferConv2d(diag, adaptor, Value(), inferredReturnTypes)))
    return failure();
  auto result = cast<RankedTensorType>(inferredReturnTypes.back());
  return verifyEpilogue(diag, result, 1, adaptor.getEpilogue(),
                        adaptor.getScales(), adaptor.getEpsilons(),
                        adaptor.getExtras());
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

LogicalResult
AttentionOp::inferReturnTypes(MLIRContext *context,
                              std::optional<Location> location, Adaptor adaptor,
                              SmallVectorImpl<Type> &inferredReturnTypes) {
  ShapeDiagnostics diag(location, getOperationName());
  FailureOr<RankedTensorType> q =
      getTensor(diag, "q", adaptor.getQ().getType(), ElementKind::Float);
  if (failed(q) || failed(checkRank(diag, "q", *q, 4, " [B, H, Sq, D]")))
    return failure();
  FailureOr<RankedTensorType> k =
      getTensor(diag, "k", adaptor.getK().getType(), ElementKind::Float);
  if (failed(k) || failed(checkRank(diag, "k", *k, 4, " [B, Hk, Sk, D]")) ||
      failed(checkSameElementType(diag, "q", *q, "k", *k)))
    return failure();
  FailureOr<RankedTensorType> v =
      getTensor(diag, "v", adaptor.getV().getType(), ElementKind::Float);
  if (failed(v) || failed(checkRank(diag, "v", *v, 4, " [B, Hk, Sk, Dv]")) ||
      failed(checkSameElementType(diag, "q", *q, "v", *v)))
    return failure();
  ArrayRef<int64_t> qs = q->getShape(), ks = k->getShape(), vs = v->getShape();
  int64_t batch = qs[0], heads = qs[1], sq = qs[2], depth = qs[3];
  int64_t kvHeads = ks[1], sk = ks[2];
  if (ks[0] != batch || ks[3] != depth)
    return diag.error("expected k of shape [", batch, ", Hk, Sk, ", depth,
                      "] (batch and head dim of q), got ", ShapeString{ks});
  if (vs[0] != batch || vs[1] != kvHeads || vs[2] != sk)
    return diag.error("expected v of shape [", batch, ", ", kvHeads, ", ", sk,
                      ", Dv] (batch, heads and keys of k), got ",
                      ShapeString{vs});
  if (kvHeads <= 0 || heads % kvHeads != 0)
    return diag.error("expected the query heads (", heads,
                      ") to be a multiple of the key/value heads (", kvHeads,
                      ")");
  if (std::optional<llvm::APFloat> scale = adaptor.getScale())
    if (!scale->isFiniteNonZero())
      return diag.error("expected a finite, nonzero scale");
  if (std::optional<llvm::APFloat> softcap = adaptor.getSoftcap())
    if (!softcap->isFiniteNonZero() || softcap->isNegative())
      return diag.error("expected a finite, positive softcap");
  SmallVector<int64_t> scores{batch, heads, sq, sk};
  if (Value maskValue = adaptor.getMask()) {
    auto mask = dyn_cast<RankedTensorType>(maskValue.getType());
    if (!mask || !mask.hasStaticShape())
      return diag.error("expected mask to be a statically shaped tensor, got ",
                        maskValue.getType());
    if (mask.getElementType() != q->getElementType() &&
        !mask.getElementType().isInteger(1))
      return diag.error("expected mask of element type ", q->getElementType(),
                        " (additive) or i1 (boolean), got ",
                        mask.getElementType());
    std::optional<SmallVector<int64_t>> shape =
        broadcastShapes(mask.getShape(), scores);
    if (mask.getRank() > 4 || !shape || *shape != scores)
      return diag.error("expected mask to broadcast to the scores' shape ",
                        ShapeString{scores}, ", got ",
                        ShapeString{mask.getShape()});
  }
  if (adaptor.getCausalInMask()) {
    Value mask = adaptor.getMask();
    if (!mask || !isa<FloatType>(
                     cast<RankedTensorType>(mask.getType()).getElementType()))
      return diag.error("causal_in_mask needs an additive mask");
    if (adaptor.getCausal())
      return diag.error("causal_in_mask needs causal = false (with causal, "
                        "the keys above the diagonal are dropped anyway)");
  }
  inferredReturnTypes.push_back(
      RankedTensorType::get({batch, heads, sq, vs[3]}, q->getElementType()));
  return success();
}

#define GET_OP_CLASSES
#include "ir/KilnOps.cpp.inc"
