/* tests/test_loss.c - docs/spec.md §7: the policy objective against the float64 reference, and
   its gradient against finite differences of that reference, for every option. */
#include "test.h"

/* A batch for the loss, built away from every kink of the objective so that central
   differences are exact to O(h^2): ratios avoid ln(1-clip_low), ln(1+clip_high) and
   ln(clip_dual); reference log-ratios avoid 0 (ABS) and the K3 clamps. */
typedef struct loss_batch {
    test_batch b;
    float *logp, *logp_old, *logp_ref, *adv, *weight;
    uint8_t *select;
} loss_batch;

/* A log-ratio from one of the smooth intervals, each side of the kinks. */
static double safe_log_ratio(rng *r)
{
    static const double iv[4][2] = { { -0.6, -0.3 }, { -0.15, 0.15 }, { 0.35, 0.8 }, { 1.2, 1.6 } };
    int k = (int)rng_int(r, 0, 3);
    return rng_range(r, iv[k][0], iv[k][1]);
}

static loss_batch loss_batch_make(rng *r, int seq_level)
{
    loss_batch L;
    int64_t i, t;
    L.b = batch_make(r, 7, 24, 0, 1);
    L.logp = floats_new(L.b.n, NAN); L.logp_old = floats_new(L.b.n, NAN); L.logp_ref = floats_new(L.b.n, NAN);
    L.adv = floats_new(L.b.n, NAN); L.weight = floats_new(L.b.n, NAN);
    L.select = (uint8_t *)malloc((size_t)L.b.n);
    for (i = 0; i < L.b.n_seqs; ++i) {
        const double a = rng_uniform(r) < 0.5 ? -rng_range(r, 0.2, 2) : rng_range(r, 0.2, 2);
        const double seq_ratio = safe_log_ratio(r);
        double noise_mean = 0;
        int64_t n = 0;
        double *noise = doubles_new(L.b.len, 0);
        for (t = 0; t < L.b.len; ++t) if (L.b.mask[i * L.b.len + t]) { noise[t] = rng_range(r, -0.05, 0.05); noise_mean += noise[t]; ++n; }
        if (n) noise_mean /= n;
        for (t = 0; t < L.b.len; ++t) {
            const int64_t at = i * L.b.len + t;
            double k;
            L.select[at] = (uint8_t)(rng_uniform(r) < 0.6);
            if (!L.b.mask[at]) continue;    /* NaN stays at invalid positions */
            L.logp_old[at] = (float)-rng_range(r, 0.05, 3);
            /* token level: each token its own safe ratio; sequence level: the sequence
               mean is the safe ratio, tokens wobble around it */
            L.logp[at] = (float)(L.logp_old[at] + (seq_level ? seq_ratio + noise[t] - noise_mean : safe_log_ratio(r)));
            k = rng_range(r, 0.05, 1.5) * (rng_uniform(r) < 0.5 ? -1 : 1);
            L.logp_ref[at] = (float)(L.logp[at] - k);
            L.adv[at] = (float)(a * rng_range(r, 0.8, 1.2));   /* per-token advantages */
            L.weight[at] = (float)rng_range(r, 0.1, 1.0);
        }
        free(noise);
    }
    return L;
}

static void loss_batch_free(loss_batch *L)
{
    batch_free(&L->b);
    free(L->logp); free(L->logp_old); free(L->logp_ref); free(L->adv); free(L->weight); free(L->select);
}

static double *to_doubles(const float *x, int64_t n)
{
    double *d = doubles_new(n, 0);
    int64_t i;
    for (i = 0; i < n; ++i) d[i] = x[i];
    return d;
}

/* One configuration: values against the reference, dlogp against central differences
   of the reference (stop-gradients frozen at the current logp). */
