// kiln-fuse-epilogues: bias, scale, activation and residual after a matmul or
// conv2d become steps of a fused op; values with other uses stay unfused.
// RUN: kiln-opt %s --split-input-file --kiln-fuse-epilogues | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-fuse-epilogues=remarks=true 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK

// CHECK-LABEL: func.func @bias
// CHECK-SAME: (%[[X:.*]]: tensor<2x8xf32>, %[[W:.*]]: tensor<8x16xf32>, %[[B:.*]]: tensor<16xf32>)
// CHECK-NEXT: %[[Y:.*]] = kiln.fused_matmul %[[X]], %[[W]], %[[B]] {epilogue = ["add_bias"]}
// CHECK-NEXT: return %[[Y]]
// REMARK: remark: fused epilogue [add_bias] into kiln.fused_matmul
func.func @bias(%x: tensor<2x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) -> tensor<2x16xf32> {
  %0 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x16xf32>) -> tensor<2x16xf32>
  %1 = kiln.add %b, %0 : (tensor<16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
  return %1 : tensor<2x16xf32>
}

// -----

// A transformer MLP up-projection: bias, gelu, then the residual add.
// CHECK-LABEL: func.func @mlp_block
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8xf32>, %[[W:.*]]: tensor<8x8xf32>, %[[B:.*]]: tensor<8xf32>)
// CHECK-NEXT: %[[Y:.*]] = kiln.fused_matmul %[[X]], %[[W]], %[[B]], %[[X]] {epilogue = ["add_bias", "gelu_tanh", "add_residual"]}
// CHECK-SAME: (tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
// CHECK-NEXT: return %[[Y]]
func.func @mlp_block(%x: tensor<2x4x8xf32>, %w: tensor<8x8xf32>, %b: tensor<8xf32>) -> tensor<2x4x8xf32> {
  %0 = kiln.matmul %x, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  %1 = kiln.add %0, %b : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  %2 = kiln.gelu %1 {approximate = "tanh"} : tensor<2x4x8xf32>
  %3 = kiln.add %x, %2 : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return %3 : tensor<2x4x8xf32>
}

// -----

// Attention scores scaled by a splat constant, bias of rank 3 ([1, 1, N]).
// CHECK-LABEL: func.func @scale
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x8xf32>, %[[K:.*]]: tensor<2x4x8xf32>, %[[B:.*]]: tensor<1x1x4xf32>)
// CHECK-NEXT: %[[S:.*]] = kiln.fused_matmul %[[Q]], %[[K]], %[[B]] {epilogue = ["scale", "add_bias", "silu"], scales = [1.250000e-01], transpose_b = true}
// CHECK-NEXT: return %[[S]]
func.func @scale(%q: tensor<2x4x8xf32>, %k: tensor<2x4x8xf32>, %b: tensor<1x1x4xf32>) -> tensor<2x4x4xf32> {
  %c = kiln.constant dense<0.125> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x4xf32>
  %1 = kiln.mul %0, %c : (tensor<2x4x4xf32>, tensor<f32>) -> tensor<2x4x4xf32>
  %2 = kiln.add %1, %b : (tensor<2x4x4xf32>, tensor<1x1x4xf32>) -> tensor<2x4x4xf32>
  %3 = kiln.silu %2 : tensor<2x4x4xf32>
  return %3 : tensor<2x4x4xf32>
}

// -----

// ReLU6 as ONNX Clip(0, 6) imports it: max then min by splat constants.
// CHECK-LABEL: func.func @relu6
// CHECK: kiln.fused_conv2d {{.*}}{epilogue = ["add_bias", "max", "min"], pads = array<i64: 1, 1, 1, 1>, scales = [0.000000e+00, 6.000000e+00]}
// CHECK-NOT: kiln.max
// CHECK-NOT: kiln.min
// REMARK: remark: fused epilogue [add_bias, max, min] into kiln.fused_conv2d
func.func @relu6(%x: tensor<1x8x6x6xf32>, %w: tensor<16x8x3x3xf32>, %b: tensor<16xf32>) -> tensor<1x16x6x6xf32> {
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %six = kiln.constant dense<6.0> : tensor<f32>
  %0 = kiln.conv2d %x, %w, %b {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x6x6xf32>, tensor<16x8x3x3xf32>, tensor<16xf32>) -> tensor<1x16x6x6xf32>
  %1 = kiln.max %0, %zero : (tensor<1x16x6x6xf32>, tensor<f32>) -> tensor<1x16x6x6xf32>
  %2 = kiln.min %1, %six : (tensor<1x16x6x6xf32>, tensor<f32>) -> tensor<1x16x6x6xf32>
  return %2 : tensor<1x16x6x6xf32>
}

