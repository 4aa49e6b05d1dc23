# vppo.h - build, test, demo, install.
#
#   make demo      the main demonstration: DAPO vs VPPO on a toy vision-language task
#                  (examples/toy_vppo.c; writes docs/img/toy_*.svg); make demo-quickstart: one step
#   make study     the paper's ablations on that task, 10 arms x 16 seeds (docs/study.md)
#   make test      the whole suite: gcc and clang (when present) with -Werror, as C++,
#                  the compile tests of the header in every mode, the CUDA suite on the CPU
#                  emulator, and the examples at tiny sizes
#   make examples  the integration examples (examples/examples.mk); python-check, mpi-demo
#   make cuda      libvppo_cuda with nvcc (tests/cuda.mk); bash bench/run_gpu.sh on a GPU
#   make crosscheck  vppo.h against verl's core_algos, a torch transcription of the VPPO release's
#                  update_policy and torch.nn.functional (optional: Python with numpy, torch, verl);
#                  make golden rewrites tests/data/*.txt (checked by make test) from them
#   make bench     benchmarks (bench/bench.mk; bench-peers: against PyTorch CPU; bitcheck, bench-ab,
#                  bench-ab-topk: the kernels' output bits and speed against main's vppo.h)
#   make install   PREFIX=/usr/local: the header and a pkg-config file
#
# No -ffast-math / -Ofast anywhere: NaN handling and exact masks depend on IEEE rules.

CC      ?= cc
CXX     ?= c++
CLANG   := $(shell command -v clang 2>/dev/null)
CLANGXX := $(shell command -v clang++ 2>/dev/null)
PREFIX  ?= /usr/local
BUILD   := build

WARN     := -Wall -Wextra -pedantic -Werror
CSTD     := -std=c99
CXXSTD   := -std=c++11
OPT      := -O2 -g -ffp-contract=off
LDLIBS   := -lm
HAVE_OPENMP := $(shell echo 'int main(void){return 0;}' | gcc -fopenmp -x c - -o /dev/null 2>/dev/null && echo yes)

TEST_SRC := tests/test_main.c tests/test_util.c tests/test_basics.c tests/test_perturb.c \
            tests/test_perception.c tests/test_advantages.c tests/test_tas_tgf.c \
            tests/test_loss.c tests/test_rollout.c tests/test_pipeline.c tests/test_errors.c \
            tests/test_simd.c tests/test_linear.c tests/test_matrix.c tests/test_determinism.c \
            tests/test_big.c tests/fuzz/regressions.c tests/test_golden.c
TEST_DEP := $(TEST_SRC) tests/test.h tests/tests.def vppo.h

.PHONY: all test test-gcc test-clang test-cxx test-compile test-sanitize test-tsan test-omp test-nosimd test-openblas test-aarch64 \
        demo demo-quickstart study test-toy install uninstall clean

all: $(BUILD)/quickstart $(BUILD)/test_gcc

$(BUILD):
	@mkdir -p $(BUILD)

# ------------------------------------------------------------------ tests

$(BUILD)/test_gcc: $(TEST_DEP) | $(BUILD)
	gcc $(CSTD) $(WARN) $(OPT) -o $@ $(TEST_SRC) $(LDLIBS)

$(BUILD)/test_clang: $(TEST_DEP) | $(BUILD)
	clang $(CSTD) $(WARN) $(OPT) -o $@ $(TEST_SRC) $(LDLIBS)

$(BUILD)/test_cxx: $(TEST_DEP) | $(BUILD)
	g++ -x c++ $(CXXSTD) $(WARN) $(OPT) -o $@ $(TEST_SRC) $(LDLIBS)

# $(call every_isa,BINARY,LABEL,LOG[,RUN]): the suite BINARY once per ISA it can run here
# (--list-isas), started through RUN if given (a loader, an emulator), each run logged to
# LOG_<isa>.log; shows failures and the summary only.
every_isa = for isa in $$($(4) ./$(1) --list-isas); do \
	    echo "== suite, $(2), VPPO_TEST_ISA=$$isa"; \
	    VPPO_TEST_ISA=$$isa $(4) ./$(1) > $(3)_$$isa.log 2>&1; rc=$$?; \
	    grep -v '^  ok' $(3)_$$isa.log | grep -v '^        '; \
	    [ $$rc -eq 0 ] || exit 1; \
	done

# $(call run_logged,RUN,BINARY): the suite BINARY started through RUN (an emulator), its output
# in BINARY.log; on failure all of it is shown, else the failures and the summary only.
run_logged = $(1) ./$(2) > $(2).log 2>&1 || { cat $(2).log; exit 1; }; grep -v '^  ok' $(2).log