static int check_loss_config(const vppo_loss_config *cfg, loss_batch *L, int use_select, int use_weight)
{
    const int64_t n = L->b.n;
    const uint8_t *sel = use_select ? L->select : NULL;
    const float *w = use_weight ? L->weight : NULL;
    const float *ref = cfg->kl_kind != VPPO_KL_NONE ? L->logp_ref : NULL;
    float *dlogp = floats_new(n, 0);
    double *x = to_doubles(L->logp, n), *frozen = to_doubles(L->logp, n);
    vppo_loss_out out;
    ref_loss_terms want;
    int64_t t;
    int fails_before = test_failed_now;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(cfg, &L->b.s, L->logp, L->logp_old, ref, L->adv, sel, w, dlogp, &out));
    want = ref_policy_loss(cfg, &L->b.s, x, frozen, L->logp_old, ref, L->adv, sel, w);
    CHECK_NEAR(want.loss, out.loss, TOL_SCALAR);
    CHECK_NEAR(want.pg, out.pg_loss, TOL_SCALAR);
    CHECK_NEAR(want.kl, out.kl_loss, TOL_SCALAR);
    CHECK_NEAR(want.ent, out.entropy_loss, TOL_SCALAR);
    CHECK_NEAR(want.clipfrac, out.clipfrac, TOL_SCALAR);
    CHECK_NEAR(want.clipfrac_dual, out.clipfrac_dual, TOL_SCALAR);
    CHECK_NEAR(want.ppo_kl, out.ppo_kl, TOL_SCALAR);
    CHECK_EQ_INT(want.n_valid, out.n_valid);
    CHECK_EQ_INT(want.n_selected, out.n_selected);
    for (t = 0; t < n; ++t) {
        const double h = 1e-4, keep = x[t];
        double up, down, fd;
        if (!L->b.mask[t]) { CHECK(dlogp[t] == 0.0f); continue; }
        x[t] = keep + h; up = ref_policy_loss(cfg, &L->b.s, x, frozen, L->logp_old, ref, L->adv, sel, w).loss;
        x[t] = keep - h; down = ref_policy_loss(cfg, &L->b.s, x, frozen, L->logp_old, ref, L->adv, sel, w).loss;
        x[t] = keep;
        fd = (up - down) / (2 * h);
        CHECK_NEAR(fd, dlogp[t], TOL_TOKEN);
    }
    free(dlogp); free(x); free(frozen);
    return test_failed_now == fails_before;
}

void loss_config_default_is_released_recipe(void)
{
    vppo_loss_config c = vppo_loss_config_default();
    CHECK(c.clip_low == 0.2f && c.clip_high == 0.28f && c.clip_dual == 3.0f);
    CHECK(c.pg_kind == VPPO_PG_CLIP && c.ratio_level == VPPO_RATIO_TOKEN && c.agg == VPPO_AGG_TOKEN_MEAN);
    CHECK(c.kl_kind == VPPO_KL_NONE && c.kl_coef == 0.0f && c.entropy_coef == 0.06f && c.denom == 0.0);
}

/* Every combination of aggregation, ratio level, pg kind, KL kind, dual clip and denom. */
static void sweep_loss_options(int values_only)
{
    rng r = rng_make(700);
    int agg, level, pg, kl, dual, denom, bad = 0, configs = 0;
    for (level = VPPO_RATIO_TOKEN; level <= VPPO_RATIO_SEQ_TOKEN; ++level) {
        loss_batch L = loss_batch_make(&r, level != VPPO_RATIO_TOKEN);
        for (agg = VPPO_AGG_TOKEN_MEAN; agg <= VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM; ++agg)
            for (pg = VPPO_PG_CLIP; pg <= VPPO_PG_CISPO; ++pg)
                for (kl = VPPO_KL_NONE; kl <= VPPO_KL_K3; ++kl)
                    for (dual = 0; dual < 2; ++dual)
                        for (denom = 0; denom < 2; ++denom) {
                            vppo_loss_config c = vppo_loss_config_default();
                            c.agg = (vppo_agg)agg; c.ratio_level = (vppo_ratio_level)level;
                            c.pg_kind = (vppo_pg_kind)pg; c.kl_kind = (vppo_kl_kind)kl;
                            c.kl_coef = kl ? 0.05f : 0.0f;
                            c.clip_dual = dual ? 3.0f : 0.0f;
                            c.denom = denom ? 531.0 : 0.0;
                            c.agg_norm = 37.0;
                            ++configs;
                            if (values_only) {   /* with select and weight both */
                                bad += !check_loss_config(&c, &L, 1, 1);
                            } else {
                                bad += !check_loss_config(&c, &L, (configs % 3) != 0, (configs % 2) != 0);
                            }
                        }
        loss_batch_free(&L);
    }
    CHECK_EQ_INT(3 * 4 * 2 * 5 * 2 * 2, configs);
    CHECK_EQ_INT(0, bad);   /* configurations with any failed check */
}

