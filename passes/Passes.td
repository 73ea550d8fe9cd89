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

def RaiseCompositesPass : Pass<"kiln-raise-composites", "mlir::ModuleOp"> {
  let summary = "Replace op chains that spell out gelu or rms_norm with the op";
  let description = [{
    Exporters write some operations as chains of elementary ops, each a pass
    over the whole activation when run as written. This pass replaces them
    with the one kiln op that computes the same function:

    - `x * 0.5 * (1 + erf(x / sqrt(2)))` => `kiln.gelu` (PyTorch's
      TorchScript exporter writes `F.gelu` this way below opset 20: HF BERT,
      RoBERTa, DeBERTa, ELECTRA, ALBERT);
    - `0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))` =>
      `kiln.gelu {approximate = "tanh"}` (HF's `gelu_new`: GPT-2);
    - `w * (x * (1 / sqrt(mean(x^2, -1) + eps)))` => `kiln.rms_norm` with
      `epsilon = eps` (HF's LLaMA, Mistral, Qwen, Gemma, T5 RMSNorm), with a
      weight of shape `[D]`.

    Muls and adds match in any order and association; `x / sqrt(2)` also as
    a multiplication by `1 / sqrt(2)`, `x^3` as `pow` or `x * x * x`, `x^2`
    as `pow` or `x * x`, `1 / sqrt` as `rsqrt`, `reciprocal` or a division.
    Every intermediate must have no other use. Constants match to f32
    precision. The raised ops compute the same function; on the reference
    backend `rms_norm` accumulates its mean in f64 where the chain used the
    element type, so results can differ in the last bits.

    Example:

    ```mlir
    %0 = kiln.div %x, %sqrt2 : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
    %1 = kiln.erf %0 : tensor<8x32xf32>
    %2 = kiln.add %1, %one : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
    %3 = kiln.mul %x, %2 : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
    %y = kiln.mul %3, %half : (tensor<8x32xf32>, tensor<f32>) -> tensor<8x32xf32>
    // becomes
    %y = kiln.gelu %x : tensor<8x32xf32>
    ```
  }];
  let dependentDialects = ["kiln::KilnDialect"];
  let options = [
    Option<"remarks", "remarks", "bool", /*default=*/"false",
           "Emit a remark for every raised op">
  ];
}

def FuseAttentionPass : Pass<"kiln-fuse-attention", "mlir::ModuleOp"> {
  let summary = "Rewrite matmul -> scale -> mask -> softmax -> matmul into "
                "kiln.attention";
  let description = [{
    Finds scaled dot-product attention written as separate ops and replaces
    it with one `kiln.attention`, whose kernels never materialize the
    `Sq x Sk` score matrix. Every last-axis `kiln.softmax` whose input comes
    from a matmul, or whose result feeds one, is a candidate. The pass first
    puts a candidate into one canonical form and then matches that form:

    - scale: `mul` / `div` by a splat constant anywhere between the two
      matmuls, or on `q` / `k` before the first matmul (also before their
      head-split reshapes and transposes), multiply into `scale`; a factor
      the same for every key (last dim 1: a per-head logit scale, a scalar
      computed at run time) before any mask moves onto `q`;
    - `k` as `matmul {transpose_b}` or through an explicit transpose (any
      permutation that ends in swapping the last two dims; transposes of
      transposes fold); `v` likewise;
    - casts between float types around the softmax are absorbed (the kernel
      accumulates in f32);
    - masks: `add(scores, m)` (and `sub(scores, m)`, negated) is an
      additive mask (scaled by any scale that follows it);
      `where(c, scores, fill)` / `where(c, fill, scores)` with a splat fill
      <= -1e4 (-inf, -1e9, the float minimum) is a boolean mask (true keeps /
      true masks). A mask that is the causal pattern (computed from constants
      only: a triangular constant, a slice of one, or a comparison of index
      constants, the same for every batch and head) becomes `causal = true`
      instead, and so does the causal part of a mask that combines one with
      others (`a + b`, `where(c, fill, a)`, boolean `and` / `or` / `not`);
      an additive mask of zeros is dropped; a second matmul added to the
      scores becomes an additive mask;
    - softmax written out, `exp(x - max(x)) / sum(exp(x - max(x)))` along
      the last axis, is taken as `softmax(x)`;
    - grouped-query heads repeated with `reshape -> broadcast_to -> reshape`
      (how PyTorch's `repeat_kv` exports), or any chain of reshapes and
      broadcasts that repeats each head in turn (`repeat_interleave`, one
      head expanded for multi-query attention), become `k` / `v` with fewer
      heads;
    - scores of rank 2 or 3 (`[S, S]`, `[B*H, S, S]`) get unit dims in front;
      reshapes that only regroup the leading dims may sit between the
      matmuls and the softmax (`[B*H, S, S]` <-> `[B, H, S, S]`; up to rank 6
      before the softmax, as Swin's `[B, W, H, N, N]`).

    A candidate is not fused, with a remark saying why, when an
    intermediate value is used elsewhere (e.g. the attention probabilities
    are returned), a step is not one of the above, the masks would broadcast
    the scores to a larger shape, or `q`/`k` and `v` have different element
    types. A fused candidate whose key count is below `min-keys` is kept
    unfused: the compile-time choice between the fused kernel and the
    decomposed one, set per target by the pipeline from measurement.

    The fused op differs from the decomposed ops only in rows where every
    key is masked out: it yields zeros there (see `kiln.attention`).

    Example:

    ```mlir
    %s = kiln.matmul %q, %k {transpose_b = true} : ... -> tensor<1x12x128x128xf32>
    %t = kiln.mul %s, %c0_125 : ...
    %u = kiln.add %t, %causal_mask : ...   // 0 on and below the diagonal, -inf above
    %p = kiln.softmax %u : tensor<1x12x128x128xf32>
    %o = kiln.matmul %p, %v : ... -> tensor<1x12x128x64xf32>
    // becomes
    %o = kiln.attention %q, %k, %v {causal = true, scale = 1.250000e-01 : f64}
        : (...) -> tensor<1x12x128x64xf32>
    ```
  }];
  let dependentDialects = ["kiln::KilnDialect"];
  let options = [
    Option<"remarks", "remarks", "bool", /*default=*/"false",
           "Emit a remark for every fused block and every candidate that is "
           "not fused, saying why">,
    Option<"minKeys", "min-keys", "int64_t", /*default=*/"0",
           "Keep attention with fewer keys than this unfused (the decomposed "
           "kernels are faster there)">
  ];
  let statistics = [
    Statistic<"numFused", "fused", "attention blocks fused">,
    Statistic<"numRejected", "rejected", "candidates that do not match">,
    Statistic<"numKeptUnfused", "kept-unfused",
              "candidates kept unfused below min-keys">
  ];
}

def FuseEpiloguesPass : Pass<"kiln-fuse-epilogues", "mlir::ModuleOp"> {
  let summary = "Fuse bias, scale, activation and residual into matmul/conv2d";
  let description = [{
    The last pass of the pipeline. Pointwise ops that follow a `kiln.matmul`
    or `kiln.conv2d` become steps of a `kiln.fused_matmul` /
    `kiln.fused_conv2d` epilogue, which the cpu backend runs as oneDNN
    post-ops. The rewrites, applied greedily so that chains grow one step at
    a time (`anchor` is a matmul, conv2d or an already fused op):

    - `add(anchor, bias)` => `fused(..., bias) {epilogue = [..., "add_bias"]}`
      where `bias` broadcasts along the last dim (matmul) or dim 1 (conv2d);
    - `add(anchor, r)` => `fused(..., r) {epilogue = [..., "add_residual"]}`
      where `r` has the result's type;
    - `mul(anchor, splat constant c)` => `fused {epilogue = [..., "scale"],
      scales = [..., c]}`;
    - `relu | gelu | silu | tanh | sigmoid (anchor)` => `fused {epilogue =
      [..., "<activation>"]}` (`gelu {approximate = "tanh"}` is `gelu_tanh`);
    - `batch_norm(conv anchor, s, b, m, v)` => `fused_conv2d(..., s, b, m, v)
      {epilogue = [..., "batch_norm"], epsilons = [..., eps]}`;
    - `kiln.conv2d` with a bias operand becomes `fused_conv2d` whose epilogue
      starts with `add_bias`.

    A step is fused only when the anchor's result has that single use (the
    unfused value would otherwise still be needed) and has a float type.

    Example:

    ```mlir
    %h = kiln.matmul %x, %w : (tensor<2x8xf32>, tensor<8x16xf32>) -> tensor<2x16xf32>
    %b = kiln.add %h, %bias : (tensor<2x16xf32>, tensor<16xf32>) -> tensor<2x16xf32>
    %y = kiln.gelu %b : tensor<2x16xf32>
    // becomes
    %y = kiln.fused_matmul %x, %w, %bias {epilogue = ["add_bias", "gelu"]}
        : (tensor<2x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<2x16xf32>
    ```
  }];
  let dependentDialects = ["kiln::KilnDialect"];
  let options = [
    Option<"remarks", "remarks", "bool", /*default=*/"false",
           "Emit a remark for every fused step and every candidate that is "
           "not fused, saying why">
  ];
}

#endif // KILN_PASSES_TD
