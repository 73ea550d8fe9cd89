//===- Half.h - f16 and bf16 conversions (internal) -------------*- C++ -*-===//
//
// Bit-exact conversions between f32 and the two 16-bit float formats, rounding
// to nearest even as the contract requires for casts. NaN stays NaN (quiet).
// f64 values are converted through f32 (double rounding is accepted).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_HALF_H
#define KILN_RUNTIME_HALF_H

#include <cmath>
#include <cstdint>
#include <cstring>

namespace kiln {

inline uint32_t floatBits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return x;
}
inline float bitsToFloat(uint32_t x) {
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

/// IEEE binary16 from f32, round to nearest even.
inline uint16_t floatToHalf(float f) {
  uint32_t x = floatBits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) // inf or NaN
    return static_cast<uint16_t>(
        sign | 0x7c00u |
        (absx > 0x7f800000u ? 0x200u | ((absx >> 13) & 0x3ffu) : 0u));
  if (absx >= 0x477ff000u) // >= 65520 rounds to inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (absx < 0x38800000u) { // below 2^-14: subnormal half (or zero)
    // Scaling by 2^24 is exact; nearbyint rounds to nearest even.
    float scaled = bitsToFloat(absx) * 16777216.0f;
    return static_cast<uint16_t>(sign |
                                 static_cast<uint32_t>(std::nearbyint(scaled)));
  }
  uint32_t mant = absx & 0x7fffffu;
  uint32_t exp = (absx >> 23) - 127 + 15;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))
    ++h; // a carry into the exponent is the correct rounding
  return static_cast<uint16_t>(sign | h);
}

/// f32 from IEEE binary16 (exact).
inline float halfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    float v = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 31)
    return bitsToFloat(sign | 0x7f800000u | (mant << 13));
  return bitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

/// bfloat16 from f32, round to nearest even.
inline uint16_t floatToBf16(float f) {
  uint32_t x = floatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) // NaN: keep it quiet
    return static_cast<uint16_t>((x >> 16) | 0x40u);
  uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

/// f32 from bfloat16 (exact).
inline float bf16ToFloat(uint16_t b) {
  return bitsToFloat(static_cast<uint32_t>(b) << 16);
}

/// Float to integer as kiln.cast converts: truncate toward zero; NaN becomes
/// 0 and values beyond int64 clamp, so no input reaches undefined behaviour.
/// Narrower integer types then wrap (static_cast from int64).
inline int64_t truncateToInt64(double v) {
  if (std::isnan(v))
    return 0;
  double t = std::trunc(v);
  if (t >= 9.2233720368547758e18)
    return INT64_MAX;
  if (t <= -9.2233720368547758e18)
    return INT64_MIN;
  return static_cast<int64_t>(t);
}

} // namespace kiln

#endif // KILN_RUNTIME_HALF_H
