//===- Fused.cpp - fused_matmul and fused_conv2d --------------------------===//
//
// A fused op is its anchor (the reference matmul or conv2d kernel, run on
// the first two operands) followed by the `epilogue` steps, each applied to
// the whole result and stored back in its element type, exactly as the
// unfused kiln ops would compute it: fusion does not change the reference
// backend's numbers.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

namespace kiln::reference {
namespace {

/// One epilogue step, with its extra operands (batch_norm: scale, bias,
/// mean, var), scale or epsilon.
struct Step {
  std::string name;
  const BufferView *extra = nullptr;
  double scale = 0;
  std::vector<const BufferView *> norm;
  double epsilon = 0;
};

/// Reads the list of numbers `name` (absent: empty).
Status readNumbers(const nlohmann::json &attrs, const char *name,
                   std::vector<double> &out) {
  auto it = attrs.find(name);
  if (it == attrs.end() || it->is_null())
    return Status::ok();
  if (!it->is_array())
    return Status::error(std::string("attribute '") + name +
                         "' must be a list of numbers");
  for (const auto &v : *it) {
    if (!v.is_number())
      return Status::error(std::string("attribute '") + name +
                           "' must be a list of numbers");
    out.push_back(v.get<double>());
  }
  return Status::ok();
}

/// Reads `epilogue` and `scales` and pairs each step with the operand or
/// scale it consumes, checking the operands' dtypes and shapes.
Status readEpilogue(const KernelContext &ctx, int64_t channels,
                    std::vector<Step> &steps) {
  const nlohmann::json &attrs = ctx.call->attrs;
  auto epilogue = attrs.find("epilogue");
  if (epilogue == attrs.end() || !epilogue->is_array())
    return Status::error("attribute 'epilogue' must be a list of strings");
  std::vector<double> scales, epsilons;
  if (Status s = readNumbers(attrs, "scales", scales); !s)
    return s;
  if (Status s = readNumbers(attrs, "epsilons", epsilons); !s)
    return s;
  const BufferView &out = ctx.outputs[0];
  size_t nextExtra = 2, nextScale = 0, nextEpsilon = 0;
  for (const auto &v : *epilogue) {
    if (!v.is_string())
      return Status::error("attribute 'epilogue' must be a list of strings");
    Step step{v.get<std::string>()};
    if (step.name == "add_bias" || step.name == "add_residual") {
      if (nextExtra >= ctx.inputs.size())
        return Status::error("epilogue step '" + step.name +
                             "' has no operand left");
      step.extra = &ctx.inputs[nextExtra++];
      if (step.extra->dtype != out.dtype)
        return Status::error("epilogue operand of '" + step.name + "' is " +
                             dtypeName(step.extra->dtype) + ", expected " +
                             dtypeName(out.dtype));
      bool fits = step.name == "add_bias"
                      ? step.extra->numElements() == channels
                      : step.extra->shape == out.shape;
      if (!fits)
        return Status::error("epilogue operand of '" + step.name +
                             "' has shape " + shapeToString(step.extra->shape) +
                             ", which does not fit the result " +
                             shapeToString(out.shape));
    } else if (step.name == "batch_norm") {
      if (nextExtra + 4 > ctx.inputs.size() || nextEpsilon >= epsilons.size())
        return Status::error("epilogue step 'batch_norm' needs 4 operands "
                             "and an epsilon");
      for (int i = 0; i < 4; ++i) {
        const BufferView *param = &ctx.inputs[nextExtra++];
        if (param->dtype != out.dtype ||
            param->shape != std::vector<int64_t>{channels})
          return Status::error(
              "batch_norm operand is " + std::string(dtypeName(param->dtype)) +
              " " + shapeToString(param->shape) + ", expected " +
              dtypeName(out.dtype) + " [" + std::to_string(channels) + "]");
        step.norm.push_back(param);
      }
      step.epsilon = epsilons[nextEpsilon++];
    } else if (step.name == "scale" || step.name == "shift" ||
               step.name == "max" || step.name == "min") {
      if (nextScale >= scales.size())
        return Status::error("epilogue has more scale, shift, max and min "
                             "steps than 'scales'");
      step.scale = scales[nextScale++];
    } else if (step.name != "relu" && step.name != "gelu" &&
               step.name != "gelu_tanh" && step.name != "silu" &&
               step.name != "tanh" && step.name != "sigmoid" &&
               step.name != "hardswish") {
      return Status::error("unknown epilogue step '" + step.name + "'");
    }
    steps.push_back(std::move(step));
  }
  if (nextExtra != ctx.inputs.size() || nextScale != scales.size() ||
      nextEpsilon != epsilons.size())
    return Status::error(
        "epilogue does not consume every operand, scale and epsilon");
  return Status::ok();
}

enum class Activation { relu, tanh, sigmoid, silu, gelu, geluTanh, hardSwish };

Activation activationOf(const std::string &name) {
  if (name == "relu")
    return Activation::relu;
  if (name == "tanh")
    return Activation::tanh;
  if (name == "sigmoid")
    return Activation::sigmoid;
  if (name == "silu")
    return Activation::silu;
  if (name == "gelu_tanh")
    return Activation::geluTanh;
  if (name == "hardswish")
    return Activation::hardSwish;
  return Activation::gelu;
}

/// The activation as the elementwise kernels compute it.
template <typename C> C activate(Activation a, C x) {
  switch (a) {
  case Activation::relu:
    return (x > 0 || x != x) ? x : C(0);
  case Activation::tanh:
    return std::tanh(x);
  case Activation::sigmoid:
    return C(1) / (C(1) + std::exp(-x));
  case Activation::silu:
    return x / (C(1) + std::exp(-x));
  case Activation::geluTanh: {
    const C k = static_cast<C>(0.7978845608028654); // sqrt(2/pi)
    return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
  }
  case Activation::hardSwish:
    return hardSwish(x);
  case Activation::gelu:
    break;
  }
  return C(0.5) * x * (C(1) + std::erf(x * static_cast<C>(0.7071067811865476)));
}

/// Runs the anchor kernel `anchor` on the first two operands, then the
/// epilogue; a bias value is indexed by (i / inner) % channels.
Status fusedKernel(const KernelContext &ctx, const char *anchor,
                   int64_t channelDim) {
  if (ctx.inputs.size() < 2 || ctx.outputs.size() != 1)
    return Status::error("expected at least 2 operands and 1 result");
  const BufferView &out = ctx.outputs[0];
  if (channelDim < 0)
    channelDim += out.rank();
  if (channelDim < 0 || channelDim >= out.rank())
    return Status::error("result " + shapeToString(out.shape) +
                         " has no channel dim");
  int64_t channels = out.shape[channelDim];
  int64_t inner = 1;
  for (int64_t d = channelDim + 1; d < out.rank(); ++d)
    inner *= out.shape[d];
  std::vector<Step> steps;
  if (Status s = readEpilogue(ctx, channels, steps); !s)
    return s;

  StatusOr<const Backend *> reference = getBackend("reference");
  if (!reference)
    return reference.status();
  KernelFn anchorKernel = (*reference)->find(anchor);
  if (!anchorKernel)
    return Status::error(std::string("no reference kernel for ") + anchor);
  KernelContext anchorCtx{
      ctx.call, {ctx.inputs[0], ctx.inputs[1]}, ctx.outputs};
  if (Status s = anchorKernel(anchorCtx); !s)
    return s;

  return dispatch(out.dtype, TypeClass::floats, [&]<DType D>() -> Status {
    using E = Elem<D>;
    using C = typename E::C;
    auto *po = out.as<typename E::S>();
    int64_t n = out.numElements();
    for (const Step &step : steps) {
      const auto *pe = step.extra ? step.extra->as<typename E::S>() : nullptr;
      if (step.name == "add_bias") {
        for (int64_t i = 0; i < n; ++i)
          po[i] =
              E::store(E::load(po[i]) + E::load(pe[(i / inner) % channels]));
      } else if (step.name == "add_residual") {
        for (int64_t i = 0; i < n; ++i)
          po[i] = E::store(E::load(po[i]) + E::load(pe[i]));
      } else if (step.name == "batch_norm") {
        // As the batch_norm kernel: per channel, in the accumulator type.
        using Acc = typename E::Acc;
        for (int64_t i = 0; i < n; ++i) {
          int64_t c = (i / inner) % channels;
          auto param = [&](int k) {
            return static_cast<Acc>(
                E::load(step.norm[k]->template as<typename E::S>()[c]));
          };
          Acc inv =
              Acc(1) / std::sqrt(param(3) + static_cast<Acc>(step.epsilon));
          Acc v = E::load(po[i]);
          po[i] = E::store(
              static_cast<C>((v - param(2)) * inv * param(0) + param(1)));
        }
      } else if (step.name == "scale") {
        // As mul by a constant of the result's dtype.
        C c = E::load(E::store(static_cast<C>(step.scale)));
        for (int64_t i = 0; i < n; ++i)
          po[i] = E::store(E::load(po[i]) * c);
      } else if (step.name == "shift") {
        // As add of a constant of the result's dtype.
        C c = E::load(E::store(static_cast<C>(step.scale)));
        for (int64_t i = 0; i < n; ++i)
          po[i] = E::store(E::load(po[i]) + c);
      } else if (step.name == "max" || step.name == "min") {
        // As the max/min kernels with a constant of the result's dtype.
        C c = E::load(E::store(static_cast<C>(step.scale)));
        bool isMax = step.name == "max";
        for (int64_t i = 0; i < n; ++i) {
          C x = E::load(po[i]);
          po[i] = E::store(isMax ? maxKeepingNan(x, c) : minKeepingNan(x, c));
        }
      } else {
        Activation a = activationOf(step.name);
        for (int64_t i = 0; i < n; ++i)
          po[i] = E::store(activate<C>(a, E::load(po[i])));
      }
    }
    return Status::ok();
  });
}

Status fusedMatmulKernel(const KernelContext &ctx) {
  return fusedKernel(ctx, "matmul", -1);
}

Status fusedConv2dKernel(const KernelContext &ctx) {
  return fusedKernel(ctx, "conv2d", 1);
}

} // namespace

void registerFusedKernels(Backend &b) {
  b.add("fused_matmul", fusedMatmulKernel);
  b.add("fused_conv2d", fusedConv2dKernel);
}

} // namespace kiln::reference
