# bench/bench.mk - benchmark targets, included by the top-level Makefile.
#
#   make bench                  build $(BUILD)/bench and run every table
#   make bench USE_OPENBLAS=1   the same with -DVPPO_USE_CBLAS, linked with -lopenblas
#   make bench-quick            tiny sizes, one repetition (a smoke test)
#   make bench-peers            vppo.h (ctypes) vs PyTorch CPU in one process; needs
#                               python3 with numpy and torch, else it says so and exits 0
#
# Uses BUILD, CSTD, OPT and LDLIBS of the top-level Makefile. Extra arguments for the
# benchmark program: make bench BENCH_ARGS="--only dep"; for peers.py: BENCH_PEERS_ARGS; for
# peers_liger.py (the fused head vs Liger-Kernel): BENCH_LIGER_ARGS.

BENCH_CC    ?= gcc
BENCH_WARN  := -Wall -Wextra -pedantic
BENCH_ARGS  ?=
BENCH_PEERS_ARGS ?=

# -fopenmp when the compiler accepts it: tested once, on first use (a deferred variable
# that replaces itself with its value), so builds that never touch the benchmarks pay
# nothing.
BENCH_OMP = $(eval BENCH_OMP := $(shell printf 'int main(void){return 0;}\n' | \
    $(BENCH_CC) -fopenmp -x c - -o /dev/null >/dev/null 2>&1 && echo -fopenmp))$(BENCH_OMP)

ifeq ($(USE_OPENBLAS),1)
BENCH_BLAS_CFLAGS := -DVPPO_USE_CBLAS
BENCH_BLAS_LIBS   := -lopenblas
else
BENCH_BLAS_CFLAGS :=
BENCH_BLAS_LIBS   :=
endif

BENCH_CFLAGS = $(CSTD) $(BENCH_WARN) $(OPT) $(BENCH_OMP) $(BENCH_BLAS_CFLAGS)
BENCH_LIBS   = $(BENCH_BLAS_LIBS) $(LDLIBS)

.PHONY: bench bench-quick bench-peers bench-force

# The flags of the last build, so that a change (USE_OPENBLAS=1, another compiler)
# rebuilds the binaries; the file is rewritten only when they differ, and make sees
# that its time did not change.
bench-force:

$(BUILD)/bench.flags: bench-force | $(BUILD)
	@f='$(BENCH_CC) $(BENCH_CFLAGS) $(BENCH_LIBS)'; \
	 if [ ! -f $@ ] || [ "$$(cat $@)" != "$$f" ]; then echo "$$f" > $@; fi

$(BUILD)/bench: bench/bench.c bench/bench_common.h bench/bench_gemm.h vppo.h $(BUILD)/bench.flags | $(BUILD)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ bench/bench.c $(BENCH_LIBS)

bench: $(BUILD)/bench
	./$(BUILD)/bench $(BENCH_ARGS)

bench-quick: $(BUILD)/bench
	./$(BUILD)/bench --quick $(BENCH_ARGS)

# ------------------------------------------------------------- peers (PyTorch)

$(BUILD)/libvppo_bench.so: bench/vppo_so.c vppo.h $(BUILD)/bench.flags | $(BUILD)
	$(BENCH_CC) $(CSTD) $(BENCH_WARN) $(OPT) $(BENCH_OMP) -shared -fPIC -o $@ bench/vppo_so.c $(LDLIBS)

# the same library with -DVPPO_USE_CBLAS -lopenblas, for the Liger comparison's second row
$(BUILD)/libvppo_bench_cblas.so: bench/vppo_so.c vppo.h $(BUILD)/bench.flags | $(BUILD)
	$(BENCH_CC) $(CSTD) $(BENCH_WARN) $(OPT) $(BENCH_OMP) -DVPPO_USE_CBLAS -shared -fPIC -o $@ bench/vppo_so.c \
	    -lopenblas $(LDLIBS)

BENCH_HAVE_OPENBLAS = $(shell echo 'int main(void){return 0;}' | $(BENCH_CC) -x c - -lopenblas -o /dev/null 2>/dev/null && echo yes)

bench-peers: $(BUILD)/libvppo_bench.so $(if $(BENCH_HAVE_OPENBLAS),$(BUILD)/libvppo_bench_cblas.so)
	@if command -v python3 >/dev/null 2>&1; then \
	     python3 bench/peers.py --lib $(BUILD)/libvppo_bench.so $(BENCH_PEERS_ARGS) && \
	     python3 bench/peers_liger.py --lib $(BUILD)/libvppo_bench.so \
	         $(if $(BENCH_HAVE_OPENBLAS),--lib-cblas $(BUILD)/libvppo_bench_cblas.so) $(BENCH_LIGER_ARGS); \
	 else \
	     echo "bench-peers: python3 not found; skipped (needs python3 with numpy and torch)"; \
	 fi

