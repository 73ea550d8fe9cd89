//===- Onednn.cpp - Kernels on oneDNN 2.6 primitives ----------------------===//
//
// Each factory checks the call (dtypes, shapes, attributes) against what the
// primitive handles, builds memory descriptors and the primitive once, and
// prepacks weights: a matmul B or conv weight bound to a param/constant is
// reordered into the layout oneDNN picks (format_tag::any) and kept. At run
// time an OnednnKernel only sets data handles and executes. Anything that
// throws during preparation declines the call.
//
//===----------------------------------------------------------------------===//
#include "backends/cpu/Cpu.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cstring>
#include <numeric>

namespace kiln::cpu {
namespace {

using dnnl::memory;
using dt = memory::data_type;

dnnl::engine &engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream &stream() {
  // Per thread: Executables may run concurrently on different threads.
  static thread_local dnnl::stream s(engine());
  return s;
}

/// oneDNN data type for a kiln dtype; i1 is a byte holding 0/1, so u8.
std::optional<dt> onednnType(DType t) {
  switch (t) {
  case DType::f32:
    return dt::f32;
  case DType::bf16:
    return dt::bf16;
  case DType::f16:
    return dt::f16;
  case DType::i32:
    return dt::s32;
  case DType::i8:
    return dt::s8;
  case DType::u8:
  case DType::i1:
    return dt::u8;
  default:
    return std::nullopt;
  }
}

/// oneDNN dims of a shape (rank 0 becomes {1}).
memory::dims dimsOf(const std::vector<int64_t> &shape) {
  if (shape.empty())
    return {1};
  return memory::dims(shape.begin(), shape.end());
}

/// Row-major strides.
memory::dims denseStrides(const memory::dims &dims) {
  memory::dims s(dims.size(), 1);
  for (int64_t i = static_cast<int64_t>(dims.size()) - 2; i >= 0; --i)
    s[i] = s[i + 1] * dims[i + 1];
  return s;
}

memory::desc dense(const std::vector<int64_t> &shape, dt type) {
  memory::dims d = dimsOf(shape);
  return memory::desc(d, type, denseStrides(d));
}

bool isFloat32Or16(DType t) { return t == DType::f32 || t == DType::bf16; }

/// A prepared oneDNN call: a primitive, arguments bound to the call's
/// operands and results, arguments it owns (prepacked weights, scratch), and
/// reorders run before it (an operand into the layout the primitive wants).
class OnednnKernel : public PreparedKernel {
public:
  OnednnKernel(std::string impl, dnnl::primitive primitive)
      : PreparedKernel(std::move(impl)), primitive_(std::move(primitive)) {}

  /// Argument `arg` reads operand `index` (or writes result `index`). When
  /// the executor runs the op in place and the primitive cannot read this
  /// operand from the result's bytes (!inPlaceOk), it reads a copy.
  void bind(int arg, bool isResult, size_t index, const memory::desc &md,
            bool inPlaceOk = true) {
    memory m(md, engine(), DNNL_MEMORY_NONE);
    args_[arg] = m;
    bindings_.push_back({m, isResult, index, inPlaceOk});
  }
  /// Argument `arg` is memory the kernel owns.
  void own(int arg, memory m) { args_[arg] = std::move(m); }
  /// Argument `arg` is operand `index` reordered from `user` to `md` on each
  /// run (an operand that is not a weight, in a layout the primitive picked).
  void bindReordered(int arg, size_t index, const memory::desc &user,
                     const memory::desc &md) {
    memory src(user, engine(), DNNL_MEMORY_NONE);
    memory dst(md, engine());
    reorders_.push_back({dnnl::reorder(src, dst), src, dst});
    bindings_.push_back({src, false, index, true});
    args_[arg] = dst;
  }

