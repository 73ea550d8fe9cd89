//===- kiln/runtime.h - Kiln runtime public API ----------------*- C++ -*-===//
//
// The runtime loads a compiled Program (from an artifact file or from the
// in-process compiler), binds weights by name and executes it on a backend.
// It does not link MLIR: a deployment links only this library.
//
// Rules, written once:
//  * Errors a caller can cause (bad file, wrong input shape or dtype, missing
//    weight, unknown backend) come back as a `Status` with a message; nothing
//    here aborts or throws across this API.
//  * `Tensor` owns its bytes through a shared buffer: copies of a Tensor share
//    storage (cheap to pass around); use `clone()` for a deep copy.
//  * Data is dense, row-major, little-endian.
//
//   auto exe = kiln::Executable::load("gpt.kiln", "reference");
//   if (!exe) { std::cerr << exe.status().message(); return 1; }
//   kiln::Tensor tokens = kiln::Tensor::zeros(kiln::DType::i64, {1, 16});
//   auto outs = exe->run({{"tokens", tokens}});
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiln {

/// Result of a fallible call: ok, or an error with a human-readable message.
class Status {
public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.failed_ = true;
    s.message_ = std::move(message);
    return s;
  }
  bool isOk() const { return !failed_; }
  explicit operator bool() const { return !failed_; }
  const std::string &message() const { return message_; }

private:
  bool failed_ = false;
  std::string message_;
};

/// A value or an error status.
template <typename T> class StatusOr {
public:
  StatusOr(T value) : value_(std::move(value)) {}
  StatusOr(Status status) : status_(std::move(status)) {}
  bool isOk() const { return value_.has_value(); }
  explicit operator bool() const { return value_.has_value(); }
  const Status &status() const { return status_; }
  T &value() { return *value_; }
  const T &value() const { return *value_; }
  T &operator*() { return *value_; }
  const T &operator*() const { return *value_; }
  T *operator->() { return &*value_; }
  const T *operator->() const { return &*value_; }

private:
  std::optional<T> value_;
  Status status_;
};

/// Element types. Names match the IR: f32 f16 bf16 f64 i64 i32 i8 u8 (ui8) i1.
enum class DType { f32, f16, bf16, f64, i64, i32, i8, u8, i1 };

/// Bytes per element (i1 is stored as one byte, 0 or 1).
size_t dtypeSize(DType t);
/// "f32", "bf16", "u8", "i1", ...
const char *dtypeName(DType t);
/// Parses the names above (also "ui8" and "bool"); nullopt when unknown.
std::optional<DType> parseDType(const std::string &name);

/// Product of dims (1 for rank 0).
int64_t numElements(const std::vector<int64_t> &shape);
/// "[1, 16, 64]".
std::string shapeToString(const std::vector<int64_t> &shape);

/// A dense tensor on the host.
class Tensor {
public:
  Tensor() = default;
  /// Zero-filled tensor.
  static Tensor zeros(DType dtype, std::vector<int64_t> shape);
  /// Tensor holding a copy of `bytes` (must be numElements*dtypeSize long).
  static Tensor fromBytes(DType dtype, std::vector<int64_t> shape,
                          const void *bytes);
  /// f32 tensor from values (size must match the shape).
  static Tensor fromFloats(std::vector<int64_t> shape,
                           const std::vector<float> &values);
  /// Tensor of any dtype from values (size must match the shape), converted
  /// as kiln.cast converts: f16/bf16 round to nearest even, float->int
  /// truncates (NaN -> 0, out-of-range clamps), x->i1 is x != 0.
  static Tensor fromDoubles(DType dtype, std::vector<int64_t> shape,
                            const std::vector<double> &values);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t numElements() const { return kiln::numElements(shape_); }
  size_t byteSize() const { return numElements() * dtypeSize(dtype_); }
  bool defined() const { return storage_ != nullptr; }
  /// Whether no other Tensor shares these bytes (copies share them).
  bool isSoleOwner() const { return storage_ && storage_.use_count() == 1; }

