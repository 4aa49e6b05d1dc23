/* tests/fuzz/fuzz_loss.c - libFuzzer harness for everything after perception: group
   advantages and filter (§4), TAS (§5: vppo_seq_mean, vppo_tas_stats_compute/merge,
   vppo_tas_scales), the policy loss (§7) and the pipeline (§8: vppo_prepare, vppo_step),
   with any layout, configuration and float bit pattern. */
#include "fuzz.h"

/* ------------------------------------------------------------ configurations */

/* The default loss config with a few fields replaced by input-chosen values. */
static vppo_loss_config make_loss_config(fz *f)
{
    vppo_loss_config c = vppo_loss_config_default();
    unsigned k, n_changes = fz_u8(f) % 6;
    for (k = 0; k < n_changes; ++k) {
        switch (fz_u8(f) % 12) {
        case 0:  c.clip_low = fz_float(f); break;
        case 1:  c.clip_high = fz_float(f); break;
        case 2:  c.clip_dual = fz_float(f); break;
        case 3:  c.pg_kind = (vppo_pg_kind)fz_int(f, -1, 2); break;
        case 4:  c.ratio_level = (vppo_ratio_level)fz_int(f, -1, 3); break;
        case 5:  c.agg = (vppo_agg)fz_int(f, -1, 4); break;
        case 6:  c.agg_norm = fz_double(f); break;
        case 7:  c.kl_kind = (vppo_kl_kind)fz_int(f, -1, 5); break;
        case 8:  c.kl_coef = fz_float(f); break;
        case 9:  c.entropy_coef = fz_float(f); break;
        case 10: c.denom = fz_double(f); break;
        default: c.kl_kind = (vppo_kl_kind)fz_int(f, 1, 4); c.kl_coef = 0.1f; break;
        }
    }
    return c;
}

/* PARAM when the loss config is outside its domain (the header's struct comments, and
   what the formulas need: ln(1 - clip_low) exists, coefficients are finite). */
static fz_reasons loss_config_reason(const vppo_loss_config *c)
{
    int bad = 0;
    bad |= !(c->clip_low >= 0.0f && c->clip_low <= 1.0f);
    bad |= !(c->clip_high >= 0.0f && fz_finite(c->clip_high));
    bad |= !(c->clip_dual == 0.0f || (c->clip_dual > 1.0f && fz_finite(c->clip_dual)));
    bad |= (int)c->pg_kind < 0 || (int)c->pg_kind > 1;
    bad |= (int)c->ratio_level < 0 || (int)c->ratio_level > 2;
    bad |= (int)c->agg < 0 || (int)c->agg > 3;
    bad |= c->agg == VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM && !(c->agg_norm > 0.0 && fz_finite(c->agg_norm));
    bad |= (int)c->kl_kind < 0 || (int)c->kl_kind > 4;
    bad |= !(c->kl_coef >= 0.0f && fz_finite(c->kl_coef));
    bad |= !fz_finite(c->entropy_coef);
    bad |= !(c->denom >= 0.0 && fz_finite(c->denom));
    return bad ? FZ_BIT(VPPO_ERR_PARAM) : 0;
}

static vppo_tas_config make_tas_config(fz *f)
{
    vppo_tas_config c = vppo_tas_config_default();
    switch (fz_u8(f) % 8) {
    case 0: c.mode = VPPO_TAS_LINEAR; break;
    case 1: c.mode = VPPO_TAS_LINEAR; c.beta_min = fz_float(f); c.beta_max = fz_float(f); break;
    case 2: c.beta_min = fz_float(f); break;
    case 3: c.mode = (vppo_tas_mode)fz_int(f, -1, 2); break;
    case 4: c.mode = VPPO_TAS_LINEAR; c.beta_min = 0.5f; c.beta_max = 1.5f; break;
    default: break;
    }
    return c;
}

/* The documented domain of TAS configs. */
static fz_reasons tas_config_reason(const vppo_tas_config *c)
{
    if (!fz_finite(c->beta_min) || !fz_finite(c->beta_max) || c->beta_min < 0.0f) return FZ_BIT(VPPO_ERR_PARAM);
    if (c->mode == VPPO_TAS_LINEAR) return c->beta_max >= c->beta_min ? 0 : FZ_BIT(VPPO_ERR_PARAM);
    if (c->mode == VPPO_TAS_MEAN_PRESERVING) return c->beta_min <= 1.0f ? 0 : FZ_BIT(VPPO_ERR_PARAM);
    return FZ_BIT(VPPO_ERR_PARAM);
}

static vppo_tas_stats make_stats(fz *f)
{
    vppo_tas_stats st;
    st.min = fz_u8(f) < 200 ? (double)fz_float(f) : fz_double(f);
    st.max = fz_u8(f) < 200 ? st.min + fabs((double)fz_float(f)) : fz_double(f);
    st.n = fz_int(f, -2, 12);
    return st;
}

static fz_reasons stats_reason(const vppo_tas_stats *st)
{
    if (st->n < 0) return FZ_BIT(VPPO_ERR_SIZE);
    if (st->n >= 2 && !(fz_finite(st->min) && fz_finite(st->max) && st->min <= st->max)) return FZ_BIT(VPPO_ERR_PARAM);
    return 0;
}

