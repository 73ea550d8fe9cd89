//===- Attention.cpp - Flash attention kernel of the cpu backend ----------===//
//
// attention(q, k, v [, mask]) (contract: reference/Attention.cpp) without the
// Sq x Sk score matrix. Work items are (batch, head, block of 64 queries),
// spread over the threads with OpenMP. For one item the keys are visited in
// blocks of kKeyBlock, and an online softmax keeps, per query row, the
// running maximum m, the running sum l of exp(s - m) and an unnormalized
// output accumulator o:
//
//   s     = scale * K_blk . Q_blk^T (+ mask; -inf where excluded)
//   m'    = max(m, max_j s);   alpha = exp(m - m');   p = exp(s - m')
//   l     = alpha * l + sum_j p;   o = alpha * o + p^T . V_blk;   m = m'
//
// and at the end out = o / l (0 where l == 0: every key excluded). Per
// thread the scratch is O(block): Q^T (D x 64), the score tile (kKeyBlock x
// 64), o (64 x Dv) and m, l, alpha.
//
// Layout. The score tile is stored transposed, keys x queries, because then
// (1) the product K_blk . Q_blk^T broadcasts scalars of K straight from the
// k tensor against vectors of 16 queries of Q^T, which is packed once per
// query block (no per-tile packing of K); (2) the softmax statistics of 16
// queries are vertical vector operations over key rows, no horizontal
// reductions; (3) p^T . V broadcasts scalars of p against rows of v read
// straight from the v tensor. Causal: key blocks entirely above the
// (bottom-right aligned) diagonal are never visited; those that cross it are
// filled with -inf above it. Masks are added (additive) or turn scores into
// -inf (boolean) tile by tile, reading the mask through its broadcast
// strides. f16/bf16 operands are widened to f32 per tile (q once per query
// block, k and v per key block) and accumulate in f32; f64 is declined (the
// reference kernel runs it).
//
// Decoding (one query per head) with grouped-query heads: the G query
// heads of a key/value head are one work item of G rows instead of G items
// of one row, so K and V are read once per group and a tile of 16 lanes
// holds G queries, not one (rows of q, out and the mask are then G heads
// apart; causal masks nothing with one query).
//
// causal_in_mask (a hint; the mask itself masks the keys above the
// diagonal with a finite fill, which must not become `causal`), and any
// additive mask that varies along the queries (it may do the same where the
// compiler cannot see it): the keys of a block past its last query's
// diagonal are skipped unless some row of the block may give them weight.
// Before the items run, each mask row's largest value above the diagonal and
// each KV head's largest |k_j| are taken, which bound those keys' scores
// (Cauchy-Schwarz); a row whose best score seen exceeds that bound by more than
// 110 gives them exactly 0 in f32. Blocks with another row (a padded query of a
// left-padded batch) visit every key, so the result is the same as without the
// hint.
//
// Code paths. The three tile operations (scores, softmax step, p^T . V) have
// an AVX-512 version (register-blocked FMA microkernels: 6 keys x 64 queries
// for the scores, 6 queries x 64 values for p^T . V, and a vector exp2 with
// roundscale/scalef) in functions compiled for that target, chosen at run
// time with __builtin_cpu_supports, and a portable version in plain loops
// for other CPUs. Both are tested (see setAttentionPortableForTesting).
//
// Why own microkernels and not oneDNN matmuls on tiles. Measured on this
// project's machine, an AMD EPYC (Zen 4: AVX-512 on 256-bit units, ~104
// GFLOP/s f32 FMA peak per core), shared with other jobs: single-thread
// figures are process CPU time, medians of 5. oneDNN's f32 matmul on the
// tiles this kernel needs runs at 93-107 GFLOP/s per call (64x64x96 with B
// transposed: 8 us; 64x96x64: 7.4 us), its 1024^3 GEMM at 96-105; these
// microkernels at ~105 inside the kernel, and the whole kernel (softmax,
// masks and packing included) at 90-98 GFLOP/s for B=1 H=12 D=64 S=2048
// (f16/bf16: 82/89). oneDNN tiles would be no faster, and the own
// microkernels fold the scale into the score store and the alpha rescale of
// o into the accumulator load, read k and v in place, and keep the kernel
// independent of how oneDNN threads inside our OpenMP region.
//
// Two threads (KILN_NUM_THREADS=2), when no other job ran, f32, B=1 H=12
// D=64 (bench/attention_kernel.cpp; medians of 5 runs, then the median of 3
// such runs): S=4096 272 ms = 189 GFLOP/s, causal 139 ms (0.51x); the
// unfused chain of cpu kernels 512 ms (1.9x slower), causal 579 ms (4.2x);
// PyTorch 2's scaled_dot_product_attention 403 ms, causal 224 ms. oneDNN's
// 1024^3 GEMM ran at 191-211 GFLOP/s in the same runs, and in the chain
// p.V at 208 (peak), q.k^T at 127: the kernel runs at ~90% of GEMM peak,
// and a 2x speedup over the chain (~500 ms, of which the matmuls ~325)
// at S=4096 non-causal would need it at 100%.
//
// Known difference from the reference kernel: an excluded key inside a
// visited tile gets p = 0, so an inf or NaN in v at that key still reaches
// the output (0 * inf = NaN); the reference skips excluded keys.
//
//===----------------------------------------------------------------------===//
#include "backends/cpu/Avx512Math.h"
#include "backends/cpu/Cpu.h"
#include "backends/reference/Common.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

