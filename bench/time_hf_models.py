#!/usr/bin/env python3
"""Times Kiln against ONNX Runtime and PyTorch eager on real-size HuggingFace
transformers (random weights from each architecture's config, batch 1 and
sequence 128 unless --batch / --seq say otherwise), the models a user would
export and run themselves: every case is exported with PyTorch's
TorchScript exporter at opset 17 (what most users still get for encoders),
compiled with `kilnc --remarks`, checked
(Kiln against ONNX Runtime and PyTorch), then timed interleaved round by
round with 2 threads (KILN_NUM_THREADS, intra_op_num_threads,
torch.set_num_threads). Each sample measures the CPU time other processes
took meanwhile and is retried when that exceeds 0.15 of a core, since this
2-core machine is shared; the table shows the worst sample kept.

Needs the peers of bench/setup.sh (transformers included):
  build/bench-venv/bin/python bench/time_hf_models.py [--only bert,llama]
      [--rounds 3] [--iters 10] [--impl eager|sdpa] [--batch 1] [--seq 128]
      [--bin DIR] [--work DIR]
Cases: bert, distilbert, roberta, albert, electra, deberta-v2, t5-encoder,
t5-base-encoder, bart, opt, gpt-neox, llama, qwen2, phi, whisper-encoder,
swin, deit-small (default: bert, deberta-v2, t5-encoder, llama, qwen2,
swin). Prints one markdown table; exits non-zero when Kiln fails or its
output is further from PyTorch's than both 1e-4 (relative to the largest
output) and twice ONNX Runtime's distance from PyTorch.
"""
import argparse, json, os, re, statistics, subprocess, sys, time, warnings
import numpy as np
import torch
import transformers as T
import onnxruntime as ort
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The same random weights and positional wrapper as the correctness sweep.
from check_hf_models import instantiate, Positional

warnings.filterwarnings("ignore")
T.logging.set_verbosity_error()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THREADS = 2
B, S = 1, 128  # batch and sequence of the text cases (--batch, --seq)

MODELS = {
    # name: (class, config, kind, expected attention blocks)
    "bert": lambda: (T.BertModel, T.BertConfig(), "enc", 12),
    "distilbert": lambda: (T.DistilBertModel, T.DistilBertConfig(), "enc", 6),
    "roberta": lambda: (T.RobertaModel, T.RobertaConfig(vocab_size=50265, max_position_embeddings=514,
                                                        type_vocab_size=1, pad_token_id=1), "enc", 12),
    "albert": lambda: (T.AlbertModel, T.AlbertConfig(
        vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
        num_attention_heads=12, intermediate_size=3072, hidden_act="gelu_new"), "enc", 12),
    "electra": lambda: (T.ElectraModel, T.ElectraConfig(
        embedding_size=768, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072), "enc", 12),
    "deberta-v2": lambda: (T.DebertaV2Model, T.DebertaV2Config(
        vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=512, relative_attention=True,
        pos_att_type=["p2c", "c2p"], position_buckets=256, max_relative_positions=-1,
        norm_rel_ebd="layer_norm", share_att_key=True, position_biased_input=False,
        type_vocab_size=0), "enc", 12),
    "t5-encoder": lambda: (T.T5EncoderModel, T.T5Config(
        vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8), "enc", 6),
    "t5-base-encoder": lambda: (T.T5EncoderModel, T.T5Config(
        vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12), "enc", 12),
    "bart": lambda: (T.BartModel, T.BartConfig(
        vocab_size=50265, d_model=768, encoder_layers=6, decoder_layers=6, encoder_attention_heads=12,
        decoder_attention_heads=12, encoder_ffn_dim=3072, decoder_ffn_dim=3072,
        max_position_embeddings=1024), "seq2seq", 18),
    "opt": lambda: (T.OPTForCausalLM, T.OPTConfig(
        vocab_size=50272, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, ffn_dim=3072,
        max_position_embeddings=2048, word_embed_proj_dim=768), "dec", 12),
    "gpt-neox": lambda: (T.GPTNeoXForCausalLM, T.GPTNeoXConfig(
        vocab_size=50304, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, rotary_pct=0.25, max_position_embeddings=2048), "dec", 12),
    "llama": lambda: (T.LlamaForCausalLM, T.LlamaConfig(
        vocab_size=32000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        num_key_value_heads=4, intermediate_size=2048, max_position_embeddings=2048), "dec", 12),
    "qwen2": lambda: (T.Qwen2ForCausalLM, T.Qwen2Config(
        vocab_size=151936, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        num_key_value_heads=2, intermediate_size=2048, max_position_embeddings=2048,
        tie_word_embeddings=True), "dec", 12),
    "phi": lambda: (T.PhiForCausalLM, T.PhiConfig(
        vocab_size=51200, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, partial_rotary_factor=0.5, max_position_embeddings=2048), "dec", 12),
    "whisper-encoder": lambda: (T.models.whisper.modeling_whisper.WhisperEncoder, T.WhisperConfig(
        d_model=384, encoder_layers=4, encoder_attention_heads=6, encoder_ffn_dim=1536,
        num_mel_bins=80, max_source_positions=1500), "mel", 4),
    "swin": lambda: (T.SwinModel, T.SwinConfig(), "image", 12),
    "deit-small": lambda: (T.ViTModel, T.ViTConfig(
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
        image_size=224, patch_size=16), "image", 12),
}


