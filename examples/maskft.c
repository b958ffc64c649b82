/* maskft - the command-line tool: generate, chat, train, eval, probe, draft, mask, export, tokenize.
   Built by `make`; every subcommand prints its usage with -h. */
#include "../maskft.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h> /* stat, mkdir */
#include <dirent.h>   /* the checkpoints --keep prunes */
#include <sys/ioctl.h> /* the terminal's width */
#include <unistd.h>    /* isatty */

#ifdef __GNUC__
#define DIE_ATTR __attribute__((format(printf, 1, 2), noreturn))
#define DIE_AT_ATTR __attribute__((format(printf, 5, 6), noreturn))
#else
#define DIE_ATTR
#define DIE_AT_ATTR
#endif

#define NO_LIMIT ((size_t)-1)

/* every fatal error: "maskft: MESSAGE" on stderr and exit status 1; a newline follows the
   message unless it ends with one (the messages that end with a usage text) */
static int g_exit = 1; /* die()'s exit status: 2 for a usage error (die_opt) */
static void die(const char *fmt, ...) DIE_ATTR;
static void die(const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (msg) vsnprintf(msg, (size_t)n + 1, fmt, aq);
    va_end(aq);
    fprintf(stderr, "maskft: %s%s", msg ? msg : fmt, msg && n > 0 && msg[n - 1] == '\n' ? "" : "\n");
    exit(g_exit);
}

/* an option that is missing, out of range, or does not apply: the same message, exit status 2
   (as getopt-style tools report usage errors) */
#define die_opt(...) (g_exit = 2, die(__VA_ARGS__))

static void die_err(const mft_error *e) { die("%s", e->msg); }

static void die_at(const char *where, int line, const char *what) { die("%s:%d: %s", where, line, what); }

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static mft_config config_of(const char *path)
{
    mft_error err;
    mft_config c;
    if (mft_model_config(path, &c, &err)) die_err(&err);
    return c;
}

static void open_model(mft_model *m, const char *path, int B, int T, int flags, int threads)
{
    mft_error err;
    if (mft_model_open(m, path, B, T, flags, &err)) die_err(&err);
    m->n_threads = threads;
}

/* ---- argument parsing: --name VALUE pairs, a short alias each ---------------------------- */

typedef struct {
    const char *model, *tok, *prompt, *text, *out, *data, *policy, *tmpl, *eligible, *eot, *html;
    const char *resume, *log, *base, *probes, *mc, *facts, *out_type, *replay, *drift, *lora_out;
    int no_eot, json, until_set, max_epochs, topk, lora, dft, lr_default, drift_n, steps_set,
        seq_set, grad_ckpt, argc;
    char **argv; /* the command line, for the --log metadata */
    float until, teacher, replay_ratio, replay_kl, lora_alpha;
    int n, steps, batch, seq, warmup, threads, seed_set, vocab, special, offsets, bos, eos;
    int epochs, accum, save_every, len, stop_after, keep, keep_set, print_every;
    float temp, top_p, lr, wd, clip, anchor, kl_sample;
    unsigned long long seed;
    const char *system; /* chat */
    int verbose;
} args_t;

static int is_dir(const char *p);

static double num(const char *flag, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi))
        die_opt("%s expects a number in [%g, %g], got '%s'", flag, lo, hi, v);
    return x;
}

static void parse(int argc, char **argv, args_t *a, const char *usage)
{
    a->argc = argc;
    a->argv = argv;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!strcmp(f, "--verbose")) {
            a->verbose = 1;
            continue;
        }
        const char *bools[] = { "--special", "--offsets", "--bos",
                                "--no-eot",  "--eos",     "--json", "--grad-checkpoint" };
        int *set[] = { &a->special, &a->offsets, &a->bos, &a->no_eot, &a->eos, &a->json, &a->grad_ckpt }, k = 0;
        while (k < 7 && strcmp(f, bools[k])) k++;
        if (k < 7) {
            *set[k] = 1;
            continue;
        }
        if (i + 1 >= argc) die_opt("%s needs a value\n%s", f, usage);
        const char *v = argv[++i];
        if (!strcmp(f, "-m") || !strcmp(f, "--model")) a->model = v;
        else if (!strcmp(f, "-t") || !strcmp(f, "--tokenizer")) a->tok = v;
        else if (!strcmp(f, "-p") || !strcmp(f, "--prompt")) a->prompt = v;
        else if (!strcmp(f, "--system")) a->system = v;
        else if (!strcmp(f, "--text")) a->text = v;
        else if (!strcmp(f, "--out-type")) a->out_type = v;
        else if (!strcmp(f, "-o") || !strcmp(f, "--out")) a->out = v;
        else if (!strcmp(f, "-n")) a->n = (int)num(f, v, 0, 1e9);
        else if (!strcmp(f, "--temp")) a->temp = (float)num(f, v, 0, 100);
        else if (!strcmp(f, "--top-p")) a->top_p = (float)num(f, v, 1e-6, 1);
        else if (!strcmp(f, "--seed")) {
            a->seed = (unsigned long long)num(f, v, 0, 1.8e19);
            a->seed_set = 1;
        } else if (!strcmp(f, "--gen")) a->steps = (int)num(f, v, 0, 1e9); /* eval: generations compared */
        else if (!strcmp(f, "--steps")) {
            a->steps = (int)num(f, v, 1, 1e9);
            a->steps_set = 1;
        }
        else if (!strcmp(f, "--lr")) a->lr = (float)num(f, v, 0, 10);
        else if (!strcmp(f, "--batch")) a->batch = (int)num(f, v, 1, 1e6);
        else if (!strcmp(f, "--seq")) {
            a->seq = (int)num(f, v, 1, 1e7);
            a->seq_set = 1;
        }
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
        else if (!strcmp(f, "--print-every")) a->print_every = (int)num(f, v, 1, 1e9);
        else if (!strcmp(f, "--keep")) {
            a->keep = (int)num(f, v, 1, 1e6);
            a->keep_set = 1;
        }
        else if (!strcmp(f, "--anchor")) a->anchor = (float)num(f, v, 0, 1e6);
        else if (!strcmp(f, "--teacher")) a->teacher = (float)num(f, v, 0, 1e6);
        else if (!strcmp(f, "--kl-sample")) a->kl_sample = (float)num(f, v, 1e-3, 1);
        else if (!strcmp(f, "--topk")) a->topk = (int)num(f, v, 1, MFT_SOFT_KMAX);
        else if (!strcmp(f, "--until-learned")) {
            a->until = strcmp(v, "off") ? (float)num(f, v, 1e-6, 1) : 0.0f;
            a->until_set = 1;
        } else if (!strcmp(f, "--max-epochs")) a->max_epochs = (int)num(f, v, 1, 1e6);
        else if (!strcmp(f, "--replay")) a->replay = v;
        else if (!strcmp(f, "--drift")) a->drift = v;
        else if (!strcmp(f, "--lora-out")) a->lora_out = v;
        else if (!strcmp(f, "--drift-n")) a->drift_n = (int)num(f, v, 1, 1e6);
        else if (!strcmp(f, "--replay-ratio")) a->replay_ratio = (float)num(f, v, 0, 0.95);
        else if (!strcmp(f, "--replay-kl")) a->replay_kl = (float)num(f, v, 0, 1e6);
        else if (!strcmp(f, "--lora")) a->lora = (int)num(f, v, 1, 4096);
        else if (!strcmp(f, "--lora-alpha")) a->lora_alpha = (float)num(f, v, 1e-6, 1e6);
        else if (!strcmp(f, "--resume")) a->resume = v;
        else if (!strcmp(f, "--log")) a->log = v;
        else if (!strcmp(f, "--compare")) a->base = v;
        else if (!strcmp(f, "--probes")) a->probes = v;
        else if (!strcmp(f, "--mc")) a->mc = v;
        else if (!strcmp(f, "--facts")) a->facts = v;
        else if (!strcmp(f, "--len")) a->len = (int)num(f, v, 1, 1e6);
        else die_opt("unknown option %s\n%s", f, usage);
    }
    /* the options that name a file: a folder there is a mistake, said now */
    const char *fname[7] = { "--data", "--text", "--facts", "--mc", "--probes", "--replay", "--drift" };
    const char *fval[7] = { a->data, a->text, a->facts, a->mc, a->probes, a->replay, a->drift };
    for (int k = 0; k < 7; k++)
        if (fval[k] && is_dir(fval[k])) die_opt("%s '%s' is a folder: give a file", fname[k], fval[k]);
}

static void need(const char *v, const char *what, const char *usage)
{
    if (!v) die_opt("missing %s\n%s", what, usage);
}

/* a whole file (path NULL: standard input), NUL-terminated; free with mft_free */
static char *slurp(const char *path, size_t max, size_t *n)
{
    mft_error err;
    if (path && is_dir(path)) die("'%s' is a folder: give a file", path);
    char *data;
    if (mft_read_file(path, max, &data, n, &err)) die_err(&err);
    return data;
}

/* text[0..len) through the encoder into a new array (and its offsets into another, if offs
   is not NULL): measured first, then encoded */
static int *encode_new(const mft_tokenizer *tok, const char *text, int len, int flags, int *n, int **offs)
{
    mft_error err;
    if (mft_encode(tok, text, len, flags, NULL, 0, n, NULL, &err)) die_err(&err);
    int *ids = xmalloc(((size_t)*n + 1) * sizeof(int));
    if (offs) *offs = xmalloc(((size_t)*n + 1) * 2 * sizeof(int));
    if (mft_encode(tok, text, len, flags, ids, *n, n, offs ? *offs : NULL, &err)) die_err(&err);
    return ids;
}

/* BOS + the text through the model's encoder, as the model was trained */
static int *encode_file(const mft_tokenizer *tok, const char *path, int *n_out)
{
    size_t len;
    char *text = slurp(path, (size_t)1 << 30, &len);
    if (len > ((size_t)1 << 28)) die("'%s' is too large to encode in one piece", path);
    int *ids = encode_new(tok, text, (int)len, MFT_BOS, n_out, NULL);
    mft_free(text);
    return ids;
}

/* ids[0..n) decoded into a new NUL-terminated string: measured first, then decoded */
static char *decode_new(const mft_tokenizer *tok, const int *ids, int n, int flags, int *len)
{
    mft_error err;
    if (mft_decode_ids(tok, ids, n, flags, NULL, 0, len, &err)) die_err(&err);
    if (*len >= (1 << 30) - 1) die("output over 1 GiB");
    char *out = xmalloc((size_t)*len + 1);
    if (mft_decode_ids(tok, ids, n, flags, out, *len + 1, len, &err)) die_err(&err);
    return out;
}

/* s[0..n) as a JSON string literal, in a new buffer */
static char *json_str(const char *s, int n)
{
    int len;
    mft_json_escape(s, n, NULL, 0, &len);
    char *out = xmalloc((size_t)len + 1);
    mft_json_escape(s, n, out, len + 1, &len);
    return out;
}

/* {"prompt": P, "completion": C} */
static char *record_pc(const char *p, int pl, const char *c, int cl)
{
    char *jp = json_str(p, pl), *jc = json_str(c, cl);
    char *rec = xmalloc(strlen(jp) + strlen(jc) + 32);
    sprintf(rec, "{\"prompt\": %s, \"completion\": %s}", jp, jc);
    free(jp);
    free(jc);
    return rec;
}

/* ---- writing a model: the format from OUT ------------------------------------------------ */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* OUT ending in '/' or an existing directory: a Hugging Face folder; OUT.gguf: GGUF for
   llama.cpp; else a llama2.c .bin */
static int out_is_folder(const char *out)
{
    size_t n = strlen(out);
    return (n > 0 && out[n - 1] == '/') || is_dir(out);
}

static int out_is_gguf(const char *out)
{
    size_t n = strlen(out);
    return n > 5 && !strcmp(out + n - 5, ".gguf");
}

/* the files that would be written do not exist yet as directories and their folder exists:
   checked before the first step, so a run is not lost to a bad --out */
/* can a file be created at path? (created and removed again, so that a run finds out before
   its first step, not after its last) */
static void check_writable(const char *path, const char *what)
{
    size_t n = strlen(path);
    char *probe = xmalloc(n + 16);
    snprintf(probe, n + 16, "%s.maskft-probe", path);
    FILE *f = fopen(probe, "wb");
    if (!f) die("cannot write %s '%s' (%s): check --out before training", what, path, strerror(errno));
    fclose(f);
    remove(probe);
    free(probe);
}

static void check_out(const char *out, const char *type)
{
    if (type && strcmp(type, "f32") && strcmp(type, "f16") && strcmp(type, "bf16"))
        die_opt("--out-type is f32, f16 or bf16 (got '%s')", type);
    if (out_is_folder(out)) {
        if (!is_dir(out) && mkdir(out, 0755)) die("cannot create the folder '%s' for --out", out);
        size_t n = strlen(out);
        char *inside = xmalloc(n + 20);
        snprintf(inside, n + 20, "%s%sconfig.json", out, out[n - 1] == '/' ? "" : "/");
        check_writable(inside, "into the folder");
        free(inside);
        return;
    }
    if (type && !out_is_gguf(out))
        die_opt("--out-type applies to a Hugging Face folder (--out DIR/) or a GGUF file (--out X.gguf); "
            "'%s' is a llama2.c checkpoint", out);
    check_writable(out, "the model");
}

/* the folder of the tokenizer files to copy into a written folder: the model's own folder, or
   the folder of -t when -t is a Hugging Face or SentencePiece file (tokenizer.json, .model) */
static char *tokenizer_dir(const char *model, const char *tok)
{
    if (!tok) return is_dir(model) ? strdup(model) : NULL;
    if (!strstr(tok, "tokenizer")) return NULL;
    char *d = strdup(tok), *slash = d ? strrchr(d, '/') : NULL;
    if (d && slash) *slash = 0;
    else if (d) strcpy(d, ".");
    return d;
}

/* ---- the tokenizer beside a llama2.c output ------------------------------------------------
   A .bin holds no tokenizer (Hugging Face folders and GGUF files carry theirs): the tokenizer
   file goes beside it under a name the loader looks for, so that eval, generate and a resumed
   run (the checkpoints sit beside OUT too) find it. Planned before the first step: another
   tokenizer that the loader would find there first is an error, never a silent mix-up. */

typedef struct {
    char *src, *dst, *cfg_src, *cfg_dst; /* the tokenizer file and its tokenizer_config.json */
} tok_copy;

static int same_file_bytes(const char *a, const char *b)
{
    size_t na, nb;
    char *x = slurp(a, (size_t)1 << 30, &na), *y = slurp(b, (size_t)1 << 30, &nb);
    int same = na == nb && !memcmp(x, y, na);
    mft_free(x);
    mft_free(y);
    return same;
}

static char *beside(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0, n = dl + strlen(name) + 1;
    char *p = xmalloc(n);
    memcpy(p, path, dl);
    strcpy(p + dl, name);
    return p;
}