namespace kiln::cpu {
namespace {

using reference::AttentionGeometry;

/// Queries per work item: 4 vectors of 16 f32.
constexpr int64_t kQueryBlock = 64;
/// Keys per step of the online softmax: a multiple of every key tile of the
/// score microkernel (6, 8, 12), so only a sequence's last block has a tail.
constexpr int64_t kKeyBlock = 96;
/// Rows of padding past the score tile and the accumulator, so microkernel
/// tails may compute (and then ignore) a few rows past the end.
constexpr int64_t kTilePadding = 16;

std::atomic<bool> forcePortable{false};

//===----------------------------------------------------------------------===//
// Tile operations
//===----------------------------------------------------------------------===//
//
// Shared shapes: `scores` is a tile of up to kKeyBlock + kTilePadding rows
// (keys) of kQueryBlock floats (queries), 64-byte aligned; `queryVectors`
// (1..4) is how many 16-query vectors of a row are live. `queryT` is Q^T, D
// rows of kQueryBlock floats, zero past the block's queries. `acc` has
// kQueryBlock + kTilePadding rows of `accStride` floats (a multiple of 16).

/// The three tile operations of one code path.
struct TileOps {
  /// scores[n][m] = scale * dot(keys[n], Q[m]) for n < keyCount and the
  /// live query vectors; may write rows up to the next multiple of its key
  /// tile.
  void (*scores)(const float *queryT, int64_t queryVectors, int64_t headDim,
                 const float *keys, int64_t keyStride, int64_t keyCount,
                 float scale, float *scores);
  /// The online-softmax step for keyCount rows: updates rowMax and rowSum,
  /// writes alpha = exp(oldMax - newMax), replaces scores by p.
  void (*softmax)(float *scores, int64_t keyCount, int64_t queryVectors,
                  float *rowMax, float *rowSum, float *alpha);
  /// acc[m][:] = alpha[m] * acc[m][:] + sum_n scores[n][m] * values[n][:]
  /// for m < queryCount (may compute a few padding rows past it).
  void (*values)(const float *probs, int64_t keyCount, int64_t queryCount,
                 const float *values, int64_t valueStride, int64_t valueDim,
                 const float *alpha, float *acc, int64_t accStride);
  /// scores[n][m] += mask[m * queryStride + n * keyStride] for m <
  /// queryCount, n < keyCount: an f32 additive mask that varies along the
  /// queries (queryStride * 64 fits 31 bits).
  void (*addMask)(const float *mask, int64_t queryStride, int64_t keyStride,
                  int64_t queryCount, int64_t keyCount, float *scores);
  /// scores[n][m] = -inf where mask[m * queryStride + n] is false (0), for
  /// m < queryCount, n < keyCount: a boolean mask with contiguous rows.
  void (*excludeMasked)(const uint8_t *mask, int64_t queryStride,
                        int64_t queryCount, int64_t keyCount, float *scores);
  /// dst[i] = src[i] widened from f16 (Bf16: from bf16) for i < count.
  void (*widenF16)(const uint16_t *src, int64_t count, float *dst);
  void (*widenBf16)(const uint16_t *src, int64_t count, float *dst);
  /// scores[n][m] = cap * tanh(scores[n][m] / cap) for n < keyCount and the
  /// live query vectors (soft-capping, as Gemma 2 writes it).
  void (*softcap)(float *scores, int64_t keyCount, int64_t queryVectors,
                  float cap);
};

// Portable path: plain loops over contiguous query rows, which the compiler
// vectorizes for the baseline target.

void scoresPortable(const float *queryT, int64_t queryVectors, int64_t headDim,
                    const float *keys, int64_t keyStride, int64_t keyCount,
                    float scale, float *scores) {
  int64_t width = queryVectors * 16;
  for (int64_t n = 0; n < keyCount; ++n) {
    float *row = scores + n * kQueryBlock;
    const float *key = keys + n * keyStride;
    std::fill(row, row + width, 0.0f);
    for (int64_t d = 0; d < headDim; ++d) {
      const float kd = key[d];
      const float *q = queryT + d * kQueryBlock;
      for (int64_t m = 0; m < width; ++m)
        row[m] += kd * q[m];
    }
    for (int64_t m = 0; m < width; ++m)
      row[m] *= scale;
  }
}

float exp2Clamped(float x) {
  return std::exp2(x > kExp2Floor ? x : x != x ? x : kExp2Floor);
}

void softmaxPortable(float *scores, int64_t keyCount, int64_t queryVectors,
                     float *rowMax, float *rowSum, float *alpha) {
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t m = 0; m < queryVectors * 16; ++m) {
    float blockMax = -inf;
    for (int64_t n = 0; n < keyCount; ++n) {
      float s = scores[n * kQueryBlock + m];
      blockMax = s > blockMax ? s : blockMax; // NaN scores propagate via exp
    }
    float newMax = std::max(rowMax[m], blockMax);
    float shift = newMax == -inf ? 0.0f : newMax;
    float sum = 0;
    for (int64_t n = 0; n < keyCount; ++n) {
      float &s = scores[n * kQueryBlock + m];
      s = exp2Clamped((s - shift) * kLog2e);
      sum += s;
    }
    alpha[m] = exp2Clamped((rowMax[m] - shift) * kLog2e);
    rowSum[m] = rowSum[m] * alpha[m] + sum;
    rowMax[m] = newMax;
  }
}

void valuesPortable(const float *probs, int64_t keyCount, int64_t queryCount,
                    const float *values, int64_t valueStride, int64_t valueDim,
                    const float *alpha, float *acc, int64_t accStride) {
  for (int64_t m = 0; m < queryCount; ++m) {
    float *o = acc + m * accStride;
    for (int64_t e = 0; e < valueDim; ++e)
      o[e] *= alpha[m];
    for (int64_t n = 0; n < keyCount; ++n) {
      const float p = probs[n * kQueryBlock + m];
      const float *v = values + n * valueStride;
      for (int64_t e = 0; e < valueDim; ++e)
        o[e] += p * v[e];
    }
  }
}

void addMaskPortable(const float *mask, int64_t queryStride, int64_t keyStride,
                     int64_t queryCount, int64_t keyCount, float *scores) {
  // Mask rows are contiguous along the keys: read them, write tile columns.
  for (int64_t m = 0; m < queryCount; ++m)
    for (int64_t n = 0; n < keyCount; ++n)
      scores[n * kQueryBlock + m] += mask[m * queryStride + n * keyStride];
}

void excludeMaskedPortable(const uint8_t *mask, int64_t queryStride,
                           int64_t queryCount, int64_t keyCount,
                           float *scores) {
  const float negInf = -std::numeric_limits<float>::infinity();
  for (int64_t m = 0; m < queryCount; ++m)
    for (int64_t n = 0; n < keyCount; ++n)
      if (!mask[m * queryStride + n])
        scores[n * kQueryBlock + m] = negInf;
}

void widenF16Portable(const uint16_t *src, int64_t count, float *dst) {
  for (int64_t i = 0; i < count; ++i)
    dst[i] = halfToFloat(src[i]);
}

void widenBf16Portable(const uint16_t *src, int64_t count, float *dst) {
  for (int64_t i = 0; i < count; ++i)
    dst[i] = bf16ToFloat(src[i]);
}

void softcapPortable(float *scores, int64_t keyCount, int64_t queryVectors,
                     float cap) {
  for (int64_t n = 0; n < keyCount; ++n)
    for (int64_t m = 0; m < queryVectors * 16; ++m) {
      float &s = scores[n * kQueryBlock + m];
      s = cap * std::tanh(s / cap);
    }
}

constexpr TileOps kPortableOps = {scoresPortable,        softmaxPortable,
                                  valuesPortable,        addMaskPortable,
                                  excludeMaskedPortable, widenF16Portable,
                                  widenBf16Portable,     softcapPortable};

// AVX-512 path. Every function that uses the intrinsics carries the target
// attribute; the rest of the file is compiled for the baseline.

/// Fully unrolls the constant loops over the register tile, so that its
/// accumulators live in registers.
#define KILN_UNROLL _Pragma("GCC unroll 32")

/// Keys per register tile of the score microkernel, by live query vectors:
/// Keys x Vectors accumulators (at most 24) plus the Q^T vectors fit the 32
/// vector registers.
template <int Vectors>
constexpr int kScoreKeys = Vectors == 4   ? 6
                           : Vectors == 3 ? 8
                                          : 12;
/// Queries per register tile of the p^T . V microkernel (x 4 value vectors).
constexpr int kValueQueries = 6;

/// Keys x (16 * Vectors) scores: acc[r][v] += K[r][d] * Q^T[d][v], d < D.
template <int Keys, int Vectors>
KILN_AVX512 inline void scoreTileAvx512(const float *queryT, int64_t headDim,
                                        const float *const *keyRows,
                                        float scale, float *out) {
  __m512 acc[Keys][Vectors];
  KILN_UNROLL
  for (int r = 0; r < Keys; ++r)
    KILN_UNROLL
  for (int v = 0; v < Vectors; ++v)
    acc[r][v] = _mm512_setzero_ps();
  for (int64_t d = 0; d < headDim; ++d) {
    __m512 q[Vectors];
    KILN_UNROLL
    for (int v = 0; v < Vectors; ++v)
      q[v] = _mm512_load_ps(queryT + d * kQueryBlock + 16 * v);
    KILN_UNROLL
    for (int r = 0; r < Keys; ++r) {
      __m512 key = _mm512_set1_ps(keyRows[r][d]);
      KILN_UNROLL
      for (int v = 0; v < Vectors; ++v)
        acc[r][v] = _mm512_fmadd_ps(key, q[v], acc[r][v]);
    }
  }
  __m512 s = _mm512_set1_ps(scale);
  KILN_UNROLL
  for (int r = 0; r < Keys; ++r)
    KILN_UNROLL
  for (int v = 0; v < Vectors; ++v)
    _mm512_store_ps(out + r * kQueryBlock + 16 * v,
                    _mm512_mul_ps(acc[r][v], s));
}

template <int Vectors>
KILN_AVX512 void scoresAvx512For(const float *queryT, int64_t headDim,
                                 const float *keys, int64_t keyStride,
                                 int64_t keyCount, float scale, float *scores) {
  constexpr int Keys = kScoreKeys<Vectors>;
  for (int64_t n0 = 0; n0 < keyCount; n0 += Keys) {
    // Rows past the end repeat the last key; their scores land in the
    // tile's padding.
    const float *rows[Keys];
    KILN_UNROLL
    for (int r = 0; r < Keys; ++r)
      rows[r] = keys + std::min<int64_t>(n0 + r, keyCount - 1) * keyStride;
    scoreTileAvx512<Keys, Vectors>(queryT, headDim, rows, scale,
                                   scores + n0 * kQueryBlock);
  }
}

KILN_AVX512 void scoresAvx512(const float *queryT, int64_t queryVectors,
                              int64_t headDim, const float *keys,
                              int64_t keyStride, int64_t keyCount, float scale,
                              float *scores) {
  switch (queryVectors) {
  case 1:
    return scoresAvx512For<1>(queryT, headDim, keys, keyStride, keyCount, scale,
                              scores);
  case 2:
    return scoresAvx512For<2>(queryT, headDim, keys, keyStride, keyCount, scale,
                              scores);
  case 3:
    return scoresAvx512For<3>(queryT, headDim, keys, keyStride, keyCount, scale,
                              scores);
  default:
    return scoresAvx512For<4>(queryT, headDim, keys, keyStride, keyCount, scale,
                              scores);
  }
}

template <int Vectors>
KILN_AVX512 void softmaxAvx512For(float *scores, int64_t keyCount,
                                  float *rowMax, float *rowSum, float *alpha) {
  const __m512 negInf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512 log2e = _mm512_set1_ps(kLog2e);
  __m512 blockMax[Vectors];
  KILN_UNROLL
  for (int v = 0; v < Vectors; ++v)
    blockMax[v] = negInf;
  for (int64_t n = 0; n < keyCount; ++n)
    KILN_UNROLL
  for (int v = 0; v < Vectors; ++v)
    // max(s, m) returns m when s is NaN: NaN propagates through exp.
    blockMax[v] = _mm512_max_ps(
        _mm512_load_ps(scores + n * kQueryBlock + 16 * v), blockMax[v]);
  __m512 shift[Vectors], sum[Vectors];
  KILN_UNROLL
  for (int v = 0; v < Vectors; ++v) {
    __m512 oldMax = _mm512_load_ps(rowMax + 16 * v);
    __m512 newMax = _mm512_max_ps(blockMax[v], oldMax);
    // A row with no key so far keeps -inf and shifts by 0, so exp gives 0.
    shift[v] =
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask(newMax, negInf, _CMP_EQ_OQ),
                             newMax, _mm512_setzero_ps());
    __m512 a =
        exp2Avx512(_mm512_mul_ps(_mm512_sub_ps(oldMax, shift[v]), log2e));
    _mm512_store_ps(alpha + 16 * v, a);
    _mm512_store_ps(rowMax + 16 * v, newMax);
    sum[v] = _mm512_mul_ps(_mm512_load_ps(rowSum + 16 * v), a);
  }
  for (int64_t n = 0; n < keyCount; ++n)
    KILN_UNROLL
  for (int v = 0; v < Vectors; ++v) {
    float *s = scores + n * kQueryBlock + 16 * v;
    __m512 p = exp2Avx512(
        _mm512_mul_ps(_mm512_sub_ps(_mm512_load_ps(s), shift[v]), log2e));
    _mm512_store_ps(s, p);
    sum[v] = _mm512_add_ps(sum[v], p);
  }
  KILN_UNROLL
  for (int v = 0; v < Vectors; ++v)
    _mm512_store_ps(rowSum + 16 * v, sum[v]);
}

