#!/usr/bin/env python3
"""Builds tiny HuggingFace transformers models with random weights (BERT,
RoBERTa, DistilBERT, ALBERT, ELECTRA, DeBERTa-v2, ModernBERT, GPT-2, GPT-NeoX,
GPT-J, OPT, Bloom, Falcon, LLaMA, Mistral, Qwen2/3, Phi, Phi-3, Gemma,
Gemma 2, GPT-BigCode, MPT, Mixtral, T5, BART, the Whisper encoder, ViT, Swin,
CLIP text and vision, wav2vec 2), with eager and SDPA attention, exports each
to ONNX with PyTorch's TorchScript exporter (opset 17) and its dynamo
exporter, compiles it with `kilnc --remarks`, runs it with kiln-run and
compares the output with PyTorch's and with ONNX Runtime's.

Text encoders run a right-padded batch, causal LMs a left-padded batch and
one with an all-ones mask; errors are reported separately on valid and on
padded query rows. ONNX Runtime tells exporter differences from Kiln's: on
rows where it differs from PyTorch too (the padded rows of the dynamo
exporter's SDPA on left-padded batches), Kiln may match either of them.

Needs the peers of bench/setup.sh (transformers included):
  build/bench-venv/bin/python bench/check_hf_models.py [BIN_DIR] [WORKDIR]
      [--only llama,gpt2,...] [--exporters ts,dynamo] [--impls eager,sdpa]
A failing case keeps its ONNX file, inputs, PyTorch's outputs and a
repro.sh in WORKDIR/<case>/ (WORKDIR: a new temporary directory by default).
Exits non-zero when a case fails in Kiln: kilnc or kiln-run fails, a relative
error (to the largest reference value) exceeds 1e-4 on rows where ONNX Runtime
matches PyTorch (or where Kiln matches neither), or an attention block is not
fused. Models that transformers cannot build with an implementation (no SDPA
in Bloom, DeBERTa-v2, Gemma 2, MPT) and exports that fail inside PyTorch
(Mixtral) are reported and skipped.
"""
import argparse, math, os, re, shutil, subprocess, sys, tempfile, time, warnings
import contextlib
import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import transformers as T

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-4
V, HID, L, NH, FF = 1000, 64, 2, 4, 128  # vocabulary, width, layers, heads, MLP
B, S, S_DEC = 2, 32, 16                   # batch, sequence, decoder sequence
warnings.filterwarnings("ignore")
T.logging.set_verbosity_error()

# Config arguments shared by most text models, and by the causal LMs with
# grouped-query attention.
TEXT = dict(vocab_size=V, hidden_size=HID, num_hidden_layers=L, num_attention_heads=NH,
            intermediate_size=FF, max_position_embeddings=128)
GQA = dict(TEXT, num_key_value_heads=2)
VISION = dict(hidden_size=HID, num_hidden_layers=L, num_attention_heads=NH, intermediate_size=FF,
              image_size=32, patch_size=8)