void policy_loss_matches_reference_all_options(void) { sweep_loss_options(1); }
void policy_loss_gradient_matches_finite_differences(void) { sweep_loss_options(0); }

/* One token per sequence, hand-built: the four clip regions of PPO-clip. */
void policy_loss_clip_regions_and_metrics(void)
{
    const int64_t off[] = { 0, 1, 2, 3, 4, 5 };
    /* log-ratio, advantage: A>0 inside; A>0 above 1+eps (clipped); A>0 below 1-eps (not
       clipped: pessimistic min); A<0 below 1-eps (clipped); A<0 above 1+eps (inside dual) */
    const double rho[5] = { 0.1, 0.5, -0.5, -0.5, 0.5 };
    const float adv[5] = { 1, 1, 1, -1, -1 };
    float logp[5], old[5], dl[5];
    vppo_loss_config c = vppo_loss_config_default();
    vppo_loss_out out;
    vppo_seqs s;
    double want_pg = 0, ent = 0;
    int i;
    s.n_seqs = 5; s.offsets = off; s.mask = NULL;
    for (i = 0; i < 5; ++i) { old[i] = -1.0f; logp[i] = (float)(-1.0 + rho[i]); }
    c.entropy_coef = 0.0f;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, logp, old, NULL, adv, NULL, NULL, dl, &out));
    for (i = 0; i < 5; ++i) {
        double d = (double)logp[i] - old[i], r = exp(d);
        double rh = exp(d < log1p(-(double)0.2f) ? log1p(-(double)0.2f) : (d > log1p((double)0.28f) ? log1p((double)0.28f) : d));
        want_pg += fmax(-adv[i] * r, -adv[i] * rh) / 5;
        ent += -(double)logp[i] / 5;
    }
    CHECK_NEAR(want_pg, out.pg_loss, TOL_SCALAR);
    CHECK_NEAR(want_pg, out.loss, TOL_SCALAR);
    CHECK_NEAR(ent, out.entropy_loss, TOL_SCALAR);
    CHECK_NEAR(2.0 / 5, out.clipfrac, TOL_SCALAR);     /* tokens 1 and 3 */
    CHECK(out.clipfrac_dual == 0.0);
    CHECK_NEAR(-(0.1 + 0.5 - 0.5 - 0.5 + 0.5) / 5, out.ppo_kl, 1e-6, 1e-6);
    CHECK(dl[1] == 0.0f && dl[3] == 0.0f);              /* clipped: no gradient */
    CHECK_NEAR(-1.0 * exp((double)logp[0] - old[0]) / 5, dl[0], TOL_TOKEN);
    CHECK_NEAR(-1.0 * exp((double)logp[2] - old[2]) / 5, dl[2], TOL_TOKEN);   /* below 1-eps with A>0 flows */
    CHECK_NEAR(1.0 * exp((double)logp[4] - old[4]) / 5, dl[4], TOL_TOKEN);
    CHECK_EQ_INT(5, out.n_valid);
    CHECK_EQ_INT(5, out.n_selected);
}

