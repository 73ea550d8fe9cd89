//===- passes/FuseEpilogues.cpp - kiln-fuse-epilogues ---------------------===//
//
// Folds the pointwise ops that follow a matmul or conv2d (bias add, scaling
// by a constant, activation, residual add) into a kiln.fused_matmul or
// kiln.fused_conv2d whose `epilogue` lists them in order. Each pattern adds
// one step to an anchor (a matmul, conv2d or fused op), so the greedy driver
// grows whole chains. A step is only fused into an anchor whose result has no
// other use: the unfused value would otherwise still have to be computed.
//
//===----------------------------------------------------------------------===//
#include "ir/ElementTypes.h"
#include "ir/KilnDialect.h"
#include "ir/KilnOps.h"
#include "passes/Matchers.h"
#include "passes/Passes.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_FUSEEPILOGUESPASS
#include "passes/Passes.h.inc"

namespace {

using mlir::failure;
using mlir::LogicalResult;
using mlir::Operation;
using mlir::PatternRewriter;
using mlir::RankedTensorType;
using mlir::success;
using mlir::Value;

/// Whether `op` can take epilogue steps: a matmul, conv2d or fused op with a
/// float result.
bool isAnchor(Operation *op) {
  if (!op || !mlir::isa<MatmulOp, Conv2dOp, FusedMatmulOp, FusedConv2dOp>(op))
    return false;
  auto type = mlir::cast<RankedTensorType>(op->getResult(0).getType());
  return isElementOfKind(type.getElementType(), ElementKind::Float);
}

/// The dim a bias broadcasts along: the last for matmul, 1 (NCHW) for conv.
int64_t channelDim(Operation *anchor) {
  auto type = mlir::cast<RankedTensorType>(anchor->getResult(0).getType());
  return mlir::isa<Conv2dOp, FusedConv2dOp>(anchor) ? 1 : type.getRank() - 1;
}

/// The anchor defining operand `index` of `user`, if fusing `user` into it is
/// possible; otherwise the reason, reported through notifyMatchFailure.
mlir::FailureOr<Operation *> getAnchor(PatternRewriter &rewriter,
                                       Operation *user, unsigned index) {
  Value value = user->getOperand(index);
  Operation *anchor = value.getDefiningOp();
  if (!isAnchor(anchor))
    return rewriter.notifyMatchFailure(
        user, "operand is not a float matmul, conv2d or fused op");
  if (!value.hasOneUse())
    return rewriter.notifyMatchFailure(
        user, "the matmul/conv2d result has other uses, so the unfused value "
              "is still needed");
  if (user->getResult(0).getType() != value.getType())
    return rewriter.notifyMatchFailure(
        user, "the op changes the result's type (broadcasting)");
  return anchor;
}

/// Rebuilds `anchor` as a fused op with `step` appended to its epilogue
/// (consuming `extras`, `scale` or `epsilon` when given) and replaces `user`
/// with it.
void appendStep(PatternRewriter &rewriter, Operation *anchor, Operation *user,
                llvm::StringRef step, mlir::ValueRange extras = {},
                std::optional<double> scale = std::nullopt,
                std::optional<double> epsilon = std::nullopt,
                llvm::ArrayRef<Operation *> alsoReplaced = {}) {
  mlir::MLIRContext *context = rewriter.getContext();
  bool isConv = mlir::isa<Conv2dOp, FusedConv2dOp>(anchor);
  llvm::SmallVector<Value> operands{anchor->getOperand(0),
                                    anchor->getOperand(1)};
  llvm::SmallVector<mlir::Attribute> epilogue, scales, epsilons;
  if (mlir::isa<FusedMatmulOp, FusedConv2dOp>(anchor)) {
    llvm::append_range(operands, anchor->getOperands().drop_front(2));
    auto fusedEpilogue = anchor->getAttrOfType<mlir::ArrayAttr>("epilogue");
    llvm::append_range(epilogue, fusedEpilogue.getValue());
    if (auto fusedScales = anchor->getAttrOfType<mlir::ArrayAttr>("scales"))
      llvm::append_range(scales, fusedScales.getValue());
    if (auto fusedEpsilons = anchor->getAttrOfType<mlir::ArrayAttr>("epsilons"))
      llvm::append_range(epsilons, fusedEpsilons.getValue());
  } else if (auto conv = mlir::dyn_cast<Conv2dOp>(anchor);
             conv && conv.getBias()) {
    // conv2d(x, w, bias) = fused_conv2d(x, w, bias) {epilogue = [add_bias]}
    operands.push_back(conv.getBias());
    epilogue.push_back(mlir::StringAttr::get(context, "add_bias"));
  }
  llvm::append_range(operands, extras);
  epilogue.push_back(mlir::StringAttr::get(context, step));
  if (scale)
    scales.push_back(rewriter.getF64FloatAttr(*scale));
  if (epsilon)
    epsilons.push_back(rewriter.getF64FloatAttr(*epsilon));

  mlir::NamedAttrList attrs(anchor->getAttrDictionary());
  attrs.set("epilogue", rewriter.getArrayAttr(epilogue));
  for (auto [name, values] :
       {std::pair{"scales", &scales}, std::pair{"epsilons", &epsilons}}) {
    if (values->empty())
      attrs.erase(name);
    else
      attrs.set(name, rewriter.getArrayAttr(*values));
  }
  mlir::Type type = anchor->getResult(0).getType();
  Operation *fused =
      isConv ? rewriter
                   .create<FusedConv2dOp>(anchor->getLoc(), type, operands,
                                          attrs.getAttrs())
                   .getOperation()
             : rewriter
                   .create<FusedMatmulOp>(anchor->getLoc(), type, operands,
                                          attrs.getAttrs())
                   .getOperation();
  rewriter.replaceOp(user, fused->getResults());
  // Ops between the anchor and `user` that only fed `user` (last first).
  for (Operation *op : llvm::reverse(alsoReplaced))
    rewriter.eraseOp(op);
  rewriter.eraseOp(anchor);
}

/// Whether `other` is a per-channel vector for `anchor`'s result: [C] for a
/// matmul, or C at the channel dim right-aligned with every other dim 1.
bool isBias(RankedTensorType other, Operation *anchor) {
  auto result = mlir::cast<RankedTensorType>(anchor->getResult(0).getType());
  int64_t dim = channelDim(anchor);
  int64_t offset = result.getRank() - other.getRank();
  if (offset < 0 || offset > dim)
    return false;
  for (auto [d, size] : llvm::enumerate(other.getShape()))
    if (size != (int64_t(d) + offset == dim ? result.getDimSize(dim) : 1))
      return false;
  return true;
}

// add(matmul(a, b), bias) => fused_matmul(a, b, bias) {epilogue = [add_bias]}
// add(matmul(a, b), r)    => fused_matmul(a, b, r) {epilogue = [add_residual]}
// add(matmul(a, b), splat(c)) => fused_matmul(a, b) {epilogue = [shift],
//                                                     scales = [c]}
// (and alike for conv2d and for fused ops, whose epilogue grows by one step;
// the bias broadcasts along dim 1 for conv2d, r has the result's type)
struct FuseAdd : mlir::OpRewritePattern<AddOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AddOp add,
                                PatternRewriter &rewriter) const override {
    for (unsigned index : {0u, 1u}) {
      mlir::FailureOr<Operation *> anchor = getAnchor(rewriter, add, index);
      if (failed(anchor))
        continue;
      Value other = add->getOperand(1 - index);
      if (std::optional<double> value = splatFloat(other)) {
        appendStep(rewriter, *anchor, add, "shift", {}, *value);
        return success();
      }
      auto otherType = mlir::cast<RankedTensorType>(other.getType());
      if (otherType == add.getType()) {
        appendStep(rewriter, *anchor, add, "add_residual", other);
        return success();
      }
      if (isBias(otherType, *anchor)) {
        appendStep(rewriter, *anchor, add, "add_bias", other);
        return success();
      }
    }
    return rewriter.notifyMatchFailure(
        add, "no operand is a single-use matmul/conv2d result plus a bias "
             "vector, a same-typed residual or a splat constant");
  }
};

