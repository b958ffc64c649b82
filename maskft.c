/* maskft.c - implementation of maskft.h. MIT license.

   TABLE OF CONTENTS (grep for the anchor to jump)
     >>simd       which vector path is compiled, and the few wrappers every kernel uses
     >>errors     status strings and the error channel
     >>kernels    the hot loops, each as a plain scalar reference (_ref) and a fast version
                  written against the >>simd wrappers; tests compare the two
       >>matmul     y = x W^T forward, and its two backward products (dx, dW)
       >>rmsnorm    forward and backward
       >>rope       rotary position embedding, forward and backward (one kernel, sign flip)
       >>softmax    exp, softmax rows, log-sum-exp
       >>swiglu     silu(a) * b forward and backward
       >>adamw      the optimizer update
     >>attention  causal grouped-query attention, forward and backward
     >>model      configuration checks, the memory layout, init, random weights
     >>forward    the forward pass and the masked loss
     >>backward   the backward pass, top (loss) to bottom (embedding)
     >>step       gradient normalisation, clipping, schedule, AdamW
     >>decode     one token at a time with a KV cache, and the sampler
     >>tokenizer  llama2.c tokenizer.bin: load, BPE encode by merge scores, decode
     >>io         checkpoints: validated readers (v0, v1) and the v0 writer

   NAMES. Shapes follow the header: B, T, N = B*T, D, F, L, NH, KV, hs, V; KVD = KV*hs.
   Kernel signatures put outputs first, then inputs, then sizes, then nt (threads).
   Backward kernels ACCUMULATE (+=) into gradient buffers, as llm.c's do: mft_zero_grad()
   is the only thing that clears them, which is what makes gradient accumulation free.
*/
#include "maskft.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
/* Every parallel loop in this file is split over what it writes, with a fixed split that does
   not depend on the thread count, so any number of threads gives bit-identical results. */
#define MFT__PRAGMA(x) _Pragma(#x)
#define MFT__PARFOR(n) MFT__PRAGMA(omp parallel for schedule(static) num_threads(n))
#else
#define MFT__PARFOR(n)
#endif

#define MFT__PI 3.14159265358979323846

/* The scalar reference kernels are the tests' oracle; the library itself calls only some. */
#if defined(__GNUC__)
#define MFT__REF static __attribute__((unused))
#else
#define MFT__REF static
#endif

/* Small loops run on one thread: waking a team costs more than the work, and on a busy
   machine a descheduled team member stalls everyone at the barrier. */
static inline int mft__par(int nt, double work) { return work >= 1e6 ? nt : 1; }

static int mft__nthreads(const mft_model *m)
{
#ifdef _OPENMP
    return m->n_threads > 0 ? m->n_threads : omp_get_max_threads();
#else
    (void)m;
    return 1;
#endif
}

/* ============================================================================================
   >>simd
   One vector type mft__vf of MFT__VW floats and a handful of operations. The fast kernels are
   written once against these; with MFT_NO_SIMD (or on a CPU without AVX2/NEON) the vector is a
   single float and the same kernels become plain scalar loops with the same blocking.
   ============================================================================================ */
