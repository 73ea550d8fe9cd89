//===- tools/kiln-run/kiln-run.cpp - Load, run and time an artifact -------===//
//
// Runs a compiled artifact with inputs from .npy (or ONNX TensorProto .pb)
// files, seeded random values for inputs not given, writes outputs as .npy,
// and times repeated runs. Links only the runtime: this is what a deployment
// looks like. See `kiln-run --help`.
//
//===----------------------------------------------------------------------===//
#include "kiln/program.h"
#include "kiln/runtime.h"
#include "tools/common/Args.h"
#ifdef KILN_HAVE_ONNX_TENSOR
#include "runtime/onnx/OnnxTensor.h"
#endif
#ifdef KILN_RUN_HAS_COMPILER
#include "kiln/kiln.h"
#include "kiln/onnx.h"
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#ifdef __GLIBC__
#include <malloc.h> // malloc_trim, for --memory
#endif

namespace {

const char *kUsage = R"(kiln-run - run a compiled kiln artifact

Usage:
  kiln-run ARTIFACT [options]
  kiln-run MODEL.onnx|MODEL.mlir [options]   compile in process, then run
                                             (builds with the compiler only)

Options:
  --input NAME=FILE   value of input NAME from a .npy file or an ONNX
                      TensorProto .pb file (repeatable); inputs not given get
                      seeded random values (integers index-safe for gathers)
  --output-dir DIR    write each output as DIR/<output name>.npy
  --backend NAME      backend to run on: cpu or reference (default: the
                      target the artifact was compiled for)
  --bench N           after one warm-up run, time N runs; print median and min
  --profile           print per-kernel time, sorted, with share of total:
                      each kernel's median over --profile-runs warm runs
  --profile-runs N    warm runs --profile takes the median of (default 5)
  --seed N            seed of the random inputs (default 0)
  --input-shape NAME=DIMS
                      for .onnx models: shape of an input with dynamic dims,
                      e.g. pixels=1x3x224x224 (repeatable); an input given
                      with --input takes its file's shape without it
  --summary           print the model, its inputs and outputs with checksums
  --memory            (Linux only) print resident memory as one line, in KiB:
                        kiln-run: memory: start S KiB, loaded L KiB, peak P
                        KiB, peak extra E KiB (arena A KiB, weights W KiB,
                        inputs I KiB)
                      start: RSS (VmRSS) before the artifact is loaded;
                      loaded: RSS after loading and making the inputs, with
                      the heap's free pages handed back (malloc_trim); the
                      arena is zero-filled at load, so it is resident here
                      already and 'peak - loaded' would miss it; peak: the
                      high-water RSS (VmHWM, reset after loading so that
                      load-time transients do not count) over the runs made:
                      the first run, --profile's and --bench's; peak extra =
                      peak - start - weights - inputs: what loading and
                      running take beyond the model's own weights (params
                      and constants) and inputs: the arena, outputs, kernel
                      scratch, prepacked weights, kernel code paged in,
                      thread stacks. A .mlir/.onnx model is compiled in
                      process, so the compiler's memory counts too: measure
                      artifacts. (VmHWM, not getrusage's ru_maxrss: after
                      fork+exec the latter can report the parent's peak.)
  -h, --help          this text
)";

using Clock = std::chrono::steady_clock;

/// Upper bound for random integer input `buffer`: the smallest table it
/// indexes through a gather, so random token ids are valid.
int64_t indexBound(const kiln::Program &p, int64_t buffer) {
  int64_t bound = 0;
  for (const auto &k : p.kernels) {
    if (k.op != "gather" || k.inputs.size() != 2 || k.inputs[1] != buffer)
      continue;
    const auto &data = p.buffers[k.inputs[0]];
    int64_t axis = k.attrs.value("axis", int64_t(0));
    if (axis < 0)
      axis += static_cast<int64_t>(data.shape.size());
    if (axis >= 0 && axis < static_cast<int64_t>(data.shape.size())) {
      int64_t d = data.shape[axis];
      bound = bound == 0 ? d : std::min(bound, d);
    }
  }
  return bound > 0 ? bound : 2;
}

