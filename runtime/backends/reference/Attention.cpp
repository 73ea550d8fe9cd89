//===- Attention.cpp - Scaled dot-product attention -----------------------===//
//
// attention(q, k, v [, mask]) {scale, causal}: for every batch b, query head
// h and query row i,
//
//   s_ij = scale * dot(q[b, h, i, :], k[b, h / G, j, :])  (+ mask[b, h, i, j])
//   p_ij = softmax over the keys j that are not excluded
//   out[b, h, i, :] = sum_j p_ij * v[b, h / G, j, :]
//
// with G = H / Hk query heads per key/value head (grouped-query attention;
// G = 1 is multi-head attention). A key is excluded when a boolean (i1) mask
// is false there, when `causal` forbids it (j > i + Sk - Sq: the diagonal is
// aligned to the bottom right, so Sq == Sk gives the usual lower triangle),
// or when its score is -inf (an additive mask of -inf). Finite additive mask
// values, however large, are only added. A row with every key excluded is
// all zeros, not NaN, as in flash attention; NaN in the operands propagates.
// `scale` defaults to 1/sqrt(D) (1 when D is 0). With `softcap` c > 0, the
// scaled score becomes c * tanh(s / c) before the mask is applied.
//
// Plain loops that accumulate in Elem<D>::Acc (f64 for f32/f64, f32 for
// f16/bf16) and skip excluded keys: the oracle the cpu backend's flash
// attention kernel is tested against.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

