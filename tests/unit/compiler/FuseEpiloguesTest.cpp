//===- tests/unit/compiler/FuseEpiloguesTest.cpp - Fusion keeps numbers ---===//
//
// kiln-fuse-epilogues must not change what a model computes: every tiny zoo
// model is compiled for the reference backend with and without the pass, run
// on the same inputs and weights, and compared. The fused Program must also
// be shorter (fewer kernel calls) and hold fused ops.
//
//===----------------------------------------------------------------------===//
#include "kiln/dsl.h"
#include "kiln/kiln.h"
#include "tests/common/ZooInputs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace kiln;

namespace {

size_t countFused(const Program &program) {
  return std::count_if(
      program.kernels.begin(), program.kernels.end(), [](const KernelCall &k) {
        return k.op == "fused_matmul" || k.op == "fused_conv2d";
      });
}

class FuseEpiloguesZoo : public ::testing::TestWithParam<const char *> {};

TEST_P(FuseEpiloguesZoo, SameNumbersWithFewerKernels) {
  auto m = zoo::build(GetParam());
  ASSERT_TRUE(m) << m.status().message();
  auto fused = compile(*m, CompileOptions().setTarget("reference"));
  ASSERT_TRUE(fused) << fused.status().message();
  auto unfused = compile(
      *m, CompileOptions().setTarget("reference").setFuseEpilogues(false));
  ASSERT_TRUE(unfused) << unfused.status().message();

  const Program &fp = fused->program(), &up = unfused->program();
  EXPECT_EQ(countFused(up), 0u);
  EXPECT_GT(countFused(fp), 0u) << GetParam() << " has nothing to fuse";
  EXPECT_LT(fp.kernels.size(), up.kernels.size()) << GetParam();

  // The reference kernels of fused ops compute each step as the unfused op
  // does, so only compiler-level rounding differences may remain.
  kiln::test::expectSameOutputs(
      *fused, *unfused, 7,
      [](double w, double) { return 1e-6 * std::max(1.0, std::fabs(w)); },
      GetParam());
}

/// Compiles `m` for `target` with and without kiln-fuse-epilogues, checks
/// that no kernel of the fused Program is one of `unfusedOps` and that the
/// outputs agree (1e-6 relative on the reference backend, 1e-5 on cpu),
/// and returns the fused Program's epilogues of `fusedOp` calls, in order.
std::vector<std::string>
fusedEpilogues(const Module &m, const std::string &target,
               const std::string &fusedOp,
               const std::vector<std::string> &unfusedOps) {
  auto fused = compile(m, CompileOptions().setTarget(target));
  auto unfused =
      compile(m, CompileOptions().setTarget(target).setFuseEpilogues(false));
  EXPECT_TRUE(fused && unfused);
  if (!fused || !unfused)
    return {};
  std::vector<std::string> epilogues;
  for (const KernelCall &k : fused->program().kernels) {
    EXPECT_EQ(std::count(unfusedOps.begin(), unfusedOps.end(), k.op), 0)
        << k.op << " left unfused on " << target;
    if (k.op == fusedOp)
      epilogues.push_back(k.attrs.at("epilogue").dump());
  }
  kiln::test::expectSameOutputs(
      *fused, *unfused, 3,
      [&](double w, double) {
        return (target == "cpu" ? 1e-5 : 1e-6) * std::max(1.0, std::fabs(w));
      },
      target);
  return epilogues;
}

/// A MobileNet / EfficientNet style block written as exporters write it:
/// conv -> x * sigmoid(x) (SiLU), depthwise conv -> max(x, 0) -> min(., 6)
/// (ReLU6, ONNX Clip), conv -> HardSwish. The activations become epilogue
/// steps, and
/// the numbers stay those of the unfused ops on both backends.
TEST(FuseEpilogues, SwishAndRelu6AsExportersWriteThem) {
  dsl::Graph g("mobile_block");
  auto x = g.input("x", {1, 16, 10, 10});
  auto a = nn::conv2d(x, 32, "expand", nn::Conv2dOptions().setKernel(1));
  a = a * a.sigmoid();
  auto d =
      nn::conv2d(a, 32, "dw",
                 nn::Conv2dOptions().setKernel(3).setPadding(1).setGroups(32));
  d = d.maximum(g.scalar(0.0)).minimum(g.scalar(0.4));
  auto p = nn::conv2d(d, 16, "project", nn::Conv2dOptions().setKernel(1));
  // HardSwish as the ONNX importer spells it (MobileNet V3).
  auto gate =
      (p * (1.0 / 6) + 0.5).minimum(g.scalar(1.0)).maximum(g.scalar(0.0));
  g.output("y", p * gate);
  Module m = g.finish();
  for (std::string target : {"reference", "cpu"})
    EXPECT_EQ(
        fusedEpilogues(m, target, "fused_conv2d", {"sigmoid", "max", "min"}),
        (std::vector<std::string>{R"(["add_bias","silu"])",
                                  R"(["add_bias","max","min"])",
                                  R"(["add_bias","hardswish"])"}))
        << target;
}

/// GELU written out as PyTorch's exporters write F.gelu below opset 20 (HF
/// BERT: x * 0.5 * (1 + erf(x / sqrt 2))) and as HF GPT-2's gelu_new (0.5 *
/// x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))), after a reshape of
/// the matmul's [B*S, N] result, x^3 as pow and as x * x * x): one gelu /
/// gelu_tanh epilogue step each, the same numbers as the unfused ops. A
/// near miss (0.6 for 0.5) stays unfused.
TEST(FuseEpilogues, GeluAsExportersWriteIt) {
  dsl::Graph g("gelus");
  auto x = g.input("x", {2, 4, 16});
  const double root2 = std::sqrt(2.0), c = std::sqrt(2.0 / M_PI);
  auto a = nn::linear(x, 32, "erf");
  g.output("erf_form", a * 0.5 * ((a / root2).erf() + 1.0));
  auto b = nn::linear(x.reshape({8, 16}), 32, "tanh").reshape({2, 4, 32});
  g.output("tanh_pow",
           0.5 * b *
               (1.0 + (c * (b + 0.044715 * b.pow(g.scalar(3.0)))).tanh()));
  auto d = nn::linear(x, 32, "cube");
  g.output("tanh_cube",
           (d * 0.5) * ((c * (d + d * d * d * 0.044715)).tanh() + 1.0));
  auto e = nn::linear(x, 32, "near_miss");
  g.output("near_miss", e * 0.6 * ((e / root2).erf() + 1.0));
  Module m = g.finish();
  for (std::string target : {"reference", "cpu"}) {
    // The near miss keeps its erf; the others leave no erf, tanh or pow.
    EXPECT_EQ(fusedEpilogues(m, target, "fused_matmul", {"tanh", "pow"}),
              (std::vector<std::string>{
                  R"(["add_bias","gelu"])", R"(["add_bias","gelu_tanh"])",
                  R"(["add_bias","gelu_tanh"])", R"(["add_bias"])"}))
        << target;
    auto fused = compile(m, CompileOptions().setTarget(target));
    ASSERT_TRUE(fused);
    const auto &kernels = fused->program().kernels;
    EXPECT_EQ(std::count_if(kernels.begin(), kernels.end(),
                            [](const KernelCall &k) { return k.op == "erf"; }),
              1);
  }
}

/// RMSNorm as HF exports it (x * (1 / sqrt(mean(x^2) + eps)) * w, and with
/// x * x and rsqrt) raised to kiln.rms_norm by kiln-raise-composites: the
/// same numbers as the seven ops it replaces, on both backends.
TEST(RaiseComposites, RmsNormKeepsNumbers) {
  dsl::Graph g("rms");
  auto x = g.input("x", {2, 5, 64});
  auto w = g.param("w", {64});
  auto inv = 1.0 / ((x.pow(g.scalar(2.0)).mean({-1}, true) + 1e-6).sqrt());
  g.output("llama", w * (x * inv));
  auto y = nn::linear(x, 64, "proj");
  g.output("t5", ((y * y).mean({-1}, true) + 1e-5).rsqrt() * y * w);
  Module m = g.finish();
  for (std::string target : {"reference", "cpu"}) {
    auto raised = compile(m, CompileOptions().setTarget(target));
    auto kept = compile(
        m, CompileOptions().setTarget(target).setRaiseComposites(false));
    ASSERT_TRUE(raised && kept);
    size_t norms = 0, means = 0;
    for (const KernelCall &k : raised->program().kernels) {
      norms += k.op == "rms_norm";
      means += k.op == "reduce_mean";
    }
    EXPECT_EQ(norms, 2u) << target;
    EXPECT_EQ(means, 0u) << target;
    // rms_norm accumulates its mean in f64 where the chain used f32.
    kiln::test::expectSameOutputs(
        *raised, *kept, 3,
        [](double w, double) { return 2e-6 * std::max(1.0, std::fabs(w)); },
        target);
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, FuseEpiloguesZoo,
                         ::testing::Values("mlp", "gpt", "bert", "vit",
                                           "resnet"),
                         [](const auto &info) {
                           return std::string(info.param);
                         });

} // namespace
