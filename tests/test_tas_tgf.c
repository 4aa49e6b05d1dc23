/* tests/test_tas_tgf.c - docs/spec.md §5 (TAS) and §6 (TGF): masks against a brute-force sort
   with the tie rule, exactly. */
#include "test.h"

/* ---------------------------------------------------------------- §5 */

void seq_mean_is_mean_over_valid_positions(void)
{
    rng r = rng_make(500);
    test_batch b = batch_make(&r, 12, 30, 0, 1);
    float *x = floats_new(b.n, NAN), mean[12];
    int64_t count[12], i, t;
    for (t = 0; t < b.n; ++t) if (b.mask[t]) x[t] = (float)rng_range(&r, 0, 10);
    CHECK_STATUS(VPPO_OK, vppo_seq_mean(&b.s, x, mean, count));
    for (i = 0; i < 12; ++i) {
        double sum = 0;
        int64_t n = 0;
        for (t = i * 30; t < (i + 1) * 30; ++t) if (b.mask[t]) { sum += x[t]; ++n; }
        CHECK_EQ_INT(n, count[i]);
        CHECK_NEAR(n ? sum / n : 0.0, mean[i], TOL_TOKEN);
    }
    CHECK_STATUS(VPPO_OK, vppo_seq_mean(&b.s, x, mean, NULL));   /* count is optional */
    {   /* empty sequences: mean 0, count 0 */
        const int64_t off[] = { 0, 0, 2 };
        const float y[2] = { 1, 2 };
        vppo_seqs s; s.n_seqs = 2; s.offsets = off; s.mask = NULL;
        CHECK_STATUS(VPPO_OK, vppo_seq_mean(&s, y, mean, count));
        CHECK(mean[0] == 0 && count[0] == 0 && mean[1] == 1.5f && count[1] == 2);
    }
    x[b.s.offsets[3]] = INFINITY; b.mask[b.s.offsets[3]] = 1;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_seq_mean(&b.s, x, mean, count));
    batch_free(&b); free(x);
}

void tas_stats_min_max_n_over_nonempty(void)
{
    const float traj[6] = { 0.5f, 9.0f, 0.1f, 0.3f, -4.0f, NAN };
    const int64_t count[6] = { 3, 0, 5, 1, 0, 0 };    /* zero counts are ignored, even NaN ones */
    vppo_tas_stats st;
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, count, 6, &st));
    CHECK(st.min == (double)0.1f && st.max == 0.5 && st.n == 3);
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, NULL, 5, &st));   /* all count */
    CHECK(st.min == -4.0 && st.max == 9.0 && st.n == 5);
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_tas_stats_compute(traj, NULL, 6, &st));
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, count, 0, &st));   /* none: the identity */
    CHECK(st.n == 0 && isinf(st.min) && st.min > 0 && isinf(st.max) && st.max < 0);
}

void tas_stats_merge_equals_whole_batch(void)
{
    rng r = rng_make(501);
    float traj[40];
    int64_t count[40], i;
    vppo_tas_stats whole, parts, part;
    for (i = 0; i < 40; ++i) { traj[i] = (float)rng_range(&r, 0, 3); count[i] = rng_int(&r, 0, 3); }
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, count, 40, &whole));
    /* "ranks" holding 7, 0, 20 and 13 sequences, merged from the identity */
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, count, 0, &parts));
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, count, 7, &part)); vppo_tas_stats_merge(&parts, &part);
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj + 7, count + 7, 0, &part)); vppo_tas_stats_merge(&parts, &part);
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj + 7, count + 7, 20, &part)); vppo_tas_stats_merge(&parts, &part);
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj + 27, count + 27, 13, &part)); vppo_tas_stats_merge(&parts, &part);
    CHECK(parts.min == whole.min && parts.max == whole.max && parts.n == whole.n);
    vppo_tas_stats_merge(NULL, &part);    /* NULLs are ignored */
    vppo_tas_stats_merge(&parts, NULL);
    CHECK(parts.n == whole.n);
}

static vppo_tas_stats stats_of(double lo, double hi, int64_t n) { vppo_tas_stats s; s.min = lo; s.max = hi; s.n = n; return s; }

void tas_scales_linear_is_paper_eq5(void)
{
    const float traj[5] = { 1.0f, 2.0f, 1.5f, 1.25f, 7.0f };
    const int64_t count[5] = { 4, 4, 4, 4, 0 };
    float scale[5];
    vppo_tas_config cfg;
    vppo_tas_stats st;
    int i;
    cfg.mode = VPPO_TAS_LINEAR; cfg.beta_min = 0.5f; cfg.beta_max = 1.5f;
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, count, 5, &st));
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, count, 5, scale));
    for (i = 0; i < 4; ++i) CHECK_NEAR(0.5 + (traj[i] - 1.0) / 1.0, scale[i], TOL_TOKEN);
    CHECK(scale[4] == 1.0f);                   /* count 0 -> 1 */
    CHECK(scale[0] == 0.5f && scale[1] == 1.5f);   /* the ends of the range exactly */
}

void tas_scales_mean_preserving_has_mean_one(void)
{
    rng r = rng_make(502);
    float traj[64], scale[64];
    int64_t count[64], i, n = 0;
    vppo_tas_config cfg = vppo_tas_config_default();
    vppo_tas_stats st;
    double mean = 0, xsum = 0;
    for (i = 0; i < 64; ++i) { traj[i] = (float)rng_range(&r, 0, 2); count[i] = rng_int(&r, 0, 2) ? 10 : 0; }
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, count, 64, &st));
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, count, 64, scale));
    for (i = 0; i < 64; ++i) if (count[i]) { mean += scale[i]; ++n; xsum += (traj[i] - st.min) / (st.max - st.min); }
    CHECK_NEAR(1.0, mean / n, TOL_SCALAR);
    for (i = 0; i < 64; ++i) {
        double x = (traj[i] - st.min) / (st.max - st.min);
        const double beta_min = (double)0.9f;
        double want = count[i] ? beta_min + (1 - beta_min) * x / (xsum / n + 1e-8) : 1.0;
        CHECK_NEAR(want, scale[i], TOL_TOKEN);
        if (count[i] && traj[i] == st.min) CHECK(scale[i] == 0.9f);   /* the least dependent keep beta_min */
    }
}

