/* tests/test_rollout.c - rollout correction (vppo_rollout_correction): importance weights
   and rejection masks from trainer and rollout log-probs, against a float64 reference
   written from the header's description (verl's rollout_corr_helper semantics). */
#include "test.h"

/* ------------------------------------------------------------- the reference */

typedef struct ref_rc {
    double *w;          /* [N] weight as written: keep ? w / norm : 0; 0 at invalid positions */
    uint8_t *keep;      /* [N] */
    vppo_rc_out out;
} ref_rc;

static double ref_rc_stat(vppo_rc_rs kind, double l)
{
    double lc = l < -20 ? -20 : (l > 20 ? 20 : l);
    if (kind == VPPO_RC_RS_K1) return -lc;
    if (kind == VPPO_RC_RS_K2) return lc * lc / 2;
    if (kind == VPPO_RC_RS_K3) return exp(lc) - 1 - lc;
    return 0;
}

static double clamp20(double x) { return x < -20 ? -20 : (x > 20 ? 20 : x); }

/* Per token: l, the IS aggregate L and the rejection aggregate S (a sequence's value at
   each of its valid tokens), then weights, keeps and metrics in separate plain loops. */
static ref_rc ref_rollout(const vppo_rc_config *c, const vppo_seqs *s, const float *logp, const float *logp_rollout)
{
    const int64_t n_all = s->offsets[s->n_seqs];
    double *l = doubles_new(n_all, 0), *L = doubles_new(n_all, 0), *S = doubles_new(n_all, 0);
    double *raw = doubles_new(n_all, 0);
    uint8_t *valid = (uint8_t *)calloc((size_t)n_all + 1, 1);
    double is_lo = c->is_lower > 0 ? c->is_lower : 1 / c->is_upper;
    double rs_lo = c->rs_lower > 0 ? c->rs_lower : 1 / c->rs_upper;
    double norm = 1, sum, mean;
    int64_t b, t, n = 0, nseq = 0, kept = 0;
    ref_rc R;
    memset(&R.out, 0, sizeof R.out);
    R.w = doubles_new(n_all, 0);
    R.keep = (uint8_t *)calloc((size_t)n_all + 1, 1);
    for (t = s->offsets[0]; t < n_all; ++t) {
        valid[t] = !s->mask || s->mask[t];
        if (valid[t]) l[t] = (double)logp[t] - (double)logp_rollout[t];
    }
    for (b = 0; b < s->n_seqs; ++b) {
        double lsum = 0, ssum = 0, smax = -INFINITY;
        int64_t nb = 0;
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t) if (valid[t]) {
            double st = ref_rc_stat(c->rs_kind, l[t]);
            lsum += l[t]; ssum += st; smax = st > smax ? st : smax; ++nb;
        }
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t) if (valid[t]) {
            L[t] = c->is_level == VPPO_RC_SEQ_SUM ? lsum : c->is_level == VPPO_RC_SEQ_MEAN ? lsum / nb : l[t];
            S[t] = c->rs_level == VPPO_RC_SEQ_SUM ? ssum : c->rs_level == VPPO_RC_SEQ_MEAN ? ssum / nb :
                   c->rs_level == VPPO_RC_SEQ_MAX ? smax : ref_rc_stat(c->rs_kind, l[t]);
        }
    }
    for (t = s->offsets[0]; t < n_all; ++t) if (valid[t]) {
        double ratio = exp(clamp20(L[t]));
        raw[t] = c->is_mode == VPPO_RC_IS_NONE ? 1 :
                 c->is_mode == VPPO_RC_IS_TRUNCATE ? (ratio < c->is_upper ? ratio : c->is_upper) :
                 (ratio >= c->is_lower && ratio <= c->is_upper ? ratio : 0);
        R.keep[t] = c->rs_kind == VPPO_RC_RS_NONE ? 1 :
                    c->rs_kind == VPPO_RC_RS_K1 ? (S[t] >= log(rs_lo) && S[t] <= log(c->rs_upper)) :
                    S[t] <= c->rs_upper;
        ++n; kept += R.keep[t];
    }
    /* batch mean of the weights: over tokens, or over sequences (one weight each) */
    sum = 0;
    for (t = s->offsets[0]; t < n_all; ++t) if (valid[t]) sum += raw[t];
    R.out.is_mean = n ? sum / n : 0;
    {
        double seq_sum = 0, high = 0, low = 0, chi = 0, ppl = 0, rej_seqs = 0;
        for (b = 0; b < s->n_seqs; ++b) {
            double lsum = 0, lp = 0, lr = 0;
            int64_t nb = 0, first = -1, rejected = 0;
            for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t) if (valid[t]) {
                if (first < 0) first = t;
                lsum += l[t]; lp += logp[t]; lr += logp_rollout[t]; ++nb; rejected |= !R.keep[t];
            }
            if (!nb) continue;
            ++nseq;
            seq_sum += raw[first];
            high += L[first] > log(c->is_upper); low += L[first] < log(is_lo);
            chi += exp(2 * clamp20(lsum)) - 1;
            ppl += lr / nb - lp / nb;
            rej_seqs += (double)rejected;
        }
        if (c->is_batch_normalize) {
            mean = c->is_level == VPPO_RC_TOKEN ? R.out.is_mean : (nseq ? seq_sum / nseq : 0);
            if (mean > 1e-8) norm = mean;
        }
        if (c->is_level != VPPO_RC_TOKEN) {
            R.out.is_frac_high = nseq ? high / nseq : 0;
            R.out.is_frac_low = nseq ? low / nseq : 0;
        }
        R.out.chi2_seq = nseq ? chi / nseq : 0;
        R.out.log_ppl_diff = nseq ? ppl / nseq : 0;
        R.out.rs_frac_seq = nseq ? rej_seqs / nseq : 0;
    }
    R.out.n_valid = n; R.out.n_seqs_valid = nseq; R.out.n_kept = kept;
    R.out.is_norm = norm;
    R.out.is_min = n ? INFINITY : 0; R.out.is_max = n ? -INFINITY : 0;
    R.out.rs_min = n ? INFINITY : 0; R.out.rs_max = n ? -INFINITY : 0;
    {
        double high = 0, low = 0, rs = 0, kl = 0, k3 = 0, chi = 0;
        for (t = s->offsets[0]; t < n_all; ++t) if (valid[t]) {
            double lc = clamp20(l[t]);
            R.w[t] = R.keep[t] ? raw[t] / norm : 0;
            if (raw[t] < R.out.is_min) R.out.is_min = raw[t];
            if (raw[t] > R.out.is_max) R.out.is_max = raw[t];
            high += exp(lc) > c->is_upper; low += exp(lc) < is_lo;   /* token level: the clamped ratio */
            rs += S[t];
            if (S[t] < R.out.rs_min) R.out.rs_min = S[t];
            if (S[t] > R.out.rs_max) R.out.rs_max = S[t];
            kl += -l[t]; k3 += exp(lc) - 1 - lc; chi += exp(2 * lc) - 1;
        }
        if (c->is_level == VPPO_RC_TOKEN) { R.out.is_frac_high = n ? high / n : 0; R.out.is_frac_low = n ? low / n : 0; }
        R.out.rs_mean = n ? rs / n : 0;
        R.out.rs_frac_token = n ? (double)(n - kept) / n : 0;
        R.out.kl = n ? kl / n : 0; R.out.k3_kl = n ? k3 / n : 0; R.out.chi2_token = n ? chi / n : 0;
        /* variance and ESS from their definitions, E[(w - mean)^2] and 1 / E[(w / mean)^2] */
        R.out.is_std = 0; R.out.is_ess = 0;
        if (n) {
            double var = 0, e2 = 0;
            for (t = s->offsets[0]; t < n_all; ++t) if (valid[t]) {
                var += (raw[t] - R.out.is_mean) * (raw[t] - R.out.is_mean);
                if (R.out.is_mean > 0) e2 += (raw[t] / R.out.is_mean) * (raw[t] / R.out.is_mean);
            }
            R.out.is_std = sqrt(var / n);
            R.out.is_ess = R.out.is_mean > 0 ? 1 / (e2 / n) : 0;
        }
    }
    free(l); free(L); free(S); free(raw); free(valid);
    return R;
}

