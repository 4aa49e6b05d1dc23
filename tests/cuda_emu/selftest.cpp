/* tests/cuda_emu/selftest.cpp - tests of the CUDA emulator (tests/cuda_emu/cuda_runtime.h).

   Build and run (from the repository root):
     g++ -std=c++14 -O1 -g -Wall -Wextra -fno-strict-aliasing -ffp-contract=off \
         -Itests/cuda_emu tests/cuda_emu/selftest.cpp -o build/emu/selftest && build/emu/selftest
   With -DVPPO_EMU_SELFTEST_TU2 and tests/cuda_emu/selftest_tu2.cpp added, it also checks
   that two translation units share one emulator.

   Expected values come from the definition of each operation (closed forms, loops over
   integers, IEEE bit patterns), never from the emulator's output. Tests that provoke an
   emulator error switch aborting off and count the errors; their "vppo-emu: error:" lines
   on stderr are expected. Prints "N passed, M failed" and exits non-zero on failure. */
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <math_constants.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>
#include <vector>

static int g_pass, g_fail;
static const char *g_test = "";

#define CHECK(cond) check_((cond), #cond, __FILE__, __LINE__)
#define CHECK_EQ(expected, got) check_eq_((long long)(expected), (long long)(got), #got, __FILE__, __LINE__)

static void check_(bool ok, const char *what, const char *file, int line)
{
    if (ok) { g_pass++; return; }
    g_fail++;
    std::printf("FAIL %s: %s:%d: %s\n", g_test, file, line, what);
}
static void check_eq_(long long expected, long long got, const char *what, const char *file, int line)
{
    if (expected == got) { g_pass++; return; }
    g_fail++;
    std::printf("FAIL %s: %s:%d: %s: expected %lld, got %lld\n", g_test, file, line, what, expected, got);
}

/* Writes that AddressSanitizer must not see (the emulator's own canaries are poisoned
   for ASan; these tests check that the emulator itself finds the damage). */
VPPO_EMU_NO_ASAN __attribute__((noinline)) static void poke(void *p, long off, unsigned char v)
{
    *((volatile unsigned char *)p + off) = v;
}

static void begin(const char *name)
{
    g_test = name;
    std::printf("-- %s\n", name);
    std::fflush(stdout);
}

/* Expected-error scope: aborting off, errors counted from here. */
struct ExpectErrors {
    long start;
    ExpectErrors() : start(vppo_emu_error_count()) { vppo_emu_set_abort(0); }
    long count() const { return vppo_emu_error_count() - start; }
    ~ExpectErrors() { vppo_emu_set_abort(1); }
};

/* ================================================================ kernels */

struct Idx { unsigned tx, ty, tz, bx, by, bz, bdx, bdy, bdz, gdx, gdy, gdz; };

__global__ void k_index(Idx *out)
{
    unsigned bl = blockIdx.x + blockIdx.y * gridDim.x + blockIdx.z * gridDim.x * gridDim.y;
    unsigned tl = threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y;
    unsigned nt = blockDim.x * blockDim.y * blockDim.z;
    Idx v = {threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z,
             blockDim.x, blockDim.y, blockDim.z, gridDim.x, gridDim.y, gridDim.z};
    out[bl * nt + tl] = v;
}

