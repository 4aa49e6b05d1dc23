/* bench_cuda.cu - GPU benchmarks of vppo_cuda (vppo_cuda.h, docs/spec.md §11), in the manner of
 * bench/bench.c: medians of several repetitions, every ratio measured side by side in
 * the same run, every result checked against the CPU library before its time is shown.
 *
 *   make bench-cuda                  build build/bench_cuda (nvcc) and run it
 *   make bench-cuda BENCH_CUDA_ARGS="--only dep"
 *   build/bench_cuda [--quick] [--rows N] [--vocab V] [--reps R] [--only NAME]
 *       --quick     tiny sizes, 1 repetition, no warm-up (a smoke test)
 *       --rows N    logits rows (default 4096; reduced, with a note, when the GPU lacks
 *                   the memory)
 *       --vocab V   vocabulary (default 151936, Qwen2.5-VL)
 *       --reps R    timed repetitions per row (default 15; at least 7 for a real run)
 *       --only NAME dep, logprobs, backward or step; the bandwidth references always
 *                   run (every percentage below is relative to them)
 *
 * Tables:
 *   bandwidth  cudaMemcpyAsync device to device over a buffer the size of the f32 logits
 *              (GB/s counts 2 x bytes: each byte is read once and written once), and a
 *              read-only kernel (the sum of the same buffer's 32-bit words as 64-bit
 *              integers, 16-byte loads, checked exactly against the host): the memory
 *              bandwidth this GPU reaches, measured in this run.
 *   dep        vppo_cuda_dependency_logits (KL), f32 and bf16, next to a naive kernel
 *              (one block per row, three plain passes: max, sum of exp, KL).
 *   logprobs   vppo_cuda_logprobs (ids, logp, lse, entropy), f32 and bf16.
 *   backward   vppo_cuda_logprobs_backward (lse, entropy, dlogp, dentropy given): f32 in
 *              place, and bf16 logits to a bf16 gradient.
 *   step       vppo_cuda_step (vppo_config_default) on 1024 sequences x 2048 tokens, and
 *              its halves vppo_cuda_prepare and vppo_cuda_policy_loss, next to a device
 *              copy of the same number of bytes; the L2 cache is flushed before each call.
 *
 * Timing: cudaEvents recorded on the benchmark's stream around each call, median of the
 * repetitions after one warm-up call. The vppo_cuda_* calls are synchronous (they wait
 * for their stream), so their times include the launch and the host's part of the call.
 *
 * Checks: after timing, the outputs of the last call are compared with the CPU library
 * (vppo.h compiled into this file, scalar reference path) on a few rows, or on every
 * token for the step, within twice the docs/spec.md §12 bounds (both sides are within them of
 * a float64 reference); a row that fails says WRONG and the program exits 1 at the end.
 * A failed vppo or CUDA call exits 1 at once with its message. Exit status: 0 when every
 * check passed, 1 on a failure, 2 on bad arguments or when there is no CUDA device.
 *
 * Built by nvcc (bench/cuda.mk), or for a smoke test under the CPU emulator
 * (-DVPPO_CUDA_EMULATE -Itests/cuda_emu, see bench/cuda.mk), where times mean nothing.
 */
/* The CPU checks use vppo.h's scalar reference path; VPPO_NO_SIMD also keeps the x86
   CPUID code out of nvcc's front end, which warns about it (#550, set but never used). */
#define VPPO_NO_SIMD
#define VPPO_STATIC
#define VPPO_IMPLEMENTATION
#include "../vppo.h"
#include "../vppo_cuda.h"
#include "bench_common.h"

#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Launches of this file's kernels. The emulator cannot parse <<< >>>: it runs a
   closure for every thread of the grid. */
#ifdef VPPO_CUDA_EMULATE
#define BENCH_LAUNCH(kernel, grid, block, stream, ...) \
    vppo_emu_launch(dim3(grid), dim3(block), stream, [=] { kernel(__VA_ARGS__); })
#else
#define BENCH_LAUNCH(kernel, grid, block, stream, ...) \
    kernel<<<grid, block, 0, stream>>>(__VA_ARGS__)
#endif

/* ================================================================ options == */

static int g_quick = 0;
static const char *g_only = NULL;
static int g_reps = 15;        /* timed repetitions (after g_warm untimed calls) */
static int g_warm = 1;
static int64_t g_rows = 4096;
static int64_t g_vocab = 151936;
static int g_wrong = 0;        /* rows whose check failed */

static cudaStream_t g_stream;
static cudaEvent_t g_ev0, g_ev1;
static int g_sms = 1;          /* multiprocessors */
static int g_l2_bytes = 0;

static double g_copy_gbs = 0.0;     /* the bandwidth references of this run */
static double g_read_gbs = 0.0;
static double g_dep_bf16_gbs = -1.0; /* for the targets (issue 4); < 0: not measured */
static double g_step_gbs = -1.0;

static int want(const char *name) { return !g_only || strcmp(g_only, name) == 0; }

/* ================================================================ checks == */

static void cuda_check(cudaError_t e, const char *what, const char *file, int line)
{
    if (e != cudaSuccess) {
        fprintf(stderr, "bench_cuda: %s:%d: %s failed: %s\n", file, line, what, cudaGetErrorString(e));
        exit(1);
    }
}
#define CUDA_CHECK(call) cuda_check((call), #call, __FILE__, __LINE__)

static void vppo_check(vppo_status st, const char *what, const char *file, int line)
{
    if (st != VPPO_OK) {
        fprintf(stderr, "bench_cuda: %s:%d: %s returned %s%s%s\n", file, line, what, vppo_status_string(st),
                st == VPPO_ERR_CUDA ? ": " : "", st == VPPO_ERR_CUDA ? vppo_cuda_error_string() : "");
        exit(1);
    }
}
#define VPPO_CHECK(call) vppo_check((call), #call, __FILE__, __LINE__)

/* After a launch of this file's kernels. */
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    return p;
}

static void *host_alloc(size_t bytes) { return bench_alloc("bench_cuda", bytes); }

static void to_host(void *dst, const void *src, size_t bytes)
{
    CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

static void to_dev(void *dst, const void *src, size_t bytes)
{
    CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

/* Element-wise comparison of got with the CPU's ref: every |got - ref| must be at most
   abs_tol + rel_tol * |ref| (NaN fails). */
typedef struct cmp_result { double max_err; int64_t bad; } cmp_result;

static void cmp_init(cmp_result *c) { c->max_err = 0.0; c->bad = 0; }

static void cmp_floats(cmp_result *c, const float *got, const float *ref, int64_t n, double abs_tol,
                       double rel_tol)
{
    int64_t i;
    for (i = 0; i < n; ++i) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= abs_tol + rel_tol * fabs((double)ref[i]))) ++c->bad;
        if (d > c->max_err || d != d) c->max_err = d;
    }
}

static void cmp_double(cmp_result *c, double got, double ref, double abs_tol, double rel_tol)
{
    double d = fabs(got - ref);
    if (!(d <= abs_tol + rel_tol * fabs(ref))) ++c->bad;
    if (d > c->max_err || d != d) c->max_err = d;
}

static void cmp_exact(cmp_result *c, int64_t got, int64_t ref)
{
    if (got != ref) ++c->bad;
}

static const char *verdict(const cmp_result *c)
{
    if (c->bad) { ++g_wrong; return "WRONG"; }
    return "ok";
}

/* ================================================================ timing == */

typedef void (*bench_fn)(void *ctx);

