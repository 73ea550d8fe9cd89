//===- Backend.cpp - Backend lookup
//----------------------------------------===//
#include "backends/Backend.h"

namespace kiln {

std::vector<std::string> availableBackends() { return {"reference"}; }

StatusOr<const Backend *> getBackend(const std::string &name) {
  if (name == "reference") {
    // Built once, on first use; immutable afterwards.
    static const Backend reference = [] {
      Backend b("reference");
      registerReferenceKernels(b);
      return b;
    }();
    return &reference;
  }
  std::string list;
  for (const std::string &n : availableBackends())
    list += (list.empty() ? "" : ", ") + n;
  return Status::error("unknown backend '" + name + "' (available: " + list +
                       ")");
}

} // namespace kiln
