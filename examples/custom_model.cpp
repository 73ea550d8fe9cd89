//===- examples/custom_model.cpp - Build, compile, run and save a model ---===//
//
// The whole public API in one page: a small transformer block written with the
// DSL, compiled in process for the reference backend, run on an input, and
// saved as an artifact that examples/run_artifact.cpp (which links only the
// runtime) loads back.
//
//   custom_model [ARTIFACT]      (default: custom_model.kiln)
//
//===----------------------------------------------------------------------===//
#include "kiln/kiln.h"

#include <iostream>

int main(int argc, char **argv) {
  std::string artifact = argc > 1 ? argv[1] : "custom_model.kiln";

  // 1. Model code: a pre-LN transformer block over [batch, seq, dim].
  kiln::dsl::Graph g("block");
  auto x = g.input("x", {1, 8, 32});
  auto attn = kiln::nn::AttentionOptions().setHeads(4).setCausal(true);
  auto h = x + kiln::nn::multiHeadAttention(kiln::nn::layerNorm(x, "ln1"),
                                            "attn", attn);
  auto y = h + kiln::nn::mlp(kiln::nn::layerNorm(h, "ln2"), 128, "mlp");
  g.output("y", y);
  kiln::Module module = g.finish();

  // 2. Compile in process (JIT) and run.
  auto exe =
      kiln::compile(module, kiln::CompileOptions().setTarget("reference"));
  if (!exe) {
    std::cerr << "compile failed: " << exe.status().message() << "\n";
    return 1;
  }
  std::vector<float> values(8 * 32);
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = static_cast<float>(i % 7) - 3.0f;
  auto out = exe->run({{"x", kiln::Tensor::fromFloats({1, 8, 32}, values)}});
  if (!out) {
    std::cerr << "run failed: " << out.status().message() << "\n";
    return 1;
  }
  const kiln::Tensor &result = out->at("y");
  double sum = 0;
  for (double v : result.toDoubles())
    sum += v;
  std::cout << "y: " << kiln::shapeToString(result.shape()) << " sum " << sum
            << "\n";

  // 3. Save the artifact for ahead-of-time deployment.
  if (auto st = exe->save(artifact); !st) {
    std::cerr << "save failed: " << st.message() << "\n";
    return 1;
  }
  std::cout << "saved " << artifact << "\n";
  return 0;
}
