#!/usr/bin/python3
"""PyTorch CPU training-throughput baseline for maskft's C benchmark.

Usage: /usr/bin/python3 bench/bench_torch.py [--threads N] [--steps S] [--shape 15M|110M|135M|all]

Builds a randomly initialised LLaMA (float32, RMSNorm eps 1e-5, interleaved
RoPE theta 10000, SwiGLU FFN, no biases, causal attention, classifier tied to
the embedding) and times full training steps on random tokens:
forward -> cross-entropy over all B*T positions -> backward ->
clip_grad_norm_(1.0) -> AdamW(lr=1e-4, wd=0.01) step -> zero_grad(set_to_none).

Achieved GFLOP/s uses
    FLOPs/token = 6*P_mm + 6*L*T*D
    P_mm = L*(2*D*D + 2*D*KVD + 3*D*Hff) + V*D
(P_mm = weights used in matrix products incl. the classifier; 6*L*T*D counts
causal attention QK^T and AV: forward 2*T*D per layer per token over half the
TxT matrix, backward twice that.)
"""
import argparse
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# name: (dim, n_layers, n_heads, n_kv_heads, hidden_dim, vocab, T, B)
SHAPES = {
    "15M": (288, 6, 6, 6, 768, 32000, 256, 8),
    "110M": (768, 12, 12, 12, 2048, 32000, 256, 4),
    "135M": (576, 30, 9, 3, 1536, 49152, 256, 4),  # SmolLM2-135M
}


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_size, T, theta=10000.0):
    """cos/sin of shape [T, head_size/2] for interleaved (x0,x1),(x2,x3).. pairs."""
    freqs = 1.0 / theta ** (torch.arange(0, head_size, 2).float() / head_size)
    ang = torch.outer(torch.arange(T).float(), freqs)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    # x: [B, H, T, hs]; rotate each adjacent pair (x[2i], x[2i+1]) by angle t*f_i
    xe, xo = x[..., 0::2], x[..., 1::2]
    return torch.stack((xe * cos - xo * sin, xe * sin + xo * cos), dim=-1).flatten(-2)


def causal_attention(q, k, v):
    # Use PyTorch's fused SDPA when available (torch >= 2.0); otherwise the
    # equivalent explicit masked softmax (same math, more memory traffic).
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    return att.masked_fill(mask, float("-inf")).softmax(-1) @ v


class Block(nn.Module):
    def __init__(self, D, H, KVH, Hff):
        super().__init__()
        self.H, self.KVH, self.hs = H, KVH, D // H
        self.attn_norm, self.ffn_norm = RMSNorm(D), RMSNorm(D)
        self.wq = nn.Linear(D, D, bias=False)
        self.wk = nn.Linear(D, KVH * self.hs, bias=False)
        self.wv = nn.Linear(D, KVH * self.hs, bias=False)
        self.wo = nn.Linear(D, D, bias=False)
        self.w1 = nn.Linear(D, Hff, bias=False)  # gate
        self.w3 = nn.Linear(D, Hff, bias=False)  # up
        self.w2 = nn.Linear(Hff, D, bias=False)  # down

    def forward(self, x, cos, sin):
        B, T, D = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.H, self.hs).transpose(1, 2)
        k = self.wk(h).view(B, T, self.KVH, self.hs).transpose(1, 2)
        v = self.wv(h).view(B, T, self.KVH, self.hs).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.KVH != self.H:  # grouped-query attention: share kv heads
            rep = self.H // self.KVH
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        a = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, D)
        x = x + self.wo(a)
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class Llama(nn.Module):
    def __init__(self, D, L, H, KVH, Hff, V, T):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.layers = nn.ModuleList(Block(D, H, KVH, Hff) for _ in range(L))
        self.norm = RMSNorm(D)
        cos, sin = rope_tables(D // H, T)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for p in self.parameters():  # small random init, norms stay at 1
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, tok):
        x = self.emb(tok)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin)
        return self.norm(x) @ self.emb.weight.t()  # tied classifier


def bench(name, steps, B_set=0, T_set=0):
    D, L, H, KVH, Hff, V, T, B = SHAPES[name]
    B, T = B_set or B, T_set or T
    torch.manual_seed(0)
    model = Llama(D, L, H, KVH, Hff, V, T)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def step():
        tok = torch.randint(0, V, (B, T + 1))
        logits = model(tok[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), tok[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up (allocates AdamW state, primes allocator/kernels)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps

    KVD = KVH * (D // H)
    p_mm = L * (2 * D * D + 2 * D * KVD + 3 * D * Hff) + V * D
    flops_tok = 6 * p_mm + 6 * L * T * D
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    print(f"torch shape={name} B={B} T={T} threads={torch.get_num_threads()} "
          f"tok/s={B * T / dt:.0f} ms/step={dt * 1e3:.0f} "
          f"GFLOP/s={flops_tok * B * T / dt / 1e9:.1f} peak_rss_MiB={rss:.0f}",
          flush=True)


def blas_library():
    """Path of the BLAS shared library actually mapped into this process.

    Debian's torch is built against the generic libblas.so.3, so speed depends
    on which provider the system (or LD_LIBRARY_PATH) resolves: the reference
    netlib BLAS was ~20x slower than OpenBLAS here, and the pthread OpenBLAS fights
    torch's OpenMP pool for the cores; the OpenMP OpenBLAS is the fair setup.
    """
    torch.ones(8, 8) @ torch.ones(8, 8)  # make sure BLAS is loaded
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line or "mkl" in line}
    return ",".join(sorted(libs)) or "builtin"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after 1 warm-up)")
    ap.add_argument("--shape", choices=["15M", "110M", "135M", "all"], default="all")
    ap.add_argument("--B", type=int, default=0, help="batch rows (default: the shape's)")
    ap.add_argument("--T", type=int, default=0, help="positions per row (default: 256)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sdpa = "sdpa" if hasattr(F, "scaled_dot_product_attention") else "explicit-softmax"
    print(f"# torch {torch.__version__}, threads={torch.get_num_threads()}, attention={sdpa}")
    blas = blas_library()
    print(f"# blas: {blas}")
    if "openblas" not in blas and "mkl" not in blas:
        print("# WARNING: reference BLAS; torch numbers will be far from representative")
    elif "pthread" in blas:
        print("# WARNING: pthread OpenBLAS oversubscribes cores with torch's OpenMP pool")
    print("# GFLOP/s from FLOPs/token = 6*P_mm + 6*L*T*D, "
          "P_mm = L*(2*D*D + 2*D*KVD + 3*D*Hff) + V*D")
    print("# peak_rss_MiB is process-wide ru_maxrss (cumulative across shapes)")
    for name in (SHAPES if args.shape == "all" else [args.shape]):
        bench(name, args.steps, args.B, args.T)


if __name__ == "__main__":
    main()
