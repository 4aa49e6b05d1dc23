/* tests/test_main.c - the test runner; also the one translation unit of the suite that
   compiles the implementation (the others only include the declarations, so the suite
   itself links two kinds of translation unit together).

   usage: test_vppo [substring]   runs the tests whose name contains substring
          test_vppo --list-isas    prints the ISAs this build and CPU can run
   VPPO_TEST_ISA=name runs the suite on that ISA (an error if it cannot run here). */
#define VPPO_IMPLEMENTATION
#include "test.h"

#define T(name) void name(void);
#include "tests.def"
#undef T

static const test_entry tests[] = {
#define T(name) { #name, name },
#include "tests.def"
#undef T
};

/* White-box: the vector exp of every ISA this machine runs, seen through two kernels.
   The stats kernel (its exp without range handling, floored at DLOW): a row holding x and
   -inf padding, reference 0, scale 1 and no rescale sums to vexp(x). The backward kernel
   (the exp with the upper clamp): hi = lo = 0, s = 1, a = 1, b = 0 gives p = vexp(x). */
static double vexp_through_kernel(const vppo__kernels *k, float x, int via_bwd)
{
    float row[VPPO__PAD], g[VPPO__PAD];
    double out[2] = { 0.0, 0.0 };
    vppo__bwd_args c;
    int i;
    for (i = 0; i < VPPO__PAD; ++i) row[i] = -HUGE_VALF;
    row[0] = x;
    if (!via_bwd) {
        if (k->stats(row, VPPO_F32, 0, VPPO__PAD, 0.0f, FLT_MAX, 1.0f, out) != VPPO__PAD) return -1.0;
        return out[0];
    }
    memset(&c, 0, sizeof c);
    c.s = 1.0f;
    c.a = 1.0f;
    if (k->bwd(row, VPPO_F32, VPPO__PAD, &c, g, VPPO_F32, 0) & 1) return -1.0;
    return g[0];
}

void vexp_error_bound_every_isa(void)
{
    int isa, tested = 0;
    for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
        const vppo__kernels *k = vppo__kernels_for((vppo_isa)isa);
        double worst = 0.0, x;
        long bad = 0;
        int via;
        if (!k || !vppo__isa_supported((vppo_isa)isa)) continue;
        ++tested;
        for (x = -100.0; x <= 88.0; x += 1.0 / 1024) {
            const float xf = (float)x;
            const double want = exp((double)xf);
            int via;
            for (via = 0; via < 2; ++via) {
                const double got = vexp_through_kernel(k, xf, via);
                if (xf < VPPO__EXP_FLUSH) { bad += got != 0.0; continue; }
                if (fabs(got - want) / want > worst) worst = fabs(got - want) / want;
                bad += !(got >= FLT_MIN);                /* never a denormal, never 0 above the flush */
            }
        }
        CHECK_EQ_INT(0, bad);
        CHECK(worst <= 2e-7);
        for (via = 0; via < 2; ++via) {
            CHECK(vexp_through_kernel(k, -HUGE_VALF, via) == 0.0);
            CHECK(vexp_through_kernel(k, -1e30f, via) == 0.0);
            CHECK(vexp_through_kernel(k, 0.0f, via) == 1.0);
        }
        printf("        vexp (%s): max relative error %.3g over [%g, 88]\n", vppo_isa_name((vppo_isa)isa),
               worst, (double)VPPO__EXP_FLUSH);
    }
    CHECK_EQ_INT(test_vector_isas_selectable(), tested);   /* every ISA the library offers */
    test_check_vector_isas_tested(tested);
}

/* The KL kernel's exp (exp_kl, degree 5, floored at DZERO), through the kernel: a row u
   holding x and -inf padding against a row v of zeros, references 0, scale 1 and no
   rescale gives su = exp_kl(x). Its range there: d in [DZERO, about RESCALE]. The bound
   2e-7 + 3e-9 |x| is the one the KL analysis at VPPO__EXPK_C1 assumes. */
static double vexp_kl_through_kernel(const vppo__kernels *k, float x)
{
    float u[VPPO__PAD], v[VPPO__PAD];
    vppo__kl_args c;
    vppo__kl_sums out;
    int i;
    for (i = 0; i < VPPO__PAD; ++i) { u[i] = -HUGE_VALF; v[i] = 0.0f; }
    u[0] = x;
    c.mu = c.mv = 0.0f;
    c.su = c.sv = 1.0f;
    c.tu = c.tv = FLT_MAX;
    out.su = out.sv = out.diff = 0.0;
    out.infinite = 0;
    if (k->kl(u, VPPO_F32, v, VPPO_F32, 0, VPPO__PAD, &c, &out) != VPPO__PAD) return -1.0;
    if (out.sv != (double)VPPO__PAD) return -2.0;          /* v: exp(0) = 1 exactly, PAD times */
    return out.su;
}

void vexp_kl_error_bound_every_isa(void)
{
    int isa, tested = 0;
    for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
        const vppo__kernels *k = vppo__kernels_for((vppo_isa)isa);
        double worst = 0.0, worst_unit = 0.0, x;
        long bad = 0;
        if (!k || !vppo__isa_supported((vppo_isa)isa)) continue;
        ++tested;
        for (x = -87.0; x <= 2.0; x += 1.0 / 4096) {
            const float xf = (float)x;
            const double got = vexp_kl_through_kernel(k, xf), want = exp((double)xf);
            const double rel = fabs(got - want) / want;
            if (xf < -86.5f) { bad += !(got >= 0.0 && got <= 2.0 * want); continue; }   /* near 2^-126 */
            bad += !(rel <= 2e-7 + 3e-9 * fabs(x));
            if (rel > worst) worst = rel;
            if (fabs(x) <= 1.0 && rel > worst_unit) worst_unit = rel;
        }
        CHECK_EQ_INT(0, bad);
        CHECK(vexp_kl_through_kernel(k, 0.0f) == 1.0);
        CHECK(vexp_kl_through_kernel(k, VPPO__DZERO) == 0.0);
        CHECK(vexp_kl_through_kernel(k, -100.0f) == 0.0);
        CHECK(vexp_kl_through_kernel(k, -HUGE_VALF) == 0.0);
        printf("        vexp_kl (%s): max relative error %.3g over [-86.5, 2], %.3g over [-1, 1]\n",
               vppo_isa_name((vppo_isa)isa), worst, worst_unit);
    }
    CHECK_EQ_INT(test_vector_isas_selectable(), tested);
    test_check_vector_isas_tested(tested);
}

/* ------------------------------------------------- the O(N) kernels (white-box) */

/* Every ISA's O(N) kernels that this machine runs, the plain C ones first (index 0). */
static int on_kernel_list(const vppo__on_kernels **k, vppo_isa *isa)
{
    int n = 0, i;
    k[n] = &vppo__on_kernels_c; isa[n++] = VPPO_ISA_SCALAR;
    for (i = VPPO_ISA_SSE2; i <= VPPO_ISA_NEON; ++i)
        if (vppo__kernels_for((vppo_isa)i) && vppo__isa_supported((vppo_isa)i)) {
            k[n] = vppo__on_kernels_for((vppo_isa)i);
            isa[n++] = (vppo_isa)i;
        }
    return n;
}

