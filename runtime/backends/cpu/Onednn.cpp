//===- Onednn.cpp - Kernels on oneDNN 2.6 primitives ----------------------===//
//
// Each factory checks the call (dtypes, shapes, attributes) against what the
// primitive handles, builds memory descriptors and the primitive once, and
// prepacks weights: a matmul B or conv weight bound to a param/constant is
// reordered into the layout oneDNN picks (format_tag::any) and kept. At run
// time an OnednnKernel only sets data handles and executes. Anything that
// throws during preparation declines the call.
//
// fused_matmul and fused_conv2d (kiln-fuse-epilogues) run their epilogue as
// post-ops (a leading bias as the primitive's bias argument). For f32
// convolutions a leading batch norm with bound parameters is folded into the
// prepacked weight and bias.
//
// Convolution activations are kept in oneDNN's channel-blocked layout
// (nChw16c with AVX-512) from one convolution to the next: at Executable
// creation planBlockedLayouts (end of this file) marks each f32 [N, C, H, W]
// intermediate that only convolutions, pools and binary ops with
// per-channel operands write and only those and global_avg_pool read. With
// C a multiple of the block it keeps its bytes and arena slot; otherwise
// (at most half a block of padding) its channels are padded with zeros and
// the Executable stores it outside the arena. Such
// kernels build their memory descriptors from the planned layouts
// (PrepareContext) and name themselves "...(blocked)". A convolution with a
// blocked result runs oneDNN's blocked jit kernels (1x1 too) with native
// post-ops: batch norm folded, residual as a binary_add, relu as eltwise.
// With a plain result (a Program output, or read by a kernel that takes
// only plain buffers) f32 epilogue steps after the folded batch norm run in
// one parallel pass after the primitive instead (TailKernel): for plain NCHW
// oneDNN 2.6 picks its gemm convolution, which runs post-ops slowly.
// f32 3x3 stride-1 convolutions with enough output pixels run oneDNN's
// Winograd kernels where it has them ("...(winograd)"; KILN_CONV_WINOGRAD=0
// turns this off).
//
//===----------------------------------------------------------------------===//
#include "backends/cpu/Cpu.h"
#include "backends/reference/Common.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <set>
#include <tuple>

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

/// The descriptor of an [N, C, H, W] activation stored in `layout`; nullopt
/// for a block size oneDNN has no tag for.
std::optional<memory::desc> activationMd(const memory::dims &dims, dt type,
                                         Layout layout) {
  using tag = memory::format_tag;
  switch (layout.channelBlock) {
  case 0:
    return memory::desc(dims, type, tag::nchw);
  case 8:
    return memory::desc(dims, type, tag::nChw8c);
  case 16:
    return memory::desc(dims, type, tag::nChw16c);
  default:
    return std::nullopt;
  }
}

/// Whether oneDNN chose its reference implementation (plain loops) for
/// `pd`.
bool isReferenceImpl(const dnnl::primitive_desc_base &pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
}

