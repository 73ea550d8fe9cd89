#!/usr/bin/env python3
"""Kiln vs PyTorch (eager, torch.compile) vs ONNX Runtime on CPU, one run.

Every engine runs the same architectures (the Kiln zoo's, re-declared here in
torch.nn with the same shapes) in fp32 with 2 threads, interleaved round by
round so that machine noise hits all of them alike. Prints one table of median
latencies and speed ratios (peer time / Kiln time: > 1 means Kiln is faster).

Usage (after `bench/setup.sh`, which creates build/bench-venv):
  build/bench-venv/bin/python bench/cpu_models.py [--rounds 5] [--iters 5]
      [--workloads bert-base:1,gpt2-small:1] [--skip compile,ort]
      [--backend cpu]

Kiln is driven through its tools (kilnc, then kiln-run --bench), exactly as a
user would run it; the artifact's load time is not part of the timing.
"""
import argparse
import gc
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bin")
THREADS = 2

WORKLOADS = [
    ("bert-base", 1), ("bert-base", 8), ("gpt2-small", 1),
    ("vit-b16", 1), ("resnet50", 1), ("resnet50", 8),
]


# --- The zoo's architectures in torch.nn (same shapes as frontends/zoo) -----

def torch_model(name, batch):
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self, d, h, causal):
            super().__init__()
            self.h, self.causal = h, causal
            self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))

        def forward(self, x):
            b, s, d = x.shape
            hd = d // self.h
            split = lambda t: t.view(b, s, self.h, hd).transpose(1, 2)
            q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
            scores = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(hd))
            if self.causal:
                mask = torch.full((s, s), float("-inf")).triu(1)
                scores = scores + mask
            ctx = scores.softmax(-1) @ v
            return self.out(ctx.transpose(1, 2).reshape(b, s, d))

    class Mlp(nn.Module):
        def __init__(self, d, hidden):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

        def forward(self, x):
            return self.fc2(nn.functional.gelu(self.fc1(x)))

    class Gpt(nn.Module):
        def __init__(self, layers=12, d=768, h=12, vocab=50257, positions=1024):
            super().__init__()
            self.wte = nn.Embedding(vocab, d)
            self.wpe = nn.Parameter(torch.zeros(positions, d))
            self.blocks = nn.ModuleList()
            for _ in range(layers):
                blk = nn.Module()
                blk.ln_1, blk.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
                blk.attn, blk.mlp = Attention(d, h, True), Mlp(d, 4 * d)
                self.blocks.append(blk)
            self.ln_f = nn.LayerNorm(d)

        def forward(self, tokens):
            s = tokens.shape[1]
            x = self.wte(tokens) + self.wpe[:s]
            for b in self.blocks:
                x = x + b.attn(b.ln_1(x))
                x = x + b.mlp(b.ln_2(x))
            return self.ln_f(x) @ self.wte.weight.t()

    class Bert(nn.Module):
        def __init__(self, layers=12, d=768, h=12, ffn=3072, vocab=30522,
                     positions=512):
            super().__init__()
            self.words = nn.Embedding(vocab, d)
            self.pos = nn.Parameter(torch.zeros(positions, d))
            self.token_type = nn.Parameter(torch.zeros(2, d))
            self.ln = nn.LayerNorm(d, eps=1e-12)
            self.layers = nn.ModuleList()
            for _ in range(layers):
                l = nn.Module()
                l.attn, l.n1 = Attention(d, h, False), nn.LayerNorm(d, eps=1e-12)
                l.fc1, l.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
                l.n2 = nn.LayerNorm(d, eps=1e-12)
                self.layers.append(l)

        def forward(self, ids):
            s = ids.shape[1]
            x = self.ln(self.words(ids) + self.pos[:s] + self.token_type[:1])
            for l in self.layers:
                x = l.n1(x + l.attn(x))
                x = l.n2(x + l.fc2(nn.functional.gelu(l.fc1(x))))
            return x

    class Vit(nn.Module):
        def __init__(self, layers=12, d=768, h=12, ffn=3072, image=224,
                     patch=16, classes=1000):
            super().__init__()
            self.patch = nn.Conv2d(3, d, patch, patch)
            n = (image // patch) ** 2
            self.cls = nn.Parameter(torch.zeros(1, 1, d))
            self.pos = nn.Parameter(torch.zeros(1, n + 1, d))
            self.blocks = nn.ModuleList()
            for _ in range(layers):
                blk = nn.Module()
                blk.n1, blk.n2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
                blk.attn, blk.mlp = Attention(d, h, False), Mlp(d, ffn)
                self.blocks.append(blk)
            self.norm, self.head = nn.LayerNorm(d, eps=1e-6), nn.Linear(d, classes)

        def forward(self, img):
            b = img.shape[0]
            x = self.patch(img).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls.expand(b, -1, -1), x], 1) + self.pos
            for blk in self.blocks:
                x = x + blk.attn(blk.n1(x))
                x = x + blk.mlp(blk.n2(x))
            return self.head(self.norm(x)[:, 0])

    def conv_bn(cin, cout, k, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                             nn.BatchNorm2d(cout))

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            out = width * 4
            self.c1, self.c2 = conv_bn(cin, width, 1, 1), conv_bn(width, width, 3, stride)
            self.c3 = conv_bn(width, out, 1, 1)
            self.down = conv_bn(cin, out, 1, stride) if stride != 1 or cin != out else None

        def forward(self, x):
            h = self.c3(self.c2(self.c1(x).relu()).relu())
            return (h + (self.down(x) if self.down is not None else x)).relu()

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv_bn(3, 64, 7, 2)
            self.pool = nn.MaxPool2d(3, 2, 1)
            blocks, cin = [], 64
            for stage, n in enumerate([3, 4, 6, 3]):
                width = 64 << stage
                for i in range(n):
                    blocks.append(Bottleneck(cin, width, 2 if i == 0 and stage > 0 else 1))
                    cin = width * 4
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(cin, 1000)

        def forward(self, img):
            x = self.blocks(self.pool(self.stem(img).relu()))
            return self.fc(x.mean((2, 3)))

    if name == "gpt2-small":
        return Gpt().eval(), torch.randint(0, 50257, (batch, 128))
    if name == "bert-base":
        return Bert().eval(), torch.randint(0, 30522, (batch, 128))
    if name == "vit-b16":
        return Vit().eval(), torch.randn(batch, 3, 224, 224)
    if name == "resnet50":
        return ResNet50().eval(), torch.randn(batch, 3, 224, 224)
    raise ValueError(name)


