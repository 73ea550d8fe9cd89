//===- ReduceShapeTest.cpp - Reductions and shape ops ---------------------===//
//
// Reductions against explicit loops (f32 sums 1e-6 relative; integer exact);
// shape ops against manual index arithmetic (exact: they only move bytes).
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

using namespace kiln;
using namespace kiln::test;

TEST(ReferenceReduce, AxesKeepdimsNegative) {
  const int64_t A = 2, B = 3, C = 4;
  std::vector<double> x =
      rounded(DType::f32, {A, B, C}, randomValues(A * B * C, -3, 3, 101));
  auto at = [&](int64_t a, int64_t b, int64_t c) {
    return x[(a * B + b) * C + c];
  };
  // Reduce over dims 0 and 2 (axes = [-1, 0]).
  std::vector<double> sum, mean, mx, mn;
  for (int64_t b = 0; b < B; ++b) {
    double s = 0, hi = -INFINITY, lo = INFINITY;
    for (int64_t a = 0; a < A; ++a)
      for (int64_t c = 0; c < C; ++c) {
        s += at(a, b, c);
        hi = std::max(hi, at(a, b, c));
        lo = std::min(lo, at(a, b, c));
      }
    sum.push_back(s);
    mean.push_back(s / double(A * C));
    mx.push_back(hi);
    mn.push_back(lo);
  }
  Tensor t = make(DType::f32, {A, B, C}, x);
  for (bool keep : {false, true}) {
    std::vector<int64_t> shape =
        keep ? std::vector<int64_t>{1, B, 1} : std::vector<int64_t>{B};
    nlohmann::json attrs = {{"axes", {-1, 0}}, {"keepdims", keep}};
    expectClose(runOk("reduce_sum", {t}, attrs, DType::f32, shape), sum, 1e-6,
                1e-6, "sum");
    expectClose(runOk("reduce_mean", {t}, attrs, DType::f32, shape), mean, 1e-6,
                1e-6, "mean");
    expectClose(runOk("reduce_max", {t}, attrs, DType::f32, shape), mx, 0, 0,
                "max");
    expectClose(runOk("reduce_min", {t}, attrs, DType::f32, shape), mn, 0, 0,
                "min");
  }
  // Empty axes reduce everything.
  double total = 0;
  for (double v : x)
    total += v;
  expectClose(runOk("reduce_sum", {t},
                    {{"axes", nlohmann::json::array()}, {"keepdims", false}},
                    DType::f32, {}),
              {total}, 1e-5, 1e-6, "sum all");
  // Integers: exact, mean refused.
  Tensor ti = make(DType::i32, {2, 3}, {1, -2, 3, 4, 5, -6});
  EXPECT_EQ(runOk("reduce_sum", {ti}, {{"axes", {1}}, {"keepdims", false}},
                  DType::i32, {2}),
            (std::vector<double>{2, 3}));
  EXPECT_EQ(runOk("reduce_max", {ti}, {{"axes", {0}}, {"keepdims", true}},
                  DType::i32, {1, 3}),
            (std::vector<double>{4, 5, 3}));
  EXPECT_FALSE(runOp("reduce_mean", {ti}, {{"axes", {1}}, {"keepdims", false}},
                     DType::i32, {2})
                   .isOk());
  auto dup = runOp("reduce_sum", {t}, {{"axes", {2, -1}}, {"keepdims", false}},
                   DType::f32, {A, B});
  ASSERT_FALSE(dup.isOk());
  EXPECT_NE(dup.status().message().find("axes"), std::string::npos);
  auto range = runOp("reduce_sum", {t}, {{"axes", {3}}, {"keepdims", false}},
                     DType::f32, {A, B});
  ASSERT_FALSE(range.isOk());
}

