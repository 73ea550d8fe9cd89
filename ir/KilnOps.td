//===- KilnOps.td - kiln dialect operations ------------------------------===//
//
// Every op of the kiln dialect, in the order of CONTRACT.md: elementwise,
// linear algebra and NN, reductions, shape ops, constants. Result types are
// inferred in KilnOps.cpp (`inferReturnTypes`); the same code is the verifier,
// so a builder that asks for the result type gets the verifier's diagnostic.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_KILNOPS_TD
#define KILN_IR_KILNOPS_TD

include "ir/KilnBase.td"

//===----------------------------------------------------------------------===//
// Elementwise unary
//===----------------------------------------------------------------------===//

// `extraClassDefinition` forwards inference to one shared helper.
class Kiln_UnaryOp<string mnemonic, Kiln_TensorOf tensorType, string kind,
                   string semantics, list<Trait> traits = []>
    : Kiln_Op<mnemonic, traits> {
  let summary = "elementwise " # mnemonic;
  let description = "Elementwise `" # semantics # "` on " # kind #
      " tensors; the result has the type of `x`.\n\n"
      "Example:\n\n```mlir\n%y = kiln." # mnemonic #
      " %x : tensor<2x4xf32>\n```";
  let arguments = (ins tensorType:$x);
  let results = (outs tensorType:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *context, std::optional<::mlir::Location> location,
        Adaptor adaptor,
        ::llvm::SmallVectorImpl<::mlir::Type> &inferredReturnTypes) {
      return ::kiln::detail::inferUnaryOp(location, getOperationName(),
          adaptor.getX().getType(), ::kiln::ElementKind::}] # kind # [{,
          inferredReturnTypes);
    }
  }];
}

class Kiln_SignedUnaryOp<string mnemonic, string semantics>
    : Kiln_UnaryOp<mnemonic, Kiln_SignedTensor, "Signed", semantics>;
class Kiln_FloatUnaryOp<string mnemonic, string semantics>
    : Kiln_UnaryOp<mnemonic, Kiln_FloatTensor, "Float", semantics>;

def Kiln_NegOp : Kiln_SignedUnaryOp<"neg", "-x">;
def Kiln_AbsOp : Kiln_SignedUnaryOp<"abs", "|x|">;
def Kiln_ReluOp : Kiln_SignedUnaryOp<"relu", "max(x, 0)">;
def Kiln_ExpOp : Kiln_FloatUnaryOp<"exp", "e^x">;
def Kiln_LogOp : Kiln_FloatUnaryOp<"log", "ln(x)">;
def Kiln_SqrtOp : Kiln_FloatUnaryOp<"sqrt", "sqrt(x)">;
def Kiln_RsqrtOp : Kiln_FloatUnaryOp<"rsqrt", "1 / sqrt(x)">;
def Kiln_TanhOp : Kiln_FloatUnaryOp<"tanh", "tanh(x)">;
def Kiln_SigmoidOp : Kiln_FloatUnaryOp<"sigmoid", "1 / (1 + e^-x)">;
def Kiln_SiluOp : Kiln_FloatUnaryOp<"silu", "x * sigmoid(x)">;
def Kiln_ErfOp : Kiln_FloatUnaryOp<"erf", "erf(x)">;
def Kiln_ReciprocalOp : Kiln_FloatUnaryOp<"reciprocal", "1 / x">;

// Trigonometric ops for the ONNX importer: Sin and Cos map onto them, Tan,
// Asin, Acos and Atan are compositions with atan (radians throughout).
def Kiln_SinOp : Kiln_FloatUnaryOp<"sin", "sin(x)">;
def Kiln_CosOp : Kiln_FloatUnaryOp<"cos", "cos(x)">;
def Kiln_AtanOp : Kiln_FloatUnaryOp<"atan", "atan(x), in (-pi/2, pi/2)">;

