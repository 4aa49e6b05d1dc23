/* tests/test_perception.c - docs/spec.md §2: dependency from sampled log-probs, and the logits
   kernels (log-probs, entropy, KL/JS, backward) against float64 references. */
#include "test.h"

/* ---------------------------------------------------------------- §2.1 */

void dependency_sampled_matches_estimator_table(void)
{
    rng r = rng_make(100);
    test_batch b = batch_make(&r, 9, 40, 0, 1);
    float *logp = floats_new(b.n, NAN), *aug = floats_new(b.n, NAN), *dep = floats_new(b.n, 0);
    int64_t t;
    int est;
    for (t = 0; t < b.n; ++t) {
        if (!b.mask[t]) continue;          /* NaN stays at invalid positions: it must be ignored */
        logp[t] = (float)-rng_range(&r, 0.01, 4);
        /* small, moderate and huge changes under the perturbation */
        aug[t] = logp[t] + (float)(rng_uniform(&r) < 0.1 ? rng_range(&r, -30, 30) : rng_normal(&r) * 0.7);
    }
    for (est = VPPO_EST_K3; est <= VPPO_EST_PROB_DROP; ++est) {
        CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&b.s, logp, aug, (vppo_estimator)est, dep));
        for (t = 0; t < b.n; ++t) {
            double want = b.mask[t] ? ref_dependency((vppo_estimator)est, logp[t], aug[t]) : 0.0;
            CHECK_NEAR(want, dep[t], TOL_TOKEN);
        }
    }
    batch_free(&b); free(logp); free(aug); free(dep);
}

void dependency_sampled_k3_clamps_like_the_released_code(void)
{
    const int64_t off[] = { 0, 8 };
    const float logp[8] = { -1, -1, -1, -1, -2, -0.5f, -3, -1 };
    const float aug[8] = { -1, -31, 29, -1.0001f, -2.5f, -0.25f, -3.75f, -21 };
    float dep[8];
    vppo_seqs s;
    int i;
    s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K3, dep));
    CHECK(dep[0] == 0.0f);                       /* no change, exactly 0 */
    CHECK(dep[1] == 10.0f);                      /* d = -30 -> -20 -> 19 -> clamped to 10 */
    CHECK(dep[2] == 10.0f);                      /* d = 30 -> 20 -> huge -> 10 */
    CHECK(dep[3] > 0.0f && dep[3] < 1e-8f);      /* d = -1e-4: about d^2/2 = 5e-9 */
    CHECK(dep[7] == 10.0f);                      /* d = -20: 19 -> 10 */
    for (i = 4; i < 7; ++i) {                    /* moderate d: exp(d) - d - 1 */
        double d = (double)aug[i] - logp[i];
        CHECK_NEAR(exp(d) - d - 1, dep[i], TOL_TOKEN);
    }
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K1, dep));
    CHECK(dep[1] == 20.0f && dep[2] == -20.0f);  /* -clamp(d) */
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K2, dep));
    CHECK(dep[1] == 200.0f);
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_ABS, dep));
    CHECK(dep[1] == 20.0f && dep[2] == 20.0f);
}

void dependency_sampled_zero_at_invalid_positions(void)
{
    const int64_t off[] = { 0, 3, 6 };
    const uint8_t mask[6] = { 1, 0, 1, 0, 0, 0 };
    const float logp[6] = { -1, NAN, -2, INFINITY, NAN, -1 };
    const float aug[6] = { -2, NAN, -1, NAN, -INFINITY, -3 };
    float dep[6];
    vppo_seqs s;
    int est;
    s.n_seqs = 2; s.offsets = off; s.mask = mask;
    for (est = VPPO_EST_K3; est <= VPPO_EST_PROB_DROP; ++est) {
        memset(dep, 0x7f, sizeof dep);
        CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, (vppo_estimator)est, dep));
        CHECK(dep[1] == 0.0f && dep[3] == 0.0f && dep[4] == 0.0f && dep[5] == 0.0f);
        CHECK(dep[0] != 0.0f && dep[2] != 0.0f);
    }
}

void dependency_sampled_handles_minus_inf(void)
{
    const int64_t off[] = { 0, 2 };
    float logp[2] = { -0.5f, -INFINITY }, aug[2] = { -INFINITY, -1.0f }, dep[2];
    vppo_seqs s;
    s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K3, dep));
    CHECK(dep[0] == 10.0f && dep[1] == 10.0f);           /* d = -inf -> -20, d = +inf -> 20 */
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K1, dep));
    CHECK(dep[0] == 20.0f && dep[1] == -20.0f);
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_PROB_DROP, dep));
    CHECK_NEAR(exp(-0.5), dep[0], TOL_TOKEN);            /* exp(logp) - 0 */
    CHECK_NEAR(-exp(-1.0), dep[1], TOL_TOKEN);
    logp[1] = -INFINITY; aug[1] = -INFINITY;             /* d = NaN */
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K3, dep));
    logp[1] = INFINITY; aug[1] = -1.0f;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K3, dep));
    logp[1] = -1.0f; aug[1] = NAN;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K3, dep));
}

/* ---------------------------------------------------------------- logits helpers */

/* A logits matrix owned by the test: data in the given dtype, padding filled with NaN
   (which the kernels must never read). */