namespace kiln::reference {

Status checkAttention(const std::vector<DType> &types,
                      const std::vector<std::vector<int64_t>> &shapes,
                      DType resultType, const std::vector<int64_t> &resultShape,
                      AttentionGeometry &g) {
  static const char *names[] = {"q", "k", "v", "mask"};
  if (types.size() < 3 || types.size() > 4 || shapes.size() != types.size())
    return Status::error("expected 3 to 4 operands (q, k, v, mask), got " +
                         std::to_string(types.size()));
  for (size_t i = 0; i < 3; ++i)
    if (shapes[i].size() != 4)
      return Status::error("expected rank 4 for '" + std::string(names[i]) +
                           "', got " + std::to_string(shapes[i].size()) + " (" +
                           shapeToString(shapes[i]) + ")");
  if (!inClass(types[0], TypeClass::floats))
    return Status::error(std::string("unsupported element type ") +
                         dtypeName(types[0]) + " for 'q', expected " +
                         className(TypeClass::floats));
  for (size_t i = 1; i < 3; ++i)
    if (types[i] != types[0])
      return Status::error("expected '" + std::string(names[i]) +
                           "' of q's element type " + dtypeName(types[0]) +
                           ", got " + dtypeName(types[i]));
  const std::vector<int64_t> &q = shapes[0], &k = shapes[1], &v = shapes[2];
  g = AttentionGeometry();
  g.dtype = types[0];
  g.batch = q[0];
  g.heads = q[1];
  g.queries = q[2];
  g.headDim = q[3];
  g.kvHeads = k[1];
  g.keys = k[2];
  g.valueDim = v[3];
  if (k[0] != g.batch || v[0] != g.batch)
    return Status::error("expected batch " + std::to_string(g.batch) +
                         " of 'q' in 'k' and 'v', got " + shapeToString(k) +
                         " and " + shapeToString(v));
  if (k[3] != g.headDim)
    return Status::error("expected head dim " + std::to_string(g.headDim) +
                         " of 'q' in 'k', got " + shapeToString(k));
  if (v[1] != g.kvHeads || v[2] != g.keys)
    return Status::error("expected 'v' to have the heads and keys of 'k' " +
                         shapeToString(k) + ", got " + shapeToString(v));
  if (g.kvHeads == 0 ? g.heads != 0 : g.heads % g.kvHeads != 0)
    return Status::error("expected query heads (" + std::to_string(g.heads) +
                         ") to be a multiple of key/value heads (" +
                         std::to_string(g.kvHeads) + ")");
  std::vector<int64_t> scores = {g.batch, g.heads, g.queries, g.keys};
  if (types.size() == 4) {
    const std::vector<int64_t> &m = shapes[3];
    g.hasMask = true;
    g.maskType = types[3];
    if (g.maskType != g.dtype && g.maskType != DType::i1)
      return Status::error(std::string("expected 'mask' of q's element type ") +
                           dtypeName(g.dtype) + " (additive) or i1 (boolean)" +
                           ", got " + dtypeName(g.maskType));
    // Broadcasts to the scores without changing them: each dim is 1 or the
    // scores' dim, aligned to the right.
    bool fits = m.size() <= 4;
    for (size_t i = 0; fits && i < m.size(); ++i) {
      int64_t want = scores[4 - m.size() + i];
      fits = m[i] == 1 || m[i] == want;
    }
    if (!fits)
      return Status::error("expected 'mask' broadcastable to the scores " +
                           shapeToString(scores) + ", got " + shapeToString(m));
    std::vector<int64_t> strides = broadcastStrides(m, scores);
    for (int d = 0; d < 4; ++d)
      g.maskStrides[d] = strides[d];
  }
  std::vector<int64_t> result = {g.batch, g.heads, g.queries, g.valueDim};
  if (resultType != g.dtype || resultShape != result)
    return Status::error(std::string("result buffer is ") +
                         dtypeName(resultType) + " " +
                         shapeToString(resultShape) + ", expected " +
                         dtypeName(g.dtype) + " " + shapeToString(result));
  return Status::ok();
}

namespace {

Status attentionKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 3, 4, 1); !s)
    return s;
  std::vector<DType> types;
  std::vector<std::vector<int64_t>> shapes;
  for (const BufferView &in : ctx.inputs) {
    types.push_back(in.dtype);
    shapes.push_back(in.shape);
  }
  AttentionGeometry g;
  if (Status s = checkAttention(types, shapes, ctx.outputs[0].dtype,
                                ctx.outputs[0].shape, g);
      !s)
    return s;
  Attrs attrs(ctx);
  double defaultScale = g.headDim > 0 ? 1.0 / std::sqrt(double(g.headDim)) : 1;
  double scale = attrs.f64("scale", defaultScale);
  double softcap = attrs.f64("softcap", 0.0);
  bool causal = attrs.boolean("causal", false);
  // A hint for faster kernels that does not change the result: every key
  // is visited here anyway.
  attrs.boolean("causal_in_mask", false);
  if (!attrs.ok())
    return attrs.status();

  return dispatch(g.dtype, TypeClass::floats, [&]<DType D>() {
    using E = Elem<D>;
    using Acc = typename E::Acc;
    using S = typename E::S;
    const S *q = ctx.inputs[0].as<S>(), *k = ctx.inputs[1].as<S>(),
            *v = ctx.inputs[2].as<S>();
    const void *mask = g.hasMask ? ctx.inputs[3].data : nullptr;
    S *out = ctx.outputs[0].as<S>();
    const int64_t group = g.kvHeads ? g.heads / g.kvHeads : 1;
    const int64_t diagonal = g.keys - g.queries; // causal: j <= i + diagonal
    const Acc inf = std::numeric_limits<Acc>::infinity();
    std::vector<Acc> score(g.keys), acc(g.valueDim);
    std::vector<char> included(g.keys);
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t h = 0; h < g.heads; ++h) {
        int64_t kvHead = h / group;
        const S *kHead = k + (b * g.kvHeads + kvHead) * g.keys * g.headDim;
        const S *vHead = v + (b * g.kvHeads + kvHead) * g.keys * g.valueDim;
        for (int64_t i = 0; i < g.queries; ++i) {
          const S *qRow = q + ((b * g.heads + h) * g.queries + i) * g.headDim;
          S *outRow = out + ((b * g.heads + h) * g.queries + i) * g.valueDim;
          int64_t maskRow = b * g.maskStrides[0] + h * g.maskStrides[1] +
                            i * g.maskStrides[2];
          // Scores of the keys that are not excluded, and their maximum.
          Acc rowMax = -inf;
          bool any = false;
          for (int64_t j = 0; j < g.keys; ++j) {
            included[j] = 0;
            if (causal && j > i + diagonal)
              continue;
            int64_t m = maskRow + j * g.maskStrides[3];
            if (mask && g.maskType == DType::i1 &&
                !static_cast<const uint8_t *>(mask)[m])
              continue;
            Acc dot = 0;
            for (int64_t d = 0; d < g.headDim; ++d)
              dot += static_cast<Acc>(E::load(qRow[d])) *
                     static_cast<Acc>(E::load(kHead[j * g.headDim + d]));
            Acc s = static_cast<Acc>(scale) * dot;
            if (softcap > 0)
              s = static_cast<Acc>(softcap) *
                  std::tanh(s / static_cast<Acc>(softcap));
            if (mask && g.maskType != DType::i1)
              s += static_cast<Acc>(E::load(static_cast<const S *>(mask)[m]));
            if (s == -inf)
              continue;
            score[j] = s;
            included[j] = 1;
            any = true;
            rowMax = std::max(rowMax, s); // a NaN score propagates via exp
          }
          std::fill(acc.begin(), acc.end(), Acc(0));
          Acc sum = 0;
          for (int64_t j = 0; any && j < g.keys; ++j) {
            if (!included[j])
              continue;
            Acc p = std::exp(score[j] - rowMax);
            sum += p;
            for (int64_t e = 0; e < g.valueDim; ++e)
              acc[e] +=
                  p * static_cast<Acc>(E::load(vHead[j * g.valueDim + e]));
          }
          for (int64_t e = 0; e < g.valueDim; ++e)
            outRow[e] = E::store(
                static_cast<typename E::C>(any ? acc[e] / sum : Acc(0)));
        }
      }
    return Status::ok();
  });
}

} // namespace

void registerAttentionKernels(Backend &b) {
  b.add("attention", attentionKernel);
}

} // namespace kiln::reference
