// kiln-run --profile: one row per kernel, sorted by time, with its share,
// GFLOP/s for matmul/conv2d and attention kernels, and the implementation;
// then the matmul/conv2d total and the reference fallbacks. The summary
// counts 2 * 64 * 64 * 64 FLOPs of the matmul only (attention's rate is per
// kernel).
// RUN: kiln-run %s --profile | FileCheck %s
// CHECK: kiln-run: profile (3 kernels, {{.*}} total, median of 5 warm runs)
// CHECK-NEXT: op {{ *}}time {{ *}}share {{ *}}GFLOP/s {{ *}}impl {{ *}}location
// CHECK-DAG: {{^}}  matmul {{ *}}{{[0-9.]+}} ms {{ *}}{{[0-9.]+}} {{ *}}{{[0-9]+\.[0-9]}} {{ *}}onednn:matmul
// CHECK-DAG: {{^}}  attention {{ *}}{{[0-9.]+}} ms {{ *}}{{[0-9.]+}} {{ *}}{{[0-9]+\.[0-9]}} {{ *}}cpu:flash_attention
// CHECK-DAG: {{^}}  exp {{ *}}{{[0-9.]+}} ms {{ *}}{{[0-9.]+}} {{ *}}onednn:eltwise
// CHECK: kiln-run: matmul/conv2d: 0.001 GFLOP in
// CHECK: kiln-run: fallback to reference: 0 kernels

// --profile-runs sets how many warm runs each kernel's median is over.
// RUN: kiln-run %s --profile --profile-runs 1 | FileCheck %s --check-prefix=ONE
// ONE: kiln-run: profile (3 kernels, {{.*}} total, median of 1 warm run)
// RUN: not kiln-run %s --profile --profile-runs 0 2>&1 | FileCheck %s --check-prefix=ZERO
// ZERO: --profile-runs must be >= 1
// RUN: not kiln-run %s --profile-runs 3 2>&1 | FileCheck %s --check-prefix=ALONE
// ALONE: --profile-runs applies with --profile only

// On the reference backend every kernel is the reference one, and no
// fallback is listed (nothing fell back from a faster backend).
// RUN: kiln-run %s --profile --backend reference | FileCheck %s --check-prefix=REF
// REF: {{^}}  attention {{.*}} reference
// REF: kiln-run: fallback to reference: 0 kernels

func.func @main(%x: tensor<1x64x64xf32>, %w: tensor<64x64xf32>, %q: tensor<1x2x64x32xf32>) -> (tensor<1x64x64xf32>, tensor<1x2x64x32xf32>) {
  %0 = kiln.matmul %x, %w : (tensor<1x64x64xf32>, tensor<64x64xf32>) -> tensor<1x64x64xf32>
  %1 = kiln.exp %0 : tensor<1x64x64xf32>
  %2 = kiln.attention %q, %q, %q {causal = true} : (tensor<1x2x64x32xf32>, tensor<1x2x64x32xf32>, tensor<1x2x64x32xf32>) -> tensor<1x2x64x32xf32>
  return %1, %2 : tensor<1x64x64xf32>, tensor<1x2x64x32xf32>
}
