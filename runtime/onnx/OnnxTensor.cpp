//===- OnnxTensor.cpp - ONNX TensorProto reader ---------------------------===//
#include "OnnxTensor.h"

#include "onnx/onnx_pb.h"

#include <cstring>
#include <fstream>
#include <sstream>

namespace kiln {

std::optional<DType> dtypeFromOnnxType(int32_t t) {
  using TP = onnx::TensorProto;
  switch (t) {
  case TP::FLOAT:
    return DType::f32;
  case TP::DOUBLE:
    return DType::f64;
  case TP::INT64:
    return DType::i64;
  case TP::INT32:
    return DType::i32;
  case TP::INT8:
    return DType::i8;
  case TP::UINT8:
    return DType::u8;
  case TP::BOOL:
    return DType::i1;
  case TP::FLOAT16:
    return DType::f16;
  case TP::BFLOAT16:
    return DType::bf16;
  default:
    return std::nullopt;
  }
}

StatusOr<Tensor> tensorFromOnnxProto(const ::onnx::TensorProto &proto,
                                     const std::string *externalData) {
  auto err = [&](const std::string &msg) {
    return Status::error("tensor '" + proto.name() + "': " + msg);
  };
  auto dtype = dtypeFromOnnxType(proto.data_type());
  if (!dtype)
    return err("unsupported data_type " + std::to_string(proto.data_type()));
  bool external = proto.data_location() == onnx::TensorProto::EXTERNAL;
  if (external && !externalData)
    return err("external data is not supported here");
  std::vector<int64_t> shape(proto.dims().begin(), proto.dims().end());
  int64_t bytes = static_cast<int64_t>(dtypeSize(*dtype));
  for (int64_t d : shape) {
    if (d < 0)
      return err("negative dimension in " + shapeToString(shape));
    if (__builtin_mul_overflow(bytes, d, &bytes) || bytes > (int64_t(1) << 48))
      return err("shape " + shapeToString(shape) + " is too large");
  }
  Tensor t = Tensor::zeros(*dtype, shape);
  int64_t n = t.numElements();
  size_t size = dtypeSize(*dtype);
  auto countError = [&](int64_t got) {
    return err("holds " + std::to_string(got) + " values, shape " +
               shapeToString(shape) + " needs " + std::to_string(n));
  };
  if (external || proto.has_raw_data()) {
    const std::string &raw = external ? *externalData : proto.raw_data();
    if (raw.size() != static_cast<size_t>(n) * size)
      return err(std::string(external ? "external data" : "raw_data") +
                 " has " + std::to_string(raw.size()) + " bytes, " +
                 dtypeName(*dtype) + " " + shapeToString(shape) + " needs " +
                 std::to_string(n * size));
    if (!raw.empty())
      std::memcpy(t.data(), raw.data(), raw.size());
    return t;
  }
  switch (*dtype) {
  case DType::f32:
    if (proto.float_data_size() != n)
      return countError(proto.float_data_size());
    for (int64_t i = 0; i < n; ++i)
      t.dataAs<float>()[i] = proto.float_data(i);
    break;
  case DType::f64:
    if (proto.double_data_size() != n)
      return countError(proto.double_data_size());
    for (int64_t i = 0; i < n; ++i)
      t.dataAs<double>()[i] = proto.double_data(i);
    break;
  case DType::i64:
    if (proto.int64_data_size() != n)
      return countError(proto.int64_data_size());
    for (int64_t i = 0; i < n; ++i)
      t.dataAs<int64_t>()[i] = proto.int64_data(i);
    break;
  default:
    // INT32, INT8, UINT8, BOOL, FLOAT16 (bits), BFLOAT16 (bits) all live in
    // int32_data, one value per element.
    if (proto.int32_data_size() != n)
      return countError(proto.int32_data_size());
    for (int64_t i = 0; i < n; ++i) {
      int32_t v = proto.int32_data(i);
      uint8_t *p = static_cast<uint8_t *>(t.data()) + i * size;
      if (size == 4)
        std::memcpy(p, &v, 4);
      else if (size == 2) {
        uint16_t h = static_cast<uint16_t>(v);
        std::memcpy(p, &h, 2);
      } else
        *p = *dtype == DType::i1 ? (v != 0) : static_cast<uint8_t>(v);
    }
  }
  return t;
}

StatusOr<Tensor> readOnnxTensorProto(const std::string &path,
                                     std::string *name) {
  auto err = [&](const std::string &msg) {
    return Status::error("onnx tensor '" + path + "': " + msg);
  };
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      return err("cannot open file");
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::string bytes = buffer.str();
    onnx::TensorProto proto;
    if (!proto.ParseFromString(bytes))
      return err("not a valid serialized TensorProto");
    if (name)
      *name = proto.name();
    if (proto.data_location() == onnx::TensorProto::EXTERNAL)
      return err("external data is not supported");
    StatusOr<Tensor> t = tensorFromOnnxProto(proto);
    if (!t)
      return err(t.status().message());
    return t;
  } catch (const std::exception &e) {
    return err(e.what());
  }
}

} // namespace kiln
