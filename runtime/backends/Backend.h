//===- Backend.h - Backend interface and kernel registry --------*- C++ -*-===//
//
// A backend is a table of kernels keyed by op name. When an Executable is
// created, every kernel call of its Program is *prepared* once: the backend
// sees the call, its buffers' descriptors and the bound weights, and returns
// a PreparedKernel that owns whatever per-call state it needs (a oneDNN
// primitive, prepacked weights). run() then only binds data pointers and
// executes.
//
// Resolution order for one call: the backend's factory for the op (which may
// decline, e.g. for a dtype it does not handle), then its plain kernel
// function, then its fallback backend (the cpu backend falls back to the
// reference backend). Each prepared kernel names its implementation
// ("onednn:matmul", "cpu:gather", "reference") so fallbacks stay visible.
//
// Before preparing, a backend may plan a storage layout for each buffer of
// the whole Program (setLayoutPlanner): the cpu backend keeps activations
// between convolutions in oneDNN's channel-blocked layout. A kernel prepared
// with a non-plain operand must say that it honors the layouts
// (PreparedKernel::honorLayouts); when one does not (a factory declined and
// another kernel took the call), the Executable makes that kernel's buffers
// plain again and re-prepares every kernel that touches them.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_BACKENDS_BACKEND_H
#define KILN_RUNTIME_BACKENDS_BACKEND_H

#include "kiln/program.h"

#include <functional>
#include <map>
#include <memory>

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

/// How a buffer's bytes are ordered. The Program's contract is plain
/// row-major; a backend may store an arena buffer of shape [N, C, H, W] with
/// its channels blocked by `channelBlock`, as [N, ceil(C/b), H, W, b]
/// (oneDNN's nChw16c for b = 16). When C is a multiple of b the buffer keeps
/// its byte size and arena slot; otherwise its channels are padded to a
/// whole block with zeros (every kernel that writes it keeps them zero) and
/// the Executable gives it storage of its own (see byteSize).
struct Layout {
  /// 0: plain row-major; b > 0: channels blocked by b.
  int64_t channelBlock = 0;

  bool isPlain() const { return channelBlock == 0; }
  /// Bytes of a buffer of `dtype` and `shape` stored in this layout.
  int64_t byteSize(DType dtype, const std::vector<int64_t> &shape) const {
    int64_t elements = numElements(shape);
    if (channelBlock > 0 && shape.size() == 4 && shape[1] > 0) {
      int64_t padded =
          (shape[1] + channelBlock - 1) / channelBlock * channelBlock;
      elements = elements / shape[1] * padded;
    }
    return elements * dtypeSize(dtype);
  }
  bool operator==(const Layout &o) const {
    return channelBlock == o.channelBlock;
  }
  bool operator!=(const Layout &o) const { return !(*this == o); }
};

/// What a kernel factory sees when an Executable is created: the call, the
/// descriptors of its operands and results, and for each operand bound to a
/// weight (param or constant buffer) that tensor, whose bytes stay valid and
/// unchanged for the Executable's lifetime.
struct PrepareContext {
  const KernelCall *call = nullptr;
  std::vector<BufferDesc> inputs;
  std::vector<BufferDesc> outputs;
  /// One entry per operand: the bound weight, or nullptr.
  std::vector<const Tensor *> weights;
  /// The planned layout of each operand and result (empty: all plain). A
  /// factory that builds its kernel for non-plain layouts marks the kernel
  /// with honorLayouts(); one that does not know layouts ignores them.
  std::vector<Layout> inputLayouts;
  std::vector<Layout> outputLayouts;

  Layout inputLayout(size_t i) const {
    return i < inputLayouts.size() ? inputLayouts[i] : Layout();
  }
  Layout outputLayout(size_t i) const {
    return i < outputLayouts.size() ? outputLayouts[i] : Layout();
  }
  /// Whether some operand or result has a non-plain layout.
  bool hasLayouts() const {
    for (const auto *v : {&inputLayouts, &outputLayouts})
      for (const Layout &l : *v)
        if (!l.isPlain())
          return true;
    return false;
  }
};