// mul(matmul(a, b), splat(c)) => fused_matmul(a, b) {epilogue = [scale],
//                                                     scales = [c]}
// max(matmul(a, b), splat(c)) => fused_matmul(a, b) {epilogue = [max],
//                                                     scales = [c]}
// (and min; ReLU6 and ONNX Clip import as max then min)
template <typename OpTy>
struct FuseWithConstant : mlir::OpRewritePattern<OpTy> {
  FuseWithConstant(mlir::MLIRContext *context, llvm::StringRef step)
      : mlir::OpRewritePattern<OpTy>(context), step(step) {}

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    for (unsigned index : {0u, 1u}) {
      std::optional<double> value = splatFloat(op->getOperand(1 - index));
      if (!value)
        continue;
      mlir::FailureOr<Operation *> anchor = getAnchor(rewriter, op, index);
      if (failed(anchor))
        continue;
      appendStep(rewriter, *anchor, op, step, {}, *value);
      return success();
    }
    return rewriter.notifyMatchFailure(
        op, "not a single-use matmul/conv2d result against a splat constant");
  }

  std::string step;
};

// batch_norm(conv2d(x, w), s, b, m, v) =>
//     fused_conv2d(x, w, s, b, m, v) {epilogue = [batch_norm], epsilons = [e]}
// (inference-mode batch norm over the conv's channels, as in ResNets)
struct FuseBatchNorm : mlir::OpRewritePattern<BatchNormOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(BatchNormOp bn,
                                PatternRewriter &rewriter) const override {
    mlir::FailureOr<Operation *> anchor = getAnchor(rewriter, bn, 0);
    if (failed(anchor))
      return failure();
    if (!mlir::isa<Conv2dOp, FusedConv2dOp>(*anchor))
      return rewriter.notifyMatchFailure(
          bn, "batch_norm normalizes dim 1, fused only after conv2d");
    appendStep(rewriter, *anchor, bn, "batch_norm",
               bn->getOperands().drop_front(), std::nullopt,
               bn.getEpsilon().convertToDouble());
    return success();
  }
};

