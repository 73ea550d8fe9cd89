//===- Artifact.cpp - safetensors writer and reader -----------------------===//
//
// The reader treats the file as untrusted: every length and extent is checked
// before it is used, so a truncated or corrupted file gives a status naming
// the file and the problem.
//
//===----------------------------------------------------------------------===//
#include "Artifact.h"
#include "AtomicFile.h"

#include <cstring>
#include <fstream>

namespace kiln {

namespace {
constexpr const char *kVersionKey = "kiln.format_version";
constexpr const char *kProgramKey = "kiln.program";
/// Refuse absurd header lengths before allocating (safetensors uses 100 MB).
constexpr uint64_t kMaxHeaderBytes = uint64_t(1) << 31;
} // namespace

const char *safetensorsDTypeName(DType t) {
  switch (t) {
  case DType::f32:
    return "F32";
  case DType::f16:
    return "F16";
  case DType::bf16:
    return "BF16";
  case DType::f64:
    return "F64";
  case DType::i64:
    return "I64";
  case DType::i32:
    return "I32";
  case DType::i8:
    return "I8";
  case DType::u8:
    return "U8";
  case DType::i1:
    return "BOOL";
  }
  return "?";
}

std::optional<DType> parseSafetensorsDType(const std::string &name) {
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i64,
                  DType::i32, DType::i8, DType::u8, DType::i1})
    if (name == safetensorsDTypeName(t))
      return t;
  return std::nullopt;
}

Status writeArtifact(const std::string &path, const Program &program,
                     const TensorMap &weights) {
  try {
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {
        {kVersionKey, std::to_string(kProgramFormatVersion)},
        {kProgramKey, program.toJson().dump()}};
    // Tensors are packed back to back (no holes), as strict safetensors
    // readers require; std::map order makes the file deterministic.
    uint64_t offset = 0;
    for (const auto &[name, t] : weights) {
      if (name == "__metadata__")
        return Status::error("artifact '" + path +
                             "': a weight may not be named '__metadata__'");
      uint64_t size = t.byteSize();
      header[name] = {{"dtype", safetensorsDTypeName(t.dtype())},
                      {"shape", t.shape()},
                      {"data_offsets", {offset, offset + size}}};
      offset += size;
    }
    std::string text = header.dump();
    // Pad with spaces so the data starts 8-byte aligned (allowed by the spec).
    while ((8 + text.size()) % 8 != 0)
      text.push_back(' ');
    return writeFileAtomically("artifact", path, [&](std::ostream &out) {
      uint8_t len[8];
      uint64_t n = text.size();
      for (int i = 0; i < 8; ++i)
        len[i] = static_cast<uint8_t>(n >> (8 * i));
      out.write(reinterpret_cast<const char *>(len), 8);
      out.write(text.data(), static_cast<std::streamsize>(text.size()));
      for (const auto &[name, t] : weights)
        if (t.byteSize())
          out.write(static_cast<const char *>(t.data()),
                    static_cast<std::streamsize>(t.byteSize()));
    });
  } catch (const std::exception &e) {
    return Status::error("artifact '" + path + "': " + e.what());
  }
}

