/* UTF-8: mft_utf8_len and mft_utf8_valid against a plain reading of RFC 3629, and valid text
   encoded and decoded again by tokenizers that can spell every byte (the same text comes back). */
#include "fuzz.h"

static mft_tokenizer g_tok[3];
static const char *g_name[3] = { "models/tok512.bin", "tests/data/tok512-hf/tokenizer.json", "tests/data/gpt2/tokenizer.json" };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    for (int i = 0; i < 3; i++) fz_tokenizer(&g_tok[i], g_name[i], i ? 0 : 512);
    return 0;
}

/* RFC 3629, table 3.7: the well-formed byte sequences */
static int fz_len(const unsigned char *s, int n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int k = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || n < k) return 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return k;
}

static int g_ids[1 << 16], g_offs[2 << 16];
static char g_out[1 << 18];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *b = (char *)fz_copy(data, size);
    int n = (int)size;
    for (int i = 0; i < n; i++) {
        int want = fz_len((const unsigned char *)b + i, n - i);
        if (mft_utf8_len(b + i, n - i) != want || (want > 1 && !mft_utf8_valid(b + i, want))) abort();
    }
    int at = 0;
    while (at < n && fz_len((const unsigned char *)b + at, n - at)) at += fz_len((const unsigned char *)b + at, n - at);
    int valid = at == n;
    if (mft_utf8_valid(b, n) != valid) abort();
    for (int k = 0; k < 3; k++) {
        const mft_tokenizer *t = &g_tok[k];
        int ni = 0, len = 0;
        mft_error e;
        if (mft_encode(t, b, n, 0, g_ids, 1 << 16, &ni, g_offs, &e)) abort();
        /* the offsets: in order, covering the input */
        for (int i = 0, end = 0; i < ni; i++) {
            if (g_offs[2 * i] != end || g_offs[2 * i + 1] < g_offs[2 * i]) abort();
            end = g_offs[2 * i + 1];
            if (i == ni - 1 && end != n) abort();
        }
        if (mft_decode_ids(t, g_ids, ni, 0, g_out, sizeof g_out, &len, &e)) abort();
        /* what a tokenizer drops by design: extra spaces (remove_extra_spaces), the text of
           SentencePiece's own space mark U+2581; the dummy prefix space is put back by decode */
        if (!valid || t->remove_extra_spaces) continue;
        if (t->kind == MFT_TOK_SPM && memmem(b, size, "\xE2\x96\x81", 3)) continue;
        if (len != n || memcmp(g_out, b, size)) {
            fprintf(stderr, "%s: %d bytes came back as %d\n", g_name[k], n, len);
            abort();
        }
    }
    free(b);
    return 0;
}
