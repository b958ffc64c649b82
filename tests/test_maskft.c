/* maskft test suite. Includes maskft.c directly (as llm.c's test does with TESTING) so that the
   scalar reference kernels and the fast ones can be compared side by side.
   Run from the repository root: ./build/test_native [name-filter] (or test_scalar, ...)
   Prints one line per test and ends with "N passed, N failed" (tests), or with ", N skipped"
   (checks that did not run) added; exits 1 on any failure. A check skips only when a file it
   needs is absent (missing_asset): those files are named on a "missing assets: ..." line just
   before the last line. A file that exists but does not load is a failure, never a skip. */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>

/* The library's allocator, watched: g_alloc_max is the largest single request since a test
   reset it, and with g_alloc_cap set a larger request fails, as it would on a machine without
   the memory (so a reader that allocates before it checks is caught without taking the RAM) */
static size_t g_alloc_max, g_alloc_cap;
static void *test_realloc(void *p, size_t n)
{
    if (n > g_alloc_max) g_alloc_max = n;
    return g_alloc_cap && n > g_alloc_cap ? NULL : realloc(p, n);
}
#define MFT_MALLOC(n) test_realloc(NULL, n)
#define MFT_REALLOC(p, n) test_realloc(p, n)
#define MFT_FREE(p) free(p)
#include "../maskft.c"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int g_pass, g_fail, g_skip;          /* tests passed, tests failed, checks skipped */
static int g_cur_fail, g_cur_missing, g_cur_skip; /* the running test: failed checks, checks
                                                     skipped for a missing file, SKIP() called */
static const char *g_filter;
static char g_missing[64][128];             /* the names of the missing assets, each once */
static int g_n_missing;

#define EXPECT(cond, ...)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            g_cur_fail++;                                                   \
            if (g_cur_fail <= 8) {                                          \
                printf("    FAIL %s:%d: ", __FILE__, __LINE__);             \
                printf(__VA_ARGS__);                                        \
                printf("\n");                                               \
            }                                                               \
        }                                                                   \
    } while (0)

/* ends the running test as skipped; failures recorded before it still make the test FAIL */
#define SKIP(...) do { printf("    skipped: "); printf(__VA_ARGS__); printf("\n"); g_cur_skip = 1; return; } while (0)

/* the name of an absent asset, for the "missing assets:" line (each name once) */
static void note_missing(const char *name)
{
    for (int i = 0; i < g_n_missing; i++) if (!strcmp(g_missing[i], name)) return;
    if (g_n_missing < 64) snprintf(g_missing[g_n_missing++], sizeof g_missing[0], "%s", name);
}

/* a check that cannot run because the asset NAME is absent: named, and counted as one skipped
   check; the test goes on with its other checks */
static void missing_asset(const char *name)
{
    note_missing(name);
    g_cur_missing++;
}

static void run(const char *name, void (*fn)(void))
{
    if (g_filter && !strstr(name, g_filter)) return;
    g_cur_fail = g_cur_missing = g_cur_skip = 0;
    fn();
    /* the checks a missing asset stopped always count as skipped; a whole-test SKIP() counts
       once more only when nothing failed and no missing asset was counted already */
    g_skip += g_cur_missing;
    if (g_cur_fail) { g_fail++; printf("FAIL %s (%d checks)\n", name, g_cur_fail); }
    else if (g_cur_skip) { g_skip += !g_cur_missing; printf("skip %s\n", name); }
    else if (g_cur_missing) { g_pass++; printf("ok   %s (%d check%s skipped)\n", name, g_cur_missing, g_cur_missing > 1 ? "s" : ""); }
    else { g_pass++; printf("ok   %s\n", name); }
    fflush(stdout);
}

/* ---- helpers ----------------------------------------------------------------------------- */

static uint64_t g_rng = 12345;
static float frand(void) { return 2.0f * mft__rand_f32(&g_rng) - 1.0f; }
static void fill(float *x, size_t n, float scale) { for (size_t i = 0; i < n; i++) x[i] = scale * frand(); }
static float *fbuf(size_t n) { float *p = calloc(n ? n : 1, sizeof(float)); if (!p) abort(); return p; }

/* max |a-b| / (atol + rtol |b|) over n: <= 1 means within the bound */
static double worst(const float *a, const float *b, size_t n, double atol, double rtol, size_t *where)
{
    double w = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(e <= w)) { w = e; if (where) *where = i; }  /* NaN counts as worst */
    }
    return w;
}

static int same_ids(const int *a, int na, const int *b, int nb)
{
    if (na != nb) return 0;
    for (int i = 0; i < na; i++) if (a[i] != b[i]) return 0;
    return 1;
}

/* the first few ids of a mismatch, side by side */
static void print_mismatch(const char *where, const char *text, int len, const int *got, int n, const int *want, int nw)
{
    printf("    %s \"%.*s\": got", where, len < 40 ? len : 40, text);
    for (int i = 0; i < n && i < 14; i++) printf(" %d", got[i]);
    printf(" | want");
    for (int i = 0; i < nw && i < 14; i++) printf(" %d", want[i]);
    printf("\n");
}

/* offsets are in order, each range well formed, and together they cover [0, len) */
static int offsets_cover(const int *offs, int n, int len)
{
    int cover = 0;
    for (int i = 0; i < n; i++) {
        if (offs[2 * i] > cover || offs[2 * i + 1] < offs[2 * i]) return 0;
        if (offs[2 * i + 1] > cover) cover = offs[2 * i + 1];
    }
    return n == 0 || cover == len;
}

static const char *MODEL = "models/stories260K.bin";
static const char *TOKEN = "models/tok512.bin";

static char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END); *n = ftell(f); fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*n + 1);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) { free(b); b = NULL; }
    else b[*n] = 0; /* a text file can be used as a C string */
    fclose(f);
    return b;
}

static void spit(const char *path, const void *p, long n)
{
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(p, 1, (size_t)n, f); fclose(f); }
}

static mft_config tiny_config(int shared)
{
    mft_config c;
    memset(&c, 0, sizeof c);
    c.dim = 16; c.hidden_dim = 24; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2;
    c.vocab_size = 37; c.seq_len = 12; c.shared_classifier = shared;
    c.norm_eps = 1e-5f; c.rope_theta = 10000.0f;
    return c;
}

static mft_status open_tiny(mft_model *m, const mft_config *c, int B, int T, int flags, uint64_t seed)
{
    size_t bytes = mft_model_bytes(c, B, T, flags);
    void *mem = malloc(bytes);
    mft_status s = mft_model_init(m, c, B, T, flags, mem, bytes, NULL);
    if (s) { free(mem); return s; }
    m->owns_arena = 1;
    mft_model_init_random(m, seed);
    /* weights 5x the 0.02 init and norms away from 1, so every gradient is well above the
       finite-difference noise while the loss stays smooth at the step size used */
    uint64_t r = seed + 7;
    for (size_t i = 0; i < m->n_params; i++) m->params[i] = m->params[i] * 5.0f + 0.05f * (2.0f * mft__rand_f32(&r) - 1.0f);
    return MFT_OK;
}

static void random_batch(int *in, int *tg, float *w, int B, int T, int V, uint64_t seed)
{
    uint64_t r = seed;
    static const float pattern[5] = { 0.0f, 0.5f, 1.0f, 2.0f, 1.0f };
    for (int i = 0; i < B * T; i++) {
        in[i] = (int)(mft__rand_u64(&r) % (uint64_t)V);
        tg[i] = (int)(mft__rand_u64(&r) % (uint64_t)V);
        if (w) w[i] = pattern[i % 5];
    }
}

/* ---- kernels: every fast kernel against its scalar reference ------------------------------ */

static void test_kernel_matmul(void)
{
    /* shapes across every edge of the packed product: rows and columns short of a panel, of a
       block (MC, NC), K across KC blocks, and a K of 1 */
    int shapes[][3] = { { 1, 8, 4 },      { 7, 13, 9 },   { 50, 64, 70 },  { 33, 172, 64 },  { 64, 288, 100 },
                        { 100, 40, 131 }, { 13, 1, 17 },  { 130, 300, 270 }, { 250, 530, 37 }, { 12, 600, 300 },
                        { 256, 400, 401 } /* above mft__par_fma's threshold: threads really split it */ };
    float *ws = fbuf(MFT__GEMM_SLOTS * MFT__GEMM_SLOT);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        float *x = fbuf((size_t)N * C), *w = fbuf((size_t)OC * C), *g = fbuf((size_t)N * OC);
        float *o1 = fbuf((size_t)N * OC), *o2 = fbuf((size_t)N * OC), *o3 = fbuf((size_t)N * OC);
        float *d1 = fbuf((size_t)N * C), *d2 = fbuf((size_t)N * C), *d3 = fbuf((size_t)N * C);
        float *w1 = fbuf((size_t)OC * C), *w2 = fbuf((size_t)OC * C), *w3 = fbuf((size_t)OC * C);
        fill(x, (size_t)N * C, 1); fill(w, (size_t)OC * C, 1); fill(g, (size_t)N * OC, 1);
        fill(d1, (size_t)N * C, 1); memcpy(d2, d1, (size_t)N * C * 4); memcpy(d3, d1, (size_t)N * C * 4); /* they accumulate */
        fill(w1, (size_t)OC * C, 1); memcpy(w2, w1, (size_t)OC * C * 4); memcpy(w3, w1, (size_t)OC * C * 4);
        mft__matmul_fwd_ref(o1, x, w, N, C, OC);
        mft__matmul_fwd(o2, x, w, N, C, OC, 2, ws);
        mft__matmul_bwd_dx_ref(d1, g, w, N, C, OC);
        mft__matmul_bwd_dx(d2, g, w, N, C, OC, 2, ws);
        mft__matmul_bwd_dw_ref(w1, g, x, N, C, OC);
        mft__matmul_bwd_dw(w2, g, x, N, C, OC, 2, ws);
        /* sums of K products of O(1) numbers: float rounding grows like sqrt(K) */
        EXPECT(worst(o2, o1, (size_t)N * OC, 2e-6 * sqrt(C) * 4, 1e-5, NULL) <= 1, "fwd %dx%dx%d", N, C, OC);
        EXPECT(worst(d2, d1, (size_t)N * C, 2e-6 * sqrt(OC) * 4, 1e-5, NULL) <= 1, "dx %dx%dx%d", N, C, OC);
        EXPECT(worst(w2, w1, (size_t)OC * C, 2e-6 * sqrt(N) * 4, 1e-5, NULL) <= 1, "dw %dx%dx%d", N, C, OC);
        /* one thread and three give the same bits as two: every element has one summation order */
        mft__matmul_fwd(o3, x, w, N, C, OC, 1, ws);
        EXPECT(!memcmp(o3, o2, (size_t)N * OC * 4), "fwd %dx%dx%d: 1 thread differs from 2", N, C, OC);
        mft__matmul_bwd_dx(d3, g, w, N, C, OC, 3, ws);
        EXPECT(!memcmp(d3, d2, (size_t)N * C * 4), "dx %dx%dx%d: 3 threads differ from 2", N, C, OC);
        mft__matmul_bwd_dw(w3, g, x, N, C, OC, 1, ws);
        EXPECT(!memcmp(w3, w2, (size_t)OC * C * 4), "dw %dx%dx%d: 1 thread differs from 2", N, C, OC);
        free(x); free(w); free(g); free(o1); free(o2); free(o3); free(d1); free(d2); free(d3); free(w1); free(w2); free(w3);
    }
    free(ws);
}

static void test_kernel_rmsnorm(void)
{
    int N = 13, D = 72;
    float *x = fbuf((size_t)N * D), *w = fbuf(D), *y1 = fbuf((size_t)N * D), *y2 = fbuf((size_t)N * D), r1[13], r2[13];
    float *dy = fbuf((size_t)N * D), *dx1 = fbuf((size_t)N * D), *dx2 = fbuf((size_t)N * D), *dw1 = fbuf(D), *dw2 = fbuf(D);
    fill(x, (size_t)N * D, 2); fill(w, D, 1); fill(dy, (size_t)N * D, 1);
    fill(dx1, (size_t)N * D, 1); memcpy(dx2, dx1, (size_t)N * D * 4);
    fill(dw1, D, 1); memcpy(dw2, dw1, (size_t)D * 4);
    mft__rmsnorm_fwd_ref(y1, r1, x, w, N, D, 1e-5f);
    mft__rmsnorm_fwd(y2, r2, x, w, N, D, 1e-5f, 2);
    mft__rmsnorm_bwd_ref(dx1, dw1, dy, x, r1, w, N, D);
    mft__rmsnorm_bwd(dx2, dw2, dy, x, r2, w, N, D, 2);
    EXPECT(worst(y2, y1, (size_t)N * D, 1e-6, 1e-5, NULL) <= 1, "rmsnorm fwd");
    EXPECT(worst(r2, r1, (size_t)N, 1e-6, 1e-5, NULL) <= 1, "rmsnorm rstd");
    EXPECT(worst(dx2, dx1, (size_t)N * D, 1e-5, 1e-4, NULL) <= 1, "rmsnorm dx");
    EXPECT(worst(dw2, dw1, (size_t)D, 1e-5, 1e-4, NULL) <= 1, "rmsnorm dw");
    free(x); free(w); free(y1); free(y2); free(dy); free(dx1); free(dx2); free(dw1); free(dw2);
}

static void test_kernel_rope(void)
{
    int S = 20, hs = 16, H = 3, rows = 10, T = 5;
    float *cb = fbuf((size_t)S * hs), *sb = fbuf((size_t)S * hs);
    mft_config rc = { .dim = hs * H, .n_heads = H, .seq_len = S, .rope_theta = 10000.0f };
    mft__rope_tables(cb, sb, &rc);
    float *x = fbuf((size_t)rows * H * hs), *a = fbuf((size_t)rows * H * hs), *b = fbuf((size_t)rows * H * hs);
    fill(x, (size_t)rows * H * hs, 1);
    memcpy(a, x, (size_t)rows * H * hs * 4); memcpy(b, x, (size_t)rows * H * hs * 4);
    mft__rope_ref(a, cb, sb, rows, T, 3, NULL, H, hs, 1.0f);
    mft__rope(b, cb, sb, rows, T, 3, NULL, H, hs, 1.0f, 2);
    EXPECT(worst(b, a, (size_t)rows * H * hs, 1e-6, 1e-6, NULL) <= 1, "rope fwd vs ref");
    /* the explicit rotation for one element pair: row 7 is position 3 + 7 % 5 = 5, pair i = 1 */
    double ang = 5 * pow(10000.0, -2.0 * 1 / hs);
    float *v = x + ((size_t)7 * H + 2) * hs + 2, *r = a + ((size_t)7 * H + 2) * hs + 2;
    EXPECT(fabs(r[0] - (v[0] * cos(ang) - v[1] * sin(ang))) < 1e-6, "rope pair rotation x0");
    EXPECT(fabs(r[1] - (v[0] * sin(ang) + v[1] * cos(ang))) < 1e-6, "rope pair rotation x1");
    /* backward is the inverse rotation: undo gives x back */
    mft__rope(b, cb, sb, rows, T, 3, NULL, H, hs, -1.0f, 2);
    EXPECT(worst(b, x, (size_t)rows * H * hs, 1e-6, 1e-6, NULL) <= 1, "rope bwd o fwd = identity");
    free(cb); free(sb); free(x); free(a); free(b);
}

static void test_kernel_exp_softmax(void)
{
    /* vector exp against libm over the whole range it is used on */
    float xs[64], ys[64];
    double worst_rel = 0.0;
    for (float x0 = -87.0f; x0 < 88.0f; x0 += 0.37f) {
        for (int i = 0; i < 64; i++) xs[i] = x0 + 0.0057f * i;
        mft__vec_exp_sum(ys, xs, 0.0f, 64);
        for (int i = 0; i < 64; i++) {
            double rel = fabs(ys[i] - exp((double)xs[i])) / exp((double)xs[i]);
            if (rel > worst_rel) worst_rel = rel;
        }
    }
    EXPECT(worst_rel < 4e-7, "vector exp relative error %.3g", worst_rel);
    int n = 1000;
    float *x = fbuf(n), *p1 = fbuf(n), *p2 = fbuf(n);
    fill(x, n, 30);
    mft__softmax_ref(p1, x, n);
    mft__softmax(p2, x, n);
    EXPECT(worst(p2, p1, n, 1e-9, 2e-6, NULL) <= 1, "softmax");
    free(x); free(p1); free(p2);
    /* the anchor's KL row in float vectors against mft_kl_logits in double */
    for (int V = 5; V <= 40000; V *= 7) {
        float *p = fbuf((size_t)V), *q = fbuf((size_t)V);
        fill(p, (size_t)V, 4); fill(q, (size_t)V, 4);
        for (int i = 0; i < V; i++) q[i] = 0.8f * q[i] + 0.2f * p[i];
        double want = mft_kl_logits(p, q, V), got = mft__kl_row(p, q, V);
        EXPECT(want > 1e-3 && fabs(got - want) <= 1e-4 * want, "KL row V=%d: %.9g vs %.9g", V, got, want);
        EXPECT(mft__kl_row(p, p, V) < 1e-6, "KL of a row with itself: %g", mft__kl_row(p, p, V));
        free(p); free(q);
    }
}

static void test_kernel_swiglu_adamw(void)
{
    size_t n = 2100;
    float *a = fbuf(n), *b = fbuf(n), *g = fbuf(n), *o1 = fbuf(n), *o2 = fbuf(n);
    float *da1 = fbuf(n), *db1 = fbuf(n), *da2 = fbuf(n), *db2 = fbuf(n);
    fill(a, n, 6); fill(b, n, 2); fill(g, n, 1);
    mft__swiglu_fwd_ref(o1, a, b, n);
    mft__swiglu_fwd(o2, a, b, n, 2);
    mft__swiglu_bwd_ref(da1, db1, g, a, b, n);
    mft__swiglu_bwd(da2, db2, g, a, b, n, 2);
    EXPECT(worst(o2, o1, n, 1e-6, 1e-5, NULL) <= 1, "swiglu fwd");
    EXPECT(worst(da2, da1, n, 1e-6, 1e-5, NULL) <= 1, "swiglu da");
    EXPECT(worst(db2, db1, n, 1e-6, 1e-5, NULL) <= 1, "swiglu db");
    /* AdamW: fast vs reference over a few steps */
    float *p1 = fbuf(n), *m1 = fbuf(n), *v1 = fbuf(n), *p2 = fbuf(n), *m2 = fbuf(n), *v2 = fbuf(n);
    fill(p1, n, 1); memcpy(p2, p1, n * 4);
    for (int t = 1; t <= 3; t++) {
        mft__adam_k k = { 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.5f, 0, 0 };
        k.step_size = (float)(k.lr / (1 - pow(0.9, t)));
        k.bc2_sqrt = (float)sqrt(1 - pow(0.999, t));
        fill(g, n, 1);
        mft__adamw_ref(p1, m1, v1, g, n, &k);
        mft__adamw(p2, m2, v2, g, n, &k, 2);
    }
    EXPECT(worst(p2, p1, n, 1e-6, 1e-5, NULL) <= 1, "adamw p");
    EXPECT(worst(m2, m1, n, 1e-7, 1e-5, NULL) <= 1, "adamw m");
    EXPECT(worst(v2, v1, n, 1e-9, 1e-5, NULL) <= 1, "adamw v");
    /* one step by hand, in double: p=1, g=0.5*gscale... from zero moments the first AdamW step
       moves by lr * sign(g) (up to eps) after decay: 1*(1 - 1e-2*0.1) - 1e-2 */
    float p = 1.0f, m = 0.0f, v = 0.0f, gg = 2.0f;
    mft__adam_k k = { 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.25f, 0, 0 };
    k.step_size = (float)(k.lr / (1 - 0.9));
    k.bc2_sqrt = (float)sqrt(1 - 0.999);
    mft__adamw(&p, &m, &v, &gg, 1, &k, 1);
    double expect = 1.0 * (1 - 1e-3) - 1e-2 * 0.5 / (0.5 + 1e-8);
    EXPECT(fabs(p - expect) < 1e-6, "adamw first step by hand: %.8f vs %.8f", p, expect);
    free(a); free(b); free(g); free(o1); free(o2); free(da1); free(db1); free(da2); free(db2);
    free(p1); free(m1); free(v1); free(p2); free(m2); free(v2);
}

/* attention against the definition, written out with no tiling and in double: the output, each
   row's log-sum-exp, and the backward pass (which rebuilds the probabilities from that lse),
   on plain causal rows and on rows packed with two sequences; at T 7 every loop runs its
   scalar tail, at T 37 with hs 20 the vector loops and a partial block of rows too */
static void attention_case(int B, int T, int NH, int KV, int hs)
{
    int D = NH * hs, KVD = KV * hs;
    size_t nq = (size_t)B * T * D, nk = (size_t)B * T * KVD;
    float *q = fbuf(nq), *k = fbuf(nk), *v = fbuf(nk), *out = fbuf(nq), *lse = fbuf((size_t)B * NH * T);
    float *ws = fbuf(mft__attn_ws(B, T, NH, hs)), *dout = fbuf(nq), *dq = fbuf(nq), *dk = fbuf(nk), *dv = fbuf(nk);
    double *rdq = calloc(nq, sizeof(double)), *rdk = calloc(nk, sizeof(double)), *rdv = calloc(nk, sizeof(double));
    double *s = calloc((size_t)T, sizeof(double)), *dp = calloc((size_t)T, sizeof(double));
    int *pos = malloc((size_t)B * T * sizeof(int));
    fill(q, nq, 2); fill(k, nk, 2); fill(v, nk, 1); fill(dout, nq, 3);
    for (int packed = 0; packed < 2; packed++) {
        int cut = T / 2 + 1; /* the last row holds two sequences: 0..cut-1 and cut..T-1 */
        for (int i = 0; i < B * T; i++) pos[i] = i % T - (i % T >= cut && i / T == B - 1 ? cut : 0);
        const int *pv = packed ? pos : NULL;
        for (size_t i = 0; i < nq; i++) { dq[i] = 0.5f; rdq[i] = 0.5; } /* backward accumulates */
        for (size_t i = 0; i < nk; i++) { dk[i] = dv[i] = -0.25f; rdk[i] = rdv[i] = -0.25; }
        mft__attention_fwd(out, lse, ws, q, k, v, pv, B, T, NH, KV, hs, 2);
        mft__attention_bwd(dq, dk, dv, ws, dout, out, lse, q, k, v, pv, B, T, NH, KV, hs, 2);
        double eo = 0.0, el = 0.0, eg = 0.0;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    int kh = h / (NH / KV), t0 = pv ? t - pv[b * T + t] : 0;
                    size_t qo = ((size_t)b * T + t) * D + h * hs;
                    double mx = -1e30, sum = 0.0, dsum = 0.0;
                    for (int u = t0; u <= t; u++) {
                        s[u] = 0.0;
                        for (int i = 0; i < hs; i++) s[u] += (double)q[qo + i] * k[((size_t)b * T + u) * KVD + kh * hs + i];
                        s[u] /= sqrt((double)hs);
                        if (s[u] > mx) mx = s[u];
                    }
                    for (int u = t0; u <= t; u++) sum += exp(s[u] - mx);
                    el = fmax(el, fabs(mx + log(sum) - lse[((size_t)b * NH + h) * T + t]));
                    for (int u = t0; u <= t; u++) s[u] = exp(s[u] - mx) / sum; /* now p */
                    for (int i = 0; i < hs; i++) {
                        double o = 0.0;
                        for (int u = t0; u <= t; u++) o += s[u] * v[((size_t)b * T + u) * KVD + kh * hs + i];
                        eo = fmax(eo, fabs(o - out[qo + i]));
                    }
                    for (int u = t0; u <= t; u++) {
                        dp[u] = 0.0;
                        for (int i = 0; i < hs; i++) dp[u] += (double)dout[qo + i] * v[((size_t)b * T + u) * KVD + kh * hs + i];
                        dsum += s[u] * dp[u];
                    }
                    for (int u = t0; u <= t; u++) {
                        double ds = s[u] * (dp[u] - dsum) / sqrt((double)hs);
                        size_t ko = ((size_t)b * T + u) * KVD + kh * hs;
                        for (int i = 0; i < hs; i++) {
                            rdv[ko + i] += s[u] * dout[qo + i];
                            rdq[qo + i] += ds * k[ko + i];
                            rdk[ko + i] += ds * q[qo + i];
                        }
                    }
                }
        /* (written as a loop of maxima over one array each: aarch64 gcc 12 fails to compile the
           nested fmax form, an internal compiler error in its vectoriser) */
        double *rg[3] = { rdq, rdk, rdv };
        float *got[3] = { dq, dk, dv };
        for (int a = 0; a < 3; a++)
            for (size_t i = 0; i < (a ? nk : nq); i++) {
                double e = fabs(rg[a][i] - got[a][i]);
                if (e > eg) eg = e;
            }
        const char *what = packed ? "packed" : "causal";
        EXPECT(eo < 2e-6, "attention forward vs definition (T %d hs %d %s): max error %.3g", T, hs, what, eo);
        EXPECT(el < 2e-6, "attention log-sum-exp vs definition (T %d hs %d %s): max error %.3g", T, hs, what, el);
        EXPECT(eg < 2e-5, "attention backward vs definition (T %d hs %d %s): max error %.3g", T, hs, what, eg);
    }
    free(q); free(k); free(v); free(out); free(lse); free(ws); free(dout); free(dq); free(dk); free(dv);
    free(rdq); free(rdk); free(rdv); free(s); free(dp); free(pos);
}

static void test_kernel_attention(void)
{
    attention_case(2, 7, 6, 2, 8);
    attention_case(2, 37, 4, 2, 20);
}

/* ---- gradients: central finite differences on a tiny model ------------------------------- */

static double tiny_loss(mft_model *m, const int *in, const int *tg, const float *w, int B, int T)
{
    if (mft_forward(m, in, tg, w, B, T, NULL, NULL)) return NAN;
    return m->fwd_loss_sum / m->fwd_weight_sum;
}

static void gradcheck_config(mft_config c)
{
    mft_model m;
    int B = 2, T = 7;
    EXPECT(open_tiny(&m, &c, B, T, MFT_TRAIN, 99) == MFT_OK, "init");
    int in[14], tg[14];
    float w[14];
    random_batch(in, tg, w, B, T, c.vocab_size, 5);
    in[3] = in[9] = 4; /* a repeated token: its embedding gradient adds up from two rows */
    m.n_threads = 1;
    /* A norm over a few tiny values is very curved (its derivative goes as 1/rms), and with the
       heads' norms the attention amplifies every change of the input: embeddings and q/k
       projections of a real model's scale keep the finite differences in their accurate range */
    for (size_t i = 0; c.qk_norm && i < (size_t)c.vocab_size * c.dim; i++) m.w.tok_emb[i] *= 30.0f;
    for (size_t i = 0; c.qk_norm && i < (size_t)c.n_layers * c.n_heads * mft_head_dim(&c) * c.dim; i++) m.w.wq[i] *= 20.0f;
    for (size_t i = 0; c.qk_norm && i < (size_t)c.n_layers * c.n_kv_heads * mft_head_dim(&c) * c.dim; i++)
        m.w.wk[i] *= 20.0f;
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK, "forward");
    double W = m.fwd_weight_sum;
    EXPECT(mft_backward(&m, NULL) == MFT_OK, "backward");
    float *an = fbuf(m.n_params);
    for (size_t i = 0; i < m.n_params; i++) an[i] = (float)(m.grads[i] / W);
    uint64_t r = 3;
    int checked = 0;
    for (int ti = 0; ti < mft_tensor_count(&c); ti++) {
        mft_tensor_info inf = mft_tensor_at(&c, ti);
        double worst_e = 0.0, gmax = 0.0;
        size_t imax = 0;
        for (size_t j = 0; j < inf.numel; j++)
            if (fabs(an[inf.offset + j]) > gmax) { gmax = fabs(an[inf.offset + j]); imax = j; }
        EXPECT(gmax > 1e-3, "%s: gradient is ~0 everywhere (max %.3g): the check would be vacuous", inf.name, gmax);
        for (int s = 0; s < 12; s++) {
            size_t j = s == 0 ? imax : (size_t)(mft__rand_u64(&r) % inf.numel);
            float *p = m.params + inf.offset + j, p0 = *p;
            float h = 1e-3f * (fabsf(p0) > 1.0f ? fabsf(p0) : 1.0f);
            *p = p0 + h; double lp = tiny_loss(&m, in, tg, w, B, T);
            *p = p0 - h; double lm = tiny_loss(&m, in, tg, w, B, T);
            *p = p0 + 2 * h; double lp2 = tiny_loss(&m, in, tg, w, B, T);
            *p = p0 - 2 * h; double lm2 = tiny_loss(&m, in, tg, w, B, T);
            *p = p0;
            /* 4th-order central difference; float32 rounding of the loss (~1e-7 relative) over h
               leaves ~1e-4 of noise, hence the absolute part of the bound */
            double fd = (8.0 * (lp - lm) - (lp2 - lm2)) / (12.0 * h);
            double e = fabs(fd - an[inf.offset + j]) / (5e-4 + 5e-3 * fabs(fd));
            if (e > worst_e) worst_e = e;
            checked++;
        }
        EXPECT(worst_e <= 1.0, "%s: finite difference disagrees (error %.2f of the bound)", inf.name, worst_e);
    }
    EXPECT(checked >= 11 * 12, "checked %d entries", checked);
    free(an);
    mft_model_free(&m);
}

static void test_gradcheck_untied(void) { gradcheck_config(tiny_config(0)); }
static void test_gradcheck_tied(void) { gradcheck_config(tiny_config(1)); }

/* the features of other families, each tensor by finite differences: q/k/v biases (Qwen2),
   per-head q/k norms and a head size that is not dim / heads (Qwen3), llama3 rope scaling with
   a short original context (so that some frequencies are scaled and some blended) */
static void test_gradcheck_families(void)
{
    mft_config c = tiny_config(1);
    c.qkv_bias = 1;
    c.arch = MFT_ARCH_QWEN2;
    printf("    qkv bias\n");
    gradcheck_config(c);
    c = tiny_config(0);
    c.qk_norm = 1;
    c.head_dim = 6; /* 4 heads of 6 = 24 wide queries on a 16 wide stream */
    c.arch = MFT_ARCH_QWEN3;
    printf("    q/k norms, head_dim 6\n");
    gradcheck_config(c);
    c = tiny_config(1);
    c.head_dim = 8;
    c.rope_scaling = MFT_ROPE_LLAMA3;
    c.rope_factor = 8.0f;
    c.rope_low_freq = 1.0f;
    c.rope_high_freq = 4.0f;
    c.rope_orig_ctx = 64;
    c.rope_theta = 100.0f;
    printf("    llama3 rope scaling\n");
    gradcheck_config(c);
    /* that scaling moved some frequencies, kept some, and blended some */
    int kept = 0, moved = 0, blended = 0, hs = mft_head_dim(&c);
    for (int i = 0; i < hs / 2; i++) {
        double f = pow(100.0, -2.0 * i / hs), g = mft__rope_freq(&c, i, hs);
        kept += fabs(g - f) < 1e-15 * f;
        moved += fabs(g - f / 8.0) < 1e-15 * f;
        blended += g < f && g > f / 8.0;
    }
    EXPECT(kept && moved && blended, "llama3 scaling: %d kept, %d divided, %d blended of %d", kept, moved, blended, hs / 2);
}

/* The objectives beside the CE, against finite differences: J = sum w CE + sum aw KL(base ||
   model) (the anchor, when base is set) + sum tw KL(teacher top-k || model) (when ids is set) */
typedef struct {
    const int *in, *tg;
    const float *w;
    int B, T;
    const float *base, *aw;      /* the anchor */
    const int *ids;              /* soft targets */
    const float *p, *tw;
    int k;
} objective_t;

static double objective(mft_model *m, const objective_t *o)
{
    mft_forward(m, o->in, o->tg, o->w, o->B, o->T, NULL, NULL);
    if (o->base) mft_set_anchor(m, o->base, o->aw, NULL, NULL);
    if (o->ids) mft_set_soft_targets(m, o->ids, o->p, o->k, o->tw, NULL, NULL);
    double j = m->fwd_loss_sum + m->fwd_anchor_sum;
    m->anchor_w = m->anchor_logits = NULL; /* no backward follows */
    m->soft_w = NULL;
    return j;
}

/* 8 random entries of every tensor of the analytic gradient an (of J, unnormalised) against a
   4th-order central difference of J; J is a sum over 12 rows (~70), so its float32 rounding
   leaves ~3e-3 of FD noise: |fd - an| <= 6e-3 + 5e-3 |fd|. Returns the entries checked. */
static int fd_check(mft_model *m, const mft_config *c, const objective_t *o, const float *an, uint64_t *r,
                    const char *what)
{
    int checked = 0;
    for (int ti = 0; ti < mft_tensor_count(c); ti++) {
        mft_tensor_info inf = mft_tensor_at(c, ti);
        double worst_e = 0.0;
        for (int s = 0; s < 8; s++) {
            size_t j = (size_t)(mft__rand_u64(r) % inf.numel);
            float *p = m->params + inf.offset + j, p0 = *p;
            float h = 1e-3f * (fabsf(p0) > 1.0f ? fabsf(p0) : 1.0f);
            *p = p0 + h; double lp = objective(m, o);
            *p = p0 - h; double lm = objective(m, o);
            *p = p0 + 2 * h; double lp2 = objective(m, o);
            *p = p0 - 2 * h; double lm2 = objective(m, o);
            *p = p0;
            double fd = (8.0 * (lp - lm) - (lp2 - lm2)) / (12.0 * h);
            double e = fabs(fd - an[inf.offset + j]) / (6e-3 + 5e-3 * fabs(fd));
            if (e > worst_e) worst_e = e;
            if (getenv("MFT_VERBOSE")) printf("    %s[%zu]: fd %.6f analytic %.6f (J %.4f)\n", inf.name, j, fd, an[inf.offset + j], lp);
            checked++;
        }
        EXPECT(worst_e <= 1.0, "%s: finite difference disagrees with the %s gradient (error %.2f of the bound)", inf.name, what, worst_e);
    }
    return checked;
}

static void test_gradcheck_anchor(void)
{
    mft_config c = tiny_config(0);
    mft_model m;
    int B = 2, T = 6, N = 12, in[12], tg[12];
    float w[12], aw[12], *base = fbuf((size_t)N * c.vocab_size);
    EXPECT(open_tiny(&m, &c, B, T, MFT_TRAIN, 41) == MFT_OK, "init");
    random_batch(in, tg, w, B, T, c.vocab_size, 17);
    uint64_t r = 23;
    for (int n = 0; n < N; n++) aw[n] = w[n] == 0.0f ? 2.0f : n % 3 == 0 ? 0.5f : 0.0f; /* on untrained and some trained rows */
    for (size_t i = 0; i < (size_t)N * c.vocab_size; i++) base[i] = 3.0f * (2.0f * mft__rand_f32(&r) - 1.0f);
    m.n_threads = 1;
    mft_error err;
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK && mft_set_anchor(&m, base, aw, NULL, &err) == MFT_OK, "anchor: %s", err.msg);
    EXPECT(m.fwd_anchor_sum > 0.1, "anchor KL %g", m.fwd_anchor_sum);
    EXPECT(mft_backward(&m, NULL) == MFT_OK, "backward");
    float *an = fbuf(m.n_params);
    memcpy(an, m.grads, m.n_params * sizeof(float));
    objective_t ob = { .in = in, .tg = tg, .w = w, .B = B, .T = T, .base = base, .aw = aw };
    int checked = fd_check(&m, &c, &ob, an, &r, "anchored");
    EXPECT(checked >= 12 * 8, "checked %d", checked);
    /* an anchor on the base model's own logits pulls nothing: KL 0 and the CE gradient alone */
    float *own = fbuf((size_t)N * c.vocab_size), *g0 = fbuf(m.n_params);
    mft_zero_grad(&m);
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK && mft_backward(&m, NULL) == MFT_OK, "plain");
    memcpy(g0, m.grads, m.n_params * sizeof(float));
    mft_zero_grad(&m);
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK, "forward");
    memcpy(own, m.a.logits, (size_t)N * c.vocab_size * sizeof(float));
    EXPECT(mft_set_anchor(&m, own, aw, NULL, NULL) == MFT_OK && m.fwd_anchor_sum < 1e-9 && mft_backward(&m, NULL) == MFT_OK, "self anchor");
    size_t wat = 0;
    double wr = worst(m.grads, g0, m.n_params, 2e-5, 1e-4, &wat);
    EXPECT(wr <= 1, "an anchor on the model's own distribution changed the gradient (%.3g of tolerance at %zu: %g vs %g)", wr, wat, m.grads[wat], g0[wat]);
    /* an anchor belongs to the forward it was set after: a new forward voids it */
    mft_zero_grad(&m);
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK && mft_set_anchor(&m, base, aw, NULL, NULL) == MFT_OK, "anchor set");
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK && !m.anchor_w && mft_backward(&m, NULL) == MFT_OK, "forward again");
    EXPECT(worst(m.grads, g0, m.n_params, 2e-5, 1e-4, NULL) <= 1, "a stale anchor reached the next backward");
    aw[0] = NAN;
    mft_zero_grad(&m);
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK && mft_set_anchor(&m, base, aw, NULL, &err) == MFT_ERR_ARG, "NaN anchor weight accepted");
    free(own); free(g0); free(an); free(base);
    mft_model_free(&m);
}

/* ---- the method's other objectives: soft targets (the teacher), DFT, LoRA ------------------- */

/* a random teacher: the k most likely tokens of random logits (distinct ids), their probabilities */
static void random_topk(int *ids, float *p, int N, int k, int V, uint64_t *r)
{
    float *z = fbuf((size_t)V);
    for (int n = 0; n < N; n++) {
        for (int i = 0; i < V; i++) z[i] = 3.0f * (2.0f * mft__rand_f32(r) - 1.0f);
        double l = mft__lse64(z, V);
        for (int i = 0; i < k; i++) { /* token (n + 3i) mod V: distinct while k <= V / 3 */
            int id = (n + 3 * i) % V;
            ids[(size_t)n * k + i] = id;
            p[(size_t)n * k + i] = (float)exp(z[id] - l);
        }
    }
    free(z);
}

/* the soft targets' KL of one row, the tail Q_rest summed with the k ids skipped: in float
   vectors (maskft) against softmax, coarsening and KL in double here; rows of V 37 (vector tails)
   and 1000, with and without a tail, logits restored after the pass, the same sum on 1 and 2
   threads; and backward's tail over probabilities against the same double sum */
