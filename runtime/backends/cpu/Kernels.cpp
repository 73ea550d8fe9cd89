//===- Kernels.cpp - Own multi-threaded kernels of the cpu backend --------===//
//
// What oneDNN lacks or does badly: gather, slice, where, compare, erf, pow,
// rms_norm, casts with the contract's truncating/wrapping rules, strided
// copies for every element size, and the integer/f16/f64 elementwise cases
// the oneDNN factories decline. Plain loops over contiguous rows, split
// across threads with OpenMP, so the compiler vectorizes the inner loop.
// Factories validate the call once and decline anything unexpected, leaving
// error reporting to the reference kernels; only data-dependent errors (an
// out-of-range gather index, integer division by zero) are reported here,
// with the reference kernels' messages.
//
//===----------------------------------------------------------------------===//
#include "backends/cpu/Avx512Math.h"
#include "backends/cpu/Cpu.h"
#include "backends/reference/Common.h"

#include <omp.h>

#include <array>
#include <atomic>

namespace kiln::cpu {
namespace {

using reference::convertValue;
using reference::dispatch;
using reference::Elem;
using reference::readGatherIndices;
using reference::TypeClass;

/// A kernel from a closure that captured its prepared plan.
class OwnKernel : public PreparedKernel {
public:
  using Fn = std::function<Status(const KernelContext &)>;
  OwnKernel(const std::string &op, Fn fn)
      : PreparedKernel("cpu:" + op), fn_(std::move(fn)) {}
  Status run(const KernelContext &ctx) override { return fn_(ctx); }

private:
  Fn fn_;
};

std::unique_ptr<PreparedKernel> own(const PrepareContext &pc,
                                    OwnKernel::Fn fn) {
  return std::make_unique<OwnKernel>(pc.call->op, std::move(fn));
}

/// own() for a call on channel-blocked buffers whose layouts the factory
/// checked: named "cpu:<op>(blocked)", honoring the layouts.
std::unique_ptr<PreparedKernel> ownBlocked(const PrepareContext &pc,
                                           OwnKernel::Fn fn) {
  auto k =
      std::make_unique<OwnKernel>(pc.call->op + "(blocked)", std::move(fn));
  k->honorLayouts();
  return k;
}

/// Runs fn(begin, end) over [0, n) split across numThreads(), serially when
/// the work is small.
template <typename F> void parallelFor(int64_t n, int64_t grain, F &&fn) {
  int threads = static_cast<int>(
      std::min<int64_t>(numThreads(), std::max<int64_t>(1, n / grain)));
  if (threads <= 1) {
    fn(int64_t(0), n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t chunk = (n + nt - 1) / nt;
    int64_t begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
    if (begin < end)
      fn(begin, end);
  }
}

/// 1 / (1 + exp(-c x)) = 1 / (1 + 2^(-x c log2 e)): c = 1 for sigmoid and
/// silu, 2 for tanh-GELU's x sigmoid(2u). exp2Avx512 gives +inf for +inf
/// (scalef(NaN, +inf) is +inf), so the result is 0 for x c = -inf and 1
/// for +inf, as the std:: formula.
KILN_AVX512 inline __m512 logisticAvx512(__m512 x, float c) {
  // 2^(-x c log2 e): 0 for x c = +inf, +inf for x c = -inf.
  __m512 e = exp2Avx512(_mm512_mul_ps(x, _mm512_set1_ps(-c * kLog2e)));
  return _mm512_div_ps(_mm512_set1_ps(1.0f),
                       _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

template <Activation F> KILN_AVX512 inline __m512 activationVector(__m512 x) {
  if constexpr (F == Activation::silu)
    return _mm512_mul_ps(x, logisticAvx512(x, 1.0f));
  else if constexpr (F == Activation::sigmoid)
    return logisticAvx512(x, 1.0f);
  else if constexpr (F == Activation::tanh)
    return tanhAvx512(x);
  else {
    // 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3):
    // no cancellation in 1 + tanh(u) for negative x.
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 u = _mm512_mul_ps(
        _mm512_fmadd_ps(_mm512_mul_ps(x2, _mm512_set1_ps(0.044715f)), x, x),
        _mm512_set1_ps(0.7978845608028654f));
    return _mm512_mul_ps(x, logisticAvx512(u, 2.0f));
  }
}

template <Activation F>
KILN_AVX512 void activationAvx512(const float *x, float *y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, activationVector<F>(_mm512_loadu_ps(x + i)));
  if (i < n) {
    __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(
        y + i, tail, activationVector<F>(_mm512_maskz_loadu_ps(tail, x + i)));
  }
}

/// Row-major strides.
std::vector<int64_t> denseStrides(const std::vector<int64_t> &shape) {
  return reference::stridesOf(shape);
}

/// Iteration of a dense result over rows, with K operands read through
/// their own element strides. Size-1 dims are dropped and neighbouring dims
/// that every operand walks as one (stride of the outer = stride of the
/// inner x its size) are merged, so a channel slice of an image or a
/// same-shape binary op runs as a few long rows, not many short ones.
template <size_t K> struct RowPlan {
  std::vector<int64_t> outer; // merged result dims but the last
  int64_t inner = 1;          // the last merged dim
  std::array<std::vector<int64_t>, K> strides; // per operand, per outer dim
  std::array<int64_t, K> innerStride{};        // per operand, last dim
  std::array<int64_t, K> base{};

  RowPlan(const std::vector<int64_t> &shape,
          const std::array<std::vector<int64_t>, K> &all) {
    std::vector<int64_t> dims;
    std::array<std::vector<int64_t>, K> merged;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 1)
        continue;
      bool joins = !dims.empty();
      for (size_t k = 0; k < K && joins; ++k)
        joins = merged[k].back() == all[k][d] * shape[d];
      if (joins) {
        dims.back() *= shape[d];
        for (size_t k = 0; k < K; ++k)
          merged[k].back() = all[k][d];
        continue;
      }
      dims.push_back(shape[d]);
      for (size_t k = 0; k < K; ++k)
        merged[k].push_back(all[k][d]);
    }
    if (dims.empty())
      return; // one element (or a scalar): inner 1, stride 0
    outer.assign(dims.begin(), dims.end() - 1);
    inner = dims.back();
    for (size_t k = 0; k < K; ++k) {
      strides[k].assign(merged[k].begin(), merged[k].end() - 1);
      innerStride[k] = merged[k].back();
    }
  }
  int64_t rows() const { return numElements(outer); }
  /// Offsets of row `row`'s first element.
  std::array<int64_t, K> offsets(int64_t row) const {
    std::array<int64_t, K> off = base;
    for (int64_t d = static_cast<int64_t>(outer.size()) - 1; d >= 0; --d) {
      int64_t i = row % outer[d];
      row /= outer[d];
      for (size_t k = 0; k < K; ++k)
        off[k] += i * strides[k][d];
    }
    return off;
  }
  /// fn(operand offsets, first output index, count) over runs within one
  /// row; the result's elements are split evenly across the threads, so a
  /// result that is one long row still runs on every thread.
  template <typename F> void run(F &&fn) const {
    parallelFor(rows() * inner, 16384, [&](int64_t begin, int64_t end) {
      while (begin < end) {
        int64_t row = begin / inner, i = begin % inner;
        int64_t n = std::min(inner - i, end - begin);
        std::array<int64_t, K> off = offsets(row);
        for (size_t k = 0; k < K; ++k)
          off[k] += i * innerStride[k];
        fn(off, begin, n);
        begin += n;
      }
    });
  }
};

/// Element-size-generic strided copy into a dense result.
Status stridedCopy(const KernelContext &ctx, const RowPlan<1> &plan) {
  size_t elem = dtypeSize(ctx.inputs[0].dtype);
  auto copy = [&]<typename T>() {
    const T *src = ctx.inputs[0].as<T>();
    T *dst = ctx.outputs[0].as<T>();
    int64_t s = plan.innerStride[0];
    plan.run([&](std::array<int64_t, 1> off, int64_t o, int64_t n) {
      const T *p = src + off[0];
      if (s == 1)
        std::memcpy(dst + o, p, n * sizeof(T));
      else
        for (int64_t i = 0; i < n; ++i)
          dst[o + i] = p[i * s];
    });
  };
  switch (elem) {
  case 1:
    copy.operator()<uint8_t>();
    break;
  case 2:
    copy.operator()<uint16_t>();
    break;
  case 4:
    copy.operator()<uint32_t>();
    break;
  default:
    copy.operator()<uint64_t>();
    break;
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Unary
//===----------------------------------------------------------------------===//

enum class U {
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
  recip,
  gelu,
  geluTanh
};

template <U Op, typename C> inline C applyUnary(C x) {
  if constexpr (std::is_integral_v<C>) {
    uint64_t u = static_cast<uint64_t>(x);
    if constexpr (Op == U::neg)
      return static_cast<C>(0 - u);
    else if constexpr (Op == U::abs)
      return x < 0 ? static_cast<C>(0 - u) : x;
    else
      return x > 0 ? x : 0;
  } else {
    if constexpr (Op == U::neg)
      return -x;
    else if constexpr (Op == U::abs)
      return std::fabs(x);
    else if constexpr (Op == U::relu)
      return (x > 0 || x != x) ? x : C(0); // NaN propagates, as reference
    else if constexpr (Op == U::exp)
      return std::exp(x);
    else if constexpr (Op == U::log)
      return std::log(x);
    else if constexpr (Op == U::sqrt)
      return std::sqrt(x);
    else if constexpr (Op == U::rsqrt)
      return C(1) / std::sqrt(x);
    else if constexpr (Op == U::tanh)
      return std::tanh(x);
    else if constexpr (Op == U::sigmoid)
      return C(1) / (C(1) + std::exp(-x));
    else if constexpr (Op == U::silu)
      return x / (C(1) + std::exp(-x));
    else if constexpr (Op == U::erf)
      return std::erf(x);
    else if constexpr (Op == U::recip)
      return C(1) / x;
    else if constexpr (Op == U::gelu)
      return C(0.5) * x *
             (C(1) + std::erf(x * static_cast<C>(0.7071067811865476)));
    else
      return C(0.5) * x *
             (C(1) + std::tanh(static_cast<C>(0.7978845608028654) *
                               (x + C(0.044715) * x * x * x)));
  }
}

template <U Op> Status unaryLoop(const KernelContext &ctx) {
  const BufferView &x = ctx.inputs[0];
  constexpr bool signedOp = Op == U::neg || Op == U::abs || Op == U::relu;
  return dispatch(
      x.dtype, signedOp ? TypeClass::signedTypes : TypeClass::floats,
      [&]<DType D>() {
        using E = Elem<D>;
        const auto *in = x.as<typename E::S>();
        auto *o = ctx.outputs[0].as<typename E::S>();
        if constexpr (D == DType::f32 && (Op == U::silu || Op == U::sigmoid ||
                                          Op == U::tanh || Op == U::geluTanh)) {
          constexpr Activation f = Op == U::silu      ? Activation::silu
                                   : Op == U::sigmoid ? Activation::sigmoid
                                   : Op == U::tanh    ? Activation::tanh
                                                      : Activation::geluTanh;
          activationF32(f, in, o, x.numElements());
          return Status::ok();
        }
        parallelFor(x.numElements(), 16384, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i)
            o[i] = E::store(applyUnary<Op>(E::load(in[i])));
        });
        return Status::ok();
      });
}

std::unique_ptr<PreparedKernel> prepareUnary(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  if (out.dtype != x.dtype || out.shape != x.shape)
    return nullptr;
  const std::string &op = pc.call->op;
  bool signedOp = op == "neg" || op == "abs" || op == "relu";
  if (!reference::inClass(x.dtype, signedOp ? TypeClass::signedTypes
                                            : TypeClass::floats))
    return nullptr;
  static const std::map<std::string, KernelFn> loops = {
      {"neg", unaryLoop<U::neg>},         {"abs", unaryLoop<U::abs>},
      {"relu", unaryLoop<U::relu>},       {"exp", unaryLoop<U::exp>},
      {"log", unaryLoop<U::log>},         {"sqrt", unaryLoop<U::sqrt>},
      {"rsqrt", unaryLoop<U::rsqrt>},     {"tanh", unaryLoop<U::tanh>},
      {"sigmoid", unaryLoop<U::sigmoid>}, {"silu", unaryLoop<U::silu>},
      {"erf", unaryLoop<U::erf>},         {"reciprocal", unaryLoop<U::recip>}};
  KernelFn fn = nullptr;
  if (op == "gelu") {
    auto approx = attrString(pc, "approximate", "none");
    if (approx == "none")
      fn = unaryLoop<U::gelu>;
    else if (approx == "tanh")
      fn = unaryLoop<U::geluTanh>;
  } else if (auto it = loops.find(op); it != loops.end()) {
    fn = it->second;
  }
  if (!fn)
    return nullptr;
  // Channel-blocked with whole blocks (planBlockedLayouts: relu): the same
  // elements in another order, which an elementwise loop does not see.
  Layout layout = pc.outputLayout(0);
  if (pc.inputLayout(0) != layout)
    return nullptr;
  if (layout.isPlain())
    return own(pc, fn);
  if (x.shape.size() != 4 || x.shape[1] % layout.channelBlock != 0)
    return nullptr;
  return ownBlocked(pc, fn);
}

//===----------------------------------------------------------------------===//
// Binary, compare, where
//===----------------------------------------------------------------------===//

enum class B { add, sub, mul, div, max, min, pow };

template <B Op, typename C> inline C applyBinary(C x, C y, bool &divByZero) {
  if constexpr (std::is_integral_v<C>) {
    uint64_t ux = static_cast<uint64_t>(x), uy = static_cast<uint64_t>(y);
    if constexpr (Op == B::add)
      return static_cast<C>(ux + uy);
    else if constexpr (Op == B::sub)
      return static_cast<C>(ux - uy);
    else if constexpr (Op == B::mul)
      return static_cast<C>(ux * uy);
    else if constexpr (Op == B::div) {
      if (y == 0) {
        divByZero = true;
        return 0;
      }
      return y == -1 ? static_cast<C>(0 - ux) : x / y;
    } else if constexpr (Op == B::max)
      return std::max(x, y);
    else if constexpr (Op == B::min)
      return std::min(x, y);
    else
      return x;
  } else {
    if constexpr (Op == B::add)
      return x + y;
    else if constexpr (Op == B::sub)
      return x - y;
    else if constexpr (Op == B::mul)
      return x * y;
    else if constexpr (Op == B::div)
      return x / y;
    else if constexpr (Op == B::max)
      return reference::maxKeepingNan(x, y);
    else if constexpr (Op == B::min)
      return reference::minKeepingNan(x, y);
    else
      return std::pow(x, y);
  }
}

/// Broadcast plan for `operands` read as the dense result `shape`.
template <size_t K>
RowPlan<K> broadcastPlan(const std::vector<int64_t> &shape,
                         const std::array<const BufferDesc *, K> &operands) {
  std::array<std::vector<int64_t>, K> strides;
  for (size_t k = 0; k < K; ++k)
    strides[k] = reference::broadcastStrides(operands[k]->shape, shape);
  return RowPlan<K>(shape, strides);
}

template <B Op>
Status binaryLoop(const KernelContext &ctx, const RowPlan<2> &plan) {
  const BufferView &a = ctx.inputs[0], &b = ctx.inputs[1];
  TypeClass cls = Op == B::pow ? TypeClass::floats : TypeClass::numeric;
  return dispatch(a.dtype, cls, [&]<DType D>() -> Status {
    using E = Elem<D>;
    const auto *pa = a.as<typename E::S>();
    const auto *pb = b.as<typename E::S>();
    auto *po = ctx.outputs[0].as<typename E::S>();
    std::atomic<bool> failed{false};
    int64_t sa = plan.innerStride[0], sb = plan.innerStride[1];
    plan.run([&](std::array<int64_t, 2> off, int64_t o, int64_t n) {
      bool divByZero = false;
      const auto *ra = pa + off[0];
      const auto *rb = pb + off[1];
      for (int64_t i = 0; i < n; ++i)
        po[o + i] = E::store(applyBinary<Op>(E::load(ra[i * sa]),
                                             E::load(rb[i * sb]), divByZero));
      if (divByZero)
        failed = true;
    });
    if (failed)
      return Status::error("integer division by zero");
    return Status::ok();
  });
}

std::unique_ptr<PreparedKernel> prepareBinary(const PrepareContext &pc) {
  if (!simpleArity(pc, 2, 2))
    return nullptr;
  const BufferDesc &a = pc.inputs[0], &b = pc.inputs[1], &out = pc.outputs[0];
  auto shape = broadcastShape(a.shape, b.shape);
  if (b.dtype != a.dtype || out.dtype != a.dtype || !shape ||
      *shape != out.shape)
    return nullptr;
  const std::string &op = pc.call->op;
  if (!reference::inClass(a.dtype,
                          op == "pow" ? TypeClass::floats : TypeClass::numeric))
    return nullptr;
  using Loop = Status (*)(const KernelContext &, const RowPlan<2> &);
  static const std::map<std::string, Loop> loops = {
      {"add", binaryLoop<B::add>}, {"sub", binaryLoop<B::sub>},
      {"mul", binaryLoop<B::mul>}, {"div", binaryLoop<B::div>},
      {"max", binaryLoop<B::max>}, {"min", binaryLoop<B::min>},
      {"pow", binaryLoop<B::pow>}};
  auto it = loops.find(op);
  if (it == loops.end())
    return nullptr;
  RowPlan<2> plan = broadcastPlan<2>(*shape, {&a, &b});
  Loop loop = it->second;
  return own(pc, [plan, loop](const KernelContext &ctx) {
    // An operand sharing the result's bytes is read before each element is
    // written, row by row, so running in place is safe here.
    return loop(ctx, plan);
  });
}

std::unique_ptr<PreparedKernel> prepareCompare(const PrepareContext &pc) {
  if (!simpleArity(pc, 2, 2))
    return nullptr;
  const BufferDesc &a = pc.inputs[0], &b = pc.inputs[1], &out = pc.outputs[0];
  auto shape = broadcastShape(a.shape, b.shape);
  auto pred = attrString(pc, "predicate", std::nullopt);
  static const std::vector<std::string> preds = {"eq", "ne", "lt",
                                                 "le", "gt", "ge"};
  auto p = pred ? std::find(preds.begin(), preds.end(), *pred) : preds.end();
  if (b.dtype != a.dtype || out.dtype != DType::i1 || !shape ||
      *shape != out.shape || p == preds.end() ||
      (a.dtype == DType::i1 && p - preds.begin() > 1))
    return nullptr;
  int which = static_cast<int>(p - preds.begin());
  RowPlan<2> plan = broadcastPlan<2>(*shape, {&a, &b});
  return own(pc, [plan, which](const KernelContext &ctx) {
    const BufferView &a = ctx.inputs[0], &b = ctx.inputs[1];
    return dispatch(a.dtype, TypeClass::all, [&]<DType D>() {
      using E = Elem<D>;
      const auto *pa = a.as<typename E::S>();
      const auto *pb = b.as<typename E::S>();
      auto *po = ctx.outputs[0].as<uint8_t>();
      int64_t sa = plan.innerStride[0], sb = plan.innerStride[1];
      plan.run([&](std::array<int64_t, 2> off, int64_t o, int64_t n) {
        const auto *ra = pa + off[0];
        const auto *rb = pb + off[1];
        // Element i is read before it is written, so an i1 operand may
        // share the result's bytes.
        for (int64_t i = 0; i < n; ++i) {
          auto x = E::load(ra[i * sa]), y = E::load(rb[i * sb]);
          bool r = which == 0   ? x == y
                   : which == 1 ? x != y
                   : which == 2 ? x < y
                   : which == 3 ? x <= y
                   : which == 4 ? x > y
                                : x >= y;
          po[o + i] = r;
        }
      });
      return Status::ok();
    });
  });
}

std::unique_ptr<PreparedKernel> prepareWhere(const PrepareContext &pc) {
  if (!simpleArity(pc, 3, 3))
    return nullptr;
  const BufferDesc &c = pc.inputs[0], &x = pc.inputs[1], &y = pc.inputs[2];
  const BufferDesc &out = pc.outputs[0];
  auto cx = broadcastShape(c.shape, x.shape);
  auto shape = cx ? broadcastShape(*cx, y.shape) : std::nullopt;
  if (c.dtype != DType::i1 || y.dtype != x.dtype || out.dtype != x.dtype ||
      !shape || *shape != out.shape)
    return nullptr;
  RowPlan<3> plan = broadcastPlan<3>(*shape, {&c, &x, &y});
  return own(pc, [plan](const KernelContext &ctx) {
    auto loop = [&]<typename T>() {
      const uint8_t *pc = ctx.inputs[0].as<uint8_t>();
      const T *px = ctx.inputs[1].as<T>(), *py = ctx.inputs[2].as<T>();
      T *po = ctx.outputs[0].as<T>();
      auto [sc, sx, sy] = plan.innerStride;
      plan.run([&](std::array<int64_t, 3> off, int64_t o, int64_t n) {
        for (int64_t i = 0; i < n; ++i)
          po[o + i] =
              pc[off[0] + i * sc] ? px[off[1] + i * sx] : py[off[2] + i * sy];
      });
    };
    switch (dtypeSize(ctx.inputs[1].dtype)) {
    case 1:
      loop.operator()<uint8_t>();
      break;
    case 2:
      loop.operator()<uint16_t>();
      break;
    case 4:
      loop.operator()<uint32_t>();
      break;
    default:
      loop.operator()<uint64_t>();
      break;
    }
    return Status::ok();
  });
}

//===----------------------------------------------------------------------===//
// cast
//===----------------------------------------------------------------------===//

std::unique_ptr<PreparedKernel> prepareCast(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  auto to = attrString(pc, "dtype", std::nullopt);
  if (!to || parseDType(*to) != out.dtype || out.shape != x.shape)
    return nullptr;
  return own(pc, [](const KernelContext &ctx) {
    const BufferView &x = ctx.inputs[0], &out = ctx.outputs[0];
    int64_t n = x.numElements();
    return dispatch(x.dtype, TypeClass::all, [&]<DType From>() {
      using EF = Elem<From>;
      const auto *in = x.as<typename EF::S>();
      return dispatch(out.dtype, TypeClass::all, [&]<DType To>() {
        using ET = Elem<To>;
        auto *o = out.as<typename ET::S>();
        // In place only element for element (same width; see Executable).
        parallelFor(n, 16384, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i)
            o[i] = ET::store(convertValue<To>(EF::load(in[i])));
        });
        return Status::ok();
      });
    });
  });
}

