/* tests/test_simd.c - the vector paths (§10): every ISA this machine runs against the
   scalar reference on the same inputs, with docs/spec.md §12 tolerances; ISA selection against
   /proc/cpuinfo; bitwise determinism across thread counts and runs. */
#include "test.h"
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* --- what the CPU says it has, read independently of the library ----------- */

#if !defined(VPPO_NO_SIMD) && (defined(__x86_64__) || defined(__i386__))
static int cpuinfo_has(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    int found = 0;
    if (!f) return -1;
    while (!found && fgets(line, sizeof line, f)) {
        char *tok;
        if (strncmp(line, "flags", 5) != 0 && strncmp(line, "Features", 8) != 0) continue;
        for (tok = strtok(strchr(line, ':') ? strchr(line, ':') + 1 : line, " \t\n"); tok; tok = strtok(NULL, " \t\n"))
            if (strcmp(tok, flag) == 0) found = 1;
        break;
    }
    fclose(f);
    return found;
}
#endif

void isa_select_matches_the_cpu(void)
{
    const vppo_isa before = vppo_isa_active();
    int expect[5] = { 1, 0, 0, 0, 0 }, i;
    CHECK_STATUS(VPPO_OK, vppo_isa_select(VPPO_ISA_SCALAR));
    CHECK(vppo_isa_active() == VPPO_ISA_SCALAR);
#if !defined(VPPO_NO_SIMD) && (defined(__x86_64__) || defined(__i386__))
    CHECK(cpuinfo_has("sse2") >= 0);                   /* Linux: /proc/cpuinfo is readable */
    expect[VPPO_ISA_SSE2] = cpuinfo_has("sse2") == 1;
    expect[VPPO_ISA_AVX2] = cpuinfo_has("avx2") == 1 && cpuinfo_has("fma") == 1 && cpuinfo_has("f16c") == 1;
    expect[VPPO_ISA_AVX512] = expect[VPPO_ISA_AVX2] && cpuinfo_has("avx512f") == 1;
#endif
#if !defined(VPPO_NO_SIMD) && defined(__aarch64__)
    expect[VPPO_ISA_NEON] = 1;
#endif
    for (i = VPPO_ISA_SCALAR; i <= VPPO_ISA_NEON; ++i) {
        vppo_status st = vppo_isa_select((vppo_isa)i);
        CHECK_STATUS(expect[i] ? VPPO_OK : VPPO_ERR_UNSUPPORTED, st);
        CHECK(vppo_isa_active() == (vppo_isa)(expect[i] ? i : VPPO_ISA_SCALAR));   /* refusal changes nothing */
        CHECK_STATUS(VPPO_OK, vppo_isa_select(VPPO_ISA_SCALAR));
    }
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_isa_select((vppo_isa)99));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_isa_select((vppo_isa)-1));
    CHECK(strcmp(vppo_isa_name(VPPO_ISA_SCALAR), "scalar") == 0);
    CHECK(strcmp(vppo_isa_name(VPPO_ISA_SSE2), "sse2") == 0);
    CHECK(strcmp(vppo_isa_name(VPPO_ISA_AVX2), "avx2") == 0);
    CHECK(strcmp(vppo_isa_name(VPPO_ISA_AVX512), "avx512") == 0);
    CHECK(strcmp(vppo_isa_name(VPPO_ISA_NEON), "neon") == 0);
    CHECK(strcmp(vppo_isa_name((vppo_isa)99), "unknown") == 0);
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

/* --- logits in any dtype ----------------------------------------------------- */

typedef struct mat { void *mem; vppo_logits x; } mat;

static void mat_set(mat *m, int64_t r, int64_t j, double v)
{
    const int64_t at = r * m->x.row_stride + j;
    if (m->x.dtype == VPPO_F32) ((float *)m->x.data)[at] = (float)v;
    else if (m->x.dtype == VPPO_BF16) ((uint16_t *)m->x.data)[at] = test_f32_to_bf16_trunc((float)v);
    else ((uint16_t *)m->x.data)[at] = test_f32_to_f16_trunc((float)v);   /* toward zero; +-inf kept */
}

/* n x V with row stride V + 3, starting one element past an aligned address. */
static mat mat_new(vppo_dtype dt, int64_t n, int64_t V, float temperature)
{
    mat m;
    const size_t es = dt == VPPO_F32 ? 4 : 2;
    m.mem = calloc((size_t)(n * (V + 3) + 2), es);
    m.x.data = (char *)m.mem + es;
    m.x.dtype = dt;
    m.x.n_rows = n;
    m.x.vocab = V;
    m.x.row_stride = V + 3;
    m.x.temperature = temperature;
    return m;
}

