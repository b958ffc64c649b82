#!/bin/sh
# The whole test suite: the unit tests in every build, then the command-line checks.
# Run from the repository root (make test). Ends with "N passed, N failed" or
# "N passed, N failed, N skipped", after a "missing assets: ..." line when test files were absent.
# MFT_REQUIRE_ALL=1 (set by .ci/run) turns every skip into a failure: a missing cross compiler or
# qemu, and every unit-test check skipped for a missing asset.
set -u
PASS=0 FAIL=0 SKIP=0
MISSING=""   # the missing assets of every build, one a line, each once
MAKE=${MAKE:-make}

# runs a unit-test binary; its result line, "N passed, N failed[, N skipped]", goes into the totals
# and the names on its "missing assets: a, b" line into MISSING
unit() {
    name=$1; shift
    echo "=== $name"
    out=$("$@" 2>&1); rc=$?
    echo "$out" | grep -v '^ok '
    line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' | tail -1)
    if [ -z "$line" ]; then
        echo "FAIL $name: no result line (exit $rc)"; FAIL=$((FAIL + 1)); return
    fi
    p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -E -n 's/.*, ([0-9]+) skipped$/\1/p'); s=${s:-0}
    miss=$(echo "$out" | sed -n 's/^missing assets: //p' | tail -1)
    PASS=$((PASS + p)); FAIL=$((FAIL + f))
    if [ -n "$miss" ]; then
        MISSING=$(printf '%s\n%s\n' "$MISSING" "$(echo "$miss" | sed 's/, /,/g' | tr , '\n')" | awk 'NF && !seen[$0]++')
    fi
    if [ "$s" -gt 0 ]; then
        if [ "${MFT_REQUIRE_ALL:-0}" = 1 ]; then
            echo "FAIL $name: $s skipped checks (missing assets: ${miss:-none named})"; FAIL=$((FAIL + s))
        else SKIP=$((SKIP + s)); fi
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then echo "FAIL $name: exit $rc"; FAIL=$((FAIL + 1)); fi
}

check() { # check NAME COMMAND...: one CLI-level test
    name=$1; shift
    if out=$("$@" 2>&1); then echo "ok   $name"; PASS=$((PASS + 1));
    else echo "FAIL $name"; echo "$out" | tail -15 | sed 's/^/    /'; FAIL=$((FAIL + 1)); fi
}

skip_or_fail() {
    if [ "${MFT_REQUIRE_ALL:-0}" = 1 ]; then echo "FAIL $1"; FAIL=$((FAIL + 1));
    else echo "skip $1"; SKIP=$((SKIP + 1)); fi
}

unit native ./build/test_native
unit scalar ./build/test_scalar
unit asan   ./build/test_asan

if command -v "${CROSS:-aarch64-linux-gnu-gcc}" >/dev/null 2>&1 && command -v "${QEMU:-qemu-aarch64}" >/dev/null 2>&1; then
    if $MAKE -s build/test_neon >build/neon_build.log 2>&1; then unit neon "${QEMU:-qemu-aarch64}" ./build/test_neon
    else echo "FAIL neon: cross build failed"; cat build/neon_build.log; FAIL=$((FAIL + 1)); fi
else
    skip_or_fail "neon: aarch64-linux-gnu-gcc or qemu-aarch64 not installed (apt-get install gcc-aarch64-linux-gnu qemu-user)"
fi

echo "=== command line"
T=build/cli_tmp; rm -rf $T; mkdir -p $T
M=models/stories260K.bin; K=models/tok512.bin

cli_greedy() { # llama2.c test_all.py: 200 greedy tokens from BOS
    ./build/maskft generate -m $M -t $K --temp 0 -n 200 2>/dev/null > $T/gen.txt || return 1
    printf '\n' > $T/nl; cat tests/data/stories260K_greedy200.txt $T/nl | cmp - $T/gen.txt
}
check "cli generate --temp 0 reproduces llama2.c" cli_greedy

ppl() { ./build/maskft eval -m "$1" -t $K --text "$2" | sed -n 's/^ *perplexity: //p'; }
cli_train() { # training on a text lowers that text's perplexity; the checkpoint loads again
    before=$(ppl $M tests/data/story.txt) || return 1
    ./build/maskft train -m $M -t $K --text tests/data/story.txt --out $T/tuned.bin --steps 30 --lr 1e-3 --batch 2 --seq 64 --seed 1 > $T/train.log || return 1
    after=$(ppl $T/tuned.bin tests/data/story.txt) || return 1
    echo "perplexity before $before after $after"
    awk -v a="$after" -v b="$before" 'BEGIN { exit !(a > 0 && a < 0.8 * b) }'
}
check "cli train lowers the text's perplexity" cli_train

cli_eval_windows() { # a text longer than the context is scored in windows, each starting with BOS
    for i in 1 2 3 4 5 6 7 8; do cat tests/data/story.txt; done > $T/long.txt
    ./build/maskft eval -m $M -t $K --text $T/long.txt > $T/eval.txt || return 1
    grep -q "in [2-9] windows of up to 512 tokens, each starting with BOS" $T/eval.txt
}
check "cli eval scores long text in BOS windows" cli_eval_windows

cli_errors() { # bad input: exit status 1 and a message naming the problem, never a crash
    head -c 5000 $M > $T/trunc.bin
    ./build/maskft generate -m $T/trunc.bin -t $K -n 5 > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q truncated $T/err.txt || return 1
    ./build/maskft eval -m $M -t no_such_tok.bin --text tests/data/story.txt > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q "cannot open" $T/err.txt || return 1
    ./build/maskft generate -m $M -t $K --temp abc > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "expects a number" $T/err.txt || return 1
    ./build/maskft train -m $M -t $K --text tests/data/story.txt > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "missing --out" $T/err.txt
}
check "cli bad input gives clear errors" cli_errors