/// Whether `shape`, broadcast against the [N, C, H, W] `full`, is a
/// per-channel operand: [C, 1, 1], [1, C, 1, 1] or [N, C, 1, 1] (or a
/// scalar). Such an operand has the same bytes in either layout.
bool perChannelOf(const std::vector<int64_t> &shape,
                  const std::vector<int64_t> &full) {
  if (full.size() != 4 || shape.size() > 4)
    return false;
  std::vector<int64_t> p(4 - shape.size(), 1);
  p.insert(p.end(), shape.begin(), shape.end());
  return (p[0] == 1 || p[0] == full[0]) && (p[1] == 1 || p[1] == full[1]) &&
         p[2] == 1 && p[3] == 1;
}

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
  /// Operand `index` is copied into the result before the primitive runs
  /// (the residual of a sum post-op, which accumulates into dst).
  void copyIntoResult(size_t index, size_t bytes) {
    resultFrom_ = index;
    resultFromBytes_ = bytes;
  }
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
  /// Argument `arg` writes scratch memory of layout `md`, reordered into
  /// result `index` (layout `user`) after the primitive runs (a result in a
  /// layout the primitive picked).
  void bindResultReordered(int arg, size_t index, const memory::desc &user,
                           const memory::desc &md) {
    memory src(md, engine());
    memory dst(user, engine(), DNNL_MEMORY_NONE);
    postReorders_.push_back({dnnl::reorder(src, dst), src, dst});
    bindings_.push_back({dst, true, index, true});
    args_[arg] = src;
  }

  Status run(const KernelContext &ctx) override {
    try {
      applyThreads();
      if (resultFrom_) {
        const BufferView &in = ctx.inputs[*resultFrom_];
        if (in.data != ctx.outputs[0].data)
          std::memcpy(ctx.outputs[0].data, in.data, resultFromBytes_);
      }
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
      for (Reorder &r : postReorders_)
        r.prim.execute(stream(), r.src, r.dst);
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
  std::vector<Reorder> reorders_, postReorders_;
  std::optional<size_t> resultFrom_;
  size_t resultFromBytes_ = 0;
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
// Epilogues of fused_matmul and fused_conv2d as post-ops
//===----------------------------------------------------------------------===//

/// A fused call's `epilogue` as oneDNN post-ops: a leading add_bias becomes
/// the primitive's own bias argument, other biases and residuals binary_add
/// post-ops, batch_norm (with bound parameters) a binary_mul and a
/// binary_add of per-channel vectors computed once, scale eltwise_linear,
/// activations eltwise post-ops.
/// One epilogue step run by the kernel itself after the primitive (f32
/// convolutions: oneDNN 2.6 runs post-ops of its gemm convolution, the one it
/// picks for plain NCHW, slowly).
struct TailStep {
  enum Kind {
    addOperand,
    addValues,
    mulValues,
    scale,
    shift,
    maxValue,
    minValue,
    activation
  } kind;
  size_t operand = 0;        // addOperand
  bool perChannel = false;   // addOperand: a [C] bias, else a residual
  std::vector<float> values; // addValues, mulValues: per channel
  float factor = 1;          // scale, shift; maxValue, minValue: the bound
  std::string name;          // activation
};

struct Epilogue {
  dnnl::primitive_attr attr;
  /// Whether `attr`'s post-ops compute the steps. oneDNN 2.6's jit kernels
  /// keep one eltwise injector per algorithm, so two eltwise post-ops of
  /// one algorithm with different parameters both get the first one's
  /// (measured: min 0.3, scale 2, max -0.25 computed min 0.3, scale 2,
  /// min 0.3; scale 0.5, shift 3 computed scale 0.5, scale 0.5). Such a
  /// chain can only run as `tail`.
  bool postOpsOk = true;
  /// The same steps as the post-ops in `attr`, for a kernel that runs them
  /// itself (see TailStep).
  std::vector<TailStep> tail;
  /// Operand index of the primitive's own bias, if any, and its descriptor.
  std::optional<size_t> bias;
  memory::desc biasMd;
  /// (argument, operand index, descriptor) of each binary post-op operand.
  std::vector<std::tuple<int, size_t, memory::desc>> args;
  /// (argument, descriptor, values) of binary post-op operands computed at
  /// preparation (a batch_norm's per-channel multiplier and shift, in f32).
  std::vector<std::tuple<int, memory::desc, std::vector<float>>> owned;
  /// A leading batch_norm folded into the conv (f32, weights bound): the
  /// weight is scaled per output channel and the bias is computed.
  std::vector<float> weightScale, foldedBias;
  /// Operand accumulated through a sum post-op (conv residual).
  std::optional<size_t> sumOperand;
  /// Bytes of the result in its planned layout (channel padding included):
  /// what a sum operand copies into it and an activation after the
  /// primitive goes over.
  int64_t resultBytes = 0;
  /// Operand indices of every add_residual step (dst-shaped operands).
  std::vector<size_t> residuals;
  /// The last step is an f32 activation the backend computes itself
  /// (ownActivation: silu, sigmoid, tanh, gelu_tanh), left out of `attr`:
  /// the kernel runs it after the primitive (activationF32; see
  /// ActivationAfterKernel). oneDNN 2.6's swish post-op measured 2.5x
  /// slower than that pass: 1x1 conv 16 -> 96 at 112x112 (EfficientNet-B0)
  /// 0.27 ms, 0.60-0.72 with the post-op, 0.33-0.40 followed by the own
  /// silu, 2 threads, AVX-512.
  std::optional<Activation> activationAfter;

  void bind(OnednnKernel &k) const {
    if (bias)
      k.bind(DNNL_ARG_BIAS, false, *bias, biasMd);
    for (const auto &[arg, operand, md] : args)
      k.bind(arg, false, operand, md);
    for (const auto &[arg, md, values] : owned) {
      memory m(md, engine());
      std::memcpy(m.get_data_handle(), values.data(),
                  values.size() * sizeof(float));
      k.own(arg, m);
    }
    if (!foldedBias.empty()) {
      memory m(biasMd, engine());
      std::memcpy(m.get_data_handle(), foldedBias.data(),
                  foldedBias.size() * sizeof(float));
      k.own(DNNL_ARG_BIAS, m);
    }
    if (sumOperand)
      k.copyIntoResult(*sumOperand, static_cast<size_t>(resultBytes));
  }
};

/// Builds the post-ops of the call's epilogue for a primitive writing
/// `dstMd`, whose dim `channelDim` is the one biases broadcast along; the
/// primitive's own bias is `[C]` when `rank1Bias` (conv), else dst-ranked
/// (matmul). A conv's first residual is a sum post-op when `residualAsSum`
/// (the operand is copied into dst first), else a binary_add that reads it.
/// nullopt when a step, operand or scale does not fit (the reference kernel
/// then runs the call and reports what is wrong).
std::optional<Epilogue> buildEpilogue(const PrepareContext &pc,
                                      const memory::desc &dstMd,
                                      size_t channelDim, bool rank1Bias,
                                      bool residualAsSum = false) {
  // conv (rank1Bias): a leading batch_norm folds into an f32 weight that is
  // bound; on plain NCHW residuals use the sum post-op, as oneDNN 2.6's gemm
  // convolution runs binary post-ops slowly.
  bool isConv = rank1Bias;
  bool canFold = isConv && pc.weights[1] && pc.inputs[1].dtype == DType::f32;
  const nlohmann::json &attrs = pc.call->attrs;
  auto steps = attrs.find("epilogue");
  if (steps == attrs.end() || !steps->is_array())
    return std::nullopt;
  std::vector<double> scales, epsilons;
  for (auto [name, values] :
       {std::pair{"scales", &scales}, std::pair{"epsilons", &epsilons}}) {
    auto it = attrs.find(name);
    if (it == attrs.end() || it->is_null())
      continue;
    if (!it->is_array())
      return std::nullopt;
    for (const auto &v : *it) {
      if (!v.is_number())
        return std::nullopt;
      values->push_back(v.get<double>());
    }
  }
  memory::dims dims = dstMd.dims();
  dt type = dstMd.data_type();
  const BufferDesc &out = pc.outputs[0];
  int64_t channels = dims[channelDim];
  memory::dims biasDims(dims.size(), 1);
  biasDims[channelDim] = channels;
  memory::desc binaryBias(biasDims, type, denseStrides(biasDims));

  using A = dnnl::algorithm;
  Epilogue e;
  e.resultBytes = pc.outputLayout(0).byteSize(out.dtype, out.shape);
  // A channel-blocked result with padding channels, which must stay 0: an
  // activation run after the primitive goes over them too, and sigmoid
  // would make them 0.5.
  bool padded = e.resultBytes != numElements(out.shape) *
                                     static_cast<int64_t>(dtypeSize(out.dtype));
  dnnl::post_ops ops;
  size_t nextExtra = 2, nextScale = 0, nextEpsilon = 0;
  // Each eltwise algorithm's parameters (see Epilogue::postOpsOk): a max
  // next to a min (ReLU6, HardSigmoid) is one clip, and consecutive scale
  // and shift steps are one linear post-op.
  std::map<A, std::pair<float, float>> eltwiseParams;
  auto eltwise = [&](A alg, float alpha, float beta) {
    auto [it, added] = eltwiseParams.try_emplace(alg, alpha, beta);
    if (!added && it->second != std::pair{alpha, beta})
      e.postOpsOk = false;
    ops.append_eltwise(1.f, alg, alpha, beta);
  };
  for (size_t index = 0; index < steps->size(); ++index) {
    const auto &v = (*steps)[index];
    if (!v.is_string())
      return std::nullopt;
    std::string step = v.get<std::string>();
    if (step == "batch_norm") {
      // y = x * a + b with a = scale / sqrt(var + eps), b = bias - mean * a,
      // from the four parameters, which must be bound weights.
      if (nextExtra + 4 > pc.inputs.size() || nextEpsilon >= epsilons.size())
        return std::nullopt;
      std::vector<std::vector<double>> p;
      for (int i = 0; i < 4; ++i) {
        const Tensor *w = pc.weights[nextExtra];
        const BufferDesc &d = pc.inputs[nextExtra++];
        if (!w || d.dtype != out.dtype ||
            d.shape != std::vector<int64_t>{channels})
          return std::nullopt;
        p.push_back(w->toDoubles());
      }
      double eps = epsilons[nextEpsilon++];
      std::vector<float> mul(channels), add(channels);
      for (int64_t c = 0; c < channels; ++c) {
        double a = p[0][c] / std::sqrt(p[3][c] + eps);
        mul[c] = static_cast<float>(a);
        add[c] = static_cast<float>(p[1][c] - p[2][c] * a);
      }
      if (canFold && ops.len() == 0 && !e.bias && e.foldedBias.empty()) {
        e.weightScale = std::move(mul);
        e.foldedBias = std::move(add);
        e.biasMd = memory::desc({channels}, dt::f32, memory::format_tag::x);
        continue;
      }
      e.tail.push_back({TailStep::mulValues, 0, true, mul});
      e.tail.push_back({TailStep::addValues, 0, true, add});
      memory::desc perChannel(biasDims, dt::f32, denseStrides(biasDims));
      ops.append_binary(A::binary_mul, perChannel);
      e.owned.emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.len() - 1) |
                               DNNL_ARG_SRC_1,
                           perChannel, std::move(mul));
      ops.append_binary(A::binary_add, perChannel);
      e.owned.emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.len() - 1) |
                               DNNL_ARG_SRC_1,
                           perChannel, std::move(add));
      continue;
    }
    if (step == "add_bias" || step == "add_residual") {
      if (nextExtra >= pc.inputs.size())
        return std::nullopt;
      size_t operand = nextExtra++;
      const BufferDesc &extra = pc.inputs[operand];
      if (extra.dtype != out.dtype)
        return std::nullopt;
      if (step == "add_residual") {
        if (extra.shape != out.shape)
          return std::nullopt;
        e.tail.push_back({TailStep::addOperand, operand, false});
        e.residuals.push_back(operand);
        if (isConv && residualAsSum && !e.sumOperand) {
          ops.append_sum(1.f);
          e.sumOperand = operand;
          continue;
        }
        ops.append_binary(A::binary_add, dstMd);
        e.args.emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.len() - 1) |
                                DNNL_ARG_SRC_1,
                            operand, dstMd);
        continue;
      }
      if (numElements(extra.shape) != channels)
        return std::nullopt;
      if (ops.len() == 0 && !e.bias && e.foldedBias.empty()) {
        e.bias = operand;
        e.biasMd = rank1Bias
                       ? memory::desc({channels}, type, memory::format_tag::x)
                       : binaryBias;
        continue;
      }
      e.tail.push_back({TailStep::addOperand, operand, true});
      ops.append_binary(A::binary_add, binaryBias);
      e.args.emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.len() - 1) |
                              DNNL_ARG_SRC_1,
                          operand, binaryBias);
      continue;
    }
    if (step == "scale" || step == "shift") {
      // y = alpha * x + beta over this and the following scale/shift steps
      // (the tail runs them one by one, as the unfused ops).
      float alpha = 1.f, beta = 0.f;
      for (; index < steps->size(); ++index) {
        const auto &next = (*steps)[index];
        if (next != "scale" && next != "shift")
          break;
        if (nextScale >= scales.size())
          return std::nullopt;
        float value = static_cast<float>(scales[nextScale++]);
        if (next == "scale") {
          alpha *= value;
          beta *= value;
          e.tail.push_back({TailStep::scale, 0, false, {}, value});
        } else {
          beta += value;
          e.tail.push_back({TailStep::shift, 0, false, {}, value});
        }
      }
      --index;
      eltwise(A::eltwise_linear, alpha, beta);
      continue;
    }
    if (step == "max" || step == "min") {
      // oneDNN's clip post-op (blocked results and matmuls; like its relu,
      // it turns a NaN into a bound); the tail propagates NaN.
      if (nextScale >= scales.size())
        return std::nullopt;
      const float big = std::numeric_limits<float>::max();
      float lo = -big, hi = big;
      (step == "max" ? lo : hi) = static_cast<float>(scales[nextScale++]);
      e.tail.push_back({step == "max" ? TailStep::maxValue : TailStep::minValue,
                        0,
                        false,
                        {},
                        step == "max" ? lo : hi});
      // max then min (ReLU6, Clip) or min then max (HardSigmoid): one clip
      // when the lower bound is not above the upper one.
      const char *other = step == "max" ? "min" : "max";
      if (index + 1 < steps->size() && (*steps)[index + 1] == other &&
          nextScale < scales.size()) {
        float bound = static_cast<float>(scales[nextScale]);
        float &set = step == "max" ? hi : lo;
        if (step == "max" ? bound >= lo : bound <= hi) {
          set = bound;
          ++nextScale;
          e.tail.push_back(
              {step == "max" ? TailStep::minValue : TailStep::maxValue,
               0,
               false,
               {},
               bound});
          ++index;
        }
      }
      eltwise(A::eltwise_clip, lo, hi);
      continue;
    }
    if (step == "relu" || step == "gelu" || step == "gelu_tanh" ||
        step == "silu" || step == "tanh" || step == "sigmoid" ||
        step == "hardswish")
      e.tail.push_back({TailStep::activation, 0, false, {}, 1, step});
    if (index + 1 == steps->size() && type == dt::f32 && ownActivation(step) &&
        (step != "sigmoid" || !padded)) {
      e.activationAfter = ownActivation(step);
    } else if (step == "relu") {
      eltwise(A::eltwise_relu, 0.f, 0.f);
    } else if (step == "gelu") {
      eltwise(A::eltwise_gelu_erf, 0.f, 0.f);
    } else if (step == "gelu_tanh") {
      eltwise(A::eltwise_gelu_tanh, 0.f, 0.f);
    } else if (step == "silu") {
      eltwise(A::eltwise_swish, 1.f, 0.f);
    } else if (step == "tanh") {
      eltwise(A::eltwise_tanh, 0.f, 0.f);
    } else if (step == "sigmoid") {
      eltwise(A::eltwise_logistic, 0.f, 0.f);
    } else if (step == "hardswish") {
      // x * relu6(x + 3) / 6 (oneDNN 2.6 takes no alpha/beta here).
      eltwise(A::eltwise_hardswish, 0.f, 0.f);
    } else {
      return std::nullopt;
    }
  }
  if (nextExtra != pc.inputs.size() || nextScale != scales.size() ||
      nextEpsilon != epsilons.size())
    return std::nullopt;
  e.attr.set_post_ops(ops);
  return e;
}

