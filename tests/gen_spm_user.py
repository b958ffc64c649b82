#!/usr/bin/env python3
"""gen_spm_user.py -- a small SentencePiece BPE model with user-defined symbols and without
byte fallback, trained on tests/data/story.txt by Google's SentencePiece (Debian's
python3-sentencepiece 0.1.97), and SentencePiece's own ids for a set of texts that exercise
what such a model does differently: user-defined symbols matched inside the normalised text,
one dummy prefix for the whole text, whitespace clean-up, and a run of unknown characters
becoming a single <unk>.

Usage: /usr/bin/python3 tests/gen_spm_user.py tests/data/
Writes spm-user.model and spm_user.jsonl there (both generated for this project).
"""
import json, os, sys
import sentencepiece as spm

out = sys.argv[1]
spm.SentencePieceTrainer.train(
    input="tests/data/story.txt", model_prefix=os.path.join(out, "spm-user"), model_type="bpe",
    vocab_size=120, character_coverage=1.0, hard_vocab_limit=False, byte_fallback=False,
    user_defined_symbols=["<U>", "<sep>"], normalization_rule_name="identity", num_threads=1, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "spm-user.model"))
texts = [
    "", "a<U>b", "a  <U>  b", "<U>b", "<U>", "  <U>  ", "Pip<sep>duck<U>lake", "the fox<U><U>the duck",
    "zzz qqq", "Pip saw xyz!", "  Once upon a time  ", "Pip  and   the duck\tplayed\nby the lake.",
    "<sep> starts", "ends with <sep>", "<U<U>>", "\u00e9t\u00e9 \u4e2d\u6587 \U0001F600",
    "Thank you, duck! You are a good friend.", "\u2581literal meta symbol", "<s> and </s> as text",
]
with open(os.path.join(out, "spm_user.jsonl"), "w", encoding="utf-8") as f:
    for t in texts:
        f.write(json.dumps({"text": t, "ids": sp.encode(t)}, ensure_ascii=False) + "\n")
print(sp.get_piece_size(), "pieces;", len(texts), "texts")
