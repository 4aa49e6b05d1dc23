/* vppo_cuda.cu - the CUDA translation unit of vppo.h (docs/spec.md §11). MIT licence, see vppo.h.

   Build: make cuda (nvcc -> build/libvppo_cuda.a). The API and its semantics are documented
   in vppo_cuda.h; this file is organised as the data flows:

     1. device helpers: status flags, float formats, warp/block reductions
     2. logits rows: online softmax states, the row walk (16-byte loads), and the kernels
        of dependency_logits, logprobs and logprobs_backward
     3. per-sequence kernels: validation + dependency + means (k_seq_a), batch scalars
        (k_batch: TAS statistics and scales, loss divisor), advantage + top-k + loss per
        sequence (k_seq_b), soft mask, and the fixed-order final sums (k_final)
     4. host side: argument checks (vppo.h's own), the Call (workspace, launches, the
        end of a call), then each entry point written once on a Call; the API wraps it
        twice: _async (the caller's launch struct) and synchronous (a pool block)

   Every status that depends on device data is found by the kernels and recorded in a
   small header in the call's workspace with atomicMin on integers, so that the first
   error in the CPU function's order wins; the last kernel of every call (k_publish) turns
   it into the vppo_status of the status word and writes the scalar results, so that an
   asynchronous call never needs the host (the synchronous form copies them back). No
   float atomics anywhere; reductions go through fixed shuffle trees and fixed per-thread
   strides, so results are bitwise repeatable.

   VPPO_CUDA_EMULATE: compiled as plain C++ against tests/cuda_emu (a CPU emulator of
   the CUDA execution model used by the test suite on machines without a GPU); the only
   difference is how kernels are launched (see launch() below). */
/* vppo.h's implementation, compiled into this unit (private to it): the host checks, the
   status rules and the per-token math marked VPPO_HD come from there, not from a copy. */
#define VPPO_STATIC
#define VPPO_NO_SIMD
#define VPPO_IMPLEMENTATION
#include "vppo.h"
#include "vppo_cuda.h"

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <float.h>
#include <initializer_list>
#ifdef VPPO_CUDA_EMULATE
#include <atomic>
#endif
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

namespace {

typedef unsigned long long u64;

const double LN2 = 0.69314718055994530942;
const double LOG2E = 1.44269504088896340736;
/* The largest element count or flat position accepted anywhere (as in vppo.h). */
const int64_t MAX_INDEX = VPPO__MAX_INDEX;
/* Rows of fewer entries are reduced by one warp (8 rows per block), longer ones by a
   block of ROW_BLOCK threads. */
const int64_t LONG_ROW = 2048;
const int ROW_BLOCK = 256;
const int ROW_MIN_BLOCKS = 4;   /* per SM: at most 64 registers per thread */
const int SEQ_BLOCK = 256;      /* per-sequence kernels: one block per sequence */
const int BATCH_BLOCK = 1024;   /* single-block batch kernels */
const unsigned MAX_GRID = 1u << 22;

/* ====================================================================== 1. helpers */

/* Device-data errors, in the CPU functions' order of checks (smaller wins). CHK_OVERFLOW
   (a gradient beyond the float range) is found while computing and does not stop it. */
enum : unsigned {
    CHK_STATS_SIZE = 0, CHK_STATS_PARAM = 1,   /* _async prepare: the device-side global statistics */
    CHK_SIZE = 2, CHK_INDEX = 3, CHK_NONFINITE = 4, CHK_OVERFLOW = 5, CHK_NONE = 0xffffffffu
};

/* The scratch header: the first data error, and for the logits functions the lowest
   failing row as row << 1 | (1 for VPPO_ERR_PARAM, 0 for VPPO_ERR_NONFINITE). */
struct Hdr { unsigned check; unsigned pad; u64 row; };

/* Batch scalars produced on the device and copied back with the header. */
struct Results {
    /* k_batch */
    long long n_total, n_nonempty;
    double divisor;
    double st_min, st_max;
    long long st_n;
    /* k_final: top-k info sums */
    long long topk_valid, topk_selected, n_thr, n_sel_fin, n_rej_fin;
    double sum_thr, sum_sel, sum_rej;
    /* k_final: loss sums */
    vppo__loss_sums loss;
};

/* Per-sequence partial results. */
struct SeqRec {
    long long count;
    double mean_delta;
    /* top-k */
    long long k, has_thr, n_sel_fin, n_rej_fin;
    double thr, sum_sel, sum_rej;
    /* loss: the sequence's sums and its aggregation coefficient */
    double coef;
    vppo__loss_sums loss;
};

const size_t RESULTS_AT = 64;
const size_t RECS_AT = (RESULTS_AT + sizeof(Results) + 63) / 64 * 64;

__device__ __forceinline__ void flag(Hdr *h, unsigned code) { atomicMin(&h->check, code); }
__device__ __forceinline__ void flag_row(Hdr *h, long long r, int param)
{
    atomicMin(&h->row, ((u64)r << 1) | (u64)param);
}
/* Has an earlier kernel of this call found an error that stops the computation? Read once
   per block by thread 0 and shared after a barrier (earlier kernels' writes are visible at
   the kernel boundary: a plain load): every thread of the block calls it, at the top. */
__device__ __forceinline__ bool stopped(const Hdr *h)
{
    __shared__ unsigned check;
    if (threadIdx.x == 0) check = h->check;
    __syncthreads();
    return check < CHK_OVERFLOW;
}

__device__ __forceinline__ bool finite_f(float x) { return x - x == 0.0f; }

__device__ __forceinline__ float bf16_to_f32(unsigned h) { return __uint_as_float(h << 16); }

/* CUDA's own conversion (one instruction, exact for every f16 including subnormals,
   whatever the denormal mode: no float arithmetic that -ftz could flush). */
__device__ __forceinline__ float f16_to_f32(unsigned h) { return __half2float(__ushort_as_half((unsigned short)h)); }

__device__ __forceinline__ unsigned f32_to_bf16(float f)   /* round to nearest even */
{
    unsigned bits = __float_as_uint(f);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return bits >> 16;
}

/* Element j of a row of dtype D (0 f32, 1 bf16, 2 f16; 3: dt decides at run time). */
template <int D>
__device__ __forceinline__ float load1(const char *p, int dt, int64_t j)
{
    const int d = D < 3 ? D : dt;
    if (d == VPPO_F32) return ((const float *)p)[j];
    if (d == VPPO_BF16) return bf16_to_f32(((const unsigned short *)p)[j]);
    return f16_to_f32(((const unsigned short *)p)[j]);
}

/* Eight entries from a 16-byte aligned address (two float4, or one uint4 of halves). */
template <int D>
__device__ __forceinline__ void load8(const char *p, float z[8])
{
    if (D == VPPO_F32) {
        const float4 a = ((const float4 *)p)[0], b = ((const float4 *)p)[1];
        z[0] = a.x; z[1] = a.y; z[2] = a.z; z[3] = a.w;
        z[4] = b.x; z[5] = b.y; z[6] = b.z; z[7] = b.w;
    } else {
        const uint4 q = *(const uint4 *)p;
        const unsigned w[4] = { q.x, q.y, q.z, q.w };
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            if (D == VPPO_BF16) {
                z[2 * i] = __uint_as_float(w[i] << 16);
                z[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
            } else {
                z[2 * i] = f16_to_f32(w[i] & 0xffffu);
                z[2 * i + 1] = f16_to_f32(w[i] >> 16);
            }
        }
    }
}

/* --- warp and block reductions (fixed shuffle trees: every lane ends with the same bits) */

template <class T, class Op>
__device__ __forceinline__ T warp_all(T v, Op op, int width = 32)
{
    for (int m = width / 2; m > 0; m >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, m));
    return v;
}

struct OpAdd { template <class T> __device__ T operator()(T a, T b) const { return a + b; } };
struct OpMin { __device__ double operator()(double a, double b) const { return a < b ? a : b; } };
struct OpMax { __device__ double operator()(double a, double b) const { return a > b ? a : b; } };

/* All threads of an NT-thread block get op over the block. Starts with a barrier, so
   calls can follow each other. */
template <int NT, class T, class Op>
__device__ T block_all(T v, Op op)
{
    __shared__ T part[NT / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_all(v, op);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = part[lane & (NT / 32 - 1)];
    return warp_all(v, op, NT / 32);
}

template <int NT> __device__ double block_sum(double v) { return block_all<NT>(v, OpAdd()); }
template <int NT> __device__ long long block_count(long long v) { return block_all<NT>(v, OpAdd()); }

/* ================================================================ 2. logits rows */

/* 2^x by the SFU's approximate instruction (PTX ex2.approx.ftz.f32: relative error at most
   2^-22, subnormal inputs and results flushed to zero; docs/spec.md §12's note), and the
   NaN-propagating maximum (max.NaN.f32, sm_80+). The emulator models both. */
__device__ __forceinline__ float ex2_approx(float x)
{
#ifdef VPPO_CUDA_EMULATE
    return vppo_emu_ex2_approx_ftz(x);
#else
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
#endif
}

__device__ __forceinline__ float max_nan(float a, float b)
{
#ifdef VPPO_CUDA_EMULATE
    return a != a ? a : b != b ? b : fmaxf(a, b);
#else
    float r;
    asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
#endif
}

/* The raw 16 bytes of a chunk, and the NaN-propagating maximum of two packed pairs. */
__device__ __forceinline__ uint4 load_raw(const char *p) { return *(const uint4 *)p; }

template <int D>
__device__ __forceinline__ unsigned max_nan2(unsigned a, unsigned b)
{
#ifdef VPPO_CUDA_EMULATE
    unsigned r = 0;
    for (int s = 0; s < 32; s += 16) {
        const unsigned ha = (a >> s) & 0xffffu, hb = (b >> s) & 0xffffu;
        const float fa = D == VPPO_BF16 ? bf16_to_f32(ha) : f16_to_f32(ha);
        const float fb = D == VPPO_BF16 ? bf16_to_f32(hb) : f16_to_f32(hb);
        r |= (fa != fa ? ha : fb != fb ? hb : fa >= fb ? ha : hb) << s;
    }
    return r;
#else
    unsigned r;
    if (D == VPPO_BF16) asm("max.NaN.bf16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    else asm("max.NaN.f16x2 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
#endif
}

/* Two floats to a pair of bf16, round to nearest even (cvt.rn.bf16x2.f32), lo first. */
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi)
{
#ifdef VPPO_CUDA_EMULATE
    return f32_to_bf16(lo) | f32_to_bf16(hi) << 16;
#else
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#endif
}

/*
   Online softmax in base 2: with k = log2(e)/T and a reference m (a raw logit),
   d = (z - m) k, e = 2^d. While streaming, a thread keeps {m, s = sum e, c = sum e d} in
   float; d is floored at -1e30 so that -inf logits give e = 0 and e d = 0, never NaN.
   The reference is raised lazily: only when a chunk's maximum exceeds it by more than
   LAZY (in units of d), so that e <= 2^LAZY and the float sums cannot overflow; raising it
   by delta scales s by 2^-delta and turns c into 2^-delta (c - delta s). A chunk's bad
   values (NaN, +inf) are found by one test of its NaN-propagating maximum.
   The row then reduces max first: M = the largest reference (float, one shuffle tree;
   NaN when some thread saw a bad value), each thread moves its sums to M once, and the
   sums are added in double. Then lse = M/T + ln S and H = ln S - ln2 C / S, whatever the
   reference. Fixed shuffle trees: identical bits in every lane.
*/
const float LAZY = 8.0f;   /* small, so that H = ln S - ln2 C / S cancels little */

struct Acc { float m; double s, c; };
struct AccF { float m, s, c; };

__device__ __forceinline__ void accf_raise(AccF &a, float to, float k)
{
    const float delta = (to - a.m) * k;
    if (a.s > 0.0f) {
        if (delta < 256.0f) {
            const float scale = exp2f(-delta);
            a.c = scale * (a.c - delta * a.s);
            a.s *= scale;
        } else {
            a.s = a.c = 0.0f;
        }
    }
    a.m = to;
}

/* The terms of n entries whose maximum cm is known: one bad-value test, the lazy raise. */
__device__ __forceinline__ void accf_check(AccF &a, float cm, float k, bool &bad)
{
    bad |= !(cm < INFINITY);
    if ((cm - a.m) * k > LAZY) accf_raise(a, cm, k);   /* false for NaN and for -inf on -inf */
}

template <int N>
__device__ __forceinline__ void accf_terms(AccF &a, const float *z, float k)
{
    const float m = a.m;
#pragma unroll
    for (int i = 0; i < N; ++i) {
        const float d = fmaxf((z[i] - m) * k, -1e30f), e = ex2_approx(d);
        a.s += e;
        a.c = fmaf(e, d, a.c);
    }
}

template <int N>
__device__ __forceinline__ float max_of(const float *z)
{
    float cm = z[0];
#pragma unroll
    for (int i = 1; i < N; ++i) cm = max_nan(cm, z[i]);
    return cm;
}

template <int N>
__device__ __forceinline__ void accf_push(AccF &a, const float *z, float k, bool &bad)
{
    accf_check(a, max_of<N>(z), k, bad);
    accf_terms<N>(a, z, k);
}

/* Two chunks (a paired walk's step): one test and one raise check for both. */
__device__ __forceinline__ void accf_push16(AccF &a, const float *z0, const float *z1, float k, bool &bad)
{
    accf_check(a, max_nan(max_of<8>(z0), max_of<8>(z1)), k, bad);
    accf_terms<8>(a, z0, k);
    accf_terms<8>(a, z1, k);
}

/* A pair of rows (P from u, Q from v) for KL(P || Q): diff = sum eu (du - dv);
   inf: some entry has p > 0 and q = 0. */
struct Pair { float mu, mv; double su, sv, diff; int inf; };

__device__ __forceinline__ void pair_init(Pair &a)
{
    a.mu = a.mv = -INFINITY;
    a.su = a.sv = a.diff = 0.0;
    a.inf = 0;
}

/* Raise the maxima to (tu, tv) (each >= the old one), as vppo.h's pair driver does. */
__device__ __forceinline__ void pair_shift(Pair &a, float tu, float tv, float ku, float kv)
{
    if (tu > a.mu || tv > a.mv) {
        const double du = tu > a.mu && a.su > 0.0 ? ((double)tu - (double)a.mu) * (double)ku : 0.0;
        const double dv = tv > a.mv && a.sv > 0.0 ? ((double)tv - (double)a.mv) * (double)kv : 0.0;
        const double scale_u = exp2(-du);
        a.su *= scale_u;
        a.sv *= exp2(-dv);
        a.diff = scale_u * a.diff - (du - dv) * a.su;
        a.mu = fmaxf(a.mu, tu);
        a.mv = fmaxf(a.mv, tv);
    }
}

__device__ __forceinline__ void pair_term(Pair &a, float zu, float zv, float ku, float kv,
                                          float &psu, float &psv, float &pdf)
{
    const float du = fmaxf((zu - a.mu) * ku, -1e30f), dv = fmaxf((zv - a.mv) * kv, -1e30f);
    const float eu = exp2f(du), ev = exp2f(dv);
    psu += eu;
    psv += ev;
    pdf = fmaf(eu, du - dv, pdf);
    a.inf |= zv == -INFINITY && zu > -INFINITY;
}

__device__ __forceinline__ void pair_push8(Pair &a, const float u[8], const float v[8], float ku, float kv,
                                           bool &bad)
{
    float cu = u[0], cv = v[0], psu = 0.0f, psv = 0.0f, pdf = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        bad |= !(u[i] < INFINITY) || !(v[i] < INFINITY);
        cu = fmaxf(cu, u[i]);
        cv = fmaxf(cv, v[i]);
    }
    pair_shift(a, cu, cv, ku, kv);
#pragma unroll
    for (int i = 0; i < 8; ++i) pair_term(a, u[i], v[i], ku, kv, psu, psv, pdf);
    a.su += psu;
    a.sv += psv;
    a.diff += pdf;
}

__device__ __forceinline__ void pair_push1(Pair &a, float zu, float zv, float ku, float kv, bool &bad)
{
    float psu = 0.0f, psv = 0.0f, pdf = 0.0f;
    bad |= !(zu < INFINITY) || !(zv < INFINITY);
    pair_shift(a, zu, zv, ku, kv);
    pair_term(a, zu, zv, ku, kv, psu, psv, pdf);
    a.su += psu;
    a.sv += psv;
    a.diff += pdf;
}

__device__ __forceinline__ Pair pair_merge(Pair a, Pair b, float ku, float kv)
{
    const float mu = fmaxf(a.mu, b.mu), mv = fmaxf(a.mv, b.mv);
    pair_shift(a, mu, mv, ku, kv);
    pair_shift(b, mu, mv, ku, kv);
    Pair r;
    r.mu = mu; r.mv = mv;
    r.su = a.su + b.su; r.sv = a.sv + b.sv; r.diff = a.diff + b.diff;
    r.inf = a.inf | b.inf;
    return r;
}

/* --- shuffles of the states */

__device__ __forceinline__ double shfl_xor(double v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }
__device__ __forceinline__ int shfl_xor(int v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }
__device__ __forceinline__ float shfl_xor(float v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }


__device__ __forceinline__ Acc shfl_xor(const Acc &a, int m)
{
    Acc r;
    r.m = __shfl_xor_sync(0xffffffffu, a.m, m);
    r.s = __shfl_xor_sync(0xffffffffu, a.s, m);
    r.c = __shfl_xor_sync(0xffffffffu, a.c, m);
    return r;
}

__device__ __forceinline__ Pair shfl_xor(const Pair &a, int m)
{
    Pair r;
    r.mu = __shfl_xor_sync(0xffffffffu, a.mu, m);
    r.mv = __shfl_xor_sync(0xffffffffu, a.mv, m);
    r.su = __shfl_xor_sync(0xffffffffu, a.su, m);
    r.sv = __shfl_xor_sync(0xffffffffu, a.sv, m);
    r.diff = __shfl_xor_sync(0xffffffffu, a.diff, m);
    r.inf = __shfl_xor_sync(0xffffffffu, a.inf, m);
    return r;
}

/* Reduce a per-thread value over the G threads of a row (G = 32: the warp; G = ROW_BLOCK:
   the block, through shared memory), every thread getting the result. `merge` is
   commutative; `part` is shared scratch of ROW_BLOCK / 32 entries (unused for G = 32). */
template <int G, class T, class Merge>
__device__ __forceinline__ T row_all(T v, Merge merge, T *part)
{
    for (int m = 16; m > 0; m >>= 1) v = merge(v, shfl_xor(v, m));
    if (G == 32) return v;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();                                   /* the previous use of part is over */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = part[lane & (G / 32 - 1)];
    for (int m = G / 64; m > 0; m >>= 1) v = merge(v, shfl_xor(v, m));
    return v;
}


/* --- the walk over one row: a scalar head up to 16-byte alignment, 8 entries per step
   from aligned addresses, a scalar tail. D = 3 (mixed dtypes or unaligned rows): scalar.
   Thread `lane` of G visits its entries in a fixed order. */
/* A chunk through the scalar callback (the odd last chunk of a paired walk). */
template <class F1> __device__ __forceinline__ void f1x8(F1 &f1, int64_t j, const float *z)
{
#pragma unroll
    for (int i = 0; i < 8; ++i) f1(j + i, z[i]);
}

template <bool P> struct Paired {};
template <class F8> __device__ __forceinline__ void chunk_step(F8 &f8, int64_t j, const float *z, int64_t, const float *,
                                                             Paired<false>)
{
    f8(j, z);
}
template <class F8> __device__ __forceinline__ void chunk_step(F8 &f8, int64_t j0, const float *z0, int64_t j1,
                                                             const float *z1, Paired<true>)
{
    f8(j0, z0, j1, z1);
}

/* PAIRED: two chunks per step, both loaded first (two independent 16-byte loads, four for
   f32, in flight), f8(j0, z0, j1, z1); otherwise one chunk per step, f8(j, z). */
template <int D, int G, bool PAIRED = false, class F8, class F1>
__device__ __forceinline__ void walk(const char *p, int dt, int64_t V, int lane, F8 f8, F1 f1)
{
    if (D < 3) {
        const int es = D == VPPO_F32 ? 4 : 2;
        int64_t h = (int64_t)((16 - ((uintptr_t)p & 15)) & 15) / es;
        if (h > V) h = V;
        if (lane < h) f1((int64_t)lane, load1<D>(p, dt, lane));
        const int64_t steps = (V - h) / 8;
        const int step = PAIRED ? 2 : 1;
        int64_t c = lane;
#pragma unroll 1
        for (; c + (step - 1) * G < steps; c += step * G) {
            float z0[8], z1[8];
            load8<D>(p + (h + c * 8) * es, z0);
            if (PAIRED) load8<D>(p + (h + (c + G) * 8) * es, z1);
            chunk_step(f8, h + c * 8, z0, h + (c + G) * 8, z1, Paired<PAIRED>());
        }
        if (PAIRED && c < steps) {
            float z[8];
            load8<D>(p + (h + c * 8) * es, z);
            f1x8(f1, h + c * 8, z);
        }
        const int64_t j = h + steps * 8 + lane;
        if (j < V) f1(j, load1<D>(p, dt, j));
    } else {
        for (int64_t j = lane; j < V; j += G) f1(j, load1<D>(p, dt, j));
    }
}

