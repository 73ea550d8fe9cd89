//===- OnnxTrig.cpp - Trigonometric kernels: sin, cos, atan ---------------===//
//
// The elementwise ops the ONNX importer needs for Sin/Cos and for its
// compositions of Tan, Asin, Acos and Atan. Float types only (the verifier
// rejects the others); f16 and bf16 compute in f32 and round once.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <cmath>

namespace kiln::reference {
namespace {

enum class Trig { sin, cos, atan };

template <Trig T, typename C> C applyTrig(C x) {
  switch (T) {
  case Trig::sin:
    return std::sin(x);
  case Trig::cos:
    return std::cos(x);
  case Trig::atan:
    return std::atan(x);
  }
  return x;
}

template <Trig T> Status trigKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  const BufferView &x = ctx.inputs[0];
  const BufferView &out = ctx.outputs[0];
  if (Status s = expectResult(out, x.dtype, x.shape); !s)
    return s;
  return dispatch(x.dtype, TypeClass::floats, [&]<DType D>() {
    using E = Elem<D>;
    const auto *in = x.as<typename E::S>();
    auto *o = out.as<typename E::S>();
    int64_t n = x.numElements();
    for (int64_t i = 0; i < n; ++i)
      o[i] = E::store(applyTrig<T>(E::load(in[i])));
    return Status::ok();
  });
}

} // namespace

void registerOnnxTrigKernels(Backend &b) {
  b.add("sin", trigKernel<Trig::sin>);
  b.add("cos", trigKernel<Trig::cos>);
  b.add("atan", trigKernel<Trig::atan>);
}

} // namespace kiln::reference