  Status run(const KernelContext &ctx) override {
    try {
      applyThreads();
      std::vector<uint8_t> copy;
      for (Binding &b : bindings_) {
        if (b.isResult) {
          b.mem.set_data_handle(ctx.outputs[b.index].data);
          continue;
        }
        const BufferView &in = ctx.inputs[b.index];
        if (!b.inPlaceOk && in.data == ctx.outputs[0].data) {
          const auto *bytes = static_cast<const uint8_t *>(in.data);
          copy.assign(bytes, bytes + in.numElements() * dtypeSize(in.dtype));
          b.mem.set_data_handle(copy.data());
        } else {
          b.mem.set_data_handle(in.data);
        }
      }
      for (Reorder &r : reorders_)
        r.prim.execute(stream(), r.src, r.dst);
      primitive_.execute(stream(), args_);
      stream().wait();
      return Status::ok();
    } catch (const dnnl::error &e) {
      return Status::error(std::string("oneDNN: ") + e.what());
    }
  }

private:
  struct Binding {
    memory mem;
    bool isResult;
    size_t index;
    bool inPlaceOk;
  };
  struct Reorder {
    dnnl::reorder prim;
    memory src, dst;
  };
  dnnl::primitive primitive_;
  std::unordered_map<int, memory> args_;
  std::vector<Binding> bindings_;
  std::vector<Reorder> reorders_;
};

/// Memory of layout `md` holding the weight `w` (given in layout `user`),
/// reordered once.
memory prepack(const Tensor &w, const memory::desc &user,
               const memory::desc &md) {
  memory src(user, engine(), const_cast<void *>(w.data()));
  memory dst(md, engine());
  dnnl::reorder(src, dst).execute(stream(), src, dst);
  stream().wait();
  return dst;
}

/// Wraps a factory so that a oneDNN error (an unsupported combination)
/// declines the call instead of failing.
KernelFactory declineOnError(
    std::unique_ptr<PreparedKernel> (*factory)(const PrepareContext &)) {
  return
      [factory](const PrepareContext &pc) -> std::unique_ptr<PreparedKernel> {
        try {
          return factory(pc);
        } catch (const dnnl::error &) {
          return nullptr;
        }
      };
}

//===----------------------------------------------------------------------===//
// matmul
//===----------------------------------------------------------------------===//

std::unique_ptr<PreparedKernel> prepareMatmul(const PrepareContext &pc) {
  if (!simpleArity(pc, 2, 2))
    return nullptr;
  const BufferDesc &a = pc.inputs[0], &b = pc.inputs[1], &out = pc.outputs[0];
  if (!isFloat32Or16(a.dtype) || b.dtype != a.dtype || out.dtype != a.dtype)
    return nullptr;
  auto ta = attrBool(pc, "transpose_a", false);
  auto tb = attrBool(pc, "transpose_b", false);
  if (!ta || !tb || a.shape.size() < 2 || b.shape.size() < 2)
    return nullptr;
  size_t ra = a.shape.size(), rb = b.shape.size();
  int64_t M = *ta ? a.shape[ra - 1] : a.shape[ra - 2];
  int64_t K = *ta ? a.shape[ra - 2] : a.shape[ra - 1];
  int64_t Kb = *tb ? b.shape[rb - 1] : b.shape[rb - 2];
  int64_t N = *tb ? b.shape[rb - 2] : b.shape[rb - 1];
  std::vector<int64_t> batchA(a.shape.begin(), a.shape.end() - 2);
  std::vector<int64_t> batchB(b.shape.begin(), b.shape.end() - 2);
  auto batch = broadcastShape(batchA, batchB);
  if (K != Kb || !batch)
    return nullptr;
  std::vector<int64_t> shape = *batch;
  shape.push_back(M);
  shape.push_back(N);
  if (out.shape != shape || shape.size() > DNNL_MAX_NDIMS)
    return nullptr;
  dt type = *onednnType(a.dtype);
  const Tensor *weight = pc.weights[1];

  memory::desc srcMd, weiUser, dstMd;
  bool bHasBatch = numElements(batchB) != 1;
  if (!bHasBatch && !*ta) {
    // b is one matrix: fold a's batch into M, one 2-D GEMM.
    int64_t rows = numElements(a.shape) / K;
    srcMd = memory::desc({rows, K}, type, memory::dims{K, 1});
    weiUser = memory::desc({K, N}, type,
                           *tb ? memory::dims{1, K} : memory::dims{N, 1});
    dstMd = memory::desc({rows, N}, type, memory::dims{N, 1});
  } else {
    // Batched: operands padded to the result's rank with leading 1s.
    size_t r = shape.size();
    auto operand = [&](const BufferDesc &x, bool t, int64_t rows,
                       int64_t cols) {
      memory::dims dims(r, 1), strides(r, numElements(x.shape));
      memory::dims own = denseStrides(dimsOf(x.shape));
      size_t lead = r - x.shape.size();
      for (size_t i = 0; i + 2 < x.shape.size(); ++i) {
        dims[lead + i] = x.shape[i];
        strides[lead + i] = own[i];
      }
      dims[r - 2] = rows;
      dims[r - 1] = cols;
      // Stored as [.., rows, cols], or [.., cols, rows] when transposed.
      strides[r - 2] = t ? 1 : cols;
      strides[r - 1] = t ? rows : 1;
      return memory::desc(dims, type, strides);
    };
    srcMd = operand(a, *ta, M, K);
    weiUser = operand(b, *tb, K, N);
    dstMd = dense(shape, type);
  }
  memory::desc weiMd = weiUser;
  if (weight && weiUser.dims().size() == 2)
    weiMd = memory::desc(weiUser.dims(), type, memory::format_tag::any);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(srcMd, weiMd, dstMd),
                                  engine());
  auto k = std::make_unique<OnednnKernel>("onednn:matmul", dnnl::matmul(pd));
  k->bind(DNNL_ARG_SRC, false, 0, srcMd);
  k->bind(DNNL_ARG_DST, true, 0, dstMd);
  if (weight && pd.weights_desc() != weiUser)
    k->own(DNNL_ARG_WEIGHTS, prepack(*weight, weiUser, pd.weights_desc()));
  else
    k->bind(DNNL_ARG_WEIGHTS, false, 1, weiUser);
  return k;
}

//===----------------------------------------------------------------------===//
// conv2d
//===----------------------------------------------------------------------===//

std::unique_ptr<PreparedKernel> prepareConv(const PrepareContext &pc) {
  if (!simpleArity(pc, 2, 3))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &w = pc.inputs[1], &out = pc.outputs[0];
  bool hasBias = pc.inputs.size() == 3;
  if (!isFloat32Or16(x.dtype) || w.dtype != x.dtype || out.dtype != x.dtype ||
      (hasBias && pc.inputs[2].dtype != x.dtype))
    return nullptr;
  auto strides = attrInts(pc, "strides", {{1, 1}});
  auto pads = attrInts(pc, "pads", {{0, 0, 0, 0}});
  auto dil = attrInts(pc, "dilations", {{1, 1}});
  auto groups = attrInt(pc, "groups", 1);
  if (!strides || !pads || !dil || !groups || strides->size() != 2 ||
      pads->size() != 4 || dil->size() != 2 || x.shape.size() != 4 ||
      w.shape.size() != 4)
    return nullptr;
  for (int64_t v : *strides)
    if (v < 1)
      return nullptr;
  for (int64_t v : *dil)
    if (v < 1)
      return nullptr;
  for (int64_t v : *pads)
    if (v < 0)
      return nullptr;
  int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  int64_t O = w.shape[0], CG = w.shape[1], KH = w.shape[2], KW = w.shape[3];
  int64_t G = *groups;
  if (G < 1 || C % G != 0 || O % G != 0 || CG != C / G)
    return nullptr;
  if (hasBias && pc.inputs[2].shape != std::vector<int64_t>{O})
    return nullptr;
  int64_t effH = H + (*pads)[0] + (*pads)[2] - (*dil)[0] * (KH - 1) - 1;
  int64_t effW = W + (*pads)[1] + (*pads)[3] - (*dil)[1] * (KW - 1) - 1;
  if (effH < 0 || effW < 0)
    return nullptr;
  int64_t OH = effH / (*strides)[0] + 1, OW = effW / (*strides)[1] + 1;
  if (out.shape != std::vector<int64_t>{N, O, OH, OW})
    return nullptr;
  dt type = *onednnType(x.dtype);
  memory::desc srcMd({N, C, H, W}, type, memory::format_tag::nchw);
  memory::desc dstMd({N, O, OH, OW}, type, memory::format_tag::nchw);
  memory::desc weiUser =
      G == 1 ? memory::desc({O, C, KH, KW}, type, memory::format_tag::oihw)
             : memory::desc({G, O / G, CG, KH, KW}, type,
                            memory::format_tag::goihw);
  memory::desc weiMd(weiUser.dims(), type, memory::format_tag::any);
  memory::desc biasMd =
      hasBias ? memory::desc({O}, type, memory::format_tag::x) : memory::desc();
  dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
      srcMd, weiMd, biasMd, dstMd, {(*strides)[0], (*strides)[1]},
      {(*dil)[0] - 1, (*dil)[1] - 1}, {(*pads)[0], (*pads)[1]},
      {(*pads)[2], (*pads)[3]});
  dnnl::convolution_forward::primitive_desc pd(desc, engine());
  auto k = std::make_unique<OnednnKernel>("onednn:conv2d",
                                          dnnl::convolution_forward(pd));
  k->bind(DNNL_ARG_SRC, false, 0, srcMd);
  k->bind(DNNL_ARG_DST, true, 0, dstMd);
  if (hasBias)
    k->bind(DNNL_ARG_BIAS, false, 2, biasMd);
  if (pd.weights_desc() == weiUser)
    k->bind(DNNL_ARG_WEIGHTS, false, 1, weiUser);
  else if (pc.weights[1])
    k->own(DNNL_ARG_WEIGHTS,
           prepack(*pc.weights[1], weiUser, pd.weights_desc()));
  else
    k->bindReordered(DNNL_ARG_WEIGHTS, 1, weiUser, pd.weights_desc());
  return k;
}

