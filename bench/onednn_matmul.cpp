//===- bench/onednn_matmul.cpp - Raw oneDNN f32 matmul throughput ---------===//
//
// The practical ceiling for GEMM-bound models on this machine: oneDNN's own
// f32 matmul on the shapes transformer layers use, with weights in the layout
// oneDNN picks (as Kiln's cpu backend prepacks them). Prints one line per
// shape: "onednn-matmul MxKxN GFLOP/s". Threads follow OMP_NUM_THREADS.
//
//===----------------------------------------------------------------------===//
#include "oneapi/dnnl/dnnl.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

int main() {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  // engine -> memory descs -> primitive desc -> primitive -> execute.
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const int64_t shapes[][3] = {
      {1024, 1024, 1024}, {128, 768, 3072}, {128, 3072, 768}, {1024, 768, 768}};
  for (const auto &s : shapes) {
    const int64_t M = s[0], K = s[1], N = s[2];
    memory::desc a({M, K}, dt::f32, tag::ab), c({M, N}, dt::f32, tag::ab);
    memory::desc bAny({K, N}, dt::f32, tag::any),
        bPlain({K, N}, dt::f32, tag::ab);
    matmul::primitive_desc pd(matmul::desc(a, bAny, c), primitive_attr(), eng);
    matmul prim(pd);
    memory am(a, eng), cm(c, eng), bPlainMem(bPlain, eng),
        bm(pd.weights_desc(), eng);
    std::fill_n(static_cast<float *>(am.get_data_handle()), M * K, 0.5f);
    std::fill_n(static_cast<float *>(bPlainMem.get_data_handle()), K * N,
                0.25f);
    reorder(bPlainMem, bm).execute(strm, bPlainMem, bm); // prepack once
    auto run = [&] {
      prim.execute(
          strm,
          {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
      strm.wait();
    };
    run(); // warm-up
    std::vector<double> t;
    for (int i = 0; i < 20; ++i) {
      auto s0 = std::chrono::steady_clock::now();
      run();
      t.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - s0)
              .count());
    }
    std::sort(t.begin(), t.end());
    double gflops = 2.0 * M * K * N / t[t.size() / 2] / 1e9;
    std::printf("onednn-matmul %lldx%lldx%lld %.1f GFLOP/s\n", (long long)M,
                (long long)K, (long long)N, gflops);
  }
  return 0;
}
