// kiln-fuse-attention: every supported spelling of attention becomes one
// kiln.attention; candidates that cannot be fused get a remark saying why.
// RUN: kiln-opt %s --split-input-file --kiln-fuse-attention --canonicalize | FileCheck %s
// RUN: kiln-opt %s --split-input-file --kiln-fuse-attention=remarks=true 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK
// RUN: kiln-opt %s --split-input-file --kiln-fuse-attention="min-keys=10 remarks=true" 2>&1 >/dev/null | FileCheck %s --check-prefix=KEPT
// KEPT: remark: fused attention: B=2 H=4 Sq=16 Sk=16
// KEPT: remark: attention kept unfused: 8 keys is below this target's threshold of 10 (min-keys)

// Scale after the matmul (mul), K through transpose_b.
// CHECK-LABEL: func.func @mul_scale
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {scale = 1.250000e-01 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=2 H=4 Sq=16 Sk=16 D=64, scale 1.250000e-01
func.func @mul_scale(%q: tensor<2x4x16x64xf32>, %k: tensor<2x4x16x64xf32>, %v: tensor<2x4x16x64xf32>) -> tensor<2x4x16x64xf32> {
  %c = kiln.constant dense<0.125> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x4x16x64xf32>, tensor<2x4x16x64xf32>) -> tensor<2x4x16x16xf32>
  %1 = kiln.mul %c, %0 : (tensor<f32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %2 = kiln.softmax %1 : tensor<2x4x16x16xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x4x16x16xf32>, tensor<2x4x16x64xf32>) -> tensor<2x4x16x64xf32>
  return %3 : tensor<2x4x16x64xf32>
}

// -----

// Division by sqrt(D), K through an explicit transpose, Dv != D.
// CHECK-LABEL: func.func @div_scale_transposed_k
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {scale = 1.250000e-01 : f64} : (tensor<1x2x8x64xf32>, tensor<1x2x8x64xf32>, tensor<1x2x8x32xf32>) -> tensor<1x2x8x32xf32>
// CHECK-NEXT: return %[[O]]
func.func @div_scale_transposed_k(%q: tensor<1x2x8x64xf32>, %k: tensor<1x2x8x64xf32>, %v: tensor<1x2x8x32xf32>) -> tensor<1x2x8x32xf32> {
  %c = kiln.constant dense<8.0> : tensor<f32>
  %kt = kiln.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x8x64xf32>) -> tensor<1x2x64x8xf32>
  %0 = kiln.matmul %q, %kt : (tensor<1x2x8x64xf32>, tensor<1x2x64x8xf32>) -> tensor<1x2x8x8xf32>
  %1 = kiln.div %0, %c : (tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %2 = kiln.softmax %1 {axis = 3 : i64} : tensor<1x2x8x8xf32>
  %3 = kiln.matmul %2, %v : (tensor<1x2x8x8xf32>, tensor<1x2x8x32xf32>) -> tensor<1x2x8x32xf32>
  return %3 : tensor<1x2x8x32xf32>
}

// -----

// GPT-2 as exported: heads split from [B, S, D] by reshape + transpose, K
// transposed in one go to [B, H, D, S], scale folded into Q before the head
// split and into K, causal mask as where(triangle, scores, float min) on a
// slice of a larger triangular constant (the `bias` buffer).
// CHECK-LABEL: func.func @gpt2_export
// CHECK-DAG: %[[Q:.*]] = kiln.transpose %{{.*}} {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x8xf32>) -> tensor<1x2x4x8xf32>
// CHECK-DAG: %[[K:.*]] = kiln.transpose %{{.*}} {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x8xf32>) -> tensor<1x2x4x8xf32>
// CHECK: kiln.attention %[[Q]], %[[K]], %{{.*}} {causal = true, scale = 2.500000e-01 : f64}
// CHECK-NOT: kiln.softmax
// CHECK-NOT: kiln.where
// REMARK: remark: fused attention: B=1 H=2 Sq=4 Sk=4 D=8, causal, scale 2.500000e-01
func.func @gpt2_export(%x: tensor<1x4x16xf32>, %vh: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %half = kiln.constant dense<0.5> : tensor<f32>
  %fill = kiln.constant dense<-3.40282347E+38> : tensor<f32>
  %tri = kiln.constant dense<[[[[true, false, false, false, false], [true, true, false, false, false], [true, true, true, false, false], [true, true, true, true, false], [true, true, true, true, true]]]]> : tensor<1x1x5x5xi1>
  %causal = kiln.slice %tri {starts = array<i64: 0, 0, 0, 0>, ends = array<i64: 1, 1, 4, 4>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x1x5x5xi1>) -> tensor<1x1x4x4xi1>
  %qs = kiln.mul %x, %half : (tensor<1x4x16xf32>, tensor<f32>) -> tensor<1x4x16xf32>
  %q4 = kiln.reshape %qs {shape = array<i64: 1, 4, 2, 8>} : (tensor<1x4x16xf32>) -> tensor<1x4x2x8xf32>
  %q = kiln.transpose %q4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x8xf32>) -> tensor<1x2x4x8xf32>
  %k4 = kiln.reshape %x {shape = array<i64: 1, 4, 2, 8>} : (tensor<1x4x16xf32>) -> tensor<1x4x2x8xf32>
  %kt = kiln.transpose %k4 {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x4x2x8xf32>) -> tensor<1x2x8x4xf32>
  %kts = kiln.mul %kt, %half : (tensor<1x2x8x4xf32>, tensor<f32>) -> tensor<1x2x8x4xf32>
  %0 = kiln.matmul %q, %kts : (tensor<1x2x4x8xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.where %causal, %0, %fill : (tensor<1x1x4x4xi1>, tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<1x2x4x4xf32>
  %3 = kiln.matmul %2, %vh : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %3 : tensor<1x2x4x8xf32>
}

// -----

// Causal mask from iota comparisons (column <= row), as a boolean `where`
// with -inf; the additive form with 0 / -inf comes from the DSL.
// CHECK-LABEL: func.func @iota_causal
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {causal = true, scale = 1.250000e-01 : f64}
// CHECK-NEXT: return %[[O]]
func.func @iota_causal(%q: tensor<1x2x4x64xf32>, %k: tensor<1x2x4x64xf32>, %v: tensor<1x2x4x64xf32>) -> tensor<1x2x4x64xf32> {
  %rows = kiln.constant dense<[[0], [1], [2], [3]]> : tensor<4x1xi64>
  %cols = kiln.constant dense<[[0, 1, 2, 3]]> : tensor<1x4xi64>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
  %c = kiln.constant dense<0.125> : tensor<f32>
  %keep = kiln.compare %cols, %rows {predicate = "le"} : (tensor<1x4xi64>, tensor<4x1xi64>) -> tensor<4x4xi1>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x4x64xf32>, tensor<1x2x4x64xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.mul %0, %c : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %2 = kiln.where %keep, %1, %ninf : (tensor<4x4xi1>, tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %3 = kiln.softmax %2 : tensor<1x2x4x4xf32>
  %4 = kiln.matmul %3, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x64xf32>) -> tensor<1x2x4x64xf32>
  return %4 : tensor<1x2x4x64xf32>
}

// -----

// The additive causal triangle (0 / -inf), as the DSL writes it.
// CHECK-LABEL: func.func @additive_causal
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {causal = true, scale = 5.000000e-01 : f64}
// CHECK-NEXT: return %[[O]]
func.func @additive_causal(%q: tensor<1x1x3x4xf32>, %k: tensor<1x1x3x4xf32>, %v: tensor<1x1x3x4xf32>) -> tensor<1x1x3x4xf32> {
  %c = kiln.constant dense<0.5> : tensor<f32>
  %m = kiln.constant dense<[[0.0, 0xFF800000, 0xFF800000], [0.0, 0.0, 0xFF800000], [0.0, 0.0, 0.0]]> : tensor<3x3xf32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x1x3x4xf32>, tensor<1x1x3x4xf32>) -> tensor<1x1x3x3xf32>
  %1 = kiln.mul %0, %c : (tensor<1x1x3x3xf32>, tensor<f32>) -> tensor<1x1x3x3xf32>
  %2 = kiln.add %1, %m : (tensor<1x1x3x3xf32>, tensor<3x3xf32>) -> tensor<1x1x3x3xf32>
  %3 = kiln.softmax %2 : tensor<1x1x3x3xf32>
  %4 = kiln.matmul %3, %v : (tensor<1x1x3x3xf32>, tensor<1x1x3x4xf32>) -> tensor<1x1x3x4xf32>
  return %4 : tensor<1x1x3x4xf32>
}

// -----

// An upper triangle is not causal: it stays an additive mask.
// CHECK-LABEL: func.func @anti_causal
// CHECK: kiln.attention %arg0, %arg1, %arg2, %{{.*}} {scale = 1.000000e+00 : f64} : ({{.*}}, tensor<2x2xf32>)
func.func @anti_causal(%q: tensor<1x1x2x4xf32>, %k: tensor<1x1x2x4xf32>, %v: tensor<1x1x2x4xf32>) -> tensor<1x1x2x4xf32> {
  %m = kiln.constant dense<[[0.0, 0.0], [0xFF800000, 0.0]]> : tensor<2x2xf32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x1x2x4xf32>, tensor<1x1x2x4xf32>) -> tensor<1x1x2x2xf32>
  %1 = kiln.add %0, %m : (tensor<1x1x2x2xf32>, tensor<2x2xf32>) -> tensor<1x1x2x2xf32>
  %2 = kiln.softmax %1 : tensor<1x1x2x2xf32>
  %3 = kiln.matmul %2, %v : (tensor<1x1x2x2xf32>, tensor<1x1x2x4xf32>) -> tensor<1x1x2x4xf32>
  return %3 : tensor<1x1x2x4xf32>
}

// -----