static int cmp_float_qsort(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* Median milliseconds of `reps` calls of fn between two events on g_stream, after
   g_warm untimed calls; prep (optional) runs untimed before every call (restoring an
   in-place buffer, flushing the L2 cache) and is waited for. */
static double time_ms(bench_fn fn, bench_fn prep, void *ctx)
{
    float t[64];
    int i, reps = g_reps < 1 ? 1 : (g_reps > 64 ? 64 : g_reps);
    for (i = 0; i < g_warm; ++i) {
        if (prep) prep(ctx);
        fn(ctx);
    }
    CUDA_CHECK(cudaStreamSynchronize(g_stream));
    for (i = 0; i < reps; ++i) {
        if (prep) {
            prep(ctx);
            CUDA_CHECK(cudaStreamSynchronize(g_stream));
        }
        CUDA_CHECK(cudaEventRecord(g_ev0, g_stream));
        fn(ctx);
        CUDA_CHECK(cudaEventRecord(g_ev1, g_stream));
        CUDA_CHECK(cudaEventSynchronize(g_ev1));
        CUDA_CHECK(cudaEventElapsedTime(&t[i], g_ev0, g_ev1));
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_float_qsort);
    return reps % 2 ? (double)t[reps / 2] : 0.5 * ((double)t[reps / 2 - 1] + (double)t[reps / 2]);
}

/* Blocks for a grid-stride loop over `count` items with 256 threads a block. */
static unsigned grid_for(int64_t count)
{
    int64_t want_blocks = (count + 255) / 256, cap = (int64_t)g_sms * 16;
    if (want_blocks < 1) want_blocks = 1;
    return (unsigned)(want_blocks < cap ? want_blocks : cap);
}

/* ======================================================= device kernels == */

/* Test data: splitmix64 of (seed, index), approximately normal values (Irwin-Hall of
   four uniforms), the same on every GPU. */
static __host__ __device__ uint64_t mix64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static __host__ __device__ float unif(uint64_t seed, uint64_t i)   /* [0, 1) */
{
    return (float)(mix64(seed ^ mix64(i)) >> 40) * (1.0f / 16777216.0f);
}

static __host__ __device__ float normal4(uint64_t seed, uint64_t i)  /* mean 0, variance 1 */
{
    float s = unif(seed, 4 * i) + unif(seed, 4 * i + 1) + unif(seed, 4 * i + 2) + unif(seed, 4 * i + 3);
    return (s - 2.0f) * 1.7320508f;
}

static __device__ uint16_t f32_to_bf16(float f)   /* round to nearest even; finite f */
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static __device__ float load_elem(const float *p, int64_t i) { return p[i]; }

static __device__ float load_elem(const uint16_t *p, int64_t i)   /* bf16, exact */
{
    uint32_t u = (uint32_t)p[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* orig ~ 3 N(0,1), aug = orig + 0.1 N(0,1) (a small perturbation), and both rounded to
   bf16: logits of the shape a policy gives. */
static __global__ void gen_logits_kernel(float *o32, float *a32, uint16_t *o16, uint16_t *a16,
                                         int64_t count, uint64_t seed)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, step = (int64_t)gridDim.x * blockDim.x;
    for (; i < count; i += step) {
        float z = 3.0f * normal4(seed, (uint64_t)i);
        float w = z + 0.1f * normal4(seed + 1, (uint64_t)i);
        o32[i] = z;
        a32[i] = w;
        o16[i] = f32_to_bf16(z);
        a16[i] = f32_to_bf16(w);
    }
}

/* Block reductions through shared memory (blockDim.x: a power of two, red: blockDim.x
   entries); red is free again when they return. */
template <typename T>
static __device__ T block_sum(T v, T *red)
{
    unsigned t = threadIdx.x, s;
    red[t] = v;
    __syncthreads();
    for (s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) red[t] += red[t + s];
        __syncthreads();
    }
    v = red[0];
    __syncthreads();
    return v;
}

static __device__ float block_max(float v, float *red)
{
    unsigned t = threadIdx.x, s;
    red[t] = v;
    __syncthreads();
    for (s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) red[t] = fmaxf(red[t], red[t + s]);
        __syncthreads();
    }
    v = red[0];
    __syncthreads();
    return v;
}

/* The read-only reference: the sum of a buffer's 32-bit words as unsigned 64-bit
   integers (exact and order-free, so the host can check it), 16-byte loads, four
   independent loads in flight per thread; one partial sum per block (no atomics). */
#define READ_THREADS 256

static __global__ void read_sum_kernel(const uint32_t *p, int64_t count, unsigned long long *partial)
{
    __shared__ unsigned long long red[READ_THREADS];
    const uint4 *p4 = (const uint4 *)p;
    int64_t n4 = count / 4, i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    unsigned long long s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (; i + 3 * step < n4; i += 4 * step) {
        uint4 a = p4[i], b = p4[i + step], c = p4[i + 2 * step], d = p4[i + 3 * step];
        s0 += (unsigned long long)a.x + a.y + a.z + a.w;
        s1 += (unsigned long long)b.x + b.y + b.z + b.w;
        s2 += (unsigned long long)c.x + c.y + c.z + c.w;
        s3 += (unsigned long long)d.x + d.y + d.z + d.w;
    }
    for (; i < n4; i += step) {
        uint4 a = p4[i];
        s0 += (unsigned long long)a.x + a.y + a.z + a.w;
    }
    if (blockIdx.x == 0) {   /* the tail: count % 4 words */
        int64_t j = n4 * 4 + threadIdx.x;
        if (j < count) s1 += p[j];
    }
    s0 = block_sum<unsigned long long>((s0 + s1) + (s2 + s3), red);
    if (threadIdx.x == 0) partial[blockIdx.x] = s0;
}

/* The naive KL: one block per row, three passes over both rows, written plainly.
   Pass 1: the row maxima; pass 2: the sums of exp; pass 3: sum p (log p - log q). */
#define NAIVE_THREADS 256

template <typename T>
static __global__ void naive_kl_kernel(const T *orig, const T *aug, int64_t vocab, int64_t stride,
                                       float inv_t, float *dep)
{
    __shared__ float red[NAIVE_THREADS];
    const T *a = orig + (int64_t)blockIdx.x * stride, *b = aug + (int64_t)blockIdx.x * stride;
    float ma = -INFINITY, mb = -INFINITY, sa = 0.0f, sb = 0.0f, kl = 0.0f, la, lb;
    int64_t i;
    for (i = threadIdx.x; i < vocab; i += blockDim.x) {
        ma = fmaxf(ma, load_elem(a, i) * inv_t);
        mb = fmaxf(mb, load_elem(b, i) * inv_t);
    }
    ma = block_max(ma, red);
    mb = block_max(mb, red);
    for (i = threadIdx.x; i < vocab; i += blockDim.x) {
        sa += expf(load_elem(a, i) * inv_t - ma);
        sb += expf(load_elem(b, i) * inv_t - mb);
    }
    sa = block_sum<float>(sa, red);
    sb = block_sum<float>(sb, red);
    la = ma + logf(sa);
    lb = mb + logf(sb);
    for (i = threadIdx.x; i < vocab; i += blockDim.x) {
        float lp = load_elem(a, i) * inv_t - la, lq = load_elem(b, i) * inv_t - lb, p = expf(lp);
        if (p > 0.0f) kl += p * (lp - lq);
    }
    kl = block_sum<float>(kl, red);
    if (threadIdx.x == 0) dep[blockIdx.x] = kl > 0.0f ? kl : 0.0f;
}

/* ================================================================ header == */

static void header(void)
{
    cudaDeviceProp prop;
    int dev = 0, clock_khz = 0, mem_khz = 0, bus_bits = 0, drv = 0, rt = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&g_sms, cudaDevAttrMultiProcessorCount, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&g_l2_bytes, cudaDevAttrL2CacheSize, dev));
#ifndef VPPO_CUDA_EMULATE
    CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev));
    CUDA_CHECK(cudaDriverGetVersion(&drv));
    CUDA_CHECK(cudaRuntimeGetVersion(&rt));
#endif
    if (g_sms < 1) g_sms = 1;
    printf("# vppo_cuda %d.%d.%d GPU benchmarks%s\n\n", VPPO_VERSION_MAJOR, VPPO_VERSION_MINOR,
           VPPO_VERSION_PATCH, g_quick ? " (--quick: tiny sizes, 1 repetition, no warm-up)" : "");
#ifdef VPPO_CUDA_EMULATE
    printf("(built for the CPU emulator: the times below mean nothing; this run only shows that\n"
           " the program runs end to end and that its checks pass)\n\n");