/* KIND_RISING: rows that rise along the vocabulary (with noise), so that the one-pass
   kernels raise their reference again and again, by more and by less than their rescale
   threshold. */
enum { KIND_NORMAL, KIND_HUGE, KIND_TINY, KIND_NEG_INF, KIND_RISING, N_KINDS };

/* P and Q = P perturbed; KIND_NEG_INF puts -inf in both and a few more in Q only. */
static void fill_pair(mat *P, mat *Q, int kind, rng *r)
{
    int64_t i, j;
    for (i = 0; i < P->x.n_rows; ++i)
        for (j = 0; j < P->x.vocab; ++j) {
            double z, w;
            switch (kind) {
            case KIND_HUGE: z = (P->x.dtype == VPPO_F16 ? 3e4 : 1e4) + rng_normal(r) * 3; break;
            case KIND_TINY: z = rng_normal(r) * 1e-3; break;
            case KIND_RISING: z = (double)j * (i == 1 ? 1e-3 : 20.0 / (double)P->x.vocab) + rng_normal(r) * 0.3; break;
            default:        z = rng_normal(r) * 3; break;
            }
            w = z + rng_normal(r) * (kind == KIND_TINY ? 1e-3 : 0.5);
            if (kind == KIND_NEG_INF && j != i % P->x.vocab) {
                double u = rng_uniform(r);
                if (u < 0.15) z = w = -INFINITY;
                else if (u < 0.17 && i % 2) w = -INFINITY;      /* odd rows: KL = +inf */
            }
            mat_set(P, i, j, z);
            mat_set(Q, i, j, w);
        }
}

static void check_close(double ref, double got, double abs_tol, double rel_tol)
{
    if (isinf(ref) || isinf(got)) CHECK(ref == got);
    else CHECK_NEAR(ref, got, abs_tol, rel_tol);
}

/* Everything the logits kernels compute, under the active ISA. */
typedef struct outputs { float dep[3][3], logp[3], lse[3], ent[3], *grad, *grad2, *grad_inplace; uint16_t *gbf; } outputs;

static void run_all(const mat *P, const mat *Q, const int32_t *ids, const float *dlogp, const float *dent,
    const float *given_lse, const float *given_ent, outputs *o)
{
    const int64_t n = P->x.n_rows, V = P->x.vocab;
    vppo_grad_out g = { NULL, VPPO_F32, V + 1 };
    int div;
    for (div = 0; div < 3; ++div)
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P->x, &Q->x, (vppo_divergence)div, o->dep[div]));
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&P->x, ids, o->logp, o->lse, o->ent));
    g.data = o->grad;      /* lse and entropy recomputed */
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&P->x, ids, NULL, NULL, dlogp, dent, &g));
    g.data = o->grad2;     /* given: the scalar path's, so that both paths see the same */
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&P->x, ids, given_lse ? given_lse : o->lse,
                                                 given_ent ? given_ent : o->ent, dlogp, dent, &g));
    g.data = o->gbf;
    g.dtype = VPPO_BF16;
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&P->x, ids, NULL, NULL, dlogp, dent, &g));
    if (P->x.dtype == VPPO_F32) {       /* in place on a copy */
        vppo_logits y = P->x;
        vppo_grad_out gi;
        memcpy(o->grad_inplace, P->x.data, (size_t)(n * P->x.row_stride) * 4);
        y.data = o->grad_inplace;
        gi.data = o->grad_inplace; gi.dtype = VPPO_F32; gi.row_stride = y.row_stride;
        CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&y, ids, NULL, NULL, dlogp, dent, &gi));
    }
}