def Kiln_GeluOp : Kiln_Op<"gelu"> {
  let summary = "elementwise gelu";
  let description = [{
    Gaussian error linear unit on float tensors. `approximate` is `"none"`
    (`x * 0.5 * (1 + erf(x / sqrt(2)))`, the default) or `"tanh"`
    (`0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`).

    Example:

    ```mlir
    %y = kiln.gelu %x {approximate = "tanh"} : tensor<2x4xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$x,
                       DefaultValuedAttr<StrAttr, "\"none\"">:$approximate);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
}

//===----------------------------------------------------------------------===//
// Elementwise binary with NumPy broadcasting
//===----------------------------------------------------------------------===//

class Kiln_BinaryOp<string mnemonic, Kiln_TensorOf tensorType, string kind,
                    string semantics, list<Trait> traits = []>
    : Kiln_Op<mnemonic, traits> {
  let summary = "elementwise " # mnemonic # " with broadcasting";
  let description = "Elementwise `" # semantics # "` on " # kind #
      " tensors of one element type, with NumPy broadcasting: the result "
      "shape is the broadcast of both shapes (rank = max rank, right-aligned, "
      "dims equal or one of them 1).\n\n"
      "Example:\n\n```mlir\n%z = kiln." # mnemonic #
      " %x, %y : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>\n```";
  let arguments = (ins tensorType:$lhs, tensorType:$rhs);
  let results = (outs tensorType:$result);
  let assemblyFormat =
      "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *context, std::optional<::mlir::Location> location,
        Adaptor adaptor,
        ::llvm::SmallVectorImpl<::mlir::Type> &inferredReturnTypes) {
      return ::kiln::detail::inferBinaryOp(location, getOperationName(),
          adaptor.getLhs().getType(), adaptor.getRhs().getType(),
          ::kiln::ElementKind::}] # kind # [{, inferredReturnTypes);
    }
  }];
}

def Kiln_AddOp : Kiln_BinaryOp<"add", Kiln_NumericTensor, "Numeric", "lhs + rhs", [Commutative]> {
  let hasFolder = 1;
}
def Kiln_SubOp : Kiln_BinaryOp<"sub", Kiln_NumericTensor, "Numeric", "lhs - rhs"> {
  let hasFolder = 1;
}
def Kiln_MulOp : Kiln_BinaryOp<"mul", Kiln_NumericTensor, "Numeric", "lhs * rhs", [Commutative]> {
  let hasFolder = 1;
}
def Kiln_DivOp : Kiln_BinaryOp<"div", Kiln_NumericTensor, "Numeric",
                               "lhs / rhs (integers truncate toward zero)"> {
  let hasFolder = 1;
}
def Kiln_MaxOp : Kiln_BinaryOp<"max", Kiln_NumericTensor, "Numeric", "max(lhs, rhs)", [Commutative]>;
def Kiln_MinOp : Kiln_BinaryOp<"min", Kiln_NumericTensor, "Numeric", "min(lhs, rhs)", [Commutative]>;
def Kiln_PowOp : Kiln_BinaryOp<"pow", Kiln_FloatTensor, "Float", "lhs ^ rhs">;

