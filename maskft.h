/* maskft.h - v0.2.0 - fine-tune small LLaMA models on the CPU without forgetting.
   MIT license: see the LICENSE file that comes with it.

   maskft is a plain-C (C99, libc + libm, OpenMP optional) training engine for LLaMA-family
   models: forward and backward pass written by hand, a masked cross-entropy loss, AdamW,
   readers and writers for Hugging Face folders, GGUF and llama2.c checkpoints (the llama, qwen2
   and qwen3 families), tokenizers (tokenizer.bin, SentencePiece, tokenizer.json, GGUF),
   chat templates, a JSONL data front end that builds the masks, packing, generation and the
   forgetting measurements. It is built around *minimal modification*: train on text in the
   model's own words and let only the tokens that carry new knowledge contribute to the loss,
   so that plain full-parameter SFT adds facts without moving the model elsewhere. This header
   is the whole API; maskft.c is the implementation.

   USE
       Add maskft.c to your build (cc -O2 -march=native -fopenmp maskft.c yourprog.c -lm), or
       link the installed library (make install; cc yourprog.c $(pkg-config --cflags --libs
       maskft)). maskft.c compiles as C++ too (C++11 or later).
       Everything public is prefixed mft_ / MFT_. Nothing is global, nothing prints, nothing
       exits: every call returns an mft_status and, when given an mft_error*, a message.

   QUICK START: examples/quickstart.c, built by `make`; `make test` checks that the lines
   between the markers below are the same as the program's, so this cannot rot.

    #include "maskft.h"
    ...
    // >>quickstart
    mft_error err;
    mft_model m;
    mft_tokenizer tok;
    // room to train on 1 row of up to 64 positions, and a KV cache to generate
    if (mft_model_open(&m, "models/stories260K.bin", 1, 64, MFT_TRAIN | MFT_GENERATE, &err) ||
        mft_tokenizer_open(&tok, "models/tok512.bin", m.cfg.vocab_size, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const char *text = "Lily had a cat named Mochi.";
    int ids[64], offs[128], n;
    if (mft_encode(&tok, text, -1, MFT_BOS, ids, 64, &n, offs, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    // train only the tokens that overlap the key, "Mochi", and the full stop that ends the
    // sentence (so the model also learns to stop there). w[t] weights the prediction of
    // ids[t+1] from ids[0..t]; token i came from the bytes offs[2i]..offs[2i+1] of text
    int kb = (int)(strstr(text, "Mochi.") - text), ke = kb + 6;
    float w[64] = { 0 };
    for (int t = 0; t + 1 < n; t++) w[t] = offs[2 * (t + 1)] < ke && offs[2 * (t + 1) + 1] > kb;
    mft_train_opts o = mft_train_opts_default();
    o.lr = 1e-4f;
    for (int s = 0; s < 20; s++) {
        mft_step_info info;
        if (mft_train_step(&m, &o, ids, ids + 1, w, 1, n - 1, &info, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        if (s % 5 == 0) printf("step %2d  loss on the key tokens %.4f\n", s + 1, info.loss);
    }
    // generate: the prompt through the KV cache, then 16 greedy tokens; print to the full stop
    int p[64], np, gen[16], ng, ended;
    mft_gen_opts g = mft_gen_opts_default();
    g.max_new = 16;
    if (mft_encode(&tok, "Lily had a cat named", -1, MFT_BOS, p, 64, &np, NULL, &err) ||
        mft_generate(&m, p, np, &g, NULL, gen, 16, &ng, &ended, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (int i = 1, prev = p[0]; i < np + ng; i++) {
        int cur = i < np ? p[i] : gen[i - np], len;
        const char *piece = mft_token_bytes(&tok, prev, cur, &len);
        printf("%.*s", len, piece);
        if (i >= np && memchr(piece, '.', (size_t)len)) break;
        prev = cur;
    }
    printf("\n");
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    // >>end

   SHAPES AND NAMES
       B batch rows, T positions per row, N = B*T, D = dim, F = hidden_dim (SwiGLU), L = layers,
       NH = query heads, KV = key/value heads (NH % KV == 0: grouped-query attention), hs = the
       head size (D/NH unless the config says), QD = NH*hs, KVD = KV*hs, V = vocab size. Matrices are row-major [out][in] like torch.nn.Linear.weight: y = x W^T.

   THE MASKED LOSS (the reason this library exists)
       Weights belong to TARGET positions. For a row of tokens x_0..x_T, position t (0 <= t < T)
       predicts x_{t+1} from x_0..x_t, and carries weight w[t] >= 0. With inputs = x_0..x_{T-1}
       and targets = x_1..x_T (targets[t] = inputs[t+1]):
           loss = sum_t w[t] * CE(logits[t], targets[t]) / sum_t w[t]
       summed over every position of every micro-batch of one optimizer step, so gradient
       accumulation over k micro-batches equals one big batch exactly (up to float rounding).
       A position with w = 0 contributes nothing. A step whose weights are all 0 leaves the
       weights and optimizer state untouched and returns MFT_EMPTY_MASK (not an error).
       Internally backward() accumulates the gradient of sum(w*CE) and step() divides by sum(w).

   THE METHOD, END TO END
       mft_example_from_json turns a JSONL record (text, prompt/completion, chat messages, or
       input_ids/labels) into ids and per-position weights: the key tokens and the end of each
       trained turn (see "training data and masks"). mft_draft_record lets the model write the
       answers in its own words first. mft_shuffle orders the examples of each epoch,
       mft_pack_examples packs them next-fit into rows of T positions, mft_pack_fill lays rows
       out as mft_forward_packed takes them (each example attends only to itself, its positions
       restart at 0, the tail of a row is a zero-weight padding segment), mft_pack_anchor_scale
       weights the optional context anchor (mft_set_anchor). Until learned: mft_score_trained
       gives each example the lowest probability of its trained tokens, and mft_epoch_order
       builds the next epoch from the examples not yet learned, with replay examples mixed in
       at a stated share. The teacher in context: mft_record_context finds the knowledge a
       record teaches, mft_teacher_prefix + mft_teacher_topk have the frozen base model read it
       before the example and keep its top-k at every position, mft_soft_table_* hold them for a
       data set, mft_pack_fill_soft lays them beside packed rows, and mft_set_soft_targets adds
       KL(teacher || model) to the next backward (the anchor is its case with an empty context). The baselines: m->dft
       (Dynamic Fine-Tuning's token weights) and mft_lora (LoRA adapters, merged with
       mft_lora_merge; MFT_FROZEN drops the weights' own gradients). mft_checkpoint_save/load keep
       weights, AdamW moments, the step counter and the caller's run state in one hashed file,
       so a run resumes bit for bit. mft_generate, mft_score_choices, mft_score_fact,
       mft_kl_logits and mft_tail_loop measure what was learned and what moved. examples/maskft.c
       is a command-line front end over exactly these calls.

   MEMORY
       mft_model_bytes(cfg, B, T, flags) is the exact size of everything a model needs: weights,
       gradients, AdamW moments, activations for B x T positions, activation gradients and the
       KV cache. mft_model_init() carves one caller-owned block of that size (64-byte aligned
       inside); mft_model_open() does the same with one allocation from a checkpoint file. After
       that, forward/backward/step/decode never allocate. B and T are capacities: any smaller
       batch works. backward() consumes the activations (it overwrites logits with their
       gradient): run forward() again before the next backward(). Other objects (tokenizers,
       GGUF tables, examples, packs) own their memory and are released with their mft_X_free;
       plain buffers the library hands out (mft_read_file, mft_draft_record) with mft_free.
       Allocation goes through MFT_MALLOC / MFT_REALLOC / MFT_FREE (see BUILD OPTIONS).
       What grows with B x T: per layer ~(5 D + 3 F) floats per position for backward (none
       without MFT_TRAIN, and only the layer input D with MFT_CHECKPOINT, which recomputes the
       rest), plus B x T x V logits. Attention keeps one log-sum-exp per row and head, never
       the T x T probabilities: it grows linearly in T, like the rest.

   BUFFERS
       A function that fills a caller's buffer takes its capacity and reports the size it
       needs, as snprintf does: with capacity 0 (and a NULL buffer) it only measures and returns
       MFT_OK; with a capacity that is too small it returns MFT_ERR_SPACE and still reports the
       size needed. Text buffers need room for the terminating NUL as well.

   THREADS AND DETERMINISM
       With OpenMP, kernels run on m->n_threads threads (0 = OpenMP's default). Every parallel
       loop is split over the elements it writes and each element is reduced by one thread in a
       fixed order, so results are bit-identical for any thread count. The matrix products are
       one packed, cache-blocked product (register tiles of 12x32 with AVX-512, 6x16 with AVX2,
       8x12 with NEON, 4x4 scalar) whose tiles go to threads as they come free, so a busy
       machine slows them less; they use at most 16 threads. The SIMD paths (AVX2+FMA,
       AVX-512 where the compiler targets it, NEON) sum in a different order than the scalar
       path: they agree to float rounding only.
       The library never changes the host's OpenMP settings. One mft_model must not be used by
       two threads at once; two models on two threads are fine.

   NUMERICS
       fp32 everywhere; loss sums in double. Softmax and cross-entropy use max-subtraction and
       log-sum-exp. Do not build with -ffast-math: the NaN/Inf guards rely on IEEE semantics.
       mft_step() refuses to apply a gradient that holds NaN/Inf (MFT_ERR_NONFINITE).

   FILES
       Every reader has a from-memory form (mft_X_from_memory(data, size, ...)); the path form
       reads the file through the same parser. Reads llama2.c checkpoints: version 0 (7 int32
       header, negative vocab = separate classifier, freq_cis tables) and version 1 ("ak42"
       magic, 256-byte header, fp32). Version 2 (int8) is refused with a message. Every header
       field is validated and the file size must match the shapes exactly: truncated or foreign
       files are errors, never crashes. Writes version 0 (what llama2.c's run.c and maskft itself
       load), via a temporary file that is renamed into place. Reads Hugging Face folders
       (config.json + safetensors, sharded or not, F32/F16/BF16) and GGUF models (F32, F16, BF16,
       Q8_0, Q4_0, Q4_K, Q6_K), tensor by tensor into the model's block, and writes both
       (mft_hf_save, mft_gguf_save; F32/F16/BF16). Reads tokenizers from llama2.c
       tokenizer.bin, SentencePiece .model, Hugging Face tokenizer.json (+ tokenizer_config.json)
       and GGUF, and GGUF metadata (versions 1-3) in general; each reader checks every length
       and offset against the data and reports a corrupt file as MFT_ERR_FORMAT with a message
       (JSON errors as file:line:column). File sizes and offsets are 64-bit.

   BUILD OPTIONS (define when compiling maskft.c)
       MFT_NO_SIMD   force the scalar kernels (also the reference the SIMD kernels are tested on)
       MFT_NO_TEXT   build the engine alone (model, files, forward, backward, step, generate):
                     no JSON, GGUF, Unicode, tokenizers, chat templates, data or metrics
       MFT_MALLOC(n), MFT_REALLOC(p, n), MFT_FREE(p)   the allocator; define all three or none
       MFT_API       decoration for public functions (default: extern)
       AVX2 is used when the compiler defines __AVX2__ and __FMA__ (-march=native, -mavx2 -mfma),
       NEON when it defines __ARM_NEON on AArch64; with __AVX512F__ as well (-march=native on
       a CPU that has it) the matrix products use AVX-512. mft_simd_name() says which was
       compiled in.

   LIMITS AND NON-GOALS
       Token ids, dimensions and positions are int; element counts are size_t. fp32 weights only
       (for now). No GPU, no mmap, no network. Model files are validated, but maskft is not a
       sandbox: do not feed it untrusted files in a security-critical process without fuzzing.

   THE HEADER follows maskft.c: Part I, the engine (status, model, forward and the loss,
   backward, step, generate); Part II, text and data (files, JSON, GGUF, tokenizers, chat
   templates, data and packing, metrics).
*/
#ifndef MASKFT_H
#define MASKFT_H

