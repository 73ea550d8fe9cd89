//===- OnnxTensor.h - ONNX TensorProto files to Tensors ---------*- C++ -*-===//
//
// Reads the bare TensorProto `.pb` files of the ONNX backend test layout
// (`test_data_set_N/input_K.pb`). Kept out of kiln_runtime so a deployment
// does not need protobuf.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_ONNX_ONNXTENSOR_H
#define KILN_RUNTIME_ONNX_ONNXTENSOR_H

#include "kiln/runtime.h"

#include <optional>
#include <string>

namespace onnx {
class TensorProto;
} // namespace onnx

namespace kiln {

/// The kiln dtype of an ONNX TensorProto data_type, or nullopt when kiln has
/// no such element type.
std::optional<DType> dtypeFromOnnxType(int32_t dataType);

/// Decodes a TensorProto message (raw_data or the typed fields). When the
/// tensor's data is stored externally the caller reads it (and checks its
/// path) and passes the bytes as `externalData`. Errors name the tensor.
StatusOr<Tensor> tensorFromOnnxProto(const ::onnx::TensorProto &proto,
                                     const std::string *externalData = nullptr);

/// Reads a serialized onnx.TensorProto. Accepts raw_data and the typed fields
/// (float_data, int64_data, int32_data, double_data) for FLOAT, DOUBLE, INT64,
/// INT32, INT8, UINT8, BOOL, FLOAT16 and BFLOAT16. When `name` is not null it
/// receives the tensor's name.
StatusOr<Tensor> readOnnxTensorProto(const std::string &path,
                                     std::string *name = nullptr);

} // namespace kiln

#endif // KILN_RUNTIME_ONNX_ONNXTENSOR_H
