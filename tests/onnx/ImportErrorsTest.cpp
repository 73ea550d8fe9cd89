//===- tests/onnx/ImportErrorsTest.cpp - ONNX importer tests --------------===//
//
// Small ONNX models built here with the protobuf API (no binary files in the
// repository): a model that imports and runs, and each error path a user can
// hit (unsupported ops listed all at once, malformed file, undefined names,
// cycles, dynamic dims, shape contradictions, escaping external data),
// compositions for ops kiln has no op for (Trilu, ScatterND) with their
// limits, Gelu
// (opset 20), Einsum and Attention (opset 23) against naive evaluations,
// and which initializers become constants rather than parameters.
//
//===----------------------------------------------------------------------===//
#include "kiln/kiln.h"
#include "kiln/onnx.h"

#include "onnx/onnx_pb.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

::onnx::ModelProto makeModel(int opset = 13) {
  ::onnx::ModelProto m;
  m.set_ir_version(8);
  auto *op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m.mutable_graph()->set_name("test_graph");
  return m;
}

void addValue(google::protobuf::RepeatedPtrField<::onnx::ValueInfoProto> *list,
              const std::string &name, std::vector<int64_t> dims,
              int elemType = ::onnx::TensorProto::FLOAT,
              const std::string &dynamicDim = "") {
  auto *v = list->Add();
  v->set_name(name);
  auto *tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elemType);
  auto *shape = tt->mutable_shape();
  for (int64_t d : dims) {
    auto *dim = shape->add_dim();
    if (d < 0)
      dim->set_dim_param(dynamicDim);
    else
      dim->set_dim_value(d);
  }
}

::onnx::NodeProto *addNode(::onnx::ModelProto &m, const std::string &op,
                           std::vector<std::string> inputs,
                           std::vector<std::string> outputs,
                           const std::string &name = "") {
  auto *n = m.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto &i : inputs)
    n->add_input(i);
  for (auto &o : outputs)
    n->add_output(o);
  return n;
}

void addInitializer(::onnx::ModelProto &m, const std::string &name,
                    std::vector<int64_t> dims, std::vector<float> values) {
  auto *t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(::onnx::TensorProto::FLOAT);
  for (int64_t d : dims)
    t->add_dims(d);
  for (float v : values)
    t->add_float_data(v);
}

/// An int64 initializer (indices, k) of shape `dims`.
void addIndices(::onnx::ModelProto &m, const std::string &name,
                std::vector<int64_t> dims, std::vector<int64_t> values) {
  auto *t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(::onnx::TensorProto::INT64);
  for (int64_t d : dims)
    t->add_dims(d);
  for (int64_t v : values)
    t->add_int64_data(v);
}

kiln::StatusOr<kiln::Module> import(const ::onnx::ModelProto &m,
                                    const kiln::onnx::ImportOptions &o = {}) {
  return kiln::onnx::importModelFromBytes(m.SerializeAsString(),
                                          "/tmp/kiln-onnx-test/model.onnx", o);
}

TEST(OnnxImport, ImportsCompilesAndRuns) {
  // y = relu(x @ w + b), then reshaped through a Shape -> Concat chain.
  auto m = makeModel();
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {2, 3});
  addValue(g.mutable_output(), "y", {1, 4});
  addInitializer(m, "w", {3, 2}, {1, 2, 3, 4, 5, 6});
  addInitializer(m, "b", {2}, {0.5f, -100});
  addNode(m, "MatMul", {"x", "w"}, {"xw"}, "fc/matmul");
  addNode(m, "Add", {"xw", "b"}, {"h"}, "fc/add");
  addNode(m, "Relu", {"h"}, {"r"}, "act");
  auto *c = addNode(m, "Constant", {}, {"shape"}, "shape_const");
  auto *attr = c->add_attribute();
  attr->set_name("value");
  attr->set_type(::onnx::AttributeProto::TENSOR);
  attr->mutable_t()->set_data_type(::onnx::TensorProto::INT64);
  attr->mutable_t()->add_dims(2);
  attr->mutable_t()->add_int64_data(1);
  attr->mutable_t()->add_int64_data(-1);
  addNode(m, "Reshape", {"r", "shape"}, {"y"}, "flatten");

  auto module = import(m);
  ASSERT_TRUE(module) << module.status().message();
  std::string text = module->toText(/*withLocations=*/true);
  EXPECT_THAT(text, HasSubstr("kiln.param = \"w\""));
  EXPECT_THAT(text, HasSubstr("kiln.name = \"x\""));
  EXPECT_THAT(text, HasSubstr("kiln.name = \"y\""));
  EXPECT_THAT(text, HasSubstr("\"fc/matmul\""));
  EXPECT_EQ(module->weights().count("w"), 1u);

  auto exe = kiln::compile(*module);
  ASSERT_TRUE(exe) << exe.status().message();
  auto x = kiln::Tensor::fromFloats({2, 3}, {1, 0, 0, 0, 1, 1});
  auto out = exe->run({{"x", x}});
  ASSERT_TRUE(out) << out.status().message();
  const auto &y = out->at("y");
  ASSERT_EQ(y.shape(), (std::vector<int64_t>{1, 4}));
  // row0 = [1, 2] + b, row1 = [3+5, 4+6] + b, then relu.
  std::vector<double> want = {1.5, 0, 8.5, 0};
  EXPECT_EQ(y.toDoubles(), want);
}

