/* maskft - the command-line tool: generate, eval, train.
   Built by `make`; every subcommand prints its usage with -h. */
#include "../maskft.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h> /* isatty */

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "maskft: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static void die_err(const mft_error *e) { die("%s", e->msg); }

/* ---- argument parsing: --name VALUE pairs, a short alias each ---------------------------- */

typedef struct {
    const char *model, *tok, *prompt, *text, *out, *data, *policy, *tmpl, *eligible, *eot, *html;
    int no_eot;
    int n, steps, batch, seq, warmup, threads, seed_set, vocab, special, offsets, bos, eos;
    float temp, top_p, lr, wd, clip;
    unsigned long long seed;
} args_t;

static double num(const char *flag, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "maskft: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi, v);
        exit(1);
    }
    return x;
}

static void parse(int argc, char **argv, args_t *a, const char *usage)
{
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) { fputs(usage, stdout); exit(0); }
        if (!strcmp(f, "--special")) { a->special = 1; continue; }
        if (!strcmp(f, "--offsets")) { a->offsets = 1; continue; }
        if (!strcmp(f, "--bos")) { a->bos = 1; continue; }
        if (!strcmp(f, "--no-eot")) { a->no_eot = 1; continue; }
        if (!strcmp(f, "--eos")) { a->eos = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "maskft: %s needs a value\n%s", f, usage); exit(1); }
        const char *v = argv[++i];
        if (!strcmp(f, "-m") || !strcmp(f, "--model")) a->model = v;
        else if (!strcmp(f, "-t") || !strcmp(f, "--tokenizer")) a->tok = v;
        else if (!strcmp(f, "-p") || !strcmp(f, "--prompt")) a->prompt = v;
        else if (!strcmp(f, "--text")) a->text = v;
        else if (!strcmp(f, "-o") || !strcmp(f, "--out")) a->out = v;
        else if (!strcmp(f, "-n")) a->n = (int)num(f, v, 0, 1e9);
        else if (!strcmp(f, "--temp")) a->temp = (float)num(f, v, 0, 100);
        else if (!strcmp(f, "--top-p")) a->top_p = (float)num(f, v, 1e-6, 1);
        else if (!strcmp(f, "--seed")) { a->seed = (unsigned long long)num(f, v, 0, 1.8e19); a->seed_set = 1; }
        else if (!strcmp(f, "--steps")) a->steps = (int)num(f, v, 1, 1e9);
        else if (!strcmp(f, "--lr")) a->lr = (float)num(f, v, 0, 10);
        else if (!strcmp(f, "--batch")) a->batch = (int)num(f, v, 1, 1e6);
        else if (!strcmp(f, "--seq")) a->seq = (int)num(f, v, 1, 1e7);
        else if (!strcmp(f, "--warmup")) a->warmup = (int)num(f, v, 0, 1e9);
        else if (!strcmp(f, "--weight-decay")) a->wd = (float)num(f, v, 0, 10);
        else if (!strcmp(f, "--clip")) a->clip = (float)num(f, v, 0, 1e9);
        else if (!strcmp(f, "--threads")) a->threads = (int)num(f, v, 0, 1024);
        else if (!strcmp(f, "--vocab")) a->vocab = (int)num(f, v, 1, 1 << 22);
        else if (!strcmp(f, "--data")) a->data = v;
        else if (!strcmp(f, "--policy")) a->policy = v;
        else if (!strcmp(f, "--template")) a->tmpl = v;
        else if (!strcmp(f, "--eligible")) a->eligible = v;
        else if (!strcmp(f, "--eot")) a->eot = v;
        else if (!strcmp(f, "--html")) a->html = v;
        else { fprintf(stderr, "maskft: unknown option %s\n%s", f, usage); exit(1); }
    }
}

static char *read_file(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open '%s'", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1L << 30)) die("cannot read '%s' (or it is over 1 GiB)", path);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) die("cannot read '%s'", path);
    buf[n] = 0;
    fclose(f);
    *len = n;
    return buf;
}

/* BOS + the text through the model's encoder, as the model was trained */
static int *encode_file(const mft_tokenizer *tok, const char *path, int *n_out)
{
    long len;
    mft_error err;
    char *text = read_file(path, &len);
    if (len > (1L << 28)) die("'%s' is too large to encode in one piece", path);
    /* NFC (Qwen) can triple a text before it is split into tokens */
    int cap = 3 * (int)len + 8, n;
    int *ids = malloc((size_t)cap * sizeof(int));
    if (!ids) die("out of memory for '%s'", path);
    if (mft_encode(tok, text, (int)len, MFT_BOS, ids, cap, &n, NULL, &err)) die_err(&err);
    free(text);
    *n_out = n;
    return ids;
}