/// A oneDNN primitive followed by epilogue steps run here, in one pass over
/// each [N, C] plane of an f32 NCHW result, in parallel.
class TailKernel : public OnednnKernel {
public:
  TailKernel(std::string impl, dnnl::primitive primitive,
             std::vector<TailStep> tail)
      : OnednnKernel(std::move(impl), std::move(primitive)),
        tail_(std::move(tail)) {}

  Status run(const KernelContext &ctx) override {
    if (Status s = OnednnKernel::run(ctx); !s)
      return s;
    const BufferView &out = ctx.outputs[0];
    int64_t channels = out.shape[1];
    int64_t planes = out.shape[0] * channels;
    int64_t inner = out.numElements() / std::max<int64_t>(planes, 1);
    float *y = out.as<float>();
#pragma omp parallel for num_threads(numThreads()) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      int64_t c = p % channels;
      float *row = y + p * inner;
      for (const TailStep &t : tail_)
        apply(t, ctx, row, p * inner, c, inner);
    }
    return Status::ok();
  }

private:
  static void apply(const TailStep &t, const KernelContext &ctx, float *row,
                    int64_t offset, int64_t c, int64_t inner) {
    switch (t.kind) {
    case TailStep::addOperand: {
      const float *x = ctx.inputs[t.operand].as<float>();
      if (t.perChannel)
        for (int64_t i = 0; i < inner; ++i)
          row[i] += x[c];
      else
        for (int64_t i = 0; i < inner; ++i)
          row[i] += x[offset + i];
      return;
    }
    case TailStep::addValues:
      for (int64_t i = 0; i < inner; ++i)
        row[i] += t.values[c];
      return;
    case TailStep::mulValues:
      for (int64_t i = 0; i < inner; ++i)
        row[i] *= t.values[c];
      return;
    case TailStep::scale:
      for (int64_t i = 0; i < inner; ++i)
        row[i] *= t.factor;
      return;
    case TailStep::shift:
      for (int64_t i = 0; i < inner; ++i)
        row[i] += t.factor;
      return;
    case TailStep::maxValue:
      for (int64_t i = 0; i < inner; ++i)
        row[i] = reference::maxKeepingNan(row[i], t.factor);
      return;
    case TailStep::minValue:
      for (int64_t i = 0; i < inner; ++i)
        row[i] = reference::minKeepingNan(row[i], t.factor);
      return;
    case TailStep::activation:
      break;
    }
    if (std::optional<Activation> f = activationNamed(t.name)) {
      activationF32Serial(*f, row, row, inner);
    } else if (t.name == "relu") {
      for (int64_t i = 0; i < inner; ++i)
        row[i] = row[i] > 0 || row[i] != row[i] ? row[i] : 0.f;
    } else if (t.name == "hardswish") {
      for (int64_t i = 0; i < inner; ++i)
        row[i] = reference::hardSwish(row[i]);
    } else {
      for (int64_t i = 0; i < inner; ++i)
        row[i] = 0.5f * row[i] * (1.f + std::erf(row[i] * 0.70710678f));
    }
  }

  std::vector<TailStep> tail_;
};

