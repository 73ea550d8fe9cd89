//===- frontends/onnx/Importer.h - ONNX importer internals -----*- C++ -*-===//
//
// The pieces the op handlers share: the handler table keyed by op type and
// opset range, and NodeContext, through which a handler reads its node's
// inputs and attributes, creates kiln ops (result types inferred through
// InferTypeOpInterface, as the DSL does) and defines its outputs.
//
// A value is either an MLIR value or a host tensor known at import time (an
// initializer, a Constant, a folded shape computation, or a bound input).
// Handlers that need a value at import time (Reshape's shape, Slice bounds)
// ask for the host tensor; handlers of shape-computing ops fold on host
// tensors when all their inputs are known, so PyTorch's Shape -> Gather ->
// Concat -> Reshape chains never reach the IR.
//
// Handlers report problems by throwing ImportError (a model error) or
// Unsupported (a feature kiln lacks); the importer turns both into a Status
// located at the node. This library is built with exceptions on.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTENDS_ONNX_IMPORTER_H
#define KILN_FRONTENDS_ONNX_IMPORTER_H

#include "kiln/runtime.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Value.h"

#include "onnx/onnx_pb.h"

#include <climits>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::onnx_import {

/// A model error found by a handler (bad attribute, shape contradiction).
class ImportError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A feature of an op that kiln does not support (3-D convolution, ...).
class Unsupported : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class Importer;

/// One node being imported: its inputs, attributes, and the builder.
class NodeContext {
public:
  NodeContext(Importer &importer, const ::onnx::NodeProto &node, int opset,
              mlir::Location loc);

  const ::onnx::NodeProto &node() const { return node_; }
  const std::string &opType() const { return node_.op_type(); }
  int opset() const { return opset_; }
  mlir::Location loc() const { return loc_; }
  mlir::MLIRContext *ctx() const;
  mlir::OpBuilder &builder();

  // Inputs. Optional inputs may be absent (index past the end or "").
  int numInputs() const { return node_.input_size(); }
  bool hasInput(int i) const;
  /// The input as an IR value (host tensors become kiln.constant / params).
  mlir::Value input(int i);
  /// The input's host value when known at import time, else nullptr.
  const Tensor *constant(int i) const;
  /// The input's host value; an error naming `what` when it is not known.
  const Tensor &requireConstant(int i, const std::string &what);
  /// Integer values of a known input (any integer dtype).
  std::vector<int64_t> requireInts(int i, const std::string &what);
  bool allInputsConstant() const;
  std::vector<int64_t> shape(int i) const;
  int64_t rank(int i) const { return static_cast<int64_t>(shape(i).size()); }
  DType dtype(int i) const;

  // Outputs.
  int numOutputs() const { return node_.output_size(); }
  /// True when output `i` exists and something reads it.
  bool outputUsed(int i) const;
  void setOutput(int i, mlir::Value v);
  void setOutput(int i, Tensor host);

  // Attributes.
  const ::onnx::AttributeProto *attr(const std::string &name) const;
  bool hasAttr(const std::string &name) const { return attr(name); }
  int64_t attrInt(const std::string &name, int64_t def) const;
  double attrFloat(const std::string &name, double def) const;
  std::string attrString(const std::string &name, const std::string &def) const;
  std::vector<int64_t> attrInts(const std::string &name,
                                std::vector<int64_t> def = {}) const;
  std::vector<double> attrFloats(const std::string &name) const;
  /// The value of a tensor attribute (Constant's `value`).
  Tensor attrTensor(const std::string &name) const;
  /// A required integer attribute; an error when absent.
  int64_t requireAttrInt(const std::string &name) const;

  // Building.
  /// Creates kiln op `opName` (e.g. "kiln.add") with inferred result types.
  mlir::Value create(llvm::StringRef opName,
                     llvm::ArrayRef<mlir::Value> operands,
                     llvm::ArrayRef<mlir::NamedAttribute> attrs = {});
  mlir::Value unary(llvm::StringRef opName, mlir::Value x) {
    return create(opName, {x});
  }
  mlir::Value binary(llvm::StringRef opName, mlir::Value a, mlir::Value b) {
    return create(opName, {a, b});
  }
  mlir::Value compare(llvm::StringRef predicate, mlir::Value a, mlir::Value b);
  mlir::Value where(mlir::Value c, mlir::Value a, mlir::Value b);
  mlir::Value cast(mlir::Value x, DType dtype);
  mlir::Value reshape(mlir::Value x, llvm::ArrayRef<int64_t> shape);
  mlir::Value transpose(mlir::Value x, llvm::ArrayRef<int64_t> perm);
  mlir::Value broadcastTo(mlir::Value x, llvm::ArrayRef<int64_t> shape);
  mlir::Value reduce(llvm::StringRef opName, mlir::Value x,
                     llvm::ArrayRef<int64_t> axes, bool keepdims);
  /// A kiln.constant holding `t`.
  mlir::Value constantValue(const Tensor &t);
  /// A rank-0 constant of `dtype` holding `v`.
  mlir::Value scalar(double v, DType dtype);
  /// A rank-0 constant with the element type of `like`.
  mlir::Value scalarLike(double v, mlir::Value like);

