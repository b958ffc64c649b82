/* maskft.c - implementation of maskft.h. MIT license.

   HOW THIS FILE IS LAID OUT
   Part I is the engine and reads top to bottom like llm.c's train_gpt2.c: the kernels, the
   masked loss as a layer of its own, attention, the model and its files, then forward,
   backward (which starts from the loss), the optimizer step and generation. It needs nothing
   from the rest but the file helpers of the files section (declared in config). Part II is
   text and data: JSON, GGUF, Unicode, tokenizers, chat templates, the JSONL front end that
   builds the masks, packing and the metrics; MFT_NO_TEXT leaves it out. Part III, the appendix, holds
   generated tables only (tools/gen_unicode.py writes it).

   TABLE OF CONTENTS (grep for the anchor to jump; each occurs once below, in this order)
   PART I, THE ENGINE
     >>config     feature macros, includes, allocator hooks, threading, file-reader interface
     >>simd       which vector path is compiled, and the few wrappers every kernel uses
     >>errors     status strings and the error channel
     >>kernels    the hot loops, each as a plain scalar reference (_ref) and a fast version
                  written against the simd wrappers; tests compare the two
       >>matmul     y = x W^T forward, and its two backward products (dx, dW)
       >>rmsnorm    forward and backward
       >>rope       rotary position embedding, forward and backward (one kernel, sign flip)
       >>softmax    exp, softmax rows
       >>swiglu     silu(a) * b forward and backward
       >>adamw      the optimizer update
     >>xent       the masked cross-entropy and the anchor's KL: log-sum-exp, forward, backward
     >>attention  causal grouped-query attention, forward and backward (packed rows too)
     >>model      configuration checks, the memory layout, init, random weights, and the
                  llama2.c checkpoint reader (v0, v1) and writer (v0)
     >>lora       low-rank adapters: layout, init, merge, their forward and backward products
     >>forward    the forward pass, ending in the loss; the anchor and soft targets; per-token NLL
     >>backward   the backward pass, from the loss down to the embedding
     >>step       gradient normalisation, clipping, schedule, AdamW; training checkpoints
     >>generate   one token at a time with a KV cache, the sampler, generation, the data order
   PART II, TEXT AND DATA
     >>files      the byte source every reader parses from (a file or memory), read-all,
                  write to a temporary file and rename, JSONL records
     >>json       a small strict JSON reader, and its public handle
     >>gguf       GGUF metadata and tensor table, every length checked
     >>safetensors  Hugging Face folders: config.json and safetensors shards, read and
                  written; and the weights of GGUF models (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)
     >>unicode    UTF-8, character classes and NFC over the generated tables (appendix)
     >>tokenizer  one tokenizer for tokenizer.bin, .model, tokenizer.json and GGUF:
       >>bpe        the merge loop (by score or by rank) both algorithms share
       >>pretok     the byte-level pre-tokenizer regexes, hand-coded
       >>encode     normalisation, special tokens, offsets
       >>detokenize bytes of each token, streaming and whole decoding
       >>vocabs     the loaders: tokenizer.bin, .model (protobuf), tokenizer.json, GGUF
     >>llamacpp   GGUF files written for llama.cpp: metadata, vocabulary, tensors
     >>chat       built-in chat templates, one renderer per family in a table
     >>data       a JSONL record -> ids and per-position loss weights (the key-token mask),
                  and the model's own drafts
     >>pack       examples packed next-fit into rows, rows filled for a forward pass
     >>teacher    the until-learned score, the teacher in context's top-k, a record's context
     >>metrics    the NLL filter, tail loops, multiple-choice and fact scoring
   PART III, APPENDIX
     >>appendix   generated Unicode tables

   NAMES. Shapes follow the header: B, T, N = B*T, D, F, L, NH, KV, hs, V; KVD = KV*hs.
   Kernel signatures put outputs first, then inputs, then sizes, then nt (threads).
   Backward kernels ACCUMULATE (+=) into gradient buffers, as llm.c's do: mft_zero_grad()
   is the only thing that clears them, which is what makes gradient accumulation free.
   Private names are static and start with mft__ / MFT__.
*/

/* ============================================================================================
   >>config
   ============================================================================================ */
/* POSIX's fseeko/ftello give 64-bit file offsets on every POSIX system (long is 32 bits on some);
   they must be asked for before the first system header. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "maskft.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The allocator: all three or none, as stb_image asks, so a block is never freed by another
   allocator than the one that made it. */
#if defined(MFT_MALLOC) || defined(MFT_REALLOC) || defined(MFT_FREE)
#if !defined(MFT_MALLOC) || !defined(MFT_REALLOC) || !defined(MFT_FREE)
#error "define all or none of MFT_MALLOC, MFT_REALLOC and MFT_FREE"
#endif
#else
#define MFT_MALLOC(n) malloc(n)
#define MFT_REALLOC(p, n) realloc(p, n)
#define MFT_FREE(p) free(p)
#endif

/* Helpers that a build may leave unused (MFT_NO_TEXT) are marked so, not to warn. */
#if defined(__GNUC__)
#define MFT__UNUSED __attribute__((unused))
#else
#define MFT__UNUSED
#endif

/* maskft.c compiles as C++ too. void * to the type of lhs: implicit in C, a cast in C++. (And
   since a goto may not jump past an initialised declaration in C++, a function that ends on a
   cleanup label declares what comes after its first goto without an initialiser.) */
#ifdef __cplusplus
#define MFT__VOIDP(lhs) (decltype(lhs))
#else
#define MFT__VOIDP(lhs) (void *)
#endif

/* calloc through MFT_MALLOC: n elements of sz bytes, zeroed (NULL if n * sz overflows) */
static MFT__UNUSED void *mft__calloc(size_t n, size_t sz)
{
    if (sz && n > (size_t)-1 / sz) return NULL;
    size_t bytes = n * sz;
    void *p = MFT_MALLOC(bytes ? bytes : 1);
    if (p) memset(p, 0, bytes);
    return p;
}

MFT_API void mft_free(void *p) { MFT_FREE(p); }

#ifdef _OPENMP
#include <omp.h>
/* Every parallel loop in this file is split over what it writes, each piece summed in one order
   whichever thread takes it, so any number of threads gives bit-identical results. PARFOR_DYN
   hands the pieces out as threads come free (the matrix products' tiles). */
#define MFT__PRAGMA(x) _Pragma(#x)
#define MFT__PARFOR(n) MFT__PRAGMA(omp parallel for schedule(static) num_threads(n))
#define MFT__PARFOR_DYN(n) MFT__PRAGMA(omp parallel for schedule(dynamic, 1) num_threads(n))
#else
#define MFT__PARFOR(n)
#define MFT__PARFOR_DYN(n)
#endif

#define MFT__PI 3.14159265358979323846

/* The longest context a model file may ask for: the KV cache of MFT_GENERATE is this long. */
#ifndef MFT_MAX_CONTEXT
#define MFT_MAX_CONTEXT 8192
#endif

/* The scalar reference kernels are the tests' oracle; the library itself calls only some. */
#define MFT__REF static MFT__UNUSED

/* Small loops run on one thread: waking a team costs more than the work, and on a busy
   machine a descheduled team member stalls everyone at the barrier. */
static inline int mft__par(int nt, double work) { return work >= 1e6 ? nt : 1; }
/* The same for work counted in multiply-adds: a team costs tens of microseconds to wake, and a
   whole time slice when a member was descheduled on a busy machine, so the products and the
   attention go parallel from about half a millisecond of work on (4e7 multiply-adds).
   Measured under load on the bundled model: eval with 2 threads took 1.2-4x the time of 1 at
   lower thresholds, the same time at this one. */
static inline int mft__par_fma(int nt, double fmas) { return fmas >= 4e7 ? nt : 1; }

/* the calling thread's number in its team (0 outside a parallel region or without OpenMP) */
static inline int mft__thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
static int mft__nthreads(const mft_model *m)
{
#ifdef _OPENMP
    return m->n_threads > 0 ? m->n_threads : omp_get_max_threads();
#else
    (void)m;
    return 1;
#endif
}

/* The bytes a reader parses: a file, read as it goes, or a block of memory. The model and
   checkpoint readers of Part I and the GGUF reader use it; it is defined in files. Every
   read is checked against the size first, so a truncated file is a FORMAT error with the
   offset, never a short read. */
typedef struct mft__src {
    const char *name;         /* for messages: the path, or "(memory)" */
    const unsigned char *mem; /* the block, or NULL for a file */
    FILE *f;
    uint64_t size, pos;
} mft__src;
static mft_status mft__src_open(mft__src *s, const char *path, mft_error *err);
static void mft__src_memory(mft__src *s, const void *data, size_t size);
static mft_status mft__src_read(mft__src *s, void *dst, uint64_t n, mft_error *err);
static mft_status mft__src_seek(mft__src *s, uint64_t pos, mft_error *err);
static void mft__src_close(mft__src *s);
/* Model files other than llama2.c checkpoints (a Hugging Face folder) need the JSON reader of
   Part II; Part I reaches them through these (absent with MFT_NO_TEXT). */
#ifndef MFT_NO_TEXT
static mft_status mft__hf_open_dir(mft_model *m, const char *dir, int B, int T, int flags, mft_config *only,
                                   mft_error *err);
static int mft__is_hf_dir(const char *path);
static mft_status mft__gguf_model(mft_model *m, mft__src *src, int B, int T, int flags, mft_config *only,
                                  mft_error *err);
/* the first four bytes of a source are "GGUF" */
static int mft__is_gguf(mft__src *f)
{
    char magic[4];
    int yes = f->size >= 4 && !mft__src_read(f, magic, 4, NULL) && !memcmp(magic, "GGUF", 4);
    mft__src_seek(f, 0, NULL);
    return yes;
}
#endif
/* Files written through a temporary file renamed into place (files). */
static FILE *mft__tmp_create(const char *path, char **tmp, mft_status *st, mft_error *err);
static mft_status mft__tmp_commit(FILE *f, char *tmp, const char *path, int ok, mft_error *err);

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
#if defined(MFT__AVX2) && defined(__AVX512F__)
    return "avx2+avx512"; /* the matrix products' kernel; the rest is AVX2 */
#elif defined(MFT__AVX2)
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
   A status is always the return value; the message is extra, for callers that pass an
   mft_error. Nothing reads err back to decide what happened.
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
    case MFT_ERR_SPACE: return "buffer too small";
    }
    return "unknown status";
}

#if defined(__GNUC__)
#define MFT__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MFT__PRINTF(a, b)
#endif

/* Records status and a printf-style message in *err (if given) and returns the status, so error
   paths read `return mft__fail(err, MFT_ERR_ARG, "...", ...);`. */
static mft_status mft__fail(mft_error *err, mft_status s, const char *fmt, ...) MFT__PRINTF(3, 4);
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

/* The same with a place in front: "file:line:col: what" (col 0: "file:line: what"), the form
   compilers use, so editors can jump to it. */
static MFT__UNUSED mft_status mft__errat(mft_error *err, mft_status s, const char *file, int line, int col,
                                         const char *fmt, ...) MFT__PRINTF(6, 7);
static mft_status mft__errat(mft_error *err, mft_status s, const char *file, int line, int col, const char *fmt, ...)
{
    if (err) {
        char what[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        if (col > 0)
            mft__fail(err, s, "%s:%d:%d: %s", file, line, col, what);
        else
            mft__fail(err, s, "%s:%d: %s", file, line, what);
    }
    return s;
}

static mft_status mft__ok(mft_error *err)
{
    if (err) {
        err->status = MFT_OK;
        err->msg[0] = 0;
    }
    return MFT_OK;
}

/* ============================================================================================
   >>kernels
   Each kernel comes twice: mft__X_ref, the definition in the plainest loops (the reader's
   reference and the tests' oracle), and mft__X, the blocked, vectorised, threaded version.
   ============================================================================================ */

/* dot product, vectorised with a scalar tail; two accumulators, since one would wait on the
   latency of each FMA (4 cycles) and run at a quarter of the core's rate */
static inline float mft__dot(const float *a, const float *b, int n)
{
    int i = 0;
    float s = 0.0f;
#if MFT__VW > 1
    mft__vf acc = mft__vset1(0.0f), acc2 = acc;
    for (; i + 2 * MFT__VW <= n; i += 2 * MFT__VW) {
        acc = mft__vfma(mft__vload(a + i), mft__vload(b + i), acc);
        acc2 = mft__vfma(mft__vload(a + i + MFT__VW), mft__vload(b + i + MFT__VW), acc2);
    }
    for (; i + MFT__VW <= n; i += MFT__VW) acc = mft__vfma(mft__vload(a + i), mft__vload(b + i), acc);
    s = mft__vhsum(mft__vadd(acc, acc2));
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

/* y (N, C) += b (C) on every row; and its backward db += sum over rows of dy, split over
   columns so each db[c] is summed by one thread in order */
static void mft__bias_fwd(float *y, const float *b, int N, int C)
{
    for (int n = 0; n < N; n++) mft__vec_add(y + (size_t)n * C, b, (size_t)C);
}

static void mft__bias_bwd(float *db, const float *dy, int N, int C, int nt)
{
    if (!db) return; /* a frozen model (MFT_FROZEN) */
    int n_jobs = (C + 63) / 64;
    (void)nt;
    MFT__PARFOR(mft__par(nt, (double)N * C))
    for (int job = 0; job < n_jobs; job++) {
        int c0 = job * 64, c1 = c0 + 64 < C ? c0 + 64 : C;
        for (int n = 0; n < N; n++)
            for (int c = c0; c < c1; c++) db[c] += dy[(size_t)n * C + c];
    }
}

/* ---- >>matmul -------------------------------------------------------------------------------
   Forward:   out[n][o]  = sum_c inp[n][c] * w[o][c]        out (N,OC), inp (N,C), w (OC,C)
   Backward:  dinp[n][c] += sum_o dout[n][o] * w[o][c]      (dout W)
              dw[o][c]   += sum_n dout[n][o] * inp[n][c]    (dout^T inp)
   By far most of the time of a training step is spent in these three (6 flops per weight per
   token: 2 forward, 4 backward; 87-99% of a step at the stories15M to SmolLM2-135M shapes, per
   make bench). All three go through one packed product (below), each output element summed
   by one thread in a fixed order, whatever the thread count. Only a forward product of a few
   rows (one token at a time in generation) runs on W's rows directly, register-tiled 3 rows x
   4 weight rows = 12 vector accumulators, each loaded vector used 3 or 4 times. */

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
        u = mft__vload(w0 + c);
        a00 = mft__vfma(v0, u, a00);
        a10 = mft__vfma(v1, u, a10);
        a20 = mft__vfma(v2, u, a20);
        u = mft__vload(w1 + c);
        a01 = mft__vfma(v0, u, a01);
        a11 = mft__vfma(v1, u, a11);
        a21 = mft__vfma(v2, u, a21);
        u = mft__vload(w2 + c);
        a02 = mft__vfma(v0, u, a02);
        a12 = mft__vfma(v1, u, a12);
        a22 = mft__vfma(v2, u, a22);
        u = mft__vload(w3 + c);
        a03 = mft__vfma(v0, u, a03);
        a13 = mft__vfma(v1, u, a13);
        a23 = mft__vfma(v2, u, a23);
    }
    s[0][0] = mft__vhsum(a00);
    s[0][1] = mft__vhsum(a01);
    s[0][2] = mft__vhsum(a02);
    s[0][3] = mft__vhsum(a03);
    s[1][0] = mft__vhsum(a10);
    s[1][1] = mft__vhsum(a11);
    s[1][2] = mft__vhsum(a12);
    s[1][3] = mft__vhsum(a13);
    s[2][0] = mft__vhsum(a20);
    s[2][1] = mft__vhsum(a21);
    s[2][2] = mft__vhsum(a22);
    s[2][3] = mft__vhsum(a23);
#else
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) s[i][j] = 0.0f;
#endif
    for (; c < C; c++) {
        float v0 = x0[c], v1 = x1[c], v2 = x2[c];
        s[0][0] += v0 * w0[c];
        s[1][0] += v1 * w0[c];
        s[2][0] += v2 * w0[c];
        s[0][1] += v0 * w1[c];
        s[1][1] += v1 * w1[c];
        s[2][1] += v2 * w1[c];
        s[0][2] += v0 * w2[c];
        s[1][2] += v1 * w2[c];
        s[2][2] += v2 * w2[c];
        s[0][3] += v0 * w3[c];
        s[1][3] += v1 * w3[c];
        s[2][3] += v2 * w3[c];
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) out[(size_t)i * ldo + j] = s[i][j];
}

#define MFT__MM_NB 48 /* rows of inp per job: 48 x C floats stay in L2 while W tiles pass */
#define MFT__MM_OB 64 /* weight rows per job */

static void mft__matmul_fwd_rows(float *out, const float *inp, const float *w, int N, int C, int OC, int nt)
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

/* ---- the packed product ---------------------------------------------------------------------
   All three products are one C (M x N) (+)= A (M x K) B (K x N), with A and B read through row
   and column strides, so a transposed operand is only a different pair of strides:
     forward  out = inp W^T   A = inp (rows of C floats)     B = W^T (w[j][k]: strides 1, C)
     dx      dinp += dout W   A = dout                       B = W   (rows of C floats)
     dw        dw += dout^T inp  A = dout^T (strides 1, OC)  B = inp (rows of C floats)
   The way every fast BLAS does it (Goto and van de Geijn, "Anatomy of high-performance matrix
   multiplication", 2008): C is cut into MC x NC tiles; a job is one MC block of rows against
   a run of NC blocks of columns. It walks K in blocks of KC, copies its A block (MC x KC,
   from L2) once per block of K for the whole run, and for each tile of the run the B block
   (KC x NC) into contiguous panels of MR rows / NR columns in k order; a register micro-kernel
   computes each MR x NR piece of C from one A panel and one B panel with MR x NR / width
   vector accumulators: per k, NR/width loads of B, MR broadcasts of A, MR x NR/width FMAs.
   The B panel (KC x NR) stays in L1 while the kernel sweeps the A panels. Unlike BLIS, each
   job packs its own B blocks rather than sharing them across its row blocks: simpler
   threading for a copy of 1/MC element per multiply-add (a version that packed B once per
   group of row blocks measured no faster on the 2-core machine). Each element of C is summed
   by one job, over the K blocks in order, so the result does not depend on the thread count.
   The panels live in the model's block (MFT__GEMM_SLOTS slots of mft__gemm_slot(its largest
   size) floats): nothing allocates in a step. */
#if defined(MFT__AVX2) && defined(__AVX512F__)
/* 32 zmm registers: 12 x 2 accumulators, 2 for B, 1 broadcast */
typedef __m512 mft__gv;
#define MFT__GW 16
#define MFT__MR 12
#define MFT__NV 2
static inline mft__gv mft__gload(const float *p) { return _mm512_loadu_ps(p); }
static inline void mft__gstore(float *p, mft__gv v) { _mm512_storeu_ps(p, v); }
static inline mft__gv mft__gset1(float x) { return _mm512_set1_ps(x); }
static inline mft__gv mft__gfma(mft__gv a, mft__gv b, mft__gv c) { return _mm512_fmadd_ps(a, b, c); }
static inline mft__gv mft__gadd(mft__gv a, mft__gv b) { return _mm512_add_ps(a, b); }
#else
/* the kernels' own vector: 16 ymm (AVX2) = 6 x 2 accumulators + 2 for B + 1; 32 NEON registers
   = 8 x 3 + 3 + 1; the scalar build, 4 x 4 floats */
typedef mft__vf mft__gv;
#define MFT__GW MFT__VW
#if defined(MFT__AVX2)
#define MFT__MR 6
#define MFT__NV 2
#elif defined(MFT__NEON)
#define MFT__MR 8
#define MFT__NV 3
#else
#define MFT__MR 4
#define MFT__NV 4
#endif
/* the same operations as every other kernel's */
#define mft__gload mft__vload
#define mft__gstore mft__vstore
#define mft__gset1 mft__vset1
#define mft__gfma mft__vfma
#define mft__gadd mft__vadd
#endif
#define MFT__NR (MFT__NV * MFT__GW)
#define MFT__KC 256                              /* A panel MR x KC and B panel KC x NR fit L1 */
#define MFT__MC (MFT__MR * (256 / MFT__MR + 1))  /* >= 256 rows of A: the A block stays in L2 */
#define MFT__NC (MFT__NR * (256 / MFT__NR))      /* 256 columns of B: the B block, in L2 too */
#define MFT__GEMM_SLOTS 16                       /* threads the products use at most */
#define MFT__GEMM_SLOT mft__gemm_slot(INT32_MAX) /* floats of one thread's panels, at most */

/* The floats of one thread's panels for products none of whose sizes exceeds x: a small model
   needs far less than the full blocks */
static size_t mft__gemm_slot(size_t x)
{
    size_t mc = (x + MFT__MR - 1) / MFT__MR * MFT__MR, nc = (x + MFT__NR - 1) / MFT__NR * MFT__NR;
    mc = mc < MFT__MC ? mc : MFT__MC;
    nc = nc < MFT__NC ? nc : MFT__NC;
    return (mc + nc) * (x < MFT__KC ? x : MFT__KC);
}

/* the small loops of the micro-kernel, unrolled so the accumulators live in registers */
#if defined(__clang__)
#define MFT__UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define MFT__UNROLL _Pragma("GCC unroll 16")
#else
#define MFT__UNROLL
#endif

/* rows cr[0..mr) of C, columns [0..nr), (+)= the product of an A panel (kc x MR, k-major) and a
   B panel (kc x NR) */
static inline void mft__gemm_kernel(int kc, const float *ap, const float *bp, float *const *cr, int mr, int nr,
                                    int load)
{
    mft__gv acc[MFT__MR][MFT__NV];
    MFT__UNROLL
    for (int i = 0; i < MFT__MR; i++) {
        MFT__UNROLL
        for (int j = 0; j < MFT__NV; j++) acc[i][j] = mft__gset1(0.0f);
    }
    for (int k = 0; k < kc; k++, ap += MFT__MR, bp += MFT__NR) {
        mft__gv b[MFT__NV];
        MFT__UNROLL
        for (int j = 0; j < MFT__NV; j++) b[j] = mft__gload(bp + j * MFT__GW);
        MFT__UNROLL
        for (int i = 0; i < MFT__MR; i++) {
            mft__gv a = mft__gset1(ap[i]);
            MFT__UNROLL
            for (int j = 0; j < MFT__NV; j++) acc[i][j] = mft__gfma(a, b[j], acc[i][j]);
        }
    }
    if (mr == MFT__MR && nr == MFT__NR) {
        MFT__UNROLL
        for (int i = 0; i < MFT__MR; i++) {
            MFT__UNROLL
            for (int j = 0; j < MFT__NV; j++) {
                float *p = cr[i] + j * MFT__GW;
                mft__gstore(p, load ? mft__gadd(mft__gload(p), acc[i][j]) : acc[i][j]);
            }
        }
        return;
    }
    /* an edge piece: the same sums, only part of them kept */
    float t[MFT__MR * MFT__NR];
    for (int i = 0; i < MFT__MR; i++)
        for (int j = 0; j < MFT__NV; j++) mft__gstore(t + i * MFT__NR + j * MFT__GW, acc[i][j]);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *p = cr[i] + j;
            *p = load ? *p + t[i * MFT__NR + j] : t[i * MFT__NR + j];
        }
}

/* Which row of a strided operand index i names: map[i], or i itself without a map. */
static inline size_t mft__gemm_at(const int *map, int i) { return map ? (size_t)map[i] : (size_t)i; }

/* what the packing reads for the rows (of A) or columns (of B) past the edge of a block */
static const float mft__zero_kc[MFT__KC] = { 0.0f };

/* A block rows [i0, i0+mc), columns [k0, k0+kc) (element (i, k) at a[im(i)*rs + km(k)*cs], im and
   km the row and column maps) -> panels of MR rows, k-major, rows past mc zero. The loops run
   so that reads go along whichever stride is 1 and writes are sequential: a row-major A is
   read as MR rows side by side; a transposed one (dout^T in dW = dout^T x, its k-th column
   a row of dout) one k at a time across every panel, so each row of dout is read once in a
   run of mc floats instead of MR floats per panel at a stride of a whole row. */
static void mft__gemm_pack_a(float *dst, const float *a, size_t rs, size_t cs, const int *im, int i0, const int *km,
                             int k0, int mc, int kc)
{
    if (cs == 1 && !km) {
        for (int p0 = 0; p0 < mc; p0 += MFT__MR, dst += (size_t)kc * MFT__MR) {
            const float *r[MFT__MR];
            for (int i = 0; i < MFT__MR; i++)
                r[i] = p0 + i < mc ? a + mft__gemm_at(im, i0 + p0 + i) * rs + k0 : mft__zero_kc;
            float *d = dst;
            for (int k = 0; k < kc; k++, d += MFT__MR) {
                MFT__UNROLL
                for (int i = 0; i < MFT__MR; i++) d[i] = r[i][k];
            }
        }
        return;
    }
    size_t panel = (size_t)kc * MFT__MR;
    int full = mc / MFT__MR * MFT__MR;
    for (int k = 0; k < kc; k++) {
        const float *src = a + mft__gemm_at(km, k0 + k) * cs;
        float *d = dst + (size_t)k * MFT__MR;
        int i = 0;
        if (rs == 1 && !im)
            for (const float *s = src + i0; i < full; i += MFT__MR, d += panel, s += MFT__MR) {
                MFT__UNROLL
                for (int t = 0; t < MFT__MR; t++) d[t] = s[t];
            }
        for (; i < mc; i += MFT__MR, d += panel)
            for (int t = 0; t < MFT__MR; t++) d[t] = i + t < mc ? src[mft__gemm_at(im, i0 + i + t) * rs] : 0.0f;
    }
}

/* B block rows [k0, k0+kc) (through the map km), columns [j0, j0+nc) (element (k, j) at
   b[km(k)*rs + j*cs]) -> panels of NR columns, columns past nc zero */
static void mft__gemm_pack_b(float *dst, const float *b, size_t rs, size_t cs, const int *km, int k0, int j0, int kc,
                             int nc)
{
    for (int p0 = 0; p0 < nc; p0 += MFT__NR, dst += (size_t)kc * MFT__NR) {
        int nr = nc - p0 < MFT__NR ? nc - p0 : MFT__NR;
        if (cs == 1) {
            for (int k = 0; k < kc; k++) {
                const float *src = b + mft__gemm_at(km, k0 + k) * rs + j0 + p0;
                float *d = dst + (size_t)k * MFT__NR;
                if (nr == MFT__NR) { /* whole vectors: a library memcpy of 64 bytes costs more */
                    MFT__UNROLL
                    for (int j = 0; j < MFT__NV; j++) mft__gstore(d + j * MFT__GW, mft__gload(src + j * MFT__GW));
                } else {
                    memcpy(d, src, (size_t)nr * sizeof(float));
                    memset(d + nr, 0, (size_t)(MFT__NR - nr) * sizeof(float));
                }
            }
        } else if (rs == 1 && !km) { /* W^T in x W^T: NR rows of W side by side, one k at a time */
            const float *r[MFT__NR];
            for (int j = 0; j < MFT__NR; j++) r[j] = j < nr ? b + (size_t)(j0 + p0 + j) * cs + k0 : mft__zero_kc;
            float *d = dst;
            for (int k = 0; k < kc; k++, d += MFT__NR) {
                MFT__UNROLL
                for (int j = 0; j < MFT__NR; j++) d[j] = r[j][k];
            }
        } else {
            for (int j = 0; j < MFT__NR; j++) {
                const float *src = b + (size_t)(j0 + p0 + j) * cs;
                if (j >= nr)
                    for (int k = 0; k < kc; k++) dst[(size_t)k * MFT__NR + j] = 0.0f;
                else
                    for (int k = 0; k < kc; k++) dst[(size_t)k * MFT__NR + j] = src[mft__gemm_at(km, k0 + k) * rs];
            }
        }
    }
}

/* C (M x N, rows ldc apart) = A B, or += with load; ws: MFT__GEMM_SLOTS x MFT__GEMM_SLOT floats.
   With maps, row i of A and of C is row im[i] of a and of c, and index k of A's columns and B's
   rows is km[k]: a product over some rows only (the classifier's weighted positions) reads
   and writes them in place, with no copies. */
static void mft__gemm_map(float *c, size_t ldc, int load, const float *a, size_t ars, size_t acs, const float *b,
                          size_t brs, size_t bcs, int M, int N, int K, const int *im, const int *km, float *ws, int nt)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!load)
            for (int i = 0; i < M; i++) memset(c + mft__gemm_at(im, i) * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    int n_mb = (M + MFT__MC - 1) / MFT__MC, n_nb = (N + MFT__NC - 1) / MFT__NC;
    nt = mft__par_fma(nt, (double)M * N * K);
    nt = nt < MFT__GEMM_SLOTS ? nt : MFT__GEMM_SLOTS;
    /* A job is one MC block of rows against a run of `span` NC blocks of columns: its A block
       is packed once per KC step and serves the whole run (one job per block pair packed each
       A block n_nb times: as many floats copied as 1/NC of the multiply-adds; with the B
       copies, perf put a third of a stories15M step in packing). The runs are as long as still leaves about four jobs
       per thread to hand out. (Capping them at 4 blocks when K takes several KC steps, so the
       C rows a job revisits stay in cache, measured slower: 121 against 131 tokens/s on the
       135M shape.) Neither the split nor which thread takes a job changes a sum: each element
       of C adds its KC blocks in the same order. */
    int want = 4 * nt, span = n_mb >= want ? n_nb : (n_nb * n_mb + want - 1) / want;
    span = span < 1 ? 1 : span;
    int n_runs = (n_nb + span - 1) / span, n_jobs = n_mb * n_runs;
    nt = nt < n_jobs ? nt : n_jobs;
    (void)nt;
    /* this product's slots: no larger than those the block was sized for (mft__gemm_slot of
       the model's largest size) */
    int x = M > N ? M : N;
    x = x > K ? x : K;
    size_t slot = mft__gemm_slot((size_t)x), mc_max = (size_t)(M + MFT__MR - 1) / MFT__MR * MFT__MR;
    size_t kc_max = (size_t)(K < MFT__KC ? K : MFT__KC);
    mc_max = mc_max < MFT__MC ? mc_max : MFT__MC;
    /* Jobs are handed out one at a time as threads come free: on a busy machine a thread that
       was descheduled takes fewer tiles instead of holding up the rest. */
    MFT__PARFOR_DYN(nt)
    for (int job = 0; job < n_jobs; job++) {
        float *pa = ws + (size_t)mft__thread_id() * slot, *pb = pa + mc_max * kc_max;
        int i0 = (job / n_runs) * MFT__MC, jb = (job % n_runs) * span;
        int mc = M - i0 < MFT__MC ? M - i0 : MFT__MC, je = jb + span < n_nb ? jb + span : n_nb;
        for (int k0 = 0; k0 < K; k0 += MFT__KC) {
            int kc = K - k0 < MFT__KC ? K - k0 : MFT__KC;
            mft__gemm_pack_a(pa, a, ars, acs, im, i0, km, k0, mc, kc);
            for (int j0 = jb * MFT__NC; j0 < je * MFT__NC && j0 < N; j0 += MFT__NC) {
                int nc = N - j0 < MFT__NC ? N - j0 : MFT__NC;
                mft__gemm_pack_b(pb, b, brs, bcs, km, k0, j0, kc, nc);
                for (int jr = 0; jr < nc; jr += MFT__NR)
                    for (int ir = 0; ir < mc; ir += MFT__MR) {
                        int mr = mc - ir < MFT__MR ? mc - ir : MFT__MR;
                        float *cr[MFT__MR];
                        for (int i = 0; i < mr; i++) cr[i] = c + mft__gemm_at(im, i0 + ir + i) * ldc + j0 + jr;
                        mft__gemm_kernel(kc, pa + (size_t)ir * kc, pb + (size_t)jr * kc, cr, mr,
                                         nc - jr < MFT__NR ? nc - jr : MFT__NR, load || k0 > 0);
                    }
            }
        }
    }
}

static void mft__gemm(float *c, size_t ldc, int load, const float *a, size_t ars, size_t acs, const float *b,
                      size_t brs, size_t bcs, int M, int N, int K, float *ws, int nt)
{
    mft__gemm_map(c, ldc, load, a, ars, acs, b, brs, bcs, M, N, K, NULL, NULL, ws, nt);
}

/* the three products of the layer above through the packed product; without panels (a model
   that only generates) the forward product runs on W's rows directly, and so does a product
   of fewer rows than a panel holds (one token at a time) */
static void mft__matmul_fwd(float *out, const float *inp, const float *w, int N, int C, int OC, int nt, float *ws)
{
    if (!ws || N < MFT__MR)
        mft__matmul_fwd_rows(out, inp, w, N, C, OC, nt);
    else
        mft__gemm(out, (size_t)OC, 0, inp, (size_t)C, 1, w, 1, (size_t)C, N, OC, C, ws, nt);
}

static void mft__matmul_bwd_dx(float *dinp, const float *dout, const float *w, int N, int C, int OC, int nt, float *ws)
{
    if (!ws)
        mft__matmul_bwd_dx_ref(dinp, dout, w, N, C, OC);
    else
        mft__gemm(dinp, (size_t)C, 1, dout, (size_t)OC, 1, w, (size_t)C, 1, N, C, OC, ws, nt);
}

static void mft__matmul_bwd_dw(float *dw, const float *dout, const float *inp, int N, int C, int OC, int nt, float *ws)
{
    if (!dw) return; /* a frozen model (MFT_FROZEN) */
    if (!ws)
        mft__matmul_bwd_dw_ref(dw, dout, inp, N, C, OC);
    else
        mft__gemm(dw, (size_t)C, 1, dout, 1, (size_t)OC, inp, (size_t)C, 1, OC, C, N, ws, nt);
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
        for (; d + MFT__VW <= D; d += MFT__VW)
            mft__vstore(yr + d, mft__vmul(mft__vmul(mft__vload(xr + d), vr), mft__vload(w + d)));
#endif
        for (; d < D; d++) yr[d] = xr[d] * r * w[d];
    }
}

MFT__REF void mft__rmsnorm_bwd_ref(float *dx, float *dw, const float *dy, const float *x, const float *rs,
                                   const float *w, int N, int D)
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

static void mft__rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rs, const float *w,
                             int N, int D, int nt)
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
            mft__vf t = mft__vsub(mft__vmul(vr, mft__vmul(mft__vload(gr + d), mft__vload(w + d))),
                                  mft__vmul(vc, mft__vload(xr + d)));
            mft__vstore(dr + d, mft__vadd(mft__vload(dr + d), t));
        }
#endif
        for (; d < D; d++) dr[d] += r * gr[d] * w[d] - c * xr[d];
    }
    /* dw: split over columns so each dw[d] is summed over rows in order by one thread */
    if (!dw) return; /* a frozen model (MFT_FROZEN) */
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

/* The angle of pair i at position p is p * f_i, f_i = theta^(-2i/hs). Llama 3.1 scales the
   frequencies (rope_scaling "llama3" of transformers' _compute_llama3_parameters): with
   wavelength l_i = 2 pi / f_i and the original context C, frequencies of a wavelength above
   C / low_freq_factor are divided by factor, those below C / high_freq_factor kept, and the
   ones between blended: s = (C / l_i - low) / (high - low), f = (1 - s) f / factor + s f. */
static double mft__rope_freq(const mft_config *c, int i, int hs)
{
    double f = pow((double)c->rope_theta, -2.0 * i / hs);
    if (c->rope_scaling != MFT_ROPE_LLAMA3) return f;
    double wl = 2.0 * MFT__PI / f, C = c->rope_orig_ctx, lo = c->rope_low_freq, hi = c->rope_high_freq;
    double fac = c->rope_factor;
    if (wl < C / hi) return f;
    if (wl > C / lo) return f / fac;
    double sm = (C / wl - lo) / (hi - lo);
    return (1.0 - sm) * f / fac + sm * f;
}

static void mft__rope_tables(float *cosb, float *sinb, const mft_config *c)
{
    int hs = mft_head_dim(c);
    for (int p = 0; p < c->seq_len; p++)
        for (int i = 0; i < hs / 2; i++) {
            double a = p * mft__rope_freq(c, i, hs);
            cosb[(size_t)p * hs + 2 * i] = cosb[(size_t)p * hs + 2 * i + 1] = (float)cos(a);
            sinb[(size_t)p * hs + 2 * i] = (float)-sin(a);
            sinb[(size_t)p * hs + 2 * i + 1] = (float)sin(a);
        }
}

/* x: (n_pos, n_heads, hs) rows, row r at position pos0 + r % period (period = T for a batch),
   or at pos[r] when pos is given (packed sequences restart their positions at 0) */
MFT__REF void mft__rope_ref(float *x, const float *cosb, const float *sinb, int n_rows, int period, int pos0,
                            const int *posv, int n_heads, int hs, float sign)
{
    for (int r = 0; r < n_rows; r++) {
        int pos = posv ? posv[r] : pos0 + r % period;
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

static void mft__rope(float *x, const float *cosb, const float *sinb, int n_rows, int period, int pos0, const int *posv,
                      int n_heads, int hs, float sign, int nt)
{
#if MFT__VW > 1
    if (hs % MFT__VW == 0) {
        mft__vf vs = mft__vset1(sign);
        nt = mft__par(nt, (double)n_rows * n_heads * hs);
        MFT__PARFOR(nt)
        for (int r = 0; r < n_rows; r++) {
            int pos = posv ? posv[r] : pos0 + r % period;
            const float *cb = cosb + (size_t)pos * hs, *sb = sinb + (size_t)pos * hs;
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
    mft__rope_ref(x, cosb, sinb, n_rows, period, pos0, posv, n_heads, hs, sign);
}

/* ---- >>softmax ------------------------------------------------------------------------------
   p_i = exp(x_i - max) / sum_j exp(x_j - max): subtracting the max keeps exp() in range. The
   log-sum-exp of the loss is in xent. */

MFT__REF void mft__softmax_ref(float *p, const float *x, int n)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        p[i] = expf(x[i] - mx);
        s += p[i];
    }
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
    for (; i < n; i++) {
        p[i] = expf(x[i] - shift);
        s += p[i];
    }
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
            mft__vstore(p + i, pi);
            mft__vstore(m + i, mi);
            mft__vstore(v + i, vi);
        }
#endif
        if (i < e) mft__adamw_ref(p + i, m + i, v + i, g + i, e - i, k);
    }
}

/* ============================================================================================
   >>xent
   The loss, as a layer of its own (llm.c's crossentropy_forward / _backward). For logits z_n
   (one row of V per position), target y_n and weight w_n >= 0:
       CE_n = lse(z_n) - z_n[y_n],   lse(z) = log sum_i exp(z_i)
       loss = sum_n w_n CE_n / sum_n w_n
   forward keeps lse_n for backward, which writes d(sum_n w_n CE_n)/dz_n = w_n (P_n - onehot(y_n))
   over the logits, P_n = softmax(z_n) = exp(z_n - lse_n). mft_step divides by sum w.
   The context anchor adds sum_n a_n KL(Q_n || P_n), Q_n = softmax(b_n) of a frozen base model's
   logits b_n; its gradient on z_n is a_n (P_n - Q_n), so backward writes one combined row
       dz_n = (w_n + a_n) P_n - w_n onehot(y_n) - a_n Q_n.
   lse is the max-shifted sum, so exp never overflows: lse(z) = m + log sum_i exp(z_i - m),
   m = max z. mft__lse sums in float vectors (the loss's hot path, N x V); mft__lse64 in double,
   for KL, where two close distributions are subtracted and float's 1e-7 would be the answer.
   ============================================================================================ */

static inline float mft__lse(const float *x, int n)
{
    float mx = mft__vec_max(x, n);
    int i = 0;
    float s = 0.0f;
#if MFT__VW > 1
    mft__vf acc = mft__vset1(0.0f), vm = mft__vset1(mx);
    for (; i + MFT__VW <= n; i += MFT__VW) acc = mft__vadd(acc, mft__vexp(mft__vsub(mft__vload(x + i), vm)));
    s = mft__vhsum(acc);
#endif
    for (; i < n; i++) s += expf(x[i] - mx);
    return mx + logf(s);
}

static double mft__lse64(const float *x, int n)
{
    double mx = -INFINITY, s = 0.0;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    for (int i = 0; i < n; i++) s += exp(x[i] - mx);
    return mx + log(s);
}

/* forward: lse (N) of every row, and the weighted sums of CE and of the weights, in double and
   in order after the parallel part (so the sum does not depend on the thread count). With dft,
   Dynamic Fine-Tuning: w_n becomes w_n p_n, p_n = exp(-CE_n) the target's own probability,
   treated as a constant (detached), in place, so backward differentiates sum w p CE; the
   weight sum stays sum w (TRL divides by the token count). */
/* rows: the positions the classifier ran on (NULL: all N), nr of them */
static void mft__xent_fwd(float *lse, double *loss_sum, double *weight_sum, const float *logits, const int *targets,
                          float *w, const int *rows, size_t nr, size_t V, int dft, int nt)
{
    (void)nt; /* without OpenMP */
    MFT__PARFOR(mft__par(nt, (double)nr * V))
    for (long long i = 0; i < (long long)nr; i++) {
        size_t n = rows ? (size_t)rows[i] : (size_t)i;
        lse[n] = mft__lse(logits + n * V, (int)V);
    }
    *loss_sum = *weight_sum = 0.0;
    for (size_t i = 0; i < nr; i++) {
        size_t n = rows ? (size_t)rows[i] : i;
        double wn = w[n];
        if (wn == 0.0) continue;
        double ce = (double)lse[n] - logits[n * V + (size_t)targets[n]];
        *weight_sum += wn;
        if (dft) w[n] = (float)(wn *= exp(-ce));
        *loss_sum += wn * ce;
    }
}

/* The teacher's tail r = 1 - sum P of one row of soft targets, 0 when it is below rounding
   (k = V, or a top-k that holds everything). */
#define MFT__TAIL_MIN 1e-6
static double mft__soft_tail(const float *pk, int k, size_t V)
{
    double r = 1.0;
    for (int i = 0; i < k; i++) r -= pk[i];
    return (size_t)k < V && r > MFT__TAIL_MIN ? r : 0.0;
}

/* The model's own tail Q_rest = sum of Q over every token but the k ids of a row, summed
   directly (1 - sum Q_k would lose it to cancellation when it is small): the k entries are
   set to -inf (logits) or 0 (is_prob: probabilities) for one vector pass and put back, so
   no sort or search is needed; kept away from 0. The row is its thread's own. */
static double mft__soft_rest(float *z, float lse, const int *id, int k, size_t V, int is_prob)
{
    float keep[MFT_SOFT_KMAX];
    for (int i = 0; i < k; i++) {
        keep[i] = z[id[i]];
        z[id[i]] = is_prob ? 0.0f : -INFINITY;
    }
    double rest = 0.0;
    size_t j = 0;
#if MFT__VW > 1
    mft__vf acc = mft__vset1(0.0f), vl = mft__vset1(lse);
    if (is_prob)
        for (; j + MFT__VW <= V; j += MFT__VW) acc = mft__vadd(acc, mft__vload(z + j));
    else
        for (; j + MFT__VW <= V; j += MFT__VW) acc = mft__vadd(acc, mft__vexp(mft__vsub(mft__vload(z + j), vl)));
    rest = mft__vhsum(acc);
#endif
    for (; j < V; j++) rest += is_prob ? (double)z[j] : (double)expf(z[j] - lse);
    for (int i = 0; i < k; i++) z[id[i]] = keep[i];
    return rest > 1e-30 ? rest : 1e-30;
}

/* The soft targets' gradient on z, P the teacher's k probabilities, r = 1 - sum P:
       d KL / dz_j = Q_j - P_j                  for the k ids
                   = Q_j - r Q_j / Q_rest       for every other token
   (the tail bin's mass r is shared out in proportion to the model's own). With the CE and the
   anchor, one row is (w + a + s(1 - c)) Q everywhere, c = r / Q_rest, then the k ids set to
   (w + a + s) Q_j - s P_j, then -w at the target and -a Q_base: what backward writes. */
typedef struct mft__soft {
    const int *ids;
    const float *p, *w;
    int k;
} mft__soft;

/* backward, in place: logits (N, V) become dz on the nr rows (all, or those listed in rows). A
   row with w = a = s = 0 gets exactly 0. base and aw may be NULL (no anchor), sf->w NULL (no
   soft targets). */
static void mft__xent_bwd(float *logits, const float *lse, const int *targets, const float *w, const float *aw,
                          const float *base, const mft__soft *sf, const int *rows, size_t nr, size_t V, int nt)
{
    (void)nt; /* without OpenMP */
    MFT__PARFOR(mft__par(nt, (double)nr * V))
    for (long long i = 0; i < (long long)nr; i++) {
        size_t n = rows ? (size_t)rows[i] : (size_t)i;
        float *z = logits + n * V;
        float wn = w[n], an = aw ? aw[n] : 0.0f, sn = sf->w ? sf->w[n] : 0.0f;
        if (wn == 0.0f && an == 0.0f && sn == 0.0f) {
            memset(z, 0, V * sizeof(float));
            continue;
        }
        float qk[MFT_SOFT_KMAX]; /* the model's Q at the k ids, before the row is scaled */
        const int *id = sf->ids + (size_t)n * (size_t)sf->k;
        const float *pk = sf->p + (size_t)n * (size_t)sf->k;
        float c = 0.0f;
        mft__vec_exp_sum(z, z, lse[n], (int)V); /* Q: already normalised by lse */
        if (sn != 0.0f) {
            for (int i = 0; i < sf->k; i++) qk[i] = z[id[i]];
            double tail = mft__soft_tail(pk, sf->k, V);
            c = tail > 0.0 ? (float)(tail / mft__soft_rest(z, lse[n], id, sf->k, V, 1)) : 0.0f;
        }
        mft__vec_scale(z, wn + an + sn * (1.0f - c), (int)V);
        if (sn != 0.0f)
            for (int i = 0; i < sf->k; i++) z[id[i]] = (wn + an + sn) * qk[i] - sn * pk[i];
        if (wn != 0.0f) z[targets[n]] -= wn;
        if (an != 0.0f) { /* - a Q_base, in float vectors (the base row is read once more) */
            const float *bz = base + (size_t)n * V;
            float blse = mft__lse(bz, (int)V);
            size_t i = 0;
#if MFT__VW > 1
            mft__vf va = mft__vset1(an), vl = mft__vset1(blse);
            for (; i + MFT__VW <= V; i += MFT__VW)
                mft__vstore(z + i,
                            mft__vsub(mft__vload(z + i), mft__vmul(va, mft__vexp(mft__vsub(mft__vload(bz + i), vl)))));
#endif
            for (; i < V; i++) z[i] -= an * expf(bz[i] - blse);
        }
    }
}

/* KL(P || Q) = sum_i P_i (log P_i - log Q_i), P = softmax(p), Q = softmax(q), log P_i = p_i -
   lse(p), all in double. */
MFT_API double mft_kl_logits(const float *p, const float *q, int V)
{
    double lp = mft__lse64(p, V), lq = mft__lse64(q, V), kl = 0.0;
    for (int i = 0; i < V; i++) {
        double a = p[i] - lp, b = q[i] - lq;
        kl += exp(a) * (a - b);
    }
    if (kl < 0.0) kl = 0.0; /* rounding can leave -1e-17 for identical rows; NaN stays NaN */
    return kl;
}

/* KL(softmax(p) || softmax(q)) of one row as mft_kl_logits, in float vectors: the anchor's hot
   loop (mft_kl_logits, in double, is its reference in the tests). Terms exp(a)(a - b), a and b
   the log-probabilities; each lane sums in float, the lanes in double. */
static double mft__kl_row(const float *p, const float *q, int V)
{
    float lp = mft__lse(p, V), lq = mft__lse(q, V);
    double kl = 0.0;
    int i = 0;
#if MFT__VW > 1
    mft__vf acc = mft__vset1(0.0f), vp = mft__vset1(lp), vq = mft__vset1(lq);
    for (; i + MFT__VW <= V; i += MFT__VW) {
        mft__vf a = mft__vsub(mft__vload(p + i), vp), b = mft__vsub(mft__vload(q + i), vq);
        acc = mft__vfma(mft__vexp(a), mft__vsub(a, b), acc);
    }
    kl = mft__vhsum(acc);
#endif
    for (; i < V; i++) {
        float a = p[i] - lp, b = q[i] - lq;
        kl += (double)(expf(a) * (a - b));
    }
    return kl < 0.0 ? 0.0 : kl; /* rounding can leave -1e-9 for identical rows; NaN stays NaN */
}

/* the anchor's forward: sum_n aw_n KL(base_n || z_n) over the rows with aw_n > 0, the rows split
   over threads (kl: N floats of scratch; NULL, one thread) and summed in order after */
static double mft__anchor_fwd(const float *logits, const float *base, const float *aw, size_t N, size_t V, float *kl,
                              int nt)
{
    if (!kl) {
        double sum = 0.0;
        for (size_t n = 0; n < N; n++)
            if (aw[n] > 0.0f) sum += aw[n] * mft__kl_row(base + n * V, logits + n * V, (int)V);
        return sum;
    }
    (void)nt;
    MFT__PARFOR(mft__par(nt, (double)N * V))
    for (long long n = 0; n < (long long)N; n++)
        kl[n] = aw[n] > 0.0f ? (float)mft__kl_row(base + (size_t)n * V, logits + (size_t)n * V, (int)V) : 0.0f;
    double sum = 0.0;
    for (size_t n = 0; n < N; n++)
        if (aw[n] > 0.0f) sum += aw[n] * (double)kl[n];
    return sum;
}

/* the soft targets' forward: sum_n tw_n KL over the rows with tw_n > 0, the rows split over
   threads (kl: N floats of scratch) and summed in order after, in double */
static double mft__soft_fwd(float *logits, const float *lse, const mft__soft *sf, size_t N, size_t V, float *kl, int nt)
{
    (void)nt; /* without OpenMP */
    MFT__PARFOR(mft__par(nt, (double)N * V))
    for (long long nn = 0; nn < (long long)N; nn++) {
        size_t n = (size_t)nn;
        kl[n] = 0.0f;
        if (!(sf->w[n] > 0.0f)) continue;
        float *z = logits + n * V;
        const float *pk = sf->p + n * (size_t)sf->k;
        const int *id = sf->ids + n * (size_t)sf->k;
        double d = 0.0, tail = mft__soft_tail(pk, sf->k, V);
        for (int i = 0; i < sf->k; i++)
            if (pk[i] > 0.0f) d += pk[i] * (log((double)pk[i]) - ((double)z[id[i]] - lse[n]));
        if (tail > 0.0) d += tail * (log(tail) - log(mft__soft_rest(z, lse[n], id, sf->k, V, 0)));
        kl[n] = (float)(d > 0.0 ? d : 0.0);
    }
    double sum = 0.0;
    for (size_t n = 0; n < N; n++)
        if (sf->w[n] > 0.0f) sum += sf->w[n] * (double)kl[n];
    return sum;
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
   Only lse_t = log sum_u exp(s_tu) is kept per row: backward rebuilds p_tu = exp(s_tu - lse_t),
   and sum_u' p_tu' dp_tu' = do_t . o_t (FlashAttention-2), so memory grows with T, not T^2.
   Both passes are split over (b, h), which own their rows of out and dq; the heads of a group
   all add into the same dk and dv, so each (b, h) keeps its own and a last pass adds them up
   in head order: no two threads write the same element, whatever the thread count.
   ============================================================================================ */

/* One query row against n keys, for decoding: p (n) = softmax(s), out (hs) = p . values. */
static inline void mft__attn_row(float *out, float *p, const float *q, const float *k, const float *v, size_t stride,
                                 int n, int hs, float scale)
{
    for (int u = 0; u < n; u++) p[u] = mft__dot(q, k + (size_t)u * stride, hs) * scale;
    mft__softmax(p, p, n);
    memset(out, 0, (size_t)hs * sizeof(float));
    for (int u = 0; u < n; u++) mft__axpy(out, p[u], v + (size_t)u * stride, hs);
}

/* The training kernels work on one head's keys and values transposed, kt (hs, ld) with kt[i][u]
   = k_u[i], and on MFT__AR query rows at once, like a matrix product's register tile: every
   loop over keys runs along contiguous rows, whole vectors of keys at a time, each key loaded
   once for all the rows, and no dot product of hs floats ends in a horizontal sum. The rows
   t..t+3 of a block share the key range lo..t+3 (lo = the first row's t0); each row's
   probabilities are zero outside its own window t0..t, so every pass runs over the same range.
   s (MFT__AR rows, lds apart) = scale * x_j . kt over n keys. */
#define MFT__AR 4 /* the kernels below are written out for four rows */
static inline void mft__attn_scores(float *s, size_t lds, const float *const *x, const float *kt, size_t ld, int n,
                                    int hs, float scale)
{
    int u = 0;
    mft__vf vs = mft__vset1(scale), z = mft__vset1(0.0f);
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    /* two vectors of keys by four rows: eight accumulators, named so that they stay in registers */
    for (; u + 2 * MFT__VW <= n; u += 2 * MFT__VW) {
        mft__vf a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
        for (int i = 0; i < hs; i++) {
            const float *r = kt + (size_t)i * ld + u;
            mft__vf k0 = mft__vload(r), k1 = mft__vload(r + MFT__VW), y;
            y = mft__vset1(x0[i]), a0 = mft__vfma(y, k0, a0), b0 = mft__vfma(y, k1, b0);
            y = mft__vset1(x1[i]), a1 = mft__vfma(y, k0, a1), b1 = mft__vfma(y, k1, b1);
            y = mft__vset1(x2[i]), a2 = mft__vfma(y, k0, a2), b2 = mft__vfma(y, k1, b2);
            y = mft__vset1(x3[i]), a3 = mft__vfma(y, k0, a3), b3 = mft__vfma(y, k1, b3);
        }
        float *o = s + u;
        mft__vstore(o, mft__vmul(a0, vs)), mft__vstore(o + MFT__VW, mft__vmul(b0, vs));
        mft__vstore(o + lds, mft__vmul(a1, vs)), mft__vstore(o + lds + MFT__VW, mft__vmul(b1, vs));
        mft__vstore(o + 2 * lds, mft__vmul(a2, vs)), mft__vstore(o + 2 * lds + MFT__VW, mft__vmul(b2, vs));
        mft__vstore(o + 3 * lds, mft__vmul(a3, vs)), mft__vstore(o + 3 * lds + MFT__VW, mft__vmul(b3, vs));
    }
    for (; u + MFT__VW <= n; u += MFT__VW) {
        mft__vf a0 = z, a1 = z, a2 = z, a3 = z;
        for (int i = 0; i < hs; i++) {
            mft__vf k0 = mft__vload(kt + (size_t)i * ld + u);
            a0 = mft__vfma(mft__vset1(x0[i]), k0, a0);
            a1 = mft__vfma(mft__vset1(x1[i]), k0, a1);
            a2 = mft__vfma(mft__vset1(x2[i]), k0, a2);
            a3 = mft__vfma(mft__vset1(x3[i]), k0, a3);
        }
        mft__vstore(s + u, mft__vmul(a0, vs));
        mft__vstore(s + lds + u, mft__vmul(a1, vs));
        mft__vstore(s + 2 * lds + u, mft__vmul(a2, vs));
        mft__vstore(s + 3 * lds + u, mft__vmul(a3, vs));
    }
    for (; u < n; u++)
        for (int j = 0; j < MFT__AR; j++) {
            float a = 0.0f;
            for (int i = 0; i < hs; i++) a += x[j][i] * kt[(size_t)i * ld + u];
            s[j * lds + u] = a * scale;
        }
}

/* out_j[i] = p_j . vt_i over n keys, for the rows of a block (forward: feature i of each output) */
static inline void mft__attn_pv(float *o, const float *p, size_t ldp, const float *vt, int n)
{
    int u = 0;
    float r0 = 0.0f, r1 = 0.0f, r2 = 0.0f, r3 = 0.0f;
    const float *p0 = p, *p1 = p + ldp, *p2 = p + 2 * ldp, *p3 = p + 3 * ldp;
#if MFT__VW > 1
    mft__vf a0 = mft__vset1(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (; u + MFT__VW <= n; u += MFT__VW) {
        mft__vf v = mft__vload(vt + u);
        a0 = mft__vfma(mft__vload(p0 + u), v, a0);
        a1 = mft__vfma(mft__vload(p1 + u), v, a1);
        a2 = mft__vfma(mft__vload(p2 + u), v, a2);
        a3 = mft__vfma(mft__vload(p3 + u), v, a3);
    }
    r0 = mft__vhsum(a0), r1 = mft__vhsum(a1), r2 = mft__vhsum(a2), r3 = mft__vhsum(a3);
#endif
    for (; u < n; u++) r0 += p0[u] * vt[u], r1 += p1[u] * vt[u], r2 += p2[u] * vt[u], r3 += p3[u] * vt[u];
    o[0] = r0, o[1] = r1, o[2] = r2, o[3] = r3;
}

/* backward, feature i of the head, along the n keys of a block in one pass:
   dkt_i += sum_j q_j[i] ds_j, dvt_i += sum_j do_j[i] p_j, and dq_j[i] = ds_j . kt_i */
static inline void mft__attn_dkv(float *dq, float *dkt, float *dvt, const float *kt, const float *ds, const float *p,
                                 size_t ldp, const float *qi, const float *doi, int n)
{
    int u = 0;
    float r0 = 0.0f, r1 = 0.0f, r2 = 0.0f, r3 = 0.0f;
    const float *d0 = ds, *d1 = ds + ldp, *d2 = ds + 2 * ldp, *d3 = ds + 3 * ldp;
    const float *p0 = p, *p1 = p + ldp, *p2 = p + 2 * ldp, *p3 = p + 3 * ldp;
#if MFT__VW > 1
    mft__vf a0 = mft__vset1(0.0f), a1 = a0, a2 = a0, a3 = a0;
    mft__vf q0 = mft__vset1(qi[0]), q1 = mft__vset1(qi[1]), q2 = mft__vset1(qi[2]), q3 = mft__vset1(qi[3]);
    mft__vf e0 = mft__vset1(doi[0]), e1 = mft__vset1(doi[1]), e2 = mft__vset1(doi[2]), e3 = mft__vset1(doi[3]);
    for (; u + MFT__VW <= n; u += MFT__VW) {
        mft__vf k = mft__vload(kt + u), x0 = mft__vload(d0 + u), x1 = mft__vload(d1 + u), x2 = mft__vload(d2 + u),
                x3 = mft__vload(d3 + u);
        a0 = mft__vfma(x0, k, a0), a1 = mft__vfma(x1, k, a1), a2 = mft__vfma(x2, k, a2), a3 = mft__vfma(x3, k, a3);
        mft__vf dk = mft__vfma(q0, x0, mft__vfma(q1, x1, mft__vfma(q2, x2, mft__vfma(q3, x3, mft__vload(dkt + u)))));
        mft__vstore(dkt + u, dk);
        mft__vf dv = mft__vload(dvt + u);
        dv = mft__vfma(e0, mft__vload(p0 + u), mft__vfma(e1, mft__vload(p1 + u), dv));
        dv = mft__vfma(e2, mft__vload(p2 + u), mft__vfma(e3, mft__vload(p3 + u), dv));
        mft__vstore(dvt + u, dv);
    }
    r0 = mft__vhsum(a0), r1 = mft__vhsum(a1), r2 = mft__vhsum(a2), r3 = mft__vhsum(a3);
#endif
    for (; u < n; u++) {
        r0 += d0[u] * kt[u], r1 += d1[u] * kt[u], r2 += d2[u] * kt[u], r3 += d3[u] * kt[u];
        dkt[u] += qi[0] * d0[u] + qi[1] * d1[u] + qi[2] * d2[u] + qi[3] * d3[u];
        dvt[u] += doi[0] * p0[u] + doi[1] * p1[u] + doi[2] * p2[u] + doi[3] * p3[u];
    }
    dq[0] = r0, dq[1] = r1, dq[2] = r2, dq[3] = r3;
}

/* kt (hs, ld) = the n rows of k (stride apart) transposed */
static void mft__attn_transpose(float *kt, size_t ld, const float *k, size_t stride, int n, int hs)
{
    for (int u = 0; u < n; u++)
        for (int i = 0; i < hs; i++) kt[(size_t)i * ld + u] = k[(size_t)u * stride + i];
}

/* and back: the n rows of k += kt^T */
static void mft__attn_transpose_add(float *k, size_t stride, const float *kt, size_t ld, int n, int hs)
{
    for (int u = 0; u < n; u++)
        for (int i = 0; i < hs; i++) k[(size_t)u * stride + i] += kt[(size_t)i * ld + u];
}

/* The rows of a transposed head are ld floats apart: T rounded up to 16 times an odd number.
   At a stride of a power of two (T = 1024: 4 KB) every row of kt falls in the same L1 set and
   the score loop, reading hs rows in turn, runs at a quarter of its speed. */
static size_t mft__attn_ld(int T) { return 16 * (2 * (((size_t)T + 31) / 32) + 1); }

/* The scratch of the attention kernels: one piece per (b, head) of kt, vt, dkt, dvt (hs rows
   each) and p, ds (MFT__AR rows each), ld floats a row; forward uses the first two and p. */
static size_t mft__attn_piece(int T, int hs) { return (4 * (size_t)hs + 2 * MFT__AR) * mft__attn_ld(T); }
static size_t mft__attn_ws(int B, int T, int NH, int hs) { return (size_t)B * NH * mft__attn_piece(T, hs); }

/* A block of query rows t..t+MFT__AR-1 (the last block may have fewer, nr: its missing rows
   repeat row t and are not written): their positions in the row (b), windows t0_j..t_j, and
   the block's keys lo..lo+n-1. */
typedef struct {
    int nr, lo, n, t0[MFT__AR], t[MFT__AR];
} mft__attn_blk;

static mft__attn_blk mft__attn_block(const int *pos, int b, int T, int t)
{
    mft__attn_blk k;
    k.nr = T - t < MFT__AR ? T - t : MFT__AR;
    for (int j = 0; j < MFT__AR; j++) {
        k.t[j] = t + (j < k.nr ? j : 0);
        k.t0[j] = pos ? k.t[j] - pos[(size_t)b * T + k.t[j]] : 0;
    }
    k.lo = k.t0[0]; /* windows start in order: a later row is in the same sequence or a later one */
    /* the range runs on to whole vectors where there are keys, so no loop ends in a scalar
       tail but at the end of the row; the keys past t get probability 0 */
    k.n = (t + k.nr - k.lo + MFT__VW - 1) / MFT__VW * MFT__VW;
    if (k.n > T - k.lo) k.n = T - k.lo;
    return k;
}

/* row j of p (ld apart) over the block's range: exp(s - shift_j) inside the window, 0 outside;
   returns the sum inside */
static float mft__attn_window(float *p, const mft__attn_blk *k, int j, float shift)
{
    int a = k->t0[j] - k->lo, e = k->t[j] - k->lo + 1;
    for (int u = 0; u < a; u++) p[u] = 0.0f;
    for (int u = e; u < k->n; u++) p[u] = 0.0f;
    return mft__vec_exp_sum(p + a, p + a, shift, e - a);
}

/* q (B,T,NH,hs), k v (B,T,KV,hs) -> out (B,T,NH,hs), lse (B,NH,T); ws is scratch (mft__attn_ws). Position
   t attends to t0..t, where t0 = t - pos[t] is the start of its own sequence (0 without pos):
   several examples packed in one row never see each other. The probabilities are not kept
   (L x B x NH x T x T floats would be 38% of a 135M model's activations at T 1024, and more
   than all the rest at T 2048): backward rebuilds each row from q, k and lse = log sum_u
   exp(s_u). A block's rows of scores are kept whole while they are used (4 x T floats, 16 KB
   at T 1024, in L1/L2), so the softmax is exact in one pass; FlashAttention's running maximum
   and rescaling exist for GPU tiles that cannot hold a row. */
static void mft__attention_fwd(float *out, float *lse, float *ws, const float *q, const float *k, const float *v,
                               const int *pos, int B, int T, int NH, int KV, int hs, int nt)
{
    int D = NH * hs, KVD = KV * hs, grp = NH / KV;
    float scale = 1.0f / sqrtf((float)hs);
    nt = mft__par_fma(nt, (double)B * NH * T * T * hs);
    MFT__PARFOR(nt)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t ld = mft__attn_ld(T), koff = (size_t)b * T * KVD + (size_t)(h / grp) * hs;
        float *kt = ws + (size_t)bh * mft__attn_piece(T, hs), *vt = kt + (size_t)hs * ld, *p = vt + (size_t)hs * ld;
        mft__attn_transpose(kt, ld, k + koff, (size_t)KVD, T, hs);
        mft__attn_transpose(vt, ld, v + koff, (size_t)KVD, T, hs);
        for (int t = 0; t < T; t += MFT__AR) {
            mft__attn_blk bl = mft__attn_block(pos, b, T, t);
            const float *x[MFT__AR];
            for (int j = 0; j < MFT__AR; j++) x[j] = q + ((size_t)b * T + bl.t[j]) * D + (size_t)h * hs;
            mft__attn_scores(p, ld, x, kt + bl.lo, ld, bl.n, hs, scale);
            for (int j = 0; j < MFT__AR; j++) {
                float *pj = p + j * ld;
                int a = bl.t0[j] - bl.lo;
                float mx = mft__vec_max(pj + a, bl.t[j] - bl.t0[j] + 1), sum = mft__attn_window(pj, &bl, j, mx);
                mft__vec_scale(pj + a, 1.0f / sum, bl.t[j] - bl.t0[j] + 1);
                if (j < bl.nr) lse[(size_t)bh * T + bl.t[j]] = mx + logf(sum);
            }
            for (int i = 0; i < hs; i++) {
                float o[MFT__AR];
                mft__attn_pv(o, p, ld, vt + (size_t)i * ld + bl.lo, bl.n);
                for (int j = 0; j < bl.nr; j++) out[((size_t)b * T + bl.t[j]) * D + (size_t)h * hs + i] = o[j];
            }
        }
    }
}

/* Accumulates dq (B,T,NH,hs), dk, dv (B,T,KV,hs) given out and lse of the forward pass; ws is
   scratch (mft__attn_ws). Each row's p_tu = exp(s_tu - lse_t) is rebuilt, and the softmax
   backward takes FlashAttention-2's identity sum_u p_tu dp_tu = do_t . o_t, so each block of
   rows is a few passes along its keys: dp_u = do_t . v_u, ds_u = p_u (dp_u - do_t . o_t) /
   sqrt(hs), then dq_t += sum_u ds_u k_u, dk_u += ds_u q_t, dv_u += p_u do_t. The query heads
   of a group all add into one dk and dv: each (b, head) keeps its own, transposed like k and
   v, and a second pass adds a group's into dk, dv in head order. So the work splits over
   B x NH pieces (not B x KV: 2 pieces for Qwen2.5-0.5B at B 1) and stays deterministic. */
static void mft__attention_bwd(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *out,
                               const float *lse, const float *q, const float *k, const float *v, const int *pos, int B,
                               int T, int NH, int KV, int hs, int nt)
{
    int D = NH * hs, KVD = KV * hs, grp = NH / KV;
    float scale = 1.0f / sqrtf((float)hs);
    size_t ld = mft__attn_ld(T), L = (size_t)hs * ld, piece = mft__attn_piece(T, hs);
    nt = mft__par_fma(nt, (double)B * NH * T * T * hs);
    MFT__PARFOR(nt)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        size_t koff = (size_t)b * T * KVD + (size_t)(h / grp) * hs;
        float *kt = ws + (size_t)bh * piece, *vt = kt + L, *dkt = vt + L, *dvt = dkt + L;
        float *p = dvt + L, *ds = p + MFT__AR * ld;
        mft__attn_transpose(kt, ld, k + koff, (size_t)KVD, T, hs);
        mft__attn_transpose(vt, ld, v + koff, (size_t)KVD, T, hs);
        memset(dkt, 0, 2 * L * sizeof(float));
        for (int t = 0; t < T; t += MFT__AR) {
            mft__attn_blk bl = mft__attn_block(pos, b, T, t);
            const float *x[MFT__AR], *dx[MFT__AR];
            float dsum[MFT__AR], qi[MFT__AR], di[MFT__AR], *dqj[MFT__AR];
            for (int j = 0; j < MFT__AR; j++) {
                size_t qoff = ((size_t)b * T + bl.t[j]) * D + (size_t)h * hs;
                x[j] = q + qoff;
                dx[j] = dout + qoff;
                dqj[j] = dq + qoff;
                dsum[j] = mft__dot(dx[j], out + qoff, hs);
            }
            mft__attn_scores(p, ld, x, kt + bl.lo, ld, bl.n, hs, scale);
            mft__attn_scores(ds, ld, dx, vt + bl.lo, ld, bl.n, hs, 1.0f);
            for (int j = 0; j < MFT__AR; j++) {
                float *pj = p + j * ld, *dj = ds + j * ld;
                mft__attn_window(pj, &bl, j, lse[(size_t)bh * T + bl.t[j]]);
                for (int u = 0; u < bl.n; u++) dj[u] = pj[u] * (dj[u] - dsum[j]) * scale;
            }
            for (int i = 0; i < hs; i++) {
                float dqi[MFT__AR];
                size_t o = (size_t)i * ld + bl.lo;
                for (int j = 0; j < MFT__AR; j++) {
                    qi[j] = j < bl.nr ? x[j][i] : 0.0f; /* a repeated row adds nothing to dk, dv */
                    di[j] = j < bl.nr ? dx[j][i] : 0.0f;
                }
                mft__attn_dkv(dqi, dkt + o, dvt + o, kt + o, ds, p, ld, qi, di, bl.n);
                for (int j = 0; j < bl.nr; j++) dqj[j][i] += dqi[j];
            }
        }
    }
    MFT__PARFOR(nt)
    for (int bk = 0; bk < B * KV; bk++) {
        int b = bk / KV, kvh = bk % KV;
        size_t koff = (size_t)b * T * KVD + (size_t)kvh * hs;
        for (int h = kvh * grp; h < (kvh + 1) * grp; h++) {
            const float *dkt = ws + ((size_t)b * NH + h) * piece + 2 * L;
            mft__attn_transpose_add(dk + koff, (size_t)KVD, dkt, ld, T, hs);
            mft__attn_transpose_add(dv + koff, (size_t)KVD, dkt + L, ld, T, hs);
        }
    }
}

/* ============================================================================================
   >>model
   The configuration, the sizes and the one-block memory layout, init, random weights, and
   the llama2.c checkpoints the weights come from and go to.
   ============================================================================================ */

MFT_API mft_status mft_config_check(const mft_config *c, mft_error *err)
{
    if (!c) return mft__fail(err, MFT_ERR_ARG, "config is NULL");
    /* generous ceilings that still keep every product below 2^62 */
    if (c->dim <= 0 || c->dim > (1 << 16))
        return mft__fail(err, MFT_ERR_FORMAT, "dim %d out of range (1..65536)", c->dim);
    if (c->hidden_dim <= 0 || c->hidden_dim > (1 << 18))
        return mft__fail(err, MFT_ERR_FORMAT, "hidden_dim %d out of range (1..262144)", c->hidden_dim);
    if (c->n_layers <= 0 || c->n_layers > 1024)
        return mft__fail(err, MFT_ERR_FORMAT, "n_layers %d out of range (1..1024)", c->n_layers);
    if (c->n_heads <= 0 || c->n_heads > c->dim)
        return mft__fail(err, MFT_ERR_FORMAT, "n_heads %d out of range (1..dim)", c->n_heads);
    if (c->n_kv_heads <= 0 || c->n_kv_heads > c->n_heads)
        return mft__fail(err, MFT_ERR_FORMAT, "n_kv_heads %d out of range (1..n_heads=%d)", c->n_kv_heads, c->n_heads);
    if (c->head_dim < 0 || c->head_dim > 4096)
        return mft__fail(err, MFT_ERR_FORMAT, "head_dim %d out of range (0 = dim / n_heads, or 1..4096)", c->head_dim);
    if (!c->head_dim && c->dim % c->n_heads)
        return mft__fail(err, MFT_ERR_FORMAT, "dim %d is not a multiple of n_heads %d (give head_dim)", c->dim,
                         c->n_heads);
    if (c->n_heads % c->n_kv_heads)
        return mft__fail(err, MFT_ERR_FORMAT, "n_heads %d is not a multiple of n_kv_heads %d", c->n_heads,
                         c->n_kv_heads);
    if (mft_head_dim(c) % 2)
        return mft__fail(err, MFT_ERR_FORMAT, "head size %d is odd: RoPE needs pairs", mft_head_dim(c));
    if ((double)c->n_heads * mft_head_dim(c) > (1 << 17))
        return mft__fail(err, MFT_ERR_FORMAT, "n_heads x head_dim = %d x %d is out of range", c->n_heads,
                         mft_head_dim(c));
    if (c->arch < MFT_ARCH_LLAMA || c->arch > MFT_ARCH_QWEN3)
        return mft__fail(err, MFT_ERR_FORMAT, "arch %d is not one of MFT_ARCH_*", c->arch);
    if ((c->qkv_bias != 0 && c->qkv_bias != 1) || (c->qk_norm != 0 && c->qk_norm != 1) ||
        (c->shared_classifier != 0 && c->shared_classifier != 1))
        return mft__fail(err, MFT_ERR_FORMAT, "qkv_bias, qk_norm and shared_classifier are 0 or 1");
    if (c->file_ctx < 0 || c->dtype < MFT_DTYPE_F32 || c->dtype > MFT_DTYPE_BF16)
        return mft__fail(err, MFT_ERR_FORMAT, "file_ctx %d or dtype %d out of range", c->file_ctx, c->dtype);
    if (c->rope_scaling == MFT_ROPE_LLAMA3) {
        if (!(c->rope_factor >= 1.0f && c->rope_factor < 1e4f) || !(c->rope_low_freq > 0.0f) ||
            !(c->rope_high_freq > c->rope_low_freq) || !(c->rope_high_freq < 1e4f) || c->rope_orig_ctx < 1)
            return mft__fail(err, MFT_ERR_FORMAT,
                             "llama3 rope scaling needs factor >= 1, 0 < low_freq_factor < high_freq_factor and an "
                             "original context (got %g, %g, %g, %d)",
                             (double)c->rope_factor, (double)c->rope_low_freq, (double)c->rope_high_freq,
                             c->rope_orig_ctx);
    } else if (c->rope_scaling != MFT_ROPE_PLAIN) {
        return mft__fail(err, MFT_ERR_FORMAT, "rope_scaling %d is not one of MFT_ROPE_*", c->rope_scaling);
    }
    if (c->vocab_size <= 0 || c->vocab_size > (1 << 22))
        return mft__fail(err, MFT_ERR_FORMAT, "vocab_size %d out of range (1..4194304)", c->vocab_size);
    if (c->seq_len <= 0 || c->seq_len > (1 << 20))
        return mft__fail(err, MFT_ERR_FORMAT, "seq_len %d out of range (1..1048576)", c->seq_len);
    if (!(c->norm_eps > 0.0f && c->norm_eps < 1.0f))
        return mft__fail(err, MFT_ERR_FORMAT, "norm_eps %g out of range (0, 1)", (double)c->norm_eps);
    if (!(c->rope_theta > 1.0f && c->rope_theta < 1e12f))
        return mft__fail(err, MFT_ERR_FORMAT, "rope_theta %g out of range", (double)c->rope_theta);
    return mft__ok(err);
}

MFT_API int mft_head_dim(const mft_config *c) { return c->head_dim ? c->head_dim : c->dim / c->n_heads; }

#define MFT__NT 17 /* tensor slots */

/* floats of each tensor slot, in checkpoint order: the 11 of llama2.c, wcls (0 when tied),
   then the features of other families (0 when absent) */
static void mft__tensor_sizes(const mft_config *c, size_t sz[MFT__NT])
{
    size_t D = (size_t)c->dim, F = (size_t)c->hidden_dim, L = (size_t)c->n_layers, V = (size_t)c->vocab_size;
    size_t hs = (size_t)mft_head_dim(c), QD = (size_t)c->n_heads * hs, KVD = (size_t)c->n_kv_heads * hs;
    size_t b = c->qkv_bias ? L : 0, qn = c->qk_norm ? L * hs : 0;
    size_t all[MFT__NT] = { V * D,  L * D,     L * QD * D, L * KVD * D, L * KVD * D, L * D * QD,
                            L * D,  L * F * D, L * D * F,  L * F * D,   D,           c->shared_classifier ? 0 : V * D,
                            b * QD, b * KVD,   b * KVD,    qn,          qn };
    memcpy(sz, all, sizeof all);
}

static const char *const mft__tensor_names[MFT__NT] = { "tok_emb", "rms_att", "wq", "wk",     "wv",        "wo",
                                                        "rms_ffn", "w1",      "w2", "w3",     "rms_final", "wcls",
                                                        "bq",      "bk",      "bv", "q_norm", "k_norm" };

MFT_API size_t mft_param_count(const mft_config *c)
{
    size_t sz[MFT__NT], n = 0;
    mft__tensor_sizes(c, sz);
    for (int i = 0; i < MFT__NT; i++) n += sz[i];
    return n;
}

MFT_API int mft_tensor_count(const mft_config *c)
{
    size_t sz[MFT__NT];
    int n = 0;
    mft__tensor_sizes(c, sz);
    for (int i = 0; i < MFT__NT; i++) n += sz[i] > 0;
    return n;
}

/* the i-th tensor that the model has (slots of size 0 are skipped) */
MFT_API mft_tensor_info mft_tensor_at(const mft_config *c, int i)
{
    mft_tensor_info ti = { 0, 0, 0 };
    size_t sz[MFT__NT], off = 0;
    mft__tensor_sizes(c, sz);
    for (int j = 0, k = 0; j < MFT__NT; off += sz[j++]) {
        if (!sz[j]) continue;
        if (k++ == i) {
            ti.name = mft__tensor_names[j];
            ti.offset = off;
            ti.numel = sz[j];
            return ti;
        }
    }
    return ti;
}

static void mft__point_params(mft_params *p, float *base, const mft_config *c)
{
    size_t sz[MFT__NT];
    float **slot[MFT__NT] = { &p->tok_emb, &p->rms_att, &p->wq, &p->wk,     &p->wv,        &p->wo,
                              &p->rms_ffn, &p->w1,      &p->w2, &p->w3,     &p->rms_final, &p->wcls,
                              &p->bq,      &p->bk,      &p->bv, &p->q_norm, &p->k_norm };
    mft__tensor_sizes(c, sz);
    for (int i = 0; i < MFT__NT; i++) {
        *slot[i] = sz[i] ? base : NULL;
        base += sz[i];
    }
    if (c->shared_classifier) p->wcls = p->tok_emb;
}

/* the layers share one slot of activations: checkpointing, or no backward pass to keep them for */
static int mft__one_slot(int flags) { return (flags & MFT_CHECKPOINT) || !(flags & MFT_TRAIN); }

/* The memory layout, written once: walks every buffer a model of this shape needs, in order,
   each 64-byte aligned. With m == NULL it only adds up the bytes; with m it also points the
   model's fields into base. mft_model_bytes and mft_model_init both call it, so the size and
   the carving cannot disagree. */
static size_t mft__layout(mft_model *m, char *base, const mft_config *c, int B, int T, int flags)
{
    size_t off = 0, D = (size_t)c->dim, F = (size_t)c->hidden_dim, L = (size_t)c->n_layers;
    size_t V = (size_t)c->vocab_size, hs = (size_t)mft_head_dim(c), KVD = (size_t)c->n_kv_heads * hs;
    size_t QD = (size_t)c->n_heads * hs, N = (size_t)B * T, S = (size_t)c->seq_len, NP = mft_param_count(c);
    int train = (flags & MFT_TRAIN) != 0, fwd = train || (flags & MFT_FORWARD), qn = c->qk_norm;
#define MFT__TAKE(field, nfloats, cond)                                                                                \
    do {                                                                                                               \
        size_t n_ = (cond) ? (size_t)(nfloats) : 0;                                                                    \
        if (m) (field) = n_ ? MFT__VOIDP(field)(base + off) : NULL;                                                    \
        off += (n_ * sizeof(float) + 63) & ~(size_t)63;                                                                \
    } while (0)
    MFT__TAKE(m->params, NP, 1);
    int own = train && !(flags & MFT_FROZEN); /* gradients and moments of the weights */
    MFT__TAKE(m->grads, NP, own);
    MFT__TAKE(m->adam_m, NP, own);
    MFT__TAKE(m->adam_v, NP, own);
    MFT__TAKE(m->rope_cos, S * hs, 1);
    MFT__TAKE(m->rope_sin, S * hs, 1);
    size_t big = N > V ? N : V; /* the largest size of any product of the model */
    big = big > F ? big : F;
    big = big > QD ? big : QD;
    big = big > D ? big : D;
    MFT__TAKE(m->gemm_ws, MFT__GEMM_SLOTS * mft__gemm_slot(big), fwd);
    MFT__TAKE(m->cls_rows, N, fwd); /* ints: as many bytes as floats */
    MFT__TAKE(m->cls_have, N, fwd);
    /* With MFT_CHECKPOINT only the residual stream keeps every layer; the rest holds one layer,
       which backward recomputes layer by layer from res. Without MFT_TRAIN nothing is kept for a
       backward pass: one layer's worth is reused by every layer. */
    size_t Ls = mft__one_slot(flags) ? 1 : L;
    MFT__TAKE(m->a.res, (L + 1) * N * D, fwd);
    MFT__TAKE(m->a.res_mid, Ls * N * D, fwd);
    MFT__TAKE(m->a.xn_att, Ls * N * D, fwd);
    MFT__TAKE(m->a.rs_att, Ls * N, fwd);
    MFT__TAKE(m->a.q, Ls * N * QD, fwd);
    MFT__TAKE(m->a.k, Ls * N * KVD, fwd);
    MFT__TAKE(m->a.v, Ls * N * KVD, fwd);
    MFT__TAKE(m->a.att_lse, Ls * (size_t)B * c->n_heads * T, fwd);
    MFT__TAKE(m->a.att_ws, mft__attn_ws(B, T, c->n_heads, (int)hs), fwd);
    MFT__TAKE(m->a.att_out, Ls * N * QD, fwd);
    MFT__TAKE(m->a.q_raw, Ls * N * QD, fwd && qn);
    MFT__TAKE(m->a.k_raw, Ls * N * KVD, fwd && qn);
    MFT__TAKE(m->a.rs_q, Ls * N * c->n_heads, fwd && qn);
    MFT__TAKE(m->a.rs_k, Ls * N * c->n_kv_heads, fwd && qn);
    MFT__TAKE(m->a.xn_ffn, Ls * N * D, fwd);
    MFT__TAKE(m->a.rs_ffn, Ls * N, fwd);
    MFT__TAKE(m->a.h1, Ls * N * F, fwd);
    MFT__TAKE(m->a.h3, Ls * N * F, fwd);
    MFT__TAKE(m->a.hg, Ls * N * F, fwd);
    MFT__TAKE(m->a.xn_final, N * D, fwd);
    MFT__TAKE(m->a.rs_final, N, fwd);
    MFT__TAKE(m->a.logits, N * V, fwd);
    MFT__TAKE(m->a.lse, N, fwd);
    MFT__TAKE(m->a.inputs, N, fwd);
    MFT__TAKE(m->a.pos, N, fwd);
    MFT__TAKE(m->a.targets, N, fwd);
    MFT__TAKE(m->a.weights, N, fwd);
    MFT__TAKE(m->d.dres, N * D, train);
    MFT__TAKE(m->d.dxn, N * D, train);
    MFT__TAKE(m->d.datt_out, N * QD, train);
    MFT__TAKE(m->d.dq, N * QD, train);
    MFT__TAKE(m->d.dq_raw, N * QD, train && qn);
    MFT__TAKE(m->d.dk_raw, N * KVD, train && qn);
    MFT__TAKE(m->d.dk, N * KVD, train);
    MFT__TAKE(m->d.dv, N * KVD, train);
    MFT__TAKE(m->d.dh1, N * F, train);
    MFT__TAKE(m->d.dh3, N * F, train);
    MFT__TAKE(m->d.dhg, N * F, train);
    int gen = (flags & MFT_GENERATE) != 0;
    MFT__TAKE(m->s.kcache, L * S * KVD, gen);
    MFT__TAKE(m->s.vcache, L * S * KVD, gen);
    MFT__TAKE(m->s.x, D, gen);
    MFT__TAKE(m->s.xn, D, gen);
    MFT__TAKE(m->s.q, QD, gen);
    MFT__TAKE(m->s.att_out, QD, gen);
    MFT__TAKE(m->s.tmp, D, gen);
    MFT__TAKE(m->s.h1, F, gen);
    MFT__TAKE(m->s.h3, F, gen);
    MFT__TAKE(m->s.att, (size_t)c->n_heads * S + (size_t)c->n_kv_heads, gen); /* + KV: scratch in decode */
    MFT__TAKE(m->s.logits, V, gen);
#undef MFT__TAKE
    return off;
}

static mft_status mft__check_shape(const mft_config *c, int B, int T, int flags, mft_error *err)
{
    mft_status s = mft_config_check(c, err);
    if (s) return s;
    if (flags & (MFT_FORWARD | MFT_TRAIN)) {
        if (B <= 0 || T <= 0)
            return mft__fail(err, MFT_ERR_ARG, "batch B=%d and positions T=%d must be positive", B, T);
        if (T > c->seq_len)
            return mft__fail(err, MFT_ERR_ARG, "T=%d is longer than the model's context (seq_len %d)", T, c->seq_len);
    }
    /* positions and (row, head) pairs are counted in int by the kernels */
    if ((double)B * T > 2147483647.0 || (double)B * c->n_heads * T > 2147483647.0)
        return mft__fail(err, MFT_ERR_ARG, "B=%d x T=%d is too many positions", B, T);
    /* every buffer's size in double: refuse what size_t arithmetic could not hold */
    double D = c->dim, F = c->hidden_dim, L = c->n_layers, V = c->vocab_size, NH = c->n_heads, S = c->seq_len;
    double hs = mft_head_dim(c), KV = c->n_kv_heads, QD = NH * hs, KVD = KV * hs, N = (double)B * T;
    double P = 2 * V * D + L * (2 * D * QD + 2 * D * KVD + 3 * D * F + 2 * D + QD + 2 * KVD + 2 * hs);
    double floats = 4 * P + 2 * S * hs + L * B * NH * (double)T + B * NH * (4 * hs + 2 * MFT__AR) * ((double)T + 48) +
                    L * N * (5 * D + 4 * QD + 4 * KVD + 3 * F + NH) + N * (V + 6 * D + 2 * QD + 2 * KVD + 3 * F + 4) +
                    2 * L * S * KVD + NH * S + V + 5 * D + 2 * QD + 2 * F + MFT__GEMM_SLOTS * (double)MFT__GEMM_SLOT;
    if (floats * 4.0 > 4.0e18)
        return mft__fail(err, MFT_ERR_ARG,
                         "a model of this shape (B=%d, T=%d) would need more memory than can be addressed", B, T);
    return MFT_OK;
}

/* MFT_CONTEXT: the model serves T positions (its KV cache and RoPE tables), not the whole
   context its file declares; file_ctx keeps that for the writers */
static mft_config mft__served(const mft_config *c, int T, int flags)
{
    mft_config sc = *c;
    if ((flags & MFT_CONTEXT) && T > 0 && T < c->seq_len) {
        if (!sc.file_ctx) sc.file_ctx = c->seq_len;
        sc.seq_len = T;
    }
    return sc;
}

MFT_API size_t mft_model_bytes(const mft_config *c, int B, int T, int flags)
{
    if (!c) return 0;
    mft_config sc = mft__served(c, T, flags);
    if (mft__check_shape(&sc, B, T, flags, NULL)) return 0;
    return mft__layout(NULL, NULL, &sc, B, T, flags) + 64; /* + 64: room to align the start */
}

/* The caller's block for an object of need bytes (an mft_*_bytes figure, which holds 64 of
   slack for the alignment): its start aligned to 64 bytes and zeroed, or NULL (*s =
   MFT_ERR_NOMEM) when it is too small. */
static char *mft__block(void *mem, size_t mem_bytes, size_t need, mft_status *s, mft_error *err)
{
    if (!mem || mem_bytes < need) {
        *s = mft__fail(err, MFT_ERR_NOMEM, "memory block of %zu bytes is smaller than the %zu needed", mem_bytes, need);
        return NULL;
    }
    char *base = (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
    memset(base, 0, need - 64);
    return base;
}

MFT_API mft_status mft_model_init(mft_model *m, const mft_config *c, int B, int T, int flags, void *mem,
                                  size_t mem_bytes, mft_error *err)
{
    if (!m || !c) return mft__fail(err, MFT_ERR_ARG, "model or config is NULL");
    mft_config cfg = mft__served(c, T, flags); /* c may point into *m, which is cleared next */
    c = &cfg;
    memset(m, 0, sizeof *m);
    mft_status s = mft__check_shape(c, B, T, flags, err);
    if (s) return s;
    if (flags & MFT_TRAIN) flags |= MFT_FORWARD;
    char *base = mft__block(mem, mem_bytes, mft_model_bytes(c, B, T, flags), &s, err);
    if (!base) return s;
    m->cfg = *c;
    m->B = (flags & MFT_FORWARD) ? B : 0;
    m->T = (flags & MFT_FORWARD) ? T : 0;
    m->flags = flags;
    m->n_params = mft_param_count(c);
    mft__layout(m, base, c, B, T, flags);
    mft__point_params(&m->w, m->params, c);
    if (m->grads) mft__point_params(&m->g, m->grads, c);
    mft__rope_tables(m->rope_cos, m->rope_sin, c);
    m->arena = mem;
    m->arena_bytes = mem_bytes;
    return mft__ok(err);
}

MFT_API void mft_model_free(mft_model *m)
{
    if (!m) return;
    if (m->owns_arena) MFT_FREE(m->arena);
    memset(m, 0, sizeof *m);
}

/* xorshift64*: small, fast, good enough for initialisation and sampling */
static uint64_t mft__rand_u64(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
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
        if (!strcmp(ti.name, "rms_att") || !strcmp(ti.name, "rms_ffn") || !strcmp(ti.name, "rms_final") ||
            !strcmp(ti.name, "q_norm") || !strcmp(ti.name, "k_norm")) {
            for (size_t j = 0; j < ti.numel; j++) p[j] = 1.0f;
        } else {
            /* projections that write into the residual stream are scaled down by sqrt(2L), as
               GPT-2 does, so the stream's variance does not grow with depth */
            int resid = !strcmp(ti.name, "wo") || !strcmp(ti.name, "w2");
            mft__randn(p, ti.numel, resid ? 0.02f / sqrtf(2.0f * c->n_layers) : 0.02f, &s);
        }
    }
}


/* ---- llama2.c checkpoints -------------------------------------------------------------------
   Version 0: int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative:
   separate classifier), seq_len; the tensors in mft_params order up to rms_final;
   freq_cis_real and freq_cis_imag (seq_len x hs/2 each, unused: RoPE is computed); then wcls
   if separate. Version 1: uint32 magic "ak42", int32 version 1, the same 7 int32, uint8
   shared_classifier, zero padding to 256 bytes; then all norms first (rms_att, rms_ffn,
   rms_final), tok_emb, wq, wk, wv, wo, w1, w2, w3, and wcls if separate. */

#define MFT__AK42 0x616b3432u

typedef struct mft__ckpt {
    mft_config cfg;
    int version;
    uint64_t header_bytes;
} mft__ckpt;

static mft_status mft__read_header(mft__src *f, mft__ckpt *h, mft_error *err)
{
    int32_t hd[7];
    uint32_t magic;
    mft_status s;
    memset(h, 0, sizeof *h);
    if (f->size < 28)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' (%llu bytes) is too small to be a llama2.c checkpoint", f->name,
                         (unsigned long long)f->size);
    if ((s = mft__src_read(f, &magic, 4, err))) return s;
    if (magic == MFT__AK42) {
        int32_t ver;
        uint8_t shared;
        if (f->size < 256)
            return mft__fail(err, MFT_ERR_FORMAT, "'%s' has the ak42 magic but is shorter than its 256-byte header",
                             f->name);
        if ((s = mft__src_read(f, &ver, 4, err)) || (s = mft__src_read(f, hd, 28, err)) ||
            (s = mft__src_read(f, &shared, 1, err)))
            return s;
        if (ver == 2)
            return mft__fail(err, MFT_ERR_FORMAT,
                             "'%s' is a llama2.c version 2 (int8 quantized) checkpoint; maskft trains fp32 weights: "
                             "export version 0 or 1",
                             f->name);
        if (ver != 1)
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': unknown llama2.c checkpoint version %d", f->name, (int)ver);
        if (shared > 1)
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': shared_classifier flag is %d, not 0 or 1", f->name, shared);
        h->version = 1;
        h->header_bytes = 256;
        h->cfg.shared_classifier = shared;
        h->cfg.vocab_size = hd[5];
    } else {
        hd[0] = (int32_t)magic;
        if ((s = mft__src_read(f, hd + 1, 24, err))) return s;
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
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is not a llama2.c checkpoint (v%d header: %s)", f->name, h->version,
                         e2.msg);
    /* the size the header implies must be the file size, to the byte */
    double expect = (double)h->header_bytes + 4.0 * (double)mft_param_count(&h->cfg);
    if (h->version == 0) expect += 4.0 * (double)h->cfg.seq_len * (h->cfg.dim / h->cfg.n_heads);
    if (expect != (double)f->size) {
        const mft_config *c = &h->cfg;
        return mft__fail(err, MFT_ERR_FORMAT,
                         "'%s' has %llu bytes but its v%d header (dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, "
                         "seq %d) implies %.0f: %s",
                         f->name, (unsigned long long)f->size, h->version, c->dim, c->hidden_dim, c->n_layers,
                         c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len, expect,
                         (double)f->size < expect ? "truncated" : "trailing bytes or not a llama2.c checkpoint");
    }
    /* the context a model is used with: the header's, at most MFT_MAX_CONTEXT (as for the other
       formats). A version-1 file's size does not bound its seq_len; the KV cache and the RoPE
       tables would be seq_len long. Writers put the header's value back (file_ctx). */
    if (h->cfg.seq_len > MFT_MAX_CONTEXT) {
        h->cfg.file_ctx = h->cfg.seq_len;
        h->cfg.seq_len = MFT_MAX_CONTEXT;
    }
    return MFT_OK;
}

/* the first eight bytes of a source are a training checkpoint's magic */
static int mft__is_ckpt(mft__src *f)
{
    char magic[8];
    int yes = f->size >= 8 && !mft__src_read(f, magic, 8, NULL) && !memcmp(magic, "MFTCKPT2", 8);
    mft__src_seek(f, 0, NULL);
    return yes;
}
static mft_status mft__ckpt_model(mft__src *f, mft_config *c, mft_model *m,
                                  mft_error *err); /* (training checkpoints) */

static mft_status mft__model_config(mft__src *f, mft_config *c, mft_error *err)
{
    mft__ckpt h;
    if (!c) return mft__fail(err, MFT_ERR_ARG, "config is NULL");
    if (mft__is_ckpt(f)) return mft__ckpt_model(f, c, NULL, err);
    mft_status s = mft__read_header(f, &h, err);
    if (!s) *c = h.cfg;
    return s;
}

MFT_API mft_status mft_model_config(const char *path, mft_config *c, mft_error *err)
{
    mft__src f;
#ifndef MFT_NO_TEXT
    if (path && mft__is_hf_dir(path)) {
        if (!c) return mft__fail(err, MFT_ERR_ARG, "config is NULL");
        mft_status s = mft__hf_open_dir(NULL, path, 0, 0, 0, c, err);
        return s ? s : mft__ok(err);
    }
#endif
    mft_status s = mft__src_open(&f, path, err);
    if (s) return s;
#ifndef MFT_NO_TEXT
    if (mft__is_gguf(&f)) {
        s = c ? mft__gguf_model(NULL, &f, 0, 0, 0, c, err) : mft__fail(err, MFT_ERR_ARG, "config is NULL");
        mft__src_close(&f);
        return s ? s : mft__ok(err);
    }
#endif
    s = mft__model_config(&f, c, err);
    mft__src_close(&f);
    return s ? s : mft__ok(err);
}
MFT_API mft_status mft_model_config_from_memory(const void *data, size_t size, mft_config *c, mft_error *err)
{
    mft__src f;
    if (!data) return mft__fail(err, MFT_ERR_ARG, "mft_model_config_from_memory: NULL data");
    mft__src_memory(&f, data, size);
#ifndef MFT_NO_TEXT
    if (mft__is_gguf(&f)) {
        mft_status s = c ? mft__gguf_model(NULL, &f, 0, 0, 0, c, err) : mft__fail(err, MFT_ERR_ARG, "config is NULL");
        return s ? s : mft__ok(err);
    }
#endif
    mft_status s = mft__model_config(&f, c, err);
    return s ? s : mft__ok(err);
}

/* the first non-finite weight: its tensor's name and index there (1), or 0 when there is none */
static int mft__first_nonfinite(const mft_model *m, const char **name, size_t *at)
{
    const mft_config *c = &m->cfg;
    for (int i = 0; i < mft_tensor_count(c); i++) {
        mft_tensor_info ti = mft_tensor_at(c, i);
        for (size_t j = 0; j < ti.numel; j++)
            if (!isfinite(m->params[ti.offset + j])) {
                *name = ti.name;
                *at = j;
                return 1;
            }
    }
    return 0;
}

/* a NaN in the weights would make every later result silently meaningless */
static mft_status mft__check_finite(const mft_model *m, const char *where, mft_error *err)
{
    const char *name;
    size_t j;
    if (!mft__first_nonfinite(m, &name, &j)) return MFT_OK;
    return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s holds a non-finite value at element %zu", where, name, j);
}

/* no writer saves a model with a NaN or Inf in it: every program that read it would go wrong */
static mft_status mft__savable(const mft_model *m, const char *path, mft_error *err)
{
    const char *name;
    size_t j;
    if (!mft__first_nonfinite(m, &name, &j)) return MFT_OK;
    return mft__fail(err, MFT_ERR_NONFINITE, "'%s' not written: tensor %s holds a non-finite value at element %zu",
                     path, name, j);
}

static mft_status mft__load_weights(mft_model *m, mft__src *f, mft_error *err)
{
    mft__ckpt h;
    if (!m || !m->params) return mft__fail(err, MFT_ERR_STATE, "model is not initialised");
    const mft_config *c = &m->cfg;
    int ckpt = mft__is_ckpt(f);
    mft_status s = ckpt ? mft__ckpt_model(f, &h.cfg, NULL, err) : mft__read_header(f, &h, err);
    if (s) return s;
    if (h.cfg.dim != c->dim || h.cfg.hidden_dim != c->hidden_dim || h.cfg.n_layers != c->n_layers ||
        h.cfg.n_heads != c->n_heads || h.cfg.n_kv_heads != c->n_kv_heads || h.cfg.vocab_size != c->vocab_size ||
        (h.cfg.file_ctx ? h.cfg.file_ctx : h.cfg.seq_len) != (c->file_ctx ? c->file_ctx : c->seq_len) ||
        h.cfg.shared_classifier != c->shared_classifier || (ckpt && mft_param_count(&h.cfg) != mft_param_count(c)))
        return mft__fail(err, MFT_ERR_ARG, "'%s' has a different shape than the model it is loaded into", f->name);
    if (ckpt) return mft__ckpt_model(f, &h.cfg, m, err);
    size_t sz[MFT__NT];
    mft__tensor_sizes(c, sz);
    const mft_params *w = &m->w;
    s = mft__src_seek(f, h.header_bytes, err);
    if (!s && h.version == 0) {
        size_t core = 0;
        for (int i = 0; i < 11; i++) core += sz[i];
        s = mft__src_read(f, m->params, 4 * (uint64_t)core, err);
        uint64_t ctx = (uint64_t)(h.cfg.file_ctx ? h.cfg.file_ctx : h.cfg.seq_len); /* the freq_cis rows */
        if (!s) s = mft__src_seek(f, f->pos + 4 * ctx * (uint64_t)(c->dim / c->n_heads), err);
        if (!s && !c->shared_classifier) s = mft__src_read(f, w->wcls, 4 * (uint64_t)sz[11], err);
    } else if (!s) {
        float *order[12] = { w->rms_att, w->rms_ffn, w->rms_final, w->tok_emb, w->wq, w->wk,
                             w->wv,      w->wo,      w->w1,        w->w2,      w->w3, w->wcls };
        size_t n[12] = { sz[1], sz[6], sz[10], sz[0], sz[2], sz[3], sz[4], sz[5], sz[7], sz[8], sz[9], sz[11] };
        for (int i = 0; i < 12 && !s; i++)
            if (n[i]) s = mft__src_read(f, order[i], 4 * (uint64_t)n[i], err);
    }
    if (s) return s;
    return mft__check_finite(m, f->name, err);
}

MFT_API mft_status mft_model_load_weights(mft_model *m, const char *path, mft_error *err)
{
    mft__src f;
    mft_status s = mft__src_open(&f, path, err);
    if (s) return s;
    s = mft__load_weights(m, &f, err);
    mft__src_close(&f);
    return s ? s : mft__ok(err);
}

MFT_API mft_status mft_model_load_weights_from_memory(mft_model *m, const void *data, size_t size, mft_error *err)
{
    mft__src f;
    if (!data) return mft__fail(err, MFT_ERR_ARG, "mft_model_load_weights_from_memory: NULL data");
    mft__src_memory(&f, data, size);
    mft_status s = mft__load_weights(m, &f, err);
    return s ? s : mft__ok(err);
}

/* read the config, allocate one block, init, load */
static mft_status mft__model_open(mft_model *m, mft__src *f, int B, int T, int flags, mft_error *err)
{
    mft_config c;
    if (!m) return mft__fail(err, MFT_ERR_ARG, "model is NULL");
    memset(m, 0, sizeof *m);
    mft_status s = mft__model_config(f, &c, err);
    if (s) return s;
    if (T > c.seq_len)
        return mft__fail(err, MFT_ERR_ARG, "T=%d is longer than the model's context (seq_len %d)", T, c.seq_len);
    s = mft__check_shape(&c, B, T, flags, err);
    if (s) return s;
    size_t bytes = mft_model_bytes(&c, B, T, flags);
    void *mem = MFT_MALLOC(bytes);
    if (!mem) return mft__fail(err, MFT_ERR_NOMEM, "cannot allocate %zu bytes for the model", bytes);
    s = mft_model_init(m, &c, B, T, flags, mem, bytes, err);
    if (!s) {
        m->owns_arena = 1;
        s = mft__src_seek(f, 0, err);
        if (!s) s = mft__load_weights(m, f, err);
    }
    if (s) {
        if (m->arena)
            mft_model_free(m);
        else
            MFT_FREE(mem);
        return s;
    }
    return MFT_OK;
}

MFT_API mft_status mft_model_open(mft_model *m, const char *path, int B, int T, int flags, mft_error *err)
{
    mft__src f;
    if (!m) return mft__fail(err, MFT_ERR_ARG, "model is NULL");
    memset(m, 0, sizeof *m);
#ifndef MFT_NO_TEXT
    if (path && mft__is_hf_dir(path)) {
        mft_status s = mft__hf_open_dir(m, path, B, T, flags, NULL, err);
        return s ? s : mft__ok(err);
    }
#endif
    mft_status s = mft__src_open(&f, path, err);
    if (s) return s;
#ifndef MFT_NO_TEXT
    if (mft__is_gguf(&f))
        s = mft__gguf_model(m, &f, B, T, flags, NULL, err);
    else
#endif
        s = mft__model_open(m, &f, B, T, flags, err);
    mft__src_close(&f);
    return s ? s : mft__ok(err);
}
MFT_API mft_status mft_model_open_from_memory(mft_model *m, const void *data, size_t size, int B, int T, int flags,
                                              mft_error *err)
{
    mft__src f;
    if (!m) return mft__fail(err, MFT_ERR_ARG, "model is NULL");
    /* cleared before anything can fail: a failed open frees what m holds */
    memset(m, 0, sizeof *m);
    if (!data) return mft__fail(err, MFT_ERR_ARG, "mft_model_open_from_memory: NULL data");
    mft__src_memory(&f, data, size);
    mft_status s;
#ifndef MFT_NO_TEXT
    if (mft__is_gguf(&f))
        s = mft__gguf_model(m, &f, B, T, flags, NULL, err);
    else
#endif
        s = mft__model_open(m, &f, B, T, flags, err);
    return s ? s : mft__ok(err);
}

MFT_API mft_status mft_model_save(const mft_model *m, const char *path, mft_error *err)
{
    if (!m || !m->params || !path) return mft__fail(err, MFT_ERR_ARG, "mft_model_save: NULL argument");
    const mft_config *c = &m->cfg;
    if (c->qkv_bias || c->qk_norm || c->rope_scaling || mft_head_dim(c) * c->n_heads != c->dim)
        return mft__fail(err, MFT_ERR_ARG,
                         "a llama2.c checkpoint holds a plain llama model: this one has %s; write a Hugging Face "
                         "folder or a GGUF file",
                         c->qkv_bias       ? "q/k/v biases"
                         : c->qk_norm      ? "q/k norms"
                         : c->rope_scaling ? "rope scaling"
                                           : "a head_dim other than dim / n_heads");
    mft_status st = mft__savable(m, path, err);
    if (st) return st;
    char *tmp;
    FILE *f = mft__tmp_create(path, &tmp, &st, err);
    if (!f) return st;
    int ctx = c->file_ctx > c->seq_len ? c->file_ctx : c->seq_len; /* the context the model came with */
    int32_t hd[7] = { c->dim,     c->hidden_dim, c->n_layers,
                      c->n_heads, c->n_kv_heads, c->shared_classifier ? c->vocab_size : -c->vocab_size,
                      ctx };
    size_t sz[MFT__NT], core = 0;
    mft__tensor_sizes(c, sz);
    for (int i = 0; i < 11; i++) core += sz[i];
    int ok = fwrite(hd, 4, 7, f) == 7 && fwrite(m->params, sizeof(float), core, f) == core;
    /* freq_cis tables: llama2.c's run.c skips over them, so they must be there */
    int hs = c->dim / c->n_heads;
    for (int part = 0; part < 2 && ok; part++)
        for (int p = 0; p < ctx && ok; p++)
            for (int i = 0; i < hs / 2 && ok; i++) {
                double a = p * pow((double)c->rope_theta, -2.0 * i / hs);
                float v = (float)(part ? sin(a) : cos(a));
                ok = fwrite(&v, 4, 1, f) == 1;
            }
    if (ok && !c->shared_classifier) ok = fwrite(m->w.wcls, sizeof(float), sz[11], f) == sz[11];
    return mft__tmp_commit(f, tmp, path, ok, err);
}

/* ============================================================================================
   >>lora
   Low-rank adapters on a projection y = x W^T (W: out x in), A (r, in), B (out, r), s = alpha/r:
       forward    u = s x A^T (N, r), kept        y += u B^T
       backward   dB += dy^T u                    e = s dy B (N, r)
                  dA += e^T x                     dx += e A
   every product one of the matmul kernels above, so the adapters run at the speed of the rest.
   One block holds, per layer and target, A then B (the order of the PyTorch fixture), their
   gradients and AdamW moments, the kept u of every target, and a scratch row block.
   ============================================================================================ */

MFT_API void mft_lora_shape(const mft_config *c, int target, int *in, int *out)
{
    int D = c->dim, F = c->hidden_dim, hs = mft_head_dim(c), QD = c->n_heads * hs, KVD = c->n_kv_heads * hs;
    static const char is_in_d[MFT_LORA_N] = { 1, 1, 1, 0, 1, 0, 1 };
    int o[MFT_LORA_N] = { QD, KVD, KVD, D, F, D, F };
    *in = is_in_d[target] ? D : target == MFT_LORA_O ? QD : F;
    *out = o[target];
}

/* floats of one layer's adapters, and where target t's A begins inside the layer */
static size_t mft__lora_layer(const mft_config *c, int r, int upto)
{
    size_t n = 0;
    for (int t = 0; t < upto; t++) {
        int in, out;
        mft_lora_shape(c, t, &in, &out);
        n += (size_t)r * (size_t)(in + out);
    }
    return n;
}

static float *mft__lora_at(const mft_lora *lo, const mft_config *c, int l, int t, int grads, int b)
{
    int in, out;
    mft_lora_shape(c, t, &in, &out);
    size_t off = (size_t)l * mft__lora_layer(c, lo->rank, MFT_LORA_N) + mft__lora_layer(c, lo->rank, t);
    return (grads ? lo->grads : lo->params) + off + (b ? (size_t)lo->rank * in : 0);
}

MFT_API float *mft_lora_a(const mft_lora *lo, const mft_config *c, int l, int t, int grads)
{
    return mft__lora_at(lo, c, l, t, grads, 0);
}

MFT_API float *mft_lora_b(const mft_lora *lo, const mft_config *c, int l, int t, int grads)
{
    return mft__lora_at(lo, c, l, t, grads, 1);
}

/* the block: params, grads, two moments, u, tmp; sizes in floats rounded to 64 bytes */
static size_t mft__lora_layout(mft_lora *lo, char *base, const mft_config *c, int r, int B, int T)
{
    size_t P = (size_t)c->n_layers * mft__lora_layer(c, r, MFT_LORA_N), N = (size_t)B * T, off = 0, wmax = 0;
    for (int t = 0; t < MFT_LORA_N; t++) {
        int in, out;
        mft_lora_shape(c, t, &in, &out);
        if ((size_t)out > wmax) wmax = (size_t)out;
    }
    size_t n[6] = { P, P, P, P, (size_t)c->n_layers * MFT_LORA_N * N * r, N * wmax };
    float **f[6] = { NULL, NULL, NULL, NULL, NULL, NULL };
    if (lo) {
        f[0] = &lo->params, f[1] = &lo->grads, f[2] = &lo->adam_m, f[3] = &lo->adam_v;
        f[4] = &lo->u, f[5] = &lo->tmp;
        lo->n_params = P;
    }
    for (int i = 0; i < 6; i++) {
        if (lo) *f[i] = (float *)(void *)(base + off);
        off += (n[i] * sizeof(float) + 63) & ~(size_t)63;
    }
    return off;
}

static mft_status mft__lora_check(const mft_config *c, int rank, float alpha, int B, int T, mft_error *err)
{
    mft_status s = mft_config_check(c, err);
    if (s) return s;
    int in, out, mn = c->dim;
    for (int t = 0; t < MFT_LORA_N; t++) {
        mft_lora_shape(c, t, &in, &out);
        mn = in < mn ? in : out < mn ? out : mn;
    }
    if (rank < 1 || rank > mn)
        return mft__fail(err, MFT_ERR_ARG, "LoRA rank %d: give 1 to %d (the narrowest projection)", rank, mn);
    if (!(alpha > 0.0f) || !isfinite(alpha))
        return mft__fail(err, MFT_ERR_ARG, "LoRA alpha %g must be finite and > 0", (double)alpha);
    if (B <= 0 || T <= 0 || (double)B * T * c->n_layers * (int)MFT_LORA_N * rank > 1e12)
        return mft__fail(err, MFT_ERR_ARG, "LoRA capacity %d x %d is out of range", B, T);
    return MFT_OK;
}

MFT_API size_t mft_lora_bytes(const mft_config *c, int rank, int B, int T)
{
    if (mft__lora_check(c, rank, 1.0f, B, T, NULL)) return 0;
    return mft__lora_layout(NULL, NULL, c, rank, B, T) + 64;
}

MFT_API mft_status mft_lora_init(mft_lora *lo, const mft_config *c, int rank, float alpha, int B, int T, uint64_t seed,
                                 void *mem, size_t mem_bytes, mft_error *err)
{
    if (!lo || !c) return mft__fail(err, MFT_ERR_ARG, "mft_lora_init: NULL argument");
    memset(lo, 0, sizeof *lo);
    mft_status s = mft__lora_check(c, rank, alpha, B, T, err);
    if (s) return s;
    char *base = mft__block(mem, mem_bytes, mft_lora_bytes(c, rank, B, T), &s, err);
    if (!base) return s;
    mft__lora_layout(lo, base, c, rank, B, T);
    lo->rank = rank;
    lo->alpha = alpha;
    lo->scale = alpha / (float)rank;
    lo->n_layers = c->n_layers;
    lo->B = B;
    lo->T = T;
    lo->arena = mem;
    lo->arena_bytes = mem_bytes;
    uint64_t rng = seed ? seed : 1;
    for (int l = 0; l < c->n_layers; l++)
        for (int t = 0; t < MFT_LORA_N; t++) { /* A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0 */
            int in, out;
            mft_lora_shape(c, t, &in, &out);
            float *A = mft_lora_a(lo, c, l, t, 0), bound = 1.0f / sqrtf((float)in);
            for (size_t i = 0; i < (size_t)rank * in; i++) A[i] = (2.0f * mft__rand_f32(&rng) - 1.0f) * bound;
        }
    return mft__ok(err);
}

MFT_API mft_status mft_lora_open(mft_lora *lo, const mft_config *c, int rank, float alpha, int B, int T, uint64_t seed,
                                 mft_error *err)
{
    if (!lo || !c) return mft__fail(err, MFT_ERR_ARG, "mft_lora_open: NULL argument");
    memset(lo, 0, sizeof *lo);
    mft_status s = mft__lora_check(c, rank, alpha, B, T, err);
    if (s) return s;
    size_t need = mft_lora_bytes(c, rank, B, T);
    void *mem = MFT_MALLOC(need);
    if (!mem) return mft__fail(err, MFT_ERR_NOMEM, "out of memory for %zu bytes of LoRA adapters", need);
    s = mft_lora_init(lo, c, rank, alpha, B, T, seed, mem, need, err);
    if (s) {
        MFT_FREE(mem);
        return s;
    }
    lo->owns_arena = 1;
    return MFT_OK;
}

MFT_API void mft_lora_free(mft_lora *lo)
{
    if (!lo) return;
    if (lo->owns_arena) MFT_FREE(lo->arena);
    memset(lo, 0, sizeof *lo);
}

/* the weight a target adapts, layer l */
static float *mft__lora_weight(const mft_params *w, const mft_config *c, int l, int t)
{
    int in, out;
    mft_lora_shape(c, t, &in, &out);
    size_t o = (size_t)l * in * out;
    float *W[MFT_LORA_N] = { w->wq, w->wk, w->wv, w->wo, w->w1, w->w2, w->w3 };
    return W[t] + o;
}

MFT_API mft_status mft_lora_merge(mft_model *m, const mft_lora *lo, mft_error *err)
{
    if (!m || !lo || !lo->params) return mft__fail(err, MFT_ERR_ARG, "mft_lora_merge: NULL argument");
    const mft_config *c = &m->cfg;
    if (lo->n_layers != c->n_layers || lo->n_params != (size_t)c->n_layers * mft__lora_layer(c, lo->rank, MFT_LORA_N))
        return mft__fail(err, MFT_ERR_ARG, "the adapters were made for another model shape");
    int r = lo->rank;
    for (int l = 0; l < c->n_layers; l++)
        for (int t = 0; t < MFT_LORA_N; t++) {
            int in, out;
            mft_lora_shape(c, t, &in, &out);
            float *W = mft__lora_weight(&m->w, c, l, t);
            const float *A = mft_lora_a(lo, c, l, t, 0), *Bm = mft_lora_b(lo, c, l, t, 0);
            for (int o = 0; o < out; o++)
                for (int k = 0; k < r; k++) {
                    float bk = lo->scale * Bm[(size_t)o * r + k];
                    if (bk != 0.0f) mft__axpy(W + (size_t)o * in, bk, A + (size_t)k * in, in);
                }
        }
    return mft__ok(err);
}

/* forward of target t in layer l on n rows: y (n, out) += s (x A^T) B^T, u kept */
static void mft__lora_fwd(const mft_model *m, int l, int t, float *y, const float *x, int n, int nt)
{
    mft_lora *lo = m->lora;
    if (!lo) return;
    const mft_config *c = &m->cfg;
    int in, out, r = lo->rank;
    mft_lora_shape(c, t, &in, &out);
    float *u = lo->u + ((size_t)l * MFT_LORA_N + t) * (size_t)lo->B * lo->T * r;
    mft__matmul_fwd(u, x, mft_lora_a(lo, c, l, t, 0), n, in, r, nt, m->gemm_ws);
    mft__vec_scale(u, lo->scale, n * r);
    mft__matmul_fwd(lo->tmp, u, mft_lora_b(lo, c, l, t, 0), n, r, out, nt, m->gemm_ws);
    mft__vec_add(y, lo->tmp, (size_t)n * out);
}

/* backward of target t in layer l: dA, dB accumulated; dx (n, in) += s (dy B) A */
static void mft__lora_bwd(const mft_model *m, int l, int t, float *dx, const float *dy, const float *x, int n, int nt)
{
    mft_lora *lo = m->lora;
    if (!lo) return;
    const mft_config *c = &m->cfg;
    int in, out, r = lo->rank;
    mft_lora_shape(c, t, &in, &out);
    const float *u = lo->u + ((size_t)l * MFT_LORA_N + t) * (size_t)lo->B * lo->T * r;
    float *e = lo->tmp; /* (n, r) */
    mft__matmul_bwd_dw(mft_lora_b(lo, c, l, t, 1), dy, u, n, r, out, nt, m->gemm_ws);
    memset(e, 0, (size_t)n * r * sizeof(float));
    mft__matmul_bwd_dx(e, dy, mft_lora_b(lo, c, l, t, 0), n, r, out, nt, m->gemm_ws);
    mft__vec_scale(e, lo->scale, n * r);
    mft__matmul_bwd_dw(mft_lora_a(lo, c, l, t, 1), e, x, n, in, r, nt, m->gemm_ws);
    mft__matmul_bwd_dx(dx, e, mft_lora_a(lo, c, l, t, 0), n, in, r, nt, m->gemm_ws);
}

/* ============================================================================================
   >>forward
   For each layer l, with x = res[l] (N, D):
     xn  = rmsnorm(x) * rms_att            q = xn wq^T, k = xn wk^T, v = xn wv^T, RoPE on q, k
     a   = attention(q, k, v)              res_mid = x + a wo^T
     xn2 = rmsnorm(res_mid) * rms_ffn      res[l+1] = res_mid + (silu(xn2 w1^T) * xn2 w3^T) w2^T
   then logits = (rmsnorm(res[L]) * rms_final) wcls^T, and the masked loss (xent).
   ============================================================================================ */

static mft_status mft__check_tokens(const int *ids, size_t n, int V, const char *what, mft_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return mft__fail(err, MFT_ERR_ARG, "%s[%zu] = %d is outside the vocabulary (0..%d)", what, i, ids[i],
                             V - 1);
    return MFT_OK;
}

/* The attention inputs of n rows xn at layer l: q = xn wq^T, k = xn wk^T, v = xn wv^T, plus
   their biases (Qwen2), then (Qwen3) an RMSNorm over each head of q and of k, whose inputs are
   kept in q_raw / k_raw (which may be q / k themselves when they need not be kept) with the
   1/rms of each head in rs_q / rs_k. RoPE comes after, by the caller. */
static void mft__qkv_fwd(const mft_model *m, int l, float *q, float *k, float *v, float *q_raw, float *k_raw,
                         float *rs_q, float *rs_k, const float *xn, int n, int nt)
{
    const mft_config *c = &m->cfg;
    const mft_params *w = &m->w;
    int D = c->dim, hs = mft_head_dim(c), QD = c->n_heads * hs, KVD = c->n_kv_heads * hs;
    float *qo = c->qk_norm ? q_raw : q, *ko = c->qk_norm ? k_raw : k;
    mft__matmul_fwd(qo, xn, w->wq + (size_t)l * QD * D, n, D, QD, nt, m->gemm_ws);
    mft__matmul_fwd(ko, xn, w->wk + (size_t)l * KVD * D, n, D, KVD, nt, m->gemm_ws);
    mft__matmul_fwd(v, xn, w->wv + (size_t)l * KVD * D, n, D, KVD, nt, m->gemm_ws);
    mft__lora_fwd(m, l, MFT_LORA_Q, qo, xn, n, nt); /* adapters add to the projection itself */
    mft__lora_fwd(m, l, MFT_LORA_K, ko, xn, n, nt);
    mft__lora_fwd(m, l, MFT_LORA_V, v, xn, n, nt);
    if (c->qkv_bias) {
        mft__bias_fwd(qo, w->bq + (size_t)l * QD, n, QD);
        mft__bias_fwd(ko, w->bk + (size_t)l * KVD, n, KVD);
        mft__bias_fwd(v, w->bv + (size_t)l * KVD, n, KVD);
    }
    if (c->qk_norm) {
        mft__rmsnorm_fwd(q, rs_q, q_raw, w->q_norm + (size_t)l * hs, n * c->n_heads, hs, c->norm_eps, nt);
        mft__rmsnorm_fwd(k, rs_k, k_raw, w->k_norm + (size_t)l * hs, n * c->n_kv_heads, hs, c->norm_eps, nt);
    }
}

/* One layer's forward pass, res[l] -> res[l+1], writing what backward needs into the layer's
   slot of the activations (slot 0 for every layer with MFT_CHECKPOINT or without MFT_TRAIN). With recompute, as
   backward calls it under MFT_CHECKPOINT, the last product (w2, into res[l+1]) is left out:
   backward has res[l+1] already and needs only what leads up to it. */
static void mft__layer_fwd(mft_model *m, int l, int B, int T, const int *pv, int recompute, int nt)
{
    const mft_config *c = &m->cfg;
    const mft_params *w = &m->w;
    mft_acts *a = &m->a;
    size_t N = (size_t)B * T, ls = mft__one_slot(m->flags) ? 0 : (size_t)l;
    int D = c->dim, F = c->hidden_dim, NH = c->n_heads, KV = c->n_kv_heads, hs = mft_head_dim(c), KVD = KV * hs;
    int QD = NH * hs;
    float *x = a->res + (size_t)l * N * D, *mid = a->res_mid + ls * N * D, *xo = a->res + (size_t)(l + 1) * N * D;
    float *xn = a->xn_att + ls * N * D, *q = a->q + ls * N * QD;
    float *k = a->k + ls * N * KVD, *v = a->v + ls * N * KVD, *ao = a->att_out + ls * N * QD;
    float *xn2 = a->xn_ffn + ls * N * D;
    float *h1 = a->h1 + ls * N * F, *h3 = a->h3 + ls * N * F, *hg = a->hg + ls * N * F;
    float *q_raw = c->qk_norm ? a->q_raw + ls * N * QD : NULL, *k_raw = c->qk_norm ? a->k_raw + ls * N * KVD : NULL;
    float *rs_q = c->qk_norm ? a->rs_q + ls * N * NH : NULL, *rs_k = c->qk_norm ? a->rs_k + ls * N * KV : NULL;

    mft__rmsnorm_fwd(xn, a->rs_att + ls * N, x, w->rms_att + (size_t)l * D, (int)N, D, c->norm_eps, nt);
    mft__qkv_fwd(m, l, q, k, v, q_raw, k_raw, rs_q, rs_k, xn, (int)N, nt);
    mft__rope(q, m->rope_cos, m->rope_sin, (int)N, T, 0, pv, NH, hs, 1.0f, nt);
    mft__rope(k, m->rope_cos, m->rope_sin, (int)N, T, 0, pv, KV, hs, 1.0f, nt);
    mft__attention_fwd(ao, a->att_lse + ls * B * NH * T, a->att_ws, q, k, v, pv, B, T, NH, KV, hs, nt);
    mft__matmul_fwd(mid, ao, w->wo + (size_t)l * D * QD, (int)N, QD, D, nt, m->gemm_ws);
    mft__lora_fwd(m, l, MFT_LORA_O, mid, ao, (int)N, nt);
    mft__vec_add(mid, x, N * D);

    mft__rmsnorm_fwd(xn2, a->rs_ffn + ls * N, mid, w->rms_ffn + (size_t)l * D, (int)N, D, c->norm_eps, nt);
    mft__matmul_fwd(h1, xn2, w->w1 + (size_t)l * F * D, (int)N, D, F, nt, m->gemm_ws);
    mft__matmul_fwd(h3, xn2, w->w3 + (size_t)l * F * D, (int)N, D, F, nt, m->gemm_ws);
    mft__lora_fwd(m, l, MFT_LORA_GATE, h1, xn2, (int)N, nt);
    mft__lora_fwd(m, l, MFT_LORA_UP, h3, xn2, (int)N, nt);
    mft__swiglu_fwd(hg, h1, h3, N * F, nt);
    if (recompute) return;
    mft__matmul_fwd(xo, hg, w->w2 + (size_t)l * D * F, (int)N, F, D, nt, m->gemm_ws);
    mft__lora_fwd(m, l, MFT_LORA_DOWN, xo, hg, (int)N, nt);
    mft__vec_add(xo, mid, N * D);
}

MFT_API mft_status mft_forward(mft_model *m, const int *inputs, const int *targets, const float *weights, int B, int T,
                               mft_fwd_info *info, mft_error *err)
{
    return mft_forward_packed(m, inputs, targets, weights, NULL, B, T, info, err);
}

MFT_API mft_status mft_forward_packed(mft_model *m, const int *inputs, const int *targets, const float *weights,
                                      const int *pos, int B, int T, mft_fwd_info *info, mft_error *err)
{
    if (info) memset(info, 0, sizeof *info);
    if (!m || !inputs) return mft__fail(err, MFT_ERR_ARG, "model or inputs is NULL");
    if (!(m->flags & MFT_FORWARD))
        return mft__fail(err, MFT_ERR_STATE, "model was initialised without MFT_FORWARD or MFT_TRAIN");
    if (B <= 0 || T <= 0 || B > m->B || T > m->T) {
        if (T > m->cfg.seq_len)
            return mft__fail(err, MFT_ERR_ARG, "sequence of %d positions is longer than the context (%d)", T,
                             m->cfg.seq_len);
        return mft__fail(err, MFT_ERR_ARG, "batch %d x %d outside the model's capacity %d x %d", B, T, m->B, m->T);
    }
    if (m->lora && (m->lora->n_layers != m->cfg.n_layers || (long)B * T > (long)m->lora->B * m->lora->T ||
                    m->lora->n_params != (size_t)m->cfg.n_layers * mft__lora_layer(&m->cfg, m->lora->rank, MFT_LORA_N)))
        return mft__fail(err, MFT_ERR_ARG, "the attached LoRA adapters do not fit this model or batch");
    const mft_config *c = &m->cfg;
    size_t N = (size_t)B * T;
    mft_status st = mft__check_tokens(inputs, N, c->vocab_size, "inputs", err);
    if (!st && targets) st = mft__check_tokens(targets, N, c->vocab_size, "targets", err);
    if (st) return st;
    if (weights)
        for (size_t i = 0; i < N; i++)
            if (!(weights[i] >= 0.0f) || !isfinite(weights[i]))
                return mft__fail(err, MFT_ERR_ARG, "weights[%zu] = %g: loss weights must be finite and >= 0", i,
                                 (double)weights[i]);
    /* a row's positions count 0, 1, 2, ... and restart at 0 where a packed example begins */
    for (size_t i = 0; pos && i < N; i++) {
        int t = (int)(i % (size_t)T);
        if (t == 0 ? pos[i] != 0 : pos[i] != 0 && pos[i] != pos[i - 1] + 1)
            return mft__fail(err, MFT_ERR_ARG,
                             "pos[%zu] = %d: positions must start at 0 in each row and count up by 1 or restart at 0",
                             i, pos[i]);
    }

    int D = c->dim;
    size_t V = (size_t)c->vocab_size;
    int nt = mft__nthreads(m);
    mft_acts *a = &m->a;
    const mft_params *w = &m->w;
    m->anchor_w = m->anchor_logits = NULL; /* an anchor set for an earlier forward is void */
    m->soft_w = NULL;
    m->fwd_anchor_sum = 0.0;
    for (size_t n = 0; n < N; n++) a->pos[n] = pos ? pos[n] : (int)(n % (size_t)T);
    const int *pv = pos ? a->pos : NULL; /* NULL: plain causal rows, the faster path */
    m->fwd_packed = pos != NULL;

    /* token embedding */
    for (size_t n = 0; n < N; n++)
        memcpy(a->res + n * D, w->tok_emb + (size_t)inputs[n] * D, (size_t)D * sizeof(float));

    for (int l = 0; l < c->n_layers; l++) mft__layer_fwd(m, l, B, T, pv, 0, nt);
    mft__rmsnorm_fwd(a->xn_final, a->rs_final, a->res + (size_t)c->n_layers * N * D, w->rms_final, (int)N, D,
                     c->norm_eps, nt);
    /* the classifier: on every position, or with sparse_logits only where the loss reads it */
    m->n_cls_rows = -1;
    if (targets && weights && m->sparse_logits) {
        int nr = 0;
        for (size_t n = 0; n < N; n++) {
            m->cls_have[n] = weights[n] > 0.0f;
            if (m->cls_have[n]) m->cls_rows[nr++] = (int)n;
        }
        m->n_cls_rows = nr;
        mft__gemm_map(a->logits, V, 0, a->xn_final, (size_t)D, 1, w->wcls, 1, (size_t)D, nr, (int)V, D, m->cls_rows,
                      NULL, m->gemm_ws, nt);
    } else
        mft__matmul_fwd(a->logits, a->xn_final, w->wcls, (int)N, D, (int)V, nt, m->gemm_ws);

    /* the loss, xent */
    m->fwd_B = B;
    m->fwd_T = T;
    m->fwd_has_targets = targets != NULL;
    m->fwd_loss_sum = m->fwd_weight_sum = 0.0;
    memcpy(a->inputs, inputs, N * sizeof(int));
    if (targets) {
        memcpy(a->targets, targets, N * sizeof(int));
        for (size_t n = 0; n < N; n++) a->weights[n] = weights ? weights[n] : 1.0f;
        int sp = m->n_cls_rows >= 0;
        mft__xent_fwd(a->lse, &m->fwd_loss_sum, &m->fwd_weight_sum, a->logits, targets, a->weights,
                      sp ? m->cls_rows : NULL, sp ? (size_t)m->n_cls_rows : N, V, m->dft != 0, nt);
        if (!isfinite(m->fwd_loss_sum))
            return mft__fail(err, MFT_ERR_NONFINITE, "the loss is not finite (%g): the weights or inputs hold NaN/Inf",
                             m->fwd_loss_sum);
    }
    if (info) {
        info->loss_sum = m->fwd_loss_sum;
        info->weight_sum = m->fwd_weight_sum;
        info->loss = m->fwd_weight_sum > 0.0 ? (float)(m->fwd_loss_sum / m->fwd_weight_sum) : 0.0f;
    }
    return mft__ok(err);
}


/* With sparse logits: the classifier (and lse) on the positions with want > 0 that the forward
   skipped, so an anchor or soft targets find their rows; the list stays ascending. */
static void mft__cls_need(mft_model *m, const float *want)
{
    if (m->n_cls_rows < 0) return;
    size_t N = (size_t)m->fwd_B * m->fwd_T, V = (size_t)m->cfg.vocab_size;
    int nt = mft__nthreads(m), D = m->cfg.dim, *add = m->cls_rows + m->n_cls_rows, na = 0;
    for (size_t n = 0; n < N; n++)
        if (want[n] > 0.0f && !m->cls_have[n]) {
            add[na++] = (int)n;
            m->cls_have[n] = 1;
        }
    if (!na) return;
    mft__gemm_map(m->a.logits, V, 0, m->a.xn_final, (size_t)D, 1, m->w.wcls, 1, (size_t)D, na, (int)V, D, add, NULL,
                  m->gemm_ws, nt);
    MFT__PARFOR(mft__par(nt, (double)na * V))
    for (int i = 0; i < na; i++) m->a.lse[add[i]] = mft__lse(m->a.logits + (size_t)add[i] * V, (int)V);
    int nr = 0;
    for (size_t n = 0; n < N; n++)
        if (m->cls_have[n]) m->cls_rows[nr++] = (int)n;
    m->n_cls_rows = nr;
}

/* The context anchor: sum_n aw_n KL(Q_n || P_n) joins the objective, Q_n = softmax(base_n) the
   base model's distribution at position n, P_n the model's. Its gradient on the logits is
   aw_n (P_n - Q_n), added to the cross-entropy's in backward() (xent). */
MFT_API mft_status mft_set_anchor(mft_model *m, const float *base_logits, const float *anchor_w, double *kl_sum,
                                  mft_error *err)
{
    if (kl_sum) *kl_sum = 0.0;
    if (!m || !base_logits || !anchor_w) return mft__fail(err, MFT_ERR_ARG, "mft_set_anchor: NULL argument");
    if (!m->fwd_B || !m->fwd_has_targets)
        return mft__fail(err, MFT_ERR_STATE, "mft_set_anchor needs a forward() with targets first");
    size_t N = (size_t)m->fwd_B * m->fwd_T, V = (size_t)m->cfg.vocab_size;
    for (size_t n = 0; n < N; n++)
        if (!(anchor_w[n] >= 0.0f) || !isfinite(anchor_w[n]))
            return mft__fail(err, MFT_ERR_ARG, "anchor_w[%zu] = %g: anchor weights must be finite and >= 0", n,
                             (double)anchor_w[n]);
    mft__cls_need(m, anchor_w);
    /* the scratch: the first N floats of backward's dres, free until backward clears it */
    double sum = mft__anchor_fwd(m->a.logits, base_logits, anchor_w, N, V, m->d.dres, mft__nthreads(m));
    if (!isfinite(sum))
        return mft__fail(err, MFT_ERR_NONFINITE, "the anchor's KL is not finite: the base logits hold NaN/Inf");
    m->anchor_logits = base_logits;
    m->anchor_w = anchor_w;
    m->fwd_anchor_sum += sum;
    if (kl_sum) *kl_sum = sum;
    return mft__ok(err);
}

/* Soft targets: sum_n tw_n KL(P_n || Q_n) joins the objective beside the anchor's term (xent
   has the coarsened KL and its gradient). */
MFT_API mft_status mft_set_soft_targets(mft_model *m, const int *ids, const float *probs, int k, const float *tw,
                                        double *kl_sum, mft_error *err)
{
    if (kl_sum) *kl_sum = 0.0;
    if (!m || !ids || !probs || !tw) return mft__fail(err, MFT_ERR_ARG, "mft_set_soft_targets: NULL argument");
    if (!m->fwd_B || !m->fwd_has_targets)
        return mft__fail(err, MFT_ERR_STATE, "mft_set_soft_targets needs a forward() with targets first");
    size_t N = (size_t)m->fwd_B * m->fwd_T, V = (size_t)m->cfg.vocab_size;
    if (k < 1 || k > MFT_SOFT_KMAX || (size_t)k > V)
        return mft__fail(err, MFT_ERR_ARG, "k = %d soft targets per position: give 1 to %d", k,
                         (int)(V < MFT_SOFT_KMAX ? V : MFT_SOFT_KMAX));
    for (size_t n = 0; n < N; n++) {
        if (!(tw[n] >= 0.0f) || !isfinite(tw[n]))
            return mft__fail(err, MFT_ERR_ARG, "tw[%zu] = %g: soft-target weights must be finite and >= 0", n,
                             (double)tw[n]);
        if (tw[n] == 0.0f) continue;
        double sum = 0.0;
        for (int i = 0; i < k; i++) {
            int id = ids[n * (size_t)k + (size_t)i];
            float p = probs[n * (size_t)k + (size_t)i];
            if (id < 0 || (size_t)id >= V)
                return mft__fail(err, MFT_ERR_ARG, "position %zu: soft-target token %d is outside the vocabulary", n,
                                 id);
            if (!(p >= 0.0f && p <= 1.0f))
                return mft__fail(err, MFT_ERR_ARG, "position %zu: soft-target probability %g is not in [0, 1]", n,
                                 (double)p);
            sum += p;
        }
        if (sum > 1.0 + 1e-3)
            return mft__fail(err, MFT_ERR_ARG, "position %zu: soft-target probabilities sum to %g, more than 1", n,
                             sum);
    }
    mft__soft sf = { ids, probs, tw, k };
    mft__cls_need(m, tw);
    /* the scratch: the first N floats of backward's dres, as the anchor's */
    double sum = mft__soft_fwd(m->a.logits, m->a.lse, &sf, N, V, m->d.dres, mft__nthreads(m));
    if (!isfinite(sum)) return mft__fail(err, MFT_ERR_NONFINITE, "the soft targets' KL is not finite");
    m->soft_ids = ids;
    m->soft_p = probs;
    m->soft_w = tw;
    m->soft_k = k;
    m->fwd_anchor_sum += sum;
    if (kl_sum) *kl_sum = sum;
    return mft__ok(err);
}

/* nll[t] = CE of position t without weights: lse_t - logit of the next token */
MFT_API mft_status mft_token_nll(mft_model *m, const int *ids, int n, float *nll, mft_error *err)
{
    if (!m || !ids || !nll || n < 2) return mft__fail(err, MFT_ERR_ARG, "mft_token_nll needs at least 2 tokens");
    mft_status s = mft_forward(m, ids, ids + 1, NULL, 1, n - 1, NULL, err);
    if (s) return s;
    size_t V = (size_t)m->cfg.vocab_size;
    for (int t = 0; t < n - 1; t++) nll[t] = m->a.lse[t] - m->a.logits[(size_t)t * V + (size_t)ids[t + 1]];
    return MFT_OK;
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
    if (m && m->lora) memset(m->lora->grads, 0, m->lora->n_params * sizeof(float));
}

/* g + off, or NULL when the model keeps no gradients of its weights (MFT_FROZEN) */
static float *mft__gat(float *g, size_t off) { return g ? g + off : NULL; }

MFT_API mft_status mft_backward(mft_model *m, mft_error *err)
{
    if (!m || !(m->flags & MFT_TRAIN)) return mft__fail(err, MFT_ERR_STATE, "model was initialised without MFT_TRAIN");
    if (!m->fwd_B || !m->fwd_has_targets)
        return mft__fail(err, MFT_ERR_STATE, "backward() needs a forward() with targets first (and once per forward)");
    const mft_config *c = &m->cfg;
    int B = m->fwd_B, T = m->fwd_T;
    size_t N = (size_t)B * T, V = (size_t)c->vocab_size;
    int D = c->dim, F = c->hidden_dim, NH = c->n_heads, KV = c->n_kv_heads, hs = mft_head_dim(c), KVD = KV * hs;
    int QD = NH * hs;
    int nt = mft__nthreads(m);
    mft_acts *a = &m->a;
    mft_dacts *d = &m->d;
    const mft_params *w = &m->w;
    const mft_params *g = &m->g;
    const int *targets = a->targets;
    const float *weights = a->weights;
    const int *pv = m->fwd_packed ? a->pos : NULL;
    const float *aw = m->anchor_w, *base = m->anchor_logits;
    mft__soft sf = { m->soft_ids, m->soft_p, m->soft_w, m->soft_k };
    double anchor_sum = m->fwd_anchor_sum;
    m->anchor_w = m->anchor_logits = NULL; /* an anchor belongs to one forward */
    m->soft_w = NULL;
    m->fwd_anchor_sum = 0.0;
    if (m->fwd_weight_sum == 0.0 && !aw && !sf.w) { /* nothing to learn from: the gradient is exactly zero */
        m->fwd_B = 0;
        return mft__ok(err);
    }

    /* the loss layer first, as llm.c's gpt2_backward starts from crossentropy_softmax_backward:
       the logits become d(sum w CE + sum aw KL)/dz, in place (xent) */
    int sp = m->n_cls_rows >= 0, nr = sp ? m->n_cls_rows : (int)N;
    const int *rows = sp ? m->cls_rows : NULL;
    mft__xent_bwd(a->logits, a->lse, targets, weights, aw, base, &sf, rows, (size_t)nr, V, nt);

    /* classifier and final norm; with sparse logits the two products run on the classifier's
       rows only (the others' dz is zero), read and written in place through the row map */
    memset(d->dxn, 0, N * D * sizeof(float));
    memset(d->dres, 0, N * D * sizeof(float));
    if (sp) {
        mft__gemm_map(d->dxn, (size_t)D, 1, a->logits, V, 1, w->wcls, (size_t)D, 1, nr, D, (int)V, rows, NULL,
                      m->gemm_ws, nt);
        if (g->wcls)
            mft__gemm_map(g->wcls, (size_t)D, 1, a->logits, 1, V, a->xn_final, (size_t)D, 1, (int)V, D, nr, NULL, rows,
                          m->gemm_ws, nt);
    } else {
        mft__matmul_bwd_dx(d->dxn, a->logits, w->wcls, (int)N, D, (int)V, nt, m->gemm_ws);
        mft__matmul_bwd_dw(g->wcls, a->logits, a->xn_final, (int)N, D, (int)V, nt, m->gemm_ws);
    }
    mft__rmsnorm_bwd(d->dres, g->rms_final, d->dxn, a->res + (size_t)c->n_layers * N * D, a->rs_final, w->rms_final,
                     (int)N, D, nt);

    int ckpt = mft__one_slot(m->flags);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        /* with checkpointing, slot 0 holds the last layer forward computed: the top one here,
           and every layer below is computed again from its input, res[l] */
        if (ckpt && l < c->n_layers - 1) mft__layer_fwd(m, l, B, T, pv, 1, nt);
        size_t ls = ckpt ? 0 : (size_t)l;
        float *x = a->res + (size_t)l * N * D, *mid = a->res_mid + ls * N * D;
        float *xn = a->xn_att + ls * N * D, *q = a->q + ls * N * QD;
        float *k = a->k + ls * N * KVD, *v = a->v + ls * N * KVD, *ao = a->att_out + ls * N * QD;
        float *xn2 = a->xn_ffn + ls * N * D;
        float *h1 = a->h1 + ls * N * F, *h3 = a->h3 + ls * N * F, *hg = a->hg + ls * N * F;

        /* FFN block: res[l+1] = mid + hg w2^T */
        memset(d->dhg, 0, N * F * sizeof(float));
        mft__matmul_bwd_dx(d->dhg, d->dres, w->w2 + (size_t)l * D * F, (int)N, F, D, nt, m->gemm_ws);
        mft__lora_bwd(m, l, MFT_LORA_DOWN, d->dhg, d->dres, hg, (int)N, nt);
        mft__matmul_bwd_dw(mft__gat(g->w2, (size_t)l * D * F), d->dres, hg, (int)N, F, D, nt, m->gemm_ws);
        mft__swiglu_bwd(d->dh1, d->dh3, d->dhg, h1, h3, N * F, nt);
        memset(d->dxn, 0, N * D * sizeof(float));
        mft__matmul_bwd_dx(d->dxn, d->dh1, w->w1 + (size_t)l * F * D, (int)N, D, F, nt, m->gemm_ws);
        mft__matmul_bwd_dx(d->dxn, d->dh3, w->w3 + (size_t)l * F * D, (int)N, D, F, nt, m->gemm_ws);
        mft__lora_bwd(m, l, MFT_LORA_GATE, d->dxn, d->dh1, xn2, (int)N, nt);
        mft__lora_bwd(m, l, MFT_LORA_UP, d->dxn, d->dh3, xn2, (int)N, nt);
        mft__matmul_bwd_dw(mft__gat(g->w1, (size_t)l * F * D), d->dh1, xn2, (int)N, D, F, nt, m->gemm_ws);
        mft__matmul_bwd_dw(mft__gat(g->w3, (size_t)l * F * D), d->dh3, xn2, (int)N, D, F, nt, m->gemm_ws);
        mft__rmsnorm_bwd(d->dres, mft__gat(g->rms_ffn, (size_t)l * D), d->dxn, mid, a->rs_ffn + ls * N,
                         w->rms_ffn + (size_t)l * D, (int)N, D, nt);

        /* attention block: mid = x + ao wo^T */
        memset(d->datt_out, 0, N * QD * sizeof(float));
        mft__matmul_bwd_dx(d->datt_out, d->dres, w->wo + (size_t)l * D * QD, (int)N, QD, D, nt, m->gemm_ws);
        mft__lora_bwd(m, l, MFT_LORA_O, d->datt_out, d->dres, ao, (int)N, nt);
        mft__matmul_bwd_dw(mft__gat(g->wo, (size_t)l * D * QD), d->dres, ao, (int)N, QD, D, nt, m->gemm_ws);
        memset(d->dq, 0, N * QD * sizeof(float));
        memset(d->dk, 0, N * KVD * sizeof(float));
        memset(d->dv, 0, N * KVD * sizeof(float));
        mft__attention_bwd(d->dq, d->dk, d->dv, a->att_ws, d->datt_out, ao, a->att_lse + ls * B * NH * T, q, k, v, pv,
                           B, T, NH, KV, hs, nt);
        mft__rope(d->dq, m->rope_cos, m->rope_sin, (int)N, T, 0, pv, NH, hs, -1.0f, nt);
        mft__rope(d->dk, m->rope_cos, m->rope_sin, (int)N, T, 0, pv, KV, hs, -1.0f, nt);
        /* back through the heads' norms (Qwen3), then the biases (Qwen2) */
        float *dq = d->dq, *dk = d->dk;
        if (c->qk_norm) {
            memset(d->dq_raw, 0, N * QD * sizeof(float));
            memset(d->dk_raw, 0, N * KVD * sizeof(float));
            mft__rmsnorm_bwd(d->dq_raw, mft__gat(g->q_norm, (size_t)l * hs), d->dq, a->q_raw + ls * N * QD,
                             a->rs_q + ls * N * NH, w->q_norm + (size_t)l * hs, (int)N * NH, hs, nt);
            mft__rmsnorm_bwd(d->dk_raw, mft__gat(g->k_norm, (size_t)l * hs), d->dk, a->k_raw + ls * N * KVD,
                             a->rs_k + ls * N * KV, w->k_norm + (size_t)l * hs, (int)N * KV, hs, nt);
            dq = d->dq_raw;
            dk = d->dk_raw;
        }
        if (c->qkv_bias) {
            mft__bias_bwd(mft__gat(g->bq, (size_t)l * QD), dq, (int)N, QD, nt);
            mft__bias_bwd(mft__gat(g->bk, (size_t)l * KVD), dk, (int)N, KVD, nt);
            mft__bias_bwd(mft__gat(g->bv, (size_t)l * KVD), d->dv, (int)N, KVD, nt);
        }
        memset(d->dxn, 0, N * D * sizeof(float));
        mft__matmul_bwd_dx(d->dxn, dq, w->wq + (size_t)l * QD * D, (int)N, D, QD, nt, m->gemm_ws);
        mft__matmul_bwd_dx(d->dxn, dk, w->wk + (size_t)l * KVD * D, (int)N, D, KVD, nt, m->gemm_ws);
        mft__matmul_bwd_dx(d->dxn, d->dv, w->wv + (size_t)l * KVD * D, (int)N, D, KVD, nt, m->gemm_ws);
        mft__lora_bwd(m, l, MFT_LORA_Q, d->dxn, dq, xn, (int)N, nt);
        mft__lora_bwd(m, l, MFT_LORA_K, d->dxn, dk, xn, (int)N, nt);
        mft__lora_bwd(m, l, MFT_LORA_V, d->dxn, d->dv, xn, (int)N, nt);
        mft__matmul_bwd_dw(mft__gat(g->wq, (size_t)l * QD * D), dq, xn, (int)N, D, QD, nt, m->gemm_ws);
        mft__matmul_bwd_dw(mft__gat(g->wk, (size_t)l * KVD * D), dk, xn, (int)N, D, KVD, nt, m->gemm_ws);
        mft__matmul_bwd_dw(mft__gat(g->wv, (size_t)l * KVD * D), d->dv, xn, (int)N, D, KVD, nt, m->gemm_ws);
        mft__rmsnorm_bwd(d->dres, mft__gat(g->rms_att, (size_t)l * D), d->dxn, x, a->rs_att + ls * N,
                         w->rms_att + (size_t)l * D, (int)N, D, nt);
    }

    /* embedding: rows of repeated tokens add up, so this one stays sequential (it is N x D) */
    for (size_t n = 0; g->tok_emb && n < N; n++)
        mft__vec_add(g->tok_emb + (size_t)a->inputs[n] * D, d->dres + n * D, (size_t)D);

    m->step_loss_sum += m->fwd_loss_sum;
    m->step_weight_sum += m->fwd_weight_sum;
    m->step_anchor_sum += anchor_sum;
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
    o.lr = 1e-3f; /* torch.optim.AdamW defaults */
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.eps = 1e-8f;
    o.weight_decay = 0.01f;
    o.max_grad_norm = 1.0f; /* HF Trainer's default */
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
    if (!(o->lr >= 0.0f) || !isfinite(o->lr))
        return mft__fail(err, MFT_ERR_ARG, "lr %g must be finite and >= 0", (double)o->lr);
    if (!(o->beta1 >= 0.0f && o->beta1 < 1.0f))
        return mft__fail(err, MFT_ERR_ARG, "beta1 %g must be in [0, 1)", (double)o->beta1);
    if (!(o->beta2 >= 0.0f && o->beta2 < 1.0f))
        return mft__fail(err, MFT_ERR_ARG, "beta2 %g must be in [0, 1)", (double)o->beta2);
    if (!(o->eps > 0.0f)) return mft__fail(err, MFT_ERR_ARG, "eps %g must be > 0", (double)o->eps);
    if (!(o->weight_decay >= 0.0f) || !isfinite(o->weight_decay))
        return mft__fail(err, MFT_ERR_ARG, "weight_decay %g must be finite and >= 0", (double)o->weight_decay);
    if (isnan(o->max_grad_norm)) return mft__fail(err, MFT_ERR_ARG, "max_grad_norm is NaN");
    if (o->warmup_steps < 0 || o->total_steps < 0)
        return mft__fail(err, MFT_ERR_ARG, "warmup_steps and total_steps must be >= 0");
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
    double W = m->step_weight_sum, Lsum = m->step_loss_sum, Asum = m->step_anchor_sum;
    m->step_weight_sum = m->step_loss_sum = m->step_anchor_sum = 0.0;
    info->lr = mft_lr_at(o, m->step);
    info->weight_sum = W;
    if (W == 0.0) {
        mft_zero_grad(m);
        return mft__fail(err, MFT_EMPTY_MASK, "step %ld: every loss weight was 0; weights left unchanged", m->step);
    }
    /* The gradients hold d(sum w CE [+ sum aw KL]); dividing by W = sum w turns them into
       d(loss). The anchor's share is reported on its own. */
    float gscale = (float)(1.0 / W);
    info->loss = (float)(Lsum / W);
    info->anchor = (float)(Asum / W);

    double ss = 0.0;
    mft_lora *lo = m->lora;
    int ntens = lo ? 0 : mft_tensor_count(&m->cfg);
    if (!lo && !m->grads) {
        m->step_weight_sum = 0.0;
        return mft__fail(err, MFT_ERR_STATE, "a frozen model (MFT_FROZEN) trains only attached LoRA adapters");
    }
    if (lo) { /* the adapters alone are trained: their gradient, their moments */
        ss = mft__sumsq(lo->grads, lo->n_params);
        if (!isfinite(ss)) {
            mft_zero_grad(m);
            return mft__fail(err, MFT_ERR_NONFINITE, "step %ld: the LoRA gradient is not finite; nothing changed",
                             m->step);
        }
    }
    for (int i = 0; i < ntens; i++) {
        mft_tensor_info ti = mft_tensor_at(&m->cfg, i);
        double t = mft__sumsq(m->grads + ti.offset, ti.numel);
        if (!isfinite(t)) {
            size_t j = 0;
            while (j < ti.numel && isfinite(m->grads[ti.offset + j])) j++;
            mft_zero_grad(m);
            return mft__fail(err, MFT_ERR_NONFINITE,
                             "step %ld: gradient of %s is not finite (first at element %zu); weights left unchanged",
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
    if (lo)
        mft__adamw(lo->params, lo->adam_m, lo->adam_v, lo->grads, lo->n_params, &k, nt);
    else
        mft__adamw(m->params, m->adam_m, m->adam_v, m->grads, m->n_params, &k, nt);
    mft_zero_grad(m);
    m->step = t;
    return mft__ok(err);
}

MFT_API mft_status mft_train_step(mft_model *m, const mft_train_opts *o, const int *inputs, const int *targets,
                                  const float *weights, int B, int T, mft_step_info *info, mft_error *err)
{
    if (!targets) return mft__fail(err, MFT_ERR_ARG, "training needs targets");
    mft_status st = mft__check_opts(o, err);
    if (st) return st;
    /* the logits are spent by backward anyway: the classifier runs where the loss reads it */
    int sparse = m ? m->sparse_logits : 0;
    if (m) m->sparse_logits = 1;
    st = mft_forward(m, inputs, targets, weights, B, T, NULL, err);
    if (m) m->sparse_logits = sparse;
    if (!st) st = mft_backward(m, err);
    if (st) {
        if (m && m->grads) {
            mft_zero_grad(m);
            m->step_loss_sum = m->step_weight_sum = m->step_anchor_sum = 0.0;
        }
        return st;
    }
    return mft_step(m, o, info, err);
}

/* ---- training checkpoints ------------------------------------------------------------------
   Everything a run needs to continue bit for bit: the weights, AdamW's two moments, the step
   counter (the learning-rate schedule and the bias correction read it), and an opaque block
   of the caller's (the CLI keeps its data position and RNG state there). Layout, host byte
   order: "MFTCKPT2", int32 x14 shape (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
   vocab_size, seq_len, shared_classifier, head_dim, arch, qkv_bias, qk_norm, rope_scaling,
   rope_orig_ctx), float norm_eps, rope_theta, rope factor, low and high frequency factors,
   int64 step, n_params, user_bytes, int32 has_adam, file_ctx, then params, [adam_m, adam_v],
   the user block, and an FNV-1a 64-bit hash of every byte before it, so a truncated or damaged
   file is refused rather than half loaded. Every field is range-checked and every float read
   before anything is loaded: weights and moments finite, second moments >= 0 (a crafted
   negative one would put NaN into every weight at the next step). Written to PATH.tmp and
   renamed: a crash, even kill -9, never replaces a good checkpoint. It is a model file too:
   mft_model_open reads its weights (and nothing else). */

typedef struct mft__ckpt_head {
    char magic[8];
    int32_t shape[14];
    float eps, theta, rope[3];
    int64_t step, n_params, user_bytes;
    int32_t has_adam, file_ctx; /* file_ctx: the context of the file the run started from (0: seq_len) */
} mft__ckpt_head;

static mft__ckpt_head mft__ckpt_head_of(const mft_model *m, size_t user_bytes)
{
    mft__ckpt_head h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, "MFTCKPT2", 8);
    const mft_config *c = &m->cfg;
    int32_t sh[14] = { c->dim,        c->hidden_dim, c->n_layers,          c->n_heads,      c->n_kv_heads,
                       c->vocab_size, c->seq_len,    c->shared_classifier, mft_head_dim(c), c->arch,
                       c->qkv_bias,   c->qk_norm,    c->rope_scaling,      c->rope_orig_ctx };
    memcpy(h.shape, sh, sizeof sh);
    h.eps = c->norm_eps;
    h.theta = c->rope_theta;
    h.rope[0] = c->rope_factor;
    h.rope[1] = c->rope_low_freq;
    h.rope[2] = c->rope_high_freq;
    h.step = m->step;
    h.n_params = (int64_t)m->n_params;
    h.user_bytes = (int64_t)user_bytes;
    h.has_adam = m->adam_m != NULL;
    h.file_ctx = c->file_ctx > c->seq_len ? c->file_ctx : 0;
    return h;
}

/* the floats of a checkpoint that no training run can produce: a non-finite weight or moment,
   or a negative second moment (AdamW divides by its square root) */
static mft_status mft__ckpt_values(const float *x, size_t n, int second, uint64_t at, const char *name, mft_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || (second && x[i] < 0.0f))
            return mft__fail(err, MFT_ERR_FORMAT, "'%s' is damaged: %s %g at byte %llu", name,
                             second ? "AdamW second moment" : "a weight or first moment", (double)x[i],
                             (unsigned long long)(at + 4 * i));
    return MFT_OK;
}

MFT_API mft_status mft_checkpoint_save(const mft_model *m, const char *path, const void *user, size_t user_bytes,
                                       mft_error *err)
{
    if (!m || !m->params || !path || (user_bytes && !user))
        return mft__fail(err, MFT_ERR_ARG, "mft_checkpoint_save: NULL argument");
    mft__ckpt_head h = mft__ckpt_head_of(m, user_bytes);
    /* a checkpoint is what a run continues from: never one that could not have been trained */
    for (int i = 0; i < (h.has_adam ? 3 : 1); i++) {
        const float *x = i == 0 ? m->params : i == 1 ? m->adam_m : m->adam_v;
        mft_status s = mft__ckpt_values(x, m->n_params, i == 2, 0, path, err);
        if (s)
            return mft__fail(err, MFT_ERR_NONFINITE,
                             "'%s' not written: the %s hold a value no run can continue "
                             "from (NaN, Inf or a negative second moment)",
                             path, i ? "AdamW moments" : "weights");
    }
    char *tmp;
    mft_status st;
    FILE *f = mft__tmp_create(path, &tmp, &st, err);
    if (!f) return st;
    uint64_t hash = mft_hash(MFT_HASH_SEED, &h, sizeof h);
    int ok = fwrite(&h, sizeof h, 1, f) == 1;
    const void *part[4] = { m->params, m->adam_m, m->adam_v, user };
    size_t bytes[4] = { m->n_params * sizeof(float), h.has_adam ? m->n_params * sizeof(float) : 0,
                        h.has_adam ? m->n_params * sizeof(float) : 0, user_bytes };
    for (int i = 0; i < 4 && ok; i++) {
        if (!bytes[i]) continue;
        ok = fwrite(part[i], 1, bytes[i], f) == bytes[i];
        hash = mft_hash(hash, part[i], bytes[i]);
    }
    ok = ok && fwrite(&hash, 8, 1, f) == 1;
    return mft__tmp_commit(f, tmp, path, ok, err);
}

/* The header, every field in range, and the file's size to the byte; *c gets the model's
   config (as mft_model_config reads it). */
static mft_status mft__ckpt_header(mft__src *f, mft__ckpt_head *h, mft_config *c, mft_error *err)
{
    if (f->size < sizeof *h + 8 || mft__src_seek(f, 0, NULL) || mft__src_read(f, h, sizeof *h, NULL) ||
        memcmp(h->magic, "MFTCKPT2", 8))
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is not a maskft training checkpoint", f->name);
    memset(c, 0, sizeof *c);
    const int32_t *v = h->shape;
    c->dim = v[0], c->hidden_dim = v[1], c->n_layers = v[2], c->n_heads = v[3], c->n_kv_heads = v[4];
    c->vocab_size = v[5], c->seq_len = v[6], c->shared_classifier = v[7], c->head_dim = v[8], c->arch = v[9];
    c->qkv_bias = v[10], c->qk_norm = v[11], c->rope_scaling = v[12], c->rope_orig_ctx = v[13];
    c->norm_eps = h->eps, c->rope_theta = h->theta;
    c->rope_factor = h->rope[0], c->rope_low_freq = h->rope[1], c->rope_high_freq = h->rope[2];
    c->file_ctx = h->file_ctx;
    /* 64-bit: the header's fields are not checked yet */
    if ((int64_t)c->head_dim * c->n_heads == c->dim) c->head_dim = 0; /* as the readers leave it */
    mft_error e2;
    if (mft_config_check(c, &e2) || c->seq_len > MFT_MAX_CONTEXT || h->file_ctx < 0)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': its header holds no valid model (%s)", f->name,
                         c->seq_len > MFT_MAX_CONTEXT ? "context too long"
                         : h->file_ctx < 0            ? "file_ctx"
                                                      : e2.msg);
    if (h->n_params != (int64_t)mft_param_count(c) || (h->has_adam != 0 && h->has_adam != 1) || h->step < 0 ||
        h->step > ((int64_t)1 << 40) || h->user_bytes < 0 || (uint64_t)h->user_bytes > f->size)
        return mft__fail(err, MFT_ERR_FORMAT,
                         "'%s' is damaged: header fields out of range (parameters %lld, step %lld, run state %lld "
                         "bytes)",
                         f->name, (long long)h->n_params, (long long)h->step, (long long)h->user_bytes);
    uint64_t want = sizeof *h + (uint64_t)h->n_params * 4 * (h->has_adam ? 3 : 1) + (uint64_t)h->user_bytes + 8;
    if (f->size != want)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' has %llu bytes, its header implies %llu: %s", f->name,
                         (unsigned long long)f->size, (unsigned long long)want,
                         f->size < want ? "truncated" : "trailing bytes");
    return MFT_OK;
}

/* First pass over the body: the hash of every byte and the value of every float, before
   anything is overwritten. */
static mft_status mft__ckpt_verify(mft__src *f, const mft__ckpt_head *h, mft_error *err)
{
    uint64_t n = (uint64_t)h->n_params * 4, floats = n * (h->has_adam ? 3 : 1);
    uint64_t total = floats + (uint64_t)h->user_bytes, hash = mft_hash(MFT_HASH_SEED, h, sizeof *h), stored = 0;
    float buf[1 << 14];
    mft_status s = mft__src_seek(f, sizeof *h, err);
    for (uint64_t done = 0; done < total && !s;) {
        /* chunks never straddle the end of a block (weights, m, v, run state): one kind each */
        uint64_t end = done < n ? n : done < floats ? (done < 2 * n ? 2 * n : floats) : total;
        size_t k = end - done < sizeof buf ? (size_t)(end - done) : sizeof buf;
        s = mft__src_read(f, buf, k, err);
        if (!s) hash = mft_hash(hash, buf, k);
        if (!s && done < floats) s = mft__ckpt_values(buf, k / 4, done >= 2 * n, sizeof *h + done, f->name, err);
        done += k;
    }
    if (!s) s = mft__src_read(f, &stored, 8, err);
    if (!s && stored != hash)
        s = mft__fail(err, MFT_ERR_FORMAT, "'%s' is damaged (its checksum does not match)", f->name);
    return s;
}

/* checks everything, then loads: the shape, the size to the byte, every value and the hash,
   before any byte of the model is overwritten */
static mft_status mft__checkpoint_load(mft_model *m, mft__src *f, void *user, size_t user_bytes, mft_error *err)
{
    if (!m || !m->params || (user_bytes && !user))
        return mft__fail(err, MFT_ERR_ARG, "mft_checkpoint_load: NULL argument");
    mft__ckpt_head h, want = mft__ckpt_head_of(m, user_bytes);
    mft_config hc;
    mft_status s = mft__ckpt_header(f, &h, &hc, err);
    if (s) return s;
    if (memcmp(h.shape, want.shape, sizeof h.shape) || h.eps != want.eps || h.theta != want.theta ||
        memcmp(h.rope, want.rope, sizeof h.rope) || h.n_params != want.n_params)
        return mft__fail(
            err, MFT_ERR_FORMAT,
            "'%s' holds a model of another shape (dim %d, %d layers, vocabulary %d, context %d) than this one (dim %d, "
            "%d layers, vocabulary %d, context %d)",
            f->name, h.shape[0], h.shape[2], h.shape[5], h.shape[6], want.shape[0], want.shape[2], want.shape[5],
            want.shape[6]);
    if (h.has_adam && !m->adam_m)
        return mft__fail(err, MFT_ERR_STATE, "'%s' holds optimizer state: open the model with MFT_TRAIN to resume",
                         f->name);
    if (h.user_bytes != (int64_t)user_bytes)
        return mft__fail(err, MFT_ERR_FORMAT,
                         "'%s': its run state is %lld bytes, this program expects %zu (written by "
                         "another version?)",
                         f->name, (long long)h.user_bytes, user_bytes);
    if ((s = mft__ckpt_verify(f, &h, err))) return s;
    /* second pass: load */
    size_t n = m->n_params * sizeof(float);
    s = mft__src_seek(f, sizeof h, err);
    if (!s) s = mft__src_read(f, m->params, n, err);
    if (!s && h.has_adam) {
        s = mft__src_read(f, m->adam_m, n, err);
        if (!s) s = mft__src_read(f, m->adam_v, n, err);
    } else if (!s && m->adam_m) {
        memset(m->adam_m, 0, n);
        memset(m->adam_v, 0, n);
    }
    if (!s && user_bytes) s = mft__src_read(f, user, user_bytes, err);
    if (!s) m->step = (long)h.step;
    if (m->grads) memset(m->grads, 0, n);
    m->step_loss_sum = m->step_weight_sum = m->step_anchor_sum = 0.0;
    m->fwd_B = 0;
    m->anchor_w = m->anchor_logits = NULL;
    m->soft_w = NULL;
    return s;
}

/* A training checkpoint read as a model file (mft_model_config, mft_model_open: eval and
   generate take one): the config from its header; with m, the weights, after the same checks
   as a resume. The optimizer state and the run state stay in the file. */
static mft_status mft__ckpt_model(mft__src *f, mft_config *c, mft_model *m, mft_error *err)
{
    mft__ckpt_head h;
    mft_status s = mft__ckpt_header(f, &h, c, err);
    if (s || !m) return s;
    if ((s = mft__ckpt_verify(f, &h, err))) return s;
    s = mft__src_seek(f, sizeof h, err);
    return s ? s : mft__src_read(f, m->params, m->n_params * sizeof(float), err);
}

MFT_API mft_status mft_checkpoint_load(mft_model *m, const char *path, void *user, size_t user_bytes, mft_error *err)
{
    mft__src f;
    mft_status s = mft__src_open(&f, path, err);
    if (s) return s;
    s = mft__checkpoint_load(m, &f, user, user_bytes, err);
    mft__src_close(&f);
    return s ? s : mft__ok(err);
}

MFT_API mft_status mft_checkpoint_load_from_memory(mft_model *m, const void *data, size_t size, void *user,
                                                   size_t user_bytes, mft_error *err)
{
    mft__src f;
    if (!data) return mft__fail(err, MFT_ERR_ARG, "mft_checkpoint_load_from_memory: NULL data");
    mft__src_memory(&f, data, size);
    mft_status s = mft__checkpoint_load(m, &f, user, user_bytes, err);
    return s ? s : mft__ok(err);
}

/* ============================================================================================
   >>generate
   The same layers as forward for a single position, with keys and values of earlier
   positions read from the cache instead of recomputed (mft_decode); the sampler; and the
   loop that feeds a prompt and samples a continuation (mft_generate), which every caller
   that generates (drafts, probes, fact recall, the tool's generate) uses.
   ============================================================================================ */

MFT_API mft_status mft_decode(mft_model *m, int token, int pos, float **logits, mft_error *err)
{
    if (logits) *logits = NULL;
    if (!m || !(m->flags & MFT_GENERATE))
        return mft__fail(err, MFT_ERR_STATE, "model was initialised without MFT_GENERATE");
    if (m->lora)
        return mft__fail(err, MFT_ERR_STATE, "decode() does not add LoRA adapters: merge them (mft_lora_merge) first");
    const mft_config *c = &m->cfg;
    if (token < 0 || token >= c->vocab_size)
        return mft__fail(err, MFT_ERR_ARG, "token %d is outside the vocabulary (0..%d)", token, c->vocab_size - 1);
    if (pos < 0 || pos >= c->seq_len)
        return mft__fail(err, MFT_ERR_ARG, "position %d is outside the context (0..%d)", pos, c->seq_len - 1);
    int D = c->dim, F = c->hidden_dim, NH = c->n_heads, KV = c->n_kv_heads, hs = mft_head_dim(c), KVD = KV * hs;
    int QD = NH * hs, grp = NH / KV;
    size_t S = (size_t)c->seq_len;
    float scale = 1.0f / sqrtf((float)hs);
    int nt = mft__nthreads(m);
    mft_decode_state *s = &m->s;
    const mft_params *w = &m->w;
    float rs;

    memcpy(s->x, w->tok_emb + (size_t)token * D, (size_t)D * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        float *kc = s->kcache + (size_t)l * S * KVD, *vc = s->vcache + (size_t)l * S * KVD;
        float *kp = kc + (size_t)pos * KVD;
        mft__rmsnorm_fwd(s->xn, &rs, s->x, w->rms_att + (size_t)l * D, 1, D, c->norm_eps, 1);
        /* the heads' norms in place: nothing is kept for a backward pass; s->att is scratch here */
        mft__qkv_fwd(m, l, s->q, kp, vc + (size_t)pos * KVD, s->q, kp, s->att, s->att + NH, s->xn, 1, nt);
        mft__rope(s->q, m->rope_cos, m->rope_sin, 1, 1, pos, NULL, NH, hs, 1.0f, 1);
        mft__rope(kc + (size_t)pos * KVD, m->rope_cos, m->rope_sin, 1, 1, pos, NULL, KV, hs, 1.0f, 1);
        MFT__PARFOR(mft__par(nt, (double)NH * (pos + 1) * hs))
        for (int h = 0; h < NH; h++)
            mft__attn_row(s->att_out + h * hs, s->att + (size_t)h * S, s->q + h * hs, kc + (h / grp) * hs,
                          vc + (h / grp) * hs, KVD, pos + 1, hs, scale);
        mft__matmul_fwd(s->tmp, s->att_out, w->wo + (size_t)l * D * QD, 1, QD, D, nt, m->gemm_ws);
        mft__vec_add(s->x, s->tmp, D);
        mft__rmsnorm_fwd(s->xn, &rs, s->x, w->rms_ffn + (size_t)l * D, 1, D, c->norm_eps, 1);
        mft__matmul_fwd(s->h1, s->xn, w->w1 + (size_t)l * F * D, 1, D, F, nt, m->gemm_ws);
        mft__matmul_fwd(s->h3, s->xn, w->w3 + (size_t)l * F * D, 1, D, F, nt, m->gemm_ws);
        mft__swiglu_fwd(s->h1, s->h1, s->h3, (size_t)F, 1);
        mft__matmul_fwd(s->tmp, s->h1, w->w2 + (size_t)l * D * F, 1, F, D, nt, m->gemm_ws);
        mft__vec_add(s->x, s->tmp, D);
    }
    mft__rmsnorm_fwd(s->xn, &rs, s->x, w->rms_final, 1, D, c->norm_eps, 1);
    mft__matmul_fwd(s->logits, s->xn, w->wcls, 1, D, c->vocab_size, nt, m->gemm_ws);
    if (logits) *logits = s->logits;
    return mft__ok(err);
}

MFT_API int mft_sample(float *logits, int V, float temperature, float top_p, uint64_t *rng)
{
    int best = 0;
    if (!logits || V <= 0) return -1;
    if (!(temperature > 0.0f)) {
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    /* softmax(logits / T) computed as exp((x - max) / T): a tiny T cannot overflow to Inf */
    float mx = mft__vec_max(logits, V);
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        logits[i] = expf((logits[i] - mx) / temperature);
        sum += logits[i];
    }
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
            for (int i = 0; i < V; i++)
                if (p[i] >= mid) mass += p[i];
            if (mass >= top_p)
                lo = mid;
            else
                hi = mid;
        }
        tau = lo;
    }
    double mass = 0.0;
    for (int i = 0; i < V; i++)
        if (p[i] >= tau) mass += p[i];
    uint64_t one = 1;
    double r = mft__rand_f32(rng ? rng : &one) * mass, acc = 0.0;
    for (int i = 0; i < V; i++) {
        if (p[i] < tau) continue;
        best = i;
        acc += p[i];
        if (r < acc) break;
    }
    return best;
}


MFT_API mft_gen_opts mft_gen_opts_default(void)
{
    mft_gen_opts o;
    memset(&o, 0, sizeof o);
    o.max_new = 256;
    o.temperature = 0.0f;
    o.top_p = 1.0f;
    for (int i = 0; i < 4; i++) o.stop[i] = -1;
    return o;
}

/* mft_generate, feeding the prompt from position `from` on (the cache holds the positions before it) */
static mft_status mft__generate(mft_model *m, const int *prompt, int n_prompt, int from, const mft_gen_opts *o,
                                uint64_t *rng, int *out, int cap, int *n_out, int *ended, mft_error *err)
{
    if (n_out) *n_out = 0;
    if (ended) *ended = 0;
    if (!m || !prompt || !o || !n_out || (cap > 0 && !out) || cap < 0)
        return mft__fail(err, MFT_ERR_ARG, "mft_generate: bad argument");
    if (n_prompt < 1) return mft__fail(err, MFT_ERR_ARG, "a generation needs at least one token to start from");
    if (n_prompt > m->cfg.seq_len)
        return mft__fail(err, MFT_ERR_ARG, "the prompt (%d tokens) is longer than the context (%d)", n_prompt,
                         m->cfg.seq_len);
    float *logits = NULL;
    mft_status s = MFT_OK;
    for (int i = from; i < n_prompt && !s; i++) s = mft_decode(m, prompt[i], i, &logits, err);
    /* the prompt and its continuation fit in the context */
    int k = 0, max_new = o->max_new, room = m->cfg.seq_len - n_prompt;
    if (max_new > room) max_new = room;
    while (!s && k < max_new) {
        int next = mft_sample(logits, m->cfg.vocab_size, o->temperature, o->top_p, rng);
        int stop = 0;
        for (int j = 0; j < 4; j++) stop |= o->stop[j] >= 0 && next == o->stop[j];
        if (stop) {
            if (ended) *ended = 1;
            break;
        }
        if (k < cap) out[k] = next;
        k++;
        if (o->on_token && o->on_token(o->user, next)) break;
        if (k < max_new) s = mft_decode(m, next, n_prompt + k - 1, &logits, err);
    }
    *n_out = k;
    if (s) return s;
    if (k > cap) return mft__fail(err, MFT_ERR_SPACE, "%d tokens were generated, more than the %d slots given", k, cap);
    return mft__ok(err);
}

MFT_API mft_status mft_generate(mft_model *m, const int *prompt, int n_prompt, const mft_gen_opts *o, uint64_t *rng,
                                int *out, int cap, int *n_out, int *ended, mft_error *err)
{
    return mft__generate(m, prompt, n_prompt, 0, o, rng, out, cap, n_out, ended, err);
}

MFT_API mft_status mft_generate_cached(mft_model *m, const int *prompt, int n_prompt, int *cache, int *n_cache,
                                       const mft_gen_opts *o, uint64_t *rng, int *out, int cap, int *n_out, int *ended,
                                       mft_error *err)
{
    if (n_out) *n_out = 0;
    if (ended) *ended = 0;
    if (!m || !cache || !n_cache || !prompt || !n_out || *n_cache < 0 || *n_cache > m->cfg.seq_len)
        return mft__fail(err, MFT_ERR_ARG, "mft_generate_cached: bad argument");
    int from = 0, e = 0;
    while (from < *n_cache && from < n_prompt - 1 && cache[from] == prompt[from]) from++;
    *n_cache = from; /* what stays valid whatever happens next */
    mft_status s = mft__generate(m, prompt, n_prompt, from, o, rng, out, cap, n_out, &e, err);
    if (ended) *ended = e;
    if (s) return s;
    /* every new token but the last was fed back; the last too when a stop token followed it */
    int fed = e ? *n_out : *n_out - 1;
    memcpy(cache + from, prompt + from, (size_t)(n_prompt - from) * sizeof(int));
    if (fed > 0) memcpy(cache + n_prompt, out, (size_t)fed * sizeof(int));
    *n_cache = n_prompt + (fed > 0 ? fed : 0);
    return MFT_OK;
}

/* ---- the data order ----------------------------------------------------------------------
   A second generator, beside the sampler's xorshift64*: the order of training examples and
   the windows of plain-text training have always come from this one, so runs made with
   earlier versions reproduce to the byte. */
MFT_API uint64_t mft_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

MFT_API void mft_shuffle(int *a, int n, uint64_t *s)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(mft_rand(s) % (uint64_t)(i + 1)), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* FNV-1a 64: run-state and data fingerprints, and the training checkpoint's checksum */
MFT_API uint64_t mft_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ============================================================================================
   PART II: TEXT AND DATA
   ============================================================================================ */

/* ============================================================================================
   >>files
   The byte source of every reader (declared in config): a file read as it goes, or memory,
   with one bounds check in front of every read. Sizes and offsets are 64-bit: fseeko/ftello
   (or _fseeki64 on Windows), since long is 32 bits on some systems. Writers go through a
   temporary file that is renamed over the target only when every write succeeded.
   ============================================================================================ */

#if defined(_WIN32)
#define MFT__FSEEK(f, o, w) _fseeki64(f, (__int64)(o), w)
#define MFT__FTELL(f) ((int64_t)_ftelli64(f))
#else
#define MFT__FSEEK(f, o, w) fseeko(f, (off_t)(o), w)
#define MFT__FTELL(f) ((int64_t)ftello(f))
#endif

static mft_status mft__src_open(mft__src *s, const char *path, mft_error *err)
{
    memset(s, 0, sizeof *s);
    s->name = path ? path : "(null)";
    s->f = path ? fopen(path, "rb") : NULL;
    if (!s->f) return mft__fail(err, MFT_ERR_IO, "cannot open '%s'", s->name);
    int64_t n = -1;
    if (MFT__FSEEK(s->f, 0, SEEK_END) == 0) n = MFT__FTELL(s->f);
    if (n < 0 || MFT__FSEEK(s->f, 0, SEEK_SET) != 0) {
        fclose(s->f);
        s->f = NULL;
        return mft__fail(err, MFT_ERR_IO, "cannot seek in '%s' (not a regular file?)", s->name);
    }
    s->size = (uint64_t)n;
    return MFT_OK;
}

static void mft__src_memory(mft__src *s, const void *data, size_t size)
{
    memset(s, 0, sizeof *s);
    s->name = "(memory)";
    s->mem = (const unsigned char *)data;
    s->size = size;
}

static mft_status mft__src_read(mft__src *s, void *dst, uint64_t n, mft_error *err)
{
    if (n > s->size - s->pos)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is truncated: %llu bytes needed at offset %llu, %llu left", s->name,
                         (unsigned long long)n, (unsigned long long)s->pos, (unsigned long long)(s->size - s->pos));
    if (s->mem) {
        if (n) memcpy(dst, s->mem + s->pos, (size_t)n);
    } else if (n && fread(dst, 1, (size_t)n, s->f) != (size_t)n) {
        return mft__fail(err, MFT_ERR_IO, "read error in '%s'", s->name);
    }
    s->pos += n;
    return MFT_OK;
}

static mft_status mft__src_seek(mft__src *s, uint64_t pos, mft_error *err)
{
    if (pos > s->size)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is truncated: offset %llu is past its end", s->name,
                         (unsigned long long)pos);
    if (!s->mem && MFT__FSEEK(s->f, pos, SEEK_SET) != 0)
        return mft__fail(err, MFT_ERR_IO, "cannot seek in '%s'", s->name);
    s->pos = pos;
    return MFT_OK;
}

static void mft__src_close(mft__src *s)
{
    if (s->f) fclose(s->f);
    s->f = NULL;
}

/* dir/name (malloc'd) */
static MFT__UNUSED char *mft__join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    int slash = dl > 0 && dir[dl - 1] != '/';
    char *p = (char *)MFT_MALLOC(dl + (size_t)slash + nl + 1);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    if (slash) p[dl] = '/';
    memcpy(p + dl + (size_t)slash, name, nl + 1);
    return p;
}

/* whether a file can be opened for reading */
static MFT__UNUSED int mft__exists(const char *path)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (f) fclose(f);
    return f != NULL;
}

/* a stream read to its end (standard input, a pipe), NUL-terminated */
static mft_status mft__read_stream(FILE *f, const char *name, size_t max, char **out, size_t *n, mft_error *err)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = (char *)MFT_MALLOC(cap);
    for (;;) {
        if (!buf) return mft__fail(err, MFT_ERR_NOMEM, "out of memory reading %s", name);
        size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (len > max) {
            MFT_FREE(buf);
            return mft__fail(err, MFT_ERR_FORMAT, "%s is too large (over %zu bytes)", name, max);
        }
        if (got == 0) break;
        if (len + 1 == cap) {
            char *grown = (char *)MFT_REALLOC(buf, cap * 2);
            if (!grown) MFT_FREE(buf);
            buf = grown;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        MFT_FREE(buf);
        return mft__fail(err, MFT_ERR_IO, "read error on %s", name);
    }
    buf[len] = 0;
    *out = buf;
    *n = len;
    return MFT_OK;
}

/* A whole file, NUL-terminated: its size first for a regular file, else (a pipe, a device;
   path NULL: standard input) read until its end. */
static mft_status mft__read_all(const char *path, size_t max, char **out, size_t *n, mft_error *err)
{
    *out = NULL;
    *n = 0;
    if (!path) return mft__read_stream(stdin, "standard input", max, out, n, err);
    mft__src s;
    mft_status st = mft__src_open(&s, path, NULL);
    if (st == MFT_ERR_IO) { /* not seekable: read it as a stream */
        FILE *f = fopen(path, "rb");
        if (!f) return mft__fail(err, MFT_ERR_IO, "cannot open '%s'", path);
        char name[300];
        snprintf(name, sizeof name, "'%s'", path);
        st = mft__read_stream(f, name, max, out, n, err);
        fclose(f);
        return st;
    }
    if (s.size > max) {
        mft__src_close(&s);
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is too large (%llu bytes, the limit is %zu)", path,
                         (unsigned long long)s.size, max);
    }
    char *buf = (char *)MFT_MALLOC((size_t)s.size + 1);
    if (!buf)
        st = mft__fail(err, MFT_ERR_NOMEM, "out of memory reading '%s'", path);
    else
        st = mft__src_read(&s, buf, s.size, err);
    mft__src_close(&s);
    if (st) {
        MFT_FREE(buf);
        return st;
    }
    buf[s.size] = 0;
    *out = buf;
    *n = (size_t)s.size;
    return MFT_OK;
}

MFT_API mft_status mft_read_file(const char *path, size_t max_bytes, char **data, size_t *size, mft_error *err)
{
    if (!data || !size) return mft__fail(err, MFT_ERR_ARG, "mft_read_file: NULL argument");
    mft_status s = mft__read_all(path, max_bytes, data, size, err);
    return s ? s : mft__ok(err);
}

MFT_API int mft_jsonl_next(const char *data, size_t size, size_t *pos, int *line, const char **rec, int *len)
{
    while (data && *pos < size) {
        size_t b = *pos, e = b;
        while (e < size && data[e] != '\n') e++;
        *pos = e < size ? e + 1 : e;
        ++*line;
        size_t i = b;
        while (i < e && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r')) i++;
        if (i < e) {
            *rec = data + b;
            *len = (int)(e - b);
            return 1;
        }
    }
    return 0;
}

/* PATH.tmp, opened for writing; on failure NULL with *st set */
static FILE *mft__tmp_create(const char *path, char **tmp, mft_status *st, mft_error *err)
{
    size_t plen = strlen(path);
    *tmp = (char *)MFT_MALLOC(plen + 5);
    if (!*tmp) {
        *st = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(*tmp, path, plen);
    memcpy(*tmp + plen, ".tmp", 5);
    FILE *f = fopen(*tmp, "wb");
    if (!f) {
        *st = mft__fail(err, MFT_ERR_IO, "cannot create '%s'", *tmp);
        MFT_FREE(*tmp);
        *tmp = NULL;
    }
    return f;
}

/* closes f; renames tmp to path if ok (every write succeeded), else removes it; frees tmp */
static mft_status mft__tmp_commit(FILE *f, char *tmp, const char *path, int ok, mft_error *err)
{
    int why = ok ? 0 : errno;                      /* the failing write's reason (ENOSPC, EFBIG, EIO) */
    if (ok && fflush(f) != 0) ok = 0, why = errno; /* the buffered tail: where a full disk shows */
    if (fclose(f) != 0 && ok) ok = 0, why = errno;
    mft_status st = MFT_OK;
    if (ok && rename(tmp, path) != 0) ok = 0, why = errno;
    if (!ok) {
        remove(tmp);
        st = mft__fail(err, MFT_ERR_IO, "cannot write '%s'%s%s", path, why ? ": " : "", why ? strerror(why) : "");
    }
    MFT_FREE(tmp);
    return st ? st : mft__ok(err);
}

#ifndef MFT_NO_TEXT

/* ============================================================================================
   >>json
   A small JSON reader for tokenizer.json, tokenizer_config.json and (later) JSONL data: the
   whole document becomes an array of nodes; arrays and objects link their children by index
   (first child, next sibling), strings are decoded into one byte pool (they may hold NUL, so
   every string has a length). Depth is limited, so hostile input cannot blow the stack.
   ============================================================================================ */

static int mft__utf8_len(const unsigned char *s, int n); /* unicode */

/* A string builder: into a caller's buffer, where what does not fit is still counted (n is
   the length the whole text needs, as snprintf's return value), or into its own growing one
   (grow = 1; nomem when an allocation failed). The text is NUL-terminated as far as it fits. */
typedef struct mft__sb {
    char *p;
    int n, cap;
    int over, grow, nomem;
} mft__sb;

static void mft__sb_put(mft__sb *b, const char *s, int n)
{
    if (n < 0) n = (int)strlen(s);
    if (b->grow && !b->nomem && (size_t)b->n + (size_t)n + 1 > (size_t)b->cap) {
        size_t cap = b->cap ? (size_t)b->cap : 256;
        while (cap < (size_t)b->n + (size_t)n + 1) cap *= 2;
        char *q = cap < (1u << 31) ? (char *)MFT_REALLOC(b->p, cap) : NULL;
        if (!q)
            b->nomem = 1;
        else {
            b->p = q;
            b->cap = (int)cap;
        }
    }
    if (!b->over && b->n + n < b->cap) {
        memcpy(b->p + b->n, s, (size_t)n);
        b->p[b->n + n] = 0;
    } else {
        b->over = 1;
    }
    b->n += n;
}

/* s[0..n) as a JSON string literal: quote, backslash and the control characters escaped */
static void mft__sb_json(mft__sb *b, const char *s, int n)
{
    mft__sb_put(b, "\"", 1);
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c == '"' || c == '\\') {
            e[0] = '\\';
            e[1] = (char)c;
            mft__sb_put(b, e, 2);
        } else if (c == '\n') {
            mft__sb_put(b, "\\n", 2);
        } else if (c == '\t') {
            mft__sb_put(b, "\\t", 2);
        } else if (c == '\r') {
            mft__sb_put(b, "\\r", 2);
        } else if (c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", c);
            mft__sb_put(b, e, 6);
        } else if (c >= 0x80) {
            /* a byte that is not part of a valid character (a draft cut inside one) would make
               text no JSON reader takes, maskft's included */
            int l = mft_utf8_len(s + i, n - i);
            if (l) {
                mft__sb_put(b, s + i, l);
                i += l - 1;
            } else {
                mft__sb_put(b, "\\ufffd", 6);
            }
        } else {
            int k = i;
            while (k < n && (unsigned char)s[k] >= 0x20 && (unsigned char)s[k] < 0x80 && s[k] != '"' && s[k] != '\\')
                k++;
            mft__sb_put(b, s + i, k - i);
            i = k - 1;
        }
    }
    mft__sb_put(b, "\"", 1);
}

MFT_API mft_status mft_json_escape(const char *s, int n, char *out, int cap, int *len)
{
    if (len) *len = 0;
    if ((!s && n) || n < 0 || cap < 0 || (cap > 0 && !out)) return MFT_ERR_ARG;
    mft__sb b = { out, 0, cap, 0, 0, 0 };
    if (cap > 0) out[0] = 0;
    mft__sb_json(&b, s, n);
    if (len) *len = b.n;
    return b.n < cap || cap == 0 ? MFT_OK : MFT_ERR_SPACE;
}

enum { MFT__J_NULL, MFT__J_FALSE, MFT__J_TRUE, MFT__J_NUM, MFT__J_STR, MFT__J_ARR, MFT__J_OBJ };

typedef struct mft__jnode {
    uint8_t type;
    uint32_t n;         /* string: bytes; array/object: children */
    uint32_t first;     /* string: offset in the pool; array/object: first child (node index) */
    uint32_t next;      /* next sibling, or UINT32_MAX */
    uint32_t key, klen; /* object members: the key, in the pool */
    uint32_t at;        /* byte offset of the value in the text, for messages */
    double num;
} mft__jnode;

typedef struct mft__json {
    mft__jnode *node;
    uint32_t n_node, cap_node;
    char *pool;
    size_t n_pool, cap_pool;
    const char *src; /* the text being parsed, for error positions */
    size_t len, pos;
    int err_line, err_col; /* where the first error is (1-based) */
    char err[160];         /* what it is */
} mft__json;

#define MFT__JNONE UINT32_MAX

static void mft__json_free(mft__json *j)
{
    MFT_FREE(j->node);
    MFT_FREE(j->pool);
    memset(j, 0, sizeof *j);
}

/* line:column (1-based) of a byte offset, for messages */
static void mft__linecol(const char *s, size_t pos, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < pos; i++) {
        if (s[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++; /* columns count characters */
    }
    *line = l;
    *col = c;
}

static int mft__json_error(mft__json *j, const char *what)
{
    mft__linecol(j->src, j->pos, &j->err_line, &j->err_col);
    snprintf(j->err, sizeof j->err, "%s", what);
    return -1;
}

/* line and column of node v in the text it was parsed from */
static void mft__jpos(const mft__json *j, uint32_t v, int *line, int *col)
{
    *line = *col = 1;
    if (v != MFT__JNONE && v < j->n_node) mft__linecol(j->src, j->node[v].at, line, col);
}

static uint32_t mft__json_new(mft__json *j, int type)
{
    if (j->n_node == j->cap_node) {
        uint32_t cap = j->cap_node ? j->cap_node * 2 : 1024;
        if (cap > (1u << 30)) return MFT__JNONE;
        mft__jnode *p = (mft__jnode *)MFT_REALLOC(j->node, cap * sizeof *p);
        if (!p) return MFT__JNONE;
        j->node = p;
        j->cap_node = cap;
    }
    mft__jnode *n = &j->node[j->n_node];
    memset(n, 0, sizeof *n);
    n->type = (uint8_t)type;
    n->next = MFT__JNONE;
    n->first = MFT__JNONE;
    return j->n_node++;
}

static int mft__json_put(mft__json *j, const void *p, size_t n)
{
    if (j->n_pool + n > j->cap_pool) {
        size_t cap = j->cap_pool ? j->cap_pool : 4096;
        while (cap < j->n_pool + n) cap *= 2;
        if (cap > ((size_t)1 << 32)) return -1;
        char *q = (char *)MFT_REALLOC(j->pool, cap);
        if (!q) return -1;
        j->pool = q;
        j->cap_pool = cap;
    }
    memcpy(j->pool + j->n_pool, p, n);
    j->n_pool += n;
    return 0;
}

static void mft__json_ws(mft__json *j)
{
    while (j->pos < j->len &&
           (j->src[j->pos] == ' ' || j->src[j->pos] == '\t' || j->src[j->pos] == '\n' || j->src[j->pos] == '\r'))
        j->pos++;
}

static int mft__utf8_put(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 63));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 63));
        out[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 63));
    out[2] = (char)(0x80 | ((cp >> 6) & 63));
    out[3] = (char)(0x80 | (cp & 63));
    return 4;
}


static int mft__hex4(const char *s, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int c = s[i], d = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (unsigned)d;
    }
    return 0;
}

/* parses a string at j->pos (on the opening quote) into the pool; returns its offset/length */
static int mft__json_string(mft__json *j, uint32_t *off, uint32_t *len)
{
    size_t start = j->n_pool;
    j->pos++;
    for (;;) {
        if (j->pos >= j->len) return mft__json_error(j, "unterminated string");
        unsigned char c = (unsigned char)j->src[j->pos];
        if (c == '"') {
            j->pos++;
            break;
        }
        if (c < 0x20) return mft__json_error(j, "control character in a string (escape it)");
        if (c == '\\') {
            char buf[4];
            int nb = 1;
            if (j->pos + 1 >= j->len) return mft__json_error(j, "unterminated escape");
            switch (j->src[j->pos + 1]) {
            case '"': buf[0] = '"'; break;
            case '\\': buf[0] = '\\'; break;
            case '/': buf[0] = '/'; break;
            case 'b': buf[0] = '\b'; break;
            case 'f': buf[0] = '\f'; break;
            case 'n': buf[0] = '\n'; break;
            case 'r': buf[0] = '\r'; break;
            case 't': buf[0] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (j->pos + 6 > j->len || mft__hex4(j->src + j->pos + 2, &cp))
                    return mft__json_error(j, "bad \\u escape");
                if (cp >= 0xD800 && cp < 0xDC00) {
                    if (j->pos + 12 > j->len || j->src[j->pos + 6] != '\\' || j->src[j->pos + 7] != 'u' ||
                        mft__hex4(j->src + j->pos + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return mft__json_error(j, "unpaired surrogate in \\u escape");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    j->pos += 6;
                } else if (cp >= 0xDC00 && cp < 0xE000) {
                    return mft__json_error(j, "unpaired surrogate in \\u escape");
                }
                nb = mft__utf8_put(cp, buf);
                j->pos += 4;
                break;
            }
            default: return mft__json_error(j, "unknown escape");
            }
            if (mft__json_put(j, buf, (size_t)nb)) return mft__json_error(j, "out of memory");
            j->pos += 2;
            continue;
        }
        /* a run of plain bytes; UTF-8 must be valid */
        size_t s0 = j->pos;
        while (j->pos < j->len) {
            c = (unsigned char)j->src[j->pos];
            if (c == '"' || c == '\\' || c < 0x20) break;
            if (c < 0x80) {
                j->pos++;
                continue;
            }
            int l =
                mft__utf8_len((const unsigned char *)j->src + j->pos, (int)(j->len - j->pos < 4 ? j->len - j->pos : 4));
            if (!l) return mft__json_error(j, "invalid UTF-8");
            j->pos += (size_t)l;
        }
        if (mft__json_put(j, j->src + s0, j->pos - s0)) return mft__json_error(j, "out of memory");
    }
    if (j->n_pool - start > 0xFFFFFFFFu) return mft__json_error(j, "string too long");
    *off = (uint32_t)start;
    *len = (uint32_t)(j->n_pool - start);
    return 0;
}

static uint32_t mft__json_value1(mft__json *j, int depth);

/* a value, and where it starts (for messages about it) */
static uint32_t mft__json_value(mft__json *j, int depth)
{
    mft__json_ws(j);
    size_t at = j->pos;
    uint32_t id = mft__json_value1(j, depth);
    if (id != MFT__JNONE) j->node[id].at = (uint32_t)at;
    return id;
}

static uint32_t mft__json_value1(mft__json *j, int depth)
{
    mft__json_ws(j);
    if (depth > 200) {
        mft__json_error(j, "nested too deeply");
        return MFT__JNONE;
    }
    if (j->pos >= j->len) {
        mft__json_error(j, "unexpected end of input");
        return MFT__JNONE;
    }
    char c = j->src[j->pos];
    uint32_t id;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        id = mft__json_new(j, obj ? MFT__J_OBJ : MFT__J_ARR);
        if (id == MFT__JNONE) {
            mft__json_error(j, "out of memory");
            return id;
        }
        j->pos++;
        mft__json_ws(j);
        uint32_t last = MFT__JNONE, count = 0;
        if (j->pos < j->len && j->src[j->pos] == (obj ? '}' : ']')) {
            j->pos++;
            return id;
        }
        for (;;) {
            uint32_t koff = 0, klen = 0;
            if (obj) {
                mft__json_ws(j);
                if (j->pos >= j->len || j->src[j->pos] != '"') {
                    mft__json_error(j, "expected a string key");
                    return MFT__JNONE;
                }
                if (mft__json_string(j, &koff, &klen)) return MFT__JNONE;
                mft__json_ws(j);
                if (j->pos >= j->len || j->src[j->pos] != ':') {
                    mft__json_error(j, "expected ':'");
                    return MFT__JNONE;
                }
                j->pos++;
            }
            uint32_t ch = mft__json_value(j, depth + 1);
            if (ch == MFT__JNONE) return ch;
            j->node[ch].key = koff;
            j->node[ch].klen = klen;
            if (last == MFT__JNONE)
                j->node[id].first = ch;
            else
                j->node[last].next = ch;
            last = ch;
            count++;
            mft__json_ws(j);
            if (j->pos < j->len && j->src[j->pos] == ',') {
                j->pos++;
                continue;
            }
            if (j->pos < j->len && j->src[j->pos] == (obj ? '}' : ']')) {
                j->pos++;
                break;
            }
            mft__json_error(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            return MFT__JNONE;
        }
        j->node[id].n = count;
        return id;
    }
    if (c == '"') {
        uint32_t off, len;
        if (mft__json_string(j, &off, &len)) return MFT__JNONE;
        id = mft__json_new(j, MFT__J_STR);
        if (id == MFT__JNONE) {
            mft__json_error(j, "out of memory");
            return id;
        }
        j->node[id].first = off;
        j->node[id].n = len;
        return id;
    }
    static const char *const words[3] = { "null", "false", "true" };
    for (int w = 0; w < 3; w++) {
        size_t wl = strlen(words[w]);
        if (j->len - j->pos >= wl && !memcmp(j->src + j->pos, words[w], wl)) {
            j->pos += wl;
            id = mft__json_new(j, w == 0 ? MFT__J_NULL : w == 1 ? MFT__J_FALSE : MFT__J_TRUE);
            if (id == MFT__JNONE) mft__json_error(j, "out of memory");
            return id;
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        /* the JSON number grammar, checked, then converted by strtod on a bounded copy */
        size_t p = j->pos, s0 = p;
        if (j->src[p] == '-') p++;
        if (p >= j->len || !(j->src[p] >= '0' && j->src[p] <= '9')) {
            j->pos = p;
            mft__json_error(j, "bad number");
            return MFT__JNONE;
        }
        if (j->src[p] == '0')
            p++;
        else
            while (p < j->len && j->src[p] >= '0' && j->src[p] <= '9') p++;
        if (p < j->len && j->src[p] == '.') {
            p++;
            if (p >= j->len || !(j->src[p] >= '0' && j->src[p] <= '9')) {
                j->pos = p;
                mft__json_error(j, "bad number");
                return MFT__JNONE;
            }
            while (p < j->len && j->src[p] >= '0' && j->src[p] <= '9') p++;
        }
        if (p < j->len && (j->src[p] == 'e' || j->src[p] == 'E')) {
            p++;
            if (p < j->len && (j->src[p] == '+' || j->src[p] == '-')) p++;
            if (p >= j->len || !(j->src[p] >= '0' && j->src[p] <= '9')) {
                j->pos = p;
                mft__json_error(j, "bad number");
                return MFT__JNONE;
            }
            while (p < j->len && j->src[p] >= '0' && j->src[p] <= '9') p++;
        }
        char small[64], *buf = small;
        size_t nl = p - s0;
        if (nl >= sizeof small && !(buf = (char *)MFT_MALLOC(nl + 1))) {
            mft__json_error(j, "out of memory");
            return MFT__JNONE;
        }
        memcpy(buf, j->src + s0, nl);
        buf[nl] = 0;
        j->pos = p;
        id = mft__json_new(j, MFT__J_NUM);
        if (id != MFT__JNONE)
            j->node[id].num = strtod(buf, NULL);
        else
            mft__json_error(j, "out of memory");
        if (buf != small) MFT_FREE(buf);
        return id;
    }
    mft__json_error(j, "unexpected character");
    return MFT__JNONE;
}

/* Parses one JSON document that fills s[0..n) (surrounding whitespace allowed). Returns the
   root node, or MFT__JNONE with j->err (what) and j->err_line / err_col (where). */
static uint32_t mft__json_parse(mft__json *j, const char *s, size_t n)
{
    memset(j, 0, sizeof *j);
    j->src = s;
    j->len = n;
    /* the string pool exists from the start: a document whose strings are all empty ("", [""],
       {"": ""}) still has valid (empty) strings at offset 0 of it */
    if (!(j->pool = (char *)MFT_MALLOC(64))) {
        mft__json_error(j, "out of memory");
        return MFT__JNONE;
    }
    j->cap_pool = 64;
    uint32_t root = mft__json_value(j, 0);
    if (root == MFT__JNONE) return root;
    mft__json_ws(j);
    if (j->pos != j->len) {
        mft__json_error(j, "trailing characters after the JSON value");
        return MFT__JNONE;
    }
    return root;
}

/* member `key` of object node o, or MFT__JNONE */
static uint32_t mft__jget(const mft__json *j, uint32_t o, const char *key)
{
    if (o == MFT__JNONE || j->node[o].type != MFT__J_OBJ) return MFT__JNONE;
    size_t kl = strlen(key);
    for (uint32_t c = j->node[o].first; c != MFT__JNONE; c = j->node[c].next)
        if (j->node[c].klen == kl && !memcmp(j->pool + j->node[c].key, key, kl)) return c;
    return MFT__JNONE;
}

/* string node -> pointer and length (NULL if not a string) */
static const char *mft__jstr(const mft__json *j, uint32_t v, int *len)
{
    if (v == MFT__JNONE || j->node[v].type != MFT__J_STR) return NULL;
    if (len) *len = (int)j->node[v].n;
    return j->pool + j->node[v].first;
}

static int mft__jstr_is(const mft__json *j, uint32_t v, const char *s)
{
    int n;
    const char *p = mft__jstr(j, v, &n);
    return p && (size_t)n == strlen(s) && !memcmp(p, s, (size_t)n);
}

/* a JSON number that is an integer in [lo, hi]: checked as a double before any cast */
static int mft__jint(const mft__json *j, uint32_t v, double lo, double hi, int *out)
{
    if (v == MFT__JNONE || j->node[v].type != MFT__J_NUM) return 0;
    double x = j->node[v].num;
    if (!(x >= lo && x <= hi) || x != floor(x)) return 0;
    *out = (int)x;
    return 1;
}

/* ---- the public reader: the same parser behind a handle, nodes as ints (-1 = none) ---- */
struct mft_json {
    mft__json j;
    uint32_t root;
};

MFT_API mft_json *mft_json_parse(const char *text, int len, mft_error *err)
{
    return mft_json_parse_at(text, len, NULL, 0, err);
}

MFT_API void mft_json_pos(const mft_json *j, int node, int *line, int *col)
{
    *line = *col = 1;
    if (j && node >= 0 && j->j.src) mft__jpos(&j->j, (uint32_t)node, line, col); /* the text is still there */
}

MFT_API mft_json *mft_json_parse_at(const char *text, int len, const char *where, int line, mft_error *err)
{
    mft_json *h = (mft_json *)mft__calloc(1, sizeof *h);
    if (!h) {
        mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (!text) {
        mft__fail(err, MFT_ERR_ARG, "mft_json_parse: NULL text");
        MFT_FREE(h);
        return NULL;
    }
    h->root = mft__json_parse(&h->j, text, len < 0 ? strlen(text) : (size_t)len);
    if (h->root == MFT__JNONE) {
        if (where)
            mft__errat(err, MFT_ERR_FORMAT, where, line + h->j.err_line - 1, h->j.err_col, "%s", h->j.err);
        else
            mft__fail(err, MFT_ERR_FORMAT, "%d:%d: %s", h->j.err_line, h->j.err_col, h->j.err);
        mft__json_free(&h->j);
        MFT_FREE(h);
        return NULL;
    }
    mft__ok(err);
    return h;
}

MFT_API void mft_json_free(mft_json *h)
{
    if (h) {
        mft__json_free(&h->j);
        MFT_FREE(h);
    }
}
MFT_API int mft_json_root(const mft_json *h) { return h ? (int)h->root : -1; }

static int mft__jok(const mft_json *h, int v) { return h && v >= 0 && (uint32_t)v < h->j.n_node; }

MFT_API int mft_json_get(const mft_json *h, int obj, const char *key)
{
    uint32_t v = mft__jok(h, obj) && key ? mft__jget(&h->j, (uint32_t)obj, key) : MFT__JNONE;
    return v == MFT__JNONE ? -1 : (int)v;
}

MFT_API int mft_json_len(const mft_json *h, int v)
{
    if (!mft__jok(h, v)) return -1;
    int t = h->j.node[v].type;
    return t == MFT__J_STR || t == MFT__J_ARR || t == MFT__J_OBJ ? (int)h->j.node[v].n : -1;
}

MFT_API int mft_json_first(const mft_json *h, int v)
{
    if (!mft__jok(h, v) || (h->j.node[v].type != MFT__J_ARR && h->j.node[v].type != MFT__J_OBJ)) return -1;
    uint32_t c = h->j.node[v].first;
    return c == MFT__JNONE ? -1 : (int)c;
}

MFT_API int mft_json_next(const mft_json *h, int v)
{
    if (!mft__jok(h, v)) return -1;
    uint32_t c = h->j.node[v].next;
    return c == MFT__JNONE ? -1 : (int)c;
}

MFT_API int mft_json_at(const mft_json *h, int arr, int i)
{
    if (!mft__jok(h, arr) || h->j.node[arr].type != MFT__J_ARR || i < 0) return -1;
    uint32_t c = h->j.node[arr].first;
    while (c != MFT__JNONE && i-- > 0) c = h->j.node[c].next;
    return c == MFT__JNONE ? -1 : (int)c;
}

MFT_API const char *mft_json_str(const mft_json *h, int v, int *len)
{
    return mft__jok(h, v) ? mft__jstr(&h->j, (uint32_t)v, len) : NULL;
}

MFT_API int mft_json_num(const mft_json *h, int v, double *out)
{
    if (!mft__jok(h, v) || h->j.node[v].type != MFT__J_NUM) return 0;
    if (out) *out = h->j.node[v].num;
    return 1;
}

/* ============================================================================================
   >>gguf
   GGUF metadata (versions 1 to 3, little-endian): the header, every key/value pair of every
   type (arrays included) and the tensor table. Every count and length is checked against the
   bytes left in the file before anything is allocated or read. Values live in a chunked arena
   owned by the mft_gguf, so pointers into it stay valid until mft_gguf_close.
   ============================================================================================ */

typedef struct mft__chunk {
    struct mft__chunk *next;
    size_t used, cap;
} mft__chunk;

static void *mft__arena_alloc(void **head, size_t n)
{
    mft__chunk *c = (mft__chunk *)*head;
    n = (n + 15) & ~(size_t)15;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ((size_t)1 << 20) ? n : ((size_t)1 << 20);
        mft__chunk *nc = (mft__chunk *)MFT_MALLOC(sizeof(mft__chunk) + 16 + cap);
        if (!nc) return NULL;
        nc->next = c;
        nc->used = 0;
        nc->cap = cap;
        *head = nc;
        c = nc;
    }
    void *p = (char *)(c + 1) + 16 + c->used;
    c->used += n;
    return p;
}

static void mft__arena_free(void **head)
{
    mft__chunk *c = (mft__chunk *)*head;
    while (c) {
        mft__chunk *n = c->next;
        MFT_FREE(c);
        c = n;
    }
    *head = NULL;
}

static const int mft__gguf_size[13] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 }; /* bytes per scalar type */

/* The GGUF reader's state: the byte source, the format version (counts and lengths are uint32
   in version 1, uint64 after), and the status of the first failure, so that every path out
   returns it (the message went to err). */
typedef struct mft__rd {
    mft__src *s;
    int version;
    mft_status st;
    mft_error *err;
} mft__rd;

static int mft__rd_bytes(mft__rd *r, void *dst, uint64_t n)
{
    mft_status s = mft__src_read(r->s, dst, n, r->err);
    if (s) r->st = s;
    return s ? -1 : 0;
}

static int mft__rd_fail(mft__rd *r, mft_status s)
{
    r->st = s;
    return -1;
}

/* a count or length: uint32 in version 1, uint64 after */
static int mft__rd_len(mft__rd *r, uint64_t *v)
{
    if (r->version == 1) {
        uint32_t x;
        if (mft__rd_bytes(r, &x, 4)) return -1;
        *v = x;
        return 0;
    }
    return mft__rd_bytes(r, v, 8);
}

static int mft__rd_str(mft__rd *r, void **arena, mft_gguf_str *s)
{
    uint64_t n;
    const char *name = r->s->name;
    if (mft__rd_len(r, &n)) return -1;
    if (n > r->s->size - r->s->pos)
        return mft__rd_fail(r, mft__fail(r->err, MFT_ERR_FORMAT,
                                         "'%s': a string of %llu bytes at offset %llu runs past the end of the file",
                                         name, (unsigned long long)n, (unsigned long long)r->s->pos));
    char *p = (char *)mft__arena_alloc(arena, (size_t)n + 1);
    if (!p) return mft__rd_fail(r, mft__fail(r->err, MFT_ERR_NOMEM, "out of memory reading '%s'", name));
    if (mft__rd_bytes(r, p, n)) return -1;
    p[n] = 0;
    s->s = p;
    s->n = n;
    return 0;
}

/* A little-endian scalar of a numeric GGUF type at p, into v->v (a union): the integer types in
   u and i (which agree), the float types in f. */
static void mft__gguf_scalar(int type, const uint8_t *p, mft_gguf_kv *v)
{
    uint64_t u = 0;
    int64_t i = 0;
    switch (type) {
    case MFT_GGUF_UINT8: u = p[0]; break;
    case MFT_GGUF_BOOL: u = p[0] != 0; break;
    case MFT_GGUF_INT8: i = (int8_t)p[0]; break;
    case MFT_GGUF_UINT16: {
        uint16_t x;
        memcpy(&x, p, 2);
        u = x;
        break;
    }
    case MFT_GGUF_INT16: {
        int16_t x;
        memcpy(&x, p, 2);
        i = x;
        break;
    }
    case MFT_GGUF_UINT32: {
        uint32_t x;
        memcpy(&x, p, 4);
        u = x;
        break;
    }
    case MFT_GGUF_INT32: {
        int32_t x;
        memcpy(&x, p, 4);
        i = x;
        break;
    }
    case MFT_GGUF_UINT64: memcpy(&u, p, 8); break;
    case MFT_GGUF_INT64: memcpy(&i, p, 8); break;
    case MFT_GGUF_FLOAT32:
    case MFT_GGUF_FLOAT64: {
        double f;
        if (type == MFT_GGUF_FLOAT32) {
            float x;
            memcpy(&x, p, 4);
            f = x;
        } else {
            memcpy(&f, p, 8);
        }
        v->v.f = f;
        return;
    }
    }
    int is_signed = type == MFT_GGUF_INT8 || type == MFT_GGUF_INT16 || type == MFT_GGUF_INT32 || type == MFT_GGUF_INT64;
    if (is_signed)
        u = (uint64_t)i;
    else
        i = (int64_t)u;
    v->v.u = u;
}

static int mft__rd_value(mft__rd *r, void **arena, int type, mft_gguf_kv *kv, int depth)
{
    const char *name = r->s->name;
    if (type < 0 || type > 12)
        return mft__rd_fail(r, mft__fail(r->err, MFT_ERR_FORMAT, "'%s': unknown value type %d at offset %llu", name,
                                         type, (unsigned long long)r->s->pos));
    kv->type = type;
    if (type == MFT_GGUF_STRING) {
        mft_gguf_str s;
        if (mft__rd_str(r, arena, &s)) return -1;
        kv->data = s.s;
        kv->n = s.n;
        return 0;
    }
    if (type == MFT_GGUF_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (depth > 4)
            return mft__rd_fail(r, mft__fail(r->err, MFT_ERR_FORMAT, "'%s': arrays nested too deeply", name));
        if (mft__rd_bytes(r, &et, 4) || mft__rd_len(r, &n)) return -1;
        if (et > 12)
            return mft__rd_fail(r, mft__fail(r->err, MFT_ERR_FORMAT, "'%s': unknown array element type %u", name, et));
        kv->arr_type = (int)et;
        kv->n = n;
        /* each element takes at least one byte (strings at least their length field) */
        uint64_t minsz = et == MFT_GGUF_STRING  ? (r->version == 1 ? 4 : 8)
                         : et == MFT_GGUF_ARRAY ? 12
                                                : (uint64_t)mft__gguf_size[et];
        if (n > (r->s->size - r->s->pos) / minsz)
            return mft__rd_fail(r, mft__fail(r->err, MFT_ERR_FORMAT,
                                             "'%s': an array of %llu elements at offset %llu cannot fit in the file",
                                             name, (unsigned long long)n, (unsigned long long)r->s->pos));
        if (et == MFT_GGUF_STRING) {
            mft_gguf_str *a = (mft_gguf_str *)mft__arena_alloc(arena, (size_t)n * sizeof *a + 1);
            if (!a) return mft__rd_fail(r, mft__fail(r->err, MFT_ERR_NOMEM, "out of memory reading '%s'", name));
            for (uint64_t i = 0; i < n; i++)
                if (mft__rd_str(r, arena, &a[i])) return -1;
            kv->data = a;
        } else if (et == MFT_GGUF_ARRAY) {
            /* an array of arrays is legal GGUF but used by no tokenizer: read past it */
            for (uint64_t i = 0; i < n; i++) {
                mft_gguf_kv sub;
                memset(&sub, 0, sizeof sub);
                if (mft__rd_value(r, arena, MFT_GGUF_ARRAY, &sub, depth + 1)) return -1;
            }
            kv->data = NULL;
        } else {
            void *a = mft__arena_alloc(arena, (size_t)(n * minsz) + 1);
            if (!a) return mft__rd_fail(r, mft__fail(r->err, MFT_ERR_NOMEM, "out of memory reading '%s'", name));
            if (mft__rd_bytes(r, a, n * minsz)) return -1;
            kv->data = a;
        }
        return 0;
    }
    uint8_t b[8] = { 0 };
    if (mft__rd_bytes(r, b, (uint64_t)mft__gguf_size[type])) return -1;
    mft__gguf_scalar(type, b, kv);
    return 0;
}

MFT_API void mft_gguf_free(mft_gguf *g)
{
    if (!g) return;
    mft__arena_free(&g->mem);
    memset(g, 0, sizeof *g);
}

static mft_status mft__gguf_read(mft_gguf *g, mft__src *src, mft_error *err)
{
    const char *path = src->name;
    mft__rd r = { src, 3, MFT_OK, err };
    char magic[4];
    uint32_t ver;
    if (src->size < 8 || mft__rd_bytes(&r, magic, 4) || memcmp(magic, "GGUF", 4))
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is not a GGUF file (no GGUF magic)", path);
    if (mft__rd_bytes(&r, &ver, 4)) return r.st;
    if (ver < 1 || ver > 3) {
        if ((ver >> 24) >= 1 && (ver >> 24) <= 3 && !(ver & 0xFFFFFF))
            return mft__fail(err, MFT_ERR_FORMAT, "'%s' is a big-endian GGUF file; maskft reads little-endian ones",
                             path);
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': unsupported GGUF version %u", path, ver);
    }
    r.version = (int)ver;
    g->version = (int)ver;
    g->file_size = src->size;
    if (mft__rd_len(&r, &g->n_tensors) || mft__rd_len(&r, &g->n_kv)) return r.st;
    /* a key/value pair takes at least 12 bytes, a tensor entry at least 24 */
    uint64_t left = src->size - src->pos;
    if (g->n_kv > left / 12 || g->n_tensors > left / 24)
        return mft__fail(err, MFT_ERR_FORMAT,
                         "'%s': header claims %llu keys and %llu tensors, more than the file can hold", path,
                         (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
    g->kv = (mft_gguf_kv *)mft__arena_alloc(&g->mem, (size_t)g->n_kv * sizeof *g->kv + 1);
    g->tensors = (mft_gguf_tensor *)mft__arena_alloc(&g->mem, (size_t)g->n_tensors * sizeof *g->tensors + 1);
    if (!g->kv || !g->tensors) return mft__fail(err, MFT_ERR_NOMEM, "out of memory reading '%s'", path);
    g->alignment = 32;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        mft_gguf_kv *kv = &g->kv[i];
        mft_gguf_str key;
        uint32_t type;
        memset(kv, 0, sizeof *kv);
        if (mft__rd_str(&r, &g->mem, &key) || mft__rd_bytes(&r, &type, 4)) return r.st;
        kv->key = key.s;
        if (mft__rd_value(&r, &g->mem, (int)type, kv, 0)) return r.st;
        if (!strcmp(kv->key, "general.alignment")) {
            if (kv->type != MFT_GGUF_UINT32 || kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)) || kv->v.u > 65536)
                return mft__fail(err, MFT_ERR_FORMAT, "'%s': general.alignment must be a power of two uint32", path);
            g->alignment = kv->v.u;
        }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        mft_gguf_tensor *t = &g->tensors[i];
        mft_gguf_str name;
        uint32_t nd, type;
        memset(t, 0, sizeof *t);
        if (mft__rd_str(&r, &g->mem, &name) || mft__rd_bytes(&r, &nd, 4)) return r.st;
        t->name = name.s;
        if (nd < 1 || nd > 4)
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s has %u dimensions", path, t->name, nd);
        t->n_dims = (int)nd;
        for (uint32_t d = 0; d < nd; d++)
            if (mft__rd_len(&r, &t->dims[d])) return r.st;
        if (mft__rd_bytes(&r, &type, 4) || mft__rd_bytes(&r, &t->offset, 8)) return r.st;
        t->type = (int)type;
    }
    g->data_offset = (src->pos + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors && g->data_offset > src->size)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is truncated before its tensor data", path);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].offset > src->size - g->data_offset)
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s starts past the end of the file", path,
                             g->tensors[i].name);
    return MFT_OK;
}

MFT_API mft_status mft_gguf_open(mft_gguf *g, const char *path, mft_error *err)
{
    if (!g) return mft__fail(err, MFT_ERR_ARG, "gguf is NULL");
    memset(g, 0, sizeof *g);
    mft__src src;
    mft_status s = mft__src_open(&src, path, err);
    if (s) return s;
    s = mft__gguf_read(g, &src, err);
    mft__src_close(&src);
    if (s) mft_gguf_free(g);
    return s ? s : mft__ok(err);
}

MFT_API mft_status mft_gguf_open_from_memory(mft_gguf *g, const void *data, size_t size, mft_error *err)
{
    if (!g || !data) return mft__fail(err, MFT_ERR_ARG, "mft_gguf_open_from_memory: NULL argument");
    memset(g, 0, sizeof *g);
    mft__src src;
    mft__src_memory(&src, data, size);
    mft_status s = mft__gguf_read(g, &src, err);
    if (s) mft_gguf_free(g);
    return s ? s : mft__ok(err);
}

MFT_API const mft_gguf_kv *mft_gguf_get(const mft_gguf *g, const char *key)
{
    if (!g || !key) return NULL;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

/* element i of a numeric array (or the scalar itself), as int64 / double */
static mft_gguf_kv mft__gguf_elem(const mft_gguf_kv *kv, uint64_t i)
{
    if (kv->type != MFT_GGUF_ARRAY) return *kv;
    mft_gguf_kv e;
    memset(&e, 0, sizeof e);
    e.type = kv->arr_type;
    mft__gguf_scalar(kv->arr_type, (const uint8_t *)kv->data + i * (uint64_t)mft__gguf_size[kv->arr_type], &e);
    return e;
}

static int mft__gguf_is_float(int type) { return type == MFT_GGUF_FLOAT32 || type == MFT_GGUF_FLOAT64; }

/* as an integer: a float truncated toward zero, saturating (no out-of-range conversion) */
static int64_t mft__gguf_int(const mft_gguf_kv *kv, uint64_t i)
{
    mft_gguf_kv e = mft__gguf_elem(kv, i);
    if (!mft__gguf_is_float(e.type)) return e.v.i;
    double f = e.v.f;
    return !(f > -9.2e18) ? (f != f ? 0 : INT64_MIN) : f < 9.2e18 ? (int64_t)f : INT64_MAX;
}

static double mft__gguf_f64(const mft_gguf_kv *kv, uint64_t i)
{
    mft_gguf_kv e = mft__gguf_elem(kv, i);
    return mft__gguf_is_float(e.type) ? e.v.f : (double)e.v.i;
}

/* ============================================================================================
   >>safetensors
   Hugging Face folders: config.json, the weights in model.safetensors or in shards named by
   model.safetensors.index.json, read tensor by tensor into the model's one block (never a
   second copy of the model), in F32, F16 or BF16, converted to the fp32 training copy.
   A safetensors file is an 8-byte little-endian header length n, n bytes of JSON that name
   each tensor's dtype, shape and [begin, end) byte range in the data that follows, then the
   data. Every range is checked against the file, against its shape and against the others.
   Transformers pairs RoPE dimension j of a head with j + hs/2 ("rotate half"), maskft with its
   neighbour (2i, 2i+1): the rows of q_proj and k_proj (and their biases and norms) are put in
   maskft's order as they are read, and back on the way out.
   ============================================================================================ */

enum { MFT__DT_F32 = 0, MFT__DT_F16, MFT__DT_BF16 };
static const int mft__dt_size[3] = { 4, 2, 2 };
static const char *const mft__dt_name[3] = { "F32", "F16", "BF16" };

/* IEEE half -> float, every case: zero, subnormal (exact in float), normal, inf and NaN */
static float mft__f16_to_f32(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, f = h & 1023, u;
    if (e == 31)
        u = s | 0x7F800000u | (f << 13);
    else if (e)
        u = s | ((e + 112) << 23) | (f << 13);
    else if (!f)
        u = s;
    else {
        float x = (float)f * (1.0f / 16777216.0f); /* f * 2^-24 */
        memcpy(&u, &x, 4);
        u |= s;
    }
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static float mft__bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* float -> bf16 / half, rounding to nearest even (NaN stays NaN); what torch's .to() does */
static uint16_t mft__f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

static uint16_t mft__f32_to_f16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t s = (u >> 16) & 0x8000u, a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(s | 0x7E00u);  /* NaN */
    if (a >= 0x477FF000u) return (uint16_t)(s | 0x7C00u); /* rounds to inf */
    if (a < 0x38800000u) {                                /* subnormal or zero */
        float m;
        memcpy(&m, &a, 4);
        return (uint16_t)(s | (uint32_t)lrintf(m * 16777216.0f)); /* m * 2^24, to nearest even */
    }
    uint32_t r = a + 0xFFFu + ((a >> 13) & 1) - 0x38000000u;
    return (uint16_t)(s | (r >> 13));
}

static void mft__to_f32(float *dst, const unsigned char *src, size_t n, int dt)
{
    for (size_t i = 0; i < n; i++) {
        if (dt == MFT__DT_F32) {
            memcpy(dst + i, src + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = dt == MFT__DT_F16 ? mft__f16_to_f32(h) : mft__bf16_to_f32(h);
        }
    }
}

/* one tensor of a safetensors header */
typedef struct mft__st_tensor {
    const char *name;
    int dtype, n_dims, used;
    uint64_t dims[4], begin, end; /* begin, end: from the start of the file */
} mft__st_tensor;

/* one safetensors file: its byte source and its parsed header */
typedef struct mft__st {
    mft__src src;
    mft__json j;
    mft__st_tensor *t;
    char *names; /* the tensors' names, each NUL-terminated */
    int n;
} mft__st;

static void mft__st_free(mft__st *st)
{
    mft__src_close(&st->src);
    mft__json_free(&st->j);
    MFT_FREE(st->t);
    MFT_FREE(st->names);
    memset(st, 0, sizeof *st);
}

static int mft__cmp_range(const void *a, const void *b)
{
    const mft__st_tensor *x = *(const mft__st_tensor *const *)a, *y = *(const mft__st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* reads and checks the header of the safetensors file behind st->src */
static mft_status mft__st_read_header(mft__st *st, mft_error *err)
{
    const char *name = st->src.name;
    uint64_t hn;
    mft_status s = mft__src_read(&st->src, &hn, 8, err);
    if (s) return s;
    if (hn > st->src.size - 8 || hn > ((uint64_t)1 << 28))
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': a safetensors header of %llu bytes, longer than the file", name,
                         (unsigned long long)hn);
    char *h = (char *)MFT_MALLOC((size_t)hn + 1);
    if (!h) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    s = mft__src_read(&st->src, h, hn, err);
    uint32_t root = s ? MFT__JNONE : mft__json_parse(&st->j, h, (size_t)hn);
    if (!s && root == MFT__JNONE)
        s = mft__fail(err, MFT_ERR_FORMAT, "'%s': the safetensors header is not JSON (%d:%d: %s)", name, st->j.err_line,
                      st->j.err_col, st->j.err);
    if (!s && st->j.node[root].type != MFT__J_OBJ)
        s = mft__fail(err, MFT_ERR_FORMAT, "'%s': the safetensors header is not an object", name);
    /* the strings live in the JSON pool; the text itself can go */
    st->j.src = NULL;
    MFT_FREE(h);
    if (s) return s;
    const mft__json *j = &st->j;
    uint64_t data0 = 8 + hn, data_size = st->src.size - data0;
    st->t = (mft__st_tensor *)mft__calloc(j->node[root].n + 1, sizeof *st->t);
    st->names = (char *)MFT_MALLOC(j->n_pool + j->node[root].n + 1);
    if (!st->t || !st->names) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    size_t used = 0;
    for (uint32_t c = j->node[root].first; c != MFT__JNONE; c = j->node[c].next) {
        char *key = st->names + used;
        memcpy(key, j->pool + j->node[c].key, j->node[c].klen);
        key[j->node[c].klen] = 0;
        used += j->node[c].klen + 1;
        if (!strcmp(key, "__metadata__")) continue;
        mft__st_tensor *t = &st->t[st->n];
        uint32_t dt = mft__jget(j, c, "dtype"), sh = mft__jget(j, c, "shape"), off = mft__jget(j, c, "data_offsets");
        t->name = key;
        t->dtype = mft__jstr_is(j, dt, "F32")    ? MFT__DT_F32
                   : mft__jstr_is(j, dt, "F16")  ? MFT__DT_F16
                   : mft__jstr_is(j, dt, "BF16") ? MFT__DT_BF16
                                                 : -1;
        if (t->dtype < 0) {
            int dl = 0;
            const char *d = mft__jstr(j, dt, &dl);
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s is %.*s; maskft reads F32, F16 and BF16", name, key,
                             d ? (dl < 16 ? dl : 16) : 1, d ? d : "?");
        }
        if (sh == MFT__JNONE || j->node[sh].type != MFT__J_ARR || j->node[sh].n > 4 || off == MFT__JNONE ||
            j->node[off].type != MFT__J_ARR || j->node[off].n != 2)
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s has no valid shape and data_offsets", name, key);
        uint64_t numel = 1;
        for (uint32_t d = j->node[sh].first; d != MFT__JNONE; d = j->node[d].next) {
            double x = j->node[d].num;
            if (j->node[d].type != MFT__J_NUM || !(x >= 0 && x < 1e12) || x != floor(x))
                return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s has a bad shape", name, key);
            t->dims[t->n_dims++] = (uint64_t)x;
            numel *= (uint64_t)x;
            if (numel > ((uint64_t)1 << 40))
                return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s is too large", name, key);
        }
        uint32_t b = j->node[off].first, e = j->node[b].next;
        double bd = j->node[b].num, ed = j->node[e].num;
        if (j->node[b].type != MFT__J_NUM || j->node[e].type != MFT__J_NUM || !(bd >= 0) || !(ed >= bd) ||
            ed > (double)data_size || bd != floor(bd) || ed != floor(ed))
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s has data_offsets outside the file's %llu data bytes",
                             name, key, (unsigned long long)data_size);
        t->begin = data0 + (uint64_t)bd;
        t->end = data0 + (uint64_t)ed;
        if (t->end - t->begin != numel * (uint64_t)mft__dt_size[t->dtype])
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor %s has %llu bytes for %llu elements of %s", name, key,
                             (unsigned long long)(t->end - t->begin), (unsigned long long)numel,
                             mft__dt_name[t->dtype]);
        st->n++;
    }
    /* no two tensors may share bytes */
    mft__st_tensor **by = (mft__st_tensor **)MFT_MALLOC(((size_t)st->n + 1) * sizeof *by);
    if (!by) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < st->n; i++) by[i] = &st->t[i];
    qsort(by, (size_t)st->n, sizeof *by, mft__cmp_range);
    for (int i = 1; i < st->n && !s; i++)
        if (by[i]->begin < by[i - 1]->end && by[i]->end > by[i]->begin)
            s = mft__fail(err, MFT_ERR_FORMAT, "'%s': tensors %s and %s overlap", name, by[i - 1]->name, by[i]->name);
    MFT_FREE(by);
    return s;
}

/* maskft's tensor slots as transformers names them (per layer: {l} replaced) */
static const char *const mft__hf_names[MFT__NT] = { "model.embed_tokens.weight",
                                                    "model.layers.%d.input_layernorm.weight",
                                                    "model.layers.%d.self_attn.q_proj.weight",
                                                    "model.layers.%d.self_attn.k_proj.weight",
                                                    "model.layers.%d.self_attn.v_proj.weight",
                                                    "model.layers.%d.self_attn.o_proj.weight",
                                                    "model.layers.%d.post_attention_layernorm.weight",
                                                    "model.layers.%d.mlp.gate_proj.weight",
                                                    "model.layers.%d.mlp.down_proj.weight",
                                                    "model.layers.%d.mlp.up_proj.weight",
                                                    "model.norm.weight",
                                                    "lm_head.weight",
                                                    "model.layers.%d.self_attn.q_proj.bias",
                                                    "model.layers.%d.self_attn.k_proj.bias",
                                                    "model.layers.%d.self_attn.v_proj.bias",
                                                    "model.layers.%d.self_attn.q_norm.weight",
                                                    "model.layers.%d.self_attn.k_norm.weight" };

/* per slot: is it per layer; and for the q/k ones, the heads whose rows are permuted */
static int mft__slot_layered(int i) { return i != 0 && i != 10 && i != 11; }

static int mft__slot_heads(const mft_config *c, int i)
{
    return i == 2 || i == 12 ? c->n_heads : i == 3 || i == 13 ? c->n_kv_heads : i == 15 || i == 16 ? 1 : 0;
}

/* the shape (rows, cols) of one layer of a slot, as transformers stores it ([out, in]; a vector
   has cols 0) */
static void mft__slot_shape(const mft_config *c, int i, uint64_t *rows, uint64_t *cols)
{
    uint64_t D = (uint64_t)c->dim, F = (uint64_t)c->hidden_dim, V = (uint64_t)c->vocab_size,
             hs = (uint64_t)mft_head_dim(c);
    uint64_t QD = (uint64_t)c->n_heads * hs, KVD = (uint64_t)c->n_kv_heads * hs;
    uint64_t r[MFT__NT] = { V, D, QD, KVD, KVD, D, D, F, D, F, D, V, QD, KVD, KVD, hs, hs };
    uint64_t k[MFT__NT] = { D, 0, D, D, D, QD, 0, D, F, D, 0, D, 0, 0, 0, 0, 0 };
    *rows = r[i];
    *cols = k[i];
}

/* transformers' row r of q or k (heads of hs) -> maskft's row: the first half of a head to the
   even places, the second half to the odd ones */
static uint64_t mft__rope_row(uint64_t r, int hs)
{
    uint64_t h = r / (uint64_t)hs, j = r % (uint64_t)hs, half = (uint64_t)hs / 2;
    return h * (uint64_t)hs + (j < half ? 2 * j : 2 * (j - half) + 1);
}

/* the HF config.json of a model -> mft_config; what maskft does not implement is refused by
   name. *dtype: the torch_dtype, for writers. */
static mft_status mft__hf_config(const char *text, size_t len, const char *where, mft_config *c, int *dtype,
                                 mft_error *err)
{
    mft__json j;
    memset(c, 0, sizeof *c);
    uint32_t root = mft__json_parse(&j, text, len);
    mft_status s = MFT_OK;
#define MFT__HFERR(...)                                                                                                \
    do {                                                                                                               \
        s = mft__fail(err, MFT_ERR_FORMAT, __VA_ARGS__);                                                               \
        goto done;                                                                                                     \
    } while (0)
    if (root == MFT__JNONE) {
        s = mft__errat(err, MFT_ERR_FORMAT, where, j.err_line, j.err_col, "%s", j.err);
        goto done;
    }
    int tl;
    const char *mt;
    tl = 0;
    mt = mft__jstr(&j, mft__jget(&j, root, "model_type"), &tl);
    if (!mt) MFT__HFERR("'%s' has no model_type", where);
    if (mft__jstr_is(&j, mft__jget(&j, root, "model_type"), "llama") ||
        mft__jstr_is(&j, mft__jget(&j, root, "model_type"), "mistral"))
        c->arch = MFT_ARCH_LLAMA;
    else if (mft__jstr_is(&j, mft__jget(&j, root, "model_type"), "qwen2"))
        c->arch = MFT_ARCH_QWEN2;
    else if (mft__jstr_is(&j, mft__jget(&j, root, "model_type"), "qwen3"))
        c->arch = MFT_ARCH_QWEN3;
    else
        MFT__HFERR("'%s': model_type \"%.*s\" is not one maskft trains (llama, mistral, qwen2, qwen3)", where,
                   tl < 40 ? tl : 40, mt);
    int v[7];
    static const char *const keys[7] = {
        "hidden_size",         "intermediate_size", "num_hidden_layers",      "num_attention_heads",
        "num_key_value_heads", "vocab_size",        "max_position_embeddings"
    };
    for (int i = 0; i < 7; i++) {
        uint32_t n = mft__jget(&j, root, keys[i]);
        if (i == 4 && n == MFT__JNONE) {
            v[4] = v[3];
            continue;
        }
        if (!mft__jint(&j, n, 1, 1 << 30, &v[i]))
            MFT__HFERR("'%s': %s is missing or not a positive integer", where, keys[i]);
    }
    c->dim = v[0];
    c->hidden_dim = v[1];
    c->n_layers = v[2];
    c->n_heads = v[3];
    c->n_kv_heads = v[4];
    c->vocab_size = v[5];
    /* the context a model is used with: the file's, at most MFT_MAX_CONTEXT (its KV cache is
       seq_len long) */
    c->seq_len = v[6] < MFT_MAX_CONTEXT ? v[6] : MFT_MAX_CONTEXT;
    c->file_ctx = v[6];
    uint32_t x;
    c->norm_eps = 1e-6f;
    if ((x = mft__jget(&j, root, "rms_norm_eps")) != MFT__JNONE) {
        if (j.node[x].type != MFT__J_NUM) MFT__HFERR("'%s': rms_norm_eps is not a number", where);
        c->norm_eps = (float)j.node[x].num;
    }
    c->rope_theta = 10000.0f;
    if ((x = mft__jget(&j, root, "rope_theta")) != MFT__JNONE) {
        if (j.node[x].type != MFT__J_NUM) MFT__HFERR("'%s': rope_theta is not a number", where);
        c->rope_theta = (float)j.node[x].num;
    }
    if ((x = mft__jget(&j, root, "head_dim")) != MFT__JNONE && j.node[x].type != MFT__J_NULL) {
        int hd;
        if (!mft__jint(&j, x, 1, 4096, &hd)) MFT__HFERR("'%s': head_dim is not a positive integer", where);
        c->head_dim = hd == c->dim / c->n_heads && c->dim % c->n_heads == 0 ? 0 : hd;
    }
    x = mft__jget(&j, root, "tie_word_embeddings");
    c->shared_classifier = x != MFT__JNONE && j.node[x].type == MFT__J_TRUE;
    c->qkv_bias = c->arch == MFT_ARCH_QWEN2;
    c->qk_norm = c->arch == MFT_ARCH_QWEN3;
    x = mft__jget(&j, root, "attention_bias");
    if (x != MFT__JNONE && j.node[x].type == MFT__J_TRUE && c->arch != MFT_ARCH_QWEN2)
        MFT__HFERR("'%s': attention_bias (a bias on every attention projection, o_proj too) is not implemented", where);
    x = mft__jget(&j, root, "mlp_bias");
    if (x != MFT__JNONE && j.node[x].type == MFT__J_TRUE) MFT__HFERR("'%s': mlp_bias is not implemented", where);
    x = mft__jget(&j, root, "hidden_act");
    if (x != MFT__JNONE && !mft__jstr_is(&j, x, "silu"))
        MFT__HFERR("'%s': hidden_act must be silu (SwiGLU); other activations are not implemented", where);
    /* a sliding window at least as long as the context is full attention; a shorter one is not
       implemented */
    x = mft__jget(&j, root, "use_sliding_window");
    int use_sw, sw;
    use_sw = x == MFT__JNONE ? c->arch == MFT_ARCH_LLAMA : j.node[x].type == MFT__J_TRUE;
    x = mft__jget(&j, root, "sliding_window");
    if (use_sw && x != MFT__JNONE && j.node[x].type != MFT__J_NULL) {
        if (!mft__jint(&j, x, 1, 1 << 30, &sw)) MFT__HFERR("'%s': sliding_window is not a positive integer", where);
        if (sw < c->seq_len) c->seq_len = sw; /* within the window the attention is the full one */
    }
    x = mft__jget(&j, root, "rope_scaling");
    if (x != MFT__JNONE && j.node[x].type == MFT__J_OBJ) {
        uint32_t ty = mft__jget(&j, x, "rope_type");
        if (ty == MFT__JNONE) ty = mft__jget(&j, x, "type");
        if (mft__jstr_is(&j, ty, "llama3")) {
            c->rope_scaling = MFT_ROPE_LLAMA3;
            const char *rk[3] = { "factor", "low_freq_factor", "high_freq_factor" };
            float *rv[3] = { &c->rope_factor, &c->rope_low_freq, &c->rope_high_freq };
            for (int i = 0; i < 3; i++) {
                uint32_t n = mft__jget(&j, x, rk[i]);
                if (n == MFT__JNONE || j.node[n].type != MFT__J_NUM)
                    MFT__HFERR("'%s': rope_scaling.%s is missing", where, rk[i]);
                *rv[i] = (float)j.node[n].num;
            }
            if (!mft__jint(&j, mft__jget(&j, x, "original_max_position_embeddings"), 1, 1 << 30, &c->rope_orig_ctx))
                MFT__HFERR("'%s': rope_scaling.original_max_position_embeddings is missing", where);
        } else if (!mft__jstr_is(&j, ty, "default")) {
            int rl = 0;
            const char *r = mft__jstr(&j, ty, &rl);
            MFT__HFERR("'%s': rope_scaling of type \"%.*s\" is not implemented (llama3 is)", where,
                       r ? (rl < 20 ? rl : 20) : 1, r ? r : "?");
        }
    }
    *dtype = MFT__DT_F32;
    x = mft__jget(&j, root, "torch_dtype");
    if (mft__jstr_is(&j, x, "bfloat16"))
        *dtype = MFT__DT_BF16;
    else if (mft__jstr_is(&j, x, "float16"))
        *dtype = MFT__DT_F16;
    c->dtype = *dtype; /* MFT__DT_* and MFT_DTYPE_* agree */
    mft_error e2;
    if (mft_config_check(c, &e2)) MFT__HFERR("'%s': %s", where, e2.msg);
#undef MFT__HFERR
done:
    mft__json_free(&j);
    return s;
}

/* find a tensor by name in the open shards */
static mft__st_tensor *mft__st_find(mft__st *sh, int n_sh, const char *name, int *which)
{
    for (int k = 0; k < n_sh; k++)
        for (int i = 0; i < sh[k].n; i++)
            if (!strcmp(sh[k].t[i].name, name)) {
                *which = k;
                return &sh[k].t[i];
            }
    return NULL;
}

/* every tensor of the model from the shards, converted into m->params; then no tensor may be
   left over. m NULL: the checks alone, for config c, before the model is allocated (a config
   of a few bytes can ask for gigabytes; the tensors, inside the file, cannot) */
static mft_status mft__hf_load(mft_model *m, const mft_config *c, mft__st *sh, int n_sh, mft_error *err)
{
    size_t sz[MFT__NT], off = 0;
    mft__tensor_sizes(c, sz);
    int hs = mft_head_dim(c);
    unsigned char *buf = NULL;
    size_t cap = 0;
    mft_status s = MFT_OK;
    for (int i = 0; i < MFT__NT && !s; off += sz[i++]) {
        if (!sz[i]) continue;
        int layers = mft__slot_layered(i) ? c->n_layers : 1, heads = mft__slot_heads(c, i);
        uint64_t rows, cols;
        mft__slot_shape(c, i, &rows, &cols);
        for (int l = 0; l < layers && !s; l++) {
            char name[160];
            int k;
            snprintf(name, sizeof name, mft__hf_names[i], l);
            mft__st_tensor *t = mft__st_find(sh, n_sh, name, &k);
            if (!t) {
                s = mft__fail(err, MFT_ERR_FORMAT, "tensor %s is missing", name);
                break;
            }
            t->used = 1;
            int ok = cols ? t->n_dims == 2 && t->dims[0] == rows && t->dims[1] == cols
                          : t->n_dims == 1 && t->dims[0] == rows;
            if (!ok) {
                s = mft__fail(err, MFT_ERR_FORMAT, "tensor %s has shape [%llu, %llu], the config needs [%llu, %llu]",
                              name, (unsigned long long)t->dims[0],
                              (unsigned long long)(t->n_dims > 1 ? t->dims[1] : 0), (unsigned long long)rows,
                              (unsigned long long)cols);
                break;
            }
            if (!m) continue;
            /* row by row, so a permuted row lands in its place and nothing larger than a row
               is buffered */
            uint64_t rc = cols ? cols : 1, rb = rc * (uint64_t)mft__dt_size[t->dtype];
            if (rb > cap) {
                MFT_FREE(buf);
                cap = (size_t)rb;
                if (!(buf = (unsigned char *)MFT_MALLOC(cap))) {
                    s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
                    break;
                }
            }
            float *dst = m->params + off + (size_t)l * (size_t)(rows * rc);
            s = mft__src_seek(&sh[k].src, t->begin, err);
            for (uint64_t r = 0; r < rows && !s; r++) {
                s = mft__src_read(&sh[k].src, buf, rb, err);
                uint64_t to = heads ? mft__rope_row(r, hs) : r;
                if (!s) mft__to_f32(dst + to * rc, buf, (size_t)rc, t->dtype);
            }
        }
    }
    MFT_FREE(buf);
    for (int k = 0; k < n_sh && !s; k++)
        for (int i = 0; i < sh[k].n && !s; i++) {
            const char *nm = sh[k].t[i].name;
            /* an older transformers wrote the RoPE frequencies; a tied model may repeat lm_head */
            int harmless = strstr(nm, "rotary_emb.inv_freq") || (c->shared_classifier && !strcmp(nm, "lm_head.weight"));
            if (!sh[k].t[i].used && !harmless)
                s = mft__fail(err, MFT_ERR_FORMAT, "tensor %s is not part of a %s model of this config", nm,
                              c->arch == MFT_ARCH_QWEN3   ? "qwen3"
                              : c->arch == MFT_ARCH_QWEN2 ? "qwen2"
                                                          : "llama");
        }
    return s;
}

/* allocate the model's block for c and init it */
static mft_status mft__model_alloc(mft_model *m, const mft_config *c, int B, int T, int flags, mft_error *err)
{
    if (T > c->seq_len)
        return mft__fail(err, MFT_ERR_ARG, "T=%d is longer than the model's context (seq_len %d)", T, c->seq_len);
    mft_status s = mft__check_shape(c, B, T, flags, err);
    if (s) return s;
    size_t bytes = mft_model_bytes(c, B, T, flags);
    void *mem = MFT_MALLOC(bytes);
    if (!mem) return mft__fail(err, MFT_ERR_NOMEM, "cannot allocate %zu bytes for the model", bytes);
    s = mft_model_init(m, c, B, T, flags, mem, bytes, err);
    if (s) {
        MFT_FREE(mem);
        return s;
    }
    m->owns_arena = 1;
    return MFT_OK;
}

/* the model from config.json's text and n_sh open shards; the shards are freed */
static mft_status mft__hf_open(mft_model *m, const char *cfg, size_t cfg_len, const char *where, mft__st *sh, int n_sh,
                               int B, int T, int flags, mft_error *err)
{
    mft_config c;
    int dtype;
    mft_status s = mft__hf_config(cfg, cfg_len, where, &c, &dtype, err);
    for (int k = 0; k < n_sh && !s; k++) s = mft__st_read_header(&sh[k], err);
    if (!s) s = mft__hf_load(NULL, &c, sh, n_sh, err);
    if (!s) s = mft__model_alloc(m, &c, B, T, flags, err);
    if (!s) s = mft__hf_load(m, &c, sh, n_sh, err);
    if (!s) s = mft__check_finite(m, where, err);
    for (int k = 0; k < n_sh; k++) mft__st_free(&sh[k]);
    if (s) mft_model_free(m);
    return s;
}

MFT_API mft_status mft_hf_open_from_memory(mft_model *m, const char *config_json, size_t config_len,
                                           const void *const *shards, const size_t *shard_sizes, int n_shards, int B,
                                           int T, int flags, mft_error *err)
{
    if (!m) return mft__fail(err, MFT_ERR_ARG, "model is NULL");
    memset(m, 0, sizeof *m);
    if (!config_json || !shards || !shard_sizes || n_shards < 1 || n_shards > 4096)
        return mft__fail(err, MFT_ERR_ARG, "mft_hf_open_from_memory: bad argument");
    mft__st *sh = (mft__st *)mft__calloc((size_t)n_shards, sizeof *sh);
    if (!sh) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n_shards; k++) mft__src_memory(&sh[k].src, shards[k], shard_sizes[k]);
    mft_status s = mft__hf_open(m, config_json, config_len, "config.json", sh, n_shards, B, T, flags, err);
    MFT_FREE(sh);
    return s ? s : mft__ok(err);
}

/* the shard files of a folder: those model.safetensors.index.json names, or model.safetensors */
static mft_status mft__hf_shards(const char *dir, char ***files, int *n, mft_error *err)
{
    char *ip = mft__join(dir, "model.safetensors.index.json"), *data = NULL;
    size_t len;
    mft_status s = MFT_OK;
    *files = NULL;
    *n = 0;
    if (!ip) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    FILE *f = fopen(ip, "rb");
    if (!f) {
        MFT_FREE(ip);
        *files = (char **)mft__calloc(1, sizeof(char *));
        if (!*files || !((*files)[0] = mft__join(dir, "model.safetensors")))
            return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        *n = 1;
        return MFT_OK;
    }
    fclose(f);
    mft__json j;
    memset(&j, 0, sizeof j);
    s = mft__read_all(ip, (size_t)64 << 20, &data, &len, err);
    uint32_t root = s ? MFT__JNONE : mft__json_parse(&j, data, len), wm = MFT__JNONE;
    if (!s && root == MFT__JNONE) s = mft__errat(err, MFT_ERR_FORMAT, ip, j.err_line, j.err_col, "%s", j.err);
    if (!s) wm = mft__jget(&j, root, "weight_map");
    if (!s && (wm == MFT__JNONE || j.node[wm].type != MFT__J_OBJ))
        s = mft__fail(err, MFT_ERR_FORMAT, "'%s' has no weight_map", ip);
    if (!s) *files = (char **)mft__calloc(j.node[wm].n + 1, sizeof(char *));
    if (!s && !*files) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    for (uint32_t c = s ? MFT__JNONE : j.node[wm].first; c != MFT__JNONE && !s; c = j.node[c].next) {
        int fl, k = 0;
        const char *fn = mft__jstr(&j, c, &fl);
        if (!fn || memchr(fn, '/', (size_t)fl) || memchr(fn, 0, (size_t)fl)) {
            s = mft__fail(err, MFT_ERR_FORMAT, "'%s': a weight_map entry is not a file name in the folder", ip);
            break;
        }
        char fname[256];
        if (fl >= (int)sizeof fname) {
            s = mft__fail(err, MFT_ERR_FORMAT, "'%s': a shard name is too long", ip);
            break;
        }
        memcpy(fname, fn, (size_t)fl);
        fname[fl] = 0;
        fn = fname;
        char *p = mft__join(dir, fn);
        while (p && k < *n && strcmp((*files)[k], p)) k++;
        if (p && k < *n) {
            MFT_FREE(p);
            continue;
        }
        FILE *g = p ? fopen(p, "rb") : NULL;
        if (!g) {
            s = p ? mft__fail(err, MFT_ERR_IO, "'%s' names the shard %s, which is missing", ip, fn)
                  : mft__fail(err, MFT_ERR_NOMEM, "out of memory");
            MFT_FREE(p);
            break;
        }
        fclose(g);
        (*files)[(*n)++] = p;
    }
    if (s && *files) {
        for (int k = 0; k < *n; k++) MFT_FREE((*files)[k]);
        MFT_FREE(*files);
        *files = NULL;
        *n = 0;
    }
    mft__json_free(&j);
    MFT_FREE(data);
    MFT_FREE(ip);
    return s;
}

/* a folder with a config.json is a Hugging Face model */
static int mft__is_hf_dir(const char *path)
{
    char *p = mft__join(path, "config.json");
    int yes = mft__exists(p);
    MFT_FREE(p);
    return yes;
}

static mft_status mft__hf_open_dir(mft_model *m, const char *dir, int B, int T, int flags, mft_config *only,
                                   mft_error *err)
{
    char *cp = mft__join(dir, "config.json"), *cfg = NULL, **files = NULL;
    size_t len;
    int n = 0;
    if (!cp) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    mft_status s = mft__read_all(cp, (size_t)16 << 20, &cfg, &len, err);
    if (!s && only) {
        int dt;
        s = mft__hf_config(cfg, len, cp, only, &dt, err);
    } else if (!s) {
        s = mft__hf_shards(dir, &files, &n, err);
        mft__st *sh = s ? NULL : (mft__st *)mft__calloc((size_t)n, sizeof *sh);
        if (!s && !sh) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        int opened = 0;
        for (; !s && opened < n; opened++) s = mft__src_open(&sh[opened].src, files[opened], err);
        if (!s)
            s = mft__hf_open(m, cfg, len, cp, sh, n, B, T, flags, err);
        else
            for (int k = 0; k < opened; k++) mft__st_free(&sh[k]);
        MFT_FREE(sh);
    }
    for (int k = 0; k < n; k++) MFT_FREE(files[k]);
    MFT_FREE(files);
    MFT_FREE(cfg);
    MFT_FREE(cp);
    return s;
}


/* the slot and layer of a transformers tensor name, or -1 */
static int mft__hf_slot(const char *name, int *layer)
{
    int l = 0;
    const char *p = name;
    if (!strncmp(name, "model.layers.", 13)) {
        l = (int)strtol(name + 13, (char **)&p, 10);
        if (p == name + 13 || l < 0 || l > 4096) return -1;
    }
    char buf[160];
    for (int i = 0; i < MFT__NT; i++) {
        if (mft__slot_layered(i) != (p != name)) continue;
        snprintf(buf, sizeof buf, mft__hf_names[i], l);
        if (!strcmp(buf, name)) {
            *layer = l;
            return i;
        }
    }
    return -1;
}

/* ---- writing a folder ------------------------------------------------------------------------ */

/* copies the file name from one folder to another (FILE.tmp, then renamed); 0 if there is none */
static mft_status mft__copy_file(const char *from_dir, const char *to_dir, const char *name, mft_error *err)
{
    char *src = mft__join(from_dir, name), *dst = mft__join(to_dir, name), *data = NULL, *tmp = NULL;
    size_t n;
    mft_status s = MFT_OK;
    if (!src || !dst)
        s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    else if (mft__exists(src) && !(s = mft__read_all(src, (size_t)1 << 30, &data, &n, err))) {
        FILE *f = mft__tmp_create(dst, &tmp, &s, err);
        if (f) s = mft__tmp_commit(f, tmp, dst, fwrite(data, 1, n, f) == n, err);
    }
    MFT_FREE(data);
    MFT_FREE(src);
    MFT_FREE(dst);
    return s;
}

static int mft__cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* model.safetensors: every tensor under its transformers name, sorted by name as the Rust
   library writes them, in dtype, q/k rows back in transformers' order */
static mft_status mft__st_write(const mft_model *m, const char *path, int dt, mft_error *err)
{
    const mft_config *c = &m->cfg;
    size_t sz[MFT__NT], off[MFT__NT], o = 0;
    mft__tensor_sizes(c, sz);
    for (int i = 0; i < MFT__NT; o += sz[i++]) off[i] = o;
    int n = 0, hs = mft_head_dim(c);
    char **names = (char **)mft__calloc((size_t)MFT__NT * (size_t)c->n_layers + 1, sizeof(char *));
    if (!names) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < MFT__NT; i++)
        for (int l = 0; sz[i] && l < (mft__slot_layered(i) ? c->n_layers : 1); l++) {
            names[n] = (char *)MFT_MALLOC(160);
            if (names[n]) snprintf(names[n], 160, mft__hf_names[i], l);
            n++;
        }
    mft_status s = MFT_OK;
    for (int k = 0; k < n && !s; k++)
        if (!names[k]) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    if (!s) qsort(names, (size_t)n, sizeof *names, mft__cmp_str);
    /* the header: the tensors' names, shapes and ranges, in that order */
    mft__sb h = { NULL, 0, 0, 0, 1, 0 };
    uint64_t at = 0;
    mft__sb_put(&h, "{\"__metadata__\":{\"format\":\"pt\"}", -1);
    for (int k = 0; k < n && !s; k++) {
        int layer, slot = mft__hf_slot(names[k], &layer);
        uint64_t rows, cols;
        mft__slot_shape(c, slot, &rows, &cols);
        uint64_t bytes = rows * (cols ? cols : 1) * (uint64_t)mft__dt_size[dt];
        char e[400];
        if (cols)
            snprintf(e, sizeof e, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu,%llu],\"data_offsets\":[%llu,%llu]}",
                     names[k], mft__dt_name[dt], (unsigned long long)rows, (unsigned long long)cols,
                     (unsigned long long)at, (unsigned long long)(at + bytes));
        else
            snprintf(e, sizeof e, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}", names[k],
                     mft__dt_name[dt], (unsigned long long)rows, (unsigned long long)at,
                     (unsigned long long)(at + bytes));
        mft__sb_put(&h, e, -1);
        at += bytes;
    }
    mft__sb_put(&h, "}", 1);
    while (h.n % 8) mft__sb_put(&h, " ", 1); /* the data starts 8-aligned, as the Rust library pads */
    if (!s && h.nomem) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    char *tmp = NULL;
    FILE *f = s ? NULL : mft__tmp_create(path, &tmp, &s, err);
    if (f) {
        uint64_t hn = (uint64_t)h.n;
        int ok = fwrite(&hn, 8, 1, f) == 1 && fwrite(h.p, 1, (size_t)h.n, f) == (size_t)h.n;
        unsigned char *row = NULL;
        size_t cap = 0;
        for (int k = 0; k < n && ok; k++) {
            int layer, slot = mft__hf_slot(names[k], &layer), heads = mft__slot_heads(c, slot);
            uint64_t rows, cols;
            mft__slot_shape(c, slot, &rows, &cols);
            uint64_t rc = cols ? cols : 1;
            size_t rb = (size_t)rc * (size_t)mft__dt_size[dt];
            if (rb > cap && !(row = (unsigned char *)MFT_REALLOC(row, cap = rb))) ok = 0;
            const float *src = m->params + off[slot] + (size_t)layer * (size_t)(rows * rc);
            for (uint64_t r = 0; r < rows && ok; r++) {
                const float *x = src + (heads ? mft__rope_row(r, hs) : r) * rc; /* HF row r */
                for (uint64_t q = 0; q < rc; q++) {
                    if (dt == MFT__DT_F32)
                        memcpy(row + 4 * q, x + q, 4);
                    else {
                        uint16_t v = dt == MFT__DT_F16 ? mft__f32_to_f16(x[q]) : mft__f32_to_bf16(x[q]);
                        memcpy(row + 2 * q, &v, 2);
                    }
                }
                ok = fwrite(row, 1, rb, f) == rb;
            }
        }
        MFT_FREE(row);
        s = mft__tmp_commit(f, tmp, path, ok, err);
    }
    for (int k = 0; k < n; k++) MFT_FREE(names[k]);
    MFT_FREE(names);
    MFT_FREE(h.p);
    return s;
}

/* config.json as transformers writes it for the architecture (sorted keys, indent 2) */
static mft_status mft__hf_config_write(const mft_model *m, const char *path, int dt, const mft_tokenizer *t,
                                       mft_error *err)
{
    const mft_config *c = &m->cfg;
    const char *arch[3] = { "LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM" };
    const char *type[3] = { "llama", "qwen2", "qwen3" }, *dtn[3] = { "float32", "float16", "bfloat16" };
    char b[4096], rope[256] = "null";
    if (c->rope_scaling == MFT_ROPE_LLAMA3)
        snprintf(rope, sizeof rope,
                 "{\n    \"factor\": %.9g,\n    \"high_freq_factor\": %.9g,\n    \"low_freq_factor\": %.9g,\n"
                 "    \"original_max_position_embeddings\": %d,\n    \"rope_type\": \"llama3\"\n  }",
                 (double)c->rope_factor, (double)c->rope_high_freq, (double)c->rope_low_freq, c->rope_orig_ctx);
    int bos = t && t->bos_id >= 0 ? t->bos_id : 1, eos = t && t->eos_id >= 0 ? t->eos_id : 2;
    int n = snprintf(
        b, sizeof b,
        "{\n  \"architectures\": [\n    \"%s\"\n  ],\n%s  \"attention_dropout\": 0.0,\n"
        "  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"head_dim\": %d,\n  \"hidden_act\": \"silu\",\n"
        "  \"hidden_size\": %d,\n  \"initializer_range\": 0.02,\n  \"intermediate_size\": %d,\n"
        "  \"max_position_embeddings\": %d,\n  \"model_type\": \"%s\",\n  \"num_attention_heads\": %d,\n"
        "  \"num_hidden_layers\": %d,\n  \"num_key_value_heads\": %d,\n  \"rms_norm_eps\": %.9g,\n"
        "  \"rope_scaling\": %s,\n  \"rope_theta\": %.9g,\n  \"tie_word_embeddings\": %s,\n"
        "  \"torch_dtype\": \"%s\",\n  \"use_cache\": true,\n%s  \"vocab_size\": %d\n}\n",
        arch[c->arch], c->arch == MFT_ARCH_QWEN2 ? "" : "  \"attention_bias\": false,\n", bos, eos, mft_head_dim(c),
        c->dim, c->hidden_dim, c->file_ctx ? c->file_ctx : c->seq_len, type[c->arch], c->n_heads, c->n_layers,
        c->n_kv_heads, (double)c->norm_eps, rope, (double)c->rope_theta, c->shared_classifier ? "true" : "false",
        dtn[dt], c->arch == MFT_ARCH_LLAMA ? "" : "  \"use_sliding_window\": false,\n", c->vocab_size);
    if (n < 0 || n >= (int)sizeof b) return mft__fail(err, MFT_ERR_ARG, "config.json too long");
    char *tmp;
    mft_status s;
    FILE *f = mft__tmp_create(path, &tmp, &s, err);
    if (!f) return s;
    return mft__tmp_commit(f, tmp, path, fwrite(b, 1, (size_t)n, f) == (size_t)n, err);
}

MFT_API mft_status mft_hf_save(const mft_model *m, const char *dir, int dtype, const struct mft_tokenizer *t,
                               const char *copy_from, mft_error *err)
{
    if (!m || !m->params || !dir) return mft__fail(err, MFT_ERR_ARG, "mft_hf_save: NULL argument");
    int dt = dtype < 0 ? m->cfg.dtype : dtype;
    if (dt < MFT_DTYPE_F32 || dt > MFT_DTYPE_BF16)
        return mft__fail(err, MFT_ERR_ARG, "dtype %d is not one of MFT_DTYPE_*", dt);
    if (mft__savable(m, dir, err)) return MFT_ERR_NONFINITE;
    char *cp = mft__join(dir, "config.json"), *sp = mft__join(dir, "model.safetensors");
    char *gp = mft__join(dir, "generation_config.json");
    mft_status s = cp && sp && gp ? MFT_OK : mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    if (!s) s = mft__st_write(m, sp, dt, err);
    if (!s) s = mft__hf_config_write(m, cp, dt, t, err);
    const char *files[5] = { "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
                             "generation_config.json" };
    for (int i = 0; i < 5 && !s && copy_from; i++) s = mft__copy_file(copy_from, dir, files[i], err);
    if (!s && !mft__exists(gp)) { /* the ids generation stops at */
        char g[128], *tmp;
        int n = snprintf(g, sizeof g, "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d\n}\n",
                         t && t->bos_id >= 0 ? t->bos_id : 1, t && t->eos_id >= 0 ? t->eos_id : 2);
        FILE *f = mft__tmp_create(gp, &tmp, &s, err);
        if (f) s = mft__tmp_commit(f, tmp, gp, fwrite(g, 1, (size_t)n, f) == (size_t)n, err);
    }
    MFT_FREE(cp);
    MFT_FREE(sp);
    MFT_FREE(gp);
    return s ? s : mft__ok(err);
}

/* ---- LoRA adapters as Hugging Face PEFT saves them ------------------------------------------
   adapter_model.safetensors (F32): base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight
   (rank, in) and .lora_B.weight (out, rank) for q, k, v, o and mlp gate, up, down; B's rows of
   q and k in transformers' order (maskft keeps them interleaved for its RoPE, see above), and
   adapter_config.json with r, lora_alpha and the target modules. */
MFT_API mft_status mft_lora_save(const mft_lora *lo, const mft_config *c, const char *dir, const char *base_name,
                                 mft_error *err)
{
    if (!lo || !lo->params || !c || !dir) return mft__fail(err, MFT_ERR_ARG, "mft_lora_save: NULL argument");
    static const char *mod[MFT_LORA_N] = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                           "self_attn.o_proj", "mlp.gate_proj",    "mlp.down_proj",
                                           "mlp.up_proj" };
    int L = c->n_layers, n = 2 * L * MFT_LORA_N, hs = mft_head_dim(c), r = lo->rank;
    char **names = (char **)mft__calloc((size_t)n, sizeof(char *));
    mft_status s = names ? MFT_OK : mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !s; i++) {
        int l = i / (2 * MFT_LORA_N), t = i / 2 % MFT_LORA_N;
        if (!(names[i] = (char *)MFT_MALLOC(128)))
            s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        else
            snprintf(names[i], 128, "base_model.model.model.layers.%d.%s.lora_%c.weight", l, mod[t], i % 2 ? 'B' : 'A');
    }
    if (!s) qsort(names, (size_t)n, sizeof *names, mft__cmp_str);
    /* each name back to (layer, target, B?) */
    int *which = (int *)mft__calloc((size_t)n + 1, sizeof(int));
    if (!s && !which) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n && !s; k++) {
        int l = atoi(names[k] + 30), t = 0; /* after "base_model.model.model.layers." */
        while (t < MFT_LORA_N && !strstr(names[k], mod[t])) t++;
        which[k] = (l * MFT_LORA_N + t) * 2 + (strstr(names[k], "lora_B") != NULL);
    }
    mft__sb h = { NULL, 0, 0, 0, 1, 0 };
    uint64_t at = 0;
    mft__sb_put(&h, "{\"__metadata__\":{\"format\":\"pt\"}", -1);
    for (int k = 0; k < n && !s; k++) {
        int t = which[k] / 2 % MFT_LORA_N, b = which[k] % 2, in, out;
        mft_lora_shape(c, t, &in, &out);
        uint64_t rows = b ? (uint64_t)out : (uint64_t)r, cols = b ? (uint64_t)r : (uint64_t)in;
        char e[400];
        snprintf(e, sizeof e, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%llu,%llu],\"data_offsets\":[%llu,%llu]}",
                 names[k], (unsigned long long)rows, (unsigned long long)cols, (unsigned long long)at,
                 (unsigned long long)(at + 4 * rows * cols));
        mft__sb_put(&h, e, -1);
        at += 4 * rows * cols;
    }
    mft__sb_put(&h, "}", 1);
    while (h.n % 8) mft__sb_put(&h, " ", 1);
    if (!s && h.nomem) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    char *sp = mft__join(dir, "adapter_model.safetensors"), *cp = mft__join(dir, "adapter_config.json"), *tmp;
    if (!s && (!sp || !cp)) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    FILE *f = s ? NULL : mft__tmp_create(sp, &tmp, &s, err);
    if (f) {
        uint64_t hn = (uint64_t)h.n;
        int ok = fwrite(&hn, 8, 1, f) == 1 && fwrite(h.p, 1, (size_t)h.n, f) == (size_t)h.n;
        for (int k = 0; k < n && ok; k++) {
            int l = which[k] / 2 / MFT_LORA_N, t = which[k] / 2 % MFT_LORA_N, b = which[k] % 2, in, out;
            mft_lora_shape(c, t, &in, &out);
            if (!b) {
                ok = fwrite(mft_lora_a(lo, c, l, t, 0), 4, (size_t)r * in, f) == (size_t)r * in;
                continue;
            }
            const float *B = mft_lora_b(lo, c, l, t, 0);
            int permute = t == MFT_LORA_Q || t == MFT_LORA_K;
            for (int row = 0; row < out && ok; row++) /* HF row `row` */
                ok = fwrite(B + (permute ? mft__rope_row((uint64_t)row, hs) : (uint64_t)row) * r, 4, (size_t)r, f) ==
                     (size_t)r;
        }
        s = mft__tmp_commit(f, tmp, sp, ok, err);
    }
    if (!s) {
        char b[1024];
        int m =
            snprintf(b, sizeof b,
                     "{\n  \"base_model_name_or_path\": \"%s\",\n  \"bias\": \"none\",\n  \"fan_in_fan_out\": false,\n"
                     "  \"inference_mode\": true,\n  \"lora_alpha\": %.9g,\n  \"lora_dropout\": 0.0,\n"
                     "  \"peft_type\": \"LORA\",\n  \"r\": %d,\n  \"target_modules\": [\n    \"q_proj\",\n"
                     "    \"k_proj\",\n    \"v_proj\",\n    \"o_proj\",\n    \"gate_proj\",\n    \"up_proj\",\n"
                     "    \"down_proj\"\n  ],\n  \"task_type\": \"CAUSAL_LM\"\n}\n",
                     base_name ? base_name : "", (double)lo->alpha, r);
        f = m > 0 && m < (int)sizeof b ? mft__tmp_create(cp, &tmp, &s, err) : NULL;
        if (!f && !s) s = mft__fail(err, MFT_ERR_ARG, "adapter_config.json: the base model's name is too long");
        if (f) s = mft__tmp_commit(f, tmp, cp, fwrite(b, 1, (size_t)m, f) == (size_t)m, err);
    }
    for (int k = 0; names && k < n; k++) MFT_FREE(names[k]);
    MFT_FREE(names);
    MFT_FREE(which);
    MFT_FREE(h.p);
    MFT_FREE(sp);
    MFT_FREE(cp);
    return s ? s : mft__ok(err);
}

/* ---- GGUF models (the file format is in gguf above) ---------------------------------------------------------------------------
   The weights of a GGUF file: llama.cpp's names (token_embd, blk.N.attn_q, ..., output), each
   tensor's dims innermost first (ne0 = the row length), types F32, F16, BF16 and the blocks of
   Q8_0, Q4_0, Q4_K and Q6_K (dequantised as ggml's to_float does: the base was quantised,
   which the caller should say). llama.cpp
   stores llama's q/k rows in maskft's interleaved order already (its converter permutes them);
   qwen2 and qwen3 use NEOX RoPE (pairs i, i + hs/2), so their rows are permuted on the way in,
   as a Hugging Face folder's are. Llama 3.1's RoPE scaling arrives as a rope_freqs tensor of
   per-pair divisors, which is matched against llama3 parameters. */

enum {
    MFT__GG_F32 = 0,
    MFT__GG_F16 = 1,
    MFT__GG_Q4_0 = 2,
    MFT__GG_Q8_0 = 8,
    MFT__GG_Q4_K = 12,
    MFT__GG_Q6_K = 14,
    MFT__GG_BF16 = 30
};

static const char *mft__ggml_type_name(int t)
{
    static const char *const names[] = { "F32",  "F16",  "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1",
                                         "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K" };
    if (t >= 0 && t < 16) return names[t];
    return t == 30 ? "BF16" : "an unknown type";
}

/* elements per block of a type maskft reads (1 for the float types), 0 for the others */
static uint64_t mft__gg_block(int t)
{
    return t == MFT__GG_F32 || t == MFT__GG_F16 || t == MFT__GG_BF16 ? 1
           : t == MFT__GG_Q8_0 || t == MFT__GG_Q4_0                  ? 32
           : t == MFT__GG_Q4_K || t == MFT__GG_Q6_K                  ? 256
                                                                     : 0;
}

/* bytes of n elements of type t (n a multiple of the block), 0 for a type maskft cannot read */
static uint64_t mft__gg_bytes(int t, uint64_t n)
{
    if (t == MFT__GG_F32) return 4 * n;
    if (t == MFT__GG_F16 || t == MFT__GG_BF16) return 2 * n;
    uint64_t blk = mft__gg_block(t);
    if (!blk || n % blk) return 0;
    return n / blk * (t == MFT__GG_Q8_0 ? 34 : t == MFT__GG_Q4_0 ? 18 : t == MFT__GG_Q4_K ? 144 : 210);
}

/* one row of n elements of type t at src -> floats */
/* the 6-bit scale and min of sub-block j of a K-quant block: 12 bytes hold 8 pairs, the first
   four in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins), the last four split into a low
   nibble in bytes 8-11 and the two top bits of bytes 0-7 */
static void mft__gg_k4_scale(int j, const unsigned char *q, int *sc, int *mn)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static float mft__gg_half(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return mft__f16_to_f32(h);
}

/* one row of n elements of type t at src -> floats, in ggml's arithmetic order */
static void mft__gg_row(float *dst, const unsigned char *src, uint64_t n, int t)
{
    if (t == MFT__GG_F32) {
        memcpy(dst, src, (size_t)n * 4);
    } else if (t == MFT__GG_F16 || t == MFT__GG_BF16) {
        mft__to_f32(dst, src, (size_t)n, t == MFT__GG_F16 ? MFT__DT_F16 : MFT__DT_BF16);
    } else if (t == MFT__GG_Q8_0) { /* blocks of 32: a half scale d and 32 int8 q; x = d q */
        for (uint64_t b = 0; b < n / 32; b++, src += 34, dst += 32) {
            float d = mft__gg_half(src);
            const signed char *q = (const signed char *)(src + 2);
            for (int i = 0; i < 32; i++) dst[i] = d * (float)q[i];
        }
    } else if (t == MFT__GG_Q4_0) { /* blocks of 32: d, then 16 bytes whose low nibbles are
                                       x[0..16) and high nibbles x[16..32); x = d (q - 8) */
        for (uint64_t b = 0; b < n / 32; b++, src += 18, dst += 32) {
            float d = mft__gg_half(src);
            for (int i = 0; i < 16; i++) {
                dst[i] = (float)((src[2 + i] & 0xF) - 8) * d;
                dst[i + 16] = (float)((src[2 + i] >> 4) - 8) * d;
            }
        }
    } else if (t == MFT__GG_Q4_K) { /* super-blocks of 256: half d and dmin, 12 bytes of 6-bit
                                       scales and mins for 8 sub-blocks of 32, 128 bytes of
                                       nibbles (64 values per 32 bytes: low nibbles first);
                                       x = d sc q - dmin m */
        for (uint64_t b = 0; b < n / 256; b++, src += 144) {
            float d = mft__gg_half(src), dmin = mft__gg_half(src + 2);
            const unsigned char *sc = src + 4, *q = src + 16;
            for (int j = 0; j < 8; j += 2, q += 32) {
                int s1, m1, s2, m2;
                mft__gg_k4_scale(j, sc, &s1, &m1);
                mft__gg_k4_scale(j + 1, sc, &s2, &m2);
                float d1 = d * (float)s1, o1 = dmin * (float)m1, d2 = d * (float)s2, o2 = dmin * (float)m2;
                for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0xF) - o1;
                for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - o2;
            }
        }
    } else { /* Q6_K: super-blocks of 256: 128 bytes of low nibbles, 64 bytes of 2-bit high
                parts, 16 int8 scales (one per 16 values), half d; x = d sc (q - 32) */
        for (uint64_t b = 0; b < n / 256; b++, src += 210) {
            const unsigned char *ql = src, *qh = src + 128;
            const signed char *sc = (const signed char *)(src + 192);
            float d = mft__gg_half(src + 208);
            for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8, dst += 128)
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    dst[l] = d * (float)sc[is] * (float)q1;
                    dst[l + 32] = d * (float)sc[is + 2] * (float)q2;
                    dst[l + 64] = d * (float)sc[is + 4] * (float)q3;
                    dst[l + 96] = d * (float)sc[is + 6] * (float)q4;
                }
        }
    }
}

static const char *const mft__gg_names[MFT__NT] = {
    "token_embd.weight",        "blk.%d.attn_norm.weight",   "blk.%d.attn_q.weight",   "blk.%d.attn_k.weight",
    "blk.%d.attn_v.weight",     "blk.%d.attn_output.weight", "blk.%d.ffn_norm.weight", "blk.%d.ffn_gate.weight",
    "blk.%d.ffn_down.weight",   "blk.%d.ffn_up.weight",      "output_norm.weight",     "output.weight",
    "blk.%d.attn_q.bias",       "blk.%d.attn_k.bias",        "blk.%d.attn_v.bias",     "blk.%d.attn_q_norm.weight",
    "blk.%d.attn_k_norm.weight"
};

static const mft_gguf_tensor *mft__gg_find(const mft_gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

/* an integer key <arch>.<what>, or def when absent; -1 when present but not a non-negative integer */
static int64_t mft__gg_arch_int(const mft_gguf *g, const char *arch, const char *what, int64_t def)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, what);
    const mft_gguf_kv *kv = mft_gguf_get(g, key);
    if (!kv) return def;
    if (kv->type == MFT_GGUF_ARRAY || kv->type == MFT_GGUF_STRING || kv->type == MFT_GGUF_FLOAT32 ||
        kv->type == MFT_GGUF_FLOAT64 || kv->v.i < 0)
        return -1;
    return kv->v.i;
}

static double mft__gg_arch_f(const mft_gguf *g, const char *arch, const char *what, double def)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, what);
    const mft_gguf_kv *kv = mft_gguf_get(g, key);
    return kv && kv->type != MFT_GGUF_ARRAY && kv->type != MFT_GGUF_STRING ? mft__gguf_f64(kv, 0) : def;
}

/* the llama3 parameters whose per-pair divisors equal rope_freqs (float32, as llama.cpp's
   converter writes them): factor = the largest divisor, low/high frequency factors 1 and 4 (every
   Llama 3.x), the original context searched among the powers of two */
static int mft__gg_fit_llama3(mft_config *c, const float *ff, int n)
{
    float mx = 0;
    for (int i = 0; i < n; i++) mx = ff[i] > mx ? ff[i] : mx;
    for (int ctx = 1; ctx <= (1 << 20); ctx *= 2) {
        mft_config t = *c;
        t.rope_scaling = MFT_ROPE_LLAMA3;
        t.rope_factor = mx;
        t.rope_low_freq = 1.0f;
        t.rope_high_freq = 4.0f;
        t.rope_orig_ctx = ctx;
        int ok = 1, hs = mft_head_dim(c);
        for (int i = 0; i < n && ok; i++) {
            double f = pow((double)c->rope_theta, -2.0 * i / hs), g = mft__rope_freq(&t, i, hs);
            ok = fabs((float)(f / g) - ff[i]) <= 1e-6f * ff[i];
        }
        if (ok) {
            *c = t;
            return 1;
        }
    }
    return 0;
}

/* the config of a GGUF model; *quant: a tensor was quantised */
static mft_status mft__gg_config(const mft_gguf *g, const char *where, mft_config *c, mft__src *src, mft_error *err)
{
    memset(c, 0, sizeof *c);
    const mft_gguf_kv *ak = mft_gguf_get(g, "general.architecture");
    if (!ak || ak->type != MFT_GGUF_STRING)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' has no general.architecture", where);
    const char *arch = (const char *)ak->data;
    if (!strcmp(arch, "llama"))
        c->arch = MFT_ARCH_LLAMA;
    else if (!strcmp(arch, "qwen2"))
        c->arch = MFT_ARCH_QWEN2;
    else if (!strcmp(arch, "qwen3"))
        c->arch = MFT_ARCH_QWEN3;
    else
        return mft__fail(err, MFT_ERR_FORMAT,
                         "'%s': architecture \"%.40s\" is not one maskft trains (llama, qwen2, qwen3)", where, arch);
    const mft_gguf_tensor *emb = mft__gg_find(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': tensor token_embd.weight is missing", where);
    int64_t v[6] = { mft__gg_arch_int(g, arch, "embedding_length", -1),
                     mft__gg_arch_int(g, arch, "feed_forward_length", -1),
                     mft__gg_arch_int(g, arch, "block_count", -1),
                     mft__gg_arch_int(g, arch, "attention.head_count", -1),
                     mft__gg_arch_int(g, arch, "attention.head_count_kv", 0),
                     mft__gg_arch_int(g, arch, "context_length", -1) };
    const char *names[6] = { "embedding_length",     "feed_forward_length",     "block_count",
                             "attention.head_count", "attention.head_count_kv", "context_length" };
    for (int i = 0; i < 6; i++)
        if (v[i] < 0 || v[i] > (1 << 30))
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': %s.%s is missing or not a single integer", where, arch,
                             names[i]);
    c->dim = (int)v[0];
    c->hidden_dim = (int)v[1];
    c->n_layers = (int)v[2];
    c->n_heads = (int)v[3];
    c->n_kv_heads = v[4] ? (int)v[4] : c->n_heads;
    c->seq_len = v[5] < MFT_MAX_CONTEXT ? (int)v[5] : MFT_MAX_CONTEXT;
    c->file_ctx = (int)v[5];
    c->dtype = emb->type == MFT__GG_F16 ? MFT_DTYPE_F16 : emb->type == MFT__GG_BF16 ? MFT_DTYPE_BF16 : MFT_DTYPE_F32;
    c->vocab_size = emb->dims[1] < (1u << 30) ? (int)emb->dims[1] : -1;
    int64_t kl = mft__gg_arch_int(g, arch, "attention.key_length", 0);
    int64_t vl = mft__gg_arch_int(g, arch, "attention.value_length", kl);
    if (kl < 0 || vl != kl)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': key and value lengths differ or are invalid", where);
    if (kl && (c->n_heads <= 0 || kl != c->dim / c->n_heads || c->dim % c->n_heads)) c->head_dim = (int)kl;
    int64_t rd = mft__gg_arch_int(g, arch, "rope.dimension_count", 0);
    int hs = c->n_heads > 0 ? (kl ? (int)kl : c->dim / c->n_heads) : 0;
    if (rd && rd != hs)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': RoPE on %lld of %d dimensions of a head is not implemented", where,
                         (long long)rd, hs);
    c->norm_eps = (float)mft__gg_arch_f(g, arch, "attention.layer_norm_rms_epsilon", 1e-5);
    c->rope_theta = (float)mft__gg_arch_f(g, arch, "rope.freq_base", 10000.0);
    c->shared_classifier = mft__gg_find(g, "output.weight") == NULL;
    c->qkv_bias = mft__gg_find(g, "blk.0.attn_q.bias") != NULL;
    c->qk_norm = c->arch == MFT_ARCH_QWEN3;
    if (c->qkv_bias && c->arch != MFT_ARCH_QWEN2)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': q/k/v biases in a %s model are not implemented", where, arch);
    char key[96];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const mft_gguf_kv *st = mft_gguf_get(g, key);
    if (st && st->type == MFT_GGUF_STRING && strcmp((const char *)st->data, "none"))
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': rope scaling \"%.20s\" is not implemented", where,
                         (const char *)st->data);
    if (mft__gg_arch_int(g, arch, "attention.sliding_window", 0)) {
        int64_t sw = mft__gg_arch_int(g, arch, "attention.sliding_window", 0);
        if (sw > 0 && sw < c->seq_len) c->seq_len = (int)sw;
    }
    mft_error e2;
    if (mft_config_check(c, &e2)) return mft__fail(err, MFT_ERR_FORMAT, "'%s': %s", where, e2.msg);
    const mft_gguf_tensor *rf = mft__gg_find(g, "rope_freqs.weight");
    if (rf) {
        int n = hs / 2;
        if (rf->type != MFT__GG_F32 || rf->n_dims != 1 || rf->dims[0] != (uint64_t)n)
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': rope_freqs.weight is not %d F32 values", where, n);
        float *ff = (float *)MFT_MALLOC((size_t)n * sizeof(float));
        if (!ff) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        mft_status s = mft__src_seek(src, g->data_offset + rf->offset, err);
        if (!s) s = mft__src_read(src, ff, 4 * (uint64_t)n, err);
        if (!s && !mft__gg_fit_llama3(c, ff, n))
            s = mft__fail(err, MFT_ERR_FORMAT, "'%s': rope_freqs.weight holds frequency factors that are not llama3's",
                          where);
        /* factors that fit only with a factor below 1 (or another value the model refuses) */
        if (!s && mft_config_check(c, &e2))
            s = mft__fail(err, MFT_ERR_FORMAT, "'%s': rope_freqs.weight gives llama3 scaling the model refuses: %s",
                          where, e2.msg);
        MFT_FREE(ff);
        if (s) return s;
    }
    return MFT_OK;
}

/* every tensor into m->params (rows of qwen's q/k permuted); no tensor may be left over. m
   NULL: the checks alone (names, shapes, types, extents in the file) for config c, before the
   model is allocated: a file of a few hundred bytes can declare gigabytes of tensors */
static mft_status mft__gg_load(mft_model *m, const mft_config *c, const mft_gguf *g, mft__src *src, int *quantised,
                               mft_error *err)
{
    size_t sz[MFT__NT], off = 0;
    mft__tensor_sizes(c, sz);
    int hs = mft_head_dim(c), permute = c->arch != MFT_ARCH_LLAMA;
    unsigned char *buf = NULL;
    size_t cap = 0;
    mft_status s = MFT_OK;
    uint8_t *used = (uint8_t *)mft__calloc((size_t)g->n_tensors + 1, 1);
    if (!used) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    *quantised = 0;
    for (int i = 0; i < MFT__NT && !s; off += sz[i++]) {
        if (!sz[i]) continue;
        int layers = mft__slot_layered(i) ? c->n_layers : 1, heads = permute ? mft__slot_heads(c, i) : 0;
        uint64_t rows, cols;
        mft__slot_shape(c, i, &rows, &cols);
        uint64_t rc = cols ? cols : 1;
        for (int l = 0; l < layers && !s; l++) {
            char name[96];
            snprintf(name, sizeof name, mft__gg_names[i], l);
            const mft_gguf_tensor *t = mft__gg_find(g, name);
            if (!t) {
                s = mft__fail(err, MFT_ERR_FORMAT, "tensor %s is missing", name);
                break;
            }
            used[t - g->tensors] = 1;
            int ok = cols ? t->n_dims == 2 && t->dims[0] == cols && t->dims[1] == rows
                          : t->n_dims == 1 && t->dims[0] == rows;
            if (!ok) {
                s = mft__fail(err, MFT_ERR_FORMAT, "tensor %s has dims {%llu, %llu}, the config needs {%llu, %llu}",
                              name, (unsigned long long)t->dims[0],
                              (unsigned long long)(t->n_dims > 1 ? t->dims[1] : 0),
                              (unsigned long long)(cols ? cols : rows), (unsigned long long)(cols ? rows : 0));
                break;
            }
            uint64_t rb = mft__gg_bytes(t->type, rc);
            if (!rb) {
                if (mft__gg_block(t->type))
                    s = mft__fail(err, MFT_ERR_FORMAT,
                                  "tensor %s is %s with rows of %llu, not a multiple of its blocks of %llu", name,
                                  mft__ggml_type_name(t->type), (unsigned long long)rc,
                                  (unsigned long long)mft__gg_block(t->type));
                else
                    s = mft__fail(err, MFT_ERR_FORMAT,
                                  "tensor %s is %s; maskft reads F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K", name,
                                  mft__ggml_type_name(t->type));
                break;
            }
            *quantised |= mft__gg_block(t->type) > 1;
            if (t->offset + rb * rows > g->file_size - g->data_offset) {
                s = mft__fail(err, MFT_ERR_FORMAT, "tensor %s runs past the end of the file", name);
                break;
            }
            if (!m) continue;
            if (rb > cap) {
                MFT_FREE(buf);
                cap = (size_t)rb;
                if (!(buf = (unsigned char *)MFT_MALLOC(cap))) {
                    s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
                    break;
                }
            }
            float *dst = m->params + off + (size_t)l * (size_t)(rows * rc);
            s = mft__src_seek(src, g->data_offset + t->offset, err);
            for (uint64_t r = 0; r < rows && !s; r++) {
                s = mft__src_read(src, buf, rb, err);
                uint64_t to = heads ? mft__rope_row(r, hs) : r;
                if (!s) mft__gg_row(dst + to * rc, buf, rc, t->type);
            }
        }
    }
    for (uint64_t i = 0; i < g->n_tensors && !s; i++)
        if (!used[i] && strcmp(g->tensors[i].name, "rope_freqs.weight"))
            s = mft__fail(err, MFT_ERR_FORMAT, "tensor %s is not part of a model of this config", g->tensors[i].name);
    MFT_FREE(used);
    MFT_FREE(buf);
    return s;
}

static mft_status mft__gguf_model(mft_model *m, mft__src *src, int B, int T, int flags, mft_config *only,
                                  mft_error *err)
{
    mft_gguf g;
    memset(&g, 0, sizeof g);
    mft_config c;
    int quantised = 0;
    mft_status s = mft__gguf_read(&g, src, err);
    if (!s) s = mft__gg_config(&g, src->name, &c, src, err);
    if (!s && only) *only = c;
    if (!s && !only) s = mft__gg_load(NULL, &c, &g, src, &quantised, err);
    if (!s && !only) s = mft__model_alloc(m, &c, B, T, flags, err);
    if (!s && !only) s = mft__gg_load(m, &c, &g, src, &quantised, err);
    if (!s && !only) s = mft__check_finite(m, src->name, err);
    if (!s && !only) m->quantised = quantised;
    if (s && m) mft_model_free(m);
    mft_gguf_free(&g);
    return s;
}

/* ============================================================================================
   >>unicode
   UTF-8 validation, and the Unicode tables the tokenizers need: letter / number / white-space
   classes for the pre-tokenizer regexes, and NFC composition (Qwen's normaliser).
   ============================================================================================ */

/* Unicode functions for the tokenizers: character classes for the pre-tokenizer patterns
   (\p{L}, \p{N}, \s, ...) and NFC normalization (the "NFC" normalizer of a Hugging Face
   tokenizer.json, e.g. Qwen2/Qwen3).

   The data they use, derived from the Unicode Character Database, is generated by
   tools/gen_unicode.py into the generated block of appendix at the very end of this file (with the
   Unicode version, the Unicode license notice and the command that regenerates it). This
   code is written by hand; it reaches the tables only through mft__uc_tab(), the one
   function of that block, which returns a struct mft__uc_tables (below) that points to all
   of them. (A static const array cannot be declared here and defined at the end: C++
   refuses a const object without an initializer; a function can be.)

   ENCODED TABLES. To keep the source small, the big tables are strings of base-64 digits:
   the character '0' + v stands for the digit v (0..63), so the digits run '0'..'9', ':', ';',
   '<', '=', '>', '?', '@', 'A'..'Z', '[', '\\', ']', '^', '_', '`', 'a'..'o' (the source
   writes '?' and '\\' as the escapes \? and \\). A number of w digits is written most
   significant digit first. A table is an array of rows of 64 digits (each row a string
   literal, with its NUL), so digit i of table t is t[i / 64][i % 64] and no string literal
   is longer than the 4095 characters C99 promises to support.

   TRIES map a code point to a small value in four steps. With shifts s0 > s1 > s2:
       b = top level, entry cp >> s0                           a block of level 1
       b = level-1 block b, entry (cp >> s1) mod 2^(s0 - s1)    a block of level 2
       b = level-2 block b, entry (cp >> s2) mod 2^(s1 - s2)    a leaf block
       v = leaf block b, entry cp mod 2^s2                      the value
   Identical blocks are stored once (most of the code space shares the all-zero block 0 of
   each level), and the top level ends after its last non-zero entry: a code point beyond it,
   which includes anything above U+10FFFF, has the value 0. The generator picks the shifts
   that give the smallest tables. */

/* Digit i of an encoded table, and the w-digit number that starts at digit i. */
#define MFT__UC_DIGIT(t, i) ((uint32_t)((t)[(i) >> 6][(i)&63] - '0'))

static inline uint32_t mft__uc_num(const char (*t)[65], uint32_t i, int w)
{
    uint32_t v = 0;
    for (int j = 0; j < w; j++) v = v << 6 | MFT__UC_DIGIT(t, i + (uint32_t)j);
    return v;
}

struct mft__uc_trie {
    const char (*lv[3])[65]; /* the top level, level 1, level 2 */
    const char (*leaf)[65];
    uint32_t ntop;             /* the number of entries of the top level */
    unsigned char sh[3], w[3]; /* s0 s1 s2; the digits per entry of the three levels */
};

/* Everything gen_unicode.py generates: the tables (each an encoded table as above, unless
   said otherwise), the two trie descriptions and the numbers. The sections "character
   classes" and "NFC normalization" below tell what the values mean. The generator writes
   the initializer in this order and checks (with --inplace) that the fields still are these. */
struct mft__uc_tables {
    const char *version;          /* the Unicode version of the data, e.g. "15.0.0" */
    struct mft__uc_trie cls;      /* the class trie: a 3-bit class code per code point, two
                                       per digit (an even code point in bits 0-2) */
    const char *ascii;            /* the class mask of each ASCII character, as '0' + mask
                                       (a plain string of 128 characters) */
    int maxdec;                   /* the longest full canonical decomposition, at most
                                       MFT__UC_MAXDEC */
    int nccc;                     /* the number of runs of ccc_run */
    const char (*ccc_run)[65];    /* the code points of class code 6 in runs of equal
                                       properties, sorted: 3 digits first code point, 1 digit
                                       length - 1 (runs are at most 64 long), 1 digit
                                       combining class code */
    const unsigned char *ccc_val; /* combining class code -> ccc (a plain array; code 0: a
                                       second starter, ccc 0) */
    struct mft__uc_trie dec;      /* the decomposition bit trie: 1 if the code point has a
                                       canonical decomposition (Hangul syllables included),
                                       four code points per digit (the lowest in bit 0) */
    int ndrun;                    /* the number of runs of drun (without the end mark) */
    const char (*drun)[65];       /* the decomposing code points in runs of consecutive ones,
                                       sorted: 3 digits first code point, 2 digits index of
                                       its record in drec; then an end mark, code point
                                       64^3 - 1 and the number of records */
    const char (*drec)[65];       /* the decomposition records, in code point order, 4 digits
                                       each: v < 2^18 is a singleton mapping to v, else
                                       v = (j + 2) * 2^17 + a is the pair a, snd[j] */
    int nprim;                    /* the number of entries of snd that belong to primary
                                       composites: j < nprim tells a primary composite */
    const char (*snd)[65];        /* the second characters of the pairs, 3 digits each: those
                                       of primary composites (sorted), then those of the other
                                       pairs (sorted) */
    int ncomp;                    /* the number of primary composites */
    const char (*comp)[65];       /* the primary composites, as indices of their records
                                       (2 digits each), sorted by the pair (a, b) */
};

static const struct mft__uc_tables *mft__uc_tab(void); /* defined in appendix */

/* The position of cp's value among the leaf entries of trie t (entry 0 of the all-zero leaf
   block 0 for a code point beyond the top level). Level by level: the entry of cp in block b
   of a level whose blocks have 2^d entries is b * 2^d + (cp >> shift) mod 2^d. */
static inline uint32_t mft__uc_trie_find(const struct mft__uc_trie *t, uint32_t cp)
{
    if ((cp >> t->sh[0]) >= t->ntop) return 0;
    uint32_t b = mft__uc_num(t->lv[0], (cp >> t->sh[0]) * t->w[0], t->w[0]);
    unsigned d = t->sh[0] - t->sh[1];
    b = mft__uc_num(t->lv[1], ((b << d) + ((cp >> t->sh[1]) & ((1u << d) - 1))) * t->w[1], t->w[1]);
    d = t->sh[1] - t->sh[2];
    b = mft__uc_num(t->lv[2], ((b << d) + ((cp >> t->sh[2]) & ((1u << d) - 1))) * t->w[2], t->w[2]);
    return (b << t->sh[2]) + (cp & ((1u << t->sh[2]) - 1));
}

/* The index of the last record (of rec digits, the first 3 of them a code point, sorted by
   it) of table t[0..n) whose code point is <= cp, or -1 if there is none. */
static int mft__uc_last(const char (*t)[65], int n, int rec, uint32_t cp)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (mft__uc_num(t, (uint32_t)(mid * rec), 3) <= cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

/* ---- character classes ----
   mft__uc_class(cp) is a bit mask of
       MFT__UC_L  general category L* (Lu Ll Lt Lm Lo)        \p{L}
       MFT__UC_N  general category Nd Nl No                   \p{N}
       MFT__UC_S  the White_Space property of PropList.txt    \s of the tokenizer patterns
       MFT__UC_M  general category M* (Mn Mc Me)              \p{M}
       MFT__UC_P  general category P* (Pc Pd Ps Pe Pi Pf Po)  \p{P}
   and 0 for everything else (symbols, separators and controls that are not white space,
   unassigned code points, surrogates, private use, anything above U+10FFFF). No code point
   has two of them (the generator checks), so the class trie holds a 3-bit code per code
   point, two codes per digit (an even code point in bits 0-2, the odd one after it in bits
   3-5): 0 none, 1 L, 2 N, 3 S, 4 M, 5 P, and 6 for a mark that NFC must look at more closely
   (a non-zero combining class, or the second half of a composite); mft__uc_cls_bit turns a
   code into the mask. */
#define MFT__UC_L 1
#define MFT__UC_N 2
#define MFT__UC_S 4
#define MFT__UC_M 8
#define MFT__UC_P 16

static const unsigned char mft__uc_cls_bit[8] = {
    0, MFT__UC_L, MFT__UC_N, MFT__UC_S, MFT__UC_M, MFT__UC_P, MFT__UC_M, 0
};

static inline unsigned mft__uc_cls_code(uint32_t cp)
{
    const struct mft__uc_tables *U = mft__uc_tab();
    uint32_t i = mft__uc_trie_find(&U->cls, cp);
    return MFT__UC_DIGIT(U->cls.leaf, i >> 1) >> (3 * (i & 1)) & 7;
}

static int mft__uc_class(uint32_t cp)
{
    if (cp < 0x80) return mft__uc_tab()->ascii[cp] - '0'; /* the common case, one read */
    return mft__uc_cls_bit[mft__uc_cls_code(cp)];
}

/* ---- NFC normalization (Unicode Standard Annex #15) ----
   NFC(s) is the canonical composition of the canonical decomposition of s:
     1. Decompose: replace every character by its full canonical decomposition (the mappings
        of UnicodeData.txt applied recursively; Hangul syllables algorithmically: LV -> L V,
        LVT -> L V T).
     2. Order: sort every run of non-starters (characters of canonical combining class
        ccc > 0) by ccc, keeping the order of equal classes (a stable sort). Starters
        (ccc 0) never move.
     3. Compose: left to right, a character C combines with the last starter L when C is not
        "blocked" from L, that is no character B left between them has ccc(B) = 0 or
        ccc(B) >= ccc(C), and L C has a primary composite P: L becomes P and C disappears.
        Primary composites are the two-character canonical decompositions except those in
        CompositionExclusions.txt and those starting with a non-starter (singletons never
        compose); Hangul L V -> LV and LV T -> LVT are algorithmic.

   DATA. mft__uc_nfc_props(cp) gives ccc | MFT__UC_DEC (cp has a canonical decomposition,
   Hangul syllables included) | MFT__UC_SEC (cp is a starter that can be the second half of
   a composite: U+0BBE and the like, Hangul vowels and trailing consonants). Most code points
   have none of these, which two trie reads tell: class code 6 (above) marks the ones with a
   ccc or SEC, found then in the runs ccc_run of mft__uc_tab(), and the bit trie dec those
   that decompose. A decomposition is one level deep in the tables (the recursion is done
   here): the record of a code point (drec) is found through the runs of consecutive
   decomposing code points (drun, a binary search), and gives one character or a pair.
   Composition is a binary search by (a, b) among the pairs that are primary composites
   (comp).

   HOW mft__uc_nfc WORKS, in one left-to-right pass and fixed memory. A cursor walks the
   decomposed input (struct mft__uc_cur: the current input character, its decomposition and
   the position in it). The state is the pending starter L, composed as far as known. Then:
     a. the run R of non-starters that follows L is measured (its length and smallest class)
        as the cursor moves on to the next starter X (or the end);
     b. R is composed with L in canonical order without sorting it: for each class present,
        from the smallest up, R is scanned in input order for the marks of that class.
        Marks of smaller classes never block a mark, and within a class the first mark that
        does not combine blocks the rest of it (same ccc), so "blocked" is one flag. The
        marks that combine (at most MFT__UC_MAXDEC - 1) are remembered by position;
     c. if every mark of R combined (or R is empty), X is not blocked from L: if L X has a
        primary composite, L becomes it, X is consumed, and we go back to a;
     d. otherwise L is final. It is written, then the marks of R that did not combine, again
        class by class (that is the canonical order), and X becomes L.
   The marks of R are kept in a buffer of MFT__UC_RUNBUF entries as they are measured. A
   longer run (far beyond real text: the Stream-Safe Text Format of UAX #15 allows 30) is not
   cut: its scans read it again from the input, through a copy of the cursor saved at its
   start. Either way a scan per class costs (distinct classes in R) x |R|, and there are
   only 55 classes, so the time stays O(n) and the memory fixed, with no limit on the
   length of a run of marks (a pathological run of 10^5 marks of all classes goes at a few
   hundred KB/s, real text at tens of MB/s).
   FAST PATHS. An ASCII character is a starter that neither decomposes nor combines with
   what precedes it, so a run of ASCII bytes is copied as it is, all but its last byte
   (which becomes L: a combining mark may follow it). And a precomposed character that NFC
   keeps (e.g. U+00E9, or a Hangul syllable) is not taken apart when what follows cannot
   combine with it (see mft__uc_load).
   Invalid UTF-8 (overlong forms, surrogates, values above U+10FFFF, truncated sequences,
   stray continuation bytes, as in RFC 3629) is copied a byte at a time: each such byte is a
   starter that combines with nothing, so normalization never reaches across it. */
#define MFT__UC_DEC 0x100
#define MFT__UC_SEC 0x200
#define MFT__UC_RAW 0x110000u /* an invalid input byte b travels as MFT__UC_RAW + b */
#ifndef MFT__UC_RUNBUF
#define MFT__UC_RUNBUF 128 /* marks of a run kept in memory (any value >= 1 is correct) */
#endif
/* room for the longest full canonical decomposition (4 in Unicode 15.0: U+1F82 and the like);
   gen_unicode.py --inplace refuses data that needs more */
#define MFT__UC_MAXDEC 4

/* ccc | MFT__UC_DEC | MFT__UC_SEC of a code point (0 above U+10FFFF, so for raw bytes) */
static unsigned mft__uc_nfc_props(uint32_t cp)
{
    const struct mft__uc_tables *U = mft__uc_tab();
    unsigned p = 0;
    if (mft__uc_cls_code(cp) == 6) {
        int r = mft__uc_last(U->ccc_run, U->nccc, 5, cp);
        uint32_t i = (uint32_t)r * 5;
        uint32_t start = mft__uc_num(U->ccc_run, i, 3);
        if (r >= 0 && cp - start <= MFT__UC_DIGIT(U->ccc_run, i + 3)) {
            p = U->ccc_val[MFT__UC_DIGIT(U->ccc_run, i + 4)];
            if (!p) p = MFT__UC_SEC; /* class code 0: a second starter */
        }
    } else if (cp - 0x1161u < 21u || cp - 0x11A8u < 27u) { /* Hangul V, Hangul T */
        p = MFT__UC_SEC;
    }
    uint32_t i = mft__uc_trie_find(&U->dec, cp);
    if (MFT__UC_DIGIT(U->dec.leaf, i >> 2) >> (i & 3) & 1) p |= MFT__UC_DEC;
    return p;
}

/* The decomposition record of cp (a code point with MFT__UC_DEC, not a Hangul syllable):
   its one or two characters in m, their number returned (0 if there is no record); *prim
   tells whether cp is a primary composite. */
static int mft__uc_record(uint32_t cp, uint32_t *m, int *prim)
{
    const struct mft__uc_tables *U = mft__uc_tab();
    int r = mft__uc_last(U->drun, U->ndrun, 5, cp);
    *prim = 0;
    if (r < 0) return 0;
    uint32_t i = (uint32_t)r * 5, start = mft__uc_num(U->drun, i, 3);
    uint32_t j = mft__uc_num(U->drun, i + 3, 2) + (cp - start);
    if (j >= mft__uc_num(U->drun, i + 8, 2)) return 0; /* past the run: a gap */
    uint32_t v = mft__uc_num(U->drec, j * 4, 4);
    if (v < 1u << 18) {
        m[0] = v;
        return 1;
    }
    m[0] = v & 0x1FFFFu;
    m[1] = mft__uc_num(U->snd, ((v >> 17) - 2) * 3, 3);
    *prim = (v >> 17) - 2 < (uint32_t)U->nprim;
    return 2;
}

/* The full canonical decomposition of cp (which has MFT__UC_DEC) into d; returns its length,
   at most MFT__UC_MAXDEC. The recursion goes at most 3 deep. */
static int mft__uc_decompose(uint32_t cp, uint32_t *d)
{
    if (cp - 0xAC00u < 11172u) { /* Hangul syllable: L V, or L V T */
        uint32_t s = cp - 0xAC00u;
        d[0] = 0x1100u + s / 588;
        d[1] = 0x1161u + s % 588 / 28;
        if (s % 28 == 0) return 2;
        d[2] = 0x11A7u + s % 28;
        return 3;
    }
    uint32_t m[2];
    int prim, nm = mft__uc_record(cp, m, &prim), n = 0;
    if (nm == 0) {
        d[0] = cp;
        return 1;
    } /* not reached for a code point with DEC */
    for (int j = 0; j < nm; j++) {
        if (mft__uc_nfc_props(m[j]) & MFT__UC_DEC)
            n += mft__uc_decompose(m[j], d + n);
        else
            d[n++] = m[j];
    }
    return n;
}

/* The primary composite of the starter a followed by b, or 0 if there is none. */
static uint32_t mft__uc_compose(uint32_t a, uint32_t b)
{
    if (a - 0x1100u < 19u && b - 0x1161u < 21u) /* L V -> LV */
        return 0xAC00u + ((a - 0x1100u) * 21 + (b - 0x1161u)) * 28;
    if (a - 0xAC00u < 11172u && (a - 0xAC00u) % 28 == 0 && b - 0x11A8u < 27u)
        return a + (b - 0x11A7u); /* LV T -> LVT */
    const struct mft__uc_tables *U = mft__uc_tab();
    int lo = 0, hi = U->ncomp;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        uint32_t j = mft__uc_num(U->comp, (uint32_t)mid * 2, 2);
        uint32_t v = mft__uc_num(U->drec, j * 4, 4);
        uint32_t pa = v & 0x1FFFFu, pb = mft__uc_num(U->snd, ((v >> 17) - 2) * 3, 3);
        if (pa < a || (pa == a && pb < b)) {
            lo = mid + 1;
            continue;
        }
        if (pa != a || pb != b) {
            hi = mid;
            continue;
        }
        /* found record j: its code point, from the run that holds it */
        int r = 0, rh = U->ndrun;
        while (rh - r > 1) {
            int rm = (r + rh) / 2;
            if (mft__uc_num(U->drun, (uint32_t)rm * 5 + 3, 2) <= j)
                r = rm;
            else
                rh = rm;
        }
        return mft__uc_num(U->drun, (uint32_t)r * 5, 3) + j - mft__uc_num(U->drun, (uint32_t)r * 5 + 3, 2);
    }
    return 0;
}

/* One UTF-8 character at s (n > 0 bytes available): its length, and the code point in *cp;
   an invalid byte is a character of length 1 with *cp = MFT__UC_RAW + the byte. */
static int mft__uc_utf8(const unsigned char *s, int n, uint32_t *cp)
{
    uint32_t c = s[0];
    int len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (len == 1) {
        *cp = c;
        return 1;
    }
    if (len && c <= 0xF4 && len <= n) {
        uint32_t v = c & (0x7Fu >> len);
        int i = 1;
        while (i < len && (s[i] & 0xC0) == 0x80) v = v << 6 | (s[i++] & 0x3Fu);
        if (i == len &&
            v >= (len == 2   ? 0x80u
                  : len == 3 ? 0x800u
                             : 0x10000u) &&
            (v < 0xD800u || v > 0xDFFFu) && v <= 0x10FFFFu) {
            *cp = v;
            return len;
        }
    }
    *cp = MFT__UC_RAW + c;
    return 1;
}

/* A cursor over the decomposed input: element k of the decomposition d[0..nd) of the input
   character at byte offset off (len bytes long), with the properties p[] of the elements;
   nd == 0 at the end. A cursor is a plain value: a copy saves the position. */
struct mft__uc_cur {
    const unsigned char *in;
    int n, off, len, nd, k;
    uint32_t d[MFT__UC_MAXDEC];
    unsigned p[MFT__UC_MAXDEC];
};

/* Whether cp, which has MFT__UC_DEC, is a Hangul syllable or a primary composite: then it
   is a starter that NFC leaves as it is unless what follows combines with its pieces. */
static int mft__uc_stays(uint32_t cp)
{
    uint32_t m[2];
    int prim;
    if (cp - 0xAC00u < 11172u) return 1;
    mft__uc_record(cp, m, &prim);
    return prim;
}

/* Whether the input at byte offset off (of n) starts with a starter that combines with
   nothing before it: the end, or a character whose decomposition starts with such a
   starter (checked for the common cases only: no decomposition, or one that stays). */
static int mft__uc_safe(const unsigned char *in, int n, int off)
{
    uint32_t cp;
    if (off >= n || in[off] < 0x80) return 1;
    mft__uc_utf8(in + off, n - off, &cp);
    unsigned p = mft__uc_nfc_props(cp);
    if (p & (0xFF | MFT__UC_SEC)) return 0;
    return !(p & MFT__UC_DEC) || mft__uc_stays(cp);
}

/* Decode and decompose the input character at c->off, and point at its first element.
   Quick check: a Hangul syllable or primary composite (e.g. U+00E9) that is followed by a
   safe starter is already NFC, and is passed on whole instead of being taken apart and put
   back together (the generator checks that it is a starter that combines with nothing
   before it, and so is the first character of its decomposition). */
static void mft__uc_load(struct mft__uc_cur *c)
{
    uint32_t cp;
    c->k = 0;
    if (c->off >= c->n) {
        c->nd = 0;
        return;
    }
    c->len = mft__uc_utf8(c->in + c->off, c->n - c->off, &cp);
    c->p[0] = mft__uc_nfc_props(cp);
    if ((c->p[0] & MFT__UC_DEC) && mft__uc_stays(cp) && mft__uc_safe(c->in, c->n, c->off + c->len))
        c->p[0] &= ~(unsigned)MFT__UC_DEC;
    if (!(c->p[0] & MFT__UC_DEC)) {
        c->d[0] = cp;
        c->nd = 1;
        return;
    }
    c->nd = mft__uc_decompose(cp, c->d);
    for (int i = 0; i < c->nd; i++) c->p[i] = mft__uc_nfc_props(c->d[i]);
}

static void mft__uc_next(struct mft__uc_cur *c)
{
    if (++c->k >= c->nd) {
        c->off += c->len;
        mft__uc_load(c);
    }
}

/* The run of non-starters after the pending starter. */
struct mft__uc_run {
    int n;                       /* its length */
    unsigned lo;                 /* its smallest combining class */
    struct mft__uc_cur start;    /* a cursor at its first mark */
    uint32_t cp[MFT__UC_RUNBUF]; /* the marks, their classes and source offsets, */
    unsigned char ccc[MFT__UC_RUNBUF];
    int src[MFT__UC_RUNBUF]; /* if n <= MFT__UC_RUNBUF */
};

/* Mark i of run R, with its class in *k and source offset in *s. A scan visits i = 0, 1, ...
   in turn, with r a fresh copy of R->start that this moves along if the run is too long
   for the buffer. */
static uint32_t mft__uc_mark(const struct mft__uc_run *R, struct mft__uc_cur *r, int i, unsigned *k, int *s)
{
    if (R->n <= MFT__UC_RUNBUF) {
        *k = R->ccc[i];
        *s = R->src[i];
        return R->cp[i];
    }
    if (i > 0) mft__uc_next(r);
    *k = r->p[r->k] & 0xFF;
    *s = r->off;
    return r->d[r->k];
}

/* Append cp (or the raw byte it stands for) to out[o..cap) in UTF-8, each byte's source
   offset being s: the new length, or -1 if it does not fit. */
static int mft__uc_put(unsigned char *out, int cap, int *src, int o, uint32_t cp, int s)
{
    unsigned char b[4];
    int len = cp < 0x80 || cp >= MFT__UC_RAW ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    if (len == 1)
        b[0] = (unsigned char)(cp & 0xFF);
    else {
        for (int i = len - 1; i > 0; i--, cp >>= 6) b[i] = (unsigned char)(0x80 | (cp & 0x3F));
        b[0] = (unsigned char)(((0xFF00u >> len) & 0xFF) | cp); /* 110xxxxx 1110xxxx 11110xxx */
    }
    if (len > cap - o) return -1;
    for (int i = 0; i < len; i++) {
        out[o + i] = b[i];
        if (src) src[o + i] = s;
    }
    return o + len;
}

/* NFC of the n bytes of UTF-8 at in, into out (at most cap bytes). If src is not NULL,
   src[i] receives the offset in `in` of the input character that output byte i comes from
   (for a composed character, that of its starter; every byte of an output character gets
   the same offset). Returns the number of bytes written, or -1 if cap is too small. The
   output is never more than 3 times the input (U+0958 and the like grow from 3 bytes to 6,
   U+1D15E and the like from 4 to 12), and no longer than it for text that is already NFC. */
static int mft__uc_nfc(const unsigned char *in, int n, unsigned char *out, int cap, int *src)
{
    struct mft__uc_cur c, r;
    struct mft__uc_run R;
    uint32_t L = 0;               /* the pending starter, */
    int Ls = 0, haveL = 0, o = 0; /* its source offset, whether there is one; bytes written */
    memset(&R, 0, sizeof R);      /* (never read unwritten; this tells the compiler so) */
    c.in = in;
    c.n = n < 0 ? 0 : n;
    c.off = 0;
    c.len = 0;
    mft__uc_load(&c);
    for (;;) {
        if (c.nd && c.k == 0 && in[c.off] < 0x80) { /* ASCII fast path */
            int e = c.off + 1, m;
            while (e < c.n && in[e] < 0x80) e++;
            if (haveL && (o = mft__uc_put(out, cap, src, o, L, Ls)) < 0) return -1;
            m = e - 1 - c.off; /* all but the last byte */
            if (m > cap - o) return -1;
            if (m > 0) {
                memcpy(out + o, in + c.off, (size_t)m);
                if (src)
                    for (int i = 0; i < m; i++) src[o + i] = c.off + i;
                o += m;
            }
            L = in[e - 1];
            Ls = e - 1;
            haveL = 1;
            c.off = e;
            mft__uc_load(&c);
            continue;
        }
        /* a. the run of non-starters after L */
        int comb[MFT__UC_MAXDEC], nc = 0;
        R.n = 0;
        R.lo = 256;
        if (c.nd && (c.p[c.k] & 0xFF)) {
            R.start = c;
            do {
                unsigned k = c.p[c.k] & 0xFF;
                if (k < R.lo) R.lo = k;
                if (R.n < MFT__UC_RUNBUF) {
                    R.cp[R.n] = c.d[c.k];
                    R.ccc[R.n] = (unsigned char)k;
                    R.src[R.n] = c.off;
                }
                R.n++;
                mft__uc_next(&c);
            } while (c.nd && (c.p[c.k] & 0xFF));
        }
        /* b. compose the run with L, class by class */
        if (haveL && R.n) {
            for (unsigned k = R.lo; k < 256;) {
                unsigned next = 256, rk;
                int blocked = 0, rs;
                r = R.start;
                for (int i = 0; i < R.n; i++) {
                    uint32_t m = mft__uc_mark(&R, &r, i, &rk, &rs), x;
                    if (rk != k) {
                        if (rk > k && rk < next) next = rk;
                        continue;
                    }
                    if (blocked) continue;
                    x = nc < MFT__UC_MAXDEC ? mft__uc_compose(L, m) : 0;
                    if (x) {
                        L = x;
                        comb[nc++] = i;
                    } else
                        blocked = 1;
                }
                k = next;
            }
        }
        /* c. the next starter X, when nothing is left between it and L */
        if (haveL && c.nd && R.n == nc && (c.p[c.k] & MFT__UC_SEC)) {
            uint32_t x = mft__uc_compose(L, c.d[c.k]);
            if (x) {
                L = x;
                mft__uc_next(&c);
                continue;
            }
        }
        /* d. L and what is left of the run are final */
        if (haveL && (o = mft__uc_put(out, cap, src, o, L, Ls)) < 0) return -1;
        if (R.n > nc) {
            for (unsigned k = R.lo; k < 256;) {
                unsigned next = 256, rk;
                int rs;
                r = R.start;
                for (int i = 0; i < R.n; i++) {
                    uint32_t m = mft__uc_mark(&R, &r, i, &rk, &rs);
                    if (rk != k) {
                        if (rk > k && rk < next) next = rk;
                        continue;
                    }
                    int j = 0;
                    while (j < nc && comb[j] != i) j++;
                    if (j == nc && (o = mft__uc_put(out, cap, src, o, m, rs)) < 0) return -1;
                }
                k = next;
            }
        }
        if (!c.nd) break;
        L = c.d[c.k];
        Ls = c.off;
        haveL = 1;
        mft__uc_next(&c);
    }
    return o;
}


/* Length of the valid UTF-8 sequence at s (1..4), or 0 if the bytes there are not one
   (overlong forms, surrogates and values above U+10FFFF are invalid, as in RFC 3629) */
static int mft__utf8_len(const unsigned char *s, int n)
{
    uint32_t cp;
    int l = mft__uc_utf8(s, n, &cp);
    return cp >= MFT__UC_RAW ? 0 : l;
}

MFT_API int mft_utf8_len(const char *s, int n) { return s && n > 0 ? mft__utf8_len((const unsigned char *)s, n) : 0; }

MFT_API int mft_utf8_valid(const char *s, int n)
{
    for (int i = 0; i < n;) {
        int l = mft__utf8_len((const unsigned char *)s + i, n - i);
        if (!l) return 0;
        i += l;
    }
    return 1;
}

/* ============================================================================================
   >>tokenizer
   One tokenizer for every file type, two algorithms:
   - SentencePiece-style BPE (MFT_TOK_SPM: llama2.c tokenizer.bin, SentencePiece .model, GGUF
     "llama", tokenizer.json with a Metaspace pre-tokenizer). Text is normalised the way
     SentencePiece does it (optional whitespace clean-up, a dummy-prefix space, spaces as the
     '▁' meta symbol, which the vocabulary stores here as a plain space), split into UTF-8
     characters, and adjacent symbols are merged by priority: the merge with the highest piece
     score first (or, for tokenizer.json, the lowest merge rank). Characters still unknown at
     the end fall back to <0xNN> byte tokens.
   - byte-level BPE (MFT_TOK_BPE: tokenizer.json ByteLevel, GGUF "gpt2"): optional NFC, a
     pre-tokenizer splits the text into words (the regexes of GPT-2, Llama-3, Qwen2, StarCoder,
     hand-coded below), and each word's bytes are merged by merge rank.
   Both merge with the same heap (bpe). Pieces are stored as the raw bytes they stand for
   (byte-level pieces are mapped back from GPT-2's printable-byte alphabet at load time), so
   lookups, decoding and offsets all work on plain bytes.
   ============================================================================================ */

enum {
    MFT__TT_NORMAL = 1,
    MFT__TT_UNKNOWN = 2,
    MFT__TT_CONTROL = 3,
    MFT__TT_USER = 4,
    MFT__TT_UNUSED = 5,
    MFT__TT_BYTE = 6
};
enum { MFT__LSTRIP = 1, MFT__RSTRIP = 2 }; /* mft_tokenizer.strip */

static uint32_t mft__hash(const char *s, int n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static uint32_t mft__hash64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return (uint32_t)k;
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

/* merge (a, b) -> slot in the merge table, or -1 */
static int mft__merge_find(const mft_tokenizer *t, int a, int b)
{
    if (!t->merge_cap) return -1;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    uint32_t mask = t->merge_cap - 1, i = mft__hash64(key) & mask;
    for (;;) {
        if (t->merge_rank[i] < 0) return -1;
        if (t->merge_key[i] == key) return (int)i;
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

/* Everything a loader hands to mft__tok_build: the vocabulary as raw bytes, and, for
   rank-merged vocabularies, the merges as pairs of ids in rank order. */
typedef struct mft__tokspec {
    int kind, V;
    const char **piece; /* V pieces (raw bytes) */
    const int *plen;
    const float *score;  /* V, or NULL (then merges must be given) */
    const uint8_t *type; /* V, or NULL (all normal) */
    int n_merges;
    const int32_t *merge; /* 2 * n_merges ids */
} mft__tokspec;

static void mft__tok_defaults(mft_tokenizer *t)
{
    t->bos_id = t->eos_id = t->unk_id = t->pad_id = t->eot_id = -1;
    t->prefix_after_special = 1;
}

static int mft__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lays out one allocation with every table and fills it. The caller has set the flags and
   special ids on *t; this sets vocab_size, pieces, decodings, hashes and merges. */
static mft_status mft__tok_build(mft_tokenizer *t, const mft__tokspec *sp, mft_error *err)
{
    size_t V = (size_t)sp->V, text = 0, cap = 1, mcap = 0;
    if (sp->V <= 0 || sp->V > (1 << 22))
        return mft__fail(err, MFT_ERR_FORMAT, "vocabulary size %d out of range", sp->V);
    for (size_t i = 0; i < V; i++) {
        if (sp->plen[i] < 0 || sp->plen[i] > (1 << 16))
            return mft__fail(err, MFT_ERR_FORMAT, "token %zu is %d bytes long", i, sp->plen[i]);
        text += (size_t)sp->plen[i];
    }
    if (text > ((size_t)1 << 30)) return mft__fail(err, MFT_ERR_FORMAT, "vocabulary text over 1 GiB");
    while (cap < 2 * V) cap <<= 1;
    if (sp->n_merges > 0) {
        mcap = 1;
        while (mcap < 2 * (size_t)sp->n_merges) mcap <<= 1;
    }
    size_t bytes = V * (sizeof(float) + 1) + 2 * (V + 1) * sizeof(uint32_t) + cap * sizeof(int32_t) +
                   mcap * (sizeof(uint64_t) + 2 * sizeof(int32_t)) + V * sizeof(int32_t) + V * sizeof(uint64_t) +
                   2 * text + 6 * V + 64;
    char *mem = (char *)mft__calloc(1, bytes);
    if (!mem) return mft__fail(err, MFT_ERR_NOMEM, "out of memory for the tokenizer (%zu bytes)", bytes);
    t->mem = mem;
    t->merge_key = (uint64_t *)mem;
    mem += mcap * sizeof(uint64_t);
    uint64_t *special_key = (uint64_t *)mem;
    mem += V * sizeof(uint64_t); /* scratch for sorting */
    t->scores = (float *)mem;
    mem += V * sizeof(float);
    t->piece_off = (uint32_t *)mem;
    mem += (V + 1) * sizeof(uint32_t);
    t->dec_off = (uint32_t *)mem;
    mem += (V + 1) * sizeof(uint32_t);
    t->hash = (int32_t *)mem;
    mem += cap * sizeof(int32_t);
    t->merge_rank = (int32_t *)mem;
    mem += mcap * sizeof(int32_t);
    t->merge_id = (int32_t *)mem;
    mem += mcap * sizeof(int32_t);
    t->special = (int32_t *)mem;
    mem += V * sizeof(int32_t);
    t->types = (uint8_t *)mem;
    mem += V;
    t->strip = (uint8_t *)mem; /* zero: the loaders set it after the build */
    mem += V;
    t->pieces = mem;
    mem += text + 8;
    t->dec = mem;
    t->hash_cap = (uint32_t)cap;
    t->merge_cap = (uint32_t)mcap;
    t->vocab_size = sp->V;
    t->kind = sp->kind;

    size_t used = 0;
    for (size_t i = 0; i < V; i++) {
        t->piece_off[i] = (uint32_t)used;
        memcpy(t->pieces + used, sp->piece[i], (size_t)sp->plen[i]);
        used += (size_t)sp->plen[i];
        t->scores[i] = sp->score ? sp->score[i] : 0.0f;
        t->types[i] = sp->type ? sp->type[i] : (int)MFT__TT_NORMAL;
        if (!isfinite(t->scores[i])) {
            mft_tokenizer_free(t);
            return mft__fail(err, MFT_ERR_FORMAT, "token %zu has a non-finite score", i);
        }
    }
    t->piece_off[V] = (uint32_t)used;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (size_t i = 0; i < cap; i++) t->hash[i] = -1;
    for (size_t i = 0; i < mcap; i++) t->merge_rank[i] = -1;
    size_t dused = 0;
    for (size_t i = 0; i < V; i++) {
        const char *p = t->pieces + t->piece_off[i];
        int n = (int)(t->piece_off[i + 1] - t->piece_off[i]);
        int byte_shaped = n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>' &&
                          mft__hexval(p[3]) >= 0 && mft__hexval(p[4]) >= 0;
        if (t->kind == MFT_TOK_SPM && byte_shaped && t->types[i] != MFT__TT_CONTROL) {
            int b = mft__hexval(p[3]) * 16 + mft__hexval(p[4]);
            if (t->byte_id[b] < 0) t->byte_id[b] = (int)i;
            t->types[i] = MFT__TT_BYTE;
        } else if (t->types[i] == MFT__TT_BYTE) {
            t->types[i] = MFT__TT_NORMAL; /* marked as a byte token but not shaped <0xNN> */
        }
        /* only normal and user-defined pieces are ever matched from text (first id wins if a
           piece appears twice); control, unknown, byte and unused pieces are not */
        if ((t->types[i] == MFT__TT_NORMAL || t->types[i] == MFT__TT_USER) && mft__tok_lookup(t, p, n) < 0) {
            uint32_t j = mft__hash(p, n) & (t->hash_cap - 1);
            while (t->hash[j] >= 0) j = (j + 1) & (t->hash_cap - 1);
            t->hash[j] = (int32_t)i;
        }
        /* what the token decodes to: a byte token its byte, a control token nothing, the
           unknown token SentencePiece's " \u2047 ", anything else its piece */
        t->dec_off[i] = (uint32_t)dused;
        if (t->types[i] == MFT__TT_BYTE) {
            t->dec[dused++] = (char)(mft__hexval(p[3]) * 16 + mft__hexval(p[4]));
        } else if (t->types[i] == MFT__TT_UNKNOWN) {
            memcpy(t->dec + dused, " \xE2\x81\x87 ", 5);
            dused += 5;
        } else if (t->types[i] != MFT__TT_CONTROL && (int)i != t->bos_id && (int)i != t->eos_id) {
            memcpy(t->dec + dused, p, (size_t)n);
            dused += (size_t)n;
        }
    }
    t->dec_off[V] = (uint32_t)dused;
    /* byte-level vocabularies: every single byte is a piece of its own */
    if (t->kind == MFT_TOK_BPE)
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            t->byte_id[b] = mft__tok_lookup(t, &c, 1);
        }
    /* merges: (a, b) -> rank and the id of the merged piece */
    for (int r = 0; r < sp->n_merges; r++) {
        int a = sp->merge[2 * r], b = sp->merge[2 * r + 1];
        if (a < 0 || b < 0 || a >= sp->V || b >= sp->V) continue;
        int la = (int)(t->piece_off[a + 1] - t->piece_off[a]), lb = (int)(t->piece_off[b + 1] - t->piece_off[b]);
        if (la + lb > 4096) continue;
        char buf[4096];
        memcpy(buf, t->pieces + t->piece_off[a], (size_t)la);
        memcpy(buf + la, t->pieces + t->piece_off[b], (size_t)lb);
        int id = mft__tok_lookup(t, buf, la + lb);
        if (id < 0 || mft__merge_find(t, a, b) >= 0) continue; /* first (best) rank wins */
        uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
        uint32_t j = mft__hash64(key) & (t->merge_cap - 1);
        while (t->merge_rank[j] >= 0) j = (j + 1) & (t->merge_cap - 1);
        t->merge_key[j] = key;
        t->merge_rank[j] = r;
        t->merge_id[j] = id;
    }
    /* tokens that MFT_SPECIAL finds in text: control and user-defined ones with some text,
       longest first so that a longer special wins over its own prefix */
    int ns = 0;
    for (size_t i = 0; i < V; i++)
        if ((t->types[i] == MFT__TT_CONTROL || t->types[i] == MFT__TT_USER) && t->piece_off[i + 1] > t->piece_off[i])
            t->special[ns++] = (int32_t)i;
    /* by length, longest first, then by id: stored as (length << 22 | id) keys and sorted */
    for (int i = 0; i < ns; i++) {
        int32_t id = t->special[i];
        uint32_t len = t->piece_off[id + 1] - t->piece_off[id];
        special_key[i] = ((uint64_t)(0xFFFFFFFFu - len) << 32) | (uint32_t)id;
    }
    qsort(special_key, (size_t)ns, sizeof(uint64_t), mft__cmp_u64);
    for (int i = 0; i < ns; i++) t->special[i] = (int32_t)(special_key[i] & 0xFFFFFFFFu);
    t->n_special = ns;
    /* SentencePiece pieces carry a space only at their start, or consist of spaces only: no
       matchable piece has a space right after another character. Then no merge can cross the
       point where a space follows a non-space, and the encoder may merge the stretches between
       such points independently (same result, a small heap that stays in cache). Checked here
       rather than assumed. */
    t->ws_split = t->kind == MFT_TOK_SPM;
    for (size_t i = 0; i < V && t->ws_split; i++) {
        if (t->types[i] != MFT__TT_NORMAL && t->types[i] != MFT__TT_USER) continue;
        const char *p = t->pieces + t->piece_off[i];
        for (uint32_t k = 1; k < t->piece_off[i + 1] - t->piece_off[i]; k++)
            if (p[k] == ' ' && p[k - 1] != ' ') {
                t->ws_split = 0;
                break;
            }
    }
    /* which bytes can start a special token: the encoder skips every other position fast */
    memset(t->special_first, 0, sizeof t->special_first);
    for (int k = 0; k < ns; k++) {
        unsigned char c0 = (unsigned char)t->pieces[t->piece_off[t->special[k]]];
        t->special_first[c0] |= t->types[t->special[k]] == MFT__TT_USER ? 1 : 2;
    }
    return MFT_OK;
}

MFT_API void mft_tokenizer_free(mft_tokenizer *t)
{
    if (!t) return;
    MFT_FREE(t->mem);
    MFT_FREE(t->chat_template);
    memset(t, 0, sizeof *t);
}

/* ---- >>bpe: the merge loop shared by both algorithms ---------------------------------------
   Symbols form a linked list over a byte string; candidate merges of adjacent symbols sit in
   a max-heap ordered by priority, leftmost first on ties (SentencePiece's and HF's rule). A
   candidate is stale once either side has changed, detected by comparing the lengths recorded
   when it was pushed. Each merge removes a symbol and pushes at most two candidates, so the
   heap never holds more than 2n + 1. */

typedef struct {
    int start, len, prev, next, id;
} mft__sym;
typedef struct {
    float prio;
    int left, right, llen, rlen, id;
} mft__cand;

typedef struct mft__bpe {
    mft__sym *sym;
    mft__cand *heap;
    int nh, cap; /* symbols (and 2 * cap + 1 heap slots) allocated */
} mft__bpe;

static int mft__bpe_reserve(mft__bpe *w, int n)
{
    if (n <= w->cap) return 0;
    int cap = w->cap ? w->cap : 256;
    while (cap < n) cap *= 2;
    mft__sym *s = (mft__sym *)MFT_REALLOC(w->sym, (size_t)cap * sizeof *s);
    if (!s) return -1;
    w->sym = s;
    mft__cand *h = (mft__cand *)MFT_REALLOC(w->heap, (2 * (size_t)cap + 1) * sizeof *h);
    if (!h) return -1;
    w->heap = h;
    w->cap = cap;
    return 0;
}

static int mft__cand_before(const mft__cand *a, const mft__cand *b, const mft__sym *sym)
{
    if (a->prio != b->prio) return a->prio > b->prio;
    return sym[a->left].start < sym[b->left].start;
}

static void mft__heap_push(mft__bpe *w, mft__cand c)
{
    int i = w->nh++;
    w->heap[i] = c;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!mft__cand_before(&w->heap[i], &w->heap[p], w->sym)) break;
        mft__cand t = w->heap[i];
        w->heap[i] = w->heap[p];
        w->heap[p] = t;
        i = p;
    }
}

static mft__cand mft__heap_pop(mft__bpe *w)
{
    mft__cand top = w->heap[0];
    w->heap[0] = w->heap[--w->nh];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, b = i;
        if (l < w->nh && mft__cand_before(&w->heap[l], &w->heap[b], w->sym)) b = l;
        if (r < w->nh && mft__cand_before(&w->heap[r], &w->heap[b], w->sym)) b = r;
        if (b == i) break;
        mft__cand t = w->heap[i];
        w->heap[i] = w->heap[b];
        w->heap[b] = t;
        i = b;
    }
    return top;
}

/* the merge of symbols a and b, if the vocabulary has one: by merge rank when the vocabulary
   has merges (lower rank first), else by the score of the concatenated piece */
static void mft__try_pair(const mft_tokenizer *t, const char *txt, mft__bpe *w, int a, int b)
{
    if (a < 0 || b < 0) return;
    mft__sym *s = w->sym;
    mft__cand c;
    if (t->merge_cap) {
        if (s[a].id < 0 || s[b].id < 0) return;
        int slot = mft__merge_find(t, s[a].id, s[b].id);
        if (slot < 0) return;
        c.prio = -(float)t->merge_rank[slot];
        c.id = t->merge_id[slot];
    } else {
        int id = mft__tok_lookup(t, txt + s[a].start, s[a].len + s[b].len);
        if (id < 0) return;
        c.prio = t->scores[id];
        c.id = id;
    }
    c.left = a;
    c.right = b;
    c.llen = s[a].len;
    c.rlen = s[b].len;
    mft__heap_push(w, c);
}

/* Merges txt[0..n) (symbols: UTF-8 characters, or single bytes when `bytes`) and leaves the
   resulting symbol list in w->sym, starting at 0 (or empty when n == 0). */
static int mft__bpe_run(const mft_tokenizer *t, const char *txt, int n, int bytes, mft__bpe *w)
{
    if (mft__bpe_reserve(w, n + 1)) return -1;
    mft__sym *s = w->sym;
    int ns = 0;
    for (int i = 0; i < n;) {
        int cl = bytes ? 1 : mft__utf8_len((const unsigned char *)txt + i, n - i);
        if (!cl) cl = 1;
        s[ns].start = i;
        s[ns].len = cl;
        s[ns].prev = ns - 1;
        s[ns].next = i + cl < n ? ns + 1 : -1;
        s[ns].id = bytes ? t->byte_id[(unsigned char)txt[i]] : mft__tok_lookup(t, txt + i, cl);
        ns++;
        i += cl;
    }
    w->nh = 0;
    for (int i = 0; i + 1 < ns; i++) mft__try_pair(t, txt, w, i, i + 1);
    while (w->nh > 0) {
        mft__cand c = mft__heap_pop(w);
        mft__sym *a = &s[c.left], *b = &s[c.right];
        if (a->len != c.llen || b->len != c.rlen || a->next != c.right || a->len == 0 || b->len == 0) continue;
        a->len += b->len;
        a->id = c.id;
        a->next = b->next;
        if (b->next >= 0) s[b->next].prev = c.left;
        b->len = 0;
        mft__try_pair(t, txt, w, a->prev, c.left);
        mft__try_pair(t, txt, w, c.left, a->next);
    }
    return ns;
}

/* ---- >>pretok: the byte-level pre-tokenizers -----------------------------------------------
   Each is a regex of the model's, hand-coded as "the length of the match at position i",
   trying the alternatives in order as a backtracking regex engine does. \p{L} letters,
   \p{N} numbers and \s (Unicode White_Space) come from the generated tables in unicode. */

typedef struct {
    const unsigned char *s;
    int n;
} mft__txt;

/* code point at i (-1 for an invalid byte) and its length, by the strict decoder of the
   generated Unicode section */
static int mft__cp(const mft__txt *x, int i, int32_t *cp)
{
    uint32_t c;
    int l = mft__uc_utf8(x->s + i, x->n - i, &c);
    *cp = c >= MFT__UC_RAW ? -1 : (int32_t)c;
    return l;
}

static int mft__cls(const mft__txt *x, int i, int *len)
{
    int32_t cp;
    int l = mft__cp(x, i, &cp);
    if (len) *len = l;
    return cp < 0 ? 0 : mft__uc_class((uint32_t)cp);
}

#define MFT__ISL(c) ((c)&MFT__UC_L)
#define MFT__ISN(c) ((c)&MFT__UC_N)
#define MFT__ISS(c) ((c)&MFT__UC_S)

/* 's 't 're 've 'm 'll 'd (ASCII apostrophe), optionally case-insensitive */
static int mft__pre_contraction(const mft__txt *x, int i, int icase)
{
    if (x->s[i] != '\'' || i + 1 >= x->n) return 0;
    char a = (char)x->s[i + 1], b = i + 2 < x->n ? (char)x->s[i + 2] : 0;
    if (icase) {
        if (a >= 'A' && a <= 'Z') a += 32;
        if (b >= 'A' && b <= 'Z') b += 32;
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* a run of characters of class `want` (bitmask; `neg` inverts), from i; returns the end */
static int mft__pre_run(const mft__txt *x, int i, int want, int neg, int max_chars)
{
    int k = 0;
    while (i < x->n && k < max_chars) {
        int l, c = mft__cls(x, i, &l);
        if (neg ? (c & want) != 0 : (c & want) == 0) break;
        i += l;
        k++;
    }
    return i;
}

/* \s+(?!\S) then \s+ : a whitespace run, leaving its last character to the next word when
   a non-space follows */
static int mft__pre_spaces(const mft__txt *x, int i)
{
    int e = i, last = i;
    while (e < x->n) {
        int l, c = mft__cls(x, e, &l);
        if (!MFT__ISS(c)) break;
        last = e;
        e += l;
    }
    if (e == i) return 0;
    if (e < x->n && last > i) return last - i;
    return e - i;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static int mft__pre_gpt2(const mft__txt *x, int i)
{
    int l = mft__pre_contraction(x, i, 0), j, e;
    if (l) return l;
    j = i + (x->s[i] == ' ' && i + 1 < x->n);
    if ((e = mft__pre_run(x, j, MFT__UC_L, 0, 1 << 30)) > j) return e - i;
    if ((e = mft__pre_run(x, j, MFT__UC_N, 0, 1 << 30)) > j) return e - i;
    if ((e = mft__pre_run(x, j, MFT__UC_S | MFT__UC_L | MFT__UC_N, 1, 1 << 30)) > j) return e - i;
    if ((l = mft__pre_spaces(x, i))) return l;
    mft__cls(x, i, &l);
    return l;
}

/* Llama-3 (digits = 3) and Qwen2 (digits = 1):
   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
   \s*[\r\n]+|\s+(?!\S)|\s+ */
static int mft__pre_llama3(const mft__txt *x, int i, int digits)
{
    int l = mft__pre_contraction(x, i, 1), e, c0, l0;
    if (l) return l;
    c0 = mft__cls(x, i, &l0);
    if (MFT__ISL(c0)) return mft__pre_run(x, i, MFT__UC_L, 0, 1 << 30) - i;
    if (!MFT__ISN(c0) && x->s[i] != '\r' && x->s[i] != '\n' && i + l0 < x->n && MFT__ISL(mft__cls(x, i + l0, NULL)))
        return mft__pre_run(x, i + l0, MFT__UC_L, 0, 1 << 30) - i;
    if (MFT__ISN(c0)) return mft__pre_run(x, i, MFT__UC_N, 0, digits) - i;
    int j = i + (x->s[i] == ' ' && i + 1 < x->n);
    if ((e = mft__pre_run(x, j, MFT__UC_S | MFT__UC_L | MFT__UC_N, 1, 1 << 30)) > j) {
        while (e < x->n && (x->s[e] == '\r' || x->s[e] == '\n')) e++;
        return e - i;
    }
    /* \s*[\r\n]+ : the whitespace run up to and including its last CR or LF */
    int k = i, lastnl = -1;
    while (k < x->n) {
        int lk, ck = mft__cls(x, k, &lk);
        if (!MFT__ISS(ck)) break;
        if (x->s[k] == '\r' || x->s[k] == '\n') lastnl = k;
        k += lk;
    }
    if (lastnl >= 0) return lastnl + 1 - i;
    if ((l = mft__pre_spaces(x, i))) return l;
    return l0;
}

/* Splits x into words: calls emit(word) for each. StarCoder first isolates every \p{N}
   character, then applies GPT-2's regex to what lies between. */
static int mft__pretokenize(int pre, int digit_runs, const mft__txt *x, int (*emit)(void *, int, int), void *ctx)
{
    int i = 0, next_num = -1; /* StarCoder: where the next \p{N} starts (kept, not rescanned) */
    while (i < x->n) {
        int l;
        if (pre == MFT_PRE_STARCODER) {
            int cl, c = mft__cls(x, i, &cl);
            if (MFT__ISN(c)) {
                l = digit_runs ? mft__pre_run(x, i, MFT__UC_N, 0, 1 << 30) - i : cl;
            } else {
                /* the GPT-2 regex on the stretch up to the next number */
                if (next_num < i) {
                    next_num = i;
                    while (next_num < x->n) {
                        int le, ce = mft__cls(x, next_num, &le);
                        if (MFT__ISN(ce)) break;
                        next_num += le;
                    }
                }
                mft__txt sub = { x->s, next_num };
                l = mft__pre_gpt2(&sub, i);
            }
        } else if (pre == MFT_PRE_LLAMA3)
            l = mft__pre_llama3(x, i, 3);
        else if (pre == MFT_PRE_QWEN2)
            l = mft__pre_llama3(x, i, 1);
        else
            l = mft__pre_gpt2(x, i);
        if (l <= 0) l = 1;
        if (emit(ctx, i, l)) return -1;
        i += l;
    }
    return 0;
}

/* ---- >>encode ---------------------------------------------------------------------------- */

typedef struct mft__enc {
    const mft_tokenizer *t;
    int *ids, cap, n, *offsets; /* n counts every token; only the first cap are stored */
    int last;                   /* the id of the last token (stored or not) */
    const int *src;             /* for each byte of the normalised text, its offset in the input */
    int src_end;                /* input offset where the current piece of text ends */
    const char *txt;            /* the normalised text */
    int txt_n;
    int unk_end; /* input offset where the last emitted unknown token ends, or -1 */
    mft__bpe w;
} mft__enc;

static int mft__emit(mft__enc *e, int id, int b, int end)
{
    if (end < b) end = b;
    /* SentencePiece (without byte fallback) and HF's fuse_unk: a run of unknown characters
       is one unknown token */
    if (id == e->t->unk_id && id >= 0 && !e->t->byte_fallback && e->unk_end == b && e->n > 0 && e->last == id) {
        if (e->offsets && e->n <= e->cap) e->offsets[2 * e->n - 1] = end;
        e->unk_end = end;
        return 0;
    }
    if (e->n < e->cap) {
        if (e->offsets) {
            e->offsets[2 * e->n] = b;
            e->offsets[2 * e->n + 1] = end;
        }
        e->ids[e->n] = id;
    }
    e->n++;
    e->last = id;
    e->unk_end = id == e->t->unk_id ? end : -1;
    return 0;
}

/* input offsets of the normalised bytes [a, b): from the first real byte to where the next
   byte starts (inserted bytes, such as the dummy prefix, map to -1) */
static void mft__span(const mft__enc *e, int a, int b, int *ib, int *ie)
{
    int k = a;
    while (k < b && e->src[k] < 0) k++;
    int end = b < e->txt_n ? e->src[b] : e->src_end;
    *ib = k < b ? e->src[k] : end;
    *ie = end;
}

/* merges normalised bytes [a, a+n) and emits the tokens */
static int mft__enc_word(mft__enc *e, int a, int n)
{
    const mft_tokenizer *t = e->t;
    const char *txt = e->txt + a;
    int ib, ie;
    if (n <= 0) return 0;
    if (t->kind == MFT_TOK_BPE && t->ignore_merges) {
        /* Llama-3: a word that is a token of its own is taken whole, merges or not */
        int id = mft__tok_lookup(t, txt, n);
        if (id >= 0) {
            mft__span(e, a, a + n, &ib, &ie);
            return mft__emit(e, id, ib, ie);
        }
    }
    int ns = mft__bpe_run(t, txt, n, t->kind == MFT_TOK_BPE, &e->w);
    if (ns < 0) return -2;
    for (int i = ns > 0 ? 0 : -1; i >= 0; i = e->w.sym[i].next) {
        const mft__sym *s = &e->w.sym[i];
        if (s->id >= 0) {
            mft__span(e, a + s->start, a + s->start + s->len, &ib, &ie);
            if (mft__emit(e, s->id, ib, ie)) return -1;
            continue;
        }
        /* not in the vocabulary: one <0xNN> token per byte, or the unknown token */
        if (t->byte_fallback || t->kind == MFT_TOK_BPE) {
            for (int j = 0; j < s->len; j++) {
                int id = t->byte_id[(unsigned char)txt[s->start + j]];
                mft__span(e, a + s->start + j, a + s->start + j + 1, &ib, &ie);
                if (mft__emit(e, id >= 0 ? id : (t->unk_id >= 0 ? t->unk_id : 0), ib, ie)) return -1;
            }
        } else {
            mft__span(e, a + s->start, a + s->start + s->len, &ib, &ie);
            if (mft__emit(e, t->unk_id >= 0 ? t->unk_id : 0, ib, ie)) return -1;
        }
    }
    return 0;
}

static int mft__enc_word_cb(void *ctx, int a, int n) { return mft__enc_word((mft__enc *)ctx, a, n); }

/* normalised SentencePiece text [a, b): merged stretch by stretch when that is exact */
static int mft__enc_spm(mft__enc *e, int a, int b)
{
    int rc = 0, s0 = a;
    for (int k = a + 1; e->t->ws_split && k < b && !rc; k++)
        if (e->txt[k] == ' ' && e->txt[k - 1] != ' ') {
            rc = mft__enc_word(e, s0, k - s0);
            s0 = k;
        }
    return rc ? rc : mft__enc_word(e, s0, b - s0);
}

/* C's isspace in the C locale, which llama.cpp's lstrip / rstrip use */
static int mft__ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* the special token whose text starts at text[i] (longest first), or -1. mask: 1 user-defined
   tokens, 2 control tokens */
static int mft__special_at(const mft_tokenizer *t, const char *text, int len, int i, int mask)
{
    if (!(t->special_first[(unsigned char)text[i]] & mask)) return -1;
    for (int k = 0; k < t->n_special; k++) {
        int id = t->special[k];
        if (!(mask & (t->types[id] == MFT__TT_USER ? 1 : 2))) continue;
        int n = (int)(t->piece_off[id + 1] - t->piece_off[id]);
        if (n <= len - i && !memcmp(text + i, t->pieces + t->piece_off[id], (size_t)n)) return id;
    }
    return -1;
}

/* One stretch of plain text (no special tokens inside): normalise, then merge. `first` says
   whether a SentencePiece dummy prefix belongs here. */
static int mft__enc_text(mft__enc *e, const char *text, int len, int off0, int first)
{
    const mft_tokenizer *t = e->t;
    /* worst case growth: NFC can triple, the dummy prefix adds one */
    size_t cap = 3 * (size_t)len + 8;
    char *buf = (char *)MFT_MALLOC(cap);
    int *src = (int *)MFT_MALLOC(cap * sizeof(int));
    int n = 0, rc = 0, n0 = e->n;
    if (!buf || !src) {
        MFT_FREE(buf);
        MFT_FREE(src);
        return -2;
    }
    if (t->kind == MFT_TOK_SPM) {
        /* SentencePiece: optionally drop leading/trailing spaces and collapse runs, then a
           space in front (the dummy prefix) if anything is left. A literal U+2581 is the
           meta symbol itself, i.e. a space; a space is kept as ' ' (the vocabulary's form). */
        int i = 0, end = len;
        if (t->remove_extra_spaces) {
            while (i < end && text[i] == ' ') i++;
            while (end > i && text[end - 1] == ' ') end--;
        }
        if (first && t->add_dummy_prefix && i < end) {
            buf[n] = ' ';
            src[n++] = -1;
        }
        while (i < end) {
            if (t->remove_extra_spaces && text[i] == ' ' && i > 0 && text[i - 1] == ' ') {
                i++;
                continue;
            }
            if (i + 3 <= end && (unsigned char)text[i] == 0xE2 && (unsigned char)text[i + 1] == 0x96 &&
                (unsigned char)text[i + 2] == 0x81) {
                buf[n] = ' ';
                src[n++] = off0 + i;
                i += 3;
                continue;
            }
            buf[n] = text[i];
            src[n++] = off0 + i;
            i++;
        }
    } else if (t->nfc) {
        n = mft__uc_nfc((const unsigned char *)text, len, (unsigned char *)buf, (int)cap, src);
        if (n < 0) {
            MFT_FREE(buf);
            MFT_FREE(src);
            return -2;
        }
        /* canonical reordering may move a mark before the one it followed: keep the offsets
           in order (a reordered mark shares its neighbour's position) */
        for (int i = 0; i < n; i++) {
            src[i] += off0;
            if (i && src[i] < src[i - 1]) src[i] = src[i - 1];
        }
    } else {
        memcpy(buf, text, (size_t)len);
        for (int i = 0; i < len; i++) src[i] = off0 + i;
        n = len;
    }
    e->txt = buf;
    e->txt_n = n;
    e->src = src;
    e->src_end = off0 + len;
    if (t->kind == MFT_TOK_SPM && !t->prefix_after_special && t->n_special) {
        /* SentencePiece proper finds user-defined symbols in the normalised text */
        int s0 = 0;
        for (int k = 0; k < n && !rc; k++) {
            int id = mft__special_at(t, buf, n, k, 1);
            if (id < 0) continue;
            int sl = (int)(t->piece_off[id + 1] - t->piece_off[id]), ib, ie;
            rc = mft__enc_spm(e, s0, k);
            mft__span(e, k, k + sl, &ib, &ie);
            if (!rc) rc = mft__emit(e, id, ib, ie);
            s0 = k + sl;
            k = s0 - 1;
        }
        if (!rc) rc = mft__enc_spm(e, s0, n);
    } else if (t->kind == MFT_TOK_SPM) {
        rc = mft__enc_spm(e, 0, n);
    } else {
        mft__txt x = { (const unsigned char *)buf, n };
        rc = mft__pretokenize(t->pre, t->digit_runs, &x, mft__enc_word_cb, e);
    }
    /* spaces the normaliser removed at either end belong to the neighbouring token, so the
       offsets still cover the input */
    if (!rc && e->offsets && e->n > n0 && e->n <= e->cap) {
        if (e->offsets[2 * n0] > off0) e->offsets[2 * n0] = off0;
        if (e->offsets[2 * e->n - 1] < off0 + len) e->offsets[2 * e->n - 1] = off0 + len;
    }
    MFT_FREE(buf);
    MFT_FREE(src);
    return rc;
}

MFT_API mft_status mft_encode(const mft_tokenizer *t, const char *text, int len, int flags, int *ids, int cap,
                              int *n_out, int *offsets, mft_error *err)
{
    if (n_out) *n_out = 0;
    if (!t || !t->mem || !text || !n_out || cap < 0 || (cap > 0 && !ids))
        return mft__fail(err, MFT_ERR_ARG, "mft_encode: NULL argument");
    /* 256 MiB per call keeps every index below 2^31 (NFC may triple the text) */
    if (len < 0) {
        size_t sl = strlen(text);
        if (sl > (size_t)1 << 28)
            return mft__fail(err, MFT_ERR_ARG, "text too long (over 256 MiB): encode it in pieces");
        len = (int)sl;
    }
    if (len > (1 << 28))
        return mft__fail(err, MFT_ERR_ARG, "text too long (%d bytes, over 256 MiB): encode it in pieces", len);
    mft__enc e;
    memset(&e, 0, sizeof e);
    e.t = t;
    e.ids = ids;
    e.cap = cap;
    e.offsets = offsets;
    e.unk_end = -1;
    e.last = -1;
    int rc = 0;
    if ((flags & MFT_BOS) && t->bos_id >= 0) rc = mft__emit(&e, t->bos_id, 0, 0);
    /* Split out special tokens: control ones only with MFT_SPECIAL; user-defined ones always,
       in the raw text as llama.cpp and HF do, or, for a SentencePiece .model, inside the
       normalised text as SentencePiece does (mft__enc_text). The dummy prefix goes in front
       of the text, and after each special token where the reference does that too. */
    int mask = ((flags & MFT_SPECIAL) ? 2 : 0) | (t->kind == MFT_TOK_SPM && !t->prefix_after_special ? 0 : 1);
    int start = 0, first = 1;
    for (int i = 0; !rc && i <= len; i++) {
        int id = i < len && t->n_special ? mft__special_at(t, text, len, i, mask) : -1;
        if (id < 0 && i < len) continue;
        /* lstrip / rstrip: the special token takes the whitespace beside it (its offsets too),
           within the stretch of text next to it, as llama.cpp's partition does */
        int b = i, sl = id < 0 ? 0 : (int)(t->piece_off[id + 1] - t->piece_off[id]), end = i + sl;
        if (id >= 0 && (t->strip[id] & MFT__LSTRIP))
            while (b > start && mft__ascii_space(text[b - 1])) b--;
        if (id >= 0 && (t->strip[id] & MFT__RSTRIP))
            while (end < len && mft__ascii_space(text[end])) end++;
        if (b > start) {
            rc = mft__enc_text(&e, text + start, b - start, start, first);
            first = 0;
        }
        if (rc || id < 0) break;
        rc = mft__emit(&e, id, b, end);
        first = t->prefix_after_special;
        start = end;
        i = start - 1;
    }
    if (!rc && (flags & MFT_EOS) && t->eos_id >= 0) rc = mft__emit(&e, t->eos_id, len, len);
    MFT_FREE(e.w.sym);
    MFT_FREE(e.w.heap);
    *n_out = e.n;
    if (rc) return mft__fail(err, MFT_ERR_NOMEM, "out of memory encoding %d bytes", len);
    if (e.n > cap && cap > 0)
        return mft__fail(err, MFT_ERR_SPACE, "the text needs %d token slots, %d were given", e.n, cap);
    return mft__ok(err);
}

/* ---- >>detokenize -------------------------------------------------------------------------- */

MFT_API const char *mft_token_bytes(const mft_tokenizer *t, int prev, int id, int *len)
{
    if (!t || !t->mem || id < 0 || id >= t->vocab_size) {
        if (len) *len = 0;
        return NULL;
    }
    const char *p = t->dec + t->dec_off[id];
    int n = (int)(t->dec_off[id + 1] - t->dec_off[id]);
    /* the dummy-prefix space is not part of the text: the encoder put one at the start and
       after every special token (control or user-defined), so the decoder takes it away */
    if (t->kind == MFT_TOK_SPM && t->add_dummy_prefix && n > 0 && p[0] == ' ' &&
        (prev < 0 || prev >= t->vocab_size || prev == t->bos_id ||
         (t->prefix_after_special && (t->types[prev] == MFT__TT_CONTROL || t->types[prev] == MFT__TT_USER)))) {
        p++;
        n--;
    }
    if (len) *len = n;
    return p;
}

MFT_API const char *mft_token_piece(const mft_tokenizer *t, int id, int *len)
{
    if (!t || !t->mem || id < 0 || id >= t->vocab_size) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = (int)(t->piece_off[id + 1] - t->piece_off[id]);
    return t->pieces + t->piece_off[id];
}

MFT_API int mft_token_type(const mft_tokenizer *t, int id)
{
    return t && t->mem && id >= 0 && id < t->vocab_size ? t->types[id] : 0;
}

MFT_API int mft_token_find(const mft_tokenizer *t, const char *s, int n)
{
    if (!t || !t->mem || !s || n < 0) return -1;
    for (int id = 0; id < t->vocab_size; id++)
        if ((int)(t->piece_off[id + 1] - t->piece_off[id]) == n && !memcmp(t->pieces + t->piece_off[id], s, (size_t)n))
            return id;
    return -1;
}

/* Streaming: bytes are released only as whole UTF-8 characters, so a character split over
   two byte tokens is printed once complete. A byte that cannot be part of any valid
   sequence is released as it is. The first pass only measures, so a call that would not fit
   changes nothing. */
static int mft__detok(const mft_tokenizer *t, mft_detok *st, int id, char *out, int cap)
{
    int n = 0, w = 0;
    const char *p = id == -1 ? NULL : mft_token_bytes(t, st->prev, id, &n);
    if (!p) n = 0;
    if (id != -1) st->prev = id;
    for (int i = 0; i <= n; i++) {
        if (i < n) {
            if (st->npend >= 4) {
                if (out) memcpy(out + w, st->pend, (size_t)st->npend);
                w += st->npend;
                st->npend = 0;
            }
            st->pend[st->npend++] = (unsigned char)p[i];
        } else if (id != -1) {
            break;
        }
        /* release the longest valid prefix; keep an incomplete tail; release invalid bytes */
        while (st->npend > 0) {
            unsigned c = st->pend[0];
            int need = c < 0x80 ? 1 : c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
            int take;
            if (!need) {
                take = 1;
            } else if (st->npend < need) {
                int ok = 1;
                for (int k = 1; k < st->npend; k++) ok &= (st->pend[k] & 0xC0) == 0x80;
                if (ok && id != -1) break; /* wait for the rest */
                take = 1;
            } else {
                take = mft__utf8_len(st->pend, need) == need ? need : 1;
            }
            if (out) memcpy(out + w, st->pend, (size_t)take);
            w += take;
            memmove(st->pend, st->pend + take, (size_t)(st->npend - take));
            st->npend -= take;
        }
    }
    (void)cap;
    return w;
}

MFT_API mft_status mft_detok_stream(const mft_tokenizer *t, mft_detok *st, int id, char *out, int cap, int *len)
{
    if (len) *len = 0;
    if (!t || !st || cap < 0 || (cap > 0 && !out)) return MFT_ERR_ARG;
    mft_detok probe = *st;
    int need = mft__detok(t, &probe, id, NULL, 0);
    if (len) *len = need;
    if (need > cap) return MFT_ERR_SPACE; /* nothing consumed: call again with more room */
    mft__detok(t, st, id, out, cap);
    return MFT_OK;
}

MFT_API mft_status mft_decode_ids(const mft_tokenizer *t, const int *ids, int n, int flags, char *out, int cap,
                                  int *len, mft_error *err)
{
    int w = 0, prev = -1, fit = 0; /* fit: the bytes that were written */
    if (len) *len = 0;
    if (!t || !t->mem || (!ids && n) || cap < 0 || (cap > 0 && !out))
        return mft__fail(err, MFT_ERR_ARG, "mft_decode_ids: bad argument");
    for (int i = 0; i < n; i++) {
        int pl;
        const char *p;
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return mft__fail(err, MFT_ERR_ARG, "ids[%d] = %d is outside the vocabulary", i, ids[i]);
        int control = t->types[ids[i]] == MFT_TOKEN_CONTROL || ids[i] == t->bos_id || ids[i] == t->eos_id;
        if ((flags & MFT_SPECIAL) && control)
            p = mft_token_piece(t, ids[i], &pl);
        else
            p = mft_token_bytes(t, prev, ids[i], &pl);
        if (w + pl < cap) {
            memcpy(out + w, p, (size_t)pl);
            fit = w + pl;
        }
        w += pl;
        prev = ids[i];
    }
    if (len) *len = w;
    if (cap > 0) out[fit] = 0;
    if (w >= cap && cap > 0)
        return mft__fail(err, MFT_ERR_SPACE, "the text needs %d bytes, the buffer has %d", w + 1, cap);
    return mft__ok(err);
}

/* SentencePiece writes a space as U+2581 ("▁"); this tokenizer stores it as ' '. Converts
   p[0..n) in place (it can only shrink) and returns the new length. */
static int mft__unescape_ws(char *p, int n)
{
    int w = 0;
    for (int i = 0; i < n;) {
        if (i + 3 <= n && (unsigned char)p[i] == 0xE2 && (unsigned char)p[i + 1] == 0x96 &&
            (unsigned char)p[i + 2] == 0x81) {
            p[w++] = ' ';
            i += 3;
        } else
            p[w++] = p[i++];
    }
    return w;
}

/* ---- >>vocabs ---------------------------------------------------------------------------
   The loaders: each turns one file format into the piece list, scores or merges and special
   ids that mft__tok_build lays out. */

/* ---- llama2.c tokenizer.bin -------------------------------------------------------------- */

static mft_status mft__tok_load_bin(mft_tokenizer *t, const char *path, const char *buf, size_t fsize, int vocab_size,
                                    mft_error *err)
{
    if (vocab_size <= 0 || vocab_size > (1 << 22))
        return mft__fail(err, MFT_ERR_ARG,
                         "'%s' is a llama2.c tokenizer.bin, whose size comes from the model: give vocab_size (got %d)",
                         path, vocab_size);
    /* every token needs at least 8 bytes; the file is capped so that no size can wrap */
    if (fsize > ((size_t)1 << 30))
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is over 1 GiB: not a tokenizer.bin", path);
    if (fsize < 4 + 8 * (size_t)vocab_size)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' (%zu bytes) is too small for a tokenizer.bin of %d tokens", path,
                         fsize, vocab_size);
    size_t V = (size_t)vocab_size;
    const char **piece = (const char **)MFT_MALLOC(V * sizeof *piece);
    int *plen = (int *)MFT_MALLOC(V * sizeof *plen);
    float *score = (float *)MFT_MALLOC(V * sizeof *score);
    uint8_t *type = (uint8_t *)MFT_MALLOC(V);
    mft_status s = MFT_OK;
    if (!piece || !plen || !score || !type) {
        s = mft__fail(err, MFT_ERR_NOMEM, "out of memory reading '%s'", path);
        goto done;
    }
    size_t pos;
    pos = 4;
    for (size_t i = 0; i < V; i++) {
        int32_t len;
        if (fsize - pos < 8) {
            s = mft__fail(err, MFT_ERR_FORMAT, "'%s' is truncated: it ends before token %zu of %d", path, i,
                          vocab_size);
            goto done;
        }
        memcpy(&score[i], buf + pos, 4);
        memcpy(&len, buf + pos + 4, 4);
        pos += 8;
        if (len < 0 || (size_t)len > fsize - pos) {
            s = mft__fail(err, MFT_ERR_FORMAT, "'%s': token %zu has length %d, beyond the end of the file", path, i,
                          (int)len);
            goto done;
        }
        piece[i] = buf + pos;
        plen[i] = len;
        pos += (size_t)len;
        type[i] = MFT__TT_NORMAL;
    }
    if (pos != fsize) {
        s = mft__fail(err, MFT_ERR_FORMAT, "'%s' has %zu bytes after %d tokens: not a tokenizer.bin for vocab_size %d",
                      path, fsize - pos, vocab_size, vocab_size);
        goto done;
    }
    /* llama2.c's export: id 0 <unk>, 1 BOS "\n<s>\n", 2 EOS "\n</s>\n", then the byte tokens */
    mft__tok_defaults(t);
    if (V > 0) {
        t->unk_id = 0;
        type[0] = MFT__TT_UNKNOWN;
    }
    if (V > 1) {
        t->bos_id = 1;
        type[1] = MFT__TT_CONTROL;
    }
    if (V > 2) {
        t->eos_id = t->eot_id = 2;
        type[2] = MFT__TT_CONTROL;
    }
    t->add_bos = 1;
    t->add_dummy_prefix = 1;
    t->byte_fallback = 1;
    /* llama2.c's own encoder does not clean whitespace, and the file cannot say whether the
       .model it came from did: we do as run.c does (the .model reader knows better) */
    t->remove_extra_spaces = 0;
    t->source = "tokenizer.bin";
    {
        mft__tokspec sp = { MFT_TOK_SPM, vocab_size, piece, plen, score, type, 0, NULL };
        s = mft__tok_build(t, &sp, err);
        /* control pieces of tokenizer.bin ("\n<s>\n") are not text to be matched */
        if (!s) {
            t->n_special = 0;
            memset(t->special_first, 0, sizeof t->special_first);
        }
    }
done:
    MFT_FREE(piece);
    MFT_FREE(plen);
    MFT_FREE(score);
    MFT_FREE(type);
    if (s) mft_tokenizer_free(t);
    return s;
}
/* ---- SentencePiece .model (protobuf) -------------------------------------------------------
   A minimal reader for the fields that change behaviour: ModelProto { 1: pieces (repeated
   SentencePiece { 1: piece, 2: score, 3: type }), 2: trainer_spec { 3: model_type,
   35: byte_fallback, 40-43: unk/bos/eos/pad ids }, 3: normalizer_spec { 1: name,
   2: precompiled_charsmap, 3: add_dummy_prefix, 4: remove_extra_whitespaces,
   5: escape_whitespaces } }. */

typedef struct {
    const uint8_t *p, *end;
} mft__pb;

static int mft__pb_varint(mft__pb *b, uint64_t *v)
{
    *v = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (b->p >= b->end) return -1;
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7F) << sh;
        if (!(c & 0x80)) return 0;
    }
    return -1;
}

/* next field: number, wire type, and for length-delimited fields the sub-buffer */
static int mft__pb_field(mft__pb *b, int *field, int *wt, uint64_t *v, mft__pb *sub)
{
    uint64_t key;
    if (mft__pb_varint(b, &key)) return -1;
    *field = (int)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0: return mft__pb_varint(b, v);
    case 1:
        if (b->end - b->p < 8) return -1;
        memcpy(v, b->p, 8);
        b->p += 8;
        return 0;
    case 5: {
        uint32_t x;
        if (b->end - b->p < 4) return -1;
        memcpy(&x, b->p, 4);
        *v = x;
        b->p += 4;
        return 0;
    }
    case 2:
        if (mft__pb_varint(b, v) || *v > (uint64_t)(b->end - b->p)) return -1;
        sub->p = b->p;
        sub->end = b->p + *v;
        b->p += *v;
        return 0;
    }
    return -1;
}

static mft_status mft__tok_load_spm(mft_tokenizer *t, const char *path, const uint8_t *data, size_t size,
                                    mft_error *err)
{
    mft__pb b = { data, data + size }, sub, s2;
    int field, wt, V = 0, model_type = 1;
    uint64_t v;
    /* first pass: count pieces and read the specs */
    int add_prefix = 1, remove_ws = 1, escape_ws = 1, byte_fallback = 0, charsmap = 0;
    int64_t ids[4] = { 0, 1, 2, -1 };
    while (b.p < b.end) {
        if (mft__pb_field(&b, &field, &wt, &v, &sub)) goto bad;
        if (field == 1 && wt == 2)
            V++;
        else if (field == 2 && wt == 2) {
            while (sub.p < sub.end) {
                if (mft__pb_field(&sub, &field, &wt, &v, &s2)) goto bad;
                if (wt != 0) continue;
                if (field == 3)
                    model_type = (int)v;
                else if (field == 35)
                    byte_fallback = v != 0;
                else if (field >= 40 && field <= 43)
                    ids[field - 40] = (int64_t)(int32_t)(uint32_t)v;
            }
        } else if (field == 3 && wt == 2) {
            while (sub.p < sub.end) {
                if (mft__pb_field(&sub, &field, &wt, &v, &s2)) goto bad;
                if (field == 2 && wt == 2 && v > 0)
                    charsmap = 1;
                else if (field == 3 && wt == 0)
                    add_prefix = v != 0;
                else if (field == 4 && wt == 0)
                    remove_ws = v != 0;
                else if (field == 5 && wt == 0)
                    escape_ws = v != 0;
            }
        }
    }
    if (model_type != 2)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' is a SentencePiece %s model; maskft reads BPE models", path,
                         model_type == 1   ? "unigram"
                         : model_type == 3 ? "word"
                         : model_type == 4 ? "char"
                                           : "unknown-type");
    if (charsmap)
        return mft__fail(
            err, MFT_ERR_FORMAT,
            "'%s' uses a precompiled normalization charsmap (e.g. nmt_nfkc), which maskft does not implement; "
            "only the identity normalizer is supported",
            path);
    if (!escape_ws)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s' has escape_whitespaces=false, which maskft does not implement",
                         path);
    if (V <= 0) return mft__fail(err, MFT_ERR_FORMAT, "'%s' has no pieces: not a SentencePiece model", path);
    {
        const char **piece = (const char **)mft__calloc((size_t)V, sizeof *piece);
        int *plen = (int *)mft__calloc((size_t)V, sizeof *plen);
        float *score = (float *)mft__calloc((size_t)V, sizeof *score);
        uint8_t *type = (uint8_t *)mft__calloc((size_t)V, 1);
        char *text = (char *)MFT_MALLOC(size + 1);
        size_t tu = 0;
        mft_status s = MFT_OK;
        int i = 0;
        if (!piece || !plen || !score || !type || !text) {
            s = mft__fail(err, MFT_ERR_NOMEM, "out of memory reading '%s'", path);
            goto done;
        }
        b.p = data;
        while (b.p < b.end) {
            if (mft__pb_field(&b, &field, &wt, &v, &sub)) goto bad2;
            if (field != 1 || wt != 2) continue;
            type[i] = MFT__TT_NORMAL;
            piece[i] = text + tu; /* a piece without its string field is empty */
            while (sub.p < sub.end) {
                if (mft__pb_field(&sub, &field, &wt, &v, &s2)) goto bad2;
                if (field == 1 && wt == 2) {
                    piece[i] = text + tu;
                    memcpy(text + tu, s2.p, (size_t)(s2.end - s2.p));
                    plen[i] = mft__unescape_ws(text + tu, (int)(s2.end - s2.p));
                    tu += (size_t)plen[i];
                } else if (field == 2 && wt == 5) {
                    uint32_t x = (uint32_t)v;
                    memcpy(&score[i], &x, 4);
                } else if (field == 3 && wt == 0) {
                    type[i] = (uint8_t)(v >= 1 && v <= 6 ? v : (int)MFT__TT_NORMAL);
                }
            }
            i++;
        }
        mft__tok_defaults(t);
        for (int k = 0; k < 4; k++)
            if (ids[k] < -1 || ids[k] >= V) {
                s = mft__fail(err, MFT_ERR_FORMAT, "'%s': special id %lld out of range", path, (long long)ids[k]);
                goto done;
            }
        t->unk_id = (int)ids[0];
        t->bos_id = (int)ids[1];
        t->eos_id = (int)ids[2];
        t->pad_id = (int)ids[3];
        t->eot_id = t->eos_id;
        t->add_bos = 1;
        t->add_dummy_prefix = add_prefix;
        t->remove_extra_spaces = remove_ws;
        t->byte_fallback = byte_fallback;
        t->prefix_after_special = 0; /* SentencePiece: one dummy prefix, for the whole text */
        t->source = "sentencepiece";
        {
            mft__tokspec sp = { MFT_TOK_SPM, V, piece, plen, score, type, 0, NULL };
            s = mft__tok_build(t, &sp, err);
        }
        goto done;
    bad2:
        s = mft__fail(err, MFT_ERR_FORMAT, "'%s' is not a valid SentencePiece model (corrupt protobuf)", path);
    done:
        MFT_FREE(piece);
        MFT_FREE(plen);
        MFT_FREE(score);
        MFT_FREE(type);
        MFT_FREE(text);
        if (s) mft_tokenizer_free(t);
        return s;
    }
bad:
    return mft__fail(err, MFT_ERR_FORMAT, "'%s' is not a valid SentencePiece model (corrupt protobuf)", path);
}

/* ---- byte-level pieces ---------------------------------------------------------------------
   GPT-2's vocabulary writes every byte as a printable character: bytes '!'..'~', 0xA1..0xAC
   and 0xAE..0xFF stand for themselves, and the other 68 bytes, in order, for U+0100..U+0143.
   Pieces are turned back into the bytes they stand for; a piece with any other character
   (an added token such as "<|endoftext|>" is plain text) is kept as it is. */

static int mft__bl_byte(int32_t cp)
{
    if ((cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return cp;
    /* the k-th byte outside those ranges (0x00-0x20, 0x7F-0xA0, 0xAD) is U+0100 + k */
    int k = cp - 0x100;
    if (k < 0 || k >= 68) return -1;
    return k < 33 ? k : k < 67 ? 0x7F + (k - 33) : 0xAD;
}

/* converts s[0..n) in place; returns the new length, or -1 if it is not byte-level text */
static int mft__bl_decode(char *s, int n)
{
    mft__txt x = { (const unsigned char *)s, n };
    int w = 0;
    for (int i = 0; i < n;) {
        int32_t cp;
        int l = mft__cp(&x, i, &cp);
        int b = mft__bl_byte(cp);
        if (b < 0) return -1;
        s[w++] = (char)b;
        i += l;
    }
    return w;
}

/* One merge "a b" as a file writes it (pieces in the byte-level alphabet, or with
   SentencePiece's U+2581), turned into the ids of its two halves in `vocab` (-1 for a half
   that is not a piece, or is too long to be one; the builder skips such merges). */
static void mft__merge_pair(const mft_tokenizer *vocab, int kind, const char *a, int la, const char *b, int lb,
                            int32_t out[2])
{
    char buf[4096];
    const char *half[2] = { a, b };
    int len[2] = { la, lb };
    for (int k = 0; k < 2; k++) {
        int n = len[k];
        out[k] = -1;
        if (n < 0 || n > (int)sizeof buf) continue;
        memcpy(buf, half[k], (size_t)n);
        if (kind == MFT_TOK_BPE) {
            int m = mft__bl_decode(buf, n);
            if (m >= 0) n = m;
        } else
            n = mft__unescape_ws(buf, n);
        out[k] = mft__tok_lookup(vocab, buf, n);
    }
}

/* ---- Hugging Face tokenizer.json ---------------------------------------------------------- */

static const char *const mft__re_gpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char *const mft__re_llama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const mft__re_qwen2 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* a token name in tokenizer_config.json: "eos_token": "<|im_end|>" or {"content": ...} */
static int mft__config_token(const mft_tokenizer *t, const mft__json *j, uint32_t root, const char *key)
{
    uint32_t v = mft__jget(j, root, key);
    if (v != MFT__JNONE && j->node[v].type == MFT__J_OBJ) v = mft__jget(j, v, "content");
    int n;
    const char *s = mft__jstr(j, v, &n);
    if (!s) return -2;
    for (int id = 0; id < t->vocab_size; id++)
        if ((int)(t->piece_off[id + 1] - t->piece_off[id]) == n && !memcmp(t->pieces + t->piece_off[id], s, (size_t)n))
            return id;
    return -1;
}

/* tokenizer.json, read in stages over one parse: the id space, the pre-tokenizer and the
   normaliser (which decide the algorithm), the pieces, the merges. */
typedef struct mft__tokjson {
    const char *path;
    mft__json j;
    uint32_t model, vocab, merges, added;
    int V, kind, byte_level;
    char *text;         /* the JSON pool, copied: pieces are decoded in place */
    const char **piece; /* (V) */
    int *plen;          /* (V) */
    uint8_t *type;      /* (V) */
    uint8_t *strip;     /* (V) MFT__LSTRIP / MFT__RSTRIP of the added tokens */
    int32_t *merge;     /* 2 ids per merge, in rank order */
    int n_merges;
} mft__tokjson;

/* the id space: the largest id in vocab or added_tokens, plus one */
static mft_status mft__tj_ids(mft__tokjson *x, mft_error *err)
{
    const mft__json *j = &x->j;
    for (uint32_t c = j->node[x->vocab].first; c != MFT__JNONE; c = j->node[c].next) {
        int id;
        if (!mft__jint(j, c, 0, (1 << 22) - 1, &id))
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': a vocab id is not an integer in range", x->path);
        if (id + 1 > x->V) x->V = id + 1;
    }
    if (x->added != MFT__JNONE && j->node[x->added].type == MFT__J_ARR)
        for (uint32_t c = j->node[x->added].first; c != MFT__JNONE; c = j->node[c].next) {
            int id;
            if (!mft__jint(j, mft__jget(j, c, "id"), 0, (1 << 22) - 1, &id))
                return mft__fail(err, MFT_ERR_FORMAT, "'%s': an added token has no valid id", x->path);
            if (id + 1 > x->V) x->V = id + 1;
        }
    return MFT_OK;
}

/* one pre-tokenizer, or a Sequence of them: ByteLevel, Digits, the Split regexes maskft knows,
   or Metaspace (SentencePiece-style, whose prepend scheme says where the dummy prefix goes) */
static mft_status mft__tj_pretok(mft__tokjson *x, mft_tokenizer *t, uint32_t pre, mft_error *err)
{
    const mft__json *j = &x->j;
    const char *path = x->path;
    if (pre == MFT__JNONE || j->node[pre].type != MFT__J_OBJ) return MFT_OK;
    uint32_t list = mft__jget(j, pre, "pretokenizers");
    if (list != MFT__JNONE && j->node[list].type != MFT__J_ARR)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': pre_tokenizer.pretokenizers is not an array", path);
    uint32_t first = list != MFT__JNONE ? j->node[list].first : pre;
    int digits = 0, split = -1;
    for (uint32_t c = first; c != MFT__JNONE; c = list != MFT__JNONE ? j->node[c].next : MFT__JNONE) {
        uint32_t ty = mft__jget(j, c, "type");
        if (mft__jstr_is(j, ty, "ByteLevel")) {
            x->byte_level = 1;
            uint32_t ur = mft__jget(j, c, "use_regex"), aps = mft__jget(j, c, "add_prefix_space");
            if (ur == MFT__JNONE || j->node[ur].type == MFT__J_TRUE) split = split < 0 ? MFT_PRE_GPT2 : split;
            if (aps != MFT__JNONE && j->node[aps].type == MFT__J_TRUE)
                return mft__fail(err, MFT_ERR_FORMAT, "'%s': ByteLevel add_prefix_space=true is not supported", path);
        } else if (mft__jstr_is(j, ty, "Digits")) {
            uint32_t ind = mft__jget(j, c, "individual_digits");
            digits = ind != MFT__JNONE && j->node[ind].type == MFT__J_TRUE ? 1 : 2;
        } else if (mft__jstr_is(j, ty, "Split")) {
            uint32_t re = mft__jget(j, mft__jget(j, c, "pattern"), "Regex");
            if (mft__jstr_is(j, re, mft__re_llama3)) {
                split = MFT_PRE_LLAMA3;
            } else if (mft__jstr_is(j, re, mft__re_qwen2)) {
                split = MFT_PRE_QWEN2;
            } else if (mft__jstr_is(j, re, mft__re_gpt2)) {
                split = MFT_PRE_GPT2;
            } else {
                int rl = 0;
                const char *r = mft__jstr(j, re, &rl);
                return mft__fail(err, MFT_ERR_FORMAT, "'%s': pre-tokenizer regex not supported: %.*s", path,
                                 r ? (rl < 120 ? rl : 120) : 14, r ? r : "(not a regex)");
            }
        } else if (mft__jstr_is(j, ty, "Metaspace")) {
            x->kind = MFT_TOK_SPM;
            uint32_t ps = mft__jget(j, c, "prepend_scheme"), ap = mft__jget(j, c, "add_prefix_space");
            if (mft__jstr_is(j, ps, "always") ||
                (ps == MFT__JNONE && ap != MFT__JNONE && j->node[ap].type == MFT__J_TRUE)) {
                t->add_dummy_prefix = 1;
            } else if (mft__jstr_is(j, ps, "first")) {
                t->add_dummy_prefix = 1;
                t->prefix_after_special = 0;
            }
        } else {
            int tl = 0;
            const char *tn = mft__jstr(j, ty, &tl);
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': pre-tokenizer %.*s is not supported", path,
                             tn ? (tl < 40 ? tl : 40) : 1, tn ? tn : "?");
        }
    }
    /* Digits then the GPT-2 regex: StarCoder's (each digit alone) or digit runs */
    if (digits) {
        split = MFT_PRE_STARCODER;
        t->digit_runs = digits == 2;
    }
    t->pre = split;
    return MFT_OK;
}

/* NFC, or (Llama-2 / TinyLlama) Prepend("▁") + Replace(" ", "▁"), which is SentencePiece's
   escaping */
static mft_status mft__tj_normalizer(mft__tokjson *x, mft_tokenizer *t, uint32_t norm, mft_error *err)
{
    const mft__json *j = &x->j;
    if (norm == MFT__JNONE || j->node[norm].type != MFT__J_OBJ) return MFT_OK;
    uint32_t ty = mft__jget(j, norm, "type");
    if (mft__jstr_is(j, ty, "NFC")) {
        t->nfc = 1;
        return MFT_OK;
    }
    if (!mft__jstr_is(j, ty, "Sequence"))
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': normalizer not supported", x->path);
    uint32_t list = mft__jget(j, norm, "normalizers");
    if (list == MFT__JNONE || j->node[list].type != MFT__J_ARR)
        return mft__fail(err, MFT_ERR_FORMAT, "'%s': normalizer.normalizers is not an array", x->path);
    for (uint32_t c = j->node[list].first; c != MFT__JNONE; c = j->node[c].next) {
        uint32_t cty = mft__jget(j, c, "type");
        if (mft__jstr_is(j, cty, "Prepend")) {
            x->kind = MFT_TOK_SPM;
            t->add_dummy_prefix = 1;
        } else if (mft__jstr_is(j, cty, "Replace")) {
            x->kind = MFT_TOK_SPM;
        } else if (mft__jstr_is(j, cty, "NFC")) {
            t->nfc = 1;
        } else {
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': normalizer not supported", x->path);
        }
    }
    return MFT_OK;
}

/* every id's piece: vocab keys decoded to raw bytes (from GPT-2's byte alphabet, or with
   SentencePiece's U+2581 made a space), added tokens as they are (special ones are control
   tokens), ids in neither unused */
static mft_status mft__tj_pieces(mft__tokjson *x, mft_error *err)
{
    const mft__json *j = &x->j;
    for (int i = 0; i < x->V; i++) {
        x->piece[i] = x->text;
        x->plen[i] = 0;
        x->type[i] = MFT__TT_UNUSED;
    }
    for (uint32_t c = j->node[x->vocab].first; c != MFT__JNONE; c = j->node[c].next) {
        int id = (int)j->node[c].num, n = (int)j->node[c].klen;
        char *p = x->text + j->node[c].key;
        if (x->kind == MFT_TOK_BPE) {
            int m = mft__bl_decode(p, n);
            if (m >= 0) n = m;
        } else {
            n = mft__unescape_ws(p, n);
        }
        x->piece[id] = p;
        x->plen[id] = n;
        x->type[id] = MFT__TT_NORMAL;
    }
    if (x->added == MFT__JNONE || j->node[x->added].type != MFT__J_ARR) return MFT_OK;
    for (uint32_t c = j->node[x->added].first; c != MFT__JNONE; c = j->node[c].next) {
        int id = (int)j->node[mft__jget(j, c, "id")].num, n;
        uint32_t cn = mft__jget(j, c, "content"), sp = mft__jget(j, c, "special");
        if (!mft__jstr(j, cn, &n))
            return mft__fail(err, MFT_ERR_FORMAT, "'%s': an added token has no content", x->path);
        x->piece[id] = x->text + j->node[cn].first;
        x->plen[id] = n;
        x->type[id] = sp != MFT__JNONE && j->node[sp].type == MFT__J_TRUE ? MFT__TT_CONTROL : MFT__TT_USER;
        uint32_t ls = mft__jget(j, c, "lstrip"), rs = mft__jget(j, c, "rstrip");
        x->strip[id] = (uint8_t)((ls != MFT__JNONE && j->node[ls].type == MFT__J_TRUE ? MFT__LSTRIP : 0) |
                                 (rs != MFT__JNONE && j->node[rs].type == MFT__J_TRUE ? MFT__RSTRIP : 0));
    }
    return MFT_OK;
}

/* merges: "a b" strings (older files) or ["a", "b"] pairs, in rank order, as pairs of ids,
   looked up in a temporary table piece -> id (the builder's hash does not exist yet) */
static mft_status mft__tj_merges(mft__tokjson *x, mft_error *err)
{
    const mft__json *j = &x->j;
    if (x->merges == MFT__JNONE || j->node[x->merges].type != MFT__J_ARR || j->node[x->merges].n == 0) return MFT_OK;
    x->merge = (int32_t *)MFT_MALLOC(2 * (size_t)j->node[x->merges].n * sizeof *x->merge);
    if (!x->merge) return mft__fail(err, MFT_ERR_NOMEM, "out of memory reading '%s'", x->path);
    mft_tokenizer tmp;
    memset(&tmp, 0, sizeof tmp);
    mft__tok_defaults(&tmp);
    mft__tokspec sp = { x->kind, x->V, x->piece, x->plen, NULL, NULL, 0, NULL };
    mft_status s = mft__tok_build(&tmp, &sp, err);
    if (s) return s;
    for (uint32_t c = j->node[x->merges].first; c != MFT__JNONE; c = j->node[c].next) {
        const char *a, *b;
        int la, lb;
        if (j->node[c].type == MFT__J_STR) {
            /* a piece may start with ' ' only in SentencePiece form: split at a later space */
            a = x->text + j->node[c].first;
            const char *space = (const char *)memchr(a + 1, ' ', j->node[c].n > 1 ? j->node[c].n - 1 : 0);
            if (!space) continue;
            la = (int)(space - a);
            b = space + 1;
            lb = (int)j->node[c].n - la - 1;
        } else if (j->node[c].type == MFT__J_ARR && j->node[c].n == 2) {
            uint32_t p = j->node[c].first, q = j->node[p].next;
            if (j->node[p].type != MFT__J_STR || j->node[q].type != MFT__J_STR) continue;
            a = x->text + j->node[p].first;
            la = (int)j->node[p].n;
            b = x->text + j->node[q].first;
            lb = (int)j->node[q].n;
        } else {
            continue;
        }
        mft__merge_pair(&tmp, x->kind, a, la, b, lb, x->merge + 2 * x->n_merges);
        x->n_merges++;
    }
    mft_tokenizer_free(&tmp);
    return MFT_OK;
}

/* the post-processor: a TemplateProcessing (alone or in a Sequence, as Llama-3's) whose single
   template starts with a special token adds it as BOS, one that ends with one adds EOS.
   tokenizer_config.json's add_bos_token / add_eos_token, read after, have the last word. */
static void mft__tj_post(mft__tokjson *x, mft_tokenizer *t, uint32_t pp, int depth)
{
    const mft__json *j = &x->j;
    if (pp == MFT__JNONE || j->node[pp].type != MFT__J_OBJ || depth > 4) return;
    uint32_t ty = mft__jget(j, pp, "type"), list = mft__jget(j, pp, "processors");
    if (mft__jstr_is(j, ty, "Sequence") && list != MFT__JNONE && j->node[list].type == MFT__J_ARR)
        for (uint32_t c = j->node[list].first; c != MFT__JNONE; c = j->node[c].next) mft__tj_post(x, t, c, depth + 1);
    uint32_t single = mft__jget(j, pp, "single");
    if (!mft__jstr_is(j, ty, "TemplateProcessing") || single == MFT__JNONE || j->node[single].type != MFT__J_ARR)
        return;
    uint32_t first = j->node[single].first, last = first;
    while (last != MFT__JNONE && j->node[last].next != MFT__JNONE) last = j->node[last].next;
    for (int end = 0; end < 2 && first != MFT__JNONE; end++) {
        uint32_t item = end ? last : first, st = mft__jget(j, item, "SpecialToken");
        int n;
        const char *name = mft__jstr(j, mft__jget(j, st, "id"), &n);
        int id = name ? mft_token_find(t, name, n) : -1; /* control tokens are not in the piece hash */
        if (id < 0 || (end && last == first)) continue;
        if (!end) {
            t->add_bos = 1;
            if (t->bos_id < 0) t->bos_id = id;
        } else {
            t->add_eos = 1;
            if (t->eos_id < 0) t->eos_id = t->eot_id = id;
        }
    }
}

static mft_status mft__tok_load_json(mft_tokenizer *t, const char *path, const char *data, size_t size, mft_error *err)
{
    mft__tokjson x;
    memset(&x, 0, sizeof x);
    x.path = path;
    x.kind = MFT_TOK_BPE;
    mft_status s = MFT_OK;
    mft__json *j = &x.j;
    uint32_t root = mft__json_parse(j, data, size);
    if (root == MFT__JNONE) {
        s = mft__errat(err, MFT_ERR_FORMAT, path, j->err_line, j->err_col, "%s", j->err);
        goto done;
    }
    x.model = mft__jget(j, root, "model");
    x.vocab = mft__jget(j, x.model, "vocab");
    x.merges = mft__jget(j, x.model, "merges");
    x.added = mft__jget(j, root, "added_tokens");
    if (!mft__jstr_is(j, mft__jget(j, x.model, "type"), "BPE")) {
        s = mft__fail(err, MFT_ERR_FORMAT, "'%s': model.type is not BPE (only BPE tokenizer.json files are supported)",
                      path);
        goto done;
    }
    if (x.vocab == MFT__JNONE || j->node[x.vocab].type != MFT__J_OBJ) {
        s = mft__fail(err, MFT_ERR_FORMAT, "'%s': model.vocab is missing", path);
        goto done;
    }
    if ((s = mft__tj_ids(&x, err))) goto done;
    x.piece = (const char **)mft__calloc((size_t)x.V, sizeof *x.piece);
    x.plen = (int *)mft__calloc((size_t)x.V, sizeof *x.plen);
    x.type = (uint8_t *)mft__calloc((size_t)x.V, 1);
    x.strip = (uint8_t *)mft__calloc((size_t)x.V, 1);
    x.text = (char *)MFT_MALLOC(j->n_pool + 1);
    if (!x.piece || !x.plen || !x.type || !x.strip || !x.text) {
        s = mft__fail(err, MFT_ERR_NOMEM, "out of memory reading '%s'", path);
        goto done;
    }
    if (j->n_pool) memcpy(x.text, j->pool, j->n_pool);
    /* the algorithm comes from the pre-tokenizer and the normaliser */
    mft__tok_defaults(t);
    t->pre = -1;
    t->prefix_after_special = 1; /* HF normalises each stretch between added tokens on its own */
    if ((s = mft__tj_pretok(&x, t, mft__jget(j, root, "pre_tokenizer"), err))) goto done;
    if ((s = mft__tj_normalizer(&x, t, mft__jget(j, root, "normalizer"), err))) goto done;
    if (x.kind == MFT_TOK_BPE && !x.byte_level) {
        s = mft__fail(err, MFT_ERR_FORMAT,
                      "'%s': a BPE model without a ByteLevel or Metaspace pre-tokenizer is not supported", path);
        goto done;
    }
    if (x.kind == MFT_TOK_BPE && t->pre < 0) t->pre = MFT_PRE_GPT2;
    {
        uint32_t bf = mft__jget(j, x.model, "byte_fallback"), im = mft__jget(j, x.model, "ignore_merges");
        t->byte_fallback = bf != MFT__JNONE && j->node[bf].type == MFT__J_TRUE;
        t->ignore_merges = im != MFT__JNONE && j->node[im].type == MFT__J_TRUE;
    }
    if ((s = mft__tj_pieces(&x, err)) || (s = mft__tj_merges(&x, err))) goto done;
    if (x.kind == MFT_TOK_SPM && !x.n_merges) {
        s = mft__fail(err, MFT_ERR_FORMAT, "'%s' has no merges", path);
        goto done;
    }
    t->source = "tokenizer.json";
    {
        mft__tokspec sp = { x.kind, x.V, x.piece, x.plen, NULL, x.type, x.n_merges, x.merge };
        s = mft__tok_build(t, &sp, err);
    }
    if (!s) memcpy(t->strip, x.strip, (size_t)x.V);
    if (!s) mft__tj_post(&x, t, mft__jget(j, root, "post_processor"), 0);
done:
    mft__json_free(j);
    MFT_FREE(x.piece);
    MFT_FREE(x.plen);
    MFT_FREE(x.type);
    MFT_FREE(x.strip);
    MFT_FREE(x.merge);
    MFT_FREE(x.text);
    return s;
}

/* tokenizer_config.json: special tokens, add_bos, chat template */
MFT_API mft_status mft_tokenizer_apply_config(mft_tokenizer *t, const char *json, size_t len, mft_error *err)
{
    if (!t || !t->mem || !json) return mft__fail(err, MFT_ERR_ARG, "mft_tokenizer_apply_config: NULL argument");
    mft__json j;
    uint32_t root = mft__json_parse(&j, json, len);
    mft_status s = MFT_OK;
    if (root == MFT__JNONE) {
        s = mft__errat(err, MFT_ERR_FORMAT, "tokenizer_config.json", j.err_line, j.err_col, "%s", j.err);
    } else {
        int id;
        if ((id = mft__config_token(t, &j, root, "bos_token")) >= 0) t->bos_id = id;
        if ((id = mft__config_token(t, &j, root, "eos_token")) >= 0) t->eos_id = t->eot_id = id;
        if ((id = mft__config_token(t, &j, root, "pad_token")) >= 0) t->pad_id = id;
        if ((id = mft__config_token(t, &j, root, "unk_token")) >= 0) t->unk_id = id;
        uint32_t ab = mft__jget(&j, root, "add_bos_token");
        if (ab != MFT__JNONE) t->add_bos = j.node[ab].type == MFT__J_TRUE;
        uint32_t ae = mft__jget(&j, root, "add_eos_token");
        if (ae != MFT__JNONE) t->add_eos = j.node[ae].type == MFT__J_TRUE;
        int tl;
        const char *tpl = mft__jstr(&j, mft__jget(&j, root, "chat_template"), &tl);
        if (tpl) {
            char *c = (char *)MFT_MALLOC((size_t)tl + 1);
            if (!c) {
                s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
            } else {
                memcpy(c, tpl, (size_t)tl);
                c[tl] = 0;
                MFT_FREE(t->chat_template);
                t->chat_template = c;
            }
        }
    }
    mft__json_free(&j);
    return s ? s : mft__ok(err);
}

/* the file `name` in the folder of path, malloc'd */
static char *mft__sibling(const char *path, const char *name)
{
    size_t dl = strlen(path), nl = strlen(name);
    while (dl > 0 && path[dl - 1] != '/') dl--;
    char *p = (char *)MFT_MALLOC(dl + nl + 1);
    if (p) {
        memcpy(p, path, dl);
        memcpy(p + dl, name, nl + 1);
    }
    return p;
}

MFT_API mft_status mft_tokenizer_apply_generation_config(mft_tokenizer *t, const char *json, size_t len, mft_error *err)
{
    if (!t || !t->mem || !json)
        return mft__fail(err, MFT_ERR_ARG, "mft_tokenizer_apply_generation_config: NULL argument");
    mft__json j;
    uint32_t root = mft__json_parse(&j, json, len);
    mft_status s = MFT_OK;
    if (root == MFT__JNONE) {
        s = mft__errat(err, MFT_ERR_FORMAT, "generation_config.json", j.err_line, j.err_col, "%s", j.err);
    } else {
        uint32_t e = mft__jget(&j, root, "eos_token_id");
        uint32_t c = e != MFT__JNONE && j.node[e].type == MFT__J_ARR ? j.node[e].first : e;
        int n = 0;
        for (; c != MFT__JNONE && !s;
             c = e != MFT__JNONE && j.node[e].type == MFT__J_ARR ? j.node[c].next : MFT__JNONE) {
            double v = j.node[c].num;
            if (j.node[c].type != MFT__J_NUM || v < 0 || v >= t->vocab_size || v != (double)(int)v)
                s = mft__fail(err, MFT_ERR_FORMAT,
                              "generation_config.json: eos_token_id holds something that is not a "
                              "token id of this vocabulary (%d tokens)",
                              t->vocab_size);
            else if (n < 4)
                t->eos_ids[n++] = (int)v;
        }
        if (!s) t->n_eos_ids = n;
    }
    mft__json_free(&j);
    return s ? s : mft__ok(err);
}

MFT_API int mft_tokenizer_stops(const mft_tokenizer *t, int end, int stop[4])
{
    int want[7] = { end, t ? t->eos_id : -1, -1, -1, -1, -1, t ? t->bos_id : -1 }, n = 0;
    for (int i = 0; t && i < t->n_eos_ids && i < 4; i++) want[2 + i] = t->eos_ids[i];
    for (int i = 0; i < 4; i++) stop[i] = -1;
    for (int i = 0; i < 7 && n < 4; i++) {
        int dup = want[i] < 0;
        for (int k = 0; k < n && !dup; k++) dup = stop[k] == want[i];
        if (!dup) stop[n++] = want[i];
    }
    return n;
}

/* tokenizer_config.json and generation_config.json beside a tokenizer.json, if they are there:
   a missing file is fine, a broken one is an error */
static mft_status mft__tok_config_beside(mft_tokenizer *t, const char *path, mft_error *err)
{
    static const char *const names[2] = { "tokenizer_config.json", "generation_config.json" };
    mft_status s = MFT_OK;
    for (int i = 0; i < 2 && !s; i++) {
        char *cp = mft__sibling(path, names[i]), *data;
        size_t n;
        if (!cp) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        FILE *f = fopen(cp, "rb");
        if (f) {
            fclose(f);
            s = mft__read_all(cp, (size_t)64 << 20, &data, &n, err);
            if (!s) {
                s = i == 0 ? mft_tokenizer_apply_config(t, data, n, err)
                           : mft_tokenizer_apply_generation_config(t, data, n, err);
                MFT_FREE(data);
            }
        }
        MFT_FREE(cp);
    }
    return s;
}

/* ---- GGUF vocabularies -------------------------------------------------------------------- */

MFT_API mft_status mft_tokenizer_from_gguf(mft_tokenizer *t, const mft_gguf *g, mft_error *err)
{
    if (!t || !g) return mft__fail(err, MFT_ERR_ARG, "NULL argument");
    memset(t, 0, sizeof *t);
    const mft_gguf_kv *model = mft_gguf_get(g, "tokenizer.ggml.model"),
                      *tokens = mft_gguf_get(g, "tokenizer.ggml.tokens");
    const mft_gguf_kv *scores = mft_gguf_get(g, "tokenizer.ggml.scores"),
                      *types = mft_gguf_get(g, "tokenizer.ggml.token_type");
    const mft_gguf_kv *merges = mft_gguf_get(g, "tokenizer.ggml.merges"), *pre = mft_gguf_get(g, "tokenizer.ggml.pre");
    if (!model || model->type != MFT_GGUF_STRING)
        return mft__fail(err, MFT_ERR_FORMAT, "the GGUF file has no tokenizer.ggml.model");
    if (!tokens || tokens->type != MFT_GGUF_ARRAY || tokens->arr_type != MFT_GGUF_STRING || tokens->n == 0 ||
        tokens->n > (1u << 22))
        return mft__fail(err, MFT_ERR_FORMAT, "the GGUF file has no valid tokenizer.ggml.tokens");
    int kind = !strcmp((const char *)model->data, "llama")  ? MFT_TOK_SPM
               : !strcmp((const char *)model->data, "gpt2") ? MFT_TOK_BPE
                                                            : 0;
    if (!kind)
        return mft__fail(err, MFT_ERR_FORMAT, "GGUF tokenizer model '%s' is not supported (llama and gpt2 are)",
                         (const char *)model->data);
    int V = (int)tokens->n;
    if (scores && (scores->type != MFT_GGUF_ARRAY || scores->n != (uint64_t)V ||
                   (scores->arr_type != MFT_GGUF_FLOAT32 && scores->arr_type != MFT_GGUF_FLOAT64)))
        return mft__fail(err, MFT_ERR_FORMAT, "tokenizer.ggml.scores does not match the %d tokens", V);
    if (types && (types->type != MFT_GGUF_ARRAY || types->n != (uint64_t)V || types->arr_type == MFT_GGUF_STRING ||
                  types->arr_type == MFT_GGUF_ARRAY || types->arr_type == MFT_GGUF_FLOAT32 ||
                  types->arr_type == MFT_GGUF_FLOAT64))
        return mft__fail(err, MFT_ERR_FORMAT, "tokenizer.ggml.token_type does not match the %d tokens", V);
    if (kind == MFT_TOK_SPM && !scores)
        return mft__fail(err, MFT_ERR_FORMAT, "a GGUF llama vocabulary needs tokenizer.ggml.scores");
    if (kind == MFT_TOK_BPE && (!merges || merges->type != MFT_GGUF_ARRAY || merges->arr_type != MFT_GGUF_STRING))
        return mft__fail(err, MFT_ERR_FORMAT, "a GGUF gpt2 vocabulary needs tokenizer.ggml.merges");
    mft_status s = MFT_OK;
    const mft_gguf_str *tok = (const mft_gguf_str *)tokens->data;
    size_t text = 0;
    for (int i = 0; i < V; i++) {
        if (tok[i].n > (1 << 16)) return mft__fail(err, MFT_ERR_FORMAT, "token %d is too long", i);
        text += tok[i].n;
    }
    const char **piece = (const char **)mft__calloc((size_t)V, sizeof *piece);
    int *plen = (int *)mft__calloc((size_t)V, sizeof *plen);
    float *score = (float *)mft__calloc((size_t)V, sizeof *score);
    uint8_t *type = (uint8_t *)mft__calloc((size_t)V, 1);
    char *buf = (char *)MFT_MALLOC(text + 1);
    int32_t *merge = NULL;
    int n_merges = 0;
    if (!piece || !plen || !score || !type || !buf) {
        s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    mft__tok_defaults(t);
    size_t u;
    u = 0;
    for (int i = 0; i < V; i++) {
        char *p = buf + u;
        int n = (int)tok[i].n;
        memcpy(p, tok[i].s, (size_t)n);
        int64_t ty = types ? mft__gguf_int(types, (uint64_t)i) : (int64_t)MFT__TT_NORMAL;
        type[i] = (uint8_t)(ty >= 1 && ty <= 6 ? ty : (int64_t)MFT__TT_NORMAL);
        if (kind == MFT_TOK_BPE) {
            if (type[i] == MFT__TT_NORMAL) {
                int m = mft__bl_decode(p, n);
                if (m >= 0) n = m;
            }
        } else {
            n = mft__unescape_ws(p, n);
        }
        piece[i] = p;
        plen[i] = n;
        score[i] = scores ? (float)mft__gguf_f64(scores, (uint64_t)i) : 0.0f;
        u += (size_t)n;
    }
    if (kind == MFT_TOK_BPE) {
        mft_tokenizer tmp;
        memset(&tmp, 0, sizeof tmp);
        mft__tok_defaults(&tmp);
        mft__tokspec sp0 = { kind, V, piece, plen, NULL, type, 0, NULL };
        if ((s = mft__tok_build(&tmp, &sp0, err))) goto done;
        merge = (int32_t *)MFT_MALLOC(2 * (size_t)merges->n * sizeof *merge + 8);
        if (!merge) {
            mft_tokenizer_free(&tmp);
            s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
            goto done;
        }
        const mft_gguf_str *ms = (const mft_gguf_str *)merges->data;
        for (uint64_t r = 0; r < merges->n; r++) {
            const char *sp = ms[r].n > 1 ? (const char *)memchr(ms[r].s + 1, ' ', (size_t)ms[r].n - 1) : NULL;
            if (!sp) continue;
            int la = (int)(sp - ms[r].s);
            mft__merge_pair(&tmp, kind, ms[r].s, la, sp + 1, (int)ms[r].n - la - 1, merge + 2 * n_merges);
            n_merges++;
        }
        mft_tokenizer_free(&tmp);
        t->pre = MFT_PRE_GPT2;
        if (pre && pre->type == MFT_GGUF_STRING) {
            const char *pn = (const char *)pre->data;
            /* llama.cpp's names for its pre-tokenizer regex sets */
            if (!strcmp(pn, "gpt-2"))
                t->pre = MFT_PRE_GPT2;
            else if (!strcmp(pn, "starcoder") || !strcmp(pn, "smollm") || !strcmp(pn, "refact"))
                t->pre = MFT_PRE_STARCODER;
            else if (!strcmp(pn, "llama-bpe") || !strcmp(pn, "llama3"))
                t->pre = MFT_PRE_LLAMA3;
            else if (!strcmp(pn, "qwen2"))
                t->pre = MFT_PRE_QWEN2;
            else {
                s = mft__fail(err, MFT_ERR_FORMAT, "GGUF pre-tokenizer '%s' is not supported", pn);
                goto done;
            }
        }
        t->ignore_merges = t->pre == MFT_PRE_LLAMA3;
    }
    {
        const mft_gguf_kv *kv;
        if ((kv = mft_gguf_get(g, "tokenizer.ggml.bos_token_id")) && kv->v.i >= 0 && kv->v.i < V)
            t->bos_id = (int)kv->v.i;
        if ((kv = mft_gguf_get(g, "tokenizer.ggml.eos_token_id")) && kv->v.i >= 0 && kv->v.i < V)
            t->eos_id = t->eot_id = (int)kv->v.i;
        if ((kv = mft_gguf_get(g, "tokenizer.ggml.eot_token_id")) && kv->v.i >= 0 && kv->v.i < V)
            t->eot_id = (int)kv->v.i;
        if ((kv = mft_gguf_get(g, "tokenizer.ggml.unknown_token_id")) && kv->v.i >= 0 && kv->v.i < V)
            t->unk_id = (int)kv->v.i;
        if ((kv = mft_gguf_get(g, "tokenizer.ggml.padding_token_id")) && kv->v.i >= 0 && kv->v.i < V)
            t->pad_id = (int)kv->v.i;
        t->add_bos = kind == MFT_TOK_SPM;
        if ((kv = mft_gguf_get(g, "tokenizer.ggml.add_bos_token")) && kv->type == MFT_GGUF_BOOL)
            t->add_bos = (int)kv->v.u;
        if ((kv = mft_gguf_get(g, "tokenizer.ggml.add_eos_token")) && kv->type == MFT_GGUF_BOOL)
            t->add_eos = (int)kv->v.u;
        t->add_dummy_prefix = kind == MFT_TOK_SPM;
        if ((kv = mft_gguf_get(g, "tokenizer.ggml.add_space_prefix")) && kv->type == MFT_GGUF_BOOL)
            t->add_dummy_prefix = (int)kv->v.u;
        if ((kv = mft_gguf_get(g, "tokenizer.chat_template")) && kv->type == MFT_GGUF_STRING &&
            (t->chat_template = (char *)MFT_MALLOC(kv->n + 1))) {
            memcpy(t->chat_template, kv->data, kv->n);
            t->chat_template[kv->n] = 0;
        }
        if (t->unk_id < 0)
            for (int i = 0; i < V; i++)
                if (type[i] == MFT__TT_UNKNOWN) {
                    t->unk_id = i;
                    break;
                }
    }
    /* llama.cpp's SPM: byte fallback and no whitespace clean-up */
    t->byte_fallback = 1;
    t->remove_extra_spaces = 0;
    t->source = "gguf";
    {
        mft__tokspec sp = { kind, V, piece, plen, kind == MFT_TOK_SPM ? score : NULL, type, n_merges, merge };
        s = mft__tok_build(t, &sp, err);
    }
    /* GGUF has no lstrip / rstrip; llama.cpp sets them by the model's name, and for Phi-3 (the
       one family maskft knows that needs them) every special token takes the whitespace after
       it, </s> too, except <unk>, <s> and <|endoftext|> */
    const mft_gguf_kv *name;
    name = mft_gguf_get(g, "general.name");
    if (!s && name && name->type == MFT_GGUF_STRING && name->n < 256) {
        char low[256];
        for (uint64_t i = 0; i < name->n; i++) {
            char ch = ((const char *)name->data)[i];
            low[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
        }
        low[name->n] = 0;
        if (strstr(low, "phi-3") || strstr(low, "phi3")) {
            for (int i = 0; i < V; i++)
                if (t->types[i] == MFT__TT_CONTROL || t->types[i] == MFT__TT_USER || t->types[i] == MFT__TT_UNKNOWN)
                    t->strip[i] = MFT__RSTRIP;
            static const char *const on[] = { "</s>" }, *const off[] = { "<unk>", "<s>", "<|endoftext|>" };
            int id = mft_token_find(t, on[0], (int)strlen(on[0])); /* control tokens are not hashed */
            if (id >= 0) t->strip[id] = MFT__RSTRIP;
            for (int k = 0; k < 3; k++)
                if ((id = mft_token_find(t, off[k], (int)strlen(off[k]))) >= 0) t->strip[id] = 0;
        }
    }
done:
    MFT_FREE(piece);
    MFT_FREE(plen);
    MFT_FREE(score);
    MFT_FREE(type);
    MFT_FREE(buf);
    MFT_FREE(merge);
    if (s) {
        mft_tokenizer_free(t);
        return s;
    }
    return mft__ok(err);
}

/* ---- one entry point for every file type -------------------------------------------------
   The format is told by content: GGUF magic; JSON ('{' after white space); a SentencePiece
   model (a protobuf whose first field, a piece, is length-delimited: byte 0x0A, whose own
   first field is the piece string, 0x0A again), or a file named .model; else tokenizer.bin,
   whose first uint32 is small (so its second byte is 0). */

static mft_status mft__tok_open_memory(mft_tokenizer *t, const char *name, const char *data, size_t n, int vocab_size,
                                       int named_model, mft_error *err)
{
    const unsigned char *head = (const unsigned char *)data;
    size_t k = 0;
    while (k < n && k < 16 && (head[k] == ' ' || head[k] == '\n' || head[k] == '\r' || head[k] == '\t')) k++;
    if (n >= 4 && !memcmp(head, "GGUF", 4)) {
        mft_gguf g;
        mft_status s = mft_gguf_open_from_memory(&g, data, n, err);
        if (s) return s;
        s = mft_tokenizer_from_gguf(t, &g, err);
        mft_gguf_free(&g);
        return s;
    }
    if (k < n && head[k] == '{') return mft__tok_load_json(t, name, data, n, err);
    if (named_model || (n >= 4 && head[0] == 0x0A && head[1] != 0 && (head[2] == 0x0A || head[3] == 0x0A)))
        return mft__tok_load_spm(t, name, (const uint8_t *)data, n, err);
    return mft__tok_load_bin(t, name, data, n, vocab_size, err);
}

/* a tokenizer with more tokens than the model has rows is not the model's */
static mft_status mft__tok_check_vocab(mft_tokenizer *t, const char *name, int vocab_size, mft_error *err)
{
    if (vocab_size > 0 && t->vocab_size > vocab_size) {
        mft_status s = mft__fail(err, MFT_ERR_FORMAT, "'%s' has %d tokens, more than the model's %d", name,
                                 t->vocab_size, vocab_size);
        mft_tokenizer_free(t);
        return s;
    }
    return mft__ok(err);
}

MFT_API mft_status mft_tokenizer_open_from_memory(mft_tokenizer *t, const void *data, size_t size, int vocab_size,
                                                  mft_error *err)
{
    if (!t) return mft__fail(err, MFT_ERR_ARG, "tokenizer is NULL");
    memset(t, 0, sizeof *t);
    if (!data) return mft__fail(err, MFT_ERR_ARG, "mft_tokenizer_open_from_memory: NULL data");
    mft_status s = mft__tok_open_memory(t, "(memory)", (const char *)data, size, vocab_size, 0, err);
    return s ? s : mft__tok_check_vocab(t, "(memory)", vocab_size, err);
}

MFT_API mft_status mft_tokenizer_open(mft_tokenizer *t, const char *path, int vocab_size, mft_error *err)
{
    if (!t) return mft__fail(err, MFT_ERR_ARG, "tokenizer is NULL");
    memset(t, 0, sizeof *t);
    if (!path) return mft__fail(err, MFT_ERR_ARG, "tokenizer path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return mft__fail(err, MFT_ERR_IO, "cannot open tokenizer '%s'", path);
    char magic[4] = { 0 };
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    mft_status s;
    if (got == 4 && !memcmp(magic, "GGUF", 4)) {
        /* a GGUF model can be gigabytes: read its metadata, not the file */
        mft_gguf g;
        if ((s = mft_gguf_open(&g, path, err))) return s;
        s = mft_tokenizer_from_gguf(t, &g, err);
        mft_gguf_free(&g);
    } else {
        char *data;
        size_t n, pl = strlen(path);
        if ((s = mft__read_all(path, (size_t)1 << 30, &data, &n, err))) return s;
        s = mft__tok_open_memory(t, path, data, n, vocab_size, pl > 6 && !strcmp(path + pl - 6, ".model"), err);
        if (!s && !strcmp(t->source, "tokenizer.json")) s = mft__tok_config_beside(t, path, err);
        MFT_FREE(data);
        if (s) mft_tokenizer_free(t);
    }
    return s ? s : mft__tok_check_vocab(t, path, vocab_size, err);
}

/* The tokenizer that comes with a model: inside a GGUF file, or a file beside the checkpoint
   (inside it when the path is a folder: a Hugging Face model, or a folder of tokenizer files),
   in this order: tokenizer.json, tokenizer.model, tokenizer.bin, tok<V>.bin (llama2.c's name
   for a custom vocabulary of V tokens). */
MFT_API mft_status mft_tokenizer_path(const char *model_path, int vocab_size, char **path, mft_error *err)
{
    if (!path || !model_path) return mft__fail(err, MFT_ERR_ARG, "NULL argument");
    *path = NULL;
    FILE *f = fopen(model_path, "rb"); /* a model not written yet: the files that would be beside it */
    char magic[4] = { 0 };
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    char names[4][40] = { "tokenizer.json", "tokenizer.model", "tokenizer.bin", "" };
    snprintf(names[3], sizeof names[3], "tok%d.bin", vocab_size);
    int folder = mft__is_hf_dir(model_path); /* a folder: the files inside it */
    for (int i = 0; i < 2 && !folder; i++) {
        char *inside = mft__join(model_path, names[i]);
        folder = inside && mft__exists(inside);
        MFT_FREE(inside);
    }
    if (got == 4 && !memcmp(magic, "GGUF", 4) && !folder) {
        size_t n = strlen(model_path) + 1;
        if (!(*path = (char *)MFT_MALLOC(n))) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        memcpy(*path, model_path, n);
        return mft__ok(err);
    }
    for (int i = 0; i < 4; i++) {
        char *p = folder ? mft__join(model_path, names[i]) : mft__sibling(model_path, names[i]);
        if (!p) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        if (mft__exists(p)) {
            *path = p;
            return mft__ok(err);
        }
        MFT_FREE(p);
    }
    return mft__fail(err, MFT_ERR_IO,
                     "no tokenizer beside '%s' (looked for tokenizer.json, tokenizer.model, tokenizer.bin, tok%d.bin): "
                     "give one",
                     model_path, vocab_size);
}

MFT_API mft_status mft_tokenizer_for_model(mft_tokenizer *t, const char *model_path, int vocab_size, mft_error *err)
{
    if (!t || !model_path) return mft__fail(err, MFT_ERR_ARG, "NULL argument");
    memset(t, 0, sizeof *t);
    char *path;
    mft_status s = mft_tokenizer_path(model_path, vocab_size, &path, err);
    if (s) return s;
    s = mft_tokenizer_open(t, path, vocab_size, err);
    MFT_FREE(path);
    return s;
}

/* ============================================================================================
   >>llamacpp
   GGUF files that llama.cpp runs: version 3, llama.cpp's tensor names (the table of the GGUF
   reader) and dims (the row length first), the metadata its loader needs, the tokenizer and
   chat template. Matrices in the chosen type, norms and biases in F32 (as llama.cpp's converter
   writes them). llama's q/k rows stay in maskft's interleaved order, which is llama.cpp's for
   llama; qwen2/qwen3 are written in NEOX order (pairs i, i + hs/2). Llama 3.1's RoPE scaling
   becomes the rope_freqs tensor of per-pair divisors llama.cpp applies.
   ============================================================================================ */

typedef struct mft__gw {
    FILE *f;
    int ok;
    uint64_t n_kv; /* keys written, patched into the header at the end */
} mft__gw;

static void mft__gw_bytes(mft__gw *w, const void *p, size_t n)
{
    if (w->ok && n && fwrite(p, 1, n, w->f) != n) w->ok = 0;
}

static void mft__gw_u32(mft__gw *w, uint32_t v) { mft__gw_bytes(w, &v, 4); }
static void mft__gw_u64(mft__gw *w, uint64_t v) { mft__gw_bytes(w, &v, 8); }

static void mft__gw_str(mft__gw *w, const char *s, size_t n)
{
    mft__gw_u64(w, n);
    mft__gw_bytes(w, s, n);
}

static void mft__gw_key(mft__gw *w, const char *key, uint32_t type)
{
    mft__gw_str(w, key, strlen(key));
    mft__gw_u32(w, type);
    w->n_kv++;
}

static void mft__gw_kv_str(mft__gw *w, const char *key, const char *v)
{
    mft__gw_key(w, key, MFT_GGUF_STRING);
    mft__gw_str(w, v, strlen(v));
}

static void mft__gw_kv_u32(mft__gw *w, const char *key, uint32_t v)
{
    mft__gw_key(w, key, MFT_GGUF_UINT32);
    mft__gw_u32(w, v);
}

static void mft__gw_kv_f32(mft__gw *w, const char *key, float v)
{
    mft__gw_key(w, key, MFT_GGUF_FLOAT32);
    mft__gw_bytes(w, &v, 4);
}

static void mft__gw_kv_bool(mft__gw *w, const char *key, int v)
{
    uint8_t b = (uint8_t)(v != 0);
    mft__gw_key(w, key, MFT_GGUF_BOOL);
    mft__gw_bytes(w, &b, 1);
}

/* a piece of a byte-level vocabulary in GPT-2's printable alphabet (the inverse of mft__bl_byte) */
static void mft__bl_encode(mft__sb *b, const char *p, int n)
{
    for (int i = 0; i < n; i++) {
        int c = (unsigned char)p[i], cp = c;
        if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF)))
            cp = 0x100 + (c <= 0x20 ? c : c <= 0xA0 ? 33 + (c - 0x7F) : 67);
        char u[4];
        mft__sb_put(b, u, mft__utf8_put((unsigned)cp, u));
    }
}

/* token i as the GGUF vocabulary stores it, the inverse of mft_tokenizer_from_gguf:
   SentencePiece pieces with spaces as U+2581; byte-level ordinary pieces in GPT-2's alphabet,
   the others as their text. Control tokens lose the newlines llama2.c puts around <s>, </s>. */
static void mft__gguf_piece(const mft_tokenizer *t, int i, mft__sb *b)
{
    int n;
    const char *p = mft_token_piece(t, i, &n);
    if (t->types[i] == MFT_TOKEN_CONTROL) {
        while (n > 0 && (p[0] == '\n' || p[0] == ' ')) p++, n--;
        while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == ' ')) n--;
    }
    if (t->kind == MFT_TOK_BPE && t->types[i] == MFT_TOKEN_NORMAL)
        mft__bl_encode(b, p, n);
    else if (t->kind == MFT_TOK_BPE)
        mft__sb_put(b, p, n);
    else
        for (int k = 0; k < n; k++) mft__sb_put(b, p[k] == ' ' ? "\xE2\x96\x81" : p + k, p[k] == ' ' ? 3 : 1);
}

static int mft__cmp_rank(const void *a, const void *b)
{
    int32_t x = ((const int32_t *)a)[0], y = ((const int32_t *)b)[0];
    return x < y ? -1 : x > y;
}

/* the tokenizer.ggml.* keys */
/* the tokenizer.ggml.* keys for a model of Vm rows: the rows past the vocabulary (Qwen pads its
   embedding to a multiple of 128) become unused tokens "[PAD<id>]", as llama.cpp's converter
   writes them */
static mft_status mft__gw_tokenizer(mft__gw *w, const mft_tokenizer *t, int Vm, mft_error *err)
{
    int V = t->vocab_size, bpe = t->kind == MFT_TOK_BPE;
    const char *pre = t->pre == MFT_PRE_LLAMA3      ? "llama-bpe"
                      : t->pre == MFT_PRE_QWEN2     ? "qwen2"
                      : t->pre == MFT_PRE_STARCODER ? "starcoder"
                                                    : "gpt-2";
    if (bpe && t->pre == MFT_PRE_STARCODER && t->digit_runs)
        return mft__fail(err, MFT_ERR_ARG, "a pre-tokenizer splitting digit runs has no llama.cpp name");
    mft__gw_kv_str(w, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
    if (bpe) mft__gw_kv_str(w, "tokenizer.ggml.pre", pre);
    mft__gw_key(w, "tokenizer.ggml.tokens", MFT_GGUF_ARRAY);
    mft__gw_u32(w, MFT_GGUF_STRING);
    mft__gw_u64(w, (uint64_t)Vm);
    mft__sb b = { NULL, 0, 0, 0, 1, 0 };
    for (int i = 0; i < V; i++) {
        b.n = 0;
        b.over = 0;
        mft__gguf_piece(t, i, &b);
        if (b.nomem) break;
        mft__gw_str(w, b.p ? b.p : "", (size_t)b.n);
    }
    for (int i = V; i < Vm; i++) {
        char pad[32];
        mft__gw_str(w, pad, (size_t)snprintf(pad, sizeof pad, "[PAD%d]", i));
    }
    if (!bpe) {
        mft__gw_key(w, "tokenizer.ggml.scores", MFT_GGUF_ARRAY);
        mft__gw_u32(w, MFT_GGUF_FLOAT32);
        mft__gw_u64(w, (uint64_t)Vm);
        if (!t->merge_cap)
            mft__gw_bytes(w, t->scores, (size_t)V * 4);
        else { /* merges by rank (a SentencePiece tokenizer.json): a piece scores minus the rank of
                  the first merge that makes it, the order SentencePiece's own scores give (the
                  converter that wrote such a file listed merges by the score of their result) */
            float *sc = (float *)MFT_MALLOC((size_t)V * sizeof(float));
            if (!sc) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
            for (int i = 0; i < V; i++) sc[i] = -1e9f;
            for (uint32_t k = 0; k < t->merge_cap; k++) {
                int32_t id = t->merge_id[k];
                if (t->merge_rank[k] >= 0 && id >= 0 && id < V && -(float)t->merge_rank[k] > sc[id])
                    sc[id] = -(float)t->merge_rank[k];
            }
            mft__gw_bytes(w, sc, (size_t)V * sizeof(float));
            MFT_FREE(sc);
        }
        const float pad = -1000.0f;
        for (int i = V; i < Vm; i++) mft__gw_bytes(w, &pad, 4);
    }
    mft__gw_key(w, "tokenizer.ggml.token_type", MFT_GGUF_ARRAY);
    mft__gw_u32(w, MFT_GGUF_INT32);
    mft__gw_u64(w, (uint64_t)Vm);
    for (int i = 0; i < Vm; i++) mft__gw_u32(w, i < V ? t->types[i] : (int)MFT_TOKEN_UNUSED);
    if (bpe) { /* the merges in rank order, "left right" in the byte alphabet */
        int32_t *r = (int32_t *)MFT_MALLOC(((size_t)t->merge_cap + 1) * 3 * sizeof(int32_t));
        int nm = 0;
        for (uint32_t i = 0; r && i < t->merge_cap; i++)
            if (t->merge_rank[i] >= 0) {
                r[3 * nm] = t->merge_rank[i];
                r[3 * nm + 1] = (int32_t)(t->merge_key[i] >> 32);
                r[3 * nm + 2] = (int32_t)(t->merge_key[i] & 0xFFFFFFFFu);
                nm++;
            }
        if (!r) {
            MFT_FREE(b.p);
            return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        }
        qsort(r, (size_t)nm, 3 * sizeof(int32_t), mft__cmp_rank);
        mft__gw_key(w, "tokenizer.ggml.merges", MFT_GGUF_ARRAY);
        mft__gw_u32(w, MFT_GGUF_STRING);
        mft__gw_u64(w, (uint64_t)nm);
        for (int k = 0; k < nm; k++) {
            b.n = 0;
            b.over = 0;
            mft__gguf_piece(t, r[3 * k + 1], &b);
            mft__sb_put(&b, " ", 1);
            mft__gguf_piece(t, r[3 * k + 2], &b);
            mft__gw_str(w, b.p ? b.p : "", (size_t)b.n);
        }
        MFT_FREE(r);
    }
    if (b.nomem) w->ok = 0;
    MFT_FREE(b.p);
    if (t->bos_id >= 0) mft__gw_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos_id);
    if (t->eos_id >= 0) mft__gw_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos_id);
    if (t->eot_id >= 0 && t->eot_id != t->eos_id) mft__gw_kv_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)t->eot_id);
    if (t->unk_id >= 0) mft__gw_kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk_id);
    if (t->pad_id >= 0) mft__gw_kv_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)t->pad_id);
    mft__gw_kv_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos);
    mft__gw_kv_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos);
    if (!bpe) mft__gw_kv_bool(w, "tokenizer.ggml.add_space_prefix", t->add_dummy_prefix);
    if (t->chat_template) mft__gw_kv_str(w, "tokenizer.chat_template", t->chat_template);
    return MFT_OK;
}

MFT_API mft_status mft_gguf_save(const mft_model *m, const char *path, int dtype, const mft_tokenizer *t,
                                 mft_error *err)
{
    if (!m || !m->params || !path || !t || !t->mem) return mft__fail(err, MFT_ERR_ARG, "mft_gguf_save: NULL argument");
    const mft_config *c = &m->cfg;
    int dt = dtype < 0 ? c->dtype : dtype;
    if (dt < MFT_DTYPE_F32 || dt > MFT_DTYPE_BF16)
        return mft__fail(err, MFT_ERR_ARG, "dtype %d is not one of MFT_DTYPE_*", dt);
    if (t->vocab_size > c->vocab_size)
        return mft__fail(err, MFT_ERR_ARG, "the tokenizer has %d tokens, more than the model's %d", t->vocab_size,
                         c->vocab_size);
    if (mft__savable(m, path, err)) return MFT_ERR_NONFINITE;
    const char *arch = c->arch == MFT_ARCH_QWEN3 ? "qwen3" : c->arch == MFT_ARCH_QWEN2 ? "qwen2" : "llama";
    int hs = mft_head_dim(c);
    mft_status s = MFT_OK;
    /* the tensors: slot, layer, GGUF type, bytes */
    size_t sz[MFT__NT], off[MFT__NT], o = 0;
    mft__tensor_sizes(c, sz);
    for (int i = 0; i < MFT__NT; o += sz[i++]) off[i] = o;
    int nt = 0, rope = c->rope_scaling == MFT_ROPE_LLAMA3;
    for (int i = 0; i < MFT__NT; i++)
        if (sz[i]) nt += mft__slot_layered(i) ? c->n_layers : 1;
    char *tmp;
    FILE *f = mft__tmp_create(path, &tmp, &s, err);
    if (!f) return s;
    mft__gw w = { f, 1, 0 };
    mft__gw_bytes(&w, "GGUF", 4);
    mft__gw_u32(&w, 3);
    mft__gw_u64(&w, (uint64_t)(nt + rope));
    mft__gw_u64(&w, 0); /* the number of keys, patched below */
    char key[128];
#define MFT__GK(what) (snprintf(key, sizeof key, "%s.%s", arch, what), key)
    mft__gw_kv_str(&w, "general.architecture", arch);
    mft__gw_kv_str(&w, "general.name", "maskft");
    mft__gw_kv_u32(&w, "general.file_type", dt == MFT_DTYPE_F32 ? 0 : dt == MFT_DTYPE_F16 ? 1 : 32);
    mft__gw_kv_u32(&w, "general.alignment", 32);
    mft__gw_kv_u32(&w, MFT__GK("context_length"), (uint32_t)(c->file_ctx ? c->file_ctx : c->seq_len));
    mft__gw_kv_u32(&w, MFT__GK("embedding_length"), (uint32_t)c->dim);
    mft__gw_kv_u32(&w, MFT__GK("block_count"), (uint32_t)c->n_layers);
    mft__gw_kv_u32(&w, MFT__GK("feed_forward_length"), (uint32_t)c->hidden_dim);
    mft__gw_kv_u32(&w, MFT__GK("attention.head_count"), (uint32_t)c->n_heads);
    mft__gw_kv_u32(&w, MFT__GK("attention.head_count_kv"), (uint32_t)c->n_kv_heads);
    mft__gw_kv_u32(&w, MFT__GK("attention.key_length"), (uint32_t)hs);
    mft__gw_kv_u32(&w, MFT__GK("attention.value_length"), (uint32_t)hs);
    mft__gw_kv_f32(&w, MFT__GK("attention.layer_norm_rms_epsilon"), c->norm_eps);
    mft__gw_kv_f32(&w, MFT__GK("rope.freq_base"), c->rope_theta);
#undef MFT__GK
    s = mft__gw_tokenizer(&w, t, c->vocab_size, err);
    /* the tensor table: name, dims (row length first), type, offset */
    uint64_t at = 0;
    for (int pass = 0; pass < 2 && !s; pass++) {
        if (pass == 1) { /* the data starts aligned */
            long pos = ftell(f);
            static const char zeros[32] = { 0 };
            mft__gw_bytes(&w, zeros, (size_t)((32 - pos % 32) % 32));
        }
        for (int i = 0; i < MFT__NT; i++)
            for (int l = 0; sz[i] && l < (mft__slot_layered(i) ? c->n_layers : 1); l++) {
                uint64_t rows, cols;
                mft__slot_shape(c, i, &rows, &cols);
                int ty = cols && dt != MFT_DTYPE_F32 ? (dt == MFT_DTYPE_F16 ? MFT__GG_F16 : MFT__GG_BF16) : MFT__GG_F32;
                uint64_t rc = cols ? cols : 1, bytes = mft__gg_bytes(ty, rows * rc);
                if (pass == 0) {
                    char name[96];
                    snprintf(name, sizeof name, mft__gg_names[i], l);
                    mft__gw_str(&w, name, strlen(name));
                    mft__gw_u32(&w, cols ? 2 : 1);
                    mft__gw_u64(&w, cols ? cols : rows);
                    if (cols) mft__gw_u64(&w, rows);
                    mft__gw_u32(&w, (uint32_t)ty);
                    mft__gw_u64(&w, at);
                    at += (bytes + 31) / 32 * 32;
                    continue;
                }
                int heads = c->arch != MFT_ARCH_LLAMA ? mft__slot_heads(c, i) : 0;
                const float *src = m->params + off[i] + (size_t)l * (size_t)(rows * rc);
                unsigned char *row = (unsigned char *)MFT_MALLOC((size_t)rc * 4);
                if (!row) w.ok = 0;
                for (uint64_t r = 0; r < rows && w.ok; r++) {
                    const float *x = src + (heads ? mft__rope_row(r, hs) : r) * rc;
                    for (uint64_t q = 0; q < rc; q++) {
                        if (ty == MFT__GG_F32)
                            memcpy(row + 4 * q, x + q, 4);
                        else {
                            uint16_t v = ty == MFT__GG_F16 ? mft__f32_to_f16(x[q]) : mft__f32_to_bf16(x[q]);
                            memcpy(row + 2 * q, &v, 2);
                        }
                    }
                    mft__gw_bytes(&w, row, (size_t)mft__gg_bytes(ty, rc));
                }
                MFT_FREE(row);
                static const char zeros[32] = { 0 };
                mft__gw_bytes(&w, zeros, (size_t)((32 - bytes % 32) % 32));
            }
        if (rope && pass == 0) {
            mft__gw_str(&w, "rope_freqs.weight", 17);
            mft__gw_u32(&w, 1);
            mft__gw_u64(&w, (uint64_t)(hs / 2));
            mft__gw_u32(&w, MFT__GG_F32);
            mft__gw_u64(&w, at);
        } else if (rope) {
            mft_config p = *c;
            p.rope_scaling = MFT_ROPE_PLAIN;
            for (int i = 0; i < hs / 2; i++) {
                float ff = (float)(mft__rope_freq(&p, i, hs) / mft__rope_freq(c, i, hs));
                mft__gw_bytes(&w, &ff, 4);
            }
        }
    }
    if (s) {
        mft__tmp_commit(f, tmp, path, 0, NULL);
        return s;
    }
    if (w.ok && fseek(f, 16, SEEK_SET) == 0)
        mft__gw_u64(&w, w.n_kv);
    else
        w.ok = 0;
    return mft__tmp_commit(f, tmp, path, w.ok, err);
}

/* ============================================================================================
   >>chat
   Chat templates without a Jinja engine: each family's template written out in C, producing
   byte for byte what the model's own Jinja template produces (tests/gen_chat_goldens.py
   renders the real templates with jinja2 as Hugging Face does; the test compares). For each
   message the renderer also reports where its content landed in the text, which is how a
   mask finds a turn's tokens later: on the token offsets of one encode of the whole text,
   never by tokenising pieces again.
   ============================================================================================ */

/* Python's str.isspace(), which Jinja's trim and str.strip() use: Unicode White_Space plus
   U+001C..U+001F */
static int mft__py_space(const char *s, int n, int i, int *len)
{
    mft__txt x = { (const unsigned char *)s, n };
    int32_t cp;
    *len = mft__cp(&x, i, &cp);
    return cp >= 0 && ((cp >= 0x1C && cp <= 0x1F) || (mft__uc_class((uint32_t)cp) & MFT__UC_S));
}

/* [*b, *e) with white space (or, when only_nl, '\n') removed on the chosen sides */
static void mft__strip(const char *s, int *b, int *e, int left, int right, int only_nl)
{
    int l;
    while (left && *b < *e && (only_nl ? s[*b] == '\n' : mft__py_space(s, *e, *b, &l))) *b += only_nl ? 1 : l;
    while (right && *e > *b) {
        if (only_nl) {
            if (s[*e - 1] != '\n') break;
            (*e)--;
            continue;
        }
        /* step back over one UTF-8 character */
        int k = *e - 1;
        while (k > *b && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
        if (!mft__py_space(s, *e, k, &l) || k + l != *e) break;
        *e = k;
    }
}

static const char *mft__role_name(int role)
{
    return role == MFT_ROLE_SYSTEM      ? "system"
           : role == MFT_ROLE_USER      ? "user"
           : role == MFT_ROLE_ASSISTANT ? "assistant"
                                        : "tool";
}

/* position of needle in s[b..e) at or after b, last occurrence when last, or -1 */
static int mft__find(const char *s, int b, int e, const char *needle, int last)
{
    int nl = (int)strlen(needle), at = -1;
    for (int i = b; i + nl <= e; i++)
        if (!memcmp(s + i, needle, (size_t)nl)) {
            at = i;
            if (!last) break;
        }
    return at;
}

/* ---- one renderer per family -------------------------------------------------------------
   A render in progress: the messages, the text so far (counted on past the buffer's end, see
   BUFFERS), and where each content lands. */
typedef struct mft__chat {
    mft__sb b;
    const mft_chat_msg *m;
    int n, family, gen; /* gen: add_generation_prompt */
    int *ranges, *origin;
    const char *bos, *eos;
    int bl, el;
} mft__chat;

static void mft__put(mft__chat *c, const char *s) { mft__sb_put(&c->b, s, -1); }

/* The bytes [cb, ce) of message i's content, appended, with its range in the text (from rb,
   or from here when rb < 0) and the origin: where byte 0 of the content would be. */
static void mft__chat_content(mft__chat *c, int i, int cb, int ce, int rb)
{
    if (c->ranges) c->ranges[2 * i] = rb >= 0 ? rb : c->b.n;
    if (c->origin) c->origin[i] = c->b.n - cb;
    mft__sb_put(&c->b, c->m[i].content + cb, ce - cb);
    if (c->ranges) c->ranges[2 * i + 1] = c->b.n;
}

static void mft__chat_whole(mft__chat *c, int i) { mft__chat_content(c, i, 0, c->m[i].len, -1); }

/* the messages one after the other, as the model would read a prompt and its answer */
static mft_status mft__chat_plain(mft__chat *c, mft_error *err)
{
    (void)err;
    for (int i = 0; i < c->n; i++) mft__chat_whole(c, i);
    return MFT_OK;
}

/* bos + per message: <|start_header_id|>ROLE<|end_header_id|>\n\n TRIMMED <|eot_id|> */
static mft_status mft__chat_llama3(mft__chat *c, mft_error *err)
{
    (void)err;
    for (int i = 0; i < c->n; i++) {
        int cb = 0, ce = c->m[i].len;
        if (i == 0) mft__sb_put(&c->b, c->bos, c->bl);
        mft__put(c, "<|start_header_id|>");
        mft__put(c, mft__role_name(c->m[i].role));
        mft__put(c, "<|end_header_id|>\n\n");
        mft__strip(c->m[i].content, &cb, &ce, 1, 1, 0);
        mft__chat_content(c, i, cb, ce, -1); /* trimmed bytes would sit before the range */
        mft__put(c, "<|eot_id|>");
    }
    if (c->gen) mft__put(c, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return MFT_OK;
}

/* bos; user: <|user|>\n C <|end|>\n<|assistant|>\n ; assistant: C <|end|>\n ; others dropped */
static mft_status mft__chat_phi3(mft__chat *c, mft_error *err)
{
    (void)err;
    mft__sb_put(&c->b, c->bos, c->bl);
    for (int i = 0; i < c->n; i++) {
        int user = c->m[i].role == MFT_ROLE_USER;
        if (user)
            mft__put(c, "<|user|>\n");
        else if (c->m[i].role != MFT_ROLE_ASSISTANT)
            continue;
        mft__chat_whole(c, i);
        mft__put(c, user ? "<|end|>\n<|assistant|>\n" : "<|end|>\n");
    }
    return MFT_OK;
}

/* ChatML with Qwen3's reasoning rules: an assistant turn after the last real user query keeps
   (or gets an empty) <think> block; earlier ones lose theirs; tool turns are grouped into one
   user turn of <tool_response> blocks */
static mft_status mft__chat_qwen3(mft__chat *c, mft_error *err)
{
    (void)err;
    const mft_chat_msg *m = c->m;
    int n = c->n, last_query = n - 1;
    for (int i = n - 1; i >= 0; i--) {
        const char *s = m[i].content;
        int L = m[i].len;
        int tr = L >= 16 && !memcmp(s, "<tool_response>", 15) && !memcmp(s + L - 16, "</tool_response>", 16);
        if (m[i].role == MFT_ROLE_USER && !tr) {
            last_query = i;
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        const char *s = m[i].content;
        int L = m[i].len;
        if (m[i].role == MFT_ROLE_USER || m[i].role == MFT_ROLE_SYSTEM) {
            mft__put(c, "<|im_start|>");
            mft__put(c, mft__role_name(m[i].role));
            mft__put(c, "\n");
            mft__chat_whole(c, i);
            mft__put(c, "<|im_end|>\n");
        } else if (m[i].role == MFT_ROLE_ASSISTANT) {
            int cb = 0, ce = L, rb = 0, re = 0, close = mft__find(s, 0, L, "</think>", 1);
            if (close >= 0) {
                /* content after the last </think>, left-stripped of newlines; reasoning before
                   the first </think>, after its last <think> */
                cb = close + 8;
                mft__strip(s, &cb, &ce, 1, 0, 1);
                int first_close = mft__find(s, 0, L, "</think>", 0), open;
                rb = 0;
                re = first_close;
                mft__strip(s, &rb, &re, 0, 1, 1);
                if ((open = mft__find(s, rb, re, "<think>", 1)) >= 0) rb = open + 7;
                mft__strip(s, &rb, &re, 1, 0, 1);
            }
            mft__put(c, "<|im_start|>assistant\n");
            int range_begin = c->b.n; /* the range takes in the <think> block */
            if (i > last_query && (i == n - 1 || re > rb)) {
                mft__strip(s, &rb, &re, 1, 1, 1);
                mft__strip(s, &cb, &ce, 1, 0, 1);
                mft__put(c, "<think>\n");
                mft__sb_put(&c->b, s + rb, re - rb);
                mft__put(c, "\n</think>\n\n");
            }
            mft__chat_content(c, i, cb, ce, range_begin);
            mft__put(c, "<|im_end|>\n");
        } else {
            if (i == 0 || m[i - 1].role != MFT_ROLE_TOOL) mft__put(c, "<|im_start|>user");
            mft__put(c, "\n<tool_response>\n");
            mft__chat_whole(c, i);
            mft__put(c, "\n</tool_response>");
            if (i == n - 1 || m[i + 1].role != MFT_ROLE_TOOL) mft__put(c, "<|im_end|>\n");
        }
    }
    if (c->gen) mft__put(c, "<|im_start|>assistant\n");
    return MFT_OK;
}

/* per message: <|im_start|>ROLE\n CONTENT <|im_end|>\n */
static mft_status mft__chat_chatml(mft__chat *c, mft_error *err)
{
    (void)err;
    for (int i = 0; i < c->n; i++) {
        mft__put(c, "<|im_start|>");
        mft__put(c, mft__role_name(c->m[i].role));
        mft__put(c, "\n");
        mft__chat_whole(c, i);
        mft__put(c, "<|im_end|>\n");
    }
    if (c->gen) mft__put(c, "<|im_start|>assistant\n");
    return MFT_OK;
}

/* per message: <|ROLE|>\n CONTENT eos \n (tool turns dropped); the generation prompt is written
   inside the template's loop, so only after at least one message */
static mft_status mft__chat_zephyr(mft__chat *c, mft_error *err)
{
    (void)err;
    for (int i = 0; i < c->n; i++) {
        int role = c->m[i].role;
        if (role == MFT_ROLE_TOOL) continue;
        mft__put(c, role == MFT_ROLE_USER     ? "<|user|>\n"
                    : role == MFT_ROLE_SYSTEM ? "<|system|>\n"
                                              : "<|assistant|>\n");
        mft__chat_whole(c, i);
        mft__sb_put(&c->b, c->eos, c->el);
        mft__put(c, "\n");
    }
    if (c->gen && c->n > 0) mft__put(c, "<|assistant|>\n");
    return MFT_OK;
}

/* The templates of Gemma, Mistral and Llama-2 insist on turns alternating, a user turn at every
   even position of the loop after an optional leading system message (which Llama-2 folds into
   the first user turn, Gemma 3 prefixes to it, Mistral v3 puts before the *last* user turn and
   so drops when the conversation ends with the assistant; Gemma 1 and the v0.1 / v0.2 Mistral
   forms refuse it). What sits at an odd position that is not the assistant: Gemma renders it
   under its own role name, Llama-2 drops it, Mistral refuses it. Returns the first message
   after the system one. */
static mft_status mft__chat_alternating(const mft__chat *c, int *first, mft_error *err)
{
    int fam = c->family, has_sys = c->n > 0 && c->m[0].role == MFT_ROLE_SYSTEM;
    int mistral = fam == MFT_CHAT_MISTRAL || fam == MFT_CHAT_MISTRAL_V1 || fam == MFT_CHAT_MISTRAL_V3;
    if (has_sys && (fam == MFT_CHAT_GEMMA || fam == MFT_CHAT_MISTRAL || fam == MFT_CHAT_MISTRAL_V1))
        return mft__fail(err, MFT_ERR_ARG, "this chat template does not support a system message");
    *first = has_sys;
    for (int i = has_sys; i < c->n; i++) {
        int even = (i - has_sys) % 2 == 0;
        if ((c->m[i].role == MFT_ROLE_USER) != even)
            return mft__fail(err, MFT_ERR_ARG,
                             "this chat template needs user/assistant turns alternating, starting with the user "
                             "(message %d)",
                             i);
        if (mistral && !even && c->m[i].role != MFT_ROLE_ASSISTANT)
            return mft__fail(err, MFT_ERR_ARG,
                             "this chat template supports only user and assistant turns after the system message "
                             "(message %d)",
                             i);
    }
    return MFT_OK;
}

/* bos; <start_of_turn>ROLE\n TRIMMED <end_of_turn>\n, the assistant as "model"; Gemma 3 puts the
   system text, untrimmed, and a blank line at the start of the first user turn */
static mft_status mft__chat_gemma(mft__chat *c, mft_error *err)
{
    int first;
    mft_status s = mft__chat_alternating(c, &first, err);
    if (s) return s;
    mft__sb_put(&c->b, c->bos, c->bl);
    for (int i = first; i < c->n; i++) {
        int cb = 0, ce = c->m[i].len, role = c->m[i].role;
        mft__put(c, "<start_of_turn>");
        mft__put(c, role == MFT_ROLE_ASSISTANT ? "model" : mft__role_name(role));
        mft__put(c, "\n");
        if (first && i == first) {
            mft__chat_whole(c, 0);
            mft__put(c, "\n\n");
        }
        mft__strip(c->m[i].content, &cb, &ce, 1, 1, 0);
        mft__chat_content(c, i, cb, ce, -1);
        mft__put(c, "<end_of_turn>\n");
    }
    if (c->gen) mft__put(c, "<start_of_turn>model\n");
    return MFT_OK;
}

/* bos; [INST] CONTENT [/INST] ; assistant: CONTENT eos (Mistral-7B v0.1 adds a space) */
static mft_status mft__chat_mistral(mft__chat *c, mft_error *err)
{
    int first;
    mft_status s = mft__chat_alternating(c, &first, err);
    if (s) return s;
    mft__sb_put(&c->b, c->bos, c->bl);
    for (int i = first; i < c->n; i++) {
        int user = c->m[i].role == MFT_ROLE_USER;
        if (user) mft__put(c, "[INST] ");
        mft__chat_whole(c, i);
        if (user) {
            mft__put(c, " [/INST]");
        } else {
            mft__sb_put(&c->b, c->eos, c->el);
            if (c->family == MFT_CHAT_MISTRAL_V1) mft__put(c, " ");
        }
    }
    return MFT_OK;
}

/* bos; [INST] (system \n\n if this is the last message) CONTENT[/INST] ; assistant: " " TRIMMED eos */
static mft_status mft__chat_mistral_v3(mft__chat *c, mft_error *err)
{
    int first;
    mft_status s = mft__chat_alternating(c, &first, err);
    if (s) return s;
    mft__sb_put(&c->b, c->bos, c->bl);
    for (int i = first; i < c->n; i++) {
        int user = c->m[i].role == MFT_ROLE_USER, cb = 0, ce = c->m[i].len;
        if (user) {
            mft__put(c, "[INST] ");
            if (first && i == c->n - 1) {
                mft__chat_whole(c, 0);
                mft__put(c, "\n\n");
            }
        } else {
            mft__put(c, " ");
            mft__strip(c->m[i].content, &cb, &ce, 1, 1, 0);
        }
        mft__chat_content(c, i, cb, ce, -1);
        if (user)
            mft__put(c, "[/INST]");
        else
            mft__sb_put(&c->b, c->eos, c->el);
    }
    return MFT_OK;
}

/* per user turn: bos [INST] CONTENT.strip() [/INST], the first with the system block
   <<SYS>>\n SYSTEM \n<</SYS>>\n\n in front (and only right-stripped); assistant: " " TRIMMED " " eos */
static mft_status mft__chat_llama2(mft__chat *c, mft_error *err)
{
    int first;
    mft_status s = mft__chat_alternating(c, &first, err);
    if (s) return s;
    for (int i = first; i < c->n; i++) {
        int user = c->m[i].role == MFT_ROLE_USER, cb = 0, ce = c->m[i].len;
        if (!user && c->m[i].role != MFT_ROLE_ASSISTANT) continue;
        int sys = user && i == first && first;
        if (user) {
            mft__sb_put(&c->b, c->bos, c->bl);
            mft__put(c, "[INST] ");
        } else {
            mft__put(c, " ");
        }
        if (sys) {
            mft__put(c, "<<SYS>>\n");
            mft__chat_whole(c, 0);
            mft__put(c, "\n<</SYS>>\n\n");
            mft__strip(c->m[i].content, &cb, &ce, 0, 1, 0);
        } else {
            mft__strip(c->m[i].content, &cb, &ce, 1, 1, 0);
        }
        mft__chat_content(c, i, cb, ce, -1);
        if (user) {
            mft__put(c, " [/INST]");
        } else {
            mft__put(c, " ");
            mft__sb_put(&c->b, c->eos, c->el);
        }
    }
    return MFT_OK;
}

/* ---- the families ----------------------------------------------------------------------------
   In detection order: a chat_template is of the first family whose markers it all holds (a
   family without markers is never detected). eot is the text of the token that ends an
   assistant turn; NULL means the tokenizer's EOS ("</s>"), or for plain text see mft__eot_of. */
typedef struct mft__chat_family {
    int family;
    const char *name;
    const char *marker[2];
    const char *eot;
    mft_status (*render)(mft__chat *c, mft_error *err);
} mft__chat_family;

static const mft__chat_family mft__chat_families[MFT_CHAT_COUNT] = {
    { MFT_CHAT_LLAMA3, "llama3", { "<|start_header_id|>", "<|eot_id|>" }, "<|eot_id|>", mft__chat_llama3 },
    { MFT_CHAT_QWEN3, "qwen3", { "<|im_start|>", "</think>" }, "<|im_end|>", mft__chat_qwen3 },
    { MFT_CHAT_CHATML, "chatml", { "<|im_start|>", NULL }, "<|im_end|>", mft__chat_chatml },
    { MFT_CHAT_PHI3, "phi3", { "<|user|>", "<|end|>" }, "<|end|>", mft__chat_phi3 },
    { MFT_CHAT_ZEPHYR, "zephyr", { "<|user|>", "<|assistant|>" }, NULL, mft__chat_zephyr },
    { MFT_CHAT_GEMMA3, "gemma3", { "<start_of_turn>", "first_user_prefix" }, "<end_of_turn>", mft__chat_gemma },
    { MFT_CHAT_GEMMA, "gemma", { "<start_of_turn>", NULL }, "<end_of_turn>", mft__chat_gemma },
    { MFT_CHAT_LLAMA2, "llama2", { "<<SYS>>", "[INST]" }, NULL, mft__chat_llama2 },
    { MFT_CHAT_MISTRAL_V3, "mistral-v3", { "[INST]", "\"[/INST]\"" }, NULL, mft__chat_mistral_v3 },
    { MFT_CHAT_MISTRAL_V1, "mistral-v0.1", { "[INST]", "eos_token + ' '" }, NULL, mft__chat_mistral },
    { MFT_CHAT_MISTRAL, "mistral", { "[INST]", NULL }, NULL, mft__chat_mistral },
    { MFT_CHAT_PLAIN, "plain", { NULL, NULL }, NULL, mft__chat_plain },
};

static const mft__chat_family *mft__chat_get(int family)
{
    for (int i = 0; i < MFT_CHAT_COUNT; i++)
        if (mft__chat_families[i].family == family) return &mft__chat_families[i];
    return NULL;
}

MFT_API int mft_chat_detect(const char *jinja, int *always_generation_prompt)
{
    if (always_generation_prompt) *always_generation_prompt = 0;
    if (!jinja) return -1;
    for (int i = 0; i < MFT_CHAT_COUNT; i++) {
        const mft__chat_family *f = &mft__chat_families[i];
        if (!f->marker[0] || !strstr(jinja, f->marker[0]) || (f->marker[1] && !strstr(jinja, f->marker[1]))) continue;
        /* a Llama-3 template that never tests add_generation_prompt writes the assistant
           header after the loop unconditionally (the template shipped with some copies) */
        if (always_generation_prompt && f->family == MFT_CHAT_LLAMA3 && !strstr(jinja, "add_generation_prompt"))
            *always_generation_prompt = 1;
        return f->family;
    }
    return -1;
}

MFT_API int mft_chat_family(const char *name)
{
    for (int i = 0; name && i < MFT_CHAT_COUNT; i++)
        if (!strcmp(name, mft__chat_families[i].name)) return mft__chat_families[i].family;
    return -1;
}

MFT_API const char *mft_chat_family_name(int family)
{
    const mft__chat_family *f = mft__chat_get(family);
    return f ? f->name : NULL;
}

MFT_API mft_status mft_chat_render(int family, const mft_tokenizer *t, const mft_chat_msg *m, int n_msg,
                                   int add_generation_prompt, char *out, int cap, int *len, int *ranges, int *origin,
                                   mft_error *err)
{
    mft__chat c;
    memset(&c, 0, sizeof c);
    if (len) *len = 0;
    if ((cap > 0 && !out) || cap < 0 || (n_msg && !m) || n_msg < 0)
        return mft__fail(err, MFT_ERR_ARG, "mft_chat_render: bad argument");
    const mft__chat_family *f = mft__chat_get(family);
    if (!f) return mft__fail(err, MFT_ERR_ARG, "unknown chat template family %d", family);
    if (cap > 0) out[0] = 0;
    for (int i = 0; i < n_msg; i++) {
        if (m[i].role < MFT_ROLE_SYSTEM || m[i].role > MFT_ROLE_TOOL || !m[i].content || m[i].len < 0)
            return mft__fail(err, MFT_ERR_ARG, "message %d: bad role or content", i);
        if (ranges) ranges[2 * i] = ranges[2 * i + 1] = -1;
        if (origin) origin[i] = -1;
    }
    c.b.p = out;
    c.b.cap = cap;
    c.m = m;
    c.n = n_msg;
    c.family = family;
    c.gen = add_generation_prompt;
    c.ranges = ranges;
    c.origin = origin;
    c.bos = t && t->bos_id >= 0 ? mft_token_piece(t, t->bos_id, &c.bl) : "";
    c.eos = t && t->eos_id >= 0 ? mft_token_piece(t, t->eos_id, &c.el) : "";
    mft_status s = f->render(&c, err);
    if (s) return s;
    if (len) *len = c.b.n;
    if (c.b.n >= cap && cap > 0)
        return mft__fail(err, MFT_ERR_SPACE, "the rendered conversation needs %d bytes, the buffer has %d", c.b.n + 1,
                         cap);
    return mft__ok(err);
}

MFT_API mft_status mft_chat_encode(const mft_tokenizer *t, int family, const mft_chat_msg *m, int n,
                                   int add_generation_prompt, int *ids, int cap, int *n_ids, mft_error *err)
{
    if (n_ids) *n_ids = 0;
    if (!t || !n_ids) return mft__fail(err, MFT_ERR_ARG, "mft_chat_encode: bad argument");
    if (family < 0 && (family = mft_chat_detect(t->chat_template, NULL)) < 0) family = MFT_CHAT_PLAIN;
    int len;
    mft_status s = mft_chat_render(family, t, m, n, add_generation_prompt, NULL, 0, &len, NULL, NULL, err);
    if (s) return s;
    char *text = (char *)MFT_MALLOC((size_t)len + 1);
    if (!text) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    s = mft_chat_render(family, t, m, n, add_generation_prompt, text, len + 1, &len, NULL, NULL, err);
    int flags = (family == MFT_CHAT_PLAIN ? MFT_BOS : 0) | MFT_SPECIAL;
    if (!s) s = mft_encode(t, text, len, flags, ids, cap, n_ids, NULL, err);
    MFT_FREE(text);
    return s;
}

/* ============================================================================================
   >>data
   From one JSONL line to token ids and loss weights: parse the record, strip key markup,
   render the conversation with the chat template, encode the whole text once (offsets give
   each token's bytes), then decide per token: eligible (its turn is trained), selected (the
   policy: every token, key tokens, or tokens that differ from the model's own draft), and
   the end-of-turn token of every trained turn. Weights go to target positions: the weight of
   token i (i >= 1) is stored at w[i - 1], the position that predicts it.
   ============================================================================================ */

MFT_API mft_data_opts mft_data_opts_default(void)
{
    mft_data_opts o;
    memset(&o, 0, sizeof o);
    o.policy = MFT_POLICY_KEY;
    o.eligible = MFT_ELIGIBLE_ASSISTANT;
    o.template_family = -1;
    o.eot_id = -1;
    o.train_eot = 1;
    o.key_open = "{{key}}";
    o.key_close = "{{/key}}";
    o.max_len = 0;
    return o;
}

MFT_API void mft_example_free(mft_example *ex)
{
    if (!ex) return;
    MFT_FREE(ex->ids);
    MFT_FREE(ex->w);
    MFT_FREE(ex->tag);
    memset(ex, 0, sizeof *ex);
}

/* a message as the data file gives it, with its key spans as byte ranges of the content
   once the markup is removed */
typedef struct mft__dmsg {
    int role, train; /* train: -1 unset, 0, 1 */
    float weight;
    char *content;
    int len;
    char *draft;
    int dlen; /* NULL when absent */
    int *spans;
    int n_spans;
    int owned;           /* content and draft are our stripped copies (freed at the end) */
    int open;            /* "ended": false: the turn was cut, its end token is not trained */
    int src;             /* what it came from, for messages: -1 "text", -2 "prompt", -3 "completion", i: message i */
    int at_line, at_col; /* where its content starts in the record (line 1 is the record's first) */
} mft__dmsg;

/* a message as an error names it: the field it came from */
static const char *mft__msg_name(const mft__dmsg *d, char buf[24])
{
    if (d->src >= 0)
        snprintf(buf, 24, "message %d", d->src);
    else
        snprintf(buf, 24, "\"%s\"", d->src == -1 ? "text" : d->src == -2 ? "prompt" : "completion");
    return buf;
}

/* removes key markup from s[0..n) into out, recording the spans; a backslash before a
   delimiter makes it literal text. Returns the new length, or -1 on unbalanced markup. */
static int mft__strip_markup(const char *s, int n, const char *open, const char *close, char *out, int *spans,
                             int *n_spans, int max_spans)
{
    int w = 0, ol = (int)strlen(open), cl = (int)strlen(close), in = -1;
    *n_spans = 0;
    for (int i = 0; i < n;) {
        if (s[i] == '\\' && ((ol && i + 1 + ol <= n && !memcmp(s + i + 1, open, (size_t)ol)) ||
                             (cl && i + 1 + cl <= n && !memcmp(s + i + 1, close, (size_t)cl)))) {
            int l = !memcmp(s + i + 1, open, (size_t)ol) && i + 1 + ol <= n ? ol : cl;
            memcpy(out + w, s + i + 1, (size_t)l);
            w += l;
            i += 1 + l;
            continue;
        }
        if (ol && i + ol <= n && !memcmp(s + i, open, (size_t)ol)) {
            if (in >= 0) return -1;
            in = w;
            i += ol;
            continue;
        }
        if (cl && i + cl <= n && !memcmp(s + i, close, (size_t)cl)) {
            if (in < 0 || *n_spans >= max_spans) return -1;
            spans[2 * *n_spans] = in;
            spans[2 * *n_spans + 1] = w;
            (*n_spans)++;
            in = -1;
            i += cl;
            continue;
        }
        out[w++] = s[i++];
    }
    return in >= 0 ? -1 : w;
}

/* code point offset -> byte offset in s[0..n) (-1 if past the end) */
static int mft__cp_to_byte(const char *s, int n, int cp)
{
    int i = 0;
    for (int k = 0; k < cp; k++) {
        if (i >= n) return -1;
        int l = mft__utf8_len((const unsigned char *)s + i, n - i);
        i += l ? l : 1;
    }
    return i;
}

/* token-level LCS: keep[i] = 1 for the tokens of a[] that are in a longest common
   subsequence with b[] (O(na * nb) memory: examples are short) */
static int mft__lcs_keep(const int *a, int na, const int *b, int nb, uint8_t *keep)
{
    if (na < 0 || nb < 0) return -1;
    size_t cells = (size_t)(na + 1) * (size_t)(nb + 1);
    if (cells > ((size_t)1 << 26)) return -1;
    int *L = (int *)mft__calloc(cells, sizeof(int));
    if (!L) return -1;
    for (int i = na - 1; i >= 0; i--)
        for (int j = nb - 1; j >= 0; j--)
            L[(size_t)i * (nb + 1) + j] = a[i] == b[j]
                                              ? L[(size_t)(i + 1) * (nb + 1) + j + 1] + 1
                                              : (L[(size_t)(i + 1) * (nb + 1) + j] > L[(size_t)i * (nb + 1) + j + 1]
                                                     ? L[(size_t)(i + 1) * (nb + 1) + j]
                                                     : L[(size_t)i * (nb + 1) + j + 1]);
    memset(keep, 0, (size_t)na);
    for (int i = 0, j = 0; i < na && j < nb;) {
        if (a[i] == b[j]) {
            keep[i] = 1;
            i++;
            j++;
        } else if (L[(size_t)(i + 1) * (nb + 1) + j] >= L[(size_t)i * (nb + 1) + j + 1])
            i++;
        else
            j++;
    }
    MFT_FREE(L);
    return 0;
}

/* the end-of-turn token of a template family (the token that closes an assistant turn) */
static int mft__eot_of(const mft_tokenizer *t, int family)
{
    const mft__chat_family *f = mft__chat_get(family);
    if (f && f->eot) return mft_token_find(t, f->eot, (int)strlen(f->eot));
    if (family != MFT_CHAT_PLAIN) return t->eos_id; /* "</s>" */
    /* plain text: llama2.c TinyStories models were trained on BOS-separated stories and never
       saw EOS, so a completion ends with BOS, as their generation loop expects */
    if (t->source && !strcmp(t->source, "tokenizer.bin")) return t->bos_id;
    return t->eos_id >= 0 ? t->eos_id : t->bos_id;
}

/* the template of a record under o: o's, else the one the tokenizer's chat_template is of,
   else plain */
static int mft__family_of(const mft_tokenizer *t, const mft_data_opts *o)
{
    if (o && o->template_family >= 0) return o->template_family;
    int f = mft_chat_detect(t->chat_template, NULL);
    return f >= 0 ? f : MFT_CHAT_PLAIN;
}

/* ---- stage 0: the record and its errors -------------------------------------------------- */

/* "where:line:col: what" for a problem at JSON node v of a one-line record (its column; the
   record's first column when v is none) */
static mft_status mft__rec_fail(mft_error *err, mft_status code, const mft__json *j, uint32_t v, const char *where,
                                int line, const char *fmt, ...) MFT__PRINTF(7, 8);
static mft_status mft__rec_fail(mft_error *err, mft_status code, const mft__json *j, uint32_t v, const char *where,
                                int line, const char *fmt, ...)
{
    char what[200];
    int l = 1, c = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (j) mft__jpos(j, v, &l, &c);
    return mft__errat(err, code, where, line + l - 1, c, "%s", what);
}

/* parses one record, which must be a JSON object */
static mft_status mft__record_parse(mft__json *j, uint32_t *root, const char *json, int len, const char *where,
                                    int line, mft_error *err)
{
    *root = mft__json_parse(j, json, len < 0 ? strlen(json) : (size_t)len);
    if (*root == MFT__JNONE)
        return mft__errat(err, MFT_ERR_FORMAT, where, line + j->err_line - 1, j->err_col, "%s", j->err);
    if (j->node[*root].type != MFT__J_OBJ)
        return mft__rec_fail(err, MFT_ERR_FORMAT, j, *root, where, line, "a record must be a JSON object");
    return MFT_OK;
}


static void mft__msgs_free(mft__dmsg *msg, int nm)
{
    for (int i = 0; i < nm; i++) {
        /* contents and drafts were replaced by stripped copies once markup was removed */
        if (msg[i].owned) {
            MFT_FREE(msg[i].content);
            MFT_FREE(msg[i].draft);
        }
        MFT_FREE(msg[i].spans);
    }
}

/* ---- stage 1: the messages, from whichever of the three shapes the record has ------------
   Contents point into the JSON pool. Sets *family to plain for {"text"} records. On an error
   the messages read so far are freed. */
static mft_status mft__parse_record(const mft__json *j, uint32_t root, mft__dmsg *msg, int *n_msg, int *family,
                                    int prompt_only, const char *where, int line, mft_error *err)
{
    uint32_t v, arrays[2] = { MFT__JNONE, MFT__JNONE };
    int nm = 0, conv = 0;
    mft_status s = MFT_OK;
#define MFT__RECFAIL(node, ...)                                                                                        \
    do {                                                                                                               \
        s = mft__rec_fail(err, MFT_ERR_FORMAT, j, node, where, line, __VA_ARGS__);                                     \
        goto fail;                                                                                                     \
    } while (0)
    *n_msg = 0;
    if ((v = mft__jget(j, root, "text")) != MFT__JNONE) {
        if (j->node[v].type != MFT__J_STR) MFT__RECFAIL(v, "\"text\" must be a string");
        msg[0].role = MFT_ROLE_ASSISTANT;
        msg[0].train = 1;
        msg[0].weight = 1;
        msg[0].content = j->pool + j->node[v].first;
        msg[0].len = (int)j->node[v].n;
        msg[0].src = -1;
        mft__jpos(j, v, &msg[0].at_line, &msg[0].at_col);
        nm = 1;
        *family = MFT_CHAT_PLAIN;
    } else if ((v = mft__jget(j, root, "prompt")) != MFT__JNONE && j->node[v].type == MFT__J_ARR) {
        /* TRL's conversational prompt/completion: two lists of messages; the prompt's are not
           trained unless they say so (TRL's completion-only loss) */
        uint32_t c = mft__jget(j, root, "completion");
        if (c != MFT__JNONE && j->node[c].type != MFT__J_ARR)
            MFT__RECFAIL(c, "with a list of messages as \"prompt\", \"completion\" is a list of messages too");
        if (c == MFT__JNONE && !prompt_only)
            MFT__RECFAIL(v, "a \"prompt\" without a \"completion\" has nothing to train: draft it first (maskft "
                            "draft)");
        arrays[0] = v, arrays[1] = c, conv = 1;
    } else if ((v = mft__jget(j, root, "prompt")) != MFT__JNONE) {
        uint32_t c = mft__jget(j, root, "completion"), df = mft__jget(j, root, "draft");
        if (c == MFT__JNONE && !prompt_only)
            MFT__RECFAIL(v, "a \"prompt\" without a \"completion\" has nothing to train: draft it first (maskft "
                            "draft)");
        if (j->node[v].type != MFT__J_STR || (c != MFT__JNONE && j->node[c].type != MFT__J_STR))
            MFT__RECFAIL(j->node[v].type != MFT__J_STR ? v : c, "\"prompt\" and \"completion\" must be strings");
        for (int k = 0; k < (c == MFT__JNONE ? 1 : 2); k++) {
            uint32_t node = k ? c : v;
            msg[k].role = k ? MFT_ROLE_ASSISTANT : MFT_ROLE_USER;
            msg[k].train = -1;
            msg[k].weight = 1;
            msg[k].content = j->pool + j->node[node].first;
            msg[k].len = (int)j->node[node].n;
            msg[k].src = k ? -3 : -2;
            mft__jpos(j, node, &msg[k].at_line, &msg[k].at_col);
        }
        if (df != MFT__JNONE && c != MFT__JNONE) {
            if (j->node[df].type != MFT__J_STR) MFT__RECFAIL(df, "\"draft\" must be a string");
            msg[1].draft = j->pool + j->node[df].first;
            msg[1].dlen = (int)j->node[df].n;
        }
        nm = c == MFT__JNONE ? 1 : 2;
    } else if ((v = mft__jget(j, root, "messages")) != MFT__JNONE && j->node[v].type == MFT__J_ARR) {
        arrays[0] = v;
    } else {
        MFT__RECFAIL(root, "a record needs \"text\", \"prompt\"/\"completion\", \"messages\" or \"input_ids\"");
    }
    for (int ai = 0; ai < 2 && arrays[ai] != MFT__JNONE; ai++) {
        for (uint32_t c = j->node[arrays[ai]].first; c != MFT__JNONE; c = j->node[c].next, nm++) {
            if (nm >= 256) MFT__RECFAIL(c, "more than 256 messages");
            mft__dmsg *d = &msg[nm];
            uint32_t r = mft__jget(j, c, "role"), ct = mft__jget(j, c, "content"), tr = mft__jget(j, c, "train");
            uint32_t wt = mft__jget(j, c, "weight"), df = mft__jget(j, c, "draft"), ks = mft__jget(j, c, "key_spans");
            if (j->node[c].type != MFT__J_OBJ || ct == MFT__JNONE || j->node[ct].type != MFT__J_STR)
                MFT__RECFAIL(c, "message %d needs a string \"content\"", nm);
            d->role = mft__jstr_is(j, r, "system")      ? MFT_ROLE_SYSTEM
                      : mft__jstr_is(j, r, "user")      ? MFT_ROLE_USER
                      : mft__jstr_is(j, r, "assistant") ? MFT_ROLE_ASSISTANT
                      : mft__jstr_is(j, r, "tool")      ? MFT_ROLE_TOOL
                                                        : -1;
            if (d->role < 0)
                MFT__RECFAIL(r != MFT__JNONE ? r : c, "message %d: role must be system, user, assistant or tool", nm);
            d->train = tr == MFT__JNONE                   ? -1
                       : j->node[tr].type == MFT__J_TRUE  ? 1
                       : j->node[tr].type == MFT__J_FALSE ? 0
                                                          : -2;
            if (d->train == -2) MFT__RECFAIL(tr, "message %d: \"train\" must be true or false", nm);
            d->weight = wt == MFT__JNONE ? 1.0f : (float)j->node[wt].num;
            if (wt != MFT__JNONE && (j->node[wt].type != MFT__J_NUM || !(d->weight >= 0) || !isfinite(d->weight)))
                MFT__RECFAIL(wt, "message %d: \"weight\" must be a number >= 0", nm);
            if (conv && ai == 0 && d->train < 0) d->train = 0;
            uint32_t en = mft__jget(j, c, "ended");
            if (en != MFT__JNONE && j->node[en].type != MFT__J_TRUE && j->node[en].type != MFT__J_FALSE)
                MFT__RECFAIL(en, "message %d: \"ended\" must be true or false", nm);
            d->open = en != MFT__JNONE && j->node[en].type == MFT__J_FALSE;
            d->content = j->pool + j->node[ct].first;
            d->len = (int)j->node[ct].n;
            d->src = nm;
            mft__jpos(j, ct, &d->at_line, &d->at_col);
            if (df != MFT__JNONE) {
                if (j->node[df].type != MFT__J_STR) MFT__RECFAIL(df, "message %d: \"draft\" must be a string", nm);
                d->draft = j->pool + j->node[df].first;
                d->dlen = (int)j->node[df].n;
            }
            /* key_spans: [[begin, end], ...] in code points of the content */
            if (ks == MFT__JNONE) continue;
            if (j->node[ks].type != MFT__J_ARR)
                MFT__RECFAIL(ks, "message %d: \"key_spans\" must be an array of [begin, end]", nm);
            d->spans = (int *)MFT_MALLOC((2 * (size_t)j->node[ks].n + 2) * sizeof(int));
            if (!d->spans) {
                s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
                nm++; /* so that its spans are freed */
                goto fail;
            }
            for (uint32_t p = j->node[ks].first; p != MFT__JNONE; p = j->node[p].next) {
                uint32_t a = j->node[p].type == MFT__J_ARR && j->node[p].n == 2 ? j->node[p].first : MFT__JNONE;
                int b0, e0;
                if (a == MFT__JNONE || j->node[a].type != MFT__J_NUM || j->node[j->node[a].next].type != MFT__J_NUM) {
                    nm++;
                    MFT__RECFAIL(p, "message %d: each key span is [begin, end]", nm - 1);
                }
                if (!mft__jint(j, a, 0, 1e9, &b0) || !mft__jint(j, j->node[a].next, b0, 1e9, &e0)) {
                    nm++;
                    MFT__RECFAIL(p, "message %d: key span [%g, %g] is not a range of code points", nm - 1,
                                 j->node[a].num, j->node[j->node[a].next].num);
                }
                d->spans[2 * d->n_spans] = b0;
                d->spans[2 * d->n_spans + 1] = e0;
                d->n_spans++;
            }
        }
    }
    if (!conv && arrays[0] == MFT__JNONE) { /* text, prompt/completion: "ended": false on the record */
        uint32_t en = mft__jget(j, root, "ended");
        if (en != MFT__JNONE && j->node[en].type != MFT__J_TRUE && j->node[en].type != MFT__J_FALSE)
            MFT__RECFAIL(en, "\"ended\" must be true or false");
        if (en != MFT__JNONE && nm > 0) msg[nm - 1].open = j->node[en].type == MFT__J_FALSE;
    }
    if (!nm && !prompt_only) MFT__RECFAIL(root, "a record without a message has nothing to train");
#undef MFT__RECFAIL
    *n_msg = nm;
    return MFT_OK;
fail:
    mft__msgs_free(msg, nm);
    memset(msg, 0, (size_t)(nm < 256 ? nm + 1 : nm) * sizeof *msg);
    return s;
}

/* ---- stage 2: key markup out of every content (and draft) --------------------------------
   The key spans of a message become byte ranges of its stripped content: those of key_spans
   (code points of the content as written) first, then those of the markup. */
static mft_status mft__strip_messages(mft__dmsg *msg, int nm, const mft_data_opts *o, const char *where, int line,
                                      mft_error *err)
{
    const char *ko = o->key_open ? o->key_open : "", *kc = o->key_close ? o->key_close : "";
    for (int i = 0; i < nm; i++) {
        mft__dmsg *d = &msg[i];
        char *c = (char *)MFT_MALLOC((size_t)d->len + 1);
        int sp[2 * 1024], ns = 0;
        if (!c) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        int L = mft__strip_markup(d->content, d->len, ko, kc, c, sp, &ns, 1024);
        char nb[24];
        int at = line + (d->at_line ? d->at_line - 1 : 0), col = d->at_col ? d->at_col : 1;
        if (L < 0) {
            MFT_FREE(c);
            return mft__errat(err, MFT_ERR_FORMAT, where, at, col, "%s: unbalanced %s ... %s markup",
                              mft__msg_name(d, nb), ko, kc);
        }
        int *all = (int *)MFT_MALLOC((2 * (size_t)(ns + d->n_spans) + 2) * sizeof(int)), na = 0;
        if (!all) {
            MFT_FREE(c);
            return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        }
        for (int k = 0; k < d->n_spans; k++) {
            int b = mft__cp_to_byte(c, L, d->spans[2 * k]), e = mft__cp_to_byte(c, L, d->spans[2 * k + 1]);
            if (b < 0 || e < 0) {
                MFT_FREE(c);
                MFT_FREE(all);
                return mft__errat(err, MFT_ERR_FORMAT, where, at, col,
                                  "%s: key span [%d, %d] is past the end of the content", mft__msg_name(d, nb),
                                  d->spans[2 * k], d->spans[2 * k + 1]);
            }
            all[2 * na] = b;
            all[2 * na + 1] = e;
            na++;
        }
        for (int k = 0; k < ns; k++) {
            all[2 * na] = sp[2 * k];
            all[2 * na + 1] = sp[2 * k + 1];
            na++;
        }
        MFT_FREE(d->spans);
        d->spans = all;
        d->n_spans = na;
        d->content = c;
        d->len = L;
        d->owned = 1;
        char *pool_draft = d->draft;
        d->draft = NULL; /* until our own copy exists */
        if (pool_draft) {
            char *dr = (char *)MFT_MALLOC((size_t)d->dlen + 1);
            int dsp[2 * 1024], dns;
            if (!dr) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
            int dl = mft__strip_markup(pool_draft, d->dlen, ko, kc, dr, dsp, &dns, 1024);
            if (dl < 0) {
                MFT_FREE(dr);
                return mft__errat(err, MFT_ERR_FORMAT, where, at, col, "%s: unbalanced markup in the draft",
                                  mft__msg_name(d, nb));
            }
            d->draft = dr;
            d->dlen = dl;
        }
    }
    return MFT_OK;
}

/* ---- stage 3: render, then one encode of the whole text -------------------------------------
   Both measure first (BUFFERS), so the buffers are exactly as large as they need to be. */
static mft_status mft__render_alloc(int family, const mft_tokenizer *t, const mft_chat_msg *cm, int nm, int gen,
                                    char **text, int *len, int *ranges, int *origin, mft_error *err)
{
    mft_status s = mft_chat_render(family, t, cm, nm, gen, NULL, 0, len, ranges, origin, err);
    if (s) return s;
    if (!(*text = (char *)MFT_MALLOC((size_t)*len + 1))) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    return mft_chat_render(family, t, cm, nm, gen, *text, *len + 1, len, ranges, origin, err);
}

/* ids (with `extra` free slots after them) and offsets (2 per id) of text[0..len) */
static mft_status mft__encode_alloc(const mft_tokenizer *t, const char *text, int len, int flags, int extra, int **ids,
                                    int **offs, int *n, mft_error *err)
{
    *ids = NULL;
    *offs = NULL;
    mft_status s = mft_encode(t, text, len, flags, NULL, 0, n, NULL, err);
    if (s) return s;
    *ids = (int *)MFT_MALLOC(((size_t)*n + (size_t)extra + 1) * sizeof(int));
    *offs = (int *)MFT_MALLOC(2 * ((size_t)*n + (size_t)extra + 1) * sizeof(int));
    if (!*ids || !*offs) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    return mft_encode(t, text, len, flags, *ids, *n, n, *offs, err);
}

static void mft__chat_msgs(mft_chat_msg *cm, const mft__dmsg *msg, int nm)
{
    for (int i = 0; i < nm; i++) {
        cm[i].role = msg[i].role;
        cm[i].content = msg[i].content;
        cm[i].len = msg[i].len;
    }
}

/* a byte that continues a word: ASCII letters and digits, and any byte of a multi-byte character */
static int mft__wordy(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c >= 0x80;
}

/* 1 when token id decodes to something that begins with a byte that ends a word */
static int mft__ends_word(const mft_tokenizer *t, int id)
{
    return t->dec_off[id + 1] > t->dec_off[id] && !mft__wordy((unsigned char)t->dec[t->dec_off[id]]);
}

/* 1 when token id decodes to spaces, tabs or newlines only (and to something) */
static int mft__all_space(const mft_tokenizer *t, int id)
{
    uint32_t a = t->dec_off[id], b = t->dec_off[id + 1];
    for (uint32_t i = a; i < b; i++)
        if (!strchr(" \t\n", t->dec[i])) return 0;
    return b > a;
}

/* the tokens of ids[0..n) whose bytes overlap [rb, re): [*t0, *t1), or *t0 = -1 */
static void mft__tokens_in(const int *offs, int n, int rb, int re, int *t0, int *t1)
{
    *t0 = *t1 = -1;
    for (int k = 0; k < n; k++)
        if (offs[2 * k] < re && offs[2 * k + 1] > rb) {
            if (*t0 < 0) *t0 = k;
            *t1 = k + 1;
        }
}

/* ---- stage 4: what each turn trains ---------------------------------------------------------
   diff: the draft rendered in place of the answer, encoded the same way, and the answer's tokens
   that are not in a longest common subsequence with it. sel[k] for the tokens t0..t1 of turn mi. */
static mft_status mft__select_diff(const mft_tokenizer *t, int family, int plain, const mft__dmsg *msg, int nm, int mi,
                                   const int *ids, int t0, int t1, uint8_t *sel, mft_error *err)
{
    mft_chat_msg dm[256];
    char *dtext = NULL;
    int *dids = NULL, *doffs = NULL, dlen, dn, dr[512], d0, d1;
    uint8_t *keep = NULL;
    mft__chat_msgs(dm, msg, nm);
    dm[mi].content = msg[mi].draft;
    dm[mi].len = msg[mi].dlen;
    mft_status s = mft__render_alloc(family, t, dm, nm, 0, &dtext, &dlen, dr, NULL, err);
    if (!s) s = mft__encode_alloc(t, dtext, dlen, (plain ? MFT_BOS : 0) | MFT_SPECIAL, 0, &dids, &doffs, &dn, err);
    if (!s) {
        mft__tokens_in(doffs, dn, dr[2 * mi], dr[2 * mi + 1], &d0, &d1);
        keep = (uint8_t *)MFT_MALLOC((size_t)(t1 - t0) + 1);
        if (!keep || mft__lcs_keep(ids + t0, t1 - t0, d0 >= 0 ? dids + d0 : dids, d0 >= 0 ? d1 - d0 : 0, keep))
            s = mft__fail(err, MFT_ERR_NOMEM, "answer too long for the diff");
        else
            for (int k = 0; k < t1 - t0; k++) sel[k] = !keep[k];
    }
    MFT_FREE(keep);
    MFT_FREE(dtext);
    MFT_FREE(dids);
    MFT_FREE(doffs);
    return s;
}

/* tags and weights of one eligible turn: its tokens are in the turn; the policy's are trained,
   and the first end token after them (while no other turn began) too */
static mft_status mft__select_turn(const mft_tokenizer *t, const mft_data_opts *o, int family, int plain,
                                   const mft__dmsg *msg, int nm, int mi, const int *origin, const int *offs, int eot,
                                   int rb, int re, mft_example *ex, mft_error *err)
{
    int t0, t1, n = ex->n;
    mft__tokens_in(offs, n, rb, re, &t0, &t1);
    if (t0 < 0) return MFT_OK;
    uint8_t *sel = (uint8_t *)mft__calloc((size_t)(t1 - t0) + 1, 1);
    if (!sel) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    const mft__dmsg *d = &msg[mi];
    for (int k = t0; k < t1; k++) {
        ex->tag[k] = MFT_TAG_TURN;
        int on = o->policy == MFT_POLICY_ALL || o->policy == MFT_POLICY_DIFF; /* diff without a draft: all new */
        for (int q = 0; o->policy == MFT_POLICY_KEY && q < d->n_spans && !on; q++) {
            int kb = origin[mi] + d->spans[2 * q], ke = origin[mi] + d->spans[2 * q + 1];
            on = offs[2 * k] < ke && offs[2 * k + 1] > kb && ke > kb;
            /* a token of whitespace alone that ends where the key begins: a small vocabulary
               splits " Pickle" into " ", "P", ..., and choosing " " there is choosing to begin
               the name (untrained, the base model's "named" -> " S..." wins at recall) */
            on = on || (ke > kb && offs[2 * k + 1] == kb && mft__all_space(t, ex->ids[k]));
            /* and the token that begins right after a key which ends a word (" was", ".", ","):
               it says where the name ends ("Mochi" + "e" would be another name) */
            on = on || (ke > kb && offs[2 * k] == ke && mft__ends_word(t, ex->ids[k]));
        }
        sel[k - t0] = (uint8_t)on;
    }
    mft_status s = MFT_OK;
    if (o->policy == MFT_POLICY_DIFF && d->draft)
        s = mft__select_diff(t, family, plain, msg, nm, mi, ex->ids, t0, t1, sel, err);
    int any = 0;
    for (int k = t0; k < t1 && !s; k++)
        if (sel[k - t0] && k > 0) {
            ex->w[k - 1] = d->weight;
            ex->tag[k] = MFT_TAG_TRAINED;
            any = 1;
        }
    MFT_FREE(sel);
    if (any && o->train_eot && eot >= 0 && !d->open)
        for (int k = t1; k < n; k++) {
            if (ex->ids[k] == eot) {
                ex->w[k - 1] = d->weight;
                ex->tag[k] = MFT_TAG_END;
                break;
            }
            if (t->types[ex->ids[k]] == MFT_TOKEN_CONTROL) break; /* another turn began */
        }
    return s;
}

/* {"input_ids": [...], "labels": [...]}: -100 = not trained, as TRL and Axolotl write them */
static mft_status mft__record_ids(const mft_tokenizer *t, const mft__json *j, uint32_t v, uint32_t lab,
                                  const char *where, int line, mft_example *ex, mft_error *err)
{
    if (j->node[v].type != MFT__J_ARR ||
        (lab != MFT__JNONE && (j->node[lab].type != MFT__J_ARR || j->node[lab].n != j->node[v].n)))
        return mft__rec_fail(err, MFT_ERR_FORMAT, j, v, where, line,
                             "input_ids and labels must be arrays of the same length");
    int n = (int)j->node[v].n;
    ex->ids = (int *)MFT_MALLOC(((size_t)n + 1) * sizeof(int));
    ex->w = (float *)mft__calloc((size_t)n + 1, sizeof(float));
    ex->tag = (uint8_t *)mft__calloc((size_t)n + 1, 1);
    if (!ex->ids || !ex->w || !ex->tag) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    uint32_t c = j->node[v].first, d = lab != MFT__JNONE ? j->node[lab].first : MFT__JNONE;
    for (int i = 0; i < n; i++, c = j->node[c].next) {
        int x;
        if (!mft__jint(j, c, 0, t->vocab_size - 1, &x))
            return mft__rec_fail(err, MFT_ERR_FORMAT, j, c, where, line,
                                 "input_ids[%d] is not a token id of this vocabulary", i);
        ex->ids[i] = x;
        /* a label is -100 (not trained) or the token itself, as TRL and Axolotl write them (the
           model shifts); anything else is a broken export, not a mask */
        if (d != MFT__JNONE && !(j->node[d].type == MFT__J_NUM && (j->node[d].num == -100 || j->node[d].num == x)))
            return mft__rec_fail(err, MFT_ERR_FORMAT, j, d, where, line,
                                 "labels[%d] must be -100 or input_ids[%d] (%d)", i, i, x);
        int trained = d == MFT__JNONE || j->node[d].num != -100;
        if (i > 0 && trained) {
            ex->w[i - 1] = 1.0f;
            ex->tag[i] = MFT_TAG_TRAINED;
            ex->n_trained++;
        }
        if (d != MFT__JNONE) d = j->node[d].next;
    }
    ex->n = n;
    return MFT_OK;
}

/* ---- stage 5: longer than the context: keep the start; weights stay with their positions -- */
static void mft__truncate(mft_example *ex, int max_len)
{
    if (max_len > 0 && ex->n > max_len) {
        ex->n = max_len;
        ex->w[ex->n - 1] = 0;
        ex->n_trained = 0;
        for (int k = 1; k < ex->n; k++) ex->n_trained += ex->w[k - 1] > 0;
    }
    if (ex->n > 0) ex->w[ex->n - 1] = 0; /* the last position predicts nothing */
}

MFT_API mft_status mft_example_from_json(const mft_tokenizer *t, const mft_data_opts *o, const char *json, int jlen,
                                         const char *where, int line, mft_example *ex, mft_error *err)
{
    mft__json j;
    mft__dmsg msg[256];
    mft_chat_msg cm[256];
    int nm = 0, ranges[3 * 256], *origin = ranges + 2 * 256, *offs = NULL, tlen, n;
    char *text = NULL;
    uint32_t root, v;
    if (!ex) return mft__fail(err, MFT_ERR_ARG, "example is NULL");
    memset(ex, 0, sizeof *ex);
    memset(&j, 0, sizeof j);
    memset(msg, 0, sizeof msg);
    if (!t || !o || !json) return mft__fail(err, MFT_ERR_ARG, "NULL argument");
    if (!where) where = "data";
    int family = mft__family_of(t, o);
    mft_status s = mft__record_parse(&j, &root, json, jlen, where, line, err);
    if (s) goto done;
    if ((v = mft__jget(&j, root, "input_ids")) != MFT__JNONE) {
        s = mft__record_ids(t, &j, v, mft__jget(&j, root, "labels"), where, line, ex, err);
        goto truncate;
    }
    if ((s = mft__parse_record(&j, root, msg, &nm, &family, 0, where, line, err))) goto done;
    if ((s = mft__strip_messages(msg, nm, o, where, line, err))) goto done;
    int plain, eot;
    plain = family == MFT_CHAT_PLAIN;
    eot = o->eot_id >= 0 ? o->eot_id : mft__eot_of(t, family);
    mft__chat_msgs(cm, msg, nm);
    if ((s = mft__render_alloc(family, t, cm, nm, 0, &text, &tlen, ranges, origin, err))) goto done;
    if ((s = mft__encode_alloc(t, text, tlen, (plain ? MFT_BOS : 0) | MFT_SPECIAL, 1, &ex->ids, &offs, &n, err)))
        goto done;
    /* a plain completion has no end token in its text: add the model's own (not after a cut) */
    if (plain && o->train_eot && eot >= 0 && !(nm > 0 && msg[nm - 1].open)) {
        ex->ids[n] = eot;
        offs[2 * n] = offs[2 * n + 1] = tlen;
        n++;
    }
    ex->n = n;
    ex->w = (float *)mft__calloc((size_t)n + 1, sizeof(float));
    ex->tag = (uint8_t *)mft__calloc((size_t)n + 1, 1);
    if (!ex->w || !ex->tag) {
        s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        goto done;
    }
    int last_asst;
    last_asst = -1;
    for (int i = 0; i < nm; i++)
        if (msg[i].role == MFT_ROLE_ASSISTANT) last_asst = i;
    for (int mi = 0; mi < nm && !s; mi++) {
        int rb = ranges[2 * mi], re = ranges[2 * mi + 1];
        int elig = msg[mi].train >= 0                 ? msg[mi].train
                   : o->eligible == MFT_ELIGIBLE_ALL  ? 1
                   : o->eligible == MFT_ELIGIBLE_LAST ? mi == last_asst
                                                      : msg[mi].role == MFT_ROLE_ASSISTANT;
        if (rb < 0 || !elig || msg[mi].weight == 0) continue;
        s = mft__select_turn(t, o, family, plain, msg, nm, mi, origin, offs, eot, rb, re, ex, err);
    }
    for (int k = 1; k < n; k++) ex->n_trained += ex->w[k - 1] > 0;
truncate:
    if (!s) mft__truncate(ex, o->max_len);
done:
    mft__msgs_free(msg, nm);
    MFT_FREE(text);
    MFT_FREE(offs);
    mft__json_free(&j);
    if (s)
        mft_example_free(ex);
    else
        mft__ok(err);
    return s;
}

/* ---- drafts: the model writes the answers ------------------------------------------------- */

/* the model's own continuation of text[0..len) (already rendered), greedy or sampled, until
   the end token, EOS, BOS or max_new tokens; appended to b as a JSON string */
/* where a continuation cut at max_new tokens ends cleanly: after its last sentence (. ! ?,
   closing quotes or brackets, then a space or the end), else after its last whole word */
static int mft__clean_cut(const char *g, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        if (g[i] != '.' && g[i] != '!' && g[i] != '?') continue;
        int e = i + 1;
        for (;;) { /* closing quotes and brackets: ASCII, and U+201D / U+2019 in UTF-8 */
            if (e < n && (g[e] == '"' || g[e] == '\'' || g[e] == ')' || g[e] == ']'))
                e++;
            else if (e + 2 < n && (unsigned char)g[e] == 0xE2 && (unsigned char)g[e + 1] == 0x80 &&
                     ((unsigned char)g[e + 2] == 0x9D || (unsigned char)g[e + 2] == 0x99))
                e += 3;
            else
                break;
        }
        if (e == n || g[e] == ' ' || g[e] == '\n') return e;
    }
    for (int i = n - 1; i > 0; i--)
        if (g[i] == ' ' || g[i] == '\n') return i;
    return n;
}

static mft_status mft__draft_one(mft_model *m, const mft_tokenizer *t, const char *text, int len, int plain, int eot,
                                 int max_new, float temp, uint64_t *rng, mft__sb *b, int *cut, mft_error *err)
{
    int *ids = NULL, *offs = NULL, *gen = NULL, n, ng, ended;
    mft__sb g = { NULL, 0, 0, 0, 1, 0 };
    mft_status s = mft__encode_alloc(t, text, len, (plain ? MFT_BOS : 0) | MFT_SPECIAL, 0, &ids, &offs, &n, err);
    if (!s && (n == 0 || n >= m->cfg.seq_len))
        s = mft__fail(err, MFT_ERR_ARG, "the prompt (%d tokens) does not fit the context (%d)", n, m->cfg.seq_len);
    if (!s && !(gen = (int *)MFT_MALLOC(((size_t)max_new + 1) * sizeof(int))))
        s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    if (!s) {
        mft_gen_opts go = mft_gen_opts_default();
        go.max_new = max_new;
        go.temperature = temp;
        mft_tokenizer_stops(t, eot, go.stop);
        s = mft_generate(m, ids, n, &go, rng, gen, max_new, &ng, &ended, err);
    }
    /* the generated tokens as text, decoded after the prompt's last token */
    for (int i = 0, prev = n > 0 ? ids[n - 1] : -1; !s && i < ng; prev = gen[i++]) {
        int pl;
        const char *p = mft_token_bytes(t, prev, gen[i], &pl);
        mft__sb_put(&g, p, pl);
    }
    if (!s && g.nomem) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    /* stopped by max_new, not by the model: cut where it reads cleanly; the turn is marked as
       not ended, so its end token is not trained (it would teach stopping mid-story) */
    *cut = !s && !ended;
    if (*cut && g.p) g.n = mft__clean_cut(g.p, g.n);
    if (!s) mft__sb_json(b, g.p ? g.p : "", g.n);
    MFT_FREE(g.p);
    MFT_FREE(ids);
    MFT_FREE(offs);
    MFT_FREE(gen);
    return s;
}

MFT_API mft_status mft_draft_record(mft_model *m, const mft_tokenizer *t, const mft_data_opts *o, const char *json,
                                    int jlen, int max_new, float temperature, uint64_t *rng, const char *where,
                                    int line, char **out, mft_error *err)
{
    mft__json j;
    mft__dmsg msg[256];
    mft_chat_msg cm[256];
    int nm = 0;
    char *ctx = NULL;
    mft__sb b = { NULL, 0, 0, 0, 1, 0 };
    uint32_t root;
    if (out) *out = NULL;
    if (!m || !t || !o || !json || !out) return mft__fail(err, MFT_ERR_ARG, "NULL argument");
    if (!(m->flags & MFT_GENERATE))
        return mft__fail(err, MFT_ERR_STATE, "drafting needs a model opened with MFT_GENERATE");
    if (!where) where = "data";
    memset(&j, 0, sizeof j);
    memset(msg, 0, sizeof msg);
    size_t n = jlen < 0 ? strlen(json) : (size_t)jlen;
    int family = mft__family_of(t, o);
    mft_status s = mft__record_parse(&j, &root, json, (int)n, where, line, err);
    if (s) goto done;
    int is_pc, is_msgs;
    is_pc = mft__jget(&j, root, "prompt") != MFT__JNONE;
    is_msgs = mft__jget(&j, root, "messages") != MFT__JNONE;
    if (max_new < 1 || max_new > 100000) {
        s = mft__errat(err, MFT_ERR_ARG, where, line, 0, "max_new %d out of range", max_new);
        goto done;
    }
    if (!is_pc && !is_msgs) { /* text, input_ids: as they are */
        mft__sb_put(&b, json, (int)n);
        goto finish;
    }
    if ((s = mft__parse_record(&j, root, msg, &nm, &family, 1, where, line, err))) goto done;
    if (is_pc && j.node[mft__jget(&j, root, "prompt")].type == MFT__J_ARR) is_pc = 0; /* conversational */
    /* a conversation that ends in a user turn (or a prompt alone) gets its answer drafted */
    if (nm > 0 && nm < 256 && msg[nm - 1].role != MFT_ROLE_ASSISTANT) {
        memset(&msg[nm], 0, sizeof msg[nm]);
        msg[nm].role = MFT_ROLE_ASSISTANT;
        msg[nm].train = -1;
        msg[nm].weight = 1;
        msg[nm].content = (char *)"";
        nm++;
    }
    int eot, plain;
    eot = o->eot_id >= 0 ? o->eot_id : mft__eot_of(t, family);
    plain = family == MFT_CHAT_PLAIN;
    mft__chat_msgs(cm, msg, nm);
    mft__sb_put(&b, is_pc ? "{\"prompt\": " : "{\"messages\": [", -1);
    for (int i = 0; i < nm && !s; i++) {
        if (is_pc && i == 0) {
            mft__sb_json(&b, msg[0].content, msg[0].len);
            continue;
        }
        if (!is_pc) {
            mft__sb_put(&b, i ? ", {\"role\": \"" : "{\"role\": \"", -1);
            mft__sb_put(&b, mft__role_name(msg[i].role), -1);
            mft__sb_put(&b, "\", ", -1);
            if (msg[i].train >= 0) mft__sb_put(&b, msg[i].train ? "\"train\": true, " : "\"train\": false, ", -1);
            if (msg[i].weight != 1.0f) {
                char w[48];
                snprintf(w, sizeof w, "\"weight\": %g, ", (double)msg[i].weight);
                mft__sb_put(&b, w, -1);
            }
        }
        if (msg[i].role != MFT_ROLE_ASSISTANT) {
            mft__sb_put(&b, "\"content\": ", -1);
            mft__sb_json(&b, msg[i].content, msg[i].len);
            mft__sb_put(&b, "}", 1);
            continue;
        }
        /* the model answers what came before, as it would at inference; the answer goes in
           twice, as the content and as the draft */
        int clen;
        MFT_FREE(ctx);
        ctx = NULL;
        if ((s = mft__render_alloc(family, t, cm, i, !plain, &ctx, &clen, NULL, NULL, err))) break;
        mft__sb_put(&b, is_pc ? ", \"completion\": " : "\"content\": ", -1);
        int start = b.n, cut = 0;
        if ((s = mft__draft_one(m, t, ctx, clen, plain, eot, max_new, temperature, rng, &b, &cut, err))) break;
        int dl = b.n - start;
        char *copy = (char *)MFT_MALLOC((size_t)dl + 1); /* b.p may move as b grows */
        if (!copy) {
            s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(copy, b.over ? "" : b.p + start, b.over ? 0 : (size_t)dl);
        mft__sb_put(&b, ", \"draft\": ", -1);
        mft__sb_put(&b, copy, b.over ? 0 : dl);
        MFT_FREE(copy);
        if (cut) mft__sb_put(&b, ", \"ended\": false", -1);
        if (!is_pc) mft__sb_put(&b, "}", 1);
    }
    if (!s) mft__sb_put(&b, is_pc ? "}" : "]}", -1);
finish:
    if (!s && (b.nomem || b.over)) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory for the draft record");
    if (!s) {
        *out = b.p;
        b.p = NULL;
    }
done:
    mft__msgs_free(msg, nm);
    MFT_FREE(b.p);
    MFT_FREE(ctx);
    mft__json_free(&j);
    if (!s) mft__ok(err);
    return s;
}

/* the end token examples get under these options: o's eot_id, else the template's */
MFT_API int mft_end_token(const mft_tokenizer *t, const mft_data_opts *o)
{
    if (!t) return -1;
    if (o && o->eot_id >= 0) return o->eot_id;
    return mft__eot_of(t, mft__family_of(t, o));
}

/* ============================================================================================
   >>pack
   Training rows: examples one after another, each attending only to itself (its positions
   restart at 0, which mft_forward_packed reads as the start of a sequence), the tail of a row a
   padding segment of its own with weight 0. Next fit in the order given keeps the order a
   shuffle chose and costs one pass; the rows of an epoch are all known before the first step,
   so the schedule knows its total and a resumed run rebuilds exactly the same rows.
   ============================================================================================ */

MFT_API mft_status mft_pack_examples(mft_pack *p, const mft_example *ex, int n_ex, const int *order, int n_order,
                                     int epoch, int T, mft_error *err)
{
    if (!p) return mft__fail(err, MFT_ERR_ARG, "pack is NULL");
    memset(p, 0, sizeof *p);
    if (!ex || !order || n_ex < 0 || n_order < 0 || T < 1 || epoch < 0)
        return mft__fail(err, MFT_ERR_ARG, "mft_pack_examples: bad argument");
    p->T = T;
    p->n_slots = n_order;
    p->slot = (int *)MFT_MALLOC(((size_t)n_order + 1) * sizeof(int));
    p->row_first = (int *)MFT_MALLOC(((size_t)n_order + 2) * sizeof(int)); /* at most a row per slot */
    if (!p->slot || !p->row_first) {
        mft_pack_free(p);
        return mft__fail(err, MFT_ERR_NOMEM, "out of memory packing %d examples", n_order);
    }
    for (int i = 0, used = T; i < n_order; i++) {
        int k = order[i];
        if (k < 0 || k >= n_ex || ex[k].n < 2 || ex[k].n - 1 > T) {
            int len = k >= 0 && k < n_ex ? ex[k].n : -1;
            mft_pack_free(p);
            return mft__fail(err, MFT_ERR_ARG, "order[%d] = %d: not an example of 2 to %d tokens (it has %d)", i, k,
                             T + 1, len);
        }
        int need = ex[k].n - 1;
        if (used + need > T || (epoch > 0 && i % epoch == 0)) {
            p->row_first[p->n_rows++] = i;
            used = 0;
        }
        used += need;
        p->slot[i] = k;
    }
    p->row_first[p->n_rows] = n_order;
    return mft__ok(err);
}

MFT_API void mft_pack_free(mft_pack *p)
{
    if (!p) return;
    MFT_FREE(p->slot);
    MFT_FREE(p->row_first);
    memset(p, 0, sizeof *p);
}

MFT_API mft_status mft_pack_fill(const mft_pack *p, const mft_example *ex, long r0, int B, int *inputs, int *targets,
                                 float *weights, int *pos, float *anchor_w, float anchor_scale, mft_fill_info *info,
                                 mft_error *err)
{
    mft_fill_info fi = { 0, 0, 0 };
    if (info) *info = fi;
    if (!p || !ex || !inputs || !targets || !weights || !pos || B < 1 || r0 < 0)
        return mft__fail(err, MFT_ERR_ARG, "mft_pack_fill: bad argument");
    int T = p->T;
    for (int b = 0; b < B && r0 + b < p->n_rows; b++) {
        long r = r0 + b;
        int t = 0;
        int *ri = inputs + (size_t)b * T, *rt = targets + (size_t)b * T, *rp = pos + (size_t)b * T;
        float *rw = weights + (size_t)b * T, *ra = anchor_w ? anchor_w + (size_t)b * T : NULL;
        for (int k = p->row_first[r]; k < p->row_first[r + 1]; k++) {
            const mft_example *e = &ex[p->slot[k]];
            for (int j = 0; j + 1 < e->n; j++, t++) {
                ri[t] = e->ids[j];
                rt[t] = e->ids[j + 1];
                rw[t] = e->w[j];
                rp[t] = j;
                if (ra) ra[t] = e->w[j] == 0.0f ? anchor_scale : 0.0f;
                fi.trained += e->w[j] > 0;
            }
        }
        fi.tokens += t;
        /* padding: its own sequence, weight 0 */
        for (int j = 0; t < T; t++, j++) {
            ri[t] = rt[t] = 0;
            rw[t] = 0.0f;
            rp[t] = j;
            if (ra) ra[t] = 0.0f;
        }
        fi.rows++;
    }
    if (info) *info = fi;
    return mft__ok(err);
}

MFT_API float mft_pack_anchor_scale(const mft_pack *p, const mft_example *ex, long r0, long r1, float W)
{
    double sw = 0.0, nu = 0.0;
    if (!p || !ex) return 0.0f;
    for (long r = r0 < 0 ? 0 : r0; r < r1 && r < p->n_rows; r++)
        for (int k = p->row_first[r]; k < p->row_first[r + 1]; k++)
            for (int j = 0; j + 1 < ex[p->slot[k]].n; j++) {
                float x = ex[p->slot[k]].w[j];
                sw += x;
                nu += x == 0.0f;
            }
    return nu > 0 ? (float)(W * sw / nu) : 0.0f;
}

/* ============================================================================================
   >>teacher
   Two measurements of the model on its own training examples. The until-learned score: the
   smallest probability the model gives any trained token of an example; once that is >= P, the
   example is learned and training it further only moves the model elsewhere. The teacher in
   context: the frozen base model reads the knowledge as plain text, then the example, and its
   distribution at each of the example's positions, kept as its k most likely tokens, is what
   the model is pulled toward there (mft_set_soft_targets) while it reads the example alone.
   ============================================================================================ */

MFT_API mft_status mft_score_trained(mft_model *m, const mft_example *ex, const int *which, int n, float *p_min,
                                     mft_error *err)
{
    if (!m || !ex || !p_min || n < 0) return mft__fail(err, MFT_ERR_ARG, "mft_score_trained: bad argument");
    if (!(m->flags & MFT_FORWARD)) return mft__fail(err, MFT_ERR_STATE, "mft_score_trained needs MFT_FORWARD");
    if (!n) return mft__ok(err);
    int B = m->B, T = m->T, V = m->cfg.vocab_size, *order = (int *)mft__calloc((size_t)n, sizeof(int));
    size_t N = (size_t)B * T;
    int *buf = (int *)mft__calloc(3 * N, sizeof(int));
    float *w = (float *)mft__calloc(N, sizeof(float));
    mft_pack p;
    memset(&p, 0, sizeof p);
    mft_status st = order && buf && w ? MFT_OK : mft__fail(err, MFT_ERR_NOMEM, "out of memory scoring examples");
    for (int i = 0; !st && i < n; i++) {
        order[i] = which ? which[i] : i;
        p_min[i] = 1.0f;
    }
    if (!st) st = mft_pack_examples(&p, ex, INT32_MAX, order, n, 0, T, err);
    int dft = m->dft;
    m->dft = 0; /* the score is the plain probability */
    for (long r0 = 0; !st && r0 < p.n_rows; r0 += B) {
        mft_fill_info fi;
        st = mft_pack_fill(&p, ex, r0, B, buf, buf + N, w, buf + 2 * N, NULL, 0.0f, &fi, err);
        if (!st) st = mft_forward_packed(m, buf, buf + N, w, buf + 2 * N, fi.rows, T, NULL, err);
        for (int b = 0; !st && b < fi.rows; b++) {
            size_t t = (size_t)b * T;
            for (int s = p.row_first[r0 + b]; s < p.row_first[r0 + b + 1]; s++) {
                const mft_example *e = &ex[p.slot[s]];
                for (int j = 0; j + 1 < e->n; j++, t++) {
                    if (!(e->w[j] > 0.0f)) continue;
                    float pr = expf(m->a.logits[t * (size_t)V + (size_t)e->ids[j + 1]] - m->a.lse[t]);
                    if (pr < p_min[s]) p_min[s] = pr;
                }
            }
        }
    }
    m->dft = dft;
    m->fwd_B = 0; /* nothing to backpropagate */
    mft_pack_free(&p);
    MFT_FREE(order);
    MFT_FREE(buf);
    MFT_FREE(w);
    return st ? st : mft__ok(err);
}

/* sift ids[at] = x down a min-heap of n (by z) */
static void mft__heap_down(const float *z, int *ids, int n, int at, int x)
{
    for (;;) {
        int c = 2 * at + 1;
        if (c >= n) break;
        if (c + 1 < n && z[ids[c + 1]] < z[ids[c]]) c++;
        if (z[ids[c]] >= z[x]) break;
        ids[at] = ids[c];
        at = c;
    }
    ids[at] = x;
}

/* the k largest of z (V) into ids, largest first: a min-heap of the k best so far, O(V log k) */
static void mft__topk(const float *z, int V, int k, int *ids)
{
    int n = 0;
    for (int i = 0; i < V; i++) {
        if (n < k) { /* sift up from the end */
            int at = n++;
            while (at > 0 && z[ids[(at - 1) / 2]] > z[i]) {
                ids[at] = ids[(at - 1) / 2];
                at = (at - 1) / 2;
            }
            ids[at] = i;
        } else if (z[i] > z[ids[0]]) {
            mft__heap_down(z, ids, n, 0, i); /* replaces the smallest */
        }
    }
    for (int e = n - 1; e > 0; e--) { /* heap sort: the smallest goes to the end */
        int mn = ids[0];
        mft__heap_down(z, ids, e, 0, ids[e]);
        ids[e] = mn;
    }
}

MFT_API mft_status mft_teacher_topk(mft_model *teacher, const int *ctx, int n_ctx, int drop, const mft_example *ex,
                                    int k, int *ids, float *probs, mft_error *err)
{
    if (!teacher || !ex || !ids || !probs || n_ctx < 0 || (n_ctx && !ctx) || drop < 0 || drop > 1 || ex->n < 2)
        return mft__fail(err, MFT_ERR_ARG, "mft_teacher_topk: bad argument");
    int V = teacher->cfg.vocab_size, n = n_ctx + ex->n - drop;
    if (k < 1 || k > V || k > MFT_SOFT_KMAX)
        return mft__fail(err, MFT_ERR_ARG, "k = %d: give 1 to %d", k, V < MFT_SOFT_KMAX ? V : MFT_SOFT_KMAX);
    if (n < 1 || n > teacher->T)
        return mft__fail(err, MFT_ERR_ARG,
                         "context (%d tokens) + example (%d) is longer than the teacher's %d positions", n_ctx,
                         ex->n - drop, teacher->T);
    int *seq = (int *)mft__calloc((size_t)n, sizeof(int));
    if (!seq) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    if (n_ctx) memcpy(seq, ctx, (size_t)n_ctx * sizeof(int));
    memcpy(seq + n_ctx, ex->ids + drop, (size_t)(ex->n - drop) * sizeof(int));
    mft_status st = mft_forward(teacher, seq, NULL, NULL, 1, n, NULL, err);
    MFT_FREE(seq);
    if (st) return st;
    /* example position t predicts ids[t+1]; the teacher predicts it at n_ctx - drop + t */
    for (int t = 0; t + 1 < ex->n; t++) {
        int *id = ids + (size_t)t * k;
        float *pr = probs + (size_t)t * k;
        int at = n_ctx - drop + t;
        if (at < 0) { /* no teacher before its first token: zero mass (give it weight 0) */
            for (int i = 0; i < k; i++) {
                id[i] = i;
                pr[i] = 0.0f;
            }
            continue;
        }
        const float *z = teacher->a.logits + (size_t)at * V;
        double l = mft__lse64(z, V);
        mft__topk(z, V, k, id);
        for (int i = 0; i < k; i++) pr[i] = (float)exp((double)z[id[i]] - l);
    }
    return mft__ok(err);
}

/* ---- the soft-target table: every example's teacher top-k, computed once -------------------- */

MFT_API mft_status mft_teacher_prefix(const mft_tokenizer *t, const mft_example *ex, const char *context, int **ctx,
                                      int *n_ctx, int *drop, mft_error *err)
{
    if (ctx) *ctx = NULL;
    if (!t || !ex || !ctx || !n_ctx || !drop || ex->n < 1)
        return mft__fail(err, MFT_ERR_ARG, "mft_teacher_prefix: bad argument");
    int bos = t->bos_id >= 0 && ex->ids[0] == t->bos_id, n = 0;
    *drop = 1;
    if (!context || !*context) { /* the anchor: the example's own first token */
        if (!(*ctx = (int *)MFT_MALLOC(sizeof(int)))) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        (*ctx)[0] = ex->ids[0];
        *n_ctx = 1;
        return mft__ok(err);
    }
    /* a space between the context and the example comes from SentencePiece's dummy prefix, else
       from a blank line */
    size_t cl = strlen(context);
    char *txt = (char *)MFT_MALLOC(cl + 3);
    if (!txt) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    memcpy(txt, context, cl);
    strcpy(txt + cl, t->add_dummy_prefix ? "" : "\n\n");
    mft_status s = mft_encode(t, txt, -1, 0, NULL, 0, &n, NULL, err);
    int *c = s ? NULL : (int *)MFT_MALLOC(((size_t)n + 2) * sizeof(int));
    if (!s && !c) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    if (!s) s = mft_encode(t, txt, -1, 0, c + bos, n + 1, &n, NULL, err);
    MFT_FREE(txt);
    if (s) {
        MFT_FREE(c);
        return s;
    }
    if (bos) c[0] = ex->ids[0];
    *drop = bos;
    *n_ctx = n + bos;
    *ctx = c;
    return mft__ok(err);
}

MFT_API mft_status mft_soft_table_init(mft_soft_table *st, int n_ex, int k, mft_error *err)
{
    if (!st) return mft__fail(err, MFT_ERR_ARG, "mft_soft_table_init: NULL table");
    memset(st, 0, sizeof *st);
    if (n_ex < 0 || k < 1 || k > MFT_SOFT_KMAX)
        return mft__fail(err, MFT_ERR_ARG, "soft table of %d examples, k = %d: give k in 1..%d", n_ex, k,
                         MFT_SOFT_KMAX);
    st->k = k;
    st->n_ex = n_ex;
    st->first = (long *)mft__calloc((size_t)n_ex + 1, sizeof(long));
    st->all = (unsigned char *)mft__calloc((size_t)n_ex + 1, 1);
    if (!st->first || !st->all) {
        mft_soft_table_free(st);
        return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n_ex; i++) st->first[i] = -1;
    return mft__ok(err);
}

MFT_API mft_status mft_soft_table_set(mft_soft_table *st, int i, mft_model *teacher, const mft_tokenizer *t,
                                      const mft_example *ex, const char *context, int all_positions, mft_error *err)
{
    if (!st || !st->first || i < 0 || i >= st->n_ex || !ex || ex->n < 2 || st->first[i] >= 0)
        return mft__fail(err, MFT_ERR_ARG, "mft_soft_table_set: bad argument (or example %d set twice)", i);
    int *ctx, n_ctx, drop;
    mft_status s = mft_teacher_prefix(t, ex, context, &ctx, &n_ctx, &drop, err);
    if (s) return s;
    size_t rows = (size_t)st->rows + (size_t)ex->n - 1, k = (size_t)st->k;
    int *ids = (int *)MFT_REALLOC(st->ids, rows * k * sizeof(int));
    if (ids) st->ids = ids;
    float *p = ids ? (float *)MFT_REALLOC(st->p, rows * k * sizeof(float)) : NULL;
    if (p) st->p = p;
    if (!ids || !p) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory for the top-%d of %zu positions", st->k, rows);
    if (!s)
        s = mft_teacher_topk(teacher, ctx, n_ctx, drop, ex, st->k, st->ids + (size_t)st->rows * k,
                             st->p + (size_t)st->rows * k, err);
    MFT_FREE(ctx);
    if (s) return s;
    st->first[i] = st->rows;
    st->all[i] = all_positions != 0;
    st->rows = (long)rows;
    return mft__ok(err);
}

MFT_API void mft_soft_table_free(mft_soft_table *st)
{
    if (!st) return;
    MFT_FREE(st->first);
    MFT_FREE(st->all);
    MFT_FREE(st->ids);
    MFT_FREE(st->p);
    memset(st, 0, sizeof *st);
}

/* the positions of rows r0 .. r1 - 1 that a table weights: untrained positions of examples with
   rows in it (all = 0), and every position of those with all = 1 */
MFT_API void mft_pack_soft_scale(const mft_pack *p, const mft_example *ex, const mft_soft_table *st, long r0, long r1,
                                 float W, float W_all, float *scale, float *scale_all)
{
    double wsum = 0.0, nu = 0.0, na = 0.0;
    for (long r = r0; r < r1 && r < p->n_rows; r++)
        for (int s = p->row_first[r]; s < p->row_first[r + 1]; s++) {
            int i = p->slot[s];
            const mft_example *e = &ex[i];
            int in = st && i < st->n_ex && st->first[i] >= 0;
            for (int j = 0; j + 1 < e->n; j++) {
                wsum += e->w[j];
                if (in && st->all[i])
                    na++;
                else if (in)
                    nu += e->w[j] == 0.0f;
            }
        }
    *scale = nu > 0 ? (float)(W * wsum / nu) : 0.0f;
    *scale_all = na > 0 ? (float)(W_all * wsum / na) : 0.0f;
}

MFT_API mft_status mft_pack_fill_soft(const mft_pack *p, const mft_example *ex, const mft_soft_table *st, long r0,
                                      int B, float scale, float scale_all, int *ids, float *probs, float *tw,
                                      mft_error *err)
{
    if (!p || !ex || !st || !st->first || !ids || !probs || !tw || B < 1 || r0 < 0)
        return mft__fail(err, MFT_ERR_ARG, "mft_pack_fill_soft: bad argument");
    int T = p->T;
    size_t k = (size_t)st->k;
    for (int b = 0; b < B && r0 + b < p->n_rows; b++) {
        size_t t = (size_t)b * T;
        for (int s = p->row_first[r0 + b]; s < p->row_first[r0 + b + 1]; s++) {
            int i = p->slot[s];
            const mft_example *e = &ex[i];
            long f = i < st->n_ex ? st->first[i] : -1;
            for (int j = 0; j + 1 < e->n; j++, t++) {
                tw[t] = f < 0 ? 0.0f : st->all[i] ? scale_all : e->w[j] == 0.0f ? scale : 0.0f;
                if (f < 0) {
                    memset(ids + t * k, 0, k * sizeof(int));
                    memset(probs + t * k, 0, k * sizeof(float));
                    continue;
                }
                memcpy(ids + t * k, st->ids + (size_t)(f + j) * k, k * sizeof(int));
                memcpy(probs + t * k, st->p + (size_t)(f + j) * k, k * sizeof(float));
            }
        }
        for (; t < (size_t)(b + 1) * T; t++) { /* padding */
            tw[t] = 0.0f;
            memset(ids + t * k, 0, k * sizeof(int));
            memset(probs + t * k, 0, k * sizeof(float));
        }
    }
    return mft__ok(err);
}

/* Each kept weight is divided by the chance of keeping it, so the expected sum over positions
   of tw KL is the sum without thinning (Horvitz and Thompson's estimate), and so is its
   gradient; the variance it adds is that of sampling `keep` of the positions. */
MFT_API size_t mft_thin_weights(float *tw, size_t n, float keep, uint64_t *rng)
{
    size_t kept = 0;
    if (!tw) return 0;
    if (!(keep < 1.0f)) { /* 1 or more (or NaN): every position, as given */
        for (size_t i = 0; i < n; i++) kept += tw[i] > 0.0f;
        return kept;
    }
    for (size_t i = 0; i < n; i++) { /* keep <= 0: no draw is below it, all are cleared */
        if (!(tw[i] > 0.0f)) continue;
        /* a draw for every weighted position, kept or not: the stream does not depend on keep */
        float u = mft__rand_f32(rng);
        if (u < keep) {
            tw[i] /= keep;
            kept++;
        } else
            tw[i] = 0.0f;
    }
    return kept;
}

/* the sentences of s[0..n) that hold a key span, markers removed, appended to out */
static void mft__key_sentences(const char *s, int n, const char *open, const char *close, char *out, int *len)
{
    int lo = (int)strlen(open), lc = (int)strlen(close), i = 0;
    while (i < n) {
        int e = i, key = 0;
        while (e < n && !(strchr(".!?", s[e]) && (e + 1 == n || s[e + 1] == ' ' || s[e + 1] == '\n'))) e++;
        if (e < n) e++; /* the sentence ends with its mark */
        for (int j = i; j + lo <= e; j++) key |= !memcmp(s + j, open, (size_t)lo);
        if (key) {
            int j = i;
            while (j < e && (s[j] == ' ' || s[j] == '\n')) j++;
            if (*len) out[(*len)++] = ' ';
            while (j < e) {
                if (j + lo <= e && !memcmp(s + j, open, (size_t)lo))
                    j += lo;
                else if (j + lc <= e && !memcmp(s + j, close, (size_t)lc))
                    j += lc;
                else
                    out[(*len)++] = s[j++];
            }
        }
        i = e;
    }
}

MFT_API mft_status mft_record_context(const char *json, int len, const mft_data_opts *o, char **out, int *out_len,
                                      mft_error *err)
{
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!json || !o || !out) return mft__fail(err, MFT_ERR_ARG, "mft_record_context: NULL argument");
    mft_json *j = mft_json_parse(json, len, err);
    if (!j) return err ? err->status : MFT_ERR_FORMAT;
    int root = mft_json_root(j), n = 0, cl;
    const char *c = mft_json_str(j, mft_json_get(j, root, "context"), &cl);
    /* room: the context, or every string of the record (sentences are never longer) */
    size_t cap = (size_t)(len < 0 ? (int)strlen(json) : len) + 2;
    char *buf = (char *)MFT_MALLOC(cap);
    if (!buf) {
        mft_json_free(j);
        return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    }
    const char *ko = o->key_open ? o->key_open : "{{key}}", *kc = o->key_close ? o->key_close : "{{/key}}";
    if (c) {
        memcpy(buf, c, (size_t)cl);
        n = cl;
    } else {
        const char *keys[2] = { "text", "completion" };
        for (int i = 0; i < 2; i++) {
            const char *s = mft_json_str(j, mft_json_get(j, root, keys[i]), &cl);
            if (s) mft__key_sentences(s, cl, ko, kc, buf, &n);
        }
        int msgs = mft_json_get(j, root, "messages");
        for (int mi = msgs >= 0 ? mft_json_first(j, msgs) : -1; mi >= 0; mi = mft_json_next(j, mi)) {
            int rl = 0;
            const char *role = mft_json_str(j, mft_json_get(j, mi, "role"), &rl);
            const char *s = mft_json_str(j, mft_json_get(j, mi, "content"), &cl);
            if (role && s && rl == 9 && !memcmp(role, "assistant", 9)) mft__key_sentences(s, cl, ko, kc, buf, &n);
        }
    }
    buf[n] = 0;
    mft_json_free(j);
    *out = buf;
    if (out_len) *out_len = n;
    return mft__ok(err);
}

/* One epoch: the examples still to learn, and after them replay examples n_facts.. drawn in
   turn from a cycle through the replay set that is reshuffled at the start of each pass, so
   every replay example comes round once before any comes twice. */
MFT_API int mft_epoch_order(int *order, const unsigned char *learned, int n_facts, int n_replay, float ratio,
                            uint64_t *rng, long *replay_next, int *replay_perm)
{
    int n = 0;
    for (int i = 0; i < n_facts; i++)
        if (!learned || !learned[i]) order[n++] = i;
    int facts = n;
    if (n_replay > 0 && ratio > 0.0f && ratio < 1.0f && facts) {
        int want = (int)((double)ratio / (1.0 - ratio) * facts + 0.5);
        for (int r = 0; r < want; r++, (*replay_next)++) {
            if (*replay_next % n_replay == 0) {
                for (int i = 0; i < n_replay; i++) replay_perm[i] = i;
                mft_shuffle(replay_perm, n_replay, rng);
            }
            order[n++] = n_facts + replay_perm[*replay_next % n_replay];
        }
    }
    mft_shuffle(order, n, rng);
    return n;
}

/* ============================================================================================
   >>metrics
   The pieces of the forgetting measurements: the model's NLL as a mask filter, loops at the
   end of a generation, multiple choice as lm-evaluation-harness scores it, and fact recall.
   (KL between two models' distributions is mft_kl_logits, in xent.)
   ============================================================================================ */
/* A loop at the end of a generation: the shortest period p (1..32) such that the last
   max(3p, 12) tokens repeat with period p. */
MFT_API int mft_tail_loop(const int *ids, int n)
{
    for (int p = 1; p <= 32; p++) {
        int L = 3 * p > 12 ? 3 * p : 12, ok = n >= L;
        for (int i = n - L + p; ok && i < n; i++) ok = ids[i] == ids[i - p];
        if (ok) return p;
    }
    return 0;
}

/* surprise:TAU keeps the selected tokens the model finds surprising (NLL > TAU nats);
   known:TAU, the complement (Wu et al. 2025's low-perplexity policy). End tokens stay. */
MFT_API mft_status mft_mask_by_nll(mft_model *m, mft_example *ex, float tau, int keep_surprising, mft_error *err)
{
    if (!m || !ex || !ex->ids) return mft__fail(err, MFT_ERR_ARG, "NULL argument");
    if (ex->n < 2) return mft__ok(err);
    int n = ex->n > m->T + 1 ? m->T + 1 : ex->n;
    float *nll = (float *)MFT_MALLOC((size_t)n * sizeof(float));
    if (!nll) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    mft_status s = mft_token_nll(m, ex->ids, n, nll, err);
    if (!s) {
        ex->n_trained = 0;
        for (int t = 0; t + 1 < ex->n; t++) {
            if (ex->w[t] > 0 && ex->tag[t + 1] != MFT_TAG_END) {
                int surprising = t + 1 < n && nll[t] > tau;
                if (surprising != keep_surprising) {
                    ex->w[t] = 0;
                    ex->tag[t + 1] = 1;
                }
            }
            ex->n_trained += ex->w[t] > 0;
        }
    }
    MFT_FREE(nll);
    return s;
}


/* the log-likelihood ids[from..n) gets after ids[0..from) */
static mft_status mft__loglik(mft_model *m, const int *ids, int n, int from, double *ll, mft_error *err)
{
    float *nll = (float *)MFT_MALLOC((size_t)n * sizeof(float));
    if (!nll) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    mft_status s = mft_token_nll(m, ids, n, nll, err);
    *ll = 0.0;
    for (int t = from - 1; !s && t < n - 1; t++) *ll -= nll[t];
    MFT_FREE(nll);
    return s;
}

MFT_API mft_status mft_score_choices(mft_model *m, const mft_tokenizer *t, const char *query, int qlen,
                                     const char *const *choices, const int *choice_len, int n_choices, double *ll,
                                     int *chars, mft_error *err)
{
    if (!m || !t || !query || !choices || !choice_len || !ll || n_choices < 1 || qlen < 0)
        return mft__fail(err, MFT_ERR_ARG, "mft_score_choices: bad argument");
    int nq, n, *ids = NULL;
    size_t longest = 0;
    for (int c = 0; c < n_choices; c++) {
        if (!choices[c] || choice_len[c] < 0) return mft__fail(err, MFT_ERR_ARG, "choice %d is NULL", c);
        if ((size_t)choice_len[c] > longest) longest = (size_t)choice_len[c];
    }
    char *buf = (char *)MFT_MALLOC((size_t)qlen + longest + 1);
    if (!buf) return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    memcpy(buf, query, (size_t)qlen);
    mft_status s = mft_encode(t, buf, qlen, MFT_BOS, NULL, 0, &nq, NULL, err);
    if (!s && nq == 0)
        s = mft__fail(err, MFT_ERR_ARG,
                      "the query is empty and the tokenizer adds no BOS: nothing to condition the choices on");
    for (int c = 0; c < n_choices && !s; c++) {
        /* as lm-evaluation-harness does: query + choice encoded whole; the choice's tokens are
           what follows the query's own encoding */
        memcpy(buf + qlen, choices[c], (size_t)choice_len[c]);
        s = mft_encode(t, buf, qlen + choice_len[c], MFT_BOS, NULL, 0, &n, NULL, err);
        if (s) break;
        if (n <= nq) {
            s = mft__fail(err, MFT_ERR_ARG, "choice %d adds no token to the query", c);
            break;
        }
        if (n - 1 > m->T) {
            s = mft__fail(err, MFT_ERR_ARG, "query + choice %d is %d tokens, more than the model's %d + 1", c, n, m->T);
            break;
        }
        MFT_FREE(ids);
        if (!(ids = (int *)MFT_MALLOC((size_t)n * sizeof(int)))) {
            s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
            break;
        }
        s = mft_encode(t, buf, qlen + choice_len[c], MFT_BOS, ids, n, &n, NULL, err);
        if (!s) s = mft__loglik(m, ids, n, nq, &ll[c], err);
        if (chars) {
            chars[c] = 0;
            for (int i = 0; i < choice_len[c]; i++) chars[c] += ((unsigned char)choices[c][i] & 0xC0) != 0x80;
        }
    }
    MFT_FREE(ids);
    MFT_FREE(buf);
    return s ? s : mft__ok(err);
}

MFT_API mft_status mft_score_fact(mft_model *m, const mft_tokenizer *t, const mft_data_opts *o, const char *prompt,
                                  int plen, const char *answer, int alen, const char *where, int line, int max_new,
                                  double *logprob, int *recalled, char *text, int cap, int *text_len, mft_error *err)
{
    if (logprob) *logprob = 0.0;
    if (!where) where = "fact";
    if (recalled) *recalled = 0;
    if (text_len) *text_len = 0;
    if (!m || !t || !o || !prompt || !answer || plen < 0 || alen < 0 || max_new < 1 || cap < 0 || (cap > 0 && !text))
        return mft__fail(err, MFT_ERR_ARG, "mft_score_fact: bad argument");
    /* the example {"prompt", "completion"} as training builds it, every token of the answer in
       its turn and the end token tagged */
    mft__sb rec = { NULL, 0, 0, 0, 1, 0 };
    mft__sb_put(&rec, "{\"prompt\": ", -1);
    mft__sb_json(&rec, prompt, plen);
    mft__sb_put(&rec, ", \"completion\": ", -1);
    mft__sb_json(&rec, answer, alen);
    mft__sb_put(&rec, "}", 1);
    if (rec.nomem) {
        MFT_FREE(rec.p);
        return mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    }
    mft_data_opts fo = *o;
    fo.policy = MFT_POLICY_ALL;
    mft_example ex;
    int *gen = NULL, ng = 0, ended, np = 0, k = 0;
    mft_status s = mft_example_from_json(t, &fo, rec.p, rec.n, where, line, &ex, err);
    MFT_FREE(rec.p);
    if (s) return s;
    while (np < ex.n && ex.tag[np] == MFT_TAG_CONTEXT) np++;
    if (np == 0)
        s = mft__errat(err, MFT_ERR_ARG, where, line, 0,
                       "the prompt is empty and the tokenizer adds no BOS: nothing to continue");
    /* mean log-probability of the answer's tokens (not the end token) after the prompt */
    float *nll = s ? NULL : (float *)MFT_MALLOC((size_t)ex.n * sizeof(float));
    if (!s && !nll) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    if (!s) s = mft_token_nll(m, ex.ids, ex.n, nll, err);
    double lp = 0.0;
    for (int i = np; !s && i < ex.n; i++)
        if (ex.tag[i] != MFT_TAG_END) {
            lp -= nll[i - 1];
            k++;
        }
    if (!s && !k)
        s = mft__errat(err, MFT_ERR_ARG, where, line, 0,
                       "no token of the answer is left to score (an empty answer, or a prompt that fills "
                       "the context)");
    /* the greedy continuation of the prompt: does it say the answer? */
    if (!s && !(gen = (int *)MFT_MALLOC((size_t)max_new * sizeof(int))))
        s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    if (!s) {
        mft_gen_opts go = mft_gen_opts_default();
        go.max_new = max_new;
        go.stop[0] = mft_end_token(t, &fo);
        s = mft_generate(m, ex.ids, np, &go, NULL, gen, max_new, &ng, &ended, err);
    }
    char *said = NULL;
    int sl = 0;
    if (!s) s = mft_decode_ids(t, gen, ng, 0, NULL, 0, &sl, err);
    if (!s && !(said = (char *)MFT_MALLOC((size_t)sl + 1))) s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
    if (!s) s = mft_decode_ids(t, gen, ng, 0, said, sl + 1, &sl, err);
    if (!s) {
        int ab = 0, ae = alen;
        while (ab < ae && (answer[ab] == ' ' || answer[ab] == '\n')) ab++;
        while (ae > ab && (answer[ae - 1] == ' ' || answer[ae - 1] == '\n')) ae--;
        char *want = (char *)MFT_MALLOC((size_t)(ae - ab) + 1);
        if (!want) {
            s = mft__fail(err, MFT_ERR_NOMEM, "out of memory");
        } else {
            memcpy(want, answer + ab, (size_t)(ae - ab));
            want[ae - ab] = 0;
            /* recalled: the answer as whole words ("Fernwickly" does not recall "Fernwick") */
            int hit = 0;
            for (const char *q = said; ae > ab && !hit && (q = strstr(q, want)); q++) {
                unsigned char before = q > said ? (unsigned char)q[-1] : ' ', after = (unsigned char)q[ae - ab];
                hit = !mft__wordy(before) && !mft__wordy(after);
            }
            if (recalled) *recalled = hit;
            if (logprob) *logprob = lp / k;
            if (text_len) *text_len = sl;
            if (cap > 0) {
                int w = sl < cap ? sl : cap - 1;
                memcpy(text, said, (size_t)w);
                text[w] = 0;
            }
            MFT_FREE(want);
        }
    }
    MFT_FREE(said);
    MFT_FREE(gen);
    MFT_FREE(nll);
    mft_example_free(&ex);
    return s ? s : mft__ok(err);
}

#endif /* MFT_NO_TEXT */

/* ============================================================================================
   PART III: APPENDIX
   >>appendix
   ============================================================================================ */
#ifndef MFT_NO_TEXT
/* clang-format off */
/* BEGIN GENERATED TABLES: written by tools/gen_unicode.py from Debian's unicode-data (Unicode 15.0.0); do not edit */
/* Unicode 15.0.0 data for the character classes and the NFC normalization of the
   tokenizers: only tables, and the function mft__uc_tab() that points to them (struct
   mft__uc_tables, with the code that reads them, tells what each one holds). Generated by
   tools/gen_unicode.py; never edit, regenerate (Debian: apt-get install unicode-data):
       python3 tools/gen_unicode.py --inplace maskft.c

   Derived from the Unicode Character Database 15.0.0 (UnicodeData.txt, PropList.txt,
   CompositionExclusions.txt, DerivedNormalizationProps.txt) as packaged by Debian's
   unicode-data. The data has been modified: it is re-encoded into these compact lookup
   tables (character classes, canonical combining classes, decompositions, compositions).
   It is covered by the Unicode license, whose notice follows.

   COPYRIGHT AND PERMISSION NOTICE

   Copyright (c) 1991-2005 Unicode, Inc. All rights reserved.
   Distributed under the Terms of Use in http://www.unicode.org/copyright.html.

   Permission is hereby granted, free of charge, to any person obtaining a copy
   of the Unicode data files and any associated documentation (the "Data Files")
   or Unicode software and any associated documentation (the "Software") to deal
   in the Data Files or Software without restriction, including without limitation
   the rights to use, copy, modify, merge, publish, distribute, and/or sell copies
   of the Data Files or Software, and to permit persons to whom the Data Files
   or Software are furnished to do so, provided that (a) the above copyright notice(s)
   and this permission notice appear with all copies of the Data Files or Software,
   (b) both the above copyright notice(s) and this permission notice appear
   in associated documentation, and (c) there is clear notice in each modified
   Data File or in the Software as well as in the documentation associated with
   the Data File(s) or Software that the data or software has been modified.

   THE DATA FILES AND SOFTWARE ARE PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
   EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
   FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT OF THIRD PARTY RIGHTS.
   IN NO EVENT SHALL THE COPYRIGHT HOLDER OR HOLDERS INCLUDED IN THIS NOTICE BE LIABLE
   FOR ANY CLAIM, OR ANY SPECIAL INDIRECT OR CONSEQUENTIAL DAMAGES, OR ANY DAMAGES
   WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF
   CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION
   WITH THE USE OR PERFORMANCE OF THE DATA FILES OR SOFTWARE.

   Except as contained in this notice, the name of a copyright holder shall not be used
   in advertising or otherwise to promote the sale, use or other dealings in these
   Data Files or Software without prior written authorization of the copyright holder. */

/* class trie, top level: 449 block ids of 1 digit(s) */
static const char mft__uc_cls_t0[][65] = {
"12345678898888888888:;8888<0000=>\?@ABCD0E0000F88GH000IJK0LMNOPQR",
"88888888888888888888S8TU8V888W0X88Y8Z000000000000000000000000000",
"0000000000000000000000000000000000000000000000000000000000000000",
"0000000000000000000000000000000000000000000000000000000000000000",
"0000000000000000000000000000000000000000000000000000000000000000",
"0000000000000000000000000000000000000000000000000000000000000000",
"0000000000000000000000000000000000000000000000000000000000000000",
"[000000000000000000000000000000000000000000000000000000000000000"
};

/* class trie, level 1: 44 blocks of 16 block ids of 2 digit(s) */
static const char mft__uc_cls_t1[][65] = {
"000000000000000000000000000000000102030303040506030708090:0;0<0=",
"0>0\?0@0A0B0C0D0E0F0G0H0I0J0K0L0M0N0O03030P0Q0R0S0T0303030U0V0W0X",
"0Y0Z0[0\\0]0^0_0`0a0b030c03030d0e0f0g0h0i00000j000k0l000000000m0n",
"0000000o00000000031011121300000014151617181900000303030303030303",
"0303030303030303030303030303030303030303030303030303031:03030303",
"0303030303030303031;03031<1=1>1\?1@1A1B1C1D1E1F1G0303030303030303",
"0303030303030303030303030303031H000003031I1J1K1L03031M1N1O1P1Q1R",
"1S1T1U1V001W1X1Y031Z1[1\\03031]1^1_1`1a1b1c1d1e1f1g1h1i001j1k1l1m",
"1n1o2021222324002526002728292:002;2<2=2>2\?2@2A002B2C2D2E002F2G2H",
"030303030303032I2J032K00000000000000000000000000000000000000002L",
"03030303030303032M000000000000000000000000000000030303032N000000",
"030303032O2P2Q2R000000002S2T2U2V0303030303030303030303030303032W",
"0303030303030303032X2Y00000000000000000000000000000000000000002Z",
"03032[03032\\0000000000000000000000000000000000002]2^000000000000",
"00000000000000000000000000002_0000002`2a2b2c2d002e2f2g03032h2i2j",
"000000002k2l00000000000000002m002n2o3000003100000032000000000033",
"033435000000000036373800393:000000003;00000000000000000000000000",
"000000000000003<0000000000000000030303030303030303030303033=0303",
"03030303030303030303030303033>033\?030303030303030303030303030303",
"030303030303030303030303033@0303030303030303033A0000000000000000",
"030303033B00000000000000000000000303030303033C030303030303030303",
"030303030303033D000000000000000000003E3F000000000000000000000000"
};

/* class trie, level 2: 215 blocks of 8 leaf block ids of 2 digit(s) */
static const char mft__uc_cls_t2[][65] = {
"000000000000000001000203040506070800090:0;0<0;0<0;0;0;0;0;0;0;0;",
"0;0;0;0;0=0>0\?000@0@0@0@0A0@0@0B0C0;0D0;0;0;0;0E0F0;0;0;0;0;0;0;",
"0;0;0;060;0G0;0;0H0I0@0J0K0;0L0M0N0O0;0;0P0@0Q0R0;0;0;0;0;0S0T0U",
"0V0W0;0@0X0;0;0;0;0;0Y0Z0[0;0P0\\0;0]0^0_0;0`0a0;0b0c0;0;0d0@0e0@",
"0f0;0;0g0h0i0j040k0l0m0n0o101112130l0m1415161718190D0m1:1;1<111=",
"1>0l0m1\?1@1A111B1C1D1E1F1G1H171I1J1K0m1L1M1N111O1P1K0m1Q1R1S111T",
"1U1K0;1V1W1X111Y1Z1[0;1\\1]1^171_060;0;1`1a1b00001c0;1d1e1f1g0000",
"1h1i1j1k1l0;1m1n1o202122232400000;0;25262728292:2;2<0;0;2=0;0;2>",
"0;0;0;0;2\?2@0;0;2\?0;0;2A2B0<0;0;0;2B0;0;0;2C2D2E0;000;0;0;0;0;2F",
"040;0;0;0;0;0;0;0;0;0;0;0;0;2G0;2H2I0;0;0;0;2J2K0;2L0;2M0;2N2O2P",
"0;0;0;2Q212R2S2S2T2S0;0;0;0;0;2U2V0;2W0;0;0;0;2X0;2Y2Z2[2\\0;2]2^",
"0;0;2_0;2`2a00000;2b0;0;0;2c2d2e2S2S2f2g2h0000002i0;0;2j2k272l2m",
"2n0;2o0[0;0;30310;0;2Q32330[0;342U0;0;35363738390;0;0;0;0@0@0@0@",
"0;2F0;0;2F3:0;2]0;0;0;3;3<3=1m3<3>3\?3@3\?3A3B003C3D1m0000003E3F3G",
"3H3I3J3K3L1j1j1j3M000000000000003N003O00000000000000000000001j1j",
"1j3P000000003Q1j0000000000003R3S1j3T00003U003V003W3X0000003N003Y",
"0;0;0;0;0;0;3Z3[0;0;2=0;0;0;3\\3]0;3^3_3_3_3_0@0@3\?3\?3`3\?3\?3a0000",
"3b3c3d3e060;0;0;0;3f040;0;0;0;2>3g0;0;060;0;0;0;2Y3h0;0;0000000;",
"00002S003i3j00002S00003j000000000;0;0;0;000000001m000000000;0;34",
"3k0;3l000;0;3m3n0;3o0;0;0;0;40410042430;0;0;0;0;440;0;0;0a450043",
"460;47480;0;0;494:0;0;2Q4;2S0@4<0[0;4=0;4>4\?0;1m0f0;0;4@4A4B4C4D",
"0;0;4E4F4G4H0;4I0;0;0;4J4K4L4M4N4O4P3_0;0;4Q2`0;0;0;0;0;0;0;4R2S",
"0;0;4S0;4T0;0;2_0;0;0;0;0;0;2]0;0;0;0;0;0;2`00003^4U0m4V4W0;0;0;",
"0;0;0;0>004X0;0;0;0;0;34000;0;0;0;430;0;4Y00002_214Z0@3\?3\?4[4\\4]",
"0;0;0;0;0;0;0;1m4^030405064_4`0;0;0;0;2Y4a4b00004c0;0<4d2]2]0000",
"0;0;0;0;0;0;0;0a4e1j1j3T1j1j1j4f4g0000000000004h0;1m0;0;0;1<4i3P",
"0;0;4j0;4k0;0;4l0;4m0;0;4n4o00000;2]2S0;0;4n0;2_0;0;4Y0;0;0;504Q",
"4Q510D52000000000;0;0;3^0;2X4Y000E0;0;5300000000540;0;550;560;57",
"0;2Y580000000;590;5:0;5;000000000;0;0;5<1j5=1j1j5>5\?0;5@4f3X0;5A",
"0;5B00001l0;5C5D0;0;0;5E0;5F0;5G0;5H5I00000000000;0;0;0;2U000000",
"0;0;0;5J0;0;0;5K0;0;5L2S000000000000000000001j5M0;0;5N0>0000005O",
"0;5B5P0;5Q5R000;5S00000;5T000;3^2n0;0;5U5V5=1j5W2n0;0;5X5Y0;2U2S",
"5Z0;5[5\\5]0;0;5^2n0;0;5_5`5a3j5b0;0D5c5d5e0000005f5g5h0;0;5i5j2S",
"5k0l0m5l1@5m5n5o0;0;0;6061620>000;0;0;63642S00000;0;3m6566670000",
"0;0;0;68692S6:000;0;4M6;2S0000000;6<6=6>3^0000000;0;5c6\?00000000",
"00000;0;0;0;1j6@6A6B0;6C6D2S000000006E0;0;6F6G006H0;0;6I6J6K0;0;",
"6L6M6N0;0;0;0;2U4Z000000000000000m0;5i6O6P1j2E6Q0;6R204F00000000",
"6S0;0;6T6U2S6V0;6W6X2S00000000000000000000000;6Y6Z1K0;6[6\\2S0000",
"0000001<1j5b006]0;2`0000000000001j1j1j1j1j1j5M6^0;0;0;0;4S000000",
"000;0;0;0;0;0;6_0;0;0;006`6a00000;0;0;0;3^0000000;0;0;2U0;2Y4B0;",
"0;0;0;2Y2S0;2]6b0;0;0;6c6d6e6f6g0;00000000000000000000000;0;0;0;",
"1j6h0000000000000;0;0;0;6i6j21216k2n000000006l6m0;0;0;0;0;0;0;4Y",
"0;0;0;0;0;2X00002U00000000000000000000000000006n0;0;5J6o0070710;",
"0;0;0;0;0;0;0;2_0;0;0;0;0;0;0a1m2U72000000000000212173214F000000",
"000000000000747576007700000000000000000078000000000000001j3T1j3T",
"0000000000001j4f0;0;0;0;0;4]0;0;0;2O797:7;0;0;0;7<7=0;7>7\?1K0;0;",
"0;0;7@0;1K4Q0;4Q0;4]0;4]2Y0;2Y0;0m0;0m0;7A1j1j1j2121217B2121227C",
"7D7E7F00000000000;2Y7G00000000007H7I7J0;0;0;2]007K00000000000000",
"0;0;1m7L7M000000000;7N000;0;7O2S00000000000;7O2S0000000000007P2Y",
"0;0;0;0;7Q7R00000;0;0;0;7S4B0000000000000000003j1j1j7T7U00000000",
"3j1j7V7W000000007;0;7X7Y7Z7[7\\7]7^2_7_2_000000002E00000000000000",
"000000000000002S0;0;0;0;0;0;00000;0;0;2`0;0;0;0;0;2]0;0;0;0;0;0;",
"0;0;0>0;0;0;0;0;0;0;0;0;0;0;1<000;2]0000000000000;0;0;0;0a0;0;0;",
"0;0;0;0000000000212121212121212121212121212121000000000000000000"
};

/* class trie, leaves: 496 blocks of 16 code points, 2 per digit */
static const char mft__uc_cls_leaf[][65] = {
"000000000000HKK0[]X]]5]]BBBBB]0X=999999999999Y]X8999999999999YX0",
"00H00000[00X0Y000B8]@YBZ9999999999919999900999999000000099100011",
"fffffffffffffffV9919099=000Y911998999999999899999`ffT99999918]]]",
"9999Y500`ffffffffffffffee^fe0000999991089Y5000000000X5]0fffff^X]",
"99999affBBBBB]]9>999999999=fff6`ff>a6ff9BBBBB918]]]]]]]0a9999999",
"fffff689999TTTTT<0000000BBBBB999ff9X]1`0999ffaffffafaff0]]]]]]]5",
"9999af0599999100999989910000ffff99999ffff`ffffffTT99999999999T>T",
"TTTTTTdTafVT99999T]BBBBBQT8999181899999999991999110990>VTT4P4Pd1",
"000`00989T0BBBBB90BBB0Y6PT8991081981906TT40P4Pd0P0008911000BBBBB",
"T9Q50000PT899998198990>TTTTPTPd01000000050008TTTPT899918198990>V",
"TT4P4Pd000Pf00988BBB00000<89910919908119081091099999900VT40T4Td0",
"100`0000B2000000TT<9991919999999999990>TTT4T4Td000`69180000XBBB2",
"QT=99919998990>TTV4T4Td000`600818Q000000TT99991999999a>VTT4T4Td1",
"009aBBB:BBBB2999PT89999999910999989999809991060`TT44TTTd0T500000",
"Q9TTf600999QffT\\BBBBB]008119919999889999Q9TTfV<09911ffT4BBBBB099",
"10]]]]]]]550f000BBBBBBBBBB```]]T9999899999999910`VVTTffTVf^f99QT",
"TTTTPTTTTTTTTTTTTTTTTT4000060000]]50X50099999QTVTTTddVT<BBBBB]]]",
"999TT99T<T<QTTT9QT<999999TTTTTdQBBBBBTT09998008099999Y9999991990",
"999119901990999119909999999991`f]]]]EBBBBBBBBB20999099909999991=",
";999999999999Y5099999Y]B:99910009Tf000089T^500009T00000099999919",
"1T00000099TTTTTTTV]=]5a0BBBBB000]]]]]UTP9999100099Q<99999999a100",
"9990000099999991TTTTTT00TTTTdf0000]BBBBB999999909910000099999900",
"99999000BBBBB200999aVT0]99QTTTT4VTTTTTTTTTdfff6`]]]=]]]0fffffffd",
"fffffff6TT<9999999fTTTTTTT>9991050000`ffff0000X5T<999999QTTTTfT9",
"999VTTTTTf0000]]TTTd0X]]BBBBB0899999999]99999189]]]]0000f^ffffff",
"Vfff>9a999>Qf10099998888991999110919991099099900KKKKK300]]]]]]]]",
"]]]]K00H]]X]]]]]]X]]]]]M:0BBB0X=BBBBB0X5ffffffVTdTdfffff60000000",
"0108099999808990001119989999909900899001B:ABB0000000]]000000X500",
"BBBBBB0000000BBB0000]]]]]]]BBBBBBB00000000X50000000]]]]]0X]]]]]]",
"]]]]5000000000]09910089af900X]E]999900085000000`9991000099919991",
"]]]]]]]=0]]]]]]0[]8A]]]]]0]]]]]]@BBBBfff=990B:Y09991`68900899999",
"0BB000000000BBBB@BBBBBBB999999Y]BBBBB9009999999aT\\fffff=9999999f",
"999BBBBBf]]]0000000899990999999999991899988990009<9>9Q999QTT0060",
"BBB0000099]]0000T9999999TTV0000]f999]==Q999TTdf]999QTTTTTd00000X",
"9aTTTTTT^]]]]]]8BBBBB00]99Q99999BBBBB9919999QTTTTTT400009Q9999T0",
"BBBBB0]]99910QT9>f>a>99fa10000000000089]99999QTT]9Q6000089918991",
"89910000999991999QTTT\\d099000000999108990899008>9991991198199999",
"0899999999990000]]]]]000]5]]]]]]]X005]0099199999X]X]]5]]99999YXX",
"]]]9999909990999099909109999998999999198]50@BBBBBBBB200000000B00",
"000000`0FBBBBBBBBB000089A9999200999ff6009999999X99009999EBB00000",
"9900000X9198999998999810199991009990199999981018999XBBBB9991@BBB",
"000@BBBB91900@BB999BBB0X9999900X999900B90BBBBBBBQTP400dd99898999",
"9990f60`999999AZ999999AB99a60@BB]]]500009990X]]]9990BBBB9100BBBB",
"9000X]500000@BBB9100000091000BBB99ff0000BBBBBBB299999`^0000000`f",
"BBB:0000999fffffFBZ]]0009ff]]00099ABBB009999TTTTTTT^]]]0>Q<0000`",
"TTTTd^5]]4000000f>999999999aTTTTTd6BBBBB]]Q<00009a]100009QTTTTTT",
">9Y]UV\\TBBBBBYY]BB200000999999TTTTdV]]]<Q00000009991199899999998",
"9999Y0009999999QTTTTd600TT89991819899`>V100`00899T0fff60ff600000",
"99QTTTTTTVT>9Y]]BBBBB]X>VTTTTVdTTf9=0000TTT0TTTd^]]]]]]]]]]]99T0",
"TTTTTTTd\\]100000]]]]]]50TTTfY000999991PTTTTTTd00BBBBBB]5TTTTd^00",
"B20000089991809999819999VTTP4Pd><d]5000099990999QTTT0TTT>=400000",
"QTTTT<999QVTTQT\\]]]e0000QTTTTT9999999TTTTTTTd]=]]5000000TTT4TTTd",
"Y]]00000]99999990TTTTTTT99919899QTT404TPTVfQ00009998199999999TT4",
"TPTd10009QT\\5000TQ99999999TTT40Td^]]]]]]0000000X]]500000Y5000000",
"<99QTTTTTTT00000ff^00000fff^]]0099500000BBBBB@BBB899999999990089",
"BBBZ]5009999910PQTTTTTTTTTTT000P9=400000f00000009989998101000000",
"9180000000990000999990P^TTTTTTT000`ff0`ff6000`fff6`fff0000000ff0",
"0f60000001818919999998899989999999989189991999199999989199110999",
"999099999199990BTTT40PTT00P00000004X]]0000000PTTPTTTTTTT00899100",
"fff6ffffffff6`fff`6ff6000000000`fff>9990BBBBB00199999996999999ff",
"99919981991@BBBBfff6000099fff>00BBBBBB@B@B200000BBBBBBB@BBBBBBB0",
"8118899991998800010888898118888881189199919989119999989989899899"
};

/* the class of each ASCII character, as the character '0' + mask */
static const char mft__uc_ascii[129] =
    "00000000044444000000000000000000"
    "4@@@0@@@@@@0@@@@2222222222@@000@"
    "@11111111111111111111111111@@@0@"
    "011111111111111111111111111@0@00";

/* the 410 code-6 marks in runs: 3 digits first code point, 1 digit length - 1, 1 digit
   combining class code */
static const char mft__uc_ccc_run[][65] = {
"0<0Dc0<E0d0<F3^0<J0d0<K0\\0<L4^0<Q1Z0<S3^0<W1Z0<Y:^0<d410<i3^0<m7",
"c0=50g0=60c0=72^0=:2c0==1^0=@2c0=C3^0=G0c0=H0d0=I1^0=K0c0=L0e0=M",
"1f0=O0e0=P1f0=R0e0=S<c0B34c0FA0^0FB3c0FF0^0FG2c0FJ0_0FK0^0FL5c0F",
"R5^0FX1c0FZ0^0F[1c0F]0_0F^0b0F_0c0F`060Fa070Fb080Fc090Fd0:0Fe0;0",
"Ff0<0Fg0=0Fh0>0Fi1\?0Fk0@0Fl0A0Fm0B0Fo0C0G10D0G20E0G40c0G50^0G70>",
"0H@7c0HH0J0HI0K0HJ0L0I;0G0I<0H0I=0I0I>0J0I\?0K0I@0L0IA0M0IB0N0IC1",
"c0IE1^0IG4c0IL0^0IM1c0IO0^0I`0O0KF6c0KO3c0KS0^0KT0c0KW1c0KZ0^0K[",
"1c0K]0^0LA0P0L`0c0La0^0Lb1c0Ld0^0Le1c0Lg2^0Lj0c0Lk1^0Lm0c0Ln0^0L",
"o2c0M20^0M30c0M40^0M50c0M60^0M70c0M80^0M91c0O[6c0Ob0^0Oc0c0Om0^0",
"PF3c0PK8c0PU2c0PY4c0QI2^0RH0c0RI2^0RL3c0S:4c0S\?4^0SD=c0SS0^0ST1c",
"0SV0^0SW1c0SY0^0SZ2c0S]2^0S`0G0Sa0H0Sb0I0Sc2c0Sf0^0Sg1c0Si1^0Sk4",
"c0Tl030U=050UA0c0UB0^0UC1c0Vl030Vn000W=050WG000Wn0c0Xl030Y=050Zl",
"030[=050\\l030\\n000]=050]F100^n000_=050_G000`l030a=050aE0Q0aF0R0b",
"l030c2000c=050cE100dk150dn000e=050eG000g:050g\?000gO000hh1S0hj050",
"i83T0jh1U0jj050k83V0lH1^0le0^0lg0^0li0\\0ma0W0mb0X0md0Y0mj3X0n00X",
"0n21c0n4050n61c0o60^10^0010g0310i1512=0^1=M2c1LD151Ld051OB051OM0",
"c1RY0b1Ti0_1Tj0c1Tk0^1XG0c1XH0^1YP051Ye7c1Yo0^1Z`4c1Ze5^1Zk1c1Zm",
"0^1Zo1^1[11c1[31^1[54c1[:0^1[;3c1\\d031\\e001]4051][0c1]\\0^1]]6c1^",
"Z151_V031_b151`g031c@2c1cD011cE4^1cJ1c1cL3^1cP0c1cR611c]0^1cd0c1",
"ch1c1g01c1g20^1g36c1g:0^1g;1c1g=0f1g>0[1g\?0^1g@0Z1gATc1gf0d1gg1b",
"1gi0^1gj0]1gk0c1gl0e1gm0^1gn0c1go0^23@1c23B1123D3c23H2123K1c23Q0",
"c23U1123W0c23X0^23Y0c23Z1123\\3^23`0c2c_2c2eo052gPOc30Z0]30[0b30\\",
"0d30]0_30^1`32I14:I_0c:Id9c:JN1c:K`1c:P605:P\\05:S405:SPAc:T[2^:U",
"C05:Vc03:W005:Z`0c:Zb1c:Zd0^:Zg1c:Zn1c:[10c:[f05:_]05\?\\N0F\?hP6c\?",
"hW6^\?h^1c@7m0^@;P0^@=f4c@X=0^@X\?0c@Xh0c@Xi01@Xj0^@Xo05@[U0c@[V0^",
"@dT3c@j[1c@km2^@m61^@m82c@m;0^@m<0c@m=3^@n20c@n30^@n40c@n50^A160",
"5A1`05A1o05A2i05A2j03A402cA4W00A4c15A5c03A7005A7:03A8e05A8f03A;Y",
"03A;Z05A<k13A<n00A==05A=G00A=V6cA=`4cAA205AA603AAN0cAB`00ABj00AB",
"m00AC205AC303AF_00AFo05AG003AHo05AJf05AJg03AL[05APi05APj03AT`00A",
"Tm15AU303AWP05AXd05AY705AZI05A`o05Ae203Ae415AfG05Am115F[`41F\\`6c",
"Fo`12KbN01M5U1\\M5W21M5]0aM5^4\\M5k7^M654cM6:1^M6Z3cM922cN006cN08@",
"cN0K6cN0S1cN0V4cN2\?0cN4`6cN:^0cN;\\3cNC\\1dNC^0^NC_0cNS@6^NU45cNU:",
"0300000000000000000000000000000000000000000000000000000000000000"
};

/* combining class code -> ccc (code 0: a second starter, ccc 0) */
static const unsigned char mft__uc_ccc_val[56] = {
0,1,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,84,
91,103,107,118,122,129,130,132,202,214,216,218,220,222,224,226,228,230,232,233,234,240
};

/* decomposition bit trie, top level: 191 block ids of 1 digit(s) */
static const char mft__uc_dec_t0[][65] = {
"123450678090:000000000000000000000000000000;;;;;;;;;;<00000000=0",
"0000>\?@000000000000000000000000000000000000000000000A00000000000",
"00000000000000000000000000000000000000000000000000000000000000B0"
};

/* decomposition bit trie, level 1: 19 blocks of 8 block ids of 1 digit(s) */
static const char mft__uc_dec_t1[][65] = {
"000000000123405678009:0000;<=0>\?@ABC00DEF0000000000000G00000HIJK",
"L0MNOPQ000000R00ST000000HHHHHHHHHHHHHHHU00HHVWX00YZ000[00\\0]0000",
"00^0000000_`0000HHHHa0000000000000000000000000000000000000000000"
};

/* decomposition bit trie, level 2: 50 blocks of 4 leaf block ids of 2 digit(s) */
static const char mft__uc_dec_t2[][65] = {
"000000000000010203040506000708090:0;000000000<0=0>0\?0@000A0B0C0D",
"00000E0F000G000000000H00000I0J0000000K00000L0M0000000N000O000P00",
"00000Q0000000R0000000P0000000S0000000T0U0V0W0000000X00000Y0Z0[00",
"0\\0\\0\\0\\0]0\\0\\0^0_0\\0`0a0\\0b0c0d0e000000000f00000g0h0i000j0k0l0m",
"0n0o00100011000000001200000013140=1314150\\16000017180\\190\\0\\0^00",
"1:1;1<001=1>0000001\?000000001@00001A0000000g0000001B000000001C1D",
"001E1F000a000000000000000000000000000000000000000000000000000000"
};

/* decomposition bit trie, leaves: 87 blocks of 32 code points, 4 per digit */
static const char mft__uc_dec_leaf[][65] = {
"00000000\?;\?\?>7>3\?;\?\?>7>;\?\?\?\?<\?\?\?\?3\?\?1\?>78\?1\?3\?\?\?\?3\?\?\?\?\?730081000",
"000>\?\?\?=\?<\?\?13\?\?\?\?\?\?\?\?\?<0<\?\?\?000;1000000000001040>7=100000<\?1000",
"00<78100;8070020000000200000;80700000<006000\?<<\?<\?<\?\?330<7000000",
"5000800000202100000000\?\?0081000;00008400000000>40091000300000100",
"00<100000010000018=000000000004780024801002086102000800248010020",
"040000000455400000000082;0000000\?\?\?\?\?\?\?\?\?\?\?\?\?\?;0\?\?\?\?\?\?30\?\?\?\?\?3\?3",
"\?3\?3\?\?::\?\?\?\?\?\?\?3\?\?\?\?\?=\?5>=\?\?\?<\?>\?\?\?\?<=\?33000000004<00000000000<0",
"00040000000>0000012100000500000029200000500>333033300000000\?0000",
"\?0<300000060000000000001000555555:20;=6300000974\?0000000\?\?\?35>\?7",
"56<\?\?\?\?\?\?\?\?3\?\?\?\?0000000:00<\?\?7\?5;=\?700000000004100800000000<0000",
"0081000000000085000000100000000<\?10000000000008\?1000000000000000"
};

/* the 2061 decomposing code points in 231 runs of consecutive ones (and an end mark): 3 digits
   first code point, 2 digits index of its record */
static const char mft__uc_drun[][65] = {
"030000370603A0\?03I0E03P0J03W0P03a0Y03i0_03o0d04B1504X1I04d1R04i1",
"V0531\\05<1b05D1h05X2:06P2Q06_2S07=2U07N2e07V2k07d3607h3808N3\\08V",
"3^0=03l0=33n0=d400=n410>5420><480>>490>Z4<0\?:4C0\?C4H0@04J0@34L0@",
"74M0@<4N0@I4Q0@i4R0A@4S0AC4U0AG4V0AL4W0Af4Z0C14\\0C@4^0CF4b0CJ4d0",
"CR4j0CZ500Ch5<0HR5>0K05C0K25D0KC5E0TY5F0Ta5G0Td5H0UH5I0W;5Q0WL5S",
"0WO5U0Xc5V0Xf5W0YI5X0YN5[0]85\\0];5]0]L5_0^D5a0_:5b0a85e0c05f0c75",
"g0c:5i0e:5k0gJ5n0gL5o0m3620m=630mB640mG650mL660mY670mc680me690mh",
"6;0n16<0nC6=0nM6>0nR6\?0nW6@0n\\6A0ni6B10V6C1\\66D1\\86E1\\:6F1\\<6G1\\",
">6H1\\B6I1\\k6J1\\m6K1]06L1]36N1h06O1jK8i1jP8j1l0:D1lH:Z1lP:`1m8;F1",
"m@;L1mI;T1mK;U1mM;V1mO;W1n0<61nf<k1nn=21o1=31o6=71oF=E1oM=K1ob=^",
"1of=a200=i24V=k24Z=l26J=n26^>027=>1284>4289>528<>628T>728V>8291>",
"9294>:297>;299><29P>=29R>>29]>\?29d>D29h>F2:0>H2:4>J2:8>L2:\\>N2;P",
">R2;Z>V2<Y>Z2[L>\\31<>]31>>^31@>_31B>`31D>a31F>b31H>c31J>d31L>e31",
"N>f31P>g31R>h31U>i31W>j31Y>k31`>l31c>n31f\?031i\?231l\?432D\?632N\?73",
"2\\\?832^\?932`\?:32b\?;32d\?<32f\?=32h\?>32j\?\?32l\?@32n\?A330\?B332\?C335\?D",
"337\?E339\?F33@\?G33C\?I33F\?K33I\?M33L\?O33d\?Q33g\?R33n\?V\?T0\?W\?X@Ce\?XBC",
"f\?XECg\?XPD1\?XRD2\?XUD3\?XZD5\?Y`E9\?\\MFc\?\\OFd\?\\ZFe\?\\hG2\?\\nG7\?]0G8\?]3",
"G:\?]6G<A2JGEA2LGFA2[GGA4^GHA=;GJABkGLABnGNAFjGOAThGQM5NGRM6kGY_P",
"0G_oooP=00000000000000000000000000000000000000000000000000000000"
};

/* their decompositions, 4 digits each: v < 2^18 a singleton, mapping to v; else v = (j + 2) *
   2^17 + a, the pair a, mft__uc_snd[j] */
static const char mft__uc_drec[][65] = {
"10111P1120112P114P115P11;P1310151P1520154P1510191P1920194P192P1>",
"101\?1P1\?201\?2P1\?4P1\?101E1P1E201E4P1E1P1I101Q1P1Q201Q2P1Q4P1Q5P1Q",
";P1S101U1P1U201U4P1U101Y1P1Y201Y4P1Y2P1^101_1P1_201_2P1_4P1_101e",
"1P1e201e4P1e1P1i4P1i3011301Q3P113P1Q<011<01Q1P131P1S2013201S4013",
"401S6P136P1S6P146P1T3015301U3P153P1U4015401U<015<01U6P156P1U2017",
"201W3P173P1W4017401W;P17;P1W2018201X2P192P1Y3019301Y3P193P1Y<019",
"<01Y4019201:201Z;P1;;P1[1P1<1P1\\;P1<;P1\\6P1<6P1\\1P1>1P1^;P1>;P1^",
"6P1>6P1^301\?301_3P1\?3P1_601\?601_1P1B1P1b;P1B;P1b6P1B6P1b1P1C1P1c",
"201C201c;P1C;P1c6P1C6P1c;P1D;P1d6P1D6P1d2P1E2P1e301E301e3P1E3P1e",
"5P1E5P1e601E601e<01E<01e201G201g201I201i4P1I1P1J1P1j401J401j6P1J",
"6P1j901\?901_901E901e6P116P1Q6P196P1Y6P1\?6P1_6P1E6P1e303L303l1P3L",
"1P3l6P3L6P3l103L103l3034303T308V308W3036303V6P176P1W6P1;6P1[<01\?",
"<01_307Z307[6P6g6P:B6P1Z1P171P1W101>101^1P351P3U1P361P3V1P3H1P3h",
"7011701Q7P117P1Q7015701U7P157P1U7019701Y7P197P1Y701\?701_7P1\?7P1_",
"701B701b7P1B7P1b701E701e7P1E7P1e;01C;01c;01D;01d6P186P1X4011401Q",
";P15;P1U303F303f303E303e401\?401_308^308_301I301i00<000<100<CPP<8",
"00:i000k1P2X1P>A002g1P>E1P>G1P>I1P>O1P>U1P>Y1P\?:4P>I4P>U1P>a1P>e",
"1P>g1P>i1P\?;4P>i4P\?51P>o1P\?51P\?91P\?B4P\?B10@E4P@E1P@C4P@61P@J10@H",
"3P@S3P@H3P@h10@e4P@e1P@c4PAF1P@j10@h3PA370Ad70Ae3P@F3P@f3P@@3P@`",
"4P@@4P@`3P@E3P@e4PCH4PCI4P@F4P@f4P@G4P@g30@H30@h4P@H4P@h4P@N4P@n",
"4PCX4PCY4P@]4PA=30@S30A34P@S4PA360@S60A34P@W4PA74P@[4PA;@0HW@PHW",
"@PI8A0HW@PI:@PKE@PK1@PKBAPTXAPT`APTcUPTEUPTFUPTGUPTLUPTQUPTRUPT[",
"UPT_B0W7BPW7V0VQV0VRV0V_VPXbVPXhVPXFVPXGVPXLVPX[CP]7C0]7D0]7W0\\Q",
"W0\\RE0^BDP_6DP_7E0_6EPa6FPboFPc6G0c6F0c6FPc:GPe6GPe7H0e6HPgII0gI",
"HPgLIPgIYPm2YPm<YPmAYPmFYPmKY0m0WPmaX0maXPnbXPncXPmaYPnBYPnLYPnQ",
"YPnVYPn[Y0n@J10UJQ\\5JQ\\7JQ\\9JQ\\;JQ\\=JQ\\AJQ\\jJQ\\lJQ\\nJQ\\oJQ]2:P11",
":P1Q4012401R9P129P1R>012>01R1P371P3W4014401T9P149P1T>014>01T;P14",
";P1T<P14<P1T104B104C1P4B1P4C<P15<P1U=P15=P1U3P8X3P8Y4016401V3017",
"301W4018401X9P189P1X4P184P1X;P18;P1X=018=01X=P19=P1Y1P3\?1P3_1P1;",
"1P1[9P1;9P1[>01;>01[9P1<9P1\\31hf31hg>01<>01\\<P1<<P1\\1P1=1P1]401=",
"401]9P1=9P1]401>401^9P1>9P1^>01>>01^<P1><P1^1P3E1P3e4P3E4P3e105<",
"105=1P5<1P5=1P1@1P1`401@401`401B401b9P1B9P1b31iJ31iK>01B>01b401C",
"401c9P1C9P1c405J405K405P405Q41iR41iS401D401d9P1D9P1d>01D>01d<P1D",
"<P1d:01E:01e=P1E=P1e<P1E<P1e1P5X1P5Y4P5Z4P5[2P1F2P1f9P1F9P1f101G",
"101g1P1G1P1g4P1G4P1g401G401g9P1G9P1g401H401h4P1H4P1h401I401i201J",
"201j9P1J9P1j>01J>01j>01X4P1d5P1g5P1i405o9P119P1Q5011501Q1P321P3R",
"1032103R5032503R2P322P3R21jP21jQ1P421P4310421043504250432P422P43",
"3QjP3QjQ9P159P1U5015501U2P152P1U1P3:1P3Z103:103Z503:503Z2P3:2P3Z",
"21jh21ji5019501Y9P199P1Y9P1\?9P1_501\?501_1P3D1P3d103D103d503D503d",
"2P3D2P3d21k<21k=1P6P1P6Q106P106Q506P506Q2P6P2P6Q9P6P9P6Q9P1E9P1e",
"501E501e1P6_1P6`106_106`506_506`2P6_2P6`9P6_9P6`101I101i9P1I9P1i",
"501I501i2P1I2P1i80>a8P>a11l011l11Ql01Ql1\?1l0\?1l180>A8P>A11l811l9",
"1Ql81Ql9\?1l8\?1l980>e8P>e11l@11lA1Ql@1QlA80>E8P>E11lH11lI1QlH1QlI",
"80>g8P>g11lP11lQ1QlP1QlQ\?1lP\?1lQ80>G8P>G11lX11lY1QlX1QlY\?1lX\?1lY",
"80>i8P>i11l`11la1Ql`1Qla\?1l`\?1la80>I8P>I11lh11li1Qlh1Qli\?1lh\?1li",
"80>o8P>o11m011m11Qm01Qm180>O8P>O11m811m91Qm81Qm980\?58P\?511m@11mA",
"1Qm@1QmA\?1m@\?1mA8P>U11mI1QmI\?1mI80\?98P\?911mP11mQ1QmP1QmQ\?1mP\?1mQ",
"80>Y8P>Y11mX11mY1QmX1QmY\?1mX\?1mY10>a00>\\10>e00>]10>g00>^10>i00>_",
"10>o00\?<10\?500\?=10\?900\?>\?Ql0\?Ql1\?Ql2\?Ql3\?Ql4\?Ql5\?Ql6\?Ql7\?Ql8\?Ql9",
"\?Ql:\?Ql;\?Ql<\?Ql=\?Ql>\?Ql\?\?QlP\?QlQ\?QlR\?QlS\?QlT\?QlU\?QlV\?QlW\?QlX\?QlY",
"\?QlZ\?Ql[\?Ql\\\?Ql]\?Ql^\?Ql_\?QmP\?QmQ\?QmR\?QmS\?QmT\?QmU\?QmV\?QmW\?QmX\?QmY",
"\?QmZ\?Qm[\?Qm\\\?Qm]\?Qm^\?Qm_3P>a30>a\?Qm`\?P>a\?P>\\\?0>a\?Qnf3P>A30>A10>A",
"00>6\?P>A00>i\?02X\?Qmd\?P>g\?P>^\?0>g\?Qo610>E00>810>G00>9\?P>G11no1Qno",
"\?1no3P>i30>i10\?:00>@\?0>i\?0\?:3P>I30>I10>I00>:11on1Qon\?1on3P\?530\?5",
"10\?;00>`80\?18P\?1\?0\?5\?0\?;3P>U30>U10>U00>>8P>Q102X00>5001P\?Qml\?P\?9",
"\?P\?>\?0\?9\?Qof10>O00><10>Y00>\?\?P>Y002d0202020300>Y001;0035>R6@>R6B",
">R6D>R7@>R7D>R7B>R83>R88>R8;>R8S>R8U>R8l>R93>R95>R98>P0m>R9Q>R9=",
">P0l>P0n>R9T>R9U>R9b>R9c>R9f>R9g>R9j>R9k>R:2>R:3>R:6>R:7>R:R>R:X",
">R:Y>R:[>R9l>R9m>R:A>R:B>R:b>R:c>R:d>R:e03080309Q2[MK31;K31=K31\?",
"K31AK31CK31EK31GK31IK31KK31MK31OK31QK31TK31VK31XK31_KS1_K31bKS1b",
"K31eKS1eK31hKS1hK31kKS1kK316K32MK32[K32]K32_K32aK32cK32eK32gK32i",
"K32kK32mK32oK331K334K336K338K33\?KS3\?K33BKS3BK33EKS3EK33HKS3HK33K",
"KS3KK32VK33_K33`K33aK33bK33m08a806Kd08k:08c806kA04hb05\?U09nL09nL",
"05UA097A05F705U8067f07IY07n508Ho08Nj08Sh092\?06X206dK073I07\?N08@m",
"095Z09Wa04j205=e06\\4078K08H]09hN05e@06o[08G=08UT06;9087H08PO05k:",
"06LG06eZ07;l093>04n6056g05;N06C406[C078@07KW080108H608IL08g_09Lb",
"09]_09gj07R<07Uo07fP08\?909<409io08[F05SO05l407aP081n079R07S:08c2",
"09Kg05SH05aR06XC06gJ06l\?07d_07hg09I;05;B082;057L057<07XL07fn08\?a",
"09Ie08^006;\?06X208[n04hi05_W060B07>707E`05<G07Sk04no05nY04h=06c<",
"06Eh07dR05\?305QN07L108A908ZZ06^j08n`06b806;n08;U06>P07EU04j^055Y",
"057906R107cW089_08[B097\?05;e05A205Uc05k\\06G506on07TZ09F]09YZ09jG",
"09k>05:K06K606]g08mR05id066@068006BJ06lS075907B907W:07gd081_08lV",
"08C^090S09=:058G05:S05Bm073808S208ZZ05k905oe06=k06^^07`n07=e04kT",
"05Ki05_W05fj060L07>b07AY07nJ0816098d09Kf09M809PH04n;07V^096d09Jh",
"063Q04j6053J05_^05`o06FI06X2077>07I208Cl091l09n=06J809H^05:906Mk",
"06Oc06e106jL07@907EI07Q[07d@09QN055]068^09Ih050[05dI06gZ08lZ05n;",
"065406PG07>709J6058Y05@\?05aU06HC06M>06RX06cU07@607GR07mi08S\?08SQ",
"097<09KR05<o06jj05@M077@07BH08Gj09JS09aG09jO06NG06g;087X07[;07\\P",
"07bB07;0072I08]H04k008<f058j058705jV06;C07cF05^506dN06Jd08lk08Q<",
"09I=08V;05kC055005G005QJ06Id057N07<Z07K:07Tl07UN07UU07V\?09MF07bn",
"07nm08HB08[h090h093m09S_09Sl09TX09fd093N09Jg04n^053W055=05;905;T",
"05=A05FM05H605IX05Q005RX05aT05a^062D065X066>067b06E\?06GR06JA06R5",
"06eg06hJ06lR075^078[07@R07RA07Tn07U907U807U@07UF07UM07V=07V>07Y0",
"07Z107_007gd07h907i107mb0805087]089i089i08AG08T@08VF08\\108\\i08cC",
"08d808nf090h09KS09Oo09Pk061e0T;^088H04hV056e055X04n00555056005;7",
"05;j05FM05EE05FI05GR05QJ05Rc05U405UD05YR05\\X05kB05kI05mY05n]063H",
"065>0648066>065P067b068d06\?406@L06AB06EF06Id06LG06LK06MF06]i06^j",
"06e106kK06k;06lR070N075^07NW078e07:_07<Z07Aa07D607Dk07HM07HO07K:",
"07KK07Kd07M:07M007S<07Za07_007ak07eK07gd07ln080508=B08\?_08Mi08U1",
"08V608VF08Zo08[h08[;08\\108[n08[]08\\i08^:08d808lh091b096I099f09Il",
"09KS09MF09OK09Oo09P;09Pk09\\B09nL0RQ:0RQ40S\?E03^M040H040i0U990Uc@",
"0WkC09m309n>QPGIR0GbTPGYU0GYT_]9U\?]9R0G@RPG@SPG@SPGASPGBSPGCSPGD",
"SPGESPGFSPGHSPGISPGJSPGKSPGLSPGNSPGPSPGQSPGSSPGTSPGVSPGWSPGXSPGY",
"SPGZS0GET0GAT0GKT0GTLA2ILA2KLA2ULa4aLa4bMA=7Ma=7NaBiNABiOABiOaFh",
"OaFiPATeZM5GZM5HZm5O[M5O[m5O\\M5O\\m5OZM6iZM6jZm6kZm6l[M6k[M6l04hm",
"04hh04i10P4R04mP04n^04nk0502051j052I053W053\?03BN0PHj055=055D055T",
"055g0PDL03Bi055W056=0PE;056G056T04k<056\\056e0Y7O057e058303CO058k",
"0596059b059g03DE05;705;905;T05;j05<505<605<G05=905=A05=J05=c05=m",
"05=o05=o05=o0PX\\071`05\?:05\?O0P]S05\?[05\?a05@605BN05@h05A805AX05BR",
"05Cf05D@05EC05ES05F405F405FI05F[05Fc05G205LF05H605LG05IA05Id0587",
"05S^05O>05Od05P=05N;05Pb05Pa05R\\0QCT05Sb05Sg05T605TJ05TR05UR0QJX",
"0QKZ05W\\05XK05XW05WH05YV03K^03Kl05\\805\\n05\\n0QW805_305_H05_W05_c",
"0Q\\H05_o05`605mC05`R03N105aP05a^05c005b=0QgT05e30QgV05e^05e[05el",
"05gQ05gR03P_05gm05hX05hm05iY03QR0R6303Ql05j`05jc05jf05k:0Z>B05kn",
"0R<a0R<a088105lR05lR03S70S:h0V7J05mR05m[03SS05nJ05o=05oG05oi0621",
"03Tj03TL062D0RKD06370658065<065>065<065j066>066b066T066_067N067b",
"067f068@068K069M06:a06;D06=@0R\\<06<m06;l06=X06>306\?T0R_a06@R06\?5",
"06>Y03X^06AY06An06BM06Ag03Y\\06E\?06E\\0S0:06GS06Kh06I903\\I06JA03\\8",
"03[T056B056E06L006JL082]04\?I06LG06LK06LQ06MN06MC0S\?303]906Oj06N5",
"06QB06R50SA]06R>06PO06TD03^M06U206VS06WZ06ZX0SJS06[K03`H06\\Q0SRW",
"06]D03a>06]b06^O06^j06^k0SZ=0Qd;0S[j06a>0Sbl06bo06c=06aW06dF06dn",
"06eg06e106eY06eh06f50SdN06dd06h_06i^03dc06k;06k70SkA06gi06m^0SmN",
"0Sn>06o6070i070N070K03fF071:071m071g072]0PDU07550T9S076L0T>[078X",
"078e079@0TH807:007:E0TLe0TPD07=j07>;03j\\07>U03jh03jh07A707AL07Aa",
"07B507C:03lK07DT0T`f07Dn0TbB07E`0R6O07H@0TnQ0Tnh0U1403ol040807Kd",
"0U3c0U3b0U4I0U4c07LN07LO07LO07M:040i07N;0416042F0U@M07Q>07R<07S<",
"043S0UHV07UF0UJJ0UK507V\?07W[044_07Y007Y:07Y\?0UUl0UZW0UZW07[^0482",
"0U^[07_607_9048W0Ub007cB04:P07cX07cS07d00Un607eS04<107g707h207i5",
"04<d0V8X0V9704=I0V;I07mj0V<n07nE07oj08050VCJ0VDS081P0VFX081`0S=O",
"04\?E082b084304@;084n05Ze0VNW0VNe0S>C0S>L0881088408nN04A[08:A08:;",
"08:M05:c08:a08:c08:m08;V0V\\l08;U08<M08=S08>]08<S08>m08\?W08AG08=C",
"08\?:08\?<08\?L0V`f0Ve[0VcE04D[08Ca08Cc08DF0W\?:08ET0Vl\\04EM04EQ0Vna",
"0W3B04E[08I@08IL08IW08IY08JY08J808L>08KR08Mi08LX08M[08N604GG08OQ",
"08P104Gi08QP08QS0WIW08SG08SN04He08Sj03Bk0WR^0WUV04Jn04K708ZP08[]",
"08^:08aE0WbX08b[08c108dK08eg0Wl_0PP408g;08fl08g`0PSN08kD08lh0XGB",
"0XG]092D093a094A0XL^094K098h09;G09;H099l09\?i09@E0X_j09F;04VE09Fg",
"0Xeg04WV09K305fb09LS0Y550Y8J04Y^04Yf09OP0Y@:04Zb0YBF09P;09P;09PY",
"0YFf09SR04\\c09TY09VW09W209Wn04_>0Y\\`09\\B09a009cm04c>04c]09eW0Z3>",
"04ch0Z450Z8>0Z:A09jk04eF09ki09kn09l509l\?09lF09lk0ZH0000000000000"
};

/* the second characters of pairs, 3 digits each: 63 of primary composites, then 25 of the
   other pairs */
static const char mft__uc_snd[][65] = {
"0<00<10<20<30<40<60<70<80<90<:0<;0<<0<\?0<A0<C0<D0<K0<S0<T0<U0<V0",
"<W0<X0<]0<^0<`0<a0<h0=20=50IC0ID0IE0Tl0Vn0WG0\\n0]F0]G0^n0_G0aF0c",
"20cE0cF0dn0eG0g:0g\?0gO10^1\\e32I32JA2jA4WA<nA=GAB`ABjABmAF_AT`0<1",
"0<h0Fd0Fg0Fh0Fi0Fl0Fo0G10G20Tl0Vl0Xl0\\l0mb0md0n00ne0ngM5UM5^M5_M",
"5`M5aM5b00000000000000000000000000000000000000000000000000000000"
};

/* the 941 primary composites, as record indices (2 digits), sorted by (a, b) */
static const char mft__uc_comp[][65] = {
">@>=>A000102030e0g3^048l052U3@3B8j6O0i6Q6S6U0k0m0o11066Y136[6_6a",
"6]0708099F1517190:9D1=3D3F9B3`1;6g6i6m361\?6o1A1C2k1E1G71753\\7377",
"790;0<0=1I1K1M1Q0>9R2W3H3J9T1O7;1R7\?2m7A1T7C1V1Z7E1X7K7I7M7O7Q38",
"1\\0\?7S1`7U1^7Y7W0@0A0B0C1b1d3f0D9X1f2Y3L3N2Q9V2o7c7e1h7g1l3P3R7i",
"1j7m1n207o24813X2289288;3Z268\?8=0E0F0G2:2<2>0H:02@2B2[3T3V2S9n8A",
"2D8E8C8K8M8O8Q2F8U8S8W8Y8[:<0I2H:B3j8]2J:@:>2K8_2M2O8a8c0J0K0L0M",
"0f0h3_0N8m0O2V3A3C8k6P0j6R6T6V0l0n10120P6Z146\\6`6b6^0Q0R0S9G1618",
"1:0T9E1>3E3G9C3a1<6h6j6n371@701B1D2l1F1H72763]74787:8e0U0V0W1J1L",
"1N0X9S2X3I3K9U1P7<1S357@2n7B1U7D1W1[7F1Y7L7J7N7P7R391]0Y7T1a7V1_",
"7Z7X0Z0[0\\0]1c1e3g0^9Y1g2Z3M3O2R9W307d7f1i7h1m3Q3S7j1k7n1o218025",
"823Y238:8f298<3[278@8>0_0`0a2;2=2\?0b:12A2C2\\3U3W2T9o8B2E8F8D8L8N",
"8P8R2G8V8T8g8X8Z8\\:=0c2I:C3k8^0d:A8h:\?2L8`2N2P8b8d=[42=3908n9492",
"2e3:3<2i6W9J9H9N9L7=9\\9Z9`9^7[3d7]3b3>2c2_2]2a918o95932f3;3=2j6X",
"9K9I9O9M7>9]9[9a9_7\\3e7^3c3\?2d2`2^2b9:989>9<9;999\?9=6c6e6d6f7_7a",
"7`7b838485868G8H8I8J8i9f9d9j9h9l9g9e9k9i9m:4:2:8:6:::5:3:9:7:;33",
"31322g2h6k6l3h3i34<o43<n<m:L:M=1=945:Z:[=;46:h:i===I47=H=G4<;8;9",
"=c48;F;G=Z=X49=W=V4=;T=e4:;`;a=g<j=6;h4><g<f:D:E<k<i;j4\?:T:U;l4@",
":`:a=7=5;n4A=B=A4C;0;1=E<04E;@;A=R=S<24F=O=N4D;L;M=T<44G;X;Y=a=_",
"=C4;=F=P4B=U=`4H4I4M4^4`4L4J4b4K4\\4f4h4O4j4Q4l4N4n544P56585:5<52",
"4_4a4U4S4c4T4]4g4i4X4k4R4m4W4o554Y57595;5=534V4Z4[4d4e50515>5\?5A",
"5@5B5D5E5C5F5G5H5Q5R5]5\\5^5a5b5d5c5e5f5i5g5h5j5k5m5l5n5o61606C6D",
"6E6F6G6H6I6J6K6L6M6N7G7H7k7l8788969@979A9P9Q9b9c:F:H:J<6:G:I:K<7",
"<8<9<:<;<<<=:N:P:R<>:O:Q:S<\?<@<A<B<C<D<E:V:X:W:Y:\\:^:]:_:b:d:f<F",
":c:e:g<G<H<I<J<K<L<M:j:l:n<N:k:m:o<O<P<Q<R<S<T<U;2;4;6;3;5;7;:;<",
";>;;;=;\?;B;D;C;E;H;J;I;K;N;P;R;O;Q;S;U;V;W;Z;\\;^<V;[;];_<W<X<Y<Z",
"<[<\\<];b;d;f<^;c;e;g<_<`<a<b<c<d<e<h=4=^<l=>=\?=@=8=b=K=L=M=n=o>0",
">1>3>2>4>5>6>7>8>9>:>;><>\?>>>B>C>D>E>F>G>H>I>R>S>J>K>L>M>T>U>N>O",
">P>Q>V>W>X>Y\?6>]>^>_>`>a>b>c>d>e>f>g>h>i>j>k>l>m>n>o\?0\?1\?2\?3\?4\?5",
"\?7\?Q\?8\?9\?:\?;\?<\?=\?>\?\?\?@\?A\?B\?C\?D\?E\?F\?G\?H\?I\?J\?K\?L\?M\?N\?O\?P\?R\?S\?T\?U\?V",
"GEGFGGGHGIGJGKGMGLGNGOGPGQ00000000000000000000000000000000000000"
};

/* the one way to the tables (see struct mft__uc_tables) */
static const struct mft__uc_tables *mft__uc_tab(void)
{
    static const struct mft__uc_tables t = {
        "15.0.0",                                               /* version */
        {{mft__uc_cls_t0, mft__uc_cls_t1, mft__uc_cls_t2}, mft__uc_cls_leaf,
         449, {11, 7, 4}, {1, 2, 2}},                           /* cls */
        mft__uc_ascii,                                          /* ascii */
        4,                                                      /* maxdec */
        410,                                                    /* nccc */
        mft__uc_ccc_run,                                        /* ccc_run */
        mft__uc_ccc_val,                                        /* ccc_val */
        {{mft__uc_dec_t0, mft__uc_dec_t1, mft__uc_dec_t2}, mft__uc_dec_leaf,
         191, {10, 7, 5}, {1, 1, 2}},                           /* dec */
        231,                                                    /* ndrun */
        mft__uc_drun,                                           /* drun */
        mft__uc_drec,                                           /* drec */
        63,                                                     /* nprim */
        mft__uc_snd,                                            /* snd */
        941,                                                    /* ncomp */
        mft__uc_comp                                            /* comp */
    };
    return &t;
}
/* END GENERATED TABLES */
/* clang-format on */
#endif /* MFT_NO_TEXT */
