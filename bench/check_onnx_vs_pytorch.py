#!/usr/bin/env python3
"""Exports the zoo's architectures from PyTorch to ONNX, imports them with
kilnc, runs them with kiln-run and compares the outputs with PyTorch's.

An independent oracle for the ONNX frontend and the cpu backend on whole
models that are not in the repository. Needs the peers of bench/setup.sh:
  build/bench-venv/bin/python bench/check_onnx_vs_pytorch.py [--dynamo] [BIN_DIR] [WORKDIR]
--dynamo exports with PyTorch's default, torch.export-based exporter (opset
20, needs onnxscript) instead of the TorchScript one (opset 17).
Exits non-zero when any relative error exceeds 1e-4.
"""
import os, sys, subprocess, tempfile, time
import numpy as np
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_models import torch_model
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DYNAMO = "--dynamo" in sys.argv
if DYNAMO:
    sys.argv.remove("--dynamo")
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "bin")
WORK = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="kiln-onnx-check-")
torch.manual_seed(0)
worst = 0.0
def models():
    """The zoo's architectures, then torchvision's (when installed)."""
    for name in ["resnet50", "bert-base", "gpt2-small"]:
        yield (name,) + torch_model(name, 1)
    try:
        import torchvision
    except ImportError:
        print("torchvision not installed: skipping its models", flush=True)
        return
    # Plus the families that took slow or new paths in the 2026-12-02
    # torchvision sweep: grouped convs (ResNeXt), pools after a concat
    # (GoogLeNet, DenseNet), ReLU6 (MobileNet V2), x * sigmoid(x)
    # (EfficientNet), a bilinear Resize (LR-ASPP, at 224). And those of
    # the fourth session that day: a depthwise conv after a channel shuffle
    # (ShuffleNet), channel concats kept blocked (SqueezeNet, GoogLeNet),
    # standalone batch norms on the own kernel (DenseNet). And the fifth's:
    # stems reading the NCHW image into the blocked layout (all), grouped
    # convolutions reordering from blocked neighbours (ResNeXt, RegNet).
    for name in ["mobilenet_v2", "efficientnet_b0", "resnet50", "vit_b_16",
                 "resnext50_32x4d", "googlenet", "densenet121",
                 "mobilenet_v3_large", "shufflenet_v2_x1_0", "squeezenet1_1",
                 "regnet_y_400mf"]:
        m = getattr(torchvision.models, name)(weights=None).eval()
        yield "torchvision-" + name, m, torch.randn(1, 3, 224, 224)
    class Out(torch.nn.Module):  # segmentation models return {"out": y}
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x)["out"]

    m = Out(torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None)).eval()
    yield "torchvision-lraspp_mobilenet_v3_large", m, torch.randn(1, 3, 224, 224)


for name, m, ex in models():
    # Random, non-trivial parameters (default inits zero some heads).
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.02)
        for b in m.buffers():
            if b.dtype.is_floating_point: b.uniform_(0.5, 1.5)
    if DYNAMO:
        kwargs = {"dynamo": True}
    else:
        kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
        kwargs["opset_version"] = 17
    torch.onnx.export(m, (ex,), f"{WORK}/{name}.onnx", input_names=["x"], output_names=["y"], **kwargs)
    with torch.no_grad():
        ref = m(ex).numpy()
    np.save(f"{WORK}/{name}-x.npy", ex.numpy())
    t = time.time()
    compiled = subprocess.run([f"{BIN}/kilnc", f"{WORK}/{name}.onnx", "-q", "-o", f"{WORK}/{name}.kiln"])
    if compiled.returncode != 0:
        print(f"{name}: kilnc failed", flush=True)
        worst = float("inf")
        continue
    seconds = time.time() - t
    subprocess.run([f"{BIN}/kiln-run", f"{WORK}/{name}.kiln", "--input", f"x={WORK}/{name}-x.npy", "--output-dir", f"{WORK}/{name}-out"], check=True, capture_output=True)
    got = np.load(f"{WORK}/{name}-out/y.npy")
    err = np.abs(got - ref).max(); scale = np.abs(ref).max()
    print(f"{name}: kilnc {seconds:.1f} s, output {got.shape}, max abs err {err:.3g} "
          f"(max |ref| {scale:.3g}, rel {err/scale:.3g})", flush=True)
    worst = max(worst, err / scale)
sys.exit(0 if worst <= 1e-4 else 1)
