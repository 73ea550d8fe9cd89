//===- kiln/program.h - The Program: kernels over a planned arena ---------===//
//
// A Program is what codegen produces and the runtime executes: a flat,
// topologically ordered list of kernel calls over buffers. Arena buffers have
// byte offsets into one planned arena; inputs, outputs, parameters and
// constants are bound by name. Its JSON form is stored in the artifact's
// safetensors metadata (see docs/artifact.md).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PROGRAM_H
#define KILN_PROGRAM_H

#include "kiln/runtime.h"

#include <nlohmann/json.hpp>

namespace kiln {

/// Version of the Program JSON and artifact layout. Bump on any change a
/// previous runtime could misread; load() refuses other versions.
inline constexpr int kProgramFormatVersion = 1;

enum class BufferKind { input, output, param, constant, arena };

const char *bufferKindName(BufferKind kind);

struct BufferDesc {
  int64_t id = 0;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  BufferKind kind = BufferKind::arena;
  /// Binding name for input/output/param/constant buffers.
  std::string name;
  /// Byte offset into the arena (arena buffers only; 64-byte aligned).
  int64_t offset = 0;

  int64_t byteSize() const { return numElements(shape) * dtypeSize(dtype); }
};

struct IOBinding {
  std::string name;
  int64_t buffer = 0;
};

struct KernelCall {
  /// Op name without the "kiln." prefix ("matmul"), or "copy".
  std::string op;
  std::vector<int64_t> inputs;
  std::vector<int64_t> outputs;
  /// Every attribute of the op, defaults filled in (see CONTRACT in docs).
  nlohmann::json attrs = nlohmann::json::object();
  /// Source location, for errors and profiles ("gpt.cpp:42 (block0.attn)").
  std::string loc;
};

struct Program {
  int formatVersion = kProgramFormatVersion;
  std::string name;
  std::string target = "reference";
  std::vector<BufferDesc> buffers; // indexed by id
  std::vector<IOBinding> inputs;
  std::vector<IOBinding> outputs;
  std::vector<KernelCall> kernels;
  int64_t arenaBytes = 0;
  /// Sum of all arena buffers' sizes: what the arena would take without reuse.
  int64_t intermediateBytes = 0;

  nlohmann::json toJson() const;
  /// Parses and validates (buffer ids in range, kinds, dtypes, offsets within
  /// the arena, format version); errors name the offending entry.
  static StatusOr<Program> fromJson(const nlohmann::json &json);
  /// Readable listing: buffers, then one line per kernel.
  std::string toText() const;
};

/// One buffer to place in an arena: `bytes` live from step `start` to step
/// `end` (inclusive). The allocator fills in `offset`.
struct LiveInterval {
  int64_t bytes = 0;
  int64_t start = 0;
  int64_t end = 0;
  int64_t offset = -1;
};

/// Arena bytes that offsets are aligned to.
inline constexpr int64_t kArenaAlignment = 64;

/// Places intervals in one arena so that no two intervals that are live at a
/// common step overlap in bytes; returns the arena size. Greedy by size
/// (largest first, lowest fitting offset), which is within a few percent of
/// optimal on transformer and CNN graphs. Used by the compiler's buffer plan
/// and by the runtime for buffers a backend stores larger (padded layouts).
int64_t assignArenaOffsets(std::vector<LiveInterval> &intervals,
                           int64_t alignment = kArenaAlignment);

} // namespace kiln

#endif // KILN_PROGRAM_H