//===----------------------------------------------------------------------===//
// Shape ops: copy, reshape, transpose, slice, broadcast_to, concat, gather
//===----------------------------------------------------------------------===//

std::unique_ptr<PreparedKernel> prepareCopy(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  if (out.dtype != x.dtype || out.byteSize() != x.byteSize())
    return nullptr;
  if (pc.call->op == "reshape") {
    auto shape = attrInts(pc, "shape", std::nullopt);
    if (!shape || *shape != out.shape)
      return nullptr;
  } else if (out.shape != x.shape) {
    return nullptr;
  }
  return own(pc, [](const KernelContext &ctx) {
    const BufferView &x = ctx.inputs[0];
    if (ctx.outputs[0].data != x.data)
      std::memcpy(ctx.outputs[0].data, x.data,
                  x.numElements() * dtypeSize(x.dtype));
    return Status::ok();
  });
}

std::unique_ptr<PreparedKernel> prepareTranspose(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  auto perm = attrInts(pc, "perm", std::nullopt);
  size_t rank = x.shape.size();
  if (out.dtype != x.dtype || !perm || perm->size() != rank)
    return nullptr;
  std::vector<bool> used(rank, false);
  std::vector<int64_t> own0 = denseStrides(x.shape), shape(rank), strides(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t p = (*perm)[i];
    if (p < 0 || p >= static_cast<int64_t>(rank) || used[p])
      return nullptr;
    used[p] = true;
    shape[i] = x.shape[p];
    strides[i] = own0[p];
  }
  if (out.shape != shape)
    return nullptr;
  RowPlan<1> plan(shape, {strides});
  return own(
      pc, [plan](const KernelContext &ctx) { return stridedCopy(ctx, plan); });
}