/* -t if given, else the tokenizer that comes with the model (GGUF, or a file beside it) */
static void open_tokenizer(const char *tokpath, const char *model, int vocab, mft_tokenizer *tok)
{
    mft_error err;
    mft_status s = tokpath ? mft_tokenizer_load(tok, tokpath, vocab, &err) : mft_tokenizer_for_model(tok, model, vocab, &err);
    if (s) die_err(&err);
}

static void need(const char *v, const char *what, const char *usage)
{
    if (!v) { fprintf(stderr, "maskft: missing %s\n%s", what, usage); exit(1); }
}

/* ---- generate ------------------------------------------------------------------------------ */

static const char *gen_usage =
    "usage: maskft generate -m MODEL [-t TOKENIZER] [-p PROMPT] [-n N] [--temp T] [--top-p P] [--seed S] [--threads K]\n"
    "  Prints the prompt and N new tokens (default 256). --temp 0 is greedy (argmax). Defaults:\n"
    "  --temp 1.0 --top-p 0.9, seed from the clock. Stops early at BOS/EOS (a TinyStories model\n"
    "  ends a story with BOS) or at the end of the context.\n";

static int cmd_generate(int argc, char **argv)
{
    args_t a = { 0 };
    a.prompt = ""; a.n = 256; a.temp = 1.0f; a.top_p = 0.9f;
    parse(argc, argv, &a, gen_usage);
    need(a.model, "-m MODEL", gen_usage);
    mft_error err;
    mft_model m;
    mft_tokenizer tok;
    if (mft_model_open(&m, a.model, 1, 1, MFT_GENERATE, &err)) die_err(&err);
    m.n_threads = a.threads;
    open_tokenizer(a.tok, a.model, m.cfg.vocab_size, &tok);
    int plen = (int)strlen(a.prompt), n_prompt;
    int *prompt = malloc(((size_t)plen + 3) * sizeof(int));
    if (!prompt) die("%s", "out of memory");
    if (mft_encode(&tok, a.prompt, plen, MFT_BOS, prompt, plen + 3, &n_prompt, NULL, &err)) die_err(&err);
    if (n_prompt == 0) die("%s", "this tokenizer has no BOS token: give a prompt with -p");
    if (n_prompt > m.cfg.seq_len) die("the prompt is longer than the context (%s)", "see -n");
    uint64_t rng = a.seed_set ? a.seed : (uint64_t)time(NULL);
    long total = (long)n_prompt - 1 + a.n;
    if (total > m.cfg.seq_len) total = m.cfg.seq_len;
    int token = prompt[0], generated = 0;
    clock_t t0 = clock();
    for (int pos = 0; pos < total; pos++) {
        const float *logits = mft_decode(&m, token, pos, &err);
        if (!logits) die_err(&err);
        int next;
        if (pos + 1 < n_prompt) {
            next = prompt[pos + 1];
        } else {
            next = mft_sample(m.s.logits, m.cfg.vocab_size, a.temp, a.top_p, &rng);
            generated++;
            if (next == tok.bos_id || next == tok.eos_id) break;
        }
        int len;
        const char *piece = mft_token_bytes(&tok, token, next, &len);
        fwrite(piece, 1, (size_t)len, stdout);
        fflush(stdout);
        token = next;
    }
    printf("\n");
    fflush(stdout);
    double dt = (double)(clock() - t0) / CLOCKS_PER_SEC;
    fprintf(stderr, "%d tokens generated, %.1f tok/s (CPU time, %s)\n", generated, dt > 0 ? generated / dt : 0.0, mft_simd_name());
    free(prompt);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    return 0;
}

/* ---- eval ------------------------------------------------------------------------------------ */

static const char *eval_usage =
    "usage: maskft eval -m MODEL [-t TOKENIZER] --text FILE [--threads K]\n"
    "  Mean negative log-likelihood per predicted token and perplexity of FILE, encoded as the\n"
    "  model was trained: BOS, then the text. Every token after BOS is predicted and counted. A\n"
    "  text longer than the context is scored in consecutive windows, each starting with BOS.\n";

