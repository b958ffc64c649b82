#!/bin/sh
# make bench: maskft's training throughput at the stories15M, stories110M and SmolLM2-135M shapes, and, when
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
echo "== small-model eval: the bundled model, --facts and --text, 1 thread against $(nproc 2>/dev/null || echo 1)"
# (thousands of small forward passes: two threads must not be slower than one, even on a busy machine)
for t in 1 $(nproc 2>/dev/null || echo 1); do
    t0=$(date +%s.%N)
    ./build/maskft eval -m models/stories260K.bin --facts examples/data/facts_probes.jsonl --threads $t >/dev/null || exit 1
    ./build/maskft eval -m models/stories260K.bin --text examples/data/facts_train.jsonl --threads $t >/dev/null || exit 1
    t1=$(date +%s.%N)
    echo "eval threads=$t wall_s=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")"
done
echo "== training throughput"
THREADS=${THREADS:-$(nproc 2>/dev/null || echo 1)}
STEPS=${STEPS:-3}
SHAPES=${SHAPES:-15M 110M 135M}
PY=${PYTHON:-/usr/bin/python3}
have_torch=0
if [ -x "$PY" ] && "$PY" -c 'import torch' >/dev/null 2>&1; then have_torch=1; fi
out=$(mktemp)
./build/bench --peak --threads "$THREADS" | tee -a "$out" || exit 1
for shape in $SHAPES; do
    ./build/bench --products --shape $shape --threads "$THREADS" | tee -a "$out" || exit 1
    for wf in 1 0.3 0.1; do
        ./build/bench --shape $shape --threads "$THREADS" --steps "$STEPS" --weighted $wf | tee -a "$out" || exit 1
    done
    # the tool's --anchor (soft targets, top 64) on the untrained 90%
    ./build/bench --shape $shape --threads "$THREADS" --steps "$STEPS" --weighted 0.1 --anchor-k 64 | tee -a "$out" || exit 1
    if [ $have_torch = 1 ]; then
        "$PY" bench/bench_torch.py --shape $shape --threads "$THREADS" --steps "$STEPS" | tee -a "$out" | grep -v '^#'
    fi
done
echo "== memory of real model shapes: mft_model_bytes (GiB)"
./build/bench --memory || exit 1
echo "== memory at long context: the SmolLM2-135M shape, one step (STEPS_LONG, default 1)"
# T 1024 at B1 beside PyTorch; B4 x T2048 with gradient checkpointing (maskft alone: PyTorch keeps
# every layer's T x T probabilities)
SL=${STEPS_LONG:-1}
mem=$(mktemp)
./build/bench --shape 135M --B 1 --T 1024 --steps "$SL" | tee -a "$mem" || exit 1
./build/bench --shape 135M --B 1 --T 1024 --steps "$SL" --checkpoint | tee -a "$mem" || exit 1
if [ $have_torch = 1 ]; then
    "$PY" bench/bench_torch.py --shape 135M --B 1 --T 1024 --threads "$THREADS" --steps "$SL" | grep -v '^#' | tee -a "$mem"
fi
./build/bench --shape 135M --B 4 --T 2048 --steps "$SL" --checkpoint | tee -a "$mem" || exit 1
awk '{ delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
     { k = $1 " B" v["B"] " T" v["T"] (v["checkpoint"] ? " checkpointed" : ""); r[++n] = k; m[k] = v["peak_rss_MiB"]; t[k] = v["tok/s"] }
     END { print "\n| 135M shape | tokens/s | peak RSS MiB |"; print "|---|---|---|"
           for (i = 1; i <= n; i++) printf("| %s | %s | %s |\n", r[i], t[r[i]], m[r[i]])
           a = "maskft B1 T1024"; c = "maskft B1 T1024 checkpointed"; p = "torch B1 T1024"
           if (p in m) printf("T1024 peak memory against PyTorch: %.2fx, checkpointed %.2fx\n", m[a] / m[p], m[c] / m[p]) }' "$mem"
