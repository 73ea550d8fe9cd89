//===- frontends/onnx/Importer.cpp - ONNX model -> kiln IR ----------------===//
//
// Reads a ModelProto, checks the graph (defined names, no cycles, declared
// shapes), and walks its nodes in topological order, dispatching each to the
// handler registered for its op type and opset. Initializers become
// parameters (`kiln.param`), other graph inputs become inputs (`kiln.name`);
// each op is located at NameLoc(node name, model file:node index).
//
// Unsupported ops do not stop the walk: their outputs are marked unavailable,
// nodes that depend on them are skipped, and the import ends with one error
// listing every unsupported op type with its count, first node names and
// opset.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"
#include "frontends/ModuleImpl.h"
#include "ir/ElementTypes.h"
#include "kiln/onnx.h"
#include "runtime/onnx/OnnxTensor.h"

#include "mlir/IR/Verifier.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace kiln::onnx_import {

namespace fs = std::filesystem;

//===----------------------------------------------------------------------===//
// Types and tensors
//===----------------------------------------------------------------------===//

bool isFloat(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 ||
         t == DType::f64;
}

std::optional<DType> dtypeFromOnnx(int32_t t) { return dtypeFromOnnxType(t); }

std::string onnxTypeName(int32_t t) {
  if (::onnx::TensorProto::DataType_IsValid(t))
    return ::onnx::TensorProto::DataType_Name(
        static_cast<::onnx::TensorProto::DataType>(t));
  return "type " + std::to_string(t);
}

std::vector<int64_t> shapeOf(mlir::Value v) {
  auto t = mlir::cast<mlir::RankedTensorType>(v.getType());
  return {t.getShape().begin(), t.getShape().end()};
}

DType dtypeOf(mlir::Value v) {
  auto t = mlir::cast<mlir::RankedTensorType>(v.getType());
  return fromMlirElementType(t.getElementType()).value_or(DType::f32);
}

namespace {

/// Reads the bytes of an external-data tensor, refusing locations outside the
/// model's folder.
std::string readExternalData(const ::onnx::TensorProto &proto,
                             const fs::path &modelDir) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto &kv : proto.external_data()) {
    if (kv.key() == "location")
      location = kv.value();
    else if (kv.key() == "offset")
      offset = std::stoll(kv.value());
    else if (kv.key() == "length")
      length = std::stoll(kv.value());
  }
  if (location.empty())
    throw ImportError("tensor '" + proto.name() +
                      "' has external data without a location");
  fs::path rel(location);
  std::error_code ec;
  fs::path base = fs::weakly_canonical(modelDir.empty() ? "." : modelDir, ec);
  fs::path full = fs::weakly_canonical(base / rel, ec);
  auto [baseEnd, fullIt] =
      std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (rel.is_absolute() || baseEnd != base.end() || full == base)
    throw ImportError("external data location '" + location + "' of tensor '" +
                      proto.name() + "' escapes the model's folder");
  std::ifstream in(full, std::ios::binary);
  if (!in)
    throw ImportError("cannot open external data file '" + full.string() +
                      "' of tensor '" + proto.name() + "'");
  in.seekg(0, std::ios::end);
  int64_t size = in.tellg();
  if (offset < 0 || offset > size || (length >= 0 && offset + length > size))
    throw ImportError("external data of tensor '" + proto.name() +
                      "' (offset " + std::to_string(offset) + ", length " +
                      std::to_string(length) + ") lies outside '" +
                      full.string() + "' (" + std::to_string(size) + " bytes)");
  if (length < 0)
    length = size - offset;
  std::string bytes(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  in.read(bytes.data(), length);
  return bytes;
}

} // namespace

/// A TensorProto's value. Throws Unsupported for element types kiln lacks.
Tensor tensorFromProto(const ::onnx::TensorProto &proto,
                       const fs::path &modelDir) {
  if (!dtypeFromOnnx(proto.data_type()))
    throw Unsupported("tensor '" + proto.name() + "' has element type " +
                      onnxTypeName(proto.data_type()));
  std::string external;
  bool isExternal = proto.data_location() == ::onnx::TensorProto::EXTERNAL;
  if (isExternal)
    external = readExternalData(proto, modelDir);
  StatusOr<Tensor> t =
      tensorFromOnnxProto(proto, isExternal ? &external : nullptr);
  if (!t)
    throw ImportError(t.status().message());
  return *t;
}

//===----------------------------------------------------------------------===//
// Handler registry
//===----------------------------------------------------------------------===//

void HandlerRegistry::add(const std::string &opType, int sinceVersion,
                          Handler fn, int untilVersion) {
  entries_[opType].push_back({sinceVersion, untilVersion, std::move(fn)});
}