TEST(ReferenceReduce, EmptyDim) {
  Tensor e = Tensor::zeros(DType::f32, {2, 0, 3});
  nlohmann::json attrs = {{"axes", {1}}, {"keepdims", false}};
  EXPECT_EQ(runOk("reduce_sum", {e}, attrs, DType::f32, {2, 3}),
            std::vector<double>(6, 0));
  expectClose(runOk("reduce_mean", {e}, attrs, DType::f32, {2, 3}),
              std::vector<double>(6, NAN), 0, 0, "mean empty");
  EXPECT_EQ(runOk("reduce_max", {e}, attrs, DType::f32, {2, 3}),
            std::vector<double>(6, -INFINITY));
  EXPECT_EQ(runOk("reduce_min", {e}, attrs, DType::f32, {2, 3}),
            std::vector<double>(6, INFINITY));
  Tensor ei = Tensor::zeros(DType::i8, {0, 2});
  EXPECT_EQ(runOk("reduce_max", {ei}, {{"axes", {0}}, {"keepdims", true}},
                  DType::i8, {1, 2}),
            std::vector<double>(2, -128));
  EXPECT_EQ(runOk("reduce_min", {ei}, {{"axes", {0}}, {"keepdims", true}},
                  DType::i8, {1, 2}),
            std::vector<double>(2, 127));
}

TEST(ReferenceShape, ReshapeTransposeBroadcast) {
  std::vector<double> x(24);
  for (int i = 0; i < 24; ++i)
    x[i] = i;
  Tensor t = make(DType::i64, {2, 3, 4}, x);
  EXPECT_EQ(runOk("reshape", {t}, {{"shape", {4, 6}}}, DType::i64, {4, 6}), x);
  auto bad = runOp("reshape", {t}, {{"shape", {5, 5}}}, DType::i64, {5, 5});
  ASSERT_FALSE(bad.isOk());
  // perm [2, 0, 1]: out[i][j][k] = x[j][k][i].
  std::vector<double> want;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k)
        want.push_back(x[(j * 3 + k) * 4 + i]);
  EXPECT_EQ(
      runOk("transpose", {t}, {{"perm", {2, 0, 1}}}, DType::i64, {4, 2, 3}),
      want);
  EXPECT_FALSE(
      runOp("transpose", {t}, {{"perm", {0, 0, 1}}}, DType::i64, {2, 2, 3})
          .isOk());
  // broadcast_to [3,1] -> [2,3,4].
  Tensor s = make(DType::f16, {3, 1}, {1, 2, 3});
  std::vector<double> wantB;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        wantB.push_back(j + 1);
  EXPECT_EQ(
      runOk("broadcast_to", {s}, {{"shape", {2, 3, 4}}}, DType::f16, {2, 3, 4}),
      wantB);
  EXPECT_FALSE(
      runOp("broadcast_to", {s}, {{"shape", {2, 4}}}, DType::f16, {2, 4})
          .isOk());
}

TEST(ReferenceShape, ConcatNegativeAxis) {
  Tensor a = make(DType::bf16, {2, 1}, {1, 2});
  Tensor b = make(DType::bf16, {2, 3}, {3, 4, 5, 6, 7, 8});
  Tensor c = make(DType::bf16, {2, 0}, {});
  Tensor d = make(DType::bf16, {2, 2}, {9, 10, 11, 12});
  EXPECT_EQ(runOk("concat", {a, b, c, d}, {{"axis", -1}}, DType::bf16, {2, 6}),
            (std::vector<double>{1, 3, 4, 5, 9, 10, 2, 6, 7, 8, 11, 12}));
  EXPECT_EQ(runOk("concat", {d, d}, {{"axis", 0}}, DType::bf16, {4, 2}),
            (std::vector<double>{9, 10, 11, 12, 9, 10, 11, 12}));
  auto bad = runOp("concat", {a, make(DType::bf16, {3, 1}, {1, 2, 3})},
                   {{"axis", 1}}, DType::bf16, {2, 2});
  ASSERT_FALSE(bad.isOk());
  EXPECT_FALSE(
      runOp("concat", {a, b}, {}, DType::bf16, {2, 4}).isOk()); // axis required
}

