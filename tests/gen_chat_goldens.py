#!/usr/bin/env python3
"""gen_chat_goldens.py -- renderings of chat conversations by the models' own Jinja chat
templates, rendered the way Hugging Face transformers renders them (a sandboxed jinja2
environment with trim_blocks and lstrip_blocks), for maskft's built-in templates to match
byte for byte. Needs Debian's python3-jinja2.

Usage: /usr/bin/python3 tests/gen_chat_goldens.py > tests/data/chat_goldens.jsonl
Templates: Llama-3 (tokenizer_config.json of the shared Llama-3 tokenizer), Qwen3
(tests/data/qwen3/tokenizer_config.json), Phi-3 (tokenizer.chat_template of
tests/data/ggml-vocab-phi-3.gguf, read with a few lines of GGUF parsing below), and the
chat_template strings in tests/data/templates/ (ChatML, Zephyr, Llama-2, three Mistral forms,
Gemma, Gemma 3; where each was published: tests/data/README.md). A conversation a template
rejects (raise_exception) is skipped for that template.
"""
import json, os, struct, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment

def gguf_string(path, key):
    d = open(path, "rb").read()
    assert d[:4] == b"GGUF"
    ver, = struct.unpack_from("<I", d, 4)
    p = 8
    n_t, n_kv = struct.unpack_from("<QQ", d, p); p += 16
    def s(p):
        n, = struct.unpack_from("<Q", d, p); return d[p + 8:p + 8 + n].decode(), p + 8 + n
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def skip(t, p):
        if t == 8: return s(p)[1]
        if t == 9:
            et, n = struct.unpack_from("<IQ", d, p); p += 12
            for _ in range(n): p = skip(et, p)
            return p
        return p + sizes[t]
    for _ in range(n_kv):
        k, p = s(p)
        t, = struct.unpack_from("<I", d, p); p += 4
        if k == key and t == 8: return s(p)[0]
        p = skip(t, p)
    return None

here = os.path.dirname(os.path.abspath(__file__))
shared = os.path.join(here, "..", "..", "shared", "assets")
templates = {
    "llama3": (json.load(open(os.path.join(shared, "tokenizers", "llama3", "tokenizer_config.json")))["chat_template"], "<|begin_of_text|>", "<|eot_id|>"),
    "qwen3": (json.load(open(os.path.join(here, "data", "qwen3", "tokenizer_config.json")))["chat_template"], "", "<|im_end|>"),
    "phi3": (gguf_string(os.path.join(here, "data", "ggml-vocab-phi-3.gguf"), "tokenizer.chat_template"), "<s>", "<|endoftext|>"),
}
# the other templates, as published in the models' tokenizer_config.json files (sources in
# tests/data/README.md), one file each
for name, bos, eos in [("chatml", "<s>", "</s>"), ("zephyr", "<s>", "</s>"), ("llama2", "<s>", "</s>"),
                       ("mistral", "<s>", "</s>"), ("mistral-v0.1", "<s>", "</s>"), ("mistral-v3", "<s>", "</s>"),
                       ("gemma", "<bos>", "<eos>"), ("gemma3", "<bos>", "<eos>")]:
    templates[name] = (open(os.path.join(here, "data", "templates", name + ".jinja")).read(), bos, eos)
S, U, A, T = "system", "user", "assistant", "tool"
convs = [
    [(U, "Hello!")],
    [(U, "Hello!"), (A, "Hi there. How can I help?")],
    [(S, "You are a helpful assistant."), (U, "What is the capital of France?"), (A, "Paris.")],
    [(S, "Be brief."), (U, "  spaces around  "), (A, "\n\nOK\n"), (U, "Again?"), (A, "Yes.")],
    [(U, "Think first."), (A, "<think>\nLet me see.\n</think>\n\nThe answer is 4.")],
    [(U, "q1"), (A, "<think>old reasoning</think>a1"), (U, "q2"), (A, "a2")],
    [(U, "Use the tool."), (A, "Calling it."), (T, "{\"temp\": 21}"), (T, "{\"wind\": 3}"), (A, "It is 21 degrees.")],
    [(S, "sys"), (U, "Ünïcödé – ☃ 中文"), (A, "")],
    [(U, "Hello"), (A, "Hi there"), (U, "Who are you"), (A, "   I am an assistant   "), (U, "Another question")],
    [(S, "You are a helpful assistant"), (U, "  Hello  "), (A, "Hi there")],
    [(S, " sys with spaces \n"), (U, "u1"), (A, " a1 "), (U, "u2")],
    [(U, "q"), (S, "a system turn in the middle"), (U, "x")],
    [(U, "q"), (T, "a tool turn where the assistant would be"), (U, "x"), (A, "y")],
]
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False)
def raise_exception(msg): raise ValueError(msg)
env.globals["raise_exception"] = raise_exception
for name, (tpl, bos, eos) in templates.items():
    t = env.from_string(tpl)
    for conv in convs:
        msgs = [{"role": r, "content": c} for r, c in conv]
        if name == "phi3" and any(r == T for r, _ in conv): continue
        for gen in (False, True):
            try:
                text = t.render(messages=msgs, bos_token=bos, eos_token=eos, add_generation_prompt=gen)
            except Exception:
                continue  # the template refuses this conversation
            print(json.dumps({"template": name, "messages": msgs, "add_generation_prompt": gen, "text": text}, ensure_ascii=False))
