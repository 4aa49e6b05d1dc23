/* bench.c - benchmarks of vppo.h.
 *
 *   make bench                 build build/bench and run every table
 *   make bench-quick           tiny sizes, one repetition (a smoke test)
 *   make bench USE_OPENBLAS=1  with -DVPPO_USE_CBLAS -lopenblas
 *
 *   build/bench [--quick] [--only NAME]
 *       NAME: bandwidth, dep, logprobs, backward, topk, step, linear, gemm
 *
 * Tables:
 *   bandwidth  a read-once loop (XOR of 64-bit words, 8 independent accumulators) and
 *              memcpy over a large buffer: the memory bandwidth this machine reaches.
 *   dep        vppo_dependency_logits (KL, and JS in one row per V)
 *   logprobs   vppo_logprobs (ids + logp + lse + entropy; lse + entropy only)
 *   backward   vppo_logprobs_backward (lse and entropy given, dlogp and dentropy given;
 *              F32 out to a separate buffer, and in place)
 *   topk       vppo_topk_mask vs per-sequence qsort
 *   step       vppo_step (and its two halves) vs memcpy of its inputs
 *   onk        the step's estimator and loss passes alone, on every ISA, vs memcpy
 *   linear     the fused linear head (spec §9) vs materialised logits + the logits kernel
 *              (compile out with -DBENCH_NO_LINEAR)
 *   gemm       the head's built-in GEMM vs OpenBLAS sgemm (dlopen), 1 thread (bench_gemm.h)
 *
 * Every time is the median of the repetitions after one warm-up call. The logits
 * kernels are compared with (a) the read-once loop over the same bytes, run on the same
 * buffers just before, with the same thread count, and (b) a careful three-pass scalar
 * reference in plain C (f32, libm expf/logf: row max, sum of exp, then the quantity).
 */
#define _POSIX_C_SOURCE 200809L
#define VPPO_IMPLEMENTATION
#include "../vppo.h"
#include "bench_common.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#define PARALLEL_FOR _Pragma("omp parallel for schedule(static)")   /* rows split over threads */
#else
#define PARALLEL_FOR
#endif
#ifdef VPPO_USE_CBLAS
#include <cblas.h>
#endif

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define BENCH_X86 1
#endif

/* ================================================================ options == */

static int g_quick = 0;
static const char *g_only = NULL;
static int g_reps = 5;          /* timed repetitions (after one warm-up) */
static int g_reps_scalar = 3;   /* the scalar ISA is a slow double-precision path */
static int g_warm = 1;
static int g_threads[2] = { 1, 2 };
static int g_nthreads = 1;      /* entries of g_threads in use */
static int g_max_threads = 1;
static volatile uint64_t g_sink;  /* keeps the read loops alive */

static int want(const char *name) { return !g_only || strcmp(g_only, name) == 0; }

/* ================================================================ helpers == */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t bytes) { return bench_alloc("bench", bytes); }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void set_threads(int t)
{
#ifdef _OPENMP
    omp_set_num_threads(t);
#else
    (void)t;
#endif
}

typedef void (*bench_fn)(void *ctx);

/* Median seconds of `reps` calls of fn after `warm` untimed ones; prep (optional) runs
   untimed before every call (e.g. to restore an in-place buffer). */
static double time_median(bench_fn fn, bench_fn prep, void *ctx, int reps, int warm)
{
    double t[64];
    int i;
    if (reps > 64) reps = 64;
    if (reps < 1) reps = 1;
    for (i = 0; i < warm; ++i) {
        if (prep) prep(ctx);
        fn(ctx);
    }
    for (i = 0; i < reps; ++i) {
        double t0;
        if (prep) prep(ctx);
        t0 = now_s();
        fn(ctx);
        t[i] = now_s() - t0;
    }
    return median(t, reps);
}

/* --- random numbers (splitmix64; approximately normal = Irwin-Hall of 4 uniforms) --- */

static uint64_t g_rng = 0x243F6A8885A308D3ull;

static uint64_t rng_u64(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_unif(void) { return (float)(rng_u64() >> 40) * (1.0f / 16777216.0f); } /* [0,1) */

static float rng_normal(void)
{
    float s = rng_unif() + rng_unif() + rng_unif() + rng_unif();
    return (s - 2.0f) * 1.7320508f;   /* mean 0, variance 1 */
}

/* --- bf16 --- */

static uint16_t f32_to_bf16(float f)   /* round to nearest even; the data has no NaN */
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ======================================================= read-once loop == */

/* XOR of the 64-bit words: eight independent accumulators, integer (the compiler may
   vectorise it), so the loop is limited by memory, not by an add latency chain. */
static uint64_t read_words(const void *p, size_t bytes)
{
    const uint64_t *w = (const uint64_t *)p;
    size_t n = bytes / 8, i;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (i = 0; i + 8 <= n; i += 8) {
        a0 ^= w[i];     a1 ^= w[i + 1]; a2 ^= w[i + 2]; a3 ^= w[i + 3];
        a4 ^= w[i + 4]; a5 ^= w[i + 5]; a6 ^= w[i + 6]; a7 ^= w[i + 7];
    }
    for (; i < n; ++i) a0 ^= w[i];
    if (bytes % 8) {
        const unsigned char *c = (const unsigned char *)p + n * 8;
        size_t j;
        for (j = 0; j < bytes % 8; ++j) a1 ^= c[j];
    }
    return a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
}

#define READ_CHUNK ((size_t)1 << 20)   /* threads split a buffer into 1 MiB chunks */

static uint64_t read_buffer(const void *p, size_t bytes, int threads)
{
#ifdef _OPENMP
    if (threads > 1) {
        uint64_t x = 0;
        int64_t c, nc = (int64_t)((bytes + READ_CHUNK - 1) / READ_CHUNK);
#pragma omp parallel for schedule(static) num_threads(threads) reduction(^:x)
        for (c = 0; c < nc; ++c) {
            size_t off = (size_t)c * READ_CHUNK;
            size_t len = bytes - off < READ_CHUNK ? bytes - off : READ_CHUNK;
            x ^= read_words((const char *)p + off, len);
        }
        return x;
    }
#else
    (void)threads;
#endif
    return read_words(p, bytes);
}

typedef struct span { const void *p; size_t bytes; } span;

typedef struct read_ctx { const span *s; int n; int threads; } read_ctx;

static void read_run(void *v)
{
    const read_ctx *c = (const read_ctx *)v;
    uint64_t x = 0;
    int i;
    for (i = 0; i < c->n; ++i) x ^= read_buffer(c->s[i].p, c->s[i].bytes, c->threads);
    g_sink ^= x;
}

/* Median seconds of reading every span once, with `threads` threads. */
static double time_read(const span *s, int n, int threads)
{
    read_ctx c;
    c.s = s; c.n = n; c.threads = threads;
    return time_median(read_run, NULL, &c, g_reps, g_warm);
}

typedef struct copy_ctx { void *dst; const void *src; size_t bytes; int threads; } copy_ctx;

static void copy_run(void *v)
{
    const copy_ctx *c = (const copy_ctx *)v;
#ifdef _OPENMP
    if (c->threads > 1) {
        int64_t k, nc = (int64_t)((c->bytes + READ_CHUNK - 1) / READ_CHUNK);
#pragma omp parallel for schedule(static) num_threads(c->threads)
        for (k = 0; k < nc; ++k) {
            size_t off = (size_t)k * READ_CHUNK;
            size_t len = c->bytes - off < READ_CHUNK ? c->bytes - off : READ_CHUNK;
            memcpy((char *)c->dst + off, (const char *)c->src + off, len);
        }
        return;
    }
#endif
    memcpy(c->dst, c->src, c->bytes);
}

/* ================================================================ header == */

static void cpu_model(char *out, size_t cap)
{
    static const char *keys[] = { "model name", "Hardware", "Processor", "cpu model" };
    char line[512];
    size_t k;
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(out, cap, "unknown");
    if (!f) return;
    for (k = 0; k < sizeof keys / sizeof keys[0]; ++k) {
        rewind(f);
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, keys[k], strlen(keys[k])) == 0) {
                char *c = strchr(line, ':');
                size_t len;
                if (!c) continue;
                ++c;
                while (*c == ' ' || *c == '\t') ++c;
                len = strlen(c);
                while (len && (c[len - 1] == '\n' || c[len - 1] == ' ')) c[--len] = 0;
                snprintf(out, cap, "%s", c);
                fclose(f);
                return;
            }
        }
    }
    fclose(f);
}

static vppo_isa g_isas[8];
static int g_nisas = 0;
static vppo_isa g_default_isa;

static void header(void)
{
    char cpu[256];
    int i;
    cpu_model(cpu, sizeof cpu);
    g_default_isa = vppo_isa_active();
    for (i = (int)VPPO_ISA_SCALAR; i <= (int)VPPO_ISA_NEON; ++i)
        if (vppo_isa_select((vppo_isa)i) == VPPO_OK) g_isas[g_nisas++] = (vppo_isa)i;
    vppo_isa_select(g_default_isa);

    printf("# vppo.h %d.%d.%d benchmarks%s\n\n", VPPO_VERSION_MAJOR, VPPO_VERSION_MINOR,
           VPPO_VERSION_PATCH, g_quick ? " (--quick: tiny sizes, 1 repetition, no warm-up)" : "");
    printf("cpu:            %s\n", cpu);
    {
        FILE *f = fopen("/proc/loadavg", "r");
        double l1;
        if (f) {
            if (fscanf(f, "%lf", &l1) == 1)
                printf("load average:   %.2f (1 min; other work on the machine makes the 2-thread rows noisy)\n", l1);
            fclose(f);
        }
    }
#ifdef __VERSION__
    printf("compiler:       %s\n", __VERSION__);
#endif
    printf("default ISA:    %s\n", vppo_isa_name(g_default_isa));
    printf("supported ISAs:");
    for (i = 0; i < g_nisas; ++i) printf(" %s", vppo_isa_name(g_isas[i]));
    printf("\n");
#ifdef _OPENMP
    printf("OpenMP:         yes (_OPENMP %d), %d processors, omp_get_max_threads() %d\n",
           (int)_OPENMP, omp_get_num_procs(), g_max_threads);
#else
    printf("OpenMP:         no (built without -fopenmp: 1 thread)\n");
#endif
    printf("thread counts:  ");
    for (i = 0; i < g_nthreads; ++i) printf("%s%d", i ? ", " : "", g_threads[i]);
    printf("\n");
#ifdef VPPO_USE_CBLAS
    printf("VPPO_USE_CBLAS: defined (cblas_sgemm for the linear head and its baseline)\n");
#else
    printf("VPPO_USE_CBLAS: not defined\n");
#endif
    printf("timing:         median of %d repetitions after %d warm-up call%s (scalar ISA: %d\n"
           "                repetitions; three-pass references and qsort: %d; linear head: %d, 1 at the larger V,\n"
           "                no warm-up)\n",
           g_reps, g_warm, g_warm == 1 ? "" : "s", g_reps_scalar, g_quick ? 1 : 3, g_quick ? 1 : 3);
    printf("\n");
}

