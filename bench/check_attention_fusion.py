#!/usr/bin/env python3
"""Exports attention written the ways PyTorch users write it to ONNX, compiles
each file with kilnc and checks that kiln-fuse-attention fused every block
(from `kilnc --report`), then runs the artifact with kiln-run and compares
its output with PyTorch's.

The forms: HF-BERT-style (additive padding mask, division by sqrt(D)),
HF-GPT-2-style (bool `bias` buffer sliced, where(mask, w, finfo.min)),
LLaMA-style grouped-query attention (repeat_kv by expand + reshape, causal
mask from torch.triu), torch.nn.MultiheadAttention (heads folded into the
batch, bmm), F.scaled_dot_product_attention, causal and with a mask,
attention written with torch.einsum, T5-style (no scale, a learned position
bias), cross-attention over a shorter memory, nn.TransformerEncoderLayer
with a causal mask, Bloom's ALiBi attention (baddbmm on [B*H, S, D],
viewed to [B, H, S, S] and back), nn.MultiheadAttention with a causal
and a key padding mask, a LLaMA-style 4-D mask (the causal
float mask expanded to [B, 1, S, S] and masked_fill'ed with the padding),
causal & padding as one boolean mask, GPT-NeoX's baddbmm on zeros with a
causal where, grouped-query heads by repeat_interleave, multi-query
attention by expand, softmax written out (exp(x - max) / sum), a
DeBERTa-style relative term (q @ pos^T added to the scores), and Swin V2's
shifted-window attention (per-head logit scale, window mask built by slice
assignment, scores viewed as rank 5 for it), and the 4-D mask of
transformers' LLaMA (padding written into the causal mask by slice
assignment), a strictly causal mask filled with -1e9 (the first query
sees no key: PyTorch averages V there), scores computed as (K Q^T)^T with
exp(log_softmax) and the row maximum subtracted by hand, and a non-local
block (SAGAN: V P^T over [B, C, N] features), and grouped-query heads
by broadcasting in rank 5 ([B, G, R, S, D] against K unsqueezed to
[B, G, 1, S, D]), and HF's head mask (the probabilities times a per-head
factor) and the scores times a per-key factor. The forms
whose masks are causal must be fused with the causal flag.

Needs the peers of bench/setup.sh:
  build/bench-venv/bin/python bench/check_attention_fusion.py [BIN_DIR] [WORKDIR]
  build/bench-venv/bin/python bench/check_attention_fusion.py --save-fixtures tests/onnx/attention
Add --dynamo to export with PyTorch's default (torch.export-based) exporter
instead of the TorchScript one; its fixtures are named dynamo-<form>.
--opset N sets the TorchScript exporter's opset (default 17; fixtures
opset<N>-<form>).
The second form writes the small forms' ONNX files with their inputs and
PyTorch's outputs (.npy) as fixtures for tests/onnx/AttentionExportsTest.cpp,
which checks the same things in CI without PyTorch.
Exits non-zero when a block is not fused or an output differs by more than
1e-4 relative to the largest reference value.
"""
import math, os, re, subprocess, sys, tempfile
import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = None
# --dynamo: export with PyTorch's torch.export-based exporter (the default
# since PyTorch 2.9; needs onnxscript) instead of the TorchScript one.
DYNAMO = "--dynamo" in sys.argv
if DYNAMO:
    sys.argv.remove("--dynamo")
# --opset N: the TorchScript exporter's opset (default 17); before 13,
# Softmax coerces its input to 2-D. Fixtures are named opset<N>-<form>.
OPSET = 17
if "--opset" in sys.argv:
    i = sys.argv.index("--opset")
    OPSET = int(sys.argv[i + 1])
    del sys.argv[i:i + 2]
if len(sys.argv) > 2 and sys.argv[1] == "--save-fixtures":
    FIXTURES = sys.argv[2]
    del sys.argv[1:3]
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "bin")
WORK = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="kiln-attn-check-")
B, S, D, H = 2, 32, 64, 4