static void ref_rc_free(ref_rc *R) { free(R->w); free(R->keep); }

/* ------------------------------------------------------------- helpers */

/* logp and logp_rollout of a random batch: token log-ratios ~ N(0, spread), a few far
   out (|l| in 15..30, past the +-20 clamp); NaN at invalid positions. */
static void rc_inputs(rng *r, const test_batch *B, double spread, float **logp, float **logp_rollout)
{
    int64_t t;
    *logp = floats_new(B->n, NAN); *logp_rollout = floats_new(B->n, NAN);
    for (t = 0; t < B->n; ++t) {
        double l;
        if (!B->mask[t]) continue;
        l = rng_uniform(r) < 0.02 ? rng_range(r, 15, 30) * (rng_uniform(r) < 0.5 ? -1 : 1) : spread * rng_normal(r);
        (*logp_rollout)[t] = (float)-rng_range(r, 0.01, 5);
        (*logp)[t] = (float)((*logp_rollout)[t] + l);
    }
}

/* The library against the reference on one batch and config; returns 1 when all agree. */
static int check_rc(const vppo_rc_config *c, const test_batch *B, const float *logp, const float *logp_rollout)
{
    float *w = floats_new(B->n, NAN);
    uint8_t *keep = (uint8_t *)malloc((size_t)B->n + 1);
    vppo_rc_out o;
    ref_rc R = ref_rollout(c, &B->s, logp, logp_rollout);
    int64_t t;
    int fails_before = test_failed_now;
    memset(keep, 7, (size_t)B->n + 1);
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(c, &B->s, logp, logp_rollout, w, keep, &o));
    for (t = 0; t < B->n; ++t) {
        CHECK_EQ_INT(R.keep[t], keep[t]);
        CHECK_NEAR(R.w[t], w[t], TOL_TOKEN);
    }
    CHECK_EQ_INT(R.out.n_valid, o.n_valid);
    CHECK_EQ_INT(R.out.n_seqs_valid, o.n_seqs_valid);
    CHECK_EQ_INT(R.out.n_kept, o.n_kept);
    CHECK_NEAR(R.out.is_mean, o.is_mean, TOL_SCALAR);
    CHECK_NEAR(R.out.is_std, o.is_std, TOL_SCALAR);
    CHECK_NEAR(R.out.is_min, o.is_min, TOL_SCALAR);
    CHECK_NEAR(R.out.is_max, o.is_max, TOL_SCALAR);
    CHECK_NEAR(R.out.is_ess, o.is_ess, TOL_SCALAR);
    CHECK_NEAR(R.out.is_frac_high, o.is_frac_high, TOL_SCALAR);
    CHECK_NEAR(R.out.is_frac_low, o.is_frac_low, TOL_SCALAR);
    CHECK_NEAR(R.out.is_norm, o.is_norm, TOL_SCALAR);
    CHECK_NEAR(R.out.rs_mean, o.rs_mean, TOL_SCALAR);
    CHECK_NEAR(R.out.rs_min, o.rs_min, TOL_SCALAR);
    CHECK_NEAR(R.out.rs_max, o.rs_max, TOL_SCALAR);
    CHECK_NEAR(R.out.rs_frac_token, o.rs_frac_token, TOL_SCALAR);
    CHECK_NEAR(R.out.rs_frac_seq, o.rs_frac_seq, TOL_SCALAR);
    CHECK_NEAR(R.out.kl, o.kl, TOL_SCALAR);
    CHECK_NEAR(R.out.k3_kl, o.k3_kl, TOL_SCALAR);
    CHECK_NEAR(R.out.chi2_token, o.chi2_token, TOL_SCALAR);
    CHECK_NEAR(R.out.chi2_seq, o.chi2_seq, TOL_SCALAR);
    CHECK_NEAR(R.out.log_ppl_diff, o.log_ppl_diff, TOL_SCALAR);
    ref_rc_free(&R); free(w); free(keep);
    return test_failed_now == fails_before;
}