//===----------------------------------------------------------------------===//
// max_pool2d, avg_pool2d
//===----------------------------------------------------------------------===//

template <bool IsMax>
std::unique_ptr<PreparedKernel> preparePool(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  if (!isFloat32Or16(x.dtype) || out.dtype != x.dtype || x.shape.size() != 4)
    return nullptr;
  auto kernel = attrInts(pc, "kernel", std::nullopt);
  auto strides = attrInts(pc, "strides", {{1, 1}});
  auto pads = attrInts(pc, "pads", {{0, 0, 0, 0}});
  auto ceilMode = attrBool(pc, "ceil_mode", false);
  auto countPad = attrBool(pc, "count_include_pad", false);
  if (!kernel || !strides || !pads || !ceilMode || !countPad ||
      kernel->size() != 2 || strides->size() != 2 || pads->size() != 4)
    return nullptr;
  int64_t H = x.shape[2], W = x.shape[3];
  int64_t in[2] = {H, W};
  memory::dims padR(2), outHW(2);
  for (int d = 0; d < 2; ++d) {
    int64_t k = (*kernel)[d], s = (*strides)[d], lo = (*pads)[d],
            hi = (*pads)[d + 2];
    if (k < 1 || s < 1 || lo < 0 || hi < 0 || lo >= k || hi >= k ||
        in[d] + lo + hi < k)
      return nullptr;
    int64_t span = in[d] + lo + hi - k;
    int64_t o = (*ceilMode ? (span + s - 1) / s : span / s) + 1;
    if (*ceilMode && (o - 1) * s >= in[d] + lo)
      --o;
    // ceil_mode: extend the right padding so oneDNN's floor rule gives o.
    int64_t right = std::max(hi, (o - 1) * s + k - in[d] - lo);
    if ((in[d] + lo + right - k) / s + 1 != o)
      return nullptr;
    // Counting padding with a ceil_mode extension would count the extension.
    if (!IsMax && *countPad && right != hi)
      return nullptr;
    padR[d] = right;
    outHW[d] = o;
  }
  if (out.shape !=
      std::vector<int64_t>{x.shape[0], x.shape[1], outHW[0], outHW[1]})
    return nullptr;
  dt type = *onednnType(x.dtype);
  memory::desc srcMd = dense(x.shape, type), dstMd = dense(out.shape, type);
  dnnl::algorithm algo = IsMax ? dnnl::algorithm::pooling_max
                         : *countPad
                             ? dnnl::algorithm::pooling_avg_include_padding
                             : dnnl::algorithm::pooling_avg_exclude_padding;
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, algo,
                                   srcMd, dstMd, {(*strides)[0], (*strides)[1]},
                                   {(*kernel)[0], (*kernel)[1]},
                                   {(*pads)[0], (*pads)[1]}, padR);
  dnnl::pooling_forward::primitive_desc pd(desc, engine());
  auto k = std::make_unique<OnednnKernel>(IsMax ? "onednn:max_pool2d"
                                                : "onednn:avg_pool2d",
                                          dnnl::pooling_forward(pd));
  k->bind(DNNL_ARG_SRC, false, 0, srcMd);
  k->bind(DNNL_ARG_DST, true, 0, dstMd);
  return k;
}

