//===- tests/e2e/CpuBackendTest.cpp - Zoo models on cpu vs reference ------===//
//
// Compiles every tiny zoo model for the cpu target and checks that its
// outputs agree with the reference backend's on the same Program and
// weights, that every GEMM-like kernel runs on oneDNN, and that no kernel of
// these f32 models falls back to the reference kernels. A ResNet whose
// channel counts are all multiples of the block keeps every activation
// between its convolutions channel-blocked.
//
//===----------------------------------------------------------------------===//
#include "frontends/zoo/ZooModels.h"
#include "kiln/kiln.h"
#include "tests/common/ZooInputs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace kiln;

namespace {

using kiln::test::randomInputs;

class CpuZoo : public ::testing::TestWithParam<const char *> {};

TEST_P(CpuZoo, MatchesReference) {
  auto m = zoo::build(GetParam());
  ASSERT_TRUE(m) << m.status().message();
  auto cpu = compile(*m, CompileOptions().setTarget("cpu"));
  ASSERT_TRUE(cpu) << cpu.status().message();
  EXPECT_EQ(cpu->backend(), "cpu");
  auto ref = Executable::create(cpu->program(), cpu->weights(), "reference");
  ASSERT_TRUE(ref) << ref.status().message();

  for (const KernelImpl &k : cpu->kernelImpls()) {
    EXPECT_FALSE(k.fallback) << k.op << " at " << k.loc << " falls back";
    if (k.op == "matmul" || k.op == "fused_matmul")
      EXPECT_EQ(k.impl, "onednn:" + k.op) << k.loc;
    // Convolutions may read or write channel-blocked activations.
    if (k.op == "conv2d" || k.op == "fused_conv2d")
      EXPECT_TRUE(k.impl == "onednn:" + k.op ||
                  k.impl == "onednn:" + k.op + "(blocked)")
          << k.loc << ": " << k.impl;
  }

  TensorMap in = randomInputs(*cpu, 11);
  auto want = ref->run(in);
  ASSERT_TRUE(want) << want.status().message();
  RunOptions profile;
  profile.profile = true;
  for (int run = 0; run < 2; ++run) {
    auto got = cpu->run(in, profile);
    ASSERT_TRUE(got) << got.status().message();
    for (const auto &[name, w] : *want) {
      const Tensor &g = got->at(name);
      ASSERT_EQ(g.shape(), w.shape()) << name;
      auto gv = g.toDoubles(), wv = w.toDoubles();
      double maxAbs = 0;
      for (double v : wv)
        maxAbs = std::max(maxAbs, std::fabs(v));
      // Whole models: f32 kernels with different summation orders and
      // oneDNN's polynomial exp/tanh/erf, compounded over layers.
      double tol = 1e-4 * std::max(1.0, maxAbs);
      for (size_t i = 0; i < gv.size(); ++i)
        ASSERT_NEAR(gv[i], wv[i], tol)
            << GetParam() << " " << name << "[" << i << "]";
    }
  }
  ASSERT_EQ(cpu->lastProfile().size(), cpu->program().kernels.size());
  for (const KernelTiming &t : cpu->lastProfile())
    EXPECT_FALSE(t.impl.empty()) << t.op;
}

INSTANTIATE_TEST_SUITE_P(
    Tiny, CpuZoo, ::testing::Values("mlp", "gpt", "bert", "vit", "resnet"),
    [](const auto &info) { return std::string(info.param); });

/// Outputs of `a` and `b` on the same inputs agree within `rel` of the
/// largest magnitude.
void expectSameOutputs(Executable &a, Executable &b, double rel) {
  kiln::test::expectSameOutputs(a, b, 3, [rel](double, double largest) {
    return rel * std::max(1.0, largest);
  });
}

TEST(CpuBlockedLayout, ResNetConvolutionsStayBlocked) {
  // Width 16: every activation after the stem has a multiple of 16 (and 8)
  // channels, so every convolution, the max pool and the global average
  // pool run on channel-blocked activations (on machines where oneDNN
  // blocks channels at all).
  zoo::ResNetConfig config;
  config.blocks = {2, 1};
  config.width = 16;
  config.image = 32;
  config.batch = 2;
  Module m = zoo::buildResNet("resnet_w16", config, 7);
  auto cpu = compile(m, CompileOptions().setTarget("cpu"));
  ASSERT_TRUE(cpu) << cpu.status().message();
  auto ref = Executable::create(cpu->program(), cpu->weights(), "reference");
  ASSERT_TRUE(ref) << ref.status().message();

  std::map<std::string, int> blocked, plain;
  for (const KernelImpl &k : cpu->kernelImpls()) {
    EXPECT_FALSE(k.fallback) << k.op << " at " << k.loc << " falls back";
    bool isBlocked =
        k.impl.size() > 9 && k.impl.substr(k.impl.size() - 9) == "(blocked)";
    (isBlocked ? blocked : plain)[k.op]++;
  }
  if (blocked.empty())
    GTEST_SKIP() << "no kernel runs channel-blocked: oneDNN picks no "
                    "blocked layout for f32 convolutions on this machine";
  // stem, 2 + 1 bottleneck blocks of three convolutions, two downsamples.
  EXPECT_EQ(blocked["fused_conv2d"], 1 + 3 * 3 + 2);
  EXPECT_EQ(plain["fused_conv2d"], 0);
  EXPECT_EQ(blocked["max_pool2d"], 1);
  EXPECT_EQ(blocked["global_avg_pool"], 1);
  // Twice: the second run reuses the prepared primitives and arena.
  expectSameOutputs(*cpu, *ref, 1e-4);
  expectSameOutputs(*cpu, *ref, 1e-4);
}

} // namespace
