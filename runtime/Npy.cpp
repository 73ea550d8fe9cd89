//===- Npy.cpp - NumPy .npy reader and writer -----------------------------===//
//
// Supports C-order little-endian arrays of f32 f16 f64 i64 i32 i8 u8 bool.
// NumPy has no bfloat16: writeNpy refuses bf16 with a message (cast to f32
// first) and readNpy refuses descriptors it does not know. See
// docs/artifact.md.
//
//===----------------------------------------------------------------------===//
#include "AtomicFile.h"
#include "kiln/runtime.h"

#include <fstream>

namespace kiln {

static const char *npyDescr(DType t) {
  switch (t) {
  case DType::f32:
    return "<f4";
  case DType::f16:
    return "<f2";
  case DType::f64:
    return "<f8";
  case DType::i64:
    return "<i8";
  case DType::i32:
    return "<i4";
  case DType::i8:
    return "|i1";
  case DType::u8:
    return "|u1";
  case DType::i1:
    return "|b1";
  case DType::bf16:
    return nullptr;
  }
  return nullptr;
}

static std::optional<DType> parseNpyDescr(const std::string &d) {
  static const std::pair<const char *, DType> table[] = {
      {"<f4", DType::f32}, {"<f2", DType::f16}, {"<f8", DType::f64},
      {"<i8", DType::i64}, {"<i4", DType::i32}, {"|i1", DType::i8},
      {"<i1", DType::i8},  {"i1", DType::i8},   {"|u1", DType::u8},
      {"<u1", DType::u8},  {"u1", DType::u8},   {"|b1", DType::i1},
      {"<b1", DType::i1},  {"b1", DType::i1},   {"?", DType::i1},
      {"|?", DType::i1}};
  for (const auto &[name, t] : table)
    if (d == name)
      return t;
  return std::nullopt;
}

/// The value of `key` in the header dict: the text after "'key':" up to the
/// next top-level comma or closing brace.
static std::optional<std::string> headerValue(const std::string &h,
                                              const std::string &key) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos)
    return std::nullopt;
  size_t colon = h.find(':', k);
  if (colon == std::string::npos)
    return std::nullopt;
  size_t i = colon + 1;
  while (i < h.size() && h[i] == ' ')
    ++i;
  int depth = 0;
  size_t start = i;
  for (; i < h.size(); ++i) {
    char c = h[i];
    if (c == '(' || c == '[')
      ++depth;
    else if (c == ')' || c == ']')
      --depth;
    else if ((c == ',' || c == '}') && depth == 0)
      break;
  }
  return h.substr(start, i - start);
}

