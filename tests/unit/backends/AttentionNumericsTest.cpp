//===- AttentionNumericsTest.cpp - attention's numerics and error contract ===//
//
// The cpu backend's fused attention kernel must be as accurate as the
// unfused f32 computation it replaces. Both are measured against an
// independent f64 computation written here in plain loops: on random inputs
// the fused kernel's largest absolute error may be at most twice the
// unfused chain's (matmul with transpose_b -> mul by scale -> add mask ->
// softmax -> matmul, run as cpu backend kernels in one Program). The
// reference kernel, which accumulates in f64, must be within f32 output
// rounding of it. Both code paths of the fused kernel (AVX-512 and the
// portable loops) are checked. Then the error contract: operands the op
// does not accept give a Status naming the problem on both backends.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"
#include "backends/cpu/Cpu.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

using namespace kiln;
using namespace kiln::test;
using nlohmann::json;

namespace {

/// One numerics case: shapes, attributes and an optional additive mask.
struct Shape {
  const char *name;
  int64_t batch, heads, kvHeads, queries, keys, headDim, valueDim;
  bool causal;
  /// Additive key-padding mask [B, 1, 1, Sk] (about one key in five -inf).
  bool keyPaddingMask;
};

std::ostream &operator<<(std::ostream &os, const Shape &s) {
  return os << s.name;
}

struct Inputs {
  Tensor q, k, v, mask;
  double scale;
};

Inputs makeInputs(const Shape &s) {
  Inputs in;
  in.q =
      make(DType::f32, {s.batch, s.heads, s.queries, s.headDim},
           randomValues(s.batch * s.heads * s.queries * s.headDim, -2, 2, 11));
  in.k =
      make(DType::f32, {s.batch, s.kvHeads, s.keys, s.headDim},
           randomValues(s.batch * s.kvHeads * s.keys * s.headDim, -2, 2, 12));
  in.v =
      make(DType::f32, {s.batch, s.kvHeads, s.keys, s.valueDim},
           randomValues(s.batch * s.kvHeads * s.keys * s.valueDim, -1, 1, 13));
  if (s.keyPaddingMask) {
    std::vector<double> mask = randomValues(s.batch * s.keys, -3, 0, 14);
    for (size_t j = 0; j < mask.size(); ++j)
      if (j % 5 == 3)
        mask[j] = -std::numeric_limits<double>::infinity();
    in.mask = make(DType::f32, {s.batch, 1, 1, s.keys}, mask);
  }
  in.scale = 1.0 / std::sqrt(double(s.headDim));
  return in;
}

/// Attention in f64 from the f32 inputs, written independently of the
/// kernels: per query row, softmax over the keys it may see.
std::vector<double> attentionF64(const Shape &s, const Inputs &in) {
  std::vector<double> q = in.q.toDoubles(), k = in.k.toDoubles(),
                      v = in.v.toDoubles();
  std::vector<double> mask =
      s.keyPaddingMask ? in.mask.toDoubles() : std::vector<double>();
  std::vector<double> out(s.batch * s.heads * s.queries * s.valueDim, 0.0);
  const int64_t group = s.heads / s.kvHeads;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.queries; ++i) {
        std::vector<double> score;
        std::vector<int64_t> seen;
        for (int64_t j = 0; j < s.keys; ++j) {
          if (s.causal && j > i + (s.keys - s.queries))
            continue;
          double add = s.keyPaddingMask ? mask[b * s.keys + j] : 0.0;
          if (std::isinf(add))
            continue;
          double dot = 0;
          for (int64_t d = 0; d < s.headDim; ++d)
            dot +=
                q[((b * s.heads + h) * s.queries + i) * s.headDim + d] *
                k[((b * s.kvHeads + h / group) * s.keys + j) * s.headDim + d];
          score.push_back(in.scale * dot + add);
          seen.push_back(j);
        }
        if (seen.empty())
          continue;
        double top = *std::max_element(score.begin(), score.end());
        double sum = 0;
        for (double &x : score)
          sum += (x = std::exp(x - top));
        for (size_t n = 0; n < seen.size(); ++n)
          for (int64_t e = 0; e < s.valueDim; ++e)
            out[((b * s.heads + h) * s.queries + i) * s.valueDim + e] +=
                score[n] / sum *
                v[((b * s.kvHeads + h / group) * s.keys + seen[n]) *
                      s.valueDim +
                  e];
      }
  return out;
}