/// A oneDNN primitive whose epilogue ends in an f32 activation that it
/// leaves out (Epilogue::activationAfter), followed by activationF32 over
/// the result's bytes (`elements` floats: a channel-blocked result's zero
/// padding stays 0, as silu, tanh and gelu_tanh map 0 to 0; buildEpilogue
/// keeps sigmoid, which does not, as a post-op on such results).
class ActivationAfterKernel : public OnednnKernel {
public:
  ActivationAfterKernel(std::string impl, dnnl::primitive primitive,
                        Activation f, int64_t elements)
      : OnednnKernel(std::move(impl), std::move(primitive)), f_(f),
        elements_(elements) {}

  Status run(const KernelContext &ctx) override {
    if (Status s = OnednnKernel::run(ctx); !s)
      return s;
    float *y = ctx.outputs[0].as<float>();
    activationF32(f_, y, y, elements_);
    return Status::ok();
  }

private:
  Activation f_;
  int64_t elements_;
};

/// The kernel for a prepared primitive with this epilogue: a TailKernel
/// when the steps run as own code, an ActivationAfterKernel when only a
/// last activation does, else the primitive alone.
std::unique_ptr<OnednnKernel> epilogueKernel(std::string impl,
                                             dnnl::primitive primitive,
                                             const Epilogue *epilogue,
                                             bool ownTail) {
  if (ownTail)
    return std::make_unique<TailKernel>(std::move(impl), std::move(primitive),
                                        epilogue->tail);
  if (epilogue && epilogue->activationAfter)
    return std::make_unique<ActivationAfterKernel>(
        std::move(impl), std::move(primitive), *epilogue->activationAfter,
        epilogue->resultBytes / static_cast<int64_t>(sizeof(float)));
  return std::make_unique<OnednnKernel>(std::move(impl), std::move(primitive));
}

//===----------------------------------------------------------------------===//
// matmul
//===----------------------------------------------------------------------===//

std::unique_ptr<PreparedKernel> prepareMatmul(const PrepareContext &pc) {
  bool fused = pc.call->op == "fused_matmul";
  if (!simpleArity(pc, 2, fused ? std::max<size_t>(pc.inputs.size(), 2) : 2))
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
  std::optional<Epilogue> epilogue;
  if (fused &&
      (!(epilogue = buildEpilogue(pc, dstMd, dstMd.dims().size() - 1, false)) ||
       !epilogue->postOpsOk))
    return nullptr;
  dnnl::matmul::desc desc =
      epilogue && epilogue->bias
          ? dnnl::matmul::desc(srcMd, weiMd, epilogue->biasMd, dstMd)
          : dnnl::matmul::desc(srcMd, weiMd, dstMd);
  dnnl::matmul::primitive_desc pd =
      epilogue ? dnnl::matmul::primitive_desc(desc, epilogue->attr, engine())
               : dnnl::matmul::primitive_desc(desc, engine());
  auto k =
      epilogueKernel(fused ? "onednn:fused_matmul" : "onednn:matmul",
                     dnnl::matmul(pd), epilogue ? &*epilogue : nullptr, false);
  k->bind(DNNL_ARG_SRC, false, 0, srcMd);
  k->bind(DNNL_ARG_DST, true, 0, dstMd);
  if (epilogue)
    epilogue->bind(*k);
  if (weight && pd.weights_desc() != weiUser)
    k->own(DNNL_ARG_WEIGHTS, prepack(*weight, weiUser, pd.weights_desc()));
  else
    k->bind(DNNL_ARG_WEIGHTS, false, 1, weiUser);
  return k;
}

//===----------------------------------------------------------------------===//
// conv2d
//===----------------------------------------------------------------------===//

/// Whether oneDNN 2.6 has an optimized kernel for a convolution with these
/// groups on channel-blocked activations: whole blocks of channels per
/// group, in and out, or one channel per group (depthwise). On other groups
/// (ResNeXt's 4 channels per group, RegNet's 24-168) the blocked layout
/// gets its reference kernel (measured 308 ms for ResNeXt-50's first
/// grouped 3x3 layer), so prepareConv reorders blocked activations into
/// the layout oneDNN picks for those.
bool groupsFitBlocks(int64_t groups, int64_t outPerGroup, int64_t inPerGroup,
                     int64_t block) {
  bool depthwise = inPerGroup == 1 && outPerGroup == 1;
  return groups <= 1 || depthwise ||
         (inPerGroup % block == 0 && outPerGroup % block == 0);
}