void simd_paths_agree_with_scalar(void)
{
    /* around the vector widths, the groups of the one-pass kernels (2 W and 4 W entries) and
       their float partial sums (32 groups of 64 on AVX-512), the blocks of JS (512) */
    static const int64_t vocabs[] = { 1, 7, 15, 16, 17, 31, 33, 63, 64, 65, 511, 512, 513, 1000, 2047, 2049, 4099 };
    static const vppo_dtype dtypes[] = { VPPO_F32, VPPO_BF16, VPPO_F16 };
    const vppo_isa before = vppo_isa_active();
    rng r = rng_make(4242);
    int isa, tested = 0;
    for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
        size_t vi, di;
        int kind;
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        ++tested;
        for (vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; ++vi)
            for (di = 0; di < 3; ++di)
                for (kind = 0; kind < N_KINDS; ++kind) {
                    const int64_t n = 3, V = vocabs[vi], gs = V + 1;
                    const float temp = kind == KIND_HUGE ? 0.7f : kind == KIND_RISING && di == 1 ? 1e-3f
                                     : (vi % 2 ? 1.0f : 1.3f);
                    mat P = mat_new(dtypes[di], n, V, temp), Q = mat_new(dtypes[di], n, V, 0.9f * temp);
                    int32_t ids[3];
                    float dlogp[3], dent[3];
                    outputs ref, got;
                    int64_t i, j;
                    int div;
                    fill_pair(&P, &Q, kind, &r);
                    for (i = 0; i < n; ++i) {
                        ids[i] = (int32_t)(i % V);      /* never a -inf entry (fill_pair) */
                        dlogp[i] = (float)rng_normal(&r);
                        dent[i] = (float)rng_normal(&r);
                    }
                    ref.grad = floats_new(n * gs, 0); ref.grad2 = floats_new(n * gs, 0);
                    ref.grad_inplace = floats_new(n * (V + 3), 0); ref.gbf = (uint16_t *)calloc((size_t)(n * gs), 2);
                    got.grad = floats_new(n * gs, 0); got.grad2 = floats_new(n * gs, 0);
                    got.grad_inplace = floats_new(n * (V + 3), 0); got.gbf = (uint16_t *)calloc((size_t)(n * gs), 2);
                    CHECK_STATUS(VPPO_OK, vppo_isa_select(VPPO_ISA_SCALAR));
                    run_all(&P, &Q, ids, dlogp, dent, NULL, NULL, &ref);
                    CHECK_STATUS(VPPO_OK, vppo_isa_select((vppo_isa)isa));
                    run_all(&P, &Q, ids, dlogp, dent, ref.lse, ref.ent, &got);
                    for (i = 0; i < n; ++i) {
                        for (div = 0; div < 3; ++div) check_close(ref.dep[div][i], got.dep[div][i], TOL_DIV);
                        check_close(ref.logp[i], got.logp[i], TOL_LSE);
                        check_close(ref.lse[i], got.lse[i], TOL_LSE);
                        check_close(ref.ent[i], got.ent[i], TOL_DIV);
                        for (j = 0; j < V; ++j) {
                            check_close(ref.grad[i * gs + j], got.grad[i * gs + j], TOL_DLOGITS);
                            check_close(ref.grad2[i * gs + j], got.grad2[i * gs + j], TOL_DLOGITS);
                            /* bf16: the two float values may round to neighbours */
                            check_close(test_bf16_value(ref.gbf[i * gs + j]), test_bf16_value(got.gbf[i * gs + j]), 1e-7, 8e-3);
                            if (P.x.dtype == VPPO_F32)     /* in place = out of place, bit for bit */
                                CHECK_SAME_FLOAT(got.grad[i * gs + j], got.grad_inplace[i * (V + 3) + j]);
                        }
                    }
                    free(ref.grad); free(ref.grad2); free(ref.grad_inplace); free(ref.gbf);
                    free(got.grad); free(got.grad2); free(got.grad_inplace); free(got.gbf);
                    free(P.mem); free(Q.mem);
                }
    }
    test_check_vector_isas_tested(tested);
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

/* The stored logit (after the dtype's rounding), in double. */
static double mat_get(const mat *m, int64_t r, int64_t j)
{
    const int64_t at = r * m->x.row_stride + j;
    if (m->x.dtype == VPPO_F32) return ((const float *)m->x.data)[at];
    return test_bf16_value(((const uint16_t *)m->x.data)[at]);
}

/* KL on the rows that stress the KL kernel's exp (degree 5) and its unchecked stretches,
   every vector ISA against the float64 reference of the stored values (ref_kl), f32 and
   bf16, V = 151,936: near-equal rows (KL about 1e-9), rows peaked at the same entry and
   at different ones, a row that rises along V (a rescale in many stretches), T != 1 on
   both sides, and rows with -inf in the last stretch only (a padded vocabulary). */
