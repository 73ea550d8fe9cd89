//===- frontends/ModuleImpl.h - What a kiln::Module holds ------*- C++ -*-===//
//
// Internal to the compiler: a Module owns its MLIR context, the module op and
// the weights. Frontends (DSL, parser, importers) produce it; codegen reads it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTENDS_MODULEIMPL_H
#define KILN_FRONTENDS_MODULEIMPL_H

#include "kiln/dsl.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <memory>

namespace kiln {

struct Module::Impl {
  std::unique_ptr<mlir::MLIRContext> context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  TensorMap weights;
};

/// A context with the dialects a kiln module uses (kiln, func) loaded.
std::unique_ptr<mlir::MLIRContext> createKilnContext();

/// The model function of a module: the one public func.func.
/// Errors when there is none or more than one.
StatusOr<mlir::func::FuncOp> getModelFunction(mlir::ModuleOp module);

/// Collects every diagnostic emitted on a context while alive, as text.
class DiagnosticCollector {
public:
  /// `withLocations`: prefix each message with its location ("f.cpp:3:7: ").
  explicit DiagnosticCollector(mlir::MLIRContext *ctx,
                               bool withLocations = true);
  ~DiagnosticCollector();
  /// All messages, one per line, with locations.
  std::string str() const { return text_; }
  bool empty() const { return text_.empty(); }

private:
  mlir::MLIRContext *ctx_;
  uint64_t handlerId_;
  std::string text_;
};

/// "file.cpp:42:7" for FileLineColLoc (basename of the file), the name of a
/// NameLoc followed by its child, "" for unknown.
std::string formatLocation(mlir::Location loc);

} // namespace kiln

#endif // KILN_FRONTENDS_MODULEIMPL_H