static tok_copy tok_plan(const char *out, const char *tokpath, const char *model, int vocab)
{
    tok_copy tc = { 0 };
    mft_error err;
    if (out_is_folder(out) || out_is_gguf(out)) return tc;
    if (tokpath && !is_dir(tokpath)) tc.src = strdup(tokpath);
    else if (mft_tokenizer_path(tokpath ? tokpath : model, vocab, &tc.src, &err)) return tc;
    FILE *f = fopen(tc.src, "rb");
    char magic[4] = { 0 };
    if (f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4)) {
        fprintf(stderr, "maskft: note: the tokenizer is inside '%s'; '%s' will not carry one (give -t %s with it, "
                "or write OUT.gguf or OUT/)\n", tc.src, out, tc.src);
        fclose(f);
        mft_free(tc.src);
        tc.src = NULL;
        return tc;
    }
    if (f) fclose(f);
    /* its own name if the loader looks for it, else the name of its kind */
    const char *base = strrchr(tc.src, '/') ? strrchr(tc.src, '/') + 1 : tc.src;
    char tokv[40];
    snprintf(tokv, sizeof tokv, "tok%d.bin", vocab);
    size_t bl = strlen(base);
    const char *name = !strcmp(base, "tokenizer.json") || !strcmp(base, "tokenizer.model") ||
                               !strcmp(base, "tokenizer.bin") || !strcmp(base, tokv)
                           ? base
                       : bl > 5 && !strcmp(base + bl - 5, ".json")  ? "tokenizer.json"
                       : bl > 6 && !strcmp(base + bl - 6, ".model") ? "tokenizer.model"
                                                                    : "tokenizer.bin";
    char *found = NULL;
    if (!mft_tokenizer_path(out, vocab, &found, &err)) { /* what the loader would read beside OUT */
        int same = same_file_bytes(found, tc.src);
        if (!same)
            die("'%s' is beside --out '%s' and would be read as its tokenizer, but it is another one than '%s': "
                "write --out into another folder", found, out, tc.src);
        mft_free(found);
        mft_free(tc.src);
        tc.src = NULL;
        return tc;
    }
    tc.dst = beside(out, name);
    if (!strcmp(name, "tokenizer.json")) { /* the chat template and special tokens come with it */
        char *cs = beside(tc.src, "tokenizer_config.json"), *cd = beside(out, "tokenizer_config.json");
        FILE *g = fopen(cs, "rb");
        if (g) {
            fclose(g);
            g = fopen(cd, "rb");
            if (g) fclose(g);
            if (g && !same_file_bytes(cs, cd))
                die("'%s' is beside --out '%s' and belongs to another tokenizer: write --out into another folder", cd,
                    out);
            if (!g) tc.cfg_src = cs, tc.cfg_dst = cd;
        }
        if (!tc.cfg_src) free(cs), free(cd);
    }
    check_writable(tc.dst, "the tokenizer beside the model");
    return tc;
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *b = slurp(from, (size_t)1 << 31, &n);
    size_t tl = strlen(to) + 5;
    char *tmp = xmalloc(tl);
    snprintf(tmp, tl, "%s.tmp", to);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f && fclose(f)) ok = 0;
    if (!ok || rename(tmp, to)) {
        remove(tmp);
        die("cannot write '%s' (%s)", to, strerror(errno));
    }
    free(tmp);
    mft_free(b);
}

static void tok_write(tok_copy *tc)
{
    if (tc->dst) {
        copy_file(tc->src, tc->dst);
        fprintf(stderr, "wrote the tokenizer beside the model: %s%s%s\n", tc->dst, tc->cfg_dst ? " and " : "",
                tc->cfg_dst ? tc->cfg_dst : "");
    }
    if (tc->cfg_dst) copy_file(tc->cfg_src, tc->cfg_dst);
    mft_free(tc->src);
    free(tc->dst);
    free(tc->cfg_src);
    free(tc->cfg_dst);
    memset(tc, 0, sizeof *tc);
}

static void save_model(const mft_model *m, const char *out, const char *type, const mft_tokenizer *tok,
                       const char *model, const char *tokpath)
{
    mft_error err;
    int dt = !type                 ? -1
             : !strcmp(type, "f16")  ? MFT_DTYPE_F16
             : !strcmp(type, "bf16") ? MFT_DTYPE_BF16
                                     : MFT_DTYPE_F32;
    if (out_is_gguf(out)) {
        if (!tok) die("a GGUF file carries the tokenizer: give one with -t");
        if (mft_gguf_save(m, out, dt, tok, &err)) die_err(&err);
        return;
    }
    if (!out_is_folder(out)) {
        if (mft_model_save(m, out, &err)) die_err(&err);
        return;
    }
    char *from = tokenizer_dir(model, tokpath);
    if (mft_hf_save(m, out, dt, tok, from, &err)) die_err(&err);
    if (!from)
        fprintf(stderr,
                "maskft: note: no Hugging Face tokenizer files (tokenizer.json, tokenizer.model) come with '%s': "
                "the folder holds none\n",
                model);
    free(from);
}

/* -t if given (a file, or a folder of tokenizer files), else the tokenizer that comes with the
   model (GGUF, a folder, or a file beside it) */
static mft_status find_tokenizer(const char *tokpath, const char *model, int vocab, mft_tokenizer *tok, mft_error *err)
{
    if (tokpath && is_dir(tokpath)) return mft_tokenizer_for_model(tok, tokpath, vocab, err);
    return tokpath ? mft_tokenizer_open(tok, tokpath, vocab, err) : mft_tokenizer_for_model(tok, model, vocab, err);
}

static void open_tokenizer(const char *tokpath, const char *model, int vocab, mft_tokenizer *tok)
{
    mft_error err;
    if (find_tokenizer(tokpath, model, vocab, tok, &err)) die_err(&err);
}

static const char *convert_usage =
    "usage: maskft convert -m MODEL [-t TOKENIZER] --out OUT [--out-type f32|f16|bf16]\n"
    "  Writes MODEL (a llama2.c .bin, a GGUF file or a Hugging Face folder) as OUT: a folder\n"
    "  (OUT/ or an existing directory: config.json, model.safetensors in the type the model came\n"
    "  in or --out-type, the tokenizer files copied), a GGUF file for llama.cpp (OUT.gguf:\n"
    "  matrices in the model's type or --out-type, the tokenizer inside) or a llama2.c\n"
    "  checkpoint (anything else, e.g. OUT.bin).\n";

static int cmd_convert(int argc, char **argv)
{
    args_t a = { 0 };
    parse(argc, argv, &a, convert_usage);
    need(a.model, "-m MODEL", convert_usage);
    need(a.out, "--out OUT", convert_usage);
    check_out(a.out, a.out_type);
    mft_model m;
    mft_tokenizer tok;
    mft_error err;
    open_model(&m, a.model, 1, 1, MFT_FORWARD, a.threads);
    /* a folder or .bin can be written without a tokenizer (unless -t names one); a GGUF file
       carries one */
    int have_tok = find_tokenizer(a.tok, a.model, m.cfg.vocab_size, &tok, &err) == MFT_OK;
    if (!have_tok && (a.tok || out_is_gguf(a.out))) die_err(&err);
    if (m.quantised) fprintf(stderr, "maskft: note: '%s' was quantised; it is written dequantised\n", a.model);
    tok_copy tc = { 0 };
    if (have_tok) tc = tok_plan(a.out, a.tok, a.model, m.cfg.vocab_size);
    save_model(&m, a.out, a.out_type, have_tok ? &tok : NULL, a.model, a.tok);
    tok_write(&tc);
    fprintf(stderr, "wrote %s (%zu parameters)\n", a.out, m.n_params);
    if (have_tok) mft_tokenizer_free(&tok);
    mft_model_free(&m);
    return 0;
}

/* ---- generate ------------------------------------------------------------------------------ */

static const char *gen_usage =
    "usage: maskft generate -m MODEL [-t TOKENIZER] [-p PROMPT] [-n N] [--temp T] [--top-p P] [--seed S]"
    " [--threads K]\n"
    "  Prints the prompt and N new tokens (default 256). --temp 0 is greedy (argmax). Defaults:\n"
    "  --temp 1.0 --top-p 0.9, seed from the clock. Stops early at BOS/EOS (a TinyStories model\n"
    "  ends a story with BOS) or at the end of the context.\n";

/* prints each token's bytes as it comes (mft_gen_opts.on_token) */
typedef struct {
    const mft_tokenizer *tok;
    int prev;
} printer_t;

static int print_token(void *user, int token)
{
    printer_t *p = user;
    int len;
    const char *piece = mft_token_bytes(p->tok, p->prev, token, &len);
    fwrite(piece, 1, (size_t)len, stdout);
    fflush(stdout);
    p->prev = token;
    return 0;
}

static int cmd_generate(int argc, char **argv)
{
    args_t a = { .prompt = "", .n = 256, .temp = 1.0f, .top_p = 0.9f };
    parse(argc, argv, &a, gen_usage);
    need(a.model, "-m MODEL", gen_usage);
    mft_error err;
    mft_model m;
    mft_tokenizer tok;
    mft_config c = config_of(a.model);
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    int n_prompt, ng, ended;
    int *prompt = encode_new(&tok, a.prompt, (int)strlen(a.prompt), MFT_BOS, &n_prompt, NULL);
    if (n_prompt == 0) die("this tokenizer has no BOS token: give a prompt with -p");
    if (n_prompt > c.seq_len) die("the prompt (%d tokens) is longer than the context (%d)", n_prompt, c.seq_len);
    /* the KV cache holds what this generation needs, not the model's whole context */
    double need_ctx = (double)n_prompt + a.n + 1;
    int ctx = need_ctx < c.seq_len ? (int)need_ctx : c.seq_len;
    open_model(&m, a.model, 1, ctx, MFT_GENERATE | MFT_CONTEXT, a.threads);
    uint64_t rng = a.seed_set ? a.seed : (uint64_t)time(NULL);
    printer_t pr = { &tok, prompt[0] };
    for (int i = 1; i < n_prompt; i++) print_token(&pr, prompt[i]);
    mft_gen_opts go = mft_gen_opts_default();
    go.max_new = a.n;
    go.temperature = a.temp;
    go.top_p = a.top_p;
    mft_tokenizer_stops(&tok, -1, go.stop);
    go.on_token = print_token;
    go.user = &pr;
    int cap = m.cfg.seq_len - n_prompt + 1;
    int *gen = xmalloc((size_t)cap * sizeof(int));
    clock_t t0 = clock();
    if (mft_generate(&m, prompt, n_prompt, &go, &rng, gen, cap, &ng, &ended, &err)) die_err(&err);
    printf("\n");
    fflush(stdout);
    double dt = (double)(clock() - t0) / CLOCKS_PER_SEC;
    int generated = ng + ended; /* the stop token was drawn too */
    fprintf(stderr, "%d tokens generated, %.1f tok/s (CPU time, %s)\n", generated, dt > 0 ? generated / dt : 0.0,
            mft_simd_name());
    free(gen);
    free(prompt);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    return 0;
}

/* ---- chat ------------------------------------------------------------------------------------ */

static const char *chat_usage =
    "usage: maskft chat -m MODEL [-t TOKENIZER] [--template auto|NAME] [--system TEXT] [-n N] [--temp T] [--top-p P]\n"
    "                   [--seed S] [--eot TOKEN] [--verbose] [--threads K]\n"
    "  A conversation with the model: each line of stdin is a user turn (a \"> \" prompt on stderr\n"
    "  when stdin is a terminal); each reply is printed to stdout as it is generated, then a\n"
    "  newline. A reply ends at the template's end-of-turn token (or --eot TOKEN), at EOS, or after\n"
    "  N new tokens (-n, default 256). Every turn the whole conversation is rendered with the chat\n"
    "  template and encoded as training encodes it; only the tokens after those the KV cache\n"
    "  already holds are fed. --template: auto (the default: the model's chat_template, plain when\n"
    "  it has none) or plain, llama3, qwen3, phi3, chatml, zephyr, llama2, mistral, mistral-v0.1,\n"
    "  mistral-v3, gemma, gemma3. plain (e.g. stories260K): the conversation is one text, each line\n"
    "  joined to it with a space, and the model continues it. --system TEXT opens the conversation.\n"
    "  Empty lines are ignored; /clear starts over, /exit or the end of the input (Ctrl-D) ends.\n"
    "  When the conversation and room for a reply (N tokens, at most half the context) no longer\n"
    "  fit the context, its oldest exchanges are dropped, with a note on stderr (the system text\n"
    "  stays); a turn that does not fit even alone is an error. --verbose: each turn's prompt as\n"
    "  the model reads it and its token counts, on stderr. Defaults as generate's: --temp 1.0\n"
    "  --top-p 0.9, the seed from the clock.\n";

/* a reply as it comes (mft_gen_opts.on_token): to stdout, whole characters at a time, and into
   the reply's text */
typedef struct {
    const mft_tokenizer *tok;
    mft_detok st;
    char *buf, *text;
    int cap;
    size_t len, room;
} chat_reply_t;

static void chat_put(chat_reply_t *r, int token)
{
    int n;
    while (mft_detok_stream(r->tok, &r->st, token, r->buf, r->cap, &n) == MFT_ERR_SPACE) {
        free(r->buf);
        r->cap = n + 1;
        r->buf = xmalloc((size_t)r->cap);
    }
    fwrite(r->buf, 1, (size_t)n, stdout);
    fflush(stdout);
    if (r->len + (size_t)n + 1 > r->room) {
        r->room = 2 * (r->len + (size_t)n + 1);
        if (!(r->text = realloc(r->text, r->room))) die("out of memory");
    }
    memcpy(r->text + r->len, r->buf, (size_t)n);
    r->len += (size_t)n;
}

static int chat_token(void *user, int token)
{
    chat_reply_t *r = user;
    chat_put(r, token);
    return 0;
}

/* the conversation with the assistant's header after it, as the model reads it (a new array) */
static int *chat_ids(const mft_tokenizer *tok, int family, const mft_chat_msg *msg, int nm, int *n)
{
    mft_error err;
    if (mft_chat_encode(tok, family, msg, nm, 1, NULL, 0, n, &err)) die_err(&err);
    int *ids = xmalloc(((size_t)*n + 1) * sizeof(int));
    if (mft_chat_encode(tok, family, msg, nm, 1, ids, *n, n, &err)) die_err(&err);
    return ids;
}