TEST(OnnxImport, ListsEveryUnsupportedOpAtOnce) {
  auto m = makeModel();
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {4});
  addValue(g.mutable_output(), "z", {4});
  addNode(m, "FancyOp", {"x"}, {"a"}, "fancy_0");
  addNode(m, "Relu", {"a"}, {"b"}, "relu_after");
  addNode(m, "FancyOp", {"b"}, {"c"}, "fancy_1");
  addNode(m, "NonZero", {"c"}, {"e"}, "nz");
  addNode(m, "Add", {"e", "x"}, {"z"}, "sum");

  auto module = import(m);
  ASSERT_FALSE(module);
  const std::string &msg = module.status().message();
  EXPECT_EQ(msg.rfind("unsupported ONNX ops in 'model.onnx'", 0), 0u) << msg;
  EXPECT_THAT(msg, HasSubstr("FancyOp (opset 13): 2 nodes, first: "
                             "'fancy_0', 'fancy_1'"));
  EXPECT_THAT(msg, HasSubstr("NonZero (opset 13): 1 node, first: 'nz'"));
}

TEST(OnnxImport, RejectsMalformedFile) {
  auto module = kiln::onnx::importModelFromBytes(
      "this is not a protobuf \xff\xff\xff", "/tmp/bad.onnx");
  ASSERT_FALSE(module);
  EXPECT_THAT(module.status().message(), HasSubstr("not a valid ONNX model"));

  auto missing = kiln::onnx::importModel("/nonexistent/model.onnx");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot open"));
}

TEST(OnnxImport, RejectsUndefinedTensorName) {
  auto m = makeModel();
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {4});
  addValue(g.mutable_output(), "y", {4});
  addNode(m, "Add", {"x", "nowhere"}, {"y"}, "add_0");
  auto module = import(m);
  ASSERT_FALSE(module);
  EXPECT_THAT(module.status().message(),
              HasSubstr("node 'add_0' (Add) uses undefined tensor 'nowhere'"));
}

TEST(OnnxImport, RejectsCycles) {
  auto m = makeModel();
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {4});
  addValue(g.mutable_output(), "y", {4});
  addNode(m, "Add", {"x", "b"}, {"a"}, "first");
  addNode(m, "Relu", {"a"}, {"b"}, "second");
  addNode(m, "Relu", {"a"}, {"y"}, "third");
  auto module = import(m);
  ASSERT_FALSE(module);
  EXPECT_THAT(module.status().message(),
              HasSubstr("cycle through nodes 'first', 'second'"));
}

TEST(OnnxImport, DynamicDimsNeedAShape) {
  auto m = makeModel();
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {-1, 4}, ::onnx::TensorProto::FLOAT,
           "batch");
  addValue(g.mutable_output(), "y", {-1, 4}, ::onnx::TensorProto::FLOAT,
           "batch");
  addNode(m, "Relu", {"x"}, {"y"});
  auto module = import(m);
  ASSERT_FALSE(module);
  EXPECT_THAT(module.status().message(),
              HasSubstr("input 'x' has dynamic dim 0 'batch'"));

  kiln::onnx::ImportOptions options;
  options.setInputShape("x", {3, 4});
  auto ok = import(m, options);
  ASSERT_TRUE(ok) << ok.status().message();

  options.setInputShape("x", {3, 5});
  auto contradiction = import(m, options);
  ASSERT_FALSE(contradiction);
  EXPECT_THAT(contradiction.status().message(),
              HasSubstr("declares dim 1 = 4, the given shape [3, 5]"));

  options.setInputShape("x", {3, 4});
  options.setInputShape("pixels", {1, 3});
  auto unknown = import(m, options);
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("a shape is given for 'pixels', which is not a graph "
                        "input; the graph's inputs are: x"));

  // The shape of a value given at run time fixes dynamic dims, and a
  // contradiction names the value's shape.
  kiln::onnx::ImportOptions values;
  values.setValueShape("x", {5, 4});
  auto fixed = import(m, values);
  ASSERT_TRUE(fixed) << fixed.status().message();
  values.setValueShape("x", {5, 3});
  auto wrong = import(m, values);
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.status().message(),
              HasSubstr("input 'x' declares dim 1 = 4, the value given for it "
                        "has shape [5, 3]"));
}

TEST(OnnxImport, ReportsShapeAndTypeContradictions) {
  auto m = makeModel();
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {2, 3});
  addValue(g.mutable_input(), "y", {4, 5});
  addValue(g.mutable_output(), "z", {2, 3});
  addNode(m, "Add", {"x", "y"}, {"z"}, "bad_add");
  auto module = import(m);
  ASSERT_FALSE(module);
  EXPECT_THAT(module.status().message(), HasSubstr("node 'bad_add' (Add"));
  EXPECT_THAT(module.status().message(), HasSubstr("broadcast"));

  auto m2 = makeModel();
  auto &g2 = *m2.mutable_graph();
  addValue(g2.mutable_input(), "x", {2, 3});
  addValue(g2.mutable_output(), "y", {3, 2});
  addNode(m2, "Relu", {"x"}, {"y"});
  auto declared = import(m2);
  ASSERT_FALSE(declared);
  EXPECT_THAT(declared.status().message(),
              HasSubstr("graph output 'y' is declared [3, 2], the graph "
                        "computes [2, 3]"));
}

TEST(OnnxImport, RefusesExternalDataOutsideTheModelFolder) {
  fs::path dir = fs::temp_directory_path() / "kiln-onnx-external";
  fs::create_directories(dir / "model");
  {
    std::ofstream f(dir / "model" / "weights.bin", std::ios::binary);
    float v[2] = {1.5f, 2.5f};
    f.write(reinterpret_cast<const char *>(v), sizeof v);
  }
  auto build = [](const std::string &location) {
    auto m = makeModel();
    auto &g = *m.mutable_graph();
    addValue(g.mutable_input(), "x", {2});
    addValue(g.mutable_output(), "y", {2});
    auto *t = g.add_initializer();
    t->set_name("w");
    t->set_data_type(::onnx::TensorProto::FLOAT);
    t->add_dims(2);
    t->set_data_location(::onnx::TensorProto::EXTERNAL);
    auto *kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value(location);
    addNode(m, "Mul", {"x", "w"}, {"y"});
    return m;
  };
  std::string modelPath = (dir / "model" / "model.onnx").string();
  auto ok = kiln::onnx::importModelFromBytes(
      build("weights.bin").SerializeAsString(), modelPath);
  ASSERT_TRUE(ok) << ok.status().message();
  EXPECT_EQ(ok->weights().at("w").toDoubles(), (std::vector<double>{1.5, 2.5}));

  for (std::string bad : {"../secret.bin", "/etc/passwd"}) {
    auto refused = kiln::onnx::importModelFromBytes(
        build(bad).SerializeAsString(), modelPath);
    ASSERT_FALSE(refused);
    EXPECT_THAT(refused.status().message(),
                HasSubstr("escapes the model's folder"));
  }
}