/* ============================================================= bandwidth == */

static double g_read_gbs[2];   /* per g_threads entry, from the bandwidth table */

static void bench_bandwidth(void)
{
    size_t bytes = g_quick ? ((size_t)8 << 20) : ((size_t)512 << 20);
    unsigned char *a = (unsigned char *)xmalloc(bytes), *b = (unsigned char *)xmalloc(bytes);
    int ti;
    memset(a, 0x5A, bytes);   /* touch every page: untouched pages read as the zero page */
    memset(b, 0xA5, bytes);

    printf("## Memory bandwidth (%.0f MiB buffers)\n\n", (double)bytes / 1048576.0);
    printf("read: XOR-reduce of 64-bit words, 8 independent accumulators, each byte read once.\n");
    printf("memcpy: GB/s counts the bytes copied once (the memory traffic is 2-3x that).\n\n");
    printf("| loop   | threads |       ms |     GB/s |\n");
    printf("|--------|--------:|---------:|---------:|\n");
    for (ti = 0; ti < g_nthreads; ++ti) {
        span s;
        double t;
        s.p = a; s.bytes = bytes;
        t = time_read(&s, 1, g_threads[ti]);
        g_read_gbs[ti] = (double)bytes / t * 1e-9;
        printf("| read   | %7d | %8.2f | %8.2f |\n", g_threads[ti], t * 1e3, g_read_gbs[ti]);
    }
    for (ti = 0; ti < g_nthreads; ++ti) {
        copy_ctx c;
        double t;
        c.dst = b; c.src = a; c.bytes = bytes; c.threads = g_threads[ti];
        t = time_median(copy_run, NULL, &c, g_reps, g_warm);
        printf("| memcpy | %7d | %8.2f | %8.2f |\n", g_threads[ti], t * 1e3, (double)bytes / t * 1e-9);
    }
    printf("\n");
    free(a);
    free(b);
}

/* ================================================== three-pass references == */

/* Plain C, f32 element math with libm expf/logf (sums accumulated in double, so that
   the max|err| column shows the kernel's error rather than the reference's), one
   thread, bf16 converted on the fly. Pass 1: row max; pass 2: sum of expf; pass 3: the
   quantity. */

static float elem(const void *row, int bf16, int64_t i)
{
    return bf16 ? bf16_to_f32(((const uint16_t *)row)[i]) : ((const float *)row)[i];
}

static const void *row_ptr(const vppo_logits *x, int64_t r)
{
    size_t es = x->dtype == VPPO_F32 ? 4 : 2;
    return (const char *)x->data + (size_t)r * (size_t)x->row_stride * es;
}

static float ref_row_max(const void *row, int bf16, int64_t V, float invT)
{
    float m = -INFINITY;
    int64_t i;
    for (i = 0; i < V; ++i) {
        float u = elem(row, bf16, i) * invT;
        if (u > m) m = u;
    }
    return m;
}

static double ref_row_sumexp(const void *row, int bf16, int64_t V, float invT, float m)
{
    double s = 0.0;
    int64_t i;
    for (i = 0; i < V; ++i) s += expf(elem(row, bf16, i) * invT - m);
    return s;
}

/* Row r of x after passes 1 and 2: where it is, and its lse. */
typedef struct ref_row { const void *p; int bf16; int64_t V; float invT, lse; } ref_row;

static ref_row ref_row_open(const vppo_logits *x, int64_t r)
{
    ref_row a;
    float m;
    a.p = row_ptr(x, r); a.bf16 = x->dtype == VPPO_BF16; a.V = x->vocab; a.invT = 1.0f / x->temperature;
    m = ref_row_max(a.p, a.bf16, a.V, a.invT);
    a.lse = m + (float)log(ref_row_sumexp(a.p, a.bf16, a.V, a.invT, m));
    return a;
}

static float ref_logp(const ref_row *a, int64_t i) { return elem(a->p, a->bf16, i) * a->invT - a->lse; }

/* The term of entry i in KL(P || Q) and in JS(P, Q), from its two log-probabilities. */
static double kl_term(float lp, float lq)
{
    float p = expf(lp);
    return p > 0.0f ? p * (lp - lq) : 0.0;
}

static double js_term(float lp, float lq)
{
    float p = expf(lp), q = expf(lq), m = 0.5f * (p + q), lm;
    double t = 0.0;
    if (!(m > 0.0f)) return 0.0;
    lm = logf(m);
    if (p > 0.0f) t += 0.5f * p * (lp - lm);
    if (q > 0.0f) t += 0.5f * q * (lq - lm);
    return t;
}

/* dep[r] = KL(P || Q), or JS(P, Q) when js (pass 3: the sum of the terms) */
static void ref_divergence(const vppo_logits *x, const vppo_logits *y, int js, float *dep)
{
    int64_t r, i;
    for (r = 0; r < x->n_rows; ++r) {
        const ref_row a = ref_row_open(x, r), b = ref_row_open(y, r);
        double sum = 0.0;
        for (i = 0; i < a.V; ++i) {
            float lp = ref_logp(&a, i), lq = ref_logp(&b, i);
            sum += js ? js_term(lp, lq) : kl_term(lp, lq);
        }
        dep[r] = sum > 0.0 ? (float)sum : 0.0f;
    }
}

/* lse, entropy, logp */
static void ref_logprobs(const vppo_logits *x, const int32_t *ids, float *logp, float *lse, float *ent)
{
    int64_t r, i;
    for (r = 0; r < x->n_rows; ++r) {
        const ref_row a = ref_row_open(x, r);
        double h = 0.0;
        for (i = 0; i < a.V; ++i) {
            float lp = ref_logp(&a, i), p = expf(lp);
            if (p > 0.0f) h -= p * lp;
        }
        lse[r] = a.lse;
        ent[r] = (float)h;
        logp[r] = ref_logp(&a, ids[r]);
    }
}

/* F32 gradient rows [n_rows, vocab]; lse and entropy are recomputed (pass 2 also sums
   e * (u - m), which gives the entropy without a fourth pass). */
static void ref_backward(const vppo_logits *x, const int32_t *ids, const float *dlogp,
                         const float *dent, float *grad)
{
    int64_t r, i, V = x->vocab;
    int bx = x->dtype == VPPO_BF16;
    float ix = 1.0f / x->temperature;
    for (r = 0; r < x->n_rows; ++r) {
        const void *a = row_ptr(x, r);
        float *g = grad + (size_t)r * (size_t)V;
        float m = ref_row_max(a, bx, V, ix), ls, H, gr = dlogp[r], hr = dent[r];
        double s = 0.0, t = 0.0;
        for (i = 0; i < V; ++i) {
            float um = elem(a, bx, i) * ix - m, e = expf(um);
            s += e;
            t += e * um;
        }
        ls = (float)log(s);
        H = (float)(log(s) - t / s);
        for (i = 0; i < V; ++i) {
            float lp = elem(a, bx, i) * ix - m - ls, p = expf(lp);
            g[i] = ix * (-gr * p - hr * p * (lp + H));
        }
        g[ids[r]] += ix * gr;
    }
}

/* ===================================================== logits kernel tables == */

enum { K_KL, K_JS, K_LP_FULL, K_LP_LSE, K_BW_SEP, K_BW_INPLACE, K_COUNT };
static const char *k_names[] = { "dependency KL", "dependency JS", "logprobs ids+logp+lse+H",
                                 "logprobs lse+H", "backward -> F32 buffer", "backward in place" };

typedef struct kctx {
    int kind;
    vppo_logits x, y;
    const int32_t *ids;
    float *o1, *o2, *o3;
    const float *lse, *ent, *dlogp, *dent;
    vppo_grad_out g;
    float *restore_dst;          /* in place: restored from restore_src before each call */
    const float *restore_src;
    size_t restore_bytes;
    vppo_status st;
} kctx;

static void k_run(void *v)
{
    kctx *c = (kctx *)v;
    vppo_status st = VPPO_OK;
    switch (c->kind) {
    case K_KL: st = vppo_dependency_logits(&c->x, &c->y, VPPO_DIV_KL, c->o1); break;
    case K_JS: st = vppo_dependency_logits(&c->x, &c->y, VPPO_DIV_JS, c->o1); break;
    case K_LP_FULL: st = vppo_logprobs(&c->x, c->ids, c->o1, c->o2, c->o3); break;
    case K_LP_LSE: st = vppo_logprobs(&c->x, NULL, NULL, c->o2, c->o3); break;
    case K_BW_SEP:
    case K_BW_INPLACE:
        st = vppo_logprobs_backward(&c->x, c->ids, c->lse, c->ent, c->dlogp, c->dent, &c->g);
        break;
    }
    if (st != VPPO_OK && c->st == VPPO_OK) c->st = st;
}

static void k_restore(void *v)
{
    kctx *c = (kctx *)v;
    if (c->restore_dst) memcpy(c->restore_dst, c->restore_src, c->restore_bytes);
}

typedef struct ref_ctx {
    int kind;
    const vppo_logits *x, *y;
    const int32_t *ids;
    const float *dlogp, *dent;
    float *o1, *o2, *o3, *grad;
} ref_ctx;

static void ref_run(void *v)
{
    ref_ctx *c = (ref_ctx *)v;
    switch (c->kind) {
    case K_KL: ref_divergence(c->x, c->y, 0, c->o1); break;
    case K_JS: ref_divergence(c->x, c->y, 1, c->o1); break;
    case K_LP_FULL: case K_LP_LSE: ref_logprobs(c->x, c->ids, c->o1, c->o2, c->o3); break;
    default: ref_backward(c->x, c->ids, c->dlogp, c->dent, c->grad); break;
    }
}

/* The data of one vocabulary size. */
typedef struct ldata {
    int64_t n, V;
    float *o32, *a32;            /* orig, aug: f32 */
    uint16_t *o16, *a16;         /* the same values rounded to bf16 */
    int32_t *ids;
    float *dlogp, *dent;
    float *lse, *ent;            /* vppo_logprobs of orig (per dtype, refreshed) */
    float *out1, *out2, *out3;   /* kernel outputs [n] */
    float *ref1, *ref2, *ref3;   /* reference outputs [n] */
    float *gout, *scratch, *gref;   /* [n, V] f32 */
} ldata;

