# bench/cuda.mk - GPU benchmark targets, included by the top-level Makefile after
# tests/cuda.mk (whose `cuda` target builds $(BUILD)/libvppo_cuda.a and .so).
#
#   make bench-cuda          build $(BUILD)/bench_cuda with nvcc and run it (needs a GPU)
#   make bench-cuda-quick    the same at tiny sizes, one repetition (a smoke test)
#   make bench-cuda-torch    bench/bench_cuda_torch.py: vppo_cuda through ctypes on
#                            $(BUILD)/libvppo_cuda.so vs PyTorch eager on the GPU; without
#                            torch or a GPU it says so and exits 0
#   make bench-cuda-emu      bench_cuda --quick under the CPU emulator (tests/cuda_emu):
#                            no GPU needed, the times mean nothing, the checks still run
#   make cuda-budget         bench/cuda_budget.py: the logits kernels' instruction budget read
#                            from sm_90 SASS (nvcc + cuobjdump, no GPU); fails on a missed target
#                            (CUDA_BUDGET_ARGS=--no-fail to only print)
#   bench/run_gpu.sh         all of it on a GPU machine, logs under $OUT (or build/gpu-logs)
#
# Arguments: make bench-cuda BENCH_CUDA_ARGS="--only dep --reps 21";
# make bench-cuda-torch BENCH_CUDA_TORCH_ARGS="--rows 1024".

NVCC ?= $(shell command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)
BENCH_CUDA_GENCODE ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
BENCH_CUDA_FLAGS   := -O3 -std=c++14 $(BENCH_CUDA_GENCODE) -Xcompiler -Wall,-Wextra -Werror all-warnings
BENCH_CUDA_ARGS    ?=
BENCH_CUDA_TORCH_ARGS ?=
BENCH_CUDA_PYTHON  ?= python3

.PHONY: bench-cuda bench-cuda-quick bench-cuda-torch bench-cuda-emu cuda-budget

CUDA_BUDGET_ARGS ?=
cuda-budget:
	python3 bench/cuda_budget.py --nvcc $(NVCC) $(CUDA_BUDGET_ARGS)

$(BUILD)/bench_cuda: bench/bench_cuda.cu bench/bench_common.h vppo.h vppo_cuda.h $(BUILD)/libvppo_cuda.a | $(BUILD)
	$(NVCC) $(BENCH_CUDA_FLAGS) -o $@ bench/bench_cuda.cu $(BUILD)/libvppo_cuda.a -lm

bench-cuda: $(BUILD)/bench_cuda
	./$(BUILD)/bench_cuda $(BENCH_CUDA_ARGS)

bench-cuda-quick: $(BUILD)/bench_cuda
	./$(BUILD)/bench_cuda --quick $(BENCH_CUDA_ARGS)

bench-cuda-torch: $(BUILD)/libvppo_cuda.so
	$(BENCH_CUDA_PYTHON) bench/bench_cuda_torch.py --lib $(BUILD)/libvppo_cuda.so $(BENCH_CUDA_TORCH_ARGS)

# The emulator runs every GPU thread as a fiber on the CPU: tiny sizes only (--quick).
$(BUILD)/bench_cuda_emu: bench/bench_cuda.cu bench/bench_common.h vppo_cuda.cu vppo.h vppo_cuda.h tests/cuda_emu/cuda_runtime.h | $(BUILD)
	g++ -std=c++14 -O1 -DVPPO_CUDA_EMULATE -fno-strict-aliasing -ffp-contract=off -Itests/cuda_emu \
	    -x c++ bench/bench_cuda.cu -x c++ vppo_cuda.cu -lm -o $@

bench-cuda-emu: $(BUILD)/bench_cuda_emu
	./$(BUILD)/bench_cuda_emu --quick $(BENCH_CUDA_ARGS)