void simd_kl_adversarial_rows(void)
{
    enum { NEAR, PEAK_SAME, PEAK_OTHER, RISING, PAD_INF, NK };
    const int64_t V = 151936, n = NK;
    const vppo_isa before = vppo_isa_active();
    double *u = (double *)malloc((size_t)V * sizeof(double)), *w = (double *)malloc((size_t)V * sizeof(double));
    double *lp = (double *)malloc((size_t)V * sizeof(double)), *lq = (double *)malloc((size_t)V * sizeof(double));
    int di, isa, t, tested = 0;
    for (di = 0; di < 2; ++di)
        for (t = 0; t < 2; ++t) {
            const vppo_dtype dt = di ? VPPO_BF16 : VPPO_F32;
            const float tp = t ? 0.6f : 1.0f, tq = t ? 1.7f : 1.0f;
            mat P = mat_new(dt, n, V, tp), Q = mat_new(dt, n, V, tq);
            double ref[NK];
            float got[NK];
            int64_t i, j;
            rng r = rng_make(77 + (uint64_t)(di * 2 + t));
            for (i = 0; i < n; ++i) {
                for (j = 0; j < V; ++j) {
                    double z = rng_normal(&r) * 3, y = z;
                    if (i == NEAR) y = z + rng_normal(&r) * 1e-4;
                    if (i == PEAK_SAME || i == PEAK_OTHER) y = z + rng_normal(&r) * 0.5;
                    if (i == PEAK_SAME && j == 1000) { z += 40.0; y += 40.0; }
                    if (i == PEAK_OTHER && j == 1000) z += 40.0;
                    if (i == PEAK_OTHER && j == 90000) y += 35.0;
                    if (i == RISING) { z = (double)j * 30.0 / (double)V + rng_normal(&r) * 0.3; y = z + rng_normal(&r) * 0.5; }
                    if (i == PAD_INF) y = z + rng_normal(&r) * 0.5;
                    if (i == PAD_INF && j >= V - 300) z = y = -INFINITY;
                    mat_set(&P, i, j, z);
                    mat_set(&Q, i, j, i == NEAR && t ? z : y);   /* T != 1: the same logits, other T */
                }
                for (j = 0; j < V; ++j) { u[j] = mat_get(&P, i, j) / tp; w[j] = mat_get(&Q, i, j) / tq; }
                ref_log_softmax(u, V, lp);
                ref_log_softmax(w, V, lq);
                ref[i] = ref_kl(lp, lq, V);
            }
            for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
                if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
                if (di == 0 && t == 0) ++tested;
                CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P.x, &Q.x, VPPO_DIV_KL, got));
                for (i = 0; i < n; ++i) check_close(ref[i], got[i], TOL_DIV);
            }
            printf("        %s T %g/%g: KL near %.3g, peaked alike %.3g, apart %.3g, rising %.3g, padded %.3g\n", di ? "bf16" : "f32", (double)tp, (double)tq, ref[NEAR], ref[PEAK_SAME], ref[PEAK_OTHER], ref[RISING], ref[PAD_INF]);
            CHECK(ref[PEAK_OTHER] > 10.0 && (t || ref[NEAR] < 1e-5));    /* the rows are what they claim */
            free(P.mem); free(Q.mem);
        }
    free(u); free(w); free(lp); free(lq);
    test_check_vector_isas_tested(tested);
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

/* Errors are found by the vector paths as by the scalar one: a NaN or +inf first in a
   row, inside it, in the last whole group (1024 = 16 groups of 64) and in the padded
   tail; a row of only -inf. */
void simd_paths_report_bad_logits(void)
{
    static const int64_t where[] = { 0, 700, 1000, 1030, 1036 };
    const vppo_isa before = vppo_isa_active();
    int isa;
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        const int64_t V = 1037;
        mat P, Q;
        float dep[2], lse[2], grad[2 * 1037];
        vppo_grad_out g = { NULL, VPPO_F32, 1037 };
        int c;
        int64_t j;
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        g.data = grad;
        for (c = 0; c < 3 * 5; ++c) {      /* what is bad (NaN in P, +inf in Q, all -inf) x where */
            const int bad = c / 5;
            const int64_t at = where[c % 5];
            P = mat_new(VPPO_F32, 2, V, 1.0f);
            Q = mat_new(VPPO_F32, 2, V, 1.0f);
            for (j = 0; j < V; ++j) { mat_set(&P, 1, j, (double)(j % 13)); mat_set(&Q, 1, j, (double)(j % 7)); }
            if (bad == 0) mat_set(&P, 1, at, NAN);
            if (bad == 1) mat_set(&Q, 1, at, INFINITY);
            if (bad == 2) for (j = 0; j < V; ++j) mat_set(&P, 1, j, -INFINITY);
            {
                const vppo_status want = bad == 2 ? VPPO_ERR_PARAM : VPPO_ERR_NONFINITE;
                const mat *which = bad == 1 ? &Q : &P;
                CHECK_STATUS(want, vppo_dependency_logits(&P.x, &Q.x, VPPO_DIV_KL, dep));
                CHECK_STATUS(want, vppo_dependency_logits(&P.x, &Q.x, VPPO_DIV_JS, dep));
                CHECK_STATUS(want, vppo_logprobs(&which->x, NULL, NULL, lse, NULL));
                CHECK_STATUS(want, vppo_logprobs_backward(&which->x, NULL, NULL, NULL, NULL, NULL, &g));
            }
            free(P.mem); free(Q.mem);
        }
    }
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