//===----------------------------------------------------------------------===//
// Compositions of ops kiln has no op for (Indexing.cpp)
//===----------------------------------------------------------------------===//

TEST(OnnxImport, TriluOnRuntimeValuesMasksWithAConstant) {
  // A causal mask as torch.onnx.export writes it (opset 14), on a run-time
  // input: y = triu(x, k = 1).
  auto m = makeModel(14);
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {3, 4});
  addValue(g.mutable_output(), "y", {3, 4});
  addIndices(m, "k", {}, {1});
  addNode(m, "Trilu", {"x", "k"}, {"y"}, "causal_mask");

  auto module = import(m);
  ASSERT_TRUE(module) << module.status().message();
  EXPECT_THAT(module->toText(/*withLocations=*/true),
              HasSubstr("\"causal_mask\""));
  auto exe = kiln::compile(*module);
  ASSERT_TRUE(exe) << exe.status().message();
  std::vector<float> x(12);
  for (int i = 0; i < 12; ++i)
    x[i] = float(i + 1);
  auto out = exe->run({{"x", kiln::Tensor::fromFloats({3, 4}, x)}});
  ASSERT_TRUE(out) << out.status().message();
  // Kept where column - row >= 1.
  std::vector<double> want = {0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12};
  EXPECT_EQ(out->at("y").toDoubles(), want);
}

TEST(OnnxImport, ScatterNDWithConstantIndicesOnRuntimeValues) {
  // Slice assignment as torch.onnx.export writes it (data[idx] = updates):
  // rows 2 and 0 of a [3, 2] input replaced, row 1 kept; and a model that
  // assigns row 0 twice (the last write wins).
  for (bool twice : {false, true}) {
    auto m = makeModel(16);
    auto &g = *m.mutable_graph();
    addValue(g.mutable_input(), "x", {3, 2});
    addValue(g.mutable_input(), "u", {2, 2});
    addValue(g.mutable_output(), "y", {3, 2});
    addIndices(m, "idx", {2, 1}, {twice ? 0 : 2, twice ? 0 : -3}); // -3: row 0
    addNode(m, "ScatterND", {"x", "idx", "u"}, {"y"}, "assign");

    auto module = import(m);
    ASSERT_TRUE(module) << module.status().message();
    auto exe = kiln::compile(*module);
    ASSERT_TRUE(exe) << exe.status().message();
    auto out =
        exe->run({{"x", kiln::Tensor::fromFloats({3, 2}, {1, 2, 3, 4, 5, 6})},
                  {"u", kiln::Tensor::fromFloats({2, 2}, {7, 8, 9, 10})}});
    ASSERT_TRUE(out) << out.status().message();
    std::vector<double> want = twice ? std::vector<double>{9, 10, 3, 4, 5, 6}
                                     : std::vector<double>{9, 10, 3, 4, 7, 8};
    EXPECT_EQ(out->at("y").toDoubles(), want) << (twice ? "twice" : "once");
  }
}