/* Tree reduction in shared memory; n threads (a power of two <= 1024). */
__global__ void k_block_sum(const int *in, int *out)
{
    __shared__ int s[1024];
    unsigned t = threadIdx.x, n = blockDim.x;
    s[t] = in[blockIdx.x * n + t];
    __syncthreads();
    for (unsigned h = n / 2; h > 0; h /= 2) {
        if (t < h) s[t] += s[t + h];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

/* Each thread reads its neighbour's slot; with_barrier = 0 is the bug under test. */
__global__ void k_neighbour(int *out, int with_barrier)
{
    __shared__ int s[64];
    unsigned t = threadIdx.x;
    s[t] = (int)t + 1;
    if (with_barrier) __syncthreads();
    out[t] = s[(t + 1) % 64];
}

__global__ void k_shuffles(float *fsum, double *dsum, int *down, int *scan, int *bcast, int *seg,
                           unsigned *ballot, int *anyall, int *xor16, unsigned *match, unsigned *red)
{
    unsigned lane = threadIdx.x % 32;
    float f = (float)(lane + 1);
    double d = 0.5 * (lane + 1);
    for (int o = 16; o > 0; o /= 2) {
        f += __shfl_xor_sync(0xffffffffu, f, o);
        d += __shfl_xor_sync(0xffffffffu, d, o);
    }
    fsum[lane] = f;
    dsum[lane] = d;
    int v = (int)lane;
    for (unsigned o = 16; o > 0; o /= 2) v += __shfl_down_sync(0xffffffffu, v, o);
    down[lane] = v;
    int sc = (int)lane + 1;
    for (unsigned o = 1; o < 32; o *= 2) {
        int y = __shfl_up_sync(0xffffffffu, sc, o);
        if (lane >= o) sc += y;
    }
    scan[lane] = sc;
    bcast[lane] = __shfl_sync(0xffffffffu, (int)lane * 10, 7);
    seg[lane] = __shfl_sync(0xffffffffu, (int)lane, 3, 8);
    ballot[lane] = __ballot_sync(0xffffffffu, lane % 3 == 0);
    anyall[lane] = __any_sync(0xffffffffu, lane == 17) * 1 + __all_sync(0xffffffffu, lane < 32) * 2 +
                   __all_sync(0xffffffffu, lane < 31) * 4 + __any_sync(0xffffffffu, 0) * 8;
    int x = (int)lane;
    for (int o = 8; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o, 16);
    xor16[lane] = x;
    match[lane] = __match_any_sync(0xffffffffu, (int)(lane % 4));
    red[lane] = __reduce_add_sync(0xffffffffu, lane) + 1000u * (unsigned)__reduce_max_sync(0xffffffffu, (int)lane - 5);
}

/* A partial last warp (48 threads: warp 1 has lanes 0..15) with the right mask. */
__global__ void k_partial(int *out)
{
    unsigned t = threadIdx.x, lane = t % 32;
    unsigned mask = t < 32 ? 0xffffffffu : 0x0000ffffu;
    int width = t < 32 ? 32 : 16;
    int v = (int)t;
    for (int o = width / 2; o > 0; o /= 2) v += __shfl_xor_sync(mask, v, o, width);
    out[t] = v;
    out[48 + t] = (int)__ballot_sync(mask, lane % 2);
}

__global__ void k_poison(float *out)
{
    unsigned lane = threadIdx.x % 32;
    if (lane < 16) out[lane] = __shfl_sync(0x0000ffffu, 1.0f, (int)lane + 16);
}

__global__ void k_partial_fullmask(int *out)
{
    out[threadIdx.x] = __shfl_sync(0xffffffffu, (int)threadIdx.x, 0);
}

__global__ void k_exited_lane(int *out)
{
    if (threadIdx.x == 3) return;
    __syncwarp();
    out[threadIdx.x] = 1;
}

__global__ void k_mismatch(int *out)
{
    unsigned lane = threadIdx.x % 32;
    if (lane < 16) out[lane] = __shfl_sync(0xffffffffu, (int)lane, 0);
    else out[lane] = (int)__ballot_sync(0xffffffffu, 1);
}

__global__ void k_strict_exit(int *out)
{
    if (threadIdx.x == 5) return;
    __syncthreads();
    out[threadIdx.x] = 1;
}

__global__ void k_divergent_sites(int *out)
{
    volatile __shared__ int s[64];
    unsigned t = threadIdx.x;
    s[t] = (int)t;
    if (t < 16) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[t] = s[63 - t];
}

__global__ void k_deadlock(int *out)
{
    int v = (int)threadIdx.x;
    if (threadIdx.x == 0) v = __shfl_sync(0xffffffffu, v, 1);
    __syncthreads();
    out[threadIdx.x] = v;
}

__global__ void k_not_in_mask(int *out)
{
    out[threadIdx.x] = __shfl_sync(0x1u, 1, 0);   /* lanes other than 0 are not in mask */
}

__global__ void k_sync_variants(int *out)
{
    unsigned t = threadIdx.x;
    int c = __syncthreads_count(t % 3 == 0);
    int a = __syncthreads_and(t % 3 == 0);
    int o = __syncthreads_or(t == 99);
    int a1 = __syncthreads_and(1);
    int o0 = __syncthreads_or(0);
    if (t == 0) { out[0] = c; out[1] = a; out[2] = o; out[3] = a1; out[4] = o0; }
}

__global__ void k_atomics(int *i, unsigned *u, unsigned long long *ull, float *f, double *d, long long *ll)
{
    unsigned t = threadIdx.x + blockIdx.x * blockDim.x;
    atomicAdd(&i[0], (int)t);
    atomicSub(&i[1], 2);
    atomicMax(&i[2], (int)t - 500);
    atomicMin(&i[3], 1000 - (int)t);
    atomicAdd(&u[0], 3u);
    atomicOr(&u[1], 1u << (t % 32));
    atomicAnd(&u[2], ~(1u << (t % 16)));
    atomicXor(&u[3], 1u << (t % 8));
    atomicInc(&u[4], 9u);
    atomicDec(&u[5], 6u);
    atomicMax(&u[6], t);
    atomicMin(&u[7], t + 7);
    atomicAdd(&ull[0], 1ull << 33);
    atomicMax(&ull[1], (unsigned long long)t * 3);
    atomicAdd(&f[0], 0.5f);
    atomicAdd(&d[0], 0.25);
    atomicMin(&ll[0], -(long long)t * 4000000000ll);
    atomicMax(&ll[1], (long long)t);
    int old;                                 /* a CAS loop increment */
    do { old = i[4]; } while (atomicCAS(&i[4], old, old + 1) != old);
    atomicExch(&i[5], 42);
    atomicExch(&f[1], 2.5f);
}

__global__ void k_flag(int *flag)
{
    if (threadIdx.x + threadIdx.y + threadIdx.z + blockIdx.x + blockIdx.y + blockIdx.z == 0) *flag += 1;
}

__global__ void k_overflow(unsigned char *p, long n)
{
    if (threadIdx.x == 0) poke(p, n, 0x11);   /* one byte past the end */
}

__global__ void k_many(int *out)
{
    __shared__ int s[256];
    unsigned t = threadIdx.x;
    s[t] = (int)(blockIdx.x + t);
    __syncthreads();
    if (t == 0) {
        int sum = 0;
        for (unsigned k = 0; k < blockDim.x; k++) sum += s[k];
        out[blockIdx.x] = sum;
    }
}

__global__ void k_shared_start(unsigned *out)
{
    __shared__ unsigned s[4];
    if (threadIdx.x == 0) out[blockIdx.x] = s[blockIdx.x % 4];
}

__global__ void k_throw(int *)
{
    if (threadIdx.x == 2) throw std::runtime_error("kernel exception");
}

__global__ void k_2d_lanes(int *out)
{
    /* block (8,8): linear id = x + 8y, lane = linear % 32; broadcast from lane 0 of each warp */
    unsigned lin = threadIdx.x + threadIdx.y * blockDim.x;
    out[lin] = __shfl_sync(0xffffffffu, (int)lin, 0);
}

__global__ void k_relaxed(int *out)
{
    unsigned t = threadIdx.x;
    if (t == 36) return;          /* warp 1 of a 40-thread block: lanes 0..7, lane 4 exits */
    __syncwarp();
    out[t] = __reduce_add_sync(__activemask(), 1u);
}

/* ================================================================ tests */

static void test_index_3d()
{
    begin("index variables over a 3-D grid of 3-D blocks");
    dim3 grid(3, 2, 2), block(4, 3, 2);
    const unsigned nb = 12, nt = 24;
    Idx *d = nullptr;
    CHECK_EQ(cudaSuccess, cudaMalloc(&d, sizeof(Idx) * nb * nt));
    vppo_emu_launch(grid, block, 0, [=] { k_index(d); });
    CHECK_EQ(cudaSuccess, cudaGetLastError());
    std::vector<Idx> h(nb * nt);
    CHECK_EQ(cudaSuccess, cudaMemcpy(h.data(), d, sizeof(Idx) * nb * nt, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (unsigned bz = 0; bz < 2; bz++)
        for (unsigned by = 0; by < 2; by++)
            for (unsigned bx = 0; bx < 3; bx++)
                for (unsigned tz = 0; tz < 2; tz++)
                    for (unsigned ty = 0; ty < 3; ty++)
                        for (unsigned tx = 0; tx < 4; tx++) {
                            const Idx &v = h[(bx + by * 3 + bz * 6) * nt + tx + ty * 4 + tz * 12];
                            bad += !(v.tx == tx && v.ty == ty && v.tz == tz && v.bx == bx && v.by == by &&
                                     v.bz == bz && v.bdx == 4 && v.bdy == 3 && v.bdz == 2 && v.gdx == 3 &&
                                     v.gdy == 2 && v.gdz == 2);
                        }
    CHECK_EQ(0, bad);
    CHECK_EQ(cudaSuccess, cudaFree(d));
    dim3 def;
    CHECK(def.x == 1 && def.y == 1 && def.z == 1);
    dim3 one(7);
    CHECK(one.x == 7 && one.y == 1 && one.z == 1);
    CHECK_EQ(32, warpSize);
}

/* The approximate exponent: within 2^-22 of 2^x (float64 reference) and at that bound
   (not better) for non-integral x, exact for integral x, flush-to-zero of subnormal inputs
   and results, NaN and infinities as exp2f. */
static void test_ex2_approx()
{
    const double bound = std::ldexp(1.0, -22) + std::ldexp(1.0, -24);   /* the model's error, then rounding */
    double worst = 0.0;
    for (int i = -2000; i <= 2000; ++i) {
        const float x = (float)i * 0.0625f + 0.01f;
        const double ref = std::exp2((double)x), got = (double)vppo_emu_ex2_approx_ftz(x);
        const double rel = std::fabs(got - ref) / ref;
        CHECK(rel <= bound);
        if (rel > worst) worst = rel;
    }
    CHECK(worst > std::ldexp(1.0, -23));   /* modelled at the bound, not better */
    for (int i = -126; i <= 127; ++i) CHECK(vppo_emu_ex2_approx_ftz((float)i) == std::ldexp(1.0f, i));
    CHECK(vppo_emu_ex2_approx_ftz(-126.5f) == 0.0f);             /* subnormal result flushed */
    CHECK(vppo_emu_ex2_approx_ftz(-200.0f) == 0.0f);
    CHECK(vppo_emu_ex2_approx_ftz(1e-40f) == 1.0f);              /* subnormal input read as 0 */
    CHECK(vppo_emu_ex2_approx_ftz(-INFINITY) == 0.0f);
    CHECK(std::isinf(vppo_emu_ex2_approx_ftz(INFINITY)));
    CHECK(std::isinf(vppo_emu_ex2_approx_ftz(200.0f)));
    CHECK(std::isnan(vppo_emu_ex2_approx_ftz(NAN)));
}

static void test_block_reduction_all_seeds()
{
    begin("block reduction with __syncthreads: right for every seed and block size");
    const int n = 1024, blocks = 3;
    std::vector<int> h(n * blocks);
    for (int i = 0; i < n * blocks; i++) h[i] = i % 1000 - 300;
    int *din = nullptr, *dout = nullptr;
    CHECK_EQ(cudaSuccess, cudaMalloc(&din, sizeof(int) * n * blocks));
    CHECK_EQ(cudaSuccess, cudaMalloc(&dout, sizeof(int) * blocks));
    CHECK_EQ(cudaSuccess, cudaMemcpy(din, h.data(), sizeof(int) * n * blocks, cudaMemcpyHostToDevice));
    int bad = 0;
    unsigned long long seed0 = vppo_emu_get_seed();
    for (unsigned long long seed = 1; seed <= 12; seed++) {
        vppo_emu_set_seed(seed);
        for (int bs = 32; bs <= n; bs *= 2) {
            vppo_emu_launch(dim3(blocks), dim3(bs), 0, [=] { k_block_sum(din, dout); });
            int got[blocks];
            cudaMemcpy(got, dout, sizeof got, cudaMemcpyDeviceToHost);
            for (int b = 0; b < blocks; b++) {
                long long want = 0;
                for (int k = 0; k < bs; k++) want += h[b * bs + k];
                bad += got[b] != want;
            }
        }
    }
    vppo_emu_set_seed(seed0);
    CHECK_EQ(0, bad);
    CHECK_EQ(cudaSuccess, cudaGetLastError());
    cudaFree(din);
    cudaFree(dout);
}

static void test_missing_barrier_shows()
{
    begin("a missing __syncthreads changes the result between seeds; with it, never");
    int *d = nullptr;
    CHECK_EQ(cudaSuccess, cudaMalloc(&d, sizeof(int) * 64));
    std::set<std::vector<int>> racy, fixed;
    unsigned long long seed0 = vppo_emu_get_seed();
    for (unsigned long long seed = 1; seed <= 16; seed++) {
        vppo_emu_set_seed(seed);
        std::vector<int> h(64);
        vppo_emu_launch(dim3(1), dim3(64), 0, [=] { k_neighbour(d, 0); });
        cudaMemcpy(h.data(), d, sizeof(int) * 64, cudaMemcpyDeviceToHost);
        racy.insert(h);
        vppo_emu_launch(dim3(1), dim3(64), 0, [=] { k_neighbour(d, 1); });
        cudaMemcpy(h.data(), d, sizeof(int) * 64, cudaMemcpyDeviceToHost);
        fixed.insert(h);
    }
    vppo_emu_set_seed(seed0);
    std::printf("   %zu different results from 16 seeds without the barrier\n", racy.size());
    CHECK(racy.size() >= 2);
    CHECK_EQ(1, (long long)fixed.size());
    std::vector<int> want(64);
    for (int t = 0; t < 64; t++) want[t] = (t + 1) % 64 + 1;
    CHECK(*fixed.begin() == want);
    cudaFree(d);
}

static unsigned ballot_ref(unsigned mask, bool (*pred)(unsigned))
{
    unsigned m = 0;
    for (unsigned j = 0; j < 32; j++)
        if ((mask >> j & 1u) && pred(j)) m |= 1u << j;
    return m;
}
static bool every_third(unsigned j) { return j % 3 == 0; }
static bool odd(unsigned j) { return j % 2 == 1; }

static void test_shuffles()
{
    begin("shuffles, ballot, any/all, match, reduce on a full warp");
    float *fs; double *ds; int *dn, *sc, *bc, *sg, *aa, *x16; unsigned *bl, *ma, *rd;
    cudaMalloc(&fs, 128); cudaMalloc(&ds, 256); cudaMalloc(&dn, 128); cudaMalloc(&sc, 128);
    cudaMalloc(&bc, 128); cudaMalloc(&sg, 128); cudaMalloc(&bl, 128); cudaMalloc(&aa, 128);
    cudaMalloc(&x16, 128); cudaMalloc(&ma, 128); cudaMalloc(&rd, 128);
    vppo_emu_launch(dim3(1), dim3(32), 0, [=] { k_shuffles(fs, ds, dn, sc, bc, sg, bl, aa, x16, ma, rd); });
    CHECK_EQ(cudaSuccess, cudaGetLastError());
    float hf[32]; double hd[32]; int hdn[32], hsc[32], hbc[32], hsg[32], haa[32], hx[32]; unsigned hbl[32], hma[32], hrd[32];
    cudaMemcpy(hf, fs, 128, cudaMemcpyDeviceToHost); cudaMemcpy(hd, ds, 256, cudaMemcpyDeviceToHost);
    cudaMemcpy(hdn, dn, 128, cudaMemcpyDeviceToHost); cudaMemcpy(hsc, sc, 128, cudaMemcpyDeviceToHost);
    cudaMemcpy(hbc, bc, 128, cudaMemcpyDeviceToHost); cudaMemcpy(hsg, sg, 128, cudaMemcpyDeviceToHost);
    cudaMemcpy(hbl, bl, 128, cudaMemcpyDeviceToHost); cudaMemcpy(haa, aa, 128, cudaMemcpyDeviceToHost);
    cudaMemcpy(hx, x16, 128, cudaMemcpyDeviceToHost); cudaMemcpy(hma, ma, 128, cudaMemcpyDeviceToHost);
    cudaMemcpy(hrd, rd, 128, cudaMemcpyDeviceToHost);
    int bad_f = 0, bad_d = 0, bad_scan = 0, bad_bc = 0, bad_seg = 0, bad_bl = 0, bad_aa = 0, bad_x = 0, bad_m = 0, bad_r = 0;
    unsigned want_ballot = ballot_ref(0xffffffffu, every_third);
    for (int l = 0; l < 32; l++) {
        bad_f += hf[l] != 528.0f;            /* 1 + 2 + ... + 32, exact in float */
        bad_d += hd[l] != 264.0;             /* 0.5 * 528 */
        bad_scan += hsc[l] != (l + 1) * (l + 2) / 2;
        bad_bc += hbc[l] != 70;
        bad_seg += hsg[l] != (l & ~7) + 3;
        bad_bl += hbl[l] != want_ballot;
        bad_aa += haa[l] != (1 + 2);         /* any(lane==17), all(lane<32); not all(lane<31), not any(0) */
        int base16 = l & 16, sum16 = 0;
        for (int k = 0; k < 16; k++) sum16 += base16 + k;
        bad_x += hx[l] != sum16;
        unsigned m = 0;
        for (int k = 0; k < 32; k++) if (k % 4 == l % 4) m |= 1u << k;
        bad_m += hma[l] != m;
        bad_r += hrd[l] != 496u + 1000u * 26u;
    }
    CHECK_EQ(0, bad_f); CHECK_EQ(0, bad_d); CHECK_EQ(0, bad_scan); CHECK_EQ(0, bad_bc); CHECK_EQ(0, bad_seg);
    CHECK_EQ(0, bad_bl); CHECK_EQ(0, bad_aa); CHECK_EQ(0, bad_x); CHECK_EQ(0, bad_m); CHECK_EQ(0, bad_r);
    CHECK_EQ(496, hdn[0]);                   /* shfl_down tree: lane 0 holds 0 + ... + 31 */
    for (void *p : {(void *)fs, (void *)ds, (void *)dn, (void *)sc, (void *)bc, (void *)sg, (void *)bl,
                    (void *)aa, (void *)x16, (void *)ma, (void *)rd})
        cudaFree(p);
}

static void test_partial_warp()
{
    begin("a partial last warp with the right mask; 2-D block lanes; poison from a lane outside mask");
    int *d = nullptr;
    cudaMalloc(&d, sizeof(int) * 96);
    vppo_emu_launch(dim3(1), dim3(48), 0, [=] { k_partial(d); });
    CHECK_EQ(cudaSuccess, cudaGetLastError());
    int h[96];
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    int bad = 0;
    for (int t = 0; t < 48; t++) {
        int want = t < 32 ? 496 : (32 + 47) * 16 / 2;
        unsigned wb = ballot_ref(t < 32 ? 0xffffffffu : 0xffffu, odd);
        bad += h[t] != want || (unsigned)h[48 + t] != wb;
    }
    CHECK_EQ(0, bad);
    cudaFree(d);

    int *d2 = nullptr;
    cudaMalloc(&d2, sizeof(int) * 64);
    vppo_emu_launch(dim3(1), dim3(8, 8), 0, [=] { k_2d_lanes(d2); });
    int h2[64];
    cudaMemcpy(h2, d2, sizeof h2, cudaMemcpyDeviceToHost);
    int bad2 = 0;
    for (int i = 0; i < 64; i++) bad2 += h2[i] != (i / 32) * 32;
    CHECK_EQ(0, bad2);
    cudaFree(d2);

    float *f = nullptr;
    cudaMalloc(&f, sizeof(float) * 16);
    vppo_emu_launch(dim3(1), dim3(32), 0, [=] { k_poison(f); });
    float hf[16];
    cudaMemcpy(hf, f, sizeof hf, cudaMemcpyDeviceToHost);
    int poisoned = 0;
    for (int l = 0; l < 16; l++) poisoned += __float_as_uint(hf[l]) == 0x7FC0A5A5u && std::isnan(hf[l]);
    CHECK_EQ(16, poisoned);
    cudaFree(f);
}

static void test_warp_errors()
{
    begin("warp collective errors: missing lanes, exited lanes, mismatched calls, caller not in mask");
    int *d = nullptr;
    cudaMalloc(&d, sizeof(int) * 64);
    struct Case { const char *what; int threads; void (*k)(int *); };
    const Case cases[] = {
        {"mask names lanes of a partial warp that do not exist", 40, k_partial_fullmask},
        {"mask names an exited lane", 32, k_exited_lane},
        {"lanes reach different collectives", 32, k_mismatch},
        {"calling lane not in mask", 32, k_not_in_mask},
    };
    for (const Case &c : cases) {
        std::printf("   (expected error) %s\n", c.what);
        ExpectErrors e;
        void (*k)(int *) = c.k;
        vppo_emu_launch(dim3(1), dim3((unsigned)c.threads), 0, [=] { k(d); });
        CHECK_EQ(1, e.count());
        CHECK_EQ(cudaErrorLaunchFailure, cudaGetLastError());
    }
    /* relaxed masks: exited and missing lanes are left out */
    vppo_emu_set_strict_mask(0);
    {
        ExpectErrors e;
        vppo_emu_launch(dim3(1), dim3(40), 0, [=] { k_relaxed(d); });
        CHECK_EQ(0, e.count());
        CHECK_EQ(cudaSuccess, cudaGetLastError());
        int h[40];
        cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
        int bad = 0;
        for (int t = 0; t < 40; t++) if (t != 36) bad += h[t] != (t < 32 ? 32 : 7);
        CHECK_EQ(0, bad);
    }
    vppo_emu_set_strict_mask(1);
    cudaFree(d);
}

static void test_strict_exit_and_deadlock()
{
    begin("__syncthreads after a thread exited; a deadlock; an exception; divergent barriers: each abandons the launch");
    int *d = nullptr;
    cudaMalloc(&d, sizeof(int) * 64);
    long launches = vppo_emu_launch_count();
    {
        std::printf("   (expected error) strict exit\n");
        ExpectErrors e;
        vppo_emu_launch(dim3(2), dim3(32), 0, [=] { k_strict_exit(d); });
        CHECK_EQ(1, e.count());
        CHECK_EQ(cudaErrorLaunchFailure, cudaGetLastError());
        CHECK_EQ(cudaSuccess, cudaGetLastError());   /* reported once */
    }
    {
        std::printf("   (expected error) deadlock\n");
        ExpectErrors e;
        vppo_emu_launch_named("k_deadlock", dim3(3), dim3(32), 0, [=] { k_deadlock(d); });
        CHECK_EQ(1, e.count());
        CHECK_EQ(cudaErrorLaunchFailure, cudaDeviceSynchronize());   /* reported by the sync... */
        CHECK_EQ(cudaSuccess, cudaGetLastError());                   /* ...and only there */
    }
    {
        std::printf("   (expected error) exception\n");
        ExpectErrors e;
        vppo_emu_launch(dim3(1), dim3(8), 0, [=] { k_throw(d); });
        CHECK_EQ(1, e.count());
        CHECK_EQ(cudaErrorLaunchFailure, cudaGetLastError());
    }
    {
        std::printf("   (expected error) threads at different __syncthreads\n");
        ExpectErrors e;
        vppo_emu_launch(dim3(1), dim3(64), 0, [=] { k_divergent_sites(d); });
        CHECK_EQ(1, e.count());
        CHECK_EQ(cudaErrorLaunchFailure, cudaGetLastError());
        vppo_emu_set_barrier_sites(0);        /* counted like sm_70+ hardware does */
        vppo_emu_launch(dim3(1), dim3(64), 0, [=] { k_divergent_sites(d); });
        vppo_emu_set_barrier_sites(1);
        CHECK_EQ(1, e.count());
        CHECK_EQ(cudaSuccess, cudaGetLastError());
        int h[64];
        cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
        int bad = 0;
        for (int t = 0; t < 64; t++) bad += h[t] != 63 - t;
        CHECK_EQ(0, bad);
    }
    CHECK_EQ(launches + 5, vppo_emu_launch_count());
    /* the emulator still works afterwards */
    int *in = nullptr, *out = nullptr;
    cudaMalloc(&in, sizeof(int) * 64);
    cudaMalloc(&out, sizeof(int));
    std::vector<int> h(64, 2);
    cudaMemcpy(in, h.data(), sizeof(int) * 64, cudaMemcpyHostToDevice);
    vppo_emu_launch(dim3(1), dim3(64), 0, [=] { k_block_sum(in, out); });
    int s = 0;
    cudaMemcpy(&s, out, sizeof s, cudaMemcpyDeviceToHost);
    CHECK_EQ(128, s);
    cudaFree(in); cudaFree(out); cudaFree(d);
}

static void test_sync_variants()
{
    begin("__syncthreads_count/_and/_or");
    int *d = nullptr;
    cudaMalloc(&d, sizeof(int) * 5);
    vppo_emu_launch(dim3(1), dim3(100), 0, [=] { k_sync_variants(d); });
    int h[5];
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    CHECK_EQ(34, h[0]);   /* multiples of 3 in [0, 100) */
    CHECK_EQ(0, h[1]);
    CHECK_EQ(1, h[2]);
    CHECK_EQ(1, h[3]);
    CHECK_EQ(0, h[4]);
    cudaFree(d);
}

static void test_atomics()
{
    begin("atomics");
    const unsigned B = 4, T = 250, N = B * T;
    int hi[6] = {0, 0, -1000000, 1000000, 0, 0};
    unsigned hu[8] = {0, 0, 0xffffffffu, 0, 0, 0, 0, 0xffffffffu};
    unsigned long long hull[2] = {0, 0};
    float hf[2] = {0, 0};
    double hd[1] = {0};
    long long hll[2] = {0, -5};
    int *i; unsigned *u; unsigned long long *ull; float *f; double *dd; long long *ll;
    cudaMalloc(&i, sizeof hi); cudaMalloc(&u, sizeof hu); cudaMalloc(&ull, sizeof hull);
    cudaMalloc(&f, sizeof hf); cudaMalloc(&dd, sizeof hd); cudaMalloc(&ll, sizeof hll);
    cudaMemcpy(i, hi, sizeof hi, cudaMemcpyHostToDevice); cudaMemcpy(u, hu, sizeof hu, cudaMemcpyHostToDevice);
    cudaMemcpy(ull, hull, sizeof hull, cudaMemcpyHostToDevice); cudaMemcpy(f, hf, sizeof hf, cudaMemcpyHostToDevice);
    cudaMemcpy(dd, hd, sizeof hd, cudaMemcpyHostToDevice); cudaMemcpy(ll, hll, sizeof hll, cudaMemcpyHostToDevice);
    vppo_emu_launch(dim3(B), dim3(T), 0, [=] { k_atomics(i, u, ull, f, dd, ll); });
    CHECK_EQ(cudaSuccess, cudaGetLastError());
    cudaMemcpy(hi, i, sizeof hi, cudaMemcpyDeviceToHost); cudaMemcpy(hu, u, sizeof hu, cudaMemcpyDeviceToHost);
    cudaMemcpy(hull, ull, sizeof hull, cudaMemcpyDeviceToHost); cudaMemcpy(hf, f, sizeof hf, cudaMemcpyDeviceToHost);
    cudaMemcpy(hd, dd, sizeof hd, cudaMemcpyDeviceToHost); cudaMemcpy(hll, ll, sizeof hll, cudaMemcpyDeviceToHost);
    CHECK_EQ((long long)N * (N - 1) / 2, hi[0]);
    CHECK_EQ(-2 * (long long)N, hi[1]);
    CHECK_EQ((long long)N - 1 - 500, hi[2]);
    CHECK_EQ(1000 - ((long long)N - 1), hi[3]);
    CHECK_EQ(3 * N, hu[0]);
    CHECK_EQ(0xffffffffu, hu[1]);
    CHECK_EQ(0xffff0000u, hu[2]);
    unsigned want_xor = 0;
    for (unsigned t = 0; t < N; t++) want_xor ^= 1u << (t % 8);
    CHECK_EQ(want_xor, hu[3]);
    CHECK_EQ(N % 10, hu[4]);                 /* atomicInc(.., 9) counts modulo 10 */
    /* atomicDec(.., 6) from 0: 0 -> 6 -> 5 ... -> 0 -> 6: period 7, N steps */
    CHECK_EQ((7 - N % 7) % 7, hu[5]);
    CHECK_EQ(N - 1, hu[6]);
    CHECK_EQ(7u, hu[7]);
    CHECK(hull[0] == (unsigned long long)N << 33);
    CHECK(hull[1] == 3ull * (N - 1));
    CHECK(hf[0] == 0.5f * N);
    CHECK(hd[0] == 0.25 * N);
    CHECK(hll[0] == -(long long)(N - 1) * 4000000000ll);
    CHECK(hll[1] == (long long)N - 1);
    CHECK_EQ((long long)N, hi[4]);
    CHECK_EQ(42, hi[5]);
    CHECK(hf[1] == 2.5f);
    cudaFree(i); cudaFree(u); cudaFree(ull); cudaFree(f); cudaFree(dd); cudaFree(ll);
}

static void test_launch_config_errors()
{
    begin("launch configuration errors: the kernel does not run, cudaGetLastError says why");
    int *flag = nullptr;
    cudaMalloc(&flag, sizeof(int));
    cudaMemset(flag, 0, sizeof(int));
    struct Bad { dim3 g, b; };
    const Bad bad[] = {
        {dim3(1), dim3(0)}, {dim3(0), dim3(32)}, {dim3(1), dim3(1025)}, {dim3(1), dim3(32, 32, 2)},
        {dim3(1), dim3(1, 1, 65)}, {dim3(1, 65536), dim3(32)}, {dim3(1, 1, 65536), dim3(32)},
        {dim3(0x80000000u), dim3(32)}, {dim3(1), dim3(2048, 1, 1)},
    };
    for (const Bad &c : bad) {
        vppo_emu_launch(c.g, c.b, 0, [=] { k_flag(flag); });
        CHECK_EQ(cudaErrorInvalidConfiguration, cudaGetLastError());
    }
    cudaStream_t s = nullptr;
    CHECK_EQ(cudaSuccess, cudaStreamCreate(&s));
    CHECK_EQ(cudaSuccess, cudaStreamDestroy(s));
    vppo_emu_launch(dim3(1), dim3(32), s, [=] { k_flag(flag); });
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaGetLastError());
    int junk[4] = {0, 0, 0, 0};
    vppo_emu_launch(dim3(1), dim3(32), reinterpret_cast<cudaStream_t>(junk), [=] { k_flag(flag); });
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaPeekAtLastError());
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaGetLastError());
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaStreamDestroy(s));
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaGetLastError());
    int h = -1;
    cudaMemcpy(&h, flag, sizeof h, cudaMemcpyDeviceToHost);
    CHECK_EQ(0, h);
    /* limits are allowed */
    vppo_emu_launch(dim3(1), dim3(1, 1, 64), cudaStreamLegacy, [=] { k_flag(flag); });
    vppo_emu_launch(dim3(1, 65535), dim3(1), cudaStreamPerThread, [=] { k_flag(flag); });
    cudaStream_t s2;
    cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking);
    vppo_emu_launch(dim3(1), dim3(1024), s2, [=] { k_flag(flag); });
    CHECK_EQ(cudaSuccess, cudaGetLastError());
    CHECK_EQ(cudaSuccess, cudaStreamSynchronize(s2));
    CHECK_EQ(cudaSuccess, cudaStreamDestroy(s2));
    cudaMemcpy(&h, flag, sizeof h, cudaMemcpyDeviceToHost);
    CHECK_EQ(3, h);
    {
        std::printf("   (expected error) dynamic shared memory\n");
        ExpectErrors e;
        vppo_emu_launch(dim3(1), dim3(32), (size_t)128, nullptr, [=] { k_flag(flag); });
        CHECK_EQ(1, e.count());
        CHECK_EQ(cudaErrorNotSupported, cudaGetLastError());
    }
    cudaFree(flag);
}