void tas_scales_mean_preserving_ignores_beta_max(void)
{
    const float traj[4] = { 0.1f, 0.4f, 0.2f, 0.9f };
    float a[4], b[4];
    vppo_tas_config cfg = vppo_tas_config_default();
    vppo_tas_stats st;
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, NULL, 4, &st));
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, NULL, 4, a));
    cfg.beta_max = 5.0f;   /* the released code's target_max is dynamic: beta_max plays no part */
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, NULL, 4, b));
    CHECK(memcmp(a, b, sizeof a) == 0);
    cfg.beta_max = 0.1f;   /* below beta_min: still valid, still unused */
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, NULL, 4, b));
    CHECK(memcmp(a, b, sizeof a) == 0);
}

void tas_scales_degenerate_cases_are_one(void)
{
    const float traj[3] = { 0.2f, 0.2f + 5e-7f, 0.3f };
    float scale[3];
    vppo_tas_config cfg = vppo_tas_config_default();
    vppo_tas_stats st = stats_of(0.2, 0.3, 1);                 /* fewer than 2 sequences */
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, NULL, 3, scale));
    CHECK(scale[0] == 1 && scale[1] == 1 && scale[2] == 1);
    st = stats_of(0.2, 0.2 + 5e-7, 2);                         /* max - min <= 1e-6 */
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, NULL, 3, scale));
    CHECK(scale[0] == 1 && scale[1] == 1 && scale[2] == 1);
    {   /* all sequences of this call at the minimum: mu = 0, scale = beta_min, no NaN */
        const float low[2] = { 0.2f, 0.2f };
        st = stats_of(0.2f, 0.9, 10);
        CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, low, NULL, 2, scale));
        CHECK(scale[0] == 0.9f && scale[1] == 0.9f);
    }
    {   /* no valid sequence in this call */
        const int64_t zero[2] = { 0, 0 };
        st = stats_of(0.0, 1.0, 10);
        CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, zero, 2, scale));
        CHECK(scale[0] == 1 && scale[1] == 1);
    }
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, NULL, 0, scale));   /* empty */
}

void tas_scales_clamp_outside_global_range(void)
{
    /* micro-batch values outside the mini-batch range (possible with rank-local stats) */
    const float traj[4] = { -1.0f, 0.5f, 2.0f, 0.25f };
    float scale[4];
    vppo_tas_config cfg;
    vppo_tas_stats st = stats_of(0.0, 1.0, 8);
    cfg.mode = VPPO_TAS_LINEAR; cfg.beta_min = 0.9f; cfg.beta_max = 1.1f;
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, NULL, 4, scale));
    CHECK(scale[0] == 0.9f && scale[2] == 1.1f);
    CHECK_NEAR(1.0, scale[1], TOL_TOKEN);
    CHECK_NEAR(0.95, scale[3], TOL_TOKEN);
}

void tas_validates_config_and_stats(void)
{
    const float traj[2] = { 0.1f, 0.2f };
    const int64_t neg[2] = { 1, -1 };
    float scale[2] = { 7, 7 };
    vppo_tas_config cfg = vppo_tas_config_default();
    vppo_tas_stats st = stats_of(0.0, 1.0, 2);
    CHECK(cfg.mode == VPPO_TAS_MEAN_PRESERVING && cfg.beta_min == 0.9f && cfg.beta_max == 1.0f);
    cfg.beta_min = 1.5f;   /* mean-preserving needs beta_min <= 1 */
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_tas_scales(&cfg, &st, traj, NULL, 2, scale));
    cfg.beta_min = -0.1f;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_tas_scales(&cfg, &st, traj, NULL, 2, scale));
    cfg.beta_min = NAN;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_tas_scales(&cfg, &st, traj, NULL, 2, scale));
    cfg.mode = VPPO_TAS_LINEAR; cfg.beta_min = 1.2f; cfg.beta_max = 1.1f;   /* min > max */
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_tas_scales(&cfg, &st, traj, NULL, 2, scale));
    cfg.mode = (vppo_tas_mode)7; cfg.beta_min = 0.9f; cfg.beta_max = 1.0f;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_tas_scales(&cfg, &st, traj, NULL, 2, scale));
    cfg = vppo_tas_config_default();
    st = stats_of(1.0, 0.0, 2);   /* min > max */
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_tas_scales(&cfg, &st, traj, NULL, 2, scale));
    st = stats_of(NAN, 1.0, 2);
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_tas_scales(&cfg, &st, traj, NULL, 2, scale));
    st = stats_of(0.0, 1.0, -2);
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_tas_scales(&cfg, &st, traj, NULL, 2, scale));
    st = stats_of(0.0, 1.0, 2);
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_tas_scales(&cfg, &st, traj, neg, 2, scale));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_tas_scales(&cfg, &st, traj, NULL, -2, scale));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_tas_scales(NULL, &st, traj, NULL, 2, scale));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_tas_scales(&cfg, NULL, traj, NULL, 2, scale));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_tas_scales(&cfg, &st, NULL, NULL, 2, scale));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_tas_scales(&cfg, &st, traj, NULL, 2, NULL));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_tas_stats_compute(traj, neg, 2, &st));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_tas_stats_compute(traj, NULL, 2, NULL));
    CHECK(scale[0] == 7 && scale[1] == 7);
    /* st with n in {0, 1} may hold the identity's infinities: fine */
    st = stats_of(INFINITY, -INFINITY, 0);
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg, &st, traj, NULL, 2, scale));
    CHECK(scale[0] == 1 && scale[1] == 1);
}

/* ---------------------------------------------------------------- §6 */

