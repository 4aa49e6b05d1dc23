/* tests/fuzz/fuzz_perception.c - libFuzzer harness for token perception (§2):
   vppo_dependency_sampled, vppo_dependency_logits, vppo_logprobs and
   vppo_logprobs_backward (out of place and in place), on every ISA the machine runs,
   with any dtype, shape, stride, temperature and float bit pattern. */
#include "fuzz.h"

/* ------------------------------------------------------------ §2.1 */

static void run_sampled(fz *f)
{
    fz_seqs q;
    const vppo_estimator est = (vppo_estimator)fz_int(f, -1, 5);
    const unsigned null_sel = fz_u8(f) % 24;
    float *logp, *aug, *dep, *before;
    fz_reasons why;
    vppo_status st;
    int64_t t;
    logp = fz_seq_input(f, &q, 6, 80, null_sel, 5, &why);
    aug = fz_floats(f, q.n_alloc);
    dep = fz_out_floats_kept(f, q.n_alloc, &before);
    if ((int)est < 0 || (int)est > 4) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (!q.bad) {
        why |= fz_values_reason(&q, logp, 1) | fz_values_reason(&q, aug, 1);
        for (t = fz_begin(&q); t < fz_end(&q); ++t) {
            if (!fz_valid(&q, t)) continue;
            if (logp[t] == -HUGE_VALF && aug[t] == -HUGE_VALF) why |= FZ_BIT(VPPO_ERR_NONFINITE);
            if (est == VPPO_EST_PROB_DROP && !(fabs(exp((double)logp[t]) - exp((double)aug[t])) <= FLT_MAX))
                why |= FZ_BIT(VPPO_ERR_NONFINITE);
        }
    }
    if (null_sel == 4) q.s.offsets = NULL;
    st = vppo_dependency_sampled(null_sel == 0 ? NULL : &q.s, null_sel == 1 ? NULL : logp,
                                 null_sel == 2 ? NULL : aug, est, null_sel == 3 ? NULL : dep);
    if (!fz_per_token_outcome(&q, why, 0, st, dep, before, sizeof(float))) return;
    for (t = fz_begin(&q); t < fz_end(&q); ++t) {
        double ref;
        if (!fz_valid(&q, t)) continue;
        ref = ref_dependency(est, logp[t], aug[t]);
        FZ_ASSERT(fz_finite(dep[t]));
        FZ_ASSERT(fz_close(ref, dep[t], 1e-6, 1e-6));
        if (est == VPPO_EST_K3) FZ_ASSERT(dep[t] >= 0.0f && dep[t] <= 10.0f);
        if (est == VPPO_EST_K2 || est == VPPO_EST_ABS) FZ_ASSERT(dep[t] >= 0.0f);
    }
}

/* ------------------------------------------------------------ §2.2 */

/* The reasons of the first row that has any: what a serial pass stops at. */
static fz_reasons first_bad_row(const fz_mat *a, const fz_mat *b)
{
    int64_t r;
    for (r = 0; r < a->x.n_rows; ++r) {
        fz_reasons why = fz_row_reason(a, r) | (b ? fz_row_reason(b, r) : 0);
        if (why) return why;
    }
    return 0;
}

