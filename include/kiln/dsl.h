//===- kiln/dsl.h - C++ DSL for building kiln models -----------*- C++ -*-===//
//
// A graph builder whose model code reads like model code:
//
//   kiln::dsl::Graph g("block");
//   auto x = g.input("x", {1, 128, 768});
//   auto h = kiln::nn::linear(x, 3072, "fc1").gelu();
//   g.output("y", kiln::nn::linear(h, 768, "fc2") + x);
//
// Every op is created in the `kiln` dialect with the caller's file and line as
// its location; a shape or type error throws kiln::dsl::Error whose message
// starts with that file and line. Parameters are function arguments named by
// their scope path ("block0.attn.q.weight") and initialized deterministically
// from the graph's seed and the name. This header does not include MLIR.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DSL_H
#define KILN_DSL_H

#include "kiln/runtime.h"

#include <memory>
#include <source_location>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

/// A kiln IR module (one function) with the values of its parameters.
/// Owns its MLIR context. Movable, not copyable.
class Module {
public:
  /// Parses a .mlir file. Parameters without a value in `weights` are reported
  /// by compile() as missing.
  static StatusOr<Module> parseFile(const std::string &path,
                                    TensorMap weights = {});
  static StatusOr<Module> parseText(const std::string &text,
                                    TensorMap weights = {});

  /// The IR as text (generic locations off, readable form).
  std::string toText(bool withLocations = false) const;
  /// Name of the model (the function's name).
  std::string name() const;
  /// The parameters the model function declares (`kiln.param` arguments).
  std::vector<Executable::Signature> parameters() const;
  /// Gives every parameter without a value in weights() a seeded random one
  /// (normal, std 0.02, for floats; zeros otherwise). Returns how many.
  int64_t initializeMissingWeights(uint64_t seed = 0);

  TensorMap &weights();
  const TensorMap &weights() const;

  Module(Module &&) noexcept;
  Module &operator=(Module &&) noexcept;
  ~Module();

  struct Impl;
  Impl *impl() const { return impl_.get(); }
  explicit Module(std::unique_ptr<Impl> impl);

private:
  std::unique_ptr<Impl> impl_;
};

namespace dsl {

using Loc = std::source_location;

/// A model-code error (bad shape, bad argument), with the user's location.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Parameter initializers.
struct Init {
  enum class Kind {
    zeros,
    ones,
    normal,
    uniform,
    constant
  } kind = Kind::normal;
  double a = 0.0,
         b = 0.02; // normal: mean, std; uniform: low, high; constant: a
  static Init zeros() { return {Kind::zeros, 0, 0}; }
  static Init ones() { return {Kind::ones, 1, 0}; }
  static Init normal(double std = 0.02, double mean = 0.0) {
    return {Kind::normal, mean, std};
  }
  static Init uniform(double low, double high) {
    return {Kind::uniform, low, high};
  }
  static Init constant(double v) { return {Kind::constant, v, 0}; }
};

class Graph;

/// A handle to a value in a Graph. Cheap to copy; valid while the Graph lives.
class Tensor {
public:
  Tensor() = default;

  const std::vector<int64_t> &shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  /// Size of dim `i` (negative counts from the end).
  int64_t dim(int64_t i, Loc loc = Loc::current()) const;
  Graph &graph() const { return *graph_; }

  // Elementwise unary.
  Tensor neg(Loc loc = Loc::current()) const;
  Tensor abs(Loc loc = Loc::current()) const;
  Tensor exp(Loc loc = Loc::current()) const;
  Tensor log(Loc loc = Loc::current()) const;
  Tensor sqrt(Loc loc = Loc::current()) const;
  Tensor rsqrt(Loc loc = Loc::current()) const;
  Tensor tanh(Loc loc = Loc::current()) const;
  Tensor sigmoid(Loc loc = Loc::current()) const;
  Tensor relu(Loc loc = Loc::current()) const;
  /// Exact (erf) GELU, or the tanh approximation.
  Tensor gelu(bool tanhApproximation = false, Loc loc = Loc::current()) const;
  Tensor silu(Loc loc = Loc::current()) const;
  Tensor erf(Loc loc = Loc::current()) const;
  Tensor reciprocal(Loc loc = Loc::current()) const;

