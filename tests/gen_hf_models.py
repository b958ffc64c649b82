#!/usr/bin/env python3
"""
gen_hf_models.py -- write tiny Hugging Face model folders and float64 references for maskft.

Usage (from the repository root):
    /usr/bin/python3 tests/gen_hf_models.py

Needs only torch and numpy (Debian's python3-torch / python3-numpy); no transformers, no
safetensors package, no network.  Output: tests/data/hf/<name>/ for the six models below, and
tests/data/hf/README.md.  Everything is deterministic (fixed seeds, one CPU thread, float64),
so two runs write the same bytes.

Every folder is laid out as transformers' save_pretrained() writes it (the target is
transformers 4.51.3 with safetensors 0.5 and huggingface_hub sharding):
    config.json                 json.dumps(diff dict, indent=2, sort_keys=True) + "\\n"
    generation_config.json      {"_from_model_config": true, bos, eos, transformers_version}
    model.safetensors           or model-0000k-of-00002.safetensors + model.safetensors.index.json
    tokenizer.json, tokenizer_config.json   copied from tests/data/tok512-hf/
    ref.bin                     the float64 reference (format below)
    greedy_ids.txt              stories260K only: 30 greedy ids after BOS (id 1)

safetensors, as the Rust library writes it: u64 LE header length N, then N bytes of compact JSON
({"__metadata__":{"format":"pt"}, then the tensors in the order of their data, each
{"dtype":..,"shape":[..],"data_offsets":[begin,end]}), padded with spaces to a multiple of 8;
the data follows, tensors sorted by name (one dtype per file), little-endian, offsets relative
to the end of the header.

ref.bin (little-endian):
    char    magic[8] = "MFTHF001"
    int32   B, T, V, n_tensors
    int32   inputs[B*T]
    int32   targets[B*T]          targets[b][t] = the id that follows inputs[b][t]
    float32 weights[B*T]          w[b][t] weights the prediction of targets[b][t]
    float64 loss                  sum(w * CE(logits, targets)) / sum(w)
    float32 logits[B*T*V]
    n_tensors times, in the model's state_dict order (the order transformers lists them):
        int32 name length, name bytes (no NUL), int32 numel, float32 grad[numel]
    (row-major in the tensor's HF shape; a tied model has model.embed_tokens.weight only,
    whose gradient holds both the embedding and the classifier part)

The model code follows transformers' LlamaForCausalLM, Qwen2ForCausalLM and Qwen3ForCausalLM:
    h = embed[ids]; per layer:
        x = rms(h) * input_layernorm
        q = x Wq^T (+bq), k = x Wk^T (+bk), v = x Wv^T (+bv)      (heads of head_dim)
        Qwen3 only: q = rms_hd(q) * q_norm, k = rms_hd(k) * k_norm  (per head, before RoPE)
        RoPE, rotate_half convention: pairs (i, i + hd/2), angle pos * inv_freq[i]
        query head j reads KV head j // (n_heads / n_kv_heads)
        causal softmax(q k^T / sqrt(head_dim)) v, then o_proj
        h += attn; x = rms(h) * post_attention_layernorm; h += down(silu(gate(x)) * up(x))
    logits = (rms(h) * norm) lm_head^T   (lm_head = embed when tied)
    rms(x) = x / sqrt(mean(x^2) + rms_norm_eps)
    inv_freq[i] = 1 / rope_theta^(2i/head_dim), rescaled for rope_type "llama3" as
    transformers' _compute_llama3_parameters does.
"""
import hashlib
import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_ref as R  # noqa: E402  (the llama2.c-layout model, checkpoint and tokenizer readers)

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "data", "hf")
TOK_DIR = os.path.join(HERE, "data", "tok512-hf")
TOK_FILES = ["tokenizer.json", "tokenizer_config.json"]
STORIES = os.path.join(ROOT, "models", "stories260K.bin")
STORIES_TOK = os.path.join(ROOT, "models", "tok512.bin")
STORIES_REF = os.path.join(HERE, "data", "ref_stories260K.bin")
STORIES_TEXT = os.path.join(HERE, "data", "stories260K_greedy200.txt")

TRANSFORMERS_VERSION = "4.51.3"
B, T = 2, 12
VOCAB = 512
BOS, EOS = 1, 2
N_GREEDY = 30

# loss weights: 0 / 0.5 / 1 / 2, at least 3 zeros per row (row 0 starts like a masked prompt)
WEIGHTS = [
    [0.0, 0.0, 0.0, 1.0, 0.5, 2.0, 1.0, 0.0, 1.0, 2.0, 0.5, 1.0],
    [1.0, 0.0, 2.0, 0.5, 0.0, 1.0, 0.0, 1.0, 2.0, 0.5, 1.0, 0.0],
]

DTYPES = {  # safetensors name -> (torch dtype, bytes, config torch_dtype)
    "F32": (torch.float32, 4, "float32"),
    "F16": (torch.float16, 2, "float16"),
    "BF16": (torch.bfloat16, 2, "bfloat16"),
}