/* [na] per-sequence counts for TAS, now and then negative (SIZE when among the first n). */
static int64_t *make_counts(fz *f, int64_t na, int64_t n, int *negative)
{
    int64_t *c = (int64_t *)fz_alloc(f, (size_t)na * sizeof(int64_t)), b;
    *negative = 0;
    for (b = 0; b < na; ++b) {
        const unsigned sel = fz_u8(f);
        c[b] = sel < 60 ? 0 : sel < 250 ? (int64_t)(sel % 9) : -(int64_t)(sel % 3) - 1;
        if (c[b] < 0 && b < n) *negative = 1;
    }
    return c;
}

/* ------------------------------------------------------------ §4 */

static void run_group_advantages(fz *f)
{
    fz_seqs q;
    const vppo_adv_kind kind = (vppo_adv_kind)fz_int(f, -1, 4);
    const float eps = fz_u8(f) < 200 ? 1e-6f : fz_float(f);
    const unsigned null_sel = fz_u8(f) % 24;
    float *rewards, *adv, *before;
    fz_reasons why, may = 0;
    vppo_status st;
    int64_t g, t;
    rewards = fz_seq_input(f, &q, 6, 12, null_sel, 4, &why);
    adv = fz_out_floats_kept(f, q.n_alloc, &before);
    if ((int)kind < 0 || (int)kind > 3) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (!fz_finite(eps) || eps < 0.0f) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (!q.bad) {
        why |= fz_values_reason(&q, rewards, 0);
        for (g = 0; g < q.s.n_seqs; ++g)
            if (fz_count(&q, g) == 1) why |= FZ_BIT(VPPO_ERR_SIZE);          /* no baseline */
        /* finite rewards whose advantage leaves the float range (r - mean of +-3e38) */
        for (g = 0; g < q.s.n_seqs && !why; ++g) {
            double sum = 0.0, n = 0.0;
            for (t = q.offsets[g]; t < q.offsets[g + 1]; ++t) if (fz_valid(&q, t)) { sum += rewards[t]; n += 1; }
            for (t = q.offsets[g]; t < q.offsets[g + 1]; ++t)
                if (fz_valid(&q, t) && n > 1 && (fabs(rewards[t] - sum / n) > 0.5 * FLT_MAX ||
                                                 fabs(rewards[t] - (sum - rewards[t]) / (n - 1)) > 0.5 * FLT_MAX))
                    may |= FZ_BIT(VPPO_ERR_NONFINITE);
        }
    }
    if (null_sel == 1) q.s.offsets = NULL;
    st = vppo_group_advantages(null_sel == 0 ? NULL : &q.s, null_sel == 2 ? NULL : rewards, kind, eps,
                               null_sel == 3 ? NULL : adv);
    if (!fz_per_token_outcome(&q, why, may, st, adv, before, sizeof(float))) return;
    for (g = 0; g < q.s.n_seqs; ++g) {
        double sum = 0.0, abs_sum = 0.0, lo = HUGE_VAL, hi = -HUGE_VAL, mean, n = 0.0;
        int64_t nonzero = 0, best = -1;
        for (t = q.offsets[g]; t < q.offsets[g + 1]; ++t)
            if (fz_valid(&q, t)) {
                n += 1;
                if (rewards[t] < lo) lo = rewards[t];
                if (rewards[t] > hi) hi = rewards[t];
                if (best < 0 || rewards[t] > rewards[best]) best = t;
            }
        mean = 0.0;
        for (t = q.offsets[g]; t < q.offsets[g + 1]; ++t) if (fz_valid(&q, t)) mean += rewards[t] / n;
        for (t = q.offsets[g]; t < q.offsets[g + 1]; ++t) {
            if (!fz_valid(&q, t)) continue;
            FZ_ASSERT(fz_finite(adv[t]));                          /* finite rewards, finite advantages */
            if (lo == hi) FZ_ASSERT(adv[t] == 0.0f);                /* a constant group */
            sum += adv[t];
            abs_sum += fabs(adv[t]);
            nonzero += adv[t] != 0.0f;
            if (kind == VPPO_ADV_GRPO_NO_STD)                       /* r - mean */
                FZ_ASSERT(fabs(adv[t] - (rewards[t] - mean)) <= 1e-6 * (fabs(hi) + fabs(lo)) + 1e-37);
            if (kind == VPPO_ADV_GRPO_PASSK && t != best) FZ_ASSERT(adv[t] == 0.0f);
            if (kind == VPPO_ADV_GRPO_PASSK && t == best) FZ_ASSERT(adv[t] >= 0.0f);
        }
        if (kind == VPPO_ADV_GRPO_PASSK) FZ_ASSERT(nonzero <= 1);   /* only the best */
        if (kind != VPPO_ADV_GRPO_PASSK)                            /* advantages sum to 0 */
            FZ_ASSERT(fabs(sum) <= 1e-5 * abs_sum + 1e-30);
    }
}

