# make_mc.awk: a multiple-choice set from the base model's own stories, for maskft eval --mc.
#   maskft probe -m models/stories260K.bin --n 200 --len 64 --seed 2 --out stories.jsonl
#   awk -f examples/make_mc.awk stories.jsonl > mc.jsonl
# Story i (prompt + completion) is cut into words at spaces: the query is its first Q words,
# the right choice its next K words, the wrong ones the words at the same place in the next
# C-1 stories that are long enough (in a ring); the right one is choice i mod C. Stories
# shorter than Q+K words are skipped, and so is an item whose choices are not all different.
# Strings stay JSON-escaped (spaces never occur inside an escape). POSIX awk / mawk.
function jstr(line, k,   i, c, v) {            # the still-escaped value of string field k
    i = index(line, "\"" k "\": \"") + length(k) + 5; v = ""
    for (; (c = substr(line, i, 1)) != "\"" && c != ""; i++) { if (c == "\\") c = c substr(line, ++i, 1); v = v c }
    return v
}
function words(a, b, i,   j, s) { s = w[i, a]; for (j = a + 1; j <= b; j++) s = s " " w[i, j]; return s }
BEGIN { if (!Q) Q = 16; if (!K) K = 4; if (!C) C = 4 }
{   t = jstr($0, "prompt") jstr($0, "completion")
    m = split(t, a, " "); if (m < Q + K) next
    n++; for (j = 1; j <= Q + K; j++) w[n, j] = a[j]
}
END {
    for (i = 1; i <= n; i++) {
        g = (i - 1) % C; ok = 1
        for (c = 0; c < C; c++) {
            k = c == g ? 0 : c < g ? c + 1 : c            # story i itself, or the k-th after it
            ch[c] = " " words(Q + 1, Q + K, (i - 1 + k) % n + 1)
            for (d = 0; d < c; d++) if (ch[d] == ch[c]) ok = 0
        }
        if (!ok) continue
        printf "{\"query\": \"%s\", \"choices\": [", words(1, Q, i)
        for (c = 0; c < C; c++) printf "%s\"%s\"", c ? ", " : "", ch[c]
        printf "], \"gold\": %d}\n", g
    }
}
