//===- Norm.cpp - batch_norm, layer_norm, rms_norm, softmax ---------------===//
//
// Statistics are computed in Elem<D>::Acc (f64 for f32/f64, f32 for f16/bf16),
// two-pass for the variance. Softmax subtracts the row maximum first.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

namespace kiln::reference {
namespace {

Status batchNormKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 5, 5, 1); !s)
    return s;
  Attrs attrs(ctx);
  double eps = attrs.f64("epsilon", 1e-5);
  if (!attrs.ok())
    return attrs.status();
  const BufferView &x = ctx.inputs[0];
  if (x.rank() < 2)
    return Status::error("expected x of rank >= 2, got " +
                         shapeToString(x.shape));
  int64_t C = x.shape[1];
  static const char *names[] = {"", "scale", "bias", "mean", "var"};
  for (int i = 1; i < 5; ++i) {
    if (Status s = expectSameType(x, ctx.inputs[i], names[i]); !s)
      return s;
    if (ctx.inputs[i].shape != std::vector<int64_t>{C})
      return Status::error(std::string("'") + names[i] + "' must have shape [" +
                           std::to_string(C) + "], got " +
                           shapeToString(ctx.inputs[i].shape));
  }
  if (Status s = expectResult(ctx.outputs[0], x.dtype, x.shape); !s)
    return s;
  int64_t N = x.shape[0];
  int64_t inner = x.numElements() / std::max<int64_t>(N * C, 1);
  return dispatch(x.dtype, TypeClass::floats, [&]<DType D>() {
    using E = Elem<D>;
    using Acc = typename E::Acc;
    auto in = [&](int i) { return ctx.inputs[i].as<typename E::S>(); };
    auto *po = ctx.outputs[0].as<typename E::S>();
    for (int64_t c = 0; c < C; ++c) {
      Acc scale = E::load(in(1)[c]), bias = E::load(in(2)[c]);
      Acc mean = E::load(in(3)[c]), var = E::load(in(4)[c]);
      Acc inv = Acc(1) / std::sqrt(var + static_cast<Acc>(eps));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < inner; ++i) {
          int64_t idx = (n * C + c) * inner + i;
          Acc v = E::load(in(0)[idx]);
          po[idx] = E::store(
              static_cast<typename E::C>((v - mean) * inv * scale + bias));
        }
    }
    return Status::ok();
  });
}

/// layer_norm (with bias) and rms_norm (without): normalize over [axis, rank).
template <bool IsRms> Status normKernel(const KernelContext &ctx) {
  size_t operands = IsRms ? 2 : 3;
  if (Status s = expectArity(ctx, operands, operands, 1); !s)
    return s;
  Attrs attrs(ctx);
  int64_t axis = attrs.i64("axis", -1);
  double eps = attrs.f64("epsilon", IsRms ? 1e-6 : 1e-5);
  if (!attrs.ok())
    return attrs.status();
  const BufferView &x = ctx.inputs[0];
  if (Status s = normalizeAxis(axis, x.rank(), "axis"); !s)
    return s;
  std::vector<int64_t> normShape(x.shape.begin() + axis, x.shape.end());
  for (size_t i = 1; i < operands; ++i) {
    const char *what = i == 1 ? "scale" : "bias";
    if (Status s = expectSameType(x, ctx.inputs[i], what); !s)
      return s;
    if (ctx.inputs[i].shape != normShape)
      return Status::error(std::string("'") + what + "' must have shape " +
                           shapeToString(normShape) + ", got " +
                           shapeToString(ctx.inputs[i].shape));
  }
  if (Status s = expectResult(ctx.outputs[0], x.dtype, x.shape); !s)
    return s;
  int64_t inner = numElements(normShape);
  int64_t outer = inner ? x.numElements() / inner : 0;
  return dispatch(x.dtype, TypeClass::floats, [&]<DType D>() {
    using E = Elem<D>;
    using Acc = typename E::Acc;
    const auto *px = x.as<typename E::S>();
    const auto *ps = ctx.inputs[1].as<typename E::S>();
    const auto *pb = IsRms ? nullptr : ctx.inputs[2].as<typename E::S>();
    auto *po = ctx.outputs[0].as<typename E::S>();
    for (int64_t r = 0; r < outer; ++r) {
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
      Acc inv = Acc(1) / std::sqrt(var + static_cast<Acc>(eps));
      for (int64_t i = 0; i < inner; ++i) {
        Acc y = (static_cast<Acc>(E::load(row[i])) - mean) * inv *
                static_cast<Acc>(E::load(ps[i]));
        if (!IsRms)
          y += static_cast<Acc>(E::load(pb[i]));
        po[r * inner + i] = E::store(static_cast<typename E::C>(y));
      }
    }
    return Status::ok();
  });
}

template <bool IsLog> Status softmaxKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  Attrs attrs(ctx);
  int64_t axis = attrs.i64("axis", -1);
  if (!attrs.ok())
    return attrs.status();
  const BufferView &x = ctx.inputs[0];
  if (x.rank() == 0)
    return Status::error("softmax of a rank-0 tensor");
  if (Status s = normalizeAxis(axis, x.rank(), "axis"); !s)
    return s;
  if (Status s = expectResult(ctx.outputs[0], x.dtype, x.shape); !s)
    return s;
  int64_t len = x.shape[axis];
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < x.rank(); ++d)
    inner *= x.shape[d];
  int64_t outer = (len && inner) ? x.numElements() / (len * inner) : 0;
  return dispatch(x.dtype, TypeClass::floats, [&]<DType D>() {
    using E = Elem<D>;
    using Acc = typename E::Acc;
    const auto *px = x.as<typename E::S>();
    auto *po = ctx.outputs[0].as<typename E::S>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        auto at = [&](int64_t k) { return (o * len + k) * inner + i; };
        Acc mx = -std::numeric_limits<Acc>::infinity();
        for (int64_t k = 0; k < len; ++k)
          mx = std::max<Acc>(mx, E::load(px[at(k)]));
        Acc sum = 0;
        for (int64_t k = 0; k < len; ++k)
          sum += std::exp(static_cast<Acc>(E::load(px[at(k)])) - mx);
        for (int64_t k = 0; k < len; ++k) {
          Acc shifted = static_cast<Acc>(E::load(px[at(k)])) - mx;
          Acc y = IsLog ? shifted - std::log(sum) : std::exp(shifted) / sum;
          po[at(k)] = E::store(static_cast<typename E::C>(y));
        }
      }
    return Status::ok();
  });
}

} // namespace

void registerNormKernels(Backend &b) {
  b.add("batch_norm", batchNormKernel);
  b.add("layer_norm", normKernel<false>);
  b.add("rms_norm", normKernel<true>);
  b.add("softmax", softmaxKernel<false>);
  b.add("log_softmax", softmaxKernel<true>);
}

} // namespace kiln::reference
