//===- Program.cpp - Program JSON form, validation and listing ------------===//
//
// The Program is the contract between codegen and the runtime; fromJson is the
// single place that checks a Program before anything executes it, so kernels
// may trust buffer ids, dtypes and arena extents.
//
//===----------------------------------------------------------------------===//
#include "kiln/program.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <sstream>

namespace kiln {

const char *bufferKindName(BufferKind kind) {
  switch (kind) {
  case BufferKind::input:
    return "input";
  case BufferKind::output:
    return "output";
  case BufferKind::param:
    return "param";
  case BufferKind::constant:
    return "constant";
  case BufferKind::arena:
    return "arena";
  }
  return "?";
}

static std::optional<BufferKind> parseBufferKind(const std::string &s) {
  for (BufferKind k : {BufferKind::input, BufferKind::output, BufferKind::param,
                       BufferKind::constant, BufferKind::arena})
    if (s == bufferKindName(k))
      return k;
  return std::nullopt;
}

nlohmann::json Program::toJson() const {
  using nlohmann::json;
  json j;
  j["format_version"] = formatVersion;
  j["name"] = name;
  j["target"] = target;
  json bufs = json::array();
  for (const BufferDesc &b : buffers) {
    json e;
    e["id"] = b.id;
    e["dtype"] = dtypeName(b.dtype);
    e["shape"] = b.shape;
    e["kind"] = bufferKindName(b.kind);
    if (b.kind == BufferKind::arena)
      e["offset"] = b.offset;
    else
      e["name"] = b.name;
    bufs.push_back(std::move(e));
  }
  j["buffers"] = std::move(bufs);
  auto bindings = [](const std::vector<IOBinding> &list) {
    json a = json::array();
    for (const IOBinding &b : list)
      a.push_back({{"name", b.name}, {"buffer", b.buffer}});
    return a;
  };
  j["inputs"] = bindings(inputs);
  j["outputs"] = bindings(outputs);
  json ks = json::array();
  for (const KernelCall &k : kernels)
    ks.push_back({{"op", k.op},
                  {"inputs", k.inputs},
                  {"outputs", k.outputs},
                  {"attrs", k.attrs.is_null() ? json::object() : k.attrs},
                  {"loc", k.loc}});
  j["kernels"] = std::move(ks);
  j["arena_bytes"] = arenaBytes;
  j["intermediate_bytes"] = intermediateBytes;
  return j;
}

namespace {
/// Thrown inside fromJson only; caught before returning.
struct ProgramError {
  std::string message;
};

[[noreturn]] void fail(const std::string &msg) { throw ProgramError{msg}; }

const nlohmann::json &field(const nlohmann::json &obj, const char *key,
                            const std::string &where) {
  auto it = obj.find(key);
  if (it == obj.end())
    fail(where + ": missing field '" + key + "'");
  return *it;
}

int64_t intField(const nlohmann::json &obj, const char *key,
                 const std::string &where) {
  const nlohmann::json &v = field(obj, key, where);
  if (!v.is_number_integer())
    fail(where + ": field '" + key + "' must be an integer");
  return v.get<int64_t>();
}

std::string stringField(const nlohmann::json &obj, const char *key,
                        const std::string &where) {
  const nlohmann::json &v = field(obj, key, where);
  if (!v.is_string())
    fail(where + ": field '" + key + "' must be a string");
  return v.get<std::string>();
}

std::vector<int64_t> intList(const nlohmann::json &obj, const char *key,
                             const std::string &where) {
  const nlohmann::json &v = field(obj, key, where);
  if (!v.is_array())
    fail(where + ": field '" + key + "' must be a list of integers");
  std::vector<int64_t> out;
  for (const auto &e : v) {
    if (!e.is_number_integer())
      fail(where + ": field '" + key + "' must be a list of integers");
    out.push_back(e.get<int64_t>());
  }
  return out;
}
} // namespace

StatusOr<Program> Program::fromJson(const nlohmann::json &j) {
  try {
    if (!j.is_object())
      fail("program: expected a JSON object");
    Program p;
    p.formatVersion =
        static_cast<int>(intField(j, "format_version", "program"));
    if (p.formatVersion != kProgramFormatVersion)
      fail("program: unsupported format_version " +
           std::to_string(p.formatVersion) + " (this runtime reads " +
           std::to_string(kProgramFormatVersion) + ")");
    if (j.contains("name"))
      p.name = stringField(j, "name", "program");
    if (j.contains("target"))
      p.target = stringField(j, "target", "program");
    if (j.contains("arena_bytes"))
      p.arenaBytes = intField(j, "arena_bytes", "program");
    if (j.contains("intermediate_bytes"))
      p.intermediateBytes = intField(j, "intermediate_bytes", "program");
    if (p.arenaBytes < 0)
      fail("program: arena_bytes is negative");

    const nlohmann::json &bufs = field(j, "buffers", "program");
    if (!bufs.is_array())
      fail("program: 'buffers' must be a list");
    int64_t count = static_cast<int64_t>(bufs.size());
    p.buffers.resize(bufs.size());
    std::vector<bool> seen(bufs.size(), false);
    for (size_t i = 0; i < bufs.size(); ++i) {
      std::string where = "buffer #" + std::to_string(i);
      const nlohmann::json &e = bufs[i];
      if (!e.is_object())
        fail(where + ": expected an object");
      BufferDesc b;
      b.id = intField(e, "id", where);
      where = "buffer " + std::to_string(b.id);
      if (b.id < 0 || b.id >= count)
        fail(where + ": id out of range (there are " + std::to_string(count) +
             " buffers)");
      if (seen[b.id])
        fail(where + ": duplicate id");
      seen[b.id] = true;
      std::string dt = stringField(e, "dtype", where);
      auto dtype = parseDType(dt);
      if (!dtype)
        fail(where + ": unknown dtype '" + dt + "'");
      b.dtype = *dtype;
      b.shape = intList(e, "shape", where);
      int64_t bytes = static_cast<int64_t>(dtypeSize(b.dtype));
      for (int64_t d : b.shape) {
        if (d < 0)
          fail(where + ": negative dimension in shape " +
               shapeToString(b.shape));
        // Sizes beyond 2^48 bytes cannot be real and would overflow offsets.
        if (__builtin_mul_overflow(bytes, d, &bytes) ||
            bytes > (int64_t(1) << 48))
          fail(where + ": shape " + shapeToString(b.shape) +
               " is too large (its byte size overflows)");
      }
      std::string kind = stringField(e, "kind", where);
      auto k = parseBufferKind(kind);
      if (!k)
        fail(where + ": unknown kind '" + kind +
             "' (expected input, output, param, constant or arena)");
      b.kind = *k;
      if (b.kind == BufferKind::arena) {
        b.offset = intField(e, "offset", where);
        if (b.offset < 0 || b.offset % 64 != 0)
          fail(where + ": arena offset " + std::to_string(b.offset) +
               " is not a non-negative multiple of 64");
        if (b.offset + b.byteSize() > p.arenaBytes)
          fail(where + ": extent [" + std::to_string(b.offset) + ", " +
               std::to_string(b.offset + b.byteSize()) +
               ") exceeds arena_bytes " + std::to_string(p.arenaBytes));
        if (e.contains("name") && e["name"].is_string())
          b.name = e["name"].get<std::string>();
      } else {
        b.name = stringField(e, "name", where);
        if (b.name.empty())
          fail(where + ": empty name for a buffer of kind '" + kind + "'");
      }
      p.buffers[b.id] = std::move(b);
    }

    auto readBindings = [&](const char *key, BufferKind kind) {
      const nlohmann::json &list = field(j, key, "program");
      if (!list.is_array())
        fail(std::string("program: '") + key + "' must be a list");
      std::vector<IOBinding> out;
      std::set<std::string> names;
      for (size_t i = 0; i < list.size(); ++i) {
        std::string where = std::string(key) + " #" + std::to_string(i);
        if (!list[i].is_object())
          fail(where + ": expected an object");
        IOBinding b;
        b.name = stringField(list[i], "name", where);
        where = std::string(key) + " '" + b.name + "'";
        b.buffer = intField(list[i], "buffer", where);
        if (b.buffer < 0 || b.buffer >= count)
          fail(where + ": buffer " + std::to_string(b.buffer) +
               " out of range");
        if (p.buffers[b.buffer].kind != kind)
          fail(where + ": buffer " + std::to_string(b.buffer) + " has kind '" +
               bufferKindName(p.buffers[b.buffer].kind) + "', expected '" +
               bufferKindName(kind) + "'");
        if (!names.insert(b.name).second)
          fail(where + ": duplicate name");
        out.push_back(std::move(b));
      }
      return out;
    };
    p.inputs = readBindings("inputs", BufferKind::input);
    p.outputs = readBindings("outputs", BufferKind::output);

    const nlohmann::json &ks = field(j, "kernels", "program");
    if (!ks.is_array())
      fail("program: 'kernels' must be a list");
    for (size_t i = 0; i < ks.size(); ++i) {
      std::string where = "kernel #" + std::to_string(i);
      const nlohmann::json &e = ks[i];
      if (!e.is_object())
        fail(where + ": expected an object");
      KernelCall k;
      k.op = stringField(e, "op", where);
      if (e.contains("loc") && e["loc"].is_string())
        k.loc = e["loc"].get<std::string>();
      where += " '" + k.op + "'" + (k.loc.empty() ? "" : " at " + k.loc);
      k.inputs = intList(e, "inputs", where);
      k.outputs = intList(e, "outputs", where);
      for (int64_t id : k.inputs)
        if (id < 0 || id >= count)
          fail(where + ": input buffer " + std::to_string(id) +
               " out of range");
      for (int64_t id : k.outputs) {
        if (id < 0 || id >= count)
          fail(where + ": output buffer " + std::to_string(id) +
               " out of range");
        BufferKind kk = p.buffers[id].kind;
        if (kk != BufferKind::arena && kk != BufferKind::output)
          fail(where + ": writes buffer " + std::to_string(id) + " of kind '" +
               bufferKindName(kk) + "'");
      }
      if (e.contains("attrs") && !e["attrs"].is_null()) {
        if (!e["attrs"].is_object())
          fail(where + ": 'attrs' must be an object");
        k.attrs = e["attrs"];
      }
      p.kernels.push_back(std::move(k));
    }

    // Dataflow: arena and output buffers are read only after a kernel wrote
    // them, and every output is written.
    std::vector<bool> written(p.buffers.size(), false);
    for (size_t i = 0; i < p.kernels.size(); ++i) {
      const KernelCall &k = p.kernels[i];
      for (int64_t id : k.inputs) {
        BufferKind kk = p.buffers[id].kind;
        if ((kk == BufferKind::arena || kk == BufferKind::output) &&
            !written[id])
          fail("kernel #" + std::to_string(i) + " '" + k.op + "'" +
               (k.loc.empty() ? "" : " at " + k.loc) + ": reads buffer " +
               std::to_string(id) + " before any kernel writes it");
      }
      for (int64_t id : k.outputs)
        written[id] = true;
    }
    for (const IOBinding &o : p.outputs)
      if (!written[o.buffer])
        fail("outputs '" + o.name + "': no kernel writes buffer " +
             std::to_string(o.buffer));
    return p;
  } catch (const ProgramError &e) {
    return Status::error(e.message);
  } catch (const std::exception &e) {
    return Status::error(std::string("program: ") + e.what());
  }
}

std::string Program::toText() const {
  std::ostringstream os;
  os << "program '" << name << "' target " << target << " (format "
     << formatVersion << ")\n";
  os << "arena " << arenaBytes << " bytes, intermediates " << intermediateBytes
     << " bytes\n";
  os << "buffers:\n";
  for (const BufferDesc &b : buffers) {
    os << "  %" << b.id << " " << dtypeName(b.dtype) << shapeToString(b.shape)
       << " " << bufferKindName(b.kind);
    if (b.kind == BufferKind::arena)
      os << " @" << b.offset;
    if (!b.name.empty())
      os << " '" << b.name << "'";
    os << "\n";
  }
  auto ids = [](const std::vector<int64_t> &v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i)
      s += (i ? ", %" : "%") + std::to_string(v[i]);
    return s;
  };
  os << "inputs:";
  for (const IOBinding &b : inputs)
    os << " " << b.name << "=%" << b.buffer;
  os << "\noutputs:";
  for (const IOBinding &b : outputs)
    os << " " << b.name << "=%" << b.buffer;
  os << "\nkernels:\n";
  for (const KernelCall &k : kernels) {
    os << "  " << ids(k.outputs) << " = " << k.op << "(" << ids(k.inputs)
       << ")";
    if (!k.attrs.empty())
      os << " " << k.attrs.dump();
    if (!k.loc.empty())
      os << "  // " << k.loc;
    os << "\n";
  }
  return os.str();
}

static int64_t alignUp(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

int64_t assignArenaOffsets(std::vector<LiveInterval> &intervals,
                           int64_t alignment) {
  std::vector<size_t> order(intervals.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest first; ties by earlier start, for a deterministic plan.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (intervals[a].bytes != intervals[b].bytes)
      return intervals[a].bytes > intervals[b].bytes;
    return intervals[a].start < intervals[b].start;
  });
  std::vector<size_t> placed;
  int64_t arena = 0;
  for (size_t i : order) {
    LiveInterval &cur = intervals[i];
    // Byte ranges taken by placed intervals live at the same time as `cur`.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j : placed) {
      const LiveInterval &o = intervals[j];
      if (o.start <= cur.end && cur.start <= o.end)
        busy.emplace_back(o.offset, o.offset + o.bytes);
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (auto [lo, hi] : busy) {
      if (offset + cur.bytes <= lo)
        break;
      offset = std::max(offset, alignUp(hi, alignment));
    }
    cur.offset = offset;
    arena = std::max(arena, offset + cur.bytes);
    placed.push_back(i);
  }
  return alignUp(arena, alignment);
}

} // namespace kiln