/* a message that owns a copy of prefix + s[0..n) */
static mft_chat_msg chat_msg(int role, const char *prefix, const char *s, size_t n)
{
    size_t pl = strlen(prefix);
    if (pl + n > ((size_t)1 << 28)) die("a message over 256 MiB");
    char *c = xmalloc(pl + n + 1);
    memcpy(c, prefix, pl);
    memcpy(c + pl, s, n);
    c[pl + n] = 0;
    mft_chat_msg m = { role, c, (int)(pl + n) };
    return m;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static mft_data_opts data_opts(const args_t *a, const mft_tokenizer *tok, int *filter, float *tau); /* with mask */

static int cmd_chat(int argc, char **argv)
{
    args_t a = { .n = 256, .temp = 1.0f, .top_p = 0.9f };
    parse(argc, argv, &a, chat_usage);
    need(a.model, "-m MODEL", chat_usage);
    if (a.n < 1) die_opt("-n is the most new tokens of a reply: at least 1");
    mft_error err;
    mft_model m;
    mft_tokenizer tok;
    open_model(&m, a.model, 1, 1, MFT_GENERATE, a.threads);
    open_tokenizer(a.tok, a.model, m.cfg.vocab_size, &tok);
    int filter, S = m.cfg.seq_len;
    float tau;
    mft_data_opts o = data_opts(&a, &tok, &filter, &tau);
    int family = o.template_family;
    if (family < 0 && (family = mft_chat_detect(tok.chat_template, NULL)) < 0) {
        family = MFT_CHAT_PLAIN;
        fprintf(stderr, "maskft: note: %s: the conversation is plain text (--template NAME to choose a template)\n",
                tok.chat_template ? "the model's chat template is of no family maskft knows"
                                  : "the model has no chat template");
    }
    o.template_family = family;
    int plain = family == MFT_CHAT_PLAIN, eot = mft_end_token(&tok, &o);
    if (eot < 0 && !plain)
        fprintf(stderr, "maskft: note: this vocabulary has no end-of-turn token for the %s template: a reply ends at "
                "EOS or after -n tokens\n", mft_chat_family_name(family));
    if (a.system) {
        mft_chat_msg probe[2] = { { MFT_ROLE_SYSTEM, a.system, (int)strlen(a.system) }, { MFT_ROLE_USER, "x", 1 } };
        int len;
        if (mft_chat_render(family, &tok, probe, 2, 1, NULL, 0, &len, NULL, NULL, &err))
            die_opt("--system: %s (the %s template)", err.msg, mft_chat_family_name(family));
    }
    mft_gen_opts go = mft_gen_opts_default();
    go.max_new = a.n;
    go.temperature = a.temp;
    go.top_p = a.top_p;
    mft_tokenizer_stops(&tok, eot, go.stop);
    chat_reply_t reply = { &tok, { -1, 0, { 0 } }, xmalloc(64), NULL, 64, 0, 0 };
    go.on_token = chat_token;
    go.user = &reply;
    uint64_t rng = a.seed_set ? a.seed : (uint64_t)time(NULL);
    int interactive = isatty(0), first = a.system != NULL, nm = 0, cap_m = 16, n_held = 0, turn = 0;
    int room = a.n < S / 2 ? a.n : S / 2; /* the context a reply is sure of */
    mft_chat_msg *msg = xmalloc((size_t)cap_m * sizeof *msg);
    if (a.system) msg[nm++] = chat_msg(MFT_ROLE_SYSTEM, "", a.system, strlen(a.system));
    int *held = xmalloc((size_t)S * sizeof(int)), *gen = xmalloc((size_t)S * sizeof(int));
    if (a.verbose) {
        int el = 0;
        const char *e = eot >= 0 ? mft_token_piece(&tok, eot, &el) : "";
        char *je = json_str(e ? e : "", e ? el : 0);
        fprintf(stderr, "maskft: template %s, end-of-turn token %d %s, context %d, up to %d new tokens a reply\n",
                mft_chat_family_name(family), eot, je, S, a.n);
        free(je);
    }
    if (interactive)
        fprintf(stderr, "maskft chat: %s (%s); /exit or Ctrl-D ends, /clear starts over\n", a.model,
                mft_chat_family_name(family));
    char *line = NULL;
    size_t line_cap = 0;
    for (;;) {
        if (interactive) {
            fputs("> ", stderr);
            fflush(stderr);
        }
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) break;
        size_t len = (size_t)got;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        line[len] = 0;
        if (len == 0) continue;
        if (!strcmp(line, "/exit")) break;
        if (!strcmp(line, "/clear")) {
            while (nm > first) free((void *)msg[--nm].content);
            if (interactive) fputs("(a new conversation)\n", stderr);
            continue;
        }
        if (nm + 2 > cap_m) {
            cap_m *= 2;
            if (!(msg = realloc(msg, (size_t)cap_m * sizeof *msg))) die("out of memory");
        }
        /* plain text: the line goes on from the text so far, after a space unless one is there */
        const mft_chat_msg *last = nm ? &msg[nm - 1] : NULL;
        int space = plain && last && last->len > 0 && !is_space(last->content[last->len - 1]) && !is_space(line[0]);
        msg[nm++] = chat_msg(MFT_ROLE_USER, space ? " " : "", line, len);
        turn++;
        /* the prompt; while it leaves no room for a reply, the oldest exchange goes */
        int n_ids, dropped = 0;
        int *ids = chat_ids(&tok, family, msg, nm, &n_ids);
        while (n_ids + room > S && nm - first >= 3) {
            free((void *)msg[first].content);
            free((void *)msg[first + 1].content);
            memmove(msg + first, msg + first + 2, (size_t)(nm - first - 2) * sizeof *msg);
            nm -= 2;
            dropped++;
            free(ids);
            ids = chat_ids(&tok, family, msg, nm, &n_ids);
        }
        if (dropped && plain && first == 0 && msg[0].len > 1 && msg[0].content[0] == ' ') {
            /* the space that joined it to what was dropped: the text now starts there */
            memmove((char *)msg[0].content, msg[0].content + 1, (size_t)msg[0].len--);
            free(ids);
            ids = chat_ids(&tok, family, msg, nm, &n_ids);
        }
        if (dropped)
            fprintf(stderr, "maskft: note: the conversation no longer fits the context (%d tokens): its oldest %d "
                    "exchange%s dropped\n", S, dropped, dropped > 1 ? "s were" : " was");
        if (n_ids == 0) die("turn %d: the conversation encodes to no tokens", turn);
        if (n_ids >= S)
            die("turn %d does not fit the context: %d tokens%s, the context %d", turn, n_ids,
                first ? " with the system text" : "", S);
        if (a.verbose) {
            int reused = 0, tl;
            while (reused < n_held && reused < n_ids - 1 && held[reused] == ids[reused]) reused++;
            char *text = decode_new(&tok, ids, n_ids, MFT_SPECIAL, &tl), *js = json_str(text, tl);
            fprintf(stderr, "maskft: turn %d: %d prompt tokens, %d held in the KV cache, %d fed: %s\n", turn, n_ids,
                    reused, n_ids - reused, js);
            free(js);
            free(text);
        }
        int ng, ended;
        reply.st.prev = ids[n_ids - 1];
        reply.st.npend = 0;
        reply.len = 0;
        if (mft_generate_cached(&m, ids, n_ids, held, &n_held, &go, &rng, gen, S, &ng, &ended, &err)) die_err(&err);
        chat_put(&reply, -1); /* what the stream held back */
        fputc('\n', stdout);
        fflush(stdout);
        msg[nm++] = chat_msg(MFT_ROLE_ASSISTANT, "", reply.text ? reply.text : "", reply.len);
        const char *why = ended ? "ended by an end token" : ng >= a.n ? "the -n limit" : "the end of the context";
        if (a.verbose) fprintf(stderr, "maskft: turn %d: %d new tokens, %s\n", turn, ng, why);
        else if (!ended && ng < a.n) fprintf(stderr, "maskft: note: the reply reached the end of the context\n");
        free(ids);
    }
    free(line);
    while (nm > 0) free((void *)msg[--nm].content);
    free(msg);
    free(held);
    free(gen);
    free(reply.buf);
    free(reply.text);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    return 0;
}

/* ---- train ----------------------------------------------------------------------------------- */

static const char *train_usage =
    "usage: maskft train -m MODEL [-t TOKENIZER] --data D.jsonl --out OUT [--policy key|all|diff|dft[+FILTER]]\n"
    "                    [--template T] [--eligible assistant|all|last] [--eot TOKEN | --no-eot]\n"
    "                    [--until-learned 0.5|off] [--max-epochs 100] [--epochs N] [--lr LR] [--batch 4]\n"
    "                    [--seq 256] [--grad-accum 1] [--warmup 0] [--weight-decay 0.01] [--clip 1.0] [--seed S]\n"
    "                    [--anchor W | --teacher W] [--topk 64] [--kl-sample 1]\n"
    "                    [--replay P.jsonl [--replay-ratio 0.5] [--replay-kl W]]\n"
    "                    [--lora R [--lora-alpha R] [--lora-out DIR]] [--save-every N]\n"
    "                    [--keep 1] [--stop-after N] [--resume OUT.stepN.ckpt] [--log L.jsonl]\n"
    "                    [--drift P.jsonl [--drift-n 64]] [--print-every 1]\n"
    "                    [--grad-checkpoint] [--threads N]\n"
    "       maskft train -m MODEL [-t TOKENIZER] --text FILE --out OUT [--steps 100] [--lr 1e-3] ...\n"
    "  --data: masked fine-tuning on a JSONL file (the records and policies of `maskft mask -h`; dft\n"
    "  trains every token weighted by its own probability: Dynamic Fine-Tuning, TRL's loss_type dft).\n"
    "  Until learned (the default): after every epoch each example's trained tokens are scored; an\n"
    "  example whose every trained token has probability >= P (0.5) is learned and leaves the later\n"
    "  epochs, and the run ends when all are learned, or after --max-epochs naming those that are\n"
    "  not. Training what is already learned only moves the model elsewhere. --epochs N (with\n"
    "  --until-learned off) trains a fixed budget instead, the learning rate cosine-decayed to 10%;\n"
    "  until learned it stays at its peak after --warmup. The default lr is 1e-4 x sqrt(64 / dim):\n"
    "  1e-4 for the bundled model (dim 64: 1e-3 learned its facts in 11 steps but drifted 3x more),\n"
    "  3.3e-5 for SmolLM2-135M, 2.7e-5 for Qwen2.5-0.5B, 1.8e-5 for Llama-3.2-1B and TinyLlama.\n"
    "  Examples are packed into rows of --seq tokens (each attends only to itself), --batch rows per\n"
    "  micro-batch, --grad-accum micro-batches per AdamW step, shuffled each epoch.\n"
    "  --anchor W adds W x the mean KL(base || model) over the untrained positions of each step;\n"
    "  --teacher W the same KL to the base model reading the record's \"context\" (or its key\n"
    "  sentences) before the example: what the model would say there if it knew the fact. Both keep\n"
    "  the base model's --topk most likely tokens per position (and the rest as one bin), computed\n"
    "  once before the first step. --kl-sample P takes these KL terms (and --replay-kl's) on a random\n"
    "  share P of their positions each step, each weighted 1 / P: the same objective in expectation,\n"
    "  the classifier's cost on P of those rows.\n"
    "  --replay mixes texts (from `maskft probe`) into every epoch, a\n"
    "  --replay-ratio share of its examples, every token trained; with --replay-kl W they are kept\n"
    "  close to the base model (W x their mean KL) instead. --lora R trains rank-R adapters on q, k,\n"
    "  v, o, gate, up and down (scale alpha / R; the weights frozen, 12 bytes per parameter less;\n"
    "  default lr 10x the full fine-tune's) and saves OUT with them merged (--lora-out DIR: also\n"
    "  the adapters alone, as PEFT saves them). --drift P.jsonl reports\n"
    "  after every epoch the mean KL(base || model) on the first --drift-n (64) texts of P.\n"
    "  Checkpoints: every --save-every steps (and then at the end), after every epoch with --keep\n"
    "  alone, on Ctrl-C and at --stop-after N, OUT.stepN.ckpt holds weights, optimizer state (3x\n"
    "  the model), data position and RNG state; the newest --keep (1) are kept. A run without them\n"
    "  writes OUT alone. --resume continues from one to the same weights, bit for bit, as an\n"
    "  uninterrupted run (not with --lora); it may extend the run (a larger --epochs: the schedule\n"
    "  follows the new budget; --max-epochs; a later --stop-after), and names any other option\n"
    "  that differs. eval and generate take a checkpoint as -m (its weights). A .bin OUT gets its\n"
    "  tokenizer beside it (a different one there stops the run before it starts).\n"
    "  Progress: on a terminal one line in place, cut to its width (step, epoch, loss, lr, tokens/s,\n"
    "  elapsed and ETA as h:mm:ss); to a pipe the same as a plain line every --print-every steps.\n"
    "  --grad-checkpoint keeps only each layer's input and computes the layer again in backward:\n"
    "  the same weights bit for bit, up to one more forward pass of time, a fraction of the\n"
    "  memory (the SmolLM2-135M shape at --batch 4 --seq 2048: 11.6 GiB without, 4.6 GiB with).\n"
    "  --log writes one JSON record per step\n"
    "  and one per epoch. MODEL is a llama2.c .bin, a GGUF file or a Hugging Face folder; OUT.bin\n"
    "  is written as a llama2.c checkpoint, OUT/ (or an existing directory) as a Hugging Face\n"
    "  folder, OUT.gguf as GGUF, in the type the model came in (--out-type f32|f16|bf16).\n"
    "  --text: plain next-token training on random windows of a text file (every token weighted\n"
    "  1) for --steps steps.\n";

static int cmd_train_data(args_t *a);

/* ---- the progress line: on a terminal one line rewritten in place, cut to the terminal's
   width (no wrapped fragments left behind by \r); to a pipe a plain line every
   --print-every steps; the same fields in both ------------------------------------------- */

static void hms(double s, char out[32])
{
    long t = s > 0 && s < 3.6e8 ? (long)(s + 0.5) : 0;
    snprintf(out, 32, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static int term_width(void)
{
    struct winsize ws;
    if (!ioctl(2, TIOCGWINSZ, &ws) && ws.ws_col >= 20) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    return c && atoi(c) >= 20 ? atoi(c) : 80;
}

/* at: "step S/T  epoch E/N"; kl: "" or "  anchor KL x"; eta < 0: not known (until learned) */
static void progress(int tty, const char *at, double loss, const char *kl, double lr, double tok_s, double trained_s,
                     double elapsed, double eta)
{
    char line[320], t0[32], t1[32];
    hms(elapsed, t0);
    hms(eta, t1);
    snprintf(line, sizeof line, "%s  loss %.4f%s  lr %.1e  %.0f tok/s (%.0f trained)  %s%s%s", at, loss, kl, lr, tok_s,
             trained_s, t0, eta >= 0 ? " ETA " : "", eta >= 0 ? t1 : "");
    if (!tty) {
        fprintf(stderr, "%s\n", line);
        return;
    }
    int w = term_width() - 1; /* the last column would wrap on some terminals */
    fprintf(stderr, "\r%-*.*s", w, w, line);
}

/* the optimizer options both kinds of training take from the command line */
static mft_train_opts train_opts(const args_t *a)
{
    mft_train_opts o = mft_train_opts_default();
    o.lr = a->lr;
    o.weight_decay = a->wd;
    o.max_grad_norm = a->clip;
    o.warmup_steps = a->warmup;
    o.min_lr_ratio = 0.1f;
    return o;
}

static int cmd_train(int argc, char **argv)
{
    mft_train_opts o = mft_train_opts_default();
    args_t a = { .steps = 100, .lr = -1.0f, .batch = 4, .seq = 256, .wd = o.weight_decay, .clip = o.max_grad_norm,
                 .max_epochs = 100, .topk = 64, .kl_sample = 1.0f, .replay_ratio = -1.0f, .drift_n = 64, .keep = 1,
                 .print_every = 1 };
    parse(argc, argv, &a, train_usage);
    if (a.lr < 0.0f) { /* fine-tuning moves a trained model: a smaller step, by its width (cmd_train_data) */
        a.lr = o.lr;
        a.lr_default = a.data != NULL;
    }
    if (!a.until_set) a.until = a.epochs ? 0.0f : 0.5f; /* no budget given: until learned */
    if (a.replay_ratio < 0.0f) a.replay_ratio = a.replay ? 0.5f : 0.0f;
    if (a.policy && !strncmp(a.policy, "dft", 3)) a.dft = 1;
    if (a.data && a.steps_set)
        die_opt("--steps applies to --text training; with --data the budget is --until-learned / --max-epochs or "
                "--epochs");
    if (!a.data && (a.teacher > 0 || a.replay || a.lora || a.until_set || a.anchor > 0 || a.policy))
        die_opt("--policy, --until-learned, --anchor, --teacher, --replay and --lora apply to --data training");
    if (!a.data && (a.save_every || a.keep_set || a.resume || a.stop_after))
        die_opt("--save-every, --keep, --resume and --stop-after apply to --data training (a --text run is not "
                "checkpointed)");
    need(a.model, "-m MODEL", train_usage);
    need(a.out, "--out OUT.bin", train_usage);
    if (a.data && a.text) die_opt("give --data or --text, not both");
    check_out(a.out, a.out_type);
    if (a.data) return cmd_train_data(&a);
    need(a.text, "--text FILE (or --data D.jsonl)", train_usage);
    mft_error err;
    mft_config c = config_of(a.model);
    mft_tokenizer tok;
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    tok_copy tc = tok_plan(a.out, a.tok, a.model, c.vocab_size);
    tok_write(&tc);
    int n;
    int *ids = encode_file(&tok, a.text, &n);
    if (n < 2) die("'%s' is empty: nothing to train on", a.text);
    if (a.seq_set && a.seq > c.seq_len) die_opt("--seq %d is longer than the model's context (%d)", a.seq, c.seq_len);
    int T = a.seq < c.seq_len ? a.seq : c.seq_len, B = a.batch;
    if (T > n - 1) { /* the whole text fits in one window */
        T = n - 1;
        B = 1;
    }
    mft_model m;
    open_model(&m, a.model, B, T, MFT_TRAIN | (a.grad_ckpt ? MFT_CHECKPOINT : 0), a.threads);
    o = train_opts(&a);
    o.total_steps = a.steps;
    int *in = xmalloc(2 * (size_t)B * T * sizeof(int)), *tg = in + (size_t)B * T;
    uint64_t rng = a.seed_set && a.seed ? a.seed : 1337; /* xorshift needs a nonzero state */
    int tty = isatty(2);
    struct timespec t_start;
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    printf("training on %d tokens of %s: %d steps of %d x %d, lr %g, %s\n", n, a.text, a.steps, B, T, (double)o.lr,
           mft_simd_name());
    for (int s = 0; s < a.steps; s++) {
        for (int b = 0; b < B; b++) {
            int start = 0, span = n - 1 - T;
            if (span > 0) start = (int)(mft_rand(&rng) % (uint64_t)(span + 1));
            memcpy(in + (size_t)b * T, ids + start, (size_t)T * sizeof(int));
            memcpy(tg + (size_t)b * T, ids + start + 1, (size_t)T * sizeof(int));
        }
        mft_step_info info;
        if (mft_train_step(&m, &o, in, tg, NULL, B, T, &info, &err) < 0) die_err(&err);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t_start.tv_sec) + 1e-9 * (double)(now.tv_nsec - t_start.tv_nsec);
        char at[64];
        snprintf(at, sizeof at, "step %d/%d", s + 1, a.steps);
        if (tty || (s + 1) % a.print_every == 0 || s == 0 || s + 1 == a.steps)
            progress(tty, at, info.loss, "", info.lr, (double)(s + 1) * B * T / (el > 0 ? el : 1e-9),
                     (double)(s + 1) * B * T / (el > 0 ? el : 1e-9), el, el / (s + 1) * (a.steps - s - 1));
    }
    if (tty) fputc('\n', stderr);
    save_model(&m, a.out, a.out_type, &tok, a.model, a.tok);
    printf("saved %s\n", a.out);
    free(in);
    free(ids);
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

static void load_tokenizer(const args_t *a, mft_tokenizer *tok)
{
    int vocab = a->model ? config_of(a->model).vocab_size : a->vocab;
    if (!a->tok && !a->model) die_opt("give -t TOKENIZER (or -m MODEL to use the tokenizer beside it)");
    mft_tokenizer probe;
    mft_error err;
    if (!vocab && a->tok && !is_dir(a->tok)) { /* a tokenizer.bin does not know its own vocabulary size */
        if (mft_tokenizer_open(&probe, a->tok, 0, &err) == MFT_OK) mft_tokenizer_free(&probe);
        else if (strstr(err.msg, "give vocab_size"))
            die_opt("-t '%s' is a llama2.c tokenizer.bin, whose size comes from the model: give -m MODEL or --vocab N",
                    a->tok);
    }
    open_tokenizer(a->tok, a->model, vocab, tok);
}

/* a piece as a quoted string: control characters and bytes that are not whole UTF-8
   characters (a byte-level token may hold part of one) are escaped as \xNN */
/* A bad record is reported and the file read on, so that one run names every bad line (the
   first 20); then the command stops before doing anything with the file. */
enum { BAD_SHOWN = 20 };
static void bad_record(const mft_error *e, int *n_bad)
{
    if ((*n_bad)++ < BAD_SHOWN) fprintf(stderr, "maskft: %s\n", e->msg);
}

static void bad_records_end(const char *path, int n_bad)
{
    if (n_bad)
        die("%s: %d bad record%s%s: nothing was done", path, n_bad, n_bad == 1 ? "" : "s",
            n_bad > BAD_SHOWN ? " (the first 20 shown)" : "");
}

static void print_piece(const char *p, int n)
{
    putchar('"');
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int l = c >= 0x80 ? mft_utf8_len(p + i, n - i) : 0; /* > 1: a whole multi-byte character */
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\t' ? "\\t"
                         : c == '\r' ? "\\r" : NULL;
        if (l > 1) fwrite(p + i, 1, (size_t)l, stdout);
        else if (esc) fputs(esc, stdout);
        else if (c >= 0x80 || c < 0x20 || c == 0x7F) printf("\\x%02x", c);
        else putchar(c);
        if (l > 1) i += l - 1;
    }
    putchar('"');
}

static int cmd_tokenize(int argc, char **argv)
{
    args_t a = { 0 };
    parse(argc, argv, &a, tok_usage);
    mft_tokenizer tok;
    load_tokenizer(&a, &tok);
    size_t len;
    char *text = slurp(NULL, (size_t)1 << 30, &len);
    if (len > ((size_t)1 << 28)) die("input over 256 MiB");
    int n, *offs;
    int flags = (a.special ? MFT_SPECIAL : 0) | (a.bos ? MFT_BOS : 0) | (a.eos ? MFT_EOS : 0);
    int *ids = encode_new(&tok, text, (int)len, flags, &n, &offs);
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
    free(ids);
    free(offs);
    mft_free(text);
    mft_tokenizer_free(&tok);
    return 0;
}

static int cmd_detokenize(int argc, char **argv)
{
    args_t a = { 0 };
    parse(argc, argv, &a, tok_usage);
    mft_tokenizer tok;
    load_tokenizer(&a, &tok);
    size_t len;
    char *in = slurp(NULL, (size_t)1 << 30, &len);
    int n = 0, olen;
    int *ids = xmalloc((len / 2 + 2) * sizeof(int));
    for (char *p = in; *p;) {
        while (*p && strchr(" ,\n\r\t[]", *p)) p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) die("not a token id: '%.20s'", p);
        if (v < 0 || v >= tok.vocab_size) die("id %ld is outside the vocabulary (0..%d)", v, tok.vocab_size - 1);
        ids[n++] = (int)v;
        p = end;
    }
    char *out = decode_new(&tok, ids, n, a.special ? MFT_SPECIAL : 0, &olen);
    fwrite(out, 1, (size_t)olen, stdout);
    free(ids);
    free(out);
    mft_free(in);
    mft_tokenizer_free(&tok);
    return 0;
}