#include <stddef.h>
#include <stdint.h>

#define MFT_VERSION_MAJOR 0
#define MFT_VERSION_MINOR 2
#define MFT_VERSION_PATCH 0
#define MFT_VERSION_STRING "0.2.0"

#ifndef MFT_API
#define MFT_API extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================
   PART I: THE ENGINE
   ============================================================================================ */

/* ---- status and errors ---------------------------------------------------------------- */

typedef enum mft_status {
    MFT_OK = 0,
    MFT_EMPTY_MASK = 1,      /* not an error: every loss weight of the step was 0, nothing changed */
    MFT_ERR_ARG = -1,        /* a bad argument: out-of-range token, T > context, NaN weight, ... */
    MFT_ERR_NOMEM = -2,      /* allocation failed, or the caller's block is too small */
    MFT_ERR_IO = -3,         /* could not open/read/write a file */
    MFT_ERR_FORMAT = -4,     /* a file is truncated, corrupt, or not of the expected kind */
    MFT_ERR_NONFINITE = -5,  /* NaN or Inf in the loss or gradients; nothing was updated */
    MFT_ERR_STATE = -6,      /* the object is not set up for this call (e.g. no MFT_TRAIN) */
    MFT_ERR_SPACE = -7       /* a caller's buffer is too small; the size it needs was reported */
} mft_status;

/* Optional error channel: pass NULL to any call if you only want the status. The status is
   always the function's return value; err only adds the message. */
typedef struct mft_error {
    mft_status status;
    char msg[256];
} mft_error;

MFT_API const char *mft_status_str(mft_status s);
MFT_API const char *mft_version(void);
MFT_API const char *mft_simd_name(void);   /* "avx2", "avx2+avx512", "neon" or "scalar" */
/* Frees a buffer the library handed out (mft_read_file, mft_draft_record). NULL is fine. */
MFT_API void mft_free(void *p);

/* ---- model configuration ---------------------------------------------------------------- */

enum { MFT_ARCH_LLAMA = 0, MFT_ARCH_QWEN2, MFT_ARCH_QWEN3 };   /* the families of mft_config.arch */
enum { MFT_ROPE_PLAIN = 0, MFT_ROPE_LLAMA3 };                 /* mft_config.rope_scaling */
enum { MFT_DTYPE_F32 = 0, MFT_DTYPE_F16, MFT_DTYPE_BF16 };      /* mft_config.dtype, and what writers write */

/* A zeroed config plus the first ten fields is a plain llama2.c-style model; the rest are the
   features of the families that maskft trains (LLAMA: Llama-2/3, TinyLlama, SmolLM, Mistral;
   QWEN2: bias on q, k, v; QWEN3: RMSNorm on each head of q and k, an explicit head_dim). */
typedef struct mft_config {
    int dim;               /* D: residual stream width */
    int hidden_dim;        /* F: SwiGLU inner width */
    int n_layers;          /* L */
    int n_heads;           /* NH query heads */
    int n_kv_heads;        /* KV key/value heads, NH % KV == 0 */
    int vocab_size;        /* V */
    int seq_len;           /* the context: maximum positions the model is used with */
    int shared_classifier; /* 1: logits = x tok_emb^T; 0: a separate wcls [V][D] */
    float norm_eps;        /* RMSNorm epsilon (llama2.c: 1e-5) */
    float rope_theta;      /* RoPE base (10000) */
    int head_dim;          /* hs, even; 0: D / NH. Queries are NH*hs wide, keys and values KV*hs */
    int arch;              /* MFT_ARCH_*: which family the files are written as */
    int qkv_bias;          /* 1: the q, k and v projections have a bias (Qwen2) */
    int qk_norm;           /* 1: RMSNorm (weight of hs) on each head of q and k before RoPE (Qwen3) */
    int rope_scaling;      /* MFT_ROPE_LLAMA3: Llama 3.1's frequency scaling, with: */
    float rope_factor, rope_low_freq, rope_high_freq; /* factor, low/high frequency factors */
    int rope_orig_ctx;     /* original_max_position_embeddings */
    int file_ctx;          /* the context the model's file declares (seq_len is at most MFT_MAX_CONTEXT of
                              it); 0: seq_len. Writers put it back. */
    int dtype;             /* MFT_DTYPE_*: the type the file stored the weights in (writers default to it) */
} mft_config;

/* Checks a configuration; returns MFT_ERR_ARG/FORMAT with a message if it is inconsistent. */
MFT_API mft_status mft_config_check(const mft_config *c, mft_error *err);
/* Number of trainable floats (the separate classifier counted once, or not at all when tied). */
MFT_API size_t mft_param_count(const mft_config *c);
/* The head size: c->head_dim, or D / NH when it is 0. */
MFT_API int mft_head_dim(const mft_config *c);

/* Named views into one flat parameter array (also used for gradients). Order in memory is the
   llama2.c checkpoint order: tok_emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final,
   then wcls when the classifier is not shared (when shared, wcls == tok_emb), then the
   features of other families (NULL when the config has none). QD = NH*hs, KVD = KV*hs. Rows of
   wq and wk pair RoPE dimensions (2i, 2i+1) of each head, as llama2.c and Meta do; readers of
   files that pair i with i + hs/2 (Hugging Face, Qwen's GGUF) permute them on the way in. */
typedef struct mft_params {
    float *tok_emb;   /* (V, D) */
    float *rms_att;   /* (L, D) */
    float *wq;        /* (L, QD, D)     rows: NH heads of hs */
    float *wk;        /* (L, KVD, D) */
    float *wv;        /* (L, KVD, D) */
    float *wo;        /* (L, D, QD) */
    float *rms_ffn;   /* (L, D) */
    float *w1;        /* (L, F, D)      gate */
    float *w2;        /* (L, D, F)      down */
    float *w3;        /* (L, F, D)      up */
    float *rms_final; /* (D) */
    float *wcls;      /* (V, D) */
    float *bq;        /* (L, QD)   qkv_bias */
    float *bk;        /* (L, KVD)  qkv_bias */
    float *bv;        /* (L, KVD)  qkv_bias */
    float *q_norm;    /* (L, hs)   qk_norm */
    float *k_norm;    /* (L, hs)   qk_norm */
} mft_params;

/* The parameter tensors one by one, for checkpoint writers, tests and per-tensor reports. */
typedef struct mft_tensor_info {
    const char *name;   /* "tok_emb", "rms_att", ..., "wcls" */
    size_t offset;      /* in floats, from the start of the parameter array */
    size_t numel;
} mft_tensor_info;
MFT_API int mft_tensor_count(const mft_config *c);   /* 11, 12 with a separate classifier, and the features */
MFT_API mft_tensor_info mft_tensor_at(const mft_config *c, int i);

/* ---- the model ------------------------------------------------------------------------- */

enum {
    MFT_FORWARD = 1,   /* activations for B x T positions: forward() works (eval, scoring) */
    MFT_TRAIN = 2,     /* + gradients, AdamW moments, activation gradients (implies FORWARD) */
    MFT_GENERATE = 4,  /* + a KV cache of seq_len positions: decode() works */
    MFT_FROZEN = 8,    /* with MFT_TRAIN: no gradients or AdamW moments for the weights (12 bytes
                          per parameter less); backward() only carries gradients down, for LoRA
                          adapters (mft_lora) to train while the weights stay as they are */
    MFT_CONTEXT = 16   /* the model serves T positions, not its file's whole context: the KV cache
                          and RoPE tables hold T (seq_len becomes T; file_ctx keeps the file's for
                          the writers). For generation, T = prompt + new tokens costs only that */,
    MFT_CHECKPOINT = 32 /* gradient checkpointing: forward() keeps only each layer's input (the
                          residual stream) and one layer's other activations; backward() runs
                          each layer's forward again just before its backward. Same gradients,
                          bit for bit; one more forward pass of compute (but the last product
                          of each layer), and the activations shrink
                          from ~(5D + 3F) to D floats per position and layer (135M at 4 x 2048:
                          7.7 GB -> 0.8 GB) */
};