TEST(OnnxImport, ScatterNDWithNoIndicesIsData) {
  // Indices of shape [0, 1] write nothing: y = x (the importer gathered row
  // 0 of the empty updates, which failed at run time).
  auto m = makeModel(16);
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {3, 2});
  addValue(g.mutable_input(), "u", {0, 2});
  addValue(g.mutable_output(), "y", {3, 2});
  addIndices(m, "idx", {0, 1}, {});
  addNode(m, "ScatterND", {"x", "idx", "u"}, {"y"}, "assign");

  auto module = import(m);
  ASSERT_TRUE(module) << module.status().message();
  auto exe = kiln::compile(*module);
  ASSERT_TRUE(exe) << exe.status().message();
  auto out =
      exe->run({{"x", kiln::Tensor::fromFloats({3, 2}, {1, 2, 3, 4, 5, 6})},
                {"u", kiln::Tensor::zeros(kiln::DType::f32, {0, 2})}});
  ASSERT_TRUE(out) << out.status().message();
  EXPECT_EQ(out->at("y").toDoubles(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

TEST(OnnxImport, ScatterNDUpdatesOfAnotherTypeAreAnError) {
  // Data f32, updates f16, both initializers: evaluated at import, the f16
  // bytes were copied as f32 rows (reading past the updates).
  auto m = makeModel(16);
  auto &g = *m.mutable_graph();
  addValue(g.mutable_output(), "y", {4, 3});
  addInitializer(m, "x", {4, 3}, std::vector<float>(12, 1.0f));
  auto *u = g.add_initializer();
  u->set_name("u");
  u->set_data_type(::onnx::TensorProto::FLOAT16);
  u->add_dims(2);
  u->add_dims(3);
  u->set_raw_data(std::string(12, '\0'));
  addIndices(m, "idx", {2, 1}, {1, 3});
  addNode(m, "ScatterND", {"x", "idx", "u"}, {"y"}, "assign");
  auto module = import(m);
  ASSERT_FALSE(module);
  EXPECT_THAT(module.status().message(),
              HasSubstr("updates are f16, data is f32"));
}

TEST(OnnxImport, ScatterNDNamesWhatIsUnsupported) {
  for (bool reduction : {false, true}) {
    auto m = makeModel(16);
    auto &g = *m.mutable_graph();
    addValue(g.mutable_input(), "x", {3, 2});
    addValue(g.mutable_input(), "u", {2, 2});
    addValue(g.mutable_output(), "y", {3, 2});
    if (reduction) {
      addIndices(m, "idx", {2, 1}, {0, 1});
    } else {
      addValue(g.mutable_input(), "idx", {2, 1}, ::onnx::TensorProto::INT64);
    }
    auto *node = addNode(m, "ScatterND", {"x", "idx", "u"}, {"y"}, "assign");
    if (reduction) {
      auto *a = node->add_attribute();
      a->set_name("reduction");
      a->set_type(::onnx::AttributeProto::STRING);
      a->set_s("add");
    }
    auto module = import(m);
    ASSERT_FALSE(module);
    EXPECT_THAT(module.status().message(),
                HasSubstr(reduction ? "'assign' (reduction 'add')"
                                    : "'assign' (indices computed from the "
                                      "model's inputs)"));
  }
}

TEST(OnnxImport, TriluNeedsKAtImportTime) {
  auto m = makeModel(14);
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {3, 3});
  addValue(g.mutable_input(), "k", {}, ::onnx::TensorProto::INT64);
  addValue(g.mutable_output(), "y", {3, 3});
  addNode(m, "Trilu", {"x", "k"}, {"y"}, "mask");

  auto module = import(m);
  ASSERT_FALSE(module);
  EXPECT_THAT(module.status().message(),
              HasSubstr("Trilu (opset 14): 1 node, first: 'mask' (input 'k' "
                        "(k) must be known at import time"));
}

TEST(OnnxImport, ResizeNamesTheUnsupportedFeature) {
  auto m = makeModel(13);
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {1, 1, 2, 2});
  addValue(g.mutable_output(), "y", {1, 1, 4, 4});
  addInitializer(m, "scales", {4}, {1, 1, 2, 2});
  auto *node = addNode(m, "Resize", {"x", "", "scales"}, {"y"}, "up");
  auto *attr = node->add_attribute();
  attr->set_name("coordinate_transformation_mode");
  attr->set_type(::onnx::AttributeProto::STRING);
  attr->set_s("tf_crop_and_resize");

  auto module = import(m);
  ASSERT_FALSE(module);
  EXPECT_THAT(module.status().message(),
              HasSubstr("Resize (opset 13): 1 node, first: 'up' "
                        "(coordinate_transformation_mode "
                        "'tf_crop_and_resize')"));
}

} // namespace

TEST(OnnxImport, ModOfConstantsFoldsIntoASliceBound) {
  // torch's MultiheadAttention export computes Slice ends with Mod of
  // constants; they must fold at import, with ONNX's sign rules.
  auto m = makeModel(13);
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {6});
  addValue(g.mutable_output(), "y", {});
  addValue(g.mutable_output(), "r", {4}, ::onnx::TensorProto::INT64);
  auto constant = [&](const std::string &name, std::vector<int64_t> values) {
    auto *c = addNode(m, "Constant", {}, {name}, name);
    auto *attr = c->add_attribute();
    attr->set_name("value");
    attr->set_type(::onnx::AttributeProto::TENSOR);
    attr->mutable_t()->set_data_type(::onnx::TensorProto::INT64);
    attr->mutable_t()->add_dims(static_cast<int64_t>(values.size()));
    for (int64_t v : values)
      attr->mutable_t()->add_int64_data(v);
  };
  constant("a", {7, -7, 7, -7});
  constant("b", {3, 3, -3, -3});
  addNode(m, "Mod", {"a", "b"}, {"r"}, "mod"); // Python %: 1, 2, -2, -1
  constant("start", {0});
  constant("ten", {10});
  constant("four", {4});
  addNode(m, "Mod", {"ten", "four"}, {"end"}, "end_mod"); // 2
  addNode(m, "Slice", {"x", "start", "end"}, {"s"}, "slice");
  addNode(m, "ReduceSum", {"s"}, {"y"}, "sum")
      ->add_attribute()
      ->set_name("keepdims");
  g.mutable_node(g.node_size() - 1)->mutable_attribute(0)->set_i(0);
  g.mutable_node(g.node_size() - 1)
      ->mutable_attribute(0)
      ->set_type(::onnx::AttributeProto::INT);

  auto module = import(m);
  ASSERT_TRUE(module) << module.status().message();
  auto exe = kiln::compile(*module);
  ASSERT_TRUE(exe) << exe.status().message();
  auto out =
      exe->run({{"x", kiln::Tensor::fromFloats({6}, {1, 2, 4, 8, 16, 32})}});
  ASSERT_TRUE(out) << out.status().message();
  EXPECT_EQ(out->at("y").toDoubles(), std::vector<double>{3}); // x[0:2]
  EXPECT_EQ(out->at("r").toDoubles(), (std::vector<double>{1, 2, -2, -1}));
}

namespace {

/// y = gelu(x) with `approximate` (empty: the attribute left out).
::onnx::ModelProto geluModel(const std::string &approximate) {
  auto m = makeModel(20);
  auto &g = *m.mutable_graph();
  addValue(g.mutable_input(), "x", {7});
  addValue(g.mutable_output(), "y", {7});
  auto *n = addNode(m, "Gelu", {"x"}, {"y"}, "gelu");
  if (!approximate.empty()) {
    auto *a = n->add_attribute();
    a->set_name("approximate");
    a->set_type(::onnx::AttributeProto::STRING);
    a->set_s(approximate);
  }
  return m;
}

} // namespace

