//===- frontends/onnx/Indexing.cpp - Index- and mask-based handlers -------===//
//
// ONNX ops that select, mask or accumulate elements by position:
// GatherElements, GatherND, OneHot, EyeLike, Trilu, Hardmax, CumSum and
// Resize. kiln has no op for any of them; each is a composition of kiln ops
// over an import-time position tensor (an iota along one axis, a triangular
// mask, the flat offsets of a static shape, resampling taps), so every shape
// involved must be static, which the importer guarantees. Each composition is
// headed by its formula.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace kiln::onnx_import {

namespace {

/// An i64 constant of rank `rank`, all dims 1 but `axis` (of size `size`),
/// holding 0, 1, ..., size - 1 along `axis`.
mlir::Value iotaAlong(NodeContext &n, int64_t rank, int64_t axis,
                      int64_t size) {
  std::vector<int64_t> shape(rank, 1), values(size);
  shape[axis] = size;
  std::iota(values.begin(), values.end(), 0);
  return n.constantValue(host::fromInts(shape, values));
}

/// Integer indices as i64 with negative ones counted from the end of a dim
/// of size `dim`: where(i < 0, i + dim, i).
mlir::Value wrapIndices(NodeContext &n, mlir::Value indices, int64_t dim) {
  mlir::Value i = n.cast(indices, DType::i64);
  mlir::Value neg = n.compare("lt", i, n.scalar(0, DType::i64));
  return n.where(neg, n.binary("kiln.add", i, n.scalar(dim, DType::i64)), i);
}

/// Element `index` of a 1-D input as a rank-0 value (host or IR).
mlir::Value elementOf(NodeContext &n, int input, int64_t index) {
  if (const Tensor *t = n.constant(input)) {
    auto v = t->toDoubles();
    if (index >= static_cast<int64_t>(v.size()))
      n.fail("input " + std::to_string(input) + " has " +
             std::to_string(v.size()) + " elements, expected at least " +
             std::to_string(index + 1));
    return n.scalar(v[index], t->dtype());
  }
  mlir::Value x = n.input(input);
  mlir::Value e =
      n.create("kiln.slice", {x},
               {n.arrayAttr("starts", {index}),
                n.arrayAttr("ends", {index + 1}), n.arrayAttr("steps", {1})});
  return n.reshape(e, {});
}

/// GatherElements(data, indices, axis): out[p] = data[p with p[axis] :=
/// indices[p]], as one kiln.gather on the flattened data with flat offsets
///   offset(p) = indices[p] * stride[axis] + sum_{d != axis} p[d] * stride[d]
/// where the second term is an import-time constant of the indices' shape.
void gatherElements(NodeContext &n) {
  auto ds = n.shape(0), is = n.shape(1);
  int64_t rank = ds.size();
  if (static_cast<int64_t>(is.size()) != rank)
    n.fail("indices have rank " + std::to_string(is.size()) +
           ", data has rank " + std::to_string(rank));
  int64_t axis = n.normalizeAxis(n.attrInt("axis", 0), rank);
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis && is[d] > ds[d])
      n.fail("indices dim " + std::to_string(d) + " is " +
             std::to_string(is[d]) + ", larger than the data's " +
             std::to_string(ds[d]));
  std::vector<int64_t> strides(rank, 1);
  for (int64_t d = rank - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * ds[d + 1];
  std::vector<int64_t> offsets(numElements(is), 0);
  for (int64_t flat = 0; flat < static_cast<int64_t>(offsets.size()); ++flat) {
    int64_t rest = flat, offset = 0;
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (d != axis)
        offset += (rest % is[d]) * strides[d];
      rest /= is[d];
    }
    offsets[flat] = offset;
  }
  mlir::Value idx = wrapIndices(n, n.input(1), ds[axis]);
  mlir::Value flatIdx =
      n.binary("kiln.add",
               n.binary("kiln.mul", idx, n.scalar(strides[axis], DType::i64)),
               n.constantValue(host::fromInts(is, offsets)));
  mlir::Value flatData = n.reshape(n.input(0), {numElements(ds)});
  n.setOutput(
      0, n.create("kiln.gather", {flatData, flatIdx}, {n.i64Attr("axis", 0)}));
}