/* Units in the last place of want between got and want (want finite and normal). */
static double ulps(double got, double want)
{
    return fabs(got - want) / (nextafter(fabs(want), HUGE_VAL) - fabs(want));
}

/* The double vexp of the O(N) kernels: within VPPO__DEXP_ULP ulp of libm's exp on
   [-708, 709] for every ISA, the same bits as the plain C one, and exact at its edges. */
void on_dexp_error_bound_every_isa(void)
{
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    rng r = rng_make(2026);
    int i, j;
    for (i = 0; i < nk; ++i) {
        double worst = 0.0, x;
        long differ = 0, n = 0;
        for (x = -708.0; x <= 709.0; x += 1.0 / 64) {
            const double xs[2] = { x, fmin(709.0, x + rng_uniform(&r) / 64) };
            for (j = 0; j < 2; ++j) {
                const double got = k[i]->exp(xs[j]), u = ulps(got, exp(xs[j]));
                if (u > worst) worst = u;
                differ += got != vppo__on_kernels_c.exp(xs[j]);
                ++n;
            }
        }
        for (j = 0; j < 100000; ++j) {       /* the range of the log-ratios, densely */
            const double xr = rng_range(&r, -30.0, 30.0), got = k[i]->exp(xr), u = ulps(got, exp(xr));
            if (u > worst) worst = u;
            differ += got != vppo__on_kernels_c.exp(xr);
        }
        CHECK(worst <= VPPO__DEXP_ULP);
        CHECK_EQ_INT(0, differ);
        CHECK(k[i]->exp(0.0) == 1.0);
        CHECK(k[i]->exp(-HUGE_VAL) == 0.0);
        CHECK(k[i]->exp(-708.5) == 0.0);
        CHECK(k[i]->exp(709.5) == HUGE_VAL);
        CHECK(k[i]->exp(HUGE_VAL) == HUGE_VAL);
        printf("        dexp (%s): max error %.3g ulp over [-708, 709] (%ld points)\n",
               vppo_isa_name(isa[i]), worst, n + 100000);
    }
    CHECK_EQ_INT(test_vector_isas_selectable() + 1, nk);
}

/* Inputs for the kernels: random log-probabilities with extremes mixed in (denormals,
   signed zeros, large and small log-ratios, -inf where allowed). */
static float on_value(rng *r, int allow_ninf)
{
    static const float extreme[] = { 0.0f, -0.0f, -1e-40f, 1e-40f, -1e-7f, -0.5f, -3.0f, -30.0f, -88.0f,
                                     -1e4f, 25.0f, -FLT_MAX, -1e-30f };
    const double u = rng_uniform(r);
    if (allow_ninf && u < 0.05) return -HUGE_VALF;
    if (u < 0.25) return extreme[rng_int(r, 0, (int64_t)(sizeof extreme / sizeof extreme[0]) - 1)];
    return (float)(log(0.001 + 0.999 * rng_uniform(r)) + (rng_uniform(r) < 0.5 ? 0.0 : rng_normal(r) * 0.3));
}

/* The float64 reference of the estimators (docs/spec.md §2.1), written from the spec. */
static double ref_estimator(vppo_estimator est, double logp, double aug)
{
    double d = aug - logp;
    if (d != d) return 0.0;
    d = d < -20.0 ? -20.0 : (d > 20.0 ? 20.0 : d);
    switch (est) {
    case VPPO_EST_K3: { const double v = expm1(d) - d; return v < 0.0 ? 0.0 : (v > 10.0 ? 10.0 : v); }
    case VPPO_EST_K1: return -d;
    case VPPO_EST_K2: return 0.5 * d * d;
    case VPPO_EST_ABS: return fabs(d);
    case VPPO_EST_PROB_DROP: return exp(logp) - exp(aug);
    }
    return 0.0;
}

/* dep and sum: every ISA the same bits as the plain C kernels, and within SPEC §12 of the
   float64 reference, on every length 1..2*16+1 (the vector tails) and a long one, with and
   without a mask, extreme inputs included. */
void on_dep_and_sum_every_isa_match_c_and_float64(void)
{
    enum { NMAX = 300 };
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    static const int64_t lens[] = { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 18, 23, 31, 32, 33, 100, NMAX - 3 };
    float a[NMAX], b[NMAX], dep_c[NMAX], dep[NMAX];
    uint8_t mask[NMAX];
    rng r = rng_make(16);
    int est, li, m, i;
    int64_t t;
    for (est = VPPO_EST_K3; est <= VPPO_EST_PROB_DROP; ++est)
        for (li = 0; li < (int)(sizeof lens / sizeof lens[0]); ++li)
            for (m = 0; m < 2; ++m) {
                const int64_t t0 = 3, n = lens[li], t1 = t0 + n;
                double sum_c, want_sum = 0.0, abs_sum = 0.0;
                for (t = 0; t < NMAX; ++t) {
                    a[t] = on_value(&r, est != VPPO_EST_PROB_DROP);
                    b[t] = on_value(&r, est != VPPO_EST_PROB_DROP);
                    if (a[t] == -HUGE_VALF && b[t] == -HUGE_VALF) b[t] = -1.0f;
                    if (est == VPPO_EST_PROB_DROP && (a[t] > 80.0f || b[t] > 80.0f)) a[t] = b[t] = 1.0f;
                    mask[t] = (uint8_t)(rng_uniform(&r) < 0.7);
                    dep_c[t] = dep[t] = 12345.0f;
                }
                sum_c = k[0]->map(a, b, m ? mask : NULL, t0, t1, est, dep_c);
                for (t = 0; t < NMAX; ++t) {
                    if (t < t0 || t >= t1) { CHECK(dep_c[t] == 12345.0f); continue; }   /* nothing outside */
                    if (m && !mask[t]) { CHECK_SAME_FLOAT(0.0f, dep_c[t]); continue; }
                    CHECK_NEAR(ref_estimator((vppo_estimator)est, a[t], b[t]), dep_c[t], TOL_TOKEN);
                    want_sum += dep_c[t];
                    abs_sum += fabs(dep_c[t]);
                }
                CHECK_NEAR(want_sum, sum_c, 1e-14 * abs_sum, 0.0);   /* another order of the same floats */
                for (i = 1; i < nk; ++i) {
                    const double s = k[i]->map(a, b, m ? mask : NULL, t0, t1, est, dep);
                    CHECK(memcmp(dep, dep_c, sizeof dep) == 0);
                    CHECK(memcmp(&s, &sum_c, sizeof s) == 0);
                    CHECK(k[i]->map(a, est == VPPO_EST_PROB_DROP ? b : NULL, m ? mask : NULL, t0, t1, VPPO__ON_SUM, NULL) ==
                          k[0]->map(a, est == VPPO_EST_PROB_DROP ? b : NULL, m ? mask : NULL, t0, t1, VPPO__ON_SUM, NULL));
                }
            }
}

