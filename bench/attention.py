#!/usr/bin/env python3
"""Attention on CPU: Kiln fused vs Kiln unfused vs PyTorch naive and SDPA, one run.

One attention layer, B=1, H=12, D=64, fp32, 2 threads, for each sequence
length S and with and without a causal mask, four ways:

  kiln fused     kilnc (attention fusion on, the default) + kiln-run; the
                 artifact must run `attention` on "cpu:flash_attention"
  kiln unfused   kilnc --no-fuse-attention: matmul -> mul -> (mask) ->
                 softmax -> matmul, the S x S scores in the arena
  torch naive    q @ k^T * scale (+ additive -inf mask) -> softmax -> @ v,
                 as bench/cpu_models.py's torch models write it; the causal
                 mask is built once outside the timing (a model caches it)
  torch sdpa     torch.nn.functional.scaled_dot_product_attention
                 (is_causal=...), PyTorch's own fused CPU kernel

Kiln gets the unfused graph as a .mlir file (inputs q, k, v); the causal
mask is built in the graph from two index constants (kiln.compare, then
kiln.where with -inf), never as an S x S constant. Timings: interleaved round
by round as in cpu_models.py, median over rounds; Kiln one `kiln-run --bench
ITERS` per round (median of that round; a warm-up run first, load not timed),
PyTorch ITERS calls per round in a worker process (one warm-up at set-up).
Ratios are other / fused: > 1 means fused is faster.

Peak extra memory, each variant in a fresh process, one run at full size:
  Kiln:    `kiln-run ART --memory`: peak RSS (VmHWM, reset after loading)
           minus the RSS before loading minus the inputs' bytes (the model
           has no weights). Counts the arena (zero-filled at load, so
           resident before the first run), the output, kernel scratch,
           oneDNN primitives and code paged in, and thread stacks: the
           cold-start costs (~1-2 MiB) are included.
  PyTorch: a child that imports torch, runs the variant once at S=16 (pages
           in code, starts threads), allocates q, k, v (and the mask), takes
           RSS as the baseline (after malloc_trim), resets the peak, runs
           once at full size, and reports VmHWM minus the baseline: the
           output, intermediates and scratch.
The peak is VmHWM, not getrusage's ru_maxrss: a child started by fork+exec
(or vfork) from this big Python process inherits the parent's ru_maxrss.

Before each variant at each S the free memory (MemAvailable, and the cgroup
limit) is checked against an estimate (Kiln: the planned arena; naive: two
score tensors of 12*S*S*4 bytes) and the variant is skipped with the reason
when it would not fit; PyTorch runs in child processes, so an out-of-memory
kill costs that variant, not the script. Missing pieces (a kilnc without
--no-fuse-attention, a kiln-run without --memory) show as n/a with the
reason. Checks: a fused artifact must have an `attention` kernel, running
on "cpu:flash_attention" (kiln-run --profile, at the smallest S and for the
models), an unfused one none; at the smallest S both Kiln outputs must match
PyTorch SDPA's on the same inputs. Exit status 1 when a check failed or a
Kiln run failed; skips are not failures.

Also reported: BERT-base and GPT-2 small (zoo, batch 1, seq 128) end to end,
Kiln with attention fusion on vs off.

Usage (after `bench/setup.sh`, which creates build/bench-venv):
  build/bench-venv/bin/python bench/attention.py [--seq 512,1024,2048,4096,8192]
      [--rounds 5] [--iters 3] [--skip-memory] [--skip-models] [--quick]
      [--json out.json] [--bin build/bin]
"""
import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREADS = 2
B, H, D = 1, 12, 64
SCALE = 1.0 / math.sqrt(D)
SEQS = [512, 1024, 2048, 4096, 8192]
MODELS = ["bert-base", "gpt2-small"]
MODEL_SEQ = 128
VARIANTS = ["kiln-fused", "kiln-unfused", "torch-naive", "torch-sdpa"]
FLASH_IMPL = "cpu:flash_attention"
MiB = 1 << 20
SLACK = 512 * MiB  # headroom kept free beyond each estimate
TOLERANCE = 2e-4   # max |kiln - torch sdpa| accepted in the output check


def log(msg):
    print(f"[attention] {msg}", file=sys.stderr, flush=True)


