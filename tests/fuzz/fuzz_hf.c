/* Hugging Face: config.json + safetensors. The input is a 4-byte little-endian length, the
   config of that length, then the shard; with bit 31 of the length set, another 4-byte length
   splits the rest into two shards. */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static uint32_t fz_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    uint32_t h = fz_u32(data), cl = h & 0x7fffffffu;
    if (cl > size - 4) return 0;
    /* each part in its own allocation, so that a read past the end of one is seen */
    char *cfg = (char *)fz_copy(data + 4, cl);
    const uint8_t *rest = data + 4 + cl;
    size_t rn = size - 4 - cl, s0 = rn, s1 = 0;
    if (h >> 31 && rn >= 4) {
        s0 = fz_u32(rest);
        rest += 4, rn -= 4;
        s0 = s0 < rn ? s0 : rn;
        s1 = rn - s0;
    }
    uint8_t *sh0 = fz_copy(rest, s0), *sh1 = fz_copy(rest + s0, s1);
    const void *shards[2] = { sh0, sh1 };
    size_t sizes[2] = { s0, s1 };
    mft_model m;
    mft_error e;
    if (mft_hf_open_from_memory(&m, cfg, cl, shards, sizes, h >> 31 ? 2 : 1, 1, 8,
                                size & 1 ? MFT_FORWARD | MFT_GENERATE | MFT_CONTEXT : MFT_FORWARD, &e) == MFT_OK) {
        float *logits;
        if (size & 1) mft_decode(&m, 0, 0, &logits, &e);
        mft_model_free(&m);
    }
    free(cfg), free(sh0), free(sh1);
    return 0;
}