static void run_group_filter(fz *f)
{
    fz_seqs q;
    const double lo = fz_u8(f) < 128 ? 0.01 : fz_double(f), hi = fz_u8(f) < 128 ? 0.99 : fz_double(f);
    const unsigned null_sel = fz_u8(f) % 24;
    float *scores;
    uint8_t *keep, *before;
    fz_reasons why;
    vppo_status st;
    int64_t g, t;
    scores = fz_seq_input(f, &q, 6, 12, null_sel, 4, &why);
    keep = fz_out_mask_kept(f, q.n_alloc, &before);
    if (lo != lo || hi != hi || lo > hi) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (!q.bad) why |= fz_values_reason(&q, scores, 0);
    if (null_sel == 1) q.s.offsets = NULL;
    st = vppo_group_filter(null_sel == 0 ? NULL : &q.s, null_sel == 2 ? NULL : scores, lo, hi,
                           null_sel == 3 ? NULL : keep);
    if (!fz_per_token_outcome(&q, why, 0, st, keep, before, 1)) return;
    for (g = 0; g < q.s.n_seqs; ++g) {
        double sum = 0.0, n = 0.0;
        int kept;
        for (t = q.offsets[g]; t < q.offsets[g + 1]; ++t) if (fz_valid(&q, t)) { sum += scores[t]; n += 1; }
        kept = n > 0 && lo < sum / n && sum / n < hi;
        for (t = q.offsets[g]; t < q.offsets[g + 1]; ++t)
            if (fz_valid(&q, t)) FZ_ASSERT(keep[t] == (uint8_t)kept);
    }
}

/* ------------------------------------------------------------ §5 */

static void run_tas(fz *f)
{
    const unsigned op = fz_u8(f) % 4, null_sel = fz_u8(f) % 20;
    if (op == 0) {   /* vppo_seq_mean */
        fz_seqs q;
        float *x, *mean, *before;
        int64_t *count = NULL, b, t, B;
        fz_reasons why;
        vppo_status st;
        fz_make_seqs(f, &q, 6, 40);
        B = q.bad ? 1 : q.s.n_seqs;
        x = fz_floats(f, q.n_alloc);
        mean = fz_out_floats_kept(f, B + 1, &before);
        if (fz_u8(f) & 1) count = (int64_t *)fz_alloc(f, (size_t)(B + 1) * sizeof(int64_t));
        if (count) count[B] = 77;
        why = q.bad;
        if (null_sel < 4) why |= FZ_BIT(VPPO_ERR_NULL);
        if (!q.bad) why |= fz_values_reason(&q, x, 0);
        if (null_sel == 1) q.s.offsets = NULL;
        st = vppo_seq_mean(null_sel == 0 ? NULL : &q.s, null_sel == 2 ? NULL : x, null_sel == 3 ? NULL : mean, count);
        FZ_EXPECT(why, st);
        if (st != VPPO_OK) { FZ_ASSERT(memcmp(mean, before, (size_t)(B + 1) * sizeof(float)) == 0); return; }
        FZ_ASSERT(memcmp(mean + B, before + B, sizeof(float)) == 0 && (!count || count[B] == 77));
        for (b = 0; b < B; ++b) {
            double sum = 0.0;
            const int64_t n = fz_count(&q, b);
            for (t = q.offsets[b]; t < q.offsets[b + 1]; ++t) if (fz_valid(&q, t)) sum += x[t];
            if (count) FZ_ASSERT(count[b] == n);
            FZ_ASSERT(fz_finite(mean[b]));
            FZ_ASSERT(fz_close(n ? sum / (double)n : 0.0, mean[b], 1e-37, 1e-6));
        }
    } else if (op == 1) {   /* vppo_tas_stats_compute, vppo_tas_stats_merge */
        const int64_t n = fz_int(f, -2, 10), na = n > 0 ? n : 1;
        float *traj = fz_floats(f, na);
        int negative = 0;
        int64_t *count = fz_u8(f) & 1 ? make_counts(f, na, n, &negative) : NULL, b, m = 0;
        vppo_tas_stats st = make_stats(f), other = make_stats(f), merged;
        double lo = HUGE_VAL, hi = -HUGE_VAL;
        fz_reasons why = 0;
        vppo_status status;
        if (null_sel < 2) why |= FZ_BIT(VPPO_ERR_NULL);
        if (n < 0 || negative) why |= FZ_BIT(VPPO_ERR_SIZE);
        for (b = 0; b < n; ++b)
            if (!count || count[b] > 0) {
                if (!fz_finite(traj[b])) why |= FZ_BIT(VPPO_ERR_NONFINITE);
                if (traj[b] < lo) lo = traj[b];
                if (traj[b] > hi) hi = traj[b];
                ++m;
            }
        status = vppo_tas_stats_compute(null_sel == 0 ? NULL : traj, count, n, null_sel == 1 ? NULL : &st);
        FZ_EXPECT(why, status);
        if (status == VPPO_OK) FZ_ASSERT(st.min == lo && st.max == hi && st.n == m);
        merged = st;
        vppo_tas_stats_merge(&merged, &other);
        FZ_ASSERT(merged.n == st.n + other.n);
        FZ_ASSERT(merged.min == (other.min < st.min ? other.min : st.min) || merged.min != merged.min);
        FZ_ASSERT(merged.max == (other.max > st.max ? other.max : st.max) || merged.max != merged.max);
        vppo_tas_stats_merge(NULL, &other);                     /* NULLs are ignored */
        vppo_tas_stats_merge(&merged, NULL);
    } else {                 /* vppo_tas_scales */
        const int64_t n = fz_int(f, -2, 10), na = n > 0 ? n : 1;
        const vppo_tas_config cfg = make_tas_config(f);
        const vppo_tas_stats st = make_stats(f);
        float *traj = fz_floats(f, na), *scale = fz_out_floats(f, na + 1);
        int negative = 0;
        int64_t *count = fz_u8(f) & 1 ? make_counts(f, na, n, &negative) : NULL, b, n_valid = 0;
        fz_reasons why = tas_config_reason(&cfg) | stats_reason(&st);
        vppo_status status;
        double range = st.max - st.min, x_sum = 0.0, s_sum = 0.0;
        int degenerate = st.n < 2 || range <= 1e-6;
        if (null_sel < 4) why |= FZ_BIT(VPPO_ERR_NULL);
        if (n < 0 || negative) why |= FZ_BIT(VPPO_ERR_SIZE);
        for (b = 0; b < n; ++b)
            if ((!count || count[b] > 0) && !fz_finite(traj[b])) why |= FZ_BIT(VPPO_ERR_NONFINITE);
        status = vppo_tas_scales(null_sel == 0 ? NULL : &cfg, null_sel == 1 ? NULL : &st,
                                 null_sel == 2 ? NULL : traj, count, n, null_sel == 3 ? NULL : scale);
        FZ_EXPECT(why, status);
        if (status != VPPO_OK) return;
        FZ_ASSERT(((const uint32_t *)scale)[n] == 0xA5A5A5A5u);
        for (b = 0; b < n; ++b) {
            FZ_ASSERT(fz_finite(scale[b]) && scale[b] >= 0.0f);
            if (degenerate || (count && count[b] <= 0)) { FZ_ASSERT(scale[b] == 1.0f); continue; }
            {
                double x = (traj[b] - st.min) / range;
                x = x < 0 ? 0 : x > 1 ? 1 : x;
                x_sum += x;
                s_sum += scale[b];
                ++n_valid;
                if (cfg.mode == VPPO_TAS_LINEAR) {
                    FZ_ASSERT(scale[b] >= cfg.beta_min * (1 - 1e-6f) && scale[b] <= cfg.beta_max * (1 + 1e-6f));
                    FZ_ASSERT(fz_close(cfg.beta_min + ((double)cfg.beta_max - cfg.beta_min) * x, scale[b], 1e-6, 1e-6));
                }
            }
        }
        if (cfg.mode == VPPO_TAS_MEAN_PRESERVING && !degenerate && n_valid > 0 && x_sum / (double)n_valid > 1e-3)
            FZ_ASSERT(fabs(s_sum / (double)n_valid - 1.0) <= 1e-5);     /* mean scale 1 */
    }
}

