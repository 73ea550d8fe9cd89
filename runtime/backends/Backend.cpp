//===- Backend.cpp - Backend lookup and kernel preparation ----------------===//
#include "backends/Backend.h"

namespace kiln {

std::vector<std::string> availableBackends() { return {"reference", "cpu"}; }

std::unique_ptr<PreparedKernel>
Backend::prepare(const PrepareContext &ctx) const {
  const std::string &op = ctx.call->op;
  if (auto f = factories_.find(op); f != factories_.end())
    for (const KernelFactory &factory : f->second)
      if (std::unique_ptr<PreparedKernel> k = factory(ctx))
        return k;
  if (auto it = kernels_.find(op); it != kernels_.end())
    return std::make_unique<FunctionKernel>(it->second.fn, it->second.impl);
  return fallback_ ? fallback_->prepare(ctx) : nullptr;
}

std::vector<Layout> Backend::planLayouts(const Program &program) const {
  std::vector<Layout> layouts(program.buffers.size());
  if (!planner_)
    return layouts;
  std::vector<Layout> planned = planner_(program);
  // Only rank-4 arena buffers are blocked (a channel count that is not a
  // multiple of the block is padded; the Executable gives such a buffer
  // storage of its own).
  for (const BufferDesc &b : program.buffers) {
    if (static_cast<size_t>(b.id) >= planned.size())
      continue;
    int64_t block = planned[b.id].channelBlock;
    if (b.kind == BufferKind::arena && block > 0 && b.shape.size() == 4 &&
        b.shape[1] > 0)
      layouts[b.id] = planned[b.id];
  }
  return layouts;
}

static const Backend &referenceBackend() {
  // Built once, on first use; immutable afterwards.
  static const Backend reference = [] {
    Backend b("reference");
    registerReferenceKernels(b);
    return b;
  }();
  return reference;
}

StatusOr<const Backend *> getBackend(const std::string &name) {
  if (name == "reference")
    return &referenceBackend();
  if (name == "cpu") {
    static const Backend cpu = [] {
      Backend b("cpu", &referenceBackend());
      registerCpuKernels(b);
      return b;
    }();
    return &cpu;
  }
  std::string list;
  for (const std::string &n : availableBackends())
    list += (list.empty() ? "" : ", ") + n;
  return Status::error("unknown backend '" + name + "' (available: " + list +
                       ")");
}

} // namespace kiln
