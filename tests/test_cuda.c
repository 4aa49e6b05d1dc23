/* tests/test_cuda.c - the test suite of the CUDA unit (vppo_cuda.h, docs/spec.md §11).

   Every vppo_cuda_* function runs on device copies of the inputs that the CPU function of
   vppo.h runs on (the CPU library is compiled into this file: it is the reference), and
   the results are compared: against the float64 references of test_util.c within
   docs/spec.md §12, and against the CPU result within twice that bound (both may err by
   it, in opposite directions); statuses, counts and top-k masks exactly, perturbations bit for bit.
   Device outputs start as a sentinel, so a write outside [offsets[0], offsets[B]) or past
   the rows shows.
   The asynchronous forms (_async): every bad-input case runs both forms, which must agree
   (an error returned at once launches nothing); every function gives the synchronous bits
   without synchronising, allocating or copying (counted by the emulator), the same bits
   when captured into a CUDA graph and replayed, and its data errors in its status word.

   This file is C++ (it includes <cuda_runtime.h>), built two ways:
     emulated   g++ -DVPPO_CUDA_EMULATE -Itests/cuda_emu -x c++ tests/test_cuda.c
                tests/test_util.c -x c++ vppo_cuda.cu (make test-cuda-emu). After every test no
                device allocation may be left and every canary must be intact; the failure
                injection tests exist only here, and sizes are smaller (the emulator runs
                each GPU thread as a fiber).
     real GPU   make test-cuda: against /usr/local/cuda, libvppo_cuda.a and -lcudart. With
                no device it prints "no CUDA device: the CUDA suite did not run" and exits
                with status 2, never a pass.

   usage: test_cuda [substring]   runs the tests whose name contains substring */
#define VPPO_IMPLEMENTATION
#include "test.h"
#include "../vppo_cuda.h"
#include <cuda_runtime.h>
#include <time.h>

#ifdef VPPO_CUDA_EMULATE
#define EMULATED 1
#else
#define EMULATED 0
#endif
/* A size for the emulator, and one for a real GPU. */
#define SIZE_EMU_REAL(emu, real) (EMULATED ? (emu) : (real))

/* The runners share test_fail & co. (test_util.c); this names the running test. */

/* The GPU value is within tol of the float64 reference, and within twice tol of the CPU
   value on the same inputs. */
#define CHECK_GPU(ref, cpu, gpu, ...) CHECK_GPU_(ref, cpu, gpu, __VA_ARGS__)
#define CHECK_GPU_(ref, cpu, gpu, abs_tol, rel_tol) do { \
    CHECK_NEAR_(ref, gpu, abs_tol, rel_tol); CHECK_NEAR_(cpu, gpu, 2.0 * (abs_tol), 2.0 * (rel_tol)); } while (0)
/* The CPU function and the CUDA function both return the expected status. */
#define CHECK_BOTH(expected, cpu_call, gpu_call) do { \
    CHECK_STATUS(expected, cpu_call); CHECK_STATUS(expected, gpu_call); } while (0)
/* Twice a tolerance pair, for GPU against CPU where neither is the reference. */
#define TWICE(...) TWICE_(__VA_ARGS__)
#define TWICE_(a, r) 2.0 * (a), 2.0 * (r)

/* ---------------------------------------------------------------- device memory */

/* Test infrastructure (not the code under test): a failing CUDA call ends the run. */
static void cuda_must(cudaError_t e, const char *what, int line)
{
    if (e == cudaSuccess) return;
    fprintf(stderr, "test_cuda.c:%d: %s: %s\n", line, what, cudaGetErrorString(e));
    exit(1);
}
#define CUDA_MUST(call) cuda_must((call), #call, __LINE__)

static void *dev_alloc(size_t bytes, int fill)   /* every byte = fill */
{
    void *d = NULL;
    CUDA_MUST(cudaMalloc(&d, bytes ? bytes : 1));
    CUDA_MUST(cudaMemset(d, fill, bytes ? bytes : 1));
    return d;
}

static void dev_upload_to(void *dev, const void *host, size_t bytes)
{
    if (bytes) CUDA_MUST(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
}

static void dev_download(void *host, const void *dev, size_t bytes)
{
    if (bytes) CUDA_MUST(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost));
}

/* A host buffer h (what the CPU function reads and writes), its device twin d (what the
   CUDA function does) and g, the device contents brought back by mirror_pull. All three
   start with every byte = fill. A null mirror (NULL pointers) is an absent argument. */
typedef struct mirror { void *h, *g, *d; size_t bytes; int fill; } mirror;

static mirror mirror_new(size_t bytes, int fill)
{
    mirror m;
    m.bytes = bytes;
    m.fill = fill;
    m.h = malloc(bytes ? bytes : 1);
    m.g = malloc(bytes ? bytes : 1);
    memset(m.h, fill, bytes);
    memset(m.g, fill, bytes);
    m.d = dev_alloc(bytes, fill);
    return m;
}

static mirror mirror_null(void) { mirror m; m.h = m.g = m.d = NULL; m.bytes = 0; m.fill = 0; return m; }
static void mirror_push(const mirror *m) { dev_upload_to(m->d, m->h, m->bytes); }
static void mirror_pull(const mirror *m) { dev_download(m->g, m->d, m->bytes); }
static void mirror_free(mirror *m)
{
    free(m->h);
    free(m->g);
    if (m->d) CUDA_MUST(cudaFree(m->d));
    *m = mirror_null();
}

#define H_(type, m) ((type *)(m).h)
#define G_(type, m) ((type *)(m).g)
#define D_(type, m) ((type *)(m).d)
#define HF(m) H_(float, m)
#define GF(m) G_(float, m)
#define DF(m) D_(float, m)

/* Set element i (of type T) on both sides; returns the old value. */
#define POKE_(T, name) static T name(mirror *m, int64_t i, T v) { \
    T old = H_(T, *m)[i]; H_(T, *m)[i] = v; dev_upload_to(D_(T, *m) + i, &v, sizeof v); return old; }
POKE_(float, poke_f)
POKE_(int64_t, poke_i64)
POKE_(int32_t, poke_i32)

/* Bytes of g outside elements [from, to) (of es bytes each) that are not `fill`. */
static int64_t touched_outside(const mirror *m, size_t es, int64_t from, int64_t to, int fill)
{
    size_t i;
    int64_t bad = 0;
    for (i = 0; i < m->bytes; ++i) {
        const int64_t e = (int64_t)(i / es);
        if (e >= from && e < to) continue;
        bad += ((const unsigned char *)m->g)[i] != (unsigned char)fill;
    }
    return bad;
}

/* Elements where the host (CPU) and brought-back (GPU) copies differ in any bit. */
static int64_t differ(const mirror *m, size_t es, int64_t from, int64_t to)
{
    int64_t i, n = 0;
    for (i = from; i < to; ++i)
        n += memcmp((const char *)m->h + i * es, (const char *)m->g + i * es, es) != 0;
    return n;
}

/* ---------------------------------------------------------------- sequences */

/* The same sequences twice: h on host arrays, d on device arrays. Per-token arrays have
   n = offsets[B] + tail entries; the tail (and everything before offsets[0]) must stay
   untouched. */
typedef struct mseqs {
    vppo_seqs h, d;
    mirror off, mask;
    int64_t begin, end, n;
} mseqs;

static mseqs mseqs_make(int64_t B, const int64_t *offsets, const uint8_t *mask, int64_t tail)
{
    mseqs S;
    S.begin = offsets[0];
    S.end = offsets[B];
    S.n = S.end + tail;
    S.off = mirror_new((size_t)(B + 1) * sizeof(int64_t), 0);
    memcpy(S.off.h, offsets, S.off.bytes);
    mirror_push(&S.off);
    S.mask = mirror_null();
    if (mask) {
        S.mask = mirror_new((size_t)S.n, 1);
        memcpy(S.mask.h, mask, (size_t)S.end);
        mirror_push(&S.mask);
    }
    S.h.n_seqs = S.d.n_seqs = B;
    S.h.offsets = H_(int64_t, S.off);
    S.d.offsets = D_(int64_t, S.off);
    S.h.mask = H_(uint8_t, S.mask);
    S.d.mask = D_(uint8_t, S.mask);
    return S;
}

static void mseqs_free(mseqs *S) { mirror_free(&S->off); mirror_free(&S->mask); }

static int valid_at(const mseqs *S, int64_t t)
{
    return t >= S->begin && t < S->end && (!S->h.mask || S->h.mask[t] != 0);
}

static int64_t n_valid_of(const mseqs *S, int64_t b)
{
    int64_t t, n = 0;
    for (t = S->h.offsets[b]; t < S->h.offsets[b + 1]; ++t) n += valid_at(S, t);
    return n;
}

/* B sequences from flat position `begin`: sequence b is empty when b % 5 == 0, one token
   long when b % 5 == 1, else 2..max_len tokens. holes: a mask with about 15% of the
   positions out, and random nonzero bytes (nonzero = 1) at the others; else no mask. */
static mseqs layout_random(rng *r, int64_t B, int64_t begin, int64_t max_len, int holes, int64_t tail)
{
    int64_t *off = (int64_t *)malloc((size_t)(B + 1) * sizeof(int64_t)), b, t;
    uint8_t *mask;
    mseqs S;
    off[0] = begin;
    for (b = 0; b < B; ++b)
        off[b + 1] = off[b] + (b % 5 == 0 ? 0 : b % 5 == 1 ? 1 : rng_int(r, 2, max_len));
    mask = (uint8_t *)malloc((size_t)off[B] + 1);
    for (t = 0; t < off[B]; ++t) mask[t] = rng_uniform(r) < 0.15 ? 0 : (uint8_t)rng_int(r, 1, 255);
    S = mseqs_make(B, off, holes ? mask : NULL, tail);
    free(off);
    free(mask);
    return S;
}

/* One sequence per entry of lens, from flat position begin, with mask holes or none. */
static mseqs layout_lengths(rng *r, const int64_t *lens, int n_lens, int64_t begin, int holes, int64_t tail)
{
    int64_t *off = (int64_t *)malloc((size_t)(n_lens + 1) * sizeof(int64_t)), t;
    uint8_t *mask;
    int b;
    mseqs S;
    off[0] = begin;
    for (b = 0; b < n_lens; ++b) off[b + 1] = off[b] + lens[b];
    mask = (uint8_t *)malloc((size_t)off[n_lens] + 1);
    for (t = 0; t < off[n_lens]; ++t) mask[t] = (uint8_t)(rng_uniform(r) < 0.15 ? 0 : 1);
    S = mseqs_make(n_lens, off, holes ? mask : NULL, tail);
    free(off);
    free(mask);
    return S;
}

static mseqs layout_from_batch(test_batch *tb, int64_t tail)
{
    mseqs S = mseqs_make(tb->n_seqs, tb->offsets, tb->mask, tail);
    batch_free(tb);
    return S;
}

/* ---------------------------------------------------------------- per-token data */

/* The per-token inputs of one batch; every invalid position (and the tail) holds NaN
   (0xff bytes; 255 for select), garbage that must be ignored. */
typedef struct token_data {
    mirror logp, logp_old, logp_aug, logp_ref, adv, weight, select, score, adv_seq;
} token_data;

static token_data token_data_make(rng *r, const mseqs *S)
{
    const size_t fbytes = (size_t)S->n * sizeof(float);
    const int64_t B = S->h.n_seqs;
    token_data D;
    int64_t b, t;
    D.logp = mirror_new(fbytes, 0xff);
    D.logp_old = mirror_new(fbytes, 0xff);
    D.logp_aug = mirror_new(fbytes, 0xff);
    D.logp_ref = mirror_new(fbytes, 0xff);
    D.adv = mirror_new(fbytes, 0xff);
    D.weight = mirror_new(fbytes, 0xff);
    D.select = mirror_new((size_t)S->n, 0xff);
    D.score = mirror_new(fbytes, 0xff);
    D.adv_seq = mirror_new((size_t)(B + 1) * sizeof(float), 0xff);
    for (b = 0; b < B; ++b) {
        const double A = rng_normal(r);
        /* NaN for a sequence without valid positions: prepare must ignore it */
        HF(D.adv_seq)[b] = n_valid_of(S, b) > 0 ? (float)A : NAN;
        for (t = S->h.offsets[b]; t < S->h.offsets[b + 1]; ++t) {
            float lp;
            if (!valid_at(S, t)) continue;
            lp = (float)-rng_range(r, 0.05, 3.0);
            HF(D.logp)[t] = lp;
            /* mostly near the rollout policy; some far enough to clip and dual-clip */
            HF(D.logp_old)[t] = lp + (float)(rng_uniform(r) < 0.1 ? rng_range(r, -1.5, 1.5) : 0.15 * rng_normal(r));
            HF(D.logp_aug)[t] = rng_uniform(r) < 0.02 ? -INFINITY
                : HF(D.logp_old)[t] + (float)(rng_uniform(r) < 0.1 ? rng_range(r, -25, 25) : 0.7 * rng_normal(r));
            HF(D.logp_ref)[t] = lp + (float)(rng_uniform(r) < 0.05 ? rng_range(r, -25, 25) : 0.3 * rng_normal(r));
            HF(D.adv)[t] = rng_uniform(r) < 0.2 ? (float)rng_normal(r) : (float)A;
            HF(D.weight)[t] = rng_uniform(r) < 0.1 ? 0.0f : (float)rng_uniform(r);
            H_(uint8_t, D.select)[t] = (uint8_t)(rng_uniform(r) < 0.3 ? 0 : (rng_uniform(r) < 0.5 ? 1 : 3));
            HF(D.score)[t] = (float)(2.0 * rng_normal(r));
        }
    }
    mirror_push(&D.logp); mirror_push(&D.logp_old); mirror_push(&D.logp_aug); mirror_push(&D.logp_ref);
    mirror_push(&D.adv); mirror_push(&D.weight); mirror_push(&D.select); mirror_push(&D.score);
    mirror_push(&D.adv_seq);
    return D;
}

static void token_data_free(token_data *D)
{
    mirror_free(&D->logp); mirror_free(&D->logp_old); mirror_free(&D->logp_aug); mirror_free(&D->logp_ref);
    mirror_free(&D->adv); mirror_free(&D->weight); mirror_free(&D->select); mirror_free(&D->score);
    mirror_free(&D->adv_seq);
}

/* ---------------------------------------------------------------- logits matrices */

static size_t dtype_size(vppo_dtype dt) { return dt == VPPO_F32 ? 4 : 2; }

/* n rows of V entries, rows `stride` elements apart, starting `lead` elements into the
   allocation (lead 1 or 3: rows misaligned for wide loads). Every byte starts as 0xff,
   NaN in each dtype: padding that must never be read. */
typedef struct mlogits { vppo_logits h, d; mirror m; int64_t lead; } mlogits;

static mlogits mlogits_new(vppo_dtype dt, int64_t n, int64_t V, int64_t stride, int64_t lead, float T)
{
    mlogits L;
    const size_t es = dtype_size(dt);
    L.m = mirror_new((size_t)(lead + n * stride + 2) * es, 0xff);
    L.lead = lead;
    L.h.dtype = dt; L.h.n_rows = n; L.h.vocab = V; L.h.row_stride = stride; L.h.temperature = T;
    L.d = L.h;
    L.h.data = (char *)L.m.h + (size_t)lead * es;
    L.d.data = (char *)L.m.d + (size_t)lead * es;
    return L;
}

/* Store (about) v at (r, j) of the host copy; returns the value stored, decoded by
   test_util's converters (the references use it, so they see exactly the stored bits). */
static double mlogits_set(mlogits *L, int64_t r, int64_t j, double v)
{
    const int64_t at = r * L->h.row_stride + j;
    if (L->h.dtype == VPPO_F32) { ((float *)L->h.data)[at] = (float)v; return (float)v; }
    if (L->h.dtype == VPPO_BF16) {
        const uint16_t h = test_f32_to_bf16_trunc((float)v);
        ((uint16_t *)L->h.data)[at] = h;
        return test_bf16_value(h);
    } else {
        double q = v == -INFINITY ? v : floor(v * 64 + 0.5) / 64;
        uint16_t h;
        if (q > 31.984375) q = 31.984375;
        if (q < -31.984375) q = -31.984375;
        h = test_f32_to_f16_trunc((float)q);   /* exact: q has at most 11 significant bits */
        ((uint16_t *)L->h.data)[at] = h;
        return test_f16_value(h);
    }
}

/* u = z / T of row r (host copy), decoded by test_util's converters. */
static void mlogits_u(const mlogits *L, int64_t r, double *u)
{
    int64_t j;
    for (j = 0; j < L->h.vocab; ++j) {
        const int64_t at = r * L->h.row_stride + j;
        const double z = L->h.dtype == VPPO_F32 ? (double)((const float *)L->h.data)[at]
                       : L->h.dtype == VPPO_BF16 ? test_bf16_value(((const uint16_t *)L->h.data)[at])
                       : test_f16_value(((const uint16_t *)L->h.data)[at]);
        u[j] = z / (double)L->h.temperature;
    }
}

/* Random N(0, 3) logits. Rows r % 3 == 1 and 2 have about 10% -inf entries (never entry
   0, so no row is all -inf); on row 1 entry V-1 (where ids_make puts row 1's token) is
   -inf: a sampled token of probability 0. With a second matrix Q (same shape):
   Q = P + N(0, 0.5) with -inf at the same entries, and on rows r % 3 == 2 (V >= 3) one
   more -inf in Q only, at entry V-1 where P is finite: KL(P || Q) = +inf there. */
static void mlogits_fill(mlogits *P, mlogits *Q, rng *r)
{
    const int64_t n = P->h.n_rows, V = P->h.vocab;
    int64_t i, j;
    for (i = 0; i < n; ++i)
        for (j = 0; j < V; ++j) {
            const int neg_inf = i % 3 != 0 && j != 0 && (rng_uniform(r) < 0.1 || (i == 1 && j == V - 1));
            const double z = neg_inf ? -INFINITY : 3.0 * rng_normal(r);
            mlogits_set(P, i, j, i % 3 == 2 && V >= 3 && j == V - 1 ? 3.0 * rng_normal(r) : z);
            if (Q) mlogits_set(Q, i, j, i % 3 == 2 && V >= 3 && j == V - 1 ? -INFINITY : z + 0.5 * rng_normal(r));
        }
    mirror_push(&P->m);
    if (Q) mirror_push(&Q->m);
}

/* The vocabulary sizes of docs/spec.md §2 tests: around warp and block widths, and a big one. */
static const int64_t test_vocabs[] = { 1, 2, 7, 31, 32, 33, 100, 2047, 2048, 2049, 5000
#ifndef VPPO_CUDA_EMULATE
    , 151936   /* Qwen's vocabulary: only on a real GPU */
#endif
};
#define N_VOCABS ((int)(sizeof test_vocabs / sizeof test_vocabs[0]))

/* Shape k of the sweep (k < 3 N_VOCABS): vocabulary test_vocabs[k / 3], dtype k % 3, row
   stride V + 0, 1 or 3 and lead 0, 1 or 3 elements, so that every dtype meets every
   stride and every lead, and every stride every lead. second: the other matrix of a
   pair, with its own dtype, stride and lead. */
static mlogits shape_logits(int k, int second, float T)
{
    const int64_t pads[3] = { 0, 1, 3 };
    const int v = k / 3, s = second ? 1 : 0;
    const int64_t V = test_vocabs[v];
    const vppo_dtype dt = (vppo_dtype)((k + s * v) % 3);
    const int64_t rows = V > 100000 ? 4 : V > 2500 ? SIZE_EMU_REAL(2, 8) : SIZE_EMU_REAL(3, 8);
    return mlogits_new(dt, rows, V, V + pads[(k + v + s) % 3], pads[(k + 2 * v + 2 * s) % 3], T);
}

/* A check with its own message (for checks inside loops over functions). */
#define CHECK_MSG(cond, ...) do { ++test_checks; if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* ================================================================ §11 */

void cuda_error_string_is_empty_before_any_failure(void)
{
    /* first in the table: no call has failed with VPPO_ERR_CUDA yet on this thread */
    const char *e = vppo_cuda_error_string();
    CHECK(e != NULL);
    CHECK(e && e[0] == '\0');
}

/* ================================================================ §2.1 */

static void check_dependency_sampled(const mseqs *S, const token_data *D)
{
    mirror dep = mirror_new((size_t)S->n * sizeof(float), 0x7f);
    int est;
    int64_t t, nonzero = 0;
    for (est = VPPO_EST_K3; est <= VPPO_EST_PROB_DROP; ++est) {
        CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&S->h, HF(D->logp_old), HF(D->logp_aug), (vppo_estimator)est,
                                                      HF(dep)));
        CHECK_STATUS(VPPO_OK, vppo_cuda_dependency_sampled(&S->d, DF(D->logp_old), DF(D->logp_aug),
                                                           (vppo_estimator)est, DF(dep), NULL));
        mirror_pull(&dep);
        for (t = S->begin; t < S->end; ++t) {
            if (!valid_at(S, t)) { nonzero += GF(dep)[t] != 0.0f; continue; }
            CHECK_GPU(ref_dependency((vppo_estimator)est, HF(D->logp_old)[t], HF(D->logp_aug)[t]),
                      HF(dep)[t], GF(dep)[t], TOL_TOKEN);
        }
        CHECK_EQ_INT(0, nonzero);   /* invalid positions of the range are written 0 */
        CHECK_EQ_INT(0, touched_outside(&dep, sizeof(float), S->begin, S->end, 0x7f));
    }
    mirror_free(&dep);
}

void cuda_dependency_sampled_matches_cpu_on_every_layout(void)
{
    static const int64_t lens[] = { 0, 1, 4097, 2, 0, 300 };
    rng r = rng_make(2101);
    int layout;
    for (layout = 0; layout < 5; ++layout) {
        mseqs S;
        token_data D;
        test_batch tb;
        switch (layout) {
        case 0: tb = batch_make(&r, 9, 40, 0, 1); S = layout_from_batch(&tb, 5); break;   /* padded, holes */
        case 1: S = layout_random(&r, SIZE_EMU_REAL(23, 300), 0, 90, 1, 6); break;
        case 2: S = layout_random(&r, SIZE_EMU_REAL(23, 300), 7, 90, 0, 6); break;      /* offsets[0] > 0, no mask */
        case 3: S = layout_lengths(&r, lens, 6, 3, 1, 4); break;
        default: { const int64_t off = 5; S = mseqs_make(0, &off, NULL, 4); }           /* no sequence at all */
        }
        D = token_data_make(&r, &S);
        check_dependency_sampled(&S, &D);
        token_data_free(&D);
        mseqs_free(&S);
    }
}

/* ================================================================ §2.2 */

/* Float64 log-softmax of every row of L (n x V, row-major), and the lse of each. */
static void ref_rows(const mlogits *L, double *lp, double *lse)
{
    const int64_t V = L->h.vocab;
    double *u = doubles_new(V, 0);
    int64_t i;
    for (i = 0; i < L->h.n_rows; ++i) {
        double l;
        mlogits_u(L, i, u);
        l = ref_log_softmax(u, V, lp + i * V);
        if (lse) lse[i] = l;
    }
    free(u);
}

static void check_dependency_logits(const mlogits *P, const mlogits *Q)
{
    const int64_t n = P->h.n_rows, V = P->h.vocab;
    double *lp = doubles_new(n * V, 0), *lq = doubles_new(n * V, 0);
    mirror dep = mirror_new((size_t)(n + 2) * sizeof(float), 0x7f);
    int div;
    int64_t i;
    ref_rows(P, lp, NULL);
    ref_rows(Q, lq, NULL);
    for (div = VPPO_DIV_KL; div <= VPPO_DIV_JS; ++div) {
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P->h, &Q->h, (vppo_divergence)div, HF(dep)));
        CHECK_STATUS(VPPO_OK, vppo_cuda_dependency_logits(&P->d, &Q->d, (vppo_divergence)div, DF(dep), NULL));
        mirror_pull(&dep);
        for (i = 0; i < n; ++i) {
            const double *a = lp + i * V, *b = lq + i * V;
            const double want = div == VPPO_DIV_KL ? ref_kl(a, b, V)
                              : div == VPPO_DIV_KL_REVERSE ? ref_kl(b, a, V) : ref_js(a, b, V);
            CHECK_GPU(want, HF(dep)[i], GF(dep)[i], TOL_DIV);
            CHECK(GF(dep)[i] >= 0.0f);   /* rounding below 0 is returned as 0 */
        }
        CHECK_EQ_INT(0, touched_outside(&dep, sizeof(float), 0, n, 0x7f));
    }
    mirror_free(&dep);
    free(lp);
    free(lq);
}

void cuda_dependency_logits_every_vocab_dtype_stride_and_alignment(void)
{
    rng r = rng_make(2201);
    int k;
    for (k = 0; k < 3 * N_VOCABS; ++k) {
        /* different temperatures for the two sides */
        mlogits P = shape_logits(k, 0, k % 2 ? 0.7f : 1.0f), Q = shape_logits(k, 1, 1.3f);
        mlogits_fill(&P, &Q, &r);
        check_dependency_logits(&P, &Q);
        mirror_free(&P.m);
        mirror_free(&Q.m);
    }
}

void cuda_dependency_logits_identical_rows_give_zero(void)
{
    rng r = rng_make(2202);
    int d, div;
    int64_t i;
    for (d = VPPO_F32; d <= VPPO_F16; ++d) {
        mlogits P = mlogits_new((vppo_dtype)d, 4, 3000, 3001, 1, 0.9f), Q = mlogits_new((vppo_dtype)d, 4, 3000, 3001, 1, 0.9f);
        mirror dep = mirror_new(4 * sizeof(float), 0x7f);
        mlogits_fill(&P, NULL, &r);
        memcpy(Q.m.h, P.m.h, P.m.bytes);
        mirror_push(&Q.m);
        for (div = VPPO_DIV_KL; div <= VPPO_DIV_JS; ++div) {
            CHECK_STATUS(VPPO_OK, vppo_cuda_dependency_logits(&P.d, &Q.d, (vppo_divergence)div, DF(dep), NULL));
            mirror_pull(&dep);
            for (i = 0; i < 4; ++i) CHECK(GF(dep)[i] == 0.0f);   /* exactly, not about */
        }
        mirror_free(&P.m);
        mirror_free(&Q.m);
        mirror_free(&dep);
    }
}

