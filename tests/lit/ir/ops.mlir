// Round trip of every kiln op: parse -> print -> parse -> print is stable, and
// the printed form is the documented assembly.
// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// RUN: kiln-opt %s --mlir-print-op-generic | kiln-opt | FileCheck %s

// CHECK-LABEL: func.func @unary
func.func @unary(%f: tensor<2x4xf32>, %i: tensor<3xi32>) {
  // CHECK: kiln.neg %{{.*}} : tensor<3xi32>
  %0 = kiln.neg %i : tensor<3xi32>
  // CHECK: kiln.abs %{{.*}} : tensor<2x4xf32>
  %1 = kiln.abs %f : tensor<2x4xf32>
  // CHECK: kiln.relu %{{.*}} : tensor<3xi32>
  %2 = kiln.relu %i : tensor<3xi32>
  // CHECK: kiln.exp %{{.*}} : tensor<2x4xf32>
  %3 = kiln.exp %f : tensor<2x4xf32>
  // CHECK: kiln.log
  %4 = kiln.log %f : tensor<2x4xf32>
  // CHECK: kiln.sqrt
  %5 = kiln.sqrt %f : tensor<2x4xf32>
  // CHECK: kiln.rsqrt
  %6 = kiln.rsqrt %f : tensor<2x4xf32>
  // CHECK: kiln.tanh
  %7 = kiln.tanh %f : tensor<2x4xf32>
  // CHECK: kiln.sigmoid
  %8 = kiln.sigmoid %f : tensor<2x4xf32>
  // CHECK: kiln.silu
  %9 = kiln.silu %f : tensor<2x4xf32>
  // CHECK: kiln.erf
  %10 = kiln.erf %f : tensor<2x4xf32>
  // CHECK: kiln.reciprocal
  %11 = kiln.reciprocal %f : tensor<2x4xf32>
  // The default approximation is elided when printing.
  // CHECK: kiln.gelu %{{.*}} : tensor<2x4xf32>
  %12 = kiln.gelu %f : tensor<2x4xf32>
  // CHECK: kiln.gelu %{{.*}} {approximate = "tanh"} : tensor<2x4xf32>
  %13 = kiln.gelu %f {approximate = "tanh"} : tensor<2x4xf32>
  return
}

// CHECK-LABEL: func.func @trigonometric
func.func @trigonometric(%f: tensor<2x4xf32>, %h: tensor<3xf16>) {
  // CHECK: kiln.sin %{{.*}} : tensor<2x4xf32>
  %0 = kiln.sin %f : tensor<2x4xf32>
  // CHECK: kiln.cos %{{.*}} : tensor<3xf16>
  %1 = kiln.cos %h : tensor<3xf16>
  // CHECK: kiln.atan %{{.*}} : tensor<2x4xf32>
  %2 = kiln.atan %f : tensor<2x4xf32>
  return
}