/* ---- mask / export ----------------------------------------------------------------------------- */

static const char *mask_usage =
    "usage: maskft mask   -m MODEL | -t TOKENIZER --data D.jsonl [--policy key|all|diff] [--template auto|NAME]\n"
    "                     [--eligible assistant|all|last] [--eot TOKEN | --no-eot] [--html FILE] [--threads N]\n"
    "       maskft export -m MODEL | -t TOKENIZER --data D.jsonl --out T.jsonl [the same mask options]\n"
    "  A tokenizer is enough (-t tokenizer.json, a GGUF file, a Hugging Face folder; a llama2.c\n"
    "  tokenizer.bin with --vocab N); with -m the examples are cut to the model's context, and the\n"
    "  +surprise / +known filters need it.\n"
    "  mask shows every example with its trained tokens marked ([brackets], or colour on a\n"
    "  terminal; the end token in bold) and counts trained tokens per example and overall; it\n"
    "  lists examples whose mask is empty. --html writes the same as a page. export writes\n"
    "  {\"input_ids\", \"labels\" (-100 where the weight is 0), \"attention_mask\"} for TRL / Axolotl.\n"
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
        if ((plus = strchr(base, '+'))) {
            *plus = 0;
            f = a->policy + (plus - base) + 1;
        } else if (!strncmp(base, "surprise:", 9) || !strncmp(base, "known:", 6)) {
            f = a->policy;
            strcpy(base, "all");
        }
        if (!strcmp(base, "all") || !strcmp(base, "dft")) o.policy = MFT_POLICY_ALL; /* dft: all, weighted in train */
        else if (!strcmp(base, "key")) o.policy = MFT_POLICY_KEY;
        else if (!strcmp(base, "diff")) o.policy = MFT_POLICY_DIFF;
        else die("unknown --policy '%s' (key, all, diff or dft, optionally +surprise:TAU or +known:TAU)", a->policy);
        if (f) {
            const char *colon = strchr(f, ':');
            if (!colon || (strncmp(f, "surprise:", 9) && strncmp(f, "known:", 6)))
                die("unknown policy filter in '%s' (surprise:TAU or known:TAU)", a->policy);
            *filter = !strncmp(f, "surprise:", 9) ? 1 : 2;
            *tau = (float)num("--policy TAU", colon + 1, 0, 1000);
        }
    }
    /* the names in the order of the usage text (mft_chat_family_name's order is another) */
    if (a->tmpl && strcmp(a->tmpl, "auto") && (o.template_family = mft_chat_family(a->tmpl)) < 0)
        die("unknown --template '%s' (auto, plain, llama3, qwen3, phi3, chatml, zephyr, llama2, mistral, "
            "mistral-v0.1, mistral-v3, gemma, gemma3)", a->tmpl);
    if (a->eligible) {
        if (!strcmp(a->eligible, "assistant")) o.eligible = MFT_ELIGIBLE_ASSISTANT;
        else if (!strcmp(a->eligible, "all")) o.eligible = MFT_ELIGIBLE_ALL;
        else if (!strcmp(a->eligible, "last")) o.eligible = MFT_ELIGIBLE_LAST;
        else die("unknown --eligible '%s' (assistant, all or last)", a->eligible);
    }
    if (a->no_eot) o.train_eot = 0;
    if (a->eot && (o.eot_id = mft_token_find(tok, a->eot, (int)strlen(a->eot))) < 0)
        die("--eot '%s' is not a token of this vocabulary", a->eot);
    return o;
}

static void html_text(FILE *f, const char *p, int n)
{
    for (int i = 0; i < n; i++) {
        if (p[i] == '<') fputs("&lt;", f);
        else if (p[i] == '>') fputs("&gt;", f);
        else if (p[i] == '&') fputs("&amp;", f);
        else if (p[i] == '\n') fputs("\u21b5\n", f);
        else fputc(p[i], f);
    }
}

/* a token as mask shows it: a control token as its name (llama2.c stores BOS as "\n<s>\n") */
static const char *shown_piece(const mft_tokenizer *tok, int prev, int id, int *pl)
{
    if (mft_token_type(tok, id) != MFT_TOKEN_CONTROL) return mft_token_bytes(tok, prev, id, pl);
    const char *p = mft_token_piece(tok, id, pl);
    while (*pl > 0 && (p[0] == '\n' || p[0] == ' ')) {
        p++;
        --*pl;
    }
    while (*pl > 0 && (p[*pl - 1] == '\n' || p[*pl - 1] == ' ')) --*pl;
    return p;
}

/* one example on stdout, its trained tokens marked, and in the page */
static void show_example(const mft_tokenizer *tok, const mft_example *ex, int color, FILE *html)
{
    int prev = -1, open = 0;
    for (int i = 0; i < ex->n; i++) {
        int pl, on = i > 0 && ex->w[i - 1] > 0, eot = ex->tag[i] == MFT_TAG_END;
        const char *p = shown_piece(tok, prev, ex->ids[i], &pl);
        if (color && on) fputs(eot ? "\033[1;42m" : "\033[42m", stdout);
        if (!color && on != open) putchar(on ? '[' : ']');
        if (!color) open = on;
        fwrite(p, 1, (size_t)pl, stdout);
        if (color && on) fputs("\033[0m", stdout);
        if (html) {
            fprintf(html, "<span class=%s>", eot ? "e" : on ? "t" : "g");
            html_text(html, p, pl);
            fputs("</span>", html);
        }
        prev = ex->ids[i];
    }
    if (open) putchar(']');
    putchar('\n');
    if (html) fputs("</pre>\n", html);
}

static int cmd_mask(int argc, char **argv, int export)
{
    args_t a = { 0 };
    parse(argc, argv, &a, mask_usage);
    if (!a.model && !a.tok)
        die("give -t TOKENIZER (or -m MODEL to use the tokenizer that comes with it)\n%s", mask_usage);
    need(a.data, "--data D.jsonl", mask_usage);
    if (export) need(a.out, "--out T.jsonl", mask_usage);
    /* a tokenizer is enough; the model gives the context examples are cut to, and the NLL of
       the +surprise / +known filters */
    mft_config c = { 0 };
    if (a.model) c = config_of(a.model);
    else c.vocab_size = a.vocab;
    mft_error err;
    mft_tokenizer tok;
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    int filter;
    float tau = 0;
    mft_data_opts o = data_opts(&a, &tok, &filter, &tau);
    o.max_len = c.seq_len;
    if (filter && !a.model) die("--policy %s scores tokens with the model: give -m MODEL", a.policy);
    mft_model m;
    if (filter) open_model(&m, a.model, 1, c.seq_len, MFT_FORWARD, 0); /* mask has always used the default threads */
    size_t size, at = 0;
    char *data = slurp(a.data, NO_LIMIT, &size);
    FILE *out = export ? fopen(a.out, "wb") : NULL;
    if (export && !out) die("cannot create '%s'", a.out);
    FILE *html = a.html ? fopen(a.html, "wb") : NULL;
    if (a.html && !html) die("cannot create '%s'", a.html);
    if (html)
        fputs("<!doctype html><meta charset=utf-8><title>maskft mask</title><style>body{font:14px/1.5 monospace;"
              "max-width:60em;margin:2em auto}pre{white-space:pre-wrap;border:1px solid #ccc;padding:.5em}"
              ".t{background:#bfb}.e{background:#8d8;font-weight:bold}.g{color:#555}</style>\n", html);
    int color = !export && isatty(1), line_no = 0, examples = 0, empty = 0, len;
    long trained = 0, tokens = 0;
    const char *rec;
    int n_bad = 0;
    while (mft_jsonl_next(data, size, &at, &line_no, &rec, &len)) {
        mft_example ex;
        if (mft_example_from_json(&tok, &o, rec, len, a.data, line_no, &ex, &err)) {
            bad_record(&err, &n_bad);
            continue;
        }
        if (filter && mft_mask_by_nll(&m, &ex, tau, filter == 1, &err)) die_err(&err);
        examples++;
        tokens += ex.n;
        trained += ex.n_trained;
        empty += !ex.n_trained;
        if (export) {
            fputs("{\"input_ids\": [", out);
            for (int i = 0; i < ex.n; i++) fprintf(out, i ? ", %d" : "%d", ex.ids[i]);
            fputs("], \"labels\": [", out);
            for (int i = 0; i < ex.n; i++)
                fprintf(out, i ? ", %d" : "%d", i > 0 && ex.w[i - 1] > 0 ? ex.ids[i] : -100);
            fputs("], \"attention_mask\": [", out); /* Axolotl's pre-tokenized format needs all three */
            for (int i = 0; i < ex.n; i++) fputs(i ? ", 1" : "1", out);
            fputs("]}\n", out);
        } else {
            printf("== example %d (line %d): %d tokens, %d trained%s\n", examples, line_no, ex.n, ex.n_trained,
                   ex.n_trained ? "" : "  <- EMPTY MASK: nothing here would be trained");
            if (html)
                fprintf(html, "<h3>example %d (line %d): %d tokens, %d trained%s</h3><pre>", examples, line_no, ex.n,
                        ex.n_trained, ex.n_trained ? "" : " (empty mask)");
            show_example(&tok, &ex, color, html);
        }
        mft_example_free(&ex);
    }
    if (n_bad && out) { /* no half-exported file */
        fclose(out);
        remove(a.out);
    }
    bad_records_end(a.data, n_bad);
    char summary[200];
    snprintf(summary, sizeof summary, "%d examples, %ld tokens, %ld trained (%.1f%%), %d with an empty mask\n",
             examples, tokens, trained, tokens ? 100.0 * trained / tokens : 0.0, empty);
    fputs(summary, export ? stderr : stdout);
    if (html) {
        fprintf(html, "<p>%s", summary);
        fclose(html);
    }
    if (out && fclose(out)) die("cannot write '%s'", a.out);
    mft_free(data);
    mft_tokenizer_free(&tok);
    if (filter) mft_model_free(&m);
    if (!trained) die("no example has a trained token: nothing to train on");
    return 0;
}

static const char *draft_usage =
    "usage: maskft draft -m MODEL [-t TOKENIZER] --data D.jsonl --out D2.jsonl [-n 64] [--temp 0] [--seed S]\n"
    "                    [--template auto|NAME] [--threads N]\n"
    "  The model writes its own answer for every assistant turn (or completion) of D.jsonl, given\n"
    "  what precedes it, into \"content\" and \"draft\": edit the key facts into the content (mark\n"
    "  them {{key}}...{{/key}}) and the answer stays in the model's own words. -n caps the new\n"
    "  tokens of each answer; --temp 0 (the default) is greedy.\n";

