//===- kiln/kiln.h - Kiln compiler public API ------------------*- C++ -*-===//
//
// The one header a C++ program includes to build or load a model, compile it
// in process (JIT) for a target, run it, and save the artifact. Programs that
// only load artifacts need just "kiln/runtime.h" and the runtime library.
//
//   kiln::dsl::Graph g("mlp");
//   auto x = g.input("x", {1, 784});
//   auto y = kiln::nn::linear(x, 10, "fc").relu();
//   g.output("y", y);
//   auto module = g.finish();                       // kiln IR + weights
//   auto exe = kiln::compile(*module, {});          // pipeline + codegen
//   auto out = exe->run({{"x", kiln::Tensor::zeros(kiln::DType::f32, {1,
//   784})}}); exe->save("mlp.kiln");                          // the AOT
//   artifact
//
// Errors: every call returns a Status or StatusOr with a message; errors in
// model code written with the DSL throw kiln::dsl::Error naming the user's file
// and line (see kiln/dsl.h).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include "kiln/dsl.h"
#include "kiln/program.h"
#include "kiln/runtime.h"

#include <functional>
#include <optional>

namespace kiln {

/// Options for compile().
struct CompileOptions {
  /// Backend the Program is compiled for: "cpu" (oneDNN, the fast path) or
  /// "reference" (plain loops, the numerical oracle).
  std::string target = "cpu";
  /// When set, the IR before the pipeline and after every pass is written
  /// here as numbered files (00-input.mlir, 01-<pass>.mlir, ...).
  std::string dumpIrDir;
  /// Progress and remarks go here (e.g. std::cerr), when set.
  std::function<void(const std::string &)> log;
  /// Fold bias/scale/activation/residual ops into the matmul or conv2d they
  /// follow (kiln-fuse-epilogues); off to compare with the unfused Program.
  bool fuseEpilogues = true;
  /// Replace op chains that spell out gelu or rms_norm with that op
  /// (kiln-raise-composites); off to compare.
  bool raiseComposites = true;
  /// Rewrite unfused attention (matmul -> scale -> mask -> softmax -> matmul)
  /// into kiln.attention (kiln-fuse-attention); off to compare.
  bool fuseAttention = true;
  /// Attention with fewer keys than this stays unfused; unset: the value
  /// measured for the target (passes/Pipeline.cpp).
  std::optional<int64_t> attentionMinKeys;

  CompileOptions &setTarget(std::string t) {
    target = std::move(t);
    return *this;
  }
  CompileOptions &setDumpIrDir(std::string d) {
    dumpIrDir = std::move(d);
    return *this;
  }
  CompileOptions &setFuseEpilogues(bool on) {
    fuseEpilogues = on;
    return *this;
  }
  CompileOptions &setFuseAttention(bool on) {
    fuseAttention = on;
    return *this;
  }
  CompileOptions &setRaiseComposites(bool on) {
    raiseComposites = on;
    return *this;
  }
};

/// What compile() produced, besides the Program: the IR after the pipeline
/// and a few figures for reports.
/// One decision a pass explained: a block it fused, or a candidate it left
/// alone and why.
struct CompileRemark {
  /// The pass's flag, e.g. "kiln-fuse-attention".
  std::string pass;
  /// "file.cpp:42:7" or the op's name scope; may be empty.
  std::string location;
  std::string message;
};

struct CompileResult {
  Program program;
  /// Parameters and constants, by name, as the Program binds them.
  TensorMap weights;
  std::string irAfterPipeline;
  int64_t parameterCount = 0;
  double seconds = 0;
  /// Every remark of every pass, in the order they were emitted.
  std::vector<CompileRemark> remarks;
};

/// Runs the pass pipeline on a copy of `module` and lowers it to a Program.
StatusOr<CompileResult> compileToProgram(const Module &module,
                                         const CompileOptions &options = {});

/// The compile report: per pass, what it fused and what it did not (with
/// the reason), and, when `exe` is given (the Program loaded on its
/// target), the implementation of every kernel with the ones that fall back
/// to the reference backend listed by op and location.
std::string compileReport(const CompileResult &result,
                          const Executable *exe = nullptr);

/// compileToProgram(), then an Executable on `options.target`.
StatusOr<Executable> compile(const Module &module,
                             const CompileOptions &options = {});

} // namespace kiln

#endif // KILN_KILN_H
