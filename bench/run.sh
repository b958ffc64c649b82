#!/bin/sh
# make bench: maskft's training throughput at the stories15M and stories110M shapes, and, when
# Debian's python3-torch is installed, PyTorch's on the same shapes, threads and steps, run
# alternately in one go so both see the same machine. Each shape runs in its own process, so
# peak memory is that shape's alone. THREADS (default: all cores) and STEPS can be set.
set -u
echo "== tokenizer encode throughput (one thread)"
S=../shared/assets
./build/bench --tokenizer models/tok512.bin --vocab 512
for f in tests/data/tok512.model $S/tokenizers/llama2-spm/tokenizer.model $S/llama-cpp-vocab/ggml-vocab-llama-spm.gguf \
         tests/data/gpt2/tokenizer.json $S/tokenizers/llama3/tokenizer.json tests/data/qwen3/tokenizer.json; do
    [ -f "$f" ] && ./build/bench --tokenizer "$f"
done
echo "== training throughput"
THREADS=${THREADS:-$(nproc 2>/dev/null || echo 1)}
STEPS=${STEPS:-3}
PY=${PYTHON:-/usr/bin/python3}
have_torch=0
if [ -x "$PY" ] && "$PY" -c 'import torch' >/dev/null 2>&1; then have_torch=1; fi
out=$(mktemp)
for shape in 15M 110M; do
    ./build/bench --shape $shape --threads "$THREADS" --steps "$STEPS" | tee -a "$out" || exit 1
    if [ $have_torch = 1 ]; then
        "$PY" bench/bench_torch.py --shape $shape --threads "$THREADS" --steps "$STEPS" | tee -a "$out" | grep -v '^#'
    fi
done
if [ $have_torch = 1 ]; then
    grep '^# blas' "$out" | head -1
    echo "ratio maskft / torch (tokens per second; > 1 means maskft is faster):"
    awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           if ($1 == "maskft") m[v["shape"]] = v["tok/s"]; if ($1 == "torch") t[v["shape"]] = v["tok/s"] }
         END { for (s in m) if (s in t) printf("  %s: %.2fx  (%s vs %s tok/s)\n", s, m[s] / t[s], m[s], t[s]) }' "$out"
else
    echo "(python3-torch not installed: no PyTorch comparison; apt-get install python3-torch libopenblas0-openmp)"
fi
rm -f "$out"