static int cmd_draft(int argc, char **argv)
{
    args_t a = { .n = 64 };
    parse(argc, argv, &a, draft_usage);
    need(a.model, "-m MODEL", draft_usage);
    need(a.data, "--data D.jsonl", draft_usage);
    need(a.out, "--out D2.jsonl", draft_usage);
    mft_error err;
    mft_model m;
    mft_tokenizer tok;
    open_model(&m, a.model, 1, 1, MFT_GENERATE, a.threads);
    open_tokenizer(a.tok, a.model, m.cfg.vocab_size, &tok);
    int filter, line_no = 0, records = 0, len;
    float tau;
    mft_data_opts o = data_opts(&a, &tok, &filter, &tau);
    FILE *out = fopen(a.out, "wb"); /* created before the input is read, as always */
    size_t size, at = 0;
    char *data = slurp(a.data, NO_LIMIT, &size);
    if (!out) die("cannot create '%s'", a.out);
    uint64_t rng = a.seed_set && a.seed ? a.seed : 42;
    const char *line;
    int n_bad = 0;
    while (mft_jsonl_next(data, size, &at, &line_no, &line, &len)) {
        char *rec;
        if (mft_draft_record(&m, &tok, &o, line, len, a.n, a.temp, &rng, a.data, line_no, &rec, &err)) {
            bad_record(&err, &n_bad);
            continue;
        }
        fputs(rec, out);
        fputc('\n', out);
        mft_free(rec);
        records++;
    }
    if (fclose(out)) die("cannot write '%s'", a.out);
    if (n_bad) remove(a.out);
    bad_records_end(a.data, n_bad);
    mft_free(data);
    fprintf(stderr, "%d records drafted into %s\n", records, a.out);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    return 0;
}

/* ---- train on JSONL: until learned, the teacher, replay, LoRA, checkpoints, resume ------------ */

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

/* every example of a data file, masked; the lines of empty masks reported */
typedef struct {
    mft_example *ex;
    int *line;        /* the file line of each example */
    char **context;   /* what the teacher reads first (mft_record_context), or NULL */
    int n, n_empty, n_full;
    long tokens, trained;
    uint64_t hash;
} dataset_t;

static void load_dataset(const char *path, mft_data_opts o, int filter, float tau, const mft_tokenizer *tok,
                         mft_model *m, int max_len, int contexts, dataset_t *d)
{
    int line_no = 0, ecap = 64, shown = 0, len, n_bad = 0;
    mft_error err;
    o.max_len = max_len;
    size_t size, at = 0;
    char *data = slurp(path, NO_LIMIT, &size);
    const char *line;
    memset(d, 0, sizeof *d);
    d->ex = xmalloc((size_t)ecap * sizeof *d->ex);
    d->line = xmalloc((size_t)ecap * sizeof(int));
    d->context = xmalloc((size_t)ecap * sizeof(char *));
    d->hash = MFT_HASH_SEED;
    while (mft_jsonl_next(data, size, &at, &line_no, &line, &len)) {
        if (d->n == ecap) {
            ecap *= 2;
            d->ex = realloc(d->ex, (size_t)ecap * sizeof *d->ex);
            d->line = realloc(d->line, (size_t)ecap * sizeof(int));
            d->context = realloc(d->context, (size_t)ecap * sizeof(char *));
            if (!d->ex || !d->line || !d->context) die("out of memory");
        }
        mft_example *ex = &d->ex[d->n];
        if (mft_example_from_json(tok, &o, line, len, path, line_no, ex, &err)) {
            bad_record(&err, &n_bad);
            continue;
        }
        if (n_bad) { /* only checking from here on */
            mft_example_free(ex);
            continue;
        }
        if (filter && mft_mask_by_nll(m, ex, tau, filter == 1, &err)) die_err(&err);
        d->context[d->n] = NULL;
        if (contexts && mft_record_context(line, len, &o, &d->context[d->n], NULL, &err)) die_err(&err);
        d->hash = mft_hash(d->hash, ex->ids, (size_t)ex->n * sizeof(int));
        d->hash = mft_hash(d->hash, ex->w, (size_t)ex->n * sizeof(float));
        if (d->context[d->n]) d->hash = mft_hash(d->hash, d->context[d->n], strlen(d->context[d->n]));
        d->tokens += ex->n;
        d->trained += ex->n_trained;
        d->n_full += ex->n >= max_len; /* as long as a row allows: probably cut to it */
        if (!ex->n_trained && shown++ < 10)
            fprintf(stderr, "maskft: %s:%d: empty mask: no token of this example is trained; left out\n", path,
                    line_no);
        d->n_empty += !ex->n_trained;
        d->line[d->n] = line_no;
        if (!ex->n_trained || ex->n < 2) {
            mft_example_free(ex);
            mft_free(d->context[d->n]);
        } else d->n++;
    }
    bad_records_end(path, n_bad);
    if (d->n_empty > 10)
        fprintf(stderr, "maskft: ... %d examples with an empty mask in all\n", d->n_empty);
    if (d->n_full)
        fprintf(stderr, "maskft: %s: %d examples fill a whole row (%d tokens) and were probably cut to it: what lies "
                "beyond is not trained (raise --seq?)\n", path, d->n_full, max_len - 1);
    mft_free(data);
}

/* the model's own texts (replay, drift): every token of every record, no end token (a sample
   cut at --len has none), the template of the training data */
static void load_texts(const char *path, mft_data_opts o, const mft_tokenizer *tok, mft_model *m, int max_len,
                       dataset_t *d)
{
    o.policy = MFT_POLICY_ALL;
    o.eligible = MFT_ELIGIBLE_ALL;
    o.train_eot = 0;
    load_dataset(path, o, 0, 0.0f, tok, m, max_len, 0, d);
}

static void dataset_free(dataset_t *d)
{
    for (int i = 0; i < d->n; i++) {
        mft_example_free(&d->ex[i]);
        mft_free(d->context[i]);
    }
    free(d->ex);
    free(d->line);
    free(d->context);
}

/* the options a run continues with unchanged: each kept in its checkpoint, so a resume names
   the one that differs. The budget (--epochs larger, --max-epochs, --stop-after), saving,
   logging and threads may change. */
enum { RUN_OPTS = 18 };
static const char *run_opt_name[RUN_OPTS] = { "--batch",   "--seq",         "--grad-accum", "--warmup",
                                              "--topk",    "--lora",        "--policy dft", "--lr",
                                              "--weight-decay", "--clip",   "--anchor",     "--until-learned",
                                              "--teacher", "--replay-ratio", "--replay-kl", "--lora-alpha",
                                              "--seed",    "--kl-sample" };

static void run_opts(const args_t *a, const mft_train_opts *o, int B, int T, uint64_t seed, double v[RUN_OPTS])
{
    double x[RUN_OPTS] = { B, T, a->accum, o->warmup_steps, a->topk, a->lora, a->dft, o->lr, o->weight_decay,
                           o->max_grad_norm, a->anchor, a->until, a->teacher, a->replay_ratio, a->replay_kl,
                           a->lora_alpha, (double)seed, a->kl_sample };
    memcpy(v, x, sizeof x);
}

/* the run state kept in a checkpoint beside the model's weights and AdamW moments; the
   until-learned flags of the examples, the replay counter and permutation follow it */
typedef struct {
    char magic[8];
    uint64_t seed, rng, data_hash, model_hash; /* rng: at the start of the epoch */
    int64_t step, total_steps, epoch, rows_done; /* rows_done: inside the epoch */
    double seconds;
    double opt[RUN_OPTS];
} run_state;

/* the user block of a checkpoint: the run state, the learned flags, the replay counter and
   the replay permutation, one after another */
static void run_pack(char *user, const run_state *rs, const unsigned char *learned, int n_facts, long replay_next,
                     const int *rperm, int n_replay)
{
    memcpy(user, rs, sizeof *rs);
    memcpy(user + sizeof *rs, learned, (size_t)n_facts);
    memcpy(user + sizeof *rs + n_facts, &replay_next, sizeof replay_next);
    memcpy(user + sizeof *rs + n_facts + sizeof replay_next, rperm, (size_t)n_replay * sizeof(int));
}

/* a checkpoint to resume from: of this run (data, starting model, options), and every field
   in range (a crafted file must not index outside an array or loop for ever) */
static void resume_check(const char *path, const run_state *got, const run_state *rs, long step, int max_epochs)
{
    if (memcmp(got->magic, rs->magic, 8)) die("'%s' was not written by this version of maskft train", path);
    if (got->data_hash != rs->data_hash)
        die("'%s' was written for other data (or another mask policy / template / replay file)", path);
    if (got->model_hash != rs->model_hash)
        die("'%s' was written by a run that started from another model: give its -m", path);
    for (int i = 0; i < RUN_OPTS; i++)
        if (memcmp(&got->opt[i], &rs->opt[i], sizeof(double)) || (i == RUN_OPTS - 1 && got->seed != rs->seed))
            die_opt("'%s' was written with %s %.7g; this run gives %s %.7g: give the same to resume (an option "
                    "that changes the run starts a new one)", path, run_opt_name[i], got->opt[i], run_opt_name[i],
                    rs->opt[i]);
    if (got->step != step || got->epoch < 0 || got->epoch > 1000000 || got->rows_done < 0 ||
        got->rows_done > 1000000000 || got->total_steps < 0 || !(got->seconds >= 0 && got->seconds < 1e12))
        die("'%s' is damaged: its run state is out of range (step %lld of %lld, epoch %lld, row %lld)", path,
            (long long)got->step, (long long)step, (long long)got->epoch, (long long)got->rows_done);
    long long in = got->epoch + (got->rows_done > 0); /* the epoch it is in, counted from 1 */
    if (in > max_epochs)
        die_opt("'%s' is at epoch %lld already: give --epochs (or --max-epochs) %lld or more to continue", path, in,
                in);
}

/* the checkpoints of a run: PREFIX.stepN.ckpt (PREFIX: --out without a trailing '/'), the
   newest --keep of them kept */
typedef struct {
    char *prefix, *last; /* last: the newest written (or resumed from), NULL before */
    long long last_step; /* its step, -1 before */
    int keep, written;   /* written: by this process */
} ckpts_t;

static char *ckpt_name(const ckpts_t *k, long long step)
{
    size_t n = strlen(k->prefix) + 32;
    char *p = xmalloc(n);
    snprintf(p, n, "%s.step%lld.ckpt", k->prefix, step);
    return p;
}

/* removes the checkpoints of this prefix below `step` beyond the newest keep - 1 of them (the
   one just written is the keep-th); those of a later step (another branch of the run) stay */
static void ckpt_prune(const ckpts_t *k, long long step)
{
    char *dir = strdup(k->prefix), *slash = dir ? strrchr(dir, '/') : NULL;
    const char *base = slash ? slash + 1 : k->prefix;
    if (!dir) die("out of memory");
    if (slash) *slash = 0;
    DIR *dp = opendir(slash ? (*dir ? dir : "/") : ".");
    long long *steps = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    size_t bl = strlen(base);
    while (dp && (e = readdir(dp))) {
        const char *nm = e->d_name, *q;
        char *end;
        if (strncmp(nm, base, bl) || strncmp(nm + bl, ".step", 5)) continue;
        q = nm + bl + 5;
        if (*q < '0' || *q > '9') continue;
        long long st = strtoll(q, &end, 10);
        if (strcmp(end, ".ckpt") || st >= step) continue;
        if (n == cap) steps = realloc(steps, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *steps);
        if (!steps) die("out of memory");
        steps[n++] = st;
    }
    if (dp) closedir(dp);
    for (int i = 0; i < n; i++) { /* all but the keep - 1 newest */
        int newer = 0;
        for (int j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer >= k->keep - 1) {
            char *p = ckpt_name(k, steps[i]);
            remove(p);
            free(p);
        }
    }
    free(steps);
    free(dir);
}

/* writes the checkpoint of `step`; on failure (a full disk) names the last good one */
static void ckpt_save(ckpts_t *k, mft_model *m, long long step, const void *user, size_t ub)
{
    mft_error err;
    char *p = ckpt_name(k, step);
    if (mft_checkpoint_save(m, p, user, ub, &err))
        die("%s; %s%s", err.msg, k->last ? "the last good checkpoint is " : "no checkpoint was written before it",
            k->last ? k->last : "");
    free(k->last);
    k->last = p;
    k->last_step = step;
    k->written++;
    ckpt_prune(k, step);
}

/* the soft targets of examples from .. to - 1 into st (the teacher reading each one's context,
   or nothing), on a base model opened for as long as it takes */
static void soft_build(mft_soft_table *st, const dataset_t *d, int from, int to, int use_context, int all_positions,
                       const args_t *a, const mft_tokenizer *tok, const char *path)
{
    mft_error err;
    int longest = 1, n_ctx, drop, *ctx;
    for (int i = from; i < to; i++) {
        if (mft_teacher_prefix(tok, &d->ex[i], use_context ? d->context[i] : NULL, &ctx, &n_ctx, &drop, &err))
            die_at(path, d->line[i], err.msg);
        mft_free(ctx);
        if (n_ctx + d->ex[i].n - drop > longest) longest = n_ctx + d->ex[i].n - drop;
    }
    mft_config c = config_of(a->model);
    if (longest > c.seq_len) die("%s: a context and its example are longer than the model's %d positions", path,
                                 c.seq_len);
    mft_model base;
    open_model(&base, a->model, 1, longest, MFT_FORWARD, a->threads);
    for (int i = from; i < to; i++)
        if (mft_soft_table_set(st, i, &base, tok, &d->ex[i], use_context ? d->context[i] : NULL, all_positions, &err))
            die_at(path, d->line[i], err.msg);
    mft_model_free(&base);
}

/* the mean KL(base || model) over every position of the drift texts (their top-k table) */
static double drift_kl(mft_model *m, const dataset_t *dd, const mft_soft_table *ds, int *sid, float *sp, float *tw,
                       int *in, int *tg, float *w, int *pos)
{
    mft_error err;
    mft_pack p;
    int *order = xmalloc((size_t)dd->n * sizeof(int));
    for (int i = 0; i < dd->n; i++) order[i] = i;
    if (mft_pack_examples(&p, dd->ex, dd->n, order, dd->n, 0, m->T, &err)) die_err(&err);
    double sum = 0.0, n = 0.0;
    for (long r0 = 0; r0 < p.n_rows; r0 += m->B) {
        mft_fill_info fi;
        double kl;
        if (mft_pack_fill(&p, dd->ex, r0, m->B, in, tg, w, pos, NULL, 0.0f, &fi, &err)) die_err(&err);
        if (mft_pack_fill_soft(&p, dd->ex, ds, r0, m->B, 0.0f, 1.0f, sid, sp, tw, &err)) die_err(&err);
        for (size_t i = 0; i < (size_t)fi.rows * m->T; i++) w[i] = 0.0f; /* a forward with targets, no loss */
        if (mft_forward_packed(m, in, tg, w, pos, fi.rows, m->T, NULL, &err) ||
            mft_set_soft_targets(m, sid, sp, ds->k, tw, &kl, &err))
            die_err(&err);
        sum += kl;
        n += (double)fi.tokens;
    }
    m->fwd_B = 0; /* no backward follows */
    mft_pack_free(&p);
    free(order);
    return n ? sum / n : 0.0;
}

/* the examples not yet learned, by line, for the message at the cap */
static void print_unlearned(const char *path, const dataset_t *d, const unsigned char *learned, const float *pmin,
                            int n)
{
    int shown = 0, left = 0;
    for (int i = 0; i < n; i++) left += !learned[i];
    fprintf(stderr, "maskft: %d of %d examples not learned at the cap (raise --max-epochs or --lr):", left, n);
    for (int i = 0; i < n && shown < 12; i++)
        if (!learned[i]) fprintf(stderr, "%s %s:%d (p %.3f)", shown++ ? "," : "", path, d->line[i], (double)pmin[i]);
    fprintf(stderr, "%s\n", left > shown ? ", ..." : "");
}