/// GatherND(data, indices, batch_dims = b) with m = indices.shape[-1], as
/// one kiln.gather on data flattened to [B * P, rest...] (B the batch
/// elements, P the elements of the m indexed dims):
///   offset = batch * P + sum_j indices[..., j] * stride_j
/// where batch * P is an import-time constant of the indices' outer shape.
void gatherND(NodeContext &n) {
  auto ds = n.shape(0), is = n.shape(1);
  int64_t r = ds.size(), q = is.size();
  int64_t b = n.attrInt("batch_dims", 0);
  if (q < 1 || r < 1)
    n.fail("data and indices must have rank >= 1");
  int64_t m = is.back();
  if (b < 0 || b >= std::min(r, q) || m < 1 || b + m > r)
    n.fail("indices.shape[-1] = " + std::to_string(m) + " with batch_dims " +
           std::to_string(b) + " does not fit data of rank " +
           std::to_string(r));
  for (int64_t d = 0; d < b; ++d)
    if (is[d] != ds[d])
      n.fail("batch dim " + std::to_string(d) + " differs: indices have " +
             std::to_string(is[d]) + ", data has " + std::to_string(ds[d]));
  int64_t batch = 1, indexed = 1;
  for (int64_t d = 0; d < b; ++d)
    batch *= ds[d];
  for (int64_t d = b; d < b + m; ++d)
    indexed *= ds[d];
  std::vector<int64_t> flatShape = {batch * indexed};
  flatShape.insert(flatShape.end(), ds.begin() + b + m, ds.end());
  std::vector<int64_t> outer(is.begin(), is.end() - 1);
  // Batch offsets: the position over the first b dims of `outer`, times P.
  std::vector<int64_t> offsets(numElements(outer));
  int64_t inner = numElements(outer) / std::max<int64_t>(batch, 1);
  for (int64_t i = 0; i < static_cast<int64_t>(offsets.size()); ++i)
    offsets[i] = (i / std::max<int64_t>(inner, 1)) * indexed;
  mlir::Value linear = n.constantValue(host::fromInts(outer, offsets));
  mlir::Value idx = n.cast(n.input(1), DType::i64);
  int64_t stride = indexed;
  for (int64_t j = 0; j < m; ++j) {
    stride /= ds[b + j];
    std::vector<int64_t> starts(q, 0), ends(is), steps(q, 1);
    starts[q - 1] = j;
    ends[q - 1] = j + 1;
    mlir::Value col =
        n.create("kiln.slice", {idx},
                 {n.arrayAttr("starts", starts), n.arrayAttr("ends", ends),
                  n.arrayAttr("steps", steps)});
    col = wrapIndices(n, n.reshape(col, outer), ds[b + j]);
    linear = n.binary(
        "kiln.add", linear,
        n.binary("kiln.mul", col, n.scalar(double(stride), DType::i64)));
  }
  mlir::Value flat = n.reshape(n.input(0), flatShape);
  n.setOutput(0,
              n.create("kiln.gather", {flat, linear}, {n.i64Attr("axis", 0)}));
}