// relu(matmul(a, b)) => fused_matmul(a, b) {epilogue = [relu]}
// (and gelu, silu, tanh, sigmoid; gelu {approximate = "tanh"} is gelu_tanh)
template <typename OpTy> struct FuseActivation : mlir::OpRewritePattern<OpTy> {
  FuseActivation(mlir::MLIRContext *context, llvm::StringRef step)
      : mlir::OpRewritePattern<OpTy>(context), step(step) {}

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    mlir::FailureOr<Operation *> anchor = getAnchor(rewriter, op, 0);
    if (failed(anchor))
      return failure();
    std::string name = step;
    if constexpr (std::is_same_v<OpTy, GeluOp>) {
      if (op.getApproximate() == "tanh")
        name = "gelu_tanh";
      else if (op.getApproximate() != "none")
        return rewriter.notifyMatchFailure(op, "unknown gelu approximation");
    }
    appendStep(rewriter, *anchor, op, name);
    return success();
  }

  std::string step;
};

// relu(reshape(matmul(a, b))) => reshape(relu(matmul(a, b)))
// (and the other activations): HF GPT-2's Conv1D views its [B*S, N] result
// as [B, S, N] before the activation. Only for an anchor result and a
// reshape that have no other use, so that the activation then fuses.
template <typename OpTy>
struct SinkActivationBelowReshape : mlir::OpRewritePattern<OpTy> {
  using mlir::OpRewritePattern<OpTy>::OpRewritePattern;

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    auto reshape = op->getOperand(0).template getDefiningOp<ReshapeOp>();
    if (!reshape || !reshape->hasOneUse() ||
        !isAnchor(reshape.getX().getDefiningOp()) ||
        !reshape.getX().hasOneUse())
      return rewriter.notifyMatchFailure(
          op, "not an activation of a single-use reshape of a matmul/conv2d");
    Value x = reshape.getX();
    auto activated =
        rewriter.create<OpTy>(op.getLoc(), x.getType(), x, op->getAttrs());
    rewriter.replaceOpWithNewOp<ReshapeOp>(
        op, op.getType(), activated->getResult(0), reshape->getAttrs());
    return success();
  }
};

/// The other operand of binary `op` when one operand is a splat near
/// `value`; null otherwise.
template <typename OpTy> Value otherThanSplat(Value v, double value) {
  auto op = v.getDefiningOp<OpTy>();
  if (!op || !op->hasOneUse())
    return {};
  for (unsigned i : {0u, 1u})
    if (isSplatNear(op->getOperand(1 - i), value))
      return op->getOperand(i);
  return {};
}

/// An activation written as x * gate(x): its epilogue step, and the ops
/// that compute the gate from x, first to last.
struct Gate {
  llvm::StringRef step;
  llvm::SmallVector<Operation *> ops;
};

/// `gate` as a function of `x`: sigmoid(x) (SiLU / Swish as exporters write
/// it: EfficientNet, YOLO) or max(min(add(mul(x, 1/6), 1/2), 1), 0) (ONNX
/// HardSwish as the importer spells it: MobileNet V3).
std::optional<Gate> readGate(Value gate, Value x) {
  if (auto sigmoid = gate.getDefiningOp<SigmoidOp>();
      sigmoid && sigmoid.getX() == x && sigmoid->hasOneUse())
    return Gate{"silu", {sigmoid}};
  Value clippedLow = otherThanSplat<MaxOp>(gate, 0.0);
  Value shifted = clippedLow ? otherThanSplat<MinOp>(clippedLow, 1.0) : Value();
  Value scaled = shifted ? otherThanSplat<AddOp>(shifted, 0.5) : Value();
  if (!scaled || otherThanSplat<MulOp>(scaled, 1.0 / 6) != x)
    return std::nullopt;
  return Gate{"hardswish",
              {scaled.getDefiningOp(), shifted.getDefiningOp(),
               clippedLow.getDefiningOp(), gate.getDefiningOp()}};
}

