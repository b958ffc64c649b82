# maskft - a menu with reasons.
#   make               the maskft tool and the quickstart, for this machine (build/)
#   make demo          the experiment of the README's table (about 4 minutes on 2 cores)
#   make test          the whole suite in four builds: native SIMD, scalar (-DMFT_NO_SIMD, no
#                      OpenMP), AddressSanitizer + UBSan, and aarch64 NEON under qemu; plus CLI checks,
#                      maskft.c as C++, the quickstart on the pair dropped in and on make install, and
#                      make fuzz (30 s per reader)
#   make fuzz          every reader under libFuzzer + ASan/UBSan (clang), FUZZ_SECONDS each (default 30),
#                      two at a time; make fuzz-build builds the harnesses only (build/fuzz/)
#   make bench         training throughput (full loss, 30% and 10% weighted), GFLOP/s against the
#                      measured FMA peak and peak memory at the stories15M / 110M / SmolLM2-135M shapes
#   make bench-torch   the same shapes in PyTorch (Debian python3-torch), to compare side by side
#   make install       maskft.h, libmaskft.a and maskft.pc (pkg-config) under PREFIX=/usr/local
#                      (DESTDIR respected); the library is built portable, without -march=native,
#                      unless NATIVE is given (make install NATIVE=-march=native); make uninstall
#   make NO_OMP=1 ...  build without OpenMP
#   make NATIVE=       build without -march=native (portable: scalar kernels on x86-64)

CC      ?= cc
CXX     ?= g++
CROSS   ?= aarch64-linux-gnu-gcc
CROSSXX ?= aarch64-linux-gnu-g++
QEMU    ?= qemu-aarch64
PYTHON  ?= /usr/bin/python3
OPT     ?= -O2
# -march=native turns on AVX2+FMA where the CPU has them; checked, not assumed
NATIVE  ?= $(shell $(CC) -march=native -E -x c /dev/null >/dev/null 2>&1 && echo -march=native)
ifndef NO_OMP
OMP     := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null >/dev/null 2>&1 && echo -fopenmp)
endif
WARN    := -Wall -Wextra -Werror -std=c99 -D_POSIX_C_SOURCE=200809L
CXXWARN := -Wall -Wextra -Werror -std=c++11 -D_POSIX_C_SOURCE=200809L
CFLAGS  ?= $(OPT) $(NATIVE) $(OMP) -Wall -Wextra
LDLIBS  := -lm

LIB     := maskft.c maskft.h

# make install: GNU's directory variables
PREFIX      ?= /usr/local
includedir  ?= $(PREFIX)/include
libdir      ?= $(PREFIX)/lib
pkgconfigdir ?= $(libdir)/pkgconfig
VERSION     := $(shell sed -n 's/^\#define MFT_VERSION_STRING "\(.*\)"$$/\1/p' maskft.h)
# an installed library may be linked on another machine: portable unless NATIVE is given on the
# command line (on x86-64 that means the scalar kernels; aarch64 always has NEON)
LIBNATIVE   := $(if $(filter command line environment,$(origin NATIVE)),$(NATIVE))
LIBFLAGS    := $(OPT) $(LIBNATIVE) $(OMP) -Wall -Wextra

.PHONY: all demo test fuzz fuzz-build test-native test-scalar test-asan test-neon bench bench-torch clean install uninstall FORCE

all: build/maskft build/quickstart

build:
	@mkdir -p build

build/maskft: examples/maskft.c $(LIB) | build
	$(CC) $(CFLAGS) -o $@ examples/maskft.c maskft.c $(LDLIBS)

build/quickstart: examples/quickstart.c $(LIB) | build
	$(CC) $(CFLAGS) -I. -o $@ examples/quickstart.c maskft.c $(LDLIBS)

# ---- the library as a dependency --------------------------------------------------------------
# the flags the archive was built with, rewritten only when they change (so NATIVE= rebuilds it)
build/lib/flags: FORCE | build
	@mkdir -p build/lib; echo '$(LIBFLAGS)' | cmp -s - $@ || echo '$(LIBFLAGS)' > $@

build/lib/libmaskft.a: $(LIB) build/lib/flags
	$(CC) $(LIBFLAGS) -c maskft.c -o build/lib/maskft.o
	rm -f $@; $(AR) rcs $@ build/lib/maskft.o

