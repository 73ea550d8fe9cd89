//===- Executable.cpp - Load, bind, run and save Programs -----------------===//
//
// create() does every check that does not depend on the inputs (Program
// validity, kernels known to the backend, weights present with the right
// dtype and shape) and allocates the arena once; run() checks the inputs,
// binds buffer views and calls the kernels in order.
//
//===----------------------------------------------------------------------===//
#include "Artifact.h"
#include "backends/Backend.h"

#include <algorithm>
#include <chrono>
#include <set>

namespace kiln {

struct Executable::Impl {
  Program program;
  TensorMap weights;
  std::string backendName;
  const Backend *backend = nullptr;
  /// One per kernel call, prepared at create() time.
  std::vector<std::unique_ptr<PreparedKernel>> kernels;
  std::vector<uint8_t> arenaStorage;
  uint8_t *arena = nullptr; // 64-byte aligned, inside arenaStorage
  /// Arena buffers that the backend stores in more bytes than their slot
  /// (channels padded to a block): offset from `arena`, after the Program's
  /// arena; -1 for every other buffer.
  std::vector<int64_t> ownOffset;
  /// Kernels that depend only on weights and constants: run once by
  /// create(), skipped by run().
  std::vector<bool> atLoad;
  /// The previous run's outputs, by buffer id: a run writes into one again
  /// when the caller no longer holds it, instead of allocating and zeroing
  /// new memory (a 78 MB logits tensor took ~40 ms of page faults and
  /// zeroing per run).
  std::map<int64_t, Tensor> spareOutputs;

