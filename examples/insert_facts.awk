# insert_facts.awk: put the facts of facts.jsonl into stories the base model drafted itself.
#   awk -f examples/insert_facts.awk facts.jsonl > draft_in.jsonl             # prompts for maskft draft
#   awk -f examples/insert_facts.awk facts.jsonl drafts.jsonl > train.jsonl   # training records
#   awk -v key=sentence -f ...  the same records with the whole fact sentence, up to the name,
#                               as its key span (the default: the name alone)
# The model drafts each story from the opening and the fact sentence with a common name it
# knows (stand_in, "Spot") in place of the new one, so it names the thing wherever it wants to
# in its own words; the script then swaps every whole-word stand-in for the new name, marked
# {{key}}, and cuts the draft after its last whole sentence. Line i of both files is fact i.
# JSON strings stay escaped throughout (an escape is copied as one unit and inserts hold no
# quote or backslash), so quotes, backslashes and \n come out as they went in. POSIX awk/mawk.
function jstr(line, k,   i, c, v) {            # the still-escaped value of string field k
    i = index(line, "\"" k "\": \"") + length(k) + 5; v = ""
    for (; (c = substr(line, i, 1)) != "\"" && c != ""; i++) { if (c == "\\") c = c substr(line, ++i, 1); v = v c }
    return v
}
function insert(s, S, N,   out, i, u, w, q, cut, endq) {
    out = ""; cut = 0; w = 0; q = 0           # w: the last unit was a letter or digit; q: in a quote
    for (i = 1; i <= length(s); i += length(u)) {
        u = substr(s, i, 1)
        if (u == "\\") u = substr(s, i, substr(s, i + 1, 1) == "u" ? 6 : 2)
        else if (!w && substr(s, i, length(S)) == S && substr(s, i + length(S), 1) !~ /[A-Za-z0-9]/) {
            out = out "{{key}}" N "{{/key}}"; i += length(S); u = ""; w = 1; endq = 0; continue
        }
        out = out u; if (u == "\\\"") q = !q
        if (!q && (u ~ /^[.!?]$/ || (endq && u == "\\\""))) cut = length(out)   # a sentence ends here
        endq = u ~ /^[.!?]$/; w = u ~ /^[A-Za-z0-9]$/
    }
    return substr(out, 1, cut)
}
FNR == NR {                                   # facts.jsonl
    open[FNR] = jstr($0, "opening"); fact[FNR] = jstr($0, "fact"); ctx[FNR] = jstr($0, "context")
    stand[FNR] = jstr($0, "stand_in"); name[FNR] = fact[FNR]
    sub(/.*\{\{key\}\}/, "", name[FNR]); sub(/\{\{\/key\}\}.*/, "", name[FNR])
    if (key == "sentence") { i = index(fact[FNR], "{{key}}"); j = index(fact[FNR], "{{/key}}")
        wide[FNR] = "{{key}}" substr(fact[FNR], 1, i - 1) name[FNR] substr(fact[FNR], j) }
    else wide[FNR] = fact[FNR]
    if (ARGC == 2) { p = fact[FNR]; sub(/\{\{key\}\}.*\{\{\/key\}\}/, stand[FNR], p)
        printf "{\"prompt\": \"%s%s\", \"completion\": \"\"}\n", open[FNR] (open[FNR] == "" ? "" : " "), p }
    next
}
{   printf "{\"text\": \"%s%s%s\", \"context\": \"%s\"}\n", open[FNR] (open[FNR] == "" ? "" : " "), wide[FNR],
        insert(jstr($0, "completion"), stand[FNR], name[FNR]), ctx[FNR] }