/* The divergences of a pair whose rows have different dtypes (f32 against bf16, f16
   against f32): every ISA against the scalar reference. */
void simd_pair_of_mixed_dtypes(void)
{
    static const vppo_dtype du[] = { VPPO_F32, VPPO_F16 }, dv[] = { VPPO_BF16, VPPO_F32 };
    static const int64_t vocabs[] = { 67, 1000 };
    const vppo_isa before = vppo_isa_active();
    rng r = rng_make(77);
    int isa, c, div;
    for (c = 0; c < 4; ++c) {
        const int64_t n = 3, V = vocabs[c / 2];
        mat P = mat_new(du[c % 2], n, V, 1.0f), Q = mat_new(dv[c % 2], n, V, 0.8f);
        float ref[3][3], got[3][3];
        int64_t i;
        fill_pair(&P, &Q, KIND_NEG_INF, &r);
        CHECK_STATUS(VPPO_OK, vppo_isa_select(VPPO_ISA_SCALAR));
        for (div = 0; div < 3; ++div)
            CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P.x, &Q.x, (vppo_divergence)div, ref[div]));
        for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
            if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
            for (div = 0; div < 3; ++div) {
                CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P.x, &Q.x, (vppo_divergence)div, got[div]));
                for (i = 0; i < n; ++i) check_close(ref[div][i], got[div][i], TOL_DIV);
            }
        }
        free(P.mem); free(Q.mem);
    }
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

/* Same inputs, same bits: across runs and (with OpenMP) across 1, 2 and 3 threads. */
void simd_results_identical_across_threads_and_runs(void)
{
    const int64_t n = 41, V = 3001;       /* 41 x 3001 > the threading threshold */
    rng r = rng_make(99);
    int dt, pass;
    for (dt = 0; dt < 2; ++dt) {
        mat P = mat_new(dt ? VPPO_BF16 : VPPO_F32, n, V, 1.0f), Q = mat_new(dt ? VPPO_BF16 : VPPO_F32, n, V, 1.0f);
        float first[5][41], now[5][41], *g0 = floats_new(n * V, 0), *g1 = floats_new(n * V, 0);
        int32_t ids[41];
        float dl[41];
        vppo_grad_out g = { NULL, VPPO_F32, 3001 };
        int64_t i;
        fill_pair(&P, &Q, KIND_NEG_INF, &r);
        for (i = 0; i < n; ++i) { ids[i] = (int32_t)(i % V); dl[i] = (float)rng_normal(&r); }
        for (pass = 0; pass < 4; ++pass) {   /* pass 0: the reference; then 1, 2, 3 threads */
#ifdef _OPENMP
            omp_set_num_threads(pass == 0 ? 2 : pass);
#endif
            CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P.x, &Q.x, VPPO_DIV_KL, now[0]));
            CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P.x, &Q.x, VPPO_DIV_JS, now[1]));
            CHECK_STATUS(VPPO_OK, vppo_logprobs(&P.x, ids, now[2], now[3], now[4]));
            g.data = pass == 0 ? g0 : g1;
            CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&P.x, ids, NULL, NULL, dl, dl, &g));
            if (pass == 0) memcpy(first, now, sizeof first);
            else {
                CHECK(memcmp(first, now, sizeof first) == 0);
                CHECK(memcmp(g0, g1, (size_t)(n * V) * sizeof(float)) == 0);
            }
        }
        free(P.mem); free(Q.mem); free(g0); free(g1);
    }
}