static void run_dependency_logits(fz *f)
{
    fz_mat P, Q;
    const vppo_divergence div = (vppo_divergence)fz_int(f, -1, 3);
    const unsigned null_sel = fz_u8(f) % 24;
    fz_reasons why;
    float *dep, *before;
    int64_t r, n_out;
    vppo_status st;
    fz_make_logits_shape(f, &P, -1, -1);
    if (fz_u8(f) % 16 == 0) fz_make_logits_shape(f, &Q, -1, -1);    /* shapes may differ */
    else fz_make_logits_shape(f, &Q, P.x.n_rows, P.x.vocab);
    fz_fill_logits(f, &P);
    fz_fill_logits(f, &Q);
    n_out = P.x.n_rows >= 0 && P.x.n_rows <= 64 ? P.x.n_rows : 1;
    dep = fz_out_floats_kept(f, n_out, &before);
    why = P.bad | Q.bad;
    if (P.x.n_rows != Q.x.n_rows || P.x.vocab != Q.x.vocab) why |= FZ_BIT(VPPO_ERR_SIZE);
    if ((int)div < 0 || (int)div > 2) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (null_sel < 5) why |= FZ_BIT(VPPO_ERR_NULL);
    if (null_sel == 2) P.x.data = NULL;
    if (null_sel == 3) Q.x.data = NULL;
    if (!why) why = first_bad_row(&P, &Q);
    st = vppo_dependency_logits(null_sel == 0 ? NULL : &P.x, null_sel == 1 ? NULL : &Q.x, div,
                                null_sel == 4 ? NULL : dep);
    FZ_EXPECT(why, st);
    if (st != VPPO_OK) return;
    FZ_ASSERT(P.x.n_rows == n_out);
    for (r = 0; r < n_out; ++r) {
        const int64_t V = P.x.vocab;
        double *u = (double *)malloc((size_t)V * 4 * sizeof(double)), *lp = u + V, *v = lp + V, *lq = v + V;
        const vppo_divergence d = div;
        double ref;
        int64_t j;
        int infinite = 0;
        FZ_ASSERT(u != NULL);
        fz_row_logsoftmax(&P, r, u, lp);
        fz_row_logsoftmax(&Q, r, v, lq);
        for (j = 0; j < V; ++j)   /* the side whose p > 0 meets q = 0 */
            if (d == VPPO_DIV_KL ? (lp[j] > -HUGE_VAL && lq[j] == -HUGE_VAL) : (lq[j] > -HUGE_VAL && lp[j] == -HUGE_VAL))
                infinite = 1;
        ref = d == VPPO_DIV_KL ? ref_kl(lp, lq, V) : d == VPPO_DIV_KL_REVERSE ? ref_kl(lq, lp, V) : ref_js(lp, lq, V);
        if (fz_debug()) {
            fz_dump_row("P", &P, r);
            fz_dump_row("Q", &Q, r);
            fprintf(stderr, "div %d: got %.9g, float64 reference %.9g\n", (int)d, (double)dep[r], ref);
        }
        FZ_ASSERT(!(dep[r] != dep[r]));                         /* never NaN */
        FZ_ASSERT(dep[r] >= 0.0f);                              /* a divergence */
        if (d == VPPO_DIV_JS) FZ_ASSERT(dep[r] <= 0.6931472f * (1.0f + 1e-4f) + 1e-5f);
        if (infinite && d != VPPO_DIV_JS) FZ_ASSERT(dep[r] == HUGE_VALF);
        else if (fabs(ref) <= FLT_MAX) FZ_ASSERT(fz_finite(dep[r]));
        /* (the float64 reference can give NaN where p or q is a denormal: not compared) */
        if (!infinite && fz_finite(ref) && fz_row_tame(&P, r) && fz_row_tame(&Q, r))
            FZ_ASSERT(fz_close(ref, dep[r], 2e-5, 2e-4));
        free(u);
    }
    (void)before;
}

/* ------------------------------------------------------------ §2.3 */

/* ids [n] in range mostly, out of it sometimes; *bad set for an id outside [0, vocab). */
static int32_t *make_ids(fz *f, int64_t n, int64_t vocab, int *bad)
{
    static const int32_t wild[] = { -1, INT32_MIN, INT32_MAX, 0 };
    int32_t *ids = (int32_t *)fz_alloc(f, (size_t)n * sizeof(int32_t));
    int64_t r;
    *bad = 0;
    for (r = 0; r < n; ++r) {
        const unsigned sel = fz_u8(f);
        if (sel < 240) ids[r] = vocab > 0 ? (int32_t)((uint64_t)fz_bits(f, 2) % (uint64_t)vocab) : 0;
        else if (sel < 248) ids[r] = (int32_t)(vocab > INT32_MAX ? INT32_MAX : vocab);
        else ids[r] = wild[sel % 4];
        if (ids[r] < 0 || ids[r] >= vocab) *bad = 1;
    }
    return ids;
}

/* An optional per-row output of n floats with one entry of slack that must stay. */
static float *maybe_out(fz *f, int64_t n)
{
    return fz_u8(f) % 3 == 0 ? NULL : fz_out_floats(f, n + 1);
}

