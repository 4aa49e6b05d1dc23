/* tests/fuzz/fuzz_linear.c - libFuzzer harness for the fused linear head (§9):
   vppo_linear_workspace, vppo_linear_logprobs, vppo_linear_dependency and
   vppo_linear_logprobs_backward, with small sizes (a vocabulary past one chunk of 4096
   and more than one tile of 64 rows now and then), any workspace size and alignment,
   temperature and float bit pattern; compared with the logits materialised in double. */
#include "fuzz.h"

typedef struct lin {
    int64_t n, d, V;
    float T;
    float *hidden, *hidden_aug, *weight;
    fz_reasons bad;      /* argument errors */
    int in_range;        /* every logit (in double) well inside the float range */
    double *z, *za;      /* [n * V] logits in double: hidden . weight^T, and of hidden_aug */
    double dot_scale;    /* the largest sum_k |h_k w_k| of a logit: the size of its rounding */
} lin;

static void logits_double(const float *h, const float *w, int64_t n, int64_t d, int64_t V, double *z, double *scale)
{
    int64_t i, j, k;
    for (i = 0; i < n; ++i)
        for (j = 0; j < V; ++j) {
            double s = 0.0, a = 0.0;
            for (k = 0; k < d; ++k) {
                s += (double)h[i * d + k] * (double)w[j * d + k];
                a += fabs((double)h[i * d + k] * (double)w[j * d + k]);
            }
            z[i * V + j] = s;
            if (a > *scale) *scale = a;
        }
}

static void make_lin(fz *f, lin *L, int want_aug)
{
    static const int64_t vocabs[] = { 1, 2, 7, 16, 17, 64, 100, 513, 4096, 4097, 4200 };
    const unsigned vsel = fz_u8(f);
    int64_t i;
    memset(L, 0, sizeof *L);
    L->n = fz_u8(f) % 16 == 0 ? fz_int(f, 60, 70) : fz_int(f, 0, 5);
    L->d = fz_int(f, 1, 6);
    L->V = vsel < 200 ? fz_int(f, 1, 40) : vocabs[vsel % (sizeof vocabs / sizeof vocabs[0])];
    if (L->n > 8 && L->V > 200) L->V = 200;      /* keep each input fast */
    switch (fz_u8(f) % 40) {
    case 0: L->n = -fz_int(f, 1, 3); break;
    case 1: L->d = -fz_int(f, 0, 2); break;
    case 2: L->V = -fz_int(f, 0, 2); break;
    case 3: L->d = INT64_MAX / 2; break;
    default: break;
    }
    if (L->n < 0 || L->d < 1 || L->V < 1 || L->d > 1000000) L->bad |= FZ_BIT(VPPO_ERR_SIZE);
    L->T = fz_u8(f) < 200 ? 1.0f : fz_float(f);
    if (!(L->T > 0.0f) || !fz_finite(L->T)) L->bad |= FZ_BIT(VPPO_ERR_PARAM);
    /* the fused head's own limit: 1/T must be a float (T >= 1/FLT_MAX, about 2.9e-39) */
    else if (!(1.0 / (double)L->T <= FLT_MAX)) L->bad |= FZ_BIT(VPPO_ERR_PARAM);
    if (L->bad & FZ_BIT(VPPO_ERR_SIZE)) {        /* the call must not read these */
        L->hidden = fz_floats(f, 1);
        L->hidden_aug = fz_floats(f, 1);
        L->weight = fz_floats(f, 1);
        return;
    }
    L->hidden = fz_floats(f, L->n * L->d);
    L->hidden_aug = want_aug ? fz_floats(f, L->n * L->d) : NULL;
    L->weight = fz_floats(f, L->V * L->d);
    L->z = (double *)fz_alloc(f, (size_t)(L->n * L->V) * sizeof(double));
    L->za = (double *)fz_alloc(f, (size_t)(L->n * L->V) * sizeof(double));
    logits_double(L->hidden, L->weight, L->n, L->d, L->V, L->z, &L->dot_scale);
    if (want_aug) logits_double(L->hidden_aug, L->weight, L->n, L->d, L->V, L->za, &L->dot_scale);
    L->in_range = L->dot_scale < 1e30 && L->dot_scale == L->dot_scale;
    for (i = 0; i < L->n * L->d; ++i)
        if (!fz_finite(L->hidden[i]) || (want_aug && !fz_finite(L->hidden_aug[i]))) L->in_range = 0;
    for (i = 0; i < L->V * L->d; ++i) if (!fz_finite(L->weight[i])) L->in_range = 0;
}

