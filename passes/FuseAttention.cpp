//===- passes/FuseAttention.cpp - kiln-fuse-attention ---------------------===//
//
// Rewrites unfused scaled dot-product attention into kiln.attention.
//
// Every last-axis softmax is looked at from the inside out:
//
//   scores = matmul(Q, K^T)            <- the scores matmul
//   x      = step_n(... step_1(scores))  scale, mask, cast steps
//   p      = softmax(x)
//   out    = matmul(cast?(p), V)        <- the output matmul
//
// The steps are read backwards from the softmax to the scores matmul, then
// replayed forwards into one canonical description (Canonical): a single
// scale, additive masks each with the scale applied after it, boolean masks,
// and a causal flag. Scales on Q and K (before the head split too) are folded
// into the same scale. Masks computed from constants alone are evaluated
// element by element (MaskEvaluator) to see whether they are the causal
// pattern, which then needs no mask operand at all. Reshapes that only
// regroup the leading dims ([B*H, S, S] <-> [B, H, S, S], as Bloom and
// GPT-NeoX write it) may sit between the scores matmul and the softmax and
// between the softmax and the output matmul; Q, K, V and the masks applied
// before them are then regrouped to the softmax's shape.
//
// Before matching, a few identities put spellings that have no place in
// that chain into ones that do (canonicalizeCandidates: (K Q^T)^T, V P^T,
// exp(log_softmax), a hand-written max shift, grouped-query heads
// broadcast in rank 5).
//
// Apart from those identities, nothing is changed until a candidate fully
// matches; a candidate that does not match is left as it is and, with
// `remarks`, gets a remark that says which step stopped it.
//
//===----------------------------------------------------------------------===//
#include "ir/ElementTypes.h"
#include "ir/KilnDialect.h"
#include "ir/KilnOps.h"
#include "ir/ShapeUtils.h"
#include "passes/ConstantData.h"
#include "passes/Matchers.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Matchers.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <functional>
#include <limits>
#include <memory>

namespace kiln {
#define GEN_PASS_DEF_FUSEATTENTIONPASS
#include "passes/Passes.h.inc"

namespace {

using mlir::Operation;
using mlir::RankedTensorType;
using mlir::Value;

/// Mask entries at or below this count as masked out: exp(-1e4 + any
/// realistic score) is 0 in f32 and f64, so dropping them changes nothing
/// except in rows where every key is masked out.
constexpr double kMaskedOut = -1e4;

/// Largest mask (Sq * Sk entries) inspected for the causal pattern.
constexpr int64_t kMaxCausalCheck = int64_t(1) << 27;

RankedTensorType tensorType(Value v) {
  return mlir::cast<RankedTensorType>(v.getType());
}

std::string describe(Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "'" << op->getName() << "'";
  return s;
}

std::string shapeText(llvm::ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << ShapeString{shape};
  return s;
}

//===----------------------------------------------------------------------===//
// Mask evaluation
//===----------------------------------------------------------------------===//

/// Evaluates, element by element, a value computed from constants only
/// (constants, elementwise ops, compare, where, cast and shape ops), without
/// materializing it. Used to recognize causal masks however they are built.
class MaskEvaluator {
public:
  /// Reads one element of a node's value at a multi-index of its shape.
  using Fn = std::function<double(const int64_t *index)>;

  /// The evaluator of `v`, or nullptr when it depends on something that is
  /// not a constant (an input, a parameter) or on an op not handled here.
  Fn build(Value v, int depth = 0) {
    if (depth > 16)
      return nullptr;
    Operation *op = v.getDefiningOp();
    if (!op)
      return nullptr;
    auto shape = tensorType(v).getShape();
    if (auto constant = mlir::dyn_cast<ConstantOp>(op))
      return buildConstant(constant);
    if (mlir::isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, CompareOp>(
            op)) {
      Fn lhs = operand(op->getOperand(0), shape, depth);
      Fn rhs = operand(op->getOperand(1), shape, depth);
      if (!lhs || !rhs)
        return nullptr;
      std::function<double(double, double)> f;
      if (mlir::isa<AddOp>(op))
        f = [](double a, double b) { return a + b; };
      else if (mlir::isa<SubOp>(op))
        f = [](double a, double b) { return a - b; };
      else if (mlir::isa<MulOp>(op))
        f = [](double a, double b) { return a * b; };
      else if (mlir::isa<DivOp>(op)) {
        if (!mlir::isa<mlir::FloatType>(tensorType(v).getElementType()))
          return nullptr; // integer division rounds; not needed here
        f = [](double a, double b) { return a / b; };
      } else if (mlir::isa<PowOp>(op))
        f = [](double a, double b) { return std::pow(a, b); };
      else if (mlir::isa<MaxOp>(op))
        f = [](double a, double b) { return std::max(a, b); };
      else if (mlir::isa<MinOp>(op))
        f = [](double a, double b) { return std::min(a, b); };
      else {
        llvm::StringRef p = mlir::cast<CompareOp>(op).getPredicate();
        if (p == "eq")
          f = [](double a, double b) { return double(a == b); };
        else if (p == "ne")
          f = [](double a, double b) { return double(a != b); };
        else if (p == "lt")
          f = [](double a, double b) { return double(a < b); };
        else if (p == "le")
          f = [](double a, double b) { return double(a <= b); };
        else if (p == "gt")
          f = [](double a, double b) { return double(a > b); };
        else if (p == "ge")
          f = [](double a, double b) { return double(a >= b); };
        else
          return nullptr;
      }
      return [lhs, rhs, f](const int64_t *i) { return f(lhs(i), rhs(i)); };
    }
    if (auto where = mlir::dyn_cast<WhereOp>(op)) {
      Fn c = operand(where.getCond(), shape, depth);
      Fn x = operand(where.getX(), shape, depth);
      Fn y = operand(where.getY(), shape, depth);
      if (!c || !x || !y)
        return nullptr;
      return [c, x, y](const int64_t *i) { return c(i) != 0 ? x(i) : y(i); };
    }
    if (mlir::isa<NegOp, SqrtOp, RsqrtOp, ReciprocalOp>(op)) {
      Fn x = build(op->getOperand(0), depth + 1);
      if (!x)
        return nullptr;
      if (mlir::isa<NegOp>(op))
        return [x](const int64_t *i) { return -x(i); };
      if (mlir::isa<SqrtOp>(op))
        return [x](const int64_t *i) { return std::sqrt(x(i)); };
      if (mlir::isa<RsqrtOp>(op))
        return [x](const int64_t *i) { return 1.0 / std::sqrt(x(i)); };
      return [x](const int64_t *i) { return 1.0 / x(i); };
    }
    if (auto cast = mlir::dyn_cast<CastOp>(op)) {
      Fn x = build(cast.getX(), depth + 1);
      if (!x)
        return nullptr;
      mlir::Type to = tensorType(v).getElementType();
      if (to.isInteger(1))
        return [x](const int64_t *i) { return double(x(i) != 0); };
      if (mlir::isa<mlir::IntegerType>(to))
        return [x](const int64_t *i) { return std::trunc(x(i)); };
      return x; // float widening/narrowing keeps 0, -inf and the order
    }
    if (auto broadcast = mlir::dyn_cast<BroadcastToOp>(op))
      return operand(broadcast.getX(), shape, depth);
    if (auto reshape = mlir::dyn_cast<ReshapeOp>(op))
      return remap(reshape.getX(), depth,
                   [shape](const int64_t *i, llvm::ArrayRef<int64_t> from,
                           int64_t *out) {
                     int64_t linear = 0;
                     for (size_t d = 0; d < shape.size(); ++d)
                       linear = linear * shape[d] + i[d];
                     for (size_t d = from.size(); d-- > 0;) {
                       out[d] = linear % from[d];
                       linear /= from[d];
                     }
                   });
    if (auto transpose = mlir::dyn_cast<TransposeOp>(op)) {
      llvm::SmallVector<int64_t> perm(transpose.getPerm());
      return remap(
          transpose.getX(), depth,
          [perm](const int64_t *i, llvm::ArrayRef<int64_t>, int64_t *out) {
            for (size_t d = 0; d < perm.size(); ++d)
              out[perm[d]] = i[d];
          });
    }
    if (auto slice = mlir::dyn_cast<SliceOp>(op)) {
      llvm::SmallVector<int64_t> starts(slice.getStarts()),
          steps(slice.getSteps());
      return remap(slice.getX(), depth,
                   [starts, steps](const int64_t *i, llvm::ArrayRef<int64_t>,
                                   int64_t *out) {
                     for (size_t d = 0; d < starts.size(); ++d)
                       out[d] = starts[d] + i[d] * steps[d];
                   });
    }
    return nullptr;
  }

private:
  /// `v` read at the index of a result of shape `shape` it broadcasts to.
  Fn operand(Value v, llvm::ArrayRef<int64_t> shape, int depth) {
    llvm::SmallVector<int64_t> own(tensorType(v).getShape());
    int64_t offset = int64_t(shape.size()) - int64_t(own.size());
    if (offset == 0 && llvm::ArrayRef<int64_t>(own) == shape)
      return build(v, depth + 1);
    return remap(
        v, depth,
        [own, offset](const int64_t *i, llvm::ArrayRef<int64_t>, int64_t *out) {
          for (size_t d = 0; d < own.size(); ++d)
            out[d] = own[d] == 1 ? 0 : i[d + offset];
        });
  }

  /// `source` read at an index computed from the node's index by `map`.
  template <typename Map> Fn remap(Value source, int depth, Map map) {
    Fn f = build(source, depth + 1);
    if (!f)
      return nullptr;
    llvm::SmallVector<int64_t> from(tensorType(source).getShape());
    return [f, map, from](const int64_t *i) {
      int64_t index[16];
      map(i, from, index);
      return f(index);
    };
  }

