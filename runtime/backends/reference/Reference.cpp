//===- Reference.cpp - The reference backend's kernel table ---------------===//
#include "Common.h"

namespace kiln {

void registerReferenceKernels(Backend &b) {
  reference::registerElementwiseKernels(b);
  reference::registerMatmulKernels(b);
  reference::registerConvKernels(b);
  reference::registerPoolKernels(b);
  reference::registerNormKernels(b);
  reference::registerReduceKernels(b);
  reference::registerShapeKernels(b);
  reference::registerFusedKernels(b);
  reference::registerAttentionKernels(b);
}

} // namespace kiln