kiln::Tensor randomInput(const kiln::Executable::Signature &sig, int64_t bound,
                         std::mt19937_64 &rng) {
  std::vector<double> values(kiln::numElements(sig.shape));
  bool isFloat =
      sig.dtype == kiln::DType::f32 || sig.dtype == kiln::DType::f64 ||
      sig.dtype == kiln::DType::f16 || sig.dtype == kiln::DType::bf16;
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int64_t> ints(
      0, sig.dtype == kiln::DType::i1 ? 1 : bound - 1);
  for (auto &v : values)
    v = isFloat ? normal(rng) : static_cast<double>(ints(rng));
  return kiln::Tensor::fromDoubles(sig.dtype, sig.shape, values);
}

/// An artifact is loaded; a model file (.onnx, .mlir) is compiled in process
/// when this kiln-run was built with the compiler. An ONNX model's inputs
/// take the shapes of --input-shape, else of the values given (`inputs`,
/// ImportOptions::valueShapes), so that dynamic dims need no --input-shape
/// when a file gives them.
kiln::StatusOr<kiln::Executable>
loadOrCompile(const std::string &path, const std::string &backend,
              const std::vector<std::string> &inputShapes,
              const kiln::TensorMap &inputs) {
  std::string ext = std::filesystem::path(path).extension().string();
  if (ext != ".onnx" && ext != ".mlir")
    return kiln::Executable::load(path, backend);
#ifdef KILN_RUN_HAS_COMPILER
  kiln::StatusOr<kiln::Module> module = kiln::Status::error("no module");
  if (ext == ".onnx") {
    kiln::onnx::ImportOptions options;
    for (const std::string &spec : inputShapes) {
      auto shape = kiln::tools::parseInputShape(spec);
      if (!shape)
        return kiln::Status::error("--input-shape expects NAME=D0xD1x..., "
                                   "got '" +
                                   spec + "'");
      options.setInputShape(shape->first, shape->second);
    }
    for (const auto &[name, value] : inputs)
      options.setValueShape(name, value.shape());
    module = kiln::onnx::importModel(path, options);
  } else {
    module = kiln::Module::parseFile(path);
  }
  if (!module)
    return kiln::Status::error("'" + path + "': " + module.status().message());
  kiln::CompileOptions options;
  if (!backend.empty())
    options.setTarget(backend);
  auto exe = kiln::compile(*module, options);
  if (!exe)
    return kiln::Status::error("'" + path + "': " + exe.status().message());
  return exe;
#else
  (void)inputShapes;
  (void)inputs;
  return kiln::Status::error("'" + path +
                             "' is a model, not an artifact, and "
                             "this kiln-run was built without the compiler; "
                             "compile it with kilnc first");
#endif
}

kiln::StatusOr<kiln::Tensor> readTensorFile(const std::string &path) {
  auto ext = std::filesystem::path(path).extension().string();
  if (ext == ".pb") {
#ifdef KILN_HAVE_ONNX_TENSOR
    std::string name;
    return kiln::readOnnxTensorProto(path, &name);
#else
    return kiln::Status::error("this kiln-run was built without ONNX "
                               "TensorProto support: '" +
                               path + "'");
#endif
  }
  return kiln::readNpy(path);
}

