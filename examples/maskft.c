/* maskft - the command-line tool: generate, train, eval, probe, draft, mask, export, tokenize.
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
    const char *resume, *log, *base, *probes, *mc, *facts;
    int no_eot, json;
    int n, steps, batch, seq, warmup, threads, seed_set, vocab, special, offsets, bos, eos;
    int epochs, accum, save_every, len, stop_after;
    float temp, top_p, lr, wd, clip, anchor;
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
        if (!strcmp(f, "--json")) { a->json = 1; continue; }
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
        else if (!strcmp(f, "--epochs")) a->epochs = (int)num(f, v, 1, 1e6);
        else if (!strcmp(f, "--grad-accum")) a->accum = (int)num(f, v, 1, 1e6);
        else if (!strcmp(f, "--save-every")) a->save_every = (int)num(f, v, 1, 1e9);
        else if (!strcmp(f, "--stop-after")) a->stop_after = (int)num(f, v, 1, 1e9);
        else if (!strcmp(f, "--anchor")) a->anchor = (float)num(f, v, 0, 1e6);
        else if (!strcmp(f, "--resume")) a->resume = v;
        else if (!strcmp(f, "--log")) a->log = v;
        else if (!strcmp(f, "--compare")) a->base = v;
        else if (!strcmp(f, "--probes")) a->probes = v;
        else if (!strcmp(f, "--mc")) a->mc = v;
        else if (!strcmp(f, "--facts")) a->facts = v;
        else if (!strcmp(f, "--len")) a->len = (int)num(f, v, 1, 1e6);
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

/* ---- train ----------------------------------------------------------------------------------- */

/* xorshift64 (Marsaglia): the shuffles and window draws of training; any nonzero seed */
static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static const char *train_usage =
    "usage: maskft train -m MODEL [-t TOKENIZER] --data D.jsonl --out OUT.bin [--policy P] [--template T]\n"
    "                    [--eligible assistant|all|last] [--eot TOKEN | --no-eot] [--epochs 1] [--lr 1e-4]\n"
    "                    [--batch 4] [--seq 256] [--grad-accum 1] [--warmup 0] [--weight-decay 0.01]\n"
    "                    [--clip 1.0] [--seed S] [--save-every N] [--stop-after N] [--resume OUT.bin.ckpt]\n"
    "                    [--anchor W] [--log L.jsonl]\n"
    "       maskft train -m MODEL [-t TOKENIZER] --text FILE --out OUT.bin [--steps 100] [--lr 1e-3] ...\n"
    "  --data: masked fine-tuning on a JSONL file (the records and policies of `maskft mask -h`).\n"
    "  Examples are packed into rows of --seq tokens (each attends only to itself; the tail of a\n"
    "  row is padding with weight 0), --batch rows per micro-batch, --grad-accum micro-batches per\n"
    "  AdamW step, shuffled each epoch. Examples with an empty mask are reported and left out; if\n"
    "  none has a trained token the run does not start. Every --save-every steps, on Ctrl-C and at\n"
    "  the end, OUT.bin.ckpt holds weights, optimizer state, data position and RNG state;\n"
    "  --resume continues from it to the same weights, bit for bit, as an uninterrupted run.\n"
    "  --stop-after N ends the run after step N as Ctrl-C would (a time-boxed run).\n"
    "  --anchor W adds W x the mean KL(base || model) over the untrained positions of each step\n"
    "  (the context anchor: the base model's distributions there are kept, computed on the fly\n"
    "  by a frozen copy of MODEL); 0, the default, trains the mask alone.\n"
    "  --log writes one JSON record per step. OUT.bin is a llama2.c checkpoint.\n"
    "  --text: plain next-token training on random windows of a text file (every token weighted\n"
    "  1) for --steps steps.\n";

static int cmd_train_data(args_t *a);