# ------------------------------------------------------------------ bitcheck
#   make bitcheck               bench/bitcheck.c built against the header of BITCHECK_BASE
#                               (default main) and against ./vppo.h; the per-(function, ISA)
#                               hashes of every vector-kernel output must be identical;
#                               it lists the lines that differ. BITCHECK_EXPECT=REGEX (grep -E)
#                               accepts differences on matching lines only, e.g.
#                               BITCHECK_EXPECT=linear_ after a change to the head's GEMM
#   make bitcheck-aarch64       the same for NEON, cross-built and run under qemu-aarch64
BITCHECK_BASE ?= main
.PHONY: bitcheck bitcheck-aarch64

$(BUILD)/bitcheck_base.h: bitcheck-force | $(BUILD)
	@git show $(BITCHECK_BASE):vppo.h > $@.tmp && { cmp -s $@.tmp $@ || mv $@.tmp $@; }; rm -f $@.tmp
bitcheck-force:

$(BUILD)/bitcheck_new: bench/bitcheck.c vppo.h | $(BUILD)
	$(BENCH_CC) $(CSTD) $(BENCH_WARN) $(OPT) -o $@ bench/bitcheck.c $(LDLIBS)

$(BUILD)/bitcheck_base: bench/bitcheck.c $(BUILD)/bitcheck_base.h | $(BUILD)
	$(BENCH_CC) $(CSTD) $(BENCH_WARN) $(OPT) -DBITCHECK_HEADER='"$(CURDIR)/$(BUILD)/bitcheck_base.h"' \
	    -o $@ bench/bitcheck.c $(LDLIBS)

bitcheck: $(BUILD)/bitcheck_base $(BUILD)/bitcheck_new
	./$(BUILD)/bitcheck_base > $(BUILD)/bitcheck_base.txt
	./$(BUILD)/bitcheck_new > $(BUILD)/bitcheck_new.txt
	@cat $(BUILD)/bitcheck_new.txt
	@if cmp -s $(BUILD)/bitcheck_base.txt $(BUILD)/bitcheck_new.txt; then \
	    echo "bitcheck: identical to $(BITCHECK_BASE) ($$(grep -c . $(BUILD)/bitcheck_new.txt) lines)"; \
	 else \
	    diff $(BUILD)/bitcheck_base.txt $(BUILD)/bitcheck_new.txt | sed -n 's/^> /now:  /p; s/^< /was:  /p' \
	        > $(BUILD)/bitcheck_diff.txt; \
	    echo "bitcheck: lines that differ from $(BITCHECK_BASE):"; cat $(BUILD)/bitcheck_diff.txt; \
	    if [ -n '$(BITCHECK_EXPECT)' ] && ! grep -Ev '$(BITCHECK_EXPECT)' $(BUILD)/bitcheck_diff.txt >/dev/null; then \
	        echo "bitcheck: only lines matching '$(BITCHECK_EXPECT)' differ (BITCHECK_EXPECT: expected)"; \
	    else \
	        echo "bitcheck: unexpected differences (BITCHECK_EXPECT='$(BITCHECK_EXPECT)')"; exit 1; \
	    fi; \
	 fi

bitcheck-aarch64: $(BUILD)/bitcheck_base.h | $(BUILD)
ifneq ($(and $(A64CC),$(QEMU_A64)),)
	$(A64CC) $(CSTD) $(BENCH_WARN) $(OPT) -DBITCHECK_HEADER='"$(CURDIR)/$(BUILD)/bitcheck_base.h"' \
	    -o $(BUILD)/bitcheck_base_a64 bench/bitcheck.c $(LDLIBS)
	$(A64CC) $(CSTD) $(BENCH_WARN) $(OPT) -o $(BUILD)/bitcheck_new_a64 bench/bitcheck.c $(LDLIBS)
	$(QEMU_A64) -L /usr/aarch64-linux-gnu ./$(BUILD)/bitcheck_base_a64 > $(BUILD)/bitcheck_base_a64.txt
	$(QEMU_A64) -L /usr/aarch64-linux-gnu ./$(BUILD)/bitcheck_new_a64 > $(BUILD)/bitcheck_new_a64.txt
	@cat $(BUILD)/bitcheck_new_a64.txt
	@diff $(BUILD)/bitcheck_base_a64.txt $(BUILD)/bitcheck_new_a64.txt && \
	    echo "bitcheck-aarch64: identical to $(BITCHECK_BASE)"
else
	@echo "== aarch64-linux-gnu-gcc or qemu-aarch64 missing: bitcheck-aarch64 not run"
endif

