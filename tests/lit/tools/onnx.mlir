// kilnc on ONNX models from the ONNX backend test data: the imported kiln
// IR of compositions (Trilu, GatherElements), node names as locations, and
// the error that lists unsupported ops.
// REQUIRES: onnx-testdata
// RUN: kilnc %onnx_node/test_tril/model.onnx --emit=mlir-input --debug-locations | FileCheck %s --check-prefix=TRILU
// TRILU-LABEL: func.func @test_tril
// TRILU-SAME: tensor<4x5xi64> {kiln.name = "x"}
// TRILU: %[[MASK:.*]] = kiln.constant dense<{{\[\[}}true, false, false, false, false], [true, true, false, false, false]{{.*}}> : tensor<4x5xi1> loc(#[[LOC:loc[0-9]*]])
// TRILU: kiln.where %[[MASK]], %arg0, %{{.*}} : (tensor<4x5xi1>, tensor<4x5xi64>, tensor<i64>) -> tensor<4x5xi64> loc(#[[LOC]])
// TRILU: #[[LOC]] = loc("Trilu_0"(

// RUN: kilnc %onnx_node/test_gather_elements_negative_indices/model.onnx --emit=mlir-input | FileCheck %s --check-prefix=GATHER
// GATHER-LABEL: func.func @test_gather_elements_negative_indices
// GATHER: %[[FLAT:.*]] = kiln.reshape %arg0 {{.*}} -> tensor<9xf32>
// GATHER: kiln.gather %[[FLAT]], %{{.*}} : (tensor<9xf32>, tensor<2x3xi64>) -> tensor<2x3xf32>

// The whole pipeline runs on the imported IR.
// RUN: kilnc %onnx_node/test_tril/model.onnx -o %t.kiln | FileCheck %s --check-prefix=SUMMARY
// SUMMARY: compiled 'test_tril'

// Unsupported ops are listed by type, with their opset and first node, and
// an unsupported feature of a supported op says which.
// RUN: not kilnc %onnx_node/test_top_k/model.onnx -o %t.kiln 2>&1 | FileCheck %s --check-prefix=MISSING-OPS
// MISSING-OPS: kilnc: error: unsupported ONNX ops in 'model.onnx' (1 op type, 1 node):
// MISSING-OPS-NEXT: TopK (opset 11): 1 node, first: 'TopK_0'

// RUN: not kilnc %onnx_node/test_resize_tf_crop_and_resize/model.onnx -o %t.kiln 2>&1 | FileCheck %s --check-prefix=FEATURE
// FEATURE: kilnc: error: unsupported ONNX ops in 'model.onnx' (1 op type, 1 node):
// FEATURE-NEXT: Resize (opset 13): 1 node, first: 'Resize_0' (coordinate_transformation_mode 'tf_crop_and_resize')
