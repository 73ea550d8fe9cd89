//===- frontends/onnx/HostTensor.cpp - Import-time tensor evaluation ------===//
//
// Small, plain-loop evaluation of the ops that shape-computing subgraphs use
// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, Range, Expand, ...), on
// host tensors while importing. Data movement works on bytes, so it holds
// for every dtype; arithmetic runs on int64 for integer dtypes (so INT64_MAX
// slice bounds survive) and on double for float dtypes.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"
#include "runtime/Half.h"

#include <cmath>
#include <cstring>

namespace kiln::onnx_import::host {

namespace {

bool isInteger(DType t) { return !isFloat(t); }

std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/// Calls fn(flatOut, index) for every index of `shape`, row-major.
template <typename Fn>
void forEachIndex(const std::vector<int64_t> &shape, Fn fn) {
  int64_t n = numElements(shape);
  std::vector<int64_t> idx(shape.size(), 0);
  for (int64_t flat = 0; flat < n; ++flat) {
    fn(flat, idx);
    for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d])
        break;
      idx[d] = 0;
    }
  }
}

/// Flat offset in a tensor of `shape` broadcast to the index `idx` of a
/// (right-aligned) larger shape.
int64_t broadcastOffset(const std::vector<int64_t> &shape,
                        const std::vector<int64_t> &strides,
                        const std::vector<int64_t> &idx) {
  int64_t off = 0;
  size_t lead = idx.size() - shape.size();
  for (size_t d = 0; d < shape.size(); ++d)
    if (shape[d] != 1)
      off += idx[lead + d] * strides[d];
  return off;
}

std::vector<int64_t> broadcastShape(const std::vector<int64_t> &a,
                                    const std::vector<int64_t> &b) {
  size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ImportError("shapes " + shapeToString(a) + " and " +
                        shapeToString(b) + " are not broadcastable");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

} // namespace

std::vector<int64_t> toInts(const Tensor &t) {
  std::vector<int64_t> out(t.numElements());
  switch (t.dtype()) {
  case DType::i64:
    std::memcpy(out.data(), t.data(), out.size() * 8);
    break;
  case DType::i32:
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = t.dataAs<int32_t>()[i];
    break;
  case DType::i8:
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = t.dataAs<int8_t>()[i];
    break;
  case DType::u8:
  case DType::i1:
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = t.dataAs<uint8_t>()[i];
    break;
  default: {
    auto d = t.toDoubles();
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<int64_t>(d[i]);
  }
  }
  return out;
}

Tensor fromInts(const std::vector<int64_t> &shape,
                const std::vector<int64_t> &values, DType dtype) {
  Tensor t = Tensor::zeros(dtype, shape);
  for (size_t i = 0; i < values.size(); ++i) {
    int64_t v = values[i];
    switch (dtype) {
    case DType::i64:
      t.dataAs<int64_t>()[i] = v;
      break;
    case DType::i32:
      t.dataAs<int32_t>()[i] = static_cast<int32_t>(v);
      break;
    case DType::i8:
      t.dataAs<int8_t>()[i] = static_cast<int8_t>(v);
      break;
    case DType::u8:
      t.dataAs<uint8_t>()[i] = static_cast<uint8_t>(v);
      break;
    case DType::i1:
      t.dataAs<uint8_t>()[i] = v != 0;
      break;
    default:
      return Tensor::fromDoubles(
          dtype, shape, std::vector<double>(values.begin(), values.end()));
    }
  }
  return t;
}

Tensor reshape(const Tensor &t, const std::vector<int64_t> &shape) {
  if (numElements(shape) != t.numElements())
    throw ImportError("cannot reshape " + shapeToString(t.shape()) + " to " +
                      shapeToString(shape));
  return Tensor::fromBytes(t.dtype(), shape, t.data());
}

Tensor cast(const Tensor &t, DType dtype) {
  if (t.dtype() == dtype)
    return t;
  if (isInteger(t.dtype()) && isInteger(dtype))
    return fromInts(t.shape(), toInts(t), dtype);
  return Tensor::fromDoubles(dtype, t.shape(), t.toDoubles());
}

Tensor broadcastTo(const Tensor &t, const std::vector<int64_t> &shape) {
  if (broadcastShape(t.shape(), shape) != shape)
    throw ImportError("cannot broadcast " + shapeToString(t.shape()) + " to " +
                      shapeToString(shape));
  Tensor out = Tensor::zeros(t.dtype(), shape);
  size_t size = dtypeSize(t.dtype());
  auto strides = stridesOf(t.shape());
  const auto *src = static_cast<const uint8_t *>(t.data());
  auto *dst = static_cast<uint8_t *>(out.data());
  forEachIndex(shape, [&](int64_t flat, const std::vector<int64_t> &idx) {
    std::memcpy(dst + flat * size,
                src + broadcastOffset(t.shape(), strides, idx) * size, size);
  });
  return out;
}