/* The brute-force reference: sort the valid positions of each sequence by score
   descending, position ascending (plain float comparison, so -0 == +0), take k. */
typedef struct scored { float score; int64_t pos; } scored;
static int by_score_then_pos(const void *a, const void *b)
{
    const scored *x = (const scored *)a, *y = (const scored *)b;
    if (x->score > y->score) return -1;
    if (x->score < y->score) return 1;
    return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

static int64_t exact_k(int64_t n, int64_t num, int64_t den) { return (n * num + den - 1) / den; }   /* ceil(n num / den) */

static void ref_topk(const vppo_seqs *s, const float *score, double ratio, uint8_t *select, vppo_topk_info *info)
{
    int64_t b, t, i;
    double thr = 0, sel = 0, rej = 0;
    int64_t n_thr = 0, n_sel = 0, n_rej = 0;
    memset(info, 0, sizeof *info);
    for (b = 0; b < s->n_seqs; ++b) {
        int64_t n = 0, k;
        scored *v = (scored *)malloc((size_t)(s->offsets[b + 1] - s->offsets[b] + 1) * sizeof(scored));
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t) {
            select[t] = 0;
            if (!s->mask || s->mask[t]) { v[n].score = score[t]; v[n].pos = t; ++n; }
        }
        qsort(v, (size_t)n, sizeof *v, by_score_then_pos);
        k = (int64_t)ceil((double)n * ratio - 1e-9);
        if (k < 0) k = 0;
        if (k > n) k = n;
        for (i = 0; i < n; ++i) {   /* the means are over finite scores */
            if (i < k) select[v[i].pos] = 1;
            if (!isfinite(v[i].score)) continue;
            if (i < k) { sel += v[i].score; ++n_sel; }
            else { rej += v[i].score; ++n_rej; }
        }
        if (k > 0 && isfinite(v[k - 1].score)) { thr += v[k - 1].score; ++n_thr; }
        info->n_valid += n; info->n_selected += k;
        free(v);
    }
    info->threshold_mean = n_thr ? thr / n_thr : 0;
    info->mean_selected = n_sel ? sel / n_sel : 0;
    info->mean_rejected = n_rej ? rej / n_rej : 0;
}

/* Compare vppo_topk_mask with the reference, masks exactly. */
static void check_topk(const vppo_seqs *s, const float *score, double ratio)
{
    const int64_t lo = s->offsets[0], hi = s->offsets[s->n_seqs];
    uint8_t *got = (uint8_t *)malloc((size_t)(hi + 1)), *want = (uint8_t *)malloc((size_t)(hi + 1));
    vppo_topk_info gi, wi;
    int64_t t, wrong = 0, first = -1;
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(s, score, ratio, got, &gi));
    ref_topk(s, score, ratio, want, &wi);
    for (t = lo; t < hi; ++t) if (got[t] != want[t]) { if (first < 0) first = t; ++wrong; }
    CHECK_EQ_INT(0, wrong);
    if (wrong) fprintf(stderr, "  first difference at position %lld (ratio %g)\n", (long long)first, ratio);
    CHECK_EQ_INT(wi.n_valid, gi.n_valid);
    CHECK_EQ_INT(wi.n_selected, gi.n_selected);
    CHECK_NEAR(wi.threshold_mean, gi.threshold_mean, TOL_SCALAR);
    CHECK_NEAR(wi.mean_selected, gi.mean_selected, TOL_SCALAR);
    CHECK_NEAR(wi.mean_rejected, gi.mean_rejected, TOL_SCALAR);
    free(got); free(want);
}

void topk_count_is_exact_ceil(void)
{
    /* ratios given as fractions: k must be the exact ceil(n num/den), however n*ratio
       rounds in floating point (0.4*10 and 0.7*10 are the classic traps) */
    const int64_t fr[][2] = { { 2, 5 }, { 3, 10 }, { 1, 10 }, { 7, 10 }, { 9, 10 }, { 1, 4 }, { 1, 3 }, { 2, 3 }, { 1, 20 }, { 3, 5 } };
    const int64_t max_n = 1500;
    const int64_t total = max_n * (max_n + 1) / 2;
    int64_t *off = (int64_t *)malloc((size_t)(max_n + 1) * sizeof(int64_t)), n, t;
    float *score = floats_new(total, 0);
    uint8_t *sel = (uint8_t *)malloc((size_t)total);
    size_t f;
    vppo_seqs s;
    off[0] = 0;
    for (n = 1; n <= max_n; ++n) off[n] = off[n - 1] + n;   /* sequence n-1 has n tokens */
    for (t = 0; t < total; ++t) score[t] = (float)((t * 7919) % 1000);
    s.n_seqs = max_n; s.offsets = off; s.mask = NULL;
    for (f = 0; f < sizeof fr / sizeof fr[0]; ++f) {
        int64_t wrong = 0;
        CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, (double)fr[f][0] / (double)fr[f][1], sel, NULL));
        for (n = 1; n <= max_n; ++n) {
            int64_t k = 0;
            for (t = off[n - 1]; t < off[n]; ++t) k += sel[t];
            wrong += k != exact_k(n, fr[f][0], fr[f][1]);
        }
        CHECK_EQ_INT(0, wrong);
    }
    free(off); free(score); free(sel);
}

void topk_mask_matches_bruteforce_sort(void)
{
    const double ratios[] = { 0.0, 0.05, 0.3, 0.4, 0.5, 0.77, 1.0 };
    rng r = rng_make(600);
    int rep;
    for (rep = 0; rep < 6; ++rep) {
        test_batch b = batch_make(&r, 20, 97, 0, rep % 2);
        float *score = floats_new(b.n, NAN);
        int64_t t;
        size_t k;
        for (t = 0; t < b.n; ++t) {
            if (!b.mask[t]) continue;
            switch (rep % 3) {
            case 0: score[t] = (float)rng_range(&r, 0, 10); break;        /* distinct */
            case 1: score[t] = (float)rng_int(&r, 0, 4); break;           /* many ties */
            default: score[t] = (float)(rng_normal(&r) * 1e-3); break;    /* both signs, tiny */
            }
        }
        for (k = 0; k < sizeof ratios / sizeof ratios[0]; ++k) check_topk(&b.s, score, ratios[k]);
        batch_free(&b); free(score);
    }
}