#endif
    printf("device:         %s (compute capability %d.%d)\n", prop.name, prop.major, prop.minor);
    printf("SMs:            %d\n", g_sms);
    printf("SM clock:       %.0f MHz (peak)\n", clock_khz / 1e3);
    printf("memory:         %.1f GiB, %d-bit bus at %.0f MHz: %.0f GB/s theoretical peak\n"
           "                (2 x memory clock x bus width)\n",
           (double)prop.totalGlobalMem / 1073741824.0, bus_bits, mem_khz / 1e3,
           2.0 * mem_khz * 1e3 * (bus_bits / 8.0) * 1e-9);
    printf("L2 cache:       %.1f MiB\n", g_l2_bytes / 1048576.0);
    printf("CUDA:           driver %d.%d, runtime %d.%d\n", drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
    printf("timing:         cudaEvents around each call on one stream, median of %d repetition%s\n"
           "                after %d warm-up call%s\n\n",
           g_reps, g_reps == 1 ? "" : "s", g_warm, g_warm == 1 ? "" : "s");
}

/* ============================================================== the data == */

/* Logits of g_rows x g_vocab in f32 and bf16 (orig and aug), a scratch f32 matrix (the
   copy's destination, the in-place gradient, the bf16 gradient), and the per-row arrays. */
typedef struct ldata {
    int64_t n, V;
    float *o32, *a32, *scratch;
    uint16_t *o16, *a16;
    int32_t *ids;
    float *dlogp, *dent, *dep, *logp, *lse[2], *ent[2];
    unsigned long long *partial;  /* the read kernel's per-block sums */
    int have_lse[2];
    int32_t *h_ids;                /* host copies of the per-row inputs */
    float *h_dlogp, *h_dent;
    int64_t check_rows[4];         /* rows compared with the CPU */
    int n_check;
} ldata;

static vppo_logits mk_logits(const void *data, vppo_dtype dt, int64_t n, int64_t V)
{
    vppo_logits x;
    x.data = data; x.dtype = dt; x.n_rows = n; x.vocab = V; x.row_stride = V; x.temperature = 1.0f;
    return x;
}

static void ldata_init(ldata *L)
{
    size_t free_b = 0, total_b = 0, need;
    int64_t n = g_rows, V = g_vocab, r;
    size_t nv;
    int k;
    memset(L, 0, sizeof *L);
    /* 2 f32 + 2 bf16 matrices + the f32 scratch = 16 bytes per element, plus 256 MiB for
       the library's scratch, the per-row arrays and the CUDA context's needs. */
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    need = (size_t)n * (size_t)V * 16u + ((size_t)256 << 20);
    while (need > free_b && n > 1) {
        n /= 2;
        need = (size_t)n * (size_t)V * 16u + ((size_t)256 << 20);
    }
    if (n != g_rows) {
        printf("note: %lld rows x %lld need %.2f GiB; the GPU has %.2f GiB free: using %lld rows\n\n",
               (long long)g_rows, (long long)V, ((double)g_rows * (double)V * 16.0 + 268435456.0) / 1073741824.0,
               (double)free_b / 1073741824.0, (long long)n);
    }
    L->n = n; L->V = V;
    nv = (size_t)n * (size_t)V;
    L->o32 = (float *)dev_alloc(nv * 4);
    L->a32 = (float *)dev_alloc(nv * 4);
    L->scratch = (float *)dev_alloc(nv * 4);
    L->o16 = (uint16_t *)dev_alloc(nv * 2);
    L->a16 = (uint16_t *)dev_alloc(nv * 2);
    L->ids = (int32_t *)dev_alloc((size_t)n * 4);
    L->dlogp = (float *)dev_alloc((size_t)n * 4);
    L->dent = (float *)dev_alloc((size_t)n * 4);
    L->dep = (float *)dev_alloc((size_t)n * 4);
    L->logp = (float *)dev_alloc((size_t)n * 4);
    for (k = 0; k < 2; ++k) {
        L->lse[k] = (float *)dev_alloc((size_t)n * 4);
        L->ent[k] = (float *)dev_alloc((size_t)n * 4);
    }
    L->partial = (unsigned long long *)dev_alloc((size_t)g_sms * 16 * 8);

    BENCH_LAUNCH(gen_logits_kernel, grid_for((int64_t)nv), 256, g_stream, L->o32, L->a32, L->o16, L->a16,
                 (int64_t)nv, (uint64_t)0x5EED0001ull);
    LAUNCH_CHECK();
    CUDA_CHECK(cudaMemsetAsync(L->scratch, 0, nv * 4, g_stream));   /* touch every page */

    L->h_ids = (int32_t *)host_alloc((size_t)n * 4);
    L->h_dlogp = (float *)host_alloc((size_t)n * 4);
    L->h_dent = (float *)host_alloc((size_t)n * 4);
    for (r = 0; r < n; ++r) {
        L->h_ids[r] = (int32_t)(mix64(0xD00Dull + (uint64_t)r) % (uint64_t)V);
        L->h_dlogp[r] = normal4(0xA1ull, (uint64_t)r);
        L->h_dent[r] = 0.06f * normal4(0xA2ull, (uint64_t)r);
    }
    to_dev(L->ids, L->h_ids, (size_t)n * 4);
    to_dev(L->dlogp, L->h_dlogp, (size_t)n * 4);
    to_dev(L->dent, L->h_dent, (size_t)n * 4);
    CUDA_CHECK(cudaStreamSynchronize(g_stream));

    {   /* rows 0, 1, n/2 and n-1, without repeats */
        int64_t cand[4];
        int a, b;
        cand[0] = 0; cand[1] = 1; cand[2] = n / 2; cand[3] = n - 1;
        for (a = 0; a < 4; ++a) {
            int dup = cand[a] >= n;
            for (b = 0; b < L->n_check; ++b) dup |= L->check_rows[b] == cand[a];
            if (!dup) L->check_rows[L->n_check++] = cand[a];
        }
    }
}

static void ldata_free(ldata *L)
{
    int k;
    CUDA_CHECK(cudaFree(L->o32)); CUDA_CHECK(cudaFree(L->a32)); CUDA_CHECK(cudaFree(L->scratch));
    CUDA_CHECK(cudaFree(L->o16)); CUDA_CHECK(cudaFree(L->a16)); CUDA_CHECK(cudaFree(L->ids));
    CUDA_CHECK(cudaFree(L->dlogp)); CUDA_CHECK(cudaFree(L->dent)); CUDA_CHECK(cudaFree(L->dep));
    CUDA_CHECK(cudaFree(L->logp)); CUDA_CHECK(cudaFree(L->partial));
    for (k = 0; k < 2; ++k) { CUDA_CHECK(cudaFree(L->lse[k])); CUDA_CHECK(cudaFree(L->ent[k])); }
    free(L->h_ids); free(L->h_dlogp); free(L->h_dent);
    memset(L, 0, sizeof *L);
}

/* Host copies of the check rows of a device matrix (elem bytes per entry), packed. */
static void *pull_rows(const ldata *L, const void *dev, size_t elem)
{
    size_t row_bytes = (size_t)L->V * elem;
    char *h = (char *)host_alloc(row_bytes * (size_t)L->n_check);
    int k;
    for (k = 0; k < L->n_check; ++k)
        to_host(h + (size_t)k * row_bytes, (const char *)dev + (size_t)L->check_rows[k] * row_bytes, row_bytes);
    return h;
}

/* The check rows of a device per-row array. */
static void pull_row_values(const ldata *L, const float *dev, float *out)
{
    int k;
    for (k = 0; k < L->n_check; ++k) to_host(&out[k], dev + L->check_rows[k], 4);
}

/* ============================================================ bandwidth == */

typedef struct bw_ctx { void *dst; const void *src; size_t bytes; unsigned long long *partial; } bw_ctx;

static void run_copy(void *v)
{
    bw_ctx *c = (bw_ctx *)v;
    CUDA_CHECK(cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, g_stream));
}

static void run_read(void *v)
{
    bw_ctx *c = (bw_ctx *)v;
    int64_t count = (int64_t)(c->bytes / 4);
    BENCH_LAUNCH(read_sum_kernel, grid_for((count + 3) / 4), READ_THREADS, g_stream, (const uint32_t *)c->src,
                 count, c->partial);
    LAUNCH_CHECK();
}

/* The copy must have copied (the check rows, bit for bit) and the read kernel must have
   read every word: its integer sum equals the host's sum of the words pulled back. */