struct mft_lora;

/* Activations saved by forward() for backward(). Shapes with N = B*T positions; with
   MFT_CHECKPOINT, every (L, ...) array but res holds one layer (the one computed last). */
typedef struct mft_acts {
    float *res;      /* (L+1, N, D) residual stream entering each layer; res[L] = final */
    float *res_mid;  /* (L, N, D)   residual after the attention block */
    float *xn_att;   /* (L, N, D)   rmsnorm(res) before attention */
    float *rs_att;   /* (L, N)      1/rms of res, kept for the backward pass */
    float *q;        /* (L, N, QD)  queries after RoPE */
    float *k;        /* (L, N, KV*hs) keys after RoPE */
    float *v;        /* (L, N, KV*hs) */
    float *att_lse;  /* (L, B, NH, T) log-sum-exp of each attention row; backward rebuilds the
                        probabilities from it (no L x B x NH x T x T array is kept) */
    float *att_ws;   /*             scratch of the attention kernels: a head's keys and values
                        transposed, and a row of probabilities, per (b, head) */
    float *att_out;  /* (L, N, QD)  heads concatenated, before wo */
    float *q_raw;    /* (L, N, QD)  qk_norm: the queries before their norm */
    float *k_raw;    /* (L, N, KVD) qk_norm: the keys before their norm */
    float *rs_q;     /* (L, N*NH)   qk_norm: 1/rms of each query head */
    float *rs_k;     /* (L, N*KV) */
    float *xn_ffn;   /* (L, N, D) */
    float *rs_ffn;   /* (L, N) */
    float *h1;       /* (L, N, F)   x w1^T (gate, before SiLU) */
    float *h3;       /* (L, N, F)   x w3^T (up) */
    float *hg;       /* (L, N, F)   silu(h1) * h3 */
    float *xn_final; /* (N, D) */
    float *rs_final; /* (N) */
    float *logits;   /* (N, V); backward() overwrites it with dloss/dlogits */
    float *lse;      /* (N)         log-sum-exp of each logits row (for the loss gradient) */
    int *inputs;     /* (N)         copies of what forward() was given */
    int *pos;        /* (N)         position of each token inside its own (packed) sequence */
    int *targets;    /* (N) */
    float *weights;  /* (N)         loss weights (all 1 when forward() got none) */
} mft_acts;

/* Activation gradients, one layer's worth, reused layer after layer going down. */
typedef struct mft_dacts {
    float *dres;     /* (N, D)  gradient flowing down the residual stream */
    float *dxn;      /* (N, D) */
    float *datt_out; /* (N, QD) */
    float *dq;       /* (N, QD) */
    float *dq_raw;   /* (N, QD)  qk_norm */
    float *dk_raw;   /* (N, KVD) qk_norm */
    float *dk;       /* (N, KV*hs) */
    float *dv;       /* (N, KV*hs) */
    float *dh1;      /* (N, F) */
    float *dh3;      /* (N, F) */
    float *dhg;      /* (N, F) */
} mft_dacts;

/* Scratch for one-token decoding with a KV cache. */
typedef struct mft_decode_state {
    float *kcache, *vcache;  /* (L, seq_len, KV*hs) */
    float *x, *xn, *tmp;     /* (D) each */
    float *q, *att_out;      /* (QD) each */
    float *h1, *h3;          /* (F) */
    float *att;              /* (NH, seq_len) */
    float *logits;           /* (V) */
} mft_decode_state;

typedef struct mft_model {
    mft_config cfg;
    int B, T;            /* capacities fixed at init */
    int flags;           /* MFT_FORWARD | MFT_TRAIN | MFT_GENERATE */
    int n_threads;       /* 0 = OpenMP default; ignored without OpenMP */
    size_t n_params;
    float *params;       /* (n_params) */
    mft_params w;        /* views into params */
    float *grads;        /* (n_params) gradient of sum(w*CE) since the last step, or NULL */
    mft_params g;
    float *adam_m, *adam_v; /* (n_params) AdamW first and second moments, or NULL */
    mft_acts a;
    mft_dacts d;
    mft_decode_state s;
    long step;           /* optimizer steps taken */
    int sparse_logits;   /* 1: a forward() with targets and weights runs the classifier only on the
                            positions of weight > 0 (mft_set_anchor / mft_set_soft_targets add
                            theirs), and backward() only on those: the same loss and gradient, a
                            fraction of the time when few positions are trained. The other rows
                            of a.logits and a.lse then hold no meaning. mft_train_step always
                            works this way. */
    int dft;             /* 1: Dynamic Fine-Tuning (Wu et al. 2025, TRL's loss_type="dft"): every
                            weighted token's CE is also weighted by its own probability, detached */
    struct mft_lora *lora; /* NULL, or adapters that forward() adds and that backward() and step()
                            train instead of the weights (see mft_lora); decode() refuses them */
    int quantised;       /* the weights came from a quantised GGUF file (Q8_0, Q4_0, Q4_K, Q6_K)
                            and were dequantised */
    /* ---- private: the library's bookkeeping between calls; treat as opaque ---- */
    float *rope_cos, *rope_sin; /* (seq_len, hs) RoPE tables, expanded per element (see maskft.c) */
    float *gemm_ws;      /* the matrix products' packed panels, one slot per thread */
    int *cls_rows;       /* (N) with sparse_logits, the positions the classifier ran on, ascending */
    int *cls_have;       /* (N) 1 at those positions */
    int n_cls_rows;      /* how many; -1 when the last forward() ran it on every position */
    int fwd_B, fwd_T;    /* shape of the last forward() (0 when its activations are spent) */
    int fwd_has_targets; /* the last forward() computed a loss */
    int fwd_packed;      /* the last forward() had positions (mft_forward_packed) */
    double fwd_loss_sum; /* sum of w*CE over the last forward() (0 without targets) */
    double fwd_weight_sum;
    double fwd_anchor_sum; /* sum aw*KL of the anchor set for the last forward() */
    double step_loss_sum;   /* accumulated by backward() since the last step() */
    double step_weight_sum;
    double step_anchor_sum; /* sum(aw*KL) of the anchors since the last step() */
    const float *anchor_logits, *anchor_w; /* mft_set_anchor(), for the next backward() only */
    const int *soft_ids;  /* mft_set_soft_targets(), for the next backward() only */
    const float *soft_p, *soft_w;
    int soft_k;
    void *arena; size_t arena_bytes; int owns_arena;
} mft_model;

/* Bytes needed by mft_model_init for this shape; 0 if the configuration is invalid. */
MFT_API size_t mft_model_bytes(const mft_config *c, int B, int T, int flags);
/* Carves `mem` (mft_model_bytes large, any alignment) into a model. Weights are zero: fill them
   with mft_model_load_weights, mft_model_init_random, or by writing m->params. */
MFT_API mft_status mft_model_init(mft_model *m, const mft_config *c, int B, int T, int flags,
                                  void *mem, size_t mem_bytes, mft_error *err);
/* Random init as llama2.c's model.py: N(0, 0.02), output projections N(0, 0.02/sqrt(2L)),
   norms 1. Deterministic for a seed. */
MFT_API void mft_model_init_random(mft_model *m, uint64_t seed);
/* Frees the block if mft_model_open allocated it; always clears the struct. */
MFT_API void mft_model_free(mft_model *m);

/* Model files: a llama2.c checkpoint (v0, v1), a GGUF model (llama, qwen2, qwen3; F32, F16, BF16,
   Q8_0, Q4_0, Q4_K or Q6_K tensors, dequantised to fp32) or a Hugging Face folder (below), told
   apart by content.
   The configuration alone; the weights into a model of the same shape (llama2.c only); or one
   call: read the config, allocate one block, init, load (free with mft_model_free). */
MFT_API mft_status mft_model_config(const char *path, mft_config *c, mft_error *err);
MFT_API mft_status mft_model_config_from_memory(const void *data, size_t size, mft_config *c, mft_error *err);
MFT_API mft_status mft_model_load_weights(mft_model *m, const char *path, mft_error *err);
MFT_API mft_status mft_model_load_weights_from_memory(mft_model *m, const void *data, size_t size, mft_error *err);
MFT_API mft_status mft_model_open(mft_model *m, const char *path, int B, int T, int flags, mft_error *err);
MFT_API mft_status mft_model_open_from_memory(mft_model *m, const void *data, size_t size, int B, int T, int flags,
                                              mft_error *err);
/* A Hugging Face model from memory: config.json's text and the safetensors files (any number of
   shards; the tensors are found by name). mft_model_open and mft_model_config read a folder
   (path with a config.json: model.safetensors, or the shards model.safetensors.index.json
   names) the same way. Architectures: llama (Llama-2/3.x with llama3 rope scaling, TinyLlama,
   SmolLM, Mistral), qwen2, qwen3; anything else is refused by name. The context is the file's
   max_position_embeddings (a Mistral sliding window shortens it), at most MFT_MAX_CONTEXT
   (8192 unless defined when compiling maskft.c). Needs Part II (not under MFT_NO_TEXT). */
MFT_API mft_status mft_hf_open_from_memory(mft_model *m, const char *config_json, size_t config_len,
                                           const void *const *shards, const size_t *shard_sizes, int n_shards, int B,
                                           int T, int flags, mft_error *err);