# ----------------------------------------------------------------------------------------------
# config.json as transformers 4.51.3 writes it: every attribute the model's config class sets
# in __init__, plus those PretrainedConfig attributes that differ from their defaults
# (architectures, bos/eos_token_id, tie_word_embeddings, torch_dtype), sorted.

def llama_config(hidden, inter, layers, heads, kv, theta, eps, max_pos, tied, dtype,
                 rope_scaling=None):
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "head_dim": hidden // heads,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "max_position_embeddings": max_pos,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv,
        "pretraining_tp": 1,
        "rms_norm_eps": eps,
        "rope_scaling": rope_scaling,
        "rope_theta": theta,
        "tie_word_embeddings": tied,
        "torch_dtype": dtype,
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def qwen2_config(hidden, inter, layers, heads, kv, theta, eps, max_pos, tied, dtype):
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "max_position_embeddings": max_pos,
        "max_window_layers": 28,
        "model_type": "qwen2",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv,
        "rms_norm_eps": eps,
        "rope_scaling": None,
        "rope_theta": theta,
        "sliding_window": 4096,
        "tie_word_embeddings": tied,
        "torch_dtype": dtype,
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": VOCAB,
    }


def qwen3_config(hidden, inter, layers, heads, kv, head_dim, theta, eps, max_pos, tied, dtype):
    # Qwen3's config.json is Qwen2's with its own names, an explicit head_dim and attention_bias
    c = qwen2_config(hidden, inter, layers, heads, kv, theta, eps, max_pos, tied, dtype)
    c.update({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "head_dim": head_dim,
              "attention_bias": False})
    return c


def json_text(obj):
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def generation_config(cfg):
    return {"_from_model_config": True, "bos_token_id": cfg["bos_token_id"],
            "eos_token_id": cfg["eos_token_id"], "transformers_version": TRANSFORMERS_VERSION}


# ----------------------------------------------------------------------------------------------
# the architecture, read from config.json as a loader would

def arch(cfg):
    mt = cfg["model_type"]
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    a = dict(
        D=D, F=cfg["intermediate_size"], L=cfg["num_hidden_layers"], H=H,
        KV=cfg.get("num_key_value_heads") or H,
        hd=cfg.get("head_dim") or D // H,
        V=cfg["vocab_size"], eps=cfg["rms_norm_eps"], theta=float(cfg["rope_theta"]),
        rope_scaling=cfg.get("rope_scaling"), tied=cfg["tie_word_embeddings"],
        qkv_bias=False, o_bias=False, mlp_bias=False, qk_norm=False)
    if mt == "llama":
        a["qkv_bias"] = a["o_bias"] = cfg.get("attention_bias", False)
        a["mlp_bias"] = cfg.get("mlp_bias", False)
    elif mt == "qwen2":
        a["qkv_bias"] = True            # Qwen2Attention: q/k/v bias=True, o_proj bias=False
    elif mt == "qwen3":
        a["qkv_bias"] = a["o_bias"] = cfg.get("attention_bias", False)
        a["qk_norm"] = True
    else:
        raise ValueError(mt)
    return a


def param_specs(a):
    """(name, shape, kind) in state_dict order; kind picks the random init."""
    D, F, H, KV, hd, V = a["D"], a["F"], a["H"], a["KV"], a["hd"], a["V"]
    s = [("model.embed_tokens.weight", (V, D), "emb")]
    for l in range(a["L"]):
        p = "model.layers.%d." % l
        for proj, rows in (("q", H * hd), ("k", KV * hd), ("v", KV * hd)):
            s.append((p + "self_attn.%s_proj.weight" % proj, (rows, D), "mat"))
            if a["qkv_bias"]:
                s.append((p + "self_attn.%s_proj.bias" % proj, (rows,), "bias"))
        s.append((p + "self_attn.o_proj.weight", (D, H * hd), "mat"))
        if a["o_bias"]:
            s.append((p + "self_attn.o_proj.bias", (D,), "bias"))
        if a["qk_norm"]:
            s.append((p + "self_attn.q_norm.weight", (hd,), "norm"))
            s.append((p + "self_attn.k_norm.weight", (hd,), "norm"))
        for proj, shp in (("gate", (F, D)), ("up", (F, D)), ("down", (D, F))):
            s.append((p + "mlp.%s_proj.weight" % proj, shp, "mat"))
            if a["mlp_bias"]:
                s.append((p + "mlp.%s_proj.bias" % proj, (shp[0],), "bias"))
        s.append((p + "input_layernorm.weight", (D,), "norm"))
        s.append((p + "post_attention_layernorm.weight", (D,), "norm"))
    s.append(("model.norm.weight", (D,), "norm"))
    if not a["tied"]:
        s.append(("lm_head.weight", (V, D), "mat"))
    return s


