/* bench/bench_gemm.h - the "gemm" table of bench.c: the fused linear head's built-in GEMM
 * (vppo__gemm, the library's own packed kernels, never cblas) against OpenBLAS sgemm on
 * the same shapes, in the same run, one thread each.
 *
 * OpenBLAS is opened at run time (dlopen of libopenblas.so.0, OPENBLAS_NUM_THREADS=1 set
 * before), so the table needs no link flag; without it the OpenBLAS column says so.
 * Shapes: the three products of the head at n = 512, d = 1024, V = 32,000 with the tile
 * the head uses (rows x cols logits per tile), and a square 1024^3 for scale:
 *   NT  logits tile  [rows, cols]  = hidden [rows, d] . weight [cols, d]^T
 *   NN  dhidden     [rows, d]    += dlogits [rows, cols] . weight [cols, d]
 *   TN  dweight     [cols, d]    += dlogits [rows, cols]^T . hidden [rows, d]
 * Every entry is the median of the repetitions after a warm-up; the two results are
 * compared (max |ours - OpenBLAS| / max |OpenBLAS|) so that a fast wrong kernel shows. */
#include <dlfcn.h>

typedef void (*bench_sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                               int lda, const float *b, int ldb, float beta, float *c, int ldc);

typedef struct gemm_case {
    const char *name;
    int64_t m, n, k;
    int ta, tb;                  /* A stored transposed (k x m), B stored transposed (n x k) */
    int acc;                     /* C += A B (else C = A B) */
    const float *a, *b;
    float *c;
    float *pack;
    int64_t pack_a;
    bench_sgemm_fn blas;
} gemm_case;

static void gemm_ours(void *v)
{
    gemm_case *g = (gemm_case *)v;
    const vppo__mat a = { g->a, g->ta ? 1 : g->k, g->ta ? g->m : 1 };
    const vppo__mat b = { g->b, g->tb ? 1 : g->n, g->tb ? g->k : 1 };
    vppo__gemm(g->m, g->n, g->k, &a, &b, g->c, g->n, g->acc, g->pack, g->pack_a);
}

static void gemm_blas(void *v)
{
    gemm_case *g = (gemm_case *)v;
    /* CblasRowMajor 101, CblasNoTrans 111, CblasTrans 112 */
    g->blas(101, g->ta ? 112 : 111, g->tb ? 112 : 111, (int)g->m, (int)g->n, (int)g->k, 1.0f, g->a,
            (int)(g->ta ? g->m : g->k), g->b, (int)(g->tb ? g->k : g->n), g->acc ? 1.0f : 0.0f, g->c, (int)g->n);
}

static bench_sgemm_fn gemm_open_blas(void)
{
    static const char *names[] = { "libopenblas.so.0", "libopenblas.so" };
    bench_sgemm_fn fn = NULL;
    size_t i;
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    for (i = 0; i < sizeof names / sizeof names[0] && !fn; ++i) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL), *sym;
        if (!h) continue;
        sym = dlsym(h, "cblas_sgemm");
        if (sym) memcpy(&fn, &sym, sizeof fn);   /* object to function pointer, as POSIX allows */
    }
    return fn;
}

