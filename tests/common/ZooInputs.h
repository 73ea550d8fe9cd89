//===- tests/common/ZooInputs.h - Seeded inputs for zoo models --*- C++ -*-===//
//
// Random inputs for the tiny zoo models in tests: normal floats, and integer
// ids below 512 (the tiny models' vocabulary size); and the comparison of two
// Executables' outputs on such inputs.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TESTS_COMMON_ZOOINPUTS_H
#define KILN_TESTS_COMMON_ZOOINPUTS_H

#include "kiln/runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
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

/// How far an output element may be from the expected value `want`, given
/// the largest |value| of that expected output.
using Tolerance = std::function<double(double want, double largest)>;

/// Runs `want` and then `got` on the same seeded random inputs; every output
/// must have the expected shape and each element be within `tolerance`.
inline void expectSameOutputs(Executable &got, Executable &want, uint32_t seed,
                              const Tolerance &tolerance,
                              const std::string &what = "") {
  TensorMap in = randomInputs(got, seed);
  auto expected = want.run(in);
  ASSERT_TRUE(expected) << expected.status().message();
  auto actual = got.run(in);
  ASSERT_TRUE(actual) << actual.status().message();
  for (const auto &[name, w] : *expected) {
    const Tensor &g = actual->at(name);
    ASSERT_EQ(g.shape(), w.shape()) << what << " " << name;
    auto gv = g.toDoubles(), wv = w.toDoubles();
    double largest = 0;
    for (double v : wv)
      largest = std::max(largest, std::fabs(v));
    for (size_t i = 0; i < gv.size(); ++i)
      ASSERT_NEAR(gv[i], wv[i], tolerance(wv[i], largest))
          << what << " " << name << "[" << i << "]";
  }
}

} // namespace kiln::test

#endif // KILN_TESTS_COMMON_ZOOINPUTS_H