/* ------------------------------------------------------------- tests */

void rc_config_default_is_verl_token_tis(void)
{
    vppo_rc_config c = vppo_rc_config_default();
    CHECK(c.is_mode == VPPO_RC_IS_TRUNCATE && c.is_level == VPPO_RC_TOKEN);
    CHECK(c.is_upper == 2.0 && c.is_lower == 0.0 && c.is_batch_normalize == 0);
    CHECK(c.rs_kind == VPPO_RC_RS_NONE);
}

/* Every IS mode and level, with every rejection kind and level, with and without batch
   normalization, on batches with holes and empty sequences. */
void rollout_correction_matches_reference_every_mode(void)
{
    rng r = rng_make(1800);
    int batch, is, il, rk, rl, norm, bad = 0, configs = 0;
    for (batch = 0; batch < 2; ++batch) {
        test_batch B = batch_make(&r, 9, 21, 0, 1);
        float *logp, *logp_rollout;
        rc_inputs(&r, &B, batch ? 0.7 : 0.15, &logp, &logp_rollout);
        for (is = VPPO_RC_IS_NONE; is <= VPPO_RC_IS_MASK; ++is)
            for (il = VPPO_RC_TOKEN; il <= VPPO_RC_SEQ_MEAN; ++il)
                for (rk = VPPO_RC_RS_NONE; rk <= VPPO_RC_RS_K3; ++rk)
                    for (rl = VPPO_RC_TOKEN; rl <= VPPO_RC_SEQ_MAX; ++rl)
                        for (norm = 0; norm < 2; ++norm) {
                            vppo_rc_config c = vppo_rc_config_default();
                            if (rk == VPPO_RC_RS_K1 && rl == VPPO_RC_SEQ_MAX) continue;
                            c.is_mode = (vppo_rc_is)is; c.is_level = (vppo_rc_level)il;
                            c.is_upper = 1.6; c.is_lower = is == VPPO_RC_IS_MASK ? 0.5 : 0.0;
                            c.is_batch_normalize = norm;
                            c.rs_kind = (vppo_rc_rs)rk; c.rs_level = (vppo_rc_level)rl;
                            /* thresholds that keep some and reject some at each level */
                            c.rs_upper = rk == VPPO_RC_RS_K1 ? (rl == VPPO_RC_SEQ_SUM ? 3.0 : 1.5)
                                       : (rl == VPPO_RC_SEQ_SUM ? 0.4 : rl == VPPO_RC_SEQ_MAX ? 0.2 : 0.02);
                            c.rs_lower = rk == VPPO_RC_RS_K1 && rl == VPPO_RC_TOKEN ? 0.8 : 0.0;
                            ++configs;
                            if (!check_rc(&c, &B, logp, logp_rollout)) {
                                ++bad;
                                test_fail(__FILE__, __LINE__, "config is=%d/%d rs=%d/%d norm=%d disagrees", is, il, rk, rl, norm);
                            }
                        }
        free(logp); free(logp_rollout); batch_free(&B);
    }
    CHECK_EQ_INT(0, bad);
    CHECK_EQ_INT(2 * 3 * 3 * (4 + 3 + 4 + 4) * 2, configs);   /* K1 has no SEQ_MAX */
}

