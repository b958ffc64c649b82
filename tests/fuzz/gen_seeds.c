/* Writes the binary seeds of the fuzz corpora (tests/fuzz/make_seeds.sh runs it from the
   repository root): tiny models of every family in every file format maskft reads, so that
   the corpora stay small and every loader's whole path is reached from the first run. */
#define _GNU_SOURCE
#include "../../maskft.c"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *g_dir = "tests/fuzz/seeds";

static void die(const char *what, const mft_error *e)
{
    fprintf(stderr, "gen_seeds: %s: %s\n", what, e ? e->msg : "failed");
    exit(1);
}

static void put(const char *corpus, const char *name, const void *d, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s/%s", g_dir, corpus, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f)) die(p, NULL);
}

static char *slurp(const char *path, size_t *n)
{
    char *d;
    mft_error e;
    if (mft_read_file(path, (size_t)64 << 20, &d, n, &e)) die(path, &e);
    return d;
}

static mft_config tiny(int arch, int vocab)
{
    mft_config c;
    memset(&c, 0, sizeof c);
    c.dim = 8, c.hidden_dim = 16, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1;
    c.vocab_size = vocab, c.seq_len = 16, c.norm_eps = 1e-5f, c.rope_theta = 10000.0f;
    c.arch = arch;
    if (arch == MFT_ARCH_QWEN2) c.qkv_bias = 1;
    if (arch == MFT_ARCH_QWEN3) c.qk_norm = 1, c.head_dim = 8, c.shared_classifier = 1;
    return c;
}

static void open_model(mft_model *m, const mft_config *c, int flags)
{
    mft_error e;
    size_t bytes = mft_model_bytes(c, 1, 8, flags);
    void *mem = malloc(bytes);
    if (!mem || mft_model_init(m, c, 1, 8, flags, mem, bytes, &e)) die("init", &e);
    m->owns_arena = 1;
    mft_model_init_random(m, 7);
}

/* the file at path as a seed, and its first `cut` bytes as another (a truncated header) */
static void put_file(const char *corpus, const char *name, const char *path, size_t cut)
{
    size_t n;
    char *d = slurp(path, &n);
    put(corpus, name, d, n);
    if (cut && cut < n) {
        char tn[128];
        snprintf(tn, sizeof tn, "%s.cut%zu", name, cut);
        put(corpus, tn, d, cut);
    }
    mft_free(d);
}

/* a file built byte by byte (the crafted seeds) */
static unsigned char g_b[1024];
static size_t g_n;
static void gput(const void *p, size_t k)
{
    if (g_n + k <= sizeof g_b) memcpy(g_b + g_n, p, k);
    g_n += k;
}
static void g32(uint32_t v) { gput(&v, 4); }
static void g64(uint64_t v) { gput(&v, 8); }
static void gstr(const char *s) { g64(strlen(s)), gput(s, strlen(s)); }
static void gkv(const char *k, uint32_t v) { gstr(k), g32(MFT_GGUF_UINT32), g32(v); }

