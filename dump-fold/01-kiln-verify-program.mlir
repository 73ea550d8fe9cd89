// IR after kiln-verify-program
module {
  func.func @fold(%arg0: tensor<2x3xf32> {kiln.name = "x"}) -> (tensor<2x3xf32> {kiln.name = "y"}) {
    %0 = kiln.constant dense<1.000000e+00> : tensor<f32>
    %1 = kiln.mul %arg0, %0 : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
    %2 = kiln.constant dense<0.000000e+00> : tensor<f32>
    %3 = kiln.add %1, %2 : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
    %4 = kiln.transpose %3 {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
    %5 = kiln.transpose %4 {perm = array<i64: 1, 0>} : (tensor<3x2xf32>) -> tensor<2x3xf32>
    %6 = kiln.relu %5 : tensor<2x3xf32>
    return %6 : tensor<2x3xf32>
  }
}