/* K3 = e^d - 1 - d keeps its relative accuracy where it cancels (|d| small): within a
   float's rounding of expm1(d) - d in float64, on every ISA. */
void on_k3_relative_accuracy_near_zero(void)
{
    enum { N = 64 };
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    float a[N], b[N], dep[N];
    int i, t, bad = 0;
    for (t = 0; t < N; ++t) {
        const double d = (t % 2 ? -1.0 : 1.0) * pow(10.0, -1.0 - 0.1 * t);   /* 1e-1 down to ~1e-7 */
        a[t] = -2.0f;
        b[t] = (float)(-2.0 + d);
    }
    for (i = 0; i < nk; ++i) {
        k[i]->map(a, b, NULL, 0, N, VPPO_EST_K3, dep);
        for (t = 0; t < N; ++t) {
            const double d = (double)b[t] - (double)a[t], want = expm1(d) - d;
            bad += !(fabs(dep[t] - want) <= 1.2e-7 * want);
        }
    }
    CHECK_EQ_INT(0, bad);
}

/* The loss's exp for |x| <= 20 (vppo__<isa>_on_exp20): within VPPO__DEXP_ULP ulp of libm's
   exp on every ISA, the same bits as the plain C one, exact at 0. */
void on_exp20_error_bound_every_isa(void)
{
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    rng r = rng_make(20);
    int i, j;
    for (i = 0; i < nk; ++i) {
        double worst = 0.0;
        long differ = 0;
        for (j = 0; j < 200000; ++j) {
            const double x = j < 100000 ? rng_range(&r, -20.0, 20.0) : rng_range(&r, -0.4, 0.4) * pow(10.0, -rng_range(&r, 0, 12));
            const double got = k[i]->exp20(x), u = ulps(got, exp(x));
            if (u > worst) worst = u;
            differ += got != vppo__on_kernels_c.exp20(x);
        }
        for (j = -64; j <= 64; ++j) {        /* the edges of the reduction and of the range */
            const double xs[3] = { (j + 0.5) * 0.6931471805599453, nextafter((j + 0.5) * 0.6931471805599453, 0.0),
                                   j * (20.0 / 64) };
            int m;
            for (m = 0; m < 3; ++m) {
                const double x = fmax(-20.0, fmin(20.0, xs[m])), got = k[i]->exp20(x), u = ulps(got, exp(x));
                if (u > worst) worst = u;
                differ += got != vppo__on_kernels_c.exp20(x);
            }
        }
        CHECK(worst <= VPPO__DEXP_ULP);
        CHECK_EQ_INT(0, differ);
        CHECK(k[i]->exp20(0.0) == 1.0);
        CHECK(k[i]->exp20(-0.0) == 1.0);
        printf("        exp20 (%s): max error %.3g ulp over [-20, 20]\n", vppo_isa_name(isa[i]), worst);
    }
}

/* K3 = e^d - 1 - d where its formula switches (n = round(d log2 e) leaves 0 at |d| =
   ln2/2), near its clamps (K3 = 10 at d ~ 2.53 and d ~ -11; d clamped at +-20), and over
   [-20, 20]: within a float's rounding of expm1(d) - d in float64 (relative), the same bits
   on every ISA. */
void on_k3_formula_switch_and_clamps_every_isa(void)
{
    enum { N = 600 };
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    static const double at[] = { 0.34657359027997264, -0.34657359027997264, 2.5264, -11.0, 20.0, -20.0, 0.0 };
    float a[N], b[N], dep[N], dep_c[N];
    rng r = rng_make(33);
    int i, t, bad = 0, differ = 0;
    for (t = 0; t < N; ++t) {
        double d;
        if (t < 7 * 40) {                     /* +-20 float steps around each point */
            const int p = t / 40, step = t % 40 - 20;
            float x = (float)at[p];
            int m;
            for (m = 0; m < (step < 0 ? -step : step); ++m) x = nextafterf(x, step < 0 ? -HUGE_VALF : HUGE_VALF);
            d = x;
        } else {
            d = rng_range(&r, -25.0, 25.0);
        }
        a[t] = t % 3 == 0 ? 0.0f : -1.5f;
        b[t] = (float)(a[t] + d);
    }
    k[0]->map(a, b, NULL, 0, N, VPPO_EST_K3, dep_c);
    for (t = 0; t < N; ++t) {
        const double d = fmax(-20.0, fmin(20.0, (double)b[t] - (double)a[t]));
        const double want = fmin(10.0, expm1(d) - d);
        bad += !(fabs(dep_c[t] - want) <= 6e-8 * want);
    }
    for (i = 1; i < nk; ++i) {
        k[i]->map(a, b, NULL, 0, N, VPPO_EST_K3, dep);
        differ += memcmp(dep, dep_c, sizeof dep) != 0;
    }
    CHECK_EQ_INT(0, bad);
    CHECK_EQ_INT(0, differ);
}

/* The loss kernel at the clip boundaries: log-ratios within a few ulp of log(1 - clip_low)
   and log(1 + clip_high) (and exactly on them), both signs of the advantage, dual clip on:
   the clip decisions (counts) equal the float64 reference's and the gradient is within
   SPEC §12 of it, on every ISA, the common case's loop (vppo__c_on_loss_body with gen = 0)
   giving the same bits as the general one; the float path (L.fast) the same counts. */
