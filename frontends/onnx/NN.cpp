//===- frontends/onnx/NN.cpp - Neural-network op handlers -----------------===//
//
// Conv, pooling, normalizations, Softmax/LogSoftmax and Dropout. kiln's
// convolution and pooling are 2-D; 1-D ONNX ops run as 2-D ones with a unit
// height. auto_pad is resolved to explicit pads here, at import time.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"

namespace kiln::onnx_import {

namespace {

/// Kernel geometry of a Conv or pool node, made 2-D.
struct Window {
  bool oneD = false;
  std::vector<int64_t> kernel, strides, dilations;
  std::vector<int64_t> pads; ///< [top, left, bottom, right]
};

/// Reads kernel_shape/strides/dilations/pads/auto_pad for an input of shape
/// `x` ([N, C, spatial...]) and kernel dims `kernel`.
Window readWindow(NodeContext &n, const std::vector<int64_t> &x,
                  std::vector<int64_t> kernel) {
  size_t spatial = x.size() - 2;
  if (x.size() < 3)
    n.fail("expected an input of rank >= 3 [N, C, ...], got rank " +
           std::to_string(x.size()));
  if (spatial > 2)
    n.unsupported(std::to_string(spatial) + "-D " + n.opType());
  if (kernel.size() != spatial)
    n.fail("kernel has " + std::to_string(kernel.size()) +
           " dims, the input has " + std::to_string(spatial) + " spatial dims");
  auto strides = n.attrInts("strides", std::vector<int64_t>(spatial, 1));
  auto dilations = n.attrInts("dilations", std::vector<int64_t>(spatial, 1));
  auto pads = n.attrInts("pads", std::vector<int64_t>(2 * spatial, 0));
  if (strides.size() != spatial || dilations.size() != spatial ||
      pads.size() != 2 * spatial)
    n.fail("strides, dilations or pads do not match " +
           std::to_string(spatial) + " spatial dims");
  std::string autoPad = n.attrString("auto_pad", "NOTSET");
  if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
    for (size_t i = 0; i < spatial; ++i) {
      int64_t in = x[2 + i];
      int64_t out = (in + strides[i] - 1) / strides[i];
      int64_t total = std::max<int64_t>(
          0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in);
      int64_t begin = autoPad == "SAME_LOWER" ? (total + 1) / 2 : total / 2;
      pads[i] = begin;
      pads[spatial + i] = total - begin;
    }
  } else if (autoPad == "VALID") {
    std::fill(pads.begin(), pads.end(), 0);
  } else if (autoPad != "NOTSET" && !autoPad.empty()) {
    n.fail("unknown auto_pad '" + autoPad + "'");
  }
  Window w;
  w.oneD = spatial == 1;
  if (w.oneD) {
    w.kernel = {1, kernel[0]};
    w.strides = {1, strides[0]};
    w.dilations = {1, dilations[0]};
    w.pads = {0, pads[0], 0, pads[1]};
  } else {
    w.kernel = kernel;
    w.strides = strides;
    w.dilations = dilations;
    w.pads = pads;
  }
  return w;
}

/// [N, C, L] -> [N, C, 1, L]
mlir::Value to2d(NodeContext &n, mlir::Value x) {
  auto s = shapeOf(x);
  return n.reshape(x, {s[0], s[1], 1, s[2]});
}

/// [N, C, 1, L] -> [N, C, L]
mlir::Value from2d(NodeContext &n, mlir::Value y) {
  auto s = shapeOf(y);
  return n.reshape(y, {s[0], s[1], s[3]});
}

void conv(NodeContext &n) {
  mlir::Value x = n.input(0), w = n.input(1);
  auto ws = shapeOf(w);
  if (ws.size() < 3)
    n.fail("expected a weight of rank >= 3, got rank " +
           std::to_string(ws.size()));
  auto kernel = n.attrInts("kernel_shape",
                           std::vector<int64_t>(ws.begin() + 2, ws.end()));
  Window win = readWindow(n, shapeOf(x), kernel);
  if (win.oneD) {
    x = to2d(n, x);
    w = n.reshape(w, {ws[0], ws[1], 1, ws[2]});
  }
  llvm::SmallVector<mlir::Value> operands = {x, w};
  if (n.hasInput(2))
    operands.push_back(n.input(2));
  mlir::Value y = n.create("kiln.conv2d", operands,
                           {n.arrayAttr("strides", win.strides),
                            n.arrayAttr("pads", win.pads),
                            n.arrayAttr("dilations", win.dilations),
                            n.i64Attr("groups", n.attrInt("group", 1))});
  n.setOutput(0, win.oneD ? from2d(n, y) : y);
}

void pool(NodeContext &n, bool max) {
  mlir::Value x = n.input(0);
  DType type = dtypeOf(x);
  if (!isFloat(type)) {
    // 8-bit integers are exact in f32: pool there (max pooling only).
    if (!max || (type != DType::u8 && type != DType::i8))
      n.unsupported(std::string("element type ") + dtypeName(type));
    x = n.cast(x, DType::f32);
  }
  if (n.outputUsed(1))
    n.unsupported("the Indices output");
  auto kernel = n.attrInts("kernel_shape");
  if (kernel.empty())
    n.fail("missing required attribute 'kernel_shape'");
  Window win = readWindow(n, shapeOf(x), kernel);
  for (int64_t d : win.dilations)
    if (d != 1)
      n.unsupported("dilated pooling");
  if (win.oneD)
    x = to2d(n, x);
  llvm::SmallVector<mlir::NamedAttribute> attrs = {
      n.arrayAttr("kernel", win.kernel), n.arrayAttr("strides", win.strides),
      n.arrayAttr("pads", win.pads),
      n.boolAttr("ceil_mode", n.attrInt("ceil_mode", 0))};
  if (!max)
    attrs.push_back(
        n.boolAttr("count_include_pad", n.attrInt("count_include_pad", 0)));
  mlir::Value y =
      n.create(max ? "kiln.max_pool2d" : "kiln.avg_pool2d", {x}, attrs);
  n.setOutput(0, n.cast(win.oneD ? from2d(n, y) : y, type));
}

std::vector<int64_t> spatialAxes(int64_t rank) {
  std::vector<int64_t> axes;
  for (int64_t i = 2; i < rank; ++i)
    axes.push_back(i);
  return axes;
}

/// Softmax-like ops. Before opset 13 the input is seen as 2-D: dims before
/// `axis` (default 1) are rows, the rest one row; from 13 on it is one axis
/// (default -1).
void softmaxLike(NodeContext &n, llvm::StringRef kilnOp, bool flatten) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  int64_t rank = s.size();
  int64_t axis = n.attrInt("axis", flatten ? 1 : -1);
  if (axis < -rank || axis > rank || (!flatten && axis == rank))
    n.fail("axis " + std::to_string(axis) + " is out of range for rank " +
           std::to_string(rank));
  if (axis < 0)
    axis += rank;
  if (!flatten || rank == 0) {
    n.setOutput(0, n.create(kilnOp, {x}, {n.i64Attr("axis", axis)}));
    return;
  }
  int64_t rows = 1, cols = 1;
  for (int64_t i = 0; i < rank; ++i)
    (i < axis ? rows : cols) *= s[i];
  mlir::Value y =
      n.create(kilnOp, {n.reshape(x, {rows, cols})}, {n.i64Attr("axis", 1)});
  n.setOutput(0, n.reshape(y, s));
}

