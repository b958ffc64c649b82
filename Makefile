# maskft - a menu with reasons.
#   make               the maskft tool and the quickstart, for this machine (build/)
#   make demo          the experiment of the README's table (about 4 minutes on 2 cores)
#   make test          the whole suite in four builds: native SIMD, scalar (-DMFT_NO_SIMD, no
#                      OpenMP), AddressSanitizer + UBSan, and aarch64 NEON under qemu; plus CLI checks
#   make bench         training throughput, GFLOP/s and peak memory at stories15M / 110M shapes
#   make bench-torch   the same shapes in PyTorch (Debian python3-torch), to compare side by side
#   make NO_OMP=1 ...  build without OpenMP
#   make NATIVE=       build without -march=native (portable: scalar kernels on x86-64)

CC      ?= cc
CROSS   ?= aarch64-linux-gnu-gcc
QEMU    ?= qemu-aarch64
PYTHON  ?= /usr/bin/python3
OPT     ?= -O2
# -march=native turns on AVX2+FMA where the CPU has them; checked, not assumed
NATIVE  ?= $(shell $(CC) -march=native -E -x c /dev/null >/dev/null 2>&1 && echo -march=native)
ifndef NO_OMP
OMP     := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null >/dev/null 2>&1 && echo -fopenmp)
endif
WARN    := -Wall -Wextra -Werror -std=c99 -D_POSIX_C_SOURCE=200809L
CFLAGS  ?= $(OPT) $(NATIVE) $(OMP) -Wall -Wextra
LDLIBS  := -lm

LIB     := maskft.c maskft.h

.PHONY: all demo test test-native test-scalar test-asan test-neon bench bench-torch clean

all: build/maskft build/quickstart

build:
	@mkdir -p build

build/maskft: examples/maskft.c $(LIB) | build
	$(CC) $(CFLAGS) -o $@ examples/maskft.c maskft.c $(LDLIBS)

build/quickstart: examples/quickstart.c $(LIB) | build
	$(CC) $(CFLAGS) -o $@ examples/quickstart.c maskft.c $(LDLIBS)

demo: all
	@sh examples/demo.sh

# ---- tests: each build compiles with warnings as errors --------------------------------------
build/test_native: tests/test_maskft.c $(LIB) | build
	$(CC) $(OPT) $(NATIVE) $(OMP) $(WARN) -o $@ tests/test_maskft.c $(LDLIBS)

# scalar kernels and no OpenMP: the most portable build (the others cover OpenMP)
build/test_scalar: tests/test_maskft.c $(LIB) | build
	$(CC) $(OPT) -DMFT_NO_SIMD $(WARN) -o $@ tests/test_maskft.c $(LDLIBS)

build/test_asan: tests/test_maskft.c $(LIB) | build
	$(CC) -O1 -g $(NATIVE) $(OMP) $(WARN) -fsanitize=address,undefined -fno-sanitize-recover=all \
	  -fno-omit-frame-pointer -o $@ tests/test_maskft.c $(LDLIBS)

# static, so qemu-aarch64 needs no aarch64 sysroot at run time
build/test_neon: tests/test_maskft.c $(LIB) | build
	$(CROSS) $(OPT) -fopenmp $(WARN) -static -o $@ tests/test_maskft.c $(LDLIBS)

build/test_cxx.o: maskft.h | build
	echo '#include "../maskft.h"' > build/test_cxx.cpp
	g++ -Wall -Wextra -Werror -c build/test_cxx.cpp -o $@

# the programs in examples/ and bench/ compile cleanly with warnings as errors, too, and so does
# the engine alone (MFT_NO_TEXT: Part I of maskft.c)
build/strict.stamp: examples/maskft.c examples/quickstart.c bench/bench.c $(LIB) | build
	for f in examples/maskft.c examples/quickstart.c bench/bench.c; do \
	  $(CC) $(OPT) $(NATIVE) $(OMP) $(WARN) -c $$f -o build/strict.o || exit 1; done
	$(CC) $(OPT) $(NATIVE) $(OMP) $(WARN) -c maskft.c -o build/strict.o
	$(CC) $(OPT) $(WARN) -DMFT_NO_TEXT -c maskft.c -o build/strict.o
	@rm -f build/strict.o; touch $@

test: build/test_native build/test_scalar build/test_asan build/maskft build/quickstart build/strict.stamp
	@sh tests/run.sh

bench: build/bench
	@sh bench/run.sh

build/bench: bench/bench.c $(LIB) | build
	$(CC) $(OPT) $(NATIVE) $(OMP) -Wall -Wextra -o $@ bench/bench.c maskft.c $(LDLIBS)

bench-torch:
	$(PYTHON) bench/bench_torch.py

clean:
	rm -rf build