TEST(OnnxImport, GeluOpset20BothApproximations) {
  // The op PyTorch's default exporter writes for nn.GELU, checked against
  // the formulas of the ONNX spec evaluated here in double.
  const std::vector<float> x = {-4, -1.5f, -0.25f, 0, 0.3f, 1, 3.5f};
  for (std::string approximate : {"", "none", "tanh"}) {
    auto module = import(geluModel(approximate));
    ASSERT_TRUE(module) << module.status().message();
    for (std::string target : {"reference", "cpu"}) {
      auto exe =
          kiln::compile(*module, kiln::CompileOptions().setTarget(target));
      ASSERT_TRUE(exe) << exe.status().message();
      auto out = exe->run({{"x", kiln::Tensor::fromFloats({7}, x)}});
      ASSERT_TRUE(out) << out.status().message();
      std::vector<double> y = out->at("y").toDoubles();
      for (size_t i = 0; i < x.size(); ++i) {
        double v = x[i];
        double want = approximate == "tanh"
                          ? 0.5 * v *
                                (1 + std::tanh(std::sqrt(2 / M_PI) *
                                               (v + 0.044715 * v * v * v)))
                          : 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
        EXPECT_NEAR(y[i], want, 1e-6 * std::max(1.0, std::fabs(want)))
            << approximate << " on " << target << " at x = " << v;
      }
    }
  }
  auto bad = import(geluModel("sigmoid"));
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.status().message(), HasSubstr("approximate"));
  EXPECT_THAT(bad.status().message(), HasSubstr("sigmoid"));
}

TEST(OnnxImport, RmsNormalizationOpset23AgainstTheSpecFormula) {
  // The op PyTorch writes for nn.RMSNorm at opset 23 (LLaMA, Mistral, T5):
  // y = x / sqrt(mean(x^2 over [axis, rank)) + epsilon) * scale, checked in
  // double; axis -2 normalizes the last two dims, with a scale broadcast
  // from [1, 4] to [3, 4].
  for (int64_t axis : {-1, -2}) {
    auto m = makeModel(23);
    auto &g = *m.mutable_graph();
    addValue(g.mutable_input(), "x", {2, 3, 4});
    addValue(g.mutable_output(), "y", {2, 3, 4});
    std::vector<int64_t> scaleDims =
        axis == -1 ? std::vector<int64_t>{4} : std::vector<int64_t>{1, 4};
    const std::vector<float> scale = {0.5f, -1, 2, 1.5f};
    addInitializer(m, "scale", scaleDims, scale);
    auto *n = addNode(m, "RMSNormalization", {"x", "scale"}, {"y"}, "rms");
    auto *a = n->add_attribute();
    a->set_name("axis");
    a->set_type(::onnx::AttributeProto::INT);
    a->set_i(axis);
    a = n->add_attribute();
    a->set_name("epsilon");
    a->set_type(::onnx::AttributeProto::FLOAT);
    a->set_f(1e-3f);
    auto module = import(m);
    ASSERT_TRUE(module) << module.status().message();
    std::vector<float> x(24);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = std::sin(1.7 * i) * (1 + i % 5);
    const int64_t group = axis == -1 ? 4 : 12;
    for (std::string target : {"reference", "cpu"}) {
      auto exe =
          kiln::compile(*module, kiln::CompileOptions().setTarget(target));
      ASSERT_TRUE(exe) << exe.status().message();
      auto out = exe->run({{"x", kiln::Tensor::fromFloats({2, 3, 4}, x)}});
      ASSERT_TRUE(out) << out.status().message();
      std::vector<double> y = out->at("y").toDoubles();
      for (int64_t start = 0; start < 24; start += group) {
        double sumSquares = 0;
        for (int64_t i = start; i < start + group; ++i)
          sumSquares += double(x[i]) * x[i];
        double rms = std::sqrt(sumSquares / group + 1e-3);
        for (int64_t i = start; i < start + group; ++i) {
          double want = x[i] / rms * scale[i % 4];
          EXPECT_NEAR(y[i], want, 1e-5 * std::max(1.0, std::fabs(want)))
              << "axis " << axis << " on " << target << " at " << i;
        }
      }
    }
  }
}

TEST(OnnxImport, FixedScalarsAndMasksBecomeConstantsWeightsStayParameters) {
  // y = ((x * s + mask) @ w) * o, as torch.export-based exports store them:
  // s a rank-0 initializer, mask a 0/-inf initializer, w a weight, o a
  // scalar initializer that is also a graph input (a default the caller may
  // override, so it must stay a parameter).
  auto m = makeModel(13);
  auto &g = *m.mutable_graph();
  const float inf = std::numeric_limits<float>::infinity();
  addValue(g.mutable_input(), "x", {2, 2});
  addValue(g.mutable_input(), "o", {});
  addValue(g.mutable_output(), "y", {2, 2});
  addInitializer(m, "s", {}, {0.5f});
  addInitializer(m, "mask", {2, 2}, {0, -inf, 0, 0});
  addInitializer(m, "w", {2, 2}, {1, 2, 3, 4});
  addInitializer(m, "o", {}, {10});
  addNode(m, "Mul", {"x", "s"}, {"xs"});
  addNode(m, "Add", {"xs", "mask"}, {"xm"});
  addNode(m, "Exp", {"xm"}, {"e"});
  addNode(m, "MatMul", {"e", "w"}, {"ew"});
  addNode(m, "Mul", {"ew", "o"}, {"y"});

  auto module = import(m);
  ASSERT_TRUE(module) << module.status().message();
  std::string text = module->toText();
  EXPECT_THAT(text, HasSubstr("kiln.param = \"w\""));
  EXPECT_THAT(text, HasSubstr("kiln.param = \"o\""));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("kiln.param = \"s\"")));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("kiln.param = \"mask\"")));
  EXPECT_THAT(text, HasSubstr("kiln.constant dense<5.000000e-01>"));
  EXPECT_THAT(text, HasSubstr("0xFF800000")); // -inf, inline
  EXPECT_EQ(module->weights().count("w"), 1u);
  EXPECT_EQ(module->weights().count("o"), 1u);
  EXPECT_EQ(module->weights().count("s"), 0u);
  EXPECT_EQ(module->weights().count("mask"), 0u);

  auto exe = kiln::compile(*module);
  ASSERT_TRUE(exe) << exe.status().message();
  auto out = exe->run({{"x", kiln::Tensor::fromFloats({2, 2}, {0, 2, 4, 6})}});
  ASSERT_TRUE(out) << out.status().message();
  // e = exp([[0, -inf], [2, 3]]) = [[1, 0], [e^2, e^3]]; y = 10 * e @ w.
  double e2 = std::exp(2.0), e3 = std::exp(3.0);
  std::vector<double> want = {10, 20, 10 * (e2 + 3 * e3),
                              10 * (2 * e2 + 4 * e3)};
  std::vector<double> y = out->at("y").toDoubles();
  for (size_t i = 0; i < 4; ++i)
    EXPECT_NEAR(y[i], want[i], 1e-5 * std::fabs(want[i])) << i;
}