  Fn buildConstant(ConstantOp constant) {
    StatusOr<Tensor> data = constantToTensor(constant.getValue());
    if (!data)
      return nullptr;
    auto tensor = std::make_shared<Tensor>(std::move(*data));
    std::vector<int64_t> strides(tensor->shape().size(), 1);
    for (size_t d = strides.size(); d-- > 1;)
      strides[d - 1] = strides[d] * tensor->shape()[d];
    auto offset = [strides](const int64_t *i) {
      int64_t o = 0;
      for (size_t d = 0; d < strides.size(); ++d)
        o += i[d] * strides[d];
      return o;
    };
    auto read = [tensor, offset]<typename T>(T *) -> Fn {
      const T *p = static_cast<const T *>(tensor->data());
      return [tensor, p, offset](const int64_t *i) {
        return double(p[offset(i)]);
      };
    };
    switch (tensor->dtype()) {
    case DType::f32:
      return read((float *)nullptr);
    case DType::f64:
      return read((double *)nullptr);
    case DType::i64:
      return read((int64_t *)nullptr);
    case DType::i32:
      return read((int32_t *)nullptr);
    case DType::i8:
      return read((int8_t *)nullptr);
    case DType::u8:
    case DType::i1:
      return read((uint8_t *)nullptr);
    default: {
      // f16/bf16: convert once through the runtime's conversion.
      std::vector<double> values = tensor->toDoubles();
      auto shared = std::make_shared<std::vector<double>>(std::move(values));
      return
          [shared, offset](const int64_t *i) { return (*shared)[offset(i)]; };
    }
    }
  }
};

/// The value of a splat constant, or of a one-element value computed from
/// constants only (e.g. `sqrt(64)` or `64 ** 0.5` left by an ONNX export),
/// as a double.
std::optional<double> splatValue(Value v) {
  mlir::Attribute attr;
  if (mlir::matchPattern(v, mlir::m_Constant(&attr))) {
    auto dense = mlir::dyn_cast<mlir::DenseElementsAttr>(attr);
    if (dense && dense.isSplat()) {
      mlir::Type type = dense.getElementType();
      if (mlir::isa<mlir::FloatType>(type))
        return dense.getSplatValue<llvm::APFloat>().convertToDouble();
      if (type.isInteger(1))
        return dense.getSplatValue<bool>() ? 1.0 : 0.0;
      if (mlir::isa<mlir::IntegerType>(type))
        return double(dense.getSplatValue<llvm::APInt>().getSExtValue());
    }
  }
  RankedTensorType type = tensorType(v);
  if (type.getNumElements() != 1)
    return std::nullopt;
  MaskEvaluator evaluator;
  MaskEvaluator::Fn f = evaluator.build(v);
  if (!f)
    return std::nullopt;
  llvm::SmallVector<int64_t> zeros(std::max<int64_t>(type.getRank(), 1), 0);
  return f(zeros.data());
}

/// Whether `holds(index, value)` is true at every element of `v`, computed
/// from constants only (MaskEvaluator); false as well when that cannot be
/// decided from constants or `v` has more than kMaxCausalCheck elements.
bool holdsAt(Value v, llvm::function_ref<bool(const int64_t *, double)> holds) {
  RankedTensorType type = tensorType(v);
  if (type.getRank() > 16 || type.getNumElements() > kMaxCausalCheck)
    return false;
  MaskEvaluator evaluator;
  MaskEvaluator::Fn f = evaluator.build(v);
  if (!f)
    return false;
  auto shape = type.getShape();
  llvm::SmallVector<int64_t> index(shape.size(), 0);
  for (int64_t n = 0; n < type.getNumElements(); ++n) {
    for (int64_t d = shape.size(), rest = n; d-- > 0;) {
      index[d] = rest % shape[d];
      rest /= shape[d];
    }
    if (!holds(index.data(), f(index.data())))
      return false;
  }
  return true;
}

/// holdsAt for a property of the value alone; a splat is checked once.
bool holdsEverywhere(Value v, llvm::function_ref<bool(double)> holds) {
  if (std::optional<double> splat = splatValue(v))
    return holds(*splat);
  return holdsAt(v, [&](const int64_t *, double x) { return holds(x); });
}

/// Whether `mask` (boolean: true keeps, or true masks when `trueKeeps` is
/// false, as in masked_fill; additive: 0 keeps, <= kMaskedOut masks) masks
/// out every key above the diagonal for `sq` queries and `sk` keys, j > i +
/// (sk - sq), and, when `exactly`, keeps every other key: the causal
/// pattern; otherwise it may mask more (a sliding window, Mistral's band).
/// The same for every batch and head (a mask expanded over them, as HF's
/// [B, 1, S, S] masks are, is checked for each). False as well when that
/// cannot be decided from constants alone.
bool masksAboveDiagonal(Value mask, bool boolean, int64_t sq, int64_t sk,
                        bool trueKeeps, bool exactly) {
  llvm::ArrayRef<int64_t> shape = tensorType(mask).getShape();
  int64_t rank = shape.size();
  if (rank < 2 || shape[rank - 2] != sq || shape[rank - 1] != sk)
    return false;
  return holdsAt(mask, [&](const int64_t *index, double value) {
    int64_t i = index[rank - 2], j = index[rank - 1];
    bool keep = j <= i + (sk - sq);
    if (keep && !exactly)
      return true;
    return boolean ? ((value != 0) == trueKeeps) == keep
                   : (keep ? value == 0 : value <= kMaskedOut);
  });
}

/// Whether `mask` is the causal pattern (see masksAboveDiagonal).
bool isCausalMask(Value mask, bool boolean, int64_t sq, int64_t sk,
                  bool trueKeeps = true) {
  return masksAboveDiagonal(mask, boolean, sq, sk, trueKeeps, true);
}

/// A reshape that only regroups the leading dims of [..., Sq, Sk] (e.g.
/// [B*H, Sq, Sk] <-> [B, H, Sq, Sk]), result rank at most `maxRank`: 4 where
/// the result is the softmax's input or the probabilities; between the
/// scores matmul and the softmax, 6 (Swin views its scores as [B, windows,
/// H, N, N] to add the shifted-window mask, then back).
bool isRegroup(Operation *op, int64_t maxRank = 4) {
  auto reshape = mlir::dyn_cast_or_null<ReshapeOp>(op);
  if (!reshape)
    return false;
  auto in = tensorType(reshape.getX()).getShape();
  auto out = tensorType(reshape).getShape();
  return in.size() >= 2 && out.size() >= 2 && int64_t(out.size()) <= maxRank &&
         in.take_back(2) == out.take_back(2);
}

/// The rank up to which the scores may be regrouped between the scores
/// matmul and the softmax.
constexpr int64_t kMaxInteriorRank = 6;

/// The leading dims of `shape` (all but the last two).
llvm::SmallVector<int64_t> leadingDims(llvm::ArrayRef<int64_t> shape) {
  return llvm::SmallVector<int64_t>(shape.drop_back(2));
}

/// Whether `v` is zero everywhere (an additive mask that changes nothing,
/// e.g. the zeros GPT-NeoX passes to baddbmm).
bool isZeroMask(Value v) {
  return holdsEverywhere(v, [](double x) { return x == 0; });
}

/// Whether every masked-out value (<= kMaskedOut) of `mask` is -inf.
bool masksWithNegativeInfinity(Value mask) {
  return holdsEverywhere(
      mask, [](double x) { return x > kMaskedOut || std::isinf(x); });
}

/// One part of a mask: additive (0 keeps, <= kMaskedOut masks out) or
/// boolean (true keeps, or true masks out when `keepWhenTrue` is false).
struct MaskPart {
  Value value;
  bool boolean = false;
  bool keepWhenTrue = true;
  /// The shape it is applied in, when a reshape that regroups the leading
  /// dims follows it; else empty (the shape the whole mask is applied in).
  llvm::SmallVector<int64_t> appliedShape;
  /// A boolean part split off an additive `where(c, fill, a)`: the fill
  /// that masks out where it says so.
  std::optional<double> fill;
};

/// Splits a mask that combines several into its parts, so that a causal
/// part is recognized on its own when a padding mask is combined with it
/// (GPT-2 with `&`, Bloom with `|`, the 4-D masks of LLaMA-style models
/// built by masked_fill or by adding a padding mask):
///
///   additive a + b                 -> additive a, additive b
///   additive where(c, fill, a)     -> additive a, c (true masks out)
///   additive where(c, a, fill)     -> additive a, c (true keeps)
///   boolean keep where(a, b, false) (a and b)   -> a, b (true keeps)
///   boolean mask where(a, true, b)  (a or b)    -> a, b (true masks out)
///   boolean compare(x, false, "eq")  (not x)    -> x, the other sense
///   a part broadcast_to(x)                      -> x
///   slice(x) of all of x                        -> x
///   reshape(m) regrouping the leading dims      -> the parts of m, applied
///                                                  in m's shape
///
/// with `fill` a splat <= kMaskedOut. The parts applied one after the other
/// mask out exactly what the whole does. `shape` is the shape the whole is
/// applied in.
void splitMask(const MaskPart &mask, llvm::ArrayRef<int64_t> shape,
               llvm::SmallVectorImpl<MaskPart> &parts, int depth = 0) {
  Operation *op = mask.value.getDefiningOp();
  auto split = [&](Value value, bool boolean, bool keepWhenTrue,
                   std::optional<double> fill = std::nullopt) {
    MaskPart part{value, boolean, keepWhenTrue, mask.appliedShape,
                  fill ? fill : mask.fill};
    splitMask(part, shape, parts, depth + 1);
  };
  // nn.MultiheadAttention sums its masks on [B*H, S, S] and views the sum
  // as [B, H, S, S].
  llvm::ArrayRef<int64_t> applied =
      mask.appliedShape.empty() ? shape : mask.appliedShape;
  if (isRegroup(op) && depth < 8 &&
      tensorType(mask.value).getShape() == applied) {
    MaskPart part{
        op->getOperand(0), mask.boolean, mask.keepWhenTrue, {}, mask.fill};
    part.appliedShape.assign(tensorType(part.value).getShape().begin(),
                             tensorType(part.value).getShape().end());
    return splitMask(part, shape, parts, depth + 1);
  }
  auto isSplatOf = [](Value v, double value) {
    std::optional<double> s = splatValue(v);
    return s && *s == value;
  };
  auto masksOut = [](Value v) {
    std::optional<double> s = splatValue(v);
    return s && *s <= kMaskedOut;
  };
  // A part broadcast to the whole's shape is applied the same unbroadcast
  // (the parts broadcast to the scores either way).
  if (auto broadcast = mlir::dyn_cast_or_null<BroadcastToOp>(op);
      broadcast && depth > 0 && depth < 8)
    return split(broadcast.getX(), mask.boolean, mask.keepWhenTrue);
  // A slice of all of it (HF's `mask[:, :, :, :key_len]`) is the mask.
  if (auto slice = mlir::dyn_cast_or_null<SliceOp>(op);
      slice && depth < 8 && slice.getX().getType() == slice.getType() &&
      llvm::all_of(slice.getStarts(), [](int64_t s) { return s == 0; }) &&
      llvm::all_of(slice.getSteps(), [](int64_t s) { return s == 1; }))
    return split(slice.getX(), mask.boolean, mask.keepWhenTrue);
  if (op && depth < 8) {
    if (!mask.boolean) {
      if (auto add = mlir::dyn_cast<AddOp>(op)) {
        split(add.getLhs(), false, true);
        split(add.getRhs(), false, true);
        return;
      }
      if (auto where = mlir::dyn_cast<WhereOp>(op)) {
        bool fillX = masksOut(where.getX()), fillY = masksOut(where.getY());
        if (fillX != fillY) {
          split(where.getCond(), true, /*keepWhenTrue=*/fillY,
                splatValue(fillX ? where.getX() : where.getY()));
          split(fillX ? where.getY() : where.getX(), false, true);
          return;
        }
      }
    } else if (auto where = mlir::dyn_cast<WhereOp>(op)) {
      if (mask.keepWhenTrue ? isSplatOf(where.getY(), 0)
                            : isSplatOf(where.getX(), 1)) {
        split(where.getCond(), true, mask.keepWhenTrue);
        split(mask.keepWhenTrue ? where.getX() : where.getY(), true,
              mask.keepWhenTrue);
        return;
      }
    } else if (auto compare = mlir::dyn_cast<CompareOp>(op)) {
      if (compare.getPredicate() == "eq" &&
          tensorType(compare.getLhs()).getElementType().isInteger(1) &&
          isSplatOf(compare.getRhs(), 0)) {
        split(compare.getLhs(), true, !mask.keepWhenTrue);
        return;
      }
    }
  }
  parts.push_back(mask);
}

//===----------------------------------------------------------------------===//
// Matching
//===----------------------------------------------------------------------===//

/// One op between the scores matmul and the softmax.
struct Step {
  enum Kind {
    Scale,
    RowScale,
    ColumnScale,
    AddMask,
    WhereMask,
    Cast,
    Regroup,
    Tanh
  } kind;
  Operation *op;
  /// The shape the step works in (its result's shape): the scores' shape,
  /// or before a Regroup, the shape with other leading dims.
  llvm::SmallVector<int64_t> shape;
  double scale = 1; // Scale
  Value mask;       // AddMask: the mask; WhereMask: the condition; RowScale,
                    // ColumnScale: the factor
  bool keepWhenTrue = true; // WhereMask
  double fill = 0;          // WhereMask: the value it selects where masked
  bool negate = false;      // AddMask: subtracted (scores - mask)
  bool divide = false;      // RowScale, ColumnScale: scores / factor
};

/// A candidate in canonical form, ready to rewrite.
struct Canonical {
  SoftmaxOp softmax;
  MatmulOp scores, output;
  llvm::SmallVector<Operation *> chain; // scores..softmax..output, in order
  Value q, k, v;
  double scale = 1;
  /// One mask, with the shape of the scores where it was applied: other
  /// leading dims than the softmax's when a reshape that regroups them
  /// (Bloom's and GPT-NeoX's [B*H, S, S] -> [B, H, S, S]) follows it.
  struct Mask {
    Value value;
    llvm::SmallVector<int64_t> appliedShape;
    /// Additive: the scale that multiplies it after it.
    double factor = 1;
    /// Additive: tensor factors (per query or head, or per key) that
    /// multiply it after it, or divide it when the flag is set.
    llvm::SmallVector<std::pair<Value, bool>> tensorFactors;
    /// Boolean: whether true keeps (else true masks out).
    bool keepWhenTrue = true;
    /// Additive: subtracted from the scores rather than added.
    bool negate = false;
    /// Additive, from where(cond, scores, fill) with a fill that absorbs
    /// any score (s + fill == fill in f32): `value` is the condition, and
    /// the mask so far becomes where(cond kept, mask so far, fill). The
    /// kernel then adds what the where selected, so a row in which every
    /// key is masked averages V as the unfused ops do.
    std::optional<double> replaceFill;
    /// replaceFill is finite but does not absorb the scores (-1e9): the
    /// kernel gets an absorbing fill instead (see substitutesFill).
    bool absorbingSubstitute = false;
  };
  llvm::SmallVector<Mask> additive, boolean;
  /// Factors the same for every key (last dim 1), in the scores' shape,
  /// applied to Q at rewrite: (factor, whether Q is divided by it).
  llvm::SmallVector<std::pair<Value, bool>> rowScales;
  /// Factors the same for every query (second-to-last dim 1), in the
  /// scores' shape, applied to K at rewrite (transposed).
  llvm::SmallVector<std::pair<Value, bool>> columnScales;
  bool causal = false;
  /// Soft-capping (a tanh between scales): the product of the scales after
  /// the tanh, which the op's `softcap` is; 0 without.
  double softcap = 0;
  /// The additive mask keeps a causal part with finite fills whole (see
  /// addMask): the op gets the causal_in_mask hint.
  bool causalInMask = false;
  /// A where with a finite fill that stays a boolean mask (f16/bf16 scores,
  /// or an additive mask added after it): its keys are excluded, so a row
  /// in which it masks every key gives zeros, where the unfused ops weigh
  /// the fill. Said in the remark.
  std::optional<double> excludedFiniteFill;
  /// Single-use muls/divs by a splat on Q or K, folded into `scale` and
  /// bypassed at rewrite.
  llvm::SmallVector<Operation *> bypassed;
};

struct Rejection {
  std::string reason;
};

/// Whether `v` is computed from a matmul through steps that could be part
/// of a score chain (so the other operand of an add is the mask).
bool reachesMatmul(Value v, int depth = 0) {
  Operation *op = v.getDefiningOp();
  if (!op || depth > 12)
    return false;
  if (mlir::isa<MatmulOp>(op))
    return tensorType(v).getRank() >= 2;
  if (mlir::isa<CastOp, TanhOp>(op) || isRegroup(op, kMaxInteriorRank))
    return reachesMatmul(op->getOperand(0), depth + 1);
  if (mlir::isa<MulOp, DivOp, AddOp>(op))
    return reachesMatmul(op->getOperand(0), depth + 1) ||
           reachesMatmul(op->getOperand(1), depth + 1);
  if (mlir::isa<SubOp>(op))
    return reachesMatmul(op->getOperand(0), depth + 1);
  if (auto where = mlir::dyn_cast<WhereOp>(op))
    return reachesMatmul(where.getX(), depth + 1) ||
           reachesMatmul(where.getY(), depth + 1);
  return false;
}

/// How a factor applied to [.., Sq, Sk] scores or probabilities varies:
/// constant along the keys (last dim 1: per query or head), constant along
/// the queries (second-to-last dim 1, or rank 1: per key), or neither.
enum class FactorAxes { PerRow, PerKey, Both };
FactorAxes factorAxes(llvm::ArrayRef<int64_t> shape) {
  if (shape.empty() || shape.back() == 1)
    return FactorAxes::PerRow;
  if (shape.size() == 1 || shape[shape.size() - 2] == 1)
    return FactorAxes::PerKey;
  return FactorAxes::Both;
}

/// The shape of a per-key factor [.., 1, Sk] (or [Sk]) as the column
/// [.., Sk, 1] that scales the rows of K or V, with leading 1s up to `rank`
/// (at least 2).
llvm::SmallVector<int64_t> keyColumnShape(llvm::ArrayRef<int64_t> shape,
                                          int64_t rank = 2) {
  llvm::SmallVector<int64_t> column(
      std::max<int64_t>(rank - static_cast<int64_t>(shape.size()), 0), 1);
  llvm::append_range(column, shape);
  if (column.size() == 1)
    column.insert(column.begin(), 1);
  std::swap(column[column.size() - 1], column[column.size() - 2]);
  return column;
}

/// The per-key factor as that column: a reshape (one of the two is 1).
Value keyColumn(mlir::OpBuilder &b, mlir::Location loc, Value factor,
                int64_t rank = 2) {
  return b.create<ReshapeOp>(loc, factor,
                             b.getDenseI64ArrayAttr(keyColumnShape(
                                 tensorType(factor).getShape(), rank)));
}

/// The chain operand of `op` (the one coming from the scores), if `op` is
/// a step; the step is returned through `step`.
llvm::FailureOr<Value> readStep(Operation *op, Step &step,
                                Rejection &rejection) {
  step.op = op;
  auto fail = [&](std::string reason) {
    rejection.reason = std::move(reason);
    return mlir::failure();
  };
  if (isRegroup(op, kMaxInteriorRank)) {
    step.kind = Step::Regroup;
    return op->getOperand(0);
  }
  if (auto tanh = mlir::dyn_cast<TanhOp>(op)) {
    // Soft-capping: c * tanh(s / c), the scales around it read as steps.
    step.kind = Step::Tanh;
    return tanh.getX();
  }
  if (auto cast = mlir::dyn_cast<CastOp>(op)) {
    if (!mlir::isa<mlir::FloatType>(tensorType(cast.getX()).getElementType()) ||
        !mlir::isa<mlir::FloatType>(tensorType(cast).getElementType()))
      return fail("the scores are cast to a non-float type");
    step.kind = Step::Cast;
    return cast.getX();
  }
  if (mlir::isa<MulOp, DivOp>(op)) {
    Value lhs = op->getOperand(0), rhs = op->getOperand(1);
    std::optional<double> c = splatValue(rhs);
    Value chain = lhs;
    if (!c && mlir::isa<MulOp>(op)) {
      c = splatValue(lhs);
      chain = rhs;
    }
    if (!c) {
      // A factor that is the same for every key (per head or per query,
      // e.g. Swin V2's learned logit scale [H, 1, 1]) moves onto Q.
      Value factor = rhs;
      chain = lhs;
      if (mlir::isa<MulOp>(op) && !reachesMatmul(lhs)) {
        factor = lhs;
        chain = rhs;
      }
      // One the same for every query (per key, [.., 1, Sk]) moves onto K.
      FactorAxes axes = factorAxes(tensorType(factor).getShape());
      if (reachesMatmul(factor) ||
          !mlir::isa<mlir::FloatType>(tensorType(factor).getElementType()) ||
          axes == FactorAxes::Both)
        return fail(describe(op) +
                    " scales the scores by a value that varies along both "
                    "the queries and the keys (only a splat constant, a "
                    "factor per query or head, or one per key is fused)");
      step.kind =
          axes == FactorAxes::PerRow ? Step::RowScale : Step::ColumnScale;
      step.mask = factor;
      step.divide = mlir::isa<DivOp>(op);
      return chain;
    }
    if (!(*c > 0) || !std::isfinite(*c))
      return fail(describe(op) + " scales the scores by " + std::to_string(*c) +
                  ", not a positive finite constant");
    step.kind = Step::Scale;
    step.scale = mlir::isa<DivOp>(op) ? 1.0 / *c : *c;
    return chain;
  }
  if (auto add = mlir::dyn_cast<AddOp>(op)) {
    Value lhs = add.getLhs(), rhs = add.getRhs();
    bool lhsScores = reachesMatmul(lhs), rhsScores = reachesMatmul(rhs);
    if (!lhsScores && !rhsScores)
      return fail("the scores do not come from a matmul");
    // Both from matmuls (q k^T + q p^T, DeBERTa-style relative position
    // terms): the left one is taken as the scores and the other as an
    // additive bias, which is the same sum; a bias that broadcasts the
    // scores is refused by the shape check on the next step.
    if (lhsScores && rhsScores && tensorType(lhs) != tensorType(add) &&
        tensorType(rhs) == tensorType(add))
      lhsScores = false;
    step.kind = Step::AddMask;
    step.mask = lhsScores ? rhs : lhs;
    return lhsScores ? lhs : rhs;
  }
  // scores - m = scores + (-m)
  if (auto sub = mlir::dyn_cast<SubOp>(op)) {
    if (!reachesMatmul(sub.getLhs()) || reachesMatmul(sub.getRhs()))
      return fail("'kiln.sub' between the matmul and the softmax does not "
                  "subtract a mask from the scores");
    step.kind = Step::AddMask;
    step.mask = sub.getRhs();
    step.negate = true;
    return sub.getLhs();
  }
  if (auto where = mlir::dyn_cast<WhereOp>(op)) {
    std::optional<double> fillX = splatValue(where.getX());
    std::optional<double> fillY = splatValue(where.getY());
    step.kind = Step::WhereMask;
    step.mask = where.getCond();
    step.fill = fillY && !fillX ? *fillY : fillX && !fillY ? *fillX : 0;
    if (fillY && !fillX) {
      if (*fillY > kMaskedOut)
        return fail("the where's fill value " + std::to_string(*fillY) +
                    " does not mask out (expected -inf or <= -1e4)");
      step.keepWhenTrue = true;
      return where.getX();
    }
    if (fillX && !fillY) {
      if (*fillX > kMaskedOut)
        return fail("the where's fill value " + std::to_string(*fillX) +
                    " does not mask out (expected -inf or <= -1e4)");
      step.keepWhenTrue = false;
      return where.getY();
    }
    return fail("the where selects between two computed values, not "
                "between the scores and a splat fill");
  }
  return fail(describe(op) +
              " between the matmul and the softmax is not a scale, mask or "
              "cast");
}

/// Looks through single-use reshapes/transposes above `v` for a mul/div by
/// a positive splat constant with one use; returns it (to be bypassed) and
/// its factor.
std::optional<std::pair<Operation *, double>> findOperandScale(Value v) {
  for (int depth = 0; depth < 8; ++depth) {
    Operation *op = v.getDefiningOp();
    if (!op || !v.hasOneUse())
      return std::nullopt;
    if (mlir::isa<ReshapeOp, TransposeOp>(op)) {
      v = op->getOperand(0);
      continue;
    }
    if (!mlir::isa<MulOp, DivOp>(op))
      return std::nullopt;
    std::optional<double> c = splatValue(op->getOperand(1));
    bool scaledIsLhs = true;
    if (!c && mlir::isa<MulOp>(op)) {
      c = splatValue(op->getOperand(0));
      scaledIsLhs = false;
    }
    // The scaled operand must have the result's shape (the splat may not
    // broadcast it).
    Value scaled = op->getOperand(scaledIsLhs ? 0 : 1);
    if (!c || !(*c > 0) || !std::isfinite(*c) ||
        scaled.getType() != op->getResult(0).getType())
      return std::nullopt;
    return std::make_pair(op, mlir::isa<DivOp>(op) ? 1.0 / *c : *c);
  }
  return std::nullopt;
}

/// where(compare(p, p, "ne"), 0, p): the guard PyTorch's exported
/// scaled_dot_product_attention puts after the softmax, turning the NaN rows
/// of fully masked queries into zeros, which is what kiln.attention yields
/// for them. Returns (compare, where) when `probs` has exactly these users.
std::optional<std::pair<Operation *, Operation *>> matchNanGuard(Value probs) {
  CompareOp isNan;
  WhereOp select;
  for (Operation *user : probs.getUsers()) {
    if (auto c = mlir::dyn_cast<CompareOp>(user); c && c.getLhs() == probs &&
                                                  c.getRhs() == probs &&
                                                  c.getPredicate() == "ne")
      isNan = c;
    else if (auto w = mlir::dyn_cast<WhereOp>(user); w && w.getY() == probs)
      select = w;
    else
      return std::nullopt;
  }
  if (!isNan || !select || select.getCond() != isNan.getResult() ||
      !isNan->hasOneUse() || splatValue(select.getX()) != 0.0 ||
      select.getType() != probs.getType())
    return std::nullopt;
  return std::make_pair(isNan.getOperation(), select.getOperation());
}

/// Adds `mask`, applied to scores of shape `shape`, to `out`: as the causal
/// flag when it is the causal pattern, else as a mask operand. A mask that
/// combines a causal part with others (splitMask) is split when that finds
/// the causal part; an additive mask of zeros is dropped.
void addMask(Canonical &out, const MaskPart &mask,
             llvm::ArrayRef<int64_t> shape, int64_t sq, int64_t sk) {
  auto isCausal = [&](const MaskPart &part) {
    return isCausalMask(part.value, part.boolean, sq, sk, part.keepWhenTrue);
  };
  llvm::SmallVector<MaskPart> parts;
  splitMask(mask, shape, parts);
  // A boolean part that keeps every key (HF BART's where(true, causal,
  // false) and an all-true padding constant) masks nothing.
  if (parts.size() > 1)
    llvm::erase_if(parts, [](const MaskPart &part) {
      return part.boolean && holdsEverywhere(part.value, [&](double x) {
               return (x != 0) == part.keepWhenTrue;
             });
    });
  if (parts.empty())
    return;
  llvm::SmallVector<bool> causal;
  for (const MaskPart &part : parts)
    causal.push_back(isCausal(part));
  // An additive mask with more than a causal part stays whole, so that its
  // fills keep their values. The kernel drops the keys a causal flag or a
  // boolean mask excludes, where finite fills (the float minimum, -1e9)
  // only make them negligible; the two differ on a row in which every key
  // is masked out: the unfused ops average V over the keys with the
  // largest fill, the kernel gives zeros. A padding part left over makes
  // such rows: the padded queries of a left-padded causal batch (HF
  // LLaMA's 4-D mask). Such a whole mask gets the causal_in_mask hint,
  // with which the cpu kernel still skips the keys above the diagonal in
  // every row where the padding keeps a key (they weigh 0 there in f32).
  // Boolean masks are excluded keys either way. With -inf fills the
  // unfused ops give NaN on such rows, the kernel zeros (as documented for
  // kiln.attention): the split is kept.
  bool othersRemain = false, finiteCausalFill = false;
  for (auto [part, isPartCausal] : llvm::zip_equal(parts, causal)) {
    othersRemain |= !isPartCausal && (part.boolean || !isZeroMask(part.value));
    if (isPartCausal)
      finiteCausalFill |= part.boolean ? !part.fill || !std::isinf(*part.fill)
                                       : !masksWithNegativeInfinity(part.value);
  }
  if (!mask.boolean && othersRemain && finiteCausalFill && parts.size() > 1) {
    parts.assign({mask});
    causal.assign({false});
    out.causalInMask = true;
  }
  if (!llvm::is_contained(causal, true)) {
    // Nothing to gain from the parts: keep the mask as it was applied. An
    // additive one with a part that masks every key above the diagonal and
    // more (a sliding window) gets the causal_in_mask hint.
    bool whole = parts.size() > 1 && isCausal(mask);
    if (!whole && !mask.boolean &&
        llvm::any_of(parts, [&](const MaskPart &part) {
          return masksAboveDiagonal(part.value, part.boolean, sq, sk,
                                    part.keepWhenTrue, false);
        }))
      out.causalInMask = true;
    parts.assign({mask});
    causal.assign({whole});
  }
  for (auto [part, isPartCausal] : llvm::zip_equal(parts, causal)) {
    if (isPartCausal) {
      out.causal = true;
      continue;
    }
    if (!part.boolean && isZeroMask(part.value))
      continue;
    Canonical::Mask m{part.value, part.appliedShape.empty()
                                      ? llvm::SmallVector<int64_t>(shape)
                                      : part.appliedShape};
    m.keepWhenTrue = part.keepWhenTrue;
    (part.boolean ? out.boolean : out.additive).push_back(m);
  }
}

/// Whether a where's fill is finite and absorbs every sane score in f32
/// (s + fill == fill for |s| < 2^100): the float minimum HF's masked_fill
/// uses. Such a where, unlike an excluded key, leaves a row in which every
/// key is masked with equal scores: the unfused ops average V there (the
/// padded queries of a padded batch). Only for f32 scores: the minimum of
/// f16/bf16 does not absorb, and f64 scores would need a fill near 1e308.
bool absorbsScores(double fill, Operation *where) {
  return tensorType(where->getResult(0)).getElementType().isF32() &&
         std::isfinite(fill) && fill <= -1e38;
}

/// Whether a where's fill is finite and masks out (<= kMaskedOut) without
/// absorbing the scores: -1e9 or -1e4 on f32 scores (the Annotated
/// Transformer's masked_fill(mask == 0, -1e9)). On a row where it masks
/// every key the unfused ops average V (all scores equal the fill);
/// elsewhere its keys weigh exp(fill - max) = 0 in f32, unless the row's
/// largest kept score is within ~104 of the fill. An absorbing fill
/// (-FLT_MAX / 2) gives the same on both kinds of row, so the mask is made
/// to replace with that one, as long as no additive mask is added after
/// the where (the fill plus a bias that varies along the keys would not be
/// the same for every key).
bool substitutesFill(double fill, Operation *where) {
  return tensorType(where->getResult(0)).getElementType().isF32() &&
         std::isfinite(fill) && fill <= kMaskedOut;
}

/// Adds a where(cond, scores, fill) step with an absorbing fill as a mask
/// that replaces: the kernel then computes exactly what the unfused ops do
/// on every row. A part of the condition that masks every key above the
/// diagonal (causal, or a sliding window) makes the causal_in_mask hint
/// (the keys above the diagonal weigh 0 in every row the other parts leave
/// a key).
void addReplacingMask(Canonical &out, const Step &step, int64_t sq,
                      int64_t sk) {
  Canonical::Mask m{step.mask, step.shape};
  m.keepWhenTrue = step.keepWhenTrue;
  m.replaceFill = step.fill;
  m.absorbingSubstitute = !absorbsScores(step.fill, step.op);
  out.additive.push_back(m);
  llvm::SmallVector<MaskPart> parts;
  splitMask({step.mask, true, step.keepWhenTrue}, step.shape, parts);
  for (const MaskPart &part : parts)
    if (masksAboveDiagonal(part.value, part.boolean, sq, sk, part.keepWhenTrue,
                           false))
      out.causalInMask = true;
}

/// Matches the candidate around `softmax`; fills `out` or says why not.
mlir::LogicalResult match(SoftmaxOp softmax, Canonical &out,
                          Rejection &rejection) {
  auto fail = [&](std::string reason) {
    rejection.reason = std::move(reason);
    return mlir::failure();
  };
  RankedTensorType probsType = tensorType(softmax);
  int64_t rank = probsType.getRank();
  if (!isLastAxis(softmax.getAxis(), rank))
    return fail("the softmax is not along the last axis");

  // Forwards: softmax -> cast? -> output matmul (as its left operand).
  Value probs = softmax.getResult();
  llvm::SmallVector<Operation *> after;
  for (int hop = 0;; ++hop) {
    if (auto guard = matchNanGuard(probs)) {
      after.append({guard->first, guard->second});
      probs = guard->second->getResult(0);
      continue;
    }
    if (!probs.hasOneUse())
      return fail("the attention probabilities are also used elsewhere "
                  "(they would still have to be computed)");
    Operation *user = *probs.getUsers().begin();
    if (auto cast = mlir::dyn_cast<CastOp>(user); cast && hop == 0) {
      after.push_back(cast);
      probs = cast.getResult();
      continue;
    }
    if (isRegroup(user)) {
      after.push_back(user);
      probs = user->getResult(0);
      continue;
    }
    auto matmul = mlir::dyn_cast<MatmulOp>(user);
    if (!matmul && mlir::isa<MulOp>(user) && user->hasOneUse() &&
        mlir::isa<MatmulOp>(*user->getUsers().begin())) {
      // canonicalizeCandidates moved every factor it could
      // (moveProbabilityFactor); say which kind this one is.
      Value factor = user->getOperand(user->getOperand(0) == probs ? 1 : 0);
      return fail(factorAxes(tensorType(factor).getShape()) == FactorAxes::Both
                      ? "the probabilities are multiplied by a factor that "
                        "varies along both the queries and the keys (only "
                        "a factor per query or head, or per key, moves out "
                        "of the kernel)"
                      : "the probabilities are multiplied by a factor that "
                        "was not moved out of the kernel (it would widen V "
                        "or the result, or a cast comes between)");
    }
    if (!matmul)
      return fail("the softmax result goes to " + describe(user) +
                  ", not to a matmul with V");
    if (matmul.getA() != probs || matmul.getTransposeA())
      return fail("the softmax result is not the left operand of the "
                  "matmul with V");
    out.output = matmul;
    break;
  }

  // Backwards: softmax input -> steps -> scores matmul.
  llvm::SmallVector<Step> steps;
  Value x = softmax.getX();
  auto scoresShape = tensorType(x).getShape();
  // The shape the chain is in here: the scores' shape until a regrouping
  // reshape is passed.
  llvm::SmallVector<int64_t> shapeHere(scoresShape);
  while (true) {
    Operation *op = x.getDefiningOp();
    if (!op)
      return fail("the scores are a function argument, not a matmul");
    if (!x.hasOneUse())
      return fail("the scores computed by " + describe(op) +
                  " are also used elsewhere");
    if (tensorType(x).getShape() != llvm::ArrayRef<int64_t>(shapeHere))
      return fail("a mask broadcasts the scores from " +
                  shapeText(tensorType(x).getShape()) + " to " +
                  shapeText(shapeHere));
    if (auto matmul = mlir::dyn_cast<MatmulOp>(op)) {
      out.scores = matmul;
      break;
    }
    Step step;
    step.shape = shapeHere;
    llvm::FailureOr<Value> next = readStep(op, step, rejection);
    if (mlir::failed(next))
      return mlir::failure();
    if (step.kind == Step::Regroup)
      shapeHere.assign(tensorType(*next).getShape().begin(),
                       tensorType(*next).getShape().end());
    steps.push_back(step);
    x = *next;
  }
  if (rank < 2 || rank > 4)
    return fail("the scores have rank " + std::to_string(rank) +
                "; attention needs rank 2 to 4 ([B, H, Sq, Sk])");
  int64_t sq = scoresShape[rank - 2], sk = scoresShape[rank - 1];

  // Replay the steps forwards into the canonical form.
  std::optional<double> scaleInsideTanh;
  // steps runs from the softmax back: the last additive mask applied is
  // the first AddMask in it, and a step after it in `steps` comes before.
  const Step *lastAdd = llvm::find_if(
      steps, [](const Step &step) { return step.kind == Step::AddMask; });
  for (Step &step : llvm::reverse(steps)) {
    switch (step.kind) {
    case Step::Cast:
    case Step::Regroup:
      break;
    case Step::Tanh:
      // s -> c * tanh(s / c) (Gemma 2) is the op's softcap when only
      // scales come before the tanh and only scales and masks after it.
      if (scaleInsideTanh)
        return fail("the scores go through two tanh steps");
      if (!out.additive.empty() || !out.boolean.empty() || out.causal)
        return fail(describe(step.op) +
                    " is applied after a mask (only soft-capping before the "
                    "mask is fused)");
      scaleInsideTanh = out.scale;
      break;
    case Step::Scale:
      out.scale *= step.scale;
      for (Canonical::Mask &mask : out.additive)
        mask.factor *= step.scale;
      break;
    case Step::RowScale:
    case Step::ColumnScale:
      // (q k^T) * f = (q * f) k^T for f constant along the keys, and
      // q (k * f^T)^T for f constant along the queries. After additive
      // masks, (s + m) * f = s * f + m * f: the masks are scaled too, which
      // keeps -inf * f where the unfused ops have it for any sign of f. The
      // keys a boolean mask or causal flag excludes stay excluded, where a
      // negative f would turn their -inf into +inf: refused, as after a
      // replacing where, a causal hint or a tanh. Before a regrouping
      // reshape f is in other dims.
      if (!out.boolean.empty() || out.causal || out.causalInMask ||
          scaleInsideTanh ||
          llvm::any_of(out.additive, [](const Canonical::Mask &mask) {
            return mask.replaceFill.has_value();
          }))
        return fail(describe(step.op) +
                    " scales the masked or soft-capped scores by a tensor "
                    "(only a splat constant may follow a boolean or causal "
                    "mask or a tanh; a tensor may follow additive masks)");
      if (step.shape != llvm::ArrayRef<int64_t>(scoresShape))
        return fail(describe(step.op) +
                    " scales the scores by a tensor before they are "
                    "reshaped");
      (step.kind == Step::RowScale ? out.rowScales : out.columnScales)
          .push_back({step.mask, step.divide});
      for (Canonical::Mask &mask : out.additive)
        mask.tensorFactors.push_back({step.mask, step.divide});
      break;
    case Step::AddMask: {
      auto maskType = tensorType(step.mask);
      if (!mlir::isa<mlir::FloatType>(maskType.getElementType()))
        return fail("the additive mask is not a float tensor");
      if (step.negate) {
        out.additive.push_back({step.mask, step.shape});
        out.additive.back().negate = true;
        break;
      }
      addMask(out, {step.mask}, step.shape, sq, sk);
      break;
    }
    case Step::WhereMask: {
      // A causal condition becomes the flag, unless the fill is finite and
      // there are rows that it masks completely (Sq > Sk).
      bool finite = std::isfinite(step.fill);
      bool causalFlag =
          finite && sq <= sk &&
          isCausalMask(step.mask, true, sq, sk, step.keepWhenTrue);
      if (finite && !causalFlag &&
          (absorbsScores(step.fill, step.op) ||
           (substitutesFill(step.fill, step.op) && &step < lastAdd))) {
        addReplacingMask(out, step, sq, sk);
        break;
      }
      if (finite && !causalFlag)
        out.excludedFiniteFill = step.fill;
      addMask(out, {step.mask, true, step.keepWhenTrue}, step.shape, sq, sk);
      break;
    }
    }
  }
  // outer * tanh(inner * qk) is softcap * tanh(scale * qk / softcap) with
  // softcap = outer and scale = inner * outer (= out.scale so far; scales
  // found on Q and K below multiply inside).
  if (scaleInsideTanh)
    out.softcap = out.scale / *scaleInsideTanh;

  // Operands: Q [.., Sq, D], K as [.., Sk, D], V as [.., Sk, Dv].
  MatmulOp scores = out.scores;
  out.q = scores.getA();
  out.k = scores.getB();
  out.v = out.output.getB();
  // Through a regrouping reshape, Q and K (or V) must have the leading dims
  // of their matmul's result, so that they regroup the same way.
  auto sameLeading = [](Value operand, MatmulOp matmul) {
    return leadingDims(tensorType(operand).getShape()) ==
           leadingDims(tensorType(matmul).getShape());
  };
  bool regrouped =
      leadingDims(tensorType(scores).getShape()) != leadingDims(scoresShape);
  if (regrouped && (!sameLeading(out.q, scores) || !sameLeading(out.k, scores)))
    return fail("the scores are reshaped between the matmul and the softmax, "
                "and q or k broadcasts over the matmul's batch dims");
  if (leadingDims(tensorType(out.output).getShape()) !=
          leadingDims(scoresShape) &&
      !sameLeading(out.v, out.output))
    return fail("the probabilities are reshaped before the matmul with v, "
                "and v broadcasts over its batch dims");
  mlir::Type qType = tensorType(out.q).getElementType();
  if (qType != tensorType(out.v).getElementType())
    return fail("q and k are " + [&] {
      std::string s;
      llvm::raw_string_ostream os(s);
      os << qType << ", v is " << tensorType(out.v).getElementType();
      return s;
    }());
  if (!mlir::isa<mlir::FloatType>(qType))
    return fail("the matmuls are not on floats");
  for (Value operand : {out.q, out.k})
    if (auto found = findOperandScale(operand)) {
      out.bypassed.push_back(found->first);
      out.scale *= found->second;
    }

  out.softmax = softmax;
  out.chain.push_back(scores);
  for (Step &step : llvm::reverse(steps))
    out.chain.push_back(step.op);
  out.chain.push_back(softmax);
  out.chain.append(after.begin(), after.end());
  out.chain.push_back(out.output);
  return mlir::success();
}

//===----------------------------------------------------------------------===//
// Rewriting
//===----------------------------------------------------------------------===//

/// Builds ops for one candidate at the output matmul.
/// The permutation that swaps the last two of `rank` dims.
llvm::SmallVector<int64_t> swapLastTwoPerm(int64_t rank) {
  llvm::SmallVector<int64_t> perm;
  for (int64_t d = 0; d < rank; ++d)
    perm.push_back(d);
  std::swap(perm[rank - 1], perm[rank - 2]);
  return perm;
}

/// Whether `op` is a transpose that swaps the last two dims only.
bool swapsLastTwo(Operation *op) {
  auto transpose = mlir::dyn_cast_or_null<TransposeOp>(op);
  if (!transpose)
    return false;
  int64_t rank = tensorType(transpose.getX()).getRank();
  return rank >= 2 &&
         transpose.getPerm() == llvm::ArrayRef<int64_t>(swapLastTwoPerm(rank));
}

class Rewriter {
public:
  Rewriter(Canonical &c)
      : c(c), b(c.output),
        loc(b.getFusedLoc(
            {c.scores.getLoc(), c.softmax.getLoc(), c.output.getLoc()})) {}

