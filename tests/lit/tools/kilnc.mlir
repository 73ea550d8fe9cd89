// kilnc on a .mlir file: every --emit kind, the artifact, and IR dumps.
// RUN: kilnc %S/Inputs/model.mlir --emit=mlir-input | FileCheck %s --check-prefix=INPUT
// INPUT: func.func @small
// INPUT: kiln.gelu

// RUN: kilnc %S/Inputs/model.mlir --emit=mlir --random-weights | FileCheck %s --check-prefix=MLIR
// "-o -" is stdout for text, as for other Unix tools; nothing named "-".
// RUN: rm -rf %t.stdout && mkdir %t.stdout && cd %t.stdout
// RUN: kilnc %S/Inputs/model.mlir --emit=mlir --random-weights -o - | FileCheck %s --check-prefix=MLIR
// RUN: not ls %t.stdout/-
// RUN: not kilnc %S/Inputs/model.mlir --random-weights -o - 2>&1 | FileCheck %s --check-prefix=BINARY
// BINARY: kilnc: error: the artifact is binary and is not written to stdout
// MLIR-LABEL: func.func @small
// MLIR: kiln.fused_matmul {{.*}}epilogue = ["gelu_tanh"]

// RUN: kilnc %S/Inputs/model.mlir --emit=mlir --random-weights --no-fuse-epilogues | FileCheck %s --check-prefix=UNFUSED
// UNFUSED-LABEL: func.func @small
// UNFUSED: kiln.matmul
// UNFUSED: kiln.gelu {{.*}}approximate = "tanh"

// RUN: kilnc %S/Inputs/model.mlir --emit=plan --random-weights | FileCheck %s --check-prefix=PLAN
// PLAN: program 'small'
// PLAN: input 'x'
// PLAN: param 'w'
// PLAN: output 'y'
// PLAN: fused_matmul(

// Weights are required unless --random-weights says otherwise.
// RUN: not kilnc %S/Inputs/model.mlir -o %t.kiln 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: missing weight 'w' (f32 [3, 4])

// RUN: rm -rf %t.dumps
// RUN: kilnc %S/Inputs/model.mlir --random-weights -o %t.kiln --dump-ir-dir %t.dumps | FileCheck %s --check-prefix=SUMMARY
// SUMMARY: compiled 'small'
// SUMMARY: parameters: 12
// SUMMARY: arena:
// SUMMARY: IR dumps: {{.*}}dumps
// RUN: ls %t.dumps | FileCheck %s --check-prefix=DUMPS
// DUMPS: 00-input.mlir
// DUMPS-NEXT: 01-kiln-verify-program.mlir
// DUMPS-NEXT: 02-canonicalize.mlir
// DUMPS-NEXT: 03-cse.mlir
// DUMPS-NEXT: 04-kiln-raise-composites.mlir
// DUMPS-NEXT: 05-kiln-fuse-attention.mlir
// DUMPS-NEXT: 06-canonicalize.mlir
// DUMPS-NEXT: 07-kiln-fuse-epilogues.mlir
// DUMPS-NEXT: program.txt

// The artifact runs; outputs land as .npy files.
// RUN: rm -rf %t.out
// RUN: kiln-run %t.kiln --summary --output-dir %t.out | FileCheck %s --check-prefix=EXEC
// RUN: ls %t.out | FileCheck %s --check-prefix=FILES
// EXEC: input  x: f32 [2, 3] (random, seed 0)
// EXEC: output y: f32 [2, 4]
// FILES: y.npy

// Zoo models with overrides.
// RUN: kilnc --model gpt --batch 2 --seq 8 --emit=plan | FileCheck %s --check-prefix=ZOO
// ZOO: %0 i64[2, 8] input 'tokens'
// ZOO: output 'logits'
