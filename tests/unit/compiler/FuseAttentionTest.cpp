//===- tests/unit/compiler/FuseAttentionTest.cpp - Attention fusion e2e ---===//
//
// kiln-fuse-attention on whole models: every attention block of the tiny
// transformer zoo models becomes one kiln.attention (no softmax is left), the
// remarks and the compile report say so, and the fused Program computes what
// the unfused one does. Attention written by hand in the DSL in forms the
// zoo does not use (grouped-query heads, a boolean padding mask, division by
// sqrt(D), an explicit transpose of K, a causal mask from index comparisons,
// a causal mask combined with a padding mask, softmax written out,
// multi-query heads expanded) is fused too.
//
// Tolerances: the fused reference kernel accumulates in f64 and rounds once,
// where the unfused ops round the scores, the probabilities and the output
// to f32, so results agree to a few f32 ulps (1e-5 relative). The cpu
// backend's flash kernel reorders sums as well (1e-4).
//
//===----------------------------------------------------------------------===//
#include "kiln/dsl.h"
#include "kiln/kiln.h"
#include "passes/Passes.h"
#include "tests/common/ZooInputs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

using namespace kiln;

namespace {

size_t countOps(const Program &program, const std::string &op) {
  return std::count_if(program.kernels.begin(), program.kernels.end(),
                       [&](const KernelCall &k) { return k.op == op; });
}

size_t countRemarks(const CompileResult &r, const std::string &prefix) {
  return std::count_if(r.remarks.begin(), r.remarks.end(), [&](auto &m) {
    return m.pass == "kiln-fuse-attention" && m.message.rfind(prefix, 0) == 0;
  });
}

/// Fused and unfused outputs agree within `rtol` (relative, at least 1).
void expectSameOutputs(Executable &fused, Executable &unfused, double rtol,
                       const std::string &what) {
  kiln::test::expectSameOutputs(
      fused, unfused, 11,
      [rtol](double w, double) { return rtol * std::max(1.0, std::fabs(w)); },
      what);
}

/// `fused` (compiled from `m` for `target`) gives the numbers of `m`
/// compiled without attention fusion, on `target`.
void expectSameAsUnfused(const Module &m, const CompileResult &fused,
                         const std::string &target, const std::string &what) {
  auto unfused = compileToProgram(
      m, CompileOptions().setTarget(target).setFuseAttention(false));
  ASSERT_TRUE(unfused) << unfused.status().message();
  auto fe = Executable::create(fused.program, fused.weights, target);
  auto ue = Executable::create(unfused->program, unfused->weights, target);
  ASSERT_TRUE(fe && ue);
  expectSameOutputs(*fe, *ue, target == "reference" ? 1e-5 : 1e-4,
                    what + " on " + target);
}

struct ZooCase {
  const char *model;
  size_t layers; // attention blocks in the tiny config
};

class FuseAttentionZoo : public ::testing::TestWithParam<ZooCase> {};

TEST_P(FuseAttentionZoo, EveryBlockFusedSameNumbers) {
  auto [model, layers] = GetParam();
  auto m = zoo::build(model);
  ASSERT_TRUE(m) << m.status().message();
  for (std::string target : {"reference", "cpu"}) {
    auto fused = compileToProgram(*m, CompileOptions().setTarget(target));
    ASSERT_TRUE(fused) << fused.status().message();
    auto unfused = compileToProgram(
        *m, CompileOptions().setTarget(target).setFuseAttention(false));
    ASSERT_TRUE(unfused) << unfused.status().message();

    EXPECT_EQ(countOps(fused->program, "attention"), layers) << target;
    EXPECT_EQ(countOps(fused->program, "softmax"), 0u) << target;
    EXPECT_EQ(countOps(unfused->program, "attention"), 0u);
    EXPECT_EQ(countOps(unfused->program, "softmax"), layers);
    EXPECT_EQ(countRemarks(*fused, "fused attention"), layers);
    EXPECT_EQ(countRemarks(*fused, "attention not fused"), 0u);
    // The remark points into the model's source (the zoo's C++ file).
    for (const CompileRemark &r : fused->remarks)
      if (r.pass == "kiln-fuse-attention")
        EXPECT_NE(r.location.find(".cpp:"), std::string::npos) << r.location;
    // The fused Program has no Sq x Sk intermediates (scores, scaled,
    // masked, probabilities), so it writes fewer bytes in all.
    EXPECT_LT(fused->program.intermediateBytes,
              unfused->program.intermediateBytes);

    auto fusedExe = Executable::create(fused->program, fused->weights, target);
    ASSERT_TRUE(fusedExe) << fusedExe.status().message();
    auto unfusedExe =
        Executable::create(unfused->program, unfused->weights, target);
    ASSERT_TRUE(unfusedExe) << unfusedExe.status().message();
    expectSameOutputs(*fusedExe, *unfusedExe,
                      target == "reference" ? 1e-5 : 1e-4,
                      std::string(model) + " on " + target);

    std::string report = compileReport(*fused, &*fusedExe);
    EXPECT_NE(report.find("kiln-fuse-attention: " + std::to_string(layers) +
                          " fused, 0 not fused"),
              std::string::npos)
        << report;
    if (target == "cpu")
      EXPECT_NE(report.find("cpu:flash_attention"), std::string::npos)
          << report;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Tiny, FuseAttentionZoo,
    ::testing::Values(ZooCase{"gpt", 2}, ZooCase{"bert", 2}, ZooCase{"vit", 2}),
    [](const auto &info) { return std::string(info.param.model); });

/// Attention written by hand: grouped-query heads (2 key/value heads
/// repeated to 4 with reshape -> broadcast -> reshape), K transposed
/// explicitly, scores divided by sqrt(D), a boolean padding mask applied
/// with where(pad, -inf, scores), and a causal mask from index comparisons.
Module handWritten(bool padding) {
  const int64_t b = 2, h = 4, hk = 2, s = 6, d = 8;
  dsl::Graph g("handwritten");
  auto q = g.input("q", {b, h, s, d});
  auto k = g.input("k", {b, hk, s, d});
  auto v = g.input("v", {b, hk, s, d});
  auto repeat = [&](const dsl::Tensor &t) {
    return t.reshape({b, hk, 1, s, d})
        .broadcastTo({b, hk, h / hk, s, d})
        .reshape({b, h, s, d});
  };
  std::vector<double> rows(s), cols(s);
  for (int64_t i = 0; i < s; ++i)
    rows[i] = cols[i] = double(i);
  auto causal = g.constant({1, s}, cols, DType::i64)
                    .compare("le", g.constant({s, 1}, rows, DType::i64));
  auto ninf = g.scalar(-INFINITY);
  auto scores = q.matmul(repeat(k).transpose({0, 1, 3, 2}))
                    .div(g.scalar(std::sqrt(double(d))));
  scores = causal.select(scores, ninf);
  if (padding) {
    // The last key of the second sequence is padding.
    std::vector<double> pad(b * s, 0.0);
    pad[b * s - 1] = 1.0;
    auto isPad = g.constant({b, 1, 1, s}, pad, DType::i1);
    scores = isPad.select(ninf, scores);
  }
  g.output("o", scores.softmax().matmul(repeat(v)));
  return g.finish();
}

TEST(FuseAttention, HandWrittenFormsFuseWithSameNumbers) {
  for (bool padding : {false, true}) {
    Module m = handWritten(padding);
    for (std::string target : {"reference", "cpu"}) {
      auto fused = compileToProgram(m, CompileOptions().setTarget(target));
      ASSERT_TRUE(fused) << fused.status().message();
      ASSERT_EQ(countOps(fused->program, "attention"), 1u)
          << fused->irAfterPipeline;
      // GQA kept at 2 heads, causal recognized, the pad mask kept as the
      // one (boolean) mask operand.
      EXPECT_NE(fused->irAfterPipeline.find("causal = true"), std::string::npos)
          << fused->irAfterPipeline;
      EXPECT_NE(fused->irAfterPipeline.find(
                    "(tensor<2x4x6x8xf32>, tensor<2x2x6x8xf32>, "
                    "tensor<2x2x6x8xf32>"),
                std::string::npos)
          << fused->irAfterPipeline;
      EXPECT_EQ(countOps(fused->program, "broadcast_to"), 0u);
      const KernelCall &call = *std::find_if(
          fused->program.kernels.begin(), fused->program.kernels.end(),
          [](auto &k) { return k.op == "attention"; });
      EXPECT_EQ(call.inputs.size(), padding ? 4u : 3u);

      expectSameAsUnfused(m, *fused, target, "hand-written");
    }
  }
}

/// More hand-written forms: a causal triangle summed with a padding mask
/// into one additive mask (the triangle must still be found), the same with
/// `and` of boolean masks, softmax written out as exp(x - max) / sum with a
/// mask subtracted from the scores, one key/value head expanded to every
/// query head (multi-query), Gemma 2's soft-capping tanh(s / c) * c
/// before a padding mask, grouped-query K repeated, merged into the batch
/// and transposed as PyTorch's dynamo exporter writes it, and DeBERTa's
/// masked_fill(~mask, float min) with a query row whose keys are all
/// masked (the unfused ops average V there; so must the fused op), and a
/// run-time temperature and a per-key factor after an additive mask.
enum class Form {
  CausalPlusPadding,
  CausalAndPadding,
  WrittenOutSoftmax,
  Mqa,
  SoftCap,
  GqaTransposedK,
  MaskedFillMin,
  FactorsAfterMask
};

Module moreHandWritten(Form form) {
  const int64_t b = 2, h = 4, s = 6, d = 8;
  dsl::Graph g("more");
  auto q = g.input("q", {b, h, s, d});
  int64_t kvHeads = form == Form::Mqa              ? 1
                    : form == Form::GqaTransposedK ? 2
                                                   : h;
  auto k = g.input("k", {b, kvHeads, s, d});
  auto v = g.input("v", {b, kvHeads, s, d});
  if (form == Form::Mqa) {
    k = k.broadcastTo({b, h, s, d});
    v = v.broadcastTo({b, h, s, d});
  }
  std::vector<double> rows(s), cols(s), triangle(s * s);
  for (int64_t i = 0; i < s; ++i) {
    rows[i] = cols[i] = double(i);
    for (int64_t j = 0; j < s; ++j)
      triangle[i * s + j] = j <= i ? 0.0 : -INFINITY;
  }
  if (form == Form::GqaTransposedK) {
    auto repeat = [&](const dsl::Tensor &t) {
      return t.reshape({b, 2, 1, s, d}).broadcastTo({b, 2, h / 2, s, d});
    };
    v = repeat(v).reshape({b, h, s, d});
    auto kt = repeat(k).reshape({b * h, s, d}).transpose({0, 2, 1});
    auto scores = q.matmul(kt.reshape({b, h, d, s})) / std::sqrt(double(d));
    g.output("o", scores.softmax().matmul(v));
    return g.finish();
  }
  auto scores = q.matmul(k, false, true) / std::sqrt(double(d));
  switch (form) {
  case Form::CausalPlusPadding: {
    auto pad = g.input("pad", {b, 1, 1, s});
    scores = scores + (g.constant({s, s}, triangle) + pad);
    break;
  }
  case Form::CausalAndPadding: {
    std::vector<double> keep(b * s, 1.0);
    keep[b * s - 1] = 0.0; // the last key of the second sequence is padding
    auto causal = g.constant({1, s}, cols, DType::i64)
                      .compare("le", g.constant({s, 1}, rows, DType::i64));
    auto both = causal.select(g.constant({b, 1, 1, s}, keep, DType::i1),
                              g.constant({}, {0.0}, DType::i1));
    scores = both.select(scores, g.scalar(-INFINITY));
    break;
  }
  case Form::WrittenOutSoftmax: {
    scores = scores - g.input("pad", {b, 1, 1, s});
    auto e = (scores - scores.max({-1}, true)).exp();
    g.output("o", (e / e.sum({-1}, true)).matmul(v));
    return g.finish();
  }
  case Form::Mqa:
  case Form::GqaTransposedK:
    break;
  case Form::MaskedFillMin: {
    std::vector<double> keep(b * s * s, 1.0);
    for (int64_t j = 0; j < s; ++j) {
      keep[(s + 2) * s + j] = 0.0;       // batch 1, query 2: every key
      keep[(2 * j) % (b * s * s)] = 0.0; // and a few others
    }
    scores =
        g.constant({b, 1, s, s}, keep, DType::i1)
            .select(scores, g.scalar(std::numeric_limits<float>::lowest()));
    break;
  }
  case Form::SoftCap:
    scores = (scores / 0.5).tanh() * 0.5 + g.input("pad", {b, 1, 1, s});
    break;
  case Form::FactorsAfterMask: {
    // A temperature known at run time (in [0.5, 1.5)) and a per-key factor
    // after the additive mask: both move onto Q / K and the mask.
    auto t = g.input("t", {1});
    scores = (scores + g.input("pad", {b, 1, 1, s})) / (t * t + 0.5) *
             g.input("w", {s});
    break;
  }
  }
  g.output("o", scores.softmax().matmul(v));
  return g.finish();
}

TEST(FuseAttention, MoreHandWrittenFormsFuseWithSameNumbers) {
  for (Form form :
       {Form::CausalPlusPadding, Form::CausalAndPadding,
        Form::WrittenOutSoftmax, Form::Mqa, Form::SoftCap, Form::GqaTransposedK,
        Form::MaskedFillMin, Form::FactorsAfterMask}) {
    Module m = moreHandWritten(form);
    std::string what = "form " + std::to_string(int(form));
    for (std::string target : {"reference", "cpu"}) {
      auto fused = compileToProgram(m, CompileOptions().setTarget(target));
      ASSERT_TRUE(fused) << fused.status().message();
      ASSERT_EQ(countOps(fused->program, "attention"), 1u)
          << what << fused->irAfterPipeline;
      EXPECT_EQ(countOps(fused->program, "softmax"), 0u) << what;
      bool causal =
          form == Form::CausalPlusPadding || form == Form::CausalAndPadding;
      EXPECT_EQ(fused->irAfterPipeline.find("causal = true") !=
                    std::string::npos,
                causal)
          << what << fused->irAfterPipeline;
      EXPECT_EQ(fused->irAfterPipeline.find("softcap = 5.000000e-01") !=
                    std::string::npos,
                form == Form::SoftCap)
          << what << fused->irAfterPipeline;
      if (form == Form::GqaTransposedK)
        EXPECT_NE(fused->irAfterPipeline.find("tensor<2x2x6x8xf32>, "
                                              "tensor<2x2x6x8xf32>)"),
                  std::string::npos)
            << fused->irAfterPipeline;
      if (form == Form::Mqa)
        EXPECT_NE(fused->irAfterPipeline.find("tensor<2x1x6x8xf32>, "
                                              "tensor<2x1x6x8xf32>)"),
                  std::string::npos)
            << fused->irAfterPipeline;
      expectSameAsUnfused(m, *fused, target, what);
    }
  }
}

TEST(FuseAttention, MinKeysKeepsSmallAttentionUnfused) {
  Module m = handWritten(false);
  CompileOptions o;
  o.attentionMinKeys = 7; // the model has 6 keys
  auto r = compileToProgram(m, o);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(countOps(r->program, "attention"), 0u);
  EXPECT_EQ(countRemarks(*r, "attention kept unfused"), 1u);
  std::string report = compileReport(*r);
  EXPECT_NE(report.find("kiln-fuse-attention: 0 fused, 0 not fused, 1 kept "
                        "unfused"),
            std::string::npos)
      << report;
}

TEST(FuseAttention, EveryTargetFusesEverySize) {
  // The measured choice (passes/Pipeline.cpp): the cpu flash kernel beats
  // the decomposed kernels from 16 keys up, the reference kernel needs no
  // score buffer, so neither target keeps attention decomposed by default.
  for (const char *target : {"cpu", "reference"}) {
    EXPECT_EQ(attentionMinKeysFor(target), 0) << target;
    for (int64_t seq : {16, 64}) {
      zoo::Options zo;
      zo.seq = seq;
      auto m = zoo::build("gpt", zo);
      ASSERT_TRUE(m) << m.status().message();
      auto r = compileToProgram(*m, CompileOptions().setTarget(target));
      ASSERT_TRUE(r) << r.status().message();
      EXPECT_EQ(countOps(r->program, "attention"), 2u)
          << seq << " tokens on " << target;
    }
  }
}

TEST(FuseAttention, ReturnedProbabilitiesAreNotFusedAndSaySo) {
  dsl::Graph g("probs");
  auto q = g.input("q", {1, 2, 4, 8});
  auto p = q.matmul(q, false, true).softmax();
  g.output("o", p.matmul(q));
  g.output("p", p);
  Module m = g.finish();
  auto r = compileToProgram(m, CompileOptions().setTarget("reference"));
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(countOps(r->program, "attention"), 0u);
  ASSERT_EQ(countRemarks(*r, "attention not fused"), 1u);
  std::string report = compileReport(*r);
  EXPECT_NE(report.find("attention probabilities are also used elsewhere"),
            std::string::npos)
      << report;
}

} // namespace
