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
  /// Run kiln-raise-composites: op chains that spell out gelu or rms_norm
  /// become that op.
  bool raiseComposites = true;
  /// Run kiln-fuse-attention: matmul -> scale -> mask -> softmax -> matmul
  /// becomes kiln.attention.
  bool fuseAttention = true;
  /// Attention with fewer keys stays unfused (kiln-fuse-attention's
  /// min-keys); attentionMinKeysFor() gives the measured value per target.
  int64_t attentionMinKeys = 0;
  /// Passes that explain their decisions emit remarks.
  bool remarks = false;
  /// Run kiln-fuse-epilogues (last): pointwise ops after matmul/conv2d
  /// become fused_matmul/fused_conv2d epilogues.
  bool fuseEpilogues = true;
};

/// The smallest key count at which fused attention beats the decomposed
/// kernels on `target`, from bench/attention.py.
int64_t attentionMinKeysFor(const std::string &target);

/// The compilation pipeline, in order; see Pipeline.cpp for why this order.
void buildKilnPipeline(mlir::OpPassManager &pm,
                       const PipelineOptions &options = {});

/// Registers every kiln pass and the `kiln-pipeline` pipeline (for kiln-opt).
void registerKilnPasses();

} // namespace kiln

#endif // KILN_PASSES_PASSES_H