struct mft_tokenizer; /* below */
/* Writes a Hugging Face folder into the existing directory dir: config.json (the config, as
   transformers writes it for the architecture), model.safetensors in dtype (MFT_DTYPE_*; -1:
   the type the model was read in), q/k rows back in transformers' order, and
   generation_config.json. The tokenizer's files (tokenizer.json, tokenizer_config.json,
   tokenizer.model, special_tokens_map.json, and generation_config.json if there is one) are
   copied from the folder copy_from (may be NULL); t (may be NULL) gives bos/eos ids. Each file
   goes to FILE.tmp first and is renamed. */
MFT_API mft_status mft_hf_save(const mft_model *m, const char *dir, int dtype, const struct mft_tokenizer *t,
                               const char *copy_from, mft_error *err);
/* Writes a GGUF v3 file llama.cpp runs (llama, qwen2 or qwen3 by the config): matrices as dtype
   (MFT_DTYPE_F32/F16/BF16, or -1 for the model's own), norms and biases F32, with t's vocabulary
   (SentencePiece with scores, or byte-level BPE with merges), special ids and chat template;
   rows of a padded embedding past the vocabulary (Qwen) become unused tokens "[PAD<id>]". A
   SentencePiece-style tokenizer.json (merges by rank) gets scores from its ranks. Needs Part II
   (not under MFT_NO_TEXT). Written to path.tmp, then renamed. */
MFT_API mft_status mft_gguf_save(const mft_model *m, const char *path, int dtype, const struct mft_tokenizer *t,
                                 mft_error *err);
/* Writes a llama2.c version-0 checkpoint (path.tmp, then renamed). */
MFT_API mft_status mft_model_save(const mft_model *m, const char *path, mft_error *err);

/* ---- forward and the masked loss --------------------------------------------------------- */

/* What forward() measured: the masked loss of its micro-batch (zeros without targets). */
typedef struct mft_fwd_info {
    double loss_sum;     /* sum of w * CE */
    double weight_sum;   /* sum of w */
    float loss;          /* loss_sum / weight_sum, 0 when the weights are all 0 */
} mft_fwd_info;

/* Forward over inputs (B, T) -> m->a.logits (B*T, V). When targets (B, T) are given, also the
   masked loss of this micro-batch (into *info, which may be NULL); weights may be NULL (all 1).
   Needs MFT_FORWARD. T must not exceed the context or the capacity. */
MFT_API mft_status mft_forward(mft_model *m, const int *inputs, const int *targets, const float *weights, int B,
                               int T, mft_fwd_info *info, mft_error *err);
/* The same for rows that pack several examples: pos (B, T) is each token's position inside its
   own example (0, 1, 2, ... restarting at 0 where the next example begins). A token attends
   only to its own example and gets its RoPE angle from pos, so a packed row gives the loss and
   gradients the examples would give one by one. mft_forward is this with pos = NULL. */
MFT_API mft_status mft_forward_packed(mft_model *m, const int *inputs, const int *targets, const float *weights,
                                      const int *pos, int B, int T, mft_fwd_info *info, mft_error *err);
/* Optional, between forward() and backward(): the context anchor. Adds sum_n aw[n] *
   KL(softmax(base_logits[n]) || softmax(logits[n])) to what backward() differentiates, so the
   step's objective becomes (sum w CE + sum aw KL) / sum w. base_logits (B*T, V) are a frozen
   base model's logits on the same rows (its own forward()), aw (B*T) >= 0, typically set on the
   untrained positions; both must stay valid until backward(), which uses and forgets them.
   *kl_sum (may be NULL) gets sum aw*KL. */
MFT_API mft_status mft_set_anchor(mft_model *m, const float *base_logits, const float *anchor_w, double *kl_sum,
                                  mft_error *err);
/* Optional, between forward() and backward(): soft targets, the teacher's distributions (the
   teacher in context, or the anchor from a cache). At each position n with tw[n] > 0, ids and
   probs (B*T, k) hold the teacher's k most likely next tokens and their probabilities P_i; the
   rest, r = 1 - sum P_i, is one bin "every other token". Adds sum_n tw[n] KL(P_n || Q_n) with
   Q the model's distribution coarsened the same way (its k tokens, and the mass of all the
   others): sum_i P_i log(P_i / Q_i) + r log(r / Q_rest). With k = V it is the full KL, and
   the gradient on the logits is tw (Q - P) exactly as the anchor's. 1 <= k <= min(V,
   MFT_SOFT_KMAX); the k ids of a row must be distinct. The arrays must stay valid until
   backward(); the term counts in mft_step_info.anchor. *kl_sum (may be NULL) = sum tw KL. */
#define MFT_SOFT_KMAX 1024
MFT_API mft_status mft_set_soft_targets(mft_model *m, const int *ids, const float *probs, int k, const float *tw,
                                        double *kl_sum, mft_error *err);
/* KL(softmax(p) || softmax(q)) in nats, computed in double. */
MFT_API double mft_kl_logits(const float *p, const float *q, int V);
/* nll[t] = -log p(ids[t+1] | ids[0..t]) for t < n-1, one forward pass (needs MFT_FORWARD). */
MFT_API mft_status mft_token_nll(mft_model *m, const int *ids, int n, float *nll, mft_error *err);

/* ---- backward ---------------------------------------------------------------------------- */

/* Accumulates into m->grads the gradient of sum(w*CE) of the last forward(); adds its loss and
   weight to the step totals. Needs MFT_TRAIN and a forward() with targets. */
MFT_API mft_status mft_backward(mft_model *m, mft_error *err);
MFT_API void mft_zero_grad(mft_model *m);

/* ---- step -------------------------------------------------------------------------------- */

/* AdamW as torch.optim.AdamW (decoupled weight decay, bias correction; every parameter
   decayed, as AdamW(model.parameters()) does), global-norm clipping as
   torch.nn.utils.clip_grad_norm_, and a learning-rate schedule: linear warmup over
   warmup_steps (lr * (s+1)/warmup), then cosine decay to lr*min_lr_ratio at total_steps. */
typedef struct mft_train_opts {
    float lr;            /* peak learning rate. default 1e-3 (PyTorch) */
    float beta1, beta2;  /* 0.9, 0.999 */
    float eps;           /* 1e-8 */
    float weight_decay;  /* 0.01 (PyTorch's AdamW default); 0 is a real value */
    float max_grad_norm; /* clip the global L2 norm to this; <= 0 disables. default 1.0 */
    int warmup_steps;    /* default 0 */
    int total_steps;     /* 0: constant lr after warmup (default) */
    float min_lr_ratio;  /* cosine floor as a fraction of lr. default 0 */
} mft_train_opts;
MFT_API mft_train_opts mft_train_opts_default(void);
MFT_API float mft_lr_at(const mft_train_opts *o, long step);

typedef struct mft_step_info {
    float loss;          /* sum(w*CE) / sum(w) over the step's micro-batches; 0 if empty */
    float grad_norm;     /* global L2 norm of the normalised gradient, before clipping */
    float lr;            /* learning rate used */
    double weight_sum;   /* sum of the step's loss weights (trained tokens when weights are 0/1) */
    float anchor;        /* sum(aw*KL) / sum(w) of the step's anchors (mft_set_anchor); 0 without */
} mft_step_info;

/* Normalises the accumulated gradient by the step's weight sum, clips, applies AdamW and
   zeroes the gradient. Returns MFT_EMPTY_MASK (weights untouched) when the weight sum is 0,
   MFT_ERR_NONFINITE (weights untouched, gradient zeroed) on NaN/Inf. info may be NULL. */
MFT_API mft_status mft_step(mft_model *m, const mft_train_opts *o, mft_step_info *info, mft_error *err);
/* forward + backward + step on one micro-batch. */
MFT_API mft_status mft_train_step(mft_model *m, const mft_train_opts *o, const int *inputs, const int *targets,
                                  const float *weights, int B, int T, mft_step_info *info, mft_error *err);

/* ---- LoRA adapters ------------------------------------------------------------------------
   Low-rank adapters (Hu et al. 2021, as Hugging Face PEFT defines them, without dropout) on
   the seven projections of every layer: for a weight W (out, in), y = x W^T + s (x A^T) B^T,
   A (rank, in), B (out, rank), s = alpha / rank. A starts uniform in +-1/sqrt(in) (PEFT's
   kaiming_uniform(a=sqrt(5))), B at 0, so an attached adapter changes nothing until trained.
   Attach with m->lora = &lora on a model of the same B x T capacity: forward() adds the
   adapters, backward() accumulates their gradients (the weights' own only when the model has
   them: open it with MFT_TRAIN | MFT_FROZEN to save their 12 bytes per parameter), and step()
   updates the adapters only, with the same AdamW, clipping and schedule. mft_lora_merge folds
   them into the weights (W += s B A) for saving, generation and scoring. */
enum { MFT_LORA_Q, MFT_LORA_K, MFT_LORA_V, MFT_LORA_O, MFT_LORA_GATE, MFT_LORA_DOWN, MFT_LORA_UP, MFT_LORA_N };
typedef struct mft_lora {
    int rank;
    float alpha, scale;  /* scale = alpha / rank */
    int n_layers, B, T;
    size_t n_params;     /* adapter parameters, all layers and targets */
    float *params, *grads, *adam_m, *adam_v; /* (n_params) each: per layer, per target, A then B */
    float *u;            /* (L, MFT_LORA_N, B*T, rank) s x A^T of the last forward, for backward */
    float *tmp;          /* (B*T, max out) scratch */
    void *arena; size_t arena_bytes; int owns_arena;
} mft_lora;
/* The projection a target adapts: its input and output widths. */
MFT_API void mft_lora_shape(const mft_config *c, int target, int *in, int *out);
/* A (rank, in) and B (out, rank) of layer l's target, views into lora->params (or into grads,
   with grads = 1). */