TEST(ReferenceShape, SliceNegativeSteps) {
  std::vector<double> x(30);
  for (int i = 0; i < 30; ++i)
    x[i] = i;
  Tensor t = make(DType::f32, {5, 6}, x);
  // dim0: start 4, end -1, step -2 -> rows 4, 2, 0; dim1: 1..6 step 2 -> 1,3,5.
  std::vector<double> want;
  for (int r : {4, 2, 0})
    for (int c : {1, 3, 5})
      want.push_back(r * 6 + c);
  EXPECT_EQ(runOk("slice", {t},
                  {{"starts", {4, 1}}, {"ends", {-1, 6}}, {"steps", {-2, 2}}},
                  DType::f32, {3, 3}),
            want);
  // Reverse a whole dim with step -1, and an empty slice.
  std::vector<double> rev;
  for (int r = 0; r < 5; ++r)
    for (int c = 5; c >= 3; --c)
      rev.push_back(r * 6 + c);
  EXPECT_EQ(runOk("slice", {t},
                  {{"starts", {0, 5}}, {"ends", {5, 2}}, {"steps", {1, -1}}},
                  DType::f32, {5, 3}),
            rev);
  EXPECT_EQ(runOk("slice", {t},
                  {{"starts", {2, 0}}, {"ends", {2, 6}}, {"steps", {1, 1}}},
                  DType::f32, {0, 6}),
            std::vector<double>{});
  auto bad = runOp("slice", {t},
                   {{"starts", {0, 0}}, {"ends", {7, 6}}, {"steps", {1, 1}}},
                   DType::f32, {7, 6});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("dim 0"), std::string::npos);
  EXPECT_FALSE(runOp("slice", {t},
                     {{"starts", {0, 0}}, {"ends", {5, 6}}, {"steps", {0, 1}}},
                     DType::f32, {5, 6})
                   .isOk());
}

TEST(ReferenceShape, GatherOnnxSemantics) {
  std::vector<double> x(24);
  for (int i = 0; i < 24; ++i)
    x[i] = i * 10;
  Tensor data = make(DType::i32, {2, 3, 4}, x);
  // axis 1, indices [[2, -3], [0, -1]] (i32) -> [2, 2, 2, 4].
  std::vector<int64_t> idx = {2, -3, 0, -1};
  std::vector<double> want;
  for (int a = 0; a < 2; ++a)
    for (int64_t i : idx)
      for (int c = 0; c < 4; ++c)
        want.push_back(x[(a * 3 + (i < 0 ? i + 3 : i)) * 4 + c]);
  for (DType it : {DType::i32, DType::i64})
    EXPECT_EQ(runOk("gather", {data, make(it, {2, 2}, {2, -3, 0, -1})},
                    {{"axis", 1}}, DType::i32, {2, 2, 2, 4}),
              want);
  // Scalar index on axis 0 drops the dim.
  EXPECT_EQ(runOk("gather",
                  {make(DType::f32, {3, 2}, {1, 2, 3, 4, 5, 6}),
                   make(DType::i64, {}, {2})},
                  {{"axis", 0}}, DType::f32, {2}),
            (std::vector<double>{5, 6}));
  auto oob = runOp("gather", {data, make(DType::i64, {2}, {1, 3})},
                   {{"axis", 1}}, DType::i32, {2, 2, 4});
  ASSERT_FALSE(oob.isOk());
  EXPECT_NE(oob.status().message().find("index 3"), std::string::npos);
  EXPECT_NE(oob.status().message().find("'gather'"), std::string::npos);
  auto neg = runOp("gather", {data, make(DType::i64, {1}, {-4})}, {{"axis", 1}},
                   DType::i32, {2, 1, 4});
  ASSERT_FALSE(neg.isOk());
}
