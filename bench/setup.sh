#!/usr/bin/env bash
# Installs the benchmark peers (PyTorch, torchvision, ONNX Runtime, onnx,
# onnxscript for PyTorch's default ONNX exporter,
# numpy, transformers for bench/check_hf_models.py) from PyPI
# into build/bench-venv, leaving the system Python alone. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/bench-venv
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q numpy onnx onnxscript onnxruntime torch torchvision pillow transformers
"$venv/bin/python" -c "import torch, onnxruntime, transformers; print('bench peers: torch', torch.__version__, '/ onnxruntime', onnxruntime.__version__, '/ transformers', transformers.__version__)"
