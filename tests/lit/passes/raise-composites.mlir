// kiln-raise-composites: op chains that exporters write for gelu and
// rms_norm become the kiln op; near misses stay as they are.
// RUN: kiln-opt %s --split-input-file --kiln-raise-composites | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-raise-composites=remarks=true 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK
// RUN: kiln-opt %s --split-input-file --kiln-raise-composites --kiln-fuse-epilogues | FileCheck %s --check-prefix=FUSED

// GELU as PyTorch exports F.gelu below opset 20 (Div, Erf, Add, Mul, Mul),
// and HF GPT-2's gelu_new after a reshape of the matmul result (pow for
// x^3). With kiln-fuse-epilogues after it, both become epilogue steps (the
// tanh one sunk below the reshape).
// CHECK-LABEL: func.func @decomposed_gelu
// CHECK: %[[A:.*]] = kiln.add %{{.*}}, %arg2
// CHECK: %[[G:.*]] = kiln.gelu %[[A]] : tensor<8x32xf32>
// CHECK: %[[R:.*]] = kiln.reshape
// CHECK: %[[T:.*]] = kiln.gelu %[[R]] {approximate = "tanh"} : tensor<2x4x32xf32>
// CHECK-NOT: kiln.erf
// CHECK-NOT: kiln.tanh
// CHECK: return %[[G]], %[[T]]
// REMARK: remark: raised gelu (none) from the ops that spell it out
// REMARK: remark: raised gelu (tanh) from the ops that spell it out
// FUSED-LABEL: func.func @decomposed_gelu
// FUSED: %[[A:.*]] = kiln.fused_matmul %arg0, %arg1, %arg2 {epilogue = ["add_bias", "gelu"]}
// FUSED: %[[B:.*]] = kiln.fused_matmul %arg0, %arg1, %arg2 {epilogue = ["add_bias", "gelu_tanh"]}
// FUSED-NEXT: %[[R:.*]] = kiln.reshape %[[B]]
// FUSED: return %[[A]], %[[R]]
func.func @decomposed_gelu(%x: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> (tensor<8x32xf32>, tensor<2x4x32xf32>) {
  %root2 = kiln.constant dense<1.41421354> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %half = kiln.constant dense<0.5> : tensor<f32>
  %three = kiln.constant dense<3.0> : tensor<f32>
  %k = kiln.constant dense<0.0447149985> : tensor<f32>
  %c = kiln.constant dense<0.797884583> : tensor<f32>
  %0 = kiln.matmul %x, %w : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = kiln.add %0, %b : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %2 = kiln.div %1, %root2 : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  %3 = kiln.erf %2 : tensor<8x32xf32>
  %4 = kiln.add %3, %one : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  %5 = kiln.mul %1, %4 : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %6 = kiln.mul %5, %half : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  %10 = kiln.matmul %x, %w : (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %11 = kiln.add %10, %b : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %12 = kiln.reshape %11 {shape = array<i64: 2, 4, 32>} : (tensor<8x32xf32>) -> tensor<2x4x32xf32>
  %13 = kiln.mul %12, %half : (tensor<2x4x32xf32>, tensor<f32>) -> tensor<2x4x32xf32>
  %14 = kiln.pow %12, %three : (tensor<2x4x32xf32>, tensor<f32>) -> tensor<2x4x32xf32>
  %15 = kiln.mul %14, %k : (tensor<2x4x32xf32>, tensor<f32>) -> tensor<2x4x32xf32>
  %16 = kiln.add %12, %15 : (tensor<2x4x32xf32>, tensor<2x4x32xf32>) -> tensor<2x4x32xf32>
  %17 = kiln.mul %16, %c : (tensor<2x4x32xf32>, tensor<f32>) -> tensor<2x4x32xf32>
  %18 = kiln.tanh %17 : tensor<2x4x32xf32>
  %19 = kiln.add %18, %one : (tensor<2x4x32xf32>, tensor<f32>) -> tensor<2x4x32xf32>
  %20 = kiln.mul %13, %19 : (tensor<2x4x32xf32>, tensor<2x4x32xf32>) -> tensor<2x4x32xf32>
  return %6, %20 : tensor<8x32xf32>, tensor<2x4x32xf32>
}

// -----

// A near miss (0.6 where GELU has 0.5) and an erf whose argument has
// another use stay as they are.
// CHECK-LABEL: func.func @not_gelu
// CHECK-COUNT-2: kiln.erf
// CHECK-NOT: kiln.gelu
func.func @not_gelu(%x: tensor<8x32xf32>) -> (tensor<8x32xf32>, tensor<8x32xf32>, tensor<8x32xf32>) {
  %root2 = kiln.constant dense<1.41421354> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %half = kiln.constant dense<0.5> : tensor<f32>
  %other = kiln.constant dense<0.6> : tensor<f32>
  %0 = kiln.div %x, %root2 : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  %1 = kiln.erf %0 : tensor<8x32xf32>
  %2 = kiln.add %1, %one : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  %3 = kiln.mul %x, %2 : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %4 = kiln.mul %3, %other : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  %5 = kiln.div %x, %root2 : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  %6 = kiln.erf %5 : tensor<8x32xf32>
  %7 = kiln.add %6, %one : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  %8 = kiln.mul %x, %7 : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %9 = kiln.mul %8, %half : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
  return %4, %9, %5 : tensor<8x32xf32>, tensor<8x32xf32>, tensor<8x32xf32>
}

// -----

// RMSNorm as HF LLaMA exports it (Pow, ReduceMean, Add, Sqrt, Div(1, .),
// Mul, Mul by the weight), and T5's with x * x and rsqrt, weight first.
// CHECK-LABEL: func.func @rms_norm
// CHECK: %[[A:.*]] = kiln.rms_norm %arg0, %arg1 {epsilon = 9.9999999747524271E-7 : f64} : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
// CHECK: %[[B:.*]] = kiln.rms_norm %arg0, %arg1 {epsilon = 9.9999999747524271E-7 : f64}
// CHECK-NOT: kiln.reduce_mean
// CHECK: return %[[A]], %[[B]]
// REMARK-COUNT-2: remark: raised rms_norm from the ops that spell it out
func.func @rms_norm(%x: tensor<2x8x64xf32>, %w: tensor<64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>) {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %eps = kiln.constant dense<9.99999997E-7> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %0 = kiln.pow %x, %two : (tensor<2x8x64xf32>, tensor<f32>) -> tensor<2x8x64xf32>
  %1 = kiln.reduce_mean %0 {axes = array<i64: -1>, keepdims = true} : (tensor<2x8x64xf32>) -> tensor<2x8x1xf32>
  %2 = kiln.add %1, %eps : (tensor<2x8x1xf32>, tensor<f32>) -> tensor<2x8x1xf32>
  %3 = kiln.sqrt %2 : tensor<2x8x1xf32>
  %4 = kiln.div %one, %3 : (tensor<f32>, tensor<2x8x1xf32>) -> tensor<2x8x1xf32>
  %5 = kiln.mul %x, %4 : (tensor<2x8x64xf32>, tensor<2x8x1xf32>) -> tensor<2x8x64xf32>
  %6 = kiln.mul %w, %5 : (tensor<64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  %10 = kiln.mul %x, %x : (tensor<2x8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  %11 = kiln.reduce_mean %10 {axes = array<i64: 2>, keepdims = true} : (tensor<2x8x64xf32>) -> tensor<2x8x1xf32>
  %12 = kiln.add %eps, %11 : (tensor<f32>, tensor<2x8x1xf32>) -> tensor<2x8x1xf32>
  %13 = kiln.rsqrt %12 : tensor<2x8x1xf32>
  %14 = kiln.mul %13, %x : (tensor<2x8x1xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  %15 = kiln.mul %w, %14 : (tensor<64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %6, %15 : tensor<2x8x64xf32>, tensor<2x8x64xf32>
}

// -----

// Not RMSNorm: the mean over another axis, and a weight that is not [D].
// CHECK-LABEL: func.func @not_rms_norm
// CHECK-NOT: kiln.rms_norm
func.func @not_rms_norm(%x: tensor<2x8x64xf32>, %w: tensor<64xf32>, %v: tensor<8x64xf32>) -> (tensor<2x8x64xf32>, tensor<2x8x64xf32>) {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %eps = kiln.constant dense<9.99999997E-7> : tensor<f32>
  %0 = kiln.pow %x, %two : (tensor<2x8x64xf32>, tensor<f32>) -> tensor<2x8x64xf32>
  %1 = kiln.reduce_mean %0 {axes = array<i64: 1>, keepdims = true} : (tensor<2x8x64xf32>) -> tensor<2x1x64xf32>
  %2 = kiln.add %1, %eps : (tensor<2x1x64xf32>, tensor<f32>) -> tensor<2x1x64xf32>
  %3 = kiln.rsqrt %2 : tensor<2x1x64xf32>
  %4 = kiln.mul %x, %3 : (tensor<2x8x64xf32>, tensor<2x1x64xf32>) -> tensor<2x8x64xf32>
  %5 = kiln.mul %w, %4 : (tensor<64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  %10 = kiln.pow %x, %two : (tensor<2x8x64xf32>, tensor<f32>) -> tensor<2x8x64xf32>
  %11 = kiln.reduce_mean %10 {axes = array<i64: -1>, keepdims = true} : (tensor<2x8x64xf32>) -> tensor<2x8x1xf32>
  %12 = kiln.add %11, %eps : (tensor<2x8x1xf32>, tensor<f32>) -> tensor<2x8x1xf32>
  %13 = kiln.rsqrt %12 : tensor<2x8x1xf32>
  %14 = kiln.mul %x, %13 : (tensor<2x8x64xf32>, tensor<2x8x1xf32>) -> tensor<2x8x64xf32>
  %15 = kiln.mul %v, %14 : (tensor<8x64xf32>, tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  return %5, %15 : tensor<2x8x64xf32>, tensor<2x8x64xf32>
}
