//===- Common.h - Shared helpers of the reference backend -------*- C++ -*-===//
//
// Element traits (storage type, compute type, accumulator), dtype dispatch to
// templated kernel bodies, attribute reading and shape checks. The reference
// backend favours obviously-correct plain loops over speed: it is the oracle
// that optimized kernels are tested against.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_BACKENDS_REFERENCE_COMMON_H
#define KILN_RUNTIME_BACKENDS_REFERENCE_COMMON_H

#include "Half.h"
#include "backends/Backend.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace kiln::reference {

/// Per-dtype element traits. `C` is the compute type (f16/bf16 compute in f32,
/// narrow integers in i64), `Acc` the accumulator for sums and dot products.
template <DType D> struct Elem;
template <> struct Elem<DType::f32> {
  using S = float;
  using C = float;
  using Acc = double;
  static constexpr bool isFloat = true;
  static C load(S v) { return v; }
  static S store(C v) { return v; }
};
template <> struct Elem<DType::f64> {
  using S = double;
  using C = double;
  using Acc = double;
  static constexpr bool isFloat = true;
  static C load(S v) { return v; }
  static S store(C v) { return v; }
};
template <> struct Elem<DType::f16> {
  using S = uint16_t;
  using C = float;
  using Acc = float;
  static constexpr bool isFloat = true;
  static C load(S v) { return halfToFloat(v); }
  static S store(C v) { return floatToHalf(v); }
};
template <> struct Elem<DType::bf16> {
  using S = uint16_t;
  using C = float;
  using Acc = float;
  static constexpr bool isFloat = true;
  static C load(S v) { return bf16ToFloat(v); }
  static S store(C v) { return floatToBf16(v); }
};
template <typename Storage> struct IntElem {
  using S = Storage;
  using C = int64_t;
  using Acc = int64_t;
  static constexpr bool isFloat = false;
  static C load(S v) { return static_cast<C>(v); }
  // Narrowing integer conversion is modular since C++20.
  static S store(C v) { return static_cast<S>(v); }
};
template <> struct Elem<DType::i64> : IntElem<int64_t> {};
template <> struct Elem<DType::i32> : IntElem<int32_t> {};
template <> struct Elem<DType::i8> : IntElem<int8_t> {};
template <> struct Elem<DType::u8> : IntElem<uint8_t> {};
template <> struct Elem<DType::i1> {
  using S = uint8_t;
  using C = int64_t;
  using Acc = int64_t;
  static constexpr bool isFloat = false;
  static C load(S v) { return v ? 1 : 0; }
  static S store(C v) { return v ? 1 : 0; }
};

/// Type classes of the contract.
enum class TypeClass { floats, signedTypes, numeric, all };

inline bool inClass(DType t, TypeClass c) {
  bool isFloat =
      t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64;
  switch (c) {
  case TypeClass::floats:
    return isFloat;
  case TypeClass::signedTypes:
    return isFloat || t == DType::i64 || t == DType::i32 || t == DType::i8;
  case TypeClass::numeric:
    return t != DType::i1;
  case TypeClass::all:
    return true;
  }
  return false;
}

inline const char *className(TypeClass c) {
  switch (c) {
  case TypeClass::floats:
    return "a float type (f32, f16, bf16, f64)";
  case TypeClass::signedTypes:
    return "a signed type (float, i64, i32, i8)";
  case TypeClass::numeric:
    return "a numeric type (not i1)";
  case TypeClass::all:
    return "any type";
  }
  return "";
}

inline Status unsupportedType(DType t, TypeClass c) {
  return Status::error(std::string("unsupported element type ") + dtypeName(t) +
                       ", expected " + className(c));
}

