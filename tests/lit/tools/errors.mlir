// Bad arguments and bad files: one clear message and a non-zero exit.
// RUN: not kilnc 2>&1 | FileCheck %s --check-prefix=NOINPUT
// NOINPUT: kilnc: error: no input: give --model NAME or a .mlir file

// RUN: not kilnc --model nope 2>&1 | FileCheck %s --check-prefix=BADMODEL
// BADMODEL: unknown model 'nope'; known models: mlp, gpt, gpt2-small

// RUN: not kilnc --model gpt --frobnicate 2>&1 | FileCheck %s --check-prefix=BADOPT
// BADOPT: kilnc: error: unknown option '--frobnicate'

// RUN: not kilnc --model gpt --batch x 2>&1 | FileCheck %s --check-prefix=BADINT
// BADINT: option --batch expects an integer, got 'x'

// RUN: not kilnc --model gpt --emit=llvm 2>&1 | FileCheck %s --check-prefix=BADEMIT
// BADEMIT: --emit must be artifact, mlir, mlir-input or plan

// RUN: not kilnc %s.missing 2>&1 | FileCheck %s --check-prefix=NOFILE
// NOFILE: cannot open

// RUN: not kilnc --model gpt --target tpu 2>&1 | FileCheck %s --check-prefix=TARGET
// TARGET: unknown target 'tpu'; available: reference

// A syntax error names the file and line.
// RUN: echo "func.func @f( {" > %t.bad.mlir
// RUN: not kilnc %t.bad.mlir 2>&1 | FileCheck %s --check-prefix=SYNTAX
// SYNTAX: bad.mlir:1:

// kiln-run on files that are not artifacts, truncated or corrupted ones.
// RUN: echo "not an artifact" > %t.notart
// RUN: not kiln-run %t.notart 2>&1 | FileCheck %s --check-prefix=NOTART
// NOTART: kiln-run: error: artifact '{{.*}}notart'
// RUN: not kiln-run %s 2>&1 | FileCheck %s --check-prefix=NOFUNC
// NOFUNC: kiln-run: error: '{{.*}}errors.mlir': module has no public function
// RUN: kilnc --model mlp -q -o %t.kiln
// RUN: head -c 2000 %t.kiln > %t.trunc.kiln
// RUN: not kiln-run %t.trunc.kiln 2>&1 | FileCheck %s --check-prefix=TRUNC
// TRUNC: kiln-run: error: {{.*}}trunc.kiln
// RUN: not kiln-run %t.kiln --backend gpu 2>&1 | FileCheck %s --check-prefix=BACKEND
// BACKEND: unknown backend 'gpu'
// RUN: not kiln-run %t.kiln --input nope=x.npy 2>&1 | FileCheck %s --check-prefix=NOINPUTNAME
// NOINPUTNAME: the model has no input 'nope'; its inputs are: x
// RUN: not kiln-run %t.kiln --input x=%t.none.npy 2>&1 | FileCheck %s --check-prefix=NONPY
// NONPY: input 'x':

// A wrong-shaped input: the mlp's own [1, 10] output fed back as its input.
// RUN: rm -rf %t.out && kiln-run %t.kiln --output-dir %t.out
// RUN: not kiln-run %t.kiln --input x=%t.out/logits.npy 2>&1 | FileCheck %s --check-prefix=SHAPE
// SHAPE: input 'x': expected f32 [1, 784], got f32 [1, 10]

// Options that do not apply are refused, not ignored.
// RUN: not kilnc %S/Inputs/model.mlir --batch 2 2>&1 | FileCheck %s --check-prefix=BATCHMLIR
// BATCHMLIR: --batch and --seq apply to --model only
// RUN: not kilnc --model gpt --random-weights 2>&1 | FileCheck %s --check-prefix=RANDZOO
// RUN: not kilnc --model mlp --seq 8 2>&1 | FileCheck %s --check-prefix=SEQ
// SEQ: model 'mlp' has no sequence length
// RANDZOO: --random-weights applies to .mlir input only
// RUN: not kilnc --model gpt --batch 0 2>&1 | FileCheck %s --check-prefix=ZERO
// ZERO: --batch and --seq must be positive
// RUN: not kilnc --model gpt --batch 99999999999999999999 2>&1 | FileCheck %s --check-prefix=RANGE
// RANGE: option --batch is out of range
// RUN: not kilnc --model mlp --batch 4611686018427387904 2>&1 | FileCheck %s --check-prefix=HUGE
// HUGE: is too large (its byte size overflows)
// RUN: not kilnc %S 2>&1 | FileCheck %s --check-prefix=DIR
// DIR: is a directory
// RUN: not kiln-run %t.kiln --input x=a.npy --input x=b.npy 2>&1 | FileCheck %s --check-prefix=TWICE
// TWICE: input 'x' is given twice

// --emit writes to -o when given.
// RUN: kilnc --model mlp --emit=plan -o %t.plan.txt
// RUN: FileCheck %s --check-prefix=PLANFILE < %t.plan.txt
// PLANFILE: program 'mlp'

// --dump-ir-dir never deletes files it did not write.
// RUN: rm -rf %t.mine && mkdir -p %t.mine && cp %S/Inputs/model.mlir %t.mine/model.mlir
// RUN: echo "// mine" > %t.mine/01-notes.mlir
// RUN: kilnc %t.mine/model.mlir --random-weights -q -o %t.mine/m.kiln --dump-ir-dir %t.mine
// RUN: kilnc %t.mine/model.mlir --random-weights -q -o %t.mine/m.kiln --dump-ir-dir %t.mine
// RUN: ls %t.mine | FileCheck %s --check-prefix=KEPT
// KEPT: 00-input.mlir
// KEPT: 01-notes.mlir
// KEPT: model.mlir
