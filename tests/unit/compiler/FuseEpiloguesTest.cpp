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

INSTANTIATE_TEST_SUITE_P(Tiny, FuseEpiloguesZoo,
                         ::testing::Values("mlp", "gpt", "bert", "vit",
                                           "resnet"),
                         [](const auto &info) {
                           return std::string(info.param);
                         });

} // namespace