# ------------------------------------------------------------------ bench-ab
#   make bench-ab               bench/abcompare.c: the logits kernels of BITCHECK_BASE's vppo.h
#                               (default main) and of ./vppo.h linked into one program and
#                               called alternately; new/base of the fastest call per row and
#                               the geometric mean per ISA. BENCH_AB_CALLS: calls per side.
#                               By hand: build/abcompare CALLS [ROWS [KERNEL [ISA]]], e.g.
#                               build/abcompare 7 256 KL avx512 (256 rows: memory-bound)
BENCH_AB_CALLS ?= 30
.PHONY: bench-ab

$(BUILD)/abcompare: bench/abcompare.c vppo.h $(BUILD)/bitcheck_base.h | $(BUILD)
	$(BENCH_CC) $(CSTD) $(BENCH_WARN) -Wno-unused-function $(OPT) -DAB_SIDE=base -DAB_HEADER='"$(CURDIR)/$(BUILD)/bitcheck_base.h"' \
	    -c bench/abcompare.c -o $(BUILD)/abcompare_base.o
	$(BENCH_CC) $(CSTD) $(BENCH_WARN) -Wno-unused-function $(OPT) -DAB_SIDE=new -c bench/abcompare.c -o $(BUILD)/abcompare_new.o
	$(BENCH_CC) $(CSTD) $(BENCH_WARN) $(OPT) -D_POSIX_C_SOURCE=199309L -DAB_MAIN -c bench/abcompare.c -o $(BUILD)/abcompare_main.o
	$(BENCH_CC) -o $@ $(BUILD)/abcompare_main.o $(BUILD)/abcompare_base.o $(BUILD)/abcompare_new.o $(LDLIBS)

bench-ab: $(BUILD)/abcompare
	./$(BUILD)/abcompare $(BENCH_AB_CALLS)

# ------------------------------------------------------------- bench-step-ab
#   make bench-step-ab          bench/stepab.c: vppo_step (and its check pass alone) of
#                               BITCHECK_BASE's vppo.h and of ./vppo.h, alternating calls in
#                               one process, 1 and 2 threads; BENCH_STEP_AB_REPS: calls per side.
BENCH_STEP_AB_REPS ?= 11
.PHONY: bench-step-ab

# An A/B driver NAME from bench/NAME.c: the file compiled three times, against
# BITCHECK_BASE's vppo.h (AB_SIDE=base), against ./vppo.h (AB_SIDE=new) and as the driver
# (AB_MAIN), linked into one program.
define AB_PROGRAM
$$(BUILD)/$(1): bench/$(1).c bench/ab_main.h vppo.h $$(BUILD)/bitcheck_base.h | $$(BUILD)
	$$(BENCH_CC) $$(CSTD) $$(BENCH_WARN) -Wno-unused-function $$(OPT) $$(BENCH_OMP) -DAB_SIDE=base \
	    -DAB_HEADER='"$$(CURDIR)/$$(BUILD)/bitcheck_base.h"' -c bench/$(1).c -o $$(BUILD)/$(1)_base.o
	$$(BENCH_CC) $$(CSTD) $$(BENCH_WARN) -Wno-unused-function $$(OPT) $$(BENCH_OMP) -DAB_SIDE=new \
	    -DAB_HEADER='"$$(CURDIR)/vppo.h"' -c bench/$(1).c -o $$(BUILD)/$(1)_new.o
	$$(BENCH_CC) $$(CSTD) $$(BENCH_WARN) $$(OPT) $$(BENCH_OMP) -D_POSIX_C_SOURCE=199309L -DAB_MAIN -c bench/$(1).c -o $$(BUILD)/$(1)_main.o
	$$(BENCH_CC) $$(BENCH_OMP) -o $$@ $$(BUILD)/$(1)_main.o $$(BUILD)/$(1)_base.o $$(BUILD)/$(1)_new.o $$(LDLIBS)
endef
$(eval $(call AB_PROGRAM,stepab))

bench-step-ab: $(BUILD)/stepab
	./$(BUILD)/stepab $(BENCH_STEP_AB_REPS)

# ------------------------------------------------------------------ bench-ab-topk
#   make bench-ab-topk          bench/topk_ab.c: vppo_topk_mask of BITCHECK_BASE's vppo.h and of
#                               ./vppo.h in one program, called alternately; medians, new/base
#                               and the outputs compared bit for bit. BENCH_AB_TOPK_REPS: calls.
BENCH_AB_TOPK_REPS ?= 11
.PHONY: bench-ab-topk

$(eval $(call AB_PROGRAM,topk_ab))

bench-ab-topk: $(BUILD)/topk_ab
	./$(BUILD)/topk_ab $(BENCH_AB_TOPK_REPS)