# name: () -> (model class, config, inputs kind, attention blocks). Kinds:
# "enc" input_ids with a right-padded mask, "dec" a causal LM (left-padded
# and all-ones masks), "seq2seq" an encoder-decoder, "image" 1x3x32x32
# pixels, "mel" 80 mel bins x 64 frames, "wave" 1600 audio samples.
MODELS = {
    "bert": lambda: (T.BertModel, T.BertConfig(**TEXT), "enc", L),
    "roberta": lambda: (T.RobertaModel, T.RobertaConfig(**dict(TEXT, max_position_embeddings=130)), "enc", L),
    "distilbert": lambda: (T.DistilBertModel, T.DistilBertConfig(
        vocab_size=V, dim=HID, n_layers=L, n_heads=NH, hidden_dim=FF, max_position_embeddings=128), "enc", L),
    "albert": lambda: (T.AlbertModel, T.AlbertConfig(embedding_size=32, **TEXT), "enc", L),
    "electra": lambda: (T.ElectraModel, T.ElectraConfig(embedding_size=32, **TEXT), "enc", L),
    "deberta-v2": lambda: (T.DebertaV2Model, T.DebertaV2Config(
        relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=16, max_relative_positions=-1,
        norm_rel_ebd="layer_norm", share_att_key=True, **TEXT), "enc", L),
    "modernbert": lambda: (T.ModernBertModel, T.ModernBertConfig(
        global_attn_every_n_layers=2, local_attention=16, pad_token_id=0, **TEXT), "enc", L),
    "gpt2": lambda: (T.GPT2LMHeadModel, T.GPT2Config(
        vocab_size=V, n_positions=128, n_embd=HID, n_layer=L, n_head=NH), "dec", L),
    "gpt-neox": lambda: (T.GPTNeoXForCausalLM, T.GPTNeoXConfig(rotary_pct=0.25, **TEXT), "dec", L),
    "gptj": lambda: (T.GPTJForCausalLM, T.GPTJConfig(
        vocab_size=V, n_positions=128, n_embd=HID, n_layer=L, n_head=NH, rotary_dim=8, n_inner=FF), "dec", L),
    "opt": lambda: (T.OPTForCausalLM, T.OPTConfig(
        vocab_size=V, hidden_size=HID, num_hidden_layers=L, num_attention_heads=NH, ffn_dim=FF,
        max_position_embeddings=128, word_embed_proj_dim=HID), "dec", L),
    "bloom": lambda: (T.BloomForCausalLM, T.BloomConfig(vocab_size=V, hidden_size=HID, n_layer=L, n_head=NH),
                      "dec", L),
    "falcon": lambda: (T.FalconForCausalLM, T.FalconConfig(
        vocab_size=V, hidden_size=HID, num_hidden_layers=L, num_attention_heads=NH,
        max_position_embeddings=128), "dec", L),
    "llama": lambda: (T.LlamaForCausalLM, T.LlamaConfig(**GQA), "dec", L),
    "mistral": lambda: (T.MistralForCausalLM, T.MistralConfig(sliding_window=16, **GQA), "dec", L),
    "qwen2": lambda: (T.Qwen2ForCausalLM, T.Qwen2Config(**GQA), "dec", L),
    "qwen3": lambda: (T.Qwen3ForCausalLM, T.Qwen3Config(head_dim=16, **GQA), "dec", L),
    "phi": lambda: (T.PhiForCausalLM, T.PhiConfig(partial_rotary_factor=0.5, **TEXT), "dec", L),
    "phi3": lambda: (T.Phi3ForCausalLM, T.Phi3Config(pad_token_id=0, **GQA), "dec", L),
    "gemma": lambda: (T.GemmaForCausalLM, T.GemmaConfig(**dict(GQA, num_key_value_heads=1, head_dim=16)),
                      "dec", L),
    "gemma2": lambda: (T.Gemma2ForCausalLM, T.Gemma2Config(
        head_dim=16, sliding_window=16, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
        query_pre_attn_scalar=16, **GQA), "dec", L),
    "gpt-bigcode": lambda: (T.GPTBigCodeForCausalLM, T.GPTBigCodeConfig(
        vocab_size=V, n_positions=128, n_embd=HID, n_layer=L, n_head=NH, multi_query=True), "dec", L),
    "mpt": lambda: (T.MptForCausalLM, T.MptConfig(
        vocab_size=V, d_model=HID, n_layers=L, n_heads=NH, max_seq_len=128, expansion_ratio=2), "dec", L),
    "mixtral": lambda: (T.MixtralForCausalLM, T.MixtralConfig(
        num_local_experts=4, num_experts_per_tok=2, **GQA), "dec", L),
    "t5-encoder": lambda: (T.T5EncoderModel, t5_config(), "enc", L),
    "t5": lambda: (T.T5ForConditionalGeneration, t5_config(), "seq2seq", 3 * L),
    "bart": lambda: (T.BartForConditionalGeneration, T.BartConfig(
        vocab_size=V, d_model=HID, encoder_layers=L, decoder_layers=L, encoder_attention_heads=NH,
        decoder_attention_heads=NH, encoder_ffn_dim=FF, decoder_ffn_dim=FF, max_position_embeddings=128),
        "seq2seq", 3 * L),
    "whisper-encoder": lambda: (T.models.whisper.modeling_whisper.WhisperEncoder, T.WhisperConfig(
        vocab_size=V, d_model=HID, encoder_layers=L, decoder_layers=L, encoder_attention_heads=NH,
        decoder_attention_heads=NH, encoder_ffn_dim=FF, decoder_ffn_dim=FF, num_mel_bins=80,
        max_source_positions=32, max_target_positions=64), "mel", L),
    "vit": lambda: (T.ViTModel, T.ViTConfig(**VISION), "image", L),
    "swin": lambda: (T.SwinModel, T.SwinConfig(
        image_size=32, patch_size=4, embed_dim=32, depths=[2, 2], num_heads=[2, 4], window_size=4), "image", 4),
    "clip-text": lambda: (T.CLIPTextModel, T.CLIPTextConfig(**dict(TEXT, max_position_embeddings=64)), "enc", L),
    "clip-vision": lambda: (T.CLIPVisionModel, T.CLIPVisionConfig(**VISION), "image", L),
    "wav2vec2": lambda: (T.Wav2Vec2Model, T.Wav2Vec2Config(
        vocab_size=32, hidden_size=HID, num_hidden_layers=L, num_attention_heads=NH, intermediate_size=FF,
        conv_dim=(32, 32, 32), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, feat_extract_norm="group"), "wave", L),
}


