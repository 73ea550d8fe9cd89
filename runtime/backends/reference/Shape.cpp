//===- Shape.cpp - reshape, transpose, concat, slice, gather, broadcast_to ===//
//
// Shape ops move bytes and never look at values (except gather's indices),
// so they work for every element type.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

namespace kiln::reference {
namespace {

/// Copies elements of `x` read through `strides` (starting at `base`, in
/// elements) into the dense `out`.
void gatherStrided(const BufferView &x, const BufferView &out, int64_t base,
                   const std::vector<int64_t> &strides) {
  size_t elem = dtypeSize(x.dtype);
  int64_t n = out.numElements();
  StridedWalk walk(out.shape, {strides});
  const uint8_t *src = x.as<uint8_t>();
  uint8_t *dst = out.as<uint8_t>();
  for (int64_t i = 0; i < n; ++i, walk.next())
    std::memcpy(dst + i * elem, src + (base + walk.offset(0)) * elem, elem);
}

Status reshapeKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  Attrs attrs(ctx);
  std::vector<int64_t> shape = attrs.ints("shape");
  if (!attrs.ok())
    return attrs.status();
  const BufferView &x = ctx.inputs[0];
  for (int64_t d : shape)
    if (d < 0)
      return Status::error("attribute 'shape' " + shapeToString(shape) +
                           " has a negative dim");
  if (numElements(shape) != x.numElements())
    return Status::error("cannot reshape " + shapeToString(x.shape) + " to " +
                         shapeToString(shape));
  if (Status s = expectResult(ctx.outputs[0], x.dtype, shape); !s)
    return s;
  size_t bytes = x.numElements() * dtypeSize(x.dtype);
  if (bytes && ctx.outputs[0].data != x.data)
    std::memmove(ctx.outputs[0].data, x.data, bytes);
  return Status::ok();
}

Status transposeKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  Attrs attrs(ctx);
  std::vector<int64_t> perm = attrs.ints("perm");
  if (!attrs.ok())
    return attrs.status();
  const BufferView &x = ctx.inputs[0];
  int64_t rank = x.rank();
  if (static_cast<int64_t>(perm.size()) != rank)
    return Status::error("attribute 'perm' has " + std::to_string(perm.size()) +
                         " entries for rank " + std::to_string(rank));
  std::vector<bool> used(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= rank || used[p])
      return Status::error("attribute 'perm' " + shapeToString(perm) +
                           " is not a permutation");
    used[p] = true;
  }
  std::vector<int64_t> own = stridesOf(x.shape), shape(rank), strides(rank);
  for (int64_t i = 0; i < rank; ++i) {
    shape[i] = x.shape[perm[i]];
    strides[i] = own[perm[i]];
  }
  if (Status s = expectResult(ctx.outputs[0], x.dtype, shape); !s)
    return s;
  gatherStrided(x, ctx.outputs[0], 0, strides);
  return Status::ok();
}

Status concatKernel(const KernelContext &ctx) {
  if (ctx.inputs.empty())
    return Status::error("expected at least one operand");
  if (Status s = expectArity(ctx, 1, ctx.inputs.size(), 1); !s)
    return s;
  Attrs attrs(ctx);
  int64_t axis = attrs.i64("axis");
  if (!attrs.ok())
    return attrs.status();
  const BufferView &first = ctx.inputs[0];
  int64_t rank = first.rank();
  if (rank == 0)
    return Status::error("cannot concatenate rank-0 tensors");
  if (Status s = normalizeAxis(axis, rank, "axis"); !s)
    return s;
  std::vector<int64_t> shape = first.shape;
  shape[axis] = 0;
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    const BufferView &x = ctx.inputs[i];
    if (Status s = expectSameType(first, x, "operands"); !s)
      return s;
    bool ok = x.rank() == rank;
    for (int64_t d = 0; ok && d < rank; ++d)
      ok = d == axis || x.shape[d] == first.shape[d];
    if (!ok)
      return Status::error("operand " + std::to_string(i) + " has shape " +
                           shapeToString(x.shape) + ", incompatible with " +
                           shapeToString(first.shape) + " along axis " +
                           std::to_string(axis));
    shape[axis] += x.shape[axis];
  }
  if (Status s = expectResult(ctx.outputs[0], first.dtype, shape); !s)
    return s;
  size_t elem = dtypeSize(first.dtype);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= shape[d];
  for (int64_t d = axis + 1; d < rank; ++d)
    inner *= shape[d];
  uint8_t *dst = ctx.outputs[0].as<uint8_t>();
  int64_t outRow = shape[axis] * inner * elem, done = 0;
  for (const BufferView &x : ctx.inputs) {
    int64_t row = x.shape[axis] * inner * elem;
    for (int64_t o = 0; o < outer && row; ++o)
      std::memcpy(dst + o * outRow + done, x.as<uint8_t>() + o * row, row);
    done += row;
  }
  return Status::ok();
}

