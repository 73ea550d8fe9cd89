//===- tests/unit/compiler/CompileTest.cpp - compile(), run, save, load ---===//
//
// Numbers of compiled DSL models against independent double-precision
// computations written here, the JIT and artifact paths against each other,
// and the compiler's error paths.
//
//===----------------------------------------------------------------------===//
#include "kiln/kiln.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

using namespace kiln;
using dsl::Graph;

namespace {

Tensor randomTensor(std::vector<int64_t> shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.f, 1.f);
  std::vector<float> v(numElements(shape));
  for (auto &x : v)
    x = n(rng);
  return Tensor::fromFloats(shape, v);
}

std::vector<double> vals(const Tensor &t) { return t.toDoubles(); }

} // namespace

TEST(Compile, MlpMatchesIndependentComputation) {
  Graph g("mlp2");
  auto x = g.input("x", {2, 5});
  auto h = nn::linear(x, 3, "fc1").relu();
  g.output("y", nn::linear(h, 2, "fc2"));
  Module m = g.finish();
  auto exe = compile(m);
  ASSERT_TRUE(exe) << exe.status().message();
  Tensor in = randomTensor({2, 5}, 1);
  auto out = exe->run({{"x", in}});
  ASSERT_TRUE(out) << out.status().message();
  auto w1 = vals(m.weights().at("fc1.weight")),
       b1 = vals(m.weights().at("fc1.bias"));
  auto w2 = vals(m.weights().at("fc2.weight")),
       b2 = vals(m.weights().at("fc2.bias"));
  // fc1.bias is zero-initialized; make the check sensitive to it anyway by
  // comparing the whole computation, bias included.
  auto xv = vals(in);
  auto yv = vals(out->at("y"));
  ASSERT_EQ(yv.size(), 4u);
  for (int r = 0; r < 2; ++r) {
    double hid[3];
    for (int j = 0; j < 3; ++j) {
      double s = b1[j];
      for (int i = 0; i < 5; ++i)
        s += xv[r * 5 + i] * w1[i * 3 + j];
      hid[j] = s > 0 ? s : 0;
    }
    for (int j = 0; j < 2; ++j) {
      double s = b2[j];
      for (int i = 0; i < 3; ++i)
        s += hid[i] * w2[i * 2 + j];
      EXPECT_NEAR(yv[r * 2 + j], s, 1e-5) << "row " << r << " col " << j;
    }
  }
}

TEST(Compile, AttentionMatchesIndependentComputation) {
  const int64_t B = 1, S = 5, D = 8, H = 2, hd = D / H;
  Graph g("attn");
  auto x = g.input("x", {B, S, D});
  auto y = nn::multiHeadAttention(
      x, "attn", nn::AttentionOptions().setHeads(H).setCausal(true));
  g.output("y", y);
  Module m = g.finish();
  // Non-zero biases so that every parameter matters.
  for (auto &[name, t] : m.weights())
    if (name.find("bias") != std::string::npos)
      t = randomTensor(t.shape(), 99 + name.size());
  auto exe = compile(m);
  ASSERT_TRUE(exe) << exe.status().message();
  Tensor in = randomTensor({B, S, D}, 3);
  auto out = exe->run({{"x", in}});
  ASSERT_TRUE(out) << out.status().message();

  auto W = [&](const std::string &n) { return vals(m.weights().at(n)); };
  auto xv = vals(in);
  auto proj = [&](const std::vector<double> &inp, const std::string &p) {
    auto w = W(p + ".weight"), b = W(p + ".bias");
    std::vector<double> o(S * D);
    for (int s = 0; s < S; ++s)
      for (int j = 0; j < D; ++j) {
        double acc = b[j];
        for (int i = 0; i < D; ++i)
          acc += inp[s * D + i] * w[i * D + j];
        o[s * D + j] = acc;
      }
    return o;
  };
  auto q = proj(xv, "attn.q"), k = proj(xv, "attn.k"), v = proj(xv, "attn.v");
  std::vector<double> ctx(S * D, 0.0);
  for (int h = 0; h < H; ++h)
    for (int i = 0; i < S; ++i) {
      std::vector<double> p(S, 0.0);
      double mx = -1e300, sum = 0;
      for (int j = 0; j <= i; ++j) { // causal
        double d = 0;
        for (int e = 0; e < hd; ++e)
          d += q[i * D + h * hd + e] * k[j * D + h * hd + e];
        p[j] = d / std::sqrt(double(hd));
        mx = std::max(mx, p[j]);
      }
      for (int j = 0; j <= i; ++j)
        sum += (p[j] = std::exp(p[j] - mx));
      for (int j = 0; j <= i; ++j)
        for (int e = 0; e < hd; ++e)
          ctx[i * D + h * hd + e] += p[j] / sum * v[j * D + h * hd + e];
    }
  auto expect = proj(ctx, "attn.out");
  auto got = vals(out->at("y"));
  ASSERT_EQ(got.size(), expect.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], expect[i], 1e-4) << "element " << i;
}

