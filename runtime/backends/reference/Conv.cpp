//===- Conv.cpp - 2-D convolution -----------------------------------------===//
//
// conv2d(x [N,C,H,W], w [O,C/g,KH,KW], bias? [O]) by direct summation over
// the window; padding positions contribute nothing.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

namespace kiln::reference {
namespace {

Status conv2dKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 2, 3, 1); !s)
    return s;
  Attrs attrs(ctx);
  std::vector<int64_t> strides = attrs.ints("strides", {{1, 1}});
  std::vector<int64_t> pads = attrs.ints("pads", {{0, 0, 0, 0}});
  std::vector<int64_t> dil = attrs.ints("dilations", {{1, 1}});
  int64_t groups = attrs.i64("groups", 1);
  if (!attrs.ok())
    return attrs.status();
  if (strides.size() != 2 || strides[0] < 1 || strides[1] < 1)
    return Status::error("attribute 'strides' must be two positive integers");
  if (dil.size() != 2 || dil[0] < 1 || dil[1] < 1)
    return Status::error("attribute 'dilations' must be two positive integers");
  if (pads.size() != 4 || *std::min_element(pads.begin(), pads.end()) < 0)
    return Status::error("attribute 'pads' must be four non-negative integers");
  const BufferView &x = ctx.inputs[0], &w = ctx.inputs[1];
  const BufferView *bias = ctx.inputs.size() == 3 ? &ctx.inputs[2] : nullptr;
  const BufferView &out = ctx.outputs[0];
  if (x.rank() != 4 || w.rank() != 4)
    return Status::error("expected rank-4 x and w, got " +
                         shapeToString(x.shape) + " and " +
                         shapeToString(w.shape));
  if (Status s = expectSameType(x, w, "x and w"); !s)
    return s;
  int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  int64_t O = w.shape[0], CG = w.shape[1], KH = w.shape[2], KW = w.shape[3];
  if (groups < 1 || C % groups != 0 || O % groups != 0 || CG != C / groups)
    return Status::error("groups = " + std::to_string(groups) +
                         " does not fit x " + shapeToString(x.shape) +
                         " and w " + shapeToString(w.shape));
  if (bias) {
    if (Status s = expectSameType(x, *bias, "x and bias"); !s)
      return s;
    if (bias->shape != std::vector<int64_t>{O})
      return Status::error("bias must have shape [" + std::to_string(O) +
                           "], got " + shapeToString(bias->shape));
  }
  int64_t sh = strides[0], sw = strides[1], dh = dil[0], dw = dil[1];
  int64_t effH = H + pads[0] + pads[2] - dh * (KH - 1) - 1;
  int64_t effW = W + pads[1] + pads[3] - dw * (KW - 1) - 1;
  if (effH < 0 || effW < 0)
    return Status::error("kernel window larger than the padded input");
  int64_t OH = effH / sh + 1, OW = effW / sw + 1;
  if (Status s = expectResult(out, x.dtype, {N, O, OH, OW}); !s)
    return s;
  int64_t OG = O / groups;
  return dispatch(x.dtype, TypeClass::floats, [&]<DType D>() {
    using E = Elem<D>;
    using Acc = typename E::Acc;
    const auto *px = x.as<typename E::S>();
    const auto *pw = w.as<typename E::S>();
    const auto *pb = bias ? bias->as<typename E::S>() : nullptr;
    auto *po = out.as<typename E::S>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) {
        int64_t g = o / OG;
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            Acc acc = pb ? static_cast<Acc>(E::load(pb[o])) : Acc(0);
            for (int64_t c = 0; c < CG; ++c) {
              int64_t ic = g * CG + c;
              for (int64_t kh = 0; kh < KH; ++kh) {
                int64_t ih = oh * sh - pads[0] + kh * dh;
                if (ih < 0 || ih >= H)
                  continue;
                for (int64_t kw = 0; kw < KW; ++kw) {
                  int64_t iw = ow * sw - pads[1] + kw * dw;
                  if (iw < 0 || iw >= W)
                    continue;
                  acc += static_cast<Acc>(
                             E::load(px[((n * C + ic) * H + ih) * W + iw])) *
                         static_cast<Acc>(
                             E::load(pw[((o * CG + c) * KH + kh) * KW + kw]));
                }
              }
            }
            po[((n * O + o) * OH + oh) * OW + ow] =
                E::store(static_cast<typename E::C>(acc));
          }
      }
    return Status::ok();
  });
}

} // namespace

void registerConvKernels(Backend &b) { b.add("conv2d", conv2dKernel); }

} // namespace kiln::reference
