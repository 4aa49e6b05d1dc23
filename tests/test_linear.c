/* tests/test_linear.c - the fused linear head (§9) against the materialised path:
   logits = hidden · weightᵀ formed here (in double, rounded to f32), then the §2 kernels;
   every ISA this machine runs, shapes that cross the row and vocabulary tiles. */
#include "test.h"
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct lin_case { int64_t n, d, V; float temp; } lin_case;

static float *logits_of(const float *h, const float *w, int64_t n, int64_t d, int64_t V)
{
    float *z = floats_new(n * V > 0 ? n * V : 1, 0);
    int64_t i, j, k;
    for (i = 0; i < n; ++i)
        for (j = 0; j < V; ++j) {
            double s = 0.0;
            for (k = 0; k < d; ++k) s += (double)h[i * d + k] * w[j * d + k];
            z[i * V + j] = (float)s;
        }
    return z;
}

static float *randoms(rng *r, int64_t n, double scale)
{
    float *x = floats_new(n > 0 ? n : 1, 0);
    int64_t i;
    for (i = 0; i < n; ++i) x[i] = (float)(rng_normal(r) * scale);
    return x;
}

static void check_linear_case(const lin_case *c, rng *r)
{
    const int64_t n = c->n, d = c->d, V = c->V;
    float *h = randoms(r, n * d, 1.0), *ha = randoms(r, n * d, 1.0), *w = randoms(r, V * d, 1.5 / sqrt((double)d));
    float *z, *za, *lp = floats_new(n + 1, 0), *ls = floats_new(n + 1, 0), *en = floats_new(n + 1, 0);
    float *rlp = floats_new(n + 1, 0), *rls = floats_new(n + 1, 0), *ren = floats_new(n + 1, 0);
    float *dep = floats_new(n + 1, 0), *rdep = floats_new(n + 1, 0), *dl = randoms(r, n + 1, 1.0), *de = randoms(r, n + 1, 1.0);
    float *G = floats_new(n * V + 1, 0), *dh = floats_new(n * d + 1, 0), *dw = floats_new(V * d, 0.5f);
    int32_t *ids = (int32_t *)malloc((size_t)(n + 1) * sizeof(int32_t));
    size_t wb = vppo_linear_workspace(n, d, V);
    void *work = malloc(wb + 3);
    vppo_logits L, La;
    vppo_grad_out go;
    int64_t i, j, k;
    int div, given;
    for (i = 0; i < n; ++i) {
        ids[i] = (int32_t)rng_int(r, 0, V - 1);
        for (k = 0; k < d; ++k) ha[i * d + k] = h[i * d + k] + 0.3f * ha[i * d + k];
    }
    z = logits_of(h, w, n, d, V);
    za = logits_of(ha, w, n, d, V);
    L.data = z; L.dtype = VPPO_F32; L.n_rows = n; L.vocab = V; L.row_stride = V; L.temperature = c->temp;
    La = L; La.data = za;
    /* forward */
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&L, ids, rlp, rls, ren));
    CHECK_STATUS(VPPO_OK, vppo_linear_logprobs(h, w, n, d, V, c->temp, ids, lp, ls, en, (char *)work + 3, wb));
    for (i = 0; i < n; ++i) {
        CHECK_NEAR(rlp[i], lp[i], TOL_LSE);
        CHECK_NEAR(rls[i], ls[i], TOL_LSE);
        CHECK_NEAR(ren[i], en[i], TOL_DIV);
    }
    for (div = 0; div < 3; ++div) {
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&L, &La, (vppo_divergence)div, rdep));
        CHECK_STATUS(VPPO_OK, vppo_linear_dependency(h, ha, w, n, d, V, c->temp, (vppo_divergence)div, dep, work, wb));
        for (i = 0; i < n; ++i) CHECK_NEAR(rdep[i], dep[i], TOL_DIV);
    }
    /* backward: dhidden = G w, dweight += Gᵀ h, with G from the materialised backward */
    for (given = 0; given < 2; ++given) {
        go.data = G; go.dtype = VPPO_F32; go.row_stride = V;
        CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L, ids, given ? rls : NULL, given ? ren : NULL, dl, de, &go));
        for (i = 0; i < V * d; ++i) dw[i] = 0.5f;
        CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(h, w, n, d, V, c->temp, ids, given ? rls : NULL,
                                                            given ? ren : NULL, dl, de, dh, dw, work, wb));
        for (i = 0; i < n; ++i)
            for (k = 0; k < d; ++k) {
                double ref = 0.0, mag = 0.0;
                for (j = 0; j < V; ++j) { ref += (double)G[i * V + j] * w[j * d + k]; mag += fabs((double)G[i * V + j] * w[j * d + k]); }
                CHECK(fabs(dh[i * d + k] - ref) <= 1e-7 + 1e-5 * mag);
            }
        for (j = 0; j < V; ++j)
            for (k = 0; k < d; ++k) {
                double ref = 0.5, mag = 0.5;
                for (i = 0; i < n; ++i) { ref += (double)G[i * V + j] * h[i * d + k]; mag += fabs((double)G[i * V + j] * h[i * d + k]); }
                CHECK(fabs(dw[j * d + k] - ref) <= 1e-7 + 1e-5 * mag);
            }
    }
    free(h); free(ha); free(w); free(z); free(za); free(lp); free(ls); free(en); free(rlp); free(rls); free(ren);
    free(dep); free(rdep); free(dl); free(de); free(G); free(dh); free(dw); free(ids); free(work);
}