void on_loss_clip_boundaries_every_isa(void)
{
    enum { N = 448 };
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    static const float tiny[] = { -1e-9f, -3e-8f, -1e-6f, -0.25f, -1.0f, -3.0f, -7.5f };
    vppo_loss_config cfg = vppo_loss_config_default();
    const vppo__clip clip = vppo__clip_of(&cfg);
    float lp[N], lo[N], adv[N], g_c[N], g[N], g_gen[N];
    double sums_c[VPPO__ON_NSUMS], sums[VPPO__ON_NSUMS];
    vppo__loss_sums want;
    vppo__on_loss L;
    int i, j, t, ov_c;
    memset(&want, 0, sizeof want);
    for (t = 0; t < N; ++t) {                 /* 7 bases x 2 bounds x 2 signs x 16 steps */
        const int base = t / 64, hi = (t / 32) % 2, neg = (t / 16) % 2, step = t % 16 - 8;
        const double bound = hi ? clip.log_hi : clip.log_lo;
        float o = tiny[base];
        int m;
        /* lo such that lp - lo is the bound, then steps of lo's ulp around it */
        const float p = (float)(bound + (double)o);
        o = (float)((double)p - bound);
        for (m = 0; m < (step < 0 ? -step : step); ++m) o = nextafterf(o, step < 0 ? -HUGE_VALF : HUGE_VALF);
        lp[t] = p;
        lo[t] = o;
        adv[t] = neg ? -0.75f : 1.25f;
        g_c[t] = g[t] = g_gen[t] = 0.0f;
    }
    memset(&L, 0, sizeof L);
    L.logp = lp; L.logp_old = lo; L.adv = adv; L.dlogp = g_c;
    L.log_lo = clip.log_lo; L.log_hi = clip.log_hi; L.r_lo = clip.r_lo; L.r_hi = clip.r_hi;
    L.dual = cfg.clip_dual; L.kl_coef = cfg.kl_coef; L.ent_coef = cfg.entropy_coef;
    L.pg_kind = (int)cfg.pg_kind; L.kl_kind = (int)cfg.kl_kind;
    L.coef = 0.5;
    ov_c = k[0]->loss(&L, 0, N, sums_c);
    CHECK_EQ_INT(0, ov_c);
    for (t = 0; t < N; ++t) {
        vppo__token tk;
        vppo__token_add_at(&cfg, &clip, lp, lo, NULL, adv, NULL, NULL, t, NULL, &tk, &want);
        CHECK_NEAR((float)vppo__token_grad(&cfg, L.coef, tk.dpg, tk.dkl), g_c[t], TOL_TOKEN);
    }
    CHECK_EQ_INT(want.n_clip, (int64_t)sums_c[VPPO__ON_CLIP]);
    CHECK_EQ_INT(want.n_clip_dual, (int64_t)sums_c[VPPO__ON_CLIP_DUAL]);
    CHECK_NEAR(want.pg, sums_c[VPPO__ON_PG], TOL_SCALAR);
    CHECK_NEAR(want.dpg, sums_c[VPPO__ON_DPG], TOL_SCALAR);
    CHECK(want.n_clip > 0 && want.n_clip < N);
    L.dlogp = g_gen;
    vppo__c_on_loss_body(&L, 0, N, sums, 1);
    for (j = 0; j < VPPO__ON_NSUMS; ++j) CHECK(memcmp(&sums[j], &sums_c[j], sizeof sums[j]) == 0);
    CHECK(memcmp(g_gen, g_c, sizeof g) == 0);
    L.dlogp = g;
    for (i = 1; i < nk; ++i) {
        CHECK_EQ_INT(ov_c, k[i]->loss(&L, 0, N, sums));
        for (j = 0; j < VPPO__ON_NSUMS; ++j) CHECK(memcmp(&sums[j], &sums_c[j], sizeof sums[j]) == 0);
        CHECK(memcmp(g, g_c, sizeof g) == 0);
    }
    L.fast = 1;                               /* the float path: the same decisions */
    for (i = 0; i < nk; ++i) {
        CHECK_EQ_INT(0, k[i]->loss(&L, 0, N, sums));
        CHECK_EQ_INT(want.n_clip, (int64_t)sums[VPPO__ON_CLIP]);
        CHECK_EQ_INT(want.n_clip_dual, (int64_t)sums[VPPO__ON_CLIP_DUAL]);
        CHECK_NEAR(want.pg, sums[VPPO__ON_PG], TOL_SCALAR);
        for (t = 0; t < N; ++t) CHECK_NEAR(g_c[t], g[t], TOL_TOKEN);
    }
}

/* The loss kernel: every ISA the same bits as the plain C one (sums, gradients, overflow)
   and within SPEC §12 of the device's double-precision rules (vppo__token_add_at with
   libm, the reference of vppo_cuda.cu), for every mode: PG kinds, KL kinds, sequence
   ratios, clip bounds beyond the clamp (far), GSPO's fixed dpg, select and weight, tails. */
void on_loss_every_isa_matches_c_and_float64(void)
{
    enum { NMAX = 90 };
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    float lp[NMAX], lo[NMAX], ref[NMAX], adv[NMAX], w[NMAX], g_c[NMAX], g[NMAX];
    uint8_t mask[NMAX], sel[NMAX];
    rng r = rng_make(7);
    int cfgi, i, j;
    int64_t t;
    for (cfgi = 0; cfgi < 400; ++cfgi) {
        vppo_loss_config cfg = vppo_loss_config_default();
        vppo__on_loss L;
        vppo__clip clip;
        vppo__loss_sums want;
        const int64_t t0 = rng_int(&r, 0, 5), t1 = t0 + rng_int(&r, 1, 70);
        const int masked = rng_uniform(&r) < 0.5, fixed = rng_uniform(&r) < 0.2;
        double sums_c[VPPO__ON_NSUMS], sums[VPPO__ON_NSUMS], mean_delta = 0.0;
        int ov_c, ov;
        int64_t nv = 0;
        cfg.pg_kind = (vppo_pg_kind)rng_int(&r, VPPO_PG_CLIP, VPPO_PG_CISPO);
        cfg.kl_kind = (vppo_kl_kind)rng_int(&r, VPPO_KL_NONE, VPPO_KL_K3);
        cfg.kl_coef = 0.05f;
        cfg.ratio_level = (vppo_ratio_level)rng_int(&r, VPPO_RATIO_TOKEN, VPPO_RATIO_SEQ_TOKEN);
        cfg.clip_dual = rng_uniform(&r) < 0.5 ? 3.0f : 0.0f;
        if (rng_uniform(&r) < 0.25) { cfg.clip_low = 1.0f; cfg.clip_high = 1e10f; }   /* far bounds */
        clip = vppo__clip_of(&cfg);
        for (t = 0; t < NMAX; ++t) {
            const double scale = rng_uniform(&r) < 0.1 ? 15.0 : 0.3;   /* log-ratios beyond the clamp */
            lo[t] = on_value(&r, 0);
            if (lo[t] < -1e3f) lo[t] = -2.0f;
            lp[t] = (float)(lo[t] + scale * rng_normal(&r));
            ref[t] = (float)(lp[t] + rng_normal(&r) * (rng_uniform(&r) < 0.1 ? 25.0 : 0.2));
            adv[t] = (float)(rng_normal(&r) * (rng_uniform(&r) < 0.05 ? 0.0 : 1.0));
            w[t] = (float)rng_uniform(&r);
            mask[t] = (uint8_t)(rng_uniform(&r) < 0.8);
            sel[t] = (uint8_t)(rng_uniform(&r) < 0.6);
            g_c[t] = g[t] = 777.0f;
        }
        memset(&L, 0, sizeof L);
        L.logp = lp; L.logp_old = lo; L.logp_ref = ref; L.adv = adv;
        L.weight = rng_uniform(&r) < 0.5 ? w : NULL;
        L.select = rng_uniform(&r) < 0.5 ? sel : NULL;
        L.mask = masked ? mask : NULL;
        L.dlogp = rng_uniform(&r) < 0.8 ? g_c : NULL;
        L.log_lo = clip.log_lo; L.log_hi = clip.log_hi; L.r_lo = clip.r_lo; L.r_hi = clip.r_hi;
        L.dual = cfg.clip_dual; L.kl_coef = cfg.kl_coef; L.ent_coef = cfg.entropy_coef;
        L.pg_kind = (int)cfg.pg_kind; L.kl_kind = (int)cfg.kl_kind;
        L.seq_rho = cfg.ratio_level != VPPO_RATIO_TOKEN;
        L.far = clip.log_lo < -20.0 || clip.log_hi > 20.0;
        L.coef = 0.01;
        L.fixed_dpg = fixed;
        L.dpg = 0.3;
        for (t = t0; t < t1; ++t)
            if (!masked || mask[t]) { mean_delta += (double)lp[t] - (double)lo[t]; ++nv; }
        L.rho = nv ? mean_delta / (double)nv : 0.0;
        ov_c = k[0]->loss(&L, t0, t1, sums_c);
        /* the float64 reference, token by token */
        memset(&want, 0, sizeof want);
        for (t = 0; t < NMAX; ++t) {
            vppo__token tk;
            if (t < t0 || t >= t1) { if (L.dlogp) CHECK(g_c[t] == 777.0f); continue; }
            if (masked && !mask[t]) { if (L.dlogp) CHECK_SAME_FLOAT(0.0f, g_c[t]); continue; }
            vppo__token_add_at(&cfg, &clip, lp, lo, ref, adv, L.select, L.weight, t, L.seq_rho ? &L.rho : NULL,
                               &tk, &want);
            if (L.dlogp) {
                const double gw = vppo__token_grad(&cfg, L.coef, fixed ? L.dpg : tk.dpg, tk.dkl);
                CHECK_NEAR((float)gw, g_c[t], TOL_TOKEN);
            }
        }
        CHECK_NEAR(want.pg, sums_c[VPPO__ON_PG], TOL_SCALAR);
        CHECK_NEAR(want.kl, sums_c[VPPO__ON_KL], TOL_SCALAR);
        CHECK_NEAR(want.ent, sums_c[VPPO__ON_ENT], TOL_SCALAR);
        CHECK_NEAR(want.dpg, sums_c[VPPO__ON_DPG], TOL_SCALAR);
        CHECK_NEAR(want.ppo_kl, sums_c[VPPO__ON_PPO_KL], TOL_SCALAR);
        CHECK_EQ_INT(want.n_clip, (int64_t)sums_c[VPPO__ON_CLIP]);
        CHECK_EQ_INT(want.n_clip_dual, (int64_t)sums_c[VPPO__ON_CLIP_DUAL]);
        CHECK_EQ_INT(want.n_selected, (int64_t)sums_c[VPPO__ON_SEL]);
        CHECK_EQ_INT(0, ov_c);
        for (i = 1; i < nk; ++i) {
            L.dlogp = L.dlogp ? g : NULL;
            ov = k[i]->loss(&L, t0, t1, sums);
            CHECK_EQ_INT(ov_c, ov);
            for (j = 0; j < VPPO__ON_NSUMS; ++j) CHECK(memcmp(&sums[j], &sums_c[j], sizeof sums[j]) == 0);
            if (L.dlogp) CHECK(memcmp(g, g_c, sizeof g) == 0);
            L.dlogp = L.dlogp ? g_c : NULL;
        }
    }
}