/* NONFINITE for a NaN or infinity in hidden or weight (documented: both finite); rows is
   n or V. */
static fz_reasons data_reason(const lin *L, const float *x, int64_t rows)
{
    int64_t i, n;
    if (L->bad) return 0;
    n = rows * L->d;
    for (i = 0; i < n; ++i) if (!fz_finite(x[i])) return FZ_BIT(VPPO_ERR_NONFINITE);
    return 0;
}

/* A work buffer: the size the query gives, or one byte short, or NULL; any alignment. */
static void *make_work(fz *f, const lin *L, size_t *bytes, fz_reasons *why)
{
    const size_t need = vppo_linear_workspace(L->n, L->d, L->V);
    const unsigned sel = fz_u8(f) % 16, shift = fz_u8(f) % 8;
    if (!L->bad) FZ_ASSERT(need > 0);
    *bytes = need > ((size_t)1 << 28) ? 64 : need;
    if (sel == 0 && *bytes > 0) --*bytes;
    if (sel == 1) { *why |= FZ_BIT(VPPO_ERR_NULL); return NULL; }
    if (*bytes < need && !L->bad) *why |= FZ_BIT(VPPO_ERR_WORKSPACE);
    return (char *)fz_alloc(f, *bytes + shift) + shift;
}

static int32_t *make_ids(fz *f, int64_t n, int64_t V, int *bad)
{
    int32_t *ids = (int32_t *)fz_alloc(f, (size_t)(n > 0 ? n : 0) * sizeof(int32_t));
    int64_t r;
    *bad = 0;
    for (r = 0; r < n; ++r) {
        const unsigned sel = fz_u8(f);
        ids[r] = sel < 245 ? (int32_t)(fz_bits(f, 2) % (uint64_t)(V > 0 ? V : 1)) : sel & 1 ? -1 : (int32_t)V;
        if (ids[r] < 0 || ids[r] >= V) *bad = 1;
    }
    return ids;
}

/* Logits rounded by an f32 GEMM: how far u = z / T may be off. */
static double u_error(const lin *L) { return 4.0 * (double)L->d * 6e-8 * L->dot_scale / (double)L->T + 1e-30; }

static int tame(const lin *L) { return L->in_range && L->T >= 0.01f && L->T <= 100.0f && L->dot_scale <= 1e5; }

static void dump_lin(const char *what, const lin *L, const float *lse, const float *ent, const float *dlogp,
                     const float *dent)
{
    int64_t i;
    if (!fz_debug()) return;
    fprintf(stderr, "%s: isa %s n %lld d %lld V %lld T %.9g dot_scale %g in_range %d\n", what,
            vppo_isa_name(vppo_isa_active()), (long long)L->n, (long long)L->d, (long long)L->V, (double)L->T,
            L->dot_scale, L->in_range);
    for (i = 0; i < L->n && !L->bad; ++i)
        fprintf(stderr, "  row %lld: lse %g ent %g dlogp %g dent %g\n", (long long)i, lse ? lse[i] : 0.0,
                ent ? ent[i] : 0.0, dlogp ? dlogp[i] : 0.0, dent ? dent[i] : 0.0);
    for (i = 0; i < L->n * L->V && !L->bad && i < 64; ++i) fprintf(stderr, " z %g", L->z[i]);
    fputc('\n', stderr);
}

