//===- LinalgTest.cpp - matmul, conv, pooling, norms, softmax -------------===//
//
// Independent references: matmul as a double triple loop over explicitly
// transposed copies; conv2d as im2col + GEMM; pooling by enumerating each
// window's coordinates; norms and softmax by the textbook double formulas.
// Tolerances: f32 1e-5 relative + 1e-5 absolute (sums of up to ~50 terms),
// bf16 matmul 2^-7 relative of the sum of |products|, f64 1e-12.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

using namespace kiln;
using namespace kiln::test;

namespace {

/// Row-major [rows, cols] -> [cols, rows].
std::vector<double> transposed(const std::vector<double> &m, int64_t rows,
                               int64_t cols) {
  std::vector<double> t(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      t[c * rows + r] = m[r * cols + c];
  return t;
}

} // namespace

TEST(ReferenceMatmul, BatchedBroadcastTransposes) {
  const int64_t M = 3, K = 4, N = 5;
  // a: [2, 1, M, K] (or [2,1,K,M] transposed); b: [3, K, N] (or [3,N,K]).
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      std::vector<double> aPlain =
          rounded(DType::f32, {2, 1, M, K}, randomValues(2 * M * K, -1, 1, 21));
      std::vector<double> bPlain =
          rounded(DType::f32, {3, K, N}, randomValues(3 * K * N, -1, 1, 22));
      // Stored operands: transposed copies when the flag is set.
      std::vector<double> aStored, bStored;
      for (int64_t i = 0; i < 2; ++i) {
        std::vector<double> m(aPlain.begin() + i * M * K,
                              aPlain.begin() + (i + 1) * M * K);
        if (ta)
          m = transposed(m, M, K);
        aStored.insert(aStored.end(), m.begin(), m.end());
      }
      for (int64_t i = 0; i < 3; ++i) {
        std::vector<double> m(bPlain.begin() + i * K * N,
                              bPlain.begin() + (i + 1) * K * N);
        if (tb)
          m = transposed(m, K, N);
        bStored.insert(bStored.end(), m.begin(), m.end());
      }
      std::vector<double> want;
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j)
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double s = 0;
              for (int64_t k = 0; k < K; ++k)
                s += aPlain[i * M * K + m * K + k] *
                     bPlain[j * K * N + k * N + n];
              want.push_back(s);
            }
      std::vector<int64_t> aShape = ta ? std::vector<int64_t>{2, 1, K, M}
                                       : std::vector<int64_t>{2, 1, M, K};
      std::vector<int64_t> bShape =
          tb ? std::vector<int64_t>{3, N, K} : std::vector<int64_t>{3, K, N};
      expectClose(runOk("matmul",
                        {make(DType::f32, aShape, aStored),
                         make(DType::f32, bShape, bStored)},
                        {{"transpose_a", ta}, {"transpose_b", tb}}, DType::f32,
                        {2, 3, M, N}),
                  want, 1e-5, 1e-5,
                  "matmul ta=" + std::to_string(ta) +
                      " tb=" + std::to_string(tb));
    }
}

TEST(ReferenceMatmul, LowPrecisionAndIntegers) {
  const int64_t M = 4, K = 33, N = 3;
  std::vector<double> a =
      rounded(DType::bf16, {M, K}, randomValues(M * K, -1, 1, 31));
  std::vector<double> b =
      rounded(DType::bf16, {K, N}, randomValues(K * N, -1, 1, 32));
  std::vector<double> want, mag;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0, g = 0;
      for (int64_t k = 0; k < K; ++k) {
        s += a[m * K + k] * b[k * N + n];
        g += std::fabs(a[m * K + k] * b[k * N + n]);
      }
      want.push_back(s);
      mag.push_back(g);
    }
  for (DType t : {DType::bf16, DType::f16}) {
    std::vector<double> got =
        runOk("matmul", {make(t, {M, K}, a), make(t, {K, N}, b)},
              {{"transpose_a", false}, {"transpose_b", false}}, t, {M, N});
    ASSERT_EQ(got.size(), want.size());
    double eps = t == DType::bf16 ? 1.0 / 128 : 1.0 / 1024;
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], eps * mag[i] + 1e-6) << dtypeName(t) << i;
  }
  std::vector<double> ai = {1, -2, 3, 4, 5, -6}, bi = {7, 8, -9, 10, 11, 12};
  EXPECT_EQ(runOk("matmul",
                  {make(DType::i64, {2, 3}, ai), make(DType::i64, {3, 2}, bi)},
                  {{"transpose_a", false}, {"transpose_b", false}}, DType::i64,
                  {2, 2}),
            (std::vector<double>{58, 24, -83, 10}));
  auto bad = runOp(
      "matmul", {make(DType::f32, {2, 3}, ai), make(DType::f32, {2, 3}, bi)},
      {{"transpose_a", false}, {"transpose_b", false}}, DType::f32, {2, 3});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("contraction"), std::string::npos);
}