static int cmd_eval(int argc, char **argv)
{
    args_t a = { 0 };
    parse(argc, argv, &a, eval_usage);
    need(a.model, "-m MODEL", eval_usage);
    need(a.text, "--text FILE", eval_usage);
    mft_error err;
    mft_config c;
    mft_model m;
    mft_tokenizer tok;
    if (mft_checkpoint_config(a.model, &c, &err)) die_err(&err);
    if (mft_model_open(&m, a.model, 1, c.seq_len, MFT_FORWARD, &err)) die_err(&err);
    m.n_threads = a.threads;
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    int n;
    int *ids = encode_file(&tok, a.text, &n);
    int body = n - 1, win = c.seq_len, windows = 0; /* text tokens, and per window */
    if (body <= 0) die("'%s' is empty: nothing to score", a.text);
    int *buf = malloc((size_t)c.seq_len * 2 * sizeof(int));
    if (!buf) die("%s", "out of memory");
    double nll = 0.0;
    for (int s = 0; s < body; s += win) {
        int len = body - s < win ? body - s : win;
        /* a window of len positions: inputs BOS and text tokens s..s+len-2, targets text
           tokens s..s+len-1, so each text token is predicted exactly once overall */
        buf[0] = tok.bos_id;
        memcpy(buf + 1, ids + 1 + s, (size_t)(len - 1) * sizeof(int));
        memcpy(buf + c.seq_len, ids + 1 + s, (size_t)len * sizeof(int));
        if (mft_forward(&m, buf, buf + c.seq_len, NULL, 1, len, &err)) die_err(&err);
        nll += m.fwd_loss_sum;
        windows++;
    }
    printf("file: %s\n", a.text);
    printf("tokens scored: %d (after BOS), in %d window%s of up to %d tokens, each starting with BOS\n",
           body, windows, windows == 1 ? "" : "s", c.seq_len);
    printf("mean NLL: %.6f nats/token\n", nll / body);
    printf("perplexity: %.4f\n", exp(nll / body));
    free(buf);
    free(ids);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    return 0;
}

/* ---- train ----------------------------------------------------------------------------------- */

static const char *train_usage =
    "usage: maskft train -m MODEL [-t TOKENIZER] --text FILE --out OUT.bin [--steps 100] [--lr 1e-3]\n"
    "                    [--batch 4] [--seq 256] [--warmup 0] [--weight-decay 0.01] [--clip 1.0]\n"
    "                    [--seed S] [--threads K]\n"
    "  Plain next-token training on a text file (every token weighted 1): each step trains on\n"
    "  --batch windows of --seq tokens drawn at random from BOS + the text (the whole text as one\n"
    "  window if it is shorter), with AdamW and a cosine schedule, and prints the loss. Saves a\n"
    "  llama2.c checkpoint that generate and eval load.\n";

static int cmd_train(int argc, char **argv)
{
    args_t a = { 0 };
    mft_train_opts o = mft_train_opts_default();
    a.steps = 100; a.lr = o.lr; a.batch = 4; a.seq = 256; a.wd = o.weight_decay; a.clip = o.max_grad_norm;
    parse(argc, argv, &a, train_usage);
    need(a.model, "-m MODEL", train_usage);
    need(a.text, "--text FILE", train_usage);
    need(a.out, "--out OUT.bin", train_usage);
    mft_error err;
    mft_config c;
    mft_tokenizer tok;
    if (mft_checkpoint_config(a.model, &c, &err)) die_err(&err);
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    int n;
    int *ids = encode_file(&tok, a.text, &n);
    if (n < 2) die("'%s' is empty: nothing to train on", a.text);
    int T = a.seq < c.seq_len ? a.seq : c.seq_len, B = a.batch;
    if (T > n - 1) { T = n - 1; B = 1; } /* the whole text fits in one window */
    mft_model m;
    if (mft_model_open(&m, a.model, B, T, MFT_TRAIN, &err)) die_err(&err);
    m.n_threads = a.threads;
    o.lr = a.lr; o.weight_decay = a.wd; o.max_grad_norm = a.clip;
    o.warmup_steps = a.warmup; o.total_steps = a.steps; o.min_lr_ratio = 0.1f;
    int *in = malloc((size_t)B * T * sizeof(int)), *tg = malloc((size_t)B * T * sizeof(int));
    if (!in || !tg) die("%s", "out of memory");
    uint64_t rng = a.seed_set && a.seed ? a.seed : 1337; /* xorshift needs a nonzero state */
    printf("training on %d tokens of %s: %d steps of %d x %d, lr %g, %s\n", n, a.text, a.steps, B, T, (double)o.lr, mft_simd_name());
    for (int s = 0; s < a.steps; s++) {
        for (int b = 0; b < B; b++) {
            int start = 0, span = n - 1 - T;
            if (span > 0) {
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                start = (int)(rng % (uint64_t)(span + 1));
            }
            memcpy(in + (size_t)b * T, ids + start, (size_t)T * sizeof(int));
            memcpy(tg + (size_t)b * T, ids + start + 1, (size_t)T * sizeof(int));
        }
        mft_step_info info;
        clock_t t0 = clock();
        if (mft_train_step(&m, &o, in, tg, NULL, B, T, &info, &err) < 0) die_err(&err);
        double dt = (double)(clock() - t0) / CLOCKS_PER_SEC;
        printf("step %4d/%d  loss %.4f  lr %.2e  grad_norm %.3f  (%.0f ms cpu)\n", s + 1, a.steps, info.loss,
               (double)info.lr, (double)info.grad_norm, dt * 1000);
        fflush(stdout);
    }
    if (mft_model_save(&m, a.out, &err)) die_err(&err);
    printf("saved %s\n", a.out);
    free(in); free(tg); free(ids);
    mft_model_free(&m);
    mft_tokenizer_free(&tok);
    return 0;
}