//===----------------------------------------------------------------------===//
// Elementwise: eltwise (unary) and binary
//===----------------------------------------------------------------------===//

std::unique_ptr<PreparedKernel> prepareEltwise(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  if (!isFloat32Or16(x.dtype) || out.dtype != x.dtype || out.shape != x.shape)
    return nullptr;
  using A = dnnl::algorithm;
  const std::string &op = pc.call->op;
  A algo;
  float alpha = 0, beta = 0;
  if (op == "relu")
    algo = A::eltwise_relu;
  else if (op == "neg")
    algo = A::eltwise_linear, alpha = -1;
  else if (op == "abs")
    algo = A::eltwise_abs;
  else if (op == "exp")
    algo = A::eltwise_exp;
  else if (op == "log")
    algo = A::eltwise_log;
  else if (op == "sqrt")
    algo = A::eltwise_sqrt;
  else if (op == "rsqrt")
    algo = A::eltwise_pow, alpha = 1, beta = -0.5f;
  else if (op == "reciprocal")
    algo = A::eltwise_pow, alpha = 1, beta = -1;
  else if (op == "tanh")
    algo = A::eltwise_tanh;
  else if (op == "sigmoid")
    algo = A::eltwise_logistic;
  else if (op == "silu")
    algo = A::eltwise_swish, alpha = 1;
  else if (op == "gelu") {
    auto approx = attrString(pc, "approximate", "none");
    if (approx == "none")
      algo = A::eltwise_gelu_erf;
    else if (approx == "tanh")
      algo = A::eltwise_gelu_tanh;
    else
      return nullptr;
  } else
    return nullptr;
  // Pointwise: layout does not matter, so one flat dimension.
  memory::desc md({numElements(x.shape)}, *onednnType(x.dtype),
                  memory::format_tag::a);
  dnnl::eltwise_forward::primitive_desc pd(
      dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, algo, md,
                                  alpha, beta),
      engine());
  auto k = std::make_unique<OnednnKernel>("onednn:eltwise",
                                          dnnl::eltwise_forward(pd));
  k->bind(DNNL_ARG_SRC, false, 0, md);
  k->bind(DNNL_ARG_DST, true, 0, md);
  return k;
}

