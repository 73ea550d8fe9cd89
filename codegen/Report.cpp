//===- codegen/Report.cpp - The compile report ----------------------------===//
//
// compileReport(): what each rewriting pass fused and what it left alone (and
// why), from the remarks the pipeline collected, then which implementation
// runs each kernel on the target, with every reference fallback named. Read
// by people (kilnc --report), so it groups, counts and caps long lists.
//
//===----------------------------------------------------------------------===//
#include "kiln/kiln.h"

#include <iomanip>
#include <map>
#include <sstream>

namespace kiln {
namespace {

/// Lines listed per pass and kind before "... and N more".
constexpr size_t kMaxListed = 24;

enum class Decision { Fused, NotFused, KeptUnfused };

Decision classify(const std::string &message) {
  if (message.find("not fused") != std::string::npos)
    return Decision::NotFused;
  if (message.find("kept unfused") != std::string::npos)
    return Decision::KeptUnfused;
  return Decision::Fused;
}

const char *label(Decision d) {
  switch (d) {
  case Decision::Fused:
    return "fused";
  case Decision::NotFused:
    return "not fused";
  case Decision::KeptUnfused:
    return "kept unfused";
  }
  return "";
}

} // namespace

std::string compileReport(const CompileResult &result, const Executable *exe) {
  std::ostringstream os;
  const Program &p = result.program;
  os << "kiln compile report: '" << p.name << "' for " << p.target << "\n"
     << "  " << p.kernels.size() << " kernels, " << result.parameterCount
     << " parameters, compiled in " << std::fixed << std::setprecision(2)
     << result.seconds << " s\n";

  // Passes in the order they first spoke.
  std::vector<std::string> passes;
  std::map<std::string, std::map<Decision, std::vector<const CompileRemark *>>>
      byPass;
  for (const CompileRemark &r : result.remarks) {
    if (!byPass.count(r.pass))
      passes.push_back(r.pass);
    byPass[r.pass][classify(r.message)].push_back(&r);
  }
  if (passes.empty())
    os << "\nno pass fused anything or reported a candidate\n";
  for (const std::string &pass : passes) {
    auto &decisions = byPass[pass];
    os << "\n" << pass << ":";
    for (Decision d :
         {Decision::Fused, Decision::NotFused, Decision::KeptUnfused})
      os << (d == Decision::Fused ? " " : ", ") << decisions[d].size() << " "
         << label(d);
    os << "\n";
    for (Decision d :
         {Decision::Fused, Decision::NotFused, Decision::KeptUnfused}) {
      const auto &list = decisions[d];
      for (size_t i = 0; i < list.size() && i < kMaxListed; ++i)
        os << "  " << std::left << std::setw(13) << label(d)
           << (list[i]->location.empty() ? "" : list[i]->location + ": ")
           << list[i]->message << "\n";
      if (list.size() > kMaxListed)
        os << "  ... and " << list.size() - kMaxListed << " more " << label(d)
           << "\n";
    }
  }

  if (!exe)
    return os.str();
  std::vector<KernelImpl> impls = exe->kernelImpls();
  std::map<std::string, int64_t> count;
  std::vector<const KernelImpl *> fallbacks;
  for (const KernelImpl &k : impls) {
    ++count[k.impl];
    if (k.fallback)
      fallbacks.push_back(&k);
  }
  os << "\nkernels on " << exe->backend() << " (" << impls.size() << "):\n";
  std::vector<std::pair<std::string, int64_t>> sorted(count.begin(),
                                                      count.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](auto &a, auto &b) { return a.second > b.second; });
  for (auto &[impl, n] : sorted)
    os << "  " << std::left << std::setw(28) << impl << std::right
       << std::setw(6) << n << "\n";
  if (fallbacks.empty()) {
    os << "reference fallbacks: none\n";
  } else {
    os << "reference fallbacks (" << fallbacks.size()
       << " kernels the backend does not cover run on the reference "
          "kernels):\n";
    for (size_t i = 0; i < fallbacks.size() && i < kMaxListed; ++i)
      os << "  " << fallbacks[i]->op
         << (fallbacks[i]->loc.empty() ? "" : " at " + fallbacks[i]->loc)
         << "\n";
    if (fallbacks.size() > kMaxListed)
      os << "  ... and " << fallbacks.size() - kMaxListed << " more\n";
  }
  return os.str();
}

} // namespace kiln
