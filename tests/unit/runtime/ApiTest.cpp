//===- ApiTest.cpp - Executable, Program and error paths ------------------===//
//
// A hand-built two-layer Program (params, a constant, arena intermediates)
// exercises binding and arena reuse; the error tests check each status names
// what is wrong.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

using namespace kiln;
using namespace kiln::test;

namespace {

bool contains(const Status &s, const std::string &text) {
  return s.message().find(text) != std::string::npos;
}

/// y = relu(x @ w + b)[rows]; h and z live in the arena.
Program mlpProgram() {
  nlohmann::json j = {
      {"format_version", 1},
      {"name", "mlp"},
      {"target", "reference"},
      {"buffers",
       {{{"id", 0},
         {"dtype", "f32"},
         {"shape", {2, 3}},
         {"kind", "input"},
         {"name", "x"}},
        {{"id", 1},
         {"dtype", "f32"},
         {"shape", {3, 4}},
         {"kind", "param"},
         {"name", "fc.weight"}},
        {{"id", 2},
         {"dtype", "f32"},
         {"shape", {4}},
         {"kind", "param"},
         {"name", "fc.bias"}},
        {{"id", 3},
         {"dtype", "f32"},
         {"shape", {2, 4}},
         {"kind", "arena"},
         {"offset", 0}},
        {{"id", 4},
         {"dtype", "f32"},
         {"shape", {2, 4}},
         {"kind", "arena"},
         {"offset", 64}},
        {{"id", 5},
         {"dtype", "i64"},
         {"shape", {3}},
         {"kind", "constant"},
         {"name", "rows"}},
        {{"id", 6},
         {"dtype", "f32"},
         {"shape", {3, 4}},
         {"kind", "output"},
         {"name", "y"}},
        {{"id", 7},
         {"dtype", "i64"},
         {"shape", {1}},
         {"kind", "input"},
         {"name", "step"}},
        {{"id", 8},
         {"dtype", "i64"},
         {"shape", {1}},
         {"kind", "output"},
         {"name", "step_out"}}}},
      {"inputs",
       {{{"name", "x"}, {"buffer", 0}}, {{"name", "step"}, {"buffer", 7}}}},
      {"outputs",
       {{{"name", "y"}, {"buffer", 6}}, {{"name", "step_out"}, {"buffer", 8}}}},
      {"kernels",
       {{{"op", "matmul"},
         {"inputs", {0, 1}},
         {"outputs", {3}},
         {"attrs", {{"transpose_a", false}, {"transpose_b", false}}},
         {"loc", "mlp.cpp:10 (fc)"}},
        {{"op", "add"},
         {"inputs", {3, 2}},
         {"outputs", {4}},
         {"attrs", nlohmann::json::object()},
         {"loc", "mlp.cpp:10 (fc)"}},
        {{"op", "relu"},
         {"inputs", {4}},
         {"outputs", {3}},
         {"loc", "mlp.cpp:11"}},
        {{"op", "gather"},
         {"inputs", {3, 5}},
         {"outputs", {6}},
         {"attrs", {{"axis", 0}}},
         {"loc", "mlp.cpp:12 (pick)"}},
        {{"op", "copy"},
         {"inputs", {7}},
         {"outputs", {8}},
         {"loc", "mlp.cpp:13"}}}},
      {"arena_bytes", 128},
      {"intermediate_bytes", 64}};
  auto p = Program::fromJson(j);
  EXPECT_TRUE(p.isOk()) << p.status().message();
  return p.isOk() ? *p : Program();
}

TensorMap mlpWeights() {
  return {{"fc.weight", make(DType::f32, {3, 4}, randomValues(12, -1, 1, 5))},
          {"fc.bias", make(DType::f32, {4}, {0.1, -0.2, 0.3, -5})},
          {"rows", make(DType::i64, {3}, {1, 0, -1})}};
}

std::vector<double> mlpReference(const std::vector<double> &x,
                                 const TensorMap &w) {
  std::vector<double> wv = w.at("fc.weight").toDoubles(),
                      bv = w.at("fc.bias").toDoubles();
  std::vector<double> h(8);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 4; ++c) {
      double s = bv[c];
      for (int k = 0; k < 3; ++k)
        s += x[r * 3 + k] * wv[k * 4 + c];
      h[r * 4 + c] = std::max(s, 0.0);
    }
  std::vector<double> y;
  for (int r : {1, 0, 1})
    y.insert(y.end(), h.begin() + r * 4, h.begin() + r * 4 + 4);
  return y;
}