static void test_canaries()
{
    begin("canaries: damage found at cudaFree, after the launch that did it, by the hook");
    ExpectErrors e;
    unsigned char *p = nullptr;
    long live = vppo_emu_live_allocations();
    CHECK_EQ(cudaSuccess, cudaMalloc(&p, 100));
    CHECK_EQ(live + 1, vppo_emu_live_allocations());
    CHECK(((uintptr_t)p & 255u) == 0);
    unsigned char first = 0;
    cudaMemcpy(&first, p + 37, 1, cudaMemcpyDeviceToHost);
    CHECK_EQ(0xA5, first);                   /* fresh device memory is garbage */
    std::printf("   (expected error) rear canary\n");
    poke(p, 100, 0);
    CHECK_EQ(cudaSuccess, cudaFree(p));
    CHECK_EQ(1, e.count());
    std::printf("   (expected error) front canary\n");
    cudaMalloc(&p, 64);
    poke(p, -1, 0);
    CHECK_EQ(1, vppo_emu_check_canaries());
    CHECK_EQ(2, e.count());
    CHECK_EQ(0, vppo_emu_check_canaries());  /* reported once, then repaired */
    std::printf("   (expected error) a kernel writes one byte past the end\n");
    vppo_emu_launch_named("k_overflow", dim3(1), dim3(32), 0, [=] { k_overflow(p, 64); });
    CHECK_EQ(3, e.count());
    CHECK_EQ(cudaSuccess, cudaFree(p));
    CHECK_EQ(3, e.count());
    CHECK_EQ(live, vppo_emu_live_allocations());
    std::printf("   (expected error) written after free\n");
    unsigned char *q = nullptr;
    cudaMalloc(&q, 256);
    cudaFree(q);
    poke(q, 10, 1);
    CHECK_EQ(1, vppo_emu_flush_quarantine());
    CHECK_EQ(4, e.count());
}

