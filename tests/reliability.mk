# tests/reliability.mk - fuzzers, valgrind, 32-bit and large-index builds (included by the Makefile).
#
#   make fuzz            every libFuzzer harness (tests/fuzz/) for FUZZ_SECONDS each (default 60),
#                        from the committed seed corpus; new inputs go to build/rel/fuzz/corpus_<name>
#   make fuzz-quick      each harness over its committed corpus plus FUZZ_QUICK_RUNS (5000) inputs from
#                        a fixed seed (at most FUZZ_QUICK_SECONDS): repeatable, for CI
#   make fuzz-corpus     (maintenance) merge what make fuzz found into tests/fuzz/corpus/<name>
#   make test-valgrind   the suite built -O1 -g without sanitizers, under valgrind --leak-check=full
#   make test-m32        the suite built for 32-bit x86 (gcc -m32 or the i686 cross gcc), on every ISA
#   make test-armhf      the suite on 32-bit ARM Linux (cross gcc + qemu-arm)
#   make test-cortex-m   the header compiled and linked for bare-metal Cortex-M4F and M0 (-Werror)
#   make test-O0         the suite at -O0 and
#   make test-O3         at -O3, with gcc and clang
#   make test-big        tests/test_big.c as its own program: a row of 2^31 + 64 logits and a
#                        linear head with vocab 2^31 + 17 (lazily zero memory; seconds)
#   make docs-matrix     rewrite docs/bad_input_matrix.md from the table in tests/test_matrix.c
#
# Outputs go to build/rel/. A tool that is missing (clang's libFuzzer, valgrind, the 32-bit
# multilib) makes its target say "not run" and succeed; everything else fails loudly.

REL := $(BUILD)/rel
FUZZERS := fuzz_perception fuzz_tgf fuzz_loss fuzz_perturb fuzz_linear
FUZZ_SECONDS ?= 60
FUZZ_QUICK_SECONDS ?= 10
FUZZ_QUICK_RUNS ?= 5000
FUZZ_FLAGS := $(CSTD) $(WARN) -O1 -g -ffp-contract=off -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_DEP := tests/fuzz/fuzz.h tests/test.h tests/test_util.c vppo.h

.PHONY: fuzz fuzz-quick fuzz-corpus fuzz-build test-valgrind test-m32 test-armhf test-cortex-m test-O0 test-O3 test-big docs-matrix

$(REL):
	@mkdir -p $(REL)

# --------------------------------------------------------------- fuzzers

# Whether clang links libFuzzer here (apt install clang libclang-rt-14-dev otherwise).
HAVE_LIBFUZZER = $(shell printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\
{ (void)d; (void)n; return 0; }\n' | clang -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null && echo yes)

$(REL)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEP) | $(REL)
	clang $(FUZZ_FLAGS) -o $@ $< tests/test_util.c $(LDLIBS)

fuzz-build:
	@if [ "$(HAVE_LIBFUZZER)" = yes ]; then $(MAKE) --no-print-directory $(addprefix $(REL)/,$(FUZZERS)); \
	else echo "== clang with libFuzzer not found (apt install clang libclang-rt-14-dev): the fuzzers are not run"; fi

# Runs every harness for $(1) seconds (from the committed corpus, adding to build/rel/fuzz)
# and prints its executions; stops at the first crash (its input is in build/rel/fuzz/).
# $(2): extra libFuzzer flags (fuzz-quick: a fixed seed and run count, so that CI is repeatable).
define run_fuzzers
	@if [ "$(HAVE_LIBFUZZER)" != yes ]; then exit 0; fi; \
	mkdir -p $(REL)/fuzz; \
	for f in $(FUZZERS); do \
	    mkdir -p $(REL)/fuzz/corpus_$$f; \
	    echo "== $$f, $(1) s"; \
	    ./$(REL)/$$f -max_total_time=$(1) $(2) -print_final_stats=1 -artifact_prefix=$(REL)/fuzz/ \
	        $(REL)/fuzz/corpus_$$f tests/fuzz/corpus/$$f > $(REL)/fuzz/$$f.log 2>&1; rc=$$?; \
	    awk '/^stat::number_of_executed_units/ { e = $$2 } /^stat::new_units_added/ { n = $$2 } \
	         END { printf "   %s executions, %s new inputs\n", e, n }' $(REL)/fuzz/$$f.log; \
	    if [ $$rc -ne 0 ]; then tail -40 $(REL)/fuzz/$$f.log; echo "== $$f failed (log: $(REL)/fuzz/$$f.log)"; exit 1; fi; \
	done
endef

fuzz: fuzz-build
	$(call run_fuzzers,$(FUZZ_SECONDS))

fuzz-quick: fuzz-build
	$(call run_fuzzers,$(FUZZ_QUICK_SECONDS),-seed=1 -runs=$(FUZZ_QUICK_RUNS))

