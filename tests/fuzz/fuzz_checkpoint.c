/* Training checkpoints: resumed into a model of their shape (mft_checkpoint_load_from_memory)
   and opened as model files. The hash is fixed up first (fz_fix_ckpt_hash). */
#include "fuzz.h"

static mft_model g_m; /* the shape of the seeds (make_seeds.sh: tiny-llama), with AdamW moments */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    mft_config c;
    memset(&c, 0, sizeof c);
    c.dim = 8, c.hidden_dim = 16, c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1;
    c.vocab_size = 32, c.seq_len = 16, c.norm_eps = 1e-5f, c.rope_theta = 10000.0f;
    size_t bytes = mft_model_bytes(&c, 1, 8, MFT_TRAIN);
    void *mem = malloc(bytes);
    if (!mem || mft_model_init(&g_m, &c, 1, 8, MFT_TRAIN, mem, bytes, NULL)) exit(2);
    g_m.owns_arena = 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = fz_copy(data, size);
    fz_fix_ckpt_hash(b, size);
    unsigned char user[16];
    mft_error e;
    mft_checkpoint_load_from_memory(&g_m, b, size, user, sizeof user, &e);
    mft_model m;
    if (mft_model_open_from_memory(&m, b, size, 1, 8, MFT_FORWARD, &e) == MFT_OK) mft_model_free(&m);
    free(b);
    return 0;
}
