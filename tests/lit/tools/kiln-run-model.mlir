// kiln-run compiles .mlir and .onnx models in process, then runs them.
// REQUIRES: onnx-testdata
// RUN: kiln-run %S/Inputs/noparams.mlir --summary | FileCheck %s --check-prefix=MLIR
// MLIR: kiln-run: model 'noparams' on cpu
// MLIR: output y: f32 [2, 3]

// RUN: kiln-run %S/Inputs/noparams.mlir --backend reference --summary | FileCheck %s --check-prefix=REF
// REF: on reference

// RUN: kiln-run %onnx_node/test_relu/model.onnx --input x=%onnx_node/test_relu/test_data_set_0/input_0.pb --output-dir %t.relu --summary | FileCheck %s --check-prefix=ONNX
// ONNX: model 'test_relu' on cpu
// ONNX: output y: f32 [3, 4, 5]

// Models with missing weights or bad shapes fail with the compiler's message.
// RUN: not kiln-run %S/Inputs/model.mlir 2>&1 | FileCheck %s --check-prefix=WEIGHTS
// WEIGHTS: missing weight 'w'
// RUN: not kiln-run %S/Inputs/noparams.mlir --input-shape x=1x2 2>&1 | FileCheck %s --check-prefix=SHAPEOPT
// SHAPEOPT: --input-shape applies to .onnx models only
// RUN: not kilnc %onnx_node/test_relu/model.onnx --input-shape x=99999999999999999999 2>&1 | FileCheck %s --check-prefix=BIGDIM
// BIGDIM: --input-shape expects NAME=D0xD1x...