/* ---- tokenize / detokenize -------------------------------------------------------------------- */

static const char *tok_usage =
    "usage: maskft tokenize -t TOKENIZER [-m MODEL | --vocab N] [--special] [--offsets] [--bos] [--eos] < text\n"
    "       maskft detokenize -t TOKENIZER [-m MODEL | --vocab N] [--special] < ids\n"
    "  TOKENIZER is a llama2.c tokenizer.bin (give -m or --vocab: the file does not store its size),\n"
    "  a SentencePiece .model, a Hugging Face tokenizer.json (tokenizer_config.json beside it is\n"
    "  read too) or a GGUF file. tokenize reads all of stdin and prints the ids on one line, or\n"
    "  with --offsets one token per line: id, begin and end byte of the input, and the piece.\n"
    "  --special parses control-token text such as <|im_start|> (default: plain text); --bos /\n"
    "  --eos add those tokens. detokenize reads ids (separated by spaces, commas or newlines)\n"
    "  and prints the text; --special shows control tokens as their text.\n";

static char *read_stdin(long *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) die("%s", "out of memory");
    for (;;) {
        if (n == cap) { cap *= 2; if (cap > ((size_t)1 << 30)) die("%s", "input over 1 GiB"); buf = realloc(buf, cap); if (!buf) die("%s", "out of memory"); }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        if (!got) break;
        n += got;
    }
    *len = (long)n;
    return buf;
}

static void load_tokenizer(const args_t *a, mft_tokenizer *tok)
{
    mft_error err;
    int vocab = a->vocab;
    if (a->model) {
        mft_config c;
        if (mft_checkpoint_config(a->model, &c, &err)) die_err(&err);
        vocab = c.vocab_size;
    }
    if (!a->tok && !a->model) die("%s", "give -t TOKENIZER (or -m MODEL to use the tokenizer beside it)");
    open_tokenizer(a->tok, a->model, vocab, tok);
}

/* a piece as a quoted string: control characters and bytes that are not whole UTF-8
   characters (a byte-level token may hold part of one) are escaped as \xNN */
static int utf8_seq(const unsigned char *s, int n)
{
    int len = s[0] < 0x80 ? 1 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (!len || len > n) return 0;
    for (int i = 1; i < len; i++) if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

static void print_piece(const char *p, int n)
{
    putchar('"');
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int l = c >= 0x80 ? utf8_seq((const unsigned char *)p + i, n - i) : 1;
        if (c >= 0x80 && l > 1) { fwrite(p + i, 1, (size_t)l, stdout); i += l - 1; }
        else if (c >= 0x80) printf("\\x%02x", c);
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c == '\r') printf("\\r");
        else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
}