def t5_config():
    return T.T5Config(vocab_size=V, d_model=HID, d_kv=16, d_ff=FF, num_layers=L, num_decoder_layers=L,
                      num_heads=NH, relative_attention_num_buckets=32)


def input_sets(kind):
    """{run name: {input name: tensor}}; the masks mark padding with 0."""
    g = torch.Generator().manual_seed(0)
    ids = lambda *shape: torch.randint(3, V, shape, generator=g)
    mask = torch.ones(B, S, dtype=torch.long)
    if kind == "dec":
        mask[0, :5] = 0
        x = ids(B, S)
        return {"left-padded": {"input_ids": x, "attention_mask": mask},
                "all-ones": {"input_ids": x, "attention_mask": torch.ones_like(mask)}}
    mask[1, S - 5:] = 0
    one = {"enc": lambda: {"input_ids": ids(B, S), "attention_mask": mask},
           "seq2seq": lambda: {"input_ids": ids(B, S), "attention_mask": mask, "decoder_input_ids": ids(B, S_DEC)},
           "image": lambda: {"pixel_values": torch.randn(1, 3, 32, 32, generator=g)},
           "mel": lambda: {"input_features": torch.randn(1, 80, 64, generator=g)},
           "wave": lambda: {"input_values": torch.randn(1, 1600, generator=g)}}[kind]()
    return {"right-padded" if kind in ("enc", "seq2seq") else "unmasked": one}


def randomize(model):
    """Non-trivial random weights: fan-in scaled matrices (attention logits of
    O(1), not the near-uniform softmax of std 0.02 inits), norm scales in
    [0.5, 1.5], small biases."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
            elif name.endswith(("weight", "scale")):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


class Positional(nn.Module):
    """The model called with positional inputs (for the exporters), returning
    its first output (logits or last hidden state)."""
    def __init__(self, model, names, kwargs):
        super().__init__()
        self.model, self.names, self.kwargs = model, names, kwargs

    def forward(self, *args):
        return self.model(**dict(zip(self.names, args)), **self.kwargs)[0]


def instantiate(cls, cfg, impl):
    """The model of class `cls` for `cfg` with attention implementation
    `impl`, in eval mode, with seeded random weights (randomize)."""
    torch.manual_seed(0)
    model = cls._from_config(cfg, attn_implementation=impl).eval()
    if model.config._attn_implementation != impl:
        raise ValueError(f"transformers gave {model.config._attn_implementation} attention, not {impl}")
    randomize(model)
    return model


def build(name, impl):
    """(module, input sets, expected attention blocks)."""
    cls, cfg, kind, blocks = MODELS[name]()
    model = instantiate(cls, cfg, impl)
    runs = input_sets(kind)
    kwargs = {"use_cache": False} if kind in ("dec", "seq2seq") else {}
    return Positional(model, list(next(iter(runs.values()))), kwargs).eval(), runs, blocks


@contextlib.contextmanager
def quiet():
    """Sends stdout and stderr to /dev/null at the file descriptors: the
    exporters print progress, notes and (from C++) whole graphs on errors."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with open(os.devnull, "w") as null:
        for fd in saved:
            os.dup2(null.fileno(), fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)