/// Calls `fn.template operator()<D>()` for the runtime dtype `t` when it is in
/// class `c`; otherwise an error status.
template <typename F> Status dispatch(DType t, TypeClass c, F &&fn) {
  if (!inClass(t, c))
    return unsupportedType(t, c);
  switch (t) {
  case DType::f32:
    return fn.template operator()<DType::f32>();
  case DType::f16:
    return fn.template operator()<DType::f16>();
  case DType::bf16:
    return fn.template operator()<DType::bf16>();
  case DType::f64:
    return fn.template operator()<DType::f64>();
  case DType::i64:
    return fn.template operator()<DType::i64>();
  case DType::i32:
    return fn.template operator()<DType::i32>();
  case DType::i8:
    return fn.template operator()<DType::i8>();
  case DType::u8:
    return fn.template operator()<DType::u8>();
  case DType::i1:
    return fn.template operator()<DType::i1>();
  }
  return unsupportedType(t, c);
}

/// Reads a kernel's attributes. Attributes with a contract default take it
/// when absent; required ones (no default) record an error. A present
/// attribute of the wrong JSON type is always an error. Check ok() once after
/// reading them all.
class Attrs {
public:
  explicit Attrs(const KernelContext &ctx) : attrs_(ctx.call->attrs) {}

  int64_t i64(const char *name, std::optional<int64_t> def = std::nullopt) {
    const nlohmann::json *v = get(name, def.has_value());
    if (!v)
      return def.value_or(0);
    if (!v->is_number_integer() && !v->is_boolean())
      return wrongType(name, "an integer"), 0;
    return v->is_boolean() ? int64_t(v->get<bool>()) : v->get<int64_t>();
  }
  bool boolean(const char *name, std::optional<bool> def = std::nullopt) {
    const nlohmann::json *v = get(name, def.has_value());
    if (!v)
      return def.value_or(false);
    if (v->is_boolean())
      return v->get<bool>();
    if (v->is_number_integer())
      return v->get<int64_t>() != 0;
    return wrongType(name, "a bool"), false;
  }
  double f64(const char *name, std::optional<double> def = std::nullopt) {
    const nlohmann::json *v = get(name, def.has_value());
    if (!v)
      return def.value_or(0);
    if (!v->is_number())
      return wrongType(name, "a number"), 0;
    return v->get<double>();
  }
  std::string str(const char *name,
                  std::optional<std::string> def = std::nullopt) {
    const nlohmann::json *v = get(name, def.has_value());
    if (!v)
      return def.value_or("");
    if (!v->is_string())
      return wrongType(name, "a string"), "";
    return v->get<std::string>();
  }
  std::vector<int64_t>
  ints(const char *name,
       std::optional<std::vector<int64_t>> def = std::nullopt) {
    const nlohmann::json *v = get(name, def.has_value());
    if (!v)
      return def.value_or(std::vector<int64_t>{});
    if (!v->is_array())
      return wrongType(name, "a list of integers"), std::vector<int64_t>{};
    std::vector<int64_t> out;
    for (const auto &e : *v) {
      if (!e.is_number_integer())
        return wrongType(name, "a list of integers"), std::vector<int64_t>{};
      out.push_back(e.get<int64_t>());
    }
    return out;
  }
  /// dtype attribute (TypeAttr as a dtype string).
  DType dtype(const char *name) {
    std::string s = str(name);
    if (!status_.isOk())
      return DType::f32;
    auto t = parseDType(s);
    if (!t)
      setError("attribute '" + std::string(name) + "': unknown dtype '" + s +
               "'");
    return t.value_or(DType::f32);
  }

  bool ok() const { return status_.isOk(); }
  const Status &status() const { return status_; }

private:
  const nlohmann::json *get(const char *name, bool hasDefault) {
    auto it = attrs_.find(name);
    if (it == attrs_.end() || it->is_null()) {
      if (!hasDefault)
        setError("missing required attribute '" + std::string(name) + "'");
      return nullptr;
    }
    return &*it;
  }
  void wrongType(const char *name, const char *what) {
    setError("attribute '" + std::string(name) + "' must be " + what);
  }
  void setError(std::string msg) {
    if (status_.isOk())
      status_ = Status::error(std::move(msg));
  }
  const nlohmann::json &attrs_;
  Status status_;
};

