//===- ElementwiseTest.cpp - Reference elementwise kernels ----------------===//
//
// Each kernel against a formula evaluated in double here. Tolerances:
// f32 unary 1e-6 relative (+1e-7 absolute), f16 2^-10 and bf16 2^-7 relative
// (one rounding of the result), f64 1e-14; integer results exact.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <functional>

using namespace kiln;
using namespace kiln::test;

namespace {

struct UnaryCase {
  const char *op;
  std::function<double(double)> fn;
  double lo, hi;
};

const std::vector<UnaryCase> &unaryCases() {
  static const std::vector<UnaryCase> cases = {
      {"neg", [](double x) { return -x; }, -3, 3},
      {"abs", [](double x) { return x < 0 ? -x : x; }, -3, 3},
      {"relu", [](double x) { return x > 0 ? x : 0.0; }, -3, 3},
      {"exp", [](double x) { return std::exp(x); }, -4, 4},
      {"log", [](double x) { return std::log(x); }, 0.01, 10},
      {"sqrt", [](double x) { return std::sqrt(x); }, 0, 10},
      {"rsqrt", [](double x) { return 1 / std::sqrt(x); }, 0.01, 10},
      {"tanh", [](double x) { return std::tanh(x); }, -4, 4},
      {"sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }, -6, 6},
      {"silu", [](double x) { return x / (1 + std::exp(-x)); }, -6, 6},
      {"erf", [](double x) { return std::erf(x); }, -3, 3},
      {"reciprocal", [](double x) { return 1 / x; }, 0.1, 5},
      {"gelu",
       [](double x) { return x * 0.5 * (1 + std::erf(x / std::sqrt(2.0))); },
       -4, 4},
  };
  return cases;
}

} // namespace

TEST(ReferenceElementwise, UnaryFloatTypes) {
  std::vector<int64_t> shape = {3, 7};
  struct TypeTol {
    DType t;
    double atol, rtol;
  } types[] = {{DType::f32, 1e-7, 1e-6},
               {DType::f64, 1e-14, 1e-14},
               {DType::f16, 1e-4, 1.0 / 1024},
               {DType::bf16, 1e-3, 1.0 / 128}};
  for (const UnaryCase &c : unaryCases())
    for (const TypeTol &tt : types) {
      std::vector<double> x =
          rounded(tt.t, shape, randomValues(21, c.lo, c.hi, 7));
      nlohmann::json attrs = nlohmann::json::object();
      if (std::string(c.op) == "gelu")
        attrs["approximate"] = "none";
      std::vector<double> got =
          runOk(c.op, {make(tt.t, shape, x)}, attrs, tt.t, shape);
      std::vector<double> want;
      for (double v : x)
        want.push_back(c.fn(v));
      expectClose(got, want, tt.atol, tt.rtol,
                  std::string(c.op) + " " + dtypeName(tt.t));
    }
}

TEST(ReferenceElementwise, GeluTanhApproximation) {
  std::vector<double> x = randomValues(16, -5, 5, 3);
  std::vector<double> want;
  for (double v : x)
    want.push_back(
        0.5 * v *
        (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
  expectClose(runOk("gelu", {make(DType::f64, {16}, x)},
                    {{"approximate", "tanh"}}, DType::f64, {16}),
              want, 1e-14, 1e-13, "gelu tanh");
  auto bad = runOp("gelu", {make(DType::f32, {16}, x)},
                   {{"approximate", "fast"}}, DType::f32, {16});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("approximate"), std::string::npos);
}

TEST(ReferenceElementwise, SignedUnaryOnIntegers) {
  std::vector<double> x = {-128, -5, 0, 7, 127};
  EXPECT_EQ(runOk("neg", {make(DType::i8, {5}, x)}, {}, DType::i8, {5}),
            (std::vector<double>{-128, 5, 0, -7, -127})); // -(-128) wraps
  EXPECT_EQ(runOk("abs", {make(DType::i64, {5}, x)}, {}, DType::i64, {5}),
            (std::vector<double>{128, 5, 0, 7, 127}));
  EXPECT_EQ(runOk("relu", {make(DType::i32, {5}, x)}, {}, DType::i32, {5}),
            (std::vector<double>{0, 0, 0, 7, 127}));
  // Float-only ops refuse integers; signed-only ops refuse u8.
  auto r = runOp("exp", {make(DType::i32, {5}, x)}, {}, DType::i32, {5});
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("i32"), std::string::npos);
  EXPECT_FALSE(
      runOp("neg", {make(DType::u8, {2}, {1, 2})}, {}, DType::u8, {2}).isOk());
}

// Broadcasting [3,1,5] x [4,1] -> [3,4,5] against explicit index arithmetic.
TEST(ReferenceElementwise, BinaryBroadcastOddShapes) {
  std::vector<double> a = randomValues(15, 0.5, 3, 11);
  std::vector<double> b = randomValues(4, 0.5, 3, 12);
  std::vector<double> af = rounded(DType::f32, {3, 1, 5}, a);
  std::vector<double> bf = rounded(DType::f32, {4, 1}, b);
  std::map<std::string, std::function<double(double, double)>> ops = {
      {"add", [](double x, double y) { return x + y; }},
      {"sub", [](double x, double y) { return x - y; }},
      {"mul", [](double x, double y) { return x * y; }},
      {"div", [](double x, double y) { return x / y; }},
      {"max", [](double x, double y) { return std::max(x, y); }},
      {"min", [](double x, double y) { return std::min(x, y); }},
      {"pow", [](double x, double y) { return std::pow(x, y); }},
  };
  for (const auto &[op, fn] : ops) {
    std::vector<double> want;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j)
        for (int k = 0; k < 5; ++k)
          want.push_back(fn(af[i * 5 + k], bf[j]));
    // Both operand orders, so each side's broadcast is exercised.
    expectClose(
        runOk(op,
              {make(DType::f32, {3, 1, 5}, af), make(DType::f32, {4, 1}, bf)},
              {}, DType::f32, {3, 4, 5}),
        want, 1e-6, 1e-6, op);
    std::vector<double> want2;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j)
        for (int k = 0; k < 5; ++k)
          want2.push_back(fn(bf[j], af[i * 5 + k]));
    expectClose(
        runOk(op,
              {make(DType::f32, {4, 1}, bf), make(DType::f32, {3, 1, 5}, af)},
              {}, DType::f32, {3, 4, 5}),
        want2, 1e-6, 1e-6, op + " swapped");
  }
  auto bad = runOp("add",
                   {make(DType::f32, {3, 2}, std::vector<double>(6, 0)),
                    make(DType::f32, {4}, std::vector<double>(4, 0))},
                   {}, DType::f32, {3, 4});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("broadcast"), std::string::npos);
  auto mixed = runOp(
      "add", {make(DType::f32, {2}, {1, 2}), make(DType::f64, {2}, {1, 2})}, {},
      DType::f32, {2});
  EXPECT_FALSE(mixed.isOk());
}

