//===- frontends/dsl/NN.cpp - Layers written with the DSL -----------------===//
//
// nn:: helpers build common layers from kiln ops. Each opens a parameter
// scope named by its `name` argument and locates its ops at the caller's line.
// Attention is deliberately written unfused (matmul -> scale -> mask ->
// softmax -> matmul): recognizing it is the attention-fusion pass's job.
//
//===----------------------------------------------------------------------===//
#include "frontends/dsl/GraphImpl.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <cmath>
#include <limits>

namespace kiln::nn {
using dsl::Graph;
using dsl::Init;

namespace {
mlir::NamedAttribute named(Graph::Impl &g, llvm::StringRef name,
                           mlir::Attribute a) {
  return {mlir::StringAttr::get(g.ctx(), name), a};
}
mlir::Attribute i64(Graph::Impl &g, int64_t v) {
  return mlir::IntegerAttr::get(mlir::IntegerType::get(g.ctx(), 64), v);
}
mlir::Attribute f64(Graph::Impl &g, double v) {
  return mlir::FloatAttr::get(mlir::Float64Type::get(g.ctx()), v);
}
mlir::Attribute ints(Graph::Impl &g, llvm::ArrayRef<int64_t> v) {
  return mlir::DenseI64ArrayAttr::get(g.ctx(), v);
}
void requireRank(const Tensor &x, int64_t rank, const char *layer,
                 const Loc &loc) {
  auto &g = dsl::implOf(x);
  if (x.rank() != rank)
    g.fail(g.location(loc), std::string(layer) + " expects a rank-" +
                                std::to_string(rank) + " input, got " +
                                shapeToString(x.shape()));
}
} // namespace

Tensor linear(const Tensor &x, int64_t outFeatures, const std::string &name,
              bool bias, Loc loc) {
  Graph &graph = x.graph();
  Graph::Scope scope(graph, name, loc);
  if (x.rank() < 1)
    dsl::implOf(x).fail(dsl::implOf(x).location(loc),
                        "linear expects an input of rank >= 1");
  int64_t in = x.dim(-1);
  auto w =
      graph.param("weight", {in, outFeatures},
                  Init::normal(1.0 / std::sqrt(double(in))), DType::f32, loc);
  auto y = x.matmul(w, false, false, loc);
  if (bias)
    y = y.add(
        graph.param("bias", {outFeatures}, Init::zeros(), DType::f32, loc),
        loc);
  return y;
}

Tensor layerNorm(const Tensor &x, const std::string &name, double eps,
                 Loc loc) {
  Graph &graph = x.graph();
  Graph::Scope scope(graph, name, loc);
  auto &g = dsl::implOf(x);
  int64_t d = x.dim(-1);
  auto scale = graph.param("weight", {d}, Init::ones(), DType::f32, loc);
  auto bias = graph.param("bias", {d}, Init::zeros(), DType::f32, loc);
  return g.create(
      "kiln.layer_norm", {x, scale, bias},
      {named(g, "axis", i64(g, -1)), named(g, "epsilon", f64(g, eps))},
      g.location(loc));
}

Tensor rmsNorm(const Tensor &x, const std::string &name, double eps, Loc loc) {
  Graph &graph = x.graph();
  Graph::Scope scope(graph, name, loc);
  auto &g = dsl::implOf(x);
  auto scale =
      graph.param("weight", {x.dim(-1)}, Init::ones(), DType::f32, loc);
  return g.create(
      "kiln.rms_norm", {x, scale},
      {named(g, "axis", i64(g, -1)), named(g, "epsilon", f64(g, eps))},
      g.location(loc));
}

Tensor embedding(const Tensor &ids, int64_t vocab, int64_t dim,
                 const std::string &name, Loc loc) {
  Graph &graph = ids.graph();
  Graph::Scope scope(graph, name, loc);
  auto table =
      graph.param("weight", {vocab, dim}, Init::normal(0.02), DType::f32, loc);
  return table.gather(ids, 0, loc);
}

Tensor conv2d(const Tensor &x, int64_t outChannels, const std::string &name,
              const Conv2dOptions &o, Loc loc) {
  requireRank(x, 4, "conv2d", loc);
  Graph &graph = x.graph();
  Graph::Scope scope(graph, name, loc);
  auto &g = dsl::implOf(x);
  int64_t c = x.dim(1);
  if (o.groups <= 0 || c % o.groups != 0)
    g.fail(g.location(loc), "conv2d: " + std::to_string(c) +
                                " input channels are not divisible by groups=" +
                                std::to_string(o.groups));
  int64_t fanIn = (c / o.groups) * o.kernel * o.kernel;
  auto w =
      graph.param("weight", {outChannels, c / o.groups, o.kernel, o.kernel},
                  Init::normal(std::sqrt(2.0 / fanIn)), DType::f32, loc);
  std::vector<Tensor> operands{x, w};
  if (o.bias)
    operands.push_back(
        graph.param("bias", {outChannels}, Init::zeros(), DType::f32, loc));
  int64_t p = o.padding;
  return g.create("kiln.conv2d", operands,
                  {named(g, "strides", ints(g, {o.stride, o.stride})),
                   named(g, "pads", ints(g, {p, p, p, p})),
                   named(g, "dilations", ints(g, {o.dilation, o.dilation})),
                   named(g, "groups", i64(g, o.groups))},
                  g.location(loc));
}

Tensor batchNorm(const Tensor &x, const std::string &name, double eps,
                 Loc loc) {
  requireRank(x, 4, "batchNorm", loc);
  Graph &graph = x.graph();
  Graph::Scope scope(graph, name, loc);
  auto &g = dsl::implOf(x);
  int64_t c = x.dim(1);
  auto scale = graph.param("weight", {c}, Init::ones(), DType::f32, loc);
  auto bias = graph.param("bias", {c}, Init::zeros(), DType::f32, loc);
  auto mean =
      graph.param("running_mean", {c}, Init::normal(0.1), DType::f32, loc);
  auto var =
      graph.param("running_var", {c}, Init::uniform(0.5, 1.5), DType::f32, loc);
  return g.create("kiln.batch_norm", {x, scale, bias, mean, var},
                  {named(g, "epsilon", f64(g, eps))}, g.location(loc));
}

static Tensor pool(const char *op, const Tensor &x, int64_t kernel,
                   int64_t stride, int64_t padding, const Loc &loc) {
  requireRank(x, 4, op, loc);
  auto &g = dsl::implOf(x);
  int64_t p = padding;
  return g.create(op, {x},
                  {named(g, "kernel", ints(g, {kernel, kernel})),
                   named(g, "strides", ints(g, {stride, stride})),
                   named(g, "pads", ints(g, {p, p, p, p}))},
                  g.location(loc));
}

Tensor maxPool2d(const Tensor &x, int64_t kernel, int64_t stride,
                 int64_t padding, Loc loc) {
  return pool("kiln.max_pool2d", x, kernel, stride, padding, loc);
}

Tensor avgPool2d(const Tensor &x, int64_t kernel, int64_t stride,
                 int64_t padding, Loc loc) {
  return pool("kiln.avg_pool2d", x, kernel, stride, padding, loc);
}

Tensor globalAvgPool(const Tensor &x, Loc loc) {
  requireRank(x, 4, "globalAvgPool", loc);
  auto &g = dsl::implOf(x);
  return g.create("kiln.global_avg_pool", {x}, {}, g.location(loc));
}

Tensor mlp(const Tensor &x, int64_t hidden, const std::string &name, Loc loc) {
  Graph::Scope scope(x.graph(), name, loc);
  auto h = linear(x, hidden, "fc1", true, loc).gelu(false, loc);
  return linear(h, x.dim(-1), "fc2", true, loc);
}

Tensor multiHeadAttention(const Tensor &x, const std::string &name,
                          const AttentionOptions &o, const Tensor *mask,
                          Loc loc) {
  requireRank(x, 3, "multiHeadAttention", loc);
  Graph &graph = x.graph();
  Graph::Scope scope(graph, name, loc);
  auto &g = dsl::implOf(x);
  int64_t b = x.dim(0), s = x.dim(1), d = x.dim(2), h = o.heads;
  if (h <= 0 || d % h != 0)
    g.fail(g.location(loc),
           "multiHeadAttention: model dim " + std::to_string(d) +
               " is not divisible by heads=" + std::to_string(h));
  int64_t hd = d / h;
  // [B, S, D] -> [B, H, S, hd]
  auto heads = [&](const Tensor &t) {
    return t.reshape({b, s, h, hd}, loc).transpose({0, 2, 1, 3}, loc);
  };
  auto q = heads(linear(x, d, "q", true, loc));
  auto k = heads(linear(x, d, "k", true, loc));
  auto v = heads(linear(x, d, "v", true, loc));
  auto scores =
      q.matmul(k, false, true, loc)
          .mul(graph.scalar(1.0 / std::sqrt(double(hd)), x.dtype(), loc), loc);
  if (o.causal) {
    // Additive causal mask: 0 on and below the diagonal, -inf above.
    std::vector<double> m(s * s, 0.0);
    for (int64_t i = 0; i < s; ++i)
      for (int64_t j = i + 1; j < s; ++j)
        m[i * s + j] = -std::numeric_limits<double>::infinity();
    scores = scores.add(graph.constant({s, s}, m, x.dtype(), loc), loc);
  }
  if (mask)
    scores = scores.add(*mask, loc);
  auto probs = scores.softmax(-1, loc);
  auto ctx = probs.matmul(v, false, false, loc)
                 .transpose({0, 2, 1, 3}, loc)
                 .reshape({b, s, d}, loc);
  return linear(ctx, d, "out", true, loc);
}

} // namespace kiln::nn