/* The sweep above must reach both sides of every threshold, or it proves little: the
   default TIS at token level truncates some tokens and not others, MASK zeroes some,
   each rejection level rejects some tokens and keeps others. */
void rollout_correction_thresholds_are_exercised(void)
{
    rng r = rng_make(1801);
    test_batch B = batch_make(&r, 9, 21, 0, 1);
    float *logp, *logp_rollout, *w = floats_new(B.n, 0);
    uint8_t *keep = (uint8_t *)malloc((size_t)B.n);
    vppo_rc_config c = vppo_rc_config_default();
    vppo_rc_out o;
    int rl;
    memset(B.mask + 3 * B.len, 0, (size_t)B.len);   /* sequence 3 empty */
    rc_inputs(&r, &B, 0.7, &logp, &logp_rollout);
    c.is_upper = 1.6;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &B.s, logp, logp_rollout, w, keep, &o));
    CHECK(o.is_frac_high > 0.05 && o.is_frac_high < 0.95);
    CHECK(o.is_max == 1.6 && o.is_min < 1.0);
    c.is_mode = VPPO_RC_IS_MASK; c.is_lower = 0.5;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &B.s, logp, logp_rollout, w, keep, &o));
    CHECK(o.is_min == 0.0 && o.is_max <= 1.6 && o.is_max > 1.0);
    c = vppo_rc_config_default();
    c.rs_kind = VPPO_RC_RS_K3;
    for (rl = VPPO_RC_TOKEN; rl <= VPPO_RC_SEQ_MAX; ++rl) {
        c.rs_level = (vppo_rc_level)rl;
        c.rs_upper = rl == VPPO_RC_SEQ_SUM ? 3.0 : rl == VPPO_RC_SEQ_MAX ? 1.0 : 0.2;
        CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &B.s, logp, logp_rollout, w, keep, &o));
        CHECK(o.n_kept > 0 && o.n_kept < o.n_valid);
        CHECK(rl == VPPO_RC_TOKEN || (o.rs_frac_seq > 0.0 && o.rs_frac_seq < 1.0));
        CHECK(rl != VPPO_RC_TOKEN || o.rs_frac_seq > o.rs_frac_token);
    }
    CHECK(o.n_seqs_valid < B.n_seqs);   /* the batch has empty sequences */
    free(logp); free(logp_rollout); free(w); free(keep); batch_free(&B);
}