/* The float path's derived per-token bounds (docs/spec.md §12): the policy term -A r w
   within VPPO__LF_PG_ERR |A|, the gradient within coef VPPO__LF_G_ERR |A| + 2e-7 |g|. */
#define LF_PG_ERR 1.1e-7
#define LF_G_ERR 2.0e-7

/* A loss-kernel call with the default configuration's rules and L.fast as asked. */
static void lf_setup(vppo__on_loss *L, const vppo_loss_config *cfg, const vppo__clip *clip, const float *lp,
                     const float *lo, const float *adv, float *g, double coef)
{
    memset(L, 0, sizeof *L);
    L->logp = lp; L->logp_old = lo; L->adv = adv; L->dlogp = g;
    L->log_lo = clip->log_lo; L->log_hi = clip->log_hi; L->r_lo = clip->r_lo; L->r_hi = clip->r_hi;
    L->dual = cfg->clip_dual; L->kl_coef = cfg->kl_coef; L->ent_coef = cfg->entropy_coef;
    L->pg_kind = (int)cfg->pg_kind; L->kl_kind = (int)cfg->kl_kind;
    L->coef = coef;
    L->fast = 1;
}

/* One random case of on_lossf_every_isa_matches_c_and_float64 (configuration cfgi); the
   valid tokens inside and outside the float path's limits are counted in taken, left. */
enum { LF_NMAX = 200 };
static void lf_random_case(rng *r, int cfgi, const vppo__on_kernels *const *k, int nk, int *taken, int *left)
{
    static const double coefs[3] = { 1.0, 1e-3, 3e-7 };
    float lp[LF_NMAX], lo[LF_NMAX], adv[LF_NMAX], g_c[LF_NMAX], g[LF_NMAX], g_d[LF_NMAX];
    uint8_t mask[LF_NMAX], sel[LF_NMAX];
    vppo_loss_config cfg = vppo_loss_config_default();
    double sums_c[VPPO__ON_NSUMS], sums[VPPO__ON_NSUMS], sums_d[VPPO__ON_NSUMS], pg_bound = 1e-12;
    const int64_t t0 = rng_int(r, 0, 5), t1 = t0 + rng_int(r, 1, LF_NMAX - 6);
    const int masked = rng_uniform(r) < 0.4;
    const double rare = rng_uniform(r) < 0.5 ? 0.0 : 0.02;
    vppo__clip clip;
    vppo__on_loss L;
    vppo__loss_sums want;
    int64_t t;
    int i, j;
    if (cfgi % 3 == 1) cfg.clip_dual = 0.0f;
    if (cfgi % 5 == 2) { cfg.clip_low = 0.1f; cfg.clip_high = 0.1f; }
    clip = vppo__clip_of(&cfg);
    for (t = 0; t < LF_NMAX; ++t) {
        const double u = rng_uniform(r);
        double rho = rng_normal(r) * 0.1;
        if (u < rare) rho = rng_range(r, -3.0, 3.0);                                /* beyond its range */
        else if (u < rare + 0.01) rho = rng_uniform(r) < 0.5 ? clip.log_lo : clip.log_hi;   /* on a bound */
        lo[t] = (float)-rng_range(r, 0.01, 8.0);
        lp[t] = (float)((double)lo[t] + rho);
        adv[t] = (float)(rng_uniform(r) < 0.02 ? (rng_uniform(r) < 0.5 ? -1 : 1) * rng_range(r, 4.0, 6.0)
                                                : 1.5 * rng_normal(r));
        mask[t] = (uint8_t)(rng_uniform(r) < 0.8);
        sel[t] = (uint8_t)(rng_uniform(r) < 0.6);
        if (masked && !mask[t] && rng_uniform(r) < 0.3) lp[t] = adv[t] = NAN;
        g_c[t] = g[t] = g_d[t] = 777.0f;
    }
    lf_setup(&L, &cfg, &clip, lp, lo, adv, g_c, coefs[cfgi % 3]);
    L.select = rng_uniform(r) < 0.6 ? sel : NULL;
    L.mask = masked ? mask : NULL;
    CHECK_EQ_INT(0, k[0]->loss(&L, t0, t1, sums_c));
    memset(&want, 0, sizeof want);
    for (t = 0; t < LF_NMAX; ++t) {
        vppo__token tk;
        double gw;
        if (t < t0 || t >= t1) { CHECK(g_c[t] == 777.0f); continue; }
        if (masked && !mask[t]) { CHECK_SAME_FLOAT(0.0f, g_c[t]); continue; }
        vppo__token_add_at(&cfg, &clip, lp, lo, NULL, adv, L.select, NULL, t, NULL, &tk, &want);
        gw = vppo__token_grad(&cfg, L.coef, tk.dpg, tk.dkl);
        CHECK_NEAR(gw, g_c[t], L.coef * LF_G_ERR * fabs((double)adv[t]), 2e-7);
        pg_bound += LF_PG_ERR * fabs((double)adv[t]);
        if (fabs((double)lp[t] - lo[t]) <= VPPO__LF_RMAX && fabs(adv[t]) <= VPPO__LF_AMAX) ++*taken;
        else ++*left;
    }
    CHECK_NEAR(want.pg, sums_c[VPPO__ON_PG], pg_bound, 0.0);
    CHECK_EQ_INT(want.n_clip, (int64_t)sums_c[VPPO__ON_CLIP]);
    CHECK_EQ_INT(want.n_clip_dual, (int64_t)sums_c[VPPO__ON_CLIP_DUAL]);
    CHECK_EQ_INT(want.n_selected, (int64_t)sums_c[VPPO__ON_SEL]);
    L.fast = 0;                               /* the double loop: the same entropy and PPO-KL bits */
    L.dlogp = g_d;
    CHECK_EQ_INT(0, k[0]->loss(&L, t0, t1, sums_d));
    CHECK(memcmp(&sums_d[VPPO__ON_ENT], &sums_c[VPPO__ON_ENT], sizeof(double)) == 0);
    CHECK(memcmp(&sums_d[VPPO__ON_PPO_KL], &sums_c[VPPO__ON_PPO_KL], sizeof(double)) == 0);
    CHECK_NEAR(sums_d[VPPO__ON_PG], sums_c[VPPO__ON_PG], pg_bound, 0.0);
    L.fast = 1;
    L.dlogp = g;
    for (i = 1; i < nk; ++i) {
        CHECK_EQ_INT(0, k[i]->loss(&L, t0, t1, sums));
        for (j = 0; j < VPPO__ON_NSUMS; ++j) CHECK(memcmp(&sums[j], &sums_c[j], sizeof sums[j]) == 0);
        CHECK(memcmp(g, g_c, sizeof g) == 0);
    }
}

