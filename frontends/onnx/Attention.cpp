//===- frontends/onnx/Attention.cpp - ONNX Attention -> kiln.attention ----===//
//
// The ONNX Attention op (opset 23; what torch.onnx.export writes for
// scaled_dot_product_attention at opset_version >= 23) maps onto
// kiln.attention directly:
//
//   - Q, K, V are [B, H, S, D] (4-D) or [B, S, H*D] (3-D, split into heads
//     with `q_num_heads` / `kv_num_heads`, and the result merged back);
//     fewer K/V heads than Q heads is grouped-query attention, as in kiln;
//   - `attn_mask`: boolean (true takes part) or additive, as kiln's mask;
//   - `scale` (default 1/sqrt(D)) becomes the op's scale;
//   - `softcap` c > 0 (applied to the scaled scores before the mask, as the
//     spec's reference does) becomes the op's softcap;
//   - `is_causal`: the spec aligns the triangle to the upper left. With
//     Sq == Sk that is kiln's `causal`; otherwise it becomes an explicit
//     boolean mask (key j visible to query i when j <= i).
//
// Reported as unsupported, naming the feature: a KV cache (past_key /
// past_value), nonpad_kv_seqlen, and the qk_matmul_output result.
// present_key / present_value without a cache are K and V themselves.
// A query whose keys are all masked out gives zeros (kiln.attention's rule).
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"

#include <limits>

namespace kiln::onnx_import {
namespace {

/// [B, S, H*D] -> [B, H, S, D].
mlir::Value splitHeads(NodeContext &n, mlir::Value x, int64_t heads,
                       const char *what, const char *attribute) {
  auto s = shapeOf(x);
  if (heads <= 0)
    n.fail(std::string("3-D ") + what + " needs the attribute " + attribute +
           " (its head count)");
  if (s[2] % heads != 0)
    n.fail(std::string("3-D ") + what + " of width " + std::to_string(s[2]) +
           " does not split into " + attribute + " = " + std::to_string(heads) +
           " heads");
  return n.transpose(n.reshape(x, {s[0], s[1], heads, s[2] / heads}),
                     {0, 2, 1, 3});
}

void attention(NodeContext &n) {
  if (n.hasInput(4) || n.hasInput(5))
    n.unsupported("Attention with a KV cache (past_key / past_value)");
  if (n.hasInput(6))
    n.unsupported("Attention with nonpad_kv_seqlen");
  if (n.outputUsed(3))
    n.unsupported("Attention's qk_matmul_output result");

  mlir::Value q = n.input(0), k = n.input(1), v = n.input(2);
  int64_t rank = n.rank(0);
  if (rank != 3 && rank != 4)
    n.fail("Attention needs 3-D or 4-D Q, got rank " + std::to_string(rank));
  if (n.rank(1) != rank || n.rank(2) != rank)
    n.fail("Attention needs Q, K and V of the same rank");
  if (rank == 3) {
    int64_t qHeads = n.attrInt("q_num_heads", 0);
    int64_t kvHeads = n.attrInt("kv_num_heads", 0);
    q = splitHeads(n, q, qHeads, "Q", "q_num_heads");
    k = splitHeads(n, k, kvHeads, "K", "kv_num_heads");
    v = splitHeads(n, v, kvHeads, "V", "kv_num_heads");
  }
  auto qs = shapeOf(q), ks = shapeOf(k);
  int64_t sq = qs[2], sk = ks[2];

  std::vector<mlir::NamedAttribute> attrs;
  if (n.hasAttr("scale"))
    attrs.push_back(n.f64Attr("scale", n.attrFloat("scale", 1.0)));
  // The spec's reference applies softcap only when it is positive.
  if (double softcap = n.attrFloat("softcap", 0.0); softcap > 0)
    attrs.push_back(n.f64Attr("softcap", softcap));
  mlir::Value mask = n.hasInput(3) ? n.input(3) : mlir::Value();
  if (n.attrInt("is_causal", 0)) {
    if (sq == sk) {
      attrs.push_back(n.boolAttr("causal", true));
    } else {
      // Upper-left aligned: key j is visible to query i when j <= i.
      mlir::Value causal =
          n.constantValue(host::triangle(sq, sk, 0, /*upper=*/false));
      if (!mask) {
        mask = causal;
      } else if (dtypeOf(mask) == DType::i1) {
        mask = n.where(causal, mask, n.scalar(0, DType::i1));
      } else {
        mask = n.binary(
            "kiln.add", mask,
            n.where(
                causal, n.scalarLike(0, mask),
                n.scalarLike(-std::numeric_limits<double>::infinity(), mask)));
      }
    }
  }
  std::vector<mlir::Value> operands = {q, k, v};
  if (mask)
    operands.push_back(mask);
  mlir::Value y = n.create("kiln.attention", operands, attrs);
  if (rank == 3) {
    auto ys = shapeOf(y);
    y = n.reshape(n.transpose(y, {0, 2, 1, 3}), {ys[0], ys[2], ys[1] * ys[3]});
  }
  n.setOutput(0, y);
  if (n.outputUsed(1))
    n.setOutput(1, k);
  if (n.outputUsed(2))
    n.setOutput(2, v);
}

} // namespace

void registerAttentionHandler(HandlerRegistry &r) {
  r.add("Attention", 23, attention);
}

} // namespace kiln::onnx_import