cli_tokenize() { # tokenize/detokenize: known ids (llama.cpp's GPT-2 vector), offsets, the round trip
    G=tests/data/ggml-vocab-gpt-2.gguf
    [ "$(printf 'Hello world' | ./build/maskft tokenize -t $G)" = "15496 995" ] || return 1
    printf 'Hello world' | ./build/maskft tokenize -t tests/data/gpt2/tokenizer.json --offsets > $T/offs.txt || return 1
    [ "$(cut -f1-3 $T/offs.txt | tr '\t\n' ',;')" = "15496,0,5;995,5,11;" ] || return 1
    ids=$(./build/maskft tokenize -t tests/data/qwen3/tokenizer.json < tests/data/story.txt) || return 1
    echo "$ids" | ./build/maskft detokenize -t tests/data/qwen3/tokenizer.json | cmp - tests/data/story.txt || return 1
    # without -t the tokenizer beside the model is used (models/tok512.bin for stories260K)
    a=$(printf 'Once upon a time' | ./build/maskft tokenize -m $M --bos) && b=$(printf 'Once upon a time' | ./build/maskft tokenize -t $K -m $M --bos) && [ "$a" = "$b" ] && [ "$a" = "1 403 407 261 378" ]
}
check "cli tokenize / detokenize" cli_tokenize

cli_chat() { # chat: a template from tokenizer_config.json, two turns, the second reading the first, the KV cache reused
    # stories260K as a Hugging Face folder whose tokenizer_config.json carries the ChatML template
    mkdir -p $T/c260 || return 1
    for f in config.json generation_config.json model.safetensors tokenizer.json; do cp tests/data/hf/stories260K/$f $T/c260/ || return 1; done
    tmpl=$(awk 'BEGIN { ORS = "" } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); if (NR > 1) print "\\n"; print }' tests/data/templates/chatml.jinja)
    printf '{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "chat_template": "%s"}\n' "$tmpl" > $T/c260/tokenizer_config.json
    printf 'Lily had a cat.\nWhat is its name?\n' | ./build/maskft chat -m $T/c260 --temp 0 -n 16 --verbose > $T/chat.txt 2> $T/chat.err || { cat $T/chat.err; return 1; }
    grep -q '^maskft: template chatml,' $T/chat.err && [ -s $T/chat.txt ] || { echo "template"; return 1; }
    [ "$(grep -c '^maskft: turn [12]: [0-9]* new tokens' $T/chat.err)" = 2 ] || { echo "not two replies"; return 1; }
    # turn 2's prompt is turn 1's, the reply, then the new turn; all but the reply's last token come from the KV cache
    p1=$(sed -n 's/^maskft: turn 1: [0-9]* prompt tokens.*fed: "\(.*\)"$/\1/p' $T/chat.err)
    p2=$(sed -n 's/^maskft: turn 2: [0-9]* prompt tokens.*fed: "\(.*\)"$/\1/p' $T/chat.err)
    [ "$p1" = '<|im_start|>user\nLily had a cat.<|im_end|>\n<|im_start|>assistant\n' ] || { echo "turn 1: $p1"; return 1; }
    case "$p2" in "$p1"?*'<|im_end|>\n<|im_start|>user\nWhat is its name?<|im_end|>\n<|im_start|>assistant\n') ;;
        *) echo "turn 2: $p2"; return 1 ;; esac
    n1=$(sed -n 's/^maskft: turn 1: \([0-9]*\) prompt tokens.*/\1/p' $T/chat.err)
    g1=$(sed -n 's/^maskft: turn 1: \([0-9]*\) new tokens, the -n limit$/\1/p' $T/chat.err)
    grep -q "^maskft: turn 2: [0-9]* prompt tokens, $((n1 + g1 - 1)) held in the KV cache" $T/chat.err || { grep 'turn' $T/chat.err; return 1; }
    printf 'Lily had a cat.\nWhat is its name?\n' | ./build/maskft chat -m $T/c260 --temp 0 -n 16 2> /dev/null | cmp - $T/chat.txt || { echo "not deterministic"; return 1; }
    # no template (stories260K): plain text; an empty line is ignored; the second reply is generate's
    # continuation of the whole text, fed from position 0
    printf 'Lily had a cat named\n\nOne day, the cat\n/exit\nnot read\n' | ./build/maskft chat -m $M --temp 0 -n 24 > $T/plain.txt 2> $T/plain.err || return 1
    [ "$(grep -c '' $T/plain.txt)" = 2 ] && grep -q "has no chat template: the conversation is plain text" $T/plain.err || { cat $T/plain.err; return 1; }
    r1=$(sed -n 1p $T/plain.txt); r2=$(sed -n 2p $T/plain.txt)
    ./build/maskft generate -m $M --temp 0 -n 24 -p "Lily had a cat named$r1 One day, the cat" > $T/plain_gen.txt 2> /dev/null || return 1
    [ "$(cat $T/plain_gen.txt)" = "Lily had a cat named$r1 One day, the cat$r2" ] || { echo "the second reply is not generate's"; return 1; }
    # over the context: the oldest exchange goes; a turn that does not fit alone is an error
    printf 'Lily had a cat named\nOne day, the cat\nThen Tom came.\n' | ./build/maskft chat -m $M --temp 0 -n 200 --verbose > /dev/null 2> $T/long.err &&
        [ "$(grep -c '^maskft: turn [123]: [0-9]* new tokens' $T/long.err)" = 3 ] && grep -q "no longer fits the context (512 tokens): its oldest 1 exchange was dropped" $T/long.err || { cat $T/long.err; return 1; }
    awk 'BEGIN { for (i = 0; i < 300; i++) printf "the cat "; print "" }' | ./build/maskft chat -m $M -n 8 > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q "does not fit the context" $T/err.txt || return 1
    # options: a mistake is exit status 2, a model that is not there 1
    ./build/maskft chat -m $M --bogus 1 < /dev/null > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "unknown option --bogus" $T/err.txt || return 1
    ./build/maskft chat -m $M -n abc < /dev/null > $T/err.txt 2>&1; [ $? -eq 2 ] || return 1
    ./build/maskft chat -m $M --template gemma --system "Be kind." < /dev/null > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "^maskft: --system:" $T/err.txt || return 1
    ./build/maskft chat -m $T/no_such_model.bin < /dev/null > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q "cannot open" $T/err.txt
}
check "cli chat: template, two turns, KV cache, plain text, context" cli_chat

