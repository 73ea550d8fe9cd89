//===- Backend.h - Backend interface and kernel registry --------*- C++ -*-===//
//
// A backend is a table of kernels keyed by op name. The executor resolves
// every kernel of a Program against it once, at load time, then calls the
// functions in order with views of the bound buffers.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_BACKENDS_BACKEND_H
#define KILN_RUNTIME_BACKENDS_BACKEND_H

#include "kiln/program.h"

#include <functional>
#include <map>

namespace kiln {

/// A view of one bound buffer: dtype, shape and its bytes (not owned).
struct BufferView {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  void *data = nullptr;

  int64_t numElements() const { return kiln::numElements(shape); }
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  template <typename T> T *as() const { return static_cast<T *>(data); }
};

/// What a kernel sees: its call (op, attrs, loc) and its buffers.
struct KernelContext {
  const KernelCall *call = nullptr;
  std::vector<BufferView> inputs;
  std::vector<BufferView> outputs;
};

/// A kernel: reads inputs, writes outputs, returns an error status for bad
/// attributes, shapes or data (the executor prefixes the op and loc).
using KernelFn = Status (*)(const KernelContext &);

/// A named table of kernels.
class Backend {
public:
  explicit Backend(std::string name) : name_(std::move(name)) {}
  const std::string &name() const { return name_; }
  void add(const std::string &op, KernelFn fn) { kernels_[op] = fn; }
  /// nullptr when the backend has no kernel for `op`.
  KernelFn find(const std::string &op) const {
    auto it = kernels_.find(op);
    return it == kernels_.end() ? nullptr : it->second;
  }
  std::vector<std::string> ops() const {
    std::vector<std::string> out;
    for (const auto &[op, fn] : kernels_)
      out.push_back(op);
    return out;
  }

private:
  std::string name_;
  std::map<std::string, KernelFn> kernels_;
};

/// The backend called `name`, or an error listing the available ones.
StatusOr<const Backend *> getBackend(const std::string &name);

/// Fills the reference backend's table (backends/reference/).
void registerReferenceKernels(Backend &backend);

} // namespace kiln

#endif // KILN_RUNTIME_BACKENDS_BACKEND_H