std::unique_ptr<PreparedKernel> prepareSlice(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  auto starts = attrInts(pc, "starts", std::nullopt);
  auto ends = attrInts(pc, "ends", std::nullopt);
  auto steps = attrInts(pc, "steps", std::nullopt);
  size_t rank = x.shape.size();
  if (!starts || !ends || !steps || starts->size() != rank ||
      ends->size() != rank || steps->size() != rank || out.dtype != x.dtype)
    return nullptr;
  std::vector<int64_t> own0 = denseStrides(x.shape), shape(rank), strides(rank);
  int64_t base = 0;
  for (size_t d = 0; d < rank; ++d) {
    int64_t dim = x.shape[d], st = (*starts)[d], en = (*ends)[d],
            sp = (*steps)[d];
    if (sp > 0 && 0 <= st && st <= en && en <= dim)
      shape[d] = (en - st + sp - 1) / sp;
    else if (sp < 0 && -1 <= en && en <= st && st < dim)
      shape[d] = (st - en + (-sp) - 1) / (-sp);
    else
      return nullptr; // step 0, out of range, or empty: reference
    strides[d] = own0[d] * sp;
    base += st * own0[d];
  }
  if (out.shape != shape)
    return nullptr;
  RowPlan<1> plan(shape, {strides});
  plan.base[0] = base;
  return own(
      pc, [plan](const KernelContext &ctx) { return stridedCopy(ctx, plan); });
}