#if !defined(MFT_NO_SIMD) && defined(__AVX2__) && defined(__FMA__)
#define MFT__AVX2 1
#include <immintrin.h>
typedef __m256 mft__vf;
#define MFT__VW 8
static inline mft__vf mft__vload(const float *p) { return _mm256_loadu_ps(p); }
static inline void mft__vstore(float *p, mft__vf v) { _mm256_storeu_ps(p, v); }
static inline mft__vf mft__vset1(float x) { return _mm256_set1_ps(x); }
static inline mft__vf mft__vadd(mft__vf a, mft__vf b) { return _mm256_add_ps(a, b); }
static inline mft__vf mft__vsub(mft__vf a, mft__vf b) { return _mm256_sub_ps(a, b); }
static inline mft__vf mft__vmul(mft__vf a, mft__vf b) { return _mm256_mul_ps(a, b); }
static inline mft__vf mft__vdiv(mft__vf a, mft__vf b) { return _mm256_div_ps(a, b); }
static inline mft__vf mft__vmax(mft__vf a, mft__vf b) { return _mm256_max_ps(a, b); }
static inline mft__vf mft__vsqrt(mft__vf a) { return _mm256_sqrt_ps(a); }
/* a*b + c, fused */
static inline mft__vf mft__vfma(mft__vf a, mft__vf b, mft__vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline float mft__vhsum(mft__vf v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float mft__vhmax(mft__vf v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
/* (x0,x1,x2,x3,..) -> (x1,x0,x3,x2,..): the partner of each element in a RoPE pair */
static inline mft__vf mft__vswap_pairs(mft__vf v) { return _mm256_permute_ps(v, 0xB1); }
/* exp(x) = 2^n * e^r with n = round(x/ln2), r = x - n ln2 (ln2 split in two for accuracy) and a
   degree-6 polynomial for e^r on [-ln2/2, ln2/2] (Cephes' expf coefficients); 2^n is built in
   the exponent bits. Relative error about 2 ulp; inputs clamped to [-87.3, 88.7]. */
static inline mft__vf mft__vexp(mft__vf x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#elif !defined(MFT_NO_SIMD) && defined(__ARM_NEON) && defined(__aarch64__)
#define MFT__NEON 1
#include <arm_neon.h>
typedef float32x4_t mft__vf;
#define MFT__VW 4
static inline mft__vf mft__vload(const float *p) { return vld1q_f32(p); }
static inline void mft__vstore(float *p, mft__vf v) { vst1q_f32(p, v); }
static inline mft__vf mft__vset1(float x) { return vdupq_n_f32(x); }
static inline mft__vf mft__vadd(mft__vf a, mft__vf b) { return vaddq_f32(a, b); }
static inline mft__vf mft__vsub(mft__vf a, mft__vf b) { return vsubq_f32(a, b); }
static inline mft__vf mft__vmul(mft__vf a, mft__vf b) { return vmulq_f32(a, b); }
static inline mft__vf mft__vdiv(mft__vf a, mft__vf b) { return vdivq_f32(a, b); }
static inline mft__vf mft__vmax(mft__vf a, mft__vf b) { return vmaxq_f32(a, b); }
static inline mft__vf mft__vsqrt(mft__vf a) { return vsqrtq_f32(a); }
static inline mft__vf mft__vfma(mft__vf a, mft__vf b, mft__vf c) { return vfmaq_f32(c, a, b); }
static inline float mft__vhsum(mft__vf v) { return vaddvq_f32(v); }
static inline float mft__vhmax(mft__vf v) { return vmaxvq_f32(v); }
static inline mft__vf mft__vswap_pairs(mft__vf v) { return vrev64q_f32(v); }
/* the same range reduction and polynomial as the AVX2 version */
static inline mft__vf mft__vexp(mft__vf x)
{
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.7f));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}
#else
#define MFT__SCALAR 1
typedef float mft__vf;
#define MFT__VW 1
static inline mft__vf mft__vload(const float *p) { return *p; }
static inline void mft__vstore(float *p, mft__vf v) { *p = v; }
static inline mft__vf mft__vset1(float x) { return x; }
static inline mft__vf mft__vadd(mft__vf a, mft__vf b) { return a + b; }
static inline mft__vf mft__vsub(mft__vf a, mft__vf b) { return a - b; }
static inline mft__vf mft__vmul(mft__vf a, mft__vf b) { return a * b; }
static inline mft__vf mft__vdiv(mft__vf a, mft__vf b) { return a / b; }
static inline mft__vf mft__vmax(mft__vf a, mft__vf b) { return a > b ? a : b; }
static inline mft__vf mft__vsqrt(mft__vf a) { return sqrtf(a); }
static inline mft__vf mft__vfma(mft__vf a, mft__vf b, mft__vf c) { return a * b + c; }
static inline float mft__vhsum(mft__vf v) { return v; }
static inline float mft__vhmax(mft__vf v) { return v; }
static inline mft__vf mft__vexp(mft__vf x) { return expf(x); }
#endif

MFT_API const char *mft_simd_name(void)
{
#if defined(MFT__AVX2)
    return "avx2";
#elif defined(MFT__NEON)
    return "neon";
#else
    return "scalar";
#endif
}

MFT_API const char *mft_version(void) { return MFT_VERSION_STRING; }

/* ============================================================================================
   >>errors
   ============================================================================================ */
MFT_API const char *mft_status_str(mft_status s)
{
    switch (s) {
    case MFT_OK: return "ok";
    case MFT_EMPTY_MASK: return "empty mask: no position had a loss weight, nothing was trained";
    case MFT_ERR_ARG: return "invalid argument";
    case MFT_ERR_NOMEM: return "out of memory";
    case MFT_ERR_IO: return "i/o error";
    case MFT_ERR_FORMAT: return "bad file format";
    case MFT_ERR_NONFINITE: return "non-finite value (NaN or Inf)";
    case MFT_ERR_STATE: return "object not set up for this call";
    }
    return "unknown status";
}

/* Records status and a printf-style message in *err (if given) and returns the status, so error
   paths read `return mft__fail(err, MFT_ERR_ARG, "...", ...);`. */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static mft_status mft__fail(mft_error *err, mft_status s, const char *fmt, ...);
#include <stdarg.h>
static mft_status mft__fail(mft_error *err, mft_status s, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = s;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

static mft_status mft__ok(mft_error *err)
{
    if (err) { err->status = MFT_OK; err->msg[0] = 0; }
    return MFT_OK;
}

/* ============================================================================================
   >>kernels
   Each kernel comes twice: mft__X_ref, the definition in the plainest loops (the reader's
   reference and the tests' oracle), and mft__X, the blocked, vectorised, threaded version.
   ============================================================================================ */

/* dot product, vectorised with a scalar tail */
static inline float mft__dot(const float *a, const float *b, int n)
{
    int i = 0;
    float s = 0.0f;
#if MFT__VW > 1
    mft__vf acc = mft__vset1(0.0f);
    for (; i + MFT__VW <= n; i += MFT__VW) acc = mft__vfma(mft__vload(a + i), mft__vload(b + i), acc);
    s = mft__vhsum(acc);
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* y += alpha * x */
static inline void mft__axpy(float *y, float alpha, const float *x, int n)
{
    int i = 0;
#if MFT__VW > 1
    mft__vf va = mft__vset1(alpha);
    for (; i + MFT__VW <= n; i += MFT__VW) mft__vstore(y + i, mft__vfma(va, mft__vload(x + i), mft__vload(y + i)));
#endif
    for (; i < n; i++) y[i] += alpha * x[i];
}

/* y += x */
static inline void mft__vec_add(float *y, const float *x, size_t n)
{
    size_t i = 0;
#if MFT__VW > 1
    for (; i + MFT__VW <= n; i += MFT__VW) mft__vstore(y + i, mft__vadd(mft__vload(y + i), mft__vload(x + i)));
#endif
    for (; i < n; i++) y[i] += x[i];
}

/* ---- >>matmul -------------------------------------------------------------------------------
   Forward:   out[n][o]  = sum_c inp[n][c] * w[o][c]        out (N,OC), inp (N,C), w (OC,C)
   Backward:  dinp[n][c] += sum_o dout[n][o] * w[o][c]      (dout W)
              dw[o][c]   += sum_n dout[n][o] * inp[n][c]    (dout^T inp)
   By far most of the time of a training step is spent in these three (6 flops per weight per
   token: 2 forward, 4 backward). The forward product is a dot product of two contiguous rows,
   so it is register-tiled 3 rows x 4 weight rows = 12 vector accumulators, which keep the FMA
   units busy while each loaded vector is used 3 or 4 times. The backward products run along
   rows of W (or of inp) instead, as broadcast-and-FMA tiles of 4 rows x 2 vectors. All three
   are split over blocks of what they write, so each output element is summed by one thread in
   a fixed order, whatever the thread count. */

MFT__REF void mft__matmul_fwd_ref(float *out, const float *inp, const float *w, int N, int C, int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float s = 0.0f;
            for (int c = 0; c < C; c++) s += inp[(size_t)n * C + c] * w[(size_t)o * C + c];
            out[(size_t)n * OC + o] = s;
        }
}

MFT__REF void mft__matmul_bwd_dx_ref(float *dinp, const float *dout, const float *w, int N, int C, int OC)
{
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float s = 0.0f;
            for (int o = 0; o < OC; o++) s += dout[(size_t)n * OC + o] * w[(size_t)o * C + c];
            dinp[(size_t)n * C + c] += s;
        }
}

MFT__REF void mft__matmul_bwd_dw_ref(float *dw, const float *dout, const float *inp, int N, int C, int OC)
{
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
            dw[(size_t)o * C + c] += s;
        }
}

/* 3 rows of inp (x0..x2) against 4 rows of w (w0..w3): out[i][j] = x_i . w_j */
static inline void mft__mm_tile3x4(float *out, int ldo, const float *x, const float *w, int C)
{
    const float *x0 = x, *x1 = x + C, *x2 = x + 2 * (size_t)C;
    const float *w0 = w, *w1 = w + C, *w2 = w + 2 * (size_t)C, *w3 = w + 3 * (size_t)C;
    int c = 0;
    float s[3][4];
#if MFT__VW > 1
    mft__vf a00 = mft__vset1(0.0f), a01 = a00, a02 = a00, a03 = a00;
    mft__vf a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    mft__vf a20 = a00, a21 = a00, a22 = a00, a23 = a00;
    for (; c + MFT__VW <= C; c += MFT__VW) {
        mft__vf v0 = mft__vload(x0 + c), v1 = mft__vload(x1 + c), v2 = mft__vload(x2 + c), u;
        u = mft__vload(w0 + c); a00 = mft__vfma(v0, u, a00); a10 = mft__vfma(v1, u, a10); a20 = mft__vfma(v2, u, a20);
        u = mft__vload(w1 + c); a01 = mft__vfma(v0, u, a01); a11 = mft__vfma(v1, u, a11); a21 = mft__vfma(v2, u, a21);
        u = mft__vload(w2 + c); a02 = mft__vfma(v0, u, a02); a12 = mft__vfma(v1, u, a12); a22 = mft__vfma(v2, u, a22);
        u = mft__vload(w3 + c); a03 = mft__vfma(v0, u, a03); a13 = mft__vfma(v1, u, a13); a23 = mft__vfma(v2, u, a23);
    }
    s[0][0] = mft__vhsum(a00); s[0][1] = mft__vhsum(a01); s[0][2] = mft__vhsum(a02); s[0][3] = mft__vhsum(a03);
    s[1][0] = mft__vhsum(a10); s[1][1] = mft__vhsum(a11); s[1][2] = mft__vhsum(a12); s[1][3] = mft__vhsum(a13);
    s[2][0] = mft__vhsum(a20); s[2][1] = mft__vhsum(a21); s[2][2] = mft__vhsum(a22); s[2][3] = mft__vhsum(a23);
#else
    for (int i = 0; i < 3; i++) for (int j = 0; j < 4; j++) s[i][j] = 0.0f;
#endif
    for (; c < C; c++) {
        float v0 = x0[c], v1 = x1[c], v2 = x2[c];
        s[0][0] += v0 * w0[c]; s[1][0] += v1 * w0[c]; s[2][0] += v2 * w0[c];
        s[0][1] += v0 * w1[c]; s[1][1] += v1 * w1[c]; s[2][1] += v2 * w1[c];
        s[0][2] += v0 * w2[c]; s[1][2] += v1 * w2[c]; s[2][2] += v2 * w2[c];
        s[0][3] += v0 * w3[c]; s[1][3] += v1 * w3[c]; s[2][3] += v2 * w3[c];
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) out[(size_t)i * ldo + j] = s[i][j];
}

#define MFT__MM_NB 48   /* rows of inp per job: 48 x C floats stay in L2 while W tiles pass */
#define MFT__MM_OB 64   /* weight rows per job */

static void mft__matmul_fwd(float *out, const float *inp, const float *w, int N, int C, int OC, int nt)
{
    int n_rb = (N + MFT__MM_NB - 1) / MFT__MM_NB, n_ob = (OC + MFT__MM_OB - 1) / MFT__MM_OB;
    nt = mft__par(nt, (double)N * C * OC);
    MFT__PARFOR(nt)
    for (int job = 0; job < n_rb * n_ob; job++) {
        int n0 = (job / n_ob) * MFT__MM_NB, n1 = n0 + MFT__MM_NB < N ? n0 + MFT__MM_NB : N;
        int o0 = (job % n_ob) * MFT__MM_OB, o1 = o0 + MFT__MM_OB < OC ? o0 + MFT__MM_OB : OC;
        for (int o = o0; o < o1; o += 4) {
            const float *wo = w + (size_t)o * C;
            int n = n0;
            if (o + 4 <= o1)
                for (; n + 3 <= n1; n += 3) mft__mm_tile3x4(out + (size_t)n * OC + o, OC, inp + (size_t)n * C, wo, C);
            for (; n < n1; n++)
                for (int j = o; j < o + 4 && j < o1; j++)
                    out[(size_t)n * OC + j] = mft__dot(inp + (size_t)n * C, w + (size_t)j * C, C);
        }
    }
}

#define MFT__DX_OB 128  /* rows of W per pass: a 128 x 2-vector strip of W stays in L1 */

static void mft__matmul_bwd_dx(float *dinp, const float *dout, const float *w, int N, int C, int OC, int nt)
{
    nt = mft__par(nt, (double)N * C * OC);
    /* Each pass over W serves `rb` rows, so W (which may be the 37 MB classifier) is streamed
       from memory N/rb times: as many rows per job as keeps every thread busy, up to 128.
       Rows are independent here, so the split does not change any result. */
    int rb = (N + nt - 1) / nt;
    rb = rb < 16 ? 16 : rb > 128 ? 128 : (rb + 3) & ~3;
    int n_jobs = (N + rb - 1) / rb;
    MFT__PARFOR(nt)
    for (int job = 0; job < n_jobs; job++) {
        int n0 = job * rb, n1 = n0 + rb < N ? n0 + rb : N;
        for (int ob = 0; ob < OC; ob += MFT__DX_OB) {
            int oe = ob + MFT__DX_OB < OC ? ob + MFT__DX_OB : OC;
            int c = 0;
#if MFT__VW > 1
            for (; c + 2 * MFT__VW <= C; c += 2 * MFT__VW) {
                int n = n0;
                for (; n + 4 <= n1; n += 4) {
                    float *d0 = dinp + (size_t)n * C + c, *d1 = d0 + C, *d2 = d1 + C, *d3 = d2 + C;
                    const float *g = dout + (size_t)n * OC;
                    mft__vf a00 = mft__vload(d0), a01 = mft__vload(d0 + MFT__VW);
                    mft__vf a10 = mft__vload(d1), a11 = mft__vload(d1 + MFT__VW);
                    mft__vf a20 = mft__vload(d2), a21 = mft__vload(d2 + MFT__VW);
                    mft__vf a30 = mft__vload(d3), a31 = mft__vload(d3 + MFT__VW);
                    for (int o = ob; o < oe; o++) {
                        const float *wr = w + (size_t)o * C + c;
                        mft__vf u0 = mft__vload(wr), u1 = mft__vload(wr + MFT__VW), b;
                        b = mft__vset1(g[o]);          a00 = mft__vfma(b, u0, a00); a01 = mft__vfma(b, u1, a01);
                        b = mft__vset1(g[OC + o]);     a10 = mft__vfma(b, u0, a10); a11 = mft__vfma(b, u1, a11);
                        b = mft__vset1(g[2 * OC + o]); a20 = mft__vfma(b, u0, a20); a21 = mft__vfma(b, u1, a21);
                        b = mft__vset1(g[3 * OC + o]); a30 = mft__vfma(b, u0, a30); a31 = mft__vfma(b, u1, a31);
                    }
                    mft__vstore(d0, a00); mft__vstore(d0 + MFT__VW, a01);
                    mft__vstore(d1, a10); mft__vstore(d1 + MFT__VW, a11);
                    mft__vstore(d2, a20); mft__vstore(d2 + MFT__VW, a21);
                    mft__vstore(d3, a30); mft__vstore(d3 + MFT__VW, a31);
                }
                for (; n < n1; n++) {
                    float *d0 = dinp + (size_t)n * C + c;
                    mft__vf a0 = mft__vload(d0), a1 = mft__vload(d0 + MFT__VW);
                    for (int o = ob; o < oe; o++) {
                        mft__vf b = mft__vset1(dout[(size_t)n * OC + o]);
                        a0 = mft__vfma(b, mft__vload(w + (size_t)o * C + c), a0);
                        a1 = mft__vfma(b, mft__vload(w + (size_t)o * C + c + MFT__VW), a1);
                    }
                    mft__vstore(d0, a0); mft__vstore(d0 + MFT__VW, a1);
                }
            }
#endif
            /* columns left over (and every column in the scalar build) */
            for (; c < C; c++)
                for (int n = n0; n < n1; n++) {
                    float s = dinp[(size_t)n * C + c];
                    for (int o = ob; o < oe; o++) s += dout[(size_t)n * OC + o] * w[(size_t)o * C + c];
                    dinp[(size_t)n * C + c] = s;
                }
        }
    }
}

#define MFT__DW_OB 16   /* rows of dW per job */
#define MFT__DW_NB 256  /* rows of inp per pass */

static void mft__matmul_bwd_dw(float *dw, const float *dout, const float *inp, int N, int C, int OC, int nt)
{
    int n_jobs = (OC + MFT__DW_OB - 1) / MFT__DW_OB;
    nt = mft__par(nt, (double)N * C * OC);
    MFT__PARFOR(nt)
    for (int job = 0; job < n_jobs; job++) {
        int o0 = job * MFT__DW_OB, o1 = o0 + MFT__DW_OB < OC ? o0 + MFT__DW_OB : OC, no = o1 - o0;
        /* The job's 16 columns of dout, copied contiguous: read in place they sit OC floats
           apart (128 KB for a 32000-token classifier), one page per row, and the TLB thrashes. */
        float gp[MFT__DW_NB * MFT__DW_OB];
        for (int nb = 0; nb < N; nb += MFT__DW_NB) {
            int ne = nb + MFT__DW_NB < N ? nb + MFT__DW_NB : N;
            for (int n = nb; n < ne; n++) memcpy(gp + (size_t)(n - nb) * MFT__DW_OB, dout + (size_t)n * OC + o0, (size_t)no * sizeof(float));
            int c = 0;
#if MFT__VW > 1
            for (; c + 2 * MFT__VW <= C; c += 2 * MFT__VW) {
                int o = o0;
                for (; o + 4 <= o1; o += 4) {
                    float *d0 = dw + (size_t)o * C + c, *d1 = d0 + C, *d2 = d1 + C, *d3 = d2 + C;
                    mft__vf a00 = mft__vload(d0), a01 = mft__vload(d0 + MFT__VW);
                    mft__vf a10 = mft__vload(d1), a11 = mft__vload(d1 + MFT__VW);
                    mft__vf a20 = mft__vload(d2), a21 = mft__vload(d2 + MFT__VW);
                    mft__vf a30 = mft__vload(d3), a31 = mft__vload(d3 + MFT__VW);
                    for (int n = nb; n < ne; n++) {
                        const float *xr = inp + (size_t)n * C + c, *g = gp + (size_t)(n - nb) * MFT__DW_OB + (o - o0);
                        mft__vf u0 = mft__vload(xr), u1 = mft__vload(xr + MFT__VW), b;
                        b = mft__vset1(g[0]); a00 = mft__vfma(b, u0, a00); a01 = mft__vfma(b, u1, a01);
                        b = mft__vset1(g[1]); a10 = mft__vfma(b, u0, a10); a11 = mft__vfma(b, u1, a11);
                        b = mft__vset1(g[2]); a20 = mft__vfma(b, u0, a20); a21 = mft__vfma(b, u1, a21);
                        b = mft__vset1(g[3]); a30 = mft__vfma(b, u0, a30); a31 = mft__vfma(b, u1, a31);
                    }
                    mft__vstore(d0, a00); mft__vstore(d0 + MFT__VW, a01);
                    mft__vstore(d1, a10); mft__vstore(d1 + MFT__VW, a11);
                    mft__vstore(d2, a20); mft__vstore(d2 + MFT__VW, a21);
                    mft__vstore(d3, a30); mft__vstore(d3 + MFT__VW, a31);
                }
                for (; o < o1; o++) {
                    float *d0 = dw + (size_t)o * C + c;
                    mft__vf a0 = mft__vload(d0), a1 = mft__vload(d0 + MFT__VW);
                    for (int n = nb; n < ne; n++) {
                        mft__vf b = mft__vset1(gp[(size_t)(n - nb) * MFT__DW_OB + (o - o0)]);
                        a0 = mft__vfma(b, mft__vload(inp + (size_t)n * C + c), a0);
                        a1 = mft__vfma(b, mft__vload(inp + (size_t)n * C + c + MFT__VW), a1);
                    }
                    mft__vstore(d0, a0); mft__vstore(d0 + MFT__VW, a1);
                }
            }
#endif
            for (; c < C; c++)
                for (int o = o0; o < o1; o++) {
                    float s = dw[(size_t)o * C + c];
                    for (int n = nb; n < ne; n++) s += gp[(size_t)(n - nb) * MFT__DW_OB + (o - o0)] * inp[(size_t)n * C + c];
                    dw[(size_t)o * C + c] = s;
                }
        }
    }
}

/* ---- >>rmsnorm ------------------------------------------------------------------------------
   y = x * r * w,  r = 1 / sqrt(mean(x^2) + eps)              (per row of D; torch: x * rsqrt(..))
   Backward, with g = dy * w:
     dx = r * g - x * r^3 * mean(g * x)       (the second term: r depends on every x_d)
     dw += sum over rows of dy * x * r
   dx is per row; dw sums over rows, so it gets its own loop split over columns. */

MFT__REF void mft__rmsnorm_fwd_ref(float *y, float *rs, const float *x, const float *w, int N, int D, float eps)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        double ss = 0.0;
        for (int d = 0; d < D; d++) ss += (double)xr[d] * xr[d];
        float r = 1.0f / sqrtf((float)(ss / D) + eps);
        rs[n] = r;
        for (int d = 0; d < D; d++) y[(size_t)n * D + d] = xr[d] * r * w[d];
    }
}

static void mft__rmsnorm_fwd(float *y, float *rs, const float *x, const float *w, int N, int D, float eps, int nt)
{
    nt = mft__par(nt, (double)N * D);
    MFT__PARFOR(nt)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *yr = y + (size_t)n * D;
        float r = 1.0f / sqrtf(mft__dot(xr, xr, D) / D + eps);
        int d = 0;
        rs[n] = r;
#if MFT__VW > 1
        mft__vf vr = mft__vset1(r);
        for (; d + MFT__VW <= D; d += MFT__VW) mft__vstore(yr + d, mft__vmul(mft__vmul(mft__vload(xr + d), vr), mft__vload(w + d)));
#endif
        for (; d < D; d++) yr[d] = xr[d] * r * w[d];
    }
}

MFT__REF void mft__rmsnorm_bwd_ref(float *dx, float *dw, const float *dy, const float *x, const float *rs, const float *w, int N, int D)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *gr = dy + (size_t)n * D;
        float r = rs[n];
        double dot = 0.0;
        for (int d = 0; d < D; d++) dot += (double)gr[d] * w[d] * xr[d];
        float c = (float)(dot / D) * r * r * r;
        for (int d = 0; d < D; d++) {
            dx[(size_t)n * D + d] += r * gr[d] * w[d] - c * xr[d];
            dw[d] += gr[d] * xr[d] * r;
        }
    }
}