void topk_mask_ties_go_to_lower_positions(void)
{
    const int64_t off[] = { 0, 10 };
    const float score[10] = { 1, 3, 2, 3, 3, 0, 3, 2, 1, 3 };
    uint8_t sel[10];
    vppo_seqs s; s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, 0.3, sel, NULL));   /* k = 3 of five 3s */
    CHECK(sel[1] && sel[3] && sel[4] && !sel[6] && !sel[9]);
    CHECK_EQ_INT(3, sel[0] + sel[1] + sel[2] + sel[3] + sel[4] + sel[5] + sel[6] + sel[7] + sel[8] + sel[9]);
    check_topk(&s, score, 0.3);
    check_topk(&s, score, 0.6);   /* all five 3s and the first 2 */
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, 0.6, sel, NULL));
    CHECK(sel[2] && !sel[7]);
}

void topk_mask_orders_infinities_and_signed_zeros(void)
{
    const int64_t off[] = { 0, 8 };
    const float score[8] = { 0.0f, -INFINITY, -0.0f, INFINITY, 1e-45f, -1e-45f, -0.0f, 0.0f };
    uint8_t sel[8];
    vppo_seqs s; s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, 0.125, sel, NULL));
    CHECK(sel[3] && sel[0] + sel[1] + sel[2] + sel[4] + sel[5] + sel[6] + sel[7] == 0);   /* +inf first */
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, 0.375, sel, NULL));   /* +inf, denormal, first zero */
    CHECK(sel[3] && sel[4] && sel[0] && !sel[2] && !sel[6] && !sel[7]);
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, 0.5, sel, NULL));     /* -0 ties with +0: position wins */
    CHECK(sel[3] && sel[4] && sel[0] && sel[2] && !sel[6] && !sel[7]);
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, 0.875, sel, NULL));
    CHECK(!sel[1]);                                                       /* -inf last */
    {
        double ratio;
        for (ratio = 0; ratio <= 1.0; ratio += 0.125) check_topk(&s, score, ratio);
    }
}

void topk_mask_n50_ratio_03_selects_15(void)
{
    rng r = rng_make(601);
    int64_t off[2] = { 0, 50 }, t, n_sel = 0;
    float score[50];
    uint8_t sel[50];
    vppo_topk_info info;
    vppo_seqs s; s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    for (t = 0; t < 50; ++t) score[t] = (float)rng_uniform(&r);
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, 0.3, sel, &info));
    for (t = 0; t < 50; ++t) n_sel += sel[t];
    CHECK_EQ_INT(15, n_sel);              /* 50 * 0.3 = 15.000000000000002 in double: not 16 */
    CHECK_EQ_INT(15, info.n_selected);
    check_topk(&s, score, 0.3);
}

void topk_mask_ratio_0_and_1(void)
{
    rng r = rng_make(602);
    test_batch b = batch_make(&r, 7, 20, 0, 1);
    float *score = floats_new(b.n, NAN);
    uint8_t *sel = (uint8_t *)malloc((size_t)b.n);
    int64_t t, wrong = 0;
    vppo_topk_info info;
    for (t = 0; t < b.n; ++t) if (b.mask[t]) score[t] = (float)rng_normal(&r);
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&b.s, score, 0.0, sel, &info));
    for (t = 0; t < b.n; ++t) wrong += sel[t] != 0;
    CHECK_EQ_INT(0, wrong);
    CHECK(info.n_selected == 0 && info.threshold_mean == 0 && info.mean_selected == 0);
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&b.s, score, 1.0, sel, &info));
    for (t = 0; t < b.n; ++t) wrong += sel[t] != b.mask[t];
    CHECK_EQ_INT(0, wrong);
    CHECK(info.n_selected == info.n_valid && info.mean_rejected == 0);
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_topk_mask(&b.s, score, 1.0000001, sel, &info));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_topk_mask(&b.s, score, -0.1, sel, &info));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_topk_mask(&b.s, score, NAN, sel, &info));
    batch_free(&b); free(score); free(sel);
}

void topk_info_statistics(void)
{
    const int64_t off[] = { 0, 5, 5, 9 };
    const float score[9] = { 5, 1, 4, 2, 3,   10, 20, 30, 40 };
    uint8_t sel[9];
    vppo_topk_info info;
    vppo_seqs s; s.n_seqs = 3; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, 0.4, sel, &info));
    /* seq 0: k = 2 -> {5, 4}, threshold 4; seq 1 empty; seq 2: k = 2 -> {40, 30}, threshold 30 */
    CHECK_EQ_INT(9, info.n_valid);
    CHECK_EQ_INT(4, info.n_selected);
    CHECK(info.threshold_mean == 17.0);
    CHECK(info.mean_selected == (5 + 4 + 40 + 30) / 4.0);
    CHECK(info.mean_rejected == (1 + 2 + 3 + 10 + 20) / 5.0);
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, score, 0.4, sel, NULL));   /* info optional */
}

void topk_mask_large_sequence(void)
{
    rng r = rng_make(603);
    const int64_t n = 300000;
    int64_t off[3] = { 0, n, n + 17 }, t;
    float *score = floats_new(n + 17, 0);
    vppo_seqs s; s.n_seqs = 2; s.offsets = off; s.mask = NULL;
    for (t = 0; t < n + 17; ++t) score[t] = (float)(rng_int(&r, 0, 5000) * 0.001);   /* ties in every bucket */
    check_topk(&s, score, 0.4);
    check_topk(&s, score, 0.999);
    free(score);
}