Tensor transpose(const Tensor &t, const std::vector<int64_t> &perm) {
  std::vector<int64_t> shape(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    shape[i] = t.shape()[perm[i]];
  Tensor out = Tensor::zeros(t.dtype(), shape);
  size_t size = dtypeSize(t.dtype());
  auto strides = stridesOf(t.shape());
  const auto *src = static_cast<const uint8_t *>(t.data());
  auto *dst = static_cast<uint8_t *>(out.data());
  forEachIndex(shape, [&](int64_t flat, const std::vector<int64_t> &idx) {
    int64_t off = 0;
    for (size_t i = 0; i < perm.size(); ++i)
      off += idx[i] * strides[perm[i]];
    std::memcpy(dst + flat * size, src + off * size, size);
  });
  return out;
}

Tensor gather(const Tensor &data, const Tensor &indices, int64_t axis) {
  const auto &ds = data.shape();
  std::vector<int64_t> idx = toInts(indices);
  int64_t dim = ds[axis];
  for (auto &i : idx) {
    if (i < -dim || i >= dim)
      throw ImportError("Gather index " + std::to_string(i) +
                        " is out of range for a dim of size " +
                        std::to_string(dim));
    if (i < 0)
      i += dim;
  }
  std::vector<int64_t> shape(ds.begin(), ds.begin() + axis);
  shape.insert(shape.end(), indices.shape().begin(), indices.shape().end());
  shape.insert(shape.end(), ds.begin() + axis + 1, ds.end());
  int64_t outer =
      numElements(std::vector<int64_t>(ds.begin(), ds.begin() + axis));
  int64_t inner =
      numElements(std::vector<int64_t>(ds.begin() + axis + 1, ds.end()));
  size_t chunk = inner * dtypeSize(data.dtype());
  Tensor out = Tensor::zeros(data.dtype(), shape);
  const auto *src = static_cast<const uint8_t *>(data.data());
  auto *dst = static_cast<uint8_t *>(out.data());
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < idx.size(); ++k)
      std::memcpy(dst + (o * idx.size() + k) * chunk,
                  src + (o * dim + idx[k]) * chunk, chunk);
  return out;
}

Tensor concat(const std::vector<Tensor> &ts, int64_t axis) {
  std::vector<int64_t> shape = ts.front().shape();
  shape[axis] = 0;
  for (const auto &t : ts)
    shape[axis] += t.shape()[axis];
  int64_t outer =
      numElements(std::vector<int64_t>(shape.begin(), shape.begin() + axis));
  Tensor out = Tensor::zeros(ts.front().dtype(), shape);
  auto *dst = static_cast<uint8_t *>(out.data());
  size_t size = dtypeSize(out.dtype());
  for (int64_t o = 0; o < outer; ++o)
    for (const auto &t : ts) {
      size_t chunk = t.numElements() / std::max<int64_t>(outer, 1) * size;
      if (outer == 0 || chunk == 0)
        continue;
      std::memcpy(dst, static_cast<const uint8_t *>(t.data()) + o * chunk,
                  chunk);
      dst += chunk;
    }
  return out;
}

Tensor slice(const Tensor &t, const std::vector<int64_t> &starts,
             const std::vector<int64_t> &ends,
             const std::vector<int64_t> &steps) {
  std::vector<int64_t> shape(t.rank());
  for (int64_t d = 0; d < t.rank(); ++d)
    shape[d] = steps[d] > 0
                   ? (ends[d] - starts[d] + steps[d] - 1) / steps[d]
                   : (starts[d] - ends[d] + (-steps[d]) - 1) / (-steps[d]);
  Tensor out = Tensor::zeros(t.dtype(), shape);
  size_t size = dtypeSize(t.dtype());
  auto strides = stridesOf(t.shape());
  const auto *src = static_cast<const uint8_t *>(t.data());
  auto *dst = static_cast<uint8_t *>(out.data());
  forEachIndex(shape, [&](int64_t flat, const std::vector<int64_t> &idx) {
    int64_t off = 0;
    for (size_t d = 0; d < idx.size(); ++d)
      off += (starts[d] + idx[d] * steps[d]) * strides[d];
    std::memcpy(dst + flat * size, src + off * size, size);
  });
  return out;
}

