//===- Elementwise.cpp - Unary, binary, compare, where, cast, copy --------===//
//
// Binary ops broadcast through stride-0 dimensions (StridedWalk). Integer
// arithmetic wraps (computed on unsigned 64-bit) so no input can reach signed
// overflow; integer division by zero is an error status.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <algorithm>

namespace kiln::reference {
namespace {

enum class Unary {
  neg,
  abs,
  relu,
  exp,
  log,
  sqrt,
  rsqrt,
  tanh,
  sigmoid,
  silu,
  erf,
  reciprocal,
  gelu,
  sin,
  cos,
  atan
};

template <Unary U, typename C> C applyUnary(C x, bool tanhGelu) {
  if constexpr (std::is_integral_v<C>) {
    uint64_t u = static_cast<uint64_t>(x);
    if constexpr (U == Unary::neg)
      return static_cast<C>(0 - u);
    else if constexpr (U == Unary::abs)
      return x < 0 ? static_cast<C>(0 - u) : x;
    else if constexpr (U == Unary::relu)
      return x > 0 ? x : 0;
    else
      return x; // unreachable: float-only ops are rejected before dispatch
  } else {
    (void)tanhGelu;
    switch (U) {
    case Unary::neg:
      return -x;
    case Unary::abs:
      return std::fabs(x);
    case Unary::relu:
      return (x > 0 || x != x) ? x : C(0); // NaN propagates, as in max(x, 0)
    case Unary::exp:
      return std::exp(x);
    case Unary::log:
      return std::log(x);
    case Unary::sqrt:
      return std::sqrt(x);
    case Unary::rsqrt:
      return C(1) / std::sqrt(x);
    case Unary::tanh:
      return std::tanh(x);
    case Unary::sigmoid:
      return C(1) / (C(1) + std::exp(-x));
    case Unary::silu:
      return x / (C(1) + std::exp(-x));
    case Unary::erf:
      return std::erf(x);
    case Unary::reciprocal:
      return C(1) / x;
    case Unary::sin:
      return std::sin(x);
    case Unary::cos:
      return std::cos(x);
    case Unary::atan:
      return std::atan(x);
    case Unary::gelu:
      if (tanhGelu) {
        const C k = static_cast<C>(0.7978845608028654); // sqrt(2/pi)
        return C(0.5) * x *
               (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
      }
      return C(0.5) * x *
             (C(1) + std::erf(x * static_cast<C>(0.7071067811865476)));
    }
    return x;
  }
}

template <Unary U> Status unaryKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  const BufferView &x = ctx.inputs[0];
  const BufferView &out = ctx.outputs[0];
  if (Status s = expectResult(out, x.dtype, x.shape); !s)
    return s;
  bool tanhGelu = false;
  if constexpr (U == Unary::gelu) {
    Attrs attrs(ctx);
    std::string approx = attrs.str("approximate", "none");
    if (!attrs.ok())
      return attrs.status();
    if (approx != "none" && approx != "tanh")
      return Status::error("attribute 'approximate' must be \"none\" or "
                           "\"tanh\", got \"" +
                           approx + "\"");
    tanhGelu = approx == "tanh";
  }
  constexpr bool signedOp =
      U == Unary::neg || U == Unary::abs || U == Unary::relu;
  TypeClass cls = signedOp ? TypeClass::signedTypes : TypeClass::floats;
  return dispatch(x.dtype, cls, [&]<DType D>() {
    using E = Elem<D>;
    const auto *in = x.as<typename E::S>();
    auto *o = out.as<typename E::S>();
    int64_t n = x.numElements();
    for (int64_t i = 0; i < n; ++i)
      o[i] = E::store(applyUnary<U>(E::load(in[i]), tanhGelu));
    return Status::ok();
  });
}

enum class Binary { add, sub, mul, div, max, min, pow };

/// Evaluates `fn(offsetA, offsetB, outIndex)` over the broadcast of a and b.
template <typename F>
void forBroadcast(const BufferView &a, const BufferView &b,
                  const std::vector<int64_t> &outShape, F &&fn) {
  int64_t n = numElements(outShape);
  StridedWalk walk(outShape, {broadcastStrides(a.shape, outShape),
                              broadcastStrides(b.shape, outShape)});
  for (int64_t i = 0; i < n; ++i, walk.next())
    fn(walk.offset(0), walk.offset(1), i);
}

template <Binary B> Status binaryKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 2, 2, 1); !s)
    return s;
  const BufferView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const BufferView &out = ctx.outputs[0];
  if (Status s = expectSameType(a, b, "operands"); !s)
    return s;
  std::vector<int64_t> shape;
  if (Status s = broadcastShapes(a.shape, b.shape, shape); !s)
    return s;
  if (Status s = expectResult(out, a.dtype, shape); !s)
    return s;
  TypeClass cls = B == Binary::pow ? TypeClass::floats : TypeClass::numeric;
  return dispatch(a.dtype, cls, [&]<DType D>() -> Status {
    using E = Elem<D>;
    using C = typename E::C;
    const auto *pa = a.as<typename E::S>();
    const auto *pb = b.as<typename E::S>();
    auto *po = out.as<typename E::S>();
    bool divByZero = false;
    forBroadcast(a, b, shape, [&](int64_t ia, int64_t ib, int64_t io) {
      C x = E::load(pa[ia]), y = E::load(pb[ib]);
      C r{};
      if constexpr (std::is_integral_v<C>) {
        uint64_t ux = static_cast<uint64_t>(x), uy = static_cast<uint64_t>(y);
        switch (B) {
        case Binary::add:
          r = static_cast<C>(ux + uy);
          break;
        case Binary::sub:
          r = static_cast<C>(ux - uy);
          break;
        case Binary::mul:
          r = static_cast<C>(ux * uy);
          break;
        case Binary::div:
          if (y == 0)
            divByZero = true;
          else if (y == -1)
            r = static_cast<C>(0 - ux); // avoids INT64_MIN / -1
          else
            r = x / y; // C++ truncates toward zero
          break;
        case Binary::max:
          r = std::max(x, y);
          break;
        case Binary::min:
          r = std::min(x, y);
          break;
        case Binary::pow:
          break;
        }
      } else {
        switch (B) {
        case Binary::add:
          r = x + y;
          break;
        case Binary::sub:
          r = x - y;
          break;
        case Binary::mul:
          r = x * y;
          break;
        case Binary::div:
          r = x / y;
          break;
        case Binary::max:
          r = maxKeepingNan(x, y);
          break;
        case Binary::min:
          r = minKeepingNan(x, y);
          break;
        case Binary::pow:
          r = std::pow(x, y);
          break;
        }
      }
      po[io] = E::store(r);
    });
    if (divByZero)
      return Status::error("integer division by zero");
    return Status::ok();
  });
}