/* The loss's float path (vppo__on_loss.fast, vppo__<I>_on_lossf) on random chunks: every
   ISA the same bits as the plain C one; against the float64 reference (vppo__token_add_at)
   the clip and selection counts exact, each gradient and the policy sum within the derived
   bounds, the entropy and PPO-KL sums the double loop's bits. Log-ratios mostly inside its
   range, some beyond it or on a clip bound, advantages up to 6 (beyond VPPO__LF_AMAX),
   masks with NaN at masked positions, selections, tails: chunks it leaves to the double
   loop among those it takes. */
void on_lossf_every_isa_matches_c_and_float64(void)
{
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    rng r = rng_make(99);
    int cfgi, taken = 0, left = 0;
    for (cfgi = 0; cfgi < 300; ++cfgi) lf_random_case(&r, cfgi, k, nk, &taken, &left);
    CHECK(taken > 20 * left && left > 100);      /* both loops ran */
}

/* The float path's error at its extremes, token by token (a chunk of 16 equal tokens, the
   policy sum / 16 = one token's term exactly): log-ratios across [-RMAX, RMAX] (its edges,
   near 0 down to 1e-30, just beyond the gap around each clip bound), |A| = VPPO__LF_AMAX,
   1, 1e-30, 0 of both signs, coef 1 (its largest): the policy term within LF_PG_ERR |A| of
   the float64 reference and the gradient within coef LF_G_ERR |A| + 2e-7 |g|. */
void on_lossf_error_bound_at_the_extremes(void)
{
    enum { N = 16 };
    static const float advs[] = { 4.0f, -4.0f, 1.0f, -1.0f, 1e-30f, -1e-30f, 0.0f, 3.999f };
    const vppo__on_kernels *k = vppo__on_active();
    const vppo_loss_config cfg = vppo_loss_config_default();
    const vppo__clip clip = vppo__clip_of(&cfg);
    float lp[N], lo[N], adv[N], g[N];
    rng r = rng_make(5);
    double worst_pg = 0.0, worst_g = 0.0;
    int i, j, a, fast = 0;
    for (i = 0; i < 4000; ++i) {
        double rho, sums[VPPO__ON_NSUMS];
        float o = (float)-rng_range(&r, 0.001, 6.0), p;
        vppo__on_loss L;
        if (i < 1000) rho = rng_range(&r, -VPPO__LF_RMAX, VPPO__LF_RMAX);
        else if (i < 1200) rho = (i % 2 ? 1 : -1) * (VPPO__LF_RMAX - 1e-7 * (i % 50));
        else if (i < 1400) rho = (i % 2 ? 1 : -1) * pow(10.0, -rng_range(&r, 0.0, 30.0));
        else if (i < 1600) rho = (i % 2 ? clip.log_hi : clip.log_lo) + (i % 4 < 2 ? 1 : -1) * (3e-7 + 1e-8 * (i % 40));
        else rho = rng_range(&r, -0.4, 0.4);
        p = (float)((double)o + rho);
        for (a = 0; a < (int)(sizeof advs / sizeof advs[0]); ++a) {
            vppo__token tk;
            vppo__loss_sums want;
            double gw, pg;
            for (j = 0; j < N; ++j) { lp[j] = p; lo[j] = o; adv[j] = advs[a]; }
            lf_setup(&L, &cfg, &clip, lp, lo, adv, g, 1.0);
            CHECK_EQ_INT(0, k->loss(&L, 0, N, sums));
            memset(&want, 0, sizeof want);
            vppo__token_add_at(&cfg, &clip, lp, lo, NULL, adv, NULL, NULL, 0, NULL, &tk, &want);
            gw = vppo__token_grad(&cfg, 1.0, tk.dpg, tk.dkl);
            pg = sums[VPPO__ON_PG] / N;
            CHECK_NEAR(tk.pg, pg, LF_PG_ERR * fabs(advs[a]), 0.0);
            CHECK_NEAR(gw, g[0], LF_G_ERR * fabs(advs[a]), 2e-7);
            CHECK_EQ_INT(N * (int64_t)tk.clipped, (int64_t)sums[VPPO__ON_CLIP]);
            if (advs[a] != 0.0f) {
                worst_pg = fmax(worst_pg, fabs(pg - tk.pg) / fabs(advs[a]));
                worst_g = fmax(worst_g, fabs(g[0] - gw) / (1.0 + fabs(gw)));
            }
            fast += fabs((double)p - o) <= VPPO__LF_RMAX && fabs(advs[a]) <= VPPO__LF_AMAX;
        }
    }
    CHECK(fast > 20000);
    printf("        float path (%s): policy term within %.3g |A|, gradient within %.3g (1 + |g|)\n",
           vppo_isa_name(vppo_isa_active()), worst_pg, worst_g);
}