static int check_bandwidth(const ldata *L, const bw_ctx *c)
{
    size_t chunk = (size_t)64 << 20, done, w, row_bytes = (size_t)L->V * 4;
    uint32_t *h = (uint32_t *)host_alloc(chunk);
    unsigned long long *partial = (unsigned long long *)host_alloc((size_t)g_sms * 16 * 8);
    unsigned long long sum_host = 0, sum_dev = 0;
    unsigned nb = grid_for(((int64_t)(c->bytes / 4) + 3) / 4), b;
    char *r1 = (char *)host_alloc(row_bytes), *r2 = (char *)host_alloc(row_bytes);
    int k, ok = 1;
    for (done = 0; done < c->bytes; done += chunk) {
        size_t len = c->bytes - done < chunk ? c->bytes - done : chunk;
        to_host(h, (const char *)c->src + done, len);
        for (w = 0; w < len / 4; ++w) sum_host += h[w];
    }
    to_host(partial, c->partial, (size_t)nb * 8);
    for (b = 0; b < nb; ++b) sum_dev += partial[b];
    if (sum_dev != sum_host) {
        printf("read kernel: WRONG sum of the words: %llu, the host's: %llu\n", sum_dev, sum_host);
        ok = 0;
    }
    for (k = 0; k < L->n_check; ++k) {
        size_t off = (size_t)L->check_rows[k] * row_bytes;
        to_host(r1, (const char *)c->src + off, row_bytes);
        to_host(r2, (const char *)c->dst + off, row_bytes);
        if (memcmp(r1, r2, row_bytes) != 0) {
            printf("copy: WRONG: row %lld differs from its source\n", (long long)L->check_rows[k]);
            ok = 0;
        }
    }
    free(h); free(partial); free(r1); free(r2);
    if (!ok) ++g_wrong;
    return ok;
}

static void bench_bandwidth(ldata *L)
{
    size_t bytes = (size_t)L->n * (size_t)L->V * 4;
    bw_ctx c;
    double t_copy, t_read;
    const char *ok;

    c.dst = L->scratch; c.src = L->o32; c.bytes = bytes; c.partial = L->partial;
    t_copy = time_ms(run_copy, NULL, &c);
    t_read = time_ms(run_read, NULL, &c);
    g_copy_gbs = 2.0 * (double)bytes / (t_copy * 1e-3) * 1e-9;
    g_read_gbs = (double)bytes / (t_read * 1e-3) * 1e-9;
    ok = check_bandwidth(L, &c) ? "ok" : "WRONG";

    printf("## Bandwidth references (%.1f MiB buffer: the f32 logits)\n\n", (double)bytes / 1048576.0);
    printf("| reference                             |       ms |     GB/s | %% of copy | check |\n");
    printf("|---------------------------------------|---------:|---------:|----------:|-------|\n");
    printf("| cudaMemcpyAsync device to device      | %8.3f | %8.1f | %9.1f | %-5s |\n", t_copy, g_copy_gbs, 100.0, ok);
    printf("| read kernel (word sum, 16-byte loads) | %8.3f | %8.1f | %9.1f | %-5s |\n", t_read, g_read_gbs,
           100.0 * g_read_gbs / g_copy_gbs, ok);
    printf("\ncopy: GB/s = 2 x bytes / time (each byte read once and written once). read: GB/s =\n"
           "bytes / time. Every %% copy below is GB/s / the copy's GB/s of this run. check: the\n"
           "%d copied row%s equal to the source and the kernel's integer sum of the words equals\n"
           "the host's sum.\n\n", L->n_check, L->n_check == 1 ? " is" : "s are");
}

/* ========================================================= logits tables == */

static void table_head(const char *title)
{
    printf("## %s\n\n", title);
    printf("| call                           | dtype |     n |      V |       ms |     GB/s | %% copy | x naive |  max|err| | check |\n");
    printf("|--------------------------------|-------|------:|-------:|---------:|---------:|-------:|--------:|----------:|-------|\n");
}

static void table_row(const char *name, vppo_dtype dt, const ldata *L, double ms, double bytes, double x_naive,
                      const cmp_result *c)
{
    double gbs = bytes / (ms * 1e-3) * 1e-9;
    char xn[16];
    if (x_naive > 0.0) snprintf(xn, sizeof xn, "%7.2f", x_naive);
    else snprintf(xn, sizeof xn, "%7s", "");
    printf("| %-30s | %-5s | %5lld | %6lld | %8.3f | %8.1f | %6.1f | %s | %9.2e | %-5s |\n", name,
           dt == VPPO_F32 ? "f32" : "bf16", (long long)L->n, (long long)L->V, ms, gbs, 100.0 * gbs / g_copy_gbs,
           xn, c->max_err, verdict(c));
    fflush(stdout);
}

typedef struct kctx {
    ldata *L;
    vppo_dtype dt;
    vppo_logits x, y;
    vppo_grad_out g;
    int which;                 /* 0 ours, 1 naive */
} kctx;

static const void *orig_of(const ldata *L, vppo_dtype dt) { return dt == VPPO_F32 ? (const void *)L->o32 : (const void *)L->o16; }
static const void *aug_of(const ldata *L, vppo_dtype dt) { return dt == VPPO_F32 ? (const void *)L->a32 : (const void *)L->a16; }
static int slot_of(vppo_dtype dt) { return dt == VPPO_F32 ? 0 : 1; }   /* index of lse[], ent[], have_lse[] */

/* A call context on L's original logits of dtype dt. */
static kctx kctx_make(ldata *L, vppo_dtype dt)
{
    kctx c;
    memset(&c, 0, sizeof c);
    c.L = L; c.dt = dt;
    c.x = mk_logits(orig_of(L, dt), dt, L->n, L->V);
    return c;
}

static void run_kl(void *v)
{
    kctx *c = (kctx *)v;
    ldata *L = c->L;
    if (c->which == 0) {
        VPPO_CHECK(vppo_cuda_dependency_logits(&c->x, &c->y, VPPO_DIV_KL, L->dep, g_stream));
    } else if (c->dt == VPPO_F32) {
        BENCH_LAUNCH(naive_kl_kernel<float>, (unsigned)L->n, NAIVE_THREADS, g_stream, (const float *)c->x.data,
                     (const float *)c->y.data, L->V, L->V, 1.0f, L->dep);
        LAUNCH_CHECK();
    } else {
        BENCH_LAUNCH(naive_kl_kernel<uint16_t>, (unsigned)L->n, NAIVE_THREADS, g_stream,
                     (const uint16_t *)c->x.data, (const uint16_t *)c->y.data, L->V, L->V, 1.0f, L->dep);
        LAUNCH_CHECK();
    }
}

/* KL of the check rows on the CPU (vppo_dependency_logits) vs L->dep on the GPU.
   docs/spec.md §12: |err| <= 1e-5 + 1e-4 |ref| for each side, so twice that between them. */
static cmp_result check_kl(ldata *L, vppo_dtype dt)
{
    size_t es = dt == VPPO_F32 ? 4 : 2;
    void *ho = pull_rows(L, orig_of(L, dt), es), *ha = pull_rows(L, aug_of(L, dt), es);
    vppo_logits x = mk_logits(ho, dt, L->n_check, L->V), y = mk_logits(ha, dt, L->n_check, L->V);
    float ref[4], got[4];
    cmp_result c;
    VPPO_CHECK(vppo_dependency_logits(&x, &y, VPPO_DIV_KL, ref));
    pull_row_values(L, L->dep, got);
    cmp_init(&c);
    cmp_floats(&c, got, ref, L->n_check, 2e-5, 2e-4);
    free(ho); free(ha);
    return c;
}

/* One logits table: its title, then `cell` for f32 and for bf16 logits. */
typedef void (*logits_cell)(ldata *L, vppo_dtype dt);

static void logits_table(ldata *L, const char *title, logits_cell cell)
{
    table_head(title);
    cell(L, VPPO_F32);
    cell(L, VPPO_BF16);
}