cli_mask() { # mask shows trained tokens and counts them; export writes the same mask as labels
    ./build/maskft mask -m $M --data tests/data/facts.jsonl > $T/mask.txt || return 1
    grep -q "named\[ Mochi\.\]" $T/mask.txt && grep -q "a\[ green forest ne\]ar" $T/mask.txt || return 1
    grep -q "3 examples, .* 1 with an empty mask" $T/mask.txt || return 1   # no key in example 3
    ./build/maskft mask -m $M --data tests/data/facts.jsonl --policy diff --html $T/mask.html > $T/diff.txt || return 1
    grep -q "0 with an empty mask" $T/diff.txt && grep -q "<span class=t>" $T/mask.html || return 1
    ./build/maskft export -m $M --data tests/data/facts.jsonl --out $T/export.jsonl 2>/dev/null || return 1
    trained=$(sed -n 's/^[0-9]* examples, [0-9]* tokens, \([0-9]*\) trained.*/\1/p' $T/mask.txt)
    labels=$(grep -o '"labels": \[[^]]*\]' $T/export.jsonl | tr ',' '\n' | grep -vc -- '-100')
    [ "$trained" = "$labels" ] || { echo "trained $trained vs labels $labels"; return 1; }
    [ "$(grep -c '"attention_mask": \[1, 1' $T/export.jsonl)" = 3 ] || { echo "attention_mask"; return 1; }
    printf '{"prompt": "a" "completion": "b"}\n' > $T/bad.jsonl
    ./build/maskft mask -m $M --data $T/bad.jsonl > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q "bad.jsonl:1:16:" $T/err.txt || return 1
    # every bad line of a file in one run, each as file:line:column, then nothing done (no half export)
    printf '{"text": "a {{key}}b"}\n{"text": 5}\n{"prompt": "x", "completion": "y"}\n{"messages": [{"role": "bot", "content": "x"}]}\nnot json\n' > $T/bad.jsonl
    ./build/maskft export -m $M --data $T/bad.jsonl --out $T/bad_export.jsonl > $T/err.txt 2>&1; [ $? -eq 1 ] && [ ! -e $T/bad_export.jsonl ] || return 1
    [ "$(grep -c '^maskft: .*bad.jsonl:[0-9]*:[0-9]*: ' $T/err.txt)" = 4 ] && grep -q 'bad.jsonl:1:10: "text": unbalanced {{key}}' $T/err.txt &&
        grep -q 'bad.jsonl:4:24: message 0: role' $T/err.txt && grep -q "bad.jsonl: 4 bad records: nothing was done" $T/err.txt || { cat $T/err.txt; return 1; }
    ./build/maskft train -m $M --data $T/bad.jsonl --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q "4 bad records" $T/err.txt
}
check "cli mask / export" cli_mask

cli_draft() { # the model drafts its own answers; an edited draft trains only what was changed
    ./build/maskft draft -m $M --data tests/data/facts.jsonl --out $T/d2.jsonl -n 20 2>/dev/null || return 1
    [ "$(grep -c '"draft": ' $T/d2.jsonl)" = 3 ] || return 1
    ./build/maskft mask -m $M --data $T/d2.jsonl --policy diff > $T/m0.txt 2>&1; grep -q "0 trained (0.0%), 3 with an empty mask" $T/m0.txt || return 1
    sed '1s/"completion": " Max/"completion": " Mochi/' $T/d2.jsonl > $T/d3.jsonl
    ./build/maskft mask -m $M --data $T/d3.jsonl --policy diff > $T/m1.txt || return 1
    grep -q "named M\[ochi\]" $T/m1.txt && grep -q "2 with an empty mask" $T/m1.txt || return 1   # token LCS: " M" is shared
    # cut at -n: at a sentence (or word) end, the turn marked "ended": false, its end token not trained
    grep -q '"completion": " Max. Max loved to play with his toys.", "draft": .*, "ended": false}' $T/d2.jsonl || { head -1 $T/d2.jsonl; return 1; }
    ./build/maskft mask -m $M --data $T/d2.jsonl --policy all > $T/m2.txt && ! grep -q "<END>" $T/m2.txt || { echo "end token trained after a cut"; return 1; }
    # a prompt alone and a conversation ending in a user turn get their answers; TRL's conversational form
    printf '{"prompt": "Once upon a time, Tom"}\n{"messages": [{"role": "user", "content": "Lily went to the park."}]}\n{"prompt": [{"role": "user", "content": "Tom had a dog"}], "completion": [{"role": "assistant", "content": " named Rex."}]}\n' > $T/q.jsonl
    ./build/maskft draft -m $M --data $T/q.jsonl --out $T/q2.jsonl -n 30 2>/dev/null || return 1
    [ "$(grep -c '"completion": " and\|"role": "assistant", "content": " ' $T/q2.jsonl)" = 3 ] || { cat $T/q2.jsonl; return 1; }
    ./build/maskft mask -m $M --data $T/q.jsonl > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q 'q.jsonl:1:12: a "prompt" without a "completion" has nothing to train: draft it first' $T/err.txt
}
check "cli draft, then an edit trains the edit" cli_draft