/* The same over a pair of rows with the same dtype and alignment (D < 3), or any (D = 3). */
template <int D, int G, class F8, class F1>
__device__ __forceinline__ void walk2(const char *p, int dtp, const char *q, int dtq, int64_t V, int lane,
                                      F8 f8, F1 f1)
{
    if (D < 3) {
        const int es = D == VPPO_F32 ? 4 : 2;
        int64_t h = (int64_t)((16 - ((uintptr_t)p & 15)) & 15) / es;
        if (h > V) h = V;
        if (lane < h) f1(load1<D>(p, dtp, lane), load1<D>(q, dtq, lane));
        const int64_t steps = (V - h) / 8;
#pragma unroll 1
        for (int64_t c = lane; c < steps; c += G) {
            float u[8], v[8];
            load8<D>(p + (h + c * 8) * es, u);
            load8<D>(q + (h + c * 8) * es, v);
            f8(u, v);
        }
        const int64_t j = h + steps * 8 + lane;
        if (j < V) f1(load1<D>(p, dtp, j), load1<D>(q, dtq, j));
    } else {
        for (int64_t j = lane; j < V; j += G) f1(load1<D>(p, dtp, j), load1<D>(q, dtq, j));
    }
}

/* One logits matrix as the kernels see it. */
struct Mat {
    const char *data;
    int dtype, es;
    int64_t stride;
    float k;          /* log2(e) / T, rounded to float */
    float zfloor;     /* bf16: -F, F >= 2^25 / k a bf16 value (-inf when none is): the fast
                         backward's floor of the entries */
    double inv_t;     /* 1 / T */
    float t;          /* T */
};

__device__ __forceinline__ const char *row_ptr(const Mat &x, int64_t r) { return x.data + r * x.stride * x.es; }

/* Rows r handled by this thread's group: for G = 32 a warp per row, 8 rows per block. */
template <int G> __device__ __forceinline__ int64_t first_row() { return G == 32 ? (int64_t)blockIdx.x * 8 + (threadIdx.x >> 5) : (int64_t)blockIdx.x; }
template <int G> __device__ __forceinline__ int64_t row_step() { return G == 32 ? (int64_t)gridDim.x * 8 : (int64_t)gridDim.x; }
template <int G> __device__ __forceinline__ int row_lane() { return G == 32 ? (int)(threadIdx.x & 31) : (int)threadIdx.x; }

/* Softmax statistics of row r: every thread of the group gets them (bad: a NaN or +inf). */
template <int D, int G>
__device__ __forceinline__ Acc row_stats(const Mat &x, int64_t r, int64_t V, int lane, bool &bad, Acc *part,
                                         int *bpart)
{
    (void)bpart;
    AccF a;
    a.m = -INFINITY; a.s = 0.0f; a.c = 0.0f;
    bool b = false;
    const float k = x.k;
    walk<D, G, true>(row_ptr(x, r), x.dtype, V, lane,
        [&](int64_t, const float *z0, int64_t, const float *z1) { accf_push16(a, z0, z1, k, b); },
        [&](int64_t, float z) { accf_push<1>(a, &z, k, b); });
    /* max first (NaN: bad somewhere), then every thread's sums moved to it and added */
    const float M = row_all<G>(b ? NAN : a.m, [](float p, float q) { return max_nan(p, q); }, (float *)part);
    Acc st;
    st.m = M;
    st.s = st.c = 0.0;
    bad = M != M;
    if (!bad && a.s > 0.0f && M > a.m) accf_raise(a, M, k);
    st.s = a.s;
    st.c = a.c;
    st = row_all<G>(st, [](const Acc &p, const Acc &q) { Acc t = p; t.s += q.s; t.c += q.c; return t; }, part);
    return st;
}

/* --- fast rows (issue 19): the references are kept in scaled units, R = z k rounded to
   float, so that an entry's exponent is one FFMA, d = z k - R (the product is exact inside
   the FFMA, one rounding; the reference's own rounding is common to every term and cancels
   between the sums and the results). References stay within [-REF_MAX, REF_MAX], where
   their rounding is at most 1 (2^24); a row whose maximum lies above that (huge logits or
   a tiny temperature) is an exact row. The streaming step computes its terms against the
   current references speculatively and keeps them when their sum stays below STEP_LIM
   (no NaN, no +inf, no entry far above a reference); otherwise the step is redone out of
   line (step_pair: the chunk maxima, bad values, the lazy raise of the references), which
   happens a few times per thread and row. Exact rows and rows with bad values are done
   again by the robust code of section 2 (double sums, raw references), also out of line. */
const float REF_MAX = 16777216.0f;   /* 2^24 */
const float STEP_LIM = 256.0f;       /* 2^LAZY */
const float TINY_SUM = 8.67361738e-19f;   /* 2^-60: a row sum below it is an exact row */

enum : int { RF_BAD = 1, RF_EXACT = 2 };

/* A thread's state for KL(P || Q) of a pair of rows: references ru, rv (scaled), sums
   su = sum eu, sv = sum ev, df = sum eu (du - dv) in float, flags RF_*. */
struct PairF { float ru, rv, su, sv, df; int flags; };

__device__ __forceinline__ void pairf_init(PairF &a)
{
    a.ru = a.rv = -REF_MAX;
    a.su = a.sv = a.df = 0.0f;
    a.flags = 0;
}

/* One entry's terms. du is floored (-inf logits of P give eu = 0 and a finite du - dv);
   dv is not: a -inf of Q under a p > 0 makes df +inf (KL = +inf), under p = 0 NaN (an
   exact row decides). */
template <int D>
__device__ __forceinline__ void pairf_term(float zu, float zv, float ru, float rv, float ku, float kv, float &psu,
                                           float &psv, float &pdf)
{
    /* bf16: zu floored at zfloor by the caller */
    const float du = D == VPPO_BF16 ? fmaf(zu, ku, -ru) : fmaxf(fmaf(zu, ku, -ru), -1e30f), dv = fmaf(zv, kv, -rv);
    const float eu = ex2_approx(du), ev = ex2_approx(dv);
    psu += eu;
    psv += ev;
    pdf = fmaf(eu, du - dv, pdf);
}

/* Move the sums to references nu >= ru, nv >= rv. */
__device__ __forceinline__ void pairf_raise(PairF &a, float nu, float nv)
{
    const float du = nu - a.ru, dv = nv - a.rv;
    if (a.su > 0.0f && du > 0.0f) {
        const float s = ex2_approx(-du);
        a.df = s * (a.df - (du - dv) * a.su);
        a.su *= s;
    } else if (a.su > 0.0f) {
        a.df += dv * a.su;
    }
    if (a.sv > 0.0f && dv > 0.0f) a.sv *= ex2_approx(-dv);
    a.ru = nu;
    a.rv = nv;
}

/* The reference for an entry z (-REF_MAX when below the range; 2 REF_MAX, out of the range
   above, when z k is: an exact row). */
__device__ __forceinline__ float ref_for(float z, float k)
{
    const float r = z * k;
    return r > REF_MAX ? 2.0f * REF_MAX : fmaxf(r, -REF_MAX);
}

/* Out of line: entries j0 + g gstride + i (g < ng, i < glen) below jend of a pair of rows,
   one at a time: a bad value (NaN, +inf) or an exact row flags the state, an entry above a
   reference by more than LAZY raises it. The streaming step's slow path (about once per
   thread and row: its first step), and the head, tail and last chunks. */
template <int D>
__device__ __noinline__ PairF step_pair(PairF a, const char *pu, const char *pv, int64_t j0, int ng, int64_t gstride,
                                        int glen, int64_t jend, float ku, float kv, float zfloor)
{
    float psu = 0.0f, psv = 0.0f, pdf = 0.0f;
    for (int g = 0; g < ng; ++g)
        for (int i = 0; i < glen; ++i) {
            const int64_t j = j0 + g * gstride + i;
            if (j >= jend) break;
            float zu = load1<D>(pu, D, j);
            const float zv = load1<D>(pv, D, j);
            if (!(zu < INFINITY) || !(zv < INFINITY)) { a.flags |= RF_BAD; return a; }
            if (D == VPPO_BF16) zu = fmaxf(zu, zfloor);
            const float nu = ref_for(zu, ku), nv = ref_for(zv, kv);
            if (nu > a.ru + LAZY || nv > a.rv + LAZY) {
                if (fmaxf(nu, nv) > REF_MAX) { a.flags |= RF_EXACT; return a; }
                a.su += psu; a.sv += psv; a.df += pdf;
                psu = psv = pdf = 0.0f;
                pairf_raise(a, fmaxf(a.ru, nu), fmaxf(a.rv, nv));
            }
            pairf_term<D>(zu, zv, a.ru, a.rv, ku, kv, psu, psv, pdf);
        }
    a.su += psu;
    a.sv += psv;
    a.df += pdf;
    return a;
}

/* The streaming walk of a pair of rows with the same dtype D < 3 and the same offset from
   16-byte alignment: PAIR_U chunks of 8 entries from each row per step (2 PAIR_U
   independent 16-byte loads in flight); a step whose terms fail the check, the head, the
   tail and the last chunks go out of line. */
const int PAIR_U = 4;
/* Threads per long pair row (a block each): fewer warps a row than ROW_BLOCK, so that the
   per-row reductions cost less per element; PAIR_U 16-byte loads from each row per thread
   keep enough bytes in flight (cuda-budget's ceiling line). */
const int PAIR_BLOCK = 64;