/* Values worked out by hand: one sequence of three tokens with log-ratios ln 3, 0, ln 0.25. */
void rollout_correction_hand_worked_values(void)
{
    const int64_t off[2] = { 0, 3 };
    const vppo_seqs s = { 1, off, NULL };
    const float lr[3] = { -2.0f, -1.0f, -0.5f };
    float lp[3], w[3];
    uint8_t keep[3];
    vppo_rc_config c = vppo_rc_config_default();
    vppo_rc_out o;
    lp[0] = (float)(lr[0] + log(3.0)); lp[1] = lr[1]; lp[2] = (float)(lr[2] + log(0.25));
    /* token TIS at 2: min(3, 2), 1, 0.25 */
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    CHECK_NEAR(2.0, w[0], TOL_TOKEN); CHECK_NEAR(1.0, w[1], TOL_TOKEN); CHECK_NEAR(0.25, w[2], TOL_TOKEN);
    CHECK_NEAR(1.0 / 3, o.is_frac_high, TOL_SCALAR);   /* 3 > 2 */
    CHECK_NEAR(1.0 / 3, o.is_frac_low, TOL_SCALAR);    /* 0.25 < 1/2 */
    CHECK_NEAR(3.25 / 3, o.is_mean, TOL_SCALAR);
    /* sequence level: product 0.75; geometric: 0.75^(1/3) */
    c.is_level = VPPO_RC_SEQ_SUM;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    CHECK_NEAR(0.75, w[0], TOL_TOKEN); CHECK_NEAR(0.75, w[2], TOL_TOKEN);
    c.is_level = VPPO_RC_SEQ_MEAN;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    CHECK_NEAR(pow(0.75, 1.0 / 3), w[1], TOL_TOKEN);
    /* IcePop [0.5, 2]: 3 and 0.25 are out, 1 stays */
    c.is_level = VPPO_RC_TOKEN; c.is_mode = VPPO_RC_IS_MASK; c.is_lower = 0.5;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    CHECK(w[0] == 0.0f && w[2] == 0.0f); CHECK_NEAR(1.0, w[1], TOL_TOKEN);
    /* batch normalization of those: mean 1/3, weights 0, 3, 0 */
    c.is_batch_normalize = 1;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    CHECK_NEAR(3.0, w[1], TOL_TOKEN); CHECK_NEAR(1.0 / 3, o.is_norm, TOL_SCALAR);
    CHECK_NEAR(1.0 / 3, o.is_ess, TOL_SCALAR);   /* mean^2 / mean(w^2) = (1/9) / (1/3) */
    /* rejection K1 token, ratios kept in [1/2, 2] (verl's -l against ln bounds): ln 3
       gives -ln 3 < ln 1/2, ln 0.25 gives ln 4 > ln 2 */
    c = vppo_rc_config_default(); c.is_mode = VPPO_RC_IS_NONE;
    c.rs_kind = VPPO_RC_RS_K1; c.rs_upper = 2.0;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    CHECK(keep[0] == 0 && keep[1] == 1 && keep[2] == 0);
    CHECK(w[0] == 0.0f && w[1] == 1.0f && w[2] == 0.0f);
    CHECK_NEAR(2.0 / 3, o.rs_frac_token, TOL_SCALAR); CHECK_NEAR(1.0, o.rs_frac_seq, TOL_SCALAR);
    /* K2 at sequence max: max(ln^2 3, ln^2 4)/2 = 0.961 > 0.9: the whole sequence goes */
    c.rs_kind = VPPO_RC_RS_K2; c.rs_level = VPPO_RC_SEQ_MAX; c.rs_upper = 0.9;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    CHECK(keep[0] == 0 && keep[1] == 0 && keep[2] == 0 && o.n_kept == 0);
    CHECK_NEAR(log(4.0) * log(4.0) / 2, o.rs_max, TOL_SCALAR);
    c.rs_upper = 1.0;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    CHECK(o.n_kept == 3);
    /* off-policy metrics: kl = mean(-l) = -(ln 3 + ln 0.25)/3 */
    CHECK_NEAR(-(log(3.0) + log(0.25)) / 3, o.kl, TOL_SCALAR);
    CHECK_NEAR((3 - 1 - log(3.0) + 0.25 - 1 - log(0.25)) / 3, o.k3_kl, TOL_SCALAR);
    CHECK_NEAR((9 - 1 + 0 + 1.0 / 16 - 1) / 3, o.chi2_token, TOL_SCALAR);
    CHECK_NEAR(0.75 * 0.75 - 1, o.chi2_seq, TOL_SCALAR);
}