  AttentionOp rewrite() {
    for (Operation *op : c.bypassed) {
      bool scaledIsLhs = splatValue(op->getOperand(1)).has_value();
      Value scaled = op->getOperand(scaledIsLhs ? 0 : 1);
      for (Value *operand : {&c.q, &c.k})
        if (*operand == op->getResult(0))
          *operand = scaled;
      op->getResult(0).replaceAllUsesWith(scaled);
    }
    int64_t rank = tensorType(c.softmax).getRank();
    Value q = c.q, k = c.k, v = c.v;
    if (c.scores.getTransposeA())
      q = swapLastTwo(q);
    if (!c.scores.getTransposeB())
      k = swapLastTwo(k);
    if (c.output.getTransposeB())
      v = swapLastTwo(v);
    auto softmaxShape = tensorType(c.softmax).getShape();
    q = regroupAs(q, c.scores, softmaxShape);
    k = regroupAs(k, c.scores, softmaxShape);
    v = regroupAs(v, c.output, softmaxShape);
    q = toRank4(q);
    k = toRank4(k);
    v = toRank4(v);
    for (auto [factor, divide] : c.rowScales)
      q = scaled(q, factor, divide);
    // Per-key factors: [.., 1, Sk] -> [.., Sk, 1] (a reshape: one of the
    // two is 1), to scale the rows of K [.., Sk, D]. One that is the same
    // for every batch and head is applied after an explicit head repeat is
    // undone (K stays grouped-query); others before.
    auto scaleKeys = [&](Value kIn, bool perKeyOnly) {
      for (auto [factor, divide] : c.columnScales) {
        auto shape = tensorType(factor).getShape();
        bool leadingOnes =
            shape.size() <= 2 ||
            llvm::all_of(shape.drop_back(2), [](int64_t d) { return d == 1; });
        if (leadingOnes == perKeyOnly)
          kIn = scaled(kIn, keyColumn(b, loc, factor), divide);
      }
      return kIn;
    };
    k = scaleKeys(k, false);
    auto scoresShape = tensorType(c.softmax).getShape();
    llvm::SmallVector<int64_t> full(4 - rank, 1);
    full.append(scoresShape.begin(), scoresShape.end());
    int64_t batch = full[0], heads = full[1];
    // Q takes every batch and head; K and V keep a head count that divides
    // H (grouped-query), after undoing an explicit head repeat.
    q = broadcastHeads(q, batch, heads);
    auto [kBase, kGroups] = stripHeadRepeat(k);
    auto [vBase, vGroups] = stripHeadRepeat(v);
    if (tensorType(kBase).getDimSize(1) == tensorType(vBase).getDimSize(1)) {
      k = kBase;
      v = vBase;
    }
    k = scaleKeys(k, true);
    int64_t kvHeads =
        std::max(tensorType(k).getDimSize(1), tensorType(v).getDimSize(1));
    k = broadcastHeads(k, batch, kvHeads);
    v = broadcastHeads(v, batch, kvHeads);

    Value mask = buildMask(tensorType(q).getElementType());
    auto resultType = RankedTensorType::get(
        {batch, heads, full[2], tensorType(v).getDimSize(3)},
        tensorType(q).getElementType());
    auto attention = b.create<AttentionOp>(
        loc, resultType, q, k, v, mask, b.getF64FloatAttr(c.scale),
        b.getBoolAttr(c.causal), b.getBoolAttr(c.causalInMask && !c.causal),
        c.softcap > 0 ? b.getF64FloatAttr(c.softcap) : mlir::FloatAttr());
    Value result = attention.getResult();
    if (result.getType() != c.output.getType())
      result = b.create<ReshapeOp>(
          loc, c.output.getType(), result,
          b.getDenseI64ArrayAttr(tensorType(c.output).getShape()));
    c.output.getResult().replaceAllUsesWith(result);
    for (Operation *op : llvm::reverse(c.chain))
      if (op->use_empty())
        op->erase();
    for (Operation *op : c.bypassed)
      if (op->use_empty())
        op->erase();
    return attention;
  }

private:
  /// x times (or divided by) a factor, cast to x's element type.
  Value scaled(Value x, Value factor, bool divide) {
    mlir::Type element = tensorType(x).getElementType();
    if (tensorType(factor).getElementType() != element)
      factor = b.create<CastOp>(loc, factor, mlir::TypeAttr::get(element));
    return divide ? b.create<DivOp>(loc, x, factor).getResult()
                  : b.create<MulOp>(loc, x, factor).getResult();
  }