std::unique_ptr<PreparedKernel> prepareBroadcastTo(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  auto shape = attrInts(pc, "shape", std::nullopt);
  if (!shape || *shape != out.shape || out.dtype != x.dtype ||
      broadcastShape(x.shape, *shape) != shape)
    return nullptr;
  RowPlan<1> plan(*shape, {reference::broadcastStrides(x.shape, *shape)});
  return own(
      pc, [plan](const KernelContext &ctx) { return stridedCopy(ctx, plan); });
}

std::unique_ptr<PreparedKernel> prepareConcat(const PrepareContext &pc) {
  if (pc.inputs.empty() || pc.outputs.size() != 1)
    return nullptr;
  const BufferDesc &first = pc.inputs[0], &out = pc.outputs[0];
  auto axis = attrInt(pc, "axis", std::nullopt);
  int64_t rank = static_cast<int64_t>(first.shape.size());
  if (!axis || rank == 0 || *axis < -rank || *axis >= rank ||
      out.dtype != first.dtype)
    return nullptr;
  int64_t ax = *axis < 0 ? *axis + rank : *axis;
  std::vector<int64_t> shape = first.shape;
  shape[ax] = 0;
  for (const BufferDesc &x : pc.inputs) {
    if (x.dtype != first.dtype || static_cast<int64_t>(x.shape.size()) != rank)
      return nullptr;
    for (int64_t d = 0; d < rank; ++d)
      if (d != ax && x.shape[d] != first.shape[d])
        return nullptr;
    shape[ax] += x.shape[ax];
  }
  if (out.shape != shape)
    return nullptr;
  // Channel-blocked operands (planBlockedLayouts: along the channels, each
  // operand a whole number of blocks): each image's operand is one run at
  // the offset it has in NCHW, so the copies below are the same.
  Layout layout = pc.outputLayout(0);
  bool blocked = !layout.isPlain();
  for (size_t i = 0; i < pc.inputs.size(); ++i)
    if (pc.inputLayout(i) != layout ||
        (blocked && (rank != 4 || ax != 1 ||
                     pc.inputs[i].shape[1] % layout.channelBlock != 0)))
      return nullptr;
  int64_t outer = 1, inner = dtypeSize(first.dtype);
  for (int64_t d = 0; d < ax; ++d)
    outer *= shape[d];
  for (int64_t d = ax + 1; d < rank; ++d)
    inner *= shape[d];
  std::vector<int64_t> rows; // bytes per outer index, per operand
  for (const BufferDesc &x : pc.inputs)
    rows.push_back(x.shape[ax] * inner);
  int64_t outRow = shape[ax] * inner;
  // The copies in pieces of at most kPiece bytes, spread over the threads
  // (a concat of one image's channels has one long row per operand): piece
  // t is chunk t % chunks of row t / chunks, whose operand owns it by
  // firstChunk. An operand's offset in an output row is `at`.
  static constexpr int64_t kPiece = 64 * 1024;
  std::vector<int64_t> firstChunk = {0}, at = {0};
  for (int64_t r : rows) {
    firstChunk.push_back(firstChunk.back() + (r + kPiece - 1) / kPiece);
    at.push_back(at.back() + r);
  }
  int64_t chunks = firstChunk.back();
  int64_t grain = std::max<int64_t>(
      1, kPiece / std::max<int64_t>(1, outRow / std::max<int64_t>(chunks, 1)));
  auto copy = [rows, firstChunk, at, chunks, outer, outRow,
               grain](const KernelContext &ctx) {
    uint8_t *dst = ctx.outputs[0].as<uint8_t>();
    parallelFor(outer * chunks, grain, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        int64_t o = t / chunks, c = t % chunks;
        // The last operand whose first chunk is at or before c (operands
        // with no bytes own no chunk).
        size_t i = std::upper_bound(firstChunk.begin(), firstChunk.end(), c) -
                   firstChunk.begin() - 1;
        int64_t from = (c - firstChunk[i]) * kPiece;
        std::memcpy(dst + o * outRow + at[i] + from,
                    ctx.inputs[i].as<uint8_t>() + o * rows[i] + from,
                    std::min(kPiece, rows[i] - from));
      }
    });
    return Status::ok();
  };
  return blocked ? ownBlocked(pc, copy) : own(pc, copy);
}

