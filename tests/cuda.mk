# tests/cuda.mk - the CUDA translation unit (included by the top-level Makefile).
#
#   make cuda           build/libvppo_cuda.a and build/libvppo_cuda.so with nvcc (sm_80, sm_90),
#                       and build/engine_graph (examples/engine_graph.cu: a VPPO step in one CUDA
#                       graph); says so and exits 0 when nvcc is missing
#   make test-cuda      the CUDA suite on a real GPU (tests/test_cuda.c against libvppo_cuda.a);
#                       exits 2 with "no CUDA device" when there is none: never a pass
#   make test-cuda-emu  the same suite on the CPU, through the CUDA emulator of tests/cuda_emu
#                       (vppo_cuda.cu compiled as C++), then examples/engine_graph.cu on it;
#                       part of make test
#   make test-cuda-emu-contract   the emulated suite compiled with -ffp-contract=fast (FMA, as nvcc
#                       contracts device code by default); part of make test
#   make test-cuda-emu-selftest   the emulator's own tests, plain and under ASan+UBSan (make test)
#   make test-cuda-emu-sanitize   the emulated CUDA suite under ASan+UBSan (.ci/run)
#
# The CPU library never needs any of this.

NVCC      ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))
CUDA_HOME ?= $(if $(NVCC),$(patsubst %/bin/nvcc,%,$(NVCC)),/usr/local/cuda)
# sm_80 and sm_90 machine code, and compute_90 PTX that the driver compiles for newer GPUs
# (sm_100, sm_120), which would otherwise find no kernel at all.
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVCCFLAGS := -std=c++14 -O3 $(CUDA_ARCH) -Xcompiler -Wall,-Wextra,-fPIC -Werror all-warnings

.PHONY: cuda test-cuda test-cuda-emu test-cuda-emu-contract test-cuda-emu-selftest test-cuda-emu-sanitize

$(BUILD)/vppo_cuda.o: vppo_cuda.cu vppo_cuda.h vppo.h | $(BUILD)
	$(NVCC) $(NVCCFLAGS) -c vppo_cuda.cu -o $@

$(BUILD)/libvppo_cuda.a: $(BUILD)/vppo_cuda.o
	ar rcs $@ $<

$(BUILD)/libvppo_cuda.so: $(BUILD)/vppo_cuda.o
	$(NVCC) -shared -o $@ $< -lcudart

$(BUILD)/engine_graph: examples/engine_graph.cu vppo_cuda.h vppo.h $(BUILD)/libvppo_cuda.a
	$(NVCC) $(NVCCFLAGS) -o $@ examples/engine_graph.cu $(BUILD)/libvppo_cuda.a

ifneq ($(NVCC),)
cuda: $(BUILD)/libvppo_cuda.a $(BUILD)/libvppo_cuda.so $(BUILD)/engine_graph
	@echo "cuda: built $(BUILD)/libvppo_cuda.a, $(BUILD)/libvppo_cuda.so and $(BUILD)/engine_graph with $(NVCC)"
else
cuda:
	@echo "== nvcc not found: the CUDA library is not built"
endif

CUDA_TEST_SRC := tests/test_cuda.c tests/test_util.c
CUDA_TEST_DEP := $(CUDA_TEST_SRC) tests/test.h vppo.h vppo_cuda.h

$(BUILD)/test_cuda: $(CUDA_TEST_DEP) $(BUILD)/libvppo_cuda.a
	g++ -x c++ -std=c++14 $(WARN) -O2 -g -I$(CUDA_HOME)/include -o $@ $(CUDA_TEST_SRC) \
	    $(BUILD)/libvppo_cuda.a -L$(CUDA_HOME)/lib64 -lcudart -lm

ifneq ($(NVCC),)
test-cuda: $(BUILD)/test_cuda
	@echo "== CUDA suite on the GPU"
	./$(BUILD)/test_cuda
else
test-cuda:
	@echo "== nvcc not found: the CUDA suite cannot be built here"; exit 2
endif

# The emulator build: every kernel runs on CPU fibers (tests/cuda_emu/cuda_runtime.h).
EMU_FLAGS := -std=c++14 -O1 -g -Wall -Wextra -Werror -Wno-unknown-pragmas -fno-strict-aliasing -ffp-contract=off \
             -DVPPO_CUDA_EMULATE -Itests/cuda_emu