def Kiln_CompareOp : Kiln_Op<"compare"> {
  let summary = "elementwise comparison with broadcasting";
  let description = [{
    Compares `lhs` and `rhs` (same element type, NumPy broadcasting) and
    returns an i1 tensor of the broadcast shape. `predicate` is one of `eq`,
    `ne`, `lt`, `le`, `gt`, `ge`; i1 operands allow only `eq` and `ne`.

    Example:

    ```mlir
    %m = kiln.compare %a, %b {predicate = "lt"}
        : (tensor<2x4xf32>, tensor<1x4xf32>) -> tensor<2x4xi1>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$lhs, Kiln_AnyTensor:$rhs,
                       StrAttr:$predicate);
  let results = (outs Kiln_BoolTensor:$result);
  let assemblyFormat =
      "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def Kiln_WhereOp : Kiln_Op<"where"> {
  let summary = "elementwise select with three-way broadcasting";
  let description = [{
    `cond ? x : y` elementwise. `cond` is i1; `x` and `y` have one element
    type, which is the result's; the result shape is the broadcast of all
    three shapes.

    Example:

    ```mlir
    %r = kiln.where %c, %x, %y
        : (tensor<4x4xi1>, tensor<4x4xf32>, tensor<f32>) -> tensor<4x4xf32>
    ```
  }];
  let arguments = (ins Kiln_BoolTensor:$cond, Kiln_AnyTensor:$x,
                       Kiln_AnyTensor:$y);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat =
      "$cond `,` $x `,` $y attr-dict `:` functional-type(operands, results)";
}

def Kiln_CastOp : Kiln_Op<"cast"> {
  let summary = "elementwise element-type conversion";
  let description = [{
    Converts `x` to element type `dtype`, keeping the shape. Float to int
    truncates toward zero, any to i1 is `x != 0`, i1 to any is 0 or 1, and
    narrowing float conversions round to nearest even.

    `cast(cast(x, B), C)` folds to `cast(x, C)` (and to `x` when C is x's
    type) only when the conversion to B is exact, e.g. bf16 -> f32 -> bf16;
    f32 -> bf16 -> f32 does not fold.

    Example:

    ```mlir
    %h = kiln.cast %x {dtype = bf16} : (tensor<2x4xf32>) -> tensor<2x4xbf16>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$x, Kiln_ElementType:$dtype);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Linear algebra and NN
//===----------------------------------------------------------------------===//

def Kiln_MatmulOp : Kiln_Op<"matmul"> {
  let summary = "batched matrix multiplication";
  let description = [{
    `a` is `[...batchA, M, K]` (`[..., K, M]` with `transpose_a`), `b` is
    `[...batchB, K, N]` (`[..., N, K]` with `transpose_b`); both have rank
    >= 2 and one numeric element type. Batch dims broadcast; the result is
    `[...broadcast(batchA, batchB), M, N]`. f16/bf16 accumulate in f32.

    Example:

    ```mlir
    %c = kiln.matmul %a, %b {transpose_b = true}
        : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x4xf32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$a, Kiln_NumericTensor:$b,
                       DefaultValuedAttr<BoolAttr, "false">:$transpose_a,
                       DefaultValuedAttr<BoolAttr, "false">:$transpose_b);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat =
      "$a `,` $b attr-dict `:` functional-type(operands, results)";
}

def Kiln_Conv2dOp : Kiln_Op<"conv2d"> {
  let summary = "2-D convolution, NCHW, with optional bias";
  let description = [{
    `x` is `[N, C, H, W]`, `w` is `[O, C/groups, KH, KW]`, the optional `bias`
    is `[O]`; `pads` is `[top, left, bottom, right]`. The result is
    `[N, O, OH, OW]` with
    `OH = (H + top + bottom - dh*(KH-1) - 1) / sh + 1` (and OW alike).
    `O % groups == 0` and `C % groups == 0`. Float types.

    Example:

    ```mlir
    %y = kiln.conv2d %x, %w, %bias {pads = array<i64: 1, 1, 1, 1>}
        : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>)
        -> tensor<1x16x8x8xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$x, Kiln_FloatTensor:$w,
                       Optional<Kiln_FloatTensor>:$bias,
                       DefaultValuedAttr<DenseI64ArrayAttr, "{1, 1}">:$strides,
                       DefaultValuedAttr<DenseI64ArrayAttr, "{0, 0, 0, 0}">:$pads,
                       DefaultValuedAttr<DenseI64ArrayAttr, "{1, 1}">:$dilations,
                       DefaultValuedAttr<I64Attr, "1">:$groups);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x `,` $w (`,` $bias^)? attr-dict `:` "
                       "functional-type(operands, results)";
}

class Kiln_Pool2dOp<string mnemonic, string reduction,
                    dag extraArguments = (ins)>
    : Kiln_Op<mnemonic> {
  let summary = "2-D " # reduction # " pooling, NCHW";
  let arguments = !con((ins Kiln_FloatTensor:$x,
      DenseI64ArrayAttr:$kernel,
      DefaultValuedAttr<DenseI64ArrayAttr, "{1, 1}">:$strides,
      DefaultValuedAttr<DenseI64ArrayAttr, "{0, 0, 0, 0}">:$pads,
      DefaultValuedAttr<BoolAttr, "false">:$ceil_mode), extraArguments);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *context, std::optional<::mlir::Location> location,
        Adaptor adaptor,
        ::llvm::SmallVectorImpl<::mlir::Type> &inferredReturnTypes) {
      return ::kiln::detail::inferPool2dOp(location, getOperationName(),
          adaptor.getX().getType(), adaptor.getKernel(), adaptor.getStrides(),
          adaptor.getPads(), adaptor.getCeilMode(), inferredReturnTypes);
    }
  }];
}