/* ------------------------------------------------------------ §7 */

/* Loss outputs against the float64 reference of the suite (tests/test_util.c), where
   every input is of a moderate size. */
static void check_loss(const vppo_loss_config *cfg, const fz_seqs *q, const float *logp, const float *logp_old,
    const float *logp_ref, const float *adv, const uint8_t *select, const float *weight, const vppo_loss_out *out)
{
    ref_loss_terms R;
    double *lp = (double *)malloc((size_t)(q->n_alloc + 1) * sizeof(double));
    int64_t t, n_valid = 0;
    int tame = 1;
    FZ_ASSERT(lp != NULL);
    if (fz_debug()) {
        fprintf(stderr, "cfg clip %g %g %g pg %d ratio %d agg %d norm %g kl %d %g ent %g denom %g\n", cfg->clip_low,
                cfg->clip_high, cfg->clip_dual, (int)cfg->pg_kind, (int)cfg->ratio_level, (int)cfg->agg, cfg->agg_norm,
                (int)cfg->kl_kind, cfg->kl_coef, cfg->entropy_coef, cfg->denom);
        fprintf(stderr, "out loss %g pg %g kl %g ent %g\n", out->loss, out->pg_loss, out->kl_loss, out->entropy_loss);
        for (t = fz_begin(q); t < fz_end(q); ++t)
            if (fz_valid(q, t))
                fprintf(stderr, "  t %lld logp %g old %g ref %g adv %g sel %d w %g\n", (long long)t, logp[t],
                        logp_old[t], logp_ref ? logp_ref[t] : 0.0, adv[t], select ? select[t] : 1,
                        weight ? weight[t] : 1.0);
    }
    FZ_ASSERT(fz_finite(out->loss) && fz_finite(out->pg_loss) && fz_finite(out->kl_loss) && fz_finite(out->entropy_loss));
    FZ_ASSERT(out->clipfrac >= 0 && out->clipfrac <= 1 && out->clipfrac_dual >= 0 && out->clipfrac_dual <= 1);
    for (t = 0; t < q->n_alloc; ++t) lp[t] = logp[t];
    for (t = fz_begin(q); t < fz_end(q); ++t) {
        if (!fz_valid(q, t)) continue;
        ++n_valid;
        if (!(fabs(logp[t]) <= 50 && fabs(logp_old[t]) <= 50 && fabs(logp[t] - logp_old[t]) <= 5 && fabs(adv[t]) <= 100))
            tame = 0;
        if (logp_ref && !(fabs(logp_ref[t]) <= 50)) tame = 0;
        if (weight && !(fabs(weight[t]) <= 100)) tame = 0;
    }
    FZ_ASSERT(out->n_valid == n_valid);
    R = ref_policy_loss(cfg, &q->s, lp, lp, logp_old, logp_ref, adv, select, weight);
    FZ_ASSERT(out->n_selected == R.n_selected);
    if (tame && !(cfg->denom > 0 && cfg->denom < 1e-3) && !(cfg->agg == VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM && cfg->agg_norm < 1e-3)) {
        if (fz_debug()) fprintf(stderr, "loss %.17g ref %.17g pg %.17g ref %.17g kl %.17g ref %.17g ent %.17g ref %.17g\n",
                                out->loss, R.loss, out->pg_loss, R.pg, out->kl_loss, R.kl, out->entropy_loss, R.ent);
        FZ_ASSERT(fz_close(R.pg, out->pg_loss, 1e-6, 1e-6));
        FZ_ASSERT(fz_close(R.kl, out->kl_loss, 1e-6, 1e-6));
        FZ_ASSERT(fz_close(R.ent, out->entropy_loss, 1e-6, 1e-6));
        {
            const double coefs = 1 + fabs(cfg->kl_coef) + fabs(cfg->entropy_coef);
            FZ_ASSERT(fz_close(R.loss, out->loss, 1e-6 * coefs, 1e-6 * coefs));
        }
        FZ_ASSERT(fz_close(R.ppo_kl, out->ppo_kl, 1e-6, 1e-6));
        FZ_ASSERT(fabs(R.clipfrac - out->clipfrac) <= 1.0 / (double)(n_valid ? n_valid : 1) + 1e-12);
        FZ_ASSERT(fabs(R.clipfrac_dual - out->clipfrac_dual) <= 1.0 / (double)(n_valid ? n_valid : 1) + 1e-12);
    }
    free(lp);
}