KILN_AVX512 void softmaxAvx512(float *scores, int64_t keyCount,
                               int64_t queryVectors, float *rowMax,
                               float *rowSum, float *alpha) {
  switch (queryVectors) {
  case 1:
    return softmaxAvx512For<1>(scores, keyCount, rowMax, rowSum, alpha);
  case 2:
    return softmaxAvx512For<2>(scores, keyCount, rowMax, rowSum, alpha);
  case 3:
    return softmaxAvx512For<3>(scores, keyCount, rowMax, rowSum, alpha);
  default:
    return softmaxAvx512For<4>(scores, keyCount, rowMax, rowSum, alpha);
  }
}

/// Queries x (16 * Vectors) outputs: o[r] = alpha[r] * o[r] + sum_n
/// p[n][r] * V[n]; the last value vector is loaded under `lastMask`.
template <int Queries, int Vectors>
KILN_AVX512 inline void
valueTileAvx512(const float *probs, int64_t keyCount, const float *values,
                int64_t valueStride, const float *alpha, float *acc,
                int64_t accStride, __mmask16 lastMask) {
  __m512 o[Queries][Vectors];
  KILN_UNROLL
  for (int r = 0; r < Queries; ++r) {
    __m512 a = _mm512_set1_ps(alpha[r]);
    KILN_UNROLL
    for (int u = 0; u < Vectors; ++u)
      o[r][u] = _mm512_mul_ps(_mm512_load_ps(acc + r * accStride + 16 * u), a);
  }
  for (int64_t n = 0; n < keyCount; ++n) {
    const float *row = values + n * valueStride;
    __m512 v[Vectors];
    KILN_UNROLL
    for (int u = 0; u < Vectors - 1; ++u)
      v[u] = _mm512_loadu_ps(row + 16 * u);
    v[Vectors - 1] = _mm512_maskz_loadu_ps(lastMask, row + 16 * (Vectors - 1));
    KILN_UNROLL
    for (int r = 0; r < Queries; ++r) {
      __m512 p = _mm512_set1_ps(probs[n * kQueryBlock + r]);
      KILN_UNROLL
      for (int u = 0; u < Vectors; ++u)
        o[r][u] = _mm512_fmadd_ps(p, v[u], o[r][u]);
    }
  }
  KILN_UNROLL
  for (int r = 0; r < Queries; ++r)
    KILN_UNROLL
  for (int u = 0; u < Vectors; ++u)
    _mm512_store_ps(acc + r * accStride + 16 * u, o[r][u]);
}