static void ldata_init(ldata *L, int64_t n, int64_t V)
{
    size_t nv = (size_t)n * (size_t)V, i;
    int64_t r;
    memset(L, 0, sizeof *L);
    L->n = n; L->V = V;
    L->o32 = (float *)xmalloc(nv * 4);
    L->a32 = (float *)xmalloc(nv * 4);
    L->o16 = (uint16_t *)xmalloc(nv * 2);
    L->a16 = (uint16_t *)xmalloc(nv * 2);
    for (i = 0; i < nv; ++i) {
        float z = 3.0f * rng_normal();               /* logits ~ N(0, 3^2) */
        float w = z + 0.1f * rng_normal();           /* aug = orig + small noise */
        L->o32[i] = z; L->a32[i] = w;
        L->o16[i] = f32_to_bf16(z); L->a16[i] = f32_to_bf16(w);
    }
    L->ids = (int32_t *)xmalloc((size_t)n * 4);
    L->dlogp = (float *)xmalloc((size_t)n * 4);
    L->dent = (float *)xmalloc((size_t)n * 4);
    L->lse = (float *)xmalloc((size_t)n * 4);
    L->ent = (float *)xmalloc((size_t)n * 4);
    L->out1 = (float *)xmalloc((size_t)n * 4);
    L->out2 = (float *)xmalloc((size_t)n * 4);
    L->out3 = (float *)xmalloc((size_t)n * 4);
    L->ref1 = (float *)xmalloc((size_t)n * 4);
    L->ref2 = (float *)xmalloc((size_t)n * 4);
    L->ref3 = (float *)xmalloc((size_t)n * 4);
    for (r = 0; r < n; ++r) {
        L->ids[r] = (int32_t)(rng_u64() % (uint64_t)V);
        L->dlogp[r] = rng_normal();
        L->dent[r] = 0.06f * rng_normal();
    }
}

static void ldata_grad_buffers(ldata *L)
{
    size_t nv = (size_t)L->n * (size_t)L->V;
    if (L->gout) return;
    L->gout = (float *)xmalloc(nv * 4);
    L->scratch = (float *)xmalloc(nv * 4);
    L->gref = (float *)xmalloc(nv * 4);
    memset(L->gout, 0, nv * 4);
    memcpy(L->scratch, L->o32, nv * 4);
    memset(L->gref, 0, nv * 4);
}

static void ldata_free(ldata *L)
{
    free(L->o32); free(L->a32); free(L->o16); free(L->a16); free(L->ids); free(L->dlogp);
    free(L->dent); free(L->lse); free(L->ent); free(L->out1); free(L->out2); free(L->out3);
    free(L->ref1); free(L->ref2); free(L->ref3); free(L->gout); free(L->scratch); free(L->gref);
    memset(L, 0, sizeof *L);
}

static vppo_logits mk_logits(const void *data, vppo_dtype dt, int64_t n, int64_t V)
{
    vppo_logits x;
    x.data = data; x.dtype = dt; x.n_rows = n; x.vocab = V; x.row_stride = V; x.temperature = 1.0f;
    return x;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    size_t i;
    for (i = 0; i < n; ++i) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d;
    }
    return m;
}

static void table_head(const char *title)
{
    printf("## %s\n\n", title);
    printf("| kernel                   |      V | dtype | isa    | thr |       ms |   GB/s |      tok/s | x read | 3-pass/k |  max|err| |\n");
    printf("|--------------------------|-------:|-------|--------|----:|---------:|-------:|-----------:|-------:|---------:|----------:|\n");
}

static void table_units(void)
{
    printf("\nms: median wall time per call. GB/s: bytes the kernel must touch (inputs read once\n"
           "+ outputs written) / time. tok/s: rows per second. x read: time / time of the read-once\n"
           "loop over the same bytes and buffers, same thread count (1.0 = at memory speed).\n"
           "3-pass/k: time of the three-pass f32 C reference (1 thread) / kernel time.\n"
           "max|err|: largest |kernel - reference| over the outputs (the reference: f32 element\n"
           "math, double sums; a sanity check, not the spec §12 accuracy bound).\n\n");
}

/* Times the three-pass reference of `kind` (1 thread) and leaves its outputs in L->ref*
   (or L->gref). Returns seconds. */
static double run_ref(int kind, ldata *L, const vppo_logits *x, const vppo_logits *y)
{
    ref_ctx rc;
    int reps = g_quick ? 1 : 3;
    rc.kind = kind; rc.x = x; rc.y = y; rc.ids = L->ids; rc.dlogp = L->dlogp; rc.dent = L->dent;
    rc.o1 = L->ref1; rc.o2 = L->ref2; rc.o3 = L->ref3; rc.grad = L->gref;
    if (kind == K_LP_FULL || kind == K_LP_LSE) { rc.o1 = L->ref3; rc.o2 = L->ref1; rc.o3 = L->ref2; }
    return time_median(ref_run, NULL, &rc, reps, 0);
}

/* The rows the logits targets of issue 16 are read from: default ISA, largest V, per
   kernel, dtype (f32, bf16) and thread count (g_threads index). */
static int64_t g_vocabs[2];
static int64_t g_rows;

typedef struct krow { double t, t_read; int set; } krow;
static krow g_krow[K_COUNT][2][2];

/* The ratios of the targets' bf16 and thread columns, each from its own paired run
   (paired_ratio): f32 time / bf16 time, 1-thread time / 2-thread time; 0 when not run. */
static double g_pair_bf[K_COUNT], g_pair_th[K_COUNT];

/* The call of kernel `kind` on data L in dtype dt: its context c, the spans the read-once
   loop reads (sp, *nsp) and the bytes it must touch. */
static void kctx_make(int kind, ldata *L, vppo_dtype dt, kctx *c, span *sp, int *nsp_out, double *bytes_out)
{
    int64_t n = L->n, V = L->V;
    size_t es = dt == VPPO_F32 ? 4 : 2, nv = (size_t)n * (size_t)V;
    const void *od = dt == VPPO_F32 ? (const void *)L->o32 : (const void *)L->o16;
    const void *ad = dt == VPPO_F32 ? (const void *)L->a32 : (const void *)L->a16;
    double bytes = 0.0;
    int nsp = 0;
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->x = mk_logits(od, dt, n, V);
    c->y = mk_logits(ad, dt, n, V);
    c->ids = L->ids;
    c->o1 = L->out1; c->o2 = L->out2; c->o3 = L->out3;
    c->lse = L->lse; c->ent = L->ent; c->dlogp = L->dlogp; c->dent = L->dent;
    c->st = VPPO_OK;
    switch (kind) {
    case K_KL: case K_JS:
        sp[0].p = od; sp[0].bytes = nv * es; sp[1].p = ad; sp[1].bytes = nv * es; nsp = 2;
        bytes = 2.0 * (double)(nv * es) + 4.0 * (double)n;
        break;
    case K_LP_FULL:
        sp[0].p = od; sp[0].bytes = nv * es; nsp = 1;
        bytes = (double)(nv * es) + 16.0 * (double)n;
        break;
    case K_LP_LSE:
        sp[0].p = od; sp[0].bytes = nv * es; nsp = 1;
        bytes = (double)(nv * es) + 8.0 * (double)n;
        break;
    case K_BW_SEP:
        c->g.data = L->gout; c->g.dtype = VPPO_F32; c->g.row_stride = V;
        sp[0].p = od; sp[0].bytes = nv * es; sp[1].p = L->gout; sp[1].bytes = nv * 4; nsp = 2;
        bytes = (double)(nv * es) + 20.0 * (double)n + (double)(nv * 4);
        break;
    case K_BW_INPLACE:
        c->x = mk_logits(L->scratch, VPPO_F32, n, V);
        c->g.data = L->scratch; c->g.dtype = VPPO_F32; c->g.row_stride = V;
        c->restore_dst = L->scratch; c->restore_src = L->o32; c->restore_bytes = nv * 4;
        sp[0].p = L->scratch; sp[0].bytes = nv * 4; sp[1] = sp[0]; nsp = 2;
        bytes = 2.0 * (double)(nv * 4) + 20.0 * (double)n;
        break;
    }
    *nsp_out = nsp;
    *bytes_out = bytes;
}

/* med(a) / med(b) over reps calls of context a on thr_a threads and of b on thr_b, taken
   alternately (a, b, a, b, ...) after one warm-up call of each: both sides of the ratio
   see the same state of the machine (its memory speed moves between runs). */
static double paired_ratio(kctx *a, int thr_a, kctx *b, int thr_b, int reps)
{
    double ta[64], tb[64];
    int i;
    if (reps > 64) reps = 64;
    for (i = -1; i < reps; ++i) {
        double t0;
        set_threads(thr_a);
        if (a->restore_dst) k_restore(a);
        t0 = now_s();
        k_run(a);
        if (i >= 0) ta[i] = now_s() - t0;
        set_threads(thr_b);
        if (b->restore_dst) k_restore(b);
        t0 = now_s();
        k_run(b);
        if (i >= 0) tb[i] = now_s() - t0;
    }
    return median(ta, reps) / median(tb, reps);
}

/* One table row: kernel `kind` on data L, dtype dt, every ISA (or only the default) and
   thread count (or only 1). At the default ISA and the larger V it also takes the targets'
   paired ratios: bf16 against f32 (on the bf16 row), 2 threads against 1 (f32). */
