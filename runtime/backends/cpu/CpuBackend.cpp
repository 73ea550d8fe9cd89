//===- CpuBackend.cpp - The cpu backend's table, threads, attributes ------===//
//
// oneDNN factories are registered first and own kernels after them, so for an
// op that both cover, oneDNN is tried first and the own kernel takes what it
// declines; what both decline runs on the reference kernel.
//
//===----------------------------------------------------------------------===//
#include "backends/cpu/Cpu.h"

#include <omp.h>

#include <cstdlib>

namespace kiln::cpu {

int numThreads() {
  static const int threads = [] {
    if (const char *env = std::getenv("KILN_NUM_THREADS")) {
      char *end = nullptr;
      long n = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && n > 0)
        return static_cast<int>(n);
    }
    return omp_get_num_procs();
  }();
  return threads;
}

bool hasAvx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq");
  }();
  return has;
}

void applyThreads() {
  int n = numThreads();
  if (omp_get_max_threads() != n)
    omp_set_num_threads(n);
}

static const nlohmann::json *findAttr(const PrepareContext &pc,
                                      const char *name) {
  auto it = pc.call->attrs.find(name);
  if (it == pc.call->attrs.end() || it->is_null())
    return nullptr;
  return &*it;
}

std::optional<int64_t> attrInt(const PrepareContext &pc, const char *name,
                               std::optional<int64_t> def) {
  const nlohmann::json *v = findAttr(pc, name);
  if (!v)
    return def;
  if (!v->is_number_integer())
    return std::nullopt;
  return v->get<int64_t>();
}

std::optional<bool> attrBool(const PrepareContext &pc, const char *name,
                             bool def) {
  const nlohmann::json *v = findAttr(pc, name);
  if (!v)
    return def;
  if (v->is_boolean())
    return v->get<bool>();
  if (v->is_number_integer())
    return v->get<int64_t>() != 0;
  return std::nullopt;
}

std::optional<double> attrFloat(const PrepareContext &pc, const char *name,
                                double def) {
  const nlohmann::json *v = findAttr(pc, name);
  if (!v)
    return def;
  if (!v->is_number())
    return std::nullopt;
  return v->get<double>();
}

std::optional<std::string> attrString(const PrepareContext &pc,
                                      const char *name,
                                      std::optional<std::string> def) {
  const nlohmann::json *v = findAttr(pc, name);
  if (!v)
    return def;
  if (!v->is_string())
    return std::nullopt;
  return v->get<std::string>();
}

std::optional<std::vector<int64_t>>
attrInts(const PrepareContext &pc, const char *name,
         std::optional<std::vector<int64_t>> def) {
  const nlohmann::json *v = findAttr(pc, name);
  if (!v)
    return def;
  if (!v->is_array())
    return std::nullopt;
  std::vector<int64_t> out;
  for (const auto &e : *v) {
    if (!e.is_number_integer())
      return std::nullopt;
    out.push_back(e.get<int64_t>());
  }
  return out;
}

std::optional<std::vector<int64_t>>
broadcastShape(const std::vector<int64_t> &a, const std::vector<int64_t> &b) {
  size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      return std::nullopt;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

bool simpleArity(const PrepareContext &pc, size_t minIn, size_t maxIn) {
  if (pc.inputs.size() < minIn || pc.inputs.size() > maxIn ||
      pc.outputs.size() != 1)
    return false;
  for (const BufferDesc &d : pc.inputs)
    if (numElements(d.shape) == 0)
      return false;
  return numElements(pc.outputs[0].shape) != 0;
}

} // namespace kiln::cpu

namespace kiln {

void registerCpuKernels(Backend &b) {
  b.setLayoutPlanner(cpu::planBlockedLayouts);
  cpu::registerOnednnKernels(b);
  cpu::registerOwnKernels(b);
  cpu::registerAttentionKernels(b);
}

} // namespace kiln