static void test_free_errors()
{
    begin("freeing what is not a live allocation");
    ExpectErrors e;
    void *p = nullptr;
    cudaMalloc(&p, 32);
    CHECK_EQ(cudaSuccess, cudaFree(p));
    std::printf("   (expected errors) double free, interior pointer, host pointer\n");
    CHECK_EQ(cudaErrorInvalidValue, cudaFree(p));
    CHECK_EQ(1, e.count());
    cudaMalloc(&p, 32);
    CHECK_EQ(cudaErrorInvalidValue, cudaFree((char *)p + 4));
    int host = 0;
    CHECK_EQ(cudaErrorInvalidValue, cudaFree(&host));
    CHECK_EQ(3, e.count());
    CHECK_EQ(cudaErrorInvalidValue, cudaGetLastError());
    CHECK_EQ(cudaSuccess, cudaFree(nullptr));
    CHECK_EQ(cudaSuccess, cudaFree(p));
    CHECK_EQ(cudaErrorInvalidValue, cudaFreeHost(&host));
    CHECK_EQ(4, e.count());
    cudaGetLastError();
}

static void test_failure_injection()
{
    begin("failure injection: allocation, launch, memcpy");
    void *a = nullptr, *b = nullptr, *c = nullptr;
    vppo_emu_fail_alloc_after(1);
    CHECK_EQ(cudaSuccess, cudaMalloc(&a, 16));
    CHECK_EQ(cudaErrorMemoryAllocation, cudaMalloc(&b, 16));
    CHECK_EQ(cudaErrorMemoryAllocation, cudaGetLastError());
    CHECK_EQ(cudaSuccess, cudaMallocAsync(&c, 16, 0));
    CHECK_EQ(cudaSuccess, cudaFreeAsync(c, 0));
    vppo_emu_fail_alloc_after(0);
    CHECK_EQ(cudaErrorMemoryAllocation, cudaMallocAsync(&c, 16, 0));
    cudaGetLastError();
    vppo_emu_fail_alloc_after(5);
    vppo_emu_fail_alloc_after(-1);
    for (int k = 0; k < 7; k++) { void *t = nullptr; CHECK_EQ(cudaSuccess, cudaMalloc(&t, 8)); cudaFree(t); }

    int *flag = static_cast<int *>(a);
    cudaMemset(flag, 0, sizeof(int));
    vppo_emu_fail_launch_after(1);
    vppo_emu_launch(dim3(1), dim3(1), 0, [=] { k_flag(flag); });
    CHECK_EQ(cudaSuccess, cudaGetLastError());
    vppo_emu_launch(dim3(1), dim3(1), 0, [=] { k_flag(flag); });
    CHECK_EQ(cudaErrorLaunchFailure, cudaGetLastError());
    vppo_emu_launch(dim3(1), dim3(1), 0, [=] { k_flag(flag); });
    CHECK_EQ(cudaSuccess, cudaGetLastError());
    int h = 0;
    cudaMemcpy(&h, flag, sizeof h, cudaMemcpyDeviceToHost);
    CHECK_EQ(2, h);

    vppo_emu_fail_memcpy_after(0);
    int v = 77;
    CHECK_EQ(cudaErrorUnknown, cudaMemcpy(flag, &v, sizeof v, cudaMemcpyHostToDevice));
    CHECK_EQ(cudaErrorUnknown, cudaGetLastError());
    cudaMemcpy(&h, flag, sizeof h, cudaMemcpyDeviceToHost);
    CHECK_EQ(2, h);                           /* nothing was copied */
    vppo_emu_fail_memcpy_after(1);
    CHECK_EQ(cudaSuccess, cudaMemcpyAsync(flag, &v, sizeof v, cudaMemcpyHostToDevice, 0));
    CHECK_EQ(cudaErrorUnknown, cudaMemcpyAsync(&h, flag, sizeof h, cudaMemcpyDeviceToHost, 0));
    cudaGetLastError();
    CHECK_EQ(cudaSuccess, cudaMemcpy(&h, flag, sizeof h, cudaMemcpyDeviceToHost));
    CHECK_EQ(77, h);
    cudaFree(a);
}

