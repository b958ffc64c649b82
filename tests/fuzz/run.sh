#!/bin/sh
# Builds the libFuzzer harnesses (make fuzz-build) and runs each for FUZZ_SECONDS (default 30),
# two at a time, from the seeds in tests/fuzz/seeds/<name>/ plus what earlier runs found
# (build/fuzz/corpus/<name>/). One line per harness: ok or FAIL, its name, the inputs run and
# the result. Exits 1 if any harness crashed, leaked, hung (10 s for one input), ran out of
# memory (2 GB) or asked for more than 2 GB at once; the input that did it is kept under
# build/fuzz/artifacts/<name>/ (replay it: build/fuzz/fuzz_<name> FILE). Run from the
# repository root. Names as arguments run only those harnesses.
#   --probe   exit 0 if clang can build a libFuzzer harness here, else 1 with the reason
set -u
MAKE=${MAKE:-make}
CLANG=${FUZZ_CC:-clang}
SECS=${FUZZ_SECONDS:-30}
ALL="model checkpoint gguf hf tokenizer tokconfig json record draft utf8"

probe() {
    command -v "$CLANG" >/dev/null 2>&1 || { echo "$CLANG not installed (apt-get install clang)"; return 1; }
    mkdir -p build/fuzz
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > build/fuzz/probe.c
    "$CLANG" -fsanitize=fuzzer,address,undefined -o build/fuzz/probe build/fuzz/probe.c >build/fuzz/probe.log 2>&1 ||
        { echo "$CLANG cannot link a libFuzzer harness (apt-get install libclang-rt-14-dev)"; return 1; }
}
if [ "${1:-}" = --probe ]; then probe; exit; fi
why=$(probe) || { echo "FAIL fuzz: $why"; exit 1; }
names=${*:-$ALL}
$MAKE -s -j2 fuzz-build FUZZ_CC="$CLANG" >build/fuzz/build.log 2>&1 || { cat build/fuzz/build.log; echo "FAIL fuzz: the harnesses do not build"; exit 1; }

# one harness: its log is build/fuzz/<name>.log, its verdict line build/fuzz/<name>.result
one() {
    n=$1 log=build/fuzz/$1.log
    mkdir -p build/fuzz/corpus/$n build/fuzz/artifacts/$n
    ./build/fuzz/fuzz_$n -max_total_time="$SECS" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/$n/ \
        build/fuzz/corpus/$n tests/fuzz/seeds/$n >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    rate=""
    [ -n "$runs" ] && [ -n "$secs" ] && [ "$secs" -gt 0 ] && rate=" ($((runs / secs))/s)"
    art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    what=$(grep -o -m1 'ERROR: AddressSanitizer: [A-Za-z-]*\|ERROR: LeakSanitizer: [a-z ]*\|runtime error: .*\|ERROR: libFuzzer: [a-z -]*\|out-of-memory ([a-z ]*)' "$log" | head -1)
    if [ $rc -eq 0 ] && [ -z "$art" ]; then
        echo "ok   fuzz_$n: ${runs:-?} inputs in ${secs:-?} s$rate, no crash, leak, hang or huge allocation"
    else
        echo "FAIL fuzz_$n: ${what:-exit $rc} after ${runs:-?} inputs; ${art:+the input: $art; }replay: ./build/fuzz/fuzz_$n ${art:-FILE} (log: $log)"
    fi > build/fuzz/$n.result
}

# two at a time: a pair starts together and runs for the same time
set -- $names
fail=0
while [ $# -gt 0 ]; do
    one "$1" & p1=$!; a=$1; shift
    b=""
    if [ $# -gt 0 ]; then one "$1" & p2=$!; b=$1; shift; fi
    wait $p1; [ -n "$b" ] && wait $p2
    for n in $a $b; do cat build/fuzz/$n.result; grep -q '^ok ' build/fuzz/$n.result || fail=1; done
done
exit $fail