def kiln_env():
    return dict(os.environ, KILN_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))


def torch_env():
    return dict(os.environ, OMP_NUM_THREADS=str(THREADS))


# --- Memory on this machine --------------------------------------------------

def available_bytes():
    """MemAvailable, lowered to what the cgroup (v2 or v1) still allows."""
    avail = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    limits = [("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
              ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
               "/sys/fs/cgroup/memory/memory.usage_in_bytes")]
    for lim, cur in limits:
        try:
            with open(lim) as f:
                text = f.read().strip()
            if text == "max" or int(text) > 1 << 60:
                continue
            with open(cur) as f:
                room = int(text) - int(f.read().strip())
            avail = room if avail is None else min(avail, room)
        except (OSError, ValueError):
            continue
    return avail if avail is not None else float("inf")


def gib(n):
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / MiB:.0f} MiB"


def fits(need):
    """None when `need` bytes (plus SLACK) are free, else the reason."""
    avail = available_bytes()
    if need + SLACK <= avail:
        return None
    return f"skipped: needs ~{gib(need)} + {gib(SLACK)} headroom, {gib(avail)} available"


def scores_bytes(s):
    return B * H * s * s * 4


def qkv_bytes(s):
    return B * H * s * D * 4


def torch_need(variant, s):
    # naive: two S x S score tensors alive at once (matmul result and the
    # scaled/masked/softmaxed copy); sdpa: blocks only.
    base = 5 * qkv_bytes(s) + 64 * MiB
    return base + (2 * scores_bytes(s) + s * s * 4 if variant == "torch-naive" else 0)


# --- The Kiln model ------------------------------------------------------------

def attention_mlir(s, causal):
    """Unfused attention in kiln ops; inputs q, k, v; output out."""
    qt = f"tensor<{B}x{H}x{s}x{D}xf32>"
    st = f"tensor<{B}x{H}x{s}x{s}xf32>"
    lines = [
        f"// Unfused attention, B={B} H={H} S={s} D={D}, "
        f"{'causal' if causal else 'no mask'} (bench/attention.py)",
        f"func.func @attention_s{s}{'_causal' if causal else ''}("
        f"%q: {qt} {{kiln.name = \"q\"}}, %k: {qt} {{kiln.name = \"k\"}}, "
        f"%v: {qt} {{kiln.name = \"v\"}}) -> ({qt} {{kiln.name = \"out\"}}) {{",
        f"  %scale = kiln.constant dense<{SCALE!r}> : tensor<f32>",
        f"  %s0 = kiln.matmul %q, %k {{transpose_b = true}} : ({qt}, {qt}) -> {st}",
        f"  %s1 = kiln.mul %s0, %scale : ({st}, tensor<f32>) -> {st}",
    ]
    scores = "%s1"
    if causal:
        rows = ", ".join(f"[{i}]" for i in range(s))
        cols = ", ".join(str(i) for i in range(s))
        lines += [
            f"  %rows = kiln.constant dense<[{rows}]> : tensor<{s}x1xi64>",
            f"  %cols = kiln.constant dense<[[{cols}]]> : tensor<1x{s}xi64>",
            f"  %keep = kiln.compare %cols, %rows {{predicate = \"le\"}} : "
            f"(tensor<1x{s}xi64>, tensor<{s}x1xi64>) -> tensor<{s}x{s}xi1>",
            "  %ninf = kiln.constant dense<0xFF800000> : tensor<f32>",
            f"  %s2 = kiln.where %keep, %s1, %ninf : "
            f"(tensor<{s}x{s}xi1>, {st}, tensor<f32>) -> {st}",
        ]
        scores = "%s2"
    lines += [
        f"  %p = kiln.softmax {scores} {{axis = -1 : i64}} : {st}",
        f"  %o = kiln.matmul %p, %v : ({st}, {qt}) -> {qt}",
        f"  return %o : {qt}",
        "}",
    ]
    return "\n".join(lines) + "\n"