/* After a loss whose arguments were valid: VPPO_OK means a finite loss that matches the
   reference and finite gradients; the after-the-fact VPPO_ERR_NONFINITE means a
   gradient beyond the float range, or a loss beyond the double range. */
static void check_after_loss(const vppo_loss_config *cfg, const fz_seqs *q, const float *logp, const float *logp_old,
    const float *logp_ref, const float *adv, const uint8_t *select, const float *weight, const float *dlogp,
    const float *before, const vppo_loss_out *out, vppo_status st)
{
    int64_t t;
    int inf = 0;
    if (dlogp)
        for (t = fz_begin(q); t < fz_end(q); ++t)
            if (fz_valid(q, t)) inf |= !fz_finite(dlogp[t]);
    if (st == VPPO_OK) {
        FZ_ASSERT(!inf);
        if (dlogp) fz_check_per_token(q, dlogp, before, sizeof(float));
        check_loss(cfg, q, logp, logp_old, logp_ref, adv, select, weight, out);
    } else {
        double *lp = (double *)malloc((size_t)(q->n_alloc + 1) * sizeof(double));
        ref_loss_terms R;
        FZ_ASSERT(lp != NULL && st == VPPO_ERR_NONFINITE);
        for (t = 0; t < q->n_alloc; ++t) lp[t] = logp[t];
        R = ref_policy_loss(cfg, &q->s, lp, lp, logp_old, logp_ref, adv, select, weight);
        FZ_ASSERT(inf || !fz_finite(R.loss));
        free(lp);
    }
}

static void run_policy_loss(fz *f)
{
    fz_seqs q;
    const vppo_loss_config cfg = make_loss_config(f);
    const unsigned null_sel = fz_u8(f) % 28;
    float *logp, *logp_old, *logp_ref = NULL, *adv, *weight = NULL, *dlogp = NULL, *before = NULL;
    uint8_t *select = NULL;
    vppo_loss_out out;
    fz_reasons why;
    vppo_status st;
    int64_t t;
    fz_make_seqs(f, &q, 6, 40);
    logp = fz_floats(f, q.n_alloc);
    logp_old = fz_floats(f, q.n_alloc);
    if (fz_u8(f) % 3 == 0 || cfg.kl_kind != VPPO_KL_NONE) logp_ref = fz_floats(f, q.n_alloc);
    adv = fz_floats(f, q.n_alloc);
    if (fz_u8(f) & 1) {
        select = (uint8_t *)fz_alloc(f, (size_t)q.n_alloc);
        fz_reseed(f);
        for (t = 0; t < q.n_alloc; ++t) select[t] = (uint8_t)(fz_next(f) >> 62);   /* 0..3: nonzero = 1 */
    }
    if (fz_u8(f) % 3 == 0) weight = fz_floats(f, q.n_alloc);
    if (fz_u8(f) % 4) {
        dlogp = fz_out_floats_kept(f, q.n_alloc, &before);
    }
    if (null_sel == 6 && cfg.kl_kind != VPPO_KL_NONE) logp_ref = NULL;
    why = q.bad | loss_config_reason(&cfg);
    if (null_sel < 6 || (null_sel == 6 && cfg.kl_kind != VPPO_KL_NONE && (int)cfg.kl_kind <= 4))
        why |= FZ_BIT(VPPO_ERR_NULL);
    if (!q.bad) {
        why |= fz_values_reason(&q, logp, 0) | fz_values_reason(&q, logp_old, 0) | fz_values_reason(&q, adv, 0);
        if (cfg.kl_kind != VPPO_KL_NONE && logp_ref) why |= fz_values_reason(&q, logp_ref, 0);
        if (weight) why |= fz_values_reason(&q, weight, 0);
    }
    if (null_sel == 2) q.s.offsets = NULL;
    st = vppo_policy_loss(null_sel == 0 ? NULL : &cfg, null_sel == 1 ? NULL : &q.s, null_sel == 3 ? NULL : logp,
                          null_sel == 4 ? NULL : logp_old, logp_ref, null_sel == 5 ? NULL : adv, select, weight,
                          dlogp, null_sel == 7 ? NULL : &out);
    if (null_sel == 7) why |= FZ_BIT(VPPO_ERR_NULL);
    FZ_EXPECT2(why, why ? 0 : FZ_BIT(VPPO_ERR_NONFINITE), st);
    if (st != VPPO_OK && why) {
        if (dlogp) FZ_ASSERT(memcmp(dlogp, before, (size_t)q.n_alloc * sizeof(float)) == 0);
        return;
    }
    check_after_loss(&cfg, &q, logp, logp_old, cfg.kl_kind != VPPO_KL_NONE ? logp_ref : NULL, adv, select, weight,
                     dlogp, before, &out, st);
}

