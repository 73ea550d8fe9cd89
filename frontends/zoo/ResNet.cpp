//===- frontends/zoo/ResNet.cpp - ResNet with bottleneck blocks -----------===//
//
// ResNet-50 (He et al. 2016, torchvision layout: stride in the 3x3 conv) and
// scaled-down variants: conv-bn-relu stem, max pool, four stages of
// bottleneck blocks, global average pool, fully connected classifier.
//
//===----------------------------------------------------------------------===//
#include "frontends/zoo/ZooModels.h"

namespace kiln::zoo {
using dsl::Graph;
using dsl::Tensor;

static Tensor convBn(const Tensor &x, int64_t out, int64_t kernel,
                     int64_t stride, const std::string &name) {
  Graph::Scope s(x.graph(), name);
  auto o = nn::Conv2dOptions()
               .setKernel(kernel)
               .setStride(stride)
               .setPadding(kernel / 2)
               .setBias(false);
  return nn::batchNorm(nn::conv2d(x, out, "conv", o), "bn");
}

static Tensor bottleneck(const Tensor &x, int64_t width, int64_t stride,
                         const std::string &name) {
  Graph::Scope s(x.graph(), name);
  int64_t out = width * 4;
  auto h = convBn(x, width, 1, 1, "conv1").relu();
  h = convBn(h, width, 3, stride, "conv2").relu();
  h = convBn(h, out, 1, 1, "conv3");
  Tensor shortcut = x;
  if (stride != 1 || x.dim(1) != out)
    shortcut = convBn(x, out, 1, stride, "downsample");
  return (h + shortcut).relu();
}

Module buildResNet(const std::string &name, const ResNetConfig &c,
                   uint64_t seed) {
  Graph g(name, seed);
  auto image = g.input("pixel_values", {c.batch, 3, c.image, c.image});
  auto x = convBn(image, c.width, 7, 2, "stem").relu();
  x = nn::maxPool2d(x, 3, 2, 1);
  for (size_t stage = 0; stage < c.blocks.size(); ++stage) {
    int64_t width = c.width << stage;
    for (int64_t b = 0; b < c.blocks[stage]; ++b) {
      int64_t stride = (b == 0 && stage > 0) ? 2 : 1;
      x = bottleneck(x, width, stride,
                     "layer" + std::to_string(stage + 1) + "." +
                         std::to_string(b));
    }
  }
  x = nn::globalAvgPool(x).reshape({c.batch, -1});
  g.output("logits", nn::linear(x, c.classes, "fc"));
  return g.finish();
}

} // namespace kiln::zoo
