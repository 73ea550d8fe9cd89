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