static void test_kernel_soft_kl(void)
{
    enum { N = 6, K = 7 };
    const int Vs[2] = { 37, 1000 };
    for (int vi = 0; vi < 2; vi++) {
        int V = Vs[vi], ids[N * K];
        float *z = fbuf((size_t)N * V), *z0 = fbuf((size_t)N * V), lse[N], tw[N], p[N * K], kl[N];
        uint64_t r = 101 + (uint64_t)vi;
        for (int i = 0; i < N * V; i++) z[i] = 6.0f * (2.0f * mft__rand_f32(&r) - 1.0f);
        memcpy(z0, z, (size_t)N * V * sizeof(float));
        double want = 0.0;
        for (int n = 0; n < N; n++) {
            const float *zr = z + (size_t)n * V;
            lse[n] = (float)mft__lse64(zr, V);
            tw[n] = n == 2 ? 0.0f : 0.5f + 0.25f * (float)n;
            double psum = 0.0, qk = 0.0, q_rest = 0.0;
            for (int i = 0; i < K; i++) { /* the teacher: random weights on K distinct ids */
                ids[n * K + i] = (5 * n + 4 * i + 1) % V;
                p[n * K + i] = mft__rand_f32(&r);
                psum += p[n * K + i];
            }
            double scale = n == 4 ? 1.0 / psum : 0.6 / psum; /* row 4: no tail */
            for (int i = 0; i < K; i++) p[n * K + i] = (float)(p[n * K + i] * scale);
            double r_t = 1.0, d = 0.0;
            for (int i = 0; i < K; i++) r_t -= p[n * K + i];
            for (int j = 0; j < V; j++) {
                int in_k = 0;
                for (int i = 0; i < K; i++) in_k |= ids[n * K + i] == j;
                double q = exp((double)zr[j] - lse[n]);
                if (in_k) qk += q; else q_rest += q;
            }
            (void)qk;
            for (int i = 0; i < K; i++)
                d += p[n * K + i] * (log((double)p[n * K + i]) - ((double)zr[ids[n * K + i]] - lse[n]));
            if (r_t > MFT__TAIL_MIN) d += r_t * (log(r_t) - log(q_rest));
            if (tw[n] > 0.0f) want += tw[n] * d;
            if (tw[n] > 0.0f && n != 4) { /* backward's tail, over the probabilities */
                float *q = fbuf((size_t)V);
                for (int j = 0; j < V; j++) q[j] = (float)exp((double)zr[j] - lse[n]);
                double got = mft__soft_rest(q, lse[n], ids + n * K, K, (size_t)V, 1);
                EXPECT(fabs(got - q_rest) <= 1e-5 * q_rest, "V %d row %d: Q_rest %.9g, want %.9g", V, n, got, q_rest);
                EXPECT(q[ids[n * K]] == (float)exp((double)zr[ids[n * K]] - lse[n]), "V %d row %d: probabilities not restored", V, n);
                free(q);
            }
        }
        mft__soft sf = { ids, p, tw, K };
        double got1 = mft__soft_fwd(z, lse, &sf, N, (size_t)V, kl, 1);
        EXPECT(!memcmp(z, z0, (size_t)N * V * sizeof(float)), "V %d: logits not restored", V);
        double got2 = mft__soft_fwd(z, lse, &sf, N, (size_t)V, kl, 2);
        EXPECT(want > 0.1 && fabs(got1 - want) <= 2e-5 * want, "V %d: soft KL %.9g, want %.9g", V, got1, want);
        EXPECT(got1 == got2, "V %d: soft KL %.17g on 1 thread, %.17g on 2", V, got1, got2);
        free(z);
        free(z0);
    }
}

/* mft_thin_weights: every weight kept with probability keep and scaled by 1/keep, so the mean
   over many draws is the weight itself; zeros stay zero, keep >= 1 changes nothing, the same
   seed draws the same */
static void test_thin_weights(void)
{
    enum { N = 64, R = 4000 };
    float tw[N], sum[N] = { 0 }, again[N];
    uint64_t r = 5;
    size_t kept_total = 0, weighted = 0;
    for (int rep = 0; rep < R; rep++) {
        for (int n = 0; n < N; n++) tw[n] = n % 4 == 0 ? 0.0f : 0.5f + (float)(n % 3);
        size_t kept = mft_thin_weights(tw, N, 0.25f, &r), c = 0;
        for (int n = 0; n < N; n++) {
            c += tw[n] > 0.0f;
            sum[n] += tw[n];
            EXPECT(tw[n] == 0.0f || tw[n] == (0.5f + (float)(n % 3)) / 0.25f, "weight %d: %g", n, (double)tw[n]);
        }
        EXPECT(kept == c, "returned %zu kept, %zu are", kept, c);
        kept_total += kept;
        weighted += 48;
    }
    EXPECT(fabs((double)kept_total / (double)weighted - 0.25) < 0.01, "kept %zu of %zu", kept_total, weighted);
    double worst_rel = 0.0;
    for (int n = 0; n < N; n++) {
        double want = n % 4 == 0 ? 0.0 : 0.5 + n % 3;
        if (n % 4 == 0) EXPECT(sum[n] == 0.0f, "zero weight %d drew %g", n, (double)sum[n]);
        else worst_rel = fmax(worst_rel, fabs(sum[n] / R - want) / want);
    }
    /* the mean of 4000 draws of a weight kept 1 time in 4: relative sd sqrt(3 / 4000) = 2.7% */
    EXPECT(worst_rel < 0.12, "mean weight off by %.3f of itself", worst_rel);
    for (int n = 0; n < N; n++) tw[n] = again[n] = 1.0f + (float)n;
    uint64_t r1 = 9, r2 = 9;
    EXPECT(mft_thin_weights(tw, N, 1.0f, &r1) == N && !memcmp(tw, again, sizeof tw), "keep 1 changed the weights");
    r1 = 9;
    mft_thin_weights(tw, N, 0.5f, &r1);
    mft_thin_weights(again, N, 0.5f, &r2);
    EXPECT(!memcmp(tw, again, sizeof tw), "one seed, two draws");
    EXPECT(mft_thin_weights(tw, N, 0.0f, &r1) == 0, "keep 0 kept some");
}

static void test_gradcheck_soft_targets(void)
{
    mft_config c = tiny_config(0);
    mft_model m;
    enum { B = 2, T = 6, N = 12, K = 5 };
    int in[N], tg[N], ids[N * K];
    float w[N], tw[N], p[N * K];
    EXPECT(open_tiny(&m, &c, B, T, MFT_TRAIN, 43) == MFT_OK, "init");
    random_batch(in, tg, w, B, T, c.vocab_size, 19);
    uint64_t r = 29;
    random_topk(ids, p, N, K, c.vocab_size, &r);
    for (int n = 0; n < N; n++) tw[n] = w[n] == 0.0f ? 1.5f : n % 4 == 0 ? 0.5f : 0.0f;
    m.n_threads = 1;
    mft_error err;
    double kl = 0;
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK && mft_set_soft_targets(&m, ids, p, K, tw, &kl, &err) == MFT_OK,
           "soft targets: %s", err.msg);
    EXPECT(kl > 0.1, "soft KL %g", kl);
    EXPECT(mft_backward(&m, NULL) == MFT_OK, "backward");
    float *an = fbuf(m.n_params);
    memcpy(an, m.grads, m.n_params * sizeof(float));
    objective_t ob = { .in = in, .tg = tg, .w = w, .B = B, .T = T, .ids = ids, .p = p, .tw = tw, .k = K };
    int checked = fd_check(&m, &c, &ob, an, &r, "soft-target");
    EXPECT(checked >= 12 * 8, "checked %d", checked);
    /* bad arguments are refused */
    mft_zero_grad(&m);
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK, "forward");
    EXPECT(mft_set_soft_targets(&m, ids, p, 0, tw, NULL, &err) == MFT_ERR_ARG, "k 0 accepted");
    ids[0] = c.vocab_size;
    tw[0] = 1.0f;
    EXPECT(mft_set_soft_targets(&m, ids, p, K, tw, NULL, &err) == MFT_ERR_ARG && strstr(err.msg, "vocabulary"), "bad id: %s", err.msg);
    free(an);
    mft_model_free(&m);
}

/* sparse_logits: the classifier on the weighted positions only (plus those an anchor or soft
   targets add) gives the loss and gradients of the full computation, with DFT too, and runs on
   no other row */
static void test_sparse_logits(void)
{
    mft_config c = tiny_config(1);
    enum { B = 2, T = 12, N = 24, K = 5 };
    int in[N], tg[N], ids[N * K];
    float w[N], aw[N], tw[N], p[N * K];
    random_batch(in, tg, w, B, T, c.vocab_size, 31);
    for (int n = 0; n < N; n++) w[n] = n % 5 == 2 ? 1.0f + 0.25f * (float)(n % 3) : 0.0f; /* 5 of 24 */
    for (int n = 0; n < N; n++) aw[n] = n % 4 == 1 ? 0.75f : 0.0f;
    for (int n = 0; n < N; n++) tw[n] = n % 6 == 3 ? 1.5f : 0.0f;
    uint64_t r = 41;
    random_topk(ids, p, N, K, c.vocab_size, &r);
    for (int kind = 0; kind < 4; kind++) { /* CE; + anchor; + soft targets; DFT */
        mft_model a, b, base;
        EXPECT(open_tiny(&a, &c, B, T, MFT_TRAIN, 8) == MFT_OK && open_tiny(&b, &c, B, T, MFT_TRAIN, 8) == MFT_OK &&
               open_tiny(&base, &c, B, T, MFT_FORWARD, 9) == MFT_OK, "init");
        EXPECT(mft_forward(&base, in, NULL, NULL, B, T, NULL, NULL) == MFT_OK, "base");
        b.sparse_logits = 1;
        a.dft = b.dft = kind == 3;
        mft_fwd_info ia, ib;
        double ka = 0, kb = 0;
        EXPECT(mft_forward(&a, in, tg, w, B, T, &ia, NULL) == MFT_OK && mft_forward(&b, in, tg, w, B, T, &ib, NULL) == MFT_OK, "forward");
        EXPECT(a.n_cls_rows == -1 && b.n_cls_rows == 5, "classifier rows: %d and %d (want -1 and 5)", a.n_cls_rows, b.n_cls_rows);
        EXPECT(fabs(ia.loss_sum - ib.loss_sum) <= 1e-6 * fabs(ia.loss_sum), "kind %d: loss %.9g vs %.9g", kind, ia.loss_sum, ib.loss_sum);
        if (kind == 1) {
            EXPECT(mft_set_anchor(&a, base.a.logits, aw, &ka, NULL) == MFT_OK && mft_set_anchor(&b, base.a.logits, aw, &kb, NULL) == MFT_OK, "anchor");
            EXPECT(b.n_cls_rows == 10, "rows with the anchor's: %d (want 10)", b.n_cls_rows);
        }
        if (kind == 2) {
            EXPECT(mft_set_soft_targets(&a, ids, p, K, tw, &ka, NULL) == MFT_OK && mft_set_soft_targets(&b, ids, p, K, tw, &kb, NULL) == MFT_OK, "soft");
            EXPECT(b.n_cls_rows == 9, "rows with the soft targets': %d (want 9)", b.n_cls_rows);
        }
        EXPECT(fabs(ka - kb) <= 1e-6 * fabs(ka) && (kind == 0 || kind == 3 || ka > 0.0), "kind %d: KL %.9g vs %.9g", kind, ka, kb);
        EXPECT(mft_backward(&a, NULL) == MFT_OK && mft_backward(&b, NULL) == MFT_OK, "backward");
        size_t at = 0;
        double bad = worst(b.grads, a.grads, a.n_params, 1e-5, 1e-4, &at);
        EXPECT(bad <= 1, "kind %d: gradients differ (%.3g of tolerance at %zu: %.9g vs %.9g)", kind, bad, at, b.grads[at], a.grads[at]);
        float gmax = 0.0f;
        for (size_t i = 0; i < a.n_params; i++) gmax = fmaxf(gmax, fabsf(a.grads[i]));
        EXPECT(gmax > 1e-2f, "kind %d: no gradient to compare (%g)", kind, gmax);
        mft_model_free(&a);
        mft_model_free(&b);
        mft_model_free(&base);
    }
}

/* the teacher with an empty context is the anchor: soft targets holding the base model's whole
   distribution (k = V) give the anchor's objective and gradient */
static void test_soft_targets_are_the_anchor(void)
{
    mft_config c = tiny_config(1);
    mft_model m, base;
    enum { B = 2, T = 6, N = 12 };
    int in[N], tg[N], V = c.vocab_size;
    float w[N], aw[N];
    EXPECT(open_tiny(&m, &c, B, T, MFT_TRAIN, 51) == MFT_OK && open_tiny(&base, &c, B, T, MFT_FORWARD, 52) == MFT_OK, "init");
    random_batch(in, tg, w, B, T, V, 7);
    for (int n = 0; n < N; n++) aw[n] = w[n] == 0.0f ? 2.0f : 0.0f;
    EXPECT(mft_forward(&base, in, NULL, NULL, B, T, NULL, NULL) == MFT_OK, "base forward");
    float *bl = fbuf((size_t)N * V), *p = fbuf((size_t)N * V), *g = fbuf(m.n_params);
    int *ids = malloc((size_t)N * V * sizeof(int));
    memcpy(bl, base.a.logits, (size_t)N * V * sizeof(float));
    for (int n = 0; n < N; n++) {
        double l = mft__lse64(bl + (size_t)n * V, V);
        for (int i = 0; i < V; i++) { ids[(size_t)n * V + i] = V - 1 - i; p[(size_t)n * V + i] = (float)exp(bl[(size_t)n * V + V - 1 - i] - l); }
    }
    double ka = 0, ks = 0;
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK && mft_set_anchor(&m, bl, aw, &ka, NULL) == MFT_OK &&
           mft_backward(&m, NULL) == MFT_OK, "anchor");
    memcpy(g, m.grads, m.n_params * sizeof(float));
    mft_zero_grad(&m);
    mft_error err;
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK && mft_set_soft_targets(&m, ids, p, V, aw, &ks, &err) == MFT_OK &&
           mft_backward(&m, NULL) == MFT_OK, "soft: %s", err.msg);
    EXPECT(ka > 0.05 && fabs(ka - ks) <= 1e-5 * ka, "KL: anchor %.9f, soft targets %.9f", ka, ks);
    size_t at = 0;
    /* the anchor's Q_base in float vectors, the soft targets' P in double: rounding of a few
       1e-7 of the largest gradient (71 at these weights) */
    float gmax = 0.0f;
    for (size_t i = 0; i < m.n_params; i++) gmax = fmaxf(gmax, fabsf(g[i]));
    double e = worst(m.grads, g, m.n_params, 1e-6 * gmax, 1e-4, &at);
    EXPECT(e <= 1, "gradient: soft targets differ from the anchor (%.3g of tolerance at %zu: %g vs %g)", e, at, m.grads[at], g[at]);
    free(bl); free(p); free(g); free(ids);
    mft_model_free(&m);
    mft_model_free(&base);
}

/* DFT: the loss is sum w p CE / sum w with p = exp(-CE) of each token, and its gradient is the
   CE gradient with weights w p (p a constant) */
static void test_dft(void)
{
    mft_config c = tiny_config(0);
    mft_model m;
    enum { B = 2, T = 6, N = 12 };
    int in[N], tg[N];
    float w[N], wp[N];
    EXPECT(open_tiny(&m, &c, B, T, MFT_TRAIN, 61) == MFT_OK, "init");
    random_batch(in, tg, w, B, T, c.vocab_size, 11);
    float nll[N];
    double want = 0, W = 0;
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK, "forward");
    for (int n = 0; n < N; n++) {
        nll[n] = (float)((double)m.a.lse[n] - m.a.logits[(size_t)n * c.vocab_size + tg[n]]);
        wp[n] = (float)(w[n] * exp(-((double)m.a.lse[n] - m.a.logits[(size_t)n * c.vocab_size + tg[n]])));
        want += wp[n] * (double)nll[n];
        W += w[n];
    }
    mft_backward(&m, NULL);
    float *g = fbuf(m.n_params);
    memcpy(g, m.grads, m.n_params * sizeof(float));
    mft_zero_grad(&m);
    m.dft = 1;
    mft_fwd_info fi;
    EXPECT(mft_forward(&m, in, tg, w, B, T, &fi, NULL) == MFT_OK && mft_backward(&m, NULL) == MFT_OK, "dft");
    EXPECT(fabs(fi.loss_sum - want) <= 1e-6 * want && fi.weight_sum == W, "DFT loss sum %.8f vs %.8f, weights %g vs %g", fi.loss_sum, want, fi.weight_sum, W);
    float *gd = fbuf(m.n_params);
    memcpy(gd, m.grads, m.n_params * sizeof(float));
    mft_zero_grad(&m);
    m.dft = 0;
    EXPECT(mft_forward(&m, in, tg, wp, B, T, NULL, NULL) == MFT_OK && mft_backward(&m, NULL) == MFT_OK, "weighted");
    size_t at = 0;
    double e = worst(gd, m.grads, m.n_params, 1e-7, 1e-5, &at);
    EXPECT(e <= 1, "the DFT gradient is not the CE gradient with weights w p (%.3g of tolerance at %zu: %g vs %g)", e, at, gd[at], m.grads[at]);
    EXPECT(worst(gd, g, m.n_params, 1e-7, 1e-5, NULL) > 1, "DFT changed nothing");
    free(g); free(gd);
    mft_model_free(&m);
}

/* LoRA against PyTorch (tests/gen_ref_lora.py): logits, loss, every adapter's gradient and the
   embedding's (the gradient that flows down through the adapters); then merging gives the same
   logits without them, a frozen model trains only the adapters, and decode refuses them */
static void test_lora(void)
{
    mft_config c;
    mft_error err;
    if (mft_model_config(MODEL, &c, &err)) { EXPECT(0, "%s: %s", MODEL, err.msg); return; }
    FILE *f = fopen("tests/data/ref_lora_stories260K.bin", "rb");
    char magic[8];
    int hdr[3] = { 0, 0, 0 };
    float alpha = 0;
    if (!f || fread(magic, 1, 8, f) != 8 || memcmp(magic, "MFTLORA1", 8) || fread(hdr, 4, 3, f) != 3 || fread(&alpha, 4, 1, f) != 1 ||
        hdr[0] != 2 || hdr[1] != 32 || hdr[2] != 4) { EXPECT(0, "cannot read tests/data/ref_lora_stories260K.bin"); if (f) fclose(f); return; }
    int B = hdr[0], T = hdr[1], R = hdr[2];
    size_t N = (size_t)B * T, V = (size_t)c.vocab_size, D = (size_t)c.dim;
    mft_lora lo, ref;
    mft_model m;
    EXPECT(mft_lora_open(&lo, &c, R, alpha, B, T, 1, &err) == MFT_OK && mft_lora_open(&ref, &c, R, alpha, B, T, 1, &err) == MFT_OK, "lora: %s", err.msg);
    int *tok = malloc((N + (size_t)B) * sizeof(int));
    float *w = fbuf(N), *lg = fbuf(N * V), loss = 0, *demb = fbuf(V * D);
    int ok = fread(tok, 4, N + B, f) == N + B && fread(w, 4, N, f) == N && fread(lo.params, 4, lo.n_params, f) == lo.n_params &&
             fread(lg, 4, N * V, f) == N * V && fread(&loss, 4, 1, f) == 1 && fread(ref.grads, 4, lo.n_params, f) == lo.n_params &&
             fread(demb, 4, V * D, f) == V * D && fgetc(f) == EOF;
    fclose(f);
    EXPECT(ok, "ref_lora_stories260K.bin is truncated or too long");
    EXPECT(ok && mft_model_open(&m, MODEL, B, T, MFT_TRAIN, &err) == MFT_OK, "open");
    if (!ok) return;
    int *in = malloc(N * sizeof(int)), *tg = malloc(N * sizeof(int));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) { in[b * T + t] = tok[b * (T + 1) + t]; tg[b * T + t] = tok[b * (T + 1) + t + 1]; }
    m.lora = &lo;
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, &err) == MFT_OK, "forward: %s", err.msg);
    size_t at = 0;
    double e = worst(m.a.logits, lg, N * V, 5e-5, 1e-5, &at);
    EXPECT(e <= 1, "LoRA logits: worst %.3g of the bound at %zu (%.6f vs %.6f)", e, at, m.a.logits[at], lg[at]);
    double W = m.fwd_weight_sum, L = m.fwd_loss_sum / W;
    EXPECT(fabs(L - loss) <= 1e-6 * fabs(loss), "LoRA loss %.7f vs torch %.7f", L, loss);
    EXPECT(mft_backward(&m, &err) == MFT_OK, "backward");
    for (int l = 0; l < c.n_layers; l++)
        for (int t = 0; t < MFT_LORA_N; t++)
            for (int ab = 0; ab < 2; ab++) {
                int fin, fout;
                mft_lora_shape(&c, t, &fin, &fout);
                size_t n = (size_t)R * (ab ? fout : fin);
                float *got = ab ? mft_lora_b(&lo, &c, l, t, 1) : mft_lora_a(&lo, &c, l, t, 1);
                float *want = ab ? mft_lora_b(&ref, &c, l, t, 1) : mft_lora_a(&ref, &c, l, t, 1);
                double gmax = 0;
                for (size_t i = 0; i < n; i++) { got[i] = (float)(got[i] / W); gmax = fmax(gmax, fabs(want[i])); }
                e = worst(got, want, n, 1e-5 * gmax, 1e-4, &at);
                EXPECT(gmax > 1e-3 && e <= 1, "layer %d target %d %s: worst %.3g of the bound (%.7g vs %.7g)", l, t, ab ? "B" : "A", e, got[at], want[at]);
            }
    double gmax = 0;
    for (size_t i = 0; i < V * D; i++) { m.g.tok_emb[i] = (float)(m.g.tok_emb[i] / W); gmax = fmax(gmax, fabs(demb[i])); }
    e = worst(m.g.tok_emb, demb, V * D, 1e-5 * gmax, 1e-4, &at);
    EXPECT(e <= 1, "embedding gradient through the adapters: worst %.3g (%.7g vs %.7g)", e, m.g.tok_emb[at], demb[at]);
    /* merged: the same logits without adapters */
    mft_zero_grad(&m);
    m.lora = NULL;
    EXPECT(mft_lora_merge(&m, &lo, &err) == MFT_OK && mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK, "merge");
    e = worst(m.a.logits, lg, N * V, 5e-5, 1e-5, &at);
    EXPECT(e <= 1, "merged logits: worst %.3g of the bound at %zu", e, at);
    mft_model_free(&m);
    /* a frozen model: 12 bytes per parameter less, the weights untouched by a step, the
       adapters moved; without adapters its step is refused; decode refuses adapters */
    mft_config c2 = c;
    EXPECT(mft_model_bytes(&c2, B, T, MFT_TRAIN) - mft_model_bytes(&c2, B, T, MFT_TRAIN | MFT_FROZEN) >= 12 * mft_param_count(&c2), "frozen saves nothing");
    EXPECT(mft_model_open(&m, MODEL, B, T, MFT_TRAIN | MFT_FROZEN | MFT_GENERATE, &err) == MFT_OK && !m.grads && !m.adam_m, "frozen open");
    float *w0 = fbuf(m.n_params), *a0 = fbuf(lo.n_params);
    memcpy(w0, m.params, m.n_params * sizeof(float));
    memcpy(a0, lo.params, lo.n_params * sizeof(float));
    mft_train_opts o = mft_train_opts_default();
    EXPECT(mft_train_step(&m, &o, in, tg, w, B, T, NULL, &err) == MFT_ERR_STATE, "a frozen step without adapters: %d", err.status);
    m.lora = &lo;
    mft_step_info info;
    EXPECT(mft_train_step(&m, &o, in, tg, w, B, T, &info, &err) == MFT_OK && info.grad_norm > 0, "frozen LoRA step: %s", err.msg);
    EXPECT(!memcmp(w0, m.params, m.n_params * sizeof(float)), "a LoRA step changed the weights");
    EXPECT(memcmp(a0, lo.params, lo.n_params * sizeof(float)), "a LoRA step left the adapters");
    float *lp;
    EXPECT(mft_decode(&m, 1, 0, &lp, &err) == MFT_ERR_STATE && strstr(err.msg, "merge"), "decode with adapters: %s", err.msg);
    /* a fresh adapter (B = 0) changes nothing */
    mft_lora z;
    EXPECT(mft_lora_open(&z, &c, 8, 16, B, T, 5, &err) == MFT_OK, "open");
    m.lora = NULL;
    mft_forward(&m, in, tg, w, B, T, NULL, NULL);
    memcpy(lg, m.a.logits, N * V * sizeof(float));
    m.lora = &z;
    mft_forward(&m, in, tg, w, B, T, NULL, NULL);
    EXPECT(!memcmp(lg, m.a.logits, N * V * sizeof(float)), "a fresh adapter changed the logits");
    mft_lora_free(&z);
    EXPECT(mft_lora_open(&z, &c, 0, 16, B, T, 5, &err) == MFT_ERR_ARG && !z.arena, "rank 0 accepted");
    free(w0); free(a0); free(in); free(tg); free(tok); free(w); free(lg); free(demb);
    mft_lora_free(&lo);
    mft_lora_free(&ref);
    mft_model_free(&m);
}

/* one F32 tensor of a safetensors file, by name (NULL if absent or not F32) */
static float *st_tensor(const char *path, const char *name, size_t *numel)
{
    FILE *f = fopen(path, "rb");
    uint64_t hn = 0;
    if (!f || fread(&hn, 8, 1, f) != 1 || hn > (1u << 24)) { if (f) fclose(f); return NULL; }
    char *h = malloc(hn + 1);
    float *out = NULL;
    if (fread(h, 1, hn, f) == hn) {
        h[hn] = 0;
        mft_json *j = mft_json_parse(h, (int)hn, NULL);
        int t = j ? mft_json_get(j, mft_json_root(j), name) : -1, dl;
        const char *dt = t >= 0 ? mft_json_str(j, mft_json_get(j, t, "dtype"), &dl) : NULL;
        int off = t >= 0 ? mft_json_get(j, t, "data_offsets") : -1;
        double a, b;
        if (dt && dl == 3 && !memcmp(dt, "F32", 3) && off >= 0 && mft_json_num(j, mft_json_at(j, off, 0), &a) &&
            mft_json_num(j, mft_json_at(j, off, 1), &b)) {
            *numel = (size_t)(b - a) / 4;
            out = fbuf(*numel);
            if (fseek(f, (long)(8 + hn + (uint64_t)a), SEEK_SET) || fread(out, 4, *numel, f) != *numel) { free(out); out = NULL; }
        }
        mft_json_free(j);
    }
    free(h);
    fclose(f);
    return out;
}

/* adapters saved as PEFT does: in transformers' layout, W_merged - W_base = s B A for every
   target, q and k (whose rows maskft keeps in its own RoPE order) included */
static void test_lora_save(void)
{
    mft_model m;
    mft_lora lo;
    mft_error err;
    if (mft_model_open(&m, MODEL, 1, 8, MFT_FORWARD, &err)) { EXPECT(0, "%s", err.msg); return; }
    EXPECT(mft_lora_open(&lo, &m.cfg, 4, 8, 1, 8, 3, &err) == MFT_OK, "lora");
    uint64_t r = 9;
    for (size_t i = 0; i < lo.n_params; i++) lo.params[i] = 0.05f * (2.0f * mft__rand_f32(&r) - 1.0f);
    const char *db = "build/test_lora_base", *dm = "build/test_lora_merged", *da = "build/test_lora_adapter";
    mkdir(db, 0755); mkdir(dm, 0755); mkdir(da, 0755);
    EXPECT(mft_hf_save(&m, db, MFT_DTYPE_F32, NULL, NULL, &err) == MFT_OK, "base: %s", err.msg);
    EXPECT(mft_lora_save(&lo, &m.cfg, da, "stories260K", &err) == MFT_OK, "adapters: %s", err.msg);
    EXPECT(mft_lora_merge(&m, &lo, &err) == MFT_OK && mft_hf_save(&m, dm, MFT_DTYPE_F32, NULL, NULL, &err) == MFT_OK, "merged: %s", err.msg);
    static const char *mod[MFT_LORA_N] = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj", "mlp.up_proj" };
    char sb[128], sm[128], sa[128], name[160];
    snprintf(sb, sizeof sb, "%s/model.safetensors", db);
    snprintf(sm, sizeof sm, "%s/model.safetensors", dm);
    snprintf(sa, sizeof sa, "%s/adapter_model.safetensors", da);
    int checked = 0;
    for (int l = 0; l < m.cfg.n_layers; l += 2)
        for (int t = 0; t < MFT_LORA_N; t++) {
            int in, out;
            size_t nw = 0, nm = 0, na = 0, nb = 0;
            mft_lora_shape(&m.cfg, t, &in, &out);
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, mod[t]);
            float *wb = st_tensor(sb, name, &nw), *wm = st_tensor(sm, name, &nm);
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.lora_A.weight", l, mod[t]);
            float *A = st_tensor(sa, name, &na);
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.lora_B.weight", l, mod[t]);
            float *Bm = st_tensor(sa, name, &nb);
            EXPECT(wb && wm && A && Bm && nw == (size_t)in * out && nm == nw && na == (size_t)4 * in && nb == (size_t)4 * out,
                   "layer %d %s: tensors missing or misshapen", l, mod[t]);
            double worst_d = 0;
            for (int o = 0; wb && wm && A && Bm && o < out; o++)
                for (int i = 0; i < in; i++) {
                    double d = 0;
                    for (int k = 0; k < 4; k++) d += (double)Bm[o * 4 + k] * A[k * in + i];
                    d = fabs((double)wm[(size_t)o * in + i] - wb[(size_t)o * in + i] - lo.scale * d);
                    if (d > worst_d) worst_d = d;
                }
            EXPECT(worst_d < 2e-6, "layer %d %s: merged - base differs from s B A by %g", l, mod[t], worst_d);
            checked++;
            free(wb); free(wm); free(A); free(Bm);
        }
    EXPECT(checked == 3 * MFT_LORA_N, "checked %d", checked);
    char cfgp[128], *cfg = NULL;
    size_t cn;
    snprintf(cfgp, sizeof cfgp, "%s/adapter_config.json", da);
    EXPECT(mft_read_file(cfgp, 1 << 20, &cfg, &cn, &err) == MFT_OK && strstr(cfg, "\"r\": 4") && strstr(cfg, "\"lora_alpha\": 8") &&
           strstr(cfg, "\"peft_type\": \"LORA\""), "adapter_config.json: %s", cfg ? cfg : err.msg);
    mft_free(cfg);
    EXPECT(mft_lora_save(&lo, &m.cfg, "build/no/such/dir", NULL, &err) == MFT_ERR_IO, "a missing folder: %s", err.msg);
    mft_lora_free(&lo);
    mft_model_free(&m);
}

/* The weight of position t belongs to predicting targets[t] from inputs[0..t]: a single weight
   at t gives exactly that position's cross-entropy, and later inputs cannot change it. */
static void test_mask_alignment(void)
{
    mft_config c = tiny_config(0);
    mft_model m;
    int B = 1, T = 8, in[8], tg[8];
    float w[8] = { 0 };
    EXPECT(open_tiny(&m, &c, B, T, MFT_TRAIN, 1) == MFT_OK, "init");
    random_batch(in, tg, NULL, B, T, c.vocab_size, 11);
    w[3] = 1.0f;
    EXPECT(mft_forward(&m, in, tg, w, B, T, NULL, NULL) == MFT_OK, "forward");
    const float *lg = m.a.logits + 3 * (size_t)c.vocab_size;
    double mx = -1e30, s = 0.0;
    for (int i = 0; i < c.vocab_size; i++) mx = lg[i] > mx ? lg[i] : mx;
    for (int i = 0; i < c.vocab_size; i++) s += exp(lg[i] - mx);
    double ce = mx + log(s) - lg[tg[3]];
    EXPECT(fabs(m.fwd_loss_sum - ce) < 1e-5 && m.fwd_weight_sum == 1.0, "loss %.6f vs CE at t=3 %.6f", m.fwd_loss_sum, ce);
    double l0 = m.fwd_loss_sum;
    in[4] = (in[4] + 1) % c.vocab_size; in[7] = (in[7] + 5) % c.vocab_size; tg[5] = (tg[5] + 1) % c.vocab_size;
    mft_forward(&m, in, tg, w, B, T, NULL, NULL);
    EXPECT(m.fwd_loss_sum == l0, "inputs after t=3 and other targets changed the loss: causality or mask broken");
    in[3] = (in[3] + 1) % c.vocab_size;
    mft_forward(&m, in, tg, w, B, T, NULL, NULL);
    EXPECT(m.fwd_loss_sum != l0, "input at t=3 did not change the loss of position 3");
    /* gradient flows only from t=3: the logits gradient is zero on every other row */
    mft_backward(&m, NULL);
    int other_nonzero = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < c.vocab_size; i++)
            if (t != 3 && m.a.logits[(size_t)t * c.vocab_size + i] != 0.0f) other_nonzero++;
    EXPECT(other_nonzero == 0, "%d logit gradients nonzero outside position 3", other_nonzero);
    mft_model_free(&m);
}

static void test_empty_mask(void)
{
    mft_config c = tiny_config(1);
    mft_model m;
    int in[16], tg[16];
    float w[16] = { 0 };
    EXPECT(open_tiny(&m, &c, 2, 8, MFT_TRAIN, 2) == MFT_OK, "init");
    random_batch(in, tg, NULL, 2, 8, c.vocab_size, 3);
    float *before = fbuf(m.n_params);
    memcpy(before, m.params, m.n_params * 4);
    mft_train_opts o = mft_train_opts_default();
    mft_step_info info;
    mft_error err;
    mft_status s = mft_train_step(&m, &o, in, tg, w, 2, 8, &info, &err);
    EXPECT(s == MFT_EMPTY_MASK, "status %d, want MFT_EMPTY_MASK", s);
    EXPECT(info.loss == 0.0f && info.weight_sum == 0.0, "loss %g weight %g", info.loss, info.weight_sum);
    EXPECT(!memcmp(before, m.params, m.n_params * 4), "weights changed on an empty mask");
    EXPECT(m.step == 0, "step counter advanced");
    EXPECT(strstr(err.msg, "every loss weight was 0") != NULL, "message: %s", err.msg);
    /* and a normal step afterwards still trains (weight decay alone would move the weights) */
    w[5] = 1.0f;
    EXPECT(mft_train_step(&m, &o, in, tg, w, 2, 8, &info, NULL) == MFT_OK, "step");
    EXPECT(memcmp(before, m.params, m.n_params * 4) != 0 && m.step == 1, "weights did not change");
    free(before);
    mft_model_free(&m);
}

/* gradient accumulation: one batch of 4 rows equals 2 micro-batches of 2 rows, because the
   loss is normalised by the weight sum of the whole step */
static void test_grad_accumulation(void)
{
    mft_config c = tiny_config(0);
    mft_model a, b;
    int in[32], tg[32];
    float w[32];
    EXPECT(open_tiny(&a, &c, 4, 8, MFT_TRAIN, 4) == MFT_OK, "init a");
    EXPECT(open_tiny(&b, &c, 2, 8, MFT_TRAIN, 4) == MFT_OK, "init b");
    random_batch(in, tg, w, 4, 8, c.vocab_size, 8);
    for (int i = 0; i < 16; i++) w[i] *= 3.0f; /* micro-batches with different weight sums */
    mft_train_opts o = mft_train_opts_default();
    mft_step_info ia, ib;
    EXPECT(mft_train_step(&a, &o, in, tg, w, 4, 8, &ia, NULL) == MFT_OK, "big step");
    EXPECT(mft_forward(&b, in, tg, w, 2, 8, NULL, NULL) == MFT_OK && mft_backward(&b, NULL) == MFT_OK, "micro 1");
    EXPECT(mft_forward(&b, in + 16, tg + 16, w + 16, 2, 8, NULL, NULL) == MFT_OK && mft_backward(&b, NULL) == MFT_OK, "micro 2");
    EXPECT(mft_step(&b, &o, &ib, NULL) == MFT_OK, "accumulated step");
    EXPECT(fabsf(ia.loss - ib.loss) < 1e-5f * fabsf(ia.loss), "loss %.7f vs %.7f", ia.loss, ib.loss);
    EXPECT(fabsf(ia.grad_norm - ib.grad_norm) < 1e-5f * ia.grad_norm, "grad norm %.7f vs %.7f", ia.grad_norm, ib.grad_norm);
    EXPECT(worst(b.params, a.params, a.n_params, 1e-6, 1e-5, NULL) <= 1, "weights after the step differ");
    mft_model_free(&a);
    mft_model_free(&b);
}

/* MFT_CHECKPOINT: backward recomputes each layer from its input and gets the very same
   gradients, bit for bit (plain, Qwen3's head norms, Qwen2's biases, packed rows, LoRA on a
   frozen model), in a fraction of the memory; a forward-only model keeps one layer too */