const Handler *HandlerRegistry::lookup(const std::string &opType,
                                       int opset) const {
  auto it = entries_.find(opType);
  if (it == entries_.end())
    return nullptr;
  for (const auto &e : it->second)
    if (opset >= e.since && opset <= e.until)
      return &e.fn;
  return nullptr;
}

const HandlerRegistry &handlerRegistry() {
  static const HandlerRegistry registry = [] {
    HandlerRegistry r;
    registerMathHandlers(r);
    registerEinsumHandler(r);
    registerAttentionHandler(r);
    registerNNHandlers(r);
    registerTensorHandlers(r);
    registerReductionHandlers(r);
    registerIndexingHandlers(r);
    return r;
  }();
  return registry;
}

//===----------------------------------------------------------------------===//
// The importer
//===----------------------------------------------------------------------===//

/// What an ONNX tensor name stands for while importing.
struct Slot {
  mlir::Value value;          ///< the IR value, once materialized
  std::optional<Tensor> host; ///< the value when known at import time
  bool isInitializer = false;
  /// An initializer also listed as a graph input (IR < 4, or a default a
  /// caller may override): always a parameter, never folded into the IR.
  bool isOverridable = false;
  /// Set when the value is unavailable: produced by an unsupported node or
  /// of an element type kiln lacks.
  std::optional<std::string> unavailable;
};

/// One unsupported op type, for the final error.
struct UnsupportedOp {
  int opset = 0;
  int count = 0;
  std::vector<std::string> nodes;
  std::string detail;
};

class Importer {
public:
  Importer(const ::onnx::ModelProto &model, const std::string &modelPath,
           const kiln::onnx::ImportOptions &options)
      : model_(model), graph_(model.graph()), modelPath_(modelPath),
        modelDir_(fs::path(modelPath).parent_path()), options_(options) {}

  StatusOr<Module> run();

  mlir::MLIRContext *ctx() { return context_.get(); }
  const fs::path &modelDir() const { return modelDir_; }
  mlir::OpBuilder &builder() { return *builder_; }
  Slot *slot(const std::string &name) {
    auto it = slots_.find(name);
    return it == slots_.end() ? nullptr : &it->second;
  }
  mlir::Value materialize(const std::string &name);
  mlir::Value constantOp(const Tensor &t, mlir::Location loc);
  bool used(const std::string &name) const { return usedNames_.count(name); }
  void define(const std::string &name, Slot s) { slots_[name] = std::move(s); }

private:
  Status error(const std::string &message) const {
    return Status::error(fs::path(modelPath_).filename().string() + ": " +
                         message);
  }
  Status declareInputs();
  Status sortNodes(std::vector<int> &order);
  std::string nodeName(int index) const {
    const auto &n = graph_.node(index);
    return n.name().empty() ? n.op_type() + "_" + std::to_string(index)
                            : n.name();
  }
  void recordUnsupported(const ::onnx::NodeProto &node, int opset,
                         const std::string &name, const std::string &detail);
  std::string unsupportedMessage() const;
  int opsetFor(const std::string &domain) const;

  const ::onnx::ModelProto &model_;
  const ::onnx::GraphProto &graph_;
  std::string modelPath_;
  fs::path modelDir_;
  const kiln::onnx::ImportOptions &options_;

  std::unique_ptr<mlir::MLIRContext> context_;
  mlir::OwningOpRef<mlir::ModuleOp> module_;
  mlir::func::FuncOp func_;
  std::unique_ptr<mlir::OpBuilder> builder_;
  std::map<std::string, Slot> slots_;
  std::set<std::string> usedNames_;
  /// Per block argument: ("kiln.param" | "kiln.name", name).
  std::vector<std::pair<std::string, std::string>> argNames_;
  TensorMap weights_;
  std::vector<std::string> unsupportedOrder_;
  std::map<std::string, UnsupportedOp> unsupported_;
};

int Importer::opsetFor(const std::string &domain) const {
  for (const auto &op : model_.opset_import())
    if (op.domain() == domain || (domain.empty() && op.domain() == "ai.onnx") ||
        (domain == "ai.onnx" && op.domain().empty()))
      return static_cast<int>(op.version());
  return -1;
}

mlir::Value Importer::constantOp(const Tensor &t, mlir::Location loc) {
  auto type = toMlirTensorType(t.dtype(), t.shape(), ctx());
  mlir::DenseElementsAttr attr;
  if (t.dtype() == DType::i1) {
    llvm::SmallVector<bool> bits;
    for (int64_t i = 0; i < t.numElements(); ++i)
      bits.push_back(t.dataAs<uint8_t>()[i] != 0);
    attr = mlir::DenseElementsAttr::get(type, bits);
  } else {
    attr = mlir::DenseElementsAttr::getFromRawBuffer(
        type, llvm::ArrayRef<char>(static_cast<const char *>(t.data()),
                                   t.byteSize()));
  }
  mlir::OperationState state(loc, "kiln.constant");
  state.addAttribute("value", attr);
  state.addTypes(type);
  return builder_->create(state)->getResult(0);
}