  mlir::NamedAttribute i64Attr(llvm::StringRef name, int64_t v);
  mlir::NamedAttribute f64Attr(llvm::StringRef name, double v);
  mlir::NamedAttribute boolAttr(llvm::StringRef name, bool v);
  mlir::NamedAttribute strAttr(llvm::StringRef name, llvm::StringRef v);
  mlir::NamedAttribute arrayAttr(llvm::StringRef name,
                                 llvm::ArrayRef<int64_t> v);

  /// Throws ImportError("<message>").
  [[noreturn]] void fail(const std::string &message) const;
  /// `axis` in [0, rank), counting negative axes from the end; fails when it
  /// is out of range.
  int64_t normalizeAxis(int64_t axis, int64_t rank) const;
  /// Throws Unsupported("<detail>").
  [[noreturn]] void unsupported(const std::string &detail) const;

private:
  Importer &importer_;
  const ::onnx::NodeProto &node_;
  int opset_;
  mlir::Location loc_;
};

/// Shape and element type of an IR value.
std::vector<int64_t> shapeOf(mlir::Value v);
DType dtypeOf(mlir::Value v);
bool isFloat(DType t);
/// kiln DType of an ONNX TensorProto data type; nullopt for the others.
std::optional<DType> dtypeFromOnnx(int32_t onnxType);
std::string onnxTypeName(int32_t onnxType);

/// Imports one node; throws ImportError / Unsupported.
using Handler = std::function<void(NodeContext &)>;

/// Handlers by op type (default domain), each valid for an opset range.
class HandlerRegistry {
public:
  /// Registers `fn` for `opType` at opsets [sinceVersion, untilVersion].
  void add(const std::string &opType, int sinceVersion, Handler fn,
           int untilVersion = INT_MAX);
  /// The handler for `opType` at `opset`, or nullptr.
  const Handler *lookup(const std::string &opType, int opset) const;

private:
  struct Entry {
    int since, until;
    Handler fn;
  };
  std::map<std::string, std::vector<Entry>> entries_;
};

/// The table of every handler (built once).
const HandlerRegistry &handlerRegistry();

// Each op family registers its handlers (one file per family).
void registerMathHandlers(HandlerRegistry &registry);
void registerNNHandlers(HandlerRegistry &registry);
void registerTensorHandlers(HandlerRegistry &registry);
void registerReductionHandlers(HandlerRegistry &registry);
void registerIndexingHandlers(HandlerRegistry &registry);
void registerEinsumHandler(HandlerRegistry &registry);
void registerAttentionHandler(HandlerRegistry &registry);

/// Host tensors: import-time evaluation of small shape computations.
namespace host {
std::vector<int64_t> toInts(const Tensor &t);
Tensor fromInts(const std::vector<int64_t> &shape,
                const std::vector<int64_t> &values, DType dtype = DType::i64);
Tensor reshape(const Tensor &t, const std::vector<int64_t> &shape);
Tensor cast(const Tensor &t, DType dtype);
Tensor broadcastTo(const Tensor &t, const std::vector<int64_t> &shape);
Tensor transpose(const Tensor &t, const std::vector<int64_t> &perm);
Tensor gather(const Tensor &data, const Tensor &indices, int64_t axis);
Tensor concat(const std::vector<Tensor> &ts, int64_t axis);
/// Normalized bounds as kiln.slice takes them.
Tensor slice(const Tensor &t, const std::vector<int64_t> &starts,
             const std::vector<int64_t> &ends,
             const std::vector<int64_t> &steps);
/// Elementwise with broadcasting on int64 (integer dtypes) or double values;
/// `compare` ops give i1.
Tensor binary(const Tensor &a, const Tensor &b, const std::string &op);
Tensor where(const Tensor &c, const Tensor &a, const Tensor &b);
/// The i1 [rows, cols] mask true where j - i >= k (upper) or j - i <= k
/// (lower): Trilu's mask, and attention's causal triangle (lower, k = 0).
Tensor triangle(int64_t rows, int64_t cols, int64_t k, bool upper);
} // namespace host

} // namespace kiln::onnx_import

#endif // KILN_FRONTENDS_ONNX_IMPORTER_H