/// ScatterND(data, indices, updates), reduction "none", with constant
/// indices. PyTorch writes it for slice assignment: Swin's shifted-window
/// mask (`mask[h0:h1, w0:w1] = count` on zeros, all constant: evaluated at
/// import) and the 4-D mask of HF LLaMA-style models
/// (`mask[..., :n] = mask[..., :n].masked_fill(pad, min)`, updates computed
/// from an input):
///   out = where(covered, gather(updates as rows, row of each position), data)
/// with `covered` and the rows computed at import from the indices.
void scatterND(NodeContext &n) {
  std::string reduction = n.attrString("reduction", "none");
  if (reduction != "none")
    n.unsupported("reduction '" + reduction + "'");
  const Tensor *indices = n.constant(1);
  if (!indices)
    n.unsupported("indices computed from the model's inputs");
  auto ds = n.shape(0), is = indices->shape(), us = n.shape(2);
  int64_t r = ds.size(), q = is.size();
  int64_t k = q >= 1 ? is.back() : 0;
  if (q < 1 || k < 1 || k > r)
    n.fail("indices of shape " + shapeToString(is) +
           " do not index data of rank " + std::to_string(r));
  std::vector<int64_t> want(is.begin(), is.end() - 1);
  want.insert(want.end(), ds.begin() + k, ds.end());
  if (us != want)
    n.fail("updates have shape " + shapeToString(us) + ", expected " +
           shapeToString(want));
  if (n.dtype(2) != n.dtype(0))
    n.fail("updates are " + std::string(dtypeName(n.dtype(2))) + ", data is " +
           dtypeName(n.dtype(0)));
  // The update row written to each indexed position (the last write wins,
  // as in the reference implementation), or -1.
  std::vector<int64_t> indexed(ds.begin(), ds.begin() + k);
  std::vector<int64_t> row(numElements(indexed), -1);
  std::vector<int64_t> index = host::toInts(*indices);
  int64_t count = numElements(std::vector<int64_t>(is.begin(), is.end() - 1));
  for (int64_t i = 0; i < count; ++i) {
    int64_t offset = 0;
    for (int64_t j = 0; j < k; ++j) {
      int64_t v = index[i * k + j];
      if (v < 0)
        v += ds[j];
      if (v < 0 || v >= ds[j])
        n.fail("index " + std::to_string(index[i * k + j]) +
               " is out of range for dim " + std::to_string(j) + " of size " +
               std::to_string(ds[j]));
      offset = offset * ds[j] + v;
    }
    row[offset] = i;
  }
  int64_t slice = numElements(std::vector<int64_t>(ds.begin() + k, ds.end()));
  const Tensor *data = n.constant(0), *updates = n.constant(2);
  if (data && updates) {
    Tensor out = Tensor::fromBytes(data->dtype(), ds, data->data());
    size_t bytes = slice * dtypeSize(data->dtype());
    auto *dst = static_cast<char *>(out.data());
    auto *src = static_cast<const char *>(updates->data());
    for (size_t p = 0; p < row.size(); ++p)
      if (row[p] >= 0)
        std::memcpy(dst + p * bytes, src + row[p] * bytes, bytes);
    n.setOutput(0, std::move(out));
    return;
  }
  // No index (indices of shape [0, k]): data unchanged.
  if (count == 0) {
    n.setOutput(0, n.input(0));
    return;
  }
  // Every position written once, in order (a slice assignment to the whole
  // of data): the updates are the result.
  bool identity = count == static_cast<int64_t>(row.size());
  for (size_t p = 0; identity && p < row.size(); ++p)
    identity = row[p] == static_cast<int64_t>(p);
  if (identity) {
    n.setOutput(0, n.reshape(n.input(2), ds));
    return;
  }
  std::vector<int64_t> rowsShape = {count};
  rowsShape.insert(rowsShape.end(), ds.begin() + k, ds.end());
  std::vector<int64_t> covered(row.size()), rows(row.size());
  for (size_t p = 0; p < row.size(); ++p) {
    covered[p] = row[p] >= 0;
    rows[p] = std::max<int64_t>(row[p], 0);
  }
  mlir::Value gathered =
      n.create("kiln.gather",
               {n.reshape(n.input(2), rowsShape),
                n.constantValue(host::fromInts(indexed, rows))},
               {n.i64Attr("axis", 0)});
  if (llvm::all_of(covered, [](int64_t c) { return c != 0; })) {
    n.setOutput(0, gathered);
    return;
  }
  std::vector<int64_t> coveredShape = indexed;
  coveredShape.resize(r, 1);
  n.setOutput(0, n.where(n.constantValue(
                             host::fromInts(coveredShape, covered, DType::i1)),
                         gathered, n.input(0)));
}

