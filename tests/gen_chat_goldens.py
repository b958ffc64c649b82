#!/usr/bin/env python3
"""gen_chat_goldens.py -- renderings of chat conversations by the models' own Jinja chat
templates, rendered the way Hugging Face transformers renders them (a sandboxed jinja2
environment with trim_blocks and lstrip_blocks), for maskft's built-in templates to match
byte for byte. Needs Debian's python3-jinja2.

Usage: /usr/bin/python3 tests/gen_chat_goldens.py > tests/data/chat_goldens.jsonl
Templates: Llama-3 (tokenizer_config.json of the shared Llama-3 tokenizer), Qwen3
(tests/data/qwen3/tokenizer_config.json), Phi-3 (tokenizer.chat_template of
tests/data/ggml-vocab-phi-3.gguf, read with a few lines of GGUF parsing below), and the
chat_template strings of teknium/OpenHermes-2.5-Mistral-7B (ChatML),
mistralai/Mixtral-8x7B-Instruct-v0.1, meta-llama/Llama-2-13b-chat-hf and google/gemma-7b-it
as published in their tokenizer_config.json files (quoted from a public test of
llama.cpp-compatible template rendering). A conversation a template rejects
(raise_exception) is skipped for that template.
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
RAISE = "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
ALT = "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" + RAISE + "{% endif %}"
templates["chatml"] = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}".replace("\\\\n", "\\n"), "<s>", "</s>")
templates["mistral"] = ("{{ bos_token }}{% for message in messages %}" + ALT + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}", "<s>", "</s>")
templates["llama2"] = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}" + ALT + "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}", "<s>", "</s>")
templates["gemma"] = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}" + ALT + "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}", "<bos>", "<eos>")
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