std::unique_ptr<PreparedKernel> prepareGather(const PrepareContext &pc) {
  if (pc.inputs.size() != 2 || pc.outputs.size() != 1)
    return nullptr;
  const BufferDesc &data = pc.inputs[0], &idx = pc.inputs[1],
                   &out = pc.outputs[0];
  auto axis = attrInt(pc, "axis", 0);
  int64_t rank = static_cast<int64_t>(data.shape.size());
  if ((idx.dtype != DType::i64 && idx.dtype != DType::i32) || rank == 0 ||
      !axis || *axis < -rank || *axis >= rank || out.dtype != data.dtype)
    return nullptr;
  int64_t ax = *axis < 0 ? *axis + rank : *axis;
  std::vector<int64_t> shape(data.shape.begin(), data.shape.begin() + ax);
  shape.insert(shape.end(), idx.shape.begin(), idx.shape.end());
  shape.insert(shape.end(), data.shape.begin() + ax + 1, data.shape.end());
  if (out.shape != shape)
    return nullptr;
  int64_t dim = data.shape[ax], outer = 1, row = dtypeSize(data.dtype);
  for (int64_t d = 0; d < ax; ++d)
    outer *= data.shape[d];
  for (int64_t d = ax + 1; d < rank; ++d)
    row *= data.shape[d];
  return own(pc, [dim, outer, row, ax](const KernelContext &ctx) {
    const BufferView &idx = ctx.inputs[1];
    int64_t count = idx.numElements();
    // Indices are checked first, so a bad one writes nothing.
    std::vector<int64_t> indices;
    if (Status s = readGatherIndices(idx, dim, ax, indices); !s)
      return s;
    const uint8_t *src = ctx.inputs[0].as<uint8_t>();
    uint8_t *dst = ctx.outputs[0].as<uint8_t>();
    if (row == 0)
      return Status::ok();
    if (row == 4) {
      // One 4-byte element per index (the last axis of f32 data, as a
      // bilinear Resize gathers its columns): a plain indexed loop, not a
      // memcpy and a division per element (measured 2.4 -> ~0.3 ns each).
      const auto *from = reinterpret_cast<const uint32_t *>(src);
      auto *to = reinterpret_cast<uint32_t *>(dst);
      parallelFor(outer, std::max<int64_t>(1, 16384 / count),
                  [&](int64_t begin, int64_t end) {
                    for (int64_t o = begin; o < end; ++o) {
                      const uint32_t *in = from + o * dim;
                      uint32_t *out = to + o * count;
                      for (int64_t i = 0; i < count; ++i)
                        out[i] = in[indices[i]];
                    }
                  });
      return Status::ok();
    }
    parallelFor(outer * count, std::max<int64_t>(1, 65536 / row),
                [&](int64_t begin, int64_t end) {
                  for (int64_t j = begin; j < end; ++j) {
                    int64_t o = j / count, i = j % count;
                    std::memcpy(dst + j * row,
                                src + (o * dim + indices[i]) * row, row);
                  }
                });
    return Status::ok();
  });
}

