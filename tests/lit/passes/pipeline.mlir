// The whole pipeline (kiln-verify-program, canonicalize, cse,
// kiln-fuse-attention, canonicalize, kiln-fuse-epilogues) on a model with identities to fold, duplicate work to
// merge and an activation to fuse (the add reads the result twice: unfused).
// RUN: kiln-opt %s --kiln-pipeline | FileCheck %s

// CHECK-LABEL: func.func @model
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32> {kiln.name = "x"}, %[[W:.*]]: tensor<3x4xf32> {kiln.param = "w"})
// CHECK-NEXT: %[[R:.*]] = kiln.fused_matmul %[[X]], %[[W]] {epilogue = ["relu"]}
// CHECK-NEXT: %[[S:.*]] = kiln.add %[[R]], %[[R]]
// CHECK-NEXT: return %[[S]]
func.func @model(%x: tensor<2x3xf32> {kiln.name = "x"},
                 %w: tensor<3x4xf32> {kiln.param = "w"}) -> tensor<2x4xf32> {
  %one = kiln.constant dense<1.0> : tensor<f32>
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %0 = kiln.mul %x, %one : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %1 = kiln.transpose %0 {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %2 = kiln.transpose %1 {perm = array<i64: 1, 0>} : (tensor<3x2xf32>) -> tensor<2x3xf32>
  %3 = kiln.matmul %2, %w : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %4 = kiln.add %3, %zero : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %5 = kiln.relu %4 : tensor<2x4xf32>
  %6 = kiln.relu %4 : tensor<2x4xf32>
  %7 = kiln.add %5, %6 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return %7 : tensor<2x4xf32>
}