/* Ratios are exp(clamp(L, -20, 20)): a token log-ratio of 30 has raw ratio e^20 (then
   truncated), a sequence sum of -45 has ratio e^-20, not 0. */
void rollout_correction_clamps_log_ratios_at_20(void)
{
    const int64_t off[3] = { 0, 1, 4 };
    const vppo_seqs s = { 2, off, NULL };
    const float lr[4] = { -1, -1, -1, -1 };
    const float lp[4] = { 29, -16, -16, -16 };
    float w[4];
    vppo_rc_config c = vppo_rc_config_default();
    vppo_rc_out o;
    c.is_upper = 1e9;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, NULL, &o));
    CHECK_NEAR(exp(20.0), w[0], TOL_TOKEN);
    CHECK_NEAR(exp(-15.0), w[1], TOL_TOKEN);
    c.is_level = VPPO_RC_SEQ_SUM;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, NULL, &o));
    CHECK_NEAR(exp(20.0), w[0], TOL_TOKEN);
    CHECK_NEAR(exp(-20.0), w[3], TOL_TOKEN);
    CHECK(w[3] > 0.0f);
    CHECK_NEAR((exp(40.0) - 1 + exp(-40.0) - 1) / 2, o.chi2_seq, TOL_SCALAR);
}

/* Empty batches: no sequences, or all positions masked: every metric 0, norm 1, nothing
   NaN, outputs zero over the flat range. */
void rollout_correction_empty_batches_are_zero(void)
{
    const int64_t off0[1] = { 0 }, off[3] = { 0, 2, 4 };
    const uint8_t none[4] = { 0, 0, 0, 0 };
    const vppo_seqs s0 = { 0, off0, NULL }, s = { 2, off, none };
    const float lp[4] = { NAN, NAN, NAN, NAN };
    float w[4] = { 5, 5, 5, 5 };
    uint8_t keep[4] = { 5, 5, 5, 5 };
    vppo_rc_config c = vppo_rc_config_default();
    vppo_rc_out o;
    int i;
    c.is_batch_normalize = 1; c.rs_kind = VPPO_RC_RS_K3; c.rs_upper = 1.0; c.rs_level = VPPO_RC_SEQ_MEAN;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s0, lp, lp, w, keep, &o));
    CHECK(o.n_valid == 0 && o.n_seqs_valid == 0 && o.is_norm == 1.0 && o.is_mean == 0.0 && o.is_ess == 0.0);
    CHECK(w[0] == 5.0f && keep[0] == 5);   /* an empty flat range: nothing written */
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lp, w, keep, &o));
    CHECK(o.n_valid == 0 && o.n_kept == 0 && o.is_norm == 1.0);
    CHECK(o.kl == 0.0 && o.k3_kl == 0.0 && o.chi2_seq == 0.0 && o.rs_frac_seq == 0.0 && o.rs_max == 0.0);
    for (i = 0; i < 4; ++i) CHECK(w[i] == 0.0f && keep[i] == 0);
}

