//===- frontends/zoo/Zoo.cpp - The model zoo, by name ---------------------===//
//
// Every model the tools, tests, examples and benchmarks refer to by name.
// Tiny configs run in milliseconds on the reference backend; the full configs
// (gpt2-small, bert-base, vit-b16, resnet50) match the published
// architectures' shapes.
//
//===----------------------------------------------------------------------===//
#include "frontends/zoo/ZooModels.h"

namespace kiln::zoo {

static Module buildMlp(int64_t batch, uint64_t seed) {
  dsl::Graph g("mlp", seed);
  auto x = g.input("x", {batch, 784});
  auto h = nn::linear(x, 256, "fc1").relu();
  h = nn::linear(h, 128, "fc2").relu();
  g.output("logits", nn::linear(h, 10, "fc3").logSoftmax(-1));
  return g.finish();
}

std::vector<std::pair<std::string, std::string>> models() {
  return {
      {"mlp", "784-256-128-10 perceptron with log-softmax, batch 1"},
      {"gpt", "tiny GPT decoder: 2 layers, d=64, 4 heads, vocab 512, seq 16"},
      {"gpt2-small", "GPT-2 small: 12 layers, d=768, 12 heads, vocab 50257, "
                     "seq 128"},
      {"bert", "tiny BERT encoder: 2 layers, d=64, 4 heads, seq 16"},
      {"bert-base", "BERT-base encoder: 12 layers, d=768, 12 heads, seq 128"},
      {"vit", "tiny ViT: 32x32 image, patch 8, 2 layers, d=64"},
      {"vit-b16", "ViT-B/16: 224x224 image, patch 16, 12 layers, d=768"},
      {"resnet", "tiny ResNet: bottleneck blocks [1,1,1,1], width 8, 32x32"},
      {"resnet50", "ResNet-50: bottleneck blocks [3,4,6,3], 224x224"},
  };
}

StatusOr<Module> build(const std::string &name, const Options &o) {
  auto pick = [](int64_t override, int64_t dflt) {
    return override > 0 ? override : dflt;
  };
  // Sequence models take --batch and --seq, bounded by their position table.
  auto sequenceConfig = [&](auto &c) {
    c.batch = pick(o.batch, c.batch);
    c.seq = pick(o.seq, c.seq);
    if (c.seq > c.positions)
      return Status::error(name + ": --seq " + std::to_string(c.seq) +
                           " exceeds the " + std::to_string(c.positions) +
                           " positions of the model");
    return Status::ok();
  };
  // The others take --batch only.
  auto imageConfig = [&](auto &c) {
    c.batch = pick(o.batch, c.batch);
    if (o.seq > 0)
      return Status::error("model '" + name +
                           "' has no sequence length; --seq applies to gpt, "
                           "gpt2-small, bert and bert-base");
    return Status::ok();
  };
  try {
    if (name == "mlp") {
      struct {
        int64_t batch = 1;
      } c;
      if (Status s = imageConfig(c); !s)
        return s;
      return buildMlp(c.batch, o.seed);
    }
    if (name == "gpt" || name == "gpt2-small") {
      GptConfig c;
      if (name == "gpt2-small")
        c = {12, 768, 12, 50257, 1024, 1, 128};
      if (Status s = sequenceConfig(c); !s)
        return s;
      return buildGpt(name, c, o.seed);
    }
    if (name == "bert" || name == "bert-base") {
      BertConfig c;
      if (name == "bert-base")
        c = {12, 768, 12, 3072, 30522, 512, 1, 128};
      if (Status s = sequenceConfig(c); !s)
        return s;
      return buildBert(name, c, o.seed);
    }
    if (name == "vit" || name == "vit-b16") {
      VitConfig c;
      if (name == "vit-b16")
        c = {12, 768, 12, 3072, 224, 16, 1000, 1};
      if (Status s = imageConfig(c); !s)
        return s;
      return buildVit(name, c, o.seed);
    }
    if (name == "resnet" || name == "resnet50") {
      ResNetConfig c;
      if (name == "resnet50")
        c = {{3, 4, 6, 3}, 64, 224, 1000, 1};
      if (Status s = imageConfig(c); !s)
        return s;
      return buildResNet(name, c, o.seed);
    }
  } catch (const dsl::Error &e) {
    return Status::error(e.what());
  }
  std::string known;
  for (auto &[n, d] : models())
    known += (known.empty() ? "" : ", ") + n;
  return Status::error("unknown model '" + name + "'; known models: " + known);
}

} // namespace kiln::zoo
