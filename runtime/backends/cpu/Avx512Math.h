//===- Avx512Math.h - Vector exp2 and tanh for the cpu backend --*- C++ -*-===//
//
// Vector math shared by the own kernels (flash attention's online softmax
// and soft-capping, SiLU after oneDNN primitives). Functions carry the
// AVX-512 target attribute; callers choose them at run time with
// hasAvx512() and keep a portable path.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_BACKENDS_CPU_AVX512MATH_H
#define KILN_RUNTIME_BACKENDS_CPU_AVX512MATH_H

#include <immintrin.h>

#include <cstdint>

namespace kiln::cpu {

#define KILN_AVX512                                                            \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))

constexpr float kLog2e = 1.44269504088896341f;
/// exp2 arguments are clamped below at this value, so exp2(-inf) is 0 (and
/// NaN stays NaN).
constexpr float kExp2Floor = -200.0f;

/// 2^x for x >= kExp2Floor (and NaN): x = n + f with |f| <= 1/2, 2^f by the
/// Cephes exp2f polynomial (relative error <= 2e-7), scaled by 2^n. For
/// x = +inf, f is NaN and scalef(NaN, +inf) gives +inf, as exp2 does.
KILN_AVX512 inline __m512 exp2Avx512(__m512 x) {
  // max(floor, x) returns x when x is NaN.
  x = _mm512_max_ps(_mm512_set1_ps(kExp2Floor), x);
  __m512 n =
      _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(1.535336188319500e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.339887440266574e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618437357674640e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550332471162809e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402264791363012e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931472028550421e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

/// tanh(x) within ~2e-7 relative: the odd Taylor series to x^15 where
/// |x| < 0.55 (truncation <= 5e-8 there), else sign(x) (1 - e) / (1 + e)
/// with e = exp(-2|x|) <= 0.33, so that 1 - e does not cancel. NaN stays
/// NaN, +-inf gives +-1.
KILN_AVX512 inline __m512 tanhAvx512(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  __m512 ax = _mm512_abs_ps(x);
  __m512 e = exp2Avx512(_mm512_mul_ps(ax, _mm512_set1_ps(-2.0f * kLog2e)));
  __m512 large = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
  // Copy x's sign onto `large`.
  const __m512i signBit = _mm512_set1_epi32(int32_t(0x80000000u));
  large = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_castps_si512(large),
                      _mm512_and_si512(_mm512_castps_si512(x), signBit)));
  __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(-929569.0f / 638512875.0f);
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(21844.0f / 6081075.0f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1382.0f / 155925.0f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(62.0f / 2835.0f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-17.0f / 315.0f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.0f / 15.0f));
  p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.0f / 3.0f));
  __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, x2), x, x);
  return _mm512_mask_blend_ps(
      _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.55f), _CMP_LT_OQ), large, small);
}

} // namespace kiln::cpu

#endif // KILN_RUNTIME_BACKENDS_CPU_AVX512MATH_H