/* What the float path leaves to the double loop: a chunk with one valid token at |rho| >
   VPPO__LF_RMAX, at |adv| > VPPO__LF_AMAX, or within VPPO__LF_GAP of a clip bound gives the
   double loop's bits (sums and gradient), on every ISA; a chunk without one takes the float
   path (its policy sums differ from the double loop's in some of the trials). */
void on_lossf_leaves_its_limits_to_the_double_loop(void)
{
    enum { N = 16 };
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    const vppo_loss_config cfg = vppo_loss_config_default();
    const vppo__clip clip = vppo__clip_of(&cfg);
    float lp[N], lo[N], adv[N], g[N], g_d[N];
    rng r = rng_make(17);
    int i, c, j, trial, differ = 0;
    for (trial = 0; trial < 400; ++trial)
        for (c = 0; c < 4; ++c) {
            double sums[VPPO__ON_NSUMS], sums_d[VPPO__ON_NSUMS];
            vppo__on_loss L;
            const int at = (int)rng_int(&r, 0, N - 1);
            for (j = 0; j < N; ++j) {
                lo[j] = (float)-rng_range(&r, 0.01, 5.0);
                lp[j] = (float)((double)lo[j] + rng_normal(&r) * 0.1);
                adv[j] = (float)(rng_normal(&r) * 1.5);
                if (fabs(adv[j]) > 3.9) adv[j] = 1.0f;
            }
            if (c == 0) lp[at] = (float)((double)lo[at] + (trial % 2 ? 1 : -1) * rng_range(&r, 0.3401, 0.5));
            if (c == 1) adv[at] = (float)((trial % 2 ? 1 : -1) * rng_range(&r, 4.0001, 5.0));
            if (c == 2) {   /* lo's ulp at most 2^-24: rho within 1.5e-7 + 3e-8 of the bound */
                lo[at] = (float)-rng_range(&r, 0.5, 1.0);
                lp[at] = (float)((double)lo[at] + (trial % 2 ? clip.log_hi : clip.log_lo) + rng_range(&r, -1.5e-7, 1.5e-7));
            }
            lf_setup(&L, &cfg, &clip, lp, lo, adv, g_d, 0.5);
            L.fast = 0;
            CHECK_EQ_INT(0, k[0]->loss(&L, 0, N, sums_d));
            L.fast = 1;
            L.dlogp = g;
            for (i = 0; i < nk; ++i) {
                CHECK_EQ_INT(0, k[i]->loss(&L, 0, N, sums));
                if (c < 3) {
                    for (j = 0; j < VPPO__ON_NSUMS; ++j)
                        if (j != VPPO__ON_DPG) CHECK(memcmp(&sums[j], &sums_d[j], sizeof sums[j]) == 0);
                    CHECK(memcmp(g, g_d, sizeof g) == 0);
                } else if (i == 0) {
                    differ += memcmp(&sums[VPPO__ON_PG], &sums_d[VPPO__ON_PG], sizeof(double)) != 0;
                }
            }
        }
    CHECK(differ > 100);
}

/* The word-at-a-time count of nonzero bytes (vppo__count_valid) against a byte loop: every
   length and start offset up to 40, bytes with one bit set at each place, 0 and 255. */
void count_nonzero_matches_a_byte_loop(void)
{
    uint8_t m[64];
    int i, n, off, want, wrong = 0;
    uint32_t x = 12345u;
    for (i = 0; i < 64; ++i) {
        x = x * 1103515245u + 12345u;
        m[i] = (x >> 16) % 3 == 0 ? 0 : (uint8_t)(1u << ((x >> 20) % 8));
    }
    m[5] = 255; m[17] = 0x80; m[18] = 0; m[19] = 0x01;
    for (off = 0; off < 8; ++off)
        for (n = 0; n <= 40; ++n) {
            for (want = 0, i = 0; i < n; ++i) want += m[off + i] != 0;
            wrong += vppo__count_nonzero(m + off, n) != want;
        }
    CHECK_EQ_INT(0, wrong);
}

/* The check kernel: one bad value at each position of every tail length, in each slot,
   masked or not, reports its group on every ISA; -inf only where allowed; the pair and
   PROB_DROP checks. */