static void run_logprobs(fz *f)
{
    fz_mat X;
    const unsigned null_sel = fz_u8(f) % 24;
    int64_t n, r;
    int32_t *ids = NULL;
    int bad_ids = 0;
    float *logp, *lse, *ent;
    fz_reasons why;
    vppo_status st;
    fz_make_logits_shape(f, &X, -1, -1);
    fz_fill_logits(f, &X);
    n = X.bad ? 1 : X.x.n_rows;
    if (null_sel != 3) ids = make_ids(f, n, X.x.vocab, &bad_ids);
    logp = maybe_out(f, n);
    lse = maybe_out(f, n);
    ent = maybe_out(f, n);
    why = X.bad;
    if (null_sel < 2) why |= FZ_BIT(VPPO_ERR_NULL);
    if (logp && !ids) why |= FZ_BIT(VPPO_ERR_NULL);
    if (logp && ids && bad_ids) why |= FZ_BIT(VPPO_ERR_INDEX);
    if (null_sel == 1) X.x.data = NULL;
    if (!why) why = first_bad_row(&X, NULL);
    st = vppo_logprobs(null_sel == 0 ? NULL : &X.x, ids, logp, lse, ent);
    FZ_EXPECT(why, st);
    if (st != VPPO_OK) return;
    if (logp) FZ_ASSERT(((const uint32_t *)logp)[n] == 0xA5A5A5A5u);
    if (lse) FZ_ASSERT(((const uint32_t *)lse)[n] == 0xA5A5A5A5u);
    if (ent) FZ_ASSERT(((const uint32_t *)ent)[n] == 0xA5A5A5A5u);
    for (r = 0; r < n; ++r) {
        const int64_t V = X.x.vocab;
        double *u = (double *)malloc((size_t)V * 2 * sizeof(double)), *lp = u + V, ref_lse, ref_h;
        const int tame = fz_row_tame(&X, r);
        FZ_ASSERT(u != NULL);
        ref_lse = fz_row_logsoftmax(&X, r, u, lp);
        ref_h = ref_entropy(lp, V);
        if (lse) {
            FZ_ASSERT(!(lse[r] != lse[r]));
            if (fabs(ref_lse) <= FLT_MAX) FZ_ASSERT(fz_finite(lse[r]));
            if (tame) FZ_ASSERT(fz_close(ref_lse, lse[r], 2e-5, 2e-5));
        }
        if (ent) {
            FZ_ASSERT(fz_finite(ent[r]) && ent[r] >= 0.0f);
            FZ_ASSERT(ent[r] <= log((double)V) * (1 + 1e-4) + 1e-4);     /* H <= log V */
            if (tame) FZ_ASSERT(fz_close(ref_h, ent[r], 2e-5, 2e-4));
        }
        if (logp) {
            const double ref = lp[ids[r]];
            FZ_ASSERT(!(logp[r] != logp[r]));
            if (ref == -HUGE_VAL) FZ_ASSERT(logp[r] == -HUGE_VALF);
            else if (fabs(ref) <= FLT_MAX) FZ_ASSERT(fz_finite(logp[r]));
            FZ_ASSERT(logp[r] <= 0.0f);                                   /* a log-probability */
            if (tame) FZ_ASSERT(fz_close(ref, logp[r], 2e-5, 2e-5));
        }
        free(u);
    }
}

/* One gradient entry from the formula of §2.3, in double. */
static double ref_grad(double u, double lse, double H, double g, double h, int onehot, double T)
{
    double lp, p;
    if (u == -HUGE_VAL) return onehot ? g / T : 0.0;
    lp = u - lse;
    p = exp(lp);
    return (g * ((onehot ? 1.0 : 0.0) - p) - h * p * (lp + H)) / T;
}