  /// `x` with its last two dims swapped: the input of a transpose that
  /// does exactly that, or a new transpose.
  Value swapLastTwo(Value x) {
    if (swapsLastTwo(x.getDefiningOp()))
      return x.getDefiningOp()->getOperand(0);
    return b.create<TransposeOp>(
        loc, x,
        b.getDenseI64ArrayAttr(swapLastTwoPerm(tensorType(x).getRank())));
  }

  /// `x`, an operand of `matmul`, reshaped to the leading dims of the
  /// scores (`scoresShape`) when the matmul's result has other ones (a
  /// regrouping reshape lies between them; match() checked x has the
  /// matmul's leading dims).
  Value regroupAs(Value x, MatmulOp matmul,
                  llvm::ArrayRef<int64_t> scoresShape) {
    auto lead = leadingDims(scoresShape);
    if (leadingDims(tensorType(matmul).getShape()) == lead)
      return x;
    auto shape = tensorType(x).getShape();
    lead.append(shape.end() - 2, shape.end());
    return b.create<ReshapeOp>(loc, x, b.getDenseI64ArrayAttr(lead));
  }

  Value toRank4(Value x) {
    auto shape = tensorType(x).getShape();
    if (shape.size() == 4)
      return x;
    llvm::SmallVector<int64_t> padded(4 - shape.size(), 1);
    padded.append(shape.begin(), shape.end());
    return b.create<ReshapeOp>(loc, x, b.getDenseI64ArrayAttr(padded));
  }

