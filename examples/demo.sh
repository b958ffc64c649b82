#!/bin/sh
# make demo: the experiment maskft stands on, on the bundled stories260K model.
# 24 invented facts told as little stories (examples/data/facts_train.jsonl, the names marked
# {{key}}...{{/key}}) are taught with the same budget in five ways from the same base model;
# each tuned model is then asked for the facts in other words (facts_probes.jsonl) and compared
# with the base model on 1000 retention probes the base model wrote itself.
# Output: a table on stdout (and build/demo/table.md), build/demo/demo.svg (loss curves; recall
# against drift), and every model, log and JSON result under build/demo/.
set -e
M=models/stories260K.bin
K=models/tok512.bin
D=build/demo
DATA=examples/data/facts_train.jsonl
PROBES=examples/data/facts_probes.jsonl
mkdir -p $D
# same budget for every run: 200 epochs of the 24 stories packed into rows of 256 tokens, all
# rows in every AdamW step (200 steps), lr 1e-4 after 10 warmup steps, seed 1
TRAIN="--epochs 200 --batch 6 --seq 256 --lr 1e-4 --warmup 10 --seed 1"

now() { date +%s.%N 2>/dev/null || date +%s; }

echo "== retention probes: 1000 texts sampled from the base model (maskft probe)"
./build/maskft probe -m $M --n 1000 --len 64 --seed 1 --out $D/probes.jsonl

run() { # run NAME POLICY [EXTRA TRAIN OPTIONS]
    name=$1 policy=$2
    shift 2
    t0=$(now)
    ./build/maskft train -m $M --data $DATA --policy $policy $TRAIN "$@" --out $D/$name.bin --log $D/$name.log 2> $D/$name.train.txt
    t1=$(now)
    ./build/maskft eval -m $D/$name.bin -t $K --facts $PROBES --compare $M --probes $D/probes.jsonl \
        --gen 100 --len 128 --json > $D/$name.json
    trained=$(sed -n 's/.*tokens, \([0-9]*\) trained.*/\1/p' $D/$name.train.txt | head -1)
    echo "$name $trained $(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.1f", b - a }') $(tr -d '{}",:' < $D/$name.json)" >> $D/rows.txt
    echo "   $name: done ($(tail -1 $D/$name.train.txt))"
}

rm -f $D/rows.txt
echo "== training (each: $TRAIN)"
# The training stories are shorter than the model's own, so their end token would teach it to
# stop early (FINDINGS.md; the last run measures it): the first three leave it out.
run all all --no-eot
run key key --no-eot
run known known:2.5 --no-eot
run key_eot key
# the context anchor: also pull the model's distributions on the untrained positions of the
# training text back to the base model's (weight 1, mean KL over those positions)
run key_anchor key --no-eot --anchor 1

# the table: field N of rows.txt is found by name, so the JSON's order does not matter
awk '
function f(k,   i) { for (i = 1; i <= NF; i++) if ($i == k) return $(i + 1); return "?" }
BEGIN {
    print "| policy | trained tokens | fact recall (24) | KL mean | KL p99 | same top-1 | greedy agreement (16 tok) | termination (base) | tail repetition | train time |"
    print "|---|---|---|---|---|---|---|---|---|---|"
}
{
    label = $1 == "all" ? "all tokens" : $1 == "key" ? "key tokens" : $1 == "known" ? "known:2.5 (low-perplexity)" : $1 == "key_eot" ? "key tokens + end token" : "key tokens + context anchor"
    printf "| %s | %d | %d | %.3f | %.2f | %.1f%% | %.1f%% | %.1f%% (%.1f%%) | %.1f%% | %.1f s |\n", label, $2, f("recalled"),
        f("kl_mean"), f("kl_p99"), 100 * f("same_top1"), 100 * f("agreement"), 100 * f("termination"), 100 * f("termination_base"),
        100 * f("tail_repetition"), $3
}' $D/rows.txt > $D/table.md
echo
cat $D/table.md