TensorMap mlpInputs(const std::vector<double> &x) {
  return {{"x", make(DType::f32, {2, 3}, x)},
          {"step", make(DType::i64, {1}, {7})}};
}

} // namespace

TEST(Executable, RunsProgramAndReusesArena) {
  auto exe = Executable::create(mlpProgram(), mlpWeights());
  ASSERT_TRUE(exe.isOk()) << exe.status().message();
  EXPECT_EQ(exe->backend(), "reference");
  for (unsigned seed : {1u, 2u, 3u}) {
    std::vector<double> x =
        rounded(DType::f32, {2, 3}, randomValues(6, -2, 2, seed));
    auto out = exe->run(mlpInputs(x), RunOptions{true});
    ASSERT_TRUE(out.isOk()) << out.status().message();
    expectClose(out->at("y").toDoubles(), mlpReference(x, exe->weights()), 1e-6,
                1e-6, "mlp");
    EXPECT_EQ(out->at("step_out").toDoubles(), std::vector<double>{7});
    ASSERT_EQ(exe->lastProfile().size(), 5u);
    EXPECT_EQ(exe->lastProfile()[0].op, "matmul");
    EXPECT_EQ(exe->lastProfile()[0].loc, "mlp.cpp:10 (fc)");
    EXPECT_EQ(exe->lastProfile()[0].impl, "reference");
  }
  auto in = exe->inputSignature();
  ASSERT_EQ(in.size(), 2u);
  EXPECT_EQ(in[0].name, "x");
  EXPECT_EQ(in[0].dtype, DType::f32);
  EXPECT_EQ(in[0].shape, (std::vector<int64_t>{2, 3}));
  auto outSig = exe->outputSignature();
  ASSERT_EQ(outSig.size(), 2u);
  EXPECT_EQ(outSig[0].name, "y");
  std::string text = exe->program().toText();
  EXPECT_NE(text.find("matmul"), std::string::npos);
  EXPECT_NE(text.find("mlp.cpp:12 (pick)"), std::string::npos);
}

TEST(Executable, OutputsAreFreshTensors) {
  auto exe = Executable::create(mlpProgram(), mlpWeights());
  ASSERT_TRUE(exe.isOk());
  std::vector<double> x = {1, 2, 3, 4, 5, 6};
  auto first = exe->run(mlpInputs(x));
  ASSERT_TRUE(first.isOk());
  Tensor keep = first->at("y");
  std::vector<double> before = keep.toDoubles();
  auto second = exe->run(mlpInputs({-1, -2, -3, 0, 0, 0}));
  ASSERT_TRUE(second.isOk());
  EXPECT_EQ(keep.toDoubles(), before);
  EXPECT_NE(keep.data(), second->at("y").data());
  // Once the caller lets go of an output, the next run writes into its
  // bytes again, every element of them.
  const void *bytes = second->at("y").data();
  second = Status::error("dropped");
  auto third = exe->run(mlpInputs(x));
  ASSERT_TRUE(third.isOk());
  EXPECT_EQ(third->at("y").data(), bytes);
  EXPECT_EQ(third->at("y").toDoubles(), before);
}

TEST(Executable, WrongInputShapeAndDtype) {
  auto exe = Executable::create(mlpProgram(), mlpWeights());
  ASSERT_TRUE(exe.isOk());
  TensorMap in = mlpInputs({1, 2, 3, 4, 5, 6});
  in["x"] = make(DType::f32, {2, 2}, {1, 2, 3, 4});
  auto r = exe->run(in);
  ASSERT_FALSE(r.isOk());
  EXPECT_TRUE(
      contains(r.status(), "input 'x': expected f32 [2, 3], got f32 [2, 2]"))
      << r.status().message();
  in = mlpInputs({1, 2, 3, 4, 5, 6});
  in["step"] = make(DType::f32, {1}, {7});
  r = exe->run(in);
  ASSERT_FALSE(r.isOk());
  EXPECT_TRUE(
      contains(r.status(), "input 'step': expected i64 [1], got f32 [1]"))
      << r.status().message();
  in["step"] = Tensor();
  r = exe->run(in);
  ASSERT_FALSE(r.isOk());
  EXPECT_TRUE(contains(r.status(), "step"));
}

TEST(Executable, MissingAndUnknownInputs) {
  auto exe = Executable::create(mlpProgram(), mlpWeights());
  ASSERT_TRUE(exe.isOk());
  TensorMap in = mlpInputs({1, 2, 3, 4, 5, 6});
  in.erase("step");
  auto r = exe->run(in);
  ASSERT_FALSE(r.isOk());
  EXPECT_TRUE(contains(r.status(), "missing input 'step'"))
      << r.status().message();
  in = mlpInputs({1, 2, 3, 4, 5, 6});
  in["tokens"] = make(DType::i64, {1}, {0});
  r = exe->run(in);
  ASSERT_FALSE(r.isOk());
  EXPECT_TRUE(contains(r.status(), "unknown input 'tokens'"))
      << r.status().message();
  EXPECT_TRUE(contains(r.status(), "'x'"));
}