static void mft__rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rs, const float *w, int N, int D, int nt)
{
    nt = mft__par(nt, (double)N * D);
    MFT__PARFOR(nt)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *gr = dy + (size_t)n * D;
        float *dr = dx + (size_t)n * D;
        float r = rs[n], dot = 0.0f;
        int d = 0;
#if MFT__VW > 1
        mft__vf acc = mft__vset1(0.0f);
        for (; d + MFT__VW <= D; d += MFT__VW)
            acc = mft__vfma(mft__vmul(mft__vload(gr + d), mft__vload(w + d)), mft__vload(xr + d), acc);
        dot = mft__vhsum(acc);
#endif
        for (; d < D; d++) dot += gr[d] * w[d] * xr[d];
        float c = dot / D * r * r * r;
        d = 0;
#if MFT__VW > 1
        mft__vf vr = mft__vset1(r), vc = mft__vset1(c);
        for (; d + MFT__VW <= D; d += MFT__VW) {
            mft__vf t = mft__vsub(mft__vmul(vr, mft__vmul(mft__vload(gr + d), mft__vload(w + d))), mft__vmul(vc, mft__vload(xr + d)));
            mft__vstore(dr + d, mft__vadd(mft__vload(dr + d), t));
        }
#endif
        for (; d < D; d++) dr[d] += r * gr[d] * w[d] - c * xr[d];
    }
    /* dw: split over columns so each dw[d] is summed over rows in order by one thread */
    int n_jobs = (D + 15) / 16;
    MFT__PARFOR(nt)
    for (int job = 0; job < n_jobs; job++) {
        int d0 = job * 16, d1 = d0 + 16 < D ? d0 + 16 : D;
        for (int d = d0; d < d1; d++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++) s += dy[(size_t)n * D + d] * x[(size_t)n * D + d] * rs[n];
            dw[d] += s;
        }
    }
}

/* ---- >>rope ---------------------------------------------------------------------------------
   Rotary embedding on interleaved pairs (x_2i, x_2i+1) of each head, angle pos * theta^(-2i/hs)
   (Meta's and llama2.c's layout):
       x_2i'   = x_2i cos - x_2i+1 sin
       x_2i+1' = x_2i sin + x_2i+1 cos
   The tables hold, per position and per element j of a head, cos[j] = cos(angle of pair j/2)
   and sin[j] = -sin or +sin for even or odd j, so that for every element
       x_j' = x_j cos[j] + x_{j^1} sin[j]
   which is one multiply, one FMA and one pair swap per vector. The backward pass is the inverse
   rotation, the same formula with the sine negated (sign = -1). Works in place. */

static void mft__rope_tables(float *cosb, float *sinb, int seq_len, int hs, float theta)
{
    for (int p = 0; p < seq_len; p++)
        for (int i = 0; i < hs / 2; i++) {
            double freq = pow((double)theta, -2.0 * i / hs), a = p * freq;
            cosb[(size_t)p * hs + 2 * i] = cosb[(size_t)p * hs + 2 * i + 1] = (float)cos(a);
            sinb[(size_t)p * hs + 2 * i] = (float)-sin(a);
            sinb[(size_t)p * hs + 2 * i + 1] = (float)sin(a);
        }
}

/* x: (n_pos, n_heads, hs) rows, row r at position pos0 + r % period (period = T for a batch) */
MFT__REF void mft__rope_ref(float *x, const float *cosb, const float *sinb, int n_rows, int period, int pos0, int n_heads, int hs, float sign)
{
    for (int r = 0; r < n_rows; r++) {
        int pos = pos0 + r % period;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)r * n_heads + h) * hs;
            for (int j = 0; j < hs; j += 2) {
                float c = cosb[(size_t)pos * hs + j], s = sign * sinb[(size_t)pos * hs + j + 1];
                float a = v[j], b = v[j + 1];
                v[j] = a * c - b * s;
                v[j + 1] = a * s + b * c;
            }
        }
    }
}

static void mft__rope(float *x, const float *cosb, const float *sinb, int n_rows, int period, int pos0, int n_heads, int hs, float sign, int nt)
{
#if MFT__VW > 1
    if (hs % MFT__VW == 0) {
        mft__vf vs = mft__vset1(sign);
        nt = mft__par(nt, (double)n_rows * n_heads * hs);
        MFT__PARFOR(nt)
        for (int r = 0; r < n_rows; r++) {
            const float *cb = cosb + (size_t)(pos0 + r % period) * hs, *sb = sinb + (size_t)(pos0 + r % period) * hs;
            for (int h = 0; h < n_heads; h++) {
                float *v = x + ((size_t)r * n_heads + h) * hs;
                for (int j = 0; j < hs; j += MFT__VW) {
                    mft__vf a = mft__vload(v + j);
                    mft__vf s = mft__vmul(vs, mft__vload(sb + j));
                    mft__vstore(v + j, mft__vfma(mft__vswap_pairs(a), s, mft__vmul(a, mft__vload(cb + j))));
                }
            }
        }
        return;
    }
#endif
    (void)nt;
    mft__rope_ref(x, cosb, sinb, n_rows, period, pos0, n_heads, hs, sign);
}

/* ---- >>softmax ------------------------------------------------------------------------------
   p_i = exp(x_i - max) / sum_j exp(x_j - max): subtracting the max keeps exp() in range. */

MFT__REF void mft__softmax_ref(float *p, const float *x, int n)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0.0;
    for (int i = 0; i < n; i++) { p[i] = expf(x[i] - mx); s += p[i]; }
    for (int i = 0; i < n; i++) p[i] = (float)(p[i] / s);
}

/* row maximum (NaN-propagating is not needed: the loss and step checks catch NaN) */
static inline float mft__vec_max(const float *x, int n)
{
    int i = 0;
    float mx = -INFINITY;
#if MFT__VW > 1
    if (n >= MFT__VW) {
        mft__vf m = mft__vload(x);
        for (i = MFT__VW; i + MFT__VW <= n; i += MFT__VW) m = mft__vmax(m, mft__vload(x + i));
        mx = mft__vhmax(m);
    }
#endif
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

/* p[i] = exp(x[i] - shift) (p may alias x); returns the sum */
static inline float mft__vec_exp_sum(float *p, const float *x, float shift, int n)
{
    int i = 0;
    float s = 0.0f;
#if MFT__VW > 1
    mft__vf acc = mft__vset1(0.0f), vm = mft__vset1(shift);
    for (; i + MFT__VW <= n; i += MFT__VW) {
        mft__vf e = mft__vexp(mft__vsub(mft__vload(x + i), vm));
        mft__vstore(p + i, e);
        acc = mft__vadd(acc, e);
    }
    s = mft__vhsum(acc);
#endif
    for (; i < n; i++) { p[i] = expf(x[i] - shift); s += p[i]; }
    return s;
}

static inline void mft__vec_scale(float *y, float a, int n)
{
    int i = 0;
#if MFT__VW > 1
    mft__vf va = mft__vset1(a);
    for (; i + MFT__VW <= n; i += MFT__VW) mft__vstore(y + i, mft__vmul(mft__vload(y + i), va));
#endif
    for (; i < n; i++) y[i] *= a;
}

static void mft__softmax(float *p, const float *x, int n)
{
    float mx = mft__vec_max(x, n);
    float s = mft__vec_exp_sum(p, x, mx, n);
    mft__vec_scale(p, 1.0f / s, n);
}

/* ---- >>swiglu -------------------------------------------------------------------------------
   g = silu(a) * b, silu(a) = a * sigmoid(a)               (torch: F.silu(x W1^T) * (x W3^T))
   da = dg * b * sigmoid(a) * (1 + a * (1 - sigmoid(a)))     (d silu / da)
   db = dg * silu(a)                                                                        */

MFT__REF void mft__swiglu_fwd_ref(float *g, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

static void mft__swiglu_fwd(float *g, const float *a, const float *b, size_t n, int nt)
{
    long long nb = (long long)((n + 1023) / 1024);
    nt = mft__par(nt, (double)n);
    MFT__PARFOR(nt)
    for (long long blk = 0; blk < nb; blk++) {
        size_t i = (size_t)blk * 1024, e = i + 1024 < n ? i + 1024 : n;
#if MFT__VW > 1
        mft__vf one = mft__vset1(1.0f), zero = mft__vset1(0.0f);
        for (; i + MFT__VW <= e; i += MFT__VW) {
            mft__vf va = mft__vload(a + i);
            mft__vf sg = mft__vdiv(one, mft__vadd(one, mft__vexp(mft__vsub(zero, va))));
            mft__vstore(g + i, mft__vmul(mft__vmul(va, sg), mft__vload(b + i)));
        }
#endif
        for (; i < e; i++) g[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
    }
}

MFT__REF void mft__swiglu_bwd_ref(float *da, float *db, const float *dg, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-a[i]));
        db[i] = dg[i] * a[i] * s;
        da[i] = dg[i] * b[i] * s * (1.0f + a[i] * (1.0f - s));
    }
}

/* writes (does not accumulate) da and db: they are scratch activation gradients */
static void mft__swiglu_bwd(float *da, float *db, const float *dg, const float *a, const float *b, size_t n, int nt)
{
    long long nb = (long long)((n + 1023) / 1024);
    nt = mft__par(nt, (double)n);
    MFT__PARFOR(nt)
    for (long long blk = 0; blk < nb; blk++) {
        size_t i = (size_t)blk * 1024, e = i + 1024 < n ? i + 1024 : n;
#if MFT__VW > 1
        mft__vf one = mft__vset1(1.0f), zero = mft__vset1(0.0f);
        for (; i + MFT__VW <= e; i += MFT__VW) {
            mft__vf va = mft__vload(a + i), vg = mft__vload(dg + i);
            mft__vf s = mft__vdiv(one, mft__vadd(one, mft__vexp(mft__vsub(zero, va))));
            mft__vstore(db + i, mft__vmul(vg, mft__vmul(va, s)));
            mft__vf t = mft__vfma(va, mft__vsub(one, s), one);
            mft__vstore(da + i, mft__vmul(mft__vmul(vg, mft__vload(b + i)), mft__vmul(s, t)));
        }
#endif
        for (; i < e; i++) {
            float s = 1.0f / (1.0f + expf(-a[i]));
            db[i] = dg[i] * a[i] * s;
            da[i] = dg[i] * b[i] * s * (1.0f + a[i] * (1.0f - s));
        }
    }
}

/* ---- >>adamw --------------------------------------------------------------------------------
   torch.optim.AdamW, step t (1-based), gradient g already scaled (normalised and clipped):
     p -= lr * wd * p                            decoupled weight decay
     m += (1 - b1) (g - m)                       (torch's lerp form of b1 m + (1-b1) g)
     v  = b2 v + (1 - b2) g^2
     p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)                              */

typedef struct mft__adam_k {
    float lr, b1, b2, eps, wd, gscale, step_size, bc2_sqrt;
} mft__adam_k;

MFT__REF void mft__adamw_ref(float *p, float *m, float *v, const float *g, size_t n, const mft__adam_k *k)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * k->gscale;
        p[i] *= 1.0f - k->lr * k->wd;
        m[i] += (1.0f - k->b1) * (gi - m[i]);
        v[i] = k->b2 * v[i] + (1.0f - k->b2) * gi * gi;
        p[i] -= k->step_size * m[i] / (sqrtf(v[i]) / k->bc2_sqrt + k->eps);
    }
}

static void mft__adamw(float *p, float *m, float *v, const float *g, size_t n, const mft__adam_k *k, int nt)
{
    long long nb = (long long)((n + 4095) / 4096);
    nt = mft__par(nt, (double)n);
    MFT__PARFOR(nt)
    for (long long blk = 0; blk < nb; blk++) {
        size_t i = (size_t)blk * 4096, e = i + 4096 < n ? i + 4096 : n;
#if MFT__VW > 1
        mft__vf gs = mft__vset1(k->gscale), decay = mft__vset1(1.0f - k->lr * k->wd);
        mft__vf c1 = mft__vset1(1.0f - k->b1), b2 = mft__vset1(k->b2), c2 = mft__vset1(1.0f - k->b2);
        mft__vf ss = mft__vset1(k->step_size), bc = mft__vset1(k->bc2_sqrt), eps = mft__vset1(k->eps);
        for (; i + MFT__VW <= e; i += MFT__VW) {
            mft__vf gi = mft__vmul(mft__vload(g + i), gs);
            mft__vf pi = mft__vmul(mft__vload(p + i), decay);
            mft__vf mi = mft__vload(m + i);
            mi = mft__vfma(c1, mft__vsub(gi, mi), mi);
            mft__vf vi = mft__vfma(c2, mft__vmul(gi, gi), mft__vmul(b2, mft__vload(v + i)));
            mft__vf den = mft__vadd(mft__vdiv(mft__vsqrt(vi), bc), eps);
            pi = mft__vsub(pi, mft__vdiv(mft__vmul(ss, mi), den));
            mft__vstore(p + i, pi); mft__vstore(m + i, mi); mft__vstore(v + i, vi);
        }
#endif
        if (i < e) mft__adamw_ref(p + i, m + i, v + i, g + i, e - i, k);
    }
}

/* ============================================================================================
   >>attention
   Causal self-attention for one (batch row b, query head h), head size hs, KV head
   kvh = h / (NH / KV) (grouped-query attention: NH/KV query heads share one K and V head):
       s_tu = q_t . k_u / sqrt(hs)   for u <= t          p_t = softmax(s_t)
       o_t  = sum_u p_tu v_u
   Backward, given do_t:
       dv_u += sum_t p_tu do_t              dp_tu = do_t . v_u
       ds_tu = p_tu (dp_tu - sum_u' p_tu' dp_tu')        (softmax backward)
       dq_t += sum_u ds_tu k_u / sqrt(hs)   dk_u += sum_t ds_tu q_t / sqrt(hs)
   The forward pass is split over (b, h), which own their outputs. In the backward pass, the
   query heads of a group all add into the same dk and dv, so it is split over (b, kvh) and
   the group's heads run in order inside: no two threads write the same element.
   ============================================================================================ */

/* one query row: p (n) = softmax of the scores against n keys, out (hs) = p . values */
static inline void mft__attn_row(float *out, float *p, const float *q, const float *k, const float *v,
                                 size_t stride, int n, int hs, float scale)
{
    for (int u = 0; u < n; u++) p[u] = mft__dot(q, k + (size_t)u * stride, hs) * scale;
    mft__softmax(p, p, n);
    memset(out, 0, (size_t)hs * sizeof(float));
    for (int u = 0; u < n; u++) mft__axpy(out, p[u], v + (size_t)u * stride, hs);
}