static int cmd_tokenize(int argc, char **argv)
{
    args_t a = { 0 };
    parse(argc, argv, &a, tok_usage);
    mft_tokenizer tok;
    mft_error err;
    load_tokenizer(&a, &tok);
    long len;
    char *text = read_stdin(&len);
    if (len > (1L << 28)) die("%s", "input over 256 MiB");
    int cap = 3 * (int)len + 8, n; /* NFC (Qwen) can triple a text before it is split */
    int *ids = malloc((size_t)cap * sizeof(int)), *offs = malloc((size_t)cap * 2 * sizeof(int));
    if (!ids || !offs) die("%s", "out of memory");
    int flags = (a.special ? MFT_SPECIAL : 0) | (a.bos ? MFT_BOS : 0) | (a.eos ? MFT_EOS : 0);
    if (mft_encode(&tok, text, (int)len, flags, ids, cap, &n, offs, &err)) die_err(&err);
    for (int i = 0; i < n; i++) {
        if (a.offsets) {
            int pl;
            const char *p = mft_token_piece(&tok, ids[i], &pl);
            printf("%d\t%d\t%d\t", ids[i], offs[2 * i], offs[2 * i + 1]);
            print_piece(p, pl);
            putchar('\n');
        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }
    if (!a.offsets) putchar('\n');
    free(ids); free(offs); free(text);
    mft_tokenizer_free(&tok);
    return 0;
}

static int cmd_detokenize(int argc, char **argv)
{
    args_t a = { 0 };
    parse(argc, argv, &a, tok_usage);
    mft_tokenizer tok;
    mft_error err;
    load_tokenizer(&a, &tok);
    long len;
    char *in = read_stdin(&len);
    char *grown = realloc(in, (size_t)len + 1);
    if (!grown) die("%s", "out of memory");
    in = grown;
    in[len] = 0;
    int cap = (int)(len / 2 + 2), n = 0;
    int *ids = malloc((size_t)cap * sizeof(int));
    for (char *p = in; *p;) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\r' || *p == '\t' || *p == '[' || *p == ']') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) die("not a token id: '%.20s'", p);
        if (v < 0 || v >= tok.vocab_size) { fprintf(stderr, "maskft: id %ld is outside the vocabulary (0..%d)\n", v, tok.vocab_size - 1); exit(1); }
        ids[n++] = (int)v;
        p = end;
    }
    size_t ocap = 64; /* the pieces' lengths, added up */
    for (int i = 0; i < n; i++) { int pl; mft_token_piece(&tok, ids[i], &pl); ocap += (size_t)pl + 8; }
    if (ocap >= (1u << 30)) die("%s", "output over 1 GiB");
    char *out = malloc(ocap);
    int olen;
    if (!ids || !out) die("%s", "out of memory");
    if (mft_decode_ids(&tok, ids, n, a.special ? MFT_SPECIAL : 0, out, (int)(ocap < (1u << 30) ? ocap : (1u << 30)), &olen, &err)) die_err(&err);
    fwrite(out, 1, (size_t)olen, stdout);
    free(ids); free(out); free(in);
    mft_tokenizer_free(&tok);
    return 0;
}

/* one line of a file into *buf (grown as needed, NUL-terminated, without the newline);
   0 at the end of the file */
static int read_line(FILE *f, char **buf, size_t *cap, size_t *len)
{
    int ch;
    *len = 0;
    while ((ch = fgetc(f)) != EOF && ch != '\n') {
        if (*len + 1 >= *cap) { *cap *= 2; if (!(*buf = realloc(*buf, *cap))) die("%s", "out of memory"); }
        (*buf)[(*len)++] = (char)ch;
    }
    (*buf)[*len] = 0;
    return !(ch == EOF && *len == 0);
}

/* ---- mask / export ----------------------------------------------------------------------------- */

static const char *mask_usage =
    "usage: maskft mask   -m MODEL [-t TOKENIZER] --data D.jsonl [--policy key|all|diff] [--template auto|NAME]\n"
    "                     [--eligible assistant|all|last] [--eot TOKEN | --no-eot] [--html FILE]\n"
    "       maskft export -m MODEL [-t TOKENIZER] --data D.jsonl --out T.jsonl [the same mask options]\n"
    "  mask shows every example with its trained tokens marked ([brackets], or colour on a\n"
    "  terminal; the end token in bold) and counts trained tokens per example and overall; it\n"
    "  lists examples whose mask is empty. --html writes the same as a page. export writes\n"
    "  {\"input_ids\": [...], \"labels\": [...]} (-100 where the weight is 0) for TRL / Axolotl.\n"
    "  Policies: key = tokens inside {{key}}...{{/key}} or key_spans (default); all = every token\n"
    "  of the eligible turns; diff = tokens that differ from the message's \"draft\". Add\n"
    "  +surprise:TAU to keep only tokens the model finds surprising (NLL above TAU nats) or\n"
    "  +known:TAU for the complement (Wu et al. 2025); alone they apply to all.\n"
    "  Templates (auto = detected from the tokenizer's chat_template): plain, llama3, qwen3, phi3,\n"
    "  chatml, zephyr, llama2, mistral, mistral-v0.1, mistral-v3, gemma, gemma3.\n";