static void test_graphs_and_counters()
{
    begin("host-work counters, stream capture and graphs");
    int *flag = nullptr, h = 0;
    void *t = nullptr;
    cudaStream_t s;
    cudaGraph_t g = nullptr, g2 = nullptr;
    cudaGraphExec_t e = nullptr;
    cudaStreamCaptureStatus cs;
    cudaMalloc(&flag, 2 * sizeof(int));
    cudaMemset(flag, 0, 2 * sizeof(int));
    cudaStreamCreate(&s);
    const long syncs = vppo_emu_sync_count(), allocs = vppo_emu_alloc_count(), copies = vppo_emu_blocking_copy_count();
    /* counted: synchronisations, allocations and frees, copies the host waits for */
    CHECK_EQ(cudaSuccess, cudaStreamSynchronize(s));
    CHECK_EQ(cudaSuccess, cudaDeviceSynchronize());
    CHECK_EQ(syncs + 2, vppo_emu_sync_count());
    CHECK_EQ(cudaSuccess, cudaMallocAsync(&t, 8, s));
    CHECK_EQ(cudaSuccess, cudaFreeAsync(t, s));
    CHECK_EQ(allocs + 2, vppo_emu_alloc_count());
    CHECK_EQ(cudaSuccess, cudaMemcpy(&h, flag, sizeof h, cudaMemcpyDeviceToHost));
    CHECK_EQ(cudaSuccess, cudaMemcpyAsync(&h, flag, sizeof h, cudaMemcpyDeviceToHost, s));   /* pageable */
    CHECK_EQ(cudaSuccess, cudaMemsetAsync(flag, 0, sizeof h, s));                          /* not counted */
    CHECK_EQ(copies + 2, vppo_emu_blocking_copy_count());

    /* captured operations do not run; each replay runs them in order */
    CHECK_EQ(cudaSuccess, cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK_EQ(cudaSuccess, cudaStreamIsCapturing(s, &cs));
    CHECK_EQ(cudaStreamCaptureStatusActive, cs);
    vppo_emu_launch(dim3(1), dim3(1), s, [=] { k_flag(flag); });
    CHECK_EQ(cudaSuccess, cudaMemsetAsync(flag + 1, 0x01, 1, s));
    CHECK_EQ(cudaSuccess, cudaStreamEndCapture(s, &g));
    CHECK_EQ(2, (long long)vppo_emu_graph_ops(g));
    CHECK_EQ(0, flag[0]);
    CHECK_EQ(0, flag[1]);
    CHECK_EQ(cudaSuccess, cudaGraphInstantiate(&e, g, 0));
    CHECK_EQ(cudaSuccess, cudaGraphLaunch(e, s));
    CHECK_EQ(cudaSuccess, cudaGraphLaunch(e, s));
    CHECK_EQ(cudaSuccess, cudaStreamSynchronize(s));
    CHECK_EQ(2, flag[0]);
    CHECK_EQ(1, flag[1]);

    /* refused: capturing the legacy stream; inside a capture, a synchronisation or an
       allocation (which invalidate it), except allocations in the relaxed mode */
    CHECK_EQ(cudaErrorStreamCaptureUnsupported, cudaStreamBeginCapture(0, cudaStreamCaptureModeGlobal));
    CHECK_EQ(cudaSuccess, cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK_EQ(cudaErrorStreamCaptureUnsupported, cudaStreamSynchronize(s));
    CHECK_EQ(cudaErrorStreamCaptureUnsupported, cudaMalloc(&t, 8));
    CHECK_EQ(cudaErrorStreamCaptureUnsupported, cudaMemcpy(&h, flag, sizeof h, cudaMemcpyDeviceToHost));
    CHECK_EQ(cudaSuccess, cudaStreamIsCapturing(s, &cs));
    CHECK_EQ(cudaStreamCaptureStatusInvalidated, cs);
    CHECK_EQ(cudaErrorStreamCaptureInvalidated, cudaStreamEndCapture(s, &g2));
    CHECK(g2 == nullptr);
    CHECK_EQ(cudaSuccess, cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    CHECK_EQ(cudaSuccess, cudaMalloc(&t, 8));
    CHECK_EQ(cudaSuccess, cudaFree(t));
    CHECK_EQ(cudaSuccess, cudaStreamEndCapture(s, &g2));
    CHECK_EQ(0, (long long)vppo_emu_graph_ops(g2));
    CHECK_EQ(cudaErrorIllegalState, cudaStreamEndCapture(s, &g2));   /* not capturing */
    CHECK_EQ(cudaSuccess, cudaGraphDestroy(g2));
    CHECK_EQ(cudaSuccess, cudaGraphExecDestroy(e));
    CHECK_EQ(cudaSuccess, cudaGraphDestroy(g));
    CHECK_EQ(cudaErrorInvalidValue, cudaGraphDestroy(g));
    cudaGetLastError();
    cudaStreamDestroy(s);
    cudaFree(flag);
}

static void test_memcpy_checks()
{
    begin("memcpy/memset range and kind checks");
    ExpectErrors e;
    unsigned char *d = nullptr;
    cudaMalloc(&d, 64);
    std::vector<unsigned char> h(128, 3);
    CHECK_EQ(cudaSuccess, cudaMemcpy(d, h.data(), 64, cudaMemcpyHostToDevice));
    CHECK_EQ(cudaSuccess, cudaMemcpy(d + 32, h.data(), 32, cudaMemcpyHostToDevice));
    CHECK_EQ(0, e.count());
    std::printf("   (expected errors) out of range, canary zone, wrong kinds, freed, memset\n");
    CHECK_EQ(cudaErrorInvalidValue, cudaMemcpy(d + 32, h.data(), 33, cudaMemcpyHostToDevice));
    CHECK_EQ(1, e.count());
    CHECK_EQ(cudaErrorInvalidValue, cudaMemcpy(h.data(), d, 65, cudaMemcpyDeviceToHost));
    CHECK_EQ(2, e.count());
    CHECK_EQ(cudaErrorInvalidValue, cudaMemcpy(h.data(), d - 8, 8, cudaMemcpyDeviceToHost));
    CHECK_EQ(3, e.count());
    CHECK_EQ(cudaErrorInvalidValue, cudaMemcpy(d, h.data(), 16, cudaMemcpyDeviceToHost));   /* kind swapped */
    CHECK_EQ(5, e.count());                   /* destination is device, source is host */
    CHECK_EQ(cudaErrorInvalidValue, cudaMemcpy(h.data(), h.data() + 64, 16, cudaMemcpyDeviceToDevice));
    CHECK_EQ(7, e.count());
    CHECK_EQ(cudaErrorInvalidValue, cudaMemset(d + 60, 0, 5));
    CHECK_EQ(8, e.count());
    CHECK_EQ(cudaErrorInvalidMemcpyDirection, cudaMemcpy(d, h.data(), 4, (cudaMemcpyKind)7));
    CHECK_EQ(8, e.count());
    /* cudaMemcpyDefault infers the direction */
    unsigned char *d2 = nullptr;
    cudaMalloc(&d2, 64);
    for (int k = 0; k < 64; k++) h[k] = (unsigned char)k;
    CHECK_EQ(cudaSuccess, cudaMemcpy(d, h.data(), 64, cudaMemcpyDefault));
    CHECK_EQ(cudaSuccess, cudaMemcpy(d2, d, 64, cudaMemcpyDefault));
    std::vector<unsigned char> back(64, 0);
    CHECK_EQ(cudaSuccess, cudaMemcpy(back.data(), d2, 64, cudaMemcpyDefault));
    int diff = 0;
    for (int k = 0; k < 64; k++) diff += back[k] != k;
    CHECK_EQ(0, diff);
    CHECK_EQ(cudaSuccess, cudaMemset(d2, 0x5A, 64));
    CHECK_EQ(cudaSuccess, cudaMemcpy(back.data(), d2, 64, cudaMemcpyDeviceToHost));
    CHECK_EQ(0x5A, back[63]);
    CHECK(vppo_emu_is_device_pointer(d2 + 63));
    CHECK(!vppo_emu_is_device_pointer(d2 + 64));
    CHECK(!vppo_emu_is_device_pointer(h.data()));
    cudaFree(d2);
    CHECK_EQ(cudaErrorInvalidValue, cudaMemcpy(d2, h.data(), 4, cudaMemcpyHostToDevice));   /* freed */
    CHECK_EQ(9, e.count());
    CHECK_EQ(cudaSuccess, cudaMemcpy(d2, h.data(), 0, cudaMemcpyHostToDevice));           /* 0 bytes */
    cudaFree(d);
    cudaGetLastError();
}

static void test_pinned_deferred()
{
    begin("device-to-pinned async copies complete at the synchronisation");
    int *d = nullptr, *pinned = nullptr;
    cudaMalloc(&d, sizeof(int) * 8);
    CHECK_EQ(cudaSuccess, cudaMallocHost(&pinned, sizeof(int) * 8));
    int src[8], pageable[8];
    for (int k = 0; k < 8; k++) src[k] = 100 + k;
    cudaMemcpy(d, src, sizeof src, cudaMemcpyHostToDevice);
    cudaStream_t s;
    cudaStreamCreate(&s);
    CHECK_EQ(cudaSuccess, cudaMemcpyAsync(pinned, d, sizeof src, cudaMemcpyDeviceToHost, s));
    CHECK(pinned[0] == (int)0xA5A5A5A5);      /* not there yet */
    CHECK_EQ(cudaSuccess, cudaMemcpyAsync(pageable, d, sizeof src, cudaMemcpyDeviceToHost, s));
    CHECK_EQ(107, pageable[7]);               /* pageable: synchronous, as in CUDA */
    CHECK_EQ(cudaSuccess, cudaStreamSynchronize(s));
    CHECK_EQ(100, pinned[0]);
    CHECK_EQ(107, pinned[7]);
    cudaEvent_t ev;
    cudaEventCreate(&ev);
    cudaMemset(d, 0, sizeof(int) * 8);
    cudaMemcpyAsync(pinned, d, sizeof src, cudaMemcpyDeviceToHost, s);
    cudaEventRecord(ev, s);
    CHECK_EQ(cudaSuccess, cudaEventSynchronize(ev));
    CHECK_EQ(0, pinned[3]);
    cudaEventDestroy(ev);
    cudaStreamDestroy(s);
    CHECK_EQ(cudaSuccess, cudaFreeHost(pinned));
    cudaFree(d);
}

static void test_events()
{
    begin("events");
    cudaEvent_t a, b, c, nt;
    CHECK_EQ(cudaSuccess, cudaEventCreate(&a));
    CHECK_EQ(cudaSuccess, cudaEventCreate(&b));
    CHECK_EQ(cudaSuccess, cudaEventCreate(&c));
    CHECK_EQ(cudaSuccess, cudaEventCreateWithFlags(&nt, cudaEventDisableTiming));
    int *d = nullptr;
    cudaMalloc(&d, sizeof(int) * 256);
    CHECK_EQ(cudaSuccess, cudaEventRecord(a, 0));
    vppo_emu_launch(dim3(64), dim3(256), 0, [=] { k_many(d); });
    CHECK_EQ(cudaSuccess, cudaEventRecord(b));
    CHECK_EQ(cudaSuccess, cudaEventSynchronize(b));
    float ms = -1.0f;
    CHECK_EQ(cudaSuccess, cudaEventElapsedTime(&ms, a, b));
    std::printf("   64 blocks of 256 threads: %.3f ms\n", ms);
    CHECK(ms > 0.0f && ms < 60000.0f);
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&ms, a, c));   /* c never recorded */
    cudaEventRecord(nt, 0);
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaEventElapsedTime(&ms, a, nt));
    CHECK_EQ(cudaSuccess, cudaEventDestroy(c));
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaEventDestroy(c));
    CHECK_EQ(cudaErrorInvalidResourceHandle, cudaEventRecord(c, 0));
    cudaGetLastError();
    cudaEventDestroy(a); cudaEventDestroy(b); cudaEventDestroy(nt);
    cudaFree(d);
}