static int cmd_train_data(args_t *ap)
{
    args_t a = *ap;
    mft_error err;
    mft_tokenizer tok;
    if (!a.accum) a.accum = 1;
    int until = a.until > 0.0f;
    if (until && a.epochs) die_opt("--epochs sets a fixed budget: give --until-learned off with it, or --max-epochs");
    if (!until && !a.epochs) a.epochs = 1;
    int max_epochs = until ? a.max_epochs : a.epochs;
    if (a.teacher > 0.0f && a.anchor > 0.0f) die_opt("give --teacher or --anchor, not both (the anchor is the teacher "
                                                 "with an empty context)");
    if (a.replay_kl > 0.0f && !a.replay) die_opt("--replay-kl needs --replay P.jsonl (the text to stay close on)");
    if (a.kl_sample < 1.0f && !(a.anchor > 0.0f || a.teacher > 0.0f || a.replay_kl > 0.0f))
        die_opt("--kl-sample applies to the KL terms of --anchor, --teacher and --replay-kl");
    if (a.lora_out && !a.lora) die_opt("--lora-out needs --lora R");
    if (a.lora && (a.resume || a.save_every || a.stop_after || a.keep_set))
        die_opt("--lora runs are not checkpointed: --resume, --save-every, --keep and --stop-after need a full "
                "fine-tune");
    mft_train_opts o = train_opts(&a);
    mft_config c = config_of(a.model);
    if (a.seq_set && a.seq > c.seq_len) die_opt("--seq %d is longer than the model's context (%d)", a.seq, c.seq_len);
    int T = a.seq < c.seq_len ? a.seq : c.seq_len, B = a.batch;
    if (a.lr_default) o.lr = (float)(1e-4 * sqrt(64.0 / c.dim)); /* chosen on the bundled model: see the usage */
    if (a.lr_default && a.lora) o.lr *= 10.0f; /* adapters start at 0 and move few parameters: PEFT's usual 10x */
    mft_model m;
    int flags = MFT_TRAIN | (a.lora ? MFT_FROZEN : 0) | (a.grad_ckpt ? MFT_CHECKPOINT : 0);
    open_model(&m, a.model, B, T, flags, a.threads);
    m.dft = a.dft;
    m.sparse_logits = 1; /* the classifier only where the loss or a KL term reads it */
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    tok_copy tc = tok_plan(a.out, a.tok, a.model, c.vocab_size); /* before the first step, so the */
    tok_write(&tc);                                              /* checkpoints find it too */
    /* examples longer than a row are cut to it (their masks stay aligned); the +surprise /
       +known filters score tokens with this same base model before any step */
    int filter;
    float tau = 0;
    mft_data_opts dopt = data_opts(&a, &tok, &filter, &tau);
    dataset_t d, rp;
    load_dataset(a.data, dopt, filter, tau, &tok, &m, T + 1, a.teacher > 0.0f, &d);
    fprintf(stderr, "%s: %d examples, %ld tokens, %ld trained (%.1f%%), %d with an empty mask\n", a.data,
            d.n + d.n_empty, d.tokens, d.trained, d.tokens ? 100.0 * d.trained / d.tokens : 0.0, d.n_empty);
    if (!d.trained) die("no example has a trained token: nothing to train on (see `maskft mask -h`)");
    int n_facts = d.n, n_replay = 0;
    if (a.replay) { /* the model's own samples: every token trained, or (--replay-kl) only kept close */
        load_texts(a.replay, dopt, &tok, &m, T + 1, &rp);
        if (!rp.n) die("--replay '%s' has no example to replay", a.replay);
        if (a.replay_kl > 0.0f)
            for (int i = 0; i < rp.n; i++) memset(rp.ex[i].w, 0, (size_t)rp.ex[i].n * sizeof(float));
        n_replay = rp.n;
        d.ex = realloc(d.ex, (size_t)(n_facts + n_replay) * sizeof *d.ex);
        d.line = realloc(d.line, (size_t)(n_facts + n_replay) * sizeof(int));
        d.context = realloc(d.context, (size_t)(n_facts + n_replay) * sizeof(char *));
        if (!d.ex || !d.line || !d.context) die("out of memory");
        memcpy(d.ex + n_facts, rp.ex, (size_t)n_replay * sizeof *d.ex);
        memcpy(d.line + n_facts, rp.line, (size_t)n_replay * sizeof(int));
        memcpy(d.context + n_facts, rp.context, (size_t)n_replay * sizeof(char *));
        d.hash = mft_hash(d.hash, &rp.hash, sizeof rp.hash);
        free(rp.ex);
        free(rp.line);
        free(rp.context);
        d.n += n_replay;
        fprintf(stderr, "%s: %d replay examples, %ld tokens (%s), %.0f%% of each epoch's examples\n", a.replay,
                n_replay, rp.tokens, a.replay_kl > 0.0f ? "kept close to the base model" : "every token trained",
                100.0 * a.replay_ratio);
    }
    if ((double)max_epochs * d.n > 1e9 || (double)B * a.accum > 1e6)
        die("--epochs x examples or --batch x --grad-accum is too large");
    mft_lora lora;
    if (a.lora) {
        if (mft_lora_open(&lora, &c, a.lora, a.lora_alpha > 0 ? a.lora_alpha : (float)a.lora, B, T,
                          a.seed_set && a.seed ? a.seed : 1337, &err))
            die_err(&err);
        m.lora = &lora;
        fprintf(stderr, "LoRA rank %d, alpha %g on q, k, v, o, gate, up, down: %zu trained parameters "
                "(%.2f%% of %zu); the weights are frozen\n", a.lora, (double)lora.alpha, lora.n_params,
                100.0 * lora.n_params / m.n_params, m.n_params);
    }

    size_t lora_bytes = a.lora ? mft_lora_bytes(&c, a.lora, B, T) : 0;
    size_t run_bytes = mft_model_bytes(&c, B, T, flags) + lora_bytes;
    fprintf(stderr, "%s: %.1fM parameters; this run holds %.2f GiB (weights%s, activations for %d x %d%s)\n", a.model,
            m.n_params / 1e6, run_bytes / 1073741824.0,
            a.lora ? " frozen, adapters with gradients and moments" : ", gradients, AdamW moments", B, T,
            a.grad_ckpt ? ", checkpointed" : "");
#ifdef _SC_PHYS_PAGES
    { /* a run that will swap: say what checkpointing would hold instead */
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        double phys = pages > 0 && psz > 0 ? (double)pages * (double)psz : 0.0;
        if (!a.grad_ckpt && phys > 0.0 && (double)run_bytes > 0.8 * phys) {
            size_t ck = mft_model_bytes(&c, B, T, flags | MFT_CHECKPOINT) + lora_bytes;
            fprintf(stderr, "note: that is more than 80%% of this machine's %.1f GiB; --grad-checkpoint would hold "
                    "%.2f GiB\n", phys / 1073741824.0, ck / 1073741824.0);
        }
    }
#endif

    /* the soft targets, computed once: the base model is frozen and the texts do not change */
    mft_soft_table st = { 0 }, ds = { 0 };
    int kl_facts = a.teacher > 0.0f || a.anchor > 0.0f, kl_replay = a.replay_kl > 0.0f;
    int K = a.topk < c.vocab_size ? a.topk : c.vocab_size;
    if (kl_facts || kl_replay) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (mft_soft_table_init(&st, d.n, K, &err)) die_err(&err);
        if (kl_facts) soft_build(&st, &d, 0, n_facts, a.teacher > 0.0f, 0, &a, &tok, a.data);
        if (kl_replay) soft_build(&st, &d, n_facts, d.n, 0, 1, &a, &tok, a.replay);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fprintf(stderr, "%s: top-%d of the base model at %ld positions (%.1f MB), %.1f s\n",
                a.teacher > 0.0f ? "the teacher in context" : kl_facts ? "the anchor" : "replay KL", st.k, st.rows,
                st.rows * st.k * 8.0 / 1e6,
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    }

    /* --drift: the mean KL(base || model) on texts the run does not train, after every epoch
       (the base model's top-k there kept like the anchor's) */
    dataset_t dd = { 0 };
    if (a.drift) {
        load_texts(a.drift, dopt, &tok, &m, T + 1, &dd);
        if (dd.n > a.drift_n) { /* the first --drift-n texts */
            for (int i = a.drift_n; i < dd.n; i++) {
                mft_example_free(&dd.ex[i]);
                mft_free(dd.context[i]);
            }
            dd.n = a.drift_n;
        }
        if (mft_soft_table_init(&ds, dd.n, K, &err)) die_err(&err);
        soft_build(&ds, &dd, 0, dd.n, 0, 1, &a, &tok, a.drift);
    }

    /* The schedule: a fixed budget knows its step count up front (each epoch's rows packed by
       the same shuffles the run will make), so the learning rate follows the cosine to 10%;
       until learned, the end is not known, and the rate stays at its peak after the warmup. */
    uint64_t seed = a.seed_set && a.seed ? a.seed : 1337;
    size_t n_order = (size_t)n_facts + (size_t)(a.replay_ratio / (1.0 - a.replay_ratio) * n_facts + 2);
    int per_step = B * a.accum, *order = xmalloc(n_order * sizeof(int));
    int *rperm = xmalloc(((size_t)n_replay + 1) * sizeof(int));
    unsigned char *learned = xmalloc((size_t)n_facts + 1);
    float *pmin = xmalloc(((size_t)n_facts + 1) * sizeof(float));
    memset(learned, 0, (size_t)n_facts + 1);
    long total = 0, replay_next = 0;
    mft_pack pack;
    if (!until) { /* the run's own epoch orders, replayed on copies of its RNG and replay counter */
        uint64_t r = seed;
        long rn = 0;
        for (int e = 0; e < a.epochs; e++) {
            int n = mft_epoch_order(order, learned, n_facts, n_replay, a.replay_ratio, &r, &rn, rperm);
            if (mft_pack_examples(&pack, d.ex, d.n, order, n, 0, T, &err)) die_err(&err);
            total += (pack.n_rows + per_step - 1) / per_step;
            mft_pack_free(&pack);
        }
        o.total_steps = (int)total;
    }
    run_state rs = { .seed = seed, .rng = seed, .data_hash = d.hash,
                     .model_hash = mft_hash(MFT_HASH_SEED, m.params, m.n_params * sizeof(float)),
                     .total_steps = total };
    memcpy(rs.magic, "MFTRUN04", 8);
    run_opts(&a, &o, B, T, seed, rs.opt);
    /* the user block: the run state, the learned flags, the replay counter and permutation as
       they were at the start of the epoch (the epoch's order is drawn again from them) */
    size_t ub = sizeof rs + (size_t)n_facts + sizeof replay_next + (size_t)n_replay * sizeof(int);
    char *user = xmalloc(ub);
    int *rperm0 = xmalloc(((size_t)n_replay + 1) * sizeof(int));
    ckpts_t ck = { strdup(a.out), NULL, -1, a.keep, 0 };
    if (!ck.prefix) die("out of memory");
    if (ck.prefix[0] && ck.prefix[strlen(ck.prefix) - 1] == '/') ck.prefix[strlen(ck.prefix) - 1] = 0; /* OUT/ */
    if (a.resume) {
        if (mft_checkpoint_load(&m, a.resume, user, ub, &err)) die_err(&err);
        run_state got;
        memcpy(&got, user, sizeof got);
        resume_check(a.resume, &got, &rs, m.step, max_epochs);
        rs.step = got.step, rs.epoch = got.epoch, rs.rows_done = got.rows_done, rs.rng = got.rng;
        rs.seconds = got.seconds; /* total_steps: this run's budget, which may be longer */
        memcpy(learned, user + sizeof rs, (size_t)n_facts);
        memcpy(&replay_next, user + sizeof rs + n_facts, sizeof replay_next);
        memcpy(rperm, user + sizeof rs + n_facts + sizeof replay_next, (size_t)n_replay * sizeof(int));
        int bad = replay_next < 0;
        for (int i = 0; i < n_facts; i++) bad |= learned[i] > 1;
        unsigned char *seen = xmalloc((size_t)n_replay + 1);
        memset(seen, 0, (size_t)n_replay + 1);
        for (int i = 0; i < n_replay && replay_next % n_replay; i++) { /* mid-cycle: a permutation */
            bad |= rperm[i] < 0 || rperm[i] >= n_replay || seen[rperm[i] < 0 || rperm[i] >= n_replay ? 0 : rperm[i]];
            if (rperm[i] >= 0 && rperm[i] < n_replay) seen[rperm[i]] = 1;
        }
        free(seen);
        if (bad) die("'%s' is damaged: its learned flags or replay state are out of range", a.resume);
        if (a.stop_after && a.stop_after <= rs.step)
            die_opt("--stop-after %d: '%s' is at step %lld already (give a later step)", a.stop_after, a.resume,
                    (long long)rs.step);
        ck.last = strdup(a.resume);
        ck.last_step = rs.step;
        fprintf(stderr, "resuming %s at step %lld (epoch %lld)\n", a.resume, (long long)rs.step,
                (long long)rs.epoch + 1);
    }
    FILE *log = a.log ? fopen(a.log, rs.step ? "ab" : "wb") : NULL;
    if (a.log && !log) die("cannot create '%s'", a.log);
    if (log && !rs.step) { /* the first record: what made this run */
        fputs("{\"run\": {\"argv\": [", log);
        for (int i = 0; i < a.argc; i++) {
            char *q = json_str(a.argv[i], (int)strlen(a.argv[i]));
            fprintf(log, "%s%s", i ? ", " : "", q);
            free(q);
        }
        fprintf(log, "], \"version\": \"%s\", \"simd\": \"%s\", \"threads\": %d, \"model_hash\": \"%016llx\", "
                "\"data_hash\": \"%016llx\", \"parameters\": %zu, \"trained_parameters\": %zu, \"bytes\": %zu, "
                "\"lr\": %g}}\n", mft_version(), mft_simd_name(), a.threads, (unsigned long long)rs.model_hash,
                (unsigned long long)d.hash, m.n_params, a.lora ? lora.n_params : m.n_params, run_bytes, (double)o.lr);
        fflush(log);
    }
    int tty = isatty(2);
    if (until)
        fprintf(stderr, "training %s until every example is learned (each trained token p >= %g), at most %d epochs; "
                "%d x %d rows of %d tokens per step, lr %g%s, %s\n", a.model, (double)a.until, max_epochs, B, a.accum,
                T,
                (double)o.lr, a.lr_default ? " (default for this width)" : "", mft_simd_name());
    else
        fprintf(stderr, "training %s: %ld steps (%d epoch%s, %d x %d rows of %d tokens per step), lr %g%s, %s\n",
                a.model, total, a.epochs, a.epochs == 1 ? "" : "s", B, a.accum, T, (double)o.lr,
                a.lr_default ? " (default for this width)" : "", mft_simd_name());
    size_t N = (size_t)B * T;
    int *in = xmalloc(3 * N * sizeof(int)), *tg = in + N, *pos = in + 2 * N, *sid = NULL;
    float *w = xmalloc(2 * N * sizeof(float)), *tw = w + N, *sp = NULL;
    if (st.k || ds.k) {
        sid = xmalloc(N * (size_t)K * sizeof(int));
        sp = xmalloc(N * (size_t)K * sizeof(float));
    }
    signal(SIGINT, on_sigint);
    struct timespec t_start;
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    double sec0 = rs.seconds;
    long trained_seen = 0, tokens_seen = 0, first_step = (long)rs.step;
    int all_learned = 0, epoch_steps = 0;
    double epoch_kl = 0.0;
    for (; rs.epoch < max_epochs; rs.epoch++) {
        uint64_t r = rs.rng;
        long rn_save = replay_next;
        memcpy(rperm0, rperm, (size_t)n_replay * sizeof(int));
        int n = mft_epoch_order(order, learned, n_facts, n_replay, a.replay_ratio, &r, &replay_next, rperm);
        if (!n) {
            all_learned = 1;
            break;
        }
        if (mft_pack_examples(&pack, d.ex, d.n, order, n, 0, T, &err)) die_err(&err);
        if (rs.rows_done > pack.n_rows)
            die("'%s' is damaged: row %lld of an epoch of %d rows", a.resume, (long long)rs.rows_done, pack.n_rows);
        for (; rs.rows_done < pack.n_rows;) {
            long trained = 0, toks = 0, r0 = rs.rows_done, r1 = r0 + per_step;
            /* the KL terms: W x the mean KL over their positions, relative to the mean CE over the
               step's trained ones (as mft_pack_anchor_scale) */
            float sf = 0.0f, sr = 0.0f;
            float wfa = a.teacher > 0.0f ? a.teacher : a.anchor;
            if (st.k) mft_pack_soft_scale(&pack, d.ex, &st, r0, r1, wfa, a.replay_kl, &sf, &sr);
            for (int mb = 0; mb < a.accum; mb++) {
                mft_fill_info fi;
                if (mft_pack_fill(&pack, d.ex, rs.rows_done, B, in, tg, w, pos, NULL, 0.0f, &fi, &err)) die_err(&err);
                if (!fi.rows) break;
                if (st.k && mft_pack_fill_soft(&pack, d.ex, &st, rs.rows_done, fi.rows, sf, sr, sid, sp, tw, &err))
                    die_err(&err);
                if (st.k && a.kl_sample < 1.0f) { /* its own stream per micro-batch: a resume draws the same */
                    uint64_t kr = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(rs.step * a.accum + mb + 1));
                    mft_thin_weights(tw, (size_t)fi.rows * (size_t)T, a.kl_sample, &kr);
                }
                rs.rows_done += fi.rows;
                trained += fi.trained;
                toks += fi.tokens;
                if (mft_forward_packed(&m, in, tg, w, pos, fi.rows, T, NULL, &err) ||
                    (st.k && mft_set_soft_targets(&m, sid, sp, st.k, tw, NULL, &err)) || mft_backward(&m, &err)) {
                    fprintf(stderr, "\nmaskft: step %lld: %s\n", (long long)rs.step + 1, err.msg);
                    die("stopped; the weights were not updated with it");
                }
            }
            mft_step_info info;
            mft_status sst = mft_step(&m, &o, &info, &err);
            if (sst < 0) {
                fprintf(stderr, "\nmaskft: %s\n", err.msg);
                die("stopped; %s%s", ck.last ? "the last checkpoint is " : "no checkpoint was written",
                    ck.last ? ck.last : "");
            }
            rs.step++;
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double el = (double)(now.tv_sec - t_start.tv_sec) + 1e-9 * (double)(now.tv_nsec - t_start.tv_nsec);
            double per = el > 0 ? el : 1e-9;
            rs.seconds = sec0 + el;
            trained_seen += trained;
            tokens_seen += toks;
            char extra[48] = "", at[96];
            float wkl = a.teacher > 0.0f ? a.teacher : a.anchor > 0.0f ? a.anchor : a.replay_kl;
            double akl = st.k && wkl > 0 ? info.anchor / wkl : 0.0; /* the mean KL over its positions */
            epoch_kl += akl;
            epoch_steps++;
            if (st.k) snprintf(extra, sizeof extra, "  %s KL %.4f", a.teacher > 0.0f ? "teacher" : "anchor", akl);
            if (until)
                snprintf(at, sizeof at, "step %lld  epoch %lld (max %d)", (long long)rs.step, (long long)rs.epoch + 1,
                         max_epochs);
            else snprintf(at, sizeof at, "step %lld/%ld  epoch %lld/%d", (long long)rs.step, total,
                          (long long)rs.epoch + 1, max_epochs);
            if (tty || rs.step % a.print_every == 0 || rs.step == first_step + 1 || (!until && rs.step == total))
                progress(tty, at, info.loss, extra, info.lr, tokens_seen / per, trained_seen / per, rs.seconds,
                         until ? -1.0 : el / (double)(rs.step - first_step) * (double)(total - rs.step));
            if (log) {
                fprintf(log, "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.6f, \"anchor_kl\": %.6f, \"lr\": %.6g, "
                        "\"grad_norm\": %.6f, \"trained_tokens\": %ld, \"tokens\": %ld, \"seconds\": %.3f}\n",
                        (long long)rs.step, (long long)rs.epoch + 1, (double)info.loss, akl, (double)info.lr,
                        (double)info.grad_norm, trained, toks, rs.seconds);
                fflush(log);
            }
            int stop = a.stop_after && rs.step >= a.stop_after && (until || rs.step < total);
            int save = (a.save_every && rs.step % a.save_every == 0) || g_interrupted || stop;
            if (a.lora && g_interrupted) { /* the adapters are not checkpointed: say so, save nothing */
                fprintf(stderr, "%sinterrupted after step %lld: a LoRA run is not checkpointed; nothing saved\n",
                        tty ? "\n" : "", (long long)rs.step);
                exit(130);
            }
            if (save) {
                run_pack(user, &rs, learned, n_facts, rn_save, rperm0, n_replay);
                ckpt_save(&ck, &m, rs.step, user, ub);
            }
            if (g_interrupted || stop) {
                fprintf(stderr, "%s%s after step %lld: %s written; continue with --resume %s\n", tty ? "\n" : "",
                        stop ? "stopped" : "interrupted", (long long)rs.step, ck.last, ck.last);
                exit(stop ? 0 : 130);
            }
        }
        mft_pack_free(&pack);
        rs.rows_done = 0;
        rs.rng = r;
        /* after each epoch: score what is still to learn (until learned, the learned leave the
           next epochs; with a fixed budget it is reported only), and the drift */
        int which_n = 0, *which = order, left = 0;
        for (int i = 0; i < n_facts; i++)
            if (!learned[i]) which[which_n++] = i;
        float *pm = xmalloc((size_t)which_n * sizeof(float) + 1), lo = 1.0f;
        if (mft_score_trained(&m, d.ex, which, which_n, pm, &err)) die_err(&err);
        for (int i = 0; i < which_n; i++) {
            pmin[which[i]] = pm[i];
            if (until && pm[i] >= a.until) learned[which[i]] = 1;
            left += pm[i] < (until ? a.until : 0.5f);
            if (pm[i] < lo) lo = pm[i];
        }
        free(pm);
        char dr[64] = "", kl[48] = "";
        double drift = dd.n ? drift_kl(&m, &dd, &ds, sid, sp, tw, in, tg, w, pos) : 0.0;
        if (dd.n) snprintf(dr, sizeof dr, ", drift KL %.4f on %d texts", drift, dd.n);
        if (st.k && epoch_steps) snprintf(kl, sizeof kl, ", mean %s KL %.4f", a.teacher > 0.0f ? "teacher" : "anchor",
                                          epoch_kl / epoch_steps);
        fprintf(stderr, "%sepoch %lld: %d of %d learned (p >= %g), lowest trained-token p %.3f%s%s, step %lld\n",
                tty ? "\n" : "", (long long)rs.epoch + 1, n_facts - left, n_facts, until ? (double)a.until : 0.5,
                (double)lo, kl, dr, (long long)rs.step);
        if (log) {
            fprintf(log, "{\"epoch_end\": %lld, \"step\": %lld, \"learned\": %d, \"examples\": %d, "
                    "\"p_min\": %.6f, \"drift_kl\": %.6f}\n", (long long)rs.epoch + 1, (long long)rs.step,
                    n_facts - left, n_facts, (double)lo, drift);
            fflush(log);
        }
        epoch_kl = 0.0;
        epoch_steps = 0;
        if (a.keep_set && !a.save_every && !a.lora) { /* --keep alone: a checkpoint after each epoch */
            run_state next = rs;
            next.epoch++;
            run_pack(user, &next, learned, n_facts, replay_next, rperm, n_replay);
            ckpt_save(&ck, &m, rs.step, user, ub);
        }
        if (until && !left) {
            all_learned = 1;
            rs.epoch++;
            break;
        }
    }
    if (until && !all_learned) print_unlearned(a.data, &d, learned, pmin, n_facts);
    /* the optimizer checkpoint (3x the model) only when checkpoints were asked for */
    if (!a.lora && (a.save_every || a.keep_set)) {
        run_pack(user, &rs, learned, n_facts, replay_next, rperm, n_replay);
        if (ck.last_step != rs.step) ckpt_save(&ck, &m, rs.step, user, ub); /* unless it was just written */
    } else if (a.lora) {
        if (a.lora_out) {
            mkdir(a.lora_out, 0755); /* may exist already */
            if (mft_lora_save(&lora, &c, a.lora_out, a.model, &err)) die_err(&err);
            fprintf(stderr, "saved the adapters to %s (adapter_model.safetensors, adapter_config.json)\n", a.lora_out);
        }
        m.lora = NULL;
        if (mft_lora_merge(&m, &lora, &err)) die_err(&err);
        mft_lora_free(&lora);
    }
    save_model(&m, a.out, a.out_type, &tok, a.model, a.tok);
    if (a.lora) fprintf(stderr, "saved %s (the adapters merged) after %lld steps, %.1f s\n", a.out, (long long)rs.step,
                        rs.seconds);
    else if (ck.written && ck.last_step == rs.step)
        fprintf(stderr, "saved %s (and %s) after %lld steps, %.1f s\n", a.out, ck.last, (long long)rs.step,
                rs.seconds);
    else fprintf(stderr, "saved %s after %lld steps, %.1f s\n", a.out, (long long)rs.step, rs.seconds);
    if (log) fclose(log);
    free(in);
    free(w);
    free(sid);
    free(sp);
    free(order);
    free(rperm);
    free(learned);
    free(pmin);
    free(user);
    free(rperm0);
    free(ck.prefix);
    free(ck.last);
    mft_soft_table_free(&st);
    mft_soft_table_free(&ds);
    if (a.drift) dataset_free(&dd);
    dataset_free(&d);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    return 0;
}