def rope_inv_freq(a, scaled=True):
    hd = a["hd"]
    inv = 1.0 / (a["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = a["rope_scaling"]
    if not scaled or rs is None:
        return inv
    rt = rs.get("rope_type", rs.get("type"))
    if rt == "default":
        return inv
    if rt != "llama3":
        raise ValueError("rope_type %r not implemented" % rt)
    # transformers.modeling_rope_utils._compute_llama3_parameters
    factor = rs["factor"]
    low, high = rs["low_freq_factor"], rs["high_freq_factor"]
    old_ctx = rs["original_max_position_embeddings"]
    low_wavelen = old_ctx / low
    high_wavelen = old_ctx / high
    wavelen = 2 * math.pi / inv
    inv_l = torch.where(wavelen > low_wavelen, inv / factor, inv)
    smooth = (old_ctx / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
    medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, inv_l)


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def hf_forward(a, P, ids):
    """ids LongTensor [B, T] -> logits [B, T, V] (float64)."""
    nb, nt = ids.shape
    H, KV, hd, eps = a["H"], a["KV"], a["hd"], a["eps"]
    rep = H // KV
    inv = rope_inv_freq(a)
    freqs = torch.arange(nt, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = torch.cos(emb), torch.sin(emb)                       # [T, hd]
    causal = torch.ones(nt, nt, dtype=torch.bool).tril()

    def lin(x, name):
        y = x @ P[name + ".weight"].T
        b = P.get(name + ".bias")
        return y if b is None else y + b

    h = P["model.embed_tokens.weight"][ids]
    for l in range(a["L"]):
        p = "model.layers.%d." % l
        x = rms_norm(h, P[p + "input_layernorm.weight"], eps)
        q = lin(x, p + "self_attn.q_proj").view(nb, nt, H, hd)
        k = lin(x, p + "self_attn.k_proj").view(nb, nt, KV, hd)
        v = lin(x, p + "self_attn.v_proj").view(nb, nt, KV, hd)
        if a["qk_norm"]:
            q = rms_norm(q, P[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, P[p + "self_attn.k_norm.weight"], eps)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))            # [B, heads, T, hd]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k[:, :, None].expand(nb, KV, rep, nt, hd).reshape(nb, H, nt, hd)
        v = v[:, :, None].expand(nb, KV, rep, nt, hd).reshape(nb, H, nt, hd)
        sc = (q @ k.transpose(-1, -2)) * hd ** -0.5
        sc = sc.masked_fill(~causal, float("-inf"))
        att = (torch.softmax(sc, dim=-1) @ v).transpose(1, 2).reshape(nb, nt, H * hd)
        h = h + lin(att, p + "self_attn.o_proj")
        x = rms_norm(h, P[p + "post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(lin(x, p + "mlp.gate_proj")) * lin(x, p + "mlp.up_proj")
        h = h + lin(g, p + "mlp.down_proj")
    h = rms_norm(h, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if a["tied"] else P["lm_head.weight"]
    return h @ head.T


def masked_loss(logits, targets, w):
    V = logits.shape[-1]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                                           reduction="none")
    wf = w.reshape(-1)
    return (wf * ce).sum() / wf.sum()


# ----------------------------------------------------------------------------------------------
# safetensors

def to_storage(t, dt):
    """float64 tensor -> (bytes, float64 tensor of the stored values)."""
    tt = t.detach().to(DTYPES[dt][0]).contiguous()
    if dt == "F32":
        raw = tt.numpy().astype("<f4").tobytes()
    elif dt == "F16":
        raw = tt.numpy().astype("<f2").tobytes()
    else:
        raw = tt.view(torch.int16).numpy().astype("<i2").tobytes()
    return raw, tt.to(torch.float64)


def from_storage(raw, dt, shape):
    if dt == "F32":
        arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    elif dt == "F16":
        arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
    elif dt == "BF16":
        u = np.frombuffer(raw, dtype="<u2").astype("<u4") << 16
        arr = u.view("<f4").astype(np.float64)
    else:
        raise ValueError(dt)
    return torch.tensor(arr.reshape(shape))


def safetensors_bytes(tensors, dt):
    """tensors: dict name -> float64 tensor holding storable values."""
    names = sorted(tensors)          # safetensors sorts by dtype (one here), then by name
    header = {"__metadata__": {"format": "pt"}}
    blobs, off = [], 0
    for n in names:
        raw, back = to_storage(tensors[n], dt)
        assert torch.equal(back, tensors[n]), n
        header[n] = {"dtype": dt, "shape": list(tensors[n].shape),
                     "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    return struct.pack("<Q", len(hj)) + hj + b"".join(blobs)


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack_from("<Q", raw, 0)[0]
    header = json.loads(raw[8:8 + n].decode())
    assert n % 8 == 0
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b0, b1 = info["data_offsets"]
        out[name] = from_storage(raw[base + b0:base + b1], info["dtype"], info["shape"])
    return out


def shard_plan(specs, nbytes, max_shard_size):
    """huggingface_hub.split_torch_state_dict_into_shards: greedy, in state_dict order."""
    shards, cur, cur_size = [], [], 0
    for name, shape, _ in specs:
        size = int(np.prod(shape)) * nbytes
        if cur and cur_size + size > max_shard_size:
            shards.append(cur)
            cur, cur_size = [], 0
        cur.append(name)
        cur_size += size
    shards.append(cur)
    return shards


def write_weights(folder, specs, P, dt, max_shard_size):
    """save_pretrained(max_shard_size=...): one file when everything fits, else shards."""
    nbytes = DTYPES[dt][1]
    total = sum(int(np.prod(s)) * nbytes for _, s, _ in specs)
    if max_shard_size is None or total <= max_shard_size:
        with open(os.path.join(folder, "model.safetensors"), "wb") as f:
            f.write(safetensors_bytes({n: P[n] for n, _, _ in specs}, dt))
        return 1
    shards = shard_plan(specs, nbytes, max_shard_size)
    n_shards = len(shards)
    weight_map = {}
    for i, names in enumerate(shards):
        fn = "model-%05d-of-%05d.safetensors" % (i + 1, n_shards)
        with open(os.path.join(folder, fn), "wb") as f:
            f.write(safetensors_bytes({n: P[n] for n in names}, dt))
        for n in names:
            weight_map[n] = fn
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        f.write(json_text(index))
    return n_shards


def load_folder(folder):
    """Read config.json and the weights back, as a loader would."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    idx = os.path.join(folder, "model.safetensors.index.json")
    P = {}
    if os.path.exists(idx):
        wm = json.load(open(idx))["weight_map"]
        for fn in sorted(set(wm.values())):
            part = read_safetensors(os.path.join(folder, fn))
            assert set(part) == {n for n, f in wm.items() if f == fn}
            P.update(part)
    else:
        P = read_safetensors(os.path.join(folder, "model.safetensors"))
    return cfg, P


# ----------------------------------------------------------------------------------------------
# llama2.c (stories260K)

def permute_rope(w, n_heads, dim1, dim2):
    # llama2.c export.py / transformers convert_llama_weights_to_hf.py
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def llama2c_to_hf(hp, w):
    D, H, KV = hp["dim"], hp["n_heads"], hp["n_kv"]
    kvd = KV * (D // H)
    P = {"model.embed_tokens.weight": w["token_embedding"]}
    for l in range(hp["n_layers"]):
        p = "model.layers.%d." % l
        P[p + "self_attn.q_proj.weight"] = permute_rope(w["wq"][l], H, D, D)
        P[p + "self_attn.k_proj.weight"] = permute_rope(w["wk"][l], KV, kvd, D)
        P[p + "self_attn.v_proj.weight"] = w["wv"][l]
        P[p + "self_attn.o_proj.weight"] = w["wo"][l]
        P[p + "mlp.gate_proj.weight"] = w["w1"][l]
        P[p + "mlp.up_proj.weight"] = w["w3"][l]
        P[p + "mlp.down_proj.weight"] = w["w2"][l]
        P[p + "input_layernorm.weight"] = w["rms_att"][l]
        P[p + "post_attention_layernorm.weight"] = w["rms_ffn"][l]
    P["model.norm.weight"] = w["rms_final"]
    return {k: v.contiguous() for k, v in P.items()}


def greedy(a, P, n):
    ids = [BOS]
    with torch.no_grad():
        for _ in range(n):
            lg = hf_forward(a, P, torch.tensor([ids], dtype=torch.long))
            ids.append(int(lg[0, -1].argmax()))
    return ids[1:]


# ----------------------------------------------------------------------------------------------
# reference, checks, output

def random_params(specs, dt, seed):
    g = torch.Generator().manual_seed(seed)
    P = {}
    for name, shape, kind in specs:
        x = torch.randn(shape, generator=g, dtype=torch.float64)
        if kind == "emb":
            x = 0.3 * x
        elif kind == "norm":
            x = 1.0 + 0.1 * x
        else:                           # "mat", "bias"
            x = 0.1 * x
        P[name] = to_storage(x, dt)[1]  # round to the storage dtype first
    return P


def random_ids(seed, n, lo=3, hi=VOCAB):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(lo, hi, (n,), generator=g, dtype=torch.long)


def reference(a, P, toks, w):
    inputs, targets = toks[:, :-1], toks[:, 1:]
    leaves = {n: t.clone().requires_grad_(True) for n, t in P.items()}
    logits = hf_forward(a, leaves, inputs)
    loss = masked_loss(logits, targets, w)
    loss.backward()
    grads = {n: t.grad.detach().clone() for n, t in leaves.items()}
    return inputs, targets, logits.detach(), float(loss), grads


def finite_diff_check(a, P, toks, w, grads, names, seed, per_tensor=3, h=1e-3, rtol=1e-6):
    inputs, targets = toks[:, :-1], toks[:, 1:]
    g = torch.Generator().manual_seed(seed)
    worst, lines = 0.0, []
    for name in names:
        gr = grads[name].reshape(-1)
        # random elements among those whose gradient is not negligible (some embedding rows
        # of an untied model get exactly zero: relative error means nothing there)
        cand = torch.nonzero(gr.abs() > 1e-3 * float(gr.abs().max())).reshape(-1)
        pick = cand[torch.randperm(cand.numel(), generator=g)[:per_tensor]]
        flat = P[name].view(-1)
        for j in pick.tolist():
            old = float(flat[j])
            f = {}
            with torch.no_grad():
                for k in (-2, -1, 1, 2):
                    flat[j] = old + k * h
                    f[k] = float(masked_loss(hf_forward(a, P, inputs), targets, w))
                flat[j] = old
            # fourth-order central difference: truncation O(h^4), rounding ~1e-15 * loss / h,
            # both far below 1e-6 relative even for gradients of 1e-5 (the two-point formula
            # with h = 1e-5 leaves ~1e-10 of rounding noise, too much for the small ones)
            fd = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h)
            ag = float(gr[j])
            rel = abs(fd - ag) / max(abs(ag), 1e-300)
            worst = max(worst, rel)
            lines.append("    %s[%d]: autograd %+.12e  fd %+.12e  rel %.2e"
                         % (name, j, ag, fd, rel))
            assert rel < rtol, lines[-1]
    return worst, lines


def f32(x):
    return np.ascontiguousarray(x.detach().numpy() if torch.is_tensor(x) else x,
                                dtype="<f4").tobytes()


def ref_bytes(specs, inputs, targets, w, logits, loss, grads, V):
    nb, nt = inputs.shape
    out = bytearray(b"MFTHF001")
    out += struct.pack("<4i", nb, nt, V, len(specs))
    out += np.ascontiguousarray(inputs.numpy(), dtype="<i4").tobytes()
    out += np.ascontiguousarray(targets.numpy(), dtype="<i4").tobytes()
    out += f32(w)
    out += struct.pack("<d", loss)
    out += f32(logits)
    for name, shape, _ in specs:
        g = grads[name]
        assert tuple(g.shape) == tuple(shape)
        nm = name.encode()
        out += struct.pack("<i", len(nm)) + nm + struct.pack("<i", g.numel()) + f32(g)
    return bytes(out)


def check_stories_against_ref(a, P):
    """Extra check: the converted folder reproduces tests/data/ref_stories260K.bin's logits
    (gen_ref.py's independent llama2.c-layout model, stored as float32)."""
    if not os.path.exists(STORIES_REF):
        return "skipped (no %s)" % os.path.relpath(STORIES_REF, ROOT)
    raw = open(STORIES_REF, "rb").read()
    assert raw[:8] == b"MFTREF01"
    rb, rt, _ = struct.unpack_from("<3i", raw, 8)
    off = 8 + 12 + 24
    toks = np.frombuffer(raw, dtype="<i4", count=rb * (rt + 1), offset=off).reshape(rb, rt + 1)
    off += 4 * rb * (rt + 1) + 4 * rb * rt
    lg = np.frombuffer(raw, dtype="<f4", count=rb * rt * a["V"], offset=off)
    with torch.no_grad():
        mine = hf_forward(a, P, torch.tensor(toks[:, :rt].astype(np.int64)))
    d = float((mine.reshape(-1) - torch.tensor(lg.astype(np.float64))).abs().max())
    assert d < 1e-4, d
    return "max |logit diff| %.2e over B=%d T=%d (float32-stored reference)" % (d, rb, rt)


MODELS = [
    dict(name="llama-f32", dtype="F32", seed=101, max_shard_size=None,
         cfg=llama_config(32, 40, 2, 4, 2, 10000.0, 1e-5, 64, False, "float32"),
         fd=["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
             "model.layers.0.input_layernorm.weight", "lm_head.weight"]),
    dict(name="llama3-bf16", dtype="BF16", seed=102, max_shard_size=None,
         cfg=llama_config(32, 40, 2, 4, 2, 500000.0, 1e-5, 64, True, "bfloat16",
                          rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                        "original_max_position_embeddings": 16}),
         fd=["model.embed_tokens.weight", "model.layers.1.self_attn.q_proj.weight",
             "model.layers.0.self_attn.k_proj.weight"]),
    # save_pretrained(max_shard_size="60KB"): two files, the split falls inside layer 0
    dict(name="smollm-f16", dtype="F16", seed=103, max_shard_size=60000, files=2,
         cfg=llama_config(48, 64, 2, 3, 1, 100000.0, 1e-5, 64, True, "float16"),
         fd=["model.embed_tokens.weight", "model.layers.0.self_attn.k_proj.weight",
             "model.layers.1.mlp.down_proj.weight"]),
    dict(name="qwen2-bf16", dtype="BF16", seed=104, max_shard_size=None,
         cfg=qwen2_config(32, 40, 2, 4, 2, 1000000.0, 1e-6, 64, True, "bfloat16"),
         fd=["model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.k_proj.bias",
             "model.layers.0.self_attn.v_proj.bias", "model.layers.1.self_attn.q_proj.weight"]),
    dict(name="qwen3-f32", dtype="F32", seed=105, max_shard_size=None,
         cfg=qwen3_config(48, 40, 2, 4, 2, 16, 1000000.0, 1e-6, 64, False, "float32"),
         fd=["model.layers.0.self_attn.q_norm.weight", "model.layers.1.self_attn.k_norm.weight",
             "model.layers.0.self_attn.o_proj.weight"]),
    dict(name="stories260K", dtype="F32", seed=106, max_shard_size=None, cfg=None,
         fd=["model.layers.0.self_attn.q_proj.weight", "model.layers.4.self_attn.k_proj.weight",
             "model.embed_tokens.weight"]),
]


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def main():
    os.makedirs(OUT, exist_ok=True)
    wt = torch.tensor(WEIGHTS)
    assert wt.shape == (B, T) and all(sum(1 for x in r if x == 0) >= 3 for r in WEIGHTS)
    summary = []
    for m in MODELS:
        name, dt = m["name"], m["dtype"]
        folder = os.path.join(OUT, name)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder)
        print("== %s" % name)
        notes = []
        if name == "stories260K":
            hp, l2c = R.read_checkpoint(STORIES)
            assert hp["tied"], "expected a tied (positive vocab_size) checkpoint"
            l2c = {k: v.detach() for k, v in l2c.items()}
            cfg = llama_config(hp["dim"], hp["hidden"], hp["n_layers"], hp["n_heads"],
                               hp["n_kv"], 10000.0, 1e-5, hp["seq_len"], True, "float32")
            P0 = llama2c_to_hf(hp, l2c)
        else:
            cfg = m["cfg"]
            P0 = random_params(param_specs(arch(cfg)), dt, m["seed"])
        a = arch(cfg)
        specs = param_specs(a)
        assert [n for n, _, _ in specs] == list(P0), "state_dict order"
        for n, s, _ in specs:
            assert tuple(P0[n].shape) == tuple(s), n

        with open(os.path.join(folder, "config.json"), "w") as f:
            f.write(json_text(cfg))
        with open(os.path.join(folder, "generation_config.json"), "w") as f:
            f.write(json_text(generation_config(cfg)))
        n_files = write_weights(folder, specs, P0, dt, m["max_shard_size"])
        assert n_files == m.get("files", 1), n_files
        for fn in TOK_FILES:
            shutil.copyfile(os.path.join(TOK_DIR, fn), os.path.join(folder, fn))

        # everything below uses the weights as read back from the folder
        cfg_r, P = load_folder(folder)
        assert cfg_r == cfg
        assert list(sorted(P)) == sorted(P0) and all(torch.equal(P[n], P0[n]) for n in P0)
        P = {n: P[n] for n, _, _ in specs}

        if name == "stories260K":
            gids = greedy(a, P, N_GREEDY)
            assert all(3 <= t < VOCAB for t in gids)
            with open(os.path.join(folder, "greedy_ids.txt"), "w") as f:
                f.write(" ".join(str(t) for t in gids) + "\n")
            text = R.decode(R.read_tokenizer(STORIES_TOK, VOCAB), gids)
            expect = open(STORIES_TEXT, encoding="utf-8").read()
            assert expect.startswith(text), (text, expect[:200])
            notes.append("greedy 30 ids decode to %r (a prefix of stories260K_greedy200.txt)"
                         % text)
            # row 0: BOS + real text (the greedy continuation); row 1: BOS + random ids
            row0 = torch.tensor([BOS] + gids[:T])
            row1 = torch.cat((torch.tensor([BOS]), random_ids(m["seed"], T)))
            toks = torch.stack((row0, row1))
            # check (a): HF layout + rotate_half == llama2.c layout + interleaved RoPE
            with torch.no_grad():
                ext = torch.cat((toks, random_ids(m["seed"] + 1, 2 * 40).view(2, 40)), dim=1)
                d = float((hf_forward(a, P, ext) - R.forward(hp, l2c, ext)).abs().max())
            assert d < 1e-9, d
            notes.append("check (a): HF folder (rotate_half) vs llama2.c layout (interleaved): "
                         "max |logit diff| %.2e over B=2 T=%d" % (d, ext.shape[1]))
            notes.append("extra: vs tests/data/ref_stories260K.bin: "
                         + check_stories_against_ref(a, P))
        else:
            toks = random_ids(m["seed"], B * (T + 1)).view(B, T + 1)
        if a["rope_scaling"] is not None:
            inv0, inv1 = rope_inv_freq(a, scaled=False), rope_inv_freq(a)
            changed = int((inv0 != inv1).sum())
            assert changed >= 1
            notes.append("check (c): llama3 scaling changes %d of %d inverse frequencies "
                         "(head_dim %d): default %s -> scaled %s"
                         % (changed, inv0.numel(), a["hd"],
                            ["%.9g" % x for x in inv0.tolist()],
                            ["%.9g" % x for x in inv1.tolist()]))

        inputs, targets, logits, loss, grads = reference(a, P, toks, wt)
        worst, lines = finite_diff_check(a, P, toks, wt, grads, m["fd"], m["seed"] + 7)
        notes.append("check (b): %d finite-difference elements over %d tensors, worst rel "
                     "error %.2e" % (len(lines), len(m["fd"]), worst))
        blob = ref_bytes(specs, inputs, targets, wt, logits, loss, grads, a["V"])
        with open(os.path.join(folder, "ref.bin"), "wb") as f:
            f.write(blob)
        size = sum(os.path.getsize(os.path.join(folder, fn)) for fn in os.listdir(folder))
        print("  loss %.12f  |logits| max %.4f  params %d  folder %d bytes"
              % (loss, float(logits.abs().max()), sum(P[n].numel() for n in P), size))
        for n in notes:
            print("  " + n)
        for ln in lines:
            print(ln)
        summary.append(dict(name=name, loss=loss, size=size, sha=sha256(
            os.path.join(folder, "ref.bin")), files=sorted(os.listdir(folder)),
            nparams=sum(P[n].numel() for n in P), notes=notes))
    write_readme(summary)
    total = sum(s["size"] for s in summary)
    print("total %d bytes" % total)


def write_readme(summary):
    desc = {
        "llama-f32": "LlamaForCausalLM, F32, untied (`lm_head.weight` stored), hidden 32, "
                     "intermediate 40, 2 layers, 4 heads / 2 KV heads (head_dim 8), rope_theta "
                     "10000, rms_norm_eps 1e-5, random weights.",
        "llama3-bf16": "LlamaForCausalLM, BF16, tied, same shape as llama-f32, rope_theta "
                       "500000 with `rope_scaling` llama3 (factor 8, low/high_freq_factor 1/4, "
                       "original_max_position_embeddings 16: the scaling divides three of the "
                       "four inverse frequencies by 8 and smooths the first, whose wavelength "
                       "2*pi lies between 16/4 and 16/1; none stays unchanged), random weights.",
        "smollm-f16": "LlamaForCausalLM, F16, tied, hidden 48, intermediate 64, 2 layers, 3 heads "
                      "/ 1 KV head (head_dim 16), rope_theta 100000 (SmolLM2-like), sharded into "
                      "`model-00001-of-00002.safetensors` + `model-00002-of-00002.safetensors` "
                      "with `model.safetensors.index.json` (split inside layer 0), random weights.",
        "qwen2-bf16": "Qwen2ForCausalLM, BF16, tied, biases on q/k/v_proj (none on o_proj), "
                      "hidden 32, intermediate 40, 2 layers, 4 heads / 2 KV heads, rope_theta "
                      "1e6, rms_norm_eps 1e-6, random weights.",
        "qwen3-f32": "Qwen3ForCausalLM, F32, untied, hidden 48, intermediate 40, 2 layers, "
                     "4 heads / 2 KV heads with head_dim 16 (q_proj 64x48, o_proj 48x64), "
                     "q_norm/k_norm (RMSNorm over head_dim, per head, after the projection and "
                     "before RoPE), no biases, rope_theta 1e6, rms_norm_eps 1e-6, random weights.",
        "stories260K": "`models/stories260K.bin` (llama2.c) converted to LlamaForCausalLM, F32, "
                       "tied, dim 64, hidden 172, 5 layers, 8 heads / 4 KV heads, "
                       "max_position_embeddings 512; q_proj/k_proj rows permuted from llama2.c's "
                       "interleaved RoPE pairs to transformers' rotate_half layout "
                       "(`w.view(n_heads, hd/2, 2, dim).transpose(1, 2).reshape(dim_out, dim)`, "
                       "n_heads = KV heads for k_proj). `greedy_ids.txt`: the first 30 greedy ids "
                       "after BOS (they decode to the start of `../stories260K_greedy200.txt`).",
    }
    L = ["# Hugging Face model folders", "",
         "Written by `tests/gen_hf_models.py` (run from the repository root:",
         "`/usr/bin/python3 tests/gen_hf_models.py`; Debian's python3-torch, float64, fixed seeds;",
         "two runs write the same bytes). No transformers or safetensors package was used: the",
         "script implements the models from transformers' definitions and writes safetensors",
         "itself. Each folder is laid out as transformers %s `save_pretrained` writes it:"
         % TRANSFORMERS_VERSION,
         "`config.json`, `generation_config.json`, the weights (`model.safetensors`, or shards and",
         "`model.safetensors.index.json`), and the tokenizer files copied from `../tok512-hf/`",
         "(vocabulary 512, `<unk>`=0, `<s>`=1, `</s>`=2). Random weights: normal(0, 0.1)",
         "matrices and biases, normal(0, 0.3) embeddings, 1 + normal(0, 0.1) norms, rounded to",
         "the storage dtype before any computation.", "",
         "| folder | what | params | bytes | ref.bin sha256 |", "|---|---|---|---|---|"]
    for s in summary:
        L.append("| `%s` | %s | %d | %d | `%s` |"
                 % (s["name"], desc[s["name"]], s["nparams"], s["size"], s["sha"]))
    L += ["", "## ref.bin", "",
          "The float64 reference computed from the stored weights (read back from the folder) for",
          "B=2 rows of T=12 positions: ids in [3, 512) (stories260K: row 0 is BOS followed by the",
          "greedy continuation, real text; row 1 is BOS followed by random ids); targets are the",
          "next ids; the loss is `sum(w * CE(logits, target)) / sum(w)` with weights",
          "w[0] = %s and w[1] = %s." % (WEIGHTS[0], WEIGHTS[1]),
          "Little-endian:", "", "```",
          "char    magic[8] = \"MFTHF001\"",
          "int32   B, T, V, n_tensors",
          "int32   inputs[B*T]",
          "int32   targets[B*T]",
          "float32 weights[B*T]",
          "float64 loss",
          "float32 logits[B*T*V]",
          "then n_tensors times, in state_dict order (embed_tokens, layers.0.*, ..., norm, lm_head):",
          "  int32 name length, name bytes (no NUL), int32 numel,",
          "  float32 grad[numel]   (d loss / d tensor, row-major in its HF shape)",
          "```", "",
          "A tied model lists `model.embed_tokens.weight` only (its gradient sums the embedding",
          "and the classifier parts). The model: RMSNorm `x / sqrt(mean(x^2) + eps) * w`;",
          "attention scale 1/sqrt(head_dim); RoPE in the rotate_half convention (dimension i pairs",
          "with i + head_dim/2), `inv_freq[i] = rope_theta^(-2i/head_dim)`, rescaled for llama3 as",
          "transformers' `_compute_llama3_parameters`; query head j reads KV head",
          "j / (heads / KV heads); SwiGLU MLP `down(silu(gate(x)) * up(x))`.", "",
          "llama3 frequencies (transformers' `_compute_llama3_parameters`), with",
          "`wavelen = 2*pi / inv_freq`, `low_wl = original_max_position_embeddings / low_freq_factor`",
          "and `high_wl = original_max_position_embeddings / high_freq_factor`:", "", "```",
          "wavelen < high_wl:   inv_freq                      (unchanged)",
          "wavelen > low_wl:    inv_freq / factor",
          "otherwise:           s = (original_max_position_embeddings / wavelen - low_freq_factor)",
          "                          / (high_freq_factor - low_freq_factor)",
          "                     (1 - s) * inv_freq / factor + s * inv_freq",
          "```", "",
          "## Layout details", "",
          "- safetensors as the Rust library writes it: `u64` header length, compact JSON with",
          "  `\"__metadata__\":{\"format\":\"pt\"}` first, then the tensors sorted by name, each",
          "  `{\"dtype\",\"shape\",\"data_offsets\"}`, their data in the same order; the header is",
          "  padded with spaces to a multiple of 8. Tied models store no `lm_head.weight`.",
          "- `smollm-f16` is split as `save_pretrained(max_shard_size=\"60KB\")` splits it (greedy,",
          "  in state_dict order): shard 1 holds embed_tokens and layer 0's q/k/v_proj, shard 2 the",
          "  rest; the index is `{\"metadata\": {\"total_size\": bytes}, \"weight_map\": {name: file}}`.",
          "- config.json holds what transformers %s writes for each class (sorted keys, indent 2):"
          % TRANSFORMERS_VERSION,
          "  Llama has `head_dim`, `attention_bias`, `mlp_bias`, `pretraining_tp`; Qwen2 has no",
          "  `head_dim` or `attention_bias` (its q/k/v biases are fixed by the architecture); Qwen2",
          "  and Qwen3 carry `use_sliding_window: false` with the class defaults",
          "  `sliding_window: 4096` and `max_window_layers: 28` (unused). `rope_theta` is written",
          "  as a float (10000.0); configs edited by hand on the hub sometimes hold an int.", "",
          "## Checks run by the script", ""]
    for s in summary:
        for n in s["notes"]:
            L.append("- `%s`: %s" % (s["name"], n.replace("check ", "")))
    L += ["- every model: autograd gradients equal fourth-order central finite differences",
          "  (f(-2h) - 8 f(-h) + 8 f(h) - f(2h)) / 12h, h = 1e-3, float64, on 3 random elements",
          "  (among those with |grad| > 1e-3 max|grad|) of each of 3-4 tensors, to a relative 1e-6.",
          ""]
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