static void run_rows(int kind, ldata *L, vppo_dtype dt, double t_ref, int all_isas, int all_threads)
{
    int64_t n = L->n, V = L->V;
    size_t nv = (size_t)n * (size_t)V;
    span sp[3];
    int nsp = 0, ii, ti;
    double bytes = 0.0;
    kctx c;

    kctx_make(kind, L, dt, &c, sp, &nsp, &bytes);
    for (ii = 0; ii < g_nisas; ++ii) {
        vppo_isa isa = g_isas[ii];
        if (!all_isas && isa != g_default_isa) continue;
        vppo_isa_select(isa);
        for (ti = 0; ti < g_nthreads; ++ti) {
            int thr = g_threads[ti];
            int reps = isa == VPPO_ISA_SCALAR ? g_reps_scalar : g_reps;
            double t, t_read, err = 0.0;
            if (!all_threads && ti > 0) break;
            set_threads(thr);
            c.st = VPPO_OK;
            if (kind == K_BW_INPLACE) k_restore(&c);
            t = time_median(k_run, kind == K_BW_INPLACE ? k_restore : NULL, &c, reps, g_warm);
            t_read = time_read(sp, nsp, thr);
            if (c.st != VPPO_OK) {
                printf("| %-24s | %6lld | %-5s | %-6s | %3d | error: %s |\n", k_names[kind], (long long)V,
                       dt == VPPO_F32 ? "f32" : "bf16", vppo_isa_name(isa), thr, vppo_status_string(c.st));
                continue;
            }
            switch (kind) {
            case K_KL: case K_JS: err = max_abs_diff(L->out1, L->ref1, (size_t)n); break;
            case K_LP_FULL:
                err = max_abs_diff(L->out1, L->ref3, (size_t)n);
                /* fall through */
            case K_LP_LSE: {
                double e2 = max_abs_diff(L->out2, L->ref1, (size_t)n), e3 = max_abs_diff(L->out3, L->ref2, (size_t)n);
                if (e2 > err) err = e2;
                if (e3 > err) err = e3;
                break;
            }
            case K_BW_SEP: err = max_abs_diff(L->gout, L->gref, nv); break;
            case K_BW_INPLACE: err = max_abs_diff(L->scratch, L->gref, nv); break;
            }
            if (isa == g_default_isa && V == g_vocabs[1]) {
                krow *k = &g_krow[kind][dt == VPPO_F32 ? 0 : 1][ti];
                const int pair_reps = g_quick ? 1 : 9;
                k->t = t; k->t_read = t_read; k->set = 1;
                if (dt != VPPO_F32 && ti == 0) {
                    kctx cf;
                    span spf[3];
                    int nspf;
                    double bf;
                    kctx_make(kind, L, VPPO_F32, &cf, spf, &nspf, &bf);
                    g_pair_bf[kind] = paired_ratio(&cf, thr, &c, thr, pair_reps);
                } else if (dt == VPPO_F32 && ti == 1) {
                    g_pair_th[kind] = paired_ratio(&c, g_threads[0], &c, thr, pair_reps);
                }
                set_threads(thr);
            }
            printf("| %-24s | %6lld | %-5s | %-6s | %3d | %8.2f | %6.2f | %10.0f | %6.2f | %8.2f | %9.2e |\n",
                   k_names[kind], (long long)V, dt == VPPO_F32 ? "f32" : "bf16", vppo_isa_name(isa), thr,
                   t * 1e3, bytes / t * 1e-9, (double)n / t, t / t_read, t_ref / t, err);
            fflush(stdout);
        }
    }
    vppo_isa_select(g_default_isa);
    set_threads(g_max_threads);
}

static ldata g_ld[2];
static int g_ld_ready = 0;

static void logits_data(void)
{
    int v;
    if (g_ld_ready) return;
    for (v = 0; v < 2; ++v) ldata_init(&g_ld[v], g_rows, g_vocabs[v]);
    g_ld_ready = 1;
}

/* One logits table: for both vocabularies and both dtypes, `cell` times its kernels on the
   original logits x (and the perturbed y); grads: the gradient buffers are needed. */
typedef void (*logits_cell)(ldata *L, vppo_dtype dt, const vppo_logits *x, const vppo_logits *y);

static void logits_table(const char *title, logits_cell cell, int grads)
{
    int v, d;
    logits_data();
    table_head(title);
    for (v = 0; v < 2; ++v) {
        ldata *L = &g_ld[v];
        if (grads) ldata_grad_buffers(L);
        for (d = 0; d < 2; ++d) {
            vppo_dtype dt = d ? VPPO_BF16 : VPPO_F32;
            vppo_logits x = mk_logits(d ? (const void *)L->o16 : (const void *)L->o32, dt, L->n, L->V);
            vppo_logits y = mk_logits(d ? (const void *)L->a16 : (const void *)L->a32, dt, L->n, L->V);
            cell(L, dt, &x, &y);
        }
    }
    table_units();
}

static void dep_cell(ldata *L, vppo_dtype dt, const vppo_logits *x, const vppo_logits *y)
{
    double t_ref = run_ref(K_KL, L, x, y);
    run_rows(K_KL, L, dt, t_ref, 1, 1);
    if (dt == VPPO_F32) {
        t_ref = run_ref(K_JS, L, x, y);
        run_rows(K_JS, L, dt, t_ref, 0, 0);
    }
}

static void logprobs_cell(ldata *L, vppo_dtype dt, const vppo_logits *x, const vppo_logits *y)
{
    double t_ref = run_ref(K_LP_FULL, L, x, NULL);
    (void)y;
    run_rows(K_LP_FULL, L, dt, t_ref, 1, 1);
    run_rows(K_LP_LSE, L, dt, t_ref, 1, 1);
}

static void backward_cell(ldata *L, vppo_dtype dt, const vppo_logits *x, const vppo_logits *y)
{
    double t_ref;
    vppo_status st = vppo_logprobs(x, NULL, NULL, L->lse, L->ent);
    (void)y;
    if (st != VPPO_OK) {
        printf("| vppo_logprobs failed: %s |\n", vppo_status_string(st));
        return;
    }
    t_ref = run_ref(K_BW_SEP, L, x, NULL);
    run_rows(K_BW_SEP, L, dt, t_ref, 1, 1);
    if (dt == VPPO_F32) run_rows(K_BW_INPLACE, L, dt, t_ref, 1, 1);
}

/* The targets as ratios of rows measured in this run; a row not measured prints "-". */
static void logits_targets(const int *kinds, int nk)
{
    static const double limit[K_COUNT] = { 1.8, 0.0, 1.6, 1.6, 0.0, 1.4 };
    int i;
    printf("Targets (issue 16; %s, V = %lld; x read from the rows above, the bf16 and thread ratios\n"
           "each from its own paired run: the two calls alternated, medians of 9 each):\n", vppo_isa_name(g_default_isa),
           (long long)g_vocabs[1]);
    printf("| kernel                   | x read, 1 thr | target | bf16/f32 tok/s | target | 2 thr/1 thr f32 | target |\n");
    printf("|--------------------------|--------------:|-------:|---------------:|-------:|----------------:|-------:|\n");
    for (i = 0; i < nk; ++i) {
        const krow *f = g_krow[kinds[i]][0];
        char xr[32] = "-", bf[32] = "-", th[32] = "-", lim[16] = "-";
        if (f[0].set) snprintf(xr, sizeof xr, "%.2f", f[0].t / f[0].t_read);
        if (g_pair_bf[kinds[i]] > 0.0) snprintf(bf, sizeof bf, "%.2f", g_pair_bf[kinds[i]]);
        if (g_pair_th[kinds[i]] > 0.0) snprintf(th, sizeof th, "%.2f", g_pair_th[kinds[i]]);
        if (limit[kinds[i]] > 0.0) snprintf(lim, sizeof lim, "<= %.1f", limit[kinds[i]]);
        printf("| %-24s | %13s | %6s | %14s | %6s | %15s | %6s |\n", k_names[kinds[i]], xr, lim, bf,
               kinds[i] == K_BW_INPLACE ? "-" : ">= 1.4", th, g_nthreads > 1 ? ">= 1.8" : "-");
    }
    printf("\n");
}

static void bench_dep(void)
{
    static const int kinds[] = { K_KL };
    logits_table("vppo_dependency_logits (KL(P||Q) per row; JS: f32, default ISA, 1 thread)", dep_cell, 0);
    logits_targets(kinds, 1);
}

static void bench_logprobs(void)
{
    static const int kinds[] = { K_LP_FULL, K_LP_LSE };
    logits_table("vppo_logprobs", logprobs_cell, 0);
    logits_targets(kinds, 2);
}

static void bench_backward(void)
{
    static const int kinds[] = { K_BW_SEP, K_BW_INPLACE };
    logits_table("vppo_logprobs_backward (lse, entropy, dlogp, dentropy given; F32 gradient)", backward_cell, 1);
    printf("The reference recomputes lse and the entropy (its pass 2 sums e and e*u); the kernel\n"
           "is given both. In place needs F32 logits, so it has f32 rows only; its bytes count the\n"
           "logits read and the gradient written over them.\n\n");
    logits_targets(kinds, 2);
}

/* ================================================================= top-k == */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

typedef struct topk_ctx {
    vppo_seqs s;
    const float *score;
    uint8_t *sel;
    float *tmp, *weight;
    int64_t len;
    vppo_status st;
} topk_ctx;

static void topk_vppo(void *v)
{
    topk_ctx *c = (topk_ctx *)v;
    vppo_status st = vppo_topk_mask(&c->s, c->score, 0.4, c->sel, NULL);
    if (st != VPPO_OK) c->st = st;
}

static void soft_vppo(void *v)
{
    topk_ctx *c = (topk_ctx *)v;
    vppo_status st = vppo_soft_mask(&c->s, c->score, 0.4, c->weight);
    if (st != VPPO_OK) c->st = st;
}

static void topk_ref(void *v)
{
    topk_ctx *c = (topk_ctx *)v;
    int64_t b, t, n = c->len;
    int64_t k = (int64_t)ceil(0.4 * (double)n - 1e-9);
    for (b = 0; b < c->s.n_seqs; ++b) {
        const float *x = c->score + b * n;
        uint8_t *sel = c->sel + b * n;
        float thr;
        memcpy(c->tmp, x, (size_t)n * sizeof *x);
        qsort(c->tmp, (size_t)n, sizeof *c->tmp, cmp_float);
        thr = k > 0 ? c->tmp[n - k] : INFINITY;
        for (t = 0; t < n; ++t) sel[t] = (uint8_t)(k > 0 && x[t] >= thr);
    }
}

/* The rows of one vppo call (fn on c) at every thread count: time, tokens/s, the qsort
   time over it, the 1-thread time over it, and (when sel_ref is given) the positions where
   c->sel differs from sel_ref. */
static void topk_rows(const char *name, bench_fn fn, topk_ctx *c, int64_t N, double t_ref, const uint8_t *sel_ref)
{
    double t1 = 0.0;
    int ti;
    for (ti = 0; ti < g_nthreads; ++ti) {
        char mism[32] = "-";
        double tv;
        int64_t t, m = 0;
        set_threads(g_threads[ti]);
        tv = time_median(fn, NULL, c, g_reps, g_warm);
        if (ti == 0) t1 = tv;
        if (sel_ref) {
            for (t = 0; t < N; ++t) m += (c->sel[t] != 0) != (sel_ref[t] != 0);
            snprintf(mism, sizeof mism, "%lld", (long long)m);
        }
        if (c->st != VPPO_OK)
            printf("| %-26s | %3d | error: %s |\n", name, g_threads[ti], vppo_status_string(c->st));
        else
            printf("| %-26s | %3d | %8.2f | %8.2f | %10.2f | %8.2f | %10s |\n", name, g_threads[ti], tv * 1e3,
                   (double)N / tv * 1e-6, t_ref / tv, t1 / tv, mism);
    }
    set_threads(g_max_threads);
}

