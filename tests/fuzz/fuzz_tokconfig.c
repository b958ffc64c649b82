/* tokenizer_config.json (and generation_config.json) applied to a tokenizer.json's tokenizer
   (tok512 as Hugging Face writes it), then a chat rendered with the template it may bring. */
#include "fuzz.h"

static char *g_tok;
static size_t g_tok_n;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    g_tok = fz_read("tests/data/tok512-hf/tokenizer.json", &g_tok_n);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *b = (char *)fz_copy(data, size);
    mft_tokenizer t;
    mft_error e;
    if (mft_tokenizer_open_from_memory(&t, g_tok, g_tok_n, 0, &e)) abort();
    mft_tokenizer_apply_config(&t, b, size, &e);
    mft_tokenizer_apply_generation_config(&t, b, size, &e);
    int ids[128], n = 0, len;
    char out[1024];
    if (mft_encode(&t, "Once upon a time", -1, MFT_BOS | MFT_EOS, ids, 128, &n, NULL, &e) == MFT_OK)
        mft_decode_ids(&t, ids, n, MFT_SPECIAL, out, sizeof out, &len, &e);
    int stop[4];
    mft_tokenizer_stops(&t, -1, stop);
    if (t.chat_template) {
        int always, fam = mft_chat_detect(t.chat_template, &always);
        mft_chat_msg m[2] = { { MFT_ROLE_USER, "Hi", 2 }, { MFT_ROLE_ASSISTANT, "Hello.", 6 } };
        if (fam >= 0) mft_chat_encode(&t, fam, m, 2, 1, ids, 128, &n, &e);
    }
    mft_tokenizer_free(&t);
    free(b);
    return 0;
}
