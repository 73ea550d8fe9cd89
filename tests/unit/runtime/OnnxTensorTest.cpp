//===- OnnxTensorTest.cpp - ONNX TensorProto reader -----------------------===//
#include "OnnxTensor.h"

#include "onnx/onnx_pb.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

using namespace kiln;

namespace {
std::string writeProto(const onnx::TensorProto &p, const std::string &name) {
  auto dir = std::filesystem::temp_directory_path() / "kiln_onnx_tests";
  std::filesystem::create_directories(dir);
  std::string path = (dir / name).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  p.SerializeToOstream(&out);
  return path;
}
} // namespace

TEST(OnnxTensor, TypedFields) {
  onnx::TensorProto p;
  p.set_name("x");
  p.set_data_type(onnx::TensorProto::FLOAT);
  p.add_dims(2);
  p.add_dims(2);
  for (float v : {1.f, -2.f, 3.5f, 4.f})
    p.add_float_data(v);
  std::string name;
  auto t = readOnnxTensorProto(writeProto(p, "f.pb"), &name);
  ASSERT_TRUE(t.isOk()) << t.status().message();
  EXPECT_EQ(name, "x");
  EXPECT_EQ(t->shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t->toDoubles(), (std::vector<double>{1, -2, 3.5, 4}));

  onnx::TensorProto h;
  h.set_data_type(onnx::TensorProto::FLOAT16);
  h.add_dims(2);
  h.add_int32_data(0x3C00); // 1.0
  h.add_int32_data(0xC000); // -2.0
  t = readOnnxTensorProto(writeProto(h, "h.pb"));
  ASSERT_TRUE(t.isOk()) << t.status().message();
  EXPECT_EQ(t->dtype(), DType::f16);
  EXPECT_EQ(t->toDoubles(), (std::vector<double>{1, -2}));

  onnx::TensorProto b;
  b.set_data_type(onnx::TensorProto::BOOL);
  b.add_dims(3);
  for (int v : {1, 0, 1})
    b.add_int32_data(v);
  t = readOnnxTensorProto(writeProto(b, "b.pb"));
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ(t->dtype(), DType::i1);
  EXPECT_EQ(t->toDoubles(), (std::vector<double>{1, 0, 1}));

  onnx::TensorProto i;
  i.set_data_type(onnx::TensorProto::INT64);
  i.add_dims(2);
  i.add_int64_data(-5);
  i.add_int64_data(1LL << 40);
  t = readOnnxTensorProto(writeProto(i, "i.pb"));
  ASSERT_TRUE(t.isOk());
  EXPECT_EQ(t->dataAs<int64_t>()[1], 1LL << 40);
}

TEST(OnnxTensor, RawDataAndErrors) {
  onnx::TensorProto p;
  p.set_data_type(onnx::TensorProto::DOUBLE);
  p.add_dims(3);
  double v[3] = {1.25, -0.5, 8};
  p.set_raw_data(std::string(reinterpret_cast<char *>(v), sizeof(v)));
  auto t = readOnnxTensorProto(writeProto(p, "raw.pb"));
  ASSERT_TRUE(t.isOk()) << t.status().message();
  EXPECT_EQ(t->toDoubles(), (std::vector<double>{1.25, -0.5, 8}));

  p.add_dims(2); // raw_data now too short for [3, 2]
  auto bad = readOnnxTensorProto(writeProto(p, "short.pb"));
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("raw_data"), std::string::npos);

  onnx::TensorProto s;
  s.set_data_type(onnx::TensorProto::STRING);
  bad = readOnnxTensorProto(writeProto(s, "str.pb"));
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("data_type"), std::string::npos);
  EXPECT_FALSE(readOnnxTensorProto("/nonexistent/input_0.pb").isOk());
}

TEST(OnnxTensor, BackendTestData) {
  const char *path = "/usr/share/libonnx-testdata/data/node/test_abs/"
                     "test_data_set_0/input_0.pb";
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "libonnx-testdata is not installed (" << path << ")";
  std::string name;
  auto t = readOnnxTensorProto(path, &name);
  ASSERT_TRUE(t.isOk()) << t.status().message();
  EXPECT_EQ(t->dtype(), DType::f32);
  EXPECT_EQ(t->shape(), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_FALSE(name.empty());
}