// -----

// SiLU as exporters write it, x * sigmoid(x) on a conv result that has no
// other use: one silu step. With another use of x it stays unfused.
// CHECK-LABEL: func.func @swish
// CHECK: %[[F:.*]] = kiln.fused_conv2d {{.*}}{epilogue = ["add_bias", "silu"]
// CHECK-NOT: kiln.sigmoid
// CHECK: %[[C:.*]] = kiln.conv2d
// CHECK: kiln.sigmoid %[[C]]
// CHECK: kiln.mul
// REMARK: remark: fused epilogue [add_bias, silu] into kiln.fused_conv2d
func.func @swish(%x: tensor<1x8x6x6xf32>, %w: tensor<16x8x3x3xf32>, %b: tensor<16xf32>) -> (tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>) {
  %0 = kiln.conv2d %x, %w, %b {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x6x6xf32>, tensor<16x8x3x3xf32>, tensor<16xf32>) -> tensor<1x16x6x6xf32>
  %1 = kiln.sigmoid %0 : tensor<1x16x6x6xf32>
  %2 = kiln.mul %0, %1 : (tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32>
  %3 = kiln.conv2d %x, %w, %b {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x6x6xf32>, tensor<16x8x3x3xf32>, tensor<16xf32>) -> tensor<1x16x6x6xf32>
  %4 = kiln.sigmoid %3 : tensor<1x16x6x6xf32>
  %5 = kiln.mul %4, %3 : (tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32>
  return %2, %5, %3 : tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>
}

// -----

// ONNX HardSigmoid as the importer writes it, max(min(x / 6 + 1/2, 1), 0):
// the gate of MobileNet V3's squeeze-excitation blocks. The add of a splat
// is a shift step.
// CHECK-LABEL: func.func @hardsigmoid
// CHECK: kiln.fused_conv2d {{.*}}{epilogue = ["add_bias", "scale", "shift", "min", "max"], scales = [0.1666666716337204, 5.000000e-01, 1.000000e+00, 0.000000e+00]}
// CHECK-NOT: kiln.add
// CHECK-NOT: kiln.max
// REMARK: remark: fused epilogue [add_bias, scale, shift, min, max] into kiln.fused_conv2d
func.func @hardsigmoid(%x: tensor<1x8x1x1xf32>, %w: tensor<16x8x1x1xf32>, %b: tensor<16xf32>) -> tensor<1x16x1x1xf32> {
  %sixth = kiln.constant dense<0.166666672> : tensor<f32>
  %half = kiln.constant dense<0.5> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %0 = kiln.conv2d %x, %w, %b : (tensor<1x8x1x1xf32>, tensor<16x8x1x1xf32>, tensor<16xf32>) -> tensor<1x16x1x1xf32>
  %1 = kiln.mul %0, %sixth : (tensor<1x16x1x1xf32>, tensor<f32>) -> tensor<1x16x1x1xf32>
  %2 = kiln.add %half, %1 : (tensor<f32>, tensor<1x16x1x1xf32>) -> tensor<1x16x1x1xf32>
  %3 = kiln.min %2, %one : (tensor<1x16x1x1xf32>, tensor<f32>) -> tensor<1x16x1x1xf32>
  %4 = kiln.max %3, %zero : (tensor<1x16x1x1xf32>, tensor<f32>) -> tensor<1x16x1x1xf32>
  return %4 : tensor<1x16x1x1xf32>
}

// -----

// ONNX HardSwish as the importer writes it: x * max(min(x / 6 + 1/2, 1), 0).
// CHECK-LABEL: func.func @hardswish
// CHECK: kiln.fused_conv2d {{.*}}{epilogue = ["add_bias", "hardswish"]
// CHECK-NOT: kiln.max
// CHECK-NOT: kiln.mul
// REMARK: remark: fused epilogue [add_bias, hardswish] into kiln.fused_conv2d
func.func @hardswish(%x: tensor<1x8x6x6xf32>, %w: tensor<16x8x3x3xf32>, %b: tensor<16xf32>) -> tensor<1x16x6x6xf32> {
  %sixth = kiln.constant dense<0.166666672> : tensor<f32>
  %half = kiln.constant dense<0.5> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %0 = kiln.conv2d %x, %w, %b {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x8x6x6xf32>, tensor<16x8x3x3xf32>, tensor<16xf32>) -> tensor<1x16x6x6xf32>
  %1 = kiln.mul %0, %sixth : (tensor<1x16x6x6xf32>, tensor<f32>) -> tensor<1x16x6x6xf32>
  %2 = kiln.add %1, %half : (tensor<1x16x6x6xf32>, tensor<f32>) -> tensor<1x16x6x6xf32>
  %3 = kiln.min %2, %one : (tensor<1x16x6x6xf32>, tensor<f32>) -> tensor<1x16x6x6xf32>
  %4 = kiln.max %3, %zero : (tensor<1x16x6x6xf32>, tensor<f32>) -> tensor<1x16x6x6xf32>
  %5 = kiln.mul %0, %4 : (tensor<1x16x6x6xf32>, tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32>
  return %5 : tensor<1x16x6x6xf32>
}

// -----

// CHECK-LABEL: func.func @activations
// CHECK: kiln.fused_matmul {{.*}}{epilogue = ["relu"]}
// CHECK: kiln.fused_matmul {{.*}}{epilogue = ["tanh"]}
// CHECK: kiln.fused_matmul {{.*}}{epilogue = ["sigmoid"]}
// CHECK: kiln.fused_matmul {{.*}}{epilogue = ["gelu"]}
// CHECK-NOT: kiln.matmul
func.func @activations(%x: tensor<2x8xf32>, %w: tensor<8x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>) {
  %0 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
  %1 = kiln.relu %0 : tensor<2x8xf32>
  %2 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
  %3 = kiln.tanh %2 : tensor<2x8xf32>
  %4 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
  %5 = kiln.sigmoid %4 : tensor<2x8xf32>
  %6 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
  %7 = kiln.gelu %6 : tensor<2x8xf32>
  return %1, %3, %5, %7 : tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>, tensor<2x8xf32>
}

// -----

// A ResNet block tail: conv2d with its own bias, relu; then conv2d, a
// [1, O, 1, 1] bias add, the skip connection and relu.
// CHECK-LABEL: func.func @conv_block
// CHECK-SAME: (%[[X:.*]]: tensor<1x4x8x8xf32>, %[[W:.*]]: tensor<4x4x3x3xf32>, %[[B:.*]]: tensor<4xf32>, %[[CB:.*]]: tensor<1x4x1x1xf32>)
// CHECK-NEXT: %[[H:.*]] = kiln.fused_conv2d %[[X]], %[[W]], %[[B]] {epilogue = ["add_bias", "relu"], pads = array<i64: 1, 1, 1, 1>}
// CHECK-NEXT: %[[Y:.*]] = kiln.fused_conv2d %[[H]], %[[W]], %[[CB]], %[[X]] {epilogue = ["add_bias", "add_residual", "relu"], pads = array<i64: 1, 1, 1, 1>}
// CHECK-NEXT: return %[[Y]]
func.func @conv_block(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>, %b: tensor<4xf32>, %cb: tensor<1x4x1x1xf32>) -> tensor<1x4x8x8xf32> {
  %0 = kiln.conv2d %x, %w, %b {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  %1 = kiln.relu %0 : tensor<1x4x8x8xf32>
  %2 = kiln.conv2d %1, %w {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32>) -> tensor<1x4x8x8xf32>
  %3 = kiln.add %2, %cb : (tensor<1x4x8x8xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x8x8xf32>
  %4 = kiln.add %3, %x : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %5 = kiln.relu %4 : tensor<1x4x8x8xf32>
  return %5 : tensor<1x4x8x8xf32>
}

// -----

// The matmul result is also returned, so the bias add cannot absorb it.
// CHECK-LABEL: func.func @multi_use
// CHECK-NEXT: %[[MM:.*]] = kiln.matmul
// CHECK-NEXT: %[[Y:.*]] = kiln.add %[[MM]]
// CHECK-NEXT: return %[[MM]], %[[Y]]
// REMARK: remark: not fused into kiln.matmul: its result has other uses, so the unfused value is still needed
func.func @multi_use(%x: tensor<2x8xf32>, %w: tensor<8x16xf32>, %b: tensor<16xf32>) -> (tensor<2x16xf32>, tensor<2x16xf32>) {
  %0 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x16xf32>) -> tensor<2x16xf32>
  %1 = kiln.add %0, %b : (tensor<2x16xf32>, tensor<16xf32>) -> tensor<2x16xf32>
  return %0, %1 : tensor<2x16xf32>, tensor<2x16xf32>
}

// -----

// Neither a per-column bias nor a same-shaped residual: [2, 1] broadcasts
// along the rows; a non-splat multiplier is not a scale; integer matmuls
// stay as they are.
// CHECK-LABEL: func.func @not_fused
// CHECK-NOT: fused
// CHECK: kiln.add
// CHECK-NOT: fused
// CHECK: kiln.mul
// CHECK-NOT: fused
// CHECK: kiln.relu
// CHECK-NOT: fused
// CHECK: return
func.func @not_fused(%x: tensor<2x8xf32>, %w: tensor<8x16xf32>, %rows: tensor<2x1xf32>,
                     %i: tensor<2x8xi32>, %iw: tensor<8x16xi32>) -> (tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xi32>) {
  %0 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x16xf32>) -> tensor<2x16xf32>
  %1 = kiln.add %0, %rows : (tensor<2x16xf32>, tensor<2x1xf32>) -> tensor<2x16xf32>
  %2 = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x16xf32>) -> tensor<2x16xf32>
  %c = kiln.constant dense<[[1.0], [2.0]]> : tensor<2x1xf32>
  %3 = kiln.mul %2, %c : (tensor<2x16xf32>, tensor<2x1xf32>) -> tensor<2x16xf32>
  %4 = kiln.matmul %i, %iw : (tensor<2x8xi32>, tensor<8x16xi32>) -> tensor<2x16xi32>
  %5 = kiln.relu %4 : tensor<2x16xi32>
  return %1, %3, %5 : tensor<2x16xf32>, tensor<2x16xf32>, tensor<2x16xi32>
}

// -----

// A ResNet conv-bn-relu: the batch norm's four parameters and its epsilon
// join the epilogue. After a matmul a batch_norm is left alone.
// CHECK-LABEL: func.func @conv_bn_relu
// CHECK-SAME: (%[[X:.*]]: tensor<1x4x8x8xf32>, %[[W:.*]]: tensor<8x4x1x1xf32>, %[[S:.*]]: tensor<8xf32>, %[[B:.*]]: tensor<8xf32>, %[[M:.*]]: tensor<8xf32>, %[[V:.*]]: tensor<8xf32>
// CHECK-NEXT: %[[Y:.*]] = kiln.fused_conv2d %[[X]], %[[W]], %[[S]], %[[B]], %[[M]], %[[V]] {epilogue = ["batch_norm", "relu"], epsilons = [1.000000e-03]}
// CHECK-NEXT: %[[H:.*]] = kiln.matmul
// CHECK-NEXT: kiln.batch_norm %[[H]]
func.func @conv_bn_relu(%x: tensor<1x4x8x8xf32>, %w: tensor<8x4x1x1xf32>, %s: tensor<8xf32>, %b: tensor<8xf32>,
                        %m: tensor<8xf32>, %v: tensor<8xf32>, %a: tensor<2x8x4xf32>, %k: tensor<4x4xf32>)
    -> (tensor<1x8x8x8xf32>, tensor<2x8x4xf32>) {
  %0 = kiln.conv2d %x, %w : (tensor<1x4x8x8xf32>, tensor<8x4x1x1xf32>) -> tensor<1x8x8x8xf32>
  %1 = kiln.batch_norm %0, %s, %b, %m, %v {epsilon = 1.0e-03 : f64}
      : (tensor<1x8x8x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<1x8x8x8xf32>
  %2 = kiln.relu %1 : tensor<1x8x8x8xf32>
  %3 = kiln.matmul %a, %k : (tensor<2x8x4xf32>, tensor<4x4xf32>) -> tensor<2x8x4xf32>
  %4 = kiln.batch_norm %3, %s, %b, %m, %v : (tensor<2x8x4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x8x4xf32>
  return %2, %4 : tensor<1x8x8x8xf32>, tensor<2x8x4xf32>
}