/// Whether an initializer becomes a kiln.constant instead of a parameter:
/// a fixed (not overridable) initializer that is a float scalar (a scale, a
/// mask fill), a small integer tensor (a shape, indices) or a mask (boolean,
/// or float holding only 0 and large negative values, or zeros of rank 3 or
/// more). PyTorch's
/// torch.export-based exporter stores such values as initializers where the
/// TorchScript one emitted Constant nodes; as constants the passes can read
/// them (the attention scale, fill and causal mask), as parameters they
/// could not. Weights stay parameters, stored beside the module.
static bool inlinesAsConstant(const Slot &s) {
  constexpr int64_t kSmallIntegerElements = 64;
  constexpr int64_t kMaskElements = int64_t(1) << 24;
  if (s.isOverridable)
    return false;
  const Tensor &t = *s.host;
  int64_t n = t.numElements();
  if (n <= 1)
    return true;
  if (n > kMaskElements)
    return false;
  if (t.dtype() == DType::i1)
    return true;
  if (!isFloat(t.dtype()))
    return n <= kSmallIntegerElements;
  // A float additive mask (the exporter's constant for is_causal=True): only
  // 0 and -inf or a large negative fill, at least one of them masked. No
  // learned weight looks like this; the scan stops at the first value that
  // is neither. Zeros of rank 3 or more are the torch.zeros that the
  // torch.export-based exporter folds into an initializer (GPT-NeoX's
  // baddbmm input, an additive mask of nothing); as a constant it computes
  // the same, and the passes can see it is zero.
  if (t.dtype() != DType::f32)
    return false;
  const float *v = t.dataAs<float>();
  bool masked = false;
  for (int64_t i = 0; i < n; ++i) {
    if (v[i] == 0.0f)
      continue;
    if (!(v[i] <= -1e4f))
      return false;
    masked = true;
  }
  return masked || t.shape().size() >= 3;
}

mlir::Value Importer::materialize(const std::string &name) {
  Slot &s = slots_.at(name);
  if (s.value)
    return s.value;
  if (s.isInitializer && !(s.host && inlinesAsConstant(s))) {
    // Parameters are block arguments; weights live beside the module.
    auto loc =
        mlir::NameLoc::get(mlir::StringAttr::get(ctx(), name),
                           mlir::FileLineColLoc::get(ctx(), modelPath_, 0, 0));
    auto type = toMlirTensorType(s.host->dtype(), s.host->shape(), ctx());
    s.value = func_.getBody().front().addArgument(type, loc);
    argNames_.emplace_back("kiln.param", name);
    weights_[name] = *s.host;
    return s.value;
  }
  auto loc =
      mlir::NameLoc::get(mlir::StringAttr::get(ctx(), name),
                         mlir::FileLineColLoc::get(ctx(), modelPath_, 0, 0));
  s.value = constantOp(*s.host, loc);
  return s.value;
}