namespace {

/// An independent einsum: every assignment of the labels, the product of
/// the operands' elements summed into the output (no ellipsis; row-major).
std::vector<double> naiveEinsum(const std::string &equation,
                                const std::vector<std::vector<int64_t>> &shapes,
                                const std::vector<std::vector<float>> &data,
                                std::vector<int64_t> &outShape) {
  auto arrow = equation.find("->");
  std::string lhs = equation.substr(0, arrow), out = equation.substr(arrow + 2);
  std::vector<std::string> terms;
  for (size_t s = 0;;) {
    size_t c = lhs.find(',', s);
    terms.push_back(lhs.substr(s, c - s));
    if (c == std::string::npos)
      break;
    s = c + 1;
  }
  std::map<char, int64_t> size;
  for (size_t t = 0; t < terms.size(); ++t)
    for (size_t d = 0; d < terms[t].size(); ++d)
      size[terms[t][d]] = shapes[t][d];
  std::vector<char> labels;
  for (auto &[c, s] : size)
    labels.push_back(c);
  outShape.clear();
  int64_t outCount = 1;
  for (char c : out) {
    outShape.push_back(size[c]);
    outCount *= size[c];
  }
  std::vector<double> result(outCount, 0.0);
  std::map<char, int64_t> at;
  for (char c : labels)
    at[c] = 0;
  while (true) {
    double product = 1;
    for (size_t t = 0; t < terms.size(); ++t) {
      int64_t flat = 0;
      for (size_t d = 0; d < terms[t].size(); ++d)
        flat = flat * shapes[t][d] + at[terms[t][d]];
      product *= data[t][flat];
    }
    int64_t flat = 0;
    for (char c : out)
      flat = flat * size[c] + at[c];
    result[flat] += product;
    size_t i = labels.size();
    while (i > 0 && ++at[labels[i - 1]] == size[labels[i - 1]])
      at[labels[--i]] = 0;
    if (i == 0)
      break;
  }
  return result;
}

/// A model y = Einsum(equation)(x0, x1, ...).
::onnx::ModelProto einsumModel(const std::string &equation,
                               const std::vector<std::vector<int64_t>> &shapes,
                               const std::vector<int64_t> &outShape) {
  auto m = makeModel(12);
  auto &g = *m.mutable_graph();
  std::vector<std::string> inputs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    inputs.push_back("x" + std::to_string(i));
    addValue(g.mutable_input(), inputs.back(), shapes[i]);
  }
  addValue(g.mutable_output(), "y", outShape);
  auto *node = addNode(m, "Einsum", inputs, {"y"}, "einsum");
  auto *a = node->add_attribute();
  a->set_name("equation");
  a->set_type(::onnx::AttributeProto::STRING);
  a->set_s(equation);
  return m;
}

} // namespace

TEST(OnnxImport, EinsumAgainstANaiveEvaluation) {
  struct Case {
    std::string equation;         // as written in the model
    std::string explicitEquation; // for the oracle
    std::vector<std::vector<int64_t>> shapes;
  };
  const std::vector<Case> cases = {
      {"ij,jk->ik", "ij,jk->ik", {{3, 4}, {4, 5}}},
      {"bhqd,bhkd->bhqk", "bhqd,bhkd->bhqk", {{2, 3, 4, 5}, {2, 3, 6, 5}}},
      {"bhqk,bkhd->bqhd", "bhqk,bkhd->bqhd", {{2, 3, 4, 6}, {2, 6, 3, 5}}},
      {"i,i->", "i,i->", {{7}, {7}}},
      {"ij->ji", "ij->ji", {{3, 4}}},
      {"ijk->", "ijk->", {{2, 3, 4}}},
      {"ij,kj", "ij,kj->ik", {{3, 4}, {5, 4}}},
      {"ab,cd->cabd", "ab,cd->cabd", {{2, 3}, {4, 2}}},
      {"bn,anm,bm->ba", "bn,anm,bm->ba", {{2, 3}, {4, 3, 5}, {2, 5}}},
      {"abc,cd->ad", "abc,cd->ad", {{2, 3, 4}, {4, 5}}},
      {"...ij,...jk->...ik", "xyij,xyjk->xyik", {{2, 3, 4, 5}, {2, 3, 5, 2}}},
      {"...ij,jk", "xij,jk->xik", {{3, 2, 4}, {4, 5}}},
  };
  for (const Case &c : cases) {
    std::vector<std::vector<float>> data;
    kiln::TensorMap inputs;
    for (size_t i = 0; i < c.shapes.size(); ++i) {
      int64_t count = 1;
      for (int64_t d : c.shapes[i])
        count *= d;
      std::vector<float> v(count);
      for (int64_t k = 0; k < count; ++k)
        v[k] = float((k * 7 + i * 3) % 11) / 4.0f - 1.0f;
      data.push_back(v);
      inputs.emplace("x" + std::to_string(i),
                     kiln::Tensor::fromFloats(c.shapes[i], v));
    }
    std::vector<int64_t> outShape;
    std::vector<double> want =
        naiveEinsum(c.explicitEquation, c.shapes, data, outShape);
    auto module = import(einsumModel(c.equation, c.shapes, outShape));
    ASSERT_TRUE(module) << c.equation << ": " << module.status().message();
    for (std::string target : {"reference", "cpu"}) {
      auto exe =
          kiln::compile(*module, kiln::CompileOptions().setTarget(target));
      ASSERT_TRUE(exe) << c.equation << ": " << exe.status().message();
      auto out = exe->run(inputs);
      ASSERT_TRUE(out) << c.equation << ": " << out.status().message();
      EXPECT_EQ(out->at("y").shape(), outShape) << c.equation;
      std::vector<double> got = out->at("y").toDoubles();
      ASSERT_EQ(got.size(), want.size()) << c.equation;
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_NEAR(got[i], want[i], 1e-5 * std::max(1.0, std::fabs(want[i])))
            << c.equation << " on " << target << " [" << i << "]";
    }
  }
}