static void test_big_blocks()
{
    begin("1024-thread blocks in 1-, 2- and 3-D shapes");
    const dim3 shapes[] = {dim3(1024), dim3(32, 32), dim3(8, 8, 16)};
    Idx *d = nullptr;
    cudaMalloc(&d, sizeof(Idx) * 2048);
    for (const dim3 &b : shapes) {
        vppo_emu_launch(dim3(2), b, 0, [=] { k_index(d); });
        CHECK_EQ(cudaSuccess, cudaGetLastError());
        std::vector<Idx> h(2048);
        cudaMemcpy(h.data(), d, sizeof(Idx) * 2048, cudaMemcpyDeviceToHost);
        int bad = 0;
        for (unsigned i = 0; i < 2048; i++) {
            unsigned t = i % 1024;
            bad += !(h[i].bx == i / 1024 && h[i].tx == t % b.x && h[i].ty == (t / b.x) % b.y &&
                     h[i].tz == t / (b.x * b.y));
        }
        CHECK_EQ(0, bad);
    }
    cudaFree(d);
}

static void test_many_blocks_speed()
{
    begin("a grid of many blocks, and the thread-switch rate");
    const unsigned blocks = 4096, threads = 256;
    int *d = nullptr;
    cudaMalloc(&d, sizeof(int) * blocks);
    unsigned long long s0 = vppo_emu_switch_count();
    auto t0 = std::chrono::steady_clock::now();
    vppo_emu_launch(dim3(blocks), dim3(threads), 0, [=] { k_many(d); });
    auto t1 = std::chrono::steady_clock::now();
    unsigned long long sw = vppo_emu_switch_count() - s0;
    double sec = std::chrono::duration<double>(t1 - t0).count();
    std::vector<int> h(blocks);
    cudaMemcpy(h.data(), d, sizeof(int) * blocks, cudaMemcpyDeviceToHost);
    int bad = 0;
    for (unsigned b = 0; b < blocks; b++) bad += h[b] != (int)(b * threads + threads * (threads - 1) / 2);
    CHECK_EQ(0, bad);
    CHECK_EQ(2ull * blocks * threads, sw);   /* every thread: one resume to start, one after the barrier */
    double rate = (double)sw / sec;
    std::printf("   %llu thread switches in %.3f s: %.2f M/s\n", sw, sec, rate / 1e6);
#ifdef VPPO_EMU_ASAN
    std::printf("   SKIP (not counted): the 1 M/s target is for builds without AddressSanitizer\n");
#else
    if (vppo_emu_uses_ucontext())
        std::printf("   SKIP (not counted): the 1 M/s target is for the assembly switch, not swapcontext\n");
    else
        CHECK(rate >= 1e6);
#endif
    cudaFree(d);
}