/* --policy BASE[+FILTER]: BASE key|all|diff, FILTER surprise:TAU|known:TAU (alone: all+FILTER) */
static mft_data_opts data_opts(const args_t *a, const mft_tokenizer *tok, int *filter, float *tau)
{
    mft_data_opts o = mft_data_opts_default();
    *filter = 0;
    if (a->policy) {
        char base[32] = "", *plus;
        const char *f = NULL;
        snprintf(base, sizeof base, "%s", a->policy);
        if ((plus = strchr(base, '+'))) { *plus = 0; f = a->policy + (plus - base) + 1; }
        else if (!strncmp(base, "surprise:", 9) || !strncmp(base, "known:", 6)) { f = a->policy; strcpy(base, "all"); }
        if (!strcmp(base, "all")) o.policy = MFT_POLICY_ALL;
        else if (!strcmp(base, "key")) o.policy = MFT_POLICY_KEY;
        else if (!strcmp(base, "diff")) o.policy = MFT_POLICY_DIFF;
        else die("unknown --policy '%s' (key, all or diff, optionally +surprise:TAU or +known:TAU)", a->policy);
        if (f) {
            const char *colon = strchr(f, ':');
            if (!colon || (strncmp(f, "surprise:", 9) && strncmp(f, "known:", 6))) die("unknown policy filter in '%s' (surprise:TAU or known:TAU)", a->policy);
            *filter = !strncmp(f, "surprise:", 9) ? 1 : 2;
            *tau = (float)num("--policy TAU", colon + 1, 0, 1000);
        }
    }
    if (a->tmpl && strcmp(a->tmpl, "auto")) {
        if ((o.template_family = mft_chat_family(a->tmpl)) < 0)
            die("unknown --template '%s' (auto, plain, llama3, qwen3, phi3, chatml, zephyr, llama2, mistral, mistral-v0.1, mistral-v3, gemma, gemma3)", a->tmpl);
    }
    if (a->eligible) {
        if (!strcmp(a->eligible, "assistant")) o.eligible = MFT_ELIGIBLE_ASSISTANT;
        else if (!strcmp(a->eligible, "all")) o.eligible = MFT_ELIGIBLE_ALL;
        else if (!strcmp(a->eligible, "last")) o.eligible = MFT_ELIGIBLE_LAST;
        else die("unknown --eligible '%s' (assistant, all or last)", a->eligible);
    }
    if (a->no_eot) o.train_eot = 0;
    if (a->eot) {
        int found = -1;
        for (int i = 0; i < tok->vocab_size && found < 0; i++) {
            int n;
            const char *p = mft_token_piece(tok, i, &n);
            if (n == (int)strlen(a->eot) && !memcmp(p, a->eot, (size_t)n)) found = i;
        }
        if (found < 0) die("--eot '%s' is not a token of this vocabulary", a->eot);
        o.eot_id = found;
    }
    return o;
}

static void html_text(FILE *f, const char *p, int n)
{
    for (int i = 0; i < n; i++) {
        char c = p[i];
        if (c == '<') fputs("&lt;", f); else if (c == '>') fputs("&gt;", f); else if (c == '&') fputs("&amp;", f);
        else if (c == '\n') fputs("\u21b5\n", f); else fputc(c, f);
    }
}