Tensor binary(const Tensor &a, const Tensor &b, const std::string &op) {
  auto shape = broadcastShape(a.shape(), b.shape());
  bool compare = op == "eq" || op == "ne" || op == "lt" || op == "le" ||
                 op == "gt" || op == "ge";
  DType outType = compare ? DType::i1 : a.dtype();
  auto sa = stridesOf(a.shape()), sb = stridesOf(b.shape());
  int64_t n = numElements(shape);
  if (isInteger(a.dtype()) && isInteger(b.dtype())) {
    auto va = toInts(a), vb = toInts(b);
    std::vector<int64_t> out(n);
    forEachIndex(shape, [&](int64_t flat, const std::vector<int64_t> &idx) {
      int64_t x = va[broadcastOffset(a.shape(), sa, idx)];
      int64_t y = vb[broadcastOffset(b.shape(), sb, idx)];
      int64_t r = 0;
      if (op == "add")
        r = x + y;
      else if (op == "sub")
        r = x - y;
      else if (op == "mul")
        r = x * y;
      else if (op == "div") {
        if (y == 0)
          throw ImportError("integer division by zero");
        r = x / y;
      } else if (op == "mod" || op == "fmod") {
        // fmod: the dividend's sign (C %); mod: the divisor's (Python %).
        if (y == 0)
          throw ImportError("integer modulo by zero");
        r = x % y;
        if (op == "mod" && r != 0 && ((r < 0) != (y < 0)))
          r += y;
      } else if (op == "max")
        r = std::max(x, y);
      else if (op == "min")
        r = std::min(x, y);
      else if (op == "eq")
        r = x == y;
      else if (op == "ne")
        r = x != y;
      else if (op == "lt")
        r = x < y;
      else if (op == "le")
        r = x <= y;
      else if (op == "gt")
        r = x > y;
      else if (op == "ge")
        r = x >= y;
      else if (op == "and")
        r = x && y;
      else if (op == "or")
        r = x || y;
      else
        throw ImportError("no host evaluation of '" + op + "'");
      out[flat] = r;
    });
    return fromInts(shape, out, outType);
  }
  auto va = a.toDoubles(), vb = b.toDoubles();
  std::vector<double> out(n);
  forEachIndex(shape, [&](int64_t flat, const std::vector<int64_t> &idx) {
    double x = va[broadcastOffset(a.shape(), sa, idx)];
    double y = vb[broadcastOffset(b.shape(), sb, idx)];
    double r = 0;
    if (op == "add")
      r = x + y;
    else if (op == "sub")
      r = x - y;
    else if (op == "mul")
      r = x * y;
    else if (op == "div")
      r = x / y;
    else if (op == "pow")
      r = std::pow(x, y);
    else if (op == "fmod")
      r = std::fmod(x, y);
    else if (op == "max")
      r = std::max(x, y);
    else if (op == "min")
      r = std::min(x, y);
    else if (op == "eq")
      r = x == y;
    else if (op == "ne")
      r = x != y;
    else if (op == "lt")
      r = x < y;
    else if (op == "le")
      r = x <= y;
    else if (op == "gt")
      r = x > y;
    else if (op == "ge")
      r = x >= y;
    else
      throw ImportError("no host evaluation of '" + op + "'");
    out[flat] = r;
  });
  return Tensor::fromDoubles(outType, shape, out);
}

Tensor where(const Tensor &c, const Tensor &a, const Tensor &b) {
  auto shape = broadcastShape(broadcastShape(c.shape(), a.shape()), b.shape());
  Tensor cb = broadcastTo(c, shape), ab = broadcastTo(a, shape),
         bb = broadcastTo(b, shape);
  Tensor out = Tensor::zeros(a.dtype(), shape);
  size_t size = dtypeSize(a.dtype());
  auto *dst = static_cast<uint8_t *>(out.data());
  for (int64_t i = 0; i < out.numElements(); ++i) {
    const Tensor &src = cb.dataAs<uint8_t>()[i] ? ab : bb;
    std::memcpy(dst + i * size,
                static_cast<const uint8_t *>(src.data()) + i * size, size);
  }
  return out;
}

Tensor triangle(int64_t rows, int64_t cols, int64_t k, bool upper) {
  std::vector<int64_t> mask(rows * cols);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      mask[i * cols + j] = upper ? j - i >= k : j - i <= k;
  return fromInts({rows, cols}, mask, DType::i1);
}

} // namespace kiln::onnx_import::host
