//===- tests/common/ZooInputs.h - Seeded inputs for zoo models --*- C++ -*-===//
//
// Random inputs for the tiny zoo models in tests: normal floats, and integer
// ids below 512 (the tiny models' vocabulary size).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TESTS_COMMON_ZOOINPUTS_H
#define KILN_TESTS_COMMON_ZOOINPUTS_H

#include "kiln/runtime.h"

#include <random>

namespace kiln::test {

inline TensorMap randomInputs(const Executable &exe, uint32_t seed) {
  std::mt19937 rng(seed);
  TensorMap in;
  for (const auto &sig : exe.inputSignature()) {
    Tensor t = Tensor::zeros(sig.dtype, sig.shape);
    for (int64_t i = 0; i < t.numElements(); ++i) {
      if (sig.dtype == DType::f32)
        t.dataAs<float>()[i] = std::normal_distribution<float>()(rng);
      else if (sig.dtype == DType::i64)
        t.dataAs<int64_t>()[i] = rng() % 512;
    }
    in[sig.name] = t;
  }
  return in;
}

} // namespace kiln::test

#endif // KILN_TESTS_COMMON_ZOOINPUTS_H
