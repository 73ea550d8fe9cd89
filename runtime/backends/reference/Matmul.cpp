//===- Matmul.cpp - Batched matrix multiplication -------------------------===//
//
// matmul(a, b) with optional transposes and broadcast batch dims; accumulates
// in Elem<D>::Acc (f64 for f32/f64, f32 for f16/bf16, wrapping i64 for ints).
//
//===----------------------------------------------------------------------===//
#include "Common.h"

namespace kiln::reference {
namespace {

Status matmulKernel(const KernelContext &ctx) {
  if (Status s = expectArity(ctx, 2, 2, 1); !s)
    return s;
  Attrs attrs(ctx);
  bool ta = attrs.boolean("transpose_a", false);
  bool tb = attrs.boolean("transpose_b", false);
  if (!attrs.ok())
    return attrs.status();
  const BufferView &a = ctx.inputs[0], &b = ctx.inputs[1];
  const BufferView &out = ctx.outputs[0];
  if (Status s = expectSameType(a, b, "operands"); !s)
    return s;
  if (a.rank() < 2 || b.rank() < 2)
    return Status::error("operands must have rank >= 2, got " +
                         shapeToString(a.shape) + " and " +
                         shapeToString(b.shape));
  int64_t ra = a.rank(), rb = b.rank();
  int64_t M = ta ? a.shape[ra - 1] : a.shape[ra - 2];
  int64_t K = ta ? a.shape[ra - 2] : a.shape[ra - 1];
  int64_t Kb = tb ? b.shape[rb - 1] : b.shape[rb - 2];
  int64_t N = tb ? b.shape[rb - 2] : b.shape[rb - 1];
  if (K != Kb)
    return Status::error(
        "contraction dims differ: a " + shapeToString(a.shape) +
        " gives K=" + std::to_string(K) + ", b " + shapeToString(b.shape) +
        " gives K=" + std::to_string(Kb));
  std::vector<int64_t> batchA(a.shape.begin(), a.shape.end() - 2);
  std::vector<int64_t> batchB(b.shape.begin(), b.shape.end() - 2);
  std::vector<int64_t> batch;
  if (Status s = broadcastShapes(batchA, batchB, batch); !s)
    return s;
  std::vector<int64_t> shape = batch;
  shape.push_back(M);
  shape.push_back(N);
  if (Status s = expectResult(out, a.dtype, shape); !s)
    return s;
  // Strides of the matrix element (row, col) of each operand, in elements.
  int64_t aRow = ta ? 1 : K, aCol = ta ? M : 1; // a[m, k]
  int64_t bRow = tb ? 1 : N, bCol = tb ? K : 1; // b[k, n]
  std::vector<int64_t> sa = broadcastStrides(batchA, batch);
  std::vector<int64_t> sb = broadcastStrides(batchB, batch);
  int64_t batches = numElements(batch);
  return dispatch(a.dtype, TypeClass::numeric, [&]<DType D>() {
    using E = Elem<D>;
    using Acc = typename E::Acc;
    const auto *pa = a.as<typename E::S>();
    const auto *pb = b.as<typename E::S>();
    auto *po = out.as<typename E::S>();
    StridedWalk walk(batch, {sa, sb});
    for (int64_t bi = 0; bi < batches; ++bi, walk.next()) {
      const auto *ma = pa + walk.offset(0) * M * K;
      const auto *mb = pb + walk.offset(1) * K * N;
      auto *mo = po + bi * M * N;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          Acc acc = 0;
          for (int64_t k = 0; k < K; ++k) {
            Acc x = static_cast<Acc>(E::load(ma[m * aRow + k * aCol]));
            Acc y = static_cast<Acc>(E::load(mb[k * bRow + n * bCol]));
            if constexpr (std::is_integral_v<Acc>)
              acc = static_cast<Acc>(static_cast<uint64_t>(acc) +
                                     static_cast<uint64_t>(x) *
                                         static_cast<uint64_t>(y));
            else
              acc += x * y;
          }
          mo[m * N + n] = E::store(static_cast<typename E::C>(acc));
        }
    }
    return Status::ok();
  });
}

} // namespace

void registerMatmulKernels(Backend &b) { b.add("matmul", matmulKernel); }

} // namespace kiln::reference