void cuda_dependency_logits_nearly_identical_rows_are_never_negative(void)
{
    /* row i of Q: row i of P plus noise of strength 10^(i-9) (row 0: a copy with entries one
       ulp up or down), where rounding can push a divergence below 0: it must come back 0 */
    const int64_t vocabs[2] = { 100, 3000 };
    rng r = rng_make(2203);
    int v;
    int64_t i, j;
    for (v = 0; v < 2; ++v) {
        const int64_t V = vocabs[v], n = 8;
        mlogits P = mlogits_new(VPPO_F32, n, V, V, 0, 1.0f), Q = mlogits_new(VPPO_F32, n, V, V, 0, 1.0f);
        for (i = 0; i < n; ++i)
            for (j = 0; j < V; ++j) {
                const float z = (float)(3.0 * rng_normal(&r));
                mlogits_set(&P, i, j, z);
                mlogits_set(&Q, i, j, i == 0 ? nextafterf(z, rng_uniform(&r) < 0.5 ? -INFINITY : INFINITY)
                                             : z + pow(10.0, (double)i - 9) * rng_normal(&r));
            }
        mirror_push(&P.m);
        mirror_push(&Q.m);
        check_dependency_logits(&P, &Q);   /* against float64, and >= 0 */
        check_dependency_logits(&Q, &P);
        mirror_free(&P.m);
        mirror_free(&Q.m);
    }
}

void cuda_dependency_logits_kl_is_infinite_exactly_when_q_vanishes(void)
{
    /* row 0: q_2 = 0 < p_2: KL = +inf; row 1: p_1 = q_1 = 0: finite; row 2: p_1 = 0 < q_1:
       KL finite, KL_REVERSE = +inf. Small rows and rows wider than a block. */
    const int64_t vocabs[2] = { 4, 3000 };
    int v, div;
    int64_t i, j;
    for (v = 0; v < 2; ++v) {
        const int64_t V = vocabs[v];
        mlogits P = mlogits_new(VPPO_F32, 3, V, V, 0, 1.0f), Q = mlogits_new(VPPO_F32, 3, V, V, 0, 1.0f);
        mirror dep = mirror_new(3 * sizeof(float), 0x7f);
        for (i = 0; i < 3; ++i)
            for (j = 0; j < V; ++j) {
                mlogits_set(&P, i, j, (double)(j % 7) * 0.5);
                mlogits_set(&Q, i, j, (double)(j % 5) * 0.5);
            }
        mlogits_set(&Q, 0, 2, -INFINITY);
        mlogits_set(&P, 1, 1, -INFINITY);
        mlogits_set(&Q, 1, 1, -INFINITY);
        mlogits_set(&P, 2, 1, -INFINITY);
        mirror_push(&P.m);
        mirror_push(&Q.m);
        for (div = VPPO_DIV_KL; div <= VPPO_DIV_JS; ++div) {
            CHECK_STATUS(VPPO_OK, vppo_cuda_dependency_logits(&P.d, &Q.d, (vppo_divergence)div, DF(dep), NULL));
            mirror_pull(&dep);
            CHECK_EQ_INT(div == VPPO_DIV_KL, isinf(GF(dep)[0]) && GF(dep)[0] > 0);
            CHECK(isfinite(GF(dep)[1]));
            CHECK_EQ_INT(div == VPPO_DIV_KL_REVERSE, isinf(GF(dep)[2]) && GF(dep)[2] > 0);
        }
        check_dependency_logits(&P, &Q);
        mirror_free(&P.m);
        mirror_free(&Q.m);
        mirror_free(&dep);
    }
}

/* Rows the fast walk hands to the robust code (issue 19: references within 2^24 in scaled
   units), and rows whose every step raises its references: against float64 and the CPU.
   Row 0 ascends (each step above the last), row 1 is around 3e7 (z/T beyond the range),
   row 2 around -3e7 (its maximum below it), row 3 plain; then the same at T = 1e-3 (rows
   1 and 2 around +-3e4, row 3 of N(0, 30)). Warp rows and block rows, f32 and bf16. */
void cuda_dependency_logits_exact_and_raising_rows_match_float64(void)
{
    /* 1500 and 20000: several streaming steps per thread (warp rows, block rows) */
    const int64_t vocabs[4] = { 100, 1500, 3000, 20000 };
    rng r = rng_make(2204);
    int v, d, t;
    int64_t i, j;
    for (v = 0; v < 4; ++v)
        for (d = VPPO_F32; d <= VPPO_BF16; ++d)
            for (t = 0; t < 2; ++t) {
                const int64_t V = vocabs[v], n = 4;
                const float T = t ? 1e-3f : 1.0f;
                mlogits P = mlogits_new((vppo_dtype)d, n, V, V, 0, T), Q = mlogits_new((vppo_dtype)d, n, V, V, 0, T);
                for (i = 0; i < n; ++i)
                    for (j = 0; j < V; ++j) {
                        const double g = rng_normal(&r), big = t ? 3e4 : 3e7, z = i == 0 ? 40.0 * (double)j / (double)V + 0.1 * g
                                       : i == 1 ? big + 3.0 * g : i == 2 ? -big + 3.0 * g : (t ? 30.0 : 3.0) * g;
                        mlogits_set(&P, i, j, z);
                        mlogits_set(&Q, i, j, z + (t ? 0.05 : 0.5) * rng_normal(&r));
                    }
                mirror_push(&P.m);
                mirror_push(&Q.m);
                check_dependency_logits(&P, &Q);
                mirror_free(&P.m);
                mirror_free(&Q.m);
            }
}

/* ================================================================ §2.3 */

void cuda_logprobs_dtype_conversions_are_exact(void)
{
    /* With vocab 1, lse is the logit itself: every finite bf16 and f16 pattern must come
       out as its exact value (emulated: the subnormals, the largest binade and every 31st
       other pattern, a row costing 32 fibers there). */
    int d;
    for (d = VPPO_BF16; d <= VPPO_F16; ++d) {
        mlogits L = mlogits_new((vppo_dtype)d, 65536, 1, 1, 0, 1.0f);
        mirror lse = mirror_new(65536 * 4, 0x7f);
        int64_t n = 0, h, wrong = 0;
        for (h = 0; h < 65536; ++h) {
            const double v = d == VPPO_BF16 ? test_bf16_value((uint16_t)h) : test_f16_value((uint16_t)h);
            const int e = d == VPPO_BF16 ? (int)(h >> 7) & 0xff : (int)(h >> 10) & 0x1f, e_top = d == VPPO_BF16 ? 0xfe : 0x1e;
            if (isfinite(v) && (!EMULATED || e == 0 || e == e_top || h % 31 == 0)) ((uint16_t *)L.h.data)[n++] = (uint16_t)h;
        }
        L.h.n_rows = L.d.n_rows = n;
        mirror_push(&L.m);
        CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs(&L.d, NULL, NULL, DF(lse), NULL, NULL));
        mirror_pull(&lse);
        for (h = 0; h < n; ++h) {
            const uint16_t bits = ((const uint16_t *)L.h.data)[h];
            wrong += (double)GF(lse)[h] != (d == VPPO_BF16 ? test_bf16_value(bits) : test_f16_value(bits));
        }
        CHECK_EQ_INT(0, wrong);
        CHECK(n > SIZE_EMU_REAL(2000, 60000));
        mirror_free(&L.m);
        mirror_free(&lse);
    }
}

/* Token ids of L's rows: the first entry on row 0, the last on row 1, random others. */
static mirror ids_make(rng *r, const mlogits *L)
{
    const int64_t n = L->h.n_rows, V = L->h.vocab;
    mirror ids = mirror_new((size_t)(n + 1) * sizeof(int32_t), 0x7f);
    int64_t i;
    for (i = 0; i < n; ++i) H_(int32_t, ids)[i] = i == 0 ? 0 : i == 1 ? (int32_t)(V - 1) : (int32_t)rng_int(r, 0, V - 1);
    mirror_push(&ids);
    return ids;
}

/* vppo_logprobs and the CUDA one with the outputs of `subset` (1 logp, 2 lse, 4 entropy;
   the others NULL; 8: ids NULL too unless logp needs them); lp, lse: float64 reference. */
static void check_logprobs(const mlogits *L, const mirror *ids, int subset, const double *lp, const double *lse)
{
    const int64_t n = L->h.n_rows, V = L->h.vocab;
    const size_t bytes = (size_t)(n + 2) * sizeof(float);
    mirror logp = subset & 1 ? mirror_new(bytes, 0x7f) : mirror_null();
    mirror l = subset & 2 ? mirror_new(bytes, 0x7f) : mirror_null();
    mirror ent = subset & 4 ? mirror_new(bytes, 0x7f) : mirror_null();
    const mirror none = mirror_null(), *id = (subset & 1) || !(subset & 8) ? ids : &none;
    int64_t i;
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&L->h, H_(int32_t, *id), HF(logp), HF(l), HF(ent)));
    CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs(&L->d, D_(int32_t, *id), DF(logp), DF(l), DF(ent), NULL));
    if (subset & 1) {
        mirror_pull(&logp);
        for (i = 0; i < n; ++i)
            CHECK_GPU(lp[i * V + H_(int32_t, *ids)[i]], HF(logp)[i], GF(logp)[i], TOL_LSE);
        CHECK_EQ_INT(0, touched_outside(&logp, sizeof(float), 0, n, 0x7f));
    }
    if (subset & 2) {
        mirror_pull(&l);
        for (i = 0; i < n; ++i) CHECK_GPU(lse[i], HF(l)[i], GF(l)[i], TOL_LSE);
        CHECK_EQ_INT(0, touched_outside(&l, sizeof(float), 0, n, 0x7f));
    }
    if (subset & 4) {
        mirror_pull(&ent);
        for (i = 0; i < n; ++i) CHECK_GPU(ref_entropy(lp + i * V, V), HF(ent)[i], GF(ent)[i], TOL_DIV);
        CHECK_EQ_INT(0, touched_outside(&ent, sizeof(float), 0, n, 0x7f));
    }
    mirror_free(&logp);
    mirror_free(&l);
    mirror_free(&ent);
}

void cuda_logprobs_every_vocab_dtype_stride_and_output_subset(void)
{
    rng r = rng_make(2301);
    int k;
    for (k = 0; k < 3 * N_VOCABS; ++k) {
        mlogits L = shape_logits(k, 0, k % 2 ? 1.0f : 0.8f);
        const int64_t n = L.h.n_rows, V = L.h.vocab;
        double *lp = doubles_new(n * V, 0), *lse = doubles_new(n, 0);
        mirror ids;
        mlogits_fill(&L, NULL, &r);
        ids = ids_make(&r, &L);
        ref_rows(&L, lp, lse);
        check_logprobs(&L, &ids, 7, lp, lse);        /* everything */
        check_logprobs(&L, &ids, k % 16, lp, lse);   /* and one subset, all 16 met across k */
        mirror_free(&ids);
        mirror_free(&L.m);
        free(lp);
        free(lse);
    }
}

/* The 4 rows below (vocabulary V of L, dtype d, t: T = 1e-3), pushed to the device. */
static void long_rows_fill(mlogits *L, rng *r, int d, int t)
{
    const int64_t V = L->h.vocab;
    int64_t i, j;
    for (i = 0; i < 4; ++i)
        for (j = 0; j < V; ++j) {
            const double g = rng_normal(r), big = d == VPPO_F16 ? (t ? 30.0 : 3e4) : t ? 3e4 : 3e7;
            const double z = i == 0 ? 20.0 * (double)j / (double)V + 0.1 * g : i == 1 ? big + 3.0 * g
                           : i == 2 ? -big + 3.0 * g : j > 0 && rng_uniform(r) < 0.1 ? -INFINITY : 3.0 * g;
            mlogits_set(L, i, j, z);
        }
    mirror_push(&L->m);
}

/* The fast walk's rows against float64 and the CPU (issue 19): vocabularies with several
   streaming steps per thread (1500: warp rows, 20000: block rows), every dtype, row 0
   ascending (raises in every step), rows 1 and 2 beyond the references' range above and
   below (done by the robust kernel), row 3 N(0, 3) with 10% -inf; T = 1 and 1e-3. */
void cuda_logprobs_long_exact_and_raising_rows_match_float64(void)
{
    const int64_t vocabs[2] = { 1500, 20000 };
    rng r = rng_make(2302);
    int v, d, t;
    for (v = 0; v < 2; ++v)
        for (d = VPPO_F32; d <= VPPO_F16; ++d)
            for (t = 0; t < 2; ++t) {
                const int64_t V = vocabs[v], n = 4;
                mlogits L = mlogits_new((vppo_dtype)d, n, V, V, 0, t ? 1e-3f : 1.0f);
                double *lp = doubles_new(n * V, 0), *lse = doubles_new(n, 0);
                mirror ids;
                long_rows_fill(&L, &r, d, t);
                ids = ids_make(&r, &L);
                ref_rows(&L, lp, lse);
                check_logprobs(&L, &ids, 7, lp, lse);
                mirror_free(&ids);
                mirror_free(&L.m);
                free(lp);
                free(lse);
            }
}

/* float64 dL/dz of one row, docs/spec.md §2.3: (1/T) [g (delta(j, id) - p_j) - h p_j (log p_j + H)]
   with log p_j = u_j - lse; lp: the exact log-softmax, shift: exact lse - the lse used (a
   given lse is a float and its rounding enters the formula), H: the entropy used; id < 0:
   no token term. */
static void ref_backward(const double *lp, int64_t V, double T, int64_t id, double g, double h, double shift,
                         double H, double *grad)
{
    int64_t j;
    for (j = 0; j < V; ++j) {
        const double lpj = lp[j] + shift, p = exp(lpj);
        grad[j] = (g * ((j == id ? 1.0 : 0.0) - p) - (p > 0 ? h * p * (lpj + H) : 0.0)) / T;
    }
}

/* Bytes of an output matrix (n rows of V, rows `stride` elements apart, es bytes each)
   outside the rows' V entries that are not `fill`. */
static int64_t touched_gaps(const mirror *m, size_t es, int64_t n, int64_t V, int64_t stride, int fill)
{
    size_t i;
    int64_t bad = 0;
    for (i = 0; i < m->bytes; ++i) {
        const int64_t e = (int64_t)(i / es);
        if (e < n * stride && e % stride < V) continue;
        bad += ((const unsigned char *)m->g)[i] != (unsigned char)fill;
    }
    return bad;
}

/* The backward of `variant` (1: lse given, 2: entropy given, 4: dlogp, 8: dentropy; ids
   only with dlogp) into F32 and BF16 rows of stride V + 2, against the float64 formula
   (lp, lse_exact: reference log-softmax and lse of L's rows; a given lse or entropy is
   the one used in the formula) and the CPU. */
static void check_backward(const mlogits *L, rng *r, int variant, const double *lp, const double *lse_exact)
{
    const int64_t n = L->h.n_rows, V = L->h.vocab, so = V + 2;
    const double T = L->h.temperature;
    mirror ids = ids_make(r, L), g = mirror_new((size_t)n * 4, 0), h = mirror_new((size_t)n * 4, 0);
    mirror lse = mirror_new((size_t)n * 4, 0), ent = mirror_new((size_t)n * 4, 0);
    mirror out32 = mirror_new((size_t)(n * so + 2) * 4, 0xff), out16 = mirror_new((size_t)(n * so + 2) * 2, 0xff);
    const mirror none = mirror_null();
    const mirror *a_ids = variant & 4 ? &ids : &none, *a_lse = variant & 1 ? &lse : &none;
    const mirror *a_ent = variant & 2 ? &ent : &none, *a_g = variant & 4 ? &g : &none, *a_h = variant & 8 ? &h : &none;
    double *want = doubles_new(V, 0);
    int64_t i, j, zero_wrong = 0, rounding_wrong = 0;
    int dt;
    for (i = 0; i < n; ++i) { HF(g)[i] = (float)rng_normal(r); HF(h)[i] = (float)rng_normal(r); }
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&L->h, NULL, NULL, HF(lse), HF(ent)));   /* as the forward wrote them */
    mirror_push(&g); mirror_push(&h); mirror_push(&lse); mirror_push(&ent);
    for (dt = VPPO_F32; dt <= VPPO_BF16; ++dt) {
        mirror *out = dt == VPPO_F32 ? &out32 : &out16;
        vppo_grad_out oh, od;
        oh.data = out->h; oh.dtype = (vppo_dtype)dt; oh.row_stride = so;
        od = oh;
        od.data = out->d;
        CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L->h, H_(int32_t, *a_ids), HF(*a_lse), HF(*a_ent), HF(*a_g),
                                                     HF(*a_h), &oh));
        CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs_backward(&L->d, D_(int32_t, *a_ids), DF(*a_lse), DF(*a_ent), DF(*a_g),
                                                          DF(*a_h), &od, NULL));
        mirror_pull(out);
        CHECK_EQ_INT(0, touched_gaps(out, dtype_size((vppo_dtype)dt), n, V, so, 0xff));
    }
    for (i = 0; i < n; ++i) {
        const int64_t id = variant & 4 ? H_(int32_t, ids)[i] : -1;
        const double shift = variant & 1 ? lse_exact[i] - HF(lse)[i] : 0.0;
        const double H = variant & 2 ? HF(ent)[i] : ref_entropy(lp + i * V, V);
        ref_backward(lp + i * V, V, T, id, variant & 4 ? HF(g)[i] : 0.0, variant & 8 ? HF(h)[i] : 0.0, shift, H, want);
        for (j = 0; j < V; ++j) {
            const float g32 = GF(out32)[i * so + j];
            const uint16_t g16 = G_(uint16_t, out16)[i * so + j];
            CHECK_GPU(want[j], HF(out32)[i * so + j], g32, TOL_DLOGITS);
            /* bf16: the f32 value rounded to nearest even, so within its half-ulp 2^-9 */
            CHECK_NEAR(want[j], test_bf16_value(g16), 1e-7, 1e-5 + 1.0 / 256);
            rounding_wrong += g16 != test_f32_to_bf16_round(g32);
            /* an entry of probability 0 gets exactly 0, except the sampled token's */
            if (lp[i * V + j] == -INFINITY && j != id) zero_wrong += g32 != 0.0f || (g16 & 0x7fff) != 0;
        }
    }
    CHECK_EQ_INT(0, rounding_wrong);
    CHECK_EQ_INT(0, zero_wrong);
    free(want);
    mirror_free(&ids); mirror_free(&g); mirror_free(&h); mirror_free(&lse); mirror_free(&ent);
    mirror_free(&out32); mirror_free(&out16);
}

void cuda_logprobs_backward_matches_float64_formula(void)
{
    rng r = rng_make(2401);
    int k;
    for (k = 0; k < 3 * N_VOCABS; ++k) {
        mlogits L = shape_logits(k, 0, k % 2 ? 1.0f : 0.7f);
        double *lp = doubles_new(L.h.n_rows * L.h.vocab, 0), *lse = doubles_new(L.h.n_rows, 0);
        mlogits_fill(&L, NULL, &r);
        ref_rows(&L, lp, lse);
        check_backward(&L, &r, 15, lp, lse);       /* everything given */
        check_backward(&L, &r, k % 16, lp, lse);   /* and one combination, all 16 met across k */
        mirror_free(&L.m);
        free(lp);
        free(lse);
    }
}

/* The backward that recomputes lse or entropy (issue 19: the fast logprobs walk, then the
   fast gradient loop; exact rows out of line) on the rows of
   cuda_logprobs_long_exact_and_raising_rows_match_float64: every dtype, warp and block rows,
   T = 1 and 1e-3, rows raising in every step, rows beyond the references' range (exact rows),
   rows with -inf; nothing given, and lse given with the entropy recomputed; against float64
   and the CPU, outputs of stride V + 2 (rows aligned with the input and rows not). Then in
   place (F32) against out of place at the same alignment: the same bits. */
void cuda_logprobs_backward_recomputed_long_and_exact_rows(void)
{
    rng r = rng_make(2403);
    int k;
    int64_t i;
    for (k = 0; k < 12; ++k) {   /* vocabulary 1500 or 20000, dtype, T = 1 or 1e-3 */
        const int d = (k / 2) % 3, t = k % 2;
        const int64_t V = k < 6 ? 1500 : 20000, n = 4;
        mlogits L = mlogits_new((vppo_dtype)d, n, V, V, 0, t ? 1e-3f : 1.0f);
        double *lp = doubles_new(n * V, 0), *lse = doubles_new(n, 0);
        long_rows_fill(&L, &r, d, t);
        ref_rows(&L, lp, lse);
        check_backward(&L, &r, 12, lp, lse);   /* lse and entropy recomputed */
        check_backward(&L, &r, 13, lp, lse);   /* lse given, entropy recomputed */
        if (d == VPPO_F32) {
            mirror ids = ids_make(&r, &L), g = mirror_new(n * 4, 0), h = mirror_new(n * 4, 0);
            mirror out = mirror_new((size_t)(n * V) * 4, 0xff), copy = mirror_new(L.m.bytes, 0);
            vppo_logits xin = L.d;
            vppo_grad_out go;
            int64_t wrong = 0;
            for (i = 0; i < n; ++i) { HF(g)[i] = (float)rng_normal(&r); HF(h)[i] = (float)rng_normal(&r); }
            mirror_push(&g); mirror_push(&h);
            memcpy(copy.h, L.m.h, L.m.bytes);
            mirror_push(&copy);
            go.data = out.d; go.dtype = VPPO_F32; go.row_stride = V;
            CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs_backward(&L.d, D_(int32_t, ids), NULL, NULL, DF(g), DF(h),
                                                              &go, NULL));
            xin.data = copy.d;
            go.data = copy.d;
            CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs_backward(&xin, D_(int32_t, ids), NULL, NULL, DF(g), DF(h),
                                                              &go, NULL));
            mirror_pull(&out);
            mirror_pull(&copy);
            for (i = 0; i < n * V; ++i) wrong += memcmp(GF(out) + i, GF(copy) + i, 4) != 0;
            CHECK_EQ_INT(0, wrong);
            mirror_free(&ids); mirror_free(&g); mirror_free(&h); mirror_free(&out); mirror_free(&copy);
        }
        mirror_free(&L.m);
        free(lp);
        free(lse);
    }
}

void cuda_logprobs_backward_in_place_gives_the_out_of_place_bits(void)
{
    rng r = rng_make(2402);
    const int64_t vocabs[3] = { 33, 700, 2049 };
    int v, variant;
    for (v = 0; v < 3; ++v)
        for (variant = 0; variant < 2; ++variant) {   /* lse and entropy recomputed, or given */
            const int64_t V = vocabs[v], n = 5, stride = V + 5;
            mlogits L = mlogits_new(VPPO_F32, n, V, stride, 1, 1.1f);
            mirror copy, out = mirror_new((size_t)(n * stride) * 4, 0xff), ids, g = mirror_new(n * 4, 0),
                   h = mirror_new(n * 4, 0), lse = mirror_new(n * 4, 0), ent = mirror_new(n * 4, 0);
            vppo_logits xin;
            vppo_grad_out go;
            int64_t i, j, wrong = 0;
            mlogits_fill(&L, NULL, &r);
            ids = ids_make(&r, &L);
            for (i = 0; i < n; ++i) { HF(g)[i] = (float)rng_normal(&r); HF(h)[i] = (float)rng_normal(&r); }
            CHECK_STATUS(VPPO_OK, vppo_logprobs(&L.h, NULL, NULL, HF(lse), HF(ent)));
            mirror_push(&g); mirror_push(&h); mirror_push(&lse); mirror_push(&ent);
            copy = mirror_new(L.m.bytes, 0);   /* the logits, to be overwritten in place */
            memcpy(copy.h, L.m.h, L.m.bytes);
            mirror_push(&copy);
            go.data = out.d; go.dtype = VPPO_F32; go.row_stride = stride;
            CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs_backward(&L.d, D_(int32_t, ids), variant ? DF(lse) : NULL,
                                                              variant ? DF(ent) : NULL, DF(g), DF(h), &go, NULL));
            xin = L.d;
            xin.data = (char *)copy.d + 4;   /* lead 1 */
            go.data = (void *)xin.data;
            CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs_backward(&xin, D_(int32_t, ids), variant ? DF(lse) : NULL,
                                                              variant ? DF(ent) : NULL, DF(g), DF(h), &go, NULL));
            mirror_pull(&out);
            mirror_pull(&copy);
            for (i = 0; i < n; ++i)
                for (j = 0; j < V; ++j)
                    wrong += memcmp(GF(out) + i * stride + j, GF(copy) + 1 + i * stride + j, 4) != 0;
            CHECK_EQ_INT(0, wrong);   /* the same bits */
            for (i = 0; i < n; ++i)   /* and the padding between rows keeps its NaN */
                for (j = V; j < stride; ++j) wrong += !isnan(GF(copy)[1 + i * stride + j]);
            CHECK_EQ_INT(0, wrong);
            mirror_free(&L.m); mirror_free(&copy); mirror_free(&out); mirror_free(&ids);
            mirror_free(&g); mirror_free(&h); mirror_free(&lse); mirror_free(&ent);
        }
}

/* ================================================================ §3 */