Status sliceKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  Attrs attrs(ctx);
  std::vector<int64_t> starts = attrs.ints("starts");
  std::vector<int64_t> ends = attrs.ints("ends");
  std::vector<int64_t> steps = attrs.ints("steps");
  if (!attrs.ok())
    return attrs.status();
  const BufferView &x = ctx.inputs[0];
  size_t rank = x.shape.size();
  if (starts.size() != rank || ends.size() != rank || steps.size() != rank)
    return Status::error("attributes 'starts', 'ends', 'steps' need one entry "
                         "per dim (rank " +
                         std::to_string(rank) + ")");
  std::vector<int64_t> own = stridesOf(x.shape), shape(rank), strides(rank);
  int64_t base = 0;
  bool empty = false;
  for (size_t d = 0; d < rank; ++d) {
    int64_t dim = x.shape[d], st = starts[d], en = ends[d], sp = steps[d];
    std::string where = "dim " + std::to_string(d) + " (size " +
                        std::to_string(dim) + "): start " + std::to_string(st) +
                        ", end " + std::to_string(en) + ", step " +
                        std::to_string(sp);
    if (sp == 0)
      return Status::error(where + ": step must not be 0");
    int64_t size;
    if (sp > 0) {
      if (!(0 <= st && st <= en && en <= dim))
        return Status::error(where + ": expected 0 <= start <= end <= dim");
      size = (en - st + sp - 1) / sp;
    } else {
      if (dim == 0) {
        size = 0;
      } else {
        if (!(-1 <= en && en <= st && st < dim))
          return Status::error(where + ": expected -1 <= end <= start < dim");
        size = (st - en + (-sp) - 1) / (-sp);
      }
    }
    shape[d] = size;
    strides[d] = own[d] * sp;
    if (size == 0)
      empty = true;
    else
      base += st * own[d];
  }
  if (Status s = expectResult(ctx.outputs[0], x.dtype, shape); !s)
    return s;
  if (!empty)
    gatherStrided(x, ctx.outputs[0], base, strides);
  return Status::ok();
}

Status gatherKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 2, 2, 1); !s)
    return s;
  Attrs attrs(ctx);
  int64_t axis = attrs.i64("axis", 0);
  if (!attrs.ok())
    return attrs.status();
  const BufferView &data = ctx.inputs[0], &idx = ctx.inputs[1];
  if (idx.dtype != DType::i64 && idx.dtype != DType::i32)
    return Status::error(std::string("indices must be i64 or i32, got ") +
                         dtypeName(idx.dtype));
  if (data.rank() == 0)
    return Status::error("cannot gather from a rank-0 tensor");
  if (Status s = normalizeAxis(axis, data.rank(), "axis"); !s)
    return s;
  std::vector<int64_t> shape(data.shape.begin(), data.shape.begin() + axis);
  shape.insert(shape.end(), idx.shape.begin(), idx.shape.end());
  shape.insert(shape.end(), data.shape.begin() + axis + 1, data.shape.end());
  if (Status s = expectResult(ctx.outputs[0], data.dtype, shape); !s)
    return s;
  int64_t dim = data.shape[axis];
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= data.shape[d];
  for (int64_t d = axis + 1; d < data.rank(); ++d)
    inner *= data.shape[d];
  int64_t count = idx.numElements();
  std::vector<int64_t> indices;
  if (Status s = readGatherIndices(idx, dim, axis, indices); !s)
    return s;
  size_t row = inner * dtypeSize(data.dtype);
  const uint8_t *src = data.as<uint8_t>();
  uint8_t *dst = ctx.outputs[0].as<uint8_t>();
  for (int64_t o = 0; o < outer && row; ++o)
    for (int64_t i = 0; i < count; ++i)
      std::memcpy(dst + (o * count + i) * row,
                  src + (o * dim + indices[i]) * row, row);
  return Status::ok();
}

Status broadcastToKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 1, 1, 1); !s)
    return s;
  Attrs attrs(ctx);
  std::vector<int64_t> shape = attrs.ints("shape");
  if (!attrs.ok())
    return attrs.status();
  const BufferView &x = ctx.inputs[0];
  std::vector<int64_t> result;
  if (Status s = broadcastShapes(x.shape, shape, result); !s)
    return s;
  if (result != shape)
    return Status::error("cannot broadcast " + shapeToString(x.shape) + " to " +
                         shapeToString(shape));
  if (Status s = expectResult(ctx.outputs[0], x.dtype, shape); !s)
    return s;
  gatherStrided(x, ctx.outputs[0], 0, broadcastStrides(x.shape, shape));
  return Status::ok();
}

} // namespace

void registerShapeKernels(Backend &b) {
  b.add("reshape", reshapeKernel);
  b.add("transpose", transposeKernel);
  b.add("concat", concatKernel);
  b.add("slice", sliceKernel);
  b.add("gather", gatherKernel);
  b.add("broadcast_to", broadcastToKernel);
}

} // namespace kiln::reference
