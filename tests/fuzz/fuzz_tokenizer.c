/* Tokenizer files, recognised by content: llama2.c tokenizer.bin, SentencePiece .model,
   tokenizer.json. One that opens encodes and decodes a short text, plain and with special
   tokens, and decodes every id once. */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static volatile int g_sink; /* what the loop reads, kept */
static const char fz_text[] = "Hello world, <|im_start|>user caf\xc3\xa9 <s>  x\xff\xe2\x82 \xf0\x9f\x98\x80.";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *b = fz_copy(data, size);
    mft_tokenizer t;
    mft_error e;
    /* tokenizer.bin does not store its vocabulary size: the model's is given */
    if (mft_tokenizer_open_from_memory(&t, b, size, 0, &e) &&
        mft_tokenizer_open_from_memory(&t, b, size, size & 1 ? 7 : 512, &e)) {
        free(b);
        return 0;
    }
    int ids[256], n = 0, len, offs[512];
    char out[2048];
    for (int f = 0; f < 2; f++) {
        int flags = f ? MFT_BOS | MFT_EOS | MFT_SPECIAL : 0;
        if (mft_encode(&t, fz_text, -1, flags, ids, 256, &n, offs, &e) == MFT_OK)
            mft_decode_ids(&t, ids, n, f ? MFT_SPECIAL : 0, out, sizeof out, &len, &e);
    }
    mft_detok d = { -1, 0, { 0 } };
    int sum = 0;
    for (int id = -1; id <= t.vocab_size; id++) {
        int l = 0;
        const char *p = mft_token_bytes(&t, id - 1, id, &l);
        if (p && l) sum += p[0] + p[l - 1];
        p = mft_token_piece(&t, id, &l);
        if (p) sum += mft_token_find(&t, p, l);
        sum += mft_token_type(&t, id);
        if (id >= 0 && id < t.vocab_size && id < 4096) mft_detok_stream(&t, &d, id, out, sizeof out, &len);
    }
    if (t.chat_template) {
        int always;
        sum += mft_chat_detect(t.chat_template, &always);
    }
    int stop[4];
    sum += mft_tokenizer_stops(&t, -1, stop);
    g_sink += sum;
    mft_tokenizer_free(&t);
    free(b);
    return 0;
}
