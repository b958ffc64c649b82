#!/usr/bin/env python3
"""gen_unicode.py - generate the Unicode tables that maskft's tokenizers need.

Copyright (c) 2026 The maskft authors. MIT License (the same terms as maskft itself; see
LICENSE at the top of the repository).

USAGE
    python3 tools/gen_unicode.py > tables.inc
        print the C fragment (without the marker lines) on standard output
    python3 tools/gen_unicode.py --with-markers
        the same, framed by the two marker lines described below
    python3 tools/gen_unicode.py --inplace maskft.c
        replace everything between the marker lines in maskft.c with the fresh fragment
        and write the Unicode version into the first marker. The file is left untouched
        (and the exit status is 1) if the markers are missing, or if the hand-written code
        around them does not fit the tables: struct mft__uc_tables must have the fields of
        FIELDS below, in that order, and MFT__UC_MAXDEC must be at least the length of the
        longest canonical decomposition
    --ucd DIR   read the Unicode Character Database from DIR (default /usr/share/unicode)
    --stats     also print the table sizes on standard error

    The marker lines are
        /* BEGIN GENERATED TABLES: written by tools/gen_unicode.py from Debian's unicode-data (Unicode X.Y.Z); do not edit */
        /* END GENERATED TABLES */
    In maskft.c they frame the appendix at the very end of the file, after all the code
    that uses the tables.

INPUT
    UnicodeData.txt, PropList.txt, CompositionExclusions.txt and DerivedNormalizationProps.txt
    from Debian's `unicode-data` package (apt-get install unicode-data). These data files are
    (c) Unicode, Inc. and distributed under the Unicode License: the "UNICODE, INC. LICENSE
    AGREEMENT - DATA FILES AND SOFTWARE" (as /usr/share/doc/unicode-data/copyright quotes it
    for Unicode 15.0; later versions call it the "UNICODE LICENSE V3"), see
    https://www.unicode.org/license.txt. The generated tables are derived from the Unicode
    Character Database (UCD) and so fall under that license too (it permits this, provided
    the copyright and permission notice go along, and the modification is noted: the
    fragment's header comment does both, see UNICODE_NOTICE); this script itself is MIT.

OUTPUT
    Data only, no algorithm: a C99 fragment that is also valid C++, made of
      - a header comment: the Unicode version, the source files, the Unicode license notice
        and the command that regenerates the fragment;
      - the tables, every one static const and named mft__uc_*: the class trie
        (mft__uc_cls_t0, _t1, _t2, _leaf), mft__uc_ascii, mft__uc_ccc_run, mft__uc_ccc_val,
        the decomposition bit trie (mft__uc_dec_t0, _t1, _t2, _leaf), mft__uc_drun,
        mft__uc_drec, mft__uc_snd and mft__uc_comp, each with a comment giving its size;
      - the one function that points to them all,
            static const struct mft__uc_tables *mft__uc_tab(void)
        whose static const struct holds, in the order of FIELDS, the Unicode version, the
        two trie descriptions (struct mft__uc_trie: levels, shifts, digits per entry), the
        tables, and the numbers (the longest decomposition, the numbers of ccc runs,
        decomposition runs, primary composites and their second characters).
    The fragment defines no type and no code: struct mft__uc_trie, struct mft__uc_tables and
    a declaration of mft__uc_tab() must come before it, and the functions that read the
    tables (mft__uc_class, mft__uc_nfc, ...) are hand-written C in maskft.c, where the
    comments explain the encoding of the tables, the tries and the NFC algorithm. So the
    tables can come after their users without a forward declaration of a static const
    array, which C++ rejects.

    What the generator guarantees (it checks all of this with assertions, code point by
    code point, and stops if one fails): no code point is in two classes; every trie gives
    back, read the way the C code reads it, the value it was built from; the composition
    exclusions and the second starters agree with DerivedNormalizationProps.txt (if it is
    there); decompositions are in canonical order; primary composites are starters that
    decompose into a starter that combines with nothing before it (which the quick check
    of mft__uc_load relies on).

The script needs nothing but the Python 3 standard library, and its output depends on nothing
but the data files: running it twice gives identical bytes.
"""

