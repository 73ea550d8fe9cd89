//===- kiln-opt.cpp - mlir-opt with the kiln dialect ---------------------===//
//
// Parses, verifies, transforms and prints kiln IR. It registers only what kiln
// IR uses (the kiln and func dialects) and the core transform passes
// (canonicalize, cse, ...), so it builds quickly and links only libMLIR.so.
//
//===----------------------------------------------------------------------===//

#include "ir/KilnDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  // Kiln's own passes and the kiln-pipeline pipeline.
  kiln::registerKilnPasses();

  mlir::DialectRegistry registry;
  registry.insert<kiln::KilnDialect, mlir::func::FuncDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Kiln optimizer driver\n", registry));
}