TEST(ReferenceElementwise, BinaryHalfTypesRoundOnce) {
  std::vector<int64_t> shape = {2, 3};
  for (DType t : {DType::f16, DType::bf16}) {
    std::vector<double> a = rounded(t, shape, randomValues(6, -2, 2, 5));
    std::vector<double> b = rounded(t, {3}, randomValues(3, -2, 2, 6));
    std::vector<double> want;
    for (int i = 0; i < 6; ++i)
      want.push_back(a[i] * b[i % 3]);
    // The product of two 8/11-bit mantissas is exact in f32, so the result
    // must be the correctly rounded product.
    EXPECT_EQ(runOk("mul", {make(t, shape, a), make(t, {3}, b)}, {}, t, shape),
              rounded(t, shape, want))
        << dtypeName(t);
  }
}

TEST(ReferenceElementwise, IntegerArithmetic) {
  auto a = make(DType::i32, {6}, {-7, 7, -7, 7, 0, -9});
  auto b = make(DType::i32, {6}, {2, -2, -2, 2, 5, 4});
  EXPECT_EQ(runOk("div", {a, b}, {}, DType::i32, {6}),
            (std::vector<double>{-3, -3, 3, 3, 0, -2})); // truncates to zero
  EXPECT_EQ(runOk("sub", {a, b}, {}, DType::i32, {6}),
            (std::vector<double>{-9, 9, -5, 5, -5, -13}));
  EXPECT_EQ(runOk("max", {a, b}, {}, DType::i32, {6}),
            (std::vector<double>{2, 7, -2, 7, 5, 4}));
  // i8 wraps instead of overflowing.
  EXPECT_EQ(runOk("add",
                  {make(DType::i8, {2}, {120, -120}),
                   make(DType::i8, {2}, {10, -10})},
                  {}, DType::i8, {2}),
            (std::vector<double>{-126, 126}));
  EXPECT_EQ(
      runOk("mul",
            {make(DType::u8, {2}, {16, 3}), make(DType::u8, {2}, {16, 5})}, {},
            DType::u8, {2}),
      (std::vector<double>{0, 15}));
  auto i64min = make(DType::i64, {1}, {0});
  i64min.dataAs<int64_t>()[0] = std::numeric_limits<int64_t>::min();
  auto r =
      runOp("div", {i64min, make(DType::i64, {1}, {-1})}, {}, DType::i64, {1});
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(r->dataAs<int64_t>()[0], std::numeric_limits<int64_t>::min());

  auto zero = runOp("div", {a, make(DType::i32, {6}, {1, 1, 0, 1, 1, 1})}, {},
                    DType::i32, {6});
  ASSERT_FALSE(zero.isOk());
  EXPECT_NE(zero.status().message().find("division by zero"),
            std::string::npos);
  EXPECT_NE(zero.status().message().find("'div'"), std::string::npos);
  EXPECT_NE(zero.status().message().find("test:div"), std::string::npos);
  // pow is float-only; i1 is not numeric.
  EXPECT_FALSE(runOp("pow", {a, b}, {}, DType::i32, {6}).isOk());
  EXPECT_FALSE(runOp("add",
                     {make(DType::i1, {1}, {1}), make(DType::i1, {1}, {1})}, {},
                     DType::i1, {1})
                   .isOk());
}