/// A stable, order-sensitive checksum: sum of values and sum of |values|.
std::string checksum(const kiln::Tensor &t) {
  double sum = 0, abs = 0;
  for (double v : t.toDoubles()) {
    sum += v;
    abs += std::fabs(v);
  }
  std::ostringstream os;
  os << std::setprecision(9) << "sum=" << sum << " abs-sum=" << abs;
  return os.str();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Floating-point operations of a matmul or conv2d kernel, fused or not (2
/// per multiply-add; epilogue steps not counted), from its buffers' shapes;
/// 0 for other ops.
double kernelFlops(const kiln::Program &program, const kiln::KernelCall &k) {
  if (k.inputs.size() < 2 || k.outputs.empty())
    return 0;
  const auto &a = program.buffers[k.inputs[0]].shape;
  const auto &w = program.buffers[k.inputs[1]].shape;
  double outElems = static_cast<double>(
      kiln::numElements(program.buffers[k.outputs[0]].shape));
  if ((k.op == "matmul" || k.op == "fused_matmul") && a.size() >= 2) {
    bool ta = k.attrs.value("transpose_a", false);
    double K = static_cast<double>(ta ? a[a.size() - 2] : a.back());
    return 2 * outElems * K;
  }
  if ((k.op == "conv2d" || k.op == "fused_conv2d") && w.size() == 4)
    return 2 * outElems * static_cast<double>(w[1] * w[2] * w[3]);
  return 0;
}

/// Floating-point operations of an attention kernel: 2 * (D + Dv) per
/// (query, key) pair it uses (q.k and p.v), over the pairs a causal mask
/// leaves (bottom-right aligned; also with the causal_in_mask hint, whose
/// kernel visits more pairs in rows the padding masks entirely); 0 for
/// other ops or unexpected shapes.
double attentionFlops(const kiln::Program &program, const kiln::KernelCall &k) {
  if (k.op != "attention" || k.inputs.size() < 3)
    return 0;
  const auto &q = program.buffers[k.inputs[0]].shape;
  const auto &kShape = program.buffers[k.inputs[1]].shape;
  const auto &v = program.buffers[k.inputs[2]].shape;
  if (q.size() != 4 || kShape.size() != 4 || v.size() != 4)
    return 0;
  double queries = static_cast<double>(q[2]),
         keys = static_cast<double>(kShape[2]);
  double pairs = queries * keys;
  if (k.attrs.value("causal", false) ||
      k.attrs.value("causal_in_mask", false)) {
    pairs = 0;
    for (int64_t i = 0; i < q[2]; ++i)
      pairs += std::clamp<double>(static_cast<double>(i) + keys - queries + 1,
                                  0, keys);
  }
  return 2 * static_cast<double>(q[0] * q[1]) * pairs *
         static_cast<double>(q[3] + v[3]);
}

/// A "Vm..." field of /proc/self/status in KiB (VmRSS: resident now, VmHWM:
/// resident peak since start or the last reset); -1 where there is none.
int64_t procStatusKiB(const std::string &field) {
#ifdef __linux__
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.compare(0, field.size() + 1, field + ":") == 0)
      return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10);
#else
  (void)field;
#endif
  return -1;
}

/// Resets VmHWM to the current RSS (Linux >= 4.0); false where it cannot.
bool resetPeakRss() {
#ifdef __linux__
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
#else
  return false;
#endif
}

std::string ms(double seconds) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(3) << seconds * 1e3 << " ms";
  return os.str();
}

} // namespace

