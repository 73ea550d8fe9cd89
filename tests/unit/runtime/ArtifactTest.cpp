//===- ArtifactTest.cpp - Artifact and npy files --------------------------===//
//
// The artifact must round-trip bit-exactly, and every damaged file (cut at
// any length, corrupted bytes, another format version) must give an error
// status naming the file, never a crash.
//
//===----------------------------------------------------------------------===//
#include "Artifact.h"
#include "TestUtil.h"

#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

using namespace kiln;
using namespace kiln::test;

namespace {

std::string tempPath(const std::string &name) {
  auto dir = std::filesystem::temp_directory_path() / "kiln_runtime_tests";
  std::filesystem::create_directories(dir);
  return (dir / (std::to_string(::getpid()) + "_" + name)).string();
}

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

const DType kAllTypes[] = {DType::f32, DType::f16, DType::bf16,
                           DType::f64, DType::i64, DType::i32,
                           DType::i8,  DType::u8,  DType::i1};

/// One param per dtype, each copied to an output named "<name>.out".
Program paramsProgram() {
  Program p;
  p.name = "params";
  for (DType t : kAllTypes) {
    std::string name = std::string("w_") + dtypeName(t);
    int64_t in = static_cast<int64_t>(p.buffers.size());
    p.buffers.push_back({in, t, {2, 3}, BufferKind::param, name, 0});
    p.buffers.push_back(
        {in + 1, t, {2, 3}, BufferKind::output, name + ".out", 0});
    p.outputs.push_back({name + ".out", in + 1});
    p.kernels.push_back(
        {"copy", {in}, {in + 1}, nlohmann::json::object(), "copy " + name});
  }
  return p;
}

/// Weights with awkward bit patterns (NaN payloads, -0, subnormals).
TensorMap paramsWeights() {
  TensorMap w;
  unsigned seed = 1;
  for (DType t : kAllTypes) {
    Tensor x = Tensor::zeros(t, {2, 3});
    auto *bytes = static_cast<uint8_t *>(x.data());
    for (size_t i = 0; i < x.byteSize(); ++i)
      bytes[i] = static_cast<uint8_t>((seed = seed * 1103515245 + 12345) >> 16);
    if (t == DType::i1)
      for (size_t i = 0; i < x.byteSize(); ++i)
        bytes[i] &= 1;
    w[std::string("w_") + dtypeName(t)] = x;
  }
  return w;
}

std::string savedArtifact(const std::string &name) {
  auto exe = Executable::create(paramsProgram(), paramsWeights());
  EXPECT_TRUE(exe.isOk()) << exe.status().message();
  std::string path = tempPath(name);
  Status s = exe->save(path);
  EXPECT_TRUE(s.isOk()) << s.message();
  return path;
}

uint64_t headerLength(const std::string &bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= uint64_t(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return n;
}

/// Rebuilds the file with a modified header JSON.
std::string withHeader(const std::string &bytes,
                       const std::function<void(nlohmann::json &)> &edit) {
  uint64_t n = headerLength(bytes);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  edit(h);
  std::string text = h.dump();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>(uint64_t(text.size()) >> (8 * i));
  return out + text + bytes.substr(8 + n);
}

} // namespace

TEST(Artifact, RoundTripBitExact) {
  std::string path = savedArtifact("roundtrip.kiln");
  TensorMap weights = paramsWeights();
  auto loaded = Executable::load(path);
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_EQ(loaded->program().toJson(), paramsProgram().toJson());
  ASSERT_EQ(loaded->weights().size(), weights.size());
  for (const auto &[name, w] : weights) {
    const Tensor &got = loaded->weights().at(name);
    EXPECT_EQ(got.dtype(), w.dtype()) << name;
    EXPECT_EQ(got.shape(), w.shape()) << name;
    EXPECT_EQ(std::memcmp(got.data(), w.data(), w.byteSize()), 0) << name;
  }
  auto outs = loaded->run({});
  ASSERT_TRUE(outs.isOk()) << outs.status().message();
  for (const auto &[name, w] : weights)
    EXPECT_EQ(
        std::memcmp(outs->at(name + ".out").data(), w.data(), w.byteSize()), 0)
        << name;
  // Saving the loaded executable again gives the same bytes.
  std::string again = tempPath("roundtrip2.kiln");
  ASSERT_TRUE(loaded->save(again).isOk());
  EXPECT_EQ(readBytes(path), readBytes(again));
}

TEST(Artifact, SafetensorsLayout) {
  std::string bytes = readBytes(savedArtifact("layout.kiln"));
  uint64_t n = headerLength(bytes);
  ASSERT_LE(8 + n, bytes.size());
  EXPECT_EQ((8 + n) % 8, 0u);
  nlohmann::json h = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(h["__metadata__"]["kiln.format_version"], "1");
  EXPECT_TRUE(h["__metadata__"]["kiln.program"].is_string());
  EXPECT_EQ(h["w_bf16"]["dtype"], "BF16");
  EXPECT_EQ(h["w_i1"]["dtype"], "BOOL");
  EXPECT_EQ(h["w_f32"]["shape"], (std::vector<int64_t>{2, 3}));
  // Tensors are packed with no holes and end at the end of the file.
  uint64_t total = 0;
  for (const auto &[k, v] : h.items())
    if (k != "__metadata__")
      total += v["data_offsets"][1].get<uint64_t>() -
               v["data_offsets"][0].get<uint64_t>();
  EXPECT_EQ(8 + n + total, bytes.size());
}

TEST(Artifact, TruncatedFilesAreErrors) {
  std::string path = savedArtifact("full.kiln");
  std::string bytes = readBytes(path);
  uint64_t n = headerLength(bytes);
  std::vector<size_t> cuts = {
      0, 3, 7, 8, 9, 8 + n / 2, 8 + n - 1, 8 + n, 8 + n + 5, bytes.size() - 1};
  for (size_t cut : cuts) {
    std::string cutPath = tempPath("cut_" + std::to_string(cut) + ".kiln");
    writeBytes(cutPath, bytes.substr(0, cut));
    auto exe = Executable::load(cutPath);
    ASSERT_FALSE(exe.isOk()) << "cut at " << cut;
    EXPECT_NE(exe.status().message().find(cutPath), std::string::npos)
        << exe.status().message();
  }
  auto none = Executable::load(tempPath("does_not_exist.kiln"));
  ASSERT_FALSE(none.isOk());
  EXPECT_NE(none.status().message().find("does_not_exist"), std::string::npos);
}

TEST(Artifact, CorruptedHeaderIsAnError) {
  std::string bytes = readBytes(savedArtifact("corrupt.kiln"));
  std::string path = tempPath("corrupted.kiln");
  // Break the JSON.
  std::string broken = bytes;
  broken[8] = 'x';
  writeBytes(path, broken);
  auto exe = Executable::load(path);
  ASSERT_FALSE(exe.isOk());
  EXPECT_NE(exe.status().message().find("JSON"), std::string::npos)
      << exe.status().message();
  // A header length larger than the file.
  std::string huge = bytes;
  huge[7] = 0x10;
  writeBytes(path, huge);
  exe = Executable::load(path);
  ASSERT_FALSE(exe.isOk());
  EXPECT_NE(exe.status().message().find("header length"), std::string::npos);
  // An extent outside the data and an extent that disagrees with the shape.
  writeBytes(path, withHeader(bytes, [](nlohmann::json &h) {
               h["w_f64"]["data_offsets"][1] = 1 << 20;
             }));
  exe = Executable::load(path);
  ASSERT_FALSE(exe.isOk());
  EXPECT_NE(exe.status().message().find("w_f64"), std::string::npos);
  writeBytes(path, withHeader(bytes, [](nlohmann::json &h) {
               h["w_i32"]["shape"] = {2, 2};
             }));
  exe = Executable::load(path);
  ASSERT_FALSE(exe.isOk());
  EXPECT_NE(exe.status().message().find("w_i32"), std::string::npos);
  writeBytes(path, withHeader(bytes, [](nlohmann::json &h) {
               h["w_i8"]["dtype"] = "Q4";
             }));
  exe = Executable::load(path);
  ASSERT_FALSE(exe.isOk());
  EXPECT_NE(exe.status().message().find("Q4"), std::string::npos);
  // The program in the metadata is validated too.
  writeBytes(path, withHeader(bytes, [](nlohmann::json &h) {
               auto p = nlohmann::json::parse(
                   h["__metadata__"]["kiln.program"].get<std::string>());
               p["kernels"][0]["inputs"] = {99};
               h["__metadata__"]["kiln.program"] = p.dump();
             }));
  exe = Executable::load(path);
  ASSERT_FALSE(exe.isOk());
  EXPECT_NE(exe.status().message().find("99"), std::string::npos);
}

TEST(Artifact, RandomByteCorruptionNeverCrashes) {
  std::string bytes = readBytes(savedArtifact("fuzz.kiln"));
  std::string path = tempPath("fuzz_mutant.kiln");
  std::mt19937 gen(1234);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string m = bytes;
    for (int k = 0; k < 3; ++k)
      m[gen() % m.size()] = static_cast<char>(gen());
    writeBytes(path, m);
    auto exe = Executable::load(path);
    if (!exe.isOk())
      ++errors;
    else
      (void)exe->run({}); // data-only damage still loads and runs
  }
  EXPECT_GT(errors, 0);
}

