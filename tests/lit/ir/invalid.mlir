// Verifier and inference diagnostics, one case per rule. Where inference
// rejects an op, the verifier adds "failed to infer returned types".
// RUN: kiln-opt %s --split-input-file --verify-diagnostics

func.func @matmul_contraction(%a: tensor<2x64xf32>, %b: tensor<32x4xf32>) {
  // expected-error@+2 {{'kiln.matmul' op contraction dims differ: lhs has K=64, rhs has K=32}}
  // expected-error@+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = kiln.matmul %a, %b : (tensor<2x64xf32>, tensor<32x4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @matmul_transpose_b(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) {
  // expected-error@+2 {{contraction dims differ: lhs has K=3, rhs has K=4}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.matmul %a, %b {transpose_b = true} : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @matmul_rank(%a: tensor<3xf32>, %b: tensor<3x4xf32>) {
  // expected-error@+2 {{expected a and b of rank >= 2, got a of rank 1 and b of rank 2}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.matmul %a, %b : (tensor<3xf32>, tensor<3x4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @matmul_element_types(%a: tensor<2x3xf32>, %b: tensor<3x4xbf16>) {
  // expected-error@+2 {{element types differ: a has f32, b has bf16}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.matmul %a, %b : (tensor<2x3xf32>, tensor<3x4xbf16>) -> tensor<2x4xf32>
  return
}

// -----

func.func @matmul_batch(%a: tensor<2x5x3xf32>, %b: tensor<4x3x4xf32>) {
  // expected-error@+2 {{shapes are not broadcastable: batch dims of a has [2], batch dims of b has [4]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.matmul %a, %b : (tensor<2x5x3xf32>, tensor<4x3x4xf32>) -> tensor<2x5x4xf32>
  return
}

// -----

func.func @matmul_result_type(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) {
  // expected-error@+2 {{'kiln.matmul' op inferred type(s) 'tensor<2x4xf32>' are incompatible with return type(s) of operation 'tensor<2x5xf32>'}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.matmul %a, %b : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x5xf32>
  return
}

// -----

func.func @matmul_i1(%a: tensor<2x2xi1>) {
  // expected-error@+1 {{'kiln.matmul' op operand #0 must be statically shaped tensor of}}
  %0 = kiln.matmul %a, %a : (tensor<2x2xi1>, tensor<2x2xi1>) -> tensor<2x2xi1>
  return
}

// -----

func.func @dynamic_shape(%a: tensor<?x4xf32>) {
  // expected-error@+1 {{'kiln.add' op operand #0 must be statically shaped tensor of}}
  %0 = kiln.add %a, %a : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
  return
}

// -----

func.func @add_broadcast(%a: tensor<2x3xf32>, %b: tensor<4xf32>) {
  // expected-error@+2 {{'kiln.add' op shapes are not broadcastable: lhs has [2, 3], rhs has [4]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.add %a, %b : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @add_element_types(%a: tensor<3xf32>, %b: tensor<3xf16>) {
  // expected-error@+2 {{'kiln.add' op element types differ: lhs has f32, rhs has f16}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.add %a, %b : (tensor<3xf32>, tensor<3xf16>) -> tensor<3xf32>
  return
}

// -----

func.func @exp_integer(%a: tensor<3xi32>) {
  // expected-error@+1 {{expected x to have a float type (f32, f16, bf16, f64), got i32}}
  %0 = kiln.exp %a : tensor<3xi32>
  return
}

// -----

func.func @sin_integer(%a: tensor<3xi64>) {
  // expected-error@+1 {{expected x to have a float type (f32, f16, bf16, f64), got i64}}
  %0 = kiln.sin %a : tensor<3xi64>
  return
}

// -----

func.func @pow_integer(%a: tensor<3xi32>) {
  // expected-error@+1 {{'kiln.pow' op operand #0 must be statically shaped tensor of}}
  %0 = kiln.pow %a, %a : (tensor<3xi32>, tensor<3xi32>) -> tensor<3xi32>
  return
}

// -----

func.func @gelu_approximate(%a: tensor<3xf32>) {
  // expected-error@+1 {{'kiln.gelu' op expected approximate to be "none" or "tanh", got "fast"}}
  %0 = kiln.gelu %a {approximate = "fast"} : tensor<3xf32>
  return
}

// -----