# The gcc build runs the whole suite once per ISA this machine can run (the default one
# first, with every line shown; the others show failures and the summary).
test-gcc: $(BUILD)/test_gcc
	@echo "== suite, gcc -std=c99, default ISA"
	./$(BUILD)/test_gcc
	@$(call every_isa,$(BUILD)/test_gcc,gcc -std=c99,$(BUILD)/test)

# OpenMP (the thread-count determinism test runs 1, 2 and 3 threads) and a scalar-only build.
$(BUILD)/test_omp: $(TEST_DEP) | $(BUILD)
	gcc $(CSTD) $(WARN) $(OPT) -fopenmp -o $@ $(TEST_SRC) $(LDLIBS)

$(BUILD)/test_nosimd: $(TEST_DEP) | $(BUILD)
	gcc $(CSTD) $(WARN) $(OPT) -DVPPO_NO_SIMD -o $@ $(TEST_SRC) $(LDLIBS)

test-omp: $(if $(HAVE_OPENMP),$(BUILD)/test_omp)
ifneq ($(HAVE_OPENMP),)
	@echo "== suite, gcc -fopenmp, OMP_NUM_THREADS=2"
	OMP_NUM_THREADS=2 ./$(BUILD)/test_omp > $(BUILD)/test_omp.log 2>&1 || { cat $(BUILD)/test_omp.log; exit 1; }
	@grep -v '^  ok' $(BUILD)/test_omp.log | grep -v '^        vexp'
else
	@echo "== gcc has no OpenMP here: the threaded build is not run"
endif

# The fused linear head with cblas_sgemm (VPPO_USE_CBLAS) when OpenBLAS is installed.
HAVE_OPENBLAS := $(shell echo 'int main(void){return 0;}' | gcc -x c - -lopenblas -o /dev/null 2>/dev/null && echo yes)
$(BUILD)/test_openblas: $(TEST_DEP) | $(BUILD)
	gcc $(CSTD) $(WARN) $(OPT) -DVPPO_USE_CBLAS -o $@ $(TEST_SRC) -lopenblas $(LDLIBS)

test-openblas: $(if $(HAVE_OPENBLAS),$(BUILD)/test_openblas)
ifneq ($(HAVE_OPENBLAS),)
	@echo "== suite, gcc -DVPPO_USE_CBLAS -lopenblas"
	./$(BUILD)/test_openblas > $(BUILD)/test_openblas.log 2>&1 || { cat $(BUILD)/test_openblas.log; exit 1; }
	@grep -v '^  ok' $(BUILD)/test_openblas.log | grep -v '^        vexp'
else
	@echo "== OpenBLAS not found (apt install libopenblas-dev): the CBLAS build is not run"
endif

test-nosimd: $(BUILD)/test_nosimd
	@echo "== suite, gcc -DVPPO_NO_SIMD (scalar only)"
	./$(BUILD)/test_nosimd > $(BUILD)/test_nosimd.log 2>&1 || { cat $(BUILD)/test_nosimd.log; exit 1; }
	@grep -v '^  ok' $(BUILD)/test_nosimd.log

# aarch64 (the NEON path) with Debian's cross gcc, run under qemu-user. gcc 12's aarch64
# vectoriser crashes on one test file (an internal compiler error), so that file is
# compiled without it; the library's own NEON code is explicit intrinsics.
A64CC := $(shell command -v aarch64-linux-gnu-gcc 2>/dev/null)
QEMU_A64 := $(shell command -v qemu-aarch64 2>/dev/null)
test-aarch64: | $(BUILD)
ifneq ($(and $(A64CC),$(QEMU_A64)),)
	@echo "== suite, aarch64-linux-gnu-gcc under qemu-aarch64 (NEON)"
	$(A64CC) $(CSTD) $(WARN) $(OPT) -fno-tree-vectorize -c tests/test_pipeline.c -o $(BUILD)/a64_pipeline.o
	$(A64CC) $(CSTD) $(WARN) $(OPT) -o $(BUILD)/test_aarch64 $(filter-out tests/test_pipeline.c,$(TEST_SRC)) \
	    $(BUILD)/a64_pipeline.o $(LDLIBS)
	@$(call run_logged,$(QEMU_A64) -L /usr/aarch64-linux-gnu,$(BUILD)/test_aarch64)
else
	@echo "== aarch64-linux-gnu-gcc or qemu-aarch64 missing (apt install gcc-aarch64-linux-gnu qemu-user): not run"
endif

test-clang: $(if $(CLANG),$(BUILD)/test_clang)
ifneq ($(CLANG),)
	@echo "== suite, clang -std=c99"
	./$(BUILD)/test_clang