StatusOr<Artifact> readArtifact(const std::string &path) {
  auto err = [&](const std::string &msg) {
    return Status::error("artifact '" + path + "': " + msg);
  };
  try {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in)
      return err("cannot open file");
    uint64_t fileSize = static_cast<uint64_t>(in.tellg());
    in.seekg(0);
    if (fileSize < 8)
      return err("file is " + std::to_string(fileSize) +
                 " bytes, too short for the 8-byte header length");
    uint8_t len[8];
    in.read(reinterpret_cast<char *>(len), 8);
    uint64_t headerLen = 0;
    for (int i = 0; i < 8; ++i)
      headerLen |= static_cast<uint64_t>(len[i]) << (8 * i);
    if (headerLen > kMaxHeaderBytes || headerLen > fileSize - 8)
      return err("header length " + std::to_string(headerLen) +
                 " exceeds the file size " + std::to_string(fileSize) +
                 " (truncated or not a safetensors file)");
    std::string text(headerLen, '\0');
    in.read(text.data(), static_cast<std::streamsize>(headerLen));
    if (!in)
      return err("could not read the header");
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception &e) {
      return err(std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object())
      return err("header is not a JSON object");

    auto metaIt = header.find("__metadata__");
    if (metaIt == header.end() || !metaIt->is_object())
      return err("no '__metadata__' object in the header (not a Kiln "
                 "artifact?)");
    for (const auto &[k, v] : metaIt->items())
      if (!v.is_string())
        return err("metadata value '" + k + "' is not a string");
    auto versionIt = metaIt->find(kVersionKey);
    if (versionIt == metaIt->end())
      return err(std::string("metadata has no '") + kVersionKey + "'");
    std::string version = versionIt->get<std::string>();
    if (version != std::to_string(kProgramFormatVersion))
      return err("unsupported format version '" + version +
                 "' (this runtime reads " +
                 std::to_string(kProgramFormatVersion) + ")");
    auto programIt = metaIt->find(kProgramKey);
    if (programIt == metaIt->end())
      return err(std::string("metadata has no '") + kProgramKey + "'");
    nlohmann::json programJson;
    try {
      programJson = nlohmann::json::parse(programIt->get<std::string>());
    } catch (const nlohmann::json::exception &e) {
      return err(std::string("program metadata is not valid JSON: ") +
                 e.what());
    }
    StatusOr<Program> program = Program::fromJson(programJson);
    if (!program)
      return err(program.status().message());

    uint64_t dataSize = fileSize - 8 - headerLen;
    Artifact artifact;
    artifact.program = std::move(*program);
    for (const auto &[name, e] : header.items()) {
      if (name == "__metadata__")
        continue;
      std::string where = "tensor '" + name + "': ";
      if (!e.is_object())
        return err(where + "entry is not an object");
      auto dt = e.find("dtype");
      if (dt == e.end() || !dt->is_string())
        return err(where + "missing dtype");
      auto dtype = parseSafetensorsDType(dt->get<std::string>());
      if (!dtype)
        return err(where + "unsupported dtype '" + dt->get<std::string>() +
                   "'");
      auto sh = e.find("shape");
      if (sh == e.end() || !sh->is_array())
        return err(where + "missing shape");
      std::vector<int64_t> shape;
      uint64_t elements = 1;
      for (const auto &d : *sh) {
        if (!d.is_number_unsigned() && !d.is_number_integer())
          return err(where + "shape has a non-integer entry");
        int64_t v = d.get<int64_t>();
        if (v < 0 || (v > 0 && elements > (uint64_t(1) << 62) / uint64_t(v)))
          return err(where + "invalid shape");
        elements *= static_cast<uint64_t>(v);
        shape.push_back(v);
      }
      auto off = e.find("data_offsets");
      if (off == e.end() || !off->is_array() || off->size() != 2 ||
          !(*off)[0].is_number_integer() || !(*off)[1].is_number_integer())
        return err(where + "missing or malformed data_offsets");
      int64_t b = (*off)[0].get<int64_t>(), end = (*off)[1].get<int64_t>();
      if (b < 0 || end < b || static_cast<uint64_t>(end) > dataSize)
        return err(where + "data_offsets [" + std::to_string(b) + ", " +
                   std::to_string(end) + "] outside the data section of " +
                   std::to_string(dataSize) + " bytes (truncated file?)");
      uint64_t expected = elements * dtypeSize(*dtype);
      if (static_cast<uint64_t>(end - b) != expected)
        return err(where + "data_offsets span " + std::to_string(end - b) +
                   " bytes but " + dt->get<std::string>() +
                   shapeToString(shape) + " needs " + std::to_string(expected));
      Tensor t = Tensor::zeros(*dtype, shape);
      if (expected) {
        in.seekg(static_cast<std::streamoff>(8 + headerLen + b));
        in.read(static_cast<char *>(t.data()),
                static_cast<std::streamsize>(expected));
        if (!in)
          return err(where + "could not read its data");
      }
      artifact.weights[name] = std::move(t);
    }
    return artifact;
  } catch (const std::exception &e) {
    return err(e.what());
  }
}

} // namespace kiln