/// OneHot(indices, depth, values = [off, on], axis):
///   out = where(unsqueeze(indices, axis) == iota(depth), on, off)
void oneHot(NodeContext &n) {
  auto depthValues = n.requireConstant(1, "depth").toDoubles();
  if (depthValues.size() != 1)
    n.fail("depth must have one element, got " +
           std::to_string(depthValues.size()));
  int64_t depth = static_cast<int64_t>(depthValues[0]);
  if (depth <= 0)
    n.fail("depth must be positive, got " + std::to_string(depth));
  auto is = n.shape(0);
  int64_t rank = is.size() + 1;
  int64_t axis = n.normalizeAxis(n.attrInt("axis", -1), rank);
  std::vector<int64_t> unsqueezed(is);
  unsqueezed.insert(unsqueezed.begin() + axis, 1);
  // Non-integer indices are truncated toward zero, as ONNX says.
  mlir::Value idx = n.reshape(wrapIndices(n, n.input(0), depth), unsqueezed);
  mlir::Value hit = n.compare("eq", idx, iotaAlong(n, rank, axis, depth));
  n.setOutput(0, n.where(hit, elementOf(n, 2, 1), elementOf(n, 2, 0)));
}

/// EyeLike(x, k, dtype): ones on diagonal k of a 2-D shape, an import-time
/// constant.
void eyeLike(NodeContext &n) {
  auto s = n.shape(0);
  if (s.size() != 2)
    n.fail("expected a 2-D input, got rank " + std::to_string(s.size()));
  DType type = n.dtype(0);
  if (n.hasAttr("dtype")) {
    auto onnxType = static_cast<int32_t>(n.attrInt("dtype", 0));
    auto t = dtypeFromOnnx(onnxType);
    if (!t)
      n.unsupported("dtype " + onnxTypeName(onnxType));
    type = *t;
  }
  int64_t k = n.attrInt("k", 0);
  std::vector<double> values(s[0] * s[1], 0.0);
  for (int64_t i = 0; i < s[0]; ++i)
    if (i + k >= 0 && i + k < s[1])
      values[i * s[1] + i + k] = 1.0;
  n.setOutput(0, Tensor::fromDoubles(type, s, values));
}

/// Trilu(x, k, upper): keeps x[..., i, j] where j - i >= k (upper) or
/// j - i <= k (lower), zero elsewhere:
///   out = where(mask, x, 0), mask an import-time [N, M] constant.
void trilu(NodeContext &n) {
  auto s = n.shape(0);
  if (s.size() < 2)
    n.fail("expected rank >= 2, got rank " + std::to_string(s.size()));
  int64_t k = 0;
  if (n.hasInput(1)) {
    auto ks = n.requireInts(1, "k");
    if (ks.size() != 1)
      n.fail("k must have one element, got " + std::to_string(ks.size()));
    k = ks[0];
  }
  bool upper = n.attrInt("upper", 1) != 0;
  Tensor maskTensor = host::triangle(s[s.size() - 2], s.back(), k, upper);
  if (const Tensor *x = n.constant(0)) {
    // PyTorch's causal masks: triu(ones) folds to a constant.
    n.setOutput(0, host::where(maskTensor, *x,
                               Tensor::fromDoubles(x->dtype(), {}, {0.0})));
    return;
  }
  mlir::Value x = n.input(0);
  n.setOutput(0, n.where(n.constantValue(maskTensor), x, n.scalarLike(0, x)));
}

/// Hardmax(x, axis): 1 at the first maximum along `axis`, 0 elsewhere:
///   first = reduce_min(where(x == reduce_max(x), iota, size))
///   out = cast(iota == first)
/// Before opset 13 the input is seen as 2-D [before axis, from axis on].
void hardmax(NodeContext &n) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  int64_t rank = s.size();
  bool flatten = n.opset() < 13;
  int64_t axis = n.attrInt("axis", flatten ? 1 : -1);
  if (flatten && axis == rank && rank > 0)
    axis = rank; // every dim is a row: one element per row
  else
    axis = n.normalizeAxis(axis, rank);
  if (flatten) {
    int64_t rows = 1, cols = 1;
    for (int64_t i = 0; i < rank; ++i)
      (i < axis ? rows : cols) *= s[i];
    x = n.reshape(x, {rows, cols});
    axis = 1;
  }
  auto xs = shapeOf(x);
  int64_t xRank = xs.size(), size = xs[axis];
  mlir::Value iota = iotaAlong(n, xRank, axis, size);
  mlir::Value top = n.reduce("kiln.reduce_max", x, {axis}, true);
  mlir::Value candidates = n.where(n.compare("eq", x, top), iota,
                                   n.scalar(double(size), DType::i64));
  mlir::Value first = n.reduce("kiln.reduce_min", candidates, {axis}, true);
  mlir::Value y = n.cast(n.compare("eq", iota, first), dtypeOf(x));
  n.setOutput(0, flatten ? n.reshape(y, s) : y);
}