//===----------------------------------------------------------------------===//
// Normalization: layer_norm (non-f32), rms_norm, batch_norm,
// global_avg_pool
//===----------------------------------------------------------------------===//

template <bool IsRms>
std::unique_ptr<PreparedKernel> prepareNorm(const PrepareContext &pc) {
  size_t operands = IsRms ? 2 : 3;
  if (!simpleArity(pc, operands, operands))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  auto axis = attrInt(pc, "axis", -1);
  auto eps = attrFloat(pc, "epsilon", IsRms ? 1e-6 : 1e-5);
  int64_t rank = static_cast<int64_t>(x.shape.size());
  if (!axis || !eps || *axis < -rank || *axis >= rank ||
      !reference::inClass(x.dtype, TypeClass::floats) || out.dtype != x.dtype ||
      out.shape != x.shape)
    return nullptr;
  int64_t ax = *axis < 0 ? *axis + rank : *axis;
  std::vector<int64_t> normShape(x.shape.begin() + ax, x.shape.end());
  for (size_t i = 1; i < operands; ++i)
    if (pc.inputs[i].dtype != x.dtype || pc.inputs[i].shape != normShape)
      return nullptr;
  int64_t inner = numElements(normShape);
  int64_t outer = numElements(x.shape) / inner;
  double epsilon = *eps;
  return own(pc, [inner, outer, epsilon](const KernelContext &ctx) {
    return dispatch(ctx.inputs[0].dtype, TypeClass::floats, [&]<DType D>() {
      using E = Elem<D>;
      // f64 statistics for f32/f64 (as the reference), f32 for f16/bf16.
      using Acc = typename E::Acc;
      const auto *px = ctx.inputs[0].as<typename E::S>();
      const auto *ps = ctx.inputs[1].as<typename E::S>();
      const auto *pb = IsRms ? nullptr : ctx.inputs[2].as<typename E::S>();
      auto *po = ctx.outputs[0].as<typename E::S>();
      parallelFor(outer, std::max<int64_t>(1, 4096 / inner),
                  [&](int64_t begin, int64_t end) {
                    for (int64_t r = begin; r < end; ++r) {
                      const auto *row = px + r * inner;
                      Acc mean = 0, var = 0;
                      if constexpr (!IsRms) {
                        for (int64_t i = 0; i < inner; ++i)
                          mean += static_cast<Acc>(E::load(row[i]));
                        mean /= static_cast<Acc>(inner);
                      }
                      for (int64_t i = 0; i < inner; ++i) {
                        Acc d = static_cast<Acc>(E::load(row[i])) - mean;
                        var += d * d;
                      }
                      var /= static_cast<Acc>(inner);
                      auto inv = static_cast<typename E::C>(
                          Acc(1) / std::sqrt(var + static_cast<Acc>(epsilon)));
                      auto m = static_cast<typename E::C>(mean);
                      auto *o = po + r * inner;
                      for (int64_t i = 0; i < inner; ++i) {
                        auto y = (E::load(row[i]) - m) * inv * E::load(ps[i]);
                        if constexpr (!IsRms)
                          y += E::load(pb[i]);
                        o[i] = E::store(y);
                      }
                    }
                  });
      return Status::ok();
    });
  });
}