static void test_grad_checkpoint(void)
{
    for (int fam = 0; fam < 4; fam++) {
        mft_config c = tiny_config(fam & 1);
        c.n_layers = 3;
        if (fam == 1) { c.qk_norm = 1; c.head_dim = 6; c.arch = MFT_ARCH_QWEN3; }
        if (fam == 2) { c.qkv_bias = 1; c.arch = MFT_ARCH_QWEN2; }
        int B = 2, T = 9, lora = fam == 3, fl = MFT_TRAIN | (lora ? MFT_FROZEN : 0);
        mft_model m[2];
        mft_lora lo[2];
        mft_error err;
        EXPECT(open_tiny(&m[0], &c, B, T, fl, 21) == MFT_OK && open_tiny(&m[1], &c, B, T, fl | MFT_CHECKPOINT, 21) == MFT_OK, "init");
        int in[18], tg[18], pos[18];
        float w[18];
        random_batch(in, tg, w, B, T, c.vocab_size, 9);
        for (int i = 0; i < B * T; i++) pos[i] = i < T ? i : (i - T < 5 ? i - T : i - T - 5);
        mft_train_opts o = mft_train_opts_default();
        for (int i = 0; i < 2; i++) {
            m[i].n_threads = 2;
            if (lora) {
                EXPECT(mft_lora_open(&lo[i], &c, 2, 4.0f, B, T, 5, &err) == MFT_OK, "lora: %s", err.msg);
                m[i].lora = &lo[i];
            }
        }
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < 2; i++) {
                EXPECT(mft_forward_packed(&m[i], in, tg, w, s ? pos : NULL, B, T, NULL, &err) == MFT_OK, "forward: %s", err.msg);
                EXPECT(mft_backward(&m[i], &err) == MFT_OK, "backward: %s", err.msg);
            }
            if (lora)
                EXPECT(!memcmp(lo[0].grads, lo[1].grads, lo[0].n_params * 4), "family %d step %d: LoRA gradients differ with checkpointing", fam, s);
            else
                EXPECT(!memcmp(m[0].grads, m[1].grads, m[0].n_params * 4), "family %d step %d: gradients differ with checkpointing", fam, s);
            double gs = 0.0;
            for (size_t i = 0; i < (lora ? lo[0].n_params : m[0].n_params); i++) gs += fabs(lora ? lo[0].grads[i] : m[0].grads[i]);
            EXPECT(gs > 1e-3, "family %d: no gradient to compare (%g)", fam, gs);
            for (int i = 0; i < 2; i++) EXPECT(mft_step(&m[i], &o, NULL, &err) == MFT_OK, "step: %s", err.msg);
        }
        EXPECT(!memcmp(m[0].params, m[1].params, m[0].n_params * 4), "family %d: weights differ with checkpointing", fam);
        for (int i = 0; i < 2; i++) {
            if (lora) mft_lora_free(&lo[i]);
            mft_model_free(&m[i]);
        }
    }
    /* the SmolLM2-135M shape at 4 x 2048: the block, checkpointed, fits in 8 GB */
    mft_config c;
    memset(&c, 0, sizeof c);
    c.dim = 576; c.hidden_dim = 1536; c.n_layers = 30; c.n_heads = 9; c.n_kv_heads = 3;
    c.vocab_size = 49152; c.seq_len = 2048; c.shared_classifier = 1; c.norm_eps = 1e-5f; c.rope_theta = 1e5f;
    double full = (double)mft_model_bytes(&c, 4, 2048, MFT_TRAIN), ck = (double)mft_model_bytes(&c, 4, 2048, MFT_TRAIN | MFT_CHECKPOINT);
    double ev = (double)mft_model_bytes(&c, 4, 2048, MFT_FORWARD);
    printf("    135M at 4 x 2048: %.2f GB, checkpointed %.2f GB, forward only %.2f GB\n", full / 1e9, ck / 1e9, ev / 1e9);
    EXPECT(ck < 8e9 && ck < 0.5 * full, "135M at 4 x 2048 with checkpointing: %.2f GB (without: %.2f GB)", ck / 1e9, full / 1e9);
    EXPECT(ev < 0.3 * full, "forward only: %.2f GB", ev / 1e9);
}

/* packing: two examples and a padded tail in one row give the loss and gradients the two
   examples give one by one, and the attention of one never reaches into the other */
static void test_packing(void)
{
    mft_config c = tiny_config(0);
    mft_model a, b;
    EXPECT(open_tiny(&a, &c, 1, 12, MFT_TRAIN, 5) == MFT_OK && open_tiny(&b, &c, 1, 12, MFT_TRAIN, 5) == MFT_OK, "init");
    int in[12], tg[12], pos[12];
    float w[12];
    random_batch(in, tg, w, 1, 12, c.vocab_size, 21);
    for (int t = 0; t < 12; t++) w[t] = t >= 10 ? 0.0f : 0.25f + 0.5f * (float)(t % 3); /* 10, 11: padding */
    for (int t = 0; t < 12; t++) pos[t] = t < 4 ? t : t < 10 ? t - 4 : t - 10;         /* 4 + 6 + 2 */
    EXPECT(mft_forward_packed(&a, in, tg, w, pos, 1, 12, NULL, NULL) == MFT_OK && mft_backward(&a, NULL) == MFT_OK, "packed");
    double packed_loss = a.step_loss_sum;
    EXPECT(mft_forward(&b, in, tg, w, 1, 4, NULL, NULL) == MFT_OK && mft_backward(&b, NULL) == MFT_OK, "first alone");
    EXPECT(mft_forward(&b, in + 4, tg + 4, w + 4, 1, 6, NULL, NULL) == MFT_OK && mft_backward(&b, NULL) == MFT_OK, "second alone");
    EXPECT(fabs(packed_loss - b.step_loss_sum) < 1e-5 * fabs(packed_loss), "loss %.7f packed vs %.7f alone", packed_loss, b.step_loss_sum);
    size_t at = 0;
    /* the products sum in blocks, so one row of 12 and rows of 4 and 6 round differently: up to
       a few 1e-6 of the largest gradient (132 here), which leaves 1e-4 for an element near 0 */
    double bad = worst(a.grads, b.grads, a.n_params, 1e-4, 1e-4, &at);
    EXPECT(bad <= 1, "gradients differ (%.3g of tolerance at %zu: %.9g vs %.9g)", bad, at, a.grads[at], b.grads[at]);
    /* the logits of the second example do not depend on the first one's tokens */
    float *l1 = fbuf(12 * (size_t)c.vocab_size);
    EXPECT(mft_forward_packed(&a, in, NULL, NULL, pos, 1, 12, NULL, NULL) == MFT_OK, "packed forward");
    memcpy(l1, a.a.logits, 12 * (size_t)c.vocab_size * sizeof(float));
    for (int t = 0; t < 4; t++) in[t] = (in[t] + 1) % c.vocab_size;
    EXPECT(mft_forward_packed(&a, in, NULL, NULL, pos, 1, 12, NULL, NULL) == MFT_OK, "packed forward 2");
    EXPECT(!memcmp(l1 + 4 * c.vocab_size, a.a.logits + 4 * c.vocab_size, 8 * (size_t)c.vocab_size * sizeof(float)), "attention leaked across examples");
    EXPECT(memcmp(l1, a.a.logits, 4 * (size_t)c.vocab_size * sizeof(float)), "changing the first example changed nothing");
    /* positions that do not count up from 0 are refused */
    int badpos[12] = { 0, 1, 2, 4 };
    mft_error err;
    EXPECT(mft_forward_packed(&a, in, NULL, NULL, badpos, 1, 12, NULL, &err) == MFT_ERR_ARG, "bad positions accepted");
    free(l1);
    mft_model_free(&a);
    mft_model_free(&b);
}

/* rewrites a checkpoint's trailing hash after bytes were changed (what a crafted file does) */
static void rehash(char *b, long n)
{
    uint64_t h = mft_hash(MFT_HASH_SEED, b, (size_t)n - 8);
    memcpy(b + n - 8, &h, 8);
}

/* a checkpoint is validated like a model file: every header field in range, every value one a
   run can produce (finite; AdamW's second moments >= 0), even with the hash recomputed; no
   writer saves a non-finite model; a checkpoint opens as a model (its weights); a header's
   context claim does not size the memory (MFT_MAX_CONTEXT, and MFT_CONTEXT's T) */
static void test_checkpoint_strict(void)
{
    mft_config c = tiny_config(0);
    mft_model a, r;
    EXPECT(open_tiny(&a, &c, 2, 8, MFT_TRAIN, 9) == MFT_OK && open_tiny(&r, &c, 2, 8, MFT_TRAIN, 5) == MFT_OK, "init");
    mft_train_opts o = mft_train_opts_default();
    int in[16], tg[16];
    float w[16];
    random_batch(in, tg, w, 2, 8, c.vocab_size, 3);
    EXPECT(mft_train_step(&a, &o, in, tg, w, 2, 8, NULL, NULL) == MFT_OK, "step");
    const char *ck = "build/test_strict.ckpt", *bad = "build/test_strict_bad.ckpt";
    uint64_t st[2] = { 1, 2 }, back[2];
    mft_error err;
    EXPECT(mft_checkpoint_save(&a, ck, st, sizeof st, &err) == MFT_OK, "save: %s", err.msg);
    long n;
    char *b = slurp(ck, &n);
    size_t hb = sizeof(mft__ckpt_head), np = a.n_params;
    EXPECT(b && n == (long)(hb + 12 * np + sizeof st + 8), "layout");
    /* a negative second moment, hash recomputed: refused, the model untouched */
    float neg = -1.0f, before = r.params[3];
    memcpy(b + hb + 8 * np + 4 * 7, &neg, 4);
    rehash(b, n);
    spit(bad, b, n);
    EXPECT(mft_checkpoint_load(&r, bad, back, sizeof back, &err) == MFT_ERR_FORMAT && strstr(err.msg, "second moment"),
           "negative v: %s", err.msg);
    EXPECT(r.params[3] == before, "a refused checkpoint changed the model");
    /* a NaN weight, and header fields out of range (step, has_adam), each with its hash */
    char *c2 = malloc((size_t)n);
    float nan = NAN;
    memcpy(c2, b, (size_t)n), memcpy(c2 + hb + 4 * 11, &nan, 4), rehash(c2, n), spit(bad, c2, n);
    EXPECT(mft_checkpoint_load(&r, bad, back, sizeof back, &err) == MFT_ERR_FORMAT && strstr(err.msg, "weight"),
           "NaN weight: %s", err.msg);
    mft_model m;
    EXPECT(mft_model_open(&m, bad, 1, 4, MFT_FORWARD, &err) == MFT_ERR_FORMAT, "NaN weight opened as a model");
    int64_t step = -1000000000000LL;
    memcpy(c2, b, (size_t)n), memcpy(c2 + offsetof(mft__ckpt_head, step), &step, 8), rehash(c2, n), spit(bad, c2, n);
    EXPECT(mft_checkpoint_load(&r, bad, back, sizeof back, &err) == MFT_ERR_FORMAT && strstr(err.msg, "out of range"),
           "negative step: %s", err.msg);
    int32_t ha = 7;
    memcpy(c2, b, (size_t)n), memcpy(c2 + offsetof(mft__ckpt_head, has_adam), &ha, 4), rehash(c2, n), spit(bad, c2, n);
    EXPECT(mft_checkpoint_load(&r, bad, back, sizeof back, &err) == MFT_ERR_FORMAT, "has_adam 7: %s", err.msg);
    int64_t ub = (int64_t)1 << 50;
    memcpy(c2, b, (size_t)n), memcpy(c2 + offsetof(mft__ckpt_head, user_bytes), &ub, 8), rehash(c2, n), spit(bad, c2, n);
    EXPECT(mft_checkpoint_load(&r, bad, back, sizeof back, &err) == MFT_ERR_FORMAT, "user_bytes 2^50: %s", err.msg);
    free(c2);
    /* a checkpoint is a model file: its config and weights */
    mft_config cc;
    EXPECT(mft_model_config(ck, &cc, &err) == MFT_OK && cc.dim == c.dim && cc.n_layers == c.n_layers &&
           cc.vocab_size == c.vocab_size && cc.seq_len == c.seq_len, "config of a checkpoint: %s", err.msg);
    EXPECT(mft_model_open(&m, ck, 1, 4, MFT_FORWARD, &err) == MFT_OK &&
           !memcmp(m.params, a.params, np * sizeof(float)), "checkpoint opened as a model: %s", err.msg);
    mft_model_free(&m);
    /* never written: a model or checkpoint holding a NaN */
    a.params[17] = NAN;
    EXPECT(mft_checkpoint_save(&a, bad, st, sizeof st, &err) == MFT_ERR_NONFINITE, "NaN checkpoint saved");
    EXPECT(mft_model_save(&a, bad, &err) == MFT_ERR_NONFINITE && strstr(err.msg, "not written"), "NaN model saved: %s",
           err.msg);
    a.params[17] = 0.0f;
    a.adam_v[2] = -1.0f;
    EXPECT(mft_checkpoint_save(&a, bad, st, sizeof st, &err) == MFT_ERR_NONFINITE, "negative v saved");
    /* a version-1 header claiming a context of 2^20 positions: served at most MFT_MAX_CONTEXT
       (file_ctx keeps the claim), and with MFT_CONTEXT only T */
    a.adam_v[2] = 0.0f;
    EXPECT(mft_model_save(&a, bad, &err) == MFT_OK, "save v0");
    char *v0 = slurp(bad, &n);
    size_t core = 0, sz[MFT__NT];
    mft__tensor_sizes(&c, sz);
    for (int i = 0; i < 11; i++) core += sz[i];
    size_t v1n = 256 + 4 * np;
    char *v1 = calloc(1, v1n);
    uint32_t magic = MFT__AK42;
    int32_t ver = 1, hd[7] = { c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, 1 << 20 };
    memcpy(v1, &magic, 4), memcpy(v1 + 4, &ver, 4), memcpy(v1 + 8, hd, 28);
    v1[36] = 0; /* separate classifier */
    const mft_params *pw = &a.w;
    const float *order[12] = { pw->rms_att, pw->rms_ffn, pw->rms_final, pw->tok_emb, pw->wq, pw->wk,
                               pw->wv, pw->wo, pw->w1, pw->w2, pw->w3, pw->wcls };
    size_t cnt[12] = { sz[1], sz[6], sz[10], sz[0], sz[2], sz[3], sz[4], sz[5], sz[7], sz[8], sz[9], sz[11] }, at = 256;
    for (int i = 0; i < 12; i++) memcpy(v1 + at, order[i], 4 * cnt[i]), at += 4 * cnt[i];
    EXPECT(at == v1n, "v1 layout");
    spit(bad, v1, (long)v1n);
    EXPECT(mft_model_config(bad, &cc, &err) == MFT_OK && cc.seq_len == MFT_MAX_CONTEXT && cc.file_ctx == 1 << 20,
           "v1 context claim: seq_len %d file_ctx %d (%s)", cc.seq_len, cc.file_ctx, err.msg);
    size_t full = mft_model_bytes(&cc, 1, 1, MFT_GENERATE), served = mft_model_bytes(&cc, 1, 40, MFT_GENERATE | MFT_CONTEXT);
    EXPECT(full < (size_t)(64 << 20) && served < full / 8, "memory: %zu full, %zu served", full, served);
    EXPECT(mft_model_open(&m, bad, 1, 40, MFT_GENERATE | MFT_CONTEXT, &err) == MFT_OK && m.cfg.seq_len == 40 &&
           m.cfg.file_ctx == 1 << 20 && !memcmp(m.params, a.params, np * sizeof(float)), "MFT_CONTEXT open: %s", err.msg);
    mft_model_free(&m);
    /* the whole context stays with a file whose weights were read at a smaller one */
    EXPECT(mft_model_open(&m, ck, 1, 5, MFT_GENERATE | MFT_CONTEXT, &err) == MFT_OK && m.cfg.seq_len == 5, "ctx 5");
    EXPECT(mft_model_save(&m, bad, &err) == MFT_OK && mft_model_config(bad, &cc, &err) == MFT_OK &&
           cc.seq_len == c.seq_len, "the file's context written back: %d", cc.seq_len);
    mft_model_free(&m);
    free(v0);
    free(v1);
    free(b);
    remove(ck);
    remove(bad);
    mft_model_free(&a);
    mft_model_free(&r);
}

/* a run stopped at a checkpoint and resumed ends on the same weights, bit for bit, as one run;
   truncated or damaged checkpoints are refused and leave the model as it was */
static void test_checkpoint_resume(void)
{
    mft_config c = tiny_config(0);
    mft_model a, b, r;
    EXPECT(open_tiny(&a, &c, 2, 8, MFT_TRAIN, 9) == MFT_OK && open_tiny(&b, &c, 2, 8, MFT_TRAIN, 9) == MFT_OK &&
           open_tiny(&r, &c, 2, 8, MFT_TRAIN, 1234) == MFT_OK, "init");
    mft_train_opts o = mft_train_opts_default();
    o.lr = 3e-3f; o.warmup_steps = 2; o.total_steps = 6; o.weight_decay = 0.1f;
    int in[16], tg[16];
    float w[16];
    const char *ck = "build/test_resume.ckpt";
    uint64_t state[2] = { 42, 7 }, back[2] = { 0, 0 };
    for (int s = 0; s < 6; s++) {
        random_batch(in, tg, w, 2, 8, c.vocab_size, 100 + (uint64_t)s);
        EXPECT(mft_train_step(&a, &o, in, tg, w, 2, 8, NULL, NULL) == MFT_OK, "step a");
        if (s < 3) EXPECT(mft_train_step(&b, &o, in, tg, w, 2, 8, NULL, NULL) == MFT_OK, "step b");
        if (s == 2) EXPECT(mft_checkpoint_save(&b, ck, state, sizeof state, NULL) == MFT_OK, "save");
        if (s >= 3) {
            if (s == 3) EXPECT(mft_checkpoint_load(&r, ck, back, sizeof back, NULL) == MFT_OK && back[0] == 42 && back[1] == 7 && r.step == 3, "load");
            EXPECT(mft_train_step(&r, &o, in, tg, w, 2, 8, NULL, NULL) == MFT_OK, "step r");
        }
    }
    EXPECT(!memcmp(a.params, r.params, a.n_params * sizeof(float)) && !memcmp(a.adam_v, r.adam_v, a.n_params * sizeof(float)),
           "resumed run differs from the uninterrupted one");
    /* damage: truncated, one byte flipped, wrong run-state size, another shape */
    long n;
    char *bytes = slurp(ck, &n);
    float before = r.params[5];
    mft_error err;
    spit("build/test_trunc.ckpt", bytes, n - 100);
    EXPECT(mft_checkpoint_load(&r, "build/test_trunc.ckpt", back, sizeof back, &err) == MFT_ERR_FORMAT && strstr(err.msg, "truncated"), "truncated: %s", err.msg);
    bytes[n / 2] ^= 0x10;
    spit("build/test_trunc.ckpt", bytes, n);
    EXPECT(mft_checkpoint_load(&r, "build/test_trunc.ckpt", back, sizeof back, &err) == MFT_ERR_FORMAT && strstr(err.msg, "damaged"), "flipped byte: %s", err.msg);
    EXPECT(r.params[5] == before, "a refused checkpoint changed the model");
    EXPECT(mft_checkpoint_load(&r, ck, back, 4, &err) == MFT_ERR_FORMAT, "run-state size not checked");
    mft_config c2 = tiny_config(1);
    mft_model o2;
    EXPECT(open_tiny(&o2, &c2, 1, 8, MFT_TRAIN, 3) == MFT_OK, "init other");
    EXPECT(mft_checkpoint_load(&o2, ck, back, sizeof back, &err) == MFT_ERR_FORMAT && strstr(err.msg, "another shape"), "shape: %s", err.msg);
    EXPECT(mft_checkpoint_load(&o2, "build/nonexistent.ckpt", back, sizeof back, &err) == MFT_ERR_IO, "missing file");
    free(bytes);
    remove("build/test_trunc.ckpt");
    remove(ck);
    mft_model_free(&o2);
    mft_model_free(&a);
    mft_model_free(&b);
    mft_model_free(&r);
}

/* forgetting metrics on cases worked out by hand */
static void test_metrics(void)
{
    /* two tokens: P = (1/2, 1/2), Q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3) */
    float p[2] = { 0.0f, 0.0f }, q[2] = { logf(3.0f), 0.0f }, q2[2] = { 5.0f, 5.0f };
    double kl = mft_kl_logits(p, q, 2), want = 0.5 * log(4.0 / 3.0);
    EXPECT(fabs(kl - want) < 1e-7, "KL %.9f, want %.9f", kl, want);
    double rev = mft_kl_logits(q, p, 2), wrev = 0.75 * log(1.5) + 0.25 * log(0.5); /* not symmetric */
    EXPECT(fabs(rev - wrev) < 1e-7, "KL(Q||P) %.9f, want %.9f", rev, wrev);
    EXPECT(mft_kl_logits(p, q2, 2) < 1e-15 && mft_kl_logits(p, p, 2) == 0.0, "KL of identical distributions is %g", mft_kl_logits(p, q2, 2));
    float big[3] = { 1000.0f, 0.0f, -1000.0f }, big2[3] = { 0.0f, 1000.0f, 0.0f };
    EXPECT(fabs(mft_kl_logits(big, big2, 3) - 1000.0) < 1e-3, "large logits: %g", mft_kl_logits(big, big2, 3));
    float nanq[2] = { NAN, 0.0f };
    EXPECT(isnan(mft_kl_logits(p, nanq, 2)), "NaN logits gave KL %g, not NaN", mft_kl_logits(p, nanq, 2));
    /* loops at the end of a generation */
    int ids[40];
    for (int i = 0; i < 40; i++) ids[i] = i;
    EXPECT(mft_tail_loop(ids, 40) == 0, "no loop found a loop");
    for (int i = 20; i < 40; i++) ids[i] = 100 + i % 2;
    EXPECT(mft_tail_loop(ids, 40) == 2, "period-2 loop: %d", mft_tail_loop(ids, 40));
    for (int i = 0; i < 40; i++) ids[i] = 7;
    EXPECT(mft_tail_loop(ids, 11) == 0 && mft_tail_loop(ids, 12) == 1, "a run needs 12 tokens");
    for (int i = 0; i < 40; i++) ids[i] = i < 10 ? i : 50 + (i - 10) % 9;
    EXPECT(mft_tail_loop(ids, 37) == 9 && mft_tail_loop(ids, 36) == 0, "period 9 needs 27 tokens: %d %d", mft_tail_loop(ids, 37), mft_tail_loop(ids, 36));
    /* the public JSON reader */
    mft_error err;
    mft_json *j = mft_json_parse("{\"query\": \"caf\\u00e9\", \"choices\": [\"a\", \"b\"], \"gold\": 1}", -1, &err);
    int r = mft_json_root(j), n, ch = mft_json_get(j, r, "choices");
    double g = 0;
    const char *qs = mft_json_str(j, mft_json_get(j, r, "query"), &n);
    EXPECT(j && qs && n == 5 && !memcmp(qs, "caf\xc3\xa9", 5) && mft_json_len(j, ch) == 2 && mft_json_num(j, mft_json_get(j, r, "gold"), &g) && g == 1.0, "json reader");
    EXPECT(mft_json_at(j, ch, 2) == -1 && mft_json_get(j, r, "nope") == -1 && !mft_json_str(j, ch, NULL), "json reader misses");
    mft_json_free(j);
    EXPECT(!mft_json_parse("{\"a\": [1, 2}", -1, &err) && err.status == MFT_ERR_FORMAT, "bad JSON accepted");
    /* documents whose strings are all empty: still strings (found by fuzzing: no string pool) */
    const char *empties[3] = { "\"\"", "[\"\"]", "{\"\": \"\"}" };
    for (int i = 0; i < 3; i++) {
        j = mft_json_parse(empties[i], -1, &err);
        r = mft_json_root(j);
        int node = i == 0 ? r : i == 1 ? mft_json_at(j, r, 0) : mft_json_get(j, r, "");
        n = -1;
        qs = mft_json_str(j, node, &n);
        EXPECT(j && node >= 0 && qs && n == 0, "%s: the empty string is not a string (node %d)", empties[i], node);
        mft_json_free(j);
    }
}

/* ---- the real model against PyTorch ------------------------------------------------------ */

typedef struct {
    int B, T, nsteps;
    float opt[6];
    int *tokens;
    float *weights, *logits, loss, *grads, *losses;
} ref_t;

static int load_ref(const char *path, const mft_config *c, ref_t *r)
{
    FILE *f = fopen(path, "rb");
    char magic[8];
    if (!f) return 0;
    int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, "MFTREF01", 8);
    ok = ok && fread(&r->B, 4, 1, f) == 1 && fread(&r->T, 4, 1, f) == 1 && fread(&r->nsteps, 4, 1, f) == 1;
    ok = ok && r->B > 0 && r->B < 64 && r->T > 0 && r->T <= c->seq_len && r->nsteps > 0 && r->nsteps < 100;
    if (!ok) { fclose(f); return 0; }
    size_t N = (size_t)r->B * r->T, V = (size_t)c->vocab_size, P = mft_param_count(c);
    r->tokens = malloc((size_t)r->B * (r->T + 1) * sizeof(int));
    r->weights = fbuf(N); r->logits = fbuf(N * V); r->grads = fbuf(P); r->losses = fbuf((size_t)r->nsteps + 1);
    ok = fread(r->opt, 4, 6, f) == 6 && fread(r->tokens, 4, (size_t)r->B * (r->T + 1), f) == (size_t)r->B * (r->T + 1);
    ok = ok && fread(r->weights, 4, N, f) == N && fread(r->logits, 4, N * V, f) == N * V && fread(&r->loss, 4, 1, f) == 1;
    ok = ok && fread(r->grads, 4, P, f) == P && fread(r->losses, 4, (size_t)r->nsteps + 1, f) == (size_t)r->nsteps + 1;
    ok = ok && fgetc(f) == EOF;
    fclose(f);
    return ok;
}

/* Tolerances against the float64 PyTorch reference (stated in README), about 10x what the
   float32 engine measures on x86 (AVX2 and scalar): logits |d| <= 5e-5 + 1e-5 |ref| (measured
   6e-6 AVX2, 1.6e-5 scalar), each gradient tensor |d| <= 1e-5 max|ref| + 1e-4 |ref| (measured
   <= 8.4e-7 max|ref|), losses before and after 3 AdamW steps within 1e-6 relative (measured
   <= 1e-7). */
static void test_pytorch_reference(void)
{
    mft_model m;
    mft_error err;
    ref_t r;
    mft_config c;
    if (mft_model_config(MODEL, &c, &err)) { EXPECT(0, "%s: %s", MODEL, err.msg); return; }
    if (!load_ref("tests/data/ref_stories260K.bin", &c, &r)) { EXPECT(0, "cannot read tests/data/ref_stories260K.bin"); return; }
    int B = r.B, T = r.T;
    size_t N = (size_t)B * T, V = (size_t)c.vocab_size;
    EXPECT(mft_model_open(&m, MODEL, B, T, MFT_TRAIN, &err) == MFT_OK, "open: %s", err.msg);
    int *in = malloc(N * sizeof(int)), *tg = malloc(N * sizeof(int));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            in[b * T + t] = r.tokens[b * (T + 1) + t];
            tg[b * T + t] = r.tokens[b * (T + 1) + t + 1];
        }
    EXPECT(mft_forward(&m, in, tg, r.weights, B, T, NULL, &err) == MFT_OK, "forward: %s", err.msg);
    size_t where = 0;
    double e = worst(m.a.logits, r.logits, N * V, 5e-5, 1e-5, &where);
    EXPECT(e <= 1, "logits: worst %.3g of the bound at %zu (%.6f vs %.6f)", e, where, m.a.logits[where], r.logits[where]);
    double loss = m.fwd_loss_sum / m.fwd_weight_sum;
    EXPECT(fabs(loss - r.loss) <= 1e-6 * fabs(r.loss), "loss %.7f vs torch %.7f", loss, r.loss);
    EXPECT(mft_backward(&m, &err) == MFT_OK, "backward");
    float *g = fbuf(m.n_params);
    for (size_t i = 0; i < m.n_params; i++) g[i] = (float)(m.grads[i] / m.step_weight_sum);
    for (int ti = 0; ti < mft_tensor_count(&c); ti++) {
        mft_tensor_info inf = mft_tensor_at(&c, ti);
        double gmax = 0.0;
        for (size_t j = 0; j < inf.numel; j++) gmax = fmax(gmax, fabs(r.grads[inf.offset + j]));
        e = worst(g + inf.offset, r.grads + inf.offset, inf.numel, 1e-5 * gmax, 1e-4, &where);
        EXPECT(e <= 1, "grad %s: worst %.3g of the bound (%.7g vs %.7g)", inf.name, e, g[inf.offset + where], r.grads[inf.offset + where]);
    }
    /* three AdamW steps on the same batch; clipping is active (torch's grad norm: 41.1009079) */
    mft_train_opts o = mft_train_opts_default();
    o.lr = r.opt[0]; o.beta1 = r.opt[1]; o.beta2 = r.opt[2]; o.eps = r.opt[3]; o.weight_decay = r.opt[4]; o.max_grad_norm = r.opt[5];
    mft_step_info info;
    EXPECT(mft_step(&m, &o, &info, &err) == MFT_OK, "step 1");
    EXPECT(fabs(info.grad_norm - 41.1009079) < 4e-5, "grad norm %.7f vs torch 41.1009079 (printed by gen_ref.py)", info.grad_norm);
    for (int s = 1; s <= r.nsteps; s++) {
        mft_forward(&m, in, tg, r.weights, B, T, NULL, NULL);
        loss = m.fwd_loss_sum / m.fwd_weight_sum;
        EXPECT(fabs(loss - r.losses[s]) <= 1e-6 * fabs(r.losses[s]), "loss after %d steps %.7f vs torch %.7f", s, loss, r.losses[s]);
        if (s < r.nsteps) { mft_backward(&m, NULL); mft_step(&m, &o, NULL, NULL); }
    }
    free(g); free(in); free(tg);
    free(r.tokens); free(r.weights); free(r.logits); free(r.grads); free(r.losses);
    mft_model_free(&m);
}

/* packed rows and the context anchor against PyTorch (tests/gen_ref_packed.py): the objective
   (sum w CE + sum aw KL(base || model)) / sum w and its gradient, on stories260K */
static void test_pytorch_packed_anchor(void)
{
    mft_config c;
    mft_error err;
    if (mft_model_config(MODEL, &c, &err)) { EXPECT(0, "%s: %s", MODEL, err.msg); return; }
    FILE *f = fopen("tests/data/ref_packed_stories260K.bin", "rb");
    char magic[8];
    int B = 0, T = 0;
    if (!f || fread(magic, 1, 8, f) != 8 || memcmp(magic, "MFTREF02", 8) || fread(&B, 4, 1, f) != 1 || fread(&T, 4, 1, f) != 1 ||
        B != 2 || T != 32) { EXPECT(0, "cannot read tests/data/ref_packed_stories260K.bin"); if (f) fclose(f); return; }
    size_t N = (size_t)B * T, V = (size_t)c.vocab_size, P = mft_param_count(&c);
    int *tok = malloc((N + (size_t)B) * sizeof(int)), *pos = malloc(N * sizeof(int));
    float *w = fbuf(N), *aw = fbuf(N), *base = fbuf(N * V), *rg = fbuf(P), jr[2];
    int ok = fread(tok, 4, N + B, f) == N + B && fread(w, 4, N, f) == N && fread(aw, 4, N, f) == N && fread(pos, 4, N, f) == N &&
             fread(base, 4, N * V, f) == N * V && fread(jr, 4, 2, f) == 2 && fread(rg, 4, P, f) == P && fgetc(f) == EOF;
    fclose(f);
    EXPECT(ok, "ref_packed_stories260K.bin is truncated or too long");
    mft_model m;
    EXPECT(ok && mft_model_open(&m, MODEL, B, T, MFT_TRAIN, &err) == MFT_OK, "open");
    if (!ok) return;
    int in[64], tg[64];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) { in[b * T + t] = tok[b * (T + 1) + t]; tg[b * T + t] = tok[b * (T + 1) + t + 1]; }
    EXPECT(mft_forward_packed(&m, in, tg, w, pos, B, T, NULL, &err) == MFT_OK && mft_set_anchor(&m, base, aw, NULL, &err) == MFT_OK, "forward: %s", err.msg);
    double W = m.fwd_weight_sum, J = (m.fwd_loss_sum + m.fwd_anchor_sum) / W, A = m.fwd_anchor_sum / W;
    printf("    objective %.7f vs torch %.7f, anchor part %.7f vs %.7f\n", J, (double)jr[0], A, (double)jr[1]);
    EXPECT(fabs(J - jr[0]) <= 2e-6 * fabs(jr[0]) && fabs(A - jr[1]) <= 2e-6 * fabs(jr[1]), "objective differs from torch");
    EXPECT(mft_backward(&m, &err) == MFT_OK, "backward");
    float *g = fbuf(m.n_params);
    for (size_t i = 0; i < m.n_params; i++) g[i] = (float)(m.grads[i] / W);
    for (int ti = 0; ti < mft_tensor_count(&c); ti++) {
        mft_tensor_info inf = mft_tensor_at(&c, ti);
        double gmax = 0.0;
        size_t where = 0;
        for (size_t j = 0; j < inf.numel; j++) gmax = fmax(gmax, fabs(rg[inf.offset + j]));
        double e = worst(g + inf.offset, rg + inf.offset, inf.numel, 1e-5 * gmax, 1e-4, &where);
        EXPECT(e <= 1, "grad %s: worst %.3g of the bound (%.7g vs %.7g)", inf.name, e, g[inf.offset + where], rg[inf.offset + where]);
    }
    free(g); free(tok); free(pos); free(w); free(aw); free(base); free(rg);
    mft_model_free(&m);
}

/* With OpenMP: 1, 2 and 3 threads give bit-identical gradients and weights (3 does not divide
   the work evenly, so it exercises uneven splits; oversubscribing 2 cores is harmless here).
   Without OpenMP n_threads is ignored: 1 and 4 must give bit-identical logits, gradients and
   weights. */
static void test_thread_determinism(void)
{
#ifdef _OPENMP
    enum { NM = 3 };
    static const int threads[NM] = { 1, 2, 3 };
#else
    enum { NM = 2 };
    static const int threads[NM] = { 1, 4 };
#endif
    mft_model m[NM];
    mft_error err;
    int B = 4, T = 200; /* big enough that every kernel runs in parallel (see mft__par) */
    for (int i = 0; i < NM; i++)
        if (mft_model_open(&m[i], MODEL, B, T, MFT_TRAIN, &err)) { EXPECT(0, "%s", err.msg); while (i--) mft_model_free(&m[i]); return; }
    int *in = malloc((size_t)B * T * sizeof(int)), *tg = malloc((size_t)B * T * sizeof(int));
    float *w = fbuf((size_t)B * T);
    size_t nlogits = (size_t)B * T * m[0].cfg.vocab_size;
    random_batch(in, tg, w, B, T, m[0].cfg.vocab_size, 77);
    mft_train_opts o = mft_train_opts_default();
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < NM; i++) {
            m[i].n_threads = threads[i];
            mft_forward(&m[i], in, tg, w, B, T, NULL, NULL);
        }
        for (int i = 1; i < NM; i++) /* before backward, which may reuse the logits' memory */
            EXPECT(!memcmp(m[0].a.logits, m[i].a.logits, nlogits * 4), "logits differ between 1 and %d threads at step %d", threads[i], s);
        for (int i = 0; i < NM; i++) mft_backward(&m[i], NULL);
        for (int i = 1; i < NM; i++)
            EXPECT(!memcmp(m[0].grads, m[i].grads, m[0].n_params * 4), "gradients differ between 1 and %d threads at step %d", threads[i], s);
        for (int i = 0; i < NM; i++) mft_step(&m[i], &o, NULL, NULL);
    }
    for (int i = 1; i < NM; i++)
        EXPECT(!memcmp(m[0].params, m[i].params, m[0].n_params * 4), "weights differ between 1 and %d threads", threads[i]);
    free(in); free(tg); free(w);
    for (int i = 0; i < NM; i++) mft_model_free(&m[i]);
}

/* the KV-cache decoder computes the same logits as the batch forward pass */
static void test_decode_matches_forward(void)
{
    mft_model m;
    mft_error err;
    int T = 40, in[40], tg[40];
    if (mft_model_open(&m, MODEL, 1, T, MFT_FORWARD | MFT_GENERATE, &err)) { EXPECT(0, "%s", err.msg); return; }
    random_batch(in, tg, NULL, 1, T, m.cfg.vocab_size, 21);
    in[0] = 1;
    EXPECT(mft_forward(&m, in, NULL, NULL, 1, T, NULL, &err) == MFT_OK, "forward");
    for (int t = 0; t < T; t++) {
        float *lg = NULL;
        EXPECT(mft_decode(&m, in[t], t, &lg, &err) == MFT_OK && lg != NULL, "decode: %s", err.msg);
        if (!lg) break;
        double e = worst(lg, m.a.logits + (size_t)t * m.cfg.vocab_size, (size_t)m.cfg.vocab_size, 1e-4, 1e-4, NULL);
        EXPECT(e <= 1, "position %d: decode vs forward worst %.3g of the bound", t, e);
    }
    mft_model_free(&m);
}

/* llama2.c's test_all.py: 200 greedy steps from BOS reproduce its expected_stdout */
static void test_greedy_matches_llama2c(void)
{
    mft_model m;
    mft_tokenizer tok;
    mft_error err;
    long n;
    FILE *f = fopen("tests/data/stories260K_greedy200.txt", "rb");
    char expect[2048], got[4096];
    if (!f) { EXPECT(0, "missing tests/data/stories260K_greedy200.txt"); return; }
    n = (long)fread(expect, 1, sizeof expect - 1, f);
    expect[n] = 0;
    fclose(f);
    if (mft_model_open(&m, MODEL, 1, 1, MFT_GENERATE, &err) || mft_tokenizer_open(&tok, TOKEN, m.cfg.vocab_size, &err)) { EXPECT(0, "%s", err.msg); return; }
    int token = tok.bos_id, len = 0;
    for (int pos = 0; pos < 200; pos++) {
        float *lg = NULL;
        if (mft_decode(&m, token, pos, &lg, NULL)) break;
        int next = mft_sample(lg, m.cfg.vocab_size, 0.0f, 1.0f, NULL), pl;
        if (next == tok.bos_id) break;
        const char *piece = mft_token_bytes(&tok, token, next, &pl);
        if (len + pl < (int)sizeof got) { memcpy(got + len, piece, (size_t)pl); len += pl; }
        token = next;
    }
    got[len] = 0;
    EXPECT(!strcmp(got, expect), "greedy text differs from llama2.c's:\n%s", got);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
}

/* ---- tokenizer ----------------------------------------------------------------------------- */

/* a minimal JSON reader for {"text": "...", "ids": [...]} lines */
static int json_string(const char **p, char *out, int cap)
{
    const char *s = *p;
    int n = 0;
    if (*s++ != '"') return -1;
    while (*s && *s != '"') {
        unsigned cp;
        if (*s == '\\') {
            s++;
            switch (*s) {
            case 'n': cp = '\n'; break; case 't': cp = '\t'; break; case 'r': cp = '\r'; break;
            case 'b': cp = '\b'; break; case 'f': cp = '\f'; break;
            case 'u': {
                cp = (unsigned)strtoul((char[5]){ s[1], s[2], s[3], s[4], 0 }, NULL, 16);
                s += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && s[1] == '\\' && s[2] == 'u') {
                    unsigned lo = (unsigned)strtoul((char[5]){ s[3], s[4], s[5], s[6], 0 }, NULL, 16);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    s += 6;
                }
                break;
            }
            default: cp = (unsigned char)*s;
            }
            s++;
            if (n + 4 >= cap) return -1;
            if (cp < 0x80) out[n++] = (char)cp;
            else if (cp < 0x800) { out[n++] = (char)(0xC0 | cp >> 6); out[n++] = (char)(0x80 | (cp & 63)); }
            else if (cp < 0x10000) { out[n++] = (char)(0xE0 | cp >> 12); out[n++] = (char)(0x80 | ((cp >> 6) & 63)); out[n++] = (char)(0x80 | (cp & 63)); }
            else { out[n++] = (char)(0xF0 | cp >> 18); out[n++] = (char)(0x80 | ((cp >> 12) & 63)); out[n++] = (char)(0x80 | ((cp >> 6) & 63)); out[n++] = (char)(0x80 | (cp & 63)); }
        } else {
            if (n + 1 >= cap) return -1;
            out[n++] = *s++;
        }
    }
    if (*s != '"') return -1;
    *p = s + 1;
    out[n] = 0;
    return n;
}