/* Eight entries of a chunk, bf16 floored at zfloor two at a time (fl2: the pair; NaN kept). */
template <int D>
__device__ __forceinline__ void load8_floored(const char *p, unsigned fl2, float z[8])
{
    if (D != VPPO_BF16) {
        load8<D>(p, z);
        return;
    }
    const uint4 q = load_raw(p);
    const unsigned w[4] = { max_nan2<D>(q.x, fl2), max_nan2<D>(q.y, fl2), max_nan2<D>(q.z, fl2), max_nan2<D>(q.w, fl2) };
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        z[2 * i] = __uint_as_float(w[i] << 16);
        z[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

template <int D, int G>
__device__ __forceinline__ void pairf_walk(PairF &st, const char *pu, const char *pv, int64_t V, int lane, float ku,
                                           float kv, float zfloor)
{
    const int es = D == VPPO_F32 ? 4 : 2, U = PAIR_U;
    int64_t h = (int64_t)((16 - ((uintptr_t)pu & 15)) & 15) / es;
    if (h > V) h = V;
    const int64_t steps = (V - h) / 8, tail = h + steps * 8;
    const int64_t mine = steps > lane ? (steps - lane + G - 1) / G : 0;
    const int n_steps = (int)(mine / U), left = (int)(mine - (int64_t)n_steps * U);
    const char *bu = pu + (h + (int64_t)lane * 8) * es, *bv = pv + (h + (int64_t)lane * 8) * es;
    const unsigned fl2 = (__float_as_uint(zfloor) >> 16) * 0x10001u;
    /* one call site out of line (as accs_walk): head and tail, a failed step, the last chunks */
    int64_t cj = lane < h ? lane : tail + lane, cgs = tail;
    int cng = lane < h && tail + lane < V ? 2 : 1, cgl = 1, s = 0;
    bool pending = lane < h || tail + lane < V, rest = left > 0;
    for (;;) {
        if (pending) st = step_pair<D>(st, pu, pv, cj, cng, cgs, cgl, V, ku, kv, zfloor);
        if (st.flags) break;
#pragma unroll 1
        for (; s < n_steps; ++s, bu += U * G * 8 * es, bv += U * G * 8 * es) {
            float zu[U][8], zv[U][8];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                load8_floored<D>(bu + u * G * 8 * es, fl2, zu[u]);   /* P's entries floored */
                load8<D>(bv + u * G * 8 * es, zv[u]);
            }
            float psu = 0.0f, psv = 0.0f, pdf = 0.0f;
#pragma unroll
            for (int u = 0; u < U; ++u)
#pragma unroll
                for (int i = 0; i < 8; ++i) pairf_term<D>(zu[u][i], zv[u][i], st.ru, st.rv, ku, kv, psu, psv, pdf);
            if (!(psu + psv < STEP_LIM)) break;   /* NaN, +inf, an entry above a reference */
            st.su += psu;
            st.sv += psv;
            st.df += pdf;
        }
        cj = (bu - pu) / es; cgs = (int64_t)G * 8; cgl = 8;
        if (s < n_steps) {   /* the failed step */
            cng = U; ++s; bu += U * G * 8 * es; bv += U * G * 8 * es;
        } else if (rest) {   /* the last chunks */
            cng = left; rest = false;
        } else {
            break;
        }
        pending = true;
    }
}

struct F2 { float a, b; };
struct F3 { float a, b, c; };
__device__ __forceinline__ F2 shfl_xor(const F2 &v, int m)
{
    F2 r;
    r.a = __shfl_xor_sync(0xffffffffu, v.a, m);
    r.b = __shfl_xor_sync(0xffffffffu, v.b, m);
    return r;
}
__device__ __forceinline__ F3 shfl_xor(const F3 &v, int m)
{
    F3 r;
    r.a = __shfl_xor_sync(0xffffffffu, v.a, m);
    r.b = __shfl_xor_sync(0xffffffffu, v.b, m);
    r.c = __shfl_xor_sync(0xffffffffu, v.c, m);
    return r;
}

/* The row's KL state from the threads' ones, max first: the largest references (NaN when
   some thread flagged the row), every thread's sums moved to them, then added (float,
   fixed trees). ok: a fast row (no flag, both sums >= TINY_SUM, for KL df not NaN). */
template <int G, bool JS>
__device__ __forceinline__ PairF pairf_row(PairF st, bool &ok, F2 *p2, F3 *p3)
{
    F2 m;
    m.a = st.flags ? NAN : st.ru;
    m.b = st.rv;
    m = row_all<G>(m, [](const F2 &x, const F2 &y) { F2 t; t.a = max_nan(x.a, y.a); t.b = fmaxf(x.b, y.b); return t; }, p2);
    PairF r;
    r.ru = m.a; r.rv = m.b; r.flags = 0;
    r.su = r.sv = r.df = 0.0f;
    ok = m.a == m.a;
    if (!ok) return r;
    pairf_raise(st, m.a, m.b);
    F3 s;
    s.a = st.su; s.b = st.sv; s.c = st.df;
    s = row_all<G>(s, [](const F3 &x, const F3 &y) { F3 t; t.a = x.a + y.a; t.b = x.b + y.b; t.c = x.c + y.c; return t; }, p3);
    r.su = s.a; r.sv = s.b; r.df = s.c;
    ok = r.su >= TINY_SUM && r.sv >= TINY_SUM && (JS || r.df == r.df);   /* JS does not use df */
    return r;
}

/* One entry's JS terms from its log-probabilities lp, lq (natural logs, floored): with
   hi = max, delta = min - hi <= 0 and L = log1p(e^delta), the larger side contributes
   e^hi (ln2 - L), the smaller e^lo (delta + ln2 - L); equal log-probabilities give 0. */
__device__ __forceinline__ float js_term(float lp, float lq)
{
    const float ln2f = (float)LN2;
    const float hi = fmaxf(lp, lq), lo = fminf(lp, lq), delta = lo - hi;
    const float L = delta == 0.0f ? ln2f : log1pf(expf(delta));
    return expf(hi) * (ln2f - L) + expf(lo) * (delta + ln2f - L);
}

/* --- dependency_logits: KL(P || Q), with P from the first matrix (the host swaps them for
   KL_REVERSE); JS adds a second pass. Pairs of rows with the same dtype and alignment run
   the fast walk (k_dependency<D < 3>); a row it cannot do (bad values, an exact row, a -inf
   of Q under p = 0) gets the marker DEP_REDO in dep[r], and k_dependency<3> with
   marked_only then does exactly those rows with the robust code (and every row of the
   pairs that cannot be walked with 16-byte loads). */
struct DepArgs { Mat p, q; int64_t n, V; int js, marked_only; float *dep; Hdr *hdr; };

const unsigned DEP_REDO = 0x7fc0de9du;   /* a NaN no divergence is */

template <int D, int G, bool JS>
__global__ void __launch_bounds__(G == 32 ? 256 : G, G == 32 ? 4 : ROW_BLOCK * ROW_MIN_BLOCKS / G) k_dependency(DepArgs a)
{
    const int NW = G == 32 ? 1 : G / 32;
    const int lane = row_lane<G>();
    const float ku = a.p.k, kv = a.q.k;
    if (D == 3) {   /* the robust rows: raw maxima, double sums */
        __shared__ Pair part[NW];
        __shared__ int bpart[NW];
        __shared__ double spart[NW];
        for (int64_t r = first_row<G>(); r < a.n; r += row_step<G>()) {
            if (a.marked_only && __float_as_uint(a.dep[r]) != DEP_REDO) continue;
            const char *pu = row_ptr(a.p, r), *pv = row_ptr(a.q, r);
            Pair st;
            pair_init(st);
            bool bad = false;
            walk2<3, G>(pu, a.p.dtype, pv, a.q.dtype, a.V, lane,
                [&](const float *u, const float *v) { pair_push8(st, u, v, ku, kv, bad); },
                [&](float u, float v) { pair_push1(st, u, v, ku, kv, bad); });
            st = row_all<G>(st, [ku, kv](const Pair &x, const Pair &y) { return pair_merge(x, y, ku, kv); }, part);
            bad = row_all<G>((int)bad, [](int x, int y) { return x | y; }, bpart) != 0;
            if (bad || !(st.su > 0.0) || !(st.sv > 0.0)) {
                if (lane == 0) flag_row(a.hdr, r, !bad);
                continue;
            }
            double value;
            if (!JS) {
                value = st.inf ? (double)INFINITY : vppo__max(0.0, LN2 * st.diff / st.su - log(st.su) + log(st.sv));
            } else {
                /* lp = (zu - mu)/T_u - ln su (natural log), floored */
                const float mu = st.mu, mv = st.mv, lsu = (float)log(st.su), lsv = (float)log(st.sv);
                const float tu = (float)a.p.inv_t, tv = (float)a.q.inv_t;
                double acc = 0.0;
                walk2<3, G>(pu, a.p.dtype, pv, a.q.dtype, a.V, lane, [](const float *, const float *) {},
                    [&](float u, float v) {
                        acc += js_term(fmaxf((u - mu) * tu - lsu, -1e30f), fmaxf((v - mv) * tv - lsv, -1e30f));
                    });
                acc = row_all<G>(acc, [](double x, double y) { return x + y; }, spart);
                value = vppo__max(0.0, 0.5 * acc);
            }
            if (lane == 0) a.dep[r] = (float)value;
        }
        return;
    }
    __shared__ F2 p2[NW];
    __shared__ F3 p3[NW];
    __shared__ float pf[NW];
    const float ln2f = (float)LN2;
    for (int64_t r = first_row<G>(); r < a.n; r += row_step<G>()) {
        const char *pu = row_ptr(a.p, r), *pv = row_ptr(a.q, r);
        bool ok;
        PairF st;
        pairf_init(st);
        pairf_walk<D, G>(st, pu, pv, a.V, lane, ku, kv, a.p.zfloor);
        st = pairf_row<G, JS>(st, ok, p2, p3);
        if (!ok) {
            if (lane == 0) a.dep[r] = __uint_as_float(DEP_REDO);
            continue;
        }
        float value;
        if (!JS) {   /* df = +inf: KL = +inf */
            value = fmaxf(0.0f, __fdividef(ln2f * st.df, st.su) + logf(__fdividef(st.sv, st.su)));
        } else {
            const float lsu = logf(st.su), lsv = logf(st.sv);
            /* log-probabilities from the row's references: lp = ln2 (zu ku - Ru) - ln su */
            const float mu = st.ru, mv = st.rv;
            float acc = 0.0f;
            auto term = [&](float u, float v) {
                return js_term(fmaxf(fmaf(fmaf(u, ku, -mu), ln2f, -lsu), -1e30f),
                               fmaxf(fmaf(fmaf(v, kv, -mv), ln2f, -lsv), -1e30f));
            };
            walk2<D, G>(pu, a.p.dtype, pv, a.q.dtype, a.V, lane,
                [&](const float *u, const float *v) {
                    float s = 0.0f;
#pragma unroll
                    for (int i = 0; i < 8; ++i) s += term(u[i], v[i]);
                    acc += s;
                },
                [&](float u, float v) { acc += term(u, v); });
            acc = row_all<G>(acc, [](float x, float y) { return x + y; }, pf);
            value = fmaxf(0.0f, 0.5f * acc);
        }
        if (lane == 0) a.dep[r] = value;
    }
}

/* --- logprobs: lse, entropy and logp of ids[r]; a bad id is VPPO_ERR_INDEX. Rows walked
   with 16-byte loads run the fast walk (k_logprobs<D < 3>: one stream of the pair walk
   above, sums s = sum e and c = sum e d); a row it cannot do gets the marker DEP_REDO in
   its first requested output and k_logprobs<3> with marked_only does it with the robust
   code (row_stats), as it does every row of unaligned matrices and calls without outputs. */
struct LogprobsArgs { Mat x; int64_t n, V; const int32_t *ids; float *logp, *lse, *entropy; int marked_only; Hdr *hdr; };

__device__ __forceinline__ float *lp_marker(const LogprobsArgs &a) { return a.lse ? a.lse : a.entropy ? a.entropy : a.logp; }

/* A thread's state: reference r (scaled) and zr, the entry it was taken from; s, c (float),
   flags RF_*. */
struct AccS { float r, zr, s, c; int flags; };

/* One entry's terms; zf: floored (bf16: at zfloor by the caller; else d at -1e30). */
template <int D>
__device__ __forceinline__ void accs_term(float z, float r, float k, float &ps, float &pc)
{
    const float d = D == VPPO_BF16 ? fmaf(z, k, -r) : fmaxf(fmaf(z, k, -r), -1e30f);
    const float e = ex2_approx(d);
    ps += e;
    pc = fmaf(e, d, pc);
}

__device__ __forceinline__ void accs_raise(AccS &a, float nr)
{
    const float dl = nr - a.r;
    if (a.s > 0.0f && dl > 0.0f) {
        const float sc = ex2_approx(-dl);
        a.c = sc * (a.c - dl * a.s);
        a.s *= sc;
    }
    a.r = nr;
}

/* Out of line, as step_pair: entries j0 + g gstride + i (i < glen) below jend. */
template <int D>
__device__ __noinline__ AccS step_single(AccS a, const char *p, int64_t j0, int ng, int64_t gstride, int glen,
                                         int64_t jend, float k, float zfloor)
{
    float ps = 0.0f, pc = 0.0f;
    for (int g = 0; g < ng; ++g)
        for (int i = 0; i < glen; ++i) {
            const int64_t j = j0 + g * gstride + i;
            if (j >= jend) break;
            float z = load1<D>(p, D, j);
            if (!(z < INFINITY)) { a.flags |= RF_BAD; return a; }
            if (D == VPPO_BF16) z = fmaxf(z, zfloor);
            const float nr = ref_for(z, k);
            if (nr > a.r + LAZY) {
                if (nr > REF_MAX) { a.flags |= RF_EXACT; return a; }
                a.s += ps; a.c += pc;
                ps = pc = 0.0f;
                accs_raise(a, nr);
                a.zr = z;
            }
            accs_term<D>(z, a.r, k, ps, pc);
        }
    a.s += ps;
    a.c += pc;
    return a;
}

const int SINGLE_U = 2;

template <int D, int G>
__device__ __forceinline__ void accs_walk(AccS &st, const char *p, int64_t V, int lane, float k, float zfloor)
{
    const int es = D == VPPO_F32 ? 4 : 2, U = SINGLE_U;
    int64_t h = (int64_t)((16 - ((uintptr_t)p & 15)) & 15) / es;
    if (h > V) h = V;
    const int64_t steps = (V - h) / 8, tail = h + steps * 8;
    const int64_t mine = steps > lane ? (steps - lane + G - 1) / G : 0;
    const int n_steps = (int)(mine / U), left = (int)(mine - (int64_t)n_steps * U);
    const char *b = p + (h + (int64_t)lane * 8) * es;
    const unsigned fl2 = (__float_as_uint(zfloor) >> 16) * 0x10001u;
    /* one call site out of line: first the head and tail entries, then a failed step, then
       the last chunks */
    int64_t cj = lane < h ? lane : tail + lane, cgs = tail;
    int cng = lane < h && tail + lane < V ? 2 : 1, cgl = 1, s = 0;
    bool pending = lane < h || tail + lane < V, rest = left > 0;
    for (;;) {
        if (pending) st = step_single<D>(st, p, cj, cng, cgs, cgl, V, k, zfloor);
        if (st.flags) break;
#pragma unroll 1
        for (; s < n_steps; ++s, b += U * G * 8 * es) {
            float z[U][8];
#pragma unroll
            for (int u = 0; u < U; ++u) load8_floored<D>(b + u * G * 8 * es, fl2, z[u]);
            float ps = 0.0f, pc = 0.0f;
#pragma unroll
            for (int u = 0; u < U; ++u)
#pragma unroll
                for (int i = 0; i < 8; ++i) accs_term<D>(z[u][i], st.r, k, ps, pc);
            if (!(ps < STEP_LIM)) break;   /* NaN, +inf, an entry above the reference */
            st.s += ps;
            st.c += pc;
        }
        cj = (b - p) / es; cgs = (int64_t)G * 8; cgl = 8;
        if (s < n_steps) {   /* the failed step */
            cng = U; ++s; b += U * G * 8 * es;
        } else if (rest) {   /* the last chunks */
            cng = left; rest = false;
        } else {
            break;
        }
        pending = true;
    }
}

template <int D, int G>
__global__ void __launch_bounds__(G == 32 ? 256 : ROW_BLOCK, G == 32 ? 4 : ROW_MIN_BLOCKS) k_logprobs(LogprobsArgs a)
{
    const int NW = G == 32 ? 1 : ROW_BLOCK / 32;
    const int lane = row_lane<G>();
    if (D == 3) {   /* the robust rows */
        __shared__ Acc part[NW];
        __shared__ int bpart[NW];
        float *mark = lp_marker(a);
        for (int64_t r = first_row<G>(); r < a.n; r += row_step<G>()) {
            if (a.marked_only && __float_as_uint(mark[r]) != DEP_REDO) continue;
            bool bad;
            const Acc st = row_stats<D, G>(a.x, r, a.V, lane, bad, part, bpart);
            if (lane != 0) continue;
            const int32_t id = a.logp ? a.ids[r] : 0;
            const bool bad_id = id < 0 || id >= a.V;   /* reported before any row error, as on the CPU */
            if (bad_id) flag(a.hdr, CHK_INDEX);
            if (bad || !(st.s > 0.0)) { flag_row(a.hdr, r, !bad); continue; }
            const double logsum = log(st.s);
            if (a.lse) a.lse[r] = (float)((double)st.m * a.x.inv_t + logsum);
            if (a.entropy) a.entropy[r] = (float)vppo__max(0.0, logsum - LN2 * st.c / st.s);
            if (a.logp && !bad_id) {
                const double z = (double)load1<D>(row_ptr(a.x, r), a.x.dtype, id);
                /* formed around the max, so that huge logits keep logp's precision */
                a.logp[r] = (float)(((z - (double)st.m) * a.x.inv_t) - logsum);
            }
        }
        return;
    }
    __shared__ F2 p2[NW];
    __shared__ F2 p3[NW];
    const float k = a.x.k, ln2f = (float)LN2;
    float *mark = lp_marker(a);
    for (int64_t r = first_row<G>(); r < a.n; r += row_step<G>()) {
        const char *p = row_ptr(a.x, r);
        AccS st;
        st.r = -REF_MAX; st.zr = 0.0f; st.s = st.c = 0.0f; st.flags = 0;
        accs_walk<D, G>(st, p, a.V, lane, k, a.x.zfloor);
        /* max first (NaN: a flagged thread), every thread's sums moved to it, then added */
        F2 m;   /* the largest reference and its entry (NaN: a flagged thread) */
        m.a = st.flags ? NAN : st.r;
        m.b = st.zr;
        m = row_all<G>(m, [](const F2 &x, const F2 &y) {
            return x.a != x.a || x.a > y.a || (x.a == y.a && x.b >= y.b) ? x : y; }, p2);
        const float M = m.a, zr = m.b;
        F2 sc;
        sc.a = sc.b = 0.0f;
        if (M == M) {
            accs_raise(st, M);
            sc.a = st.s; sc.b = st.c;
            sc = row_all<G>(sc, [](const F2 &x, const F2 &y) { F2 t; t.a = x.a + y.a; t.b = x.b + y.b; return t; }, p3);
        }
        if (lane != 0) continue;
        const int32_t id = a.logp ? a.ids[r] : 0;
        const bool bad_id = id < 0 || id >= a.V;
        if (bad_id) flag(a.hdr, CHK_INDEX);
        if (!(M == M) || !(sc.a >= TINY_SUM) || sc.b != sc.b) {   /* the robust kernel does it */
            mark[r] = __uint_as_float(DEP_REDO);
            continue;
        }
        /* around the entry zr of the reference: its term 2^dz and the others' sum q, so that
           ln S = ln2 dz + log1p(q), lse = zr/T + log1p(q) (a one-entry row gives its logit,
           exactly) and logp = ln2 (z k - M - dz) - log1p(q) */
        const float dz = fmaf(zr, k, -M), q = fmaxf(sc.a - ex2_approx(dz), 0.0f) * ex2_approx(-dz);
        const float l1p = log1pf(q), ls = fmaf(ln2f, dz, l1p);
        if (a.lse) a.lse[r] = (float)((double)zr * a.x.inv_t + (double)l1p);
        if (a.entropy) a.entropy[r] = fmaxf(0.0f, ls - ln2f * __fdividef(sc.b, sc.a));
        if (a.logp && !bad_id) a.logp[r] = ln2f * (fmaf(load1<D>(p, D, id), k, -M) - dz) - l1p;
    }
}

/* --- logprobs_backward. The per-row arrays were checked by k_check_rows. */
struct BackwardArgs {
    Mat x; int64_t n, V;
    const int32_t *ids; const float *lse, *entropy, *dlogp, *dentropy;
    char *out; int out_dtype, out_es; int64_t out_stride;
    int need_stats;
    int skip_fast;   /* k_backward after k_backward_fast: the rows that one did are skipped */
    Hdr *hdr;
};

/* The exact entry (the id entry, and every entry when lse T is not a finite float), in
   double as vppo.h computes it: (1/T)[g (onehot - p) - h p (logp + H)] (1/T: it, as the host rounded it), with
   logp = (z - shift)/T - base (shift, base = the raw max and log sum when lse was
   recomputed, 0 and lse when it was given). */
__device__ __forceinline__ float grad_exact(float z, double it, double shift, double base, double H, double g, double h,
                                            bool onehot)
{
    if (z == -INFINITY) return onehot ? (float)(g * it) : 0.0f;
    const double lp = ((double)z - shift) * it - base, p = exp(lp);
    return (float)((g * ((onehot ? 1.0 : 0.0) - p) - h * p * (lp + H)) * it);
}

__device__ __forceinline__ void store1(char *row, int dt, int64_t j, float g)
{
    if (dt == VPPO_F32) ((float *)row)[j] = g;
    else ((unsigned short *)row)[j] = (unsigned short)f32_to_bf16(g);
}

__device__ __forceinline__ void store8(char *row, int dt, int64_t j, const float g[8], bool aligned)
{
    if (!aligned) {
        for (int i = 0; i < 8; ++i) store1(row, dt, j + i, g[i]);
    } else if (dt == VPPO_F32) {
        float4 *o = (float4 *)(row + j * 4);
        o[0] = make_float4(g[0], g[1], g[2], g[3]);
        o[1] = make_float4(g[4], g[5], g[6], g[7]);
    } else {
        uint4 q;
        q.x = f32_to_bf16(g[0]) | f32_to_bf16(g[1]) << 16;
        q.y = f32_to_bf16(g[2]) | f32_to_bf16(g[3]) << 16;
        q.z = f32_to_bf16(g[4]) | f32_to_bf16(g[5]) << 16;
        q.w = f32_to_bf16(g[6]) | f32_to_bf16(g[7]) << 16;
        *(uint4 *)(row + j * 2) = q;
    }
}

/* --- the fast gradient rows (issue 19), for the training path (lse and entropy given, the
   rows walked with 16-byte loads and stores). In base 2 with k = log2(e)/T rounded to
   float: hi + lo = lse T as above, L = hi k + lo k (exact in double) = L1 + L2 with L1 its
   float, so that d = z k - L1 is one FFMA whose error scales z - hi - lo only, and
   p = 2^d 2^-L2; the gradient is then 2^d (A + B d) with per-row A, B (L2 and the signs
   folded in). d is floored at -200 (p = 0, A + B d finite). The id entry is read before
   the row (by the thread whose chunk holds it: in place is safe) and its exact value
   (grad_exact) is stored after. Bad values are found by a NaN-propagating running maximum
   of the raw entries (packed for 16-bit dtypes). A row with non-finite or too large
   constants, or an output not 16-byte aligned with the input, is left to k_backward. */
struct BwdRow { float l1, ca, cb; int64_t id; double lse, shift, H, g, h; };

/* The row's constants from lse T = hi + lo (b.H, b.g, b.h set); false: an exact row. */
__device__ __forceinline__ bool bwd_consts_hl(const BackwardArgs &a, BwdRow &b, float hi, float lo)
{
    if (!finite_f(hi) || !finite_f(lo)) return false;
    const double k = (double)a.x.k;
    const double L = (double)hi * k + (double)lo * k;
    b.l1 = (float)L;
    const double l2 = L - (double)b.l1, s2 = (double)exp2f(-(float)l2), it = a.x.inv_t;
    const double A = -it * s2 * (b.g + b.h * b.H - b.h * LN2 * l2), B = -it * s2 * b.h * LN2;
    b.ca = (float)A;
    b.cb = (float)B;
    if (a.x.dtype == VPPO_BF16) {   /* entries floored at zfloor: d <= -200 there, A + B d finite */
        const double dfl = (double)a.x.zfloor * k - (double)b.l1;
        return dfl <= -200.0 && fabs(A) + fabs(B) * -dfl < 1e37;
    }
    return finite_f(b.l1) && fabs(A) + 256.0 * fabs(B) < 1e37;
}

/* lse and entropy given. k_backward uses the same constants, so that a row gets the same
   bits from both kernels. */
__device__ __forceinline__ bool bwd_consts(const BackwardArgs &a, int64_t r, BwdRow &b)
{
    b.lse = (double)a.lse[r];
    b.shift = 0.0;
    b.H = a.entropy ? (double)a.entropy[r] : 0.0;
    b.g = a.dlogp ? (double)a.dlogp[r] : 0.0;
    b.h = a.dentropy ? (double)a.dentropy[r] : 0.0;
    b.id = a.dlogp ? (int64_t)a.ids[r] : -1;
    const double lt = b.lse * (double)a.x.t;
    const float hi = (float)lt;
    return bwd_consts_hl(a, b, hi, (float)(lt - (double)hi));
}

/* The gradient of one entry of a row with constants b: bf16 entries floored at zfloor
   (the fast kernel does it on the packed pairs), other dtypes' exponents at -200. */
__device__ __forceinline__ float bwd_grad_floored(float zf, float k, const BwdRow &b)
{
    const float d = fmaf(zf, k, -b.l1);
    return ex2_approx(d) * fmaf(b.cb, d, b.ca);
}
__device__ __forceinline__ float bwd_grad(float z, float k, float zfloor, int dt, const BwdRow &b)
{
    if (dt == VPPO_BF16) return bwd_grad_floored(fmaxf(z, zfloor), k, b);
    const float d = fmaxf(fmaf(z, k, -b.l1), -200.0f);
    return ex2_approx(d) * fmaf(b.cb, d, b.ca);
}

/* A row of the fast kernel: lse and entropy given, constants finite, input and output at
   the same offset from 16-byte alignment (D < 3). */
template <int D>
__device__ __forceinline__ bool bwd_out_aligned(const BackwardArgs &a, int64_t r)
{
    const char *in = row_ptr(a.x, r);
    const char *out = a.out + r * a.out_stride * a.out_es;
    int64_t head = (int64_t)((16 - ((uintptr_t)in & 15)) & 15) / (D == VPPO_F32 ? 4 : 2);
    if (head > a.V) head = a.V;
    return (((uintptr_t)out + (uintptr_t)(head * a.out_es)) & 15) == 0;
}
template <int D>
__device__ __forceinline__ bool bwd_fast_row(const BackwardArgs &a, int64_t r, BwdRow &b)
{
    if (D == 3 || a.need_stats || !bwd_out_aligned<D < 3 ? D : 0>(a, r)) return false;
    return bwd_consts(a, r, b);
}

const int BWD_U = 2;

/* One fast row with constants b (its id entry exact: grad_exact around b.shift, b.lse;
   SHIFT false: b.shift is 0, lse given). */
template <int D, int G, int O, bool SHIFT>
__device__ __forceinline__ void bwd_fast_body(const BackwardArgs &a, int64_t r, int lane, const BwdRow &b, float *mpart)
{
    const float k = a.x.k;
    const int es = D == VPPO_F32 ? 4 : 2, oes = O == VPPO_F32 ? 4 : 2;
    const bool obf = O == VPPO_BF16;
    {
        const char *in = row_ptr(a.x, r);
        char *out = a.out + r * a.out_stride * oes;
        int64_t h = (int64_t)((16 - ((uintptr_t)in & 15)) & 15) / es;
        if (h > a.V) h = a.V;
        const int64_t steps = (a.V - h) / 8, tail = h + steps * 8;
        /* the id entry's owner reads it before the row is written */
        const int64_t id = b.id;
        const bool own = id >= 0 && (id < h ? id == lane : id >= tail ? id - tail == lane : ((id - h) / 8) % G == lane);
        const float zid = own ? load1<D>(in, D, id) : 0.0f;
        auto grad = [&](float z) { return bwd_grad(z, k, a.x.zfloor, D, b); };
        float m = -INFINITY;   /* running maximum (NaN: a bad value) */
        unsigned m2 = 0xff80ff80u & (D == VPPO_BF16 ? 0xffffffffu : 0xfc00fc00u);   /* -inf, -inf */
        const unsigned fl2 = (__float_as_uint(a.x.zfloor) >> 16) * 0x10001u;   /* bf16 pair of zfloor */
        auto scalar = [&](int64_t j) {
            const float z = load1<D>(in, D, j);
            m = max_nan(m, z);
            store1(out, O, j, grad(z));
        };
        if (lane < h) scalar(lane);
        if (tail + lane < a.V) scalar(tail + lane);
        auto chunk = [&](const char *pi, char *po) {
            float z[8], gr[8];
            if (D == VPPO_F32) {
                load8<D>(pi, z);
#pragma unroll
                for (int i = 0; i < 8; ++i) m = max_nan(m, z[i]);
            } else {
                const uint4 q = load_raw(pi);
                m2 = max_nan2<D>(max_nan2<D>(m2, q.x), q.y);   /* 3-input packed maxima */
                m2 = max_nan2<D>(max_nan2<D>(m2, q.z), q.w);
                unsigned w[4] = { q.x, q.y, q.z, q.w };
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    if (D == VPPO_BF16) w[i] = max_nan2<D>(w[i], fl2);   /* the floor, two at a time */
                    z[2 * i] = D == VPPO_BF16 ? __uint_as_float(w[i] << 16) : f16_to_f32(w[i] & 0xffffu);
                    z[2 * i + 1] = D == VPPO_BF16 ? __uint_as_float(w[i] & 0xffff0000u) : f16_to_f32(w[i] >> 16);
                }
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) gr[i] = D == VPPO_BF16 ? bwd_grad_floored(z[i], k, b) : grad(z[i]);
            if (obf) {
                uint4 o;
                o.x = pack_bf16x2(gr[0], gr[1]); o.y = pack_bf16x2(gr[2], gr[3]);
                o.z = pack_bf16x2(gr[4], gr[5]); o.w = pack_bf16x2(gr[6], gr[7]);
                *(uint4 *)po = o;
            } else {
                ((float4 *)po)[0] = make_float4(gr[0], gr[1], gr[2], gr[3]);
                ((float4 *)po)[1] = make_float4(gr[4], gr[5], gr[6], gr[7]);
            }
        };
        const int64_t mine = steps > lane ? (steps - lane + G - 1) / G : 0;
        const int n_steps = (int)(mine / BWD_U);
        const char *pi = in + (h + (int64_t)lane * 8) * es;
        char *po = out + (h + (int64_t)lane * 8) * oes;
#pragma unroll 1
        for (int s = 0; s < n_steps; ++s, pi += BWD_U * G * 8 * es, po += BWD_U * G * 8 * oes) {
#pragma unroll
            for (int u = 0; u < BWD_U; ++u) chunk(pi + u * G * 8 * es, po + u * G * 8 * oes);
        }
        if (mine > (int64_t)n_steps * BWD_U) chunk(pi, po);   /* BWD_U = 2: at most one left */
        if (own) {
            const float gi = grad_exact(zid, a.x.inv_t, SHIFT ? b.shift : 0.0, b.lse, b.H, b.g, b.h, true);
            store1(out, O, id, gi);
        }
        if (D != VPPO_F32) {
            const float lo = D == VPPO_BF16 ? bf16_to_f32(m2 & 0xffffu) : f16_to_f32(m2 & 0xffffu);
            const float hi = D == VPPO_BF16 ? bf16_to_f32(m2 >> 16) : f16_to_f32(m2 >> 16);
            m = max_nan(m, max_nan(lo, hi));
        }
        m = row_all<G>(m, [](float x, float y) { return max_nan(x, y); }, mpart);
        if (lane == 0 && !(m < INFINITY)) flag_row(a.hdr, r, 0);
        else if (lane == 0 && !(m > -INFINITY)) flag_row(a.hdr, r, 1);
    }
}

template <int D, int G, int O>
__global__ void __launch_bounds__(G == 32 ? 256 : ROW_BLOCK, G == 32 ? 4 : ROW_MIN_BLOCKS) k_backward_fast(BackwardArgs a)
{
    __shared__ float mpart[G == 32 ? 1 : ROW_BLOCK / 32];
    if (stopped(a.hdr)) return;
    const int lane = row_lane<G>();
    for (int64_t r = first_row<G>(); r < a.n; r += row_step<G>()) {
        BwdRow b;
        if (bwd_fast_row<D>(a, r, b)) bwd_fast_body<D, G, O, false>(a, r, lane, b, mpart);
    }
}