std::unique_ptr<PreparedKernel> prepareConv(const PrepareContext &pc) {
  bool fused = pc.call->op == "fused_conv2d";
  if (!simpleArity(pc, 2, fused ? std::max<size_t>(pc.inputs.size(), 2) : 3))
    return nullptr;
  const BufferDesc &x = pc.inputs[0], &w = pc.inputs[1], &out = pc.outputs[0];
  bool hasBias = !fused && pc.inputs.size() == 3;
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
  // Activations in the planned layouts (see planBlockedLayouts); weights,
  // biases and batch norm parameters are always plain.
  Layout srcLayout = pc.inputLayout(0), dstLayout = pc.outputLayout(0);
  bool srcBlocked = !srcLayout.isPlain(), dstBlocked = !dstLayout.isPlain();
  auto srcUser = activationMd({N, C, H, W}, type, srcLayout);
  auto dstUser = activationMd({N, O, OH, OW}, type, dstLayout);
  if (!srcUser || !dstUser || !pc.inputLayout(1).isPlain() ||
      ((srcBlocked || dstBlocked) && x.dtype != DType::f32))
    return nullptr;
  memory::desc srcMd = *srcUser, dstMd = *dstUser;
  memory::desc weiUser =
      G == 1 ? memory::desc({O, C, KH, KW}, type, memory::format_tag::oihw)
             : memory::desc({G, O / G, CG, KH, KW}, type,
                            memory::format_tag::goihw);
  memory::desc weiMd(weiUser.dims(), type, memory::format_tag::any);
  memory::desc biasMd =
      hasBias ? memory::desc({O}, type, memory::format_tag::x) : memory::desc();
  // A blocked result takes its residuals as binary_add post-ops, read by
  // the kernel: a sum post-op would first copy each residual into dst
  // (measured: 5% of ResNet-50 at batch 8).
  std::optional<Epilogue> epilogue;
  if (fused && !(epilogue = buildEpilogue(pc, dstMd, 1, true, !dstBlocked)))
    return nullptr;
  // Residuals are read in the result's layout, every other extra operand
  // (bias, batch norm parameters) plain.
  for (size_t i = 2; i < pc.inputs.size(); ++i) {
    bool residual = epilogue && std::find(epilogue->residuals.begin(),
                                          epilogue->residuals.end(),
                                          i) != epilogue->residuals.end();
    if (residual ? pc.inputLayout(i) != dstLayout
                 : !pc.inputLayout(i).isPlain())
      return nullptr;
  }
  // f32 with a plain result: the steps after a folded batch norm or bias
  // run in a TailKernel, the primitive gets no post-ops. A blocked result
  // is written by the blocked kernels, which run post-ops fast.
  bool ownTail = epilogue && x.dtype == DType::f32 && !dstBlocked;
  if (epilogue && !ownTail && !epilogue->postOpsOk)
    return nullptr;
  if (ownTail) {
    epilogue->attr = dnnl::primitive_attr();
    epilogue->args.clear();
    epilogue->owned.clear();
    epilogue->sumOperand.reset();
  }
  if (epilogue && (epilogue->bias || !epilogue->foldedBias.empty()))
    biasMd = epilogue->biasMd;
  auto makePd = [&](const memory::desc &src, const memory::desc &dst,
                    dnnl::algorithm algorithm =
                        dnnl::algorithm::convolution_direct) {
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, algorithm, src, weiMd, biasMd, dst,
        {(*strides)[0], (*strides)[1]}, {(*dil)[0] - 1, (*dil)[1] - 1},
        {(*pads)[0], (*pads)[1]}, {(*pads)[2], (*pads)[3]});
    return epilogue ? dnnl::convolution_forward::primitive_desc(
                          desc, epilogue->attr, engine())
                    : dnnl::convolution_forward::primitive_desc(desc, engine());
  };
  // With plain NCHW src/dst oneDNN 2.6 picks its slow gemm convolution.
  // A blocked result (planned) is written in place from a blocked source
  // (or from a plain one reordered into the layout oneDNN picks). Two cases
  // let oneDNN pick both layouts (format_tag::any) and reorder the input in
  // and the result out, when the primitive has no post-ops that read or
  // accumulate into dst in its layout:
  // - a plain result (f32 tails run on the NCHW result), but not for plain
  //   1x1 kernels: on NCHW those are one GEMM, and measured on ResNet-50 the
  //   reorders cost more than the blocked kernel saves;
  // - a blocked result from a plain source with fewer channels than a block
  //   (a stem, reading a 3-channel image), when oneDNN has no jit kernel
  //   reading the NCHW image straight into the blocked result (tried
  //   first, below): with the source left `any` it picks NHWC and its
  //   reference kernel.
  memory::desc anySrc({N, C, H, W}, type, memory::format_tag::any);
  memory::desc anyDst({N, O, OH, OW}, type, memory::format_tag::any);
  // A grouped convolution without whole blocks per group (ResNeXt's 4 and
  // 8 channels per group) has no oneDNN kernel on the planned blocked
  // layout: it always reorders into the one oneDNN picks, which cannot
  // take residual post-ops in dst's layout (declined: its buffers become
  // plain).
  bool noDstPostOps = !epilogue || ownTail || epilogue->residuals.empty();
  bool ownGroupLayout =
      (srcBlocked || dstBlocked) &&
      !groupsFitBlocks(G, O / G, CG,
                       (srcBlocked ? srcLayout : dstLayout).channelBlock);
  if (ownGroupLayout && !noDstPostOps)
    return nullptr;
  bool pickLayouts =
      dstBlocked
          ? (ownGroupLayout || (!srcBlocked && C < dstLayout.channelBlock)) &&
                noDstPostOps
          : (!epilogue || ownTail) && (KH * KW > 1 || srcBlocked);
  const memory::desc &pdSrc = pickLayouts  ? anySrc
                              : dstBlocked ? (srcBlocked ? srcMd : anySrc)
                                           : srcMd;
  const memory::desc &pdDst = pickLayouts ? anyDst : dstMd;
  // Winograd: oneDNN 2.6 has F(4x4, 3x3) and F(2x2, 3x3) kernels for f32
  // 3x3 stride-1 convolutions on channel-blocked activations (AVX-512),
  // which do 2.25-4x fewer multiplications than the direct kernel at a
  // small cost in rounding (tested against the reference kernel by the
  // differential suite and LayoutPlanTest). Measured on ResNet-50's 3x3
  // layers, 2 threads, AMD EPYC (Zen 4), direct -> Winograd: batch 1,
  // 64x56x56 1.05 -> 0.65 ms, 128x28x28 1.0 -> 0.45, 256x14x14 1.0 -> 0.55,
  // but 512x7x7 1.07 -> 0.9-1.4 (too few output tiles); batch 8 2-2.5x
  // faster at every size; a 3-channel image (a stem) 3x slower. The
  // output pixels are counted over the batch, but the tiles are per image:
  // on images under 3 pixels high or wide most of each tile is padding
  // (measured: 256 x [64, 1x1] 0.04 -> 0.67 ms, 64 x [128, 2x2] 0.33 ->
  // 0.88, [16, 1x300] 0.023 -> 0.058). So Winograd runs when there are at
  // least kWinogradMinOutputs output pixels, each image's output is at
  // least kWinogradMinSide pixels high and wide, there are
  // kWinogradMinChannels input and output channels, the weights are
  // bound (prepacked once into Winograd's own layout) and oneDNN has a
  // kernel for the call, post-ops included (otherwise the direct kernel
  // runs). KILN_CONV_WINOGRAD=0 turns it off.
  constexpr int64_t kWinogradMinOutputs = 196, kWinogradMinChannels = 16,
                    kWinogradMinSide = 3;
  // The layouts and algorithm to ask oneDNN for, in order of preference;
  // the first it runs on an optimized kernel is taken (Winograd: only when
  // it really picks a Winograd kernel), else the layouts above as oneDNN
  // gives them (its reference kernel, named in the profile).
  struct Candidate {
    memory::desc src, dst;
    dnnl::algorithm algorithm = dnnl::algorithm::convolution_direct;
  };
  std::vector<Candidate> candidates;
  if (convWinogradEnabled() && x.dtype == DType::f32 && G == 1 && KH == 3 &&
      KW == 3 && (*strides)[0] == 1 && (*strides)[1] == 1 && (*dil)[0] == 1 &&
      (*dil)[1] == 1 && N * OH * OW >= kWinogradMinOutputs &&
      OH >= kWinogradMinSide && OW >= kWinogradMinSide &&
      C >= kWinogradMinChannels && O >= kWinogradMinChannels && pc.weights[1] &&
      (srcBlocked || dstBlocked || pickLayouts))
    candidates.push_back({pdSrc, pdDst, dnnl::algorithm::convolution_winograd});
  // A stem (a plain image with fewer channels than a block, written
  // blocked): oneDNN's jit kernel reads NCHW and writes the blocked result
  // directly, no reorder in or out. Measured with 2 threads (AMD EPYC,
  // Zen 4), 3-channel 224x224 images, stride 2, with relu: 3x3 to 24/32/64
  // channels 0.10-0.29 ms against 0.19-0.46 ms with the layouts oneDNN
  // picks plus the two reorders; ResNet's 7x7 to 64, 1.12 against 1.35 ms.
  if (pickLayouts && dstBlocked && !srcBlocked && C < dstLayout.channelBlock)
    candidates.push_back({srcMd, dstMd});
  candidates.push_back({pdSrc, pdDst});
  // A plain source left to oneDNN (`any`) for a blocked result can get its
  // reference kernel: ShuffleNet's depthwise 3x3 stride-2 convolution after
  // a channel shuffle, 116 channels, ran on ref:any with an NHWC source at
  // 0.2 GFLOP/s (2.2 ms, a fifth of the model). The source in the result's
  // blocked layout (one reorder of the input) gets the jit kernel.
  if (dstBlocked && !srcBlocked && !pickLayouts)
    if (auto blockedSrc = activationMd({N, C, H, W}, type, dstLayout))
      candidates.push_back({*blockedSrc, pdDst});
  std::optional<dnnl::convolution_forward::primitive_desc> chosen;
  for (const Candidate &c : candidates) {
    try {
      auto candidate = makePd(c.src, c.dst, c.algorithm);
      bool wanted = c.algorithm == dnnl::algorithm::convolution_winograd
                        ? std::string(candidate.impl_info_str()).find("wino") !=
                              std::string::npos
                        : !isReferenceImpl(candidate);
      if (wanted) {
        chosen = candidate;
        break;
      }
    } catch (const dnnl::error &) {
      // No kernel for these layouts, algorithm or epilogue.
    }
  }
  const bool winograd =
      chosen &&
      std::string(chosen->impl_info_str()).find("wino") != std::string::npos;
  if (!chosen) {
    chosen = makePd(pdSrc, pdDst);
    if (dstBlocked && !pickLayouts && epilogue &&
        !epilogue->residuals.empty() && isReferenceImpl(*chosen)) {
      // No optimized kernel reads a binary residual for this shape: copy
      // the first residual into dst (sum post-op) instead.
      epilogue = buildEpilogue(pc, dstMd, 1, true, true);
      chosen = makePd(pdSrc, pdDst);
    }
  }
  const dnnl::convolution_forward::primitive_desc &pd = *chosen;
  std::string impl = fused ? "onednn:fused_conv2d" : "onednn:conv2d";
  if (srcBlocked || dstBlocked)
    impl += "(blocked)";
  if (winograd)
    impl += "(winograd)";
  // oneDNN's own reference kernel (slow loops) is named in the profile.
  if (isReferenceImpl(pd))
    impl += "(onednn-ref)";
  std::unique_ptr<OnednnKernel> k =
      epilogueKernel(impl, dnnl::convolution_forward(pd),
                     epilogue ? &*epilogue : nullptr, ownTail);
  k->honorLayouts();
  if (pd.src_desc() == srcMd)
    k->bind(DNNL_ARG_SRC, false, 0, srcMd);
  else
    k->bindReordered(DNNL_ARG_SRC, 0, srcMd, pd.src_desc());
  if (pd.dst_desc() == dstMd)
    k->bind(DNNL_ARG_DST, true, 0, dstMd);
  else
    k->bindResultReordered(DNNL_ARG_DST, 0, dstMd, pd.dst_desc());
  if (hasBias)
    k->bind(DNNL_ARG_BIAS, false, 2, biasMd);
  if (epilogue)
    epilogue->bind(*k);
  if (epilogue && !epilogue->weightScale.empty()) {
    // The batch norm's per-channel multiplier, folded into the weight.
    Tensor scaled = Tensor::zeros(DType::f32, w.shape);
    const float *from = pc.weights[1]->dataAs<float>();
    float *to = scaled.dataAs<float>();
    int64_t perChannel = CG * KH * KW;
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < perChannel; ++i)
        to[o * perChannel + i] =
            from[o * perChannel + i] * epilogue->weightScale[o];
    k->own(DNNL_ARG_WEIGHTS, prepack(scaled, weiUser, pd.weights_desc()));
  } else if (pd.weights_desc() == weiUser)
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
  Layout srcLayout = pc.inputLayout(0), dstLayout = pc.outputLayout(0);
  bool blocked = !srcLayout.isPlain() || !dstLayout.isPlain();
  auto srcUser = activationMd(dimsOf(x.shape), type, srcLayout);
  auto dstUser = activationMd(dimsOf(out.shape), type, dstLayout);
  if (!srcUser || !dstUser || (blocked && x.dtype != DType::f32))
    return nullptr;
  memory::desc srcMd = *srcUser, dstMd = *dstUser;
  dnnl::algorithm algo = IsMax ? dnnl::algorithm::pooling_max
                         : *countPad
                             ? dnnl::algorithm::pooling_avg_include_padding
                             : dnnl::algorithm::pooling_avg_exclude_padding;
  // A plain source with a blocked result (a pool after a concat, whose
  // result feeds convolutions: GoogLeNet, Inception, SqueezeNet, DenseNet)
  // or the reverse has no optimized oneDNN 2.6 kernel: its reference one
  // took 47 ms for a 480x28x28 3x3 max pool. The pool then runs blocked on
  // both sides, the plain side reordered (~0.3 ms there).
  memory::desc pdSrc = srcMd, pdDst = dstMd;
  if (srcLayout != dstLayout) {
    Layout common = srcLayout.isPlain() ? dstLayout : srcLayout;
    pdSrc = *activationMd(dimsOf(x.shape), type, common);
    pdDst = *activationMd(dimsOf(out.shape), type, common);
  }
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, algo,
                                   pdSrc, pdDst, {(*strides)[0], (*strides)[1]},
                                   {(*kernel)[0], (*kernel)[1]},
                                   {(*pads)[0], (*pads)[1]}, padR);
  dnnl::pooling_forward::primitive_desc pd(desc, engine());
  std::string impl = IsMax ? "onednn:max_pool2d" : "onednn:avg_pool2d";
  auto k = std::make_unique<OnednnKernel>(impl + (blocked ? "(blocked)" : ""),
                                          dnnl::pooling_forward(pd));
  k->honorLayouts();
  if (pdSrc == srcMd)
    k->bind(DNNL_ARG_SRC, false, 0, srcMd);
  else
    k->bindReordered(DNNL_ARG_SRC, 0, srcMd, pdSrc);
  if (pdDst == dstMd)
    k->bind(DNNL_ARG_DST, true, 0, dstMd);
  else
    k->bindResultReordered(DNNL_ARG_DST, 0, dstMd, pdDst);
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
  // f32 silu, sigmoid, tanh and tanh-approximated gelu run the own pass
  // where it is faster (ownActivation).
  bool tanhGelu =
      op == "gelu" && attrString(pc, "approximate", "none") == "tanh";
  if (x.dtype == DType::f32 && ownActivation(tanhGelu ? "gelu_tanh" : op))
    return nullptr;
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
  // Channel-blocked (planned between convolutions): the result and each
  // operand of its shape in the result's layout; a per-channel operand has
  // the same bytes in either layout and stays dense.
  Layout layout = pc.outputLayout(0);
  if (pc.hasLayouts()) {
    bool full1 = padded(pc.inputs[src1].shape) == *shape;
    if (layout.isPlain() || pc.inputLayout(src0) != layout ||
        (full1 ? pc.inputLayout(src1) != layout
               : !perChannelOf(pc.inputs[src1].shape, *shape)))
      return nullptr;
    auto blockedMd = activationMd(dimsOf(*shape), type, layout);
    if (!blockedMd)
      return nullptr;
    md0 = *blockedMd;
    // A per-channel [1|N, C, 1, 1] operand in the same blocked tag: oneDNN
    // 2.6's jit binary takes broadcasts only in the layout of the full
    // source (plain: its reference kernel). Planned blocked, or plain with
    // C a multiple of the block (the same bytes); plain with padded
    // channels would be read past its end.
    std::vector<int64_t> p1 = padded(pc.inputs[src1].shape);
    bool sameBytes = p1.size() == 4 && p1[1] % layout.channelBlock == 0;
    if (p1.size() == 4 && (pc.inputLayout(src1) == layout || sameBytes))
      md1 = *activationMd(dimsOf(p1), type, layout);
    else if (!full1 && numElements(p1) != 1)
      return nullptr;
  }
  dnnl::binary::primitive_desc pd(
      dnnl::binary::desc(it->second.first, md0, md1, md0), engine());
  // oneDNN 2.6 vectorizes broadcasts of a scalar, along the channels and of
  // whole trailing dims; others (the [1, 1, H, 1] weights of a bilinear
  // Resize) run its reference kernel, ~60 ns an element: 48 ms for a
  // [1, 21, 520, 65] mul. The own loop (cpu:mul) does that in ~1 ms.
  // On channel-blocked buffers it also has a reference kernel only for a
  // scalar operand, and for div when channels are padded. Its jit kernel
  // computes the padded channels too, as op(0, 0) (every blocked writer
  // keeps them zero): 0 for add, sub and mul, so they stay zero.
  if (isReferenceImpl(pd))
    return nullptr;
  auto k = std::make_unique<OnednnKernel>(
      layout.isPlain() ? "onednn:binary" : "onednn:binary(blocked)",
      dnnl::binary(pd));
  k->honorLayouts();
  k->bind(DNNL_ARG_SRC_0, false, src0, md0);
  // oneDNN computes in place only over the first source.
  k->bind(DNNL_ARG_SRC_1, false, src1, md1, /*inPlaceOk=*/false);
  k->bind(DNNL_ARG_DST, true, 0, md0);
  return k;
}

