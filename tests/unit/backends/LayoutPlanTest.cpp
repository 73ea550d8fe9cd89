//===- LayoutPlanTest.cpp - The cpu backend's blocked layouts -------------===//
//
// Small multi-kernel Programs (convolutions, pools, a residual, ops that do
// not take blocked layouts) run on the cpu backend and on the reference
// backend: the results must agree, and kernelImpls() must show which calls
// read or wrote channel-blocked buffers, so that the plan is taken exactly
// where it should be (intermediates between layout-aware kernels) and
// nowhere else (Program outputs, buffers a plain kernel reads, channel
// counts that would need more than half a block of padding, a pool whose
// factory declines).
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"
#include "backends/Backend.h"
#include "backends/cpu/Cpu.h"

#include <optional>

using namespace kiln;
using namespace kiln::test;
using nlohmann::json;

namespace {

/// Builds a Program call by call: inputs, params (with seeded values),
/// arena intermediates (each in its own arena slot) and one output.
class ProgramBuilder {
public:
  explicit ProgramBuilder(std::string name) : program_(std::move(name)) {}

  int64_t input(const std::string &name, std::vector<int64_t> shape) {
    int64_t id = program_.input(name, DType::f32, shape);
    inputs_[name] = make(DType::f32, shape,
                         randomValues(numElements(shape), -1, 1, seed_++));
    return id;
  }
  int64_t param(std::vector<int64_t> shape, double lo = -0.5, double hi = 0.5) {
    std::string name = "w" + std::to_string(program_.bufferCount());
    int64_t id = program_.param(name, DType::f32, shape);
    weights_[name] = make(DType::f32, shape,
                          randomValues(numElements(shape), lo, hi, seed_++));
    return id;
  }
  /// A call writing a new buffer: an arena intermediate, or the Program's
  /// output "out" when `output`.
  int64_t call(const std::string &op, std::vector<int64_t> operands,
               std::vector<int64_t> shape, json attrs = json::object(),
               bool output = false) {
    int64_t id = output ? program_.output("out", DType::f32, shape)
                        : program_.arena(DType::f32, shape);
    program_.call(op, std::move(operands), id, std::move(attrs),
                  "layout:" + std::to_string(program_.kernelCount()));
    return id;
  }
  /// conv2d with bound weights [out, in, k, k] and "same" padding.
  int64_t conv(int64_t x, int64_t in, int64_t out, int64_t k,
               std::vector<int64_t> shape, bool output = false) {
    return call("conv2d", {x, param({out, in, k, k})}, std::move(shape),
                {{"pads", {k / 2, k / 2, k / 2, k / 2}}}, output);
  }
  /// fused_conv2d: batch norm (bound parameters), then the residual if any,
  /// then relu, as ResNet's bottleneck blocks.
  int64_t convBn(int64_t x, int64_t in, int64_t out, int64_t k,
                 std::vector<int64_t> shape, std::optional<int64_t> residual,
                 bool output = false, int64_t groups = 1) {
    std::vector<int64_t> ops = {x, param({out, in / groups, k, k})};
    for (int i = 0; i < 4; ++i)
      ops.push_back(i == 3 ? param({out}, 0.5, 2) : param({out}));
    json steps = json::array({"batch_norm"});
    if (residual) {
      ops.push_back(*residual);
      steps.push_back("add_residual");
    }
    steps.push_back("relu");
    return call("fused_conv2d", ops, std::move(shape),
                {{"pads", {k / 2, k / 2, k / 2, k / 2}},
                 {"groups", groups},
                 {"epilogue", steps},
                 {"epsilons", {1e-5}}},
                output);
  }

