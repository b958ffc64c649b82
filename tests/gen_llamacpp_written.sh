#!/bin/sh
# gen_llamacpp_written.sh -- llama.cpp as the judge of the GGUF files maskft writes.
#
# Usage: sh tests/gen_llamacpp_written.sh LLAMA_DIR     (from the repository root, after make)
#
# For each model below, build/maskft convert writes a GGUF file, llama.cpp (built as
# tests/gen_llamacpp_logits.sh describes) loads it -- its own loader checks every key, tensor
# name, shape and the vocabulary -- and runs the ids; the logits go to
# tests/data/llamacpp_written/NAME.bin (MFTLCPP1, see gen_llamacpp_logits.sh). hashes.txt
# records the FNV-1a 64 of each written file, so the test knows the file it writes today is
# the one llama.cpp judged. The test compares maskft's logits of the original model with these.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 LLAMA_DIR" >&2; exit 2; }
L=$1 D=tests/data/llamacpp_written T=${TMPDIR:-/tmp}/mft_written.$$
mkdir -p "$D" "$T"
trap 'rm -rf "$T"' EXIT
ids="1 403 407 261 378 430 271 280 309 288 302 350 376 269 363 345"
: > "$D/hashes.txt.tmp"
# name  model  --out-type
while read -r name model type; do
    ./build/maskft convert -m "$model" --out "$T/$name.gguf" --out-type "$type" 2> /dev/null
    # shellcheck disable=SC2086
    sh tests/gen_llamacpp_logits.sh "$L" "$T/$name.gguf" "$D/$name.bin" $ids
    python3 -c 'import sys
h = 14695981039346656037
for b in open(sys.argv[1], "rb").read(): h = ((h ^ b) * 1099511628211) & (2**64 - 1)
print(sys.argv[2], sys.argv[3], "%016x" % h)' "$T/$name.gguf" "$name" "$type" >> "$D/hashes.txt.tmp"
done <<'LIST'
stories260K models/stories260K.bin f32
llama3 tests/data/hf/llama3-bf16 f32
qwen2 tests/data/hf/qwen2-bf16 f32
qwen3 tests/data/hf/qwen3-f32 f32
smollm-f16 tests/data/hf/smollm-f16 f16
LIST
mv "$D/hashes.txt.tmp" "$D/hashes.txt"
cat "$D/hashes.txt"