# Libs carries -fopenmp when the archive was built with it: a static library brings no OpenMP
# runtime of its own
install: build/lib/libmaskft.a
	install -d $(DESTDIR)$(includedir) $(DESTDIR)$(libdir) $(DESTDIR)$(pkgconfigdir)
	install -m 644 maskft.h $(DESTDIR)$(includedir)/maskft.h
	install -m 644 build/lib/libmaskft.a $(DESTDIR)$(libdir)/libmaskft.a
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$(includedir)' 'libdir=$(libdir)' '' 'Name: maskft' \
	  'Description: fine-tune small LLaMA-family models on a CPU, training only the tokens that carry what is new' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lmaskft $(OMP) -lm' \
	  > $(DESTDIR)$(pkgconfigdir)/maskft.pc

uninstall:
	rm -f $(DESTDIR)$(includedir)/maskft.h $(DESTDIR)$(libdir)/libmaskft.a $(DESTDIR)$(pkgconfigdir)/maskft.pc

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

# maskft.c compiles as C++ too (native SIMD with OpenMP, scalar, the engine alone); the native
# object links into the C quickstart (g++'s OpenMP regions name the C++ runtime's personality
# routine: -lstdc++), and the quickstart compiled as C++ links with the C library (maskft.h's
# extern "C")
build/cxx.stamp: $(LIB) | build
	$(CXX) $(OPT) $(NATIVE) $(OMP) $(CXXWARN) -x c++ -c maskft.c -o build/maskft_cxx.o
	$(CXX) $(OPT) -DMFT_NO_SIMD $(CXXWARN) -x c++ -c maskft.c -o build/cxx_tmp.o
	$(CXX) $(OPT) -DMFT_NO_TEXT $(CXXWARN) -x c++ -c maskft.c -o build/cxx_tmp.o
	@rm -f build/cxx_tmp.o; touch $@

build/quickstart_on_cxx: examples/quickstart.c build/cxx.stamp
	$(CC) $(OPT) $(NATIVE) $(WARN) -I. -c examples/quickstart.c -o build/quickstart_c.o
	$(CC) $(OMP) -o $@ build/quickstart_c.o build/maskft_cxx.o $(LDLIBS) $(if $(OMP),-lstdc++)

build/quickstart_cxx: examples/quickstart.c build/lib/libmaskft.a
	$(CXX) $(OPT) $(CXXWARN) -I. -x c++ -c examples/quickstart.c -o build/quickstart_cxx.o
	$(CXX) $(OMP) -o $@ build/quickstart_cxx.o build/lib/libmaskft.a $(LDLIBS)

build/cxx_neon.stamp: $(LIB) | build
	$(CROSSXX) $(OPT) -fopenmp $(CXXWARN) -x c++ -c maskft.c -o build/cxx_tmp_neon.o
	@rm -f build/cxx_tmp_neon.o; touch $@

# the programs in examples/ and bench/ compile cleanly with warnings as errors, too, and so does
# the engine alone (MFT_NO_TEXT: Part I of maskft.c)
build/strict.stamp: examples/maskft.c examples/quickstart.c bench/bench.c $(LIB) | build
	for f in examples/maskft.c examples/quickstart.c bench/bench.c; do \
	  $(CC) $(OPT) $(NATIVE) $(OMP) $(WARN) -I. -c $$f -o build/strict.o || exit 1; done
	$(CC) $(OPT) $(NATIVE) $(OMP) $(WARN) -c maskft.c -o build/strict.o
	$(CC) $(OPT) $(WARN) -DMFT_NO_TEXT -c maskft.c -o build/strict.o
	@rm -f build/strict.o; touch $@

test: build/test_native build/test_scalar build/test_asan build/maskft build/quickstart build/strict.stamp
	@sh tests/run.sh

# ---- fuzzing: one libFuzzer harness per reader (tests/fuzz/), clang only ----------------------
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_NAMES   := model checkpoint gguf hf tokenizer tokconfig json record draft utf8
FUZZ_BINS    := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(LIB)
	@mkdir -p build/fuzz
	$(FUZZ_CC) -g -O1 $(WARN) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	  -fno-omit-frame-pointer -o $@ $< $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CC=$(FUZZ_CC) sh tests/fuzz/run.sh

bench: build/bench
	@sh bench/run.sh

build/bench: bench/bench.c $(LIB) | build
	$(CC) $(OPT) $(NATIVE) $(OMP) -Wall -Wextra -o $@ bench/bench.c $(LDLIBS)

bench-torch:
	$(PYTHON) bench/bench_torch.py

clean:
	rm -rf build
