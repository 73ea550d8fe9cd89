//===- Passes.td - Kiln pass declarations ------------------*- tablegen -*-===//
//
// Every kiln pass is declared here, with its flag, summary, options and a
// description of what it rewrites; Passes.h includes the generated
// declarations and registration.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_TD
#define KILN_PASSES_TD

include "mlir/Pass/PassBase.td"

def VerifyProgramPass : Pass<"kiln-verify-program", "mlir::ModuleOp"> {
  let summary = "Check that a module is a model kiln can compile";
  let description = [{
    The first pass of the pipeline. It checks, and reports every violation at
    once rather than only the first:

    - the module holds exactly one public `func.func` (the model);
    - every op in it is a `kiln` op or `func.return` (unsupported ops are
      listed with their counts and first locations);
    - every value is a ranked tensor with a static shape and an element type
      kiln supports (f32, f16, bf16, f64, i64, i32, i8, ui8, i1);
    - argument names (`kiln.param` for weights, `kiln.name` for inputs) and
      result names (`kiln.name`) are unique.

    Example of a rejected module:

    ```mlir
    func.func @m(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
      %y = arith.addf %x, %x : tensor<?x4xf32>
      return %y : tensor<?x4xf32>
    }
    // error: 'arith.addf' (1 use) is not a kiln op
    // error: argument 0 has a dynamic shape: tensor<?x4xf32>
    ```
  }];
}

#endif // KILN_PASSES_TD
