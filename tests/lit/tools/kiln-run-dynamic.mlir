// kiln-run on an ONNX model with a dynamic dim ('batch'): an input given as
// a file fixes it, --input-shape still overrides, and without either the
// error says what to give.
// RUN: kiln-run %S/Inputs/dynamic_relu.onnx --input x=%S/Inputs/x_3x4.npy --summary | FileCheck %s
// CHECK: input  x: f32 [3, 4]
// CHECK: output y: f32 [3, 4] sum=18 abs-sum=18

// RUN: not kiln-run %S/Inputs/dynamic_relu.onnx 2>&1 | FileCheck %s --check-prefix=NONE
// NONE: input 'x' has dynamic dim 0 'batch'; give its shape with --input-shape x=D0xD1x...

// RUN: not kiln-run %S/Inputs/dynamic_relu.onnx --input x=%S/Inputs/x_3x4.npy --input-shape x=2x4 2>&1 | FileCheck %s --check-prefix=BOTH
// BOTH: input 'x': expected f32 [2, 4], got f32 [3, 4]

// A misspelt input name is reported before the missing shape it causes.
// RUN: not kiln-run %S/Inputs/dynamic_relu.onnx --input z=%S/Inputs/x_3x4.npy 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// UNKNOWN: a value is given for 'z', which is not a graph input; the graph's inputs are: x

// A file whose rank or declared dim does not fit says its shape.
// RUN: not kiln-run %S/Inputs/dynamic_relu.onnx --input x=%S/Inputs/v_5.npy 2>&1 | FileCheck %s --check-prefix=RANK
// RANK: input 'x' has rank 2, the value given for it has shape [5]
// RUN: not kiln-run %S/Inputs/dynamic_relu.onnx --input x=%S/Inputs/v_2x5.npy 2>&1 | FileCheck %s --check-prefix=DIM
// DIM: input 'x' declares dim 1 = 4, the value given for it has shape [2, 5]
