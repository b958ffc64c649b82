#!/usr/bin/env python3
"""gen_tok512_hf.py -- write tok512 as a Hugging Face tokenizer.json in the SentencePiece style
that Llama-2 / TinyLlama repositories ship (normalizer Prepend("▁") + Replace(" ", "▁"), a BPE
model with byte_fallback, merges in rank order), so maskft's Metaspace-style tokenizer.json
path can be checked against an independent Hugging Face-compatible implementation
(tests/gen_hfjs_ids.mjs) on a vocabulary whose license (MIT) lets it live in the repository.

Usage: python3 tests/gen_tok512_hf.py models/tok512.bin tests/data/tok512-hf/

The merges are derived as Hugging Face's SentencePiece converter derives them: every way to
split a piece into two pieces of the vocabulary is a merge, ordered by the score of the merged
piece (highest first) and, within one piece, by the ids of its two halves.
"""
import json, os, struct, sys

def main(src, outdir):
    data = open(src, "rb").read()
    V = 512
    pos = 4
    pieces, scores = [], []
    for _ in range(V):
        score, n = struct.unpack_from("<fi", data, pos)
        pos += 8
        pieces.append(data[pos:pos + n].decode("utf-8"))
        scores.append(score)
        pos += n
    assert pos == len(data)
    # tokenizer.bin is SentencePiece's export with U+2581 turned into a space: undo that
    names = ["<unk>", "<s>", "</s>"] + [p for p in pieces[3:]]
    names = [p if i < 3 or p.startswith("<0x") else p.replace(" ", "\u2581") for i, p in enumerate(names)]
    vocab = {p: i for i, p in enumerate(names)}
    merges = []
    for i, piece in enumerate(names):
        if i < 3 or piece.startswith("<0x"):
            continue
        local = []
        for k in range(1, len(piece)):
            l, r = piece[:k], piece[k:]
            if l in vocab and r in vocab:
                local.append((l, r, scores[i]))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)  # stable: ties keep vocabulary order
    added = [{"id": i, "content": names[i], "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i in range(3)]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "vocab": vocab, "merges": [f"{l} {r}" for l, r, _ in merges]},
    }
    cfg = {"tokenizer_class": "LlamaTokenizer", "legacy": True, "add_bos_token": True, "add_eos_token": False,
           "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
           "model_max_length": 512}
    os.makedirs(outdir, exist_ok=True)
    json.dump(tok, open(os.path.join(outdir, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False, indent=1)
    json.dump(cfg, open(os.path.join(outdir, "tokenizer_config.json"), "w"), indent=1)
    print(f"{len(vocab)} tokens, {len(merges)} merges -> {outdir}")

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