/// batch_norm (inference) on plain [N, C, ...]: y = (x - mean) * s + bias
/// with s = scale / sqrt(var + eps) per channel, computed in the reference
/// kernel's accumulator type per run (C values) and applied in the element
/// type's compute type, channel row by channel row across the threads.
/// oneDNN 2.6 runs plain-layout batch normalization on its scalar
/// ncsp_bnorm kernel: measured on DenseNet-121's 62 standalone batch norms
/// (one after each concat, before the ReLU and the 1x1 convolution),
/// 2 threads, kiln-run --profile, 3 runs each: 6.5-9.7 ms with it, 1.3-1.6
/// ms with this loop (the model: 36.4-39.5 -> 30.0-33.2 ms per run).
/// Batch norms after a convolution never get here: they fold into the
/// convolution (kiln-fuse-epilogues).
std::unique_ptr<PreparedKernel> prepareBatchNorm(const PrepareContext &pc) {
  // Plain, or channel-blocked with whole blocks (planBlockedLayouts).
  Layout layout = pc.outputLayout(0);
  if (!simpleArity(pc, 5, 5) || pc.inputLayout(0) != layout)
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  auto eps = attrFloat(pc, "epsilon", 1e-5);
  if (!eps || !reference::inClass(x.dtype, TypeClass::floats) ||
      out.dtype != x.dtype || out.shape != x.shape || x.shape.size() < 2)
    return nullptr;
  int64_t N = x.shape[0], C = x.shape[1];
  for (int i = 1; i < 5; ++i)
    if (pc.inputs[i].dtype != x.dtype ||
        pc.inputs[i].shape != std::vector<int64_t>{C} ||
        !pc.inputLayout(i).isPlain())
      return nullptr;
  int64_t inner = N * C == 0 ? 0 : numElements(x.shape) / (N * C);
  int64_t block = layout.channelBlock;
  if (block > 0 &&
      ((block != 8 && block != 16) || x.shape.size() != 4 || C % block != 0))
    return nullptr;
  double epsilon = *eps;
  auto fn = [N, C, inner, block, epsilon](const KernelContext &ctx) {
    return dispatch(ctx.inputs[0].dtype, TypeClass::floats, [&]<DType D>() {
      using E = Elem<D>;
      using Acc = typename E::Acc;
      using Compute = typename E::C;
      auto in = [&](int i) { return ctx.inputs[i].as<typename E::S>(); };
      std::vector<Compute> mean(C), factor(C), bias(C);
      for (int64_t c = 0; c < C; ++c) {
        Acc inv = Acc(1) / std::sqrt(static_cast<Acc>(E::load(in(4)[c])) +
                                     static_cast<Acc>(epsilon));
        mean[c] = E::load(in(3)[c]);
        factor[c] =
            static_cast<Compute>(inv * static_cast<Acc>(E::load(in(1)[c])));
        bias[c] = E::load(in(2)[c]);
      }
      const auto *px = in(0);
      auto *po = ctx.outputs[0].as<typename E::S>();
      // Runs of `inner` pixels of `lanes` channels: [N, C, inner] plain
      // (one channel a run), [N, C/b, H, W, b] blocked; the lane count is
      // a compile-time constant, so the loop over a pixel's lanes is one
      // vector operation.
      int64_t lanes = block > 0 ? block : 1;
      auto runs = [&]<int64_t L>() {
        parallelFor(
            N * (C / L),
            std::max<int64_t>(1, 8192 / std::max<int64_t>(inner * L, 1)),
            [&](int64_t begin, int64_t end) {
              for (int64_t r = begin; r < end; ++r) {
                int64_t first = r % (C / L) * L;
                Compute m[L], f[L], b[L];
                for (int64_t l = 0; l < L; ++l)
                  m[l] = mean[first + l], f[l] = factor[first + l],
                  b[l] = bias[first + l];
                const auto *src = px + r * inner * L;
                auto *dst = po + r * inner * L;
                for (int64_t p = 0; p < inner; ++p)
                  for (int64_t l = 0; l < L; ++l)
                    dst[p * L + l] = E::store(
                        (E::load(src[p * L + l]) - m[l]) * f[l] + b[l]);
              }
            });
      };
      if (lanes == 16)
        runs.template operator()<16>();
      else if (lanes == 8)
        runs.template operator()<8>();
      else
        runs.template operator()<1>();
      return Status::ok();
    });
  };
  return layout.isPlain() ? own(pc, fn) : ownBlocked(pc, fn);
}