static void dep_cell(ldata *L, vppo_dtype dt)
{
    size_t es = dt == VPPO_BF16 ? 2 : 4;
    /* bytes: both matrices read once, one float written per row */
    double bytes = 2.0 * (double)L->n * (double)L->V * (double)es + 4.0 * (double)L->n;
    kctx c;
    double t_ours, t_naive;
    cmp_result c_ours, c_naive;
    c = kctx_make(L, dt);
    c.y = mk_logits(aug_of(L, dt), dt, L->n, L->V);
    c.which = 0;
    t_ours = time_ms(run_kl, NULL, &c);
    c_ours = check_kl(L, dt);
    c.which = 1;
    t_naive = time_ms(run_kl, NULL, &c);
    c_naive = check_kl(L, dt);
    table_row("vppo_cuda_dependency_logits", dt, L, t_ours, bytes, t_naive / t_ours, &c_ours);
    table_row("  naive 3-pass KL kernel", dt, L, t_naive, bytes, 1.0, &c_naive);
    if (dt == VPPO_BF16) g_dep_bf16_gbs = bytes / (t_ours * 1e-3) * 1e-9;
}

static void bench_dep(ldata *L)
{
    logits_table(L, "vppo_cuda_dependency_logits (KL(P||Q) per row) vs a naive three-pass kernel", dep_cell);
    printf("\nbytes: 2 n V x (4 f32 | 2 bf16) read + 4 n written. GB/s = bytes / time.\n"
           "%% copy: GB/s / the device copy's GB/s. x naive: naive time / vppo time (the naive\n"
           "kernel reads every row three times; its GB/s counts the bytes that must be touched).\n"
           "max|err|: largest |GPU - CPU vppo_dependency_logits| on %d rows; check: within\n"
           "2e-5 + 2e-4 |ref| (twice the spec §12 bound).\n\n", L->n_check);
}

/* vppo_cuda_logprobs of dtype dt into L->logp, L->lse[dt], L->ent[dt]. */
static void run_logprobs(void *v)
{
    kctx *c = (kctx *)v;
    ldata *L = c->L;
    VPPO_CHECK(vppo_cuda_logprobs(&c->x, L->ids, L->logp, L->lse[slot_of(c->dt)], L->ent[slot_of(c->dt)], g_stream));
    L->have_lse[slot_of(c->dt)] = 1;
}

/* CPU vppo_logprobs on the check rows vs the GPU: docs/spec.md §12, twice the bounds (logp and
   lse: 1e-5 (1 + |ref|); entropy: 1e-5 + 1e-4 |ref|). */
static cmp_result check_logprobs(ldata *L, vppo_dtype dt)
{
    size_t es = dt == VPPO_F32 ? 4 : 2;
    int k = slot_of(dt), i;
    void *ho = pull_rows(L, orig_of(L, dt), es);
    vppo_logits x = mk_logits(ho, dt, L->n_check, L->V);
    int32_t ids[4];
    float rl[4], rs[4], rh[4], gl[4], gs[4], gh[4];
    cmp_result c;
    for (i = 0; i < L->n_check; ++i) ids[i] = L->h_ids[L->check_rows[i]];
    VPPO_CHECK(vppo_logprobs(&x, ids, rl, rs, rh));
    pull_row_values(L, L->logp, gl);
    pull_row_values(L, L->lse[k], gs);
    pull_row_values(L, L->ent[k], gh);
    cmp_init(&c);
    cmp_floats(&c, gl, rl, L->n_check, 2e-5, 2e-5);
    cmp_floats(&c, gs, rs, L->n_check, 2e-5, 2e-5);
    cmp_floats(&c, gh, rh, L->n_check, 2e-5, 2e-4);
    free(ho);
    return c;
}

static void ensure_lse(ldata *L, vppo_dtype dt)   /* lse and entropy for the backward */
{
    kctx c;
    if (L->have_lse[slot_of(dt)]) return;
    c = kctx_make(L, dt);
    run_logprobs(&c);
}

static void logprobs_cell(ldata *L, vppo_dtype dt)
{
    /* bytes: the matrix read once, ids read (4 n), logp, lse, entropy written (12 n) */
    double bytes = (double)L->n * (double)L->V * (dt == VPPO_BF16 ? 2.0 : 4.0) + 16.0 * (double)L->n;
    kctx c;
    double t;
    cmp_result cr;
    c = kctx_make(L, dt);
    t = time_ms(run_logprobs, NULL, &c);
    cr = check_logprobs(L, dt);
    table_row("vppo_cuda_logprobs", dt, L, t, bytes, 0.0, &cr);
}

static void bench_logprobs(ldata *L)
{
    logits_table(L, "vppo_cuda_logprobs (ids -> logp, lse, entropy)", logprobs_cell);
    printf("\nbytes: n V x (4 f32 | 2 bf16) read + 4 n (ids) read + 12 n (logp, lse, entropy)\n"
           "written. max|err|: largest |GPU - CPU vppo_logprobs| over logp, lse and entropy on %d\n"
           "rows; check: twice the spec §12 bounds.\n\n", L->n_check);
}

static void run_backward(void *v)
{
    const kctx *c = (const kctx *)v;
    const int k = slot_of(c->dt);
    VPPO_CHECK(vppo_cuda_logprobs_backward(&c->x, c->L->ids, c->L->lse[k], c->L->ent[k], c->L->dlogp, c->L->dent,
                                           &c->g, g_stream));
}

static void restore_scratch(void *v)   /* the in-place call's input: orig f32 again */
{
    kctx *c = (kctx *)v;
    CUDA_CHECK(cudaMemcpyAsync(c->L->scratch, c->L->o32, (size_t)c->L->n * (size_t)c->L->V * 4,
                               cudaMemcpyDeviceToDevice, g_stream));
}

/* CPU vppo_logprobs_backward (F32 out, given the GPU's lse and entropy of those rows)
   vs the gradient in L->scratch (F32, or BF16 when dt is bf16). docs/spec.md §12 dlogits:
   1e-7 + 1e-5 |ref| per side; a bf16 output adds its rounding, at most 2^-9 |value|
   (2^-8 |ref| allowed). */
static cmp_result check_backward(ldata *L, vppo_dtype dt)
{
    size_t es = dt == VPPO_F32 ? 4 : 2, V = (size_t)L->V;
    int k = slot_of(dt), i;
    void *ho = pull_rows(L, orig_of(L, dt), es);
    void *hg = pull_rows(L, L->scratch, es);   /* the GPU's gradient rows */
    float *ref = (float *)host_alloc(V * (size_t)L->n_check * 4), *got = (float *)host_alloc(V * 4);
    vppo_logits x = mk_logits(ho, dt, L->n_check, L->V);
    vppo_grad_out g;
    int32_t ids[4];
    float lse[4], ent[4], dl[4], dh[4];
    cmp_result c;
    for (i = 0; i < L->n_check; ++i) {
        ids[i] = L->h_ids[L->check_rows[i]];
        dl[i] = L->h_dlogp[L->check_rows[i]];
        dh[i] = L->h_dent[L->check_rows[i]];
    }
    pull_row_values(L, L->lse[k], lse);
    pull_row_values(L, L->ent[k], ent);
    g.data = ref; g.dtype = VPPO_F32; g.row_stride = L->V;
    VPPO_CHECK(vppo_logprobs_backward(&x, ids, lse, ent, dl, dh, &g));
    cmp_init(&c);
    for (i = 0; i < L->n_check; ++i) {
        size_t j;
        if (dt == VPPO_F32) {
            memcpy(got, (const float *)hg + (size_t)i * V, V * 4);
        } else {
            const uint16_t *h = (const uint16_t *)hg + (size_t)i * V;
            for (j = 0; j < V; ++j) {
                uint32_t u = (uint32_t)h[j] << 16;
                memcpy(&got[j], &u, 4);
            }
        }
        cmp_floats(&c, got, ref + (size_t)i * V, L->V, 2e-7, dt == VPPO_F32 ? 2e-5 : 2e-5 + 1.0 / 256.0);
    }
    free(ho); free(hg); free(ref); free(got);
    return c;
}