template <int Vectors>
KILN_AVX512 void
valuesAvx512For(const float *probs, int64_t keyCount, int64_t queryCount,
                const float *values, int64_t valueStride, const float *alpha,
                float *acc, int64_t accStride, __mmask16 lastMask) {
  int64_t m0 = 0;
  for (; m0 + kValueQueries <= queryCount; m0 += kValueQueries)
    valueTileAvx512<kValueQueries, Vectors>(
        probs + m0, keyCount, values, valueStride, alpha + m0,
        acc + m0 * accStride, accStride, lastMask);
  const float *p = probs + m0, *a = alpha + m0;
  float *o = acc + m0 * accStride;
  switch (queryCount - m0) {
  case 1:
    return valueTileAvx512<1, Vectors>(p, keyCount, values, valueStride, a, o,
                                       accStride, lastMask);
  case 2:
    return valueTileAvx512<2, Vectors>(p, keyCount, values, valueStride, a, o,
                                       accStride, lastMask);
  case 3:
    return valueTileAvx512<3, Vectors>(p, keyCount, values, valueStride, a, o,
                                       accStride, lastMask);
  case 4:
    return valueTileAvx512<4, Vectors>(p, keyCount, values, valueStride, a, o,
                                       accStride, lastMask);
  case 5:
    return valueTileAvx512<5, Vectors>(p, keyCount, values, valueStride, a, o,
                                       accStride, lastMask);
  default:
    return;
  }
}

KILN_AVX512 void valuesAvx512(const float *probs, int64_t keyCount,
                              int64_t queryCount, const float *values,
                              int64_t valueStride, int64_t valueDim,
                              const float *alpha, float *acc,
                              int64_t accStride) {
  for (int64_t e0 = 0; e0 < valueDim; e0 += 64) {
    int64_t width = std::min<int64_t>(64, valueDim - e0);
    int vectors = static_cast<int>((width + 15) / 16);
    int tail = static_cast<int>(width - 16 * (vectors - 1));
    __mmask16 lastMask = static_cast<__mmask16>((1u << tail) - 1u);
    const float *v = values + e0;
    float *o = acc + e0;
    switch (vectors) {
    case 1:
      valuesAvx512For<1>(probs, keyCount, queryCount, v, valueStride, alpha, o,
                         accStride, lastMask);
      break;
    case 2:
      valuesAvx512For<2>(probs, keyCount, queryCount, v, valueStride, alpha, o,
                         accStride, lastMask);
      break;
    case 3:
      valuesAvx512For<3>(probs, keyCount, queryCount, v, valueStride, alpha, o,
                         accStride, lastMask);
      break;
    default:
      valuesAvx512For<4>(probs, keyCount, queryCount, v, valueStride, alpha, o,
                         accStride, lastMask);
      break;
    }
  }
}

/// Transposes the 16 x 16 block in r (row i = r[i]) in place.
KILN_AVX512 inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  // Within each 128-bit lane: 4 x 4 transposes of rows 4i..4i+3.
  KILN_UNROLL
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  KILN_UNROLL
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
  }
  // Lane k of r[4i + j] now holds column 4k + j of rows 4i..4i+3: a 4 x 4
  // transpose of 128-bit lanes across r[j], r[4 + j], r[8 + j], r[12 + j].
  KILN_UNROLL
  for (int j = 0; j < 4; ++j) {
    __m512 even01 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
    __m512 odd01 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
    __m512 even23 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
    __m512 odd23 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    t[j] = _mm512_shuffle_f32x4(even01, even23, 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(odd01, odd23, 0x88);
    t[8 + j] = _mm512_shuffle_f32x4(even01, even23, 0xdd);
    t[12 + j] = _mm512_shuffle_f32x4(odd01, odd23, 0xdd);
  }
  KILN_UNROLL
  for (int i = 0; i < 16; ++i)
    r[i] = t[i];
}