/* Adversarial scores for the ISA comparisons: kind 0 distinct, 1 all equal, 2 four values
   (ties at every threshold), 3 +-0 and +-denormals, 4 +-inf, huge, denormal and normal
   values mixed, 5 the bench's exponential (mostly small, a long tail), 6 half of them one
   value and half spread over 26 decades (ties cut at the threshold; sums in double that
   depend on their order). */
static float adversarial_score(rng *r, int kind)
{
    static const float mixed[] = { INFINITY, -INFINITY, 3.4e38f, -3.4e38f, 1e-45f, -1e-45f, 1.17549435e-38f,
                                   1e-40f, 0.0f, -0.0f, 1.0f, -1.0f, 0.5f };
    switch (kind) {
    case 0: return (float)rng_range(r, -10, 10);
    case 1: return 0.25f;
    case 2: return (float)rng_int(r, 0, 3);
    case 3: return rng_int(r, 0, 1) ? (rng_int(r, 0, 1) ? 0.0f : -0.0f) : (float)rng_int(r, -3, 3) * 1e-45f;
    case 4: return mixed[rng_int(r, 0, (int64_t)(sizeof mixed / sizeof mixed[0]) - 1)];
    case 5: return (float)(-log(1.0 - rng_uniform(r)) * 0.05);
    default: return rng_int(r, 0, 1) ? 0.3f : (float)exp(rng_range(r, -30, 30));
    }
}

/* One sequence of every length that matters to the kernels: 0, 1, 2, around the vector
   widths (4, 8, 16) and the 16-position blocks, around the 4096-key local buffer, and far
   beyond it; offsets start at 5 (positions 0-4 are outside every sequence). */
static const int64_t topk_lengths[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65,
                                        100, 255, 256, 257, 4095, 4096, 4097, 4111, 12000 };
#define N_TOPK_LENGTHS ((int64_t)(sizeof topk_lengths / sizeof topk_lengths[0]))

/* The mask and the info under ISA isa (which the caller has checked that it runs). */
static vppo_status topk_under(vppo_isa isa, const vppo_seqs *s, const float *score, double ratio, uint8_t *sel,
                              vppo_topk_info *info)
{
    const vppo_isa before = vppo_isa_active();
    vppo_status st;
    CHECK_STATUS(VPPO_OK, vppo_isa_select(isa));
    st = vppo_topk_mask(s, score, ratio, sel, info);
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
    return st;
}

/* The scalar path's mask and info against the sort, and every other ISA's against the
   scalar path's, bit for bit; want, scalar, got: buffers of N bytes, got filled with 7
   first, so that a write before offsets[0] shows. kind, masked: for the message. */
static void check_topk_isas(const vppo_seqs *s, const float *score, double ratio, int64_t N, uint8_t *want,
                            uint8_t *scalar, uint8_t *got, int kind, int masked)
{
    const int64_t lo = s->offsets[0], hi = s->offsets[s->n_seqs];
    vppo_topk_info wi, si, gi;
    int64_t t, wrong = 0;
    int isa;
    ref_topk(s, score, ratio, want, &wi);
    CHECK_STATUS(VPPO_OK, topk_under(VPPO_ISA_SCALAR, s, score, ratio, scalar, &si));
    for (t = lo; t < hi; ++t) wrong += scalar[t] != want[t];
    CHECK_EQ_INT(0, wrong);
    CHECK_EQ_INT(wi.n_valid, si.n_valid);
    CHECK_EQ_INT(wi.n_selected, si.n_selected);
    CHECK_NEAR(wi.threshold_mean, si.threshold_mean, TOL_SCALAR);
    CHECK_NEAR(wi.mean_selected, si.mean_selected, TOL_SCALAR);
    CHECK_NEAR(wi.mean_rejected, si.mean_rejected, TOL_SCALAR);
    for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;   /* not on this machine */
        memset(got, 7, (size_t)N);
        CHECK_STATUS(VPPO_OK, topk_under((vppo_isa)isa, s, score, ratio, got, &gi));
        wrong = 0;
        for (t = lo; t < hi; ++t) wrong += got[t] != scalar[t];
        for (t = 0; t < lo; ++t) wrong += got[t] != 7;   /* nothing before offsets[0] */
        CHECK_EQ_INT(0, wrong);
        CHECK(memcmp(&gi, &si, sizeof gi) == 0);     /* the info: the same bits */
        if (wrong || memcmp(&gi, &si, sizeof gi) != 0)
            fprintf(stderr, "  %s, kind %d, masked %d, ratio %g\n", vppo_isa_name((vppo_isa)isa), kind, masked, ratio);
    }
}

void topk_mask_every_isa_matches_scalar_and_sort(void)
{
    const double ratios[] = { 0.0, 1e-9, 0.05, 0.3, 0.4, 0.5, 2.0 / 3.0, 0.7, 0.999, 1.0 };
    int64_t off[N_TOPK_LENGTHS + 1], t, b;
    const int64_t N = 5 + 4111 * 3 + 12000 + 4096 * 2 + 5000;
    float *score = floats_new(N, NAN);
    uint8_t *mask = (uint8_t *)malloc((size_t)N), *want = (uint8_t *)malloc((size_t)N);
    uint8_t *scalar = (uint8_t *)malloc((size_t)N), *got = (uint8_t *)malloc((size_t)N);
    rng r = rng_make(610);
    int kind, masked;
    size_t k;
    off[0] = 5;
    for (b = 0; b < N_TOPK_LENGTHS; ++b) off[b + 1] = off[b] + topk_lengths[b];
    CHECK(off[N_TOPK_LENGTHS] <= N);
    for (kind = 0; kind < 7; ++kind)
        for (masked = 0; masked < 2; ++masked) {
            vppo_seqs s;
            s.n_seqs = N_TOPK_LENGTHS; s.offsets = off; s.mask = masked ? mask : NULL;
            for (t = 0; t < N; ++t) {
                mask[t] = (uint8_t)(masked ? rng_int(&r, 0, 4) != 0 : 1);   /* about 1 in 5 left out */
                score[t] = mask[t] ? adversarial_score(&r, kind) : NAN;      /* garbage where left out */
            }
            for (k = 0; k < sizeof ratios / sizeof ratios[0]; ++k)
                check_topk_isas(&s, score, ratios[k], N, want, scalar, got, kind, masked);
        }
    free(score); free(mask); free(want); free(scalar); free(got);
}