void on_check_every_isa_finds_each_bad_value(void)
{
    enum { N = 40 };
    const vppo__on_kernels *k[8];
    vppo_isa isa[8];
    const int nk = on_kernel_list(k, isa);
    static const float bad[] = { HUGE_VALF, -HUGE_VALF, NAN };
    float x[3][N];
    uint8_t mask[N];
    int i, n, pos, slot, v, m, wrong = 0, tried = 0;
    for (i = 0; i < N; ++i) { x[0][i] = -1.0f; x[1][i] = -2.0f; x[2][i] = 0.5f; mask[i] = (uint8_t)(i % 3 != 1); }
    for (i = 0; i < nk; ++i)
        for (n = 1; n <= 33; ++n)
            for (pos = 0; pos < n; ++pos)
                for (slot = 0; slot < 3; ++slot)
                    for (v = 0; v < 3; ++v)
                        for (m = 0; m < 2; ++m) {
                            vppo__on_check c;
                            const float keep = x[slot][pos + 2];
                            const int ninf_ok = slot == 1, hidden = m && !mask[pos + 2];
                            int want, got;
                            memset(&c, 0, sizeof c);
                            c.x[0] = x[0]; c.x[2] = x[1]; c.x[5] = x[2];
                            c.ninf_ok[2] = 1;
                            c.group[0] = 1; c.group[2] = 2; c.group[5] = 4;
                            c.mask = m ? mask : NULL;
                            x[slot][pos + 2] = bad[v];
                            want = hidden || (ninf_ok && v == 1) ? 0 : (slot == 0 ? 1 : slot == 1 ? 2 : 4);
                            got = k[i]->check(&c, 2, 2 + n);
                            wrong += got != want;
                            ++tried;
                            x[slot][pos + 2] = keep;
                        }
    CHECK_EQ_INT(0, wrong);
    CHECK(tried > 0);
    /* the pair (both -inf) and PROB_DROP (exp difference beyond the floats) */
    for (i = 0; i < nk; ++i) {
        float a[5] = { -1.0f, -HUGE_VALF, -3.0f, 0.0f, -2.0f }, b[5] = { -HUGE_VALF, -2.0f, -3.0f, 0.0f, -2.0f };
        vppo__on_check c;
        memset(&c, 0, sizeof c);
        c.x[0] = a; c.x[1] = b; c.ninf_ok[0] = c.ninf_ok[1] = 1; c.group[0] = 1; c.group[1] = 1;
        c.pair = 1;
        CHECK_EQ_INT(0, k[i]->check(&c, 0, 5));
        b[1] = -HUGE_VALF;
        CHECK_EQ_INT(1, k[i]->check(&c, 0, 5));
        b[1] = -2.0f;
        c.prob_drop = 1;
        CHECK_EQ_INT(0, k[i]->check(&c, 0, 5));
        a[3] = 88.75f;                    /* e^88.75 > FLT_MAX (ln FLT_MAX = 88.72) */
        CHECK_EQ_INT(1, k[i]->check(&c, 0, 5));
        a[3] = 88.0f;                     /* e^88 < FLT_MAX */
        CHECK_EQ_INT(0, k[i]->check(&c, 0, 5));
    }
    /* PROB_DROP's exact test (a chunk with a value above 88) at every position of a range
       with a tail, masked or not; one array in two slots (read once) with -inf allowed in
       one of them only */
    for (i = 0; i < nk; ++i) {
        float a[N], b[N];
        for (pos = 0; pos < N; ++pos) { a[pos] = -1.0f; b[pos] = -2.0f; }
        for (n = 1; n <= 33; ++n)
            for (pos = 0; pos < n; ++pos)
                for (m = 0; m < 2; ++m) {
                    vppo__on_check c;
                    const int hidden = m && !mask[pos + 2];
                    memset(&c, 0, sizeof c);
                    c.x[0] = a; c.x[1] = b; c.ninf_ok[0] = c.ninf_ok[1] = 1; c.group[0] = c.group[1] = 1;
                    c.prob_drop = 1;
                    c.mask = m ? mask : NULL;
                    a[pos + 2] = 88.5f; b[pos + 2] = 88.5f;   /* above 88, a finite difference */
                    wrong += k[i]->check(&c, 2, 2 + n) != 0;
                    b[pos + 2] = 80.0f;                       /* e^88.5 - e^80 < FLT_MAX */
                    wrong += k[i]->check(&c, 2, 2 + n) != 0;
                    b[pos + 2] = -2.0f; a[pos + 2] = 88.75f;  /* e^88.75 > FLT_MAX */
                    wrong += k[i]->check(&c, 2, 2 + n) != (hidden ? 0 : 1);
                    a[pos + 2] = -1.0f;
                    c.prob_drop = 0;
                    c.x[1] = NULL; c.x[3] = a; c.group[3] = 2;   /* slot 0: -inf allowed; slot 3: not */
                    a[pos + 2] = -HUGE_VALF;
                    wrong += k[i]->check(&c, 2, 2 + n) != (hidden ? 0 : 2);
                    a[pos + 2] = NAN;
                    wrong += k[i]->check(&c, 2, 2 + n) != (hidden ? 0 : 3);
                    a[pos + 2] = -1.0f;
                    tried += 5;
                }
    }
    CHECK_EQ_INT(0, wrong);
    CHECK(tried > 0);
}

/* White-box: the backward kernel of every ISA with streaming stores (an aligned body after
   a head) writes the same bits, and reports the same, as with ordinary stores: lengths
   around the vector widths, destinations at every float offset from a 64-byte boundary,
   -inf entries, a NaN, temperatures 1 and 0.7; f32 and bf16 logits (both stream into an
   F32 gradient of 32 MiB or more). */
void backward_streaming_stores_every_isa(void)
{
    static float src[300], a[300 + 64], b[300 + 64];
    static uint16_t srcb[300];
    int isa, tested = 0, n, off, t, bad, dti;
    for (n = 0; n < 300; ++n) {
        src[n] = n % 11 == 3 ? -HUGE_VALF : (float)((n * 37 % 101) - 50) * 0.05f;
        srcb[n] = test_f32_to_bf16_trunc(src[n]);
    }
    for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
        const vppo__kernels *k = vppo__kernels_for((vppo_isa)isa);
        if (!k || !vppo__isa_supported((vppo_isa)isa)) continue;
        ++tested;
        for (dti = 0; dti < 2; ++dti)
        for (t = 0; t < 2; ++t)
            for (bad = 0; bad < 2; ++bad)
                for (n = 1; n <= 300; n += n < 70 ? 1 : 23)
                    for (off = 0; off < 16; off += 1 + (n > 70) * 4) {
                        const vppo__bwd_args c = vppo__bwd_args_of(0, 0.0, 0.0, 2.5, t ? 0.7 : 1.0, 0.5, -0.25, 1.5);
                        float *pa = (float *)((uintptr_t)(a + 16) / 64 * 64) + off, *pb = b + off;
                        const float keep = src[n / 2];
                        const uint16_t keepb = srcb[n / 2];
                        const void *in = dti ? (const void *)srcb : (const void *)src;
                        const vppo_dtype dt = dti ? VPPO_BF16 : VPPO_F32;
                        int fa, fb;
                        if (bad) { src[n / 2] = NAN; srcb[n / 2] = 0x7fc0; }
                        memset(a, 0, sizeof a);
                        memset(b, 0, sizeof b);
                        fa = k->bwd(in, dt, n, &c, pa, VPPO_F32, 1);
                        fb = k->bwd(in, dt, n, &c, pb, VPPO_F32, 0);
                        CHECK_EQ_INT(bad ? 1 : 0, fa & 1);    /* with a NaN, bit 1 is not defined */
                        CHECK_EQ_INT(bad ? 1 : fb, bad ? fb & 1 : fa);
                        if (!bad) CHECK(memcmp(pa, pb, (size_t)n * sizeof(float)) == 0);
                        CHECK(pa[n] == 0.0f && pa[-1] == 0.0f);   /* nothing outside [0, n) */
                        src[n / 2] = keep;
                        srcb[n / 2] = keepb;
                    }
    }
    CHECK_EQ_INT(test_vector_isas_selectable(), tested);
    test_check_vector_isas_tested(tested);
}

/* The runner (test_run), test_checks and test_fail live in test_util.c, shared with the
   CUDA suite (tests/test_cuda.c). */

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL, *isa = getenv("VPPO_TEST_ISA");
    int k;
    if (filter && strcmp(filter, "--list-isas") == 0) {
        for (k = VPPO_ISA_SCALAR; k <= VPPO_ISA_NEON; ++k)
            if (vppo_isa_select((vppo_isa)k) == VPPO_OK) printf("%s\n", vppo_isa_name((vppo_isa)k));
        return 0;
    }
    if (isa) {
        for (k = VPPO_ISA_SCALAR; k <= VPPO_ISA_NEON; ++k)
            if (strcmp(isa, vppo_isa_name((vppo_isa)k)) == 0) break;
        if (k > VPPO_ISA_NEON || vppo_isa_select((vppo_isa)k) != VPPO_OK) {
            fprintf(stderr, "VPPO_TEST_ISA=%s: not an ISA this build and CPU run\n", isa);
            return 2;
        }
    }
    printf("vppo.h %d.%d.%d tests, isa %s\n", VPPO_VERSION_MAJOR, VPPO_VERSION_MINOR,
           VPPO_VERSION_PATCH, vppo_isa_name(vppo_isa_active()));
    return test_run(tests, sizeof tests / sizeof tests[0], filter, NULL) ? 1 : 0;
}
