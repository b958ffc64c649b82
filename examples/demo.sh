#!/bin/sh
# make demo: the method, as a person would run it, on the bundled stories260K model, against
# the alternatives it claims to beat.
#   1. the model drafts 24 little stories in its own words; examples/insert_facts.awk puts one
#      invented fact into each (a cat named Mochi, a town called Brambleton, ...), marks the new
#      name as the key ({{key}}...{{/key}}) and keeps the fact as plain text ("context");
#   2. the same facts are taught from the same base model in twelve ways, each until learned
#      (every trained token at probability >= 0.5; at most 100 epochs), plus one fixed budget;
#   3. each tuned model is asked for the facts in other words (facts_probes.jsonl) and compared
#      with the base model on 1000 retention probes and 200 multiple-choice items it wrote
#      itself (texts no run trains on).
# Output: a table on stdout (and build/demo/table.md), build/demo/demo.svg (recall against
# drift; drift during training: examples/demo_chart.awk), and every model, log and JSON result
# under build/demo/.
set -e
M=models/stories260K.bin
K=models/tok512.bin
D=build/demo
FACTS=examples/data/facts.jsonl
PROBES=examples/data/facts_probes.jsonl
X="--threads 1" # a 260K-parameter model: one thread is faster than waking a team for each tiny product
mkdir -p $D

now() { date +%s.%N 2>/dev/null || date +%s; }

echo "== the base model's own texts: retention probes, replay texts, multiple-choice stories"
./build/maskft probe -m $M --n 1000 --len 64 --seed 1 --out $D/probes.jsonl $X
./build/maskft probe -m $M --n 1000 --len 64 --seed 7 --out $D/replay.jsonl $X
./build/maskft probe -m $M --n 200 --len 64 --seed 2 --out $D/stories.jsonl $X
awk -f examples/make_mc.awk $D/stories.jsonl > $D/mc.jsonl

echo "== the training text in the model's own words, the facts put in"
awk -f examples/insert_facts.awk $FACTS > $D/draft_in.jsonl
./build/maskft draft -m $M --data $D/draft_in.jsonl --out $D/drafts.jsonl -n 40 $X
awk -f examples/insert_facts.awk $FACTS $D/drafts.jsonl > $D/train.jsonl
awk -v key=sentence -f examples/insert_facts.awk $FACTS $D/drafts.jsonl > $D/train_sentence.jsonl
head -2 $D/train.jsonl

# every run: the key spans of train.jsonl, no end token (the drafts are cut at a sentence, not
# where the model would end its story), the default learning rate, seed 1; --drift measures KL
# to the base model on 64 retention probes after every epoch, for the chart
TRAIN="--no-eot --seed 1 --drift $D/probes.jsonl $X"

run() { # run NAME POLICY [EXTRA TRAIN OPTIONS]
    name=$1 policy=$2
    shift 2
    t0=$(now)
    ./build/maskft train -m $M --data ${DATA:-$D/train.jsonl} --policy $policy $TRAIN "$@" --out $D/$name.bin \
        --log $D/$name.log 2> $D/$name.train.txt
    t1=$(now)
    ./build/maskft eval -m $D/$name.bin -t $K --facts $PROBES --compare $M --probes $D/probes.jsonl --mc $D/mc.jsonl \
        --gen 100 --len 128 --json $X > $D/$name.json
    trained=$(sed -n 's/.*tokens, \([0-9]*\) trained.*/\1/p' $D/$name.train.txt | head -1)
    steps=$(sed -n 's/.*after \([0-9]*\) steps.*/\1/p' $D/$name.train.txt)
    learned=$(grep '"epoch_end"' $D/$name.log | tail -1 | sed 's/.*"learned": \([0-9]*\).*/\1/')
    echo "$name $trained $steps $learned $(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.1f", b - a }') $(tr -d '{}",:' < $D/$name.json)" > $D/$name.row
    echo "   $name: $(grep '^epoch [0-9]*:' $D/$name.train.txt | tail -1)"
}

echo "== training (each until learned, at most 100 epochs; two runs at a time, one per core)"
run all all &                               # classic SFT: every token of the story
run lora_all all --lora 8 &                 # LoRA rank 8 on q, k, v, o, gate, up, down
wait
run dft dft &                               # every token, weighted by its own probability
# the key span widened to the whole fact sentence ("Lily had a cat named Mochi"), held close by
# KL on the model's own texts (80% of each epoch, weight 3), and alone
DATA=$D/train_sentence.jsonl run sentence_rkl key --replay $D/replay.jsonl --replay-ratio 0.8 --replay-kl 3 &
wait
run replay key --replay $D/replay.jsonl --replay-ratio 0.5 &        # + the model's own texts, trained
DATA=$D/train_sentence.jsonl run sentence key &
wait
run all_fixed all --until-learned off --epochs 30 &
run key_anchor10 key --anchor 10 &
wait
run key key &                               # the method: only the new names
run key_anchor key --anchor 1 &             # + KL to the base model on the untrained tokens
wait
run key_teacher key --teacher 1 &           # + KL to the base model that read the fact first
run lora_key key --lora 8 &
wait
run replay_kl key --replay $D/replay.jsonl --replay-ratio 0.5 --replay-kl 1   # + KL to base on them
for r in all all_fixed key key_anchor key_anchor10 key_teacher lora_all lora_key replay replay_kl dft sentence sentence_rkl; do
    cat $D/$r.row
done > $D/rows.txt

# the table: fields are found by name, so the JSON's order does not matter
awk -v base="$(awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "base_acc") printf "%.1f%%", 100 * $(i + 1) }' $D/rows.txt)" '
function f(k,   i) { for (i = 1; i <= NF; i++) if ($i == k) return $(i + 1); return "?" }
BEGIN {
    L["all"] = "all tokens"; L["all_fixed"] = "all tokens, 30 epochs (fixed)"; L["key"] = "key tokens"
    L["key_anchor"] = "key + anchor 1"; L["key_anchor10"] = "key + anchor 10"; L["key_teacher"] = "key + teacher 1"
    L["lora_all"] = "LoRA r8, all tokens"; L["lora_key"] = "LoRA r8, key tokens"; L["replay"] = "key + replay 50%"
    L["replay_kl"] = "key + replay-KL 50%"; L["dft"] = "DFT (all tokens)"; L["sentence"] = "fact sentence as key"
    L["sentence_rkl"] = "fact sentence + replay-KL 3, 80%"
    print "| policy | trained tokens | steps | learned (24) | recall (24) | KL mean | KL p99 | same top-1 | greedy agreement | MC acc (base " base ") | MC flips | termination | tail repetition | train time |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
}
{
    printf "| %s | %d | %d | %d | %d | %.3f | %.2f | %.1f%% | %.0f%% | %.1f%% | %.1f%% | %.0f%% | %.0f%% | %.1f s |\n", L[$1], $2, $3, $4,
        f("recalled"), f("kl_mean"), f("kl_p99"), 100 * f("same_top1"), 100 * f("agreement"), 100 * f("acc"), 100 * f("flipped"),
        100 * f("termination"), 100 * f("tail_repetition"), $5
}' $D/rows.txt > $D/table.md
echo
cat $D/table.md

# the chart (examples/demo_chart.awk): recall against drift per policy (top), drift during
# training (bottom). It reads rows.txt and each run's .log and .train.txt only, so it can be
# drawn again from these results without training:
#   awk -v dir=build/demo -f examples/demo_chart.awk > build/demo/demo.svg
awk -v dir=$D -f examples/demo_chart.awk > $D/demo.svg
echo
echo "chart: $D/demo.svg   table: $D/table.md   models, logs, results: $D/"