/* q (B,T,NH,hs), k v (B,T,KV,hs) -> out (B,T,NH,hs), att (B,NH,T,T) */
static void mft__attention_fwd(float *out, float *att, const float *q, const float *k, const float *v,
                               int B, int T, int NH, int KV, int hs, int nt)
{
    int D = NH * hs, KVD = KV * hs, grp = NH / KV;
    float scale = 1.0f / sqrtf((float)hs);
    nt = mft__par(nt, (double)B * NH * T * T * hs);
    MFT__PARFOR(nt)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        const float *kb = k + (size_t)b * T * KVD + (h / grp) * hs, *vb = v + (size_t)b * T * KVD + (h / grp) * hs;
        for (int t = 0; t < T; t++)
            mft__attn_row(out + ((size_t)b * T + t) * D + h * hs, att + ((size_t)bh * T + t) * T,
                          q + ((size_t)b * T + t) * D + h * hs, kb, vb, KVD, t + 1, hs, scale);
    }
}

/* accumulates dq (B,T,NH,hs), dk, dv (B,T,KV,hs); dp is scratch (B*KV, T) */
static void mft__attention_bwd(float *dq, float *dk, float *dv, float *dp, const float *dout, const float *att,
                               const float *q, const float *k, const float *v, int B, int T, int NH, int KV, int hs, int nt)
{
    int D = NH * hs, KVD = KV * hs, grp = NH / KV;
    float scale = 1.0f / sqrtf((float)hs);
    nt = mft__par(nt, (double)B * NH * T * T * hs);
    MFT__PARFOR(nt)
    for (int bk = 0; bk < B * KV; bk++) {
        int b = bk / KV, kvh = bk % KV;
        size_t koff = (size_t)b * T * KVD + (size_t)kvh * hs;
        float *dpr = dp + (size_t)bk * T;
        for (int h = kvh * grp; h < (kvh + 1) * grp; h++)
            for (int t = 0; t < T; t++) {
                size_t qoff = ((size_t)b * T + t) * D + (size_t)h * hs;
                const float *p = att + (((size_t)b * NH + h) * T + t) * T, *dot = dout + qoff;
                float s = 0.0f;
                for (int u = 0; u <= t; u++) {
                    dpr[u] = mft__dot(dot, v + koff + (size_t)u * KVD, hs);
                    s += p[u] * dpr[u];
                    mft__axpy(dv + koff + (size_t)u * KVD, p[u], dot, hs);
                }
                for (int u = 0; u <= t; u++) {
                    float ds = p[u] * (dpr[u] - s) * scale;
                    mft__axpy(dq + qoff, ds, k + koff + (size_t)u * KVD, hs);
                    mft__axpy(dk + koff + (size_t)u * KVD, ds, q + qoff, hs);
                }
            }
    }
}

/* ============================================================================================
   >>model
   ============================================================================================ */

MFT_API mft_status mft_config_check(const mft_config *c, mft_error *err)
{
    if (!c) return mft__fail(err, MFT_ERR_ARG, "config is NULL");
    /* generous ceilings that still keep every product below 2^62 */
    if (c->dim <= 0 || c->dim > (1 << 16)) return mft__fail(err, MFT_ERR_FORMAT, "dim %d out of range (1..65536)", c->dim);
    if (c->hidden_dim <= 0 || c->hidden_dim > (1 << 18)) return mft__fail(err, MFT_ERR_FORMAT, "hidden_dim %d out of range (1..262144)", c->hidden_dim);
    if (c->n_layers <= 0 || c->n_layers > 1024) return mft__fail(err, MFT_ERR_FORMAT, "n_layers %d out of range (1..1024)", c->n_layers);
    if (c->n_heads <= 0 || c->n_heads > c->dim) return mft__fail(err, MFT_ERR_FORMAT, "n_heads %d out of range (1..dim)", c->n_heads);
    if (c->n_kv_heads <= 0 || c->n_kv_heads > c->n_heads) return mft__fail(err, MFT_ERR_FORMAT, "n_kv_heads %d out of range (1..n_heads=%d)", c->n_kv_heads, c->n_heads);
    if (c->dim % c->n_heads) return mft__fail(err, MFT_ERR_FORMAT, "dim %d is not a multiple of n_heads %d", c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads) return mft__fail(err, MFT_ERR_FORMAT, "n_heads %d is not a multiple of n_kv_heads %d", c->n_heads, c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2) return mft__fail(err, MFT_ERR_FORMAT, "head size %d is odd: RoPE needs pairs", c->dim / c->n_heads);
    if (c->vocab_size <= 0 || c->vocab_size > (1 << 22)) return mft__fail(err, MFT_ERR_FORMAT, "vocab_size %d out of range (1..4194304)", c->vocab_size);
    if (c->seq_len <= 0 || c->seq_len > (1 << 20)) return mft__fail(err, MFT_ERR_FORMAT, "seq_len %d out of range (1..1048576)", c->seq_len);
    if (!(c->norm_eps > 0.0f && c->norm_eps < 1.0f)) return mft__fail(err, MFT_ERR_FORMAT, "norm_eps %g out of range (0, 1)", (double)c->norm_eps);
    if (!(c->rope_theta > 1.0f && c->rope_theta < 1e12f)) return mft__fail(err, MFT_ERR_FORMAT, "rope_theta %g out of range", (double)c->rope_theta);
    return mft__ok(err);
}

/* floats of each tensor, in checkpoint order; 11 shared + wcls */
static void mft__tensor_sizes(const mft_config *c, size_t sz[12])
{
    size_t D = (size_t)c->dim, F = (size_t)c->hidden_dim, L = (size_t)c->n_layers, V = (size_t)c->vocab_size;
    size_t KVD = (size_t)c->n_kv_heads * (D / (size_t)c->n_heads);
    sz[0] = V * D; sz[1] = L * D; sz[2] = L * D * D; sz[3] = L * KVD * D; sz[4] = L * KVD * D;
    sz[5] = L * D * D; sz[6] = L * D; sz[7] = L * F * D; sz[8] = L * D * F; sz[9] = L * F * D;
    sz[10] = D; sz[11] = c->shared_classifier ? 0 : V * D;
}

static const char *const mft__tensor_names[12] = {
    "tok_emb", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final", "wcls"
};

MFT_API size_t mft_param_count(const mft_config *c)
{
    size_t sz[12], n = 0;
    mft__tensor_sizes(c, sz);
    for (int i = 0; i < 12; i++) n += sz[i];
    return n;
}

MFT_API int mft_tensor_count(const mft_config *c) { return c->shared_classifier ? 11 : 12; }

MFT_API mft_tensor_info mft_tensor_at(const mft_config *c, int i)
{
    mft_tensor_info ti = { 0, 0, 0 };
    size_t sz[12], off = 0;
    if (i < 0 || i >= mft_tensor_count(c)) return ti;
    mft__tensor_sizes(c, sz);
    for (int j = 0; j < i; j++) off += sz[j];
    ti.name = mft__tensor_names[i];
    ti.offset = off;
    ti.numel = sz[i];
    return ti;
}

static void mft__point_params(mft_params *p, float *base, const mft_config *c)
{
    size_t sz[12];
    float **slot[12] = { &p->tok_emb, &p->rms_att, &p->wq, &p->wk, &p->wv, &p->wo, &p->rms_ffn,
                         &p->w1, &p->w2, &p->w3, &p->rms_final, &p->wcls };
    mft__tensor_sizes(c, sz);
    for (int i = 0; i < 12; i++) { *slot[i] = base; base += sz[i]; }
    if (c->shared_classifier) p->wcls = p->tok_emb;
}

/* The memory layout, written once: walks every buffer a model of this shape needs, in order,
   each 64-byte aligned. With m == NULL it only adds up the bytes; with m it also points the
   model's fields into base. mft_model_bytes and mft_model_init both call it, so the size and
   the carving cannot disagree. */
static size_t mft__layout(mft_model *m, char *base, const mft_config *c, int B, int T, int flags)
{
    size_t off = 0, D = (size_t)c->dim, F = (size_t)c->hidden_dim, L = (size_t)c->n_layers;
    size_t V = (size_t)c->vocab_size, hs = D / (size_t)c->n_heads, KVD = (size_t)c->n_kv_heads * hs;
    size_t N = (size_t)B * T, S = (size_t)c->seq_len, NP = mft_param_count(c);
    int train = (flags & MFT_TRAIN) != 0, fwd = train || (flags & MFT_FORWARD);
#define MFT__TAKE(field, nfloats, cond)                                         \
    do {                                                                        \
        size_t n_ = (cond) ? (size_t)(nfloats) : 0;                             \
        if (m) (field) = n_ ? (void *)(base + off) : NULL;                      \
        off += (n_ * sizeof(float) + 63) & ~(size_t)63;                         \
    } while (0)
    MFT__TAKE(m->params, NP, 1);
    MFT__TAKE(m->grads, NP, train);
    MFT__TAKE(m->adam_m, NP, train);
    MFT__TAKE(m->adam_v, NP, train);
    MFT__TAKE(m->rope_cos, S * hs, 1);
    MFT__TAKE(m->rope_sin, S * hs, 1);
    MFT__TAKE(m->a.res, (L + 1) * N * D, fwd);
    MFT__TAKE(m->a.res_mid, L * N * D, fwd);
    MFT__TAKE(m->a.xn_att, L * N * D, fwd);
    MFT__TAKE(m->a.rs_att, L * N, fwd);
    MFT__TAKE(m->a.q, L * N * D, fwd);
    MFT__TAKE(m->a.k, L * N * KVD, fwd);
    MFT__TAKE(m->a.v, L * N * KVD, fwd);
    MFT__TAKE(m->a.att, L * (size_t)B * c->n_heads * T * T, fwd);
    MFT__TAKE(m->a.att_out, L * N * D, fwd);
    MFT__TAKE(m->a.xn_ffn, L * N * D, fwd);
    MFT__TAKE(m->a.rs_ffn, L * N, fwd);
    MFT__TAKE(m->a.h1, L * N * F, fwd);
    MFT__TAKE(m->a.h3, L * N * F, fwd);
    MFT__TAKE(m->a.hg, L * N * F, fwd);
    MFT__TAKE(m->a.xn_final, N * D, fwd);
    MFT__TAKE(m->a.rs_final, N, fwd);
    MFT__TAKE(m->a.logits, N * V, fwd);
    MFT__TAKE(m->a.lse, N, fwd);
    MFT__TAKE(m->a.inputs, N, fwd);
    MFT__TAKE(m->a.targets, N, fwd);
    MFT__TAKE(m->a.weights, N, fwd);
    MFT__TAKE(m->d.dres, N * D, train);
    MFT__TAKE(m->d.dxn, N * D, train);
    MFT__TAKE(m->d.datt_out, N * D, train);
    MFT__TAKE(m->d.dq, N * D, train);
    MFT__TAKE(m->d.dk, N * KVD, train);
    MFT__TAKE(m->d.dv, N * KVD, train);
    MFT__TAKE(m->d.dh1, N * F, train);
    MFT__TAKE(m->d.dh3, N * F, train);
    MFT__TAKE(m->d.dhg, N * F, train);
    MFT__TAKE(m->d.dp, (size_t)B * c->n_kv_heads * T, train);
    int gen = (flags & MFT_GENERATE) != 0;
    MFT__TAKE(m->s.kcache, L * S * KVD, gen);
    MFT__TAKE(m->s.vcache, L * S * KVD, gen);
    MFT__TAKE(m->s.x, D, gen);
    MFT__TAKE(m->s.xn, D, gen);
    MFT__TAKE(m->s.q, D, gen);
    MFT__TAKE(m->s.att_out, D, gen);
    MFT__TAKE(m->s.tmp, D, gen);
    MFT__TAKE(m->s.h1, F, gen);
    MFT__TAKE(m->s.h3, F, gen);
    MFT__TAKE(m->s.att, (size_t)c->n_heads * S, gen);
    MFT__TAKE(m->s.logits, V, gen);
#undef MFT__TAKE
    return off;
}

static mft_status mft__check_shape(const mft_config *c, int B, int T, int flags, mft_error *err)
{
    mft_status s = mft_config_check(c, err);
    if (s) return s;
    if (flags & (MFT_FORWARD | MFT_TRAIN)) {
        if (B <= 0 || T <= 0) return mft__fail(err, MFT_ERR_ARG, "batch B=%d and positions T=%d must be positive", B, T);
        if (T > c->seq_len) return mft__fail(err, MFT_ERR_ARG, "T=%d is longer than the model's context (seq_len %d)", T, c->seq_len);
    }
    /* positions and (row, head) pairs are counted in int by the kernels */
    if ((double)B * T > 2147483647.0 || (double)B * c->n_heads * T > 2147483647.0)
        return mft__fail(err, MFT_ERR_ARG, "B=%d x T=%d is too many positions", B, T);
    /* every buffer's size in double: refuse what size_t arithmetic could not hold */
    double D = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size, NH = c->n_heads, S = c->seq_len;
    double KVD = c->n_kv_heads * (D / NH), N = (double)B * T, P = 2 * V * D + L * (2 * D * D + 2 * D * KVD + 3 * D * F + 2 * D);
    double floats = 4 * P + 2 * S * D / NH + L * B * NH * (double)T * T + L * N * (7 * D + 2 * KVD + 3 * F) + N * (V + 6 * D + 3 * F + 4)
                  + 2 * L * S * KVD + NH * S + V + 5 * D + 2 * F;
    if (floats * 4.0 > 4.0e18)
        return mft__fail(err, MFT_ERR_ARG, "a model of this shape (B=%d, T=%d) would need more memory than can be addressed", B, T);
    return MFT_OK;
}

MFT_API size_t mft_model_bytes(const mft_config *c, int B, int T, int flags)
{
    if (mft__check_shape(c, B, T, flags, NULL)) return 0;
    return mft__layout(NULL, NULL, c, B, T, flags) + 64; /* + 64: room to align the start */
}