/* need_stats, D < 3: the fast logprobs walk, then the constants from the recomputed
   statistics (those given are used as given); false: the row is bwd_row_robust's (bad
   values, an exact row, constants out of range). */
template <int D, int G>
__device__ __forceinline__ bool bwd_stats_fast(const BackwardArgs &a, int64_t r, int lane, BwdRow &b, F2 *p2, F2 *p3)
{
    const char *in = row_ptr(a.x, r);
    const float k = a.x.k, ln2f = (float)LN2;
    AccS st;
    st.r = -REF_MAX; st.zr = 0.0f; st.s = st.c = 0.0f; st.flags = 0;
    accs_walk<D, G>(st, in, a.V, lane, k, a.x.zfloor);
    F2 m;
    m.a = st.flags ? NAN : st.r;
    m.b = st.zr;
    m = row_all<G>(m, [](const F2 &x, const F2 &y) {
        return x.a != x.a || x.a > y.a || (x.a == y.a && x.b >= y.b) ? x : y; }, p2);
    const float M = m.a, zr = m.b;
    if (!(M == M)) return false;
    accs_raise(st, M);
    F2 sc;
    sc.a = st.s; sc.b = st.c;
    sc = row_all<G>(sc, [](const F2 &x, const F2 &y) { F2 t; t.a = x.a + y.a; t.b = x.b + y.b; return t; }, p3);
    if (!(sc.a >= TINY_SUM) || sc.b != sc.b) return false;
    /* as k_logprobs: ln S = ln2 dz + log1p(q), lse = zr/T + log1p(q) */
    const float dz = fmaf(zr, k, -M), q = fmaxf(sc.a - ex2_approx(dz), 0.0f) * ex2_approx(-dz);
    const float l1p = log1pf(q), ls = fmaf(ln2f, dz, l1p);
    b.H = a.entropy ? (double)a.entropy[r] : (double)fmaxf(0.0f, ls - ln2f * __fdividef(sc.b, sc.a));
    b.g = a.dlogp ? (double)a.dlogp[r] : 0.0;
    b.h = a.dentropy ? (double)a.dentropy[r] : 0.0;
    b.id = a.dlogp ? (int64_t)a.ids[r] : -1;
    float hi, lo;
    if (a.lse) {
        b.lse = (double)a.lse[r];
        b.shift = 0.0;
        const double lt = b.lse * (double)a.x.t;
        hi = (float)lt;
        lo = (float)(lt - (double)hi);
    } else {   /* logp = (z - zr)/T - log1p(q) */
        b.lse = (double)l1p;
        b.shift = (double)zr;
        hi = zr;
        lo = (float)((double)l1p * (double)a.x.t);
    }
    return bwd_consts_hl(a, b, hi, lo);
}

/* The robust row, out of line and with scalar loads (walk<3>): the statistics in double
   (row_stats) when they are needed, then the gradient entry by entry (the exact ones in
   double, grad_exact). It does the rows the fast code cannot: rows of unaligned matrices or
   outputs, bad values, rows whose constants are not finite floats (huge lse T). */
template <int G>
__device__ __noinline__ void bwd_row_robust(const BackwardArgs a, int64_t r, int lane, Acc *part, int *bpart,
                                            BwdRow b, bool have)
{
    const double t = (double)a.x.t;
    const float it = (float)(1.0 / t);
    {
        /* the fast kernels' formula and constants, for the same bits in any alignment */
        const bool fast = have || (!a.need_stats && bwd_consts(a, r, b));
        double lse = a.lse ? (double)a.lse[r] : 0.0, H = a.entropy ? (double)a.entropy[r] : 0.0;
        /* lse recomputed is kept in two parts, the raw max and log sum, so that u - lse keeps
           its precision next to huge u (tiny temperatures), as on the CPU */
        double shift = 0.0, logsum = 0.0;
        bool split = false;
        if (have) {   /* statistics from the fast walk */
            shift = b.shift; lse = b.lse; H = b.H; split = b.shift != 0.0; logsum = b.lse;
        } else if (a.need_stats) {   /* what was not given, in a first pass */
            bool bad;
            const Acc st = row_stats<3, G>(a.x, r, a.V, lane, bad, part, bpart);
            if (bad || !(st.s > 0.0)) {
                if (lane == 0) flag_row(a.hdr, r, !bad);
                return;
            }
            logsum = log(st.s);
            if (!a.lse) { split = true; shift = st.m; }
            if (!a.entropy) H = vppo__max(0.0, logsum - LN2 * st.c / st.s);
        }
        const double base = split ? logsum : lse;
        const double g = a.dlogp ? (double)a.dlogp[r] : 0.0, h = a.dentropy ? (double)a.dentropy[r] : 0.0;
        const int64_t id = a.dlogp ? (int64_t)a.ids[r] : -1;
        const char *in = row_ptr(a.x, r);
        char *out = a.out + r * a.out_stride * a.out_es;
        /* u - lse = (z - hi - lo) / T with hi + lo = lse T (recomputed: hi is the raw max
           itself, lo = log sum T): z - hi is exact where p matters */
        const double lt = lse * t;
        const float hi = split ? (float)shift : (float)lt, lo = split ? (float)(logsum * t) : (float)(lt - (double)hi);
        const bool exact = !finite_f(hi) || !finite_f(lo);
        const float gf = (float)g, hf = (float)h, Hf = (float)H;
        bool bad = false, any = false;
        auto grad = [&](int64_t j, float z) -> float {
            bad |= !(z < INFINITY);
            any |= z > -INFINITY;
            if (j == id) return grad_exact(z, a.x.inv_t, shift, base, H, g, h, true);
            if (fast) return bwd_grad(z, a.x.k, a.x.zfloor, a.x.dtype, b);
            if (exact) return grad_exact(z, a.x.inv_t, shift, base, H, g, h, false);
            if (z == -INFINITY) return 0.0f;
            const float lp = ((z - hi) - lo) * it, p = expf(lp);
            return (-gf * p - hf * p * (lp + Hf)) * it;
        };
        /* each thread reads its entries before it writes them: in place is safe */
        walk<3, G>(in, a.x.dtype, a.V, lane,
            [&](int64_t j, const float *z) {
                float gr[8];
#pragma unroll
                for (int i = 0; i < 8; ++i) gr[i] = grad(j + i, z[i]);
                store8(out, a.out_dtype, j, gr, false);
            },
            [&](int64_t j, float z) { store1(out, a.out_dtype, j, grad(j, z)); });
        if (!a.need_stats) {   /* the row was not scanned before: its errors are found here */
            const int flags = row_all<G>((int)bad | ((int)any << 1), [](int x, int y) { return x | y; }, bpart);
            if (lane == 0 && (flags & 1)) flag_row(a.hdr, r, 0);
            else if (lane == 0 && !(flags & 2)) flag_row(a.hdr, r, 1);
        }
    }
}

/* lse or entropy recomputed (need_stats), and the rows k_backward_fast left: a row of
   aligned matrices gets its statistics by the fast logprobs walk (accs_walk, as k_logprobs'
   fast rows) and its gradient by k_backward_fast's loop (lse recomputed: hi = zr, the entry
   of the largest reference, lo = log1p(q) T, and the id entry exact around zr); every other
   row is bwd_row_robust's. */
template <int D, int G, int O>
__global__ void __launch_bounds__(G == 32 ? 256 : ROW_BLOCK, G == 32 ? 4 : ROW_MIN_BLOCKS) k_backward(BackwardArgs a)
{
    const int NW = G == 32 ? 1 : ROW_BLOCK / 32;
    __shared__ Acc part[NW];
    __shared__ int bpart[NW];
    __shared__ F2 p2[NW];
    __shared__ F2 p3[NW];
    __shared__ float mpart[NW];
    if (stopped(a.hdr)) return;
    const int lane = row_lane<G>();
    for (int64_t r = first_row<G>(); r < a.n; r += row_step<G>()) {
        BwdRow b;
        bool have = false;
        if (D < 3 && !a.need_stats) {   /* k_backward_fast did the rows it could */
            if (a.skip_fast && bwd_fast_row<D>(a, r, b)) continue;
        } else if (D < 3 && bwd_stats_fast<D < 3 ? D : 0, G>(a, r, lane, b, p2, p3)) {
            if (bwd_out_aligned<D < 3 ? D : 0>(a, r)) {
                bwd_fast_body<D < 3 ? D : 0, G, O, true>(a, r, lane, b, mpart);
                continue;
            }
            have = true;
        }
        bwd_row_robust<G>(a, r, lane, part, bpart, b, have);
    }
}

/* The backward's per-row arrays, before anything is written: ids in range (INDEX), then
   lse, entropy, dlogp, dentropy finite (NONFINITE), as the CPU checks them. */
struct RowCheckArgs { int64_t n, V; const int32_t *ids; const float *arr[4]; Hdr *hdr; };

__global__ void k_check_rows(RowCheckArgs a)
{
    for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < a.n; r += (int64_t)gridDim.x * blockDim.x) {
        if (a.ids && (a.ids[r] < 0 || a.ids[r] >= a.V)) flag(a.hdr, CHK_INDEX);
        for (int i = 0; i < 4; ++i)
            if (a.arr[i] && !finite_f(a.arr[i][r])) flag(a.hdr, CHK_NONFINITE);
    }
}

/* --- perturb_patch_rows: the decision of row i is vppo_uniform(seed, i) < prob, in the
   same integer and double arithmetic as the CPU, so the rows chosen are the same. */
__device__ __forceinline__ u64 hash64(u64 x)
{
    u64 z = x + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

__device__ __forceinline__ double uniform(u64 seed, u64 i)
{
    return (double)(hash64(seed ^ hash64(i)) >> 40) * (1.0 / 16777216.0);
}

__global__ void k_check_fill(const float *fill, int64_t n, Hdr *hdr)
{
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (int64_t)gridDim.x * blockDim.x)
        if (!finite_f(fill[j])) flag(hdr, CHK_NONFINITE);
}

__global__ void k_patch_rows(float *rows, int64_t n_rows, int64_t row_len, int64_t stride, double prob,
                             const float *fill, u64 seed, Hdr *hdr)
{
    if (stopped(hdr)) return;
    for (int64_t i = blockIdx.x; i < n_rows; i += gridDim.x) {
        if (!(uniform(seed, (u64)i) < prob)) continue;
        float *row = rows + i * stride;
        for (int64_t j = threadIdx.x; j < row_len; j += blockDim.x) row[j] = fill ? fill[j] : 0.0f;
    }
}

/* ============================================================ 3. per-sequence work */

struct Seqs { const int64_t *off; int64_t B; const uint8_t *mask; };

__device__ __forceinline__ bool valid(const Seqs &s, int64_t t) { return !s.mask || s.mask[t] != 0; }

/* The CPU's offsets rules, checked piecewise: block b checks its own pair against both
   ends, which also keeps every write of block b inside [offsets[0], offsets[B]). */
__device__ __forceinline__ bool seq_range(const Seqs &s, int64_t b, Hdr *hdr, int64_t &lo, int64_t &hi)
{
    const int64_t first = s.off[0], last = s.off[s.B];
    bool ok = first >= 0 && last <= MAX_INDEX;
    if (b < s.B) {
        lo = s.off[b];
        hi = s.off[b + 1];
        ok = ok && first <= lo && lo <= hi && hi <= last;
    }
    if (!ok && threadIdx.x == 0) flag(hdr, CHK_SIZE);
    return ok;
}

/* k_b = clamp(ceil(n ratio - 1e-9), 0, n), without a fused multiply-add. */
__device__ __forceinline__ long long topk_count(long long n, double ratio)
{
    const double k = ceil(__dadd_rn(__dmul_rn((double)n, ratio), -1e-9));
    return k <= 0.0 ? 0 : (k >= (double)n ? n : (long long)k);
}

__device__ __forceinline__ unsigned key_of(float f)
{
    unsigned bits = __float_as_uint(f);
    if (bits == 0x80000000u) bits = 0;
    return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

__device__ __forceinline__ float unkey(unsigned key)
{
    return __uint_as_float((key & 0x80000000u) ? key & 0x7fffffffu : ~key);
}

enum { KIND_FINITE = 0, KIND_FINITE_OR_NEGINF = 1, KIND_NOT_NAN = 2 };
enum { DEP_NONE = 0, DEP_SAMPLED, DEP_GIVEN, DEP_ZERO };

/* ------------------------------------------------ the per-sequence block layout

   k_seq_b and k_soft run one block per sequence (grid-stride over sequences). Warp w owns
   the contiguous positions [lo + w per, lo + (w + 1) per), per = ceil(len / SEQ_BLOCK) * 32,
   and its lanes walk them 32 at a time: a warp's accesses are 32 consecutive elements,
   position order is warp order then iteration then lane (what the tie ranking needs), and
   every phase walks the same positions per thread, so what a phase reads of an earlier
   phase's global writes is its own.
   Block reductions take one barrier: each warp reduces in registers and its lane 0 writes
   one part (put_part); after the caller's barrier every thread combines the SEQ_WARPS parts
   in warp order (get_part), so every thread holds the same bits. */
const int SEQ_WARPS = SEQ_BLOCK / 32;
/* Sequences of at most this many tokens keep their keys (top-k) or scores (soft mask) in
   shared memory and read the scores from global memory at most twice; longer ones take
   the same steps on global memory (correct, slower). */
const int64_t SEQ_SMEM = 4096;

__device__ __forceinline__ void warp_span(int64_t lo, int64_t hi, int64_t &s0, int64_t &s1)
{
    const int64_t per = (hi - lo + SEQ_BLOCK - 1) / SEQ_BLOCK * 32, at = lo + (int64_t)(threadIdx.x >> 5) * per;
    s0 = at < hi ? at : hi;
    s1 = s0 + per < hi ? s0 + per : hi;
}

struct OpUMin { __device__ unsigned operator()(unsigned a, unsigned b) const { return a < b ? a : b; } };
struct OpUMax { __device__ unsigned operator()(unsigned a, unsigned b) const { return a > b ? a : b; } };

template <class T, class Op> __device__ __forceinline__ void put_part(T *part, T v, Op op)
{
    v = warp_all(v, op);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
}

template <class T, class Op> __device__ __forceinline__ T get_part(const T *part, Op op)
{
    T v = part[0];
#pragma unroll
    for (int w = 1; w < SEQ_WARPS; ++w) v = op(v, part[w]);
    return v;
}

/* k_seq_a: per sequence, the checks of per-token inputs, n_b, the dependency (sampled,
   given or zero), its mean, and the mean of logp - logp_old (sequence-level ratios). */
struct SeqA {
    Seqs s; Hdr *hdr; SeqRec *rec;
    const float *chk[5]; int kind[5]; int n_chk;
    int dep_mode, est; const float *logp, *logp_aug, *dep_in; float *dep;
    float *traj; int64_t *count;
    const float *d_new, *d_old;   /* mean_delta from these when not NULL */
};

__global__ void __launch_bounds__(SEQ_BLOCK) k_seq_a(SeqA a)
{
    __shared__ long long cnt_part[2][SEQ_WARPS];
    __shared__ double sum_part[2][2][SEQ_WARPS];
    int it = 0;
    for (int64_t b = blockIdx.x; b < (a.s.B > 0 ? a.s.B : 1); b += gridDim.x, ++it) {
        int64_t lo = 0, hi = 0;
        if (!seq_range(a.s, b, a.hdr, lo, hi) || b >= a.s.B) return;   /* uniform over the block */
        long long n = 0;
        double dep_sum = 0.0, delta_sum = 0.0;
        bool bad = false;
        for (int64_t t = lo + threadIdx.x; t < hi; t += SEQ_BLOCK) {
            if (!valid(a.s, t)) {
                if (a.dep) a.dep[t] = 0.0f;
                continue;
            }
            ++n;
#pragma unroll
            for (int i = 0; i < 5; ++i) {   /* unrolled: the arguments indexed by constants, no local copy */
                if (i >= a.n_chk) break;
                const float x = a.chk[i][t];
                if (a.kind[i] == KIND_FINITE) bad |= !finite_f(x);
                else if (a.kind[i] == KIND_FINITE_OR_NEGINF) bad |= !(x < INFINITY);
                else bad |= x != x;
            }
            if (a.dep_mode == DEP_SAMPLED) {
                const float lp = a.logp[t], la = a.logp_aug[t];
                bad |= !(lp < INFINITY) || !(la < INFINITY) || (lp == -INFINITY && la == -INFINITY);
                const double v = vppo__sampled_dep((vppo_estimator)a.est, lp, la);
                if (a.est == VPPO_EST_PROB_DROP) bad |= !(fabs(v) <= FLT_MAX);
                a.dep[t] = (float)v;
                dep_sum += (double)(float)v;
            } else if (a.dep_mode == DEP_GIVEN) {
                const float v = a.dep_in[t];
                bad |= !finite_f(v);
                a.dep[t] = v;
                dep_sum += (double)v;
            } else if (a.dep_mode == DEP_ZERO) {
                a.dep[t] = 0.0f;
            }
            if (a.d_new) delta_sum += (double)a.d_new[t] - (double)a.d_old[t];
        }
        if (bad) flag(a.hdr, CHK_NONFINITE);
        const int par = it & 1;   /* parts alternate between sequences: the next one may write while thread 0 reads */
        put_part(cnt_part[par], n, OpAdd());
        put_part(sum_part[par][0], dep_sum, OpAdd());
        put_part(sum_part[par][1], delta_sum, OpAdd());
        __syncthreads();
        if (threadIdx.x == 0) {
            n = get_part(cnt_part[par], OpAdd());
            dep_sum = get_part(sum_part[par][0], OpAdd());
            delta_sum = get_part(sum_part[par][1], OpAdd());
            a.rec[b].count = n;
            a.rec[b].mean_delta = n > 0 ? delta_sum / (double)n : 0.0;
            if (a.count) a.count[b] = n;
            if (a.traj) a.traj[b] = n > 0 ? (float)(dep_sum / (double)n) : 0.0f;
        }
    }
}

/* k_batch: one block for the batch scalars: total and non-empty counts, the advantage
   bound of vppo_prepare, TAS statistics and scales, the loss divisor. */
struct BatchArgs {
    int64_t B; Hdr *hdr; SeqRec *rec; Results *res;
    int adv_check; const float *adv_seq;
    int do_tas; int use_tas; vppo_tas_config tas;
    const vppo_tas_stats *global;   /* device, or NULL: this batch's statistics */
    const float *traj; float *scale;
    int do_divisor; vppo_loss_config loss;
};

__global__ void __launch_bounds__(BATCH_BLOCK) k_batch(BatchArgs a)
{
    vppo_tas_stats global;
    vppo_status gst = VPPO_OK;
    if (a.global) {   /* checked before stopped(): the CPU checks it before the per-token data */
        global = *a.global;
        gst = vppo__check_tas_stats(&global);
        if (gst != VPPO_OK && threadIdx.x == 0) flag(a.hdr, gst == VPPO_ERR_SIZE ? CHK_STATS_SIZE : CHK_STATS_PARAM);
    }
    /* uniform over the block: every thread judged the same global, and no thread of this
       kernel has flagged anything else yet */
    if (gst != VPPO_OK || stopped(a.hdr)) return;
    const int tid = threadIdx.x;
    long long n_total = 0, n_nonempty = 0;
    for (int64_t b = tid; b < a.B; b += BATCH_BLOCK) {
        n_total += a.rec[b].count;
        n_nonempty += a.rec[b].count > 0;
    }
    n_total = block_count<BATCH_BLOCK>(n_total);
    n_nonempty = block_count<BATCH_BLOCK>(n_nonempty);
    if (a.adv_check) {
        /* scale * adv must stay a finite float: a TAS scale is at most beta_max (LINEAR)
           or beta_min + (1 - beta_min) * (non-empty sequences) (MEAN_PRESERVING) */
        double max_scale = 1.0;
        if (a.use_tas)
            max_scale = a.tas.mode == VPPO_TAS_LINEAR ? vppo__max(1.0, a.tas.beta_max)
                      : a.tas.beta_min + (1.0 - (double)a.tas.beta_min) * (double)n_nonempty;
        bool bad = false;
        for (int64_t b = tid; b < a.B; b += BATCH_BLOCK) {
            if (a.rec[b].count == 0) continue;
            const float v = a.adv_seq[b];
            bad |= !finite_f(v) || fabs((double)v) * max_scale * (1.0 + 1e-6) > FLT_MAX;
        }
        if (bad) flag(a.hdr, CHK_NONFINITE);
    }
    double st_min, st_max;
    long long st_n;
    if (a.do_tas) {
        if (a.global) {
            st_min = global.min; st_max = global.max; st_n = global.n;
        } else {
            double lo = INFINITY, hi = -INFINITY;
            long long n = 0;
            for (int64_t b = tid; b < a.B; b += BATCH_BLOCK) {
                if (a.rec[b].count == 0) continue;
                const double v = a.traj[b];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
                ++n;
            }
            st_min = block_all<BATCH_BLOCK>(lo, OpMin());
            st_max = block_all<BATCH_BLOCK>(hi, OpMax());
            st_n = block_count<BATCH_BLOCK>(n);
        }
        const double range = st_max - st_min;
        const bool shape = a.use_tas && st_n >= 2 && range > 1e-6;
        double x_mean = 0.0;
        if (shape) {
            double x_sum = 0.0;
            long long n_valid = 0;
            for (int64_t b = tid; b < a.B; b += BATCH_BLOCK)
                if (a.rec[b].count > 0) { x_sum += vppo__clamp((a.traj[b] - st_min) / range, 0.0, 1.0); ++n_valid; }
            x_sum = block_sum<BATCH_BLOCK>(x_sum);
            n_valid = block_count<BATCH_BLOCK>(n_valid);
            x_mean = n_valid > 0 ? x_sum / (double)n_valid : 0.0;
        }
        for (int64_t b = tid; b < a.B; b += BATCH_BLOCK) {
            double alpha = 1.0;
            if (shape && a.rec[b].count > 0)
                alpha = vppo__tas_alpha(&a.tas, vppo__clamp((a.traj[b] - st_min) / range, 0.0, 1.0), x_mean);
            a.scale[b] = (float)alpha;
        }
        if (tid == 0) { a.res->st_min = st_min; a.res->st_max = st_max; a.res->st_n = st_n; }
    }
    if (tid == 0) {
        a.res->n_total = n_total;
        a.res->n_nonempty = n_nonempty;
        if (a.do_divisor) a.res->divisor = vppo__loss_divisor(&a.loss, n_total, a.B);
    }
}

/* k_seq_b: per sequence, the shaped advantage and the top-k mask (the loss is k_loss).
   Top-k: the order-preserving 32-bit keys (0 marks an invalid position: a valid key is
   never 0, as only the NaN 0xffffffff maps there) go to shared memory in one read of the
   scores, with the block's smallest and largest valid key. Their common leading bits are
   the threshold's; a radix select then fixes the rest 8 bits a pass from the top, only the
   bytes not common to all keys: per pass each warp counts the digits of its own positions
   into its own 32-bit histogram, aggregated over the lanes holding the same digit
   (__match_any_sync: one shared atomic per distinct digit and warp, none serialised on
   the bins that sign and exponent bytes fill), one barrier, then every warp adds the
   SEQ_WARPS histograms and finds the digit itself (no broadcast barrier; passes alternate
   between two sets of histograms so that the next pass may count while slower warps
   still read). Among keys equal to the threshold the first `left` positions are taken:
   skipped when all of them are; otherwise one barrier shares each warp's tie count and a
   ballot ranks the ties inside a warp.
   Barriers per sequence: 1 (keys) + at most 4 (passes) + at most 1 (ties) + 1 (the sums)
   = 7, plus 1 per block (stopped()). */
struct SeqB {
    Seqs s; Hdr *hdr; SeqRec *rec; const Results *res;
    const float *scale, *adv_seq; float *adv_out;
    int do_topk; double ratio; const float *score; uint8_t *select;
    vppo_loss_config cfg;   /* k_loss */
    const float *logp, *logp_old, *logp_ref, *adv, *weight; const uint8_t *sel_in; float *dlogp;
};

struct SeqBShared {
    unsigned key[SEQ_SMEM];
    __align__(16) unsigned hist[2][SEQ_WARPS][256];
    unsigned kmin[SEQ_WARPS], kmax[SEQ_WARPS];
    long long ties[SEQ_WARPS];
    double sum[2][2][SEQ_WARPS];      /* [sequence parity][selected, rejected] */
    long long cnt[2][2][SEQ_WARPS];
};

template <bool SH>
__device__ __forceinline__ unsigned key_at(const SeqB &a, const unsigned *key, int64_t lo, int64_t t)
{
    if (SH) return key[t - lo];
    return valid(a.s, t) ? key_of(a.score[t]) : 0u;
}

/* The key of the k-th largest valid score (1 <= k <= n; every valid key shares the leading
   `common` bits of kmin), how many keys equal to it are taken (left), and whether that is
   all of them. C: the type of a digit's count over the block. */
template <bool SH, class C>
__device__ unsigned kth_key(const SeqB &a, SeqBShared &sh, int64_t lo, int64_t s0, int64_t s1, long long k,
                            long long n, unsigned kmin, int common, long long &left, bool &all_ties)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned mask = common == 32 ? 0xffffffffu : ~(0xffffffffu >> common);
    unsigned prefix = kmin & mask;
    long long need = k, have = n;   /* keys matching prefix, and how many of them to take */
#pragma unroll
    for (int pass = 0; pass < 4; ++pass) {
        const int shift = 24 - 8 * pass;
        if (shift >= 32 - common) continue;   /* a byte every key shares (uniform) */
        unsigned *h = sh.hist[pass & 1][warp];
        for (int i = lane; i < 256; i += 32) h[i] = 0;
        __syncwarp();
        for (int64_t base = s0; base < s1; base += 32) {   /* warp-uniform trip count */
            const int64_t t = base + lane;
            const unsigned key = t < s1 ? key_at<SH>(a, sh.key, lo, t) : 0u;
            const bool in = key != 0u && (key & mask) == prefix;
            const unsigned d = in ? (key >> shift) & 0xffu : 0x100u + (unsigned)lane;
            const unsigned peers = __match_any_sync(0xffffffffu, d);
            if (in && lane == __ffs((int)peers) - 1) atomicAdd(&h[d], (unsigned)__popc(peers));
        }
        __syncthreads();
        /* lane l: digits 255 - 8l down to 248 - 8l, summed over the warps (two 16-byte
           loads per warp); a scan from the top finds the lane where the count reaches
           need, and that lane the digit */
        C cnt[8], tot = 0;
#pragma unroll
        for (int j = 0; j < 8; ++j) cnt[j] = 0;
        for (int w = 0; w < SEQ_WARPS; ++w) {
            const uint4 *p = (const uint4 *)&sh.hist[pass & 1][w][248 - 8 * lane];
            const uint4 q0 = p[0], q1 = p[1];
            cnt[7] += q0.x; cnt[6] += q0.y; cnt[5] += q0.z; cnt[4] += q0.w;
            cnt[3] += q1.x; cnt[2] += q1.y; cnt[1] += q1.z; cnt[0] += q1.w;
        }
#pragma unroll
        for (int j = 0; j < 8; ++j) tot += cnt[j];
        C incl = tot;
#pragma unroll
        for (int m = 1; m < 32; m <<= 1) {
            const C y = __shfl_up_sync(0xffffffffu, incl, m);
            if (lane >= m) incl += y;
        }
        const long long excl = (long long)(incl - tot);
        const bool here = excl < need && need <= (long long)incl;
        long long rem = need - excl, bin = 0;
        int dj = -1;
#pragma unroll
        for (int j = 0; j < 8; ++j)
            if (dj < 0) {
                if ((long long)cnt[j] >= rem) { dj = j; bin = (long long)cnt[j]; }
                else rem -= (long long)cnt[j];
            }
        const int src = __ffs((int)__ballot_sync(0xffffffffu, here)) - 1;
        const unsigned digit = (unsigned)__shfl_sync(0xffffffffu, 255 - 8 * lane - dj, src);
        need = __shfl_sync(0xffffffffu, rem, src);
        have = __shfl_sync(0xffffffffu, bin, src);
        prefix |= digit << shift;
        mask |= 0xffu << shift;
    }
    left = need;
    all_ties = need == have;
    return prefix;
}