static void bench_topk(void)
{
    int64_t B = g_quick ? 16 : 1024, Lq = g_quick ? 256 : 2048, N = B * Lq, t;
    int64_t *off = (int64_t *)xmalloc((size_t)(B + 1) * 8);
    float *score = (float *)xmalloc((size_t)N * 4), *tmp = (float *)xmalloc((size_t)Lq * 4);
    float *weight = (float *)xmalloc((size_t)N * 4);
    uint8_t *sel = (uint8_t *)xmalloc((size_t)N), *sel_ref = (uint8_t *)xmalloc((size_t)N);
    topk_ctx c;
    double t_ref;

    vppo_offsets_uniform(off, B, Lq);
    for (t = 0; t < N; ++t) {            /* K3-like dependencies: mostly small, a long tail */
        float u = rng_unif();
        score[t] = -logf(1.0f - u) * 0.05f;
    }
    c.s.n_seqs = B; c.s.offsets = off; c.s.mask = NULL;
    c.score = score; c.tmp = tmp; c.weight = weight; c.len = Lq; c.st = VPPO_OK;

    printf("## vppo_topk_mask, ratio 0.4, %lld sequences x %lld tokens\n\n", (long long)B, (long long)Lq);
    printf("| impl                       | thr |       ms |   Mtok/s | qsort/vppo | 1 thr/it | mismatches |\n");
    printf("|----------------------------|----:|---------:|---------:|-----------:|---------:|-----------:|\n");
    c.sel = sel_ref;
    t_ref = time_median(topk_ref, NULL, &c, g_quick ? 1 : 3, 0);
    printf("| per-sequence qsort (ref)   | %3d | %8.2f | %8.2f | %10.2f | %8s | %10s |\n", 1, t_ref * 1e3,
           (double)N / t_ref * 1e-6, 1.0, "-", "-");
    c.sel = sel;
    topk_rows("vppo_topk_mask", topk_vppo, &c, N, t_ref, sel_ref);
    topk_rows("vppo_soft_mask", soft_vppo, &c, N, t_ref, NULL);
    printf("\nms: median wall time per call. Mtok/s: scored tokens per second (millions).\n"
           "qsort/vppo: reference time / vppo time. 1 thr/it: the 1-thread time / this row's (the\n"
           "speed-up of the threads). mismatches: positions where the masks differ (the scores\n"
           "have no ties, so the two must agree exactly). vppo_soft_mask: the soft filter on the\n"
           "same scores and ratio, timed against the same qsort.\n\n");
    free(off); free(score); free(tmp); free(weight); free(sel); free(sel_ref);
}

/* ================================================================== step == */

typedef struct step_ctx {
    int what;   /* 0 step, 1 prepare, 2 policy_loss, 3 top-k of prepare's dep, 4 memcpy of the inputs */
    vppo_config cfg;
    vppo_seqs s;
    const float *logp, *logp_old, *logp_aug, *adv_seq;
    const int64_t *off;
    int64_t B, N;
    vppo_prepared p;
    float *dlogp;
    vppo_loss_out out;
    unsigned char *copy_dst;
    vppo_status st;
} step_ctx;

static void step_run(void *v)
{
    step_ctx *c = (step_ctx *)v;
    vppo_status st = VPPO_OK;
    unsigned char *d = c->copy_dst;
    size_t nb = (size_t)c->N * 4;
    switch (c->what) {
    case 0:
        st = vppo_step(&c->cfg, &c->s, c->logp, c->logp_old, c->logp_aug, NULL, c->adv_seq, &c->p,
                       c->dlogp, &c->out);
        break;
    case 1:
        st = vppo_prepare(&c->cfg, &c->s, c->logp_old, c->logp_aug, NULL, c->adv_seq, NULL, &c->p);
        break;
    case 2:
        st = vppo_policy_loss(&c->cfg.loss, &c->s, c->logp, c->logp_old, NULL, c->p.adv, c->p.select,
                              NULL, c->dlogp, &c->out);
        break;
    case 3:
        st = vppo_topk_mask(&c->s, c->p.dep, c->cfg.topk_ratio, c->p.select, &c->p.topk);
        break;
    default:
        memcpy(d, c->logp, nb); d += nb;
        memcpy(d, c->logp_old, nb); d += nb;
        memcpy(d, c->logp_aug, nb); d += nb;
        memcpy(d, c->adv_seq, (size_t)c->B * 4); d += (size_t)c->B * 4;
        memcpy(d, c->off, (size_t)(c->B + 1) * 8);
        break;
    }
    if (st != VPPO_OK) c->st = st;
}

static void bench_step(void)
{
    int64_t B = g_quick ? 16 : 1024, Lq = g_quick ? 256 : 2048, N = B * Lq, G = B / 8, t;
    int64_t *off = (int64_t *)xmalloc((size_t)(B + 1) * 8), *goff = (int64_t *)xmalloc((size_t)(G + 1) * 8);
    float *logp = (float *)xmalloc((size_t)N * 4), *logp_old = (float *)xmalloc((size_t)N * 4);
    float *logp_aug = (float *)xmalloc((size_t)N * 4), *rewards = (float *)xmalloc((size_t)B * 4);
    float *adv_seq = (float *)xmalloc((size_t)B * 4);
    size_t in_bytes = (size_t)N * 12 + (size_t)B * 4 + (size_t)(B + 1) * 8;
    size_t out_bytes = (size_t)N * (4 + 4 + 1 + 4) + (size_t)B * (4 + 8 + 4);
    step_ctx c;
    vppo_seqs groups;
    vppo_status st;
    double t_copy, t_step[2] = { 0.0, 0.0 }, t_topk = 0.0;
    int ti, w;
    static const char *names[] = { "vppo_step", "  vppo_prepare", "  vppo_policy_loss", "    vppo_topk_mask" };

    memset(&c, 0, sizeof c);
    vppo_offsets_uniform(off, B, Lq);
    vppo_offsets_uniform(goff, G, 8);
    for (t = 0; t < B; ++t) rewards[t] = (float)(rng_u64() & 1u);
    groups.n_seqs = G; groups.offsets = goff; groups.mask = NULL;
    st = vppo_group_advantages(&groups, rewards, VPPO_ADV_GRPO, 1e-6f, adv_seq);
    if (st != VPPO_OK) {
        printf("vppo_group_advantages failed: %s\n\n", vppo_status_string(st));
        return;
    }
    for (t = 0; t < N; ++t) {
        float lo = logf(0.01f + 0.99f * rng_unif());
        logp_old[t] = lo;
        logp[t] = lo + 0.02f * rng_normal();
        logp_aug[t] = lo + 0.3f * rng_normal();
    }
    c.cfg = vppo_config_default();
    c.s.n_seqs = B; c.s.offsets = off; c.s.mask = NULL;
    c.logp = logp; c.logp_old = logp_old; c.logp_aug = logp_aug; c.adv_seq = adv_seq; c.off = off;
    c.B = B; c.N = N;
    c.p.dep = (float *)xmalloc((size_t)N * 4);
    c.p.traj_dep = (float *)xmalloc((size_t)B * 4);
    c.p.count = (int64_t *)xmalloc((size_t)B * 8);
    c.p.scale = (float *)xmalloc((size_t)B * 4);
    c.p.adv = (float *)xmalloc((size_t)N * 4);
    c.p.select = (uint8_t *)xmalloc((size_t)N);
    c.dlogp = (float *)xmalloc((size_t)N * 4);
    c.copy_dst = (unsigned char *)xmalloc(in_bytes);
    memset(c.copy_dst, 1, in_bytes);

    printf("## vppo_step (vppo_config_default), %lld sequences x %lld tokens, groups of 8\n\n",
           (long long)B, (long long)Lq);
    printf("inputs: logp, logp_old, logp_aug [N], adv_seq [B], offsets [B+1] = %.1f MiB; "
           "outputs: %.1f MiB\n\n", (double)in_bytes / 1048576.0, (double)out_bytes / 1048576.0);
    printf("| call                 | thr |       ms |   Mtok/s | x memcpy |\n");
    printf("|----------------------|----:|---------:|---------:|---------:|\n");
    c.what = 4;
    t_copy = time_median(step_run, NULL, &c, g_reps, g_warm);
    printf("| memcpy of the inputs | %3d | %8.3f | %8.1f | %8.2f |\n", 1, t_copy * 1e3,
           (double)N / t_copy * 1e-6, 1.0);
    for (ti = 0; ti < g_nthreads; ++ti) {
        set_threads(g_threads[ti]);
        for (w = 0; w < 4; ++w) {
            double tw;
            c.what = w;
            c.st = VPPO_OK;
            tw = time_median(step_run, NULL, &c, g_reps, g_warm);
            if (w == 0) t_step[ti] = tw;
            if (w == 3 && ti == 0) t_topk = tw;
            if (c.st != VPPO_OK)
                printf("| %-20s | %3d | error: %s |\n", names[w], g_threads[ti], vppo_status_string(c.st));
            else
                printf("| %-20s | %3d | %8.3f | %8.1f | %8.2f |\n", names[w], g_threads[ti], tw * 1e3,
                       (double)N / tw * 1e-6, tw / t_copy);
        }
    }
    set_threads(g_max_threads);
    printf("\nms: median wall time per call. Mtok/s: tokens per second (millions). x memcpy: time /\n"
           "time of one memcpy of every input array (1 thread). The two indented rows are the halves\n"
           "of vppo_step; vppo_topk_mask is the selection inside vppo_prepare, on its dep. loss of the\n"
           "last call: %.6f, selected %lld of %lld.\n\n",
           c.out.loss, (long long)c.out.n_selected, (long long)c.out.n_valid);
    printf("issue 16 targets (isa %s): vppo_step, 1 thread: %.2fx memcpy (target <= 6x); without its\n"
           "top-k: %.2fx memcpy", vppo_isa_name(vppo_isa_active()), t_step[0] / t_copy, (t_step[0] - t_topk) / t_copy);
    if (g_nthreads > 1 && t_step[1] > 0.0)
        printf("; 2 threads: %.2fx the speed of 1 (target >= 1.7x)", t_step[0] / t_step[1]);
    printf(".\n\n");
    free(off); free(goff); free(logp); free(logp_old); free(logp_aug); free(rewards); free(adv_seq);
    free(c.p.dep); free(c.p.traj_dep); free(c.p.count); free(c.p.scale); free(c.p.adv); free(c.p.select);
    free(c.dlogp); free(c.copy_dst);
}

