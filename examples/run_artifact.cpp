//===- examples/run_artifact.cpp - Deploy: load an artifact and run it ----===//
//
// Links only the kiln runtime (no MLIR): loads an artifact, prints its
// signature, runs it on zero inputs and prints each output's shape and sum.
//
//   run_artifact ARTIFACT
//
//===----------------------------------------------------------------------===//
#include "kiln/runtime.h"

#include <iostream>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::cerr << "usage: run_artifact ARTIFACT\n";
    return 2;
  }
  auto exe = kiln::Executable::load(argv[1]);
  if (!exe) {
    std::cerr << "error: " << exe.status().message() << "\n";
    return 1;
  }
  kiln::TensorMap inputs;
  for (const auto &in : exe->inputSignature()) {
    std::cout << "input  " << in.name << ": " << kiln::dtypeName(in.dtype)
              << " " << kiln::shapeToString(in.shape) << "\n";
    inputs[in.name] = kiln::Tensor::zeros(in.dtype, in.shape);
  }
  auto outputs = exe->run(inputs);
  if (!outputs) {
    std::cerr << "error: " << outputs.status().message() << "\n";
    return 1;
  }
  for (const auto &[name, t] : *outputs) {
    double sum = 0;
    for (double v : t.toDoubles())
      sum += v;
    std::cout << "output " << name << ": " << kiln::shapeToString(t.shape())
              << " sum " << sum << "\n";
  }
  return 0;
}