def Kiln_MaxPool2dOp : Kiln_Pool2dOp<"max_pool2d", "max"> {
  let description = [{
    Max over `kernel = [kh, kw]` windows of `x [N, C, H, W]`, with `strides`
    and `pads = [top, left, bottom, right]` (padding is -inf). The output size
    is `floor((H + top + bottom - kh) / sh) + 1`, or ceil with `ceil_mode`,
    where a window must start inside the input or the left padding (ONNX).

    Example:

    ```mlir
    %y = kiln.max_pool2d %x {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>}
        : (tensor<1x8x32x32xf32>) -> tensor<1x8x16x16xf32>
    ```
  }];
}

def Kiln_AvgPool2dOp : Kiln_Pool2dOp<"avg_pool2d", "average",
    (ins DefaultValuedAttr<BoolAttr, "false">:$count_include_pad)> {
  let description = [{
    Average over `kernel = [kh, kw]` windows of `x [N, C, H, W]`; the output
    size follows `kiln.max_pool2d`. Padding elements are excluded from the
    average unless `count_include_pad`.

    Example:

    ```mlir
    %y = kiln.avg_pool2d %x {kernel = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}
        : (tensor<1x8x32x32xf32>) -> tensor<1x8x32x32xf32>
    ```
  }];
}

def Kiln_GlobalAvgPoolOp : Kiln_Op<"global_avg_pool"> {
  let summary = "average over the spatial dims, NCHW";
  let description = [{
    `[N, C, H, W] -> [N, C, 1, 1]`, the mean over H and W. Float types.

    Example:

    ```mlir
    %y = kiln.global_avg_pool %x : (tensor<1x8x7x7xf32>) -> tensor<1x8x1x1xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$x);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
}

def Kiln_BatchNormOp : Kiln_Op<"batch_norm"> {
  let summary = "inference-mode batch normalization over dim 1";
  let description = [{
    `y = (x - mean) / sqrt(var + epsilon) * scale + bias` where `x` is
    `[N, C, ...]` and `scale`, `bias`, `mean`, `var` are `[C]`. Float types.

    Example:

    ```mlir
    %y = kiln.batch_norm %x, %scale, %bias, %mean, %var {epsilon = 1.0e-03 : f64}
        : (tensor<1x8x4x4xf32>, tensor<8xf32>, tensor<8xf32>, tensor<8xf32>,
           tensor<8xf32>) -> tensor<1x8x4x4xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$x, Kiln_FloatTensor:$scale,
                       Kiln_FloatTensor:$bias, Kiln_FloatTensor:$mean,
                       Kiln_FloatTensor:$var,
                       DefaultValuedAttr<F64Attr, "1e-5">:$epsilon);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x `,` $scale `,` $bias `,` $mean `,` $var attr-dict "
                       "`:` functional-type(operands, results)";
}

def Kiln_LayerNormOp : Kiln_Op<"layer_norm"> {
  let summary = "layer normalization over the trailing dims";
  let description = [{
    Normalizes `x` over dims `[axis, rank)` (mean and biased variance), then
    scales and shifts: `scale` and `bias` have shape `x.shape[axis:]`.
    `axis` may be negative. Float types.

    Example:

    ```mlir
    %y = kiln.layer_norm %x, %scale, %bias
        : (tensor<2x16x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$x, Kiln_FloatTensor:$scale,
                       Kiln_FloatTensor:$bias,
                       DefaultValuedAttr<I64Attr, "-1">:$axis,
                       DefaultValuedAttr<F64Attr, "1e-5">:$epsilon);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x `,` $scale `,` $bias attr-dict `:` "
                       "functional-type(operands, results)";
}

def Kiln_RmsNormOp : Kiln_Op<"rms_norm"> {
  let summary = "root-mean-square normalization over the trailing dims";
  let description = [{
    `y = x / sqrt(mean(x^2 over dims [axis, rank)) + epsilon) * scale`, where
    `scale` has shape `x.shape[axis:]`. `axis` may be negative. Float types.

    Example:

    ```mlir
    %y = kiln.rms_norm %x, %scale {epsilon = 1.0e-05 : f64}
        : (tensor<2x16x64xf32>, tensor<64xf32>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$x, Kiln_FloatTensor:$scale,
                       DefaultValuedAttr<I64Attr, "-1">:$axis,
                       DefaultValuedAttr<F64Attr, "1e-6">:$epsilon);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x `,` $scale attr-dict `:` "
                       "functional-type(operands, results)";
}

class Kiln_SoftmaxLikeOp<string mnemonic, string semantics>
    : Kiln_Op<mnemonic> {
  let summary = semantics # " along one axis";
  let description = "Numerically stable " # semantics # " of `x` along "
      "`axis` (default -1, may be negative). Float types; the result has the "
      "type of `x`.\n\nExample:\n\n```mlir\n%p = kiln." # mnemonic #
      " %x {axis = 1 : i64} : tensor<2x10xf32>\n```";
  let arguments = (ins Kiln_FloatTensor:$x,
                       DefaultValuedAttr<I64Attr, "-1">:$axis);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *context, std::optional<::mlir::Location> location,
        Adaptor adaptor,
        ::llvm::SmallVectorImpl<::mlir::Type> &inferredReturnTypes) {
      return ::kiln::detail::inferSoftmaxOp(location, getOperationName(),
          adaptor.getX().getType(), adaptor.getAxis(), inferredReturnTypes);
    }
  }];
}

