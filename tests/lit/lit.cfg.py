# -*- Python -*-
# lit configuration of Kiln's FileCheck tests. Every .mlir file below this
# folder is a test (ir/, passes/, tools/, ...): adding a folder needs no change
# here. Tools are substituted by name: kiln-opt, kilnc, kiln-run (from the
# build's bin/), FileCheck and not (from LLVM 19).

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "Kiln"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "tests", "lit")

llvm_config.with_system_environment(["HOME", "TMP", "TEMP"])
llvm_config.use_default_substitutions()
llvm_config.with_environment("PATH", config.kiln_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)

# Kiln tools resolve to the build's bin/ even before they exist, so a test of
# a missing tool fails loudly instead of silently running something else.
tools = [
    ToolSubst(name, command=os.path.join(config.kiln_tools_dir, name))
    for name in ["kiln-opt", "kilnc", "kiln-run"]
]
tools.append(ToolSubst("not", command=os.path.join(config.llvm_tools_dir, "not")))
llvm_config.add_tool_substitutions(tools, [config.kiln_tools_dir, config.llvm_tools_dir])

# The ONNX backend test data (Debian's libonnx-testdata) for tools/onnx.mlir.
onnx_testdata = "/usr/share/libonnx-testdata/data"
if os.path.isdir(os.path.join(onnx_testdata, "node")):
    config.available_features.add("onnx-testdata")
config.substitutions.append(("%onnx_node", os.path.join(onnx_testdata, "node")))