MFT_API mft_status mft_model_init(mft_model *m, const mft_config *c, int B, int T, int flags,
                                  void *mem, size_t mem_bytes, mft_error *err)
{
    if (!m || !c) return mft__fail(err, MFT_ERR_ARG, "model or config is NULL");
    mft_config cfg = *c; /* c may point into *m, which is cleared next */
    c = &cfg;
    memset(m, 0, sizeof *m);
    mft_status s = mft__check_shape(c, B, T, flags, err);
    if (s) return s;
    if (flags & MFT_TRAIN) flags |= MFT_FORWARD;
    size_t need = mft_model_bytes(c, B, T, flags);
    if (!mem || mem_bytes < need)
        return mft__fail(err, MFT_ERR_NOMEM, "memory block of %zu bytes is smaller than the %zu needed", mem_bytes, need);
    char *base = (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    memset(base, 0, need - 64);
    m->cfg = *c;
    m->B = (flags & MFT_FORWARD) ? B : 0;
    m->T = (flags & MFT_FORWARD) ? T : 0;
    m->flags = flags;
    m->n_params = mft_param_count(c);
    mft__layout(m, base, c, B, T, flags);
    mft__point_params(&m->w, m->params, c);
    if (m->grads) mft__point_params(&m->g, m->grads, c);
    mft__rope_tables(m->rope_cos, m->rope_sin, c->seq_len, c->dim / c->n_heads, c->rope_theta);
    m->arena = mem;
    m->arena_bytes = mem_bytes;
    return mft__ok(err);
}

MFT_API void mft_model_free(mft_model *m)
{
    if (!m) return;
    if (m->owns_arena) free(m->arena);
    memset(m, 0, sizeof *m);
}

/* xorshift64*: small, fast, good enough for initialisation and sampling */
static uint64_t mft__rand_u64(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* uniform in [0, 1) with 24 random bits */
static float mft__rand_f32(uint64_t *s) { return (float)(mft__rand_u64(s) >> 40) / 16777216.0f; }

static void mft__randn(float *x, size_t n, float std, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        /* Box-Muller; u1 in (0, 1] so the log is finite */
        double u1 = ((mft__rand_u64(s) >> 11) + 1.0) / 9007199254740992.0;
        double u2 = (mft__rand_u64(s) >> 11) / 9007199254740992.0;
        x[i] = (float)(std * sqrt(-2.0 * log(u1)) * cos(2.0 * MFT__PI * u2));
    }
}

MFT_API void mft_model_init_random(mft_model *m, uint64_t seed)
{
    const mft_config *c = &m->cfg;
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    int nt = mft_tensor_count(c);
    for (int i = 0; i < nt; i++) {
        mft_tensor_info ti = mft_tensor_at(c, i);
        float *p = m->params + ti.offset;
        if (!strcmp(ti.name, "rms_att") || !strcmp(ti.name, "rms_ffn") || !strcmp(ti.name, "rms_final")) {
            for (size_t j = 0; j < ti.numel; j++) p[j] = 1.0f;
        } else {
            /* projections that write into the residual stream are scaled down by sqrt(2L), as
               GPT-2 does, so the stream's variance does not grow with depth */
            int resid = !strcmp(ti.name, "wo") || !strcmp(ti.name, "w2");
            mft__randn(p, ti.numel, resid ? 0.02f / sqrtf(2.0f * c->n_layers) : 0.02f, &s);
        }
    }
}

/* ============================================================================================
   >>forward
   For each layer l, with x = res[l] (N, D):
     xn  = rmsnorm(x) * rms_att            q = xn wq^T, k = xn wk^T, v = xn wv^T, RoPE on q, k
     a   = attention(q, k, v)              res_mid = x + a wo^T
     xn2 = rmsnorm(res_mid) * rms_ffn      res[l+1] = res_mid + (silu(xn2 w1^T) * xn2 w3^T) w2^T
   then logits = (rmsnorm(res[L]) * rms_final) wcls^T, and the masked loss.
   ============================================================================================ */

static mft_status mft__check_tokens(const int *ids, size_t n, int V, const char *what, mft_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return mft__fail(err, MFT_ERR_ARG, "%s[%zu] = %d is outside the vocabulary (0..%d)", what, i, ids[i], V - 1);
    return MFT_OK;
}

MFT_API mft_status mft_forward(mft_model *m, const int *inputs, const int *targets,
                               const float *weights, int B, int T, mft_error *err)
{
    if (!m || !inputs) return mft__fail(err, MFT_ERR_ARG, "model or inputs is NULL");
    if (!(m->flags & MFT_FORWARD)) return mft__fail(err, MFT_ERR_STATE, "model was initialised without MFT_FORWARD or MFT_TRAIN");
    if (B <= 0 || T <= 0 || B > m->B || T > m->T) {
        if (T > m->cfg.seq_len)
            return mft__fail(err, MFT_ERR_ARG, "sequence of %d positions is longer than the context (%d)", T, m->cfg.seq_len);
        return mft__fail(err, MFT_ERR_ARG, "batch %d x %d outside the model's capacity %d x %d", B, T, m->B, m->T);
    }
    const mft_config *c = &m->cfg;
    size_t N = (size_t)B * T;
    mft_status st = mft__check_tokens(inputs, N, c->vocab_size, "inputs", err);
    if (!st && targets) st = mft__check_tokens(targets, N, c->vocab_size, "targets", err);
    if (st) return st;
    if (weights)
        for (size_t i = 0; i < N; i++)
            if (!(weights[i] >= 0.0f) || !isfinite(weights[i]))
                return mft__fail(err, MFT_ERR_ARG, "weights[%zu] = %g: loss weights must be finite and >= 0", i, (double)weights[i]);

    int D = c->dim, F = c->hidden_dim, NH = c->n_heads, KV = c->n_kv_heads, hs = D / NH, KVD = KV * hs;
    size_t V = (size_t)c->vocab_size;
    int nt = mft__nthreads(m);
    mft_acts *a = &m->a;
    const mft_params *w = &m->w;

    /* token embedding */
    for (size_t n = 0; n < N; n++) memcpy(a->res + n * D, w->tok_emb + (size_t)inputs[n] * D, (size_t)D * sizeof(float));

    for (int l = 0; l < c->n_layers; l++) {
        float *x = a->res + (size_t)l * N * D, *mid = a->res_mid + (size_t)l * N * D, *xo = a->res + (size_t)(l + 1) * N * D;
        float *xn = a->xn_att + (size_t)l * N * D, *q = a->q + (size_t)l * N * D;
        float *k = a->k + (size_t)l * N * KVD, *v = a->v + (size_t)l * N * KVD, *ao = a->att_out + (size_t)l * N * D;
        float *xn2 = a->xn_ffn + (size_t)l * N * D;
        float *h1 = a->h1 + (size_t)l * N * F, *h3 = a->h3 + (size_t)l * N * F, *hg = a->hg + (size_t)l * N * F;

        mft__rmsnorm_fwd(xn, a->rs_att + (size_t)l * N, x, w->rms_att + (size_t)l * D, (int)N, D, c->norm_eps, nt);
        mft__matmul_fwd(q, xn, w->wq + (size_t)l * D * D, (int)N, D, D, nt);
        mft__matmul_fwd(k, xn, w->wk + (size_t)l * KVD * D, (int)N, D, KVD, nt);
        mft__matmul_fwd(v, xn, w->wv + (size_t)l * KVD * D, (int)N, D, KVD, nt);
        mft__rope(q, m->rope_cos, m->rope_sin, (int)N, T, 0, NH, hs, 1.0f, nt);
        mft__rope(k, m->rope_cos, m->rope_sin, (int)N, T, 0, KV, hs, 1.0f, nt);
        mft__attention_fwd(ao, a->att + (size_t)l * B * NH * T * T, q, k, v, B, T, NH, KV, hs, nt);
        mft__matmul_fwd(mid, ao, w->wo + (size_t)l * D * D, (int)N, D, D, nt);
        mft__vec_add(mid, x, N * D);

        mft__rmsnorm_fwd(xn2, a->rs_ffn + (size_t)l * N, mid, w->rms_ffn + (size_t)l * D, (int)N, D, c->norm_eps, nt);
        mft__matmul_fwd(h1, xn2, w->w1 + (size_t)l * F * D, (int)N, D, F, nt);
        mft__matmul_fwd(h3, xn2, w->w3 + (size_t)l * F * D, (int)N, D, F, nt);
        mft__swiglu_fwd(hg, h1, h3, N * F, nt);
        mft__matmul_fwd(xo, hg, w->w2 + (size_t)l * D * F, (int)N, F, D, nt);
        mft__vec_add(xo, mid, N * D);
    }
    mft__rmsnorm_fwd(a->xn_final, a->rs_final, a->res + (size_t)c->n_layers * N * D, w->rms_final, (int)N, D, c->norm_eps, nt);
    mft__matmul_fwd(a->logits, a->xn_final, w->wcls, (int)N, D, (int)V, nt);

    /* masked cross-entropy: CE_n = logsumexp(logits_n) - logits_n[target_n]. lse is kept for
       the backward pass; the sum is done in double, in order, after the parallel part. */
    m->fwd_B = B; m->fwd_T = T;
    m->fwd_has_targets = targets != NULL;
    m->fwd_loss_sum = m->fwd_weight_sum = 0.0;
    memcpy(a->inputs, inputs, N * sizeof(int));
    if (targets) {
        memcpy(a->targets, targets, N * sizeof(int));
        for (size_t n = 0; n < N; n++) a->weights[n] = weights ? weights[n] : 1.0f;
        MFT__PARFOR(mft__par(nt, (double)N * V))
        for (long long n = 0; n < (long long)N; n++) {
            const float *lr = a->logits + (size_t)n * V;
            float mx = mft__vec_max(lr, (int)V);
            /* exp into the next row's slot would clobber it; sum without storing instead */
            int i = 0;
            float s = 0.0f;
#if MFT__VW > 1
            mft__vf acc = mft__vset1(0.0f), vm = mft__vset1(mx);
            for (; i + MFT__VW <= (int)V; i += MFT__VW) acc = mft__vadd(acc, mft__vexp(mft__vsub(mft__vload(lr + i), vm)));
            s = mft__vhsum(acc);
#endif
            for (; i < (int)V; i++) s += expf(lr[i] - mx);
            a->lse[n] = mx + logf(s);
        }
        for (size_t n = 0; n < N; n++) {
            double wn = a->weights[n];
            if (wn == 0.0) continue;
            m->fwd_loss_sum += wn * ((double)a->lse[n] - a->logits[n * V + (size_t)targets[n]]);
            m->fwd_weight_sum += wn;
        }
        if (!isfinite(m->fwd_loss_sum))
            return mft__fail(err, MFT_ERR_NONFINITE, "the loss is not finite (%g): the weights or inputs hold NaN/Inf", m->fwd_loss_sum);
    }
    return mft__ok(err);
}

/* ============================================================================================
   >>backward
   From the loss down to the embedding, each step the transpose of a forward step:
     dlogits_n = w_n (softmax(logits_n) - onehot(target_n))    (gradient of sum w CE)
     classifier:  dxn_final = dlogits wcls,  dwcls += dlogits^T xn_final
     final norm:  dres = rmsnorm_bwd(dxn_final)
     per layer, top to bottom (dres flows straight through both residual adds):
       FFN:       dhg = dres w2, dw2 += dres^T hg; (dh1, dh3) = swiglu_bwd(dhg)
                  dxn = dh1 w1 + dh3 w3, dw1 += dh1^T xn2, dw3 += dh3^T xn2
                  dres += rmsnorm_bwd(dxn)
       attention: dao = dres wo, dwo += dres^T ao; (dq, dk, dv) = attention_bwd(dao)
                  undo RoPE on dq, dk; dxn = dq wq + dk wk + dv wv, dwq/dwk/dwv += ...
                  dres += rmsnorm_bwd(dxn)
     embedding:   dtok_emb[input_n] += dres_n
   ============================================================================================ */

MFT_API void mft_zero_grad(mft_model *m)
{
    if (m && m->grads) memset(m->grads, 0, m->n_params * sizeof(float));
}

MFT_API mft_status mft_backward(mft_model *m, mft_error *err)
{
    if (!m || !(m->flags & MFT_TRAIN)) return mft__fail(err, MFT_ERR_STATE, "model was initialised without MFT_TRAIN");
    if (!m->fwd_B || !m->fwd_has_targets)
        return mft__fail(err, MFT_ERR_STATE, "backward() needs a forward() with targets first (and once per forward)");
    const mft_config *c = &m->cfg;
    int B = m->fwd_B, T = m->fwd_T;
    size_t N = (size_t)B * T, V = (size_t)c->vocab_size;
    int D = c->dim, F = c->hidden_dim, NH = c->n_heads, KV = c->n_kv_heads, hs = D / NH, KVD = KV * hs;
    int nt = mft__nthreads(m);
    mft_acts *a = &m->a;
    mft_dacts *d = &m->d;
    const mft_params *w = &m->w;
    const mft_params *g = &m->g;
    const int *targets = a->targets;
    const float *weights = a->weights;
    if (m->fwd_weight_sum == 0.0) { /* nothing to learn from: the gradient is exactly zero */
        m->fwd_B = 0;
        return mft__ok(err);
    }

    /* loss -> logits, in place */
    MFT__PARFOR(mft__par(nt, (double)N * V))
    for (long long n = 0; n < (long long)N; n++) {
        float *lr = a->logits + (size_t)n * V;
        float wn = weights[n];
        if (wn == 0.0f) { memset(lr, 0, V * sizeof(float)); continue; }
        mft__vec_exp_sum(lr, lr, a->lse[n], (int)V);     /* softmax, already normalised by lse */
        mft__vec_scale(lr, wn, (int)V);
        lr[targets[n]] -= wn;
    }

    /* classifier and final norm */
    memset(d->dxn, 0, N * D * sizeof(float));
    memset(d->dres, 0, N * D * sizeof(float));
    mft__matmul_bwd_dx(d->dxn, a->logits, w->wcls, (int)N, D, (int)V, nt);
    mft__matmul_bwd_dw(g->wcls, a->logits, a->xn_final, (int)N, D, (int)V, nt);
    mft__rmsnorm_bwd(d->dres, g->rms_final, d->dxn, a->res + (size_t)c->n_layers * N * D, a->rs_final, w->rms_final, (int)N, D, nt);

    for (int l = c->n_layers - 1; l >= 0; l--) {
        float *x = a->res + (size_t)l * N * D, *mid = a->res_mid + (size_t)l * N * D;
        float *xn = a->xn_att + (size_t)l * N * D, *q = a->q + (size_t)l * N * D;
        float *k = a->k + (size_t)l * N * KVD, *v = a->v + (size_t)l * N * KVD, *ao = a->att_out + (size_t)l * N * D;
        float *xn2 = a->xn_ffn + (size_t)l * N * D;
        float *h1 = a->h1 + (size_t)l * N * F, *h3 = a->h3 + (size_t)l * N * F, *hg = a->hg + (size_t)l * N * F;

        /* FFN block: res[l+1] = mid + hg w2^T */
        memset(d->dhg, 0, N * F * sizeof(float));
        mft__matmul_bwd_dx(d->dhg, d->dres, w->w2 + (size_t)l * D * F, (int)N, F, D, nt);
        mft__matmul_bwd_dw(g->w2 + (size_t)l * D * F, d->dres, hg, (int)N, F, D, nt);
        mft__swiglu_bwd(d->dh1, d->dh3, d->dhg, h1, h3, N * F, nt);
        memset(d->dxn, 0, N * D * sizeof(float));
        mft__matmul_bwd_dx(d->dxn, d->dh1, w->w1 + (size_t)l * F * D, (int)N, D, F, nt);
        mft__matmul_bwd_dx(d->dxn, d->dh3, w->w3 + (size_t)l * F * D, (int)N, D, F, nt);
        mft__matmul_bwd_dw(g->w1 + (size_t)l * F * D, d->dh1, xn2, (int)N, D, F, nt);
        mft__matmul_bwd_dw(g->w3 + (size_t)l * F * D, d->dh3, xn2, (int)N, D, F, nt);
        mft__rmsnorm_bwd(d->dres, g->rms_ffn + (size_t)l * D, d->dxn, mid, a->rs_ffn + (size_t)l * N, w->rms_ffn + (size_t)l * D, (int)N, D, nt);

        /* attention block: mid = x + ao wo^T */
        memset(d->datt_out, 0, N * D * sizeof(float));
        mft__matmul_bwd_dx(d->datt_out, d->dres, w->wo + (size_t)l * D * D, (int)N, D, D, nt);
        mft__matmul_bwd_dw(g->wo + (size_t)l * D * D, d->dres, ao, (int)N, D, D, nt);
        memset(d->dq, 0, N * D * sizeof(float));
        memset(d->dk, 0, N * KVD * sizeof(float));
        memset(d->dv, 0, N * KVD * sizeof(float));
        mft__attention_bwd(d->dq, d->dk, d->dv, d->dp, d->datt_out, a->att + (size_t)l * B * NH * T * T, q, k, v, B, T, NH, KV, hs, nt);
        mft__rope(d->dq, m->rope_cos, m->rope_sin, (int)N, T, 0, NH, hs, -1.0f, nt);
        mft__rope(d->dk, m->rope_cos, m->rope_sin, (int)N, T, 0, KV, hs, -1.0f, nt);
        memset(d->dxn, 0, N * D * sizeof(float));
        mft__matmul_bwd_dx(d->dxn, d->dq, w->wq + (size_t)l * D * D, (int)N, D, D, nt);
        mft__matmul_bwd_dx(d->dxn, d->dk, w->wk + (size_t)l * KVD * D, (int)N, D, KVD, nt);
        mft__matmul_bwd_dx(d->dxn, d->dv, w->wv + (size_t)l * KVD * D, (int)N, D, KVD, nt);
        mft__matmul_bwd_dw(g->wq + (size_t)l * D * D, d->dq, xn, (int)N, D, D, nt);
        mft__matmul_bwd_dw(g->wk + (size_t)l * KVD * D, d->dk, xn, (int)N, D, KVD, nt);
        mft__matmul_bwd_dw(g->wv + (size_t)l * KVD * D, d->dv, xn, (int)N, D, KVD, nt);
        mft__rmsnorm_bwd(d->dres, g->rms_att + (size_t)l * D, d->dxn, x, a->rs_att + (size_t)l * N, w->rms_att + (size_t)l * D, (int)N, D, nt);
    }

    /* embedding: rows of repeated tokens add up, so this one stays sequential (it is N x D) */
    for (size_t n = 0; n < N; n++) mft__vec_add(g->tok_emb + (size_t)a->inputs[n] * D, d->dres + n * D, (size_t)D);

    m->step_loss_sum += m->fwd_loss_sum;
    m->step_weight_sum += m->fwd_weight_sum;
    m->fwd_B = 0; /* the activations are spent (logits now hold their gradient) */
    return mft__ok(err);
}

/* ============================================================================================
   >>step
   ============================================================================================ */

MFT_API mft_train_opts mft_train_opts_default(void)
{
    mft_train_opts o;
    memset(&o, 0, sizeof o);
    o.lr = 1e-3f;            /* torch.optim.AdamW defaults */
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.eps = 1e-8f;
    o.weight_decay = 0.01f;
    o.max_grad_norm = 1.0f;  /* HF Trainer's default */
    o.warmup_steps = 0;
    o.total_steps = 0;
    o.min_lr_ratio = 0.0f;
    return o;
}

/* Linear warmup to lr over warmup_steps (step s uses (s+1)/warmup, so the first step is not
   wasted at lr 0), then a half cosine from lr down to lr*min_lr_ratio at total_steps. */
MFT_API float mft_lr_at(const mft_train_opts *o, long step)
{
    if (step < 0) step = 0;
    if (o->warmup_steps > 0 && step < o->warmup_steps) return o->lr * (float)(step + 1) / (float)o->warmup_steps;
    if (o->total_steps <= o->warmup_steps) return o->lr;
    double prog = (double)(step - o->warmup_steps) / (double)(o->total_steps - o->warmup_steps);
    if (prog > 1.0) prog = 1.0;
    double lo = (double)o->lr * o->min_lr_ratio;
    return (float)(lo + 0.5 * ((double)o->lr - lo) * (1.0 + cos(MFT__PI * prog)));
}

/* sum of squares, in float vectors over blocks of 4096 added up in double in a fixed order */
static double mft__sumsq(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i += 4096) {
        int len = (int)(n - i < 4096 ? n - i : 4096);
        s += mft__dot(x + i, x + i, len);
    }
    return s;
}