/* Outputs cover [offsets[0], offsets[B]) exactly; either may be NULL (metrics only). */
void rollout_correction_writes_exactly_the_flat_range(void)
{
    const int64_t off[3] = { 2, 4, 5 };
    const uint8_t mask[7] = { 1, 1, 1, 0, 1, 1, 1 };
    const vppo_seqs s = { 2, off, mask };
    const float lr[7] = { -1, -1, -1, -1, -1, -1, -1 };
    const float lp[7] = { -1, -1, -0.5f, NAN, -1.5f, -1, -1 };
    float w[7] = { 9, 9, 9, 9, 9, 9, 9 };
    uint8_t keep[7] = { 9, 9, 9, 9, 9, 9, 9 };
    vppo_rc_config c = vppo_rc_config_default();
    vppo_rc_out o, o2;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    CHECK(w[0] == 9.0f && w[1] == 9.0f && w[5] == 9.0f && w[6] == 9.0f);
    CHECK(keep[0] == 9 && keep[1] == 9 && keep[5] == 9 && keep[6] == 9);
    CHECK(w[3] == 0.0f && keep[3] == 0);
    CHECK_NEAR(exp(0.5), w[2], TOL_TOKEN); CHECK_NEAR(exp(-0.5), w[4], TOL_TOKEN);
    CHECK(keep[2] == 1 && keep[4] == 1);
    CHECK_EQ_INT(2, o.n_valid);
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, NULL, NULL, &o2));
    CHECK(memcmp(&o, &o2, sizeof o) == 0);
}

/* NULLs, every config domain, NaN and infinities at valid positions; nothing written. */
void rollout_correction_rejects_bad_input(void)
{
    const int64_t off[2] = { 0, 3 }, bad_off[2] = { 3, 1 };
    const uint8_t mask[3] = { 1, 0, 1 };
    const vppo_seqs s = { 1, off, mask }, sb = { 1, bad_off, NULL };
    float lp[3] = { -1, NAN, -2 };
    const float lr[3] = { -1, -1, -1 };
    float w[3] = { 7, 7, 7 };
    uint8_t keep[3] = { 7, 7, 7 };
    vppo_rc_out o;
    vppo_rc_config c = vppo_rc_config_default(), d;
    int i;
    CHECK_STATUS(VPPO_ERR_NULL, vppo_rollout_correction(NULL, &s, lp, lr, w, keep, &o));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_rollout_correction(&c, NULL, lp, lr, w, keep, &o));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_rollout_correction(&c, &s, NULL, lr, w, keep, &o));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_rollout_correction(&c, &s, lp, NULL, w, keep, &o));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_rollout_correction(&c, &s, lp, lr, w, keep, NULL));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_rollout_correction(&c, &sb, lp, lr, w, keep, &o));
