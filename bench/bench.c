/* bench.c - training throughput of maskft on randomly initialised LLaMA models of the shapes of
   stories15M, stories110M (llama2.c's TinyStories models) and SmolLM2-135M. One step = forward
   + backward + AdamW over B x T tokens, gradient clipping on; every position weighted 1 (the
   full loss), or a share of them (key-token training: the classifier runs on those rows only).

   FLOPs per token = 6 * P_mm + 6 * L * T * D, where P_mm = L * (2 D QD + 2 D KVD + 3 D F) + V D
   counts the weights used in matrix products (2 flops per weight forward, 4 backward) and
   6 L T D is causal attention (QK^T and AV: forward 2 T D per layer and token at half the T x T
   matrix, backward twice that). The same formula is in bench/bench_torch.py; a weighted step
   is credited with the full step's FLOPs (its tokens/s is what a user sees).

   usage: build/bench --shape 15M|110M|135M [--threads N] [--steps S] [--weighted F] [--B B] [--T T]
          --checkpoint: gradient checkpointing (MFT_CHECKPOINT, the tool's --grad-checkpoint)
          build/bench --memory: mft_model_bytes of SmolLM2-135M, Qwen2.5-0.5B, TinyLlama, Llama-3.2-1B
          --anchor-k K: plus the tool's --anchor (soft targets, top K) on the untrained positions
          --kl-sample P: with --anchor-k, the tool's --kl-sample (KL on a random share P of them)
          build/bench --peak [--threads N]: the FMA peak of this machine (GFLOP/s), measured
          build/bench --products --shape S [--threads N]: GFLOP/s of the step's matrix products
          build/bench --tokenizer FILE [--vocab N] [--mb M]: encode throughput on M MB of text
          (tests/data/story.txt and the multilingual reference texts, repeated)
   The program includes maskft.c itself, to time the packed product (mft__gemm) alone. */
#include "../maskft.c"

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

/* 12 independent FMA chains per thread, as wide as the machine's vectors (GCC's vector
   extension: 16 floats with AVX-512, else 8; a 64-byte vector on an AVX2-only CPU is split
   into halves that go through memory, and measured a quarter of the real peak) */
#if defined(__AVX512F__)
typedef float bench_v16 __attribute__((vector_size(64)));
#else
typedef float bench_v16 __attribute__((vector_size(32)));
#endif
static double bench_peak(int threads)
{
    long iters = 200000000; /* 0.4 s or more: a team that starts late must not halve the figure */
    double t0 = now();
    float sink = 0.0f;
#pragma omp parallel num_threads(threads > 0 ? threads : 1) reduction(+ : sink)
    {
        bench_v16 b = (bench_v16){ 0 } + 0.999f, c = (bench_v16){ 0 } + 0.001f;
        bench_v16 a0 = b, a1 = a0 + 1, a2 = a0 + 2, a3 = a0 + 3, a4 = a0 + 4, a5 = a0 + 5;
        bench_v16 a6 = a0 + 6, a7 = a0 + 7, a8 = a0 + 8, a9 = a0 + 9, a10 = a0 + 10, a11 = a0 + 11;
        for (long k = 0; k < iters; k++) {
            a0 = a0 * b + c; a1 = a1 * b + c; a2 = a2 * b + c; a3 = a3 * b + c; a4 = a4 * b + c; a5 = a5 * b + c;
            a6 = a6 * b + c; a7 = a7 * b + c; a8 = a8 * b + c; a9 = a9 * b + c; a10 = a10 * b + c; a11 = a11 * b + c;
        }
        bench_v16 s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
        sink += s[0];
    }
    double dt = now() - t0;
    if (sink == 12345.0f) printf(" ");
    return (double)iters * 12 * (sizeof(bench_v16) / sizeof(float)) * 2 * (threads > 0 ? threads : 1) / dt / 1e9;
}

static int shape_config(const char *shape, mft_config *c, int *B)
{
    memset(c, 0, sizeof *c);
    if (!strcmp(shape, "15M")) {
        c->dim = 288; c->hidden_dim = 768; c->n_layers = 6; c->n_heads = 6; c->n_kv_heads = 6; c->vocab_size = 32000; *B = 8;
    } else if (!strcmp(shape, "110M")) {
        c->dim = 768; c->hidden_dim = 2048; c->n_layers = 12; c->n_heads = 12; c->n_kv_heads = 12; c->vocab_size = 32000; *B = 4;
    } else if (!strcmp(shape, "135M")) { /* SmolLM2-135M */
        c->dim = 576; c->hidden_dim = 1536; c->n_layers = 30; c->n_heads = 9; c->n_kv_heads = 3; c->vocab_size = 49152; *B = 4;
    } else
        return 1;
    c->seq_len = 256; c->shared_classifier = 1; c->norm_eps = 1e-5f; c->rope_theta = 10000.0f;
    return 0;
}

