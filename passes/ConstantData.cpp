//===- passes/ConstantData.cpp - The data of a kiln.constant --------------===//
#include "passes/ConstantData.h"
#include "ir/ElementTypes.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/DialectResourceBlobManager.h"

#include <cstring>

namespace kiln {

/// The bytes of a dense constant in the runtime's layout.
StatusOr<Tensor> constantToTensor(mlir::Attribute attr) {
  // dense_resource<...>: the blob already holds the little-endian bytes.
  if (auto resource = mlir::dyn_cast<mlir::DenseResourceElementsAttr>(attr)) {
    auto type = mlir::cast<mlir::RankedTensorType>(resource.getType());
    auto dtype = fromMlirElementType(type.getElementType());
    if (!dtype)
      return Status::error("constant has an unsupported element type");
    mlir::AsmResourceBlob *blob = resource.getRawHandle().getBlob();
    if (!blob)
      return Status::error("constant refers to a dense_resource blob that is "
                           "not defined in the file");
    llvm::ArrayRef<char> data = blob->getData();
    std::vector<int64_t> shape(type.getShape().begin(), type.getShape().end());
    size_t expected = numElements(shape) * dtypeSize(*dtype);
    if (data.size() != expected)
      return Status::error("dense_resource blob holds " +
                           std::to_string(data.size()) + " bytes, expected " +
                           std::to_string(expected));
    return Tensor::fromBytes(*dtype, shape, data.data());
  }
  auto dense = mlir::dyn_cast<mlir::DenseElementsAttr>(attr);
  if (!dense)
    return Status::error("constant value is neither dense nor dense_resource");
  auto type = mlir::cast<mlir::RankedTensorType>(dense.getType());
  auto dtype = fromMlirElementType(type.getElementType());
  if (!dtype)
    return Status::error("constant has an unsupported element type");
  std::vector<int64_t> shape(type.getShape().begin(), type.getShape().end());
  Tensor t = Tensor::zeros(*dtype, shape);
  auto *out = static_cast<uint8_t *>(t.data());
  size_t width = dtypeSize(*dtype);
  int64_t i = 0;
  if (mlir::isa<mlir::FloatType>(type.getElementType())) {
    for (const llvm::APFloat &f : dense.getValues<llvm::APFloat>()) {
      uint64_t bits = f.bitcastToAPInt().getZExtValue();
      std::memcpy(out + i++ * width, &bits, width); // little-endian host
    }
  } else {
    for (const llvm::APInt &v : dense.getValues<llvm::APInt>()) {
      uint64_t bits = v.getBitWidth() == 1
                          ? v.getZExtValue()
                          : static_cast<uint64_t>(v.getSExtValue());
      std::memcpy(out + i++ * width, &bits, width);
    }
  }
  return t;
}

} // namespace kiln
