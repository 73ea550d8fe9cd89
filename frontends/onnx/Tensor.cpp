//===- frontends/onnx/Tensor.cpp - Shape and data-movement handlers -------===//
//
// Reshape-like ops (Reshape, Flatten, Squeeze, Unsqueeze), Transpose, Concat,
// Slice, Split, Gather, Expand, Tile, Pad, DepthToSpace/SpaceToDepth, and the
// ops that only compute shapes (Shape, Size, Constant, ConstantOfShape,
// Range). Every one of them folds on the host when its inputs are known at
// import time, which is what turns PyTorch's dynamic-shape subgraphs into the
// static shapes kiln compiles.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kiln::onnx_import {

namespace {

/// Reshape or its host fold.
void emitReshape(NodeContext &n, const std::vector<int64_t> &shape) {
  if (const Tensor *t = n.constant(0)) {
    n.setOutput(0, host::reshape(*t, shape));
    return;
  }
  n.setOutput(0, n.reshape(n.input(0), shape));
}

/// ONNX Reshape target: 0 copies the input dim (unless allowzero), -1 is
/// inferred from the element count.
std::vector<int64_t> resolveShape(NodeContext &n,
                                  const std::vector<int64_t> &in,
                                  std::vector<int64_t> target, bool allowZero) {
  int64_t inferred = -1, known = 1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && !allowZero) {
      if (i >= in.size())
        n.fail("target dim " + std::to_string(i) +
               " is 0 (copy) but the input has rank " +
               std::to_string(in.size()));
      target[i] = in[i];
    }
    if (target[i] == -1) {
      if (inferred >= 0)
        n.fail("target shape has more than one -1");
      inferred = i;
    } else if (target[i] < 0) {
      n.fail("target shape has negative dim " + std::to_string(target[i]));
    } else {
      known *= target[i];
    }
  }
  int64_t count = numElements(in);
  if (inferred >= 0) {
    if (known == 0 || count % known != 0)
      n.fail("cannot reshape " + shapeToString(in) + " to " +
             shapeToString(target));
    target[inferred] = count / known;
  }
  if (numElements(target) != count)
    n.fail("cannot reshape " + shapeToString(in) + " (" +
           std::to_string(count) + " elements) to " + shapeToString(target));
  return target;
}

/// Unsqueeze: the input shape with unit dims inserted at `axes` (of the
/// output rank).
void unsqueeze(NodeContext &n, std::vector<int64_t> axes) {
  auto in = n.shape(0);
  int64_t rank = in.size() + axes.size();
  for (auto &a : axes)
    a = n.normalizeAxis(a, rank);
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    n.fail("repeated axis");
  std::vector<int64_t> out;
  size_t next = 0, ai = 0;
  for (int64_t d = 0; d < rank; ++d) {
    if (ai < axes.size() && axes[ai] == d) {
      out.push_back(1);
      ++ai;
    } else {
      out.push_back(in[next++]);
    }
  }
  emitReshape(n, out);
}

void squeeze(NodeContext &n, std::vector<int64_t> axes) {
  auto in = n.shape(0);
  int64_t rank = in.size();
  std::vector<bool> drop(rank, false);
  if (axes.empty()) {
    for (int64_t d = 0; d < rank; ++d)
      drop[d] = in[d] == 1;
  } else {
    for (int64_t a : axes) {
      int64_t d = n.normalizeAxis(a, rank);
      if (in[d] != 1)
        n.fail("cannot squeeze dim " + std::to_string(d) + " of size " +
               std::to_string(in[d]));
      drop[d] = true;
    }
  }
  std::vector<int64_t> out;
  for (int64_t d = 0; d < rank; ++d)
    if (!drop[d])
      out.push_back(in[d]);
  emitReshape(n, out);
}

/// Normalizes ONNX slice bounds on one dim (clamping as ONNX does) to the
/// kiln.slice form.
void normalizeSlice(int64_t dim, int64_t &start, int64_t &end, int64_t step) {
  auto clamp = [](int64_t v, int64_t lo, int64_t hi) {
    return std::max(lo, std::min(hi, v));
  };
  if (start < 0)
    start = start < -dim ? (step > 0 ? 0 : -1) : start + dim;
  if (end < 0)
    end = end < -dim ? -1 : end + dim;
  if (step > 0) {
    start = clamp(start, 0, dim);
    end = clamp(end, 0, dim);
    end = std::max(end, start);
  } else {
    start = clamp(start, -1, dim - 1);
    end = clamp(end, -1, dim - 1);
    end = std::min(end, start);
    if (start < 0) { // empty
      start = 0;
      end = 0;
    }
  }
}

