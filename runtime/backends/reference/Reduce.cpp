//===- Reduce.cpp - reduce_sum, reduce_mean, reduce_max, reduce_min -------===//
//
// One pass over the input; each element lands in its output slot through
// output strides that are zero along reduced dims. Float sums accumulate in
// f64; an empty reduction gives sum 0, mean NaN, max -inf/lowest, min
// +inf/highest, as the contract says.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <set>

namespace kiln::reference {
namespace {

enum class Reduce { sum, mean, max, min };

template <Reduce R> Status reduceKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  Attrs attrs(ctx);
  std::vector<int64_t> axes = attrs.ints("axes");
  bool keepdims = attrs.boolean("keepdims", false);
  if (!attrs.ok())
    return attrs.status();
  const BufferView &x = ctx.inputs[0];
  int64_t rank = x.rank();
  std::vector<bool> reduced(rank, axes.empty());
  std::set<int64_t> seen;
  for (int64_t a : axes) {
    if (Status s = normalizeAxis(a, rank, "axes"); !s)
      return s;
    if (!seen.insert(a).second)
      return Status::error("attribute 'axes' names dim " + std::to_string(a) +
                           " twice");
    reduced[a] = true;
  }
  std::vector<int64_t> keptShape, outShape;
  for (int64_t d = 0; d < rank; ++d) {
    keptShape.push_back(reduced[d] ? 1 : x.shape[d]);
    if (!reduced[d] || keepdims)
      outShape.push_back(reduced[d] ? 1 : x.shape[d]);
  }
  if (Status s = expectResult(ctx.outputs[0], x.dtype, outShape); !s)
    return s;
  std::vector<int64_t> outStrides = broadcastStrides(keptShape, x.shape);
  int64_t outN = numElements(keptShape);
  int64_t inN = x.numElements();
  int64_t perSlot = outN ? inN / std::max<int64_t>(outN, 1) : 0;
  if (outN && inN == 0)
    perSlot = 0;
  TypeClass cls = R == Reduce::mean ? TypeClass::floats : TypeClass::numeric;
  return dispatch(x.dtype, cls, [&]<DType D>() {
    using E = Elem<D>;
    using C = typename E::C;
    // Sums in f64 for floats, wrapping i64 for integers.
    using Sum = std::conditional_t<E::isFloat, double, int64_t>;
    const auto *px = x.as<typename E::S>();
    auto *po = ctx.outputs[0].as<typename E::S>();
    if constexpr (R == Reduce::sum || R == Reduce::mean) {
      std::vector<Sum> acc(outN, 0);
      StridedWalk walk(x.shape, {outStrides});
      for (int64_t i = 0; i < inN; ++i, walk.next()) {
        Sum v = static_cast<Sum>(E::load(px[i]));
        Sum &slot = acc[walk.offset(0)];
        if constexpr (std::is_integral_v<Sum>)
          slot = static_cast<Sum>(static_cast<uint64_t>(slot) +
                                  static_cast<uint64_t>(v));
        else
          slot += v;
      }
      for (int64_t o = 0; o < outN; ++o) {
        if constexpr (R == Reduce::mean)
          po[o] = E::store(static_cast<C>(
              perSlot ? double(acc[o]) / double(perSlot)
                      : std::numeric_limits<double>::quiet_NaN()));
        else
          po[o] = E::store(static_cast<C>(acc[o]));
      }
    } else {
      constexpr bool isMax = R == Reduce::max;
      C init;
      if constexpr (E::isFloat)
        init = isMax ? -std::numeric_limits<C>::infinity()
                     : std::numeric_limits<C>::infinity();
      else if constexpr (D == DType::u8)
        init = isMax ? 0 : 255;
      else if constexpr (D == DType::i8)
        init = isMax ? -128 : 127;
      else if constexpr (D == DType::i32)
        init = isMax ? std::numeric_limits<int32_t>::min()
                     : std::numeric_limits<int32_t>::max();
      else
        init = isMax ? std::numeric_limits<int64_t>::min()
                     : std::numeric_limits<int64_t>::max();
      std::vector<C> acc(outN, init);
      StridedWalk walk(x.shape, {outStrides});
      for (int64_t i = 0; i < inN; ++i, walk.next()) {
        C v = E::load(px[i]);
        C &slot = acc[walk.offset(0)];
        if constexpr (E::isFloat) {
          if (std::isnan(v) || std::isnan(slot))
            slot = std::numeric_limits<C>::quiet_NaN(); // NaN propagates
          else
            slot = isMax ? std::max(slot, v) : std::min(slot, v);
        } else {
          slot = isMax ? std::max(slot, v) : std::min(slot, v);
        }
      }
      for (int64_t o = 0; o < outN; ++o)
        po[o] = E::store(acc[o]);
    }
    return Status::ok();
  });
}

} // namespace

void registerReduceKernels(Backend &b) {
  b.add("reduce_sum", reduceKernel<Reduce::sum>);
  b.add("reduce_mean", reduceKernel<Reduce::mean>);
  b.add("reduce_max", reduceKernel<Reduce::max>);
  b.add("reduce_min", reduceKernel<Reduce::min>);
}

} // namespace kiln::reference