typedef struct test_logits { vppo_logits x; void *buf; } test_logits;

static test_logits logits_alloc(vppo_dtype dt, int64_t n_rows, int64_t V, int64_t stride, float T)
{
    test_logits L;
    int64_t i, total = n_rows * stride;
    size_t es = dt == VPPO_F32 ? 4 : 2;
    L.buf = malloc((size_t)(total > 0 ? total : 1) * es);
    for (i = 0; i < total; ++i) {
        if (dt == VPPO_F32) ((float *)L.buf)[i] = NAN;
        else ((uint16_t *)L.buf)[i] = 0x7fc1;   /* NaN in both bf16 and f16 */
    }
    L.x.data = L.buf; L.x.dtype = dt; L.x.n_rows = n_rows; L.x.vocab = V; L.x.row_stride = stride;
    L.x.temperature = T;
    return L;
}

/* Set entry (r, j) to (about) v; returns the exact value stored. */
static double logits_set(test_logits *L, int64_t r, int64_t j, double v)
{
    int64_t at = r * L->x.row_stride + j;
    if (L->x.dtype == VPPO_F32) { ((float *)L->buf)[at] = (float)v; return (float)v; }
    if (L->x.dtype == VPPO_BF16) {
        uint16_t h = test_f32_to_bf16_trunc((float)v);
        ((uint16_t *)L->buf)[at] = h;
        return test_bf16_value(h);
    }
    {   /* f16: round v to a multiple of 1/64 within +-60, exactly representable */
        double q = floor(v * 64 + 0.5) / 64;
        if (v == -INFINITY) q = -INFINITY;
        else q = q > 60 ? 60 : (q < -60 ? -60 : q);
        ((uint16_t *)L->buf)[at] = test_f32_to_f16_exact(q);
        return q;
    }
}

/* u = z / T of row r, decoded by the test's own converters. */
static void logits_row_u(const test_logits *L, int64_t r, double *u)
{
    int64_t j;
    for (j = 0; j < L->x.vocab; ++j) {
        int64_t at = r * L->x.row_stride + j;
        double z = L->x.dtype == VPPO_F32 ? (double)((const float *)L->buf)[at]
                 : L->x.dtype == VPPO_BF16 ? test_bf16_value(((const uint16_t *)L->buf)[at])
                 : test_f16_value(((const uint16_t *)L->buf)[at]);
        u[j] = z / (double)L->x.temperature;
    }
}

/* Random logits: N(0, scale), a fraction of entries -inf (never a whole row). */
static void logits_fill(test_logits *L, rng *r, double scale, double p_neg_inf)
{
    int64_t i, j;
    for (i = 0; i < L->x.n_rows; ++i)
        for (j = 0; j < L->x.vocab; ++j) {
            double v = rng_uniform(r) < p_neg_inf && j != i % L->x.vocab ? -INFINITY : rng_normal(r) * scale;
            logits_set(L, i, j, v);
        }
}

/* Compare vppo_logprobs with the reference on every row. */
static void check_logprobs(const test_logits *L, rng *r)
{
    const int64_t n = L->x.n_rows, V = L->x.vocab;
    int32_t *ids = (int32_t *)malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    float *logp = floats_new(n, 0), *lse = floats_new(n, 0), *ent = floats_new(n, 0);
    double *u = doubles_new(V, 0), *lp = doubles_new(V, 0);
    int64_t i;
    for (i = 0; i < n; ++i) ids[i] = (int32_t)rng_int(r, 0, V - 1);
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&L->x, ids, logp, lse, ent));
    for (i = 0; i < n; ++i) {
        double ref_lse;
        logits_row_u(L, i, u);
        ref_lse = ref_log_softmax(u, V, lp);
        CHECK_NEAR(ref_lse, lse[i], TOL_LSE);
        CHECK_NEAR(lp[ids[i]], logp[i], TOL_LSE);
        CHECK_NEAR(ref_entropy(lp, V), ent[i], TOL_DIV);
    }
    free(ids); free(logp); free(lse); free(ent); free(u); free(lp);
}

/* ---------------------------------------------------------------- §2.3 */

void dtype_conversions_are_exact(void)
{
    /* With vocab 1, lse is the (divided) logit itself: every finite bf16 and f16 pattern
       must come out as its exact value. */
    const vppo_dtype dts[2] = { VPPO_BF16, VPPO_F16 };
    int d;
    for (d = 0; d < 2; ++d) {
        test_logits L = logits_alloc(dts[d], 65536, 1, 1, 1.0f);
        float *lse = floats_new(65536, 0);
        int64_t n = 0, h, wrong = 0;
        double first_bad = 0;
        for (h = 0; h < 65536; ++h) {
            double v = dts[d] == VPPO_BF16 ? test_bf16_value((uint16_t)h) : test_f16_value((uint16_t)h);
            if (isnan(v) || isinf(v)) continue;
            ((uint16_t *)L.buf)[n++] = (uint16_t)h;
        }
        L.x.n_rows = n;
        CHECK_STATUS(VPPO_OK, vppo_logprobs(&L.x, NULL, NULL, lse, NULL));
        for (h = 0; h < n; ++h) {
            uint16_t bits = ((uint16_t *)L.buf)[h];
            double v = dts[d] == VPPO_BF16 ? test_bf16_value(bits) : test_f16_value(bits);
            if ((double)lse[h] != v) { if (!wrong) first_bad = v; ++wrong; }
        }
        CHECK_EQ_INT(0, wrong);
        if (wrong) fprintf(stderr, "  first wrong value %.9g\n", first_bad);
        CHECK(n > 60000);
        free(lse); free(L.buf);
    }
    {   /* known f16 patterns, from the IEEE 754 binary16 definition */
        CHECK(test_f16_value(0x3c00) == 1.0 && test_f16_value(0xc000) == -2.0);
        CHECK(test_f16_value(0x7bff) == 65504.0 && test_f16_value(0x0001) == ldexp(1, -24));
        CHECK(test_f16_value(0x0400) == ldexp(1, -14));
        CHECK(test_bf16_value(0x3f80) == 1.0 && test_bf16_value(0xc040) == -3.0);
    }
}

