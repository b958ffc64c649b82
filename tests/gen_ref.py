#!/usr/bin/env python3
"""
gen_ref.py -- generate a float64 PyTorch reference fixture for maskft.

Usage (from /work/main):
    /usr/bin/python3 tests/gen_ref.py MODEL.bin OUT.bin
e.g.
    /usr/bin/python3 tests/gen_ref.py /work/shared/assets/llama2c/stories260K.bin \
        tests/data/ref_stories260K.bin

Requires only torch and numpy (Debian python3-torch / python3-numpy); no
network access and no HuggingFace libraries.  Everything is deterministic:
the batch is produced by a fixed LCG, computation runs on one CPU thread in
float64, and the results are cast to float32 when written.

Model input: a llama2.c legacy (version 0) checkpoint:
    int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
    float32 token_embedding[V][D], rms_att[L][D], wq[L][D][D],
            wk[L][KVD][D], wv[L][KVD][D], wo[L][D][D], rms_ffn[L][D],
            w1[L][H][D], w2[L][D][H], w3[L][H][D], rms_final[D],
            freq_cis_real[S][hs/2], freq_cis_imag[S][hs/2]   (ignored here),
            wcls[V][D]   (only if vocab_size < 0, i.e. untied classifier)

What is computed (B=2, T=32):
  * tokens int32 [B][T+1] (token 0 of every row is BOS=1), inputs are
    tokens[:, :T], targets are tokens[:, 1:].
  * weights w[B][T] >= 0; w[b][t] weights the prediction of tokens[b][t+1].
  * loss = sum(w * CE(logits, targets)) / sum(w)
  * one forward + autograd backward -> logits, loss, gradients
  * then n_steps=3 steps of torch.optim.AdamW(lr=1e-3, betas=(0.9,0.999),
    eps=1e-8, weight_decay=0.1) on the same batch, every parameter decayed
    (norm weights included; a tied embedding is a single parameter), with
    torch.nn.utils.clip_grad_norm_(params, 1.0) before each step.
    losses[0] = initial loss, losses[k] = loss with the weights after k steps.

Output fixture format (all little-endian):
    char    magic[8] = "MFTREF01"
    int32   B, T, n_steps
    float32 lr, beta1, beta2, eps, weight_decay, max_grad_norm
    int32   tokens[B][T+1]
    float32 weights[B][T]
    float32 logits[B][T][V]          (initial weights)
    float32 loss                     (initial weights)
    float32 gradients of the initial loss, checkpoint order:
              token_embedding[V][D] (tied: embedding + classifier parts),
              rms_att[L][D], wq[L][D][D], wk[L][KVD][D], wv[L][KVD][D],
              wo[L][D][D], rms_ffn[L][D], w1[L][H][D], w2[L][D][H],
              w3[L][H][D], rms_final[D]
              (+ wcls[V][D] only for an untied checkpoint)
    float32 losses[n_steps+1]
"""
import hashlib
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

B, T, N_STEPS = 2, 32, 3
LR, BETA1, BETA2, EPS, WD, MAX_NORM = 1e-3, 0.9, 0.999, 1e-8, 0.1, 1.0
ROPE_THETA = 10000.0
NORM_EPS = 1e-5

PARAM_NAMES = ["token_embedding", "rms_att", "wq", "wk", "wv", "wo",
               "rms_ffn", "w1", "w2", "w3", "rms_final"]