# --- Engines -----------------------------------------------------------------

def time_callable(fn, iters):
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


class KilnEngine:
    def __init__(self, name, batch, backend, workdir):
        self.art = os.path.join(workdir, f"{name}-b{batch}.kiln")
        subprocess.run([os.path.join(BIN, "kilnc"), "--model", name, "--batch",
                        str(batch), "--target", backend, "-q", "-o", self.art],
                       check=True)
        self.backend = backend

    def run(self, iters):
        env = dict(os.environ, KILN_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
        out = subprocess.run([os.path.join(BIN, "kiln-run"), self.art, "--backend",
                              self.backend, "--bench", str(iters)],
                             check=True, capture_output=True, text=True, env=env).stdout
        m = re.search(r"median ([0-9.]+) ms", out)
        return [float(m.group(1)) / 1e3]  # the median of this round

    def gemm_gflops(self, runs=9):
        """Achieved GFLOP/s of the matmul/conv kernels, from `kiln-run
        --profile`: each kernel's median over `runs` warm runs (one run is
        noisy on a shared machine)."""
        env = dict(os.environ, KILN_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))
        out = subprocess.run([os.path.join(BIN, "kiln-run"), self.art, "--backend",
                              self.backend, "--profile", "--profile-runs", str(runs)],
                             check=True, capture_output=True, text=True, env=env).stdout
        m = re.search(r"matmul/conv2d: .* ([0-9.]+) GFLOP/s", out)
        return float(m.group(1)) if m else float("nan")