TEST(ReferenceConv, MatchesIm2colGemm) {
  struct Case {
    int64_t N, C, H, W, O, KH, KW, groups;
    std::vector<int64_t> strides, pads, dilations;
    bool bias;
  } cases[] = {
      {2, 4, 7, 6, 6, 3, 2, 2, {2, 1}, {1, 0, 2, 1}, {1, 2}, true},
      {1, 3, 5, 5, 2, 3, 3, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, false},
      {1, 4, 6, 6, 4, 3, 3, 4, {1, 2}, {1, 1, 1, 1}, {2, 1}, true}, // depthwise
  };
  for (const Case &c : cases) {
    int64_t CG = c.C / c.groups, OG = c.O / c.groups;
    int64_t sh = c.strides[0], sw = c.strides[1], dh = c.dilations[0],
            dw = c.dilations[1];
    int64_t OH = (c.H + c.pads[0] + c.pads[2] - dh * (c.KH - 1) - 1) / sh + 1;
    int64_t OW = (c.W + c.pads[1] + c.pads[3] - dw * (c.KW - 1) - 1) / sw + 1;
    std::vector<double> x =
        rounded(DType::f32, {c.N, c.C, c.H, c.W},
                randomValues(c.N * c.C * c.H * c.W, -1, 1, 41));
    std::vector<double> w =
        rounded(DType::f32, {c.O, CG, c.KH, c.KW},
                randomValues(c.O * CG * c.KH * c.KW, -1, 1, 42));
    std::vector<double> bias =
        rounded(DType::f32, {c.O}, randomValues(c.O, -1, 1, 43));
    std::vector<double> want(c.N * c.O * OH * OW);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t g = 0; g < c.groups; ++g) {
        // im2col: rows (c, kh, kw), columns (oh, ow); zeros in the padding.
        int64_t rows = CG * c.KH * c.KW, cols = OH * OW;
        std::vector<double> col(rows * cols, 0.0);
        for (int64_t ci = 0; ci < CG; ++ci)
          for (int64_t kh = 0; kh < c.KH; ++kh)
            for (int64_t kw = 0; kw < c.KW; ++kw)
              for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow) {
                  int64_t ih = oh * sh + kh * dh - c.pads[0];
                  int64_t iw = ow * sw + kw * dw - c.pads[1];
                  if (ih >= 0 && ih < c.H && iw >= 0 && iw < c.W)
                    col[((ci * c.KH + kh) * c.KW + kw) * cols + oh * OW + ow] =
                        x[((n * c.C + g * CG + ci) * c.H + ih) * c.W + iw];
                }
        // GEMM: [OG, rows] x [rows, cols].
        for (int64_t o = 0; o < OG; ++o)
          for (int64_t j = 0; j < cols; ++j) {
            double s = c.bias ? bias[g * OG + o] : 0.0;
            for (int64_t r = 0; r < rows; ++r)
              s += w[(g * OG + o) * rows + r] * col[r * cols + j];
            want[(n * c.O + g * OG + o) * cols + j] = s;
          }
      }
    std::vector<Tensor> ins = {make(DType::f32, {c.N, c.C, c.H, c.W}, x),
                               make(DType::f32, {c.O, CG, c.KH, c.KW}, w)};
    if (c.bias)
      ins.push_back(make(DType::f32, {c.O}, bias));
    expectClose(runOk("conv2d", ins,
                      {{"strides", c.strides},
                       {"pads", c.pads},
                       {"dilations", c.dilations},
                       {"groups", c.groups}},
                      DType::f32, {c.N, c.O, OH, OW}),
                want, 1e-5, 1e-5, "conv2d");
  }
  auto bad = runOp("conv2d",
                   {make(DType::f32, {1, 3, 4, 4}, std::vector<double>(48, 0)),
                    make(DType::f32, {2, 3, 2, 2}, std::vector<double>(24, 0))},
                   {{"groups", 2}}, DType::f32, {1, 2, 3, 3});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("groups"), std::string::npos);
}