KILN_AVX512 void addMaskAvx512(const float *mask, int64_t queryStride,
                               int64_t keyStride, int64_t queryCount,
                               int64_t keyCount, float *scores) {
  for (int64_t m0 = 0; m0 < queryCount; m0 += 16) {
    const int64_t liveQueries = std::min<int64_t>(16, queryCount - m0);
    if (keyStride == 1) {
      // Mask rows are contiguous: transpose 16 x 16 blocks in registers.
      for (int64_t n0 = 0; n0 < keyCount; n0 += 16) {
        const int64_t liveKeys = std::min<int64_t>(16, keyCount - n0);
        const __mmask16 keys = static_cast<__mmask16>((1u << liveKeys) - 1u);
        __m512 block[16];
        KILN_UNROLL
        for (int i = 0; i < 16; ++i)
          block[i] = i < liveQueries
                         ? _mm512_maskz_loadu_ps(
                               keys, mask + (m0 + i) * queryStride + n0)
                         : _mm512_setzero_ps();
        transpose16x16(block);
        for (int64_t c = 0; c < liveKeys; ++c) {
          float *s = scores + (n0 + c) * kQueryBlock + m0;
          _mm512_store_ps(s, _mm512_add_ps(_mm512_load_ps(s), block[c]));
        }
      }
      continue;
    }
    // Otherwise gather 16 queries' values of one key at a time.
    const __m512i offsets = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(static_cast<int>(queryStride)));
    const __mmask16 lanes = static_cast<__mmask16>((1u << liveQueries) - 1u);
    for (int64_t n = 0; n < keyCount; ++n) {
      float *s = scores + n * kQueryBlock + m0;
      __m512 add =
          _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, offsets,
                                   mask + m0 * queryStride + n * keyStride, 4);
      _mm512_store_ps(s, _mm512_add_ps(_mm512_load_ps(s), add));
    }
  }
}

KILN_AVX512 void excludeMaskedAvx512(const uint8_t *mask, int64_t queryStride,
                                     int64_t queryCount, int64_t keyCount,
                                     float *scores) {
  // As addMaskAvx512: 16 x 16 blocks of the mask, as 0/1 floats, transposed.
  const __m512 negInf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t m0 = 0; m0 < queryCount; m0 += 16) {
    const int64_t liveQueries = std::min<int64_t>(16, queryCount - m0);
    for (int64_t n0 = 0; n0 < keyCount; n0 += 16) {
      const int64_t liveKeys = std::min<int64_t>(16, keyCount - n0);
      const __mmask16 keys = static_cast<__mmask16>((1u << liveKeys) - 1u);
      __m512 block[16];
      KILN_UNROLL
      for (int i = 0; i < 16; ++i)
        block[i] =
            i < liveQueries
                ? _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(
                      keys, mask + (m0 + i) * queryStride + n0)))
                : _mm512_set1_ps(1.0f);
      transpose16x16(block);
      for (int64_t c = 0; c < liveKeys; ++c) {
        float *s = scores + (n0 + c) * kQueryBlock + m0;
        __mmask16 excluded =
            _mm512_cmp_ps_mask(block[c], _mm512_setzero_ps(), _CMP_EQ_OQ);
        _mm512_store_ps(
            s, _mm512_mask_blend_ps(excluded, _mm512_load_ps(s), negInf));
      }
    }
  }
}

KILN_AVX512 void widenF16Avx512(const uint16_t *src, int64_t count,
                                float *dst) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(
                                  reinterpret_cast<const __m256i *>(src + i))));
  widenF16Portable(src + i, count - i, dst + i);
}

KILN_AVX512 void widenBf16Avx512(const uint16_t *src, int64_t count,
                                 float *dst) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    __m512i wide = _mm512_cvtepu16_epi32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + i)));
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
  }
  widenBf16Portable(src + i, count - i, dst + i);
}

KILN_AVX512 void softcapAvx512(float *scores, int64_t keyCount,
                               int64_t queryVectors, float cap) {
  const __m512 inverse = _mm512_set1_ps(1.0f / cap), c = _mm512_set1_ps(cap);
  for (int64_t n = 0; n < keyCount; ++n)
    for (int64_t v = 0; v < queryVectors; ++v) {
      float *s = scores + n * kQueryBlock + 16 * v;
      _mm512_store_ps(s, _mm512_mul_ps(c, tanhAvx512(_mm512_mul_ps(
                                              _mm512_load_ps(s), inverse))));
    }
}

constexpr TileOps kAvx512Ops = {
    scoresAvx512,        softmaxAvx512,  valuesAvx512,    addMaskAvx512,
    excludeMaskedAvx512, widenF16Avx512, widenBf16Avx512, softcapAvx512};

//===----------------------------------------------------------------------===//
// Element conversion, masks, causal diagonal
//===----------------------------------------------------------------------===//

/// f32 from one stored element of an f32/f16/bf16 tensor.
template <DType D> float widen(const void *data, int64_t i) {
  if constexpr (D == DType::f32)
    return static_cast<const float *>(data)[i];
  else if constexpr (D == DType::f16)
    return halfToFloat(static_cast<const uint16_t *>(data)[i]);
  else
    return bf16ToFloat(static_cast<const uint16_t *>(data)[i]);
}

template <DType D> void narrow(float x, void *data, int64_t i) {
  if constexpr (D == DType::f32)
    static_cast<float *>(data)[i] = x;
  else if constexpr (D == DType::f16)
    static_cast<uint16_t *>(data)[i] = floatToHalf(x);
  else
    static_cast<uint16_t *>(data)[i] = floatToBf16(x);
}

/// Adds an additive mask (element type D) to, or applies a boolean mask
/// (D == i1) to, the score tile of queries [i0, i0 + queryCount) and keys
/// [j0, j0 + keyCount); `mask` points at the (batch, head) origin.
template <DType D>
void applyMask(const TileOps &ops, const void *mask, const int64_t *strides,
               int64_t i0, int64_t queryCount, int64_t j0, int64_t keyCount,
               float *scores) {
  const float negInf = -std::numeric_limits<float>::infinity();
  const int64_t queryStride = strides[2], keyStride = strides[3];
  if (queryStride == 0) {
    // One value per key (padding masks): a whole tile row at once.
    for (int64_t n = 0; n < keyCount; ++n) {
      int64_t at = (j0 + n) * keyStride;
      float *row = scores + n * kQueryBlock;
      if constexpr (D == DType::i1) {
        if (!static_cast<const uint8_t *>(mask)[at])
          std::fill(row, row + queryCount, negInf);
      } else {
        float add = widen<D>(mask, at);
        for (int64_t m = 0; m < queryCount; ++m)
          row[m] += add;
      }
    }
    return;
  }
  if constexpr (D == DType::i1)
    if (keyStride == 1)
      return ops.excludeMasked(static_cast<const uint8_t *>(mask) +
                                   i0 * queryStride + j0,
                               queryStride, queryCount, keyCount, scores);
  if constexpr (D == DType::f32)
    if (queryStride <= std::numeric_limits<int32_t>::max() / kQueryBlock)
      return ops.addMask(static_cast<const float *>(mask) + i0 * queryStride +
                             j0 * keyStride,
                         queryStride, keyStride, queryCount, keyCount, scores);
  // Read mask rows (query-major, as masks are laid out), write tile columns.
  for (int64_t m = 0; m < queryCount; ++m) {
    int64_t rowAt = (i0 + m) * queryStride + j0 * keyStride;
    for (int64_t n = 0; n < keyCount; ++n) {
      int64_t at = rowAt + n * keyStride;
      float &s = scores[n * kQueryBlock + m];
      if constexpr (D == DType::i1) {
        if (!static_cast<const uint8_t *>(mask)[at])
          s = negInf;
      } else {
        s += widen<D>(mask, at);
      }
    }
  }
}