  /// Where an arena, param or constant buffer's bytes are.
  void *bufferData(const BufferDesc &b) const {
    if (b.kind == BufferKind::arena)
      return arena + (ownOffset[b.id] >= 0 ? ownOffset[b.id] : b.offset);
    return const_cast<void *>(weights.at(b.name).data());
  }
  std::vector<KernelTiming> profile;
};

Executable::Executable() : impl_(std::make_unique<Impl>()) {}
Executable::Executable(Executable &&) noexcept = default;
Executable &Executable::operator=(Executable &&) noexcept = default;
Executable::~Executable() = default;

/// Ops that read element i before writing element i and nothing after it, so
/// an output may share storage with a same-shaped input whose elements are
/// at least as wide (the planner's in-place reuse).
static bool isPointwise(const std::string &op) {
  static const std::set<std::string> ops = {
      "neg",   "abs",     "relu", "exp",     "log",        "sqrt", "rsqrt",
      "tanh",  "sigmoid", "silu", "erf",     "reciprocal", "gelu", "add",
      "sub",   "mul",     "div",  "max",     "min",        "pow",  "compare",
      "where", "cast",    "copy", "reshape", "constant"};
  return ops.count(op) != 0;
}

/// Whether two views' bytes overlap.
static bool overlaps(const BufferView &a, const BufferView &b) {
  size_t na = a.numElements() * dtypeSize(a.dtype);
  size_t nb = b.numElements() * dtypeSize(b.dtype);
  if (!na || !nb || !a.data || !b.data)
    return false;
  auto pa = reinterpret_cast<uintptr_t>(a.data);
  auto pb = reinterpret_cast<uintptr_t>(b.data);
  return pa < pb + nb && pb < pa + na;
}

static std::string typeAndShape(DType t, const std::vector<int64_t> &shape) {
  return std::string(dtypeName(t)) + " " + shapeToString(shape);
}

static std::string join(const std::vector<std::string> &items,
                        const char *sep = ", ") {
  std::string s;
  for (const std::string &i : items)
    s += (s.empty() ? "" : sep) + i;
  return s;
}

/// Prepares every call of the Program once: primitives are created and
/// weights prepacked here, not per run. The backend first plans buffer
/// layouts; a kernel that was given a non-plain operand but does not honor
/// it (a factory declined, another kernel took the call) makes that
/// kernel's buffers plain, and every kernel touching them is prepared again,
/// until all agree. Each round makes buffers plain, so this ends.
static Status
prepareKernels(const Program &prog, const Backend &backend,
               const TensorMap &weights,
               std::vector<std::unique_ptr<PreparedKernel>> &kernels,
               std::vector<Layout> &layouts) {
  layouts = backend.planLayouts(prog);
  size_t n = prog.kernels.size();
  kernels.clear();
  kernels.resize(n);
  std::vector<bool> stale(n, true);
  for (bool again = true; again;) {
    again = false;
    for (size_t i = 0; i < n; ++i) {
      if (!stale[i])
        continue;
      stale[i] = false;
      const KernelCall &k = prog.kernels[i];
      PrepareContext pc;
      pc.call = &k;
      for (int64_t id : k.inputs) {
        const BufferDesc &d = prog.buffers[id];
        pc.inputs.push_back(d);
        pc.inputLayouts.push_back(layouts[id]);
        bool bound =
            d.kind == BufferKind::param || d.kind == BufferKind::constant;
        pc.weights.push_back(bound ? &weights.at(d.name) : nullptr);
      }
      for (int64_t id : k.outputs) {
        pc.outputs.push_back(prog.buffers[id]);
        pc.outputLayouts.push_back(layouts[id]);
      }
      kernels[i] = backend.prepare(pc);
      if (!kernels[i])
        return Status::error("backend '" + backend.name() +
                             "' could not prepare op '" + k.op + "'");
      if (!pc.hasLayouts() || kernels[i]->honorsLayouts())
        continue;
      for (const auto *ids : {&k.inputs, &k.outputs})
        for (int64_t id : *ids)
          if (!layouts[id].isPlain()) {
            layouts[id] = Layout();
            again = true;
            for (size_t j = 0; j < n; ++j)
              for (const auto *other :
                   {&prog.kernels[j].inputs, &prog.kernels[j].outputs})
                for (int64_t o : *other)
                  if (o == id)
                    stale[j] = true;
          }
    }
  }
  return Status::ok();
}

/// A failed kernel's error: which kernel (index, op, location), `when` it
/// ran, and the kernel's message.
static Status kernelError(size_t index, const KernelCall &k,
                          const std::string &when, const Status &s) {
  return Status::error("kernel " + std::to_string(index) + " '" + k.op + "'" +
                       (k.loc.empty() ? "" : " at " + k.loc) + when + ": " +
                       s.message());
}

/// The kernels whose operands are all weights, constants or results of
/// such kernels, and whose results are all arena buffers (not Program
/// outputs), in Program order, while their results take at most as many
/// bytes as the weights (a chain past that runs every time). They compute
/// the same thing on every run: a weight-only matmul (DeBERTa's relative
/// position projections), rotary tables, T5's position bias.
static std::vector<bool> weightOnlyKernels(const Program &prog,
                                           const std::vector<Layout> &layouts) {
  std::vector<bool> known(prog.buffers.size(), false), atLoad;
  int64_t weightBytes = 0, stored = 0;
  for (const BufferDesc &b : prog.buffers)
    if (b.kind == BufferKind::param || b.kind == BufferKind::constant) {
      known[b.id] = true;
      weightBytes += b.byteSize();
    }
  for (const KernelCall &k : prog.kernels) {
    bool fixed = !k.outputs.empty();
    for (int64_t id : k.inputs)
      fixed = fixed && known[id];
    int64_t bytes = 0;
    for (int64_t id : k.outputs) {
      const BufferDesc &b = prog.buffers[id];
      fixed = fixed && b.kind == BufferKind::arena;
      bytes += layouts[id].byteSize(b.dtype, b.shape);
    }
    fixed = fixed && stored + bytes <= std::max<int64_t>(weightBytes, 1 << 20);
    atLoad.push_back(fixed);
    if (fixed) {
      stored += bytes;
      for (int64_t id : k.outputs)
        known[id] = true;
    }
  }
  return atLoad;
}

/// Places, after the Program's arena, the arena buffers that need storage
/// of their own, and returns the bytes that takes: those whose layout needs
/// more bytes than their arena slot (channels padded to a whole block),
/// shared by buffers whose kernels (first to last that touches them) do not
/// overlap; and the results of kernels run at load, kept for every run.
/// Such buffers are only touched by layout-aware kernels or computed at
/// load, so no view (reshape) of the arena aliases them.
static int64_t placeOwnBuffers(const Program &prog,
                               const std::vector<Layout> &layouts,
                               const std::vector<bool> &atLoad, int64_t base,
                               std::vector<int64_t> &offset) {
  offset.assign(prog.buffers.size(), -1);
  std::vector<bool> kept(prog.buffers.size(), false);
  for (size_t k = 0; k < prog.kernels.size(); ++k)
    if (atLoad[k])
      for (int64_t id : prog.kernels[k].outputs)
        kept[id] = true;
  std::vector<int64_t> ids;
  std::vector<LiveInterval> intervals;
  for (const BufferDesc &b : prog.buffers) {
    int64_t bytes = layouts[b.id].byteSize(b.dtype, b.shape);
    if (b.kind != BufferKind::arena || (bytes <= b.byteSize() && !kept[b.id]))
      continue;
    if (kept[b.id]) {
      ids.push_back(b.id);
      intervals.push_back({bytes, 0, int64_t(prog.kernels.size())});
      continue;
    }
    LiveInterval li{bytes, -1, -1};
    for (size_t k = 0; k < prog.kernels.size(); ++k)
      for (const auto *ids :
           {&prog.kernels[k].inputs, &prog.kernels[k].outputs})
        if (std::find(ids->begin(), ids->end(), b.id) != ids->end()) {
          li.start = li.start < 0 ? int64_t(k) : li.start;
          li.end = int64_t(k);
        }
    ids.push_back(b.id);
    intervals.push_back(li);
  }
  int64_t bytes = assignArenaOffsets(intervals);
  for (size_t i = 0; i < ids.size(); ++i)
    offset[ids[i]] = base + intervals[i].offset;
  return bytes;
}

StatusOr<Executable> Executable::create(Program program, TensorMap weights,
                                        const std::string &backend) {
  try {
    StatusOr<const Backend *> b = getBackend(backend);
    if (!b)
      return b.status();
    // An in-memory Program gets the same validation as one read from a file.
    StatusOr<Program> checked = Program::fromJson(program.toJson());
    if (!checked)
      return checked.status();

    Executable exe;
    Impl &impl = *exe.impl_;
    impl.program = std::move(*checked);
    impl.backendName = backend;
    impl.backend = *b;

    std::vector<std::string> problems;
    for (size_t i = 0; i < impl.program.kernels.size(); ++i) {
      const KernelCall &k = impl.program.kernels[i];
      if (!impl.backend->supports(k.op))
        problems.push_back("kernel " + std::to_string(i) + ": backend '" +
                           backend + "' has no kernel for op '" + k.op + "'" +
                           (k.loc.empty() ? "" : " (" + k.loc + ")"));
    }

    std::vector<std::string> missing;
    for (const BufferDesc &buf : impl.program.buffers) {
      if (buf.kind != BufferKind::param && buf.kind != BufferKind::constant)
        continue;
      auto it = weights.find(buf.name);
      if (it == weights.end() || !it->second.defined()) {
        missing.push_back("'" + buf.name + "'");
        continue;
      }
      const Tensor &t = it->second;
      if (t.dtype() != buf.dtype || t.shape() != buf.shape)
        problems.push_back(std::string(bufferKindName(buf.kind)) + " '" +
                           buf.name + "': expected " +
                           typeAndShape(buf.dtype, buf.shape) + ", got " +
                           typeAndShape(t.dtype(), t.shape()));
    }
    if (!missing.empty())
      problems.insert(problems.begin(),
                      "missing weight" +
                          std::string(missing.size() > 1 ? "s: " : ": ") +
                          join(missing));
    if (!problems.empty())
      return Status::error(join(problems, "; "));

    impl.weights = std::move(weights);
    std::vector<Layout> layouts;
    if (Status s = prepareKernels(impl.program, *impl.backend, impl.weights,
                                  impl.kernels, layouts);
        !s)
      return s;
    // Zeroed: padded channels must start (and stay) zero.
    const Program &prog = impl.program;
    impl.atLoad = weightOnlyKernels(prog, layouts);
    int64_t base = (prog.arenaBytes + kArenaAlignment - 1) / kArenaAlignment *
                   kArenaAlignment;
    int64_t extra =
        placeOwnBuffers(prog, layouts, impl.atLoad, base, impl.ownOffset);
    impl.arenaStorage.assign(static_cast<size_t>(base + extra) + 64, 0);
    uintptr_t p = reinterpret_cast<uintptr_t>(impl.arenaStorage.data());
    impl.arena = impl.arenaStorage.data() + ((64 - p % 64) % 64);
    for (size_t i = 0; i < prog.kernels.size(); ++i) {
      if (!impl.atLoad[i])
        continue;
      const KernelCall &k = prog.kernels[i];
      KernelContext ctx;
      ctx.call = &k;
      for (const auto &[ids, views] : {std::pair{&k.inputs, &ctx.inputs},
                                       std::pair{&k.outputs, &ctx.outputs}})
        for (int64_t id : *ids) {
          const BufferDesc &d = prog.buffers[id];
          views->push_back({d.dtype, d.shape, impl.bufferData(d)});
        }
      if (Status s = impl.kernels[i]->run(ctx); !s)
        return kernelError(i, k, " (weights only, run at load)", s);
    }
    return exe;
  } catch (const std::exception &e) {
    return Status::error(std::string("creating executable: ") + e.what());
  }
}

StatusOr<Executable> Executable::load(const std::string &path,
                                      const std::string &backend) {
  // Check the backend first: a bad name should not cost a file read. An
  // empty name means the target the Program was compiled for.
  if (!backend.empty())
    if (StatusOr<const Backend *> b = getBackend(backend); !b)
      return b.status();
  StatusOr<Artifact> artifact = readArtifact(path);
  if (!artifact)
    return artifact.status();
  std::string chosen = backend.empty() ? artifact->program.target : backend;
  if (chosen.empty())
    chosen = "reference";
  StatusOr<Executable> exe = create(std::move(artifact->program),
                                    std::move(artifact->weights), chosen);
  if (!exe)
    return Status::error("artifact '" + path + "': " + exe.status().message());
  return exe;
}

StatusOr<TensorMap> Executable::run(const TensorMap &inputs,
                                    const RunOptions &options) {
  try {
    Impl &impl = *impl_;
    const Program &prog = impl.program;
    std::vector<std::string> problems;
    std::set<std::string> expected;
    for (const IOBinding &in : prog.inputs)
      expected.insert(in.name);
    for (const auto &[name, t] : inputs)
      if (!expected.count(name)) {
        std::vector<std::string> names;
        for (const IOBinding &in : prog.inputs)
          names.push_back("'" + in.name + "'");
        problems.push_back("unknown input '" + name + "' (inputs are: " +
                           (names.empty() ? "none" : join(names)) + ")");
      }

    std::vector<BufferView> views(prog.buffers.size());
    for (const BufferDesc &b : prog.buffers)
      views[b.id] = {b.dtype, b.shape, nullptr};
    for (const IOBinding &in : prog.inputs) {
      const BufferDesc &b = prog.buffers[in.buffer];
      auto it = inputs.find(in.name);
      if (it == inputs.end()) {
        problems.push_back("missing input '" + in.name + "' (" +
                           typeAndShape(b.dtype, b.shape) + ")");
        continue;
      }
      const Tensor &t = it->second;
      if (!t.defined()) {
        problems.push_back("input '" + in.name + "' has no data");
        continue;
      }
      if (t.dtype() != b.dtype || t.shape() != b.shape) {
        problems.push_back("input '" + in.name + "': expected " +
                           typeAndShape(b.dtype, b.shape) + ", got " +
                           typeAndShape(t.dtype(), t.shape()));
        continue;
      }
      // Kernels never write input buffers, so the caller's bytes are used
      // in place.
      views[in.buffer].data = const_cast<void *>(t.data());
    }
    if (!problems.empty())
      return Status::error(join(problems, "; "));

    std::map<int64_t, Tensor> outputBuffers;
    for (const BufferDesc &b : prog.buffers) {
      switch (b.kind) {
      case BufferKind::param:
      case BufferKind::constant:
      case BufferKind::arena:
        views[b.id].data = impl.bufferData(b);
        break;
      case BufferKind::output: {
        // Every element of an output is written by its kernel.
        auto spare = impl.spareOutputs.find(b.id);
        Tensor t =
            spare != impl.spareOutputs.end() && spare->second.isSoleOwner()
                ? spare->second
                : Tensor::zeros(b.dtype, b.shape);
        views[b.id].data = t.data();
        outputBuffers[b.id] = std::move(t);
        break;
      }
      case BufferKind::input:
        break;
      }
    }

    impl.profile.clear();
    for (size_t i = 0; i < prog.kernels.size(); ++i) {
      const KernelCall &k = prog.kernels[i];
      if (impl.atLoad[i]) {
        // Computed by create(); listed with no time.
        if (options.profile)
          impl.profile.push_back(
              {k.op, k.loc, impl.kernels[i]->impl() + " (at load)", 0.0});
        continue;
      }
      KernelContext ctx;
      ctx.call = &k;
      for (int64_t id : k.inputs)
        ctx.inputs.push_back(views[id]);
      for (int64_t id : k.outputs)
        ctx.outputs.push_back(views[id]);
      // An input sharing storage with an output is read from a copy unless
      // the op is pointwise and the sharing is exact, element for element
      // (for a reshape, which the planner makes a view of its input: the
      // same bytes). A narrower result over a wider operand is not exact:
      // split across threads, one part's result bytes land on elements
      // another part has yet to read.
      std::vector<std::vector<uint8_t>> copies;
      for (BufferView &in : ctx.inputs)
        for (const BufferView &out : ctx.outputs)
          if (overlaps(in, out) &&
              !(isPointwise(k.op) && in.data == out.data &&
                (in.shape == out.shape || k.op == "reshape") &&
                dtypeSize(out.dtype) == dtypeSize(in.dtype))) {
            const auto *bytes = static_cast<const uint8_t *>(in.data);
            copies.emplace_back(bytes,
                                bytes + in.numElements() * dtypeSize(in.dtype));
            in.data = copies.back().data();
            break;
          }
      auto start = std::chrono::steady_clock::now();
      Status s = impl.kernels[i]->run(ctx);
      if (!s)
        return kernelError(i, k, "", s);
      if (options.profile)
        impl.profile.push_back({k.op, k.loc, impl.kernels[i]->impl(),
                                std::chrono::duration<double>(
                                    std::chrono::steady_clock::now() - start)
                                    .count()});
    }

    TensorMap outputs;
    for (const IOBinding &out : prog.outputs)
      outputs[out.name] = outputBuffers.at(out.buffer);
    impl.spareOutputs = std::move(outputBuffers);
    return outputs;
  } catch (const std::exception &e) {
    return Status::error(std::string("run: ") + e.what());
  }
}

Status Executable::save(const std::string &path) const {
  // Only the weights the Program binds go into the artifact.
  TensorMap used;
  for (const BufferDesc &b : impl_->program.buffers)
    if (b.kind == BufferKind::param || b.kind == BufferKind::constant)
      used[b.name] = impl_->weights.at(b.name);
  return writeArtifact(path, impl_->program, used);
}

const Program &Executable::program() const { return impl_->program; }
const TensorMap &Executable::weights() const { return impl_->weights; }
const std::string &Executable::backend() const { return impl_->backendName; }
const std::vector<KernelTiming> &Executable::lastProfile() const {
  return impl_->profile;
}

std::vector<KernelImpl> Executable::kernelImpls() const {
  std::vector<KernelImpl> out;
  const Program &prog = impl_->program;
  for (size_t i = 0; i < prog.kernels.size(); ++i) {
    const std::string &name = impl_->kernels[i]->impl();
    bool atLoad = impl_->atLoad[i];
    out.push_back(
        {prog.kernels[i].op, prog.kernels[i].loc, name,
         impl_->backendName != "reference" && name == "reference" && !atLoad,
         atLoad});
  }
  return out;
}

static std::vector<Executable::Signature>
signature(const Program &prog, const std::vector<IOBinding> &list) {
  std::vector<Executable::Signature> out;
  for (const IOBinding &b : list) {
    const BufferDesc &d = prog.buffers[b.buffer];
    out.push_back({b.name, d.dtype, d.shape});
  }
  return out;
}

std::vector<Executable::Signature> Executable::inputSignature() const {
  return signature(impl_->program, impl_->program.inputs);
}
std::vector<Executable::Signature> Executable::outputSignature() const {
  return signature(impl_->program, impl_->program.outputs);
}

} // namespace kiln
