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
  for (std::string target : {"reference", "cpu"}) {
    auto fused = compile(m, CompileOptions().setTarget(target));
    ASSERT_TRUE(fused) << fused.status().message();
    auto unfused =
        compile(m, CompileOptions().setTarget(target).setFuseEpilogues(false));
    ASSERT_TRUE(unfused) << unfused.status().message();
    std::vector<std::string> epilogues;
    for (const KernelCall &k : fused->program().kernels) {
      EXPECT_TRUE(k.op != "sigmoid" && k.op != "max" && k.op != "min")
          << k.op << " left unfused on " << target;
      if (k.op == "fused_conv2d")
        epilogues.push_back(k.attrs.at("epilogue").dump());
    }
    EXPECT_EQ(epilogues,
              (std::vector<std::string>{R"(["add_bias","silu"])",
                                        R"(["add_bias","max","min"])",
                                        R"(["add_bias","hardswish"])"}))
        << target;
    kiln::test::expectSameOutputs(
        *fused, *unfused, 3,
        [&](double w, double) {
          return (target == "cpu" ? 1e-5 : 1e-6) * std::max(1.0, std::fabs(w));
        },
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