void cuda_patch_rows_bit_exact_and_gaps_kept(void)
{
    /* shapes: rows x row_len, stride (> row_len: gaps that must keep their bytes) */
    const int64_t shapes[4][3] = { { SIZE_EMU_REAL(300, 5000), 13, 16 }, { 40, 1000, 1003 }, { 7, 1, 1 }, { 0, 5, 5 } };
    const float probs[3] = { 0.0f, 0.5f, 1.0f };
    rng r = rng_make(3101);
    int s, p, with_fill;
    for (s = 0; s < 4; ++s)
        for (p = 0; p < 3; ++p)
            for (with_fill = 0; with_fill < 2; ++with_fill) {
                const int64_t n = shapes[s][0], len = shapes[s][1], stride = shapes[s][2];
                const uint64_t seed = 1000u * (uint64_t)s + 10u * (uint64_t)p + (uint64_t)with_fill;
                mirror rows = mirror_new((size_t)(n * stride + 3) * 4, 0xab);
                mirror fill = with_fill ? mirror_new((size_t)len * 4, 0) : mirror_null();
                float *orig = floats_new(n * stride + 3, 0);
                int64_t i, j, wrong = 0;
                for (i = 0; i < n; ++i)
                    for (j = 0; j < len; ++j) HF(rows)[i * stride + j] = (float)rng_normal(&r);
                for (j = 0; with_fill && j < len; ++j) HF(fill)[j] = (float)rng_normal(&r);
                memcpy(orig, rows.h, rows.bytes);
                mirror_push(&rows);
                mirror_push(&fill);
                CHECK_BOTH(VPPO_OK, vppo_perturb_patch_rows(HF(rows), n, len, stride, probs[p], HF(fill), seed),
                           vppo_cuda_perturb_patch_rows(DF(rows), n, len, stride, probs[p], DF(fill), seed, NULL));
                mirror_pull(&rows);
                CHECK_EQ_INT(0, differ(&rows, 1, 0, (int64_t)rows.bytes));   /* bit for bit, gaps included */
                CHECK_EQ_INT(0, touched_gaps(&rows, 4, n, len, stride, 0xab));
                for (i = 0; i < n; ++i)   /* prob 0 changes nothing, prob 1 every row */
                    for (j = 0; j < len; ++j) {
                        const float want = probs[p] == 0.0f ? orig[i * stride + j] : with_fill ? HF(fill)[j] : 0.0f;
                        if (probs[p] != 0.5f) wrong += memcmp(&want, GF(rows) + i * stride + j, 4) != 0;
                    }
                CHECK_EQ_INT(0, wrong);
                free(orig);
                mirror_free(&rows);
                mirror_free(&fill);
            }
}

/* ================================================================ §6 */

/* Scores at the valid positions of S (NaN elsewhere): kind 0 continuous, 1 ties among a
   few values (-0 and +0 among them), 2 a mix with +-inf. */
static void fill_scores(rng *r, const mseqs *S, mirror *score, int kind)
{
    static const float ties[5] = { -1.0f, 0.0f, -0.0f, 0.5f, 2.0f };
    static const float infs[5] = { -INFINITY, -1.0f, 0.0f, 1.0f, INFINITY };
    int64_t t;
    memset(score->h, 0xff, score->bytes);
    for (t = S->begin; t < S->end; ++t) {
        if (!valid_at(S, t)) continue;
        HF(*score)[t] = kind == 0 ? (float)rng_normal(r) : kind == 1 ? ties[rng_int(r, 0, 4)]
                      : rng_uniform(r) < 0.6 ? infs[rng_int(r, 0, 4)] : (float)rng_normal(r);
    }
    mirror_push(score);
}

/* Violations of docs/spec.md §6 by a mask: each sequence selects exactly k_b = clamp(ceil(n_b
   ratio - 1e-9), 0, n_b) valid positions (bytes 0 or 1, 0 at invalid positions), no
   rejected score exceeds a selected one, and among scores equal to the smallest selected
   one the selected positions come first (ties broken by lower position). */
static int64_t topk_violations(const mseqs *S, const float *score, const uint8_t *sel, double ratio)
{
    int64_t b, t, bad = 0;
    for (b = 0; b < S->h.n_seqs; ++b) {
        const int64_t lo = S->h.offsets[b], hi = S->h.offsets[b + 1];
        int64_t n = 0, k_got = 0, k;
        double min_sel = INFINITY, max_rej = -INFINITY, kk;
        int rejected_tie_seen = 0;
        for (t = lo; t < hi; ++t) {
            bad += sel[t] > 1;
            if (!valid_at(S, t)) { bad += sel[t] != 0; continue; }
            ++n;
            if (sel[t]) { ++k_got; if (score[t] < min_sel) min_sel = score[t]; }
            else if (score[t] > max_rej) max_rej = score[t];
        }
        kk = ceil((double)n * ratio - 1e-9);
        k = kk <= 0 ? 0 : kk >= (double)n ? n : (int64_t)kk;
        bad += k_got != k;
        if (k_got == 0) continue;
        bad += max_rej > min_sel;
        for (t = lo; t < hi; ++t) {
            if (!valid_at(S, t) || score[t] != min_sel) continue;
            if (!sel[t]) rejected_tie_seen = 1;
            else bad += rejected_tie_seen;
        }
    }
    return bad;
}

static void check_info(const vppo_topk_info *cpu, const vppo_topk_info *gpu)
{
    CHECK_EQ_INT(cpu->n_valid, gpu->n_valid);
    CHECK_EQ_INT(cpu->n_selected, gpu->n_selected);
    CHECK_NEAR(cpu->threshold_mean, gpu->threshold_mean, TOL_SCALAR);
    CHECK_NEAR(cpu->mean_selected, gpu->mean_selected, TOL_SCALAR);
    CHECK_NEAR(cpu->mean_rejected, gpu->mean_rejected, TOL_SCALAR);
}

static void check_topk(const mseqs *S, const mirror *score, double ratio)
{
    mirror sel = mirror_new((size_t)S->n, 0x5a);
    vppo_topk_info ic, ig;
    memset(&ic, 0, sizeof ic);
    memset(&ig, 0xff, sizeof ig);
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&S->h, HF(*score), ratio, H_(uint8_t, sel), &ic));
    CHECK_STATUS(VPPO_OK, vppo_cuda_topk_mask(&S->d, DF(*score), ratio, D_(uint8_t, sel), &ig, NULL));
    mirror_pull(&sel);
    CHECK_EQ_INT(0, differ(&sel, 1, S->begin, S->end));   /* exactly the CPU's mask */
    CHECK_EQ_INT(0, touched_outside(&sel, 1, S->begin, S->end, 0x5a));
    CHECK_EQ_INT(0, topk_violations(S, HF(*score), G_(uint8_t, sel), ratio));
    check_info(&ic, &ig);
    /* info is optional */
    memset(sel.g, 0, sel.bytes);
    CHECK_STATUS(VPPO_OK, vppo_cuda_topk_mask(&S->d, DF(*score), ratio, D_(uint8_t, sel), NULL, NULL));
    mirror_pull(&sel);
    CHECK_EQ_INT(0, differ(&sel, 1, S->begin, S->end));
    mirror_free(&sel);
}

/* Scores for the per-sequence paths' edge cases (issue 19): kind 0 continuous, 1 ties
   among a few values with -0 and +0, 2 all equal, 3 all negative, 4 +-inf among normals,
   5 one outlier far above the rest (soft mask: z near sqrt(n)); hard for the soft mask's
   root: 6 an outlier 1e6 above the rest, 7 two clusters 1e6 apart, 8 a heavy tail (exp of
   8 normals), 9 three tied values (the sum a step function). NaN at invalid positions. */
static void fill_scores_edge(rng *r, const mseqs *S, mirror *score, int kind)
{
    static const float ties[4] = { -0.0f, 0.0f, 1.5f, -2.0f };
    int64_t b, t;
    memset(score->h, 0xff, score->bytes);
    for (b = 0; b < S->h.n_seqs; ++b) {
        int first = 1;
        for (t = S->h.offsets[b]; t < S->h.offsets[b + 1]; ++t) {
            float v;
            if (!valid_at(S, t)) continue;
            switch (kind) {
            case 0: v = (float)rng_normal(r); break;
            case 1: v = ties[rng_int(r, 0, 3)]; break;
            case 2: v = 0.75f; break;
            case 3: v = -1.0f - (float)fabs(rng_normal(r)); break;
            case 4: v = rng_uniform(r) < 0.2 ? (rng_uniform(r) < 0.5 ? -INFINITY : INFINITY) : (float)rng_normal(r); break;
            case 5: v = first ? 1000.0f : (float)(0.01 * rng_normal(r)); break;
            case 6: v = first ? 1e6f : (float)(1e-3 * rng_normal(r)); break;
            case 7: v = (rng_uniform(r) < 0.5 ? 1e6f : 0.0f) + (float)rng_normal(r); break;
            case 8: v = (float)exp(8.0 * rng_normal(r)); break;
            default: v = (float)rng_int(r, 0, 2); break;
            }
            HF(*score)[t] = v;
            first = 0;
        }
    }
    mirror_push(score);
}

static const int64_t EDGE_LENS[] = { 0, 1, 31, 32, 33, 4095, 4096, 4097, 20000 };

/* check_topk for every kind of scores of fill and every ratio; frees S. */
static void topk_over_kinds(rng *r, mseqs *S, void (*fill)(rng *, const mseqs *, mirror *, int), int kinds,
                            const double *ratios, int n_ratios)
{
    mirror score = mirror_new((size_t)S->n * 4, 0xff);
    int kind, k;
    for (kind = 0; kind < kinds; ++kind) {
        fill(r, S, &score, kind);
        for (k = 0; k < n_ratios; ++k) check_topk(S, &score, ratios[k]);
    }
    mirror_free(&score);
    mseqs_free(S);
}

void cuda_topk_mask_exact_for_every_length_tie_and_ratio(void)
{
    static const int64_t lens[] = { 0, 1, 2, 3, 255, 256, 257, 4097 };
    static const double ratios[] = { 0.0, 0.1, 0.4, 0.5, 1.0 };
    rng r = rng_make(6101);
    int layout;
    for (layout = 0; layout < 3; ++layout) {
        mseqs S = layout == 2 ? layout_random(&r, SIZE_EMU_REAL(60, 500), 3, 80, 1, 4)   /* many sequences */
                : layout_lengths(&r, lens, 8, layout ? 5 : 0, layout, 9);              /* with holes or none */
        topk_over_kinds(&r, &S, fill_scores, 3, ratios, 5);
    }
}

void cuda_topk_mask_exact_on_a_40000_token_sequence(void)
{
    const int64_t len = 40000;
    rng r = rng_make(6102);
    mseqs S = layout_lengths(&r, &len, 1, 2, 1, 3);
    mirror score = mirror_new((size_t)S.n * 4, 0xff);
    int kind;
    for (kind = 0; kind < 3; ++kind) {
        fill_scores(&r, &S, &score, kind);
        check_topk(&S, &score, 0.4);
        if (!EMULATED || kind == 1) { check_topk(&S, &score, 0.1); check_topk(&S, &score, 0.5); }
    }
    mirror_free(&score);
    mseqs_free(&S);
}

/* docs/spec.md §6 soft mask in float64: per sequence z = (s - mean) / (std + 1e-6) (population std
   over the valid positions), c with mean(sigmoid(z - c)) = ratio by bisection to 1e-12,
   w = sigmoid(z - c); ratio 0 gives 0 and 1 gives 1 at valid positions; 0 elsewhere. */
static double ref_sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

static void ref_soft_mask(const mseqs *S, const float *score, double ratio, double *w)
{
    int64_t b, t;
    for (t = 0; t < S->n; ++t) w[t] = 0.0;
    for (b = 0; b < S->h.n_seqs; ++b) {
        const int64_t lo = S->h.offsets[b], hi = S->h.offsets[b + 1], n = n_valid_of(S, b);
        double mean = 0, var = 0, inv, zmin = INFINITY, zmax = -INFINITY, c_lo, c_hi;
        int it;
        if (n == 0) continue;
        for (t = lo; t < hi; ++t) if (valid_at(S, t)) mean += score[t];
        mean /= (double)n;
        for (t = lo; t < hi; ++t) if (valid_at(S, t)) var += (score[t] - mean) * (score[t] - mean);
        inv = 1.0 / (sqrt(var / (double)n) + 1e-6);
        if (ratio == 0.0 || ratio == 1.0) {
            for (t = lo; t < hi; ++t) w[t] = valid_at(S, t) ? ratio : 0.0;
            continue;
        }
        for (t = lo; t < hi; ++t)
            if (valid_at(S, t)) {
                const double z = (score[t] - mean) * inv;
                zmin = z < zmin ? z : zmin;
                zmax = z > zmax ? z : zmax;
            }
        c_lo = zmin - log(ratio / (1 - ratio)) - 1;
        c_hi = zmax - log(ratio / (1 - ratio)) + 1;
        for (it = 0; it < 200 && c_hi - c_lo > 1e-12; ++it) {
            const double c = 0.5 * (c_lo + c_hi);
            double f = 0;
            for (t = lo; t < hi; ++t) if (valid_at(S, t)) f += ref_sigmoid((score[t] - mean) * inv - c);
            if (f / (double)n > ratio) c_lo = c; else c_hi = c;
        }
        for (t = lo; t < hi; ++t)
            if (valid_at(S, t)) w[t] = ref_sigmoid((score[t] - mean) * inv - 0.5 * (c_lo + c_hi));
    }
}

/* One soft-mask call on both sides against the float64 bisection (want: scratch): §12 of
   both, and of the reference within tight when tight > 0; 0 and 1 exact; the mean weight
   of each sequence is the ratio; nothing written outside; with again (scratch), a second
   GPU call gives the same bits. */
static void check_soft(const mseqs *S, const mirror *score, mirror *w, double *want, double ratio, double tight,
                       float *again)
{
    int64_t b, t, exact_wrong = 0, mean_wrong = 0;
    CHECK_STATUS(VPPO_OK, vppo_soft_mask(&S->h, HF(*score), ratio, HF(*w)));
    CHECK_STATUS(VPPO_OK, vppo_cuda_soft_mask(&S->d, DF(*score), ratio, DF(*w), NULL));
    mirror_pull(w);
    if (again) {
        memcpy(again, G_(float, *w), (size_t)S->n * 4);
        CHECK_STATUS(VPPO_OK, vppo_cuda_soft_mask(&S->d, DF(*score), ratio, DF(*w), NULL));
        mirror_pull(w);
        CHECK_EQ_INT(0, memcmp(again, G_(float, *w), (size_t)S->n * 4));
    }
    ref_soft_mask(S, HF(*score), ratio, want);
    for (t = S->begin; t < S->end; ++t) {
        CHECK_GPU(want[t], HF(*w)[t], GF(*w)[t], TOL_TOKEN);
        if (tight > 0.0) CHECK_NEAR_(want[t], GF(*w)[t], tight, 0.0);
        if (ratio == 0.0 || ratio == 1.0 || !valid_at(S, t)) exact_wrong += GF(*w)[t] != (float)want[t];
    }
    CHECK_EQ_INT(0, exact_wrong);   /* 0 and 1 exactly */
    for (b = 0; b < S->h.n_seqs; ++b) {   /* the mean weight of a sequence is the ratio */
        double sum = 0;
        const int64_t n = n_valid_of(S, b);
        for (t = S->h.offsets[b]; t < S->h.offsets[b + 1]; ++t) if (valid_at(S, t)) sum += GF(*w)[t];
        if (n > 0) mean_wrong += fabs(sum / (double)n - ratio) > 1e-6;
    }
    CHECK_EQ_INT(0, mean_wrong);
    CHECK_EQ_INT(0, touched_outside(w, 4, S->begin, S->end, 0x7f));
}

void cuda_soft_mask_matches_float64_bisection(void)
{
    static const int64_t lens[] = { 0, 1, 2, 3, 255, 256, 257, SIZE_EMU_REAL(1000, 4097) };
    static const double ratios[] = { 0.0, 0.1, 0.4, 0.5, 0.9, 1.0 };
    rng r = rng_make(6201);
    int layout, kind, k;
    for (layout = 0; layout < 2; ++layout) {
        mseqs S = layout ? layout_random(&r, SIZE_EMU_REAL(40, 300), 2, 60, 1, 3) : layout_lengths(&r, lens, 8, 4, 1, 3);
        mirror score = mirror_new((size_t)S.n * 4, 0xff), w = mirror_new((size_t)S.n * 4, 0x7f);
        double *want = doubles_new(S.n, 0);
        for (kind = 0; kind < 2; ++kind) {
            fill_scores(&r, &S, &score, kind);
            for (k = 0; k < 6; ++k) check_soft(&S, &score, &w, want, ratios[k], 0.0, NULL);
        }
        free(want);
        mirror_free(&score);
        mirror_free(&w);
        mseqs_free(&S);
    }
}


/* The top-k mask on both sides of the shared-memory limit (4096 tokens), at warp-size
   boundaries, with all-equal scores, ties at the threshold, +-0, negative scores, +-inf,
   ratios 0 and 1: exactly the CPU's mask and info. */
void cuda_topk_mask_exact_at_the_shared_memory_limit(void)
{
    static const double ratios[] = { 0.0, 0.3, 0.5, 1.0 };
    rng r = rng_make(6103);
    int holes;
    for (holes = 0; holes < 2; ++holes) {
        mseqs S = layout_lengths(&r, EDGE_LENS, 9, 3, holes, 5);
        topk_over_kinds(&r, &S, fill_scores_edge, 5, ratios, 4);
    }
}

/* The soft mask on the same lengths and scores (and one outlier: z near sqrt(n), the
   threshold beside it for ratio 1/(2n)): within §12 of the float64 bisection and of the
   CPU, and within 4e-7 of the former (the root polished in double: only the float
   sigmoid's approximations remain, about 1e-7; a root left at float resolution misses
   this at 20,000 tied tokens or at the outlier), mean weight = ratio, 0 and 1 exact; two
   runs give the same bits (fixed-order reductions). */
void cuda_soft_mask_edge_cases_and_repeatable_bits(void)
{
    rng r = rng_make(6202);
    int holes, kind, k;
    for (holes = 0; holes < 2; ++holes) {
        mseqs S = layout_lengths(&r, EDGE_LENS, 9, 2, holes, 3);
        mirror score = mirror_new((size_t)S.n * 4, 0xff), w = mirror_new((size_t)S.n * 4, 0x7f);
        float *again = (float *)malloc((size_t)S.n * 4);
        double *want = doubles_new(S.n, 0);
        for (kind = 0; kind < 6; ++kind) {
            if (kind == 4) continue;   /* the soft mask takes finite scores */
            fill_scores_edge(&r, &S, &score, kind);
            for (k = 0; k < 5; ++k)   /* the polished root: within 4e-7, tighter than §12 */
                check_soft(&S, &score, &w, want, k == 0 ? 0.0 : k == 1 ? 1.0 : k == 2 ? 0.3 : k == 3 ? 0.5 : 1.0 / 40000.0,
                           4e-7, again);
        }
        free(again);
        free(want);
        mirror_free(&score);
        mirror_free(&w);
        mseqs_free(&S);
    }
}

#ifdef VPPO_CUDA_EMULATE
/* The emulator build's count of the soft mask's root steps (vppo_cuda.cu's test hook). */
extern "C" int vppo_cuda_emu_soft_steps(int reset, int *capped);

/* Issue 19: the soft mask within 12 block barriers per sequence, i.e. at most 8 root
   steps (1 for k_seq_a, 1 for the stop flag, 1 for mean and variance, 1 for the
   polishing step). On inputs that are hard for the root (fill_scores_edge 6 to 9;
   ratios at 1/(2n), near 0 and 1, 0.5), no sequence takes more than 8 steps, some take
   more than one, and the weights stay within 4e-7 of the float64 bisection whether or not
   a sequence stopped at the cap (check_soft: also the CPU, mean weight = ratio, two runs
   the same bits). */
void cuda_soft_mask_root_steps_bounded_on_hard_inputs(void)
{
    static const int64_t lens[] = { 2, 3, 33, 1000, 4096, 4097, 20000 };
    static const double ratios[] = { 1.0 / 40000.0, 1e-4, 0.5, 0.97, 1.0 - 1.0 / 40000.0 };
    rng r = rng_make(6203);
    mseqs S = layout_lengths(&r, lens, 7, 2, 1, 3);
    mirror score = mirror_new((size_t)S.n * 4, 0xff), w = mirror_new((size_t)S.n * 4, 0x7f);
    float *again = (float *)malloc((size_t)S.n * 4);
    double *want = doubles_new(S.n, 0);
    int kind, k, most = 0, capped = 0;
    for (kind = 0; kind < 4; ++kind) {
        fill_scores_edge(&r, &S, &score, 6 + kind);
        for (k = 0; k < 5; ++k) {
            int c = 0, m;
            vppo_cuda_emu_soft_steps(1, NULL);
            check_soft(&S, &score, &w, want, ratios[k], 4e-7, again);
            m = vppo_cuda_emu_soft_steps(1, &c);
            CHECK_MSG(m >= 1 && m <= 8, "kind %d ratio %g: %d root steps (1 to 8 expected)", kind, ratios[k], m);
            most = m > most ? m : most;
            capped += c;
        }
    }
    CHECK_MSG(most > 1, "the hard inputs never took a second root step (%d)", most);
    fprintf(stderr, "  note  soft mask root steps on hard inputs: at most %d, %d sequence runs at the cap\n", most,
            capped);
    free(again);
    free(want);
    mirror_free(&score);
    mirror_free(&w);
    mseqs_free(&S);
}

void cuda_topk_mask_exact_at_the_shared_memory_limit(void);
void cuda_soft_mask_edge_cases_and_repeatable_bits(void);
void cuda_step_matches_cpu(void);
void cuda_policy_loss_matches_cpu_over_the_config_matrix(void);
/* The per-sequence kernels with 3 blocks for all sequences (the emulator build's grid hook):
   every block runs several sequences of mixed lengths (shared-memory and global paths) in
   its grid-stride loop; the same checks as with one block per sequence. */
void cuda_per_sequence_kernels_with_several_sequences_per_block(void)
{
    CHECK_EQ_INT(0, setenv("VPPO_CUDA_EMU_SEQ_GRID", "3", 1));
    cuda_topk_mask_exact_for_every_length_tie_and_ratio();
    cuda_topk_mask_exact_at_the_shared_memory_limit();
    cuda_soft_mask_edge_cases_and_repeatable_bits();
    cuda_step_matches_cpu();
    cuda_policy_loss_matches_cpu_over_the_config_matrix();
    CHECK_EQ_INT(0, unsetenv("VPPO_CUDA_EMU_SEQ_GRID"));
}
#endif

/* ================================================================ §7 */

/* loss_out of the GPU against the CPU's and the float64 reference (batch scalars are
   computed in double on both paths: TOL_SCALAR against each). */
static void check_loss_out(const vppo_loss_out *cpu, const vppo_loss_out *gpu, const ref_loss_terms *ref)
{
    CHECK_NEAR(ref->loss, gpu->loss, TOL_SCALAR);
    CHECK_NEAR(cpu->loss, gpu->loss, TOL_SCALAR);
    CHECK_NEAR(ref->pg, gpu->pg_loss, TOL_SCALAR);
    CHECK_NEAR(cpu->pg_loss, gpu->pg_loss, TOL_SCALAR);
    CHECK_NEAR(ref->kl, gpu->kl_loss, TOL_SCALAR);
    CHECK_NEAR(cpu->kl_loss, gpu->kl_loss, TOL_SCALAR);
    CHECK_NEAR(ref->ent, gpu->entropy_loss, TOL_SCALAR);
    CHECK_NEAR(cpu->entropy_loss, gpu->entropy_loss, TOL_SCALAR);
    CHECK_NEAR(ref->clipfrac, gpu->clipfrac, TOL_SCALAR);
    CHECK_NEAR(cpu->clipfrac, gpu->clipfrac, TOL_SCALAR);
    CHECK_NEAR(ref->clipfrac_dual, gpu->clipfrac_dual, TOL_SCALAR);
    CHECK_NEAR(cpu->clipfrac_dual, gpu->clipfrac_dual, TOL_SCALAR);
    CHECK_NEAR(ref->ppo_kl, gpu->ppo_kl, TOL_SCALAR);
    CHECK_NEAR(cpu->ppo_kl, gpu->ppo_kl, TOL_SCALAR);
    CHECK_EQ_INT(ref->n_valid, gpu->n_valid);
    CHECK_EQ_INT(cpu->n_valid, gpu->n_valid);
    CHECK_EQ_INT(ref->n_selected, gpu->n_selected);
    CHECK_EQ_INT(cpu->n_selected, gpu->n_selected);
}

/* dlogp of the GPU (brought back) against the CPU's: TOL_TOKEN, 0 at invalid positions,
   nothing written outside the range. */
static void check_dlogp(const mseqs *S, const mirror *dlogp)
{
    int64_t t, nonzero = 0;
    for (t = S->begin; t < S->end; ++t) {
        if (valid_at(S, t)) CHECK_NEAR(HF(*dlogp)[t], GF(*dlogp)[t], TOL_TOKEN);
        else nonzero += GF(*dlogp)[t] != 0.0f;
    }
    CHECK_EQ_INT(0, nonzero);
    CHECK_EQ_INT(0, touched_outside(dlogp, 4, S->begin, S->end, 0x7f));
}

static double *doubles_of(const float *x, int64_t n)
{
    double *d = doubles_new(n, 0);
    int64_t i;
    for (i = 0; i < n; ++i) d[i] = x[i];
    return d;
}

