//===- frontends/Module.cpp - kiln::Module: IR plus weights ---------------===//
//
// Parsing and printing of kiln modules, and the shared helpers every frontend
// uses (context creation, diagnostics collection, location formatting).
//
//===----------------------------------------------------------------------===//
#include "frontends/ModuleImpl.h"
#include "ir/ElementTypes.h"
#include "ir/KilnDialect.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace kiln {

std::unique_ptr<mlir::MLIRContext> createKilnContext() {
  auto ctx = std::make_unique<mlir::MLIRContext>();
  ctx->loadDialect<KilnDialect, mlir::func::FuncDialect>();
  // Diagnostics point at source locations; dumping the whole op is noise.
  ctx->printOpOnDiagnostic(false);
  return ctx;
}

StatusOr<mlir::func::FuncOp> getModelFunction(mlir::ModuleOp module) {
  mlir::func::FuncOp found;
  int count = 0;
  for (auto f : module.getOps<mlir::func::FuncOp>()) {
    if (f.isPrivate() || f.isExternal())
      continue;
    found = f;
    ++count;
  }
  if (count == 0)
    return Status::error("module has no public function with a body");
  if (count > 1)
    return Status::error("module has " + std::to_string(count) +
                         " public functions; kiln compiles exactly one");
  return found;
}

DiagnosticCollector::DiagnosticCollector(mlir::MLIRContext *ctx,
                                         bool withLocations)
    : ctx_(ctx) {
  handlerId_ = ctx->getDiagEngine().registerHandler(
      [this, withLocations](mlir::Diagnostic &diag) {
        std::string where =
            withLocations ? formatLocation(diag.getLocation()) : "";
        if (!text_.empty())
          text_ += "\n";
        if (!where.empty())
          text_ += where + ": ";
        text_ += diag.str();
        for (auto &note : diag.getNotes())
          text_ += "\n  note: " + note.str();
        return mlir::success();
      });
}

DiagnosticCollector::~DiagnosticCollector() {
  ctx_->getDiagEngine().eraseHandler(handlerId_);
}

std::string formatLocation(mlir::Location loc) {
  if (auto file = mlir::dyn_cast<mlir::FileLineColLoc>(loc)) {
    std::string path = file.getFilename().str();
    auto slash = path.find_last_of('/');
    if (slash != std::string::npos)
      path = path.substr(slash + 1);
    return path + ":" + std::to_string(file.getLine()) + ":" +
           std::to_string(file.getColumn());
  }
  if (auto name = mlir::dyn_cast<mlir::NameLoc>(loc)) {
    std::string child = formatLocation(name.getChildLoc());
    std::string n = name.getName().str();
    return child.empty() ? n : child + " (" + n + ")";
  }
  if (auto fused = mlir::dyn_cast<mlir::FusedLoc>(loc)) {
    for (auto l : fused.getLocations()) {
      std::string s = formatLocation(l);
      if (!s.empty())
        return s;
    }
  }
  if (auto callsite = mlir::dyn_cast<mlir::CallSiteLoc>(loc))
    return formatLocation(callsite.getCallee());
  return "";
}

Module::Module(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Module::Module(Module &&) noexcept = default;
Module &Module::operator=(Module &&) noexcept = default;
Module::~Module() {
  // The module op must die before its context.
  if (impl_)
    impl_->module = nullptr;
}

/// Parses with unregistered dialects allowed, so that kiln-verify-program can
/// list every foreign op instead of the parser stopping at the first.
static StatusOr<Module> parseNamed(const std::string &text, TensorMap weights,
                                   const std::string &sourceName) {
  auto impl = std::make_unique<Module::Impl>();
  impl->context = createKilnContext();
  impl->context->allowUnregisteredDialects(true);
  DiagnosticCollector diags(impl->context.get());
  mlir::ParserConfig config(impl->context.get());
  impl->module =
      mlir::parseSourceString<mlir::ModuleOp>(text, config, sourceName);
  if (!impl->module)
    return Status::error("failed to parse kiln IR:\n" + diags.str());
  if (auto f = getModelFunction(*impl->module); !f)
    return f.status();
  impl->weights = std::move(weights);
  return Module(std::move(impl));
}

StatusOr<Module> Module::parseText(const std::string &text, TensorMap weights) {
  return parseNamed(text, std::move(weights), "<string>");
}

StatusOr<Module> Module::parseFile(const std::string &path, TensorMap weights) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return Status::error("'" + path + "' is a directory, not a .mlir file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error("cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parseNamed(ss.str(), std::move(weights), path);
}

std::string Module::toText(bool withLocations) const {
  std::string s;
  llvm::raw_string_ostream os(s);
  mlir::OpPrintingFlags flags;
  if (withLocations)
    flags.enableDebugInfo(/*prettyForm=*/true);
  impl_->module->print(os, flags);
  return s;
}

std::string Module::name() const {
  auto f = getModelFunction(*impl_->module);
  return f ? f->getSymName().str() : std::string();
}

std::vector<Executable::Signature> Module::parameters() const {
  std::vector<Executable::Signature> params;
  auto f = getModelFunction(*impl_->module);
  if (!f)
    return params;
  for (auto arg : f->getArguments()) {
    auto name =
        f->getArgAttrOfType<mlir::StringAttr>(arg.getArgNumber(), "kiln.param");
    auto type = mlir::dyn_cast<mlir::RankedTensorType>(arg.getType());
    if (!name || !type || !type.hasStaticShape())
      continue;
    auto dtype = fromMlirElementType(type.getElementType());
    if (!dtype)
      continue;
    params.push_back(
        {name.str(), *dtype,
         std::vector<int64_t>(type.getShape().begin(), type.getShape().end())});
  }
  return params;
}

int64_t Module::initializeMissingWeights(uint64_t seed) {
  int64_t count = 0;
  for (const auto &p : parameters()) {
    if (impl_->weights.count(p.name))
      continue;
    std::vector<double> values(numElements(p.shape), 0.0);
    if (p.dtype == DType::f32 || p.dtype == DType::f64) {
      std::mt19937_64 rng(seed ^ std::hash<std::string>()(p.name));
      std::normal_distribution<double> normal(0.0, 0.02);
      for (double &v : values)
        v = normal(rng);
    }
    impl_->weights[p.name] = Tensor::fromDoubles(p.dtype, p.shape, values);
    ++count;
  }
  return count;
}

TensorMap &Module::weights() { return impl_->weights; }
const TensorMap &Module::weights() const { return impl_->weights; }

} // namespace kiln
