#!/usr/bin/env python3
"""
gen_ref_lora.py -- a float64 PyTorch reference for LoRA fine-tuning in maskft. Reuses
gen_ref.py's checkpoint reader, model pieces, batch and loss.

Usage (from /work/main):
    /usr/bin/python3 tests/gen_ref_lora.py models/stories260K.bin tests/data/ref_lora_stories260K.bin

What is computed (B=2, T=32, tokens and w from gen_ref.py's make_batch):
  * LoRA as PEFT defines it (no dropout), rank r=4, alpha=8, scale s = alpha/r = 2, on the
    seven projections of every layer, order wq, wk, wv, wo, w1 (gate), w2 (down), w3 (up).
    For a frozen base W (out, in): y = x W^T + s * (x A^T) B^T, A (r, in), B (out, r), applied
    to the raw projection output (q and k before RoPE).
  * A and B are both nonzero, uniform in [-0.05, 0.05] from numpy default_rng(1234), drawn in
    file order (PEFT's B = 0 would make dA = 0 and the test unable to fail). They are rounded
    to float32 before use, so the fixture holds exactly the values computed with.
  * loss = sum(w * CE) / sum(w); autograd gradients w.r.t. every A and B and w.r.t. the tied
    token embedding (total: input-embedding part + classifier part), base weights frozen.
  * checked here, not written: logits of the merged model W + s * B A equal the adapter
    logits to 1e-12, and a central finite difference on a few entries of dA, dB and the
    embedding gradient.

Output fixture format (all little-endian):
    char    magic[8] = "MFTLORA1"
    int32   B, T, rank
    float32 alpha
    int32   tokens[B][T+1]
    float32 weights[B][T]
    for l in 0..L-1, for target in (wq, wk, wv, wo, w1, w2, w3): float32 A[r][in], float32 B[out][r]
    float32 logits[B][T][V]
    float32 loss
    for l, for target (same order): float32 dA[r][in], float32 dB[out][r]
    float32 d_token_embedding[V][D]
  with (in, out): wq (D, NH*hs); wk, wv (D, KV*hs); wo (NH*hs, D); w1, w3 (D, hidden); w2 (hidden, D).
"""
import hashlib
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_ref as R  # noqa: E402

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)
B, T = R.B, R.T
RANK, ALPHA = 4, 8.0
SCALE = ALPHA / RANK
TARGETS = ["wq", "wk", "wv", "wo", "w1", "w2", "w3"]


def forward_lora(cfg, p, ad, toks):
    """gen_ref.forward with every projection routed through lin(); ad=None is the plain model
    (main() asserts that it reproduces gen_ref.forward exactly)."""
    def lin(x, name, l):
        y = x @ p[name][l].T
        if ad is not None:
            A, Bm = ad[l][name]
            y = y + SCALE * (x @ A.T) @ Bm.T
        return y
    return R.forward(cfg, p, toks, lin)


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: %s MODEL.bin OUT.bin" % sys.argv[0])
    cfg, p = R.read_checkpoint(sys.argv[1])
    assert cfg["tied"], "the format has no d_wcls: tied checkpoints only"
    for n, q in p.items():                      # base frozen; the embedding keeps its grad for dx
        q.requires_grad_(n == "token_embedding")
    emb = p["token_embedding"]
    L, V, D = cfg["n_layers"], cfg["vocab"], cfg["dim"]

    rng = np.random.default_rng(seed=1234)
    ad = []                                      # ad[l][target] = (A, B)
    for l in range(L):
        ad.append({})
        for n in TARGETS:
            out_f, in_f = p[n][l].shape
            a, b = (rng.uniform(-0.05, 0.05, size=s).astype(np.float32).astype(np.float64)
                    for s in ((RANK, in_f), (out_f, RANK)))
            ad[l][n] = (torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True))
    lora = [t for l in range(L) for n in TARGETS for t in ad[l][n]]

    toks_np, w_np = R.make_batch(V)
    toks = torch.tensor(toks_np, dtype=torch.long)
    inputs, targets, w = toks[:, :T], toks[:, 1:], torch.tensor(w_np)

    def loss_of():
        return R.masked_loss(forward_lora(cfg, p, ad, inputs), targets, w)

    logits = forward_lora(cfg, p, ad, inputs)
    loss = R.masked_loss(logits, targets, w)
    loss.backward()
    print("loss = %.10f" % float(loss))
    print("max |dA| = %.6e  max |dB| = %.6e  max |d_emb| = %.6e" % (
        max(float(t.grad.abs().max()) for t in lora[0::2]),
        max(float(t.grad.abs().max()) for t in lora[1::2]), float(emb.grad.abs().max())))

    with torch.no_grad():
        # lin() with ad=None must be gen_ref.forward itself, so the adapter path is the only change
        assert torch.equal(forward_lora(cfg, p, None, inputs), R.forward(cfg, p, inputs))
        # merged model W + s * B A, run through gen_ref's own forward
        merged = dict(p)
        for n in TARGETS:
            merged[n] = torch.stack([p[n][l] + SCALE * ad[l][n][1] @ ad[l][n][0] for l in range(L)])
        dm = float((R.forward(cfg, merged, inputs) - logits).abs().max())
        print("merged vs adapter logits: max |diff| = %.3e" % dm)
        assert dm < 1e-12

        # central finite differences at the largest-gradient entry of a few tensors
        h, worst = 1e-5, 0.0
        picks = [ad[0]["wq"][0], ad[0]["wq"][1], ad[2]["wv"][0], ad[1]["wo"][1],
                 ad[4]["w2"][0], ad[3]["w3"][1], emb]
        for t in picks:
            i = np.unravel_index(int(t.grad.abs().argmax()), t.shape)
            x0 = float(t[i])
            t[i] = x0 + h
            lp = float(loss_of())
            t[i] = x0 - h
            lm = float(loss_of())
            t[i] = x0
            fd, g = (lp - lm) / (2 * h), float(t.grad[i])
            worst = max(worst, abs(fd - g) / abs(g))
        print("finite difference (%d entries): max rel err = %.3e" % (len(picks), worst))
        assert worst < 1e-6

    blob = bytearray(b"MFTLORA1")
    blob += struct.pack("<3if", B, T, RANK, ALPHA)
    blob += np.ascontiguousarray(toks_np, dtype="<i4").tobytes()
    blob += R.f32(w_np)
    for t in lora:
        blob += R.f32(t)
    blob += R.f32(logits) + struct.pack("<f", float(loss))
    for t in lora:
        blob += R.f32(t.grad)
    blob += R.f32(emb.grad)
    n_lora = sum(t.numel() for t in lora)
    assert len(blob) == 24 + 4 * (B * (T + 1) + B * T + 2 * n_lora + B * T * V + 1 + V * D)
    with open(sys.argv[2], "wb") as f:
        f.write(blob)
    print("wrote %s (%d bytes) sha256 %s" % (sys.argv[2], len(blob), hashlib.sha256(blob).hexdigest()))


if __name__ == "__main__":
    main()