def export(module, inputs, path, exporter):
    args, names = tuple(inputs.values()), list(inputs)
    with torch.no_grad(), quiet():
        if exporter == "ts":
            torch.onnx.export(module, args, path, input_names=names, output_names=["y"],
                              opset_version=17, dynamo=False)
        else:
            torch.onnx.export(module, args, path, input_names=names, output_names=["y"],
                              dynamo=True, external_data=False)


def sh(cmd, timeout=900):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 124, "", f"timed out after {timeout} s")


def parse_remarks(stderr):
    fused = re.findall(r"kiln-fuse-attention: .*?: fused attention: (.*)", stderr)
    return {"fused": fused,
            "causal": sum(bool(re.search(r", causal(,|$)", f)) for f in fused),
            "in_mask": sum(", causal in mask" in f for f in fused),
            "softcap": sum(", softcap" in f for f in fused),
            "rejected": re.findall(r"kiln-fuse-attention: (.*?: attention not fused: .*)", stderr),
            "kept": re.findall(r"kiln-fuse-attention: (.*?: attention kept unfused: .*)", stderr)}


def row_errors(got, ref):
    """Per (batch, position) row: max |got - ref| / max |ref|; a value finite
    on one side only counts as inf."""
    shape = (ref.shape[0], ref.shape[1] if ref.ndim > 2 else 1, -1)
    got, ref = got.reshape(shape), ref.reshape(shape)
    finite = np.isfinite(ref)
    diff = np.where(finite & np.isfinite(got), np.abs(got - ref), 0.0)
    diff[finite != np.isfinite(got)] = np.inf
    return diff.max(axis=2) / max(np.abs(ref[finite]).max(initial=0.0), 1e-30)


def worst(errors, rows):
    return float(errors[rows].max()) if rows.any() else None


def compare(ref, ort_out, kiln_out, inputs):
    """Errors of Kiln and ONNX Runtime against PyTorch on the valid and the
    padded query rows, and Kiln's failure (or None). On rows where ONNX
    Runtime differs from PyTorch (an exporter difference), Kiln may match
    either."""
    kiln = row_errors(kiln_out, ref)
    mask = inputs.get("attention_mask")
    valid = np.ones(kiln.shape, bool)
    if mask is not None and tuple(mask.shape) == kiln.shape:
        valid = mask.numpy().astype(bool)
    r = {"kiln": (worst(kiln, valid), worst(kiln, ~valid)), "failure": None}
    bad = kiln > TOL
    if ort_out is not None:
        ort = row_errors(ort_out, ref)
        vs_ort = row_errors(kiln_out, ort_out)
        r["ort"] = (worst(ort, valid), worst(ort, ~valid))
        if (ort > TOL).any():
            r["exporter_rows"] = int((ort > TOL).sum())
            r["kiln_vs_ort"] = worst(vs_ort, ort > TOL)
        bad &= (ort <= TOL) | (vs_ort > TOL)
    if bad.any():
        r["failure"] = f"rel error {kiln[bad].max():.3g} on {bad.sum()} rows"
    return r


def run_ort(path, feeds):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})[0]


def run_kiln(kiln, files, out):
    shutil.rmtree(out, ignore_errors=True)
    r = sh([f"{BIN}/kiln-run", kiln, *(a for n, f in files.items() for a in ("--input", f"{n}={f}")),
            "--output-dir", out])
    if r.returncode != 0:
        return None, (r.stderr.strip() or r.stdout.strip())[-1000:]
    return np.load(f"{out}/y.npy"), None