// CHECK-LABEL: func.func @binary
func.func @binary(%a: tensor<2x4xf32>, %b: tensor<4xf32>, %s: tensor<f32>,
                  %i: tensor<2x1xi64>, %j: tensor<3xi64>, %p: tensor<2xi1>) {
  // CHECK: kiln.add %{{.*}}, %{{.*}} : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %0 = kiln.add %a, %b : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  // CHECK: kiln.sub %{{.*}}, %{{.*}} : (tensor<f32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %1 = kiln.sub %s, %a : (tensor<f32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  // CHECK: kiln.mul %{{.*}}, %{{.*}} : (tensor<2x1xi64>, tensor<3xi64>) -> tensor<2x3xi64>
  %2 = kiln.mul %i, %j : (tensor<2x1xi64>, tensor<3xi64>) -> tensor<2x3xi64>
  // CHECK: kiln.div
  %3 = kiln.div %i, %j : (tensor<2x1xi64>, tensor<3xi64>) -> tensor<2x3xi64>
  // CHECK: kiln.max
  %4 = kiln.max %a, %s : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  // CHECK: kiln.min
  %5 = kiln.min %a, %b : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  // CHECK: kiln.pow
  %6 = kiln.pow %a, %s : (tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  // CHECK: kiln.compare %{{.*}}, %{{.*}} {predicate = "lt"} : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xi1>
  %7 = kiln.compare %a, %b {predicate = "lt"} : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xi1>
  // CHECK: kiln.compare %{{.*}}, %{{.*}} {predicate = "ne"} : (tensor<2xi1>, tensor<2xi1>) -> tensor<2xi1>
  %8 = kiln.compare %p, %p {predicate = "ne"} : (tensor<2xi1>, tensor<2xi1>) -> tensor<2xi1>
  // CHECK: kiln.where %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x4xi1>, tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  %9 = kiln.where %7, %a, %s : (tensor<2x4xi1>, tensor<2x4xf32>, tensor<f32>) -> tensor<2x4xf32>
  // CHECK: kiln.cast %{{.*}} {dtype = bf16} : (tensor<2x4xf32>) -> tensor<2x4xbf16>
  %10 = kiln.cast %a {dtype = bf16} : (tensor<2x4xf32>) -> tensor<2x4xbf16>
  // CHECK: kiln.cast %{{.*}} {dtype = ui8} : (tensor<2xi1>) -> tensor<2xui8>
  %11 = kiln.cast %p {dtype = ui8} : (tensor<2xi1>) -> tensor<2xui8>
  return
}

// CHECK-LABEL: func.func @linalg_nn
func.func @linalg_nn(%a: tensor<5x2x3xbf16>, %b: tensor<4x3xbf16>,
                     %x: tensor<1x3x8x8xf32>, %w: tensor<16x3x3x3xf32>,
                     %bias: tensor<16xf32>, %dw: tensor<6x1x3x3xf32>,
                     %c: tensor<3xf32>, %h: tensor<2x16x64xf32>,
                     %g: tensor<64xf32>) {
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} {transpose_b = true} : (tensor<5x2x3xbf16>, tensor<4x3xbf16>) -> tensor<5x2x4xbf16>
  %0 = kiln.matmul %a, %b {transpose_b = true} : (tensor<5x2x3xbf16>, tensor<4x3xbf16>) -> tensor<5x2x4xbf16>
  // CHECK: kiln.matmul %{{.*}}, %{{.*}} {transpose_a = true} : (tensor<5x2x3xbf16>, tensor<2x4xbf16>) -> tensor<5x3x4xbf16>
  %b2 = kiln.reshape %b {shape = array<i64: 2, 6>} : (tensor<4x3xbf16>) -> tensor<2x6xbf16>
  %b3 = kiln.slice %b2 {starts = array<i64: 0, 0>, ends = array<i64: 2, 4>, steps = array<i64: 1, 1>} : (tensor<2x6xbf16>) -> tensor<2x4xbf16>
  %1 = kiln.matmul %a, %b3 {transpose_a = true} : (tensor<5x2x3xbf16>, tensor<2x4xbf16>) -> tensor<5x3x4xbf16>
  // CHECK: kiln.conv2d %{{.*}}, %{{.*}}, %{{.*}} {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<1x16x8x8xf32>
  %2 = kiln.conv2d %x, %w, %bias {pads = array<i64: 1, 1, 1, 1>} : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>) -> tensor<1x16x8x8xf32>
  // CHECK: kiln.conv2d %{{.*}}, %{{.*}} {dilations = array<i64: 2, 2>, groups = 3 : i64, strides = array<i64: 2, 1>} : (tensor<1x3x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<1x6x2x4xf32>
  %3 = kiln.conv2d %x, %dw {strides = array<i64: 2, 1>, dilations = array<i64: 2, 2>, groups = 3 : i64} : (tensor<1x3x8x8xf32>, tensor<6x1x3x3xf32>) -> tensor<1x6x2x4xf32>
  // CHECK: kiln.max_pool2d %{{.*}} {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
  %4 = kiln.max_pool2d %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
  // ceil((8 + 0 - 3) / 2) + 1 = 4 windows; the 4th starts at 6, inside the input.
  // CHECK: kiln.max_pool2d %{{.*}} {ceil_mode = true, kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
  %5 = kiln.max_pool2d %x {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, ceil_mode = true} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
  // CHECK: kiln.avg_pool2d %{{.*}} {count_include_pad = true, kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  %6 = kiln.avg_pool2d %x {kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>, count_include_pad = true} : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  // CHECK: kiln.global_avg_pool %{{.*}} : (tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32>
  %7 = kiln.global_avg_pool %x : (tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32>
  // CHECK: kiln.batch_norm %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 1.000000e-03 : f64} : (tensor<1x3x8x8xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<1x3x8x8xf32>
  %8 = kiln.batch_norm %x, %c, %c, %c, %c {epsilon = 1.0e-3 : f64} : (tensor<1x3x8x8xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<1x3x8x8xf32>
  // CHECK: kiln.layer_norm %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  %9 = kiln.layer_norm %h, %g, %g : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  // CHECK: kiln.rms_norm %{{.*}}, %{{.*}} {axis = 2 : i64} : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  %10 = kiln.rms_norm %h, %g {axis = 2 : i64} : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  // CHECK: kiln.softmax %{{.*}} : tensor<2x16x64xf32>
  %11 = kiln.softmax %h : tensor<2x16x64xf32>
  // CHECK: kiln.log_softmax %{{.*}} {axis = 1 : i64} : tensor<2x16x64xf32>
  %12 = kiln.log_softmax %h {axis = 1 : i64} : tensor<2x16x64xf32>
  return
}

// CHECK-LABEL: func.func @reductions
func.func @reductions(%x: tensor<2x3x4xf32>, %i: tensor<2x3xi32>) {
  // CHECK: kiln.reduce_sum %{{.*}} {axes = array<i64: -1>} : (tensor<2x3x4xf32>) -> tensor<2x3xf32>
  %0 = kiln.reduce_sum %x {axes = array<i64: -1>} : (tensor<2x3x4xf32>) -> tensor<2x3xf32>
  // CHECK: kiln.reduce_mean %{{.*}} {axes = array<i64: 0, 2>, keepdims = true} : (tensor<2x3x4xf32>) -> tensor<1x3x1xf32>
  %1 = kiln.reduce_mean %x {axes = array<i64: 0, 2>, keepdims = true} : (tensor<2x3x4xf32>) -> tensor<1x3x1xf32>
  // Empty axes reduce every dim.
  // CHECK: kiln.reduce_max %{{.*}} {axes = array<i64>} : (tensor<2x3x4xf32>) -> tensor<f32>
  %2 = kiln.reduce_max %x {axes = array<i64>} : (tensor<2x3x4xf32>) -> tensor<f32>
  // CHECK: kiln.reduce_min %{{.*}} {axes = array<i64: 1>} : (tensor<2x3xi32>) -> tensor<2xi32>
  %3 = kiln.reduce_min %i {axes = array<i64: 1>} : (tensor<2x3xi32>) -> tensor<2xi32>
  return
}

// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<2x3x4xf32>, %y: tensor<2x5x4xf32>,
                  %t: tensor<100x8xf16>, %ids: tensor<2x7xi64>,
                  %v: tensor<3x1xi8>) {
  // CHECK: kiln.reshape %{{.*}} {shape = array<i64: 6, 4>} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  %0 = kiln.reshape %x {shape = array<i64: 6, 4>} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
  // CHECK: kiln.transpose %{{.*}} {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %1 = kiln.transpose %x {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  // CHECK: kiln.concat %{{.*}}, %{{.*}}, %{{.*}} {axis = -2 : i64} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>, tensor<2x3x4xf32>) -> tensor<2x11x4xf32>
  %2 = kiln.concat %x, %y, %x {axis = -2 : i64} : (tensor<2x3x4xf32>, tensor<2x5x4xf32>, tensor<2x3x4xf32>) -> tensor<2x11x4xf32>
  // CHECK: kiln.concat %{{.*}} {axis = 0 : i64} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  %3 = kiln.concat %x {axis = 0 : i64} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  // Negative step: start 3, end -1 walks the whole dim backwards.
  // CHECK: kiln.slice %{{.*}} {ends = array<i64: 2, 3, -1>, starts = array<i64: 0, 1, 3>, steps = array<i64: 1, 2, -2>} : (tensor<2x3x4xf32>) -> tensor<2x1x2xf32>
  %4 = kiln.slice %x {starts = array<i64: 0, 1, 3>, ends = array<i64: 2, 3, -1>, steps = array<i64: 1, 2, -2>} : (tensor<2x3x4xf32>) -> tensor<2x1x2xf32>
  // CHECK: kiln.gather %{{.*}}, %{{.*}} : (tensor<100x8xf16>, tensor<2x7xi64>) -> tensor<2x7x8xf16>
  %5 = kiln.gather %t, %ids : (tensor<100x8xf16>, tensor<2x7xi64>) -> tensor<2x7x8xf16>
  // CHECK: kiln.gather %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x7xi64>) -> tensor<2x2x7x4xf32>
  %6 = kiln.gather %x, %ids {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x7xi64>) -> tensor<2x2x7x4xf32>
  // CHECK: kiln.broadcast_to %{{.*}} {shape = array<i64: 5, 3, 4>} : (tensor<3x1xi8>) -> tensor<5x3x4xi8>
  %7 = kiln.broadcast_to %v {shape = array<i64: 5, 3, 4>} : (tensor<3x1xi8>) -> tensor<5x3x4xi8>
  return
}