void logprobs_match_float64_reference_f32(void)
{
    const int64_t vocabs[] = { 1, 2, 7, 255, 256, 257, 1000, 5003 };
    rng r = rng_make(200);
    size_t k;
    for (k = 0; k < sizeof vocabs / sizeof vocabs[0]; ++k) {
        test_logits L = logits_alloc(VPPO_F32, 9, vocabs[k], vocabs[k], 1.0f);
        logits_fill(&L, &r, 3.0, 0.0);
        check_logprobs(&L, &r);
        free(L.buf);
    }
}

void logprobs_match_float64_reference_bf16_f16(void)
{
    rng r = rng_make(201);
    int d;
    for (d = 1; d <= 2; ++d) {
        test_logits L = logits_alloc((vppo_dtype)d, 7, 777, 780, 1.0f);
        logits_fill(&L, &r, 4.0, 0.05);
        check_logprobs(&L, &r);
        free(L.buf);
    }
}

void logprobs_temperature_and_stride(void)
{
    const float temps[] = { 0.3f, 0.7f, 1.0f, 1.3f, 5.0f };
    rng r = rng_make(202);
    size_t k;
    for (k = 0; k < sizeof temps / sizeof temps[0]; ++k) {
        test_logits L = logits_alloc((vppo_dtype)(k % 3), 5, 301, 301 + 17 * (int64_t)k, temps[k]);
        logits_fill(&L, &r, 2.5, 0.02);
        check_logprobs(&L, &r);   /* the NaN padding between rows is never read */
        free(L.buf);
    }
}

void logprobs_minus_inf_entries_contribute_zero(void)
{
    rng r = rng_make(203);
    test_logits L = logits_alloc(VPPO_F32, 6, 600, 600, 1.0f);
    int32_t ids[2] = { 0, 1 };
    float logp[2], lse[2], ent[2];
    logits_fill(&L, &r, 2.0, 0.7);   /* mostly masked vocabulary */
    check_logprobs(&L, &r);
    {   /* one finite entry: p = 1 there, lse = its value, entropy exactly 0 */
        test_logits M = logits_alloc(VPPO_F32, 2, 5, 5, 1.0f);
        int j;
        for (j = 0; j < 5; ++j) { logits_set(&M, 0, j, -INFINITY); logits_set(&M, 1, j, 0.5 * j); }
        logits_set(&M, 0, 3, 2.5);
        CHECK_STATUS(VPPO_OK, vppo_logprobs(&M.x, ids, logp, lse, ent));
        CHECK(lse[0] == 2.5f && ent[0] == 0.0f);
        CHECK(logp[0] == -INFINITY);          /* the token's logit is -inf: probability 0 */
        CHECK(isfinite(logp[1]) && ent[1] > 0.0f);
        free(M.buf);
    }
    free(L.buf);
}

void logprobs_huge_and_tiny_logits(void)
{
    rng r = rng_make(204);
    test_logits L = logits_alloc(VPPO_F32, 4, 1000, 1000, 1.0f);
    int64_t j;
    float lse[4], ent[4];
    for (j = 0; j < 1000; ++j) {
        logits_set(&L, 0, j, 3e38 * (j == 17 ? 1.0 : 0.5));     /* near FLT_MAX */
        logits_set(&L, 1, j, -3e38 + 1e36 * rng_uniform(&r));   /* near -FLT_MAX */
        logits_set(&L, 2, j, 1e-30 * rng_normal(&r));           /* tiny: uniform distribution */
        logits_set(&L, 3, j, 42.0);                             /* all equal */
    }
    check_logprobs(&L, &r);
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&L.x, NULL, NULL, lse, ent));
    CHECK(lse[0] == 3e38f && ent[0] == 0.0f);
    CHECK_NEAR(log(1000.0), lse[2], TOL_LSE);
    CHECK_NEAR(log(1000.0), ent[2], TOL_DIV);
    CHECK_NEAR(42.0 + log(1000.0), lse[3], TOL_LSE);
    CHECK_NEAR(log(1000.0), ent[3], TOL_DIV);
    free(L.buf);
    {   /* a tiny temperature makes the logits huge after division */
        test_logits M = logits_alloc(VPPO_F32, 3, 500, 500, 1e-3f);
        logits_fill(&M, &r, 30.0, 0.0);
        check_logprobs(&M, &r);
        free(M.buf);
    }
}