TEST(Executable, MissingWeightsAreAllNamed) {
  TensorMap w = mlpWeights();
  w.erase("fc.weight");
  w.erase("rows");
  auto exe = Executable::create(mlpProgram(), w);
  ASSERT_FALSE(exe.isOk());
  EXPECT_TRUE(contains(exe.status(), "'fc.weight'")) << exe.status().message();
  EXPECT_TRUE(contains(exe.status(), "'rows'")) << exe.status().message();
  w = mlpWeights();
  w["fc.bias"] = make(DType::f16, {4}, {0, 0, 0, 0});
  exe = Executable::create(mlpProgram(), w);
  ASSERT_FALSE(exe.isOk());
  EXPECT_TRUE(
      contains(exe.status(), "param 'fc.bias': expected f32 [4], got f16 [4]"))
      << exe.status().message();
}

TEST(Executable, UnknownBackendListsAvailable) {
  auto exe = Executable::create(mlpProgram(), mlpWeights(), "tpu");
  ASSERT_FALSE(exe.isOk());
  EXPECT_TRUE(contains(exe.status(), "unknown backend 'tpu'"));
  EXPECT_TRUE(contains(exe.status(), "reference"));
  auto loaded = Executable::load("/nonexistent.kiln", "tpu");
  ASSERT_FALSE(loaded.isOk());
  EXPECT_TRUE(contains(loaded.status(), "tpu"));
  EXPECT_EQ(availableBackends(),
            (std::vector<std::string>{"reference", "cpu"}));
}

TEST(Executable, UnknownOpAndKernelErrorsNameOpAndLoc) {
  Program p = mlpProgram();
  p.kernels[2].op = "frobnicate";
  auto exe = Executable::create(p, mlpWeights());
  ASSERT_FALSE(exe.isOk());
  EXPECT_TRUE(contains(exe.status(), "frobnicate"));
  EXPECT_TRUE(contains(exe.status(), "mlp.cpp:11"));

  // Gather with an out-of-range constant index fails at run time, naming the
  // kernel, its location and the index.
  TensorMap w = mlpWeights();
  w["rows"] = make(DType::i64, {3}, {0, 2, 1});
  exe = Executable::create(mlpProgram(), w);
  ASSERT_TRUE(exe.isOk());
  auto r = exe->run(mlpInputs({1, 2, 3, 4, 5, 6}));
  ASSERT_FALSE(r.isOk());
  EXPECT_TRUE(contains(r.status(), "kernel 3 'gather' at mlp.cpp:12 (pick)"))
      << r.status().message();
  EXPECT_TRUE(contains(r.status(), "index 2"));

  // A missing required attribute is named.
  p = mlpProgram();
  p.kernels[3].attrs = nlohmann::json::object();
  p.kernels[3].op = "concat";
  exe = Executable::create(p, mlpWeights());
  ASSERT_TRUE(exe.isOk());
  r = exe->run(mlpInputs({1, 2, 3, 4, 5, 6}));
  ASSERT_FALSE(r.isOk());
  EXPECT_TRUE(contains(r.status(), "missing required attribute 'axis'"))
      << r.status().message();
  // A mistyped one too.
  p = mlpProgram();
  p.kernels[0].attrs["transpose_a"] = "yes";
  exe = Executable::create(p, mlpWeights());
  ASSERT_TRUE(exe.isOk());
  r = exe->run(mlpInputs({1, 2, 3, 4, 5, 6}));
  ASSERT_FALSE(r.isOk());
  EXPECT_TRUE(contains(r.status(), "'transpose_a' must be a bool"))
      << r.status().message();
}

