//===- frontends/onnx/NN.cpp - Neural-network op handlers -----------------===//
//
// Conv, pooling, normalizations, Softmax/LogSoftmax and Dropout. kiln's
// convolution and pooling are 2-D; 1-D ONNX ops run as 2-D ones with a unit
// height. auto_pad is resolved to explicit pads here, at import time.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"

#include "llvm/ADT/STLExtras.h"

#include <cmath>

namespace kiln::onnx_import {

namespace {

/// Kernel geometry of a Conv or pool node, made 2-D.
struct Window {
  bool oneD = false;
  std::vector<int64_t> kernel, strides, dilations;
  std::vector<int64_t> pads; ///< [top, left, bottom, right]
};

/// Kernel geometry of a Conv or pool node with any number of spatial dims.
struct WindowNd {
  std::vector<int64_t> kernel, strides, dilations;
  std::vector<int64_t> pads; ///< [begin..., end...]
};

/// Reads kernel_shape/strides/dilations/pads/auto_pad for an input of shape
/// `x` ([N, C, spatial...]) and kernel dims `kernel`, any spatial rank.
WindowNd readWindowNd(NodeContext &n, const std::vector<int64_t> &x,
                      std::vector<int64_t> kernel) {
  if (x.size() < 3)
    n.fail("expected an input of rank >= 3 [N, C, ...], got rank " +
           std::to_string(x.size()));
  size_t spatial = x.size() - 2;
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
  return {kernel, strides, dilations, pads};
}

/// readWindowNd made 2-D; more than two spatial dims are unsupported.
Window readWindow(NodeContext &n, const std::vector<int64_t> &x,
                  std::vector<int64_t> kernel) {
  WindowNd nd = readWindowNd(n, x, kernel);
  size_t spatial = x.size() - 2;
  if (spatial > 2)
    n.unsupported(std::to_string(spatial) + "-D " + n.opType());
  Window w;
  w.oneD = spatial == 1;
  if (w.oneD) {
    w.kernel = {1, nd.kernel[0]};
    w.strides = {1, nd.strides[0]};
    w.dilations = {1, nd.dilations[0]};
    w.pads = {0, nd.pads[0], 0, nd.pads[1]};
  } else {
    w.kernel = nd.kernel;
    w.strides = nd.strides;
    w.dilations = nd.dilations;
    w.pads = nd.pads;
  }
  return w;
}

/// Pads `x` along `axis` with `begin` and `end` elements of `fill`.
mlir::Value padAxis(NodeContext &n, mlir::Value x, int64_t axis, int64_t begin,
                    int64_t end, double fill) {
  if (begin == 0 && end == 0)
    return x;
  auto s = shapeOf(x);
  llvm::SmallVector<mlir::Value> parts;
  auto filled = [&](int64_t count) {
    auto shape = s;
    shape[axis] = count;
    return n.broadcastTo(n.scalarLike(fill, x), shape);
  };
  if (begin > 0)
    parts.push_back(filled(begin));
  parts.push_back(x);
  if (end > 0)
    parts.push_back(filled(end));
  return n.create("kiln.concat", parts, {n.i64Attr("axis", axis)});
}

/// `x` sliced along every spatial dim d (dims 2...) from `starts[d]` with
/// step `steps[d]`, `counts[d]` elements.
mlir::Value sliceSpatial(NodeContext &n, mlir::Value x,
                         const std::vector<int64_t> &starts,
                         const std::vector<int64_t> &steps,
                         const std::vector<int64_t> &counts) {
  auto s = shapeOf(x);
  std::vector<int64_t> b(s.size(), 0), e(s), st(s.size(), 1);
  for (size_t d = 0; d < starts.size(); ++d) {
    b[2 + d] = starts[d];
    st[2 + d] = steps[d];
    e[2 + d] =
        counts[d] == 0 ? starts[d] : starts[d] + (counts[d] - 1) * steps[d] + 1;
  }
  return n.create("kiln.slice", {x},
                  {n.arrayAttr("starts", b), n.arrayAttr("ends", e),
                   n.arrayAttr("steps", st)});
}

/// Pooling kiln.max_pool2d / avg_pool2d cannot express (3-D, dilated), as
/// a combination of strided slices of the padded input, one per kernel
/// offset k:
///   max: out[o] = max_k xpad[o * stride + k * dilation]   (pad = -inf)
///   avg: out[o] = sum_k xpad[...] / count[o]               (pad = 0)
/// count[o] (the window's elements inside the input, or inside the padded
/// input with count_include_pad) is an import-time constant.
mlir::Value windowedPool(NodeContext &n, mlir::Value x, const WindowNd &w,
                         bool max, bool ceilMode, bool countIncludePad) {
  auto s = shapeOf(x);
  size_t spatial = s.size() - 2;
  std::vector<int64_t> out(spatial), span(spatial);
  for (size_t d = 0; d < spatial; ++d) {
    int64_t in = s[2 + d], padded = in + w.pads[d] + w.pads[spatial + d];
    span[d] = (w.kernel[d] - 1) * w.dilations[d] + 1;
    int64_t room = padded - span[d];
    if (room < 0)
      n.fail("the kernel is larger than the padded input on spatial dim " +
             std::to_string(d));
    out[d] = (ceilMode ? (room + w.strides[d] - 1) / w.strides[d]
                       : room / w.strides[d]) +
             1;
    // The last window must start inside the input or its begin padding.
    if (ceilMode && (out[d] - 1) * w.strides[d] >= in + w.pads[d])
      --out[d];
  }
  double fill = max ? -INFINITY : 0.0;
  mlir::Value xp = x;
  for (size_t d = 0; d < spatial; ++d) {
    int64_t in = s[2 + d];
    int64_t needed = (out[d] - 1) * w.strides[d] + span[d];
    int64_t end = std::max<int64_t>(0, needed - in - w.pads[d]);
    xp = padAxis(n, xp, 2 + d, w.pads[d], end, fill);
  }
  mlir::Value acc;
  std::vector<int64_t> k(spatial, 0);
  while (true) {
    std::vector<int64_t> starts(spatial);
    for (size_t d = 0; d < spatial; ++d)
      starts[d] = k[d] * w.dilations[d];
    mlir::Value part = sliceSpatial(n, xp, starts, w.strides, out);
    acc = !acc ? part : n.binary(max ? "kiln.max" : "kiln.add", acc, part);
    size_t d = spatial;
    while (d > 0 && ++k[d - 1] == w.kernel[d - 1])
      k[--d] = 0;
    if (d == 0)
      break;
  }
  if (max)
    return acc;
  // count[o] = prod_d |window_d(o_d) intersected with the counted range|
  std::vector<int64_t> countShape(s.size(), 1);
  std::copy(out.begin(), out.end(), countShape.begin() + 2);
  std::vector<double> count(numElements(out), 1.0);
  for (int64_t flat = 0; flat < static_cast<int64_t>(count.size()); ++flat) {
    int64_t rest = flat;
    for (size_t d = spatial; d-- > 0;) {
      int64_t o = rest % out[d];
      rest /= out[d];
      int64_t lo = countIncludePad ? 0 : w.pads[d];
      int64_t hi = countIncludePad ? s[2 + d] + w.pads[d] + w.pads[spatial + d]
                                   : s[2 + d] + w.pads[d];
      int64_t inside = 0;
      for (int64_t i = 0; i < w.kernel[d]; ++i) {
        int64_t p = o * w.strides[d] + i * w.dilations[d];
        inside += p >= lo && p < hi;
      }
      count[flat] *= inside;
    }
  }
  return n.binary(
      "kiln.div", acc,
      n.constantValue(Tensor::fromDoubles(dtypeOf(x), countShape, count)));
}

/// 3-D convolution as a sum of 2-D ones, one per kernel depth offset kd,
/// with the output depth folded into the batch:
///   y[:, :, od] = sum_kd conv2d(xpad[:, :, od * sd + kd * dd], w[:, :, kd])
mlir::Value conv3d(NodeContext &n, mlir::Value x, mlir::Value w,
                   mlir::Value bias, const WindowNd &win, int64_t groups) {
  auto xs = shapeOf(x), ws = shapeOf(w);
  int64_t batch = xs[0], channels = xs[1], outChannels = ws[0];
  mlir::Value xp = padAxis(n, x, 2, win.pads[0], win.pads[3], 0.0);
  int64_t depth = shapeOf(xp)[2];
  int64_t span = (win.kernel[0] - 1) * win.dilations[0] + 1;
  if (depth < span)
    n.fail("the kernel is deeper than the padded input");
  int64_t outDepth = (depth - span) / win.strides[0] + 1;
  mlir::Value sum;
  for (int64_t kd = 0; kd < win.kernel[0]; ++kd) {
    // [N, C, OD, H, W] -> [N * OD, C, H, W]
    std::vector<int64_t> b(5, 0), e(xs), st(5, 1);
    b[2] = kd * win.dilations[0];
    st[2] = win.strides[0];
    e[2] = b[2] + (outDepth - 1) * win.strides[0] + 1;
    e[1] = channels;
    mlir::Value slab =
        n.create("kiln.slice", {xp},
                 {n.arrayAttr("starts", b), n.arrayAttr("ends", e),
                  n.arrayAttr("steps", st)});
    slab = n.reshape(n.transpose(slab, {0, 2, 1, 3, 4}),
                     {batch * outDepth, channels, xs[3], xs[4]});
    // w[:, :, kd] as [O, C / groups, KH, KW]
    mlir::Value wk =
        n.create("kiln.slice", {w},
                 {n.arrayAttr("starts", {0, 0, kd, 0, 0}),
                  n.arrayAttr("ends", {ws[0], ws[1], kd + 1, ws[3], ws[4]}),
                  n.arrayAttr("steps", {1, 1, 1, 1, 1})});
    wk = n.reshape(wk, {ws[0], ws[1], ws[3], ws[4]});
    llvm::SmallVector<mlir::Value> operands = {slab, wk};
    if (bias && kd == 0)
      operands.push_back(bias);
    mlir::Value y = n.create(
        "kiln.conv2d", operands,
        {n.arrayAttr("strides", {win.strides[1], win.strides[2]}),
         n.arrayAttr("pads",
                     {win.pads[1], win.pads[2], win.pads[4], win.pads[5]}),
         n.arrayAttr("dilations", {win.dilations[1], win.dilations[2]}),
         n.i64Attr("groups", groups)});
    sum = !sum ? y : n.binary("kiln.add", sum, y);
  }
  // [N * OD, O, OH, OW] -> [N, O, OD, OH, OW]
  auto ys = shapeOf(sum);
  mlir::Value y = n.reshape(sum, {batch, outDepth, outChannels, ys[2], ys[3]});
  return n.transpose(y, {0, 2, 1, 3, 4});
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
  if (shapeOf(x).size() == 5 && ws.size() == 5) {
    WindowNd nd = readWindowNd(n, shapeOf(x), kernel);
    n.setOutput(0, conv3d(n, x, w, n.hasInput(2) ? n.input(2) : mlir::Value(),
                          nd, n.attrInt("group", 1)));
    return;
  }
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

/// ConvTranspose as a direct convolution of the zero-upsampled input with
/// the flipped, in/out-swapped kernel:
///   up = x with stride - 1 zeros between elements ([(H - 1) * s + 1, ...])
///   y = conv2d(pad(up, (k - 1) * d - pad_begin, (k - 1) * d - pad_end +
///              output_padding), flip(w)^T, dilation d, groups g)
/// Negative padding crops. 1-D runs as 2-D with a unit height.
void convTranspose(NodeContext &n) {
  mlir::Value x = n.input(0), w = n.input(1);
  auto xs = shapeOf(x), ws = shapeOf(w);
  if (xs.size() != 3 && xs.size() != 4)
    n.unsupported(std::to_string(xs.size() < 2 ? 0 : xs.size() - 2) +
                  "-D ConvTranspose");
  if (ws.size() != xs.size())
    n.fail("weight rank " + std::to_string(ws.size()) +
           " does not match input rank " + std::to_string(xs.size()));
  size_t spatial = xs.size() - 2;
  int64_t groups = n.attrInt("group", 1);
  auto kernel = n.attrInts("kernel_shape",
                           std::vector<int64_t>(ws.begin() + 2, ws.end()));
  auto strides = n.attrInts("strides", std::vector<int64_t>(spatial, 1));
  auto dilations = n.attrInts("dilations", std::vector<int64_t>(spatial, 1));
  auto outPad = n.attrInts("output_padding", std::vector<int64_t>(spatial, 0));
  auto pads = n.attrInts("pads", std::vector<int64_t>(2 * spatial, 0));
  if (kernel.size() != spatial || strides.size() != spatial ||
      dilations.size() != spatial || outPad.size() != spatial ||
      pads.size() != 2 * spatial)
    n.fail("kernel_shape, strides, dilations, output_padding or pads do not "
           "match " +
           std::to_string(spatial) + " spatial dims");
  std::string autoPad = n.attrString("auto_pad", "NOTSET");
  auto outShape = n.attrInts("output_shape");
  if (!outShape.empty() || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
    if (outShape.empty())
      for (size_t i = 0; i < spatial; ++i)
        outShape.push_back(xs[2 + i] * strides[i]);
    if (outShape.size() != spatial)
      n.fail("output_shape has " + std::to_string(outShape.size()) +
             " dims, expected " + std::to_string(spatial));
    for (size_t i = 0; i < spatial; ++i) {
      int64_t total = strides[i] * (xs[2 + i] - 1) + outPad[i] +
                      (kernel[i] - 1) * dilations[i] + 1 - outShape[i];
      // Floor division, as the ONNX reference: a negative total (output
      // padding) extends the end.
      int64_t small = total >= 0 ? total / 2 : -((-total + 1) / 2);
      bool upper = autoPad == "SAME_UPPER";
      pads[i] = upper ? small : total - small;
      pads[spatial + i] = upper ? total - small : small;
    }
  } else if (autoPad == "VALID") {
    std::fill(pads.begin(), pads.end(), 0);
  }
  if (spatial == 1) {
    x = n.reshape(x, {xs[0], xs[1], 1, xs[2]});
    w = n.reshape(w, {ws[0], ws[1], 1, ws[2]});
    kernel.insert(kernel.begin(), 1);
    strides.insert(strides.begin(), 1);
    dilations.insert(dilations.begin(), 1);
    outPad.insert(outPad.begin(), 0);
    pads = {0, pads[0], 0, pads[1]};
    xs = shapeOf(x);
    ws = shapeOf(w);
  }
  int64_t batch = xs[0], channels = xs[1], h = xs[2], wd = xs[3];
  // Zero-upsample: [N, C, H, 1, W, 1] + zeros -> [N, C, H, sh, W, sw].
  if (strides[0] > 1 || strides[1] > 1) {
    mlir::Value up = n.reshape(x, {batch, channels, h, 1, wd, 1});
    up = padAxis(n, up, 3, 0, strides[0] - 1, 0.0);
    up = padAxis(n, up, 5, 0, strides[1] - 1, 0.0);
    up = n.reshape(up, {batch, channels, h * strides[0], wd * strides[1]});
    x = sliceSpatial(n, up, {0, 0}, {1, 1},
                     {(h - 1) * strides[0] + 1, (wd - 1) * strides[1] + 1});
  }
  // Full-convolution padding; negative amounts crop.
  std::vector<int64_t> convPads(4, 0);
  for (size_t i = 0; i < 2; ++i) {
    int64_t reach = (kernel[i] - 1) * dilations[i];
    int64_t begin = reach - pads[i], end = reach - pads[2 + i] + outPad[i];
    if (begin < 0 || end < 0) {
      auto s = shapeOf(x);
      int64_t dim = s[2 + i];
      int64_t from = std::max<int64_t>(0, -begin);
      int64_t to = dim - std::max<int64_t>(0, -end);
      if (to <= from)
        n.fail("padding leaves no input on spatial dim " + std::to_string(i));
      std::vector<int64_t> b(4, 0), e(s), st(4, 1);
      b[2 + i] = from;
      e[2 + i] = to;
      x = n.create("kiln.slice", {x},
                   {n.arrayAttr("starts", b), n.arrayAttr("ends", e),
                    n.arrayAttr("steps", st)});
    }
    convPads[i] = std::max<int64_t>(0, begin);
    convPads[2 + i] = std::max<int64_t>(0, end);
  }
  // Weight [Cin, Cout / g, kh, kw] -> flipped [Cout, Cin / g, kh, kw].
  int64_t inPerGroup = ws[0] / groups, outPerGroup = ws[1];
  mlir::Value flipped =
      n.create("kiln.slice", {w},
               {n.arrayAttr("starts", {0, 0, ws[2] - 1, ws[3] - 1}),
                n.arrayAttr("ends", {ws[0], ws[1], -1, -1}),
                n.arrayAttr("steps", {1, 1, -1, -1})});
  flipped = n.reshape(flipped, {groups, inPerGroup, outPerGroup, ws[2], ws[3]});
  flipped = n.transpose(flipped, {0, 2, 1, 3, 4});
  flipped =
      n.reshape(flipped, {groups * outPerGroup, inPerGroup, ws[2], ws[3]});
  llvm::SmallVector<mlir::Value> operands = {x, flipped};
  if (n.hasInput(2))
    operands.push_back(n.input(2));
  mlir::Value y = n.create(
      "kiln.conv2d", operands,
      {n.arrayAttr("strides", {1, 1}), n.arrayAttr("pads", convPads),
       n.arrayAttr("dilations", dilations), n.i64Attr("groups", groups)});
  if (spatial == 1) {
    auto ys = shapeOf(y);
    y = n.reshape(y, {ys[0], ys[1], ys[3]});
  }
  n.setOutput(0, y);
}

/// LRN(x) = x / (bias + alpha / size * square_sum)^beta, square_sum[c] the
/// sum of x^2 over channels [c - floor((size - 1) / 2), c + ceil((size - 1)
/// / 2)] (zero outside), as `size` channel-shifted slices of the padded x^2.
void lrn(NodeContext &n) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  if (s.size() < 3)
    n.fail("expected an input of rank >= 3 [N, C, ...], got rank " +
           std::to_string(s.size()));
  if (!isFloat(dtypeOf(x)))
    n.unsupported(std::string("element type ") + dtypeName(dtypeOf(x)));
  int64_t size = n.requireAttrInt("size");
  if (size <= 0)
    n.fail("size must be positive, got " + std::to_string(size));
  double alpha = n.attrFloat("alpha", 1e-4), beta = n.attrFloat("beta", 0.75),
         bias = n.attrFloat("bias", 1.0);
  mlir::Value padded =
      padAxis(n, n.binary("kiln.mul", x, x), 1, (size - 1) / 2, size / 2, 0.0);
  mlir::Value sum;
  for (int64_t k = 0; k < size; ++k) {
    std::vector<int64_t> b(s.size(), 0), e(s), st(s.size(), 1);
    b[1] = k;
    e[1] = k + s[1];
    mlir::Value part =
        n.create("kiln.slice", {padded},
                 {n.arrayAttr("starts", b), n.arrayAttr("ends", e),
                  n.arrayAttr("steps", st)});
    sum = !sum ? part : n.binary("kiln.add", sum, part);
  }
  mlir::Value base = n.binary(
      "kiln.add", n.scalarLike(bias, x),
      n.binary("kiln.mul", sum, n.scalarLike(alpha / double(size), x)));
  n.setOutput(0, n.binary("kiln.div", x,
                          n.binary("kiln.pow", base, n.scalarLike(beta, x))));
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
  WindowNd nd = readWindowNd(n, shapeOf(x), kernel);
  bool dilated = llvm::any_of(nd.dilations, [](int64_t d) { return d != 1; });
  if (dilated || nd.kernel.size() > 2) {
    // Beyond kiln's 2-D pooling ops: a composition.
    mlir::Value y = windowedPool(n, x, nd, max, n.attrInt("ceil_mode", 0) != 0,
                                 n.attrInt("count_include_pad", 0) != 0);
    n.setOutput(0, n.cast(y, type));
    return;
  }
  Window win = readWindow(n, shapeOf(x), kernel);
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
  // Before opset 13 the input is coerced to 2-D at `axis`; at the last axis
  // (what PyTorch writes for dim=-1) that is the softmax of the last axis,
  // so no reshapes are needed (and kiln-fuse-attention sees the softmax
  // between the attention matmuls).
  if (!flatten || rank == 0 || axis == rank - 1) {
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
  int64_t axis = n.normalizeAxis(n.attrInt("axis", -1), rank);
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

/// RMSNormalization (opset 23): y = x / sqrt(mean(x^2 over [axis, rank)) +
/// epsilon) * scale, scale broadcast to x.shape[axis:]; y has scale's type.
/// stash_type asks for f32 intermediates, which kiln.rms_norm's kernels use
/// for f16/bf16 anyway; when x and scale differ in type, both go to f32.
void rmsNorm(NodeContext &n) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  int64_t axis = n.normalizeAxis(n.attrInt("axis", -1), s.size());
  std::vector<int64_t> normShape(s.begin() + axis, s.end());
  mlir::Value scale = n.broadcastTo(n.input(1), normShape);
  DType outType = dtypeOf(scale);
  if (dtypeOf(x) != outType) {
    x = n.cast(x, DType::f32);
    scale = n.cast(scale, DType::f32);
  }
  mlir::Value y =
      n.create("kiln.rms_norm", {x, scale},
               {n.i64Attr("axis", axis),
                n.f64Attr("epsilon", n.attrFloat("epsilon", 1e-5))});
  n.setOutput(0, n.cast(y, outType));
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
  r.add("ConvTranspose", 1, convTranspose);
  r.add("LRN", 1, lrn);
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
  r.add("RMSNormalization", 23, rmsNorm);
  r.add("InstanceNormalization", 1, instanceNorm);
  // MeanVarianceNormalization(x) = (x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9)
  // over `axes` (default [0, 2, 3]), as the ONNX function body computes it.
  r.add("MeanVarianceNormalization", 9, [](NodeContext &n) {
    mlir::Value x = n.input(0);
    if (!isFloat(dtypeOf(x)))
      n.unsupported(std::string("element type ") + dtypeName(dtypeOf(x)));
    auto axes = n.attrInts("axes", {0, 2, 3});
    for (auto &a : axes)
      if (a < 0)
        a += shapeOf(x).size();
    mlir::Value mean = n.reduce("kiln.reduce_mean", x, axes, true);
    mlir::Value meanSq =
        n.reduce("kiln.reduce_mean", n.binary("kiln.mul", x, x), axes, true);
    mlir::Value std =
        n.unary("kiln.sqrt",
                n.binary("kiln.sub", meanSq, n.binary("kiln.mul", mean, mean)));
    n.setOutput(0, n.binary("kiln.div", n.binary("kiln.sub", x, mean),
                            n.binary("kiln.add", std, n.scalarLike(1e-9, x))));
  });
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
      if (host::toInts(*training).at(0) != 0) {
        // Training with ratio 0 drops nothing: still the identity.
        const Tensor *ratio = n.hasInput(1) ? n.constant(1) : nullptr;
        if (!ratio || ratio->toDoubles().at(0) != 0.0)
          n.unsupported("training mode");
      }
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