// CHECK-LABEL: func.func @constants
func.func @constants() -> (tensor<2xf32>, tensor<i1>, tensor<2x2xbf16>) {
  // CHECK: kiln.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
  %0 = kiln.constant dense<[1.0, 2.0]> : tensor<2xf32>
  // CHECK: kiln.constant dense<true> : tensor<i1>
  %1 = kiln.constant dense<true> : tensor<i1>
  // CHECK: kiln.constant dense<5.000000e-01> : tensor<2x2xbf16>
  %2 = kiln.constant dense<0.5> : tensor<2x2xbf16>
  return %0, %1, %2 : tensor<2xf32>, tensor<i1>, tensor<2x2xbf16>
}

// CHECK-LABEL: func.func @fused
func.func @fused(%x: tensor<2x8xf32>, %w: tensor<16x8xf32>, %b: tensor<16xf32>,
                 %r: tensor<2x16xf32>, %img: tensor<1x3x8x8xf32>,
                 %k: tensor<4x3x3x3xf32>, %cb: tensor<1x4x1x1xf32>, %p: tensor<4xf32>)
    -> (tensor<2x16xf32>, tensor<1x4x8x8xf32>) {
  // CHECK: kiln.fused_matmul %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {epilogue = ["add_bias", "scale", "gelu", "add_residual"], scales = [1.250000e-01], transpose_b = true} : (tensor<2x8xf32>, tensor<16x8xf32>, tensor<16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
  %0 = kiln.fused_matmul %x, %w, %b, %r {transpose_b = true,
      epilogue = ["add_bias", "scale", "gelu", "add_residual"], scales = [0.125]}
      : (tensor<2x8xf32>, tensor<16x8xf32>, tensor<16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
  // CHECK: kiln.fused_conv2d %{{.*}}, %{{.*}}, %{{.*}} {epilogue = ["add_bias", "relu"], pads = array<i64: 1, 1, 1, 1>} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x8x8xf32>
  %1 = kiln.fused_conv2d %img, %k, %cb {pads = array<i64: 1, 1, 1, 1>, epilogue = ["add_bias", "relu"]}
      : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<1x4x1x1xf32>) -> tensor<1x4x8x8xf32>
  // CHECK: kiln.fused_conv2d %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {epilogue = ["batch_norm", "relu"], epsilons = [1.000000e-03]} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x6x6xf32>
  %2 = kiln.fused_conv2d %img, %k, %p, %p, %p, %p {epilogue = ["batch_norm", "relu"], epsilons = [1.0e-03]}
      : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x6x6xf32>
  return %0, %1 : tensor<2x16xf32>, tensor<1x4x8x8xf32>
}