void topk_mask_nan_is_an_error_on_every_isa(void)
{
    static const uint32_t nans[] = { 0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xffffffffu };
    int64_t off[N_TOPK_LENGTHS + 1], b, t;
    const int64_t N = 5 + 4111 * 3 + 12000 + 4096 * 2 + 5000;
    float *score = floats_new(N, 1.0f);
    uint8_t *mask = (uint8_t *)malloc((size_t)N), *sel = (uint8_t *)malloc((size_t)N);
    rng r = rng_make(611);
    int isa;
    off[0] = 5;
    for (b = 0; b < N_TOPK_LENGTHS; ++b) off[b + 1] = off[b] + topk_lengths[b];
    for (t = 0; t < N; ++t) { score[t] = (float)rng_normal(&r); mask[t] = 1; }
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        int64_t missed = 0, false_alarm = 0;
        if (isa != VPPO_ISA_SCALAR && vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        for (b = 0; b < N_TOPK_LENGTHS; ++b) {
            int64_t at[3], i;
            vppo_seqs s;
            s.n_seqs = N_TOPK_LENGTHS; s.offsets = off; s.mask = mask;
            if (topk_lengths[b] == 0) continue;
            at[0] = off[b]; at[1] = off[b + 1] - 1; at[2] = off[b] + topk_lengths[b] / 2;   /* head, tail, body */
            for (i = 0; i < 3; ++i) {
                const float keep = score[at[i]];
                uint32_t bits = nans[(b + i) % 4];
                memcpy(&score[at[i]], &bits, sizeof bits);
                missed += topk_under((vppo_isa)isa, &s, score, 0.4, sel, NULL) != VPPO_ERR_NONFINITE;
                mask[at[i]] = 0;   /* a NaN at a left-out position is ignored */
                false_alarm += topk_under((vppo_isa)isa, &s, score, 0.4, sel, NULL) != VPPO_OK;
                s.mask = NULL;     /* and counts again without a mask */
                missed += topk_under((vppo_isa)isa, &s, score, 0.4, sel, NULL) != VPPO_ERR_NONFINITE;
                s.mask = mask;
                mask[at[i]] = 1;
                score[at[i]] = keep;
            }
        }
        CHECK_EQ_INT(0, missed);
        CHECK_EQ_INT(0, false_alarm);
    }
    free(score); free(mask); free(sel);
}

void topk_mask_long_sequences_of_two_values(void)
{
    /* 12000 tokens of 0 and 1: the window over the scores holds more than the local buffer
       after its first passes (every key of one value), then a single key */
    rng r = rng_make(612);
    const int64_t n = 12000;
    int64_t off[3] = { 0, n, 2 * n }, t;
    float *score = floats_new(2 * n, 0);
    uint8_t *mask = (uint8_t *)malloc((size_t)(2 * n));
    vppo_seqs s; s.n_seqs = 2; s.offsets = off; s.mask = NULL;
    for (t = 0; t < 2 * n; ++t) {
        score[t] = (float)rng_int(&r, 0, 1) * (t < n ? 1.0f : -1e30f);
        mask[t] = (uint8_t)(rng_int(&r, 0, 9) != 0);
    }
    check_topk(&s, score, 0.3);
    check_topk(&s, score, 0.5);
    check_topk(&s, score, 0.9);
    s.mask = mask;
    check_topk(&s, score, 0.3);
    check_topk(&s, score, 0.7);
    free(score); free(mask);
}

/* Scores that steer the sampled narrowing of the selection (every n/128-th key of a
   sequence is sampled) into each of its paths: kind 0 K3-like (the ranges hold), 1 the
   sampled positions far above the rest (the first range misses), 2 a few values (ties
   across digits), 3 all but a few alike (the sample sees one value), 4 ascending, 5 a
   saw of period p (the sample sees one phase), 6 two clusters 1e-30 and 1e30 of both
   signs, 7 uniform with one score per 16 far off (later ranges narrow a mixed window). */
static float sampled_score(rng *r, int kind, int64_t i, int64_t len, int64_t p)
{
    const int64_t stride = len / 128 > 0 ? len / 128 : 1;
    switch (kind) {
    case 0: return (float)(-log(1.0 - rng_uniform(r)) * 0.05);
    case 1: return i % stride == 0 ? (float)(1000 + i) : (float)rng_uniform(r);
    case 2: return (float)rng_int(r, 0, 3) * 1e6f + (float)rng_int(r, 0, 1);
    case 3: return rng_int(r, 0, 50) == 0 ? (float)rng_normal(r) : 0.5f;
    case 4: return (float)i * 1e-3f;
    case 5: return (float)(i % p) + (float)rng_uniform(r) * 1e-3f;
    case 6: return (rng_int(r, 0, 1) ? 1e30f : 1e-30f) * (float)rng_range(r, -2, 2);
    default: return i % 16 == 3 ? (float)rng_range(r, -1e20, 1e20) : (float)rng_uniform(r);
    }
}