  // Binary, NumPy broadcasting.
  Tensor add(const Tensor &o, Loc loc = Loc::current()) const;
  Tensor sub(const Tensor &o, Loc loc = Loc::current()) const;
  Tensor mul(const Tensor &o, Loc loc = Loc::current()) const;
  Tensor div(const Tensor &o, Loc loc = Loc::current()) const;
  Tensor pow(const Tensor &o, Loc loc = Loc::current()) const;
  Tensor maximum(const Tensor &o, Loc loc = Loc::current()) const;
  Tensor minimum(const Tensor &o, Loc loc = Loc::current()) const;
  /// Comparison producing i1: predicate is eq, ne, lt, le, gt, ge.
  Tensor compare(const std::string &predicate, const Tensor &o,
                 Loc loc = Loc::current()) const;
  /// where(this, a, b): this must be i1.
  Tensor select(const Tensor &a, const Tensor &b,
                Loc loc = Loc::current()) const;
  Tensor cast(DType dtype, Loc loc = Loc::current()) const;

  Tensor matmul(const Tensor &o, bool transposeA = false,
                bool transposeB = false, Loc loc = Loc::current()) const;
  Tensor softmax(int64_t axis = -1, Loc loc = Loc::current()) const;
  Tensor logSoftmax(int64_t axis = -1, Loc loc = Loc::current()) const;

  // Reductions; empty axes reduce everything.
  Tensor sum(std::vector<int64_t> axes, bool keepdims = false,
             Loc loc = Loc::current()) const;
  Tensor mean(std::vector<int64_t> axes, bool keepdims = false,
              Loc loc = Loc::current()) const;
  Tensor max(std::vector<int64_t> axes, bool keepdims = false,
             Loc loc = Loc::current()) const;
  Tensor min(std::vector<int64_t> axes, bool keepdims = false,
             Loc loc = Loc::current()) const;

  // Shape ops.
  /// One dim may be -1 (inferred).
  Tensor reshape(std::vector<int64_t> shape, Loc loc = Loc::current()) const;
  Tensor transpose(std::vector<int64_t> perm, Loc loc = Loc::current()) const;
  /// Python-style slice of one axis: [start:end:step], negative indices and
  /// out-of-range bounds clamped as in NumPy.
  Tensor slice(int64_t axis, int64_t start, int64_t end, int64_t step = 1,
               Loc loc = Loc::current()) const;
  Tensor broadcastTo(std::vector<int64_t> shape,
                     Loc loc = Loc::current()) const;
  /// Rows of this table selected by `indices` along `axis` (embedding lookup).
  Tensor gather(const Tensor &indices, int64_t axis = 0,
                Loc loc = Loc::current()) const;

  /// Opaque handle to the underlying mlir::Value.
  void *value() const { return value_; }
  Tensor(Graph *graph, void *value, DType dtype, std::vector<int64_t> shape)
      : graph_(graph), value_(value), dtype_(dtype), shape_(std::move(shape)) {}

private:
  Graph *graph_ = nullptr;
  void *value_ = nullptr;
  DType dtype_ = DType::f32;
  std::vector<int64_t> shape_;
};

// Operators use the location of the innermost Graph::Scope (operators cannot
// capture the caller's line); scalars become constants of the tensor's dtype.
Tensor operator+(const Tensor &a, const Tensor &b);
Tensor operator-(const Tensor &a, const Tensor &b);
Tensor operator*(const Tensor &a, const Tensor &b);
Tensor operator/(const Tensor &a, const Tensor &b);
Tensor operator-(const Tensor &a);
Tensor operator+(const Tensor &a, double b);
Tensor operator-(const Tensor &a, double b);
Tensor operator*(const Tensor &a, double b);
Tensor operator/(const Tensor &a, double b);
Tensor operator+(double a, const Tensor &b);
Tensor operator-(double a, const Tensor &b);
Tensor operator*(double a, const Tensor &b);
Tensor operator/(double a, const Tensor &b);

Tensor concat(const std::vector<Tensor> &xs, int64_t axis,
              Loc loc = Loc::current());
Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b,
             Loc loc = Loc::current());

/// Builds one model function. Not thread-safe.
class Graph {
public:
  explicit Graph(std::string name, uint64_t seed = 0);
  ~Graph();
  Graph(const Graph &) = delete;
  Graph &operator=(const Graph &) = delete;

  /// A model input (function argument named `name`).
  Tensor input(const std::string &name, std::vector<int64_t> shape,
               DType dtype = DType::f32, Loc loc = Loc::current());
  /// A parameter named by the current scope path plus `name`, initialized now.
  Tensor param(const std::string &name, std::vector<int64_t> shape,
               Init init = Init::normal(), DType dtype = DType::f32,
               Loc loc = Loc::current());
  /// A constant tensor from values (converted to `dtype`).
  Tensor constant(std::vector<int64_t> shape, const std::vector<double> &values,
                  DType dtype = DType::f32, Loc loc = Loc::current());
  /// A rank-0 constant.
  Tensor scalar(double value, DType dtype = DType::f32,
                Loc loc = Loc::current());
  /// Marks `t` as a model output named `name` (order of calls = order).
  void output(const std::string &name, const Tensor &t);