/* ---------------------------------------------------------------- §2.2 */

static void check_dependency_logits(const test_logits *P, const test_logits *Q)
{
    const int64_t n = P->x.n_rows, V = P->x.vocab;
    float *dep = floats_new(n, 0);
    double *u = doubles_new(V, 0), *v = doubles_new(V, 0), *lp = doubles_new(V, 0), *lq = doubles_new(V, 0);
    int64_t i;
    int div;
    for (div = VPPO_DIV_KL; div <= VPPO_DIV_JS; ++div) {
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P->x, &Q->x, (vppo_divergence)div, dep));
        for (i = 0; i < n; ++i) {
            double want;
            logits_row_u(P, i, u); ref_log_softmax(u, V, lp);
            logits_row_u(Q, i, v); ref_log_softmax(v, V, lq);
            want = div == VPPO_DIV_KL ? ref_kl(lp, lq, V) : div == VPPO_DIV_KL_REVERSE ? ref_kl(lq, lp, V)
                 : ref_js(lp, lq, V);
            if (want < 0) want = 0;
            CHECK_NEAR(want, dep[i], TOL_DIV);
        }
    }
    free(dep); free(u); free(v); free(lp); free(lq);
}

void dependency_logits_kl_reverse_js_match_reference(void)
{
    const int64_t vocabs[] = { 1, 3, 256, 1001, 4099 };
    rng r = rng_make(300);
    size_t k;
    for (k = 0; k < sizeof vocabs / sizeof vocabs[0]; ++k) {
        const int64_t V = vocabs[k], n = 8;
        test_logits P = logits_alloc(VPPO_F32, n, V, V, 1.0f), Q = logits_alloc(VPPO_F32, n, V, V + 3, 1.0f);
        int64_t i, j;
        for (i = 0; i < n; ++i)
            for (j = 0; j < V; ++j) {
                /* row i: perturbation strength grows with i, from invisible to large */
                double z = rng_normal(&r) * 3, strength = i == 0 ? 0 : pow(10.0, (double)i - 6);
                logits_set(&P, i, j, z);
                logits_set(&Q, i, j, z + strength * rng_normal(&r));
            }
        check_dependency_logits(&P, &Q);
        free(P.buf); free(Q.buf);
    }
}

void dependency_logits_identical_rows_give_zero(void)
{
    rng r = rng_make(301);
    test_logits P = logits_alloc(VPPO_BF16, 5, 3000, 3000, 0.9f), Q = logits_alloc(VPPO_BF16, 5, 3000, 3000, 0.9f);
    float dep[5];
    int div, i;
    logits_fill(&P, &r, 5.0, 0.1);
    memcpy(Q.buf, P.buf, 5 * 3000 * 2);
    for (div = VPPO_DIV_KL; div <= VPPO_DIV_JS; ++div) {
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P.x, &Q.x, (vppo_divergence)div, dep));
        for (i = 0; i < 5; ++i) CHECK(dep[i] == 0.0f);   /* exactly, not about */
    }
    free(P.buf); free(Q.buf);
}

void dependency_logits_kl_infinite_when_q_zero(void)
{
    test_logits P = logits_alloc(VPPO_F32, 2, 4, 4, 1.0f), Q = logits_alloc(VPPO_F32, 2, 4, 4, 1.0f);
    float dep[2];
    int j;
    for (j = 0; j < 4; ++j) { logits_set(&P, 0, j, j); logits_set(&Q, 0, j, j); logits_set(&P, 1, j, j); logits_set(&Q, 1, j, j); }
    logits_set(&Q, 0, 2, -INFINITY);                 /* q_2 = 0 < p_2 */
    logits_set(&P, 1, 1, -INFINITY);                 /* p_1 = 0: no contribution to KL(P||Q) */
    CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P.x, &Q.x, VPPO_DIV_KL, dep));
    CHECK(isinf(dep[0]) && dep[0] > 0);
    CHECK(isfinite(dep[1]) && dep[1] > 0);
    CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P.x, &Q.x, VPPO_DIV_KL_REVERSE, dep));
    CHECK(isfinite(dep[0]) && isinf(dep[1]));        /* KL(Q||P) is infinite on row 1 instead */
    CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P.x, &Q.x, VPPO_DIV_JS, dep));
    CHECK(isfinite(dep[0]) && isfinite(dep[1]) && dep[0] <= (float)log(2.0) && dep[1] <= (float)log(2.0));
    check_dependency_logits(&P, &Q);
    free(P.buf); free(Q.buf);
}

void dependency_logits_mixed_dtypes_and_temperatures(void)
{
    rng r = rng_make(302);
    int a, b;
    for (a = 0; a < 3; ++a)
        for (b = 0; b < 3; ++b) {
            test_logits P = logits_alloc((vppo_dtype)a, 4, 513, 520, 1.0f), Q = logits_alloc((vppo_dtype)b, 4, 513, 513, 0.8f);
            logits_fill(&P, &r, 2.0, 0.0);
            logits_fill(&Q, &r, 2.0, 0.0);
            check_dependency_logits(&P, &Q);
            free(P.buf); free(Q.buf);
        }
}