/* ------------------------------------------------------------ §8 */

typedef struct prep_bufs {
    vppo_prepared p;
    int64_t n_alloc, b_alloc;
    void *before[6];
} prep_bufs;

static void make_prepared(fz *f, const fz_seqs *q, prep_bufs *pb)
{
    const int64_t B = q->bad ? 1 : q->s.n_seqs;
    memset(pb, 0, sizeof *pb);
    pb->n_alloc = q->n_alloc;
    pb->b_alloc = B + fz_int(f, 0, 1);
    pb->p.dep = fz_out_floats(f, pb->n_alloc);
    pb->p.traj_dep = fz_out_floats(f, pb->b_alloc);
    pb->p.count = (int64_t *)fz_alloc(f, (size_t)pb->b_alloc * sizeof(int64_t));
    memset(pb->p.count, 0xA5, (size_t)pb->b_alloc * sizeof(int64_t));
    pb->p.scale = fz_out_floats(f, pb->b_alloc);
    pb->p.adv = fz_out_floats(f, pb->n_alloc);
    pb->p.select = (uint8_t *)fz_alloc(f, (size_t)pb->n_alloc);
    memset(pb->p.select, 0xA5, (size_t)pb->n_alloc);
    pb->before[0] = fz_copy(f, pb->p.dep, (size_t)pb->n_alloc * 4);
    pb->before[1] = fz_copy(f, pb->p.traj_dep, (size_t)pb->b_alloc * 4);
    pb->before[2] = fz_copy(f, pb->p.count, (size_t)pb->b_alloc * 8);
    pb->before[3] = fz_copy(f, pb->p.scale, (size_t)pb->b_alloc * 4);
    pb->before[4] = fz_copy(f, pb->p.adv, (size_t)pb->n_alloc * 4);
    pb->before[5] = fz_copy(f, pb->p.select, (size_t)pb->n_alloc);
}

static int prepared_untouched(const prep_bufs *pb)
{
    return memcmp(pb->p.dep, pb->before[0], (size_t)pb->n_alloc * 4) == 0 &&
           memcmp(pb->p.traj_dep, pb->before[1], (size_t)pb->b_alloc * 4) == 0 &&
           memcmp(pb->p.count, pb->before[2], (size_t)pb->b_alloc * 8) == 0 &&
           memcmp(pb->p.scale, pb->before[3], (size_t)pb->b_alloc * 4) == 0 &&
           memcmp(pb->p.adv, pb->before[4], (size_t)pb->n_alloc * 4) == 0 &&
           memcmp(pb->p.select, pb->before[5], (size_t)pb->n_alloc) == 0;
}

static vppo_config make_config(fz *f)
{
    vppo_config c = vppo_config_default();
    unsigned k, n_changes = fz_u8(f) % 5;
    for (k = 0; k < n_changes; ++k) {
        switch (fz_u8(f) % 7) {
        case 0: c.estimator = (vppo_estimator)fz_int(f, -1, 5); break;
        case 1: c.use_tas = fz_u8(f) & 1; break;
        case 2: c.tas = make_tas_config(f); break;
        case 3: c.use_tgf = fz_u8(f) & 1; break;
        case 4: c.topk_ratio = fz_double(f); break;
        case 5: c.loss = make_loss_config(f); break;
        default: c.use_tas = 0; c.use_tgf = 0; break;
        }
    }
    return c;
}

/* What vppo_prepare deserves (its header comment); *may gets the overflow of a shaped
   advantage, whose documented bound is not tight. */