# Rewrites the committed corpus from itself and what make fuzz found: at most
# FUZZ_CORPUS_MAX inputs per harness, picked greedily for coverage, plus every
# regression-* input (tests/fuzz/reduce_corpus.py; needs python3).
FUZZ_CORPUS_MAX ?= 60
fuzz-corpus: fuzz-build
	@for f in $(FUZZERS); do \
	    python3 tests/fuzz/reduce_corpus.py --max $(FUZZ_CORPUS_MAX) ./$(REL)/$$f tests/fuzz/corpus/$$f \
	        tests/fuzz/corpus/$$f $(REL)/fuzz/corpus_$$f || exit 1; \
	done

# --------------------------------------------------------------- valgrind

# The suite at -O1 -g without sanitizers, test by test under memcheck. Left out:
# isa_select_matches_the_cpu, because valgrind's virtual CPU hides AVX-512 from CPUID
# while /proc/cpuinfo shows it (a property of valgrind, not of the library; every other
# test runs, on the ISAs valgrind's CPU offers).
VALGRIND := $(shell command -v valgrind 2>/dev/null)
VALGRIND_SKIP := isa_select_matches_the_cpu
$(REL)/test_vg: $(TEST_DEP) | $(REL)
	gcc $(CSTD) $(WARN) -O1 -g -ffp-contract=off -o $@ $(TEST_SRC) $(LDLIBS)

test-valgrind: $(if $(VALGRIND),$(REL)/test_vg)
ifneq ($(VALGRIND),)
	@echo "== suite under valgrind memcheck (-O1 -g), one test at a time; skipped: $(VALGRIND_SKIP)"
	@fail=0; n=0; for t in $$(sed -n 's/^T(\(.*\))$$/\1/p' tests/tests.def); do \
	    case " $(VALGRIND_SKIP) " in *" $$t "*) continue;; esac; \
	    n=$$((n + 1)); \
	    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
	        ./$(REL)/test_vg "$$t" > $(REL)/valgrind_one.log 2>&1; rc=$$?; \
	    if [ $$rc -ne 0 ]; then fail=$$((fail + 1)); echo "FAIL $$t (rc $$rc)"; grep -v '^  ok' $(REL)/valgrind_one.log | tail -30; fi; \
	done; echo "valgrind: $$n tests, $$fail failed"; [ $$fail -eq 0 ]
else
	@echo "== valgrind not found (apt install valgrind): the memcheck run is not run"
endif

# --------------------------------------------------------------- portability

# 32-bit x86: sizes that do not fit a 32-bit size_t must be VPPO_ERR_SIZE (tests/test_big.c).
# Float arithmetic in SSE registers (-msse2 -mfpmath=sse): gcc -m32's default x87 keeps
# float and double in 80-bit registers (FLT_EVAL_METHOD 2), which changes last bits that
# the suite compares exactly; vppo.h's determinism statement assumes IEEE float and double
# evaluation (see the report of the reliability work for the x87 run).
# The 32-bit compiler: gcc -m32 where gcc-multilib is installed, else Debian's i686 cross gcc
# (gcc-i686-linux-gnu; gcc-multilib and the ARM cross compilers exclude each other on Debian 12),
# whose programs run natively through the cross libc's loader.
HAVE_M32 = $(shell echo 'int main(void){return 0;}' | gcc -m32 -x c - -o /dev/null 2>/dev/null && echo yes)
I686_CC := $(shell command -v i686-linux-gnu-gcc 2>/dev/null)
I686_LD := /usr/i686-linux-gnu/lib/ld-linux.so.2
M32_CC = $(if $(HAVE_M32),gcc -m32,$(I686_CC))
M32_RUN = $(if $(HAVE_M32),,$(I686_LD) --library-path /usr/i686-linux-gnu/lib)
M32 := -msse2 -mfpmath=sse
$(REL)/test_m32: $(TEST_DEP) | $(REL)
	$(M32_CC) $(M32) $(CSTD) $(WARN) $(OPT) -o $@ $(TEST_SRC) $(LDLIBS)

test-m32:
	@if [ -z "$(strip $(M32_CC))" ]; then \
	    echo "== no 32-bit x86 compiler (apt install gcc-multilib or gcc-i686-linux-gnu): the 32-bit build is not run"; exit 0; fi; \
	$(MAKE) --no-print-directory $(REL)/test_m32 && \
	$(call every_isa,$(REL)/test_m32,$(M32_CC) (32-bit x86),$(REL)/test_m32,$(M32_RUN))

# 32-bit ARM Linux (armhf: hard float, VFPv3-D16, no NEON in the default target, so the scalar
# path): the whole suite with Debian's cross gcc, run under qemu-arm (about 2 minutes).
ARMHF_CC := $(shell command -v arm-linux-gnueabihf-gcc 2>/dev/null)
QEMU_ARM := $(shell command -v qemu-arm 2>/dev/null)
test-armhf: | $(REL)
ifneq ($(and $(ARMHF_CC),$(QEMU_ARM)),)
	@echo "== suite, arm-linux-gnueabihf-gcc under qemu-arm (32-bit ARM Linux)"
	$(ARMHF_CC) $(CSTD) $(WARN) $(OPT) -o $(REL)/test_armhf $(TEST_SRC) $(LDLIBS)
	@$(call run_logged,$(QEMU_ARM) -L /usr/arm-linux-gnueabihf,$(REL)/test_armhf)