#include "bench_gemm.h"

/* ========================================================== linear head == */

#ifndef BENCH_NO_LINEAR

/* The materialised baseline's GEMMs (row-major f32):
     NT  logits [n, V]   = hidden [n, d] . weight [V, d]^T
     NN  dhidden [n, d]  = dlogits [n, V] . weight [V, d]
     TN  dweight [V, d] += dlogits [n, V]^T . hidden [n, d]
   cblas_sgemm with VPPO_USE_CBLAS, else simple blocked loops whose inner loops have
   constant trip counts (so that -O2 vectorises them), compiled twice on x86: plain and
   with target("avx2"), picked at run time. */
#ifndef VPPO_USE_CBLAS
#define GEMM_JB 64   /* weight rows per block */

/* NT, one column block: Wt holds weight rows j0..j0+jw transposed, [d][GEMM_JB], zero
   padded; 4 x 16 register tiles. */
#define GEMM_NT_BODY                                                                    \
    int64_t i, k;                                                                       \
    int jj, r, q;                                                                       \
    for (i = 0; i < n; i += 4) {                                                        \
        int rows = n - i < 4 ? (int)(n - i) : 4;                                        \
        for (jj = 0; jj < jw; jj += 16) {                                               \
            float acc[4][16];                                                           \
            const float *h0 = H + i * d, *h1 = H + (i + (rows > 1)) * d;                \
            const float *h2 = H + (i + (rows > 2 ? 2 : 0)) * d;                         \
            const float *h3 = H + (i + (rows > 3 ? 3 : 0)) * d;                         \
            for (q = 0; q < 16; ++q) acc[0][q] = acc[1][q] = acc[2][q] = acc[3][q] = 0.0f; \
            for (k = 0; k < d; ++k) {                                                   \
                const float *b = Wt + k * GEMM_JB + jj;                                 \
                float a0 = h0[k], a1 = h1[k], a2 = h2[k], a3 = h3[k];                   \
                for (q = 0; q < 16; ++q) {                                              \
                    acc[0][q] += a0 * b[q]; acc[1][q] += a1 * b[q];                     \
                    acc[2][q] += a2 * b[q]; acc[3][q] += a3 * b[q];                     \
                }                                                                       \
            }                                                                           \
            for (r = 0; r < rows; ++r)                                                  \
                for (q = 0; q < 16 && jj + q < jw; ++q)                                 \
                    C[(i + r) * ldc + j0 + jj + q] = acc[r][q];                         \
        }                                                                               \
    }

/* y[0..d) += a0 x0 + a1 x1 + a2 x2 + a3 x3, 16 at a time. */
#define GEMM_AXPY4_BODY                                                                 \
    int64_t k;                                                                          \
    int q;                                                                              \
    for (k = 0; k + 16 <= d; k += 16)                                                   \
        for (q = 0; q < 16; ++q)                                                        \
            y[k + q] += a0 * x0[k + q] + a1 * x1[k + q] + a2 * x2[k + q] + a3 * x3[k + q]; \
    for (; k < d; ++k) y[k] += a0 * x0[k] + a1 * x1[k] + a2 * x2[k] + a3 * x3[k];

#define GEMM_KERNELS(SUF, ATTR)                                                         \
    ATTR static void gemm_nt_block_##SUF(const float *H, const float *Wt, float *C,     \
        int64_t n, int64_t d, int64_t ldc, int64_t j0, int jw) { GEMM_NT_BODY }         \
    ATTR static void gemm_axpy4_##SUF(float *y, const float *x0, const float *x1,       \
        const float *x2, const float *x3, float a0, float a1, float a2, float a3,       \
        int64_t d) { GEMM_AXPY4_BODY }

GEMM_KERNELS(plain, )
#ifdef BENCH_X86
GEMM_KERNELS(avx2, __attribute__((target("avx2"))))
#endif

static int gemm_use_avx2(void)
{
#ifdef BENCH_X86
    return __builtin_cpu_supports("avx2") != 0;
#else
    return 0;
#endif
}

static void gemm_axpy4(int avx2, float *y, const float *x0, const float *x1, const float *x2,
                       const float *x3, float a0, float a1, float a2, float a3, int64_t d)
{
#ifdef BENCH_X86
    if (avx2) { gemm_axpy4_avx2(y, x0, x1, x2, x3, a0, a1, a2, a3, d); return; }
#else
    (void)avx2;
#endif
    gemm_axpy4_plain(y, x0, x1, x2, x3, a0, a1, a2, a3, d);
}
#endif /* !VPPO_USE_CBLAS */

#ifdef VPPO_USE_CBLAS
static const char *gemm_name(void) { return "cblas_sgemm"; }

/* NT: C [n, V] = H [n, d] . W [V, d]^T. */
static int gemm_nt(const float *H, const float *W, float *C, int64_t n, int64_t d, int64_t V)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)V, (int)d, 1.0f, H, (int)d,
                W, (int)d, 0.0f, C, (int)V);
    return 0;
}

/* NN: C [n, d] = G [n, V] . W [V, d]. */
static void gemm_nn(const float *G, const float *W, float *C, int64_t n, int64_t d, int64_t V)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)d, (int)V, 1.0f, G, (int)V,
                W, (int)d, 0.0f, C, (int)d);
}

/* TN: D [V, d] += G [n, V]^T . H [n, d]. */
static void gemm_tn_acc(const float *G, const float *H, float *D, int64_t n, int64_t d, int64_t V)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)V, (int)d, (int)n, 1.0f, G, (int)V,
                H, (int)d, 1.0f, D, (int)d);
}
#else
static const char *gemm_name(void)
{
    return gemm_use_avx2() ? "the bench's blocked GEMM (avx2)" : "the bench's blocked GEMM (plain C)";
}

/* NT: C [n, V] = H [n, d] . W [V, d]^T. Nonzero on allocation failure. */
static int gemm_nt(const float *H, const float *W, float *C, int64_t n, int64_t d, int64_t V)
{
    int64_t nb = (V + GEMM_JB - 1) / GEMM_JB;
    int fail = 0, avx2 = gemm_use_avx2();
#ifdef _OPENMP
#pragma omp parallel reduction(|:fail)
#endif
    {
        float *Wt = (float *)malloc((size_t)d * GEMM_JB * sizeof(float));
        int64_t blk;
        if (!Wt) fail = 1;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (blk = 0; blk < nb; ++blk) {
            int64_t j0 = blk * GEMM_JB, k;
            int jw = V - j0 < GEMM_JB ? (int)(V - j0) : GEMM_JB, jj;
            if (!Wt) continue;
            for (jj = 0; jj < GEMM_JB; ++jj)
                for (k = 0; k < d; ++k)
                    Wt[k * GEMM_JB + jj] = jj < jw ? W[(j0 + jj) * d + k] : 0.0f;
#ifdef BENCH_X86
            if (avx2) gemm_nt_block_avx2(H, Wt, C, n, d, V, j0, jw);
            else
#endif
                gemm_nt_block_plain(H, Wt, C, n, d, V, j0, jw);
        }
        free(Wt);
    }
    (void)avx2;
    return fail;
}

/* NN: C [n, d] = G [n, V] . W [V, d]. */
static void gemm_nn(const float *G, const float *W, float *C, int64_t n, int64_t d, int64_t V)
{
    int64_t i;
    int avx2 = gemm_use_avx2();
    memset(C, 0, (size_t)n * (size_t)d * sizeof(float));
    PARALLEL_FOR
    for (i = 0; i < n; i += 8) {   /* 8 rows of C (16 KiB at d = 512) against a block of W */
        int64_t ie = i + 8 < n ? i + 8 : n, jb, r, j;
        for (jb = 0; jb < V; jb += GEMM_JB) {
            int64_t je = jb + GEMM_JB < V ? jb + GEMM_JB : V;
            for (r = i; r < ie; ++r) {
                const float *g = G + r * V;
                float *c = C + r * d;
                for (j = jb; j + 4 <= je; j += 4)
                    gemm_axpy4(avx2, c, W + j * d, W + (j + 1) * d, W + (j + 2) * d, W + (j + 3) * d,
                               g[j], g[j + 1], g[j + 2], g[j + 3], d);
                for (; j < je; ++j) gemm_axpy4(avx2, c, W + j * d, W + j * d, W + j * d, W + j * d,
                                               g[j], 0.0f, 0.0f, 0.0f, d);
            }
        }
    }
}

/* TN: D [V, d] += G [n, V]^T . H [n, d]. */
static void gemm_tn_acc(const float *G, const float *H, float *D, int64_t n, int64_t d, int64_t V)
{
    int64_t jb;
    int avx2 = gemm_use_avx2();
    PARALLEL_FOR
    for (jb = 0; jb < V; jb += GEMM_JB) {   /* a block of D rows (128 KiB at d = 512) */
        int64_t je = jb + GEMM_JB < V ? jb + GEMM_JB : V, i, j;
        for (i = 0; i + 4 <= n; i += 4)
            for (j = jb; j < je; ++j)
                gemm_axpy4(avx2, D + j * d, H + i * d, H + (i + 1) * d, H + (i + 2) * d, H + (i + 3) * d,
                           G[i * V + j], G[(i + 1) * V + j], G[(i + 2) * V + j], G[(i + 3) * V + j], d);
        for (; i < n; ++i)
            for (j = jb; j < je; ++j)
                gemm_axpy4(avx2, D + j * d, H + i * d, H + i * d, H + i * d, H + i * d,
                           G[i * V + j], 0.0f, 0.0f, 0.0f, d);
    }
}
#endif /* VPPO_USE_CBLAS */

enum { LIN_LP_FUSED, LIN_LP_MAT, LIN_DEP_FUSED, LIN_DEP_MAT, LIN_BW_FUSED, LIN_BW_MAT };

typedef struct lin_ctx {
    int what;
    int64_t n, d, V;
    const float *H, *Ha, *W;
    const int32_t *ids;
    const float *lse_in, *ent_in, *dlogp, *dent;   /* backward inputs */
    float *logp, *lse, *ent, *dep, *dhidden, *dweight;
    float *logits, *logits_aug;
    void *work;
    size_t work_bytes;
    double gemm_t[64];     /* seconds in GEMMs, per call of a materialised path */
    int n_gemm;
    vppo_status st;
} lin_ctx;