  /// `x` [b, h, S, D] broadcast to `batch` and (when h is 1 and `heads`
  /// is not) `heads`.
  Value broadcastHeads(Value x, int64_t batch, int64_t heads) {
    llvm::SmallVector<int64_t> shape(tensorType(x).getShape());
    if (shape[0] == batch && heads % shape[1] == 0)
      return x;
    shape[0] = batch;
    if (heads % shape[1] != 0)
      shape[1] = heads;
    return b.create<BroadcastToOp>(loc, x, b.getDenseI64ArrayAttr(shape));
  }

  /// x = reshape(broadcast_to(reshape(base [B, Hk, S, D] -> [B, Hk, 1, S,
  /// D]) -> [B, Hk, n, S, D]) -> [B, Hk * n, S, D]): (base, n); else (x, 1).
  static std::pair<Value, int64_t> stripHeadRepeat(Value x) {
    auto merge = x.getDefiningOp<ReshapeOp>();
    if (!merge)
      return findHeadRepeat(x);
    auto broadcast = merge.getX().getDefiningOp<BroadcastToOp>();
    if (!broadcast)
      return findHeadRepeat(x);
    auto split = broadcast.getX().getDefiningOp<ReshapeOp>();
    if (!split)
      return findHeadRepeat(x);
    Value base = split.getX();
    auto shape = tensorType(x).getShape();
    auto baseShape = tensorType(base).getShape();
    auto expanded = tensorType(broadcast).getShape();
    auto unit = tensorType(split).getShape();
    if (baseShape.size() != 4 || expanded.size() != 5 || unit.size() != 5)
      return findHeadRepeat(x);
    int64_t kvHeads = baseShape[1], groups = expanded[2];
    llvm::SmallVector<int64_t> wantUnit{baseShape[0], kvHeads, 1, baseShape[2],
                                        baseShape[3]};
    llvm::SmallVector<int64_t> wantExpanded{baseShape[0], kvHeads, groups,
                                            baseShape[2], baseShape[3]};
    if (llvm::ArrayRef<int64_t>(wantUnit) != unit ||
        llvm::ArrayRef<int64_t>(wantExpanded) != expanded ||
        shape[1] != kvHeads * groups)
      return findHeadRepeat(x);
    return {base, groups};
  }