template <bool SH>
__device__ void topk_seq(const SeqB &a, SeqBShared &sh, int64_t b, int64_t lo, int64_t s0, int64_t s1, long long n,
                         double &sum_sel, double &sum_rej, long long &n_sel, long long &n_rej)
{
    const int lane = threadIdx.x & 31;
    const float sc = a.adv_out ? a.scale[b] : 0.0f, av = a.adv_out ? a.adv_seq[b] : 0.0f;
    unsigned kmin = 0xffffffffu, kmax = 0u;
    for (int64_t t = s0 + lane; t < s1; t += 32) {   /* the one read of the scores (SH) */
        const bool v = valid(a.s, t);
        if (a.adv_out) a.adv_out[t] = v ? sc * av : 0.0f;
        const unsigned key = v ? key_of(a.score[t]) : 0u;
        if (SH) sh.key[t - lo] = key;
        if (v) { kmin = key < kmin ? key : kmin; kmax = key > kmax ? key : kmax; }
    }
    put_part(sh.kmin, kmin, OpUMin());
    put_part(sh.kmax, kmax, OpUMax());
    __syncthreads();
    kmin = get_part(sh.kmin, OpUMin());
    kmax = get_part(sh.kmax, OpUMax());
    const long long k = topk_count(n, a.ratio);
    unsigned thr = 0;
    long long left = 0, before = 0;
    bool all_ties = true;
    if (k > 0) {
        const int common = __clz((int)(kmin ^ kmax));
        thr = SH ? kth_key<true, unsigned>(a, sh, lo, s0, s1, k, n, kmin, common, left, all_ties)
                 : kth_key<false, unsigned long long>(a, sh, lo, s0, s1, k, n, kmin, common, left, all_ties);
    }
    if (!all_ties) {   /* rank the ties: this warp's first one is preceded by the earlier warps' */
        long long mine = 0;
        for (int64_t base = s0; base < s1; base += 32) {
            const int64_t t = base + lane;
            mine += __popc(__ballot_sync(0xffffffffu, t < s1 && key_at<SH>(a, sh.key, lo, t) == thr));
        }
        if (lane == 0) sh.ties[threadIdx.x >> 5] = mine;
        __syncthreads();
        for (int w = 0; w < (int)(threadIdx.x >> 5); ++w) before += sh.ties[w];
    }
    for (int64_t base = s0; base < s1; base += 32) {
        const int64_t t = base + lane;
        const unsigned key = t < s1 ? key_at<SH>(a, sh.key, lo, t) : 0u;
        const bool eq = k > 0 && key == thr;
        const unsigned ties = __ballot_sync(0xffffffffu, eq);
        const bool take = k > 0 && (key > thr || (eq && (all_ties || before + __popc(ties & ((1u << lane) - 1u)) < left)));
        before += __popc(ties);
        if (t < s1) {
            a.select[t] = (uint8_t)take;
            const float v = unkey(key);
            if (key != 0u && finite_f(v)) {
                if (take) { sum_sel += v; ++n_sel; }
                else { sum_rej += v; ++n_rej; }
            }
        }
    }
    if (threadIdx.x == 0) {
        SeqRec &r = a.rec[b];
        r.k = k;
        r.has_thr = k > 0 && finite_f(unkey(thr));
        r.thr = r.has_thr ? (double)unkey(thr) : 0.0;
    }
}

__global__ void __launch_bounds__(SEQ_BLOCK) k_seq_b(SeqB a)
{
    __shared__ SeqBShared sh;
    if (stopped(a.hdr)) return;
    const int lane = threadIdx.x & 31;
    int it = 0;
    for (int64_t b = blockIdx.x; b < a.s.B; b += gridDim.x, ++it) {
        const int64_t lo = a.s.off[b], hi = a.s.off[b + 1];
        const long long n = a.rec[b].count;
        const int par = it & 1;   /* the sums' parts alternate between sequences */
        int64_t s0, s1;
        warp_span(lo, hi, s0, s1);
        double sum_sel = 0.0, sum_rej = 0.0;
        long long n_sel = 0, n_rej = 0;
        if (a.do_topk) {
            if (hi - lo <= SEQ_SMEM) topk_seq<true>(a, sh, b, lo, s0, s1, n, sum_sel, sum_rej, n_sel, n_rej);
            else topk_seq<false>(a, sh, b, lo, s0, s1, n, sum_sel, sum_rej, n_sel, n_rej);
        } else if (a.adv_out) {
            const float sc = a.scale[b], av = a.adv_seq[b];
            for (int64_t t = s0 + lane; t < s1; t += 32) a.adv_out[t] = valid(a.s, t) ? sc * av : 0.0f;
        }
        put_part(sh.sum[par][0], sum_sel, OpAdd());
        put_part(sh.sum[par][1], sum_rej, OpAdd());
        put_part(sh.cnt[par][0], n_sel, OpAdd());
        put_part(sh.cnt[par][1], n_rej, OpAdd());
        __syncthreads();   /* the sums; also orders this sequence's reads of sh before the next one's writes */
        if (a.do_topk && threadIdx.x == 0) {
            SeqRec &r = a.rec[b];
            r.sum_sel = get_part(sh.sum[par][0], OpAdd()); r.n_sel_fin = get_part(sh.cnt[par][0], OpAdd());
            r.sum_rej = get_part(sh.sum[par][1], OpAdd()); r.n_rej_fin = get_part(sh.cnt[par][1], OpAdd());
        }
    }
}

/* k_loss: per sequence, the loss and its gradient (vppo.h's per-token math), after k_seq_b
   (it reads the mask and the advantage k_seq_b wrote) or alone (policy_loss). A kernel of
   its own: the double-precision token math needs ~95 registers, the top-k ~56.
   Barriers per sequence: 1 (the sums), plus 1 per block (stopped()). */
enum { SUM_PG, SUM_KL, SUM_ENT, SUM_PPO_KL, SUM_DPG, N_SUMS };
enum { CNT_CLIP, CNT_CLIP_DUAL, CNT_SELECTED, N_CNTS };

__global__ void __launch_bounds__(SEQ_BLOCK) k_loss(SeqB a)
{
    __shared__ double sums[2][N_SUMS][SEQ_WARPS];   /* [sequence parity] */
    __shared__ long long cnts[2][N_CNTS][SEQ_WARPS];
    if (stopped(a.hdr)) return;
    const int lane = threadIdx.x & 31;
    const vppo_loss_config &cfg = a.cfg;
    const bool seq_ratio = cfg.ratio_level != VPPO_RATIO_TOKEN;
    const bool spread = cfg.ratio_level == VPPO_RATIO_SEQ && cfg.pg_kind == VPPO_PG_CLIP;
    const vppo__clip clip = vppo__clip_of(&cfg);
    int it = 0;
    for (int64_t b = blockIdx.x; b < a.s.B; b += gridDim.x, ++it) {
        const int64_t lo = a.s.off[b], hi = a.s.off[b + 1];
        const long long n = a.rec[b].count;
        const int par = it & 1;   /* the parts alternate between sequences: the spread loop reads them */
        int64_t s0, s1;
        warp_span(lo, hi, s0, s1);
        const double coef = n > 0 ? vppo__seq_coef(&cfg, n, a.res->divisor) : 0.0;
        const double mean_delta = a.rec[b].mean_delta;
        vppo__loss_sums sum;
        memset(&sum, 0, sizeof sum);
        int overflow = 0;
        for (int64_t t = s0 + lane; t < s1; t += 32) {
            if (!valid(a.s, t)) { if (a.dlogp) a.dlogp[t] = 0.0f; continue; }
            vppo__token tk;
            if (seq_ratio)   /* two calls: no pointer to a local that may be NULL (a stack slot) */
                vppo__token_add_at(&cfg, &clip, a.logp, a.logp_old, a.logp_ref, a.adv, a.sel_in, a.weight, t,
                                   &mean_delta, &tk, &sum);
            else
                vppo__token_add_at(&cfg, &clip, a.logp, a.logp_old, a.logp_ref, a.adv, a.sel_in, a.weight, t,
                                   NULL, &tk, &sum);
            if (a.dlogp && !spread) vppo__store_grad(a.dlogp, t, vppo__token_grad(&cfg, coef, tk.dpg, tk.dkl), &overflow);
        }
        put_part(sums[par][SUM_PG], sum.pg, OpAdd());
        put_part(sums[par][SUM_KL], sum.kl, OpAdd());
        put_part(sums[par][SUM_ENT], sum.ent, OpAdd());
        put_part(sums[par][SUM_PPO_KL], sum.ppo_kl, OpAdd());
        if (spread) put_part(sums[par][SUM_DPG], sum.dpg, OpAdd());
        put_part(cnts[par][CNT_CLIP], (long long)sum.n_clip, OpAdd());
        put_part(cnts[par][CNT_CLIP_DUAL], (long long)sum.n_clip_dual, OpAdd());
        put_part(cnts[par][CNT_SELECTED], (long long)sum.n_selected, OpAdd());
        __syncthreads();
        if (spread && a.dlogp) {
            /* GSPO: d rho / d logp_u = 1/n_b for every valid u of b */
            const double dpg = get_part(sums[par][SUM_DPG], OpAdd()) / (double)n;
            for (int64_t t = s0 + lane; t < s1; t += 32) {
                if (!valid(a.s, t)) { a.dlogp[t] = 0.0f; continue; }
                double dkl = 0.0;
                if (cfg.kl_kind != VPPO_KL_NONE) vppo__kl_term(cfg.kl_kind, (double)a.logp[t] - (double)a.logp_ref[t], &dkl);
                vppo__store_grad(a.dlogp, t, vppo__token_grad(&cfg, coef, dpg, dkl), &overflow);
            }
        }
        if (overflow) flag(a.hdr, CHK_OVERFLOW);
        if (threadIdx.x == 0) {
            vppo__loss_sums r;
            memset(&r, 0, sizeof r);
            r.pg = get_part(sums[par][SUM_PG], OpAdd());
            r.kl = get_part(sums[par][SUM_KL], OpAdd());
            r.ent = get_part(sums[par][SUM_ENT], OpAdd());
            r.ppo_kl = get_part(sums[par][SUM_PPO_KL], OpAdd());
            if (spread) r.dpg = get_part(sums[par][SUM_DPG], OpAdd());
            r.n_clip = get_part(cnts[par][CNT_CLIP], OpAdd());
            r.n_clip_dual = get_part(cnts[par][CNT_CLIP_DUAL], OpAdd());
            r.n_selected = get_part(cnts[par][CNT_SELECTED], OpAdd());
            a.rec[b].coef = coef;
            a.rec[b].loss = r;
        }
    }
}

/* k_soft: per sequence, z = (s - mean) / (std + 1e-6) (mean and std in double, as the CPU),
   then c with mean sigmoid(z - c) = ratio, weight = sigmoid(z - c).
   Mean and variance take one barrier (each warp's own mean and squared deviations, merged
   in warp order). The root is found in float, in base-2 units u = c log2(e): each thread
   keeps z log2(e) as a float (shared memory for up to SEQ_SMEM tokens, else in weight[] as
   scratch: its own positions); each step adds sigmoid = 1 / (1 + 2^(u - z log2 e)) (one
   approximate exponent, one approximate reciprocal) and its derivative over the sequence
   in float, in a fixed order (per thread, then warp shuffles, then the warps' parts in warp
   order: deterministic), and in the same pass the sums at SOFT_GRID points splitting the
   bracket [zmin - logit(ratio), zmax - logit(ratio)] (the CPU's) into equal parts; it
   narrows the bracket by the signs (at least (SOFT_GRID + 1)-fold per step), and moves u by
   a Newton step when that lands inside the bracket, else to its middle. It stops when a
   Newton step is below max(1e-7 log2 e, 1e-6 |u|), or the bracket is 1e-7 (the CPU's
   rule, in c) or closed in float, and after SOFT_MAX_STEPS steps in any case: then u lies
   in a bracket 8^-8 = 2^-24 of the first one wide (about 1e-5 in c at 20,000 tokens with
   an outlier, z up to sqrt(n)), where one Newton step in double is quadratically accurate.
   Then one Newton step with arguments z - c formed in double and double sums (float sums
   of many equal terms are biased) fixes c, and the weights take that argument in double,
   the sigmoid in float: within about 1e-7 of the float64 root's weights.
   Scores are read twice (SH): once into shared memory, once for the weights.
   Barriers per sequence: 1 (mean and variance) + 1 per root step (at most SOFT_MAX_STEPS)
   + 1 (the polishing step); with stopped()'s and k_seq_a's, 12 at most (issue 19: 12). */
const int SOFT_GRID = 7, SOFT_MAX_STEPS = 8;

#ifdef VPPO_CUDA_EMULATE
/* test hook of the emulated suite: the most root steps any sequence took, and how many
   sequences stopped at the cap, since the last vppo_cuda_emu_soft_steps(1) */
static std::atomic<int> soft_steps_max(0), soft_steps_capped(0);
extern "C" int vppo_cuda_emu_soft_steps(int reset, int *capped)
{
    const int m = soft_steps_max.load();
    if (capped) *capped = soft_steps_capped.load();
    if (reset) { soft_steps_max.store(0); soft_steps_capped.store(0); }
    return m;
}
__device__ __forceinline__ void soft_steps_note(int steps)
{
    if (threadIdx.x != 0) return;
    int m = soft_steps_max.load();
    while (steps > m && !soft_steps_max.compare_exchange_weak(m, steps)) {}
    if (steps >= SOFT_MAX_STEPS) ++soft_steps_capped;
}
#else
__device__ __forceinline__ void soft_steps_note(int) {}
#endif

struct SoftArgs { Seqs s; Hdr *hdr; const SeqRec *rec; const float *score; double ratio; float *weight; };

struct SoftShared {
    float s[SEQ_SMEM], zl[SEQ_SMEM];
    double sum[2][SEQ_WARPS];
    float smin[SEQ_WARPS], smax[SEQ_WARPS];
    long long wn[SEQ_WARPS];                  /* valid tokens per warp span */
    float f[2][SOFT_GRID + 1][SEQ_WARPS], g[2][SEQ_WARPS];   /* root steps, alternating */
    double pf[SEQ_WARPS], pg[SEQ_WARPS];      /* the polishing step */
};