import argparse
import os
import re
import sys

MARK_BEGIN = ("/* BEGIN GENERATED TABLES: written by tools/gen_unicode.py from Debian's "
              "unicode-data (Unicode {}); do not edit */")
MARK_BEGIN_RE = re.compile(r"^/\* BEGIN GENERATED TABLES:.*\*/\s*$")
MARK_END = "/* END GENERATED TABLES */"

NCP = 0x110000                      # code points U+0000..U+10FFFF
SBASE, LBASE, VBASE, TBASE = 0xAC00, 0x1100, 0x1161, 0x11A7
LCOUNT, VCOUNT, TCOUNT = 19, 21, 28
NCOUNT, SCOUNT = VCOUNT * TCOUNT, LCOUNT * VCOUNT * TCOUNT

ROW = 64    # characters per row of an encoded table (maskft.c: ENCODED TABLES)


# ----------------------------------------------------------------------------------------------
# reading the UCD

def ucd_lines(path):
    """The data lines of a UCD file: comments and blank lines dropped, fields split on ';'."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                yield [x.strip() for x in line.split(";")]


def cp_range(s):
    a, _, b = s.partition("..")
    return range(int(a, 16), int(b or a, 16) + 1)


def ucd_version(ucd):
    """The version in PropList.txt's first line, '# PropList-15.0.0.txt'."""
    with open(os.path.join(ucd, "PropList.txt"), encoding="utf-8") as f:
        m = re.match(r"#\s*PropList-(\d+\.\d+\.\d+)\.txt", f.readline())
    if not m:
        sys.exit("gen_unicode.py: cannot read the Unicode version from PropList.txt")
    return m.group(1)


def read_ucd(ucd):
    gc = ["Cn"] * NCP              # general category
    ccc = [0] * NCP                # canonical combining class
    decomp = {}                    # canonical decomposition mappings (one level, as in the file)
    first = None
    for f in ucd_lines(os.path.join(ucd, "UnicodeData.txt")):
        cp, name, cat = int(f[0], 16), f[1], f[2]
        if name.endswith(", First>"):
            first = cp
            continue
        if name.endswith(", Last>"):    # a range such as CJK ideographs or Hangul syllables
            for c in range(first, cp + 1):
                gc[c] = cat
            continue
        gc[cp] = cat
        ccc[cp] = int(f[3])
        if f[5] and not f[5].startswith("<"):   # <tag> mappings are compatibility ones
            decomp[cp] = [int(x, 16) for x in f[5].split()]

    white = set()
    for f in ucd_lines(os.path.join(ucd, "PropList.txt")):
        if f[1] == "White_Space":
            white.update(cp_range(f[0]))

    excluded = set()
    for f in ucd_lines(os.path.join(ucd, "CompositionExclusions.txt")):
        excluded.update(cp_range(f[0]))

    derived = {"Full_Composition_Exclusion": set(), "NFC_QC_M": set()}
    path = os.path.join(ucd, "DerivedNormalizationProps.txt")
    if os.path.exists(path):
        for f in ucd_lines(path):
            if f[1] == "Full_Composition_Exclusion":
                derived[f[1]].update(cp_range(f[0]))
            elif f[1] == "NFC_QC" and f[2] == "M":
                derived["NFC_QC_M"].update(cp_range(f[0]))
    else:
        derived = None
    return gc, ccc, decomp, white, excluded, derived


# ----------------------------------------------------------------------------------------------
# the encoding of tables: base-64 digits '0'+v in rows of ROW characters

def digits_for(maxval):
    n = 1
    while maxval >= 64 ** n:
        n += 1
    return n