/// Excludes the keys j > i + diagonal (causal, bottom-right aligned).
void maskAboveDiagonal(int64_t diagonal, int64_t i0, int64_t queryCount,
                       int64_t j0, int64_t keyCount, float *scores) {
  const float negInf = -std::numeric_limits<float>::infinity();
  for (int64_t n = 0; n < keyCount; ++n) {
    // Query i sees key j when i >= j - diagonal.
    int64_t firstSeeing = j0 + n - diagonal - i0;
    if (firstSeeing > 0)
      std::fill(scores + n * kQueryBlock,
                scores + n * kQueryBlock + std::min(firstSeeing, queryCount),
                negInf);
  }
}

//===----------------------------------------------------------------------===//
// The prepared kernel
//===----------------------------------------------------------------------===//

/// A 64-byte aligned float array, zero-initialized.
class AlignedFloats {
public:
  explicit AlignedFloats(int64_t count = 0) {
    size_t bytes = static_cast<size_t>((count * 4 + 63) / 64 * 64);
    if (bytes) {
      data_ = static_cast<float *>(std::aligned_alloc(64, bytes));
      if (!data_)
        throw std::bad_alloc(); // Executable::create reports it
      std::memset(data_, 0, bytes);
    }
  }
  AlignedFloats(AlignedFloats &&other) noexcept
      : data_(std::exchange(other.data_, nullptr)) {}
  AlignedFloats &operator=(AlignedFloats &&other) noexcept {
    std::swap(data_, other.data_);
    return *this;
  }
  ~AlignedFloats() { std::free(data_); }
  float *get() const { return data_; }

private:
  float *data_ = nullptr;
};

/// One thread's working set.
struct Scratch {
  AlignedFloats queryT, scores, acc, rowMax, rowSum, alpha;
  /// f32 copies of the key and value tiles (f16/bf16 operands only).
  AlignedFloats keys, values;
};

class FlashAttentionKernel : public PreparedKernel {
public:
  FlashAttentionKernel(const AttentionGeometry &g, float scale, bool causal,
                       bool causalInMask, float softcap, const TileOps &ops)
      : PreparedKernel("cpu:flash_attention"), g_(g), scale_(scale),
        softcap_(softcap), causal_(causal), ops_(ops) {
    // An additive mask that varies along the queries may mask the keys
    // above the diagonal whether or not the compiler could tell (the
    // causal_in_mask hint): T5's decoder bias and mask folded into one
    // initializer by the exporter, MPT's ALiBi bias plus causal mask. The
    // per-run bound decides, and costs one pass over the mask's upper
    // triangle; with one query nothing is above the diagonal.
    skipAbove_ = !causal && g.hasMask && g.maskType != DType::i1 &&
                 g.queries > 1 && (causalInMask || g.maskStrides[2] != 0);
    if (skipAbove_) {
      maskSlots_ =
          (g.maskStrides[0] ? g.batch : 1) * (g.maskStrides[1] ? g.heads : 1);
      aboveMax_.resize(maskSlots_ * g.queries);
      keyNormMax_.resize(g.batch * g.kvHeads);
    }
    accStride_ = (g.valueDim + 15) / 16 * 16;
    int64_t rows = kQueryBlock + kTilePadding;
    bool widened = g.dtype != DType::f32;
    for (int t = 0; t < numThreads(); ++t) {
      Scratch s;
      s.queryT = AlignedFloats(g.headDim * kQueryBlock);
      s.scores = AlignedFloats((kKeyBlock + kTilePadding) * kQueryBlock);
      s.acc = AlignedFloats(rows * accStride_);
      s.rowMax = AlignedFloats(rows);
      s.rowSum = AlignedFloats(rows);
      s.alpha = AlignedFloats(rows);
      if (widened) {
        s.keys = AlignedFloats(kKeyBlock * g.headDim);
        s.values = AlignedFloats(kKeyBlock * g.valueDim);
      }
      scratch_.push_back(std::move(s));
    }
  }