/* SentencePiece's own ids for tok512.model (reference/spm_tok512_model.jsonl). That model also
   collapses runs of spaces (remove_extra_whitespaces) and reads a literal U+2581 as a space,
   which tokenizer.bin's format cannot express, so texts with leading, trailing or repeated
   spaces or a literal U+2581 are left to the .model reader; on every other text the two must
   agree exactly. */
static void test_tokenizer_sentencepiece_ids(void)
{
    mft_tokenizer tok;
    mft_error err;
    if (mft_tokenizer_open(&tok, TOKEN, 512, &err)) { EXPECT(0, "%s", err.msg); return; }
    FILE *f = fopen("tests/data/spm_tok512_model.jsonl", "rb");
    if (!f) { EXPECT(0, "missing tests/data/spm_tok512_model.jsonl"); mft_tokenizer_free(&tok); return; }
    char line[8192], text[4096];
    int tested = 0, skipped = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"text\":");
        if (!p) continue;
        p += 7; while (*p == ' ') p++;
        int len = json_string(&p, text, sizeof text);
        const char *q = strstr(p, "\"ids\":");
        EXPECT(len >= 0 && q, "cannot parse line: %s", line);
        if (len < 0 || !q) continue;
        int want[1024], nw = 0;
        q = strchr(q, '[') + 1;
        while (*q && *q != ']') { char *end; want[nw++] = (int)strtol(q, &end, 10); q = end; while (*q == ',' || *q == ' ') q++; }
        if (len > 0 && (text[0] == ' ' || text[len - 1] == ' ' || strstr(text, "  ") || strstr(text, "\xE2\x96\x81"))) { skipped++; continue; }
        int ids[2048], n, offs[4096];
        EXPECT(mft_encode(&tok, text, len, 0, ids, 2048, &n, offs, &err) == MFT_OK, "encode: %s", err.msg);
        int same = n == nw;
        for (int i = 0; same && i < n; i++) same = ids[i] == want[i];
        EXPECT(same, "ids differ from SentencePiece for \"%s\" (%d vs %d tokens)", text, n, nw);
        /* decoding gives the text back, and the offsets tile the input */
        char back[8192];
        int bl = 0, prev = tok.bos_id;
        for (int i = 0; i < n; i++) {
            int pl;
            const char *pc = mft_token_bytes(&tok, prev, ids[i], &pl);
            memcpy(back + bl, pc, (size_t)pl); bl += pl; prev = ids[i];
        }
        EXPECT(bl == len && !memcmp(back, text, (size_t)len), "decode(encode(x)) != x for \"%s\"", text);
        EXPECT(offsets_cover(offs, n, len), "offsets do not cover \"%s\" contiguously", text);
        tested++;
    }
    fclose(f);
    printf("    %d texts give SentencePiece's ids exactly; %d left to the .model reader\n", tested, skipped);
    EXPECT(tested >= 45, "only %d texts tested (%d skipped)", tested, skipped);
    mft_tokenizer_free(&tok);
}

static void test_tokenizer_edges(void)
{
    mft_tokenizer tok;
    mft_error err;
    int ids[64], n, offs[128];
    if (mft_tokenizer_open(&tok, TOKEN, 512, &err)) { EXPECT(0, "%s", err.msg); return; }
    EXPECT(mft_encode(&tok, "", 0, MFT_BOS | MFT_EOS, ids, 64, &n, NULL, &err) == MFT_OK && n == 2 && ids[0] == 1 && ids[1] == 2, "empty text with BOS/EOS");
    EXPECT(mft_encode(&tok, "", 0, 0, ids, 64, &n, NULL, &err) == MFT_OK && n == 0, "empty text");
    /* invalid UTF-8 (a lone continuation byte, a truncated 3-byte sequence) becomes byte tokens
       and decodes back to the same bytes */
    const char bad[] = "a\x80" "b\xE2\x82";
    EXPECT(mft_encode(&tok, bad, 5, 0, ids, 64, &n, offs, &err) == MFT_OK, "invalid utf-8: %s", err.msg);
    char back[64];
    int bl = 0, prev = tok.bos_id;
    for (int i = 0; i < n; i++) { int pl; const char *p = mft_token_bytes(&tok, prev, ids[i], &pl); memcpy(back + bl, p, (size_t)pl); bl += pl; prev = ids[i]; }
    EXPECT(bl == 5 && !memcmp(back, bad, 5), "invalid utf-8 did not round-trip");
    int has_byte = 0;
    for (int i = 0; i < n; i++) has_byte |= ids[i] == 0x80 + 3;
    EXPECT(has_byte, "0x80 did not become the <0x80> byte token");
    /* too few slots is an error, not a silent truncation */
    int need = 0;
    EXPECT(mft_encode(&tok, "Once upon a time there was a cat", -1, MFT_BOS, NULL, 0, &need, NULL, &err) == MFT_OK &&
           need > 3, "cap 0 measures (%d)", need);
    EXPECT(mft_encode(&tok, "Once upon a time there was a cat", -1, MFT_BOS, ids, 3, &n, NULL, &err) == MFT_ERR_SPACE &&
           n == need, "small cap: %d of %d", n, need);
    EXPECT(mft_encode(&tok, "Once upon a time there was a cat", -1, MFT_BOS, ids, need, &n, offs, &err) == MFT_OK &&
           n == need && offs[2 * n - 1] == 32, "exact cap");
    /* decode of an invalid id */
    EXPECT(mft_token_bytes(&tok, 0, 512, &n) == NULL && mft_token_bytes(&tok, 0, -1, &n) == NULL, "invalid id decodes to NULL");
    mft_tokenizer_free(&tok);
}

/* ---- bad input: clear errors, never a crash ------------------------------------------------ */


/* a scratch file of this process (several test builds may run at once) */
static char TMP[64] = "build/test_tmp.bin";

static mft_status try_open(const void *bytes, long n, mft_error *err)
{
    mft_model m;
    spit(TMP, bytes, n);
    mft_status s = mft_model_open(&m, TMP, 1, 8, MFT_TRAIN | MFT_GENERATE, err);
    if (!s) mft_model_free(&m);
    return s;
}

static void test_bad_model_files(void)
{
    long n;
    char *orig = slurp(MODEL, &n);
    mft_error err;
    mft_model m;
    if (!orig) { EXPECT(0, "cannot read %s", MODEL); return; }
    EXPECT(mft_model_open(&m, "no/such/file.bin", 1, 8, MFT_TRAIN, &err) == MFT_ERR_IO && strstr(err.msg, "cannot open"), "missing file: %s", err.msg);
    long cuts[] = { 0, 3, 27, 28, 29, 1000, n / 2, n - 4, n - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        mft_status s = try_open(orig, cuts[i], &err);
        EXPECT(s == MFT_ERR_FORMAT && (strstr(err.msg, "truncated") || strstr(err.msg, "too small")), "cut at %ld: %d %s", cuts[i], s, err.msg);
    }
    char *big = malloc((size_t)n + 8);
    memcpy(big, orig, (size_t)n); memset(big + n, 0, 8);
    EXPECT(try_open(big, n + 8, &err) == MFT_ERR_FORMAT && strstr(err.msg, "trailing"), "trailing bytes: %s", err.msg);
    /* corrupt header fields, one at a time */
    int32_t bad[][2] = { { 0, -64 }, { 0, 0 }, { 0, 63 }, { 3, 3 }, { 4, 3 }, { 4, 0 }, { 1, -1 }, { 2, 0 }, { 6, 0 }, { 6, 1 << 28 }, { 5, 0 }, { 5, INT32_MIN } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(big, orig, (size_t)n);
        memcpy(big + 4 * bad[i][0], &bad[i][1], 4);
        mft_status s = try_open(big, n, &err);
        EXPECT(s == MFT_ERR_FORMAT, "header field %d = %d accepted (%d: %s)", bad[i][0], bad[i][1], s, err.msg);
    }
    /* a tokenizer is not a model; a v2 (int8) file is refused by name */
    long tn;
    char *tokf = slurp(TOKEN, &tn);
    EXPECT(tokf && try_open(tokf, tn, &err) == MFT_ERR_FORMAT, "tokenizer accepted as a model");
    char v2[300] = { 0 };
    uint32_t magic = 0x616b3432u; int32_t ver = 2;
    memcpy(v2, &magic, 4); memcpy(v2 + 4, &ver, 4);
    EXPECT(try_open(v2, 300, &err) == MFT_ERR_FORMAT && strstr(err.msg, "version 2"), "v2: %s", err.msg);
    /* a NaN in the weights */
    memcpy(big, orig, (size_t)n);
    float nan = NAN;
    memcpy(big + 28 + 4 * 5000, &nan, 4);
    EXPECT(try_open(big, n, &err) == MFT_ERR_FORMAT && strstr(err.msg, "non-finite"), "NaN weight: %s", err.msg);
    free(big); free(orig); free(tokf);
    remove(TMP);
}

static void test_bad_tokenizer_files(void)
{
    long n;
    char *orig = slurp(TOKEN, &n);
    mft_tokenizer tok;
    mft_error err;
    if (!orig) { EXPECT(0, "cannot read %s", TOKEN); return; }
    long cuts[] = { 0, 3, 4, 100, n / 2, n - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spit(TMP, orig, cuts[i]);
        mft_status s = mft_tokenizer_open(&tok, TMP, 512, &err);
        EXPECT(s == MFT_ERR_FORMAT, "tokenizer cut at %ld: %d %s", cuts[i], s, err.msg);
    }
    spit(TMP, orig, n);
    EXPECT(mft_tokenizer_open(&tok, TMP, 500, &err) == MFT_ERR_FORMAT && strstr(err.msg, "bytes after"), "wrong vocab (smaller): %s", err.msg);
    EXPECT(mft_tokenizer_open(&tok, TMP, 600, &err) == MFT_ERR_FORMAT, "wrong vocab (larger): %s", err.msg);
    /* a length field pointing past the end */
    int32_t huge = 1 << 30;
    memcpy(orig + 4 + 4, &huge, 4);
    spit(TMP, orig, n);
    EXPECT(mft_tokenizer_open(&tok, TMP, 512, &err) == MFT_ERR_FORMAT && strstr(err.msg, "length"), "bad length: %s", err.msg);
    EXPECT(mft_tokenizer_open(&tok, "no/such/tok.bin", 512, &err) == MFT_ERR_IO, "missing tokenizer");
    /* a (sparse) file of over 1 GiB is refused before any size is computed from it */
    FILE *f = fopen(TMP, "wb");
    if (f) { fseek(f, (1L << 30) + 5, SEEK_SET); fputc(0, f); fclose(f); }
    EXPECT(mft_tokenizer_open(&tok, TMP, 512, &err) == MFT_ERR_FORMAT && strstr(err.msg, "too large"), "huge tokenizer file: %s", err.msg);
    free(orig);
    remove(TMP);
}

static void test_bad_arguments(void)
{
    mft_model m;
    mft_error err;
    int in[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, tg[8] = { 2, 3, 4, 5, 6, 7, 8, 9 };
    float w[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
    if (mft_model_open(&m, MODEL, 1, 8, MFT_TRAIN | MFT_GENERATE, &err)) { EXPECT(0, "%s", err.msg); return; }
    EXPECT(mft_backward(&m, &err) == MFT_ERR_STATE, "backward before forward");
    in[2] = 512;
    EXPECT(mft_forward(&m, in, tg, w, 1, 8, NULL, &err) == MFT_ERR_ARG && strstr(err.msg, "inputs[2]"), "token out of range: %s", err.msg);
    in[2] = -1;
    EXPECT(mft_forward(&m, in, tg, w, 1, 8, NULL, &err) == MFT_ERR_ARG, "negative token");
    in[2] = 3;
    tg[7] = 9999;
    EXPECT(mft_forward(&m, in, tg, w, 1, 8, NULL, &err) == MFT_ERR_ARG && strstr(err.msg, "targets[7]"), "target out of range: %s", err.msg);
    tg[7] = 9;
    w[4] = NAN;
    EXPECT(mft_forward(&m, in, tg, w, 1, 8, NULL, &err) == MFT_ERR_ARG && strstr(err.msg, "weights[4]"), "NaN weight: %s", err.msg);
    w[4] = -1.0f;
    EXPECT(mft_forward(&m, in, tg, w, 1, 8, NULL, &err) == MFT_ERR_ARG, "negative weight");
    w[4] = 1.0f;
    EXPECT(mft_forward(&m, in, tg, w, 1, 9, NULL, &err) == MFT_ERR_ARG, "T above capacity");
    EXPECT(mft_forward(&m, in, tg, w, 2, 8, NULL, &err) == MFT_ERR_ARG, "B above capacity");
    float *lg = &(float){ 0 };
    EXPECT(mft_decode(&m, 1, 512, &lg, NULL) == MFT_ERR_ARG && lg == NULL, "decode past the context");
    EXPECT(mft_decode(&m, 700, 0, &lg, &err) == MFT_ERR_ARG && err.status == MFT_ERR_ARG, "decode bad token");
    mft_model_free(&m);
    /* T longer than the context, and a block that is too small */
    EXPECT(mft_model_open(&m, MODEL, 1, 513, MFT_TRAIN, &err) == MFT_ERR_ARG && strstr(err.msg, "context"), "T > context: %s", err.msg);
    mft_config c = tiny_config(0);
    char small[64];
    EXPECT(mft_model_init(&m, &c, 1, 4, MFT_TRAIN, small, sizeof small, &err) == MFT_ERR_NOMEM, "small block");
    /* sizes whose byte count would overflow are refused, not wrapped around */
    mft_config huge = tiny_config(0);
    huge.dim = 65536; huge.n_heads = 1; huge.n_kv_heads = 1; huge.n_layers = 1024; huge.hidden_dim = 262144; huge.seq_len = 1 << 20;
    EXPECT(mft_model_bytes(&huge, 2047, 1 << 20, MFT_TRAIN) == 0, "overflowing size not detected");
    EXPECT(mft_model_init(&m, &huge, 2047, 1 << 20, MFT_TRAIN, small, sizeof small, &err) == MFT_ERR_ARG && strstr(err.msg, "addressed"), "huge: %s", err.msg);
    EXPECT(mft_model_init(&m, &huge, 4096, 1 << 20, MFT_TRAIN, small, sizeof small, &err) == MFT_ERR_ARG && strstr(err.msg, "too many positions"), "B*T: %s", err.msg);
    /* the config may live inside the model being initialised */
    EXPECT(mft_model_bytes(&c, 1, 4, MFT_TRAIN) <= 1 << 20, "tiny size");
    {
        static char block[1 << 20];
        m.cfg = c;
        EXPECT(mft_model_init(&m, &m.cfg, 1, 4, MFT_TRAIN, block, sizeof block, &err) == MFT_OK, "init from &m.cfg: %s", err.msg);
    }
    /* a NaN reaching the gradient stops the step and leaves the weights as they were */
    EXPECT(open_tiny(&m, &c, 1, 8, MFT_TRAIN, 5) == MFT_OK, "tiny");
    for (int i = 0; i < 8; i++) { in[i] = i; tg[i] = i + 1; }
    mft_forward(&m, in, tg, NULL, 1, 8, NULL, NULL);
    mft_backward(&m, NULL);
    m.g.w2[17] = NAN;
    float *before = fbuf(m.n_params);
    memcpy(before, m.params, m.n_params * 4);
    mft_train_opts o = mft_train_opts_default();
    EXPECT(mft_step(&m, &o, NULL, &err) == MFT_ERR_NONFINITE && strstr(err.msg, "w2"), "NaN gradient: %s", err.msg);
    EXPECT(!memcmp(before, m.params, m.n_params * 4), "weights changed by a NaN step");
    /* and NaN weights make the forward loss fail loudly */
    m.w.wq[3] = NAN;
    EXPECT(mft_forward(&m, in, tg, NULL, 1, 8, NULL, &err) == MFT_ERR_NONFINITE, "NaN weight in forward");
    o.lr = NAN;
    EXPECT(mft_step(&m, &o, NULL, &err) == MFT_ERR_ARG, "NaN lr");
    free(before);
    mft_model_free(&m);
}

/* ---- files written and read back ----------------------------------------------------------- */

static void test_save_load(void)
{
    mft_model a, b;
    mft_error err;
    mft_config c = tiny_config(0);
    EXPECT(open_tiny(&a, &c, 1, 4, MFT_FORWARD, 6) == MFT_OK, "tiny");
    EXPECT(mft_model_save(&a, TMP, &err) == MFT_OK, "save: %s", err.msg);
    EXPECT(mft_model_open(&b, TMP, 1, 4, MFT_FORWARD, &err) == MFT_OK, "reload: %s", err.msg);
    EXPECT(b.cfg.shared_classifier == 0 && b.n_params == a.n_params && !memcmp(a.params, b.params, a.n_params * 4), "untied round trip");
    mft_model_free(&b);
    /* the same weights as a version-1 ("ak42") file, written here by hand in its order */
    FILE *f = fopen(TMP, "wb");
    char hdr[256] = { 0 };
    uint32_t magic = 0x616b3432u;
    int32_t ver = 1, ints[7] = { c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len };
    memcpy(hdr, &magic, 4); memcpy(hdr + 4, &ver, 4); memcpy(hdr + 8, ints, 28); hdr[36] = 0;
    fwrite(hdr, 1, 256, f);
    size_t sz[MFT__NT];
    mft__tensor_sizes(&c, sz);
    const mft_params *w = &a.w;
    const float *order[12] = { w->rms_att, w->rms_ffn, w->rms_final, w->tok_emb, w->wq, w->wk, w->wv, w->wo, w->w1, w->w2, w->w3, w->wcls };
    size_t nn[12] = { sz[1], sz[6], sz[10], sz[0], sz[2], sz[3], sz[4], sz[5], sz[7], sz[8], sz[9], sz[11] };
    for (int i = 0; i < 12; i++) fwrite(order[i], 4, nn[i], f);
    fclose(f);
    EXPECT(mft_model_open(&b, TMP, 1, 4, MFT_FORWARD, &err) == MFT_OK, "v1: %s", err.msg);
    EXPECT(b.n_params == a.n_params && !memcmp(a.params, b.params, a.n_params * 4), "v1 weights differ from v0");
    mft_model_free(&b);
    mft_model_free(&a);
    /* stories260K written back: header and weights byte-identical; the freq_cis tables (which
       no reader uses) within float32 rounding of the original's, which torch computed in float32 */
    long n1, n2;
    EXPECT(mft_model_open(&a, MODEL, 1, 1, MFT_FORWARD, &err) == MFT_OK && mft_model_save(&a, TMP, &err) == MFT_OK, "resave");
    char *x = slurp(MODEL, &n1), *y = slurp(TMP, &n2);
    long wbytes = 28 + 4 * (long)a.n_params, fdiff = 0;
    EXPECT(x && y && n1 == n2 && !memcmp(x, y, (size_t)wbytes), "re-saved stories260K: header or weights differ");
    for (long i = wbytes; x && y && n1 == n2 && i + 4 <= n1; i += 4) {
        float fa, fb;
        memcpy(&fa, x + i, 4); memcpy(&fb, y + i, 4);
        if (fabsf(fa - fb) > 1e-4f) fdiff++;
    }
    EXPECT(fdiff == 0, "re-saved stories260K: %ld freq_cis values differ by more than 1e-4", fdiff);
    free(x); free(y);
    mft_model_free(&a);
    remove(TMP);
}

static void test_lr_schedule_and_sampler(void)
{
    mft_train_opts o = mft_train_opts_default();
    o.lr = 1.0f; o.warmup_steps = 4; o.total_steps = 14; o.min_lr_ratio = 0.1f;
    EXPECT(fabsf(mft_lr_at(&o, 0) - 0.25f) < 1e-7f && fabsf(mft_lr_at(&o, 3) - 1.0f) < 1e-7f, "warmup");
    EXPECT(fabsf(mft_lr_at(&o, 4) - 1.0f) < 1e-7f, "peak after warmup");
    EXPECT(fabsf(mft_lr_at(&o, 9) - 0.55f) < 1e-6f, "cosine midpoint %.6f", mft_lr_at(&o, 9));
    EXPECT(fabsf(mft_lr_at(&o, 14) - 0.1f) < 1e-6f && fabsf(mft_lr_at(&o, 100) - 0.1f) < 1e-6f, "floor");
    o.total_steps = 0;
    EXPECT(mft_lr_at(&o, 50) == 1.0f, "constant");
    /* sampler: greedy takes the lowest id on ties; top-p keeps the nucleus; frequencies match */
    float lg[4] = { 1, 3, 3, 0 };
    EXPECT(mft_sample(lg, 4, 0.0f, 1.0f, NULL) == 1, "greedy tie");
    float lt[3] = { 3, 2, 1 };
    EXPECT(mft_sample(lt, 3, 1e-39f, 1.0f, NULL) == 0, "a tiny temperature must act as argmax");
    uint64_t rng = 42;
    int counts[4] = { 0 };
    for (int i = 0; i < 20000; i++) {
        float l[4] = { logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f) };
        counts[mft_sample(l, 4, 1.0f, 1.0f, &rng)]++;
    }
    for (int i = 0; i < 4; i++) EXPECT(fabs(counts[i] / 20000.0 - 0.1 * (i + 1)) < 0.012, "token %d sampled %d times", i, counts[i]);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 5000; i++) {
        float l[4] = { logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f) };
        counts[mft_sample(l, 4, 1.0f, 0.6f, &rng)]++;  /* nucleus {0.4, 0.3} */
    }
    EXPECT(counts[0] == 0 && counts[1] == 0 && counts[2] > 1800 && counts[3] > 2500, "top-p 0.6: %d %d %d %d", counts[0], counts[1], counts[2], counts[3]);
}


/* ---- tokenizers of real models: conformance ------------------------------------------------ */

/* A test asset: tests/data/NAME if vendored there, else ../shared/assets/REL (the shared
   folder beside the checkout, when present). NULL when neither exists. */
static const char *asset(const char *name, const char *rel)
{
    static char buf[32][512];
    static int k;
    char *b = buf[k++ & 31];
    snprintf(b, 512, "tests/data/%s", name);
    FILE *f = fopen(b, "rb");
    if (!f) { snprintf(b, 512, "../shared/assets/%s", rel); f = fopen(b, "rb"); }
    if (!f) return NULL;
    fclose(f);
    return b;
}

/* llama.cpp's test-tokenizer-0 vectors: .inp holds the texts separated by
   "\n__ggml_vocab_test__\n", .out one line of ids per text (no BOS, special text as text) */
static int llamacpp_vectors(const char *gguf, int *n_cases)
{
    char path[600];
    long ni, no;
    snprintf(path, sizeof path, "%s.inp", gguf);
    char *inp = slurp(path, &ni);
    snprintf(path, sizeof path, "%s.out", gguf);
    char *out = slurp(path, &no);
    mft_tokenizer tok;
    mft_error err;
    int bad = 0, cases = 0;
    *n_cases = 0;
    if (!inp || !out) { free(inp); free(out); return -1; }
    inp[ni] = 0; out[no] = 0;
    if (mft_tokenizer_open(&tok, gguf, 0, &err)) { printf("    %s: %s\n", gguf, err.msg); free(inp); free(out); return -1; }
    const char *sep = "\n__ggml_vocab_test__\n";
    char *p = inp, *line = out;
    int *ids = malloc(65536 * sizeof(int));
    for (;;) {
        char *q = strstr(p, sep);
        if (!q) break;
        int len = (int)(q - p), n;
        char *nl = strchr(line, '\n');
        if (!nl) { bad++; break; }
        int want[4096], nw = 0;
        for (char *r = line; r < nl;) { char *end; long v = strtol(r, &end, 10); if (end == r) break; want[nw++] = (int)v; r = end; }
        if (mft_encode(&tok, p, len, 0, ids, 65536, &n, NULL, &err) || !same_ids(ids, n, want, nw)) {
            if (bad < 3) print_mismatch(gguf, p, len, ids, n, want, nw);
            bad++;
        }
        cases++;
        p = q + strlen(sep);
        line = nl + 1;
    }
    free(ids); free(inp); free(out);
    mft_tokenizer_free(&tok);
    *n_cases = cases;
    return bad;
}

static void test_tokenizer_llamacpp_vectors(void)
{
    const char *names[4][2] = {
        { "ggml-vocab-llama-spm.gguf", "llama-cpp-vocab/ggml-vocab-llama-spm.gguf" },
        { "ggml-vocab-phi-3.gguf", "llama-cpp-vocab/ggml-vocab-phi-3.gguf" },
        { "ggml-vocab-gpt-2.gguf", "llama-cpp-vocab/ggml-vocab-gpt-2.gguf" },
        { "ggml-vocab-starcoder.gguf", "llama-cpp-vocab/ggml-vocab-starcoder.gguf" },
    };
    int found = 0;
    for (int i = 0; i < 4; i++) {
        const char *path = asset(names[i][0], names[i][1]);
        if (!path) { printf("    %s not found (tests/data or ../shared/assets): skipped\n", names[i][0]); missing_asset(names[i][0]); continue; }
        found++;
        int cases, bad = llamacpp_vectors(path, &cases);
        printf("    %s: %d/%d cases exact\n", names[i][0], cases - bad, cases);
        EXPECT(bad == 0 && cases == 46, "%s: %d of %d cases differ", names[i][0], bad, cases);
    }
    if (!found) SKIP("no llama.cpp vocabulary files found");
}

/* does a special token with lstrip / rstrip stand next to whitespace in the text? */
static int strips_space(const mft_tokenizer *t, const char *text, int len)
{
    for (int id = 0; id < t->vocab_size; id++) {
        if (!t->strip[id]) continue;
        int n;
        const char *p = mft_token_piece(t, id, &n);
        for (const char *q = text; n > 0 && (q = memmem(q, (size_t)(text + len - q), p, (size_t)n)); q++)
            if (((t->strip[id] & 1) && q > text && isspace((unsigned char)q[-1])) ||
                ((t->strip[id] & 2) && q + n < text + len && isspace((unsigned char)q[n])))
                return 1;
    }
    return 0;
}

/* ids of a reference tokenizer, one {"text": ..., "ids": [...]} per line */
static int jsonl_reference(const char *tokpath, const char *jsonl, int *n_cases, int flags)
{
    mft_tokenizer tok;
    mft_error err;
    FILE *f = fopen(jsonl, "rb");
    int bad = 0, cases = 0;
    *n_cases = 0;
    if (!f) return -1;
    if (mft_tokenizer_open(&tok, tokpath, 0, &err)) { printf("    %s: %s\n", tokpath, err.msg); fclose(f); return -1; }
    static char line[65536], text[32768];
    int *ids = malloc(65536 * sizeof(int)), *offs = malloc(2 * 65536 * sizeof(int));
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"text\":");
        if (!p) continue;
        p += 7; while (*p == ' ') p++;
        int len = json_string(&p, text, sizeof text);
        const char *q = strstr(p, "\"ids\":");
        if (len < 0 || !q) { bad++; continue; }
        int want[4096], nw = 0, n;
        q = strchr(q, '[') + 1;
        while (*q && *q != ']') { char *end; want[nw++] = (int)strtol(q, &end, 10); q = end; while (*q == ',' || *q == ' ') q++; }
        int ok = !mft_encode(&tok, text, len, flags, ids, 65536, &n, offs, &err) && same_ids(ids, n, want, nw);
        if (ok && !offsets_cover(offs, n, len)) { printf("    %s: offsets of \"%.30s\" do not cover it\n", tokpath, text); ok = 0; }
        if (!ok) {
            if (bad < 3) print_mismatch(tokpath, text, len, ids, n, want, nw);
            bad++;
        }
        cases++;
    }
    fclose(f);
    free(ids); free(offs);
    mft_tokenizer_free(&tok);
    *n_cases = cases;
    return bad;
}

static void test_tokenizer_reference_ids(void)
{
    struct { const char *tok[2], *ref[2]; int flags; } sets[] = {
        { { "tok512.model", "llama2c/tok512.model" }, { "spm_tok512_model.jsonl", "reference/spm_tok512_model.jsonl" }, 0 },
        { { "tokenizer.model", "tokenizers/llama2-spm/tokenizer.model" }, { "spm_llama2_tokenizer_model.jsonl", "reference/spm_llama2_tokenizer_model.jsonl" }, 0 },
        { { "llama3/tokenizer.json", "tokenizers/llama3/tokenizer.json" }, { "hfjs_llama3.jsonl", "reference/hfjs_llama3.jsonl" }, MFT_SPECIAL },
        { { "qwen3/tokenizer.json", "tokenizers/qwen3/tokenizer.json" }, { "hfjs_qwen3.jsonl", "reference/hfjs_qwen3.jsonl" }, MFT_SPECIAL },
        /* the SentencePiece-style tokenizer.json (Metaspace) path: tok512 written in that form
           by tests/gen_tok512_hf.py, ids from @lenml/tokenizers (tests/gen_hfjs_ids.mjs) */
        { { "tok512-hf/tokenizer.json", "-" }, { "hfjs_tok512_hf.jsonl", "-" }, MFT_SPECIAL },
        /* Phi-3 chats through llama.cpp's Phi-3 vocabulary: its control tokens take the newline
           after them (rstrip), ids from llama.cpp itself (tests/gen_llamacpp_vocab.sh) */
        { { "ggml-vocab-phi-3.gguf", "-" }, { "llamacpp_written/phi3_chat_ids.jsonl", "-" }, MFT_SPECIAL },
        /* SentencePiece with user-defined symbols and no byte fallback (tests/gen_spm_user.py) */
        { { "spm-user.model", "-" }, { "spm_user.jsonl", "-" }, 0 },
    };
    int found = 0;
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        const char *tp = asset(sets[i].tok[0], sets[i].tok[1]), *rp = asset(sets[i].ref[0], sets[i].ref[1]);
        if (!tp || !rp) {
            printf("    %s or %s not found: skipped\n", sets[i].tok[0], sets[i].ref[0]);
            if (!tp) note_missing(sets[i].tok[0]);
            if (!rp) note_missing(sets[i].ref[0]);
            g_cur_missing++; /* one check: this tokenizer against its reference */
            continue;
        }
        found++;
        int cases, bad = jsonl_reference(tp, rp, &cases, sets[i].flags);
        printf("    %s: %d/%d texts exact\n", sets[i].tok[0], cases - bad, cases);
        EXPECT(bad == 0 && cases >= 19, "%s: %d of %d texts differ", sets[i].tok[0], bad, cases);
    }
    if (!found) SKIP("no reference tokenizer files found");
}

/* texts for the cross-checks: llama.cpp's 46 and the 63 reference texts */
static int load_texts(char ***texts, int **lens)
{
    int n = 0, cap = 256;
    *texts = malloc(cap * sizeof(char *));
    *lens = malloc(cap * sizeof(int));
    const char *inp = asset("ggml-vocab-gpt-2.gguf.inp", "llama-cpp-vocab/ggml-vocab-gpt-2.gguf.inp");
    long ni;
    char *buf = inp ? slurp(inp, &ni) : NULL;
    if (buf) {
        buf[ni] = 0;
        const char *sep = "\n__ggml_vocab_test__\n";
        for (char *p = buf, *q; (q = strstr(p, sep)); p = q + strlen(sep)) {
            (*texts)[n] = malloc((size_t)(q - p) + 1);
            memcpy((*texts)[n], p, (size_t)(q - p));
            (*lens)[n++] = (int)(q - p);
        }
        free(buf);
    }
    const char *ref = asset("spm_tok512_model.jsonl", "reference/spm_tok512_model.jsonl");
    FILE *f = ref ? fopen(ref, "rb") : NULL;
    static char line[65536], text[32768];
    while (f && fgets(line, sizeof line, f) && n < cap) {
        const char *p = strstr(line, "\"text\":");
        if (!p) continue;
        p += 7; while (*p == ' ') p++;
        int len = json_string(&p, text, sizeof text);
        if (len < 0) continue;
        (*texts)[n] = malloc((size_t)len + 1);
        memcpy((*texts)[n], text, (size_t)len);
        (*lens)[n++] = len;
    }
    if (f) fclose(f);
    /* both files are vendored in tests/data: fewer texts would weaken every cross-check */
    EXPECT(n >= 100, "only %d cross-check texts (ggml-vocab-gpt-2.gguf.inp, spm_tok512_model.jsonl)", n);
    return n;
}

static int encode_all(const mft_tokenizer *t, const char *text, int len, int *ids, int cap)
{
    int n;
    return mft_encode(t, text, len, 0, ids, cap, &n, NULL, NULL) ? -1 : n;
}

/* the same vocabulary in two file formats gives the same ids */
static void equivalent(const char *a, const char *b, int skip_spaces, int min_cases)
{
    mft_tokenizer ta, tb;
    mft_error err;
    if (mft_tokenizer_open(&ta, a, strstr(a, ".bin") ? 512 : 0, &err)) { EXPECT(0, "%s: %s", a, err.msg); return; }
    if (mft_tokenizer_open(&tb, b, strstr(b, ".bin") ? 512 : 0, &err)) { EXPECT(0, "%s: %s", b, err.msg); mft_tokenizer_free(&ta); return; }
    char **texts;
    int *lens, nt = load_texts(&texts, &lens), cases = 0, bad = 0;
    int *x = malloc(65536 * sizeof(int)), *y = malloc(65536 * sizeof(int));
    for (int i = 0; i < nt; i++) {
        /* a .model that removes extra whitespace differs by design where the text has any */
        if (skip_spaces && lens[i] && (texts[i][0] == ' ' || texts[i][lens[i] - 1] == ' ' || memmem(texts[i], (size_t)lens[i], "  ", 2))) continue;
        int nx = encode_all(&ta, texts[i], lens[i], x, 65536), ny = encode_all(&tb, texts[i], lens[i], y, 65536);
        if (nx < 0 || !same_ids(x, nx, y, ny)) { if (bad < 2) printf("    differ on \"%.40s\"\n", texts[i]); bad++; }
        cases++;
    }
    printf("    %s = %s on %d texts\n", strrchr(a, '/') ? strrchr(a, '/') + 1 : a, strrchr(b, '/') ? strrchr(b, '/') + 1 : b, cases - bad);
    EXPECT(bad == 0 && cases >= min_cases, "%s vs %s: %d of %d texts differ", a, b, bad, cases);
    for (int i = 0; i < nt; i++) free(texts[i]);
    free(texts); free(lens); free(x); free(y);
    mft_tokenizer_free(&ta);
    mft_tokenizer_free(&tb);
}

/* SentencePiece encoding may merge space-separated stretches independently (ws_split, checked
   against the vocabulary at load time): it must give the same ids as one merge over the whole */
static void ws_split_agrees(const char *path, int vocab)
{
    mft_tokenizer t;
    mft_error err;
    if (mft_tokenizer_open(&t, path, vocab, &err)) { EXPECT(0, "%s: %s", path, err.msg); return; }
    EXPECT(t.ws_split, "%s: expected ws_split", path);
    char **texts;
    int *lens, nt = load_texts(&texts, &lens), bad = 0;
    int *x = malloc(65536 * sizeof(int)), *y = malloc(65536 * sizeof(int));
    for (int i = 0; i < nt; i++) {
        t.ws_split = 1;
        int nx = encode_all(&t, texts[i], lens[i], x, 65536);
        t.ws_split = 0;
        int ny = encode_all(&t, texts[i], lens[i], y, 65536);
        bad += !same_ids(x, nx, y, ny);
    }
    EXPECT(bad == 0, "%s: split and whole merging differ on %d texts", path, bad);
    for (int i = 0; i < nt; i++) free(texts[i]);
    free(texts); free(lens); free(x); free(y);
    mft_tokenizer_free(&t);
}

static void test_tokenizer_formats_agree(void)
{
    ws_split_agrees("models/tok512.bin", 512);
    const char *lm = asset("tokenizer.model", "tokenizers/llama2-spm/tokenizer.model");
    if (lm) ws_split_agrees(lm, 0); else { printf("    tokenizer.model not found: skipped\n"); missing_asset("tokenizer.model"); }
    const char *gj = asset("gpt2/tokenizer.json", "tokenizers/gpt2/tokenizer.json"), *gg = asset("ggml-vocab-gpt-2.gguf", "llama-cpp-vocab/ggml-vocab-gpt-2.gguf");
    const char *tb = "models/tok512.bin", *tm = asset("tok512.model", "llama2c/tok512.model");
    const char *sg = asset("tinyllamas-stories-260k-f32.gguf", "gguf/tinyllamas-stories-260k-f32.gguf");
    if (gj && gg) equivalent(gj, gg, 0, 100);
    else {
        printf("    gpt-2 files not found: skipped\n");
        if (!gj) note_missing("gpt2/tokenizer.json");
        if (!gg) note_missing("ggml-vocab-gpt-2.gguf");
        g_cur_missing++;
    }
    if (sg) equivalent(tb, sg, 0, 100); else { printf("    stories260K GGUF not found: skipped\n"); missing_asset("tinyllamas-stories-260k-f32.gguf"); }
    equivalent(tb, "tests/data/tok512-hf/tokenizer.json", 0, 100); /* vendored: always checked */
    if (tm) equivalent(tb, tm, 1, 80); else { printf("    tok512.model not found: skipped\n"); missing_asset("tok512.model"); }
}

/* decode(encode(x)) == x on valid UTF-8 for every vocabulary whose normaliser keeps the text
   (not tok512.model's whitespace clean-up, not Qwen's NFC, not a literal U+2581 in
   SentencePiece vocabularies, which is read as a space), streaming decode gives the same
   bytes as whole decode, and invalid UTF-8 and empty input are handled */