static mft_status mft__check_opts(const mft_train_opts *o, mft_error *err)
{
    if (!o) return mft__fail(err, MFT_ERR_ARG, "train options are NULL");
    if (!(o->lr >= 0.0f) || !isfinite(o->lr)) return mft__fail(err, MFT_ERR_ARG, "lr %g must be finite and >= 0", (double)o->lr);
    if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f)) return mft__fail(err, MFT_ERR_ARG, "beta1 %g must be in [0, 1)", (double)o->beta1);
    if (!(o->beta2 >= 0.0f && o->beta2 < 1.0f)) return mft__fail(err, MFT_ERR_ARG, "beta2 %g must be in [0, 1)", (double)o->beta2);
    if (!(o->eps > 0.0f)) return mft__fail(err, MFT_ERR_ARG, "eps %g must be > 0", (double)o->eps);
    if (!(o->weight_decay >= 0.0f) || !isfinite(o->weight_decay)) return mft__fail(err, MFT_ERR_ARG, "weight_decay %g must be finite and >= 0", (double)o->weight_decay);
    if (isnan(o->max_grad_norm)) return mft__fail(err, MFT_ERR_ARG, "max_grad_norm is NaN");
    if (o->warmup_steps < 0 || o->total_steps < 0) return mft__fail(err, MFT_ERR_ARG, "warmup_steps and total_steps must be >= 0");
    return MFT_OK;
}

MFT_API mft_status mft_step(mft_model *m, const mft_train_opts *o, mft_step_info *info, mft_error *err)
{
    mft_step_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    if (!m || !(m->flags & MFT_TRAIN)) return mft__fail(err, MFT_ERR_STATE, "model was initialised without MFT_TRAIN");
    mft_status st = mft__check_opts(o, err);
    if (st) return st;
    double W = m->step_weight_sum, Lsum = m->step_loss_sum;
    m->step_weight_sum = m->step_loss_sum = 0.0;
    info->lr = mft_lr_at(o, m->step);
    info->weight_sum = W;
    if (W == 0.0) {
        mft_zero_grad(m);
        return mft__fail(err, MFT_EMPTY_MASK, "step %ld: every loss weight was 0; weights left unchanged", m->step);
    }
    /* The gradients hold d(sum w CE); dividing by W = sum w turns them into d(loss). */
    float gscale = (float)(1.0 / W);
    info->loss = (float)(Lsum / W);

    double ss = 0.0;
    int ntens = mft_tensor_count(&m->cfg);
    for (int i = 0; i < ntens; i++) {
        mft_tensor_info ti = mft_tensor_at(&m->cfg, i);
        double t = mft__sumsq(m->grads + ti.offset, ti.numel);
        if (!isfinite(t)) {
            size_t j = 0;
            while (j < ti.numel && isfinite(m->grads[ti.offset + j])) j++;
            mft_zero_grad(m);
            return mft__fail(err, MFT_ERR_NONFINITE, "step %ld: gradient of %s is not finite (first at element %zu); weights left unchanged",
                             m->step, ti.name, j < ti.numel ? j : 0);
        }
        ss += t;
    }
    double norm = sqrt(ss) * gscale;
    info->grad_norm = (float)norm;
    /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1 */
    if (o->max_grad_norm > 0.0f) {
        double coef = o->max_grad_norm / (norm + 1e-6);
        if (coef < 1.0) gscale = (float)(gscale * coef);
    }

    mft__adam_k k;
    long t = m->step + 1;
    k.lr = info->lr;
    k.b1 = o->beta1;
    k.b2 = o->beta2;
    k.eps = o->eps;
    k.wd = o->weight_decay;
    k.gscale = gscale;
    k.step_size = (float)(k.lr / (1.0 - pow(o->beta1, (double)t)));
    k.bc2_sqrt = (float)sqrt(1.0 - pow(o->beta2, (double)t));
    int nt = mft__nthreads(m);
    mft__adamw(m->params, m->adam_m, m->adam_v, m->grads, m->n_params, &k, nt);
    mft_zero_grad(m);
    m->step = t;
    return mft__ok(err);
}

MFT_API mft_status mft_train_step(mft_model *m, const mft_train_opts *o, const int *inputs,
                                  const int *targets, const float *weights, int B, int T,
                                  mft_step_info *info, mft_error *err)
{
    if (!targets) return mft__fail(err, MFT_ERR_ARG, "training needs targets");
    mft_status st = mft__check_opts(o, err);
    if (st) return st;
    st = mft_forward(m, inputs, targets, weights, B, T, err);
    if (!st) st = mft_backward(m, err);
    if (st) {
        if (m && m->grads) { mft_zero_grad(m); m->step_loss_sum = m->step_weight_sum = 0.0; }
        return st;
    }
    return mft_step(m, o, info, err);
}

/* ============================================================================================
   >>decode
   The same layers as >>forward for a single position, with keys and values of earlier
   positions read from the cache instead of recomputed: what generation needs.
   ============================================================================================ */

MFT_API float *mft_decode(mft_model *m, int token, int pos, mft_error *err)
{
    if (!m || !(m->flags & MFT_GENERATE)) { mft__fail(err, MFT_ERR_STATE, "model was initialised without MFT_GENERATE"); return NULL; }
    const mft_config *c = &m->cfg;
    if (token < 0 || token >= c->vocab_size) { mft__fail(err, MFT_ERR_ARG, "token %d is outside the vocabulary (0..%d)", token, c->vocab_size - 1); return NULL; }
    if (pos < 0 || pos >= c->seq_len) { mft__fail(err, MFT_ERR_ARG, "position %d is outside the context (0..%d)", pos, c->seq_len - 1); return NULL; }
    int D = c->dim, F = c->hidden_dim, NH = c->n_heads, KV = c->n_kv_heads, hs = D / NH, KVD = KV * hs, grp = NH / KV;
    size_t S = (size_t)c->seq_len;
    float scale = 1.0f / sqrtf((float)hs);
    int nt = mft__nthreads(m);
    mft_decode_state *s = &m->s;
    const mft_params *w = &m->w;
    float rs;

    memcpy(s->x, w->tok_emb + (size_t)token * D, (size_t)D * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        float *kc = s->kcache + (size_t)l * S * KVD, *vc = s->vcache + (size_t)l * S * KVD;
        mft__rmsnorm_fwd(s->xn, &rs, s->x, w->rms_att + (size_t)l * D, 1, D, c->norm_eps, 1);
        mft__matmul_fwd(s->q, s->xn, w->wq + (size_t)l * D * D, 1, D, D, nt);
        mft__matmul_fwd(kc + (size_t)pos * KVD, s->xn, w->wk + (size_t)l * KVD * D, 1, D, KVD, nt);
        mft__matmul_fwd(vc + (size_t)pos * KVD, s->xn, w->wv + (size_t)l * KVD * D, 1, D, KVD, nt);
        mft__rope(s->q, m->rope_cos, m->rope_sin, 1, 1, pos, NH, hs, 1.0f, 1);
        mft__rope(kc + (size_t)pos * KVD, m->rope_cos, m->rope_sin, 1, 1, pos, KV, hs, 1.0f, 1);
        MFT__PARFOR(mft__par(nt, (double)NH * (pos + 1) * hs))
        for (int h = 0; h < NH; h++)
            mft__attn_row(s->att_out + h * hs, s->att + (size_t)h * S, s->q + h * hs, kc + (h / grp) * hs,
                          vc + (h / grp) * hs, KVD, pos + 1, hs, scale);
        mft__matmul_fwd(s->tmp, s->att_out, w->wo + (size_t)l * D * D, 1, D, D, nt);
        mft__vec_add(s->x, s->tmp, D);
        mft__rmsnorm_fwd(s->xn, &rs, s->x, w->rms_ffn + (size_t)l * D, 1, D, c->norm_eps, 1);
        mft__matmul_fwd(s->h1, s->xn, w->w1 + (size_t)l * F * D, 1, D, F, nt);
        mft__matmul_fwd(s->h3, s->xn, w->w3 + (size_t)l * F * D, 1, D, F, nt);
        mft__swiglu_fwd(s->h1, s->h1, s->h3, (size_t)F, 1);
        mft__matmul_fwd(s->tmp, s->h1, w->w2 + (size_t)l * D * F, 1, F, D, nt);
        mft__vec_add(s->x, s->tmp, D);
    }
    mft__rmsnorm_fwd(s->xn, &rs, s->x, w->rms_final, 1, D, c->norm_eps, 1);
    mft__matmul_fwd(s->logits, s->xn, w->wcls, 1, D, c->vocab_size, nt);
    mft__ok(err);
    return s->logits;
}