cli_train_data() { # masked training on JSONL: empty masks refused, resume bit for bit, a fact learned
    printf '{"prompt": "Tom saw a", "completion": " dog."}\n' > $T/nokey.jsonl
    ./build/maskft train -m $M --data $T/nokey.jsonl --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q "no example has a trained token" $T/err.txt || return 1
    D="-m $M --data tests/data/facts.jsonl --epochs 12 --batch 2 --seq 40 --grad-accum 2 --lr 2e-3 --seed 5"
    ./build/maskft train $D --out $T/a.bin --log $T/a.log 2> $T/a.txt || return 1
    grep -q "empty mask" $T/a.txt && [ "$(wc -l < $T/a.log)" -gt 4 ] || return 1
    ./build/maskft train $D --out $T/b.bin --stop-after 3 2> /dev/null && [ ! -e $T/b.bin ] && [ -e $T/b.bin.step3.ckpt ] || return 1
    ./build/maskft train $D --out $T/b.bin --resume $T/b.bin.step3.ckpt 2> /dev/null && cmp $T/a.bin $T/b.bin || { echo "resumed run differs"; return 1; }
    ./build/maskft train $D --lr 1e-3 --out $T/c.bin --resume $T/b.bin.step3.ckpt > $T/err.txt 2>&1; [ $? -eq 2 ] &&
        grep -q "written with --lr 0.002; this run gives --lr 0.001" $T/err.txt || { cat $T/err.txt; return 1; }
    # with the context anchor too; its log records the anchor's KL
    ./build/maskft train $D --anchor 1 --out $T/e.bin --log $T/e.log 2> /dev/null && ./build/maskft train $D --anchor 1 --out $T/f.bin --stop-after 2 2> /dev/null &&
        ./build/maskft train $D --anchor 1 --out $T/f.bin --resume $T/f.bin.step2.ckpt 2> /dev/null && cmp $T/e.bin $T/f.bin && ! cmp -s $T/a.bin $T/e.bin || { echo "anchor run"; return 1; }
    # step 1 starts from the base model itself (KL 0); later steps have moved away from it
    grep -q '"step": 1, "epoch": 1, "loss": [0-9.]*, "anchor_kl": 0.000000' $T/e.log && grep -q '"anchor_kl": [0-9]*\.[0-9]*[1-9]' $T/e.log || return 1
    # gradient checkpointing changes the memory, not the weights: the same file, byte for byte
    ./build/maskft train $D --anchor 1 --grad-checkpoint --out $T/g.bin 2> $T/g.txt && cmp $T/e.bin $T/g.bin &&
        grep -q "checkpointed)" $T/g.txt || { echo "--grad-checkpoint changed the run"; return 1; }
    # the anchor on a random half of its positions: another run than the full anchor's, resumed
    # bit for bit (the draws follow the step), and a resume with another share is refused
    ./build/maskft train $D --anchor 1 --kl-sample 0.5 --out $T/ks1.bin 2> /dev/null && ! cmp -s $T/e.bin $T/ks1.bin && ! cmp -s $T/a.bin $T/ks1.bin &&
        ./build/maskft train $D --anchor 1 --kl-sample 0.5 --out $T/ks2.bin --stop-after 2 2> /dev/null &&
        ./build/maskft train $D --anchor 1 --kl-sample 0.5 --out $T/ks2.bin --resume $T/ks2.bin.step2.ckpt 2> /dev/null && cmp $T/ks1.bin $T/ks2.bin || { echo "--kl-sample run"; return 1; }
    ./build/maskft train $D --anchor 1 --out $T/ks2.bin --resume $T/ks2.bin.step2.ckpt > $T/err.txt 2>&1; [ $? -eq 2 ] &&
        grep -q "written with --kl-sample 0.5; this run gives --kl-sample 1" $T/err.txt || { cat $T/err.txt; return 1; }
    printf '{"prompt": "Lily had a cat named", "answer": " Mochi"}\n' > $T/probe.jsonl
    ./build/maskft eval -m $T/a.bin -t $K --facts $T/probe.jsonl --json | grep -q '"recall": 1.0000' || return 1
    ./build/maskft eval -m $M --facts $T/probe.jsonl --json | grep -q '"recall": 0.0000'
}
check "cli train on JSONL: masks, resume, recall, --grad-checkpoint, --kl-sample" cli_train_data