void slice(NodeContext &n, std::vector<int64_t> starts,
           std::vector<int64_t> ends, std::vector<int64_t> axes,
           std::vector<int64_t> steps) {
  auto in = n.shape(0);
  int64_t rank = in.size();
  if (starts.size() != ends.size())
    n.fail("starts and ends have different lengths");
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i)
      axes.push_back(i);
  if (steps.empty())
    steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    n.fail("starts, ends, axes and steps have different lengths");
  std::vector<int64_t> s(rank, 0), e(in.begin(), in.end()), st(rank, 1);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t d = n.normalizeAxis(axes[i], rank);
    if (steps[i] == 0)
      n.fail("slice step is 0");
    s[d] = starts[i];
    e[d] = ends[i];
    st[d] = steps[i];
    normalizeSlice(in[d], s[d], e[d], st[d]);
  }
  if (const Tensor *t = n.constant(0)) {
    n.setOutput(0, host::slice(*t, s, e, st));
    return;
  }
  n.setOutput(0, n.create("kiln.slice", {n.input(0)},
                          {n.arrayAttr("starts", s), n.arrayAttr("ends", e),
                           n.arrayAttr("steps", st)}));
}

/// Slices `x` along `axis` to [begin, end).
mlir::Value sliceAxis(NodeContext &n, mlir::Value x, int64_t axis,
                      int64_t begin, int64_t end) {
  auto s = shapeOf(x);
  std::vector<int64_t> starts(s.size(), 0), ends(s), steps(s.size(), 1);
  starts[axis] = begin;
  ends[axis] = end;
  return n.create("kiln.slice", {x},
                  {n.arrayAttr("starts", starts), n.arrayAttr("ends", ends),
                   n.arrayAttr("steps", steps)});
}

void split(NodeContext &n, std::vector<int64_t> sizes) {
  auto in = n.shape(0);
  int64_t axis = n.normalizeAxis(n.attrInt("axis", 0), in.size());
  int64_t parts = n.numOutputs();
  if (sizes.empty()) {
    // Equal parts; the last is smaller when the dim does not divide.
    int64_t chunk = (in[axis] + parts - 1) / parts;
    for (int64_t i = 0, left = in[axis]; i < parts; ++i) {
      sizes.push_back(std::min(chunk, left));
      left -= sizes.back();
    }
  }
  if (static_cast<int64_t>(sizes.size()) != parts ||
      std::accumulate(sizes.begin(), sizes.end(), int64_t(0)) != in[axis])
    n.fail("split sizes " + shapeToString(sizes) + " do not cover dim " +
           std::to_string(in[axis]) + " in " + std::to_string(parts) +
           " outputs");
  int64_t begin = 0;
  for (int64_t i = 0; i < parts; ++i) {
    if (const Tensor *t = n.constant(0)) {
      std::vector<int64_t> s(in.size(), 0), e(in), st(in.size(), 1);
      s[axis] = begin;
      e[axis] = begin + sizes[i];
      n.setOutput(i, host::slice(*t, s, e, st));
    } else {
      n.setOutput(i, sliceAxis(n, n.input(0), axis, begin, begin + sizes[i]));
    }
    begin += sizes[i];
  }
}

/// Constant value of a Constant node's attribute.
Tensor constantAttr(NodeContext &n) {
  if (n.hasAttr("value"))
    return n.attrTensor("value");
  if (const auto *a = n.attr("value_float"))
    return Tensor::fromDoubles(DType::f32, {}, {a->f()});
  if (const auto *a = n.attr("value_floats"))
    return Tensor::fromDoubles(DType::f32, {a->floats_size()},
                               {a->floats().begin(), a->floats().end()});
  if (const auto *a = n.attr("value_int"))
    return host::fromInts({}, {a->i()});
  if (const auto *a = n.attr("value_ints"))
    return host::fromInts({a->ints_size()},
                          {a->ints().begin(), a->ints().end()});
  if (n.hasAttr("sparse_value"))
    n.unsupported("sparse_value");
  if (n.hasAttr("value_string") || n.hasAttr("value_strings"))
    n.unsupported("string constants");
  n.fail("Constant has no value attribute");
}