else
	@echo "== clang not found: the clang build is not run"
endif

test-cxx: $(BUILD)/test_cxx
	@echo "== suite, g++ -std=c++11 (the whole suite compiled as C++)"
	./$(BUILD)/test_cxx

# The header in every mode: C99 and C++ declarations-only, VPPO_STATIC, included twice,
# and two translation units (one C++, one C with the implementation) linked together.
test-compile: | $(BUILD)
	@echo "== compile tests"
	gcc $(CSTD) $(WARN) $(OPT) -c tests/compile/decl_only.c -o $(BUILD)/decl_only.o
	g++ $(CXXSTD) $(WARN) $(OPT) -c tests/compile/decl_only.cpp -o $(BUILD)/decl_only_cpp.o
	gcc $(CSTD) $(WARN) $(OPT) -c tests/compile/impl.c -o $(BUILD)/impl.o
	g++ $(CXXSTD) $(WARN) $(OPT) -o $(BUILD)/two_tu $(BUILD)/decl_only_cpp.o $(BUILD)/impl.o $(LDLIBS)
	./$(BUILD)/two_tu
	gcc $(CSTD) $(WARN) $(OPT) -o $(BUILD)/static_twice tests/compile/static_twice.c $(LDLIBS)
	./$(BUILD)/static_twice
	g++ $(CXXSTD) $(WARN) $(OPT) -o $(BUILD)/static_twice_cpp -x c++ tests/compile/static_twice.c $(LDLIBS)
	./$(BUILD)/static_twice_cpp
ifneq ($(CLANG),)
	clang $(CSTD) $(WARN) $(OPT) -o $(BUILD)/static_twice_clang tests/compile/static_twice.c $(LDLIBS)
	./$(BUILD)/static_twice_clang
endif
ifneq ($(CLANGXX),)
	clang++ $(CXXSTD) $(WARN) $(OPT) -o $(BUILD)/static_twice_clangxx -x c++ tests/compile/static_twice.c $(LDLIBS)
	./$(BUILD)/static_twice_clangxx
endif
	@echo "compile tests: ok"

# Every section reference (§N, §N.M) in the tree must name a heading of docs/spec.md. The
# checker must also reject sections 99 and 2.99, which have none (written as octal escapes
# here so that this file holds no unresolved reference itself).
REF_PATHS := vppo.h vppo_cuda.h vppo_cuda.cu README.md Makefile tests bench examples docs
.PHONY: check-refs
check-refs: | $(BUILD)
	@sh tests/check_refs.sh docs/spec.md $(REF_PATHS)
	@printf 'see \302\24799 and \302\2472.99\n' > $(BUILD)/check_refs_bad.txt
	@! sh tests/check_refs.sh docs/spec.md $(BUILD)/check_refs_bad.txt > $(BUILD)/check_refs_bad.log \
	    || { echo "check-refs: the checker accepted unknown sections"; exit 1; }
	@test "$$(grep -c 'has no heading' $(BUILD)/check_refs_bad.log)" = 2 \
	    || { cat $(BUILD)/check_refs_bad.log; echo "check-refs: the checker did not name both unknown sections"; exit 1; }

test: check-refs test-compile test-gcc test-clang test-cxx test-omp test-nosimd test-openblas test-cuda-emu \
      test-cuda-emu-contract test-cuda-emu-selftest test-toy examples-check
	@echo "== make test: every build passed"

# The suite under AddressSanitizer and UndefinedBehaviorSanitizer, any error fatal.
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
$(BUILD)/test_san: $(TEST_DEP) | $(BUILD)
	gcc $(CSTD) $(WARN) -O1 -g -ffp-contract=off $(SAN) -o $@ $(TEST_SRC) $(LDLIBS)

test-sanitize: $(BUILD)/test_san
	@echo "== suite under ASan + UBSan"
	ASAN_OPTIONS=detect_leaks=1 ./$(BUILD)/test_san

# Thread safety: threads calling every kernel family at once in a fresh process (the first
# calls race on the ISA choice), clang -fsanitize=thread, no OpenMP; any race is fatal.
$(BUILD)/test_tsan: tests/test_tsan.c vppo.h | $(BUILD)
	clang $(CSTD) $(WARN) -O1 -g -ffp-contract=off -fsanitize=thread -o $@ tests/test_tsan.c $(LDLIBS) -lpthread

test-tsan: $(if $(CLANG),$(BUILD)/test_tsan)
	@if [ -z "$(CLANG)" ]; then echo "== test-tsan: not run (no clang)"; else \
	    echo "== threads under ThreadSanitizer"; \
	    TSAN_OPTIONS="halt_on_error=1 exitcode=66" setarch "$$(uname -m)" -R ./$(BUILD)/test_tsan; fi