/// Checks operand and result counts.
inline Status expectArity(const KernelContext &ctx, size_t minIn, size_t maxIn,
                          size_t outs) {
  size_t n = ctx.inputs.size();
  if (n < minIn || n > maxIn)
    return Status::error("expected " +
                         (minIn == maxIn ? std::to_string(minIn)
                                         : std::to_string(minIn) + " to " +
                                               std::to_string(maxIn)) +
                         " operands, got " + std::to_string(n));
  if (ctx.outputs.size() != outs)
    return Status::error("expected " + std::to_string(outs) + " results, got " +
                         std::to_string(ctx.outputs.size()));
  return Status::ok();
}

/// Checks that the planned result buffer has the shape the op computes.
inline Status expectResult(const BufferView &out, DType dtype,
                           const std::vector<int64_t> &shape) {
  if (out.dtype != dtype || out.shape != shape)
    return Status::error(std::string("result buffer is ") +
                         dtypeName(out.dtype) + " " + shapeToString(out.shape) +
                         ", expected " + dtypeName(dtype) + " " +
                         shapeToString(shape));
  return Status::ok();
}

inline Status expectSameType(const BufferView &a, const BufferView &b,
                             const char *what) {
  if (a.dtype != b.dtype)
    return Status::error(std::string(what) + ": element types differ (" +
                         dtypeName(a.dtype) + " vs " + dtypeName(b.dtype) +
                         ")");
  return Status::ok();
}

/// Normalizes a possibly negative axis against `rank`.
inline Status normalizeAxis(int64_t &axis, int64_t rank, const char *name) {
  if (axis < -rank || axis >= rank)
    return Status::error("attribute '" + std::string(name) +
                         "' = " + std::to_string(axis) +
                         " out of range for rank " + std::to_string(rank));
  if (axis < 0)
    axis += rank;
  return Status::ok();
}

/// max / min of floats as kiln.max / kiln.min define them: a NaN operand
/// gives NaN (as torch.maximum), where std::max would drop it.
template <typename C> C maxKeepingNan(C x, C y) {
  return (x != x || y != y) ? x + y : (x < y ? y : x);
}
template <typename C> C minKeepingNan(C x, C y) {
  return (x != x || y != y) ? x + y : (y < x ? y : x);
}

/// ONNX HardSwish as the importer spells it, x * max(min(x / 6 + 1/2, 1),
/// 0): the epilogue step `hardswish` of the reference and cpu backends.
template <typename C> C hardSwish(C x) {
  C gate = x * static_cast<C>(1.0 / 6) + static_cast<C>(0.5);
  return x * maxKeepingNan(minKeepingNan(gate, C(1)), C(0));
}