static int cmd_mask(int argc, char **argv, int export)
{
    args_t a = { 0 };
    parse(argc, argv, &a, mask_usage);
    need(a.model, "-m MODEL", mask_usage);
    need(a.data, "--data D.jsonl", mask_usage);
    if (export) need(a.out, "--out T.jsonl", mask_usage);
    mft_config c;
    mft_error err;
    mft_tokenizer tok;
    if (mft_checkpoint_config(a.model, &c, &err)) die_err(&err);
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    int filter;
    float tau = 0;
    mft_data_opts o = data_opts(&a, &tok, &filter, &tau);
    o.max_len = c.seq_len;
    mft_model m;
    if (filter && mft_model_open(&m, a.model, 1, c.seq_len, MFT_FORWARD, &err)) die_err(&err);
    FILE *in = fopen(a.data, "rb");
    if (!in) die("cannot open '%s'", a.data);
    FILE *out = export ? fopen(a.out, "wb") : NULL;
    if (export && !out) die("cannot create '%s'", a.out);
    FILE *html = a.html ? fopen(a.html, "wb") : NULL;
    if (a.html && !html) die("cannot create '%s'", a.html);
    if (html) fputs("<!doctype html><meta charset=utf-8><title>maskft mask</title><style>body{font:14px/1.5 monospace;max-width:60em;margin:2em auto}"
                    "pre{white-space:pre-wrap;border:1px solid #ccc;padding:.5em}.t{background:#bfb}.e{background:#8d8;font-weight:bold}.g{color:#555}</style>\n", html);
    int color = !export && isatty(1), line_no = 0, examples = 0, empty = 0;
    long trained = 0, tokens = 0;
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    for (size_t len; read_line(in, &line, &cap, &len);) {
        line_no++;
        int blank = 1;
        for (size_t i = 0; i < len; i++) blank &= line[i] == ' ' || line[i] == '\t' || line[i] == '\r';
        if (blank) continue;
        mft_example ex;
        if (mft_example_from_json(&tok, &o, line, (int)len, a.data, line_no, &ex, &err)) die_err(&err);
        if (filter && mft_mask_by_nll(&m, &ex, tau, filter == 1, &err)) die_err(&err);
        examples++;
        tokens += ex.n;
        trained += ex.n_trained;
        if (!ex.n_trained) empty++;
        if (export) {
            fputs("{\"input_ids\": [", out);
            for (int i = 0; i < ex.n; i++) fprintf(out, i ? ", %d" : "%d", ex.ids[i]);
            fputs("], \"labels\": [", out);
            for (int i = 0; i < ex.n; i++) fprintf(out, i ? ", %d" : "%d", i > 0 && ex.w[i - 1] > 0 ? ex.ids[i] : -100);
            fputs("]}\n", out);
        } else {
            printf("== example %d (line %d): %d tokens, %d trained%s\n", examples, line_no, ex.n, ex.n_trained, ex.n_trained ? "" : "  <- EMPTY MASK: nothing here would be trained");
            if (html) fprintf(html, "<h3>example %d (line %d): %d tokens, %d trained%s</h3><pre>", examples, line_no, ex.n, ex.n_trained, ex.n_trained ? "" : " (empty mask)");
            int prev = -1, open = 0;
            for (int i = 0; i < ex.n; i++) {
                int pl, on = i > 0 && ex.w[i - 1] > 0, eot = ex.tag[i] == 3;
                const char *p = tok.types[ex.ids[i]] == 3 ? mft_token_piece(&tok, ex.ids[i], &pl) : mft_token_bytes(&tok, prev, ex.ids[i], &pl);
                /* a control token is shown as its name (llama2.c stores BOS as "\n<s>\n") */
                while (tok.types[ex.ids[i]] == 3 && pl > 0 && (p[0] == '\n' || p[0] == ' ')) { p++; pl--; }
                while (tok.types[ex.ids[i]] == 3 && pl > 0 && (p[pl - 1] == '\n' || p[pl - 1] == ' ')) pl--;
                if (color) { if (on) fputs(eot ? "\033[1;42m" : "\033[42m", stdout); }
                else if (on && !open) { putchar('['); open = 1; }
                else if (!on && open) { putchar(']'); open = 0; }
                fwrite(p, 1, (size_t)pl, stdout);
                if (color && on) fputs("\033[0m", stdout);
                if (html) { fprintf(html, "<span class=%s>", eot ? "e" : on ? "t" : "g"); html_text(html, p, pl); fputs("</span>", html); }
                prev = ex.ids[i];
            }
            if (open) putchar(']');
            putchar('\n');
            if (html) fputs("</pre>\n", html);
        }
        mft_example_free(&ex);
    }
    const char *summary = "%d examples, %ld tokens, %ld trained (%.1f%%), %d with an empty mask\n";
    if (export) fprintf(stderr, summary, examples, tokens, trained, tokens ? 100.0 * trained / tokens : 0.0, empty);
    else printf(summary, examples, tokens, trained, tokens ? 100.0 * trained / tokens : 0.0, empty);
    if (html) { fprintf(html, "<p>"); fprintf(html, summary, examples, tokens, trained, tokens ? 100.0 * trained / tokens : 0.0, empty); fclose(html); }
    if (out && fclose(out)) die("cannot write '%s'", a.out);
    fclose(in);
    free(line);
    mft_tokenizer_free(&tok);
    if (filter) mft_model_free(&m);
    if (!trained) { fprintf(stderr, "maskft: no example has a trained token: nothing to train on\n"); return 1; }
    return 0;
}

