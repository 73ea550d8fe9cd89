//===- passes/VerifyProgram.cpp - kiln-verify-program ---------------------===//
//
// Rejects, with every reason at once, modules that kiln cannot compile: more
// than one model function, ops outside the kiln dialect, dynamic shapes,
// unsupported element types, duplicate argument or result names.
//
//===----------------------------------------------------------------------===//
#include "ir/ElementTypes.h"
#include "ir/KilnDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/MapVector.h"

#include <set>

namespace kiln {
#define GEN_PASS_DEF_VERIFYPROGRAMPASS
#include "passes/Passes.h.inc"

namespace {

/// Why `type` cannot be a kiln value, or "" when it can.
std::string checkType(mlir::Type type) {
  auto tensor = mlir::dyn_cast<mlir::RankedTensorType>(type);
  std::string s;
  llvm::raw_string_ostream os(s);
  os << type;
  if (!tensor)
    return "is not a ranked tensor: " + s;
  if (!tensor.hasStaticShape())
    return "has a dynamic shape: " + s;
  auto dtype = fromMlirElementType(tensor.getElementType());
  if (!dtype)
    return "has an unsupported element type: " + s;
  int64_t bytes = static_cast<int64_t>(dtypeSize(*dtype));
  for (int64_t d : tensor.getShape())
    if (__builtin_mul_overflow(bytes, d, &bytes) || bytes > (int64_t(1) << 48))
      return "is too large (its byte size overflows): " + s;
  return "";
}

struct VerifyProgramPass
    : public impl::VerifyProgramPassBase<VerifyProgramPass> {
  void runOnOperation() override {
    mlir::ModuleOp module = getOperation();
    llvm::SmallVector<mlir::func::FuncOp> funcs;
    for (auto f : module.getOps<mlir::func::FuncOp>())
      if (!f.isPrivate() && !f.isExternal())
        funcs.push_back(f);
    if (funcs.size() != 1) {
      module.emitError() << "expected exactly one public function with a "
                            "body (the model), found "
                         << funcs.size();
      return signalPassFailure();
    }
    mlir::func::FuncOp func = funcs.front();
    bool failed = false;

    // Ops outside the dialect, grouped by name with a count and first use.
    llvm::MapVector<llvm::StringRef, std::pair<int, mlir::Operation *>> foreign;
    func.walk([&](mlir::Operation *op) {
      mlir::Dialect *dialect = op->getDialect(); // null when unregistered
      if (op == func.getOperation() || mlir::isa<mlir::func::ReturnOp>(op) ||
          (dialect && mlir::isa<KilnDialect>(dialect)))
        return;
      auto &entry = foreign[op->getName().getStringRef()];
      if (entry.first++ == 0)
        entry.second = op;
    });
    for (auto &[name, entry] : foreign) {
      entry.second->emitError()
          << "'" << name << "' (" << entry.first
          << (entry.first == 1 ? " use" : " uses") << ") is not a kiln op";
      failed = true;
    }

    for (auto arg : func.getArguments())
      if (auto why = checkType(arg.getType()); !why.empty()) {
        func.emitError() << "argument " << arg.getArgNumber() << " " << why;
        failed = true;
      }
    func.walk([&](mlir::Operation *op) {
      if (op == func.getOperation())
        return;
      for (auto result : op->getResults())
        if (auto why = checkType(result.getType()); !why.empty()) {
          op->emitError() << "result " << result.getResultNumber() << " "
                          << why;
          failed = true;
        }
    });

    if (func.getNumResults() == 0) {
      func.emitError() << "the model returns nothing; it needs at least one "
                          "output";
      failed = true;
    }
    // Names must be strings; an argument is a parameter or an input.
    auto checkName = [&](mlir::Attribute a, const char *what, unsigned i) {
      if (a && !mlir::isa<mlir::StringAttr>(a)) {
        func.emitError() << what << " " << i << ": name must be a string, got "
                         << a;
        failed = true;
      }
    };
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      checkName(func.getArgAttr(i, "kiln.param"), "argument", i);
      checkName(func.getArgAttr(i, "kiln.name"), "argument", i);
      if (func.getArgAttr(i, "kiln.param") && func.getArgAttr(i, "kiln.name")) {
        func.emitError() << "argument " << i
                         << " has both kiln.param and kiln.name; it is either "
                            "a parameter or an input";
        failed = true;
      }
    }
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      checkName(func.getResultAttr(i, "kiln.name"), "result", i);

    std::set<std::string> params, inputs, outputs;
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      auto param = func.getArgAttrOfType<mlir::StringAttr>(i, "kiln.param");
      auto input = func.getArgAttrOfType<mlir::StringAttr>(i, "kiln.name");
      if (param && !params.insert(param.str()).second) {
        func.emitError() << "parameter name '" << param.str()
                         << "' is used by more than one argument";
        failed = true;
      }
      if (input && !inputs.insert(input.str()).second) {
        func.emitError() << "input name '" << input.str()
                         << "' is used by more than one argument";
        failed = true;
      }
    }
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (auto out = func.getResultAttrOfType<mlir::StringAttr>(i, "kiln.name"))
        if (!outputs.insert(out.str()).second) {
          func.emitError() << "output name '" << out.str()
                           << "' is used by more than one result";
          failed = true;
        }
    if (failed)
      signalPassFailure();
  }
};

} // namespace
} // namespace kiln