Status Importer::declareInputs() {
  for (const auto &init : graph_.initializer()) {
    Slot s;
    s.isInitializer = true;
    try {
      s.host = tensorFromProto(init, modelDir_);
    } catch (const Unsupported &e) {
      s.unavailable = e.what();
    } catch (const ImportError &e) {
      return error(std::string("initializer: ") + e.what());
    } catch (const std::exception &e) {
      return error("initializer '" + init.name() + "': " + e.what());
    }
    slots_[init.name()] = std::move(s);
  }
  // Names given for inputs the graph does not have, before any other
  // input error (a misspelt name explains a missing shape).
  std::set<std::string> inputNames;
  std::string names;
  for (const auto &in : graph_.input()) {
    inputNames.insert(in.name());
    names += (names.empty() ? "" : ", ") + in.name();
  }
  auto notAnInput = [&](const std::string &what) {
    return error(what +
                 ", which is not a graph input; the graph's inputs "
                 "are: " +
                 (names.empty() ? "(none)" : names));
  };
  for (const auto &[name, shape] : options_.inputShapes)
    if (!inputNames.count(name))
      return notAnInput("a shape is given for '" + name + "'");
  for (const auto &[name, shape] : options_.valueShapes)
    if (!inputNames.count(name))
      return notAnInput("a value is given for '" + name + "'");
  for (const auto &[name, value] : options_.inputValues)
    if (!inputNames.count(name))
      return notAnInput("an input value is given for '" + name + "'");
  mlir::Block &body = func_.getBody().front();
  for (const auto &in : graph_.input()) {
    if (auto it = slots_.find(in.name()); it != slots_.end()) {
      // An initializer listed as input (IR < 4): a parameter.
      it->second.isOverridable = true;
      continue;
    }
    Slot s;
    if (!in.type().has_tensor_type()) {
      s.unavailable = "input '" + in.name() + "' is not a tensor";
      slots_[in.name()] = s;
      continue;
    }
    const auto &tt = in.type().tensor_type();
    auto dtype = dtypeFromOnnx(tt.elem_type());
    if (!dtype) {
      s.unavailable = "input '" + in.name() + "' has element type " +
                      onnxTypeName(tt.elem_type());
      slots_[in.name()] = s;
      continue;
    }
    // The shape given for the input, else the shape of its value.
    // How a contradiction is worded: "<input> declares ..., " + givenText.
    const std::vector<int64_t> *given = nullptr;
    std::string givenText;
    if (auto it = options_.inputShapes.find(in.name());
        it != options_.inputShapes.end()) {
      given = &it->second;
      givenText =
          "the given shape " + shapeToString(*given) + " contradicts it";
    } else if (auto value = options_.valueShapes.find(in.name());
               value != options_.valueShapes.end()) {
      given = &value->second;
      givenText = "the value given for it has shape " + shapeToString(*given);
    }
    std::vector<int64_t> shape;
    if (!tt.has_shape()) {
      if (!given)
        return error("input '" + in.name() +
                     "' has no declared shape; give one with "
                     "--input-shape " +
                     in.name() + "=D0xD1x...");
      shape = *given;
    } else {
      const auto &dims = tt.shape().dim();
      if (given && given->size() != static_cast<size_t>(dims.size()))
        return error("input '" + in.name() + "' has rank " +
                     std::to_string(dims.size()) + ", " + givenText);
      for (int d = 0; d < dims.size(); ++d) {
        bool known = dims[d].has_dim_value();
        if (given) {
          if (known && dims[d].dim_value() != (*given)[d])
            return error(
                "input '" + in.name() + "' declares dim " + std::to_string(d) +
                " = " + std::to_string(dims[d].dim_value()) + ", " + givenText);
          shape.push_back((*given)[d]);
        } else if (known) {
          shape.push_back(dims[d].dim_value());
        } else {
          std::string param =
              dims[d].has_dim_param() ? " '" + dims[d].dim_param() + "'" : "";
          return error("input '" + in.name() + "' has dynamic dim " +
                       std::to_string(d) + param +
                       "; give its shape with --input-shape " + in.name() +
                       "=D0xD1x... (ImportOptions::inputShapes)");
        }
      }
    }
    for (int64_t d : shape)
      if (d < 0)
        return error("input '" + in.name() + "' has negative dim in " +
                     shapeToString(shape));
    auto loc =
        mlir::NameLoc::get(mlir::StringAttr::get(ctx(), in.name()),
                           mlir::FileLineColLoc::get(ctx(), modelPath_, 0, 0));
    s.value = body.addArgument(toMlirTensorType(*dtype, shape, ctx()), loc);
    argNames_.emplace_back("kiln.name", in.name());
    if (auto v = options_.inputValues.find(in.name());
        v != options_.inputValues.end()) {
      if (v->second.dtype() != *dtype || v->second.shape() != shape)
        return error("the value given for input '" + in.name() + "' is " +
                     dtypeName(v->second.dtype()) + " " +
                     shapeToString(v->second.shape()) + ", the input is " +
                     dtypeName(*dtype) + " " + shapeToString(shape));
      s.host = v->second;
    }
    slots_[in.name()] = std::move(s);
  }
  return Status::ok();
}

/// Orders the nodes so that each comes after the producers of its inputs;
/// reports undefined names and cycles.
Status Importer::sortNodes(std::vector<int> &order) {
  std::map<std::string, int> producer;
  for (int i = 0; i < graph_.node_size(); ++i)
    for (const auto &out : graph_.node(i).output()) {
      if (out.empty())
        continue;
      if (slots_.count(out))
        return error("node '" + nodeName(i) + "' (" + graph_.node(i).op_type() +
                     ") redefines '" + out + "', a graph input or initializer");
      if (auto [it, fresh] = producer.emplace(out, i); !fresh)
        return error("tensor '" + out + "' is produced by two nodes, '" +
                     nodeName(it->second) + "' and '" + nodeName(i) + "'");
    }
  std::vector<std::vector<int>> consumers(graph_.node_size());
  std::vector<int> pending(graph_.node_size(), 0);
  for (int i = 0; i < graph_.node_size(); ++i)
    for (const auto &in : graph_.node(i).input()) {
      if (in.empty())
        continue;
      usedNames_.insert(in);
      if (slots_.count(in))
        continue;
      auto it = producer.find(in);
      if (it == producer.end())
        return error("node '" + nodeName(i) + "' (" + graph_.node(i).op_type() +
                     ") uses undefined tensor '" + in + "'");
      consumers[it->second].push_back(i);
      ++pending[i];
    }
  for (const auto &out : graph_.output()) {
    usedNames_.insert(out.name());
    if (!slots_.count(out.name()) && !producer.count(out.name()))
      return error("graph output '" + out.name() + "' is never defined");
  }
  // Kahn's algorithm, keeping the file's order among ready nodes.
  std::set<int> ready;
  for (int i = 0; i < graph_.node_size(); ++i)
    if (pending[i] == 0)
      ready.insert(i);
  while (!ready.empty()) {
    int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (int c : consumers[i])
      if (--pending[c] == 0)
        ready.insert(c);
  }
  if (static_cast<int>(order.size()) != graph_.node_size()) {
    std::string names;
    int listed = 0;
    for (int i = 0; i < graph_.node_size() && listed < 5; ++i)
      if (pending[i] > 0) {
        names += (listed++ ? ", '" : "'") + nodeName(i) + "'";
      }
    return error("the graph has a cycle through nodes " + names);
  }
  return Status::ok();
}