void cuda_policy_loss_matches_cpu_over_the_config_matrix(void)
{
    rng r = rng_make(7101);
    mseqs S = layout_random(&r, SIZE_EMU_REAL(14, 64), 2, 40, 1, 5);
    token_data D = token_data_make(&r, &S);
    mirror dlogp = mirror_new((size_t)S.n * 4, 0x7f);
    const mirror none = mirror_null();
    double *lp = doubles_of(HF(D.logp), S.n);
    int i = 0, pg, level, agg, kl;
    for (pg = VPPO_PG_CLIP; pg <= VPPO_PG_CISPO; ++pg)
        for (level = VPPO_RATIO_TOKEN; level <= VPPO_RATIO_SEQ_TOKEN; ++level)
            for (agg = VPPO_AGG_TOKEN_MEAN; agg <= VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM; ++agg)
                for (kl = VPPO_KL_NONE; kl <= VPPO_KL_K3; ++kl, ++i) {
                    vppo_loss_config c = vppo_loss_config_default();
                    /* options by the bits of the config's number: select, weight, denom, no dual clip, reference without KL */
                    const mirror *sel = i & 1 ? &D.select : &none, *w = i & 2 ? &D.weight : &none;
                    const mirror *ref = kl != VPPO_KL_NONE || (i & 16) ? &D.logp_ref : &none;
                    vppo_loss_out oc, og;
                    ref_loss_terms R;
                    c.pg_kind = (vppo_pg_kind)pg;
                    c.ratio_level = (vppo_ratio_level)level;
                    c.agg = (vppo_agg)agg;
                    c.agg_norm = 7.0;
                    c.kl_kind = (vppo_kl_kind)kl;
                    c.kl_coef = kl ? 0.1f : 0.0f;
                    c.clip_dual = (i >> 3) & 1 ? 0.0f : 3.0f;
                    c.denom = i & 4 ? 123.5 : 0.0;
                    c.entropy_coef = i % 3 ? 0.06f : 0.0f;
                    memset(&oc, 0, sizeof oc);
                    memset(&og, 0xff, sizeof og);
                    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &S.h, HF(D.logp), HF(D.logp_old), HF(*ref), HF(D.adv),
                                                           H_(uint8_t, *sel), HF(*w), HF(dlogp), &oc));
                    CHECK_STATUS(VPPO_OK, vppo_cuda_policy_loss(&c, &S.d, DF(D.logp), DF(D.logp_old), DF(*ref), DF(D.adv),
                                                                D_(uint8_t, *sel), DF(*w), DF(dlogp), &og, NULL));
                    mirror_pull(&dlogp);
                    R = ref_policy_loss(&c, &S.h, lp, lp, HF(D.logp_old), HF(*ref), HF(D.adv), H_(uint8_t, *sel), HF(*w));
                    check_loss_out(&oc, &og, &R);
                    check_dlogp(&S, &dlogp);
                    if (i % 3 == 0) {   /* dlogp is optional */
                        memset(&og, 0xff, sizeof og);
                        CHECK_STATUS(VPPO_OK, vppo_cuda_policy_loss(&c, &S.d, DF(D.logp), DF(D.logp_old), DF(*ref),
                            DF(D.adv), D_(uint8_t, *sel), DF(*w), NULL, &og, NULL));
                        check_loss_out(&oc, &og, &R);
                    }
                }
    free(lp);
    mirror_free(&dlogp);
    token_data_free(&D);
    mseqs_free(&S);
}

/* ================================================================ §8 */

/* The vppo_prepared buffers, host side (h: for the CPU) and device side (d). */
typedef struct mprepared { mirror dep, traj_dep, count, scale, adv, select; vppo_prepared h, d; } mprepared;

static mprepared mprepared_new(const mseqs *S)
{
    const int64_t B = S->h.n_seqs;
    mprepared P;
    P.dep = mirror_new((size_t)S->n * 4, 0x7f);
    P.traj_dep = mirror_new((size_t)(B + 2) * 4, 0x7f);
    P.count = mirror_new((size_t)(B + 2) * 8, 0x7f);
    P.scale = mirror_new((size_t)(B + 2) * 4, 0x7f);
    P.adv = mirror_new((size_t)S->n * 4, 0x7f);
    P.select = mirror_new((size_t)S->n, 0x5a);
    memset(&P.h, 0, sizeof P.h);
    P.h.dep = HF(P.dep); P.h.traj_dep = HF(P.traj_dep); P.h.count = H_(int64_t, P.count);
    P.h.scale = HF(P.scale); P.h.adv = HF(P.adv); P.h.select = H_(uint8_t, P.select);
    memset(&P.d, 0xff, sizeof P.d);   /* stats and topk: the call must fill them */
    P.d.dep = DF(P.dep); P.d.traj_dep = DF(P.traj_dep); P.d.count = D_(int64_t, P.count);
    P.d.scale = DF(P.scale); P.d.adv = DF(P.adv); P.d.select = D_(uint8_t, P.select);
    return P;
}

static void mprepared_pull(mprepared *P)
{
    mirror_pull(&P->dep); mirror_pull(&P->traj_dep); mirror_pull(&P->count);
    mirror_pull(&P->scale); mirror_pull(&P->adv); mirror_pull(&P->select);
}

static void mprepared_free(mprepared *P)
{
    mirror_free(&P->dep); mirror_free(&P->traj_dep); mirror_free(&P->count);
    mirror_free(&P->scale); mirror_free(&P->adv); mirror_free(&P->select);
}

/* The GPU's prepared buffers (brought back), stage by stage: each stage against the
   float64 reference or the CPU, given the GPU's own result of the stage before, so that a
   last-bit difference early on cannot excuse or fake a mismatch later. dep_in: host copy
   or NULL; global: the stats given, or NULL. */
static void check_prepared(const vppo_config *cfg, const mseqs *S, const token_data *D, const float *dep_in,
                           const vppo_tas_stats *global, const mprepared *P)
{
    const int64_t B = S->h.n_seqs;
    const double ratio = cfg->use_tgf ? cfg->topk_ratio : 1.0;
    const float *gdep = GF(P->dep), *gtraj = GF(P->traj_dep), *gscale = GF(P->scale), *gadv = GF(P->adv);
    const int64_t *gcount = G_(int64_t, P->count);
    const uint8_t *gsel = G_(uint8_t, P->select), *want_sel = H_(uint8_t, P->select);
    uint8_t *recomputed = NULL;
    float *scale_ref = floats_new(B, 0);
    vppo_topk_info want_info = P->h.topk;
    vppo_tas_stats st;
    int64_t b, t, nonzero = 0, dep_bits_differ = 0, sel_wrong = 0;

    /* dep: a copy of dep_in, or the estimator against float64 and the CPU */
    for (t = S->begin; t < S->end; ++t) {
        if (!valid_at(S, t)) { nonzero += gdep[t] != 0.0f || gadv[t] != 0.0f; continue; }
        if (dep_in) CHECK_SAME_FLOAT(dep_in[t], gdep[t]);
        else CHECK_GPU(ref_dependency(cfg->estimator, HF(D->logp_old)[t], HF(D->logp_aug)[t]), HF(P->dep)[t], gdep[t],
                       TOL_TOKEN);
        dep_bits_differ += memcmp(&gdep[t], &HF(P->dep)[t], 4) != 0;
    }
    CHECK_EQ_INT(0, nonzero);   /* dep and adv are 0 at invalid positions */
    CHECK_EQ_INT(0, touched_outside(&P->dep, 4, S->begin, S->end, 0x7f));
    CHECK_EQ_INT(0, touched_outside(&P->adv, 4, S->begin, S->end, 0x7f));
    CHECK_EQ_INT(0, touched_outside(&P->select, 1, S->begin, S->end, 0x5a));
    CHECK_EQ_INT(0, touched_outside(&P->traj_dep, 4, 0, B, 0x7f));
    CHECK_EQ_INT(0, touched_outside(&P->count, 8, 0, B, 0x7f));
    CHECK_EQ_INT(0, touched_outside(&P->scale, 4, 0, B, 0x7f));

    /* traj_dep and count: the float64 mean of the GPU's dep, and the CPU's */
    for (b = 0; b < B; ++b) {
        double sum = 0;
        const int64_t n = n_valid_of(S, b);
        for (t = S->h.offsets[b]; t < S->h.offsets[b + 1]; ++t) if (valid_at(S, t)) sum += gdep[t];
        CHECK_EQ_INT(n, gcount[b]);
        CHECK_EQ_INT(H_(int64_t, P->count)[b], gcount[b]);
        CHECK_NEAR(n ? sum / (double)n : 0.0, gtraj[b], TOL_TOKEN);
        CHECK_NEAR(HF(P->traj_dep)[b], gtraj[b], TWICE(TOL_TOKEN));
    }

    /* stats: the ones given, or min, max and number of the GPU's non-empty trajectories */
    if (global) st = *global;
    else CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(gtraj, gcount, B, &st));
    CHECK(P->d.stats.min == st.min && P->d.stats.max == st.max);
    CHECK_EQ_INT(st.n, P->d.stats.n);
    CHECK_NEAR(P->h.stats.min, P->d.stats.min, TWICE(TOL_TOKEN));
    CHECK_NEAR(P->h.stats.max, P->d.stats.max, TWICE(TOL_TOKEN));

    /* scale: the CPU's vppo_tas_scales on the GPU's traj_dep, count and stats; 1 without TAS */
    if (cfg->use_tas) CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg->tas, &P->d.stats, gtraj, gcount, B, scale_ref));
    else for (b = 0; b < B; ++b) scale_ref[b] = 1.0f;
    for (b = 0; b < B; ++b) {
        CHECK_NEAR(scale_ref[b], gscale[b], TOL_TOKEN);
        CHECK_NEAR(HF(P->scale)[b], gscale[b], TWICE(TOL_TOKEN));
        if (!cfg->use_tas) CHECK(gscale[b] == 1.0f);
        /* adv = scale_b adv_seq_b at the valid positions */
        for (t = S->h.offsets[b]; t < S->h.offsets[b + 1]; ++t)
            if (valid_at(S, t)) {
                CHECK_NEAR((double)gscale[b] * HF(D->adv_seq)[b], gadv[t], TOL_TOKEN);
                CHECK_NEAR(HF(P->adv)[t], gadv[t], TWICE(TOL_TOKEN));
            }
    }

    /* select, exactly: the CPU's mask when the GPU's dep has the CPU's bits everywhere;
       otherwise (a last-bit difference in exp) the CPU's top-k on the GPU's dep, since a
       different bit may legitimately reorder two scores */
    if (dep_bits_differ) {
        recomputed = (uint8_t *)malloc((size_t)S->n);
        CHECK_STATUS(VPPO_OK, vppo_topk_mask(&S->h, gdep, ratio, recomputed, &want_info));
        want_sel = recomputed;
    }
    for (t = S->begin; t < S->end; ++t) sel_wrong += gsel[t] != want_sel[t];
    CHECK_EQ_INT(0, sel_wrong);
    CHECK_EQ_INT(0, topk_violations(S, gdep, gsel, ratio));
    check_info(&want_info, &P->d.topk);
    free(recomputed);
    free(scale_ref);
}

/* The configurations of the pipeline tests. */
static vppo_config pipeline_config(int which)
{
    vppo_config c = vppo_config_default();
    switch (which) {
    case 1: c.use_tas = 0; c.use_tgf = 0; break;                          /* plain DAPO */
    case 2: c.tas.mode = VPPO_TAS_LINEAR; c.tas.beta_min = 0.5f; c.tas.beta_max = 1.5f; c.topk_ratio = 0.25; break;
    case 3: c.estimator = VPPO_EST_PROB_DROP; c.tas.beta_min = 0.5f; c.topk_ratio = 0.5; break;
    case 4: c.estimator = VPPO_EST_ABS; c.use_tgf = 0; break;
    case 5: c.use_tas = 0; c.topk_ratio = 0.1; break;
    default: break;                                                      /* the released recipe */
    }
    return c;
}

void cuda_prepare_matches_cpu_stage_by_stage(void)
{
    rng r = rng_make(8101);
    mseqs S = layout_random(&r, SIZE_EMU_REAL(18, 96), 4, 50, 1, 5);
    token_data D = token_data_make(&r, &S);
    mirror dep_in = mirror_new((size_t)S.n * 4, 0xff);
    vppo_tas_stats global;
    int c, source;
    int64_t t;
    global.min = 0.25; global.max = 4.0; global.n = 50;
    for (t = S.begin; t < S.end; ++t) if (valid_at(&S, t)) HF(dep_in)[t] = fabsf(HF(D.score)[t]);
    mirror_push(&dep_in);
    for (c = 0; c < 6; ++c)
        for (source = 0; source < 3; ++source) {   /* sampled dep; dep_in given; global stats given */
            const vppo_config cfg = pipeline_config(c);
            const mirror none = mirror_null(), *din = source == 1 ? &dep_in : &none;
            const vppo_tas_stats *gl = source == 2 ? &global : NULL;
            mprepared P = mprepared_new(&S);
            CHECK_STATUS(VPPO_OK, vppo_prepare(&cfg, &S.h, HF(D.logp_old), HF(D.logp_aug), HF(*din), HF(D.adv_seq), gl, &P.h));
            CHECK_STATUS(VPPO_OK, vppo_cuda_prepare(&cfg, &S.d, DF(D.logp_old), DF(D.logp_aug), DF(*din), DF(D.adv_seq), gl,
                                                    &P.d, NULL));
            mprepared_pull(&P);
            check_prepared(&cfg, &S, &D, HF(*din), gl, &P);
            mprepared_free(&P);
        }
    /* without a dependency source TAS and TGF must be off: then dep is 0 */
    {
        const vppo_config cfg = pipeline_config(1);
        mprepared P = mprepared_new(&S);
        int64_t nonzero = 0;
        CHECK_BOTH(VPPO_OK, vppo_prepare(&cfg, &S.h, NULL, NULL, NULL, HF(D.adv_seq), NULL, &P.h),
                   vppo_cuda_prepare(&cfg, &S.d, NULL, NULL, NULL, DF(D.adv_seq), NULL, &P.d, NULL));
        mprepared_pull(&P);
        for (t = S.begin; t < S.end; ++t) nonzero += GF(P.dep)[t] != 0.0f;
        CHECK_EQ_INT(0, nonzero);
        mprepared_free(&P);
    }
    mirror_free(&dep_in);
    token_data_free(&D);
    mseqs_free(&S);
}

void cuda_step_matches_cpu(void)
{
    rng r = rng_make(8201);
    mseqs S = layout_random(&r, SIZE_EMU_REAL(18, 96), 1, 50, 1, 5);
    token_data D = token_data_make(&r, &S);
    mirror dlogp = mirror_new((size_t)S.n * 4, 0x7f), chain = mirror_new((size_t)S.n * 4, 0x7f);
    double *lp = doubles_of(HF(D.logp), S.n);
    int c;
    for (c = 0; c < 8; ++c) {
        vppo_config cfg = pipeline_config(c % 6);
        const mirror none = mirror_null(), *ref = c >= 6 ? &D.logp_ref : &none;
        mprepared P = mprepared_new(&S);
        vppo_loss_out oc, og, ochain;
        ref_loss_terms R;
        if (c == 6) { cfg.loss.kl_kind = VPPO_KL_K3; cfg.loss.kl_coef = 0.05f; cfg.loss.agg = VPPO_AGG_SEQ_MEAN_TOKEN_MEAN; }
        if (c == 7) { cfg.loss.pg_kind = VPPO_PG_CISPO; cfg.loss.ratio_level = VPPO_RATIO_SEQ; cfg.loss.kl_kind = VPPO_KL_K2;
                      cfg.loss.kl_coef = 0.1f; }
        memset(&oc, 0, sizeof oc);
        memset(&og, 0xff, sizeof og);
        CHECK_STATUS(VPPO_OK, vppo_step(&cfg, &S.h, HF(D.logp), HF(D.logp_old), HF(D.logp_aug), HF(*ref), HF(D.adv_seq),
                                        &P.h, HF(dlogp), &oc));
        CHECK_STATUS(VPPO_OK, vppo_cuda_step(&cfg, &S.d, DF(D.logp), DF(D.logp_old), DF(D.logp_aug), DF(*ref),
                                             DF(D.adv_seq), &P.d, DF(dlogp), &og, NULL));
        mprepared_pull(&P);
        mirror_pull(&dlogp);
        check_prepared(&cfg, &S, &D, NULL, NULL, &P);
        /* the loss on the GPU's own adv and select: the CPU's vppo_policy_loss and float64 */
        CHECK_STATUS(VPPO_OK, vppo_policy_loss(&cfg.loss, &S.h, HF(D.logp), HF(D.logp_old), HF(*ref), GF(P.adv),
                                               G_(uint8_t, P.select), NULL, HF(chain), &ochain));
        R = ref_policy_loss(&cfg.loss, &S.h, lp, lp, HF(D.logp_old), HF(*ref), GF(P.adv), G_(uint8_t, P.select), NULL);
        check_loss_out(&ochain, &og, &R);
        memcpy(dlogp.h, chain.h, dlogp.bytes);   /* compare dlogp with that CPU gradient */
        check_dlogp(&S, &dlogp);
        CHECK_EQ_INT(oc.n_valid, og.n_valid);
        mprepared_free(&P);
    }
    free(lp);
    mirror_free(&dlogp);
    mirror_free(&chain);
    token_data_free(&D);
    mseqs_free(&S);
}

/* ================================================================ asynchronous mode
   The _async form of each call runs with its own workspace and, for scalar results,
   device homes; its status is what it returns, or, when it enqueued, what it wrote to its
   status word. */

/* The device homes of an asynchronous call's scalar results, and its status word. */
typedef struct dev_scalars {
    vppo_topk_info info, topk;
    vppo_loss_out loss;
    vppo_tas_stats stats, global;
    int32_t status;
} dev_scalars;

typedef struct async_env { vppo_cuda_launch L; dev_scalars *sc; } async_env;

#define STATUS_UNWRITTEN ((int32_t)0x5a5a5a5a)   /* every byte 0x5a: not a vppo_status */

static async_env async_env_new(int64_t n_seqs, cudaStream_t st)
{
    async_env E;
    E.L.stream = (void *)st;
    E.L.workspace_bytes = vppo_cuda_workspace_size(n_seqs);
    E.L.workspace = dev_alloc(E.L.workspace_bytes, 0x5a);
    E.sc = (dev_scalars *)dev_alloc(sizeof(dev_scalars), 0x5a);
    E.L.status = &E.sc->status;
    return E;
}

static void async_env_free(async_env *E)
{
    CUDA_MUST(cudaFree(E->L.workspace));
    CUDA_MUST(cudaFree(E->sc));
}

/* The status word, once the stream has run (then set back to STATUS_UNWRITTEN). */
static vppo_status async_env_status(const async_env *E)
{
    int32_t word;
    CUDA_MUST(cudaStreamSynchronize((cudaStream_t)E->L.stream));
    dev_download(&word, E->L.status, sizeof word);
    CUDA_MUST(cudaMemset(E->L.status, 0x5a, sizeof word));
    return (vppo_status)word;
}

/* `global` (host, or NULL) copied to E's device home. */
static const vppo_tas_stats *async_env_global(const async_env *E, const vppo_tas_stats *global)
{
    if (!global) return NULL;
    dev_upload_to(&E->sc->global, global, sizeof *global);
    return &E->sc->global;
}

/* The synchronous form returned sync_st; async_call(E) runs the asynchronous form with the
   same arguments. Both modes must give the same status; when the asynchronous form
   returns an error at once, it has launched nothing and left the status word alone. */
template <class Async>
static vppo_status modes_agree(vppo_status sync_st, Async async_call, const char *call, int line)
{
    async_env E = async_env_new(64, NULL);
#ifdef VPPO_CUDA_EMULATE
    const long launches = vppo_emu_launch_count();
#endif
    vppo_status st = async_call(&E);
    const vppo_status word = async_env_status(&E);
    if (st == VPPO_OK) {
        st = word;
    } else {
        CHECK_MSG((int32_t)word == STATUS_UNWRITTEN, "line %d: %s: the asynchronous form returned %s and wrote the "
                  "status word", line, call, vppo_status_string(st));
#ifdef VPPO_CUDA_EMULATE
        CHECK_MSG(vppo_emu_launch_count() == launches, "line %d: %s: the asynchronous form returned %s after "
                  "launching %ld kernels", line, call, vppo_status_string(st), vppo_emu_launch_count() - launches);
#endif
    }
    CHECK_MSG(st == sync_st, "line %d: %s: asynchronous %s, synchronous %s", line, call, vppo_status_string(st),
              vppo_status_string(sync_st));
    async_env_free(&E);
    return sync_st;
}
/* The synchronous call's status, after checking that the asynchronous one agrees; in
   async_call, LAUNCH_ is the launch struct and SC_(field) a device home. */
#define BOTH_MODES(sync_call, async_call) \
    modes_agree((sync_call), [&](const async_env *E_) { return (async_call); }, #sync_call, __LINE__)
#define LAUNCH_ (&E_->L)
#define SC_(field) (&E_->sc->field)

/* ================================================================ bad inputs
   Each case changes one thing of a valid call; the CPU function must return the literal
   status expected, and the CUDA function the same. Device data (offsets, values, ids) is
   changed on the device too. */

/* 3 sequences from position 1 (the second empty), mask holes at 2 and 7: valid positions
   1, 3, 4, 5, 6, 8 of 11 (the tail 9, 10). */
static mseqs bad_layout(void)
{
    static const int64_t off[4] = { 1, 4, 4, 9 };
    static const uint8_t mask[9] = { 0, 1, 0, 1, 1, 1, 1, 0, 1 };
    return mseqs_make(3, off, mask, 2);
}

/* Calls with the mseqs (or vppo_seqs pair) and mirrors of the arguments. */
#define BOTH_DEP_SAMPLED(e, sh, sd, lp, la, est, out) CHECK_BOTH(e, \
    vppo_dependency_sampled(sh, HF(lp), HF(la), est, HF(out)), \
    BOTH_MODES(vppo_cuda_dependency_sampled(sd, DF(lp), DF(la), est, DF(out), NULL), \
               vppo_cuda_dependency_sampled_async(sd, DF(lp), DF(la), est, DF(out), LAUNCH_)))

/* Bad sequence descriptions, shared by every per-token function: call(sh, sd) with
   NULL, no offsets, a negative count, offsets[0] < 0 and decreasing offsets (on the device). */
#define BAD_SEQS_CASES(S, call) do { \
    vppo_seqs sh_ = (S).h, sd_ = (S).d; int64_t old_; \
    call(VPPO_ERR_NULL, (vppo_seqs *)NULL, (vppo_seqs *)NULL); \
    sh_.offsets = sd_.offsets = NULL; call(VPPO_ERR_NULL, &sh_, &sd_); \
    sh_ = (S).h; sd_ = (S).d; sh_.n_seqs = sd_.n_seqs = -1; call(VPPO_ERR_SIZE, &sh_, &sd_); \
    old_ = poke_i64(&(S).off, 0, -1); call(VPPO_ERR_SIZE, &(S).h, &(S).d); poke_i64(&(S).off, 0, old_); \
    old_ = poke_i64(&(S).off, 2, 3); call(VPPO_ERR_SIZE, &(S).h, &(S).d); poke_i64(&(S).off, 2, old_); \
    call(VPPO_OK, &(S).h, &(S).d); } while (0)

void cuda_dependency_sampled_rejects_bad_input(void)
{
    rng r = rng_make(9101);
    mseqs S = bad_layout();
    token_data D = token_data_make(&r, &S);
    mirror dep = mirror_new((size_t)S.n * 4, 0), none = mirror_null();
    float old;
#define CALL(e, sh, sd) BOTH_DEP_SAMPLED(e, sh, sd, D.logp_old, D.logp_aug, VPPO_EST_K3, dep)
    BAD_SEQS_CASES(S, CALL);
#undef CALL
    BOTH_DEP_SAMPLED(VPPO_ERR_NULL, &S.h, &S.d, none, D.logp_aug, VPPO_EST_K3, dep);
    BOTH_DEP_SAMPLED(VPPO_ERR_NULL, &S.h, &S.d, D.logp_old, none, VPPO_EST_K3, dep);
    BOTH_DEP_SAMPLED(VPPO_ERR_NULL, &S.h, &S.d, D.logp_old, D.logp_aug, VPPO_EST_K3, none);
    /* bad enums: values beyond the enumerators but inside the enum's range of values (in
       C++, which this file is, any other value is undefined behaviour; hence no bad
       vppo_pg_kind, vppo_agg or vppo_tas_mode, whose ranges hold no spare value) */
    BOTH_DEP_SAMPLED(VPPO_ERR_PARAM, &S.h, &S.d, D.logp_old, D.logp_aug, (vppo_estimator)5, dep);
    BOTH_DEP_SAMPLED(VPPO_ERR_PARAM, &S.h, &S.d, D.logp_old, D.logp_aug, (vppo_estimator)7, dep);
    /* values: NaN or +inf at a valid position, both -inf (d = NaN); NaN elsewhere is ignored */
    old = poke_f(&D.logp_old, 3, NAN);
    BOTH_DEP_SAMPLED(VPPO_ERR_NONFINITE, &S.h, &S.d, D.logp_old, D.logp_aug, VPPO_EST_K3, dep);
    poke_f(&D.logp_old, 3, old);
    old = poke_f(&D.logp_aug, 8, INFINITY);
    BOTH_DEP_SAMPLED(VPPO_ERR_NONFINITE, &S.h, &S.d, D.logp_old, D.logp_aug, VPPO_EST_K1, dep);
    poke_f(&D.logp_aug, 8, old);
    poke_f(&D.logp_old, 5, -INFINITY);
    old = poke_f(&D.logp_aug, 5, -INFINITY);
    BOTH_DEP_SAMPLED(VPPO_ERR_NONFINITE, &S.h, &S.d, D.logp_old, D.logp_aug, VPPO_EST_K2, dep);
    poke_f(&D.logp_aug, 5, old);
    BOTH_DEP_SAMPLED(VPPO_OK, &S.h, &S.d, D.logp_old, D.logp_aug, VPPO_EST_K2, dep);   /* one -inf is fine */
    poke_f(&D.logp_old, 2, NAN);   /* invalid (masked) */
    poke_f(&D.logp_aug, 0, NAN);   /* before offsets[0] */
    poke_f(&D.logp_old, 9, NAN);   /* after offsets[B] */
    BOTH_DEP_SAMPLED(VPPO_OK, &S.h, &S.d, D.logp_old, D.logp_aug, VPPO_EST_K3, dep);
    mirror_free(&dep);
    token_data_free(&D);
    mseqs_free(&S);
}

/* A small logits fixture: X (3 x 5, stride 6, lead 1, F32; NaN padding), a good partner G
   of the same shape, ids, g, h, lse, entropy, an [n] output and a gradient (stride 8). */
typedef struct logits_fixture { mlogits X, G; mirror ids, g, h, lse, ent, vec, out; } logits_fixture;