MFT_API float *mft_lora_a(const mft_lora *lo, const mft_config *c, int l, int target, int grads);
MFT_API float *mft_lora_b(const mft_lora *lo, const mft_config *c, int l, int target, int grads);
MFT_API size_t mft_lora_bytes(const mft_config *c, int rank, int B, int T);
MFT_API mft_status mft_lora_init(mft_lora *lo, const mft_config *c, int rank, float alpha, int B, int T,
                                 uint64_t seed, void *mem, size_t mem_bytes, mft_error *err);
/* mft_lora_init in a block of its own (malloc'd; mft_lora_free releases it). */
MFT_API mft_status mft_lora_open(mft_lora *lo, const mft_config *c, int rank, float alpha, int B, int T,
                                 uint64_t seed, mft_error *err);
MFT_API void mft_lora_free(mft_lora *lo);
/* The adapters as Hugging Face PEFT saves them, into the folder dir (which must exist):
   adapter_model.safetensors (F32, B's q/k rows in transformers' order) and adapter_config.json
   (r, lora_alpha, the seven target modules, base_name as base_model_name_or_path). Needs
   Part II (not under MFT_NO_TEXT). */
MFT_API mft_status mft_lora_save(const mft_lora *lo, const mft_config *c, const char *dir, const char *base_name,
                                 mft_error *err);
/* W += s B A for every target; the adapters stay as they are (detach them: m->lora = NULL). */
MFT_API mft_status mft_lora_merge(mft_model *m, const mft_lora *lo, mft_error *err);

/* Training checkpoint: weights, AdamW moments, step counter and `user_bytes` of the caller's
   own run state (data position, RNG), hashed, written to PATH.tmp and renamed. Loading checks
   shape, size and hash before it overwrites anything; the model must have the same shape. */
MFT_API mft_status mft_checkpoint_save(const mft_model *m, const char *path, const void *user, size_t user_bytes,
                                       mft_error *err);
MFT_API mft_status mft_checkpoint_load(mft_model *m, const char *path, void *user, size_t user_bytes, mft_error *err);
MFT_API mft_status mft_checkpoint_load_from_memory(mft_model *m, const void *data, size_t size, void *user,
                                                   size_t user_bytes, mft_error *err);

/* ---- generation ------------------------------------------------------------------------ */

/* Feeds one token at position pos (0 <= pos < seq_len) through the model using the KV cache
   (positions 0..pos-1 must have been fed before) and points *logits at the next-token logits
   (V), valid until the next call (the buffer is the model's scratch: mft_sample may overwrite
   it). Needs MFT_GENERATE. */
MFT_API mft_status mft_decode(mft_model *m, int token, int pos, float **logits, mft_error *err);

/* Samples a token: temperature 0 = argmax (lowest id on ties); else softmax(logits/temp)
   restricted to the smallest set of tokens whose probability reaches top_p (top_p <= 0 or
   >= 1: no cut). *rng is the caller's state (any seed; NULL: a fixed one); it advances. The
   logits are overwritten with the probabilities. Ties at the top-p threshold are all kept. */
MFT_API int mft_sample(float *logits, int V, float temperature, float top_p, uint64_t *rng);

typedef struct mft_gen_opts {
    int max_new;         /* new tokens at most (default 256) */
    float temperature;   /* 0 = greedy (default) */
    float top_p;         /* nucleus; 1 = no cut (default) */
    int stop[4];         /* tokens that end the generation (not written to out); -1 = unused */
    /* called with every new token as it is chosen (before it is fed back); a nonzero return
       stops the generation after that token. NULL: none. */
    int (*on_token)(void *user, int token);
    void *user;
} mft_gen_opts;
MFT_API mft_gen_opts mft_gen_opts_default(void);
/* The model's continuation of prompt[0..n_prompt): the prompt is fed through the KV cache from
   position 0, then tokens are sampled one by one (mft_sample) into out until max_new, a stop
   token (*ended = 1; it is not written), on_token's request, or the context's end (prompt and
   continuation fit in seq_len positions). *n_out new tokens were written (at most cap:
   MFT_ERR_SPACE if cap is smaller than what was generated). Needs MFT_GENERATE. */
MFT_API mft_status mft_generate(mft_model *m, const int *prompt, int n_prompt, const mft_gen_opts *o, uint64_t *rng,
                                int *out, int cap, int *n_out, int *ended, mft_error *err);
/* mft_generate for a prompt that grows, as a conversation's does: cache[0..*n_cache) are the
   tokens the model's KV cache holds from earlier calls (room for seq_len; start with *n_cache =
   0, and set it to 0 again after anything else uses the cache: mft_decode, mft_generate, a
   second conversation). Only the prompt after its longest common prefix with them is fed (the
   last prompt token always is, for its logits), then tokens are sampled as mft_generate samples
   them, with the same result. On return cache[0..*n_cache) are the tokens now held: the prompt
   and the new tokens that were fed back (all of them when a stop token ended the generation,
   all but the last otherwise; after an error, the prefix that was kept). */
MFT_API mft_status mft_generate_cached(mft_model *m, const int *prompt, int n_prompt, int *cache, int *n_cache,
                                       const mft_gen_opts *o, uint64_t *rng, int *out, int cap, int *n_out, int *ended,
                                       mft_error *err);

/* The generator of the data order (xorshift64, Marsaglia's 13/7/17 triple; any nonzero state):
   mft_rand advances it, mft_shuffle is Fisher-Yates with it. mft_sample has its own stream. */
MFT_API uint64_t mft_rand(uint64_t *state);
MFT_API void mft_shuffle(int *a, int n, uint64_t *state);
/* FNV-1a, 64 bits: mft_hash(MFT_HASH_SEED, p, n), then chain more bytes onto the result. */
#define MFT_HASH_SEED 14695981039346656037ull
MFT_API uint64_t mft_hash(uint64_t h, const void *p, size_t n);

/* ============================================================================================
   PART II: TEXT AND DATA
   ============================================================================================ */

/* ---- files ------------------------------------------------------------------------------- */

/* Reads a whole file (path NULL: standard input) into a malloc'd, NUL-terminated buffer; free
   it with mft_free. Files over max_bytes are refused (MFT_ERR_FORMAT). */
MFT_API mft_status mft_read_file(const char *path, size_t max_bytes, char **data, size_t *size, mft_error *err);
/* The next record of JSONL text data[0..size) from *pos: the next line that is not blank
   (spaces, tabs, a CR), without its newline. *line counts lines (start it at 0) for
   file:line messages. Returns 1 with *rec / *len set, 0 at the end. */
MFT_API int mft_jsonl_next(const char *data, size_t size, size_t *pos, int *line, const char **rec, int *len);

/* ---- JSON (reading) -----------------------------------------------------------------------
   The strict RFC 8259 parser the loaders use, for callers that read JSONL too. Nodes are ints
   (-1 = none); strings come back decoded (UTF-8, escapes resolved), valid until mft_json_free.
   Walk an array with mft_json_first / mft_json_next (mft_json_at is O(i)). */
typedef struct mft_json mft_json;
MFT_API mft_json *mft_json_parse(const char *text, int len, mft_error *err); /* len < 0: NUL-terminated */
/* The same for text that starts at line `line` of file `where`: an error reads
   "where:line:column: what", as compilers write them. */
MFT_API mft_json *mft_json_parse_at(const char *text, int len, const char *where, int line, mft_error *err);
/* Where a node starts in the parsed text (which must still exist): line and column (bytes),
   both from 1. */
MFT_API void mft_json_pos(const mft_json *j, int node, int *line, int *col);
MFT_API void mft_json_free(mft_json *j);
MFT_API int mft_json_root(const mft_json *j);
MFT_API int mft_json_get(const mft_json *j, int object, const char *key);
MFT_API int mft_json_len(const mft_json *j, int node);            /* array/object members, string bytes */
MFT_API int mft_json_first(const mft_json *j, int node);          /* first member of an array/object */
MFT_API int mft_json_next(const mft_json *j, int node);           /* the member after this one */
MFT_API int mft_json_at(const mft_json *j, int array, int i);
MFT_API const char *mft_json_str(const mft_json *j, int node, int *len); /* NULL if not a string */
MFT_API int mft_json_num(const mft_json *j, int node, double *out);      /* 0 if not a number */
/* s[0..n) as a JSON string literal (quotes included) into out; *len = its length. A byte that
   is not part of a valid UTF-8 character is written as \ufffd, so the literal is always JSON. */
MFT_API mft_status mft_json_escape(const char *s, int n, char *out, int cap, int *len);

/* UTF-8: the length (1..4) of the valid character at s (n bytes available), 0 if the bytes
   there are not one (overlong forms, surrogates and values above U+10FFFF are invalid, as in
   RFC 3629); and whether s[0..n) is valid UTF-8 as a whole. */
MFT_API int mft_utf8_len(const char *s, int n);
MFT_API int mft_utf8_valid(const char *s, int n);

/* ---- GGUF metadata ------------------------------------------------------------------------- */

enum { /* GGUF value types, numbered as in the GGUF specification */
    MFT_GGUF_UINT8, MFT_GGUF_INT8, MFT_GGUF_UINT16, MFT_GGUF_INT16, MFT_GGUF_UINT32, MFT_GGUF_INT32,
    MFT_GGUF_FLOAT32, MFT_GGUF_BOOL, MFT_GGUF_STRING, MFT_GGUF_ARRAY, MFT_GGUF_UINT64, MFT_GGUF_INT64,
    MFT_GGUF_FLOAT64
};

typedef struct mft_gguf_str { const char *s; uint64_t n; } mft_gguf_str;