void Importer::recordUnsupported(const ::onnx::NodeProto &node, int opset,
                                 const std::string &name,
                                 const std::string &detail) {
  std::string key = node.domain().empty() || node.domain() == "ai.onnx"
                        ? node.op_type()
                        : node.domain() + "." + node.op_type();
  auto [it, fresh] = unsupported_.try_emplace(key);
  if (fresh)
    unsupportedOrder_.push_back(key);
  auto &u = it->second;
  u.opset = opset;
  ++u.count;
  if (u.nodes.size() < 3)
    u.nodes.push_back(name);
  if (u.detail.empty())
    u.detail = detail;
}

std::string Importer::unsupportedMessage() const {
  int nodes = 0;
  for (const auto &[k, u] : unsupported_)
    nodes += u.count;
  std::ostringstream os;
  os << "unsupported ONNX ops in '" << fs::path(modelPath_).filename().string()
     << "' (" << unsupported_.size() << " op type"
     << (unsupported_.size() == 1 ? "" : "s") << ", " << nodes << " node"
     << (nodes == 1 ? "" : "s") << "):";
  for (const auto &key : unsupportedOrder_) {
    const auto &u = unsupported_.at(key);
    os << "\n  " << key << " (opset " << u.opset << "): " << u.count
       << (u.count == 1 ? " node" : " nodes") << ", first: ";
    for (size_t i = 0; i < u.nodes.size(); ++i)
      os << (i ? ", " : "") << "'" << u.nodes[i] << "'";
    if (!u.detail.empty())
      os << " (" << u.detail << ")";
  }
  return os.str();
}

