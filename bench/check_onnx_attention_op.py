#!/usr/bin/env python3
"""Exports F.scaled_dot_product_attention at opset 23, where PyTorch writes
the ONNX `Attention` op, runs it with kiln-run and compares with PyTorch.

Variants: causal cross-attention (Sq != Sk, the spec's upper-left triangle),
a boolean mask, an additive mask with an explicit scale, and grouped-query
attention (enable_gqa) with is_causal. Needs the peers of bench/setup.sh:
  build/bench-venv/bin/python bench/check_onnx_attention_op.py [BIN_DIR] [WORKDIR]
  build/bench-venv/bin/python bench/check_onnx_attention_op.py --save-fixtures tests/onnx/attention
The second form also writes each file with its inputs and PyTorch's output
(opset23-<variant>.*) as fixtures for tests/onnx/AttentionExportsTest.cpp.
Exits non-zero when an output differs by more than 1e-5 absolute.
"""
import os, shutil, subprocess, sys, tempfile
import numpy as np
import onnx
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = None
if len(sys.argv) > 2 and sys.argv[1] == "--save-fixtures":
    FIXTURES = sys.argv[2]
    del sys.argv[1:3]
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "bin")
WORK = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="kiln-attn-op-")


class Sdpa(torch.nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.variant = variant

    def forward(self, q, k, v, m):
        if self.variant == "causal-cross":
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        if self.variant == "bool-mask":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=m > 0)
        if self.variant == "float-mask":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)


def main():
    torch.manual_seed(0)
    worst = 0.0
    for variant in ["causal-cross", "bool-mask", "float-mask", "gqa-causal"]:
        kv_heads = 2 if variant == "gqa-causal" else 4
        sq = 5 if variant == "causal-cross" else 12
        inputs = {"q": torch.randn(2, 4, sq, 8), "k": torch.randn(2, kv_heads, 12, 8),
                  "v": torch.randn(2, kv_heads, 12, 8), "m": torch.randn(2, 1, sq, 12)}
        model = Sdpa(variant)
        path = f"{WORK}/opset23-{variant}.onnx"
        torch.onnx.export(model, tuple(inputs.values()), path, dynamo=True, opset_version=23,
                          external_data=False, input_names=list(inputs), output_names=["y"])
        graph = onnx.load(path).graph
        ops = [n.op_type for n in graph.node]
        used = {i.name for i in graph.input}
        ref = model(*inputs.values()).numpy()
        args = []
        for name, t in inputs.items():
            np.save(f"{WORK}/opset23-{variant}.{name}.npy", t.numpy())
            if name in used:
                args += ["--input", f"{name}={WORK}/opset23-{variant}.{name}.npy"]
        subprocess.run([f"{BIN}/kiln-run", path, *args, "--output-dir", f"{WORK}/{variant}-out"],
                       check=True, capture_output=True)
        err = float(np.abs(np.load(f"{WORK}/{variant}-out/y.npy") - ref).max())
        worst = max(worst, err)
        print(f"| {variant} | {' '.join(ops)} | {err:.2g} |", flush=True)
        if FIXTURES:
            os.makedirs(FIXTURES, exist_ok=True)
            shutil.copy(path, FIXTURES)
            for name in used:
                shutil.copy(f"{WORK}/opset23-{variant}.{name}.npy", FIXTURES)
            np.save(f"{FIXTURES}/opset23-{variant}.y.npy", ref)
    sys.exit(0 if worst <= 1e-5 else 1)


if __name__ == "__main__":
    main()
