#!/usr/bin/env python3
"""Times Kiln against ONNX Runtime and PyTorch eager on torchvision
classifiers (random weights, batch 1, the model's own image size), the
models a user would export and run themselves: each is exported with
PyTorch's TorchScript exporter at opset 17, compiled with `kilnc --remarks`,
checked against ONNX Runtime and PyTorch, then timed interleaved round by
round with 2 threads, exactly as bench/time_hf_models.py does (same code:
each sample is retried when other processes took more than 0.15 of a core
meanwhile; the table shows the worst sample kept).

Needs the peers of bench/setup.sh:
  build/bench-venv/bin/python bench/time_torchvision.py [--only resnet50,densenet121]
      [--rounds 3] [--iters 10] [--bin DIR] [--work DIR]
Any torchvision classifier name works with --only (e.g. alexnet, vgg11,
regnet_y_400mf, maxvit_t); the default is the list in DEFAULT. Prints one
markdown table; exits non-zero when Kiln fails or its output is further
from PyTorch's than both 1e-4 (relative to the largest output) and twice
ONNX Runtime's distance from PyTorch.
"""
import argparse, os, sys, tempfile
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from time_hf_models import THREADS, add_timing_args, print_table, run_case

DEFAULT = ("resnet50,mobilenet_v3_large,efficientnet_b0,densenet121,shufflenet_v2_x1_0,"
           "squeezenet1_1,googlenet,inception_v3,convnext_tiny,swin_t")
# Attention blocks each model has (fused ones are counted from the remarks).
ATTENTION = {"vit_b_16": 12, "vit_b_32": 12, "vit_l_16": 24, "swin_t": 12, "swin_s": 24,
             "swin_v2_t": 12}


def build(name):
    if not hasattr(torchvision.models, name):
        sys.exit(f"torchvision has no model '{name}'")
    torch.manual_seed(0)
    kwargs = {"init_weights": True} if name in ("inception_v3", "googlenet") else {}
    model = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    side = 299 if name == "inception_v3" else 224
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    params = sum(p.numel() for p in model.parameters())
    return model, {"x": x}, ATTENTION.get(name, 0), params


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=DEFAULT)
    add_timing_args(ap)
    a = ap.parse_args()
    a.work = a.work or tempfile.mkdtemp(prefix="kiln-torchvision-timing-")
    torch.set_num_threads(THREADS)
    names = [n for n in a.only.split(",") if n]
    built = {n: build(n) for n in names}  # unknown names fail before any timing
    results = [run_case(f"{n}.tv", a, built[n]) for n in names]
    sys.exit(1 if print_table(results, a.work) else 0)


if __name__ == "__main__":
    main()