  /// Any other chain of reshapes, broadcast_tos and transposes that
  /// repeats each head of a [B or 1, Hk, S, D] value n times in a row:
  /// x[b, h, s, d] = base[b, h / n, s, d] (a single key/value head
  /// expanded, as multi-query attention writes it; repeat_interleave, which
  /// the TorchScript exporter spells with rank-10 reshapes; repeat_kv's K
  /// as the dynamo exporter writes it for scaled_dot_product_attention,
  /// [B*H, S, D] transposed between two reshapes). Checked element by
  /// element, up to kMaxRepeatCheck elements: (base, n); else (x, 1). The
  /// check costs ~0.1 us per element (1.6 s for a [1, 32, 4096, 128] key
  /// at 2^24), so larger values keep their repeated heads: still fused,
  /// with every query head's keys in memory. repeat_kv's own spelling is
  /// matched by its shapes (above), at any size.
  static std::pair<Value, int64_t> findHeadRepeat(Value x) {
    constexpr int64_t kMaxRepeatCheck = int64_t(1) << 21;
    auto shape = tensorType(x).getShape();
    if (shape.size() != 4 || tensorType(x).getNumElements() > kMaxRepeatCheck)
      return {x, 1};
    llvm::SmallVector<Operation *> chain; // from x up
    std::pair<Value, int64_t> found{x, 1};
    for (Value v = x; chain.size() < 8;) {
      Operation *op = v.getDefiningOp();
      if (!mlir::isa_and_nonnull<ReshapeOp, BroadcastToOp, TransposeOp>(op))
        break;
      chain.push_back(op);
      v = op->getOperand(0);
      auto base = tensorType(v).getShape();
      if (base.size() == 4 && (base[0] == shape[0] || base[0] == 1) &&
          base[1] < shape[1] && shape[1] % base[1] == 0 &&
          base.take_back(2) == shape.take_back(2) &&
          repeatsHeads(chain, shape, base))
        found = {v, shape[1] / base[1]};
    }
    return found;
  }

  /// Whether reading x (`shape`) through `chain` (reshapes, broadcasts and
  /// transposes, from x up to `base`) gives x[b, h, s, d] = base[b or 0,
  /// h / n, s, d].
  static bool repeatsHeads(llvm::ArrayRef<Operation *> chain,
                           llvm::ArrayRef<int64_t> shape,
                           llvm::ArrayRef<int64_t> base) {
    int64_t groups = shape[1] / base[1];
    int64_t index[16], next[16];
    for (Operation *op : chain)
      if (tensorType(op->getOperand(0)).getRank() > 16 ||
          tensorType(op->getResult(0)).getRank() > 16)
        return false;
    int64_t total = shape[0] * shape[1] * shape[2] * shape[3];
    for (int64_t n = 0; n < total; ++n) {
      int64_t rank = 4;
      for (int64_t d = 4, rest = n; d-- > 0;) {
        index[d] = rest % shape[d];
        rest /= shape[d];
      }
      for (Operation *op : chain) {
        auto out = tensorType(op->getResult(0)).getShape();
        auto in = tensorType(op->getOperand(0)).getShape();
        int64_t inRank = in.size();
        if (mlir::isa<ReshapeOp>(op)) {
          int64_t linear = 0;
          for (int64_t d = 0; d < rank; ++d)
            linear = linear * out[d] + index[d];
          for (int64_t d = inRank; d-- > 0;) {
            next[d] = linear % in[d];
            linear /= in[d];
          }
        } else if (auto transpose = mlir::dyn_cast<TransposeOp>(op)) {
          // result[d] = input[perm[d]].
          llvm::ArrayRef<int64_t> perm = transpose.getPerm();
          for (int64_t d = 0; d < rank; ++d)
            next[perm[d]] = index[d];
        } else {
          int64_t offset = rank - inRank;
          for (int64_t d = 0; d < inRank; ++d)
            next[d] = in[d] == 1 ? 0 : index[d + offset];
        }
        std::copy(next, next + inRank, index);
        rank = inRank;
      }
      int64_t b = n / (shape[1] * shape[2] * shape[3]);
      int64_t h = n / (shape[2] * shape[3]) % shape[1];
      int64_t s = n / shape[3] % shape[2], d = n % shape[3];
      if (index[0] != (base[0] == 1 ? 0 : b) || index[1] != h / groups ||
          index[2] != s || index[3] != d)
        return false;
    }
    return true;
  }

  /// The one mask operand: additive masks (each times its scale) summed,
  /// boolean masks and-ed; both kinds present: the booleans as 0 / -inf.
  Value buildMask(mlir::Type elementType) {
    Value additive, boolean;
    for (const Canonical::Mask &mask : c.additive) {
      Value m = regroupMask(mask);
      if (mask.replaceFill) {
        // where(kept, mask so far, fill * the scales after it).
        if (!mask.keepWhenTrue)
          m = b.create<CompareOp>(loc, m, splatBool(false),
                                  b.getStringAttr("eq"));
        Value fill =
            splat(elementType, mask.absorbingSubstitute
                                   ? -std::numeric_limits<float>::max() / 2
                                   : *mask.replaceFill * mask.factor);
        additive = b.create<WhereOp>(
            loc, m, additive ? additive : splat(elementType, 0.0), fill);
        continue;
      }
      if (tensorType(m).getElementType() != elementType)
        m = b.create<CastOp>(loc, m, mlir::TypeAttr::get(elementType));
      if (mask.negate)
        m = b.create<NegOp>(loc, m);
      if (mask.factor != 1.0)
        m = b.create<MulOp>(loc, m, splat(elementType, mask.factor));
      for (auto [factor, divide] : mask.tensorFactors)
        m = scaled(m, factor, divide);
      additive = additive ? b.create<AddOp>(loc, additive, m).getResult() : m;
    }
    for (const Canonical::Mask &cond : c.boolean) {
      Value m = regroupMask(cond);
      if (!cond.keepWhenTrue)
        m = b.create<CompareOp>(loc, m, splatBool(false),
                                b.getStringAttr("eq"));
      boolean =
          boolean
              ? b.create<WhereOp>(loc, boolean, m, splatBool(false)).getResult()
              : m;
    }
    if (additive && boolean)
      return b.create<AddOp>(
          loc, additive,
          b.create<WhereOp>(
              loc, boolean, splat(elementType, 0.0),
              splat(elementType, -std::numeric_limits<double>::infinity())));
    return additive ? additive : boolean;
  }