def inputs_for(kind, vocab):
    g = torch.Generator().manual_seed(0)
    ids = lambda n: torch.randint(3, vocab, (B, n), generator=g)
    mask = torch.ones(B, S, dtype=torch.long)
    if kind in ("enc", "dec"):
        return {"input_ids": ids(S), "attention_mask": mask}
    if kind == "seq2seq":
        return {"input_ids": ids(S), "attention_mask": mask, "decoder_input_ids": ids(S)}
    if kind == "image":
        return {"pixel_values": torch.randn(B, 3, 224, 224, generator=g)}
    if kind == "mel":
        return {"input_features": torch.randn(B, 80, 3000, generator=g)}


def build(name, impl):
    cls, cfg, kind, blocks = MODELS[name]()
    model = instantiate(cls, cfg, impl)
    inputs = inputs_for(kind, getattr(cfg, "vocab_size", 1000))
    kwargs = {"use_cache": False} if kind in ("dec", "seq2seq") else {}
    params = sum(p.numel() for p in model.parameters())
    return Positional(model, list(inputs), kwargs).eval(), inputs, blocks, params


def busy_jiffies():
    f = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return sum(f) - f[3] - f[4]


def own_cpu():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measured(fn):
    """fn's result and the CPU time other processes used meanwhile, in cores
    (average over the wall time; 0 = machine ours alone)."""
    b0, o0, w0 = busy_jiffies(), own_cpu(), time.time()
    v = fn()
    b1, o1, w1 = busy_jiffies(), own_cpu(), time.time()
    return v, max(0.0, ((b1 - b0) / os.sysconf("SC_CLK_TCK") - (o1 - o0)) / (w1 - w0))


def wait_quiet(limit=20):
    """Waits (up to limit s) until other processes use < 0.1 core over 0.5 s."""
    t0 = time.time()
    while time.time() - t0 < limit:
        _, other = measured(lambda: time.sleep(0.5))
        if other < 0.1:
            return
        time.sleep(1)


def sh(cmd, env=None, timeout=1800):
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


KENV = dict(os.environ, KILN_NUM_THREADS=str(THREADS), OMP_NUM_THREADS=str(THREADS))