static void test_shared_fill()
{
    begin("__shared__ memory starts as garbage in every block");
    unsigned *d = nullptr;
    cudaMalloc(&d, sizeof(unsigned) * 8);
    vppo_emu_launch(dim3(8), dim3(32), 0, [=] { k_shared_start(d); });
    unsigned h[8];
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    int ff = 0, sf = 0;
    for (int b = 0; b < 8; b++) { ff += h[b] == 0xFFFFFFFFu; sf += h[b] == 0x7F7F7F7Fu; }
    CHECK_EQ(8, ff + sf);
    CHECK(ff > 0 && sf > 0);
    cudaFree(d);
}

static void test_intrinsics()
{
    begin("intrinsics against their definitions");
    unsigned xs[] = {0u, 1u, 2u, 3u, 0x80000000u, 0xffffffffu, 0x12345678u, 0xdeadbeefu, 0x00010000u};
    int bad = 0;
    for (unsigned x : xs) {
        int pc = 0, clz = 32, ffs = 0;
        unsigned rev = 0;
        for (int k = 0; k < 32; k++) {
            if (x >> k & 1u) { pc++; rev |= 1u << (31 - k); if (!ffs) ffs = k + 1; }
        }
        for (int k = 31; k >= 0; k--) if (x >> k & 1u) { clz = 31 - k; break; }
        bad += __popc(x) != pc || __brev(x) != rev || __clz((int)x) != clz || __ffs((int)x) != ffs;
        for (unsigned y : xs) {
            bad += __umulhi(x, y) != (unsigned)(((unsigned long long)x * y) >> 32);
            /* 64x64 high half from 32-bit limbs */
            unsigned long long a = ((unsigned long long)x << 32) | y, b = ((unsigned long long)y << 32) | (x ^ 0x5555u);
            unsigned long long a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
            unsigned long long p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
            unsigned long long mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
            unsigned long long hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
            bad += __umul64hi(a, b) != hi;
            bad += __popcll(a) != __popc((unsigned)(a >> 32)) + __popc((unsigned)a);
        }
    }
    CHECK_EQ(0, bad);
    CHECK_EQ(0x3f800000u, __float_as_uint(1.0f));
    CHECK(__uint_as_float(0xc0000000u) == -2.0f);
    CHECK_EQ(0x3ff0000000000000ll, __double_as_longlong(1.0));
    CHECK(__longlong_as_double(0x4000000000000000ll) == 2.0);
    CHECK_EQ(2, __float2int_rn(2.5f));
    CHECK_EQ(4, __float2int_rn(3.5f));
    CHECK_EQ(-2, __float2int_rz(-2.7f));
    CHECK_EQ(2147483647, __float2int_rn(1e10f));
    CHECK_EQ(-2147483647 - 1, __float2int_rn(-1e10f));
    CHECK_EQ(0, __float2int_rn(CUDART_NAN_F));
    CHECK_EQ(0u, __float2uint_rn(-3.0f));
    CHECK_EQ(64, __clzll(0));
    CHECK_EQ(0, __ffs(0));
    CHECK(__saturatef(1.5f) == 1.0f && __saturatef(-0.5f) == 0.0f && __saturatef(CUDART_NAN_F) == 0.0f);
    CHECK(std::isinf(CUDART_INF_F) && std::isnan(CUDART_NAN) && CUDART_PI == std::acos(-1.0));
    CHECK(std::fabs(__expf(1.0f) - 2.7182818f) < 1e-6f);
    CHECK(std::fabs(__logf(10.0f) - 2.3025851f) < 1e-6f);
    /* vector types: CUDA's sizes and alignments */
    static_assert(alignof(float4) == 16 && sizeof(float4) == 16, "float4");
    static_assert(alignof(float2) == 8 && alignof(int2) == 8 && alignof(uint2) == 8, "8-byte vectors");
    static_assert(alignof(int4) == 16 && alignof(uint4) == 16 && alignof(double2) == 16, "16-byte vectors");
    static_assert(alignof(longlong2) == 16 && alignof(ushort4) == 8 && alignof(char4) == 4, "vectors");
    static_assert(sizeof(float3) == 12 && sizeof(uint3) == 12, "3-vectors");
    float4 v = make_float4(1, 2, 3, 4);
    CHECK(v.x == 1 && v.w == 4);
}