cli_checkpoints() { # checkpoints named by step, the newest --keep kept, a run extended, every field checked
    C=$T/ck; rm -rf $C; mkdir -p $C
    D="-m $M --data tests/data/facts.jsonl --batch 2 --seq 40 --grad-accum 2 --lr 2e-3 --seed 5 --until-learned off"
    ./build/maskft train $D --epochs 12 --out $C/a.bin 2> /dev/null || return 1
    ./build/maskft train $D --epochs 12 --out $C/k.bin --save-every 2 --keep 2 2> $C/k.txt || return 1
    [ "$(cd $C && ls k.bin.step*.ckpt | tr '\n' ' ')" = "k.bin.step10.ckpt k.bin.step12.ckpt " ] || { ls $C; return 1; }
    cmp $C/a.bin $C/k.bin && grep -q "saved $C/k.bin (and $C/k.bin.step12.ckpt)" $C/k.txt || return 1
    # the tokenizer goes beside a .bin output, and eval / generate take a checkpoint (its weights)
    [ -e $C/tok512.bin ] && cmp $C/tok512.bin $K || { echo "no tokenizer beside"; return 1; }
    a=$(./build/maskft eval -m $C/k.bin --text tests/data/story.txt) && b=$(./build/maskft eval -m $C/k.bin.step12.ckpt --text tests/data/story.txt) &&
        [ "$a" = "$(echo "$b" | sed "s|k.bin.step12.ckpt|k.bin|g")" ] || { echo "eval of the checkpoint: $b"; return 1; }
    ./build/maskft generate -m $C/k.bin.step10.ckpt --temp 0 -n 5 > /dev/null 2>&1 || { echo "generate from a checkpoint"; return 1; }
    # another tokenizer where the loader would look: refused before the first step
    mkdir -p $C/other && cp tests/data/gpt2/tokenizer.json $C/other/
    ./build/maskft train $D --epochs 1 --out $C/other/x.bin > $C/err.txt 2>&1; [ $? -eq 1 ] && grep -q "another one than" $C/err.txt && [ ! -e $C/other/x.bin ] || { cat $C/err.txt; return 1; }
    # extended: 6 epochs, then resumed with 12 (the schedule follows the longer budget);
    # --stop-after at or before the checkpoint's step, fewer epochs, another option: named
    ./build/maskft train $D --epochs 6 --out $C/e.bin --keep 1 2> /dev/null && [ -e $C/e.bin.step6.ckpt ] || return 1
    ./build/maskft train $D --epochs 12 --out $C/e.bin --resume $C/e.bin.step6.ckpt 2> $C/e.txt && grep -q "step 12/12" $C/e.txt || { tail -3 $C/e.txt; return 1; }
    ./build/maskft train $D --epochs 12 --out $C/s.bin --stop-after 4 2> /dev/null && [ -e $C/s.bin.step4.ckpt ] || return 1
    ./build/maskft train $D --epochs 12 --out $C/s.bin --resume $C/s.bin.step4.ckpt --stop-after 4 > $C/err.txt 2>&1; [ $? -eq 2 ] && grep -q "^maskft: --stop-after 4: .* is at step 4 already" $C/err.txt || { cat $C/err.txt; return 1; }
    ./build/maskft train $D --epochs 12 --out $C/s.bin --resume $C/s.bin.step4.ckpt --stop-after 7 2> /dev/null && [ -e $C/s.bin.step7.ckpt ] || { echo "stop after on resume"; return 1; }
    ./build/maskft train $D --epochs 3 --out $C/s.bin --resume $C/s.bin.step7.ckpt > $C/err.txt 2>&1; [ $? -eq 2 ] && grep -q "at epoch 7 already: give --epochs (or --max-epochs) 7 or more" $C/err.txt || { cat $C/err.txt; return 1; }
    ./build/maskft train $D --epochs 12 --batch 3 --out $C/s.bin --resume $C/s.bin.step7.ckpt > $C/err.txt 2>&1; [ $? -eq 2 ] && grep -q "written with --batch 2; this run gives --batch 3" $C/err.txt || return 1
    ./build/maskft train $D --epochs 12 --out $C/s.bin --resume $C/s.bin.step7.ckpt 2> /dev/null && cmp $C/a.bin $C/s.bin || { echo "stopped twice, resumed: differs"; return 1; }
    # to a pipe: a plain line every --print-every steps (and the first and last), elapsed and ETA as h:mm:ss
    ./build/maskft train $D --epochs 12 --out $C/pe.bin --print-every 5 2> $C/pe.txt &&
        [ "$(grep '^step ' $C/pe.txt | cut -d' ' -f2 | tr '\n' ' ')" = "1/12 5/12 10/12 12/12 " ] &&
        grep -q '^step 5/12  epoch 5/12  loss [0-9.]*  lr [0-9.e+-]*  [0-9]* tok/s ([0-9]* trained)  0:00:0[0-9] ETA 0:00:0[0-9]$' $C/pe.txt || { cat $C/pe.txt; return 1; }
    # kill -9 at moments of a run that writes a checkpoint every step: every checkpoint left is whole
    for delay in 0.3 0.5 0.7 0.9; do
        ./build/maskft train $D --epochs 200 --out $C/x.bin --save-every 1 --keep 2 > /dev/null 2>&1 & pid=$!
        sleep $delay; kill -9 $pid; wait $pid 2> /dev/null
        for f in $C/x.bin.step*.ckpt; do
            [ -e "$f" ] || continue
            ./build/maskft eval -m "$f" --text tests/data/story.txt > /dev/null 2>&1 || { echo "killed: $f is broken"; return 1; }
        done
        ls $C/x.bin.step*.ckpt > /dev/null 2>&1 || { echo "killed after $delay s: no checkpoint at all"; return 1; }
    done
    # a disk that fills up (a file-size limit, the same failed write): named, the last good one too
    ./build/maskft train $D --epochs 12 --out $C/f.bin --stop-after 2 2> /dev/null || return 1
    (trap '' XFSZ; ulimit -f 2000; exec ./build/maskft train $D --epochs 12 --out $C/f.bin --resume $C/f.bin.step2.ckpt --save-every 3) > $C/err.txt 2>&1
    grep -q "cannot write '$C/f.bin.step3.ckpt': File too large; the last good checkpoint is $C/f.bin.step2.ckpt" $C/err.txt || { cat $C/err.txt; return 1; }
}
check "cli train: checkpoints kept by step, runs extended, kill -9, a full disk" cli_checkpoints

cli_sigint() { # Ctrl-C writes a checkpoint and exits 130; resuming ends on the uninterrupted weights
    D="-m $M --data examples/data/facts_train.jsonl --epochs 25 --batch 1 --seq 256 --lr 1e-4 --seed 3"
    ./build/maskft train $D --out $T/u.bin 2> /dev/null || return 1
    ./build/maskft train $D --out $T/i.bin 2> $T/int.txt & pid=$!
    i=0; until grep -q "^step 2/" $T/int.txt || [ $i -ge 300 ]; do sleep 0.1; i=$((i + 1)); done   # training has begun
    kill -INT $pid; wait $pid; rc=$?
    ck=$(ls $T/i.bin.step*.ckpt)
    [ $rc -eq 130 ] && [ -e "$ck" ] && [ ! -e $T/i.bin ] && grep -q "interrupted after step" $T/int.txt || { echo "exit $rc"; return 1; }
    ./build/maskft train $D --out $T/i.bin --resume "$ck" 2> /dev/null && cmp $T/u.bin $T/i.bin
}
check "cli train: Ctrl-C, then resume" cli_sigint

