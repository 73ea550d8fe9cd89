//===- frontends/onnx/Math.cpp - Elementwise and linear-algebra handlers --===//
//
// ONNX elementwise ops (unary, binary with broadcasting, variadic, logical,
// comparisons, activations) and MatMul/Gemm. Activations kiln has no op for
// are compositions of kiln ops, each headed by its formula. Binary ops and
// comparisons on import-time tensors fold on the host.
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"

#include <cmath>

namespace kiln::onnx_import {

namespace {

/// Both operands of a binary op in one element type. ONNX requires equal
/// types (Pow allows a different exponent type: it is cast to the base's).
std::pair<mlir::Value, mlir::Value> sameType(NodeContext &n, mlir::Value a,
                                             mlir::Value b) {
  if (dtypeOf(a) != dtypeOf(b))
    n.fail(std::string("operands have different element types, ") +
           dtypeName(dtypeOf(a)) + " and " + dtypeName(dtypeOf(b)));
  return {a, b};
}

/// Registers a broadcasting binary op that maps onto one kiln op, folding
/// import-time inputs (`hostOp` names the host evaluation, "" for none).
void addBinary(HandlerRegistry &r, const std::string &onnxOp,
               const std::string &kilnOp, const std::string &hostOp) {
  r.add(onnxOp, 1, [kilnOp, hostOp](NodeContext &n) {
    if (n.opset() < 7 && n.attrInt("broadcast", 0) && n.hasAttr("axis")) {
      // Legacy broadcast: b's dims line up with a's starting at `axis`.
      mlir::Value a = n.input(0), b = n.input(1);
      auto sa = shapeOf(a), sb = shapeOf(b);
      int64_t axis = n.attrInt("axis", 0);
      if (axis < 0)
        axis += sa.size();
      std::vector<int64_t> shape(sa.size(), 1);
      if (axis < 0 || axis + sb.size() > sa.size())
        n.fail("legacy broadcast axis is out of range");
      std::copy(sb.begin(), sb.end(), shape.begin() + axis);
      n.setOutput(0, n.binary(kilnOp, a, n.reshape(b, shape)));
      return;
    }
    if (!hostOp.empty() && n.allInputsConstant() &&
        n.constant(0)->dtype() == n.constant(1)->dtype()) {
      n.setOutput(0, host::binary(*n.constant(0), *n.constant(1), hostOp));
      return;
    }
    auto [a, b] = sameType(n, n.input(0), n.input(1));
    n.setOutput(0, n.binary(kilnOp, a, b));
  });
}

void addCompare(HandlerRegistry &r, const std::string &onnxOp,
                const std::string &predicate) {
  r.add(onnxOp, 7, [predicate](NodeContext &n) {
    if (n.allInputsConstant() &&
        n.constant(0)->dtype() == n.constant(1)->dtype()) {
      n.setOutput(0, host::binary(*n.constant(0), *n.constant(1), predicate));
      return;
    }
    auto [a, b] = sameType(n, n.input(0), n.input(1));
    n.setOutput(0, n.compare(predicate, a, b));
  });
}

/// Unary ops that map onto one kiln op; float-only kiln ops are applied to
/// integer inputs through f32 (ONNX allows ints for Neg/Abs/Relu only, which
/// kiln supports directly).
void addUnary(HandlerRegistry &r, const std::string &onnxOp,
              const std::string &kilnOp, double (*fold)(double) = nullptr) {
  r.add(onnxOp, 1, [kilnOp, fold](NodeContext &n) {
    if (const Tensor *t = n.constant(0); t && fold) {
      // Import-time value (Neg/Abs of shape arithmetic, ...).
      if (isFloat(t->dtype())) {
        auto v = t->toDoubles();
        for (auto &x : v)
          x = fold(x);
        n.setOutput(0, Tensor::fromDoubles(t->dtype(), t->shape(), v));
      } else {
        auto v = host::toInts(*t);
        for (auto &x : v)
          x = static_cast<int64_t>(fold(static_cast<double>(x)));
        n.setOutput(0, host::fromInts(t->shape(), v, t->dtype()));
      }
      return;
    }
    n.setOutput(0, n.unary(kilnOp, n.input(0)));
  });
}

/// Registers an activation written as a composition of kiln ops.
void addComposite(HandlerRegistry &r, const std::string &onnxOp,
                  std::function<mlir::Value(NodeContext &, mlir::Value)> fn) {
  r.add(onnxOp, 1, [fn](NodeContext &n) {
    mlir::Value x = n.input(0);
    if (!isFloat(dtypeOf(x)))
      n.unsupported(std::string("element type ") + dtypeName(dtypeOf(x)));
    n.setOutput(0, fn(n, x));
  });
}

/// Folds a variadic op (Sum, Max, Min, Mean) left to right.
void addVariadic(HandlerRegistry &r, const std::string &onnxOp,
                 const std::string &kilnOp, bool mean) {
  r.add(onnxOp, 1, [kilnOp, mean](NodeContext &n) {
    mlir::Value acc = n.input(0);
    for (int i = 1; i < n.numInputs(); ++i)
      if (n.hasInput(i))
        acc = n.binary(kilnOp, sameType(n, acc, n.input(i)).first, n.input(i));
    if (mean)
      acc = n.binary("kiln.div", acc, n.scalarLike(n.numInputs(), acc));
    n.setOutput(0, acc);
  });
}

/// ONNX MatMul: NumPy matmul, where a 1-D operand is a row (lhs) or column
/// (rhs) vector whose unit dim is dropped from the result.
mlir::Value matmul(NodeContext &n, mlir::Value a, mlir::Value b) {
  auto sa = shapeOf(a), sb = shapeOf(b);
  if (sa.empty() || sb.empty())
    n.fail("MatMul operands must have rank >= 1");
  bool vecA = sa.size() == 1, vecB = sb.size() == 1;
  if (vecA)
    a = n.reshape(a, {1, sa[0]});
  if (vecB)
    b = n.reshape(b, {sb[0], 1});
  mlir::Value y = n.binary("kiln.matmul", a, b);
  if (vecA || vecB) {
    auto sy = shapeOf(y);
    std::vector<int64_t> out(sy.begin(), sy.end() - 2);
    if (!vecA)
      out.push_back(sy[sy.size() - 2]);
    if (!vecB)
      out.push_back(sy.back());
    y = n.reshape(y, out);
  }
  return y;
}

void gemm(NodeContext &n) {
  bool transA = n.attrInt("transA", 0), transB = n.attrInt("transB", 0);
  double alpha = n.attrFloat("alpha", 1.0), beta = n.attrFloat("beta", 1.0);
  mlir::Value a = n.input(0), b = n.input(1);
  if (shapeOf(a).size() != 2 || shapeOf(b).size() != 2)
    n.fail("Gemm operands must be 2-D");
  // Y = alpha * A' B' + beta * C
  mlir::Value y = n.create(
      "kiln.matmul", {a, b},
      {n.boolAttr("transpose_a", transA), n.boolAttr("transpose_b", transB)});
  if (alpha != 1.0)
    y = n.binary("kiln.mul", y, n.scalarLike(alpha, y));
  if (n.hasInput(2) && beta != 0.0) {
    mlir::Value c = n.input(2);
    if (beta != 1.0)
      c = n.binary("kiln.mul", c, n.scalarLike(beta, c));
    y = n.binary("kiln.add", y, c);
  }
  n.setOutput(0, y);
}

/// Clip(x, min, max) = min(max(x, min), max); bounds from attributes before
/// opset 11, from optional inputs after.
void clip(NodeContext &n, std::optional<double> lo, std::optional<double> hi) {
  mlir::Value x = n.input(0);
  if (n.opset() >= 11) {
    if (n.hasInput(1))
      x = n.binary("kiln.max", x, n.input(1));
    if (n.hasInput(2))
      x = n.binary("kiln.min", x, n.input(2));
    n.setOutput(0, x);
    return;
  }
  if (lo)
    x = n.binary("kiln.max", x, n.scalarLike(*lo, x));
  if (hi)
    x = n.binary("kiln.min", x, n.scalarLike(*hi, x));
  n.setOutput(0, x);
}

/// floor(x) = t - (x < t), t = trunc(x) (through i64; |x| < 2^63).
mlir::Value floorOf(NodeContext &n, mlir::Value x, bool ceil) {
  DType t = dtypeOf(x);
  mlir::Value tr = n.cast(n.cast(x, DType::i64), t);
  mlir::Value adjust =
      n.cast(n.compare(ceil ? "gt" : "lt", x, tr), t); // 1 where x != trunc
  mlir::Value y = n.binary(ceil ? "kiln.add" : "kiln.sub", tr, adjust);
  // Keep NaN, infinities and values beyond the i64 range as they are.
  mlir::Value big = n.compare("ge", n.unary("kiln.abs", x),
                              n.scalarLike(4503599627370496.0, x));
  mlir::Value notNan = n.compare("eq", x, x);
  mlir::Value keep = n.where(notNan, big, n.scalar(1, DType::i1));
  return n.where(keep, x, y);
}

} // namespace

void registerMathHandlers(HandlerRegistry &r) {
  addBinary(r, "Add", "kiln.add", "add");
  addBinary(r, "Sub", "kiln.sub", "sub");
  addBinary(r, "Mul", "kiln.mul", "mul");
  addBinary(r, "Div", "kiln.div", "div");
  addCompare(r, "Equal", "eq");
  addCompare(r, "Less", "lt");
  addCompare(r, "LessOrEqual", "le");
  addCompare(r, "Greater", "gt");
  addCompare(r, "GreaterOrEqual", "ge");

  // Pow: exponent cast to the base's type; integer bases through f64.
  r.add("Pow", 1, [](NodeContext &n) {
    mlir::Value x = n.input(0), e = n.input(1);
    DType t = dtypeOf(x);
    if (isFloat(t)) {
      n.setOutput(0, n.binary("kiln.pow", x, n.cast(e, t)));
      return;
    }
    mlir::Value y =
        n.binary("kiln.pow", n.cast(x, DType::f64), n.cast(e, DType::f64));
    n.setOutput(0, n.cast(y, t));
  });

  addUnary(r, "Neg", "kiln.neg", [](double x) { return -x; });
  addUnary(r, "Abs", "kiln.abs", [](double x) { return std::abs(x); });
  addUnary(r, "Relu", "kiln.relu");
  addUnary(r, "Exp", "kiln.exp");
  addUnary(r, "Log", "kiln.log");
  addUnary(r, "Sqrt", "kiln.sqrt", [](double x) { return std::sqrt(x); });
  addUnary(r, "Tanh", "kiln.tanh");
  addUnary(r, "Sigmoid", "kiln.sigmoid");
  addUnary(r, "Erf", "kiln.erf");
  addUnary(r, "Reciprocal", "kiln.reciprocal");
  addUnary(r, "Sin", "kiln.sin");
  addUnary(r, "Cos", "kiln.cos");
  addUnary(r, "Atan", "kiln.atan");
  // Gelu (opset 20; what PyTorch's torch.export-based exporter emits for
  // nn.GELU / F.gelu): approximate = "none" (erf) or "tanh".
  r.add("Gelu", 20, [](NodeContext &n) {
    std::string approximate = n.attrString("approximate", "none");
    if (approximate != "none" && approximate != "tanh")
      n.fail("approximate must be \"none\" or \"tanh\", got \"" + approximate +
             "\"");
    if (!isFloat(n.dtype(0)))
      n.fail("Gelu needs a float input");
    n.setOutput(0, n.create("kiln.gelu", {n.input(0)},
                            {n.strAttr("approximate", approximate)}));
  });

  addVariadic(r, "Sum", "kiln.add", false);
  addVariadic(r, "Mean", "kiln.add", true);
  addVariadic(r, "Max", "kiln.max", false);
  addVariadic(r, "Min", "kiln.min", false);

  r.add("Identity", 1, [](NodeContext &n) {
    if (const Tensor *t = n.constant(0))
      n.setOutput(0, *t);
    else
      n.setOutput(0, n.input(0));
  });

  r.add("Floor", 1,
        [](NodeContext &n) { n.setOutput(0, floorOf(n, n.input(0), false)); });
  r.add("Ceil", 1,
        [](NodeContext &n) { n.setOutput(0, floorOf(n, n.input(0), true)); });

  // Sign(x) = (x > 0) - (x < 0)
  r.add("Sign", 9, [](NodeContext &n) {
    mlir::Value x = n.input(0);
    DType t = dtypeOf(x);
    mlir::Value zero = n.scalarLike(0, x);
    mlir::Value pos = n.cast(n.compare("gt", x, zero), t);
    mlir::Value neg = n.cast(n.compare("lt", x, zero), t);
    n.setOutput(0, n.binary("kiln.sub", pos, neg));
  });

  // Logical ops on i1: not(x) = (x == false), and = where(a, b, false),
  // or = where(a, true, b), xor = (a != b).
  r.add("Not", 1, [](NodeContext &n) {
    mlir::Value x = n.input(0);
    n.setOutput(0, n.compare("eq", x, n.scalar(0, DType::i1)));
  });
  r.add("And", 7, [](NodeContext &n) {
    n.setOutput(0, n.where(n.input(0), n.input(1), n.scalar(0, DType::i1)));
  });
  r.add("Or", 7, [](NodeContext &n) {
    n.setOutput(0, n.where(n.input(0), n.scalar(1, DType::i1), n.input(1)));
  });
  r.add("Xor", 7, [](NodeContext &n) {
    n.setOutput(0, n.compare("ne", n.input(0), n.input(1)));
  });

  r.add("Where", 9, [](NodeContext &n) {
    if (n.allInputsConstant()) {
      n.setOutput(0,
                  host::where(*n.constant(0), *n.constant(1), *n.constant(2)));
      return;
    }
    n.setOutput(0, n.where(n.input(0), n.input(1), n.input(2)));
  });

  r.add("Cast", 6, [](NodeContext &n) {
    int64_t to = n.requireAttrInt("to");
    auto dtype = dtypeFromOnnx(static_cast<int32_t>(to));
    if (!dtype)
      n.unsupported("cast to " + onnxTypeName(static_cast<int32_t>(to)));
    if (const Tensor *t = n.constant(0)) {
      n.setOutput(0, host::cast(*t, *dtype));
      return;
    }
    n.setOutput(0, n.cast(n.input(0), *dtype));
  });
  r.add("CastLike", 15,
        [](NodeContext &n) { n.setOutput(0, n.cast(n.input(0), n.dtype(1))); });

  r.add("MatMul", 1, [](NodeContext &n) {
    n.setOutput(0, matmul(n, n.input(0), n.input(1)));
  });
  r.add("Gemm", 1, gemm);

  r.add("Clip", 6, [](NodeContext &n) {
    std::optional<double> lo, hi;
    if (n.hasAttr("min"))
      lo = n.attrFloat("min", 0);
    if (n.hasAttr("max"))
      hi = n.attrFloat("max", 0);
    clip(n, lo, hi);
  });

  // LeakyRelu(x) = where(x < 0, alpha * x, x)
  addComposite(r, "LeakyRelu", [](NodeContext &n, mlir::Value x) {
    double alpha = n.attrFloat("alpha", 0.01);
    mlir::Value neg = n.compare("lt", x, n.scalarLike(0, x));
    return n.where(neg, n.binary("kiln.mul", x, n.scalarLike(alpha, x)), x);
  });
  // PRelu(x, slope) = where(x < 0, slope * x, x)
  r.add("PRelu", 1, [](NodeContext &n) {
    mlir::Value x = n.input(0), slope = n.input(1);
    // Exporters give a per-channel slope as [C]; it applies to dim 1.
    auto sx = shapeOf(x), ss = shapeOf(slope);
    if (ss.size() == 1 && sx.size() > 2 && ss[0] == sx[1] && ss[0] != 1) {
      std::vector<int64_t> shape(sx.size() - 1, 1);
      shape[0] = ss[0];
      slope = n.reshape(slope, shape);
    }
    mlir::Value neg = n.compare("lt", x, n.scalarLike(0, x));
    n.setOutput(0, n.where(neg, n.binary("kiln.mul", x, slope), x));
  });
  // HardSigmoid(x) = max(0, min(1, alpha * x + beta))
  addComposite(r, "HardSigmoid", [](NodeContext &n, mlir::Value x) {
    double alpha = n.attrFloat("alpha", 0.2), beta = n.attrFloat("beta", 0.5);
    mlir::Value y =
        n.binary("kiln.add", n.binary("kiln.mul", x, n.scalarLike(alpha, x)),
                 n.scalarLike(beta, x));
    y = n.binary("kiln.min", y, n.scalarLike(1, x));
    return n.binary("kiln.max", y, n.scalarLike(0, x));
  });
  // HardSwish(x) = x * max(0, min(1, x / 6 + 1 / 2))
  addComposite(r, "HardSwish", [](NodeContext &n, mlir::Value x) {
    mlir::Value y =
        n.binary("kiln.add", n.binary("kiln.mul", x, n.scalarLike(1.0 / 6, x)),
                 n.scalarLike(0.5, x));
    y = n.binary("kiln.min", y, n.scalarLike(1, x));
    y = n.binary("kiln.max", y, n.scalarLike(0, x));
    return n.binary("kiln.mul", x, y);
  });
  // Elu(x) = where(x < 0, alpha * (exp(x) - 1), x)
  addComposite(r, "Elu", [](NodeContext &n, mlir::Value x) {
    double alpha = n.attrFloat("alpha", 1.0);
    mlir::Value em1 =
        n.binary("kiln.sub", n.unary("kiln.exp", x), n.scalarLike(1, x));
    mlir::Value neg = n.compare("lt", x, n.scalarLike(0, x));
    return n.where(neg, n.binary("kiln.mul", em1, n.scalarLike(alpha, x)), x);
  });
  // Celu(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
  addComposite(r, "Celu", [](NodeContext &n, mlir::Value x) {
    double alpha = n.attrFloat("alpha", 1.0);
    mlir::Value e =
        n.unary("kiln.exp", n.binary("kiln.div", x, n.scalarLike(alpha, x)));
    mlir::Value neg =
        n.binary("kiln.mul", n.binary("kiln.sub", e, n.scalarLike(1, x)),
                 n.scalarLike(alpha, x));
    return n.binary("kiln.add", n.binary("kiln.max", x, n.scalarLike(0, x)),
                    n.binary("kiln.min", neg, n.scalarLike(0, x)));
  });
  // Selu(x) = gamma * where(x <= 0, alpha * (exp(x) - 1), x)
  addComposite(r, "Selu", [](NodeContext &n, mlir::Value x) {
    double alpha = n.attrFloat("alpha", 1.67326319217681884765625);
    double gamma = n.attrFloat("gamma", 1.05070102214813232421875);
    mlir::Value em1 =
        n.binary("kiln.sub", n.unary("kiln.exp", x), n.scalarLike(1, x));
    mlir::Value neg = n.compare("le", x, n.scalarLike(0, x));
    mlir::Value y =
        n.where(neg, n.binary("kiln.mul", em1, n.scalarLike(alpha, x)), x);
    return n.binary("kiln.mul", y, n.scalarLike(gamma, x));
  });
  // ThresholdedRelu(x) = where(x > alpha, x, 0)
  addComposite(r, "ThresholdedRelu", [](NodeContext &n, mlir::Value x) {
    double alpha = n.attrFloat("alpha", 1.0);
    return n.where(n.compare("gt", x, n.scalarLike(alpha, x)), x,
                   n.scalarLike(0, x));
  });
  // Softplus(x) = log(exp(x) + 1)
  addComposite(r, "Softplus", [](NodeContext &n, mlir::Value x) {
    return n.unary("kiln.log", n.binary("kiln.add", n.unary("kiln.exp", x),
                                        n.scalarLike(1, x)));
  });
  // Softsign(x) = x / (1 + |x|)
  addComposite(r, "Softsign", [](NodeContext &n, mlir::Value x) {
    return n.binary(
        "kiln.div", x,
        n.binary("kiln.add", n.unary("kiln.abs", x), n.scalarLike(1, x)));
  });
  // Mish(x) = x * tanh(log(1 + exp(x)))
  addComposite(r, "Mish", [](NodeContext &n, mlir::Value x) {
    mlir::Value sp =
        n.unary("kiln.log", n.binary("kiln.add", n.unary("kiln.exp", x),
                                     n.scalarLike(1, x)));
    return n.binary("kiln.mul", x, n.unary("kiln.tanh", sp));
  });

  // Mod: fmod = 1 keeps the dividend's sign (C fmod); fmod = 0 (integers
  // only) the divisor's: r = a - trunc(a / b) * b, plus b where the signs
  // of r and b differ and r != 0.
  r.add("Mod", 10, [](NodeContext &n) {
    bool fmod = n.attrInt("fmod", 0);
    // Shape arithmetic (e.g. torch's MultiheadAttention export computes slice
    // bounds with Mod) must fold at import time.
    if (n.allInputsConstant() &&
        n.constant(0)->dtype() == n.constant(1)->dtype() &&
        (fmod || !isFloat(n.constant(0)->dtype()))) {
      n.setOutput(0, host::binary(*n.constant(0), *n.constant(1),
                                  fmod ? "fmod" : "mod"));
      return;
    }
    mlir::Value a = n.input(0), b = n.input(1);
    DType t = dtypeOf(a);
    mlir::Value q = n.binary("kiln.div", a, b);
    if (isFloat(t))
      q = n.cast(n.cast(q, DType::i64), t);
    mlir::Value rem = n.binary("kiln.sub", a, n.binary("kiln.mul", q, b));
    if (!fmod) {
      mlir::Value zero = n.scalarLike(0, a);
      mlir::Value fix = n.where(
          n.compare("ne", n.compare("lt", rem, zero), n.compare("lt", b, zero)),
          n.compare("ne", rem, zero), n.scalar(0, DType::i1));
      rem = n.where(fix, n.binary("kiln.add", rem, b), rem);
    }
    n.setOutput(0, rem);
  });

  // Round(x): half to even. f = floor(x), d = x - f;
  //   out = f + (d > 1/2 ? 1 : d == 1/2 ? f - 2 * floor(f / 2) : 0)
  r.add("Round", 11, [](NodeContext &n) {
    mlir::Value x = n.input(0);
    if (!isFloat(dtypeOf(x)))
      n.unsupported(std::string("element type ") + dtypeName(dtypeOf(x)));
    mlir::Value f = floorOf(n, x, false);
    mlir::Value d = n.binary("kiln.sub", x, f);
    mlir::Value half = n.scalarLike(0.5, x);
    mlir::Value odd =
        n.binary("kiln.sub", f,
                 n.binary("kiln.mul", n.scalarLike(2, x),
                          floorOf(n, n.binary("kiln.mul", f, half), false)));
    mlir::Value up =
        n.where(n.compare("gt", d, half), n.scalarLike(1, x),
                n.where(n.compare("eq", d, half), odd, n.scalarLike(0, x)));
    n.setOutput(0, n.binary("kiln.add", f, up));
  });

  // IsNaN(x) = x != x
  r.add("IsNaN", 9, [](NodeContext &n) {
    mlir::Value x = n.input(0);
    n.setOutput(0, n.compare("ne", x, x));
  });
  // IsInf(x) = (x == +inf and detect_positive) or (x == -inf and
  // detect_negative)
  r.add("IsInf", 10, [](NodeContext &n) {
    mlir::Value x = n.input(0);
    bool pos = n.attrInt("detect_positive", 1) != 0;
    bool neg = n.attrInt("detect_negative", 1) != 0;
    mlir::Value no = n.scalar(0, DType::i1);
    mlir::Value isPos =
        pos ? n.compare("eq", x, n.scalarLike(INFINITY, x)) : no;
    mlir::Value isNeg =
        neg ? n.compare("eq", x, n.scalarLike(-INFINITY, x)) : no;
    n.setOutput(0, n.broadcastTo(n.where(isPos, n.scalar(1, DType::i1), isNeg),
                                 shapeOf(x)));
  });

  // Trigonometric and hyperbolic functions kiln has no op for.
  // Tan(x) = sin(x) / cos(x)
  addComposite(r, "Tan", [](NodeContext &n, mlir::Value x) {
    return n.binary("kiln.div", n.unary("kiln.sin", x), n.unary("kiln.cos", x));
  });
  // Asin(x) = atan(x / sqrt(1 - x^2))  (x = +-1 gives atan(+-inf) = +-pi/2)
  auto asinOf = [](NodeContext &n, mlir::Value x) {
    mlir::Value c =
        n.unary("kiln.sqrt", n.binary("kiln.sub", n.scalarLike(1, x),
                                      n.binary("kiln.mul", x, x)));
    return n.unary("kiln.atan", n.binary("kiln.div", x, c));
  };
  addComposite(r, "Asin", asinOf);
  // Acos(x) = pi/2 - asin(x)
  addComposite(r, "Acos", [asinOf](NodeContext &n, mlir::Value x) {
    return n.binary("kiln.sub", n.scalarLike(M_PI / 2, x), asinOf(n, x));
  });
  // Sinh(x) = (e^x - e^-x) / 2, Cosh(x) = (e^x + e^-x) / 2
  auto hyperbolic = [](NodeContext &n, mlir::Value x, bool sinh) {
    mlir::Value ep = n.unary("kiln.exp", x);
    mlir::Value em = n.unary("kiln.exp", n.unary("kiln.neg", x));
    return n.binary("kiln.mul",
                    n.binary(sinh ? "kiln.sub" : "kiln.add", ep, em),
                    n.scalarLike(0.5, x));
  };
  addComposite(r, "Sinh", [hyperbolic](NodeContext &n, mlir::Value x) {
    return hyperbolic(n, x, true);
  });
  addComposite(r, "Cosh", [hyperbolic](NodeContext &n, mlir::Value x) {
    return hyperbolic(n, x, false);
  });
  // Asinh(x) = log(x + sqrt(x^2 + 1)), Acosh(x) = log(x + sqrt(x^2 - 1))
  auto inverseHyperbolic = [](NodeContext &n, mlir::Value x, double c) {
    mlir::Value root =
        n.unary("kiln.sqrt", n.binary("kiln.add", n.binary("kiln.mul", x, x),
                                      n.scalarLike(c, x)));
    return n.unary("kiln.log", n.binary("kiln.add", x, root));
  };
  addComposite(r, "Asinh", [inverseHyperbolic](NodeContext &n, mlir::Value x) {
    return inverseHyperbolic(n, x, 1);
  });
  addComposite(r, "Acosh", [inverseHyperbolic](NodeContext &n, mlir::Value x) {
    return inverseHyperbolic(n, x, -1);
  });
  // Atanh(x) = log((1 + x) / (1 - x)) / 2
  addComposite(r, "Atanh", [](NodeContext &n, mlir::Value x) {
    mlir::Value one = n.scalarLike(1, x);
    mlir::Value q = n.binary("kiln.div", n.binary("kiln.add", one, x),
                             n.binary("kiln.sub", one, x));
    return n.binary("kiln.mul", n.unary("kiln.log", q), n.scalarLike(0.5, x));
  });

  // Shrink(x) = x < -lambd ? x + bias : x > lambd ? x - bias : 0
  r.add("Shrink", 9, [](NodeContext &n) {
    mlir::Value x = n.input(0);
    double lambd = n.attrFloat("lambd", 0.5), bias = n.attrFloat("bias", 0.0);
    mlir::Value low = n.compare("lt", x, n.scalarLike(-lambd, x));
    mlir::Value high = n.compare("gt", x, n.scalarLike(lambd, x));
    mlir::Value b = n.scalarLike(bias, x);
    n.setOutput(0, n.where(low, n.binary("kiln.add", x, b),
                           n.where(high, n.binary("kiln.sub", x, b),
                                   n.scalarLike(0, x))));
  });
}

} // namespace kiln::onnx_import
