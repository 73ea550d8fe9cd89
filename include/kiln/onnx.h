//===- kiln/onnx.h - ONNX model import -------------------------*- C++ -*-===//
//
// Imports an ONNX model file into a kiln::Module: the graph becomes one
// func.func in the kiln dialect, initializers become parameters (`kiln.param`
// = initializer name) whose values land in Module::weights(), graph inputs
// that are not initializers become inputs (`kiln.name`), and every op is
// located at its node's name in the model file.
//
//   kiln::onnx::ImportOptions options;
//   options.setInputShape("pixels", {1, 3, 224, 224});
//   auto module = kiln::onnx::importModel("resnet50.onnx", options);
//   if (!module) { std::cerr << module.status().message(); return 1; }
//   auto exe = kiln::compile(*module);
//
// Kiln compiles static shapes, so every dynamic dim of a graph input must be
// given in the options. Shape-computing subgraphs (Shape -> Gather -> Concat ->
// Reshape, ConstantOfShape, Range, ...) are evaluated while importing.
//
// Errors come back as a Status, never as an abort or exception. A model with
// ops the importer does not support fails with one message that lists every
// unsupported op type with its node count, first node names and opset; that
// message starts with "unsupported ONNX ops". This header does not include
// MLIR or protobuf.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_ONNX_H
#define KILN_ONNX_H

#include "kiln/dsl.h"

#include <map>
#include <string>
#include <vector>

namespace kiln::onnx {

/// Options for importModel().
struct ImportOptions {
  /// Shapes of graph inputs, by name; required for inputs with dynamic dims,
  /// and checked against the static dims the model declares.
  std::map<std::string, std::vector<int64_t>> inputShapes;
  /// Shapes of the values a caller will give for graph inputs at run time
  /// (kiln-run's --input files): they fix an input's dynamic dims where
  /// inputShapes does not name it. A declared dim or rank they contradict
  /// is an error that says the value's shape.
  std::map<std::string, std::vector<int64_t>> valueShapes;
  /// Values of graph inputs that the model uses where kiln needs a value at
  /// import time (a Reshape target, Slice bounds, reduction axes, ...). The
  /// module is specialized to these values; the input stays an input.
  TensorMap inputValues;

  /// `options.setInputShape("x", {1, 3, 224, 224})`
  ImportOptions &setInputShape(std::string name, std::vector<int64_t> shape) {
    inputShapes[std::move(name)] = std::move(shape);
    return *this;
  }
  ImportOptions &setValueShape(std::string name, std::vector<int64_t> shape) {
    valueShapes[std::move(name)] = std::move(shape);
    return *this;
  }
  ImportOptions &setInputValue(std::string name, Tensor value) {
    inputValues[std::move(name)] = std::move(value);
    return *this;
  }
};

/// Imports the ONNX model at `path`. External data files are read relative to
/// the model's folder; a location that escapes that folder is refused.
StatusOr<Module> importModel(const std::string &path,
                             const ImportOptions &options = {});

/// Imports a serialized onnx.ModelProto held in memory. `modelPath` names the
/// model in locations and anchors external data (its folder).
StatusOr<Module> importModelFromBytes(const std::string &bytes,
                                      const std::string &modelPath,
                                      const ImportOptions &options = {});

} // namespace kiln::onnx

#endif // KILN_ONNX_H