TensorMap feeds(const Shape &s, const Inputs &in) {
  TensorMap m = {{"q", in.q}, {"k", in.k}, {"v", in.v}};
  if (s.keyPaddingMask)
    m["mask"] = in.mask;
  return m;
}

/// The attention op as one kernel call on `backend`; `impl` receives the
/// implementation that ran it.
std::vector<double> runFused(const Shape &s, const Inputs &in,
                             const std::string &backend, std::string &impl) {
  ProgramAssembler b("fused");
  std::vector<int64_t> ops = {b.input("q", in.q), b.input("k", in.k),
                              b.input("v", in.v)};
  if (s.keyPaddingMask)
    ops.push_back(b.input("mask", in.mask));
  int64_t out =
      b.output("out", DType::f32, {s.batch, s.heads, s.queries, s.valueDim});
  b.call("attention", ops, out, {{"causal", s.causal}});
  auto exe = Executable::create(b.program(), {}, backend);
  EXPECT_TRUE(exe) << exe.status().message();
  if (!exe)
    return {};
  impl = exe->kernelImpls()[0].impl;
  auto got = exe->run(feeds(s, in));
  EXPECT_TRUE(got) << got.status().message();
  return got ? got->at("out").toDoubles() : std::vector<double>();
}

/// The unfused f32 chain on the cpu backend. k and v broadcast over the
/// heads, so grouped cases here use a single key/value head.
std::vector<double> runUnfused(const Shape &s, const Inputs &in) {
  EXPECT_TRUE(s.kvHeads == s.heads || s.kvHeads == 1) << s.name;
  TensorMap m = feeds(s, in);
  // The scale as a constant operand and causality as an additive mask, as
  // the model zoo writes them.
  m["scale"] = make(DType::f32, {1}, {in.scale});
  std::vector<double> causal(s.queries * s.keys, 0.0);
  for (int64_t i = 0; i < s.queries; ++i)
    for (int64_t j = 0; j < s.keys; ++j)
      if (j > i + (s.keys - s.queries))
        causal[i * s.keys + j] = -std::numeric_limits<double>::infinity();
  m["causal"] = make(DType::f32, {s.queries, s.keys}, causal);

  ProgramAssembler b("unfused");
  int64_t q = b.input("q", in.q), k = b.input("k", in.k),
          v = b.input("v", in.v);
  std::vector<int64_t> scoreShape = {s.batch, s.heads, s.queries, s.keys};
  int64_t scores = b.arena(DType::f32, scoreShape);
  b.call("matmul", {q, k}, scores,
         {{"transpose_a", false}, {"transpose_b", true}});
  int64_t logits = b.arena(DType::f32, scoreShape);
  b.call("mul", {scores, b.input("scale", m["scale"])}, logits);
  for (const char *mask : {"mask", "causal"}) {
    if (!(std::string(mask) == "mask" ? s.keyPaddingMask : s.causal))
      continue;
    int64_t masked = b.arena(DType::f32, scoreShape);
    b.call("add", {logits, b.input(mask, m[mask])}, masked);
    logits = masked;
  }
  int64_t probs = b.arena(DType::f32, scoreShape);
  b.call("softmax", {logits}, probs, {{"axis", -1}});
  int64_t out =
      b.output("out", DType::f32, {s.batch, s.heads, s.queries, s.valueDim});
  b.call("matmul", {probs, v}, out,
         {{"transpose_a", false}, {"transpose_b", false}});
  if (!s.causal)
    m.erase("causal");
  auto exe = Executable::create(b.program(), {}, "cpu");
  EXPECT_TRUE(exe) << exe.status().message();
  if (!exe)
    return {};
  auto got = exe->run(m);
  EXPECT_TRUE(got) << got.status().message();
  return got ? got->at("out").toDoubles() : std::vector<double>();
}