// BERT: a padding mask [B, 1, 1, S] added before the scale (it gets the
// scale applied) and a second one added after it.
// CHECK-LABEL: func.func @padding_masks
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x8x16xf32>, %[[K:.*]]: tensor<2x4x8x16xf32>, %[[V:.*]]: tensor<2x4x8x16xf32>, %[[M1:.*]]: tensor<2x1x1x8xf32>, %[[M2:.*]]: tensor<2x1x1x8xf32>)
// CHECK: %[[S:.*]] = kiln.mul %[[M1]], %{{.*}} : (tensor<2x1x1x8xf32>, tensor<f32>)
// CHECK: %[[M:.*]] = kiln.add %[[S]], %[[M2]]
// CHECK: kiln.attention %[[Q]], %[[K]], %[[V]], %[[M]] {scale = 2.500000e-01 : f64}
// REMARK: remark: fused attention: B=2 H=4 Sq=8 Sk=8 D=16, scale 2.500000e-01, additive mask [2, 1, 1, 8]
func.func @padding_masks(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %m1: tensor<2x1x1x8xf32>, %m2: tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x8xf32>
  %1 = kiln.add %m1, %0 : (tensor<2x1x1x8xf32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %2 = kiln.mul %1, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %3 = kiln.add %2, %m2 : (tensor<2x4x8x8xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x8xf32>
  %4 = kiln.softmax %3 : tensor<2x4x8x8xf32>
  %5 = kiln.matmul %4, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %5 : tensor<2x4x8x16xf32>
}

// -----

// A boolean mask where true masks out: where(pad, -inf, scores).
// CHECK-LABEL: func.func @boolean_mask_inverted
// CHECK: %[[KEEP:.*]] = kiln.compare %arg3, %{{.*}} {predicate = "eq"} : (tensor<1x1x1x8xi1>, tensor<i1>) -> tensor<1x1x1x8xi1>
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[KEEP]] {scale = 1.000000e+00 : f64}
func.func @boolean_mask_inverted(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>, %pad: tensor<1x1x1x8xi1>) -> tensor<1x2x8x16xf32> {
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x8xf32>
  %1 = kiln.where %pad, %ninf, %0 : (tensor<1x1x1x8xi1>, tensor<f32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %2 = kiln.softmax %1 : tensor<1x2x8x8xf32>
  %3 = kiln.matmul %2, %v : (tensor<1x2x8x8xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return %3 : tensor<1x2x8x16xf32>
}

// -----

// Mixed precision: f16 scores cast to f32 for the softmax and back.
// CHECK-LABEL: func.func @casts_around_softmax
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {scale = 1.250000e-01 : f64} : (tensor<1x2x8x64xf16>, tensor<1x2x8x64xf16>, tensor<1x2x8x64xf16>) -> tensor<1x2x8x64xf16>
// CHECK-NEXT: return %[[O]]
func.func @casts_around_softmax(%q: tensor<1x2x8x64xf16>, %k: tensor<1x2x8x64xf16>, %v: tensor<1x2x8x64xf16>) -> tensor<1x2x8x64xf16> {
  %c = kiln.constant dense<0.125> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x8x64xf16>, tensor<1x2x8x64xf16>) -> tensor<1x2x8x8xf16>
  %1 = kiln.cast %0 {dtype = f32} : (tensor<1x2x8x8xf16>) -> tensor<1x2x8x8xf32>
  %2 = kiln.mul %1, %c : (tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %3 = kiln.softmax %2 : tensor<1x2x8x8xf32>
  %4 = kiln.cast %3 {dtype = f16} : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf16>
  %5 = kiln.matmul %4, %v : (tensor<1x2x8x8xf16>, tensor<1x2x8x64xf16>) -> tensor<1x2x8x64xf16>
  return %5 : tensor<1x2x8x64xf16>
}

// -----

// Grouped-query attention: 2 key/value heads repeated to 6 with
// reshape -> broadcast_to -> reshape (PyTorch's repeat_kv).
// CHECK-LABEL: func.func @grouped_query
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {causal = true, scale = 1.250000e-01 : f64} : (tensor<1x6x4x64xf32>, tensor<1x2x4x64xf32>, tensor<1x2x4x64xf32>) -> tensor<1x6x4x64xf32>
// REMARK: remark: fused attention: B=1 H=6 (kv heads 2) Sq=4 Sk=4 D=64, causal
func.func @grouped_query(%q: tensor<1x6x4x64xf32>, %k: tensor<1x2x4x64xf32>, %v: tensor<1x2x4x64xf32>) -> tensor<1x6x4x64xf32> {
  %c = kiln.constant dense<0.125> : tensor<f32>
  %m = kiln.constant dense<[[0.0, -1.0e+09, -1.0e+09, -1.0e+09], [0.0, 0.0, -1.0e+09, -1.0e+09], [0.0, 0.0, 0.0, -1.0e+09], [0.0, 0.0, 0.0, 0.0]]> : tensor<4x4xf32>
  %k5 = kiln.reshape %k {shape = array<i64: 1, 2, 1, 4, 64>} : (tensor<1x2x4x64xf32>) -> tensor<1x2x1x4x64xf32>
  %kb = kiln.broadcast_to %k5 {shape = array<i64: 1, 2, 3, 4, 64>} : (tensor<1x2x1x4x64xf32>) -> tensor<1x2x3x4x64xf32>
  %kr = kiln.reshape %kb {shape = array<i64: 1, 6, 4, 64>} : (tensor<1x2x3x4x64xf32>) -> tensor<1x6x4x64xf32>
  %v5 = kiln.reshape %v {shape = array<i64: 1, 2, 1, 4, 64>} : (tensor<1x2x4x64xf32>) -> tensor<1x2x1x4x64xf32>
  %vb = kiln.broadcast_to %v5 {shape = array<i64: 1, 2, 3, 4, 64>} : (tensor<1x2x1x4x64xf32>) -> tensor<1x2x3x4x64xf32>
  %vr = kiln.reshape %vb {shape = array<i64: 1, 6, 4, 64>} : (tensor<1x2x3x4x64xf32>) -> tensor<1x6x4x64xf32>
  %0 = kiln.matmul %q, %kr {transpose_b = true} : (tensor<1x6x4x64xf32>, tensor<1x6x4x64xf32>) -> tensor<1x6x4x4xf32>
  %1 = kiln.mul %0, %c : (tensor<1x6x4x4xf32>, tensor<f32>) -> tensor<1x6x4x4xf32>
  %2 = kiln.add %1, %m : (tensor<1x6x4x4xf32>, tensor<4x4xf32>) -> tensor<1x6x4x4xf32>
  %3 = kiln.softmax %2 : tensor<1x6x4x4xf32>
  %4 = kiln.matmul %3, %vr : (tensor<1x6x4x4xf32>, tensor<1x6x4x64xf32>) -> tensor<1x6x4x64xf32>
  return %4 : tensor<1x6x4x64xf32>
}

// -----

// repeat_kv's K as PyTorch's dynamo exporter writes it for
// scaled_dot_product_attention: the repeated heads merged into the batch,
// [B*H, S, D] transposed to [B*H, D, S], then split into [B, H, D, S]. The
// transpose is part of the head-repeat chain: K keeps its 2 heads.
// CHECK-LABEL: func.func @grouped_query_transposed
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {scale = 1.250000e-01 : f64} : (tensor<1x6x4x64xf32>, tensor<1x2x4x64xf32>, tensor<1x2x4x64xf32>) -> tensor<1x6x4x64xf32>
// REMARK: remark: fused attention: B=1 H=6 (kv heads 2) Sq=4 Sk=4 D=64, scale 1.250000e-01
func.func @grouped_query_transposed(%q: tensor<1x6x4x64xf32>, %k: tensor<1x2x4x64xf32>, %v: tensor<1x2x4x64xf32>) -> tensor<1x6x4x64xf32> {
  %c = kiln.constant dense<0.125> : tensor<f32>
  %k5 = kiln.reshape %k {shape = array<i64: 1, 2, 1, 4, 64>} : (tensor<1x2x4x64xf32>) -> tensor<1x2x1x4x64xf32>
  %kb = kiln.broadcast_to %k5 {shape = array<i64: 1, 2, 3, 4, 64>} : (tensor<1x2x1x4x64xf32>) -> tensor<1x2x3x4x64xf32>
  %k3 = kiln.reshape %kb {shape = array<i64: 6, 4, 64>} : (tensor<1x2x3x4x64xf32>) -> tensor<6x4x64xf32>
  %kt = kiln.transpose %k3 {perm = array<i64: 0, 2, 1>} : (tensor<6x4x64xf32>) -> tensor<6x64x4xf32>
  %kr = kiln.reshape %kt {shape = array<i64: 1, 6, 64, 4>} : (tensor<6x64x4xf32>) -> tensor<1x6x64x4xf32>
  %v5 = kiln.reshape %v {shape = array<i64: 1, 2, 1, 4, 64>} : (tensor<1x2x4x64xf32>) -> tensor<1x2x1x4x64xf32>
  %vb = kiln.broadcast_to %v5 {shape = array<i64: 1, 2, 3, 4, 64>} : (tensor<1x2x1x4x64xf32>) -> tensor<1x2x3x4x64xf32>
  %vr = kiln.reshape %vb {shape = array<i64: 1, 6, 4, 64>} : (tensor<1x2x3x4x64xf32>) -> tensor<1x6x4x64xf32>
  %0 = kiln.matmul %q, %kr : (tensor<1x6x4x64xf32>, tensor<1x6x64x4xf32>) -> tensor<1x6x4x4xf32>
  %1 = kiln.mul %0, %c : (tensor<1x6x4x4xf32>, tensor<f32>) -> tensor<1x6x4x4xf32>
  %2 = kiln.softmax %1 : tensor<1x6x4x4xf32>
  %3 = kiln.matmul %2, %vr : (tensor<1x6x4x4xf32>, tensor<1x6x4x64xf32>) -> tensor<1x6x4x64xf32>
  return %3 : tensor<1x6x4x64xf32>
}

// -----

// Heads flattened into the batch ([B*H, S, D], torch.bmm style): unit batch
// in front, and the result reshaped back.
// CHECK-LABEL: func.func @rank3
// CHECK: %[[Q:.*]] = kiln.reshape %arg0 {shape = array<i64: 1, 8, 5, 16>}
// CHECK: %[[O:.*]] = kiln.attention %[[Q]], %{{.*}}, %{{.*}} {scale = 2.500000e-01 : f64}
// CHECK: kiln.reshape %[[O]] {shape = array<i64: 8, 5, 16>}
func.func @rank3(%q: tensor<8x5x16xf32>, %k: tensor<8x5x16xf32>, %v: tensor<8x5x16xf32>) -> tensor<8x5x16xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %qs = kiln.mul %q, %c : (tensor<8x5x16xf32>, tensor<f32>) -> tensor<8x5x16xf32>
  %0 = kiln.matmul %qs, %k {transpose_b = true} : (tensor<8x5x16xf32>, tensor<8x5x16xf32>) -> tensor<8x5x5xf32>
  %1 = kiln.softmax %0 : tensor<8x5x5xf32>
  %2 = kiln.matmul %1, %v : (tensor<8x5x5xf32>, tensor<8x5x16xf32>) -> tensor<8x5x16xf32>
  return %2 : tensor<8x5x16xf32>
}

// -----

// Not fused: the attention probabilities are also returned.
// CHECK-LABEL: func.func @probs_returned
// CHECK: kiln.softmax
// CHECK-NOT: kiln.attention
// REMARK: remark: attention not fused: the attention probabilities are also used elsewhere
func.func @probs_returned(%q: tensor<1x1x4x8xf32>, %k: tensor<1x1x4x8xf32>, %v: tensor<1x1x4x8xf32>) -> (tensor<1x1x4x8xf32>, tensor<1x1x4x4xf32>) {
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x4xf32>
  %1 = kiln.softmax %0 : tensor<1x1x4x4xf32>
  %2 = kiln.matmul %1, %v : (tensor<1x1x4x4xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x8xf32>
  return %2, %1 : tensor<1x1x4x8xf32>, tensor<1x1x4x4xf32>
}

// -----

// Not fused: a where whose fill does not mask out, a scale that differs
// between queries and between keys, and a tanh after the mask
// (soft-capping is fused before it).
// CHECK-LABEL: func.func @not_masks
// CHECK-NOT: kiln.attention
// REMARK: remark: attention not fused: the where's fill value 0.000000 does not mask out (expected -inf or <= -1e4)
// REMARK: remark: attention not fused: 'kiln.mul' scales the scores by a value that varies along both the queries and the keys (only a splat constant, a factor per query or head, or one per key is fused)
// REMARK: remark: attention not fused: 'kiln.tanh' is applied after a mask (only soft-capping before the mask is fused)
func.func @not_masks(%q: tensor<1x1x4x8xf32>, %k: tensor<1x1x4x8xf32>, %v: tensor<1x1x4x8xf32>, %c: tensor<4x4xi1>, %t: tensor<4xf32>, %f: tensor<4x4xf32>) -> (tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) {
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x4xf32>
  %1 = kiln.where %c, %0, %zero : (tensor<4x4xi1>, tensor<1x1x4x4xf32>, tensor<f32>) -> tensor<1x1x4x4xf32>
  %2 = kiln.softmax %1 : tensor<1x1x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<1x1x4x4xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x8xf32>
  %4 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x4xf32>
  %5 = kiln.mul %4, %f : (tensor<1x1x4x4xf32>, tensor<4x4xf32>) -> tensor<1x1x4x4xf32>
  %6 = kiln.softmax %5 : tensor<1x1x4x4xf32>
  %7 = kiln.matmul %6, %v : (tensor<1x1x4x4xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x8xf32>
  %8 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x4xf32>
  %m = kiln.add %8, %t : (tensor<1x1x4x4xf32>, tensor<4xf32>) -> tensor<1x1x4x4xf32>
  %9 = kiln.tanh %m : tensor<1x1x4x4xf32>
  %10 = kiln.softmax %9 : tensor<1x1x4x4xf32>
  %11 = kiln.matmul %10, %v : (tensor<1x1x4x4xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x8xf32>
  return %3, %7, %11 : tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>
}

// -----

// Gemma 2's soft-capping before the mask: (s * scale) / cap -> tanh -> *
// cap becomes softcap = cap with the scale unchanged (scale * cap / cap).
// CHECK-LABEL: func.func @softcap
// CHECK: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2, %arg3 {scale = 2.500000e-01 : f64, softcap = 5.000000e+01 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=1 H=2 Sq=4 Sk=4 D=16, scale 2.500000e-01, softcap 5.000000e+01, additive mask [1, 1, 1, 4]
func.func @softcap(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x4x16xf32>, %v: tensor<1x2x4x16xf32>, %m: tensor<1x1x1x4xf32>) -> tensor<1x2x4x16xf32> {
  %s = kiln.constant dense<0.25> : tensor<f32>
  %cap = kiln.constant dense<50.0> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.mul %0, %s : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %2 = kiln.div %1, %cap : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %3 = kiln.tanh %2 : tensor<1x2x4x4xf32>
  %4 = kiln.mul %3, %cap : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %5 = kiln.add %4, %m : (tensor<1x2x4x4xf32>, tensor<1x1x1x4xf32>) -> tensor<1x2x4x4xf32>
  %6 = kiln.softmax %5 : tensor<1x2x4x4xf32>
  %7 = kiln.matmul %6, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32>
  return %7 : tensor<1x2x4x16xf32>
}

// -----

// PyTorch's exported scaled_dot_product_attention: scale split as sqrt(s)
// on Q and on K^T, a boolean mask turned additive, and the NaN guard
// where(p != p, 0, p) after the softmax (kiln.attention already yields
// zeros for fully masked rows).
// CHECK-LABEL: func.func @sdpa_export
// REMARK: remark: fused attention: B=1 H=2 Sq=4 Sk=4 D=16, scale 2.500000e-01, additive mask [1, 1, 1, 4]
// CHECK: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2, %{{.*}} {scale = 2.500000e-01 : f64}
// CHECK-NOT: kiln.compare
// CHECK: return %[[O]]
func.func @sdpa_export(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x4x16xf32>, %v: tensor<1x2x4x16xf32>, %m: tensor<1x1x1x4xi1>) -> tensor<1x2x4x16xf32> {
  %s = kiln.constant dense<0.5> : tensor<1xf32>
  %zero = kiln.constant dense<0.0> : tensor<1xf32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<1xf32>
  %add = kiln.where %m, %zero, %ninf : (tensor<1x1x1x4xi1>, tensor<1xf32>, tensor<1xf32>) -> tensor<1x1x1x4xf32>
  %qs = kiln.mul %q, %s : (tensor<1x2x4x16xf32>, tensor<1xf32>) -> tensor<1x2x4x16xf32>
  %kt = kiln.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x16xf32>) -> tensor<1x2x16x4xf32>
  %ks = kiln.mul %kt, %s : (tensor<1x2x16x4xf32>, tensor<1xf32>) -> tensor<1x2x16x4xf32>
  %0 = kiln.matmul %qs, %ks : (tensor<1x2x4x16xf32>, tensor<1x2x16x4xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.add %0, %add : (tensor<1x2x4x4xf32>, tensor<1x1x1x4xf32>) -> tensor<1x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<1x2x4x4xf32>
  %nan = kiln.compare %2, %2 {predicate = "ne"} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xi1>
  %3 = kiln.where %nan, %zero, %2 : (tensor<1x2x4x4xi1>, tensor<1xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %4 = kiln.matmul %3, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32>
  return %4 : tensor<1x2x4x16xf32>
}

// -----

// masked_fill(triu(ones, 1) == 1, -inf) (true masks out) is causal too;
// multi-query attention: one key/value head broadcast by the matmuls.
// CHECK-LABEL: func.func @masked_fill_multi_query
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {causal = true, scale = 1.000000e+00 : f64} : (tensor<1x4x3x8xf32>, tensor<1x1x3x8xf32>, tensor<1x1x3x8xf32>) -> tensor<1x4x3x8xf32>
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=1 H=4 (kv heads 1) Sq=3 Sk=3 D=8, causal, scale 1.000000e+00
func.func @masked_fill_multi_query(%q: tensor<1x4x3x8xf32>, %k: tensor<1x1x3x8xf32>, %v: tensor<1x1x3x8xf32>) -> tensor<1x4x3x8xf32> {
  %ones = kiln.constant dense<[[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]> : tensor<3x3xf32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
  %upper = kiln.compare %ones, %one {predicate = "eq"} : (tensor<3x3xf32>, tensor<f32>) -> tensor<3x3xi1>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x4x3x8xf32>, tensor<1x1x3x8xf32>) -> tensor<1x4x3x3xf32>
  %1 = kiln.where %upper, %ninf, %0 : (tensor<3x3xi1>, tensor<f32>, tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %2 = kiln.softmax %1 : tensor<1x4x3x3xf32>
  %3 = kiln.matmul %2, %v : (tensor<1x4x3x3xf32>, tensor<1x1x3x8xf32>) -> tensor<1x4x3x8xf32>
  return %3 : tensor<1x4x3x8xf32>
}

// -----

// Bloom: heads folded into the batch ([B*H, S, D]), the ALiBi bias [B*H, 1,
// S] added by baddbmm, the scores viewed as [B, H, S, S] for the mask and
// softmax, the probabilities viewed back for bmm with V. Q, K, V and the
// bias are regrouped to [B, H, ...] (the bias without broadcasting it).
// CHECK-LABEL: func.func @regrouped_heads_alibi
// CHECK-DAG: %[[Q:.*]] = kiln.reshape %arg0 {shape = array<i64: 2, 4, 8, 16>}
// CHECK-DAG: %[[K:.*]] = kiln.reshape %arg1 {shape = array<i64: 2, 4, 8, 16>}
// CHECK-DAG: %[[V:.*]] = kiln.reshape %arg2 {shape = array<i64: 2, 4, 8, 16>}
// CHECK-DAG: %[[M:.*]] = kiln.reshape %arg3 {shape = array<i64: 2, 4, 1, 8>}
// CHECK: kiln.attention %[[Q]], %[[K]], %[[V]], %[[M]] {causal = true, scale = 2.500000e-01 : f64}
// CHECK-NOT: kiln.softmax
// CHECK-NOT: kiln.broadcast_to
// REMARK: remark: fused attention: B=2 H=4 Sq=8 Sk=8 D=16, causal, scale 2.500000e-01, additive mask [2, 4, 1, 8]
func.func @regrouped_heads_alibi(%q: tensor<8x8x16xf32>, %k: tensor<8x8x16xf32>, %v: tensor<8x8x16xf32>, %alibi: tensor<8x1x8xf32>) -> tensor<8x8x16xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %tri = kiln.constant dense<[[false, true, true, true, true, true, true, true], [false, false, true, true, true, true, true, true], [false, false, false, true, true, true, true, true], [false, false, false, false, true, true, true, true], [false, false, false, false, false, true, true, true], [false, false, false, false, false, false, true, true], [false, false, false, false, false, false, false, true], [false, false, false, false, false, false, false, false]]> : tensor<8x8xi1>
  %fill = kiln.constant dense<-3.40282347E+38> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<8x8x16xf32>, tensor<8x8x16xf32>) -> tensor<8x8x8xf32>
  %1 = kiln.mul %0, %c : (tensor<8x8x8xf32>, tensor<f32>) -> tensor<8x8x8xf32>
  %2 = kiln.add %1, %alibi : (tensor<8x8x8xf32>, tensor<8x1x8xf32>) -> tensor<8x8x8xf32>
  %3 = kiln.reshape %2 {shape = array<i64: 2, 4, 8, 8>} : (tensor<8x8x8xf32>) -> tensor<2x4x8x8xf32>
  %4 = kiln.where %tri, %fill, %3 : (tensor<8x8xi1>, tensor<f32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %5 = kiln.softmax %4 : tensor<2x4x8x8xf32>
  %6 = kiln.reshape %5 {shape = array<i64: 8, 8, 8>} : (tensor<2x4x8x8xf32>) -> tensor<8x8x8xf32>
  %7 = kiln.matmul %6, %v : (tensor<8x8x8xf32>, tensor<8x8x16xf32>) -> tensor<8x8x16xf32>
  return %7 : tensor<8x8x16xf32>
}

// -----

// Through a regrouping reshape Q may not broadcast over the matmul's batch
// dims (it could not be regrouped the same way).
// CHECK-LABEL: func.func @regrouped_broadcast_q
// CHECK: kiln.softmax
// REMARK: remark: attention not fused: the scores are reshaped between the matmul and the softmax, and q or k broadcasts over the matmul's batch dims
func.func @regrouped_broadcast_q(%q: tensor<1x8x16xf32>, %k: tensor<8x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x8x16xf32>, tensor<8x8x16xf32>) -> tensor<8x8x8xf32>
  %1 = kiln.reshape %0 {shape = array<i64: 2, 4, 8, 8>} : (tensor<8x8x8xf32>) -> tensor<2x4x8x8xf32>
  %2 = kiln.softmax %1 : tensor<2x4x8x8xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %3 : tensor<2x4x8x16xf32>
}

// -----

// A causal triangle (-inf above the diagonal) and a padding mask summed
// into one additive mask: the triangle becomes causal = true, the padding
// mask stays the mask operand.
// CHECK-LABEL: func.func @causal_plus_padding
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2, %arg3 {causal = true, scale = 1.000000e+00 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, causal, scale 1.000000e+00, additive mask [2, 1, 1, 4]
func.func @causal_plus_padding(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %pad: tensor<2x1x1x4xf32>) -> tensor<2x2x4x8xf32> {
  %tri = kiln.constant dense<[[0.0, 0xFF800000, 0xFF800000, 0xFF800000], [0.0, 0.0, 0xFF800000, 0xFF800000], [0.0, 0.0, 0.0, 0xFF800000], [0.0, 0.0, 0.0, 0.0]]> : tensor<4x4xf32>
  %m = kiln.add %tri, %pad : (tensor<4x4xf32>, tensor<2x1x1x4xf32>) -> tensor<2x1x4x4xf32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.add %0, %m : (tensor<2x2x4x4xf32>, tensor<2x1x4x4xf32>) -> tensor<2x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<2x2x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %3 : tensor<2x2x4x8xf32>
}

// -----

// LLaMA-style 4-D mask: the causal triangle expanded to [B, 1, S, S] (a
// constant after import), masked_fill'ed with the float minimum where the
// padding mask is 0. With finite fills a row every key of which is masked
// (a padded query of a left-padded batch) averages V in the unfused ops,
// where a causal flag would make it zeros: the mask stays whole, additive,
// with the causal_in_mask hint (the kernel skips the keys above the
// diagonal where they weigh 0).
// CHECK-LABEL: func.func @causal_masked_fill_padding
// CHECK: %[[M:.*]] = kiln.where %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x1x1x4xi1>, tensor<f32>, tensor<2x1x4x4xf32>) -> tensor<2x1x4x4xf32>
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[M]] {causal_in_mask = true, scale = 2.500000e-01 : f64}
// CHECK-NOT: kiln.softmax
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, causal in mask (keys above the diagonal skipped where they weigh 0), scale 2.500000e-01, additive mask [2, 1, 4, 4]
func.func @causal_masked_fill_padding(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %attn: tensor<2x1x1x4xf32>) -> tensor<2x2x4x8xf32> {
  %tri = kiln.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0]]], [[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0]]]]> : tensor<2x1x4x4xf32>
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %fill = kiln.constant dense<-3.40282347E+38> : tensor<f32>
  %c = kiln.constant dense<0.25> : tensor<f32>
  %isPad = kiln.compare %attn, %zero {predicate = "eq"} : (tensor<2x1x1x4xf32>, tensor<f32>) -> tensor<2x1x1x4xi1>
  %m = kiln.where %isPad, %fill, %tri : (tensor<2x1x1x4xi1>, tensor<f32>, tensor<2x1x4x4xf32>) -> tensor<2x1x4x4xf32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.mul %0, %c : (tensor<2x2x4x4xf32>, tensor<f32>) -> tensor<2x2x4x4xf32>
  %2 = kiln.add %1, %m : (tensor<2x2x4x4xf32>, tensor<2x1x4x4xf32>) -> tensor<2x2x4x4xf32>
  %3 = kiln.softmax %2 : tensor<2x2x4x4xf32>
  %4 = kiln.matmul %3, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %4 : tensor<2x2x4x8xf32>
}