StatusOr<Module> Importer::run() {
  if (model_.opset_import_size() == 0)
    return error("the model imports no opset");
  context_ = createKilnContext();
  DiagnosticCollector diags(ctx(), /*withLocations=*/false);
  builder_ = std::make_unique<mlir::OpBuilder>(ctx());
  auto fileLoc = mlir::FileLineColLoc::get(ctx(), modelPath_, 0, 0);
  std::string funcName = graph_.name().empty()
                             ? fs::path(modelPath_).stem().string()
                             : graph_.name();
  if (funcName.empty())
    funcName = "model";
  module_ = mlir::ModuleOp::create(fileLoc);
  builder_->setInsertionPointToEnd(module_->getBody());
  func_ = builder_->create<mlir::func::FuncOp>(
      fileLoc, funcName, mlir::FunctionType::get(ctx(), {}, {}));
  mlir::Block *body = func_.addEntryBlock();
  builder_->setInsertionPointToEnd(body);

  if (auto st = declareInputs(); !st)
    return st;
  std::vector<int> order;
  if (auto st = sortNodes(order); !st)
    return st;

  const auto &registry = handlerRegistry();
  for (int index : order) {
    const auto &node = graph_.node(index);
    std::string name = nodeName(index);
    bool defaultDomain = node.domain().empty() || node.domain() == "ai.onnx";
    int opset = opsetFor(node.domain());
    auto markUnavailable = [&](const std::string &why) {
      for (const auto &out : node.output())
        if (!out.empty()) {
          Slot s;
          s.unavailable = why;
          slots_[out] = s;
        }
    };
    const Handler *handler =
        defaultDomain ? registry.lookup(node.op_type(), opset) : nullptr;
    if (!handler) {
      recordUnsupported(node, opset, name, "");
      markUnavailable("produced by unsupported node '" + name + "'");
      continue;
    }
    // Skip nodes that read an unavailable value; an input of a type kiln
    // lacks makes this node the unsupported one.
    std::optional<std::string> skip;
    bool upstream = false;
    for (const auto &in : node.input()) {
      if (in.empty())
        continue;
      Slot &s = slots_.at(in);
      if (s.unavailable) {
        skip = *s.unavailable;
        upstream = s.unavailable->rfind("produced by", 0) == 0;
        break;
      }
    }
    if (skip) {
      if (!upstream)
        recordUnsupported(node, opset, name, *skip);
      markUnavailable(upstream ? *skip
                               : "produced by unsupported node '" + name + "'");
      continue;
    }
    auto loc = mlir::NameLoc::get(
        mlir::StringAttr::get(ctx(), name),
        mlir::FileLineColLoc::get(ctx(), modelPath_, index + 1, 1));
    std::string where = "node '" + name + "' (" + node.op_type() + ", opset " +
                        std::to_string(opset) + "): ";
    try {
      NodeContext nc(*this, node, opset, loc);
      (*handler)(nc);
      for (int i = 0; i < node.output_size(); ++i) {
        const auto &out = node.output(i);
        if (out.empty() || !used(out) || slots_.count(out))
          continue;
        return error(where + "output " + std::to_string(i) + " ('" + out +
                     "') is not produced by the importer");
      }
    } catch (const Unsupported &e) {
      recordUnsupported(node, opset, name, e.what());
      markUnavailable("produced by unsupported node '" + name + "'");
    } catch (const std::exception &e) {
      return error(where + e.what());
    }
  }
  if (!unsupported_.empty())
    return Status::error(unsupportedMessage());

  // Outputs: check what the model declares against what was computed.
  llvm::SmallVector<mlir::Value> results;
  std::vector<std::string> resultNames;
  for (const auto &out : graph_.output()) {
    mlir::Value v = materialize(out.name());
    auto shape = shapeOf(v);
    DType dtype = dtypeOf(v);
    if (out.type().has_tensor_type()) {
      const auto &tt = out.type().tensor_type();
      auto declared = dtypeFromOnnx(tt.elem_type());
      if (tt.elem_type() != 0 && declared && *declared != dtype)
        return error("graph output '" + out.name() + "' is declared " +
                     dtypeName(*declared) + ", the graph computes " +
                     dtypeName(dtype));
      if (tt.has_shape()) {
        bool contradicts =
            tt.shape().dim_size() != static_cast<int>(shape.size());
        for (int d = 0; !contradicts && d < tt.shape().dim_size(); ++d)
          contradicts = tt.shape().dim(d).has_dim_value() &&
                        tt.shape().dim(d).dim_value() != shape[d];
        if (contradicts) {
          std::vector<int64_t> decl;
          for (const auto &dim : tt.shape().dim())
            decl.push_back(dim.has_dim_value() ? dim.dim_value() : -1);
          return error("graph output '" + out.name() + "' is declared " +
                       shapeToString(decl) + ", the graph computes " +
                       shapeToString(shape));
        }
      }
    }
    results.push_back(v);
    resultNames.push_back(out.name());
  }
  if (results.empty())
    return error("the graph has no outputs");
  builder_->setInsertionPointToEnd(body);
  builder_->create<mlir::func::ReturnOp>(fileLoc, results);
  func_.setFunctionType(mlir::FunctionType::get(
      ctx(), body->getArgumentTypes(), mlir::ValueRange(results).getTypes()));
  for (unsigned i = 0; i < argNames_.size(); ++i)
    func_.setArgAttr(i, argNames_[i].first,
                     mlir::StringAttr::get(ctx(), argNames_[i].second));
  for (unsigned i = 0; i < resultNames.size(); ++i)
    func_.setResultAttr(i, "kiln.name",
                        mlir::StringAttr::get(ctx(), resultNames[i]));
  if (mlir::failed(mlir::verify(*module_)))
    return error("the imported module failed to verify:\n" + diags.str());

  auto impl = std::make_unique<Module::Impl>();
  impl->module = std::move(module_);
  impl->context = std::move(context_);
  impl->weights = std::move(weights_);
  return Module(std::move(impl));
}

//===----------------------------------------------------------------------===//
// NodeContext
//===----------------------------------------------------------------------===//

NodeContext::NodeContext(Importer &importer, const ::onnx::NodeProto &node,
                         int opset, mlir::Location loc)
    : importer_(importer), node_(node), opset_(opset), loc_(loc) {}

mlir::MLIRContext *NodeContext::ctx() const { return importer_.ctx(); }
mlir::OpBuilder &NodeContext::builder() { return importer_.builder(); }

bool NodeContext::hasInput(int i) const {
  return i < node_.input_size() && !node_.input(i).empty();
}

mlir::Value NodeContext::input(int i) {
  if (!hasInput(i))
    fail("missing input " + std::to_string(i));
  return importer_.materialize(node_.input(i));
}

const Tensor *NodeContext::constant(int i) const {
  if (!hasInput(i))
    return nullptr;
  Slot *s = importer_.slot(node_.input(i));
  return s && s->host ? &*s->host : nullptr;
}