static const char *draft_usage =
    "usage: maskft draft -m MODEL [-t TOKENIZER] --data D.jsonl --out D2.jsonl [-n 64] [--temp 0] [--seed S]\n"
    "                    [--template auto|NAME]\n"
    "  The model writes its own answer for every assistant turn (or completion) of D.jsonl, given\n"
    "  what precedes it, into \"content\" and \"draft\": edit the key facts into the content (mark\n"
    "  them {{key}}...{{/key}}) and the answer stays in the model's own words. -n caps the new\n"
    "  tokens of each answer; --temp 0 (the default) is greedy.\n";

static int cmd_draft(int argc, char **argv)
{
    args_t a = { 0 };
    a.n = 64;
    parse(argc, argv, &a, draft_usage);
    need(a.model, "-m MODEL", draft_usage);
    need(a.data, "--data D.jsonl", draft_usage);
    need(a.out, "--out D2.jsonl", draft_usage);
    mft_error err;
    mft_model m;
    mft_tokenizer tok;
    if (mft_model_open(&m, a.model, 1, 1, MFT_GENERATE, &err)) die_err(&err);
    m.n_threads = a.threads;
    open_tokenizer(a.tok, a.model, m.cfg.vocab_size, &tok);
    int filter;
    float tau;
    mft_data_opts o = data_opts(&a, &tok, &filter, &tau);
    FILE *in = fopen(a.data, "rb"), *out = fopen(a.out, "wb");
    if (!in) die("cannot open '%s'", a.data);
    if (!out) die("cannot create '%s'", a.out);
    uint64_t rng = a.seed_set && a.seed ? a.seed : 42;
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    int line_no = 0, records = 0;
    for (size_t len; read_line(in, &line, &cap, &len);) {
        line_no++;
        if (strspn(line, " \t\r") == len) continue;
        char *rec;
        if (mft_draft_record(&m, &tok, &o, line, (int)len, a.n, a.temp, &rng, a.data, line_no, &rec, &err)) die_err(&err);
        fputs(rec, out);
        fputc('\n', out);
        free(rec);
        records++;
    }
    if (fclose(out)) die("cannot write '%s'", a.out);
    fclose(in);
    free(line);
    fprintf(stderr, "%d records drafted into %s\n", records, a.out);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *usage =
        "usage: maskft COMMAND [options]   (maskft COMMAND -h for each command's options)\n"
        "  Without -t, a command uses the tokenizer that comes with the model: inside a GGUF\n"
        "  file, or beside the checkpoint (tokenizer.json, tokenizer.model, tokenizer.bin, tok<V>.bin).\n"
        "  generate   sample text from a model\n"
        "  eval       perplexity of a text file\n"
        "  train      next-token training on a text file, saves a checkpoint\n"
        "  tokenize   text -> ids (and byte offsets), for any tokenizer file\n"
        "  detokenize ids -> text\n"
        "  draft      the model writes its own answers into a JSONL data file\n"
        "  mask       show which tokens of a JSONL data file would be trained\n"
        "  export     write input_ids + labels (-100 = not trained) for TRL / Axolotl\n"
        "  version    library version and SIMD path\n";
    if (argc < 2) { fputs(usage, stderr); return 1; }
    if (!strcmp(argv[1], "generate")) return cmd_generate(argc, argv);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc, argv);
    if (!strcmp(argv[1], "train")) return cmd_train(argc, argv);
    if (!strcmp(argv[1], "tokenize")) return cmd_tokenize(argc, argv);
    if (!strcmp(argv[1], "detokenize")) return cmd_detokenize(argc, argv);
    if (!strcmp(argv[1], "mask")) return cmd_mask(argc, argv, 0);
    if (!strcmp(argv[1], "draft")) return cmd_draft(argc, argv);
    if (!strcmp(argv[1], "export")) return cmd_mask(argc, argv, 1);
    if (!strcmp(argv[1], "version")) { printf("maskft %s (%s)\n", mft_version(), mft_simd_name()); return 0; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) { fputs(usage, stdout); return 0; }
    fprintf(stderr, "maskft: unknown command '%s'\n%s", argv[1], usage);
    return 1;
}