TEST(Artifact, WrongFormatVersion) {
  std::string bytes = readBytes(savedArtifact("version.kiln"));
  std::string path = tempPath("version2.kiln");
  writeBytes(path, withHeader(bytes, [](nlohmann::json &h) {
               h["__metadata__"]["kiln.format_version"] = "2";
             }));
  auto exe = Executable::load(path);
  ASSERT_FALSE(exe.isOk());
  EXPECT_NE(exe.status().message().find("format version '2'"),
            std::string::npos)
      << exe.status().message();
  writeBytes(path, withHeader(bytes, [](nlohmann::json &h) {
               h.erase("__metadata__");
             }));
  exe = Executable::load(path);
  ASSERT_FALSE(exe.isOk());
  EXPECT_NE(exe.status().message().find("__metadata__"), std::string::npos);
  writeBytes(path, withHeader(bytes, [](nlohmann::json &h) {
               auto p = nlohmann::json::parse(
                   h["__metadata__"]["kiln.program"].get<std::string>());
               p["format_version"] = 7;
               h["__metadata__"]["kiln.program"] = p.dump();
             }));
  exe = Executable::load(path);
  ASSERT_FALSE(exe.isOk());
  EXPECT_NE(exe.status().message().find("format_version 7"), std::string::npos);
}