/* ---------------------------------------------------------------- backward */

/* dL/dz_j = (1/T) [ g (delta(j, id) - p_j) - h p_j (log p_j + H) ], in double. */
static void ref_backward_row(const double *u, int64_t V, double T, int32_t id, double g, double h, double *grad)
{
    double *lp = doubles_new(V, 0), H;
    int64_t j;
    ref_log_softmax(u, V, lp);
    H = ref_entropy(lp, V);
    for (j = 0; j < V; ++j) {
        double p = exp(lp[j]);
        grad[j] = (g * ((j == id) - p) - (p > 0 ? h * p * (lp[j] + H) : 0.0)) / T;
    }
    free(lp);
}

/* Run the backward (every combination of given/recomputed lse and entropy) and compare
   each element with the reference. */
static void check_backward(const test_logits *L, rng *r, int with_dlogp, int with_dentropy)
{
    const int64_t n = L->x.n_rows, V = L->x.vocab;
    int32_t *ids = (int32_t *)malloc((size_t)n * sizeof(int32_t));
    float *g = floats_new(n, 0), *h = floats_new(n, 0), *lse = floats_new(n, 0), *ent = floats_new(n, 0);
    float *out = floats_new(n * (V + 2), NAN);
    double *u = doubles_new(V, 0), *want = doubles_new(V, 0);
    vppo_grad_out go;
    int64_t i, j;
    int variant;
    for (i = 0; i < n; ++i) {
        ids[i] = (int32_t)rng_int(r, 0, V - 1);
        g[i] = (float)rng_normal(r);
        h[i] = (float)rng_normal(r);
    }
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&L->x, ids, NULL, lse, ent));
    go.data = out; go.dtype = VPPO_F32; go.row_stride = V + 2;
    for (variant = 0; variant < 4; ++variant) {
        const float *given_lse = (variant & 1) ? lse : NULL, *given_ent = (variant & 2) ? ent : NULL;
        CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L->x, ids, given_lse, given_ent,
            with_dlogp ? g : NULL, with_dentropy ? h : NULL, &go));
        for (i = 0; i < n; ++i) {
            logits_row_u(L, i, u);
            ref_backward_row(u, V, L->x.temperature, ids[i], with_dlogp ? g[i] : 0, with_dentropy ? h[i] : 0, want);
            for (j = 0; j < V; ++j) CHECK_NEAR(want[j], out[i * (V + 2) + j], TOL_DLOGITS);
            CHECK(isnan(out[i * (V + 2) + V]) && isnan(out[i * (V + 2) + V + 1]));   /* padding untouched */
        }
    }
    free(ids); free(g); free(h); free(lse); free(ent); free(out); free(u); free(want);
}

void logprobs_backward_matches_analytic_reference(void)
{
    rng r = rng_make(400);
    int d;
    for (d = 0; d < 3; ++d) {
        test_logits L = logits_alloc((vppo_dtype)d, 5, 333, 340, d == 0 ? 1.0f : 0.7f);
        logits_fill(&L, &r, 2.0, 0.0);
        check_backward(&L, &r, 1, 0);   /* without the entropy gradient */
        check_backward(&L, &r, 1, 1);   /* with it */
        check_backward(&L, &r, 0, 1);   /* only it */
        free(L.buf);
    }
}

/* L(z) = sum_r g_r logp_r + h_r H_r in double; central differences in z. */
static double ref_backward_objective(const double *z, int64_t n, int64_t V, double T, const int32_t *ids,
                                     const double *g, const double *h)
{
    double *u = doubles_new(V, 0), *lp = doubles_new(V, 0), total = 0;
    int64_t i, j;
    for (i = 0; i < n; ++i) {
        for (j = 0; j < V; ++j) u[j] = z[i * V + j] / T;
        ref_log_softmax(u, V, lp);
        total += g[i] * lp[ids[i]] + h[i] * ref_entropy(lp, V);
    }
    free(u); free(lp);
    return total;
}