def Kiln_SoftmaxOp : Kiln_SoftmaxLikeOp<"softmax", "softmax">;
def Kiln_LogSoftmaxOp : Kiln_SoftmaxLikeOp<"log_softmax", "log-softmax">;

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

class Kiln_ReduceOp<string mnemonic, Kiln_TensorOf tensorType, string kind,
                    string semantics>
    : Kiln_Op<mnemonic> {
  let summary = semantics # " over the given axes";
  let description = "Reduces `x` (" # kind # " types) with " # semantics #
      " over `axes` (may be negative; duplicates are an error; empty means "
      "all dims). Reduced dims are kept as 1 with `keepdims`, dropped "
      "otherwise.\n\nExample:\n\n```mlir\n%s = kiln." # mnemonic #
      " %x {axes = array<i64: -1>, keepdims = true}\n"
      "    : (tensor<2x3x4xf32>) -> tensor<2x3x1xf32>\n```";
  let arguments = (ins tensorType:$x, DenseI64ArrayAttr:$axes,
                       DefaultValuedAttr<BoolAttr, "false">:$keepdims);
  let results = (outs tensorType:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *context, std::optional<::mlir::Location> location,
        Adaptor adaptor,
        ::llvm::SmallVectorImpl<::mlir::Type> &inferredReturnTypes) {
      return ::kiln::detail::inferReduceOp(location, getOperationName(),
          adaptor.getX().getType(), adaptor.getAxes(), adaptor.getKeepdims(),
          ::kiln::ElementKind::}] # kind # [{, inferredReturnTypes);
    }
  }];
}

def Kiln_ReduceSumOp : Kiln_ReduceOp<"reduce_sum", Kiln_NumericTensor, "Numeric", "sum">;
def Kiln_ReduceMeanOp : Kiln_ReduceOp<"reduce_mean", Kiln_FloatTensor, "Float", "mean">;
def Kiln_ReduceMaxOp : Kiln_ReduceOp<"reduce_max", Kiln_NumericTensor, "Numeric", "max">;
def Kiln_ReduceMinOp : Kiln_ReduceOp<"reduce_min", Kiln_NumericTensor, "Numeric", "min">;

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