TEST(OnnxImport, EinsumErrorsNameTheProblem) {
  auto diagonal = import(einsumModel("ii->i", {{3, 3}}, {3}));
  ASSERT_FALSE(diagonal);
  EXPECT_THAT(diagonal.status().message(), HasSubstr("Einsum"));
  EXPECT_THAT(diagonal.status().message(), HasSubstr("diagonal"));
  auto rank = import(einsumModel("ij,jk->ik", {{3, 4, 2}, {4, 5}}, {3, 5}));
  ASSERT_FALSE(rank);
  EXPECT_THAT(rank.status().message(), HasSubstr("does not match input 0"));
  auto sizes = import(einsumModel("ij,jk->ik", {{3, 4}, {6, 5}}, {3, 5}));
  ASSERT_FALSE(sizes);
  EXPECT_THAT(sizes.status().message(), HasSubstr("label 'j'"));
}

namespace {

/// Naive attention in double over [B, H, S, D] data (K/V with Hk heads):
/// mask(b, h, i, j) returns the additive term, -inf to exclude; with
/// softcap c > 0 the scaled score s becomes c * tanh(s / c) before it.
std::vector<double> naiveAttention(
    const std::vector<float> &q, const std::vector<float> &k,
    const std::vector<float> &v, int64_t B, int64_t H, int64_t Hk, int64_t Sq,
    int64_t Sk, int64_t D, double scale,
    const std::function<double(int64_t, int64_t, int64_t, int64_t)> &mask,
    double softcap = 0) {
  std::vector<double> out(B * H * Sq * D, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      int64_t hk = h / (H / Hk);
      for (int64_t i = 0; i < Sq; ++i) {
        std::vector<double> s(Sk);
        double top = -INFINITY;
        for (int64_t j = 0; j < Sk; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += double(q[((b * H + h) * Sq + i) * D + d]) *
                   k[((b * Hk + hk) * Sk + j) * D + d];
          s[j] = dot * scale;
          if (softcap > 0)
            s[j] = softcap * std::tanh(s[j] / softcap);
          s[j] += mask(b, h, i, j);
          top = std::max(top, s[j]);
        }
        double sum = 0;
        for (double &x : s)
          sum += (x = std::exp(x - top));
        for (int64_t j = 0; j < Sk; ++j)
          for (int64_t d = 0; d < D; ++d)
            out[((b * H + h) * Sq + i) * D + d] +=
                s[j] / sum * v[((b * Hk + hk) * Sk + j) * D + d];
      }
    }
  return out;
}

std::vector<float> ramp(int64_t count, int salt) {
  std::vector<float> v(count);
  for (int64_t i = 0; i < count; ++i)
    v[i] = float((i * 37 + salt * 11) % 23) / 11.0f - 1.0f;
  return v;
}

} // namespace

