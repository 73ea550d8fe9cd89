//===- tools/kilnc/kilnc.cpp - The kiln ahead-of-time compiler ------------===//
//
// Compiles a zoo model or a .mlir file to an artifact, or prints the IR
// before/after the pipeline or the Program. See `kilnc --help`.
//
//===----------------------------------------------------------------------===//
#include "kiln/kiln.h"
#include "kiln/onnx.h"
#include "tools/common/Args.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

namespace {

const char *kUsage = R"(kilnc - the kiln ahead-of-time compiler

Usage:
  kilnc --model NAME [options]       compile a model of the zoo
  kilnc FILE.mlir [options]          compile kiln IR from a file
  kilnc MODEL.onnx [options]         import and compile an ONNX model
  kilnc --list-models                list the zoo

Options:
  --input-shape NAME=DIMS
                        ONNX input shape, e.g. pixels=1x3x224x224 (needed for
                        inputs with dynamic dims; repeatable)
  -o FILE               write the artifact here (default: <model>.kiln)
  --emit=KIND           artifact (default), mlir (IR after the pipeline),
                        mlir-input (IR before any pass), plan (the Program)
  --model NAME          zoo model (see --list-models)
  --batch N, --seq N    override the zoo config's batch size / sequence length
  --seed N              seed of the zoo's parameter initialization (default 0)
  --target NAME         backend to compile for: cpu (default) or reference
  --dump-ir-dir DIR     write the IR before and after every pass to DIR,
                        numbered, plus the Program as DIR/program.txt
  --random-weights      for .mlir input: initialize parameters with seeded
                        random values (there is no weight file yet)
  --debug-locations     print locations in emitted IR
  --no-fuse-epilogues   keep bias/activation/residual ops after matmul and
                        conv2d unfused (skip kiln-fuse-epilogues)
  --no-fuse-attention   keep attention as matmul/softmax/matmul (skip
                        kiln-fuse-attention)
  --no-raise-composites keep the op chains that spell out gelu and rms_norm
                        (skip kiln-raise-composites)
  --remarks             print every pass's remarks to stderr: each fused
                        block, and each candidate not fused with the reason
  --report              print the compile report: per pass how many blocks
                        were fused and why the others were not, and which
                        implementation runs each kernel on the target,
                        listing every fallback to the reference kernels
  -q, --quiet           no summary
  -h, --help            this text
)";

std::string humanBytes(double b) {
  const char *units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (b >= 1024 && u < 3) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

} // namespace