TEST(ReferenceElementwise, CompareAllPredicates) {
  std::vector<double> a = {1, 2, 3, 4, 5, 6};
  std::vector<double> b = {3, 2};
  std::map<std::string, std::function<bool(double, double)>> preds = {
      {"eq", [](double x, double y) { return x == y; }},
      {"ne", [](double x, double y) { return x != y; }},
      {"lt", [](double x, double y) { return x < y; }},
      {"le", [](double x, double y) { return x <= y; }},
      {"gt", [](double x, double y) { return x > y; }},
      {"ge", [](double x, double y) { return x >= y; }}};
  for (DType t : {DType::f32, DType::bf16, DType::i64, DType::u8})
    for (const auto &[p, fn] : preds) {
      // [3,2] vs [2,1] -> [3, 2, 2]
      std::vector<double> want;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 2; ++j)
          for (int k = 0; k < 2; ++k)
            want.push_back(fn(a[j * 2 + k], b[j]) ? 1 : 0);
      std::vector<double> a3;
      for (int i = 0; i < 3; ++i)
        a3.insert(a3.end(), a.begin(), a.begin() + 4);
      EXPECT_EQ(runOk("compare", {make(t, {3, 2, 2}, a3), make(t, {2, 1}, b)},
                      {{"predicate", p}}, DType::i1, {3, 2, 2}),
                want)
          << p << " " << dtypeName(t);
    }
  auto x = make(DType::i1, {4}, {0, 0, 1, 1});
  auto y = make(DType::i1, {4}, {0, 1, 0, 1});
  EXPECT_EQ(runOk("compare", {x, y}, {{"predicate", "eq"}}, DType::i1, {4}),
            (std::vector<double>{1, 0, 0, 1}));
  EXPECT_EQ(runOk("compare", {x, y}, {{"predicate", "ne"}}, DType::i1, {4}),
            (std::vector<double>{0, 1, 1, 0}));
  auto lt = runOp("compare", {x, y}, {{"predicate", "lt"}}, DType::i1, {4});
  ASSERT_FALSE(lt.isOk());
  EXPECT_NE(lt.status().message().find("i1"), std::string::npos);
  auto missing = runOp("compare", {x, y}, {}, DType::i1, {4});
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("predicate"), std::string::npos);
  // NaN compares unequal to everything.
  double nan = std::nan("");
  EXPECT_EQ(
      runOk("compare",
            {make(DType::f32, {2}, {nan, 1}), make(DType::f32, {2}, {nan, 1})},
            {{"predicate", "ne"}}, DType::i1, {2}),
      (std::vector<double>{1, 0}));
}

TEST(ReferenceElementwise, WhereThreeWayBroadcast) {
  // cond [2,1,1], x [1,3,1], y [4] -> [2,3,4]
  std::vector<double> c = {1, 0}, x = {10, 20, 30}, y = {1, 2, 3, 4};
  std::vector<double> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        want.push_back(c[i] ? x[j] : y[k]);
  for (DType t : {DType::f16, DType::i64, DType::i1}) {
    std::vector<double> xt = x, yt = y, wt = want;
    if (t == DType::i1) {
      for (auto *v : {&xt, &yt, &wt})
        for (double &e : *v)
          e = e != 0 ? 1 : 0;
    }
    EXPECT_EQ(runOk("where",
                    {make(DType::i1, {2, 1, 1}, c), make(t, {1, 3, 1}, xt),
                     make(t, {4}, yt)},
                    {}, t, {2, 3, 4}),
              wt)
        << dtypeName(t);
  }
  auto bad =
      runOp("where",
            {make(DType::f32, {2}, {1, 0}), make(DType::f32, {2}, {1, 2}),
             make(DType::f32, {2}, {3, 4})},
            {}, DType::f32, {2});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("i1"), std::string::npos);
}

static std::vector<uint16_t> castBits(DType to, const std::vector<float> &v) {
  auto r = runOp("cast", {Tensor::fromFloats({int64_t(v.size())}, v)},
                 {{"dtype", dtypeName(to)}}, to, {int64_t(v.size())});
  EXPECT_TRUE(r.isOk()) << r.status().message();
  if (!r)
    return {};
  return std::vector<uint16_t>(r->dataAs<uint16_t>(),
                               r->dataAs<uint16_t>() + v.size());
}