def run_case(case, a, built=None):
    """Exports, compiles, checks and times one case; returns its record.
    `built`: (module, inputs, attention blocks, parameters) of a model from
    elsewhere (bench/time_torchvision.py); by default the HF case is built."""
    BIN = a.bin
    name, impl = case.rsplit(".", 1)
    d = os.path.join(a.work, case)
    os.makedirs(d, exist_ok=True)
    res = {"case": case}
    module, inputs, blocks, params = built or build(name, impl)
    res["params_M"] = params / 1e6
    res["blocks"] = blocks
    onnx_path, kiln = f"{d}/model.onnx", f"{d}/model.kiln"
    args, names = tuple(inputs.values()), list(inputs)
    if not os.path.exists(onnx_path):
        t = time.time()
        with torch.no_grad():
            torch.onnx.export(module, args, onnx_path, input_names=names, output_names=["y"],
                              opset_version=17, dynamo=False)
        res["export_s"] = time.time() - t
    import onnx
    used = [i.name for i in onnx.load(onnx_path, load_external_data=False).graph.input]
    feeds = {n: inputs[n].numpy() for n in used}
    for n in used:
        np.save(f"{d}/{n}.npy", feeds[n])
    t = time.time()
    r = sh([f"{BIN}/kilnc", onnx_path, "--remarks", "-o", kiln])
    res["kilnc_s"] = time.time() - t
    open(f"{d}/kilnc.stderr", "w").write(r.stderr)
    open(f"{d}/kilnc.stdout", "w").write(r.stdout)
    res["kilnc_rc"] = r.returncode
    fused = re.findall(r"kiln-fuse-attention: .*?: fused attention: (.*)", r.stderr)
    rejected = re.findall(r"kiln-fuse-attention: (.*?: attention not fused: .*)", r.stderr)
    kept = re.findall(r"kiln-fuse-attention: (.*?: attention kept unfused: .*)", r.stderr)
    res["fused"], res["rejected"], res["kept"] = len(fused), sorted(set(rejected)), sorted(set(kept))
    res["fused_kinds"] = sorted(set(fused))
    if r.returncode != 0:
        res["error"] = "kilnc failed: " + r.stderr[-2000:]
        json.dump(res, open(f"{d}/result.json", "w"), indent=1)
        return res
    kin = [x for n in used for x in ("--input", f"{n}={d}/{n}.npy")]
    # correctness
    with torch.inference_mode():
        ref = module(*args).float().numpy()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    ort_out = sess.run(None, feeds)[0]
    r = sh([f"{BIN}/kiln-run", kiln, *kin, "--output-dir", f"{d}/out"], env=KENV)
    if r.returncode != 0:
        res["error"] = "kiln-run failed: " + (r.stderr or r.stdout)[-2000:]
        json.dump(res, open(f"{d}/result.json", "w"), indent=1)
        return res
    kout = np.load(f"{d}/out/y.npy")
    scale = float(np.abs(ort_out).max())
    res["max_abs_vs_ort"] = float(np.abs(kout - ort_out).max())
    res["rel_vs_ort"] = res["max_abs_vs_ort"] / scale
    res["rel_ort_vs_torch"] = float(np.abs(ort_out - ref).max()) / scale
    res["rel_kiln_vs_torch"] = float(np.abs(kout - ref).max()) / scale
    res["out_shape"] = list(kout.shape)
    # timing, interleaved
    tin = args
    def t_torch():
        with torch.inference_mode():
            module(*tin)
            ts = []
            for _ in range(a.iters):
                t = time.perf_counter(); module(*tin); ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1e3
    def t_ort():
        sess.run(None, feeds)
        ts = []
        for _ in range(a.iters):
            t = time.perf_counter(); sess.run(None, feeds); ts.append(time.perf_counter() - t)
        return statistics.median(ts) * 1e3
    def t_kiln():
        out = sh([f"{BIN}/kiln-run", kiln, *kin, "--bench", str(a.iters)], env=KENV).stdout
        m = re.search(r"median ([0-9.]+) ms", out)
        return float(m.group(1))
    if a.rounds == 0:
        json.dump(res, open(f"{d}/result.json", "w"), indent=1)
        return res
    samples = {"kiln": [], "ort": [], "torch": []}
    foreign = {"kiln": [], "ort": [], "torch": []}
    for rnd in range(a.rounds):
        for k, f in (("kiln", t_kiln), ("ort", t_ort), ("torch", t_torch)):
            best = None
            for attempt in range(a.retries):
                wait_quiet()
                v, other = measured(f)
                if best is None or other < best[1]:
                    best = (v, other)
                if other <= 0.15:
                    break
            samples[k].append(best[0]); foreign[k].append(round(best[1], 2))
        print(f"[{case}] round {rnd+1}: " + ", ".join(f"{k} {v[-1]:.1f} (other {foreign[k][-1]})"
              for k, v in samples.items()), file=sys.stderr, flush=True)
    res["samples_ms"] = samples
    res["foreign_cpu"] = foreign
    res["median_ms"] = {k: statistics.median(v) for k, v in samples.items()}
    m = res["median_ms"]
    res["ort_over_kiln"] = m["ort"] / m["kiln"]
    res["torch_over_kiln"] = m["torch"] / m["kiln"]
    json.dump(res, open(f"{d}/result.json", "w"), indent=1)
    return res