class BertSelfAttention(nn.Module):
    """transformers' BertSelfAttention (eager): additive extended mask."""
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(D, D) for _ in range(3))

    def split(self, t):
        return t.view(B, S, H, D // H).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        ext = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D // H)
        probs = F.softmax(scores + ext, dim=-1)
        return torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(B, S, D)


class Gpt2Attention(nn.Module):
    """transformers' GPT2Attention (eager): causal `bias` buffer sliced and
    applied with where(.., finfo.min), then the padding mask added."""
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(D, 3 * D)
        self.register_buffer("bias", torch.tril(torch.ones(64, 64, dtype=torch.bool)).view(1, 1, 64, 64))

    def forward(self, x, mask):
        q, k, v = self.c_attn(x).split(D, dim=2)
        q, k, v = (t.view(B, S, H, D // H).permute(0, 2, 1, 3) for t in (q, k, v))
        w = torch.matmul(q, k.transpose(-1, -2)) / (v.size(-1) ** 0.5)
        causal = self.bias[:, :, 0:S, :S]
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min))
        w = w + (1.0 - mask[:, None, None, :]) * -10000.0
        w = F.softmax(w, dim=-1)
        return torch.matmul(w, v).permute(0, 2, 1, 3).reshape(B, S, D)


class LlamaAttention(nn.Module):
    """LLaMA-style grouped-query attention: 4 query heads, 2 key/value heads
    repeated by expand + reshape (repeat_kv), causal mask from triu(-inf)."""
    def __init__(self):
        super().__init__()
        self.kv_heads = 2
        self.q = nn.Linear(D, D, bias=False)
        self.k = nn.Linear(D, D // 2, bias=False)
        self.v = nn.Linear(D, D // 2, bias=False)

    def forward(self, x, mask):
        hd = D // H
        q = self.q(x).view(B, S, H, hd).transpose(1, 2)
        k = self.k(x).view(B, S, self.kv_heads, hd).transpose(1, 2)
        v = self.v(x).view(B, S, self.kv_heads, hd).transpose(1, 2)
        rep = H // self.kv_heads
        k = k[:, :, None].expand(B, self.kv_heads, rep, S, hd).reshape(B, H, S, hd)
        v = v[:, :, None].expand(B, self.kv_heads, rep, S, hd).reshape(B, H, S, hd)
        causal = torch.triu(torch.full((S, S), float("-inf")), diagonal=1)
        w = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd) + causal
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(w, v).transpose(1, 2).reshape(B, S, D)


class TorchMha(nn.Module):
    """torch.nn.MultiheadAttention with a key padding mask."""
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(D, H, batch_first=True)

    def forward(self, x, mask):
        return self.mha(x, x, x, key_padding_mask=mask < 0.5, need_weights=False)[0]


class QkvHeads(nn.Module):
    """A fused q/k/v projection (`qkv`) split into [B, H, S, D/H] heads."""
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)

    def heads(self, x):
        return (t.view(B, S, H, D // H).transpose(1, 2) for t in self.qkv(x).split(D, dim=2))


class Sdpa(QkvHeads):
    """F.scaled_dot_product_attention, causal or with a boolean mask."""
    def __init__(self, causal):
        super().__init__()
        self.causal = causal

    def forward(self, x, mask):
        q, k, v = self.heads(x)
        if self.causal:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=(mask[:, None, None, :] > 0.5))
        return o.transpose(1, 2).reshape(B, S, D)


class EinsumAttention(nn.Module):
    """Attention written with torch.einsum (ONNX Einsum), no mask."""
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)

    def forward(self, x, mask):
        q, k, v = (t.view(B, S, H, D // H) for t in self.qkv(x).split(D, dim=2))
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * (D // H) ** -0.5
        return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=3), v).reshape(B, S, D)


class T5Attention(nn.Module):
    """T5-style: no scaling at all, a learned position bias [1, H, S, S]."""
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(D, D, bias=False) for _ in range(3))
        self.position_bias = nn.Parameter(torch.randn(1, H, S, S))

    def forward(self, x, mask):
        q, k, v = (t.view(B, S, H, D // H).transpose(1, 2) for t in (self.q(x), self.k(x), self.v(x)))
        scores = torch.matmul(q, k.transpose(3, 2)) + self.position_bias
        return torch.matmul(scores.softmax(-1), v).transpose(1, 2).reshape(B, S, D)


class CrossAttention(nn.Module):
    """Decoder cross-attention: 32 queries over 16 keys of a memory."""
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(D, D) for _ in range(3))

    def forward(self, x, mask):
        memory = x[:, :16] * 2
        split = lambda t: t.view(B, -1, H, D // H).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(memory)), split(self.v(memory))
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(D // H)
        return torch.matmul(F.softmax(scores, dim=-1), v).transpose(1, 2).reshape(B, S, D)


class EncoderLayerCausal(nn.Module):
    """nn.TransformerEncoderLayer with generate_square_subsequent_mask."""
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(D, H, 2 * D, dropout=0.0, batch_first=True)

    def forward(self, x, mask):
        causal = nn.Transformer.generate_square_subsequent_mask(S)
        return self.layer(x, src_mask=causal, is_causal=True)


class BloomAttention(nn.Module):
    """transformers' BloomAttention: ALiBi bias [B*H, 1, S] through baddbmm
    on [B*H, S, D] heads, viewed as [B, H, S, S], masked_fill with a causal
    and padding mask, the probabilities viewed back for bmm with V."""
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)
        slopes = torch.tensor([2 ** (-8 * (i + 1) / H) for i in range(H)])
        alibi = slopes[:, None] * torch.arange(S)[None, :].float()  # [H, S]
        self.register_buffer("alibi", alibi.repeat(B, 1)[:, None, :])  # [B*H, 1, S]

    def forward(self, x, mask):
        hd = D // H
        q, k, v = (t.view(B, S, H, hd).transpose(1, 2).reshape(B * H, S, hd)
                   for t in self.qkv(x).split(D, dim=2))
        scores = self.alibi.baddbmm(batch1=q, batch2=k.transpose(1, 2), beta=1.0, alpha=hd ** -0.5)
        scores = scores.view(B, H, S, S)
        causal = torch.ones(S, S, dtype=torch.bool).triu(1)
        masked = causal[None, None] | (mask[:, None, None, :] < 0.5)
        scores = torch.masked_fill(scores, masked, torch.finfo(scores.dtype).min)
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).view(B * H, S, S)
        return torch.bmm(probs, v).view(B, H, S, hd).transpose(1, 2).reshape(B, S, D)


class TorchMhaCausalPad(nn.Module):
    """torch.nn.MultiheadAttention with a causal attn_mask and a key padding
    mask, which it sums on [B*H, S, S] and views as [B, H, S, S]."""
    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(D, H, batch_first=True)

    def forward(self, x, mask):
        causal = nn.Transformer.generate_square_subsequent_mask(S)
        return self.mha(x, x, x, key_padding_mask=mask < 0.5, attn_mask=causal,
                        need_weights=False)[0]


class SwinWindows(nn.Module):
    """torchvision's shifted_window_attention (Swin V2), in one dimension:
    windows of 8 tokens folded into the batch, cosine scores times a learned
    per-head logit scale, a relative position bias, the shifted-window mask
    built by slice assignment (ONNX ScatterND on constants) and added on the
    scores viewed as [B, windows, H, N, N]."""
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(H, 1, 1)))
        self.bias = nn.Parameter(torch.randn(H, 8, 8))

    def forward(self, x, mask):
        n, w, hd = 8, S // 8, D // H
        x = torch.roll(x, shifts=-4, dims=1).reshape(B * w, n, D)
        q, k, v = (t.reshape(B * w, n, H, hd).transpose(1, 2) for t in self.qkv(x).split(D, dim=2))
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(self.logit_scale, max=math.log(100.0)).exp() + self.bias
        ids = x.new_zeros(S)
        for count, (a, b) in enumerate(((0, -n), (-n, -4), (-4, None))):
            ids[a:b] = count
        ids = ids.view(w, n)
        diff = ids.unsqueeze(1) - ids.unsqueeze(2)
        windows = diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)
        attn = attn.view(B, w, H, n, n) + windows.unsqueeze(1).unsqueeze(0)
        attn = F.softmax(attn.view(-1, H, n, n), dim=-1)
        o = (attn @ v).transpose(1, 2).reshape(B, S, D)
        return torch.roll(o, shifts=4, dims=1)