const Tensor &NodeContext::requireConstant(int i, const std::string &what) {
  if (!hasInput(i))
    fail("missing input " + std::to_string(i) + " (" + what + ")");
  const Tensor *t = constant(i);
  if (!t)
    unsupported("input '" + node_.input(i) + "' (" + what +
                ") must be known at import time; it is computed at run time "
                "(bind graph inputs with ImportOptions::inputValues)");
  return *t;
}

std::vector<int64_t> NodeContext::requireInts(int i, const std::string &what) {
  const Tensor &t = requireConstant(i, what);
  if (isFloat(t.dtype()))
    fail("input '" + node_.input(i) + "' (" + what +
         ") must hold integers, got " + dtypeName(t.dtype()));
  return host::toInts(t);
}

bool NodeContext::allInputsConstant() const {
  for (int i = 0; i < node_.input_size(); ++i)
    if (hasInput(i) && !constant(i))
      return false;
  return true;
}

std::vector<int64_t> NodeContext::shape(int i) const {
  if (const Tensor *t = constant(i))
    return t->shape();
  Slot *s = hasInput(i) ? importer_.slot(node_.input(i)) : nullptr;
  if (!s || !s->value)
    fail("missing input " + std::to_string(i));
  return shapeOf(s->value);
}

DType NodeContext::dtype(int i) const {
  if (const Tensor *t = constant(i))
    return t->dtype();
  Slot *s = hasInput(i) ? importer_.slot(node_.input(i)) : nullptr;
  if (!s || !s->value)
    fail("missing input " + std::to_string(i));
  return dtypeOf(s->value);
}

bool NodeContext::outputUsed(int i) const {
  return i < node_.output_size() && !node_.output(i).empty() &&
         importer_.used(node_.output(i));
}

void NodeContext::setOutput(int i, mlir::Value v) {
  if (i >= node_.output_size() || node_.output(i).empty())
    return;
  Slot s;
  s.value = v;
  importer_.define(node_.output(i), std::move(s));
}

void NodeContext::setOutput(int i, Tensor host) {
  if (i >= node_.output_size() || node_.output(i).empty())
    return;
  Slot s;
  s.host = std::move(host);
  importer_.define(node_.output(i), std::move(s));
}

const ::onnx::AttributeProto *NodeContext::attr(const std::string &name) const {
  for (const auto &a : node_.attribute())
    if (a.name() == name)
      return &a;
  return nullptr;
}

int64_t NodeContext::attrInt(const std::string &name, int64_t def) const {
  const auto *a = attr(name);
  return a ? a->i() : def;
}

double NodeContext::attrFloat(const std::string &name, double def) const {
  const auto *a = attr(name);
  return a ? a->f() : def;
}

std::string NodeContext::attrString(const std::string &name,
                                    const std::string &def) const {
  const auto *a = attr(name);
  return a ? a->s() : def;
}

std::vector<int64_t> NodeContext::attrInts(const std::string &name,
                                           std::vector<int64_t> def) const {
  const auto *a = attr(name);
  if (!a)
    return def;
  return {a->ints().begin(), a->ints().end()};
}

std::vector<double> NodeContext::attrFloats(const std::string &name) const {
  const auto *a = attr(name);
  if (!a)
    return {};
  return {a->floats().begin(), a->floats().end()};
}

Tensor NodeContext::attrTensor(const std::string &name) const {
  const auto *a = attr(name);
  if (!a || !a->has_t())
    fail("missing tensor attribute '" + name + "'");
  return tensorFromProto(a->t(), importer_.modelDir());
}

int64_t NodeContext::requireAttrInt(const std::string &name) const {
  const auto *a = attr(name);
  if (!a)
    fail("missing required attribute '" + name + "'");
  return a->i();
}

mlir::Value NodeContext::create(llvm::StringRef opName,
                                llvm::ArrayRef<mlir::Value> operands,
                                llvm::ArrayRef<mlir::NamedAttribute> attrs) {
  auto opInfo = mlir::RegisteredOperationName::lookup(opName, ctx());
  if (!opInfo)
    fail("unknown op '" + opName.str() + "'");
  auto attrDict = mlir::DictionaryAttr::get(ctx(), attrs);
  llvm::SmallVector<mlir::Type> types;
  DiagnosticCollector diags(ctx(), /*withLocations=*/false);
  auto *infer = opInfo->getInterface<mlir::InferTypeOpInterface>();
  if (!infer)
    fail("op '" + opName.str() + "' has no result-type inference");
  if (mlir::failed(infer->inferReturnTypes(ctx(), loc_, operands, attrDict,
                                           mlir::OpaqueProperties(nullptr),
                                           mlir::RegionRange(), types))) {
    std::string msg = diags.str();
    fail(msg.empty() ? opName.str() + ": invalid operands or attributes" : msg);
  }
  mlir::OperationState state(loc_, *opInfo);
  state.addOperands(operands);
  state.addAttributes(attrs);
  state.addTypes(types);
  mlir::Operation *op = builder().create(state);
  if (mlir::failed(mlir::verify(op))) {
    std::string msg = diags.str();
    op->erase();
    fail(msg.empty() ? opName.str() + " failed to verify" : msg);
  }
  return op->getResult(0);
}