def check(case, module, runs, blocks, exporter):
    """Exports, compiles and runs one case; returns its record."""
    d = os.path.join(WORK, case)
    os.makedirs(d, exist_ok=True)
    path, kiln = f"{d}/model.onnx", f"{d}/model.kiln"
    t = time.time()
    try:
        export(module, next(iter(runs.values())), path, exporter)
    except Exception as e:
        shutil.rmtree(d)
        return {"status": "skip", "skip": "export failed in PyTorch", "why": first_line(e)}
    used = [i.name for i in onnx.load(path).graph.input]
    rec = {"status": "ok", "blocks": blocks, "export_s": time.time() - t, "runs": {}, "notes": []}
    t = time.time()
    r = sh([f"{BIN}/kilnc", path, "-q", "--remarks", "-o", kiln])
    rec["kilnc_s"] = time.time() - t
    rm = rec["remarks"] = parse_remarks(r.stderr)
    failures = []
    if r.returncode != 0:
        failures.append("kilnc failed: " + "\n".join(l for l in r.stderr.splitlines() if "remark:" not in l)[-1500:])
    elif rm["rejected"] or len(rm["fused"]) + len(rm["kept"]) != blocks:
        failures.append(f"{len(rm['fused'])} of {blocks} attention blocks fused")
    for run, inputs in runs.items():
        with torch.no_grad():
            ref = module(*inputs.values()).float().numpy()
        feeds = {n: inputs[n].numpy() for n in used}
        files = {n: f"{d}/{run}-{n}.npy" for n in used}
        for n in used:
            np.save(files[n], feeds[n])
        np.save(f"{d}/{run}-ref.npy", ref)
        if r.returncode != 0:
            continue
        try:
            ort_out = run_ort(path, feeds)
            assert ort_out.shape == ref.shape, f"output shape {ort_out.shape}, PyTorch's {ref.shape}"
        except Exception as e:
            ort_out = None
            rec["notes"].append(f"{run}: ONNX Runtime failed ({first_line(e)}); compared with PyTorch only")
        got, err = run_kiln(kiln, files, f"{d}/{run}-out")
        if err or got.shape != ref.shape:
            failures.append(f"{run}: kiln-run failed: {err}" if err else
                            f"{run}: output shape {got.shape}, PyTorch's {ref.shape}")
            continue
        res = rec["runs"][run] = compare(ref, ort_out, got, inputs)
        if res["failure"]:
            failures.append(f"{run}: {res['failure']}")
            # Tell the attention kernel from the rest of the compiler.
            if not os.path.exists(f"{d}/model-nofuse.kiln"):
                sh([f"{BIN}/kilnc", path, "-q", "--no-fuse-attention", "-o", f"{d}/model-nofuse.kiln"])
            nf, nf_err = run_kiln(f"{d}/model-nofuse.kiln", files, f"{d}/{run}-out-nofuse")
            failures.append(f"{run}: with --no-fuse-attention: " +
                            (nf_err or f"rel error {row_errors(nf, ref).max():.3g}"))
    if failures:
        rec.update(status="FAIL", why="\n".join(failures))
        write_repro(d, runs, used)
    else:
        shutil.rmtree(d)
    return rec