/// global_avg_pool of a channel-blocked source [N, ceil(C/b), H, W, b]
/// (channels padded to a whole block): N * ceil(C/b) runs of `hw` pixels of
/// `block` channels each, every channel summed in f64 in pixel order, as
/// from a plain source; padded channels are not written.
template <typename E>
void averageBlockedPlanes(const KernelContext &ctx, int64_t channels,
                          int64_t hw, int64_t block) {
  const auto *px = ctx.inputs[0].as<typename E::S>();
  auto *po = ctx.outputs[0].as<typename E::S>();
  int64_t blocks = (channels + block - 1) / block;
  int64_t groups = ctx.inputs[0].shape[0] * blocks;
  parallelFor(groups, std::max<int64_t>(1, 16384 / (hw * block)),
              [&](int64_t begin, int64_t end) {
                std::vector<double> sum(block);
                for (int64_t g = begin; g < end; ++g) {
                  const auto *src = px + g * hw * block;
                  std::fill(sum.begin(), sum.end(), 0.0);
                  for (int64_t i = 0; i < hw; ++i)
                    for (int64_t c = 0; c < block; ++c)
                      sum[c] +=
                          static_cast<double>(E::load(src[i * block + c]));
                  int64_t n = g / blocks, first = (g % blocks) * block;
                  int64_t count = std::min(block, channels - first);
                  for (int64_t c = 0; c < count; ++c)
                    po[n * channels + first + c] = E::store(
                        static_cast<typename E::C>(sum[c] / double(hw)));
                }
              });
}

std::unique_ptr<PreparedKernel> prepareGlobalAvgPool(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  if (x.shape.size() != 4 || !reference::inClass(x.dtype, TypeClass::floats) ||
      out.dtype != x.dtype ||
      out.shape != std::vector<int64_t>{x.shape[0], x.shape[1], 1, 1})
    return nullptr;
  int64_t planes = x.shape[0] * x.shape[1], hw = x.shape[2] * x.shape[3];
  // A channel-blocked source is read b channels at a time; the result
  // [N, C, 1, 1] is written plain: the same bytes as blocked when C is a
  // multiple of b (its layout then does not matter), else it must be plain.
  int64_t block = pc.inputLayout(0).channelBlock;
  if (block > 0) {
    int64_t channels = x.shape[1];
    if (channels % block != 0 && !pc.outputLayout(0).isPlain())
      return nullptr;
    return ownBlocked(pc, [channels, hw, block](const KernelContext &ctx) {
      return dispatch(ctx.inputs[0].dtype, TypeClass::floats, [&]<DType D>() {
        averageBlockedPlanes<Elem<D>>(ctx, channels, hw, block);
        return Status::ok();
      });
    });
  }
  if (!pc.outputLayout(0).isPlain())
    return nullptr;
  return own(pc, [planes, hw](const KernelContext &ctx) {
    return dispatch(ctx.inputs[0].dtype, TypeClass::floats, [&]<DType D>() {
      using E = Elem<D>;
      const auto *px = ctx.inputs[0].as<typename E::S>();
      auto *po = ctx.outputs[0].as<typename E::S>();
      parallelFor(planes, std::max<int64_t>(1, 16384 / hw),
                  [&](int64_t begin, int64_t end) {
                    for (int64_t p = begin; p < end; ++p) {
                      double sum = 0;
                      for (int64_t i = 0; i < hw; ++i)
                        sum += static_cast<double>(E::load(px[p * hw + i]));
                      po[p] = E::store(
                          static_cast<typename E::C>(sum / double(hw)));
                    }
                  });
      return Status::ok();
    });
  });
}

} // namespace

std::optional<Activation> activationNamed(const std::string &name) {
  if (name == "silu")
    return Activation::silu;
  if (name == "sigmoid")
    return Activation::sigmoid;
  if (name == "tanh")
    return Activation::tanh;
  if (name == "gelu_tanh")
    return Activation::geluTanh;
  return std::nullopt;
}

std::optional<Activation> ownActivation(const std::string &name) {
  return hasAvx512() ? activationNamed(name) : std::nullopt;
}

void activationF32Serial(Activation f, const float *x, float *y, int64_t n) {
  auto loop = [&]<Activation F, U Scalar>() {
    if (hasAvx512())
      return activationAvx512<F>(x, y, n);
    for (int64_t i = 0; i < n; ++i)
      y[i] = applyUnary<Scalar>(x[i]);
  };
  switch (f) {
  case Activation::silu:
    return loop.operator()<Activation::silu, U::silu>();
  case Activation::sigmoid:
    return loop.operator()<Activation::sigmoid, U::sigmoid>();
  case Activation::tanh:
    return loop.operator()<Activation::tanh, U::tanh>();
  case Activation::geluTanh:
    return loop.operator()<Activation::geluTanh, U::geluTanh>();
  }
}

void activationF32(Activation f, const float *x, float *y, int64_t n) {
  parallelFor(n, 16384, [&](int64_t begin, int64_t end) {
    activationF32Serial(f, x + begin, y + begin, end - begin);
  });
}

void registerOwnKernels(Backend &b) {
  for (const char *op :
       {"neg", "abs", "relu", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid",
        "silu", "erf", "reciprocal", "gelu"})
    b.addFactory(op, prepareUnary);
  for (const char *op : {"add", "sub", "mul", "div", "max", "min", "pow"})
    b.addFactory(op, prepareBinary);
  b.addFactory("compare", prepareCompare);
  b.addFactory("where", prepareWhere);
  b.addFactory("cast", prepareCast);
  b.addFactory("copy", prepareCopy);
  b.addFactory("reshape", prepareCopy);
  b.addFactory("transpose", prepareTranspose);
  b.addFactory("slice", prepareSlice);
  b.addFactory("broadcast_to", prepareBroadcastTo);
  b.addFactory("concat", prepareConcat);
  b.addFactory("gather", prepareGather);
  b.addFactory("layer_norm", prepareNorm<false>);
  b.addFactory("rms_norm", prepareNorm<true>);
  b.addFactory("batch_norm", prepareBatchNorm);
  b.addFactory("global_avg_pool", prepareGlobalAvgPool);
}

} // namespace kiln::cpu
