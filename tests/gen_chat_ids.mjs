// gen_chat_ids.mjs -- token ids of the golden chat renderings (tests/data/chat_goldens.jsonl)
// as a Hugging Face tokenizer produces them with special tokens parsed, from @lenml/tokenizers
// (a dependency-free fork of transformers.js's tokenizers), so the test can check that maskft's
// tokenizers give the same ids for every template. Llama-3 and Qwen3 texts go through their own
// tokenizer.json; ChatML through Qwen3's (it has <|im_start|> and <|im_end|>); the Llama-2,
// Mistral and Zephyr forms through Mistral-7B's tokenizer (tests/data/mistral, see its README).
// Usage (from a folder with npm install @lenml/tokenizers@3.7.2):
//   node gen_chat_ids.mjs /path/to/maskft > tests/data/chat_ids.jsonl
import { readFileSync } from "fs";
import { TokenizerLoader } from "@lenml/tokenizers";

const root = process.argv[2];
const load = (dir) => TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(`${dir}/tokenizer.json`, "utf8")),
  tokenizerConfig: JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, "utf8")),
});
const toks = {
  llama3: load(`${root}/../shared/assets/tokenizers/llama3`),
  qwen3: load(`${root}/tests/data/qwen3`),
  mistral: load(`${root}/tests/data/mistral`),
};
const which = { llama3: "llama3", qwen3: "qwen3", chatml: "qwen3", llama2: "mistral", mistral: "mistral",
                "mistral-v0.1": "mistral", "mistral-v3": "mistral", zephyr: "mistral" };
for (const line of readFileSync(`${root}/tests/data/chat_goldens.jsonl`, "utf8").split("\n")) {
  if (!line.trim()) continue;
  const g = JSON.parse(line);
  const tk = which[g.template];
  if (!tk || g.add_generation_prompt) continue;
  const ids = toks[tk].encode(g.text, { add_special_tokens: false });
  const record = JSON.stringify({ messages: g.messages });
  process.stdout.write(JSON.stringify({ template: g.template, tokenizer: tk, record, text: g.text, ids }) + "\n");
}