struct OpFMin { __device__ float operator()(float a, float b) const { return fminf(a, b); } };
struct OpFMax { __device__ float operator()(float a, float b) const { return fmaxf(a, b); } };

/* sigmoid(x) = 1 / (1 + 2^(-x log2 e)) from the base-2 argument m = -x log2 e, and e = 2^m
   capped at FLT_MAX: 0 when 2^m > 2^126 (__fdividef's range), 1 when 2^m flushes to zero. */
__device__ __forceinline__ float sigmoid2(float m, float &e)
{
    e = fminf(ex2_approx(m), FLT_MAX);   /* finite: w^2 e is then 0, not 0 * inf */
    return __fdividef(1.0f, 1.0f + e);
}

/* A float no larger (down) or no smaller than x. */
__device__ __forceinline__ float float_down(double x) { const float f = (float)x; return (double)f > x ? nextafterf(f, -INFINITY) : f; }
__device__ __forceinline__ float float_up(double x) { const float f = (float)x; return (double)f < x ? nextafterf(f, INFINITY) : f; }

template <bool SH>
__device__ void soft_seq(const SoftArgs &a, SoftShared &sh, int64_t lo, int64_t len, int64_t s0, int64_t s1, long long n)
{
    const int lane = threadIdx.x & 31;
    /* mean and variance behind one barrier: each warp sums its own span (shuffles, no
       barrier), then sums its squared deviations from its own mean; the warps' parts are
       merged in warp order (Chan et al.: M2 = sum of M2_w + n_w (mean_w - mean)^2) */
    double sum = 0.0;
    long long cnt = 0;
    float smin = INFINITY, smax = -INFINITY;
    for (int64_t t = s0 + lane; t < s1; t += 32) {
        const bool v = valid(a.s, t);
        const float x = v ? a.score[t] : NAN;
        if (SH) sh.s[t - lo] = x;
        if (v) { sum += x; ++cnt; smin = fminf(smin, x); smax = fmaxf(smax, x); }
    }
    sum = warp_all(sum, OpAdd());
    cnt = warp_all(cnt, OpAdd());
    const double wmean = cnt > 0 ? sum / (double)cnt : 0.0;
    double m2 = 0.0;
    for (int64_t t = s0 + lane; t < s1; t += 32) {   /* this thread's own positions: no barrier */
        const float x = SH ? sh.s[t - lo] : (valid(a.s, t) ? a.score[t] : NAN);
        if (x == x) m2 += ((double)x - wmean) * ((double)x - wmean);
    }
    if (lane == 0) { sh.sum[0][threadIdx.x >> 5] = sum; sh.wn[threadIdx.x >> 5] = cnt; }
    put_part(sh.sum[1], m2, OpAdd());
    put_part(sh.smin, smin, OpFMin());
    put_part(sh.smax, smax, OpFMax());
    __syncthreads();
    const double mean = get_part(sh.sum[0], OpAdd()) / (double)n;
    smin = get_part(sh.smin, OpFMin());
    smax = get_part(sh.smax, OpFMax());
    double var = 0.0;
#pragma unroll
    for (int w = 0; w < SEQ_WARPS; ++w)
        if (sh.wn[w] > 0) {
            const double d = sh.sum[0][w] / (double)sh.wn[w] - mean;
            var += sh.sum[1][w] + (double)sh.wn[w] * d * d;
        }
    const double inv = 1.0 / (sqrt(var / (double)n) + 1e-6);
    for (int64_t t = s0 + lane; t < s1; t += 32) {   /* z log2(e), -inf at invalid positions (weight 0) */
        const float x = SH ? sh.s[t - lo] : (valid(a.s, t) ? a.score[t] : NAN);
        const float zl = x == x ? (float)(((double)x - mean) * inv * LOG2E) : -INFINITY;
        if (SH) sh.zl[t - lo] = zl;
        else a.weight[t] = zl;
    }
    /* the CPU's bracket, z's min and max as it computes them, in base-2 units, rounded outwards */
    const double logit = log(a.ratio / (1.0 - a.ratio)), target = (double)n * a.ratio;
    float ulo = float_down((((double)smin - mean) * inv - logit) * LOG2E);
    float uhi = float_up((((double)smax - mean) * inv - logit) * LOG2E);
    const float tol = (float)(1e-7 * LOG2E);
    float u = 0.5f * (ulo + uhi);
    /* (tlo, thi): the bracket narrowed only by signs the float sums cannot get wrong, for
       the polishing step's clamp: a sum of at most m = ceil(len / SEQ_BLOCK) terms per
       thread, 5 shuffle levels and SEQ_WARPS parts, each term within a few 2^-22 (the
       approximate exponent and reciprocal), is within (m + 16) 2^-22 of itself exactly */
    float tlo = ulo, thi = uhi;
    const double sum_eps = (double)((len + SEQ_BLOCK - 1) / SEQ_BLOCK + 16) * 2.384185791015625e-7;   /* 2^-22 */
    int step = 0;
#pragma unroll 1
    for (; step < SOFT_MAX_STEPS; ++step) {   /* uniform over the block; one barrier per step */
        /* one pass evaluates the sum at u (with its derivative: the Newton step) and at
           SOFT_GRID points splitting the bracket into SOFT_GRID + 1 equal parts: the bracket
           shrinks at least (SOFT_GRID + 1)-fold per step whatever Newton does */
        const float h = (uhi - ulo) / (float)(SOFT_GRID + 1);
        float f[SOFT_GRID + 1], g = 0.0f;
#pragma unroll
        for (int j = 0; j <= SOFT_GRID; ++j) f[j] = 0.0f;
        for (int64_t t = s0 + lane; t < s1; t += 32) {
            const float zl = SH ? sh.zl[t - lo] : a.weight[t];
            float e;
            const float w = sigmoid2(u - zl, e);
            f[0] += w;
            g = fmaf(w * w, e, g);   /* w (1 - w) = w^2 e */
#pragma unroll
            for (int j = 1; j <= SOFT_GRID; ++j) f[j] += sigmoid2(fmaf((float)j, h, ulo) - zl, e);
        }
        const int par = step & 1;
#pragma unroll
        for (int j = 0; j <= SOFT_GRID; ++j) put_part(sh.f[par][j], f[j], OpAdd());
        put_part(sh.g[par], g, OpAdd());
        __syncthreads();
        g = get_part(sh.g[par], OpAdd());
        /* f falls as u grows: every point with a sum above the target is below the root,
           every point below is above it (a point's own rounding can break that order; the
           scan keeps ulo < uhi, and a contradiction closes the bracket) */
        float nlo = ulo, nhi = uhi;
        bool exact = false;
        const float f0 = get_part(sh.f[par][0], OpAdd());
        const double r = (double)f0 - target;
#pragma unroll
        for (int j = 0; j <= SOFT_GRID; ++j) {
            const float p = j == 0 ? u : fmaf((float)j, h, ulo), fj = j == 0 ? f0 : get_part(sh.f[par][j], OpAdd());
            const double rj = (double)fj - target, err = sum_eps * (double)fj;
            if (rj > 0.0 && p > nlo) nlo = p;
            else if (rj < 0.0 && p < nhi) nhi = p;
            else if (rj == 0.0 && p >= nlo && p <= nhi) { exact = true; nlo = nhi = p; }
            if (rj > err && p > tlo) tlo = p;
            else if (rj < -err && p < thi) thi = p;
        }
        if (exact || !(nlo < nhi)) { ulo = fminf(nlo, nhi); uhi = fmaxf(nlo, nhi); u = 0.5f * (ulo + uhi); ++step; break; }
        ulo = nlo;
        uhi = nhi;
        const float mid = 0.5f * (ulo + uhi), thr = fmaxf(tol, 1e-6f * fabsf(u));
        const float newton = g > 0.0f ? (float)((double)u + r / (LN2 * (double)g)) : NAN;
        if (fabsf(newton - u) <= thr) { u = fminf(fmaxf(newton, ulo), uhi); ++step; break; }   /* converged */
        const float next = newton > ulo && newton < uhi ? newton : mid;
        u = next;
        if (!(next > ulo && next < uhi) || uhi - ulo <= tol) { ++step; break; }   /* the bracket is closed */
    }
    /* after SOFT_MAX_STEPS steps u is inside a bracket at most (SOFT_GRID + 1)^-SOFT_MAX_STEPS
       of the first one wide: close enough for the polishing step's quadratic convergence */
    soft_steps_note(step);
    /* one Newton step with double arguments and double sums (float sums of many equal
       terms are biased: up to ~1e-5 in c at 20,000 tied tokens), kept near the bracket
       (the one whose ends no rounding of the float sums can misplace) */
    double c = (double)u * LN2, fd = 0.0, gd = 0.0;
    for (int64_t t = s0 + lane; t < s1; t += 32) {
        const float x = SH ? sh.s[t - lo] : (valid(a.s, t) ? a.score[t] : NAN);
        if (x != x) continue;
        float e;
        const float w = sigmoid2((float)((c - ((double)x - mean) * inv) * LOG2E), e);
        fd += (double)w;
        gd += (double)(w * w * e);
    }
    put_part(sh.pf, fd, OpAdd());
    put_part(sh.pg, gd, OpAdd());
    __syncthreads();
    fd = get_part(sh.pf, OpAdd());
    gd = get_part(sh.pg, OpAdd());
    if (gd > 0.0) {
        const double cn = c + (fd - target) / gd, slack = 1e-5 * (1.0 + fabs(c));
        const double clo = (double)tlo * LN2 - slack, chi = (double)thi * LN2 + slack;
        c = cn < clo ? clo : cn > chi ? chi : cn;
    }
    for (int64_t t = s0 + lane; t < s1; t += 32) {   /* the second read of the scores */
        float w = 0.0f, e;
        if (valid(a.s, t)) w = sigmoid2((float)((c - ((double)a.score[t] - mean) * inv) * LOG2E), e);
        a.weight[t] = w;
    }
}

__global__ void __launch_bounds__(SEQ_BLOCK) k_soft(SoftArgs a)
{
    __shared__ SoftShared sh;
    if (stopped(a.hdr)) return;
    const int lane = threadIdx.x & 31;
    for (int64_t b = blockIdx.x; b < a.s.B; b += gridDim.x) {
        const int64_t lo = a.s.off[b], hi = a.s.off[b + 1];
        const long long n = a.rec[b].count;
        int64_t s0, s1;
        warp_span(lo, hi, s0, s1);
        if (n == 0 || a.ratio == 0.0 || a.ratio == 1.0) {
            for (int64_t t = s0 + lane; t < s1; t += 32) a.weight[t] = (float)(valid(a.s, t) && a.ratio == 1.0);
            continue;
        }
        if (hi - lo <= SEQ_SMEM) soft_seq<true>(a, sh, lo, hi - lo, s0, s1, n);
        else soft_seq<false>(a, sh, lo, hi - lo, s0, s1, n);
    }
}

/* k_final: the batch sums of the per-sequence records, in a fixed order. */
__global__ void __launch_bounds__(SEQ_BLOCK) k_final(int64_t B, const SeqRec *rec, Results *res, int topk, int loss,
                                                     const Hdr *hdr)
{
    if (stopped(hdr)) return;
    const int tid = threadIdx.x;
    if (topk) {
        long long nv = 0, ns = 0, nt = 0, nsf = 0, nrf = 0;
        double st = 0.0, ss = 0.0, sr = 0.0;
        for (int64_t b = tid; b < B; b += SEQ_BLOCK) {
            const SeqRec &r = rec[b];
            nv += r.count; ns += r.k; nt += r.has_thr; nsf += r.n_sel_fin; nrf += r.n_rej_fin;
            st += r.thr; ss += r.sum_sel; sr += r.sum_rej;
        }
        nv = block_count<SEQ_BLOCK>(nv); ns = block_count<SEQ_BLOCK>(ns); nt = block_count<SEQ_BLOCK>(nt);
        nsf = block_count<SEQ_BLOCK>(nsf); nrf = block_count<SEQ_BLOCK>(nrf);
        st = block_sum<SEQ_BLOCK>(st); ss = block_sum<SEQ_BLOCK>(ss); sr = block_sum<SEQ_BLOCK>(sr);
        if (tid == 0) {
            res->topk_valid = nv; res->topk_selected = ns; res->n_thr = nt;
            res->n_sel_fin = nsf; res->n_rej_fin = nrf;
            res->sum_thr = st; res->sum_sel = ss; res->sum_rej = sr;
        }
    }
    if (loss) {
        vppo__loss_sums tot;
        memset(&tot, 0, sizeof tot);
        for (int64_t b = tid; b < B; b += SEQ_BLOCK) {
            const SeqRec &r = rec[b];
            if (r.count == 0) continue;
            tot.pg += r.coef * r.loss.pg; tot.kl += r.coef * r.loss.kl; tot.ent += r.coef * r.loss.ent;
            tot.ppo_kl += r.loss.ppo_kl;
            tot.n_clip += r.loss.n_clip; tot.n_clip_dual += r.loss.n_clip_dual; tot.n_selected += r.loss.n_selected;
        }
        tot.pg = block_sum<SEQ_BLOCK>(tot.pg); tot.kl = block_sum<SEQ_BLOCK>(tot.kl); tot.ent = block_sum<SEQ_BLOCK>(tot.ent);
        tot.ppo_kl = block_sum<SEQ_BLOCK>(tot.ppo_kl);
        tot.n_clip = block_count<SEQ_BLOCK>(tot.n_clip); tot.n_clip_dual = block_count<SEQ_BLOCK>(tot.n_clip_dual);
        tot.n_selected = block_count<SEQ_BLOCK>(tot.n_selected);
        if (tid == 0) res->loss = tot;
    }
}

/* ------------------------------------------------------ rollout correction */

/* Per sequence: the checks (offsets, finite log-probs), the sequence sums, then each
   token's weight (before batch normalization) and keep, and the sequence's metric sums
   in rec[b] (the workspace's sequence records, read as vppo__rc_sums). The math is
   vppo.h's (VPPO_HD). */
struct RcArgs {
    Seqs s; Hdr *hdr; vppo__rc_sums *rec;
    vppo_rc_config cfg; const float *logp, *logp_rollout; float *weight; uint8_t *keep;
};

__device__ void block_sums(vppo__rc_sums &a)
{
    a.n = block_count<SEQ_BLOCK>(a.n); a.kept = block_count<SEQ_BLOCK>(a.kept);
    a.w = block_sum<SEQ_BLOCK>(a.w); a.w2 = block_sum<SEQ_BLOCK>(a.w2);
    a.high = block_sum<SEQ_BLOCK>(a.high); a.low = block_sum<SEQ_BLOCK>(a.low);
    a.stat = block_sum<SEQ_BLOCK>(a.stat); a.kl = block_sum<SEQ_BLOCK>(a.kl);
    a.k3 = block_sum<SEQ_BLOCK>(a.k3); a.chi2 = block_sum<SEQ_BLOCK>(a.chi2);
    a.seq_w = block_sum<SEQ_BLOCK>(a.seq_w); a.chi2_seq = block_sum<SEQ_BLOCK>(a.chi2_seq);
    a.ppl = block_sum<SEQ_BLOCK>(a.ppl);
    a.w_min = block_all<SEQ_BLOCK>(a.w_min, OpMin()); a.w_max = block_all<SEQ_BLOCK>(a.w_max, OpMax());
    a.stat_min = block_all<SEQ_BLOCK>(a.stat_min, OpMin()); a.stat_max = block_all<SEQ_BLOCK>(a.stat_max, OpMax());
}

__global__ void __launch_bounds__(SEQ_BLOCK) k_rc_seq(RcArgs a)
{
    for (int64_t b = blockIdx.x; b < (a.s.B > 0 ? a.s.B : 1); b += gridDim.x) {
        int64_t lo = 0, hi = 0;
        if (!seq_range(a.s, b, a.hdr, lo, hi) || b >= a.s.B) return;   /* uniform over the block */
        vppo__rc_seq q;
        vppo__rc_seq_init(&q);
        bool bad = false;
        for (int64_t t = lo + threadIdx.x; t < hi; t += SEQ_BLOCK) {
            if (!valid(a.s, t)) continue;
            bad |= !finite_f(a.logp[t]) || !finite_f(a.logp_rollout[t]);
            vppo__rc_seq_add(&a.cfg, &q, a.logp[t], a.logp_rollout[t]);
        }
        if (bad) flag(a.hdr, CHK_NONFINITE);
        q.n = block_count<SEQ_BLOCK>(q.n);
        q.sum_l = block_sum<SEQ_BLOCK>(q.sum_l);
        q.sum_stat = block_sum<SEQ_BLOCK>(q.sum_stat);
        q.max_stat = block_all<SEQ_BLOCK>(q.max_stat, OpMax());
        q.sum_logp = block_sum<SEQ_BLOCK>(q.sum_logp);
        q.sum_logp_rollout = block_sum<SEQ_BLOCK>(q.sum_logp_rollout);
        vppo__rc_sums sums;
        vppo__rc_sums_init(&sums);
        for (int64_t t = lo + threadIdx.x; t < hi; t += SEQ_BLOCK) {
            double w = 0.0;
            const int k = valid(a.s, t) ? vppo__rc_token(&a.cfg, &q, a.logp[t], a.logp_rollout[t], &w, &sums) : 0;
            if (a.weight) a.weight[t] = k ? (float)w : 0.0f;
            if (a.keep) a.keep[t] = (uint8_t)k;
        }
        block_sums(sums);
        if (threadIdx.x == 0) {
            vppo__rc_seq_close(&a.cfg, &q, &sums);
            a.rec[b] = sums;
        }
    }
}

/* One block: the batch sums of the sequence records in a fixed order, the metrics. */
__global__ void __launch_bounds__(SEQ_BLOCK) k_rc_batch(int64_t B, const vppo__rc_sums *rec, vppo_rc_config cfg,
                                                        vppo_rc_out *out, const Hdr *hdr)
{
    if (stopped(hdr)) return;
    vppo__rc_sums tot;
    vppo__rc_sums_init(&tot);
    long long nseq = 0, rejected = 0;
    for (int64_t b = threadIdx.x; b < B; b += SEQ_BLOCK) {
        if (rec[b].n == 0) continue;
        vppo__rc_sums_merge(&tot, &rec[b]);
        nseq += 1;
        rejected += rec[b].kept < rec[b].n;
    }
    block_sums(tot);
    nseq = block_count<SEQ_BLOCK>(nseq);
    rejected = block_count<SEQ_BLOCK>(rejected);
    if (threadIdx.x == 0) vppo__rc_out_fill(&cfg, &tot, nseq, rejected, out);
}

/* Batch normalization: the weights over [offsets[0], offsets[B]) divided by out->is_norm. */
__global__ void k_rc_scale(const int64_t *off, int64_t B, float *weight, const vppo_rc_out *out, const Hdr *hdr)
{
    if (stopped(hdr) || out->is_norm == 1.0) return;
    const double norm = out->is_norm;
    for (int64_t t = off[0] + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < off[B];
         t += (int64_t)gridDim.x * blockDim.x)
        weight[t] = (float)((double)weight[t] / norm);
}

/* The status from the header, and the metrics to *dst (device, or NULL) on success. */
__global__ void k_rc_publish(const Hdr *hdr, const vppo_rc_out *src, int32_t *status, vppo_rc_out *dst)
{
    const vppo_status st = hdr->check == CHK_SIZE ? VPPO_ERR_SIZE :
                           hdr->check == CHK_NONFINITE ? VPPO_ERR_NONFINITE : VPPO_OK;
    if (st == VPPO_OK && dst) *dst = *src;
    *status = (int32_t)st;
}

/* ===================================================================== 4. host side */

thread_local char error_message[256];

/* A launch and its own error (cudaLaunchKernel's return), never cudaGetLastError: that
   would take, clear and report as ours an error the caller left pending. The arguments
   are converted to the kernel's parameter types before their addresses are taken. */
#ifdef VPPO_CUDA_EMULATE
template <class K, class... A>
cudaError_t launch(K kernel, unsigned grid, unsigned block, cudaStream_t stream, A... args)
{
    return vppo_emu_launch(dim3(grid), dim3(block), stream, [=] { kernel(args...); });
}
#else
template <class... P> struct Launcher {
    static cudaError_t go(void (*kernel)(P...), unsigned grid, unsigned block, cudaStream_t stream, P... p)
    {
        void *argv[] = { (void *)&p... };
        return cudaLaunchKernel((const void *)kernel, dim3(grid), dim3(block), argv, 0, stream);
    }
};
template <class... P, class... A>
cudaError_t launch(void (*kernel)(P...), unsigned grid, unsigned block, cudaStream_t stream, A... args)
{
    return Launcher<P...>::go(kernel, grid, block, stream, args...);
}
#endif

/* What the last kernel of every call (k_publish) writes: the status word and the scalar
   results (device pointers, each may be NULL). */
struct Publish {
    int32_t *status;
    int32_t *written;            /* 1 when the scalar results were written */
    vppo_topk_info *topk;
    vppo_tas_stats *stats;
    vppo_loss_out *out;
    vppo_loss_config cfg;        /* with out: the loss's coefficients */
};

__device__ void fill_topk_info(const Results &r, vppo_topk_info *info)
{
    info->n_valid = r.topk_valid;
    info->n_selected = r.topk_selected;
    info->threshold_mean = r.n_thr > 0 ? r.sum_thr / (double)r.n_thr : 0.0;
    info->mean_selected = r.n_sel_fin > 0 ? r.sum_sel / (double)r.n_sel_fin : 0.0;
    info->mean_rejected = r.n_rej_fin > 0 ? r.sum_rej / (double)r.n_rej_fin : 0.0;
}