cli_method() { # until learned by default, the teacher, replay, LoRA, DFT, and the options that conflict
    U="-m $M --data examples/data/facts_train.jsonl --policy key --no-eot --batch 6 --seq 256 --seed 1 --threads 1"
    ./build/maskft train $U --out $T/u.bin --log $T/u.log 2> $T/u.txt || { tail -3 $T/u.txt; return 1; }
    # it stopped after the first epoch in which every example was learned, and not before
    n=$(grep -c '"epoch_end"' $T/u.log)
    [ "$n" -ge 2 ] && tail -1 $T/u.log | grep -q '"learned": 24, "examples": 24, "p_min": 0\.[5-9]' || { tail -2 $T/u.log; return 1; }
    [ "$(grep '"epoch_end"' $T/u.log | grep -vc '"learned": 24,')" = $((n - 1)) ] || { echo "an earlier epoch had all learned"; return 1; }
    grep '"epoch_end"' $T/u.log | sed -n "$((n - 1))p" | grep -q '"p_min": 0\.[0-4]' || { echo "the epoch before the end was already learned"; return 1; }
    grep -q "24 of 24 learned" $T/u.txt && grep -q "until every example is learned (each trained token p >= 0.5)" $T/u.txt || return 1
    # before it starts: the parameters and the memory; the log opens with the run's metadata
    grep -q "0.3M parameters; this run holds 0.[0-9]* GiB" $T/u.txt && head -1 $T/u.log | grep -q '^{"run": {"argv": \["./build/maskft", "train"' || return 1
    # the learned leave: the last epoch trains fewer tokens than the first
    first=$(grep '"epoch": 1,' $T/u.log | sed 's/.*"trained_tokens": \([0-9]*\).*/\1/' | awk '{s += $1} END {print s}')
    last=$(grep "\"epoch\": $n," $T/u.log | sed 's/.*"trained_tokens": \([0-9]*\).*/\1/' | awk '{s += $1} END {print s}')
    [ "$last" -lt "$first" ] || { echo "trained tokens: epoch 1 $first, epoch $n $last"; return 1; }
    # an until-learned run stopped and resumed ends on the same weights (the learned flags and the
    # epoch's order come back from the checkpoint)
    ./build/maskft train $U --out $T/s.bin --stop-after 30 2> /dev/null && [ ! -e $T/s.bin ] &&
        ./build/maskft train $U --out $T/s.bin --resume $T/s.bin.step30.ckpt 2> /dev/null && cmp $T/u.bin $T/s.bin || { echo "resume"; return 1; }
    # a finished run writes the model alone (the optimizer checkpoint only when asked); an --out
    # that cannot be written is refused before the first step
    [ -e $T/u.bin ] && ! ls $T/u.bin.step*.ckpt 2> /dev/null || { echo "a checkpoint nobody asked for"; return 1; }
    ./build/maskft train $U --out $T/no/such/dir/x.bin > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q "cannot write the model" $T/err.txt &&
        ! grep -q "^epoch" $T/err.txt || { cat $T/err.txt; return 1; }
    # options that do not apply or are out of range: one line naming the option, exit status 2
    ./build/maskft train $U --steps 50 --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "^maskft: --steps applies to --text" $T/err.txt || return 1
    ./build/maskft train $U --seq 100000 --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "^maskft: --seq 100000 is longer than the model's context (512)" $T/err.txt || return 1
    ./build/maskft train -m $M --data models/ --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "^maskft: --data 'models/' is a folder" $T/err.txt || return 1
    ./build/maskft eval -m $M --facts models/ > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "^maskft: --facts 'models/' is a folder" $T/err.txt || return 1
    : > $T/empty.jsonl
    ./build/maskft eval -m $M --facts $T/empty.jsonl > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q "holds no fact" $T/err.txt || return 1
    ./build/maskft eval -m $M --compare $M --probes $T/rp.jsonl --gen abc > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "^maskft: --gen expects" $T/err.txt || { cat $T/err.txt; return 1; }
    # a cap names what is not learned; a fixed budget and until-learned exclude each other
    ./build/maskft train $U --until-learned 0.999 --max-epochs 1 --out $T/cap.bin 2> $T/cap.txt &&
        grep -q "not learned at the cap" $T/cap.txt && grep -q "facts_train.jsonl:[0-9]* (p 0\.[0-9]*)" $T/cap.txt || return 1
    ./build/maskft train $U --epochs 3 --until-learned 0.5 --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "fixed budget" $T/err.txt || return 1
    ./build/maskft train $U --anchor 1 --teacher 1 --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "not both" $T/err.txt || return 1
    ./build/maskft train $U --replay-kl 1 --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "needs --replay" $T/err.txt || return 1
    ./build/maskft train $U --kl-sample 0.5 --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "applies to the KL terms" $T/err.txt || return 1
    # the teacher in context reads each record's context; it pulls elsewhere than the anchor does
    C="--until-learned off --epochs 3"
    ./build/maskft train $U $C --teacher 1 --out $T/te.bin --log $T/te.log 2> $T/te.txt && grep -q "the teacher in context: top-64" $T/te.txt &&
        ./build/maskft train $U $C --anchor 1 --out $T/an.bin 2> /dev/null && ! cmp -s $T/te.bin $T/an.bin || return 1
    # step 1: the student is the base model without the context, so the teacher is already away (KL > 0)
    grep -q '"step": 1, "epoch": 1, "loss": [0-9.]*, "anchor_kl": 0\.0*[1-9]' $T/te.log || { head -1 $T/te.log; return 1; }
    # replay: the model's own samples mixed in, trained (CE) or kept close (KL)
    ./build/maskft probe -m $M --n 30 --len 32 --seed 4 --out $T/rp.jsonl --threads 1 2> /dev/null || return 1
    ./build/maskft train $U $C --replay $T/rp.jsonl --out $T/rp.bin 2> $T/rp.txt && grep -q "30 replay examples.*(every token trained), 50%" $T/rp.txt || return 1
    ./build/maskft train $U $C --replay $T/rp.jsonl --replay-kl 1 --out $T/rk.bin 2> $T/rk.txt && grep -q "kept close to the base" $T/rk.txt &&
        ! cmp -s $T/rp.bin $T/rk.bin || return 1
    # LoRA: the adapters merged into the saved model, which the other commands read as any model
    ./build/maskft train $U $C --lora 4 --lr 1e-3 --out $T/lo.bin 2> $T/lo.txt && grep -q "LoRA rank 4, alpha 4" $T/lo.txt &&
        grep -q "the adapters merged" $T/lo.txt && ! cmp -s $T/lo.bin $M || return 1
    ./build/maskft train $U $C --lora 4 --lr 1e-3 --lora-out $T/ad --out $T/lo2.bin 2> /dev/null && cmp $T/lo.bin $T/lo2.bin &&
        [ -s $T/ad/adapter_model.safetensors ] && grep -q '"r": 4' $T/ad/adapter_config.json || return 1
    ./build/maskft eval -m $T/lo.bin -t $K --compare $M --probes $T/rp.jsonl --gen 1 --json --threads 1 | grep -q '"kl_mean": 0\.0*[1-9]' || return 1
    ./build/maskft train $U $C --lora 4 --resume $T/u.bin.ckpt --out $T/x.bin > $T/err.txt 2>&1; [ $? -eq 2 ] && grep -q "not checkpointed" $T/err.txt || return 1
    # DFT
    ./build/maskft train $U $C --policy dft --out $T/dft.bin 2> /dev/null && ! cmp -s $T/dft.bin $T/an.bin
}
check "cli train: until learned, teacher, replay, LoRA, DFT" cli_method