/* ---- eval --mc / --facts / --compare, and probe ------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* calls fn on every non-blank line of a JSONL file (parsed), with file:line for messages */
static void each_jsonl(const char *path, void (*fn)(void *ctx, mft_json *j, int root, const char *where, int line),
                       void *ctx)
{
    size_t size, at = 0;
    char *data = slurp(path, NO_LIMIT, &size);
    const char *rec;
    int line = 0, len;
    while (mft_jsonl_next(data, size, &at, &line, &rec, &len)) {
        mft_error err;
        mft_json *j = mft_json_parse_at(rec, len, path, line, &err);
        if (!j) die_err(&err);
        fn(ctx, j, mft_json_root(j), path, line);
        mft_json_free(j);
    }
    mft_free(data);
}

/* dies with "where:line:column: what", the column of node (of the record when it is -1) */
static void die_node(mft_json *j, int node, const char *where, int line, const char *fmt, ...) DIE_AT_ATTR;
static void die_node(mft_json *j, int node, const char *where, int line, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int l, c;
    mft_json_pos(j, node >= 0 ? node : mft_json_root(j), &l, &c);
    die("%s:%d:%d: %s", where, line + l - 1, c, what);
}

static const char *need_str(mft_json *j, int obj, const char *key, int *len, const char *where, int line)
{
    int v = mft_json_get(j, obj, key), l, c;
    const char *s = mft_json_str(j, v, len);
    mft_json_pos(j, v >= 0 ? v : obj, &l, &c);
    if (!s)
        die("%s:%d:%d: \"%s\" %s", where, line + l - 1, c, key, v >= 0 ? "must be a string" : "(a string) is missing");
    return s;
}

typedef struct {
    mft_model *m, *base; /* base only with --compare */
    const mft_tokenizer *tok;
    mft_data_opts o;
    int end, agree_n, gen_len, gen_max;
    float *lbuf;
    int *g1, *g2;
    /* results */
    int mc_items, mc_acc, mc_accn, mc_base_acc, mc_flips;
    int facts, facts_hit, list; /* list: print each fact (text output) */
    double facts_lp;
    int probes, gens, agree, end_t, end_b, loop_t, loop_b;
    double *kl;
    long n_kl, cap_kl, same_top1;
} eval_t;

/* an example of {"prompt": P, "completion": C} as training would build it; *np = the context */
static mft_example example_pc(eval_t *e, const char *p, int pl, const char *c, int cl, const char *where, int line,
                              int *np)
{
    char *rec = record_pc(p, pl, c, cl);
    mft_example ex;
    mft_error err;
    if (mft_example_from_json(e->tok, &e->o, rec, -1, where, line, &ex, &err)) die_err(&err);
    free(rec);
    int k = 0;
    while (k < ex.n && ex.tag[k] == MFT_TAG_CONTEXT) k++;
    *np = k;
    return ex;
}

/* the greedy continuation of ids[0..n), up to max_new tokens or the end token, into out (room
   for the context); returns its length, *ended if the end token came. It stops where the
   context ends, without the token mft_generate could still write from the last position */
static int greedy(mft_model *m, const int *ids, int n, int max_new, int end, int *out, int *ended)
{
    mft_error err;
    mft_gen_opts go = mft_gen_opts_default();
    int k;
    go.max_new = max_new < m->cfg.seq_len - n ? max_new : m->cfg.seq_len - n;
    go.stop[0] = end;
    if (mft_generate(m, ids, n, &go, NULL, out, m->cfg.seq_len, &k, ended, &err)) die_err(&err);
    return k;
}

static void mc_item(void *ctx, mft_json *j, int root, const char *where, int line)
{
    eval_t *e = ctx;
    int ql, arr = mft_json_get(j, root, "choices"), nc = mft_json_len(j, arr);
    const char *q = need_str(j, root, "query", &ql, where, line);
    double gold;
    int ok = nc >= 2 && mft_json_num(j, mft_json_get(j, root, "gold"), &gold);
    if (!ok || gold < 0 || gold >= nc || gold != (int)gold)
        die_node(j, nc >= 2 ? mft_json_get(j, root, "gold") : arr, where, line,
                 "an item needs \"choices\" (2 or more strings) and \"gold\" (an index into them)");
    const char **ch = xmalloc((size_t)nc * sizeof *ch);
    int *cl = xmalloc(2 * (size_t)nc * sizeof(int)), *chars = cl + nc;
    double *ll = xmalloc(2 * (size_t)nc * sizeof(double));
    for (int c = 0; c < nc; c++)
        if (!(ch[c] = mft_json_str(j, mft_json_at(j, arr, c), &cl[c])))
            die_node(j, mft_json_at(j, arr, c), where, line, "choice %d is not a string", c);
    mft_error err;
    int best[2] = { 0, 0 }, bestn = 0;
    double bl[2] = { -INFINITY, -INFINITY }, bn = -INFINITY;
    for (int mi = 0; mi < (e->base ? 2 : 1); mi++) {
        double *l = ll + (size_t)mi * nc;
        if (mft_score_choices(mi ? e->base : e->m, e->tok, q, ql, ch, cl, nc, l, chars, &err))
            die_at(where, line, err.msg);
        for (int c = 0; c < nc; c++) {
            if (l[c] > bl[mi]) {
                bl[mi] = l[c];
                best[mi] = c;
            }
            double norm = l[c] / (chars[c] ? chars[c] : 1);
            if (!mi && norm > bn) {
                bn = norm;
                bestn = c;
            }
        }
    }
    free(ch);
    free(cl);
    free(ll);
    e->mc_items++;
    e->mc_acc += best[0] == (int)gold;
    e->mc_accn += bestn == (int)gold;
    e->mc_base_acc += e->base && best[1] == (int)gold;
    e->mc_flips += e->base && best[0] != best[1];
}

static void fact_item(void *ctx, mft_json *j, int root, const char *where, int line)
{
    eval_t *e = ctx;
    int pl, al, hit;
    const char *p = need_str(j, root, "prompt", &pl, where, line);
    const char *ans = need_str(j, root, "answer", &al, where, line);
    double lp;
    mft_error err;
    char said[1024];
    int sl = 0;
    if (mft_score_fact(e->m, e->tok, &e->o, p, pl, ans, al, where, line, 48, &lp, &hit, said, sizeof said, &sl,
                       &err))
        die("%s", err.msg);
    if (e->list) { /* one line per fact: what was asked, expected and said, on one line */
        for (char *c = said; *c; c++)
            if (*c == '\n') *c = ' ';
        if (!e->facts) printf("facts:\n");
        printf("  %s %.*s -> \"%.*s\" (expected \"%.*s\", answer log-prob %.3f)\n", hit ? "[recalled]" : "[missed]  ",
               pl, p, sl < 80 ? sl : 80, said, al, ans, lp);
    }
    e->facts_lp += lp;
    e->facts_hit += hit;
    e->facts++;
}