# ------------------------------------------------------------------ demo

$(BUILD)/quickstart: examples/quickstart.c vppo.h | $(BUILD)
	$(CC) $(CSTD) $(WARN) $(OPT) -o $@ examples/quickstart.c $(LDLIBS)

# The main demonstration: DAPO vs VPPO on the toy task of examples/toy_vppo.c (3 seeds,
# 33 s of CPU, 47 s wall on a loaded 2-core machine), with the token heatmap; writes
# docs/img/toy_curves.svg and docs/img/toy_heatmap.svg. make study: the ten arms of
# docs/study.md x 16 seeds (16-25 min on 2 cores); rewrites the results part of
# docs/study.md and docs/img/study_*.svg, log in build/study.log.
TOY_OMP := $(if $(HAVE_OPENMP),-fopenmp)
$(BUILD)/toy_vppo: examples/toy_vppo.c vppo.h | $(BUILD)
	gcc $(CSTD) $(WARN) $(OPT) $(TOY_OMP) -o $@ examples/toy_vppo.c $(LDLIBS)

demo: $(BUILD)/toy_vppo
	./$(BUILD)/toy_vppo

study: $(BUILD)/toy_vppo
	{ ./$(BUILD)/toy_vppo --study; echo $$? > $(BUILD)/study.rc; } | tee $(BUILD)/study.log; exit $$(cat $(BUILD)/study.rc)

# One VPPO step on a synthetic batch, explained (examples/quickstart.c).
demo-quickstart: $(BUILD)/quickstart
	./$(BUILD)/quickstart

# The demo and the study at tiny size (1 seed, 3 steps, a bitwise rerun check; the study
# writes its report into build/study_quick, keeping a copy of the protocol) and as C++:
# part of make test.
test-toy: $(BUILD)/toy_vppo $(BUILD)/quickstart
	@echo "== examples/toy_vppo.c --quick, --study --quick"
	./$(BUILD)/toy_vppo --quick > $(BUILD)/toy_quick.log || { cat $(BUILD)/toy_quick.log; exit 1; }
	@rm -rf $(BUILD)/study_quick && mkdir -p $(BUILD)/study_quick/img && cp docs/study.md $(BUILD)/study_quick/
	./$(BUILD)/toy_vppo --study --quick --out $(BUILD)/study_quick > $(BUILD)/study_quick.log || { cat $(BUILD)/study_quick.log; exit 1; }
	grep -q '^## Protocol' $(BUILD)/study_quick/study.md && grep -q '^## Results' $(BUILD)/study_quick/study.md \
	  && test -s $(BUILD)/study_quick/img/study_curves.svg && test -s $(BUILD)/study_quick/img/study_differences.svg
	g++ -x c++ $(CXXSTD) $(WARN) $(OPT) -fsyntax-only examples/toy_vppo.c
	./$(BUILD)/quickstart > /dev/null

# Benchmarks: make bench, make bench-quick, make bench-peers (see bench/bench.mk).
include bench/bench.mk

# The examples (examples/examples.mk).
include examples/examples.mk

# CUDA: make cuda, make test-cuda (needs a GPU), make test-cuda-emu (tests/cuda.mk).
include tests/cuda.mk

# CUDA benchmarks: make bench-cuda, bench-cuda-quick, bench-cuda-torch (need a GPU),
# bench-cuda-emu (CPU emulator), cuda-budget (SASS instruction budget, no GPU) (bench/cuda.mk).
include bench/cuda.mk

# Reliability: fuzzers, valgrind, 32-bit, large indices (tests/reliability.mk).
include tests/reliability.mk

# Cross-check against verl, the VPPO release and torch (optional): make crosscheck, make golden.
include tests/crosscheck/crosscheck.mk

# ------------------------------------------------------------------ install

install:
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 vppo.h $(DESTDIR)$(PREFIX)/include/vppo.h
	printf 'prefix=%s\nincludedir=$${prefix}/include\n\nName: vppo\nDescription: %s\nVersion: %s\nCflags: -I$${includedir}\nLibs: -lm\n' \
	    '$(PREFIX)' 'VPPO reinforcement-learning math, single-header C99' \
	    "$$(sed -n 's/^#define VPPO_VERSION_MAJOR \([0-9]*\)/\1/p' vppo.h).$$(sed -n 's/^#define VPPO_VERSION_MINOR \([0-9]*\)/\1/p' vppo.h).$$(sed -n 's/^#define VPPO_VERSION_PATCH \([0-9]*\)/\1/p' vppo.h)" \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/vppo.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/vppo.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/vppo.pc

clean:
	rm -rf $(BUILD)