  Status run(const KernelContext &ctx) override {
    switch (g_.dtype) {
    case DType::f16:
      return runFor<DType::f16>(ctx);
    case DType::bf16:
      return runFor<DType::bf16>(ctx);
    default:
      return runFor<DType::f32>(ctx);
    }
  }

private:
  template <DType D> Status runFor(const KernelContext &ctx) {
    applyThreads();
    const int64_t group = g_.heads / g_.kvHeads;
    // One query per head (decoding) with grouped-query heads: the `group`
    // query heads of one key/value head form one block of rows, so K and V
    // are read once per group and the tiles use `group` lanes, not one.
    const bool groupHeads = g_.queries == 1 && group > 1;
    const int64_t rows = groupHeads ? group : g_.queries;
    const int64_t rowBlocks = (rows + kQueryBlock - 1) / kQueryBlock;
    const int64_t items =
        g_.batch * (groupHeads ? g_.kvHeads : g_.heads) * rowBlocks;
    const int threads =
        static_cast<int>(std::min<int64_t>(numThreads(), items));
    if (skipAbove_)
      boundSkippedScores<D>(ctx);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t item = 0; item < items; ++item) {
      // Within a head, the long (bottom) query blocks of causal first.
      int64_t block = rowBlocks - 1 - item % rowBlocks;
      Rows r;
      if (groupHeads) {
        int64_t kvHead = item / rowBlocks; // b * Hk + kv head
        r.batch = kvHead / g_.kvHeads;
        r.head = kvHead % g_.kvHeads * group + block * kQueryBlock;
        r.query = 0;
        r.count = std::min(kQueryBlock, group - block * kQueryBlock);
        r.rowsAreHeads = true;
      } else {
        int64_t head = item / rowBlocks; // b * H + h
        r.batch = head / g_.heads;
        r.head = head % g_.heads;
        r.query = block * kQueryBlock;
        r.count = std::min(kQueryBlock, g_.queries - r.query);
      }
      runBlock<D>(ctx, r, scratch_[omp_get_thread_num()]);
    }
    return Status::ok();
  }

  /// Fills aboveMax_ and keyNormMax_ (skipAbove_): what bounds the scores
  /// of the keys above the diagonal, s_ij <= |scale| |q_i| max_j |k_j| +
  /// max_{j > i + Sk - Sq} mask_ij. NaN anywhere makes the bound NaN, so
  /// that no key is skipped.
  template <DType D> void boundSkippedScores(const KernelContext &ctx) {
    const int64_t diagonal = g_.keys - g_.queries;
    const int64_t headSlots = g_.maskStrides[1] ? g_.heads : 1;
    const void *mask = ctx.inputs[3].data;
    const int64_t rows = maskSlots_ * g_.queries;
    const int threads = static_cast<int>(std::min<int64_t>(numThreads(), rows));
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t row = 0; row < rows; ++row) {
      int64_t slot = row / g_.queries, i = row % g_.queries;
      int64_t at = (slot / headSlots) * g_.maskStrides[0] +
                   (slot % headSlots) * g_.maskStrides[1] +
                   i * g_.maskStrides[2];
      float most = -std::numeric_limits<float>::infinity();
      bool nan = false;
      for (int64_t j = std::max<int64_t>(i + diagonal + 1, 0); j < g_.keys;
           ++j) {
        float x = widen<D>(mask, at + j * g_.maskStrides[3]);
        most = x > most ? x : most;
        nan |= x != x;
      }
      aboveMax_[row] = nan ? std::numeric_limits<float>::quiet_NaN() : most;
    }
    const int64_t heads = g_.batch * g_.kvHeads;
    const int headThreads = static_cast<int>(
        std::max<int64_t>(std::min<int64_t>(numThreads(), heads), 1));