double maxAbsError(const std::vector<double> &got,
                   const std::vector<double> &want) {
  EXPECT_EQ(got.size(), want.size());
  if (got.size() != want.size())
    return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    double e = std::fabs(got[i] - want[i]);
    if (std::isnan(e))
      return std::numeric_limits<double>::infinity();
    worst = std::max(worst, e);
  }
  return worst;
}

/// Forces the portable attention code for its lifetime.
struct PortablePath {
  explicit PortablePath(bool on) : on(on) {
    cpu::setAttentionPortableForTesting(on);
  }
  ~PortablePath() { cpu::setAttentionPortableForTesting(false); }
  bool on;
};

const Shape kShapes[] = {
    {"s512", 1, 4, 4, 512, 512, 64, 64, false, false},
    {"s512_causal", 1, 4, 4, 512, 512, 64, 64, true, false},
    {"multi_query_causal", 2, 4, 1, 256, 256, 64, 64, true, false},
    {"cross_key_padding", 2, 2, 2, 100, 300, 32, 32, false, true},
    {"odd_dims_causal_sq_lt_sk", 1, 3, 3, 77, 211, 40, 24, true, true},
};

class AttentionNumerics
    : public ::testing::TestWithParam<std::tuple<Shape, bool>> {};

TEST_P(AttentionNumerics, FusedIsAsAccurateAsUnfused) {
  const auto &[shape, portable] = GetParam();
  Inputs in = makeInputs(shape);
  std::vector<double> exact = attentionF64(shape, in);

  PortablePath path(portable);
  std::string impl;
  std::vector<double> fused = runFused(shape, in, "cpu", impl);
  EXPECT_EQ(impl, "cpu:flash_attention");
  std::vector<double> unfused = runUnfused(shape, in);
  std::string refImpl;
  std::vector<double> reference = runFused(shape, in, "reference", refImpl);

  double fusedError = maxAbsError(fused, exact);
  double unfusedError = maxAbsError(unfused, exact);
  double referenceError = maxAbsError(reference, exact);
  RecordProperty("fused_max_abs_error", std::to_string(fusedError));
  RecordProperty("unfused_max_abs_error", std::to_string(unfusedError));
  std::printf("%s%s: max abs error vs f64: fused %.3g, unfused f32 %.3g, "
              "reference %.3g\n",
              shape.name, portable ? " (portable)" : "", fusedError,
              unfusedError, referenceError);
  // The contract: the fused kernel loses at most a factor 2 in accuracy
  // against the unfused f32 chain (both are ~1e-7 here: outputs are means of
  // values in [-1, 1]).
  EXPECT_LE(fusedError, 2 * unfusedError);
  // Sanity bound, in case both went wrong the same way.
  EXPECT_LT(fusedError, 1e-5);
  // The reference accumulates in f64: only the f32 rounding of its output
  // (half an ulp, <= 6e-8 for |x| < 1) separates it from the f64 result.
  EXPECT_LE(referenceError, 6e-8);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionNumerics,
    ::testing::Combine(::testing::ValuesIn(kShapes), ::testing::Bool()),
    [](const auto &info) {
      return std::string(std::get<0>(info.param).name) +
             (std::get<1>(info.param) ? "_portable" : "_avx512_if_available");
    });

//===----------------------------------------------------------------------===//
// The portable path on the differential table's kinds of calls
//===----------------------------------------------------------------------===//

