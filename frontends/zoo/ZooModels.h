//===- frontends/zoo/ZooModels.h - Builders of the zoo models --*- C++ -*-===//
#ifndef KILN_FRONTENDS_ZOO_ZOOMODELS_H
#define KILN_FRONTENDS_ZOO_ZOOMODELS_H

#include "kiln/dsl.h"

namespace kiln::zoo {

struct GptConfig {
  int64_t layers = 2, dim = 64, heads = 4, vocab = 512, positions = 64;
  int64_t batch = 1, seq = 16;
};
struct BertConfig {
  int64_t layers = 2, dim = 64, heads = 4, ffn = 256, vocab = 512,
          positions = 64;
  int64_t batch = 1, seq = 16;
};
struct VitConfig {
  int64_t layers = 2, dim = 64, heads = 4, ffn = 256, image = 32, patch = 8,
          classes = 10;
  int64_t batch = 1;
};
struct ResNetConfig {
  std::vector<int64_t> blocks{1, 1, 1, 1};
  int64_t width = 8, image = 32, classes = 10;
  int64_t batch = 1;
};

Module buildGpt(const std::string &name, const GptConfig &c, uint64_t seed);
Module buildBert(const std::string &name, const BertConfig &c, uint64_t seed);
Module buildVit(const std::string &name, const VitConfig &c, uint64_t seed);
Module buildResNet(const std::string &name, const ResNetConfig &c,
                   uint64_t seed);

} // namespace kiln::zoo

#endif // KILN_FRONTENDS_ZOO_ZOOMODELS_H
