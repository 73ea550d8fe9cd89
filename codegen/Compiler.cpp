//===- codegen/Compiler.cpp - compile(): pipeline, codegen, executable ----===//
//
// The in-process (JIT) entry point of the public API: runs the pass pipeline
// on a copy of the module (writing IR dumps when asked), lowers the model
// function to a Program and hands it with its weights to the runtime.
//
//===----------------------------------------------------------------------===//
#include "codegen/plan/ProgramBuilder.h"
#include "frontends/ModuleImpl.h"
#include "kiln/kiln.h"
#include "passes/Passes.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace kiln {
namespace {

/// First line of every dump; only files starting with it are ever deleted.
constexpr const char *kDumpHeader = "// kiln IR dump: ";

std::string printOp(mlir::Operation *op) {
  std::string s;
  llvm::raw_string_ostream os(s);
  op->print(os);
  return s;
}

/// Writes the IR after every pass as DIR/NN-<pass>.mlir.
class IrDumper : public mlir::PassInstrumentation {
public:
  IrDumper(std::filesystem::path dir, int *counter)
      : dir_(std::move(dir)), counter_(counter) {}

  void runAfterPass(mlir::Pass *pass, mlir::Operation *op) override {
    write(pass->getArgument().str(), op);
  }
  void runAfterPassFailed(mlir::Pass *pass, mlir::Operation *op) override {
    write(pass->getArgument().str() + "-failed", op);
  }
  void write(const std::string &name, mlir::Operation *op) {
    std::ostringstream file;
    file << std::setw(2) << std::setfill('0') << (*counter_)++ << "-" << name
         << ".mlir";
    std::ofstream out(dir_ / file.str());
    out << kDumpHeader
        << (name == "input" ? std::string("the input, before any pass")
                            : "after " + name)
        << "\n"
        << printOp(op);
  }

private:
  std::filesystem::path dir_;
  int *counter_;
};

/// Keeps the flag of the pass that is running, for RemarkCollector.
class PassNameTracker : public mlir::PassInstrumentation {
public:
  explicit PassNameTracker(std::shared_ptr<std::string> name)
      : name_(std::move(name)) {}
  void runBeforePass(mlir::Pass *pass, mlir::Operation *) override {
    *name_ = pass->getArgument().str();
  }

private:
  std::shared_ptr<std::string> name_;
};

/// Takes every remark while alive (errors and warnings pass on to the
/// DiagnosticCollector registered before it).
class RemarkCollector {
public:
  RemarkCollector(mlir::MLIRContext *ctx, std::shared_ptr<std::string> pass,
                  std::vector<CompileRemark> *out)
      : ctx_(ctx) {
    id_ = ctx->getDiagEngine().registerHandler([pass,
                                                out](mlir::Diagnostic &diag)
                                                   -> mlir::LogicalResult {
      if (diag.getSeverity() != mlir::DiagnosticSeverity::Remark)
        return mlir::failure();
      out->push_back({*pass, formatLocation(diag.getLocation()), diag.str()});
      return mlir::success();
    });
  }
  ~RemarkCollector() { ctx_->getDiagEngine().eraseHandler(id_); }

private:
  mlir::MLIRContext *ctx_;
  mlir::DiagnosticEngine::HandlerID id_;
};

} // namespace

StatusOr<CompileResult> compileToProgram(const Module &module,
                                         const CompileOptions &options) {
  auto start = std::chrono::steady_clock::now();
  {
    auto backends = availableBackends();
    if (std::find(backends.begin(), backends.end(), options.target) ==
        backends.end()) {
      std::string list;
      for (auto &b : backends)
        list += (list.empty() ? "" : ", ") + b;
      return Status::error("unknown target '" + options.target +
                           "'; available: " + list);
    }
  }
  Module::Impl &m = *module.impl();
  mlir::MLIRContext *ctx = m.context.get();
  DiagnosticCollector diags(ctx);
  mlir::OwningOpRef<mlir::ModuleOp> work = m.module->clone();

  int dumpIndex = 0;
  std::filesystem::path dumpDir;
  if (!options.dumpIrDir.empty()) {
    std::error_code ec;
    dumpDir = options.dumpIrDir;
    std::filesystem::create_directories(dumpDir, ec);
    if (ec)
      return Status::error("cannot create IR dump directory '" +
                           options.dumpIrDir + "': " + ec.message());
    // Remove the dumps of an earlier compile, and nothing else: only files
    // named NN-<pass>.mlir whose first line is the dumper's header.
    for (auto &entry : std::filesystem::directory_iterator(dumpDir, ec)) {
      std::string name = entry.path().filename().string();
      if (!entry.is_regular_file() || entry.path().extension() != ".mlir" ||
          name.size() < 4 || !std::isdigit(name[0]) || !std::isdigit(name[1]) ||
          name[2] != '-')
        continue;
      std::ifstream in(entry.path());
      std::string first;
      std::getline(in, first);
      if (first.rfind(kDumpHeader, 0) == 0)
        std::filesystem::remove(entry.path(), ec);
    }
    IrDumper(dumpDir, &dumpIndex).write("input", work.get());
  }

  mlir::PassManager pm(ctx);
  PipelineOptions pipelineOptions;
  pipelineOptions.fuseEpilogues = options.fuseEpilogues;
  pipelineOptions.fuseAttention = options.fuseAttention;
  pipelineOptions.raiseComposites = options.raiseComposites;
  pipelineOptions.attentionMinKeys =
      options.attentionMinKeys.value_or(attentionMinKeysFor(options.target));
  pipelineOptions.remarks = true;
  buildKilnPipeline(pm, pipelineOptions);
  if (!dumpDir.empty())
    pm.addInstrumentation(std::make_unique<IrDumper>(dumpDir, &dumpIndex));
  // Remarks go to the report (and the log), not into the error text.
  std::vector<CompileRemark> remarks;
  auto currentPass = std::make_shared<std::string>();
  pm.addInstrumentation(std::make_unique<PassNameTracker>(currentPass));
  RemarkCollector remarkCollector(ctx, currentPass, &remarks);
  if (mlir::failed(pm.run(*work)))
    return Status::error("compilation of '" + module.name() + "' failed:\n" +
                         diags.str());
  if (options.log)
    options.log("kiln: pass pipeline done (" + std::to_string(pm.size()) +
                " passes)");

  auto func = getModelFunction(*work);
  if (!func)
    return func.status();
  auto built = buildProgram(*func, m.weights, options.target);
  if (!built)
    return built.status();

  CompileResult result;
  result.program = std::move(built->program);
  result.weights = std::move(built->weights);
  result.irAfterPipeline = printOp(work.get());
  result.remarks = std::move(remarks);
  for (const auto &b : result.program.buffers)
    if (b.kind == BufferKind::param)
      result.parameterCount += numElements(b.shape);
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (!dumpDir.empty()) {
    std::ofstream(dumpDir / "program.txt") << result.program.toText();
  }
  return result;
}

StatusOr<Executable> compile(const Module &module,
                             const CompileOptions &options) {
  auto result = compileToProgram(module, options);
  if (!result)
    return result.status();
  return Executable::create(std::move(result->program),
                            std::move(result->weights), options.target);
}

} // namespace kiln