void logprobs_backward_analytic_reference_matches_finite_differences(void)
{
    const int64_t n = 3, V = 40;
    const double temps[2] = { 1.0, 0.6 };
    rng r = rng_make(401);
    int32_t ids[3];
    double z[3 * 40], g[3], h[3], u[40], grad[40];
    int64_t i, j;
    int k;
    for (k = 0; k < 2; ++k) {
        for (i = 0; i < n; ++i) { ids[i] = (int32_t)rng_int(&r, 0, V - 1); g[i] = rng_normal(&r); h[i] = rng_normal(&r); }
        for (i = 0; i < n * V; ++i) z[i] = rng_normal(&r) * 2;
        for (i = 0; i < n; ++i) {
            for (j = 0; j < V; ++j) u[j] = z[i * V + j] / temps[k];
            ref_backward_row(u, V, temps[k], ids[i], g[i], h[i], grad);
            for (j = 0; j < V; ++j) {
                const double step = 1e-5, keep = z[i * V + j];
                double up, down;
                z[i * V + j] = keep + step; up = ref_backward_objective(z, n, V, temps[k], ids, g, h);
                z[i * V + j] = keep - step; down = ref_backward_objective(z, n, V, temps[k], ids, g, h);
                z[i * V + j] = keep;
                CHECK_NEAR((up - down) / (2 * step), grad[j], 1e-8, 1e-6);
            }
        }
    }
    /* and the library through the same finite differences, on float inputs */
    {
        test_logits L = logits_alloc(VPPO_F32, n, V, V, 0.8f);
        float gf[3], hf[3], out[3 * 40];
        vppo_grad_out go;
        for (i = 0; i < n * V; ++i) { z[i] = (float)(rng_normal(&r) * 2); ((float *)L.buf)[i] = (float)z[i]; }
        for (i = 0; i < n; ++i) { gf[i] = (float)g[i]; hf[i] = (float)h[i]; }
        go.data = out; go.dtype = VPPO_F32; go.row_stride = V;
        CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L.x, ids, NULL, NULL, gf, hf, &go));
        for (i = 0; i < n; ++i) { g[i] = gf[i]; h[i] = hf[i]; }
        for (j = 0; j < n * V; ++j) {
            const double step = 1e-5, keep = z[j];
            double up, down;
            z[j] = keep + step; up = ref_backward_objective(z, n, V, 0.8f, ids, g, h);
            z[j] = keep - step; down = ref_backward_objective(z, n, V, 0.8f, ids, g, h);
            z[j] = keep;
            CHECK_NEAR((up - down) / (2 * step), out[j], 1e-7, 1e-5);
        }
        free(L.buf);
    }
}

void logprobs_backward_recomputes_lse_and_entropy(void)
{
    /* check_backward runs all four given/recomputed combinations against one reference;
       here additionally: recomputed equals given to within float rounding of lse */
    rng r = rng_make(402);
    test_logits L = logits_alloc(VPPO_BF16, 4, 1500, 1500, 1.0f);
    int32_t ids[4] = { 0, 10, 100, 1499 };
    float g[4] = { 1, -1, 0.5f, 2 }, h[4] = { 0.3f, -0.2f, 1, 0 }, lse[4], ent[4];
    float *a = floats_new(4 * 1500, 0), *b = floats_new(4 * 1500, 0);
    vppo_grad_out ga, gb;
    int64_t j;
    logits_fill(&L, &r, 3.0, 0.0);
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&L.x, ids, NULL, lse, ent));
    ga.data = a; ga.dtype = VPPO_F32; ga.row_stride = 1500; gb = ga; gb.data = b;
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L.x, ids, lse, ent, g, h, &ga));
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L.x, ids, NULL, NULL, g, h, &gb));
    for (j = 0; j < 4 * 1500; ++j) CHECK_NEAR(b[j], a[j], TOL_DLOGITS);
    check_backward(&L, &r, 1, 1);
    free(a); free(b); free(L.buf);
}

void logprobs_backward_in_place(void)
{
    rng r = rng_make(403);
    const int64_t n = 6, V = 700, stride = 705;
    test_logits L = logits_alloc(VPPO_F32, n, V, stride, 1.1f);
    float *copy = floats_new(n * stride, 0), *out = floats_new(n * stride, 0);
    int32_t ids[6];
    float g[6], h[6];
    vppo_grad_out go;
    int64_t i, j, differ = 0;
    logits_fill(&L, &r, 2.0, 0.05);
    for (i = 0; i < n; ++i) { ids[i] = (int32_t)rng_int(&r, 0, V - 1); g[i] = (float)rng_normal(&r); h[i] = (float)rng_normal(&r); }
    memcpy(copy, L.buf, (size_t)(n * stride) * sizeof(float));
    go.data = out; go.dtype = VPPO_F32; go.row_stride = stride;
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L.x, ids, NULL, NULL, g, h, &go));   /* out of place */
    go.data = L.buf;
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L.x, ids, NULL, NULL, g, h, &go));   /* in place */
    for (i = 0; i < n; ++i)
        for (j = 0; j < V; ++j) differ += memcmp(&out[i * stride + j], &((float *)L.buf)[i * stride + j], 4) != 0;
    CHECK_EQ_INT(0, differ);   /* the same bits */
    for (i = 0; i < n; ++i)    /* the padding between rows keeps its NaN */
        for (j = V; j < stride; ++j) differ += !isnan(((float *)L.buf)[i * stride + j]);
    CHECK_EQ_INT(0, differ);
    /* overlapping buffers that are not exactly in place are refused */
    memcpy(L.buf, copy, (size_t)(n * stride) * sizeof(float));
    go.data = (float *)L.buf + 1;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs_backward(&L.x, ids, NULL, NULL, g, h, &go));
    go.data = L.buf; go.row_stride = stride + 1;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs_backward(&L.x, ids, NULL, NULL, g, h, &go));
    go.row_stride = stride; go.dtype = VPPO_BF16;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs_backward(&L.x, ids, NULL, NULL, g, h, &go));
    CHECK(memcmp(L.buf, copy, (size_t)(n * stride) * sizeof(float)) == 0);   /* untouched */
    free(copy); free(out); free(L.buf);
}

