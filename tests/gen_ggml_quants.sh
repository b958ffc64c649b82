#!/bin/sh
# gen_ggml_quants.sh -- ggml's own Q4_0, Q4_K and Q6_K blocks and their dequantised values.
#
# Usage: sh tests/gen_ggml_quants.sh LLAMA_DIR     (llama.cpp built as tests/gen_llamacpp_logits.sh
#        describes; writes tests/data/ggml_quants.bin)
#
# 1024 pseudo-random floats (a fixed LCG, a few rows of very different scale) are quantised by
# ggml_quantize_chunk (no importance matrix) and turned back by ggml's to_float. Format
# (little-endian): char magic[8] = "MFTQUANT"; int32 count; then per type: int32 ggml type,
# int32 n (elements), int32 bytes; the quantised bytes; float32 values[n].
set -eu
[ $# -eq 1 ] || { echo "usage: $0 LLAMA_DIR" >&2; exit 2; }
L=$1 T=${TMPDIR:-/tmp}/mft_quants.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
cat > "$T/q.cpp" <<'CPP'
#include "ggml.h"
#include <cstdio>
#include <cstdint>
#include <vector>
int main(int argc, char ** argv) {
    const int n = 1024;
    std::vector<float> x(n);
    uint64_t s = 12345;
    for (int i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f - 0.5f;
        x[i] = u * (i < 256 ? 0.02f : i < 512 ? 1.0f : i < 768 ? 30.0f : 0.001f);
    }
    const ggml_type types[3] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_K, GGML_TYPE_Q6_K };
    FILE * f = fopen(argv[1], "wb");
    if (!f) return 1;
    fwrite("MFTQUANT", 1, 8, f);
    int32_t count = 3;
    fwrite(&count, 4, 1, f);
    for (ggml_type t : types) {
        size_t bytes = ggml_row_size(t, n);
        std::vector<uint8_t> q(bytes);
        ggml_quantize_chunk(t, x.data(), q.data(), 0, 1, n, nullptr);
        std::vector<float> y(n);
        ggml_get_type_traits(t)->to_float(q.data(), y.data(), n);
        int32_t h[3] = { (int32_t) t, n, (int32_t) bytes };
        fwrite(h, 4, 3, f);
        fwrite(q.data(), 1, bytes, f);
        fwrite(y.data(), 4, n, f);
    }
    return fclose(f) != 0;
}
CPP
${CXX:-g++} -O2 -std=c++17 -I"$L/ggml/include" "$T/q.cpp" -o "$T/q" "$L/build/ggml/src/libggml-base.a" -fopenmp -lpthread -lm
"$T/q" tests/data/ggml_quants.bin
echo "tests/data/ggml_quants.bin: $(wc -c < tests/data/ggml_quants.bin) bytes"