TEST(OnnxImport, AttentionOpset23AgainstANaiveEvaluation) {
  // 4-D grouped-query attention with a float mask, a scale and softcap
  // (which the spec applies before the mask); then the same
  // data as 3-D [B, S, H*D] with q_num_heads / kv_num_heads, causal with
  // Sq != Sk (the spec's upper-left triangle) and a boolean mask.
  const int64_t B = 2, H = 4, Hk = 2, Sq = 3, Sk = 5, D = 4;
  auto q = ramp(B * H * Sq * D, 1), k = ramp(B * Hk * Sk * D, 2),
       v = ramp(B * Hk * Sk * D, 3), add = ramp(B * Sq * Sk, 4);
  std::vector<uint8_t> keep(B * Sq * Sk);
  for (size_t i = 0; i < keep.size(); ++i)
    keep[i] = i % 3 != 1;
  keep[0] = 1; // every row keeps at least key 0 (causal keeps it too)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Sq; ++i)
      keep[(b * Sq + i) * Sk] = 1;

  for (bool threeD : {false, true}) {
    auto m = makeModel(23);
    auto &g = *m.mutable_graph();
    // 3-D operands are the 4-D data's [B, S, H, D] view: transpose on the
    // way in so the oracle reads the same numbers.
    auto toBSHD = [&](const std::vector<float> &x, int64_t h, int64_t s) {
      std::vector<float> y(x.size());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t hh = 0; hh < h; ++hh)
          for (int64_t i = 0; i < s; ++i)
            for (int64_t d = 0; d < D; ++d)
              y[((b * s + i) * h + hh) * D + d] =
                  x[((b * h + hh) * s + i) * D + d];
      return y;
    };
    kiln::TensorMap inputs;
    if (threeD) {
      addValue(g.mutable_input(), "q", {B, Sq, H * D});
      addValue(g.mutable_input(), "k", {B, Sk, Hk * D});
      addValue(g.mutable_input(), "v", {B, Sk, Hk * D});
      addValue(g.mutable_input(), "mask", {B, 1, Sq, Sk},
               ::onnx::TensorProto::BOOL);
      addValue(g.mutable_output(), "y", {B, Sq, H * D});
      inputs.emplace(
          "q", kiln::Tensor::fromFloats({B, Sq, H * D}, toBSHD(q, H, Sq)));
      inputs.emplace(
          "k", kiln::Tensor::fromFloats({B, Sk, Hk * D}, toBSHD(k, Hk, Sk)));
      inputs.emplace(
          "v", kiln::Tensor::fromFloats({B, Sk, Hk * D}, toBSHD(v, Hk, Sk)));
      kiln::Tensor mt = kiln::Tensor::zeros(kiln::DType::i1, {B, 1, Sq, Sk});
      std::copy(keep.begin(), keep.end(), mt.dataAs<uint8_t>());
      inputs.emplace("mask", mt);
    } else {
      addValue(g.mutable_input(), "q", {B, H, Sq, D});
      addValue(g.mutable_input(), "k", {B, Hk, Sk, D});
      addValue(g.mutable_input(), "v", {B, Hk, Sk, D});
      addValue(g.mutable_input(), "mask", {B, 1, Sq, Sk});
      addValue(g.mutable_output(), "y", {B, H, Sq, D});
      inputs.emplace("q", kiln::Tensor::fromFloats({B, H, Sq, D}, q));
      inputs.emplace("k", kiln::Tensor::fromFloats({B, Hk, Sk, D}, k));
      inputs.emplace("v", kiln::Tensor::fromFloats({B, Hk, Sk, D}, v));
      inputs.emplace("mask", kiln::Tensor::fromFloats({B, 1, Sq, Sk}, add));
    }
    auto *node = addNode(m, "Attention", {"q", "k", "v", "mask"}, {"y"});
    auto intAttr = [&](const char *name, int64_t value) {
      auto *a = node->add_attribute();
      a->set_name(name);
      a->set_type(::onnx::AttributeProto::INT);
      a->set_i(value);
    };
    double scale = 1.0 / std::sqrt(double(D));
    if (threeD) {
      intAttr("q_num_heads", H);
      intAttr("kv_num_heads", Hk);
      intAttr("is_causal", 1);
    } else {
      scale = 0.3;
      for (auto [name, value] : {std::pair{"scale", 0.3f}, {"softcap", 0.5f}}) {
        auto *a = node->add_attribute();
        a->set_name(name);
        a->set_type(::onnx::AttributeProto::FLOAT);
        a->set_f(value);
      }
    }
    auto mask = [&](int64_t b, int64_t, int64_t i, int64_t j) -> double {
      if (!threeD)
        return add[(b * Sq + i) * Sk + j];
      bool visible = keep[(b * Sq + i) * Sk + j] && j <= i;
      return visible ? 0.0 : -INFINITY;
    };
    std::vector<double> want = naiveAttention(q, k, v, B, H, Hk, Sq, Sk, D,
                                              scale, mask, threeD ? 0 : 0.5);
    if (threeD) // the oracle is [B, H, Sq, D]; y is [B, Sq, H * D]
      want = [&] {
        std::vector<double> w(want.size());
        for (int64_t b = 0; b < B; ++b)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < Sq; ++i)
              for (int64_t d = 0; d < D; ++d)
                w[((b * Sq + i) * H + h) * D + d] =
                    want[((b * H + h) * Sq + i) * D + d];
        return w;
      }();

    auto module = import(m);
    ASSERT_TRUE(module) << module.status().message();
    EXPECT_THAT(module->toText(), HasSubstr("kiln.attention"));
    for (std::string target : {"reference", "cpu"}) {
      auto exe =
          kiln::compile(*module, kiln::CompileOptions().setTarget(target));
      ASSERT_TRUE(exe) << exe.status().message();
      auto out = exe->run(inputs);
      ASSERT_TRUE(out) << out.status().message();
      std::vector<double> got = out->at("y").toDoubles();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i)
        EXPECT_NEAR(got[i], want[i], 1e-5)
            << (threeD ? "3-D" : "4-D") << " on " << target << " [" << i << "]";
    }
  }
}

TEST(OnnxImport, AttentionOpset23NamesWhatIsUnsupported) {
  auto m = makeModel(23);
  auto &g = *m.mutable_graph();
  for (const char *name : {"q", "k", "v", "pk", "pv"})
    addValue(g.mutable_input(), name, {1, 2, 3, 4});
  addValue(g.mutable_output(), "y", {1, 2, 3, 4});
  addNode(m, "Attention", {"q", "k", "v", "", "pk", "pv"}, {"y"});
  auto module = import(m);
  ASSERT_FALSE(module);
  EXPECT_THAT(module.status().message(), HasSubstr("Attention"));
  EXPECT_THAT(module.status().message(), HasSubstr("KV cache"));

  // 3-D operands need the head counts to be split into heads.
  auto flat = makeModel(23);
  for (const char *name : {"q", "k", "v"})
    addValue(flat.mutable_graph()->mutable_input(), name, {1, 3, 8});
  addValue(flat.mutable_graph()->mutable_output(), "y", {1, 3, 8});
  addNode(flat, "Attention", {"q", "k", "v"}, {"y"});
  auto noHeads = import(flat);
  ASSERT_FALSE(noHeads);
  EXPECT_THAT(noHeads.status().message(), HasSubstr("q_num_heads"));
}