TEST(Compile, ArtifactRoundTripGivesBitIdenticalOutputs) {
  auto m = zoo::build("gpt");
  ASSERT_TRUE(m) << m.status().message();
  auto exe = compile(*m);
  ASSERT_TRUE(exe) << exe.status().message();
  Tensor tokens = Tensor::zeros(DType::i64, {1, 16});
  for (int i = 0; i < 16; ++i)
    tokens.dataAs<int64_t>()[i] = (i * 37) % 512;
  auto a = exe->run({{"tokens", tokens}});
  ASSERT_TRUE(a) << a.status().message();
  std::string path = "roundtrip-gpt.kiln";
  ASSERT_TRUE(exe->save(path));
  auto loaded = Executable::load(path);
  ASSERT_TRUE(loaded) << loaded.status().message();
  auto b = loaded->run({{"tokens", tokens}});
  ASSERT_TRUE(b) << b.status().message();
  const Tensor &ta = a->at("logits"), &tb = b->at("logits");
  ASSERT_EQ(ta.shape(), (std::vector<int64_t>{1, 16, 512}));
  ASSERT_EQ(ta.byteSize(), tb.byteSize());
  EXPECT_EQ(0, std::memcmp(ta.data(), tb.data(), ta.byteSize()));
  std::filesystem::remove(path);
}

TEST(Compile, GptIsCausal) {
  // Changing the last token must not change the logits of earlier positions.
  auto m = zoo::build("gpt");
  ASSERT_TRUE(m);
  auto exe = compile(*m);
  ASSERT_TRUE(exe) << exe.status().message();
  Tensor t1 = Tensor::zeros(DType::i64, {1, 16});
  for (int i = 0; i < 16; ++i)
    t1.dataAs<int64_t>()[i] = (i * 11 + 3) % 512;
  Tensor t2 = t1.clone();
  t2.dataAs<int64_t>()[15] = 500;
  auto a = exe->run({{"tokens", t1}});
  auto b = exe->run({{"tokens", t2}});
  ASSERT_TRUE(a && b);
  auto va = vals(a->at("logits")), vb = vals(b->at("logits"));
  for (int64_t i = 0; i < 15 * 512; ++i)
    ASSERT_EQ(va[i], vb[i]) << "position " << i / 512 << " changed";
  bool lastChanged = false;
  for (int64_t i = 15 * 512; i < 16 * 512; ++i)
    lastChanged |= va[i] != vb[i];
  EXPECT_TRUE(lastChanged);
}