class HfLlamaMask(QkvHeads):
    """The 4-D mask of transformers' LlamaModel (4.4x,
    _prepare_4d_causal_attention_mask_with_cache_position): a causal float
    mask, then the padding filled in by slice assignment (the TorchScript
    exporter writes ScatterND with updates computed from the input), added
    to eager attention's scores."""
    def forward(self, x, attention_mask):
        q, k, v = self.heads(x)
        min_dtype = torch.finfo(x.dtype).min
        causal_mask = torch.triu(torch.full((S, S), fill_value=min_dtype), diagonal=1)
        causal_mask *= torch.arange(S) > torch.arange(S).reshape(-1, 1)
        causal_mask = causal_mask[None, None, :, :].expand(B, 1, -1, -1).clone()
        n = attention_mask.shape[-1]
        padding_mask = causal_mask[:, :, :, :n] + attention_mask[:, None, None, :]
        padding_mask = padding_mask == 0
        causal_mask[:, :, :, :n] = causal_mask[:, :, :, :n].masked_fill(padding_mask, min_dtype)
        w = torch.matmul(q, k.transpose(2, 3)) * (D // H) ** -0.5 + causal_mask[:, :, :, : k.shape[-2]]
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(w, v).transpose(1, 2).reshape(B, S, D)


class CausalPad4d(QkvHeads):
    """The 4-D mask LLaMA-style models build: a causal float mask expanded
    to [B, 1, S, S], masked_fill'ed where the padding mask is 0, added to
    the scores (softmax in float32)."""
    def forward(self, x, mask):
        q, k, v = self.heads(x)
        fill = torch.finfo(torch.float32).min
        causal = torch.full((S, S), fill).triu(1)[None, None].expand(B, 1, S, S)
        m = causal.masked_fill(mask[:, None, None, :] == 0, fill)
        w = torch.matmul(q, k.transpose(2, 3)) * (D // H) ** -0.5 + m
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(w, v).transpose(1, 2).reshape(B, S, D)


class CausalAndPad(QkvHeads):
    """One boolean mask, causal & padding, applied with masked_fill(~keep)."""
    def forward(self, x, mask):
        q, k, v = self.heads(x)
        keep = torch.ones(S, S, dtype=torch.bool).tril()[None, None] & (mask[:, None, None, :] > 0.5)
        w = (q @ k.transpose(-2, -1) / math.sqrt(D // H)).masked_fill(~keep, float("-inf"))
        return (F.softmax(w, dim=-1) @ v).transpose(1, 2).reshape(B, S, D)


class NeoxAttention(nn.Module):
    """transformers' GPTNeoXAttention (eager, before 4.45): baddbmm on a
    zeros tensor (which the torch.export exporter stores as an initializer),
    viewed to [B, H, S, S], causal where with finfo.min."""
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)
        self.register_buffer("bias", torch.tril(torch.ones(S, S, dtype=torch.bool)))

    def forward(self, x, mask):
        hd = D // H
        q, k, v = (t.view(B, S, H, hd).transpose(1, 2).reshape(B * H, S, hd)
                   for t in self.qkv(x).split(D, dim=2))
        zeros = torch.zeros(B * H, S, S, dtype=q.dtype)
        w = torch.baddbmm(zeros, q, k.transpose(1, 2), beta=1.0, alpha=1 / math.sqrt(hd)).view(B, H, S, S)
        w = torch.where(self.bias, w, torch.tensor(torch.finfo(w.dtype).min))
        p = F.softmax(w, dim=-1).view(B * H, S, S)
        return torch.bmm(p, v).view(B, H, S, hd).transpose(1, 2).reshape(B, S, D)


class RepeatInterleaveGqa(nn.Module):
    """Grouped-query heads by torch.repeat_interleave (2 key/value heads)."""
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(D, D)
        self.kv = nn.Linear(D, D)

    def forward(self, x, mask):
        hd = D // H
        q = self.q(x).view(B, S, H, hd).transpose(1, 2)
        k, v = (t.reshape(B, S, 2, hd).transpose(1, 2).repeat_interleave(H // 2, dim=1)
                for t in self.kv(x).split(D // 2, dim=2))
        w = q @ k.transpose(-1, -2) / math.sqrt(hd)
        return (w.softmax(-1) @ v).transpose(1, 2).reshape(B, S, D)


class MqaExpand(nn.Module):
    """Multi-query attention: one key/value head expanded to all heads."""
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(D, D)
        self.kv = nn.Linear(D, 2 * (D // H))

    def forward(self, x, mask):
        hd = D // H
        q = self.q(x).view(B, S, H, hd).transpose(1, 2)
        k, v = (t[:, None].expand(B, H, S, hd) for t in self.kv(x).split(hd, dim=2))
        w = q @ k.transpose(-1, -2) * hd ** -0.5
        return (w.softmax(-1) @ v).transpose(1, 2).reshape(B, S, D)


class HandSoftmax(QkvHeads):
    """Softmax written out: exp(w - max) / sum, with an additive padding mask."""
    def forward(self, x, mask):
        q, k, v = self.heads(x)
        w = q @ k.transpose(-1, -2) / math.sqrt(D // H) + (1.0 - mask[:, None, None, :]) * -1e9
        e = torch.exp(w - w.amax(dim=-1, keepdim=True))
        return ((e / e.sum(dim=-1, keepdim=True)) @ v).transpose(1, 2).reshape(B, S, D)


class DebertaRelative(QkvHeads):
    """DeBERTa-style content-to-position term: q @ pos^T added to q @ k^T,
    the sum scaled by 1/sqrt(2 D)."""
    def __init__(self):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(S, D))

    def forward(self, x, mask):
        hd = D // H
        q, k, v = self.heads(x)
        pos = self.pos.view(S, H, hd).transpose(0, 1)
        w = (q @ k.transpose(-1, -2) + q @ pos.transpose(-1, -2)) / math.sqrt(2 * hd)
        return (w.softmax(-1) @ v).transpose(1, 2).reshape(B, S, D)


class StrictCausal1e9(QkvHeads):
    """The Annotated Transformer's masked_fill(mask == 0, -1e9) with a
    strictly causal mask from index comparisons (a query sees only earlier
    keys): the first query sees none, and PyTorch averages V there."""
    def forward(self, x, mask):
        q, k, v = self.heads(x)
        w = q @ k.transpose(-1, -2) / math.sqrt(D // H)
        i = torch.arange(S)
        w = w.masked_fill(~(i[None, :] < i[:, None]), -1e9)
        return (w.softmax(-1) @ v).transpose(1, 2).reshape(B, S, D)


class ScoresTransposed(QkvHeads):
    """Scores computed as (K Q^T)^T, probabilities through exp(log_softmax),
    the row maximum subtracted by hand, and a -1e4 padding fill."""
    def forward(self, x, mask):
        q, k, v = self.heads(x)
        w = (k @ q.transpose(-1, -2)).transpose(-1, -2) * (D // H) ** -0.5
        w = w.masked_fill(mask[:, None, None, :] < 0.5, -1e4)
        w = w - w.amax(-1, keepdim=True)
        return (F.log_softmax(w, -1).exp() @ v).transpose(1, 2).reshape(B, S, D)


class NonLocalBlock(nn.Module):
    """SAGAN / non-local attention over [B, C, N] features: the output is
    V P^T, the probabilities on the right (bmm with a permute)."""
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Conv1d(D, D // 4 if i < 2 else D, 1) for i in range(3))

    def forward(self, x, mask):
        f = x.transpose(1, 2)  # [B, C, N]
        q, k, v = self.q(f), self.k(f), self.v(f)
        attn = torch.softmax(torch.bmm(q.permute(0, 2, 1), k), dim=-1)
        return torch.bmm(v, attn.permute(0, 2, 1)).transpose(1, 2)


class Gqa5d(nn.Module):
    """Grouped-query attention by broadcasting in rank 5: the query heads of
    a group in their own dim, K and V unsqueezed there (no repeat_kv), with
    an additive padding mask."""
    def __init__(self):
        super().__init__()
        self.q, self.kv = nn.Linear(D, D), nn.Linear(D, D)  # K, V: H / 2 heads

    def forward(self, x, mask):
        hd, groups = D // H, H // 2
        q = self.q(x).view(B, S, groups, 2, hd).permute(0, 2, 3, 1, 4)
        k, v = (t.view(B, S, groups, hd).transpose(1, 2).unsqueeze(2)
                for t in self.kv(x).split(D // 2, dim=2))
        w = q @ k.transpose(-1, -2) / math.sqrt(hd)
        w = w + (1.0 - mask[:, None, None, None, :]) * -1e4
        o = w.softmax(-1) @ v  # [B, groups, 2, S, hd]
        return o.permute(0, 3, 1, 2, 4).reshape(B, S, D)


class HeadMask(QkvHeads):
    """HF's head mask: the probabilities times a per-head factor (here a
    buffer that switches one head off and halves another), with a padding
    mask."""
    def __init__(self):
        super().__init__()
        hm = torch.ones(H)
        hm[1], hm[2] = 0.0, 0.5
        self.register_buffer("head_mask", hm)

    def forward(self, x, mask):
        q, k, v = self.heads(x)
        w = q @ k.transpose(-1, -2) / math.sqrt(D // H)
        w = w + (1.0 - mask[:, None, None, :]) * -10000.0
        p = w.softmax(-1) * self.head_mask[None, :, None, None]
        return (p @ v).transpose(1, 2).reshape(B, S, D)


class PerKeyScores(QkvHeads):
    """The scores times a learned per-key factor (constant along the
    queries), then a padding mask: the factor moves onto the rows of K."""
    def __init__(self):
        super().__init__()
        self.g = nn.Parameter(torch.rand(1, 1, 1, S) + 0.5)

    def forward(self, x, mask):
        q, k, v = self.heads(x)
        w = (q @ k.transpose(-1, -2)) * self.g / math.sqrt(D // H)
        w = w + (1.0 - mask[:, None, None, :]) * -10000.0
        return (w.softmax(-1) @ v).transpose(1, 2).reshape(B, S, D)


class TemperatureAfterMask(QkvHeads):
    """A temperature computed at run time (one per sequence, from the
    input) dividing the masked scores: Q and the mask are divided by it."""
    def __init__(self):
        super().__init__()
        self.temp = nn.Linear(D, 1)

    def forward(self, x, mask):
        q, k, v = self.heads(x)
        t = F.softplus(self.temp(x.mean(1))) + 0.5  # [B, 1]
        w = q @ k.transpose(-1, -2) / math.sqrt(D // H)
        w = (w + (1.0 - mask[:, None, None, :]) * -10000.0) / t[:, :, None, None]
        return (w.softmax(-1) @ v).transpose(1, 2).reshape(B, S, D)


def check(name, model, inputs, expected_blocks, causal=False):
    """Exports, compiles with --report, runs and compares one model; returns
    whether every expected block was fused and the output matches."""
    model.eval()
    path = f"{WORK}/{name}.onnx"
    names = list(inputs)
    if DYNAMO:
        # One self-contained file (small models), like the TorchScript path.
        kwargs = {"dynamo": True, "external_data": False}
    else:
        kwargs = {"dynamo": False} if "dynamo" in torch.onnx.export.__code__.co_varnames else {}
        kwargs["opset_version"] = OPSET
    torch.onnx.export(model, tuple(inputs.values()), path, input_names=names,
                      output_names=["y"], **kwargs)
    with torch.no_grad():
        ref = model(*inputs.values()).numpy()
    if FIXTURES and expected_blocks == 1:
        os.makedirs(FIXTURES, exist_ok=True)
        import shutil
        prefix = "dynamo-" if DYNAMO else f"opset{OPSET}-" if OPSET != 17 else ""
        shutil.copy(path, f"{FIXTURES}/{prefix}{name}.onnx")
        used = {i.name for i in onnx.load(path).graph.input}
        for n, t in inputs.items():
            if n in used:
                np.save(f"{FIXTURES}/{prefix}{name}.{n}.npy", t.numpy())
        np.save(f"{FIXTURES}/{prefix}{name}.y.npy", ref)
    report = subprocess.run([f"{BIN}/kilnc", path, "-q", "--report", "-o", f"{WORK}/{name}.kiln"],
                            capture_output=True, text=True)
    if report.returncode != 0:
        print(f"| {name} | kilnc failed: {report.stderr.strip()} | | |")
        return False
    m = re.search(r"kiln-fuse-attention: (\d+) fused, (\d+) not fused", report.stdout)
    fused, rejected = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    fused_causal = len(re.findall(r"fused attention: .*, causal,", report.stdout))
    # The exporter drops inputs the graph does not read (e.g. the mask of a
    # causal-only model).
    used = {i.name for i in onnx.load(path).graph.input}
    args = []
    for n, t in inputs.items():
        np.save(f"{WORK}/{name}-{n}.npy", t.numpy())
        if n in used:
            args += ["--input", f"{n}={WORK}/{name}-{n}.npy"]
    subprocess.run([f"{BIN}/kiln-run", f"{WORK}/{name}.kiln", *args, "--output-dir", f"{WORK}/{name}-out"],
                   check=True, capture_output=True)
    got = np.load(f"{WORK}/{name}-out/y.npy")
    # Rows whose keys are all masked with -inf are NaN in PyTorch (and zeros
    # in kiln.attention, as documented): compared only where PyTorch is
    # finite, and counted.
    finite = np.isfinite(ref)
    rel = float(np.abs(got - ref)[finite].max() / np.abs(ref[finite]).max())
    nan_note = f" (PyTorch NaN at {int((~finite).sum())} values; Kiln zeros there: " \
               f"{bool(np.all(got[~finite] == 0))})" if not finite.all() else ""
    if not finite.all() and not np.all(got[~finite] == 0):
        rel = float("inf")
    print(f"| {name} | {fused} of {expected_blocks} | {rejected} | {fused_causal} | {rel:.2g}{nan_note} |", flush=True)
    ok = (fused == expected_blocks and not rejected and rel <= 1e-4
          and fused_causal == (fused if causal else 0))
    if not ok:
        print(report.stdout, file=sys.stderr)
    return ok


def main():
    torch.manual_seed(0)
    cases = [("hf-bert", BertSelfAttention()), ("hf-gpt2", Gpt2Attention()),
             ("llama-gqa", LlamaAttention()), ("torch-mha", TorchMha()),
             ("sdpa-causal", Sdpa(True)), ("sdpa-mask", Sdpa(False)),
             ("einsum", EinsumAttention()), ("t5-bias", T5Attention()),
             ("cross-attn", CrossAttention()), ("encoder-layer-causal", EncoderLayerCausal()),
             ("bloom-alibi", BloomAttention()), ("torch-mha-causal-pad", TorchMhaCausalPad()),
             ("causal-pad-4d", CausalPad4d()),
             ("causal-and-pad", CausalAndPad()), ("neox-causal", NeoxAttention()),
             ("gqa-repeat-interleave", RepeatInterleaveGqa()), ("mqa-expand", MqaExpand()),
             ("hand-softmax", HandSoftmax()), ("deberta-relative", DebertaRelative()),
             ("swin-windows", SwinWindows()), ("hf-llama-mask", HfLlamaMask()),
             ("strict-tril-1e9", StrictCausal1e9()), ("scores-transposed", ScoresTransposed()),
             ("non-local", NonLocalBlock()), ("gqa-5d", Gqa5d()),
             ("head-mask", HeadMask()), ("per-key-scores", PerKeyScores()),
             ("temperature-after-mask", TemperatureAfterMask())]
    # Fused as causal. Not causal-pad-4d, hf-llama-mask and bloom-alibi: their
    # causal part fills with the float minimum and a padding part remains, so
    # the mask stays whole and additive (a causal flag would change the rows
    # of a left-padded batch in which every key is masked; see the -leftpad
    # runs), with the causal_in_mask hint. Nor strict-tril-1e9 (not the
    # causal pattern: the diagonal is masked too).
    causal = {"hf-gpt2", "llama-gqa", "sdpa-causal", "encoder-layer-causal",
              "torch-mha-causal-pad", "causal-and-pad", "neox-causal", "gpt2-small"}
    x = torch.randn(B, S, D)
    mask = torch.ones(B, S)
    mask[1, S - 5:] = 0  # the second sequence ends in padding
    print("| form | blocks fused | not fused | causal | max rel err |")
    print("| --- | ---: | ---: | ---: | ---: |")
    failures = 0
    for name, model in cases:
        failures += not check(name, model, {"x": x, "mask": mask}, 1, name in causal)
    # Left padding: padded queries of a causal batch see only masked keys.
    left = torch.ones(B, S)
    left[0, :3] = 0
    left[1, :5] = 0
    for name, model in [] if FIXTURES else [(n, m) for n, m in cases
                                            if n in ("hf-llama-mask", "causal-pad-4d", "causal-and-pad")]:
        failures += not check(name + "-leftpad", model, {"x": x, "mask": left}, 1,
                              name in causal)
    # The benchmark's BERT-base and GPT-2 small (bench/cpu_models.py).
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cpu_models import torch_model
    for name in [] if FIXTURES else ["bert-base", "gpt2-small"]:
        model, example = torch_model(name, 1)
        failures += not check(name, model, {"x": example}, 12, name in causal)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
