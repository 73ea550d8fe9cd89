//===- Tensor.cpp - Host tensors and element types ------------------------===//
//
// The dtype table and the Tensor value type of the public API.
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime.h"

#include "Half.h"

#include <algorithm>
#include <cstring>
#include <sstream>

namespace kiln {

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::f64:
  case DType::i64:
    return 8;
  case DType::f32:
  case DType::i32:
    return 4;
  case DType::f16:
  case DType::bf16:
    return 2;
  case DType::i8:
  case DType::u8:
  case DType::i1:
    return 1;
  }
  return 1;
}

const char *dtypeName(DType t) {
  switch (t) {
  case DType::f32:
    return "f32";
  case DType::f16:
    return "f16";
  case DType::bf16:
    return "bf16";
  case DType::f64:
    return "f64";
  case DType::i64:
    return "i64";
  case DType::i32:
    return "i32";
  case DType::i8:
    return "i8";
  case DType::u8:
    return "u8";
  case DType::i1:
    return "i1";
  }
  return "?";
}

std::optional<DType> parseDType(const std::string &name) {
  static const std::pair<const char *, DType> table[] = {
      {"f32", DType::f32}, {"f16", DType::f16}, {"bf16", DType::bf16},
      {"f64", DType::f64}, {"i64", DType::i64}, {"i32", DType::i32},
      {"i8", DType::i8},   {"u8", DType::u8},   {"ui8", DType::u8},
      {"i1", DType::i1},   {"bool", DType::i1}};
  for (const auto &[n, t] : table)
    if (name == n)
      return t;
  return std::nullopt;
}

int64_t numElements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string shapeToString(const std::vector<int64_t> &shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i)
    os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

Tensor Tensor::zeros(DType dtype, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  int64_t n = std::max<int64_t>(kiln::numElements(t.shape_), 0);
  t.storage_ = std::make_shared<std::vector<uint8_t>>(
      static_cast<size_t>(n) * dtypeSize(dtype), 0);
  return t;
}

Tensor Tensor::fromBytes(DType dtype, std::vector<int64_t> shape,
                         const void *bytes) {
  Tensor t = zeros(dtype, std::move(shape));
  if (bytes && !t.storage_->empty())
    std::memcpy(t.storage_->data(), bytes, t.storage_->size());
  return t;
}

Tensor Tensor::fromFloats(std::vector<int64_t> shape,
                          const std::vector<float> &values) {
  Tensor t = zeros(DType::f32, std::move(shape));
  // A size mismatch is a programmer error; copy what fits rather than crash.
  size_t n = std::min(values.size(), t.storage_->size() / sizeof(float));
  if (n)
    std::memcpy(t.storage_->data(), values.data(), n * sizeof(float));
  return t;
}

Tensor Tensor::fromDoubles(DType dtype, std::vector<int64_t> shape,
                           const std::vector<double> &values) {
  Tensor t = zeros(dtype, std::move(shape));
  // A size mismatch is a programmer error; convert what fits.
  size_t n = std::min<size_t>(values.size(), t.numElements());
  uint8_t *p = t.storage_->data();
  for (size_t i = 0; i < n; ++i) {
    double v = values[i];
    switch (dtype) {
    case DType::f32:
      reinterpret_cast<float *>(p)[i] = static_cast<float>(v);
      break;
    case DType::f64:
      reinterpret_cast<double *>(p)[i] = v;
      break;
    case DType::f16:
      reinterpret_cast<uint16_t *>(p)[i] = floatToHalf(static_cast<float>(v));
      break;
    case DType::bf16:
      reinterpret_cast<uint16_t *>(p)[i] = floatToBf16(static_cast<float>(v));
      break;
    case DType::i64:
      reinterpret_cast<int64_t *>(p)[i] = truncateToInt64(v);
      break;
    case DType::i32:
      reinterpret_cast<int32_t *>(p)[i] =
          static_cast<int32_t>(truncateToInt64(v));
      break;
    case DType::i8:
      reinterpret_cast<int8_t *>(p)[i] =
          static_cast<int8_t>(truncateToInt64(v));
      break;
    case DType::u8:
      p[i] = static_cast<uint8_t>(truncateToInt64(v));
      break;
    case DType::i1:
      p[i] = v != 0;
      break;
    }
  }
  return t;
}

std::vector<double> Tensor::toDoubles() const {
  std::vector<double> out;
  if (!storage_)
    return out;
  int64_t n = numElements();
  out.resize(static_cast<size_t>(std::max<int64_t>(n, 0)));
  const uint8_t *p = storage_->data();
  for (int64_t i = 0; i < n; ++i) {
    double v = 0;
    switch (dtype_) {
    case DType::f32: {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      v = f;
      break;
    }
    case DType::f64:
      std::memcpy(&v, p + 8 * i, 8);
      break;
    case DType::f16:
    case DType::bf16: {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      v = dtype_ == DType::f16 ? halfToFloat(h) : bf16ToFloat(h);
      break;
    }
    case DType::i64: {
      int64_t x;
      std::memcpy(&x, p + 8 * i, 8);
      v = static_cast<double>(x);
      break;
    }
    case DType::i32: {
      int32_t x;
      std::memcpy(&x, p + 4 * i, 4);
      v = x;
      break;
    }
    case DType::i8:
      v = static_cast<int8_t>(p[i]);
      break;
    case DType::u8:
      v = p[i];
      break;
    case DType::i1:
      v = p[i] ? 1 : 0;
      break;
    }
    out[i] = v;
  }
  return out;
}

Tensor Tensor::clone() const {
  Tensor t;
  t.dtype_ = dtype_;
  t.shape_ = shape_;
  if (storage_)
    t.storage_ = std::make_shared<std::vector<uint8_t>>(*storage_);
  return t;
}

} // namespace kiln
