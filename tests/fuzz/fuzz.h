/* What every harness shares. Each harness includes the library itself, as tests/test_maskft.c
   does, so a crash's stack names maskft.c's own functions. Run from the repository root: the
   bundled model and tokenizers are read from models/ and tests/data/. */
#define _GNU_SOURCE /* memmem */
#include "../../maskft.c"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a file a harness cannot run without: a missing one is the harness's error, not a finding */
static inline char *fz_read(const char *path, size_t *size)
{
    char *d = NULL;
    mft_error e;
    if (mft_read_file(path, (size_t)64 << 20, &d, size, &e)) {
        fprintf(stderr, "fuzz: %s (run from the repository root)\n", e.msg);
        exit(2);
    }
    return d;
}

static inline void fz_tokenizer(mft_tokenizer *t, const char *path, int vocab)
{
    mft_error e;
    if (mft_tokenizer_open(t, path, vocab, &e)) {
        fprintf(stderr, "fuzz: %s: %s (run from the repository root)\n", path, e.msg);
        exit(2);
    }
}

/* A training checkpoint ends in a hash of every byte before it: recomputed over the mutated
   bytes, so that the loader gets past the hash to the checks of the fields and values. */
static inline void fz_fix_ckpt_hash(uint8_t *d, size_t n)
{
    if (n < 16 || memcmp(d, "MFTCKPT2", 8)) return;
    uint64_t h = mft_hash(MFT_HASH_SEED, d, n - 8);
    memcpy(d + n - 8, &h, 8);
}

/* a heap copy of exactly the input: ASan sees any read past its end */
static inline uint8_t *fz_copy(const uint8_t *d, size_t n)
{
    uint8_t *b = (uint8_t *)malloc(n ? n : 1);
    if (n) memcpy(b, d, n);
    return b;
}