std::unique_ptr<PreparedKernel> prepareBinary(const PrepareContext &pc) {
  if (!simpleArity(pc, 2, 2))
    return nullptr;
  const BufferDesc &a = pc.inputs[0], &b = pc.inputs[1], &out = pc.outputs[0];
  if (!isFloat32Or16(a.dtype) || b.dtype != a.dtype || out.dtype != a.dtype)
    return nullptr;
  auto shape = broadcastShape(a.shape, b.shape);
  if (!shape || *shape != out.shape || shape->size() > DNNL_MAX_NDIMS)
    return nullptr;
  using A = dnnl::algorithm;
  const std::string &op = pc.call->op;
  static const std::map<std::string, std::pair<A, bool>> algos = {
      {"add", {A::binary_add, true}}, {"sub", {A::binary_sub, false}},
      {"mul", {A::binary_mul, true}}, {"div", {A::binary_div, false}},
      {"max", {A::binary_max, true}}, {"min", {A::binary_min, true}}};
  auto it = algos.find(op);
  if (it == algos.end())
    return nullptr;
  // oneDNN broadcasts only the second source: swap commutative operands
  // when the first is the broadcast one.
  auto padded = [&](const std::vector<int64_t> &s) {
    std::vector<int64_t> p(shape->size() - s.size(), 1);
    p.insert(p.end(), s.begin(), s.end());
    return p;
  };
  size_t src0 = 0, src1 = 1;
  if (padded(a.shape) != *shape) {
    if (!it->second.second || padded(b.shape) != *shape)
      return nullptr;
    std::swap(src0, src1);
  }
  dt type = *onednnType(a.dtype);
  memory::desc md0 = dense(*shape, type);
  memory::desc md1 = dense(padded(pc.inputs[src1].shape), type);
  if (shape->empty())
    md1 = md0;
  dnnl::binary::primitive_desc pd(
      dnnl::binary::desc(it->second.first, md0, md1, md0), engine());
  auto k = std::make_unique<OnednnKernel>("onednn:binary", dnnl::binary(pd));
  k->bind(DNNL_ARG_SRC_0, false, src0, md0);
  // oneDNN computes in place only over the first source.
  k->bind(DNNL_ARG_SRC_1, false, src1, md1, /*inPlaceOk=*/false);
  k->bind(DNNL_ARG_DST, true, 0, md0);
  return k;
}