static logits_fixture logits_fixture_make(rng *r)
{
    logits_fixture F;
    int64_t i;
    F.X = mlogits_new(VPPO_F32, 3, 5, 6, 1, 1.0f);
    F.G = mlogits_new(VPPO_BF16, 3, 5, 5, 0, 0.8f);
    mlogits_fill(&F.X, &F.G, r);
    F.ids = ids_make(r, &F.X);
    F.g = mirror_new(3 * 4, 0); F.h = mirror_new(3 * 4, 0); F.lse = mirror_new(3 * 4, 0); F.ent = mirror_new(3 * 4, 0);
    for (i = 0; i < 3; ++i) { HF(F.g)[i] = (float)rng_normal(r); HF(F.h)[i] = (float)rng_normal(r); }
    vppo_logprobs(&F.X.h, NULL, NULL, HF(F.lse), HF(F.ent));
    mirror_push(&F.g); mirror_push(&F.h); mirror_push(&F.lse); mirror_push(&F.ent);
    F.vec = mirror_new(3 * 4, 0);
    F.out = mirror_new(3 * 8 * 4, 0);
    return F;
}

static void logits_fixture_free(logits_fixture *F)
{
    mirror_free(&F->X.m); mirror_free(&F->G.m); mirror_free(&F->ids); mirror_free(&F->g); mirror_free(&F->h);
    mirror_free(&F->lse); mirror_free(&F->ent); mirror_free(&F->vec); mirror_free(&F->out);
}

/* Every logits function on the matrix (xh, xd) (the host and device views of one matrix):
   logprobs, dependency with it on either side, backward; each returns e on both paths. */
static void logits_all_expect(vppo_status e, const vppo_logits *xh, const vppo_logits *xd, logits_fixture *F)
{
    vppo_grad_out oh, od;
    oh.data = F->out.h; oh.dtype = VPPO_F32; oh.row_stride = 8;
    od = oh;
    od.data = F->out.d;
    CHECK_BOTH(e, vppo_logprobs(xh, H_(int32_t, F->ids), HF(F->vec), HF(F->lse), NULL),
               BOTH_MODES(vppo_cuda_logprobs(xd, D_(int32_t, F->ids), DF(F->vec), DF(F->lse), NULL, NULL),
                          vppo_cuda_logprobs_async(xd, D_(int32_t, F->ids), DF(F->vec), DF(F->lse), NULL, LAUNCH_)));
    CHECK_BOTH(e, vppo_dependency_logits(xh, &F->G.h, VPPO_DIV_KL, HF(F->vec)),
               BOTH_MODES(vppo_cuda_dependency_logits(xd, &F->G.d, VPPO_DIV_KL, DF(F->vec), NULL),
                          vppo_cuda_dependency_logits_async(xd, &F->G.d, VPPO_DIV_KL, DF(F->vec), LAUNCH_)));
    CHECK_BOTH(e, vppo_dependency_logits(&F->G.h, xh, VPPO_DIV_JS, HF(F->vec)),
               BOTH_MODES(vppo_cuda_dependency_logits(&F->G.d, xd, VPPO_DIV_JS, DF(F->vec), NULL),
                          vppo_cuda_dependency_logits_async(&F->G.d, xd, VPPO_DIV_JS, DF(F->vec), LAUNCH_)));
    CHECK_BOTH(e, vppo_logprobs_backward(xh, H_(int32_t, F->ids), NULL, NULL, HF(F->g), HF(F->h), &oh),
               BOTH_MODES(vppo_cuda_logprobs_backward(xd, D_(int32_t, F->ids), NULL, NULL, DF(F->g), DF(F->h), &od, NULL),
                          vppo_cuda_logprobs_backward_async(xd, D_(int32_t, F->ids), NULL, NULL, DF(F->g), DF(F->h), &od,
                                                            LAUNCH_)));
}

void cuda_logits_functions_reject_bad_matrices(void)
{
    rng r = rng_make(9201);
    logits_fixture F = logits_fixture_make(&r);
    vppo_logits xh = F.X.h, xd = F.X.d;
    const float temps[4] = { 0.0f, -1.0f, NAN, INFINITY };
    float old;
    int k;
    int64_t j;
    logits_all_expect(VPPO_OK, &xh, &xd, &F);   /* NaN in the padding (stride 6 > 5) is never read */
    logits_all_expect(VPPO_ERR_NULL, NULL, NULL, &F);
    xh.data = xd.data = NULL; logits_all_expect(VPPO_ERR_NULL, &xh, &xd, &F); xh = F.X.h; xd = F.X.d;
    xh.dtype = xd.dtype = (vppo_dtype)3; logits_all_expect(VPPO_ERR_PARAM, &xh, &xd, &F); xh = F.X.h; xd = F.X.d;
    xh.n_rows = xd.n_rows = -1; logits_all_expect(VPPO_ERR_SIZE, &xh, &xd, &F); xh = F.X.h; xd = F.X.d;
    xh.vocab = xd.vocab = 0; logits_all_expect(VPPO_ERR_SIZE, &xh, &xd, &F); xh = F.X.h; xd = F.X.d;
    xh.row_stride = xd.row_stride = 4; logits_all_expect(VPPO_ERR_SIZE, &xh, &xd, &F); xh = F.X.h; xd = F.X.d;
    for (k = 0; k < 4; ++k) {
        xh.temperature = xd.temperature = temps[k];
        logits_all_expect(VPPO_ERR_PARAM, &xh, &xd, &F);
    }
    xh = F.X.h; xd = F.X.d;
    /* data: NaN, +inf, a row of only -inf (entries are F32, row r at 1 + 6r) */
    old = poke_f(&F.X.m, 1 + 6 + 2, NAN); logits_all_expect(VPPO_ERR_NONFINITE, &xh, &xd, &F);
    poke_f(&F.X.m, 1 + 6 + 2, INFINITY); logits_all_expect(VPPO_ERR_NONFINITE, &xh, &xd, &F);
    poke_f(&F.X.m, 1 + 6 + 2, old);
    for (j = 0; j < 5; ++j) poke_f(&F.X.m, 1 + 12 + j, -INFINITY);
    logits_all_expect(VPPO_ERR_PARAM, &xh, &xd, &F);
    poke_f(&F.X.m, 1 + 12 + 3, 0.5f);   /* one finite entry left: fine */
    logits_all_expect(VPPO_OK, &xh, &xd, &F);
    logits_fixture_free(&F);
}

void cuda_logits_functions_reject_bad_arguments(void)
{
    rng r = rng_make(9202);
    logits_fixture F = logits_fixture_make(&r);
    const mlogits *X = &F.X, *G = &F.G;
    vppo_logits gh = G->h, gd = G->d;
    vppo_grad_out oh, od;
    int32_t old;
    /* dependency_logits */
    CHECK_BOTH(VPPO_ERR_NULL, vppo_dependency_logits(&X->h, &G->h, VPPO_DIV_KL, NULL),
               BOTH_MODES(vppo_cuda_dependency_logits(&X->d, &G->d, VPPO_DIV_KL, NULL, NULL),
                          vppo_cuda_dependency_logits_async(&X->d, &G->d, VPPO_DIV_KL, NULL, LAUNCH_)));
    CHECK_BOTH(VPPO_ERR_PARAM, vppo_dependency_logits(&X->h, &G->h, (vppo_divergence)3, HF(F.vec)),
               BOTH_MODES(vppo_cuda_dependency_logits(&X->d, &G->d, (vppo_divergence)3, DF(F.vec), NULL),
                          vppo_cuda_dependency_logits_async(&X->d, &G->d, (vppo_divergence)3, DF(F.vec), LAUNCH_)));
    gh.n_rows = gd.n_rows = 2;
    CHECK_BOTH(VPPO_ERR_SIZE, vppo_dependency_logits(&X->h, &gh, VPPO_DIV_KL, HF(F.vec)),
               BOTH_MODES(vppo_cuda_dependency_logits(&X->d, &gd, VPPO_DIV_KL, DF(F.vec), NULL),
                          vppo_cuda_dependency_logits_async(&X->d, &gd, VPPO_DIV_KL, DF(F.vec), LAUNCH_)));
    gh = G->h; gd = G->d; gh.vocab = gd.vocab = 4;
    CHECK_BOTH(VPPO_ERR_SIZE, vppo_dependency_logits(&X->h, &gh, VPPO_DIV_JS, HF(F.vec)),
               BOTH_MODES(vppo_cuda_dependency_logits(&X->d, &gd, VPPO_DIV_JS, DF(F.vec), NULL),
                          vppo_cuda_dependency_logits_async(&X->d, &gd, VPPO_DIV_JS, DF(F.vec), LAUNCH_)));
    /* logprobs: logp needs ids; ids in [0, vocab) (device memory), unread without logp */
    CHECK_BOTH(VPPO_ERR_NULL, vppo_logprobs(&X->h, NULL, HF(F.vec), NULL, NULL),
               BOTH_MODES(vppo_cuda_logprobs(&X->d, NULL, DF(F.vec), NULL, NULL, NULL),
                          vppo_cuda_logprobs_async(&X->d, NULL, DF(F.vec), NULL, NULL, LAUNCH_)));
    old = poke_i32(&F.ids, 1, -1);
    CHECK_BOTH(VPPO_ERR_INDEX, vppo_logprobs(&X->h, H_(int32_t, F.ids), HF(F.vec), NULL, NULL),
               BOTH_MODES(vppo_cuda_logprobs(&X->d, D_(int32_t, F.ids), DF(F.vec), NULL, NULL, NULL),
                          vppo_cuda_logprobs_async(&X->d, D_(int32_t, F.ids), DF(F.vec), NULL, NULL, LAUNCH_)));
    poke_i32(&F.ids, 2, 5);
    poke_i32(&F.ids, 1, old);
    CHECK_BOTH(VPPO_ERR_INDEX, vppo_logprobs(&X->h, H_(int32_t, F.ids), HF(F.vec), NULL, NULL),
               BOTH_MODES(vppo_cuda_logprobs(&X->d, D_(int32_t, F.ids), DF(F.vec), NULL, NULL, NULL),
                          vppo_cuda_logprobs_async(&X->d, D_(int32_t, F.ids), DF(F.vec), NULL, NULL, LAUNCH_)));
    CHECK_BOTH(VPPO_OK, vppo_logprobs(&X->h, H_(int32_t, F.ids), NULL, HF(F.vec), NULL),
               BOTH_MODES(vppo_cuda_logprobs(&X->d, D_(int32_t, F.ids), NULL, DF(F.vec), NULL, NULL),
                          vppo_cuda_logprobs_async(&X->d, D_(int32_t, F.ids), NULL, DF(F.vec), NULL, LAUNCH_)));
    /* backward, ids still bad at row 2: used only with dlogp */
    oh.data = F.out.h; oh.dtype = VPPO_F32; oh.row_stride = 8;
    od = oh; od.data = F.out.d;
    CHECK_BOTH(VPPO_ERR_INDEX, vppo_logprobs_backward(&X->h, H_(int32_t, F.ids), NULL, NULL, HF(F.g), NULL, &oh),
               BOTH_MODES(vppo_cuda_logprobs_backward(&X->d, D_(int32_t, F.ids), NULL, NULL, DF(F.g), NULL, &od, NULL),
                          vppo_cuda_logprobs_backward_async(&X->d, D_(int32_t, F.ids), NULL, NULL, DF(F.g), NULL, &od, LAUNCH_)));
    CHECK_BOTH(VPPO_OK, vppo_logprobs_backward(&X->h, H_(int32_t, F.ids), HF(F.lse), HF(F.ent), NULL, HF(F.h), &oh),
               BOTH_MODES(vppo_cuda_logprobs_backward(&X->d, D_(int32_t, F.ids), DF(F.lse), DF(F.ent), NULL, DF(F.h), &od, NULL),
                          vppo_cuda_logprobs_backward_async(&X->d, D_(int32_t, F.ids), DF(F.lse), DF(F.ent), NULL, DF(F.h), &od, LAUNCH_)));
    poke_i32(&F.ids, 2, 0);
#define BACKWARD(e, ids_, lse_, ent_, g_, h_, out_h, out_d) CHECK_BOTH(e, \
        vppo_logprobs_backward(&X->h, H_(int32_t, ids_), HF(lse_), HF(ent_), HF(g_), HF(h_), out_h), \
        BOTH_MODES(vppo_cuda_logprobs_backward(&X->d, D_(int32_t, ids_), DF(lse_), DF(ent_), DF(g_), DF(h_), out_d, NULL), \
                   vppo_cuda_logprobs_backward_async(&X->d, D_(int32_t, ids_), DF(lse_), DF(ent_), DF(g_), DF(h_), out_d, \
                                                     LAUNCH_)))
    {
        const mirror none = mirror_null();
        vppo_grad_out bh = oh, bd = od;
        float o;
        BACKWARD(VPPO_OK, F.ids, F.lse, F.ent, F.g, F.h, &oh, &od);
        BACKWARD(VPPO_ERR_NULL, F.ids, F.lse, F.ent, F.g, F.h, (vppo_grad_out *)NULL, (vppo_grad_out *)NULL);
        bh.data = bd.data = NULL;
        BACKWARD(VPPO_ERR_NULL, F.ids, F.lse, F.ent, F.g, F.h, &bh, &bd);
        BACKWARD(VPPO_ERR_NULL, none, F.lse, F.ent, F.g, F.h, &oh, &od);   /* dlogp without ids */
        bh = oh; bd = od; bh.dtype = bd.dtype = VPPO_F16;
        BACKWARD(VPPO_ERR_UNSUPPORTED, F.ids, F.lse, F.ent, F.g, F.h, &bh, &bd);
        bh.dtype = bd.dtype = (vppo_dtype)3;
        BACKWARD(VPPO_ERR_PARAM, F.ids, F.lse, F.ent, F.g, F.h, &bh, &bd);
        bh = oh; bd = od; bh.row_stride = bd.row_stride = 4;
        BACKWARD(VPPO_ERR_SIZE, F.ids, F.lse, F.ent, F.g, F.h, &bh, &bd);
        /* overlap that is not exactly in place: one element off, or a BF16 output on it */
        bh = oh; bd = od;
        bh.data = (float *)X->h.data + 1; bd.data = (float *)X->d.data + 1; bh.row_stride = bd.row_stride = 6;
        BACKWARD(VPPO_ERR_PARAM, F.ids, F.lse, F.ent, F.g, F.h, &bh, &bd);
        bh.data = (void *)X->h.data; bd.data = (void *)X->d.data; bh.dtype = bd.dtype = VPPO_BF16;
        BACKWARD(VPPO_ERR_PARAM, F.ids, F.lse, F.ent, F.g, F.h, &bh, &bd);
        bh.dtype = bd.dtype = VPPO_F32; bh.row_stride = bd.row_stride = 7;
        BACKWARD(VPPO_ERR_PARAM, F.ids, F.lse, F.ent, F.g, F.h, &bh, &bd);
        /* NaN in any per-row input */
        o = poke_f(&F.lse, 1, NAN); BACKWARD(VPPO_ERR_NONFINITE, F.ids, F.lse, F.ent, F.g, F.h, &oh, &od); poke_f(&F.lse, 1, o);
        o = poke_f(&F.ent, 2, NAN); BACKWARD(VPPO_ERR_NONFINITE, F.ids, F.lse, F.ent, F.g, F.h, &oh, &od); poke_f(&F.ent, 2, o);
        o = poke_f(&F.g, 0, NAN); BACKWARD(VPPO_ERR_NONFINITE, F.ids, F.lse, F.ent, F.g, F.h, &oh, &od); poke_f(&F.g, 0, o);
        o = poke_f(&F.h, 1, INFINITY); BACKWARD(VPPO_ERR_NONFINITE, F.ids, F.lse, F.ent, F.g, F.h, &oh, &od); poke_f(&F.h, 1, o);
        BACKWARD(VPPO_OK, none, none, none, none, none, &oh, &od);   /* nothing to propagate: zeros */
    }
#undef BACKWARD
    logits_fixture_free(&F);
}

/* Device pointers not aligned to their element type: VPPO_ERR_PARAM from the host, with
   nothing launched (a GPU would fault: cudaErrorMisalignedAddress destroys the context).
   The buffer is zeros: no kernel may run to read it. */
void cuda_misaligned_device_pointers_are_param_errors(void)
{
    const int64_t B = 2, V = 8;
    char *d = (char *)dev_alloc(1 << 14, 0);
    float *f = (float *)(d + 1024), *fm = (float *)(d + 2048 + 2), *fm1 = (float *)(d + 3072 + 1);
    int32_t *ids = (int32_t *)(d + 4096), *idsm = (int32_t *)(d + 4096 + 512 + 2);
    int64_t *off = (int64_t *)(d + 6144), *offm = (int64_t *)(d + 6144 + 512 + 4);
    uint8_t *u8 = (uint8_t *)(d + 8192 + 1);
    vppo_seqs s = { B, off, NULL }, sm = { B, offm, NULL };
    vppo_logits x, xm, xb;
    vppo_grad_out o, om, ob;
    vppo_loss_config lc = vppo_loss_config_default();
    vppo_rc_config rc = vppo_rc_config_default();
    vppo_config cfg = vppo_config_default();
    vppo_prepared pr, prm;
    int64_t host_off[3] = { 0, 4, 8 };
    dev_upload_to(off, host_off, sizeof host_off);
    x.data = f; x.dtype = VPPO_F32; x.n_rows = 2; x.vocab = V; x.row_stride = V; x.temperature = 1.0f;
    xm = x; xm.data = fm;                                 /* f32 at 2 mod 4 */
    xb = x; xb.dtype = VPPO_BF16; xb.data = fm1;          /* bf16 at 1 mod 2 */
    o.data = f; o.dtype = VPPO_F32; o.row_stride = V;
    om = o; om.data = fm;
    ob = o; ob.dtype = VPPO_BF16; ob.data = fm1;
    pr.dep = f; pr.traj_dep = f + 64; pr.count = (int64_t *)(d + 10240); pr.scale = f + 128; pr.adv = f + 192;
    pr.select = u8;
    prm = pr; prm.count = (int64_t *)(d + 10240 + 4);
#define PARAM(sync_call, async_call) CHECK_STATUS(VPPO_ERR_PARAM, BOTH_MODES(sync_call, async_call))
    /* logits rows: data, ids, each output */
    PARAM(vppo_cuda_logprobs(&xm, ids, f, NULL, NULL, NULL), vppo_cuda_logprobs_async(&xm, ids, f, NULL, NULL, LAUNCH_));
    PARAM(vppo_cuda_logprobs(&xb, ids, f, NULL, NULL, NULL), vppo_cuda_logprobs_async(&xb, ids, f, NULL, NULL, LAUNCH_));
    PARAM(vppo_cuda_logprobs(&x, idsm, f, NULL, NULL, NULL), vppo_cuda_logprobs_async(&x, idsm, f, NULL, NULL, LAUNCH_));
    PARAM(vppo_cuda_logprobs(&x, ids, fm, NULL, NULL, NULL), vppo_cuda_logprobs_async(&x, ids, fm, NULL, NULL, LAUNCH_));
    PARAM(vppo_cuda_logprobs(&x, NULL, NULL, fm1, NULL, NULL), vppo_cuda_logprobs_async(&x, NULL, NULL, fm1, NULL, LAUNCH_));
    PARAM(vppo_cuda_logprobs(&x, NULL, NULL, NULL, fm, NULL), vppo_cuda_logprobs_async(&x, NULL, NULL, NULL, fm, LAUNCH_));
    PARAM(vppo_cuda_dependency_logits(&x, &xm, VPPO_DIV_KL, f, NULL),
          vppo_cuda_dependency_logits_async(&x, &xm, VPPO_DIV_KL, f, LAUNCH_));
    PARAM(vppo_cuda_dependency_logits(&x, &x, VPPO_DIV_JS, fm, NULL),
          vppo_cuda_dependency_logits_async(&x, &x, VPPO_DIV_JS, fm, LAUNCH_));
    PARAM(vppo_cuda_logprobs_backward(&x, ids, f, f, f, f, &om, NULL),
          vppo_cuda_logprobs_backward_async(&x, ids, f, f, f, f, &om, LAUNCH_));
    PARAM(vppo_cuda_logprobs_backward(&x, ids, f, f, f, f, &ob, NULL),
          vppo_cuda_logprobs_backward_async(&x, ids, f, f, f, f, &ob, LAUNCH_));
    PARAM(vppo_cuda_logprobs_backward(&x, ids, fm, f, f, f, &o, NULL),
          vppo_cuda_logprobs_backward_async(&x, ids, fm, f, f, f, &o, LAUNCH_));
    PARAM(vppo_cuda_logprobs_backward(&x, ids, f, f, f, fm1, &o, NULL),
          vppo_cuda_logprobs_backward_async(&x, ids, f, f, f, fm1, &o, LAUNCH_));
    PARAM(vppo_cuda_logprobs_backward(&xm, ids, f, f, f, f, &o, NULL),
          vppo_cuda_logprobs_backward_async(&xm, ids, f, f, f, f, &o, LAUNCH_));
    /* per token and per sequence */
    PARAM(vppo_cuda_dependency_sampled(&sm, f, f, VPPO_EST_K3, f, NULL),
          vppo_cuda_dependency_sampled_async(&sm, f, f, VPPO_EST_K3, f, LAUNCH_));
    PARAM(vppo_cuda_dependency_sampled(&s, f, f, VPPO_EST_K3, fm, NULL),
          vppo_cuda_dependency_sampled_async(&s, f, f, VPPO_EST_K3, fm, LAUNCH_));
    PARAM(vppo_cuda_perturb_patch_rows(fm, 2, 4, 4, 0.5f, NULL, 1, NULL),
          vppo_cuda_perturb_patch_rows_async(fm, 2, 4, 4, 0.5f, NULL, 1, LAUNCH_));
    PARAM(vppo_cuda_perturb_patch_rows(f, 2, 4, 4, 0.5f, fm1, 1, NULL),
          vppo_cuda_perturb_patch_rows_async(f, 2, 4, 4, 0.5f, fm1, 1, LAUNCH_));
    PARAM(vppo_cuda_topk_mask(&s, fm, 0.5, u8, NULL, NULL), vppo_cuda_topk_mask_async(&s, fm, 0.5, u8, NULL, LAUNCH_));
    PARAM(vppo_cuda_soft_mask(&s, f, 0.5, fm1, NULL), vppo_cuda_soft_mask_async(&s, f, 0.5, fm1, LAUNCH_));
    {
        vppo_loss_out lo;
        PARAM(vppo_cuda_policy_loss(&lc, &s, f, f, NULL, f, NULL, NULL, fm, &lo, NULL),
              vppo_cuda_policy_loss_async(&lc, &s, f, f, NULL, f, NULL, NULL, fm, SC_(loss), LAUNCH_));
        PARAM(vppo_cuda_policy_loss(&lc, &sm, f, f, NULL, f, NULL, NULL, f, &lo, NULL),
              vppo_cuda_policy_loss_async(&lc, &sm, f, f, NULL, f, NULL, NULL, f, SC_(loss), LAUNCH_));
        PARAM(vppo_cuda_step(&cfg, &s, f, f, f, NULL, f, &prm, f, &lo, NULL),
              vppo_cuda_step_async(&cfg, &s, f, f, f, NULL, f, &prm, f, SC_(loss), SC_(stats), SC_(topk), LAUNCH_));
        PARAM(vppo_cuda_step(&cfg, &s, f, f, fm, NULL, f, &pr, f, &lo, NULL),
              vppo_cuda_step_async(&cfg, &s, f, f, fm, NULL, f, &pr, f, SC_(loss), SC_(stats), SC_(topk), LAUNCH_));
    }
    {
        vppo_rc_out ro;
        PARAM(vppo_cuda_rollout_correction(&rc, &s, f, fm, NULL, NULL, &ro, NULL),
              vppo_cuda_rollout_correction_async(&rc, &s, f, fm, NULL, NULL, (vppo_rc_out *)SC_(loss), LAUNCH_));
    }
    /* the asynchronous status word */
    {
        async_env E = async_env_new(0, NULL);
        vppo_cuda_launch L = E.L;
        L.status = (int32_t *)((char *)L.status + 2);
        CHECK_STATUS(VPPO_ERR_PARAM, vppo_cuda_logprobs_async(&x, NULL, NULL, f, NULL, &L));
        async_env_free(&E);
    }
#undef PARAM
    CUDA_MUST(cudaFree(d));
}

void cuda_patch_rows_rejects_bad_input(void)
{
    mirror rows = mirror_new(4 * 4 * 4, 0), fill = mirror_new(3 * 4, 0), none = mirror_null();
#define ROWS(e, rows_, n, len, stride, prob, fill_) CHECK_BOTH(e, \
        vppo_perturb_patch_rows(HF(rows_), n, len, stride, prob, HF(fill_), 7), \
        BOTH_MODES(vppo_cuda_perturb_patch_rows(DF(rows_), n, len, stride, prob, DF(fill_), 7, NULL), \
                   vppo_cuda_perturb_patch_rows_async(DF(rows_), n, len, stride, prob, DF(fill_), 7, LAUNCH_)))
    mirror_push(&fill);
    ROWS(VPPO_OK, rows, 4, 3, 4, 0.5f, fill);
    ROWS(VPPO_ERR_NULL, none, 4, 3, 4, 0.5f, fill);
    ROWS(VPPO_ERR_SIZE, rows, -1, 3, 4, 0.5f, fill);
    ROWS(VPPO_ERR_SIZE, rows, 4, -1, 4, 0.5f, fill);
    ROWS(VPPO_ERR_SIZE, rows, 4, 3, 2, 0.5f, fill);
    ROWS(VPPO_ERR_SIZE, rows, INT64_MAX / 2, 3, 4, 0.5f, fill);   /* would overflow */
    ROWS(VPPO_ERR_PARAM, rows, 4, 3, 4, -0.5f, fill);
    ROWS(VPPO_ERR_PARAM, rows, 4, 3, 4, 1.5f, fill);
    ROWS(VPPO_ERR_PARAM, rows, 4, 3, 4, NAN, fill);
    poke_f(&fill, 1, NAN);
    ROWS(VPPO_ERR_NONFINITE, rows, 4, 3, 4, 0.5f, fill);
    poke_f(&fill, 1, -INFINITY);
    ROWS(VPPO_ERR_NONFINITE, rows, 4, 3, 4, 0.5f, fill);
    ROWS(VPPO_OK, rows, 4, 3, 4, 0.5f, none);
