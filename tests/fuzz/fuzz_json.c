/* The JSON parser: every node of a document walked; the same text as a JSONL line of a file
   (mft_json_parse_at, mft_jsonl_next); every string written back with mft_json_escape must
   parse again to the same bytes (the writer's output is JSON maskft itself reads). */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static char g_esc[6 * 65536 + 8];

static void fz_walk(const mft_json *j, int node, int depth)
{
    int len, line, col;
    double x;
    mft_json_pos(j, node, &line, &col);
    mft_json_num(j, node, &x);
    const char *s = mft_json_str(j, node, &len);
    if (s && len < 65536) {
        int el;
        if (mft_json_escape(s, len, g_esc, sizeof g_esc, &el)) abort();
        mft_json *k = mft_json_parse(g_esc, el, NULL);
        int kl;
        const char *ks = k ? mft_json_str(k, mft_json_root(k), &kl) : NULL;
        /* the parser keeps only valid UTF-8, so its strings come back byte for byte */
        if (!ks || kl != len || memcmp(ks, s, (size_t)len)) abort();
        mft_json_free(k);
    }
    mft_json_len(j, node);
    if (depth > 64) return;
    int i = 0;
    for (int c = mft_json_first(j, node); c >= 0; c = mft_json_next(j, c), i++) {
        fz_walk(j, c, depth + 1);
        int a = i < 4 ? mft_json_at(j, node, i) : -1; /* arrays only: -1 for an object */
        if (a >= 0 && a != c) abort();
    }
    mft_json_get(j, node, "messages");
    mft_json_get(j, node, "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20)) return 0;
    char *b = (char *)fz_copy(data, size);
    mft_error e;
    mft_json *j = mft_json_parse(b, (int)size, &e);
    if (j) {
        fz_walk(j, mft_json_root(j), 0);
        mft_json_free(j);
    }
    size_t pos = 0;
    int line = 0, len;
    const char *rec;
    for (int k = 0; k < 16 && mft_jsonl_next(b, size, &pos, &line, &rec, &len); k++) {
        j = mft_json_parse_at(rec, len, "fuzz.jsonl", line, &e);
        mft_json_free(j);
    }
    /* arbitrary bytes, escaped: still one valid JSON string */
    if (size < 65536) {
        int el;
        if (mft_json_escape(b, (int)size, g_esc, sizeof g_esc, &el)) abort();
        j = mft_json_parse(g_esc, el, &e);
        if (!j) abort();
        mft_json_free(j);
    }
    free(b);
    return 0;
}
