#!/bin/sh
# make demo: the bundled stories260K model, start to finish with the maskft tool.
set -e
M=models/stories260K.bin
K=models/tok512.bin
mkdir -p build
echo "== 1. generate: greedy (--temp 0), the text llama2.c's own test expects"
./build/maskft generate -m $M -t $K --temp 0 -n 60
echo "== 2. eval: perplexity of tests/data/story.txt under the base model"
./build/maskft eval -m $M -t $K --text tests/data/story.txt
echo
echo "== 3. train: 30 AdamW steps of next-token training on that story"
./build/maskft train -m $M -t $K --text tests/data/story.txt --out build/story_tuned.bin \
    --steps 30 --lr 1e-3 --batch 2 --seq 64 --seed 1 | sed -n '1p;2p;3p;$p;/step   30/p'
echo
echo "== 4. eval again: the story's perplexity under the tuned model"
./build/maskft eval -m build/story_tuned.bin -t $K --text tests/data/story.txt
echo
echo "== 5. the tuned model, prompted with the story's first words"
./build/maskft generate -m build/story_tuned.bin -t $K --temp 0 -n 40 -p "Once upon a time, there was a little fox"
echo "== 6. quickstart: teach one fact by training only its tokens (examples/quickstart.c)"
./build/quickstart