#undef ROWS
    mirror_free(&rows);
    mirror_free(&fill);
}

void cuda_masks_reject_bad_input(void)
{
    rng r = rng_make(9401);
    mseqs S = bad_layout();
    token_data D = token_data_make(&r, &S);
    mirror sel = mirror_new((size_t)S.n, 0), w = mirror_new((size_t)S.n * 4, 0), none = mirror_null();
    const double ratios[3] = { -0.1, 1.1, NAN };
    int k;
#define TOPK(e, sh, sd, score, ratio, out) CHECK_BOTH(e, \
        vppo_topk_mask(sh, HF(score), ratio, H_(uint8_t, out), NULL), \
        BOTH_MODES(vppo_cuda_topk_mask(sd, DF(score), ratio, D_(uint8_t, out), NULL, NULL), \
                   vppo_cuda_topk_mask_async(sd, DF(score), ratio, D_(uint8_t, out), SC_(info), LAUNCH_)))
#define SOFT(e, sh, sd, score, ratio, out) CHECK_BOTH(e, \
        vppo_soft_mask(sh, HF(score), ratio, HF(out)), \
        BOTH_MODES(vppo_cuda_soft_mask(sd, DF(score), ratio, DF(out), NULL), \
                   vppo_cuda_soft_mask_async(sd, DF(score), ratio, DF(out), LAUNCH_)))
#define CALL(e, sh, sd) do { TOPK(e, sh, sd, D.score, 0.4, sel); SOFT(e, sh, sd, D.score, 0.4, w); } while (0)
    BAD_SEQS_CASES(S, CALL);
    TOPK(VPPO_ERR_NULL, &S.h, &S.d, none, 0.4, sel);
    TOPK(VPPO_ERR_NULL, &S.h, &S.d, D.score, 0.4, none);
    SOFT(VPPO_ERR_NULL, &S.h, &S.d, none, 0.4, w);
    SOFT(VPPO_ERR_NULL, &S.h, &S.d, D.score, 0.4, none);
    for (k = 0; k < 3; ++k) {
        TOPK(VPPO_ERR_PARAM, &S.h, &S.d, D.score, ratios[k], sel);
        SOFT(VPPO_ERR_PARAM, &S.h, &S.d, D.score, ratios[k], w);
    }
    /* NaN at a valid position; +-inf are ordered by top-k but refused by the soft mask */
    {
        const float old = poke_f(&D.score, 4, NAN);
        CALL(VPPO_ERR_NONFINITE, &S.h, &S.d);
        poke_f(&D.score, 4, INFINITY);
        TOPK(VPPO_OK, &S.h, &S.d, D.score, 0.4, sel);
        SOFT(VPPO_ERR_NONFINITE, &S.h, &S.d, D.score, 0.4, w);
        poke_f(&D.score, 4, -INFINITY);
        TOPK(VPPO_OK, &S.h, &S.d, D.score, 0.4, sel);
        SOFT(VPPO_ERR_NONFINITE, &S.h, &S.d, D.score, 0.4, w);
        poke_f(&D.score, 4, old);
        poke_f(&D.score, 7, INFINITY);   /* invalid position: ignored */
        CALL(VPPO_OK, &S.h, &S.d);
    }
#undef CALL
#undef SOFT
#undef TOPK
    mirror_free(&sel);
    mirror_free(&w);
    token_data_free(&D);
    mseqs_free(&S);
}

void cuda_policy_loss_rejects_bad_input(void)
{
    rng r = rng_make(9501);
    mseqs S = bad_layout();
    token_data D = token_data_make(&r, &S);
    mirror dlogp = mirror_new((size_t)S.n * 4, 0), none = mirror_null();
    const vppo_loss_config good = vppo_loss_config_default();
    vppo_loss_config c = good;
    vppo_loss_out oh, od;
    int k;
    float old;
#define LOSS(e, cfg, sh, sd, lp, lo, ref, adv, sel, w, dl, out_h, out_d) CHECK_BOTH(e, \
        vppo_policy_loss(cfg, sh, HF(lp), HF(lo), HF(ref), HF(adv), H_(uint8_t, sel), HF(w), HF(dl), out_h), \
        BOTH_MODES(vppo_cuda_policy_loss(cfg, sd, DF(lp), DF(lo), DF(ref), DF(adv), D_(uint8_t, sel), DF(w), DF(dl), \
                                         out_d, NULL), \
                   vppo_cuda_policy_loss_async(cfg, sd, DF(lp), DF(lo), DF(ref), DF(adv), D_(uint8_t, sel), DF(w), \
                                               DF(dl), (out_d) ? SC_(loss) : NULL, LAUNCH_)))
#define LOSS_ARGS(e, cfg, lp, lo, ref, adv, w) \
        LOSS(e, cfg, &S.h, &S.d, lp, lo, ref, adv, D.select, w, dlogp, &oh, &od)
#define CALL(e, sh, sd) LOSS(e, &c, sh, sd, D.logp, D.logp_old, D.logp_ref, D.adv, D.select, D.weight, dlogp, &oh, &od)
    BAD_SEQS_CASES(S, CALL);
#undef CALL
    /* pointers */
    LOSS_ARGS(VPPO_ERR_NULL, (const vppo_loss_config *)NULL, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    LOSS_ARGS(VPPO_ERR_NULL, &c, none, D.logp_old, D.logp_ref, D.adv, D.weight);
    LOSS_ARGS(VPPO_ERR_NULL, &c, D.logp, none, D.logp_ref, D.adv, D.weight);
    LOSS_ARGS(VPPO_ERR_NULL, &c, D.logp, D.logp_old, D.logp_ref, none, D.weight);
    LOSS(VPPO_ERR_NULL, &c, &S.h, &S.d, D.logp, D.logp_old, D.logp_ref, D.adv, D.select, D.weight, dlogp,
         (vppo_loss_out *)NULL, (vppo_loss_out *)NULL);
    c.kl_kind = VPPO_KL_K3; c.kl_coef = 0.1f;   /* a KL needs the reference */
    LOSS_ARGS(VPPO_ERR_NULL, &c, D.logp, D.logp_old, none, D.adv, D.weight);
    LOSS_ARGS(VPPO_OK, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    /* parameters */
    for (k = 0; k < 12; ++k) {
        c = good;
        switch (k) {   /* bad enums only inside their range of values (see dependency_sampled) */
        case 0: c.clip_low = -0.1f; break;
        case 1: c.clip_low = 1.5f; break;
        case 2: c.clip_high = NAN; break;
        case 3: c.clip_dual = 0.5f; break;
        case 4: c.clip_high = -0.1f; break;
        case 5: c.ratio_level = (vppo_ratio_level)3; break;
        case 6: c.agg = VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM; c.agg_norm = NAN; break;
        case 7: c.agg = VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM; c.agg_norm = 0.0; break;
        case 8: c.kl_kind = (vppo_kl_kind)5; break;
        case 9: c.kl_coef = -1.0f; break;
        case 10: c.entropy_coef = INFINITY; break;
        default: c.denom = -1.0; break;
        }
        LOSS_ARGS(VPPO_ERR_PARAM, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    }
    c = good;
    /* values: NaN at a valid position of each input, ignored elsewhere */
    old = poke_f(&D.logp, 3, NAN); LOSS_ARGS(VPPO_ERR_NONFINITE, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    poke_f(&D.logp, 3, old);
    old = poke_f(&D.logp_old, 8, -INFINITY); LOSS_ARGS(VPPO_ERR_NONFINITE, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    poke_f(&D.logp_old, 8, old);
    old = poke_f(&D.adv, 1, NAN); LOSS_ARGS(VPPO_ERR_NONFINITE, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    poke_f(&D.adv, 1, old);
    old = poke_f(&D.weight, 6, NAN); LOSS_ARGS(VPPO_ERR_NONFINITE, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    poke_f(&D.weight, 6, old);
    old = poke_f(&D.logp_ref, 4, NAN);
    LOSS_ARGS(VPPO_OK, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);   /* no KL: the reference is not read */
    c.kl_kind = VPPO_KL_K1;
    LOSS_ARGS(VPPO_ERR_NONFINITE, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    poke_f(&D.logp_ref, 4, old);
    c = good;
    poke_f(&D.logp, 7, NAN); poke_f(&D.adv, 2, NAN); poke_f(&D.weight, 0, NAN); poke_f(&D.logp_old, 10, NAN);
    LOSS_ARGS(VPPO_OK, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    /* a gradient beyond the float range (denom 1e-39) is found as dlogp is written */
    c.denom = 1e-39;
    LOSS_ARGS(VPPO_ERR_NONFINITE, &c, D.logp, D.logp_old, D.logp_ref, D.adv, D.weight);
    LOSS(VPPO_OK, &c, &S.h, &S.d, D.logp, D.logp_old, D.logp_ref, D.adv, D.select, D.weight, none, &oh, &od);
#undef LOSS_ARGS
#undef LOSS
    mirror_free(&dlogp);
    token_data_free(&D);
    mseqs_free(&S);
}

void cuda_prepare_and_step_reject_bad_input(void)
{
    rng r = rng_make(9601);
    mseqs S = bad_layout();
    token_data D = token_data_make(&r, &S);
    mprepared P = mprepared_new(&S);
    mirror dep_in = mirror_new((size_t)S.n * 4, 0xff), dlogp = mirror_new((size_t)S.n * 4, 0), none = mirror_null();
    const vppo_config good = vppo_config_default();
    vppo_config c = good;
    vppo_tas_stats gl;
    vppo_loss_out oh, od;
    int64_t t;
    int k;
    float old;
    for (t = S.begin; t < S.end; ++t) if (valid_at(&S, t)) HF(dep_in)[t] = 0.5f * (float)t;
    mirror_push(&dep_in);
#define PREP(e, cfg, sh, sd, lo, la, din, adv, global, ph, pd) CHECK_BOTH(e, \
        vppo_prepare(cfg, sh, HF(lo), HF(la), HF(din), HF(adv), global, ph), \
        BOTH_MODES(vppo_cuda_prepare(cfg, sd, DF(lo), DF(la), DF(din), DF(adv), global, pd, NULL), \
                   vppo_cuda_prepare_async(cfg, sd, DF(lo), DF(la), DF(din), DF(adv), async_env_global(E_, global), \
                                           pd, SC_(stats), SC_(topk), LAUNCH_)))
#define STEP(e, cfg, sh, sd, lp, lo, la, ref, adv, ph, pd, out_h, out_d) CHECK_BOTH(e, \
        vppo_step(cfg, sh, HF(lp), HF(lo), HF(la), HF(ref), HF(adv), ph, HF(dlogp), out_h), \
        BOTH_MODES(vppo_cuda_step(cfg, sd, DF(lp), DF(lo), DF(la), DF(ref), DF(adv), pd, DF(dlogp), out_d, NULL), \
                   vppo_cuda_step_async(cfg, sd, DF(lp), DF(lo), DF(la), DF(ref), DF(adv), pd, DF(dlogp), \
                                        (out_d) ? SC_(loss) : NULL, SC_(stats), SC_(topk), LAUNCH_)))
    /* both functions, same inputs: prepare (dep sampled, no global stats) and step */
#define BOTH_FNS(e, cfg, lo, la, adv) do { \
        PREP(e, cfg, &S.h, &S.d, lo, la, none, adv, NULL, &P.h, &P.d); \
        STEP(e, cfg, &S.h, &S.d, D.logp, lo, la, D.logp_ref, adv, &P.h, &P.d, &oh, &od); } while (0)
#define CALL(e, sh, sd) do { \
        PREP(e, &c, sh, sd, D.logp_old, D.logp_aug, none, D.adv_seq, NULL, &P.h, &P.d); \
        STEP(e, &c, sh, sd, D.logp, D.logp_old, D.logp_aug, D.logp_ref, D.adv_seq, &P.h, &P.d, &oh, &od); } while (0)
    BAD_SEQS_CASES(S, CALL);
#undef CALL
    /* pointers */
    BOTH_FNS(VPPO_ERR_NULL, (const vppo_config *)NULL, D.logp_old, D.logp_aug, D.adv_seq);
    BOTH_FNS(VPPO_ERR_NULL, &c, D.logp_old, D.logp_aug, none);
    BOTH_FNS(VPPO_ERR_NULL, &c, none, D.logp_aug, D.adv_seq);      /* TAS and TGF need a dependency */
    PREP(VPPO_ERR_NULL, &c, &S.h, &S.d, D.logp_old, D.logp_aug, none, D.adv_seq, NULL,
         (vppo_prepared *)NULL, (vppo_prepared *)NULL);
    for (k = 0; k < 6; ++k) {   /* every buffer of vppo_prepared is required */
        vppo_prepared ph = P.h, pd = P.d;
        void **bh[6] = { (void **)&ph.dep, (void **)&ph.traj_dep, (void **)&ph.count, (void **)&ph.scale,
                         (void **)&ph.adv, (void **)&ph.select };
        void **bd[6] = { (void **)&pd.dep, (void **)&pd.traj_dep, (void **)&pd.count, (void **)&pd.scale,
                         (void **)&pd.adv, (void **)&pd.select };
        *bh[k] = NULL;
        *bd[k] = NULL;
        PREP(VPPO_ERR_NULL, &c, &S.h, &S.d, D.logp_old, D.logp_aug, none, D.adv_seq, NULL, &ph, &pd);
        STEP(VPPO_ERR_NULL, &c, &S.h, &S.d, D.logp, D.logp_old, D.logp_aug, D.logp_ref, D.adv_seq, &ph, &pd, &oh, &od);
    }
    STEP(VPPO_ERR_NULL, &c, &S.h, &S.d, none, D.logp_old, D.logp_aug, D.logp_ref, D.adv_seq, &P.h, &P.d, &oh, &od);
    STEP(VPPO_ERR_NULL, &c, &S.h, &S.d, D.logp, D.logp_old, D.logp_aug, D.logp_ref, D.adv_seq, &P.h, &P.d,
         (vppo_loss_out *)NULL, (vppo_loss_out *)NULL);
    c.loss.kl_kind = VPPO_KL_K2; c.loss.kl_coef = 0.1f;
    STEP(VPPO_ERR_NULL, &c, &S.h, &S.d, D.logp, D.logp_old, D.logp_aug, none, D.adv_seq, &P.h, &P.d, &oh, &od);
    c = good;
    c.use_tas = c.use_tgf = 0;   /* plain DAPO: prepare needs no dependency source, step only logp_old (the ratio) */
    PREP(VPPO_OK, &c, &S.h, &S.d, none, none, none, D.adv_seq, NULL, &P.h, &P.d);
    STEP(VPPO_OK, &c, &S.h, &S.d, D.logp, D.logp_old, none, D.logp_ref, D.adv_seq, &P.h, &P.d, &oh, &od);
    STEP(VPPO_ERR_NULL, &c, &S.h, &S.d, D.logp, none, none, D.logp_ref, D.adv_seq, &P.h, &P.d, &oh, &od);
    /* parameters */
    for (k = 0; k < 7; ++k) {
        c = good;
        switch (k) {
        case 0: c.estimator = (vppo_estimator)7; break;
        case 1: c.tas.beta_min = -0.1f; break;
        case 2: c.tas.beta_min = 1.5f; break;   /* MEAN_PRESERVING needs beta_min <= 1 */
        case 3: c.tas.mode = VPPO_TAS_LINEAR; c.tas.beta_max = 0.5f; break;
        case 4: c.topk_ratio = 1.5; break;
        case 5: c.topk_ratio = NAN; break;
        default: c.loss.clip_low = 2.0f; break;
        }
        if (k < 6) PREP(VPPO_ERR_PARAM, &c, &S.h, &S.d, D.logp_old, D.logp_aug, none, D.adv_seq, NULL, &P.h, &P.d);
        STEP(VPPO_ERR_PARAM, &c, &S.h, &S.d, D.logp, D.logp_old, D.logp_aug, D.logp_ref, D.adv_seq, &P.h, &P.d, &oh, &od);
    }
    c = good;
    gl.min = 2.0; gl.max = 1.0; gl.n = 3;
    PREP(VPPO_ERR_PARAM, &c, &S.h, &S.d, D.logp_old, D.logp_aug, none, D.adv_seq, &gl, &P.h, &P.d);
    gl.min = 0.0; gl.n = -1;
    PREP(VPPO_ERR_SIZE, &c, &S.h, &S.d, D.logp_old, D.logp_aug, none, D.adv_seq, &gl, &P.h, &P.d);
    /* before the per-token data (the asynchronous form checks global on the device) */
    old = poke_f(&D.logp_old, 3, NAN);
    PREP(VPPO_ERR_SIZE, &c, &S.h, &S.d, D.logp_old, D.logp_aug, none, D.adv_seq, &gl, &P.h, &P.d);
    poke_f(&D.logp_old, 3, old);
    gl.n = 3;
    PREP(VPPO_OK, &c, &S.h, &S.d, D.logp_old, D.logp_aug, none, D.adv_seq, &gl, &P.h, &P.d);
    /* values */
    old = poke_f(&dep_in, 5, NAN);
    PREP(VPPO_ERR_NONFINITE, &c, &S.h, &S.d, D.logp_old, D.logp_aug, dep_in, D.adv_seq, NULL, &P.h, &P.d);
    poke_f(&dep_in, 5, old);
    poke_f(&dep_in, 7, NAN);   /* invalid position */
    PREP(VPPO_OK, &c, &S.h, &S.d, D.logp_old, D.logp_aug, dep_in, D.adv_seq, NULL, &P.h, &P.d);
    old = poke_f(&D.logp_old, 6, NAN); BOTH_FNS(VPPO_ERR_NONFINITE, &c, D.logp_old, D.logp_aug, D.adv_seq);
    poke_f(&D.logp_old, 6, old);
    old = poke_f(&D.logp_aug, 1, INFINITY); BOTH_FNS(VPPO_ERR_NONFINITE, &c, D.logp_old, D.logp_aug, D.adv_seq);
    poke_f(&D.logp_aug, 1, old);
    old = poke_f(&D.adv_seq, 2, NAN); BOTH_FNS(VPPO_ERR_NONFINITE, &c, D.logp_old, D.logp_aug, D.adv_seq);
    poke_f(&D.adv_seq, 2, 3.3e38f);   /* times the largest possible scale 1.1: beyond the float range */
    BOTH_FNS(VPPO_ERR_NONFINITE, &c, D.logp_old, D.logp_aug, D.adv_seq);
    poke_f(&D.adv_seq, 2, old);
    poke_f(&D.adv_seq, 1, NAN);   /* the empty sequence's advantage is not read */
    BOTH_FNS(VPPO_OK, &c, D.logp_old, D.logp_aug, D.adv_seq);
    old = poke_f(&D.logp, 8, NAN);
    STEP(VPPO_ERR_NONFINITE, &c, &S.h, &S.d, D.logp, D.logp_old, D.logp_aug, D.logp_ref, D.adv_seq, &P.h, &P.d, &oh, &od);
    poke_f(&D.logp, 8, old);
    poke_f(&D.logp_ref, 3, NAN);
    STEP(VPPO_OK, &c, &S.h, &S.d, D.logp, D.logp_old, D.logp_aug, D.logp_ref, D.adv_seq, &P.h, &P.d, &oh, &od);
    c.loss.kl_kind = VPPO_KL_ABS; c.loss.kl_coef = 0.1f;
    STEP(VPPO_ERR_NONFINITE, &c, &S.h, &S.d, D.logp, D.logp_old, D.logp_aug, D.logp_ref, D.adv_seq, &P.h, &P.d, &oh, &od);
#undef BOTH_FNS
#undef STEP
#undef PREP
    mprepared_free(&P);
    mirror_free(&dep_in);
    mirror_free(&dlogp);
    token_data_free(&D);
    mseqs_free(&S);
}

/* ================================================================ every function at once
   A fixed set of inputs for every CUDA function, used to run each function again (same
   bits), on a created stream (same bits), and (emulated) under injected failures. */

enum { F_DEP_SAMPLED, F_DEP_LOGITS, F_LOGPROBS, F_BACKWARD, F_PATCH_ROWS, F_TOPK, F_SOFT, F_LOSS, F_PREPARE, F_STEP,
       N_FUNCS };
static const char *const func_names[N_FUNCS] = {
    "dependency_sampled", "dependency_logits", "logprobs", "logprobs_backward", "perturb_patch_rows",
    "topk_mask", "soft_mask", "policy_loss", "prepare", "step"
};

typedef struct world {
    mseqs S;
    token_data D;
    mlogits P, Q;
    mirror ids, g, h, dep_s, dep_l, logp, lse, ent, grad, rows, fill, sel, weight, dlogp, dlogp_step;
    mprepared prep, prep_step;
    vppo_config cfg;
    vppo_topk_info info;
    vppo_loss_out loss, loss_step;
} world;

static world world_make(uint64_t seed)
{
    rng r = rng_make(seed);
    world W;
    const int64_t rows = SIZE_EMU_REAL(6, 64), V = SIZE_EMU_REAL(3000, 32000), n_patch = 300, len = 17;
    int64_t i;
    W.S = layout_random(&r, SIZE_EMU_REAL(40, 400), 3, 120, 1, 4);
    W.D = token_data_make(&r, &W.S);
    W.P = mlogits_new(VPPO_BF16, rows, V, V + 3, 1, 1.0f);
    W.Q = mlogits_new(VPPO_F32, rows, V, V, 0, 0.9f);
    mlogits_fill(&W.P, &W.Q, &r);
    W.ids = ids_make(&r, &W.P);
    W.g = mirror_new((size_t)rows * 4, 0);
    W.h = mirror_new((size_t)rows * 4, 0);
    for (i = 0; i < rows; ++i) { HF(W.g)[i] = (float)rng_normal(&r); HF(W.h)[i] = (float)rng_normal(&r); }
    mirror_push(&W.g);
    mirror_push(&W.h);
    W.dep_s = mirror_new((size_t)W.S.n * 4, 0x7f);
    W.dep_l = mirror_new((size_t)rows * 4, 0x7f);
    W.logp = mirror_new((size_t)rows * 4, 0x7f);
    W.lse = mirror_new((size_t)rows * 4, 0x7f);
    W.ent = mirror_new((size_t)rows * 4, 0x7f);
    W.grad = mirror_new((size_t)(rows * (V + 2)) * 4, 0x7f);
    W.rows = mirror_new((size_t)(n_patch * (len + 1)) * 4, 0x7f);
    for (i = 0; i < n_patch * (len + 1); ++i) HF(W.rows)[i] = (float)rng_normal(&r);
    mirror_push(&W.rows);
    W.fill = mirror_new((size_t)len * 4, 0);
    for (i = 0; i < len; ++i) HF(W.fill)[i] = (float)i;
    mirror_push(&W.fill);
    W.sel = mirror_new((size_t)W.S.n, 0x5a);
    W.weight = mirror_new((size_t)W.S.n * 4, 0x7f);
    W.dlogp = mirror_new((size_t)W.S.n * 4, 0x7f);
    W.dlogp_step = mirror_new((size_t)W.S.n * 4, 0x7f);
    W.prep = mprepared_new(&W.S);
    W.prep_step = mprepared_new(&W.S);
    W.cfg = vppo_config_default();
    W.cfg.loss.kl_kind = VPPO_KL_K3;
    W.cfg.loss.kl_coef = 0.05f;
    memset(&W.info, 0, sizeof W.info);
    memset(&W.loss, 0, sizeof W.loss);
    memset(&W.loss_step, 0, sizeof W.loss_step);
    return W;
}

static void world_free(world *W)
{
    mirror *m[15] = { &W->ids, &W->g, &W->h, &W->dep_s, &W->dep_l, &W->logp, &W->lse, &W->ent, &W->grad,
                      &W->rows, &W->fill, &W->sel, &W->weight, &W->dlogp, &W->dlogp_step };
    int i;
    for (i = 0; i < 15; ++i) mirror_free(m[i]);
    mirror_free(&W->P.m);
    mirror_free(&W->Q.m);
    mprepared_free(&W->prep);
    mprepared_free(&W->prep_step);
    token_data_free(&W->D);
    mseqs_free(&W->S);
}

/* The CUDA function f on the world's device data: synchronous on stream st (E NULL), or
   asynchronous on E (scalar results to E's device homes; world_fetch_scalars brings them
   where the synchronous form writes them). (patch_rows works in place; applied again with
   the same seed it gives the same rows.) */
static vppo_status world_call(world *W, int f, cudaStream_t st, const async_env *E)
{
    void *s = (void *)st;
    const vppo_cuda_launch *L = E ? &E->L : NULL;
    dev_scalars *sc = E ? E->sc : NULL;
    const float *lo = DF(W->D.logp_old), *la = DF(W->D.logp_aug), *lp = DF(W->D.logp), *ref = DF(W->D.logp_ref);
    const int32_t *ids = D_(int32_t, W->ids);
    vppo_grad_out go;
    go.data = W->grad.d; go.dtype = VPPO_F32; go.row_stride = W->P.h.vocab + 2;
    switch (f) {
    case F_DEP_SAMPLED:
        return E ? vppo_cuda_dependency_sampled_async(&W->S.d, lo, la, VPPO_EST_K3, DF(W->dep_s), L)
                 : vppo_cuda_dependency_sampled(&W->S.d, lo, la, VPPO_EST_K3, DF(W->dep_s), s);
    case F_DEP_LOGITS:
        return E ? vppo_cuda_dependency_logits_async(&W->P.d, &W->Q.d, VPPO_DIV_JS, DF(W->dep_l), L)
                 : vppo_cuda_dependency_logits(&W->P.d, &W->Q.d, VPPO_DIV_JS, DF(W->dep_l), s);
    case F_LOGPROBS:
        return E ? vppo_cuda_logprobs_async(&W->P.d, ids, DF(W->logp), DF(W->lse), DF(W->ent), L)
                 : vppo_cuda_logprobs(&W->P.d, ids, DF(W->logp), DF(W->lse), DF(W->ent), s);
    case F_BACKWARD:
        return E ? vppo_cuda_logprobs_backward_async(&W->P.d, ids, NULL, NULL, DF(W->g), DF(W->h), &go, L)
                 : vppo_cuda_logprobs_backward(&W->P.d, ids, NULL, NULL, DF(W->g), DF(W->h), &go, s);
    case F_PATCH_ROWS:
        return E ? vppo_cuda_perturb_patch_rows_async(DF(W->rows), 300, 17, 18, 0.5f, DF(W->fill), 99, L)
                 : vppo_cuda_perturb_patch_rows(DF(W->rows), 300, 17, 18, 0.5f, DF(W->fill), 99, s);
    case F_TOPK:
        return E ? vppo_cuda_topk_mask_async(&W->S.d, DF(W->D.score), 0.4, D_(uint8_t, W->sel), &sc->info, L)
                 : vppo_cuda_topk_mask(&W->S.d, DF(W->D.score), 0.4, D_(uint8_t, W->sel), &W->info, s);
    case F_SOFT:
        return E ? vppo_cuda_soft_mask_async(&W->S.d, DF(W->D.score), 0.4, DF(W->weight), L)
                 : vppo_cuda_soft_mask(&W->S.d, DF(W->D.score), 0.4, DF(W->weight), s);
    case F_LOSS: {
        const float *adv = DF(W->D.adv), *w = DF(W->D.weight);
        const uint8_t *sel = D_(uint8_t, W->D.select);
        return E ? vppo_cuda_policy_loss_async(&W->cfg.loss, &W->S.d, lp, lo, ref, adv, sel, w, DF(W->dlogp), &sc->loss, L)
                 : vppo_cuda_policy_loss(&W->cfg.loss, &W->S.d, lp, lo, ref, adv, sel, w, DF(W->dlogp), &W->loss, s);
    }
    case F_PREPARE:
        return E ? vppo_cuda_prepare_async(&W->cfg, &W->S.d, lo, la, NULL, DF(W->D.adv_seq), NULL, &W->prep.d,
                                           &sc->stats, &sc->topk, L)
                 : vppo_cuda_prepare(&W->cfg, &W->S.d, lo, la, NULL, DF(W->D.adv_seq), NULL, &W->prep.d, s);
    default:
        return E ? vppo_cuda_step_async(&W->cfg, &W->S.d, lp, lo, la, ref, DF(W->D.adv_seq), &W->prep_step.d,
                                        DF(W->dlogp_step), &sc->loss, &sc->stats, &sc->topk, L)
                 : vppo_cuda_step(&W->cfg, &W->S.d, lp, lo, la, ref, DF(W->D.adv_seq), &W->prep_step.d,
                                  DF(W->dlogp_step), &W->loss_step, s);
    }
}

/* After an asynchronous call of f on E has run: its scalar results, from E's device homes
   to the host structs that the synchronous form fills. */
static void world_fetch_scalars(world *W, int f, const async_env *E)
{
    mprepared *P = f == F_PREPARE ? &W->prep : &W->prep_step;
    if (f == F_TOPK) dev_download(&W->info, &E->sc->info, sizeof W->info);
    if (f == F_LOSS) dev_download(&W->loss, &E->sc->loss, sizeof W->loss);
    if (f == F_STEP) dev_download(&W->loss_step, &E->sc->loss, sizeof W->loss_step);
    if (f == F_PREPARE || f == F_STEP) {
        dev_download(&P->d.stats, &E->sc->stats, sizeof P->d.stats);
        dev_download(&P->d.topk, &E->sc->topk, sizeof P->d.topk);
    }
}

/* The outputs of f: its device buffers (out, returns how many) and the host structs it
   fills (host[0..1], NULL when none). */
static int world_outputs(world *W, int f, mirror **out, const void **host, size_t *host_bytes)
{
    int n = 0;
    host[0] = host[1] = NULL;
    host_bytes[0] = host_bytes[1] = 0;
    switch (f) {
    case F_DEP_SAMPLED: out[n++] = &W->dep_s; break;
    case F_DEP_LOGITS: out[n++] = &W->dep_l; break;
    case F_LOGPROBS: out[n++] = &W->logp; out[n++] = &W->lse; out[n++] = &W->ent; break;
    case F_BACKWARD: out[n++] = &W->grad; break;
    case F_PATCH_ROWS: out[n++] = &W->rows; break;
    case F_TOPK: out[n++] = &W->sel; host[0] = &W->info; host_bytes[0] = sizeof W->info; break;
    case F_SOFT: out[n++] = &W->weight; break;
    case F_LOSS: out[n++] = &W->dlogp; host[0] = &W->loss; host_bytes[0] = sizeof W->loss; break;
    default: {
        mprepared *P = f == F_PREPARE ? &W->prep : &W->prep_step;
        out[n++] = &P->dep; out[n++] = &P->traj_dep; out[n++] = &P->count;
        out[n++] = &P->scale; out[n++] = &P->adv; out[n++] = &P->select;
        host[0] = &P->d.stats; host_bytes[0] = sizeof P->d.stats;
        host[1] = &P->d.topk; host_bytes[1] = sizeof P->d.topk;
        if (f == F_STEP) { out[n++] = &W->dlogp_step; host[1] = &W->loss_step; host_bytes[1] = sizeof W->loss_step; }
    }
    }
    return n;
}

/* All output bytes of f after its last call, in one malloc'd block. */
static unsigned char *world_snapshot(world *W, int f, size_t *bytes)
{
    mirror *out[8];
    const void *host[2];
    size_t host_bytes[2], total, at = 0;
    const int n = world_outputs(W, f, out, host, host_bytes);
    unsigned char *snap;
    int i;
    total = host_bytes[0] + host_bytes[1];
    for (i = 0; i < n; ++i) total += out[i]->bytes;
    snap = (unsigned char *)malloc(total + 1);
    for (i = 0; i < n; ++i) {
        mirror_pull(out[i]);
        memcpy(snap + at, out[i]->g, out[i]->bytes);
        at += out[i]->bytes;
    }
    for (i = 0; i < 2; ++i) {
        if (host_bytes[i]) memcpy(snap + at, host[i], host_bytes[i]);
        at += host_bytes[i];
    }
    *bytes = total;
    return snap;
}

/* The edge cases the CPU fuzzers found (tests/fuzz/regressions.c), on the GPU: huge logits
   keep log sum; a tiny temperature (u ~ 6e32) gives logp 0 and exactly-zero gradients with
   lse recomputed; a divisor near 0 makes the loss VPPO_ERR_NONFINITE. A temperature whose
   reciprocal is beyond the float range (a denormal) is VPPO_ERR_PARAM on the GPU, the one
   documented difference from the CPU's logits functions. */
void cuda_fuzz_found_edge_cases_match_the_cpu(void)
{
    static const float p[3] = { 1e33f, 0.0f, 0.0f }, q[3] = { 0.0f, 1e33f, 1e33f };
    static const float z[3] = { 0.00095564907f, 0.0005f, -1.0f };
    const int32_t id_q = 1, id_z = 0;
    const float g_one = 1.0f, g_zero = 0.0f;
    float *dp = (float *)dev_alloc(sizeof p, 0), *dq = (float *)dev_alloc(sizeof q, 0), *dz = (float *)dev_alloc(sizeof z, 0);
    float *dout = (float *)dev_alloc(4 * sizeof(float), 0), *dgrad = (float *)dev_alloc(3 * sizeof(float), 0);
    int32_t *did = (int32_t *)dev_alloc(2 * sizeof(int32_t), 0);
    float *dg = (float *)dev_alloc(2 * sizeof(float), 0);
    float host[4], grad[3];
    vppo_logits P = { dp, VPPO_F32, 1, 3, 3, 1.0f }, Q = { dq, VPPO_F32, 1, 3, 3, 1.0f };
    vppo_logits X = { dz, VPPO_F32, 1, 3, 3, 1.49899072e-36f };
    vppo_grad_out go;
    int k;
    dev_upload_to(dp, p, sizeof p);
    dev_upload_to(dq, q, sizeof q);
    dev_upload_to(dz, z, sizeof z);
    dev_upload_to(did, &id_q, sizeof id_q);
    dev_upload_to(did + 1, &id_z, sizeof id_z);
    dev_upload_to(dg, &g_zero, sizeof g_zero);
    dev_upload_to(dg + 1, &g_one, sizeof g_one);
    /* disjoint supports: JS = ln 2; under Q, logp(entry 1) = -ln 2 and H = ln 2 */
    CHECK_STATUS(VPPO_OK, vppo_cuda_dependency_logits(&P, &Q, VPPO_DIV_JS, dout, NULL));
    CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs(&Q, did, dout + 1, NULL, dout + 2, NULL));
    dev_download(host, dout, 3 * sizeof(float));
    CHECK_NEAR(log(2.0), host[0], TOL_DIV);
    CHECK_NEAR(-log(2.0), host[1], TOL_LSE);
    CHECK_NEAR(log(2.0), host[2], TOL_DIV);
    /* tiny temperature: p = (1, 0, 0) to every precision */
    CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs(&X, did + 1, dout, NULL, NULL, NULL));
    dev_download(host, dout, sizeof(float));
    CHECK(host[0] <= 0.0f && host[0] >= -1e-6f);
    go.data = dgrad; go.dtype = VPPO_F32; go.row_stride = 3;
    for (k = 0; k < 2; ++k) {
        CHECK_STATUS(VPPO_OK, vppo_cuda_logprobs_backward(&X, did + 1, NULL, NULL, dg + k, NULL, &go, NULL));
        dev_download(grad, dgrad, sizeof grad);
        CHECK(grad[0] == 0.0f && grad[1] == 0.0f && grad[2] == 0.0f);
    }
    /* a denormal temperature: the CPU computes in double, the GPU refuses it */
    X.temperature = 1e-40f;
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&X, NULL, NULL, host, NULL));
    CHECK_STATUS(VPPO_ERR_PARAM, BOTH_MODES(vppo_cuda_logprobs(&X, NULL, NULL, dout, NULL, NULL),
               vppo_cuda_logprobs_async(&X, NULL, NULL, dout, NULL, LAUNCH_)));
    CHECK_STATUS(VPPO_ERR_PARAM, BOTH_MODES(vppo_cuda_dependency_logits(&X, &X, VPPO_DIV_KL, dout, NULL),
               vppo_cuda_dependency_logits_async(&X, &X, VPPO_DIV_KL, dout, LAUNCH_)));
    {
        /* every loss term 0, divided by 5e-312: 0 * inf */
        const int64_t offsets[2] = { 0, 2 };
        static const float logp[2] = { -1.0f, -2.0f }, adv[2] = { 0.0f, 0.0f };
        int64_t *doff = (int64_t *)dev_alloc(sizeof offsets, 0);
        float *dlp = (float *)dev_alloc(sizeof logp, 0), *dadv = (float *)dev_alloc(sizeof adv, 0);
        vppo_seqs hs = { 1, offsets, NULL }, ds = { 1, doff, NULL };
        vppo_loss_config c = vppo_loss_config_default();
        vppo_loss_out out;
        float dl[2];
        dev_upload_to(doff, offsets, sizeof offsets);
        dev_upload_to(dlp, logp, sizeof logp);
        dev_upload_to(dadv, adv, sizeof adv);
        c.entropy_coef = 0.0f;
        c.denom = 5e-312;
        CHECK_BOTH(VPPO_ERR_NONFINITE, vppo_policy_loss(&c, &hs, logp, logp, NULL, adv, NULL, NULL, dl, &out),
                   BOTH_MODES(vppo_cuda_policy_loss(&c, &ds, dlp, dlp, NULL, dadv, NULL, NULL, dout, &out, NULL),
                              vppo_cuda_policy_loss_async(&c, &ds, dlp, dlp, NULL, dadv, NULL, NULL, dout, SC_(loss), LAUNCH_)));
        CHECK_BOTH(VPPO_ERR_NONFINITE, vppo_policy_loss(&c, &hs, logp, logp, NULL, adv, NULL, NULL, NULL, &out),
                   BOTH_MODES(vppo_cuda_policy_loss(&c, &ds, dlp, dlp, NULL, dadv, NULL, NULL, NULL, &out, NULL),
                              vppo_cuda_policy_loss_async(&c, &ds, dlp, dlp, NULL, dadv, NULL, NULL, NULL, SC_(loss), LAUNCH_)));
        c.denom = 0.0;
        c.agg = VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM;
        c.agg_norm = 5e-312;
        CHECK_BOTH(VPPO_ERR_NONFINITE, vppo_policy_loss(&c, &hs, logp, logp, NULL, adv, NULL, NULL, dl, &out),
                   BOTH_MODES(vppo_cuda_policy_loss(&c, &ds, dlp, dlp, NULL, dadv, NULL, NULL, dout, &out, NULL),
                              vppo_cuda_policy_loss_async(&c, &ds, dlp, dlp, NULL, dadv, NULL, NULL, dout, SC_(loss), LAUNCH_)));
        c.agg_norm = 1e-300;   /* small but harmless */
        CHECK_BOTH(VPPO_OK, vppo_policy_loss(&c, &hs, logp, logp, NULL, adv, NULL, NULL, dl, &out),
                   BOTH_MODES(vppo_cuda_policy_loss(&c, &ds, dlp, dlp, NULL, dadv, NULL, NULL, dout, &out, NULL),
                              vppo_cuda_policy_loss_async(&c, &ds, dlp, dlp, NULL, dadv, NULL, NULL, dout, SC_(loss), LAUNCH_)));
        dev_download(host, dout, 2 * sizeof(float));
        CHECK(out.loss == 0.0 && host[0] == 0.0f && host[1] == 0.0f);
        CUDA_MUST(cudaFree(doff));
        CUDA_MUST(cudaFree(dlp));
        CUDA_MUST(cudaFree(dadv));
    }
    CUDA_MUST(cudaFree(dp)); CUDA_MUST(cudaFree(dq)); CUDA_MUST(cudaFree(dz));
    CUDA_MUST(cudaFree(dout)); CUDA_MUST(cudaFree(dgrad)); CUDA_MUST(cudaFree(did)); CUDA_MUST(cudaFree(dg));
}