void logprobs_backward_bf16_output(void)
{
    rng r = rng_make(404);
    const int64_t n = 4, V = 999;
    test_logits L = logits_alloc(VPPO_BF16, n, V, V, 1.0f);
    int32_t ids[4] = { 1, 2, 3, 998 };
    float g[4] = { 1, -2, 0.25f, 3 }, h[4] = { 0.5f, 0, -1, 2 }, *f = floats_new(n * V, 0);
    uint16_t *b16 = (uint16_t *)malloc((size_t)(n * V) * 2);
    vppo_grad_out go;
    int64_t j, wrong = 0;
    logits_fill(&L, &r, 3.0, 0.0);
    go.data = f; go.dtype = VPPO_F32; go.row_stride = V;
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L.x, ids, NULL, NULL, g, h, &go));
    go.data = b16; go.dtype = VPPO_BF16;
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&L.x, ids, NULL, NULL, g, h, &go));
    for (j = 0; j < n * V; ++j) wrong += b16[j] != test_f32_to_bf16_round(f[j]);
    CHECK_EQ_INT(0, wrong);
    go.dtype = VPPO_F16;
    CHECK_STATUS(VPPO_ERR_UNSUPPORTED, vppo_logprobs_backward(&L.x, ids, NULL, NULL, g, h, &go));
    free(f); free(b16); free(L.buf);
}

void logprobs_backward_minus_inf_entries(void)
{
    rng r = rng_make(405);
    test_logits L = logits_alloc(VPPO_F32, 5, 300, 300, 1.0f);
    logits_fill(&L, &r, 2.0, 0.5);
    check_backward(&L, &r, 1, 1);   /* -inf entries get 0 (or g at the token), never NaN */
    {
        float z[3] = { -INFINITY, 1.0f, 2.0f }, out[3], g = 2.0f, hh = 1.0f;
        int32_t id = 0;   /* the sampled token has probability 0 */
        vppo_logits x;
        vppo_grad_out go;
        x.data = z; x.dtype = VPPO_F32; x.n_rows = 1; x.vocab = 3; x.row_stride = 3; x.temperature = 1.0f;
        go.data = out; go.dtype = VPPO_F32; go.row_stride = 3;
        CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&x, &id, NULL, NULL, &g, &hh, &go));
        CHECK(out[0] == 2.0f);   /* g * (1 - 0) - h * 0 */
        CHECK(isfinite(out[1]) && isfinite(out[2]));
        CHECK_NEAR(0.0, (double)out[0] + out[1] + out[2], 1e-6, 0);   /* softmax gradients sum to 0 */
    }
    free(L.buf);
}

void logits_kernels_reject_bad_input(void)
{
    float z[2 * 4] = { 0, 1, 2, 3, 4, 5, 6, 7 }, out[8], dep[2], lse[2];
    int32_t ids[2] = { 0, 3 };
    vppo_logits x, y;
    vppo_grad_out go;
    x.data = z; x.dtype = VPPO_F32; x.n_rows = 2; x.vocab = 4; x.row_stride = 4; x.temperature = 1.0f;
    y = x;
    go.data = out; go.dtype = VPPO_F32; go.row_stride = 4;
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&x, ids, out, lse, NULL));
    ids[1] = 4;
    CHECK_STATUS(VPPO_ERR_INDEX, vppo_logprobs(&x, ids, out, lse, NULL));
    CHECK_STATUS(VPPO_ERR_INDEX, vppo_logprobs_backward(&x, ids, NULL, NULL, lse, NULL, &go));
    ids[1] = -1;
    CHECK_STATUS(VPPO_ERR_INDEX, vppo_logprobs(&x, ids, out, lse, NULL));
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&x, ids, NULL, lse, NULL));   /* ids unused without logp */
    ids[1] = 3;
    CHECK_STATUS(VPPO_ERR_NULL, vppo_logprobs(&x, NULL, out, NULL, NULL));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_logprobs_backward(&x, NULL, NULL, NULL, lse, NULL, &go));
    z[5] = NAN;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_logprobs(&x, ids, out, lse, NULL));
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_dependency_logits(&x, &y, VPPO_DIV_KL, dep));
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_dependency_logits(&x, &y, VPPO_DIV_JS, dep));
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_logprobs_backward(&x, ids, NULL, NULL, lse, NULL, &go));
    z[5] = INFINITY;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_logprobs(&x, ids, out, lse, NULL));
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_dependency_logits(&y, &x, VPPO_DIV_KL_REVERSE, dep));
    lse[0] = 1; lse[1] = 1;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_logprobs_backward(&x, ids, lse, NULL, lse, NULL, &go));   /* found in pass 2 */
    z[4] = z[5] = z[6] = z[7] = -INFINITY;   /* a row of only -inf */
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs(&x, ids, out, lse, NULL));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_dependency_logits(&x, &y, VPPO_DIV_KL, dep));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_dependency_logits(&x, &y, VPPO_DIV_JS, dep));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs_backward(&x, ids, NULL, NULL, lse, NULL, &go));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs_backward(&x, ids, lse, NULL, lse, NULL, &go));   /* lse given */
    z[4] = 4; z[5] = 5; z[6] = 6; z[7] = 7;
    x.temperature = 0.0f;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs(&x, ids, out, lse, NULL));
    x.temperature = -1.0f;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_dependency_logits(&x, &y, VPPO_DIV_KL, dep));
    x.temperature = NAN;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs(&x, ids, out, lse, NULL));
    x.temperature = INFINITY;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs(&x, ids, out, lse, NULL));
    x.temperature = 1.0f; x.row_stride = 3;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_logprobs(&x, ids, out, lse, NULL));
    x.row_stride = 4; x.vocab = 0;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_logprobs(&x, ids, out, lse, NULL));
    x.vocab = 4; x.n_rows = -1;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_logprobs(&x, ids, out, lse, NULL));
    x.n_rows = 2; y.vocab = 3; y.row_stride = 4;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_dependency_logits(&x, &y, VPPO_DIV_KL, dep));
    y.vocab = 4; y.n_rows = 1;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_dependency_logits(&x, &y, VPPO_DIV_KL, dep));
    y.n_rows = 2;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_dependency_logits(&x, &y, (vppo_divergence)3, dep));
    x.dtype = (vppo_dtype)5;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs(&x, ids, out, lse, NULL));
    x.dtype = VPPO_F32; x.data = NULL;
    CHECK_STATUS(VPPO_ERR_NULL, vppo_logprobs(&x, ids, out, lse, NULL));
    x.data = z;
    CHECK_STATUS(VPPO_ERR_NULL, vppo_dependency_logits(&x, &y, VPPO_DIV_KL, NULL));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_logprobs_backward(&x, ids, NULL, NULL, lse, NULL, NULL));
    go.row_stride = 3;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_logprobs_backward(&x, ids, NULL, NULL, lse, NULL, &go));
    go.row_stride = 4; go.dtype = (vppo_dtype)9;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_logprobs_backward(&x, ids, NULL, NULL, lse, NULL, &go));
    go.dtype = VPPO_F32;
    lse[0] = NAN;   /* a NaN gradient input */
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_logprobs_backward(&x, ids, NULL, NULL, lse, NULL, &go));
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_logprobs_backward(&x, ids, NULL, NULL, NULL, lse, &go));
    lse[0] = INFINITY;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_logprobs_backward(&x, ids, lse, NULL, NULL, NULL, &go));
    /* empty matrices are fine */
    x.n_rows = 0; y.n_rows = 0;
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&x, ids, out, lse, NULL));
    CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&x, &y, VPPO_DIV_JS, dep));
}

