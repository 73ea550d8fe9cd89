//===- frontends/dsl/Ops.cpp - Tensor methods: one kiln op each -----------===//
//
// Each method creates one kiln op through Graph::Impl::create. Conveniences a
// model author expects (reshape with -1, Python-style slices, negative axes)
// are resolved here so the IR only ever holds explicit, static values.
//
//===----------------------------------------------------------------------===//
#include "frontends/dsl/GraphImpl.h"
#include "ir/ElementTypes.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <algorithm>

namespace kiln::dsl {
namespace {

/// Attribute helpers bound to a graph's context.
struct Attrs {
  mlir::MLIRContext *ctx;
  llvm::SmallVector<mlir::NamedAttribute> list;

  Attrs &add(llvm::StringRef name, mlir::Attribute a) {
    list.emplace_back(mlir::StringAttr::get(ctx, name), a);
    return *this;
  }
  Attrs &i64(llvm::StringRef name, int64_t v) {
    return add(name,
               mlir::IntegerAttr::get(mlir::IntegerType::get(ctx, 64), v));
  }
  Attrs &f64(llvm::StringRef name, double v) {
    return add(name, mlir::FloatAttr::get(mlir::Float64Type::get(ctx), v));
  }
  Attrs &boolean(llvm::StringRef name, bool v) {
    return add(name, mlir::BoolAttr::get(ctx, v));
  }
  Attrs &str(llvm::StringRef name, llvm::StringRef v) {
    return add(name, mlir::StringAttr::get(ctx, v));
  }
  Attrs &ints(llvm::StringRef name, llvm::ArrayRef<int64_t> v) {
    return add(name, mlir::DenseI64ArrayAttr::get(ctx, v));
  }
};

Attrs attrs(const Tensor &t, const Loc &loc) {
  return Attrs{implOf(t, loc).ctx(), {}};
}

Tensor unary(const Tensor &x, llvm::StringRef op, const Loc &loc,
             llvm::ArrayRef<mlir::NamedAttribute> a = {}) {
  auto &g = implOf(x, loc);
  return g.create(op, {x}, a, g.location(loc));
}

Tensor binary(const Tensor &x, const Tensor &y, llvm::StringRef op,
              mlir::Location loc, llvm::ArrayRef<mlir::NamedAttribute> a = {}) {
  auto &g = implOf(x);
  return g.create(op, {x, y}, a, loc);
}

} // namespace

int64_t Tensor::dim(int64_t i, Loc l) const {
  int64_t r = rank();
  int64_t j = i < 0 ? i + r : i;
  if (j < 0 || j >= r)
    implOf(*this, l).fail(implOf(*this, l).location(l),
                          "dim " + std::to_string(i) +
                              " out of range for rank " + std::to_string(r));
  return shape_[j];
}

Tensor Tensor::neg(Loc l) const { return unary(*this, "kiln.neg", l); }
Tensor Tensor::abs(Loc l) const { return unary(*this, "kiln.abs", l); }
Tensor Tensor::exp(Loc l) const { return unary(*this, "kiln.exp", l); }
Tensor Tensor::log(Loc l) const { return unary(*this, "kiln.log", l); }
Tensor Tensor::sqrt(Loc l) const { return unary(*this, "kiln.sqrt", l); }
Tensor Tensor::rsqrt(Loc l) const { return unary(*this, "kiln.rsqrt", l); }
Tensor Tensor::tanh(Loc l) const { return unary(*this, "kiln.tanh", l); }
Tensor Tensor::sigmoid(Loc l) const { return unary(*this, "kiln.sigmoid", l); }
Tensor Tensor::relu(Loc l) const { return unary(*this, "kiln.relu", l); }
Tensor Tensor::silu(Loc l) const { return unary(*this, "kiln.silu", l); }
Tensor Tensor::erf(Loc l) const { return unary(*this, "kiln.erf", l); }
Tensor Tensor::reciprocal(Loc l) const {
  return unary(*this, "kiln.reciprocal", l);
}
Tensor Tensor::gelu(bool tanhApproximation, Loc l) const {
  auto a = attrs(*this, l);
  if (tanhApproximation)
    a.str("approximate", "tanh");
  return unary(*this, "kiln.gelu", l, a.list);
}

#define KILN_BINARY_METHOD(method, opname)                                     \
  Tensor Tensor::method(const Tensor &o, Loc l) const {                        \
    return binary(*this, o, opname, implOf(*this, l).location(l));             \
  }
KILN_BINARY_METHOD(add, "kiln.add")
KILN_BINARY_METHOD(sub, "kiln.sub")
KILN_BINARY_METHOD(mul, "kiln.mul")
KILN_BINARY_METHOD(div, "kiln.div")
KILN_BINARY_METHOD(pow, "kiln.pow")
KILN_BINARY_METHOD(maximum, "kiln.max")
KILN_BINARY_METHOD(minimum, "kiln.min")
#undef KILN_BINARY_METHOD

Tensor Tensor::compare(const std::string &predicate, const Tensor &o,
                       Loc l) const {
  return binary(*this, o, "kiln.compare", implOf(*this, l).location(l),
                attrs(*this, l).str("predicate", predicate).list);
}

Tensor Tensor::select(const Tensor &a, const Tensor &b, Loc l) const {
  return where(*this, a, b, l);
}

Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b, Loc l) {
  auto &g = implOf(cond, l);
  return g.create("kiln.where", {cond, a, b}, {}, g.location(l));
}