static void lin_gemm_time(lin_ctx *c, double t)
{
    if (c->n_gemm < 64) c->gemm_t[c->n_gemm++] = t;
}

static void lin_run(void *v)
{
    lin_ctx *c = (lin_ctx *)v;
    vppo_status st = VPPO_OK;
    vppo_logits x, y;
    vppo_grad_out g;
    double t0, tg;
    switch (c->what) {
    case LIN_LP_FUSED:
        st = vppo_linear_logprobs(c->H, c->W, c->n, c->d, c->V, 1.0f, c->ids, c->logp, c->lse, c->ent,
                                  c->work, c->work_bytes);
        break;
    case LIN_LP_MAT:
        t0 = now_s();
        if (gemm_nt(c->H, c->W, c->logits, c->n, c->d, c->V)) { st = VPPO_ERR_ALLOC; break; }
        lin_gemm_time(c, now_s() - t0);
        x = mk_logits(c->logits, VPPO_F32, c->n, c->V);
        st = vppo_logprobs(&x, c->ids, c->logp, c->lse, c->ent);
        break;
    case LIN_DEP_FUSED:
        st = vppo_linear_dependency(c->H, c->Ha, c->W, c->n, c->d, c->V, 1.0f, VPPO_DIV_KL, c->dep,
                                    c->work, c->work_bytes);
        break;
    case LIN_DEP_MAT:
        t0 = now_s();
        if (gemm_nt(c->H, c->W, c->logits, c->n, c->d, c->V) ||
            gemm_nt(c->Ha, c->W, c->logits_aug, c->n, c->d, c->V)) { st = VPPO_ERR_ALLOC; break; }
        lin_gemm_time(c, now_s() - t0);
        x = mk_logits(c->logits, VPPO_F32, c->n, c->V);
        y = mk_logits(c->logits_aug, VPPO_F32, c->n, c->V);
        st = vppo_dependency_logits(&x, &y, VPPO_DIV_KL, c->dep);
        break;
    case LIN_BW_FUSED:
        st = vppo_linear_logprobs_backward(c->H, c->W, c->n, c->d, c->V, 1.0f, c->ids, c->lse_in, c->ent_in,
                                           c->dlogp, c->dent, c->dhidden, c->dweight, c->work, c->work_bytes);
        break;
    case LIN_BW_MAT:
        t0 = now_s();
        if (gemm_nt(c->H, c->W, c->logits, c->n, c->d, c->V)) { st = VPPO_ERR_ALLOC; break; }
        tg = now_s() - t0;
        x = mk_logits(c->logits, VPPO_F32, c->n, c->V);
        g.data = c->logits; g.dtype = VPPO_F32; g.row_stride = c->V;   /* in place */
        st = vppo_logprobs_backward(&x, c->ids, c->lse_in, c->ent_in, c->dlogp, c->dent, &g);
        if (st != VPPO_OK) break;
        t0 = now_s();
        gemm_nn(c->logits, c->W, c->dhidden, c->n, c->d, c->V);
        gemm_tn_acc(c->logits, c->H, c->dweight, c->n, c->d, c->V);
        lin_gemm_time(c, tg + now_s() - t0);
        break;
    }
    if (st != VPPO_OK) c->st = st;
}

static void lin_zero_dweight(void *v)   /* dweight accumulates: start every call from 0 */
{
    lin_ctx *c = (lin_ctx *)v;
    if (c->what == LIN_BW_FUSED || c->what == LIN_BW_MAT)
        memset(c->dweight, 0, (size_t)c->V * (size_t)c->d * sizeof(float));
}

static void fmt_bytes(char *out, size_t cap, double b)
{
    if (b >= 1048576.0) snprintf(out, cap, "%.1f MiB", b / 1048576.0);
    else if (b >= 1024.0) snprintf(out, cap, "%.1f KiB", b / 1024.0);
    else snprintf(out, cap, "%.0f B", b);
}

/* Times one fused/materialised pair (cf runs `fused`, cm runs `mat`; each writes its
   own outputs) and prints its two rows. mat_bytes: the logits the materialised path
   holds; diff compares the two paths' outputs. */
static void lin_pair(lin_ctx *cf, lin_ctx *cm, int fused, int mat, const char *fname, const char *mname,
                     double mat_bytes, int reps, double (*diff)(const lin_ctx *, const lin_ctx *))
{
    double tf, tm, tg;
    char wsb[32], mb[32];
    int ok_f;
    fmt_bytes(wsb, sizeof wsb, (double)cf->work_bytes);
    fmt_bytes(mb, sizeof mb, mat_bytes);
    cf->what = fused; cf->st = VPPO_OK;
    tf = time_median(lin_run, lin_zero_dweight, cf, reps, 0);
    ok_f = cf->st == VPPO_OK;
    if (!ok_f)
        printf("| %-23s | %6lld | fused        | error: %s |\n", fname, (long long)cf->V, vppo_status_string(cf->st));
    else
        printf("| %-23s | %6lld | fused        | %8.2f | %7s | %7.2f | %12s | %11s | %9s |\n",
               fname, (long long)cf->V, tf * 1e3, "", 1.0, wsb, "1", "");
    cm->what = mat; cm->st = VPPO_OK; cm->n_gemm = 0;
    tm = time_median(lin_run, lin_zero_dweight, cm, reps, 0);
    tg = cm->n_gemm ? median(cm->gemm_t, cm->n_gemm) : 0.0;
    if (cm->st != VPPO_OK)
        printf("| %-23s | %6lld | materialised | error: %s |\n", mname, (long long)cm->V, vppo_status_string(cm->st));
    else if (ok_f)
        printf("| %-23s | %6lld | materialised | %8.2f | %7.1f | %7.2f | %12s | %11.1f | %9.2e |\n",
               mname, (long long)cm->V, tm * 1e3, tg * 1e3, tm / tf, mb,
               cf->work_bytes ? mat_bytes / (double)cf->work_bytes : 0.0, diff(cf, cm));
    else
        printf("| %-23s | %6lld | materialised | %8.2f | %7.1f | %7s | %12s | %11s | %9s |\n",
               mname, (long long)cm->V, tm * 1e3, tg * 1e3, "-", mb, "-", "-");
    fflush(stdout);
}