static void run_logprobs(fz *f)
{
    lin L;
    size_t work_bytes;
    void *work;
    int32_t *ids = NULL;
    int bad_ids = 0;
    float *logp = NULL, *lse = NULL, *ent = NULL;
    fz_reasons why = 0;
    vppo_status st;
    int64_t r;
    make_lin(f, &L, 0);
    why = L.bad | data_reason(&L, L.hidden, L.n) | data_reason(&L, L.weight, L.V);
    work = make_work(f, &L, &work_bytes, &why);
    if (!L.bad && fz_u8(f) % 8) ids = make_ids(f, L.n, L.V, &bad_ids);
    if (!L.bad && fz_u8(f) % 3) logp = fz_out_floats(f, L.n);
    if (!L.bad && fz_u8(f) % 3) lse = fz_out_floats(f, L.n);
    if (!L.bad && fz_u8(f) % 3) ent = fz_out_floats(f, L.n);
    if (logp && !ids) why |= FZ_BIT(VPPO_ERR_NULL);
    if (logp && bad_ids) why |= FZ_BIT(VPPO_ERR_INDEX);
    st = vppo_linear_logprobs(L.hidden, L.weight, L.n, L.d, L.V, L.T, ids, logp, lse, ent, work, work_bytes);
    /* logits that overflow the f32 GEMM are NaN or +inf (or all -inf): the row's error */
    FZ_EXPECT2(why, L.in_range ? 0 : FZ_BIT(VPPO_ERR_NONFINITE) | FZ_BIT(VPPO_ERR_PARAM), st);
    if (st != VPPO_OK) return;
    for (r = 0; r < L.n; ++r) if (logp) FZ_ASSERT(logp[r] <= 0.0f);   /* a log-probability */
    if (!tame(&L)) return;
    for (r = 0; r < L.n; ++r) {
        double *u = (double *)malloc((size_t)L.V * 2 * sizeof(double)), *lp = u + L.V, l;
        const double eu = u_error(&L);
        int64_t j;
        FZ_ASSERT(u != NULL);
        for (j = 0; j < L.V; ++j) u[j] = L.z[r * L.V + j] / (double)L.T;
        l = ref_log_softmax(u, L.V, lp);
        if (lse) FZ_ASSERT(fz_close(l, lse[r], 1e-5 + eu, 1e-5));
        if (ent) FZ_ASSERT(fz_close(ref_entropy(lp, L.V), ent[r], 1e-5 + 4 * eu * (1 + fabs(l)), 1e-4));
        if (logp) FZ_ASSERT(fz_close(lp[ids[r]], logp[r], 1e-5 + 2 * eu, 1e-5));
        free(u);
    }
}

static void run_dependency(fz *f)
{
    lin L;
    size_t work_bytes;
    void *work;
    const vppo_divergence div = (vppo_divergence)fz_int(f, -1, 3);
    const unsigned null_sel = fz_u8(f) % 16;
    float *dep;
    fz_reasons why;
    vppo_status st;
    int64_t r;
    make_lin(f, &L, 1);
    why = L.bad | data_reason(&L, L.hidden, L.n) | data_reason(&L, L.weight, L.V);
    if (L.hidden_aug) why |= data_reason(&L, L.hidden_aug, L.n);
    work = make_work(f, &L, &work_bytes, &why);
    dep = fz_out_floats(f, L.bad ? 1 : L.n);
    if ((int)div < 0 || (int)div > 2) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (null_sel < 2) why |= FZ_BIT(VPPO_ERR_NULL);
    st = vppo_linear_dependency(L.hidden, null_sel == 0 ? NULL : L.hidden_aug, L.weight, L.n, L.d, L.V, L.T, div,
                                null_sel == 1 ? NULL : dep, work, work_bytes);
    FZ_EXPECT2(why, L.in_range ? 0 : FZ_BIT(VPPO_ERR_NONFINITE) | FZ_BIT(VPPO_ERR_PARAM), st);
    if (st != VPPO_OK) return;
    for (r = 0; r < L.n; ++r) {
        double *u = (double *)malloc((size_t)L.V * 4 * sizeof(double)), *v = u + L.V, *lp = v + L.V, *lq = lp + L.V, ref;
        const double eu = u_error(&L);
        int64_t j;
        FZ_ASSERT(u != NULL);
        FZ_ASSERT(dep[r] >= 0.0f);                 /* and not NaN */
        for (j = 0; j < L.V; ++j) { u[j] = L.z[r * L.V + j] / (double)L.T; v[j] = L.za[r * L.V + j] / (double)L.T; }
        ref_log_softmax(u, L.V, lp);
        ref_log_softmax(v, L.V, lq);
        ref = div == VPPO_DIV_KL ? ref_kl(lp, lq, L.V)
            : div == VPPO_DIV_KL_REVERSE ? ref_kl(lq, lp, L.V) : ref_js(lp, lq, L.V);
        if (div == VPPO_DIV_JS) FZ_ASSERT(dep[r] <= 0.6931472f * (1.0f + 1e-4f) + 1e-5f);
        /* (the float64 reference of tests/test_util.c can give NaN where p or q is a denormal: not compared) */
        if (tame(&L) && fz_finite(ref)) FZ_ASSERT(fz_close(ref, dep[r], 1e-4 + 4 * eu, 1e-4));
        free(u);
    }
}