# the chart: loss per step for every run (left), fact recall against KL (right)
awk -v rows=$D/rows.txt '
function f(line, k,   n, a, i) { n = split(line, a, " "); for (i = 1; i <= n; i++) if (a[i] == k) return a[i + 1] + 0; return 0 }
BEGIN {
    col["all"] = "#d62728"; col["key"] = "#2ca02c"; col["known"] = "#1f77b4"; col["key_eot"] = "#9467bd"; col["key_anchor"] = "#ff7f0e"
    nm["all"] = "all tokens"; nm["key"] = "key tokens"; nm["known"] = "known:2.5"; nm["key_eot"] = "key + end token"; nm["key_anchor"] = "key + anchor"
    while ((getline line < rows) > 0) { split(line, a, " "); r = a[1]; order[++nr] = r; rec[r] = f(line, "recalled"); kl[r] = f(line, "kl_mean") }
}
FNR == 1 { run = FILENAME; sub(/.*\//, "", run); sub(/\.log$/, "", run) }
{ s = $0; sub(/.*"step": /, "", s); st = s + 0; l = $0; sub(/.*"loss": /, "", l); l += 0
  n[run]++; X[run, n[run]] = st; Y[run, n[run]] = l; if (st > maxs) maxs = st; if (l > maxl) maxl = l }
END {
    W = 900; H = 380
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    # left panel: loss (log scale) against step
    x0 = 60; y0 = 40; w = 360; h = 280; lmin = 1e-4; lmax = 1
    while (lmax < maxl) lmax *= 10
    printf "<text x=\"%d\" y=\"25\" font-size=\"14\">masked training loss per step (log scale)</text>\n", x0
    printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", x0, y0, w, h
    for (v = lmin; v <= lmax * 1.01; v *= 10) {
        y = y0 + h - h * (log(v) - log(lmin)) / (log(lmax) - log(lmin))
        printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text><line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", x0 - 4, y + 4, v, x0, x0 + w, y, y }
    for (v = 0; v <= 4; v++) printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", x0 + w * v / 4, y0 + h + 15, maxs * v / 4
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">AdamW step</text>\n", x0 + w / 2, y0 + h + 32
    for (i = 1; i <= nr; i++) { r = order[i]; pts = ""
        for (k = 1; k <= n[r]; k++) { l = Y[r, k] < lmin ? lmin : Y[r, k]
            pts = pts sprintf("%.1f,%.1f ", x0 + w * X[r, k] / maxs, y0 + h - h * (log(l) - log(lmin)) / (log(lmax) - log(lmin))) }
        printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"%s\"/>\n", col[r], pts
        printf "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", x0 + w - 110, y0 + 18 * i, col[r], nm[r] }
    # right panel: recall against mean KL
    x1 = 520; maxkl = 0; for (i = 1; i <= nr; i++) if (kl[order[i]] > maxkl) maxkl = kl[order[i]]
    maxkl = maxkl * 1.2
    printf "<text x=\"%d\" y=\"25\" font-size=\"14\">facts recalled (of 24) against drift</text>\n", x1
    printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", x1, y0, w, h
    for (v = 0; v <= 24; v += 6) { y = y0 + h - h * v / 24
        printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text><line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", x1 - 4, y + 4, v, x1, x1 + w, y, y }
    for (v = 0; v <= 4; v++) printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.2f</text>\n", x1 + w * v / 4, y0 + h + 15, maxkl * v / 4
    printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">mean KL(base || tuned), nats (left: less drift)</text>\n", x1 + w / 2, y0 + h + 32
    for (i = 1; i <= nr; i++) { r = order[i]; cx = x1 + w * kl[r] / maxkl; cy = y0 + h - h * rec[r] / 24
        printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">%s</text>\n", cx, cy, col[r], cx + 9, cy + 4, col[r], nm[r] }
    print "</svg>"
}' $D/all.log $D/key.log $D/known.log $D/key_eot.log $D/key_anchor.log > $D/demo.svg
echo
echo "chart: $D/demo.svg   table: $D/table.md   models, logs, results: $D/"