TEST(Program, JsonRoundTripAndValidation) {
  Program p = mlpProgram();
  auto again = Program::fromJson(p.toJson());
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->toJson(), p.toJson());

  auto expectError = [&](const std::function<void(nlohmann::json &)> &edit,
                         const std::string &text) {
    nlohmann::json j = p.toJson();
    edit(j);
    auto r = Program::fromJson(j);
    ASSERT_FALSE(r.isOk()) << text;
    EXPECT_TRUE(contains(r.status(), text)) << r.status().message();
  };
  expectError([](auto &j) { j["format_version"] = 2; }, "format_version 2");
  expectError([](auto &j) { j["buffers"][3]["offset"] = 32; }, "buffer 3");
  expectError([](auto &j) { j["buffers"][4]["offset"] = 128; },
              "exceeds arena_bytes");
  expectError([](auto &j) { j["buffers"][1]["dtype"] = "f128"; },
              "unknown dtype 'f128'");
  expectError([](auto &j) { j["buffers"][1]["kind"] = "weird"; },
              "unknown kind 'weird'");
  expectError([](auto &j) { j["buffers"][1]["id"] = 0; }, "duplicate id");
  expectError([](auto &j) { j["kernels"][1]["outputs"] = {1}; },
              "writes buffer 1");
  expectError([](auto &j) { j["inputs"][0]["buffer"] = 6; }, "input");
  expectError([](auto &j) { j.erase("kernels"); }, "missing field 'kernels'");
  expectError(
      [](auto &j) {
        j["buffers"][0]["shape"] = {2, -3};
      },
      "negative dimension");
  EXPECT_FALSE(Program::fromJson(nlohmann::json::array()).isOk());
  // An in-memory Program is validated by create() as well.
  Program bad = p;
  bad.kernels[0].inputs = {42};
  auto exe = Executable::create(bad, mlpWeights());
  ASSERT_FALSE(exe.isOk());
  EXPECT_TRUE(contains(exe.status(), "42"));
}

TEST(Tensor, BasicsAndDtypes) {
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i64,
                  DType::i32, DType::i8, DType::u8, DType::i1})
    EXPECT_EQ(parseDType(dtypeName(t)), t);
  EXPECT_EQ(parseDType("ui8"), DType::u8);
  EXPECT_EQ(parseDType("bool"), DType::i1);
  EXPECT_FALSE(parseDType("f8").has_value());
  EXPECT_EQ(dtypeSize(DType::bf16), 2u);
  EXPECT_EQ(dtypeSize(DType::i1), 1u);
  EXPECT_EQ(shapeToString({1, 16, 64}), "[1, 16, 64]");
  EXPECT_EQ(shapeToString({}), "[]");
  EXPECT_EQ(numElements({}), 1);
  Tensor a = Tensor::fromFloats({2}, {1.5f, -2});
  Tensor shared = a, deep = a.clone();
  a.dataAs<float>()[0] = 9;
  EXPECT_EQ(shared.toDoubles()[0], 9);
  EXPECT_EQ(deep.toDoubles()[0], 1.5);
  EXPECT_FALSE(Tensor().defined());
  EXPECT_EQ(Tensor().toDoubles().size(), 0u);
}

TEST(Executable, InPlaceArenaReuseIsSafe) {
  // The planner may give a result the storage of an operand: pointwise ops
  // run in place, others (transpose here) must read from a copy.
  Program p;
  p.name = "inplace";
  p.arenaBytes = 64;
  p.buffers = {{0, DType::f32, {2, 3}, BufferKind::input, "x", 0},
               {1, DType::f32, {2, 3}, BufferKind::arena, "", 0},
               {2, DType::f32, {3, 2}, BufferKind::arena, "", 0},
               {3, DType::f32, {3, 2}, BufferKind::arena, "", 0},
               {4, DType::f32, {3, 2}, BufferKind::output, "y", 0}};
  p.inputs = {{"x", 0}};
  p.outputs = {{"y", 4}};
  p.kernels = {{"copy", {0}, {1}, nlohmann::json::object(), "a"},
               {"transpose", {1}, {2}, {{"perm", {1, 0}}}, "b"},
               {"add", {2, 2}, {3}, nlohmann::json::object(), "c"},
               {"copy", {3}, {4}, nlohmann::json::object(), "d"}};
  auto exe = Executable::create(p, {});
  ASSERT_TRUE(exe.isOk()) << exe.status().message();
  auto out = exe->run({{"x", make(DType::f32, {2, 3}, {1, 2, 3, 4, 5, 6})}});
  ASSERT_TRUE(out.isOk()) << out.status().message();
  EXPECT_EQ(out->at("y").toDoubles(),
            (std::vector<double>{2, 8, 4, 10, 6, 12}));
}