cli_compare() { # a model against itself: KL 0, same top-1 and agreement 100%; against a tuned one: not
    ./build/maskft probe -m $M --n 20 --out $T/p.jsonl --seed 2 2> /dev/null && [ "$(wc -l < $T/p.jsonl)" = 20 ] || return 1
    ./build/maskft eval -m $M --compare $M --probes $T/p.jsonl --gen 5 --json > $T/same.json || return 1
    grep -q '"kl_mean": 0.000000, "kl_p99": 0.000000, "same_top1": 1.0000, "generations": 5, "agree_n": 16, "agreement": 1.0000' $T/same.json || { cat $T/same.json; return 1; }
    ./build/maskft eval -m $T/a.bin -t $K --compare $M --probes $T/p.jsonl --gen 5 --json > $T/diff.json || return 1
    ! grep -q '"kl_mean": 0.000000' $T/diff.json || return 1
    printf '{"query": "Lily had a", "choices": [" cat", " zzq"], "gold": 0}\n{"query": "The sun was", "choices": [" hot", " xqz"], "gold": 0}\n' > $T/mc.jsonl
    ./build/maskft eval -m $M --mc $T/mc.jsonl --compare $M --probes $T/p.jsonl --gen 1 --json | grep -q '"acc": 1.0000, "acc_norm": 1.0000, "base_acc": 1.0000, "flipped": 0.0000' || return 1
    printf '{"query": "x", "choices": ["a"], "gold": 0}\n' > $T/badmc.jsonl
    ./build/maskft eval -m $M --mc $T/badmc.jsonl > $T/err.txt 2>&1; [ $? -eq 1 ] && grep -q "badmc.jsonl:1:" $T/err.txt
}
check "cli probe / eval --compare / --mc" cli_compare

cli_formats() { # convert to a Hugging Face folder and back; every command takes folders and GGUF files
    ./build/maskft convert -m $M -t tests/data/tok512-hf/tokenizer.json --out $T/s260/ 2> /dev/null || return 1
    [ -s $T/s260/config.json ] && [ -s $T/s260/model.safetensors ] && [ -s $T/s260/tokenizer.json ] || return 1
    ./build/maskft generate -m $T/s260 --temp 0 -n 200 2> /dev/null > $T/gen_hf.txt || return 1
    printf '\n' > $T/nl; cat tests/data/stories260K_greedy200.txt $T/nl | cmp - $T/gen_hf.txt || return 1
    ./build/maskft generate -m tests/data/tinyllamas-stories-260k-f32.gguf --temp 0 -n 200 2> /dev/null > $T/gen_gg.txt &&
        cmp $T/gen_hf.txt $T/gen_gg.txt || { echo "GGUF"; return 1; }
    # to GGUF (the tokenizer inside) and back: the same greedy text
    ./build/maskft convert -m $M --out $T/s260.gguf 2> /dev/null || { echo "-> GGUF"; return 1; }
    ./build/maskft generate -m $T/s260.gguf --temp 0 -n 200 2> /dev/null > $T/gen_w.txt &&
        cmp $T/gen_hf.txt $T/gen_w.txt || { echo "written GGUF"; return 1; }
    ./build/maskft convert -m tests/data/hf/qwen3-f32 --out $T/q3.gguf --out-type bf16 2> /dev/null &&
        ./build/maskft eval -m $T/q3.gguf --text tests/data/story.txt > /dev/null || { echo "folder -> bf16 GGUF"; return 1; }
    # the weights come back to the byte (llama2.c's freq_cis tables after them are recomputed)
    mkdir -p $T/conv; ./build/maskft convert -m $T/s260 --out $T/conv/back.bin 2> /dev/null && cmp -n 1040156 $M $T/conv/back.bin &&
        cmp $T/conv/tokenizer.json $T/s260/tokenizer.json || { echo "folder -> .bin"; return 1; }
    # train a folder into a folder in bf16; it loads, and export needs only the tokenizer
    ./build/maskft train -m tests/data/hf/qwen2-bf16 --data tests/data/facts.jsonl --epochs 2 --seq 40 --out $T/q2/ \
        --out-type bf16 2> /dev/null && grep -q '"torch_dtype": "bfloat16"' $T/q2/config.json || return 1
    ./build/maskft eval -m $T/q2 --text tests/data/story.txt > /dev/null || return 1
    ./build/maskft export -t tests/data/hf/qwen2-bf16 --data tests/data/facts.jsonl --out $T/x1.jsonl 2> /dev/null &&
        ./build/maskft export -m tests/data/hf/qwen2-bf16 --data tests/data/facts.jsonl --out $T/x2.jsonl 2> /dev/null &&
        cmp $T/x1.jsonl $T/x2.jsonl || { echo "export"; return 1; }
    ./build/maskft train -m $M --text tests/data/story.txt --steps 1 --out $T/y.bin --out-type f16 > $T/err.txt 2>&1
    [ $? -eq 2 ] && grep -q "out-type applies to a Hugging Face folder" $T/err.txt
}
check "cli convert / folders / GGUF / tokenizer-only export" cli_formats

cli_quickstart() { ./build/quickstart > $T/qs.txt && tail -1 $T/qs.txt | grep -q "^Lily had a cat named Mochi\.$"; }
check "quickstart learns the fact" cli_quickstart

toc_in_order() { # every anchor of maskft.c's table of contents: once in the text, in order, no prefix of another
    sed -n '1,/^\*\//p' maskft.c | grep -o '>>[a-z][a-z-]*' > $T/toc.txt
    [ -s $T/toc.txt ] || { echo "no table of contents"; return 1; }
    prev=0
    while read -r a; do
        n=$(grep -c -F -- "$a" maskft.c)
        [ "$n" = 2 ] || { echo "$a is on $n lines (the table of contents and its section only)"; return 1; }
        line=$(grep -n -F -- "$a" maskft.c | sed -n 2p | cut -d: -f1)
        [ "$line" -gt "$prev" ] || { echo "$a (line $line) is out of order"; return 1; }
        prev=$line
    done < $T/toc.txt
    # and no section that the table of contents leaves out
    sed '1,/^\*\//d' maskft.c | grep -o '>>[a-z][a-z-]*' | sort -u > $T/sec.txt
    sort -u $T/toc.txt | cmp -s - $T/sec.txt || { echo "sections not in the table of contents:"; sort -u $T/toc.txt | comm -13 - $T/sec.txt; return 1; }
}
check "maskft.c table of contents: each anchor once, in file order" toc_in_order