#define BAD_RC(field, value) d = c; d.field = value; \
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_rollout_correction(&d, &s, lp, lr, w, keep, &o))
    BAD_RC(is_mode, (vppo_rc_is)3);
    BAD_RC(is_mode, (vppo_rc_is)-1);
    BAD_RC(is_level, VPPO_RC_SEQ_MAX);
    BAD_RC(is_level, (vppo_rc_level)9);
    BAD_RC(is_upper, 0.0);
    BAD_RC(is_upper, -2.0);
    BAD_RC(is_upper, INFINITY);
    BAD_RC(is_upper, NAN);
    BAD_RC(is_lower, 3.0);      /* above is_upper */
    BAD_RC(is_lower, -0.5);
    BAD_RC(is_lower, NAN);
    c.is_mode = VPPO_RC_IS_MASK;
    BAD_RC(is_lower, 0.0);      /* MASK needs its lower bound */
    c = vppo_rc_config_default();
    BAD_RC(rs_kind, (vppo_rc_rs)4);
    c.rs_kind = VPPO_RC_RS_K2; c.rs_upper = 1.0;
    BAD_RC(rs_upper, 0.0);
    BAD_RC(rs_upper, NAN);
    BAD_RC(rs_level, (vppo_rc_level)4);
    c.rs_kind = VPPO_RC_RS_K1;
    BAD_RC(rs_level, VPPO_RC_SEQ_MAX);
    BAD_RC(rs_lower, 2.0);
    BAD_RC(rs_lower, INFINITY);
#undef BAD_RC
    /* a disabled part is not checked */
    d = vppo_rc_config_default(); d.is_mode = VPPO_RC_IS_NONE; d.is_upper = NAN; d.rs_upper = NAN;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&d, &s, lp, lr, w, keep, &o));
    for (i = 0; i < 3; ++i) { w[i] = 7; keep[i] = 7; }
    c = vppo_rc_config_default();
    lp[0] = NAN;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    lp[0] = -INFINITY;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_rollout_correction(&c, &s, lp, lr, w, keep, &o));
    lp[0] = -1;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &s, lp, lr, NULL, NULL, &o));   /* NaN at masked 1 */
    for (i = 0; i < 3; ++i) { w[i] = 7; keep[i] = 7; }
    {
        float lr_bad[3] = { -1, -1, INFINITY };
        CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_rollout_correction(&c, &s, lp, lr_bad, w, keep, &o));
    }
    for (i = 0; i < 3; ++i) CHECK(w[i] == 7.0f && keep[i] == 7);
}

/* The weight and keep outputs feed vppo_policy_loss: with keep as the loss's mask and
   weight as its weight, the loss is the reference loss on those inputs, and rejected
   tokens leave the token-mean denominator (verl's modified response_mask). */
void rollout_correction_feeds_policy_loss(void)
{
    rng r = rng_make(1802);
    test_batch B = batch_make(&r, 6, 16, 1, 1);
    float *logp, *logp_rollout, *w = floats_new(B.n, 0), *adv = floats_new(B.n, 0), *dlogp = floats_new(B.n, 0);
    float *logp_new = floats_new(B.n, NAN);
    uint8_t *keep = (uint8_t *)malloc((size_t)B.n);
    double *x = doubles_new(B.n, 0);
    vppo_rc_config c = vppo_rc_config_default();
    vppo_loss_config lc = vppo_loss_config_default();
    vppo_rc_out o;
    vppo_loss_out lo;
    ref_loss_terms want;
    vppo_seqs kept;
    int64_t t;
    rc_inputs(&r, &B, 0.4, &logp, &logp_rollout);
    for (t = 0; t < B.n; ++t) {
        adv[t] = (float)rng_normal(&r);
        if (B.mask[t]) logp_new[t] = (float)(logp[t] + 0.1 * rng_normal(&r));
        x[t] = logp_new[t];
    }
    c.is_level = VPPO_RC_SEQ_MEAN; c.rs_kind = VPPO_RC_RS_K3; c.rs_upper = 0.05;
    CHECK_STATUS(VPPO_OK, vppo_rollout_correction(&c, &B.s, logp, logp_rollout, w, keep, &o));
    CHECK(o.n_kept > 0 && o.n_kept < o.n_valid);
    kept = B.s; kept.mask = keep;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&lc, &kept, logp_new, logp, NULL, adv, NULL, w, dlogp, &lo));
    want = ref_policy_loss(&lc, &kept, x, x, logp, NULL, adv, NULL, w);
    CHECK_NEAR(want.loss, lo.loss, TOL_SCALAR);
    CHECK_EQ_INT(o.n_kept, lo.n_valid);
    free(logp); free(logp_rollout); free(w); free(adv); free(dlogp); free(logp_new); free(keep); free(x);
    batch_free(&B);
}
