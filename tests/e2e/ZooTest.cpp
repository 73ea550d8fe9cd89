//===- tests/e2e/ZooTest.cpp - Every tiny zoo model, end to end -----------===//
//
// Compiles and runs each tiny config on the reference backend and checks what
// a user would: the output shapes, finite values, determinism across runs and
// across artifact save/load, and model-specific properties that a wrong
// kernel would break (log-softmax rows sum to one, ResNet/ViT respond to the
// image, BERT's layer norm gives zero-mean rows).
//
//===----------------------------------------------------------------------===//
#include "kiln/kiln.h"
#include "tests/common/ZooInputs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

using namespace kiln;

namespace {

using kiln::test::randomInputs;

struct Expect {
  const char *model;
  const char *output;
  std::vector<int64_t> shape;
};

void PrintTo(const Expect &e, std::ostream *os) { *os << e.model; }

class ZooE2E : public ::testing::TestWithParam<Expect> {};

TEST_P(ZooE2E, RunsFiniteDeterministicAndSurvivesSaveLoad) {
  const Expect &e = GetParam();
  auto m = zoo::build(e.model);
  ASSERT_TRUE(m) << m.status().message();
  auto exe = compile(*m);
  ASSERT_TRUE(exe) << exe.status().message();
  TensorMap in = randomInputs(*exe, 5);
  auto a = exe->run(in);
  ASSERT_TRUE(a) << a.status().message();
  ASSERT_EQ(a->count(e.output), 1u);
  const Tensor &out = a->at(e.output);
  EXPECT_EQ(out.shape(), e.shape);
  for (double v : out.toDoubles())
    ASSERT_TRUE(std::isfinite(v)) << e.model << " produced " << v;

  auto b = exe->run(in);
  ASSERT_TRUE(b);
  EXPECT_EQ(0, std::memcmp(out.data(), b->at(e.output).data(), out.byteSize()))
      << "two runs differ";

  std::string path = std::string(e.model) + "-e2e.kiln";
  ASSERT_TRUE(exe->save(path));
  auto loaded = Executable::load(path);
  ASSERT_TRUE(loaded) << loaded.status().message();
  auto c = loaded->run(in);
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(0, std::memcmp(out.data(), c->at(e.output).data(), out.byteSize()))
      << "artifact run differs from the JIT run";
  std::filesystem::remove(path);

  // A different input must give a different output (the model is not
  // ignoring its input).
  auto d = exe->run(randomInputs(*exe, 6));
  ASSERT_TRUE(d);
  EXPECT_NE(0, std::memcmp(out.data(), d->at(e.output).data(), out.byteSize()));
}

INSTANTIATE_TEST_SUITE_P(
    Tiny, ZooE2E,
    ::testing::Values(Expect{"mlp", "logits", {1, 10}},
                      Expect{"gpt", "logits", {1, 16, 512}},
                      Expect{"bert", "last_hidden_state", {1, 16, 64}},
                      Expect{"vit", "logits", {1, 10}},
                      Expect{"resnet", "logits", {1, 10}}),
    [](const auto &info) { return std::string(info.param.model); });

TEST(ZooProperties, MlpLogSoftmaxRowsSumToOne) {
  auto m = zoo::build("mlp");
  ASSERT_TRUE(m);
  auto exe = compile(*m);
  ASSERT_TRUE(exe);
  auto out = exe->run(randomInputs(*exe, 1));
  ASSERT_TRUE(out);
  double s = 0;
  for (double v : out->at("logits").toDoubles())
    s += std::exp(v);
  EXPECT_NEAR(s, 1.0, 1e-5);
}

TEST(ZooProperties, BertRowsAreLayerNormalized) {
  auto m = zoo::build("bert");
  ASSERT_TRUE(m);
  auto exe = compile(*m);
  ASSERT_TRUE(exe);
  auto out = exe->run(randomInputs(*exe, 2));
  ASSERT_TRUE(out);
  auto v = out->at("last_hidden_state").toDoubles();
  // Final layer norm has weight 1 and bias 0 at initialization: each row of
  // 64 has mean 0 and variance ~1.
  for (int r = 0; r < 16; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < 64; ++i)
      mean += v[r * 64 + i] / 64;
    for (int i = 0; i < 64; ++i)
      var += (v[r * 64 + i] - mean) * (v[r * 64 + i] - mean) / 64;
    EXPECT_NEAR(mean, 0.0, 1e-4) << "row " << r;
    EXPECT_NEAR(var, 1.0, 1e-2) << "row " << r;
  }
}

TEST(ZooProperties, BatchedRunsMatchSingleRuns) {
  // Batch 2 of ResNet (batch norm in inference form) equals two batch-1 runs.
  zoo::Options o1, o2;
  o2.batch = 2;
  auto m1 = zoo::build("resnet", o1), m2 = zoo::build("resnet", o2);
  ASSERT_TRUE(m1 && m2);
  auto e1 = compile(*m1), e2 = compile(*m2);
  ASSERT_TRUE(e1 && e2);
  TensorMap in2 = randomInputs(*e2, 9);
  const Tensor &img = in2.at("pixel_values");
  auto out2 = e2->run(in2);
  ASSERT_TRUE(out2);
  auto all = out2->at("logits").toDoubles();
  size_t per = img.numElements() / 2;
  for (int b = 0; b < 2; ++b) {
    Tensor one = Tensor::fromBytes(DType::f32, {1, 3, 32, 32},
                                   img.dataAs<float>() + b * per);
    auto out1 = e1->run({{"pixel_values", one}});
    ASSERT_TRUE(out1);
    auto v = out1->at("logits").toDoubles();
    for (int i = 0; i < 10; ++i)
      EXPECT_NEAR(v[i], all[b * 10 + i], 1e-4) << "batch " << b;
  }
}

} // namespace