/* A NaN or +inf in only one of the two matrices, in each position of the pair. */
void dependency_logits_checks_each_side_separately(void)
{
    const float bad_values[2] = { NAN, INFINITY };
    float zp[3 * 6], zq[3 * 6], dep[3];
    vppo_logits P, Q;
    int div, side, k, i;
    P.dtype = VPPO_F32; P.n_rows = 3; P.vocab = 6; P.row_stride = 6; P.temperature = 1.0f;
    Q = P;
    P.data = zp; Q.data = zq;
    for (div = VPPO_DIV_KL; div <= VPPO_DIV_JS; ++div)
        for (side = 0; side < 2; ++side)
            for (k = 0; k < 2; ++k) {
                for (i = 0; i < 18; ++i) { zp[i] = 0.1f * (float)i; zq[i] = 0.1f * (float)(17 - i); }
                (side ? zq : zp)[13] = bad_values[k];
                CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_dependency_logits(&P, &Q, (vppo_divergence)div, dep));
                (side ? zq : zp)[13] = 1.0f;
                for (i = 6; i < 12; ++i) (side ? zq : zp)[i] = -INFINITY;   /* row 1 of one side */
                CHECK_STATUS(VPPO_ERR_PARAM, vppo_dependency_logits(&P, &Q, (vppo_divergence)div, dep));
            }
}

/* bf16 rounding of the gradient: nearest, ties to even. With two equal logits p = 1/2,
   so dz_id = g/2 exactly; g/2 = 1 + 3*2^-8 lies exactly between the bf16 neighbours
   1 + 2^-7 (odd) and 1 + 2^-6 (even), and 1 + 2^-8 between 1 (even) and 1 + 2^-7. */
void logprobs_backward_bf16_rounds_ties_to_even(void)
{
    const float z[2] = { 0.0f, 0.0f };
    const float g_values[2] = { 2.0f * (1.0f + 3.0f / 256.0f), 2.0f * (1.0f + 1.0f / 256.0f) };
    const uint16_t want_up[2] = { 0x3f82, 0xbf82 }, want_down[2] = { 0x3f80, 0xbf80 };   /* +-(1 + 2^-6), +-1 */
    uint16_t out[2];
    int32_t id = 0;
    vppo_logits x;
    vppo_grad_out go;
    x.data = z; x.dtype = VPPO_F32; x.n_rows = 1; x.vocab = 2; x.row_stride = 2; x.temperature = 1.0f;
    go.data = out; go.dtype = VPPO_BF16; go.row_stride = 2;
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&x, &id, NULL, NULL, &g_values[0], NULL, &go));
    CHECK_EQ_INT(want_up[0], out[0]);
    CHECK_EQ_INT(want_up[1], out[1]);
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&x, &id, NULL, NULL, &g_values[1], NULL, &go));
    CHECK_EQ_INT(want_down[0], out[0]);
    CHECK_EQ_INT(want_down[1], out[1]);
    CHECK(test_bf16_value(0x3f82) == 1.015625 && test_bf16_value(0x3f80) == 1.0);
}