  void *data() { return storage_ ? storage_->data() : nullptr; }
  const void *data() const { return storage_ ? storage_->data() : nullptr; }
  template <typename T> T *dataAs() { return static_cast<T *>(data()); }
  template <typename T> const T *dataAs() const {
    return static_cast<const T *>(data());
  }

  /// Values converted to double (any dtype), for checks and printing.
  std::vector<double> toDoubles() const;
  /// Deep copy.
  Tensor clone() const;

private:
  DType dtype_ = DType::f32;
  std::vector<int64_t> shape_;
  std::shared_ptr<std::vector<uint8_t>> storage_;
};

/// Tensors by name: model inputs, outputs and weights.
using TensorMap = std::map<std::string, Tensor>;

struct Program; // kiln/program.h

/// Options for running.
struct RunOptions {
  /// Record per-kernel wall time (see Executable::lastProfile()).
  bool profile = false;
};

/// Per-kernel timing of the last run when profiling.
struct KernelTiming {
  std::string op;
  std::string loc;
  std::string impl;
  double seconds = 0;
};

/// Which implementation runs one kernel of a Program on its backend.
struct KernelImpl {
  std::string op;
  std::string loc;
  /// "onednn:matmul", "cpu:gather", "reference", ...
  std::string impl;
  /// True when a backend other than "reference" hands this kernel to the
  /// reference kernel (an op/dtype combination it does not cover) on every
  /// run.
  bool fallback = false;
  /// True when the kernel reads only weights, constants and results of such
  /// kernels: it ran once when the Executable was created and run() skips
  /// it (its profile entry shows no time).
  bool atLoad = false;
};

/// A loaded Program with its weights, bound to one backend. Runs are
/// sequential (not thread-safe); create one Executable per thread.
class Executable {
public:
  /// Loads an artifact file (safetensors layout with the Program in its
  /// metadata). Checks the format version, the header, every weight's extent.
  /// An empty `backend` runs on the target the Program was compiled for.
  static StatusOr<Executable> load(const std::string &path,
                                   const std::string &backend = "");
  /// Wraps an in-memory Program and its weights (the JIT path).
  static StatusOr<Executable> create(Program program, TensorMap weights,
                                     const std::string &backend = "reference");

  /// Runs with named inputs; checks every input's presence, dtype and shape.
  /// Outputs are new tensors, except that an output of the previous run
  /// that the caller no longer holds (no Tensor shares its bytes) is
  /// written again instead of allocating new memory.
  StatusOr<TensorMap> run(const TensorMap &inputs,
                          const RunOptions &options = {});
  /// Writes the artifact (one file).
  Status save(const std::string &path) const;

  const Program &program() const;
  const TensorMap &weights() const;
  const std::string &backend() const;
  const std::vector<KernelTiming> &lastProfile() const;
  /// Per kernel, in Program order: the implementation chosen when the
  /// Executable was created (also in each KernelTiming::impl).
  std::vector<KernelImpl> kernelImpls() const;

  /// Description of each input/output: name, dtype, shape.
  struct Signature {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  std::vector<Signature> inputSignature() const;
  std::vector<Signature> outputSignature() const;

  Executable(Executable &&) noexcept;
  Executable &operator=(Executable &&) noexcept;
  ~Executable();

private:
  Executable();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Names of the backends compiled into this runtime: "reference" (plain
/// loops, the oracle) and "cpu" (oneDNN and own multi-threaded kernels;
/// threads from KILN_NUM_THREADS, default all cores).
std::vector<std::string> availableBackends();

/// Reads a NumPy .npy file (v1/v2/v3 header, C order, little-endian).
StatusOr<Tensor> readNpy(const std::string &path);
/// Writes a NumPy .npy file.
Status writeNpy(const std::string &path, const Tensor &tensor);

} // namespace kiln

#endif // KILN_RUNTIME_H
