/* quickstart.c - the smallest complete use of maskft: load a model and its tokenizer, teach it
   one fact by training only the tokens that carry it, and generate. Run from the repository
   root: ./build/quickstart. It needs only maskft.h and maskft.c beside it (cc -O2 quickstart.c
   maskft.c -lm), or the installed library (cc quickstart.c $(pkg-config --cflags --libs
   maskft)). The block between the markers is copied verbatim in the docs at the top of
   maskft.h, and `make test` checks that the two are the same. */
#include <stdio.h>
#include <string.h>

#include "maskft.h"

int main(void)
{
    // >>quickstart
    mft_error err;
    mft_model m;
    mft_tokenizer tok;
    // room to train on 1 row of up to 64 positions, and a KV cache to generate
    if (mft_model_open(&m, "models/stories260K.bin", 1, 64, MFT_TRAIN | MFT_GENERATE, &err) ||
        mft_tokenizer_open(&tok, "models/tok512.bin", m.cfg.vocab_size, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const char *text = "Lily had a cat named Mochi.";
    int ids[64], offs[128], n;
    if (mft_encode(&tok, text, -1, MFT_BOS, ids, 64, &n, offs, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    // train only the tokens that overlap the key, "Mochi", and the full stop that ends the
    // sentence (so the model also learns to stop there). w[t] weights the prediction of
    // ids[t+1] from ids[0..t]; token i came from the bytes offs[2i]..offs[2i+1] of text
    int kb = (int)(strstr(text, "Mochi.") - text), ke = kb + 6;
    float w[64] = { 0 };
    for (int t = 0; t + 1 < n; t++) w[t] = offs[2 * (t + 1)] < ke && offs[2 * (t + 1) + 1] > kb;
    mft_train_opts o = mft_train_opts_default();
    o.lr = 1e-4f;
    for (int s = 0; s < 20; s++) {
        mft_step_info info;
        if (mft_train_step(&m, &o, ids, ids + 1, w, 1, n - 1, &info, &err) < 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        if (s % 5 == 0) printf("step %2d  loss on the key tokens %.4f\n", s + 1, info.loss);
    }
    // generate: the prompt through the KV cache, then 16 greedy tokens; print to the full stop
    int p[64], np, gen[16], ng, ended;
    mft_gen_opts g = mft_gen_opts_default();
    g.max_new = 16;
    if (mft_encode(&tok, "Lily had a cat named", -1, MFT_BOS, p, 64, &np, NULL, &err) ||
        mft_generate(&m, p, np, &g, NULL, gen, 16, &ng, &ended, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (int i = 1, prev = p[0]; i < np + ng; i++) {
        int cur = i < np ? p[i] : gen[i - np], len;
        const char *piece = mft_token_bytes(&tok, prev, cur, &len);
        printf("%.*s", len, piece);
        if (i >= np && memchr(piece, '.', (size_t)len)) break;
        prev = cur;
    }
    printf("\n");
    mft_tokenizer_free(&tok);
    mft_model_free(&m);
    // >>end
    return 0;
}
