//===- passes/ConstantData.h - The data of a kiln.constant ------*- C++ -*-===//
//
// Reads the value of a `kiln.constant` (a dense or dense_resource elements
// attribute) into a runtime Tensor. Codegen uses it to bind constants; passes
// use it to inspect constants (e.g. whether a mask is causal).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_CONSTANTDATA_H
#define KILN_PASSES_CONSTANTDATA_H

#include "kiln/runtime.h"

#include "mlir/IR/Attributes.h"

namespace kiln {

/// The elements of `attr` in the runtime's layout, or why they cannot be
/// read (unsupported element type, undefined or truncated resource blob).
StatusOr<Tensor> constantToTensor(mlir::Attribute attr);

} // namespace kiln

#endif // KILN_PASSES_CONSTANTDATA_H
