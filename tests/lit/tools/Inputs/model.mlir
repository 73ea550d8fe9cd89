func.func @small(%x: tensor<2x3xf32> {kiln.name = "x"},
                 %w: tensor<3x4xf32> {kiln.param = "w"}) -> (tensor<2x4xf32> {kiln.name = "y"}) {
  %0 = kiln.matmul %x, %w : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  %1 = kiln.gelu %0 {approximate = "tanh"} : tensor<2x4xf32>
  return %1 : tensor<2x4xf32>
}
