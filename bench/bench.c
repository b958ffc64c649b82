/* bench.c - training throughput of maskft on randomly initialised LLaMA models of the shapes of
   stories15M and stories110M (llama2.c's TinyStories models). One step = forward + backward +
   AdamW over B x T tokens, every position weighted 1, gradient clipping on.

   FLOPs per token = 6 * P_mm + 6 * L * T * D, where P_mm = L * (2 D^2 + 2 D KVD + 3 D F) + V D
   counts the weights used in matrix products (2 flops per weight forward, 4 backward) and
   6 L T D is causal attention (QK^T and AV: forward 2 T D per layer and token at half the T x T
   matrix, backward twice that). The same formula is in bench/bench_torch.py.

   usage: build/bench [--shape 15M|110M] [--threads N] [--steps S]   (make bench runs both)
          build/bench --tokenizer FILE [--vocab N] [--mb M]: encode throughput on M MB of text
          (tests/data/story.txt and the multilingual reference texts, repeated) */
#include "../maskft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END); *n = ftell(f); fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*n + 1);
    if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) { free(b); b = NULL; }
    fclose(f);
    return b;
}

static int bench_tokenizer(const char *path, int vocab, double mb)
{
    mft_tokenizer tok;
    mft_error err;
    if (mft_tokenizer_open(&tok, path, vocab, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    long n1, n2;
    char *a = slurp("tests/data/story.txt", &n1), *b = slurp("tests/data/spm_tok512_model.jsonl", &n2);
    if (!a || !b) { fprintf(stderr, "run from the repository root\n"); return 1; }
    size_t want = (size_t)(mb * 1048576), len = 0;
    char *text = malloc(want + n1 + n2 + 1);
    while (len < want) { memcpy(text + len, a, (size_t)n1); len += (size_t)n1; memcpy(text + len, b, (size_t)n2); len += (size_t)n2; }
    int cap = (int)len + 16, n;
    int *ids = malloc((size_t)cap * sizeof(int));
    double t0 = now();
    if (mft_encode(&tok, text, (int)len, 0, ids, cap, &n, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    double dt = now() - t0;
    const char *kind = tok.kind == MFT_TOK_SPM ? "sentencepiece-bpe" : "byte-level-bpe";
    /* the file name with its folder: three of them are called tokenizer.json */
    const char *name = path + strlen(path);
    for (int slashes = 0; name > path; name--) if (name[-1] == '/' && ++slashes == 2) break;
    printf("tokenizer %-34s %-17s vocab=%-6d MB=%.1f tokens=%d MB/s=%.2f\n", name, kind, tok.vocab_size, len / 1048576.0, n, len / 1048576.0 / dt);
    free(ids); free(text); free(a); free(b);
    mft_tokenizer_free(&tok);
    return 0;
}

int main(int argc, char **argv)
{
    const char *shape = "15M", *tokpath = NULL;
    int threads = 0, steps = 3, vocab = 0;
    double mb = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--tokenizer")) tokpath = argv[i + 1];
        else if (!strcmp(argv[i], "--vocab")) vocab = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mb")) mb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--shape")) shape = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 1; }
    }
    if (tokpath) return bench_tokenizer(tokpath, vocab, mb);
    mft_config c;
    memset(&c, 0, sizeof c);
    int B, T = 256;
    if (!strcmp(shape, "15M")) {
        c.dim = 288; c.hidden_dim = 768; c.n_layers = 6; c.n_heads = 6; c.n_kv_heads = 6; B = 4;
    } else if (!strcmp(shape, "110M")) {
        c.dim = 768; c.hidden_dim = 2048; c.n_layers = 12; c.n_heads = 12; c.n_kv_heads = 12; B = 2;
    } else {
        fprintf(stderr, "--shape is 15M or 110M\n");
        return 1;
    }
    c.vocab_size = 32000; c.seq_len = 256; c.shared_classifier = 1; c.norm_eps = 1e-5f; c.rope_theta = 10000.0f;

    mft_error err;
    mft_model m;
    size_t bytes = mft_model_bytes(&c, B, T, MFT_TRAIN);
    void *mem = malloc(bytes);
    if (!mem || mft_model_init(&m, &c, B, T, MFT_TRAIN, mem, bytes, &err)) { fprintf(stderr, "init: %s\n", mem ? err.msg : "malloc"); return 1; }
    m.n_threads = threads;
    mft_model_init_random(&m, 1);
    int *in = malloc((size_t)B * T * sizeof(int)), *tg = malloc((size_t)B * T * sizeof(int));
    uint64_t r = 7;
    for (int i = 0; i < B * T; i++) {
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        in[i] = (int)(r % 32000);
        tg[i] = (int)((r >> 20) % 32000);
    }
    mft_train_opts o = mft_train_opts_default();
    o.lr = 1e-4f;
    mft_step_info info;
    if (mft_train_step(&m, &o, in, tg, NULL, B, T, &info, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 1; } /* warm-up */
    double t0 = now();
    for (int s = 0; s < steps; s++)
        if (mft_train_step(&m, &o, in, tg, NULL, B, T, &info, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    double dt = (now() - t0) / steps;
    double D = c.dim, F = c.hidden_dim, L = c.n_layers, V = c.vocab_size, KVD = c.n_kv_heads * (D / c.n_heads);
    double pmm = L * (2 * D * D + 2 * D * KVD + 3 * D * F) + V * D;
    double flops_tok = 6 * pmm + 6 * L * T * D;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int nt = threads;
#ifdef _OPENMP
    if (!nt) { extern int omp_get_max_threads(void); nt = omp_get_max_threads(); }
#else
    nt = 1;
#endif
    printf("maskft shape=%s B=%d T=%d threads=%d tok/s=%.0f ms/step=%.1f GFLOP/s=%.1f peak_rss_MiB=%.0f arena_MiB=%.0f simd=%s params=%.1fM\n",
           shape, B, T, nt, B * T / dt, dt * 1000, flops_tok * B * T / dt / 1e9, ru.ru_maxrss / 1024.0, bytes / 1048576.0,
           mft_simd_name(), m.n_params / 1e6);
    mft_model_free(&m);
    free(mem);
    free(in);
    free(tg);
    return 0;
}