void topk_mask_sampled_ranges_match_sort_on_every_isa(void)
{
    static const int64_t lens[] = { 257, 300, 511, 1000, 2048, 2049, 3333, 4096 };
    static const int64_t periods[] = { 2, 3, 16, 17, 64 };
    const double ratios[] = { 0.01, 0.3, 0.4, 0.5, 0.9, 0.999 };
    const int n_kinds = 8, n_lens = (int)(sizeof lens / sizeof lens[0]);
    const int64_t n_seqs = (int64_t)n_kinds * n_lens * 2;
    int64_t *off = (int64_t *)malloc((size_t)(n_seqs + 1) * sizeof(int64_t)), t, b, N;
    float *score;
    uint8_t *mask, *want, *scalar, *got;
    rng r = rng_make(613);
    int masked;
    size_t k;
    off[0] = 0;
    for (b = 0; b < n_seqs; ++b) off[b + 1] = off[b] + lens[(b / 2) % n_lens];
    N = off[n_seqs];
    score = floats_new(N, NAN);
    mask = (uint8_t *)malloc((size_t)N); want = (uint8_t *)malloc((size_t)N);
    scalar = (uint8_t *)malloc((size_t)N); got = (uint8_t *)malloc((size_t)N);
    for (b = 0; b < n_seqs; ++b)   /* kind b / (2 n_lens); every other sequence reversed */
        for (t = off[b]; t < off[b + 1]; ++t) {
            const int64_t len = off[b + 1] - off[b], i = b % 2 ? off[b + 1] - 1 - t : t - off[b];
            score[t] = sampled_score(&r, (int)(b / (2 * n_lens)), i, len, periods[b % 5]);
        }
    for (masked = 0; masked < 2; ++masked) {
        vppo_seqs s;
        s.n_seqs = n_seqs; s.offsets = off; s.mask = masked ? mask : NULL;
        for (t = 0; t < N; ++t) mask[t] = (uint8_t)(!masked || rng_int(&r, 0, 3) != 0);
        for (k = 0; k < sizeof ratios / sizeof ratios[0]; ++k)
            check_topk_isas(&s, score, ratios[k], N, want, scalar, got, -1, masked);
    }
    free(off); free(score); free(mask); free(want); free(scalar); free(got);
}

/* Ratio 1 takes every valid position without a search; its outputs must be those of the
   search. Longer than the 4096-key local buffer, ratio 1 - 1e-6 still has k = n but goes
   through the search: the two calls must agree bit for bit. For every length, a sequence
   alone: the threshold is its least valid score exactly. */
void topk_mask_ratio_1_equals_the_search(void)
{
    static const int64_t lens[] = { 0, 1, 2, 3, 17, 256, 257, 4096, 4097, 6001, 12000 };
    const int n_lens = (int)(sizeof lens / sizeof lens[0]);
    int64_t off[sizeof lens / sizeof lens[0] + 1], t, b, N;
    float *score;
    uint8_t *mask, *one, *search;
    rng r = rng_make(614);
    int masked, isa;
    off[0] = 0;
    for (b = 0; b < n_lens; ++b) off[b + 1] = off[b] + lens[b];
    N = off[n_lens];
    score = floats_new(N + 1, NAN);
    mask = (uint8_t *)malloc((size_t)N + 1); one = (uint8_t *)malloc((size_t)N + 1);
    search = (uint8_t *)malloc((size_t)N + 1);
    for (t = 0; t < N; ++t) score[t] = adversarial_score(&r, (int)(t % 7));
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        if (isa != VPPO_ISA_SCALAR && vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        for (masked = 0; masked < 2; ++masked) {
            vppo_seqs s, one_seq;
            vppo_topk_info io, is;
            int64_t wrong = 0;
            s.n_seqs = n_lens; s.offsets = off; s.mask = masked ? mask : NULL;
            for (t = 0; t < N; ++t) mask[t] = (uint8_t)(!masked || rng_int(&r, 0, 4) != 0);
            /* the long sequences alone: their k = n at both ratios */
            one_seq.n_seqs = 3; one_seq.offsets = off + 8; one_seq.mask = s.mask;
            CHECK_STATUS(VPPO_OK, topk_under((vppo_isa)isa, &one_seq, score, 1.0, one, &io));
            CHECK_STATUS(VPPO_OK, topk_under((vppo_isa)isa, &one_seq, score, 1.0 - 1e-6, search, &is));
            for (t = off[8]; t < off[11]; ++t) wrong += one[t] != search[t] || one[t] != mask[t];
            CHECK_EQ_INT(0, wrong);
            CHECK(memcmp(&io, &is, sizeof io) == 0);
            CHECK_EQ_INT(io.n_valid, io.n_selected);
            for (b = 0; b < n_lens; ++b) {
                double least = INFINITY;
                one_seq.n_seqs = 1; one_seq.offsets = off + b;
                CHECK_STATUS(VPPO_OK, topk_under((vppo_isa)isa, &one_seq, score, 1.0, one, &io));
                wrong = 0;
                for (t = off[b]; t < off[b + 1]; ++t) {
                    wrong += one[t] != mask[t];
                    if (mask[t] && score[t] < least) least = score[t];
                }
                CHECK_EQ_INT(0, wrong);
                /* the mean of one finite threshold is itself; none: 0 */
                CHECK(io.threshold_mean == (isfinite(least) ? least : 0.0));
                CHECK(io.mean_rejected == 0.0);
            }
        }
    }
    free(score); free(mask); free(one); free(search);
}