TEST(Executable, NarrowerResultOverItsOperandReadsACopy) {
  // compare(a, b) -> i1 given a's bytes: the sharing starts at the same
  // address but is not element for element (1 byte over 4). Split across
  // threads, a later part's result bytes would land on f32 elements an
  // earlier part has yet to read; the Executable gives the kernel a copy of
  // a instead. Large enough to be split across threads.
  const int64_t n = 1 << 20;
  Program p;
  p.name = "compare_in_place";
  p.arenaBytes = 8 * n;
  p.buffers = {{0, DType::f32, {n}, BufferKind::input, "x", 0},
               {1, DType::f32, {n}, BufferKind::arena, "", 0},
               {2, DType::f32, {n}, BufferKind::arena, "", 4 * n},
               {3, DType::i1, {n}, BufferKind::arena, "", 0},
               {4, DType::i1, {n}, BufferKind::output, "y", 0}};
  p.inputs = {{"x", 0}};
  p.outputs = {{"y", 4}};
  p.kernels = {{"copy", {0}, {1}, nlohmann::json::object(), "a"},
               {"neg", {0}, {2}, nlohmann::json::object(), "b"},
               {"compare", {1, 2}, {3}, {{"predicate", "gt"}}, "c"},
               {"copy", {3}, {4}, nlohmann::json::object(), "d"}};
  std::vector<double> x(n);
  for (int64_t i = 0; i < n; ++i)
    x[i] = static_cast<double>(i % 7) - 3; // x > -x exactly where x > 0
  for (const char *backend : {"reference", "cpu"}) {
    auto exe = Executable::create(p, {}, backend);
    ASSERT_TRUE(exe.isOk()) << exe.status().message();
    auto out = exe->run({{"x", make(DType::f32, {n}, x)}});
    ASSERT_TRUE(out.isOk()) << out.status().message();
    std::vector<double> y = out->at("y").toDoubles();
    int64_t wrong = 0;
    for (int64_t i = 0; i < n; ++i)
      wrong += y[i] != (x[i] > 0 ? 1 : 0);
    EXPECT_EQ(wrong, 0) << backend;
  }
}

TEST(Executable, WeightOnlyKernelsRunOnceAtLoad) {
  // t = a @ b and u = relu(t) read only weights: computed by create(),
  // skipped by run(), their results kept in storage of their own although
  // the planner gave u's arena slot to v (after u's last use, which is v).
  // y = x @ u reads an input, as does the Program output copy.
  Program p;
  p.name = "weights_only";
  p.arenaBytes = 128;
  p.buffers = {{0, DType::f32, {2, 2}, BufferKind::input, "x", 0},
               {1, DType::f32, {2, 2}, BufferKind::param, "a", 0},
               {2, DType::f32, {2, 2}, BufferKind::param, "b", 0},
               {3, DType::f32, {2, 2}, BufferKind::arena, "", 0},
               {4, DType::f32, {2, 2}, BufferKind::arena, "", 64},
               {5, DType::f32, {2, 2}, BufferKind::arena, "", 64},
               {6, DType::f32, {2, 2}, BufferKind::output, "y", 0}};
  p.inputs = {{"x", 0}};
  p.outputs = {{"y", 6}};
  nlohmann::json mm = {{"transpose_a", false}, {"transpose_b", false}};
  p.kernels = {{"matmul", {1, 2}, {3}, mm, "t"},
               {"relu", {3}, {4}, nlohmann::json::object(), "u"},
               {"matmul", {0, 4}, {5}, mm, "v"},
               {"copy", {5}, {6}, nlohmann::json::object(), "y"}};
  TensorMap weights = {{"a", make(DType::f32, {2, 2}, {1, -2, 3, 4})},
                       {"b", make(DType::f32, {2, 2}, {1, 0, 1, 1})}};
  for (const char *backend : {"reference", "cpu"}) {
    auto exe = Executable::create(p, weights, backend);
    ASSERT_TRUE(exe.isOk()) << exe.status().message();
    std::vector<bool> atLoad;
    for (const KernelImpl &k : exe->kernelImpls())
      atLoad.push_back(k.atLoad);
    EXPECT_EQ(atLoad, (std::vector<bool>{true, true, false, false}));
    // a @ b = [[-1, -2], [7, 4]], relu -> [[0, 0], [7, 4]].
    for (double scale : {1.0, 2.0}) {
      RunOptions options;
      options.profile = true;
      auto out = exe->run(
          {{"x", make(DType::f32, {2, 2}, {scale, 1, 0, scale})}}, options);
      ASSERT_TRUE(out.isOk()) << out.status().message();
      EXPECT_EQ(out->at("y").toDoubles(),
                (std::vector<double>{7, 4, 7 * scale, 4 * scale}))
          << backend;
      ASSERT_EQ(exe->lastProfile().size(), 4u);
      EXPECT_EQ(exe->lastProfile()[0].seconds, 0.0);
      EXPECT_NE(exe->lastProfile()[1].impl.find("(at load)"),
                std::string::npos);
    }
  }
}
