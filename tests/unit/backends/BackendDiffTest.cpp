//===- BackendDiffTest.cpp - Every op on every backend vs the reference ---===//
//
// One table of single-op Programs (op, operands with dtype/shape/value range,
// attributes, per-op tolerance) run on each optimized backend and on the
// reference backend, compared element by element. A backend joins by adding
// its name to kBackends. Operands marked as weights are bound as params, so
// the prepacked-weight paths (matmul B, conv weights) are exercised too.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"
#include "backends/Backend.h"
#include "backends/cpu/Cpu.h"

#include <cmath>
#include <limits>
#include <optional>

using namespace kiln;
using namespace kiln::test;
using nlohmann::json;

namespace {

/// Backends checked against the reference backend.
const std::vector<std::string> kBackends = {"cpu"};

struct Operand {
  DType dtype;
  std::vector<int64_t> shape;
  double lo = -2, hi = 2;
  bool weight = false; // bound as a param instead of an input
};

struct Tolerance {
  double atol, rtol;
};

struct OpCase {
  std::string name; // unique, used as the test name
  std::string op;
  std::vector<Operand> operands;
  json attrs;
  DType outType;
  std::vector<int64_t> outShape;
  Tolerance tol;
  /// Exact values (integer indices, conditions): operand index -> values.
  std::map<size_t, std::vector<double>> fixed = {};
};

Operand f32(std::vector<int64_t> s, double lo = -2, double hi = 2) {
  return {DType::f32, std::move(s), lo, hi};
}
Operand of(DType t, std::vector<int64_t> s, double lo = -2, double hi = 2) {
  return {t, std::move(s), lo, hi};
}
Operand weight(Operand o) {
  o.weight = true;
  return o;
}

constexpr Tolerance kExact{0, 0};
constexpr Tolerance kF32{1e-6, 1e-5};
constexpr Tolerance kBf16{1e-2, 1e-2};
constexpr Tolerance kF16{1e-3, 1e-3};

Tolerance forType(DType t) {
  switch (t) {
  case DType::f32:
    return kF32;
  case DType::f64:
    return {1e-12, 1e-12};
  case DType::bf16:
    return kBf16;
  case DType::f16:
    return kF16;
  default:
    return kExact;
  }
}

/// matmul tolerance: f32 rel 1e-5*sqrt(K) (different summation orders).
Tolerance matmulTol(DType t, int64_t K) {
  double s = std::sqrt(double(K));
  return t == DType::bf16 ? Tolerance{2e-2 * s, 1e-2}
                          : Tolerance{1e-5 * s, 1e-5 * s};
}

std::vector<OpCase> buildCases() {
  std::vector<OpCase> c;
  // Unary.
  for (const char *op : {"neg", "abs", "relu", "exp", "tanh", "sigmoid", "silu",
                         "erf", "gelu"}) {
    c.push_back({std::string(op) + "_f32",
                 op,
                 {f32({2, 3, 17})},
                 json::object(),
                 DType::f32,
                 {2, 3, 17},
                 kF32});
    c.push_back({std::string(op) + "_rank0",
                 op,
                 {f32({})},
                 json::object(),
                 DType::f32,
                 {},
                 kF32});
    c.push_back({std::string(op) + "_bf16",
                 op,
                 {of(DType::bf16, {33})},
                 json::object(),
                 DType::bf16,
                 {33},
                 kBf16});
    c.push_back({std::string(op) + "_f16",
                 op,
                 {of(DType::f16, {9})},
                 json::object(),
                 DType::f16,
                 {9},
                 kF16});
    c.push_back({std::string(op) + "_f64",
                 op,
                 {of(DType::f64, {9})},
                 json::object(),
                 DType::f64,
                 {9},
                 forType(DType::f64)});
  }
  for (const char *op : {"log", "sqrt", "rsqrt", "reciprocal"}) {
    Tolerance tol = kF32;
    c.push_back({std::string(op) + "_f32",
                 op,
                 {f32({4, 33}, 0.1, 4)},
                 json::object(),
                 DType::f32,
                 {4, 33},
                 tol});
    c.push_back({std::string(op) + "_bf16",
                 op,
                 {of(DType::bf16, {40}, 0.1, 4)},
                 json::object(),
                 DType::bf16,
                 {40},
                 kBf16});
  }
  c.push_back({"gelu_tanh_f32",
               "gelu",
               {f32({64})},
               {{"approximate", "tanh"}},
               DType::f32,
               {64},
               kF32});
  c.push_back({"gelu_tanh_bf16",
               "gelu",
               {of(DType::bf16, {64})},
               {{"approximate", "tanh"}},
               DType::bf16,
               {64},
               kBf16});
  for (const char *op : {"neg", "abs", "relu"})
    for (DType t : {DType::i64, DType::i32, DType::i8})
      c.push_back({std::string(op) + "_" + dtypeName(t),
                   op,
                   {of(t, {3, 5}, -9, 9)},
                   json::object(),
                   t,
                   {3, 5},
                   kExact});
  c.push_back({"relu_empty",
               "relu",
               {f32({0, 3})},
               json::object(),
               DType::f32,
               {0, 3},
               kExact});

  // NaN and infinities through relu, max and min: the cpu kernels (oneDNN
  // eltwise/binary or own) must treat them as the reference does.
  {
    const double nan = std::nan(""), inf = INFINITY;
    std::vector<double> a = {nan, -1, 2, -inf, inf, 0, nan, 3};
    std::vector<double> b = {1, nan, nan, 0, -inf, nan, nan, -2};
    c.push_back({"relu_f32_nan_inf",
                 "relu",
                 {f32({8})},
                 json::object(),
                 DType::f32,
                 {8},
                 kExact,
                 {{0, a}}});
    // The own AVX-512 activation passes (silu, sigmoid, tanh, tanh-GELU):
    // NaN, infinities, saturating and overflowing (x^3 in tanh-GELU) inputs.
    std::vector<double> wide = {nan,   -inf, inf, 0,   -1,   2,     -100, 100,
                                -1e20, 1e20, 30,  -30, 0.25, -3e13, 7,    -7};
    for (const char *op : {"silu", "sigmoid", "tanh", "gelu"})
      c.push_back({std::string(op) + "_f32_nan_inf",
                   op,
                   {f32({16})},
                   std::string(op) == "gelu" ? json{{"approximate", "tanh"}}
                                             : json::object(),
                   DType::f32,
                   {16},
                   kF32,
                   {{0, wide}}});
    for (const char *op : {"max", "min"})
      c.push_back({std::string(op) + "_f32_nan_inf",
                   op,
                   {f32({8}), f32({8})},
                   json::object(),
                   DType::f32,
                   {8},
                   kExact,
                   {{0, a}, {1, b}}});
  }

  // Binary with broadcasting.
  struct Shapes {
    const char *tag;
    std::vector<int64_t> a, b, out;
  };
  std::vector<Shapes> shapes = {
      {"same", {2, 3, 4}, {2, 3, 4}, {2, 3, 4}},
      {"bcast_b", {2, 3, 4}, {4}, {2, 3, 4}},
      {"bcast_a", {4}, {2, 3, 4}, {2, 3, 4}},
      {"bcast_both", {2, 1, 4}, {1, 3, 1}, {2, 3, 4}},
      {"rank0", {}, {3}, {3}},
      // Dims that both operands walk as one are
      // merged into long rows.
      {"bcast_leading", {2, 3, 4, 5}, {1, 3, 4, 5}, {2, 3, 4, 5}},
      {"bcast_channel", {2, 3, 4, 5}, {3, 1, 1}, {2, 3, 4, 5}},
      {"size1", {1, 1}, {1, 1}, {1, 1}}};
  for (const char *op : {"add", "sub", "mul", "div", "max", "min", "pow"})
    for (const Shapes &s : shapes) {
      double lo = std::string(op) == "pow" ? 0.5 : -2;
      c.push_back({std::string(op) + "_f32_" + s.tag,
                   op,
                   {f32(s.a, lo, 2), f32(s.b, 0.5, 2)},
                   json::object(),
                   DType::f32,
                   s.out,
                   kF32});
    }
  for (const char *op : {"add", "sub", "mul", "div", "max", "min"}) {
    c.push_back({std::string(op) + "_bf16",
                 op,
                 {of(DType::bf16, {4, 8}), of(DType::bf16, {8}, 0.5, 2)},
                 json::object(),
                 DType::bf16,
                 {4, 8},
                 kBf16});
    c.push_back({std::string(op) + "_f16",
                 op,
                 {of(DType::f16, {4, 8}), of(DType::f16, {8}, 0.5, 2)},
                 json::object(),
                 DType::f16,
                 {4, 8},
                 kF16});
    for (DType t : {DType::i64, DType::i32, DType::u8})
      c.push_back({std::string(op) + "_" + dtypeName(t),
                   op,
                   {of(t, {3, 4}, 0, 50), of(t, {4}, 1, 7)},
                   json::object(),
                   t,
                   {3, 4},
                   kExact});
  }
  for (const char *p : {"eq", "ne", "lt", "le", "gt", "ge"}) {
    c.push_back({std::string("compare_") + p + "_f32",
                 "compare",
                 {f32({3, 4}), f32({4})},
                 {{"predicate", p}},
                 DType::i1,
                 {3, 4},
                 kExact});
    c.push_back(
        {std::string("compare_") + p + "_i64",
         "compare",
         {of(DType::i64, {2, 1, 3}, -2, 2), of(DType::i64, {4, 1}, -2, 2)},
         {{"predicate", p}},
         DType::i1,
         {2, 4, 3},
         kExact});
  }
  c.push_back({"compare_eq_i1",
               "compare",
               {of(DType::i1, {5}, 0, 2), of(DType::i1, {5}, 0, 2)},
               {{"predicate", "eq"}},
               DType::i1,
               {5},
               kExact});
  c.push_back({"where_f32",
               "where",
               {of(DType::i1, {2, 1, 4}, 0, 2), f32({3, 4}), f32({})},
               json::object(),
               DType::f32,
               {2, 3, 4},
               kExact});
  c.push_back({"where_i64",
               "where",
               {of(DType::i1, {6}, 0, 2), of(DType::i64, {6}, -9, 9),
                of(DType::i64, {1}, -9, 9)},
               json::object(),
               DType::i64,
               {6},
               kExact});

  // Casts.
  struct CastCase {
    DType from, to;
    double lo, hi;
    Tolerance tol;
  };
  for (CastCase k :
       std::vector<CastCase>{{DType::f32, DType::bf16, -3, 3, kExact},
                             {DType::f32, DType::f16, -3, 3, kExact},
                             {DType::bf16, DType::f32, -3, 3, kExact},
                             {DType::f32, DType::i32, -100, 100, kExact},
                             {DType::f32, DType::i1, -1, 1, kExact},
                             {DType::i1, DType::f32, 0, 2, kExact},
                             {DType::i64, DType::f32, -1000, 1000, kExact},
                             {DType::i32, DType::i8, -1000, 1000, kExact},
                             {DType::f32, DType::f64, -3, 3, kExact}})
    c.push_back(
        {std::string("cast_") + dtypeName(k.from) + "_" + dtypeName(k.to),
         "cast",
         {of(k.from, {5, 7}, k.lo, k.hi)},
         {{"dtype", dtypeName(k.to)}},
         k.to,
         {5, 7},
         k.tol});

  // matmul.
  struct Mm {
    const char *tag;
    std::vector<int64_t> a, b, out;
    bool ta, tb, bWeight;
    DType t;
    int64_t K;
  };
  for (
      const Mm &m : std::vector<Mm>{
          {"f32", {4, 8}, {8, 5}, {4, 5}, false, false, false, DType::f32, 8},
          {"f32_ta", {8, 4}, {8, 5}, {4, 5}, true, false, false, DType::f32, 8},
          {"f32_tb", {4, 8}, {5, 8}, {4, 5}, false, true, false, DType::f32, 8},
          {"f32_ta_tb",
           {8, 4},
           {5, 8},
           {4, 5},
           true,
           true,
           false,
           DType::f32,
           8},
          {"f32_batch_2d_b",
           {2, 3, 4, 8},
           {8, 5},
           {2, 3, 4, 5},
           false,
           false,
           false,
           DType::f32,
           8},
          {"f32_batch_bcast",
           {2, 1, 4, 8},
           {3, 8, 5},
           {2, 3, 4, 5},
           false,
           false,
           false,
           DType::f32,
           8},
          {"f32_batch_tb",
           {3, 4, 8},
           {3, 5, 8},
           {3, 4, 5},
           false,
           true,
           false,
           DType::f32,
           8},
          {"f32_batch_ta",
           {3, 8, 4},
           {8, 5},
           {3, 4, 5},
           true,
           false,
           false,
           DType::f32,
           8},
          {"f32_k1",
           {6, 1},
           {1, 7},
           {6, 7},
           false,
           false,
           false,
           DType::f32,
           1},
          {"f32_weight",
           {16, 64},
           {64, 32},
           {16, 32},
           false,
           false,
           true,
           DType::f32,
           64},
          {"f32_weight_tb",
           {2, 16, 64},
           {32, 64},
           {2, 16, 32},
           false,
           true,
           true,
           DType::f32,
           64},
          {"bf16",
           {16, 32},
           {32, 8},
           {16, 8},
           false,
           false,
           false,
           DType::bf16,
           32},
          {"bf16_weight",
           {16, 32},
           {32, 8},
           {16, 8},
           false,
           false,
           true,
           DType::bf16,
           32},
          {"f16", {4, 8}, {8, 5}, {4, 5}, false, false, false, DType::f16, 8},
          {"f64", {4, 8}, {8, 5}, {4, 5}, false, false, false, DType::f64, 8},
          {"i64", {3, 4}, {4, 2}, {3, 2}, false, false, false, DType::i64, 4},
          {"i32_batch",
           {2, 3, 4},
           {2, 4, 2},
           {2, 3, 2},
           false,
           false,
           false,
           DType::i32,
           4}}) {
    Operand b = of(m.t, m.b, -2, 2);
    b.weight = m.bWeight;
    bool isInt = m.t == DType::i64 || m.t == DType::i32;
    c.push_back({std::string("matmul_") + m.tag,
                 "matmul",
                 {of(m.t, m.a, isInt ? -5 : -2, isInt ? 5 : 2),
                  isInt ? of(m.t, m.b, -5, 5) : b},
                 {{"transpose_a", m.ta}, {"transpose_b", m.tb}},
                 m.t,
                 m.out,
                 isInt               ? kExact
                 : m.t == DType::f16 ? kF16
                 : m.t == DType::f64 ? forType(DType::f64)
                                     : matmulTol(m.t, m.K)});
  }

  // conv2d.
  struct Conv {
    const char *tag;
    std::vector<int64_t> x, w, out;
    json attrs;
    bool bias, wWeight;
    DType t;
  };
  json plain = json::object();
  for (const Conv &k :
       std::vector<Conv>{{"f32",
                          {1, 3, 8, 8},
                          {4, 3, 3, 3},
                          {1, 4, 6, 6},
                          plain,
                          false,
                          false,
                          DType::f32},
                         {"f32_bias_pad",
                          {2, 3, 8, 8},
                          {4, 3, 3, 3},
                          {2, 4, 8, 8},
                          {{"pads", {1, 1, 1, 1}}},
                          true,
                          false,
                          DType::f32},
                         {"f32_stride_asym_pad",
                          {1, 3, 9, 7},
                          {5, 3, 3, 2},
                          {1, 5, 4, 4},
                          {{"strides", {2, 2}}, {"pads", {1, 0, 0, 1}}},
                          true,
                          true,
                          DType::f32},
                         {"f32_groups",
                          {1, 4, 7, 7},
                          {6, 2, 3, 3},
                          {1, 6, 5, 5},
                          {{"groups", 2}},
                          true,
                          true,
                          DType::f32},
                         {"f32_depthwise",
                          {1, 4, 6, 6},
                          {4, 1, 3, 3},
                          {1, 4, 6, 6},
                          {{"groups", 4}, {"pads", {1, 1, 1, 1}}},
                          false,
                          true,
                          DType::f32},
                         {"f32_dilated",
                          {1, 2, 9, 9},
                          {3, 2, 3, 3},
                          {1, 3, 5, 5},
                          {{"dilations", {2, 2}}},
                          true,
                          false,
                          DType::f32},
                         // 3x3, stride 1, 256 outputs, 16+ channels,
                         // bound weights: oneDNN's Winograd kernel.
                         {"f32_winograd",
                          {1, 16, 16, 16},
                          {24, 16, 3, 3},
                          {1, 24, 16, 16},
                          {{"pads", {1, 1, 1, 1}}},
                          true,
                          true,
                          DType::f32},
                         {"f32_1x1",
                          {1, 16, 4, 4},
                          {8, 16, 1, 1},
                          {1, 8, 4, 4},
                          plain,
                          false,
                          true,
                          DType::f32},
                         {"bf16",
                          {1, 4, 6, 6},
                          {8, 4, 3, 3},
                          {1, 8, 4, 4},
                          plain,
                          false,
                          true,
                          DType::bf16},
                         {"f64",
                          {1, 2, 5, 5},
                          {2, 2, 3, 3},
                          {1, 2, 3, 3},
                          plain,
                          true,
                          false,
                          DType::f64}}) {
    Operand w = of(k.t, k.w);
    w.weight = k.wWeight;
    std::vector<Operand> ops = {of(k.t, k.x), w};
    if (k.bias)
      ops.push_back(of(k.t, {k.w[0]}));
    int64_t K = k.w[1] * k.w[2] * k.w[3];
    c.push_back(
        {std::string("conv2d_") + k.tag, "conv2d", ops, k.attrs, k.t, k.out,
         k.t == DType::f64    ? forType(k.t)
         : k.t == DType::bf16 ? Tolerance{2e-2 * std::sqrt(double(K)), 1e-2}
                              : Tolerance{1e-5 * std::sqrt(double(K)), 1e-5}});
  }

  // Pools.
  struct Pool {
    const char *tag;
    std::vector<int64_t> x, out;
    json attrs;
  };
  for (const Pool &p : std::vector<Pool>{
           {"k2",
            {1, 2, 6, 6},
            {1, 2, 3, 3},
            {{"kernel", {2, 2}}, {"strides", {2, 2}}}},
           {"k3_s2_pad",
            {1, 2, 7, 7},
            {1, 2, 4, 4},
            {{"kernel", {3, 3}}, {"strides", {2, 2}}, {"pads", {1, 1, 1, 1}}}},
           {"ceil",
            {1, 2, 6, 6},
            {1, 2, 3, 3},
            {{"kernel", {3, 3}}, {"strides", {2, 2}}, {"ceil_mode", true}}},
           {"ceil_pad",
            {2, 3, 7, 8},
            {2, 3, 4, 5},
            {{"kernel", {3, 2}},
             {"strides", {2, 2}},
             {"pads", {1, 1, 0, 0}},
             {"ceil_mode", true}}}}) {
    c.push_back({std::string("max_pool2d_") + p.tag,
                 "max_pool2d",
                 {f32(p.x)},
                 p.attrs,
                 DType::f32,
                 p.out,
                 kExact});
    c.push_back({std::string("avg_pool2d_") + p.tag,
                 "avg_pool2d",
                 {f32(p.x)},
                 p.attrs,
                 DType::f32,
                 p.out,
                 kF32});
    json inc = p.attrs;
    inc["count_include_pad"] = true;
    c.push_back({std::string("avg_pool2d_incpad_") + p.tag,
                 "avg_pool2d",
                 {f32(p.x)},
                 inc,
                 DType::f32,
                 p.out,
                 kF32});
  }
  c.push_back({"max_pool2d_bf16",
               "max_pool2d",
               {of(DType::bf16, {1, 2, 6, 6})},
               {{"kernel", {2, 2}}},
               DType::bf16,
               {1, 2, 5, 5},
               kExact});
  c.push_back({"max_pool2d_i32",
               "max_pool2d",
               {of(DType::i32, {1, 1, 4, 4}, -9, 9)},
               {{"kernel", {2, 2}}},
               DType::i32,
               {1, 1, 3, 3},
               kExact});
  c.push_back({"global_avg_pool_f32",
               "global_avg_pool",
               {f32({2, 3, 5, 5})},
               json::object(),
               DType::f32,
               {2, 3, 1, 1},
               kF32});
  c.push_back({"global_avg_pool_bf16",
               "global_avg_pool",
               {of(DType::bf16, {1, 3, 4, 4})},
               json::object(),
               DType::bf16,
               {1, 3, 1, 1},
               kBf16});

  // Normalizations and softmax.
  for (DType t : {DType::f32, DType::bf16}) {
    std::string s = dtypeName(t);
    Tolerance tol = t == DType::f32 ? Tolerance{1e-5, 1e-5} : kBf16;
    c.push_back({"batch_norm_" + s,
                 "batch_norm",
                 {of(t, {2, 3, 4, 4}), of(t, {3}), of(t, {3}), of(t, {3}),
                  of(t, {3}, 0.5, 2)},
                 {{"epsilon", 1e-5}},
                 t,
                 {2, 3, 4, 4},
                 tol});
    c.push_back({"batch_norm_rank2_" + s,
                 "batch_norm",
                 {of(t, {4, 3}), of(t, {3}), of(t, {3}), of(t, {3}),
                  of(t, {3}, 0.5, 2)},
                 {{"epsilon", 1e-5}},
                 t,
                 {4, 3},
                 tol});
    c.push_back({"layer_norm_" + s,
                 "layer_norm",
                 {of(t, {2, 5, 32}), weight(of(t, {32})), weight(of(t, {32}))},
                 {{"axis", -1}, {"epsilon", 1e-5}},
                 t,
                 {2, 5, 32},
                 t == DType::f32 ? Tolerance{1e-4, 1e-4} : tol});
    c.push_back({"layer_norm_axis1_" + s,
                 "layer_norm",
                 {of(t, {2, 3, 4}), of(t, {3, 4}), of(t, {3, 4})},
                 {{"axis", 1}, {"epsilon", 1e-5}},
                 t,
                 {2, 3, 4},
                 t == DType::f32 ? Tolerance{1e-4, 1e-4} : tol});
    c.push_back({"rms_norm_" + s,
                 "rms_norm",
                 {of(t, {3, 16}), of(t, {16})},
                 {{"axis", -1}, {"epsilon", 1e-6}},
                 t,
                 {3, 16},
                 t == DType::f32 ? Tolerance{1e-5, 1e-5} : tol});
    for (const char *op : {"softmax", "log_softmax"}) {
      c.push_back({std::string(op) + "_" + s,
                   op,
                   {of(t, {3, 4, 10}, -5, 5)},
                   {{"axis", -1}},
                   t,
                   {3, 4, 10},
                   tol});
      c.push_back({std::string(op) + "_axis0_" + s,
                   op,
                   {of(t, {5, 3}, -5, 5)},
                   {{"axis", 0}},
                   t,
                   {5, 3},
                   tol});
    }
  }
  c.push_back({"softmax_f64",
               "softmax",
               {of(DType::f64, {3, 7})},
               {{"axis", -1}},
               DType::f64,
               {3, 7},
               forType(DType::f64)});

  // Reductions.
  for (const char *op :
       {"reduce_sum", "reduce_mean", "reduce_max", "reduce_min"}) {
    std::string s = op;
    c.push_back({s + "_axis1",
                 op,
                 {f32({3, 40, 5})},
                 {{"axes", {1}}},
                 DType::f32,
                 {3, 5},
                 {1e-5, 1e-5}});
    c.push_back({s + "_all",
                 op,
                 {f32({6, 7})},
                 {{"axes", json::array()}},
                 DType::f32,
                 {},
                 {1e-5, 1e-5}});
    c.push_back({s + "_keepdims_neg",
                 op,
                 {f32({2, 3, 4})},
                 {{"axes", {-1, 0}}, {"keepdims", true}},
                 DType::f32,
                 {1, 3, 1},
                 {1e-5, 1e-5}});
    c.push_back({s + "_empty",
                 op,
                 {f32({0, 3})},
                 {{"axes", {0}}},
                 DType::f32,
                 {3},
                 kExact});
    if (s != "reduce_mean")
      c.push_back({s + "_i64",
                   op,
                   {of(DType::i64, {4, 5}, -50, 50)},
                   {{"axes", {1}}},
                   DType::i64,
                   {4},
                   kExact});
  }

  // Shape ops.
  c.push_back({"reshape_f32",
               "reshape",
               {f32({2, 6})},
               {{"shape", {3, 4}}},
               DType::f32,
               {3, 4},
               kExact});
  c.push_back({"copy_i64",
               "copy",
               {of(DType::i64, {7}, -9, 9)},
               json::object(),
               DType::i64,
               {7},
               kExact});
  for (DType t : {DType::f32, DType::bf16, DType::i64, DType::i1, DType::f64})
    c.push_back({std::string("transpose_") + dtypeName(t),
                 "transpose",
                 {of(t, {2, 3, 4}, 0, 2)},
                 {{"perm", {2, 0, 1}}},
                 t,
                 {4, 2, 3},
                 kExact});
  // The last two source dims stay together: copied as rows of 20.
  c.push_back({"transpose_channels_last",
               "transpose",
               {f32({2, 3, 4, 5})},
               {{"perm", {0, 2, 3, 1}}},
               DType::f32,
               {2, 4, 5, 3},
               kExact});
  c.push_back({"transpose_rank0",
               "transpose",
               {f32({})},
               {{"perm", json::array()}},
               DType::f32,
               {},
               kExact});
  c.push_back({"concat_f32",
               "concat",
               {f32({2, 3}), f32({2, 1}), f32({2, 4})},
               {{"axis", 1}},
               DType::f32,
               {2, 8},
               kExact});
  c.push_back({"concat_i64_neg_axis_empty",
               "concat",
               {of(DType::i64, {3, 2}, -9, 9), of(DType::i64, {3, 0}),
                of(DType::i64, {3, 1}, -9, 9)},
               {{"axis", -1}},
               DType::i64,
               {3, 3},
               kExact});
  // Many rows (copied row by row across the threads) and one image of
  // 300 KB (copied in 64 KB pieces across the threads).
  c.push_back({"concat_many_rows",
               "concat",
               {f32({300, 3}), f32({300, 5})},
               {{"axis", 1}},
               DType::f32,
               {300, 8},
               kExact});
  c.push_back({"concat_large_pieces",
               "concat",
               {f32({1, 48, 40, 40}), f32({1, 3, 40, 40})},
               {{"axis", 1}},
               DType::f32,
               {1, 51, 40, 40},
               kExact});
  c.push_back({"concat_axis0_bf16",
               "concat",
               {of(DType::bf16, {1, 4}), of(DType::bf16, {2, 4})},
               {{"axis", 0}},
               DType::bf16,
               {3, 4},
               kExact});
  c.push_back({"slice_step2",
               "slice",
               {f32({5, 6})},
               {{"starts", {1, 0}}, {"ends", {5, 6}}, {"steps", {2, 3}}},
               DType::f32,
               {2, 2},
               kExact});
  c.push_back({"slice_negative_step",
               "slice",
               {of(DType::i64, {4, 5}, -9, 9)},
               {{"starts", {3, 4}}, {"ends", {-1, 0}}, {"steps", {-1, -2}}},
               DType::i64,
               {4, 2},
               kExact});
  // A channel slice of one image is one contiguous run (38400 floats,
  // split across the threads); of two images, one run per image; a slice
  // of the last dim merges nothing.
  c.push_back({"slice_channels_one_image",
               "slice",
               {f32({1, 32, 40, 40})},
               {{"starts", {0, 8, 0, 0}},
                {"ends", {1, 32, 40, 40}},
                {"steps", {1, 1, 1, 1}}},
               DType::f32,
               {1, 24, 40, 40},
               kExact});
  c.push_back({"slice_channels_two_images",
               "slice",
               {f32({2, 6, 5, 5})},
               {{"starts", {0, 1, 0, 0}},
                {"ends", {2, 4, 5, 5}},
                {"steps", {1, 1, 1, 1}}},
               DType::f32,
               {2, 3, 5, 5},
               kExact});
  c.push_back(
      {"slice_last_dim",
       "slice",
       {f32({3, 4, 5})},
       {{"starts", {0, 0, 1}}, {"ends", {3, 4, 4}}, {"steps", {1, 1, 1}}},
       DType::f32,
       {3, 4, 3},
       kExact});
  c.push_back({"slice_empty",
               "slice",
               {f32({4, 5})},
               {{"starts", {2, 0}}, {"ends", {2, 5}}, {"steps", {1, 1}}},
               DType::f32,
               {0, 5},
               kExact});
  c.push_back({"gather_axis0_i64",
               "gather",
               {f32({10, 8}), of(DType::i64, {2, 3})},
               {{"axis", 0}},
               DType::f32,
               {2, 3, 8},
               kExact,
               {{1, {0, 9, -1, 3, -10, 5}}}});
  c.push_back({"gather_axis1_i32",
               "gather",
               {of(DType::bf16, {2, 5, 3}), of(DType::i32, {4})},
               {{"axis", 1}},
               DType::bf16,
               {2, 4, 3},
               kExact,
               {{1, {4, 0, -2, 1}}}});
  // The last axis of 4-byte elements (a bilinear Resize's columns): the
  // cpu kernel's indexed-loop path, negative indices included.
  c.push_back({"gather_last_axis_f32",
               "gather",
               {f32({3, 2, 7}), of(DType::i64, {2, 5})},
               {{"axis", -1}},
               DType::f32,
               {3, 2, 2, 5},
               kExact,
               {{1, {6, 0, -1, 3, 3, 2, -7, 5, 1, 4}}}});
  c.push_back({"gather_scalar_index",
               "gather",
               {of(DType::i64, {6, 2}, -9, 9), of(DType::i64, {})},
               {{"axis", 0}},
               DType::i64,
               {2},
               kExact,
               {{1, {-3}}}});
  c.push_back({"broadcast_to_f32",
               "broadcast_to",
               {f32({3, 1})},
               {{"shape", {2, 3, 4}}},
               DType::f32,
               {2, 3, 4},
               kExact});
  c.push_back({"broadcast_to_rank0_i1",
               "broadcast_to",
               {of(DType::i1, {}, 0, 2)},
               {{"shape", {5}}},
               DType::i1,
               {5},
               kExact});
  c.push_back({"constant",
               "constant",
               {},
               {{"value", {1, 2, 3}}},
               DType::f32,
               {3},
               kExact});

  // Fused matmul/conv2d epilogues (kiln-fuse-epilogues): oneDNN post-ops on
  // the cpu backend. A leading add_bias uses the primitive's bias argument,
  // a later one a binary post-op.
  {
    auto steps = [](std::initializer_list<const char *> names) {
      json a = json::array();
      for (const char *n : names)
        a.push_back(n);
      return a;
    };
    Tolerance mm16 = matmulTol(DType::f32, 16);
    c.push_back(
        {"fused_matmul_bias_gelu_residual",
         "fused_matmul",
         {f32({2, 5, 16}), weight(f32({16, 24})), f32({24}), f32({2, 5, 24})},
         {{"epilogue", steps({"add_bias", "gelu", "add_residual"})}},
         DType::f32,
         {2, 5, 24},
         mm16});
    c.push_back({"fused_matmul_scale_bias_silu",
                 "fused_matmul",
                 {f32({2, 5, 16}), weight(f32({24, 16})), f32({1, 1, 24})},
                 {{"transpose_b", true},
                  {"epilogue", steps({"scale", "add_bias", "silu"})},
                  {"scales", json::array({0.125})}},
                 DType::f32,
                 {2, 5, 24},
                 mm16});
    c.push_back({"fused_matmul_gelu_tanh_scale_sigmoid",
                 "fused_matmul",
                 {f32({7, 16}), f32({16, 9})},
                 {{"epilogue", steps({"gelu_tanh", "scale", "sigmoid"})},
                  {"scales", json::array({2.0})}},
                 DType::f32,
                 {7, 9},
                 mm16});
    // A last f32 silu, sigmoid, tanh or gelu_tanh runs as the backend's own
    // pass after the primitive (ActivationAfterKernel); odd sizes reach
    // the vector tail, inputs in [-4, 4] the bends of each curve.
    c.push_back({"fused_matmul_bias_gelu_tanh",
                 "fused_matmul",
                 {f32({3, 5, 16}, -4, 4), weight(f32({16, 23})), f32({23})},
                 {{"epilogue", steps({"add_bias", "gelu_tanh"})}},
                 DType::f32,
                 {3, 5, 23},
                 mm16});
    c.push_back({"fused_matmul_tanh",
                 "fused_matmul",
                 {f32({5, 16}, -4, 4), weight(f32({16, 7}))},
                 {{"epilogue", steps({"tanh"})}},
                 DType::f32,
                 {5, 7},
                 mm16});
    c.push_back({"fused_matmul_batched_relu_tanh_residual",
                 "fused_matmul",
                 {f32({3, 4, 16}), f32({3, 16, 6}), f32({3, 4, 6})},
                 {{"epilogue", steps({"relu", "tanh", "add_residual"})}},
                 DType::f32,
                 {3, 4, 6},
                 mm16});
    c.push_back({"fused_matmul_bf16_bias_gelu",
                 "fused_matmul",
                 {of(DType::bf16, {4, 32}), weight(of(DType::bf16, {32, 16})),
                  of(DType::bf16, {16})},
                 {{"epilogue", steps({"add_bias", "gelu"})}},
                 DType::bf16,
                 {4, 16},
                 matmulTol(DType::bf16, 32)});
    Tolerance conv27 = {1e-5 * std::sqrt(27.0), 1e-5};
    c.push_back(
        {"fused_conv2d_bias_relu",
         "fused_conv2d",
         {f32({1, 3, 9, 9}), weight(f32({8, 3, 3, 3})), f32({8})},
         {{"pads", {1, 1, 1, 1}}, {"epilogue", steps({"add_bias", "relu"})}},
         DType::f32,
         {1, 8, 9, 9},
         conv27});
    // Winograd with a plain result: no post-ops on the primitive, the
    // bias + residual + silu run after it (TailKernel).
    c.push_back({"fused_conv2d_winograd_bias_residual_silu",
                 "fused_conv2d",
                 {f32({1, 16, 16, 16}), weight(f32({16, 16, 3, 3})), f32({16}),
                  f32({1, 16, 16, 16})},
                 {{"pads", {1, 1, 1, 1}},
                  {"epilogue", steps({"add_bias", "add_residual", "silu"})}},
                 DType::f32,
                 {1, 16, 16, 16},
                 {1e-5 * 12, 1e-5}});
    // ReLU6 (MobileNet) and a one-sided clip as max/min steps; on the f32
    // plain result the tail runs them, NaN propagating as kiln.max/min.
    c.push_back({"fused_conv2d_bias_max_min",
                 "fused_conv2d",
                 {f32({1, 8, 6, 6}), weight(f32({16, 8, 3, 3})), f32({16})},
                 {{"pads", {1, 1, 1, 1}},
                  {"epilogue", steps({"add_bias", "max", "min"})},
                  {"scales", json::array({0.0, 0.6})}},
                 DType::f32,
                 {1, 16, 6, 6},
                 {1e-5 * 9, 1e-5}});
    c.push_back({"fused_matmul_min_scale_max",
                 "fused_matmul",
                 {f32({5, 16}), weight(f32({16, 7}))},
                 {{"epilogue", steps({"min", "scale", "max"})},
                  {"scales", json::array({0.3, 2.0, -0.25})}},
                 DType::f32,
                 {5, 7},
                 mm16});
    // HardSigmoid (MobileNet V3's squeeze-excitation gate): scale 1/6,
    // shift 1/2, then min 1 and max 0, one oneDNN clip; two eltwise_linear
    // post-ops in a row (scale, shift, scale, shift: each must keep its own
    // alpha and beta). Inputs reach both knees.
    c.push_back(
        {"fused_conv2d_hardsigmoid",
         "fused_conv2d",
         {f32({1, 8, 6, 6}, -3, 3), weight(f32({16, 8, 1, 1})), f32({16})},
         {{"epilogue", steps({"add_bias", "scale", "shift", "min", "max"})},
          {"scales", json::array({1.0 / 6, 0.5, 1.0, 0.0})}},
         DType::f32,
         {1, 16, 6, 6},
         {1e-5 * 8, 1e-5}});
    c.push_back({"fused_matmul_scale_shift_scale_shift",
                 "fused_matmul",
                 {f32({5, 16}), weight(f32({16, 7}))},
                 {{"epilogue", steps({"scale", "shift", "scale", "shift"})},
                  {"scales", json::array({0.5, 3.0, -2.0, 0.25})}},
                 DType::f32,
                 {5, 7},
                 mm16});
    c.push_back({"fused_matmul_min_max",
                 "fused_matmul",
                 {f32({5, 16}), weight(f32({16, 7}))},
                 {{"epilogue", steps({"min", "max"})},
                  {"scales", json::array({0.2, -0.3})}},
                 DType::f32,
                 {5, 7},
                 mm16});
    // HardSwish (MobileNet V3): the f32 tail on a plain conv result, and
    // oneDNN's post-op on a matmul. Inputs reach both knees (x = -3, 3).
    c.push_back(
        {"fused_conv2d_bias_hardswish",
         "fused_conv2d",
         {f32({1, 8, 6, 6}, -3, 3), weight(f32({16, 8, 3, 3})), f32({16})},
         {{"pads", {1, 1, 1, 1}},
          {"epilogue", steps({"add_bias", "hardswish"})}},
         DType::f32,
         {1, 16, 6, 6},
         {1e-5 * 9, 1e-5}});
    c.push_back({"fused_matmul_hardswish",
                 "fused_matmul",
                 {f32({5, 16}, -3, 3), weight(f32({16, 7}))},
                 {{"epilogue", steps({"hardswish"})}},
                 DType::f32,
                 {5, 7},
                 mm16});
    c.push_back({"fused_matmul_bf16_max_min",
                 "fused_matmul",
                 {of(DType::bf16, {4, 32}), of(DType::bf16, {32, 16})},
                 {{"epilogue", steps({"max", "min"})},
                  {"scales", json::array({-0.5, 0.5})}},
                 DType::bf16,
                 {4, 16},
                 matmulTol(DType::bf16, 32)});
    c.push_back({"fused_conv2d_bias_residual_relu",
                 "fused_conv2d",
                 {f32({2, 4, 6, 6}), weight(f32({4, 4, 3, 3})),
                  f32({1, 4, 1, 1}), f32({2, 4, 6, 6})},
                 {{"pads", {1, 1, 1, 1}},
                  {"epilogue", steps({"add_bias", "add_residual", "relu"})}},
                 DType::f32,
                 {2, 4, 6, 6},
                 {1e-5 * 6, 1e-5}});
    c.push_back({"fused_conv2d_groups_scale_silu_bias",
                 "fused_conv2d",
                 {f32({1, 4, 7, 7}), weight(f32({6, 2, 3, 3})), f32({6})},
                 {{"groups", 2},
                  {"strides", {2, 2}},
                  {"epilogue", steps({"scale", "silu", "add_bias"})},
                  {"scales", json::array({0.5})}},
                 DType::f32,
                 {1, 6, 3, 3},
                 conv27});
    // batch_norm parameters are weights (ResNet): the cpu backend folds
    // them into a per-channel multiply-add.
    c.push_back({"fused_conv2d_batch_norm_relu_residual",
                 "fused_conv2d",
                 {f32({2, 3, 9, 9}), weight(f32({8, 3, 3, 3})),
                  weight(f32({8})), weight(f32({8})), weight(f32({8})),
                  weight(f32({8}, 0.5, 2)), f32({2, 8, 9, 9})},
                 {{"pads", {1, 1, 1, 1}},
                  {"epilogue", steps({"batch_norm", "relu", "add_residual"})},
                  {"epsilons", json::array({1e-5})}},
                 DType::f32,
                 {2, 8, 9, 9},
                 conv27});
    // bf16 keeps oneDNN post-ops (the residual as a sum post-op).
    c.push_back(
        {"fused_conv2d_bf16_bias_residual_relu",
         "fused_conv2d",
         {of(DType::bf16, {1, 4, 6, 6}), weight(of(DType::bf16, {8, 4, 3, 3})),
          of(DType::bf16, {8}), of(DType::bf16, {1, 8, 4, 4})},
         {{"epilogue", steps({"add_bias", "add_residual", "relu"})}},
         DType::bf16,
         {1, 8, 4, 4},
         {2e-2 * 6, 1e-2}});
  }
  // A broadcast oneDNN's binary runs only with its reference kernel (the
  // [1, 1, H, 1] weights of a bilinear Resize): the own loop takes it.
  c.push_back({"mul_f32_middle_broadcast",
               "mul",
               {f32({1, 3, 9, 5}), f32({1, 1, 9, 1})},
               json::object(),
               DType::f32,
               {1, 3, 9, 5},
               kF32});
  // Trigonometric ops of the ONNX importer (OnnxTrig.cpp).
  for (const char *op : {"sin", "cos", "atan"}) {
    c.push_back({std::string(op) + "_f32",
                 op,
                 {f32({3, 17}, -4, 4)},
                 json::object(),
                 DType::f32,
                 {3, 17},
                 kF32});
    c.push_back({std::string(op) + "_f64",
                 op,
                 {of(DType::f64, {9}, -4, 4)},
                 json::object(),
                 DType::f64,
                 {9},
                 forType(DType::f64)});
    c.push_back({std::string(op) + "_bf16",
                 op,
                 {of(DType::bf16, {33}, -4, 4)},
                 json::object(),
                 DType::bf16,
                 {33},
                 kBf16});
  }
  // attention: q [B, H, Sq, D], k [B, Hk, Sk, D], v [B, Hk, Sk, Dv] and an
  // optional mask. The cpu kernel works on blocks of 64 queries and 96
  // keys; the shapes cross and miss those boundaries. Outputs are weighted
  // means of v: f32 agrees with the f64-accumulating reference to ~1e-6.
  {
    const Tolerance attentionF32{1e-5, 1e-5};
    const double inf = std::numeric_limits<double>::infinity();
    auto attention = [&](std::string tag, DType t, std::vector<int64_t> q,
                         std::vector<int64_t> k, int64_t valueDim, json attrs,
                         std::optional<Operand> mask = std::nullopt,
                         std::map<size_t, std::vector<double>> fixed = {}) {
      std::vector<int64_t> v = {k[0], k[1], k[2], valueDim};
      std::vector<Operand> ops = {of(t, q), of(t, k), of(t, v, -1, 1)};
      if (mask)
        ops.push_back(*mask);
      Tolerance tol = t == DType::f32 ? attentionF32 : forType(t);
      c.push_back({"attention_" + tag,
                   "attention",
                   ops,
                   attrs,
                   t,
                   {q[0], q[1], q[2], valueDim},
                   tol,
                   fixed});
    };
    json plain = json::object();
    json causal = {{"causal", true}};
    attention("f32", DType::f32, {1, 2, 64, 32}, {1, 2, 64, 32}, 32, plain);
    attention("f32_batch_multi_block", DType::f32, {2, 3, 150, 64},
              {2, 3, 200, 64}, 64, plain);
    attention("f32_scale", DType::f32, {1, 2, 20, 16}, {1, 2, 30, 16}, 16,
              {{"scale", 0.7}});
    attention("gqa", DType::f32, {1, 4, 33, 16}, {1, 2, 47, 16}, 16, plain);
    attention("gqa_causal", DType::f32, {2, 6, 70, 32}, {2, 2, 70, 32}, 32,
              causal);
    attention("causal", DType::f32, {1, 2, 130, 64}, {1, 2, 130, 64}, 64,
              causal);
    // Bottom-right alignment: Sq < Sk (the new queries of a cached
    // sequence) and Sq > Sk (the first Sq - Sk queries see no key: zeros).
    attention("causal_sq_lt_sk", DType::f32, {1, 2, 5, 16}, {1, 2, 130, 16}, 16,
              causal);
    attention("causal_sq_gt_sk", DType::f32, {1, 2, 80, 16}, {1, 2, 30, 16}, 16,
              causal);
    attention("odd_sizes", DType::f32, {1, 2, 37, 24}, {1, 2, 53, 24}, 40,
              plain);
    attention("odd_sizes_causal", DType::f32, {1, 3, 37, 24}, {1, 3, 53, 24},
              20, causal);
    attention("mask_key_padding", DType::f32, {2, 2, 40, 16}, {2, 2, 50, 16},
              16, plain, of(DType::f32, {2, 1, 1, 50}, -4, 0));
    attention("mask_2d", DType::f32, {1, 2, 70, 16}, {1, 2, 100, 16}, 16, plain,
              of(DType::f32, {70, 100}, -4, 2));
    attention("mask_per_query", DType::f32, {1, 2, 40, 16}, {1, 2, 50, 16}, 16,
              plain, of(DType::f32, {40, 1}, -4, 2));
    attention("mask_full_causal", DType::f32, {2, 2, 30, 16}, {2, 2, 30, 16},
              16, causal, of(DType::f32, {2, 2, 30, 30}, -2, 2));
    attention("mask_bool", DType::f32, {1, 2, 40, 16}, {1, 2, 50, 16}, 16,
              plain, of(DType::i1, {1, 1, 40, 50}, 0, 2));
    attention("mask_bool_per_query", DType::f32, {1, 2, 40, 16}, {1, 2, 50, 16},
              16, plain, of(DType::i1, {2, 40, 1}, 0, 2));
    attention("mask_bool_key_padding", DType::f32, {2, 2, 40, 16},
              {2, 2, 50, 16}, 16, causal, of(DType::i1, {2, 1, 1, 50}, 0, 2));
    // Finite large negative values are only added; a row of them is a
    // (uniform) softmax, not zeros.
    {
      std::vector<double> mask(6 * 9, 0.0);
      for (int64_t j = 0; j < 9; ++j) {
        mask[1 * 9 + j] = -3.4e38; // all finite and huge: uniform
        mask[2 * 9 + j] = -inf;    // all excluded: zeros
        mask[3 * 9 + j] = j % 2 ? -inf : -3.4e38; // uniform over even keys
        mask[4 * 9 + j] = j % 3 ? 0.0 : -1e9;     // p = 0 on every third
      }
      attention("mask_extreme_values", DType::f32, {1, 2, 6, 8}, {1, 2, 9, 8},
                8, plain, of(DType::f32, {6, 9}), {{3, mask}});
    }
    {
      std::vector<double> mask(5 * 7, 1.0);
      for (int64_t j = 0; j < 7; ++j)
        mask[2 * 7 + j] = 0; // row 2 sees no key: zeros
      attention("mask_bool_fully_masked_row", DType::f32, {1, 1, 5, 8},
                {1, 1, 7, 8}, 8, plain, of(DType::i1, {5, 7}), {{3, mask}});
    }
    // causal_in_mask: a hint that the mask masks the keys above the
    // diagonal (bottom-right aligned) with a finite fill; the cpu kernel
    // skips them where they weigh 0 and visits them in the blocks of rows
    // that the padding masks entirely (those average v). The mask is
    // [B, 1, Sq, Sk]: `fill` above the diagonal and on each batch's first
    // pad[b] keys, a small value elsewhere.
    {
      json hint = {{"causal_in_mask", true}};
      auto paddedCausal = [](std::vector<int64_t> pads, int64_t sq, int64_t sk,
                             double fill) {
        std::vector<double> mask;
        for (int64_t pad : pads)
          for (int64_t i = 0; i < sq; ++i)
            for (int64_t j = 0; j < sk; ++j)
              mask.push_back(j > i + sk - sq || j < pad ? fill
                                                        : -0.01 * (j % 7));
        return mask;
      };
      const double lowest = std::numeric_limits<float>::lowest();
      // Batch 1's first 70 rows see only padding: its first block of 64
      // rows and 6 rows of the second visit every key.
      attention("causal_in_mask_left_padding", DType::f32, {2, 2, 150, 32},
                {2, 2, 150, 32}, 32, hint, of(DType::f32, {2, 1, 150, 150}),
                {{3, paddedCausal({0, 70}, 150, 150, lowest)}});
      attention("causal_in_mask_gqa", DType::f32, {2, 4, 130, 16},
                {2, 2, 130, 16}, 16, hint, of(DType::f32, {2, 1, 130, 130}),
                {{3, paddedCausal({5, 0}, 130, 130, lowest)}});
      // (A row of -1e9 fills only is not compared: in f32, -1e9 + s rounds
      // s to a multiple of 64, in the f64 reference it does not.)
      attention("causal_in_mask_fill_1e9", DType::f32, {1, 2, 130, 16},
                {1, 2, 130, 16}, 16, hint, of(DType::f32, {1, 1, 130, 130}),
                {{3, paddedCausal({0}, 130, 130, -1e9)}});
      attention("causal_in_mask_sq_lt_sk", DType::f32, {1, 2, 100, 16},
                {1, 2, 190, 16}, 16, hint, of(DType::f32, {1, 1, 100, 190}),
                {{3, paddedCausal({120}, 100, 190, lowest)}});
      attention("causal_in_mask_inf", DType::f32, {1, 2, 100, 16},
                {1, 2, 100, 16}, 16, hint, of(DType::f32, {1, 1, 100, 100}),
                {{3, paddedCausal({30}, 100, 100, -inf)}});
      attention("causal_in_mask_f16", DType::f16, {1, 2, 100, 32},
                {1, 2, 100, 32}, 32, hint, of(DType::f16, {1, 1, 100, 100}),
                {{3, paddedCausal({30}, 100, 100, -65504)}});
      // Without the hint the kernel bounds any mask that varies along the
      // queries the same way (T5's decoder bias and mask folded into one
      // initializer; ALiBi plus causal): a sliding window (band) with
      // padding, per head.
      {
        std::vector<double> band;
        for (int64_t h = 0; h < 2; ++h)
          for (int64_t i = 0; i < 140; ++i)
            for (int64_t j = 0; j < 140; ++j)
              band.push_back(j > i || j + 40 + 10 * h < i || j < 20
                                 ? lowest
                                 : 0.05 * (i - j) * (h + 1) / 140);
        attention("sliding_window_no_hint", DType::f32, {1, 2, 140, 16},
                  {1, 2, 140, 16}, 16, plain, of(DType::f32, {1, 2, 140, 140}),
                  {{3, band}});
      }
      // A wrong hint (the mask is not causal) changes nothing either.
      attention("causal_in_mask_not_causal", DType::f32, {1, 2, 150, 16},
                {1, 2, 150, 16}, 16, hint,
                of(DType::f32, {1, 2, 150, 150}, -2, 2));
    }
    // Soft-capping (Gemma 2): cap * tanh(s / cap) on the scaled scores.
    // Scores up to ~+-10 against a cap of 2 cross both branches of the cpu
    // kernel's tanh (|s / cap| below and above 0.55) and saturate it.
    attention("softcap", DType::f32, {1, 2, 70, 16}, {1, 2, 100, 16}, 16,
              {{"scale", 1.0}, {"softcap", 2.0}});
    attention("softcap_causal_mask", DType::f32, {2, 4, 70, 16}, {2, 2, 70, 16},
              16, {{"scale", 0.5}, {"softcap", 3.0}, {"causal", true}},
              of(DType::f32, {2, 1, 1, 70}, -4, 0));
    attention("softcap_bf16", DType::bf16, {1, 2, 40, 32}, {1, 2, 50, 32}, 32,
              {{"softcap", 1.5}});
    attention("f16", DType::f16, {1, 2, 70, 32}, {1, 2, 100, 32}, 32, causal,
              of(DType::f16, {1, 1, 1, 100}, -2, 0));
    attention("bf16", DType::bf16, {1, 4, 70, 32}, {1, 2, 100, 32}, 48, plain,
              of(DType::i1, {70, 100}, 0, 2));
    attention("f64", DType::f64, {1, 2, 9, 8}, {1, 2, 11, 8}, 8, causal);
    // One query per head with grouped-query heads (decoding): the cpu
    // kernel computes the group's heads as one block of rows.
    attention("decode_gqa_causal", DType::f32, {2, 8, 1, 64}, {2, 2, 300, 64},
              64, causal);
    attention("decode_gqa_head_mask", DType::f32, {1, 8, 1, 32},
              {1, 2, 130, 32}, 24, plain,
              of(DType::f32, {1, 8, 1, 130}, -4, 0));
    attention("decode_gqa_bool_mask", DType::f32, {2, 6, 1, 16}, {2, 3, 97, 16},
              16, causal, of(DType::i1, {2, 1, 1, 97}, 0, 2));
    attention("decode_mqa_80_heads", DType::f32, {1, 80, 1, 16}, {1, 1, 50, 16},
              16, plain, of(DType::f32, {1, 80, 1, 1}, -1, 1));
    attention("decode_gqa_bf16", DType::bf16, {1, 4, 1, 32}, {1, 2, 100, 32},
              32, causal, of(DType::bf16, {1, 4, 1, 100}, -2, 0));
  }
  return c;
}

/// A Program with the case's operands (inputs in<i> or params w<i>), one
/// kernel, and output "out"; fills `inputs` and `weights` with values.
Program caseProgram(const OpCase &k, TensorMap &inputs, TensorMap &weights) {
  Program p;
  p.name = "diff_" + k.name;
  KernelCall call;
  call.op = k.op;
  call.attrs = k.attrs;
  call.loc = "diff:" + k.name;
  for (size_t i = 0; i < k.operands.size(); ++i) {
    const Operand &o = k.operands[i];
    BufferDesc b;
    b.id = static_cast<int64_t>(i);
    b.dtype = o.dtype;
    b.shape = o.shape;
    b.kind = o.weight ? BufferKind::param : BufferKind::input;
    b.name = (o.weight ? "w" : "in") + std::to_string(i);
    std::vector<double> values;
    if (auto it = k.fixed.find(i); it != k.fixed.end())
      values = it->second;
    else {
      values = randomValues(numElements(o.shape), o.lo, o.hi, 17 + i);
      bool integral = o.dtype != DType::f32 && o.dtype != DType::f64 &&
                      o.dtype != DType::bf16 && o.dtype != DType::f16;
      if (integral)
        for (double &v : values)
          v = std::floor(v);
    }
    (o.weight ? weights : inputs)[b.name] = make(o.dtype, o.shape, values);
    p.buffers.push_back(b);
    if (!o.weight)
      p.inputs.push_back({b.name, b.id});
    call.inputs.push_back(b.id);
  }
  BufferDesc out;
  out.id = static_cast<int64_t>(k.operands.size());
  out.dtype = k.outType;
  out.shape = k.outShape;
  out.kind = BufferKind::output;
  out.name = "out";
  p.buffers.push_back(out);
  p.outputs.push_back({"out", out.id});
  call.outputs.push_back(out.id);
  p.kernels.push_back(call);
  return p;
}

struct DiffParam {
  OpCase opCase;
  std::string backend;
};

void PrintTo(const DiffParam &p, std::ostream *os) {
  *os << p.backend << ":" << p.opCase.name;
}

class BackendDiff : public ::testing::TestWithParam<DiffParam> {};

TEST_P(BackendDiff, MatchesReference) {
  const OpCase &k = GetParam().opCase;
  TensorMap inputs, weights;
  Program program = caseProgram(k, inputs, weights);
  auto ref = Executable::create(program, weights, "reference");
  ASSERT_TRUE(ref) << ref.status().message();
  auto exe = Executable::create(program, weights, GetParam().backend);
  ASSERT_TRUE(exe) << exe.status().message();
  RecordProperty("impl", exe->kernelImpls()[0].impl);
  auto want = ref->run(inputs);
  ASSERT_TRUE(want) << want.status().message();
  // Twice: prepared state (primitives, prepacked weights) must survive runs.
  for (int run = 0; run < 2; ++run) {
    auto got = exe->run(inputs);
    ASSERT_TRUE(got) << got.status().message();
    const Tensor &g = got->at("out"), &w = want->at("out");
    ASSERT_EQ(g.dtype(), w.dtype());
    ASSERT_EQ(g.shape(), w.shape());
    expectClose(g.toDoubles(), w.toDoubles(), k.tol.atol, k.tol.rtol,
                GetParam().backend + " " + k.name + " (impl " +
                    exe->kernelImpls()[0].impl + ")");
  }
}

std::vector<DiffParam> allParams() {
  std::vector<DiffParam> out;
  for (const std::string &backend : kBackends)
    for (OpCase &k : buildCases())
      out.push_back({k, backend});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Ops, BackendDiff, ::testing::ValuesIn(allParams()),
                         [](const auto &info) {
                           return info.param.backend + "_" +
                                  info.param.opCase.name;
                         });

TEST(BackendDiffTable, CoversEveryReferenceOp) {
  // Every op the reference backend implements has at least one case.
  std::set<std::string> covered;
  for (const OpCase &k : buildCases())
    covered.insert(k.op);
  for (const char *op : {"neg",          "abs",          "relu",
                         "exp",          "log",          "sqrt",
                         "rsqrt",        "tanh",         "sigmoid",
                         "silu",         "erf",          "reciprocal",
                         "gelu",         "add",          "sub",
                         "mul",          "div",          "max",
                         "min",          "pow",          "compare",
                         "where",        "cast",         "copy",
                         "constant",     "matmul",       "conv2d",
                         "max_pool2d",   "avg_pool2d",   "global_avg_pool",
                         "batch_norm",   "layer_norm",   "rms_norm",
                         "softmax",      "log_softmax",  "reduce_sum",
                         "reduce_mean",  "reduce_max",   "reduce_min",
                         "reshape",      "transpose",    "concat",
                         "slice",        "gather",       "broadcast_to",
                         "fused_matmul", "fused_conv2d", "attention"})
    EXPECT_TRUE(covered.count(op)) << "no differential case for " << op;
  // The ONNX importer's trigonometric ops (OnnxTrig.cpp).
  for (const char *op : {"sin", "cos", "atan"})
    EXPECT_TRUE(covered.count(op)) << "no differential case for " << op;
  // And whatever the reference backend's table holds.
  auto reference = getBackend("reference");
  ASSERT_TRUE(reference);
  for (const std::string &op : (*reference)->ops())
    EXPECT_TRUE(covered.count(op)) << "no differential case for " << op;
}

//===----------------------------------------------------------------------===//
// Implementation choice and visibility of fallbacks (cpu backend)
//===----------------------------------------------------------------------===//

std::string implOf(const OpCase &k) {
  TensorMap inputs, weights;
  Program program = caseProgram(k, inputs, weights);
  auto exe = Executable::create(program, weights, "cpu");
  EXPECT_TRUE(exe) << exe.status().message();
  return exe ? exe->kernelImpls()[0].impl : "";
}

const OpCase &findCase(const std::vector<OpCase> &cases,
                       const std::string &name) {
  for (const OpCase &k : cases)
    if (k.name == name)
      return k;
  ADD_FAILURE() << "no case " << name;
  return cases.front();
}

TEST(CpuBackend, ChoosesOnednnOwnOrReference) {
  std::vector<OpCase> cases = buildCases();
  std::map<std::string, std::string> expected = {
      {"matmul_f32", "onednn:matmul"},
      {"matmul_f32_weight", "onednn:matmul"},
      {"matmul_f32_batch_bcast", "onednn:matmul"},
      {"matmul_bf16_weight", "onednn:matmul"},
      {"conv2d_f32_groups", "onednn:conv2d"},
      {"conv2d_f32_winograd",
       cpu::hasAvx512() ? "onednn:conv2d(winograd)" : "onednn:conv2d"},
      {"fused_conv2d_winograd_bias_residual_silu",
       cpu::hasAvx512() ? "onednn:fused_conv2d(winograd)"
                        : "onednn:fused_conv2d"},
      {"fused_matmul_bias_gelu_residual", "onednn:fused_matmul"},
      {"fused_matmul_scale_bias_silu", "onednn:fused_matmul"},
      {"fused_matmul_bf16_bias_gelu", "onednn:fused_matmul"},
      {"fused_conv2d_bias_residual_relu", "onednn:fused_conv2d"},
      {"fused_conv2d_groups_scale_silu_bias", "onednn:fused_conv2d"},
      {"fused_conv2d_batch_norm_relu_residual", "onednn:fused_conv2d"},
      {"fused_conv2d_bf16_bias_residual_relu", "onednn:fused_conv2d"},
      {"max_pool2d_ceil_pad", "onednn:max_pool2d"},
      {"avg_pool2d_k3_s2_pad", "onednn:avg_pool2d"},
      {"gelu_f32", "onednn:eltwise"},
      {"add_f32_bcast_b", "onednn:binary"},
      {"sub_f32_bcast_a", "cpu:sub"},
      {"softmax_f32", "onednn:softmax"},
      {"log_softmax_f32", "onednn:log_softmax"},
      {"layer_norm_f32", "onednn:layer_norm"},
      // oneDNN 2.6's plain-layout batch norm is a scalar loop: own kernel.
      {"batch_norm_f32", "cpu:batch_norm"},
      {"batch_norm_bf16", "cpu:batch_norm"},
      {"batch_norm_rank2_f32", "cpu:batch_norm"},
      {"reduce_sum_axis1", "onednn:reduction"},
      {"transpose_f32", "onednn:reorder"},
      {"cast_f32_bf16", "onednn:reorder"},
      {"erf_f32", "cpu:erf"},
      {"gather_axis0_i64", "cpu:gather"},
      {"slice_negative_step", "cpu:slice"},
      {"where_f32", "cpu:where"},
      {"compare_lt_f32", "cpu:compare"},
      {"rms_norm_f32", "cpu:rms_norm"},
      {"cast_f32_i32", "cpu:cast"},
      {"transpose_i64", "cpu:transpose"},
      {"matmul_i64", "reference"},
      {"reduce_sum_empty", "reference"},
      {"constant", "reference"},
      {"attention_f32", "cpu:flash_attention"},
      {"attention_gqa_causal", "cpu:flash_attention"},
      {"attention_mask_2d", "cpu:flash_attention"},
      {"attention_mask_bool", "cpu:flash_attention"},
      {"attention_odd_sizes", "cpu:flash_attention"},
      {"attention_f16", "cpu:flash_attention"},
      {"attention_bf16", "cpu:flash_attention"},
      {"attention_f64", "reference"},
      {"attention_decode_gqa_head_mask", "cpu:flash_attention"},
      // One clip post-op for min then max (not declined as two clips).
      {"fused_matmul_min_max", "onednn:fused_matmul"},
      {"fused_matmul_scale_shift_scale_shift", "onednn:fused_matmul"}};
  for (const auto &[name, impl] : expected)
    EXPECT_EQ(implOf(findCase(cases, name)), impl) << name;
}

TEST(CpuBackend, ProfileAndKernelImplsListFallbacks) {
  // matmul (oneDNN) -> add bias (oneDNN) -> i64-free cast ... -> an i64
  // matmul that only the reference kernel runs.
  ProgramAssembler a("mixed");
  int64_t x = a.input("x", DType::f32, {2, 4});
  int64_t w = a.param("w", DType::f32, {4, 3});
  int64_t h = a.arena(DType::f32, {2, 3});
  int64_t hi = a.arena(DType::i64, {2, 3});
  int64_t wi = a.param("wi", DType::i64, {3, 2});
  int64_t y = a.output("y", DType::i64, {2, 2});
  a.call("matmul", {x, w}, h, {{"transpose_a", false}, {"transpose_b", false}},
         "mixed.cpp:1 (fc)");
  a.call("cast", {h}, hi, {{"dtype", "i64"}}, "mixed.cpp:2");
  a.call("matmul", {hi, wi}, y,
         {{"transpose_a", false}, {"transpose_b", false}}, "mixed.cpp:3 (int)");
  const Program &p = a.program();
  TensorMap weights = {{"w", make(DType::f32, {4, 3}, randomValues(12, -3, 3))},
                       {"wi", make(DType::i64, {3, 2}, {1, -2, 3, 0, 2, 1})}};
  auto exe = Executable::create(p, weights, "cpu");
  ASSERT_TRUE(exe) << exe.status().message();
  auto impls = exe->kernelImpls();
  ASSERT_EQ(impls.size(), 3u);
  EXPECT_EQ(impls[0].impl, "onednn:matmul");
  EXPECT_FALSE(impls[0].fallback);
  EXPECT_EQ(impls[1].impl, "cpu:cast");
  EXPECT_EQ(impls[2].impl, "reference");
  EXPECT_TRUE(impls[2].fallback);
  EXPECT_EQ(impls[2].loc, "mixed.cpp:3 (int)");

  TensorMap in = {{"x", make(DType::f32, {2, 4}, randomValues(8, -3, 3))}};
  RunOptions profile;
  profile.profile = true;
  auto out = exe->run(in, profile);
  ASSERT_TRUE(out) << out.status().message();
  ASSERT_EQ(exe->lastProfile().size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(exe->lastProfile()[i].impl, impls[i].impl);
    EXPECT_EQ(exe->lastProfile()[i].loc, impls[i].loc);
  }
  auto ref = Executable::create(p, weights, "reference");
  ASSERT_TRUE(ref);
  auto want = ref->run(in);
  ASSERT_TRUE(want);
  EXPECT_EQ(out->at("y").toDoubles(), want->at("y").toDoubles());
  for (const KernelImpl &k : ref->kernelImpls()) {
    EXPECT_EQ(k.impl, "reference");
    EXPECT_FALSE(k.fallback); // the reference backend never "falls back"
  }
}

TEST(CpuBackend, DataErrorsMatchReference) {
  // An out-of-range gather index and an integer division by zero are
  // reported by the cpu kernels with the reference kernels' messages.
  std::vector<OpCase> bad = {{"gather_oob",
                              "gather",
                              {f32({4, 2}), of(DType::i64, {2})},
                              {{"axis", 0}},
                              DType::f32,
                              {2, 2},
                              kExact,
                              {{1, {1, 4}}}},
                             {"div_zero",
                              "div",
                              {of(DType::i32, {3}, 1, 5), of(DType::i32, {3})},
                              json::object(),
                              DType::i32,
                              {3},
                              kExact,
                              {{1, {1, 0, 2}}}}};
  for (const OpCase &k : bad) {
    TensorMap inputs, weights;
    Program p = caseProgram(k, inputs, weights);
    auto cpu = Executable::create(p, weights, "cpu");
    auto ref = Executable::create(p, weights, "reference");
    ASSERT_TRUE(cpu && ref);
    EXPECT_NE(cpu->kernelImpls()[0].impl, "reference") << k.name;
    auto a = cpu->run(inputs), b = ref->run(inputs);
    ASSERT_FALSE(a.isOk()) << k.name;
    ASSERT_FALSE(b.isOk()) << k.name;
    EXPECT_EQ(a.status().message(), b.status().message());
  }
}

TEST(CpuBackend, IsAvailable) {
  auto names = availableBackends();
  EXPECT_NE(std::find(names.begin(), names.end(), "cpu"), names.end());
}

} // namespace
