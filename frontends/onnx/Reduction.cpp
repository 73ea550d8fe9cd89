//===- frontends/onnx/Reduction.cpp - Reduction handlers ------------------===//
//
// ReduceSum/Mean/Max/Min map onto kiln's reductions; ReduceL1/L2/SumSquare/
// LogSum/LogSumExp and ArgMax/ArgMin are compositions. The axes are an
// attribute before opset 18 (ReduceSum: 13) and an optional input after.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"

namespace kiln::onnx_import {

namespace {

enum class Reduction {
  Sum,
  Mean,
  Max,
  Min,
  Prod,
  L1,
  L2,
  SumSquare,
  LogSum,
  LogSumExp
};

mlir::Value reduceValue(NodeContext &n, Reduction kind, mlir::Value x,
                        const std::vector<int64_t> &axes, bool keep) {
  switch (kind) {
  case Reduction::Sum:
    return n.reduce("kiln.reduce_sum", x, axes, keep);
  case Reduction::Mean: {
    DType t = dtypeOf(x);
    if (isFloat(t))
      return n.reduce("kiln.reduce_mean", x, axes, keep);
    return n.cast(
        n.reduce("kiln.reduce_mean", n.cast(x, DType::f64), axes, keep), t);
  }
  case Reduction::Max:
    return n.reduce("kiln.reduce_max", x, axes, keep);
  case Reduction::Min:
    return n.reduce("kiln.reduce_min", x, axes, keep);
  case Reduction::Prod: {
    // prod(x) = 0 if any x == 0, else (-1)^#neg * exp(sum(log|x|))
    DType t = dtypeOf(x);
    if (!isFloat(t))
      n.unsupported(std::string("ReduceProd on ") + dtypeName(t));
    mlir::Value zero = n.scalarLike(0, x);
    mlir::Value logAbs = n.unary("kiln.log", n.unary("kiln.abs", x));
    mlir::Value mag =
        n.unary("kiln.exp", n.reduce("kiln.reduce_sum", logAbs, axes, keep));
    mlir::Value negCount = n.reduce(
        "kiln.reduce_sum", n.cast(n.compare("lt", x, zero), t), axes, keep);
    mlir::Value half = n.binary("kiln.mul", negCount, n.scalarLike(0.5, x));
    mlir::Value odd =
        n.compare("ne", n.cast(n.cast(half, DType::i64), t), half);
    mlir::Value anyZero =
        n.compare("gt",
                  n.reduce("kiln.reduce_max",
                           n.cast(n.compare("eq", x, zero), t), axes, keep),
                  zero);
    mlir::Value y = n.where(odd, n.unary("kiln.neg", mag), mag);
    return n.where(anyZero, zero, y);
  }
  case Reduction::L1: // sum(|x|)
    return n.reduce("kiln.reduce_sum", n.unary("kiln.abs", x), axes, keep);
  case Reduction::SumSquare: // sum(x * x)
    return n.reduce("kiln.reduce_sum", n.binary("kiln.mul", x, x), axes, keep);
  case Reduction::L2: { // sqrt(sum(x * x)), integers through f64
    DType t = dtypeOf(x);
    mlir::Value xf = isFloat(t) ? x : n.cast(x, DType::f64);
    mlir::Value y = n.unary(
        "kiln.sqrt",
        n.reduce("kiln.reduce_sum", n.binary("kiln.mul", xf, xf), axes, keep));
    return n.cast(y, t);
  }
  case Reduction::LogSum: // log(sum(x))
    return n.unary("kiln.log", n.reduce("kiln.reduce_sum", x, axes, keep));
  case Reduction::LogSumExp: { // m + log(sum(exp(x - m))), m = max(x)
    mlir::Value m = n.reduce("kiln.reduce_max", x, axes, true);
    // An all -inf slice has m = -inf; use 0 there so x - m stays -inf.
    mlir::Value finite =
        n.compare("lt", n.unary("kiln.abs", m), n.scalarLike(INFINITY, m));
    m = n.where(finite, m, n.scalarLike(0, m));
    mlir::Value s =
        n.reduce("kiln.reduce_sum",
                 n.unary("kiln.exp", n.binary("kiln.sub", x, m)), axes, keep);
    if (!keep)
      m = n.reshape(m, shapeOf(s));
    return n.binary("kiln.add", n.unary("kiln.log", s), m);
  }
  }
  return x;
}

void reduce(NodeContext &n, Reduction kind, bool axesFromInput) {
  mlir::Value x = n.input(0);
  std::vector<int64_t> axes =
      axesFromInput
          ? (n.hasInput(1) ? n.requireInts(1, "axes") : std::vector<int64_t>{})
          : n.attrInts("axes");
  bool keep = n.attrInt("keepdims", 1) != 0;
  if (axes.empty() && n.attrInt("noop_with_empty_axes", 0)) {
    n.setOutput(0, x);
    return;
  }
  if (axes.empty())
    for (int64_t i = 0; i < static_cast<int64_t>(shapeOf(x).size()); ++i)
      axes.push_back(i);
  n.setOutput(0, reduceValue(n, kind, x, axes, keep));
}

void addReduce(HandlerRegistry &r, const std::string &op, Reduction kind,
               int inputSince) {
  r.add(
      op, 1, [kind](NodeContext &n) { reduce(n, kind, false); },
      inputSince - 1);
  r.add(op, inputSince, [kind](NodeContext &n) { reduce(n, kind, true); });
}

/// argmax(x) along axis = min { i : x[i] == max(x) } (the last such i with
/// select_last_index), from kiln compares and reductions.
void argExtreme(NodeContext &n, bool max) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  int64_t rank = s.size();
  int64_t axis = n.normalizeAxis(n.attrInt("axis", 0), rank);
  bool keep = n.attrInt("keepdims", 1) != 0;
  bool last = n.attrInt("select_last_index", 0) != 0;
  mlir::Value m =
      n.reduce(max ? "kiln.reduce_max" : "kiln.reduce_min", x, {axis}, true);
  mlir::Value hit = n.compare("eq", x, m);
  std::vector<int64_t> iotaShape(rank, 1), values(s[axis]);
  iotaShape[axis] = s[axis];
  for (int64_t i = 0; i < s[axis]; ++i)
    values[i] = i;
  mlir::Value iota = n.constantValue(host::fromInts(iotaShape, values));
  mlir::Value idx =
      n.where(hit, iota, n.scalar(last ? -1.0 : double(s[axis]), DType::i64));
  n.setOutput(0, n.reduce(last ? "kiln.reduce_max" : "kiln.reduce_min", idx,
                          {axis}, keep));
}

} // namespace

void registerReductionHandlers(HandlerRegistry &r) {
  addReduce(r, "ReduceSum", Reduction::Sum, 13);
  addReduce(r, "ReduceMean", Reduction::Mean, 18);
  addReduce(r, "ReduceMax", Reduction::Max, 18);
  addReduce(r, "ReduceMin", Reduction::Min, 18);
  addReduce(r, "ReduceProd", Reduction::Prod, 18);
  addReduce(r, "ReduceL1", Reduction::L1, 18);
  addReduce(r, "ReduceL2", Reduction::L2, 18);
  addReduce(r, "ReduceSumSquare", Reduction::SumSquare, 18);
  addReduce(r, "ReduceLogSum", Reduction::LogSum, 18);
  addReduce(r, "ReduceLogSumExp", Reduction::LogSumExp, 18);
  r.add("ArgMax", 1, [](NodeContext &n) { argExtreme(n, true); });
  r.add("ArgMin", 1, [](NodeContext &n) { argExtreme(n, false); });
}

} // namespace kiln::onnx_import