/* The call's status from the header (the first data error in the CPU's order), and the
   scalar results where the CPU function writes them: on success, and for the loss also
   when only the gradient overflowed. */
__global__ void k_publish(const Hdr *hdr, const Results *res, Publish p)
{
    vppo_status st = VPPO_OK;
    switch (hdr->check) {
    case CHK_STATS_SIZE: case CHK_SIZE: st = VPPO_ERR_SIZE; break;
    case CHK_STATS_PARAM: st = VPPO_ERR_PARAM; break;
    case CHK_INDEX: st = VPPO_ERR_INDEX; break;
    case CHK_NONFINITE: case CHK_OVERFLOW: st = VPPO_ERR_NONFINITE; break;
    default:
        if (hdr->row != ~0ULL) st = (hdr->row & 1) ? VPPO_ERR_PARAM : VPPO_ERR_NONFINITE;
    }
    const bool written = st == VPPO_OK || hdr->check == CHK_OVERFLOW;
    if (written) {
        /* a divisor near 0 makes the loss non-finite: NONFINITE, as on the CPU */
        if (p.out && vppo__loss_out_fill(p.out, &p.cfg, &res->loss, res->n_total) && st == VPPO_OK)
            st = VPPO_ERR_NONFINITE;
        if (p.topk) fill_topk_info(*res, p.topk);
        if (p.stats) { p.stats->min = res->st_min; p.stats->max = res->st_max; p.stats->n = res->st_n; }
    }
    if (p.written) *p.written = written;
    *p.status = (int32_t)st;
}

/* A synchronous call's scratch block is a workspace followed by this: where k_publish
   writes for it, and the device copy of a host `global`. */
struct SyncTail {
    int32_t status, written;
    vppo_loss_out out;
    vppo_tas_stats stats, global;
    vppo_topk_info topk;
};

/* One API call: where it runs (the caller's launch, or a synchronous call's own block),
   its CUDA errors, and its end. The functions of the API are written once, on a Call; the
   asynchronous and synchronous forms differ only in the Call they pass. */
struct Call {
    bool async;
    const vppo_cuda_launch *L;
    cudaStream_t stream;
    char *scratch;      /* the workspace: header, results, sequence records */
    char *block;        /* synchronous: the allocated block (workspace + SyncTail) */
    SyncTail *tail;     /* synchronous: inside block */
    bool failed;

    explicit Call(const vppo_cuda_launch *l)
        : async(true), L(l), stream(l ? (cudaStream_t)l->stream : NULL), scratch(NULL), block(NULL), tail(NULL),
          failed(false) {}
    explicit Call(void *s)
        : async(false), L(NULL), stream((cudaStream_t)s), scratch(NULL), block(NULL), tail(NULL), failed(false) {}

    bool cuda(cudaError_t e, const char *what)
    {
        if (e != cudaSuccess && !failed) {
            failed = true;
            snprintf(error_message, sizeof error_message, "%s: %s (%s)", what, cudaGetErrorString(e),
                     cudaGetErrorName(e));
        }
        return !failed;
    }

    Hdr *hdr() const { return (Hdr *)scratch; }
    Results *res() const { return (Results *)(scratch + RESULTS_AT); }
    SeqRec *recs() const { return (SeqRec *)(scratch + RECS_AT); }

    /* After the host checks of the arguments: the launch struct checked (asynchronous) or
       the block taken from the pool (synchronous), and the header set to "no error".
       Returns the launch struct's error; CUDA errors are kept for finish(). */
    vppo_status begin(int64_t n_seqs)
    {
        const size_t ws = vppo_cuda_workspace_size(n_seqs);
        if (ws == 0) return VPPO_ERR_SIZE;   /* a batch too large for any workspace */
        if (async) {
            if (!L || !L->status) return VPPO_ERR_NULL;
            if ((uintptr_t)L->status % alignof(int32_t) != 0) return VPPO_ERR_PARAM;
            if (!L->workspace || (uintptr_t)L->workspace % 16 != 0 || L->workspace_bytes < ws)
                return VPPO_ERR_WORKSPACE;
            scratch = (char *)L->workspace;
        } else {
            if (!cuda(cudaMallocAsync((void **)&block, ws + sizeof(SyncTail), stream), "cudaMallocAsync")) {
                block = NULL;
                return VPPO_OK;
            }
            scratch = block;
            tail = (SyncTail *)(block + ws);
        }
        cuda(cudaMemsetAsync(scratch, 0, RESULTS_AT + sizeof(Results), stream), "cudaMemsetAsync") &&
            cuda(cudaMemsetAsync(scratch, 0xff, sizeof(Hdr), stream), "cudaMemsetAsync");
        return VPPO_OK;
    }

    template <class K, class... A>
    bool run(const char *name, K kernel, unsigned grid, unsigned block_size, A... args)
    {
        return !failed && cuda(launch(kernel, grid, block_size, stream, args...), name);
    }