void batchNorm(NodeContext &n) {
  if (n.attrInt("training_mode", 0) || n.outputUsed(1) || n.outputUsed(2) ||
      n.outputUsed(3) || n.outputUsed(4))
    n.unsupported("training mode");
  if (n.opset() < 9 && n.hasAttr("spatial") && n.attrInt("spatial", 1) == 0)
    n.unsupported("spatial = 0");
  n.setOutput(
      0, n.create("kiln.batch_norm",
                  {n.input(0), n.input(1), n.input(2), n.input(3), n.input(4)},
                  {n.f64Attr("epsilon", n.attrFloat("epsilon", 1e-5))}));
}

void layerNorm(NodeContext &n) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  int64_t rank = s.size();
  int64_t axis = n.attrInt("axis", -1);
  if (axis < -rank || axis >= rank)
    n.fail("axis " + std::to_string(axis) + " is out of range for rank " +
           std::to_string(rank));
  if (axis < 0)
    axis += rank;
  std::vector<int64_t> normShape(s.begin() + axis, s.end());
  mlir::Value scale = n.broadcastTo(n.input(1), normShape);
  mlir::Value bias = n.hasInput(2)
                         ? n.broadcastTo(n.input(2), normShape)
                         : n.broadcastTo(n.scalarLike(0, x), normShape);
  double eps = n.attrFloat("epsilon", 1e-5);
  n.setOutput(0,
              n.create("kiln.layer_norm", {x, scale, bias},
                       {n.i64Attr("axis", axis), n.f64Attr("epsilon", eps)}));
  if (n.outputUsed(1) || n.outputUsed(2)) {
    // Mean = mean(x), InvStdDev = 1 / sqrt(mean((x - Mean)^2) + eps), over
    // the normalized dims, kept as size-1 dims.
    std::vector<int64_t> axes;
    for (int64_t i = axis; i < rank; ++i)
      axes.push_back(i);
    mlir::Value mean = n.reduce("kiln.reduce_mean", x, axes, true);
    mlir::Value centered = n.binary("kiln.sub", x, mean);
    mlir::Value var =
        n.reduce("kiln.reduce_mean", n.binary("kiln.mul", centered, centered),
                 axes, true);
    n.setOutput(1, mean);
    n.setOutput(2, n.unary("kiln.rsqrt",
                           n.binary("kiln.add", var, n.scalarLike(eps, x))));
  }
}

