//===- bench/attention_kernel.cpp - Fused vs unfused attention on the cpu -===//
//
// Times the cpu backend's attention kernel (cpu:flash_attention) against the
// unfused chain the model zoo writes, run as the cpu backend's own kernel
// calls: matmul(q, k^T) -> mul by scale -> [add causal mask] -> softmax ->
// matmul(p, v). f32, B=1, H=12, D=64 (GPT-2 small / BERT-base heads), causal
// and not, S in {512, ..., 8192} (or the S values given as arguments).
// Threads: KILN_NUM_THREADS, 2 when unset. Prints the median time of a few
// runs and GFLOP/s counted as 4*B*H*D per (query, key) pair the op uses
// (about half the pairs when causal), so both columns count the same work.
//
//   kiln-bench-attention-kernel [--reps N] [--mask] [--padded]
//                               [--fused-only] [--cpu-time] [--breakdown]
//                               [S...]
//
// --mask adds an additive [S, S] mask operand instead of `causal`, to time
// the general mask path; --padded instead times a causal mask combined with
// left padding as HF LLaMA builds it (the float minimum above the diagonal
// and on the first S/8 keys, one additive [S, S] mask that kiln-fuse-
// attention keeps whole) with the causal_in_mask hint ("pad-hint") and
// without it ("pad-whole", what the pass emitted before the hint); both
// count the causal pairs; --fused-only skips the unfused chain (for
// profiling the kernel alone); --cpu-time measures the process's CPU time
// instead of wall time, which other processes on a shared machine disturb
// less (meaningful with KILN_NUM_THREADS=1, for tuning); --breakdown also
// times each call of the unfused chain on its own.
//
//===----------------------------------------------------------------------===//
#include "backends/Backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include <time.h>

using namespace kiln;