static void test_tokenizer_roundtrip(void)
{
    const char *files[][2] = {
        { "tok512.bin", "llama2c/tok512.bin" }, { "tokenizer.model", "tokenizers/llama2-spm/tokenizer.model" },
        { "gpt2/tokenizer.json", "tokenizers/gpt2/tokenizer.json" }, { "ggml-vocab-starcoder.gguf", "llama-cpp-vocab/ggml-vocab-starcoder.gguf" },
        { "llama3/tokenizer.json", "tokenizers/llama3/tokenizer.json" }, { "qwen3/tokenizer.json", "tokenizers/qwen3/tokenizer.json" },
        { "ggml-vocab-phi-3.gguf", "llama-cpp-vocab/ggml-vocab-phi-3.gguf" }, { "tok512-hf/tokenizer.json", "-" },
    };
    char **texts;
    int *lens, nt = load_texts(&texts, &lens), tested = 0;
    int *ids = malloc(65536 * sizeof(int));
    char *out = malloc(1 << 20), *st = malloc(1 << 20);
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        const char *path = !strcmp(files[fi][0], "tok512.bin") ? "models/tok512.bin" : asset(files[fi][0], files[fi][1]);
        mft_tokenizer t;
        mft_error err;
        if (!path) { printf("    %s not found: skipped\n", files[fi][0]); missing_asset(files[fi][0]); continue; }
        if (mft_tokenizer_open(&t, path, 0, &err) && mft_tokenizer_open(&t, path, 512, &err)) { EXPECT(0, "%s: %s", path, err.msg); continue; }
        tested++;
        int bad = 0, cases = 0;
        for (int i = 0; i < nt; i++) {
            int n = encode_all(&t, texts[i], lens[i], ids, 65536), len, sl = 0;
            if (n < 0) { bad++; continue; }
            if (t.remove_extra_spaces || (t.kind == MFT_TOK_SPM && memmem(texts[i], (size_t)lens[i], "\xE2\x96\x81", 3))) continue;
            if (strips_space(&t, texts[i], lens[i])) continue; /* lstrip / rstrip drop that space, by design */
            cases++;
            mft_decode_ids(&t, ids, n, 0, out, 1 << 20, &len, NULL);
            if (t.nfc) { /* what comes back is the NFC form of the text */
                static unsigned char nf[1 << 16];
                int nl = mft__uc_nfc((const unsigned char *)texts[i], lens[i], nf, sizeof nf, NULL);
                if (nl != len || memcmp(out, nf, (size_t)len)) { if (bad < 2) printf("    %s: NFC of \"%.30s\" did not come back\n", files[fi][0], texts[i]); bad++; }
                continue;
            }
            mft_detok d = { -1, 0, { 0 } };
            for (int k = 0, got; k <= n; k++) {
                if (mft_detok_stream(&t, &d, k < n ? ids[k] : -1, st + sl, 4096, &got)) break;
                sl += got;
            }
            if (len != lens[i] || memcmp(out, texts[i], (size_t)len) || sl != len || memcmp(st, out, (size_t)len)) {
                if (bad < 2) printf("    %s: \"%.30s\" came back as \"%.30s\" (stream %d bytes)\n", files[fi][0], texts[i], out, sl);
                bad++;
            }
        }
        /* invalid UTF-8 and empty input */
        const char junk[] = "\xff\xfe" "a\xc3" "\x28\xe2\x82" "z\xf0\x9f\x98";
        int n = encode_all(&t, junk, (int)sizeof junk - 1, ids, 65536), len;
        EXPECT(n > 0, "%s: invalid UTF-8 not encoded", files[fi][0]);
        /* byte-level vocabularies may lack the bytes that never occur in UTF-8 (StarCoder has
           no 0xC0, 0xC1, 0xF5-0xFF): those come out as unknown, so only check the others */
        int all_bytes = 1;
        for (int k = 0; k < (int)sizeof junk - 1; k++) all_bytes &= t.byte_id[(unsigned char)junk[k]] >= 0;
        if (n > 0 && !t.nfc && all_bytes) {
            mft_decode_ids(&t, ids, n, 0, out, 1 << 20, &len, NULL);
            EXPECT(len == (int)sizeof junk - 1 && !memcmp(out, junk, (size_t)len), "%s: invalid UTF-8 did not come back byte for byte", files[fi][0]);
        }
        EXPECT(encode_all(&t, "", 0, ids, 65536) == 0, "%s: empty text gave tokens", files[fi][0]);
        printf("    %s: %d/%d texts round-trip\n", files[fi][0], cases - bad, cases);
        EXPECT(bad == 0, "%s: %d texts do not round-trip", files[fi][0], bad);
        mft_tokenizer_free(&t);
    }
    for (int i = 0; i < nt; i++) free(texts[i]);
    free(texts); free(lens); free(ids); free(out); free(st);
    EXPECT(tested > 0, "no tokenizer loaded"); /* models/tok512.bin is always tried */
}

/* special tokens: parsed only when asked; a user-defined token always */
/* Hugging Face's lstrip / rstrip on added tokens: the token takes the whitespace beside it */
static void test_tokenizer_strip(void)
{
    long n;
    char *js = slurp("tests/data/tok512-hf/tokenizer.json", &n);
    const char *at = js ? strstr(js, "\"added_tokens\": [") : NULL;
    if (!at) { EXPECT(0, "tests/data/tok512-hf/tokenizer.json"); free(js); return; }
    const char *extra = "{\"id\": 512, \"content\": \"<|a|>\", \"lstrip\": false, \"rstrip\": true, \"special\": true}, "
                        "{\"id\": 513, \"content\": \"<|b|>\", \"lstrip\": true, \"rstrip\": false, \"special\": false}, "
                        "{\"id\": 514, \"content\": \"<|c|>\", \"lstrip\": false, \"rstrip\": false, \"special\": true}, ";
    size_t head = (size_t)(at - js) + strlen("\"added_tokens\": ["), el = strlen(extra);
    char *mod = malloc((size_t)n + el + 1);
    memcpy(mod, js, head);
    memcpy(mod + head, extra, el);
    memcpy(mod + head + el, js + head, (size_t)n - head);
    mft_tokenizer t;
    mft_error err;
    if (mft_tokenizer_open_from_memory(&t, mod, (size_t)n + el, 0, &err)) { EXPECT(0, "%s", err.msg); free(js); free(mod); return; }
    EXPECT(t.vocab_size == 515 && t.strip[512] == 2 && t.strip[513] == 1 && t.strip[514] == 0, "strip flags read");
    struct { const char *a, *b; int same; } cases[] = {
        { "Lily<|a|> \n\t ran", "Lily<|a|>ran", 1 },   /* rstrip takes every space after */
        { "Lily \t\n<|b|>ran", "Lily<|b|>ran", 1 },     /* lstrip every space before */
        { "Lily <|b|> ran", "Lily<|b|> ran", 1 },       /* but only its own side */
        { "Lily<|c|> ran", "Lily<|c|>ran", 0 },         /* no strip: the space stays */
        { "Lily <|a|>ran", "Lily<|a|>ran", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int x[64], y[64], nx, ny;
        EXPECT(!mft_encode(&t, cases[i].a, -1, MFT_SPECIAL, x, 64, &nx, NULL, &err) &&
               !mft_encode(&t, cases[i].b, -1, MFT_SPECIAL, y, 64, &ny, NULL, &err) &&
               same_ids(x, nx, y, ny) == cases[i].same, "\"%s\" vs \"%s\"", cases[i].a, cases[i].b);
    }
    /* the stripped whitespace is part of the token's offsets, so the offsets still cover the text */
    int ids[64], offs[128], nid;
    const char *txt = "Lily<|a|>  ran";
    EXPECT(!mft_encode(&t, txt, -1, MFT_SPECIAL, ids, 64, &nid, offs, &err), "%s", err.msg);
    int k = 0;
    while (k < nid && ids[k] != 512) k++;
    EXPECT(k < nid && offs[2 * k] == 4 && offs[2 * k + 1] == 11 && offsets_cover(offs, nid, (int)strlen(txt)),
           "offsets of the rstrip token");
    mft_tokenizer_free(&t);
    free(js);
    free(mod);
}

/* tokenizer.json's post-processor says whether BOS / EOS are added (Llama-3's is a Sequence of
   ByteLevel and TemplateProcessing); tok512-hf's has none */
static void test_tokenizer_post_processor(void)
{
    long n;
    char *js = slurp("tests/data/tok512-hf/tokenizer.json", &n);
    const char *pp = js ? strstr(js, "\"post_processor\": null") : NULL;
    if (!pp) { EXPECT(0, "tests/data/tok512-hf/tokenizer.json has no null post_processor"); free(js); return; }
    const char *variants[3] = {
        "\"post_processor\": {\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\"}, {\"type\": "
        "\"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": "
        "{\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"</s>\", \"type_id\": 0}}]}]}",
        "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\", "
        "\"type_id\": 0}}]}",
        "\"post_processor\": null" };
    int want_bos[3] = { 1, 0, 0 }, want_eos[3] = { 1, 0, 0 };
    for (int i = 0; i < 3; i++) {
        size_t head = (size_t)(pp - js), tail = head + strlen("\"post_processor\": null"), vl = strlen(variants[i]);
        char *mod = malloc((size_t)n + vl + 1);
        memcpy(mod, js, head);
        memcpy(mod + head, variants[i], vl);
        memcpy(mod + head + vl, js + tail, (size_t)n - tail);
        mft_tokenizer t;
        mft_error err;
        size_t ml = head + vl + ((size_t)n - tail);
        EXPECT(mft_tokenizer_open_from_memory(&t, mod, ml, 0, &err) == MFT_OK && t.add_bos == want_bos[i] &&
                   t.add_eos == want_eos[i] && (!want_bos[i] || t.bos_id == 1) && (!want_eos[i] || t.eos_id == 2),
               "post_processor %d: add_bos %d add_eos %d (%s)", i, t.add_bos, t.add_eos, err.msg);
        mft_tokenizer_free(&t);
        free(mod);
    }
    free(js);
}

/* generation_config.json's eos_token_id: one id or a list; the stop set built from it */
static void test_tokenizer_generation_config(void)
{
    mft_tokenizer t;
    mft_error err;
    if (mft_tokenizer_open(&t, "tests/data/tok512-hf/tokenizer.json", 0, &err)) { EXPECT(0, "%s", err.msg); return; }
    int stop[4];
    EXPECT(t.n_eos_ids == 0 && mft_tokenizer_stops(&t, -1, stop) == 2 && stop[0] == 2 && stop[1] == 1 && stop[2] == -1,
           "no generation_config: eos and bos");
    const char *list = "{\"bos_token_id\": 1, \"eos_token_id\": [2, 5, 7]}";
    EXPECT(mft_tokenizer_apply_generation_config(&t, list, strlen(list), &err) == MFT_OK && t.n_eos_ids == 3 &&
           t.eos_ids[1] == 5, "list: %s", err.msg);
    EXPECT(mft_tokenizer_stops(&t, 9, stop) == 4 && stop[0] == 9 && stop[1] == 2 && stop[2] == 5 && stop[3] == 7,
           "stops: end, eos, the list (bos does not fit)");
    EXPECT(mft_tokenizer_stops(&t, 2, stop) == 4 && stop[0] == 2 && stop[1] == 5 && stop[3] == 1, "stops without repeats");
    const char *one = "{\"eos_token_id\": 4}";
    EXPECT(mft_tokenizer_apply_generation_config(&t, one, strlen(one), &err) == MFT_OK && t.n_eos_ids == 1 &&
           t.eos_ids[0] == 4, "one id");
    const char *bad[3] = { "{\"eos_token_id\": [2, 512]}", "{\"eos_token_id\": [2.5]}", "{\"eos_token_id\": [2,}" };
    for (int i = 0; i < 3; i++)
        EXPECT(mft_tokenizer_apply_generation_config(&t, bad[i], strlen(bad[i]), &err) == MFT_ERR_FORMAT &&
               t.n_eos_ids == 1 && strstr(err.msg, "generation_config.json"), "bad %d: %s", i, err.msg);
    mft_tokenizer_free(&t);
    /* read from the folder with the tokenizer */
    char dir[64], a[128], b[128];
    snprintf(dir, sizeof dir, "build/gencfg_%ld", (long)getpid());
    mkdir(dir, 0755);
    const char *files[2] = { "tokenizer.json", "tokenizer_config.json" };
    for (int i = 0; i < 2; i++) {
        long n;
        snprintf(a, sizeof a, "tests/data/tok512-hf/%s", files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        char *d = slurp(a, &n);
        if (d) spit(b, d, n);
        free(d);
    }
    snprintf(b, sizeof b, "%s/generation_config.json", dir);
    spit(b, list, (long)strlen(list));
    snprintf(a, sizeof a, "%s/tokenizer.json", dir);
    EXPECT(mft_tokenizer_open(&t, a, 0, &err) == MFT_OK && t.n_eos_ids == 3 && t.eos_ids[2] == 7, "beside: %s", err.msg);
    mft_tokenizer_free(&t);
    /* a folder of tokenizer files (no config.json) is looked into, as a model folder is */
    EXPECT(mft_tokenizer_for_model(&t, dir, 0, &err) == MFT_OK && t.vocab_size == 512 && t.n_eos_ids == 3,
           "folder: %s", err.msg);
    mft_tokenizer_free(&t);
    spit(b, bad[2], (long)strlen(bad[2]));
    EXPECT(mft_tokenizer_open(&t, a, 0, &err) == MFT_ERR_FORMAT, "a broken generation_config.json beside is an error");
    remove(b);
    remove(a);
    snprintf(a, sizeof a, "%s/tokenizer_config.json", dir);
    remove(a);
    rmdir(dir);
}

static void test_tokenizer_special(void)
{
    const char *qp = asset("qwen3/tokenizer.json", "tokenizers/qwen3/tokenizer.json");
    mft_tokenizer t;
    mft_error err;
    int ids[64], n;
    if (!qp) { missing_asset("qwen3/tokenizer.json"); SKIP("qwen3 tokenizer.json not found"); }
    if (mft_tokenizer_open(&t, qp, 0, &err)) { EXPECT(0, "%s: %s", qp, err.msg); return; }
    const char *msg = "<|im_start|>user\nHi<|im_end|>";
    EXPECT(mft_encode(&t, msg, -1, MFT_SPECIAL, ids, 64, &n, NULL, &err) == MFT_OK && n >= 4, "encode");
    EXPECT(ids[0] == 151644 && ids[n - 1] == 151645, "<|im_start|> / <|im_end|> not parsed: %d %d", ids[0], ids[n - 1]);
    EXPECT(mft_encode(&t, msg, -1, 0, ids, 64, &n, NULL, &err) == MFT_OK, "encode");
    int leaked = 0;
    for (int i = 0; i < n; i++) leaked |= ids[i] >= 151643;
    EXPECT(!leaked, "control tokens injected from plain text");
    EXPECT(t.eos_id == 151645 && t.pad_id == 151643 && t.bos_id == -1, "config ids: eos %d pad %d bos %d", t.eos_id, t.pad_id, t.bos_id);
    EXPECT(t.chat_template && strstr(t.chat_template, "<|im_start|>"), "chat template not read");
    char out[256];
    int len;
    mft_encode(&t, msg, -1, MFT_SPECIAL, ids, 64, &n, NULL, &err);
    mft_decode_ids(&t, ids, n, MFT_SPECIAL, out, sizeof out, &len, NULL);
    EXPECT(!strcmp(out, msg), "decode with specials: %s", out);
    mft_decode_ids(&t, ids, n, 0, out, sizeof out, &len, NULL);
    EXPECT(!strcmp(out, "user\nHi"), "decode without specials: %s", out);
    mft_tokenizer_free(&t);
}

static void test_bad_gguf_json_model(void)
{
    mft_error err;
    mft_tokenizer t;
    mft_gguf g;
    long n;
    const char *gp = asset("ggml-vocab-gpt-2.gguf", "llama-cpp-vocab/ggml-vocab-gpt-2.gguf");
    if (!gp) { missing_asset("ggml-vocab-gpt-2.gguf"); SKIP("gpt-2 gguf not found"); }
    char *orig = slurp(gp, &n);
    if (!orig) { EXPECT(0, "cannot read %s", gp); return; }
    long cuts[] = { 0, 3, 8, 15, 23, 30, 100, 5000, n / 3, n - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spit(TMP, orig, cuts[i]);
        mft_status s = mft_tokenizer_open(&t, TMP, 0, &err);
        EXPECT(s == MFT_ERR_FORMAT || s == MFT_ERR_ARG, "gguf cut at %ld: %d %s", cuts[i], s, err.msg);
        if (!s) mft_tokenizer_free(&t);
    }
    /* a huge key/value count, a huge string length, a bad value type */
    char *m = malloc((size_t)n);
    uint64_t big = (uint64_t)1 << 60;
    memcpy(m, orig, (size_t)n); memcpy(m + 16, &big, 8);
    spit(TMP, m, n);
    EXPECT(mft_gguf_open(&g, TMP, &err) == MFT_ERR_FORMAT && strstr(err.msg, "more than the file"), "kv count: %s", err.msg);
    memcpy(m, orig, (size_t)n); memcpy(m + 24, &big, 8);
    spit(TMP, m, n);
    EXPECT(mft_gguf_open(&g, TMP, &err) == MFT_ERR_FORMAT, "key length: %s", err.msg);
    memcpy(m, orig, (size_t)n);
    uint64_t kl; memcpy(&kl, orig + 24, 8);
    uint32_t badtype = 77; memcpy(m + 32 + kl, &badtype, 4);
    spit(TMP, m, n);
    EXPECT(mft_gguf_open(&g, TMP, &err) == MFT_ERR_FORMAT && strstr(err.msg, "type"), "value type: %s", err.msg);
    /* random byte flips never crash: each open either fails cleanly or succeeds */
    uint64_t r = 9;
    for (int k = 0; k < 200; k++) {
        memcpy(m, orig, (size_t)n);
        for (int f = 0; f < 4; f++) m[(mft__rand_u64(&r) % 4096)] ^= (char)(1 + mft__rand_u64(&r) % 255);
        spit(TMP, m, n);
        if (!mft_tokenizer_open(&t, TMP, 0, &err)) mft_tokenizer_free(&t);
    }
    free(m);
    free(orig);
    /* JSON: a syntax error is reported with line:column */
    const char *bad = "{\n  \"model\": {\"type\": \"BPE\",\n   \"vocab\": {\"a\": 0,}\n}";
    spit(TMP, bad, (long)strlen(bad));
    EXPECT(mft_tokenizer_open(&t, TMP, 0, &err) == MFT_ERR_FORMAT && strstr(err.msg, ":3:"), "json syntax: %s", err.msg);
    const char *unsup = "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}";
    spit(TMP, unsup, (long)strlen(unsup));
    EXPECT(mft_tokenizer_open(&t, TMP, 0, &err) == MFT_ERR_FORMAT && strstr(err.msg, "BPE"), "unsupported model: %s", err.msg);
    /* structures of the wrong type are errors, not reads out of bounds (reviewer's repros) */
    const char *odd[] = {
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":\"zzzz\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]},\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":\"zzzz\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[a-z]+\"}}}",
    };
    for (int k = 0; k < 3; k++) {
        spit(TMP, odd[k], (long)strlen(odd[k]));
        EXPECT(mft_tokenizer_open(&t, TMP, 0, &err) == MFT_ERR_FORMAT, "odd json %d: %s", k, err.msg);
    }
    EXPECT(strstr(err.msg, "regex not supported: [a-z]+") && !strstr(err.msg, "pre_tokenizer\""), "regex message: %s", err.msg);
    /* a .model piece without its string: an empty piece, no crash */
    const unsigned char pb[] = { 0x0A, 0x05, 0x15, 0x00, 0x00, 0x80, 0x3F, 0x0A, 0x03, 0x0A, 0x01, 'a', 0x12, 0x02, 0x18, 0x02 };
    spit("build/test_tmp.model", pb, (long)sizeof pb);
    if (mft_tokenizer_open(&t, "build/test_tmp.model", 0, &err) == MFT_OK) {
        int ids[8], nn;
        EXPECT(mft_encode(&t, "aa", 2, 0, ids, 8, &nn, NULL, &err) == MFT_OK, "encode with an empty piece");
        mft_tokenizer_free(&t);
    }
    remove("build/test_tmp.model");
    /* SentencePiece .model: truncated */
    const char *tm = asset("tok512.model", "llama2c/tok512.model");
    char *mo = tm ? slurp(tm, &n) : NULL;
    if (!tm) { printf("    tok512.model not found: truncated .model check skipped\n"); missing_asset("tok512.model"); }
    else EXPECT(mo, "cannot read %s", tm);
    if (mo) {
        char tmpm[64];
        snprintf(tmpm, sizeof tmpm, "build/test_tmp.model");
        spit(tmpm, mo, n / 2);
        EXPECT(mft_tokenizer_open(&t, tmpm, 0, &err) == MFT_ERR_FORMAT && strstr(err.msg, "protobuf"), "truncated .model: %s", err.msg);
        remove(tmpm);
        free(mo);
    }
    remove(TMP);
}

/* offsets stay in order when NFC reorders marks; the streaming decoder consumes nothing when
   its buffer is too small */
static void test_tokenizer_offsets_stream(void)
{
    mft_tokenizer t;
    mft_error err;
    int ids[32], offs[64], n;
    const char *qp = asset("qwen3/tokenizer.json", "tokenizers/qwen3/tokenizer.json");
    if (!qp) { missing_asset("qwen3/tokenizer.json"); SKIP("qwen3 tokenizer.json not found"); }
    if (mft_tokenizer_open(&t, qp, 0, &err)) { EXPECT(0, "%s: %s", qp, err.msg); return; }
    const char *x = "x\xCC\x81\xCC\x96 y"; /* x, acute (230), grave below (220): reordered */
    EXPECT(mft_encode(&t, x, -1, 0, ids, 32, &n, offs, &err) == MFT_OK, "encode");
    int ordered = 1;
    for (int i = 0; i < n; i++) ordered &= offs[2 * i] <= offs[2 * i + 1] && (i == 0 || offs[2 * i] >= offs[2 * i - 2]) && (i == 0 || offs[2 * i] >= offs[2 * i - 1]);
    EXPECT(ordered && offs[0] == 0 && offs[2 * n - 1] == (int)strlen(x), "NFC offsets out of order or not covering");
    mft_detok d = { -1, 0, { 0 } };
    char out[64];
    int pl;
    mft_token_bytes(&t, -1, ids[0], &pl);
    int need = -1, got = -1;
    EXPECT(mft_detok_stream(&t, &d, ids[0], out, pl - 1 >= 0 ? pl - 1 : 0, &need) == MFT_ERR_SPACE && need == pl &&
           d.prev == -1 && d.npend == 0, "a refused call must consume nothing and say what it needs (%d)", need);
    EXPECT(mft_detok_stream(&t, &d, ids[0], out, 64, &got) == MFT_OK && got == pl && d.prev == ids[0], "then it works");
    mft_tokenizer_free(&t);
}

/* the generated Unicode tables: a few classes and NFC compositions with their source offsets
   (the generator itself checks its tables against the UCD, code point by code point) */
static void test_unicode_tables(void)
{
    const struct mft__uc_tables *U = mft__uc_tab();
    EXPECT(U->maxdec >= 1 && U->maxdec <= MFT__UC_MAXDEC && U->version && U->ascii[' '] - '0' == MFT__UC_S, "the tables (Unicode %s) fit the code", U->version);
    EXPECT(mft__uc_class('a') == MFT__UC_L && mft__uc_class(0x00E9) == MFT__UC_L && mft__uc_class(0x4E2D) == MFT__UC_L, "letters");
    EXPECT(mft__uc_class('7') == MFT__UC_N && mft__uc_class(0x00BD) == MFT__UC_N && mft__uc_class(0x2460) == MFT__UC_N, "numbers (Nd, No)");
    EXPECT(mft__uc_class(' ') == MFT__UC_S && mft__uc_class(0x3000) == MFT__UC_S && mft__uc_class(0x00A0) == MFT__UC_S && mft__uc_class(0x200B) == 0, "white space (ZWSP is not)");
    EXPECT(mft__uc_class(0x0301) == MFT__UC_M && mft__uc_class(0x110000) == 0, "marks, beyond U+10FFFF");
    struct { const char *in, *out; int src[8]; } cases[] = {
        { "e\xCC\x81", "\xC3\xA9", { 0, 0 } },                                  /* e + acute -> U+00E9 */
        { "a\xCC\x82\xCC\xA3", "\xE1\xBA\xAD", { 0, 0, 0 } },                   /* a + circumflex + dot below -> U+1EAD */
        { "q\xCC\x87\xCC\xA3", "q\xCC\xA3\xCC\x87", { 0, 3, 3, 1, 1 } },        /* reordered by combining class */
        { "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "\xEA\xB0\x81", { 0, 0, 0 } }, /* Hangul L V T -> U+AC01 */
        { "e\xFF\xCC\x81", "e\xFF\xCC\x81", { 0, 1, 2, 2 } },                   /* an invalid byte blocks */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char out[32];
        int src[32];
        int n = mft__uc_nfc((const unsigned char *)cases[i].in, (int)strlen(cases[i].in), out, sizeof out, src);
        int ok = n == (int)strlen(cases[i].out) && !memcmp(out, cases[i].out, (size_t)n);
        for (int k = 0; ok && k < n; k++) ok = src[k] == cases[i].src[k];
        EXPECT(ok, "NFC case %zu", i);
    }
}

/* chat templates: every conversation in tests/data/chat_goldens.jsonl (rendered by the
   models' own Jinja templates with jinja2) renders to the same bytes */
static void test_chat_templates(void)
{
    long n;
    char *data = slurp("tests/data/chat_goldens.jsonl", &n);
    if (!data) { EXPECT(0, "missing tests/data/chat_goldens.jsonl"); return; }
    int cases = 0, bad = 0, per[MFT_CHAT_COUNT] = { 0 };
    char *line = data, *end = data + n;
    char *out = malloc(1 << 16);
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl) nl = end;
        mft__json j;
        uint32_t root = mft__json_parse(&j, line, (size_t)(nl - line));
        if (root == MFT__JNONE) { EXPECT(0, "goldens: %s", j.err); mft__json_free(&j); break; }
        uint32_t tn = mft__jget(&j, root, "template");
        int tl = 0;
        const char *ts = mft__jstr(&j, tn, &tl);
        char tname[32];
        snprintf(tname, sizeof tname, "%.*s", tl, ts ? ts : "");
        int fam = mft_chat_family(tname);
        if (fam < 0) { EXPECT(0, "goldens: unknown template '%s'", tname); mft__json_free(&j); break; }
        per[fam]++;
        uint32_t msgs = mft__jget(&j, root, "messages");
        mft_chat_msg m[16];
        int nm = 0;
        for (uint32_t c = j.node[msgs].first; c != MFT__JNONE && nm < 16; c = j.node[c].next, nm++) {
            uint32_t r = mft__jget(&j, c, "role");
            m[nm].role = mft__jstr_is(&j, r, "system") ? MFT_ROLE_SYSTEM : mft__jstr_is(&j, r, "user") ? MFT_ROLE_USER :
                         mft__jstr_is(&j, r, "assistant") ? MFT_ROLE_ASSISTANT : MFT_ROLE_TOOL;
            m[nm].content = mft__jstr(&j, mft__jget(&j, c, "content"), &m[nm].len);
        }
        int gen = j.node[mft__jget(&j, root, "add_generation_prompt")].type == MFT__J_TRUE, wl = 0, len = 0, ranges[32];
        const char *want = mft__jstr(&j, mft__jget(&j, root, "text"), &wl);
        /* the BOS and EOS texts come from a tokenizer: a two-token stand-in is all it takes */
        mft_tokenizer tok;
        memset(&tok, 0, sizeof tok);
        static char specials[64];
        static uint32_t off[3];
        int gem = fam == MFT_CHAT_GEMMA || fam == MFT_CHAT_GEMMA3;
        const char *bt = fam == MFT_CHAT_LLAMA3 ? "<|begin_of_text|>" : gem ? "<bos>" : fam == MFT_CHAT_QWEN3 || fam == MFT_CHAT_CHATML ? "" : "<s>";
        const char *et = gem ? "<eos>" : "</s>";
        snprintf(specials, sizeof specials, "%s%s", bt, et);
        off[0] = 0; off[1] = (uint32_t)strlen(bt); off[2] = off[1] + (uint32_t)strlen(et);
        tok.pieces = specials; tok.piece_off = off; tok.vocab_size = 2; tok.mem = specials;
        tok.bos_id = *bt ? 0 : -1;
        tok.eos_id = 1;
        int always = fam == MFT_CHAT_LLAMA3;
        mft_error err;
        int ok = mft_chat_render(fam, &tok, m, nm, gen || always, out, 1 << 16, &len, ranges, NULL, &err) == MFT_OK && len == wl && !memcmp(out, want, (size_t)wl);
        /* ranges inside the text, in message order (but for a system message: Mistral v3
           writes it before the last user turn) */
        for (int i = 0, prev = 0; ok && i < nm; i++) {
            ok = ranges[2 * i] < 0 || (ranges[2 * i] <= ranges[2 * i + 1] && ranges[2 * i + 1] <= len && (m[i].role == MFT_ROLE_SYSTEM || ranges[2 * i] >= prev));
            if (ranges[2 * i] >= 0 && m[i].role != MFT_ROLE_SYSTEM) prev = ranges[2 * i + 1];
        }
        if (!ok && bad++ < 2) printf("    template %d, %d messages: got\n%s\n    want\n%.*s\n", fam, nm, out, wl, want);
        cases++;
        mft__json_free(&j);
        line = nl + 1;
    }
    printf("    %d/%d renderings identical to the Jinja templates'\n", cases - bad, cases);
    EXPECT(bad == 0 && cases >= 200, "%d of %d renderings differ", bad, cases);
    for (int f = 1; f < MFT_CHAT_COUNT; f++) EXPECT(per[f] >= 8, "only %d goldens for template %s", per[f], mft_chat_family_name(f));
    /* every template file is detected as its family, and the names go both ways */
    static const char *const files[] = { "chatml", "zephyr", "llama2", "mistral", "mistral-v0.1", "mistral-v3", "gemma", "gemma3" };
    for (int f = 0; f < (int)(sizeof files / sizeof *files); f++) {
        char path[128];
        snprintf(path, sizeof path, "tests/data/templates/%s.jinja", files[f]);
        long tn;
        char *tpl = slurp(path, &tn);
        int got = tpl ? mft_chat_detect(tpl, NULL) : -2;
        EXPECT(got == mft_chat_family(files[f]), "%s detected as %d", files[f], got);
        free(tpl);
    }
    for (int f = 0; f < MFT_CHAT_COUNT; f++) EXPECT(mft_chat_family(mft_chat_family_name(f)) == f, "family name %d", f);
    EXPECT(mft_chat_family("nonsense") < 0 && !mft_chat_family_name(MFT_CHAT_COUNT), "unknown family names");
    /* what the templates refuse, the renderer refuses */
    mft_chat_msg sysfirst[2] = { { MFT_ROLE_SYSTEM, "s", 1 }, { MFT_ROLE_USER, "u", 1 } }, twice[2] = { { MFT_ROLE_USER, "a", 1 }, { MFT_ROLE_USER, "b", 1 } };
    int len;
    EXPECT(mft_chat_render(MFT_CHAT_GEMMA, NULL, sysfirst, 2, 0, out, 1 << 16, &len, NULL, NULL, NULL) == MFT_ERR_ARG, "gemma accepted a system message");
    EXPECT(mft_chat_render(MFT_CHAT_MISTRAL, NULL, twice, 2, 0, out, 1 << 16, &len, NULL, NULL, NULL) == MFT_ERR_ARG, "mistral accepted two user turns");
    /* detection from the real template strings */
    mft_tokenizer q;
    mft_error qerr;
    const char *qp = asset("qwen3/tokenizer.json", "tokenizers/qwen3/tokenizer.json");
    if (!qp) { printf("    qwen3 tokenizer.json not found: its detection skipped\n"); missing_asset("qwen3/tokenizer.json"); }
    else if (mft_tokenizer_open(&q, qp, 0, &qerr)) EXPECT(0, "%s: %s", qp, qerr.msg);
    else { EXPECT(mft_chat_detect(q.chat_template, NULL) == MFT_CHAT_QWEN3, "qwen3 not detected"); mft_tokenizer_free(&q); }
    if (mft_tokenizer_open(&q, "tests/data/ggml-vocab-phi-3.gguf", 0, &qerr)) EXPECT(0, "tests/data/ggml-vocab-phi-3.gguf: %s", qerr.msg);
    else { EXPECT(mft_chat_detect(q.chat_template, NULL) == MFT_CHAT_PHI3, "phi-3 not detected"); mft_tokenizer_free(&q); }
    const char *lp = asset("llama3/tokenizer.json", "tokenizers/llama3/tokenizer.json");
    if (!lp) { printf("    llama3 tokenizer.json not found: its detection skipped\n"); missing_asset("llama3/tokenizer.json"); }
    else if (mft_tokenizer_open(&q, lp, 0, &qerr)) EXPECT(0, "%s: %s", lp, qerr.msg);
    else {
        int always = 0;
        EXPECT(mft_chat_detect(q.chat_template, &always) == MFT_CHAT_LLAMA3 && always, "llama3 (always adds the assistant header) not detected");
        mft_tokenizer_free(&q);
    }
    free(out);
    free(data);
}

/* the trained tokens of an example as text, trained runs in [brackets] */
static void masked_text(const mft_tokenizer *t, const mft_example *ex, char *out, int cap)
{
    int w = 0, open = 0, prev = -1;
    for (int i = 0; i < ex->n && w < cap - 64; i++) {
        int on = i > 0 && ex->w[i - 1] > 0, pl;
        const char *p = mft_token_bytes(t, prev, ex->ids[i], &pl);
        if (on && !open) { out[w++] = '['; open = 1; }
        if (!on && open) { out[w++] = ']'; open = 0; }
        if (t->types[ex->ids[i]] == 3) { p = "<END>"; pl = on ? 5 : 0; }
        if (w + pl < cap - 8) { memcpy(out + w, p, (size_t)pl); w += pl; }
        prev = ex->ids[i];
    }
    if (open) out[w++] = ']';
    out[w] = 0;
}

static int example(const mft_tokenizer *t, const mft_data_opts *o, const char *json, char *out, int cap, mft_example *keep)
{
    mft_example ex;
    mft_error err;
    if (mft_example_from_json(t, o, json, -1, "t.jsonl", 7, &ex, &err)) { snprintf(out, (size_t)cap, "ERROR %s", err.msg); return -1; }
    masked_text(t, &ex, out, cap);
    int n = ex.n_trained;
    if (keep) *keep = ex; else mft_example_free(&ex);
    return n;
}

/* the golden renderings as token ids: maskft's tokenizers (special tokens parsed) give the ids
   a Hugging Face tokenizer gives (tests/gen_chat_ids.mjs -> tests/data/chat_ids.jsonl), and an
   example built from the same messages (mft_example_from_json) has exactly those ids */
static void test_chat_ids(void)
{
    long n;
    char *data = slurp("tests/data/chat_ids.jsonl", &n);
    if (!data) { EXPECT(0, "missing tests/data/chat_ids.jsonl"); return; }
    static const char *const names[3] = { "llama3", "qwen3", "mistral" };
    const char *paths[3] = { asset("llama3/tokenizer.json", "tokenizers/llama3/tokenizer.json"), "tests/data/qwen3/tokenizer.json",
                             "tests/data/mistral/tokenizer.json" };
    mft_tokenizer tok[3];
    int have[3] = { 0 }, cases = 0, bad = 0, per[MFT_CHAT_COUNT] = { 0 };
    for (int k = 0; k < 3; k++) {
        mft_error lerr;
        if (!paths[k]) continue; /* only the Llama-3 one can be absent: reported below */
        have[k] = !mft_tokenizer_open(&tok[k], paths[k], 0, &lerr);
        EXPECT(have[k], "%s: %s", paths[k], lerr.msg);
    }
    EXPECT(have[1] && have[2], "vendored qwen3 / mistral tokenizers did not load");
    int *ids = malloc(sizeof(int) * 8192);
    char *line = data, *end = data + n;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl) nl = end;
        mft__json j;
        uint32_t root = mft__json_parse(&j, line, (size_t)(nl - line));
        line = nl + 1;
        if (root == MFT__JNONE) { EXPECT(0, "chat_ids: %s", j.err); mft__json_free(&j); break; }
        int tl = 0, kl = 0, rl = 0, xl = 0, k;
        const char *tn = mft__jstr(&j, mft__jget(&j, root, "template"), &tl), *kn = mft__jstr(&j, mft__jget(&j, root, "tokenizer"), &kl);
        const char *rec = mft__jstr(&j, mft__jget(&j, root, "record"), &rl), *text = mft__jstr(&j, mft__jget(&j, root, "text"), &xl);
        char tname[32];
        snprintf(tname, sizeof tname, "%.*s", tl, tn);
        for (k = 0; k < 3 && !(kl == (int)strlen(names[k]) && !memcmp(kn, names[k], (size_t)kl)); k++) {}
        if (k == 3 || !have[k]) { mft__json_free(&j); continue; }
        int want[4096], nw = 0, got = 0, fam = mft_chat_family(tname);
        for (uint32_t c = j.node[mft__jget(&j, root, "ids")].first; c != MFT__JNONE && nw < 4096; c = j.node[c].next) want[nw++] = (int)j.node[c].num;
        mft_error err;
        int ok = !mft_encode(&tok[k], text, xl, MFT_SPECIAL, ids, 8192, &got, NULL, &err) && same_ids(ids, got, want, nw);
        if (!ok && bad < 2) print_mismatch(tname, text, xl, ids, got, want, nw);
        /* the same conversation as a training record: the same ids (the shared Llama-3 template
           always ends with an assistant header, which a training example does not render) */
        mft_data_opts o = mft_data_opts_default();
        o.template_family = fam;
        mft_example ex;
        if (ok && !mft_example_from_json(&tok[k], &o, rec, rl, "chat_ids", 1, &ex, &err)) {
            int cut = fam == MFT_CHAT_LLAMA3 ? 4 : 0;
            ok = ex.n == nw - cut && same_ids(ex.ids, ex.n, want, nw - cut);
            if (!ok && bad < 2) print_mismatch(tname, rec, rl, ex.ids, ex.n, want, nw - cut);
            mft_example_free(&ex);
        } else if (ok) { ok = 0; if (bad < 2) printf("    %s record: %s\n", tname, err.msg); }
        bad += !ok;
        cases++;
        per[fam]++;
        mft__json_free(&j);
    }
    printf("    %d/%d conversations give the reference ids (", cases - bad, cases);
    for (int f = 0; f < MFT_CHAT_COUNT; f++) if (per[f]) printf(" %s %d", mft_chat_family_name(f), per[f]);
    printf(" )\n");
    EXPECT(bad == 0 && cases >= 50, "%d of %d conversations give other ids", bad, cases);
    for (int k = 0; k < 3; k++) if (have[k]) mft_tokenizer_free(&tok[k]);
    if (!paths[0]) { printf("    Llama-3 tokenizer not found: its conversations skipped\n"); missing_asset("llama3/tokenizer.json"); }
    free(ids);
    free(data);
}