/// CumSum(x, axis, exclusive, reverse) as a matmul with a triangular 0/1
/// matrix along the moved-last axis:
///   out[..., j] = sum_i x[..., i] * T[i, j]
///   T[i, j] = i <= j (i < j exclusive; i >= j / i > j reversed).
/// Integers go through f64 (exact below 2^53).
void cumSum(NodeContext &n) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  int64_t rank = s.size();
  if (rank == 0)
    n.fail("expected rank >= 1, got a scalar");
  auto axes = n.requireInts(1, "axis");
  if (axes.size() != 1)
    n.fail("axis must have one element, got " + std::to_string(axes.size()));
  int64_t axis = n.normalizeAxis(axes[0], rank);
  bool exclusive = n.attrInt("exclusive", 0), reverse = n.attrInt("reverse", 0);
  DType type = dtypeOf(x);
  DType work = isFloat(type) ? type : DType::f64;
  int64_t size = s[axis];
  std::vector<double> tri(size * size);
  for (int64_t i = 0; i < size; ++i)
    for (int64_t j = 0; j < size; ++j)
      tri[i * size + j] =
          reverse ? (exclusive ? i > j : i >= j) : (exclusive ? i < j : i <= j);
  std::vector<int64_t> perm(rank);
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[axis], perm[rank - 1]);
  mlir::Value moved = axis == rank - 1 ? x : n.transpose(x, perm);
  mlir::Value rows = n.reshape(
      n.cast(moved, work), {numElements(s) / std::max<int64_t>(size, 1), size});
  mlir::Value summed =
      n.binary("kiln.matmul", rows,
               n.constantValue(Tensor::fromDoubles(work, {size, size}, tri)));
  mlir::Value y = n.reshape(n.cast(summed, type), shapeOf(moved));
  n.setOutput(0, axis == rank - 1 ? y : n.transpose(y, perm));
}

/// One output position of a resampled axis: input indices (clamped to the
/// axis) and their weights.
struct Taps {
  std::vector<int64_t> index;
  std::vector<double> weight;
};

/// How Resize (or Upsample) resamples: its mode attributes.
struct Resampling {
  std::string mode, transform, nearest;
  double cubicA = -0.75;
  bool excludeOutside = false;

  static Resampling fromAttrs(NodeContext &n) {
    return {n.attrString("mode", "nearest"),
            n.attrString("coordinate_transformation_mode", "half_pixel"),
            n.attrString("nearest_mode", "round_prefer_floor"),
            n.attrFloat("cubic_coeff_a", -0.75),
            n.attrInt("exclude_outside", 0) != 0};
  }
};

/// Resize's source coordinate of output position `x` on one axis.
/// As the ONNX reference, the resized length is `in * scale` (not the
/// floored output size) where a mode uses it.
double sourceCoordinate(NodeContext &n, const std::string &mode, int64_t x,
                        double scale, int64_t in) {
  double out = in * scale;
  if (mode == "half_pixel")
    return (x + 0.5) / scale - 0.5;
  if (mode == "pytorch_half_pixel")
    return out > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
  if (mode == "align_corners")
    return out == 1 ? 0.0 : x * double(in - 1) / (out - 1);
  if (mode == "asymmetric")
    return x / scale;
  if (mode == "tf_half_pixel_for_nn")
    return (x + 0.5) / scale;
  n.unsupported("coordinate_transformation_mode '" + mode + "'");
}