  const Program &program() const { return program_.program(); }
  const TensorMap &inputs() const { return inputs_; }
  const TensorMap &weights() const { return weights_; }

private:
  ProgramAssembler program_;
  TensorMap inputs_, weights_;
  unsigned seed_ = 5;
};

/// The channel block the cpu backend plans on this machine (0: none).
int64_t plannedBlock() {
  ProgramBuilder p("probe");
  int64_t x = p.input("x", {1, 16, 8, 8});
  int64_t h = p.conv(x, 16, 64, 3, {1, 64, 8, 8});
  p.conv(h, 64, 16, 3, {1, 16, 8, 8}, /*output=*/true);
  auto cpu = getBackend("cpu");
  EXPECT_TRUE(cpu) << cpu.status().message();
  return cpu ? (*cpu)->planLayouts(p.program())[h].channelBlock : 0;
}

/// Runs the Program on cpu and reference, checks the outputs agree, and
/// returns the cpu kernels' implementation names.
std::vector<std::string> runBoth(ProgramBuilder &p) {
  auto ref = Executable::create(p.program(), p.weights(), "reference");
  EXPECT_TRUE(ref) << ref.status().message();
  auto cpu = Executable::create(p.program(), p.weights(), "cpu");
  EXPECT_TRUE(cpu) << cpu.status().message();
  if (!ref || !cpu)
    return {};
  auto want = ref->run(p.inputs());
  EXPECT_TRUE(want) << want.status().message();
  // Twice: prepared state must survive runs.
  for (int run = 0; run < 2 && want; ++run) {
    auto got = cpu->run(p.inputs());
    EXPECT_TRUE(got) << got.status().message();
    if (!got)
      break;
    // f32 convolutions in different summation orders, a few layers deep.
    expectClose(got->at("out").toDoubles(), want->at("out").toDoubles(), 1e-4,
                1e-4, p.program().name);
  }
  std::vector<std::string> impls;
  for (const KernelImpl &k : cpu->kernelImpls())
    impls.push_back(k.impl);
  return impls;
}

class LayoutPlan : public ::testing::Test {
protected:
  void SetUp() override {
    block_ = plannedBlock();
    if (block_ == 0)
      GTEST_SKIP() << "oneDNN picks no channel-blocked layout for f32 "
                      "convolutions on this machine; nothing is planned";
  }
  int64_t block_ = 0;
};

TEST_F(LayoutPlan, ConvChainStaysBlocked) {
  // stem conv (3 channels, plain input) -> max pool -> 1x1 -> 3x3 -> 1x1
  // with residual -> global average pool -> output.
  ProgramBuilder p("chain");
  int64_t x = p.input("x", {2, 3, 16, 16});
  int64_t s = p.convBn(x, 3, 32, 3, {2, 32, 16, 16}, std::nullopt);
  int64_t m =
      p.call("max_pool2d", {s}, {2, 32, 8, 8},
             {{"kernel", {3, 3}}, {"strides", {2, 2}}, {"pads", {1, 1, 1, 1}}});
  int64_t a = p.convBn(m, 32, 16, 1, {2, 16, 8, 8}, std::nullopt);
  int64_t b = p.convBn(a, 16, 16, 3, {2, 16, 8, 8}, std::nullopt);
  int64_t c = p.convBn(b, 16, 32, 1, {2, 32, 8, 8}, m);
  p.call("global_avg_pool", {c}, {2, 32, 1, 1}, json::object(),
         /*output=*/true);
  std::vector<std::string> impls = runBoth(p);
  EXPECT_EQ(impls, (std::vector<std::string>{
                       "onednn:fused_conv2d(blocked)",
                       "onednn:max_pool2d(blocked)",
                       "onednn:fused_conv2d(blocked)",
                       "onednn:fused_conv2d(blocked)",
                       "onednn:fused_conv2d(blocked)",
                       "cpu:global_avg_pool(blocked)",
                   }));
}

TEST_F(LayoutPlan, OutputsAndPlainReadersStayPlain) {
  // h1 is read by tanh (not layout-aware): plain. h2 is blocked; the last
  // conv reads it blocked and writes the plain Program output.
  ProgramBuilder p("plain_readers");
  int64_t x = p.input("x", {1, 16, 6, 6});
  int64_t h1 = p.conv(x, 16, 32, 3, {1, 32, 6, 6});
  int64_t r = p.call("tanh", {h1}, {1, 32, 6, 6});
  int64_t h2 = p.conv(r, 32, 32, 1, {1, 32, 6, 6});
  p.conv(h2, 32, 16, 3, {1, 16, 6, 6}, /*output=*/true);
  EXPECT_EQ(runBoth(p), (std::vector<std::string>{
                            "onednn:conv2d",
                            "cpu:tanh",
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                        }));
}

TEST_F(LayoutPlan, ChannelsPaddedByMoreThanHalfStayPlain) {
  // block + 4 channels would take a second block, 12 of its 16 (or 8)
  // lanes padding: plain (see PaddedChannelsStayBlocked for narrower
  // padding).
  ProgramBuilder p("odd_channels");
  int64_t x = p.input("x", {1, 8, 6, 6});
  int64_t h = p.conv(x, 8, block_ + 4, 3, {1, block_ + 4, 6, 6});
  p.conv(h, block_ + 4, 8, 3, {1, 8, 6, 6}, /*output=*/true);
  EXPECT_EQ(runBoth(p),
            (std::vector<std::string>{"onednn:conv2d", "onednn:conv2d"}));
}

TEST_F(LayoutPlan, GroupedConvolutionsStayBlocked) {
  // conv -> grouped 3x3 (4 channels per group: ResNeXt) -> conv ->
  // depthwise 3x3 -> grouped 3x3 with a block of channels per group ->
  // conv. oneDNN has no kernel for 4 channels per group on the blocked
  // layout (its reference kernel: 308 ms for ResNeXt-50's first grouped
  // layer); that convolution reorders its blocked operands into the layout
  // oneDNN picks, so the 1x1 convolutions around it stay blocked.
  ProgramBuilder p("grouped");
  int64_t c = 2 * block_;
  int64_t x = p.input("x", {1, c, 8, 8});
  auto grouped = [&](int64_t in, int64_t groups) {
    return p.call("conv2d", {in, p.param({c, c / groups, 3, 3})}, {1, c, 8, 8},
                  {{"pads", {1, 1, 1, 1}}, {"groups", groups}});
  };
  int64_t a = p.conv(x, c, c, 1, {1, c, 8, 8});
  int64_t g4 = grouped(a, c / 4);
  int64_t b = p.conv(g4, c, c, 1, {1, c, 8, 8});
  int64_t dw = grouped(b, c);
  int64_t gb = grouped(dw, 2);
  p.conv(gb, c, c, 1, {1, c, 8, 8}, /*output=*/true);
  EXPECT_EQ(runBoth(p), (std::vector<std::string>{
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                        }));
}

TEST_F(LayoutPlan, GroupedConvolutionOnPaddedChannelsStaysBlocked) {
  // 1.5 blocks of channels (padded to 2 blocks in the blocked layout), 4
  // per group: the grouped convolution reorders from and to the padded
  // blocked buffers; the padding stays zero for the 1x1 after it.
  ProgramBuilder p("grouped_padded");
  int64_t c = block_ + block_ / 2;
  int64_t x = p.input("x", {2, c, 6, 6});
  int64_t a = p.conv(x, c, c, 1, {2, c, 6, 6});
  int64_t g = p.call("conv2d", {a, p.param({c, 4, 3, 3})}, {2, c, 6, 6},
                     {{"pads", {1, 1, 1, 1}}, {"groups", c / 4}});
  p.conv(g, c, c, 1, {2, c, 6, 6}, /*output=*/true);
  EXPECT_EQ(runBoth(p), (std::vector<std::string>{
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                        }));
}

TEST_F(LayoutPlan, GroupedConvolutionWithAResidualRunsPlain) {
  // The same grouped convolution adding a residual: the layout oneDNN
  // picks for it is not the residual's, so its factory declines the
  // blocked buffers and they become plain (see
  // DecliningFactoryMakesItsBuffersPlain); no reference kernel runs.
  ProgramBuilder p("grouped_residual");
  int64_t c = 2 * block_;
  int64_t x = p.input("x", {1, c, 8, 8});
  int64_t a = p.conv(x, c, c, 1, {1, c, 8, 8});
  int64_t g = p.convBn(a, c, c, 3, {1, c, 8, 8}, a, false, c / 4);
  p.conv(g, c, c, 1, {1, c, 8, 8}, /*output=*/true);
  EXPECT_EQ(runBoth(p), (std::vector<std::string>{
                            "onednn:conv2d",
                            "onednn:fused_conv2d",
                            "onednn:conv2d",
                        }));
}

TEST_F(LayoutPlan, PoolsBetweenAPlainAndABlockedBufferRunBlocked) {
  // conv, conv -> concat (plain) -> max pool -> conv (blocked), and the
  // same with an average pool: the pools read a plain buffer and write a
  // blocked one (GoogLeNet's and DenseNet's pools after a concat). oneDNN
  // has only its reference kernel for that mix; the pool runs blocked, its
  // source reordered in. Checked against the reference backend.
  for (const char *pool : {"max_pool2d", "avg_pool2d"}) {
    ProgramBuilder p(std::string("pool_after_concat_") + pool);
    int64_t c = block_;
    int64_t x = p.input("x", {1, c, 8, 8});
    int64_t a = p.conv(x, c, c, 1, {1, c, 8, 8});
    int64_t b = p.conv(x, c, c, 3, {1, c, 8, 8});
    int64_t cat = p.call("concat", {a, b}, {1, 2 * c, 8, 8}, {{"axis", 1}});
    int64_t m = p.call(
        pool, {cat}, {1, 2 * c, 8, 8},
        {{"kernel", {3, 3}}, {"strides", {1, 1}}, {"pads", {1, 1, 1, 1}}});
    p.conv(m, 2 * c, c, 3, {1, c, 8, 8}, /*output=*/true);
    std::vector<std::string> impls = runBoth(p);
    ASSERT_EQ(impls.size(), 5u);
    EXPECT_EQ(impls[3], std::string("onednn:") + pool + "(blocked)");
    EXPECT_EQ(impls[4], "onednn:conv2d(blocked)");
    // The reverse: a blocked source and the plain Program output, the
    // result reordered out.
    ProgramBuilder q(std::string("pool_into_output_") + pool);
    int64_t y = q.input("y", {1, c, 8, 8});
    int64_t h = q.conv(y, c, c, 3, {1, c, 8, 8});
    int64_t h2 = q.conv(h, c, c, 3, {1, c, 8, 8});
    q.call(pool, {h2}, {1, c, 4, 4}, {{"kernel", {2, 2}}, {"strides", {2, 2}}},
           /*output=*/true);
    impls = runBoth(q);
    ASSERT_EQ(impls.size(), 3u);
    EXPECT_EQ(impls[2], std::string("onednn:") + pool + "(blocked)");
  }
}

TEST_F(LayoutPlan, Relu6RunsAsOneClipOnBlockedResults) {
  // MobileNet V2's inverted residual: 1x1 conv + ReLU6 -> depthwise 3x3 +
  // ReLU6 -> 1x1 conv, ReLU6 as epilogue steps max 0, min 6 (one oneDNN
  // clip post-op on the blocked results). Inputs in [-1, 1] with weights up
  // to 0.5 reach both bounds of a ReLU6 scaled down to [0, 0.3].
  ProgramBuilder p("relu6");
  int64_t c = block_, wide = 4 * block_;
  int64_t x = p.input("x", {1, c, 8, 8});
  json relu6 = {{"epilogue", {"max", "min"}}, {"scales", {0.0, 0.3}}};
  json expand = relu6;
  int64_t a = p.call("fused_conv2d", {x, p.param({wide, c, 1, 1})},
                     {1, wide, 8, 8}, expand);
  json depthwise = relu6;
  depthwise["groups"] = wide;
  depthwise["pads"] = {1, 1, 1, 1};
  int64_t d = p.call("fused_conv2d", {a, p.param({wide, 1, 3, 3})},
                     {1, wide, 8, 8}, depthwise);
  int64_t e = p.conv(d, wide, c, 1, {1, c, 8, 8});
  p.conv(e, c, c, 1, {1, c, 8, 8}, /*output=*/true);
  EXPECT_EQ(runBoth(p), (std::vector<std::string>{
                            "onednn:fused_conv2d(blocked)",
                            "onednn:fused_conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                        }));
}

TEST_F(LayoutPlan, SqueezeExcitationScalesBlockedActivations) {
  // EfficientNet's block: 1x1 conv -> depthwise 3x3 + silu -> global
  // average pool -> 1x1 conv + silu -> 1x1 conv + sigmoid (the gate,
  // [1, C, 1, 1]) -> mul(gate, x) -> 1x1 conv. The mul reads the depthwise
  // result and writes its own result blocked (the gate is per-channel, the
  // same bytes in either layout), so the depthwise conv runs its blocked
  // kernel with the silu as a post-op instead of reordering to plain.
  ProgramBuilder p("squeeze_excitation");
  int64_t c = block_, wide = 4 * block_, squeeze = 4;
  int64_t x = p.input("x", {1, c, 8, 8});
  int64_t a = p.conv(x, c, wide, 1, {1, wide, 8, 8});
  int64_t d = p.call(
      "fused_conv2d", {a, p.param({wide, 1, 3, 3})}, {1, wide, 8, 8},
      {{"groups", wide}, {"pads", {1, 1, 1, 1}}, {"epilogue", {"silu"}}});
  int64_t pooled = p.call("global_avg_pool", {d}, {1, wide, 1, 1});
  int64_t s1 = p.call("fused_conv2d", {pooled, p.param({squeeze, wide, 1, 1})},
                      {1, squeeze, 1, 1}, {{"epilogue", {"silu"}}});
  int64_t gate = p.call("fused_conv2d", {s1, p.param({wide, squeeze, 1, 1})},
                        {1, wide, 1, 1}, {{"epilogue", {"sigmoid"}}});
  int64_t scaled = p.call("mul", {gate, d}, {1, wide, 8, 8});
  // A binary of two full-shape blocked operands (a residual add written as
  // its own op) stays blocked too.
  int64_t e = p.conv(scaled, wide, wide, 1, {1, wide, 8, 8});
  int64_t sum = p.call("add", {scaled, e}, {1, wide, 8, 8});
  p.conv(sum, wide, c, 1, {1, c, 8, 8}, /*output=*/true);
  std::vector<std::string> impls = runBoth(p);
  ASSERT_EQ(impls.size(), 9u);
  EXPECT_EQ(impls[1], "onednn:fused_conv2d(blocked)");
  EXPECT_EQ(impls[2], "cpu:global_avg_pool(blocked)");
  EXPECT_EQ(impls[5], "onednn:binary(blocked)");
  EXPECT_EQ(impls[6], "onednn:conv2d(blocked)");
  EXPECT_EQ(impls[7], "onednn:binary(blocked)");
  EXPECT_EQ(impls[8], "onednn:conv2d(blocked)");

  // A broadcast that is not per-channel ([1, 1, H, W]) keeps the binary's
  // buffers plain.
  ProgramBuilder q("spatial_broadcast");
  int64_t y = q.input("y", {1, c, 8, 8});
  int64_t mask = q.input("mask", {1, 1, 8, 8});
  int64_t h = q.conv(y, c, c, 3, {1, c, 8, 8});
  int64_t m = q.call("mul", {h, mask}, {1, c, 8, 8});
  q.conv(m, c, c, 3, {1, c, 8, 8}, /*output=*/true);
  impls = runBoth(q);
  ASSERT_EQ(impls.size(), 3u);
  EXPECT_EQ(impls[1].find("(blocked)"), std::string::npos) << impls[1];
  EXPECT_EQ(impls[2], "onednn:conv2d");
}

TEST_F(LayoutPlan, PaddedChannelsStayBlocked) {
  // MobileNet V2/V3 widths that are not a multiple of the block (24 and 72
  // for a block of 16) are blocked with their channels padded to a whole
  // block, stored by the Executable outside the arena: 1x1 conv -> depthwise
  // -> squeeze-excitation (pool, two convs, a [1, C, 1, 1] gate) -> mul by
  // the gate -> 1x1 conv with a residual -> max pool -> global average pool.
  // Padded channels must stay zero (a conv multiplies them by zero weights,
  // so a NaN there would spread into every channel); a div by the gate
  // (0 / 0 there, oneDNN's reference kernel only) keeps its buffers plain.
  ProgramBuilder p("padded");
  int64_t c = block_ + block_ / 2, wide = 4 * block_ + block_ / 2;
  int64_t x = p.input("x", {1, c, 8, 8});
  int64_t a = p.conv(x, c, c, 3, {1, c, 8, 8});
  int64_t e = p.conv(a, c, wide, 1, {1, wide, 8, 8});
  int64_t d = p.call(
      "fused_conv2d", {e, p.param({wide, 1, 3, 3})}, {1, wide, 8, 8},
      {{"groups", wide}, {"pads", {1, 1, 1, 1}}, {"epilogue", {"relu"}}});
  int64_t pooled = p.call("global_avg_pool", {d}, {1, wide, 1, 1});
  int64_t s1 = p.conv(pooled, wide, 8, 1, {1, 8, 1, 1});
  int64_t gate =
      p.call("fused_conv2d", {s1, p.param({wide, 8, 1, 1})}, {1, wide, 1, 1},
             {{"epilogue", {"sigmoid", "shift"}}, {"scales", {0.5}}});
  int64_t scaled = p.call("mul", {d, gate}, {1, wide, 8, 8});
  int64_t r = p.convBn(scaled, wide, c, 1, {1, c, 8, 8}, a);
  int64_t m =
      p.call("max_pool2d", {r}, {1, c, 4, 4},
             {{"kernel", {2, 2}}, {"strides", {2, 2}}, {"pads", {0, 0, 0, 0}}});
  p.call("global_avg_pool", {m}, {1, c, 1, 1}, json::object(),
         /*output=*/true);
  EXPECT_EQ(runBoth(p), (std::vector<std::string>{
                            "onednn:conv2d(blocked)",
                            "onednn:conv2d(blocked)",
                            "onednn:fused_conv2d(blocked)",
                            "cpu:global_avg_pool(blocked)",
                            "onednn:conv2d",
                            "onednn:fused_conv2d(blocked)",
                            "onednn:binary(blocked)",
                            "onednn:fused_conv2d(blocked)",
                            "onednn:max_pool2d(blocked)",
                            "cpu:global_avg_pool(blocked)",
                        }));
  ProgramBuilder v("padded_div");
  int64_t z = v.input("z", {1, wide, 8, 8});
  int64_t zc = v.conv(z, wide, wide, 1, {1, wide, 8, 8});
  int64_t g = v.call("fused_conv2d",
                     {v.input("s", {1, 8, 1, 1}), v.param({wide, 8, 1, 1})},
                     {1, wide, 1, 1}, {{"epilogue", {"sigmoid"}}});
  int64_t q1 = v.call("div", {zc, g}, {1, wide, 8, 8});
  v.conv(q1, wide, c, 1, {1, c, 8, 8}, /*output=*/true);
  std::vector<std::string> impls = runBoth(v);
  ASSERT_EQ(impls.size(), 4u);
  EXPECT_EQ(impls[2], "onednn:binary");
  EXPECT_EQ(impls[3], "onednn:conv2d");
}

TEST_F(LayoutPlan, DepthwiseFromAPlainSourceRunsOnAJitKernel) {
  // ShuffleNet V2's downsampling branch: a depthwise 3x3 stride-2
  // convolution reads the plain result of a channel shuffle and writes a
  // blocked (padded) buffer for the 1x1 convolution after it. Left to pick
  // the source layout, oneDNN 2.6 chose its reference kernel (NHWC source,
  // 116 channels: 0.2 GFLOP/s); the source is reordered into the blocked
  // layout instead.
  ProgramBuilder p("depthwise_plain_source");
  int64_t c = 7 * block_ + block_ / 4;
  int64_t x = p.input("x", {1, c, 28, 28});
  int64_t d =
      p.call("conv2d", {x, p.param({c, 1, 3, 3})}, {1, c, 14, 14},
             {{"groups", c}, {"strides", {2, 2}}, {"pads", {1, 1, 1, 1}}});
  int64_t e = p.conv(d, c, c, 1, {1, c, 14, 14});
  p.call("global_avg_pool", {e}, {1, c, 1, 1}, json::object(),
         /*output=*/true);
  std::vector<std::string> impls = runBoth(p);
  ASSERT_EQ(impls.size(), 3u);
  EXPECT_EQ(impls[0], "onednn:conv2d(blocked)");
  EXPECT_EQ(impls[1], "onednn:conv2d(blocked)");
}

TEST_F(LayoutPlan, ChannelConcatOfWholeBlocksStaysBlocked) {
  // SqueezeNet's fire module: squeeze 1x1 -> expand 1x1 and expand 3x3,
  // concatenated along the channels -> the next squeeze. With every
  // operand a whole number of blocks the concat copies blocked bytes and
  // the convolutions around it stay blocked; one operand that is not (a
  // third of a block) makes the concat and its operands plain. Two images:
  // each operand's part of each image is its own run.
  for (bool whole : {true, false}) {
    ProgramBuilder p(whole ? "fire" : "fire_partial");
    int64_t e = whole ? 2 * block_ : block_ / 3;
    int64_t x = p.input("x", {2, 4 * block_, 10, 10});
    int64_t s = p.conv(x, 4 * block_, block_, 1, {2, block_, 10, 10});
    int64_t a = p.conv(s, block_, e, 1, {2, e, 10, 10});
    int64_t b = p.conv(s, block_, 2 * block_, 3, {2, 2 * block_, 10, 10});
    int64_t cat =
        p.call("concat", {a, b}, {2, e + 2 * block_, 10, 10}, {{"axis", 1}});
    int64_t n = p.conv(cat, e + 2 * block_, block_, 1, {2, block_, 10, 10});
    p.call("global_avg_pool", {n}, {2, block_, 1, 1}, json::object(),
           /*output=*/true);
    std::vector<std::string> impls = runBoth(p);
    ASSERT_EQ(impls.size(), 6u);
    EXPECT_EQ(impls[3], whole ? "cpu:concat(blocked)" : "cpu:concat");
    if (whole)
      EXPECT_EQ(impls[1], "onednn:conv2d(blocked)");
  }
}

TEST_F(LayoutPlan, DenseLayerStaysBlocked) {
  // DenseNet's dense layer: concat -> batch norm -> relu -> 1x1 conv ->
  // batch norm folded -> relu -> 3x3 conv, the concat growing by the 3x3
  // conv's result. Batch norm and relu on whole blocks run blocked, so no
  // buffer of the layer is reordered; with a part of a block (the growth
  // a third of one) all of them stay plain.
  for (bool whole : {true, false}) {
    ProgramBuilder p(whole ? "dense" : "dense_partial");
    int64_t g = whole ? block_ : block_ / 3, c = 2 * block_;
    int64_t x = p.input("x", {2, 8, 6, 6});
    int64_t a = p.conv(x, 8, c, 3, {2, c, 6, 6});
    int64_t b = p.conv(a, c, g, 3, {2, g, 6, 6});
    int64_t cat = p.call("concat", {a, b}, {2, c + g, 6, 6}, {{"axis", 1}});
    int64_t n = p.call("batch_norm",
                       {cat, p.param({c + g}), p.param({c + g}),
                        p.param({c + g}), p.param({c + g}, 0.5, 2)},
                       {2, c + g, 6, 6}, {{"epsilon", 1e-5}});
    int64_t r = p.call("relu", {n}, {2, c + g, 6, 6});
    int64_t d = p.conv(r, c + g, block_, 1, {2, block_, 6, 6});
    p.call("global_avg_pool", {d}, {2, block_, 1, 1}, json::object(),
           /*output=*/true);
    std::vector<std::string> impls = runBoth(p);
    ASSERT_EQ(impls.size(), 7u);
    EXPECT_EQ(impls[2], whole ? "cpu:concat(blocked)" : "cpu:concat");
    EXPECT_EQ(impls[3], whole ? "cpu:batch_norm(blocked)" : "cpu:batch_norm");
    EXPECT_EQ(impls[4], whole ? "cpu:relu(blocked)" : "cpu:relu");
  }
}

TEST_F(LayoutPlan, ResidualOfAPlainResultStaysPlain) {
  // The residual t is only read by convolutions, but the one that adds it
  // writes the plain Program output, so t is read plain.
  ProgramBuilder p("plain_residual");
  int64_t x = p.input("x", {1, 16, 6, 6});
  int64_t t = p.convBn(x, 16, 32, 1, {1, 32, 6, 6}, std::nullopt);
  int64_t h = p.convBn(t, 32, 16, 3, {1, 16, 6, 6}, std::nullopt);
  p.convBn(h, 16, 32, 1, {1, 32, 6, 6}, t, /*output=*/true);
  EXPECT_EQ(runBoth(p), (std::vector<std::string>{
                            "onednn:fused_conv2d",
                            "onednn:fused_conv2d(blocked)",
                            "onednn:fused_conv2d(blocked)",
                        }));
}

TEST_F(LayoutPlan, DecliningFactoryMakesItsBuffersPlain) {
  // oneDNN cannot count padding of a ceil_mode extension: the pool's
  // factory declines and the reference kernel (plain only) takes the call,
  // so both buffers around it become plain and the convolutions are
  // prepared again for plain layouts.
  ProgramBuilder p("declined_pool");
  int64_t x = p.input("x", {1, 16, 7, 7});
  int64_t h = p.conv(x, 16, 32, 3, {1, 32, 7, 7});
  int64_t m = p.call("avg_pool2d", {h}, {1, 32, 4, 4},
                     {{"kernel", {2, 2}},
                      {"strides", {2, 2}},
                      {"ceil_mode", true},
                      {"count_include_pad", true}});
  p.conv(m, 32, 16, 3, {1, 16, 4, 4}, /*output=*/true);
  auto cpu = getBackend("cpu");
  ASSERT_TRUE(cpu);
  std::vector<Layout> planned = (*cpu)->planLayouts(p.program());
  EXPECT_EQ(planned[h].channelBlock, block_);
  EXPECT_EQ(planned[m].channelBlock, block_);
  EXPECT_EQ(runBoth(p), (std::vector<std::string>{
                            "onednn:conv2d",
                            "reference",
                            "onednn:conv2d",
                        }));
}

TEST_F(LayoutPlan, LargeThreeByThreeConvolutionsRunWinograd) {
  // 3x3 stride-1 convolutions with at least 196 output pixels run oneDNN's
  // Winograd kernels (see prepareConv); one that adds a residual (a binary
  // post-op, which oneDNN's Winograd kernels lack), a 1x1, a strided 3x3
  // and one with too few outputs do not. The numbers match the reference
  // kernels (runBoth), and match again with Winograd turned off.
  auto build = [](ProgramBuilder &p) {
    int64_t x = p.input("x", {1, 32, 16, 16});
    int64_t a = p.convBn(x, 32, 32, 3, {1, 32, 16, 16}, std::nullopt);
    int64_t b = p.convBn(a, 32, 32, 3, {1, 32, 16, 16}, a);
    int64_t c = p.convBn(b, 32, 64, 1, {1, 64, 16, 16}, std::nullopt);
    int64_t d = p.call("conv2d", {c, p.param({64, 64, 3, 3})}, {1, 64, 8, 8},
                       {{"pads", {1, 1, 1, 1}}, {"strides", {2, 2}}});
    p.conv(d, 64, 32, 3, {1, 32, 8, 8}, /*output=*/true);
  };
  if (!cpu::hasAvx512())
    GTEST_SKIP() << "oneDNN 2.6 has Winograd kernels for AVX-512 only, and "
                    "this CPU has no AVX-512";
  ProgramBuilder p("winograd");
  build(p);
  std::vector<std::string> impls = runBoth(p);
  EXPECT_EQ(impls, (std::vector<std::string>{
                       "onednn:fused_conv2d(blocked)(winograd)",
                       "onednn:fused_conv2d(blocked)",
                       "onednn:fused_conv2d(blocked)",
                       "onednn:conv2d(blocked)",
                       "onednn:conv2d(blocked)",
                   }));

  // Enough output pixels over the batch, but images too small for a tile
  // (1 x 1, 2 x 2, 1 x 300): the direct kernel.
  for (std::vector<int64_t> shape :
       {std::vector<int64_t>{256, 32, 1, 1}, {64, 32, 2, 2}, {1, 32, 1, 300}}) {
    ProgramBuilder small("winograd_small_images");
    small.conv(small.input("x", shape), 32, 32, 3, shape, /*output=*/true);
    for (const std::string &impl : runBoth(small))
      EXPECT_EQ(impl, "onednn:conv2d") << shape[2] << "x" << shape[3];
  }

  cpu::setConvWinogradForTesting(false);
  ProgramBuilder direct("winograd_off");
  build(direct);
  std::vector<std::string> directImpls = runBoth(direct);
  cpu::setConvWinogradForTesting(true);
  for (const std::string &impl : directImpls)
    EXPECT_EQ(impl.find("winograd"), std::string::npos) << impl;
}

} // namespace
