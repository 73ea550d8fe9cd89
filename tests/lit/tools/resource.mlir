// Constants stored as dense_resource blobs compile and run like dense ones.
// RUN: kilnc %s -o %t.kiln
// RUN: kiln-run %t.kiln --summary | FileCheck %s
// CHECK: output y: f32 [2] sum=4 abs-sum=4

func.func @res(%x: tensor<2xf32> {kiln.name = "x"}) -> (tensor<2xf32> {kiln.name = "y"}) {
  %c = kiln.constant dense_resource<two> : tensor<2xf32>
  %0 = kiln.mul %x, %c : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  %1 = kiln.sub %c, %0 : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  %2 = kiln.add %1, %0 : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return %2 : tensor<2xf32>
}

{-#
  dialect_resources: {
    builtin: {
      two: "0x040000000000004000000040"
    }
  }
#-}