#pragma omp parallel for schedule(static) num_threads(headThreads)
    for (int64_t head = 0; head < heads; ++head) {
      const void *k = static_cast<const char *>(ctx.inputs[1].data) +
                      head * g_.keys * g_.headDim * dtypeSize(D);
      float most = 0;
      for (int64_t j = 0; j < g_.keys; ++j) {
        float norm2 = 0;
        for (int64_t d = 0; d < g_.headDim; ++d) {
          float x = widen<D>(k, j * g_.headDim + d);
          norm2 += x * x;
        }
        // NaN (and inf) norms win, so that nothing is skipped.
        most = !(norm2 <= most) ? norm2 : most;
      }
      keyNormMax_[head] = std::sqrt(most);
    }
  }

  /// The rows of one work item: `count` queries from `query` of head
  /// `head`, or (rowsAreHeads, one query per head) query 0 of `count` heads
  /// from `head`, all of one key/value head.
  struct Rows {
    int64_t batch = 0, head = 0, query = 0, count = 0;
    bool rowsAreHeads = false;
  };

  /// Whether a row of `r` may give the keys above the diagonal a weight
  /// that is not 0 in f32: its best score so far does not exceed their
  /// bound (boundSkippedScores) by more than 110 (e^-110 is below f32's
  /// smallest subnormal). Also true for NaN, and for rows that saw no key.
  bool mustVisitAbove(const Rows &r, const float *queryT,
                      const Scratch &s) const {
    const int64_t slot =
        (g_.maskStrides[0] ? r.batch : 0) * (g_.maskStrides[1] ? g_.heads : 1) +
        (g_.maskStrides[1] ? r.head : 0);
    const float keyNorm =
        keyNormMax_[r.batch * g_.kvHeads + r.head / (g_.heads / g_.kvHeads)];
    for (int64_t m = 0; m < r.count; ++m) {
      float norm2 = 0;
      for (int64_t d = 0; d < g_.headDim; ++d)
        norm2 += queryT[d * kQueryBlock + m] * queryT[d * kQueryBlock + m];
      float bound = std::abs(scale_) * std::sqrt(norm2) * keyNorm +
                    aboveMax_[slot * g_.queries + r.query + m];
      if (!(s.rowMax.get()[m] - bound > 110.0f))
        return true;
    }
    return false;
  }

  /// Computes the output rows `r`.
  template <DType D>
  void runBlock(const KernelContext &ctx, const Rows &r, Scratch &s) {
    const int64_t D_ = g_.headDim, Dv = g_.valueDim;
    const int64_t b = r.batch, h = r.head, i0 = r.query;
    const int64_t queryCount = r.count;
    const int64_t queryVectors = (queryCount + 15) / 16;
    const int64_t kvHead = h / (g_.heads / g_.kvHeads);
    const int64_t elem = dtypeSize(D);
    // Consecutive rows of q and out are D (Dv) elements apart either way:
    // [B, H, Sq, D] with Sq == 1 when rows are heads.
    const char *q = static_cast<const char *>(ctx.inputs[0].data) +
                    ((b * g_.heads + h) * g_.queries + i0) * D_ * elem;
    const char *k = static_cast<const char *>(ctx.inputs[1].data) +
                    (b * g_.kvHeads + kvHead) * g_.keys * D_ * elem;
    const char *v = static_cast<const char *>(ctx.inputs[2].data) +
                    (b * g_.kvHeads + kvHead) * g_.keys * Dv * elem;
    char *out = static_cast<char *>(ctx.outputs[0].data) +
                ((b * g_.heads + h) * g_.queries + i0) * Dv * elem;

    // Q^T, zero past the block's queries. Reads q row by row (its rows are
    // contiguous), writes Q^T column by column.
    float *queryT = s.queryT.get();
    for (int64_t m = 0; m < queryCount; ++m)
      for (int64_t d = 0; d < D_; ++d)
        queryT[d * kQueryBlock + m] = widen<D>(q, m * D_ + d);
    if (queryCount < kQueryBlock)
      for (int64_t d = 0; d < D_; ++d)
        std::fill(queryT + d * kQueryBlock + queryCount,
                  queryT + (d + 1) * kQueryBlock, 0.0f);
    const int64_t rows = kQueryBlock + kTilePadding;
    std::fill(s.rowMax.get(), s.rowMax.get() + rows,
              -std::numeric_limits<float>::infinity());
    std::fill(s.rowSum.get(), s.rowSum.get() + rows, 0.0f);
    std::fill(s.acc.get(), s.acc.get() + rows * accStride_, 0.0f);

    // Causal: the last query of the block sees keys [0, keyEnd) (with one
    // query, every key: j <= 0 + Sk - 1).
    const int64_t diagonal = g_.keys - g_.queries;
    const int64_t lastQuery = r.rowsAreHeads ? 0 : i0 + queryCount - 1;
    const bool skipAbove = skipAbove_ && !r.rowsAreHeads;
    int64_t keyEnd =
        causal_ || skipAbove
            ? std::clamp<int64_t>(lastQuery + 1 + diagonal, 0, g_.keys)
            : g_.keys;
    // The mask at the item's origin, and its strides with the rows' stride
    // in place of the queries' (the heads' when rows are heads; the row
    // offset then comes in as i0 = 0).
    const void *mask = nullptr;
    int64_t maskStrides[4] = {g_.maskStrides[0], g_.maskStrides[1],
                              g_.maskStrides[2], g_.maskStrides[3]};
    if (r.rowsAreHeads)
      maskStrides[2] = g_.maskStrides[1];
    if (g_.hasMask)
      mask = static_cast<const char *>(ctx.inputs[3].data) +
             (b * g_.maskStrides[0] + h * g_.maskStrides[1]) *
                 dtypeSize(g_.maskType);

    // causal_in_mask: the rows see no key below the diagonal.
    if (skipAbove && keyEnd == 0)
      keyEnd = g_.keys;
    for (int64_t j0 = 0, keyCount = 0; j0 < keyEnd; j0 += keyCount) {
      keyCount = std::min(kKeyBlock, keyEnd - j0);
      const float *keys = reinterpret_cast<const float *>(k) + j0 * D_;
      const float *values = reinterpret_cast<const float *>(v) + j0 * Dv;
      if constexpr (D != DType::f32) {
        float *kt = s.keys.get(), *vt = s.values.get();
        auto widenRows = D == DType::f16 ? ops_.widenF16 : ops_.widenBf16;
        widenRows(reinterpret_cast<const uint16_t *>(k) + j0 * D_,
                  keyCount * D_, kt);
        widenRows(reinterpret_cast<const uint16_t *>(v) + j0 * Dv,
                  keyCount * Dv, vt);
        keys = kt;
        values = vt;
      }
      float *scores = s.scores.get();
      ops_.scores(queryT, queryVectors, D_, keys, D_, keyCount, scale_, scores);
      if (softcap_ > 0)
        ops_.softcap(scores, keyCount, queryVectors, softcap_);
      if (mask) {
        const int64_t maskRow = r.rowsAreHeads ? 0 : i0;
        if (g_.maskType == DType::i1)
          applyMask<DType::i1>(ops_, mask, maskStrides, maskRow, queryCount, j0,
                               keyCount, scores);
        else
          applyMask<D>(ops_, mask, maskStrides, maskRow, queryCount, j0,
                       keyCount, scores);
      }
      if (causal_ && !r.rowsAreHeads && j0 + keyCount - 1 > i0 + diagonal)
        maskAboveDiagonal(diagonal, i0, queryCount, j0, keyCount, scores);
      ops_.softmax(scores, keyCount, queryVectors, s.rowMax.get(),
                   s.rowSum.get(), s.alpha.get());
      ops_.values(scores, keyCount, queryCount, values, Dv, Dv, s.alpha.get(),
                  s.acc.get(), accStride_);
      // causal_in_mask: past the block's diagonal, go on only when some row
      // may not ignore the keys left.
      if (skipAbove && j0 + keyCount == keyEnd && keyEnd < g_.keys &&
          mustVisitAbove(r, queryT, s))
        keyEnd = g_.keys;
    }

    // out = o / l; rows with every key excluded (l == 0) are zeros.
    for (int64_t m = 0; m < queryCount; ++m) {
      float sum = s.rowSum.get()[m];
      float inverse = sum == 0 ? 0.0f : 1.0f / sum;
      const float *o = s.acc.get() + m * accStride_;
      for (int64_t e = 0; e < Dv; ++e)
        narrow<D>(o[e] * inverse, out, m * Dv + e);
    }
  }

  AttentionGeometry g_;
  float scale_;
  /// Soft-capping of the scaled scores; 0: none.
  float softcap_ = 0;
  bool causal_;
  /// causal_in_mask: skip the keys above the diagonal where that provably
  /// changes nothing. Per run: the largest mask value above the diagonal of
  /// each query row of each mask slot (distinct (batch, head) of the mask),
  /// and the largest |k_j| of each (batch, kv head).
  bool skipAbove_ = false;
  int64_t maskSlots_ = 0;
  std::vector<float> aboveMax_, keyNormMax_;
  TileOps ops_;
  int64_t accStride_ = 0;
  std::vector<Scratch> scratch_;
};

std::unique_ptr<PreparedKernel> prepareAttention(const PrepareContext &pc) {
  if (!simpleArity(pc, 3, 4))
    return nullptr;
  std::vector<DType> types;
  std::vector<std::vector<int64_t>> shapes;
  for (const BufferDesc &in : pc.inputs) {
    types.push_back(in.dtype);
    shapes.push_back(in.shape);
  }
  AttentionGeometry g;
  if (!reference::checkAttention(types, shapes, pc.outputs[0].dtype,
                                 pc.outputs[0].shape, g))
    return nullptr; // the reference kernel reports the error
  if (g.dtype != DType::f32 && g.dtype != DType::f16 && g.dtype != DType::bf16)
    return nullptr; // f64 runs on the reference kernel
  std::optional<double> scale =
      attrFloat(pc, "scale", 1.0 / std::sqrt(double(g.headDim)));
  std::optional<bool> causal = attrBool(pc, "causal", false);
  if (!scale || !causal)
    return nullptr;
  const TileOps &ops =
      hasAvx512() && !forcePortable.load() ? kAvx512Ops : kPortableOps;
  std::optional<bool> causalInMask = attrBool(pc, "causal_in_mask", false);
  std::optional<double> softcap = attrFloat(pc, "softcap", 0.0);
  if (!causalInMask || !softcap)
    return nullptr;
  return std::make_unique<FlashAttentionKernel>(
      g, static_cast<float>(*scale), *causal, *causalInMask,
      static_cast<float>(*softcap), ops);
}

} // namespace

void setAttentionPortableForTesting(bool portable) {
  forcePortable.store(portable);
}

void registerAttentionKernels(Backend &b) {
  b.addFactory("attention", prepareAttention);
}

} // namespace kiln::cpu