Tensor Tensor::cast(DType dtype, Loc l) const {
  auto &g = implOf(*this, l);
  return unary(
      *this, "kiln.cast", l,
      attrs(*this, l)
          .add("dtype", mlir::TypeAttr::get(toMlirElementType(dtype, g.ctx())))
          .list);
}

Tensor Tensor::matmul(const Tensor &o, bool transposeA, bool transposeB,
                      Loc l) const {
  auto a = attrs(*this, l);
  if (transposeA)
    a.boolean("transpose_a", true);
  if (transposeB)
    a.boolean("transpose_b", true);
  return binary(*this, o, "kiln.matmul", implOf(*this, l).location(l), a.list);
}

Tensor Tensor::softmax(int64_t axis, Loc l) const {
  return unary(*this, "kiln.softmax", l,
               attrs(*this, l).i64("axis", axis).list);
}
Tensor Tensor::logSoftmax(int64_t axis, Loc l) const {
  return unary(*this, "kiln.log_softmax", l,
               attrs(*this, l).i64("axis", axis).list);
}

#define KILN_REDUCE_METHOD(method, opname)                                     \
  Tensor Tensor::method(std::vector<int64_t> axes, bool keepdims, Loc l)       \
      const {                                                                  \
    return unary(*this, opname, l,                                             \
                 attrs(*this, l)                                               \
                     .ints("axes", axes)                                       \
                     .boolean("keepdims", keepdims)                            \
                     .list);                                                   \
  }
KILN_REDUCE_METHOD(sum, "kiln.reduce_sum")
KILN_REDUCE_METHOD(mean, "kiln.reduce_mean")
KILN_REDUCE_METHOD(max, "kiln.reduce_max")
KILN_REDUCE_METHOD(min, "kiln.reduce_min")
#undef KILN_REDUCE_METHOD

Tensor Tensor::reshape(std::vector<int64_t> shape, Loc l) const {
  auto &g = implOf(*this, l);
  int64_t known = 1, inferred = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (inferred >= 0)
        g.fail(g.location(l),
               "reshape to " + shapeToString(shape) + ": more than one -1");
      inferred = static_cast<int64_t>(i);
    } else if (shape[i] < 0) {
      g.fail(g.location(l), "reshape to " + shapeToString(shape) +
                                ": negative dim " + std::to_string(shape[i]));
    } else {
      known *= shape[i];
    }
  }
  if (inferred >= 0) {
    if (known == 0 || kiln::numElements(shape_) % known != 0)
      g.fail(g.location(l), "cannot reshape " + shapeToString(shape_) + " to " +
                                shapeToString(shape));
    shape[inferred] = kiln::numElements(shape_) / known;
  }
  return unary(*this, "kiln.reshape", l,
               attrs(*this, l).ints("shape", shape).list);
}