static void bench_gemm(void)
{
    const int64_t d = 1024, V = 32000;
    const int64_t rows = g_quick ? 16 : VPPO__LIN_ROWS, dd = g_quick ? 128 : d;
    const int64_t cols = vppo__lin_cols(dd, V), sq = g_quick ? 128 : 1024;
    gemm_case cs[4];
    bench_sgemm_fn blas = gemm_open_blas();
    int64_t big = sq * sq, i;
    float *a, *b, *c, *ref, *pack;
    int ci, reps = g_quick ? 1 : (g_reps > 9 ? g_reps : 9);   /* cheap: 9 repetitions at least */
    printf("## Built-in GEMM of the fused head (vppo__gemm, no BLAS) vs OpenBLAS sgemm, 1 thread, ISA %s\n\n",
           vppo_isa_name(vppo_isa_active()));
    if (!blas) printf("(OpenBLAS not found: libopenblas.so.0 could not be opened; its column is empty)\n\n");
    printf("shapes of the head at n = 512, d = %lld, V = 32,000: tile %lld rows x %lld cols; median of %d\n\n",
           (long long)dd, (long long)rows, (long long)cols, reps);
    memset(cs, 0, sizeof cs);
    cs[0].name = "NT logits tile";  cs[0].m = rows; cs[0].n = cols; cs[0].k = dd; cs[0].tb = 1;
    cs[1].name = "NN dhidden +=";   cs[1].m = rows; cs[1].n = dd;   cs[1].k = cols; cs[1].acc = 1;
    cs[2].name = "TN dweight +=";   cs[2].m = cols; cs[2].n = dd;   cs[2].k = rows; cs[2].ta = 1; cs[2].acc = 1;
    cs[3].name = "NN square";       cs[3].m = sq;   cs[3].n = sq;   cs[3].k = sq;
    if (big < cols * dd) big = cols * dd;
    a = (float *)xmalloc((size_t)big * sizeof(float));
    b = (float *)xmalloc((size_t)big * sizeof(float));
    c = (float *)xmalloc((size_t)big * sizeof(float));
    ref = (float *)xmalloc((size_t)big * sizeof(float));
    pack = (float *)xmalloc((size_t)(VPPO__GEMM_MC + VPPO__GEMM_NC) * VPPO__GEMM_KC * sizeof(float));
    for (i = 0; i < big; ++i) { a[i] = rng_normal(); b[i] = rng_normal(); }
    set_threads(1);
    printf("| product | m x n x k | ours GFLOP/s | OpenBLAS GFLOP/s | ours / OpenBLAS | max rel diff |\n");
    printf("|---|---|---:|---:|---:|---:|\n");
    for (ci = 0; ci < 4; ++ci) {
        gemm_case *g = &cs[ci];
        const double flop = 2.0 * (double)g->m * (double)g->n * (double)g->k;
        double t_ours, t_blas = 0.0, diff = 0.0, scale = 0.0;
        g->a = a; g->b = b; g->c = c; g->pack = pack; g->blas = blas;
        g->pack_a = VPPO__GEMM_MC * VPPO__GEMM_KC;                /* the largest blocks */
        for (i = 0; i < g->m * g->n; ++i) c[i] = 0.0f;
        t_ours = time_median(gemm_ours, NULL, g, reps, 1);
        if (blas) {
            memcpy(ref, c, (size_t)(g->m * g->n) * sizeof(float));   /* ours, after 1 + reps calls */
            for (i = 0; i < g->m * g->n; ++i) c[i] = 0.0f;
            t_blas = time_median(gemm_blas, NULL, g, reps, 1);
            for (i = 0; i < g->m * g->n; ++i) {
                const double e = fabs((double)ref[i] - (double)c[i]);
                if (e > diff) diff = e;
                if (fabs((double)c[i]) > scale) scale = fabs((double)c[i]);
            }
        }
        if (blas)
            printf("| %s | %lld x %lld x %lld | %.1f | %.1f | %.2f | %.1e |\n", g->name, (long long)g->m,
                   (long long)g->n, (long long)g->k, flop / t_ours * 1e-9, flop / t_blas * 1e-9, t_blas / t_ours,
                   scale > 0.0 ? diff / scale : diff);
        else
            printf("| %s | %lld x %lld x %lld | %.1f | - | - | - |\n", g->name, (long long)g->m, (long long)g->n,
                   (long long)g->k, flop / t_ours * 1e-9);
    }
    /* every ISA this machine runs, ours only, on the head's three products */
    printf("\nours by ISA (GFLOP/s, 1 thread, median of %d):\n\n| ISA |", reps);
    for (ci = 0; ci < 3; ++ci) printf(" %s |", cs[ci].name);
    printf("\n|---|---:|---:|---:|\n");
    for (i = 0; i < g_nisas; ++i) {
        vppo_isa_select(g_isas[i]);
        printf("| %s |", vppo_isa_name(g_isas[i]));
        for (ci = 0; ci < 3; ++ci)
            printf(" %.1f |", 2.0 * (double)cs[ci].m * (double)cs[ci].n * (double)cs[ci].k
                              / time_median(gemm_ours, NULL, &cs[ci], reps, 1) * 1e-9);
        printf("\n");
    }
    vppo_isa_select(g_default_isa);
    printf("\n");
    free(a); free(b); free(c); free(ref); free(pack);
}