namespace {
/// Pooling by enumerating window coordinates, ONNX geometry.
std::vector<double> poolReference(const std::vector<double> &x, int64_t NC,
                                  int64_t H, int64_t W, int64_t kh, int64_t kw,
                                  int64_t sh, int64_t sw,
                                  std::vector<int64_t> pads, bool ceilMode,
                                  bool isMax, bool countPad, int64_t &OH,
                                  int64_t &OW) {
  auto outSize = [&](int64_t in, int64_t k, int64_t s, int64_t lo, int64_t hi) {
    double q = double(in + lo + hi - k) / double(s);
    int64_t o = int64_t(ceilMode ? std::ceil(q) : std::floor(q)) + 1;
    if (ceilMode && (o - 1) * s >= in + lo)
      --o;
    return o;
  };
  OH = outSize(H, kh, sh, pads[0], pads[2]);
  OW = outSize(W, kw, sw, pads[1], pads[3]);
  std::vector<double> out;
  for (int64_t p = 0; p < NC; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        std::vector<double> window;
        int64_t padded = 0;
        for (int64_t i = oh * sh - pads[0]; i < oh * sh - pads[0] + kh; ++i)
          for (int64_t j = ow * sw - pads[1]; j < ow * sw - pads[1] + kw; ++j) {
            bool inside = i >= 0 && i < H && j >= 0 && j < W;
            if (inside)
              window.push_back(x[(p * H + i) * W + j]);
            else if (i < H + pads[2] && j < W + pads[3])
              ++padded; // inside the declared padding
          }
        if (isMax) {
          double m = -INFINITY;
          for (double v : window)
            m = std::max(m, v);
          out.push_back(m);
        } else {
          double s = 0;
          for (double v : window)
            s += v;
          out.push_back(s / double(window.size() + (countPad ? padded : 0)));
        }
      }
  return out;
}
} // namespace

TEST(ReferencePool, MaxAndAvgWindows) {
  const int64_t N = 2, C = 2, H = 7, W = 6;
  std::vector<double> x =
      rounded(DType::f32, {N, C, H, W}, randomValues(N * C * H * W, -2, 2, 51));
  struct Case {
    std::vector<int64_t> kernel, strides, pads;
    bool ceil;
  } cases[] = {{{3, 3}, {2, 2}, {1, 1, 1, 1}, false},
               {{3, 2}, {2, 2}, {0, 1, 1, 0}, true},
               {{2, 2}, {1, 1}, {0, 0, 0, 0}, false},
               {{3, 3}, {3, 2}, {1, 0, 1, 1}, true}};
  for (const Case &c : cases)
    for (int mode = 0; mode < 3; ++mode) {
      bool isMax = mode == 0, countPad = mode == 2;
      int64_t OH, OW;
      std::vector<double> want =
          poolReference(x, N * C, H, W, c.kernel[0], c.kernel[1], c.strides[0],
                        c.strides[1], c.pads, c.ceil, isMax, countPad, OH, OW);
      nlohmann::json attrs = {{"kernel", c.kernel},
                              {"strides", c.strides},
                              {"pads", c.pads},
                              {"ceil_mode", c.ceil}};
      if (!isMax)
        attrs["count_include_pad"] = countPad;
      expectClose(runOk(isMax ? "max_pool2d" : "avg_pool2d",
                        {make(DType::f32, {N, C, H, W}, x)}, attrs, DType::f32,
                        {N, C, OH, OW}),
                  want, 1e-6, 1e-6, "pool mode " + std::to_string(mode));
    }
  auto missing = runOp("max_pool2d", {make(DType::f32, {N, C, H, W}, x)}, {},
                       DType::f32, {N, C, H, W});
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("kernel"), std::string::npos);
}

TEST(ReferencePool, GlobalAverage) {
  std::vector<double> x = randomValues(2 * 3 * 4 * 5, -1, 1, 61);
  std::vector<double> want;
  for (int p = 0; p < 6; ++p) {
    double s = 0;
    for (int i = 0; i < 20; ++i)
      s += x[p * 20 + i];
    want.push_back(s / 20);
  }
  expectClose(runOk("global_avg_pool", {make(DType::f64, {2, 3, 4, 5}, x)}, {},
                    DType::f64, {2, 3, 1, 1}),
              want, 1e-14, 1e-12, "global_avg_pool");
}

TEST(ReferenceNorm, BatchNorm) {
  const int64_t N = 2, C = 3, L = 4;
  std::vector<double> x =
      rounded(DType::f32, {N, C, L}, randomValues(N * C * L, -2, 2, 71));
  std::vector<double> sc =
      rounded(DType::f32, {C}, randomValues(C, 0.5, 2, 72));
  std::vector<double> bi = rounded(DType::f32, {C}, randomValues(C, -1, 1, 73));
  std::vector<double> mean =
      rounded(DType::f32, {C}, randomValues(C, -1, 1, 74));
  std::vector<double> var =
      rounded(DType::f32, {C}, randomValues(C, 0.1, 2, 75));
  std::vector<double> want;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t l = 0; l < L; ++l)
        want.push_back((x[(n * C + c) * L + l] - mean[c]) /
                           std::sqrt(var[c] + 1e-3) * sc[c] +
                       bi[c]);
  expectClose(runOk("batch_norm",
                    {make(DType::f32, {N, C, L}, x), make(DType::f32, {C}, sc),
                     make(DType::f32, {C}, bi), make(DType::f32, {C}, mean),
                     make(DType::f32, {C}, var)},
                    {{"epsilon", 1e-3}}, DType::f32, {N, C, L}),
              want, 1e-5, 1e-5, "batch_norm");
}