int main(int argc, char **argv) {
  kiln::tools::Args args(
      "kiln-run",
      {"--output-dir", "--backend", "--bench", "--seed", "--profile-runs"},
      {"-h", "--help", "--profile", "--summary", "--memory"},
      {"--input", "--input-shape"});
  if (!args.parse(argc, argv))
    return args.usageError(args.error());
  if (args.has("-h") || args.has("--help")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.positional().size() != 1)
    return args.usageError(args.positional().empty()
                               ? "no artifact given"
                               : "expected one artifact, got " +
                                     std::to_string(args.positional().size()));
  auto bench = args.getInt("--bench", 0);
  auto seed = args.getInt("--seed", 0);
  auto profileRuns = args.getInt("--profile-runs", 5);
  if (!bench || !seed || !profileRuns)
    return args.usageError(args.error());
  if (*bench < 0)
    return args.usageError("--bench must be >= 0");
  if (*profileRuns < 1)
    return args.usageError("--profile-runs must be >= 1");
  if (args.has("--profile-runs") && !args.has("--profile"))
    return args.usageError("--profile-runs applies with --profile only");

  const std::string path = args.positional().front();
  if (args.has("--input-shape") &&
      std::filesystem::path(path).extension() != ".onnx")
    return args.usageError("--input-shape applies to .onnx models only");
  const bool memory = args.has("--memory");
  int64_t rssStart = memory ? procStatusKiB("VmRSS") : 0;
  if (memory && rssStart < 0) {
    std::cerr << "kiln-run: error: --memory needs /proc/self/status (Linux "
                 "only), which cannot be read here\n";
    return 1;
  }
  // Inputs: from files where given, random otherwise. An ONNX model's
  // files are read before it is compiled (its dynamic dims take their
  // shapes); an artifact's after its input names are checked.
  std::vector<std::pair<std::string, std::string>> files;
  for (const std::string &spec : args.all("--input")) {
    auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0)
      return args.usageError("--input expects NAME=FILE, got '" + spec + "'");
    std::string name = spec.substr(0, eq);
    for (const auto &file : files)
      if (file.first == name)
        return args.usageError("input '" + name + "' is given twice");
    files.emplace_back(name, spec.substr(eq + 1));
  }
  kiln::TensorMap inputs;
  auto readInputs = [&]() -> bool {
    for (const auto &[name, file] : files) {
      if (inputs.count(name))
        continue;
      auto t = readTensorFile(file);
      if (!t) {
        std::cerr << "kiln-run: error: input '" << name
                  << "': " << t.status().message() << "\n";
        return false;
      }
      inputs[name] = *t;
    }
    return true;
  };
  if (std::filesystem::path(path).extension() == ".onnx" && !readInputs())
    return 1;
  auto exe = loadOrCompile(path, args.get("--backend", ""),
                           args.all("--input-shape"), inputs);
  if (!exe) {
    std::cerr << "kiln-run: error: " << exe.status().message() << "\n";
    return 1;
  }
  auto signature = exe->inputSignature();
  for (const auto &file : files) {
    bool known = std::any_of(signature.begin(), signature.end(),
                             [&](auto &s) { return s.name == file.first; });
    if (!known) {
      std::string names;
      for (auto &s : signature)
        names += (names.empty() ? "" : ", ") + s.name;
      std::cerr << "kiln-run: error: the model has no input '" << file.first
                << "'; its inputs are: " << names << "\n";
      return 1;
    }
  }
  if (!readInputs())
    return 1;
  std::mt19937_64 rng(static_cast<uint64_t>(*seed));
  std::vector<std::string> randomNames;
  for (const auto &sig : signature) {
    if (inputs.count(sig.name))
      continue;
    int64_t buffer = -1;
    for (const auto &io : exe->program().inputs)
      if (io.name == sig.name)
        buffer = io.buffer;
    inputs[sig.name] =
        randomInput(sig, indexBound(exe->program(), buffer), rng);
    randomNames.push_back(sig.name);
  }

  int64_t rssLoaded = 0;
  if (memory) {
#ifdef __GLIBC__
    // Hand back the heap pages freed while loading and making the inputs
    // (the random values are drawn as doubles first), so that they do not
    // count as the runs' memory.
    malloc_trim(0);
#endif
    rssLoaded = procStatusKiB("VmRSS");
    if (!resetPeakRss())
      std::cerr << "kiln-run: warning: cannot reset the peak RSS "
                   "(/proc/self/clear_refs); the peak includes loading\n";
  }

  kiln::RunOptions runOptions;
  runOptions.profile = args.has("--profile");
  auto t0 = Clock::now();
  auto outputs = exe->run(inputs, runOptions);
  double first = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!outputs) {
    std::cerr << "kiln-run: error: " << outputs.status().message() << "\n";
    return 1;
  }

  if (args.has("--summary")) {
    const auto &p = exe->program();
    int64_t params = 0;
    for (const auto &b : p.buffers)
      if (b.kind == kiln::BufferKind::param)
        params += kiln::numElements(b.shape);
    std::cout << "kiln-run: model '" << p.name << "' on " << exe->backend()
              << ": " << params << " parameters, " << p.kernels.size()
              << " kernels, arena " << p.arenaBytes << " bytes\n";
    for (const auto &sig : signature)
      std::cout << "  input  " << sig.name << ": " << kiln::dtypeName(sig.dtype)
                << " " << kiln::shapeToString(sig.shape)
                << (std::find(randomNames.begin(), randomNames.end(),
                              sig.name) != randomNames.end()
                        ? " (random, seed " + std::to_string(*seed) + ")"
                        : "")
                << "\n";
    for (const auto &[name, t] : *outputs)
      std::cout << "  output " << name << ": " << kiln::dtypeName(t.dtype())
                << " " << kiln::shapeToString(t.shape()) << " " << checksum(t)
                << "\n";
    std::cout << "  latency (first run): " << ms(first) << "\n";
  }

  if (args.has("--output-dir")) {
    std::filesystem::path dir = args.get("--output-dir");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      std::cerr << "kiln-run: error: cannot create '" << dir.string()
                << "': " << ec.message() << "\n";
      return 1;
    }
    for (const auto &[name, t] : *outputs) {
      // Output names come from the artifact: never let one leave the folder.
      if (name.empty() || name == "." || name == ".." ||
          name.find('/') != std::string::npos ||
          name.find('\\') != std::string::npos) {
        std::cerr << "kiln-run: error: output name '" << name
                  << "' is not a valid file name; not writing it\n";
        return 1;
      }
      auto file = (dir / (name + ".npy")).string();
      if (auto st = kiln::writeNpy(file, t); !st) {
        std::cerr << "kiln-run: error: " << st.message() << "\n";
        return 1;
      }
    }
    std::cout << "kiln-run: wrote " << outputs->size() << " output(s) to "
              << dir.string() << "/\n";
  }

  if (runOptions.profile) {
    // Profile warm runs (the first one pays for thread start-up and for
    // touching the arena's pages), each kernel's median over them: one run
    // on a shared machine can be several times too slow in places.
    std::vector<std::vector<double>> seconds;
    for (int64_t r = 0; r < *profileRuns; ++r) {
      if (auto again = exe->run(inputs, runOptions); !again) {
        std::cerr << "kiln-run: error: " << again.status().message() << "\n";
        return 1;
      }
      seconds.resize(exe->lastProfile().size());
      for (size_t i = 0; i < seconds.size(); ++i)
        seconds[i].push_back(exe->lastProfile()[i].seconds);
    }
    const auto &program = exe->program();
    struct Row {
      kiln::KernelTiming timing;
      double flops;
    };
    std::vector<Row> prof;
    double total = 0, gemmFlops = 0, gemmSeconds = 0;
    for (size_t i = 0; i < exe->lastProfile().size(); ++i) {
      kiln::KernelTiming k = exe->lastProfile()[i];
      std::vector<double> &runs = seconds[i];
      std::sort(runs.begin(), runs.end());
      size_t middle = runs.size() / 2;
      k.seconds = runs.size() % 2 ? runs[middle]
                                  : (runs[middle - 1] + runs[middle]) / 2;
      double flops = kernelFlops(program, program.kernels[i]);
      // Attention's rate is shown per kernel, but its FLOPs stay out of the
      // matmul/conv2d summary below.
      double attention = attentionFlops(program, program.kernels[i]);
      prof.push_back({k, flops > 0 ? flops : attention});
      total += k.seconds;
      if (flops > 0) {
        gemmFlops += flops;
        gemmSeconds += k.seconds;
      }
    }
    std::sort(prof.begin(), prof.end(), [](auto &a, auto &b) {
      return a.timing.seconds > b.timing.seconds;
    });
    std::cout << "kiln-run: profile (" << prof.size() << " kernels, "
              << ms(total) << " total, median of " << *profileRuns
              << " warm run" << (*profileRuns == 1 ? "" : "s") << ")\n";
    // Columns as wide as their longest entry, so no name runs into the next.
    size_t opWidth = 4, implWidth = 6;
    for (const auto &row : prof) {
      opWidth = std::max(opWidth, row.timing.op.size() + 2);
      implWidth = std::max(implWidth, row.timing.impl.size() + 2);
    }
    int opW = static_cast<int>(opWidth), implW = static_cast<int>(implWidth);
    std::cout << "  " << std::left << std::setw(opW) << "op" << std::setw(12)
              << "time" << std::setw(8) << "share" << std::setw(10) << "GFLOP/s"
              << std::setw(implW) << "impl"
              << "location\n";
    for (auto &row : prof) {
      const auto &k = row.timing;
      std::ostringstream rate;
      if (row.flops > 0 && k.seconds > 0)
        rate << std::fixed << std::setprecision(1)
             << row.flops / k.seconds / 1e9;
      std::cout << "  " << std::left << std::setw(opW) << k.op << std::setw(12)
                << ms(k.seconds) << std::setw(8) << std::fixed
                << std::setprecision(1)
                << (total > 0 ? 100 * k.seconds / total : 0.0) << std::setw(10)
                << rate.str() << std::setw(implW) << k.impl << k.loc << "\n";
    }
    if (gemmSeconds > 0)
      std::cout << "kiln-run: matmul/conv2d: " << std::fixed
                << std::setprecision(3) << gemmFlops / 1e9 << " GFLOP in "
                << ms(gemmSeconds) << ", " << std::setprecision(1)
                << gemmFlops / gemmSeconds / 1e9 << " GFLOP/s\n";
    size_t winograd = 0;
    for (const auto &row : prof)
      winograd += row.timing.impl.find("(winograd)") != std::string::npos;
    if (winograd)
      std::cout << "kiln-run: " << winograd
                << " convolution(s) ran Winograd kernels; their GFLOP/s "
                   "count a direct convolution's FLOPs (Winograd does "
                   "2.25-4x fewer multiplications)\n";
    std::vector<std::string> fallbacks;
    for (const auto &k : exe->kernelImpls())
      if (k.fallback)
        fallbacks.push_back(k.op + (k.loc.empty() ? "" : " (" + k.loc + ")"));
    std::cout << "kiln-run: fallback to reference: " << fallbacks.size()
              << " kernel" << (fallbacks.size() == 1 ? "" : "s");
    for (size_t i = 0; i < fallbacks.size(); ++i)
      std::cout << (i ? ", " : ": ") << fallbacks[i];
    std::cout << "\n";
    size_t atLoad = 0;
    for (const auto &k : exe->kernelImpls())
      atLoad += k.atLoad;
    if (atLoad)
      std::cout << "kiln-run: computed once at load (they read only "
                   "weights): "
                << atLoad << " kernel" << (atLoad == 1 ? "" : "s")
                << ", listed with no time\n";
  }

  if (*bench > 0) {
    std::vector<double> times;
    for (long long i = 0; i < *bench; ++i) {
      auto s = Clock::now();
      auto r = exe->run(inputs);
      times.push_back(std::chrono::duration<double>(Clock::now() - s).count());
      if (!r) {
        std::cerr << "kiln-run: error: " << r.status().message() << "\n";
        return 1;
      }
    }
    std::cout << "kiln-run: " << *bench << " runs on " << exe->backend()
              << ": median " << ms(median(times)) << ", min "
              << ms(*std::min_element(times.begin(), times.end())) << "\n";
  }

  if (memory) {
    int64_t peak = procStatusKiB("VmHWM");
    int64_t weightBytes = 0, inputBytes = 0;
    for (const auto &[name, t] : exe->weights())
      weightBytes += static_cast<int64_t>(t.byteSize());
    for (const auto &[name, t] : inputs)
      inputBytes += static_cast<int64_t>(t.byteSize());
    int64_t weights = weightBytes / 1024, in = inputBytes / 1024;
    std::cout << "kiln-run: memory: start " << rssStart << " KiB, loaded "
              << rssLoaded << " KiB, peak " << peak << " KiB, peak extra "
              << peak - rssStart - weights - in << " KiB (arena "
              << exe->program().arenaBytes / 1024 << " KiB, weights " << weights
              << " KiB, inputs " << in << " KiB)\n";
  }
  return 0;
}
