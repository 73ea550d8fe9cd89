// kiln-run --memory: one parseable line of resident memory, in KiB (Linux).
// The numbers vary from run to run; only the line's form and the exact
// fields (arena, weights, inputs: from the Program) are checked.
// REQUIRES: system-linux
// RUN: kilnc %s -q -o %t.kiln
// RUN: kiln-run %t.kiln --memory | FileCheck %s
// CHECK: kiln-run: memory: start {{[0-9]+}} KiB, loaded {{[0-9]+}} KiB, peak {{[0-9]+}} KiB, peak extra {{-?[0-9]+}} KiB (arena 256 KiB, weights 0 KiB, inputs 256 KiB){{$}}

// After --bench's runs, so that the peak covers them.
// RUN: kiln-run %t.kiln --bench 2 --memory | FileCheck %s --check-prefix=BENCH
// BENCH: kiln-run: 2 runs on {{.*}}: median
// BENCH-NEXT: kiln-run: memory: start {{[0-9]+}} KiB, loaded {{[0-9]+}} KiB, peak {{[0-9]+}} KiB, peak extra

// RUN: kiln-run --help | FileCheck %s --check-prefix=HELP
// HELP: --memory {{.*}}Linux only
// HELP: peak extra =

// The arena (one 256x256 f32 intermediate, 256 KiB) is zero-filled at load,
// so it is resident before the first run.
func.func @memory(%x: tensor<256x256xf32> {kiln.name = "x"}) -> (tensor<256x256xf32> {kiln.name = "y"}) {
  %0 = kiln.exp %x : tensor<256x256xf32>
  %1 = kiln.tanh %0 : tensor<256x256xf32>
  return %1 : tensor<256x256xf32>
}