Tensor Tensor::transpose(std::vector<int64_t> perm, Loc l) const {
  return unary(*this, "kiln.transpose", l,
               attrs(*this, l).ints("perm", perm).list);
}

Tensor Tensor::slice(int64_t axis, int64_t start, int64_t end, int64_t step,
                     Loc l) const {
  auto &g = implOf(*this, l);
  int64_t r = rank();
  int64_t ax = axis < 0 ? axis + r : axis;
  if (ax < 0 || ax >= r)
    g.fail(g.location(l), "slice axis " + std::to_string(axis) +
                              " out of range for rank " + std::to_string(r));
  if (step == 0)
    g.fail(g.location(l), "slice step must not be 0");
  int64_t d = shape_[ax];
  // NumPy's normalization of [start:end:step].
  auto norm = [&](int64_t v, int64_t lo, int64_t hi) {
    if (v < 0)
      v += d;
    return std::clamp(v, lo, hi);
  };
  if (step > 0) {
    start = norm(start, 0, d);
    end = std::max(norm(end, 0, d), start);
  } else {
    start = norm(start, -1, d - 1);
    end = std::min(norm(end, -1, d - 1), start);
  }
  std::vector<int64_t> starts(r, 0), ends(shape_), steps(r, 1);
  starts[ax] = start;
  ends[ax] = end;
  steps[ax] = step;
  return unary(*this, "kiln.slice", l,
               attrs(*this, l)
                   .ints("starts", starts)
                   .ints("ends", ends)
                   .ints("steps", steps)
                   .list);
}

Tensor Tensor::broadcastTo(std::vector<int64_t> shape, Loc l) const {
  return unary(*this, "kiln.broadcast_to", l,
               attrs(*this, l).ints("shape", shape).list);
}

Tensor Tensor::gather(const Tensor &indices, int64_t axis, Loc l) const {
  return binary(*this, indices, "kiln.gather", implOf(*this, l).location(l),
                attrs(*this, l).i64("axis", axis).list);
}

Tensor concat(const std::vector<Tensor> &xs, int64_t axis, Loc l) {
  if (xs.empty())
    throw Error("concat of no tensors");
  auto &g = implOf(xs.front(), l);
  return g.create("kiln.concat", xs,
                  attrs(xs.front(), l).i64("axis", axis).list, g.location(l));
}

// Operators take the innermost scope's location.
static Tensor scalarLike(const Tensor &t, double v) {
  auto &g = implOf(t);
  return g.constantAt({}, {v}, t.dtype(), g.currentLocation());
}

#define KILN_OPERATOR(sym, opname)                                             \
  Tensor operator sym(const Tensor &a, const Tensor &b) {                      \
    return binary(a, b, opname, implOf(a).currentLocation());                  \
  }                                                                            \
  Tensor operator sym(const Tensor &a, double b) {                             \
    return binary(a, scalarLike(a, b), opname, implOf(a).currentLocation());   \
  }                                                                            \
  Tensor operator sym(double a, const Tensor &b) {                             \
    return binary(scalarLike(b, a), b, opname, implOf(b).currentLocation());   \
  }
KILN_OPERATOR(+, "kiln.add")
KILN_OPERATOR(-, "kiln.sub")
KILN_OPERATOR(*, "kiln.mul")
KILN_OPERATOR(/, "kiln.div")
#undef KILN_OPERATOR

Tensor operator-(const Tensor &a) {
  auto &g = implOf(a);
  return g.create("kiln.neg", {a}, {}, g.currentLocation());
}

} // namespace kiln::dsl