// CHECK-LABEL: func.func @attention
func.func @attention(%q: tensor<1x12x128x64xf32>, %k: tensor<1x4x128x64xf32>,
                     %v: tensor<1x4x128x32xf32>, %am: tensor<1x1x1x128xf32>,
                     %bm: tensor<128x128xi1>)
    -> (tensor<1x12x128x32xf32>, tensor<1x12x128x32xf32>, tensor<1x12x128x32xf32>) {
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}} {causal = true, scale = 1.250000e-01 : f64} : (tensor<1x12x128x64xf32>, tensor<1x4x128x64xf32>, tensor<1x4x128x32xf32>) -> tensor<1x12x128x32xf32>
  %0 = kiln.attention %q, %k, %v {scale = 0.125 : f64, causal = true}
      : (tensor<1x12x128x64xf32>, tensor<1x4x128x64xf32>, tensor<1x4x128x32xf32>) -> tensor<1x12x128x32xf32>
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<1x12x128x64xf32>, tensor<1x4x128x64xf32>, tensor<1x4x128x32xf32>, tensor<1x1x1x128xf32>) -> tensor<1x12x128x32xf32>
  %1 = kiln.attention %q, %k, %v, %am
      : (tensor<1x12x128x64xf32>, tensor<1x4x128x64xf32>, tensor<1x4x128x32xf32>, tensor<1x1x1x128xf32>) -> tensor<1x12x128x32xf32>
  // CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : ({{.*}}, tensor<128x128xi1>) -> tensor<1x12x128x32xf32>
  %2 = kiln.attention %q, %k, %v, %bm
      : (tensor<1x12x128x64xf32>, tensor<1x4x128x64xf32>, tensor<1x4x128x32xf32>, tensor<128x128xi1>) -> tensor<1x12x128x32xf32>
  return %0, %1, %2 : tensor<1x12x128x32xf32>, tensor<1x12x128x32xf32>, tensor<1x12x128x32xf32>
}