static void run_backward(fz *f)
{
    lin L;
    size_t work_bytes;
    void *work;
    const unsigned null_sel = fz_u8(f) % 16, stats_mode = fz_u8(f) % 3;
    int32_t *ids = NULL;
    int bad_ids = 0;
    float *dlogp = NULL, *dent = NULL, *lse = NULL, *ent = NULL, *dhidden, *dweight = NULL, *dweight0 = NULL;
    fz_reasons why;
    vppo_status st;
    int64_t r, j, k;
    make_lin(f, &L, 0);
    why = L.bad | data_reason(&L, L.hidden, L.n) | data_reason(&L, L.weight, L.V);
    work = make_work(f, &L, &work_bytes, &why);
    if (!L.bad) {
        if (fz_u8(f) % 8) ids = make_ids(f, L.n, L.V, &bad_ids);
        if (fz_u8(f) % 4) dlogp = fz_floats(f, L.n);
        if (fz_u8(f) % 3) dent = fz_floats(f, L.n);
        if (stats_mode == 1) {        /* as vppo_linear_logprobs wrote them */
            lse = fz_out_floats(f, L.n);
            ent = fz_out_floats(f, L.n);
            if (!work || vppo_linear_logprobs(L.hidden, L.weight, L.n, L.d, L.V, L.T, NULL, NULL, lse, ent, work,
                                              work_bytes) != VPPO_OK) { lse = NULL; ent = NULL; }
        } else if (stats_mode == 2) {
            lse = fz_floats(f, L.n);
            ent = fz_floats(f, L.n);
        }
        if (fz_u8(f) & 1) {
            dweight = fz_floats(f, L.V * L.d);
            dweight0 = (float *)fz_copy(f, dweight, (size_t)(L.V * L.d) * sizeof(float));
        }
        for (r = 0; r < L.n; ++r)
            if ((dlogp && !fz_finite(dlogp[r])) || (dent && !fz_finite(dent[r])) ||
                (lse && !fz_finite(lse[r])) || (ent && !fz_finite(ent[r])))
                why |= FZ_BIT(VPPO_ERR_NONFINITE);
    }
    dhidden = fz_out_floats(f, L.bad ? 1 : L.n * L.d);
    if (null_sel == 0) why |= FZ_BIT(VPPO_ERR_NULL);
    if (dlogp && !ids) why |= FZ_BIT(VPPO_ERR_NULL);
    if (dlogp && bad_ids) why |= FZ_BIT(VPPO_ERR_INDEX);
    st = vppo_linear_logprobs_backward(L.hidden, L.weight, L.n, L.d, L.V, L.T, ids, lse, ent, dlogp, dent,
                                       null_sel == 0 ? NULL : dhidden, dweight, work, work_bytes);
    dump_lin("backward", &L, lse, ent, dlogp, dent);
    {
        /* dhidden beyond the float range is VPPO_ERR_NONFINITE: possible only with large
           weights or upstream gradients */
        int small = stats_mode == 0 && L.in_range && L.T >= 1e-20f;   /* lse recomputed, 1/T and weights bound it */
        if (small && !L.bad && L.weight) {   /* sizes valid: the products below are defined */
            for (j = 0; j < L.V * L.d; ++j) small &= fabs(L.weight[j]) <= 1e4;
            for (r = 0; r < L.n; ++r) small &= (!dlogp || fabs(dlogp[r]) <= 1e4) && (!dent || fabs(dent[r]) <= 1e4);
        }
        FZ_EXPECT2(why, (L.in_range ? 0 : FZ_BIT(VPPO_ERR_NONFINITE) | FZ_BIT(VPPO_ERR_PARAM)) |
                            (small ? 0 : FZ_BIT(VPPO_ERR_NONFINITE)), st);
    }
    if (st != VPPO_OK || stats_mode == 2) return;
    if (stats_mode == 0 && L.in_range && L.T >= 1e-20f) {   /* lse recomputed: finite in, finite out */
        int moderate = 1;
        for (j = 0; j < L.V * L.d; ++j) moderate &= fabs(L.weight[j]) <= 1e4;
        for (r = 0; r < L.n; ++r) moderate &= (!dlogp || fabs(dlogp[r]) <= 1e4) && (!dent || fabs(dent[r]) <= 1e4);
        if (moderate) for (j = 0; j < L.n * L.d; ++j) FZ_ASSERT(fz_finite(dhidden[j]));
    }
    if (!tame(&L)) return;
    {   /* dlogits in double from the formula, then dhidden = dlogits . weight, dweight += dlogits^T . hidden */
        double *u = (double *)malloc((size_t)L.V * 4 * sizeof(double)), *lp = u + L.V, *gz = lp + L.V, *ge = gz + L.V;
        double *dw = (double *)calloc((size_t)(L.V * L.d) + 1, sizeof(double)),
            *dwa = (double *)calloc(2 * (size_t)(L.V * L.d) + 1, sizeof(double));
        double *dwe = dwa + L.V * L.d;   /* the rounding each dweight entry may carry */
        int all_rows = 1;          /* dweight sums every row: compared only when every row was */
        FZ_ASSERT(u && dw && dwa);
        for (r = 0; r < L.n; ++r) {
            const double g = dlogp ? dlogp[r] : 0.0, h = dent ? dent[r] : 0.0;
            double l, H;
            if (fabs(g) > 1e4 || fabs(h) > 1e4) { all_rows = 0; continue; }
            for (j = 0; j < L.V; ++j) u[j] = L.z[r * L.V + j] / (double)L.T;
            l = ref_log_softmax(u, L.V, lp);
            H = ref_entropy(lp, L.V);
            if (lse) { l = lse[r]; for (j = 0; j < L.V; ++j) lp[j] = u[j] - l; }
            if (ent) H = ent[r];
            for (j = 0; j < L.V; ++j) {
                const double p = exp(lp[j]);
                gz[j] = (g * ((dlogp && ids[r] == j ? 1.0 : 0.0) - p) - h * p * (lp[j] + H)) / (double)L.T;
                /* how far the f32 logits (u_error) and the float log p (1e-6 relative) may move it */
                ge[j] = p * (fabs(g) + fabs(h) * (1 + fabs(H) + fabs(lp[j]))) *
                        (u_error(&L) + 1e-6 * (1 + fabs(lp[j]) + fabs(l))) / (double)L.T;
            }
            for (k = 0; k < L.d; ++k) {
                double s = 0.0, a = 0.0, e = 0.0;
                for (j = 0; j < L.V; ++j) {
                    s += gz[j] * L.weight[j * L.d + k];
                    a += fabs(gz[j] * L.weight[j * L.d + k]);
                    e += ge[j] * fabs(L.weight[j * L.d + k]);
                }
                FZ_ASSERT(fabs(dhidden[r * L.d + k] - s) <= 1e-4 * a + 8 * e + 1e-6);
            }
            for (j = 0; j < L.V; ++j)
                for (k = 0; k < L.d; ++k) {
                    dw[j * L.d + k] += gz[j] * L.hidden[r * L.d + k];
                    dwa[j * L.d + k] += fabs(gz[j] * L.hidden[r * L.d + k]);
                    dwe[j * L.d + k] += 8 * ge[j] * fabs(L.hidden[r * L.d + k]);
                }
        }
        if (dweight && fz_debug())
            for (j = 0; j < L.V * L.d; ++j)
                fprintf(stderr, "dweight[%lld]: before %.9g after %.9g, accumulated %.9g, want %.9g (sum |terms| %.3g)\n",
                        (long long)j, dweight0[j], dweight[j], (double)dweight[j] - dweight0[j], dw[j], dwa[j]);
        if (dweight && all_rows)   /* accumulated into the caller's sums (checked where those are numbers) */
            for (j = 0; j < L.V * L.d; ++j)
                if (fz_finite(dweight0[j]))
                    FZ_ASSERT(fabs((double)dweight[j] - (double)dweight0[j] - dw[j]) <= 1e-4 * dwa[j] + dwe[j] +
                              1e-6 * (1 + fabs(dweight0[j])));
        free(u); free(dw); free(dwa);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_run runs[] = { run_logprobs, run_dependency, run_backward };
    return fz_dispatch(data, size, 1, runs, 3);
}
