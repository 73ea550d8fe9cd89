//===- passes/RaiseComposites.cpp - kiln-raise-composites -----------------===//
//
// Exporters write some operations as chains of elementary ops: PyTorch's
// TorchScript exporter below opset 20 writes F.gelu as Div, Erf, Add, Mul,
// Mul; HF's gelu_new (GPT-2) and RMSNorm (LLaMA, Mistral, Qwen, T5) are
// spelled out in Python. Run as they are, each op is a pass over the whole
// activation. This pass recognises those chains and replaces each with the
// one kiln op (kiln.gelu, kiln.rms_norm) that computes the same function,
// which the later passes fuse and the backends run in one kernel.
//
//===----------------------------------------------------------------------===//
#include "ir/KilnDialect.h"
#include "ir/KilnOps.h"
#include "passes/Matchers.h"
#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln {
#define GEN_PASS_DEF_RAISECOMPOSITESPASS
#include "passes/Passes.h.inc"

namespace {

using mlir::LogicalResult;
using mlir::Operation;
using mlir::PatternRewriter;
using mlir::RankedTensorType;
using mlir::success;
using mlir::Value;

/// `v` as `op(arg)` of a single-use unary op of `v`'s type.
template <typename OpTy> Value unaryArg(Value v) {
  auto op = v.getDefiningOp<OpTy>();
  return op && op->hasOneUse() ? op->getOperand(0) : Value();
}

/// `v` as 1 + f(arg) for a single-use unary f (erf or tanh): arg, or null.
template <typename OpTy> Value onePlus(Value v, mlir::Type type) {
  llvm::SmallVector<Value> terms;
  llvm::SmallVector<Operation *> adds;
  if (!v.hasOneUse())
    return {};
  flatten<AddOp>(v, terms, adds, type, 1);
  if (adds.size() != 1 || !takeSplats(terms, {1.0}) || terms.size() != 1)
    return {};
  return unaryArg<OpTy>(terms[0]);
}

/// Whether `v` is x^3: pow(x, 3) or x * x * x.
bool isCube(Value v, Value x) {
  if (auto pow = v.getDefiningOp<PowOp>())
    return pow->hasOneUse() && pow.getLhs() == x &&
           isSplatNear(pow.getRhs(), 3.0);
  llvm::SmallVector<Value> factors;
  llvm::SmallVector<Operation *> muls;
  if (!v.hasOneUse())
    return false;
  flatten<MulOp>(v, factors, muls, x.getType(), 2);
  return factors.size() == 3 &&
         llvm::all_of(factors, [&](Value f) { return f == x; });
}

// x * 0.5 * (1 + erf(x / sqrt(2))) => gelu(x)
// x * 0.5 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
//     => gelu(x) {approximate = "tanh"}
// as PyTorch's exporters write F.gelu below opset 20 (HF BERT, RoBERTa,
// DeBERTa, ...) and HF's gelu_new (GPT-2): muls and adds in any order and
// association, x / sqrt(2) also as x * (1 / sqrt(2)), x^3 as pow or x*x*x.
// kiln-fuse-epilogues then fuses the gelu into the matmul before it.
struct RaiseGelu : mlir::OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MulOp mul,
                                PatternRewriter &rewriter) const override {
    mlir::Type type = mul.getType();
    llvm::SmallVector<Value> factors;
    llvm::SmallVector<Operation *> muls;
    flatten<MulOp>(mul, factors, muls, type, 2);
    if (factors.size() != 3 || !takeSplats(factors, {0.5}))
      return rewriter.notifyMatchFailure(mul, "not x * 0.5 * (1 + f(...))");
    for (unsigned i : {0u, 1u}) {
      Value x = factors[i], gate = factors[1 - i];
      if (x.getType() != type)
        continue;
      if (Value arg = onePlus<ErfOp>(gate, type)) {
        llvm::SmallVector<Value> scaled;
        llvm::SmallVector<Operation *> ops;
        bool halfRoot2 = false;
        if (auto div = arg.getDefiningOp<DivOp>())
          halfRoot2 = div->hasOneUse() && div.getLhs() == x &&
                      isSplatNear(div.getRhs(), std::sqrt(2.0));
        else if (arg.hasOneUse()) {
          flatten<MulOp>(arg, scaled, ops, type, 1);
          halfRoot2 = takeSplats(scaled, {1.0 / std::sqrt(2.0)}) &&
                      scaled.size() == 1 && scaled[0] == x;
        }
        if (halfRoot2) {
          rewriter.replaceOpWithNewOp<GeluOp>(mul, type, x, "none");
          return success();
        }
      }
      if (Value arg = onePlus<TanhOp>(gate, type)) {
        // sqrt(2 / pi) * (x + 0.044715 * x^3)
        llvm::SmallVector<Value> outer, inner, cube;
        llvm::SmallVector<Operation *> ops;
        if (!arg.hasOneUse())
          continue;
        flatten<MulOp>(arg, outer, ops, type, 1);
        if (!takeSplats(outer, {std::sqrt(2.0 / M_PI)}) || outer.size() != 1 ||
            !outer[0].hasOneUse())
          continue;
        flatten<AddOp>(outer[0], inner, ops, type, 2);
        auto xAt = llvm::find(inner, x);
        if (inner.size() != 2 || xAt == inner.end())
          continue;
        inner.erase(xAt);
        if (!inner[0].hasOneUse())
          continue;
        flatten<MulOp>(inner[0], cube, ops, type, 3);
        if (!takeSplats(cube, {0.044715}))
          continue;
        // The rest is x^3: one pow or cube value, or x, x, x.
        bool isX3 = (cube.size() == 1 && isCube(cube[0], x)) ||
                    (cube.size() == 3 &&
                     llvm::all_of(cube, [&](Value f) { return f == x; }));
        if (isX3) {
          rewriter.replaceOpWithNewOp<GeluOp>(mul, type, x, "tanh");
          return success();
        }
      }
    }
    return rewriter.notifyMatchFailure(mul,
                                       "not gelu written out with erf or tanh");
  }
};

