/* llama2.c model files (v0, v1), and what mft_model_open_from_memory also recognises by content:
   GGUF and training checkpoints. A model that opens runs one token, so that every shape a file
   can declare is also computed with. */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = fz_copy(data, size);
    fz_fix_ckpt_hash(b, size);
    mft_config c;
    mft_error e;
    mft_model_config_from_memory(b, size, &c, &e);
    /* the whole context, or (MFT_CONTEXT) only T positions of it with a KV cache */
    int flags = size & 1 ? MFT_FORWARD | MFT_GENERATE | MFT_CONTEXT : MFT_FORWARD;
    mft_model m;
    if (mft_model_open_from_memory(&m, b, size, 1, 8, flags, &e) == MFT_OK) {
        float *logits;
        if (flags & MFT_GENERATE) mft_decode(&m, 0, 0, &logits, &e);
        mft_model_free(&m);
    }
    free(b);
    return 0;
}