Status compareKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 2, 2, 1); !s)
    return s;
  Attrs attrs(ctx);
  std::string pred = attrs.str("predicate");
  if (!attrs.ok())
    return attrs.status();
  static const char *preds[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  int p = -1;
  for (int i = 0; i < 6; ++i)
    if (pred == preds[i])
      p = i;
  if (p < 0)
    return Status::error("attribute 'predicate' must be one of eq, ne, lt, "
                         "le, gt, ge; got \"" +
                         pred + "\"");
  const BufferView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const BufferView &out = ctx.outputs[0];
  if (Status s = expectSameType(a, b, "operands"); !s)
    return s;
  if (a.dtype == DType::i1 && p > 1)
    return Status::error("predicate '" + pred +
                         "' is not defined for i1 (only eq, ne)");
  std::vector<int64_t> shape;
  if (Status s = broadcastShapes(a.shape, b.shape, shape); !s)
    return s;
  if (Status s = expectResult(out, DType::i1, shape); !s)
    return s;
  return dispatch(a.dtype, TypeClass::all, [&]<DType D>() {
    using E = Elem<D>;
    const auto *pa = a.as<typename E::S>();
    const auto *pb = b.as<typename E::S>();
    auto *po = out.as<uint8_t>();
    forBroadcast(a, b, shape, [&](int64_t ia, int64_t ib, int64_t io) {
      auto x = E::load(pa[ia]), y = E::load(pb[ib]);
      bool r = false;
      switch (p) {
      case 0:
        r = x == y;
        break;
      case 1:
        r = x != y;
        break;
      case 2:
        r = x < y;
        break;
      case 3:
        r = x <= y;
        break;
      case 4:
        r = x > y;
        break;
      case 5:
        r = x >= y;
        break;
      }
      po[io] = r ? 1 : 0;
    });
    return Status::ok();
  });
}

Status whereKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 3, 3, 1); !s)
    return s;
  const BufferView &c = ctx.inputs[0], &x = ctx.inputs[1], &y = ctx.inputs[2];
  const BufferView &out = ctx.outputs[0];
  if (c.dtype != DType::i1)
    return Status::error(std::string("condition must be i1, got ") +
                         dtypeName(c.dtype));
  if (Status s = expectSameType(x, y, "x and y"); !s)
    return s;
  std::vector<int64_t> cx, shape;
  if (Status s = broadcastShapes(c.shape, x.shape, cx); !s)
    return s;
  if (Status s = broadcastShapes(cx, y.shape, shape); !s)
    return s;
  if (Status s = expectResult(out, x.dtype, shape); !s)
    return s;
  size_t elem = dtypeSize(x.dtype);
  int64_t n = numElements(shape);
  StridedWalk walk(shape, {broadcastStrides(c.shape, shape),
                           broadcastStrides(x.shape, shape),
                           broadcastStrides(y.shape, shape)});
  const uint8_t *pc = c.as<uint8_t>();
  const uint8_t *px = x.as<uint8_t>(), *py = y.as<uint8_t>();
  uint8_t *po = out.as<uint8_t>();
  for (int64_t i = 0; i < n; ++i, walk.next()) {
    const uint8_t *src = pc[walk.offset(0)] ? px + walk.offset(1) * elem
                                            : py + walk.offset(2) * elem;
    std::memcpy(po + i * elem, src, elem);
  }
  return Status::ok();
}