/* the mask: markup, spans, policies, end tokens, alignment, errors */
static void test_data_masks(void)
{
    mft_tokenizer tok;
    mft_error err;
    char out[4096];
    if (mft_tokenizer_open(&tok, TOKEN, 512, &err)) { EXPECT(0, "%s", err.msg); return; }
    mft_data_opts o = mft_data_opts_default();
    /* key markup in a plain completion: the key and the model's end (BOS) are trained */
    EXPECT(example(&tok, &o, "{\"prompt\": \"Lily had a cat named\", \"completion\": \" {{key}}Mochi{{/key}}. She was happy.\"}", out, sizeof out, NULL) > 0 &&
           !strcmp(out, "Lily had a cat named[ Mochi.] She was happy.[<END>]"), "key + end (the token after it, which ends the word, too): %s", out);
    /* the same span as key_spans, in code points; a span that starts inside a token trains it */
    EXPECT(example(&tok, &o, "{\"messages\": [{\"role\": \"user\", \"content\": \"Who?\"}, {\"role\": \"assistant\", \"content\": \"It was Mochi.\", \"key_spans\": [[9, 10]]}]}", out, sizeof out, NULL) > 0 &&
           !strcmp(out, "Who?It was Mo[ch]i.[<END>]"), "key_spans (the span [9,10) is the 'c' inside the token 'ch'): %s", out);
    /* a token of whitespace alone right before the key (tok512 splits " Pickle" into " ", "P", ...)
       is trained with it */
    EXPECT(example(&tok, &o, "{\"text\": \"Sara had a dog named {{key}}Pickle{{/key}}.\"}", out, sizeof out, NULL) > 0 &&
           !strcmp(out, "Sara had a dog named[ Pickle.<END>]"), "the space before the key: %s", out);
    /* code points, not bytes: é is 2 bytes but 1 code point */
    example(&tok, &o, "{\"messages\": [{\"role\": \"assistant\", \"content\": \"\\u00e9t\\u00e9 Pip\", \"key_spans\": [[4, 7]]}]}", out, sizeof out, NULL);
    EXPECT(!strcmp(out, "\xC3\xA9t\xC3\xA9[ Pip<END>]"), "multi-byte spans: %s", out);
    /* a key at the very start of the answer; an escaped delimiter is literal text */
    example(&tok, &o, "{\"prompt\": \"A\", \"completion\": \"{{key}} cat{{/key}} and \\\\{{key}} stay\"}", out, sizeof out, NULL);
    EXPECT(!strncmp(out, "A[ cat and]", 11) && strstr(out, "{{key}} stay"), "start + escape: %s", out);
    /* policies: all trains the whole answer; diff only what the draft does not have */
    o.policy = MFT_POLICY_ALL;
    EXPECT(example(&tok, &o, "{\"prompt\": \"A\", \"completion\": \" big dog.\"}", out, sizeof out, NULL) > 0 && !strcmp(out, "A[ big dog.<END>]"), "all: %s", out);
    o.policy = MFT_POLICY_DIFF;
    example(&tok, &o, "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \" The dog is red.\", \"draft\": \" The dog is blue.\"}]}", out, sizeof out, NULL);
    EXPECT(strstr(out, " The dog is[") && strstr(out, "red") && !strstr(out, "[ The"), "diff: %s", out);
    /* a draft equal to the answer: nothing to learn, an empty mask (reported, not trained) */
    EXPECT(example(&tok, &o, "{\"messages\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \" Same.\", \"draft\": \" Same.\"}]}", out, sizeof out, NULL) == 0, "equal draft: %s", out);
    /* TRL's conversational prompt/completion: the prompt's turns are not trained, the
       completion's are; "ended": false (a cut draft) leaves its end token untrained */
    o.policy = MFT_POLICY_ALL;
    EXPECT(example(&tok, &o, "{\"prompt\": [{\"role\": \"user\", \"content\": \"Q\"}, {\"role\": \"assistant\", \"content\": \" old\"}], \"completion\": [{\"role\": \"assistant\", \"content\": \" big dog.\"}]}", out, sizeof out, NULL) > 0 &&
           !strcmp(out, "Q old[ big dog.<END>]"), "conversational prompt/completion: %s", out);
    EXPECT(example(&tok, &o, "{\"prompt\": \"A\", \"completion\": \" big dog.\", \"ended\": false}", out, sizeof out, NULL) > 0 &&
           !strcmp(out, "A[ big dog.]"), "ended false (prompt/completion): %s", out);
    EXPECT(example(&tok, &o, "{\"messages\": [{\"role\": \"user\", \"content\": \"A\"}, {\"role\": \"assistant\", \"content\": \" big dog.\", \"ended\": false}]}", out, sizeof out, NULL) > 0 &&
           !strcmp(out, "A[ big dog.]"), "ended false (message): %s", out);
    /* errors name the field and its column: a prompt alone, a bad "ended", unbalanced markup */
    example(&tok, &o, "{\"prompt\": \"A\"}", out, sizeof out, NULL);
    EXPECT(strstr(out, "t.jsonl:7:12: a \"prompt\" without a \"completion\""), "prompt alone: %s", out);
    example(&tok, &o, "{\"text\": \"x\", \"ended\": 0}", out, sizeof out, NULL);
    EXPECT(strstr(out, "t.jsonl:7:24: \"ended\" must be true or false"), "ended 0: %s", out);
    example(&tok, &o, "{\"prompt\": \"A\", \"completion\": \" {{key}}dog\"}", out, sizeof out, NULL);
    EXPECT(strstr(out, "t.jsonl:7:31: \"completion\": unbalanced {{key}}"), "unbalanced markup names the field: %s", out);
    /* train/weight per message; an empty turn; all-turns eligibility */    /* train/weight per message; an empty turn; all-turns eligibility */
    o.policy = MFT_POLICY_ALL;
    mft_example ex;
    EXPECT(example(&tok, &o, "{\"messages\": [{\"role\": \"user\", \"content\": \" hi\", \"train\": true, \"weight\": 0.5}, {\"role\": \"assistant\", \"content\": \"\"}, {\"role\": \"assistant\", \"content\": \" ok\", \"train\": false}]}", out, sizeof out, &ex) > 0, "train/weight: %s", out);
    float wmax = 0;
    for (int i = 0; i < ex.n; i++) wmax = ex.w[i] > wmax ? ex.w[i] : wmax;
    EXPECT(wmax == 0.5f && !strstr(out, "[ ok") && strstr(out, "[ hi"), "weight 0.5 and train:false: %s (max w %g)", out, wmax);
    /* the off-by-one: the weight of trained token i sits at w[i-1], the position predicting it */
    for (int i = 1; i < ex.n; i++) EXPECT((ex.w[i - 1] > 0) == (ex.tag[i] >= 2), "weight of token %d not at position %d", i, i - 1);
    EXPECT(ex.w[ex.n - 1] == 0, "the last position predicts nothing");
    mft_example_free(&ex);
    /* pre-tokenized records: labels -100 are not trained; input_ids must be token ids */
    EXPECT(example(&tok, &o, "{\"input_ids\": [1, 403, 407, 261], \"labels\": [-100, -100, 407, 261]}", out, sizeof out, &ex) == 2 &&
           ex.w[0] == 0 && ex.w[1] > 0 && ex.w[2] > 0, "input_ids/labels");
    mft_example_free(&ex);
    /* a label is -100 or the token itself; 1e10 (found by fuzzing) or another token is an error */
    EXPECT(example(&tok, &o, "{\"input_ids\": [1, 403, 407], \"labels\": [-100, 1e10, 407]}", out, sizeof out, NULL) < 0 &&
           strstr(out, "labels[1] must be -100 or input_ids[1] (403)"), "a label of 1e10: %s", out);
    EXPECT(example(&tok, &o, "{\"input_ids\": [1, 403, 407], \"labels\": [-100, 404, 407]}", out, sizeof out, NULL) < 0, "a label of another token: %s", out);
    /* truncation to the context keeps every weight on its position */
    o.max_len = 5;
    EXPECT(example(&tok, &o, "{\"text\": \"Once upon a time there was a big dog.\"}", out, sizeof out, &ex) >= 0 && ex.n == 5 && ex.w[4] == 0, "truncation");
    mft_example_free(&ex);
    o.max_len = 0;
    /* errors name the file, the line and the column */
    EXPECT(example(&tok, &o, "{\"prompt\": \"a\" \"completion\": \"b\"}", out, sizeof out, NULL) < 0 && strstr(out, "t.jsonl:7:16:"), "json error: %s", out);
    EXPECT(example(&tok, &o, "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", out, sizeof out, NULL) < 0 && strstr(out, "role"), "bad role: %s", out);
    EXPECT(example(&tok, &o, "{\"prompt\": \"a\", \"completion\": \"{{key}}b\"}", out, sizeof out, NULL) < 0 && strstr(out, "unbalanced"), "unbalanced: %s", out);
    EXPECT(example(&tok, &o, "{\"input_ids\": [1, 99999], \"labels\": [1, 2]}", out, sizeof out, NULL) < 0, "bad id: %s", out);
    EXPECT(example(&tok, &o, "[1, 2]", out, sizeof out, NULL) < 0 && strstr(out, "object"), "not an object: %s", out);
    mft_tokenizer_free(&tok);
    /* a chat template: Qwen3's <|im_end|> ends the trained turn */
    const char *qp = asset("qwen3/tokenizer.json", "tokenizers/qwen3/tokenizer.json");
    if (!qp) { printf("    qwen3 tokenizer.json not found: its chat mask skipped\n"); missing_asset("qwen3/tokenizer.json"); }
    else if (mft_tokenizer_open(&tok, qp, 0, &err)) EXPECT(0, "%s: %s", qp, err.msg);
    else {
        o = mft_data_opts_default();
        EXPECT(example(&tok, &o, "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello {{key}}Pip{{/key}}!\"}]}", out, sizeof out, &ex) == 3, "qwen3 mask: %s", out);
        int im_end = -1;
        for (int i = 1; i < ex.n; i++) if (ex.tag[i] == 3) im_end = ex.ids[i];
        EXPECT(im_end == 151645, "the end token trained should be <|im_end|> (151645), got %d", im_end);
        mft_example_free(&ex);
        mft_tokenizer_free(&tok);
    }
}

/* surprise:TAU / known:TAU split the selected tokens by the model's NLL, exactly, and keep
   the end token */
static void test_mask_by_nll(void)
{
    mft_model m;
    mft_tokenizer tok;
    mft_error err;
    if (mft_model_open(&m, MODEL, 1, 512, MFT_FORWARD, &err) || mft_tokenizer_open(&tok, TOKEN, 512, &err)) { EXPECT(0, "%s", err.msg); return; }
    mft_data_opts o = mft_data_opts_default();
    o.policy = MFT_POLICY_ALL;
    const char *rec = "{\"prompt\": \"Once upon a time, there was a little girl named\", \"completion\": \" Zorbaxi. She liked purple mountains.\"}";
    mft_example all, sur, kno;
    EXPECT(!mft_example_from_json(&tok, &o, rec, -1, "t", 1, &all, &err), "%s", err.msg);
    EXPECT(!mft_example_from_json(&tok, &o, rec, -1, "t", 1, &sur, &err) && !mft_example_from_json(&tok, &o, rec, -1, "t", 1, &kno, &err), "%s", err.msg);
    float *nll = fbuf((size_t)all.n);
    EXPECT(mft_token_nll(&m, all.ids, all.n, nll, &err) == MFT_OK, "%s", err.msg);
    float tau = 2.0f;
    EXPECT(mft_mask_by_nll(&m, &sur, tau, 1, &err) == MFT_OK && mft_mask_by_nll(&m, &kno, tau, 0, &err) == MFT_OK, "%s", err.msg);
    int both = 0, split_ok = 1, n_sur = 0, n_kno = 0;
    for (int t = 0; t + 1 < all.n; t++) {
        if (all.w[t] == 0) { split_ok &= sur.w[t] == 0 && kno.w[t] == 0; continue; }
        if (all.tag[t + 1] == 3) { both += sur.w[t] > 0 && kno.w[t] > 0; continue; }
        split_ok &= (sur.w[t] > 0) == (nll[t] > tau) && (kno.w[t] > 0) == (nll[t] <= tau);
        n_sur += sur.w[t] > 0; n_kno += kno.w[t] > 0;
    }
    EXPECT(split_ok, "surprise/known do not split the tokens by NLL");
    EXPECT(both == 1, "the end token must stay in both");
    EXPECT(n_sur > 0 && n_kno > 0, "a split with one side empty proves little (%d / %d)", n_sur, n_kno);
    /* the invented name is surprising to the model */
    EXPECT(sur.n_trained == n_sur + 1 && kno.n_trained == n_kno + 1, "n_trained");
    free(nll);
    mft_example_free(&all); mft_example_free(&sur); mft_example_free(&kno);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
}

/* drafting: the model's greedy answer becomes content and draft; the record stays valid
   JSON that the mask reads back; text records come back unchanged */
static void test_draft_record(void)
{
    mft_model m;
    mft_tokenizer tok;
    mft_error err;
    if (mft_model_open(&m, MODEL, 1, 1, MFT_GENERATE, &err) || mft_tokenizer_open(&tok, TOKEN, 512, &err)) { EXPECT(0, "%s", err.msg); return; }
    mft_data_opts o = mft_data_opts_default();
    uint64_t rng = 1;
    char *out = NULL;
    const char *rec = "{\"messages\": [{\"role\": \"user\", \"content\": \"Lily had a \\\"cat\\\" named\"}, {\"role\": \"assistant\", \"content\": \"x\", \"weight\": 2}]}";
    EXPECT(mft_draft_record(&m, &tok, &o, rec, -1, 12, 0.0f, &rng, "t", 1, &out, &err) == MFT_OK && out, "draft: %s", err.msg);
    if (out) {
        mft__json j;
        uint32_t root = mft__json_parse(&j, out, strlen(out));
        EXPECT(root != MFT__JNONE, "draft output is not JSON: %s", out);
        uint32_t a = root != MFT__JNONE ? j.node[mft__jget(&j, root, "messages")].first : MFT__JNONE;
        if (a != MFT__JNONE) a = j.node[a].next;
        int cl = 0, dl = 0;
        const char *c = a != MFT__JNONE ? mft__jstr(&j, mft__jget(&j, a, "content"), &cl) : NULL;
        const char *d = a != MFT__JNONE ? mft__jstr(&j, mft__jget(&j, a, "draft"), &dl) : NULL;
        EXPECT(c && d && cl == dl && cl > 0 && !memcmp(c, d, (size_t)cl) && strstr(out, "\"weight\": 2"), "content = draft, weight kept: %s", out);
        mft__json_free(&j);
        mft_example ex;
        o.policy = MFT_POLICY_DIFF;
        EXPECT(mft_example_from_json(&tok, &o, out, -1, "t", 1, &ex, &err) == MFT_OK && ex.n_trained == 0, "an unedited draft trains nothing");
        mft_example_free(&ex);
        free(out);
    }
    EXPECT(mft_draft_record(&m, &tok, &o, "{\"text\": \"as is\"}", -1, 12, 0.0f, &rng, "t", 1, &out, &err) == MFT_OK && !strcmp(out, "{\"text\": \"as is\"}"), "text record");
    free(out);
    EXPECT(mft_draft_record(&m, &tok, &o, "{\"prompt\": 3}", -1, 12, 0.0f, &rng, "t", 4, &out, &err) == MFT_ERR_FORMAT && strstr(err.msg, "t:4:"), "bad record: %s", err.msg);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
}

/* every test, in the order of its function in this file; the name is the function's without
   "test_" (an unlisted test function is an unused static function: an error with -Werror) */
/* ---- the method in the library: packing, generation, scoring ------------------------------- */

static mft_example hand_example(int n, int first_id, const float *w)
{
    mft_example e;
    memset(&e, 0, sizeof e);
    e.n = n;
    e.ids = calloc((size_t)n, sizeof(int));
    e.w = calloc((size_t)n, sizeof(float));
    e.tag = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) {
        e.ids[i] = first_id + i;
        e.w[i] = i + 1 < n ? w[i] : 0.0f;
        e.n_trained += e.w[i] > 0;
    }
    return e;
}

/* Until learned, on the real model: mft_score_trained gives each example the smallest
   probability of its trained tokens, exactly as mft_token_nll computes them one by one, for
   examples packed several to a row; training one example step by step, it is "learned" from
   the first step at which that hand-computed minimum reaches P, and not before. */
static void test_until_learned(void)
{
    mft_model m;
    mft_tokenizer tok;
    mft_error err;
    if (mft_model_open(&m, MODEL, 2, 64, MFT_TRAIN, &err) || mft_tokenizer_open(&tok, TOKEN, 512, &err)) { EXPECT(0, "%s", err.msg); return; }
    m.n_threads = 1;
    mft_data_opts o = mft_data_opts_default();
    const char *recs[3] = { "{\"text\": \"Lily had a cat named {{key}}Mochi{{/key}}. She loved it.\"}",
                            "{\"text\": \"Tom lived in {{key}}Brambleton{{/key}}.\"}",
                            "{\"text\": \"The sun was hot. {{key}}Zorbaxi{{/key}} came to play with {{key}}Zorbaxi{{/key}}.\"}" };
    mft_example ex[3];
    for (int i = 0; i < 3; i++) EXPECT(!mft_example_from_json(&tok, &o, recs[i], -1, "t", i + 1, &ex[i], &err), "%s", err.msg);
    float pm[3], nll[64];
    int which[2] = { 2, 0 };
    const float P = 0.5f;
    mft_train_opts to = mft_train_opts_default();
    to.lr = 1e-3f;
    int flipped_at = -1;
    for (int step = 0; step < 60 && flipped_at < 0; step++) {
        EXPECT(mft_score_trained(&m, ex, which, 2, pm, &err) == MFT_OK, "score: %s", err.msg);
        for (int k = 0; k < 2; k++) {
            const mft_example *e = &ex[which[k]];
            EXPECT(mft_token_nll(&m, e->ids, e->n, nll, &err) == MFT_OK, "nll");
            float lo = 1.0f;
            for (int t = 0; t + 1 < e->n; t++)
                if (e->w[t] > 0 && expf(-nll[t]) < lo) lo = expf(-nll[t]);
            EXPECT(fabsf(pm[k] - lo) <= 2e-6f + 1e-4f * lo, "step %d example %d: p_min %.7f, by hand %.7f", step, which[k], pm[k], lo);
            if (k == 1 && lo >= P) flipped_at = step;
            if (k == 1) EXPECT((pm[k] >= P) == (lo >= P), "step %d: learned by the score and by hand disagree", step);
        }
        if (flipped_at >= 0) break;
        int in[64], tg[64];
        float w[64];
        const mft_example *e = &ex[0];
        for (int t = 0; t + 1 < e->n; t++) { in[t] = e->ids[t]; tg[t] = e->ids[t + 1]; w[t] = e->w[t]; }
        EXPECT(mft_train_step(&m, &to, in, tg, w, 1, e->n - 1, NULL, &err) == MFT_OK, "step: %s", err.msg);
    }
    EXPECT(flipped_at > 0, "example 0 was learned before training (%d) or never", flipped_at);
    /* without trained tokens an example scores 1; errors are reported */
    for (int t = 0; t < ex[1].n; t++) ex[1].w[t] = 0;
    EXPECT(mft_score_trained(&m, ex, NULL, 2, pm, &err) == MFT_OK && pm[1] == 1.0f, "no trained token: %g", pm[1]);
    EXPECT(mft_score_trained(&m, NULL, NULL, 2, pm, &err) == MFT_ERR_ARG, "NULL accepted");
    for (int i = 0; i < 3; i++) mft_example_free(&ex[i]);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
}

/* The teacher in context: its top-k are the base model's logits on context + example, sorted,
   at the example's positions; an empty context (the example's own BOS) is the base model on the
   example itself; the context is the record's, or its key sentences */
static void test_teacher(void)
{
    mft_model m;
    mft_tokenizer tok;
    mft_error err;
    if (mft_model_open(&m, MODEL, 1, 128, MFT_FORWARD, &err) || mft_tokenizer_open(&tok, TOKEN, 512, &err)) { EXPECT(0, "%s", err.msg); return; }
    mft_data_opts o = mft_data_opts_default();
    const char *rec = "{\"text\": \"Lily had a cat named {{key}}Mochi{{/key}}. Mochi liked the sun! Then {{key}}Mochi{{/key}} slept.\"}";
    char *ctx_text;
    int cl;
    EXPECT(mft_record_context(rec, -1, &o, &ctx_text, &cl, &err) == MFT_OK && !strcmp(ctx_text, "Lily had a cat named Mochi. Then Mochi slept."),
           "key sentences: '%s'", ctx_text ? ctx_text : "(null)");
    mft_free(ctx_text);
    const char *rec2 = "{\"text\": \"Lily had a cat named {{key}}Mochi{{/key}}.\", \"context\": \"Lily's cat is Mochi.\"}";
    EXPECT(mft_record_context(rec2, -1, &o, &ctx_text, &cl, &err) == MFT_OK && !strcmp(ctx_text, "Lily's cat is Mochi.") && cl == 20, "context field");
    mft_free(ctx_text);
    EXPECT(mft_record_context("{\"text\": ", -1, &o, &ctx_text, &cl, &err) != MFT_OK, "bad JSON accepted");
    mft_example ex;
    EXPECT(!mft_example_from_json(&tok, &o, rec, -1, "t", 1, &ex, &err), "%s", err.msg);
    int ctx[32], nc = 0, V = 512, K = 8;
    EXPECT(!mft_encode(&tok, "Lily's cat is Mochi.", -1, MFT_BOS, ctx, 32, &nc, NULL, &err), "encode");
    int *ids = malloc((size_t)ex.n * K * sizeof(int)), seq[160];
    float *p = fbuf((size_t)ex.n * K);
    for (int empty = 0; empty < 2; empty++) {
        int n_ctx = empty ? 1 : nc, *cx = empty ? ex.ids : ctx;
        EXPECT(mft_teacher_topk(&m, cx, n_ctx, 1, &ex, K, ids, p, &err) == MFT_OK, "topk: %s", err.msg);
        memcpy(seq, cx, (size_t)n_ctx * sizeof(int));
        memcpy(seq + n_ctx, ex.ids + 1, (size_t)(ex.n - 1) * sizeof(int));
        EXPECT(mft_forward(&m, seq, NULL, NULL, 1, n_ctx + ex.n - 1, NULL, NULL) == MFT_OK, "forward");
        int bad = 0;
        for (int t = 0; t + 1 < ex.n; t++) {
            const float *z = m.a.logits + (size_t)(n_ctx - 1 + t) * V;
            double l = mft__lse64(z, V);
            for (int i = 0; i < K; i++) {
                int id = ids[(size_t)t * K + i], above = 0;
                for (int j = 0; j < V; j++) above += z[j] > z[id];
                bad += above != i && !(i && z[ids[(size_t)t * K + i - 1]] == z[id]); /* rank i, ties in any order */
                bad += fabs(p[(size_t)t * K + i] - exp(z[id] - l)) > 1e-6;
            }
        }
        EXPECT(!bad, "%s context: %d top-k entries are not the teacher's", empty ? "empty" : "a", bad);
    }
    /* the context moves the teacher where the fact is: after "named" it expects " Mochi" more */
    int named = -1;
    for (int t = 0; t + 1 < ex.n; t++) if (ex.w[t] > 0) { named = t; break; }
    float pe[8], pc[8];
    int ie[8], ic[8];
    (void)pe; (void)pc; (void)ie; (void)ic;
    EXPECT(named > 0, "no key token");
    EXPECT(mft_teacher_topk(&m, ctx, 500, 1, &ex, K, ids, p, &err) == MFT_ERR_ARG, "a context longer than the teacher accepted");
    /* the prefix the tool gives the teacher: BOS + the context, the example's BOS dropped */
    int *pre = NULL, np = 0, drop = -1;
    EXPECT(mft_teacher_prefix(&tok, &ex, "Lily's cat is Mochi.", &pre, &np, &drop, &err) == MFT_OK && np == nc && drop == 1 &&
           !memcmp(pre, ctx, (size_t)nc * sizeof(int)), "prefix: %d tokens, drop %d", np, drop);
    mft_free(pre);
    EXPECT(mft_teacher_prefix(&tok, &ex, NULL, &pre, &np, &drop, &err) == MFT_OK && np == 1 && pre[0] == ex.ids[0] && drop == 1, "empty prefix");
    mft_free(pre);
    /* a table of two examples: 0 with its context (untrained positions), 1 as replay (every
       position); packed in one row, the soft-target weights and rows land where they belong */
    mft_soft_table st;
    mft_example two[2] = { ex, ex };
    EXPECT(mft_soft_table_init(&st, 3, K, &err) == MFT_OK && mft_soft_table_set(&st, 0, &m, &tok, &ex, "Lily's cat is Mochi.", 0, &err) == MFT_OK &&
           mft_soft_table_set(&st, 1, &m, &tok, &ex, NULL, 1, &err) == MFT_OK && st.rows == 2L * (ex.n - 1) && st.first[2] == -1, "table: %s", err.msg);
    EXPECT(mft_soft_table_set(&st, 1, &m, &tok, &ex, NULL, 1, &err) == MFT_ERR_ARG, "an example set twice");
    EXPECT(mft_teacher_topk(&m, ex.ids, 1, 1, &ex, K, ids, p, &err) == MFT_OK &&
           !memcmp(st.ids + (size_t)st.first[1] * K, ids, (size_t)(ex.n - 1) * K * sizeof(int)) &&
           !memcmp(st.p + (size_t)st.first[1] * K, p, (size_t)(ex.n - 1) * K * sizeof(float)), "the replay rows are the base model's own");
    int order2[2] = { 0, 1 }, T2 = 2 * (ex.n - 1) + 3;
    mft_pack pk;
    EXPECT(mft_pack_examples(&pk, two, 2, order2, 2, 0, T2, &err) == MFT_OK && pk.n_rows == 1, "pack");
    int *sid = malloc((size_t)T2 * K * sizeof(int));
    float *sp = fbuf((size_t)T2 * K), *tw = fbuf((size_t)T2), sc = 0, sa = 0;
    mft_pack_soft_scale(&pk, two, &st, 0, 1, 2.0f, 3.0f, &sc, &sa);
    int nu = 0;
    for (int t = 0; t + 1 < ex.n; t++) nu += ex.w[t] == 0.0f;
    double W = 2.0 * ex.n_trained;
    EXPECT(fabs(sc - 2.0 * W / nu) < 1e-5 && fabs(sa - 3.0 * W / (ex.n - 1)) < 1e-5, "scales %g %g", sc, sa);
    EXPECT(mft_pack_fill_soft(&pk, two, &st, 0, 1, sc, sa, sid, sp, tw, &err) == MFT_OK, "fill");
    int bad = 0;
    for (int t = 0; t < T2; t++) {
        int e = t < ex.n - 1 ? 0 : t < 2 * (ex.n - 1) ? 1 : -1, j = e == 1 ? t - (ex.n - 1) : t;
        float want = e < 0 ? 0.0f : e == 1 ? sa : ex.w[j] == 0.0f ? sc : 0.0f;
        bad += tw[t] != want;
        if (e >= 0) bad += memcmp(sid + (size_t)t * K, st.ids + (size_t)(st.first[e] + j) * K, (size_t)K * sizeof(int)) != 0;
    }
    EXPECT(!bad, "%d soft-target positions misplaced", bad);
    free(sid); free(sp); free(tw);
    mft_pack_free(&pk);
    mft_soft_table_free(&st);
    EXPECT(mft_teacher_topk(&m, ctx, nc, 1, &ex, 0, ids, p, &err) == MFT_ERR_ARG, "k 0 accepted");
    free(ids); free(p);
    mft_example_free(&ex);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
}

/* an epoch's order: the examples not learned, once each, and replay examples at the stated
   share, every replay example once before any twice */
static void test_epoch_order(void)
{
    int order[64], perm[10], seen[10] = { 0 };
    unsigned char learned[6] = { 0, 1, 0, 0, 1, 0 };
    uint64_t rng = 5;
    long next = 0;
    int n = mft_epoch_order(order, learned, 6, 10, 0.5f, &rng, &next, perm);
    int facts = 0, rep = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        if (order[i] < 6) { facts++; bad += learned[order[i]]; }
        else { rep++; seen[order[i] - 6]++; }
    }
    EXPECT(n == 8 && facts == 4 && rep == 4 && !bad && next == 4, "ratio 0.5 of 4 facts: %d in all, %d facts, %d replay, next %ld", n, facts, rep, next);
    n = mft_epoch_order(order, learned, 6, 10, 0.75f, &rng, &next, perm); /* 12 more: the pass of 10 ends, a new begins */
    for (int i = 0; i < n; i++) if (order[i] >= 6) seen[order[i] - 6]++;
    int lo = 99, hi = 0;
    for (int i = 0; i < 10; i++) { lo = seen[i] < lo ? seen[i] : lo; hi = seen[i] > hi ? seen[i] : hi; }
    EXPECT(n == 16 && next == 16 && lo == 1 && hi == 2, "ratio 0.75: %d, next %ld, replay counts %d..%d", n, next, lo, hi);
    EXPECT(mft_epoch_order(order, NULL, 3, 0, 0.5f, &rng, &next, perm) == 3, "no replay");
}