MFT_API int mft_sample(float *logits, int V, float temperature, float top_p, uint64_t *rng)
{
    int best = 0;
    if (!logits || V <= 0) return -1;
    if (!(temperature > 0.0f)) {
        for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
    /* softmax(logits / T) computed as exp((x - max) / T): a tiny T cannot overflow to Inf */
    float mx = mft__vec_max(logits, V);
    double sum = 0.0;
    for (int i = 0; i < V; i++) { logits[i] = expf((logits[i] - mx) / temperature); sum += logits[i]; }
    for (int i = 0; i < V; i++) logits[i] = (float)(logits[i] / sum);
    float *p = logits;
    /* Nucleus: the smallest set of most likely tokens whose mass reaches top_p is
       {p_i >= tau} for the largest such threshold tau. Bisection on tau finds it without
       sorting or scratch memory (40 halvings of [0, max p] are below float resolution). */
    float tau = 0.0f;
    if (top_p > 0.0f && top_p < 1.0f) {
        float lo = 0.0f, hi = mft__vec_max(p, V);
        for (int it = 0; it < 40; it++) {
            float mid = 0.5f * (lo + hi);
            double mass = 0.0;
            for (int i = 0; i < V; i++) if (p[i] >= mid) mass += p[i];
            if (mass >= top_p) lo = mid; else hi = mid;
        }
        tau = lo;
    }
    double mass = 0.0;
    for (int i = 0; i < V; i++) if (p[i] >= tau) mass += p[i];
    double r = mft__rand_f32(rng ? rng : &(uint64_t){ 1 }) * mass, acc = 0.0;
    for (int i = 0; i < V; i++) {
        if (p[i] < tau) continue;
        best = i;
        acc += p[i];
        if (r < acc) break;
    }
    return best;
}

/* ============================================================================================
   >>tokenizer
   llama2.c's tokenizer.bin: uint32 max_token_length, then per token: float32 score, int32
   length, the piece's bytes (SentencePiece pieces with U+2581 '▁' already turned into ' ').
   The vocabulary size is not in the file; it comes from the model.
   ============================================================================================ */

static uint32_t mft__hash(const char *s, int n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

/* id of the piece with exactly these bytes, or -1 */
static int mft__tok_lookup(const mft_tokenizer *t, const char *s, int n)
{
    uint32_t mask = t->hash_cap - 1, i = mft__hash(s, n) & mask;
    for (;;) {
        int id = t->hash[i];
        if (id < 0) return -1;
        uint32_t len = t->piece_off[id + 1] - t->piece_off[id];
        if ((int)len == n && !memcmp(t->pieces + t->piece_off[id], s, (size_t)n)) return id;
        i = (i + 1) & mask;
    }
}

static int mft__hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

MFT_API mft_status mft_tokenizer_load(mft_tokenizer *t, const char *path, int vocab_size, mft_error *err)
{
    if (!t) return mft__fail(err, MFT_ERR_ARG, "tokenizer is NULL");
    memset(t, 0, sizeof *t);
    if (!path) return mft__fail(err, MFT_ERR_ARG, "tokenizer path is NULL");
    if (vocab_size <= 0 || vocab_size > (1 << 22)) return mft__fail(err, MFT_ERR_ARG, "vocab_size %d out of range", vocab_size);
    FILE *f = fopen(path, "rb");
    if (!f) return mft__fail(err, MFT_ERR_IO, "cannot open tokenizer '%s'", path);
    long fsize = -1;
    if (fseek(f, 0, SEEK_END) == 0) fsize = ftell(f);
    if (fsize < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return mft__fail(err, MFT_ERR_IO, "cannot read '%s'", path); }
    /* every token needs at least 8 bytes; the pieces total at most the file size, which is
       capped so that every offset fits in 32 bits and no size computation can wrap */
    if (fsize > (1L << 30)) {
        fclose(f);
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is over 1 GiB: not a tokenizer.bin", path);
    }
    if ((size_t)fsize < 4 + 8 * (size_t)vocab_size) {
        fclose(f);
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' (%ld bytes) is too small for a tokenizer.bin of %d tokens", path, fsize, vocab_size);
    }
    size_t V = (size_t)vocab_size, cap = 1;
    while (cap < 2 * V) cap <<= 1;
    size_t text = (size_t)fsize; /* upper bound on the pieces' bytes (and on their decodings) */
    size_t bytes = V * sizeof(float) + 2 * (V + 1) * sizeof(uint32_t) + cap * sizeof(int32_t) + 2 * text + 16;
    char *mem = (char *)malloc(bytes);
    if (!mem) { fclose(f); return mft__fail(err, MFT_ERR_NOMEM, "out of memory for the tokenizer (%zu bytes)", bytes); }
    t->mem = mem;
    t->scores = (float *)mem; mem += V * sizeof(float);
    t->piece_off = (uint32_t *)mem; mem += (V + 1) * sizeof(uint32_t);
    t->dec_off = (uint32_t *)mem; mem += (V + 1) * sizeof(uint32_t);
    t->hash = (int32_t *)mem; mem += cap * sizeof(int32_t);
    t->pieces = mem; mem += text + 8;
    t->dec = mem;
    t->hash_cap = (uint32_t)cap;
    t->vocab_size = vocab_size;

    uint32_t maxlen;
    size_t used = 0;
    if (fread(&maxlen, 4, 1, f) != 1) goto truncated;
    for (size_t i = 0; i < V; i++) {
        int32_t len;
        if (fread(&t->scores[i], 4, 1, f) != 1 || fread(&len, 4, 1, f) != 1) goto truncated;
        if (len < 0 || (size_t)len > text - used) {
            fclose(f);
            mft_status s = mft__fail(err, MFT_ERR_FORMAT, "'%s': token %zu has length %d, beyond the end of the file", path, i, (int)len);
            mft_tokenizer_free(t);
            return s;
        }
        if (!isfinite(t->scores[i])) {
            fclose(f);
            mft_status s = mft__fail(err, MFT_ERR_FORMAT, "'%s': token %zu has a non-finite score", path, i);
            mft_tokenizer_free(t);
            return s;
        }
        t->piece_off[i] = (uint32_t)used;
        if (len && fread(t->pieces + used, 1, (size_t)len, f) != (size_t)len) goto truncated;
        used += (size_t)len;
    }
    t->piece_off[V] = (uint32_t)used;
    {
        /* the file must end exactly here: anything else means the vocabulary size is wrong */
        long here = ftell(f);
        fclose(f);
        if (here != fsize) {
            mft_status s = mft__fail(err, MFT_ERR_FORMAT, "'%s' has %ld bytes after %d tokens: not a tokenizer.bin for vocab_size %d",
                                     path, fsize - here, vocab_size, vocab_size);
            mft_tokenizer_free(t);
            return s;
        }
    }
    t->bos_id = V > 1 ? 1 : -1;
    t->eos_id = V > 2 ? 2 : -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (uint32_t i = 0; i < cap; i++) t->hash[i] = -1;
    size_t dused = 0;
    for (size_t i = 0; i < V; i++) {
        const char *p = t->pieces + t->piece_off[i];
        int n = (int)(t->piece_off[i + 1] - t->piece_off[i]);
        /* first id wins if a piece appears twice */
        if (mft__tok_lookup(t, p, n) < 0) {
            uint32_t j = mft__hash(p, n) & (t->hash_cap - 1);
            while (t->hash[j] >= 0) j = (j + 1) & (t->hash_cap - 1);
            t->hash[j] = (int32_t)i;
        }
        /* decoded form: <0xNN> -> that byte; BOS/EOS -> nothing; else the piece itself */
        t->dec_off[i] = (uint32_t)dused;
        if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>' && mft__hexval(p[3]) >= 0 && mft__hexval(p[4]) >= 0) {
            int b = mft__hexval(p[3]) * 16 + mft__hexval(p[4]);
            if (t->byte_id[b] < 0) t->byte_id[b] = (int)i;
            t->dec[dused++] = (char)b;
        } else if ((int)i != t->bos_id && (int)i != t->eos_id) {
            memcpy(t->dec + dused, p, (size_t)n);
            dused += (size_t)n;
        }
    }
    t->dec_off[V] = (uint32_t)dused;
    (void)maxlen;
    return mft__ok(err);
truncated:
    fclose(f);
    mft_tokenizer_free(t);
    return mft__fail(err, MFT_ERR_FORMAT, "'%s' is truncated: it ends before token %d's data", path, vocab_size);
}

MFT_API void mft_tokenizer_free(mft_tokenizer *t)
{
    if (!t) return;
    free(t->mem);
    memset(t, 0, sizeof *t);
}

MFT_API const char *mft_token_bytes(const mft_tokenizer *t, int prev, int id, int *len)
{
    if (!t || id < 0 || id >= t->vocab_size) { if (len) *len = 0; return NULL; }
    const char *p = t->dec + t->dec_off[id];
    int n = (int)(t->dec_off[id + 1] - t->dec_off[id]);
    /* the dummy-prefix space of the first word is not part of the text */
    if (prev == t->bos_id && n > 0 && p[0] == ' ') { p++; n--; }
    if (len) *len = n;
    return p;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one
   (overlong forms, surrogates and values above U+10FFFF are invalid, as in RFC 3629). */
static int mft__utf8_len(const unsigned char *s, int n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (!len || c > 0xF4 || len > n) return 0;
    for (int i = 1; i < len; i++) if ((s[i] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;       /* overlong */
    if (c == 0xED && s[1] >= 0xA0) return 0;      /* surrogates */
    if (c == 0xF0 && s[1] < 0x90) return 0;       /* overlong */
    if (c == 0xF4 && s[1] >= 0x90) return 0;      /* > U+10FFFF */
    return len;
}

/* BPE merging state: symbols form a linked list over the text; candidate merges of adjacent
   symbols sit in a max-heap ordered by (score, leftmost). A candidate is stale once either
   side has changed, which is detected by comparing the lengths recorded when it was pushed. */
typedef struct { int start, len, prev, next, id; } mft__sym;
typedef struct { float score; int left, right, llen, rlen, id; } mft__cand;

static int mft__cand_before(const mft__cand *a, const mft__cand *b, const mft__sym *sym)
{
    if (a->score != b->score) return a->score > b->score;
    return sym[a->left].start < sym[b->left].start;
}

static void mft__heap_push(mft__cand *h, int *n, mft__cand c, const mft__sym *sym)
{
    int i = (*n)++;
    h[i] = c;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!mft__cand_before(&h[i], &h[p], sym)) break;
        mft__cand t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

static mft__cand mft__heap_pop(mft__cand *h, int *n, const mft__sym *sym)
{
    mft__cand top = h[0];
    h[0] = h[--(*n)];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, b = i;
        if (l < *n && mft__cand_before(&h[l], &h[b], sym)) b = l;
        if (r < *n && mft__cand_before(&h[r], &h[b], sym)) b = r;
        if (b == i) break;
        mft__cand t = h[i]; h[i] = h[b]; h[b] = t;
        i = b;
    }
    return top;
}

static void mft__try_pair(const mft_tokenizer *t, const char *txt, mft__sym *sym, int a, int b, mft__cand *heap, int *nh)
{
    if (a < 0 || b < 0) return;
    int id = mft__tok_lookup(t, txt + sym[a].start, sym[a].len + sym[b].len);
    if (id < 0) return;
    mft__cand c = { t->scores[id], a, b, sym[a].len, sym[b].len, id };
    mft__heap_push(heap, nh, c, sym);
}

MFT_API mft_status mft_encode(const mft_tokenizer *t, const char *text, int len, int flags,
                              int *ids, int cap, int *n_out, int *offsets, mft_error *err)
{
    if (n_out) *n_out = 0;
    if (!t || !t->mem || !text || !ids || !n_out) return mft__fail(err, MFT_ERR_ARG, "mft_encode: NULL argument");
    /* 256 MiB per call keeps every index below 2^31 (the merge heap holds up to 2 per byte) */
    if (len < 0) { size_t sl = strlen(text); if (sl > (size_t)1 << 28) return mft__fail(err, MFT_ERR_ARG, "text too long (over 256 MiB): encode it in pieces"); len = (int)sl; }
    if (len > (1 << 28)) return mft__fail(err, MFT_ERR_ARG, "text too long (%d bytes, over 256 MiB): encode it in pieces", len);
    int n = 0;
    /* SentencePiece's dummy prefix: a space before the text, so the first word is tokenised as
       it would be in the middle of a sentence */
    int pre = len > 0 ? 1 : 0;
    int tl = len + pre;
    char *txt = NULL;
    mft__sym *sym = NULL;
    mft__cand *heap = NULL;
    if (tl > 0) {
        txt = (char *)malloc((size_t)tl);
        sym = (mft__sym *)malloc((size_t)tl * sizeof *sym);
        heap = (mft__cand *)malloc((2 * (size_t)tl + 1) * sizeof *heap);
        if (!txt || !sym || !heap) { free(txt); free(sym); free(heap); return mft__fail(err, MFT_ERR_NOMEM, "out of memory encoding %d bytes", len); }
        if (pre) txt[0] = ' ';
        memcpy(txt + pre, text, (size_t)len);
    }
    /* one symbol per UTF-8 character (an invalid byte is a symbol of its own) */
    int ns = 0;
    for (int i = 0; i < tl;) {
        int cl = mft__utf8_len((const unsigned char *)txt + i, tl - i);
        if (!cl) cl = 1;
        sym[ns].start = i;
        sym[ns].len = cl;
        sym[ns].prev = ns - 1;
        sym[ns].next = i + cl < tl ? ns + 1 : -1;
        sym[ns].id = mft__tok_lookup(t, txt + i, cl);
        ns++;
        i += cl;
    }
    int nh = 0;
    for (int i = 0; i + 1 < ns; i++) mft__try_pair(t, txt, sym, i, i + 1, heap, &nh);
    while (nh > 0) {
        mft__cand c = mft__heap_pop(heap, &nh, sym);
        mft__sym *a = &sym[c.left], *b = &sym[c.right];
        if (a->len != c.llen || b->len != c.rlen || a->next != c.right || a->len == 0 || b->len == 0) continue;
        a->len += b->len;
        a->id = c.id;
        a->next = b->next;
        if (b->next >= 0) sym[b->next].prev = c.left;
        b->len = 0;
        /* each merge removes one symbol and adds at most two candidates: the heap stays
           within the 2*tl+1 slots allocated */
        mft__try_pair(t, txt, sym, a->prev, c.left, heap, &nh);
        mft__try_pair(t, txt, sym, c.left, a->next, heap, &nh);
    }

#define MFT__EMIT(tok, b, e)                                                                   \
    do {                                                                                       \
        if (n >= cap) goto too_small;                                                          \
        if (offsets) { offsets[2 * n] = (b); offsets[2 * n + 1] = (e); }                        \
        ids[n++] = (tok);                                                                      \
    } while (0)

    if ((flags & MFT_BOS) && t->bos_id >= 0) MFT__EMIT(t->bos_id, 0, 0);
    for (int i = ns > 0 ? 0 : -1; i >= 0; i = sym[i].next) {
        int b = sym[i].start - pre < 0 ? 0 : sym[i].start - pre, e = sym[i].start + sym[i].len - pre;
        if (sym[i].id >= 0) {
            MFT__EMIT(sym[i].id, b, e);
        } else {
            /* not in the vocabulary: byte fallback, one <0xNN> token per byte (unk id 0 if
               the vocabulary has no byte tokens) */
            for (int j = 0; j < sym[i].len; j++) {
                unsigned char ch = (unsigned char)txt[sym[i].start + j];
                int p = sym[i].start + j - pre; /* -1: the dummy prefix, which is no input byte */
                MFT__EMIT(t->byte_id[ch] >= 0 ? t->byte_id[ch] : 0, p < 0 ? 0 : p, p + 1);
            }
        }
    }
    if ((flags & MFT_EOS) && t->eos_id >= 0) MFT__EMIT(t->eos_id, len, len);
#undef MFT__EMIT
    free(txt); free(sym); free(heap);
    *n_out = n;
    return mft__ok(err);
too_small:
    free(txt); free(sym); free(heap);
    *n_out = n;
    return mft__fail(err, MFT_ERR_ARG, "the text needs more than the %d token slots given", cap);
}

/* ============================================================================================
   >>io
   llama2.c checkpoints. Version 0: int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads,
   vocab_size (negative: separate classifier), seq_len; the tensors in mft_params order up to
   rms_final; freq_cis_real and freq_cis_imag (seq_len x hs/2 each, unused: RoPE is computed);
   then wcls if separate. Version 1: uint32 magic "ak42", int32 version 1, the same 7 int32,
   uint8 shared_classifier, zero padding to 256 bytes; then all norms first (rms_att, rms_ffn,
   rms_final), tok_emb, wq, wk, wv, wo, w1, w2, w3, and wcls if separate.
   ============================================================================================ */

#define MFT__AK42 0x616b3432u

typedef struct mft__ckpt {
    mft_config cfg;
    int version;
    long header_bytes;
} mft__ckpt;

static mft_status mft__read_header(FILE *f, const char *path, long fsize, mft__ckpt *h, mft_error *err)
{
    int32_t hd[7];
    uint32_t magic;
    memset(h, 0, sizeof *h);
    if (fsize < 28) return mft__fail(err, MFT_ERR_FORMAT, "'%s' (%ld bytes) is too small to be a llama2.c checkpoint", path, fsize);
    if (fread(&magic, 4, 1, f) != 1) return mft__fail(err, MFT_ERR_IO, "cannot read '%s'", path);
    if (magic == MFT__AK42) {
        int32_t ver;
        uint8_t shared;
        if (fsize < 256) return mft__fail(err, MFT_ERR_FORMAT, "'%s' has the ak42 magic but is shorter than its 256-byte header", path);
        if (fread(&ver, 4, 1, f) != 1 || fread(hd, 4, 7, f) != 7 || fread(&shared, 1, 1, f) != 1)
            return mft__fail(err, MFT_ERR_IO, "cannot read '%s'", path);
        if (ver == 2) return mft__fail(err, MFT_ERR_FORMAT, "'%s' is a llama2.c version 2 (int8 quantized) checkpoint; maskft trains fp32 weights: export version 0 or 1", path);
        if (ver != 1) return mft__fail(err, MFT_ERR_FORMAT, "'%s': unknown llama2.c checkpoint version %d", path, (int)ver);
        if (shared > 1) return mft__fail(err, MFT_ERR_FORMAT, "'%s': shared_classifier flag is %d, not 0 or 1", path, shared);
        h->version = 1;
        h->header_bytes = 256;
        h->cfg.shared_classifier = shared;
        h->cfg.vocab_size = hd[5];
    } else {
        hd[0] = (int32_t)magic;
        if (fread(hd + 1, 4, 6, f) != 6) return mft__fail(err, MFT_ERR_IO, "cannot read '%s'", path);
        h->version = 0;
        h->header_bytes = 28;
        /* "negative vocab size is hacky way of signaling unshared weights" (llama2.c) */
        h->cfg.shared_classifier = hd[5] > 0;
        h->cfg.vocab_size = hd[5] == INT32_MIN ? 0 : (hd[5] < 0 ? -hd[5] : hd[5]);
    }
    h->cfg.dim = hd[0];
    h->cfg.hidden_dim = hd[1];
    h->cfg.n_layers = hd[2];
    h->cfg.n_heads = hd[3];
    h->cfg.n_kv_heads = hd[4];
    h->cfg.seq_len = hd[6];
    h->cfg.norm_eps = 1e-5f;
    h->cfg.rope_theta = 10000.0f;
    mft_error e2;
    if (mft_config_check(&h->cfg, &e2))
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is not a llama2.c checkpoint (v%d header: %s)", path, h->version, e2.msg);
    /* the size the header implies must be the file size, to the byte */
    double expect = (double)h->header_bytes + 4.0 * (double)mft_param_count(&h->cfg);
    if (h->version == 0) expect += 4.0 * (double)h->cfg.seq_len * (h->cfg.dim / h->cfg.n_heads);
    if (expect != (double)fsize)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' has %ld bytes but its v%d header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, seq %d) implies %.0f: %s",
                         path, fsize, h->version, h->cfg.dim, h->cfg.hidden_dim, h->cfg.n_layers, h->cfg.n_heads, h->cfg.n_kv_heads,
                         h->cfg.vocab_size, h->cfg.seq_len, expect, (double)fsize < expect ? "truncated" : "trailing bytes or not a llama2.c checkpoint");
    return MFT_OK;
}

static FILE *mft__open_sized(const char *path, long *size, mft_error *err)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) { mft__fail(err, MFT_ERR_IO, "cannot open '%s'", path ? path : "(null)"); return NULL; }
    *size = -1;
    if (fseek(f, 0, SEEK_END) == 0) *size = ftell(f);
    if (*size < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); mft__fail(err, MFT_ERR_IO, "cannot seek in '%s'", path); return NULL; }
    return f;
}