DEFAULT = "bert,deberta-v2,t5-encoder,llama,qwen2,swin"


def main():
    import tempfile
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=DEFAULT)
    ap.add_argument("--impl", default="eager", choices=["eager", "sdpa"])
    ap.add_argument("--batch", type=int, default=B, help="batch of every case")
    ap.add_argument("--seq", type=int, default=S, help="sequence length of the text cases")
    add_timing_args(ap)
    a = ap.parse_args()
    globals().update(B=a.batch, S=a.seq)
    a.work = a.work or tempfile.mkdtemp(prefix="kiln-hf-timing-")
    torch.set_num_threads(THREADS)
    for name in a.only.split(","):
        if name not in MODELS:
            sys.exit(f"unknown case '{name}'; cases: {', '.join(MODELS)}")
    results = [run_case(f"{name}.{a.impl}", a) for name in a.only.split(",")]
    sys.exit(1 if print_table(results, a.work) else 0)


def add_timing_args(ap):
    """The options run_case reads (shared with bench/time_torchvision.py)."""
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--work", default=None)


def print_table(results, work):
    """Prints the markdown table of run_case records; returns the number of
    failed cases (Kiln failed, or is further from PyTorch than both 1e-4
    and twice ONNX Runtime's distance: T5-base's random weights put both
    engines ~1e-4 from PyTorch, which a fixed bound on Kiln - ORT flagged)."""
    rows, failed = [], 0
    for res in results:
        bad = "error" in res or res.get("rel_kiln_vs_torch", 1) > max(
            1e-4, 2 * res.get("rel_ort_vs_torch", 0))
        failed += bad
        m = res.get("median_ms", {})
        rows.append((res["case"], res.get("params_M", 0), m.get("kiln"), m.get("ort"), m.get("torch"),
                     res.get("rel_vs_ort"), f"{res.get('fused', 0)}/{res.get('blocks', 0)}",
                     max(sum(res.get("foreign_cpu", {}).values(), []) or [0]),
                     res.get("error", "")[:60]))
    fmt = lambda x, f: "-" if x is None else f.format(x)
    print("\n| case | params | Kiln ms | ORT ms | torch ms | ORT / Kiln | torch / Kiln | rel err vs ORT "
          "| attention fused | other load | error |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for case, p, k, o, t, err, fused, other, e in rows:
        print(f"| {case} | {p:.0f}M | {fmt(k, '{:.1f}')} | {fmt(o, '{:.1f}')} | {fmt(t, '{:.1f}')} | "
              f"{fmt(o / k if k and o else None, '{:.2f}')} | {fmt(t / k if k and t else None, '{:.2f}')} | "
              f"{fmt(err, '{:.1e}')} | {fused} | {other} | {e} |")
    print(f"\n{len(rows)} cases, {failed} failed; files in {work}")
    return failed


if __name__ == "__main__":
    main()
