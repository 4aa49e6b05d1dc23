/* tests/cuda_emu/selftest_tu2.cpp - a second translation unit for selftest.cpp (built with
   -DVPPO_EMU_SELFTEST_TU2): its kernel, launches and allocations must meet the same
   emulator state as the first unit's. */
#include <cuda_runtime.h>

__global__ void tu2_kernel(const int *in, int *out, int n)
{
    __shared__ int warp_sums[32];
    int t = (int)threadIdx.x, v = t < n ? in[t] : 0;
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (t % 32 == 0) warp_sums[t / 32] = v;
    __syncthreads();
    if (t == 0) {
        int s = 0;
        for (unsigned w = 0; w < blockDim.x / 32; w++) s += warp_sums[w];
        *out = s;
    }
}

void *tu2_alloc(size_t n)
{
    void *p = nullptr;
    return cudaMalloc(&p, n) == cudaSuccess ? p : nullptr;
}

int tu2_block_sum(const int *device_in, int n)
{
    int *out = nullptr, h = -1;
    if (cudaMalloc(&out, sizeof(int)) != cudaSuccess) return -1;
    vppo_emu_launch(dim3(1), dim3((unsigned)((n + 31) / 32 * 32)), 0, [=] { tu2_kernel(device_in, out, n); });
    if (cudaGetLastError() != cudaSuccess) h = -2;
    else cudaMemcpy(&h, out, sizeof h, cudaMemcpyDeviceToHost);
    cudaFree(out);
    return h;
}