/// The taps of every output position of one axis: 1 (nearest), 2 (linear)
/// or 4 (cubic) input positions, edge-clamped.
std::vector<Taps> resampleTaps(NodeContext &n, const Resampling &how,
                               int64_t in, int64_t out, double scale) {
  const std::string &mode = how.mode, &transform = how.transform,
                    &nearest = how.nearest;
  double a = how.cubicA;
  bool excludeOutside = how.excludeOutside;
  auto clampIndex = [&](int64_t i) {
    return std::max<int64_t>(0, std::min(in - 1, i));
  };
  std::vector<Taps> taps(out);
  for (int64_t o = 0; o < out; ++o) {
    double x = sourceCoordinate(n, transform, o, scale, in);
    Taps &t = taps[o];
    if (mode == "nearest") {
      double f = std::floor(x), frac = x - f;
      int64_t i;
      if (nearest == "round_prefer_floor")
        i = frac <= 0.5 ? f : f + 1;
      else if (nearest == "round_prefer_ceil")
        i = frac < 0.5 ? f : f + 1;
      else if (nearest == "floor")
        i = f;
      else if (nearest == "ceil")
        i = std::ceil(x);
      else
        n.fail("unknown nearest_mode '" + nearest + "'");
      t.index = {clampIndex(i)};
      t.weight = {1.0};
    } else if (mode == "linear") {
      double f = std::floor(x), r = x - f;
      t.index = {clampIndex(f), clampIndex(f + 1)};
      t.weight = {1 - r, r};
    } else if (mode == "cubic") {
      // Keys' cubic convolution with coefficient a at distances 1+r, r,
      // 1-r, 2-r.
      double f = std::floor(x), r = x - f;
      auto near = [a](double d) { return ((a + 2) * d - (a + 3)) * d * d + 1; };
      auto far = [a](double d) {
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
      };
      double w[4] = {far(1 + r), near(r), near(1 - r), far(2 - r)};
      double sum = 0;
      for (int k = 0; k < 4; ++k) {
        int64_t i = static_cast<int64_t>(f) - 1 + k;
        if (excludeOutside && (i < 0 || i >= in))
          w[k] = 0;
        sum += w[k];
        t.index.push_back(clampIndex(i));
        t.weight.push_back(w[k]);
      }
      if (excludeOutside && sum != 0)
        for (double &v : t.weight)
          v /= sum;
    } else {
      n.fail("unknown mode '" + mode + "'");
    }
  }
  return taps;
}

/// Resamples `x` to shape `out`, separable per axis:
///   y = sum_t gather(x, index_t, axis) * weight_t
/// with the taps of each output position computed at import time; nearest
/// is a single gather. Axes whose taps are the identity are left alone.
mlir::Value resample(NodeContext &n, mlir::Value x, const Resampling &how,
                     const std::vector<int64_t> &out,
                     const std::vector<double> &scales) {
  auto s = shapeOf(x);
  int64_t rank = s.size();
  if (how.mode != "nearest" && !isFloat(dtypeOf(x)))
    n.unsupported(std::string("element type ") + dtypeName(dtypeOf(x)) +
                  " with mode '" + how.mode + "'");
  for (int64_t d = 0; d < rank; ++d) {
    if (out[d] <= 0 || s[d] <= 0)
      n.fail("empty resize on dim " + std::to_string(d));
    auto taps = resampleTaps(n, how, s[d], out[d], scales[d]);
    bool identity = out[d] == s[d];
    for (int64_t o = 0; identity && o < out[d]; ++o)
      for (size_t k = 0; k < taps[o].index.size(); ++k)
        identity &= taps[o].weight[k] == (taps[o].index[k] == o ? 1.0 : 0.0);
    if (identity)
      continue;
    size_t count = taps[0].index.size();
    std::vector<int64_t> weightShape(rank, 1);
    weightShape[d] = out[d];
    mlir::Value sum;
    for (size_t k = 0; k < count; ++k) {
      std::vector<int64_t> index(out[d]);
      std::vector<double> weight(out[d]);
      for (int64_t o = 0; o < out[d]; ++o) {
        index[o] = taps[o].index[k];
        weight[o] = taps[o].weight[k];
      }
      mlir::Value g = n.create(
          "kiln.gather", {x, n.constantValue(host::fromInts({out[d]}, index))},
          {n.i64Attr("axis", d)});
      if (count > 1)
        g = n.binary("kiln.mul", g,
                     n.constantValue(
                         Tensor::fromDoubles(dtypeOf(x), weightShape, weight)));
      sum = !sum ? g : n.binary("kiln.add", sum, g);
    }
    x = sum;
  }
  return x;
}