// mul(x, gate(x)) with x = matmul(a, b) => fused_matmul(a, b)
// {epilogue = [silu]} (or [hardswish], see readGate); x must have no other
// use than the gate and the mul.
struct FuseGatedActivation : mlir::OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MulOp mul,
                                PatternRewriter &rewriter) const override {
    for (unsigned index : {0u, 1u}) {
      Value x = mul->getOperand(index), gate = mul->getOperand(1 - index);
      Operation *anchor = x.getDefiningOp();
      if (!isAnchor(anchor) || mul.getType() != x.getType() ||
          gate.getType() != x.getType() ||
          std::distance(x.use_begin(), x.use_end()) != 2)
        continue;
      std::optional<Gate> read = readGate(gate, x);
      if (!read)
        continue;
      appendStep(rewriter, anchor, mul, read->step, {}, std::nullopt,
                 std::nullopt, read->ops);
      return success();
    }
    return rewriter.notifyMatchFailure(
        mul, "not x * sigmoid(x) or ONNX HardSwish of a matmul/conv2d result "
             "used only there");
  }
};

/// Remarks after the rewrite: what each fused op holds, and why candidates
/// next to a matmul/conv2d were left alone.
void emitRemarks(mlir::ModuleOp module) {
  module.walk([](Operation *op) {
    if (mlir::isa<FusedMatmulOp, FusedConv2dOp>(op)) {
      std::string steps;
      for (mlir::Attribute step :
           op->getAttrOfType<mlir::ArrayAttr>("epilogue"))
        steps += (steps.empty() ? "" : ", ") +
                 mlir::cast<mlir::StringAttr>(step).getValue().str();
      op->emitRemark() << "fused epilogue [" << steps << "] into "
                       << op->getName().getStringRef();
      return;
    }
    if (!mlir::isa<AddOp, MulOp, MaxOp, MinOp, BatchNormOp, ReluOp, GeluOp,
                   SiluOp, TanhOp, SigmoidOp>(op))
      return;
    for (Value operand : op->getOperands())
      if (isAnchor(operand.getDefiningOp()) && !operand.hasOneUse()) {
        op->emitRemark() << "not fused into "
                         << operand.getDefiningOp()->getName().getStringRef()
                         << ": its result has other uses, so the unfused "
                            "value is still needed";
        return;
      }
  });
}

struct FuseEpiloguesPass
    : public impl::FuseEpiloguesPassBase<FuseEpiloguesPass> {
  using FuseEpiloguesPassBase::FuseEpiloguesPassBase;

  void runOnOperation() override {
    mlir::MLIRContext *context = &getContext();
    mlir::RewritePatternSet patterns(context);
    patterns.add<
        FuseAdd, FuseBatchNorm, FuseGatedActivation,
        SinkActivationBelowReshape<ReluOp>, SinkActivationBelowReshape<GeluOp>,
        SinkActivationBelowReshape<SiluOp>, SinkActivationBelowReshape<TanhOp>,
        SinkActivationBelowReshape<SigmoidOp>>(context);
    patterns.add<FuseWithConstant<MulOp>>(context, "scale");
    patterns.add<FuseActivation<ReluOp>>(context, "relu");
    patterns.add<FuseActivation<GeluOp>>(context, "gelu");
    patterns.add<FuseActivation<SiluOp>>(context, "silu");
    patterns.add<FuseActivation<TanhOp>>(context, "tanh");
    patterns.add<FuseActivation<SigmoidOp>>(context, "sigmoid");
    patterns.add<FuseWithConstant<MaxOp>>(context, "max");
    patterns.add<FuseWithConstant<MinOp>>(context, "min");
    // Top-down, so a chain is grown from its anchor outwards in one sweep.
    mlir::GreedyRewriteConfig config;
    config.useTopDownTraversal = true;
    if (failed(mlir::applyPatternsAndFoldGreedily(getOperation(),
                                                  std::move(patterns), config)))
      return signalPassFailure();
    if (remarks)
      emitRemarks(getOperation());
  }
};

} // namespace
} // namespace kiln
