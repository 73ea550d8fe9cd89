//===- frontends/onnx/Einsum.cpp - Einsum as transposes and matmuls -------===//
//
// Einsum (opset 12) lowered to the ops the passes already understand, so that
// attention written as einsum("bhqd,bhkd->bhqk") reaches kiln-fuse-attention
// as a plain batched matmul. Operands are contracted left to right; in each
// pairwise step every label is one of:
//
//   batch     in both operands and still needed (output or a later operand)
//   contract  in both, not needed afterwards: summed by the matmul
//   free      in one operand and still needed
//   summed    in one operand only, not needed: reduce_sum first
//
// The left operand is transposed to [batch, freeA, contract], the right one to
// [batch, contract, freeB], free and contracted groups of more than one dim are
// merged by reshapes, and kiln.matmul (whose batch dims broadcast) multiplies
// them; NodeContext skips identity transposes and reshapes. One operand: sums
// and a transpose. The ellipsis (`...`) stands for the same leading dims in
// every operand, aligned from the right as in broadcasting. Not supported,
// with an error saying so: a label repeated within one operand (diagonals).
//
//===----------------------------------------------------------------------===//
#include "frontends/onnx/Importer.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace kiln::onnx_import {
namespace {

/// One operand (or the output) of an equation: its labels, one per dim.
using Labels = std::vector<char>;

/// An operand while contracting: its IR value and the label of each dim.
struct Term {
  mlir::Value value;
  Labels labels;
};

/// Labels for the ellipsis dims: characters no equation letter uses.
char ellipsisLabel(int64_t i) { return static_cast<char>('0' + i); }

/// Parses one side ("ab...c"). Its "..." stands for `extra` dims, which take
/// the last `extra` of the `ellipsisRank` ellipsis labels (right-aligned, as
/// broadcasting aligns dims).
Labels parseTerm(NodeContext &n, const std::string &text, int64_t extra,
                 int64_t ellipsisRank) {
  Labels labels;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (text.compare(i, 3, "...") != 0)
        n.fail("equation term '" + text + "' has a '.' outside '...'");
      for (int64_t e = ellipsisRank - extra; e < ellipsisRank; ++e)
        labels.push_back(ellipsisLabel(e));
      i += 2;
    } else if (std::isalpha(static_cast<unsigned char>(c))) {
      labels.push_back(c);
    } else if (c != ' ') {
      n.fail(std::string("equation has the character '") + c +
             "', expected letters and '...'");
    }
  }
  return labels;
}

/// Number of letters in a term (its dims besides the ellipsis).
int64_t letterCount(const std::string &text) {
  return std::count_if(text.begin(), text.end(), [](char c) {
    return std::isalpha(static_cast<unsigned char>(c));
  });
}

std::vector<int64_t> permutationTo(const Labels &from, const Labels &to) {
  std::vector<int64_t> perm;
  for (char c : to)
    perm.push_back(std::find(from.begin(), from.end(), c) - from.begin());
  return perm;
}

/// Transposes `t` so its labels read `order` (NodeContext::transpose emits
/// nothing when they already do).
Term arrange(NodeContext &n, const Term &t, const Labels &order) {
  return {n.transpose(t.value, permutationTo(t.labels, order)), order};
}

/// Sums the dims of `t` whose labels are not in `keep`.
Term sumOut(NodeContext &n, const Term &t, const std::set<char> &keep) {
  std::vector<int64_t> axes;
  Labels rest;
  for (size_t i = 0; i < t.labels.size(); ++i) {
    if (keep.count(t.labels[i]))
      rest.push_back(t.labels[i]);
    else
      axes.push_back(static_cast<int64_t>(i));
  }
  if (axes.empty())
    return t;
  return {n.reduce("kiln.reduce_sum", t.value, axes, /*keepdims=*/false), rest};
}