EMU_HEADERS := $(wildcard tests/cuda_emu/*.h)
$(BUILD)/test_cuda_emu: $(CUDA_TEST_DEP) vppo_cuda.cu $(EMU_HEADERS) | $(BUILD)
	g++ $(EMU_FLAGS) -o $@ -x c++ $(CUDA_TEST_SRC) -x c++ vppo_cuda.cu -lm

$(BUILD)/engine_graph_emu: examples/engine_graph.cu vppo_cuda.cu vppo_cuda.h vppo.h $(EMU_HEADERS) | $(BUILD)
	g++ $(EMU_FLAGS) -o $@ -x c++ examples/engine_graph.cu -x c++ vppo_cuda.cu -lm

# The same suite with floating-point contraction, as nvcc compiles device code (it fuses a*b+c
# into FMA by default): -ffp-contract=fast with FMA instructions (-mfma on x86-64, where
# the CPU has them; aarch64 always has them). The tolerances of §12 must hold both ways.
EMU_FMA := $(shell if [ "$$(uname -m)" = x86_64 ]; then grep -qw fma /proc/cpuinfo 2>/dev/null && echo -mfma || echo none; fi)
$(BUILD)/test_cuda_emu_fma: $(CUDA_TEST_DEP) vppo_cuda.cu $(EMU_HEADERS) | $(BUILD)
	g++ $(filter-out -ffp-contract=off,$(EMU_FLAGS)) -ffp-contract=fast $(EMU_FMA) -o $@ -x c++ $(CUDA_TEST_SRC) -x c++ vppo_cuda.cu -lm

ifeq ($(EMU_FMA),none)
test-cuda-emu-contract:
	@echo "== CUDA suite with contraction: this x86-64 CPU has no FMA instructions, not run"
else
test-cuda-emu-contract: $(BUILD)/test_cuda_emu_fma
	@echo "== CUDA suite on the CPU emulator with -ffp-contract=fast $(EMU_FMA) (FMA, as nvcc)"
	./$(BUILD)/test_cuda_emu_fma > $(BUILD)/test_cuda_emu_fma.log 2>&1 || { cat $(BUILD)/test_cuda_emu_fma.log; exit 1; }
	@tail -1 $(BUILD)/test_cuda_emu_fma.log
endif

test-cuda-emu: $(BUILD)/test_cuda_emu $(BUILD)/engine_graph_emu
	@echo "== CUDA suite on the CPU emulator (tests/cuda_emu)"
	./$(BUILD)/test_cuda_emu > $(BUILD)/test_cuda_emu.log 2>&1 || { cat $(BUILD)/test_cuda_emu.log; exit 1; }
	@grep -v '^  ok' $(BUILD)/test_cuda_emu.log
	./$(BUILD)/engine_graph_emu

# The emulated suite under AddressSanitizer + UBSan (SAN comes from the top-level Makefile).
$(BUILD)/test_cuda_emu_san: $(CUDA_TEST_DEP) vppo_cuda.cu $(EMU_HEADERS) | $(BUILD)
	g++ $(EMU_FLAGS) $(SAN) -o $@ -x c++ $(CUDA_TEST_SRC) -x c++ vppo_cuda.cu -lm

test-cuda-emu-sanitize: $(BUILD)/test_cuda_emu_san
	@echo "== CUDA suite on the emulator under ASan + UBSan"
	ASAN_OPTIONS=detect_leaks=1 ./$(BUILD)/test_cuda_emu_san > $(BUILD)/test_cuda_emu_san.log 2>&1 || \
	    { cat $(BUILD)/test_cuda_emu_san.log; exit 1; }
	@tail -1 $(BUILD)/test_cuda_emu_san.log

# The emulator's own tests (two translation units sharing one emulator), plain and sanitized.
EMU_ST_SRC   := tests/cuda_emu/selftest.cpp tests/cuda_emu/selftest_tu2.cpp
EMU_ST_FLAGS := -std=c++14 -O1 -g -Wall -Wextra -pedantic -Werror -fno-strict-aliasing -ffp-contract=off \
                -Itests/cuda_emu -DVPPO_EMU_SELFTEST_TU2
$(BUILD)/emu_selftest: $(EMU_ST_SRC) $(EMU_HEADERS) | $(BUILD)
	g++ $(EMU_ST_FLAGS) $(EMU_ST_SRC) -o $@
$(BUILD)/emu_selftest_asan: $(EMU_ST_SRC) $(EMU_HEADERS) | $(BUILD)
	g++ $(EMU_ST_FLAGS) -fsanitize=address,undefined -fno-sanitize-recover=all $(EMU_ST_SRC) -o $@

test-cuda-emu-selftest: $(BUILD)/emu_selftest $(BUILD)/emu_selftest_asan
	@echo "== CUDA emulator selftest (plain, ASan+UBSan)"
	./$(BUILD)/emu_selftest > $(BUILD)/emu_selftest.log 2>&1 || { cat $(BUILD)/emu_selftest.log; exit 1; }
	./$(BUILD)/emu_selftest_asan > $(BUILD)/emu_selftest_asan.log 2>&1 || { cat $(BUILD)/emu_selftest_asan.log; exit 1; }
	@tail -1 $(BUILD)/emu_selftest.log