/// Runs `write` with files limited to `bytes` (a larger write fails with
/// EFBIG, SIGXFSZ ignored), then restores the limit; a limit that cannot be
/// set is a failed status.
static Status underFileSizeLimit(rlim_t bytes,
                                 const std::function<Status()> &write) {
  struct rlimit old;
  if (::getrlimit(RLIMIT_FSIZE, &old) != 0)
    return Status::error("getrlimit failed");
  struct rlimit small = old;
  small.rlim_cur = bytes;
  auto previous = std::signal(SIGXFSZ, SIG_IGN);
  if (::setrlimit(RLIMIT_FSIZE, &small) != 0) {
    std::signal(SIGXFSZ, previous);
    return Status::error("setrlimit failed");
  }
  Status s = write();
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous);
  return s;
}

TEST(Artifact, FailedWriteKeepsTheOldFileAndSaysWhy) {
  // A write that fails part way (here: a file size limit, as a full disk
  // would) must leave the artifact that was there loadable, no temporary
  // file beside it, and say why.
  std::string path = savedArtifact("kept.kiln");
  std::string before = readBytes(path);
  Program p = paramsProgram();
  TensorMap big = paramsWeights();
  big["w_f32"] = Tensor::zeros(DType::f32, {2, 3});
  p.buffers.push_back({static_cast<int64_t>(p.buffers.size()),
                       DType::f32,
                       {1 << 20},
                       BufferKind::param,
                       "big",
                       0});
  big["big"] = Tensor::zeros(DType::f32, {1 << 20});
  rlim_t limit = before.size() + 4096;
  Status s =
      underFileSizeLimit(limit, [&] { return writeArtifact(path, p, big); });
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("artifact '" + path + "': write failed: "),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find(std::strerror(EFBIG)), std::string::npos)
      << s.message();
  EXPECT_EQ(readBytes(path), before);
  EXPECT_TRUE(Executable::load(path).isOk());
  for (const auto &entry : std::filesystem::directory_iterator(
           std::filesystem::path(path).parent_path()))
    EXPECT_EQ(entry.path().filename().string().find(
                  std::filesystem::path(path).filename().string() + ".tmp"),
              std::string::npos)
        << entry.path();
  // The same for an .npy file, and a device is written in place.
  std::string npy = tempPath("kept.npy");
  ASSERT_TRUE(writeNpy(npy, big.at("w_f32")).isOk());
  std::string npyBefore = readBytes(npy);
  s = underFileSizeLimit(limit, [&] { return writeNpy(npy, big.at("big")); });
  EXPECT_FALSE(s.isOk());
  EXPECT_EQ(readBytes(npy), npyBefore);
  if (std::filesystem::exists("/dev/full")) {
    s = writeNpy("/dev/full", big.at("w_f32"));
    ASSERT_FALSE(s.isOk());
    EXPECT_NE(s.message().find(std::strerror(ENOSPC)), std::string::npos)
        << s.message();
    EXPECT_TRUE(std::filesystem::exists("/dev/full"));
  }
}