//===----------------------------------------------------------------------===//
// softmax, log_softmax, layer_norm, batch_norm
//===----------------------------------------------------------------------===//

template <bool IsLog>
std::unique_ptr<PreparedKernel> prepareSoftmax(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  if (!isFloat32Or16(x.dtype) || out.dtype != x.dtype || out.shape != x.shape ||
      x.shape.empty() || x.shape.size() > DNNL_MAX_NDIMS)
    return nullptr;
  auto axis = attrInt(pc, "axis", -1);
  int64_t rank = static_cast<int64_t>(x.shape.size());
  if (!axis || *axis < -rank || *axis >= rank)
    return nullptr;
  int a = static_cast<int>(*axis < 0 ? *axis + rank : *axis);
  memory::desc md = dense(x.shape, *onednnType(x.dtype));
  dnnl::softmax_v2_forward::primitive_desc pd(
      dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_inference,
                                     IsLog ? dnnl::algorithm::softmax_log
                                           : dnnl::algorithm::softmax_accurate,
                                     md, md, a),
      engine());
  auto k = std::make_unique<OnednnKernel>(IsLog ? "onednn:log_softmax"
                                                : "onednn:softmax",
                                          dnnl::softmax_v2_forward(pd));
  k->bind(DNNL_ARG_SRC, false, 0, md);
  k->bind(DNNL_ARG_DST, true, 0, md);
  return k;
}

/// Memory the primitive needs for `arg` beyond the call's buffers (e.g. the
/// statistics a normalization computes), owned by the kernel.
void ownExtra(OnednnKernel &k, const dnnl::primitive_desc_base &pd, int arg) {
  memory::desc md = pd.query_md(dnnl::query::exec_arg_md, arg);
  if (md.get_size() > 0)
    k.own(arg, memory(md, engine()));
}

std::unique_ptr<PreparedKernel> prepareLayerNorm(const PrepareContext &pc) {
  if (!simpleArity(pc, 3, 3))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  if (x.dtype != DType::f32 || out.dtype != x.dtype || out.shape != x.shape)
    return nullptr;
  auto axis = attrInt(pc, "axis", -1);
  auto eps = attrFloat(pc, "epsilon", 1e-5);
  int64_t rank = static_cast<int64_t>(x.shape.size());
  if (!axis || !eps || *axis < -rank || *axis >= rank)
    return nullptr;
  int64_t ax = *axis < 0 ? *axis + rank : *axis;
  std::vector<int64_t> normShape(x.shape.begin() + ax, x.shape.end());
  for (int i = 1; i < 3; ++i)
    if (pc.inputs[i].dtype != x.dtype || pc.inputs[i].shape != normShape)
      return nullptr;
  int64_t inner = numElements(normShape), outer = numElements(x.shape) / inner;
  memory::desc md({outer, inner}, dt::f32, memory::format_tag::ab);
  memory::desc paramMd({inner}, dt::f32, memory::format_tag::a);
  dnnl::layer_normalization_forward::primitive_desc pd(
      dnnl::layer_normalization_forward::desc(
          dnnl::prop_kind::forward_inference, md, static_cast<float>(*eps),
          dnnl::normalization_flags::use_scale |
              dnnl::normalization_flags::use_shift),
      engine());
  auto k = std::make_unique<OnednnKernel>(
      "onednn:layer_norm", dnnl::layer_normalization_forward(pd));
  k->bind(DNNL_ARG_SRC, false, 0, md);
  k->bind(DNNL_ARG_DST, true, 0, md);
  k->bind(DNNL_ARG_SCALE, false, 1, paramMd);
  k->bind(DNNL_ARG_SHIFT, false, 2, paramMd);
  ownExtra(*k, pd, DNNL_ARG_MEAN);
  ownExtra(*k, pd, DNNL_ARG_VARIANCE);
  return k;
}