void cuda_every_function_repeats_bit_for_bit(void)
{
    world W = world_make(10101);
    int f;
    for (f = 0; f < N_FUNCS; ++f) {
        unsigned char *a, *b;
        size_t na, nb;
        CHECK_MSG(world_call(&W, f, NULL, NULL) == VPPO_OK, "%s: first call failed", func_names[f]);
        a = world_snapshot(&W, f, &na);
        CHECK_MSG(world_call(&W, f, NULL, NULL) == VPPO_OK, "%s: second call failed", func_names[f]);
        b = world_snapshot(&W, f, &nb);
        CHECK_MSG(na == nb && memcmp(a, b, na) == 0, "%s: a second run gave different bits", func_names[f]);
        free(a);
        free(b);
    }
    world_free(&W);
}

/* An error the caller left pending (a failed cudaMalloc: not sticky) is not ours: every
   function, synchronous and asynchronous, succeeds and leaves that error in place. */
void cuda_a_pending_caller_error_is_not_reported_as_ours(void)
{
    world W = world_make(10104);
    async_env E = async_env_new(W.S.h.n_seqs, NULL);
    int f, mode;
    for (mode = 0; mode < 2; ++mode)
        for (f = 0; f < N_FUNCS; ++f) {
            void *p = NULL;
            vppo_status st;
            CHECK(cudaMalloc(&p, (size_t)1 << 62) == cudaErrorMemoryAllocation);
            CHECK(cudaPeekAtLastError() == cudaErrorMemoryAllocation);
            st = world_call(&W, f, NULL, mode ? &E : NULL);
            if (mode && st == VPPO_OK) st = async_env_status(&E);
            CHECK_MSG(st == VPPO_OK, "%s (mode %d) with an error pending: %s (%s)", func_names[f], mode,
                      vppo_status_string(st), vppo_cuda_error_string());
            CHECK_MSG(cudaPeekAtLastError() == cudaErrorMemoryAllocation, "%s (mode %d) took the caller's error",
                      func_names[f], mode);
            CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
        }
    async_env_free(&E);
    world_free(&W);
}

void cuda_every_function_runs_on_a_created_stream(void)
{
    world W = world_make(10102);
    cudaStream_t st;
    int f, k;
    CUDA_MUST(cudaStreamCreate(&st));
    for (f = 0; f < N_FUNCS; ++f) {
        unsigned char *a, *b;
        size_t na, nb, host_bytes[2];
        mirror *out[8];
        const void *host[2];
        const int n = world_outputs(&W, f, out, host, host_bytes);
        CHECK_MSG(world_call(&W, f, NULL, NULL) == VPPO_OK, "%s: call on the default stream failed", func_names[f]);
        a = world_snapshot(&W, f, &na);
        /* queue a reset of the outputs to their sentinel on the stream: the call has to run
           after it to give the same bytes */
        for (k = 0; k < n && f != F_PATCH_ROWS; ++k) CUDA_MUST(cudaMemsetAsync(out[k]->d, out[k]->fill, out[k]->bytes, st));
        CHECK_MSG(world_call(&W, f, st, NULL) == VPPO_OK, "%s: call on a created stream failed", func_names[f]);
        b = world_snapshot(&W, f, &nb);
        CHECK_MSG(na == nb && memcmp(a, b, na) == 0, "%s: on a created stream the outputs differ from the default "
                  "stream's", func_names[f]);
        free(a);
        free(b);
    }
    CUDA_MUST(cudaStreamDestroy(st));
    world_free(&W);
}


/* ---------------------------------------------------------------- asynchronous mode */

/* What the emulator counts of the host's work with the device: synchronisations,
   allocations (and frees), blocking copies. A real GPU cannot count them: zeros. */
typedef struct host_work { long syncs, allocs, copies; } host_work;

static host_work host_work_now(void)
{
    host_work w;
#ifdef VPPO_CUDA_EMULATE
    w.syncs = vppo_emu_sync_count();
    w.allocs = vppo_emu_alloc_count();
    w.copies = vppo_emu_blocking_copy_count();
#else
    w.syncs = w.allocs = w.copies = 0;
#endif
    return w;
}

/* None of the three since `before` (emulated; on a GPU the graph capture checks it). */
static void check_no_host_work(host_work before, const char *what, const char *fn)
{
    const host_work now = host_work_now();
    (void)what; (void)fn;
#ifdef VPPO_CUDA_EMULATE
    CHECK_MSG(now.syncs == before.syncs, "%s: %s synchronised %ld times", fn, what, now.syncs - before.syncs);
    CHECK_MSG(now.allocs == before.allocs, "%s: %s allocated or freed %ld times", fn, what, now.allocs - before.allocs);
    CHECK_MSG(now.copies == before.copies, "%s: %s made %ld blocking copies", fn, what, now.copies - before.copies);
#else
    (void)now; (void)before;
#endif
}

/* The outputs of f set back to their sentinel bytes (device) and 0x7f (host structs). */
static void world_reset(world *W, int f)
{
    mirror *out[8];
    const void *host[2];
    size_t host_bytes[2];
    const int n = world_outputs(W, f, out, host, host_bytes);
    int k;
    for (k = 0; k < n && f != F_PATCH_ROWS; ++k) CUDA_MUST(cudaMemset(out[k]->d, out[k]->fill, out[k]->bytes));
    for (k = 0; k < 2; ++k)
        if (host[k]) memset((void *)host[k], 0x7f, host_bytes[k]);
}

/* f synchronously on the default stream, then asynchronously on E (its stream): the same
   status (VPPO_OK) and the same bits, with no host work inside the asynchronous call. */
static void check_async_is_sync(world *W, int f, const async_env *E)
{
    unsigned char *a, *b;
    size_t na, nb;
    host_work before;
    CHECK_MSG(world_call(W, f, NULL, NULL) == VPPO_OK, "%s: the synchronous call failed", func_names[f]);
    a = world_snapshot(W, f, &na);
    world_reset(W, f);
    before = host_work_now();
    CHECK_MSG(world_call(W, f, (cudaStream_t)E->L.stream, E) == VPPO_OK, "%s: the asynchronous call failed",
              func_names[f]);
    check_no_host_work(before, "the asynchronous call", func_names[f]);
    CHECK_MSG(async_env_status(E) == VPPO_OK, "%s: the status word is not VPPO_OK", func_names[f]);
    world_fetch_scalars(W, f, E);
    b = world_snapshot(W, f, &nb);
    CHECK_MSG(na == nb && memcmp(a, b, na) == 0, "%s: the asynchronous results differ from the synchronous ones",
              func_names[f]);
    free(a);
    free(b);
}

void cuda_async_equals_sync_bit_for_bit_without_host_work(void)
{
    world W = world_make(10104);
    cudaStream_t st;
    async_env E;
    int f;
    CUDA_MUST(cudaStreamCreate(&st));
    E = async_env_new(W.S.h.n_seqs, st);
    for (f = 0; f < N_FUNCS; ++f) check_async_is_sync(&W, f, &E);
    async_env_free(&E);
    CUDA_MUST(cudaStreamDestroy(st));
    world_free(&W);
}

/* Every function captured, in one graph, on a created stream: nothing runs (and nothing
   synchronises, allocates or copies) while capturing; each replay gives the bits of the
   direct calls. */
void cuda_async_calls_captured_in_a_graph_replay_the_same_bits(void)
{
    world W = world_make(10105);
    cudaStream_t st;
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    async_env E[N_FUNCS];
    unsigned char *direct[N_FUNCS];
    size_t n_direct[N_FUNCS];
    host_work before;
    int f, replay;
    int32_t word;
    CUDA_MUST(cudaStreamCreate(&st));
    for (f = 0; f < N_FUNCS; ++f) E[f] = async_env_new(W.S.h.n_seqs, st);
    for (f = 0; f < N_FUNCS; ++f) CHECK_MSG(world_call(&W, f, st, &E[f]) == VPPO_OK, "%s: direct call", func_names[f]);
    for (f = 0; f < N_FUNCS; ++f) {
        CHECK_MSG(async_env_status(&E[f]) == VPPO_OK, "%s: direct call's status", func_names[f]);
        world_fetch_scalars(&W, f, &E[f]);
        direct[f] = world_snapshot(&W, f, &n_direct[f]);
        world_reset(&W, f);
    }
    before = host_work_now();
    CUDA_MUST(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (f = 0; f < N_FUNCS; ++f) CHECK_MSG(world_call(&W, f, st, &E[f]) == VPPO_OK, "%s: captured", func_names[f]);
    CUDA_MUST(cudaStreamEndCapture(st, &graph));
    check_no_host_work(before, "capturing", "every function");
    CUDA_MUST(cudaGraphInstantiate(&exec, graph, 0));
    dev_download(&word, E[0].L.status, sizeof word);
    CHECK_MSG(word == STATUS_UNWRITTEN, "a captured call ran while it was captured");
#ifdef VPPO_CUDA_EMULATE
    CHECK_MSG(vppo_emu_graph_ops(graph) >= 3 * N_FUNCS, "only %zu operations were captured", vppo_emu_graph_ops(graph));
#endif
    for (replay = 0; replay < 2; ++replay) {
        CUDA_MUST(cudaGraphLaunch(exec, st));
        for (f = 0; f < N_FUNCS; ++f) {
            unsigned char *b;
            size_t nb;
            CHECK_MSG(async_env_status(&E[f]) == VPPO_OK, "%s: replay %d: status", func_names[f], replay);
            world_fetch_scalars(&W, f, &E[f]);
            b = world_snapshot(&W, f, &nb);
            CHECK_MSG(nb == n_direct[f] && memcmp(b, direct[f], nb) == 0, "%s: replay %d differs from the direct call",
                      func_names[f], replay);
            free(b);
            world_reset(&W, f);
        }
    }
    CUDA_MUST(cudaGraphExecDestroy(exec));
    CUDA_MUST(cudaGraphDestroy(graph));
    for (f = 0; f < N_FUNCS; ++f) { async_env_free(&E[f]); free(direct[f]); }
    CUDA_MUST(cudaStreamDestroy(st));
    world_free(&W);
}

/* One bad value for every function (a NaN log-probability: sampled dependency, loss,
   prepare, step; a token id outside the vocabulary: logprobs, backward; a NaN score: the
   masks; a NaN fill: the patches; a NaN logit: dependency_logits): the asynchronous call
   enqueues, its status word gets the synchronous call's error; with the values repaired,
   the next calls on the same stream give the synchronous results. */
void cuda_async_data_errors_reach_the_status_word_and_the_stream_goes_on(void)
{
    world W = world_make(10106);
    cudaStream_t st;
    async_env E;
    int64_t t = W.S.begin;
    float old_lo, old_score, old_fill, old_q;
    int32_t old_id;
    int f;
    CUDA_MUST(cudaStreamCreate(&st));
    E = async_env_new(W.S.h.n_seqs, st);
    while (!valid_at(&W.S, t)) ++t;
    old_lo = poke_f(&W.D.logp_old, t, NAN);
    old_score = poke_f(&W.D.score, t, NAN);
    old_id = poke_i32(&W.ids, 0, (int32_t)W.P.h.vocab);
    old_fill = poke_f(&W.fill, 0, NAN);
    old_q = poke_f(&W.Q.m, 0, NAN);
    for (f = 0; f < N_FUNCS; ++f) {
        const vppo_status sync_st = world_call(&W, f, NULL, NULL);
        vppo_status word;
        CHECK_MSG(sync_st != VPPO_OK, "%s: the bad value was not found", func_names[f]);
        CHECK_MSG(world_call(&W, f, st, &E) == VPPO_OK, "%s: a data error was returned at once", func_names[f]);
        word = async_env_status(&E);
        CHECK_MSG(word == sync_st, "%s: status word %s, synchronous %s", func_names[f], vppo_status_string(word),
                  vppo_status_string(sync_st));
    }
    poke_f(&W.D.logp_old, t, old_lo);
    poke_f(&W.D.score, t, old_score);
    poke_i32(&W.ids, 0, old_id);
    poke_f(&W.fill, 0, old_fill);
    poke_f(&W.Q.m, 0, old_q);
    for (f = 0; f < N_FUNCS; ++f) check_async_is_sync(&W, f, &E);
    async_env_free(&E);
    CUDA_MUST(cudaStreamDestroy(st));
    world_free(&W);
}

/* The launch struct: NULL (or no status word) is VPPO_ERR_NULL, no workspace, a small or
   misaligned one VPPO_ERR_WORKSPACE, each returned at once with nothing enqueued; the
   workspace size grows with the sequences and is 0 where no size fits. */
void cuda_async_rejects_a_bad_launch_with_nothing_enqueued(void)
{
    rng r = rng_make(9701);
    mseqs S = bad_layout();
    token_data D = token_data_make(&r, &S);
    mirror dep = mirror_new((size_t)S.n * 4, 0);
    async_env E = async_env_new(S.h.n_seqs, NULL);
    vppo_cuda_launch L;
    const size_t ws = vppo_cuda_workspace_size(S.h.n_seqs);
#ifdef VPPO_CUDA_EMULATE
    const long launches = vppo_emu_launch_count();
#endif
#define DEP(e, launch) CHECK_STATUS(e, vppo_cuda_dependency_sampled_async(&S.d, DF(D.logp_old), DF(D.logp_aug), \
                                                                          VPPO_EST_K3, DF(dep), launch))
    DEP(VPPO_ERR_NULL, (const vppo_cuda_launch *)NULL);
    L = E.L; L.status = NULL; DEP(VPPO_ERR_NULL, &L);
    L = E.L; L.workspace = NULL; DEP(VPPO_ERR_WORKSPACE, &L);
    L = E.L; L.workspace_bytes = ws - 1; DEP(VPPO_ERR_WORKSPACE, &L);
    L = E.L; L.workspace = (char *)L.workspace + 8; L.workspace_bytes -= 8; DEP(VPPO_ERR_WORKSPACE, &L);
    /* the arguments are checked before the launch struct */
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_cuda_dependency_sampled_async(&S.d, DF(D.logp_old), DF(D.logp_aug),
                                                                    (vppo_estimator)7, DF(dep), NULL));