void policy_loss_dual_clip_caps_negative_advantages(void)
{
    const int64_t off[] = { 0, 2 };
    float logp[2] = { (float)(-2.0 + log(5.0)), (float)(-2.0 + log(2.0)) }, old[2] = { -2, -2 }, adv[2] = { -1, -1 }, dl[2];
    vppo_loss_config c = vppo_loss_config_default();
    vppo_loss_out out;
    vppo_seqs s;
    s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    c.entropy_coef = 0.0f;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, logp, old, NULL, adv, NULL, NULL, dl, &out));
    /* token 0: r = 5 > 3: capped at -A*3 = 3, no gradient; token 1: r = 2 < 3: L1 = 2 */
    CHECK_NEAR((3.0 + 2.0) / 2, out.pg_loss, TOL_SCALAR);
    CHECK(dl[0] == 0.0f);
    CHECK_NEAR(2.0 / 2, dl[1], TOL_TOKEN);
    CHECK_NEAR(0.5, out.clipfrac_dual, TOL_SCALAR);
    c.clip_dual = 0.0f;   /* disabled */
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, logp, old, NULL, adv, NULL, NULL, dl, &out));
    CHECK_NEAR((5.0 + 2.0) / 2, out.pg_loss, TOL_SCALAR);
    CHECK_NEAR(5.0 / 2, dl[0], TOL_TOKEN);
    CHECK(out.clipfrac_dual == 0.0);
    adv[0] = adv[1] = 1;  /* positive advantages never meet the dual clip */
    c.clip_dual = 3.0f;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, logp, old, NULL, adv, NULL, NULL, dl, &out));
    CHECK(out.clipfrac_dual == 0.0);
    CHECK_NEAR(-(1.28 + 1.28) / 2, out.pg_loss, 1e-6, 1e-6);
}

void policy_loss_gradient_zero_outside_ratio_clamp(void)
{
    const int64_t off[] = { 0, 2 };
    float logp[2] = { -0.5f, -30.0f }, old[2] = { -30.0f, -0.5f }, adv[2] = { -1, 1 }, dl[2];
    vppo_loss_config c = vppo_loss_config_default();
    vppo_loss_out out;
    vppo_seqs s;
    s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    c.entropy_coef = 0.0f; c.clip_dual = 0.0f;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, logp, old, NULL, adv, NULL, NULL, dl, &out));
    /* rho = +29.5: r = exp(20), L1 taken (A<0, no dual) but the clamp is active;
       rho = -29.5: r = exp(-20), L1 > L2 taken, clamp active */
    CHECK(dl[0] == 0.0f && dl[1] == 0.0f);
    CHECK_NEAR((exp(20.0) - exp(-20.0)) / 2, out.pg_loss, TOL_SCALAR);
    CHECK(isfinite(out.loss));
}

void policy_loss_kl_k3_clamps(void)
{
    const int64_t off[] = { 0, 4 };
    /* k = logp - ref: -k = 1 (inside), 3 (value clamped at 10), 25 (x clamped), -15 (value clamped) */
    float logp[4] = { -1, -1, -1, -1 }, ref[4] = { 0, 2, 24, -16 }, old[4] = { -1, -1, -1, -1 }, adv[4] = { 0, 0, 0, 0 }, dl[4];
    vppo_loss_config c = vppo_loss_config_default();
    vppo_loss_out out;
    vppo_seqs s;
    s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    c.entropy_coef = 0.0f; c.kl_kind = VPPO_KL_K3; c.kl_coef = 1.0f;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, logp, old, ref, adv, NULL, NULL, dl, &out));
    CHECK_NEAR((exp(1.0) - 2 + 10 + 10 + 10) / 4, out.kl_loss, TOL_SCALAR);
    CHECK_NEAR((1 - exp(1.0)) / 4, dl[0], TOL_TOKEN);
    CHECK(dl[1] == 0.0f && dl[2] == 0.0f && dl[3] == 0.0f);
    CHECK_STATUS(VPPO_ERR_NULL, vppo_policy_loss(&c, &s, logp, old, NULL, adv, NULL, NULL, dl, &out));
}