std::unique_ptr<PreparedKernel> prepareBatchNorm(const PrepareContext &pc) {
  if (!simpleArity(pc, 5, 5))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  if (x.dtype != DType::f32 || out.dtype != x.dtype || out.shape != x.shape ||
      x.shape.size() < 2)
    return nullptr;
  auto eps = attrFloat(pc, "epsilon", 1e-5);
  int64_t C = x.shape[1];
  for (int i = 1; i < 5; ++i)
    if (pc.inputs[i].dtype != x.dtype ||
        pc.inputs[i].shape != std::vector<int64_t>{C})
      return nullptr;
  if (!eps)
    return nullptr;
  int64_t inner = numElements(x.shape) / (x.shape[0] * C);
  memory::desc md({x.shape[0], C, inner, 1}, dt::f32, memory::format_tag::nchw);
  memory::desc paramMd({C}, dt::f32, memory::format_tag::a);
  dnnl::batch_normalization_forward::primitive_desc pd(
      dnnl::batch_normalization_forward::desc(
          dnnl::prop_kind::forward_inference, md, static_cast<float>(*eps),
          dnnl::normalization_flags::use_global_stats |
              dnnl::normalization_flags::use_scale |
              dnnl::normalization_flags::use_shift),
      engine());
  auto k = std::make_unique<OnednnKernel>(
      "onednn:batch_norm", dnnl::batch_normalization_forward(pd));
  k->bind(DNNL_ARG_SRC, false, 0, md);
  k->bind(DNNL_ARG_DST, true, 0, md);
  k->bind(DNNL_ARG_SCALE, false, 1, paramMd);
  k->bind(DNNL_ARG_SHIFT, false, 2, paramMd);
  k->bind(DNNL_ARG_MEAN, false, 3, paramMd);
  k->bind(DNNL_ARG_VARIANCE, false, 4, paramMd);
  return k;
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

std::unique_ptr<PreparedKernel> prepareReduce(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  if (x.dtype != DType::f32 || out.dtype != x.dtype ||
      x.shape.size() > DNNL_MAX_NDIMS)
    return nullptr;
  auto axes = attrInts(pc, "axes", std::nullopt);
  auto keepdims = attrBool(pc, "keepdims", false);
  if (!axes || !keepdims)
    return nullptr;
  int64_t rank = static_cast<int64_t>(x.shape.size());
  std::vector<bool> reduced(rank, axes->empty());
  for (int64_t a : *axes) {
    if (a < -rank || a >= rank || reduced[a < 0 ? a + rank : a])
      return nullptr; // out of range or named twice
    reduced[a < 0 ? a + rank : a] = true;
  }
  std::vector<int64_t> kept, outShape;
  for (int64_t d = 0; d < rank; ++d) {
    kept.push_back(reduced[d] ? 1 : x.shape[d]);
    if (!reduced[d] || *keepdims)
      outShape.push_back(kept.back());
  }
  if (out.shape != outShape)
    return nullptr;
  using A = dnnl::algorithm;
  const std::string &op = pc.call->op;
  A algo = op == "reduce_sum"    ? A::reduction_sum
           : op == "reduce_mean" ? A::reduction_mean
           : op == "reduce_max"  ? A::reduction_max
                                 : A::reduction_min;
  memory::desc src = dense(x.shape, dt::f32), dst = dense(kept, dt::f32);
  dnnl::reduction::primitive_desc pd(
      dnnl::reduction::desc(algo, src, dst, 0.f, 0.f), engine());
  auto k =
      std::make_unique<OnednnKernel>("onednn:reduction", dnnl::reduction(pd));
  k->bind(DNNL_ARG_SRC, false, 0, src);
  k->bind(DNNL_ARG_DST, true, 0, dst);
  return k;
}

//===----------------------------------------------------------------------===//
// Reorders: transpose, float casts
//===----------------------------------------------------------------------===//

std::unique_ptr<PreparedKernel> prepareTranspose(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  auto type = onednnType(x.dtype);
  auto perm = attrInts(pc, "perm", std::nullopt);
  size_t rank = x.shape.size();
  if (!type || out.dtype != x.dtype || !perm || perm->size() != rank ||
      rank == 0 || rank > DNNL_MAX_NDIMS)
    return nullptr;
  std::vector<bool> used(rank, false);
  memory::dims own = denseStrides(dimsOf(x.shape)), dims(rank), strides(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t p = (*perm)[i];
    if (p < 0 || p >= static_cast<int64_t>(rank) || used[p])
      return nullptr;
    used[p] = true;
    dims[i] = x.shape[p];
    strides[i] = own[p];
  }
  if (out.shape != std::vector<int64_t>(dims.begin(), dims.end()))
    return nullptr;
  memory::desc src(dims, *type, strides), dst = dense(out.shape, *type);
  dnnl::reorder::primitive_desc pd(engine(), src, engine(), dst);
  auto k = std::make_unique<OnednnKernel>("onednn:reorder", dnnl::reorder(pd));
  k->bind(DNNL_ARG_FROM, false, 0, src);
  k->bind(DNNL_ARG_TO, true, 0, dst);
  return k;
}

std::unique_ptr<PreparedKernel> prepareCast(const PrepareContext &pc) {
  if (!simpleArity(pc, 1, 1))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &out = pc.outputs[0];
  auto to = attrString(pc, "dtype", std::nullopt);
  if (!to || parseDType(*to) != out.dtype || out.shape != x.shape)
    return nullptr;
  // Exact conversions into a float type; float -> int rounding and integer
  // narrowing differ from the contract (truncation, wrapping).
  bool toFloat = out.dtype == DType::f32 || out.dtype == DType::bf16 ||
                 out.dtype == DType::f16;
  auto from = onednnType(x.dtype);
  if (!toFloat || !from)
    return nullptr;
  memory::desc src({numElements(x.shape)}, *from, memory::format_tag::a);
  memory::desc dst({numElements(x.shape)}, *onednnType(out.dtype),
                   memory::format_tag::a);
  dnnl::reorder::primitive_desc pd(engine(), src, engine(), dst);
  auto k = std::make_unique<OnednnKernel>("onednn:reorder", dnnl::reorder(pd));
  // A parallel reorder between element sizes cannot run in place.
  k->bind(DNNL_ARG_FROM, false, 0, src, /*inPlaceOk=*/x.dtype == out.dtype);
  k->bind(DNNL_ARG_TO, true, 0, dst);
  return k;
}

} // namespace

