// gen_hfjs_ids.mjs -- reference ids from @lenml/tokenizers (a dependency-free fork of
// transformers.js's tokenizers, which follow Hugging Face tokenizers) for every text of a
// {"text": ...} JSONL file, written as {"text": ..., "ids": [...]} lines.
// Usage: node tests/gen_hfjs_ids.mjs TOKENIZER_DIR TEXTS.jsonl > OUT.jsonl
// (npm install @lenml/tokenizers@3.7.2 in a scratch folder and run with NODE_PATH pointing at
// its node_modules, or from that folder.)
import { readFileSync } from "fs";
import { TokenizerLoader } from "@lenml/tokenizers";

const [dir, texts] = process.argv.slice(2);
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(`${dir}/tokenizer.json`, "utf8")),
  tokenizerConfig: JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, "utf8")),
});
for (const line of readFileSync(texts, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const { text } = JSON.parse(line);
  const ids = tokenizer.encode(text, { add_special_tokens: false });
  process.stdout.write(JSON.stringify({ text, ids }) + "\n");
}