namespace {

/// One kernel call prepared on the cpu backend over caller-owned buffers.
class Call {
public:
  Call(const std::string &op, nlohmann::json attrs,
       const std::vector<Tensor *> &inputs, Tensor *output) {
    call_.op = op;
    call_.attrs = std::move(attrs);
    call_.loc = "bench:" + op;
    PrepareContext pc;
    pc.call = &call_;
    auto desc = [](const Tensor &t) {
      BufferDesc b;
      b.dtype = t.dtype();
      b.shape = t.shape();
      return b;
    };
    for (Tensor *t : inputs) {
      pc.inputs.push_back(desc(*t));
      pc.weights.push_back(nullptr);
      ctx_.inputs.push_back({t->dtype(), t->shape(), t->data()});
    }
    pc.outputs.push_back(desc(*output));
    ctx_.outputs.push_back({output->dtype(), output->shape(), output->data()});
    ctx_.call = &call_;
    kernel_ = (*getBackend("cpu"))->prepare(pc);
  }
  void run() {
    Status s = kernel_->run(ctx_);
    if (!s) {
      std::fprintf(stderr, "%s: %s\n", call_.op.c_str(), s.message().c_str());
      std::exit(1);
    }
  }
  const std::string &impl() const { return kernel_->impl(); }

private:
  KernelCall call_;
  KernelContext ctx_;
  std::unique_ptr<PreparedKernel> kernel_;
};

Tensor randomTensor(std::vector<int64_t> shape, unsigned seed) {
  Tensor t = Tensor::zeros(DType::f32, std::move(shape));
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  float *p = t.dataAs<float>();
  for (int64_t i = 0; i < t.numElements(); ++i)
    p[i] = dist(gen);
  return t;
}

bool useCpuTime = false;

double now() {
  if (!useCpuTime)
    return std::chrono::duration<double>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

/// Median seconds of `reps` runs of each of fns, after one warm-up run;
/// the runs alternate between the functions, so that load from other
/// processes on a shared machine falls on all of them alike.
std::vector<double>
medianSeconds(int reps, const std::vector<std::function<void()>> &fns) {
  std::vector<std::vector<double>> times(fns.size());
  for (const auto &fn : fns)
    fn();
  for (int i = 0; i < reps; ++i)
    for (size_t f = 0; f < fns.size(); ++f) {
      double start = now();
      fns[f]();
      times[f].push_back(now() - start);
    }
  std::vector<double> medians;
  for (std::vector<double> &t : times) {
    std::sort(t.begin(), t.end());
    medians.push_back(t[t.size() / 2]);
  }
  return medians;
}

} // namespace

int main(int argc, char **argv) {
  setenv("KILN_NUM_THREADS", "2", /*overwrite=*/0);
  int reps = 5;
  bool withMask = false, padded = false, fusedOnly = false, breakdown = false;
  std::vector<int64_t> seqs;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--mask"))
      withMask = true;
    else if (!std::strcmp(argv[i], "--padded"))
      padded = true;
    else if (!std::strcmp(argv[i], "--fused-only"))
      fusedOnly = true;
    else if (!std::strcmp(argv[i], "--cpu-time"))
      useCpuTime = true;
    else if (!std::strcmp(argv[i], "--breakdown"))
      breakdown = true;
    else if (std::atoll(argv[i]) > 0)
      seqs.push_back(std::atoll(argv[i]));
    else {
      std::fprintf(stderr,
                   "usage: kiln-bench-attention-kernel [--reps N] [--mask] "
                   "[--padded] [--fused-only] [--cpu-time] [--breakdown] "
                   "[S...]\n");
      return 2;
    }
  }
  if (seqs.empty())
    seqs = {512, 1024, 2048, 4096, 8192};
  const int64_t B = 1, H = 12, D = 64;
  std::printf("attention f32 B=%lld H=%lld D=%lld, KILN_NUM_THREADS=%s, "
              "median of %d runs (%s time)\n",
              (long long)B, (long long)H, (long long)D,
              std::getenv("KILN_NUM_THREADS"), reps,
              useCpuTime ? "process CPU" : "wall");
  std::printf("%6s %-7s %12s %10s %12s %10s %8s\n", "S", "variant", "fused ms",
              "GFLOP/s", "unfused ms", "GFLOP/s", "speedup");
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t S : seqs) {
    Tensor q = randomTensor({B, H, S, D}, 1), k = randomTensor({B, H, S, D}, 2),
           v = randomTensor({B, H, S, D}, 3);
    Tensor out = Tensor::zeros(DType::f32, {B, H, S, D});
    Tensor outUnfused = Tensor::zeros(DType::f32, {B, H, S, D});
    // The unfused chain's two score-sized buffers (3.2 GB each at S=8192).
    Tensor scoresA, scoresB;
    if (!fusedOnly) {
      scoresA = Tensor::zeros(DType::f32, {B, H, S, S});
      scoresB = Tensor::zeros(DType::f32, {B, H, S, S});
    }
    Tensor scale = Tensor::fromFloats({1}, {1.0f / std::sqrt(float(D))});
    Tensor mask = Tensor::zeros(DType::f32, {S, S});
    std::vector<const char *> variants = {"full"};
    if (padded)
      variants.insert(variants.end(), {"pad-hint", "pad-whole"});
    else
      variants.push_back(withMask ? "mask" : "causal");
    const float lowest = std::numeric_limits<float>::lowest();
    for (const char *variant : variants) {
      bool causal = !std::strcmp(variant, "causal");
      bool hint = !std::strcmp(variant, "pad-hint");
      bool pad = hint || !std::strcmp(variant, "pad-whole");
      bool masked = pad || !std::strcmp(variant, "mask");
      float *pm = mask.dataAs<float>();
      for (int64_t i = 0; i < S; ++i)
        for (int64_t j = 0; j < S; ++j)
          pm[i * S + j] = causal   ? (j > i ? -inf : 0.0f)
                          : pad    ? (j > i || j < S / 8 ? lowest : 0.0f)
                          : masked ? ((i + j) % 7 ? 0.0f : -1e9f)
                                   : 0.0f;
      std::vector<Tensor *> fusedIn = {&q, &k, &v};
      if (masked)
        fusedIn.push_back(&mask);
      Call fused("attention", {{"causal", causal}, {"causal_in_mask", hint}},
                 fusedIn, &out);
      // matmul -> mul -> [add mask] -> softmax -> matmul, ping-ponging
      // between the two score buffers.
      std::vector<std::unique_ptr<Call>> chain;
      if (!fusedOnly) {
        Tensor *from = &scoresA, *to = &scoresB;
        chain.push_back(std::make_unique<Call>(
            "matmul",
            nlohmann::json{{"transpose_a", false}, {"transpose_b", true}},
            std::vector<Tensor *>{&q, &k}, from));
        chain.push_back(
            std::make_unique<Call>("mul", nlohmann::json::object(),
                                   std::vector<Tensor *>{from, &scale}, to));
        std::swap(from, to);
        if (causal || masked) {
          chain.push_back(
              std::make_unique<Call>("add", nlohmann::json::object(),
                                     std::vector<Tensor *>{from, &mask}, to));
          std::swap(from, to);
        }
        chain.push_back(
            std::make_unique<Call>("softmax", nlohmann::json{{"axis", -1}},
                                   std::vector<Tensor *>{from}, to));
        chain.push_back(std::make_unique<Call>(
            "matmul",
            nlohmann::json{{"transpose_a", false}, {"transpose_b", false}},
            std::vector<Tensor *>{to, &v}, &outUnfused));
      }
      if (S == seqs.front() && !causal && !masked) {
        std::printf("impls: fused %s; unfused", fused.impl().c_str());
        for (const auto &c : chain)
          std::printf(" %s", c->impl().c_str());
        std::printf("\n");
      }
      int runs = S >= 8192 ? std::max(3, reps / 2) : reps;
      std::vector<std::function<void()>> fns = {[&] { fused.run(); }};
      if (!fusedOnly)
        fns.push_back([&] {
          for (const auto &c : chain)
            c->run();
        });
      std::vector<double> medians = medianSeconds(runs, fns);
      double fusedSeconds = medians[0];
      double unfusedSeconds = fusedOnly ? NAN : medians[1];
      // Worst difference between the two outputs, as a sanity check.
      double worst = fusedOnly ? NAN : 0;
      for (int64_t i = 0; !fusedOnly && i < out.numElements(); ++i)
        worst =
            std::max(worst, double(std::fabs(out.dataAs<float>()[i] -
                                             outUnfused.dataAs<float>()[i])));
      double pairs = causal || pad ? double(S) * (S + 1) / 2 : double(S) * S;
      double flops = 4.0 * B * H * D * pairs;
      std::printf("%6lld %-7s %12.3f %10.1f %12.3f %10.1f %7.2fx  "
                  "(max |fused-unfused| %.1e)\n",
                  (long long)S, variant, fusedSeconds * 1e3,
                  flops / fusedSeconds / 1e9, unfusedSeconds * 1e3,
                  flops / unfusedSeconds / 1e9, unfusedSeconds / fusedSeconds,
                  worst);
      if (breakdown && !chain.empty()) {
        std::vector<std::function<void()>> calls;
        for (const auto &c : chain)
          calls.push_back([&c] { c->run(); });
        std::vector<double> each = medianSeconds(runs, calls);
        std::printf("%6s %-7s unfused calls:", "", "");
        for (size_t i = 0; i < chain.size(); ++i)
          std::printf(" %s %.1f ms%s", chain[i]->impl().c_str(), each[i] * 1e3,
                      i + 1 < chain.size() ? "," : "\n");
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