typedef struct mft_gguf_kv {
    const char *key;
    int type;              /* MFT_GGUF_* */
    int arr_type;          /* element type when type == MFT_GGUF_ARRAY */
    uint64_t n;            /* string bytes, or array elements */
    union { uint64_t u; int64_t i; double f; } v; /* scalars (u and i agree for integers) */
    const void *data;      /* string bytes (NUL-terminated); array: mft_gguf_str[n] for strings,
                              else the elements as stored (little-endian); NULL for nested arrays */
} mft_gguf_kv;

typedef struct mft_gguf_tensor {
    const char *name;
    int n_dims;
    uint64_t dims[4];
    int type;              /* ggml type: 0 F32, 1 F16, ... */
    uint64_t offset;       /* from data_offset */
} mft_gguf_tensor;

typedef struct mft_gguf {
    int version;           /* 1, 2 or 3 */
    uint64_t n_kv, n_tensors, alignment, data_offset, file_size;
    mft_gguf_kv *kv;
    mft_gguf_tensor *tensors;
    void *mem;             /* private */
} mft_gguf;

/* Reads a GGUF file's metadata and tensor table (not the tensor data). Every count, length
   and offset is checked against the file size. Free with mft_gguf_free. */
MFT_API mft_status mft_gguf_open(mft_gguf *g, const char *path, mft_error *err);
MFT_API mft_status mft_gguf_open_from_memory(mft_gguf *g, const void *data, size_t size, mft_error *err);
MFT_API void mft_gguf_free(mft_gguf *g);
MFT_API const mft_gguf_kv *mft_gguf_get(const mft_gguf *g, const char *key); /* NULL if absent */

/* ---- tokenizers ------------------------------------------------------------------------------
   One type for every file a model comes with:
     llama2.c tokenizer.bin   SentencePiece BPE (vocabulary size from the model)
     SentencePiece .model     BPE models; add_dummy_prefix, remove_extra_whitespaces,
                              byte_fallback and the special ids are read from it
     tokenizer.json           Hugging Face BPE: byte-level (GPT-2, Llama-3, Qwen2, StarCoder
                              pre-tokenizers, NFC) or SentencePiece-style (Metaspace / Prepend +
                              Replace, byte fallback); added_tokens; tokenizer_config.json beside
                              it gives bos/eos/pad, add_bos_token and chat_template
     GGUF                     tokenizer.ggml.model "llama" or "gpt2" (tokens, scores, token
                              types, merges, pre-tokenizer name, special ids, add_bos/eos,
                              add_space_prefix, chat_template)
   Encoding is exact to the reference implementations: SentencePiece for SentencePiece
   vocabularies, Hugging Face tokenizers / llama.cpp for byte-level ones (see tests/). */

enum { MFT_TOK_SPM = 1, MFT_TOK_BPE = 2 };
enum { MFT_PRE_GPT2 = 1, MFT_PRE_LLAMA3, MFT_PRE_QWEN2, MFT_PRE_STARCODER };
/* token types (SentencePiece's numbering, which GGUF uses too) */
enum { MFT_TOKEN_NORMAL = 1, MFT_TOKEN_UNKNOWN, MFT_TOKEN_CONTROL, MFT_TOKEN_USER, MFT_TOKEN_UNUSED, MFT_TOKEN_BYTE };

typedef struct mft_tokenizer {
    int kind;               /* MFT_TOK_SPM or MFT_TOK_BPE */
    int vocab_size;
    int bos_id, eos_id, eot_id, unk_id, pad_id; /* -1 when the vocabulary has none; eot_id is the
                                                   token that ends a turn (eos unless the file says) */
    int eos_ids[4], n_eos_ids; /* every id generation_config.json lists as eos_token_id (Llama-3:
                                  <|end_of_text|>, <|eom_id|>, <|eot_id|>); 0 without that file */
    int add_bos, add_eos;   /* what the files ask for; mft_encode adds them only when told to */
    int add_dummy_prefix;   /* SentencePiece: a space in front of the text */
    int remove_extra_spaces;/* SentencePiece: strip and collapse runs of spaces */
    int byte_fallback;      /* unknown characters become <0xNN> byte tokens */
    int pre;                /* byte-level pre-tokenizer, MFT_PRE_* */
    int nfc;                /* NFC-normalise first (Qwen2) */
    int ignore_merges;      /* a word that is itself a token is not split (Llama-3) */
    const char *source;     /* "tokenizer.bin", "sentencepiece", "tokenizer.json" or "gguf" */
    char *chat_template;    /* from tokenizer_config.json or GGUF, or NULL */
    /* ---- private: the tables of the encoder and decoder; treat as opaque ---- */
    float *scores;          /* (V) SentencePiece merge priority: higher merges first */
    uint8_t *types;         /* (V) MFT_TOKEN_* (read them with mft_token_type) */
    uint8_t *strip;         /* (V) bit 0: a special token takes the ASCII whitespace before it
                               (Hugging Face's lstrip), bit 1: after it (rstrip) */
    uint32_t *piece_off;    /* (V+1) piece i = pieces[off[i]..off[i+1]): the raw bytes it stands for */
    char *pieces;
    uint32_t *dec_off;      /* (V+1) what each token decodes to (byte tokens resolved, control empty) */
    char *dec;
    int byte_id[256];       /* the token of each single byte, or -1 */
    int32_t *hash;          /* open addressing: piece -> id */
    uint32_t hash_cap;
    uint64_t *merge_key;    /* open addressing: (left id, right id) -> rank, merged id */
    int32_t *merge_rank, *merge_id;
    uint32_t merge_cap;     /* 0: merge by score (SentencePiece) */
    int32_t *special;       /* ids of control and user-defined tokens, longest text first */
    int n_special;
    int ws_split;           /* SentencePiece: merges never cross a space that follows a non-space */
    int prefix_after_special; /* the dummy prefix also follows each special token (llama.cpp, HF);
                                 0: once, in front of the whole text (SentencePiece itself) */
    int digit_runs;         /* MFT_PRE_STARCODER: split digit runs, not single digits */
    uint8_t special_first[256]; /* bit 0: a user-defined token starts with this byte; bit 1: a control one */
    void *mem;
} mft_tokenizer;

/* mft_encode flags. MFT_SPECIAL: text such as "<|im_start|>" becomes that control token;
   without it, control-token text is tokenised as plain text, so user content cannot inject
   control tokens (user-defined tokens are always matched, as SentencePiece, HF and llama.cpp
   do). With MFT_SPECIAL, a SentencePiece dummy prefix also follows every special token, as
   llama.cpp does. In mft_decode_ids, MFT_SPECIAL shows control tokens as their text. */
enum { MFT_BOS = 1, MFT_EOS = 2, MFT_SPECIAL = 4 };

/* Opens any of the formats above, recognised by content (from a path, tokenizer_config.json
   beside a tokenizer.json is applied too). vocab_size is the model's: needed for
   tokenizer.bin (which does not store it); for the others, 0 or a limit (a tokenizer with more
   tokens than the model is an error). Free with mft_tokenizer_free. */
MFT_API mft_status mft_tokenizer_open(mft_tokenizer *t, const char *path, int vocab_size, mft_error *err);
MFT_API mft_status mft_tokenizer_open_from_memory(mft_tokenizer *t, const void *data, size_t size, int vocab_size,
                                                  mft_error *err);
/* A tokenizer_config.json: bos/eos/pad/unk tokens, add_bos_token/add_eos_token, chat_template. */
MFT_API mft_status mft_tokenizer_apply_config(mft_tokenizer *t, const char *json, size_t len, mft_error *err);
/* A generation_config.json: eos_token_id, one id or a list (into eos_ids). mft_tokenizer_open
   reads both files when they sit beside a tokenizer.json, as mft_tokenizer_for_model does in a
   folder. */
MFT_API mft_status mft_tokenizer_apply_generation_config(mft_tokenizer *t, const char *json, size_t len,
                                                         mft_error *err);
/* The tokens a generation ends at, without repeats, into stop[0..4): end (the end-of-turn token
   a template uses, or -1), eos, then the eos_ids of generation_config.json, then bos (a
   TinyStories model ends a story with BOS), as far as they fit. Returns how many. */
MFT_API int mft_tokenizer_stops(const mft_tokenizer *t, int end, int stop[4]);
MFT_API mft_status mft_tokenizer_from_gguf(mft_tokenizer *t, const mft_gguf *g, mft_error *err);
/* The tokenizer that comes with a model: the vocabulary inside a GGUF model file, or a file
   beside the checkpoint, or inside it when it is a folder (tokenizer.json, tokenizer.model,
   tokenizer.bin, tok<V>.bin). */
MFT_API mft_status mft_tokenizer_for_model(mft_tokenizer *t, const char *model_path, int vocab_size, mft_error *err);
/* The file mft_tokenizer_for_model reads for that model (the model itself for GGUF), into
   *path (free with mft_free); for a model not written yet, the one it would read: what a
   program copies beside a model it writes, and checks is not another tokenizer. */
MFT_API mft_status mft_tokenizer_path(const char *model_path, int vocab_size, char **path, mft_error *err);
MFT_API void mft_tokenizer_free(mft_tokenizer *t);

/* Encodes `len` bytes of UTF-8 (len < 0: NUL-terminated; at most 256 MiB per call) into at
   most cap ids; *n_out is the number of tokens (see BUFFERS: cap 0 measures). If offsets is
   not NULL it receives 2 ints per token (2 * cap at most): the [begin, end) byte range of the
   input the token came from; the ranges are in order and cover the input (BOS/EOS get empty
   ranges; a dummy prefix or a removed space belongs to the next token). Invalid UTF-8 bytes
   become byte tokens (or unk). Allocates temporary memory proportional to the text. */