/// `v` as 1 / sqrt(e) (rsqrt, reciprocal of sqrt, or 1 / sqrt), each op
/// single-use: e, or null.
Value inverseSqrtArg(Value v) {
  if (!v.hasOneUse())
    return {};
  if (Value e = unaryArg<RsqrtOp>(v))
    return e;
  if (Value s = unaryArg<ReciprocalOp>(v))
    return unaryArg<SqrtOp>(s);
  if (auto div = v.getDefiningOp<DivOp>(); div && isSplatNear(div.getLhs(), 1))
    return unaryArg<SqrtOp>(div.getRhs());
  return {};
}

/// `e` as mean(x^2 over the last axis, keepdims) + eps, each op single-use:
/// x and eps.
std::optional<std::pair<Value, double>> meanSquarePlusEps(Value e) {
  llvm::SmallVector<Value> terms;
  llvm::SmallVector<Operation *> adds;
  if (!e.hasOneUse())
    return std::nullopt;
  flatten<AddOp>(e, terms, adds, e.getType(), 1);
  if (adds.size() != 1 || terms.size() != 2)
    return std::nullopt;
  std::optional<double> eps = splatFloat(terms[1]);
  Value mean = terms[0];
  if (!eps) {
    eps = splatFloat(terms[0]);
    mean = terms[1];
  }
  auto reduce = mean.getDefiningOp<ReduceMeanOp>();
  if (!eps || !(*eps >= 0) || !reduce || !reduce->hasOneUse() ||
      !reducesLastAxis(reduce))
    return std::nullopt;
  Value square = reduce.getX();
  if (!square.hasOneUse())
    return std::nullopt;
  if (auto pow = square.getDefiningOp<PowOp>();
      pow && isSplatNear(pow.getRhs(), 2) &&
      pow.getLhs().getType() == square.getType())
    return std::make_pair(pow.getLhs(), *eps);
  if (auto mul = square.getDefiningOp<MulOp>();
      mul && mul.getLhs() == mul.getRhs() && mul.getType() == square.getType())
    return std::make_pair(mul.getLhs(), *eps);
  return std::nullopt;
}