rm -f "$mem"
[ $have_torch = 1 ] && grep '^# blas' "$out" | head -1
[ $have_torch = 1 ] || echo "(python3-torch not installed: no PyTorch column; apt-get install python3-torch libopenblas0-openmp)"
# one table: tokens/s of maskft (full loss, 30% and 10% of positions weighted) and of PyTorch
# (full loss), the ratios, GFLOP/s of the full-loss step and of each kind of product against
# the measured peak, and peak memory (ru_maxrss of each process)
awk '{ delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
     $1 == "peak" { peak = v["fma_GFLOP/s"] }
     $1 == "products" { pr[v["shape"]] = sprintf("%s / %s / %s", v["fwd_GFLOP/s"], v["dx_GFLOP/s"], v["dw_GFLOP/s"])
                        prp[v["shape"]] = sprintf("%.0f%% / %.0f%% / %.0f%%", 100 * v["fwd_GFLOP/s"] / peak,
                                                  100 * v["dx_GFLOP/s"] / peak, 100 * v["dw_GFLOP/s"] / peak)
                        prs[v["shape"]] = v["full_loss_step_products_s"]
                        att[v["shape"]] = sprintf("%s / %s", v["attention_fwd_GFLOP/s"], v["attention_bwd_GFLOP/s"])
                        ats[v["shape"]] = v["attention_fwd_s"] + v["attention_bwd_s"] }
     $1 == "maskft" && v["weighted"] ~ /anchor/ { anc[v["shape"]] = v["ms/step"]; next }
     $1 == "maskft" { s = v["shape"]; w = v["weighted"]; if (!(s in seen)) { seen[s] = 1; order[++n] = s }
                      if (w == "100%") { full[s] = v["tok/s"]; gf[s] = v["GFLOP/s"]; mrss[s] = v["peak_rss_MiB"]; B[s] = v["B"]
                                         ms[s] = v["ms/step"] }
                      else if (w + 0 > 20) w30[s] = v["tok/s"]; else { w10[s] = v["tok/s"]; ms10[s] = v["ms/step"] } }
     $1 == "torch" { pt[v["shape"]] = v["tok/s"]; prss[v["shape"]] = v["peak_rss_MiB"] }
     END {
       printf("\nFMA peak measured here: %s GFLOP/s\n", peak)
       print "| shape | maskft tok/s: full / 30% / 10% weighted | PyTorch tok/s (full) | full / PyTorch | 10% / PyTorch | step GFLOP/s (% of peak) | products fwd / dx / dw GFLOP/s (% of peak) | products, share of the full step | attention fwd / bwd GFLOP/s, share | peak MiB maskft / PyTorch |"
       print "|---|---|---|---|---|---|---|---|---|---|"
       for (i = 1; i <= n; i++) { s = order[i]; t = (s in pt) ? pt[s] : "-"
         r1 = (s in pt) ? sprintf("%.2fx", full[s] / pt[s]) : "-"; r2 = (s in pt) ? sprintf("%.2fx", w10[s] / pt[s]) : "-"
         printf("| %s B%s T256 | %s / %s / %s | %s | %s | %s | %s (%.0f%%) | %s (%s) | %.0f%% | %s, %.0f%% | %s / %s |\n", s, B[s],
                full[s], w30[s], w10[s], t, r1, r2, gf[s], 100 * gf[s] / peak, pr[s], prp[s], 100 * prs[s] * 1000 / ms[s],
                att[s], 100 * ats[s] * 1000 / ms[s], mrss[s], (s in prss) ? prss[s] : "-") }
       for (i = 1; i <= n; i++) { s = order[i]
         if (s in anc) printf("%s: 10%% weighted + anchor (top 64 on the rest): %.0f ms/step, %.2fx the 10%% step\n", s, anc[s],
                              anc[s] / ms10[s]) } }' "$out"
rm -f "$out"
