//===- tests/onnx/AttentionExportsTest.cpp - PyTorch attention exports ----===//
//
// Attention written the ways PyTorch users write it (HF BERT and GPT-2 eager
// attention, LLaMA grouped-query attention with repeat_kv,
// nn.MultiheadAttention, scaled_dot_product_attention causal and with a
// boolean mask, torch.einsum, T5 (no scale, position bias), cross-attention,
// nn.TransformerEncoderLayer with a causal mask, Bloom's ALiBi on heads folded
// into the batch; nn.MultiheadAttention with causal and key padding masks;
// a LLaMA-style 4-D mask, causal & padding as one boolean
// mask, GPT-NeoX's baddbmm on zeros, grouped-query heads by
// repeat_interleave, multi-query attention by expand, softmax written out,
// a DeBERTa-style relative term, Swin V2's shifted windows with a per-head
// logit scale and a mask built by ScatterND, HF LLaMA's 4-D mask with the
// padding written in by ScatterND), exported to ONNX by
// PyTorch 2.15 with both of its exporters (TorchScript, opset 17; the
// torch.export-based default, opset 20, files named dynamo-*), with the
// inputs and PyTorch's outputs saved next to them (tests/onnx/attention/,
// written by bench/check_attention_fusion.py [--dynamo] --save-fixtures). Each
// file must import, have its one attention block fused by kiln-fuse-attention
// (and no candidate rejected; causal when its mask is; with fewer key/value
// heads when they are repeated), and give PyTorch's output on both backends.
//
// Tolerance: 1e-5 of the largest |output|; fused and unfused f32 attention
// differ from PyTorch by ~3e-7 of it.
//
//===----------------------------------------------------------------------===//
#include "kiln/kiln.h"
#include "kiln/onnx.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

using namespace kiln;