def enc(v, w):
    """v as w base-64 digits, most significant first."""
    assert 0 <= v < 64 ** w, (v, w)
    return "".join(chr(48 + (v >> (6 * (w - 1 - i)) & 63)) for i in range(w))


def c_table(name, digits, comment):
    """A 'static const char name[][ROW + 1]' holding the digit string in rows of ROW digits."""
    digits += "0" * (-len(digits) % ROW)
    words, lines = comment.split(), [""]
    for word in words:                                  # the comment, wrapped at 96 columns
        if len(lines[-1]) + len(word) + 4 > 96:
            lines.append("  ")
        lines[-1] += " " + word
    out = ["/*" + "\n".join(lines) + " */",
           "static const char %s[][%d] = {" % (name, ROW + 1)]
    for i in range(0, len(digits), ROW):
        row = digits[i:i + ROW].replace("\\", "\\\\").replace("?", "\\?")
        out.append('"%s",' % row)
    out[-1] = out[-1][:-1]
    out.append("};")
    return "\n".join(out)


def build_trie(digits, pack):
    """A four-level trie over a digit string that holds `pack` code points per digit.

    With shifts s0 > s1 > s2: code point cp goes to entry cp >> s0 of the top level (a block
    id of level 1), to entry (cp >> s1) mod 2^(s0 - s1) of that block (a block id of level
    2), to entry (cp >> s2) mod 2^(s1 - s2) of that block (a leaf block id), and to entry
    cp mod 2^s2 of that leaf block. Blocks are deduplicated, the all-zero block of each level
    is block 0, and the top level stops after its last non-zero entry (everything beyond
    reads as 0). All shifts in a sensible range are tried; the fewest digits win."""
    def dedupe(seq, per):
        zero = tuple([0] * per)
        ids, blocks, of = {zero: 0}, [zero], []
        for b in range(0, len(seq), per):
            t = tuple(seq[b:b + per])
            if t not in ids:
                ids[t] = len(blocks)
                blocks.append(t)
            of.append(ids[t])
        return blocks, of

    best = None
    for s2 in range(3, 9):
        leaves, leaf_of = dedupe(digits, (1 << s2) // pack)
        for s1 in range(s2 + 1, s2 + 7):
            l2, l2_of = dedupe(leaf_of, 1 << (s1 - s2))
            for s0 in range(s1 + 1, s1 + 8):
                l1, top = dedupe(l2_of, 1 << (s0 - s1))
                while top and top[-1] == 0:
                    top.pop()
                w = [digits_for(len(l1) - 1), digits_for(len(l2) - 1), digits_for(len(leaves) - 1)]
                size = (len(top) * w[0] + len(l1) * (1 << (s0 - s1)) * w[1]
                        + len(l2) * (1 << (s1 - s2)) * w[2] + len(leaves) * len(leaves[0]))
                if best is None or size < best["size"]:
                    best = dict(size=size, sh=[s0, s1, s2], w=w, top=top, l1=l1, l2=l2,
                                leaves=leaves, pack=pack)
    t = best
    t["digits"] = ["".join(enc(x, t["w"][0]) for x in t["top"]),
                   "".join(enc(x, t["w"][1]) for b in t["l1"] for x in b),
                   "".join(enc(x, t["w"][2]) for b in t["l2"] for x in b),
                   "".join(chr(48 + x) for b in t["leaves"] for x in b)]
    return t


def trie_digit(t, cp):
    """The leaf digit holding cp, found the way the C code finds it (to check the tables)."""
    s0, s1, s2 = t["sh"]
    if cp >> s0 >= len(t["top"]):
        return 0
    b = t["l1"][t["top"][cp >> s0]][(cp >> s1) & ((1 << (s0 - s1)) - 1)]
    b = t["l2"][b][(cp >> s2) & ((1 << (s1 - s2)) - 1)]
    return t["leaves"][b][(cp & ((1 << s2) - 1)) // t["pack"]]


def trie_c(name, t, what):
    """The four tables of a trie, and the initializer of the struct mft__uc_trie that describes
    it (for the accessor)."""
    s0, s1, s2 = t["sh"]
    parts = [
        c_table(name + "_t0", t["digits"][0], "%s trie, top level: %d block ids of %d digit(s)"
                % (what, len(t["top"]), t["w"][0])),
        c_table(name + "_t1", t["digits"][1], "%s trie, level 1: %d blocks of %d block ids of "
                "%d digit(s)" % (what, len(t["l1"]), 1 << (s0 - s1), t["w"][1])),
        c_table(name + "_t2", t["digits"][2], "%s trie, level 2: %d blocks of %d leaf block ids "
                "of %d digit(s)" % (what, len(t["l2"]), 1 << (s1 - s2), t["w"][2])),
        c_table(name + "_leaf", t["digits"][3], "%s trie, leaves: %d blocks of %d code points, "
                "%d per digit" % (what, len(t["leaves"]), 1 << s2, t["pack"]))]
    init = ("{{%s_t0, %s_t1, %s_t2}, %s_leaf,\n         %d, {%d, %d, %d}, {%d, %d, %d}}"
            % ((name,) * 4 + (len(t["top"]), s0, s1, s2) + tuple(t["w"])))
    return "\n\n".join(parts), init


def wrap(items, width=96):
    out, line = [], ""
    for item in items:
        if line and len(line) + len(item) + 1 > width:
            out.append(line)
            line = ""
        line += item + ","
    out.append(line.rstrip(","))
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------
# the data

def class_bits(cp, gc, white):
    """The expected mft__uc_class(cp), straight from the definitions (also used by the tests)."""
    cat = gc[cp]
    return ((cat[0] == "L") * 1 | (cat in ("Nd", "Nl", "No")) * 2 | (cp in white) * 4
            | (cat[0] == "M") * 8 | (cat[0] == "P") * 16)


CODE_BIT = [0, 1, 2, 4, 8, 16, 8, 0]     # class code -> class bits; code 6 is a "busy" mark


def generate(ucd):
    version = ucd_version(ucd)
    gc, ccc, decomp, white, excluded, derived = read_ucd(ucd)

    def is_hangul_syllable(cp):
        return SBASE <= cp < SBASE + SCOUNT

    # --- normalization data

    # primary composites: canonical decompositions of two characters whose first is a starter,
    # not listed in CompositionExclusions.txt (singletons never compose: they have one character)
    primary = {cp: d for cp, d in decomp.items()
               if len(d) == 2 and cp not in excluded and ccc[d[0]] == 0}
    if derived is not None:  # cross-check with the derived property that says the same thing
        fce = {cp for cp in decomp if cp not in primary}
        assert fce == derived["Full_Composition_Exclusion"], "composition exclusions disagree"

    def full_decomposition(cp):
        if is_hangul_syllable(cp):
            s = cp - SBASE
            r = [LBASE + s // NCOUNT, VBASE + s % NCOUNT // TCOUNT]
            return r + ([TBASE + s % TCOUNT] if s % TCOUNT else [])
        if cp in decomp:
            return [x for c in decomp[cp] for x in full_decomposition(c)]
        return [cp]

    maxdec = max(len(full_decomposition(cp)) for cp in list(decomp) + [SBASE + 1])
    for cp in decomp:   # decompositions come canonically ordered (not relied on, but checked)
        d = full_decomposition(cp)
        for x, y in zip(d, d[1:]):
            assert ccc[y] == 0 or ccc[x] <= ccc[y], "U+%04X: decomposition out of order" % cp

    # "second" starters: characters of class 0 that are the second half of a primary composite
    # (U+0BBE and the like; the Hangul vowels and trailing consonants are tested in the code)
    second = {d[1] for d in primary.values() if ccc[d[1]] == 0}
    if derived is not None:
        hangul_vt = set(range(VBASE, VBASE + VCOUNT)) | set(range(TBASE + 1, TBASE + TCOUNT))
        assert {cp for cp in derived["NFC_QC_M"] if ccc[cp] == 0} == second | hangul_vt, \
            "the second starters differ from NFC_QC=Maybe"

    # --- character classes, 3-bit codes: 0 none, 1 L, 2 N, 3 S, 4 M, 5 P, and 6 for a mark
    # that matters to NFC (ccc > 0 or a second starter): see CODE_BIT
    codes = [0] * NCP
    for cp in range(NCP):
        cat = gc[cp]
        k = (3 if cp in white else 1 if cat[0] == "L" else 2 if cat in ("Nd", "Nl", "No")
             else 4 if cat[0] == "M" else 5 if cat[0] == "P" else 0)
        if ccc[cp] or cp in second:
            assert k == 4, "U+%04X: a combining character that is not a mark" % cp
            k = 6
        assert CODE_BIT[k] == class_bits(cp, gc, white), "U+%04X has two classes" % cp
        codes[cp] = k
    cls = build_trie([codes[i] | codes[i + 1] << 3 for i in range(0, NCP, 2)], 2)
    for cp in range(NCP):
        assert trie_digit(cls, cp) >> (3 * (cp & 1)) & 7 == codes[cp]

    # --- ccc and second starters of the code-6 marks: runs of equal (ccc, second)
    ccc_vals = sorted({ccc[cp] for cp in range(NCP) if ccc[cp]})
    ccc_code = {v: i + 1 for i, v in enumerate(ccc_vals)}     # code 0: a second starter
    runs = []
    for cp in range(NCP):
        if codes[cp] != 6:
            continue
        k = ccc_code[ccc[cp]] if ccc[cp] else 0
        if runs and runs[-1][0] + runs[-1][1] == cp and runs[-1][2] == k and runs[-1][1] < 64:
            runs[-1][1] += 1
        else:
            runs.append([cp, 1, k])
    assert len(ccc_vals) < 64
    ccc_digits = "".join(enc(s, 3) + enc(n - 1, 1) + enc(k, 1) for s, n, k in runs)

    # --- which code points decompose: a trie of bits, 4 per digit
    dec = [1 if (cp in decomp or is_hangul_syllable(cp)) else 0 for cp in range(NCP)]
    dtrie = build_trie([dec[i] | dec[i + 1] << 1 | dec[i + 2] << 2 | dec[i + 3] << 3
                        for i in range(0, NCP, 4)], 4)
    for cp in range(NCP):
        assert trie_digit(dtrie, cp) >> (cp & 3) & 1 == dec[cp]

    # --- the decompositions: records in code point order, found through runs of consecutive
    # code points; a record is 4 digits (24 bits): v < 2^18 is a singleton mapping to v, else
    # v = (j + 2) * 2^17 + a is the pair a, snd[j], where j < NPRIM for a primary composite:
    # snd lists the second characters of the primary composites, then (again, if need be)
    # those of the other pairs
    keys = sorted(decomp)
    snd_prim = sorted({d[1] for d in primary.values()})
    snd = snd_prim + sorted({d[1] for cp, d in decomp.items() if len(d) == 2 and cp not in primary})
    recs = []
    for cp in keys:
        d = decomp[cp]
        assert len(d) in (1, 2)
        if len(d) == 1:
            assert d[0] < 1 << 18
            recs.append(d[0])
        else:
            j = snd_prim.index(d[1]) if cp in primary else snd.index(d[1], len(snd_prim))
            assert d[0] < 1 << 17 and j + 2 < 128
            recs.append((j + 2) << 17 | d[0])
    # what the quick check of mft__uc_load relies on: a primary composite is a starter, not a
    # second half, and its full decomposition starts with a starter that is not a second half
    for cp in primary:
        f = full_decomposition(cp)[0]
        assert ccc[cp] == 0 and cp not in second and ccc[f] == 0 and f not in second
        assert not (VBASE <= f < VBASE + VCOUNT or TBASE < f < TBASE + TCOUNT)
    druns = []
    for i, cp in enumerate(keys):
        if druns and druns[-1][0] + (i - druns[-1][1]) == cp:
            continue
        druns.append((cp, i))
    assert len(keys) < 4096 and max(snd) < 64 ** 3
    drun_digits = "".join(enc(s, 3) + enc(i, 2) for s, i in druns) + enc(64 ** 3 - 1, 3) \
        + enc(len(keys), 2)
    rec_index = {cp: i for i, cp in enumerate(keys)}
    comp = sorted((decomp[cp][0], decomp[cp][1], rec_index[cp]) for cp in primary)

    # --- the fragment: the tables, then the accessor that points to them all
    cls_tables, cls_init = trie_c("mft__uc_cls", cls, "class")
    dec_tables, dec_init = trie_c("mft__uc_dec", dtrie, "decomposition bit")
    P = [HEAD.format(version=version),
         cls_tables,
         "/* the class of each ASCII character, as the character '0' + mask */\n"
         "static const char mft__uc_ascii[129] =\n%s;" % "\n".join(
             '    "%s"' % "".join(chr(48 + CODE_BIT[codes[c]]) for c in range(r, r + 32))
             .replace("\\", "\\\\").replace("?", "\\?") for r in range(0, 128, 32)),
         c_table("mft__uc_ccc_run", ccc_digits,
                 "the %d code-6 marks in runs: 3 digits first code point, 1 digit length - 1, "
                 "1 digit combining class code" % len(runs)),
         "/* combining class code -> ccc (code 0: a second starter, ccc 0) */\n"
         "static const unsigned char mft__uc_ccc_val[%d] = {\n%s\n};"
         % (len(ccc_vals) + 1, wrap(["0"] + [str(v) for v in ccc_vals])),
         dec_tables,
         c_table("mft__uc_drun", drun_digits,
                 "the %d decomposing code points in %d runs of consecutive ones (and an end "
                 "mark): 3 digits first code point, 2 digits index of its record"
                 % (len(keys), len(druns))),
         c_table("mft__uc_drec", "".join(enc(v, 4) for v in recs),
                 "their decompositions, 4 digits each: v < 2^18 a singleton, mapping to v; "
                 "else v = (j + 2) * 2^17 + a, the pair a, mft__uc_snd[j]"),
         c_table("mft__uc_snd", "".join(enc(b, 3) for b in snd),
                 "the second characters of pairs, 3 digits each: %d of primary composites, "
                 "then %d of the other pairs" % (len(snd_prim), len(snd) - len(snd_prim))),
         c_table("mft__uc_comp", "".join(enc(i, 2) for a, b, i in comp),
                 "the %d primary composites, as record indices (2 digits), sorted by (a, b)"
                 % len(comp))]
    values = {"version": '"%s"' % version, "cls": cls_init, "ascii": "mft__uc_ascii",
              "maxdec": str(maxdec), "nccc": str(len(runs)), "ccc_run": "mft__uc_ccc_run",
              "ccc_val": "mft__uc_ccc_val", "dec": dec_init, "ndrun": str(len(druns)),
              "drun": "mft__uc_drun", "drec": "mft__uc_drec", "nprim": str(len(snd_prim)),
              "snd": "mft__uc_snd", "ncomp": str(len(comp)), "comp": "mft__uc_comp"}
    assert sorted(values) == sorted(FIELDS)
    init = []
    for i, f in enumerate(FIELDS):
        v = "        " + values[f] + ("," if i < len(FIELDS) - 1 else "")
        last = v.split("\n")[-1]
        init.append(v + " " * max(1, 64 - len(last)) + "/* %s */" % f)
    P.append("/* the one way to the tables (see struct mft__uc_tables) */\n"
             "static const struct mft__uc_tables *mft__uc_tab(void)\n{\n"
             "    static const struct mft__uc_tables t = {\n%s\n    };\n    return &t;\n}"
             % "\n".join(init))
    stats = dict(version=version, cls=cls["size"], dec=dtrie["size"], ccc=len(ccc_digits),
                 drun=len(drun_digits), drec=4 * len(recs), comp=2 * len(comp),
                 runs=len(runs), druns=len(druns), maxdec=maxdec)
    return version, "\n\n".join(P) + "\n", stats


# ----------------------------------------------------------------------------------------------
# the C text around the tables

# The fields of struct mft__uc_tables (defined by hand in maskft.c), in order: the initializer
# of mft__uc_tab() is written in this order, and --inplace checks the struct still has them.
FIELDS = ["version", "cls", "ascii", "maxdec", "nccc", "ccc_run", "ccc_val", "dec", "ndrun",
          "drun", "drec", "nprim", "snd", "ncomp", "comp"]

# The copyright and permission notice of the Unicode data files, as Debian's unicode-data
# package quotes it (/usr/share/doc/unicode-data/copyright) and LICENSE repeats it. The Unicode
# license wants it to go with every copy of the data, with a notice that the data is modified.
UNICODE_NOTICE = """\
   COPYRIGHT AND PERMISSION NOTICE

   Copyright (c) 1991-2005 Unicode, Inc. All rights reserved.
   Distributed under the Terms of Use in http://www.unicode.org/copyright.html.

   Permission is hereby granted, free of charge, to any person obtaining a copy
   of the Unicode data files and any associated documentation (the "Data Files")
   or Unicode software and any associated documentation (the "Software") to deal
   in the Data Files or Software without restriction, including without limitation
   the rights to use, copy, modify, merge, publish, distribute, and/or sell copies
   of the Data Files or Software, and to permit persons to whom the Data Files
   or Software are furnished to do so, provided that (a) the above copyright notice(s)
   and this permission notice appear with all copies of the Data Files or Software,
   (b) both the above copyright notice(s) and this permission notice appear
   in associated documentation, and (c) there is clear notice in each modified
   Data File or in the Software as well as in the documentation associated with
   the Data File(s) or Software that the data or software has been modified.

   THE DATA FILES AND SOFTWARE ARE PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND,
   EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
   FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT OF THIRD PARTY RIGHTS.
   IN NO EVENT SHALL THE COPYRIGHT HOLDER OR HOLDERS INCLUDED IN THIS NOTICE BE LIABLE
   FOR ANY CLAIM, OR ANY SPECIAL INDIRECT OR CONSEQUENTIAL DAMAGES, OR ANY DAMAGES
   WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION OF
   CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN CONNECTION
   WITH THE USE OR PERFORMANCE OF THE DATA FILES OR SOFTWARE.

   Except as contained in this notice, the name of a copyright holder shall not be used
   in advertising or otherwise to promote the sale, use or other dealings in these
   Data Files or Software without prior written authorization of the copyright holder."""

HEAD = """\
/* Unicode {version} data for the character classes and the NFC normalization of the
   tokenizers: only tables, and the function mft__uc_tab() that points to them (struct
   mft__uc_tables, with the code that reads them, tells what each one holds). Generated by
   tools/gen_unicode.py; never edit, regenerate (Debian: apt-get install unicode-data):
       python3 tools/gen_unicode.py --inplace maskft.c

   Derived from the Unicode Character Database {version} (UnicodeData.txt, PropList.txt,
   CompositionExclusions.txt, DerivedNormalizationProps.txt) as packaged by Debian's
   unicode-data. The data has been modified: it is re-encoded into these compact lookup
   tables (character classes, canonical combining classes, decompositions, compositions).
   It is covered by the Unicode license, whose notice follows.

""" + UNICODE_NOTICE + " */"


# ----------------------------------------------------------------------------------------------

def check_code(text, maxdec):
    """What is wrong with the hand-written C code around the marker lines for these tables: the
    fields of struct mft__uc_tables must be FIELDS, in that order, and MFT__UC_MAXDEC must
    leave room for the longest decomposition. None if nothing is."""
    m = re.search(r"^struct mft__uc_tables \{(.*?)^\};", text, re.S | re.M)
    if not m:
        return "no 'struct mft__uc_tables {' ... '};' outside the marker lines"
    decls = re.sub(r"/\*.*?\*/", " ", m.group(1), flags=re.S).split(";")
    names = [re.findall(r"\w+", d.split("[")[0])[-1] for d in decls if d.strip()]
    if names != FIELDS:
        return ("struct mft__uc_tables has the fields %s, but the generator writes %s"
                % (", ".join(names), ", ".join(FIELDS)))
    m = re.search(r"^#define MFT__UC_MAXDEC (\d+)", text, re.M)
    if not m or int(m.group(1)) < maxdec:
        return ("the longest canonical decomposition has %d characters: MFT__UC_MAXDEC must "
                "be at least that" % maxdec)
    return None


def main():
    ap = argparse.ArgumentParser(description="Generate maskft's Unicode tables (see the top "
                                             "of this file).")
    ap.add_argument("--ucd", default="/usr/share/unicode",
                    help="directory of the Unicode Character Database files")
    ap.add_argument("--inplace", metavar="FILE",
                    help="replace the text between the marker lines of FILE")
    ap.add_argument("--with-markers", action="store_true",
                    help="frame the fragment printed on standard output with the marker lines")
    ap.add_argument("--stats", action="store_true", help="print table sizes on standard error")
    args = ap.parse_args()

    for f in ("UnicodeData.txt", "PropList.txt", "CompositionExclusions.txt"):
        if not os.path.exists(os.path.join(args.ucd, f)):
            sys.exit("gen_unicode.py: %s missing (apt-get install unicode-data)"
                     % os.path.join(args.ucd, f))
    version, body, stats = generate(args.ucd)
    if args.stats:
        sys.stderr.write("Unicode %(version)s; digits: class trie %(cls)d, decomposition bit "
                         "trie %(dec)d, ccc runs %(ccc)d (%(runs)d runs), decomposition runs "
                         "%(drun)d (%(druns)d runs), records %(drec)d, composites %(comp)d; "
                         "longest decomposition %(maxdec)d\n" % stats)
    begin = MARK_BEGIN.format(version)

    if args.inplace:
        with open(args.inplace, encoding="utf-8", newline="") as f:
            lines = f.read().split("\n")
        starts = [i for i, l in enumerate(lines) if MARK_BEGIN_RE.match(l)]
        ends = [i for i, l in enumerate(lines) if l.strip() == MARK_END]
        if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
            sys.stderr.write("gen_unicode.py: %s needs exactly one line matching\n  %s\n"
                             "followed by exactly one line\n  %s\n"
                             % (args.inplace, MARK_BEGIN.format("X.Y.Z"), MARK_END))
            return 1
        s, e = starts[0], ends[0]
        problem = check_code("\n".join(lines[:s] + lines[e + 1:]), stats["maxdec"])
        if problem:
            sys.stderr.write("gen_unicode.py: %s: %s; nothing written\n" % (args.inplace, problem))
            return 1
        new = lines[:s] + [begin] + body.rstrip("\n").split("\n") + lines[e:]
        tmp = args.inplace + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write("\n".join(new))
        os.replace(tmp, args.inplace)
        sys.stderr.write("gen_unicode.py: Unicode %s tables written into %s (%d bytes)\n"
                         % (version, args.inplace, len(body)))
        return 0

    text = body if not args.with_markers else begin + "\n" + body + MARK_END + "\n"
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