static void run_backward(fz *f)
{
    fz_mat X;
    vppo_logits xin;
    vppo_grad_out g;
    const unsigned null_sel = fz_u8(f) % 28, out_mode = fz_u8(f) % 10, stats_mode = fz_u8(f) % 4;
    int64_t n, r, j, V, out_elems = 1;
    int32_t *ids = NULL;
    int bad_ids = 0, in_place_attempt = 0, given_ok = 0;
    float *dlogp = NULL, *dent = NULL, *lse = NULL, *ent = NULL;
    void *out_before = NULL;
    fz_reasons why;
    vppo_status st;
    fz_make_logits_shape(f, &X, -1, -1);
    fz_fill_logits(f, &X);
    n = X.bad ? 1 : X.x.n_rows;
    V = X.x.vocab;
    if (null_sel != 3) ids = make_ids(f, n, V, &bad_ids);
    if (fz_u8(f) % 4) dlogp = fz_floats(f, n);
    if (fz_u8(f) % 3) dent = fz_floats(f, n);
    if (stats_mode == 1 && !X.bad) {            /* the caller's lse and entropy, as logprobs wrote them */
        lse = fz_out_floats(f, n);
        ent = fz_out_floats(f, n);
        given_ok = vppo_logprobs(&X.x, NULL, NULL, lse, ent) == VPPO_OK;
        if (!given_ok) { lse = NULL; ent = NULL; }
    } else if (stats_mode == 2) {               /* anything: finite or not, right or wrong */
        lse = fz_floats(f, n);
        if (fz_u8(f) & 1) ent = fz_floats(f, n);
    }
    /* the output */
    memset(&g, 0, sizeof g);
    g.dtype = out_mode < 6 ? VPPO_F32 : out_mode < 8 ? VPPO_BF16 : out_mode == 8 ? VPPO_F16 : (vppo_dtype)7;
    g.row_stride = V + fz_int(f, 0, 5);
    if (fz_u8(f) % 24 == 0) g.row_stride = V - 1;
    if (out_mode == 9 && fz_u8(f) % 2 == 0) {   /* in place (or an overlap that is not) */
        in_place_attempt = 1;
        g.data = (void *)X.x.data;
        g.dtype = fz_u8(f) % 3 ? VPPO_F32 : VPPO_BF16;
        g.row_stride = fz_u8(f) % 3 ? X.x.row_stride : X.x.row_stride + 1;
    } else if (!X.bad && g.row_stride >= V) {
        out_elems = n > 0 ? (n - 1) * g.row_stride + V : 0;
        g.data = fz_alloc(f, (size_t)out_elems * ((int)g.dtype == VPPO_F32 ? 4 : 2));
        if (out_elems) memset(g.data, 0xA5, (size_t)out_elems * ((int)g.dtype == VPPO_F32 ? 4 : 2));
        out_before = fz_copy(f, g.data, (size_t)out_elems * ((int)g.dtype == VPPO_F32 ? 4 : 2));
    } else {
        g.data = fz_alloc(f, 4);                 /* must not be written */
    }
    why = X.bad;
    if (null_sel < 2 || (null_sel == 2 && !in_place_attempt)) why |= FZ_BIT(VPPO_ERR_NULL);
    if (dlogp && !ids) why |= FZ_BIT(VPPO_ERR_NULL);
    if (g.dtype == VPPO_F16) why |= FZ_BIT(VPPO_ERR_UNSUPPORTED);
    else if (g.dtype != VPPO_F32 && g.dtype != VPPO_BF16) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (g.row_stride < V) why |= FZ_BIT(VPPO_ERR_SIZE);
    if (in_place_attempt && n > 0 &&
        !(X.x.dtype == VPPO_F32 && g.dtype == VPPO_F32 && g.row_stride == X.x.row_stride))
        why |= FZ_BIT(VPPO_ERR_PARAM);
    if (dlogp && ids && bad_ids) why |= FZ_BIT(VPPO_ERR_INDEX);
    for (r = 0; r < n && !X.bad; ++r) {
        if ((lse && !fz_finite(lse[r])) || (ent && !fz_finite(ent[r])) ||
            (dlogp && !fz_finite(dlogp[r])) || (dent && !fz_finite(dent[r])))
            why |= FZ_BIT(VPPO_ERR_NONFINITE);
    }
    if (!why) why = first_bad_row(&X, NULL);
    xin = X.x;
    if (null_sel == 1) xin.data = NULL;
    if (null_sel == 2 && !in_place_attempt) g.data = NULL;
    st = vppo_logprobs_backward(null_sel == 0 ? NULL : &xin, ids, lse, ent, dlogp, dent,
                                null_sel == 4 ? NULL : &g);
    if (null_sel == 4) why |= FZ_BIT(VPPO_ERR_NULL);
    FZ_EXPECT(why, st);
    if (st != VPPO_OK || in_place_attempt || n == 0) return;
    /* the gaps of the output rows are untouched; every entry is a number unless the
       caller's lse was made up (p = exp(u - lse) may then leave the float range), or was
       right but stored as a float next to huge logits (|u| ~ 1e30: the rounding of the
       float lse alone moves u - lse by more than 88) */
    for (r = 0; r < n; ++r)
        for (j = 0; j < (r == n - 1 ? V : g.row_stride); ++j) {
            const int64_t at = r * g.row_stride + j;
            const size_t es = g.dtype == VPPO_F32 ? 4 : 2;
            if (j >= V) FZ_ASSERT(memcmp((char *)g.data + at * es, (char *)out_before + at * es, es) == 0);
            else if (stats_mode == 0 || (stats_mode == 1 && fz_row_tame(&X, r))) {
                if (fz_debug() && isnan(fz_decode(g.dtype, g.data, at))) {
                    fz_dump_row("X", &X, r);
                    fprintf(stderr, "entry %lld id %d g %.9g h %.9g given %d/%d out dtype %d\n", (long long)j,
                            ids ? ids[r] : -1, dlogp ? dlogp[r] : 0.0, dent ? dent[r] : 0.0, lse != NULL, ent != NULL,
                                (int)g.dtype);
                }
                FZ_ASSERT(!isnan(fz_decode(g.dtype, g.data, at)));
            }
        }
    /* against the formula, where lse and entropy are right and the row is tame */
    if (stats_mode == 0 || given_ok) {
        for (r = 0; r < n; ++r) {
            double *u = (double *)malloc((size_t)V * 2 * sizeof(double)), *lp = u + V, l, H;
            const double gr = dlogp ? dlogp[r] : 0.0, hr = dent ? dent[r] : 0.0, T = X.x.temperature;
            FZ_ASSERT(u != NULL);
            l = fz_row_logsoftmax(&X, r, u, lp);
            H = ref_entropy(lp, V);
            if (lse) l = lse[r];          /* given values are used as given */
            if (ent) H = ent[r];
            if (fz_row_tame(&X, r) && fabs(gr) <= 1e4 && fabs(hr) <= 1e4)
                for (j = 0; j < V; ++j) {
                    const double want = ref_grad(u[j], l, H, gr, hr, dlogp && ids[r] == j, T);
                    const double tol = 1e-6 * (fabs(gr) + fabs(hr) * (1.0 + fabs(H))) / T;   /* p |log p| <= 1/e */
                    const double got = fz_decode(g.dtype, g.data, r * g.row_stride + j);
                    if (fz_debug() && !(fabs(got - want) <= tol + (g.dtype == VPPO_BF16 ? 8e-3 : 1e-4) * fabs(want) + 1e-30)) {
                        fz_dump_row("X", &X, r);
                        fprintf(stderr,
                            "entry %lld id %d g %.9g h %.9g lse %.17g H %.17g given %d/%d: got %.9g want %.9g\n",
                                (long long)j, ids ? ids[r] : -1, gr, hr, l, H, lse != NULL, ent != NULL, got, want);
                    }
                    FZ_ASSERT(fabs(got - want) <= tol + (g.dtype == VPPO_BF16 ? 8e-3 : 1e-4) * fabs(want) + 1e-30);
                }
            free(u);
        }
    }
    /* in place on a copy of an F32 matrix gives the same bits as out of place */
    if (X.x.dtype == VPPO_F32 && g.dtype == VPPO_F32 && g.row_stride == X.x.row_stride) {
        float *copy = (float *)fz_copy(f, X.x.data, X.bytes);
        vppo_logits y = X.x;
        vppo_grad_out gi;
        y.data = copy;
        gi.data = copy; gi.dtype = VPPO_F32; gi.row_stride = y.row_stride;
        FZ_ASSERT(vppo_logprobs_backward(&y, ids, lse, ent, dlogp, dent, &gi) == VPPO_OK);
        for (r = 0; r < n; ++r)
            for (j = 0; j < (r == n - 1 ? V : X.x.row_stride); ++j) {
                const int64_t at = r * X.x.row_stride + j;
                if (j < V) FZ_ASSERT(memcmp(copy + at, (float *)g.data + at, 4) == 0);
                else FZ_ASSERT(memcmp(copy + at, (const float *)X.x.data + at, 4) == 0);   /* gap kept */
            }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_run runs[] = { run_sampled, run_dependency_logits, run_logprobs, run_backward };
    return fz_dispatch(data, size, 1, runs, 4);
}