/// Contracts two terms, keeping the labels in `keep`. The result's labels
/// are [batch, freeA, freeB].
Term contract(NodeContext &n, Term a, Term b, const std::set<char> &keep) {
  auto has = [](const Labels &l, char c) {
    return std::find(l.begin(), l.end(), c) != l.end();
  };
  // Labels used by the other operand count as needed for the sums.
  std::set<char> keepA = keep, keepB = keep;
  keepA.insert(b.labels.begin(), b.labels.end());
  keepB.insert(a.labels.begin(), a.labels.end());
  a = sumOut(n, a, keepA);
  b = sumOut(n, b, keepB);
  Labels batch, freeA, freeB, summed;
  for (char c : a.labels) {
    if (!has(b.labels, c))
      freeA.push_back(c);
    else if (keep.count(c))
      batch.push_back(c);
    else
      summed.push_back(c);
  }
  for (char c : b.labels)
    if (!has(a.labels, c))
      freeB.push_back(c);

  auto sa = shapeOf(a.value), sb = shapeOf(b.value);
  auto dimOf = [&](const Term &t, const std::vector<int64_t> &shape, char c) {
    return shape[std::find(t.labels.begin(), t.labels.end(), c) -
                 t.labels.begin()];
  };
  auto product = [&](const Term &t, const std::vector<int64_t> &shape,
                     const Labels &group) {
    int64_t p = 1;
    for (char c : group)
      p *= dimOf(t, shape, c);
    return p;
  };
  for (char c : summed)
    if (dimOf(a, sa, c) != dimOf(b, sb, c))
      n.fail(std::string("label '") + c + "' has size " +
             std::to_string(dimOf(a, sa, c)) + " in one operand and " +
             std::to_string(dimOf(b, sb, c)) + " in the other");

  Labels orderA = batch, orderB = batch;
  orderA.insert(orderA.end(), freeA.begin(), freeA.end());
  orderA.insert(orderA.end(), summed.begin(), summed.end());
  orderB.insert(orderB.end(), summed.begin(), summed.end());
  orderB.insert(orderB.end(), freeB.begin(), freeB.end());
  a = arrange(n, a, orderA);
  b = arrange(n, b, orderB);

  // [batch..., M, K] x [batch..., K, N], merging each group into one dim
  // (an empty group is a dim of 1).
  std::vector<int64_t> batchA, batchB;
  for (char c : batch) {
    batchA.push_back(dimOf(a, shapeOf(a.value), c));
    batchB.push_back(dimOf(b, shapeOf(b.value), c));
  }
  int64_t m = product(a, shapeOf(a.value), freeA),
          k = product(a, shapeOf(a.value), summed),
          nn = product(b, shapeOf(b.value), freeB);
  auto to3 = [&](mlir::Value v, std::vector<int64_t> lead, int64_t r,
                 int64_t c) {
    lead.push_back(r);
    lead.push_back(c);
    return n.reshape(v, lead); // no-op when the shape is already that
  };
  mlir::Value lhs = to3(a.value, batchA, m, k);
  mlir::Value rhs = to3(b.value, batchB, k, nn);
  mlir::Value y = n.binary("kiln.matmul", lhs, rhs);

  // Back to [batch..., freeA..., freeB...].
  auto sy = shapeOf(y);
  std::vector<int64_t> out(sy.begin(), sy.end() - 2);
  for (char c : freeA)
    out.push_back(dimOf(a, shapeOf(a.value), c));
  for (char c : freeB)
    out.push_back(dimOf(b, shapeOf(b.value), c));
  y = n.reshape(y, out);
  Labels labels = batch;
  labels.insert(labels.end(), freeA.begin(), freeA.end());
  labels.insert(labels.end(), freeB.begin(), freeB.end());
  return {y, labels};
}

void einsum(NodeContext &n) {
  std::string equation = n.attrString("equation", "");
  if (equation.empty())
    n.fail("Einsum needs an `equation` attribute");
  std::string lhs = equation, rhs;
  bool explicitOutput = false;
  if (auto arrow = equation.find("->"); arrow != std::string::npos) {
    lhs = equation.substr(0, arrow);
    rhs = equation.substr(arrow + 2);
    explicitOutput = true;
  }
  std::vector<std::string> texts;
  for (size_t start = 0;;) {
    size_t comma = lhs.find(',', start);
    texts.push_back(lhs.substr(start, comma - start));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  if (static_cast<int>(texts.size()) != n.numInputs())
    n.fail("equation '" + equation + "' has " + std::to_string(texts.size()) +
           " operand terms for " + std::to_string(n.numInputs()) + " inputs");

  // Dims each term's "..." stands for; the longest sets the output's.
  std::vector<int64_t> extras;
  int64_t ellipsisRank = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    int64_t rank = n.rank(static_cast<int>(i));
    bool hasEllipsis = texts[i].find("...") != std::string::npos;
    int64_t extra = rank - letterCount(texts[i]);
    if (extra < 0 || (!hasEllipsis && extra != 0))
      n.fail("equation term '" + texts[i] + "' does not match input " +
             std::to_string(i) + " of rank " + std::to_string(rank));
    extras.push_back(extra);
    ellipsisRank = std::max(ellipsisRank, extra);
  }
  std::vector<Term> terms;
  std::map<char, int> count;
  for (size_t i = 0; i < texts.size(); ++i) {
    Labels labels = parseTerm(n, texts[i], extras[i], ellipsisRank);
    std::set<char> seen;
    for (char c : labels) {
      if (!seen.insert(c).second)
        n.unsupported(std::string("Einsum with label '") + c +
                      "' repeated in one operand (a diagonal)");
      ++count[c];
    }
    terms.push_back({n.input(static_cast<int>(i)), labels});
  }

  Labels output;
  if (explicitOutput) {
    output = parseTerm(n, rhs, ellipsisRank, ellipsisRank);
  } else {
    // Implicit: the ellipsis dims, then the letters used once, sorted.
    for (int64_t e = 0; e < ellipsisRank; ++e)
      output.push_back(ellipsisLabel(e));
    for (auto [c, k] : count)
      if (k == 1 && std::isalpha(static_cast<unsigned char>(c)))
        output.push_back(c);
  }
  std::set<char> outputSet(output.begin(), output.end());
  if (outputSet.size() != output.size())
    n.fail("equation output '" + rhs + "' repeats a label");
  for (char c : output)
    if (!count.count(c))
      n.fail(std::string("equation output has label '") + c +
             "', which no input has");

  Term acc = terms[0];
  for (size_t i = 1; i < terms.size(); ++i) {
    std::set<char> keep = outputSet;
    for (size_t j = i + 1; j < terms.size(); ++j)
      keep.insert(terms[j].labels.begin(), terms[j].labels.end());
    acc = contract(n, acc, terms[i], keep);
  }
  acc = sumOut(n, acc, outputSet);
  n.setOutput(0, arrange(n, acc, output).value);
}

} // namespace

void registerEinsumHandler(HandlerRegistry &r) { r.add("Einsum", 12, einsum); }

} // namespace kiln::onnx_import