  /// A mask applied before a regrouping reshape, broadcast to the shape it
  /// was applied in and reshaped to the scores' shape; others as they are.
  Value regroupMask(const Canonical::Mask &mask) {
    auto scores = tensorType(c.softmax).getShape();
    llvm::ArrayRef<int64_t> applied = mask.appliedShape;
    if (applied == scores)
      return mask.value;
    Value m = mask.value;
    // Broadcast in the last two dims only (Bloom's ALiBi [B*H, 1, S]):
    // regroup the leading dims and let the kernel broadcast the rest.
    auto own = tensorType(m).getShape();
    if (own.size() == applied.size() &&
        leadingDims(own) == leadingDims(applied)) {
      llvm::SmallVector<int64_t> shape = leadingDims(scores);
      shape.append(own.end() - 2, own.end());
      return b.create<ReshapeOp>(loc, m, b.getDenseI64ArrayAttr(shape));
    }
    // Size 1 in every leading dim past a prefix that the scores keep (a
    // padding mask [B, 1, 1, 1, Sk] applied to [B, G, R, Sq, Sk] scores
    // that become [B, G*R, Sq, Sk]): keep the prefix, 1 for the rest.
    int64_t rank = applied.size();
    if (int64_t(own.size()) <= rank) {
      llvm::SmallVector<int64_t> padded(rank - own.size(), 1);
      padded.append(own.begin(), own.end());
      int64_t prefix = 0;
      while (prefix < rank - 2 && padded[prefix] == applied[prefix])
        ++prefix;
      bool onesAfter = llvm::all_of(
          llvm::ArrayRef<int64_t>(padded).slice(prefix, rank - 2 - prefix),
          [](int64_t d) { return d == 1; });
      if (onesAfter && int64_t(scores.size()) - 2 >= prefix &&
          scores.take_front(prefix) == applied.take_front(prefix)) {
        llvm::SmallVector<int64_t> shape(applied.take_front(prefix));
        shape.append(scores.size() - 2 - prefix, 1);
        shape.append(padded.end() - 2, padded.end());
        return b.create<ReshapeOp>(loc, m, b.getDenseI64ArrayAttr(shape));
      }
    }
    if (tensorType(m).getShape() != applied)
      m = b.create<BroadcastToOp>(loc, m, b.getDenseI64ArrayAttr(applied));
    return b.create<ReshapeOp>(loc, m, b.getDenseI64ArrayAttr(scores));
  }

  Value splat(mlir::Type elementType, double value) {
    auto type = RankedTensorType::get({}, elementType);
    llvm::APFloat f(value);
    bool losesInfo = false;
    f.convert(mlir::cast<mlir::FloatType>(elementType).getFloatSemantics(),
              llvm::APFloat::rmNearestTiesToEven, &losesInfo);
    return b.create<ConstantOp>(loc, mlir::DenseElementsAttr::get(type, f));
  }
  Value splatBool(bool value) {
    auto type = RankedTensorType::get({}, b.getI1Type());
    return b.create<ConstantOp>(loc, mlir::DenseElementsAttr::get(type, value));
  }