void registerOnednnKernels(Backend &b) {
  b.addFactory("matmul", declineOnError(prepareMatmul));
  b.addFactory("conv2d", declineOnError(prepareConv));
  b.addFactory("max_pool2d", declineOnError(preparePool<true>));
  b.addFactory("avg_pool2d", declineOnError(preparePool<false>));
  // log is not here: oneDNN's is a polynomial ~1.5e-6 off near 1 (log(1)
  // must be 0 for ONNX conformance); the own std::log loop is exact.
  for (const char *op : {"relu", "neg", "abs", "exp", "sqrt", "rsqrt",
                         "reciprocal", "tanh", "sigmoid", "silu", "gelu"})
    b.addFactory(op, declineOnError(prepareEltwise));
  for (const char *op : {"add", "sub", "mul", "div", "max", "min"})
    b.addFactory(op, declineOnError(prepareBinary));
  b.addFactory("softmax", declineOnError(prepareSoftmax<false>));
  b.addFactory("log_softmax", declineOnError(prepareSoftmax<true>));
  b.addFactory("layer_norm", declineOnError(prepareLayerNorm));
  b.addFactory("batch_norm", declineOnError(prepareBatchNorm));
  for (const char *op :
       {"reduce_sum", "reduce_mean", "reduce_max", "reduce_min"})
    b.addFactory(op, declineOnError(prepareReduce));
  b.addFactory("transpose", declineOnError(prepareTranspose));
  b.addFactory("cast", declineOnError(prepareCast));
}

} // namespace kiln::cpu