/* Soft mask reference: bisection on c with a fixed 200 iterations. */
static void ref_soft(const float *x, int64_t n, double ratio, double *w)
{
    double mean = 0, var = 0, lo = -1e3, hi = 1e3;
    int64_t i;
    int it;
    for (i = 0; i < n; ++i) mean += x[i];
    mean /= n;
    for (i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    for (it = 0; it < 200; ++it) {
        double c = (lo + hi) / 2, f = 0;
        for (i = 0; i < n; ++i) f += 1 / (1 + exp(-((x[i] - mean) / (sqrt(var) + 1e-6) - c)));
        if (f / n > ratio) lo = c; else hi = c;
    }
    for (i = 0; i < n; ++i) w[i] = 1 / (1 + exp(-((x[i] - mean) / (sqrt(var) + 1e-6) - (lo + hi) / 2)));
}

void soft_mask_mean_equals_ratio(void)
{
    const double ratios[] = { 0.01, 0.2, 0.4, 0.5, 0.9, 0.999 };
    rng r = rng_make(604);
    float x[64], w[64];
    double want[64];
    int64_t off[2] = { 0, 64 }, i;
    size_t k;
    vppo_seqs s; s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    for (i = 0; i < 64; ++i) x[i] = (float)(rng_normal(&r) * (i % 3 ? 1 : 10));
    for (k = 0; k < sizeof ratios / sizeof ratios[0]; ++k) {
        double mean = 0;
        CHECK_STATUS(VPPO_OK, vppo_soft_mask(&s, x, ratios[k], w));
        ref_soft(x, 64, ratios[k], want);
        for (i = 0; i < 64; ++i) { mean += w[i]; CHECK_NEAR(want[i], w[i], 1e-6, 0); }
        CHECK_NEAR(ratios[k], mean / 64, 1e-6, 0);
    }
}

void soft_mask_is_monotone_in_score(void)
{
    rng r = rng_make(605);
    test_batch b = batch_make(&r, 5, 50, 2, 1);
    float *x = floats_new(b.n, NAN), *w = floats_new(b.n, 0);
    int64_t i, t, u, bad = 0;
    for (t = 0; t < b.n; ++t) if (b.mask[t]) x[t] = (float)rng_normal(&r);
    CHECK_STATUS(VPPO_OK, vppo_soft_mask(&b.s, x, 0.4, w));
    for (i = 0; i < 5; ++i)
        for (t = i * 50; t < (i + 1) * 50; ++t)
            for (u = i * 50; u < (i + 1) * 50; ++u)
                if (b.mask[t] && b.mask[u] && x[t] > x[u] && !(w[t] >= w[u])) ++bad;
    CHECK_EQ_INT(0, bad);
    for (t = 0; t < b.n; ++t) if (!b.mask[t]) bad += w[t] != 0;
    CHECK_EQ_INT(0, bad);
    batch_free(&b); free(x); free(w);
}

void soft_mask_edge_cases(void)
{
    const int64_t off[] = { 0, 1, 4, 4, 7 };
    float x[7] = { 3, 2, 2, 2, -1, 0, 1 }, w[7];
    vppo_seqs s; s.n_seqs = 4; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_OK, vppo_soft_mask(&s, x, 0.0, w));
    CHECK(w[0] == 0 && w[3] == 0 && w[6] == 0);
    CHECK_STATUS(VPPO_OK, vppo_soft_mask(&s, x, 1.0, w));
    CHECK(w[0] == 1 && w[3] == 1 && w[6] == 1);
    CHECK_STATUS(VPPO_OK, vppo_soft_mask(&s, x, 0.3, w));
    CHECK_NEAR(0.3, w[0], 1e-6, 0);                 /* a single token gets the ratio */
    CHECK_NEAR(0.3, w[1], 1e-6, 0);                 /* equal scores all get the ratio */
    CHECK(w[1] == w[2] && w[2] == w[3]);
    CHECK(w[4] < w[5] && w[5] < w[6]);
    x[5] = INFINITY;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_soft_mask(&s, x, 0.3, w));
    x[5] = NAN;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_soft_mask(&s, x, 0.3, w));
    x[5] = 0;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_soft_mask(&s, x, 1.5, w));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_soft_mask(&s, x, 0.5, NULL));
}

void soft_mask_matches_bisection_on_hard_inputs(void)
{
    /* the root search (Newton inside a shrinking bracket) against the reference's 200
       plain bisections: skewed, two-valued, one outlier among equal scores, huge and tiny
       spreads; lengths 1 to 3000; every ratio class; with and without a mask */
    const double ratios[] = { 1e-6, 0.001, 0.05, 0.4, 0.5, 0.9, 0.999, 1.0 - 1e-6 };
    const int64_t lens[] = { 1, 2, 3, 17, 100, 3000 };
    rng r = rng_make(613);
    int kind, masked;
    size_t k, l;
    for (kind = 0; kind < 5; ++kind)
        for (l = 0; l < sizeof lens / sizeof lens[0]; ++l)
            for (masked = 0; masked < 2; ++masked) {
                const int64_t len = lens[l];
                int64_t off[2] = { 0, len }, i, n = 0;
                float *x = floats_new(len, NAN), *w = floats_new(len, 0), *xv = floats_new(len, 0);
                double *want = (double *)malloc((size_t)len * sizeof(double));
                uint8_t *mask = (uint8_t *)malloc((size_t)len);
                vppo_seqs s; s.n_seqs = 1; s.offsets = off; s.mask = masked ? mask : NULL;
                for (i = 0; i < len; ++i) {
                    mask[i] = (uint8_t)(!masked || i == 0 || rng_int(&r, 0, 3) != 0);
                    if (!mask[i]) continue;   /* NaN left where the mask says no */
                    switch (kind) {
                    case 0: x[i] = (float)(-log(1.0 - rng_uniform(&r)) * 0.05); break;
                    case 1: x[i] = (float)rng_int(&r, 0, 1); break;
                    case 2: x[i] = i == len / 2 ? 1e4f : 2.0f; break;
                    case 3: x[i] = (float)(rng_normal(&r) * 1e30); break;
                    default: x[i] = (float)(1.0 + rng_normal(&r) * 1e-6); break;
                    }
                    xv[n++] = x[i];
                }
                for (k = 0; k < sizeof ratios / sizeof ratios[0]; ++k) {
                    double mean = 0.0;
                    int64_t j = 0, bad = 0;
                    CHECK_STATUS(VPPO_OK, vppo_soft_mask(&s, x, ratios[k], w));
                    ref_soft(xv, n, ratios[k], want);
                    for (i = 0; i < len; ++i) {
                        if (!mask[i]) { bad += w[i] != 0.0f; continue; }
                        bad += !test_near(want[j++], w[i], TOL_TOKEN);
                        mean += w[i];
                    }
                    CHECK_EQ_INT(0, bad);
                    if (bad) fprintf(stderr, "  kind %d, len %lld, masked %d, ratio %g\n", kind, (long long)len, masked, ratios[k]);
                    CHECK_NEAR(ratios[k], mean / (double)n, 1e-6, 1e-6);
                }
                free(x); free(w); free(xv); free(want); free(mask);
            }
}