  Canonical &c;
  mlir::OpBuilder b;
  mlir::Location loc;
};

/// "B=1 H=12 Sq=128 Sk=128 D=64, causal, scale 0.125, mask [1, 1, 1, 128]"
std::string summarize(AttentionOp op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  auto q = tensorType(op.getQ()).getShape();
  auto k = tensorType(op.getK()).getShape();
  os << "B=" << q[0] << " H=" << q[1];
  if (k[1] != q[1])
    os << " (kv heads " << k[1] << ")";
  os << " Sq=" << q[2] << " Sk=" << k[2] << " D=" << q[3];
  if (op.getCausal())
    os << ", causal";
  if (op.getCausalInMask())
    os << ", causal in mask (keys above the diagonal skipped where they "
          "weigh 0)";
  if (auto scale = op.getScale())
    os << ", scale " << scale->convertToDouble();
  if (auto softcap = op.getSoftcap())
    os << ", softcap " << softcap->convertToDouble();
  if (Value mask = op.getMask())
    os << ", "
       << (tensorType(mask).getElementType().isInteger(1) ? "boolean"
                                                          : "additive")
       << " mask " << ShapeString{tensorType(mask).getShape()};
  return s;
}

/// x when `v` is x - reduce_max(x) along the last axis (keepdims), of x's
/// type: the shift a softmax along that axis makes itself; else null.
Value withoutRowMaxShift(Value v) {
  auto sub = v.getDefiningOp<SubOp>();
  auto max = sub ? sub.getRhs().getDefiningOp<ReduceMaxOp>() : ReduceMaxOp();
  if (!max || max.getX() != sub.getLhs() || !reducesLastAxis(max) ||
      sub.getLhs().getType() != sub.getType())
    return {};
  return sub.getLhs();
}

/// softmax written out along the last axis, as in
///   e = exp(x - reduce_max(x)) (or exp(x)); p = e / reduce_sum(e)
/// (keepdims): returns x, whose softmax `div` computes, or null.
/// exp(x - c) / sum(exp(x - c)) is softmax(x) for any c constant along
/// the axis, so the max need not be checked for.
Value handWrittenSoftmaxInput(DivOp div) {
  auto exp = div.getLhs().getDefiningOp<ExpOp>();
  auto sum = div.getRhs().getDefiningOp<ReduceSumOp>();
  if (!exp || !sum || sum.getX() != exp.getResult() || !reducesLastAxis(sum))
    return {};
  Value x = exp.getX();
  if (Value unshifted = withoutRowMaxShift(x))
    x = unshifted;
  if (x.getType() != div.getType())
    return {};
  return x;
}

/// Replaces softmax written out (handWrittenSoftmaxInput) by kiln.softmax
/// where it sits between a scores matmul and the matmul with V, so that
/// the candidate is seen like any other:
///   exp(x - max(x)) / sum(exp(x - max(x))) => softmax(x)
void replaceHandWrittenSoftmax(mlir::ModuleOp module) {
  llvm::SmallVector<DivOp> divs;
  module.walk([&](DivOp op) { divs.push_back(op); });
  for (DivOp div : divs) {
    Value x = handWrittenSoftmaxInput(div);
    if (!x || !reachesMatmul(x) ||
        !llvm::any_of(div->getUsers(), [](Operation *u) {
          return mlir::isa<MatmulOp, CastOp>(u) || isRegroup(u);
        }))
      continue;
    mlir::OpBuilder b(div);
    auto softmax =
        b.create<SoftmaxOp>(div.getLoc(), x, b.getI64IntegerAttr(-1));
    Operation *sum = div.getRhs().getDefiningOp();
    Operation *exp = div.getLhs().getDefiningOp();
    div.getResult().replaceAllUsesWith(softmax.getResult());
    div->erase();
    for (Operation *op : {sum, exp}) {
      if (!op->use_empty())
        break;
      Operation *shifted =
          op == exp ? op->getOperand(0).getDefiningOp() : nullptr;
      op->erase();
      if (auto sub = mlir::dyn_cast_or_null<SubOp>(shifted);
          sub && sub->use_empty()) {
        auto max = sub.getRhs().getDefiningOp<ReduceMaxOp>();
        sub->erase();
        if (max && max->use_empty())
          max->erase();
      }
    }
  }
}

/// Whether `v` flows, through single-use steps that could be part of a
/// score chain, into a softmax along the last axis.
bool reachesSoftmax(Value v, int depth = 0) {
  if (depth > 12 || !v.hasOneUse())
    return false;
  Operation *user = *v.getUsers().begin();
  if (auto softmax = mlir::dyn_cast<SoftmaxOp>(user))
    return isLastAxis(softmax.getAxis(), tensorType(softmax).getRank());
  if (mlir::isa<MulOp, DivOp, AddOp, SubOp, WhereOp, CastOp, TanhOp>(user) ||
      isRegroup(user, kMaxInteriorRank))
    return reachesSoftmax(user->getResult(0), depth + 1);
  return false;
}

/// Whether a softmax of `x` with result `probs` may be the middle of an
/// attention block: its input comes from a matmul, or its result goes to
/// one (directly, through a cast or regrouping reshape, or transposed).
bool mayBeAttention(Value x, Value probs) {
  return reachesMatmul(x) || llvm::any_of(probs.getUsers(), [](Operation *u) {
           return mlir::isa<MatmulOp, CastOp>(u) || isRegroup(u) ||
                  swapsLastTwo(u);
         });
}

/// Collects the ops of type OpT in `module`, in order.
template <typename OpT> llvm::SmallVector<OpT> collect(mlir::ModuleOp module) {
  llvm::SmallVector<OpT> ops;
  module.walk([&](OpT op) { ops.push_back(op); });
  return ops;
}

/// The grouped-query rewrite of canonicalizeCandidates for one rank-5
/// softmax; false when `softmax` is not such a candidate.
bool flattenGroupedHeads(SoftmaxOp softmax) {
  RankedTensorType probsType = tensorType(softmax);
  llvm::ArrayRef<int64_t> shape = probsType.getShape();
  if (probsType.getRank() != 5 || !isLastAxis(softmax.getAxis(), 5) ||
      !softmax->hasOneUse())
    return false;
  // Back through single-use elementwise steps to the scores matmul.
  Value x = softmax.getX();
  MatmulOp scores;
  for (int depth = 0; depth < 12 && !scores; ++depth) {
    Operation *op = x.getDefiningOp();
    if (!op || !x.hasOneUse() || tensorType(x).getShape() != shape)
      return false;
    if (auto matmul = mlir::dyn_cast<MatmulOp>(op)) {
      scores = matmul;
      break;
    }
    if (!mlir::isa<MulOp, DivOp, AddOp, SubOp, WhereOp, CastOp, TanhOp>(op))
      return false;
    // The operand that carries the scores (a where's condition and a
    // mask or scale do not reach the matmul).
    Value next;
    for (Value operand : op->getOperands())
      if (!next && reachesMatmul(operand))
        next = operand;
    if (!next)
      return false;
    x = next;
  }
  auto output = mlir::dyn_cast<MatmulOp>(*softmax->getUsers().begin());
  if (!scores || !output || output.getA() != softmax.getResult() ||
      output.getTransposeA())
    return false;
  // Q has the R query heads of a group in dim 2, K and V one.
  int64_t groups = shape[1], repeat = shape[2];
  auto grouped = [&](Value v, int64_t heads) {
    auto s = tensorType(v).getShape();
    return s.size() == 5 && s[0] == shape[0] && s[1] == groups && s[2] == heads;
  };
  if (repeat < 2 || !grouped(scores.getA(), repeat) ||
      !grouped(scores.getB(), 1) || !grouped(output.getB(), 1))
    return false;
  mlir::OpBuilder b(output);
  mlir::Location loc = softmax.getLoc();
  auto flat = [&](Value v) {
    auto s = tensorType(v).getShape();
    return b
        .create<ReshapeOp>(
            loc, v, b.getDenseI64ArrayAttr({s[0], groups * repeat, s[3], s[4]}))
        .getResult();
  };
  // repeat_kv as the matcher knows it: [B, G, S, D] -> [B, G, 1, S, D] ->
  // broadcast_to [B, G, R, S, D] -> [B, G*R, S, D].
  auto repeated = [&](Value v) {
    auto s = tensorType(v).getShape();
    Value kv = b.create<ReshapeOp>(
        loc, v, b.getDenseI64ArrayAttr({s[0], groups, s[3], s[4]}));
    kv = b.create<ReshapeOp>(
        loc, kv, b.getDenseI64ArrayAttr({s[0], groups, 1, s[3], s[4]}));
    Value wide = b.create<BroadcastToOp>(
        loc, kv, b.getDenseI64ArrayAttr({s[0], groups, repeat, s[3], s[4]}));
    return flat(wide);
  };
  auto regroup = [&](Value v) {
    auto s = tensorType(v).getShape();
    return b
        .create<ReshapeOp>(
            loc, v, b.getDenseI64ArrayAttr({s[0], groups, repeat, s[2], s[3]}))
        .getResult();
  };
  b.setInsertionPoint(scores);
  auto scores4 = b.create<MatmulOp>(
      scores.getLoc(),
      RankedTensorType::get({shape[0], groups * repeat, shape[3], shape[4]},
                            probsType.getElementType()),
      flat(scores.getA()), repeated(scores.getB()), scores.getTransposeA(),
      scores.getTransposeB());
  scores.getResult().replaceAllUsesWith(regroup(scores4.getResult()));
  scores->erase();
  b.setInsertionPoint(output);
  auto softmax4 = b.create<SoftmaxOp>(softmax.getLoc(), flat(softmax.getX()),
                                      b.getI64IntegerAttr(-1));
  auto outShape = tensorType(output).getShape();
  auto output4 = b.create<MatmulOp>(
      output.getLoc(),
      RankedTensorType::get({shape[0], groups * repeat, shape[3], outShape[4]},
                            tensorType(output).getElementType()),
      softmax4.getResult(), repeated(output.getB()), false,
      output.getTransposeB());
  output.getResult().replaceAllUsesWith(regroup(output4.getResult()));
  output->erase();
  softmax->erase();
  return true;
}

/// The probabilities-times-factor rewrite of canonicalizeCandidates for one
/// mul: matmul(P * m, V) with P a softmax of scores and m a factor that
/// does not widen P. A factor with one column per row of P (HF's
/// `probs * head_mask`, [1, H, 1, 1]; a per-query factor [.., Sq, 1])
/// scales the rows of P V instead; one with one row (a per-key factor
/// [.., 1, Sk]) scales the rows of V, m transposed (a reshape: one of its
/// last two dims is 1). Both are identities of the product; false when
/// `mul` is not such a step.
bool moveProbabilityFactor(MulOp mul) {
  if (!mul->hasOneUse())
    return false;
  auto output = mlir::dyn_cast<MatmulOp>(*mul->getUsers().begin());
  if (!output || output.getA() != mul.getResult() || output.getTransposeA())
    return false;
  Value p = mul.getLhs(), m = mul.getRhs();
  if (!p.getDefiningOp<SoftmaxOp>())
    std::swap(p, m);
  auto softmax = p.getDefiningOp<SoftmaxOp>();
  RankedTensorType pType = tensorType(p), mType = tensorType(m);
  int64_t rank = pType.getRank();
  if (!softmax || !p.hasOneUse() || !isLastAxis(softmax.getAxis(), rank) ||
      !reachesMatmul(softmax.getX()) || rank < 2 ||
      tensorType(mul).getShape() != pType.getShape() || mType.getRank() > rank)
    return false;
  Value v = output.getB();
  RankedTensorType vType = tensorType(v), outType = tensorType(output);
  llvm::ArrayRef<int64_t> outShape = outType.getShape();
  // Whether `factor` broadcast against `x` keeps x's shape.
  auto keeps = [](llvm::ArrayRef<int64_t> x, llvm::ArrayRef<int64_t> factor) {
    auto both = broadcastShapes(x, factor);
    return both && llvm::ArrayRef<int64_t>(*both) == x;
  };
  mlir::OpBuilder b(output);
  mlir::Location loc = mul.getLoc();
  switch (factorAxes(mType.getShape())) {
  case FactorAxes::PerRow: {
    // Rows of P (queries): m broadcasts the same way against P V, whose
    // leading dims must be P's (V does not widen them).
    if (outType.getRank() != rank ||
        outShape.drop_back(1) != pType.getShape().drop_back(1) ||
        !keeps(outShape, mType.getShape()))
      return false;
    auto product = b.create<MatmulOp>(output.getLoc(), outType, p, v, false,
                                      output.getTransposeB());
    output.getResult().replaceAllUsesWith(
        b.create<MulOp>(loc, product.getResult(), m).getResult());
    output->erase();
    break;
  }
  case FactorAxes::PerKey: {
    // Columns of P (keys): the rows of V, or V^T's columns under
    // transpose_b; m must not widen V (grouped K/V heads against a
    // per-head factor).
    bool transposed = output.getTransposeB();
    if (!keeps(vType.getShape(),
               transposed ? llvm::SmallVector<int64_t>(mType.getShape())
                          : keyColumnShape(mType.getShape(), rank)))
      return false;
    Value vFactor = transposed ? m : keyColumn(b, loc, m, rank);
    output->setOperand(0, p);
    output->setOperand(1, b.create<MulOp>(loc, v, vFactor).getResult());
    break;
  }
  case FactorAxes::Both:
    return false;
  }
  mul->erase();
  return true;
}

/// Puts spellings that have no place in the canonical chain into ones that
/// do, where they sit in a candidate, before the candidates are matched
/// (in this order, as each makes the next one's chain visible):
///
///   exp(log_softmax(x))                       => softmax(x)
///   softmax(x - reduce_max(x))                => softmax(x): the shift a
///       softmax makes itself
///   transpose(matmul(a, b))  (last two dims)  => matmul(b, a), the flags
///       swapped and negated: scores computed as (K Q^T)^T
///   matmul(A, P^T) (P^T by transpose_b or a transpose; P a softmax)
///       => transpose(matmul(P, A^T)): the probabilities as the right
///       operand, as SAGAN and non-local blocks write V P^T
///   matmul(P * m, V)  (m constant along the keys: a head mask, a
///       per-query factor) => matmul(P, V) * m; and (m constant along the
///       queries: a per-key factor) => matmul(P, V * m^T)
///       (moveProbabilityFactor)
///   grouped-query heads by broadcasting in rank 5: Q [B, G, R, Sq, D]
///       against K and V [B, G, 1, Sk, D] => the same in [B, G*R, ...]
///       with K and V repeated (reshape, broadcast_to, reshape: repeat_kv,
///       which the matcher reads as grouped), the scale and mask steps
///       left in rank 5 between regrouping reshapes
///
/// Each is an identity, so a candidate that then fails to match computes
/// the same as before.
void canonicalizeCandidates(mlir::ModuleOp module) {
  for (ExpOp exp : collect<ExpOp>(module)) {
    auto logSoftmax = exp.getX().getDefiningOp<LogSoftmaxOp>();
    if (!logSoftmax || !mayBeAttention(logSoftmax.getX(), exp.getResult()))
      continue;
    mlir::OpBuilder b(exp);
    auto softmax =
        b.create<SoftmaxOp>(exp.getLoc(), logSoftmax.getX(),
                            b.getI64IntegerAttr(logSoftmax.getAxis()));
    exp.getResult().replaceAllUsesWith(softmax.getResult());
    exp->erase();
    if (logSoftmax->use_empty())
      logSoftmax->erase();
  }
  for (SoftmaxOp softmax : collect<SoftmaxOp>(module)) {
    Value x = withoutRowMaxShift(softmax.getX());
    if (!x || !isLastAxis(softmax.getAxis(), tensorType(softmax).getRank()) ||
        !mayBeAttention(x, softmax.getResult()))
      continue;
    Operation *sub = softmax.getX().getDefiningOp();
    Operation *max = sub->getOperand(1).getDefiningOp();
    softmax->setOperand(0, x);
    if (sub->use_empty())
      sub->erase();
    if (max->use_empty())
      max->erase();
  }
  for (TransposeOp transpose : collect<TransposeOp>(module)) {
    auto matmul = transpose.getX().getDefiningOp<MatmulOp>();
    if (!matmul || !matmul->hasOneUse() || !swapsLastTwo(transpose) ||
        !reachesSoftmax(transpose.getResult()))
      continue;
    mlir::OpBuilder b(transpose);
    auto swapped = b.create<MatmulOp>(
        matmul->getLoc(), transpose.getType(), matmul.getB(), matmul.getA(),
        !matmul.getTransposeB(), !matmul.getTransposeA());
    transpose.getResult().replaceAllUsesWith(swapped.getResult());
    transpose->erase();
    matmul->erase();
  }
  for (MatmulOp matmul : collect<MatmulOp>(module)) {
    // matmul(A, P, transpose_b) or matmul(A, transpose(P)).
    Value p = matmul.getB();
    Operation *transposeP = nullptr;
    if (!matmul.getTransposeB()) {
      transposeP = p.getDefiningOp();
      if (!swapsLastTwo(transposeP) || !p.hasOneUse())
        continue;
      p = transposeP->getOperand(0);
    }
    auto softmax = p.getDefiningOp<SoftmaxOp>();
    if (!softmax || !p.hasOneUse() || !reachesMatmul(softmax.getX()) ||
        !isLastAxis(softmax.getAxis(), tensorType(p).getRank()))
      continue;
    // A' P^T = (P A'^T)^T with A' = A, or A^T under transpose_a.
    llvm::SmallVector<int64_t> shape(tensorType(matmul).getShape());
    std::swap(shape[shape.size() - 1], shape[shape.size() - 2]);
    mlir::OpBuilder b(matmul);
    auto product = b.create<MatmulOp>(
        matmul.getLoc(),
        RankedTensorType::get(shape, tensorType(matmul).getElementType()), p,
        matmul.getA(), false, !matmul.getTransposeA());
    auto back = b.create<TransposeOp>(
        matmul.getLoc(), product.getResult(),
        b.getDenseI64ArrayAttr(swapLastTwoPerm(shape.size())));
    matmul.getResult().replaceAllUsesWith(back.getResult());
    matmul->erase();
    if (transposeP && transposeP->use_empty())
      transposeP->erase();
  }
  for (MulOp mul : collect<MulOp>(module))
    moveProbabilityFactor(mul);
  for (SoftmaxOp softmax : collect<SoftmaxOp>(module))
    flattenGroupedHeads(softmax);
}

struct FuseAttentionPass
    : public impl::FuseAttentionPassBase<FuseAttentionPass> {
  using FuseAttentionPassBase::FuseAttentionPassBase;

  void runOnOperation() override {
    replaceHandWrittenSoftmax(getOperation());
    canonicalizeCandidates(getOperation());
    llvm::SmallVector<SoftmaxOp> softmaxes;
    getOperation().walk([&](SoftmaxOp op) { softmaxes.push_back(op); });
    for (SoftmaxOp softmax : softmaxes) {
      bool candidate = reachesMatmul(softmax.getX()) ||
                       llvm::any_of(softmax->getUsers(), [](Operation *u) {
                         return mlir::isa<MatmulOp, CastOp>(u) || isRegroup(u);
                       });
      if (!candidate)
        continue;
      Canonical c;
      Rejection rejection;
      if (mlir::failed(match(softmax, c, rejection))) {
        ++numRejected;
        if (remarks)
          softmax.emitRemark() << "attention not fused: " << rejection.reason;
        continue;
      }
      int64_t keys = tensorType(c.softmax).getShape().back();
      int64_t threshold = minKeys;
      if (keys < threshold) {
        ++numKeptUnfused;
        if (remarks)
          softmax.emitRemark()
              << "attention kept unfused: " << keys
              << " keys is below this target's threshold of " << threshold
              << " (min-keys), where the decomposed kernels measured faster";
        continue;
      }
      AttentionOp fused = Rewriter(c).rewrite();
      ++numFused;
      if (!remarks)
        continue;
      auto remark = fused.emitRemark();
      remark << "fused attention: " << summarize(fused);
      if (c.excludedFiniteFill)
        remark << "; the keys a where fills with " << *c.excludedFiniteFill
               << " are excluded, so a row in which it masks every key gives "
                  "zeros (unfused: weights from the fill)";
    }
  }
};

} // namespace
} // namespace kiln
