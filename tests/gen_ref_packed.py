#!/usr/bin/env python3
"""
gen_ref_packed.py -- a float64 PyTorch reference for two things maskft adds to the plain
forward/backward of gen_ref.py: packed rows (several examples in one row, each attending only
to itself, RoPE positions restarting at 0) and the context anchor (KL(base || model) on chosen
positions). Reuses gen_ref.py's model code.

Usage (from /work/main):
    /usr/bin/python3 tests/gen_ref_packed.py models/stories260K.bin tests/data/ref_packed_stories260K.bin

What is computed (B=2, T=32), with w and the tokens from gen_ref.py's make_batch:
  * pos[B][T]: row 0 packs examples of 12 and 20 positions, row 1 of 7, 16 and 9.
  * aw[B][T] = 1.5 where w == 0, else 0 (the anchor on the untrained positions).
  * base[B][T][V]: "base model" logits, uniform in [-4, 4] from a fixed LCG.
  * J = (sum w CE(logits, targets) + sum aw KL(softmax(base) || softmax(logits))) / sum w,
    with the logits of the packed forward; then dJ/dparams by autograd.

Output (little-endian): char magic[8] = "MFTREF02"; int32 B, T; int32 tokens[B][T+1];
float32 w[B][T], aw[B][T]; int32 pos[B][T]; float32 base[B][T][V]; float32 J, anchor part;
float32 gradients in checkpoint order (as gen_ref.py).
"""
import hashlib
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
import gen_ref as R  # noqa: E402

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)
B, T = R.B, R.T
SEGMENTS = [[12, 20], [7, 16, 9]]


def rope_at(x, pos):
    # x: [B, T, nh, hs]; pos: [B, T] (each token's position inside its own example)
    hs = x.shape[-1]
    i = torch.arange(0, hs, 2, dtype=torch.float64)
    inv = R.ROPE_THETA ** (-i / hs)
    ang = pos.to(torch.float64)[:, :, None] * inv[None, None, :]   # [B, T, hs/2]
    c, s = torch.cos(ang)[:, :, None, :], torch.sin(ang)[:, :, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).reshape(x.shape)


def forward_packed(cfg, p, toks, pos, seg):
    nb, nt = toks.shape
    D, nh, nkv = cfg["dim"], cfg["n_heads"], cfg["n_kv"]
    hs, grp = D // nh, nh // nkv
    # token t may attend to u when u <= t and both belong to the same example
    allow = (seg[:, :, None] == seg[:, None, :]) & torch.ones(nt, nt, dtype=torch.bool).tril()[None]
    h = p["token_embedding"][toks]
    for l in range(cfg["n_layers"]):
        xn = R.rms_norm(h, p["rms_att"][l])
        q = rope_at((xn @ p["wq"][l].T).view(nb, nt, nh, hs), pos)
        k = rope_at((xn @ p["wk"][l].T).view(nb, nt, nkv, hs), pos)
        v = (xn @ p["wv"][l].T).view(nb, nt, nkv, hs)
        k, v = k.repeat_interleave(grp, dim=2), v.repeat_interleave(grp, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        sc = (q @ k.transpose(-1, -2)) / (hs ** 0.5)
        sc = sc.masked_fill(~allow[:, None], float("-inf"))
        att = (torch.softmax(sc, dim=-1) @ v).transpose(1, 2).reshape(nb, nt, D)
        h = h + att @ p["wo"][l].T
        xn = R.rms_norm(h, p["rms_ffn"][l])
        h = h + (torch.nn.functional.silu(xn @ p["w1"][l].T) * (xn @ p["w3"][l].T)) @ p["w2"][l].T
    wcls = p["token_embedding"] if cfg["tied"] else p["wcls"]
    return R.rms_norm(h, p["rms_final"]) @ wcls.T


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: %s MODEL.bin OUT.bin" % sys.argv[0])
    cfg, p = R.read_checkpoint(sys.argv[1])
    names = R.PARAM_NAMES + ([] if cfg["tied"] else ["wcls"])
    params = [p[n] for n in names]
    V = cfg["vocab"]
    toks_np, w_np = R.make_batch(V)
    pos_np = np.zeros((B, T), dtype=np.int32)
    seg_np = np.zeros((B, T), dtype=np.int32)
    for b, lens in enumerate(SEGMENTS):
        assert sum(lens) == T
        t = 0
        for si, n in enumerate(lens):
            pos_np[b, t:t + n] = np.arange(n)
            seg_np[b, t:t + n] = si
            t += n
    aw_np = np.where(w_np == 0.0, 1.5, 0.0)
    state = 777
    base_np = np.zeros(B * T * V)
    for i in range(base_np.size):
        state = (state * 1103515245 + 12345) % (1 << 31)
        base_np[i] = ((state >> 8) / float(1 << 23)) * 8.0 - 4.0
    base_np = base_np.reshape(B, T, V).astype(np.float32).astype(np.float64)  # what the fixture holds

    toks = torch.tensor(toks_np, dtype=torch.long)
    inputs, targets = toks[:, :T], toks[:, 1:]
    w, aw = torch.tensor(w_np), torch.tensor(aw_np)
    logits = forward_packed(cfg, p, inputs, torch.tensor(pos_np), torch.tensor(seg_np))
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")
    lq = torch.log_softmax(torch.tensor(base_np), dim=-1)
    lp = torch.log_softmax(logits, dim=-1)
    kl = (lq.exp() * (lq - lp)).sum(-1)                 # KL(base || model) per position
    anchor = (aw * kl).sum() / w.sum()
    J = (w.reshape(-1) * ce).sum() / w.sum() + anchor
    J.backward()
    print("J = %.10f (anchor part %.10f)" % (float(J), float(anchor)))
    for n, q in zip(names, params):
        print("max |grad %-15s| = %.6e" % (n, float(q.grad.abs().max())))

    blob = bytearray(b"MFTREF02")
    blob += struct.pack("<2i", B, T)
    blob += np.ascontiguousarray(toks_np, dtype="<i4").tobytes()
    blob += R.f32(w_np) + R.f32(aw_np)
    blob += np.ascontiguousarray(pos_np, dtype="<i4").tobytes()
    blob += R.f32(base_np)
    blob += struct.pack("<2f", float(J), float(anchor))
    for q in params:
        blob += R.f32(q.grad)
    with open(sys.argv[2], "wb") as f:
        f.write(blob)
    print("wrote %s (%d bytes) sha256 %s" % (sys.argv[2], len(blob), hashlib.sha256(blob).hexdigest()))


if __name__ == "__main__":
    main()
