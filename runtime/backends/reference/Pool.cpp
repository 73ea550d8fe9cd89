//===- Pool.cpp - max/avg pooling and global average pooling --------------===//
//
// Window geometry follows ONNX: output size floor((H + pads - k)/s) + 1, or
// ceil with ceil_mode, where the last window must start inside the input or
// the left/top padding.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

namespace kiln::reference {
namespace {

struct PoolGeometry {
  int64_t N, C, H, W, KH, KW, SH, SW, top, left, bottom, right, OH, OW;
};

int64_t pooledSize(int64_t in, int64_t k, int64_t s, int64_t lo, int64_t hi,
                   bool ceilMode) {
  int64_t span = in + lo + hi - k;
  int64_t out = (ceilMode ? (span + s - 1) / s : span / s) + 1;
  if (ceilMode && (out - 1) * s >= in + lo)
    --out;
  return out;
}

Status poolGeometry(const KernelContext &ctx, Attrs &attrs, PoolGeometry &g,
                    bool &ceilMode) {
  std::vector<int64_t> kernel = attrs.ints("kernel");
  std::vector<int64_t> strides = attrs.ints("strides", {{1, 1}});
  std::vector<int64_t> pads = attrs.ints("pads", {{0, 0, 0, 0}});
  ceilMode = attrs.boolean("ceil_mode", false);
  if (!attrs.ok())
    return attrs.status();
  if (kernel.size() != 2 || kernel[0] < 1 || kernel[1] < 1)
    return Status::error("attribute 'kernel' must be two positive integers");
  if (strides.size() != 2 || strides[0] < 1 || strides[1] < 1)
    return Status::error("attribute 'strides' must be two positive integers");
  if (pads.size() != 4 || *std::min_element(pads.begin(), pads.end()) < 0)
    return Status::error("attribute 'pads' must be four non-negative integers");
  const BufferView &x = ctx.inputs[0];
  if (x.rank() != 4)
    return Status::error("expected a rank-4 input, got " +
                         shapeToString(x.shape));
  g = {x.shape[0], x.shape[1], x.shape[2], x.shape[3], kernel[0],
       kernel[1],  strides[0], strides[1], pads[0],    pads[1],
       pads[2],    pads[3],    0,          0};
  if (g.H + g.top + g.bottom < g.KH || g.W + g.left + g.right < g.KW)
    return Status::error("pooling window larger than the padded input");
  g.OH = pooledSize(g.H, g.KH, g.SH, g.top, g.bottom, ceilMode);
  g.OW = pooledSize(g.W, g.KW, g.SW, g.left, g.right, ceilMode);
  return expectResult(ctx.outputs[0], x.dtype, {g.N, g.C, g.OH, g.OW});
}

template <bool IsMax> Status poolKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  Attrs attrs(ctx);
  bool countPad = false;
  if constexpr (!IsMax)
    countPad = attrs.boolean("count_include_pad", false);
  PoolGeometry g;
  bool ceilMode;
  if (Status s = poolGeometry(ctx, attrs, g, ceilMode); !s)
    return s;
  const BufferView &x = ctx.inputs[0];
  const BufferView &out = ctx.outputs[0];
  TypeClass cls = IsMax ? TypeClass::numeric : TypeClass::floats;
  return dispatch(x.dtype, cls, [&]<DType D>() {
    using E = Elem<D>;
    using C = typename E::C;
    using Acc = typename E::Acc;
    const auto *px = x.as<typename E::S>();
    auto *po = out.as<typename E::S>();
    for (int64_t nc = 0; nc < g.N * g.C; ++nc) {
      const auto *plane = px + nc * g.H * g.W;
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          int64_t hs = oh * g.SH - g.top, ws = ow * g.SW - g.left;
          C best = std::numeric_limits<C>::has_infinity
                       ? -std::numeric_limits<C>::infinity()
                       : std::numeric_limits<C>::lowest();
          if constexpr (std::is_same_v<typename E::S, uint8_t> && !E::isFloat)
            best = 0; // u8 lowest, in the i64 compute type
          if constexpr (D == DType::i8)
            best = -128;
          if constexpr (D == DType::i32)
            best = std::numeric_limits<int32_t>::min();
          Acc sum = 0;
          int64_t count = 0;
          for (int64_t kh = 0; kh < g.KH; ++kh)
            for (int64_t kw = 0; kw < g.KW; ++kw) {
              int64_t ih = hs + kh, iw = ws + kw;
              if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W)
                continue;
              C v = E::load(plane[ih * g.W + iw]);
              if constexpr (IsMax) {
                if (v > best || (E::isFloat && v != v))
                  best = v;
              } else {
                sum += static_cast<Acc>(v);
              }
              ++count;
            }
          C result;
          if constexpr (IsMax) {
            result = best;
          } else {
            if (countPad) {
              // The window clipped to the padded input, as ONNX and PyTorch.
              int64_t he = std::min(hs + g.KH, g.H + g.bottom);
              int64_t we = std::min(ws + g.KW, g.W + g.right);
              count = (he - hs) * (we - ws);
            }
            result = static_cast<C>(sum / static_cast<Acc>(count));
          }
          po[(nc * g.OH + oh) * g.OW + ow] = E::store(result);
        }
    }
    return Status::ok();
  });
}

Status globalAvgPoolKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  const BufferView &x = ctx.inputs[0];
  const BufferView &out = ctx.outputs[0];
  if (x.rank() != 4)
    return Status::error("expected a rank-4 input, got " +
                         shapeToString(x.shape));
  int64_t NC = x.shape[0] * x.shape[1], HW = x.shape[2] * x.shape[3];
  if (Status s = expectResult(out, x.dtype, {x.shape[0], x.shape[1], 1, 1}); !s)
    return s;
  return dispatch(x.dtype, TypeClass::floats, [&]<DType D>() {
    using E = Elem<D>;
    const auto *px = x.as<typename E::S>();
    auto *po = out.as<typename E::S>();
    for (int64_t i = 0; i < NC; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < HW; ++j)
        sum += static_cast<double>(E::load(px[i * HW + j]));
      po[i] = E::store(static_cast<typename E::C>(sum / double(HW)));
    }
    return Status::ok();
  });
}

} // namespace

void registerPoolKernels(Backend &b) {
  b.add("max_pool2d", poolKernel<true>);
  b.add("avg_pool2d", poolKernel<false>);
  b.add("global_avg_pool", globalAvgPoolKernel);
}

} // namespace kiln::reference