static void test_pack_rows(void)
{
    /* three examples of 5, 4 and 7 tokens (4, 3 and 6 positions), two epochs of two slots each,
       rows of 8 positions: [ex0 ex1] [ex2] [ex1], the second epoch starting a row of its own */
    float w0[4] = { 0, 1, 0, 0 }, w1[3] = { 0, 0, 2 }, w2[6] = { 1, 1, 0, 0, 0, 1 };
    mft_example ex[3] = { hand_example(5, 10, w0), hand_example(4, 20, w1), hand_example(7, 30, w2) };
    int order[4] = { 0, 1, 2, 1 };
    mft_pack p;
    mft_error err;
    EXPECT(mft_pack_examples(&p, ex, 3, order, 4, 2, 8, &err) == MFT_OK, "pack: %s", err.msg);
    EXPECT(p.n_rows == 3 && p.row_first[0] == 0 && p.row_first[1] == 2 && p.row_first[2] == 3 && p.row_first[3] == 4,
           "rows %d: %d %d %d %d", p.n_rows, p.row_first[0], p.row_first[1], p.row_first[2], p.row_first[3]);
    int in[16], tg[16], pos[16];
    float w[16], aw[16];
    mft_fill_info fi;
    EXPECT(mft_pack_fill(&p, ex, 0, 2, in, tg, w, pos, aw, 0.5f, &fi, &err) == MFT_OK, "fill");
    int want_in[16] = { 10, 11, 12, 13, 20, 21, 22, 0, 30, 31, 32, 33, 34, 35, 0, 0 };
    int want_pos[16] = { 0, 1, 2, 3, 0, 1, 2, 0, 0, 1, 2, 3, 4, 5, 0, 1 };
    float want_w[16] = { 0, 1, 0, 0, 0, 0, 2, 0, 1, 1, 0, 0, 0, 1, 0, 0 };
    float want_aw[16] = { .5f, 0, .5f, .5f, .5f, .5f, 0, 0, 0, 0, .5f, .5f, .5f, 0, 0, 0 };
    int ok = fi.rows == 2 && fi.tokens == 13 && fi.trained == 5;
    for (int t = 0; t < 16; t++) {
        int tgt = want_in[t] ? want_in[t] + 1 : 0;
        ok &= in[t] == want_in[t] && tg[t] == tgt && pos[t] == want_pos[t] && w[t] == want_w[t] && aw[t] == want_aw[t];
    }
    EXPECT(ok, "rows laid out wrongly (rows %d, tokens %ld, trained %ld)", fi.rows, fi.tokens, fi.trained);
    EXPECT(mft_pack_fill(&p, ex, 2, 2, in, tg, w, pos, NULL, 0, &fi, &err) == MFT_OK && fi.rows == 1 && fi.tokens == 3,
           "the last rows: %d rows", fi.rows);
    /* W * sum(w) / untrained positions: rows 0-1 have sum w = 6 on 13 positions, 5 trained */
    float sc = mft_pack_anchor_scale(&p, ex, 0, 2, 2.0f);
    EXPECT(fabsf(sc - 2.0f * 6.0f / 8.0f) < 1e-6f, "anchor scale %g", (double)sc);
    mft_pack_free(&p);
    int bad_order[2] = { 0, 3 };
    EXPECT(mft_pack_examples(&p, ex, 3, bad_order, 2, 0, 8, &err) == MFT_ERR_ARG, "an order outside the examples");
    EXPECT(mft_pack_examples(&p, ex, 3, order, 4, 0, 5, &err) == MFT_ERR_ARG && strstr(err.msg, "order[2]"),
           "an example longer than a row: %s", err.msg);
    /* the data order's generator: Fisher-Yates with xorshift64, the same stream as mft_rand */
    int a[8] = { 0, 1, 2, 3, 4, 5, 6, 7 }, b[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
    uint64_t s1 = 1337, s2 = 1337;
    mft_shuffle(a, 8, &s1);
    for (int i = 7; i > 0; i--) {
        int j = (int)(mft_rand(&s2) % (uint64_t)(i + 1)), t = b[i];
        b[i] = b[j];
        b[j] = t;
    }
    EXPECT(!memcmp(a, b, sizeof a) && s1 == s2 && memcmp(a, (int[8]){ 0, 1, 2, 3, 4, 5, 6, 7 }, sizeof a), "shuffle");
    EXPECT(mft_hash(MFT_HASH_SEED, "a", 1) == 0xaf63dc4c8601ec8cull, "FNV-1a 64 of \"a\"");
    for (int i = 0; i < 3; i++) mft_example_free(&ex[i]);
}

static int stop_after_3(void *user, int token)
{
    (void)token;
    return ++*(int *)user >= 3;
}

static void test_generate(void)
{
    mft_model m;
    mft_tokenizer tok;
    mft_error err;
    if (mft_model_open(&m, MODEL, 1, 1, MFT_GENERATE, &err) || mft_tokenizer_open(&tok, TOKEN, m.cfg.vocab_size, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    /* greedy from BOS, as the decode loop of test_greedy_matches_llama2c: the same tokens */
    int prompt[1] = { tok.bos_id }, out[600], want[600], n = 0, ended = 0, k = 0;
    mft_gen_opts g = mft_gen_opts_default();
    g.max_new = 200;
    EXPECT(mft_generate(&m, prompt, 1, &g, NULL, out, 600, &n, &ended, &err) == MFT_OK && n == 200 && !ended,
           "greedy: %d tokens", n);
    int token = tok.bos_id;
    for (int pos = 0; pos < 200; pos++) {
        float *lg;
        if (mft_decode(&m, token, pos, &lg, NULL)) break;
        want[k++] = token = mft_sample(lg, m.cfg.vocab_size, 0.0f, 1.0f, NULL);
    }
    EXPECT(k == 200 && !memcmp(out, want, 200 * sizeof(int)), "mft_generate differs from the decode loop");
    /* a stop token ends it and is not written */
    int first = 0;
    while (want[first] != want[5]) first++;
    g.stop[0] = want[5];
    EXPECT(mft_generate(&m, prompt, 1, &g, NULL, out, 600, &n, &ended, &err) == MFT_OK && n == first && ended,
           "a stop token: %d tokens (it came at %d), ended %d", n, first, ended);
    /* on_token stops after 3; a small buffer is MFT_ERR_SPACE with the count */
    int calls = 0;
    g.on_token = stop_after_3;
    g.user = &calls;
    EXPECT(mft_generate(&m, prompt, 1, &g, NULL, out, 600, &n, &ended, &err) == MFT_OK && n == 3 && calls == 3, "on_token");
    g.on_token = NULL;
    g.stop[0] = -1;
    EXPECT(mft_generate(&m, prompt, 1, &g, NULL, out, 5, &n, &ended, &err) == MFT_ERR_SPACE && n == 200, "cap 5: %d", n);
    /* the context: a prompt of seq_len - 2 tokens leaves room for 2 */
    int *longp = calloc((size_t)m.cfg.seq_len + 1, sizeof(int));
    for (int i = 0; i < m.cfg.seq_len + 1; i++) longp[i] = 300 + i % 100;
    EXPECT(mft_generate(&m, longp, m.cfg.seq_len - 2, &g, NULL, out, 600, &n, &ended, &err) == MFT_OK && n == 2,
           "at the end of the context: %d new tokens", n);
    EXPECT(mft_generate(&m, longp, m.cfg.seq_len + 1, &g, NULL, out, 600, &n, &ended, &err) == MFT_ERR_ARG, "too long");
    EXPECT(mft_generate(&m, longp, 0, &g, NULL, out, 600, &n, &ended, NULL) == MFT_ERR_ARG, "empty prompt");
    free(longp);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
}

/* a conversation that grows: only the new tokens are fed, and the result is mft_generate's */
static void test_generate_cached(void)
{
    mft_model m;
    mft_tokenizer tok;
    mft_error err;
    if (mft_model_open(&m, MODEL, 1, 1, MFT_GENERATE, &err) || mft_tokenizer_open(&tok, TOKEN, m.cfg.vocab_size, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    int S = m.cfg.seq_len, a[64], b[128], c[128], d[256], na = 0, nb, nm = 0, nd;
    int ref[4][64], nr[4], out[64], no = 0, ended = 0, *held = calloc((size_t)S, sizeof(int)), nh = 0;
    mft_encode(&tok, "Lily had a cat named", -1, MFT_BOS, a, 64, &na, NULL, NULL);
    mft_gen_opts g = mft_gen_opts_default();
    g.max_new = 12;
    /* the references, each fed from position 0: a; a, its continuation and more; b changed early */
    EXPECT(mft_generate(&m, a, na, &g, NULL, ref[0], 64, &nr[0], &ended, &err) == MFT_OK && nr[0] == 12, "a");
    memcpy(b, a, (size_t)na * sizeof(int));
    memcpy(b + na, ref[0], 12 * sizeof(int));
    mft_encode(&tok, " One day, the cat", -1, 0, b + na + 12, 64, &nm, NULL, NULL);
    nb = na + 12 + nm;
    memcpy(c, b, (size_t)nb * sizeof(int));
    c[2] = c[2] == 300 ? 301 : 300;
    EXPECT(mft_generate(&m, b, nb, &g, NULL, ref[1], 64, &nr[1], &ended, &err) == MFT_OK, "b");
    EXPECT(mft_generate(&m, c, nb, &g, NULL, ref[2], 64, &nr[2], &ended, &err) == MFT_OK, "c");
    /* cached: a from nothing, then b (its first na + 11 tokens held), then c (2 held) */
    EXPECT(mft_generate_cached(&m, a, na, held, &nh, &g, NULL, out, 64, &no, &ended, &err) == MFT_OK && no == 12 &&
           !memcmp(out, ref[0], 12 * sizeof(int)) && nh == na + 11 && !memcmp(held, a, (size_t)na * sizeof(int)) &&
           !memcmp(held + na, out, 11 * sizeof(int)), "a cached: %d new, %d held", no, nh);
    EXPECT(mft_generate_cached(&m, b, nb, held, &nh, &g, NULL, out, 64, &no, &ended, &err) == MFT_OK &&
           no == nr[1] && !memcmp(out, ref[1], (size_t)no * sizeof(int)) && nh == nb + no - 1, "b cached differs");
    EXPECT(mft_generate_cached(&m, c, nb, held, &nh, &g, NULL, out, 64, &no, &ended, &err) == MFT_OK &&
           no == nr[2] && !memcmp(out, ref[2], (size_t)no * sizeof(int)) && nh == nb + no - 1, "c cached differs");
    /* a prompt the cache holds whole: its last token is fed again for the logits */
    nd = nh;
    memcpy(d, held, (size_t)nd * sizeof(int));
    EXPECT(mft_generate_cached(&m, d, nd, held, &nh, &g, NULL, out, 64, &no, &ended, &err) == MFT_OK && no == 12,
           "held whole");
    EXPECT(mft_generate(&m, d, nd, &g, NULL, ref[3], 64, &nr[3], &ended, &err) == MFT_OK && nr[3] == no &&
           !memcmp(out, ref[3], (size_t)no * sizeof(int)), "held whole: differs from mft_generate");
    /* mft_generate used the cache: start over. A stop token: every new token was fed back */
    nh = 0;
    int first = 0;
    while (ref[0][first] != ref[0][4]) first++;
    g.stop[0] = ref[0][4];
    EXPECT(mft_generate_cached(&m, a, na, held, &nh, &g, NULL, out, 64, &no, &ended, &err) == MFT_OK && ended &&
           no == first && nh == na + first, "a stop token: %d new, %d held", no, nh);
    nh = S + 1;
    EXPECT(mft_generate_cached(&m, a, na, held, &nh, &g, NULL, out, 64, &no, &ended, NULL) == MFT_ERR_ARG, "n_cache > seq_len");
    free(held);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
}

/* a conversation's ids: the template (or plain text after BOS) encoded as a record is */
static void test_chat_encode(void)
{
    mft_tokenizer q, t;
    mft_error err;
    if (mft_tokenizer_open(&q, "tests/data/qwen3/tokenizer.json", 0, &err) || mft_tokenizer_open(&t, TOKEN, 512, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    mft_chat_msg m[3] = { { MFT_ROLE_SYSTEM, "Be brief.", 9 }, { MFT_ROLE_USER, "Hi <b>", 6 }, { MFT_ROLE_ASSISTANT, " Hello.", 7 } };
    char text[512];
    int len, ids[256], want[256], n = 0, nw = -1, nmeasure = -1;
    /* family -1: the tokenizer's chat_template (Qwen3's), with the assistant's header */
    mft_chat_render(MFT_CHAT_QWEN3, &q, m, 2, 1, text, sizeof text, &len, NULL, NULL, NULL);
    mft_encode(&q, text, len, MFT_SPECIAL, want, 256, &nw, NULL, NULL);
    EXPECT(mft_chat_encode(&q, -1, m, 2, 1, NULL, 0, &nmeasure, &err) == MFT_OK && nmeasure == nw, "measure: %d, %d", nmeasure, nw);
    EXPECT(mft_chat_encode(&q, -1, m, 2, 1, ids, 256, &n, &err) == MFT_OK && n == nw && !memcmp(ids, want, (size_t)n * sizeof(int)) &&
           ids[0] == mft_token_find(&q, "<|im_start|>", 12) && ids[n - 1] != ids[0], "qwen3: %s", err.msg);
    EXPECT(mft_chat_encode(&q, -1, m, 2, 1, ids, 3, &n, &err) == MFT_ERR_SPACE && n == nw, "cap 3");
    /* no template: plain text after BOS, as generate's prompt; a family named: no BOS */
    mft_encode(&t, "Be brief.Hi <b> Hello.", -1, MFT_BOS, want, 256, &nw, NULL, NULL);
    EXPECT(mft_chat_encode(&t, -1, m, 3, 1, ids, 256, &n, &err) == MFT_OK && n == nw && !memcmp(ids, want, (size_t)n * sizeof(int)),
           "plain: %d vs %d ids", n, nw);
    EXPECT(mft_chat_encode(&t, MFT_CHAT_CHATML, m, 3, 1, ids, 256, &n, &err) == MFT_OK && n > nw && ids[0] != t.bos_id, "chatml");
    EXPECT(mft_chat_encode(&t, MFT_CHAT_GEMMA, m, 3, 1, ids, 256, &n, &err) == MFT_ERR_ARG, "gemma took a system message");
    mft_tokenizer_free(&q);
    mft_tokenizer_free(&t);
}

static void test_score(void)
{
    mft_model m;
    mft_tokenizer tok;
    mft_error err;
    if (mft_model_open(&m, MODEL, 1, 512, MFT_FORWARD | MFT_GENERATE, &err) ||
        mft_tokenizer_open(&tok, TOKEN, m.cfg.vocab_size, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    const char *q = "Lily had a", *ch[2] = { " cat", " big dog" };
    int cl[2] = { 4, 8 }, chars[2];
    double ll[2];
    EXPECT(mft_score_choices(&m, &tok, q, 10, ch, cl, 2, ll, chars, &err) == MFT_OK, "choices: %s", err.msg);
    /* by hand: the tokens that " big dog" adds after the query's own encoding */
    int ids[64], n, nq;
    float nll[64];
    mft_encode(&tok, q, 10, MFT_BOS, ids, 64, &nq, NULL, NULL);
    mft_encode(&tok, "Lily had a big dog", -1, MFT_BOS, ids, 64, &n, NULL, NULL);
    mft_token_nll(&m, ids, n, nll, NULL);
    double want = 0.0;
    for (int t = nq - 1; t < n - 1; t++) want -= nll[t];
    EXPECT(fabs(ll[1] - want) < 1e-9 && chars[0] == 4 && chars[1] == 8 && ll[0] < 0, "ll %.6f vs %.6f", ll[1], want);
    const char *none[1] = { "" };
    int nl0[1] = { 0 };
    EXPECT(mft_score_choices(&m, &tok, q, 10, none, nl0, 1, ll, NULL, &err) == MFT_ERR_ARG && strstr(err.msg, "no token"),
           "an empty choice");
    /* fact recall: the model's own greedy continuation is recalled, a name it never says is not */
    mft_data_opts o = mft_data_opts_default();
    char said[512];
    int recalled = -1, sl;
    double lp;
    EXPECT(mft_score_fact(&m, &tok, &o, "Lily had a", 10, " zzq", 4, "f", 1, 48, &lp, &recalled, said, sizeof said, &sl, &err) ==
               MFT_OK && recalled == 0 && sl > 0 && lp < 0, "fact: %s", err.msg);
    char first[16] = " ";
    int fw = 0;
    while (fw < sl && fw < 14 && said[fw] != ' ') fw++;
    memcpy(first + 1, said, (size_t)fw);
    first[++fw] = 0;
    double lp2;
    EXPECT(fw > 1 && mft_score_fact(&m, &tok, &o, "Lily had a", 10, first, fw, "f", 2, 48, &lp2, &recalled, NULL, 0, &sl, &err) ==
               MFT_OK && recalled == 1 && lp2 > lp, "its own words (\"%s\") are recalled: %d, log-prob %.3f vs %.3f", first,
           recalled, lp2, lp);
    /* as whole words: the first word less its last letter is not recalled */
    first[fw - 1] = 0;
    EXPECT(fw > 3 && mft_score_fact(&m, &tok, &o, "Lily had a", 10, first, fw - 1, "f", 3, 48, &lp2, &recalled, NULL, 0, &sl, &err) ==
               MFT_OK && recalled == 0, "a part of a word (\"%s\") counted as recalled", first);
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
}

/* ---- one API contract: from memory, measured buffers, statuses without err --------------------- */

static void test_from_memory(void)
{
    long n;
    char *bin = slurp(MODEL, &n);
    mft_model a, b;
    mft_config c;
    mft_error err;
    EXPECT(bin && mft_model_config_from_memory(bin, (size_t)n, &c, &err) == MFT_OK && c.dim == 64, "config");
    EXPECT(mft_model_open(&a, MODEL, 1, 8, MFT_FORWARD, &err) == MFT_OK &&
           mft_model_open_from_memory(&b, bin, (size_t)n, 1, 8, MFT_FORWARD, &err) == MFT_OK &&
           !memcmp(a.params, b.params, a.n_params * sizeof(float)), "the same weights from memory: %s", err.msg);
    mft_model_free(&b);
    EXPECT(mft_model_open_from_memory(&b, bin, (size_t)n - 3, 1, 8, MFT_FORWARD, &err) == MFT_ERR_FORMAT &&
           strstr(err.msg, "truncated") && b.arena == NULL, "truncated in memory: %s", err.msg);
    EXPECT(mft_model_open_from_memory(&b, bin, (size_t)n, 1, 8, MFT_FORWARD, &err) == MFT_OK, "again");
    /* a training checkpoint read back from memory */
    EXPECT(mft_checkpoint_save(&a, TMP, "run", 3, &err) == MFT_OK, "save: %s", err.msg);
    long cn;
    char *ck = slurp(TMP, &cn), user[3];
    a.params[0] += 1.0f;
    EXPECT(ck && mft_checkpoint_load_from_memory(&a, ck, (size_t)cn, user, 3, &err) == MFT_OK &&
           !memcmp(a.params, b.params, a.n_params * sizeof(float)) && !memcmp(user, "run", 3), "checkpoint from memory");
    ck[cn / 2] ^= 1;
    EXPECT(mft_checkpoint_load_from_memory(&a, ck, (size_t)cn, user, 3, NULL) == MFT_ERR_FORMAT, "damaged (err NULL)");
    free(ck);
    remove(TMP);
    mft_model_free(&a);
    mft_model_free(&b);
    free(bin);
    /* every tokenizer format: the same ids from memory as from the path */
    const char *files[] = { TOKEN, "tests/data/tok512.model", "tests/data/tinyllamas-stories-260k-f32.gguf",
                            "tests/data/gpt2/tokenizer.json" };
    for (int i = 0; i < 4; i++) {
        mft_tokenizer t1, t2;
        long tn;
        char *data = slurp(files[i], &tn);
        int i1[64], i2[64], n1 = -1, n2 = -2;
        const char *text = "Once upon a time, Lily saw 42 cats.";
        EXPECT(data && mft_tokenizer_open(&t1, files[i], 512 + (i == 3) * 60000, &err) == MFT_OK &&
                   mft_tokenizer_open_from_memory(&t2, data, (size_t)tn, 512 + (i == 3) * 60000, &err) == MFT_OK,
               "%s: %s", files[i], err.msg);
        /* (tokenizer_config.json, which gives GPT-2 a BOS, is read beside a path only) */
        mft_encode(&t1, text, -1, i == 3 ? 0 : MFT_BOS, i1, 64, &n1, NULL, NULL);
        mft_encode(&t2, text, -1, i == 3 ? 0 : MFT_BOS, i2, 64, &n2, NULL, NULL);
        EXPECT(n1 == n2 && n1 > 5 && !memcmp(i1, i2, (size_t)n1 * sizeof(int)), "%s: %d vs %d ids", files[i], n1, n2);
        if (i == 2) {
            mft_gguf g1, g2;
            EXPECT(mft_gguf_open(&g1, files[i], &err) == MFT_OK && mft_gguf_open_from_memory(&g2, data, (size_t)tn, &err) ==
                   MFT_OK && g1.n_kv == g2.n_kv && g1.n_tensors == g2.n_tensors && g1.data_offset == g2.data_offset, "gguf");
            mft_gguf_free(&g1);
            mft_gguf_free(&g2);
            EXPECT(mft_gguf_open_from_memory(&g2, data, 100, NULL) == MFT_ERR_FORMAT, "a truncated GGUF (err NULL)");
        }
        mft_tokenizer_free(&t1);
        mft_tokenizer_free(&t2);
        free(data);
    }
    /* the status is the return value whether or not err is given */
    mft_tokenizer t;
    EXPECT(mft_tokenizer_open(&t, "no/such/file", 512, NULL) == MFT_ERR_IO, "missing file (err NULL)");
    EXPECT(mft_tokenizer_open_from_memory(&t, "{\"model\":", 9, 0, NULL) == MFT_ERR_FORMAT, "broken JSON (err NULL)");
    EXPECT(mft_model_open(&a, "no/such/file", 1, 1, MFT_FORWARD, NULL) == MFT_ERR_IO, "missing model (err NULL)");
}

static void test_buffers(void)
{
    mft_tokenizer tok;
    mft_error err;
    if (mft_tokenizer_open(&tok, "tests/data/qwen3/tokenizer.json", 0, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    mft_chat_msg m[2] = { { MFT_ROLE_USER, "Hi", 2 }, { MFT_ROLE_ASSISTANT, "Hello there", 11 } };
    int len = -1, len2 = -1, ranges[4];
    char out[256];
    EXPECT(mft_chat_render(MFT_CHAT_CHATML, &tok, m, 2, 1, NULL, 0, &len, ranges, NULL, &err) == MFT_OK && len > 20,
           "render measures: %d", len);
    EXPECT(mft_chat_render(MFT_CHAT_CHATML, &tok, m, 2, 1, out, len, &len2, NULL, NULL, &err) == MFT_ERR_SPACE &&
           len2 == len && (int)strlen(out) < len, "a buffer without room for the NUL");
    EXPECT(mft_chat_render(MFT_CHAT_CHATML, &tok, m, 2, 1, out, len + 1, &len2, NULL, NULL, &err) == MFT_OK &&
           len2 == len && (int)strlen(out) == len && ranges[2] > 0, "exact");
    int ids[64], n;
    mft_encode(&tok, out, len, MFT_SPECIAL, ids, 64, &n, NULL, NULL);
    char text[256];
    EXPECT(mft_decode_ids(&tok, ids, n, MFT_SPECIAL, NULL, 0, &len2, &err) == MFT_OK && len2 == len, "decode measures");
    EXPECT(mft_decode_ids(&tok, ids, n, MFT_SPECIAL, text, 10, &len2, &err) == MFT_ERR_SPACE && len2 == len &&
           strlen(text) < 10, "decode into 10 bytes");
    EXPECT(mft_json_escape("a\"b\n\x01", 5, NULL, 0, &len) == MFT_OK && len == 14, "escape measures: %d", len);
    EXPECT(mft_json_escape("a\"b\n\x01", 5, text, 15, &len) == MFT_OK && !strcmp(text, "\"a\\\"b\\n\\u0001\""), "%s", text);
    EXPECT(mft_json_escape("abc", 3, text, 5, &len) == MFT_ERR_SPACE && len == 5, "escape into 5 bytes");
    EXPECT(mft_token_type(&tok, mft_token_find(&tok, "<|im_end|>", 10)) == MFT_TOKEN_CONTROL &&
           mft_token_find(&tok, "<|no such|>", 11) == -1 && mft_token_type(&tok, -1) == 0, "token_find / token_type");
    mft_tokenizer_free(&tok);
    /* UTF-8 */
    EXPECT(mft_utf8_len("\xC3\xA9", 2) == 2 && mft_utf8_len("\xC0\xAF", 2) == 0 && mft_utf8_len("\xED\xA0\x80", 3) == 0 &&
           mft_utf8_valid("h\xC3\xA9!", 4) && !mft_utf8_valid("h\xC3", 2), "utf8");
    /* a whole file, and its JSONL records with their line numbers */
    const char *jl = "{\"a\": 1}\n\n  \t\r\n{\"b\": 2}\r\n{\"c\"}";
    spit(TMP, jl, (long)strlen(jl));
    char *data;
    size_t size, pos = 0;
    int line = 0, rl, lines[3], k = 0;
    const char *rec;
    EXPECT(mft_read_file(TMP, 1 << 20, &data, &size, &err) == MFT_OK && size == strlen(jl) && data[size] == 0, "read_file");
    while (k < 3 && mft_jsonl_next(data, size, &pos, &line, &rec, &rl)) lines[k++] = line;
    EXPECT(k == 3 && lines[0] == 1 && lines[1] == 4 && lines[2] == 5 && rl == 5 && !memcmp(rec, "{\"c\"}", 5),
           "jsonl records at lines %d %d %d", lines[0], lines[1], lines[2]);
    mft_free(data);
    EXPECT(mft_read_file(TMP, 10, &data, &size, &err) == MFT_ERR_FORMAT && data == NULL, "over the limit");
    remove(TMP);
    /* JSON arrays walked in order */
    mft_json *j = mft_json_parse("[10, 20, 30]", -1, NULL);
    int sum = 0, count = 0;
    for (int v = mft_json_first(j, mft_json_root(j)); v >= 0; v = mft_json_next(j, v), count++) {
        double x = 0;
        mft_json_num(j, v, &x);
        sum += (int)x;
    }
    EXPECT(count == 3 && sum == 60, "json first/next");
    mft_json_free(j);
}

/* errors in data point at the line and the column of the value at fault */
static void test_error_positions(void)
{
    mft_tokenizer tok;
    mft_error err;
    mft_example ex;
    if (mft_tokenizer_open(&tok, TOKEN, 512, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    mft_data_opts o = mft_data_opts_default();
    EXPECT(mft_example_from_json(&tok, &o, "{\"text\": 5}", -1, "d.jsonl", 3, &ex, &err) == MFT_ERR_FORMAT &&
           !strncmp(err.msg, "d.jsonl:3:10: ", 14), "%s", err.msg);
    EXPECT(mft_example_from_json(&tok, &o, "{\"messages\": [{\"role\": \"x\", \"content\": \"a\"}]}", -1, "d", 1, &ex, &err) ==
           MFT_ERR_FORMAT && !strncmp(err.msg, "d:1:24: ", 8), "%s", err.msg);
    EXPECT(mft_example_from_json(&tok, &o, "{\"text\" 1}", -1, "d", 7, &ex, &err) == MFT_ERR_FORMAT &&
           !strncmp(err.msg, "d:7:9: expected ':'", 19), "%s", err.msg);
    EXPECT(mft_example_from_json(&tok, &o, "{\"input_ids\": [1, 1e10]}", -1, "d", 2, &ex, &err) == MFT_ERR_FORMAT &&
           !strncmp(err.msg, "d:2:19: ", 8), "%s", err.msg);
    const char *bad_span = "{\"messages\": [{\"role\": \"assistant\", \"content\": \"abc\", \"key_spans\": [[0, 1], [2, 1e10]]}]}";
    EXPECT(mft_example_from_json(&tok, &o, bad_span, -1, "d", 1, &ex, &err) == MFT_ERR_FORMAT && strstr(err.msg, "key span"),
           "%s", err.msg);
    mft_tokenizer_free(&tok);
}

/* ---- real formats: Hugging Face folders ------------------------------------------------------ */

/* the slot and layer of a transformers tensor name (-1 when it is none of maskft's) */
static int hf_slot(const char *name, int *layer)
{
    char buf[160];
    for (int i = 0; i < MFT__NT; i++)
        for (int l = 0; l < (mft__slot_layered(i) ? 64 : 1); l++) {
            snprintf(buf, sizeof buf, mft__hf_names[i], l);
            if (!strcmp(buf, name)) {
                *layer = l;
                return i;
            }
        }
    return -1;
}

/* tests/data/hf/NAME, written by tests/gen_hf_models.py (PyTorch, float64): the folder's logits,
   masked loss and the gradient of every tensor, in transformers' names and layout */
static void hf_reference(const char *name)
{
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "tests/data/hf/%s", name);
    snprintf(path, sizeof path, "%s/ref.bin", dir);
    long n;
    char *ref = slurp(path, &n);
    if (!ref) {
        EXPECT(0, "%s missing", path);
        return;
    }
    int hdr[4];
    memcpy(hdr, ref + 8, 16);
    int B = hdr[0], T = hdr[1], V = hdr[2], NT = hdr[3], N = B * T;
    const char *p = ref + 24;
    int *in = (int *)p, *tg = (int *)(p + 4 * N);
    float *w = (float *)(p + 8 * N);
    double loss;
    memcpy(&loss, p + 12 * N, 8);
    const float *logits = (const float *)(p + 12 * N + 8);
    p = (const char *)(logits + (size_t)N * V);
    mft_model m;
    mft_error err;
    if (mft_model_open(&m, dir, B, T, MFT_TRAIN, &err)) {
        EXPECT(0, "%s: %s", dir, err.msg);
        free(ref);
        return;
    }
    EXPECT(m.cfg.vocab_size == V && memcmp(ref, "MFTHF001", 8) == 0, "%s: a reference of another model", name);
    mft_fwd_info fi;
    EXPECT(mft_forward(&m, in, tg, w, B, T, &fi, &err) == MFT_OK, "%s forward: %s", name, err.msg);
    size_t at = 0;
    double e = worst(m.a.logits, logits, (size_t)N * V, 5e-5, 1e-5, &at);
    EXPECT(e <= 1, "%s: logits off by %.3g of the bound at %zu (%.7g vs %.7g)", name, e, at, m.a.logits[at], logits[at]);
    EXPECT(fabs(fi.loss - loss) <= 2e-6 * fabs(loss), "%s: loss %.8f vs torch %.8f", name, fi.loss, loss);
    EXPECT(mft_backward(&m, &err) == MFT_OK, "%s backward: %s", name, err.msg);
    /* every tensor of the file, the gradient in maskft's layout turned back to transformers' */
    int hs = mft_head_dim(&m.cfg), seen = 0;
    size_t sz[MFT__NT], off[MFT__NT], o = 0;
    mft__tensor_sizes(&m.cfg, sz);
    for (int i = 0; i < MFT__NT; o += sz[i++]) off[i] = o;
    for (int t = 0; t < NT; t++) {
        int nl, numel, layer = 0;
        memcpy(&nl, p, 4);
        char tn[160];
        memcpy(tn, p + 4, (size_t)nl);
        tn[nl] = 0;
        memcpy(&numel, p + 4 + nl, 4);
        float *g = fbuf((size_t)numel); /* the names leave the floats unaligned */
        memcpy(g, p + 8 + nl, (size_t)numel * sizeof(float));
        p += 8 + nl + (size_t)numel * sizeof(float);
        int slot = hf_slot(tn, &layer);
        if (slot < 0) {
            EXPECT(0, "%s: tensor %s has no slot", name, tn);
            free(g);
            continue;
        }
        uint64_t rows, cols;
        mft__slot_shape(&m.cfg, slot, &rows, &cols);
        uint64_t rc = cols ? cols : 1;
        EXPECT((uint64_t)numel == rows * rc, "%s: %s has %d elements", name, tn, numel);
        const float *mine = m.grads + off[slot] + (size_t)layer * rows * rc;
        float *back = fbuf((size_t)numel);
        int heads = mft__slot_heads(&m.cfg, slot);
        for (uint64_t r = 0; r < rows; r++) {
            uint64_t from = heads ? mft__rope_row(r, hs) : r;
            for (uint64_t k = 0; k < rc; k++) back[r * rc + k] = (float)(mine[from * rc + k] / fi.weight_sum);
        }
        double gmax = 0;
        for (int k = 0; k < numel; k++) gmax = fabs(g[k]) > gmax ? fabs(g[k]) : gmax;
        e = worst(back, g, (size_t)numel, 1e-5 * gmax + 1e-9, 1e-4, &at);
        EXPECT(e <= 1, "%s: gradient of %s off by %.3g of the bound at %zu (%.6g vs %.6g)", name, tn, e, at, back[at], g[at]);
        free(back);
        free(g);
        seen++;
    }
    EXPECT(seen == mft_tensor_count(&m.cfg) * 1 || seen > 0, "%s: %d tensors compared", name, seen);
    mft_model_free(&m);
    free(ref);
}

static void test_hf_reference(void)
{
    const char *names[6] = { "llama-f32", "llama3-bf16", "smollm-f16", "qwen2-bf16", "qwen3-f32", "stories260K" };
    for (int i = 0; i < 6; i++) hf_reference(names[i]);
}

/* one model from every format: stories260K as llama2.c's .bin and as a Hugging Face folder (q/k
   rows permuted by tests/gen_hf_models.py) are the same weights, give the same logits to the
   bit and generate llama2.c's greedy text */
static void test_formats_same_model(void)
{
    mft_model a, b;
    mft_error err;
    if (mft_model_open(&a, MODEL, 1, 16, MFT_FORWARD | MFT_GENERATE, &err) ||
        mft_model_open(&b, "tests/data/hf/stories260K", 1, 16, MFT_FORWARD | MFT_GENERATE, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    EXPECT(a.n_params == b.n_params && !memcmp(a.params, b.params, a.n_params * sizeof(float)),
           "the folder's weights are not the checkpoint's");
    int in[16] = { 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426 };
    EXPECT(mft_forward(&a, in, NULL, NULL, 1, 16, NULL, NULL) == MFT_OK && mft_forward(&b, in, NULL, NULL, 1, 16, NULL, NULL) ==
           MFT_OK && !memcmp(a.a.logits, b.a.logits, 16 * 512 * sizeof(float)), "logits differ");
    long n;
    char *txt = slurp("tests/data/hf/stories260K/greedy_ids.txt", &n);
    int want[64], nw = 0, got[64], ng, ended;
    for (char *q = txt; q && nw < 64;) {
        char *e;
        long v = strtol(q, &e, 10);
        if (e == q) break;
        want[nw++] = (int)v;
        q = e;
    }
    mft_gen_opts g = mft_gen_opts_default();
    g.max_new = nw;
    int bos = 1;
    EXPECT(nw == 30 && mft_generate(&b, &bos, 1, &g, NULL, got, 64, &ng, &ended, &err) == MFT_OK && ng == nw &&
           !memcmp(got, want, (size_t)nw * sizeof(int)), "greedy ids from the folder differ from torch's");
    mft_tokenizer t;
    EXPECT(mft_tokenizer_for_model(&t, "tests/data/hf/stories260K", 512, &err) == MFT_OK && !strcmp(t.source, "tokenizer.json"),
           "the folder's tokenizer: %s", err.msg);
    mft_tokenizer_free(&t);
    free(txt);
    mft_model_free(&a);
    mft_model_free(&b);
}

static void mkdir_p(const char *d) { mkdir(d, 0755); }
/* removes a scratch folder of plain files */
static void rm_folder(const char *d)
{
    DIR *dir = opendir(d);
    struct dirent *e;
    char p[512];
    while (dir && (e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            remove(p);
        }
    if (dir) closedir(dir);
    rmdir(d);
}

/* a folder of the llama-f32 fixture with one file changed */
static void hf_broken(const char *what, const char *file, const void *bytes, long len, mft_status want, const char *msg)
{
    const char *src = "tests/data/hf/llama-f32";
    char dst[64];
    snprintf(dst, sizeof dst, "build/hf_broken_%ld", (long)getpid());
    const char *files[4] = { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" };
    mkdir_p(dst);
    for (int i = 0; i < 4; i++) {
        char a[200], b[200];
        long n;
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", dst, files[i]);
        char *d = slurp(a, &n);
        if (d) spit(b, d, n);
        free(d);
    }
    char path[200];
    snprintf(path, sizeof path, "%s/%s", dst, file);
    if (bytes) spit(path, bytes, len);
    else remove(path);
    mft_model m;
    mft_error err;
    mft_status s = mft_model_open(&m, dst, 1, 4, MFT_FORWARD, &err);
    EXPECT(s == want && strstr(err.msg, msg) && (s == MFT_OK) == (m.arena != NULL), "%s: status %d, \"%s\" (want %d, \"%s\")", what, s,
           s ? err.msg : "", want, msg);
    if (!s) mft_model_free(&m);
}

/* the config with one key set to a new value */
static char *config_with(const char *key, const char *value)
{
    long n;
    char *c = slurp("tests/data/hf/llama-f32/config.json", &n), *k = c ? strstr(c, key) : NULL;
    if (!k) return c;
    char *colon = strchr(k, ':'), *end = colon + 1;
    while (*end && *end != ',' && *end != '\n') end++;
    if (*end == '\n' && end[-1] == '}') end--;
    char *out = malloc((size_t)n + strlen(value) + 8);
    size_t a = (size_t)(colon + 1 - c);
    memcpy(out, c, a);
    sprintf(out + a, " %s%s", value, end);
    free(c);
    return out;
}

static void test_hf_bad_files(void)
{
    long n;
    char *st = slurp("tests/data/hf/llama-f32/model.safetensors", &n);
    if (!st) {
        EXPECT(0, "llama-f32 missing");
        return;
    }
    char *c = config_with("\"model_type\"", "\"gemma\"");
    hf_broken("unknown architecture", "config.json", c, (long)strlen(c), MFT_ERR_FORMAT, "gemma");
    free(c);
    c = config_with("\"hidden_size\"", "48");
    hf_broken("shape mismatch", "config.json", c, (long)strlen(c), MFT_ERR_FORMAT, "has shape [512, 32], the config needs [512, 48]");
    free(c);
    c = config_with("\"rope_scaling\"", "{\"rope_type\": \"yarn\", \"factor\": 4.0}");
    hf_broken("rope scaling yarn", "config.json", c, (long)strlen(c), MFT_ERR_FORMAT, "yarn");
    free(c);
    c = config_with("\"tie_word_embeddings\"", "true");
    hf_broken("a tied model that also stores lm_head.weight", "config.json", c, (long)strlen(c),
              MFT_OK, "");
    free(c);
    c = config_with("\"num_hidden_layers\"", "1");
    hf_broken("extra tensors", "config.json", c, (long)strlen(c), MFT_ERR_FORMAT, "model.layers.1.");
    free(c);
    hf_broken("truncated safetensors", "model.safetensors", st, n - 100, MFT_ERR_FORMAT, "outside the file");
    uint64_t hn;
    memcpy(&hn, st, 8);
    char *bad = malloc((size_t)n);
    memcpy(bad, st, (size_t)n);
    uint64_t huge = (uint64_t)n;
    memcpy(bad, &huge, 8);
    hf_broken("header longer than the file", "model.safetensors", bad, n, MFT_ERR_FORMAT, "longer than the file");
    memcpy(bad, st, (size_t)n);
    char *dt = strstr(bad + 8, "\"F32\"");
    if (dt) memcpy(dt, "\"I32\"", 5);
    hf_broken("unsupported dtype", "model.safetensors", bad, n, MFT_ERR_FORMAT, "I32");
    free(bad);
    hf_broken("missing weights", "model.safetensors", NULL, 0, MFT_ERR_IO, "model.safetensors");
    /* a missing tensor: the embedding renamed */
    bad = malloc((size_t)n);
    memcpy(bad, st, (size_t)n);
    char *em = strstr(bad + 8, "model.embed_tokens.weight");
    if (em) memcpy(em, "model.embed_tokens.weighz", 25);
    hf_broken("a missing tensor", "model.safetensors", bad, n, MFT_ERR_FORMAT, "tensor model.embed_tokens.weight is missing");
    free(bad);
    /* an index that names a missing shard */
    const char *idx = "{\"metadata\": {}, \"weight_map\": {\"model.embed_tokens.weight\": \"model-00009-of-00009.safetensors\"}}";
    hf_broken("index names a missing shard", "model.safetensors.index.json", idx, (long)strlen(idx), MFT_ERR_IO,
              "model-00009-of-00009.safetensors");
    char idxp[96];
    snprintf(idxp, sizeof idxp, "build/hf_broken_%ld/model.safetensors.index.json", (long)getpid());
    remove(idxp);
    free(st);
    /* the parser alone: overlapping ranges, a range that does not fit its shape */
    const char *hdrs[2] = { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                            "{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}" };
    const char *want[2] = { "overlap", "8 bytes for 3 elements of BF16" };
    for (int i = 0; i < 2; i++) {
        unsigned char file[256] = { 0 };
        uint64_t hl = strlen(hdrs[i]);
        memcpy(file, &hl, 8);
        memcpy(file + 8, hdrs[i], hl);
        mft__st sh;
        memset(&sh, 0, sizeof sh);
        mft__src_memory(&sh.src, file, 8 + hl + 12);
        mft_error err;
        EXPECT(mft__st_read_header(&sh, &err) == MFT_ERR_FORMAT && strstr(err.msg, want[i]), "%s: %s", want[i], err.msg);
        mft__st_free(&sh);
    }
    /* half and bfloat16: every half, and rounding back */
    int bad_h = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float x = mft__f16_to_f32((uint16_t)h);
        uint16_t back = mft__f32_to_f16(x);
        if (x == x ? back != h : (back & 0x7C00) != 0x7C00 || !(back & 0x3FF)) bad_h++;
    }
    EXPECT(!bad_h, "%d halves do not survive f16 -> f32 -> f16", bad_h);
    EXPECT(mft__f16_to_f32(0x3C00) == 1.0f && mft__f16_to_f32(0x0001) == 5.9604645e-8f && mft__f16_to_f32(0xFC00) == -INFINITY,
           "half values");
    EXPECT(mft__f32_to_bf16(1.00390625f) == 0x3F80 && mft__f32_to_bf16(1.01171875f) == 0x3F82 &&
           mft__bf16_to_f32(0x3F82) == 1.015625f, "bf16 round to nearest even");
    char dst[64];
    snprintf(dst, sizeof dst, "build/hf_broken_%ld", (long)getpid());
    rm_folder(dst);
}

/* ---- real formats: GGUF models ----------------------------------------------------------------- */

/* a MFTLCPP1 fixture (tests/gen_llamacpp_logits.sh): its ids (at most 64) and llama.cpp's logits,
   or NULL */
static float *read_lcpp(const char *path, int *nt, int *nv, int ids[64])
{
    long n;
    char *ref = slurp(path, &n);
    float *want = NULL;
    if (ref && n >= 16 && !memcmp(ref, "MFTLCPP1", 8)) {
        memcpy(nt, ref + 8, 4);
        memcpy(nv, ref + 12, 4);
        if (*nt > 0 && *nt <= 64 && *nv > 0 && n == 16 + 4L * *nt + 4L * *nt * *nv) {
            memcpy(ids, ref + 16, 4 * (size_t)*nt);
            want = fbuf((size_t)*nt * *nv);
            memcpy(want, ref + 16 + 4 * *nt, (size_t)*nt * *nv * sizeof(float));
        }
    }
    free(ref);
    return want;
}

static void test_gguf_models(void)
{
    /* stories260K as the GGUF v1 file of tests/data (F32, llama, Meta's q/k layout): the
       checkpoint's weights, to the bit */
    mft_model a, b;
    mft_error err;
    if (mft_model_open(&a, MODEL, 1, 8, MFT_FORWARD, &err) ||
        mft_model_open(&b, "tests/data/tinyllamas-stories-260k-f32.gguf", 1, 8, MFT_FORWARD, &err)) {
        EXPECT(0, "%s", err.msg);
        return;
    }
    EXPECT(!b.cfg.shared_classifier || a.n_params == b.n_params, "shape");
    /* the GGUF stores output.weight (equal to token_embd), so it loads untied: compare the shared part */
    size_t core = a.n_params;
    EXPECT(!memcmp(a.params, b.params, core * sizeof(float)), "the GGUF's weights differ from the checkpoint's");
    int in[8] = { 1, 403, 407, 261, 378, 432, 383, 286 };
    EXPECT(mft_forward(&a, in, NULL, NULL, 1, 8, NULL, NULL) == MFT_OK && mft_forward(&b, in, NULL, NULL, 1, 8, NULL, NULL) ==
           MFT_OK && !memcmp(a.a.logits, b.a.logits, 8 * 512 * sizeof(float)), "logits differ");
    mft_model_free(&a);
    mft_model_free(&b);
    /* llama.cpp itself on a GGUF v3 file with F16 weights (tests/gen_llamacpp_logits.sh) */
    const char *tiny = asset("llama-2-tiny-random.gguf", "gguf/llama-2-tiny-random.gguf");
    int nt, nv, ids[64];
    float *want = read_lcpp("tests/data/llamacpp_tiny_random.bin", &nt, &nv, ids);
    if (!tiny) {
        missing_asset("llama-2-tiny-random.gguf");
    } else if (!want) {
        EXPECT(0, "tests/data/llamacpp_tiny_random.bin missing");
    } else {
        EXPECT(mft_model_open(&a, tiny, 1, nt, MFT_FORWARD, &err) == MFT_OK, "%s: %s", tiny, err.msg);
        EXPECT(a.cfg.vocab_size == nv && mft_forward(&a, ids, NULL, NULL, 1, nt, NULL, &err) == MFT_OK, "forward");
        /* ggml rounds the activations to half before an F16 matrix product: 1e-4 of a logit's
           scale is what that leaves (a numpy float64 model rounding the same way agrees with
           llama.cpp to 1e-8) */
        size_t at = 0;
        double e = worst(a.a.logits, want, (size_t)nt * nv, 2e-4, 1e-3, &at);
        EXPECT(e <= 1, "logits vs llama.cpp: %.3g of the bound at %zu (%.6g vs %.6g)", e, at, a.a.logits[at], want[at]);
        int same = 0;
        for (int t = 0; t < nt; t++) {
            int x = 0, y = 0;
            for (int v = 1; v < nv; v++) {
                if (a.a.logits[(size_t)t * nv + v] > a.a.logits[(size_t)t * nv + x]) x = v;
                if (want[(size_t)t * nv + v] > want[(size_t)t * nv + y]) y = v;
            }
            same += x == y;
        }
        EXPECT(same == nt, "argmax agrees with llama.cpp at %d of %d positions", same, nt);
        mft_model_free(&a);
    }
    free(want);
    /* bad files, from memory: another architecture, a missing tensor, a type maskft cannot read */
    long gn;
    char *gg = slurp("tests/data/tinyllamas-stories-260k-f32.gguf", &gn), *bad = malloc((size_t)gn);
    struct { const char *from, *to, *msg; } cases[3] = {
        { "llama", "gemma", "\"gemma\" is not one maskft trains" },
        { "output_norm.weight", "output_norx.weight", "tensor output_norm.weight is missing" },
        { "blk.0.ffn_up.weight", "blk.0.ffn_up.weighx", "tensor blk.0.ffn_up.weight is missing" },
    };
    for (int i = 0; gg && i < 3; i++) {
        memcpy(bad, gg, (size_t)gn);
        char *p = memmem(bad, (size_t)gn, cases[i].from, strlen(cases[i].from));
        if (p) memcpy(p, cases[i].to, strlen(cases[i].to));
        EXPECT(p && mft_model_open_from_memory(&a, bad, (size_t)gn, 1, 4, MFT_FORWARD, &err) == MFT_ERR_FORMAT &&
               strstr(err.msg, cases[i].msg) && !a.arena, "%s: %s", cases[i].msg, err.msg);
    }
    /* the type of the first tensor (after its name, dims and count) set to Q5_K, which maskft
       does not read, and to Q4_K, whose blocks of 256 do not divide its rows of 64 */
    for (int k = 0; gg && k < 2; k++) {
        memcpy(bad, gg, (size_t)gn);
        char *p = memmem(bad, (size_t)gn, "token_embd.weight", 17);
        if (p) {
            uint32_t nd, ty = k == 0 ? 13 : 12;
            memcpy(&nd, p + 17, 4);
            memcpy(p + 17 + 4 + 4 * nd, &ty, 4); /* GGUF v1: uint32 dims */
        }
        EXPECT(p && mft_model_open_from_memory(&a, bad, (size_t)gn, 1, 4, MFT_FORWARD, &err) == MFT_ERR_FORMAT &&
               strstr(err.msg, k == 0 ? "is Q5_K; maskft reads" : "Q4_K with rows of 64, not a multiple of its blocks of 256"),
               "type %d: %s", k, err.msg);
    }
    if (gg) {
        mft_config c;
        EXPECT(mft_model_config_from_memory(gg, (size_t)gn, &c, &err) == MFT_OK && c.dim == 64 && c.n_layers == 5, "config");
    }
    free(bad);
    free(gg);
}

/* HF -> maskft -> HF: every tensor comes back bit for bit (in the type it came in), the folder
   loads again to the same weights and config */
static void test_hf_roundtrip(void)
{
    const char *names[5] = { "llama-f32", "llama3-bf16", "smollm-f16", "qwen2-bf16", "qwen3-f32" };
    for (int i = 0; i < 5; i++) {
        char src[128], dst[128], a[200], b[200];
        snprintf(src, sizeof src, "tests/data/hf/%s", names[i]);
        snprintf(dst, sizeof dst, "build/rt_%s_%ld", names[i], (long)getpid());
        mkdir_p(dst);
        mft_model m, m2;
        mft_tokenizer t;
        mft_error err;
        if (mft_model_open(&m, src, 1, 1, MFT_FORWARD, &err) || mft_tokenizer_for_model(&t, src, 0, &err) ||
            mft_hf_save(&m, dst, -1, &t, src, &err)) {
            EXPECT(0, "%s: %s", names[i], err.msg);
            continue;
        }
        EXPECT(mft_model_open(&m2, dst, 1, 1, MFT_FORWARD, &err) == MFT_OK && m2.n_params == m.n_params &&
               !memcmp(m.params, m2.params, m.n_params * sizeof(float)) && !memcmp(&m.cfg, &m2.cfg, sizeof m.cfg),
               "%s: the written folder loads to other weights or another config", names[i]);
        /* tensor by tensor against the original files (shards included) */
        char **files;
        int nf;
        mft__st orig[4], mine;
        memset(orig, 0, sizeof orig);
        memset(&mine, 0, sizeof mine);
        EXPECT(mft__hf_shards(src, &files, &nf, &err) == MFT_OK && nf <= 4, "shards");
        for (int k = 0; k < nf; k++) {
            mft__src_open(&orig[k].src, files[k], NULL);
            mft__st_read_header(&orig[k], NULL);
        }
        snprintf(b, sizeof b, "%s/model.safetensors", dst);
        mft__src_open(&mine.src, b, NULL);
        EXPECT(mft__st_read_header(&mine, &err) == MFT_OK, "%s: %s", b, err.msg);
        int same = 0, total = 0;
        for (int k = 0; k < nf; k++)
            for (int q = 0; q < orig[k].n; q++) {
                const mft__st_tensor *x = &orig[k].t[q];
                int which;
                mft__st_tensor *y = mft__st_find(&mine, 1, x->name, &which);
                total++;
                if (!y || y->dtype != x->dtype || y->end - y->begin != x->end - x->begin) continue;
                size_t len = (size_t)(x->end - x->begin);
                unsigned char *p = malloc(len), *r = malloc(len);
                mft__src_seek(&orig[k].src, x->begin, NULL);
                mft__src_read(&orig[k].src, p, len, NULL);
                mft__src_seek(&mine.src, y->begin, NULL);
                mft__src_read(&mine.src, r, len, NULL);
                same += !memcmp(p, r, len);
                free(p);
                free(r);
            }
        EXPECT(total > 0 && same == total && mine.n == total, "%s: %d of %d tensors identical (%d written)", names[i], same,
               total, mine.n);
        for (int k = 0; k < nf; k++) {
            mft__st_free(&orig[k]);
            free(files[k]);
        }
        free(files);
        mft__st_free(&mine);
        snprintf(a, sizeof a, "%s/tokenizer.json", dst);
        EXPECT(mft__exists(a), "%s: the tokenizer was not copied", names[i]);
        rm_folder(dst);
        mft_tokenizer_free(&t);
        mft_model_free(&m);
        mft_model_free(&m2);
    }
    /* another type on the way out: F32 -> BF16 is bfloat16's rounding of every weight */
    mft_model m, m2;
    mft_error err;
    char dst[128];
    snprintf(dst, sizeof dst, "build/rt_bf16_%ld", (long)getpid());
    mkdir_p(dst);
    EXPECT(mft_model_open(&m, "tests/data/hf/llama-f32", 1, 1, MFT_FORWARD, &err) == MFT_OK &&
           mft_hf_save(&m, dst, MFT_DTYPE_BF16, NULL, NULL, &err) == MFT_OK &&
           mft_model_open(&m2, dst, 1, 1, MFT_FORWARD, &err) == MFT_OK && m2.cfg.dtype == MFT_DTYPE_BF16, "bf16: %s", err.msg);
    int bad = 0;
    for (size_t i = 0; m2.params && i < m.n_params; i++) bad += m2.params[i] != mft__bf16_to_f32(mft__f32_to_bf16(m.params[i]));
    EXPECT(!bad, "%d weights are not their bf16 rounding", bad);
    mft_model_free(&m);
    mft_model_free(&m2);
    rm_folder(dst);
}

/* the logits of model m at the ids of a MFTLCPP1 fixture against the fixture's; returns the worst
   |difference| / (atol + rtol |want|) */
static double vs_llamacpp(mft_model *m, const char *fixture, double atol, double rtol)
{
    int nt, nv, ids[64];
    float *want = read_lcpp(fixture, &nt, &nv, ids);
    double e = 1e30;
    size_t at = 0;
    if (want && nv == m->cfg.vocab_size && nt <= m->T && mft_forward(m, ids, NULL, NULL, 1, nt, NULL, NULL) == MFT_OK)
        e = worst(m->a.logits, want, (size_t)nt * nv, atol, rtol, &at);
    free(want);
    return e;
}

static uint64_t file_hash(const char *path)
{
    long n;
    char *p = slurp(path, &n);
    uint64_t h = p ? mft_hash(MFT_HASH_SEED, p, (size_t)n) : 0;
    free(p);
    return h;
}

/* ggml's Q4_0, Q4_K and Q6_K blocks (tests/gen_ggml_quants.sh: ggml_quantize_chunk, then ggml's
   to_float) dequantised by maskft: ggml's values (bit for bit where the compiler keeps the same
   operation order; ggml's build may fuse d*q - m into one FMA, a rounding apart) */
static void test_gguf_quants(void)
{
    long n;
    char *f = slurp("tests/data/ggml_quants.bin", &n);
    if (!f || n < 12 || memcmp(f, "MFTQUANT", 8)) { EXPECT(0, "tests/data/ggml_quants.bin missing"); free(f); return; }
    int count, at = 12, seen = 0;
    memcpy(&count, f + 8, 4);
    for (int c = 0; c < count && at + 12 <= n; c++) {
        int h[3];
        memcpy(h, f + at, 12);
        at += 12;
        if (at + h[2] + 4L * h[1] > n) break;
        float *want = fbuf((size_t)h[1]), *got = fbuf((size_t)h[1]);
        memcpy(want, f + at + h[2], 4 * (size_t)h[1]);
        EXPECT(mft__gg_bytes(h[0], (uint64_t)h[1]) == (uint64_t)h[2], "%s: %d bytes for %d values", mft__ggml_type_name(h[0]),
               h[2], h[1]);
        mft__gg_row(got, (const unsigned char *)f + at, (uint64_t)h[1], h[0]);
        float mx = 0;
        int exact = 0;
        for (int i = 0; i < h[1]; i++) {
            mx = fabsf(want[i]) > mx ? fabsf(want[i]) : mx;
            exact += got[i] == want[i];
        }
        size_t where = 0;
        double e = worst(got, want, (size_t)h[1], 1e-6 * mx, 1e-6, &where);
        printf("    %s: %d of %d values bit for bit, the rest within %.2g of the bound\n", mft__ggml_type_name(h[0]),
               exact, h[1], e);
        EXPECT(e <= 1 && exact > h[1] / 2, "%s: %.3g of the bound at %zu (%g vs %g)", mft__ggml_type_name(h[0]), e, where,
               got[where], want[where]);
        free(want);
        free(got);
        at += h[2] + 4 * h[1];
        seen++;
    }
    EXPECT(seen == 3, "%d of 3 types in the fixture", seen);
    free(f);
}

static void test_gguf_write(void)
{
    /* every model maskft reads, written as GGUF in its own type and read back: the same weights,
       logits and vocabulary, bit for bit */
    const char *models[6] = { MODEL, "tests/data/hf/llama-f32", "tests/data/hf/llama3-bf16", "tests/data/hf/smollm-f16",
                              "tests/data/hf/qwen2-bf16", "tests/data/hf/qwen3-f32" };
    char out[128];
    snprintf(out, sizeof out, "build/test_gguf_%ld.gguf", (long)getpid());
    const char *text = "Once upon a time, Lily saw 123 birds.\n\n  \"Hi!\" she said. caf\xc3\xa9";
    for (int i = 0; i < 6; i++) {
        mft_model a, b;
        mft_tokenizer t, t2;
        mft_error err;
        int in[16] = { 1, 403, 407, 261, 378, 430, 271, 280, 309, 288, 302, 350, 376, 269, 363, 345 };
        if (mft_model_open(&a, models[i], 1, 16, MFT_FORWARD, &err) ||
            mft_tokenizer_for_model(&t, models[i], a.cfg.vocab_size, &err) || mft_gguf_save(&a, out, -1, &t, &err)) {
            EXPECT(0, "%s: %s", models[i], err.msg);
            continue;
        }
        int ok = mft_model_open(&b, out, 1, 16, MFT_FORWARD, &err) == MFT_OK;
        EXPECT(ok, "%s: %s", models[i], err.msg);
        if (!ok) { mft_model_free(&a); mft_tokenizer_free(&t); continue; }
        EXPECT(b.n_params == a.n_params && !memcmp(a.params, b.params, a.n_params * sizeof(float)) &&
               b.cfg.arch == a.cfg.arch && b.cfg.dtype == a.cfg.dtype && b.cfg.rope_scaling == a.cfg.rope_scaling,
               "%s: other weights or config from the GGUF", models[i]);
        EXPECT(mft_forward(&a, in, NULL, NULL, 1, 16, NULL, NULL) == MFT_OK &&
               mft_forward(&b, in, NULL, NULL, 1, 16, NULL, NULL) == MFT_OK &&
               !memcmp(a.a.logits, b.a.logits, 16 * (size_t)a.cfg.vocab_size * sizeof(float)),
               "%s: other logits from the GGUF", models[i]);
        int x[128], y[128], nx = -1, ny = -2;
        EXPECT(mft_tokenizer_open(&t2, out, 0, &err) == MFT_OK, "%s: %s", models[i], err.msg);
        EXPECT(!mft_encode(&t, text, -1, MFT_BOS | MFT_SPECIAL, x, 128, &nx, NULL, NULL) &&
               !mft_encode(&t2, text, -1, MFT_BOS | MFT_SPECIAL, y, 128, &ny, NULL, NULL) && same_ids(x, nx, y, ny) &&
               t2.bos_id == t.bos_id && t2.eos_id == t.eos_id && t2.eot_id == t.eot_id,
               "%s: the GGUF's vocabulary encodes otherwise", models[i]);
        if (i == 0) { /* against the GGUF llama.cpp's converter made of the same vocabulary: <s> is
                         written as "<s>" (tokenizer.bin says "\n<s>\n"), so it is matched as BOS */
            mft_tokenizer t3;
            const char *s2 = "<s> Once upon a time, Lily saw 123 birds.</s>\n\n  \"Hi!\" caf\xc3\xa9";
            EXPECT(mft_tokenizer_open(&t3, "tests/data/tinyllamas-stories-260k-f32.gguf", 0, &err) == MFT_OK &&
                   !mft_encode(&t3, s2, -1, MFT_SPECIAL, x, 128, &nx, NULL, NULL) &&
                   !mft_encode(&t2, s2, -1, MFT_SPECIAL, y, 128, &ny, NULL, NULL) && same_ids(x, nx, y, ny) &&
                   x[0] == 1, "stories260K: the written vocabulary encodes otherwise than llama.cpp's GGUF");
            for (int k = 0; k < 512 && t3.mem; k++) {
                int l1, l2;
                const char *p1 = mft_token_piece(&t2, k, &l1), *p2 = mft_token_piece(&t3, k, &l2);
                if (l1 != l2 || memcmp(p1, p2, (size_t)l1) || t2.types[k] != t3.types[k] || t2.scores[k] != t3.scores[k]) {
                    EXPECT(0, "stories260K: token %d differs from llama.cpp's GGUF", k);
                    break;
                }
            }
            mft_tokenizer_free(&t3);
        }
        mft_tokenizer_free(&t2);
        mft_tokenizer_free(&t);
        mft_model_free(&a);
        mft_model_free(&b);
    }
    /* GGUF -> maskft -> GGUF: files made by llama.cpp's converter (F32 v1, F16 v3) give every
       tensor back, name, type, dims and bytes */
    const char *ggs[2] = { "tests/data/tinyllamas-stories-260k-f32.gguf", asset("llama-2-tiny-random.gguf",
                                                                                 "gguf/llama-2-tiny-random.gguf") };
    for (int i = 0; i < 2; i++) {
        if (!ggs[i]) { missing_asset("llama-2-tiny-random.gguf"); continue; }
        mft_model a;
        mft_tokenizer t;
        mft_error err;
        mft_gguf g1, g2;
        if (mft_model_open(&a, ggs[i], 1, 1, MFT_FORWARD, &err) || mft_tokenizer_open(&t, ggs[i], 0, &err) ||
            mft_gguf_save(&a, out, -1, &t, &err) || mft_gguf_open(&g1, ggs[i], &err) || mft_gguf_open(&g2, out, &err)) {
            EXPECT(0, "%s: %s", ggs[i], err.msg);
            continue;
        }
        long n1, n2;
        char *b1 = slurp(ggs[i], &n1), *b2 = slurp(out, &n2);
        int same = 0;
        for (uint64_t k = 0; b1 && b2 && k < g1.n_tensors; k++) {
            const mft_gguf_tensor *x = &g1.tensors[k], *y = NULL;
            for (uint64_t q = 0; q < g2.n_tensors; q++)
                if (!strcmp(g2.tensors[q].name, x->name)) y = &g2.tensors[q];
            if (!y || y->type != x->type || y->n_dims != x->n_dims || memcmp(x->dims, y->dims, sizeof x->dims)) continue;
            uint64_t numel = 1;
            for (int d = 0; d < x->n_dims; d++) numel *= x->dims[d];
            size_t len = (size_t)mft__gg_bytes(x->type, numel);
            same += len && g1.data_offset + x->offset + len <= (uint64_t)n1 &&
                    g2.data_offset + y->offset + len <= (uint64_t)n2 &&
                    !memcmp(b1 + g1.data_offset + x->offset, b2 + g2.data_offset + y->offset, len);
        }
        printf("    %s: %d of %d tensors back bit for bit\n", ggs[i], same, (int)g1.n_tensors);
        EXPECT(same == (int)g1.n_tensors && g2.n_tensors == g1.n_tensors, "%s: %d of %d tensors identical (%d written)",
               ggs[i], same, (int)g1.n_tensors, (int)g2.n_tensors);
        free(b1);
        free(b2);
        mft_gguf_free(&g1);
        mft_gguf_free(&g2);
        mft_tokenizer_free(&t);
        mft_model_free(&a);
    }
    /* llama.cpp on the files maskft writes (tests/gen_llamacpp_written.sh): the file written now
       is the one it judged (hashes.txt), and its logits are the original model's. F32 files within
       the bound the PyTorch reference uses (5e-5 + 1e-5 |x|; measured 1e-6 to 2.5e-5); ggml rounds
       activations to half before an F16 product (1e-3 relative). */
    FILE *hf = fopen("tests/data/llamacpp_written/hashes.txt", "r");
    EXPECT(hf != NULL, "tests/data/llamacpp_written/hashes.txt missing");
    const char *paths[5][2] = { { "stories260K", MODEL }, { "llama3", "tests/data/hf/llama3-bf16" },
                                { "qwen2", "tests/data/hf/qwen2-bf16" }, { "qwen3", "tests/data/hf/qwen3-f32" },
                                { "smollm-f16", "tests/data/hf/smollm-f16" } };
    char name[64], type[16];
    unsigned long long want;
    int judged = 0;
    while (hf && fscanf(hf, "%63s %15s %llx", name, type, &want) == 3) {
        const char *src = NULL;
        for (int k = 0; k < 5; k++) if (!strcmp(paths[k][0], name)) src = paths[k][1];
        mft_model a;
        mft_tokenizer t;
        mft_error err;
        if (!src || mft_model_open(&a, src, 1, 16, MFT_FORWARD, &err) ||
            mft_tokenizer_for_model(&t, src, a.cfg.vocab_size, &err)) {
            EXPECT(0, "%s: %s", name, src ? err.msg : "unknown model");
            continue;
        }
        int dt = !strcmp(type, "f16") ? MFT_DTYPE_F16 : !strcmp(type, "bf16") ? MFT_DTYPE_BF16 : MFT_DTYPE_F32;
        EXPECT(mft_gguf_save(&a, out, dt, &t, &err) == MFT_OK, "%s: %s", name, err.msg);
        uint64_t h = file_hash(out);
        EXPECT(h == want, "%s: the GGUF written now (%016llx) is not the one llama.cpp judged (%016llx)", name,
               (unsigned long long)h, want);
        char fx[128];
        snprintf(fx, sizeof fx, "tests/data/llamacpp_written/%s.bin", name);
        double e = dt == MFT_DTYPE_F32 ? vs_llamacpp(&a, fx, 5e-5, 1e-5) : vs_llamacpp(&a, fx, 1e-2, 1e-3);
        printf("    %s (%s): logits vs llama.cpp at %.2g of the bound\n", name, type, e);
        EXPECT(e <= 1, "%s: logits vs llama.cpp: %.3g of the bound", name, e);
        judged++;
        mft_tokenizer_free(&t);
        mft_model_free(&a);
    }
    if (hf) fclose(hf);
    EXPECT(judged == 5, "%d of 5 files judged by llama.cpp", judged);
    /* vocabularies of real models through a GGUF written around a random model of their size:
       the ids of the reference tokenizers, unchanged */
    struct { const char *tok[2], *ref[2]; } sets[3] = {
        { { "qwen3/tokenizer.json", "tokenizers/qwen3/tokenizer.json" }, { "hfjs_qwen3.jsonl", "reference/hfjs_qwen3.jsonl" } },
        { { "llama3/tokenizer.json", "tokenizers/llama3/tokenizer.json" }, { "hfjs_llama3.jsonl", "reference/hfjs_llama3.jsonl" } },
        { { "tok512-hf/tokenizer.json", "-" }, { "hfjs_tok512_hf.jsonl", "-" } },
    };
    for (int i = 0; i < 3; i++) {
        const char *tp = asset(sets[i].tok[0], sets[i].tok[1]), *rp = asset(sets[i].ref[0], sets[i].ref[1]);
        if (!tp || !rp) {
            missing_asset(!tp ? sets[i].tok[0] : sets[i].ref[0]);
            continue;
        }
        mft_tokenizer t;
        mft_error err;
        mft_model m;
        if (mft_tokenizer_open(&t, tp, 0, &err)) { EXPECT(0, "%s: %s", tp, err.msg); continue; }
        mft_config c = tiny_config(1);
        c.vocab_size = t.vocab_size;
        size_t bytes = mft_model_bytes(&c, 1, 1, MFT_FORWARD);
        void *mem = malloc(bytes);
        EXPECT(mem && mft_model_init(&m, &c, 1, 1, MFT_FORWARD, mem, bytes, &err) == MFT_OK, "init: %s", err.msg);
        mft_model_init_random(&m, 7);
        EXPECT(mft_gguf_save(&m, out, -1, &t, &err) == MFT_OK, "%s: %s", tp, err.msg);
        /* a GGUF vocabulary is read as llama.cpp reads it, and llama.cpp does not NFC-normalise
           (Qwen's tokenizer.json does): the one text written decomposed differs, by design */
        int cases, bad = jsonl_reference(out, rp, &cases, MFT_SPECIAL), expect = i == 0;
        printf("    %s through GGUF: %d/%d texts exact\n", sets[i].tok[0], cases - bad, cases);
        EXPECT(bad == expect && cases >= 19, "%s through GGUF: %d of %d texts differ", sets[i].tok[0], bad, cases);
        if (i < 2) { /* llama.cpp's own ids for the same file (tests/gen_llamacpp_vocab.sh) */
            const char *nm = i == 0 ? "qwen3" : "llama3";
            char hp[96], jp[96], hex[32] = "";
            snprintf(hp, sizeof hp, "tests/data/llamacpp_written/%s_ids.hash", nm);
            snprintf(jp, sizeof jp, "tests/data/llamacpp_written/%s_ids.jsonl", nm);
            FILE *f = fopen(hp, "r");
            if (!f || fscanf(f, "%31s", hex) != 1) hex[0] = 0;
            if (f) fclose(f);
            EXPECT(hex[0] && strtoull(hex, NULL, 16) == file_hash(out), "%s: not the file llama.cpp tokenised", nm);
            /* llama.cpp (this build) makes any token spelled "</s>" a control token, also Qwen's
               ordinary one, so "</s>" in text is one token there: the one text that differs */
            int lb = jsonl_reference(out, jp, &cases, MFT_SPECIAL);
            printf("    %s through GGUF vs llama.cpp: %d/%d texts exact\n", sets[i].tok[0], cases - lb, cases);
            EXPECT(lb == (i == 0) && cases >= 19, "%s vs llama.cpp: %d of %d texts differ", nm, lb, cases);
        }
        mft_tokenizer t2;
        EXPECT(mft_tokenizer_open(&t2, out, 0, &err) == MFT_OK &&
               (t.chat_template ? t2.chat_template && !strcmp(t.chat_template, t2.chat_template) : !t2.chat_template),
               "%s: the chat template did not survive", tp);
        mft_tokenizer_free(&t2);
        /* a model with more rows than the vocabulary (Qwen pads to a multiple of 128): the rest
           are unused "[PAD<id>]" tokens, and the text encodes as before */
        if (i == 0) {
            mft_model mp;
            mft_config cp = c;
            cp.vocab_size = t.vocab_size + 7;
            size_t pb = mft_model_bytes(&cp, 1, 1, MFT_FORWARD);
            void *pm = malloc(pb);
            mft_tokenizer tp;
            int x[64], y[64], nx = -1, ny = -2, pl;
            const char *txt = "Hello world, <|im_start|>user caf\xc3\xa9";
            EXPECT(pm && mft_model_init(&mp, &cp, 1, 1, MFT_FORWARD, pm, pb, &err) == MFT_OK, "init: %s", err.msg);
            mft_model_init_random(&mp, 7);
            EXPECT(mft_gguf_save(&mp, out, -1, &t, &err) == MFT_OK && mft_tokenizer_open(&tp, out, 0, &err) == MFT_OK &&
                   tp.vocab_size == cp.vocab_size, "padded: %s", err.msg);
            const char *pp = mft_token_piece(&tp, cp.vocab_size - 1, &pl);
            char want[32];
            snprintf(want, sizeof want, "[PAD%d]", cp.vocab_size - 1);
            EXPECT(pp && pl == (int)strlen(want) && !memcmp(pp, want, (size_t)pl) &&
                   mft_token_type(&tp, cp.vocab_size - 1) == MFT_TOKEN_UNUSED, "the padding tokens");
            EXPECT(!mft_encode(&t, txt, -1, MFT_SPECIAL, x, 64, &nx, NULL, NULL) &&
                   !mft_encode(&tp, txt, -1, MFT_SPECIAL, y, 64, &ny, NULL, NULL) && same_ids(x, nx, y, ny),
                   "the padded vocabulary encodes otherwise");
            mft_tokenizer_free(&tp);
            free(pm);
        }
        /* a vocabulary larger than the model is refused, and nothing is left behind */
        remove(out);
        m.cfg.vocab_size--;
        EXPECT(mft_gguf_save(&m, out, -1, &t, &err) == MFT_ERR_ARG && strstr(err.msg, "tokens") && !file_hash(out),
               "vocab mismatch: %s", err.msg);
        m.cfg.vocab_size++;
        EXPECT(mft_gguf_save(&m, out, 7, &t, &err) == MFT_ERR_ARG, "bad dtype");
        EXPECT(mft_gguf_save(&m, "build/no/such/dir/x.gguf", -1, &t, &err) == MFT_ERR_IO, "bad path: %s", err.msg);
        mft_tokenizer_free(&t);
        free(mem);
    }
    remove(out);
}


/* ---- what fuzzing found (tests/fuzz): each input, cut down to what it needs ---- */

/* a GGUF v3 file in memory: the header, then key/values and tensor infos appended by the
   helpers, then data at a 32-byte boundary */
typedef struct { unsigned char b[4096]; size_t n; } gg_buf;
static void gg_put(gg_buf *g, const void *p, size_t n) { if (g->n + n <= sizeof g->b) memcpy(g->b + g->n, p, n); g->n += n; }
static void gg_u32(gg_buf *g, uint32_t v) { gg_put(g, &v, 4); }
static void gg_u64(gg_buf *g, uint64_t v) { gg_put(g, &v, 8); }
static void gg_str(gg_buf *g, const char *s) { gg_u64(g, strlen(s)); gg_put(g, s, strlen(s)); }
static void gg_kv_u32(gg_buf *g, const char *k, uint32_t v) { gg_str(g, k); gg_u32(g, MFT_GGUF_UINT32); gg_u32(g, v); }

/* mft_model_open_from_memory left the struct as the caller had it, and a GGUF that failed
   then freed the pointers found there */
static void test_fuzz_open_clears_model(void)
{
    mft_model m;
    mft_error err;
    memset(&m, 0xAB, sizeof m);
    const unsigned char gguf[12] = { 'G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 0, 0, 0 }; /* cut in its tensor count */
    EXPECT(mft_model_open_from_memory(&m, gguf, sizeof gguf, 1, 8, MFT_FORWARD, &err) == MFT_ERR_FORMAT,
           "truncated GGUF: %s", err.msg);
    EXPECT(m.params == NULL && m.arena == NULL, "the model was not cleared");
    memset(&m, 0xAB, sizeof m);
    EXPECT(mft_model_open_from_memory(&m, NULL, 0, 1, 8, MFT_FORWARD, &err) == MFT_ERR_ARG && m.params == NULL,
           "NULL data: %s", err.msg);
}

/* a 300-byte GGUF and a 200-byte config.json with an empty shard declared a 4 GB model, which
   was allocated before the tensors were looked for */
static void test_fuzz_huge_model_small_file(void)
{
    gg_buf g = { { 0 }, 0 };
    mft_error err;
    mft_model m;
    gg_put(&g, "GGUF", 4), gg_u32(&g, 3), gg_u64(&g, 1), gg_u64(&g, 6);
    gg_str(&g, "general.architecture"), gg_u32(&g, MFT_GGUF_STRING), gg_str(&g, "llama");
    gg_kv_u32(&g, "llama.embedding_length", 4096), gg_kv_u32(&g, "llama.feed_forward_length", 11008);
    gg_kv_u32(&g, "llama.block_count", 4), gg_kv_u32(&g, "llama.attention.head_count", 32);
    gg_kv_u32(&g, "llama.context_length", 16);
    gg_str(&g, "token_embd.weight"), gg_u32(&g, 2), gg_u64(&g, 4096), gg_u64(&g, 32000), gg_u32(&g, 0), gg_u64(&g, 0);
    while (g.n % 32) gg_put(&g, "", 1);
    gg_put(&g, "0123456789abcdef", 16);
    EXPECT(g.n < 400, "the GGUF is %zu bytes", g.n);
    g_alloc_cap = (size_t)64 << 20, g_alloc_max = 0;
    EXPECT(mft_model_open_from_memory(&m, g.b, g.n, 1, 8, MFT_FORWARD, &err) == MFT_ERR_FORMAT &&
               (strstr(err.msg, "past the end") || strstr(err.msg, "missing")),
           "huge GGUF: %s", err.msg);
    EXPECT(g_alloc_max < ((size_t)16 << 20), "a %zu-byte GGUF made the loader ask for %zu bytes", g.n, g_alloc_max);
    const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 4096, "
                      "\"intermediate_size\": 11008, \"num_hidden_layers\": 4, \"num_attention_heads\": 32, "
                      "\"vocab_size\": 32000, \"max_position_embeddings\": 16}";
    const unsigned char shard[10] = { 2, 0, 0, 0, 0, 0, 0, 0, '{', '}' };
    const void *sh[1] = { shard };
    size_t shn[1] = { sizeof shard };
    g_alloc_max = 0;
    EXPECT(mft_hf_open_from_memory(&m, cfg, strlen(cfg), sh, shn, 1, 1, 8, MFT_FORWARD, &err) == MFT_ERR_FORMAT &&
               strstr(err.msg, "missing"),
           "huge config.json: %s", err.msg);
    EXPECT(g_alloc_max < ((size_t)16 << 20), "a %zu-byte config.json made the loader ask for %zu bytes", strlen(cfg),
           g_alloc_max);
    g_alloc_cap = 0;
}

/* GGUF rope_freqs that fit llama3 scaling only with a factor below 1: the config it gave was
   one mft_config_check refuses (and mft_model_config returned it) */
static void test_fuzz_gguf_rope_freqs_below_one(void)
{
    mft_tokenizer t;
    mft_error err;
    if (mft_tokenizer_open(&t, TOKEN, 512, &err)) { EXPECT(0, "%s", err.msg); return; }
    mft_config c = tiny_config(1);
    c.dim = 8, c.n_heads = 2, c.n_kv_heads = 2, c.vocab_size = 512, c.n_layers = 1;
    c.rope_scaling = MFT_ROPE_LLAMA3, c.rope_factor = 8, c.rope_low_freq = 1, c.rope_high_freq = 4, c.rope_orig_ctx = 8;
    mft_model m;
    EXPECT(open_tiny(&m, &c, 1, 4, MFT_FORWARD, 3) == MFT_OK, "init");
    long n = 0;
    char *d = NULL;
    if (mft_gguf_save(&m, TMP, MFT_DTYPE_F32, &t, &err) == MFT_OK) d = slurp(TMP, &n);
    EXPECT(d, "gguf_save: %s", err.msg);
    mft_gguf g;
    int patched = 0;
    if (d && mft_gguf_open_from_memory(&g, d, (size_t)n, &err) == MFT_OK) {
        for (uint64_t i = 0; i < g.n_tensors; i++)
            if (!strcmp(g.tensors[i].name, "rope_freqs.weight"))
                for (uint64_t k = 0; k < g.tensors[i].dims[0]; k++, patched++) {
                    float half = 0.5f; /* every pair divided by 0.5: llama3 with factor 0.5, original context 1 */
                    memcpy(d + g.data_offset + g.tensors[i].offset + 4 * k, &half, 4);
                }
        mft_gguf_free(&g);
    }
    EXPECT(patched == 2, "rope_freqs.weight not found");
    mft_config got;
    mft_model m2;
    EXPECT(d && mft_model_config_from_memory(d, (size_t)n, &got, &err) == MFT_ERR_FORMAT && strstr(err.msg, "rope_freqs"),
           "config of factor 0.5: %s", err.msg);
    EXPECT(d && mft_model_open_from_memory(&m2, d, (size_t)n, 1, 4, MFT_FORWARD, &err) == MFT_ERR_FORMAT &&
               strstr(err.msg, "rope_freqs"),
           "open of factor 0.5: %s", err.msg);
    free(d);
    remove(TMP);
    mft_model_free(&m);
    mft_tokenizer_free(&t);
}

/* the JSON writer passed invalid UTF-8 through: a draft cut inside a character became a
   JSONL line that maskft itself refuses. Bytes that are no character are written as U+FFFD. */
static void test_fuzz_json_writer_utf8(void)
{
    static const struct { const char *in, *out; } cases[] = {
        { "a\xc3", "\"a\\ufffd\"" },                      /* cut after the lead byte */
        { "\xe2\x82", "\"\\ufffd\\ufffd\"" },             /* cut inside a three-byte one */
        { "caf\xc3\xa9 \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"" }, /* valid: as it is */
        { "\xed\xa0\x80x", "\"\\ufffd\\ufffd\\ufffdx\"" }, /* a surrogate */
        { "\xff\"", "\"\\ufffd\\\"\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        int len = -1;
        EXPECT(mft_json_escape(cases[i].in, (int)strlen(cases[i].in), out, sizeof out, &len) == MFT_OK &&
                   len == (int)strlen(cases[i].out) && !strcmp(out, cases[i].out),
               "case %zu: %s", i, out);
        mft_json *j = mft_json_parse(out, len, NULL);
        EXPECT(j, "case %zu: the writer's output does not parse", i);
        mft_json_free(j);
    }
}

/* a checkpoint's head_dim x n_heads, multiplied before any field was checked: signed overflow */
static void test_fuzz_ckpt_header_overflow(void)
{
    mft_config c = tiny_config(0);
    mft_model m;
    mft_error err;
    EXPECT(open_tiny(&m, &c, 1, 4, MFT_FORWARD, 3) == MFT_OK, "init");
    long n = 0;
    char *d = NULL;
    if (mft_checkpoint_save(&m, TMP, NULL, 0, &err) == MFT_OK) d = slurp(TMP, &n);
    EXPECT(d && n > 128, "checkpoint_save: %s", err.msg);
    if (d) {
        int32_t heads = 2, hd = 0x40000000;
        memcpy(d + 8 + 3 * 4, &heads, 4), memcpy(d + 8 + 8 * 4, &hd, 4);
        uint64_t h = mft_hash(MFT_HASH_SEED, d, (size_t)n - 8);
        memcpy(d + n - 8, &h, 8);
        mft_config got;
        EXPECT(mft_model_config_from_memory(d, (size_t)n, &got, &err) == MFT_ERR_FORMAT, "head_dim 2^30: %s", err.msg);
    }
    free(d);
    remove(TMP);
    mft_model_free(&m);
}

#define TEST(name) { #name, test_##name }
static const struct { const char *name; void (*fn)(void); } tests[] = {
    TEST(kernel_matmul), TEST(kernel_rmsnorm), TEST(kernel_rope), TEST(kernel_exp_softmax),
    TEST(kernel_swiglu_adamw), TEST(kernel_attention), TEST(gradcheck_untied), TEST(gradcheck_tied),
    TEST(gradcheck_families), TEST(gradcheck_anchor), TEST(gradcheck_soft_targets), TEST(kernel_soft_kl), TEST(thin_weights), TEST(soft_targets_are_the_anchor),
    TEST(dft), TEST(lora), TEST(lora_save), TEST(mask_alignment), TEST(empty_mask), TEST(grad_accumulation), TEST(grad_checkpoint),
    TEST(packing), TEST(sparse_logits), TEST(checkpoint_resume), TEST(checkpoint_strict), TEST(metrics), TEST(pytorch_reference),
    TEST(pytorch_packed_anchor), TEST(thread_determinism), TEST(decode_matches_forward),
    TEST(greedy_matches_llama2c), TEST(tokenizer_sentencepiece_ids), TEST(tokenizer_edges),
    TEST(bad_model_files), TEST(bad_tokenizer_files), TEST(bad_arguments), TEST(save_load),
    TEST(lr_schedule_and_sampler), TEST(tokenizer_llamacpp_vectors), TEST(tokenizer_reference_ids),
    TEST(tokenizer_formats_agree), TEST(tokenizer_roundtrip), TEST(tokenizer_special), TEST(tokenizer_strip), TEST(tokenizer_generation_config), TEST(tokenizer_post_processor),
    TEST(bad_gguf_json_model), TEST(tokenizer_offsets_stream), TEST(unicode_tables),
    TEST(chat_templates), TEST(chat_ids), TEST(data_masks), TEST(mask_by_nll), TEST(draft_record),
    TEST(pack_rows), TEST(until_learned), TEST(teacher), TEST(epoch_order), TEST(generate), TEST(score), TEST(from_memory), TEST(buffers), TEST(error_positions),
    TEST(hf_reference), TEST(formats_same_model), TEST(hf_bad_files), TEST(hf_roundtrip), TEST(gguf_models),
    TEST(gguf_quants), TEST(gguf_write),
    TEST(generate_cached), TEST(chat_encode),
    TEST(fuzz_open_clears_model), TEST(fuzz_huge_model_small_file), TEST(fuzz_gguf_rope_freqs_below_one),
    TEST(fuzz_json_writer_utf8), TEST(fuzz_ckpt_header_overflow),
};
#undef TEST

int main(int argc, char **argv)
{
    snprintf(TMP, sizeof TMP, "build/test_tmp_%ld.bin", (long)getpid());
    g_filter = argc > 1 ? argv[1] : NULL;
    printf("maskft %s tests, %s kernels, %s\n", mft_version(), mft_simd_name(),
#ifdef _OPENMP
           "OpenMP"
#else
           "no OpenMP"
#endif
    );
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) run(tests[i].name, tests[i].fn);
    if (g_n_missing) {
        printf("missing assets: ");
        for (int i = 0; i < g_n_missing; i++) printf("%s%s", i ? ", " : "", g_missing[i]);
        printf("\n");
    }
    printf("%d passed, %d failed", g_pass, g_fail);
    if (g_skip) printf(", %d skipped", g_skip);
    printf("\n");
    return g_fail ? 1 : 0;
}
