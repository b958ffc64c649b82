/* JSONL training records with a tokenizer: each line of the input parsed and masked
   (mft_example_from_json) under the policies and templates, and its context for the teacher
   (mft_record_context). */
#include "fuzz.h"

static mft_tokenizer g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_tokenizer(&g_tok, "models/tok512.bin", 512);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 16)) return 0;
    char *b = (char *)fz_copy(data, size);
    size_t pos = 0;
    int line = 0, len;
    const char *rec;
    mft_data_opts o = mft_data_opts_default();
    /* the options from the input's length, so that the seeds stay plain JSONL */
    o.policy = 1 + (int)(size % 3);
    o.template_family = size % 5 == 0 ? MFT_CHAT_CHATML : size % 5 == 1 ? MFT_CHAT_LLAMA3 : -1;
    o.eligible = (int)(size / 3 % 3);
    o.max_len = size % 7 == 0 ? 16 : 0;
    o.train_eot = (int)(size / 2 % 2);
    for (int k = 0; k < 8 && mft_jsonl_next(b, size, &pos, &line, &rec, &len); k++) {
        mft_example ex;
        mft_error e;
        if (mft_example_from_json(&g_tok, &o, rec, len, "fuzz.jsonl", line, &ex, &e) == MFT_OK) {
            if (ex.n < 0 || (ex.n && (!ex.ids || !ex.w || !ex.tag))) abort();
            for (int i = 0; i < ex.n; i++)
                if (ex.ids[i] < 0 || ex.ids[i] >= g_tok.vocab_size || !(ex.w[i] >= 0) || ex.tag[i] > MFT_TAG_END)
                    abort();
            mft_example_free(&ex);
        }
        char *ctx = NULL;
        int cl;
        if (mft_record_context(rec, len, &o, &ctx, &cl, &e) == MFT_OK && (!ctx || (int)strlen(ctx) != cl)) abort();
        mft_free(ctx);
    }
    free(b);
    return 0;
}