func.func @compare_predicate(%a: tensor<3xf32>) {
  // expected-error@+2 {{'kiln.compare' op expected predicate to be one of eq, ne, lt, le, gt, ge, got "less"}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.compare %a, %a {predicate = "less"} : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xi1>
  return
}

// -----

func.func @compare_i1_order(%a: tensor<3xi1>) {
  // expected-error@+2 {{'kiln.compare' op predicate "lt" is not defined on i1 operands, expected eq or ne}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.compare %a, %a {predicate = "lt"} : (tensor<3xi1>, tensor<3xi1>) -> tensor<3xi1>
  return
}

// -----

func.func @compare_missing_predicate(%a: tensor<3xf32>) {
  // expected-error@+1 {{'kiln.compare' op requires attribute 'predicate'}}
  %0 = kiln.compare %a, %a : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xi1>
  return
}

// -----

func.func @where_cond(%c: tensor<3xf32>, %x: tensor<3xf32>) {
  // expected-error@+1 {{'kiln.where' op operand #0 must be statically shaped tensor of 1-bit signless integer values}}
  %0 = kiln.where %c, %x, %x : (tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return
}

// -----

func.func @where_broadcast(%c: tensor<2xi1>, %x: tensor<3xf32>) {
  // expected-error@+2 {{'kiln.where' op shapes are not broadcastable: cond has [2], broadcast(x, y) has [3]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.where %c, %x, %x : (tensor<2xi1>, tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return
}

// -----

func.func @where_element_types(%c: tensor<3xi1>, %x: tensor<3xf32>, %y: tensor<3xi32>) {
  // expected-error@+2 {{'kiln.where' op element types differ: x has f32, y has i32}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.where %c, %x, %y : (tensor<3xi1>, tensor<3xf32>, tensor<3xi32>) -> tensor<3xf32>
  return
}

// -----

func.func @cast_dtype(%x: tensor<3xf32>) {
  // expected-error@+1 {{'kiln.cast' op attribute 'dtype' failed to satisfy constraint}}
  %0 = kiln.cast %x {dtype = i16} : (tensor<3xf32>) -> tensor<3xi16>
  return
}

// -----

func.func @conv2d_channels(%x: tensor<1x3x8x8xf32>, %w: tensor<16x4x3x3xf32>) {
  // expected-error@+2 {{'kiln.conv2d' op expected w dim 1 to be C/groups=3, got 4}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.conv2d %x, %w : (tensor<1x3x8x8xf32>, tensor<16x4x3x3xf32>) -> tensor<1x16x6x6xf32>
  return
}

// -----

func.func @conv2d_groups(%x: tensor<1x4x8x8xf32>, %w: tensor<6x2x3x3xf32>) {
  // expected-error@+2 {{'kiln.conv2d' op output channels O=6 are not divisible by groups=4}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.conv2d %x, %w {groups = 4 : i64} : (tensor<1x4x8x8xf32>, tensor<6x2x3x3xf32>) -> tensor<1x6x6x6xf32>
  return
}

// -----

func.func @conv2d_input_groups(%x: tensor<1x3x8x8xf32>, %w: tensor<4x1x3x3xf32>) {
  // expected-error@+2 {{'kiln.conv2d' op input channels C=3 are not divisible by groups=2}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.conv2d %x, %w {groups = 2 : i64} : (tensor<1x3x8x8xf32>, tensor<4x1x3x3xf32>) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @conv2d_bias(%x: tensor<1x3x8x8xf32>, %w: tensor<16x3x3x3xf32>, %b: tensor<8xf32>) {
  // expected-error@+2 {{'kiln.conv2d' op expected bias of shape [16], got [8]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.conv2d %x, %w, %b : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>, tensor<8xf32>) -> tensor<1x16x6x6xf32>
  return
}

// -----

func.func @conv2d_kernel_too_large(%x: tensor<1x3x4x4xf32>, %w: tensor<16x3x3x3xf32>) {
  // expected-error@+2 {{'kiln.conv2d' op dilated kernel [3, 3] (extent 5) does not fit the padded input [4, 4] + pads [0, 0, 0, 0]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.conv2d %x, %w {dilations = array<i64: 2, 2>} : (tensor<1x3x4x4xf32>, tensor<16x3x3x3xf32>) -> tensor<1x16x1x1xf32>
  return
}

// -----

func.func @conv2d_strides(%x: tensor<1x3x8x8xf32>, %w: tensor<16x3x3x3xf32>) {
  // expected-error@+2 {{'kiln.conv2d' op expected 2 entries in strides, got 3 ([1, 1, 1])}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.conv2d %x, %w {strides = array<i64: 1, 1, 1>} : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>) -> tensor<1x16x6x6xf32>
  return
}

// -----

func.func @conv2d_rank(%x: tensor<3x8x8xf32>, %w: tensor<16x3x3x3xf32>) {
  // expected-error@+2 {{'kiln.conv2d' op expected x of rank 4 [N, C, H, W], got rank 3}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.conv2d %x, %w : (tensor<3x8x8xf32>, tensor<16x3x3x3xf32>) -> tensor<16x6x6xf32>
  return
}

// -----

func.func @max_pool_kernel(%x: tensor<1x3x2x2xf32>) {
  // expected-error@+2 {{'kiln.max_pool2d' op kernel [3, 3] does not fit the padded input: x has [1, 3, 2, 2], pads [0, 0, 0, 0]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.max_pool2d %x {kernel = array<i64: 3, 3>} : (tensor<1x3x2x2xf32>) -> tensor<1x3x1x1xf32>
  return
}

// -----

func.func @max_pool_missing_kernel(%x: tensor<1x3x8x8xf32>) {
  // expected-error@+1 {{'kiln.max_pool2d' op requires attribute 'kernel'}}
  %0 = kiln.max_pool2d %x : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  return
}

// -----

func.func @avg_pool_strides(%x: tensor<1x3x8x8xf32>) {
  // expected-error@+2 {{'kiln.avg_pool2d' op expected strides to be positive, got [0, 1]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.avg_pool2d %x {kernel = array<i64: 2, 2>, strides = array<i64: 0, 1>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
  return
}

// -----

func.func @avg_pool_pads(%x: tensor<1x3x8x8xf32>) {
  // expected-error@+2 {{'kiln.avg_pool2d' op expected pads to be non-negative, got [0, -1, 0, 0]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.avg_pool2d %x {kernel = array<i64: 2, 2>, pads = array<i64: 0, -1, 0, 0>} : (tensor<1x3x8x8xf32>) -> tensor<1x3x7x7xf32>
  return
}

// -----

func.func @max_pool_ceil_mode(%x: tensor<1x1x5x5xf32>) {
  // ceil((5 - 2) / 2) + 1 = 3 windows, the last starting at 4 (inside): 3x3.
  // expected-error@+2 {{inferred type(s) 'tensor<1x1x3x3xf32>' are incompatible with return type(s) of operation 'tensor<1x1x2x2xf32>'}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.max_pool2d %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, ceil_mode = true} : (tensor<1x1x5x5xf32>) -> tensor<1x1x2x2xf32>
  return
}

// -----

func.func @global_avg_pool_rank(%x: tensor<3x8x8xf32>) {
  // expected-error@+2 {{'kiln.global_avg_pool' op expected x of rank 4 [N, C, H, W], got rank 3}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.global_avg_pool %x : (tensor<3x8x8xf32>) -> tensor<3x1x1xf32>
  return
}

// -----

func.func @batch_norm_params(%x: tensor<1x3x8x8xf32>, %c: tensor<3xf32>, %v: tensor<4xf32>) {
  // expected-error@+2 {{'kiln.batch_norm' op expected var of shape [3], got [4]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.batch_norm %x, %c, %c, %c, %v : (tensor<1x3x8x8xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<4xf32>) -> tensor<1x3x8x8xf32>
  return
}

// -----

func.func @layer_norm_scale(%x: tensor<2x16x64xf32>, %s: tensor<64xf32>) {
  // expected-error@+2 {{'kiln.layer_norm' op expected scale of shape x.shape[-2:] = [16, 64], got [64]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.layer_norm %x, %s, %s {axis = -2 : i64} : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
  return
}

// -----

func.func @rms_norm_axis(%x: tensor<2x64xf32>, %s: tensor<64xf32>) {
  // expected-error@+2 {{'kiln.rms_norm' op axis 2 is out of range for rank 2 (expected [-2, 2))}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.rms_norm %x, %s {axis = 2 : i64} : (tensor<2x64xf32>, tensor<64xf32>) -> tensor<2x64xf32>
  return
}

// -----

func.func @softmax_axis(%x: tensor<2x10xf32>) {
  // expected-error@+1 {{'kiln.softmax' op axis -3 is out of range for rank 2 (expected [-2, 2))}}
  %0 = kiln.softmax %x {axis = -3 : i64} : tensor<2x10xf32>
  return
}

// -----

func.func @reduce_duplicate_axes(%x: tensor<2x3xf32>) {
  // expected-error@+2 {{'kiln.reduce_sum' op axis 1 appears more than once in axes [1, -1]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.reduce_sum %x {axes = array<i64: 1, -1>} : (tensor<2x3xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @reduce_mean_integer(%x: tensor<2x3xi32>) {
  // expected-error@+1 {{'kiln.reduce_mean' op operand #0 must be statically shaped tensor of}}
  %0 = kiln.reduce_mean %x {axes = array<i64: 1>} : (tensor<2x3xi32>) -> tensor<2xi32>
  return
}

// -----

func.func @reduce_keepdims(%x: tensor<2x3xf32>) {
  // expected-error@+2 {{inferred type(s) 'tensor<2x1xf32>' are incompatible with return type(s) of operation 'tensor<2xf32>'}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.reduce_max %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @reshape_count(%x: tensor<2x3x4xf32>) {
  // expected-error@+2 {{'kiln.reshape' op element count differs: x has 24 elements ([2, 3, 4]), shape [5, 5] has 25}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.reshape %x {shape = array<i64: 5, 5>} : (tensor<2x3x4xf32>) -> tensor<5x5xf32>
  return
}

// -----

func.func @reshape_negative(%x: tensor<2x3xf32>) {
  // expected-error@+2 {{'kiln.reshape' op expected shape to be non-negative, got [-1, 3]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.reshape %x {shape = array<i64: -1, 3>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @transpose_perm(%x: tensor<2x3x4xf32>) {
  // expected-error@+2 {{'kiln.transpose' op expected perm to be a permutation of [0, 3), got [0, 0, 1]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.transpose %x {perm = array<i64: 0, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<2x2x3xf32>
  return
}

// -----

func.func @transpose_perm_length(%x: tensor<2x3x4xf32>) {
  // expected-error@+2 {{'kiln.transpose' op expected perm of length 3 (rank of x), got [1, 0]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3x4xf32>) -> tensor<3x2x4xf32>
  return
}

// -----

func.func @concat_dims(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error@+2 {{'kiln.concat' op dim 0 differs outside axis 1: xs[0] has [2, 3], xs[1] has [4, 5]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.concat %a, %b {axis = 1 : i64} : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @concat_ranks(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error@+2 {{'kiln.concat' op ranks differ: xs[0] has rank 2, xs[1] has rank 1}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.concat %a, %b {axis = 1 : i64} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x6xf32>
  return
}

// -----

func.func @concat_element_types(%a: tensor<3xf32>, %b: tensor<3xi8>) {
  // expected-error@+2 {{'kiln.concat' op element types differ: xs[0] has f32, xs[1] has i8}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.concat %a, %b {axis = 0 : i64} : (tensor<3xf32>, tensor<3xi8>) -> tensor<6xf32>
  return
}

// -----

func.func @concat_empty() {
  // expected-error@+2 {{'kiln.concat' op expected at least one operand, got none}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.concat {axis = 0 : i64} : () -> tensor<3xf32>
  return
}

// -----

func.func @slice_bounds(%x: tensor<4x8xf32>) {
  // expected-error@+2 {{'kiln.slice' op expected 0 <= start <= end <= 8 in dim 1 (step 1), got start 2, end 9}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.slice %x {starts = array<i64: 0, 2>, ends = array<i64: 4, 9>, steps = array<i64: 1, 1>} : (tensor<4x8xf32>) -> tensor<4x7xf32>
  return
}

// -----

func.func @slice_negative_step(%x: tensor<4x8xf32>) {
  // expected-error@+2 {{'kiln.slice' op expected -1 <= end <= start < 8 in dim 1 (step -1), got start 8, end 0}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.slice %x {starts = array<i64: 0, 8>, ends = array<i64: 4, 0>, steps = array<i64: 1, -1>} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @slice_zero_step(%x: tensor<4xf32>) {
  // expected-error@+2 {{'kiln.slice' op expected non-zero steps, got 0 in dim 0}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.slice %x {starts = array<i64: 0>, ends = array<i64: 4>, steps = array<i64: 0>} : (tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @slice_lengths(%x: tensor<4x8xf32>) {
  // expected-error@+2 {{'kiln.slice' op expected 2 entries in ends, got 1 ([4])}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.slice %x {starts = array<i64: 0, 0>, ends = array<i64: 4>, steps = array<i64: 1, 1>} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @gather_axis(%d: tensor<10x4xf32>, %i: tensor<3xi32>) {
  // expected-error@+2 {{'kiln.gather' op axis 2 is out of range for rank 2 (expected [-2, 2))}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.gather %d, %i {axis = 2 : i64} : (tensor<10x4xf32>, tensor<3xi32>) -> tensor<10x4xf32>
  return
}

// -----

func.func @gather_indices(%d: tensor<10x4xf32>, %i: tensor<3xf32>) {
  // expected-error@+1 {{'kiln.gather' op operand #1 must be statically shaped tensor of 32-bit signless integer or 64-bit signless integer values}}
  %0 = kiln.gather %d, %i : (tensor<10x4xf32>, tensor<3xf32>) -> tensor<3x4xf32>
  return
}

// -----

func.func @broadcast_to(%x: tensor<3x2xf32>) {
  // expected-error@+2 {{'kiln.broadcast_to' op x of shape [3, 2] does not broadcast to shape [3, 4]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.broadcast_to %x {shape = array<i64: 3, 4>} : (tensor<3x2xf32>) -> tensor<3x4xf32>
  return
}

// -----

func.func @constant_element_type() {
  // expected-error@+1 {{'kiln.constant' op expected value to have a kiln element type (f32, f16, bf16, f64, i64, i32, i8, ui8, i1), got i16}}
  %0 = kiln.constant dense<1> : tensor<2xi16>
  return
}

// -----

func.func @fused_unknown_step(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>) {
  // expected-error@+2 {{'kiln.fused_matmul' op epilogue step 0 is 'softmax', expected add_bias, add_residual, batch_norm, scale, shift, max, min, relu, gelu, gelu_tanh, silu, tanh, sigmoid or hardswish}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.fused_matmul %a, %b {epilogue = ["softmax"]} : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @fused_missing_extra(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>) {
  // expected-error@+2 {{'kiln.fused_matmul' op epilogue step 1 'add_residual' needs 1 extra operand(s) from #0 (0 given)}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.fused_matmul %a, %b {epilogue = ["relu", "add_residual"]} : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @fused_bias_shape(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>, %bias: tensor<2x1xf32>) {
  // expected-error@+2 {{'kiln.fused_matmul' op expected extra operand 0 (bias) to broadcast along dim 1 of the result (4 channels), got [2, 1]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.fused_matmul %a, %b, %bias {epilogue = ["add_bias"]} : (tensor<2x8xf32>, tensor<8x4xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @fused_residual_shape(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %r: tensor<1x4x8x8xf32>) {
  // expected-error@+2 {{'kiln.fused_conv2d' op expected extra operand 0 (residual) of shape [1, 4, 6, 6], got [1, 4, 8, 8]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.fused_conv2d %x, %w, %r {epilogue = ["add_residual"]} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x6x6xf32>
  return
}

// -----

func.func @fused_scales(%a: tensor<2x8xf32>, %b: tensor<8x4xf32>) {
  // expected-error@+2 {{'kiln.fused_matmul' op epilogue has 1 scale steps, got 2 scales}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.fused_matmul %a, %b {epilogue = ["scale"], scales = [2.0, 3.0]} : (tensor<2x8xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @fused_batch_norm_param(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x1x1xf32>, %p: tensor<4xf32>, %q: tensor<3xf32>) {
  // expected-error@+2 {{'kiln.fused_conv2d' op expected extra operand 2 (batch_norm) of shape [4], got [3]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.fused_conv2d %x, %w, %p, %p, %q, %p {epilogue = ["batch_norm"], epsilons = [1.0e-05]} : (tensor<1x3x8x8xf32>, tensor<4x3x1x1xf32>, tensor<4xf32>, tensor<4xf32>, tensor<3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  return
}

// -----

func.func @fused_batch_norm_matmul(%a: tensor<2x4x8xf32>, %b: tensor<8x4xf32>, %p: tensor<4xf32>) {
  // expected-error@+2 {{'kiln.fused_matmul' op epilogue step 0 'batch_norm' needs the channels at dim 1}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.fused_matmul %a, %b, %p, %p, %p, %p {epilogue = ["batch_norm"], epsilons = [1.0e-05]} : (tensor<2x4x8xf32>, tensor<8x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4x4xf32>
  return
}

// -----

func.func @attention_heads(%q: tensor<1x6x8x16xf32>, %k: tensor<1x4x8x16xf32>) -> tensor<1x6x8x16xf32> {
  // expected-error@+2 {{'kiln.attention' op expected the query heads (6) to be a multiple of the key/value heads (4)}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.attention %q, %k, %k : (tensor<1x6x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x6x8x16xf32>
  return %0 : tensor<1x6x8x16xf32>
}

// -----

func.func @attention_depth(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x32xf32>) -> tensor<1x4x8x32xf32> {
  // expected-error@+2 {{'kiln.attention' op expected k of shape [1, Hk, Sk, 16] (batch and head dim of q), got [1, 4, 8, 32]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.attention %q, %k, %k : (tensor<1x4x8x16xf32>, tensor<1x4x8x32xf32>, tensor<1x4x8x32xf32>) -> tensor<1x4x8x32xf32>
  return %0 : tensor<1x4x8x32xf32>
}

// -----

func.func @attention_rank(%q: tensor<4x8x16xf32>) -> tensor<4x8x16xf32> {
  // expected-error@+2 {{'kiln.attention' op expected q of rank 4 [B, H, Sq, D], got rank 3}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.attention %q, %q, %q : (tensor<4x8x16xf32>, tensor<4x8x16xf32>, tensor<4x8x16xf32>) -> tensor<4x8x16xf32>
  return %0 : tensor<4x8x16xf32>
}

// -----

func.func @attention_mask(%q: tensor<1x4x8x16xf32>, %m: tensor<1x4x9x8xf32>) -> tensor<1x4x8x16xf32> {
  // expected-error@+2 {{'kiln.attention' op expected mask to broadcast to the scores' shape [1, 4, 8, 8], got [1, 4, 9, 8]}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.attention %q, %q, %q, %m : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x9x8xf32>) -> tensor<1x4x8x16xf32>
  return %0 : tensor<1x4x8x16xf32>
}

// -----

func.func @attention_mask_type(%q: tensor<1x4x8x16xf32>, %m: tensor<8x8xi32>) -> tensor<1x4x8x16xf32> {
  // expected-error@+2 {{'kiln.attention' op expected mask of element type f32 (additive) or i1 (boolean), got i32}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.attention %q, %q, %q, %m : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<8x8xi32>) -> tensor<1x4x8x16xf32>
  return %0 : tensor<1x4x8x16xf32>
}

// -----

func.func @attention_causal_in_mask_boolean(%q: tensor<1x4x8x16xf32>, %m: tensor<8x8xi1>) -> tensor<1x4x8x16xf32> {
  // expected-error@+2 {{'kiln.attention' op causal_in_mask needs an additive mask}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.attention %q, %q, %q, %m {causal_in_mask = true} : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<8x8xi1>) -> tensor<1x4x8x16xf32>
  return %0 : tensor<1x4x8x16xf32>
}

// -----

func.func @attention_causal_in_mask_and_causal(%q: tensor<1x4x8x16xf32>, %m: tensor<8x8xf32>) -> tensor<1x4x8x16xf32> {
  // expected-error@+2 {{'kiln.attention' op causal_in_mask needs causal = false (with causal, the keys above the diagonal are dropped anyway)}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.attention %q, %q, %q, %m {causal = true, causal_in_mask = true} : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<8x8xf32>) -> tensor<1x4x8x16xf32>
  return %0 : tensor<1x4x8x16xf32>
}

// -----

func.func @attention_softcap(%q: tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> {
  // expected-error@+2 {{'kiln.attention' op expected a finite, positive softcap}}
  // expected-error@+1 {{failed to infer returned types}}
  %0 = kiln.attention %q, %q, %q {softcap = -2.0 : f64} : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %0 : tensor<1x4x8x16xf32>
}