void linear_head_matches_materialised_logits(void)
{
    static const lin_case cases[] = {
        { 1, 3, 1, 1.0f }, { 5, 17, 50, 1.0f }, { 70, 8, 300, 0.8f }, { 3, 3, 5000, 1.0f }, { 66, 16, 4500, 1.2f },
        /* the GEMM's blocks: d 300 crosses its k slice (256), 873-column tiles its m block
           (144) in dweight; 2621-column tiles (d 100) cross its n block (1024) */
        { 70, 300, 1000, 1.0f }, { 9, 100, 2700, 0.9f },
    };
    const vppo_isa before = vppo_isa_active();
    rng r = rng_make(777);
    int isa;
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        size_t c;
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        for (c = 0; c < sizeof cases / sizeof cases[0]; ++c) check_linear_case(&cases[c], &r);
    }
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

/* The GEMM's promise: an entry's sum has one order whatever the tiling, so rows computed
   in a call of n rows and in a call of the last n - r0 rows alone (other places in the
   GEMM's register and cache tiles: row 60 is mid-panel in the first, first in the second)
   are the same bits (with VPPO_USE_CBLAS: see rows_match): logp, lse, entropy and
   dhidden; and, with OpenMP, dhidden and dweight are the same bits for 1 and 2 threads (the second shape makes the GEMM's tile
   loop run in parallel). Every ISA this machine runs. */
/* The same bits with the library's GEMM. With VPPO_USE_CBLAS the BLAS blocks its sums
   by the shape and thread count, so there the rows only agree to rounding: within
   1e-4 (1 + |x|), far below any difference a wrong row or tile would make. */
static int rows_match(const float *x, const float *y, int64_t n)
{
#ifdef VPPO_USE_CBLAS
    int64_t i;
    for (i = 0; i < n; ++i)
        if (!(fabs((double)x[i] - (double)y[i]) <= 1e-4 * (1.0 + fabs((double)x[i])))) return 0;
    return 1;
#else
    return memcmp(x, y, (size_t)n * sizeof(float)) == 0;
#endif
}

static void rows_independent_case(int64_t n, int64_t d, int64_t V, int64_t r0, uint64_t seed)
{
    const int64_t m = n - r0;
    rng r = rng_make(seed);
    float *h = randoms(&r, n * d, 1.0), *w = randoms(&r, V * d, 1.5 / sqrt((double)d)), *g = randoms(&r, n, 1.0);
    float *all = floats_new(3 * n, 0), *part = floats_new(3 * m, 0), *dh = floats_new(n * d, 0), *dhp = floats_new(m * d, 0);
    float *dw1 = floats_new(V * d, 0), *dw2 = floats_new(V * d, 0), *dh2 = floats_new(n * d, 0);
    int32_t *ids = (int32_t *)malloc((size_t)n * sizeof(int32_t));
    size_t wb = vppo_linear_workspace(n, d, V), wbp = vppo_linear_workspace(m, d, V);
    void *work = malloc(wb), *workp = malloc(wbp);
    int64_t i;
    int isa;
    for (i = 0; i < n; ++i) ids[i] = (int32_t)rng_int(&r, 0, V - 1);
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        CHECK_STATUS(VPPO_OK, vppo_linear_logprobs(h, w, n, d, V, 1.0f, ids, all, all + n, all + 2 * n, work, wb));
        CHECK_STATUS(VPPO_OK, vppo_linear_logprobs(h + r0 * d, w, m, d, V, 1.0f, ids + r0, part, part + m, part + 2 * m,
                                                   workp, wbp));
        for (i = 0; i < 3; ++i) CHECK(rows_match(all + i * n + r0, part + i * m, m));
        CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(h, w, n, d, V, 1.0f, ids, all + n, all + 2 * n, g, g, dh,
                                                            dw1, work, wb));
        CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(h + r0 * d, w, m, d, V, 1.0f, ids + r0, all + n + r0,
                                                            all + 2 * n + r0, g + r0, g + r0, dhp, NULL, workp, wbp));
        CHECK(rows_match(dh + r0 * d, dhp, m * d));