/// A kernel prepared once for one call of a Program. run() is called with
/// views of the same buffers (dtypes and shapes as at preparation) on every
/// run of the Executable; runs are sequential.
class PreparedKernel {
public:
  explicit PreparedKernel(std::string impl) : impl_(std::move(impl)) {}
  virtual ~PreparedKernel() = default;
  virtual Status run(const KernelContext &ctx) = 0;
  /// Which implementation runs the call: "onednn:matmul", "cpu:gather",
  /// "reference"; "(blocked)" at the end when it reads or writes a buffer in
  /// a non-plain layout.
  const std::string &impl() const { return impl_; }
  /// Whether the kernel reads and writes its buffers in the layouts of the
  /// PrepareContext it was prepared with (otherwise: all plain).
  bool honorsLayouts() const { return honorsLayouts_; }
  /// Called by a factory that built the kernel for the context's layouts.
  void honorLayouts() { honorsLayouts_ = true; }

private:
  std::string impl_;
  bool honorsLayouts_ = false;
};

/// Prepares one call, or returns nullptr to decline it (an op/dtype/shape
/// combination the factory does not handle); the backend then tries its
/// next option. Factories decline rather than fail: bad attributes or shapes
/// are reported by the kernel that finally runs, at run time.
using KernelFactory =
    std::function<std::unique_ptr<PreparedKernel>(const PrepareContext &)>;

/// Chooses a layout for every buffer of a Program (indexed by buffer id),
/// once, before its calls are prepared. Only arena buffers may be non-plain.
using LayoutPlanner = std::function<std::vector<Layout>(const Program &)>;

/// A plain kernel function wrapped as a prepared kernel (no state).
class FunctionKernel : public PreparedKernel {
public:
  FunctionKernel(KernelFn fn, std::string impl)
      : PreparedKernel(std::move(impl)), fn_(fn) {}
  Status run(const KernelContext &ctx) override { return fn_(ctx); }

private:
  KernelFn fn_;
};

/// A named table of kernels, with an optional fallback backend.
class Backend {
public:
  explicit Backend(std::string name, const Backend *fallback = nullptr)
      : name_(std::move(name)), fallback_(fallback) {}
  const std::string &name() const { return name_; }
  /// Registers a plain kernel; `impl` defaults to the backend's name.
  void add(const std::string &op, KernelFn fn, std::string impl = "") {
    kernels_[op] = {fn, impl.empty() ? name_ : std::move(impl)};
  }
  /// Registers a factory, tried after the op's earlier factories and before
  /// its plain kernel.
  void addFactory(const std::string &op, KernelFactory factory) {
    factories_[op].push_back(std::move(factory));
  }
  /// The plain kernel for `op` (not the fallback's); nullptr when none.
  KernelFn find(const std::string &op) const {
    auto it = kernels_.find(op);
    return it == kernels_.end() ? nullptr : it->second.fn;
  }
  /// Whether some kernel (own or fallback) can be prepared for `op`.
  bool supports(const std::string &op) const {
    return factories_.count(op) || kernels_.count(op) ||
           (fallback_ && fallback_->supports(op));
  }
  /// Prepares one call: factories in order, plain kernel, then fallback.
  /// nullptr when nothing handles the op.
  std::unique_ptr<PreparedKernel> prepare(const PrepareContext &ctx) const;
  /// Sets the planner of buffer layouts (none: every buffer plain).
  void setLayoutPlanner(LayoutPlanner planner) {
    planner_ = std::move(planner);
  }
  /// One layout per buffer of `program`: the planner's choice, except that
  /// every buffer other than a rank-4 arena buffer whose channel count is a
  /// multiple of its block stays plain.
  std::vector<Layout> planLayouts(const Program &program) const;
  /// Ops with a kernel of this backend's own (the fallback's not included).
  std::vector<std::string> ops() const {
    std::vector<std::string> out;
    for (const auto &[op, k] : kernels_)
      out.push_back(op);
    for (const auto &[op, f] : factories_)
      if (!kernels_.count(op))
        out.push_back(op);
    return out;
  }

private:
  struct Entry {
    KernelFn fn = nullptr;
    std::string impl;
  };
  std::string name_;
  const Backend *fallback_ = nullptr;
  std::map<std::string, Entry> kernels_;
  std::map<std::string, std::vector<KernelFactory>> factories_;
  LayoutPlanner planner_;
};

/// The backend called `name`, or an error listing the available ones.
StatusOr<const Backend *> getBackend(const std::string &name);

/// Fills the reference backend's table (backends/reference/).
void registerReferenceKernels(Backend &backend);

/// Fills the cpu backend's table (backends/cpu/): oneDNN primitives and own
/// multi-threaded kernels.
void registerCpuKernels(Backend &backend);

} // namespace kiln

#endif // KILN_RUNTIME_BACKENDS_BACKEND_H