class Kiln:
    """kilnc and kiln-run from one build, and what that build supports."""

    def __init__(self, bindir, workdir):
        self.kilnc = os.path.join(bindir, "kilnc")
        self.kiln_run = os.path.join(bindir, "kiln-run")
        for tool in (self.kilnc, self.kiln_run):
            if not os.access(tool, os.X_OK):
                sys.exit(f"attention.py: {tool} not found; build it (ninja kilnc "
                         "kiln-run) or pass --bin")
        self.workdir = workdir
        khelp = self._out([self.kilnc, "--help"])
        rhelp = self._out([self.kiln_run, "--help"])
        self.can_unfuse = "--no-fuse-attention" in khelp
        self.has_remarks = "--remarks" in khelp
        self.has_memory = "--memory" in rhelp

    @staticmethod
    def _out(cmd):
        return subprocess.run(cmd, capture_output=True, text=True).stdout

    def compile(self, tag, source, fused):
        """Compiles `source` (a .mlir path, or ["--model", ...]) and returns
        an Artifact. fused=True is the default pipeline (fusion on),
        fused=False adds --no-fuse-attention. Never raises; problems are in
        Artifact.error (a check that failed) or Artifact.na (a missing
        piece)."""
        art = Artifact(tag, os.path.join(self.workdir, tag + ".kiln"))
        dump = os.path.join(self.workdir, tag + ".ir")
        cmd = [self.kilnc] + (source if isinstance(source, list) else [source])
        cmd += ["-o", art.path, "--dump-ir-dir", dump]
        if not fused and self.can_unfuse:
            cmd.append("--no-fuse-attention")
        if self.has_remarks:
            cmd.append("--remarks")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            art.error = f"kilnc failed: {last_line(r.stderr or r.stdout)}"
            return art
        try:
            with open(os.path.join(dump, "program.txt")) as f:
                plan = f.read()
        except OSError as e:
            art.error = f"no Program dump from kilnc: {e}"
            return art
        m = re.search(r"^arena (\d+) bytes", plan, re.M)
        art.arena = int(m.group(1)) if m else None
        art.attention_kernels = len(re.findall(r"^\s+%[0-9, %]+ = attention\(", plan, re.M))
        remarks = [l.strip() for l in r.stderr.splitlines() if "kiln-fuse-attention" in l]
        if fused and not self.can_unfuse:
            if art.attention_kernels:
                art.error = ("kilnc fused attention but has no --no-fuse-attention "
                             "to turn it off")
            else:
                art.na = "n/a: no attention fusion in this kilnc (no --no-fuse-attention)"
        elif fused and art.attention_kernels == 0:
            art.error = ("fused artifact has no attention kernel (kiln-fuse-attention "
                         "did not fire)" + (": " + "; ".join(remarks[:3]) if remarks else ""))
        elif not fused and art.attention_kernels:
            art.error = (f"unfused artifact has {art.attention_kernels} attention "
                         "kernel(s) despite --no-fuse-attention")
        return art

    def bench(self, art, iters):
        r = subprocess.run([self.kiln_run, art.path, "--bench", str(iters)],
                           capture_output=True, text=True, env=kiln_env())
        if r.returncode != 0:
            raise RuntimeError(f"kiln-run failed ({describe_rc(r.returncode)}): "
                               f"{last_line(r.stderr)}")
        m = re.search(r"median ([0-9.]+) ms", r.stdout)
        if not m:
            raise RuntimeError(f"no median in kiln-run output: {last_line(r.stdout)}")
        return float(m.group(1))

    def flash_impl(self, art):
        """None when every attention kernel runs FLASH_IMPL (from --profile),
        else what ran instead."""
        r = subprocess.run([self.kiln_run, art.path, "--profile"],
                           capture_output=True, text=True, env=kiln_env())
        if r.returncode != 0:
            return f"kiln-run --profile failed: {last_line(r.stderr)}"
        rows = [l.split() for l in r.stdout.splitlines()
                if l.split() and l.split()[0] == "attention"]
        if not rows:
            return "no attention kernel in the profile"
        bad = [row for row in rows if FLASH_IMPL not in row]
        if bad:
            return f"attention is not on {FLASH_IMPL}: profile row '{' '.join(bad[0])}'"
        return None

    def memory(self, art):
        """Peak extra MiB from kiln-run --memory."""
        r = subprocess.run([self.kiln_run, art.path, "--memory"],
                           capture_output=True, text=True, env=kiln_env())
        if r.returncode != 0:
            raise RuntimeError(f"kiln-run --memory failed ({describe_rc(r.returncode)}): "
                               f"{last_line(r.stderr)}")
        m = re.search(r"memory: start (-?\d+) KiB, loaded (-?\d+) KiB, peak (-?\d+) KiB, "
                      r"peak extra (-?\d+) KiB \(arena (\d+) KiB", r.stdout)
        if not m:
            raise RuntimeError(f"no memory line in kiln-run output: {last_line(r.stdout)}")
        return int(m.group(4)) / 1024

    def run_outputs(self, art, inputs, outdir):
        cmd = [self.kiln_run, art.path, "--output-dir", outdir]
        for name, path in inputs.items():
            cmd += ["--input", f"{name}={path}"]
        r = subprocess.run(cmd, capture_output=True, text=True, env=kiln_env())
        if r.returncode != 0:
            raise RuntimeError(f"kiln-run failed: {last_line(r.stderr)}")
        return os.path.join(outdir, "out.npy")


