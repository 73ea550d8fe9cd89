//===- TestUtil.h - Helpers for runtime tests ------------------*- C++ -*-===//
//
// Builds Programs by hand (the compiler is not needed): one-kernel Programs,
// or several calls with ProgramAssembler; makes tensors of any dtype from
// doubles.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TESTS_UNIT_RUNTIME_TESTUTIL_H
#define KILN_TESTS_UNIT_RUNTIME_TESTUTIL_H

#include "Half.h"
#include "kiln/program.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace kiln::test {

/// A tensor of `dtype` holding `values` (converted; f16/bf16 rounded).
inline Tensor make(DType dtype, std::vector<int64_t> shape,
                   const std::vector<double> &values) {
  EXPECT_EQ(static_cast<int64_t>(values.size()), numElements(shape));
  return Tensor::fromDoubles(dtype, std::move(shape), values);
}

/// `n` deterministic uniform values in [lo, hi).
inline std::vector<double> randomValues(int64_t n, double lo, double hi,
                                        unsigned seed = 1) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double &x : v)
    x = dist(gen);
  return v;
}

/// Values as the tensor's dtype would hold them (rounded), for references.
inline std::vector<double> rounded(DType dtype, std::vector<int64_t> shape,
                                   const std::vector<double> &values) {
  return make(dtype, std::move(shape), values).toDoubles();
}

/// A Program with inputs in0..inN-1, one kernel, and output "out".
inline Program singleKernelProgram(const std::string &op,
                                   const std::vector<Tensor> &inputs,
                                   const nlohmann::json &attrs, DType outType,
                                   const std::vector<int64_t> &outShape) {
  Program p;
  p.name = "test_" + op;
  KernelCall k;
  k.op = op;
  k.attrs = attrs;
  k.loc = "test:" + op;
  for (size_t i = 0; i < inputs.size(); ++i) {
    BufferDesc b;
    b.id = static_cast<int64_t>(i);
    b.dtype = inputs[i].dtype();
    b.shape = inputs[i].shape();
    b.kind = BufferKind::input;
    b.name = "in" + std::to_string(i);
    p.buffers.push_back(b);
    p.inputs.push_back({b.name, b.id});
    k.inputs.push_back(b.id);
  }
  BufferDesc out;
  out.id = static_cast<int64_t>(inputs.size());
  out.dtype = outType;
  out.shape = outShape;
  out.kind = BufferKind::output;
  out.name = "out";
  p.buffers.push_back(out);
  p.outputs.push_back({"out", out.id});
  k.outputs.push_back(out.id);
  p.kernels.push_back(k);
  return p;
}

/// Assembles a Program buffer by buffer and call by call, for tests of more
/// than one kernel: every arena buffer gets its own 64-byte aligned slot (no
/// reuse), inputs and outputs are registered under their names.
class ProgramAssembler {
public:
  explicit ProgramAssembler(std::string name) {
    program_.name = std::move(name);
  }
  int64_t input(const std::string &name, DType dtype,
                std::vector<int64_t> shape) {
    int64_t id = add(BufferKind::input, name, dtype, std::move(shape));
    program_.inputs.push_back({name, id});
    return id;
  }
  /// An input with the dtype and shape of `like`.
  int64_t input(const std::string &name, const Tensor &like) {
    return input(name, like.dtype(), like.shape());
  }
  int64_t param(const std::string &name, DType dtype,
                std::vector<int64_t> shape) {
    return add(BufferKind::param, name, dtype, std::move(shape));
  }
  int64_t arena(DType dtype, std::vector<int64_t> shape) {
    int64_t id = add(BufferKind::arena, "", dtype, std::move(shape));
    BufferDesc &b = program_.buffers[id];
    b.offset = program_.arenaBytes;
    program_.arenaBytes += (b.byteSize() + 63) / 64 * 64;
    program_.intermediateBytes += b.byteSize();
    return id;
  }
  int64_t output(const std::string &name, DType dtype,
                 std::vector<int64_t> shape) {
    int64_t id = add(BufferKind::output, name, dtype, std::move(shape));
    program_.outputs.push_back({name, id});
    return id;
  }
  /// Appends a call of `op` reading `inputs` and writing `output`.
  void call(std::string op, std::vector<int64_t> inputs, int64_t output,
            nlohmann::json attrs = nlohmann::json::object(),
            std::string loc = "") {
    program_.kernels.push_back({std::move(op),
                                std::move(inputs),
                                {output},
                                std::move(attrs),
                                std::move(loc)});
  }
  const Program &program() const { return program_; }
  size_t bufferCount() const { return program_.buffers.size(); }
  size_t kernelCount() const { return program_.kernels.size(); }

private:
  int64_t add(BufferKind kind, std::string name, DType dtype,
              std::vector<int64_t> shape) {
    BufferDesc b;
    b.id = static_cast<int64_t>(program_.buffers.size());
    b.dtype = dtype;
    b.shape = std::move(shape);
    b.kind = kind;
    b.name = std::move(name);
    program_.buffers.push_back(b);
    return b.id;
  }

  Program program_;
};

/// Runs one op on the reference backend.
inline StatusOr<Tensor> runOp(const std::string &op,
                              const std::vector<Tensor> &inputs,
                              const nlohmann::json &attrs, DType outType,
                              const std::vector<int64_t> &outShape) {
  auto exe = Executable::create(
      singleKernelProgram(op, inputs, attrs, outType, outShape), {});
  if (!exe)
    return exe.status();
  TensorMap in;
  for (size_t i = 0; i < inputs.size(); ++i)
    in["in" + std::to_string(i)] = inputs[i];
  auto out = exe->run(in);
  if (!out)
    return out.status();
  return out->at("out");
}

/// Like runOp but fails the test on error and returns doubles.
inline std::vector<double> runOk(const std::string &op,
                                 const std::vector<Tensor> &inputs,
                                 const nlohmann::json &attrs, DType outType,
                                 const std::vector<int64_t> &outShape) {
  auto r = runOp(op, inputs, attrs, outType, outShape);
  EXPECT_TRUE(r.isOk()) << op << ": " << r.status().message();
  if (!r)
    return {};
  EXPECT_EQ(r->dtype(), outType);
  EXPECT_EQ(r->shape(), outShape);
  return r->toDoubles();
}

/// Element-wise comparison with |got - want| <= atol + rtol * |want|; NaNs
/// must match NaNs and infinities must match exactly.
inline void expectClose(const std::vector<double> &got,
                        const std::vector<double> &want, double atol,
                        double rtol, const std::string &what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " at " << i;
      continue;
    }
    if (std::isinf(want[i])) {
      EXPECT_EQ(got[i], want[i]) << what << " at " << i;
      continue;
    }
    EXPECT_NEAR(got[i], want[i], atol + rtol * std::fabs(want[i]))
        << what << " at " << i;
  }
}

} // namespace kiln::test

#endif // KILN_TESTS_UNIT_RUNTIME_TESTUTIL_H