def read_checkpoint(path):
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = \
        struct.unpack_from("<7i", raw, 0)
    tied = vocab > 0
    vocab = abs(vocab)
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads,
               n_kv=n_kv, vocab=vocab, seq_len=seq_len, tied=tied)
    hs = dim // n_heads
    kvd = n_kv * hs
    floats = np.frombuffer(raw, dtype="<f4", offset=28)
    shapes = [
        ("token_embedding", (vocab, dim)),
        ("rms_att", (n_layers, dim)),
        ("wq", (n_layers, dim, dim)),
        ("wk", (n_layers, kvd, dim)),
        ("wv", (n_layers, kvd, dim)),
        ("wo", (n_layers, dim, dim)),
        ("rms_ffn", (n_layers, dim)),
        ("w1", (n_layers, hidden, dim)),
        ("w2", (n_layers, dim, hidden)),
        ("w3", (n_layers, hidden, dim)),
        ("rms_final", (dim,)),
        ("_freq_real", (seq_len, hs // 2)),
        ("_freq_imag", (seq_len, hs // 2)),
    ]
    if not tied:
        shapes.append(("wcls", (vocab, dim)))
    params = {}
    pos = 0
    for name, shp in shapes:
        n = int(np.prod(shp))
        arr = floats[pos:pos + n]
        if arr.size != n:
            raise SystemExit("checkpoint truncated while reading %s" % name)
        pos += n
        if not name.startswith("_"):
            params[name] = torch.tensor(arr.astype(np.float64).reshape(shp),
                                        requires_grad=True)
    if pos != floats.size:
        raise SystemExit("checkpoint has %d trailing floats" % (floats.size - pos))
    return cfg, params


def rms_norm(x, w):
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + NORM_EPS) * w


def rope(x, n_pos):
    # x: [B, T, nh, hs]; rotate pairs (2i, 2i+1) by pos * theta^(-2i/hs)
    hs = x.shape[-1]
    i = torch.arange(0, hs, 2, dtype=torch.float64)
    inv = ROPE_THETA ** (-i / hs)                        # [hs/2]
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]
    c = torch.cos(ang)[None, :, None, :]                 # [1, T, 1, hs/2]
    s = torch.sin(ang)[None, :, None, :]
    a = x[..., 0::2]
    b = x[..., 1::2]
    ra = a * c - b * s
    rb = a * s + b * c
    return torch.stack((ra, rb), dim=-1).reshape(x.shape)


def forward(cfg, p, toks, lin=None):
    """toks: LongTensor [B, T] -> logits [B, T, V]. lin(x, name, l), if given, computes each of
    the seven projections (x @ p[name][l].T by default): gen_ref_lora.py adds its adapters there."""
    if lin is None:
        def lin(x, name, l):
            return x @ p[name][l].T
    nb, nt = toks.shape
    D, nh, nkv = cfg["dim"], cfg["n_heads"], cfg["n_kv"]
    hs = D // nh
    grp = nh // nkv
    h = p["token_embedding"][toks]                      # [B, T, D]
    causal = torch.ones(nt, nt, dtype=torch.bool).tril()
    for l in range(cfg["n_layers"]):
        xn = rms_norm(h, p["rms_att"][l])
        q = lin(xn, "wq", l).view(nb, nt, nh, hs)
        k = lin(xn, "wk", l).view(nb, nt, nkv, hs)
        v = lin(xn, "wv", l).view(nb, nt, nkv, hs)
        q = rope(q, nt)
        k = rope(k, nt)
        # grouped-query: query head j reads kv head j // grp
        k = k.repeat_interleave(grp, dim=2)
        v = v.repeat_interleave(grp, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, nh, T, hs]
        sc = (q @ k.transpose(-1, -2)) / (hs ** 0.5)
        sc = sc.masked_fill(~causal, float("-inf"))
        att = torch.softmax(sc, dim=-1) @ v                # [B, nh, T, hs]
        att = att.transpose(1, 2).reshape(nb, nt, D)
        h = h + lin(att, "wo", l)
        xn = rms_norm(h, p["rms_ffn"][l])
        g = torch.nn.functional.silu(lin(xn, "w1", l)) * lin(xn, "w3", l)
        h = h + lin(g, "w2", l)
    hn = rms_norm(h, p["rms_final"])
    wcls = p["token_embedding"] if cfg["tied"] else p["wcls"]
    return hn @ wcls.T


def masked_loss(logits, targets, w):
    V = logits.shape[-1]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V),
                                           targets.reshape(-1),
                                           reduction="none")
    wf = w.reshape(-1)
    return (wf * ce).sum() / wf.sum()


def read_tokenizer(path, vocab):
    raw = open(path, "rb").read()
    off = 4
    pieces = []
    for _ in range(vocab):
        _score, ln = struct.unpack_from("<fi", raw, off)
        off += 8
        pieces.append(raw[off:off + ln])
        off += ln
    return pieces


def decode(pieces, ids):
    out = b""
    prev = 1
    for t in ids:
        s = pieces[t]
        if prev == 1 and s.startswith(b" "):
            s = s[1:]
        if s.startswith(b"<0x") and s.endswith(b">") and len(s) == 6:
            s = bytes([int(s[3:5], 16)])
        out += s
        prev = t
    return out.decode("utf-8", errors="replace")