/* the step's products at its shapes: (rows M, inner K, columns N) of each forward product, and
   the same weights' two backward products; GFLOP/s of each kind over all of them */
static int bench_products(const char *shape, int threads)
{
    mft_config c;
    int B, T = 256;
    if (shape_config(shape, &c, &B)) return 1;
    int N = B * T, D = c.dim, F = c.hidden_dim, hs = D / c.n_heads, KVD = c.n_kv_heads * hs;
    int w[][2] = { { D, D }, { D, KVD }, { D, KVD }, { D, D }, { D, F }, { D, F }, { F, D }, { D, c.vocab_size } };
    size_t big = (size_t)c.vocab_size > (size_t)N ? (size_t)c.vocab_size : (size_t)N;
    float *ws = malloc(MFT__GEMM_SLOTS * mft__gemm_slot(big) * sizeof(float));
    float *x = malloc((size_t)N * F * sizeof(float)), *y = malloc((size_t)N * c.vocab_size * sizeof(float));
    float *wt = malloc((size_t)c.vocab_size * D * sizeof(float)), *g = malloc((size_t)c.vocab_size * D * sizeof(float));
    if (!ws || !x || !y || !wt || !g) { fprintf(stderr, "out of memory\n"); return 1; }
    for (size_t i = 0; i < (size_t)N * F; i++) x[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)c.vocab_size * D; i++) wt[i] = g[i] = (float)(i % 7) * 0.01f;
    for (size_t i = 0; i < (size_t)N * c.vocab_size; i++) y[i] = (float)(i % 5) * 0.01f;
    int nt = threads > 0 ? threads : mft__nthreads(&(mft_model){ .n_threads = 0 });
    double t[3] = { 0 }, fl[3] = { 0 };
    for (int rep = 0; rep < 2; rep++)
        for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
            int C = w[k][0], OC = w[k][1];
            double f = 2.0 * N * C * OC * (k < 7 ? c.n_layers : 1), t0 = now();
            mft__matmul_fwd(y, x, wt, N, C, OC, nt, ws);
            double t1 = now();
            mft__matmul_bwd_dx(x, y, wt, N, C, OC, nt, ws);
            double t2 = now();
            mft__matmul_bwd_dw(g, y, x, N, C, OC, nt, ws);
            double t3 = now(), scale = k < 7 ? c.n_layers : 1;
            if (rep) {
                t[0] += (t1 - t0) * scale; t[1] += (t2 - t1) * scale; t[2] += (t3 - t2) * scale;
                fl[0] += f; fl[1] += f; fl[2] += f;
            }
        }
    /* attention at the step's shape: forward and backward of one layer, times L */
    int NH = c.n_heads, KV = c.n_kv_heads, QD = NH * hs;
    float *aq = malloc((size_t)N * QD * sizeof(float)), *ak = malloc((size_t)N * KVD * sizeof(float));
    float *av = malloc((size_t)N * KVD * sizeof(float)), *ao = malloc((size_t)N * QD * sizeof(float));
    float *adq = calloc((size_t)N * QD, sizeof(float)), *adk = calloc((size_t)N * KVD, sizeof(float));
    float *adv = calloc((size_t)N * KVD, sizeof(float)), *lse = malloc((size_t)B * NH * T * sizeof(float));
    float *aws = malloc(mft__attn_ws(B, T, NH, hs) * sizeof(float));
    if (!aq || !ak || !av || !ao || !adq || !adk || !adv || !lse || !aws) { fprintf(stderr, "out of memory\n"); return 1; }
    for (size_t i = 0; i < (size_t)N * QD; i++) aq[i] = (float)(i % 11) * 0.02f;
    for (size_t i = 0; i < (size_t)N * KVD; i++) ak[i] = (float)(i % 7) * 0.03f, av[i] = (float)(i % 5) * 0.05f;
    double ta[2] = { 0 };
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        mft__attention_fwd(ao, lse, aws, aq, ak, av, NULL, B, T, NH, KV, hs, nt);
        double t1 = now();
        mft__attention_bwd(adq, adk, adv, aws, ao, ao, lse, aq, ak, av, NULL, B, T, NH, KV, hs, nt);
        double t2 = now();
        if (rep) ta[0] += (t1 - t0) * c.n_layers / 2, ta[1] += (t2 - t1) * c.n_layers / 2;
    }
    /* causal QK^T and PV: 2 x 2 x (T^2 / 2) x hs per head and row forward; backward recomputes
       QK^T and does four more, 5 of those */
    double fa = 2.0 * B * NH * (double)T * T * hs * c.n_layers;
    printf("products shape=%s threads=%d fwd_GFLOP/s=%.1f dx_GFLOP/s=%.1f dw_GFLOP/s=%.1f full_loss_step_products_s=%.3f "
           "attention_fwd_s=%.3f attention_bwd_s=%.3f attention_fwd_GFLOP/s=%.1f attention_bwd_GFLOP/s=%.1f\n",
           shape, nt, fl[0] / t[0] / 1e9, fl[1] / t[1] / 1e9, fl[2] / t[2] / 1e9, t[0] + t[1] + t[2], ta[0], ta[1],
           fa / ta[0] / 1e9, 2.5 * fa / ta[1] / 1e9);
    free(ws); free(x); free(y); free(wt); free(g);
    free(aq); free(ak); free(av); free(ao); free(adq); free(adk); free(adv); free(lse); free(aws);
    return 0;
}