class Artifact:
    def __init__(self, tag, path):
        self.tag, self.path = tag, path
        self.arena = None
        self.attention_kernels = 0
        self.error = None  # a failed check or a failed compile: a bug
        self.na = None     # a piece missing from this build: not a bug

    @property
    def usable(self):
        return self.error is None and self.na is None


def last_line(text):
    lines = [l for l in (text or "").strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else "(no output)"


def describe_rc(rc):
    if rc == -9 or rc == 137:
        return "killed by SIGKILL, out of memory?"
    return f"exit status {rc}" if rc >= 0 else f"signal {-rc}"


# --- PyTorch, in child processes ---------------------------------------------

def torch_setup(variant, s, causal):
    """(fn, args) for one variant; q, k, v seeded normal."""
    import torch
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, s, D) for _ in range(3))
    if variant == "torch-sdpa":
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return (lambda: sdpa(q, k, v, is_causal=causal)), (q, k, v)
    mask = torch.full((s, s), float("-inf")).triu(1) if causal else None

    def naive():
        scores = q @ k.transpose(-1, -2) * SCALE
        if mask is not None:
            scores = scores + mask
        return scores.softmax(-1) @ v
    return naive, (q, k, v)


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def worker_main(variant, s, causal):
    """Timing worker: set-up and one warm-up, then answers {"iters": n}
    lines with {"times": [seconds...]}."""
    import torch
    torch.set_num_threads(THREADS)
    with torch.inference_mode():
        fn, _ = torch_setup(variant, s, causal)
        fn()
        print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
        for line in sys.stdin:
            n = json.loads(line)["iters"]
            times = []
            for _ in range(n):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            print(json.dumps({"times": times}), flush=True)


def memory_probe_main(variant, s, causal):
    """One JSON line: RSS baseline and peak (KiB) around one full-size run."""
    import torch
    torch.set_num_threads(THREADS)
    with torch.inference_mode():
        warm, _ = torch_setup(variant, 16, causal)
        warm()
        fn, _ = torch_setup(variant, s, causal)
        try:  # hand back free heap pages, as kiln-run --memory does
            import ctypes
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        base = status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        out = fn()
        peak = status_kib("VmHWM")
        del out
    print(json.dumps({"base_kib": base, "peak_kib": peak, "extra_kib": peak - base}))


def reference_main(s, causal, outdir):
    """Writes q, k, v and SDPA's output as .npy files for the output check."""
    import numpy as np
    import torch
    torch.set_num_threads(THREADS)
    fn, (q, k, v) = torch_setup("torch-sdpa", s, causal)
    with torch.inference_mode():
        out = fn()
    for name, t in (("q", q), ("k", k), ("v", v), ("ref", out)):
        np.save(os.path.join(outdir, name + ".npy"), t.numpy())


