#!/bin/sh
# gen_llamacpp_vocab.sh -- llama.cpp's ids for byte-level vocabularies in GGUF files maskft writes.
#
# Usage: sh tests/gen_llamacpp_vocab.sh LLAMA_DIR     (from the repository root, after make;
#        llama.cpp built as tests/gen_llamacpp_logits.sh describes; python3 for the JSON)
#
# For Qwen3's and Llama-3's tokenizer.json, a small C program writes a GGUF file around a random
# model of the vocabulary's size (the one test_gguf_write writes: tests/test_maskft.c's
# tiny_config(1), seed 7); llama.cpp loads its vocabulary (vocab_only) and tokenises the texts
# of the reference files with parse_special and no BOS, as maskft's MFT_SPECIAL does. Output:
# tests/data/llamacpp_written/NAME_ids.jsonl, one {"text", "ids"} per line, and the FNV-1a 64
# of the file in NAME_ids.hash. Then llama.cpp's ids for the Phi-3 chats of
# tests/data/chat_goldens.jsonl through its own Phi-3 vocabulary (tests/data/ggml-vocab-phi-3.gguf,
# where lstrip / rstrip come from llama.cpp's rules): tests/data/llamacpp_written/phi3_chat_ids.jsonl.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 LLAMA_DIR" >&2; exit 2; }
L=$1 D=tests/data/llamacpp_written T=${TMPDIR:-/tmp}/mft_vocab.$$
S=${MFT_SHARED:-../shared/assets}
mkdir -p "$D" "$T"
trap 'rm -rf "$T"' EXIT
cat > "$T/write.c" <<'C'
#include "maskft.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv)
{
    mft_tokenizer t;
    mft_model m;
    mft_error err;
    mft_config c;
    if (argc != 3 || mft_tokenizer_open(&t, argv[1], 0, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    memset(&c, 0, sizeof c);
    c.dim = 16; c.hidden_dim = 24; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2;
    c.vocab_size = t.vocab_size; c.seq_len = 12; c.shared_classifier = 1;
    c.norm_eps = 1e-5f; c.rope_theta = 10000.0f;
    size_t n = mft_model_bytes(&c, 1, 1, MFT_FORWARD);
    void *mem = malloc(n);
    if (!mem || mft_model_init(&m, &c, 1, 1, MFT_FORWARD, mem, n, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    mft_model_init_random(&m, 7);
    if (mft_gguf_save(&m, argv[2], -1, &t, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    return 0;
}
C
cc -O2 -I. -o "$T/write" "$T/write.c" maskft.c -lm
cat > "$L/dump_tokens.cpp" <<'CPP'
// dump_tokens MODEL.gguf < texts (NUL-terminated) : one line of space-separated ids per text,
// llama_tokenize with add_special = false, parse_special = true; the vocabulary only is loaded.
#include "llama.h"
#include <cstdio>
#include <string>
#include <vector>
int main(int argc, char ** argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s MODEL.gguf < texts\n", argv[0]); return 2; }
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "dump_tokens: cannot load %s\n", argv[1]); return 1; }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    std::string text;
    int ch;
    while ((ch = getchar()) != EOF) {
        if (ch) { text.push_back((char) ch); continue; }
        std::vector<llama_token> ids(text.size() + 16);
        int n = llama_tokenize(vocab, text.data(), (int) text.size(), ids.data(), (int) ids.size(), false, true);
        if (n < 0) { fprintf(stderr, "dump_tokens: llama_tokenize failed\n"); return 1; }
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        text.clear();
    }
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
CPP
${CXX:-g++} -O2 -std=c++17 -I"$L/include" -I"$L/ggml/include" "$L/dump_tokens.cpp" -o "$L/dump_tokens" \
    "$L/build/src/libllama.a" "$L/build/ggml/src/libggml.a" "$L/build/ggml/src/libggml-cpu.a" \
    "$L/build/ggml/src/libggml-base.a" -fopenmp -lpthread -ldl -lm
while read -r name tok ref; do
    "$T/write" "$tok" "$T/$name.gguf"
    python3 -c 'import json, sys
for l in open(sys.argv[1], encoding="utf-8"):
    if l.strip(): sys.stdout.buffer.write(json.loads(l)["text"].encode("utf-8") + b"\0")' "$ref" > "$T/$name.txt"
    "$L/dump_tokens" "$T/$name.gguf" < "$T/$name.txt" > "$T/$name.ids" 2> "$T/$name.log" || { tail "$T/$name.log" >&2; exit 1; }
    python3 -c 'import json, sys
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
ids = open(sys.argv[2]).read().split("\n")[:len(texts)]
assert len(ids) == len(texts)
with open(sys.argv[3], "w", encoding="utf-8") as f:
    for t, i in zip(texts, ids):
        f.write(json.dumps({"text": t, "ids": [int(x) for x in i.split()]}, ensure_ascii=False) + "\n")
h = 14695981039346656037
for b in open(sys.argv[4], "rb").read(): h = ((h ^ b) * 1099511628211) & (2**64 - 1)
open(sys.argv[5], "w").write("%016x\n" % h)' "$ref" "$T/$name.ids" "$D/${name}_ids.jsonl" "$T/$name.gguf" "$D/${name}_ids.hash"
    echo "$D/${name}_ids.jsonl: $(wc -l < "$D/${name}_ids.jsonl") texts, file $(cat "$D/${name}_ids.hash")"
done <<LIST
qwen3 $S/tokenizers/qwen3/tokenizer.json $S/reference/hfjs_qwen3.jsonl
llama3 $S/tokenizers/llama3/tokenizer.json $S/reference/hfjs_llama3.jsonl
LIST
# the Phi-3 chats, and texts where the rule matters either way (<s>, <unk>, <|endoftext|> keep
# the whitespace after them; </s> and the chat tokens take it)
EXTRA='<s> Hello</s> world
<|user|>  \t\nHi<|end|> \n<|assistant|>\n\nOK<|endoftext|> bye<unk>  x'
python3 -c 'import json, sys
texts = [json.loads(l)["text"] for l in open("tests/data/chat_goldens.jsonl", encoding="utf-8") if json.loads(l)["template"] == "phi3"]
texts += [t.encode().decode("unicode_escape") for t in sys.argv[1].split("\n")]
for t in texts: sys.stdout.buffer.write(t.encode("utf-8") + b"\0")
json.dump(texts, open(sys.argv[2], "w"))' "$EXTRA" "$T/phi3.json" > "$T/phi3.txt"
"$L/dump_tokens" tests/data/ggml-vocab-phi-3.gguf < "$T/phi3.txt" > "$T/phi3.ids" 2> "$T/phi3.log" || { tail "$T/phi3.log" >&2; exit 1; }
python3 -c 'import json, sys
texts = json.load(open(sys.argv[3]))
ids = open(sys.argv[1]).read().split("\n")[:len(texts)]
assert len(ids) == len(texts)
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for t, i in zip(texts, ids):
        f.write(json.dumps({"text": t, "ids": [int(x) for x in i.split()]}, ensure_ascii=False) + "\n")' "$T/phi3.ids" "$D/phi3_chat_ids.jsonl" "$T/phi3.json"
echo "$D/phi3_chat_ids.jsonl: $(wc -l < "$D/phi3_chat_ids.jsonl") chats"