static fz_reasons prepare_reasons(const vppo_config *cfg, const fz_seqs *q, const float *logp_old,
    const float *logp_aug, const float *dep_in, const float *adv_seq, const vppo_tas_stats *global, fz_reasons *may)
{
    fz_reasons why = q->bad;
    int sampled = !dep_in && logp_old && logp_aug;
    int64_t b, t;
    if (!dep_in && !sampled && (cfg->use_tas || cfg->use_tgf)) why |= FZ_BIT(VPPO_ERR_NULL);
    if (sampled && ((int)cfg->estimator < 0 || (int)cfg->estimator > 4)) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (cfg->use_tas) why |= tas_config_reason(&cfg->tas);
    if (cfg->use_tgf && !(cfg->topk_ratio >= 0.0 && cfg->topk_ratio <= 1.0)) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (global) why |= stats_reason(global);
    if (q->bad) return why;
    if (dep_in) why |= fz_values_reason(q, dep_in, 0);
    if (sampled) {
        why |= fz_values_reason(q, logp_old, 1) | fz_values_reason(q, logp_aug, 1);
        for (t = fz_begin(q); t < fz_end(q); ++t) {
            if (!fz_valid(q, t)) continue;
            if (logp_old[t] == -HUGE_VALF && logp_aug[t] == -HUGE_VALF) why |= FZ_BIT(VPPO_ERR_NONFINITE);
            if (cfg->estimator == VPPO_EST_PROB_DROP &&
                !(fabs(exp((double)logp_old[t]) - exp((double)logp_aug[t])) <= FLT_MAX))
                why |= FZ_BIT(VPPO_ERR_NONFINITE);
        }
    }
    if (adv_seq)
        for (b = 0; b < q->s.n_seqs; ++b) {
            double bound = 1.0;
            if (fz_count(q, b) == 0) continue;
            if (!fz_finite(adv_seq[b])) why |= FZ_BIT(VPPO_ERR_NONFINITE);
            if (cfg->use_tas)   /* the documented largest scale, and 1 for the degenerate cases */
                bound = cfg->tas.mode == VPPO_TAS_LINEAR ? (cfg->tas.beta_max > 1 ? cfg->tas.beta_max : 1.0)
                      : cfg->tas.beta_min + (1.0 - cfg->tas.beta_min) * (double)q->s.n_seqs;
            if (fabs(adv_seq[b]) * bound * (1.0 + 1e-5) > FLT_MAX) *may |= FZ_BIT(VPPO_ERR_NONFINITE);
        }
    return why;
}

/* The prepared buffers after VPPO_OK. */
static void check_prepared(const vppo_config *cfg, const fz_seqs *q, const float *dep_in, const float *logp_old,
    const float *logp_aug, const float *adv_seq, const vppo_tas_stats *global, const prep_bufs *pb)
{
    const vppo_prepared *p = &pb->p;
    const int sampled = !dep_in && logp_old && logp_aug;
    const double ratio = cfg->use_tgf ? cfg->topk_ratio : 1.0;
    int64_t b, t, n_sel_total = 0;
    fz_check_per_token(q, p->dep, pb->before[0], 4);
    fz_check_per_token(q, p->adv, pb->before[4], 4);
    fz_check_per_token(q, p->select, pb->before[5], 1);
    for (b = q->s.n_seqs; b < pb->b_alloc; ++b)   /* [B] arrays: nothing past B */
        FZ_ASSERT(memcmp(p->traj_dep + b, (float *)pb->before[1] + b, 4) == 0 &&
                  memcmp(p->count + b, (int64_t *)pb->before[2] + b, 8) == 0 &&
                  memcmp(p->scale + b, (float *)pb->before[3] + b, 4) == 0);
    if (global)   /* a copy (NaN min and max are allowed while n < 2) */
        FZ_ASSERT(memcmp(&p->stats.min, &global->min, 8) == 0 && memcmp(&p->stats.max, &global->max, 8) == 0 &&
                  p->stats.n == global->n);
    for (b = 0; b < q->s.n_seqs; ++b) {
        const int64_t n = fz_count(q, b);
        double k = ceil((double)n * ratio - 1e-9), sum = 0.0;
        int64_t taken = 0;
        k = k < 0 ? 0 : k > (double)n ? (double)n : k;
        FZ_ASSERT(p->count[b] == n);
        FZ_ASSERT(fz_finite(p->scale[b]));
        if (!cfg->use_tas) FZ_ASSERT(p->scale[b] == 1.0f);
        for (t = q->offsets[b]; t < q->offsets[b + 1]; ++t) {
            if (!fz_valid(q, t)) continue;
            FZ_ASSERT(fz_finite(p->dep[t]));
            if (dep_in) FZ_ASSERT(memcmp(&p->dep[t], &dep_in[t], 4) == 0);
            else if (sampled)
                FZ_ASSERT(fz_close(ref_dependency(cfg->estimator, logp_old[t], logp_aug[t]), p->dep[t], 1e-6, 1e-6));
            else FZ_ASSERT(p->dep[t] == 0.0f);
            sum += p->dep[t];
            FZ_ASSERT(fz_finite(p->adv[t]));
            {
                const float want = p->scale[b] * adv_seq[b];
                FZ_ASSERT(memcmp(&p->adv[t], &want, 4) == 0 || (p->adv[t] == 0.0f && want == 0.0f));
            }
            taken += p->select[t];
            FZ_ASSERT(p->select[t] <= 1);
        }
        FZ_ASSERT(fz_close(n ? sum / (double)n : 0.0, p->traj_dep[b], 1e-37, 1e-6));
        FZ_ASSERT(taken == (int64_t)k);
        n_sel_total += taken;
    }
    FZ_ASSERT(p->topk.n_selected == n_sel_total);
}

