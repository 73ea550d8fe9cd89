//===- codegen/plan/ProgramBuilder.cpp - kiln IR -> Program ---------------===//
#include "codegen/plan/ProgramBuilder.h"
#include "codegen/plan/BufferPlan.h"
#include "frontends/ModuleImpl.h"
#include "ir/ElementTypes.h"
#include "passes/ConstantData.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/DialectResourceBlobManager.h"
#include "mlir/IR/OperationSupport.h"

#include <cstring>

namespace kiln {

static nlohmann::json attributeToJson(mlir::Attribute attr, bool *ok) {
  if (auto b = mlir::dyn_cast<mlir::BoolAttr>(attr))
    return b.getValue();
  if (auto i = mlir::dyn_cast<mlir::IntegerAttr>(attr))
    return i.getValue().getSExtValue();
  if (auto f = mlir::dyn_cast<mlir::FloatAttr>(attr))
    return f.getValueAsDouble();
  if (auto s = mlir::dyn_cast<mlir::StringAttr>(attr))
    return s.str();
  if (auto a = mlir::dyn_cast<mlir::DenseI64ArrayAttr>(attr))
    return std::vector<int64_t>(a.asArrayRef().begin(), a.asArrayRef().end());
  if (auto t = mlir::dyn_cast<mlir::TypeAttr>(attr)) {
    if (auto d = fromMlirElementType(t.getValue()))
      return dtypeName(*d);
  }
  if (auto arr = mlir::dyn_cast<mlir::ArrayAttr>(attr)) {
    nlohmann::json j = nlohmann::json::array();
    for (auto e : arr)
      j.push_back(attributeToJson(e, ok));
    return j;
  }
  *ok = false;
  return nullptr;
}

nlohmann::json attributesToJson(mlir::Operation *op) {
  mlir::NamedAttrList attrs(op->getAttrDictionary());
  if (auto info = op->getRegisteredInfo())
    info->populateDefaultAttrs(attrs);
  nlohmann::json j = nlohmann::json::object();
  for (const mlir::NamedAttribute &a : attrs) {
    bool ok = true;
    nlohmann::json v = attributeToJson(a.getValue(), &ok);
    if (ok)
      j[a.getName().str()] = std::move(v);
  }
  return j;
}

StatusOr<BuiltProgram> buildProgram(mlir::func::FuncOp func,
                                    const TensorMap &weights,
                                    const std::string &target) {
  BuiltProgram built;
  Program &p = built.program;
  p.name = func.getSymName().str();
  p.target = target;
  llvm::DenseMap<mlir::Value, int64_t> bufferOf;

  auto newBuffer = [&](mlir::Type type, BufferKind kind,
                       const std::string &name) -> int64_t {
    auto t = mlir::cast<mlir::RankedTensorType>(type);
    BufferDesc b;
    b.id = static_cast<int64_t>(p.buffers.size());
    b.dtype = fromMlirElementType(t.getElementType()).value_or(DType::f32);
    b.shape.assign(t.getShape().begin(), t.getShape().end());
    b.kind = kind;
    b.name = name;
    p.buffers.push_back(b);
    return b.id;
  };

  // Arguments: parameters are bound from `weights`, the rest are inputs.
  std::string weightErrors;
  int inputIndex = 0;
  for (auto arg : func.getArguments()) {
    unsigned i = arg.getArgNumber();
    if (auto param = func.getArgAttrOfType<mlir::StringAttr>(i, "kiln.param")) {
      std::string name = param.str();
      int64_t id = newBuffer(arg.getType(), BufferKind::param, name);
      bufferOf[arg] = id;
      const BufferDesc &b = p.buffers[id];
      auto it = weights.find(name);
      if (it == weights.end()) {
        weightErrors += "\n  missing weight '" + name + "' (" +
                        dtypeName(b.dtype) + " " + shapeToString(b.shape) + ")";
      } else if (it->second.dtype() != b.dtype ||
                 it->second.shape() != b.shape) {
        weightErrors += "\n  weight '" + name + "': expected " +
                        dtypeName(b.dtype) + " " + shapeToString(b.shape) +
                        ", got " + dtypeName(it->second.dtype()) + " " +
                        shapeToString(it->second.shape());
      } else {
        built.weights[name] = it->second;
      }
      continue;
    }
    auto named = func.getArgAttrOfType<mlir::StringAttr>(i, "kiln.name");
    std::string name =
        named ? named.str() : "input" + std::to_string(inputIndex);
    ++inputIndex;
    int64_t id = newBuffer(arg.getType(), BufferKind::input, name);
    bufferOf[arg] = id;
    p.inputs.push_back({name, id});
  }
  if (!weightErrors.empty())
    return Status::error("model '" + p.name +
                         "' cannot be bound to its "
                         "weights:" +
                         weightErrors);

  // Returned values produced by an op become output buffers directly;
  // anything else returned (an argument, a constant, a value returned twice)
  // is copied into its own output buffer at the end.
  auto ret =
      mlir::cast<mlir::func::ReturnOp>(func.getBody().front().getTerminator());
  std::vector<std::string> outputNames;
  for (unsigned i = 0; i < ret.getNumOperands(); ++i) {
    auto named = func.getResultAttrOfType<mlir::StringAttr>(i, "kiln.name");
    outputNames.push_back(named ? named.str() : "output" + std::to_string(i));
  }
  llvm::DenseMap<mlir::Value, int64_t> directOutput;
  for (unsigned i = 0; i < ret.getNumOperands(); ++i) {
    mlir::Value v = ret.getOperand(i);
    mlir::Operation *def = v.getDefiningOp();
    if (def && !def->hasTrait<mlir::OpTrait::ConstantLike>() &&
        !directOutput.count(v))
      directOutput[v] = i;
  }

  BufferPlan plan = planBuffers(func);
  int constantIndex = 0;
  for (mlir::Operation &op : func.getBody().front()) {
    if (mlir::isa<mlir::func::ReturnOp>(op))
      continue;
    if (op.hasTrait<mlir::OpTrait::ConstantLike>()) {
      auto value = op.getAttr("value");
      auto tensor = constantToTensor(value);
      if (!tensor)
        return Status::error(formatLocation(op.getLoc()) + ": " +
                             tensor.status().message());
      std::string name = "const." + std::to_string(constantIndex++);
      bufferOf[op.getResult(0)] =
          newBuffer(op.getResult(0).getType(), BufferKind::constant, name);
      built.weights[name] = *tensor;
      continue;
    }
    KernelCall k;
    llvm::StringRef opName = op.getName().getStringRef();
    k.op =
        opName.starts_with("kiln.") ? opName.drop_front(5).str() : opName.str();
    for (mlir::Value v : op.getOperands())
      k.inputs.push_back(bufferOf.lookup(v));
    for (mlir::Value v : op.getResults()) {
      int64_t id;
      if (auto it = directOutput.find(v); it != directOutput.end()) {
        id =
            newBuffer(v.getType(), BufferKind::output, outputNames[it->second]);
      } else {
        id = newBuffer(v.getType(), BufferKind::arena, "");
        p.buffers[id].offset = plan.intervals[plan.indexOf.lookup(v)].offset;
      }
      bufferOf[v] = id;
      k.outputs.push_back(id);
    }
    k.attrs = attributesToJson(&op);
    k.loc = formatLocation(op.getLoc());
    p.kernels.push_back(std::move(k));
  }

  for (unsigned i = 0; i < ret.getNumOperands(); ++i) {
    mlir::Value v = ret.getOperand(i);
    auto it = directOutput.find(v);
    if (it != directOutput.end() && it->second == i) {
      p.outputs.push_back({outputNames[i], bufferOf.lookup(v)});
      continue;
    }
    int64_t id = newBuffer(v.getType(), BufferKind::output, outputNames[i]);
    KernelCall copy;
    copy.op = "copy";
    copy.inputs = {bufferOf.lookup(v)};
    copy.outputs = {id};
    copy.loc = formatLocation(ret.getLoc());
    p.kernels.push_back(std::move(copy));
    p.outputs.push_back({outputNames[i], id});
  }
  p.arenaBytes = plan.arenaBytes;
  p.intermediateBytes = plan.intermediateBytes;
  return built;
}

} // namespace kiln