//===----------------------------------------------------------------------===//
// softmax, log_softmax, layer_norm (batch_norm: an own kernel, Kernels.cpp)
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
  // In place only within one type: the Executable shares bytes only
  // between same-size elements, and a conversion between two such types
  // (f16 <-> bf16) reads a copy, oneDNN's reorder not being documented to
  // convert in place.
  k->bind(DNNL_ARG_FROM, false, 0, src, /*inPlaceOk=*/x.dtype == out.dtype);
  k->bind(DNNL_ARG_TO, true, 0, dst);
  return k;
}

//===----------------------------------------------------------------------===//
// Layout plan: activations stay channel-blocked between convolutions
//===----------------------------------------------------------------------===//

/// The channel block of oneDNN's blocked f32 convolutions on this machine:
/// 16 where it has an optimized (non-reference) kernel for nChw16c, as with
/// AVX-512, else 8 for nChw8c (AVX2), else 0 (no plan). Probed once on a
/// typical ResNet layer. (With format_tag::any oneDNN 2.6 picks nhwc for
/// its brgemm kernels instead; measured on ResNet-50's layers, the blocked
/// jit kernels are as fast or faster, 1x1 stride-2 ones over twice as fast.)
int64_t convChannelBlock() {
  static const int64_t block = [] {
    memory::dims act = {1, 64, 14, 14};
    memory::desc wei({64, 64, 3, 3}, dt::f32, memory::format_tag::any);
    for (int64_t b : {16, 8}) {
      try {
        memory::desc md = *activationMd(act, dt::f32, Layout{b});
        dnnl::convolution_forward::primitive_desc pd(
            dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                            dnnl::algorithm::convolution_direct,
                                            md, wei, md, {1, 1}, {1, 1},
                                            {1, 1}),
            engine());
        if (!isReferenceImpl(pd))
          return b;
      } catch (const dnnl::error &) {
      }
    }
    return int64_t(0);
  }();
  return block;
}