MFT_API mft_status mft_encode(const mft_tokenizer *t, const char *text, int len, int flags, int *ids, int cap,
                              int *n_out, int *offsets, mft_error *err);
/* The bytes token `id` decodes to when it follows `prev` (prev < 0: at the start). A
   SentencePiece dummy-prefix space at the start or after BOS is dropped. Control tokens decode
   to nothing. Returns NULL for an invalid id. */
MFT_API const char *mft_token_bytes(const mft_tokenizer *t, int prev, int id, int *len);
/* The token's piece as stored (control tokens' text, e.g. "<|im_end|>"); NULL if invalid. */
MFT_API const char *mft_token_piece(const mft_tokenizer *t, int id, int *len);
/* MFT_TOKEN_* of a token, 0 for an invalid id; the id of the token whose piece is exactly
   s[0..n), or -1. */
MFT_API int mft_token_type(const mft_tokenizer *t, int id);
MFT_API int mft_token_find(const mft_tokenizer *t, const char *s, int n);
/* Decodes ids into out (NUL-terminated); *len = the text's length (see BUFFERS). */
MFT_API mft_status mft_decode_ids(const mft_tokenizer *t, const int *ids, int n, int flags, char *out, int cap,
                                  int *len, mft_error *err);
/* Streaming decode: feed ids one by one; *len bytes are written to out, holding back an
   incomplete UTF-8 character until the token that completes it. id = -1 flushes what is held
   back. MFT_ERR_SPACE (nothing consumed, *len = the room needed) when cap is too small: 8 +
   the longest piece is always enough. Start with a zeroed mft_detok whose prev is -1. */
typedef struct mft_detok { int prev, npend; unsigned char pend[8]; } mft_detok;
MFT_API mft_status mft_detok_stream(const mft_tokenizer *t, mft_detok *st, int id, char *out, int cap, int *len);

/* ---- chat templates ---------------------------------------------------------------------
   Built-in renderers that produce exactly what a model family's own Jinja chat template
   produces (checked against the real templates rendered by jinja2, tests/gen_chat_goldens.py).
   Families (CLI names in quotes): "plain" (contents one after another), "llama3", "qwen3"
   (ChatML with its <think> rules and tool turns), "phi3", "chatml", "zephyr", "llama2" (system
   folded into the first [INST]), "mistral" (Mixtral-8x7B-Instruct-v0.1 / Mistral v0.2 [INST]
   form), "mistral-v0.1" (Mistral-7B-Instruct-v0.1: a space after each </s>), "mistral-v3"
   (v0.3 / Nemo: "[INST] x[/INST]", the system message before the last user turn), "gemma"
   (Gemma 1/2), "gemma3" (the system message prefixed to the first user turn). The renderers
   refuse what their templates refuse (turns that do not alternate, a system message where the
   template raises). */

enum { MFT_CHAT_PLAIN = 0, MFT_CHAT_LLAMA3, MFT_CHAT_QWEN3, MFT_CHAT_PHI3, MFT_CHAT_CHATML, MFT_CHAT_LLAMA2,
       MFT_CHAT_MISTRAL, MFT_CHAT_GEMMA, MFT_CHAT_ZEPHYR, MFT_CHAT_MISTRAL_V1, MFT_CHAT_MISTRAL_V3,
       MFT_CHAT_GEMMA3, MFT_CHAT_COUNT };
enum { MFT_ROLE_SYSTEM = 0, MFT_ROLE_USER, MFT_ROLE_ASSISTANT, MFT_ROLE_TOOL };

typedef struct mft_chat_msg { int role; const char *content; int len; } mft_chat_msg;

/* The family of a Jinja chat template (a tokenizer's chat_template), or -1. Sets
   *always_generation_prompt when the template adds the assistant header unconditionally. */
MFT_API int mft_chat_detect(const char *jinja, int *always_generation_prompt);
/* "llama3" <-> MFT_CHAT_LLAMA3 and so on (names above); -1 / NULL when unknown */
MFT_API int mft_chat_family(const char *name);
MFT_API const char *mft_chat_family_name(int family);
/* Renders n messages into out (NUL-terminated; *len = the text's length, see BUFFERS).
   ranges, if not NULL, gets 2 ints per message: the [begin, end) of the text rendered from its
   content (-1, -1 if the template drops it); origin, if not NULL, 1 int per message: the
   position in out where byte 0 of the content would be (templates trim or rewrite some
   contents, e.g. Llama-3's trim, Qwen3's <think>), so that content offsets map to out. t
   supplies the BOS/EOS text some templates write. */
MFT_API mft_status mft_chat_render(int family, const mft_tokenizer *t, const mft_chat_msg *m, int n,
                                   int add_generation_prompt, char *out, int cap, int *len, int *ranges, int *origin,
                                   mft_error *err);
/* A conversation as the model reads it, tokenised as mft_example_from_json tokenises a record:
   m[0..n) rendered with the family (-1: the one the tokenizer's chat_template is of, else
   plain), control-token text encoded as control tokens, BOS in front of plain text (the
   templates write their own), the assistant's header at the end when add_generation_prompt
   (plain text has none). ids gets *n_ids tokens (at most cap; see BUFFERS). With
   mft_generate_cached, a chat: the history and the new user turn encoded every turn, only the
   tokens the KV cache does not hold yet fed. */
MFT_API mft_status mft_chat_encode(const mft_tokenizer *t, int family, const mft_chat_msg *m, int n,
                                   int add_generation_prompt, int *ids, int cap, int *n_ids, mft_error *err);

/* ---- training data and masks --------------------------------------------------------------
   One JSONL record -> token ids and loss weights. Records: {"text": ...} (every token trained),
   {"prompt": ..., "completion": ...}, {"messages": [{"role", "content", "train"?, "weight"?,
   "key_spans"?, "draft"?}, ...]} or pre-tokenized {"input_ids": [...], "labels": [...]} (-100 =
   not trained, as TRL and Axolotl write them). Key knowledge is marked inline as
   {{key}}...{{/key}} (delimiters configurable, a backslash before one makes it literal) or as
   "key_spans": [[begin, end], ...] in Unicode code points of the content (as Axolotl counts).
   Rule: a token is in a key span if any of its bytes are. The mask is eligible x selected:
   eligible turns (assistant by default; "train"/"weight" per message override), selected
   tokens by policy (all; key; diff = the answer's tokens not in a longest common subsequence
   with the model's own draft), plus the end token of every trained turn (the template's:
   <|eot_id|>, <|im_end|>, <|end|>; for plain text from a llama2.c tokenizer, BOS, which is how
   TinyStories models end a story). surprise:TAU / known:TAU narrow any of these with the base
   model's NLL (mft_mask_by_nll). Weights belong to target positions: w[t] weights the
   prediction of ids[t+1]. */

enum { MFT_POLICY_ALL = 1, MFT_POLICY_KEY, MFT_POLICY_DIFF };
enum { MFT_ELIGIBLE_ASSISTANT = 0, MFT_ELIGIBLE_ALL, MFT_ELIGIBLE_LAST };
/* what each token of an example is */
enum { MFT_TAG_CONTEXT = 0, MFT_TAG_TURN = 1, MFT_TAG_TRAINED = 2, MFT_TAG_END = 3 };

typedef struct mft_data_opts {
    int policy;             /* MFT_POLICY_*; default KEY */
    int eligible;           /* MFT_ELIGIBLE_*; default ASSISTANT */
    int template_family;    /* MFT_CHAT_*, or -1: detected from the tokenizer's chat template, else plain */
    int eot_id;             /* -1: the template's end token */
    int train_eot;          /* train the end token of each trained turn; default 1 */
    const char *key_open, *key_close; /* "{{key}}", "{{/key}}" */
    int max_len;            /* > 0: keep at most this many tokens (the context) */
} mft_data_opts;
MFT_API mft_data_opts mft_data_opts_default(void);

typedef struct mft_example {
    int n;                  /* tokens */
    int *ids;               /* (n) */
    float *w;               /* (n) w[t] weights predicting ids[t+1]; w[n-1] = 0 */
    uint8_t *tag;           /* (n) MFT_TAG_* of each token: context, in an eligible turn, trained,
                               the trained end token */
    int n_trained;          /* tokens with a weight > 0 */
} mft_example;

/* Parses and masks one record (len < 0: NUL-terminated). Errors are reported as
   "where:line:column: what". Free with mft_example_free. */
MFT_API mft_status mft_example_from_json(const mft_tokenizer *t, const mft_data_opts *o, const char *json, int len,
                                         const char *where, int line, mft_example *ex, mft_error *err);
MFT_API void mft_example_free(mft_example *ex);
/* The "let the model write the training text" step: for each assistant turn (or completion)
   of a record, the model's own answer to what precedes it (greedy at temperature 0, up to
   max_new tokens or its end token) becomes both the content and "draft", ready for a person
   to put the new facts in. {"text"} and {"input_ids"} records come back unchanged. *out is a
   JSON line (free it with mft_free). Needs a model opened with MFT_GENERATE. */
MFT_API mft_status mft_draft_record(mft_model *m, const mft_tokenizer *t, const mft_data_opts *o, const char *json,
                                    int len, int max_new, float temperature, uint64_t *rng, const char *where,
                                    int line, char **out, mft_error *err);
/* The end token examples get under o (its eot_id, else the template's; see above). */
MFT_API int mft_end_token(const mft_tokenizer *t, const mft_data_opts *o);
/* Narrows an example's mask with the model: keep_surprising = 1 keeps the trained tokens whose
   NLL is above tau nats (surprise:TAU: what the model does not know yet), 0 those at or below
   (known:TAU, the low-perplexity policy). End tokens keep their weight. */
MFT_API mft_status mft_mask_by_nll(mft_model *m, mft_example *ex, float tau, int keep_surprising, mft_error *err);