MFT_API mft_status mft_checkpoint_config(const char *path, mft_config *c, mft_error *err)
{
    long fsize;
    mft__ckpt h;
    if (!c) return mft__fail(err, MFT_ERR_ARG, "config is NULL");
    FILE *f = mft__open_sized(path, &fsize, err);
    if (!f) return MFT_ERR_IO;
    mft_status s = mft__read_header(f, path, fsize, &h, err);
    fclose(f);
    if (s) return s;
    *c = h.cfg;
    return mft__ok(err);
}

static int mft__read_floats(FILE *f, float *dst, size_t n) { return fread(dst, sizeof(float), n, f) == n; }

MFT_API mft_status mft_model_load_weights(mft_model *m, const char *path, mft_error *err)
{
    long fsize;
    mft__ckpt h;
    if (!m || !m->params) return mft__fail(err, MFT_ERR_STATE, "model is not initialised");
    FILE *f = mft__open_sized(path, &fsize, err);
    if (!f) return MFT_ERR_IO;
    mft_status s = mft__read_header(f, path, fsize, &h, err);
    if (s) { fclose(f); return s; }
    const mft_config *c = &m->cfg;
    if (h.cfg.dim != c->dim || h.cfg.hidden_dim != c->hidden_dim || h.cfg.n_layers != c->n_layers || h.cfg.n_heads != c->n_heads ||
        h.cfg.n_kv_heads != c->n_kv_heads || h.cfg.vocab_size != c->vocab_size || h.cfg.seq_len != c->seq_len ||
        h.cfg.shared_classifier != c->shared_classifier) {
        fclose(f);
        return mft__fail(err, MFT_ERR_ARG, "'%s' has a different shape than the model it is loaded into", path);
    }
    size_t sz[12];
    mft__tensor_sizes(c, sz);
    const mft_params *w = &m->w;
    int ok = fseek(f, h.header_bytes, SEEK_SET) == 0;
    if (h.version == 0) {
        size_t core = 0;
        for (int i = 0; i < 11; i++) core += sz[i];
        ok = ok && mft__read_floats(f, m->params, core);
        ok = ok && fseek(f, (long)(4 * (size_t)c->seq_len * (c->dim / c->n_heads)), SEEK_CUR) == 0;
        if (!c->shared_classifier) ok = ok && mft__read_floats(f, w->wcls, sz[11]);
    } else {
        float *order[12] = { w->rms_att, w->rms_ffn, w->rms_final, w->tok_emb, w->wq, w->wk, w->wv, w->wo, w->w1, w->w2, w->w3, w->wcls };
        size_t n[12] = { sz[1], sz[6], sz[10], sz[0], sz[2], sz[3], sz[4], sz[5], sz[7], sz[8], sz[9], sz[11] };
        for (int i = 0; i < 12 && ok; i++) if (n[i]) ok = mft__read_floats(f, order[i], n[i]);
    }
    fclose(f);
    if (!ok) return mft__fail(err, MFT_ERR_IO, "read error in '%s'", path);
    /* a NaN in the weights would make every later result silently meaningless */
    for (int i = 0; i < mft_tensor_count(c); i++) {
        mft_tensor_info ti = mft_tensor_at(c, i);
        for (size_t j = 0; j < ti.numel; j++)
            if (!isfinite(m->params[ti.offset + j]))
                return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s holds a non-finite value at element %zu", path, ti.name, j);
    }
    return mft__ok(err);
}

MFT_API mft_status mft_model_open(mft_model *m, const char *path, int B, int T, int flags, mft_error *err)
{
    mft_config c;
    if (!m) return mft__fail(err, MFT_ERR_ARG, "model is NULL");
    memset(m, 0, sizeof *m);
    mft_status s = mft_checkpoint_config(path, &c, err);
    if (s) return s;
    if (T > c.seq_len) return mft__fail(err, MFT_ERR_ARG, "T=%d is longer than the model's context (seq_len %d)", T, c.seq_len);
    s = mft__check_shape(&c, B, T, flags, err);
    if (s) return s;
    size_t bytes = mft_model_bytes(&c, B, T, flags);
    void *mem = malloc(bytes);
    if (!mem) return mft__fail(err, MFT_ERR_NOMEM, "cannot allocate %zu bytes for the model", bytes);
    s = mft_model_init(m, &c, B, T, flags, mem, bytes, err);
    if (!s) {
        m->owns_arena = 1;
        s = mft_model_load_weights(m, path, err);
    }
    if (s) {
        if (m->arena) mft_model_free(m); else free(mem);
        return s;
    }
    return MFT_OK;
}

MFT_API mft_status mft_model_save(const mft_model *m, const char *path, mft_error *err)
{
    if (!m || !m->params || !path) return mft__fail(err, MFT_ERR_ARG, "mft_model_save: NULL argument");
    const mft_config *c = &m->cfg;
    size_t plen = strlen(path);
    char *tmp = (char *)malloc(plen + 5);
    if (!tmp) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) { mft_status s = mft__fail(err, MFT_ERR_IO, "cannot create '%s'", tmp); free(tmp); return s; }
    int32_t hd[7] = { c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                      c->shared_classifier ? c->vocab_size : -c->vocab_size, c->seq_len };
    size_t sz[12], core = 0;
    mft__tensor_sizes(c, sz);
    for (int i = 0; i < 11; i++) core += sz[i];
    int ok = fwrite(hd, 4, 7, f) == 7 && fwrite(m->params, sizeof(float), core, f) == core;
    /* freq_cis tables: llama2.c's run.c skips over them, so they must be there */
    int hs = c->dim / c->n_heads;
    for (int part = 0; part < 2 && ok; part++)
        for (int p = 0; p < c->seq_len && ok; p++)
            for (int i = 0; i < hs / 2 && ok; i++) {
                double a = p * pow((double)c->rope_theta, -2.0 * i / hs);
                float v = (float)(part ? sin(a) : cos(a));
                ok = fwrite(&v, 4, 1, f) == 1;
            }
    if (ok && !c->shared_classifier) ok = fwrite(m->w.wcls, sizeof(float), sz[11], f) == sz[11];
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        mft_status s = mft__fail(err, MFT_ERR_IO, "cannot write '%s'", path);
        free(tmp);
        return s;
    }
    free(tmp);
    return mft__ok(err);
}