// w * (x * (1 / sqrt(mean(x^2, -1) + eps)))  => rms_norm(x, w) {epsilon}
// w * (x / sqrt(mean(x^2, -1) + eps))        => rms_norm(x, w) {epsilon}
// as HF's LlamaRMSNorm, T5LayerNorm and their copies export (x^2 as pow or
// x * x, 1 / sqrt as rsqrt, reciprocal or a division; muls in any order).
// The weight must have shape [D] (x's last dim); Gemma's (1 + w) is such a
// value.
struct RaiseRmsNorm : mlir::OpRewritePattern<MulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MulOp mul,
                                PatternRewriter &rewriter) const override {
    auto type = mlir::cast<RankedTensorType>(mul.getType());
    llvm::SmallVector<Value> factors;
    llvm::SmallVector<Operation *> muls;
    flatten<MulOp>(mul, factors, muls, type, 2);
    if (factors.size() < 2 || factors.size() > 3 || type.getRank() < 1)
      return rewriter.notifyMatchFailure(mul, "not a product of 2-3 factors");
    int64_t dim = type.getShape().back();
    for (size_t i = 0; i < factors.size(); ++i) {
      // factors[i]: 1 / sqrt(e) with x among the others, or x / sqrt(e).
      std::optional<std::pair<Value, double>> stats;
      llvm::SmallVector<Value> rest(factors);
      rest.erase(rest.begin() + i);
      if (Value e = inverseSqrtArg(factors[i])) {
        stats = meanSquarePlusEps(e);
        if (!stats)
          continue;
        auto x = llvm::find(rest, stats->first);
        if (x == rest.end())
          continue;
        rest.erase(x);
      } else if (auto div = factors[i].getDefiningOp<DivOp>();
                 div && div->hasOneUse() && div.getType() == type) {
        Value e = unaryArg<SqrtOp>(div.getRhs());
        if (!e || !(stats = meanSquarePlusEps(e)) ||
            stats->first != div.getLhs())
          continue;
      } else {
        continue;
      }
      Value x = stats->first;
      if (x.getType() != type || rest.size() != 1)
        continue;
      Value weight = rest[0];
      auto wType = mlir::cast<RankedTensorType>(weight.getType());
      if (wType.getShape() != llvm::ArrayRef<int64_t>{dim} ||
          wType.getElementType() != type.getElementType())
        continue;
      rewriter.replaceOpWithNewOp<RmsNormOp>(
          mul, type, x, weight, rewriter.getI64IntegerAttr(-1),
          rewriter.getF64FloatAttr(stats->second));
      return success();
    }
    return rewriter.notifyMatchFailure(
        mul, "not w * x / sqrt(mean(x^2) + eps) with a [D] weight");
  }
};

/// Remarks: one per raised op.
void emitRemarks(mlir::ModuleOp module,
                 const llvm::DenseSet<Operation *> &before) {
  module.walk([&](Operation *op) {
    if (before.contains(op))
      return;
    if (auto gelu = mlir::dyn_cast<GeluOp>(op))
      op->emitRemark() << "raised gelu (" << gelu.getApproximate()
                       << ") from the ops that spell it out";
    else if (mlir::isa<RmsNormOp>(op))
      op->emitRemark() << "raised rms_norm from the ops that spell it out";
  });
}

struct RaiseCompositesPass
    : public impl::RaiseCompositesPassBase<RaiseCompositesPass> {
  using RaiseCompositesPassBase::RaiseCompositesPassBase;

  void runOnOperation() override {
    mlir::MLIRContext *context = &getContext();
    llvm::DenseSet<Operation *> before;
    if (remarks)
      getOperation().walk([&](Operation *op) {
        if (mlir::isa<GeluOp, RmsNormOp>(op))
          before.insert(op);
      });
    mlir::RewritePatternSet patterns(context);
    patterns.add<RaiseGelu, RaiseRmsNorm>(context);
    if (failed(mlir::applyPatternsAndFoldGreedily(getOperation(),
                                                  std::move(patterns))))
      return signalPassFailure();
    if (remarks)
      emitRemarks(getOperation(), before);
  }
};

} // namespace
} // namespace kiln