static void backward_cell(ldata *L, vppo_dtype dt)
{
    /* bytes: the logits read once and the gradient written once (same dtype), and 20 n
       for ids, lse, entropy, dlogp, dentropy */
    double bytes = 2.0 * (double)L->n * (double)L->V * (dt == VPPO_BF16 ? 2.0 : 4.0) + 20.0 * (double)L->n;
    kctx c;
    double t;
    cmp_result cr;
    ensure_lse(L, dt);
    c = kctx_make(L, dt);
    if (dt == VPPO_F32) {   /* in place: the gradient overwrites the logits */
        c.x = mk_logits(L->scratch, VPPO_F32, L->n, L->V);
        c.g.data = L->scratch; c.g.dtype = VPPO_F32; c.g.row_stride = L->V;
        t = time_ms(run_backward, restore_scratch, &c);
    } else {                /* bf16 logits -> bf16 gradient (in the scratch buffer) */
        c.x = mk_logits(L->o16, VPPO_BF16, L->n, L->V);
        c.g.data = L->scratch; c.g.dtype = VPPO_BF16; c.g.row_stride = L->V;
        t = time_ms(run_backward, NULL, &c);
    }
    cr = check_backward(L, dt);
    table_row(dt == VPPO_BF16 ? "vppo_cuda_lp_backward -> bf16" : "vppo_cuda_lp_backward in place", dt, L, t, bytes, 0.0, &cr);
}

static void bench_backward(ldata *L)
{
    logits_table(L, "vppo_cuda_logprobs_backward (lse, entropy, dlogp, dentropy given)", backward_cell);
    printf("\nbytes: n V x (4 f32 | 2 bf16) read + the same written + 20 n (ids, lse, entropy,\n"
           "dlogp, dentropy). f32: in place (restored before each call, untimed); bf16: bf16\n"
           "logits to a bf16 gradient. max|err|: largest |GPU - CPU vppo_logprobs_backward| per\n"
           "element on %d rows; check: 2e-7 + 2e-5 |ref| (f32), plus 2^-8 |ref| for the bf16\n"
           "rounding.\n\n", L->n_check);
}

/* ================================================================== step == */

typedef struct sdata {
    int64_t B, Lq, N;
    vppo_config cfg;
    vppo_seqs s, hs;          /* device / host offsets */
    int64_t *h_off, *off;
    float *h_logp, *h_logp_old, *h_logp_aug, *h_adv_seq;
    float *logp, *logp_old, *logp_aug, *adv_seq, *dlogp;
    vppo_prepared p;          /* device buffers */
    vppo_loss_out out;
    void *flush;              /* written before each timed call: evicts the L2 cache */
    size_t flush_bytes;
    void *copy_src, *copy_dst;
    size_t copy_bytes;
    int what;                 /* 0 step, 1 prepare, 2 policy_loss, 3 copy, 4 the step's graph */
    /* the engine's way (vppo_cuda_step_async captured in a CUDA graph): its workspace, its
       status word and scalar results on the device */
    vppo_cuda_launch launch;
    vppo_loss_out *d_out;
    vppo_tas_stats *d_stats;
    vppo_topk_info *d_topk;
    cudaGraph_t graph;
    cudaGraphExec_t graph_exec;
} sdata;

static void step_flush(void *v)
{
    sdata *S = (sdata *)v;
    static int k = 0;
    CUDA_CHECK(cudaMemsetAsync(S->flush, ++k & 0xFF, S->flush_bytes, g_stream));
}

static void step_run(void *v)
{
    sdata *S = (sdata *)v;
    switch (S->what) {
    case 0:
        VPPO_CHECK(vppo_cuda_step(&S->cfg, &S->s, S->logp, S->logp_old, S->logp_aug, NULL, S->adv_seq, &S->p,
                                  S->dlogp, &S->out, g_stream));
        break;
    case 1:
        VPPO_CHECK(vppo_cuda_prepare(&S->cfg, &S->s, S->logp_old, S->logp_aug, NULL, S->adv_seq, NULL, &S->p,
                                     g_stream));
        break;
    case 2:
        VPPO_CHECK(vppo_cuda_policy_loss(&S->cfg.loss, &S->s, S->logp, S->logp_old, NULL, S->p.adv, S->p.select,
                                         NULL, S->dlogp, &S->out, g_stream));
        break;
    case 4:
        CUDA_CHECK(cudaGraphLaunch(S->graph_exec, g_stream));
        break;
    default:
        CUDA_CHECK(cudaMemcpyAsync(S->copy_dst, S->copy_src, S->copy_bytes, cudaMemcpyDeviceToDevice, g_stream));
        break;
    }
}

/* The step as an engine runs it: vppo_cuda_step_async captured once into a graph. */
static void step_graph_make(sdata *S)
{
    S->launch.stream = (void *)g_stream;
    S->launch.workspace_bytes = vppo_cuda_workspace_size(S->B);
    S->launch.workspace = dev_alloc(S->launch.workspace_bytes);
    S->launch.status = (int32_t *)dev_alloc(sizeof(int32_t));
    S->d_out = (vppo_loss_out *)dev_alloc(sizeof(vppo_loss_out));
    S->d_stats = (vppo_tas_stats *)dev_alloc(sizeof(vppo_tas_stats));
    S->d_topk = (vppo_topk_info *)dev_alloc(sizeof(vppo_topk_info));
    CUDA_CHECK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeGlobal));
    VPPO_CHECK(vppo_cuda_step_async(&S->cfg, &S->s, S->logp, S->logp_old, S->logp_aug, NULL, S->adv_seq, &S->p,
                                    S->dlogp, S->d_out, S->d_stats, S->d_topk, &S->launch));
    CUDA_CHECK(cudaStreamEndCapture(g_stream, &S->graph));
    CUDA_CHECK(cudaGraphInstantiate(&S->graph_exec, S->graph, 0));
}

/* After the graph ran: its status word must be VPPO_OK; its scalar results where the
   synchronous step writes them, for the checks. */
static void step_graph_results(sdata *S, cmp_result *c)
{
    int32_t status = -1;
    to_host(&status, S->launch.status, sizeof status);
    cmp_exact(c, status, VPPO_OK);
    to_host(&S->out, S->d_out, sizeof S->out);
    to_host(&S->p.stats, S->d_stats, sizeof S->p.stats);
    to_host(&S->p.topk, S->d_topk, sizeof S->p.topk);
}

static void step_graph_free(sdata *S)
{
    CUDA_CHECK(cudaGraphExecDestroy(S->graph_exec));
    CUDA_CHECK(cudaGraphDestroy(S->graph));
    CUDA_CHECK(cudaFree(S->launch.workspace)); CUDA_CHECK(cudaFree(S->launch.status));
    CUDA_CHECK(cudaFree(S->d_out)); CUDA_CHECK(cudaFree(S->d_stats)); CUDA_CHECK(cudaFree(S->d_topk));
}

/* The prepare half against the CPU: dep within twice docs/spec.md §12 (per-token math:
   1e-6 (1 + |ref|)); select must equal the CPU's vppo_topk_mask of the GPU's own dep
   (masks are exact given the same scores); adv within twice §12; topk counts exact. */
static void check_prepare(sdata *S, cmp_result *c)
{
    size_t N = (size_t)S->N, B = (size_t)S->B;
    vppo_prepared h;
    float *g_dep = (float *)host_alloc(N * 4), *g_adv = (float *)host_alloc(N * 4);
    uint8_t *g_sel = (uint8_t *)host_alloc(N), *sel_of_gdep = (uint8_t *)host_alloc(N);
    size_t t;
    memset(&h, 0, sizeof h);
    h.dep = (float *)host_alloc(N * 4); h.traj_dep = (float *)host_alloc(B * 4);
    h.count = (int64_t *)host_alloc(B * 8); h.scale = (float *)host_alloc(B * 4);
    h.adv = (float *)host_alloc(N * 4); h.select = (uint8_t *)host_alloc(N);
    VPPO_CHECK(vppo_prepare(&S->cfg, &S->hs, S->h_logp_old, S->h_logp_aug, NULL, S->h_adv_seq, NULL, &h));
    to_host(g_dep, S->p.dep, N * 4);
    to_host(g_adv, S->p.adv, N * 4);
    to_host(g_sel, S->p.select, N);
    cmp_floats(c, g_dep, h.dep, (int64_t)N, 2e-6, 2e-6);
    cmp_floats(c, g_adv, h.adv, (int64_t)N, 2e-6, 2e-6);
    VPPO_CHECK(vppo_topk_mask(&S->hs, g_dep, S->cfg.topk_ratio, sel_of_gdep, NULL));
    for (t = 0; t < N; ++t) cmp_exact(c, g_sel[t] != 0, sel_of_gdep[t] != 0);
    cmp_exact(c, S->p.topk.n_valid, h.topk.n_valid);
    cmp_exact(c, S->p.topk.n_selected, h.topk.n_selected);
    cmp_exact(c, S->p.stats.n, h.stats.n);
    free(g_dep); free(g_adv); free(g_sel); free(sel_of_gdep);
    free(h.dep); free(h.traj_dep); free(h.count); free(h.scale); free(h.adv); free(h.select);
}