/// Resize (and its scales-only form of opset 10): the output size from
/// scales or sizes, then resample() with the node's mode attributes.
void resize(NodeContext &n) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  int64_t rank = s.size();
  if (n.attrInt("antialias", 0))
    n.unsupported("antialias");
  std::string transform =
      n.attrString("coordinate_transformation_mode", "half_pixel");
  if (transform == "tf_crop_and_resize")
    n.unsupported("coordinate_transformation_mode 'tf_crop_and_resize'");
  if (n.hasAttr("axes"))
    n.unsupported("the axes attribute");
  int scalesInput = n.opset() < 11 ? 1 : 2, sizesInput = 3;
  std::vector<double> scales;
  std::vector<int64_t> out(s);
  const Tensor *scalesTensor = n.hasInput(scalesInput)
                                   ? &n.requireConstant(scalesInput, "scales")
                                   : nullptr;
  if (scalesTensor && scalesTensor->numElements() > 0) {
    scales = scalesTensor->toDoubles();
    if (static_cast<int64_t>(scales.size()) != rank)
      n.fail("scales has " + std::to_string(scales.size()) +
             " entries, the input has rank " + std::to_string(rank));
    for (int64_t d = 0; d < rank; ++d)
      out[d] = static_cast<int64_t>(std::floor(s[d] * scales[d]));
  } else if (n.opset() >= 11 && n.hasInput(sizesInput)) {
    out = n.requireInts(sizesInput, "sizes");
    if (static_cast<int64_t>(out.size()) != rank)
      n.fail("sizes has " + std::to_string(out.size()) +
             " entries, the input has rank " + std::to_string(rank));
    for (int64_t d = 0; d < rank; ++d)
      scales.push_back(double(out[d]) / double(s[d]));
  } else {
    n.fail("neither scales nor sizes is given");
  }
  n.setOutput(0, resample(n, x, Resampling::fromAttrs(n), out, scales));
}

/// Upsample (deprecated): nearest with integer scales, each element repeated
/// `scale` times along its dim (Resize with asymmetric coordinates and floor
/// rounding).
void upsample(NodeContext &n) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  std::vector<double> scales = n.opset() < 9
                                   ? n.attrFloats("scales")
                                   : n.requireConstant(1, "scales").toDoubles();
  if (scales.size() != s.size())
    n.fail("scales has " + std::to_string(scales.size()) +
           " entries, the input has rank " + std::to_string(s.size()));
  std::string mode = n.attrString("mode", "nearest");
  std::vector<int64_t> out(s);
  for (size_t d = 0; d < s.size(); ++d) {
    if (mode != "nearest" || scales[d] != std::floor(scales[d]) ||
        scales[d] < 1)
      n.unsupported("mode '" + mode + "' with scales other than integers");
    out[d] = s[d] * static_cast<int64_t>(scales[d]);
  }
  n.setOutput(0,
              resample(n, x, {"nearest", "asymmetric", "floor"}, out, scales));
}

} // namespace

void registerIndexingHandlers(HandlerRegistry &r) {
  r.add("Resize", 10, resize);
  r.add("Upsample", 7, upsample);
  r.add("GatherElements", 11, gatherElements);
  r.add("GatherND", 11, gatherND);
  r.add("ScatterND", 11, scatterND);
  r.add("OneHot", 9, oneHot);
  r.add("EyeLike", 9, eyeLike);
  r.add("Trilu", 14, trilu);
  r.add("Hardmax", 1, hardmax);
  r.add("CumSum", 11, cumSum);
}

} // namespace kiln::onnx_import