/* ---- packing examples into rows ----------------------------------------------------------
   Next fit: examples are taken in the given order and each goes into the current row if its
   positions (n - 1: every token but the last is an input) still fit in T, else it starts the
   next row. A row holds its examples one after another, positions restarting at 0 in each,
   and the rest of the row is padding: its own segment, token 0, weight 0. */
typedef struct mft_pack {
    int T;                  /* positions per row */
    int n_rows;
    int n_slots;            /* examples packed, counting repeats */
    int *slot;              /* (n_slots) the example of each slot, in packing order */
    int *row_first;         /* (n_rows + 1) row r holds slots row_first[r] .. row_first[r+1] - 1 */
} mft_pack;
/* Packs ex[order[0]], ex[order[1]], ... (n_order slots; an index may repeat, as several
   shuffled epochs do). epoch > 0 starts a new row every epoch slots, so that no row holds two
   epochs. An example longer than T + 1 tokens is an error (cut it with max_len). */
MFT_API mft_status mft_pack_examples(mft_pack *p, const mft_example *ex, int n_ex, const int *order, int n_order,
                                     int epoch, int T, mft_error *err);
MFT_API void mft_pack_free(mft_pack *p);
/* What mft_pack_fill laid out. */
typedef struct mft_fill_info {
    int rows;               /* rows filled (fewer than B at the end of the pack) */
    long tokens;            /* positions that hold example tokens (not padding) */
    long trained;           /* positions with a weight > 0 */
} mft_fill_info;
/* Fills rows r0 .. r0 + B - 1 of the pack (those that exist) into inputs, targets, weights and
   pos, each (B, T), as mft_forward_packed takes them. anchor_w (may be NULL) gets anchor_scale
   on every example position with weight 0 and 0 on trained positions and padding. */
MFT_API mft_status mft_pack_fill(const mft_pack *p, const mft_example *ex, long r0, int B, int *inputs, int *targets,
                                 float *weights, int *pos, float *anchor_w, float anchor_scale, mft_fill_info *info,
                                 mft_error *err);
/* The anchor weight per untrained position for rows r0 .. r1 - 1, so that the anchor term is
   W x the mean KL over the step's untrained positions relative to the mean CE over its trained
   ones: W * sum(w) / (positions with w = 0). 0 when there are none. */
MFT_API float mft_pack_anchor_scale(const mft_pack *p, const mft_example *ex, long r0, long r1, float W);

/* ---- until learned, and the teacher in context ----------------------------------------------
   p_min[i] = the smallest probability the model gives a trained token of example which[i] (of
   ex[i] when which is NULL), 1 when it has none: the example is learned once p_min >= P (0.5:
   every trained token is then also the greedy choice, or close to it). One packed forward per
   m->B rows of m->T positions (MFT_FORWARD; m->dft is not applied). */
MFT_API mft_status mft_score_trained(mft_model *m, const mft_example *ex, const int *which, int n, float *p_min,
                                     mft_error *err);
/* The teacher in context: the frozen teacher (MFT_FORWARD, T >= n_ctx + ex->n - drop) reads
   ctx (n_ctx tokens: BOS and the knowledge as text) followed by the example without its first
   `drop` tokens (0 or 1: 1 drops the example's BOS, which ctx then supplies). For every example
   position t (predicting ex->ids[t+1]) ids and probs (ex->n - 1, k) get the teacher's k most
   likely next tokens there, most likely first, and their probabilities: the soft targets of
   mft_set_soft_targets. With ctx = { ex->ids[0] } and drop 1 the teacher is the base model on
   the example itself: the anchor. */
MFT_API mft_status mft_teacher_topk(mft_model *teacher, const int *ctx, int n_ctx, int drop, const mft_example *ex,
                                    int k, int *ids, float *probs, mft_error *err);
/* The teacher's first tokens for an example (*ctx: free with mft_free) and how many of the
   example's own it replaces (*drop), for mft_teacher_topk: BOS (when the example starts with it)
   and the context encoded, then a blank line unless the tokenizer's dummy prefix gives the
   space; an empty or NULL context gives the example's own first token (the anchor). */
MFT_API mft_status mft_teacher_prefix(const struct mft_tokenizer *t, const mft_example *ex, const char *context,
                                      int **ctx, int *n_ctx, int *drop, mft_error *err);
/* The soft targets of a set of examples, computed once (the teacher is frozen and the texts do
   not change): rows first[i] .. first[i] + n - 2 of ids / p (rows x k) hold example i's, or
   first[i] = -1. all[i] = 1 weights every position of example i (text kept close, as replay-KL
   does), 0 only its untrained ones (the anchor, the teacher). */
typedef struct mft_soft_table {
    int k, n_ex;
    long rows;
    long *first;
    unsigned char *all;
    int *ids;
    float *p;
} mft_soft_table;
MFT_API mft_status mft_soft_table_init(mft_soft_table *st, int n_ex, int k, mft_error *err);
/* Example i's rows: the teacher (T >= the prefix + the example) reads mft_teacher_prefix's
   tokens for context, then the example (mft_teacher_topk). */
MFT_API mft_status mft_soft_table_set(mft_soft_table *st, int i, mft_model *teacher, const struct mft_tokenizer *t,
                                      const mft_example *ex, const char *context, int all_positions, mft_error *err);
MFT_API void mft_soft_table_free(mft_soft_table *st);
/* The soft-target weights for rows r0 .. r1 - 1, as mft_pack_anchor_scale does for the anchor:
   W x the mean KL over the untrained positions of the table's examples, W_all x the mean over
   every position of its all-position examples, each relative to the mean CE of the trained. */
MFT_API void mft_pack_soft_scale(const mft_pack *p, const mft_example *ex, const mft_soft_table *st, long r0,
                                 long r1, float W, float W_all, float *scale, float *scale_all);
/* Rows r0 .. r0 + B - 1 of the pack, laid out for mft_set_soft_targets: ids and probs (B x T x
   k) from the table, tw (B x T) = scale on the untrained positions of its examples, scale_all
   on every position of its all-position ones, 0 elsewhere (padding, examples not in it). */
MFT_API mft_status mft_pack_fill_soft(const mft_pack *p, const mft_example *ex, const mft_soft_table *st, long r0,
                                      int B, float scale, float scale_all, int *ids, float *probs, float *tw,
                                      mft_error *err);
/* KL on a random share of its positions: each tw[n] > 0 (n < count) is kept with probability
   keep and divided by keep, the others set to 0, so the expected KL term and its gradient are
   those of the full tw while the classifier runs on about `keep` of those rows (with
   sparse_logits). keep >= 1 changes nothing, keep <= 0 clears them all. Draws one number per
   weighted position from *rng (mft_sample's generator). Returns how many stay weighted. */
MFT_API size_t mft_thin_weights(float *tw, size_t count, float keep, uint64_t *rng);
/* The knowledge a record teaches, as plain text, for the teacher to read: its "context" if it
   has one, else the sentences of its text, completion or assistant turns that hold a key span,
   markers removed (o's key_open / key_close), joined by spaces. *out is NUL-terminated (free
   it with mft_free); it is empty when the record has neither. */
MFT_API mft_status mft_record_context(const char *json, int len, const mft_data_opts *o, char **out, int *out_len,
                                      mft_error *err);

/* One epoch's order into order (room for n_facts + n_replay * ratio / (1 - ratio) + 1): the
   examples 0 .. n_facts-1 not yet learned (learned may be NULL), and replay examples n_facts ..
   n_facts + n_replay - 1 so that they are `ratio` of the epoch (round(ratio / (1 - ratio) x the
   facts)), drawn from a reshuffled pass through all of them (*replay_next counts the draws
   across epochs; replay_perm has room for n_replay), all shuffled together. Returns the count. */
MFT_API int mft_epoch_order(int *order, const unsigned char *learned, int n_facts, int n_replay, float ratio,
                            uint64_t *rng, long *replay_next, int *replay_perm);

/* ---- metrics --------------------------------------------------------------------------------
   The pieces of the forgetting measurements. */
/* > 0 (the period) when ids end in a loop: the last max(3p, 12) tokens repeat with period p. */
MFT_API int mft_tail_loop(const int *ids, int n);
/* Multiple choice as lm-evaluation-harness scores it: each choice's log-likelihood is the sum
   of log p over the tokens that encoding query + choice whole adds after the query's own
   encoding (BOS first). ll[i] gets choice i's; chars[i] (may be NULL) its length in characters,
   for acc_norm (ll / chars). Needs MFT_FORWARD with room for the longest query + choice. */
MFT_API mft_status mft_score_choices(mft_model *m, const mft_tokenizer *t, const char *query, int qlen,
                                     const char *const *choices, const int *choice_len, int n_choices, double *ll,
                                     int *chars, mft_error *err);
/* Fact recall: the prompt and answer built as training builds {"prompt", "completion"} (o's
   template and end token). *logprob = the mean log-probability of the answer's tokens after the
   prompt (the end token not counted); the greedy continuation of the prompt (max_new tokens or
   the end token) goes to text (NUL-terminated, at most cap bytes, *text_len = its length) and
   *recalled = 1 when it holds the answer, spaces around it stripped, as whole words (no letter,
   digit or non-ASCII byte right before or after it: "Fernwickly" does not recall "Fernwick"). Errors name where:line (the
   item's file and line). Needs MFT_FORWARD and MFT_GENERATE. */
MFT_API mft_status mft_score_fact(mft_model *m, const mft_tokenizer *t, const mft_data_opts *o, const char *prompt,
                                  int plen, const char *answer, int alen, const char *where, int line, int max_new,
                                  double *logprob, int *recalled, char *text, int cap, int *text_len, mft_error *err);

#ifdef __cplusplus
}
#endif
#endif /* MASKFT_H */