TEST(AttentionPortable, MatchesReferenceWithMasksAndHalfTypes) {
  // The AVX-512 path runs the differential table (BackendDiffTest.cpp); the
  // portable one runs these, with both mask kinds, f16 and bf16.
  PortablePath path(true);
  struct Case {
    DType type;
    std::vector<int64_t> q, k, v;
    std::optional<std::pair<DType, std::vector<int64_t>>> mask;
    bool causal;
    double tol;
    double softcap = 0;
  };
  for (const Case &c : std::vector<Case>{
           {DType::f32,
            {1, 4, 70, 24},
            {1, 2, 101, 24},
            {1, 2, 101, 40},
            std::make_pair(DType::f32, std::vector<int64_t>{70, 101}),
            true,
            1e-5},
           {DType::f32,
            {2, 2, 37, 16},
            {2, 2, 53, 16},
            {2, 2, 53, 16},
            std::make_pair(DType::i1, std::vector<int64_t>{2, 1, 1, 53}),
            false,
            1e-5},
           {DType::f16,
            {1, 2, 65, 32},
            {1, 2, 97, 32},
            {1, 2, 97, 32},
            std::make_pair(DType::i1, std::vector<int64_t>{1, 2, 65, 97}),
            true,
            4e-3},
           {DType::bf16,
            {1, 2, 65, 32},
            {1, 2, 97, 32},
            {1, 2, 97, 32},
            std::make_pair(DType::bf16, std::vector<int64_t>{65, 97}),
            false,
            3e-2},
           {DType::f32,
            {1, 2, 40, 16},
            {1, 2, 70, 16},
            {1, 2, 70, 16},
            std::nullopt,
            true,
            1e-5,
            2.0}}) {
    std::vector<Tensor> ops = {
        make(c.type, c.q, randomValues(numElements(c.q), -2, 2, 1)),
        make(c.type, c.k, randomValues(numElements(c.k), -2, 2, 2)),
        make(c.type, c.v, randomValues(numElements(c.v), -1, 1, 3))};
    if (c.mask) {
      std::vector<double> m =
          randomValues(numElements(c.mask->second), -3, 2, 4);
      if (c.mask->first == DType::i1)
        for (double &x : m)
          x = x > -1 ? 1 : 0;
      ops.push_back(make(c.mask->first, c.mask->second, m));
    }
    std::vector<int64_t> outShape = {c.q[0], c.q[1], c.q[2], c.v[3]};
    json attrs = {{"causal", c.causal}};
    if (c.softcap > 0)
      attrs["softcap"] = c.softcap;
    Program p = singleKernelProgram("attention", ops, attrs, c.type, outShape);
    TensorMap feed;
    for (size_t i = 0; i < ops.size(); ++i)
      feed["in" + std::to_string(i)] = ops[i];
    auto cpu = Executable::create(p, {}, "cpu");
    auto ref = Executable::create(p, {}, "reference");
    ASSERT_TRUE(cpu && ref);
    EXPECT_EQ(cpu->kernelImpls()[0].impl, "cpu:flash_attention");
    auto got = cpu->run(feed), want = ref->run(feed);
    ASSERT_TRUE(got && want) << got.status().message();
    expectClose(got->at("out").toDoubles(), want->at("out").toDoubles(), c.tol,
                c.tol, std::string("portable attention ") + dtypeName(c.type));
  }
}

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