namespace {

const std::string kDir = KILN_SOURCE_DIR "/tests/onnx/attention/";

/// One fixture: its model, imported, and its inputs.
struct Fixture {
  std::optional<Module> module;
  TensorMap inputs;
};

/// Imports `<fixture>.onnx` and reads its inputs among `names`
/// (`<fixture>.<name>.npy`; the exporter drops inputs the graph does not
/// read) into `f`.
void loadFixture(const std::string &fixture,
                 std::initializer_list<const char *> names, Fixture &f) {
  auto module = onnx::importModel(kDir + fixture + ".onnx");
  ASSERT_TRUE(module) << module.status().message();
  f.module.emplace(std::move(*module));
  for (const char *input : names) {
    std::string path = kDir + fixture + "." + input + ".npy";
    if (!std::filesystem::exists(path))
      continue;
    auto t = readNpy(path);
    ASSERT_TRUE(t) << t.status().message();
    f.inputs.emplace(input, std::move(*t));
  }
}

/// A fixture name as a test name ('-' is not allowed there).
std::string testName(const ::testing::TestParamInfo<const char *> &info) {
  std::string n = info.param;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

class AttentionExports : public ::testing::TestWithParam<const char *> {};

TEST_P(AttentionExports, FusedAndMatchesPyTorch) {
  std::string name = GetParam();
  Fixture f;
  ASSERT_NO_FATAL_FAILURE(loadFixture(name, {"x", "mask"}, f));
  const Module &module = *f.module;
  TensorMap &inputs = f.inputs;
  auto want = readNpy(kDir + name + ".y.npy");
  ASSERT_TRUE(want) << want.status().message();
  std::vector<double> w = want->toDoubles();
  double largest = 0;
  for (double v : w)
    largest = std::max(largest, std::fabs(v));

  for (std::string target : {"cpu", "reference"}) {
    auto compiled =
        compileToProgram(module, CompileOptions().setTarget(target));
    ASSERT_TRUE(compiled) << compiled.status().message();
    size_t fused = 0, rejected = 0, causal = 0, causalInMask = 0, grouped = 0;
    for (const CompileRemark &r : compiled->remarks) {
      if (r.pass != "kiln-fuse-attention")
        continue;
      bool isFused = r.message.rfind("fused attention", 0) == 0;
      fused += isFused;
      causal += isFused && r.message.find(", causal,") != std::string::npos;
      causalInMask +=
          isFused && r.message.find(", causal in mask") != std::string::npos;
      grouped += isFused && r.message.find("(kv heads") != std::string::npos;
      rejected += r.message.find("not fused") != std::string::npos;
    }
    EXPECT_EQ(fused, 1u) << compileReport(*compiled);
    EXPECT_EQ(rejected, 0u) << compileReport(*compiled);
    // The causal forms' masks are constants (a triangle, a slice of GPT-2's
    // `bias` buffer, the exporter's 0/-inf matrix), or such a constant
    // combined with the padding mask (*causal-pad*): the op must say
    // causal, so the kernel skips the blocks above the diagonal.
    // Not when the causal part's fill is finite and a padding part remains
    // (*llama-mask, *causal-pad-4d, Bloom's masked_fill: the float
    // minimum): the mask stays whole and additive, so rows every key of
    // which is masked (left padding) keep the unfused result (see
    // LeftPaddedRowsMatchUnfused); the op gets the causal_in_mask hint
    // instead, so the kernel still skips the keys above the diagonal in
    // the other rows. The same for *strict-tril-1e9, which masks the
    // diagonal too (not the causal pattern; its first row sees no key, and
    // the -1e9 fill makes PyTorch average V there).
    bool finiteFillWithPadding =
        name.find("llama-mask") != std::string::npos ||
        name.find("causal-pad-4d") != std::string::npos ||
        name.find("bloom") != std::string::npos ||
        name.find("strict-tril") != std::string::npos;
    bool wantCausal =
        !finiteFillWithPadding && (name.find("gpt2") != std::string::npos ||
                                   name.find("llama") != std::string::npos ||
                                   name.find("bloom") != std::string::npos ||
                                   name.find("causal") != std::string::npos);
    EXPECT_EQ(causal, wantCausal ? 1u : 0u) << compileReport(*compiled);
    EXPECT_EQ(causalInMask, finiteFillWithPadding ? 1u : 0u)
        << compileReport(*compiled);
    // Repeated key/value heads (repeat_kv, repeat_interleave, expand) are
    // read once per group, not copied per query head.
    bool wantGrouped = name.find("gqa") != std::string::npos ||
                       name.find("mqa") != std::string::npos;
    EXPECT_EQ(grouped, wantGrouped ? 1u : 0u) << compileReport(*compiled);
    auto exe = Executable::create(compiled->program, compiled->weights, target);
    ASSERT_TRUE(exe) << exe.status().message();
    auto out = exe->run(inputs);
    ASSERT_TRUE(out) << out.status().message();
    const Tensor &got = out->at("y");
    ASSERT_EQ(got.shape(), want->shape());
    std::vector<double> g = got.toDoubles();
    for (size_t i = 0; i < g.size(); ++i)
      ASSERT_NEAR(g[i], w[i], 1e-5 * largest)
          << name << " on " << target << " [" << i << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(
    PyTorch, AttentionExports,
    ::testing::Values(
        // TorchScript exporter (torch.onnx.export with
        // dynamo=False, opset 17)
        "hf-bert", "hf-gpt2", "llama-gqa", "torch-mha", "sdpa-causal",
        "sdpa-mask", "einsum", "t5-bias", "cross-attn", "encoder-layer-causal",
        "bloom-alibi", "torch-mha-causal-pad", "causal-pad-4d",
        "causal-and-pad", "neox-causal", "gqa-repeat-interleave", "mqa-expand",
        "hand-softmax", "deberta-relative", "swin-windows", "hf-llama-mask",
        // masked_fill(-1e9) on a strictly causal mask; (K Q^T)^T scores
        // with exp(log_softmax) and a hand-written max shift; a non-local
        // block's V P^T
        "strict-tril-1e9", "scores-transposed", "non-local",
        // grouped-query heads by broadcasting in rank 5; HF's head mask
        // (probabilities times a per-head factor, moved after the kernel);
        // scores times a per-key factor (moved onto K); a temperature
        // computed at run time dividing the masked scores (moved onto Q
        // and the mask)
        "gqa-5d", "head-mask", "per-key-scores", "temperature-after-mask",
        // TorchScript exporter at opset 11 (Softmax coerces its input to
        // 2-D; at the last axis that is a plain softmax)
        "opset11-hf-gpt2",
        // torch.export-based exporter, PyTorch's default
        // (opset 20: scalars as initializers, IsNaN,
        // the causal mask as a 0/-inf initializer)
        "dynamo-hf-bert", "dynamo-hf-gpt2", "dynamo-llama-gqa",
        "dynamo-torch-mha", "dynamo-sdpa-causal", "dynamo-sdpa-mask",
        "dynamo-einsum", "dynamo-t5-bias", "dynamo-cross-attn",
        "dynamo-encoder-layer-causal", "dynamo-bloom-alibi",
        "dynamo-torch-mha-causal-pad", "dynamo-causal-pad-4d",
        "dynamo-causal-and-pad", "dynamo-neox-causal",
        "dynamo-gqa-repeat-interleave", "dynamo-mqa-expand",
        "dynamo-hand-softmax", "dynamo-deberta-relative", "dynamo-swin-windows",
        "dynamo-hf-llama-mask", "dynamo-strict-tril-1e9",
        "dynamo-scores-transposed", "dynamo-non-local", "dynamo-gqa-5d",
        "dynamo-head-mask", "dynamo-per-key-scores",
        "dynamo-temperature-after-mask"),
    testName);

/// A left-padded batch gives padded query rows in which every key is masked
/// out. With finite fills (the float minimum) the unfused ops average V
/// there; the fused program must give the same numbers as the unfused one
/// on every row, padded or not (the unfused one on the reference backend,
/// the fused one on both: the cpu kernel's causal_in_mask path visits every
/// key in the blocks of padded rows).
class LeftPadding : public ::testing::TestWithParam<const char *> {};

TEST_P(LeftPadding, LeftPaddedRowsMatchUnfused) {
  std::string name = GetParam();
  Fixture f;
  ASSERT_NO_FATAL_FAILURE(loadFixture(name, {"x", "mask"}, f));
  const Module &module = *f.module;
  TensorMap &inputs = f.inputs;
  ASSERT_TRUE(inputs.count("mask")) << name;
  // [B, S] keep-mask: batch b's first 3 + 2b positions are padding.
  Tensor &mask = inputs.at("mask");
  ASSERT_EQ(mask.shape().size(), 2u);
  int64_t batch = mask.shape()[0], length = mask.shape()[1];
  std::vector<double> keep(batch * length, 1.0);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < 3 + 2 * b && j < length; ++j)
      keep[b * length + j] = 0.0;
  mask = Tensor::fromDoubles(mask.dtype(), mask.shape(), keep);
  std::vector<std::vector<double>> outputs;
  for (auto [fuse, target] :
       {std::pair{true, "cpu"}, {true, "reference"}, {false, "reference"}}) {
    auto compiled = compileToProgram(
        module, CompileOptions().setTarget(target).setFuseAttention(fuse));
    ASSERT_TRUE(compiled) << compiled.status().message();
    auto exe = Executable::create(compiled->program, compiled->weights, target);
    ASSERT_TRUE(exe) << exe.status().message();
    auto out = exe->run(inputs);
    ASSERT_TRUE(out) << out.status().message();
    outputs.push_back(out->at("y").toDoubles());
  }
  const std::vector<double> &unfused = outputs.back();
  double largest = 0;
  for (double v : unfused)
    largest = std::max(largest, std::fabs(v));
  for (size_t k = 0; k + 1 < outputs.size(); ++k) {
    ASSERT_EQ(outputs[k].size(), unfused.size());
    for (size_t i = 0; i < unfused.size(); ++i)
      ASSERT_NEAR(outputs[k][i], unfused[i], 1e-5 * largest)
          << name << (k == 0 ? " fused on cpu" : " fused on reference") << " ["
          << i << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(PyTorch, LeftPadding,
                         ::testing::Values("hf-llama-mask", "causal-pad-4d",
                                           "bloom-alibi",
                                           "dynamo-hf-llama-mask",
                                           "dynamo-causal-pad-4d",
                                           "dynamo-bloom-alibi"),
                         testName);

/// scaled_dot_product_attention exported at opset 23, where PyTorch writes
/// the ONNX Attention op (bench/check_onnx_attention_op.py): it imports as
/// one kiln.attention and gives PyTorch's output on both backends.
class OnnxAttentionOp : public ::testing::TestWithParam<const char *> {};

TEST_P(OnnxAttentionOp, ImportsAsKilnAttentionAndMatchesPyTorch) {
  std::string name = std::string("opset23-") + GetParam();
  Fixture f;
  ASSERT_NO_FATAL_FAILURE(loadFixture(name, {"q", "k", "v", "m"}, f));
  const Module &module = *f.module;
  const TensorMap &inputs = f.inputs;
  std::string text = module.toText();
  EXPECT_NE(text.find("kiln.attention"), std::string::npos) << text;
  EXPECT_EQ(text.find("kiln.softmax"), std::string::npos) << text;
  // Sq == Sk: kiln's causal flag; Sq != Sk: the spec's upper-left
  // triangle, as a mask.
  if (name.find("gqa-causal") != std::string::npos)
    EXPECT_NE(text.find("causal = true"), std::string::npos) << text;
  if (name.find("causal-cross") != std::string::npos)
    EXPECT_EQ(text.find("causal = true"), std::string::npos) << text;
  auto want = readNpy(kDir + name + ".y.npy");
  ASSERT_TRUE(want) << want.status().message();
  std::vector<double> w = want->toDoubles();
  for (std::string target : {"cpu", "reference"}) {
    auto exe = compile(module, CompileOptions().setTarget(target));
    ASSERT_TRUE(exe) << exe.status().message();
    auto out = exe->run(inputs);
    ASSERT_TRUE(out) << out.status().message();
    std::vector<double> g = out->at("y").toDoubles();
    ASSERT_EQ(g.size(), w.size());
    for (size_t i = 0; i < g.size(); ++i)
      ASSERT_NEAR(g[i], w[i], 1e-5)
          << name << " on " << target << " [" << i << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(PyTorch, OnnxAttentionOp,
                         ::testing::Values("causal-cross", "bool-mask",
                                           "float-mask", "gqa-causal"),
                         testName);

} // namespace