  /// Scopes name parameters ("block0" + "attn" -> "block0.attn.q.weight") and
  /// give operators a location. Nest freely.
  class Scope {
  public:
    Scope(Graph &g, const std::string &name, Loc loc = Loc::current());
    ~Scope();
    Scope(const Scope &) = delete;
    Scope &operator=(const Scope &) = delete;

  private:
    Graph &graph_;
  };

  /// The current scope path, "" at top level.
  std::string scopePath() const;
  /// Parameter count so far.
  int64_t parameterCount() const;

  /// Finishes the function (return of the outputs), verifies it and hands
  /// over the module with the weights. The Graph is empty afterwards.
  Module finish();

  struct Impl;
  Impl &impl() { return *impl_; }

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace dsl

/// Layers written with the DSL. Each takes the name of its parameter scope.
namespace nn {
using dsl::Loc;
using dsl::Tensor;

/// y = x W + b with W [in, out].
Tensor linear(const Tensor &x, int64_t outFeatures, const std::string &name,
              bool bias = true, Loc loc = Loc::current());
Tensor layerNorm(const Tensor &x, const std::string &name, double eps = 1e-5,
                 Loc loc = Loc::current());
Tensor rmsNorm(const Tensor &x, const std::string &name, double eps = 1e-6,
               Loc loc = Loc::current());
/// Table [vocab, dim] gathered by integer `ids`.
Tensor embedding(const Tensor &ids, int64_t vocab, int64_t dim,
                 const std::string &name, Loc loc = Loc::current());

struct Conv2dOptions {
  int64_t kernel = 3, stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
  /// Conv2dOptions().setKernel(3).setStride(2).setPadding(1)
  Conv2dOptions &setKernel(int64_t v) {
    kernel = v;
    return *this;
  }
  Conv2dOptions &setStride(int64_t v) {
    stride = v;
    return *this;
  }
  Conv2dOptions &setPadding(int64_t v) {
    padding = v;
    return *this;
  }
  Conv2dOptions &setDilation(int64_t v) {
    dilation = v;
    return *this;
  }
  Conv2dOptions &setGroups(int64_t v) {
    groups = v;
    return *this;
  }
  Conv2dOptions &setBias(bool v) {
    bias = v;
    return *this;
  }
};
Tensor conv2d(const Tensor &x, int64_t outChannels, const std::string &name,
              const Conv2dOptions &options = {}, Loc loc = Loc::current());
/// Inference-form batch norm with named scale/bias/mean/var parameters.
Tensor batchNorm(const Tensor &x, const std::string &name, double eps = 1e-5,
                 Loc loc = Loc::current());
Tensor maxPool2d(const Tensor &x, int64_t kernel, int64_t stride,
                 int64_t padding = 0, Loc loc = Loc::current());
Tensor avgPool2d(const Tensor &x, int64_t kernel, int64_t stride,
                 int64_t padding = 0, Loc loc = Loc::current());
Tensor globalAvgPool(const Tensor &x, Loc loc = Loc::current());

/// linear -> gelu -> linear.
Tensor mlp(const Tensor &x, int64_t hidden, const std::string &name,
           Loc loc = Loc::current());

struct AttentionOptions {
  int64_t heads = 1;
  bool causal = false;
  AttentionOptions &setHeads(int64_t v) {
    heads = v;
    return *this;
  }
  AttentionOptions &setCausal(bool v) {
    causal = v;
    return *this;
  }
};
/// Multi-head self-attention on x [B, S, D], written unfused:
/// q k^T -> * 1/sqrt(d) -> + mask -> softmax -> @ v, then the output
/// projection. `mask`, when given, is additive and broadcast to [B, H, S, S].
Tensor multiHeadAttention(const Tensor &x, const std::string &name,
                          const AttentionOptions &options,
                          const Tensor *mask = nullptr,
                          Loc loc = Loc::current());
} // namespace nn

/// The model zoo, by name: mlp, gpt (tiny), gpt2-small, bert (tiny),
/// bert-base, vit (tiny), vit-b16, resnet (tiny), resnet50.
namespace zoo {
struct Options {
  /// Overrides of the config's batch size / sequence length (0 = default).
  int64_t batch = 0;
  int64_t seq = 0;
  uint64_t seed = 0;
};
/// Names accepted by build(), with a one-line description each.
std::vector<std::pair<std::string, std::string>> models();
StatusOr<Module> build(const std::string &name, const Options &options = {});
} // namespace zoo

} // namespace kiln

#endif // KILN_DSL_H