static void run_prepare_or_step(fz *f, int step)
{
    fz_seqs q;
    const vppo_config cfg = make_config(f);
    const unsigned null_sel = fz_u8(f) % 32;
    float *logp_old = NULL, *logp_aug = NULL, *dep_in = NULL, *adv_seq, *logp = NULL, *logp_ref = NULL;
    float *dlogp = NULL, *dbefore = NULL;
    vppo_tas_stats global_stats, *global = NULL;
    prep_bufs pb;
    vppo_loss_out out;
    fz_reasons why, may = 0;
    vppo_status st;
    int64_t B;
    fz_make_seqs(f, &q, 6, 30);
    B = q.bad ? 1 : q.s.n_seqs;
    if (fz_u8(f) % 6) logp_old = fz_floats(f, q.n_alloc);
    if (fz_u8(f) % 6) logp_aug = fz_floats(f, q.n_alloc);
    if (!step && fz_u8(f) % 4 == 0) dep_in = fz_floats(f, q.n_alloc);
    if (!step && fz_u8(f) % 4 == 0) { global_stats = make_stats(f); global = &global_stats; }
    adv_seq = fz_floats(f, B);
    make_prepared(f, &q, &pb);
    if (step) {
        logp = fz_floats(f, q.n_alloc);
        if (cfg.loss.kl_kind != VPPO_KL_NONE || fz_u8(f) % 3 == 0) logp_ref = fz_floats(f, q.n_alloc);
        if (fz_u8(f) % 4) {
            dlogp = fz_out_floats_kept(f, q.n_alloc, &dbefore);
        }
    }
    why = prepare_reasons(&cfg, &q, logp_old, logp_aug, dep_in, adv_seq, global, &may);
    if (step) {
        why |= loss_config_reason(&cfg.loss);
        if (!logp_old || (cfg.loss.kl_kind != VPPO_KL_NONE && (int)cfg.loss.kl_kind <= 4 && !logp_ref))
            why |= FZ_BIT(VPPO_ERR_NULL);
        if (!q.bad) {
            why |= fz_values_reason(&q, logp, 0);
            if (logp_old) why |= fz_values_reason(&q, logp_old, 0);
            if (cfg.loss.kl_kind != VPPO_KL_NONE && logp_ref) why |= fz_values_reason(&q, logp_ref, 0);
        }
        if (!why) may |= FZ_BIT(VPPO_ERR_NONFINITE);   /* the loss's own overflow */
    }
    if (null_sel < 11 || (step && null_sel == 11)) why |= FZ_BIT(VPPO_ERR_NULL);
    switch (null_sel) {
    case 2: q.s.offsets = NULL; break;
    case 5: pb.p.dep = NULL; break;
    case 6: pb.p.traj_dep = NULL; break;
    case 7: pb.p.count = NULL; break;
    case 8: pb.p.scale = NULL; break;
    case 9: pb.p.adv = NULL; break;
    case 10: pb.p.select = NULL; break;
    default: break;
    }
    if (step)
        st = vppo_step(null_sel == 0 ? NULL : &cfg, null_sel == 1 ? NULL : &q.s, null_sel == 3 ? NULL : logp, logp_old,
                       logp_aug, logp_ref, adv_seq, null_sel == 4 ? NULL : &pb.p, dlogp, null_sel == 11 ? NULL : &out);
    else
        st = vppo_prepare(null_sel == 0 ? NULL : &cfg, null_sel == 1 ? NULL : &q.s, logp_old, logp_aug, dep_in,
                          null_sel == 3 ? NULL : adv_seq, global, null_sel == 4 ? NULL : &pb.p);
    FZ_EXPECT2(why, may, st);
    if (st != VPPO_OK) {
        if (why) {                /* validated before anything is written */
            if (null_sel >= 12) FZ_ASSERT(prepared_untouched(&pb));
            if (dlogp) FZ_ASSERT(memcmp(dlogp, dbefore, (size_t)q.n_alloc * sizeof(float)) == 0);
            return;
        }
        if (prepared_untouched(&pb)) return;   /* a shaped advantage beyond the float range, found first */
        FZ_ASSERT(step);                       /* else only the loss may overflow, after prepare */
    }
    check_prepared(&cfg, &q, dep_in, logp_old, logp_aug, adv_seq, global, &pb);
    if (step)
        check_after_loss(&cfg.loss, &q, logp, logp_old, cfg.loss.kl_kind != VPPO_KL_NONE ? logp_ref : NULL, pb.p.adv,
                         pb.p.select, NULL, dlogp, dbefore, &out, st);
}

static void run_prepare(fz *f) { run_prepare_or_step(f, 0); }
static void run_step(fz *f) { run_prepare_or_step(f, 1); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_run runs[] = { run_group_advantages, run_group_filter, run_tas, run_policy_loss,
                                   run_prepare, run_step, run_step };
    return fz_dispatch(data, size, 0, runs, 7);
}
