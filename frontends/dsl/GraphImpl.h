//===- frontends/dsl/GraphImpl.h - DSL graph internals ---------*- C++ -*-===//
//
// The state behind kiln::dsl::Graph: an MLIR module with one function being
// built, the parameter values, and the scope stack. `create` is the one place
// ops are made: it infers result types through the op's
// InferTypeOpInterface first, so a shape error becomes a dsl::Error at the
// user's line instead of a crash.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTENDS_DSL_GRAPHIMPL_H
#define KILN_FRONTENDS_DSL_GRAPHIMPL_H

#include "frontends/ModuleImpl.h"
#include "kiln/dsl.h"

#include "mlir/IR/Builders.h"

namespace kiln::dsl {

struct Graph::Impl {
  std::string name;
  uint64_t seed = 0;
  std::unique_ptr<mlir::MLIRContext> context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp func;
  mlir::OpBuilder builder;
  /// Per block argument: ("kiln.param" | "kiln.name", name).
  std::vector<std::pair<std::string, std::string>> argNames;
  std::vector<std::pair<std::string, mlir::Value>> outputs;
  std::vector<std::string> scopeNames;
  std::vector<mlir::Location> scopeLocs;
  TensorMap weights;
  int64_t parameterCount = 0;
  Graph *owner = nullptr;
  bool finished = false;
  /// Throws when the graph was finished (its context now belongs to a Module),
  /// naming `loc` when given.
  void checkOpen(const Loc *loc = nullptr) const;

  explicit Impl(mlir::MLIRContext *ctx) : builder(ctx) {}

  mlir::MLIRContext *ctx() { return context.get(); }
  /// The user's location, wrapped in the current scope's name.
  mlir::Location location(const Loc &loc);
  /// The location operators use: the innermost scope's, or the graph's.
  mlir::Location currentLocation();

  /// Creates `opName` with inferred result types; throws dsl::Error.
  Tensor create(llvm::StringRef opName, llvm::ArrayRef<Tensor> operands,
                llvm::ArrayRef<mlir::NamedAttribute> attrs, mlir::Location loc);
  Tensor wrap(mlir::Value v);
  Tensor constantAt(const std::vector<int64_t> &shape,
                    const std::vector<double> &values, DType dtype,
                    mlir::Location loc);
  [[noreturn]] void fail(mlir::Location loc, const std::string &message);
  void checkSameGraph(const Tensor &t, mlir::Location loc);
};

/// "file.cpp:12:5: " for a source location (basename of the file).
std::string formatSourceLocation(const Loc &loc);

/// The Impl of the graph a tensor belongs to; throws for an empty tensor or
/// a finished graph (whose MLIR context now belongs to a Module).
Graph::Impl &implOf(const Tensor &t, const Loc &loc = Loc::current());
inline mlir::Value valueOf(const Tensor &t) {
  return mlir::Value::getFromOpaquePointer(t.value());
}

} // namespace kiln::dsl

#endif // KILN_FRONTENDS_DSL_GRAPHIMPL_H