def onednn_ceiling():
    """Raw oneDNN f32 matmul GFLOP/s per shape (bench/onednn_matmul.cpp)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    out = subprocess.run([os.path.join(BIN, "kiln-bench-onednn-matmul")], check=True,
                         capture_output=True, text=True, env=env).stdout
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"onednn-matmul (\S+) ([0-9.]+) GFLOP/s", out)}


class TorchEngine:
    def __init__(self, model, example, compiled):
        import torch
        self.torch = torch
        self.model, self.example = model, example
        self.fn = torch.compile(model) if compiled else model
        with torch.inference_mode():
            self.fn(example)  # warm-up (and compilation)

    def run(self, iters):
        with self.torch.inference_mode():
            return time_callable(lambda: self.fn(self.example), iters)


class OrtEngine:
    def __init__(self, model, example, workdir, tag):
        import onnxruntime as ort
        import torch
        path = os.path.join(workdir, f"{tag}.onnx")
        kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
        torch.onnx.export(model, (example,), path, input_names=["x"],
                          opset_version=17, **kwargs)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = THREADS
        opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self.feed = {"x": example.numpy()}
        self.sess.run(None, self.feed)

    def run(self, iters):
        return time_callable(lambda: self.sess.run(None, self.feed), iters)


def parse_workloads(text, ap):
    known = sorted({n for n, _ in WORKLOADS})
    workloads = []
    for item in filter(None, text.split(",")):
        name, _, batch = item.partition(":")
        if name not in known:
            ap.error(f"unknown workload '{name}' (known: {', '.join(known)})")
        if batch and not batch.isdigit() or batch == "0":
            ap.error(f"batch in '{item}' must be a positive integer")
        workloads.append((name, int(batch) if batch else 1))
    return workloads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--workloads", default="",
                    help="comma list of NAME[:BATCH] (batch 1 when left out) from: "
                         + ", ".join(sorted({n for n, _ in WORKLOADS})))
    ap.add_argument("--skip", default="", help="comma list of: eager,compile,ort")
    ap.add_argument("--backend", default="cpu", help="Kiln backend (cpu or reference)")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    skip = set(filter(None, args.skip.split(",")))
    workloads = WORKLOADS
    if args.workloads:
        workloads = parse_workloads(args.workloads, ap)

    # The raw oneDNN ceiling is measured before any peer is loaded and again
    # at the end, and the better figure per shape kept: measured while a
    # peer's idle thread pool is alive, it once came out at half speed.
    first_ceiling = onednn_ceiling()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name, batch in workloads:
            tag = f"{name}-b{batch}"
            print(f"[bench] {tag}: setting up", file=sys.stderr, flush=True)
            model, example = torch_model(name, batch)
            engines = {"kiln": KilnEngine(name, batch, args.backend, workdir)}
            if "eager" not in skip:
                engines["torch-eager"] = TorchEngine(model, example, False)
            if "compile" not in skip:
                try:
                    engines["torch-compile"] = TorchEngine(model, example, True)
                except Exception as e:  # report, do not hide
                    print(f"[bench] {tag}: torch.compile failed: {e}", file=sys.stderr)
            if "ort" not in skip:
                try:
                    engines["onnxruntime"] = OrtEngine(model, example, workdir, tag)
                except Exception as e:
                    print(f"[bench] {tag}: ONNX Runtime failed: {e}", file=sys.stderr)
            samples = {k: [] for k in engines}
            for r in range(args.rounds):  # interleaved rounds
                for k, eng in engines.items():
                    samples[k] += eng.run(args.iters)
                print(f"[bench] {tag}: round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
            med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
            rows.append((tag, med, engines["kiln"].gemm_gflops()))
            del engines, model, example
            gc.collect()

    peers = ["torch-eager", "torch-compile", "onnxruntime"]
    print(f"\nKiln ({args.backend} backend) vs peers, fp32, {THREADS} threads; "
          "median ms; ratio = peer / kiln (> 1: Kiln faster)\n")
    print(f"{'workload':<16}{'kiln':>10}" + "".join(f"{p:>16}{'ratio':>8}" for p in peers))
    for tag, med, _ in rows:
        line = f"{tag:<16}{med['kiln']:>10.2f}"
        for p in peers:
            if p in med:
                line += f"{med[p]:>16.2f}{med[p] / med['kiln']:>8.2f}"
            else:
                line += f"{'-':>16}{'-':>8}"
        print(line)

    ceiling = onednn_ceiling()
    ceiling = {k: max(v, first_ceiling.get(k, 0.0)) for k, v in ceiling.items()}
    best = max(ceiling.values())
    print("\nRaw oneDNN f32 matmul, same run: " +
          ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in ceiling.items()))
    print(f"{'workload':<16}{'GEMM GFLOP/s':>14}{'of raw oneDNN':>16}")
    for tag, _, gflops in rows:
        note = "  (Winograd 3x3 convolutions counted at direct FLOPs)" \
            if tag.startswith("resnet") else ""
        print(f"{tag:<16}{gflops:>14.1f}{gflops / best:>15.0%}{note}")


if __name__ == "__main__":
    main()