#ifdef VPPO_CUDA_EMULATE
    CHECK_EQ_INT(launches, vppo_emu_launch_count());
#endif
    CHECK_STATUS((vppo_status)STATUS_UNWRITTEN, async_env_status(&E));
    L = E.L; L.workspace_bytes = ws; DEP(VPPO_OK, &L);
    CHECK_STATUS(VPPO_OK, async_env_status(&E));
#undef DEP
    CHECK(vppo_cuda_workspace_size(-1) == 0);
    CHECK(vppo_cuda_workspace_size(INT64_MAX) == 0);
    CHECK(vppo_cuda_workspace_size(0) > 0);
    CHECK(vppo_cuda_workspace_size(1000) > vppo_cuda_workspace_size(999));
    async_env_free(&E);
    mirror_free(&dep);
    token_data_free(&D);
    mseqs_free(&S);
}

#ifdef VPPO_CUDA_EMULATE
/* ================================================================ failure injection
   (emulator only). For every function, both modes, and every scratch allocation, kernel
   launch and memcpy it makes (the n-th of them, n = 0, 1, ... until the call no longer
   reaches one): the call returns VPPO_ERR_CUDA, vppo_cuda_error_string() names CUDA's
   error, no device allocation is left behind, the runtime's error state is clear, and the
   next call works. The asynchronous form has no allocation or copy to fail. */

static void inject(int kind, long n)
{
    vppo_emu_fail_alloc_after(kind == 0 ? n : -1);
    vppo_emu_fail_launch_after(kind == 1 ? n : -1);
    vppo_emu_fail_memcpy_after(kind == 2 ? n : -1);
}

/* The n-th operation of `kind` fails in f's call (mode 1: asynchronous on E); VPPO_OK when
   the call made fewer than n + 1 of them. */
static vppo_status injected_call(world *W, int f, int mode, const async_env *E, int kind, long n)
{
    static const char *const kinds[3] = { "allocation", "launch", "memcpy" };
    const cudaError_t codes[3] = { cudaErrorMemoryAllocation, cudaErrorLaunchFailure, cudaErrorUnknown };
    const async_env *e = mode ? E : NULL;
    const long live = vppo_emu_live_allocations();
    const char *msg;
    vppo_status st;
    inject(kind, n);
    st = world_call(W, f, NULL, e);
    inject(-1, -1);
    if (st == VPPO_OK) return mode ? async_env_status(E) : st;
    msg = vppo_cuda_error_string();
    CHECK_MSG(st == VPPO_ERR_CUDA, "%s (mode %d), %s %ld failing: %s instead of VPPO_ERR_CUDA", func_names[f], mode,
              kinds[kind], n, vppo_status_string(st));
    CHECK_MSG(msg && strstr(msg, cudaGetErrorString(codes[kind])), "%s (mode %d), %s %ld failing: message \"%s\" "
              "does not name \"%s\"", func_names[f], mode, kinds[kind], n, msg ? msg : "(null)",
              cudaGetErrorString(codes[kind]));
    CHECK_MSG(vppo_emu_live_allocations() == live, "%s (mode %d), %s %ld failing: %ld allocations left behind",
              func_names[f], mode, kinds[kind], n, vppo_emu_live_allocations() - live);
    CHECK_MSG(vppo_emu_check_canaries() == 0, "%s, %s %ld failing: canaries damaged", func_names[f], kinds[kind], n);
    CHECK_MSG(cudaPeekAtLastError() == cudaSuccess, "%s (mode %d), %s %ld failing: CUDA error state left set (%s)",
              func_names[f], mode, kinds[kind], n, cudaGetErrorString(cudaPeekAtLastError()));
    if (mode) CHECK_MSG(async_env_status(E) == (vppo_status)STATUS_UNWRITTEN, "%s: a failed call wrote its status",
                        func_names[f]);
    CHECK_MSG(world_call(W, f, NULL, e) == VPPO_OK && (!mode || async_env_status(E) == VPPO_OK),
              "%s (mode %d), %s %ld failing: the next call failed", func_names[f], mode, kinds[kind], n);
    return st;
}

void cuda_injected_failures_give_vppo_err_cuda_and_leave_nothing_behind(void)
{
    static const char *const kinds[3] = { "allocation", "launch", "memcpy" };
    world W = world_make(10103);
    async_env E = async_env_new(W.S.h.n_seqs, NULL);
    const long emu_errors = vppo_emu_error_count();
    int f, kind, mode;
    for (mode = 0; mode < 2; ++mode)
        for (f = 0; f < N_FUNCS; ++f)
            for (kind = 0; kind < 3; ++kind) {
                long n, failures = 0;
                vppo_status st = VPPO_ERR_CUDA;
                for (n = 0; n < 100 && st != VPPO_OK; ++n)
                    if ((st = injected_call(&W, f, mode, &E, kind, n)) != VPPO_OK) ++failures;
                /* synchronous: every call takes scratch, launches and copies its status back;
                   asynchronous: it launches only */
                if (mode == 0 || kind == 1)
                    CHECK_MSG(failures > 0, "%s (mode %d): no %s to fail", func_names[f], mode, kinds[kind]);
                else
                    CHECK_MSG(failures == 0, "%s: the asynchronous call made a failing %s", func_names[f], kinds[kind]);
                CHECK_MSG(st == VPPO_OK, "%s: still failing after %ld injected %s failures", func_names[f], n,
                          kinds[kind]);
            }
    CHECK_EQ_INT(emu_errors, vppo_emu_error_count());   /* injected failures are not emulator errors */
    async_env_free(&E);
    world_free(&W);
}
#endif

/* ================================================================ rollout correction */

/* A rollout batch on both sides: offsets and mask (holes, empty sequences), the trainer's
   and the engine's log-probs (log-ratios ~ N(0, 0.6), a few past the +-20 clamp). */
typedef struct rc_world { test_batch b; float *lp, *lr; int64_t *d_off; uint8_t *d_mask; float *d_lp, *d_lr; } rc_world;

static rc_world rc_world_new(uint64_t seed, int64_t B, int64_t L)
{
    rc_world W;
    rng r = rng_make(seed);
    int64_t t;
    W.b = batch_make(&r, B, L, 0, 1);
    W.lp = floats_new(W.b.n, NAN);
    W.lr = floats_new(W.b.n, NAN);
    for (t = 0; t < W.b.n; ++t) {
        if (!W.b.mask[t]) continue;
        W.lr[t] = (float)-rng_range(&r, 0.01, 5);
        W.lp[t] = (float)(W.lr[t] + (rng_uniform(&r) < 0.02 ? 25.0 : 0.6 * rng_normal(&r)));
    }
    W.d_off = (int64_t *)dev_alloc((size_t)(B + 1) * sizeof(int64_t), 0);
    W.d_mask = (uint8_t *)dev_alloc((size_t)W.b.n, 0);
    W.d_lp = (float *)dev_alloc((size_t)W.b.n * sizeof(float), 0);
    W.d_lr = (float *)dev_alloc((size_t)W.b.n * sizeof(float), 0);
    dev_upload_to(W.d_off, W.b.offsets, (size_t)(B + 1) * sizeof(int64_t));
    dev_upload_to(W.d_mask, W.b.mask, (size_t)W.b.n);
    dev_upload_to(W.d_lp, W.lp, (size_t)W.b.n * sizeof(float));
    dev_upload_to(W.d_lr, W.lr, (size_t)W.b.n * sizeof(float));
    return W;
}

static void rc_world_free(rc_world *W)
{
    CUDA_MUST(cudaFree(W->d_off)); CUDA_MUST(cudaFree(W->d_mask));
    CUDA_MUST(cudaFree(W->d_lp)); CUDA_MUST(cudaFree(W->d_lr));
    free(W->lp); free(W->lr); batch_free(&W->b);
}

/* vppo_cuda_rollout_correction (sync) against vppo_rollout_correction on one config:
   keep exactly, weights and metrics within twice SPEC §12. Returns 1 when all agree. */
static int rc_compare(const vppo_rc_config *c, const rc_world *W)
{
    const int64_t n = W->b.n;
    vppo_seqs ds = { W->b.n_seqs, W->d_off, W->d_mask };
    float *w = floats_new(n, 7.0f), *gw = floats_new(n, 0);
    uint8_t *k = (uint8_t *)malloc((size_t)n), *gk = (uint8_t *)malloc((size_t)n);
    float *dw = (float *)dev_alloc((size_t)n * sizeof(float), 0x55);
    uint8_t *dk = (uint8_t *)dev_alloc((size_t)n, 0x55);
    vppo_rc_out o, g;
    int64_t t;
    int fails_before = test_failed_now;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(c, &W->b.s, W->lp, W->lr, w, k, &o));
    CHECK_STATUS(VPPO_OK, vppo_cuda_rollout_correction(c, &ds, W->d_lp, W->d_lr, dw, dk, &g, NULL));
    dev_download(gw, dw, (size_t)n * sizeof(float));
    dev_download(gk, dk, (size_t)n);
    for (t = 0; t < n; ++t) {
        CHECK_EQ_INT(k[t], gk[t]);
        CHECK_NEAR(w[t], gw[t], TWICE(TOL_TOKEN));
    }
    CHECK_EQ_INT(o.n_valid, g.n_valid); CHECK_EQ_INT(o.n_seqs_valid, g.n_seqs_valid); CHECK_EQ_INT(o.n_kept, g.n_kept);
    CHECK_NEAR(o.is_mean, g.is_mean, TWICE(TOL_SCALAR)); CHECK_NEAR(o.is_std, g.is_std, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.is_min, g.is_min, TWICE(TOL_SCALAR)); CHECK_NEAR(o.is_max, g.is_max, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.is_ess, g.is_ess, TWICE(TOL_SCALAR)); CHECK_NEAR(o.is_norm, g.is_norm, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.is_frac_high, g.is_frac_high, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.is_frac_low, g.is_frac_low, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.rs_mean, g.rs_mean, TWICE(TOL_SCALAR)); CHECK_NEAR(o.rs_min, g.rs_min, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.rs_max, g.rs_max, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.rs_frac_token, g.rs_frac_token, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.rs_frac_seq, g.rs_frac_seq, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.kl, g.kl, TWICE(TOL_SCALAR)); CHECK_NEAR(o.k3_kl, g.k3_kl, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.chi2_token, g.chi2_token, TWICE(TOL_SCALAR)); CHECK_NEAR(o.chi2_seq, g.chi2_seq, TWICE(TOL_SCALAR));
    CHECK_NEAR(o.log_ppl_diff, g.log_ppl_diff, TWICE(TOL_SCALAR));
    free(w); free(gw); free(k); free(gk);
    CUDA_MUST(cudaFree(dw)); CUDA_MUST(cudaFree(dk));
    return test_failed_now == fails_before;
}

/* Every IS mode and level with and without normalization, and every rejection kind and
   level, on a batch with holes and empty sequences (and one longer than a block). */
static void cuda_rollout_correction_matches_cpu_every_mode(void)
{
    rc_world W = rc_world_new(1805, 7, SIZE_EMU_REAL(300, 3000));
    int is, il, rk, rl, norm, bad = 0, n = 0;
    for (is = VPPO_RC_IS_NONE; is <= VPPO_RC_IS_MASK; ++is)
        for (il = VPPO_RC_TOKEN; il <= VPPO_RC_SEQ_MEAN; ++il)
            for (norm = 0; norm < 2; ++norm) {
                vppo_rc_config c = vppo_rc_config_default();
                c.is_mode = (vppo_rc_is)is; c.is_level = (vppo_rc_level)il; c.is_batch_normalize = norm;
                c.is_upper = il == VPPO_RC_TOKEN ? 1.6 : 1e3; c.is_lower = is == VPPO_RC_IS_MASK ? 0.5 : 0.0;
                bad += !rc_compare(&c, &W); ++n;
            }
    for (rk = VPPO_RC_RS_K1; rk <= VPPO_RC_RS_K3; ++rk)
        for (rl = VPPO_RC_TOKEN; rl <= VPPO_RC_SEQ_MAX; ++rl) {
            vppo_rc_config c = vppo_rc_config_default();
            if (rk == VPPO_RC_RS_K1 && rl == VPPO_RC_SEQ_MAX) continue;
            c.rs_kind = (vppo_rc_rs)rk; c.rs_level = (vppo_rc_level)rl;
            c.rs_upper = rk == VPPO_RC_RS_K1 ? 1.5 : (rl == VPPO_RC_SEQ_SUM ? 60.0 : rl == VPPO_RC_SEQ_MAX ? 30.0 : 0.2);
            bad += !rc_compare(&c, &W); ++n;
        }
    CHECK_EQ_INT(0, bad);
    CHECK_EQ_INT(18 + 11, n);
    rc_world_free(&W);
}

/* The asynchronous form: the same bits as the synchronous one, metrics to device memory,
   data errors to the status word with the metrics untouched, host errors at once. */
static void cuda_rollout_correction_async_equals_sync_and_reports_errors(void)
{
    rc_world W = rc_world_new(1806, 5, 40);
    const int64_t n = W.b.n;
    vppo_seqs ds = { W.b.n_seqs, W.d_off, W.d_mask };
    vppo_rc_config c = vppo_rc_config_default();
    vppo_rc_out o, g, *d_out = (vppo_rc_out *)dev_alloc(sizeof(vppo_rc_out), 0);
    const size_t ws = vppo_cuda_workspace_size(W.b.n_seqs);
    vppo_cuda_launch L;
    int32_t *d_status = (int32_t *)dev_alloc(sizeof(int32_t), 0x7f), status = 0;
    float *dw = (float *)dev_alloc((size_t)n * sizeof(float), 0), *dw2 = (float *)dev_alloc((size_t)n * sizeof(float), 0);
    float *w = floats_new(n, 0), *w2 = floats_new(n, 0);
    c.is_level = VPPO_RC_SEQ_MEAN; c.is_batch_normalize = 1; c.rs_kind = VPPO_RC_RS_K3; c.rs_upper = 0.2;
    L.stream = NULL; L.workspace = dev_alloc(ws, 0); L.workspace_bytes = ws; L.status = d_status;
    CHECK_STATUS(VPPO_OK, vppo_cuda_rollout_correction(&c, &ds, W.d_lp, W.d_lr, dw, NULL, &o, NULL));
    CHECK_STATUS(VPPO_OK, vppo_cuda_rollout_correction_async(&c, &ds, W.d_lp, W.d_lr, dw2, NULL, d_out, &L));
    CUDA_MUST(cudaStreamSynchronize(NULL));
    dev_download(&status, d_status, sizeof status);
    dev_download(&g, d_out, sizeof g);
    dev_download(w, dw, (size_t)n * sizeof(float));
    dev_download(w2, dw2, (size_t)n * sizeof(float));
    CHECK_EQ_INT(VPPO_OK, status);
    CHECK(memcmp(&o, &g, sizeof o) == 0);
    CHECK(memcmp(w, w2, (size_t)n * sizeof(float)) == 0);
    /* a NaN at a valid position: NONFINITE in both forms, the device metrics untouched */
    {
        int64_t t = 0;
        const float nan_value = NAN;
        vppo_rc_out before = g;
        while (!W.b.mask[t]) ++t;
        dev_upload_to(W.d_lr + t, &nan_value, sizeof nan_value);
        CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_cuda_rollout_correction(&c, &ds, W.d_lp, W.d_lr, dw, NULL, &o, NULL));
        CHECK_STATUS(VPPO_OK, vppo_cuda_rollout_correction_async(&c, &ds, W.d_lp, W.d_lr, dw2, NULL, d_out, &L));
        CUDA_MUST(cudaStreamSynchronize(NULL));
        dev_download(&status, d_status, sizeof status);
        dev_download(&g, d_out, sizeof g);
        CHECK_EQ_INT(VPPO_ERR_NONFINITE, status);
        CHECK(memcmp(&before, &g, sizeof g) == 0);
        dev_upload_to(W.d_lr + t, &W.lr[t], sizeof(float));
    }
    /* decreasing offsets on the device: SIZE */
    {
        const int64_t bad_off = W.b.offsets[2] + 1;
        dev_upload_to(W.d_off + 1, &bad_off, sizeof bad_off);
        CHECK_STATUS(VPPO_ERR_SIZE, vppo_cuda_rollout_correction(&c, &ds, W.d_lp, W.d_lr, dw, NULL, &o, NULL));
        dev_upload_to(W.d_off + 1, &W.b.offsets[1], sizeof(int64_t));
    }
    /* host errors, nothing enqueued: the status word keeps its value */
    {
        vppo_rc_config d = c;
        vppo_cuda_launch small = L;
        const int32_t sentinel = 0x7f7f7f7f;
        dev_upload_to(d_status, &sentinel, sizeof sentinel);
        d.is_upper = -1.0;
        CHECK_STATUS(VPPO_ERR_PARAM, vppo_cuda_rollout_correction(&d, &ds, W.d_lp, W.d_lr, dw, NULL, &o, NULL));
        CHECK_STATUS(VPPO_ERR_PARAM, vppo_cuda_rollout_correction_async(&d, &ds, W.d_lp, W.d_lr, dw, NULL, d_out, &L));
        CHECK_STATUS(VPPO_ERR_NULL, vppo_cuda_rollout_correction(&c, &ds, NULL, W.d_lr, dw, NULL, &o, NULL));
        CHECK_STATUS(VPPO_ERR_NULL, vppo_cuda_rollout_correction_async(&c, &ds, W.d_lp, W.d_lr, dw, NULL, NULL, &L));
        CHECK_STATUS(VPPO_ERR_NULL, vppo_cuda_rollout_correction(NULL, &ds, W.d_lp, W.d_lr, dw, NULL, &o, NULL));
        small.workspace_bytes = ws - 1;
        CHECK_STATUS(VPPO_ERR_WORKSPACE, vppo_cuda_rollout_correction_async(&c, &ds, W.d_lp, W.d_lr, dw, NULL, d_out,
                                                                            &small));
        CUDA_MUST(cudaStreamSynchronize(NULL));
        dev_download(&status, d_status, sizeof status);
        CHECK_EQ_INT(sentinel, status);
    }
    free(w); free(w2);
    CUDA_MUST(cudaFree(dw)); CUDA_MUST(cudaFree(dw2)); CUDA_MUST(cudaFree(d_out)); CUDA_MUST(cudaFree(d_status));
    CUDA_MUST(cudaFree(L.workspace));
    rc_world_free(&W);
}

/* ================================================================ runner */

static const test_entry tests[] = {
#define T(name) { #name, name },
    T(cuda_error_string_is_empty_before_any_failure)   /* first: nothing has failed yet */
    /* §2 */
    T(cuda_dependency_sampled_matches_cpu_on_every_layout)
    T(cuda_dependency_logits_every_vocab_dtype_stride_and_alignment)
    T(cuda_dependency_logits_identical_rows_give_zero)
    T(cuda_dependency_logits_nearly_identical_rows_are_never_negative)
    T(cuda_dependency_logits_kl_is_infinite_exactly_when_q_vanishes)
    T(cuda_dependency_logits_exact_and_raising_rows_match_float64)
    T(cuda_logprobs_dtype_conversions_are_exact)
    T(cuda_logprobs_every_vocab_dtype_stride_and_output_subset)
    T(cuda_logprobs_long_exact_and_raising_rows_match_float64)
    T(cuda_logprobs_backward_matches_float64_formula)
    T(cuda_logprobs_backward_in_place_gives_the_out_of_place_bits)
    T(cuda_logprobs_backward_recomputed_long_and_exact_rows)
    /* §3 */
    T(cuda_patch_rows_bit_exact_and_gaps_kept)
    /* §6 */
    T(cuda_topk_mask_exact_for_every_length_tie_and_ratio)
    T(cuda_topk_mask_exact_on_a_40000_token_sequence)
    T(cuda_soft_mask_matches_float64_bisection)
    T(cuda_topk_mask_exact_at_the_shared_memory_limit)
    T(cuda_soft_mask_edge_cases_and_repeatable_bits)
#ifdef VPPO_CUDA_EMULATE
    T(cuda_soft_mask_root_steps_bounded_on_hard_inputs)
    T(cuda_per_sequence_kernels_with_several_sequences_per_block)
#endif
    /* §7, §8 */
    T(cuda_policy_loss_matches_cpu_over_the_config_matrix)
    T(cuda_prepare_matches_cpu_stage_by_stage)
    T(cuda_step_matches_cpu)
    T(cuda_rollout_correction_matches_cpu_every_mode)
    T(cuda_rollout_correction_async_equals_sync_and_reports_errors)
    /* argument checks */
    T(cuda_dependency_sampled_rejects_bad_input)
    T(cuda_logits_functions_reject_bad_matrices)
    T(cuda_logits_functions_reject_bad_arguments)
    T(cuda_misaligned_device_pointers_are_param_errors)
    T(cuda_patch_rows_rejects_bad_input)
    T(cuda_masks_reject_bad_input)
    T(cuda_policy_loss_rejects_bad_input)
    T(cuda_prepare_and_step_reject_bad_input)
    /* every function: again, on a stream, failing */
    T(cuda_fuzz_found_edge_cases_match_the_cpu)
    T(cuda_every_function_repeats_bit_for_bit)
    T(cuda_every_function_runs_on_a_created_stream)
    T(cuda_a_pending_caller_error_is_not_reported_as_ours)
    /* asynchronous mode */
    T(cuda_async_equals_sync_bit_for_bit_without_host_work)
    T(cuda_async_calls_captured_in_a_graph_replay_the_same_bits)
    T(cuda_async_data_errors_reach_the_status_word_and_the_stream_goes_on)
    T(cuda_async_rejects_a_bad_launch_with_nothing_enqueued)
#ifdef VPPO_CUDA_EMULATE
    T(cuda_injected_failures_give_vppo_err_cuda_and_leave_nothing_behind)
#endif
#undef T
};

/* After every test: (emulated) no device allocation left and every canary intact; the
   device idle with no CUDA error pending. */
#ifdef VPPO_CUDA_EMULATE
static long live_before_test;
#endif

static void after_each_test(void)
{
    cudaError_t e;
#ifdef VPPO_CUDA_EMULATE
    CHECK_MSG(vppo_emu_live_allocations() == live_before_test, "%ld device allocations left behind",
              vppo_emu_live_allocations() - live_before_test);
    CHECK_MSG(vppo_emu_check_canaries() == 0, "canaries of live device allocations damaged");
    live_before_test = vppo_emu_live_allocations();   /* one leak is reported once */
#endif
    e = cudaDeviceSynchronize();
    if (e == cudaSuccess) e = cudaGetLastError();
    CHECK_MSG(e == cudaSuccess, "CUDA error state after the test: %s", cudaGetErrorString(e));
}

int main(int argc, char **argv)
{
    int n_dev = 0;
    if (cudaGetDeviceCount(&n_dev) != cudaSuccess || n_dev < 1) {
        printf("no CUDA device: the CUDA suite did not run\n");
        return 2;
    }
#ifdef VPPO_CUDA_EMULATE
    printf("vppo_cuda.h %d.%d.%d tests, on the CPU emulator of tests/cuda_emu\n", VPPO_VERSION_MAJOR,
           VPPO_VERSION_MINOR, VPPO_VERSION_PATCH);
    live_before_test = vppo_emu_live_allocations();
#else
    {
        cudaDeviceProp prop;
        CUDA_MUST(cudaGetDeviceProperties(&prop, 0));
        printf("vppo_cuda.h %d.%d.%d tests, on %s\n", VPPO_VERSION_MAJOR, VPPO_VERSION_MINOR, VPPO_VERSION_PATCH,
               prop.name);
    }
#endif
    return test_run(tests, sizeof tests / sizeof tests[0], argc > 1 ? argv[1] : NULL, after_each_test) ? 1 : 0;
}