def greedy_check(cfg, p, n_new, tok_path):
    ids = [1]
    with torch.no_grad():
        for _ in range(n_new):
            lg = forward(cfg, p, torch.tensor([ids], dtype=torch.long))
            ids.append(int(lg[0, -1].argmax()))
    print("greedy ids:", ids)
    try:
        pieces = read_tokenizer(tok_path, cfg["vocab"])
        print("greedy text: %r" % decode(pieces, ids[1:]))
    except OSError as e:
        print("(tokenizer not available: %s)" % e)
    return ids


def make_batch(vocab):
    state = 20240601
    toks = np.zeros((B, T + 1), dtype=np.int32)
    for b in range(B):
        for t in range(T + 1):
            state = (state * 1103515245 + 12345) % (1 << 31)
            toks[b, t] = (state >> 16) % vocab
        toks[b, 0] = 1  # BOS
    cycle = [0.0, 0.5, 1.0, 2.0, 1.0]
    w = np.zeros((B, T), dtype=np.float64)
    for b in range(B):
        for t in range(T):
            w[b, t] = cycle[(t + 3 * b) % len(cycle)]
    w[0, :8] = 0.0
    return toks, w


def f32(x):
    return np.ascontiguousarray(
        x.detach().cpu().numpy() if torch.is_tensor(x) else x,
        dtype="<f4").tobytes()


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: %s MODEL.bin OUT.bin" % sys.argv[0])
    model_path, out_path = sys.argv[1], sys.argv[2]
    cfg, p = read_checkpoint(model_path)
    print("config:", cfg)
    names = PARAM_NAMES + ([] if cfg["tied"] else ["wcls"])
    params = [p[n] for n in names]

    tok_path = model_path.rsplit("/", 1)[0] + "/tok512.bin" \
        if "/" in model_path else "tok512.bin"
    greedy_check(cfg, p, 30, tok_path)

    toks_np, w_np = make_batch(cfg["vocab"])
    toks = torch.tensor(toks_np, dtype=torch.long)
    w = torch.tensor(w_np)
    inputs, targets = toks[:, :T], toks[:, 1:]

    logits = forward(cfg, p, inputs)
    loss = masked_loss(logits, targets, w)
    loss.backward()
    logits0 = logits.detach().clone()
    loss0 = float(loss)
    grads0 = [q.grad.detach().clone() for q in params]
    print("loss = %.10f" % loss0)
    print("max |logit| = %.6f" % float(logits0.abs().max()))
    for n, g in zip(names, grads0):
        print("max |grad %-15s| = %.6e" % (n, float(g.abs().max())))

    # optimizer trajectory on the same batch
    opt = torch.optim.AdamW(params, lr=LR, betas=(BETA1, BETA2), eps=EPS,
                            weight_decay=WD)
    losses = [loss0]
    for step in range(1, N_STEPS + 1):
        if step > 1:
            opt.zero_grad(set_to_none=True)
            loss = masked_loss(forward(cfg, p, inputs), targets, w)
            loss.backward()
            assert abs(float(loss) - losses[-1]) <= 1e-12 * abs(losses[-1])
        gn = float(torch.nn.utils.clip_grad_norm_(params, max_norm=MAX_NORM))
        print("step %d: grad norm before clip = %.10f (clipping %s)"
              % (step, gn, "active" if gn > MAX_NORM else "inactive"))
        opt.step()
        with torch.no_grad():
            lk = float(masked_loss(forward(cfg, p, inputs), targets, w))
        losses.append(lk)
    print("losses:", ["%.10f" % x for x in losses])

    blob = bytearray()
    blob += b"MFTREF01"
    blob += struct.pack("<3i", B, T, N_STEPS)
    blob += struct.pack("<6f", LR, BETA1, BETA2, EPS, WD, MAX_NORM)
    blob += np.ascontiguousarray(toks_np, dtype="<i4").tobytes()
    blob += f32(w_np)
    blob += f32(logits0)
    blob += struct.pack("<f", loss0)
    for g in grads0:
        blob += f32(g)
    blob += f32(np.array(losses))
    with open(out_path, "wb") as f:
        f.write(blob)
    print("wrote %s (%d bytes) sha256 %s"
          % (out_path, len(blob), hashlib.sha256(blob).hexdigest()))


if __name__ == "__main__":
    main()
