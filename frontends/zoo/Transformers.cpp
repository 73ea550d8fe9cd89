//===- frontends/zoo/Transformers.cpp - GPT, BERT and ViT -----------------===//
//
// Transformer models of the zoo, in the DSL. GPT is a pre-LN causal decoder
// with tied input/output embeddings (GPT-2); BERT a post-LN encoder; ViT a
// pre-LN encoder over conv patch embeddings with a class token.
//
//===----------------------------------------------------------------------===//
#include "frontends/zoo/ZooModels.h"

namespace kiln::zoo {
using dsl::Graph;
using dsl::Init;
using dsl::Tensor;

Module buildGpt(const std::string &name, const GptConfig &c, uint64_t seed) {
  Graph g(name, seed);
  auto tokens = g.input("tokens", {c.batch, c.seq}, DType::i64);
  auto wte = g.param("wte", {c.vocab, c.dim}, Init::normal(0.02));
  auto wpe = g.param("wpe", {c.positions, c.dim}, Init::normal(0.01));
  auto x = wte.gather(tokens) + wpe.slice(0, 0, c.seq);
  for (int64_t i = 0; i < c.layers; ++i) {
    Graph::Scope block(g, "h" + std::to_string(i));
    auto attn = nn::AttentionOptions().setHeads(c.heads).setCausal(true);
    x = x + nn::multiHeadAttention(nn::layerNorm(x, "ln_1"), "attn", attn);
    x = x + nn::mlp(nn::layerNorm(x, "ln_2"), 4 * c.dim, "mlp");
  }
  x = nn::layerNorm(x, "ln_f");
  g.output("logits", x.matmul(wte, false, /*transposeB=*/true));
  return g.finish();
}

Module buildBert(const std::string &name, const BertConfig &c, uint64_t seed) {
  Graph g(name, seed);
  auto ids = g.input("input_ids", {c.batch, c.seq}, DType::i64);
  Tensor x;
  {
    Graph::Scope emb(g, "embeddings");
    auto words = nn::embedding(ids, c.vocab, c.dim, "word_embeddings");
    auto pos = g.param("position_embeddings.weight", {c.positions, c.dim});
    auto type = g.param("token_type_embeddings.weight", {2, c.dim});
    x = nn::layerNorm(words + pos.slice(0, 0, c.seq) + type.slice(0, 0, 1),
                      "LayerNorm", 1e-12);
  }
  for (int64_t i = 0; i < c.layers; ++i) {
    Graph::Scope layer(g, "layer" + std::to_string(i));
    auto attn = nn::AttentionOptions().setHeads(c.heads);
    x = nn::layerNorm(x + nn::multiHeadAttention(x, "attention", attn),
                      "attention_norm", 1e-12);
    auto h = nn::linear(x, c.ffn, "intermediate").gelu();
    x = nn::layerNorm(x + nn::linear(h, c.dim, "output"), "output_norm", 1e-12);
  }
  g.output("last_hidden_state", x);
  return g.finish();
}

Module buildVit(const std::string &name, const VitConfig &c, uint64_t seed) {
  Graph g(name, seed);
  auto image = g.input("pixel_values", {c.batch, 3, c.image, c.image});
  int64_t grid = c.image / c.patch, patches = grid * grid;
  auto p =
      nn::conv2d(image, c.dim, "patch_embed",
                 nn::Conv2dOptions().setKernel(c.patch).setStride(c.patch));
  auto x = p.reshape({c.batch, c.dim, patches}).transpose({0, 2, 1});
  auto cls =
      g.param("cls_token", {1, 1, c.dim}).broadcastTo({c.batch, 1, c.dim});
  x = dsl::concat({cls, x}, 1) + g.param("pos_embed", {1, patches + 1, c.dim});
  for (int64_t i = 0; i < c.layers; ++i) {
    Graph::Scope block(g, "blocks" + std::to_string(i));
    auto attn = nn::AttentionOptions().setHeads(c.heads);
    x = x +
        nn::multiHeadAttention(nn::layerNorm(x, "norm1", 1e-6), "attn", attn);
    x = x + nn::mlp(nn::layerNorm(x, "norm2", 1e-6), c.ffn, "mlp");
  }
  x = nn::layerNorm(x, "norm", 1e-6);
  auto clsOut = x.slice(1, 0, 1).reshape({c.batch, c.dim});
  g.output("logits", nn::linear(clsOut, c.classes, "head"));
  return g.finish();
}

} // namespace kiln::zoo