/* The loss half against the CPU vppo_policy_loss on the GPU's own adv and select:
   dlogp within twice §12 and within 1e-4 of the largest |dlogp| (the §12 bound alone
   is loose next to values of order 1/N); loss and metrics within twice §12; counts
   exact. */
static void check_loss(sdata *S, cmp_result *c)
{
    size_t N = (size_t)S->N, t;
    float *g_adv = (float *)host_alloc(N * 4), *g_dlogp = (float *)host_alloc(N * 4);
    float *r_dlogp = (float *)host_alloc(N * 4);
    uint8_t *g_sel = (uint8_t *)host_alloc(N);
    vppo_loss_out r;
    double scale = 0.0;
    memset(&r, 0, sizeof r);
    to_host(g_adv, S->p.adv, N * 4);
    to_host(g_sel, S->p.select, N);
    to_host(g_dlogp, S->dlogp, N * 4);
    VPPO_CHECK(vppo_policy_loss(&S->cfg.loss, &S->hs, S->h_logp, S->h_logp_old, NULL, g_adv, g_sel, NULL, r_dlogp,
                                &r));
    for (t = 0; t < N; ++t) if (fabs((double)r_dlogp[t]) > scale) scale = fabs((double)r_dlogp[t]);
    cmp_floats(c, g_dlogp, r_dlogp, (int64_t)N, 2e-6, 2e-6);
    cmp_floats(c, g_dlogp, r_dlogp, (int64_t)N, 1e-4 * scale, 0.0);
    cmp_double(c, S->out.loss, r.loss, 2e-6, 2e-6);
    cmp_double(c, S->out.pg_loss, r.pg_loss, 2e-6, 2e-6);
    cmp_double(c, S->out.entropy_loss, r.entropy_loss, 2e-6, 2e-6);
    cmp_double(c, S->out.clipfrac, r.clipfrac, 2e-6, 2e-6);
    cmp_double(c, S->out.ppo_kl, r.ppo_kl, 2e-6, 2e-6);
    cmp_exact(c, S->out.n_valid, r.n_valid);
    cmp_exact(c, S->out.n_selected, r.n_selected);
    free(g_adv); free(g_dlogp); free(r_dlogp); free(g_sel);
}

static void bench_step(void)
{
    sdata S;
    int64_t t, G;
    size_t N, B, step_bytes, prep_bytes, loss_bytes;
    int64_t *goff;
    float *rewards;
    vppo_seqs groups;
    double t_copy;
    int w;
    static const char *names[] = { "vppo_cuda_step", "  vppo_cuda_prepare", "  vppo_cuda_policy_loss",
                                   "vppo_cuda_step, graph" };
    size_t bytes_of[4];

    memset(&S, 0, sizeof S);
    S.B = g_quick ? 16 : 1024;
    S.Lq = g_quick ? 256 : 2048;
    S.N = S.B * S.Lq;
    N = (size_t)S.N; B = (size_t)S.B;
    G = S.B / 8;
    S.cfg = vppo_config_default();

    /* host data, as bench/bench.c: GRPO advantages of 0/1 rewards in groups of 8,
       logp_old = log U(0.01, 1), logp = logp_old + 0.02 N, logp_aug = logp_old + 0.3 N */
    S.h_off = (int64_t *)host_alloc((B + 1) * 8);
    goff = (int64_t *)host_alloc((size_t)(G + 1) * 8);
    rewards = (float *)host_alloc(B * 4);
    S.h_logp = (float *)host_alloc(N * 4); S.h_logp_old = (float *)host_alloc(N * 4);
    S.h_logp_aug = (float *)host_alloc(N * 4); S.h_adv_seq = (float *)host_alloc(B * 4);
    VPPO_CHECK(vppo_offsets_uniform(S.h_off, S.B, S.Lq));
    VPPO_CHECK(vppo_offsets_uniform(goff, G, 8));
    for (t = 0; t < S.B; ++t) rewards[t] = (float)(mix64(0xBEEFull + (uint64_t)t) & 1u);
    groups.n_seqs = G; groups.offsets = goff; groups.mask = NULL;
    VPPO_CHECK(vppo_group_advantages(&groups, rewards, VPPO_ADV_GRPO, 1e-6f, S.h_adv_seq));
    for (t = 0; t < S.N; ++t) {
        float lo = logf(0.01f + 0.99f * unif(0x51ull, (uint64_t)t));
        S.h_logp_old[t] = lo;
        S.h_logp[t] = lo + 0.02f * normal4(0x52ull, (uint64_t)t);
        S.h_logp_aug[t] = lo + 0.3f * normal4(0x53ull, (uint64_t)t);
    }
    S.hs.n_seqs = S.B; S.hs.offsets = S.h_off; S.hs.mask = NULL;

    S.off = (int64_t *)dev_alloc((B + 1) * 8);
    S.logp = (float *)dev_alloc(N * 4); S.logp_old = (float *)dev_alloc(N * 4);
    S.logp_aug = (float *)dev_alloc(N * 4); S.adv_seq = (float *)dev_alloc(B * 4);
    S.dlogp = (float *)dev_alloc(N * 4);
    to_dev(S.off, S.h_off, (B + 1) * 8);
    to_dev(S.logp, S.h_logp, N * 4); to_dev(S.logp_old, S.h_logp_old, N * 4);
    to_dev(S.logp_aug, S.h_logp_aug, N * 4); to_dev(S.adv_seq, S.h_adv_seq, B * 4);
    S.s.n_seqs = S.B; S.s.offsets = S.off; S.s.mask = NULL;
    S.p.dep = (float *)dev_alloc(N * 4); S.p.traj_dep = (float *)dev_alloc(B * 4);
    S.p.count = (int64_t *)dev_alloc(B * 8); S.p.scale = (float *)dev_alloc(B * 4);
    S.p.adv = (float *)dev_alloc(N * 4); S.p.select = (uint8_t *)dev_alloc(N);

    /* Bytes each call must touch, every array read or written once:
         step:        reads logp, logp_old, logp_aug (12 N), adv_seq (4 B), offsets (8 (B+1));
                      writes dep, adv, dlogp (12 N), select (N), traj_dep, scale (8 B), count (8 B)
                      = 25 N + 20 B + 8 (B+1)
         prepare:     reads logp_old, logp_aug (8 N), adv_seq, offsets; writes dep, adv (8 N),
                      select (N), traj_dep, count, scale = 17 N + 20 B + 8 (B+1)
         policy_loss: reads logp, logp_old, adv (12 N), select (N), offsets; writes dlogp (4 N)
                      = 17 N + 8 (B+1) */
    step_bytes = 25 * N + 20 * B + 8 * (B + 1);
    prep_bytes = 17 * N + 20 * B + 8 * (B + 1);
    loss_bytes = 17 * N + 8 * (B + 1);
    bytes_of[0] = step_bytes; bytes_of[1] = prep_bytes; bytes_of[2] = loss_bytes; bytes_of[3] = step_bytes;
    step_graph_make(&S);

    /* A copy that touches as many bytes as the step (step_bytes / 2 read, as many written). */
    S.copy_bytes = step_bytes / 2;
    S.copy_src = dev_alloc(S.copy_bytes);
    S.copy_dst = dev_alloc(S.copy_bytes);
    CUDA_CHECK(cudaMemset(S.copy_src, 1, S.copy_bytes));
    S.flush_bytes = (size_t)(g_l2_bytes > 0 ? g_l2_bytes : (8 << 20)) * 4;
    S.flush = dev_alloc(S.flush_bytes);

    printf("## vppo_cuda_step (vppo_config_default), %lld sequences x %lld tokens, groups of 8\n\n",
           (long long)S.B, (long long)S.Lq);
    printf("| call                      |       ms |   Mtok/s |  MiB |     GB/s | %% copy |   x copy |  max|err| | check |\n");
    printf("|---------------------------|---------:|---------:|-----:|---------:|-------:|---------:|----------:|-------|\n");
    S.what = 3;
    t_copy = time_ms(step_run, step_flush, &S);
    printf("| D2D copy, same bytes      | %8.3f | %8.1f | %4.0f | %8.1f | %6.1f | %8.2f | %9s | %-5s |\n", t_copy,
           (double)S.N / (t_copy * 1e-3) * 1e-6, (double)step_bytes / 1048576.0,
           (double)step_bytes / (t_copy * 1e-3) * 1e-9, 100.0 * (double)step_bytes / (t_copy * 1e-3) * 1e-9 / g_copy_gbs,
           1.0, "", "");
    for (w = 0; w < 4; ++w) {
        double tw, gbs;
        cmp_result c;
        S.what = w == 3 ? 4 : w;
        tw = time_ms(step_run, step_flush, &S);
        cmp_init(&c);
        if (w == 3) step_graph_results(&S, &c);
        if (w != 2) check_prepare(&S, &c);
        if (w != 1) check_loss(&S, &c);
        gbs = (double)bytes_of[w] / (tw * 1e-3) * 1e-9;
        printf("| %-25s | %8.3f | %8.1f | %4.0f | %8.1f | %6.1f | %8.2f | %9.2e | %-5s |\n", names[w], tw,
               (double)S.N / (tw * 1e-3) * 1e-6, (double)bytes_of[w] / 1048576.0, gbs, 100.0 * gbs / g_copy_gbs,
               tw / t_copy, c.max_err, verdict(&c));
        fflush(stdout);
        if (w == 0) g_step_gbs = gbs;
    }
    printf("\nbytes (MiB column): step 25 N + 20 B + 8 (B+1): logp, logp_old, logp_aug read, dep, adv,\n"
           "dlogp written (4 N each), select written (N), adv_seq, offsets read, traj_dep, count, scale\n"
           "written; prepare 17 N + 20 B + 8 (B+1); policy_loss 17 N + 8 (B+1) (logp, logp_old, adv\n"
           "read, select read, dlogp written). GB/s = bytes / time; %% copy: of the large copy's GB/s\n"
           "above; x copy: time / time of a device copy that touches the step's bytes (half read, half\n"
           "written). The L2 cache is flushed (a %.0f MiB memset) before every timed call.\n"
           "Checks against the CPU library on every token: dep and adv within 2e-6 (1 + |ref|); select\n"
           "equal to vppo_topk_mask of the GPU's dep; dlogp and the batch scalars within 2e-6 (1 + |ref|)\n"
           "of vppo_policy_loss on the GPU's adv and select. The graph row: vppo_cuda_step_async captured\n"
           "once into a CUDA graph, one cudaGraphLaunch per call (its status word checked too).\n"
           "Last call: loss %.6f, selected %lld of %lld.\n\n",
           (double)S.flush_bytes / 1048576.0, S.out.loss, (long long)S.out.n_selected, (long long)S.out.n_valid);

    CUDA_CHECK(cudaFree(S.off)); CUDA_CHECK(cudaFree(S.logp)); CUDA_CHECK(cudaFree(S.logp_old));
    CUDA_CHECK(cudaFree(S.logp_aug)); CUDA_CHECK(cudaFree(S.adv_seq)); CUDA_CHECK(cudaFree(S.dlogp));
    CUDA_CHECK(cudaFree(S.p.dep)); CUDA_CHECK(cudaFree(S.p.traj_dep)); CUDA_CHECK(cudaFree(S.p.count));
    CUDA_CHECK(cudaFree(S.p.scale)); CUDA_CHECK(cudaFree(S.p.adv)); CUDA_CHECK(cudaFree(S.p.select));
    CUDA_CHECK(cudaFree(S.copy_src)); CUDA_CHECK(cudaFree(S.copy_dst)); CUDA_CHECK(cudaFree(S.flush));
    step_graph_free(&S);
    free(S.h_off); free(goff); free(rewards); free(S.h_logp); free(S.h_logp_old); free(S.h_logp_aug);
    free(S.h_adv_seq);
}