TEST(ReferenceNorm, LayerNormAndRmsNormTwoPass) {
  const int64_t A = 3, B = 2, D = 5;
  std::vector<double> x =
      rounded(DType::f32, {A, B, D}, randomValues(A * B * D, -3, 3, 81));
  std::vector<double> sc =
      rounded(DType::f32, {B, D}, randomValues(B * D, 0.5, 2, 82));
  std::vector<double> bi =
      rounded(DType::f32, {B, D}, randomValues(B * D, -1, 1, 83));
  // Normalize over the last two dims (axis = -2).
  std::vector<double> wantLn, wantRms;
  for (int64_t a = 0; a < A; ++a) {
    const double *row = &x[a * B * D];
    double mean = 0;
    for (int64_t i = 0; i < B * D; ++i)
      mean += row[i];
    mean /= double(B * D);
    double var = 0, ms = 0;
    for (int64_t i = 0; i < B * D; ++i) {
      var += (row[i] - mean) * (row[i] - mean);
      ms += row[i] * row[i];
    }
    var /= double(B * D);
    ms /= double(B * D);
    for (int64_t i = 0; i < B * D; ++i) {
      wantLn.push_back((row[i] - mean) / std::sqrt(var + 1e-5) * sc[i] + bi[i]);
      wantRms.push_back(row[i] / std::sqrt(ms + 1e-6) * sc[i]);
    }
  }
  expectClose(
      runOk("layer_norm",
            {make(DType::f32, {A, B, D}, x), make(DType::f32, {B, D}, sc),
             make(DType::f32, {B, D}, bi)},
            {{"axis", -2}, {"epsilon", 1e-5}}, DType::f32, {A, B, D}),
      wantLn, 1e-5, 1e-5, "layer_norm");
  expectClose(
      runOk("rms_norm",
            {make(DType::f32, {A, B, D}, x), make(DType::f32, {B, D}, sc)},
            {{"axis", 1}, {"epsilon", 1e-6}}, DType::f32, {A, B, D}),
      wantRms, 1e-5, 1e-5, "rms_norm");
  // bf16 input: statistics in f32, result rounded once (2^-7 relative).
  expectClose(
      runOk("layer_norm",
            {make(DType::bf16, {A, B, D}, x), make(DType::bf16, {B, D}, sc),
             make(DType::bf16, {B, D}, bi)},
            {{"axis", -2}, {"epsilon", 1e-5}}, DType::bf16, {A, B, D}),
      wantLn, 0.02, 1.0 / 64, "layer_norm bf16");
  auto bad = runOp("layer_norm",
                   {make(DType::f32, {A, B, D}, x),
                    make(DType::f32, {D}, {1, 1, 1, 1, 1}),
                    make(DType::f32, {D}, {0, 0, 0, 0, 0})},
                   {{"axis", -2}, {"epsilon", 1e-5}}, DType::f32, {A, B, D});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("scale"), std::string::npos);
}

TEST(ReferenceNorm, SoftmaxAndLogSoftmax) {
  const int64_t A = 2, L = 5, I = 3;
  std::vector<double> x =
      rounded(DType::f32, {A, L, I}, randomValues(A * L * I, -5, 5, 91));
  std::vector<double> wantS(x.size()), wantL(x.size());
  for (int64_t a = 0; a < A; ++a)
    for (int64_t i = 0; i < I; ++i) {
      double sum = 0;
      for (int64_t l = 0; l < L; ++l)
        sum += std::exp(x[(a * L + l) * I + i]);
      for (int64_t l = 0; l < L; ++l) {
        double v = x[(a * L + l) * I + i];
        wantS[(a * L + l) * I + i] = std::exp(v) / sum;
        wantL[(a * L + l) * I + i] = v - std::log(sum);
      }
    }
  expectClose(runOk("softmax", {make(DType::f32, {A, L, I}, x)}, {{"axis", 1}},
                    DType::f32, {A, L, I}),
              wantS, 1e-7, 1e-6, "softmax");
  expectClose(runOk("log_softmax", {make(DType::f32, {A, L, I}, x)},
                    {{"axis", -2}}, DType::f32, {A, L, I}),
              wantL, 1e-6, 1e-6, "log_softmax");
  // Large logits stay finite (max subtracted); an all -inf row is NaN.
  double inf = INFINITY;
  std::vector<double> got =
      runOk("softmax",
            {make(DType::f32, {2, 3}, {1000, 1000, -inf, -inf, -inf, -inf})},
            {{"axis", -1}}, DType::f32, {2, 3});
  expectClose(got, {0.5, 0.5, 0, NAN, NAN, NAN}, 1e-7, 0, "softmax extremes");
}
