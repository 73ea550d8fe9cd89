// Every kiln folder, exercised through --canonicalize.
// RUN: kiln-opt %s --canonicalize --split-input-file | FileCheck %s

// transpose(transpose(x, p), q) = transpose(x, p∘q)
// CHECK-LABEL: func.func @transpose_transpose
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK: %[[T:.*]] = kiln.transpose %[[X]] {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
// CHECK-NEXT: return %[[T]]
func.func @transpose_transpose(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = kiln.transpose %x {perm = array<i64: 1, 2, 0>} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %1 = kiln.transpose %0 {perm = array<i64: 1, 2, 0>} : (tensor<3x4x2xf32>) -> tensor<4x2x3xf32>
  return %1 : tensor<4x2x3xf32>
}

// -----

// transpose(transpose(x, p), p^-1) = x
// CHECK-LABEL: func.func @transpose_inverse
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK-NEXT: return %[[X]]
func.func @transpose_inverse(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %0 = kiln.transpose %x {perm = array<i64: 1, 2, 0>} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %1 = kiln.transpose %0 {perm = array<i64: 2, 0, 1>} : (tensor<3x4x2xf32>) -> tensor<2x3x4xf32>
  return %1 : tensor<2x3x4xf32>
}

// -----

// transpose(x, identity) = x
// CHECK-LABEL: func.func @transpose_identity
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @transpose_identity(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = kiln.transpose %x {perm = array<i64: 0, 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// reshape(reshape(x, s1), s2) = reshape(x, s2)
// CHECK-LABEL: func.func @reshape_reshape
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4xf32>)
// CHECK: %[[R:.*]] = kiln.reshape %[[X]] {shape = array<i64: 4, 6>} : (tensor<2x3x4xf32>) -> tensor<4x6xf32>
// CHECK-NEXT: return %[[R]]
func.func @reshape_reshape(%x: tensor<2x3x4xf32>) -> tensor<4x6xf32> {
  %0 = kiln.reshape %x {shape = array<i64: 24>} : (tensor<2x3x4xf32>) -> tensor<24xf32>
  %1 = kiln.reshape %0 {shape = array<i64: 4, 6>} : (tensor<24xf32>) -> tensor<4x6xf32>
  return %1 : tensor<4x6xf32>
}

// -----

// reshape(x: T, shape(T)) = x, also through a chain back to x's shape
// CHECK-LABEL: func.func @reshape_same_type
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]], %[[X]]
func.func @reshape_same_type(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>) {
  %0 = kiln.reshape %x {shape = array<i64: 2, 3>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = kiln.reshape %x {shape = array<i64: 6>} : (tensor<2x3xf32>) -> tensor<6xf32>
  %2 = kiln.reshape %1 {shape = array<i64: 2, 3>} : (tensor<6xf32>) -> tensor<2x3xf32>
  return %0, %2 : tensor<2x3xf32>, tensor<2x3xf32>
}

// -----

// cast(x: T, T) = x
// CHECK-LABEL: func.func @cast_same_type
// CHECK-SAME: (%[[X:.*]]: tensor<4xf32>)
// CHECK-NEXT: return %[[X]]
func.func @cast_same_type(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = kiln.cast %x {dtype = f32} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// cast(cast(x: A, B), A) = x when A -> B is exact
// CHECK-LABEL: func.func @cast_roundtrip_exact
// CHECK-SAME: (%[[B:.*]]: tensor<4xbf16>, %[[F:.*]]: tensor<4xf32>, %[[I:.*]]: tensor<4xi8>)
// CHECK-NEXT: return %[[B]], %[[F]], %[[I]]
func.func @cast_roundtrip_exact(%b: tensor<4xbf16>, %f: tensor<4xf32>, %i: tensor<4xi8>)
    -> (tensor<4xbf16>, tensor<4xf32>, tensor<4xi8>) {
  %0 = kiln.cast %b {dtype = f32} : (tensor<4xbf16>) -> tensor<4xf32>
  %1 = kiln.cast %0 {dtype = bf16} : (tensor<4xf32>) -> tensor<4xbf16>
  %2 = kiln.cast %f {dtype = f64} : (tensor<4xf32>) -> tensor<4xf64>
  %3 = kiln.cast %2 {dtype = f32} : (tensor<4xf64>) -> tensor<4xf32>
  %4 = kiln.cast %i {dtype = f16} : (tensor<4xi8>) -> tensor<4xf16>
  %5 = kiln.cast %4 {dtype = i8} : (tensor<4xf16>) -> tensor<4xi8>
  return %1, %3, %5 : tensor<4xbf16>, tensor<4xf32>, tensor<4xi8>
}

// -----

// cast(cast(x: A, B), C) = cast(x, C) when A -> B is exact
// CHECK-LABEL: func.func @cast_cast_skip_exact
// CHECK-SAME: (%[[X:.*]]: tensor<4xf16>)
// CHECK-NEXT: %[[C:.*]] = kiln.cast %[[X]] {dtype = i32} : (tensor<4xf16>) -> tensor<4xi32>
// CHECK-NEXT: return %[[C]]
func.func @cast_cast_skip_exact(%x: tensor<4xf16>) -> tensor<4xi32> {
  %0 = kiln.cast %x {dtype = f32} : (tensor<4xf16>) -> tensor<4xf32>
  %1 = kiln.cast %0 {dtype = i32} : (tensor<4xf32>) -> tensor<4xi32>
  return %1 : tensor<4xi32>
}

// -----

// f32 -> bf16 rounds, and f32 -> i32 truncates: these round trips must stay.
// CHECK-LABEL: func.func @cast_roundtrip_lossy
// CHECK: kiln.cast %{{.*}} {dtype = bf16}
// CHECK: kiln.cast %{{.*}} {dtype = f32}
// CHECK: kiln.cast %{{.*}} {dtype = i32}
// CHECK: kiln.cast %{{.*}} {dtype = f32}
// CHECK: kiln.cast %{{.*}} {dtype = bf16}
// CHECK: kiln.cast %{{.*}} {dtype = f16}
func.func @cast_roundtrip_lossy(%x: tensor<4xf32>, %h: tensor<4xf16>)
    -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf16>) {
  %0 = kiln.cast %x {dtype = bf16} : (tensor<4xf32>) -> tensor<4xbf16>
  %1 = kiln.cast %0 {dtype = f32} : (tensor<4xbf16>) -> tensor<4xf32>
  %2 = kiln.cast %x {dtype = i32} : (tensor<4xf32>) -> tensor<4xi32>
  %3 = kiln.cast %2 {dtype = f32} : (tensor<4xi32>) -> tensor<4xf32>
  %4 = kiln.cast %h {dtype = bf16} : (tensor<4xf16>) -> tensor<4xbf16>
  %5 = kiln.cast %4 {dtype = f16} : (tensor<4xbf16>) -> tensor<4xf16>
  return %1, %3, %5 : tensor<4xf32>, tensor<4xf32>, tensor<4xf16>
}

// -----

// add(x, 0) = add(0, x) = sub(x, 0) = mul(x, 1) = mul(1, x) = div(x, 1) = x
// CHECK-LABEL: func.func @identity_elements
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>, %[[I:.*]]: tensor<3xi32>)
// CHECK-NOT: kiln.
// CHECK: return %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[I]], %[[I]]
func.func @identity_elements(%x: tensor<2x3xf32>, %i: tensor<3xi32>)
    -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>,
        tensor<2x3xf32>, tensor<2x3xf32>, tensor<3xi32>, tensor<3xi32>) {
  %zero = kiln.constant dense<0.0> : tensor<3xf32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %izero = kiln.constant dense<0> : tensor<3xi32>
  %ione = kiln.constant dense<1> : tensor<3xi32>
  %0 = kiln.add %x, %zero : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = kiln.add %zero, %x : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %2 = kiln.sub %x, %zero : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %3 = kiln.mul %x, %one : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %4 = kiln.mul %one, %x : (tensor<f32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %5 = kiln.div %x, %one : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  %6 = kiln.add %i, %izero : (tensor<3xi32>, tensor<3xi32>) -> tensor<3xi32>
  %7 = kiln.mul %ione, %i : (tensor<3xi32>, tensor<3xi32>) -> tensor<3xi32>
  return %0, %1, %2, %3, %4, %5, %6, %7 : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<3xi32>, tensor<3xi32>
}

// -----

// The identities do not apply when the constant broadcasts x to a larger
// shape, is not a splat, or is not the identity element (0 - x, 1 / x).
// CHECK-LABEL: func.func @identity_elements_kept
// CHECK: kiln.add
// CHECK: kiln.mul
// CHECK: kiln.sub
// CHECK: kiln.div
func.func @identity_elements_kept(%x: tensor<3xf32>)
    -> (tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) {
  %zero = kiln.constant dense<0.0> : tensor<2x3xf32>
  %ramp = kiln.constant dense<[1.0, 2.0, 1.0]> : tensor<3xf32>
  %one = kiln.constant dense<1.0> : tensor<3xf32>
  %szero = kiln.constant dense<0.0> : tensor<3xf32>
  %0 = kiln.add %x, %zero : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %1 = kiln.mul %x, %ramp : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %2 = kiln.sub %szero, %x : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %3 = kiln.div %one, %x : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %0, %1, %2, %3 : tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>
}

// -----

// broadcast_to(x: T, shape(T)) = x
// CHECK-LABEL: func.func @broadcast_same_shape
// CHECK-SAME: (%[[X:.*]]: tensor<2x3xf32>)
// CHECK-NEXT: return %[[X]]
func.func @broadcast_same_shape(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = kiln.broadcast_to %x {shape = array<i64: 2, 3>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// Constants are ConstantLike: CSE merges equal ones, unused ones die, and
// canonicalize hoists them to the top of the block.
// CHECK-LABEL: func.func @constants
// CHECK-NEXT: %[[C:.*]] = kiln.constant dense<2.000000e+00> : tensor<4xf32>
// CHECK-NEXT: %[[S:.*]] = kiln.add %[[C]], %[[C]]
// CHECK-NEXT: return %[[S]]
func.func @constants() -> tensor<4xf32> {
  %unused = kiln.constant dense<7.0> : tensor<4xf32>
  %0 = kiln.constant dense<2.0> : tensor<4xf32>
  %1 = kiln.constant dense<2.0> : tensor<4xf32>
  %2 = kiln.add %0, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %2 : tensor<4xf32>
}

// -----

// Pure ops without uses are erased.
// CHECK-LABEL: func.func @dead_code
// CHECK-NEXT: return
func.func @dead_code(%x: tensor<4xf32>) {
  %0 = kiln.exp %x : tensor<4xf32>
  %1 = kiln.mul %x, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}