TEST(Compile, MissingWeightsAreAllListed) {
  auto m = Module::parseText(R"mlir(
    func.func @m(%x: tensor<2x4xf32> {kiln.name = "x"},
                 %w: tensor<4x3xf32> {kiln.param = "w"},
                 %b: tensor<3xf32> {kiln.param = "b"}) -> tensor<2x3xf32> {
      %0 = kiln.matmul %x, %w : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
      %1 = kiln.add %0, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
      return %1 : tensor<2x3xf32>
    })mlir");
  ASSERT_TRUE(m) << m.status().message();
  auto r = compileToProgram(*m);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("missing weight 'w'"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("missing weight 'b'"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(m->initializeMissingWeights(1), 2);
  EXPECT_TRUE(compileToProgram(*m)) << "after initializing the weights";
}

TEST(Compile, UnsupportedOpsAreAllListed) {
  auto m = Module::parseText(R"mlir(
    func.func @m(%x: tensor<4xf32>) -> tensor<4xf32> {
      %0 = "test.one"(%x) : (tensor<4xf32>) -> tensor<4xf32>
      %1 = "test.two"(%0) : (tensor<4xf32>) -> tensor<4xf32>
      %2 = "test.one"(%1) : (tensor<4xf32>) -> tensor<4xf32>
      return %2 : tensor<4xf32>
    })mlir");
  // Unregistered dialects are refused at parse time or by the verifier pass;
  // either way both op names must appear.
  std::string msg;
  if (!m) {
    msg = m.status().message();
  } else {
    auto r = compileToProgram(*m);
    ASSERT_FALSE(r);
    msg = r.status().message();
  }
  EXPECT_NE(msg.find("test.one"), std::string::npos) << msg;
}

TEST(Compile, PipelineFoldsIdentitiesAndDumpsEveryPass) {
  Graph g("fold");
  auto x = g.input("x", {2, 3});
  g.output("y", (x * 1.0 + 0.0).transpose({1, 0}).transpose({1, 0}).relu());
  Module m = g.finish();
  std::string dir =
      (std::filesystem::temp_directory_path() / "kiln-dump-fold").string();
  std::filesystem::remove_all(dir);
  CompileOptions o;
  o.dumpIrDir = dir;
  auto r = compileToProgram(m, o);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->irAfterPipeline.find("kiln.mul"), std::string::npos)
      << r->irAfterPipeline;
  EXPECT_EQ(r->irAfterPipeline.find("kiln.add"), std::string::npos);
  EXPECT_EQ(r->irAfterPipeline.find("kiln.transpose"), std::string::npos);
  ASSERT_EQ(r->program.kernels.size(), 1u);
  EXPECT_EQ(r->program.kernels[0].op, "relu");
  EXPECT_TRUE(std::filesystem::exists(dir + "/00-input.mlir"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/01-kiln-verify-program.mlir"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/02-canonicalize.mlir"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/03-cse.mlir"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/04-kiln-raise-composites.mlir"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/05-kiln-fuse-attention.mlir"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/06-canonicalize.mlir"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/07-kiln-fuse-epilogues.mlir"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/program.txt"));
}

TEST(Compile, OutputsThatAreInputsOrDuplicatesAreCopied) {
  Graph g("passthrough");
  auto x = g.input("x", {3});
  auto y = x.relu();
  g.output("same", x);
  g.output("a", y);
  g.output("b", y);
  Module m = g.finish();
  auto exe = compile(m);
  ASSERT_TRUE(exe) << exe.status().message();
  Tensor in = Tensor::fromFloats({3}, {-1.f, 2.f, -3.f});
  auto out = exe->run({{"x", in}});
  ASSERT_TRUE(out) << out.status().message();
  EXPECT_EQ(vals(out->at("same")), vals(in));
  EXPECT_EQ(vals(out->at("a")), (std::vector<double>{0, 2, 0}));
  EXPECT_EQ(vals(out->at("b")), (std::vector<double>{0, 2, 0}));
}

TEST(Compile, UnknownTargetIsAnError) {
  auto m = zoo::build("mlp");
  ASSERT_TRUE(m);
  CompileOptions o;
  o.target = "tpu";
  auto r = compile(*m, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("tpu"), std::string::npos);
}