/* ================================================================== main == */

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--quick] [--rows N] [--vocab V] [--reps R] [--only dep|logprobs|backward|step]\n",
            argv0);
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!end || *end || v < 1) return 0;
    *out = (int64_t)v;
    return 1;
}

int main(int argc, char **argv)
{
    static const char *names[] = { "dep", "logprobs", "backward", "step" };
    int i, ndev = 0, rows_set = 0, vocab_set = 0, reps_set = 0;
    int64_t v;

    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--quick") == 0) g_quick = 1;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) g_only = argv[++i];
        else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc && parse_i64(argv[i + 1], &v)) { g_rows = v; rows_set = 1; ++i; }
        else if (strcmp(argv[i], "--vocab") == 0 && i + 1 < argc && parse_i64(argv[i + 1], &v)) { g_vocab = v; vocab_set = 1; ++i; }
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc && parse_i64(argv[i + 1], &v) && v <= 64) { g_reps = (int)v; reps_set = 1; ++i; }
        else { usage(argv[0]); return 2; }
    }
    if (g_only) {
        size_t k;
        int ok = 0;
        for (k = 0; k < sizeof names / sizeof names[0]; ++k) ok |= strcmp(g_only, names[k]) == 0;
        if (!ok) { usage(argv[0]); return 2; }
    }
    if (g_quick) {
        if (!rows_set) g_rows = 8;
        if (!vocab_set) g_vocab = 1003;   /* not a multiple of 4: the tails run too */
        if (!reps_set) g_reps = 1;
        g_warm = 0;
    }
    if (g_rows > 0x7FFFFFFFll) { fprintf(stderr, "bench_cuda: --rows is at most 2^31 - 1 (one block per row)\n"); return 2; }

    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1) {
        fprintf(stderr, "bench_cuda: no CUDA device (cudaGetDeviceCount: %d device%s)\n", ndev, ndev == 1 ? "" : "s");
        return 2;
    }
    CUDA_CHECK(cudaSetDevice(0));
    CUDA_CHECK(cudaStreamCreate(&g_stream));
    CUDA_CHECK(cudaEventCreate(&g_ev0));
    CUDA_CHECK(cudaEventCreate(&g_ev1));
    header();

    {
        ldata L;
        ldata_init(&L);
        bench_bandwidth(&L);
        if (want("dep")) bench_dep(&L);
        if (want("logprobs")) bench_logprobs(&L);
        if (want("backward")) bench_backward(&L);
        ldata_free(&L);
    }
    if (want("step")) bench_step();

    printf("## Targets (issue 4)\n\n");
    if (g_dep_bf16_gbs >= 0.0)
        printf("dependency_logits bf16: %.1f%% of copy bandwidth (target >= 70%%): %s\n",
               100.0 * g_dep_bf16_gbs / g_copy_gbs, g_dep_bf16_gbs >= 0.7 * g_copy_gbs ? "met" : "MISSED");
    else
        printf("dependency_logits bf16: not measured in this run (--only)\n");
    if (g_step_gbs >= 0.0)
        printf("vppo_cuda_step: %.1f%% of copy bandwidth over the bytes it must touch (target >= 50%%): %s\n",
               100.0 * g_step_gbs / g_copy_gbs, g_step_gbs >= 0.5 * g_copy_gbs ? "met" : "MISSED");
    else
        printf("vppo_cuda_step: not measured in this run (--only)\n");
    if (g_quick) printf("(--quick: tiny sizes; these percentages say nothing about the targets)\n");
    printf("\n");

    CUDA_CHECK(cudaEventDestroy(g_ev0));
    CUDA_CHECK(cudaEventDestroy(g_ev1));
    CUDA_CHECK(cudaStreamDestroy(g_stream));
    if (g_wrong) {
        fprintf(stderr, "bench_cuda: %d check%s failed (rows marked WRONG)\n", g_wrong, g_wrong == 1 ? "" : "s");
        return 1;
    }
    printf("bench_cuda: every check passed\n");
    return 0;
}