/// Pads with mode constant / reflect / edge; negative pads crop.
void pad(NodeContext &n, std::vector<int64_t> pads, double value,
         const Tensor *valueTensor) {
  mlir::Value x = n.input(0);
  auto s = shapeOf(x);
  int64_t rank = s.size();
  if (static_cast<int64_t>(pads.size()) != 2 * rank)
    n.fail("pads has " + std::to_string(pads.size()) + " entries, rank " +
           std::to_string(rank) + " needs " + std::to_string(2 * rank));
  std::string mode = n.attrString("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge")
    n.unsupported("mode '" + mode + "'");
  for (int64_t d = 0; d < rank; ++d) {
    int64_t b = pads[d], e = pads[rank + d];
    if (b == 0 && e == 0)
      continue;
    auto cur = shapeOf(x);
    if (b < 0 || e < 0) { // crop first
      x = sliceAxis(n, x, d, std::max<int64_t>(0, -b),
                    cur[d] - std::max<int64_t>(0, -e));
      b = std::max<int64_t>(0, b);
      e = std::max<int64_t>(0, e);
      cur = shapeOf(x);
      if (b == 0 && e == 0)
        continue;
    }
    int64_t dim = cur[d];
    if (mode == "constant") {
      llvm::SmallVector<mlir::Value> parts;
      auto block = [&](int64_t size) {
        auto bs = cur;
        bs[d] = size;
        mlir::Value c =
            valueTensor ? n.constantValue(host::cast(*valueTensor, dtypeOf(x)))
                        : n.scalarLike(value, x);
        return n.broadcastTo(n.reshape(c, std::vector<int64_t>(rank, 1)), bs);
      };
      if (b > 0)
        parts.push_back(block(b));
      parts.push_back(x);
      if (e > 0)
        parts.push_back(block(e));
      x = n.create("kiln.concat", parts, {n.i64Attr("axis", d)});
      continue;
    }
    if (dim == 0)
      n.fail("cannot " + mode + "-pad an empty dim");
    std::vector<int64_t> idx;
    for (int64_t i = -b; i < dim + e; ++i) {
      int64_t j = i;
      if (mode == "edge") {
        j = std::max<int64_t>(0, std::min(dim - 1, i));
      } else {
        if (dim == 1)
          j = 0;
        else {
          int64_t period = 2 * (dim - 1);
          j = ((i % period) + period) % period;
          if (j >= dim)
            j = period - j;
        }
      }
      idx.push_back(j);
    }
    mlir::Value indices = n.constantValue(
        host::fromInts({static_cast<int64_t>(idx.size())}, idx));
    x = n.create("kiln.gather", {x, indices}, {n.i64Attr("axis", d)});
  }
  n.setOutput(0, x);
}

/// DepthToSpace / SpaceToDepth as reshape -> transpose -> reshape.
void depthToSpace(NodeContext &n) {
  auto s = n.shape(0);
  if (s.size() != 4)
    n.fail("expected a 4-D input");
  int64_t b = n.requireAttrInt("blocksize");
  int64_t N = s[0], C = s[1], H = s[2], W = s[3];
  if (C % (b * b))
    n.fail("channels are not divisible by blocksize^2");
  bool crd = n.attrString("mode", "DCR") == "CRD";
  mlir::Value x = n.input(0);
  mlir::Value t;
  if (crd) {
    t = n.transpose(n.reshape(x, {N, C / (b * b), b, b, H, W}),
                    {0, 1, 4, 2, 5, 3});
  } else {
    t = n.transpose(n.reshape(x, {N, b, b, C / (b * b), H, W}),
                    {0, 3, 4, 1, 5, 2});
  }
  n.setOutput(0, n.reshape(t, {N, C / (b * b), H * b, W * b}));
}

void spaceToDepth(NodeContext &n) {
  auto s = n.shape(0);
  if (s.size() != 4)
    n.fail("expected a 4-D input");
  int64_t b = n.requireAttrInt("blocksize");
  int64_t N = s[0], C = s[1], H = s[2], W = s[3];
  if (H % b || W % b)
    n.fail("spatial dims are not divisible by blocksize");
  mlir::Value t = n.transpose(n.reshape(n.input(0), {N, C, H / b, b, W / b, b}),
                              {0, 3, 5, 1, 2, 4});
  n.setOutput(0, n.reshape(t, {N, C * b * b, H / b, W / b}));
}

} // namespace