StatusOr<Tensor> readNpy(const std::string &path) {
  auto err = [&](const std::string &msg) {
    return Status::error("npy '" + path + "': " + msg);
  };
  try {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in)
      return err("cannot open file");
    uint64_t fileSize = static_cast<uint64_t>(in.tellg());
    in.seekg(0);
    char magic[8];
    if (fileSize < 10 || !in.read(magic, 8) ||
        std::string(magic, 6) != "\x93NUMPY")
      return err("not a .npy file (bad magic)");
    int major = static_cast<uint8_t>(magic[6]);
    uint64_t headerLen = 0, prefix;
    if (major == 1) {
      uint8_t b[2];
      in.read(reinterpret_cast<char *>(b), 2);
      headerLen = b[0] | (b[1] << 8);
      prefix = 10;
    } else if (major == 2 || major == 3) {
      uint8_t b[4];
      if (!in.read(reinterpret_cast<char *>(b), 4))
        return err("truncated header");
      headerLen = b[0] | (b[1] << 8) | (b[2] << 16) | (uint64_t(b[3]) << 24);
      prefix = 12;
    } else {
      return err("unsupported .npy version " + std::to_string(major));
    }
    if (prefix + headerLen > fileSize)
      return err("header length exceeds the file size");
    std::string header(headerLen, '\0');
    in.read(header.data(), static_cast<std::streamsize>(headerLen));
    auto descr = headerValue(header, "descr");
    auto fortran = headerValue(header, "fortran_order");
    auto shapeText = headerValue(header, "shape");
    if (!descr || !fortran || !shapeText)
      return err("header lacks descr, fortran_order or shape");
    std::string d = *descr;
    if (d.size() >= 2 && (d.front() == '\'' || d.front() == '"'))
      d = d.substr(1, d.size() - 2);
    auto dtype = parseNpyDescr(d);
    if (!dtype)
      return err("unsupported dtype '" + d +
                 "' (supported: <f4 <f2 <f8 <i8 <i4 |i1 |u1 |b1; big-endian "
                 "and bfloat16 are not)");
    if (fortran->rfind("True", 0) == 0)
      return err("Fortran-order arrays are not supported");
    // The shape is a Python tuple of non-negative integers: "()", "(3,)",
    // "(2, 3)". Anything else is malformed.
    std::vector<int64_t> shape;
    std::string s = *shapeText;
    size_t i = 0;
    auto skipSpace = [&] {
      while (i < s.size() && s[i] == ' ')
        ++i;
    };
    skipSpace();
    if (i >= s.size() || s[i] != '(')
      return err("malformed shape " + s);
    ++i;
    bool expectDim = true;
    while (true) {
      skipSpace();
      if (i >= s.size())
        return err("malformed shape " + s);
      if (s[i] == ')') {
        ++i;
        break;
      }
      if (!expectDim || !isdigit(static_cast<unsigned char>(s[i])))
        return err("malformed shape " + s);
      size_t j = i;
      while (j < s.size() && isdigit(static_cast<unsigned char>(s[j])))
        ++j;
      if (j - i > 15)
        return err("dimension too large in shape " + s);
      shape.push_back(std::stoll(s.substr(i, j - i)));
      i = j;
      skipSpace();
      if (i < s.size() && s[i] == ',') {
        ++i;
        expectDim = true;
      } else {
        expectDim = false;
      }
    }
    skipSpace();
    if (i != s.size())
      return err("malformed shape " + s);
    uint64_t elements = 1;
    for (int64_t dim : shape) {
      if (dim && elements > (uint64_t(1) << 62) / uint64_t(dim))
        return err("shape " + s + " is too large");
      elements *= uint64_t(dim);
    }
    uint64_t bytes = elements * dtypeSize(*dtype);
    if (prefix + headerLen + bytes > fileSize)
      return err("data is truncated: shape " + shapeToString(shape) +
                 " needs " + std::to_string(bytes) + " bytes, file has " +
                 std::to_string(fileSize - prefix - headerLen));
    Tensor t = Tensor::zeros(*dtype, shape);
    if (bytes && !in.read(static_cast<char *>(t.data()),
                          static_cast<std::streamsize>(bytes)))
      return err("could not read the data");
    return t;
  } catch (const std::exception &e) {
    return err(e.what());
  }
}

Status writeNpy(const std::string &path, const Tensor &tensor) {
  const char *descr = npyDescr(tensor.dtype());
  if (!descr)
    return Status::error("npy '" + path +
                         "': NumPy has no bfloat16 dtype; cast the tensor to "
                         "f32 before writing it");
  std::string shape = "(";
  for (size_t i = 0; i < tensor.shape().size(); ++i)
    shape += std::to_string(tensor.shape()[i]) + ",";
  if (tensor.shape().size() > 1)
    shape.pop_back();
  shape += ")";
  std::string header = std::string("{'descr': '") + descr +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Pad with spaces and a newline so the data starts 64-byte aligned.
  bool v2 = header.size() + 11 > 65535;
  size_t prefix = v2 ? 12 : 10;
  size_t total = prefix + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  return writeFileAtomically("npy", path, [&](std::ostream &out) {
    out.write("\x93NUMPY", 6);
    char version[2] = {static_cast<char>(v2 ? 2 : 1), 0};
    out.write(version, 2);
    uint64_t n = header.size();
    char len[4] = {static_cast<char>(n & 0xff),
                   static_cast<char>((n >> 8) & 0xff),
                   static_cast<char>((n >> 16) & 0xff),
                   static_cast<char>((n >> 24) & 0xff)};
    out.write(len, v2 ? 4 : 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    if (tensor.byteSize() && tensor.data())
      out.write(static_cast<const char *>(tensor.data()),
                static_cast<std::streamsize>(tensor.byteSize()));
  });
}

} // namespace kiln
