# bench/bench.mk - benchmark targets, included by the top-level Makefile.
#
#   make bench                  build $(BUILD)/bench and run every table
#   make bench USE_OPENBLAS=1   the same with -DVPPO_USE_CBLAS, linked with -lopenblas
#   make bench-quick            tiny sizes, one repetition (a smoke test)
#   make bench-peers            vppo.h (ctypes) vs PyTorch CPU in one process; needs
#                               python3 with numpy and torch, else it says so and exits 0
#
# Uses BUILD, CSTD, OPT and LDLIBS of the top-level Makefile. Extra arguments for the
# benchmark program: make bench BENCH_ARGS="--only dep"; for peers.py: BENCH_PEERS_ARGS.

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

$(BUILD)/bench: bench/bench.c bench/bench_common.h vppo.h $(BUILD)/bench.flags | $(BUILD)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ bench/bench.c $(BENCH_LIBS)

bench: $(BUILD)/bench
	./$(BUILD)/bench $(BENCH_ARGS)

bench-quick: $(BUILD)/bench
	./$(BUILD)/bench --quick $(BENCH_ARGS)

# ------------------------------------------------------------- peers (PyTorch)

$(BUILD)/libvppo_bench.so: bench/vppo_so.c vppo.h $(BUILD)/bench.flags | $(BUILD)
	$(BENCH_CC) $(CSTD) $(BENCH_WARN) $(OPT) $(BENCH_OMP) -shared -fPIC -o $@ bench/vppo_so.c $(LDLIBS)

bench-peers: $(BUILD)/libvppo_bench.so
	@if command -v python3 >/dev/null 2>&1; then \
	     python3 bench/peers.py --lib $(BUILD)/libvppo_bench.so $(BENCH_PEERS_ARGS); \
	 else \
	     echo "bench-peers: python3 not found; skipped (needs python3 with numpy and torch)"; \
	 fi
