//===- codegen/plan/BufferPlan.cpp - Liveness-based buffer planning -------===//
#include "codegen/plan/BufferPlan.h"
#include "ir/ElementTypes.h"
#include "ir/KilnDialect.h"
#include "ir/KilnOps.h"

#include "mlir/IR/BuiltinTypes.h"

namespace kiln {

int64_t tensorBytes(mlir::Type type) {
  auto t = mlir::cast<mlir::RankedTensorType>(type);
  auto dtype = fromMlirElementType(t.getElementType());
  return t.getNumElements() * (dtype ? dtypeSize(*dtype) : 0);
}

bool isArenaValue(mlir::Value v) {
  mlir::Operation *def = v.getDefiningOp();
  if (!def || def->hasTrait<mlir::OpTrait::ConstantLike>())
    return false;
  for (mlir::Operation *user : v.getUsers())
    if (mlir::isa<mlir::func::ReturnOp>(user))
      return false;
  return true;
}

BufferPlan planBuffers(mlir::func::FuncOp func) {
  BufferPlan plan;
  int64_t step = 0;
  for (mlir::Operation &op : func.getBody().front())
    plan.step[&op] = step++;
  for (mlir::Operation &op : func.getBody().front()) {
    for (mlir::Value v : op.getResults()) {
      if (!isArenaValue(v))
        continue;
      // reshape(x) has x's bytes in x's order: it is a view of x, so it
      // takes x's interval (extended to its own last use) and the kernel
      // has nothing to copy. A reshape of an argument stays a copy.
      if (mlir::isa<ReshapeOp>(op)) {
        auto source = plan.indexOf.find(op.getOperand(0));
        if (source != plan.indexOf.end()) {
          LiveInterval &li = plan.intervals[source->second];
          for (mlir::Operation *user : v.getUsers())
            li.end = std::max(li.end, plan.step[user]);
          plan.indexOf[v] = source->second;
          continue;
        }
      }
      LiveInterval li;
      li.bytes = tensorBytes(v.getType());
      li.start = plan.step[&op];
      li.end = li.start;
      for (mlir::Operation *user : v.getUsers())
        li.end = std::max(li.end, plan.step[user]);
      plan.indexOf[v] = static_cast<int64_t>(plan.values.size());
      plan.values.push_back(v);
      plan.intervals.push_back(li);
      plan.intermediateBytes += li.bytes;
    }
  }
  // Peak of simultaneously live bytes, by a sweep over steps.
  std::vector<int64_t> delta(step + 2, 0);
  for (const auto &li : plan.intervals) {
    delta[li.start] += li.bytes;
    delta[li.end + 1] -= li.bytes;
  }
  int64_t live = 0;
  for (int64_t d : delta) {
    live += d;
    plan.peakLiveBytes = std::max(plan.peakLiveBytes, live);
  }
  plan.arenaBytes = assignArenaOffsets(plan.intervals);
  return plan;
}

} // namespace kiln