#ifdef _OPENMP
        {
            const int threads = omp_get_max_threads();
            memset(dw1, 0, (size_t)(V * d) * sizeof(float));
            memset(dw2, 0, (size_t)(V * d) * sizeof(float));
            omp_set_num_threads(1);
            CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(h, w, n, d, V, 1.0f, ids, NULL, NULL, g, g, dh, dw1,
                                                                work, wb));
            omp_set_num_threads(2);
            CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(h, w, n, d, V, 1.0f, ids, NULL, NULL, g, g, dh2, dw2,
                                                                work, wb));
            omp_set_num_threads(threads);
            CHECK(rows_match(dh, dh2, n * d));
            CHECK(rows_match(dw1, dw2, V * d));
        }
#endif
    }
    free(h); free(w); free(g); free(all); free(part); free(dh); free(dhp); free(dw1); free(dw2); free(dh2);
    free(ids); free(work); free(workp);
}

void linear_head_rows_independent_of_tiling(void)
{
    const vppo_isa before = vppo_isa_active();
    rows_independent_case(70, 300, 1000, 60, 1616);   /* d crosses the GEMM's k slice */
    rows_independent_case(150, 512, 600, 140, 1617);  /* GEMM tile regions big enough for OpenMP */
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

void linear_head_workspace_and_errors(void)
{
    const int64_t n = 4, d = 5, V = 9;
    rng r = rng_make(5);
    float *h = randoms(&r, n * d, 1.0), *w = randoms(&r, V * d, 1.0), out[4], dh[20];
    int32_t ids[4] = { 0, 8, 3, 2 }, bad_ids[4] = { 0, 9, 3, 2 };
    size_t wb = vppo_linear_workspace(n, d, V);
    void *work = malloc(wb);
    /* the benchmark's shape: extra memory at most 1/20 of the materialised logits */
    CHECK(vppo_linear_workspace(256, 512, 151936) * 20 <= (size_t)256 * 151936 * 4);
    CHECK(vppo_linear_workspace(256, 3584, 151936) * 20 <= (size_t)256 * 151936 * 4);
    CHECK(wb > 0);
    CHECK(vppo_linear_workspace(-1, d, V) == 0 && vppo_linear_workspace(n, 0, V) == 0 && vppo_linear_workspace(n, d, 0) == 0);
    CHECK_STATUS(VPPO_ERR_WORKSPACE, vppo_linear_logprobs(h, w, n, d, V, 1.0f, ids, out, NULL, NULL, work, wb - 1));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_linear_logprobs(NULL, w, n, d, V, 1.0f, ids, out, NULL, NULL, work, wb));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_linear_logprobs(h, w, n, d, V, 1.0f, NULL, out, NULL, NULL, work, wb));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_linear_logprobs(h, w, n, d, V, 1.0f, ids, out, NULL, NULL, NULL, wb));
    CHECK_STATUS(VPPO_ERR_INDEX, vppo_linear_logprobs(h, w, n, d, V, 1.0f, bad_ids, out, NULL, NULL, work, wb));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_linear_logprobs(h, w, n, d, V, 0.0f, ids, out, NULL, NULL, work, wb));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_linear_logprobs(h, w, n, 0, V, 1.0f, ids, out, NULL, NULL, work, wb));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_linear_dependency(h, h, w, n, d, V, 1.0f, (vppo_divergence)7, out, work, wb));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_linear_dependency(h, NULL, w, n, d, V, 1.0f, VPPO_DIV_KL, out, work, wb));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_linear_logprobs_backward(h, w, n, d, V, 1.0f, ids, NULL, NULL, out, NULL, NULL, NULL, work, wb));
    h[7] = NAN;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_linear_logprobs(h, w, n, d, V, 1.0f, ids, out, NULL, NULL, work, wb));
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_linear_logprobs_backward(h, w, n, d, V, 1.0f, ids, NULL, NULL, out, NULL, dh, NULL, work, wb));
    h[7] = 0.0f;
    w[44] = INFINITY;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_linear_dependency(h, h, w, n, d, V, 1.0f, VPPO_DIV_JS, out, work, wb));
    w[44] = 0.0f;
    /* n = 0 is fine */
    CHECK_STATUS(VPPO_OK, vppo_linear_logprobs(h, w, 0, d, V, 1.0f, ids, out, NULL, NULL, work, vppo_linear_workspace(0, d, V)));
    free(h); free(w); free(work);
}