static void probe_item(void *ctx, mft_json *j, int root, const char *where, int line)
{
    eval_t *e = ctx;
    int pl, cl, np;
    const char *p = need_str(j, root, "prompt", &pl, where, line);
    const char *c = need_str(j, root, "completion", &cl, where, line);
    mft_example ex = example_pc(e, p, pl, c, cl, where, line, &np);
    mft_error err;
    size_t V = (size_t)e->m->cfg.vocab_size;
    int n = ex.n - 1; /* positions predicting a next token */
    if (n >= 1) {
        if (mft_forward(e->base, ex.ids, NULL, NULL, 1, n, NULL, &err)) die_err(&err);
        memcpy(e->lbuf, e->base->a.logits, (size_t)n * V * sizeof(float));
        if (mft_forward(e->m, ex.ids, NULL, NULL, 1, n, NULL, &err)) die_err(&err);
        for (int t = 0; t < n; t++) {
            const float *pb = e->lbuf + (size_t)t * V, *pt = e->m->a.logits + (size_t)t * V;
            if (e->n_kl == e->cap_kl) {
                e->cap_kl = 2 * e->cap_kl + 1024;
                if (!(e->kl = realloc(e->kl, (size_t)e->cap_kl * sizeof(double)))) die("out of memory");
            }
            e->kl[e->n_kl++] = mft_kl_logits(pb, pt, (int)V);
            int ab = 0, at = 0;
            for (size_t i = 1; i < V; i++) {
                if (pb[i] > pb[ab]) ab = (int)i;
                if (pt[i] > pt[at]) at = (int)i;
            }
            e->same_top1 += ab == at;
        }
    }
    if (e->gens < e->gen_max && np > 0) {
        int eb, et, same = 1;
        int nb = greedy(e->base, ex.ids, np, e->gen_len, e->end, e->g1, &eb);
        int nt = greedy(e->m, ex.ids, np, e->gen_len, e->end, e->g2, &et);
        for (int i = 0; i < e->agree_n && same; i++) same = (i < nb) == (i < nt) && (i >= nb || e->g1[i] == e->g2[i]);
        e->agree += same;
        e->end_b += eb;
        e->end_t += et;
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

/* --text: the summed NLL of every token after BOS, in windows of the context */
static double text_nll(mft_model *m, const mft_tokenizer *tok, const char *path, int *body, int *windows)
{
    mft_error err;
    int n, win = m->cfg.seq_len;
    int *ids = encode_file(tok, path, &n);
    double sum = 0.0;
    *body = n - 1;
    if (*body <= 0) die("'%s' is empty: nothing to score", path);
    int *buf = xmalloc((size_t)win * 2 * sizeof(int));
    for (int s0 = 0; s0 < *body; s0 += win) {
        int len = *body - s0 < win ? *body - s0 : win;
        mft_fwd_info info;
        /* a window of len positions: inputs BOS and text tokens s0..s0+len-2, targets text
           tokens s0..s0+len-1, so each text token is predicted exactly once overall */
        buf[0] = tok->bos_id;
        memcpy(buf + 1, ids + 1 + s0, (size_t)(len - 1) * sizeof(int));
        memcpy(buf + win, ids + 1 + s0, (size_t)len * sizeof(int));
        if (mft_forward(m, buf, buf + win, NULL, 1, len, &info, &err)) die_err(&err);
        sum += info.loss_sum;
        ++*windows;
    }
    free(buf);
    free(ids);
    return sum;
}

#define PCT(x, n) ((n) ? 100.0 * (double)(x) / (double)(n) : 0.0)

static void print_json(const args_t *a, const eval_t *e, double nll, int body, double klm, double klp99)
{
    char *js = json_str(a->model, (int)strlen(a->model));
    printf("{\"model\": %s", js);
    free(js);
    if (a->text)
        printf(", \"text\": {\"tokens\": %d, \"nll\": %.6f, \"ppl\": %.4f}", body, nll / body, exp(nll / body));
    if (a->mc) {
        printf(", \"mc\": {\"items\": %d, \"acc\": %.4f, \"acc_norm\": %.4f", e->mc_items,
               PCT(e->mc_acc, e->mc_items) / 100, PCT(e->mc_accn, e->mc_items) / 100);
        if (a->base)
            printf(", \"base_acc\": %.4f, \"flipped\": %.4f", PCT(e->mc_base_acc, e->mc_items) / 100,
                   PCT(e->mc_flips, e->mc_items) / 100);
        printf("}");
    }
    if (a->facts)
        printf(", \"facts\": {\"n\": %d, \"recalled\": %d, \"recall\": %.4f, \"answer_logprob\": %.4f}", e->facts,
               e->facts_hit, PCT(e->facts_hit, e->facts) / 100, e->facts ? e->facts_lp / e->facts : 0.0);
    if (a->base) {
        js = json_str(a->base, (int)strlen(a->base));
        printf(", \"compare\": {\"base\": %s", js);
        free(js);
        printf(", \"probes\": %d, \"positions\": %ld, \"kl_mean\": %.6f, \"kl_p99\": %.6f, \"same_top1\": %.4f, "
               "\"generations\": %d, \"agree_n\": %d, \"agreement\": %.4f, \"termination_base\": %.4f, "
               "\"termination\": %.4f, \"tail_repetition_base\": %.4f, \"tail_repetition\": %.4f}", e->probes,
               e->n_kl, klm, klp99, PCT(e->same_top1, e->n_kl) / 100, e->gens, e->agree_n,
               PCT(e->agree, e->gens) / 100, PCT(e->end_b, e->gens) / 100, PCT(e->end_t, e->gens) / 100,
               PCT(e->loop_b, e->gens) / 100, PCT(e->loop_t, e->gens) / 100);
    }
    printf("}\n");
}

static void print_text(const args_t *a, const eval_t *e, double nll, int body, int windows, int ctx, double klm,
                       double klp99)
{
    printf("model: %s\n", a->model);
    if (a->text) {
        printf("text: %s\n", a->text);
        printf("  tokens scored: %d (after BOS), in %d window%s of up to %d tokens, each starting with BOS\n", body,
               windows, windows == 1 ? "" : "s", ctx);
        printf("  mean NLL: %.6f nats/token\n", nll / body);
        printf("  perplexity: %.4f\n", exp(nll / body));
    }
    if (a->mc) {
        printf("multiple choice: %s, %d items\n", a->mc, e->mc_items);
        printf("  acc       %6.1f%%\n  acc_norm  %6.1f%%\n", PCT(e->mc_acc, e->mc_items),
               PCT(e->mc_accn, e->mc_items));
        if (a->base)
            printf("  base acc  %6.1f%%\n  flipped   %6.1f%% of answers\n", PCT(e->mc_base_acc, e->mc_items),
                   PCT(e->mc_flips, e->mc_items));
    }
    if (a->facts)
        printf("facts: %s\n  recall %d/%d (%.1f%%), answer mean log-prob %.3f\n", a->facts, e->facts_hit, e->facts,
               PCT(e->facts_hit, e->facts), e->facts ? e->facts_lp / e->facts : 0.0);
    if (a->base) {
        printf("against %s on %s: %d probes, %ld positions\n", a->base, a->probes, e->probes, e->n_kl);
        printf("  KL(base || model)  mean %.4f  p99 %.4f nats\n", klm, klp99);
        printf("  same top-1         %.1f%% of positions\n", PCT(e->same_top1, e->n_kl));
        printf("  greedy, %d generations of up to %d tokens:\n", e->gens, e->gen_len);
        printf("    agreement (first %d tokens identical)  %.1f%%\n", e->agree_n, PCT(e->agree, e->gens));
        printf("    termination (end token came)     base %.1f%%  model %.1f%%\n", PCT(e->end_b, e->gens),
               PCT(e->end_t, e->gens));
        printf("    tail repetition (ends in a loop) base %.1f%%  model %.1f%%\n", PCT(e->loop_b, e->gens),
               PCT(e->loop_t, e->gens));
    }
}

#undef PCT

static int cmd_eval(int argc, char **argv)
{
    args_t a = { .n = 16, .len = 128, .steps = 200 };
    parse(argc, argv, &a, eval_usage);
    need(a.model, "-m MODEL", eval_usage);
    if (!a.text && !a.mc && !a.facts && !a.base)
        die_opt("nothing to evaluate: give --text, --mc, --facts or --compare (see -h)");
    if (a.base && !a.probes) die_opt("--compare BASE needs --probes P.jsonl (make one with `maskft probe`)");
    mft_config c = config_of(a.model);
    mft_model m, base;
    mft_tokenizer tok;
    open_model(&m, a.model, 1, c.seq_len, MFT_FORWARD | MFT_GENERATE, a.threads);
    open_tokenizer(a.tok, a.model, c.vocab_size, &tok);
    if (a.base) {
        mft_config bc = config_of(a.base);
        if (memcmp(&bc, &c, sizeof c))
            die("'%s' has another shape than the model: --compare needs the model it was tuned from", a.base);
        open_model(&base, a.base, 1, c.seq_len, MFT_FORWARD | MFT_GENERATE, a.threads);
    }
    eval_t e;
    memset(&e, 0, sizeof e);
    e.m = &m;
    e.base = a.base ? &base : NULL;
    e.tok = &tok;
    int filter;
    float tau;
    e.o = data_opts(&a, &tok, &filter, &tau);
    e.o.policy = MFT_POLICY_ALL;
    e.o.max_len = c.seq_len;
    e.end = mft_end_token(&tok, &e.o);
    if (a.n < 1) die("-n (the tokens greedy generations must agree on) must be at least 1");
    e.agree_n = a.n;
    e.gen_len = a.len < c.seq_len - 1 ? a.len : c.seq_len - 1;
    e.gen_max = a.steps;
    e.lbuf = xmalloc((size_t)c.seq_len * c.vocab_size * sizeof(float));
    e.g1 = xmalloc(2 * (size_t)c.seq_len * sizeof(int));
    e.g2 = e.g1 + c.seq_len;
    double nll = 0.0, klm = 0.0, klp99 = 0.0;
    int body = 0, windows = 0;
    if (a.text) nll = text_nll(&m, &tok, a.text, &body, &windows);
    if (a.mc) each_jsonl(a.mc, mc_item, &e);
    if (a.mc && !e.mc_items) die("--mc '%s' holds no item: nothing to score", a.mc);
    e.list = !a.json;
    if (a.facts) each_jsonl(a.facts, fact_item, &e);
    if (a.facts && !e.facts) die("--facts '%s' holds no fact: nothing to score", a.facts);
    if (a.base) each_jsonl(a.probes, probe_item, &e);
    if (e.n_kl) {
        for (long i = 0; i < e.n_kl; i++) klm += e.kl[i];
        klm /= (double)e.n_kl;
        qsort(e.kl, (size_t)e.n_kl, sizeof(double), cmp_double);
        klp99 = e.kl[(long)floor(0.99 * (double)(e.n_kl - 1))];
    }
    if (a.json) print_json(&a, &e, nll, body, klm, klp99);
    else print_text(&a, &e, nll, body, windows, c.seq_len, klm, klp99);
    free(e.lbuf);
    free(e.g1);
    free(e.kl);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    if (a.base) mft_model_free(&base);
    return 0;
}

static const char *probe_usage =
    "usage: maskft probe -m BASE [-t TOKENIZER] --n 1000 --out P.jsonl [--seed S] [--len 64] [--temp 1]\n"
    "                    [--threads N]\n"
    "  A retention set drawn from the base model itself: N texts sampled at --temp from the start\n"
    "  of a sequence, up to --len tokens or the end token, each split into {\"prompt\": the first\n"
    "  quarter (at least 4 tokens), \"completion\": the rest}. For `maskft eval --compare`.\n";

/* the split of a sample's text: the prompt's decoded bytes are the start of the whole text and
   both halves are whole characters; the prompt has at least a quarter of the tokens (4 or
   more) and leaves 4 to the completion. NULL if there is none */
static char *probe_split(const mft_tokenizer *tok, const int *g, int n, const char *text, int cl, int *pl)
{
    for (int k = n / 4 < 4 ? 4 : n / 4; k <= n - 4; k++) {
        char *ptxt = decode_new(tok, g, k, 0, pl);
        if (*pl <= cl && !memcmp(text, ptxt, (size_t)*pl) && mft_utf8_valid(ptxt, *pl) &&
            mft_utf8_valid(text + *pl, cl - *pl))
            return ptxt;
        free(ptxt);
    }
    return NULL;
}

static int cmd_probe(int argc, char **argv)
{
    args_t a = { .n = 1000, .len = 64, .temp = 1.0f };
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--n")) argv[i] = "-n"; /* --n N and -n N */
    parse(argc, argv, &a, probe_usage);
    need(a.model, "-m BASE", probe_usage);
    need(a.out, "--out P.jsonl", probe_usage);
    if (a.len < 8) die("--len must be at least 8 tokens: a probe is split into a prompt and a completion");
    mft_error err;
    mft_model m;
    mft_tokenizer tok;
    open_model(&m, a.model, 1, 1, MFT_GENERATE, a.threads);
    open_tokenizer(a.tok, a.model, m.cfg.vocab_size, &tok);
    mft_data_opts o = data_opts(&a, &tok, &(int){ 0 }, &(float){ 0 });
    /* the start of a sequence: BOS, or (as lm-evaluation-harness does without one) the end token */
    int end = mft_end_token(&tok, &o), start = tok.bos_id >= 0 ? tok.bos_id : end, ended, written = 0;
    if (start < 0) die("the tokenizer has neither BOS nor an end token to start a sample from");
    uint64_t rng = a.seed_set && a.seed ? a.seed : 1337;
    FILE *out = fopen(a.out, "wb");
    if (!out) die("cannot create '%s'", a.out);
    int *g = xmalloc(((size_t)a.len + 1) * sizeof(int));
    long draws = 0, max_draws = 20L * a.n + 100;
    mft_gen_opts go = mft_gen_opts_default();
    go.max_new = a.len < m.cfg.seq_len - 1 ? a.len : m.cfg.seq_len - 1; /* as greedy() */
    go.temperature = a.temp;
    go.stop[0] = end;
    while (written < a.n) {
        if (draws++ >= max_draws)
            die("gave up after 20 samples per probe: the model rarely writes 8 tokens before its end token at this "
                "--temp (or --len is beyond the context)");
        int n, pl, cl;
        if (mft_generate(&m, &start, 1, &go, &rng, g, a.len + 1, &n, &ended, &err)) die_err(&err);
        if (n < 8) continue; /* too short to split; draw again */
        /* the completion's text: the whole decoded, minus the prompt's bytes */
        char *text = decode_new(&tok, g, n, 0, &cl), *ptxt = probe_split(&tok, g, n, text, cl, &pl);
        if (ptxt) {
            char *rec = record_pc(ptxt, pl, text + pl, cl - pl);
            fprintf(out, "%s\n", rec);
            free(rec);
            written++;
        }
        free(text);
        free(ptxt);
    }
    if (fclose(out)) die("cannot write '%s'", a.out);
    fprintf(stderr, "%d probes from %s written to %s\n", written, a.model, a.out);
    free(g);
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
        "  chat       talk with a model, a line a turn (its chat template applied, multi-turn)\n"
        "  train      masked fine-tuning on a JSONL data file (or plain training on a text file)\n"
        "  eval       perplexity, multiple choice, fact recall, forgetting against a base model\n"
        "  probe      a retention set sampled from a base model, for eval --compare\n"
        "  tokenize   text -> ids (and byte offsets), for any tokenizer file\n"
        "  detokenize ids -> text\n"
        "  draft      the model writes its own answers into a JSONL data file\n"
        "  mask       show which tokens of a JSONL data file would be trained\n"
        "  export     write input_ids + labels (-100 = not trained) + attention_mask for TRL / Axolotl\n"
        "  convert    write a model as a Hugging Face folder or a llama2.c checkpoint\n"
        "  version    library version and SIMD path\n";
    if (argc < 2) {
        fputs(usage, stderr);
        return 1;
    }
    if (!strcmp(argv[1], "generate")) return cmd_generate(argc, argv);
    if (!strcmp(argv[1], "chat")) return cmd_chat(argc, argv);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc, argv);
    if (!strcmp(argv[1], "train")) return cmd_train(argc, argv);
    if (!strcmp(argv[1], "tokenize")) return cmd_tokenize(argc, argv);
    if (!strcmp(argv[1], "detokenize")) return cmd_detokenize(argc, argv);
    if (!strcmp(argv[1], "mask")) return cmd_mask(argc, argv, 0);
    if (!strcmp(argv[1], "draft")) return cmd_draft(argc, argv);
    if (!strcmp(argv[1], "export")) return cmd_mask(argc, argv, 1);
    if (!strcmp(argv[1], "probe")) return cmd_probe(argc, argv);
    if (!strcmp(argv[1], "convert")) return cmd_convert(argc, argv);
    if (!strcmp(argv[1], "version")) {
        printf("maskft %s (%s)\n", mft_version(), mft_simd_name());
        return 0;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, stdout);
        return 0;
    }
    die("unknown command '%s'\n%s", argv[1], usage);
}
