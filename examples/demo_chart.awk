# demo_chart.awk: the demo's chart, from the results examples/demo.sh leaves in build/demo; run it
# again on them without training:
#   awk -v dir=build/demo -f examples/demo_chart.awk > build/demo/demo.svg
# It reads dir/rows.txt (a line per policy: its name, then the eval JSON's "key value" pairs),
# dir/NAME.log (the "epoch_end" lines: step and drift_kl) and dir/NAME.train.txt (how many texts
# the drift is measured on), and draws two panels, one above the other: facts recalled against
# mean KL after training, a marker per policy; and drift KL after each epoch, a line per policy
# ending in the same marker. A policy has one colour (Okabe-Ito, told apart by colour-blind
# readers too), marker and dash in both panels; two variants of one idea share a colour, the
# second drawn open and dashed.
# Axes come from the data: a few percent of margin, ticks at 1, 2, 5 x 10^k (1, 3 x 10^k on a log
# axis of more than 2 decades), and a log scale for a KL axis whose values span more than 1.5
# decades (a count or a step count stays linear).
# Every label is placed by one rule: try places around its marker, nearest first (right, left,
# above, below, half a line and a line up or down, the diagonals, then rings further out with a
# leader line), and take the first whose box (0.6 x font size per character, + 2 px) keeps 2 px
# from every other label, marker, leader and the frame, and meets no curve; if every place meets
# a curve, the one meeting the fewest segments. Greedy, in the order that costs least (the most
# crowded markers first, then the worst placed moved to the front, a few times); a label with no
# place at all becomes a number, explained under its panel.
# Deterministic (no clock, no "for (k in a)" order: the same results give the same bytes) and
# POSIX awk: mawk (Debian's awk), gawk --posix and bwk awk give the same bytes (busybox awk
# needs its math support, which Debian's lacks). -v debug=1 writes each placement to stderr.

function log10(x) { return log(x) / log(10) }
function pow10(e) { return exp(e * log(10)) }
function floor(x,   i) { i = int(x); return (x < i) ? i - 1 : i }
function ceil(x,   i) { i = int(x); return (x > i) ? i + 1 : i }
function abs(x) { return x < 0 ? -x : x }
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
function f1(x) { return sprintf("%.1f", x) }
function num(s) { return s + 0 }
function field(line, k,   n, a, i) {           # the value after the word k in a rows.txt line
    n = split(line, a, " ")
    for (i = 1; i <= n; i++) if (a[i] == k) return a[i + 1] + 0
    return 0
}
function out(s) { SVG = SVG s "\n" }

# ---- axes ------------------------------------------------------------------------------------
function nice(x,   e, f) {                     # 1, 2 or 5 x 10^e, near x
    e = floor(log10(x)); f = x / pow10(e)
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * pow10(e)
}
function ticklabel(v) {                        # 0.05, 0.1, 1, 50: as short as it reads
    if (abs(v) < 1e-12) return "0"
    return sprintf("%g", sprintf("%.6g", v) + 0)
}
# axis(a, lo, hi, p0, p1, kl, unit): the data run from lo to hi; pixels p0 (lo) to p1 (hi); kl: a
# KL axis, log if hi/lo > 10^1.5; unit: a whole-number axis (counts, steps), ticks >= 1 apart
function axis(a, lo, hi, p0, p1, kl, unit,   l0, l1, pad, e, m, v, step, t, i) {
    AP0[a] = p0; AP1[a] = p1; NT[a] = 0; NM[a] = 0
    if (kl && lo > 0 && hi / lo > pow10(1.5)) {
        LOG[a] = 1; l0 = log10(lo); l1 = log10(hi); pad = 0.05 * (l1 - l0)
        DLO[a] = l0 - pad; DHI[a] = l1 + pad
        for (e = floor(DLO[a]); e <= ceil(DHI[a]); e++)
            for (m = 1; m <= 9; m++) {
                v = m * pow10(e); t = log10(v)
                if (t < DLO[a] || t > DHI[a]) continue
                if (m == 1 || (l1 - l0 <= 2 ? m == 2 || m == 5 : m == 3)) TV[a, ++NT[a]] = v
                else MV[a, ++NM[a]] = v
            }
        return
    }
    LOG[a] = 0
    if (hi <= lo) hi = lo + 1
    pad = 0.04 * (hi - lo); DLO[a] = lo - pad; DHI[a] = hi + pad
    step = nice((hi - lo) / 5); if (unit && step < 1) step = 1
    for (i = ceil(DLO[a] / step); i * step <= DHI[a] + 1e-9; i++) TV[a, ++NT[a]] = i * step
}
function pos(a, v,   t) {                      # data value -> pixel
    t = LOG[a] ? log10(v) : v
    return AP0[a] + (t - DLO[a]) / (DHI[a] - DLO[a]) * (AP1[a] - AP0[a])
}

