//===- OnnxTrigTest.cpp - Reference sin, cos and atan kernels -------------===//
//
// Each kernel against identities evaluated in double here rather than the
// kernel's own libm call: sin and cos from their Taylor series (|x| <= 4,
// enough terms for 1e-15), atan through the half-angle reduction
// atan(x) = 2 atan(x / (1 + sqrt(1 + x^2))) and its series. Tolerances as in
// ElementwiseTest: f32 1e-6 relative, f64 1e-12, f16 2^-10, bf16 2^-7.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <functional>

using namespace kiln;
using namespace kiln::test;

namespace {

double taylorSin(double x) {
  double term = x, sum = x;
  for (int k = 1; k < 30; ++k) {
    term *= -x * x / ((2 * k) * (2 * k + 1));
    sum += term;
  }
  return sum;
}

double taylorCos(double x) {
  double term = 1, sum = 1;
  for (int k = 1; k < 30; ++k) {
    term *= -x * x / ((2 * k - 1) * (2 * k));
    sum += term;
  }
  return sum;
}

double seriesAtan(double x) {
  // Two half-angle reductions bring |x| below tan(pi/16) ~ 0.2.
  double y = x / (1 + std::sqrt(1 + x * x));
  y = y / (1 + std::sqrt(1 + y * y));
  double term = y, sum = y;
  for (int k = 1; k < 40; ++k) {
    term *= -y * y;
    sum += term / (2 * k + 1);
  }
  return 4 * sum;
}

struct TrigCase {
  const char *op;
  std::function<double(double)> fn;
  double lo, hi;
};

} // namespace

TEST(ReferenceOnnxTrig, AgainstSeries) {
  const TrigCase cases[] = {{"sin", taylorSin, -4, 4},
                            {"cos", taylorCos, -4, 4},
                            {"atan", seriesAtan, -20, 20}};
  struct TypeTol {
    DType t;
    double atol, rtol;
  } types[] = {{DType::f32, 1e-6, 1e-6},
               {DType::f64, 1e-12, 1e-12},
               {DType::f16, 2e-3, 1.0 / 1024},
               {DType::bf16, 1e-2, 1.0 / 128}};
  std::vector<int64_t> shape = {3, 7};
  for (const TrigCase &c : cases)
    for (const TypeTol &tt : types) {
      std::vector<double> x =
          rounded(tt.t, shape, randomValues(21, c.lo, c.hi, 11));
      std::vector<double> got = runOk(c.op, {make(tt.t, shape, x)},
                                      nlohmann::json::object(), tt.t, shape);
      std::vector<double> want;
      for (double v : x)
        want.push_back(c.fn(v));
      expectClose(got, want, tt.atol, tt.rtol,
                  std::string(c.op) + " " + dtypeName(tt.t));
    }
}

TEST(ReferenceOnnxTrig, SpecialValues) {
  // atan(+-inf) = +-pi/2; sin and cos of NaN are NaN.
  std::vector<double> got =
      runOk("atan", {make(DType::f64, {3}, {INFINITY, -INFINITY, 0.0})},
            nlohmann::json::object(), DType::f64, {3});
  EXPECT_DOUBLE_EQ(got[0], M_PI / 2);
  EXPECT_DOUBLE_EQ(got[1], -M_PI / 2);
  EXPECT_EQ(got[2], 0.0);
  for (const char *op : {"sin", "cos"}) {
    auto v = runOk(op, {make(DType::f32, {1}, {NAN})}, nlohmann::json::object(),
                   DType::f32, {1});
    EXPECT_TRUE(std::isnan(v[0])) << op;
  }
}

TEST(ReferenceOnnxTrig, RejectsIntegers) {
  auto r = runOp("sin", {make(DType::i32, {2}, {1, 2})},
                 nlohmann::json::object(), DType::i32, {2});
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("unsupported element type"),
            std::string::npos)
      << r.status().message();
}