static int cmd_train(int argc, char **argv)
{
    args_t a = { 0 };
    mft_train_opts o = mft_train_opts_default();
    a.steps = 100; a.lr = -1.0f; a.batch = 4; a.seq = 256; a.wd = o.weight_decay; a.clip = o.max_grad_norm;
    parse(argc, argv, &a, train_usage);
    if (a.lr < 0.0f) a.lr = a.data ? 1e-4f : o.lr; /* fine-tuning moves a trained model: a smaller default step */
    need(a.model, "-m MODEL", train_usage);
    need(a.out, "--out OUT.bin", train_usage);
    if (a.data && a.text) die("%s", "give --data or --text, not both");
    if (a.data) return cmd_train_data(&a);
    need(a.text, "--text FILE (or --data D.jsonl)", train_usage);
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
                start = (int)(xorshift(&rng) % (uint64_t)(span + 1));
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

/* the next record of a JSONL file: the next line that is not blank (spaces, tabs, a CR),
   counting lines in *line_no for file:line messages; 0 at the end of the file */
static int next_record(FILE *f, char **buf, size_t *cap, size_t *len, int *line_no)
{
    while (read_line(f, buf, cap, len)) {
        ++*line_no;
        size_t i = 0;
        while (i < *len && ((*buf)[i] == ' ' || (*buf)[i] == '\t' || (*buf)[i] == '\r')) i++;
        if (i < *len) return 1;
    }
    return 0;
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
    for (size_t len; next_record(in, &line, &cap, &len, &line_no);) {
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
    for (size_t len; next_record(in, &line, &cap, &len, &line_no);) {
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

/* ---- train on JSONL: packing, checkpoints, resume --------------------------------------------- */

#include <signal.h>

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 1099511628211ull; }
    return h;
}

/* every example of a data file, masked; the lines of empty masks reported */
typedef struct { mft_example *ex; int n, n_empty, n_full; long tokens, trained; uint64_t hash; } dataset_t;

static void load_dataset(const args_t *a, const mft_tokenizer *tok, mft_model *m, int max_len, int quiet, dataset_t *d)
{
    int filter;
    float tau = 0;
    mft_error err;
    mft_data_opts o = data_opts(a, tok, &filter, &tau);
    o.max_len = max_len;
    FILE *in = fopen(a->data, "rb");
    if (!in) die("cannot open '%s'", a->data);
    size_t cap = 1 << 16, len;
    char *line = malloc(cap);
    int line_no = 0, ecap = 64, shown = 0;
    memset(d, 0, sizeof *d);
    d->ex = malloc((size_t)ecap * sizeof *d->ex);
    d->hash = 14695981039346656037ull;
    while (next_record(in, &line, &cap, &len, &line_no)) {
        if (d->n == ecap && !(d->ex = realloc(d->ex, (size_t)(ecap *= 2) * sizeof *d->ex))) die("%s", "out of memory");
        mft_example *ex = &d->ex[d->n];
        if (mft_example_from_json(tok, &o, line, (int)len, a->data, line_no, ex, &err)) die_err(&err);
        if (filter && mft_mask_by_nll(m, ex, tau, filter == 1, &err)) die_err(&err);
        d->hash = fnv_bytes(d->hash, ex->ids, (size_t)ex->n * sizeof(int));
        d->hash = fnv_bytes(d->hash, ex->w, (size_t)ex->n * sizeof(float));
        d->tokens += ex->n;
        d->trained += ex->n_trained;
        d->n_full += ex->n >= max_len; /* as long as a row allows: probably cut to it */
        if (!ex->n_trained) {
            d->n_empty++;
            if (!quiet && shown++ < 10) fprintf(stderr, "maskft: %s:%d: empty mask: no token of this example is trained; left out\n", a->data, line_no);
            mft_example_free(ex);
            continue;
        }
        if (ex->n < 2) { mft_example_free(ex); continue; }
        d->n++;
    }
    if (!quiet && d->n_empty > 10) fprintf(stderr, "maskft: ... %d examples with an empty mask in all\n", d->n_empty);
    if (!quiet && d->n_full)
        fprintf(stderr, "maskft: %d examples fill a whole row (%d tokens) and were probably cut to it: what lies beyond is not trained (raise --seq?)\n",
                d->n_full, max_len - 1);
    fclose(in);
    free(line);
}

static void dataset_free(dataset_t *d)
{
    for (int i = 0; i < d->n; i++) mft_example_free(&d->ex[i]);
    free(d->ex);
}

/* the run state kept in a checkpoint beside the model's weights and AdamW moments */
typedef struct {
    char magic[8];
    uint64_t seed, rng, data_hash, opts_hash, model_hash; /* model_hash: the starting weights */
    int64_t step, total_steps, rows_done;
    double seconds;
} run_state;

static uint64_t opts_hash(const args_t *a, const mft_train_opts *o, int B, int T)
{
    uint64_t h = 14695981039346656037ull;
    int iv[5] = { B, T, a->accum, a->epochs, o->warmup_steps };
    float fv[6] = { o->lr, o->weight_decay, o->max_grad_norm, o->min_lr_ratio, o->beta2, a->anchor };
    h = fnv_bytes(h, iv, sizeof iv);
    return fnv_bytes(h, fv, sizeof fv);
}

static int cmd_train_data(args_t *ap)
{
    args_t a = *ap;
    mft_error err;
    mft_config c;
    mft_tokenizer tok;
    mft_train_opts o = mft_train_opts_default();
    if (!a.epochs) a.epochs = 1;
    if (!a.accum) a.accum = 1;
    o.lr = a.lr; o.weight_decay = a.wd; o.max_grad_norm = a.clip; o.warmup_steps = a.warmup; o.min_lr_ratio = 0.1f;
    if (mft_checkpoint_config(a.model, &c, &err)) die_err(&err);
    int T = a.seq < c.seq_len ? a.seq : c.seq_len, B = a.batch;
    mft_model m;
    if (mft_model_open(&m, a.model, B, T, MFT_TRAIN, &err)) die_err(&err);
    m.n_threads = a.threads;
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    /* examples longer than a row are cut to it (their masks stay aligned); the +surprise /
       +known filters score tokens with this same base model before any step */
    dataset_t d;
    load_dataset(&a, &tok, &m, T + 1, 0, &d);
    fprintf(stderr, "%s: %d examples, %ld tokens, %ld trained (%.1f%%), %d with an empty mask\n", a.data, d.n + d.n_empty,
            d.tokens, d.trained, d.tokens ? 100.0 * d.trained / d.tokens : 0.0, d.n_empty);
    if (!d.trained) die("%s", "no example has a trained token: nothing to train on (see `maskft mask -h`)");
    if ((double)a.epochs * d.n > 1e9 || (double)B * a.accum > 1e6) die("%s", "--epochs x examples or --batch x --grad-accum is too large");

    /* the rows of every epoch, packed up front (next fit, in a shuffled order), so the step
       count for the schedule is known and a resumed run rebuilds exactly the same rows */
    uint64_t seed = a.seed_set && a.seed ? a.seed : 1337, rng = seed;
    int rcap = 256, n_rows = 0, *row_first = malloc((size_t)rcap * sizeof(int)), *order = malloc((size_t)d.n * a.epochs * sizeof(int));
    if (!row_first || !order) die("%s", "out of memory");
    for (int e = 0; e < a.epochs; e++) {
        int *ord = order + (size_t)e * d.n;
        for (int i = 0; i < d.n; i++) ord[i] = i;
        for (int i = d.n - 1; i > 0; i--) { int j = (int)(xorshift(&rng) % (uint64_t)(i + 1)), t = ord[i]; ord[i] = ord[j]; ord[j] = t; }
        for (int i = 0, used = T; i < d.n; i++) {
            int need = d.ex[ord[i]].n - 1;
            if (used + need > T) {
                if (n_rows == rcap && !(row_first = realloc(row_first, (size_t)(rcap *= 2) * sizeof(int)))) die("%s", "out of memory");
                row_first[n_rows++] = e * d.n + i;
                used = 0;
            }
            used += need;
        }
    }
    int per_step = B * a.accum;
    long total = (n_rows + per_step - 1) / per_step;
    o.total_steps = total;
    run_state rs;
    memset(&rs, 0, sizeof rs);
    memcpy(rs.magic, "MFTRUN02", 8);
    rs.seed = seed; rs.rng = rng; rs.data_hash = d.hash; rs.opts_hash = opts_hash(&a, &o, B, T); rs.total_steps = total;
    rs.model_hash = fnv_bytes(14695981039346656037ull, m.params, m.n_params * sizeof(float));
    char *ckpt = malloc(strlen(a.out) + 6);
    sprintf(ckpt, "%s.ckpt", a.out);
    if (a.resume) {
        run_state got;
        if (mft_checkpoint_load(&m, a.resume, &got, sizeof got, &err)) die_err(&err);
        if (memcmp(got.magic, rs.magic, 8)) die("'%s' was not written by maskft train", a.resume);
        if (got.data_hash != rs.data_hash) die("'%s' was written for other data (or another mask policy / template)", a.resume);
        if (got.model_hash != rs.model_hash) die("'%s' was written by a run that started from another model: give its -m", a.resume);
        if (got.opts_hash != rs.opts_hash || got.seed != rs.seed)
            die("'%s' was written with other training options (batch, seq, grad-accum, epochs, lr, warmup, weight decay, clip, anchor, seed): give the same ones", a.resume);
        rs = got;
        fprintf(stderr, "resuming %s at step %lld of %ld\n", a.resume, (long long)rs.step, total);
    }
    FILE *log = a.log ? fopen(a.log, rs.step ? "ab" : "wb") : NULL;
    if (a.log && !log) die("cannot create '%s'", a.log);
    int tty = isatty(2);
    fprintf(stderr, "training %s: %ld steps (%d epoch%s, %d rows of %d tokens, %d x %d per step), lr %g, %s\n", a.model, total, a.epochs,
            a.epochs == 1 ? "" : "s", n_rows, T, B, a.accum, (double)o.lr, mft_simd_name());
    int *in = malloc((size_t)B * T * sizeof(int)), *tg = malloc((size_t)B * T * sizeof(int)), *pos = malloc((size_t)B * T * sizeof(int));
    float *w = malloc((size_t)B * T * sizeof(float)), *aw = malloc((size_t)B * T * sizeof(float)), *blog = NULL;
    if (!in || !tg || !pos || !w || !aw) die("%s", "out of memory");
    /* the anchor's reference: a frozen copy of the model the run started from */
    mft_model base;
    if (a.anchor > 0.0f) {
        if (mft_model_open(&base, a.model, B, T, MFT_FORWARD, &err)) die_err(&err);
        base.n_threads = a.threads;
        if (!(blog = malloc((size_t)B * T * c.vocab_size * sizeof(float)))) die("%s", "out of memory for the anchor's logits");
    }
    signal(SIGINT, on_sigint);
    struct timespec t_start;
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    double sec0 = rs.seconds;
    long trained_seen = 0, tokens_seen = 0, first_step = (long)rs.step;
    for (long step = rs.step; step < total; step++) {
        long trained = 0, toks = 0;
        /* the anchor averages KL over the step's untrained positions, relative to the CE mean
           over its trained ones: weight W * sum(w) / n_untrained on each untrained position */
        double sw = 0.0, nu = 0.0, ascale = 0.0;
        for (long r = rs.rows_done; a.anchor > 0.0f && r < rs.rows_done + (long)per_step && r < n_rows; r++)
            for (int k = row_first[r], last = r + 1 < n_rows ? row_first[r + 1] : a.epochs * d.n; k < last; k++)
                for (int j = 0; j + 1 < d.ex[order[k]].n; j++) { float x = d.ex[order[k]].w[j]; sw += x; nu += x == 0.0f; }
        if (nu > 0) ascale = a.anchor * sw / nu;
        for (int mb = 0; mb < a.accum; mb++) {
            int rows = 0;
            /* fill B rows: each row takes its examples from row_first[r] to row_first[r+1] */
            for (int b = 0; b < B; b++) {
                long r = rs.rows_done;
                if (r >= n_rows) break;
                int first = row_first[r], last = r + 1 < n_rows ? row_first[r + 1] : a.epochs * d.n, t = 0;
                int *ri = in + (size_t)b * T, *rt = tg + (size_t)b * T, *rp = pos + (size_t)b * T;
                float *rw = w + (size_t)b * T;
                for (int k = first; k < last; k++) {
                    const mft_example *ex = &d.ex[order[k]];
                    for (int j = 0; j + 1 < ex->n; j++, t++) {
                        ri[t] = ex->ids[j]; rt[t] = ex->ids[j + 1]; rw[t] = ex->w[j]; rp[t] = j;
                        aw[(size_t)b * T + t] = ex->w[j] == 0.0f ? (float)ascale : 0.0f;
                        trained += ex->w[j] > 0;
                    }
                }
                toks += t;
                for (int j = 0; t < T; t++, j++) { ri[t] = rt[t] = 0; rw[t] = 0.0f; rp[t] = j; aw[(size_t)b * T + t] = 0.0f; } /* padding: its own sequence, weight 0 */
                rows++;
                rs.rows_done++;
            }
            if (!rows) break;
            if (a.anchor > 0.0f) {
                if (mft_forward_packed(&base, in, NULL, NULL, pos, rows, T, &err)) die_err(&err);
                memcpy(blog, base.a.logits, (size_t)rows * T * c.vocab_size * sizeof(float));
            }
            if (mft_forward_packed(&m, in, tg, w, pos, rows, T, &err) || (a.anchor > 0.0f && mft_set_anchor(&m, blog, aw, &err)) ||
                mft_backward(&m, &err)) {
                fprintf(stderr, "\nmaskft: step %ld: %s\n", step + 1, err.msg);
                die("%s", "stopped; the weights were not updated with it");
            }
        }
        mft_step_info info;
        mft_status st = mft_step(&m, &o, &info, &err);
        if (st < 0) {
            fprintf(stderr, "\nmaskft: %s\n", err.msg);
            die("stopped; the last checkpoint (if any) is %s", ckpt);
        }
        rs.step = step + 1;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t_start.tv_sec) + 1e-9 * (double)(now.tv_nsec - t_start.tv_nsec);
        rs.seconds = sec0 + el;
        trained_seen += trained; tokens_seen += toks;
        char line[256];
        double akl = a.anchor > 0.0f ? info.anchor / a.anchor : 0.0; /* mean KL over the untrained positions */
        char extra[48] = "";
        if (a.anchor > 0.0f) snprintf(extra, sizeof extra, "  anchor KL %.4f", akl);
        snprintf(line, sizeof line, "step %ld/%ld  loss %.4f%s  lr %.2e  |g| %.3f  %.0f trained tok/s  %.0f tok/s", rs.step, total,
                 (double)info.loss, extra, (double)info.lr, (double)info.grad_norm, trained_seen / (el > 0 ? el : 1e-9),
                 tokens_seen / (el > 0 ? el : 1e-9));
        if (tty) fprintf(stderr, "\r%s  ETA %.0f s  ", line, el / (double)(rs.step - first_step) * (double)(total - rs.step));
        else fprintf(stderr, "%s\n", line);
        if (log) {
            fprintf(log, "{\"step\": %ld, \"loss\": %.6f, \"anchor_kl\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6f, \"trained_tokens\": %ld, \"tokens\": %ld, \"seconds\": %.3f}\n",
                    rs.step, (double)info.loss, akl, (double)info.lr, (double)info.grad_norm, trained, toks, rs.seconds);
            fflush(log);
        }
        int stop = a.stop_after && rs.step == a.stop_after && rs.step < total;
        int save = (a.save_every && rs.step % a.save_every == 0) || g_interrupted || stop;
        if (save && mft_checkpoint_save(&m, ckpt, &rs, sizeof rs, &err)) die_err(&err);
        if (g_interrupted || stop) {
            fprintf(stderr, "%s%s after step %ld: %s written; continue with --resume %s\n", tty ? "\n" : "",
                    stop ? "stopped" : "interrupted", rs.step, ckpt, ckpt);
            exit(stop ? 0 : 130);
        }
    }
    if (tty) fputc('\n', stderr);
    if (mft_checkpoint_save(&m, ckpt, &rs, sizeof rs, &err)) die_err(&err);
    if (mft_model_save(&m, a.out, &err)) die_err(&err);
    fprintf(stderr, "saved %s (and %s) after %ld steps, %.1f s\n", a.out, ckpt, rs.step, rs.seconds);
    if (log) fclose(log);
    free(in); free(tg); free(pos); free(w); free(aw); free(blog); free(row_first); free(order); free(ckpt);
    if (a.anchor > 0.0f) mft_model_free(&base);
    dataset_free(&d);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    return 0;
}

/* ---- eval --mc / --facts / --compare, and probe ------------------------------------------- */

/* the longest token's bytes, plus a little for a decoder's leading space */
static int max_piece(const mft_tokenizer *t)
{
    int mx = 8;
    for (int i = 0; i < t->vocab_size; i++) { int l; mft_token_piece(t, i, &l); if (l + 4 > mx) mx = l + 4; }
    return mx;
}

/* well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF), as JSON needs */
static int utf8_ok(const unsigned char *s, int n)
{
    for (int i = 0; i < n;) {
        unsigned c = s[i];
        int k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (k < 0 || i + k >= n + (k == 0)) return 0;
        if (k == 0) { i++; continue; }
        unsigned cp = c & (0x3F >> k);
        for (int q = 1; q <= k; q++) { if ((s[i + q] & 0xC0) != 0x80) return 0; cp = cp << 6 | (s[i + q] & 0x3F); }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

/* s as a JSON string on stdout */
static void put_json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

/* {"k1": "v1", "k2": "v2"} with the strings JSON-escaped */
static char *record2(const char *k1, const char *v1, int l1, const char *k2, const char *v2, int l2)
{
    size_t cap = 64 + strlen(k1) + strlen(k2) + 6 * ((size_t)l1 + (size_t)l2), n = 0;
    char *o = malloc(cap);
    if (!o) die("%s", "out of memory");
    const char *k[2] = { k1, k2 }, *v[2] = { v1, v2 };
    int l[2] = { l1, l2 };
    n += (size_t)sprintf(o + n, "{");
    for (int f = 0; f < 2; f++) {
        n += (size_t)sprintf(o + n, "%s\"%s\": \"", f ? ", " : "", k[f]);
        for (int i = 0; i < l[f]; i++) {
            unsigned char ch = (unsigned char)v[f][i];
            if (ch == '"' || ch == '\\') { o[n++] = '\\'; o[n++] = (char)ch; }
            else if (ch == '\n') { o[n++] = '\\'; o[n++] = 'n'; }
            else if (ch < 0x20) n += (size_t)sprintf(o + n, "\\u%04x", ch);
            else o[n++] = (char)ch;
        }
        o[n++] = '"';
    }
    o[n++] = '}';
    o[n] = 0;
    return o;
}

/* greedy (temp 0) or sampled continuation of ids[0..n) with the KV cache, up to max_new
   tokens or the end token; returns how many were written to out, *ended if the end came */
static int continue_ids(mft_model *m, const int *ids, int n, int max_new, int end, float temp, uint64_t *rng, int *out, int *ended)
{
    mft_error err;
    float *logits = NULL;
    int k = 0;
    *ended = 0;
    if (n < 1) die("%s", "a continuation needs at least one token to start from");
    if (n + max_new > m->cfg.seq_len) max_new = m->cfg.seq_len - n;
    for (int i = 0; i < n; i++)
        if (!(logits = mft_decode(m, ids[i], i, &err))) die_err(&err);
    while (k < max_new) {
        int next = mft_sample(logits, m->cfg.vocab_size, temp, 1.0f, rng);
        if (next == end) { *ended = 1; break; }
        out[k++] = next;
        if (k < max_new && !(logits = mft_decode(m, next, n + k - 1, &err))) die_err(&err);
    }
    return k;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* calls fn on every non-blank line of a JSONL file (parsed), with file:line for messages */
static void each_jsonl(const char *path, void (*fn)(void *ctx, mft_json *j, int root, const char *where, int line), void *ctx)
{
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open '%s'", path);
    size_t cap = 1 << 16, len;
    char *line = malloc(cap);
    int no = 0;
    while (next_record(f, &line, &cap, &len, &no)) {
        mft_error err;
        mft_json *j = mft_json_parse(line, (int)len, &err);
        if (!j) { fprintf(stderr, "maskft: %s:%d: %s\n", path, no, err.msg); exit(1); }
        fn(ctx, j, mft_json_root(j), path, no);
        mft_json_free(j);
    }
    fclose(f);
    free(line);
}

static void die_at(const char *where, int line, const char *what)
{
    fprintf(stderr, "maskft: %s:%d: %s\n", where, line, what);
    exit(1);
}

static const char *need_str(mft_json *j, int obj, const char *key, int *len, const char *where, int line)
{
    const char *s = mft_json_str(j, mft_json_get(j, obj, key), len);
    if (!s) { fprintf(stderr, "maskft: %s:%d: \"%s\" (a string) is missing\n", where, line, key); exit(1); }
    return s;
}

typedef struct {
    mft_model *m, *base;        /* base only with --compare */
    const mft_tokenizer *tok;
    mft_data_opts o;
    int end, agree_n, gen_len, gen_max, maxp; /* maxp: the longest token, in bytes (+ slack) */
    float *lbuf, *nll;
    int *ids, *g1, *g2;
    /* results */
    int mc_items, mc_acc, mc_accn, mc_base_acc, mc_flips;
    int facts, facts_hit;
    double facts_lp;
    int probes, gens, agree, end_t, end_b, loop_t, loop_b;
    double *kl; long n_kl, cap_kl, same_top1;
} eval_t;

/* an example of {"prompt": P, "completion": C} as training would build it; *np = the context */
static mft_example example_pc(eval_t *e, const char *p, int pl, const char *c, int cl, const char *where, int line, int *np)
{
    char *rec = record2("prompt", p, pl, "completion", c, cl);
    mft_example ex;
    mft_error err;
    if (mft_example_from_json(e->tok, &e->o, rec, -1, where, line, &ex, &err)) die_err(&err);
    free(rec);
    int k = 0;
    while (k < ex.n && ex.tag[k] == 0) k++;
    *np = k;
    return ex;
}

static void mc_item(void *ctx, mft_json *j, int root, const char *where, int line)
{
    eval_t *e = ctx;
    int ql, nc = mft_json_len(j, mft_json_get(j, root, "choices"));
    const char *q = need_str(j, root, "query", &ql, where, line);
    double gold;
    if (nc < 2 || !mft_json_num(j, mft_json_get(j, root, "gold"), &gold) || gold < 0 || gold >= nc || gold != (int)gold) {
        fprintf(stderr, "maskft: %s:%d: an item needs \"choices\" (2 or more strings) and \"gold\" (an index into them)\n", where, line);
        exit(1);
    }
    mft_error err;
    int nq, cap = e->m->cfg.seq_len;
    char *buf = malloc((size_t)ql + 1);
    memcpy(buf, q, (size_t)ql);
    if (mft_encode(e->tok, buf, ql, MFT_BOS, e->ids, cap, &nq, NULL, &err)) die_at(where, line, err.msg);
    if (nq == 0) die_at(where, line, "the query is empty and the tokenizer adds no BOS: nothing to condition the choices on");
    int best[2] = { 0, 0 }, bestn = 0;
    double bl[2] = { -INFINITY, -INFINITY }, bn = -INFINITY;
    for (int c = 0; c < nc; c++) {
        int cl, n;
        const char *ch = mft_json_str(j, mft_json_at(j, mft_json_get(j, root, "choices"), c), &cl);
        if (!ch) { fprintf(stderr, "maskft: %s:%d: choice %d is not a string\n", where, line, c); exit(1); }
        /* as lm-evaluation-harness does: encode query + choice whole, the choice's tokens are
           what follows the query's own encoding */
        buf = realloc(buf, (size_t)ql + (size_t)cl + 1);
        memcpy(buf + ql, ch, (size_t)cl);
        if (mft_encode(e->tok, buf, ql + cl, MFT_BOS, e->ids, cap, &n, NULL, &err)) {
            fprintf(stderr, "maskft: %s:%d: %s\n", where, line, err.msg);
            exit(1);
        }
        if (n <= nq) { fprintf(stderr, "maskft: %s:%d: choice %d adds no token to the query\n", where, line, c); exit(1); }
        int chars = 0;
        for (int i = 0; i < cl; i++) chars += ((unsigned char)ch[i] & 0xC0) != 0x80;
        for (int mi = 0; mi < (e->base ? 2 : 1); mi++) {
            if (mft_token_nll(mi ? e->base : e->m, e->ids, n, e->nll, &err)) die_err(&err);
            double ll = 0.0;
            for (int t = nq - 1; t < n - 1; t++) ll -= e->nll[t];
            if (ll > bl[mi]) { bl[mi] = ll; best[mi] = c; }
            if (!mi && ll / (chars ? chars : 1) > bn) { bn = ll / (chars ? chars : 1); bestn = c; }
        }
    }
    free(buf);
    e->mc_items++;
    e->mc_acc += best[0] == (int)gold;
    e->mc_accn += bestn == (int)gold;
    if (e->base) { e->mc_base_acc += best[1] == (int)gold; e->mc_flips += best[0] != best[1]; }
}

static void fact_item(void *ctx, mft_json *j, int root, const char *where, int line)
{
    eval_t *e = ctx;
    int pl, al, np, ended;
    const char *p = need_str(j, root, "prompt", &pl, where, line), *ans = need_str(j, root, "answer", &al, where, line);
    mft_example ex = example_pc(e, p, pl, ans, al, where, line, &np);
    mft_error err;
    /* mean log-probability of the answer's tokens (not the end token) after the prompt */
    if (mft_token_nll(e->m, ex.ids, ex.n, e->nll, &err)) die_err(&err);
    double lp = 0.0;
    int k = 0;
    if (np == 0) die_at(where, line, "the prompt is empty and the tokenizer adds no BOS: nothing to continue");
    for (int t = np; t < ex.n; t++) if (ex.tag[t] != 3) { lp -= e->nll[t - 1]; k++; }
    if (!k) die_at(where, line, "no token of the answer is left to score (an empty answer, or a prompt that fills the context)");
    e->facts_lp += lp / k;
    /* greedy continuation of the prompt: does it say the answer? */
    int g = continue_ids(e->m, ex.ids, np, 48, e->end, 0.0f, NULL, e->g1, &ended);
    int tcap = g * e->maxp + 1, tl = 0;
    char *text = malloc((size_t)tcap);
    if (!text) die("%s", "out of memory");
    if (mft_decode_ids(e->tok, e->g1, g, 0, text, tcap, &tl, &err)) die_err(&err);
    text[tl] = 0;
    while (al > 0 && (*ans == ' ' || *ans == '\n')) { ans++; al--; }
    while (al > 0 && (ans[al - 1] == ' ' || ans[al - 1] == '\n')) al--;
    char *want = malloc((size_t)al + 1);
    memcpy(want, ans, (size_t)al);
    want[al] = 0;
    e->facts_hit += al > 0 && strstr(text, want) != NULL;
    e->facts++;
    free(want); free(text);
    mft_example_free(&ex);
}

static void probe_item(void *ctx, mft_json *j, int root, const char *where, int line)
{
    eval_t *e = ctx;
    int pl, cl, np;
    const char *p = need_str(j, root, "prompt", &pl, where, line), *c = need_str(j, root, "completion", &cl, where, line);
    mft_example ex = example_pc(e, p, pl, c, cl, where, line, &np);
    mft_error err;
    size_t V = (size_t)e->m->cfg.vocab_size;
    int n = ex.n - 1; /* positions predicting a next token */
    if (n >= 1) {
        if (mft_forward(e->base, ex.ids, NULL, NULL, 1, n, &err)) die_err(&err);
        memcpy(e->lbuf, e->base->a.logits, (size_t)n * V * sizeof(float));
        if (mft_forward(e->m, ex.ids, NULL, NULL, 1, n, &err)) die_err(&err);
        for (int t = 0; t < n; t++) {
            const float *pb = e->lbuf + (size_t)t * V, *pt = e->m->a.logits + (size_t)t * V;
            if (e->n_kl == e->cap_kl && !(e->kl = realloc(e->kl, (size_t)(e->cap_kl = 2 * e->cap_kl + 1024) * sizeof(double)))) die("%s", "out of memory");
            e->kl[e->n_kl++] = mft_kl_logits(pb, pt, (int)V);
            int ab = 0, at = 0;
            for (size_t i = 1; i < V; i++) { if (pb[i] > pb[ab]) ab = (int)i; if (pt[i] > pt[at]) at = (int)i; }
            e->same_top1 += ab == at;
        }
    }
    if (e->gens < e->gen_max && np > 0) {
        int eb, et;
        int nb = continue_ids(e->base, ex.ids, np, e->gen_len, e->end, 0.0f, NULL, e->g1, &eb);
        int nt = continue_ids(e->m, ex.ids, np, e->gen_len, e->end, 0.0f, NULL, e->g2, &et);
        int k = e->agree_n, same = 1;
        for (int i = 0; i < k && same; i++) same = (i < nb) == (i < nt) && (i >= nb || e->g1[i] == e->g2[i]);
        e->agree += same;
        e->end_b += eb; e->end_t += et;
        e->loop_b += !eb && mft_tail_loop(e->g1, nb) > 0;
        e->loop_t += !et && mft_tail_loop(e->g2, nt) > 0;
        e->gens++;
    }
    e->probes++;
    mft_example_free(&ex);
}

static const char *eval_usage =
    "usage: maskft eval -m MODEL [-t TOKENIZER] [--text FILE] [--mc ITEMS.jsonl] [--facts F.jsonl]\n"
    "                   [--compare BASE --probes P.jsonl [-n 16] [--len 128] [--gen 200]] [--json] [--threads K]\n"
    "  --text: mean NLL per token and perplexity of FILE, encoded as the model was trained (BOS,\n"
    "    then the text; longer texts in consecutive windows, each starting with BOS).\n"
    "  --mc: multiple choice {\"query\", \"choices\": [...], \"gold\": i}: each choice scored by the\n"
    "    log-likelihood of its tokens after the query; acc = argmax, acc_norm = argmax of the\n"
    "    log-likelihood per character of the choice (lm-evaluation-harness's definitions).\n"
    "  --facts: {\"prompt\", \"answer\"}: recall = the greedy continuation (48 tokens) contains the\n"
    "    answer; and the answer tokens' mean log-probability after the prompt.\n"
    "  --compare BASE --probes P.jsonl ({\"prompt\", \"completion\"}, e.g. from `maskft probe`):\n"
    "    forgetting against the base model: KL(base || model) per position (mean, 99th\n"
    "    percentile), the share of positions with the same top-1 token, and over the first --gen\n"
    "    probes greedy generations of up to --len tokens from each prompt: agreement (identical\n"
    "    first -n tokens), termination (the end token came) and tail repetition (ended in a loop)\n"
    "    for both models. With --mc too: the share of answers that flipped.\n"
    "  Prompts and completions are built as training builds them (template, end token).\n";

static int cmd_eval(int argc, char **argv)
{
    args_t a = { 0 };
    a.n = 16; a.len = 128; a.steps = 200;
    for (int i = 2; i < argc; i++) if (!strcmp(argv[i], "--gen")) argv[i] = "--steps"; /* --gen K */
    parse(argc, argv, &a, eval_usage);
    need(a.model, "-m MODEL", eval_usage);
    if (!a.text && !a.mc && !a.facts && !a.base) die("%s", "nothing to evaluate: give --text, --mc, --facts or --compare (see -h)");
    if (a.base && !a.probes) die("%s", "--compare BASE needs --probes P.jsonl (make one with `maskft probe`)");
    mft_error err;
    mft_config c;
    mft_model m, base;
    mft_tokenizer tok;
    if (mft_checkpoint_config(a.model, &c, &err)) die_err(&err);
    if (mft_model_open(&m, a.model, 1, c.seq_len, MFT_FORWARD | MFT_GENERATE, &err)) die_err(&err);
    m.n_threads = a.threads;
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    if (a.base) {
        mft_config bc;
        if (mft_checkpoint_config(a.base, &bc, &err)) die_err(&err);
        if (memcmp(&bc, &c, sizeof c)) die("'%s' has another shape than the model: --compare needs the model it was tuned from", a.base);
        if (mft_model_open(&base, a.base, 1, c.seq_len, MFT_FORWARD | MFT_GENERATE, &err)) die_err(&err);
        base.n_threads = a.threads;
    }
    eval_t e;
    memset(&e, 0, sizeof e);
    e.m = &m; e.base = a.base ? &base : NULL; e.tok = &tok;
    int filter;
    float tau;
    e.o = data_opts(&a, &tok, &filter, &tau);
    e.o.policy = MFT_POLICY_ALL;
    e.o.max_len = c.seq_len;
    e.end = mft_end_token(&tok, &e.o);
    if (a.n < 1) die("%s", "-n (the tokens greedy generations must agree on) must be at least 1");
    e.agree_n = a.n; e.gen_len = a.len < c.seq_len - 1 ? a.len : c.seq_len - 1; e.gen_max = a.steps;
    e.maxp = max_piece(&tok);
    e.lbuf = malloc((size_t)c.seq_len * c.vocab_size * sizeof(float));
    e.nll = malloc((size_t)c.seq_len * sizeof(float));
    e.ids = malloc((size_t)c.seq_len * sizeof(int));
    e.g1 = malloc((size_t)c.seq_len * sizeof(int));
    e.g2 = malloc((size_t)c.seq_len * sizeof(int));
    if (!e.lbuf || !e.nll || !e.ids || !e.g1 || !e.g2) die("%s", "out of memory");
    double text_nll = 0.0;
    int body = 0, windows = 0;
    if (a.text) {
        int n;
        int *ids = encode_file(&tok, a.text, &n);
        body = n - 1;
        int win = c.seq_len;
        if (body <= 0) die("'%s' is empty: nothing to score", a.text);
        int *buf = malloc((size_t)c.seq_len * 2 * sizeof(int));
        if (!buf) die("%s", "out of memory");
        for (int s0 = 0; s0 < body; s0 += win) {
            int len = body - s0 < win ? body - s0 : win;
            /* a window of len positions: inputs BOS and text tokens s0..s0+len-2, targets text
               tokens s0..s0+len-1, so each text token is predicted exactly once overall */
            buf[0] = tok.bos_id;
            memcpy(buf + 1, ids + 1 + s0, (size_t)(len - 1) * sizeof(int));
            memcpy(buf + c.seq_len, ids + 1 + s0, (size_t)len * sizeof(int));
            if (mft_forward(&m, buf, buf + c.seq_len, NULL, 1, len, &err)) die_err(&err);
            text_nll += m.fwd_loss_sum;
            windows++;
        }
        free(buf);
        free(ids);
    }
    if (a.mc) each_jsonl(a.mc, mc_item, &e);
    if (a.facts) each_jsonl(a.facts, fact_item, &e);
    if (a.base) each_jsonl(a.probes, probe_item, &e);
    double klm = 0.0, klp99 = 0.0;
    if (e.n_kl) {
        for (long i = 0; i < e.n_kl; i++) klm += e.kl[i];
        klm /= (double)e.n_kl;
        qsort(e.kl, (size_t)e.n_kl, sizeof(double), cmp_double);
        klp99 = e.kl[(long)floor(0.99 * (double)(e.n_kl - 1))];
    }
#define PCT(x, n) ((n) ? 100.0 * (double)(x) / (double)(n) : 0.0)
    if (a.json) {
        printf("{\"model\": ");
        put_json_str(a.model);
        if (a.text) printf(", \"text\": {\"tokens\": %d, \"nll\": %.6f, \"ppl\": %.4f}", body, text_nll / body, exp(text_nll / body));
        if (a.mc) {
            printf(", \"mc\": {\"items\": %d, \"acc\": %.4f, \"acc_norm\": %.4f", e.mc_items, PCT(e.mc_acc, e.mc_items) / 100, PCT(e.mc_accn, e.mc_items) / 100);
            if (a.base) printf(", \"base_acc\": %.4f, \"flipped\": %.4f", PCT(e.mc_base_acc, e.mc_items) / 100, PCT(e.mc_flips, e.mc_items) / 100);
            printf("}");
        }
        if (a.facts) printf(", \"facts\": {\"n\": %d, \"recalled\": %d, \"recall\": %.4f, \"answer_logprob\": %.4f}", e.facts, e.facts_hit, PCT(e.facts_hit, e.facts) / 100, e.facts ? e.facts_lp / e.facts : 0.0);
        if (a.base) {
            printf(", \"compare\": {\"base\": ");
            put_json_str(a.base);
            printf(", \"probes\": %d, \"positions\": %ld, \"kl_mean\": %.6f, \"kl_p99\": %.6f, \"same_top1\": %.4f, "
                   "\"generations\": %d, \"agree_n\": %d, \"agreement\": %.4f, \"termination_base\": %.4f, \"termination\": %.4f, "
                   "\"tail_repetition_base\": %.4f, \"tail_repetition\": %.4f}",
                   e.probes, e.n_kl, klm, klp99, PCT(e.same_top1, e.n_kl) / 100, e.gens, e.agree_n, PCT(e.agree, e.gens) / 100,
                   PCT(e.end_b, e.gens) / 100, PCT(e.end_t, e.gens) / 100, PCT(e.loop_b, e.gens) / 100, PCT(e.loop_t, e.gens) / 100);
        }
        printf("}\n");
    } else {
        printf("model: %s\n", a.model);
        if (a.text) {
            printf("text: %s\n", a.text);
            printf("  tokens scored: %d (after BOS), in %d window%s of up to %d tokens, each starting with BOS\n", body, windows, windows == 1 ? "" : "s", c.seq_len);
            printf("  mean NLL: %.6f nats/token\n", text_nll / body);
            printf("  perplexity: %.4f\n", exp(text_nll / body));
        }
        if (a.mc) {
            printf("multiple choice: %s, %d items\n", a.mc, e.mc_items);
            printf("  acc       %6.1f%%\n  acc_norm  %6.1f%%\n", PCT(e.mc_acc, e.mc_items), PCT(e.mc_accn, e.mc_items));
            if (a.base) printf("  base acc  %6.1f%%\n  flipped   %6.1f%% of answers\n", PCT(e.mc_base_acc, e.mc_items), PCT(e.mc_flips, e.mc_items));
        }
        if (a.facts) printf("facts: %s\n  recall %d/%d (%.1f%%), answer mean log-prob %.3f\n", a.facts, e.facts_hit, e.facts, PCT(e.facts_hit, e.facts), e.facts ? e.facts_lp / e.facts : 0.0);
        if (a.base) {
            printf("against %s on %s: %d probes, %ld positions\n", a.base, a.probes, e.probes, e.n_kl);
            printf("  KL(base || model)  mean %.4f  p99 %.4f nats\n", klm, klp99);
            printf("  same top-1         %.1f%% of positions\n", PCT(e.same_top1, e.n_kl));
            printf("  greedy, %d generations of up to %d tokens:\n", e.gens, e.gen_len);
            printf("    agreement (first %d tokens identical)  %.1f%%\n", e.agree_n, PCT(e.agree, e.gens));
            printf("    termination (end token came)     base %.1f%%  model %.1f%%\n", PCT(e.end_b, e.gens), PCT(e.end_t, e.gens));
            printf("    tail repetition (ends in a loop) base %.1f%%  model %.1f%%\n", PCT(e.loop_b, e.gens), PCT(e.loop_t, e.gens));
        }
    }
#undef PCT
    free(e.lbuf); free(e.nll); free(e.ids); free(e.g1); free(e.g2); free(e.kl);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    if (a.base) mft_model_free(&base);
    return 0;
}

static const char *probe_usage =
    "usage: maskft probe -m BASE [-t TOKENIZER] --n 1000 --out P.jsonl [--seed S] [--len 64] [--temp 1]\n"
    "  A retention set drawn from the base model itself: N texts sampled at --temp from the start\n"
    "  of a sequence, up to --len tokens or the end token, each split into {\"prompt\": the first\n"
    "  quarter (at least 4 tokens), \"completion\": the rest}. For `maskft eval --compare`.\n";

static int cmd_probe(int argc, char **argv)
{
    args_t a = { 0 };
    a.n = 1000; a.len = 64; a.temp = 1.0f;
    for (int i = 2; i + 1 < argc; i++) if (!strcmp(argv[i], "--n")) argv[i] = "-n"; /* --n N and -n N */
    parse(argc, argv, &a, probe_usage);
    need(a.model, "-m BASE", probe_usage);
    need(a.out, "--out P.jsonl", probe_usage);
    if (a.len < 8) die("%s", "--len must be at least 8 tokens: a probe is split into a prompt and a completion");
    mft_error err;
    mft_model m;
    mft_tokenizer tok;
    if (mft_model_open(&m, a.model, 1, 1, MFT_GENERATE, &err)) die_err(&err);
    m.n_threads = a.threads;
    open_tokenizer(a.tok, a.model, m.cfg.vocab_size, &tok);
    mft_data_opts o = data_opts(&a, &tok, &(int){ 0 }, &(float){ 0 });
    /* the start of a sequence: BOS, or (as lm-evaluation-harness does without one) the end token */
    int end = mft_end_token(&tok, &o), start = tok.bos_id >= 0 ? tok.bos_id : end, ended;
    if (start < 0) die("%s", "the tokenizer has neither BOS nor an end token to start a sample from");
    uint64_t rng = a.seed_set && a.seed ? a.seed : 1337;
    FILE *out = fopen(a.out, "wb");
    if (!out) die("cannot create '%s'", a.out);
    int *g = malloc(((size_t)a.len + 1) * sizeof(int)), written = 0, cap = a.len * max_piece(&tok) + 1;
    long draws = 0, max_draws = 20L * a.n + 100;
    char *text = malloc((size_t)cap), *ptxt = malloc((size_t)cap);
    if (!g || !text || !ptxt) die("%s", "out of memory");
    while (written < a.n) {
        if (draws++ >= max_draws)
            die("%s", "gave up after 20 samples per probe: the model rarely writes 8 tokens before its end token at this --temp (or --len is beyond the context)");
        int n = continue_ids(&m, &start, 1, a.len, end, a.temp, &rng, g, &ended), pl = 0, cl;
        if (n < 8) continue; /* too short to split; draw again */
        /* the completion's text: the whole decoded, minus the prompt's bytes; the split moves
           right until the prompt ends on a whole character */
        if (mft_decode_ids(&tok, g, n, 0, text, cap, &cl, &err)) die_err(&err);
        int k = n / 4 < 4 ? 4 : n / 4, ok = 0;
        for (; k <= n - 4 && !ok; k++) {
            if (mft_decode_ids(&tok, g, k, 0, ptxt, cap, &pl, &err)) die_err(&err);
            ok = pl <= cl && !memcmp(text, ptxt, (size_t)pl) && utf8_ok((const unsigned char *)ptxt, pl) &&
                 utf8_ok((const unsigned char *)text + pl, cl - pl);
        }
        if (!ok) continue;
        char *rec = record2("prompt", ptxt, pl, "completion", text + pl, cl - pl);
        fprintf(out, "%s\n", rec);
        free(rec);
        written++;
    }
    if (fclose(out)) die("cannot write '%s'", a.out);
    fprintf(stderr, "%d probes from %s written to %s\n", written, a.model, a.out);
    free(g); free(text); free(ptxt);
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
        "  train      masked fine-tuning on a JSONL data file (or plain training on a text file)\n"
        "  eval       perplexity, multiple choice, fact recall, forgetting against a base model\n"
        "  probe      a retention set sampled from a base model, for eval --compare\n"
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
    if (!strcmp(argv[1], "probe")) return cmd_probe(argc, argv);
    if (!strcmp(argv[1], "version")) { printf("maskft %s (%s)\n", mft_version(), mft_simd_name()); return 0; }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) { fputs(usage, stdout); return 0; }
    fprintf(stderr, "maskft: unknown command '%s'\n%s", argv[1], usage);
    return 1;
}
