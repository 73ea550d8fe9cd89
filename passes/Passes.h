//===- passes/Passes.h - Kiln passes and the pipeline ----------*- C++ -*-===//
//
// Declarations of every kiln pass (generated from Passes.td) and the one
// function that builds the compilation pipeline.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_PASSES_H
#define KILN_PASSES_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

#include <memory>

namespace kiln {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// Options of the whole pipeline (grows with the rewrites).
struct PipelineOptions {
  /// Run kiln-fuse-epilogues (last): pointwise ops after matmul/conv2d
  /// become fused_matmul/fused_conv2d epilogues.
  bool fuseEpilogues = true;
};

/// The compilation pipeline, in order; see Pipeline.cpp for why this order.
void buildKilnPipeline(mlir::OpPassManager &pm,
                       const PipelineOptions &options = {});

/// Registers every kiln pass and the `kiln-pipeline` pipeline (for kiln-opt).
void registerKilnPasses();

} // namespace kiln

#endif // KILN_PASSES_PASSES_H