/// y = scale * (x - mean) / sqrt(var + eps) + bias, mean and (biased)
/// variance per (N, C) over the spatial dims.
void instanceNorm(NodeContext &n) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  if (s.size() < 3)
    n.fail("expected an input of rank >= 3");
  auto axes = spatialAxes(s.size());
  mlir::Value mean = n.reduce("kiln.reduce_mean", x, axes, true);
  mlir::Value centered = n.binary("kiln.sub", x, mean);
  mlir::Value var = n.reduce(
      "kiln.reduce_mean", n.binary("kiln.mul", centered, centered), axes, true);
  double eps = n.attrFloat("epsilon", 1e-5);
  mlir::Value inv =
      n.unary("kiln.rsqrt", n.binary("kiln.add", var, n.scalarLike(eps, x)));
  std::vector<int64_t> chanShape(s.size() - 1, 1);
  chanShape[0] = s[1];
  mlir::Value y = n.binary("kiln.mul", centered, inv);
  y = n.binary("kiln.mul", y, n.reshape(n.input(1), chanShape));
  y = n.binary("kiln.add", y, n.reshape(n.input(2), chanShape));
  n.setOutput(0, y);
}

/// y = x / norm_p(x along axis), p in {1, 2}
void lpNorm(NodeContext &n) {
  mlir::Value x = n.input(0);
  int64_t p = n.attrInt("p", 2), axis = n.attrInt("axis", -1);
  mlir::Value norm;
  if (p == 2)
    norm = n.unary(
        "kiln.sqrt",
        n.reduce("kiln.reduce_sum", n.binary("kiln.mul", x, x), {axis}, true));
  else if (p == 1)
    norm = n.reduce("kiln.reduce_sum", n.unary("kiln.abs", x), {axis}, true);
  else
    n.fail("p must be 1 or 2, got " + std::to_string(p));
  n.setOutput(0, n.binary("kiln.div", x, norm));
}

/// NegativeLogLikelihoodLoss on log-probabilities `x` [N, C, d...] and
/// targets [N, d...]: loss = -x[n, t, d] * w[t] (0 where t == ignore_index),
/// then none / sum / mean (mean divides by the summed weights). The pick of
/// x[n, t, d] is a one-hot compare against an iota along C.
mlir::Value nllLoss(NodeContext &n, mlir::Value x, mlir::Value target,
                    std::optional<mlir::Value> weight) {
  auto xs = shapeOf(x);
  int64_t rank = xs.size();
  if (rank < 2)
    n.fail("expected input of rank >= 2 [N, C, ...]");
  int64_t classes = xs[1];
  target = n.cast(target, DType::i64);
  auto ts = shapeOf(target);
  std::vector<int64_t> t1(ts);
  t1.insert(t1.begin() + 1, 1);
  std::vector<int64_t> iotaShape(rank, 1), iota(classes);
  iotaShape[1] = classes;
  for (int64_t i = 0; i < classes; ++i)
    iota[i] = i;
  mlir::Value onehot =
      n.compare("eq", n.reshape(target, t1),
                n.constantValue(host::fromInts(iotaShape, iota)));
  mlir::Value zero = n.scalarLike(0, x);
  mlir::Value picked =
      n.reduce("kiln.reduce_sum", n.where(onehot, x, zero), {1}, false);
  std::optional<mlir::Value> w;
  if (weight)
    w = n.reduce("kiln.reduce_sum",
                 n.where(onehot, n.reshape(*weight, iotaShape), zero), {1},
                 false);
  if (n.hasAttr("ignore_index")) {
    mlir::Value keep = n.compare(
        "ne", target, n.scalar(n.attrInt("ignore_index", 0), DType::i64));
    w = w ? n.where(keep, *w, zero) : n.cast(keep, dtypeOf(x));
  }
  mlir::Value loss = n.unary("kiln.neg", picked);
  if (w)
    loss = n.binary("kiln.mul", loss, *w);
  std::string reduction = n.attrString("reduction", "mean");
  std::vector<int64_t> all;
  for (size_t i = 0; i < ts.size(); ++i)
    all.push_back(i);
  if (reduction == "none")
    return loss;
  mlir::Value sum = n.reduce("kiln.reduce_sum", loss, all, false);
  if (reduction == "sum")
    return sum;
  if (reduction != "mean")
    n.fail("unknown reduction '" + reduction + "'");
  if (!w)
    return n.reduce("kiln.reduce_mean", loss, all, false);
  return n.binary("kiln.div", sum, n.reduce("kiln.reduce_sum", *w, all, false));
}

} // namespace