void registerTensorHandlers(HandlerRegistry &r) {
  r.add(
      "Reshape", 1,
      [](NodeContext &n) {
        emitReshape(n, resolveShape(n, n.shape(0), n.attrInts("shape"), false));
      },
      4);
  r.add("Reshape", 5, [](NodeContext &n) {
    auto target = n.requireInts(1, "the target shape");
    emitReshape(
        n, resolveShape(n, n.shape(0), target, n.attrInt("allowzero", 0) != 0));
  });
  r.add("Flatten", 1, [](NodeContext &n) {
    auto s = n.shape(0);
    int64_t rank = s.size();
    int64_t axis = n.attrInt("axis", 1);
    if (axis < -rank || axis > rank)
      n.fail("axis " + std::to_string(axis) + " is out of range");
    if (axis < 0)
      axis += rank;
    int64_t rows = 1, cols = 1;
    for (int64_t i = 0; i < rank; ++i)
      (i < axis ? rows : cols) *= s[i];
    emitReshape(n, {rows, cols});
  });
  r.add(
      "Unsqueeze", 1, [](NodeContext &n) { unsqueeze(n, n.attrInts("axes")); },
      12);
  r.add("Unsqueeze", 13,
        [](NodeContext &n) { unsqueeze(n, n.requireInts(1, "axes")); });
  r.add(
      "Squeeze", 1, [](NodeContext &n) { squeeze(n, n.attrInts("axes")); }, 12);
  r.add("Squeeze", 13, [](NodeContext &n) {
    squeeze(n,
            n.hasInput(1) ? n.requireInts(1, "axes") : std::vector<int64_t>{});
  });

  r.add("Transpose", 1, [](NodeContext &n) {
    int64_t rank = n.rank(0);
    std::vector<int64_t> rev(rank);
    for (int64_t i = 0; i < rank; ++i)
      rev[i] = rank - 1 - i;
    auto perm = n.attrInts("perm", rev);
    if (static_cast<int64_t>(perm.size()) != rank)
      n.fail("perm has " + std::to_string(perm.size()) + " entries for rank " +
             std::to_string(rank));
    if (const Tensor *t = n.constant(0)) {
      n.setOutput(0, host::transpose(*t, perm));
      return;
    }
    n.setOutput(0, n.create("kiln.transpose", {n.input(0)},
                            {n.arrayAttr("perm", perm)}));
  });

  r.add("Concat", 1, [](NodeContext &n) {
    int64_t rank = n.rank(0);
    int64_t axis = n.normalizeAxis(n.requireAttrInt("axis"), rank);
    if (n.allInputsConstant()) {
      std::vector<Tensor> ts;
      for (int i = 0; i < n.numInputs(); ++i)
        if (n.hasInput(i))
          ts.push_back(*n.constant(i));
      for (const auto &t : ts)
        if (t.rank() != rank || t.dtype() != ts[0].dtype())
          n.fail("Concat inputs differ in rank or element type");
      n.setOutput(0, host::concat(ts, axis));
      return;
    }
    llvm::SmallVector<mlir::Value> xs;
    for (int i = 0; i < n.numInputs(); ++i)
      if (n.hasInput(i))
        xs.push_back(n.input(i));
    n.setOutput(0, n.create("kiln.concat", xs, {n.i64Attr("axis", axis)}));
  });

  r.add(
      "Slice", 1,
      [](NodeContext &n) {
        slice(n, n.attrInts("starts"), n.attrInts("ends"), n.attrInts("axes"),
              {});
      },
      9);
  r.add("Slice", 10, [](NodeContext &n) {
    slice(n, n.requireInts(1, "starts"), n.requireInts(2, "ends"),
          n.hasInput(3) ? n.requireInts(3, "axes") : std::vector<int64_t>{},
          n.hasInput(4) ? n.requireInts(4, "steps") : std::vector<int64_t>{});
  });

  r.add(
      "Split", 1, [](NodeContext &n) { split(n, n.attrInts("split")); }, 12);
  r.add("Split", 13, [](NodeContext &n) {
    split(n, n.hasInput(1) ? n.requireInts(1, "split sizes")
                           : std::vector<int64_t>{});
  });

  r.add("Gather", 1, [](NodeContext &n) {
    int64_t axis = n.normalizeAxis(n.attrInt("axis", 0), n.rank(0));
    if (n.allInputsConstant()) {
      n.setOutput(0, host::gather(*n.constant(0), *n.constant(1), axis));
      return;
    }
    n.setOutput(0, n.create("kiln.gather", {n.input(0), n.input(1)},
                            {n.i64Attr("axis", axis)}));
  });

  r.add("Expand", 8, [](NodeContext &n) {
    auto target = n.requireInts(1, "the target shape");
    auto in = n.shape(0);
    // Expand broadcasts both ways: the result is broadcast(in, target).
    size_t rank = std::max(in.size(), target.size());
    std::vector<int64_t> out(rank);
    for (size_t i = 0; i < rank; ++i) {
      int64_t a = i < rank - in.size() ? 1 : in[i - (rank - in.size())];
      int64_t b =
          i < rank - target.size() ? 1 : target[i - (rank - target.size())];
      if (a != b && a != 1 && b != 1)
        n.fail("cannot expand " + shapeToString(in) + " to " +
               shapeToString(target));
      out[i] = a == 1 ? b : a;
    }
    if (const Tensor *t = n.constant(0)) {
      n.setOutput(0, host::broadcastTo(*t, out));
      return;
    }
    n.setOutput(0, n.broadcastTo(n.input(0), out));
  });

  r.add("Tile", 6, [](NodeContext &n) {
    auto reps = n.requireInts(1, "repeats");
    auto in = n.shape(0);
    if (reps.size() != in.size())
      n.fail("repeats has " + std::to_string(reps.size()) +
             " entries for rank " + std::to_string(in.size()));
    // tile(x) = reshape(broadcast([1, d0, 1, d1, ...] -> [r0, d0, r1, d1,
    // ...]), [r0*d0, r1*d1, ...])
    std::vector<int64_t> inter, wide, out;
    for (size_t i = 0; i < in.size(); ++i) {
      inter.insert(inter.end(), {1, in[i]});
      wide.insert(wide.end(), {reps[i], in[i]});
      out.push_back(reps[i] * in[i]);
    }
    if (const Tensor *t = n.constant(0)) {
      n.setOutput(
          0, host::reshape(host::broadcastTo(host::reshape(*t, inter), wide),
                           out));
      return;
    }
    n.setOutput(
        0, n.reshape(n.broadcastTo(n.reshape(n.input(0), inter), wide), out));
  });

  r.add(
      "Pad", 2,
      [](NodeContext &n) {
        pad(n, n.attrInts("pads"), n.attrFloat("value", 0.0), nullptr);
      },
      10);
  r.add("Pad", 11, [](NodeContext &n) {
    const Tensor *value =
        n.hasInput(2) ? &n.requireConstant(2, "value") : nullptr;
    if (n.hasInput(3))
      n.unsupported("the axes input");
    pad(n, n.requireInts(1, "pads"), 0.0, value);
  });
  r.add("DepthToSpace", 1, depthToSpace);
  r.add("SpaceToDepth", 1, spaceToDepth);

  // Import-time values.
  r.add("Shape", 1, [](NodeContext &n) {
    auto s = n.shape(0);
    int64_t rank = s.size();
    int64_t start = n.attrInt("start", 0), end = n.attrInt("end", rank);
    if (start < 0)
      start += rank;
    if (end < 0)
      end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    std::vector<int64_t> dims(s.begin() + start, s.begin() + end);
    n.setOutput(0, host::fromInts({static_cast<int64_t>(dims.size())}, dims));
  });
  r.add("Size", 1, [](NodeContext &n) {
    n.setOutput(0, host::fromInts({}, {numElements(n.shape(0))}));
  });
  r.add("Constant", 1, [](NodeContext &n) { n.setOutput(0, constantAttr(n)); });
  r.add("ConstantOfShape", 9, [](NodeContext &n) {
    auto shape = n.requireInts(0, "the shape");
    Tensor value = Tensor::fromDoubles(DType::f32, {1}, {0.0});
    if (n.hasAttr("value")) {
      value = n.attrTensor("value");
      if (value.numElements() != 1)
        n.fail("value must hold one element");
    }
    n.setOutput(0, host::broadcastTo(host::reshape(value, std::vector<int64_t>(
                                                              shape.size(), 1)),
                                     shape));
  });
  r.add("Range", 11, [](NodeContext &n) {
    const Tensor &start = n.requireConstant(0, "start");
    const Tensor &limit = n.requireConstant(1, "limit");
    const Tensor &delta = n.requireConstant(2, "delta");
    DType t = start.dtype();
    if (isFloat(t)) {
      double s = start.toDoubles()[0], l = limit.toDoubles()[0],
             d = delta.toDoubles()[0];
      if (d == 0)
        n.fail("delta is 0");
      int64_t count =
          std::max<int64_t>(0, static_cast<int64_t>(std::ceil((l - s) / d)));
      std::vector<double> v(count);
      for (int64_t i = 0; i < count; ++i)
        v[i] = s + i * d;
      n.setOutput(0, Tensor::fromDoubles(t, {count}, v));
    } else {
      int64_t s = host::toInts(start)[0], l = host::toInts(limit)[0],
              d = host::toInts(delta)[0];
      if (d == 0)
        n.fail("delta is 0");
      int64_t count = std::max<int64_t>(0, (l - s + d + (d > 0 ? -1 : 1)) / d);
      std::vector<int64_t> v(count);
      for (int64_t i = 0; i < count; ++i)
        v[i] = s + i * d;
      n.setOutput(0, host::fromInts({count}, v, t));
    }
  });
}

} // namespace kiln::onnx_import