class TorchWorker:
    def __init__(self, variant, s, causal):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", variant, str(s),
             str(int(causal))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, env=torch_env())
        self.version = self._read()["torch"]

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            raise RuntimeError(f"PyTorch worker died ({describe_rc(rc)})")
        return json.loads(line)

    def run(self, iters):
        try:
            self.proc.stdin.write(json.dumps({"iters": iters}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(f"PyTorch worker died ({describe_rc(self.proc.wait())})")
        return self._read()["times"]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def child(args, env=None):
    r = subprocess.run([sys.executable, os.path.abspath(__file__)] + args,
                       capture_output=True, text=True, env=env or torch_env())
    if r.returncode != 0:
        raise RuntimeError(f"child failed ({describe_rc(r.returncode)}): {last_line(r.stderr)}")
    return r.stdout


# --- The benchmark ---------------------------------------------------------------

class Cell:
    """One variant in one row: samples, memory, or why there is none."""

    def __init__(self):
        self.samples, self.mem, self.note, self.mem_note = [], None, None, None

    @property
    def ms(self):
        return statistics.median(self.samples) if self.samples else None


def attention_row(kiln, s, causal, args, failures):
    tag = f"s{s}{'-causal' if causal else ''}"
    cells = {v: Cell() for v in VARIANTS}
    row = {"kind": "attention", "seq": s, "causal": causal, "cells": cells}
    mlir = os.path.join(kiln.workdir, f"attention-{tag}.mlir")
    with open(mlir, "w") as f:
        f.write(attention_mlir(s, causal))

    log(f"S={s} causal={causal}: compiling")
    arts = compile_both(kiln, f"{{}}-{tag}", mlir, cells, failures, f"S={s} causal={causal}")
    fused = arts["kiln-fused"]
    if fused.usable and s == args.seqs[0]:
        problem = kiln.flash_impl(fused)
        if problem:
            cells["kiln-fused"].note = "ERROR: " + problem
            failures.append(f"S={s} causal={causal} kiln-fused: {problem}")
    if s == args.seqs[0]:
        check_outputs(kiln, s, causal, arts, cells, row, failures)

    def need(v):
        if v.startswith("kiln"):
            return (arts[v].arena or 0) + 4 * qkv_bytes(s) + 64 * MiB
        return torch_need(v, s)

    # Set-up: artifacts are ready; PyTorch workers warm up here.
    workers = {}
    for v in ("torch-naive", "torch-sdpa"):
        reason = fits(need(v))
        if reason:
            cells[v].note = reason
            continue
        try:
            workers[v] = TorchWorker(v, s, causal)
            row["torch"] = workers[v].version
        except Exception as e:
            cells[v].note = f"failed: {e}"
    active = [v for v in VARIANTS if cells[v].note is None]

    try:
        for r in range(args.rounds):
            for v in active:
                cell = cells[v]
                if cell.note is not None:
                    continue  # failed or skipped in an earlier round
                reason = fits(need(v))
                if reason:
                    cell.note = reason + (f" (from round {r + 1})" if r else "")
                    continue
                try:
                    if v in workers:
                        cell.samples += [t * 1e3 for t in workers[v].run(args.iters)]
                    else:
                        cell.samples.append(kiln.bench(arts[v], args.iters))
                except Exception as e:
                    cell.note = f"failed: {e}"
                    if v.startswith("kiln"):
                        failures.append(f"S={s} causal={causal} {v}: {e}")
            log(f"S={s} causal={causal}: round {r + 1}/{args.rounds}")
    finally:
        for w in workers.values():
            w.close()
    for v in VARIANTS:  # a variant skipped mid-way keeps its earlier samples
        if cells[v].samples and cells[v].note and not cells[v].note.startswith("ERROR"):
            log(f"S={s} causal={causal} {v}: {cells[v].note}; "
                f"median of {len(cells[v].samples)} sample(s) kept")

    if not args.skip_memory:
        log(f"S={s} causal={causal}: peak memory")
        for v in VARIANTS:
            cell = cells[v]
            if v.startswith("kiln") and not arts[v].usable or \
                    (cell.note or "").startswith("ERROR"):
                continue
            if v.startswith("kiln") and not kiln.has_memory:
                cell.mem_note = "n/a: this kiln-run has no --memory"
                continue
            reason = fits(need(v))
            if reason:
                cell.mem_note = reason
                continue
            try:
                if v.startswith("kiln"):
                    cell.mem = kiln.memory(arts[v])
                else:
                    out = child(["--memory-probe", v, str(s), str(int(causal))])
                    cell.mem = json.loads(out.strip().splitlines()[-1])["extra_kib"] / 1024
            except Exception as e:
                cell.mem_note = f"failed: {e}"
    return row


def check_outputs(kiln, s, causal, arts, cells, row, failures):
    """Kiln's outputs on PyTorch SDPA's inputs must match SDPA's output."""
    usable = {v: a for v, a in arts.items()
              if a.usable and not fits((a.arena or 0) + 8 * qkv_bytes(s) + 64 * MiB)}
    if not usable:
        return
    import numpy as np
    outdir = tempfile.mkdtemp(dir=kiln.workdir)
    try:
        child(["--reference", str(s), str(int(causal)), outdir])
    except Exception as e:
        log(f"S={s} causal={causal}: output check skipped: {e}")
        return
    ref = np.load(os.path.join(outdir, "ref.npy"))
    inputs = {n: os.path.join(outdir, n + ".npy") for n in ("q", "k", "v")}
    for v, art in usable.items():
        try:
            out = np.load(kiln.run_outputs(art, inputs, os.path.join(outdir, v)))
            err = float(np.max(np.abs(out.astype(np.float64) - ref)))
        except Exception as e:
            err, problem = None, f"output check failed: {e}"
        else:
            problem = None if err <= TOLERANCE else \
                f"output differs from torch SDPA: max |diff| {err:.2e} > {TOLERANCE:.0e}"
        row.setdefault("max_abs_err", {})[v] = err
        log(f"S={s} causal={causal} {v}: max |out - torch sdpa| = "
            f"{'n/a' if err is None else f'{err:.2e}'}")
        if problem:
            cells[v].note = "ERROR: " + problem
            failures.append(f"S={s} causal={causal} {v}: {problem}")


def compile_both(kiln, tag_format, src, cells, failures, what):
    """Compiles `src` with fusion on and off (artifact tags from tag_format
    with "fused" / "unfused"); errors and n/a reasons go to the cells."""
    arts = {"kiln-fused": kiln.compile(tag_format.format("fused"), src, True),
            "kiln-unfused": kiln.compile(tag_format.format("unfused"), src, False)}
    for v, art in arts.items():
        if art.error:
            cells[v].note = "ERROR: " + art.error
            failures.append(f"{what} {v}: {art.error}")
        elif art.na:
            cells[v].note = art.na
    return arts


def model_row(kiln, name, args, failures):
    cells = {v: Cell() for v in ("kiln-fused", "kiln-unfused")}
    row = {"kind": "model", "model": name, "batch": 1, "seq": MODEL_SEQ, "cells": cells}
    log(f"{name}: compiling")
    src = ["--model", name, "--batch", "1", "--seq", str(MODEL_SEQ)]
    arts = compile_both(kiln, f"{name}-{{}}", src, cells, failures, name)
    row["attention_kernels"] = arts["kiln-fused"].attention_kernels
    if arts["kiln-fused"].usable:
        log(f"{name}: {row['attention_kernels']} attention kernel(s) in the fused artifact")
        problem = kiln.flash_impl(arts["kiln-fused"])
        if problem:
            cells["kiln-fused"].note = "ERROR: " + problem
            failures.append(f"{name} kiln-fused: {problem}")
    active = [v for v in cells if cells[v].note is None]
    for r in range(args.rounds):
        for v in active:
            if cells[v].note is not None:
                continue
            try:
                cells[v].samples.append(kiln.bench(arts[v], args.iters))
            except Exception as e:
                cells[v].note = f"failed: {e}"
                failures.append(f"{name} {v}: {e}")
        log(f"{name}: round {r + 1}/{args.rounds}")
    if not args.skip_memory and kiln.has_memory:
        for v in active:
            if cells[v].note is None:
                try:
                    cells[v].mem = kiln.memory(arts[v])
                except Exception as e:
                    cells[v].mem_note = f"failed: {e}"
    return row


# --- Output --------------------------------------------------------------------

def fmt(x, spec=".2f"):
    return "n/a" if x is None else format(x, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


def print_table(rows, torch_version):
    cols = ["S", "causal", "kiln fused ms", "kiln unfused ms", "torch naive ms",
            "torch sdpa ms", "unfused/fused", "naive/fused", "sdpa/fused",
            "fused MiB", "unfused MiB", "naive MiB", "sdpa MiB", "mem unfused/fused"]
    print(f"\nAttention B={B} H={H} D={D}, fp32, {THREADS} threads; median ms; "
          "ratio = other / kiln fused (> 1: fused faster); MiB = peak extra "
          f"memory, one run in a fresh process; PyTorch {torch_version or 'n/a'}\n")
    lines = [cols]
    notes = []
    for row in rows:
        c = row["cells"]
        if row["kind"] == "attention":
            label, causal = str(row["seq"]), "yes" if row["causal"] else "no"
            where = f"S={row['seq']} causal={causal}"
        else:
            label, causal = f"{row['model']} (b1, s{row['seq']})", "-"
            where = row["model"]
        get = lambda v: c[v].ms if v in c else None
        mem = lambda v: c[v].mem if v in c else None
        f, u, n, sd = (get(v) for v in VARIANTS)
        fm, um, nm, sm = (mem(v) for v in VARIANTS)
        line = [label, causal, fmt(f), fmt(u), fmt(n) if "torch-naive" in c else "-",
                fmt(sd) if "torch-sdpa" in c else "-", fmt(ratio(u, f)),
                fmt(ratio(n, f)) if "torch-naive" in c else "-",
                fmt(ratio(sd, f)) if "torch-sdpa" in c else "-",
                fmt(fm, ".1f"), fmt(um, ".1f"),
                fmt(nm, ".1f") if "torch-naive" in c else "-",
                fmt(sm, ".1f") if "torch-sdpa" in c else "-",
                fmt(ratio(um, fm), ".1f")]
        lines.append(line)
        for v in VARIANTS:
            if v in c:
                if c[v].note:
                    notes.append(f"{where} {v}: {c[v].note}")
                if c[v].mem_note and c[v].mem_note != c[v].note:
                    notes.append(f"{where} {v} memory: {c[v].mem_note}")
    widths = [max(len(l[i]) for l in lines) for i in range(len(cols))]
    for i, l in enumerate(lines):
        cells = [l[j].ljust(widths[j]) if j < 2 else l[j].rjust(widths[j])
                 for j in range(len(cols))]
        print("| " + " | ".join(cells) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 1) + ":" if j >= 2 else "-" * (w + 2)
                                 for j, w in enumerate(widths)) + "|")
    if notes:
        print("\nNotes:")
        for n in dict.fromkeys(notes):
            print(f"- {n}")


def print_targets(rows):
    """The issue's targets, at S=4096, and memory growth in S."""
    att = [r for r in rows if r["kind"] == "attention"]
    print("\nTargets (issue): at S=4096 fused >= 2x faster than unfused and than "
          "torch naive, >= torch sdpa's speed, peak extra <= 1/10 of unfused; "
          "fused memory linear in S")
    for causal in (False, True):
        mine = sorted((r for r in att if r["causal"] == causal), key=lambda r: r["seq"])
        at = [r for r in mine if r["seq"] == 4096]
        checks = []
        if at:
            c = at[0]["cells"]
            f = c["kiln-fused"].ms
            for v, need, text in (("kiln-unfused", 2.0, "unfused/fused >= 2"),
                                  ("torch-naive", 2.0, "naive/fused >= 2"),
                                  ("torch-sdpa", 1.0, "sdpa/fused >= 1")):
                rt = ratio(c[v].ms, f)
                checks.append(f"{text}: {verdict(rt, rt is not None and rt >= need)}")
            mr = ratio(c["kiln-unfused"].mem, c["kiln-fused"].mem)
            checks.append(f"unfused/fused memory >= 10: {verdict(mr, mr is not None and mr >= 10)}")
        else:
            checks.append("S=4096 not measured")
        pts = [(r["seq"], r["cells"]["kiln-fused"].mem) for r in mine
               if r["cells"]["kiln-fused"].mem]
        if len(pts) >= 2:
            (s0, m0), (s1, m1) = pts[-2], pts[-1]
            e = math.log(m1 / m0) / math.log(s1 / s0) if m0 > 0 and m1 > 0 else None
            ok = e is not None and e <= 1.2
            checks.append(f"fused memory growth exponent S={s0}->{s1} "
                          f"(1 linear, 2 quadratic) <= 1.2: {verdict(e, ok)}")
        print(f"- {'causal' if causal else 'no mask'}: " + "; ".join(checks))


def verdict(value, ok):
    return "n/a" if value is None else f"{value:.2f} {'PASS' if ok else 'FAIL'}"


def to_json(rows, args, kiln, torch_version, failures):
    out = []
    for row in rows:
        r = {k: v for k, v in row.items() if k != "cells"}
        r["variants"] = {v: {"ms": c.ms, "samples_ms": c.samples, "peak_extra_mib": c.mem,
                             "note": c.note, "memory_note": c.mem_note}
                         for v, c in row["cells"].items()}
        out.append(r)
    return {"config": {"B": B, "H": H, "D": D, "threads": THREADS, "dtype": "f32",
                       "seqs": args.seqs, "rounds": args.rounds, "iters": args.iters,
                       "torch": torch_version, "bin": args.bin,
                       "kilnc_has_no_fuse_attention": kiln.can_unfuse,
                       "kiln_run_has_memory": kiln.has_memory,
                       "machine": platform.platform(), "cpu": cpu_name(),
                       "date": time.strftime("%Y-%m-%d %H:%M:%S")},
            "rows": out, "failures": failures}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("--worker", "--memory-probe", "--reference"):
        mode, rest = sys.argv[1], sys.argv[2:]
        if mode == "--worker":
            return worker_main(rest[0], int(rest[1]), bool(int(rest[2])))
        if mode == "--memory-probe":
            return memory_probe_main(rest[0], int(rest[1]), bool(int(rest[2])))
        return reference_main(int(rest[0]), bool(int(rest[1])), rest[2])

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq", default=",".join(map(str, SEQS)),
                    help="comma list of sequence lengths (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="interleaved rounds; medians over them (default 5)")
    ap.add_argument("--iters", type=int, default=3,
                    help="timed runs per variant per round (default 3)")
    ap.add_argument("--skip-memory", action="store_true", help="no peak-memory runs")
    ap.add_argument("--skip-models", action="store_true",
                    help="no BERT-base / GPT-2 small rows")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: S <= 1024, at most 2 rounds of 2 runs")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                    help="folder of kilnc and kiln-run (default %(default)s)")
    args = ap.parse_args()
    try:
        args.seqs = sorted({int(x) for x in args.seq.split(",") if x.strip()})
    except ValueError:
        ap.error(f"--seq expects a comma list of integers, got '{args.seq}'")
    if not args.seqs or min(args.seqs) <= 0:
        ap.error("--seq needs positive lengths")
    if args.rounds < 1 or args.iters < 1:
        ap.error("--rounds and --iters must be >= 1")
    if args.quick:
        args.seqs = [s for s in args.seqs if s <= 1024] or [512]
        args.rounds, args.iters = min(args.rounds, 2), min(args.iters, 2)
    if not sys.platform.startswith("linux"):
        sys.exit("attention.py: Linux only (memory is read from /proc)")

    failures, rows = [], []
    # Artifacts (BERT-base and GPT-2 small: ~0.5 GiB each) go under build/,
    # not /tmp, which may be a tmpfs taking RAM from the large-S runs.
    scratch = os.path.join(ROOT, "build")
    with tempfile.TemporaryDirectory(prefix="attention-bench-",
                                     dir=scratch if os.path.isdir(scratch) else None) as workdir:
        kiln = Kiln(os.path.abspath(args.bin), workdir)
        if not kiln.can_unfuse:
            log("kilnc has no --no-fuse-attention: Kiln fused is n/a, the default "
                "pipeline is the unfused path")
        if not kiln.has_memory:
            log("kiln-run has no --memory: Kiln memory is n/a")
        started = time.time()
        for s in args.seqs:
            for causal in (False, True):
                rows.append(attention_row(kiln, s, causal, args, failures))
        if not args.skip_models:
            for name in MODELS:
                rows.append(model_row(kiln, name, args, failures))
        log(f"done in {time.time() - started:.0f} s")
        torch_version = next((r["torch"] for r in rows if "torch" in r), None)
        print_table(rows, torch_version)
        print_targets(rows)
        if failures:
            print("\nFAILED checks:")
            for f in failures:
                print(f"- {f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(to_json(rows, args, kiln, torch_version, failures), f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