def Kiln_ReshapeOp : Kiln_Op<"reshape"> {
  let summary = "reshape to a static shape";
  let description = [{
    Reinterprets `x` (row-major) with the static `shape`; the element counts
    must match (no -1: the DSL resolves it).

    Example:

    ```mlir
    %y = kiln.reshape %x {shape = array<i64: 6, 4>} : (tensor<2x3x4xf32>) -> tensor<6x4xf32>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$x, DenseI64ArrayAttr:$shape);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
  let hasFolder = 1;
}

def Kiln_TransposeOp : Kiln_Op<"transpose"> {
  let summary = "permute dims";
  let description = [{
    Result dim `i` is `x` dim `perm[i]`; `perm` is a permutation of
    `[0, rank)`.

    Example:

    ```mlir
    %y = kiln.transpose %x {perm = array<i64: 0, 2, 1>}
        : (tensor<2x3x4xf32>) -> tensor<2x4x3xf32>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$x, DenseI64ArrayAttr:$perm);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
  let hasFolder = 1;
}

def Kiln_ConcatOp : Kiln_Op<"concat"> {
  let summary = "concatenate along one axis";
  let description = [{
    Concatenates one or more tensors of one element type and rank along
    `axis` (may be negative); all other dims must be equal.

    Example:

    ```mlir
    %y = kiln.concat %a, %b {axis = -1 : i64}
        : (tensor<2x3xf32>, tensor<2x5xf32>) -> tensor<2x8xf32>
    ```
  }];
  let arguments = (ins Variadic<Kiln_AnyTensor>:$xs, I64Attr:$axis);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$xs attr-dict `:` functional-type(operands, results)";
}

def Kiln_SliceOp : Kiln_Op<"slice"> {
  let summary = "strided slice with normalized bounds";
  let description = [{
    `starts`, `ends` and `steps` have one entry per dim. For `step > 0`,
    `0 <= start <= end <= dim` and the size is `ceil((end - start) / step)`;
    for `step < 0`, `-1 <= end <= start < dim` (or an empty dim) and the size
    is `ceil((start - end) / -step)`. Element `i` along a dim is
    `x[start + i * step]`.

    Example:

    ```mlir
    %y = kiln.slice %x {starts = array<i64: 0, 7>, ends = array<i64: 2, -1>,
                        steps = array<i64: 1, -2>}
        : (tensor<2x8xf32>) -> tensor<2x4xf32>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$x, DenseI64ArrayAttr:$starts,
                       DenseI64ArrayAttr:$ends, DenseI64ArrayAttr:$steps);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
}

def Kiln_GatherOp : Kiln_Op<"gather"> {
  let summary = "gather slices along one axis (ONNX Gather)";
  let description = [{
    The result shape is `data.shape[:axis] + indices.shape +
    data.shape[axis+1:]`. `indices` are i32 or i64; negative indices count
    from the end; an out-of-range index is a runtime error.

    Example:

    ```mlir
    %e = kiln.gather %table, %tokens
        : (tensor<1000x64xf32>, tensor<2x16xi64>) -> tensor<2x16x64xf32>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$data, Kiln_IndexTensor:$indices,
                       DefaultValuedAttr<I64Attr, "0">:$axis);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat =
      "$data `,` $indices attr-dict `:` functional-type(operands, results)";
}

def Kiln_BroadcastToOp : Kiln_Op<"broadcast_to"> {
  let summary = "NumPy broadcast to a static shape";
  let description = [{
    Broadcasts `x` to `shape`: right-aligned, each dim of `x` equals the
    target dim or is 1.

    Example:

    ```mlir
    %y = kiln.broadcast_to %x {shape = array<i64: 4, 3>} : (tensor<3xf32>) -> tensor<4x3xf32>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$x, DenseI64ArrayAttr:$shape);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$x attr-dict `:` functional-type(operands, results)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Constants
//===----------------------------------------------------------------------===//

def Kiln_ConstantOp : Kiln_Op<"constant", [ConstantLike]> {
  let summary = "tensor constant";
  let description = [{
    A tensor constant; the result type is the type of `value` (a dense or
    resource elements attribute).

    Example:

    ```mlir
    %c = kiln.constant dense<[1.0, 2.0]> : tensor<2xf32>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$value attr-dict";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Attention (produced by kiln-fuse-attention, or written directly)
//===----------------------------------------------------------------------===//

def Kiln_AttentionOp : Kiln_Op<"attention"> {
  let summary = "scaled dot-product attention, computed without the score "
                "matrix";
  let description = [{
    `out = softmax(scale * q k^T + mask) v` per batch and head, run by a
    kernel that never materializes the `Sq x Sk` score matrix (flash-style
    on the cpu backend).

    - `q` is `[B, H, Sq, D]`, `k` is `[B, Hk, Sk, D]`, `v` is
      `[B, Hk, Sk, Dv]`, one float element type; the result is
      `[B, H, Sq, Dv]`. `H` must be a multiple of `Hk` (grouped-query
      attention): query head `h` uses key/value head `h / (H / Hk)`.
    - `scale` multiplies the scores; when absent it is `1 / sqrt(D)`.
    - `softcap` c, optional, > 0: the scaled score s becomes
      `c * tanh(s / c)` before the mask (Gemma 2's attention soft-capping).
    - `causal`: query `i` sees key `j` only when `j <= i + (Sk - Sq)`
      (bottom-right aligned; the usual lower triangle when `Sq == Sk`).
    - `mask`, optional, broadcasts to `[B, H, Sq, Sk]` without changing that
      shape. A mask of `q`'s element type is added to the scaled scores; an
      i1 mask keeps the keys where it is true.
    - A row in which every key is masked out (by `causal`, a false entry or
      `-inf`) yields zeros, where the unfused ops would give NaN (or, with a
      finite fill such as -1e9, the mean of `v`).
    - `causal_in_mask`: a hint that does not change the result. The additive
      mask is expected to mask out the keys above the diagonal itself, with
      a finite fill: the causal triangle combined with a padding mask, as
      in HF LLaMA's 4-D mask, which must not become `causal` because its
      fully masked rows average `v`. The cpu kernel then skips those keys in
      every row where their weight provably underflows to 0 in f32 (the
      row's best score seen exceeds, by more than 110, |scale| times
      |q_i| max_j |k_j| plus the row's largest mask value above the
      diagonal), and visits them in every other row. Needs an additive mask
      and `causal = false`. Also set for a sliding window (a band that
      masks every key above the diagonal and some below). The cpu kernel
      bounds any additive mask that varies along the queries the same way,
      hint or not (a mask the compiler cannot read, such as an initializer).

    Scores and the softmax accumulate in f32 for f16/bf16 (f64 for f64).

    Example:

    ```mlir
    %o = kiln.attention %q, %k, %v {scale = 0.125 : f64, causal = true}
        : (tensor<1x12x128x64xf32>, tensor<1x4x128x64xf32>,
           tensor<1x4x128x64xf32>) -> tensor<1x12x128x64xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$q, Kiln_FloatTensor:$k,
                       Kiln_FloatTensor:$v, Optional<Kiln_AnyTensor>:$mask,
                       OptionalAttr<F64Attr>:$scale,
                       DefaultValuedAttr<BoolAttr, "false">:$causal,
                       DefaultValuedAttr<BoolAttr, "false">:$causal_in_mask,
                       OptionalAttr<F64Attr>:$softcap);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$q `,` $k `,` $v (`,` $mask^)? attr-dict `:` "
                       "functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Fused ops (produced by kiln-fuse-epilogues)
//===----------------------------------------------------------------------===//

// A matmul or conv2d followed by a chain of pointwise steps, run as one kernel
// (oneDNN post-ops on the cpu backend). `epilogue` lists the steps in order;
// each `add_*` step consumes the next `extras` operand, `batch_norm` the next
// four and the next `epsilons` value, each `scale` step the next `scales`
// value. Result inference (KilnOps.cpp) checks the chain.
class Kiln_FusedOp<string mnemonic, string anchor, string example,
                   dag anchorArguments>
    : Kiln_Op<mnemonic> {
  let summary = "kiln." # anchor # " with a fused epilogue";
  let description = "`kiln." # anchor # "` followed by the pointwise steps "
      "of `epilogue`, applied in order to its result:\n\n"
      "- `add_bias`: add the next `extras` operand, a per-channel vector "
      "(matmul: shape `[N]`, or `[1, ..., 1, N]`, broadcast along the last "
      "dim; conv2d: `[O]`, or `[1, O, 1, 1]` / `[O, 1, 1]`, broadcast along "
      "dim 1);\n"
      "- `add_residual`: add the next `extras` operand, of the result's type;\n"
      "- `scale`: multiply by the next value of `scales`;\n"
      "- `shift`: add the next value of `scales` (an add of a splat "
      "constant, as in HardSigmoid);\n"
      "- `max`, `min`: `kiln.max` / `kiln.min` with the next value of "
      "`scales` (ReLU6 is `max` 0 then `min` 6);\n"
      "- `batch_norm`: `kiln.batch_norm` over dim 1 with the next four "
      "`extras` (scale, bias, mean, var, each `[C]`) and the next value of "
      "`epsilons`;\n"
      "- `relu`, `gelu` (erf), `gelu_tanh`, `silu`, `tanh`, `sigmoid`: "
      "the activation, as the kiln op of that name;\n"
      "- `hardswish`: `x * max(0, min(1, x / 6 + 1/2))`, as ONNX HardSwish "
      "imports.\n\n"
      "Every step computes in the element type of the result, exactly as "
      "the unfused ops would, so fusion does not change numbers on the "
      "reference backend. Produced by `kiln-fuse-epilogues`.\n\n"
      "Example:\n\n```mlir\n" # example # "\n```";
  let arguments = !con(anchorArguments,
      (ins Variadic<Kiln_FloatTensor>:$extras, StrArrayAttr:$epilogue,
           DefaultValuedAttr<F64ArrayAttr, "{}">:$scales,
           DefaultValuedAttr<F64ArrayAttr, "{}">:$epsilons));
  let results = (outs Kiln_FloatTensor:$result);
}

def Kiln_FusedMatmulOp : Kiln_FusedOp<"fused_matmul", "matmul",
    "%y = kiln.fused_matmul %x, %w, %bias, %res {transpose_b = true,\n"
    "        epilogue = [\"add_bias\", \"gelu\", \"add_residual\"]}\n"
    "    : (tensor<2x8xf32>, tensor<16x8xf32>, tensor<16xf32>,\n"
    "       tensor<2x16xf32>) -> tensor<2x16xf32>",
    (ins Kiln_FloatTensor:$a, Kiln_FloatTensor:$b,
         DefaultValuedAttr<BoolAttr, "false">:$transpose_a,
         DefaultValuedAttr<BoolAttr, "false">:$transpose_b)> {
  let assemblyFormat = "$a `,` $b (`,` $extras^)? attr-dict `:` "
                       "functional-type(operands, results)";
}

def Kiln_FusedConv2dOp : Kiln_FusedOp<"fused_conv2d", "conv2d",
    "%y = kiln.fused_conv2d %x, %w, %bias {pads = array<i64: 1, 1, 1, 1>,\n"
    "        epilogue = [\"add_bias\", \"relu\"]}\n"
    "    : (tensor<1x3x8x8xf32>, tensor<16x3x3x3xf32>, tensor<16xf32>)\n"
    "    -> tensor<1x16x8x8xf32>",
    (ins Kiln_FloatTensor:$x, Kiln_FloatTensor:$w,
         DefaultValuedAttr<DenseI64ArrayAttr, "{1, 1}">:$strides,
         DefaultValuedAttr<DenseI64ArrayAttr, "{0, 0, 0, 0}">:$pads,
         DefaultValuedAttr<DenseI64ArrayAttr, "{1, 1}">:$dilations,
         DefaultValuedAttr<I64Attr, "1">:$groups)> {
  let assemblyFormat = "$x `,` $w (`,` $extras^)? attr-dict `:` "
                       "functional-type(operands, results)";
}

#endif // KILN_IR_KILNOPS_TD