else
	@echo "== arm-linux-gnueabihf-gcc or qemu-arm missing (apt install gcc-arm-linux-gnueabihf qemu-user): not run"
endif

# Bare-metal Cortex-M with newlib: the header compiles with -Werror (enums are short there) and
# links with --specs=nosys.specs, for an M4F (hard float) and an M0 (no FPU); the text size is
# printed for the whole library and for a program that keeps only what one vppo_step needs.
CM_CC := $(shell command -v arm-none-eabi-gcc 2>/dev/null)
CM_CPUS := m4f:-mcpu=cortex-m4/-mthumb/-mfloat-abi=hard/-mfpu=fpv4-sp-d16 m0:-mcpu=cortex-m0/-mthumb
test-cortex-m: | $(REL)
ifneq ($(CM_CC),)
	@for c in $(CM_CPUS); do name=$${c%%:*}; flags=$$(echo $${c#*:} | tr / ' '); \
	    $(CM_CC) $$flags $(CSTD) $(WARN) -O2 --specs=nosys.specs tests/compile/cortex_m.c \
	        -o $(REL)/cortex_$$name.elf -lm || exit 1; \
	    $(CM_CC) $$flags $(CSTD) $(WARN) -Os -ffunction-sections -fdata-sections -Wl,--gc-sections \
	        --specs=nosys.specs tests/compile/cortex_m.c -o $(REL)/cortex_$$name-step.elf -lm || exit 1; \
	    whole=$$(arm-none-eabi-size $(REL)/cortex_$$name.elf | awk 'NR==2{print $$1}'); \
	    step=$$(arm-none-eabi-size $(REL)/cortex_$$name-step.elf | awk 'NR==2{print $$1}'); \
	    echo "== Cortex-$$name (arm-none-eabi-gcc -Werror, newlib nosys): text $$whole bytes (-O2, all of vppo.h with what it takes of newlib), $$step bytes (-Os, gc-sections: one vppo_step)"; \
	done
else
	@echo "== arm-none-eabi-gcc missing (apt install gcc-arm-none-eabi libnewlib-arm-none-eabi): not run"
endif

# The suite at both ends of the optimiser, with both compilers.
$(REL)/test_gcc_O0: $(TEST_DEP) | $(REL)
	gcc $(CSTD) $(WARN) -O0 -g -o $@ $(TEST_SRC) $(LDLIBS)
$(REL)/test_gcc_O3: $(TEST_DEP) | $(REL)
	gcc $(CSTD) $(WARN) -O3 -ffp-contract=off -o $@ $(TEST_SRC) $(LDLIBS)
$(REL)/test_clang_O0: $(TEST_DEP) | $(REL)
	clang $(CSTD) $(WARN) -O0 -g -o $@ $(TEST_SRC) $(LDLIBS)
$(REL)/test_clang_O3: $(TEST_DEP) | $(REL)
	clang $(CSTD) $(WARN) -O3 -ffp-contract=off -o $@ $(TEST_SRC) $(LDLIBS)

define run_suite
	@echo "== suite, $(2)"
	@./$(1) > $(1).log 2>&1 || { grep -v '^  ok' $(1).log; exit 1; }
	@grep -v '^  ok' $(1).log | grep -v '^        '
endef

test-O0: $(REL)/test_gcc_O0 $(if $(CLANG),$(REL)/test_clang_O0)
	$(call run_suite,$(REL)/test_gcc_O0,gcc -O0)
ifneq ($(CLANG),)
	$(call run_suite,$(REL)/test_clang_O0,clang -O0)
endif

test-O3: $(REL)/test_gcc_O3 $(if $(CLANG),$(REL)/test_clang_O3)
	$(call run_suite,$(REL)/test_gcc_O3,gcc -O3)
ifneq ($(CLANG),)
	$(call run_suite,$(REL)/test_clang_O3,clang -O3)
endif

# --------------------------------------------------------------- large indices

$(REL)/test_big: tests/test_big.c tests/test_util.c tests/test.h vppo.h | $(REL)
	gcc $(CSTD) $(WARN) $(OPT) -DVPPO_TEST_BIG_MAIN -o $@ tests/test_big.c tests/test_util.c $(LDLIBS)

test-big: $(REL)/test_big
	@echo "== large indices (tests/test_big.c)"
	./$(REL)/test_big

# --------------------------------------------------------------- the bad-input matrix

docs-matrix: $(BUILD)/test_gcc
	@mkdir -p docs
	VPPO_WRITE_MATRIX=docs/bad_input_matrix.md ./$(BUILD)/test_gcc bad_input_matrix_doc