// -----

// HF BART's decoder mask, all constants: where(true, tril, false) and an
// all-true padding mask, selected into 0 / float minimum. The parts that
// keep every key mask nothing: what is left is the causal flag.
// CHECK-LABEL: func.func @causal_and_all_true
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {causal = true, scale = 1.000000e+00 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, causal, scale 1.000000e+00
func.func @causal_and_all_true(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32> {
  %tri = kiln.constant dense<[[true, false, false, false], [true, true, false, false], [true, true, true, false], [true, true, true, true]]> : tensor<4x4xi1>
  %true = kiln.constant dense<true> : tensor<i1>
  %false = kiln.constant dense<false> : tensor<i1>
  %pad = kiln.constant dense<true> : tensor<2x1x1x4xi1>
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %fill = kiln.constant dense<-3.40282347E+38> : tensor<f32>
  %c0 = kiln.where %true, %tri, %false : (tensor<i1>, tensor<4x4xi1>, tensor<i1>) -> tensor<4x4xi1>
  %c1 = kiln.where %c0, %pad, %false : (tensor<4x4xi1>, tensor<2x1x1x4xi1>, tensor<i1>) -> tensor<2x1x4x4xi1>
  %m = kiln.where %c1, %zero, %fill : (tensor<2x1x4x4xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x4x4xf32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.add %0, %m : (tensor<2x2x4x4xf32>, tensor<2x1x4x4xf32>) -> tensor<2x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<2x2x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %3 : tensor<2x2x4x8xf32>
}

// -----

// masked_fill(~(tril & pad), -inf): not(and(causal, pad)) splits into the
// causal flag and the padding condition (true keeps).
// CHECK-LABEL: func.func @causal_and_padding
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2, %arg3 {causal = true, scale = 1.000000e+00 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, causal, scale 1.000000e+00, boolean mask [2, 1, 1, 4]
func.func @causal_and_padding(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %pad: tensor<2x1x1x4xi1>) -> tensor<2x2x4x8xf32> {
  %tri = kiln.constant dense<[[true, false, false, false], [true, true, false, false], [true, true, true, false], [true, true, true, true]]> : tensor<4x4xi1>
  %false = kiln.constant dense<false> : tensor<i1>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
  %keep = kiln.where %tri, %pad, %false : (tensor<4x4xi1>, tensor<2x1x1x4xi1>, tensor<i1>) -> tensor<2x1x4x4xi1>
  %masked = kiln.compare %keep, %false {predicate = "eq"} : (tensor<2x1x4x4xi1>, tensor<i1>) -> tensor<2x1x4x4xi1>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.where %masked, %ninf, %0 : (tensor<2x1x4x4xi1>, tensor<f32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<2x2x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %3 : tensor<2x2x4x8xf32>
}

// -----

// Bloom-style triu | pad (true masks out) with the float minimum, which
// absorbs any score: the where stays whole as an additive mask that selects
// the fill (a padded query row then averages V, as unfused), with the
// causal_in_mask hint for its causal part.
// CHECK-LABEL: func.func @causal_or_padding
// CHECK: %[[M:.*]] = kiln.where %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x1x4x4xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x4x4xf32>
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[M]] {causal_in_mask = true, scale = 1.000000e+00 : f64}
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, causal in mask (keys above the diagonal skipped where they weigh 0), scale 1.000000e+00, additive mask [2, 1, 4, 4]
func.func @causal_or_padding(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %pad: tensor<2x1x1x4xi1>) -> tensor<2x2x4x8xf32> {
  %triu = kiln.constant dense<[[false, true, true, true], [false, false, true, true], [false, false, false, true], [false, false, false, false]]> : tensor<4x4xi1>
  %true = kiln.constant dense<true> : tensor<i1>
  %fill = kiln.constant dense<-3.40282347E+38> : tensor<f32>
  %masked = kiln.where %triu, %true, %pad : (tensor<4x4xi1>, tensor<i1>, tensor<2x1x1x4xi1>) -> tensor<2x1x4x4xi1>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.where %masked, %fill, %0 : (tensor<2x1x4x4xi1>, tensor<f32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<2x2x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %3 : tensor<2x2x4x8xf32>
}

// -----

// A sliding window (Mistral, Gemma 2's local layers as the dynamo exporter
// folds them): the band of the last 2 keys up to the diagonal, and padding,
// as HF's float-minimum mask. Not causal, but it masks every key above the
// diagonal: the whole mask gets the causal_in_mask hint.
// CHECK-LABEL: func.func @sliding_window_and_padding
// CHECK: %[[M:.*]] = kiln.where %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x1x4x4xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x4x4xf32>
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[M]] {causal_in_mask = true, scale = 1.000000e+00 : f64}
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, causal in mask (keys above the diagonal skipped where they weigh 0), scale 1.000000e+00, additive mask [2, 1, 4, 4]
func.func @sliding_window_and_padding(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %pad: tensor<2x1x1x4xi1>) -> tensor<2x2x4x8xf32> {
  %band = kiln.constant dense<[[[[true, false, false, false], [true, true, false, false], [false, true, true, false], [false, false, true, true]]]]> : tensor<1x1x4x4xi1>
  %false = kiln.constant dense<false> : tensor<i1>
  %zero = kiln.constant dense<0.0> : tensor<f32>
  %fill = kiln.constant dense<-3.40282347E+38> : tensor<f32>
  %keep = kiln.where %band, %pad, %false : (tensor<1x1x4x4xi1>, tensor<2x1x1x4xi1>, tensor<i1>) -> tensor<2x1x4x4xi1>
  %m = kiln.where %keep, %zero, %fill : (tensor<2x1x4x4xi1>, tensor<f32>, tensor<f32>) -> tensor<2x1x4x4xf32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.add %0, %m : (tensor<2x2x4x4xf32>, tensor<2x1x4x4xf32>) -> tensor<2x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<2x2x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %3 : tensor<2x2x4x8xf32>
}

// -----

// nn.MultiheadAttention with a causal attn_mask and a key padding mask: the
// two (-inf fills) are summed on [B*H, S, S] and the sum viewed as
// [B, H, S, S]. The triangle becomes causal; the padding part is regrouped
// as it is.
// CHECK-LABEL: func.func @summed_masks_regrouped
// CHECK: %[[M:.*]] = kiln.reshape %arg3 {shape = array<i64: 2, 2, 1, 4>} : (tensor<4x1x4xf32>) -> tensor<2x2x1x4xf32>
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[M]] {causal = true, scale = 1.000000e+00 : f64}
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, causal, scale 1.000000e+00, additive mask [2, 2, 1, 4]
func.func @summed_masks_regrouped(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %pad: tensor<4x1x4xf32>) -> tensor<2x2x4x8xf32> {
  %tri = kiln.constant dense<[[[0.0, 0xFF800000, 0xFF800000, 0xFF800000], [0.0, 0.0, 0xFF800000, 0xFF800000], [0.0, 0.0, 0.0, 0xFF800000], [0.0, 0.0, 0.0, 0.0]]]> : tensor<1x4x4xf32>
  %sum = kiln.add %tri, %pad : (tensor<1x4x4xf32>, tensor<4x1x4xf32>) -> tensor<4x4x4xf32>
  %m = kiln.reshape %sum {shape = array<i64: 2, 2, 4, 4>} : (tensor<4x4x4xf32>) -> tensor<2x2x4x4xf32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.add %0, %m : (tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<2x2x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %3 : tensor<2x2x4x8xf32>
}

// -----

// A combination without a causal part (a sliding window and padding) is
// kept as the one mask it was.
// CHECK-LABEL: func.func @window_and_padding
// CHECK: %[[KEEP:.*]] = kiln.where %{{.*}}, %arg3, %{{.*}} : (tensor<4x4xi1>, tensor<2x1x1x4xi1>, tensor<i1>) -> tensor<2x1x4x4xi1>
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[KEEP]] {scale = 1.000000e+00 : f64}
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, scale 1.000000e+00, boolean mask [2, 1, 4, 4]
func.func @window_and_padding(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %pad: tensor<2x1x1x4xi1>) -> tensor<2x2x4x8xf32> {
  %window = kiln.constant dense<[[true, false, false, false], [true, true, false, false], [false, true, true, false], [false, false, true, true]]> : tensor<4x4xi1>
  %false = kiln.constant dense<false> : tensor<i1>
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
  %keep = kiln.where %window, %pad, %false : (tensor<4x4xi1>, tensor<2x1x1x4xi1>, tensor<i1>) -> tensor<2x1x4x4xi1>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.where %keep, %0, %ninf : (tensor<2x1x4x4xi1>, tensor<2x2x4x4xf32>, tensor<f32>) -> tensor<2x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<2x2x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %3 : tensor<2x2x4x8xf32>
}

// -----

// GPT-NeoX: baddbmm on zeros adds a mask of zeros, which is dropped; the
// mask subtracted after it (scores - m) is added negated.
// CHECK-LABEL: func.func @zeros_and_subtracted_mask
// CHECK: %[[NEG:.*]] = kiln.neg %arg3 : tensor<2x1x1x4xf32>
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[NEG]] {scale = 2.500000e-01 : f64}
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, scale 2.500000e-01, additive mask [2, 1, 1, 4]
func.func @zeros_and_subtracted_mask(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %m: tensor<2x1x1x4xf32>) -> tensor<2x2x4x8xf32> {
  %zeros = kiln.constant dense<0.0> : tensor<2x2x4x4xf32>
  %c = kiln.constant dense<0.25> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.mul %0, %c : (tensor<2x2x4x4xf32>, tensor<f32>) -> tensor<2x2x4x4xf32>
  %2 = kiln.add %zeros, %1 : (tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %3 = kiln.sub %2, %m : (tensor<2x2x4x4xf32>, tensor<2x1x1x4xf32>) -> tensor<2x2x4x4xf32>
  %4 = kiln.softmax %3 : tensor<2x2x4x4xf32>
  %5 = kiln.matmul %4, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %5 : tensor<2x2x4x8xf32>
}

// -----

// A mask subtracted from its own scores' matmul side is not a mask:
// m - scores negates the scores.
// CHECK-LABEL: func.func @scores_subtracted
// CHECK: kiln.softmax
// REMARK: remark: attention not fused: 'kiln.sub' between the matmul and the softmax does not subtract a mask from the scores
func.func @scores_subtracted(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %m: tensor<1x1x1x4xf32>) -> tensor<1x2x4x8xf32> {
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.sub %m, %0 : (tensor<1x1x1x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<1x2x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %3 : tensor<1x2x4x8xf32>
}

// -----

// DeBERTa-style: a second matmul (q p^T, a relative-position term) added to
// q k^T. The left one is the scores, the other an additive bias (scaled
// like the scores).
// CHECK-LABEL: func.func @relative_position_term
// CHECK: %[[R:.*]] = kiln.matmul %arg0, %arg3 {transpose_b = true} : (tensor<1x2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<1x2x4x4xf32>
// CHECK: %[[M:.*]] = kiln.mul %[[R]], %{{.*}}
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[M]] {scale = 2.500000e-01 : f64}
// REMARK: remark: fused attention: B=1 H=2 Sq=4 Sk=4 D=8, scale 2.500000e-01, additive mask [1, 2, 4, 4]
func.func @relative_position_term(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %p: tensor<2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %c = kiln.constant dense<4.0> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.matmul %q, %p {transpose_b = true} : (tensor<1x2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<1x2x4x4xf32>
  %2 = kiln.add %0, %1 : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %3 = kiln.div %2, %c : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %4 = kiln.softmax %3 : tensor<1x2x4x4xf32>
  %5 = kiln.matmul %4, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %5 : tensor<1x2x4x8xf32>
}

// -----

// Softmax written out, exp(x - max(x)) / sum(exp(x - max(x))), between the
// matmuls is softmax(x).
// CHECK-LABEL: func.func @written_out_softmax
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {scale = 1.250000e-01 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=1 H=2 Sq=4 Sk=4 D=8, scale 1.250000e-01
func.func @written_out_softmax(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32> {
  %c = kiln.constant dense<0.125> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.mul %0, %c : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %max = kiln.reduce_max %1 {axes = array<i64: -1>, keepdims = true} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x1xf32>
  %2 = kiln.sub %1, %max : (tensor<1x2x4x4xf32>, tensor<1x2x4x1xf32>) -> tensor<1x2x4x4xf32>
  %3 = kiln.exp %2 : tensor<1x2x4x4xf32>
  %sum = kiln.reduce_sum %3 {axes = array<i64: 3>, keepdims = true} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x1xf32>
  %4 = kiln.div %3, %sum : (tensor<1x2x4x4xf32>, tensor<1x2x4x1xf32>) -> tensor<1x2x4x4xf32>
  %5 = kiln.matmul %4, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %5 : tensor<1x2x4x8xf32>
}

// -----

// Multi-query attention with the one key/value head expanded to every head
// (k.expand): attention reads the one head.
// CHECK-LABEL: func.func @multi_query_expanded
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {scale = 1.000000e+00 : f64} : (tensor<1x4x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<1x4x4x8xf32>
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=1 H=4 (kv heads 1) Sq=4 Sk=4 D=8, scale 1.000000e+00
func.func @multi_query_expanded(%q: tensor<1x4x4x8xf32>, %k: tensor<1x1x4x8xf32>, %v: tensor<1x1x4x8xf32>) -> tensor<1x4x4x8xf32> {
  %ke = kiln.broadcast_to %k {shape = array<i64: 1, 4, 4, 8>} : (tensor<1x1x4x8xf32>) -> tensor<1x4x4x8xf32>
  %ve = kiln.broadcast_to %v {shape = array<i64: 1, 4, 4, 8>} : (tensor<1x1x4x8xf32>) -> tensor<1x4x4x8xf32>
  %0 = kiln.matmul %q, %ke {transpose_b = true} : (tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x4x4xf32>
  %1 = kiln.softmax %0 : tensor<1x4x4x4xf32>
  %2 = kiln.matmul %1, %ve : (tensor<1x4x4x4xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32>
  return %2 : tensor<1x4x4x8xf32>
}

// -----

// Heads tiled (k.repeat(1, 2, 1, 1): heads 0, 1, 0, 1) are not grouped
// query heads (0, 0, 1, 1): K and V keep all four heads.
// CHECK-LABEL: func.func @tiled_heads
// CHECK: kiln.attention %arg0, %{{.*}}, %{{.*}} {scale = 1.000000e+00 : f64} : (tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32>
// REMARK: remark: fused attention: B=1 H=4 Sq=4 Sk=4 D=8, scale 1.000000e+00
func.func @tiled_heads(%q: tensor<1x4x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>) -> tensor<1x4x4x8xf32> {
  %k5 = kiln.reshape %k {shape = array<i64: 1, 1, 2, 4, 8>} : (tensor<1x2x4x8xf32>) -> tensor<1x1x2x4x8xf32>
  %kb = kiln.broadcast_to %k5 {shape = array<i64: 1, 2, 2, 4, 8>} : (tensor<1x1x2x4x8xf32>) -> tensor<1x2x2x4x8xf32>
  %kt = kiln.reshape %kb {shape = array<i64: 1, 4, 4, 8>} : (tensor<1x2x2x4x8xf32>) -> tensor<1x4x4x8xf32>
  %v5 = kiln.reshape %v {shape = array<i64: 1, 1, 2, 4, 8>} : (tensor<1x2x4x8xf32>) -> tensor<1x1x2x4x8xf32>
  %vb = kiln.broadcast_to %v5 {shape = array<i64: 1, 2, 2, 4, 8>} : (tensor<1x1x2x4x8xf32>) -> tensor<1x2x2x4x8xf32>
  %vt = kiln.reshape %vb {shape = array<i64: 1, 4, 4, 8>} : (tensor<1x2x2x4x8xf32>) -> tensor<1x4x4x8xf32>
  %0 = kiln.matmul %q, %kt {transpose_b = true} : (tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x4x4xf32>
  %1 = kiln.softmax %0 : tensor<1x4x4x4xf32>
  %2 = kiln.matmul %1, %vt : (tensor<1x4x4x4xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32>
  return %2 : tensor<1x4x4x8xf32>
}

// -----

// Swin V2's cosine attention: the scores scaled by a learned per-head
// factor [H, 1, 1], the same for every key, which moves onto Q (as would a
// scalar computed at run time).
// CHECK-LABEL: func.func @per_head_scale
// CHECK: %[[Q:.*]] = kiln.mul %arg0, %arg3 : (tensor<1x2x4x8xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x8xf32>
// CHECK: kiln.attention %[[Q]], %arg1, %arg2 {scale = 1.000000e+00 : f64}
// REMARK: remark: fused attention: B=1 H=2 Sq=4 Sk=4 D=8, scale 1.000000e+00
func.func @per_head_scale(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %scale: tensor<2x1x1xf32>) -> tensor<1x2x4x8xf32> {
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.mul %0, %scale : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %2 = kiln.softmax %1 : tensor<1x2x4x4xf32>
  %3 = kiln.matmul %2, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %3 : tensor<1x2x4x8xf32>
}

// -----

// A tensor factor after an additive mask scales the mask too:
// (s + m) * f = (q * f) k^T + m * f, exact for any sign of f (-inf * f is
// what the unfused ops have).
// CHECK-LABEL: func.func @row_scale_after_mask
// CHECK-DAG: %[[Q:.*]] = kiln.mul %arg0, %arg4 : (tensor<1x2x4x8xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x8xf32>
// CHECK-DAG: %[[M:.*]] = kiln.mul %arg3, %arg4 : (tensor<1x1x1x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x1x4xf32>
// CHECK: kiln.attention %[[Q]], %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64}
// CHECK-NOT: kiln.softmax
// REMARK: remark: fused attention: B=1 H=2 Sq=4 Sk=4 D=8, scale 1.000000e+00
func.func @row_scale_after_mask(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %m: tensor<1x1x1x4xf32>, %scale: tensor<2x1x1xf32>) -> tensor<1x2x4x8xf32> {
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.add %0, %m : (tensor<1x2x4x4xf32>, tensor<1x1x1x4xf32>) -> tensor<1x2x4x4xf32>
  %2 = kiln.mul %1, %scale : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %3 = kiln.softmax %2 : tensor<1x2x4x4xf32>
  %4 = kiln.matmul %3, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %4 : tensor<1x2x4x8xf32>
}

// -----

// A temperature given at run time, dividing the scaled and masked scores,
// with a per-key factor after it: Q and the mask are divided by t, K and
// the mask multiplied by w.
// CHECK-LABEL: func.func @runtime_temperature_after_mask
// CHECK-DAG: %[[Q:.*]] = kiln.div %arg0, %arg4 : (tensor<2x4x16x8xf32>, tensor<1xf32>) -> tensor<2x4x16x8xf32>
// CHECK-DAG: %[[W:.*]] = kiln.reshape %arg5 {shape = array<i64: 16, 1>} : (tensor<16xf32>) -> tensor<16x1xf32>
// CHECK-DAG: %[[K:.*]] = kiln.mul %arg1, %[[W]] : (tensor<2x4x16x8xf32>, tensor<16x1xf32>) -> tensor<2x4x16x8xf32>
// CHECK-DAG: %[[MT:.*]] = kiln.div %{{.*}}, %arg4 : (tensor<2x1x1x16xf32>, tensor<1xf32>) -> tensor<2x1x1x16xf32>
// CHECK-DAG: %[[M:.*]] = kiln.mul %[[MT]], %arg5 : (tensor<2x1x1x16xf32>, tensor<16xf32>) -> tensor<2x1x1x16xf32>
// CHECK: kiln.attention %[[Q]], %[[K]], %arg2, %[[M]] {scale = 0.35355
// CHECK-NOT: kiln.softmax
// REMARK: remark: fused attention: B=2 H=4 Sq=16 Sk=16 D=8
func.func @runtime_temperature_after_mask(%q: tensor<2x4x16x8xf32>, %k: tensor<2x4x16x8xf32>, %v: tensor<2x4x16x8xf32>, %m: tensor<2x1x1x16xf32>, %t: tensor<1xf32>, %w: tensor<16xf32>) -> tensor<2x4x16x8xf32> {
  %c = kiln.constant dense<0.353553385> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x16xf32>
  %1 = kiln.mul %0, %c : (tensor<2x4x16x16xf32>, tensor<f32>) -> tensor<2x4x16x16xf32>
  %2 = kiln.add %1, %m : (tensor<2x4x16x16xf32>, tensor<2x1x1x16xf32>) -> tensor<2x4x16x16xf32>
  %3 = kiln.div %2, %t : (tensor<2x4x16x16xf32>, tensor<1xf32>) -> tensor<2x4x16x16xf32>
  %4 = kiln.mul %3, %w : (tensor<2x4x16x16xf32>, tensor<16xf32>) -> tensor<2x4x16x16xf32>
  %5 = kiln.softmax %4 : tensor<2x4x16x16xf32>
  %6 = kiln.matmul %5, %v : (tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return %6 : tensor<2x4x16x8xf32>
}

// -----

// After a boolean mask a tensor factor is refused: the kernel excludes the
// masked keys, where a negative factor would make the unfused ops' -inf
// fill +inf.
// CHECK-LABEL: func.func @row_scale_after_boolean_mask
// CHECK: kiln.softmax
// REMARK: remark: attention not fused: 'kiln.mul' scales the masked or soft-capped scores by a tensor (only a splat constant may follow a boolean or causal mask or a tanh; a tensor may follow additive masks)
func.func @row_scale_after_boolean_mask(%q: tensor<1x2x4x8xf32>, %k: tensor<1x2x4x8xf32>, %v: tensor<1x2x4x8xf32>, %keep: tensor<1x1x1x4xi1>, %scale: tensor<2x1x1xf32>) -> tensor<1x2x4x8xf32> {
  %ninf = kiln.constant dense<0xFF800000> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x4xf32>
  %1 = kiln.where %keep, %0, %ninf : (tensor<1x1x1x4xi1>, tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %2 = kiln.mul %1, %scale : (tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) -> tensor<1x2x4x4xf32>
  %3 = kiln.softmax %2 : tensor<1x2x4x4xf32>
  %4 = kiln.matmul %3, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x8xf32>) -> tensor<1x2x4x8xf32>
  return %4 : tensor<1x2x4x8xf32>
}

// -----

// Swin's shifted windows: the scores [B*W, H, N, N] viewed as [B, W, H, N,
// N] to add the window mask [1, W, 1, N, N], then viewed back.
// CHECK-LABEL: func.func @window_mask_rank5
// CHECK: %[[B:.*]] = kiln.broadcast_to %arg3 {shape = array<i64: 1, 2, 2, 4, 4>}
// CHECK: %[[M:.*]] = kiln.reshape %[[B]] {shape = array<i64: 2, 2, 4, 4>}
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64}
// REMARK: remark: fused attention: B=2 H=2 Sq=4 Sk=4 D=8, scale 1.000000e+00, additive mask [2, 2, 4, 4]
func.func @window_mask_rank5(%q: tensor<2x2x4x8xf32>, %k: tensor<2x2x4x8xf32>, %v: tensor<2x2x4x8xf32>, %m: tensor<1x2x1x4x4xf32>) -> tensor<2x2x4x8xf32> {
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x4x8xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x4xf32>
  %1 = kiln.reshape %0 {shape = array<i64: 1, 2, 2, 4, 4>} : (tensor<2x2x4x4xf32>) -> tensor<1x2x2x4x4xf32>
  %2 = kiln.add %1, %m : (tensor<1x2x2x4x4xf32>, tensor<1x2x1x4x4xf32>) -> tensor<1x2x2x4x4xf32>
  %3 = kiln.reshape %2 {shape = array<i64: 2, 2, 4, 4>} : (tensor<1x2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %4 = kiln.softmax %3 : tensor<2x2x4x4xf32>
  %5 = kiln.matmul %4, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %5 : tensor<2x2x4x8xf32>
}

// -----

// Scores computed as (K Q^T)^T: the transpose of the matmul becomes the
// matmul with its operands swapped.
// CHECK-LABEL: func.func @scores_transposed
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {scale = 5.000000e-01 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=2 H=4 Sq=16 Sk=16 D=8, scale 5.000000e-01
func.func @scores_transposed(%q: tensor<2x4x16x8xf32>, %k: tensor<2x4x16x8xf32>, %v: tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32> {
  %c = kiln.constant dense<0.5> : tensor<f32>
  %0 = kiln.matmul %k, %q {transpose_b = true} : (tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x16xf32>
  %1 = kiln.transpose %0 {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %2 = kiln.mul %1, %c : (tensor<2x4x16x16xf32>, tensor<f32>) -> tensor<2x4x16x16xf32>
  %3 = kiln.softmax %2 : tensor<2x4x16x16xf32>
  %4 = kiln.matmul %3, %v : (tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return %4 : tensor<2x4x16x8xf32>
}

// -----

// A non-local block (SAGAN): V [B, C, N] times the transposed
// probabilities, V P^T = (P V^T)^T: fused with V transposed, the result
// transposed back.
// CHECK-LABEL: func.func @values_times_probs_transposed
// CHECK: %[[VT:.*]] = kiln.transpose %arg2 {perm = array<i64: 0, 2, 1>} : (tensor<2x32x16xf32>) -> tensor<2x16x32xf32>
// CHECK: %[[V:.*]] = kiln.reshape %[[VT]]
// CHECK: %[[O:.*]] = kiln.attention %{{.*}}, %{{.*}}, %[[V]] {scale = 1.000000e+00 : f64}
// CHECK: %[[R:.*]] = kiln.reshape %[[O]] {shape = array<i64: 2, 16, 32>}
// CHECK: %[[T:.*]] = kiln.transpose %[[R]] {perm = array<i64: 0, 2, 1>} : (tensor<2x16x32xf32>) -> tensor<2x32x16xf32>
// CHECK: return %[[T]]
// REMARK: remark: fused attention: B=1 H=2 Sq=16 Sk=16 D=8, scale 1.000000e+00
func.func @values_times_probs_transposed(%q: tensor<2x16x8xf32>, %k: tensor<2x16x8xf32>, %v: tensor<2x32x16xf32>) -> tensor<2x32x16xf32> {
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x16x8xf32>, tensor<2x16x8xf32>) -> tensor<2x16x16xf32>
  %1 = kiln.softmax %0 : tensor<2x16x16xf32>
  %2 = kiln.transpose %1 {perm = array<i64: 0, 2, 1>} : (tensor<2x16x16xf32>) -> tensor<2x16x16xf32>
  %3 = kiln.matmul %v, %2 : (tensor<2x32x16xf32>, tensor<2x16x16xf32>) -> tensor<2x32x16xf32>
  return %3 : tensor<2x32x16xf32>
}

// -----

// exp(log_softmax(x)) is softmax(x), and a softmax needs no row maximum
// subtracted first.
// CHECK-LABEL: func.func @exp_log_softmax_max_shift
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {scale = 1.000000e+00 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=1 H=2 Sq=16 Sk=16 D=8, scale 1.000000e+00
func.func @exp_log_softmax_max_shift(%q: tensor<1x2x16x8xf32>, %k: tensor<1x2x16x8xf32>, %v: tensor<1x2x16x8xf32>) -> tensor<1x2x16x8xf32> {
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>) -> tensor<1x2x16x16xf32>
  %1 = kiln.reduce_max %0 {axes = array<i64: -1>, keepdims = true} : (tensor<1x2x16x16xf32>) -> tensor<1x2x16x1xf32>
  %2 = kiln.sub %0, %1 : (tensor<1x2x16x16xf32>, tensor<1x2x16x1xf32>) -> tensor<1x2x16x16xf32>
  %3 = kiln.log_softmax %2 {axis = 3 : i64} : tensor<1x2x16x16xf32>
  %4 = kiln.exp %3 : tensor<1x2x16x16xf32>
  %5 = kiln.matmul %4, %v : (tensor<1x2x16x16xf32>, tensor<1x2x16x8xf32>) -> tensor<1x2x16x8xf32>
  return %5 : tensor<1x2x16x8xf32>
}

// -----

// masked_fill(-1e9) on f32 scores: where a row's keys are all masked the
// unfused ops average V (equal scores), elsewhere the masked keys weigh 0.
// The mask replaces with an absorbing fill (-FLT_MAX / 2), which gives the
// same on both kinds of row; excluding the keys would give zeros.
// CHECK-LABEL: func.func @finite_fill_replaces
// CHECK-DAG: %[[FILL:.*]] = kiln.constant dense<-1.70141173E+38> : tensor<f32>
// CHECK-DAG: %[[ZERO:.*]] = kiln.constant dense<0.000000e+00> : tensor<f32>
// CHECK: %[[M:.*]] = kiln.where %arg3, %[[ZERO]], %[[FILL]]
// CHECK: kiln.attention %arg0, %arg1, %arg2, %[[M]] {scale = 1.000000e+00 : f64}
// REMARK: remark: fused attention: B=2 H=2 Sq=16 Sk=16 D=8, scale 1.000000e+00, additive mask [2, 1, 1, 16]
func.func @finite_fill_replaces(%q: tensor<2x2x16x8xf32>, %k: tensor<2x2x16x8xf32>, %v: tensor<2x2x16x8xf32>, %pad: tensor<2x1x1x16xi1>) -> tensor<2x2x16x8xf32> {
  %fill = kiln.constant dense<-1.0e+09> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x16x8xf32>, tensor<2x2x16x8xf32>) -> tensor<2x2x16x16xf32>
  %1 = kiln.where %pad, %0, %fill : (tensor<2x1x1x16xi1>, tensor<2x2x16x16xf32>, tensor<f32>) -> tensor<2x2x16x16xf32>
  %2 = kiln.softmax %1 : tensor<2x2x16x16xf32>
  %3 = kiln.matmul %2, %v : (tensor<2x2x16x16xf32>, tensor<2x2x16x8xf32>) -> tensor<2x2x16x8xf32>
  return %3 : tensor<2x2x16x8xf32>
}

// -----

// A bias added after the -1e9 fill: fill + bias is not the same for every
// key, so no absorbing fill reproduces a fully masked row; the keys are
// excluded, and the remark says what that changes.
// CHECK-LABEL: func.func @finite_fill_then_bias
// CHECK: kiln.attention
// REMARK: remark: fused attention: B=2 H=2 Sq=16 Sk=16 D=8, scale 1.000000e+00, additive mask [2, 2, 16, 16]; the keys a where fills with -1.000000e+09 are excluded, so a row in which it masks every key gives zeros (unfused: weights from the fill)
func.func @finite_fill_then_bias(%q: tensor<2x2x16x8xf32>, %k: tensor<2x2x16x8xf32>, %v: tensor<2x2x16x8xf32>, %pad: tensor<2x1x1x16xi1>, %bias: tensor<1x2x16x16xf32>) -> tensor<2x2x16x8xf32> {
  %fill = kiln.constant dense<-1.0e+09> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x16x8xf32>, tensor<2x2x16x8xf32>) -> tensor<2x2x16x16xf32>
  %1 = kiln.where %pad, %0, %fill : (tensor<2x1x1x16xi1>, tensor<2x2x16x16xf32>, tensor<f32>) -> tensor<2x2x16x16xf32>
  %2 = kiln.add %1, %bias : (tensor<2x2x16x16xf32>, tensor<1x2x16x16xf32>) -> tensor<2x2x16x16xf32>
  %3 = kiln.softmax %2 : tensor<2x2x16x16xf32>
  %4 = kiln.matmul %3, %v : (tensor<2x2x16x16xf32>, tensor<2x2x16x8xf32>) -> tensor<2x2x16x8xf32>
  return %4 : tensor<2x2x16x8xf32>
}

// -----

// Grouped-query heads by broadcasting in rank 5: Q [B, G, R, S, D] against
// K and V [B, G, 1, S, D]. Flattened to [B, G*R, ...] with K and V as
// repeat_kv, read once per group; the padding mask [B, 1, 1, 1, S] stays
// [B, 1, 1, S], not broadcast to the scores.
// CHECK-LABEL: func.func @grouped_heads_rank5
// CHECK-DAG: %[[K:.*]] = kiln.reshape %arg1 {shape = array<i64: 2, 2, 16, 8>}
// CHECK-DAG: %[[Q:.*]] = kiln.reshape %arg0 {shape = array<i64: 2, 6, 16, 8>}
// CHECK-DAG: %[[V:.*]] = kiln.reshape %arg2 {shape = array<i64: 2, 2, 16, 8>}
// CHECK-DAG: %[[M:.*]] = kiln.reshape %arg3 {shape = array<i64: 2, 1, 1, 16>}
// CHECK: %[[O:.*]] = kiln.attention %[[Q]], %[[K]], %[[V]], %[[M]] {scale = 2.500000e-01 : f64} : (tensor<2x6x16x8xf32>, tensor<2x2x16x8xf32>, tensor<2x2x16x8xf32>, tensor<2x1x1x16xf32>) -> tensor<2x6x16x8xf32>
// CHECK: %[[R:.*]] = kiln.reshape %[[O]] {shape = array<i64: 2, 2, 3, 16, 8>}
// CHECK: return %[[R]]
// REMARK: remark: fused attention: B=2 H=6 (kv heads 2) Sq=16 Sk=16 D=8, scale 2.500000e-01, additive mask [2, 1, 1, 16]
func.func @grouped_heads_rank5(%q: tensor<2x2x3x16x8xf32>, %k: tensor<2x2x1x16x8xf32>, %v: tensor<2x2x1x16x8xf32>, %m: tensor<2x1x1x1x16xf32>) -> tensor<2x2x3x16x8xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x2x3x16x8xf32>, tensor<2x2x1x16x8xf32>) -> tensor<2x2x3x16x16xf32>
  %1 = kiln.mul %0, %c : (tensor<2x2x3x16x16xf32>, tensor<f32>) -> tensor<2x2x3x16x16xf32>
  %2 = kiln.add %m, %1 : (tensor<2x1x1x1x16xf32>, tensor<2x2x3x16x16xf32>) -> tensor<2x2x3x16x16xf32>
  %3 = kiln.softmax %2 : tensor<2x2x3x16x16xf32>
  %4 = kiln.matmul %3, %v : (tensor<2x2x3x16x16xf32>, tensor<2x2x1x16x8xf32>) -> tensor<2x2x3x16x8xf32>
  return %4 : tensor<2x2x3x16x8xf32>
}

// -----

// Scores times a per-key factor [Sk] (constant along the queries): it
// scales the rows of K, q (k * w)^T, transposed by a reshape; divided the
// same way.
// CHECK-LABEL: func.func @per_key_scores_factor
// CHECK-NEXT: %[[W:.*]] = kiln.reshape %arg3 {shape = array<i64: 16, 1>}
// CHECK-NEXT: %[[K:.*]] = kiln.div %arg1, %[[W]]
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %[[K]], %arg2 {scale = 2.500000e-01 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=2 H=4 Sq=16 Sk=16 D=8, scale 2.500000e-01
func.func @per_key_scores_factor(%q: tensor<2x4x16x8xf32>, %k: tensor<2x4x16x8xf32>, %v: tensor<2x4x16x8xf32>, %w: tensor<16xf32>) -> tensor<2x4x16x8xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x16xf32>
  %1 = kiln.div %0, %w : (tensor<2x4x16x16xf32>, tensor<16xf32>) -> tensor<2x4x16x16xf32>
  %2 = kiln.mul %1, %c : (tensor<2x4x16x16xf32>, tensor<f32>) -> tensor<2x4x16x16xf32>
  %3 = kiln.softmax %2 : tensor<2x4x16x16xf32>
  %4 = kiln.matmul %3, %v : (tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return %4 : tensor<2x4x16x8xf32>
}

// -----

// The same per-key factor on grouped-query scores: applied to the 2 key
// heads after repeat_kv is undone, so K and V stay grouped.
// CHECK-LABEL: func.func @per_key_scores_factor_grouped
// CHECK-NEXT: %[[W:.*]] = kiln.reshape %arg3 {shape = array<i64: 4, 1>}
// CHECK-NEXT: %[[K:.*]] = kiln.mul %arg1, %[[W]] : (tensor<1x2x4x64xf32>, tensor<4x1xf32>) -> tensor<1x2x4x64xf32>
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %[[K]], %arg2 {scale = 1.250000e-01 : f64} : (tensor<1x6x4x64xf32>, tensor<1x2x4x64xf32>, tensor<1x2x4x64xf32>) -> tensor<1x6x4x64xf32>
// REMARK: remark: fused attention: B=1 H=6 (kv heads 2) Sq=4 Sk=4 D=64, scale 1.250000e-01
func.func @per_key_scores_factor_grouped(%q: tensor<1x6x4x64xf32>, %k: tensor<1x2x4x64xf32>, %v: tensor<1x2x4x64xf32>, %w: tensor<4xf32>) -> tensor<1x6x4x64xf32> {
  %c = kiln.constant dense<0.125> : tensor<f32>
  %k5 = kiln.reshape %k {shape = array<i64: 1, 2, 1, 4, 64>} : (tensor<1x2x4x64xf32>) -> tensor<1x2x1x4x64xf32>
  %kb = kiln.broadcast_to %k5 {shape = array<i64: 1, 2, 3, 4, 64>} : (tensor<1x2x1x4x64xf32>) -> tensor<1x2x3x4x64xf32>
  %kr = kiln.reshape %kb {shape = array<i64: 1, 6, 4, 64>} : (tensor<1x2x3x4x64xf32>) -> tensor<1x6x4x64xf32>
  %v5 = kiln.reshape %v {shape = array<i64: 1, 2, 1, 4, 64>} : (tensor<1x2x4x64xf32>) -> tensor<1x2x1x4x64xf32>
  %vb = kiln.broadcast_to %v5 {shape = array<i64: 1, 2, 3, 4, 64>} : (tensor<1x2x1x4x64xf32>) -> tensor<1x2x3x4x64xf32>
  %vr = kiln.reshape %vb {shape = array<i64: 1, 6, 4, 64>} : (tensor<1x2x3x4x64xf32>) -> tensor<1x6x4x64xf32>
  %0 = kiln.matmul %q, %kr {transpose_b = true} : (tensor<1x6x4x64xf32>, tensor<1x6x4x64xf32>) -> tensor<1x6x4x4xf32>
  %1 = kiln.mul %0, %w : (tensor<1x6x4x4xf32>, tensor<4xf32>) -> tensor<1x6x4x4xf32>
  %2 = kiln.mul %1, %c : (tensor<1x6x4x4xf32>, tensor<f32>) -> tensor<1x6x4x4xf32>
  %3 = kiln.softmax %2 : tensor<1x6x4x4xf32>
  %4 = kiln.matmul %3, %vr : (tensor<1x6x4x4xf32>, tensor<1x6x4x64xf32>) -> tensor<1x6x4x64xf32>
  return %4 : tensor<1x6x4x64xf32>
}

// -----

// Probabilities times a head mask (HF's probs * head_mask, [1, H, 1, 1]):
// the factor is constant along the keys, so it scales the rows of P V
// instead, after the fused kernel.
// CHECK-LABEL: func.func @head_mask
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %arg2 {scale = 2.500000e-01 : f64}
// CHECK-NEXT: %[[S:.*]] = kiln.mul %[[O]], %arg3 : (tensor<2x4x16x8xf32>, tensor<1x4x1x1xf32>) -> tensor<2x4x16x8xf32>
// CHECK-NEXT: return %[[S]]
// REMARK: remark: fused attention: B=2 H=4 Sq=16 Sk=16 D=8, scale 2.500000e-01
func.func @head_mask(%q: tensor<2x4x16x8xf32>, %k: tensor<2x4x16x8xf32>, %v: tensor<2x4x16x8xf32>, %hm: tensor<1x4x1x1xf32>) -> tensor<2x4x16x8xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x16xf32>
  %1 = kiln.mul %0, %c : (tensor<2x4x16x16xf32>, tensor<f32>) -> tensor<2x4x16x16xf32>
  %2 = kiln.softmax %1 : tensor<2x4x16x16xf32>
  %3 = kiln.mul %2, %hm : (tensor<2x4x16x16xf32>, tensor<1x4x1x1xf32>) -> tensor<2x4x16x16xf32>
  %4 = kiln.matmul %3, %v : (tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return %4 : tensor<2x4x16x8xf32>
}

// -----

// A per-key factor on the probabilities (constant along the queries)
// scales the rows of V: P diag(w) V = P (diag(w) V).
// CHECK-LABEL: func.func @per_key_factor
// CHECK-NEXT: %[[W:.*]] = kiln.reshape %arg3 {shape = array<i64: 1, 1, 16, 1>}
// CHECK-NEXT: %[[V:.*]] = kiln.mul %arg2, %[[W]]
// CHECK-NEXT: %[[O:.*]] = kiln.attention %arg0, %arg1, %[[V]] {scale = 2.500000e-01 : f64}
// CHECK-NEXT: return %[[O]]
// REMARK: remark: fused attention: B=2 H=4 Sq=16 Sk=16 D=8, scale 2.500000e-01
func.func @per_key_factor(%q: tensor<2x4x16x8xf32>, %k: tensor<2x4x16x8xf32>, %v: tensor<2x4x16x8xf32>, %w: tensor<16xf32>) -> tensor<2x4x16x8xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x16xf32>
  %1 = kiln.mul %0, %c : (tensor<2x4x16x16xf32>, tensor<f32>) -> tensor<2x4x16x16xf32>
  %2 = kiln.softmax %1 : tensor<2x4x16x16xf32>
  %3 = kiln.mul %w, %2 : (tensor<16xf32>, tensor<2x4x16x16xf32>) -> tensor<2x4x16x16xf32>
  %4 = kiln.matmul %3, %v : (tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return %4 : tensor<2x4x16x8xf32>
}

// -----

// A factor that varies along both queries and keys does not separate from
// the product: not fused, and the remark says so.
// CHECK-LABEL: func.func @full_factor
// CHECK: kiln.softmax
// REMARK: remark: attention not fused: the probabilities are multiplied by a factor that varies along both the queries and the keys
func.func @full_factor(%q: tensor<2x4x16x8xf32>, %k: tensor<2x4x16x8xf32>, %v: tensor<2x4x16x8xf32>, %w: tensor<16x16xf32>) -> tensor<2x4x16x8xf32> {
  %c = kiln.constant dense<0.25> : tensor<f32>
  %0 = kiln.matmul %q, %k {transpose_b = true} : (tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x16xf32>
  %1 = kiln.mul %0, %c : (tensor<2x4x16x16xf32>, tensor<f32>) -> tensor<2x4x16x16xf32>
  %2 = kiln.softmax %1 : tensor<2x4x16x16xf32>
  %3 = kiln.mul %2, %w : (tensor<2x4x16x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16x16xf32>
  %4 = kiln.matmul %3, %v : (tensor<2x4x16x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x16x8xf32>
  return %4 : tensor<2x4x16x8xf32>
}

// -----

// A classifier's softmax is not a candidate: no remark, nothing changes.
// CHECK-LABEL: func.func @classifier
// CHECK: kiln.softmax
// REMARK-NOT: remark
func.func @classifier(%x: tensor<2x10xf32>) -> tensor<2x10xf32> {
  %0 = kiln.softmax %x : tensor<2x10xf32>
  return %0 : tensor<2x10xf32>
}
