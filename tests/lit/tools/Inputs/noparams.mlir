func.func @noparams(%x: tensor<2x3xf32> {kiln.name = "x"}) -> (tensor<2x3xf32> {kiln.name = "y"}) {
  %0 = kiln.relu %x : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}