static float fromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

TEST(ReferenceElementwise, CastRoundsToNearestEvenBf16) {
  std::vector<float> in = {
      1.0f,
      fromBits(0x3F808000), // halfway between 0x3F80 and 0x3F81: to even 0x3F80
      fromBits(0x3F818000), // halfway between 0x3F81 and 0x3F82: to even 0x3F82
      fromBits(0x3F808001), // just above halfway: up
      -2.5f,
      fromBits(0x7F7FFFFF), // max float rounds to inf
      std::numeric_limits<float>::infinity(),
      0.0f,
      -0.0f};
  std::vector<uint16_t> want = {0x3F80, 0x3F80, 0x3F82, 0x3F81, 0xC020,
                                0x7F80, 0x7F80, 0x0000, 0x8000};
  EXPECT_EQ(castBits(DType::bf16, in), want);
  std::vector<uint16_t> nan = castBits(DType::bf16, {std::nanf("")});
  ASSERT_EQ(nan.size(), 1u);
  EXPECT_EQ(nan[0] & 0x7F80, 0x7F80);
  EXPECT_NE(nan[0] & 0x007F, 0);
}

TEST(ReferenceElementwise, CastRoundsToNearestEvenF16) {
  std::vector<float> in = {
      1.0f,
      1.0f + 1.0f / 2048,    // halfway between 0x3C00 and 0x3C01: even
      1.0f + 3.0f / 2048,    // halfway between 0x3C01 and 0x3C02: even
      65504.0f,              // max half
      65519.0f,              // rounds down to max
      65520.0f,              // halfway to 65536: rounds to inf
      std::ldexp(1.0f, -24), // smallest subnormal
      std::ldexp(1.0f, -25), // halfway between 0 and it: even (0)
      std::ldexp(3.0f, -25), // halfway between 1 and 2 subnormal units: 2
      std::ldexp(1.0f, -14), // smallest normal
      -2.0f,
      1e-10f};
  std::vector<uint16_t> want = {0x3C00, 0x3C00, 0x3C02, 0x7BFF, 0x7BFF, 0x7C00,
                                0x0001, 0x0000, 0x0002, 0x0400, 0xC000, 0x0000};
  EXPECT_EQ(castBits(DType::f16, in), want);
}

TEST(ReferenceElementwise, CastBetweenClasses) {
  auto x = make(DType::f32, {6}, {-2.7, -0.5, 0, 0.5, 2.7, 300});
  EXPECT_EQ(runOk("cast", {x}, {{"dtype", "i32"}}, DType::i32, {6}),
            (std::vector<double>{-2, 0, 0, 0, 2, 300}));
  EXPECT_EQ(runOk("cast", {x}, {{"dtype", "i1"}}, DType::i1, {6}),
            (std::vector<double>{1, 1, 0, 1, 1, 1}));
  EXPECT_EQ(runOk("cast", {make(DType::i1, {3}, {1, 0, 1})}, {{"dtype", "f32"}},
                  DType::f32, {3}),
            (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(runOk("cast", {make(DType::i64, {3}, {-1, 256, 7})},
                  {{"dtype", "u8"}}, DType::u8, {3}),
            (std::vector<double>{255, 0, 7})); // modular narrowing
  // bf16 -> f16 -> f64 through the compute type.
  EXPECT_EQ(runOk("cast", {make(DType::bf16, {2}, {1.5, -3})},
                  {{"dtype", "f16"}}, DType::f16, {2}),
            (std::vector<double>{1.5, -3}));
  // NaN to int is 0 rather than undefined behaviour.
  EXPECT_EQ(runOk("cast", {make(DType::f64, {1}, {std::nan("")})},
                  {{"dtype", "i64"}}, DType::i64, {1}),
            (std::vector<double>{0}));
  auto bad = runOp("cast", {x}, {{"dtype", "f8"}}, DType::f32, {6});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("f8"), std::string::npos);
  auto wrong = runOp("cast", {x}, {{"dtype", "f16"}}, DType::f32, {6});
  ASSERT_FALSE(wrong.isOk());
  EXPECT_NE(wrong.status().message().find("result buffer"), std::string::npos);
}

TEST(ReferenceElementwise, CopyAndConstant) {
  auto x = make(DType::bf16, {2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(runOk("copy", {x}, {}, DType::bf16, {2, 2}),
            (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(
      runOk("constant", {}, {{"value", {{1, 2}, {3, 4}}}}, DType::i32, {2, 2}),
      (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(runOk("constant", {}, {{"value", 0.5}}, DType::f32, {3}),
            (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_FALSE(
      runOp("constant", {}, {{"value", {1, 2, 3}}}, DType::f32, {2}).isOk());
}