/// Row-major strides of `shape` (in elements).
inline std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/// NumPy broadcast of two shapes; error when incompatible.
inline Status broadcastShapes(const std::vector<int64_t> &a,
                              const std::vector<int64_t> &b,
                              std::vector<int64_t> &out) {
  size_t r = std::max(a.size(), b.size());
  out.assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      return Status::error("shapes " + shapeToString(a) + " and " +
                           shapeToString(b) + " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return Status::ok();
}

/// Strides to read `in` as if broadcast to `out` (0 along broadcast dims).
inline std::vector<int64_t> broadcastStrides(const std::vector<int64_t> &in,
                                             const std::vector<int64_t> &out) {
  std::vector<int64_t> s(out.size(), 0);
  std::vector<int64_t> own = stridesOf(in);
  size_t lead = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    s[lead + i] = in[i] == 1 ? 0 : own[i];
  return s;
}

/// Walks a multi-index over `shape` in row-major order, tracking one offset
/// per operand stride vector.
class StridedWalk {
public:
  StridedWalk(const std::vector<int64_t> &shape,
              std::vector<std::vector<int64_t>> strides)
      : shape_(shape), strides_(std::move(strides)), index_(shape.size(), 0),
        offsets_(strides_.size(), 0) {}
  int64_t offset(size_t operand) const { return offsets_[operand]; }
  void next() {
    for (int64_t d = static_cast<int64_t>(shape_.size()) - 1; d >= 0; --d) {
      if (++index_[d] < shape_[d]) {
        for (size_t k = 0; k < strides_.size(); ++k)
          offsets_[k] += strides_[k][d];
        return;
      }
      for (size_t k = 0; k < strides_.size(); ++k)
        offsets_[k] -= strides_[k][d] * (shape_[d] - 1);
      index_[d] = 0;
    }
  }

private:
  std::vector<int64_t> shape_;
  std::vector<std::vector<int64_t>> strides_;
  std::vector<int64_t> index_;
  std::vector<int64_t> offsets_;
};

// Family registration (one per source file).
void registerElementwiseKernels(Backend &b);
void registerMatmulKernels(Backend &b);
void registerConvKernels(Backend &b);
void registerPoolKernels(Backend &b);
void registerNormKernels(Backend &b);
void registerReduceKernels(Backend &b);
void registerShapeKernels(Backend &b);
void registerFusedKernels(Backend &b);
void registerAttentionKernels(Backend &b);

/// Reads gather indices (i32 or i64) into `out`, counting negative ones from
/// the end of an axis of size `dim`; an out-of-range index is an error that
/// names it. Shared by the reference and cpu gather kernels.
inline Status readGatherIndices(const BufferView &idx, int64_t dim,
                                int64_t axis, std::vector<int64_t> &out) {
  int64_t count = idx.numElements();
  out.resize(count);
  for (int64_t i = 0; i < count; ++i) {
    int64_t v =
        idx.dtype == DType::i64 ? idx.as<int64_t>()[i] : idx.as<int32_t>()[i];
    if (v < -dim || v >= dim)
      return Status::error("index " + std::to_string(v) + " at position " +
                           std::to_string(i) + " out of range for axis " +
                           std::to_string(axis) + " of size " +
                           std::to_string(dim));
    out[i] = v < 0 ? v + dim : v;
  }
  return Status::ok();
}

/// The checked geometry of an attention call (see reference/Attention.cpp
/// for the contract): q [B, H, Sq, D], k [B, Hk, Sk, D], v [B, Hk, Sk, Dv],
/// an optional mask broadcastable to [B, H, Sq, Sk], result [B, H, Sq, Dv].
struct AttentionGeometry {
  DType dtype = DType::f32;
  int64_t batch = 0, heads = 0, kvHeads = 0, queries = 0, keys = 0;
  int64_t headDim = 0, valueDim = 0;
  bool hasMask = false;
  /// The mask's dtype: q's (additive) or i1 (boolean).
  DType maskType = DType::f32;
  /// Element strides of the mask over [B, H, Sq, Sk]; 0 along broadcast dims.
  int64_t maskStrides[4] = {0, 0, 0, 0};
};

/// Checks the operand and result descriptors of an attention call (3 or 4
/// operands: q, k, v, mask) and fills `geometry`; an error names the operand
/// at fault. Shared by the reference kernel (which reports it) and the cpu
/// factory (which declines). Defined in reference/Attention.cpp.
Status checkAttention(const std::vector<DType> &types,
                      const std::vector<std::vector<int64_t>> &shapes,
                      DType resultType, const std::vector<int64_t> &resultShape,
                      AttentionGeometry &geometry);

/// Converts a compute value to the target's compute type with the contract's
/// cast rules (truncateToInt64 for float->int; x->i1 is x != 0). Shared by
/// the reference and cpu cast kernels.
template <DType To, typename From> typename Elem<To>::C convertValue(From v) {
  using CT = typename Elem<To>::C;
  if constexpr (To == DType::i1)
    return v != From(0) ? 1 : 0;
  else if constexpr (std::is_integral_v<CT> && !std::is_integral_v<From>)
    return static_cast<CT>(truncateToInt64(static_cast<double>(v)));
  else
    return static_cast<CT>(v);
}

} // namespace kiln::reference

#endif // KILN_RUNTIME_BACKENDS_REFERENCE_COMMON_H
