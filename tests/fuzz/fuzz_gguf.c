/* GGUF: the metadata and tensor table (mft_gguf_open_from_memory), its tokenizer, and the
   model open path on the same bytes. */
#include "fuzz.h"

static volatile size_t g_sink; /* what the walk reads, kept */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = fz_copy(data, size);
    mft_gguf g;
    mft_error e;
    if (mft_gguf_open_from_memory(&g, b, size, &e) == MFT_OK) {
        /* every key read back, as a caller walking the metadata would */
        size_t sum = 0;
        for (uint64_t i = 0; i < g.n_kv; i++) {
            const mft_gguf_kv *kv = mft_gguf_get(&g, g.kv[i].key);
            if (kv && kv->type == MFT_GGUF_STRING) sum += strlen((const char *)kv->data);
            if (kv && kv->type == MFT_GGUF_ARRAY && kv->arr_type == MFT_GGUF_STRING && kv->data)
                for (uint64_t k = 0; k < kv->n; k++) sum += ((const mft_gguf_str *)kv->data)[k].n;
        }
        for (uint64_t i = 0; i < g.n_tensors; i++) sum += strlen(g.tensors[i].name);
        mft_tokenizer t;
        if (mft_tokenizer_from_gguf(&t, &g, &e) == MFT_OK) {
            int ids[64], n = 0;
            char out[512];
            int len;
            if (mft_encode(&t, "Hello world <|im_start|>", -1, MFT_BOS | MFT_SPECIAL, ids, 64, &n, NULL, &e) == MFT_OK)
                mft_decode_ids(&t, ids, n, MFT_SPECIAL, out, sizeof out, &len, &e);
            mft_tokenizer_free(&t);
        }
        g_sink += sum;
        mft_gguf_free(&g);
    }
    mft_config c;
    mft_model_config_from_memory(b, size, &c, &e);
    mft_model m;
    if (mft_model_open_from_memory(&m, b, size, 1, 8, size & 1 ? MFT_FORWARD | MFT_CONTEXT : MFT_FORWARD, &e) ==
        MFT_OK)
        mft_model_free(&m);
    free(b);
    return 0;
}
