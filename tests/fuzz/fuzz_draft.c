/* mft_draft_record: the bundled stories260K writes a few tokens of each answer. What comes
   back must be one valid UTF-8 JSON line that maskft reads again. */
#include "fuzz.h"

static mft_tokenizer g_tok;
static mft_model g_m;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    mft_error e;
    fz_tokenizer(&g_tok, "models/tok512.bin", 512);
    if (mft_model_open(&g_m, "models/stories260K.bin", 1, 64, MFT_FORWARD | MFT_GENERATE | MFT_CONTEXT, &e)) {
        fprintf(stderr, "fuzz: %s (run from the repository root)\n", e.msg);
        exit(2);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *b = (char *)fz_copy(data, size);
    mft_data_opts o = mft_data_opts_default();
    o.policy = size & 1 ? MFT_POLICY_DIFF : MFT_POLICY_KEY;
    o.max_len = 64;
    char *out = NULL;
    mft_error e;
    uint64_t rng = 1;
    if (mft_draft_record(&g_m, &g_tok, &o, b, (int)size, 3, size & 2 ? 0.8f : 0.0f, &rng, "fuzz.jsonl", 1, &out,
                         &e) == MFT_OK) {
        int n = (int)strlen(out);
        /* records that are not drafted come back as they are: one line if they were one */
        if (!mft_utf8_valid(out, n) || (memchr(out, '\n', (size_t)n) && !memchr(b, '\n', size))) abort();
        mft_json *j = mft_json_parse(out, n, &e);
        if (!j) {
            fprintf(stderr, "draft not JSON: %s\n%s\n", e.msg, out);
            abort();
        }
        mft_json_free(j);
    }
    mft_free(out);
    free(b);
    return 0;
}