/// Whether the kernel reads operand `index` (or writes result `index`) in a
/// blocked layout when the plan asks for it: convolution sources, results
/// and residuals, pooling sources and results, global_avg_pool's source.
/// The factories check the rest (dtype, which extra operand is a residual)
/// and decline otherwise, and the Executable then makes the buffer plain.
bool takesBlocked(const KernelCall &call, size_t index, bool isResult) {
  const std::string &op = call.op;
  if (op == "conv2d" || op == "fused_conv2d")
    return index == 0 || (!isResult && op == "fused_conv2d" && index >= 2);
  if (op == "max_pool2d" || op == "avg_pool2d")
    return index == 0;
  return op == "global_avg_pool" && !isResult && index == 0;
}

/// The binary elementwise ops that prepareBinary runs (max and min run the
/// own, NaN-keeping loops).
bool isOnednnBinary(const KernelCall &call) {
  static const std::set<std::string> ops = {"add", "sub", "mul", "div"};
  return ops.count(call.op) != 0;
}

/// Whether a binary elementwise call can run on channel-blocked buffers:
/// every operand is the result's shape (read in the result's layout) or
/// per-channel. The SE blocks of MobileNet V3 and EfficientNet scale a
/// depthwise convolution's result by a [N, C, 1, 1] gate this way.
bool blockableBinary(const Program &program, const KernelCall &call) {
  if (!isOnednnBinary(call) || call.outputs.size() != 1 ||
      call.inputs.size() != 2)
    return false;
  const std::vector<int64_t> &full = program.buffers[call.outputs[0]].shape;
  for (int64_t id : call.inputs) {
    const std::vector<int64_t> &s = program.buffers[id].shape;
    if (s != full && !perChannelOf(s, full))
      return false;
  }
  return full.size() == 4;
}

/// Whether a concat call can run on channel-blocked buffers: along the
/// channels of [N, C, H, W], every operand's channels a whole number of
/// blocks. Then each operand's block of each image is one contiguous run
/// at the same offset as in NCHW, and the plain concat kernel copies the
/// same bytes (SqueezeNet's fire modules, GoogLeNet's and Inception's
/// branches, DenseNet's growing feature maps).
bool blockableConcat(const Program &program, const KernelCall &call,
                     int64_t block) {
  if (call.op != "concat" || call.outputs.size() != 1 || call.inputs.empty())
    return false;
  const std::vector<int64_t> &out = program.buffers[call.outputs[0]].shape;
  int64_t axis = call.attrs.value("axis", int64_t(-100));
  if (out.size() != 4 || (axis != 1 && axis != -3))
    return false;
  for (int64_t id : call.inputs) {
    const std::vector<int64_t> &s = program.buffers[id].shape;
    if (s.size() != 4 || s[1] % block != 0)
      return false;
  }
  return true;
}