int main(int argc, char **argv) {
  kiln::tools::Args args("kilnc",
                         {"-o", "--emit", "--model", "--batch", "--seq",
                          "--seed", "--target", "--dump-ir-dir"},
                         {"-h", "--help", "--list-models", "--random-weights",
                          "--debug-locations", "--no-fuse-epilogues",
                          "--no-fuse-attention", "--no-raise-composites",
                          "--remarks", "--report", "-q", "--quiet"},
                         {"--input-shape"});
  if (!args.parse(argc, argv))
    return args.usageError(args.error());
  if (args.has("-h") || args.has("--help")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.has("--list-models")) {
    for (auto &[name, desc] : kiln::zoo::models())
      std::cout << "  " << name
                << std::string(14 - std::min<size_t>(13, name.size()), ' ')
                << desc << "\n";
    return 0;
  }
  bool quiet = args.has("-q") || args.has("--quiet");
  std::string emit = args.get("--emit", "artifact");
  if (emit != "artifact" && emit != "mlir" && emit != "mlir-input" &&
      emit != "plan")
    return args.usageError("--emit must be artifact, mlir, mlir-input or plan; "
                           "got '" +
                           emit + "'");
  auto batch = args.getInt("--batch", 0);
  auto seq = args.getInt("--seq", 0);
  auto seed = args.getInt("--seed", 0);
  if (!batch || !seq || !seed)
    return args.usageError(args.error());
  if ((args.has("--batch") && *batch <= 0) || (args.has("--seq") && *seq <= 0))
    return args.usageError("--batch and --seq must be positive");

  bool fromZoo = args.has("--model");
  if (fromZoo == !args.positional().empty())
    return args.usageError(fromZoo ? "give either --model or an input file, "
                                     "not both"
                                   : "no input: give --model NAME or a .mlir "
                                     "file");
  if (args.positional().size() > 1)
    return args.usageError("more than one input file");
  if (!fromZoo && (args.has("--batch") || args.has("--seq")))
    return args.usageError("--batch and --seq apply to --model only; a .mlir "
                           "file has static shapes");
  if (fromZoo && args.has("--random-weights"))
    return args.usageError("--random-weights applies to .mlir input only; zoo "
                           "models initialize their own parameters");

  auto start = std::chrono::steady_clock::now();
  kiln::StatusOr<kiln::Module> module = kiln::Status::error("no module");
  std::string modelName, stem;
  if (fromZoo) {
    modelName = stem = args.get("--model");
    kiln::zoo::Options zo;
    zo.batch = *batch;
    zo.seq = *seq;
    zo.seed = static_cast<uint64_t>(*seed);
    module = kiln::zoo::build(modelName, zo);
  } else {
    std::string path = args.positional().front();
    std::string ext = std::filesystem::path(path).extension().string();
    if (ext == ".onnx") {
      kiln::onnx::ImportOptions io;
      for (const auto &spec : args.all("--input-shape")) {
        auto shape = kiln::tools::parseInputShape(spec);
        if (!shape)
          return args.usageError("--input-shape expects NAME=D0xD1x..., got '" +
                                 spec + "'");
        io.setInputShape(shape->first, shape->second);
      }
      module = kiln::onnx::importModel(path, io);
      stem = std::filesystem::path(path).stem().string();
      if (module)
        modelName = module->name();
    } else if (args.has("--input-shape")) {
      return args.usageError("--input-shape applies to .onnx input only");
    }
    if (ext == ".kiln")
      return args.usageError("'" + path +
                             "' is a compiled artifact; run it "
                             "with kiln-run");
    if (ext != ".onnx") {
      module = kiln::Module::parseFile(path);
      stem = std::filesystem::path(path).stem().string();
      if (module)
        modelName = module->name();
    }
  }
  if (!module) {
    std::cerr << "kilnc: error: " << module.status().message() << "\n";
    return 1;
  }
  // --emit of text goes to -o when given, else (or with -o -) to stdout.
  auto emitText = [&](const std::string &text) {
    if (!args.has("-o") || args.get("-o") == "-") {
      std::cout << text;
      return 0;
    }
    std::ofstream f(args.get("-o"), std::ios::binary);
    f << text;
    if (!f) {
      std::cerr << "kilnc: error: cannot write '" << args.get("-o") << "'\n";
      return 1;
    }
    return 0;
  };
  if (emit == "mlir-input")
    return emitText(module->toText(args.has("--debug-locations")));

  kiln::CompileOptions options;
  options.target = args.get("--target", "cpu");
  options.dumpIrDir = args.get("--dump-ir-dir");
  options.fuseEpilogues = !args.has("--no-fuse-epilogues");
  options.raiseComposites = !args.has("--no-raise-composites");
  options.fuseAttention = !args.has("--no-fuse-attention");
  if (args.has("--random-weights"))
    module->initializeMissingWeights(static_cast<uint64_t>(*seed));
  auto result = kiln::compileToProgram(*module, options);
  if (!result) {
    std::cerr << "kilnc: error: " << result.status().message() << "\n";
    return 1;
  }
  if (args.has("--remarks"))
    for (const auto &r : result->remarks)
      std::cerr << "kilnc: remark: " << r.pass << ": "
                << (r.location.empty() ? "" : r.location + ": ") << r.message
                << "\n";
  // The report needs the Program loaded on its target to name the kernels.
  auto printReport = [&]() -> int {
    if (!args.has("--report"))
      return 0;
    auto loaded = kiln::Executable::create(result->program, result->weights,
                                           options.target);
    if (!loaded) {
      std::cerr << "kilnc: error: " << loaded.status().message() << "\n";
      return 1;
    }
    std::cout << kiln::compileReport(*result, &*loaded);
    return 0;
  };
  if (emit == "mlir") {
    if (int rc = emitText(result->irAfterPipeline))
      return rc;
    return printReport();
  }
  if (emit == "plan")
    return emitText(result->program.toText());

  std::string out = args.get("-o", stem + ".kiln");
  if (out == "-") {
    std::cerr << "kilnc: error: the artifact is binary and is not written to "
                 "stdout; give -o a file name (-o - is for --emit=mlir, "
                 "mlir-input or plan)\n";
    return 1;
  }
  auto exe =
      kiln::Executable::create(result->program, result->weights,
                               "reference"); // saving only: no kernel prep
  if (!exe) {
    std::cerr << "kilnc: error: " << exe.status().message() << "\n";
    return 1;
  }
  if (auto st = exe->save(out); !st) {
    std::cerr << "kilnc: error: " << st.message() << "\n";
    return 1;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (!quiet) {
    const auto &p = result->program;
    std::error_code ec;
    auto fileSize = std::filesystem::file_size(out, ec);
    int64_t paramBytes = 0;
    for (const auto &b : p.buffers)
      if (b.kind == kiln::BufferKind::param)
        paramBytes += b.byteSize();
    double saved =
        p.intermediateBytes > p.arenaBytes
            ? 100.0 * (1.0 - double(p.arenaBytes) / double(p.intermediateBytes))
            : 0.0;
    std::cout << "kilnc: compiled '" << modelName << "' for " << options.target
              << " in " << std::fixed << std::setprecision(2) << seconds
              << " s\n"
              << "  parameters:   " << result->parameterCount << " ("
              << humanBytes(paramBytes) << ")\n"
              << "  kernels:      " << p.kernels.size() << "\n"
              << "  arena:        " << humanBytes(p.arenaBytes) << " ("
              << p.arenaBytes << " bytes; intermediates total "
              << humanBytes(p.intermediateBytes) << ", reuse saves "
              << std::setprecision(1) << saved << "%)\n"
              << "  artifact:     " << out << " (" << humanBytes(fileSize)
              << ")\n";
    if (!options.dumpIrDir.empty())
      std::cout << "  IR dumps:     " << options.dumpIrDir << "/\n";
  }
  return printReport();
}