TEST(AttentionErrors, BadOperandsAndAttributesAreStatusErrors) {
  struct Bad {
    const char *what;
    std::vector<std::pair<DType, std::vector<int64_t>>> operands;
    json attrs;
    DType outType;
    std::vector<int64_t> outShape;
    const char *message; // a part of the expected message
  };
  const DType f = DType::f32;
  using Ops = std::vector<std::pair<DType, std::vector<int64_t>>>;
  const Ops good = {{f, {1, 4, 5, 8}}, {f, {1, 2, 6, 8}}, {f, {1, 2, 6, 3}}};
  auto with = [&](size_t i, std::pair<DType, std::vector<int64_t>> o) {
    Ops ops = good;
    if (i == ops.size())
      ops.push_back(o);
    else
      ops[i] = o;
    return ops;
  };
  const json none = json::object();
  const std::vector<int64_t> out = {1, 4, 5, 3};
  for (const Bad &b : std::vector<Bad>{
           {"rank of q", with(0, {f, {4, 5, 8}}), none, f, out,
            "expected rank 4 for 'q', got 3"},
           {"rank of v", with(2, {f, {1, 2, 6, 3, 1}}), none, f, out,
            "expected rank 4 for 'v', got 5"},
           {"heads not a multiple",
            {{f, {1, 4, 5, 8}}, {f, {1, 3, 6, 8}}, {f, {1, 3, 6, 3}}},
            none,
            f,
            out,
            "expected query heads (4) to be a multiple of key/value heads "
            "(3)"},
           {"head dim of k", with(1, {f, {1, 2, 6, 7}}), none, f, out,
            "expected head dim 8 of 'q' in 'k'"},
           {"keys of v", with(2, {f, {1, 2, 7, 3}}), none, f, out,
            "expected 'v' to have the heads and keys of 'k'"},
           {"batch of k", with(1, {f, {2, 2, 6, 8}}), none, f, out,
            "expected batch 1 of 'q' in 'k' and 'v'"},
           {"mask shape", with(3, {f, {5, 7}}), none, f, out,
            "expected 'mask' broadcastable to the scores [1, 4, 5, 6], got "
            "[5, 7]"},
           {"mask that would grow the scores", with(3, {f, {2, 1, 1, 6}}), none,
            f, out, "expected 'mask' broadcastable"},
           {"mask rank", with(3, {f, {1, 1, 1, 5, 6}}), none, f, out,
            "expected 'mask' broadcastable"},
           {"mask dtype", with(3, {DType::i64, {5, 6}}), none, f, out,
            "expected 'mask' of q's element type f32 (additive) or i1 "
            "(boolean), got i64"},
           {"integer q",
            {{DType::i32, {1, 4, 5, 8}},
             {DType::i32, {1, 2, 6, 8}},
             {DType::i32, {1, 2, 6, 3}}},
            none,
            DType::i32,
            out,
            "unsupported element type i32 for 'q', expected a float type"},
           {"mixed dtypes", with(1, {DType::f16, {1, 2, 6, 8}}), none, f, out,
            "expected 'k' of q's element type f32, got f16"},
           {"result shape",
            good,
            none,
            f,
            {1, 4, 5, 8},
            "result buffer is f32 [1, 4, 5, 8], expected f32 [1, 4, 5, 3]"},
           {"scale type",
            good,
            {{"scale", "large"}},
            f,
            out,
            "attribute 'scale' must be a number"},
           {"causal type",
            good,
            {{"causal", "yes"}},
            f,
            out,
            "attribute 'causal' must be a bool"},
           {"too few operands", Ops(good.begin(), good.begin() + 2), none, f,
            out, "expected 3 to 4 operands, got 2"}}) {
    std::vector<Tensor> ops;
    for (const auto &[t, shape] : b.operands)
      ops.push_back(Tensor::zeros(t, shape));
    Program p =
        singleKernelProgram("attention", ops, b.attrs, b.outType, b.outShape);
    TensorMap feed;
    for (size_t i = 0; i < ops.size(); ++i)
      feed["in" + std::to_string(i)] = ops[i];
    for (const char *backend : {"reference", "cpu"}) {
      auto exe = Executable::create(p, {}, backend);
      ASSERT_TRUE(exe) << b.what << ": " << exe.status().message();
      // The cpu factory declines; the reference kernel reports.
      EXPECT_EQ(exe->kernelImpls()[0].impl, "reference") << b.what;
      auto got = exe->run(feed);
      ASSERT_FALSE(got) << b.what << " on " << backend;
      EXPECT_NE(got.status().message().find(b.message), std::string::npos)
          << b.what << " on " << backend << ": " << got.status().message();
    }
  }
}

TEST(AttentionErrors, EmptyShapesRunOnTheReferenceKernel) {
  // No keys: every row is fully excluded, so zeros; no queries: nothing.
  for (int64_t keys : {0, 3}) {
    int64_t queries = keys ? 0 : 4;
    std::vector<Tensor> ops = {Tensor::zeros(DType::f32, {1, 2, queries, 8}),
                               Tensor::zeros(DType::f32, {1, 2, keys, 8}),
                               Tensor::zeros(DType::f32, {1, 2, keys, 5})};
    Program p = singleKernelProgram("attention", ops, {{"causal", true}},
                                    DType::f32, {1, 2, queries, 5});
    auto exe = Executable::create(p, {}, "cpu");
    ASSERT_TRUE(exe) << exe.status().message();
    EXPECT_EQ(exe->kernelImpls()[0].impl, "reference");
    auto got = exe->run({{"in0", ops[0]}, {"in1", ops[1]}, {"in2", ops[2]}});
    ASSERT_TRUE(got) << got.status().message();
    for (double x : got->at("out").toDoubles())
      EXPECT_EQ(x, 0.0);
  }
}

} // namespace
