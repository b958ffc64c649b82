#!/bin/sh
# Regenerates tests/fuzz/seeds/ from the bundled files and tests/data (run from the repository
# root: sh tests/fuzz/make_seeds.sh). The binary seeds are tiny models written by gen_seeds.c;
# the text seeds are below. Inputs that once crashed a reader are kept here as regressions
# (named for what they found). The corpora stay small: the fuzzer grows its own copy under
# build/fuzz/ and never writes here.
set -eu
S=tests/fuzz/seeds
CC=${CC:-cc}
rm -rf $S; mkdir -p build/fuzz
for c in model checkpoint gguf hf tokenizer tokconfig json record draft utf8; do mkdir -p $S/$c; done
$CC -O1 -std=c99 -D_POSIX_C_SOURCE=200809L -o build/fuzz/gen_seeds tests/fuzz/gen_seeds.c -lm
./build/fuzz/gen_seeds
seed() { printf '%b' "$3" > "$S/$1/$2"; }   # seed CORPUS NAME TEXT (printf %b escapes)

# tokenizers: every kind recognised by content, truncated too
cp models/tok512.bin $S/tokenizer/tok512.bin
head -c 100 models/tok512.bin > $S/tokenizer/tok512.bin.cut100
cp tests/data/tok512.model $S/tokenizer/tok512.model
cp tests/data/spm-user.model $S/tokenizer/spm-user.model
head -c 300 tests/data/tok512.model > $S/tokenizer/tok512.model.cut300
cp tests/data/tok512-hf/tokenizer.json $S/tokenizer/tok512-hf.json
# a byte-level BPE tokenizer.json, as small as one can be
seed tokenizer bpe-tiny.json '{"version": "1.0", "added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": true}], "normalizer": null, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}, "decoder": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\\u0120": 3, "\\u0120ab": 4, "<|endoftext|>": 5}, "merges": ["a b", "\\u0120 ab"]}}'

# tokenizer_config.json and generation_config.json
cp tests/data/tok512-hf/tokenizer_config.json $S/tokconfig/tok512-hf.json
cp tests/data/gpt2/tokenizer_config.json $S/tokconfig/gpt2.json
cp tests/data/mistral/tokenizer_config.json $S/tokconfig/mistral.json
cp tests/data/hf/stories260K/generation_config.json $S/tokconfig/generation_config.json
seed tokconfig chatml.json '{"bos_token": "<s>", "eos_token": {"content": "</s>", "special": true}, "pad_token": null, "add_bos_token": true, "add_eos_token": false, "chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>\\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\\n{% endif %}", "added_tokens_decoder": {"0": {"content": "<unk>", "special": true}}}'
seed tokconfig eos-list.json '{"bos_token_id": 1, "eos_token_id": [2, 1, 1e10, -1]}'

# JSON: what the parser must take and refuse; a first string that is empty once left the
# string pool unallocated
seed json empty-string.json '""'
seed json empty-in-array.json '[""]'
seed json empty-key.json '{"": ""}'
seed json escapes.json '{"a": "\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\/", "b": [1, -2.5e-3, 1e308, true, false, null, {}], "c": {"d": []}}'
seed json bad-surrogate.json '["\\udc00", "\\ud800x"]'
seed json deep.json '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{"x": 1}]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'
seed json jsonl.jsonl '{"a": 1}\n\n  \r\n{"b": "\\u0000"}\nnot json\n{"c": "caf\xc3\xa9"}\n'
head -3 tests/data/chat_goldens.jsonl > $S/json/chat_goldens.jsonl

# training records (fuzz_record reads every line of a seed)
cp tests/data/facts.jsonl $S/record/facts.jsonl
head -c 2000 tests/data/spm_user.jsonl | head -3 > $S/record/spm_user.jsonl
seed record kinds.jsonl '{"text": "Once upon a time {{key}}Lily{{/key}} ran."}\n{"prompt": "Tom had a", "completion": " {{key}}dog{{/key}}."}\n{"input_ids": [1, 403, 407], "labels": [-100, 403, 407]}\n{"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello.", "train": true, "weight": 0.5}]}\n'
seed record key-spans.jsonl '{"messages": [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "Lily the caf\xc3\xa9 cat.", "key_spans": [[0, 4], [9, 13]]}]}\n'
# found before: a message'"'"'s key spans leaked when a later span was invalid; numbers were
# cast to int before their range check
seed record key-spans-bad-later.jsonl '{"messages": [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "Lily.", "key_spans": [[0, 4], [3, 99]]}]}\n'
seed record key-spans-1e10.jsonl '{"messages": [{"role": "assistant", "content": "Lily.", "key_spans": [[0, 1e10]]}]}\n'
seed record input-ids-1e10.jsonl '{"input_ids": [1, 1e10], "labels": [-100, 1e10]}\n'
seed record context.jsonl '{"context": "Lily has a cat.", "prompt": "Lily had a", "completion": " cat."}\n'
seed record escaped-key.jsonl '{"text": "a \\\\{{key}} b {{key}}c{{/key}}"}\n'

# records to draft
head -2 tests/data/facts.jsonl > $S/draft/facts.jsonl
seed draft prompt.json '{"prompt": "Once upon a time, Tom"}'
seed draft user-last.json '{"messages": [{"role": "user", "content": "Lily went to the park."}]}'
seed draft trl.json '{"prompt": [{"role": "user", "content": "Tom had a dog"}], "completion": [{"role": "assistant", "content": " named Rex."}]}'
seed draft text.json '{"text": "Lily."}'
seed draft key-spans-bad-later.json '{"messages": [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "Lily.", "key_spans": [[0, 4], [3, 99]]}]}'

# UTF-8: text, every length of character, and what is not UTF-8
cp tests/data/story.txt $S/utf8/story.txt
seed utf8 multibyte.txt 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd \xe2\x96\x81 \xc2\x80\xdf\xbf\xe0\xa0\x80\xf4\x8f\xbf\xbf'
seed utf8 invalid.txt '\xc0\xaf \xe0\x80\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xf8\x88\x80\x80\x80 \xc3 \xe2\x82 \xff\xfe'
seed utf8 spaces.txt '  two  spaces \t\ttabs\n\nnewlines   '
du -sh $S