void policy_loss_select_and_weight(void)
{
    const int64_t off[] = { 0, 4 };
    float logp[4] = { -1, -1.1f, -0.9f, -1.2f }, old[4] = { -1, -1, -1, -1 }, adv[4] = { 1, 1, 1, 1 }, dl[4];
    float w[4] = { 0.5f, 2.0f, 0.0f, 1.0f };
    uint8_t sel[4] = { 1, 0, 1, 7 };   /* nonzero = 1 */
    vppo_loss_config c = vppo_loss_config_default();
    vppo_loss_out out;
    vppo_seqs s;
    int i;
    double want = 0;
    s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, logp, old, NULL, adv, sel, w, dl, &out));
    CHECK_EQ_INT(2, out.n_selected);   /* w = 0.5, 0, 0, 1 */
    for (i = 0; i < 4; ++i) {
        double d = (double)logp[i] - old[i];
        double wt = (sel[i] != 0) * (double)w[i];
        want += wt * fmax(-exp(d), -exp(fmin(fmax(d, log1p(-(double)0.2f)), log1p((double)0.28f)))) / 4;
    }
    CHECK_NEAR(want, out.pg_loss, TOL_SCALAR);
    /* unselected tokens still carry the entropy penalty gradient, -coef / N */
    CHECK_NEAR(-(double)0.06f / 4, dl[1], TOL_TOKEN);
    CHECK_NEAR(-(double)0.06f / 4, dl[2], TOL_TOKEN);
    CHECK_NEAR(0.5 * -exp((double)logp[0] - old[0]) / 4 - (double)0.06f / 4, dl[0], TOL_TOKEN);
    w[0] = NAN;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_policy_loss(&c, &s, logp, old, NULL, adv, sel, w, dl, &out));
}

void policy_loss_empty_batches_are_zero(void)
{
    const int64_t off0[] = { 3 }, off[] = { 0, 0, 3, 3 };
    const uint8_t none[3] = { 0, 0, 0 };
    float x[3] = { NAN, NAN, NAN }, dl[3] = { 5, 5, 5 };
    vppo_loss_out out;
    vppo_seqs s;
    int agg;
    for (agg = VPPO_AGG_TOKEN_MEAN; agg <= VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM; ++agg) {
        vppo_loss_config c = vppo_loss_config_default();
        c.agg = (vppo_agg)agg;
        s.n_seqs = 0; s.offsets = off0; s.mask = NULL;   /* no sequences at all */
        memset(&out, 0x7f, sizeof out);
        CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, x, x, NULL, x, NULL, NULL, dl, &out));
        CHECK(out.loss == 0 && out.pg_loss == 0 && out.entropy_loss == 0 && out.clipfrac == 0 &&
              out.ppo_kl == 0 && out.n_valid == 0 && out.n_selected == 0);
        s.n_seqs = 3; s.offsets = off; s.mask = none;    /* sequences, all masked or empty */
        CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, x, x, NULL, x, NULL, NULL, dl, &out));
        CHECK(out.loss == 0 && out.pg_loss == 0 && out.kl_loss == 0 && out.n_valid == 0);
        CHECK(dl[0] == 0 && dl[1] == 0 && dl[2] == 0);
    }
    {   /* a single valid token */
        const uint8_t one[3] = { 0, 1, 0 };
        float logp[3] = { NAN, -0.5f, NAN }, old[3] = { NAN, -0.5f, NAN }, adv[3] = { NAN, 2, NAN };
        vppo_loss_config c = vppo_loss_config_default();
        s.n_seqs = 3; s.offsets = off; s.mask = one;
        CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, logp, old, NULL, adv, NULL, NULL, dl, &out));
        CHECK_NEAR(-2.0 + 0.5 * (double)0.06f, out.loss, TOL_SCALAR);
        CHECK_NEAR(-2.0 - (double)0.06f, dl[1], TOL_TOKEN);
        CHECK(dl[0] == 0 && dl[2] == 0 && out.n_valid == 1);
    }
}