static double max3(double a, double b, double c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

static double diff_lp(const lin_ctx *a, const lin_ctx *b)
{
    size_t n = (size_t)a->n;
    return max3(max_abs_diff(a->logp, b->logp, n), max_abs_diff(a->lse, b->lse, n), max_abs_diff(a->ent, b->ent, n));
}

static double diff_dep(const lin_ctx *a, const lin_ctx *b)
{
    return max_abs_diff(a->dep, b->dep, (size_t)a->n);
}

static double diff_bw(const lin_ctx *a, const lin_ctx *b)
{
    double x = max_abs_diff(a->dhidden, b->dhidden, (size_t)a->n * (size_t)a->d);
    double y = max_abs_diff(a->dweight, b->dweight, (size_t)a->V * (size_t)a->d);
    return x > y ? x : y;
}

/* Output buffers of one path. */
static void lin_outputs(lin_ctx *c)
{
    size_t n = (size_t)c->n;
    c->logp = (float *)xmalloc(n * 4); c->lse = (float *)xmalloc(n * 4);
    c->ent = (float *)xmalloc(n * 4); c->dep = (float *)xmalloc(n * 4);
    c->dhidden = (float *)xmalloc(n * (size_t)c->d * 4);
    c->dweight = (float *)xmalloc((size_t)c->V * (size_t)c->d * 4);
    memset(c->dweight, 0, (size_t)c->V * (size_t)c->d * 4);
}

static void lin_outputs_free(lin_ctx *c)
{
    free(c->logp); free(c->lse); free(c->ent); free(c->dep); free(c->dhidden); free(c->dweight);
}

static void bench_linear(void)
{
    int64_t n = g_quick ? 8 : 256, d = g_quick ? 32 : 512;
    int64_t vocabs[2];
    int vi;
    int reps = g_quick ? 1 : 3;
    vocabs[0] = g_quick ? 500 : 32000;
    vocabs[1] = g_quick ? 1000 : 151936;

    printf("## Fused linear head (spec §9) vs materialised logits, n = %lld, d = %lld, %d thread%s\n\n",
           (long long)n, (long long)d, g_max_threads, g_max_threads == 1 ? "" : "s");
    printf("materialised: the GEMMs with %s, and the logits kernels of spec §2 on\n"
           "the n x V logits: vppo_logprobs; vppo_dependency_logits (KL); for the backward: the\n"
           "logits, vppo_logprobs_backward in place, dhidden = dlogits . W, dweight += dlogits^T . H.\n"
           "Every backward is given lse, entropy, dlogp and dentropy. Median of %d repetitions at\n"
           "V = %lld, %d at V = %lld, no warm-up (the calls take seconds; every buffer is written\n"
           "before).\n\n", gemm_name(), reps, (long long)vocabs[0], 1, (long long)vocabs[1]);
    printf("| call                    |      V | path         |       ms | GEMM ms | x fused | extra memory | mem x fused | max|diff| |\n");
    printf("|-------------------------|-------:|--------------|---------:|--------:|--------:|-------------:|------------:|----------:|\n");
    for (vi = 0; vi < 2; ++vi) {
        int64_t V = vocabs[vi], i;
        size_t nd = (size_t)n * (size_t)d, vd = (size_t)V * (size_t)d, nvb = (size_t)n * (size_t)V;
        float *H = (float *)xmalloc(nd * 4), *Ha = (float *)xmalloc(nd * 4), *W = (float *)xmalloc(vd * 4);
        float *logits = (float *)xmalloc(nvb * 4), *logits_aug = (float *)xmalloc(nvb * 4);
        float *dlogp = (float *)xmalloc((size_t)n * 4), *dent = (float *)xmalloc((size_t)n * 4);
        int32_t *ids = (int32_t *)xmalloc((size_t)n * 4);
        size_t ws = vppo_linear_workspace(n, d, V);
        void *work = xmalloc(ws);
        float wscale = 3.0f / sqrtf((float)d);   /* logits ~ N(0, 3^2) */
        lin_ctx cf, cm;

        if (vi == 1 && !g_quick) reps = 1;   /* seconds per call: keeps make bench near 3 minutes */
        for (i = 0; i < (int64_t)nd; ++i) { H[i] = rng_normal(); Ha[i] = H[i] + 0.05f * rng_normal(); }
        for (i = 0; i < (int64_t)vd; ++i) W[i] = wscale * rng_normal();
        for (i = 0; i < n; ++i) {
            ids[i] = (int32_t)(rng_u64() % (uint64_t)V);
            dlogp[i] = rng_normal();
            dent[i] = 0.06f * rng_normal();
        }
        memset(logits, 0, nvb * 4);
        memset(logits_aug, 0, nvb * 4);
        memset(work, 0, ws ? ws : 1);

        memset(&cf, 0, sizeof cf);
        cf.n = n; cf.d = d; cf.V = V; cf.H = H; cf.Ha = Ha; cf.W = W; cf.ids = ids;
        cf.logits = logits; cf.logits_aug = logits_aug; cf.work = work; cf.work_bytes = ws;
        cf.dlogp = dlogp; cf.dent = dent;
        cm = cf;
        lin_outputs(&cf);
        lin_outputs(&cm);

        lin_pair(&cf, &cm, LIN_LP_FUSED, LIN_LP_MAT, "vppo_linear_logprobs", "logprobs",
                 (double)nvb * 4, reps, diff_lp);
        lin_pair(&cf, &cm, LIN_DEP_FUSED, LIN_DEP_MAT, "vppo_linear_dependency", "dependency KL",
                 (double)nvb * 8, reps, diff_dep);
        /* the backward is given the materialised path's lse and entropy (both paths) */
        cf.lse_in = cm.lse_in = cm.lse;
        cf.ent_in = cm.ent_in = cm.ent;
        lin_pair(&cf, &cm, LIN_BW_FUSED, LIN_BW_MAT, "vppo_linear_lp_backward", "backward",
                 (double)nvb * 4, reps, diff_bw);

        lin_outputs_free(&cf);
        lin_outputs_free(&cm);
        free(H); free(Ha); free(W); free(logits); free(logits_aug); free(dlogp); free(dent); free(ids); free(work);
    }
    printf("\nms: median wall time per call (fused: vppo_linear_*; materialised: GEMMs + the logits\n"
           "kernel). GEMM ms: time in the GEMMs inside the materialised path. x fused: time / fused\n"
           "time. extra memory: the fused path's workspace (vppo_linear_workspace) vs the n*V*4\n"
           "bytes of materialised logits (2x for the dependency: both images). mem x fused:\n"
           "materialised bytes / workspace bytes. max|diff|: fused vs materialised outputs (logp,\n"
           "lse, entropy / KL / dhidden and dweight).\n\n");
}
#endif /* !BENCH_NO_LINEAR */

/* ================================================================ onk == */
/* The two O(N) passes of vppo_step that carry its per-token arithmetic, alone, on the
   step's data (1024 x 2048, the same random inputs), 1 thread, on every ISA the machine
   runs: the estimator pass (K3 dependency into dep, with its per-sequence sums) and the
   loss pass (PG_CLIP with dual clip, a 40% selection, the gradient into dlogp); each
   against one memcpy of the bytes the pass reads and writes. */

typedef struct onk_ctx {
    const vppo__on_kernels *k;
    vppo__on_loss L;
    const float *lp, *aug;
    float *dep;
    const unsigned char *src;
    unsigned char *dst;
    size_t bytes;
    int64_t B, Lq;
    double sink;
} onk_ctx;

static void onk_est(void *v)
{
    onk_ctx *c = (onk_ctx *)v;
    int64_t b;
    for (b = 0; b < c->B; ++b) c->sink += c->k->map(c->lp, c->aug, NULL, b * c->Lq, (b + 1) * c->Lq, VPPO_EST_K3, c->dep);
}

static void onk_loss(void *v)
{
    onk_ctx *c = (onk_ctx *)v;
    double sums[VPPO__ON_NSUMS];
    int64_t b;
    for (b = 0; b < c->B; ++b) c->sink += c->k->loss(&c->L, b * c->Lq, (b + 1) * c->Lq, sums) + sums[VPPO__ON_PG];
}

static void onk_copy(void *v)
{
    onk_ctx *c = (onk_ctx *)v;
    memcpy(c->dst, c->src, c->bytes);
}

static void bench_onk(void)
{
    const int64_t B = g_quick ? 16 : 1024, Lq = g_quick ? 256 : 2048, N = B * Lq;
    float *lp = (float *)xmalloc((size_t)N * 4), *lo = (float *)xmalloc((size_t)N * 4);
    float *aug = (float *)xmalloc((size_t)N * 4), *adv = (float *)xmalloc((size_t)N * 4);
    float *dep = (float *)xmalloc((size_t)N * 4), *g = (float *)xmalloc((size_t)N * 4);
    uint8_t *sel = (uint8_t *)xmalloc((size_t)N);
    const size_t est_bytes = (size_t)N * 12, loss_bytes = (size_t)N * 17;
    unsigned char *src = (unsigned char *)xmalloc(loss_bytes), *dst = (unsigned char *)xmalloc(loss_bytes);
    const vppo_loss_config cfg = vppo_loss_config_default();
    const vppo__clip clip = vppo__clip_of(&cfg);
    double t_est_copy, t_loss_copy;
    onk_ctx c;
    int64_t t;
    int i;
    for (t = 0; t < N; ++t) {
        const float o = logf(0.01f + 0.99f * rng_unif());
        lo[t] = o;
        lp[t] = o + 0.02f * rng_normal();
        aug[t] = o + 0.3f * rng_normal();
        adv[t] = rng_normal();
        sel[t] = (uint8_t)(rng_unif() < 0.4f);
    }
    memset(src, 1, loss_bytes);
    memset(dst, 2, loss_bytes);
    memset(&c, 0, sizeof c);
    c.lp = lp; c.aug = aug; c.dep = dep; c.src = src; c.dst = dst; c.B = B; c.Lq = Lq;
    c.L.logp = lp; c.L.logp_old = lo; c.L.adv = adv; c.L.select = sel; c.L.dlogp = g;
    c.L.log_lo = clip.log_lo; c.L.log_hi = clip.log_hi; c.L.r_lo = clip.r_lo; c.L.r_hi = clip.r_hi;
    c.L.dual = cfg.clip_dual; c.L.kl_coef = cfg.kl_coef; c.L.ent_coef = cfg.entropy_coef;
    c.L.pg_kind = (int)cfg.pg_kind; c.L.kl_kind = (int)cfg.kl_kind;
    c.L.coef = 1.0 / (double)N;
    c.bytes = est_bytes;
    t_est_copy = time_median(onk_copy, NULL, &c, g_reps, g_warm);
    c.bytes = loss_bytes;
    t_loss_copy = time_median(onk_copy, NULL, &c, g_reps, g_warm);
    printf("## the step's per-token arithmetic: estimator pass and loss pass, %lld x %lld tokens, 1 thread\n\n",
           (long long)B, (long long)Lq);
    printf("memcpy of what each pass reads and writes: estimator (logp, logp_aug in, dep out) %.3f ms;\n"
           "loss (logp, logp_old, adv, select in, dlogp out) %.3f ms.\n\n", t_est_copy * 1e3, t_loss_copy * 1e3);
    printf("| isa      | estimator (ms) | x memcpy | loss (ms) | x memcpy | both (ms) | loss, double loop (ms) |\n");
    printf("|----------|---------------:|---------:|----------:|---------:|----------:|-----------------------:|\n");
    for (i = 0; i < g_nisas; ++i) {
        const int isa = (int)g_isas[i], reps = isa == VPPO_ISA_SCALAR ? g_reps_scalar : g_reps;
        double te, tl, td;
        c.k = vppo__on_kernels_for((vppo_isa)isa);
        te = time_median(onk_est, NULL, &c, reps, g_warm);
        c.L.fast = 1;
        tl = time_median(onk_loss, NULL, &c, reps, g_warm);
        c.L.fast = 0;
        td = time_median(onk_loss, NULL, &c, reps, g_warm);
        printf("| %-8s | %14.3f | %8.2f | %9.3f | %8.2f | %9.3f | %22.3f |\n", vppo_isa_name((vppo_isa)isa),
               te * 1e3, te / t_est_copy, tl * 1e3, tl / t_loss_copy, (te + tl) * 1e3, td * 1e3);
    }
    printf("\n(checksum %g) The kernels are vppo__on_kernels (vppo.h section 11 c2); vppo_step runs them\n"
           "once each per sequence, after its validation pass. The loss column is the float path that\n"
           "vppo_policy_loss takes for a token-mean loss (vppo__on_loss.fast), the last the double loop\n"
           "it leaves for.\n\n", c.sink);
    free(lp); free(lo); free(aug); free(adv); free(dep); free(g); free(sel); free(src); free(dst);
}

/* ================================================================== main == */

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--quick] [--only bandwidth|dep|logprobs|backward|topk|step|onk|linear|gemm]\n", argv0);
}

int main(int argc, char **argv)
{
    static const char *names[] = { "bandwidth", "dep", "logprobs", "backward", "topk", "step", "onk", "linear", "gemm" };
    int i, ok;
    double t0 = now_s();

    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--quick") == 0) g_quick = 1;
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) g_only = argv[++i];
        else { usage(argv[0]); return 2; }
    }
    if (g_only) {
        size_t k;
        for (ok = 0, k = 0; k < sizeof names / sizeof names[0]; ++k) ok |= strcmp(g_only, names[k]) == 0;
        if (!ok) { usage(argv[0]); return 2; }
#ifdef BENCH_NO_LINEAR
        if (strcmp(g_only, "linear") == 0) {
            fprintf(stderr, "bench: built with -DBENCH_NO_LINEAR\n");
            return 2;
        }
#endif
    }
    if (g_quick) { g_reps = 1; g_reps_scalar = 1; g_warm = 0; }
#ifdef _OPENMP
    g_max_threads = omp_get_max_threads();
    g_nthreads = 2;
#else
    g_nthreads = 1;
#endif
    g_rows = g_quick ? 16 : 256;
    g_vocabs[0] = g_quick ? 512 : 32000;
    g_vocabs[1] = g_quick ? 2048 : 151936;

    header();
    if (want("bandwidth")) bench_bandwidth();
    if (want("dep")) bench_dep();
    if (want("logprobs")) bench_logprobs();
    if (want("backward")) bench_backward();
    if (g_ld_ready) { ldata_free(&g_ld[0]); ldata_free(&g_ld[1]); }
    if (want("topk")) bench_topk();
    if (want("step")) bench_step();
    if (want("onk")) bench_onk();
#ifndef BENCH_NO_LINEAR
    if (want("linear")) bench_linear();
#else
    if (!g_only) printf("(linear head table compiled out: -DBENCH_NO_LINEAR)\n\n");
#endif
    if (want("gemm")) bench_gemm();
    printf("total benchmark time: %.2f s\n", now_s() - t0);
    return 0;
}
