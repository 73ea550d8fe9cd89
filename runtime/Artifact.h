//===- Artifact.h - The one-file artifact (internal) ------------*- C++ -*-===//
//
// An artifact is a safetensors file: an 8-byte little-endian header length, a
// JSON header, then the raw little-endian weight bytes. The header's
// `__metadata__` holds "kiln.format_version" and "kiln.program" (the Program
// JSON, as a string). Layout and version policy: docs/artifact.md.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_ARTIFACT_H
#define KILN_RUNTIME_ARTIFACT_H

#include "kiln/program.h"

namespace kiln {

/// The contents of an artifact file.
struct Artifact {
  Program program;
  TensorMap weights;
};

/// Safetensors dtype string ("F32", "BF16", "BOOL", ...).
const char *safetensorsDTypeName(DType t);
std::optional<DType> parseSafetensorsDType(const std::string &name);

/// Writes `program` and `weights` to `path`.
Status writeArtifact(const std::string &path, const Program &program,
                     const TensorMap &weights);
/// Reads and validates an artifact; errors name the file and the problem.
StatusOr<Artifact> readArtifact(const std::string &path);

} // namespace kiln

#endif // KILN_RUNTIME_ARTIFACT_H