docs_in_sync() { # the quick start in maskft.h is the quickstart program, line for line
    sed -n '/^    \/\/ >>quickstart$/,/^    \/\/ >>end$/p' maskft.h > $T/h.txt
    sed -n '/^    \/\/ >>quickstart$/,/^    \/\/ >>end$/p' examples/quickstart.c > $T/q.txt
    [ -s $T/q.txt ] && diff $T/h.txt $T/q.txt
}
check "maskft.h quick start matches examples/quickstart.c" docs_in_sync

qs_ok() { "$1" > $T/qs_out.txt && tail -1 $T/qs_out.txt | grep -q "^Lily had a cat named Mochi\.$"; }   # from the root: models/

# the library dropped into a project: quickstart.c beside maskft.h and maskft.c, nothing else
dropin() {
    rm -rf $T/dropin; mkdir -p $T/dropin; cp examples/quickstart.c maskft.h maskft.c $T/dropin/ || return 1
    (cd $T/dropin && ${CC:-cc} -O2 -o quickstart quickstart.c maskft.c -lm) && qs_ok $T/dropin/quickstart
}
check "quickstart builds beside maskft.h + maskft.c alone (cc -O2 quickstart.c maskft.c -lm)" dropin

# the library installed: make install, then pkg-config; DESTDIR stages, uninstall removes
installed() {
    P=$PWD/build/prefix; rm -rf "$P"
    $MAKE -s install PREFIX="$P" >/dev/null || return 1
    [ -f "$P/include/maskft.h" ] && [ -f "$P/lib/libmaskft.a" ] && [ -f "$P/lib/pkgconfig/maskft.pc" ] || return 1
    v=$(sed -n 's/^#define MFT_VERSION_STRING "\(.*\)"$/\1/p' maskft.h)
    [ "$(PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --modversion maskft)" = "$v" ] || { echo "version: not $v"; return 1; }
    flags=$(PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config --cflags --libs maskft) || return 1
    echo "pkg-config: $flags"
    mkdir -p $T/inst; cp examples/quickstart.c $T/inst/   # no maskft.h beside it: the installed one
    ${CC:-cc} -O2 -o $T/inst/quickstart $T/inst/quickstart.c $flags && qs_ok $T/inst/quickstart || return 1
    $MAKE -s install DESTDIR="$PWD/$T/stage" PREFIX=/usr >/dev/null && grep -q '^prefix=/usr$' $T/stage/usr/lib/pkgconfig/maskft.pc &&
        [ -f $T/stage/usr/include/maskft.h ] && [ -f $T/stage/usr/lib/libmaskft.a ] || { echo "DESTDIR"; return 1; }
    $MAKE -s uninstall DESTDIR="$PWD/$T/stage" PREFIX=/usr >/dev/null && [ -z "$(find $T/stage -type f)" ] || { echo "uninstall"; return 1; }
}
if command -v pkg-config >/dev/null 2>&1; then
    check "make install; quickstart built with pkg-config --cflags --libs maskft" installed
else
    skip_or_fail "make install / pkg-config: pkg-config not installed (apt-get install pkg-config)"
fi

# maskft.c compiles as C++ (stb's libraries do), and links either way with C
if command -v "${CXX:-g++}" >/dev/null 2>&1; then
    cxx_lib() { $MAKE -s build/cxx.stamp; }
    check "maskft.c compiles as C++ (native SIMD + OpenMP, MFT_NO_SIMD, MFT_NO_TEXT)" cxx_lib
    cxx_link() { $MAKE -s build/quickstart_on_cxx >/dev/null && qs_ok ./build/quickstart_on_cxx; }
    check "quickstart (C) runs on the C++-built maskft.o" cxx_link
    cxx_header() { $MAKE -s build/quickstart_cxx >/dev/null && qs_ok ./build/quickstart_cxx; }
    check "quickstart compiled as C++ runs on the C-built libmaskft.a (extern \"C\")" cxx_header
else
    skip_or_fail "maskft.c compiles as C++: g++ not installed"
fi
if command -v "${CROSSXX:-aarch64-linux-gnu-g++}" >/dev/null 2>&1; then
    cxx_neon() { $MAKE -s build/cxx_neon.stamp; }
    check "maskft.c compiles as C++ for aarch64 (NEON)" cxx_neon
else
    skip_or_fail "maskft.c as C++ for aarch64: aarch64-linux-gnu-g++ not installed (apt-get install g++-aarch64-linux-gnu)"
fi

# every reader under libFuzzer + ASan/UBSan for FUZZ_SECONDS each (30), two at a time: one check
# per harness (tests/fuzz/run.sh; a crashing input is kept under build/fuzz/artifacts/)
echo "=== fuzz"
if why=$(sh tests/fuzz/run.sh --probe); then
    t0=$(date +%s)
    FUZZ_SECONDS=${FUZZ_SECONDS:-30} MAKE=$MAKE sh tests/fuzz/run.sh > build/fuzz/run.txt 2>&1
    n=0
    while IFS= read -r l; do
        case "$l" in
            "ok   fuzz_"*) echo "$l"; PASS=$((PASS + 1)); n=$((n + 1)) ;;
            "FAIL fuzz"*) echo "$l"; FAIL=$((FAIL + 1)); n=$((n + 1)) ;;
        esac
    done < build/fuzz/run.txt
    [ $n -gt 0 ] || { tail -20 build/fuzz/run.txt; echo "FAIL fuzz: no harness ran"; FAIL=$((FAIL + 1)); }
    echo "fuzz: $n harnesses in $(($(date +%s) - t0)) s"
else
    skip_or_fail "fuzz: $why"
fi

echo
[ -n "$MISSING" ] && echo "missing assets: $(echo "$MISSING" | paste -sd, - | sed 's/,/, /g') (tests/data or ../shared/assets)"
if [ "$SKIP" -gt 0 ]; then echo "$PASS passed, $FAIL failed, $SKIP skipped"; else echo "$PASS passed, $FAIL failed"; fi
[ "$FAIL" -eq 0 ]
