#!/usr/bin/env bash
# bench/run_gpu.sh - everything a GPU machine (H100 / H200) should run, in one command:
#   1. make cuda           build/libvppo_cuda.a and .so (nvcc, sm_80 + sm_90)
#   2. make test-cuda      the CUDA test suite, when the Makefile has that target;
#      build/engine_graph  a VPPO step captured in a CUDA graph (examples/engine_graph.cu),
#                          when make cuda built it
#   3. make bench-cuda     build/bench_cuda: the kernels vs the copy bandwidth, the targets
#   4. make bench-cuda-torch   bench/bench_cuda_torch.py: vppo_cuda vs PyTorch eager
#
#   bash bench/run_gpu.sh            full sizes (a few minutes on an H100/H200)
#   bash bench/run_gpu.sh --quick    tiny sizes, one repetition: a smoke test of the chain
#
# Logs go to $OUT when it is set, else to build/gpu-logs: env.log, one <step>.log per
# step, summary.txt (each step's exit status and seconds). The benchmark tables and the
# summary are printed at the end. Exit status: 0 when every step passed, else 1.
set -u
cd "$(dirname "$0")/.." || exit 2

LOG=${OUT:-build/gpu-logs}
mkdir -p "$LOG" build
QUICK=
case "${1:-}" in
    --quick) QUICK=--quick ;;
    "") ;;
    *) echo "usage: bash bench/run_gpu.sh [--quick]" >&2; exit 2 ;;
esac
command -v nvcc >/dev/null 2>&1 || export PATH="$PATH:/usr/local/cuda/bin"
export PYTHONUNBUFFERED=1

# The benchmark targets live in bench/cuda.mk; add it when the Makefile does not include it.
MAKE=(make)
grep -q 'bench/cuda.mk' Makefile || MAKE=(make -f Makefile -f bench/cuda.mk)

SUMMARY="$LOG/summary.txt"
: > "$SUMMARY"
FAIL=0

# run NAME COMMAND...: the command's output to $LOG/NAME.log, its status to the summary.
run() {
    local name=$1 start rc
    shift
    echo "== $name: $*"
    start=$(date +%s)
    "$@" > "$LOG/$name.log" 2>&1
    rc=$?
    echo "$name: exit $rc, $(( $(date +%s) - start )) s" | tee -a "$SUMMARY"
    if [ $rc -ne 0 ]; then
        FAIL=1
        echo "-- last lines of $LOG/$name.log:"
        tail -n 30 "$LOG/$name.log"
    fi
    return $rc
}

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(git status --short 2>/dev/null | wc -l) changed paths"
    nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    nvcc --version 2>&1 || echo "nvcc: not found"
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
} > "$LOG/env.log"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: no GPU listed"

# 1. the library: the Makefile's `cuda` target, or the same nvcc lines by hand when the
#    Makefile has none
if "${MAKE[@]}" -n cuda >/dev/null 2>&1; then
    run build "${MAKE[@]}" cuda
else
    run build bash -c 'set -e
        nvcc -O3 -std=c++14 -Xcompiler -fPIC -gencode arch=compute_80,code=sm_80 \
             -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 \
             -c vppo_cuda.cu -o build/vppo_cuda.o
        ar rcs build/libvppo_cuda.a build/vppo_cuda.o
        nvcc -shared -o build/libvppo_cuda.so build/vppo_cuda.o'
fi
BUILD_OK=$?

# 2. the CUDA tests
if [ $BUILD_OK -ne 0 ]; then
    echo "test-cuda: not run (the build failed)" | tee -a "$SUMMARY"
elif "${MAKE[@]}" -n test-cuda >/dev/null 2>&1; then
    run test-cuda "${MAKE[@]}" test-cuda
else
    echo "test-cuda: the Makefile has no such target; not run" | tee -a "$SUMMARY"
fi
if [ $BUILD_OK -eq 0 ] && [ -x build/engine_graph ]; then
    run engine-graph ./build/engine_graph
fi

# 3. and 4. the benchmarks (their tables also go to the screen below)
if [ $BUILD_OK -eq 0 ]; then
    run bench-cuda "${MAKE[@]}" bench-cuda BENCH_CUDA_ARGS="$QUICK"
    run bench-cuda-torch "${MAKE[@]}" bench-cuda-torch BENCH_CUDA_TORCH_ARGS="$QUICK"
    for f in bench-cuda bench-cuda-torch; do
        echo
        echo "==================== $f.log"
        grep -v -E '^(nvcc|make|\./build|python3) ' "$LOG/$f.log" | tail -n 120
    done
else
    echo "bench-cuda, bench-cuda-torch: not run (the build failed)" | tee -a "$SUMMARY"
fi

echo
echo "==================== summary (logs in $LOG)"
cat "$SUMMARY"
exit $FAIL