# ---- markers -----------------------------------------------------------------------------------
function half(shape, r) { return r * (shape == "diamond" ? 1.25 : shape == "square" ? 0.9 : shape == "circle" ? 1 : 1.2) + 1 }
function marker(shape, open, col, x, y, r, cls,   st, s, h) {
    st = open ? sprintf("fill=\"white\" stroke=\"%s\" stroke-width=\"1.8\"", col) \
              : sprintf("fill=\"%s\" stroke=\"white\" stroke-width=\"0.8\"", col)
    if (shape == "circle") return sprintf("<circle class=\"%s\" cx=\"%s\" cy=\"%s\" r=\"%s\" %s/>", cls, f1(x), f1(y), f1(r), st)
    if (shape == "square") { s = r * 0.9
        return sprintf("<rect class=\"%s\" x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" %s/>", cls, f1(x - s), f1(y - s), f1(2 * s), f1(2 * s), st) }
    if (shape == "diamond") { s = r * 1.25
        return sprintf("<polygon class=\"%s\" points=\"%s,%s %s,%s %s,%s %s,%s\" %s/>", cls, f1(x), f1(y - s), f1(x + s), f1(y), f1(x), f1(y + s), f1(x - s), f1(y), st) }
    h = (shape == "down") ? -1 : 1; s = r * 1.2 # triangles, "up" or "down"
    return sprintf("<polygon class=\"%s\" points=\"%s,%s %s,%s %s,%s\" %s/>", cls, f1(x), f1(y - h * s), f1(x + s), f1(y + h * s * 0.8), f1(x - s), f1(y + h * s * 0.8), st)
}

# ---- label placement -------------------------------------------------------------------------
# obstacles: boxes (markers, placed labels: OX0..OY1), segments (curves: CX0..CY1; leader lines:
# LX0..LY1); labels stay inside the box BX0..BY1 (the plot area)
# (the curves' segments are also filed in a grid of GS-px cells by their top left corner, so a box
# looks only at the cells near it)
function clear_obstacles() { NO = 0; NC = 0; NL = 0; GS = 20; GW = 0; GH = 0; GRID++ }
function add_box(x0, y0, x1, y1, owner) { NO++; OX0[NO] = x0; OY0[NO] = y0; OX1[NO] = x1; OY1[NO] = y1; OOWN[NO] = owner }
function add_curve(x0, y0, x1, y1,   c) {
    NC++; CX0[NC] = x0; CY0[NC] = y0; CX1[NC] = x1; CY1[NC] = y1
    if (abs(x1 - x0) > GW) GW = abs(x1 - x0); if (abs(y1 - y0) > GH) GH = abs(y1 - y0)
    c = GRID SUBSEP int((x0 < x1 ? x0 : x1) / GS) SUBSEP int((y0 < y1 ? y0 : y1) / GS)
    GN[c]++; GI[c, GN[c]] = NC
}
function add_leader(x0, y0, x1, y1) { NL++; LX0[NL] = x0; LY0[NL] = y0; LX1[NL] = x1; LY1[NL] = y1 }
function lb(p, q,   r) {                       # one Liang-Barsky clip step on LT0..LT1
    if (p == 0) return q >= 0
    r = q / p
    if (p < 0) { if (r > LT1) return 0; if (r > LT0) LT0 = r }
    else { if (r < LT0) return 0; if (r < LT1) LT1 = r }
    return 1
}
function seg_box(ax, ay, bx, by, x0, y0, x1, y1) { # does segment a-b meet box x0,y0-x1,y1?
    LT0 = 0; LT1 = 1
    return lb(ax - bx, ax - x0) && lb(bx - ax, x1 - ax) && lb(ay - by, ay - y0) && lb(by - ay, y1 - ay)
}
function orient(ax, ay, bx, by, cx, cy,   v) { v = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax); return v > 0 ? 1 : v < 0 ? -1 : 0 }
function seg_seg(ax, ay, bx, by, cx, cy, dx, dy) { # do segments a-b and c-d meet (touching counts)?
    if ((ax < bx ? ax : bx) > (cx > dx ? cx : dx) || (ax > bx ? ax : bx) < (cx < dx ? cx : dx)) return 0
    if ((ay < by ? ay : by) > (cy > dy ? cy : dy) || (ay > by ? ay : by) < (cy < dy ? cy : dy)) return 0
    return orient(ax, ay, bx, by, cx, cy) * orient(ax, ay, bx, by, dx, dy) <= 0 && orient(cx, cy, dx, dy, ax, ay) * orient(cx, cy, dx, dy, bx, by) <= 0
}
# is another marker within n of the box x0,y0-x1,y1?
function nearer(x0, y0, x1, y1, n, owner,   i, cx, cy, dx, dy) {
    for (i = 1; i <= NO; i++) {
        if (OOWN[i] == "label" || OOWN[i] == owner) continue
        cx = (OX0[i] + OX1[i]) / 2; cy = (OY0[i] + OY1[i]) / 2
        dx = (cx < x0) ? x0 - cx : (cx > x1) ? cx - x1 : 0; dy = (cy < y0) ? y0 - cy : (cy > y1) ? cy - y1 : 0
        if (dx * dx + dy * dy < n * n) return 1
    }
    return 0
}
# what it costs to put a label box x0,y0-x1,y1 there, with a leader from (ax,ay) to (bx,by) if
# lead: -1 if it meets a label, a marker, a leader or the frame (owner: the label's own marker,
# which its leader leaves); else 2 for each curve segment under the box, 1 for each the leader crosses
function cost(x0, y0, x1, y1, lead, ax, ay, bx, by, owner,   i, g, c, u0, v0, u1, v1, gx, gy, q, k) {
    if (x0 < BX0 || y0 < BY0 || x1 > BX1 || y1 > BY1) return -1
    g = 2                                      # at least 2 px between a label and anything
    for (i = 1; i <= NO; i++) {
        if (x0 - g < OX1[i] && x1 + g > OX0[i] && y0 - g < OY1[i] && y1 + g > OY0[i]) return -1
        # a leader keeps off the other labels and markers (but for one its marker overlaps)
        if (lead && OOWN[i] != owner && !(ax >= OX0[i] - 1 && ax <= OX1[i] + 1 && ay >= OY0[i] - 1 && ay <= OY1[i] + 1) \
            && seg_box(ax, ay, bx, by, OX0[i] - 1, OY0[i] - 1, OX1[i] + 1, OY1[i] + 1)) return -1
    }
    for (i = 1; i <= NL; i++) {
        if (seg_box(LX0[i], LY0[i], LX1[i], LY1[i], x0 - g, y0 - g, x1 + g, y1 + g)) return -1
        if (lead && seg_seg(ax, ay, bx, by, LX0[i], LY0[i], LX1[i], LY1[i])) return -1
    }
    c = 0; u0 = x0; v0 = y0; u1 = x1; v1 = y1     # the cells that can hold a segment meeting box or leader
    if (lead) { u0 = (ax < u0) ? ax : u0; u1 = (ax > u1) ? ax : u1; v0 = (ay < v0) ? ay : v0; v1 = (ay > v1) ? ay : v1 }
    for (gx = int((u0 - 1 - GW) / GS) - 1; gx <= int((u1 + 1) / GS); gx++)
        for (gy = int((v0 - 1 - GH) / GS) - 1; gy <= int((v1 + 1) / GS); gy++) {
            q = GRID SUBSEP gx SUBSEP gy
            if (!(q in GN)) continue
            for (k = 1; k <= GN[q]; k++) { i = GI[q, k]
                if (seg_box(CX0[i], CY0[i], CX1[i], CY1[i], x0 - 1, y0 - 1, x1 + 1, y1 + 1)) c += 2
                else if (lead && seg_seg(ax, ay, bx, by, CX0[i], CY0[i], CX1[i], CY1[i])) c++ }
        }
    return c
}
# the places a label tries around its point, nearest first: ring k is d(k) px from the point's
# centre; in each ring: right, left, above, below, right and left half a line and a line up or down,
# the four diagonals, above and below to either side, right and left 1.5 and 2 lines up or down
function candidates(   k, j, c, f) {
    NCAND = 0
    c = "E 0;W 0;N 0;S 0;E -0.5;E 0.5;W -0.5;W 0.5;E -1;E 1;W -1;W 1;NE 0;SE 0;NW 0;SW 0;N 1;N -1;S 1;S -1;" \
        "E -1.5;E 1.5;W -1.5;W 1.5;E -2;E 2;W -2;W 2"
    NCT = split(c, CT, ";")
    for (k = 0; k <= 24; k++) for (j = 1; j <= NCT; j++) { NCAND++; CK[NCAND] = k; split(CT[j], f, " "); CD[NCAND] = f[1]; CS[NCAND] = f[2] + 0 }
}
# place(text, x, y, r, fs, owner, rings): find a box for text beside the point (x, y) of radius r,
# rings 0 to rings out (a ring 12 is about 100 px from the point): the first place that is clear of everything; if none is, the one whose box and leader meet the fewest
# curve segments (the first of those). Sets PX0, PY0 (the box's corner), PW, PH, PLEAD, the
# leader PAX..PBY and PCOST (-1: no place at all; 0: clear)
function place(text, x, y, r, fs, owner, rings,   w, h, i, k, d, dir, sh, x0, y0, lead, ax, ay, bx, by, n, q, c) {
    w = 0.6 * fs * length(text) + 2; h = fs + 2; PCOST = -1
    for (i = 1; i <= NCAND; i++) {
        k = CK[i]; dir = CD[i]; sh = CS[i] * (h + 2)
        if (k > rings) break
        d = r + 3 + (k < 2 ? 4 * k : 8 * k - 8)
        if (dir ~ /^.[EW]$/) q = d * 0.72; else q = d
        if (dir == "E") { x0 = x + d; y0 = y - h / 2 + sh }
        else if (dir == "W") { x0 = x - d - w; y0 = y - h / 2 + sh }
        else if (dir == "N" || dir == "S") {
            y0 = (dir == "N") ? y - d - h : y + d
            x0 = (sh == 0) ? x - w / 2 : (sh > 0) ? x - r : x + r - w }
        else { x0 = (dir ~ /E/) ? x + q : x - q - w; y0 = (dir ~ /N/) ? y - q - h : y + q }
        # a leader, from the marker's edge to the box's nearest point, when the box is not right
        # beside its marker; a box right beside it must not be as near another marker
        bx = (x < x0) ? x0 : (x > x0 + w) ? x0 + w : x
        by = (y < y0) ? y0 : (y > y0 + h) ? y0 + h : y
        n = sqrt((bx - x) ^ 2 + (by - y) ^ 2)
        lead = (n > r + 6)
        if (!lead && nearer(x0, y0, x0 + w, y0 + h, n + 4, owner)) continue
        if (lead) { ax = x + (bx - x) * (r + 1.5) / n; ay = y + (by - y) * (r + 1.5) / n }
        c = cost(x0, y0, x0 + w, y0 + h, lead, ax, ay, bx, by, owner)
        if (c >= 0 && (PCOST < 0 || c < PCOST)) {
            PX0 = x0; PY0 = y0; PW = w; PH = h; PLEAD = lead; PAX = ax; PAY = ay; PBX = bx; PBY = by; PCOST = c
            if (c == 0) return 1
        }
    }
    return PCOST >= 0
}
# label(j): place label j of the panel (LT: text, LX, LY: its point, LR: the point's radius, LN:
# its policy), record it as an obstacle and draw it (or its number); returns its cost: 0 right
# beside its marker, 1 + a px in 15 with a leader, 10 + 5 a curve segment for one that meets curves,
# 500 for a number
function label(j,   text, x, y, r, ok, how, c) {
    text = LT[j]; x = LX[j]; y = LY[j]; r = LR[j]
    ok = place(text, x, y, r, FS, LN[j], 12); how = "clear"; c = 0
    if (ok && PCOST > 0) { how = "meets " PCOST / 1 " (2 a segment under the box, 1 across the leader)"; c = 10 + 5 * PCOST }
    if (!ok) { NUMS++; NUMTXT[PANEL, ++NNUM[PANEL]] = NUMS ": " text; text = NUMS; how = "numbered"; c = 500
        ok = place(text, x, y, r, FS, LN[j], 24)
        if (!ok) { PX0 = x + r + 3; PY0 = y - (FS + 2) / 2; PW = 0.6 * FS * length(text) + 2; PH = FS + 2; PLEAD = 0; how = "numbered, overlapping" } }
    if (PLEAD) c += 1 + sqrt((PBX - PAX) ^ 2 + (PBY - PAY) ^ 2) / 15
    if (LDEBUG) printf "label %-14s %-22s at %6.1f,%6.1f %3dx%2d%s: %s\n", LN[j], text, PX0, PY0, PW, PH, PLEAD ? " (leader)" : "", how > "/dev/stderr"
    add_box(PX0, PY0, PX0 + PW, PY0 + PH, "label")
    if (PLEAD) { add_leader(PAX, PAY, PBX, PBY)
        LEADERS = LEADERS sprintf("<line class=\"leader\" x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"0.8\"/>\n", f1(PAX), f1(PAY), f1(PBX), f1(PBY), COL[LN[j]]) }
    LABELS = LABELS sprintf("<text class=\"label\" x=\"%s\" y=\"%s\" fill=\"%s\">%s</text>\n", f1(PX0 + 1), f1(PY0 + 1 + 0.77 * FS), TXT[LN[j]], esc(text))
    return c
}
function label_run(   i, score) {            # the labels in the order LORD, from the panel's bare obstacles
    NO = NOBASE; NL = 0; LABELS = ""; LEADERS = ""; NNUM[PANEL] = 0; NUMS = NUMS0; score = 0
    for (i = 1; i <= NLB; i++) { LCOST[LORD[i]] = label(LORD[i]); score += LCOST[LORD[i]] }
    return score
}
# label_panel(): label the panel's NLB points, whose markers (and curves) are obstacles already.
# Greedy, in an order: the most crowded points first; then, a few times, the costliest label
# (one that meets a curve, or a number) moved to the front; the cheapest order wins
function label_panel(   i, j, k, c, t, best, it, wi) {
    NOBASE = NO; NUMS0 = NUMS
    for (i = 1; i <= NLB; i++) { c = 0
        for (j = 1; j <= NLB; j++) if (j != i && abs(LX[j] - LX[i]) < 120 && abs(LY[j] - LY[i]) < 30) c++
        CROWD[i] = c; LORD[i] = i }
    for (i = 2; i <= NLB; i++) for (j = i; j > 1 && CROWD[LORD[j]] > CROWD[LORD[j - 1]]; j--) { t = LORD[j]; LORD[j] = LORD[j - 1]; LORD[j - 1] = t }
    best = -1
    for (it = 1; it <= 2 * NLB; it++) {
        c = label_run()
        if (best < 0 || c < best) { best = c; for (i = 1; i <= NLB; i++) BORD[i] = LORD[i] }
        wi = 0
        for (i = 2; i <= NLB; i++) if (LCOST[LORD[i]] >= 10 && (!wi || LCOST[LORD[i]] > LCOST[LORD[wi]])) wi = i
        if (!wi) break
        k = LORD[wi]; for (i = wi; i > 1; i--) LORD[i] = LORD[i - 1]; LORD[1] = k
    }
    for (i = 1; i <= NLB; i++) LORD[i] = BORD[i]
    LDEBUG = debug; label_run(); LDEBUG = 0
    if (debug) printf "panel %d: cost %.1f\n", PANEL, best > "/dev/stderr"
}

# ---- the frame of a panel --------------------------------------------------------------------
function frame(ax, ay, xtitle, ytitle,   i, x, y, v, X0, X1, Y0, Y1) {
    X0 = AP0[ax]; X1 = AP1[ax]; Y0 = AP1[ay]; Y1 = AP0[ay]
    out(sprintf("<rect class=\"frame\" x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"none\" stroke=\"#999\"/>", f1(X0), f1(Y0), f1(X1 - X0), f1(Y1 - Y0)))
    for (i = 1; i <= NM[ax]; i++) { x = pos(ax, MV[ax, i]); out(sprintf("<line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"#f2f2f2\"/>", f1(x), f1(x), f1(Y0), f1(Y1))) }
    for (i = 1; i <= NM[ay]; i++) { y = pos(ay, MV[ay, i]); out(sprintf("<line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"#f2f2f2\"/>", f1(X0), f1(X1), f1(y), f1(y))) }
    for (i = 1; i <= NT[ax]; i++) { v = TV[ax, i]; x = pos(ax, v)
        out(sprintf("<line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"#dcdcdc\"/><line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"#999\"/>", f1(x), f1(x), f1(Y0), f1(Y1), f1(x), f1(x), f1(Y1), f1(Y1 + 4)))
        out(sprintf("<text class=\"tick\" x=\"%s\" y=\"%s\" text-anchor=\"middle\">%s</text>", f1(x), f1(Y1 + 17), ticklabel(v))) }
    for (i = 1; i <= NT[ay]; i++) { v = TV[ay, i]; y = pos(ay, v)
        out(sprintf("<line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"#dcdcdc\"/><line x1=\"%s\" x2=\"%s\" y1=\"%s\" y2=\"%s\" stroke=\"#999\"/>", f1(X0), f1(X1), f1(y), f1(y), f1(X0 - 4), f1(X0), f1(y), f1(y)))
        out(sprintf("<text class=\"tick\" x=\"%s\" y=\"%s\" text-anchor=\"end\">%s</text>", f1(X0 - 7), f1(y + 4), ticklabel(v))) }
    out(sprintf("<text class=\"axis\" x=\"%s\" y=\"%s\" text-anchor=\"middle\">%s</text>", f1((X0 + X1) / 2), f1(Y1 + 35), esc(xtitle)))
    out(sprintf("<text class=\"axis\" transform=\"rotate(-90 %s %s)\" x=\"%s\" y=\"%s\" text-anchor=\"middle\">%s</text>", f1(X0 - 48), f1((Y0 + Y1) / 2), f1(X0 - 48), f1((Y0 + Y1) / 2), esc(ytitle)))
}
function notes(y,   i, s) {                    # the numbered labels' legend under a panel
    for (i = 1; i <= NNUM[PANEL]; i++) { out(sprintf("<text class=\"note\" x=\"%d\" y=\"%s\">%s</text>", ML, f1(y), esc(NUMTXT[PANEL, i]))); y += 16 }
    return y
}

BEGIN {
    if (dir == "") dir = "build/demo"
    candidates()
    # name|label|colour|marker|open|dash: pairs of one idea share a colour, the variant drawn open
    # and dashed; Okabe-Ito's black, orange, sky blue, bluish green, blue, vermillion, reddish
    # purple, and a grey
    n = split("all|all tokens|#000000|circle|0|;" \
        "all_fixed|all tokens, 30 epochs|#000000|circle|1|6,3;" \
        "dft|DFT|#8c8c8c|square|0|2,3;" \
        "lora_all|LoRA, all tokens|#56B4E9|up|0|;" \
        "lora_key|LoRA, key tokens|#56B4E9|up|1|6,3;" \
        "key|key tokens|#D55E00|diamond|0|;" \
        "key_anchor|key + anchor 1|#009E73|square|0|;" \
        "key_anchor10|key + anchor 10|#009E73|square|1|6,3;" \
        "key_teacher|key + teacher 1|#0072B2|circle|0|2,3;" \
        "replay|key + replay|#E69F00|down|0|;" \
        "replay_kl|key + replay-KL|#E69F00|down|1|6,3;" \
        "sentence|sentence as key|#CC79A7|diamond|0|;" \
        "sentence_rkl|sentence + replay-KL|#CC79A7|diamond|1|6,3", spec, ";")
    for (i = 1; i <= n; i++) { split(spec[i], s, "|")
        LBL[s[1]] = s[2]; COL[s[1]] = s[3]; SHP[s[1]] = s[4]; OPEN[s[1]] = s[5]; DASH[s[1]] = s[6] }
    split("#000000 #E69F00 #56B4E9 #009E73 #0072B2 #D55E00 #CC79A7 #8c8c8c", spare, " ")
    # label text: a colour dark enough to read on white
    DARK["#000000"] = "#000000"; DARK["#8c8c8c"] = "#666666"; DARK["#56B4E9"] = "#2a7fb0"; DARK["#D55E00"] = "#c05400"
    DARK["#009E73"] = "#007a59"; DARK["#0072B2"] = "#0072B2"; DARK["#E69F00"] = "#a87400"; DARK["#CC79A7"] = "#b0508a"

    rows = dir "/rows.txt"; np = 0
    while ((getline line < rows) > 0) {
        split(line, a, " "); r = a[1]; P[++np] = r
        if (!(r in LBL)) { LBL[r] = r; COL[r] = spare[(np - 1) % 8 + 1]; SHP[r] = "circle"; OPEN[r] = 0; DASH[r] = "4,2" }
        TXT[r] = (COL[r] in DARK) ? DARK[COL[r]] : COL[r]
        REC[r] = field(line, "recalled"); KLM[r] = field(line, "kl_mean"); FACTS = field(line, "n"); PROBES = field(line, "probes")
        txt = dir "/" r ".train.txt"         # "... drift KL 0.0014 on 64 texts, step 2"
        while (!DRIFTN && (getline l < txt) > 0) if (l ~ /drift KL [0-9.]* on [0-9]* texts/) { sub(/.*drift KL [0-9.]* on /, "", l); DRIFTN = l + 0 }
        close(txt)
        log_ = dir "/" r ".log"; NE[r] = 0
        while ((getline l < log_) > 0) {
            if (l !~ /"epoch_end"/) continue
            st = l; sub(/.*"step": /, "", st); d = l; sub(/.*"drift_kl": /, "", d)
            NE[r]++; ES[r, NE[r]] = num(st); EK[r, NE[r]] = num(d)
        }
        close(log_)
    }
    close(rows)
    if (np == 0) { print "demo_chart.awk: no policies in " rows > "/dev/stderr"; exit 1 }
    if (FACTS == 0) FACTS = 24
    for (i = 1; i <= np; i++) { r = P[i]
        if (i == 1 || REC[r] < rmin) rmin = REC[r]; if (i == 1 || REC[r] > rmax) rmax = REC[r]
        if (i == 1 || KLM[r] < kmin) kmin = KLM[r]; if (i == 1 || KLM[r] > kmax) kmax = KLM[r]
        for (k = 1; k <= NE[r]; k++) {
            if (!dset || ES[r, k] > smax) smax = ES[r, k]
            if (!dset || EK[r, k] < dmin) dmin = EK[r, k]; if (!dset || EK[r, k] > dmax) dmax = EK[r, k]; dset = 1 }
    }

    W = 840; ML = 72; MR = 14; FS = 12
    # ---- panel 1: recall against drift ----
    PANEL = 1; T1 = 36; H1 = 270
    axis("kx", kmin, kmax, ML, W - MR, 1, 0)
    axis("ry", (rmin < 0 ? rmin : 0), rmax, T1 + H1, T1, 0, 1)
    out(sprintf("<text class=\"title\" x=\"%d\" y=\"%d\">Recall against drift, after training: one marker per policy</text>", ML - 56, T1 - 14))
    frame("kx", "ry", "mean KL to the base model on held-out text (" (PROBES ? PROBES " probes, " : "") "nats" (LOG["kx"] ? ", log scale" : "") "): left is less drift", \
        "facts recalled in other words (of " FACTS ")")
    clear_obstacles(); LABELS = ""; LEADERS = ""
    BX0 = AP0["kx"] + 2; BX1 = AP1["kx"] - 2; BY0 = AP1["ry"] + 2; BY1 = AP0["ry"] - 2
    for (i = 1; i <= np; i++) { r = P[i]; MXX[r] = pos("kx", KLM[r]); MYY[r] = pos("ry", REC[r])
        c = half(SHP[r], 5); add_box(MXX[r] - c, MYY[r] - c, MXX[r] + c, MYY[r] + c, r) }
    NLB = 0
    for (i = 1; i <= np; i++) { r = P[i]; NLB++; LT[NLB] = LBL[r]; LX[NLB] = MXX[r]; LY[NLB] = MYY[r]; LR[NLB] = half(SHP[r], 5); LN[NLB] = r }
    label_panel()
    out(LEADERS)
    for (i = 1; i <= np; i++) { r = P[i]; out(marker(SHP[r], OPEN[r], COL[r], MXX[r], MYY[r], 5, "point")) }
    out(LABELS)
    y = notes(T1 + H1 + 56)

    # ---- panel 2: drift during training ----
    PANEL = 2; T2 = y + 22; H2 = 420
    axis("sx", 0, smax, ML, W - MR, 0, 1)
    # a linear KL axis starts at 0, the base model's own, where every line starts at step 0
    axis("dy", (dmin > 0 && dmax / dmin > pow10(1.5)) ? dmin : 0, dmax, T2 + H2, T2, 1, 0)
    out(sprintf("<text class=\"title\" x=\"%d\" y=\"%s\">Drift during training: KL after each epoch, one line per policy, its marker at the last epoch</text>", ML - 56, f1(T2 - 14)))
    frame("sx", "dy", "training step (AdamW update)", "KL to the base model" (DRIFTN ? ", " DRIFTN " held-out probes" : " on held-out probes") (LOG["dy"] ? " (log scale)" : ""))
    clear_obstacles(); LABELS = ""; LEADERS = ""
    BX0 = AP0["sx"] + 2; BX1 = AP1["sx"] - 2; BY0 = AP1["dy"] + 2; BY1 = AP0["dy"] - 2
    for (i = 1; i <= np; i++) { r = P[i]; pts = ""
        if (!NE[r]) continue
        if (!LOG["dy"]) pts = f1(pos("sx", 0)) "," f1(pos("dy", 0)) " " # linear: from the base model's 0
        for (k = 1; k <= NE[r]; k++) { x = pos("sx", ES[r, k]); y = pos("dy", EK[r, k]); pts = pts f1(x) "," f1(y) " "
            if (k > 1) add_curve(px_, py_, x, y)
            else if (!LOG["dy"]) add_curve(pos("sx", 0), pos("dy", 0), x, y)
            px_ = x; py_ = y }
        sub(/ $/, "", pts)
        out(sprintf("<polyline class=\"curve\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"%s stroke-linejoin=\"round\" points=\"%s\"/>", COL[r], DASH[r] != "" ? " stroke-dasharray=\"" DASH[r] "\"" : "", pts))
        c = half(SHP[r], 4.5); EX[r] = px_; EY[r] = py_; add_box(px_ - c, py_ - c, px_ + c, py_ + c, r) }
    NLB = 0
    for (i = 1; i <= np; i++) { r = P[i]; if (NE[r]) { NLB++; LT[NLB] = LBL[r]; LX[NLB] = EX[r]; LY[NLB] = EY[r]; LR[NLB] = half(SHP[r], 4.5); LN[NLB] = r } }
    label_panel()
    out(LEADERS)
    for (i = 1; i <= np; i++) { r = P[i]; if (NE[r]) out(marker(SHP[r], OPEN[r], COL[r], EX[r], EY[r], 4.5, "point")) }
    out(LABELS)
    H = notes(T2 + H2 + 56) - 4

    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\" font-size=\"%d\">\n", W, H, W, H, FS
    printf "<title>maskft demo: facts recalled against drift from the base model per policy, and drift during training</title>\n"
    printf "<style>.title { font-size: 14px; font-weight: bold } .tick { fill: #444 } .label { paint-order: stroke; stroke: white; stroke-width: 3px; stroke-linejoin: round }</style>\n"
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "%s", SVG
    print "</svg>"
}