/// Whether a relu or batch_norm call can run on channel-blocked buffers
/// (its source and result; the own kernels read a blocked source channel
/// block by channel block): [N, C, H, W] with C a whole number of blocks, so
/// there are no padded channels that the op would turn nonzero (a batch
/// norm's shift would). DenseNet's dense layers: concat -> batch norm ->
/// relu -> 1x1 convolution.
bool blockableChannelwise(const Program &program, const KernelCall &call,
                          int64_t block) {
  if ((call.op != "relu" && call.op != "batch_norm") ||
      call.outputs.size() != 1 || call.inputs.empty())
    return false;
  const std::vector<int64_t> &out = program.buffers[call.outputs[0]].shape;
  return out.size() == 4 && out[1] % block == 0 &&
         program.buffers[call.inputs[0]].shape == out;
}

/// For a call that runs on blocked buffers as a group (blockableBinary,
/// blockableConcat, blockableChannelwise): which of its operands are
/// blocked all or none together with its result (the others keep their own
/// layout); an empty function for any other call.
std::function<bool(int64_t)>
blockedGroup(const Program &program, const KernelCall &call, int64_t block) {
  if (blockableConcat(program, call, block))
    return [](int64_t) { return true; };
  if (blockableChannelwise(program, call, block))
    return [first = call.inputs[0]](int64_t id) { return id == first; };
  if (blockableBinary(program, call))
    return [&program, &full = program.buffers[call.outputs[0]].shape](
               int64_t id) { return program.buffers[id].shape == full; };
  return {};
}

} // namespace

namespace {
/// -1: follow the environment; 0/1: set by setConvWinogradForTesting.
std::atomic<int> winogradOverride{-1};
} // namespace

bool convWinogradEnabled() {
  static const bool fromEnvironment = [] {
    const char *env = std::getenv("KILN_CONV_WINOGRAD");
    return !(env && std::string(env) == "0");
  }();
  int override = winogradOverride.load();
  return override < 0 ? fromEnvironment : override == 1;
}

void setConvWinogradForTesting(bool enabled) {
  winogradOverride.store(enabled ? -1 : 0);
}

std::vector<Layout> planBlockedLayouts(const Program &program) {
  std::vector<Layout> layouts(program.buffers.size());
  int64_t block = convChannelBlock();
  if (block == 0)
    return layouts;
  // Candidates: f32 [N, C, H, W] intermediates with C a multiple of the
  // block (same bytes, same arena slot), or padded to one with at most half
  // as many bytes again (MobileNet's and EfficientNet's 24, 40, 72, 120 and
  // 200 channels; the Executable stores those outside the arena).
  std::vector<bool> blocked(program.buffers.size(), false);
  for (const BufferDesc &b : program.buffers) {
    int64_t c = b.shape.size() == 4 ? b.shape[1] : 0;
    int64_t padded = (c + block - 1) / block * block;
    blocked[b.id] = b.kind == BufferKind::arena && b.dtype == DType::f32 &&
                    c > 0 && 2 * padded <= 3 * c;
  }
  // Each kernel that touches a candidate must take it blocked. A call that
  // runs blocked as a group (blockedGroup: a binary call's full-shape
  // operands, a channel concat's, relu's and batch norm's source) is
  // settled below, together with its result; a binary call's per-channel
  // operands are the same bytes in either layout.
  for (const KernelCall &k : program.kernels) {
    if (blockedGroup(program, k, block))
      continue;
    for (size_t i = 0; i < k.inputs.size(); ++i)
      if (!takesBlocked(k, i, false))
        blocked[k.inputs[i]] = false;
    for (size_t i = 0; i < k.outputs.size(); ++i)
      if (!takesBlocked(k, i, true))
        blocked[k.outputs[i]] = false;
  }
  // A convolution reads its residuals in its result's layout, a binary
  // call its full-shape operands, and a concat all of its operands.
  for (bool changed = true; changed;) {
    changed = false;
    auto unblock = [&](int64_t id) {
      if (blocked[id]) {
        blocked[id] = false;
        changed = true;
      }
    };
    // The call's result and the operands `together(id)` selects are blocked
    // all or none.
    auto allOrNone = [&](const KernelCall &k,
                         const std::function<bool(int64_t)> &together) {
      bool all = blocked[k.outputs[0]];
      for (int64_t id : k.inputs)
        all = all && (!together(id) || blocked[id]);
      if (all)
        return;
      for (int64_t id : k.inputs)
        if (together(id))
          unblock(id);
      unblock(k.outputs[0]);
    };
    for (const KernelCall &k : program.kernels) {
      if (auto together = blockedGroup(program, k, block)) {
        allOrNone(k, together);
        continue;
      }
      if (k.op != "fused_conv2d" || k.outputs.empty() || blocked[k.outputs[0]])
        continue;
      for (size_t i = 2; i < k.inputs.size(); ++i)
        unblock(k.inputs[i]);
    }
  }
  for (size_t id = 0; id < blocked.size(); ++id)
    if (blocked[id])
      layouts[id] = Layout{block};
  return layouts;
}

void registerOnednnKernels(Backend &b) {
  b.addFactory("matmul", declineOnError(prepareMatmul));
  b.addFactory("conv2d", declineOnError(prepareConv));
  b.addFactory("fused_matmul", declineOnError(prepareMatmul));
  b.addFactory("fused_conv2d", declineOnError(prepareConv));
  b.addFactory("max_pool2d", declineOnError(preparePool<true>));
  b.addFactory("avg_pool2d", declineOnError(preparePool<false>));
  // log is not here: oneDNN's is a polynomial ~1.5e-6 off near 1 (log(1)
  // must be 0 for ONNX conformance); the own std::log loop is exact. Nor are
  // relu, max and min: oneDNN 2.6's turn NaN into 0 (relu) or drop a NaN
  // lhs (max/min), where kiln propagates NaN; the own loops do (tested by
  // the *_nan_inf differential cases).
  for (const char *op : {"neg", "abs", "exp", "sqrt", "rsqrt", "reciprocal",
                         "tanh", "sigmoid", "silu", "gelu"})
    b.addFactory(op, declineOnError(prepareEltwise));
  for (const char *op : {"add", "sub", "mul", "div"})
    b.addFactory(op, declineOnError(prepareBinary));
  b.addFactory("softmax", declineOnError(prepareSoftmax<false>));
  b.addFactory("log_softmax", declineOnError(prepareSoftmax<true>));
  b.addFactory("layer_norm", declineOnError(prepareLayerNorm));
  for (const char *op :
       {"reduce_sum", "reduce_mean", "reduce_max", "reduce_min"})
    b.addFactory(op, declineOnError(prepareReduce));
  b.addFactory("transpose", declineOnError(prepareTranspose));
  b.addFactory("cast", declineOnError(prepareCast));
}

} // namespace kiln::cpu
