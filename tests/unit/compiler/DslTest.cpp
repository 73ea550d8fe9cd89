//===- tests/unit/compiler/DslTest.cpp - The C++ DSL ----------------------===//
#include "kiln/kiln.h"

#include <gtest/gtest.h>

using namespace kiln;
using dsl::Graph;

TEST(Dsl, BuildsKilnOpsWithUserLocations) {
  Graph g("tiny");
  auto x = g.input("x", {2, 8});
  auto y = nn::linear(x, 4, "fc").relu();
  g.output("y", y);
  EXPECT_EQ(y.shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(g.parameterCount(), 8 * 4 + 4);
  Module m = g.finish();
  std::string ir = m.toText(/*withLocations=*/true);
  EXPECT_NE(ir.find("kiln.matmul"), std::string::npos) << ir;
  EXPECT_NE(ir.find("kiln.relu"), std::string::npos) << ir;
  EXPECT_NE(ir.find("kiln.param = \"fc.weight\""), std::string::npos) << ir;
  EXPECT_NE(ir.find("kiln.name = \"x\""), std::string::npos) << ir;
  // Ops are located at this file, not inside the DSL.
  EXPECT_NE(ir.find("DslTest.cpp"), std::string::npos) << ir;
  EXPECT_EQ(m.weights().size(), 2u);
}

TEST(Dsl, ShapeErrorNamesTheUsersLine) {
  Graph g("bad");
  auto a = g.input("a", {2, 3});
  auto b = g.input("b", {4, 5});
  int line = __LINE__ + 2;
  try {
    a.matmul(b);
    FAIL() << "matmul of [2,3] x [4,5] must throw";
  } catch (const dsl::Error &e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("DslTest.cpp:" + std::to_string(line)),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("matmul"), std::string::npos) << msg;
    EXPECT_NE(msg.find("K=3"), std::string::npos) << msg;
    // The location is said once, at the start.
    EXPECT_EQ(msg.find("DslTest.cpp"), 0u) << msg;
    EXPECT_EQ(msg.find("DslTest.cpp", 1), std::string::npos) << msg;
  }
}

TEST(Dsl, BroadcastErrorThrows) {
  Graph g("bad");
  auto a = g.input("a", {2, 3});
  auto b = g.input("b", {4});
  EXPECT_THROW(a.add(b), dsl::Error);
}

TEST(Dsl, ReshapeInfersMinusOne) {
  Graph g("r");
  auto a = g.input("a", {2, 3, 4});
  EXPECT_EQ(a.reshape({-1, 4}).shape(), (std::vector<int64_t>{6, 4}));
  EXPECT_THROW(a.reshape({-1, 5}), dsl::Error);
  EXPECT_THROW(a.reshape({-1, -1}), dsl::Error);
}

TEST(Dsl, SliceNormalizesLikeNumPy) {
  Graph g("s");
  auto a = g.input("a", {10});
  EXPECT_EQ(a.slice(0, -3, 100).shape(), (std::vector<int64_t>{3}));
  EXPECT_EQ(a.slice(0, 0, 10, 3).shape(), (std::vector<int64_t>{4}));
  EXPECT_EQ(a.slice(0, 9, -11, -1).shape(), (std::vector<int64_t>{10}));
  EXPECT_EQ(a.slice(0, 5, 2).shape(), (std::vector<int64_t>{0}));
  EXPECT_THROW(a.slice(0, 0, 10, 0), dsl::Error);
  EXPECT_THROW(a.slice(1, 0, 1), dsl::Error);
}

TEST(Dsl, ParametersAreDeterministicPerSeedAndName) {
  auto build = [](uint64_t seed) {
    Graph g("p", seed);
    auto x = g.input("x", {1, 4});
    g.output("y", nn::linear(x, 4, "a").add(nn::linear(x, 4, "b")));
    return g.finish();
  };
  Module m1 = build(1), m2 = build(1), m3 = build(2);
  auto w = [](Module &m, const char *n) {
    return m.weights().at(n).toDoubles();
  };
  EXPECT_EQ(w(m1, "a.weight"), w(m2, "a.weight"));
  EXPECT_NE(w(m1, "a.weight"), w(m3, "a.weight"));
  EXPECT_NE(w(m1, "a.weight"), w(m1, "b.weight"));
}

TEST(Dsl, DuplicateNamesAndMisuseAreErrors) {
  Graph g("d");
  auto x = g.input("x", {1, 4});
  EXPECT_THROW(g.input("x", {1, 4}), dsl::Error);
  EXPECT_THROW(g.finish(), dsl::Error); // no outputs
  g.output("y", x.relu());
  EXPECT_THROW(g.output("y", x), dsl::Error);
  Graph other("o");
  auto z = other.input("z", {1, 4});
  EXPECT_THROW(x.add(z), dsl::Error);
  Module m = g.finish();
  EXPECT_THROW(g.finish(), dsl::Error);
}

TEST(Dsl, ScopesNameParameters) {
  Graph g("scoped");
  auto x = g.input("x", {1, 8});
  {
    Graph::Scope s(g, "block0");
    x = nn::layerNorm(x, "ln");
  }
  g.output("y", x);
  Module m = g.finish();
  EXPECT_EQ(m.weights().count("block0.ln.weight"), 1u);
  EXPECT_EQ(m.weights().count("block0.ln.bias"), 1u);
}

TEST(Zoo, EveryTinyModelBuilds) {
  for (const char *name : {"mlp", "gpt", "bert", "vit", "resnet"}) {
    auto m = zoo::build(name);
    ASSERT_TRUE(m) << name << ": " << m.status().message();
    EXPECT_FALSE(m->weights().empty()) << name;
  }
  auto bad = zoo::build("no-such-model");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("gpt2-small"), std::string::npos);
}

TEST(Zoo, OverridesAndLimits) {
  zoo::Options o;
  o.batch = 3;
  o.seq = 8;
  auto m = zoo::build("gpt", o);
  ASSERT_TRUE(m) << m.status().message();
  auto params = m->parameters();
  EXPECT_FALSE(params.empty());
  o.seq = 100000;
  auto tooLong = zoo::build("gpt", o);
  ASSERT_FALSE(tooLong);
  EXPECT_NE(tooLong.status().message().find("positions"), std::string::npos);
}

TEST(Dsl, MisuseAfterFinishOrOfEmptyTensorsThrowsAtTheUsersLine) {
  Graph g("m");
  auto a = g.input("a", {4});
  g.output("y", a.relu());
  Module m = g.finish();
  int line = __LINE__ + 2;
  try {
    a.exp();
    FAIL() << "use of a finished graph must throw";
  } catch (const dsl::Error &e) {
    EXPECT_NE(std::string(e.what()).find("DslTest.cpp:" + std::to_string(line)),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("already finished"),
              std::string::npos);
  }
  EXPECT_THROW(g.input("b", {4}), dsl::Error);
  dsl::Tensor empty;
  try {
    empty.relu();
    FAIL() << "use of an empty tensor must throw";
  } catch (const dsl::Error &e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos);
  }
  Graph h("h");
  auto x = h.input("x", {2, 3});
  EXPECT_THROW(x.dim(5), dsl::Error);
  EXPECT_EQ(x.dim(-1), 3);
}