void policy_loss_global_denom(void)
{
    rng r = rng_make(701);
    loss_batch L = loss_batch_make(&r, 0);
    vppo_loss_config c = vppo_loss_config_default();
    vppo_loss_out local, global;
    float *d1 = floats_new(L.b.n, 0), *d2 = floats_new(L.b.n, 0);
    int64_t t;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &L.b.s, L.logp, L.logp_old, NULL, L.adv, L.select, NULL, d1, &local));
    c.denom = 4.0 * (double)local.n_valid;   /* as if this were a quarter of the mini-batch */
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &L.b.s, L.logp, L.logp_old, NULL, L.adv, L.select, NULL, d2, &global));
    CHECK_NEAR(local.loss / 4, global.loss, TOL_SCALAR);
    for (t = 0; t < L.b.n; ++t) CHECK_NEAR(d1[t] / 4, d2[t], TOL_TOKEN);
    CHECK_NEAR(local.clipfrac, global.clipfrac, 0, 0);   /* metrics stay local means */
    c.agg = VPPO_AGG_SEQ_MEAN_TOKEN_MEAN; c.denom = 0;   /* S = B by default, denom replaces it */
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &L.b.s, L.logp, L.logp_old, NULL, L.adv, NULL, NULL, NULL, &local));
    c.denom = 2.0 * (double)L.b.n_seqs;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &L.b.s, L.logp, L.logp_old, NULL, L.adv, NULL, NULL, NULL, &global));
    CHECK_NEAR(local.loss / 2, global.loss, TOL_SCALAR);
    free(d1); free(d2); loss_batch_free(&L);
}

void policy_loss_validates_config(void)
{
    const int64_t off[] = { 0, 2 };
    float x[2] = { -1, -1 }, dl[2] = { 7, 7 };
    vppo_loss_out out;
    vppo_seqs s;
    vppo_loss_config c;
    s.n_seqs = 1; s.offsets = off; s.mask = NULL;
#define BAD_FIELD(field, value) do { c = vppo_loss_config_default(); c.field = value; \
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_policy_loss(&c, &s, x, x, x, x, NULL, NULL, dl, &out)); } while (0)
    BAD_FIELD(clip_low, -0.1f);
    BAD_FIELD(clip_low, 1.5f);
    BAD_FIELD(clip_low, NAN);
    BAD_FIELD(clip_high, -0.1f);
    BAD_FIELD(clip_high, INFINITY);
    BAD_FIELD(clip_dual, 0.5f);        /* (0, 1] is outside the domain */
    BAD_FIELD(clip_dual, 1.0f);
    BAD_FIELD(clip_dual, -3.0f);
    BAD_FIELD(clip_dual, INFINITY);
    BAD_FIELD(pg_kind, (vppo_pg_kind)2);
    BAD_FIELD(ratio_level, (vppo_ratio_level)3);
    BAD_FIELD(agg, (vppo_agg)4);
    BAD_FIELD(agg, (vppo_agg)-1);
    BAD_FIELD(kl_kind, (vppo_kl_kind)5);
    BAD_FIELD(kl_coef, -1.0f);
    BAD_FIELD(kl_coef, NAN);
    BAD_FIELD(entropy_coef, INFINITY);
    BAD_FIELD(denom, -1.0);
    BAD_FIELD(denom, NAN);
    c = vppo_loss_config_default(); c.agg = VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM; c.agg_norm = 0.0;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_policy_loss(&c, &s, x, x, NULL, x, NULL, NULL, dl, &out));
    c.agg = VPPO_AGG_TOKEN_MEAN;   /* agg_norm unused: not checked */
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, x, x, NULL, x, NULL, NULL, NULL, &out));
    c = vppo_loss_config_default(); c.entropy_coef = -0.5f;   /* an entropy bonus is allowed */
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, x, x, NULL, x, NULL, NULL, NULL, &out));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_policy_loss(NULL, &s, x, x, NULL, x, NULL, NULL, dl, &out));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_policy_loss(&c, &s, x, x, NULL, x, NULL, NULL, dl, NULL));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_policy_loss(&c, &s, NULL, x, NULL, x, NULL, NULL, dl, &out));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_policy_loss(&c, &s, x, NULL, NULL, x, NULL, NULL, dl, &out));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_policy_loss(&c, &s, x, x, NULL, NULL, NULL, NULL, dl, &out));
    CHECK(dl[0] == 7 && dl[1] == 7);
#undef BAD_FIELD
}