/* --memory: mft_model_bytes for the models users bring (the README's memory table), GiB */
static int bench_memory(void)
{
    static const struct {
        const char *name;
        int D, F, L, H, KV, V, tied, bias;
    } ms[] = { { "SmolLM2-135M", 576, 1536, 30, 9, 3, 49152, 1, 0 },
               { "Qwen2.5-0.5B", 896, 4864, 24, 14, 2, 151936, 1, 1 },
               { "TinyLlama-1.1B", 2048, 5632, 22, 32, 4, 32000, 0, 0 },
               { "Llama-3.2-1B", 2048, 8192, 16, 32, 8, 128256, 1, 0 } };
    const double G = 1073741824.0;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        mft_config c;
        memset(&c, 0, sizeof c);
        c.dim = ms[i].D; c.hidden_dim = ms[i].F; c.n_layers = ms[i].L; c.n_heads = ms[i].H; c.n_kv_heads = ms[i].KV;
        c.vocab_size = ms[i].V; c.shared_classifier = ms[i].tied; c.qkv_bias = ms[i].bias;
        c.arch = ms[i].bias ? MFT_ARCH_QWEN2 : MFT_ARCH_LLAMA;
        c.seq_len = 4096; c.norm_eps = 1e-5f; c.rope_theta = 1e4f;
        printf("memory model=%s params=%.2fB train_B1_T512_GiB=%.1f checkpointed_GiB=%.1f lora8_GiB=%.1f "
               "forward_GiB=%.1f checkpointed_B4_T2048_GiB=%.1f train_B4_T2048_GiB=%.1f\n",
               ms[i].name, mft_param_count(&c) / 1e9, mft_model_bytes(&c, 1, 512, MFT_TRAIN) / G,
               mft_model_bytes(&c, 1, 512, MFT_TRAIN | MFT_CHECKPOINT) / G,
               (mft_model_bytes(&c, 1, 512, MFT_TRAIN | MFT_FROZEN) + mft_lora_bytes(&c, 8, 1, 512)) / G,
               mft_model_bytes(&c, 1, 512, MFT_FORWARD) / G, mft_model_bytes(&c, 4, 2048, MFT_TRAIN | MFT_CHECKPOINT) / G,
               mft_model_bytes(&c, 4, 2048, MFT_TRAIN) / G);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *shape = "15M", *tokpath = NULL;
    int threads = 0, steps = 3, vocab = 0, peak = 0, products = 0, soft_k = 0, ckpt = 0, bset = 0, T = 256;
    double mb = 4, frac = 1.0;
    float kl_sample = 1.0f;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--peak")) { peak = 1; continue; }
        if (!strcmp(argv[i], "--products")) { products = 1; continue; }
        if (!strcmp(argv[i], "--checkpoint")) { ckpt = MFT_CHECKPOINT; continue; }
        if (!strcmp(argv[i], "--memory")) return bench_memory();
        if (i + 1 >= argc) { fprintf(stderr, "%s needs a value\n", argv[i]); return 1; }
        if (!strcmp(argv[i], "--tokenizer")) tokpath = argv[i + 1];
        else if (!strcmp(argv[i], "--vocab")) vocab = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mb")) mb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--shape")) shape = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--weighted")) frac = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--anchor-k")) soft_k = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--kl-sample")) kl_sample = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--B")) bset = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--T")) T = atoi(argv[i + 1]);
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 1; }
        i++;
    }
    if (tokpath) return bench_tokenizer(tokpath, vocab, mb);
    if (peak) {
        int nt = threads > 0 ? threads : mft__nthreads(&(mft_model){ .n_threads = 0 });
        printf("peak threads=%d fma_GFLOP/s=%.1f\n", nt, bench_peak(nt));
        return 0;
    }
    if (products) return bench_products(shape, threads);
    mft_config c;
    int B;
    if (shape_config(shape, &c, &B)) {
        fprintf(stderr, "--shape is 15M, 110M or 135M\n");
        return 1;
    }
    if (bset > 0) B = bset;
    if (T > c.seq_len) c.seq_len = T;

    mft_error err;
    mft_model m;
    size_t bytes = mft_model_bytes(&c, B, T, MFT_TRAIN | ckpt);
    void *mem = bytes ? malloc(bytes) : NULL;
    if (!mem || mft_model_init(&m, &c, B, T, MFT_TRAIN | ckpt, mem, bytes, &err)) { fprintf(stderr, "init: %s\n", mem ? err.msg : "malloc"); return 1; }
    m.n_threads = threads;
    mft_model_init_random(&m, 1);
    int *in = malloc((size_t)B * T * sizeof(int)), *tg = malloc((size_t)B * T * sizeof(int));
    float *w = malloc((size_t)B * T * sizeof(float));
    uint64_t r = 7;
    int V = c.vocab_size;
    for (int i = 0; i < B * T; i++) {
        r ^= r << 13; r ^= r >> 7; r ^= r << 17;
        in[i] = (int)(r % (uint64_t)V);
        tg[i] = (int)((r >> 20) % (uint64_t)V);
        /* a share frac of the positions, in runs of 4 as key spans come */
        w[i] = frac >= 1.0 || (double)((i / 4) * 2654435761u % 1000) < frac * 1000.0 ? 1.0f : 0.0f;
    }
    mft_train_opts o = mft_train_opts_default();
    o.lr = 1e-4f;
    mft_step_info info;
    /* --anchor-k K: the tool's --anchor, soft targets (the base's top K, here random) with
       weight 1 on every untrained position, through forward / soft targets / backward / step */
    int *sid = NULL;
    float *sp = NULL, *tw = NULL, *tw0 = NULL;
    uint64_t kr = 7;
    if (soft_k > 0) {
        sid = malloc((size_t)B * T * soft_k * sizeof(int));
        sp = malloc((size_t)B * T * soft_k * sizeof(float));
        tw = malloc((size_t)B * T * sizeof(float));
        tw0 = malloc((size_t)B * T * sizeof(float));
        for (int i = 0; i < B * T; i++) {
            tw0[i] = w[i] > 0.0f ? 0.0f : 1.0f;
            for (int j = 0; j < soft_k; j++) {
                sid[(size_t)i * soft_k + j] = (int)(((uint64_t)i * 7919 + (uint64_t)j * 104729) % (uint64_t)V);
                sp[(size_t)i * soft_k + j] = 0.5f / soft_k;
            }
        }
        m.sparse_logits = 1;
    }
    double t0 = 0.0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) t0 = now(); /* step 0 warms up */
        mft_status st;
        if (soft_k > 0) {
            memcpy(tw, tw0, (size_t)B * T * sizeof(float));
            mft_thin_weights(tw, (size_t)B * T, kl_sample, &kr); /* as the tool does, each step */
            st = mft_forward(&m, in, tg, w, B, T, NULL, &err);
            if (!st) st = mft_set_soft_targets(&m, sid, sp, soft_k, tw, NULL, &err);
            if (!st) st = mft_backward(&m, &err);
            if (!st) st = mft_step(&m, &o, &info, &err);
        } else
            st = mft_train_step(&m, &o, in, tg, w, B, T, &info, &err);
        if (st < 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    }
    double dt = (now() - t0) / steps;
    double D = c.dim, F = c.hidden_dim, L = c.n_layers, hs = D / c.n_heads, QD = c.n_heads * hs, KVD = c.n_kv_heads * hs;
    double pmm = L * (2 * D * QD + 2 * D * KVD + 3 * D * F) + (double)V * D;
    double flops_tok = 6 * pmm + 6 * L * T * D;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int weighted = 0;
    for (int i = 0; i < B * T; i++) weighted += w[i] > 0.0f;
    char anc[48] = "";
    if (soft_k > 0) snprintf(anc, sizeof anc, kl_sample < 1.0f ? "+anchor(kl-sample %g)" : "+anchor", kl_sample);
    printf("maskft shape=%s weighted=%.0f%%%s%s B=%d T=%d threads=%d tok/s=%.0f ms/step=%.1f GFLOP/s=%.1f peak_rss_MiB=%.0f "
           "arena_MiB=%.0f simd=%s params=%.1fM\n",
           shape, 100.0 * weighted / (B * T), anc, ckpt ? " checkpoint=1" : "", B, T, mft__nthreads(&m), B * T / dt, dt * 1000, flops_tok * B * T / dt / 1e9,
           ru.ru_maxrss / 1024.0, bytes / 1048576.0, mft_simd_name(), m.n_params / 1e6);
    mft_model_free(&m);
    free(mem);
    free(in);
    free(tg);
    free(w);
    free(sid);
    free(sp);
    free(tw);
    free(tw0);
    return 0;
}