    /* `global` where the kernels read it: as given (asynchronous: device), or copied into
       the block (synchronous: host; the copy is done before the call returns). */
    const vppo_tas_stats *device_global(const vppo_tas_stats *global)
    {
        if (async || !global || failed) return global;
        cuda(cudaMemcpyAsync(&tail->global, global, sizeof *global, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
        return &tail->global;
    }

    /* Enqueues k_publish. Asynchronous: returns. Synchronous: copies the status and the
       scalar results back into pub's host pointers, frees the block, waits for the stream. */
    vppo_status finish(Publish pub)
    {
        Publish dev = pub;
        if (!async && tail) {
            dev.status = &tail->status;
            dev.written = &tail->written;
            if (pub.topk) dev.topk = &tail->topk;
            if (pub.stats) dev.stats = &tail->stats;
            if (pub.out) dev.out = &tail->out;
        } else if (async) {
            dev.status = L->status;
        }
        run("k_publish", k_publish, 1, 1, (const Hdr *)hdr(), (const Results *)res(), dev);
        if (async) {
            if (!failed) return VPPO_OK;
            (void)cudaGetLastError();   /* clear what CUDA lets us clear */
            return VPPO_ERR_CUDA;
        }
        SyncTail back;
        memset(&back, 0, sizeof back);
        if (block) {
            if (!failed) cuda(cudaMemcpyAsync(&back, tail, sizeof back, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
            cuda(cudaFreeAsync(block, stream), "cudaFreeAsync");
            block = NULL;
        }
        cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        if (failed) {
            (void)cudaGetLastError();
            return VPPO_ERR_CUDA;
        }
        if (back.written) {
            if (pub.topk) *pub.topk = back.topk;
            if (pub.stats) *pub.stats = back.stats;
            if (pub.out) *pub.out = back.out;
        }
        return (vppo_status)back.status;
    }
};

Publish no_scalars()
{
    Publish p;
    memset(&p, 0, sizeof p);
    return p;
}

unsigned grid_for(int64_t units, int64_t per_block)
{
    const int64_t g = (units + per_block - 1) / per_block;
    return g < 1 ? 1u : (g > (int64_t)MAX_GRID ? MAX_GRID : (unsigned)g);
}

/* --- host checks: vppo.h's own (those that read no device array), and this unit's limit */

/* log2(e)/T must be a float for the kernels: a denormal temperature would make it inf (the
   CPU computes such rows in double; documented in vppo_cuda.h). */
vppo_status check_logits(const vppo_logits *x)
{
    const vppo_status st = vppo__check_logits(x);
    if (st == VPPO_OK && !(LOG2E / (double)x->temperature <= FLT_MAX)) return VPPO_ERR_PARAM;
    return st;
}

/* Device pointers must be aligned to their element type (vppo_cuda.h, ALIGNMENT): a
   misaligned typed access is cudaErrorMisalignedAddress on a GPU, sticky, which would
   destroy the caller's context. Checked on the host after vppo.h's checks: VPPO_ERR_PARAM.
   NULL passes (an optional argument; the required ones were checked for NULL). */
struct Al { const void *p; size_t a; };
template <class T> Al al(const T *p) { Al r = { p, alignof(T) }; return r; }
Al al_dtype(const void *p, vppo_dtype dt) { Al r = { p, vppo__dtype_size(dt) }; return r; }
vppo_status check_align(std::initializer_list<Al> l)
{
    for (const Al &x : l)
        if ((uintptr_t)x.p % x.a != 0) return VPPO_ERR_PARAM;
    return VPPO_OK;
}

bool bad_estimator(vppo_estimator e) { return !vppo__enum_in((int)e, VPPO_EST_K3, VPPO_EST_PROB_DROP); }

Mat make_mat(const vppo_logits *x)
{
    Mat m;
    m.data = (const char *)x->data;
    m.dtype = (int)x->dtype;
    m.es = (int)vppo__dtype_size(x->dtype);
    m.stride = x->row_stride;
    m.inv_t = 1.0 / (double)x->temperature;
    m.k = (float)(LOG2E / (double)x->temperature);
    m.t = x->temperature;
    {   /* 2^25 / k rounded up to a bf16 value */
        float f = (float)(33554432.0 / (double)m.k);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        if (bits & 0xffffu) bits = (bits | 0xffffu) + 1u;
        memcpy(&f, &bits, 4);
        m.zfloor = f < 3.38e38f ? -f : -INFINITY;
    }
    return m;
}

/* The vector walk needs element-aligned rows; a pair also needs both rows of each index at
   the same address modulo 16 (then heads are equal), with the same dtype. */
bool rows_vectorizable(const vppo_logits *x)
{
    return ((uintptr_t)x->data % vppo__dtype_size(x->dtype)) == 0;
}

bool pair_vectorizable(const vppo_logits *p, const vppo_logits *q)
{
    const size_t es = vppo__dtype_size(p->dtype);
    return p->dtype == q->dtype && rows_vectorizable(p) && rows_vectorizable(q) &&
           ((uintptr_t)p->data - (uintptr_t)q->data) % 16 == 0 &&
           ((uint64_t)p->row_stride * es - (uint64_t)q->row_stride * es) % 16 == 0;
}

/* Kernel selection: dtype D (3 = scalar) and group G, one instantiation each. */
template <template <int, int> class Pick>
typename Pick<0, 32>::type pick_kernel(int D, bool long_rows)
{
    switch (D * 2 + (long_rows ? 1 : 0)) {
    case 0: return Pick<0, 32>::get();
    case 1: return Pick<0, ROW_BLOCK>::get();
    case 2: return Pick<1, 32>::get();
    case 3: return Pick<1, ROW_BLOCK>::get();
    case 4: return Pick<2, 32>::get();
    case 5: return Pick<2, ROW_BLOCK>::get();
    case 6: return Pick<3, 32>::get();
    default: return Pick<3, ROW_BLOCK>::get();
    }
}

/* the long pair rows run PAIR_BLOCK threads a row (G = ROW_BLOCK selects them) */
template <int D, int G> struct PickKL {
    typedef void (*type)(DepArgs);
    static type get() { return k_dependency<D, G == 32 ? 32 : PAIR_BLOCK, false>; }
};
template <int D, int G> struct PickJS {
    typedef void (*type)(DepArgs);
    static type get() { return k_dependency<D, G == 32 ? 32 : PAIR_BLOCK, true>; }
};
template <int D, int G> struct PickLogprobs { typedef void (*type)(LogprobsArgs); static type get() { return k_logprobs<D, G>; } };
/* The fast backward for input dtype D < 3 and output dtype O (F32 or BF16). */
template <int O> struct PickBackwardFastOut {
    template <int D, int G> struct Pick {
        typedef void (*type)(BackwardArgs);
        static type get() { return D < 3 ? k_backward_fast<D < 3 ? D : 0, G, O> : k_backward<D, G, O>; }
    };
};
/* k_backward for input dtype D and output dtype O (F32 or BF16). */
template <int O> struct PickBackwardOut {
    template <int D, int G> struct Pick {
        typedef void (*type)(BackwardArgs);
        static type get() { return k_backward<D, G, O>; }
    };
};

unsigned row_grid(int64_t n, bool long_rows) { return grid_for(n, long_rows ? 1 : 8); }
unsigned row_block(bool long_rows) { return long_rows ? (unsigned)ROW_BLOCK : 256u; }
unsigned seq_grid(int64_t B)
{
#ifdef VPPO_CUDA_EMULATE
    /* test hook of the emulated suite: fewer blocks than sequences, so that each block runs
       several in its grid-stride loop (shared memory reused, the parts' parity) */
    const char *e = getenv("VPPO_CUDA_EMU_SEQ_GRID");
    if (e && atoi(e) > 0 && atoi(e) < B) return (unsigned)atoi(e);
#endif
    return grid_for(B, 1);
}

/* The fields every per-sequence kernel takes from the sequences and the call. */
template <class T>
T seq_args(const vppo_seqs *s, const Call &c)
{
    T a;
    memset(&a, 0, sizeof a);
    a.s.off = s->offsets;
    a.s.B = s->n_seqs;
    a.s.mask = s->mask;
    a.hdr = c.hdr();
    a.rec = c.recs();
    return a;
}

void add_check(SeqA &a, const float *x, int kind)
{
    a.chk[a.n_chk] = x;
    a.kind[a.n_chk] = kind;
    ++a.n_chk;
}

SeqB seq_b_base(const vppo_seqs *s, const Call &c)
{
    SeqB b = seq_args<SeqB>(s, c);
    b.res = c.res();
    return b;
}

/* The loss's per-token checks (logp, logp_old, and logp_ref when there is a KL term) and,
   for sequence-level ratios, the mean log-ratio of each sequence. */
void add_loss_inputs(SeqA &a, const vppo_loss_config *cfg, const float *logp, const float *logp_old,
                     const float *logp_ref)
{
    add_check(a, logp, KIND_FINITE);
    add_check(a, logp_old, KIND_FINITE);
    if (cfg->kl_kind != VPPO_KL_NONE) add_check(a, logp_ref, KIND_FINITE);
    if (cfg->ratio_level != VPPO_RATIO_TOKEN) { a.d_new = logp; a.d_old = logp_old; }
}

BatchArgs batch_base(int64_t B, const Call &c)
{
    BatchArgs ba;
    memset(&ba, 0, sizeof ba);
    ba.B = B;
    ba.hdr = c.hdr();
    ba.rec = c.recs();
    ba.res = c.res();
    return ba;
}

void set_loss(SeqB &b, const vppo_loss_config *cfg, const float *logp, const float *logp_old, const float *logp_ref,
              const float *adv, const uint8_t *select, const float *weight, float *dlogp)
{
    b.cfg = *cfg;
    b.logp = logp; b.logp_old = logp_old; b.logp_ref = logp_ref;
    b.adv = adv; b.sel_in = select; b.weight = weight; b.dlogp = dlogp;
}

void run_final(Call &c, int64_t B, int topk, int loss)
{
    c.run("k_final", k_final, 1, SEQ_BLOCK, B, (const SeqRec *)c.recs(), c.res(), topk, loss, (const Hdr *)c.hdr());
}

/* Enqueues prepare (and, with loss != NULL, the loss of step) on c's stream. */
void run_pipeline(Call &c, const vppo_config *cfg, const vppo_seqs *s, const float *logp_old,
    const float *logp_aug, const float *dep_in, const float *adv_seq, const vppo_tas_stats *global,
    const vppo_prepared *p, vppo__dep_source source, const vppo_loss_config *loss, const float *logp,
    const float *logp_ref, float *dlogp)
{
    const unsigned grid = seq_grid(s->n_seqs);
    SeqA a = seq_args<SeqA>(s, c);
    a.dep = p->dep;
    a.traj = p->traj_dep;
    a.count = p->count;
    a.dep_mode = source == VPPO__DEP_GIVEN ? DEP_GIVEN : (source == VPPO__DEP_SAMPLED ? DEP_SAMPLED : DEP_ZERO);
    a.est = (int)cfg->estimator;
    a.logp = logp_old;
    a.logp_aug = logp_aug;
    a.dep_in = dep_in;
    if (loss) add_loss_inputs(a, loss, logp, logp_old, logp_ref);
    c.run("k_seq_a", k_seq_a, grid, SEQ_BLOCK, a);

    BatchArgs ba = batch_base(s->n_seqs, c);
    ba.adv_check = 1;
    ba.adv_seq = adv_seq;
    ba.do_tas = 1;
    ba.use_tas = cfg->use_tas;
    ba.tas = cfg->tas;
    ba.global = c.device_global(global);
    ba.traj = p->traj_dep;
    ba.scale = p->scale;
    if (loss) { ba.do_divisor = 1; ba.loss = *loss; }
    c.run("k_batch", k_batch, 1, BATCH_BLOCK, ba);

    SeqB b = seq_b_base(s, c);
    b.scale = p->scale;
    b.adv_seq = adv_seq;
    b.adv_out = p->adv;
    b.do_topk = 1;
    b.ratio = cfg->use_tgf ? cfg->topk_ratio : 1.0;
    b.score = p->dep;
    b.select = p->select;
    c.run("k_seq_b", k_seq_b, grid, SEQ_BLOCK, b);
    if (loss) {
        set_loss(b, loss, logp, logp_old, logp_ref, p->adv, p->select, NULL, dlogp);
        c.run("k_loss", k_loss, grid, SEQ_BLOCK, b);
    }
    run_final(c, s->n_seqs, 1, loss ? 1 : 0);
}

/* The host checks of the two masks, and their first kernel: offsets, n_b, and the score
   checked (top-k: not NaN; soft mask: finite). */
vppo_status check_mask_host(const vppo_seqs *s, const float *score, const void *out, size_t out_align, double ratio)
{
    vppo_status st = vppo__check_seqs_in(s, 0);
    if (st != VPPO_OK) return st;
    if (!score || !out) return VPPO_ERR_NULL;
    if (!(ratio >= 0.0 && ratio <= 1.0)) return VPPO_ERR_PARAM;
    return check_align({ al(s->offsets), al(score), Al{ out, out_align } });
}

SeqA run_score_pass(Call &c, const vppo_seqs *s, const float *score, int kind)
{
    SeqA a = seq_args<SeqA>(s, c);
    add_check(a, score, kind);
    c.run("k_seq_a", k_seq_a, seq_grid(s->n_seqs), SEQ_BLOCK, a);
    return a;
}

/* ------------------------------------------------- the API, once, on a Call */

vppo_status dependency_sampled(Call &c, const vppo_seqs *s, const float *logp, const float *logp_aug,
    vppo_estimator est, float *dep)
{
    vppo_status st = vppo__check_seqs_in(s, 0);
    if (st != VPPO_OK) return st;
    if (!logp || !logp_aug || !dep) return VPPO_ERR_NULL;
    if (bad_estimator(est)) return VPPO_ERR_PARAM;
    if ((st = check_align({ al(s->offsets), al(logp), al(logp_aug), al(dep) })) != VPPO_OK) return st;
    if ((st = c.begin(s->n_seqs)) != VPPO_OK) return st;
    SeqA a = seq_args<SeqA>(s, c);
    a.dep_mode = DEP_SAMPLED;
    a.est = (int)est;
    a.logp = logp;
    a.logp_aug = logp_aug;
    a.dep = dep;
    c.run("k_seq_a", k_seq_a, seq_grid(s->n_seqs), SEQ_BLOCK, a);
    return c.finish(no_scalars());
}

vppo_status dependency_logits(Call &c, const vppo_logits *orig, const vppo_logits *aug, vppo_divergence div,
    float *dep)
{
    vppo_status st = vppo__check_dependency_logits_args(orig, aug, div, dep);
    if (st == VPPO_OK && (st = check_logits(orig)) == VPPO_OK) st = check_logits(aug);
    if (st == VPPO_OK)
        st = check_align({ al_dtype(orig->data, orig->dtype), al_dtype(aug->data, aug->dtype), al(dep) });
    if (st != VPPO_OK) return st;
    if ((st = c.begin(0)) != VPPO_OK) return st;
    const vppo_logits *P = div == VPPO_DIV_KL_REVERSE ? aug : orig, *Q = div == VPPO_DIV_KL_REVERSE ? orig : aug;
    DepArgs a;
    a.p = make_mat(P);
    a.q = make_mat(Q);
    a.n = orig->n_rows;
    a.V = orig->vocab;
    a.js = div == VPPO_DIV_JS;
    a.marked_only = 0;
    a.dep = dep;
    a.hdr = c.hdr();
    const bool long_rows = a.V >= LONG_ROW;
    const int D = pair_vectorizable(P, Q) ? (int)P->dtype : 3;
    if (a.n > 0) {
        const unsigned grid = row_grid(a.n, long_rows), block = long_rows ? (unsigned)PAIR_BLOCK : row_block(false);
        if (D < 3) {   /* the fast walk, then the rows it marked */
            c.run("k_dependency", a.js ? pick_kernel<PickJS>(D, long_rows) : pick_kernel<PickKL>(D, long_rows), grid,
                  block, a);
            a.marked_only = 1;
        }
        c.run("k_dependency", a.js ? pick_kernel<PickJS>(3, long_rows) : pick_kernel<PickKL>(3, long_rows), grid, block, a);
    }
    return c.finish(no_scalars());
}

vppo_status logprobs(Call &c, const vppo_logits *x, const int32_t *ids, float *logp, float *lse, float *entropy)
{
    vppo_status st;
    if ((st = check_logits(x)) != VPPO_OK) return st;
    if (logp && !ids) return VPPO_ERR_NULL;
    if ((st = check_align({ al_dtype(x->data, x->dtype), al(ids), al(logp), al(lse), al(entropy) })) != VPPO_OK)
        return st;
    if ((st = c.begin(0)) != VPPO_OK) return st;
    LogprobsArgs a;
    a.x = make_mat(x);
    a.n = x->n_rows;
    a.V = x->vocab;
    a.ids = ids;
    a.logp = logp;
    a.lse = lse;
    a.entropy = entropy;
    a.marked_only = 0;
    a.hdr = c.hdr();
    const bool long_rows = a.V >= LONG_ROW;
    const int D = rows_vectorizable(x) ? (int)x->dtype : 3;
    /* with no outputs the rows are still checked, as on the CPU (by the robust kernel) */
    if (a.n > 0) {
        const unsigned grid = row_grid(a.n, long_rows), block = row_block(long_rows);
        if (D < 3 && (logp || lse || entropy)) {   /* the fast walk, then the rows it marked */
            c.run("k_logprobs", pick_kernel<PickLogprobs>(D, long_rows), grid, block, a);
            a.marked_only = 1;
        }
        c.run("k_logprobs", pick_kernel<PickLogprobs>(3, long_rows), grid, block, a);
    }
    return c.finish(no_scalars());
}

vppo_status logprobs_backward(Call &c, const vppo_logits *x, const int32_t *ids, const float *lse,
    const float *entropy, const float *dlogp, const float *dentropy, const vppo_grad_out *dlogits)
{
    vppo_status st = vppo__check_backward_args(x, ids, dlogp, dlogits);
    if (st == VPPO_OK) st = check_logits(x);
    if (st == VPPO_OK)
        st = check_align({ al_dtype(x->data, x->dtype), al(ids), al(lse), al(entropy), al(dlogp), al(dentropy),
                           al_dtype(dlogits->data, dlogits->dtype) });
    if (st != VPPO_OK) return st;
    if ((st = c.begin(0)) != VPPO_OK) return st;
    const int64_t V = x->vocab, n = x->n_rows;
    BackwardArgs a;
    a.x = make_mat(x);
    a.n = n;
    a.V = V;
    a.ids = ids; a.lse = lse; a.entropy = entropy; a.dlogp = dlogp; a.dentropy = dentropy;
    a.out = (char *)dlogits->data;
    a.out_dtype = (int)dlogits->dtype;
    a.out_es = (int)vppo__dtype_size(dlogits->dtype);
    a.out_stride = dlogits->row_stride;
    a.need_stats = !lse || (dentropy && !entropy);
    a.hdr = c.hdr();
    const bool long_rows = V >= LONG_ROW;
    const int D = rows_vectorizable(x) ? (int)x->dtype : 3;
    if (n > 0) {
        RowCheckArgs rc;
        rc.n = n;
        rc.V = V;
        rc.ids = dlogp ? ids : NULL;
        rc.arr[0] = lse; rc.arr[1] = entropy; rc.arr[2] = dlogp; rc.arr[3] = dentropy;
        rc.hdr = a.hdr;
        c.run("k_check_rows", k_check_rows, grid_for(n, 256), 256, rc);
        /* k_backward does nothing when the check failed: the CPU function writes nothing
           then, which matters in place */
        a.skip_fast = 0;
        if (D < 3 && !a.need_stats) {   /* the fast rows, then the others */
            c.run("k_backward_fast", a.out_dtype == VPPO_BF16 ? pick_kernel<PickBackwardFastOut<VPPO_BF16>::Pick>(D, long_rows)
                                                            : pick_kernel<PickBackwardFastOut<VPPO_F32>::Pick>(D, long_rows),
                  row_grid(n, long_rows), row_block(long_rows), a);
            a.skip_fast = 1;
        }
        c.run("k_backward", a.out_dtype == VPPO_BF16 ? pick_kernel<PickBackwardOut<VPPO_BF16>::Pick>(D, long_rows)
                                                     : pick_kernel<PickBackwardOut<VPPO_F32>::Pick>(D, long_rows),
              row_grid(n, long_rows), row_block(long_rows), a);
    }
    return c.finish(no_scalars());
}

vppo_status perturb_patch_rows(Call &c, float *rows, int64_t n_rows, int64_t row_len, int64_t row_stride,
    float prob, const float *fill, uint64_t seed)
{
    vppo_status st = vppo__check_patch_rows_args(rows, n_rows, row_len, row_stride, prob);
    if (st == VPPO_OK) st = check_align({ al(rows), al(fill) });
    if (st == VPPO_OK) st = c.begin(0);
    if (st != VPPO_OK) return st;
    if (fill && row_len > 0) c.run("k_check_fill", k_check_fill, grid_for(row_len, 256), 256, fill, row_len, c.hdr());
    if (n_rows > 0)
        c.run("k_patch_rows", k_patch_rows, grid_for(n_rows, 1), 256, rows, n_rows, row_len, row_stride,
              (double)prob, fill, (u64)seed, c.hdr());
    return c.finish(no_scalars());
}

vppo_status topk_mask(Call &c, const vppo_seqs *s, const float *score, double ratio, uint8_t *select,
    vppo_topk_info *info)
{
    vppo_status st = check_mask_host(s, score, select, 1, ratio);
    if (st != VPPO_OK) return st;
    if ((st = c.begin(s->n_seqs)) != VPPO_OK) return st;
    run_score_pass(c, s, score, KIND_NOT_NAN);
    SeqB b = seq_b_base(s, c);
    b.do_topk = 1;
    b.ratio = ratio;
    b.score = score;
    b.select = select;
    c.run("k_seq_b", k_seq_b, seq_grid(s->n_seqs), SEQ_BLOCK, b);
    run_final(c, s->n_seqs, 1, 0);
    Publish pub = no_scalars();
    pub.topk = info;
    return c.finish(pub);
}

vppo_status soft_mask(Call &c, const vppo_seqs *s, const float *score, double ratio, float *weight)
{
    vppo_status st = check_mask_host(s, score, weight, alignof(float), ratio);
    if (st != VPPO_OK) return st;
    if ((st = c.begin(s->n_seqs)) != VPPO_OK) return st;
    const SeqA a = run_score_pass(c, s, score, KIND_FINITE);
    SoftArgs sa;
    sa.s = a.s;
    sa.hdr = c.hdr();
    sa.rec = c.recs();
    sa.score = score;
    sa.ratio = ratio;
    sa.weight = weight;
    c.run("k_soft", k_soft, seq_grid(s->n_seqs), SEQ_BLOCK, sa);
    return c.finish(no_scalars());
}

vppo_status policy_loss(Call &c, const vppo_loss_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_old, const float *logp_ref, const float *adv, const uint8_t *select, const float *weight,
    float *dlogp, vppo_loss_out *out)
{
    vppo_status st = vppo__check_loss_args(cfg, s, logp, logp_old, logp_ref, adv, out, 1, 0);
    if (st == VPPO_OK)
        st = check_align({ al(s->offsets), al(logp), al(logp_old), al(logp_ref), al(adv), al(weight), al(dlogp),
                           al(c.async ? out : NULL) });
    if (st != VPPO_OK) return st;
    if ((st = c.begin(s->n_seqs)) != VPPO_OK) return st;
    const unsigned grid = seq_grid(s->n_seqs);
    SeqA a = seq_args<SeqA>(s, c);
    add_loss_inputs(a, cfg, logp, logp_old, logp_ref);
    add_check(a, adv, KIND_FINITE);
    if (weight) add_check(a, weight, KIND_FINITE);
    c.run("k_seq_a", k_seq_a, grid, SEQ_BLOCK, a);
    BatchArgs ba = batch_base(s->n_seqs, c);
    ba.do_divisor = 1;
    ba.loss = *cfg;
    c.run("k_batch", k_batch, 1, BATCH_BLOCK, ba);
    SeqB b = seq_b_base(s, c);
    set_loss(b, cfg, logp, logp_old, logp_ref, adv, select, weight, dlogp);
    c.run("k_loss", k_loss, grid, SEQ_BLOCK, b);
    run_final(c, s->n_seqs, 0, 1);
    Publish pub = no_scalars();
    pub.out = out;
    pub.cfg = *cfg;
    return c.finish(pub);
}

/* prepare (loss NULL) and step; global: host in the synchronous form, device in the
   asynchronous one (then its domain is checked by k_batch) */
vppo_status pipeline(Call &c, const vppo_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_old, const float *logp_aug, const float *dep_in, const float *logp_ref,
    const float *adv_seq, const vppo_tas_stats *global, const vppo_prepared *p, float *dlogp,
    vppo_loss_out *out, vppo_tas_stats *stats, vppo_topk_info *topk, bool step)
{
    vppo__dep_source source;
    vppo_status st = vppo__check_prepare_args(cfg, s, logp_old, logp_aug, dep_in, adv_seq, c.async ? NULL : global,
                                              p, &source, 0);
    if (st != VPPO_OK) return st;
    if (step && (st = vppo__check_loss_args(&cfg->loss, s, logp, logp_old, logp_ref, NULL, out, 0, 0)) != VPPO_OK)
        return st;
    if ((st = check_align({ al(s->offsets), al(logp), al(logp_old), al(logp_aug), al(dep_in), al(logp_ref),
                            al(adv_seq), al(dlogp), al(p->dep), al(p->traj_dep), al(p->count), al(p->scale),
                            al(p->adv), al(c.async ? global : NULL), al(c.async ? out : NULL),
                            al(c.async ? stats : NULL), al(c.async ? topk : NULL) })) != VPPO_OK)
        return st;
    if ((st = c.begin(s->n_seqs)) != VPPO_OK) return st;
    run_pipeline(c, cfg, s, logp_old, logp_aug, dep_in, adv_seq, global, p, source, step ? &cfg->loss : NULL, logp,
                 logp_ref, dlogp);
    Publish pub = no_scalars();
    pub.stats = stats;
    pub.topk = topk;
    if (step) { pub.out = out; pub.cfg = cfg->loss; }
    return c.finish(pub);
}

/* Rollout correction. The sequence records of the workspace hold vppo__rc_sums, and its
   results area the metrics (out: device in the asynchronous form, host in the synchronous
   one, where they are copied back with the status). */
vppo_status rollout_correction(Call &c, const vppo_rc_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_rollout, float *weight, uint8_t *keep, vppo_rc_out *out)
{
    static_assert(sizeof(vppo__rc_sums) <= sizeof(SeqRec), "a sequence record holds vppo__rc_sums");
    static_assert(sizeof(vppo_rc_out) <= sizeof(Results), "the results area holds vppo_rc_out");
    vppo_status st = vppo__check_rc_config(cfg);
    if (st != VPPO_OK) return st;
    if ((st = vppo__check_seqs_in(s, 0)) != VPPO_OK) return st;
    if (!logp || !logp_rollout || !out) return VPPO_ERR_NULL;
    if ((st = check_align({ al(s->offsets), al(logp), al(logp_rollout), al(weight), al(c.async ? out : NULL) })) !=
        VPPO_OK)
        return st;
    if ((st = c.begin(s->n_seqs)) != VPPO_OK) return st;
    RcArgs a;
    memset(&a, 0, sizeof a);
    a.s.off = s->offsets; a.s.B = s->n_seqs; a.s.mask = s->mask;
    a.hdr = c.hdr();
    a.rec = (vppo__rc_sums *)c.recs();
    a.cfg = *cfg;
    a.logp = logp; a.logp_rollout = logp_rollout; a.weight = weight; a.keep = keep;
    vppo_rc_out *metrics = (vppo_rc_out *)c.res();
    c.run("k_rc_seq", k_rc_seq, seq_grid(s->n_seqs), SEQ_BLOCK, a);
    c.run("k_rc_batch", k_rc_batch, 1, SEQ_BLOCK, s->n_seqs, (const vppo__rc_sums *)a.rec, *cfg, metrics,
          (const Hdr *)c.hdr());
    if (weight && cfg->is_batch_normalize)
        c.run("k_rc_scale", k_rc_scale, 256, 256, s->offsets, s->n_seqs, weight, (const vppo_rc_out *)metrics,
              (const Hdr *)c.hdr());
    if (c.async) {
        c.run("k_rc_publish", k_rc_publish, 1, 1, (const Hdr *)c.hdr(), (const vppo_rc_out *)metrics, c.L->status,
              out);
        if (!c.failed) return VPPO_OK;
        (void)cudaGetLastError();
        return VPPO_ERR_CUDA;
    }
    int32_t status = VPPO_OK;
    vppo_rc_out back;
    memset(&back, 0, sizeof back);
    if (c.block) {
        c.run("k_rc_publish", k_rc_publish, 1, 1, (const Hdr *)c.hdr(), (const vppo_rc_out *)metrics,
              &c.tail->status, (vppo_rc_out *)NULL);
        if (!c.failed)
            c.cuda(cudaMemcpyAsync(&status, &c.tail->status, sizeof status, cudaMemcpyDeviceToHost, c.stream),
                   "cudaMemcpyAsync") &&
                c.cuda(cudaMemcpyAsync(&back, metrics, sizeof back, cudaMemcpyDeviceToHost, c.stream), "cudaMemcpyAsync");
        c.cuda(cudaFreeAsync(c.block, c.stream), "cudaFreeAsync");
        c.block = NULL;
    }
    c.cuda(cudaStreamSynchronize(c.stream), "cudaStreamSynchronize");
    if (c.failed) {
        (void)cudaGetLastError();
        return VPPO_ERR_CUDA;
    }
    if (status == VPPO_OK) *out = back;
    return (vppo_status)status;
}

}  // namespace

/* ======================================================================= the API */

extern "C" {

const char *vppo_cuda_error_string(void) { return error_message; }

size_t vppo_cuda_workspace_size(int64_t n_seqs)
{
    if (n_seqs < 0 || (uint64_t)n_seqs > (SIZE_MAX - RECS_AT) / sizeof(SeqRec)) return 0;
    return RECS_AT + (size_t)n_seqs * sizeof(SeqRec);
}

vppo_status vppo_cuda_dependency_sampled(const vppo_seqs *s, const float *logp, const float *logp_aug,
    vppo_estimator est, float *dep, void *stream)
{ Call c(stream); return dependency_sampled(c, s, logp, logp_aug, est, dep); }
vppo_status vppo_cuda_dependency_sampled_async(const vppo_seqs *s, const float *logp, const float *logp_aug,
    vppo_estimator est, float *dep, const vppo_cuda_launch *launch)
{ Call c(launch); return dependency_sampled(c, s, logp, logp_aug, est, dep); }

vppo_status vppo_cuda_dependency_logits(const vppo_logits *orig, const vppo_logits *aug, vppo_divergence div,
    float *dep, void *stream)
{ Call c(stream); return dependency_logits(c, orig, aug, div, dep); }
vppo_status vppo_cuda_dependency_logits_async(const vppo_logits *orig, const vppo_logits *aug, vppo_divergence div,
    float *dep, const vppo_cuda_launch *launch)
{ Call c(launch); return dependency_logits(c, orig, aug, div, dep); }

vppo_status vppo_cuda_logprobs(const vppo_logits *x, const int32_t *ids, float *logp, float *lse, float *entropy,
    void *stream)
{ Call c(stream); return logprobs(c, x, ids, logp, lse, entropy); }
vppo_status vppo_cuda_logprobs_async(const vppo_logits *x, const int32_t *ids, float *logp, float *lse,
    float *entropy, const vppo_cuda_launch *launch)
{ Call c(launch); return logprobs(c, x, ids, logp, lse, entropy); }

vppo_status vppo_cuda_logprobs_backward(const vppo_logits *x, const int32_t *ids, const float *lse,
    const float *entropy, const float *dlogp, const float *dentropy, const vppo_grad_out *dlogits, void *stream)
{ Call c(stream); return logprobs_backward(c, x, ids, lse, entropy, dlogp, dentropy, dlogits); }
vppo_status vppo_cuda_logprobs_backward_async(const vppo_logits *x, const int32_t *ids, const float *lse,
    const float *entropy, const float *dlogp, const float *dentropy, const vppo_grad_out *dlogits,
    const vppo_cuda_launch *launch)
{ Call c(launch); return logprobs_backward(c, x, ids, lse, entropy, dlogp, dentropy, dlogits); }

vppo_status vppo_cuda_perturb_patch_rows(float *rows, int64_t n_rows, int64_t row_len, int64_t row_stride, float prob,
    const float *fill, uint64_t seed, void *stream)
{ Call c(stream); return perturb_patch_rows(c, rows, n_rows, row_len, row_stride, prob, fill, seed); }
vppo_status vppo_cuda_perturb_patch_rows_async(float *rows, int64_t n_rows, int64_t row_len, int64_t row_stride,
    float prob, const float *fill, uint64_t seed, const vppo_cuda_launch *launch)
{ Call c(launch); return perturb_patch_rows(c, rows, n_rows, row_len, row_stride, prob, fill, seed); }

vppo_status vppo_cuda_topk_mask(const vppo_seqs *s, const float *score, double ratio, uint8_t *select,
    vppo_topk_info *info, void *stream)
{ Call c(stream); return topk_mask(c, s, score, ratio, select, info); }
vppo_status vppo_cuda_topk_mask_async(const vppo_seqs *s, const float *score, double ratio, uint8_t *select,
    vppo_topk_info *info, const vppo_cuda_launch *launch)
{ Call c(launch); return topk_mask(c, s, score, ratio, select, info); }

vppo_status vppo_cuda_soft_mask(const vppo_seqs *s, const float *score, double ratio, float *weight, void *stream)
{ Call c(stream); return soft_mask(c, s, score, ratio, weight); }
vppo_status vppo_cuda_soft_mask_async(const vppo_seqs *s, const float *score, double ratio, float *weight,
    const vppo_cuda_launch *launch)
{ Call c(launch); return soft_mask(c, s, score, ratio, weight); }

vppo_status vppo_cuda_policy_loss(const vppo_loss_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_old, const float *logp_ref, const float *adv, const uint8_t *select, const float *weight,
    float *dlogp, vppo_loss_out *out, void *stream)
{ Call c(stream); return policy_loss(c, cfg, s, logp, logp_old, logp_ref, adv, select, weight, dlogp, out); }
vppo_status vppo_cuda_policy_loss_async(const vppo_loss_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_old, const float *logp_ref, const float *adv, const uint8_t *select, const float *weight,
    float *dlogp, vppo_loss_out *out, const vppo_cuda_launch *launch)
{ Call c(launch); return policy_loss(c, cfg, s, logp, logp_old, logp_ref, adv, select, weight, dlogp, out); }

vppo_status vppo_cuda_prepare(const vppo_config *cfg, const vppo_seqs *s, const float *logp_old,
    const float *logp_aug, const float *dep_in, const float *adv_seq, const vppo_tas_stats *global,
    vppo_prepared *p, void *stream)
{ Call c(stream); return pipeline(c, cfg, s, NULL, logp_old, logp_aug, dep_in, NULL, adv_seq, global, p, NULL, NULL, p ? &p->stats : NULL, p ? &p->topk : NULL, false); }
vppo_status vppo_cuda_prepare_async(const vppo_config *cfg, const vppo_seqs *s, const float *logp_old,
    const float *logp_aug, const float *dep_in, const float *adv_seq, const vppo_tas_stats *global,
    const vppo_prepared *p, vppo_tas_stats *stats, vppo_topk_info *topk, const vppo_cuda_launch *launch)
{ Call c(launch); return pipeline(c, cfg, s, NULL, logp_old, logp_aug, dep_in, NULL, adv_seq, global, p, NULL, NULL, stats, topk, false); }

vppo_status vppo_cuda_step(const vppo_config *cfg, const vppo_seqs *s, const float *logp, const float *logp_old,
    const float *logp_aug, const float *logp_ref, const float *adv_seq, vppo_prepared *p, float *dlogp,
    vppo_loss_out *out, void *stream)
{ Call c(stream); return pipeline(c, cfg, s, logp, logp_old, logp_aug, NULL, logp_ref, adv_seq, NULL, p, dlogp, out, p ? &p->stats : NULL, p ? &p->topk : NULL, true); }
vppo_status vppo_cuda_step_async(const vppo_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_old, const float *logp_aug, const float *logp_ref, const float *adv_seq,
    const vppo_prepared *p, float *dlogp, vppo_loss_out *out, vppo_tas_stats *stats, vppo_topk_info *topk,
    const vppo_cuda_launch *launch)
{ Call c(launch); return pipeline(c, cfg, s, logp, logp_old, logp_aug, NULL, logp_ref, adv_seq, NULL, p, dlogp, out, stats, topk, true); }

vppo_status vppo_cuda_rollout_correction(const vppo_rc_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_rollout, float *weight, uint8_t *keep, vppo_rc_out *out, void *stream)
{
    Call c(stream);
    return rollout_correction(c, cfg, s, logp, logp_rollout, weight, keep, out);
}
vppo_status vppo_cuda_rollout_correction_async(const vppo_rc_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_rollout, float *weight, uint8_t *keep, vppo_rc_out *out, const vppo_cuda_launch *launch)
{
    Call c(launch);
    return rollout_correction(c, cfg, s, logp, logp_rollout, weight, keep, out);
}

}  // extern "C"
