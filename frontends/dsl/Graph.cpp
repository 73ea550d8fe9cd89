//===- frontends/dsl/Graph.cpp - The DSL graph builder --------------------===//
//
// Builds one func.func in the kiln dialect: inputs and parameters become block
// arguments (parameters carry `kiln.param`, inputs `kiln.name`), each DSL call
// one kiln op located at the caller's line, outputs the returned values.
//
//===----------------------------------------------------------------------===//
#include "frontends/dsl/GraphImpl.h"
#include "ir/ElementTypes.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "llvm/ADT/APFloat.h"

#include <cmath>

namespace kiln::dsl {

mlir::Location Graph::Impl::location(const Loc &loc) {
  checkOpen(&loc);
  mlir::Location fileLoc = mlir::FileLineColLoc::get(ctx(), loc.file_name(),
                                                     loc.line(), loc.column());
  std::string path;
  for (const auto &s : scopeNames)
    path += (path.empty() ? "" : ".") + s;
  if (path.empty())
    return fileLoc;
  return mlir::NameLoc::get(mlir::StringAttr::get(ctx(), path), fileLoc);
}

mlir::Location Graph::Impl::currentLocation() {
  if (!scopeLocs.empty())
    return scopeLocs.back();
  return mlir::NameLoc::get(mlir::StringAttr::get(ctx(), name));
}

void Graph::Impl::fail(mlir::Location loc, const std::string &message) {
  std::string where = formatLocation(loc);
  throw Error((where.empty() ? std::string() : where + ": ") +
              "error: " + message);
}

std::string formatSourceLocation(const Loc &loc) {
  std::string path = loc.file_name();
  auto slash = path.find_last_of('/');
  if (slash != std::string::npos)
    path = path.substr(slash + 1);
  return path + ":" + std::to_string(loc.line()) + ":" +
         std::to_string(loc.column()) + ": ";
}

Graph::Impl &implOf(const Tensor &t, const Loc &loc) {
  if (!t.value())
    throw Error(formatSourceLocation(loc) +
                "error: use of an empty (default-constructed) tensor");
  Graph::Impl &g = t.graph().impl();
  g.checkOpen(&loc);
  return g;
}

void Graph::Impl::checkOpen(const Loc *loc) const {
  if (finished)
    throw Error((loc ? formatSourceLocation(*loc) : std::string()) +
                "error: graph '" + name +
                "' is already finished; build a new Graph");
}

void Graph::Impl::checkSameGraph(const Tensor &t, mlir::Location loc) {
  if (!t.value())
    fail(loc, "use of an empty (default-constructed) tensor");
  if (&t.graph() != owner)
    fail(loc, "tensor belongs to another graph");
}

Tensor Graph::Impl::wrap(mlir::Value v) {
  auto type = mlir::cast<mlir::RankedTensorType>(v.getType());
  auto dtype = fromMlirElementType(type.getElementType());
  return Tensor(
      owner, v.getAsOpaquePointer(), dtype.value_or(DType::f32),
      std::vector<int64_t>(type.getShape().begin(), type.getShape().end()));
}

Tensor Graph::Impl::create(llvm::StringRef opName,
                           llvm::ArrayRef<Tensor> operands,
                           llvm::ArrayRef<mlir::NamedAttribute> attrs,
                           mlir::Location loc) {
  checkOpen();
  auto opInfo = mlir::RegisteredOperationName::lookup(opName, ctx());
  if (!opInfo)
    fail(loc, "unknown op '" + opName.str() + "'");
  llvm::SmallVector<mlir::Value> values;
  for (const auto &t : operands) {
    checkSameGraph(t, loc);
    values.push_back(valueOf(t));
  }
  auto attrDict = mlir::DictionaryAttr::get(ctx(), attrs);
  llvm::SmallVector<mlir::Type> types;
  DiagnosticCollector diags(ctx(), /*withLocations=*/false);
  auto *infer = opInfo->getInterface<mlir::InferTypeOpInterface>();
  if (!infer)
    fail(loc, "op '" + opName.str() + "' has no result-type inference");
  if (mlir::failed(infer->inferReturnTypes(ctx(), loc, values, attrDict,
                                           mlir::OpaqueProperties(nullptr),
                                           mlir::RegionRange(), types))) {
    std::string msg = diags.str();
    fail(loc,
         msg.empty() ? opName.str() + ": invalid operands or attributes" : msg);
  }
  mlir::OperationState state(loc, *opInfo);
  state.addOperands(values);
  state.addAttributes(attrs);
  state.addTypes(types);
  mlir::Operation *op = builder.create(state);
  if (mlir::failed(mlir::verify(op))) {
    std::string msg = diags.str();
    op->erase();
    fail(loc, msg.empty() ? opName.str() + " failed to verify" : msg);
  }
  return wrap(op->getResult(0));
}

Graph::Graph(std::string name, uint64_t seed) {
  auto context = createKilnContext();
  impl_ = std::make_unique<Impl>(context.get());
  impl_->context = std::move(context);
  impl_->owner = this;
  impl_->name = name;
  impl_->seed = seed;
  auto *ctx = impl_->ctx();
  auto loc = mlir::NameLoc::get(mlir::StringAttr::get(ctx, name));
  impl_->module = mlir::ModuleOp::create(loc);
  impl_->builder.setInsertionPointToEnd(impl_->module->getBody());
  impl_->func = impl_->builder.create<mlir::func::FuncOp>(
      loc, name, mlir::FunctionType::get(ctx, {}, {}));
  mlir::Block *body = impl_->func.addEntryBlock();
  impl_->builder.setInsertionPointToEnd(body);
}

Graph::~Graph() {
  if (impl_)
    impl_->module = nullptr;
}

static Tensor addArgument(Graph::Impl &g, const std::string &attrName,
                          const std::string &name,
                          const std::vector<int64_t> &shape, DType dtype,
                          mlir::Location loc) {
  for (int64_t d : shape)
    if (d < 0)
      g.fail(loc, "'" + name + "' has a negative dim in shape " +
                      shapeToString(shape));
  for (const auto &[kind, existing] : g.argNames)
    if (existing == name && kind == attrName)
      g.fail(loc, "'" + name + "' is defined twice");
  auto type = toMlirTensorType(dtype, shape, g.ctx());
  mlir::Value v = g.func.getBody().front().addArgument(type, loc);
  g.argNames.emplace_back(attrName, name);
  return g.wrap(v);
}

Tensor Graph::input(const std::string &name, std::vector<int64_t> shape,
                    DType dtype, Loc loc) {
  impl_->checkOpen(&loc);
  return addArgument(*impl_, "kiln.name", name, shape, dtype,
                     impl_->location(loc));
}

/// splitmix64: a small, well-mixed generator; reproducible everywhere.
static uint64_t splitmix64(uint64_t &state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t hashName(const std::string &s) {
  uint64_t h = 1469598103934665603ull; // FNV-1a
  for (unsigned char c : s)
    h = (h ^ c) * 1099511628211ull;
  return h;
}

/// Values for a parameter: a function of (seed, name) only.
static std::vector<double> initialValues(const Init &init, int64_t n,
                                         uint64_t seed,
                                         const std::string &name) {
  std::vector<double> v(n);
  uint64_t state = seed ^ hashName(name);
  auto uniform01 = [&] {
    return (splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
  };
  for (int64_t i = 0; i < n; ++i) {
    switch (init.kind) {
    case Init::Kind::zeros:
      v[i] = 0;
      break;
    case Init::Kind::ones:
      v[i] = 1;
      break;
    case Init::Kind::constant:
      v[i] = init.a;
      break;
    case Init::Kind::uniform:
      v[i] = init.a + (init.b - init.a) * uniform01();
      break;
    case Init::Kind::normal: {
      double u1 = std::max(uniform01(), 1e-300), u2 = uniform01();
      v[i] = init.a +
             init.b * std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * M_PI * u2);
      break;
    }
    }
  }
  return v;
}

Tensor Graph::param(const std::string &name, std::vector<int64_t> shape,
                    Init init, DType dtype, Loc loc) {
  impl_->checkOpen(&loc);
  std::string full = scopePath();
  full = full.empty() ? name : full + "." + name;
  auto mloc = impl_->location(loc);
  if (dtype != DType::f32 && dtype != DType::f64)
    impl_->fail(mloc, "parameter '" + full +
                          "': the DSL initializes f32 and "
                          "f64 parameters only, got " +
                          dtypeName(dtype));
  Tensor t = addArgument(*impl_, "kiln.param", full, shape, dtype, mloc);
  int64_t n = numElements(shape);
  impl_->weights[full] = kiln::Tensor::fromDoubles(
      dtype, shape, initialValues(init, n, impl_->seed, full));
  impl_->parameterCount += n;
  return t;
}

Tensor Graph::constant(std::vector<int64_t> shape,
                       const std::vector<double> &values, DType dtype,
                       Loc loc) {
  impl_->checkOpen(&loc);
  return impl_->constantAt(shape, values, dtype, impl_->location(loc));
}

Tensor Graph::Impl::constantAt(const std::vector<int64_t> &shape,
                               const std::vector<double> &values, DType dtype,
                               mlir::Location mloc) {
  Graph::Impl *impl_ = this;
  if (static_cast<int64_t>(values.size()) != numElements(shape))
    impl_->fail(mloc, "constant of shape " + shapeToString(shape) + " needs " +
                          std::to_string(numElements(shape)) + " values, got " +
                          std::to_string(values.size()));
  auto type = toMlirTensorType(dtype, shape, impl_->ctx());
  mlir::Type elt = type.getElementType();
  mlir::DenseElementsAttr attr;
  if (auto ft = mlir::dyn_cast<mlir::FloatType>(elt)) {
    llvm::SmallVector<llvm::APFloat> fs;
    for (double d : values) {
      llvm::APFloat f(d);
      bool lost;
      f.convert(ft.getFloatSemantics(), llvm::APFloat::rmNearestTiesToEven,
                &lost);
      fs.push_back(f);
    }
    attr = mlir::DenseElementsAttr::get(type, fs);
  } else {
    unsigned width = elt.getIntOrFloatBitWidth();
    llvm::SmallVector<llvm::APInt> is;
    for (double d : values) {
      if (width == 1)
        is.emplace_back(1, d != 0 ? 1 : 0);
      else
        is.emplace_back(width, static_cast<int64_t>(d), /*isSigned=*/true);
    }
    attr = mlir::DenseElementsAttr::get(type, is);
  }
  mlir::NamedAttribute value(mlir::StringAttr::get(impl_->ctx(), "value"),
                             attr);
  return impl_->create("kiln.constant", {}, {value}, mloc);
}

Tensor Graph::scalar(double value, DType dtype, Loc loc) {
  return constant({}, {value}, dtype, loc);
}

void Graph::output(const std::string &name, const Tensor &t) {
  impl_->checkOpen();
  auto loc = impl_->currentLocation();
  impl_->checkSameGraph(t, loc);
  for (const auto &[n, v] : impl_->outputs)
    if (n == name)
      impl_->fail(loc, "output '" + name + "' is defined twice");
  impl_->outputs.emplace_back(name, valueOf(t));
}

Graph::Scope::Scope(Graph &g, const std::string &name, Loc loc) : graph_(g) {
  auto &impl = *g.impl_;
  impl.checkOpen(&loc);
  impl.scopeNames.push_back(name);
  impl.scopeLocs.push_back(impl.location(loc));
}

Graph::Scope::~Scope() {
  graph_.impl_->scopeNames.pop_back();
  graph_.impl_->scopeLocs.pop_back();
}

std::string Graph::scopePath() const {
  std::string path;
  for (const auto &s : impl_->scopeNames)
    path += (path.empty() ? "" : ".") + s;
  return path;
}

int64_t Graph::parameterCount() const { return impl_->parameterCount; }

Module Graph::finish() {
  auto &g = *impl_;
  g.checkOpen();
  auto loc = g.currentLocation();
  if (g.outputs.empty())
    g.fail(loc, "graph '" + g.name + "' has no outputs (call Graph::output)");
  auto *ctx = g.ctx();
  mlir::Block &body = g.func.getBody().front();
  llvm::SmallVector<mlir::Value> results;
  for (auto &[n, v] : g.outputs)
    results.push_back(v);
  g.builder.setInsertionPointToEnd(&body);
  g.builder.create<mlir::func::ReturnOp>(loc, results);
  g.func.setFunctionType(mlir::FunctionType::get(
      ctx, body.getArgumentTypes(), mlir::ValueRange(results).getTypes()));
  for (unsigned i = 0; i < g.argNames.size(); ++i)
    g.func.setArgAttr(i, g.argNames[i].first,
                      mlir::StringAttr::get(ctx, g.argNames[i].second));
  for (unsigned i = 0; i < g.outputs.size(); ++i)
    g.func.setResultAttr(i, "kiln.name",
                         mlir::StringAttr::get(ctx, g.outputs[i].first));
  DiagnosticCollector diags(ctx);
  if (mlir::failed(mlir::verify(*g.module)))
    g.fail(loc, "model '" + g.name + "' failed to verify:\n" + diags.str());

  auto impl = std::make_unique<Module::Impl>();
  impl->module = std::move(g.module);
  impl->context = std::move(g.context);
  impl->weights = std::move(g.weights);
  g.func = nullptr;
  g.finished = true;
  return Module(std::move(impl));
}

} // namespace kiln::dsl