int main(void)
{
    mft_error e;
    mft_tokenizer tok;
    /* tok512.bin's first 32 tokens: a vocabulary for the tiny models' GGUF files */
    size_t tn, at = 4;
    char *tb = slurp("models/tok512.bin", &tn);
    for (int i = 0; i < 32 && at + 8 <= tn; i++) {
        int32_t len;
        memcpy(&len, tb + at + 4, 4);
        at += 8 + (size_t)len;
    }
    if (mft_tokenizer_open_from_memory(&tok, tb, at, 32, &e)) die("models/tok512.bin", &e);
    put("tokenizer", "tok32.bin", tb, at);
    mft_free(tb);
    const char *tmp = "build/fuzz/seed_tmp";
    mkdir("build", 0777), mkdir("build/fuzz", 0777), mkdir(tmp, 0777);
    static const char *names[3] = { "llama", "qwen2", "qwen3" };
    for (int a = 0; a < 3; a++) {
        mft_config c = tiny(a, 32);
        mft_model m;
        open_model(&m, &c, MFT_TRAIN);
        char p[256], n[64];
        if (a == 0) {
            /* llama2.c v0, shared and separate classifier; a checkpoint with and without AdamW */
            snprintf(p, sizeof p, "%s/tiny.bin", tmp);
            if (mft_model_save(&m, p, &e)) die(p, &e);
            put_file("model", "llama2c-v0.bin", p, 28);
            unsigned char user[16] = { 1, 2, 3 };
            m.step = 3;
            snprintf(p, sizeof p, "%s/tiny.ckpt", tmp);
            if (mft_checkpoint_save(&m, p, user, sizeof user, &e)) die(p, &e);
            put_file("checkpoint", "tiny-llama-adam.ckpt", p, 120);
            put_file("model", "tiny-llama.ckpt", p, 0);
            mft_model f;
            open_model(&f, &c, MFT_FORWARD);
            if (mft_checkpoint_save(&f, p, user, sizeof user, &e)) die(p, &e);
            put_file("checkpoint", "tiny-llama.ckpt", p, 0);
            mft_model_free(&f);
            /* version 1: the ak42 header, the norms first */
            size_t np = m.n_params, hb = 256;
            unsigned char *v1 = (unsigned char *)calloc(hb + np * 4, 1);
            uint32_t magic = 0x616b3432u;
            int32_t ver = 1, hd[7] = { c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len };
            memcpy(v1, &magic, 4), memcpy(v1 + 4, &ver, 4), memcpy(v1 + 8, hd, 28);
            v1[36] = 0;
            memcpy(v1 + hb, m.params, np * 4);
            put("model", "llama2c-v1.bin", v1, hb + np * 4);
            free(v1);
        }
        /* GGUF in each dtype (bf16 for one family, to keep the corpus small) */
        snprintf(p, sizeof p, "%s/tiny.gguf", tmp);
        int dt = a == 0 ? MFT_DTYPE_F32 : a == 1 ? MFT_DTYPE_F16 : MFT_DTYPE_BF16;
        if (mft_gguf_save(&m, p, dt, &tok, &e)) die(p, &e);
        snprintf(n, sizeof n, "tiny-%s.gguf", names[a]);
        put_file("gguf", n, p, 0);
        if (a == 2) put_file("tokenizer", n, p, 0);
        /* a Hugging Face folder, packed as fuzz_hf reads it: length, config.json, shard */
        snprintf(p, sizeof p, "%s/hf-%s", tmp, names[a]);
        mkdir(p, 0777);
        if (mft_hf_save(&m, p, a == 1 ? MFT_DTYPE_BF16 : MFT_DTYPE_F32, NULL, NULL, &e)) die(p, &e);
        size_t cn, sn;
        char cp[300], sp[300];
        snprintf(cp, sizeof cp, "%s/config.json", p);
        snprintf(sp, sizeof sp, "%s/model.safetensors", p);
        char *cj = slurp(cp, &cn), *st = slurp(sp, &sn);
        unsigned char *pk = (unsigned char *)malloc(4 + cn + sn);
        uint32_t cl = (uint32_t)cn;
        memcpy(pk, &cl, 4), memcpy(pk + 4, cj, cn), memcpy(pk + 4 + cn, st, sn);
        snprintf(n, sizeof n, "tiny-%s.hf", names[a]);
        put("hf", n, pk, 4 + cn + sn);
        if (a == 0) put("model", "tiny-llama.safetensors", st, sn);
        free(pk), mft_free(cj), mft_free(st);
        mft_model_free(&m);
    }
    /* Llama 3.1's rope scaling: GGUF writes it as the rope_freqs tensor */
    {
        mft_config c = tiny(0, 32);
        c.rope_scaling = MFT_ROPE_LLAMA3, c.rope_factor = 8, c.rope_low_freq = 1, c.rope_high_freq = 4;
        c.rope_orig_ctx = 8, c.rope_theta = 500000.0f;
        mft_model m;
        open_model(&m, &c, MFT_FORWARD);
        const char *p = "build/fuzz/seed_tmp/tiny-llama3.gguf";
        if (mft_gguf_save(&m, p, MFT_DTYPE_F16, &tok, &e)) die(p, &e);
        put_file("gguf", "tiny-llama3.gguf", p, 0);
        mft_model_free(&m);
    }
    /* found by fuzzing (the regressions fuzz_huge_model_small_file and fuzz_gguf_rope_freqs_below_one
       in tests/test_maskft.c): a few hundred bytes that declare a 4 GB model, and rope_freqs
       that fit llama3 only with a factor of 0.5 */
    {
        g_n = 0, gput("GGUF", 4), g32(3), g64(1), g64(6);
        gstr("general.architecture"), g32(MFT_GGUF_STRING), gstr("llama");
        gkv("llama.embedding_length", 4096), gkv("llama.feed_forward_length", 11008), gkv("llama.block_count", 4);
        gkv("llama.attention.head_count", 32), gkv("llama.context_length", 16);
        gstr("token_embd.weight"), g32(2), g64(4096), g64(32000), g32(0), g64(0);
        while (g_n % 32) gput("", 1);
        gput("0123456789abcdef", 16);
        put("gguf", "huge-model-small-file.gguf", g_b, g_n);
        put("model", "huge-model-small-file.gguf", g_b, g_n);
        const char *cfg = "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"hidden_size\": 4096, "
                          "\"intermediate_size\": 11008, \"num_hidden_layers\": 4, \"num_attention_heads\": 32, "
                          "\"vocab_size\": 32000, \"max_position_embeddings\": 16}";
        g_n = 0;
        g32(strlen(cfg)), gput(cfg, strlen(cfg)), g64(2), gput("{}", 2);
        put("hf", "huge-model-empty-shard.hf", g_b, g_n);
        size_t fn;
        char *f = slurp("tests/fuzz/seeds/gguf/tiny-llama3.gguf", &fn);
        mft_gguf gg;
        if (mft_gguf_open_from_memory(&gg, f, fn, &e)) die("tiny-llama3.gguf", &e);
        for (uint64_t i = 0; i < gg.n_tensors; i++)
            if (!strcmp(gg.tensors[i].name, "rope_freqs.weight"))
                for (uint64_t k = 0; k < gg.tensors[i].dims[0]; k++) {
                    float half = 0.5f;
                    memcpy(f + gg.data_offset + gg.tensors[i].offset + 4 * k, &half, 4);
                }
        mft_gguf_free(&gg);
        put("gguf", "rope-freqs-factor-half.gguf", f, fn);
        mft_free(f);
    }
    mft_tokenizer_free(&tok);
    return 0;
}