def write_repro(d, runs, used):
    lines = ['#!/bin/sh', '# Compiles the case and compares kiln-run\'s output with PyTorch\'s (<run>-ref.npy).',
             'set -e', 'cd "$(dirname "$0")"', f'{BIN}/kilnc model.onnx -q --remarks -o model.kiln']
    for run in runs:
        ins = " ".join(f"--input {n}={run}-{n}.npy" for n in used)
        lines += [f"{BIN}/kiln-run model.kiln {ins} --output-dir {run}-out",
                  f"{sys.executable} -c \"import numpy as n; a, b = n.load('{run}-out/y.npy'), "
                  f"n.load('{run}-ref.npy'); f = n.isfinite(b); "
                  f"print('{run}: rel error', abs(a - b)[f].max() / abs(b[f]).max())\""]
    with open(f"{d}/repro.sh", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(f"{d}/repro.sh", 0o755)


def first_line(e):
    """The first sentence of the exception's root cause."""
    while e.__cause__ is not None:
        e = e.__cause__
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
    return f"{type(e).__name__}: {lines[0].split('. ')[0][:200] if lines else ''}"


def fmt(x):
    return "-" if x is None else f"{x:.2g}"


def report(case, rec):
    """Prints one case; returns its summary table row."""
    if rec["status"] == "skip":
        print(f"{case}: skipped, {rec['skip']}: {rec['why']}", flush=True)
        return [case, "skip: " + rec["skip"]] + [""] * 7
    rm = rec["remarks"]
    print(f"{case}: {rec['status']} (export {rec['export_s']:.1f} s, kilnc {rec['kilnc_s']:.1f} s)")
    print(f"    fused {len(rm['fused'])}/{rec['blocks']}, causal {rm['causal']}, causal-in-mask {rm['in_mask']}"
          + (f", softcap {rm['softcap']}" if rm["softcap"] else ""))
    for line in sorted(set(rm["fused"])):
        print(f"      fused: {line}")
    for line in rm["rejected"] + rm["kept"] + rec["notes"]:
        print(f"      {line}")
    for run, r in rec["runs"].items():
        (v, p), (ov, op) = r["kiln"], r.get("ort", (None, None))
        print(f"    {run}: rel err valid rows Kiln {fmt(v)}, ONNX Runtime {fmt(ov)}; "
              f"padded rows Kiln {fmt(p)}, ONNX Runtime {fmt(op)}"
              + (f"; exporter difference on {r['exporter_rows']} rows, Kiln vs ONNX Runtime there "
                 f"{fmt(r['kiln_vs_ort'])}" if "exporter_rows" in r else ""))
    if rec["status"] == "FAIL":
        print("    " + rec["why"].replace("\n", "\n    "))
    sys.stdout.flush()
    runs = rec["runs"].values()
    most = lambda key, i: fmt(max((r[key][i] for r in runs if key in r and r[key][i] is not None), default=None))
    exporter = any("exporter_rows" in r for r in runs)
    return [case, rec["status"] + (" (exporter difference)" if exporter else ""),
            f"{len(rm['fused'])}/{rec['blocks']}", str(rm["causal"]), str(rm["in_mask"]),
            most("kiln", 0), most("kiln", 1), most("ort", 0), most("ort", 1)]


def main():
    global BIN, WORK
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bin_dir", nargs="?", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("work_dir", nargs="?")
    ap.add_argument("--only", default=",".join(MODELS), help="comma-separated models (default: all)")
    ap.add_argument("--exporters", default="ts,dynamo")
    ap.add_argument("--impls", default="eager,sdpa", help="transformers attention implementations")
    a = ap.parse_args()
    unknown = set(a.only.split(",")) - set(MODELS)
    if unknown:
        ap.error(f"unknown models {sorted(unknown)}; known: {', '.join(MODELS)}")
    BIN = os.path.abspath(a.bin_dir)
    WORK = os.path.abspath(a.work_dir or tempfile.mkdtemp(prefix="kiln-hf-check-"))
    os.makedirs(WORK, exist_ok=True)
    start, rows = time.time(), []
    for name in a.only.split(","):
        for impl in a.impls.split(","):
            try:
                module, runs, blocks = build(name, impl)
            except Exception as e:  # e.g. no SDPA attention in this model
                for exporter in a.exporters.split(","):
                    rows.append(report(f"{name}.{exporter}.{impl}", {
                        "status": "skip", "skip": "transformers cannot build it", "why": first_line(e)}))
                continue
            for exporter in a.exporters.split(","):
                case = f"{name}.{exporter}.{impl}"
                rows.append(report(case, check(case, module, runs, blocks, exporter)))
    header = ["case", "result", "fused", "causal", "in mask", "Kiln valid", "Kiln padded", "ORT valid", "ORT padded"]
    print("\n| " + " | ".join(header) + " |\n|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    failed = [row[0] for row in rows if row[1].startswith("FAIL")]
    print(f"\n{len(rows)} cases, {sum(r[1].startswith('ok') for r in rows)} ok, {len(failed)} failed, "
          f"{sum(r[1].startswith('skip') for r in rows)} skipped; {time.time() - start:.0f} s")
    if failed:
        print(f"failing cases (with repro.sh) in {WORK}: {', '.join(failed)}")
    elif not a.work_dir:
        shutil.rmtree(WORK)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