TEST(Npy, RoundTripAllNumpyTypes) {
  TensorMap weights = paramsWeights();
  for (const auto &[name, w] : weights) {
    std::string path = tempPath(name + ".npy");
    Status s = writeNpy(path, w);
    if (w.dtype() == DType::bf16) {
      ASSERT_FALSE(s.isOk());
      EXPECT_NE(s.message().find("bfloat16"), std::string::npos);
      continue;
    }
    ASSERT_TRUE(s.isOk()) << s.message();
    auto r = readNpy(path);
    ASSERT_TRUE(r.isOk()) << r.status().message();
    EXPECT_EQ(r->dtype(), w.dtype());
    EXPECT_EQ(r->shape(), w.shape());
    EXPECT_EQ(std::memcmp(r->data(), w.data(), w.byteSize()), 0) << name;
  }
  // Rank 0 and 1 shapes print as () and (n,).
  std::string path = tempPath("scalar.npy");
  ASSERT_TRUE(writeNpy(path, make(DType::f64, {}, {2.5})).isOk());
  auto r = readNpy(path);
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(r->shape().empty());
  EXPECT_EQ(r->toDoubles(), std::vector<double>{2.5});
  EXPECT_NE(readBytes(path).find("'shape': ()"), std::string::npos);
  ASSERT_TRUE(writeNpy(path, make(DType::i32, {3}, {1, 2, 3})).isOk());
  EXPECT_NE(readBytes(path).find("'shape': (3,)"), std::string::npos);
}

TEST(Npy, ReadsNumpyWrittenHeaderAndRejectsBadFiles) {
  // A header as numpy 1.x writes it (v1, padded to 64 bytes).
  std::string header =
      "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }";
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size());
  bytes += '\0';
  bytes += header;
  int64_t vals[4] = {1, -2, 3, 1LL << 40};
  bytes.append(reinterpret_cast<const char *>(vals), sizeof(vals));
  std::string path = tempPath("numpy.npy");
  writeBytes(path, bytes);
  auto r = readNpy(path);
  ASSERT_TRUE(r.isOk()) << r.status().message();
  EXPECT_EQ(r->shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(r->dataAs<int64_t>()[3], 1LL << 40);

  writeBytes(path, bytes.substr(0, bytes.size() - 3));
  r = readNpy(path);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos);
  std::string fortran = bytes;
  fortran.replace(fortran.find("False"), 5, "True ");
  writeBytes(path, fortran);
  EXPECT_FALSE(readNpy(path).isOk());
  std::string bigEndian = bytes;
  bigEndian.replace(bigEndian.find("<i8"), 3, ">i8");
  writeBytes(path, bigEndian);
  r = readNpy(path);
  ASSERT_FALSE(r.isOk());
  EXPECT_NE(r.status().message().find(">i8"), std::string::npos);
  writeBytes(path, "not numpy");
  EXPECT_FALSE(readNpy(path).isOk());
}