mlir::Value NodeContext::compare(llvm::StringRef predicate, mlir::Value a,
                                 mlir::Value b) {
  return create("kiln.compare", {a, b}, {strAttr("predicate", predicate)});
}

mlir::Value NodeContext::where(mlir::Value c, mlir::Value a, mlir::Value b) {
  return create("kiln.where", {c, a, b});
}

mlir::Value NodeContext::cast(mlir::Value x, DType dtype) {
  if (dtypeOf(x) == dtype)
    return x;
  return create(
      "kiln.cast", {x},
      {builder().getNamedAttr(
          "dtype", mlir::TypeAttr::get(toMlirElementType(dtype, ctx())))});
}

mlir::Value NodeContext::reshape(mlir::Value x, llvm::ArrayRef<int64_t> shape) {
  if (llvm::ArrayRef<int64_t>(shapeOf(x)) == shape)
    return x;
  return create("kiln.reshape", {x}, {arrayAttr("shape", shape)});
}

mlir::Value NodeContext::transpose(mlir::Value x,
                                   llvm::ArrayRef<int64_t> perm) {
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i)
    identity &= perm[i] == static_cast<int64_t>(i);
  if (identity)
    return x;
  return create("kiln.transpose", {x}, {arrayAttr("perm", perm)});
}

mlir::Value NodeContext::broadcastTo(mlir::Value x,
                                     llvm::ArrayRef<int64_t> shape) {
  if (llvm::ArrayRef<int64_t>(shapeOf(x)) == shape)
    return x;
  return create("kiln.broadcast_to", {x}, {arrayAttr("shape", shape)});
}

mlir::Value NodeContext::reduce(llvm::StringRef opName, mlir::Value x,
                                llvm::ArrayRef<int64_t> axes, bool keepdims) {
  return create(opName, {x},
                {arrayAttr("axes", axes), boolAttr("keepdims", keepdims)});
}

mlir::Value NodeContext::constantValue(const Tensor &t) {
  return importer_.constantOp(t, loc_);
}

mlir::Value NodeContext::scalar(double v, DType dtype) {
  return constantValue(Tensor::fromDoubles(dtype, {}, {v}));
}

mlir::Value NodeContext::scalarLike(double v, mlir::Value like) {
  return scalar(v, dtypeOf(like));
}

mlir::NamedAttribute NodeContext::i64Attr(llvm::StringRef name, int64_t v) {
  return builder().getNamedAttr(name, builder().getI64IntegerAttr(v));
}
mlir::NamedAttribute NodeContext::f64Attr(llvm::StringRef name, double v) {
  return builder().getNamedAttr(name, builder().getF64FloatAttr(v));
}
mlir::NamedAttribute NodeContext::boolAttr(llvm::StringRef name, bool v) {
  return builder().getNamedAttr(name, builder().getBoolAttr(v));
}
mlir::NamedAttribute NodeContext::strAttr(llvm::StringRef name,
                                          llvm::StringRef v) {
  return builder().getNamedAttr(name, builder().getStringAttr(v));
}
mlir::NamedAttribute NodeContext::arrayAttr(llvm::StringRef name,
                                            llvm::ArrayRef<int64_t> v) {
  return builder().getNamedAttr(name, builder().getDenseI64ArrayAttr(v));
}

int64_t NodeContext::normalizeAxis(int64_t axis, int64_t rank) const {
  if (axis < -rank || axis >= rank)
    fail("axis " + std::to_string(axis) + " is out of range for rank " +
         std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

void NodeContext::fail(const std::string &message) const {
  throw ImportError(message);
}

void NodeContext::unsupported(const std::string &detail) const {
  throw Unsupported(detail);
}

} // namespace kiln::onnx_import

namespace kiln::onnx {

StatusOr<Module> importModelFromBytes(const std::string &bytes,
                                      const std::string &modelPath,
                                      const ImportOptions &options) {
  std::string file = std::filesystem::path(modelPath).filename().string();
  try {
    ::onnx::ModelProto model;
    if (!model.ParseFromString(bytes))
      return Status::error(file +
                           ": not a valid ONNX model (the protobuf does not "
                           "parse as onnx.ModelProto)");
    if (!model.has_graph())
      return Status::error(file + ": the model has no graph");
    onnx_import::Importer importer(model, modelPath, options);
    return importer.run();
  } catch (const std::exception &e) {
    return Status::error(file + ": " + e.what());
  }
}

StatusOr<Module> importModel(const std::string &path,
                             const ImportOptions &options) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error("cannot open ONNX model '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return importModelFromBytes(ss.str(), path, options);
}

} // namespace kiln::onnx