static void test_half_types()
{
    begin("__half and __nv_bfloat16 conversions (all 65536 bit patterns and rounding)");
    int bad_h = 0, bad_b = 0;
    for (unsigned u = 0; u < 65536; u++) {
        /* reference decode from the IEEE binary16 definition */
        unsigned s = u >> 15, e = (u >> 10) & 31, m = u & 1023;
        double ref = e == 0 ? std::ldexp((double)m, -24) : e == 31 ? (m ? NAN : INFINITY)
                                                                    : std::ldexp(1024.0 + m, (int)e - 25);
        if (s) ref = -ref;
        float got = __half2float(__ushort_as_half((unsigned short)u));
        if (std::isnan(ref)) bad_h += !std::isnan(got);
        else bad_h += got != (float)ref || std::signbit(got) != (s != 0);
        /* bf16 is the top half of a float */
        float bref;
        unsigned bits = u << 16;
        std::memcpy(&bref, &bits, 4);
        float bgot = __bfloat162float(__ushort_as_bfloat16((unsigned short)u));
        bad_b += std::isnan(bref) ? !std::isnan(bgot) : std::memcmp(&bref, &bgot, 4) != 0;
        /* round trip of every non-NaN value */
        if (!std::isnan(ref)) bad_h += __half_as_ushort(__float2half((float)ref)) != u;
        if (!std::isnan(bref)) bad_b += __bfloat16_as_ushort(__float2bfloat16(bref)) != u;
    }
    CHECK_EQ(0, bad_h);
    CHECK_EQ(0, bad_b);
    /* round to nearest even at the midpoints, overflow, underflow */
    CHECK_EQ(0x3c00, __half_as_ushort(__float2half(1.0f + std::ldexp(1.0f, -11))));          /* tie -> even */
    CHECK_EQ(0x3c02, __half_as_ushort(__float2half(1.0f + 3 * std::ldexp(1.0f, -11))));      /* tie -> even */
    CHECK_EQ(0x3c01, __half_as_ushort(__float2half(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20))));
    CHECK_EQ(0x7c00, __half_as_ushort(__float2half(65520.0f)));                                /* rounds up to inf */
    CHECK_EQ(0x7bff, __half_as_ushort(__float2half(65519.0f)));
    CHECK_EQ(0x0001, __half_as_ushort(__float2half(std::ldexp(1.0f, -24))));
    CHECK_EQ(0x0000, __half_as_ushort(__float2half(std::ldexp(1.0f, -25))));                  /* tie -> even 0 */
    CHECK_EQ(0x0001, __half_as_ushort(__float2half(std::ldexp(1.5f, -25))));
    CHECK_EQ(0x3f80, __bfloat16_as_ushort(__float2bfloat16(1.0f + std::ldexp(1.0f, -8))));      /* tie -> even */
    CHECK_EQ(0x3f82, __bfloat16_as_ushort(__float2bfloat16(1.0f + 3 * std::ldexp(1.0f, -8))));
    CHECK(std::isnan(__half2float(__float2half(CUDART_NAN_F))));
    CHECK(std::isnan(__bfloat162float(__float2bfloat16(CUDART_NAN_F))));
    CHECK(__half2float(__float2half(-0.0f)) == 0.0f && std::signbit(__half2float(__float2half(-0.0f))));
    float2 f2 = __half22float2(__floats2half2_rn(1.5f, -2.0f));
    CHECK(f2.x == 1.5f && f2.y == -2.0f);
    float2 b2 = __bfloat1622float2(__floats2bfloat162_rn(0.75f, 3.0f));
    CHECK(b2.x == 0.75f && b2.y == 3.0f);
    static_assert(sizeof(__half) == 2 && sizeof(__nv_bfloat16) == 2 && sizeof(__half2) == 4 && alignof(__half2) == 4, "sizes");
}

#ifdef VPPO_EMU_SELFTEST_TU2
int tu2_block_sum(const int *device_in, int n);   /* selftest_tu2.cpp */
void *tu2_alloc(size_t n);

static void test_two_units()
{
    begin("two translation units share one emulator");
    long live = vppo_emu_live_allocations();
    int *d = static_cast<int *>(tu2_alloc(sizeof(int) * 256));
    CHECK_EQ(live + 1, vppo_emu_live_allocations());
    CHECK(vppo_emu_is_device_pointer(d));
    std::vector<int> h(256);
    for (int k = 0; k < 256; k++) h[k] = k * 3 - 100;
    cudaMemcpy(d, h.data(), sizeof(int) * 256, cudaMemcpyHostToDevice);
    long launches = vppo_emu_launch_count();
    CHECK_EQ(3 * 255 * 256 / 2 - 100 * 256, tu2_block_sum(d, 256));
    CHECK_EQ(launches + 1, vppo_emu_launch_count());
    CHECK_EQ(cudaSuccess, cudaFree(d));
    CHECK_EQ(live, vppo_emu_live_allocations());
}
#endif

int main()
{
    test_index_3d();
    test_ex2_approx();
    test_block_reduction_all_seeds();
    test_missing_barrier_shows();
    test_shuffles();
    test_partial_warp();
    test_warp_errors();
    test_strict_exit_and_deadlock();
    test_sync_variants();
    test_atomics();
    test_launch_config_errors();
    test_canaries();
    test_free_errors();
    test_failure_injection();
    test_memcpy_checks();
    test_graphs_and_counters();
    test_pinned_deferred();
    test_events();
    test_big_blocks();
    test_many_blocks_speed();
    test_shared_fill();
    test_intrinsics();
    test_half_types();
#ifdef VPPO_EMU_SELFTEST_TU2
    test_two_units();
#endif
    begin("nothing left behind");
    CHECK_EQ(0, vppo_emu_live_allocations());
    CHECK_EQ(0, (long long)vppo_emu_live_bytes());
    CHECK_EQ(0, vppo_emu_check_canaries());
    CHECK_EQ(0, vppo_emu_flush_quarantine());
    CHECK_EQ(cudaSuccess, cudaGetLastError());
    std::printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