Status castKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  Attrs attrs(ctx);
  DType to = attrs.dtype("dtype");
  if (!attrs.ok())
    return attrs.status();
  const BufferView &x = ctx.inputs[0];
  const BufferView &out = ctx.outputs[0];
  if (Status s = expectResult(out, to, x.shape); !s)
    return s;
  int64_t n = x.numElements();
  return dispatch(x.dtype, TypeClass::all, [&]<DType From>() {
    using EF = Elem<From>;
    const auto *in = x.as<typename EF::S>();
    return dispatch(to, TypeClass::all, [&]<DType To>() {
      using ET = Elem<To>;
      auto *o = out.as<typename ET::S>();
      for (int64_t i = 0; i < n; ++i) {
        // f32 -> f16/bf16 goes straight from float, so it rounds once.
        o[i] = ET::store(convertValue<To>(EF::load(in[i])));
      }
      return Status::ok();
    });
  });
}

Status copyKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  const BufferView &x = ctx.inputs[0];
  if (Status s = expectResult(ctx.outputs[0], x.dtype, x.shape); !s)
    return s;
  size_t bytes = x.numElements() * dtypeSize(x.dtype);
  if (bytes && ctx.outputs[0].data != x.data)
    std::memmove(ctx.outputs[0].data, x.data, bytes);
  return Status::ok();
}

/// `constant`: codegen normally turns constants into artifact buffers. As a
/// kernel it either copies its one operand (a constant buffer) or, with no
/// operand, fills the result from attribute 'value' (a number, splatted, or a
/// flat/nested list with one number per element).
Status constantKernel(const KernelContext &ctx) {
  if (ctx.inputs.size() == 1)
    return copyKernel(ctx);
  if (Status s = expectArity(ctx, 0, 0, 1); !s)
    return s;
  auto it = ctx.call->attrs.find("value");
  if (it == ctx.call->attrs.end())
    return Status::error("missing required attribute 'value'");
  std::vector<double> values;
  // Flatten nested lists in order.
  std::function<bool(const nlohmann::json &)> flatten =
      [&](const nlohmann::json &j) {
        if (j.is_array()) {
          for (const auto &e : j)
            if (!flatten(e))
              return false;
          return true;
        }
        if (j.is_number() || j.is_boolean()) {
          values.push_back(j.is_boolean() ? double(j.get<bool>())
                                          : j.get<double>());
          return true;
        }
        return false;
      };
  if (!flatten(*it))
    return Status::error("attribute 'value' must be a number or a list of "
                         "numbers");
  const BufferView &out = ctx.outputs[0];
  int64_t n = out.numElements();
  if (values.size() != 1 && static_cast<int64_t>(values.size()) != n)
    return Status::error("attribute 'value' has " +
                         std::to_string(values.size()) +
                         " elements, result needs " + std::to_string(n));
  return dispatch(out.dtype, TypeClass::all, [&]<DType D>() {
    using E = Elem<D>;
    auto *o = out.as<typename E::S>();
    for (int64_t i = 0; i < n; ++i)
      o[i] =
          E::store(convertValue<D>(values.size() == 1 ? values[0] : values[i]));
    return Status::ok();
  });
}

} // namespace

void registerElementwiseKernels(Backend &b) {
  b.add("neg", unaryKernel<Unary::neg>);
  b.add("abs", unaryKernel<Unary::abs>);
  b.add("relu", unaryKernel<Unary::relu>);
  b.add("exp", unaryKernel<Unary::exp>);
  b.add("log", unaryKernel<Unary::log>);
  b.add("sqrt", unaryKernel<Unary::sqrt>);
  b.add("rsqrt", unaryKernel<Unary::rsqrt>);
  b.add("tanh", unaryKernel<Unary::tanh>);
  b.add("sigmoid", unaryKernel<Unary::sigmoid>);
  b.add("silu", unaryKernel<Unary::silu>);
  b.add("erf", unaryKernel<Unary::erf>);
  b.add("reciprocal", unaryKernel<Unary::reciprocal>);
  b.add("gelu", unaryKernel<Unary::gelu>);
  b.add("sin", unaryKernel<Unary::sin>);
  b.add("cos", unaryKernel<Unary::cos>);
  b.add("atan", unaryKernel<Unary::atan>);
  b.add("add", binaryKernel<Binary::add>);
  b.add("sub", binaryKernel<Binary::sub>);
  b.add("mul", binaryKernel<Binary::mul>);
  b.add("div", binaryKernel<Binary::div>);
  b.add("max", binaryKernel<Binary::max>);
  b.add("min", binaryKernel<Binary::min>);
  b.add("pow", binaryKernel<Binary::pow>);
  b.add("compare", compareKernel);
  b.add("where", whereKernel);
  b.add("cast", castKernel);
  b.add("copy", copyKernel);
  b.add("constant", constantKernel);
}

} // namespace kiln::reference
