#!/bin/sh
# gen_llamacpp_logits.sh -- llama.cpp's logits for a GGUF model, as a fixture for maskft's tests.
#
# Usage: sh tests/gen_llamacpp_logits.sh LLAMA_DIR MODEL.gguf OUT.bin ID...
#   LLAMA_DIR: a llama.cpp source tree whose build/ holds the static libraries (below); the
#   dump_logits program below is written to LLAMA_DIR/dump_logits.cpp and compiled there if
#   LLAMA_DIR/dump_logits is missing. The ids go in as given: no tokenizer, no BOS added.
#
# Output (little-endian): char magic[8] = "MFTLCPP1"; int32 n_tokens, n_vocab;
# int32 ids[n_tokens]; float32 logits[n_tokens][n_vocab] (one llama_decode of all ids,
# logits of every position).
#
# How llama.cpp was obtained and built (outside this repository; nothing of it is committed):
#   npm pack node-llama-cpp@3.22.1 && tar xzf node-llama-cpp-3.22.1.tgz
#   git clone package/llama/gitRelease.bundle llama.cpp
#     llama.cpp tag v0.5.0 (package/llama/llama.cpp.info.json: ggml-org/llama.cpp), one squashed
#     commit de3ff815ea7d559ee917f063901b8986f038abc6, ggml 0.25.1; the package's
#     patches/PR-22566.diff (no-alloc loading only) not applied
#   apt-get install -y cmake g++ ninja-build
#   cd llama.cpp && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
#     -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF \
#     -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF
#   cmake --build build --target llama -j2          (CPU only, -march=native; about 2 minutes)
#   dump_logits: compiled by this script, the g++ line below.
set -eu
[ $# -ge 4 ] || { echo "usage: $0 LLAMA_DIR MODEL.gguf OUT.bin ID..." >&2; exit 2; }
L=$1 model=$2 out=$3; shift 3
for id in "$@"; do case $id in ''|*[!0-9]*) echo "$0: bad token id '$id'" >&2; exit 2;; esac; done

if [ ! -x "$L/dump_logits" ]; then
cat > "$L/dump_logits.cpp" <<'CPP'
// dump_logits MODEL.gguf OUT.f32 ID... : one llama_decode of the given ids
// (no tokenizer, no BOS), logits of every position written to OUT.f32 as raw
// float32 [n_tokens][n_vocab] in host (little-endian) order. f32 KV cache,
// no flash attention, no weight repacking, 2 threads, no warmup.
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s MODEL.gguf OUT.f32 ID...\n", argv[0]); return 2; }
    std::vector<llama_token> ids;
    for (int i = 3; i < argc; i++) ids.push_back((llama_token) atoi(argv[i]));
    const int n = (int) ids.size();

    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.use_extra_bufts = false;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "dump_logits: cannot load %s\n", argv[1]); return 1; }

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n < 256 ? 256 : (uint32_t) n;
    cp.n_batch = cp.n_ubatch = cp.n_ctx;
    cp.n_seq_max = 1;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.no_perf = true;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "dump_logits: cannot create context\n"); return 1; }

    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = ids[i]; b.pos[i] = i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
    }
    b.n_tokens = n;
    if (llama_decode(ctx, b) != 0) { fprintf(stderr, "dump_logits: llama_decode failed\n"); return 1; }

    FILE * f = fopen(argv[2], "wb");
    if (!f) { fprintf(stderr, "dump_logits: cannot open %s\n", argv[2]); return 1; }
    for (int i = 0; i < n; i++) {
        const float * l = llama_get_logits_ith(ctx, i);
        if (!l || fwrite(l, sizeof(float), n_vocab, f) != (size_t) n_vocab) { fprintf(stderr, "dump_logits: no logits at %d\n", i); return 1; }
    }
    if (fclose(f) != 0) return 1;
    printf("n_tokens=%d n_vocab=%d\n", n, n_vocab);

    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
CPP
${CXX:-g++} -O2 -std=c++17 -I"$L/include" -I"$L/ggml/include" "$L/dump_logits.cpp" -o "$L/dump_logits" \
    "$L/build/src/libllama.a" "$L/build/ggml/src/libggml.a" "$L/build/ggml/src/libggml-cpu.a" \
    "$L/build/ggml/src/libggml-base.a" -fopenmp -lpthread -ldl -lm
fi

trap 'rm -f "$out.raw" "$out.log" "$out.tmp"' EXIT
le32() { for s in 0 8 16 24; do printf '%b' "\\0$(printf %03o $(( ($1 >> s) & 255 )))"; done; }
"$L/dump_logits" "$model" "$out.raw" "$@" > /dev/null 2> "$out.log" || { tail -20 "$out.log" >&2; exit 1; }
n=$#; bytes=$(wc -c < "$out.raw"); v=$(( bytes / 4 / n ))
if [ "$v" -eq 0 ] || [ $(( v * 4 * n )) -ne "$bytes" ]; then echo "$0: bad logits size $bytes" >&2; exit 1; fi
{ printf MFTLCPP1; le32 "$n"; le32 "$v"; for id in "$@"; do le32 "$id"; done; cat "$out.raw"; } > "$out.tmp"
arch=$(sed -n 's/^print_info: arch *= //p' "$out.log" | head -1)
mv "$out.tmp" "$out"
echo "$out: $n tokens x $v logits, arch $arch"