void registerNNHandlers(HandlerRegistry &r) {
  r.add("NegativeLogLikelihoodLoss", 12, [](NodeContext &n) {
    std::optional<mlir::Value> weight;
    if (n.hasInput(2))
      weight = n.input(2);
    n.setOutput(0, nllLoss(n, n.input(0), n.input(1), weight));
  });
  // SoftmaxCrossEntropyLoss = NLL(log_softmax(scores, axis 1)); the second
  // output is the log-probabilities.
  r.add("SoftmaxCrossEntropyLoss", 12, [](NodeContext &n) {
    mlir::Value logProb =
        n.create("kiln.log_softmax", {n.input(0)}, {n.i64Attr("axis", 1)});
    std::optional<mlir::Value> weight;
    if (n.hasInput(2))
      weight = n.input(2);
    n.setOutput(0, nllLoss(n, logProb, n.input(1), weight));
    n.setOutput(1, logProb);
  });
  r.add("Conv", 1, conv);
  r.add("MaxPool", 1, [](NodeContext &n) { pool(n, true); });
  r.add("AveragePool", 1, [](NodeContext &n) { pool(n, false); });
  r.add("GlobalAveragePool", 1, [](NodeContext &n) {
    mlir::Value x = n.input(0);
    auto s = shapeOf(x);
    if (s.size() == 4)
      n.setOutput(0, n.unary("kiln.global_avg_pool", x));
    else
      n.setOutput(0,
                  n.reduce("kiln.reduce_mean", x, spatialAxes(s.size()), true));
  });
  r.add("GlobalMaxPool", 1, [](NodeContext &n) {
    mlir::Value x = n.input(0);
    n.setOutput(0, n.reduce("kiln.reduce_max", x,
                            spatialAxes(shapeOf(x).size()), true));
  });
  r.add("BatchNormalization", 1, batchNorm);
  r.add("LayerNormalization", 17, layerNorm);
  r.add("InstanceNormalization", 1, instanceNorm);
  r.add("LpNormalization", 1, lpNorm);

  r.add(
      "Softmax", 1,
      [](NodeContext &n) { softmaxLike(n, "kiln.softmax", true); }, 12);
  r.add("Softmax", 13,
        [](NodeContext &n) { softmaxLike(n, "kiln.softmax", false); });
  r.add(
      "LogSoftmax", 1,
      [](NodeContext &n) { softmaxLike(n, "kiln.log_softmax", true); }, 12);
  r.add("LogSoftmax", 13,
        [](NodeContext &n) { softmaxLike(n, "kiln.log_softmax", false); });

  // Inference: Dropout is the identity; its mask is all true.
  r.add("Dropout", 1, [](NodeContext &n) {
    if (const Tensor *training = n.constant(2))
      if (host::toInts(*training).at(0) != 0)
        n.unsupported("training mode");
    if (n.hasInput(2) && !n.constant(2))
      n.unsupported("a training_mode computed at run time");
    if (const Tensor *t = n.constant(0))
      n.setOutput(0, *t);
    else
      n.setOutput(0, n.input(0));
    if (n.outputUsed(1)) {
      auto s = n.shape(0);
      n.setOutput(1, host::fromInts(s, std::vector<int64_t>(numElements(s), 1),
                                    DType::i1));
    }
  });
}

} // namespace kiln::onnx_import
