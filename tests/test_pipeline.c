/* tests/test_pipeline.c - docs/spec.md §8: vppo_prepare and vppo_step, checked stage by stage,
   against a literal transcription of the released VPPO training code's update step,
   and against plain DAPO. */
#include "test.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* ======================================================================
   The released code's update step (VPPO-RL, verl/workers/actor/dp_actor.py
   update_policy with use_vppo_on_perception, use_advantage_shaping and
   use_entropy_penalty; core_algos.compute_policy_loss), transcribed step by step on
   padded [B, L] arrays with a response mask, in double except where the original's
   float32 arithmetic decides a discrete outcome (k = ceil(n * 0.4) in float32).
   One mini-batch on one rank (world_size 1), split into micro-batches of `micro`.
   ====================================================================== */

typedef struct released_out {
    double loss;                 /* sum over micro-batches of the scaled loss = what backward sees */
    uint8_t select[16 * 48];     /* top_p_mask */
    double scaling[16];          /* advantage scaling factors */
    double threshold[4];         /* per micro-batch: mean k-th largest low_var_kl */
    double advantages[16];       /* GRPO advantages */
} released_out;

static double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

static double low_var_kl(float old, float aug)
{
    double diff = clampd((double)aug - (double)old, -20.0, 20.0);
    return clampd(exp(diff) - diff - 1, 0.0, 10.0);
}

/* compute_grpo_outcome_advantage: (score - mean) / (std + eps), std unbiased. */
static void released_grpo(const float *scores, int B, int group, double *adv)
{
    int g, i;
    for (g = 0; g < B / group; ++g) {
        double mean = 0, var = 0;
        for (i = 0; i < group; ++i) mean += scores[g * group + i];
        mean /= group;
        for (i = 0; i < group; ++i) var += (scores[g * group + i] - mean) * (scores[g * group + i] - mean);
        for (i = 0; i < group; ++i) adv[g * group + i] = (scores[g * group + i] - mean) / (sqrt(var / (group - 1)) + 1e-6);
    }
}

static void released_update(int B, int L, const uint8_t *mask, const double *logp, const float *old_in,
                            const float *aug_in, const float *scores, int micro, released_out *o)
{
    /* the released code's padded tensors hold 0 in padding (this test's NaN garbage is
       for the library, which must ignore it; torch would multiply it by the mask) */
    float old[16 * 48], aug[16 * 48];
    int b, t, m0;
    for (t = 0; t < B * L; ++t) { old[t] = mask[t] ? old_in[t] : 0.0f; aug[t] = mask[t] ? aug_in[t] : 0.0f; }
    double total_tokens = 0, gmin = 0, gmax = 0;
    int have_global = 0, n_valid_scores = 0;
    released_grpo(scores, B, 8, o->advantages);
    for (t = 0; t < B * L; ++t) total_tokens += mask[t];
    /* global min/max of sensitivity scores over the mini-batch (quantile 0 and 1) */
    for (b = 0; b < B; ++b) {
        double sum = 0, n = 0, score;
        for (t = 0; t < L; ++t) { sum += low_var_kl(old[b * L + t], aug[b * L + t]) * mask[b * L + t]; n += mask[b * L + t]; }
        score = sum / (n < 1 ? 1 : n);
        if (n > 0) {
            if (!n_valid_scores || score < gmin) gmin = score;
            if (!n_valid_scores || score > gmax) gmax = score;
            ++n_valid_scores;
        }
    }
    have_global = n_valid_scores > 1;
    o->loss = 0;
    for (m0 = 0; m0 < B; m0 += micro) {
        double sensitivity[16], mask_sum = 0, pg_sum = 0, logp_sum = 0, thr_sum = 0, mu = 0, loss;
        int n_thr = 0, n_mu = 0;
        for (b = m0; b < m0 + micro; ++b) {
            /* k = ceil(num_valid * top_p) in float32; rank by sorting low_var_kl descending */
            float n_valid = 0;
            int k, kth_rank_found = 0;
            for (t = 0; t < L; ++t) n_valid += mask[b * L + t];
            k = (int)ceilf(n_valid * 0.4f);
            for (t = 0; t < L; ++t) {
                int u, rank = 0;
                double v = low_var_kl(old[b * L + t], aug[b * L + t]);
                o->select[b * L + t] = 0;
                if (!mask[b * L + t]) continue;
                for (u = 0; u < L; ++u)
                    if (mask[b * L + u] && low_var_kl(old[b * L + u], aug[b * L + u]) > v) ++rank;
                o->select[b * L + t] = (uint8_t)(rank < k);
                if (rank == k - 1) { thr_sum += v; kth_rank_found = 1; }
            }
            n_thr += k > 0 && kth_rank_found;
            {   /* sensitivity score of this response */
                double sum = 0;
                for (t = 0; t < L; ++t) sum += low_var_kl(old[b * L + t], aug[b * L + t]) * mask[b * L + t];
                sensitivity[b - m0] = sum / (n_valid < 1 ? 1 : n_valid);
            }
        }
        o->threshold[m0 / micro] = n_thr ? thr_sum / n_thr : 0.0;
        /* advantage shaping with the dynamic target_max */
        for (b = m0; b < m0 + micro; ++b) o->scaling[b] = 1.0;
        if (have_global && gmax - gmin > 1e-6) {
            const double target_min = 0.9;
            double target_max;
            for (b = m0; b < m0 + micro; ++b) {
                double n = 0;
                for (t = 0; t < L; ++t) n += mask[b * L + t];
                if (n > 0) { mu += clampd((sensitivity[b - m0] - gmin) / (gmax - gmin), 0, 1); ++n_mu; }
            }
            mu /= n_mu;
            target_max = target_min + (1.0 - target_min) / (mu + 1e-8);
            for (b = m0; b < m0 + micro; ++b) {
                double n = 0;
                for (t = 0; t < L; ++t) n += mask[b * L + t];
                if (n > 0) o->scaling[b] = target_min + clampd((sensitivity[b - m0] - gmin) / (gmax - gmin), 0, 1) * (target_max - target_min);
            }
        }
        /* compute_policy_loss with loss_token_mask, token-mean, plus the entropy penalty */
        for (b = m0; b < m0 + micro; ++b)
            for (t = 0; t < L; ++t) {
                const int at = b * L + t;
                double A = o->advantages[b] * mask[at] * o->scaling[b];
                double nak = clampd(logp[at] - old[at], -20.0, 20.0);
                double ratio = exp(nak), clipped = exp(clampd(nak, log(1.0 - 0.2), log(1.0 + 0.28)));
                double pg1 = -A * ratio, pg2 = -A * clipped, pg3 = -A * 3.0;
                double higher = pg1 > pg2 ? pg1 : pg2, lower = higher < pg3 ? higher : pg3;
                double final_pg = (A < 0 ? lower : higher) * o->select[at];
                pg_sum += final_pg * mask[at];
                logp_sum += logp[at] * mask[at];
                mask_sum += mask[at];
            }
        loss = pg_sum / (mask_sum + 1e-8) + 0.06 * (-logp_sum / (mask_sum + 1e-8));
        o->loss += loss * mask_sum / total_tokens;
    }
}

/* ---------------------------------------------------------------- the batch */

typedef struct released_case {
    int64_t offsets[17];
    uint8_t mask[16 * 48];
    float logp[16 * 48], old[16 * 48], aug[16 * 48], scores[16];
    vppo_seqs s;
} released_case;

static void released_case_make(released_case *c, uint64_t seed)
{
    static const double iv[4][2] = { { -0.6, -0.3 }, { -0.15, 0.15 }, { 0.35, 0.8 }, { 1.2, 1.6 } };
    rng r = rng_make(seed);
    int b, t;
    vppo_offsets_uniform(c->offsets, 16, 48);
    for (b = 0; b < 16; ++b) {
        /* response lengths 0 (one empty response), 1, 2, ... up to the padded 48 */
        int len = b == 5 ? 0 : b == 6 ? 1 : (int)rng_int(&r, 2, 48);
        c->scores[b] = (float)(rng_uniform(&r) < 0.5);   /* 0/1 accuracy */
        for (t = 0; t < 48; ++t) {
            const int at = b * 48 + t;
            int k = (int)rng_int(&r, 0, 3);
            c->mask[at] = (uint8_t)(t < len);
            c->old[at] = (float)-rng_range(&r, 0.05, 4.0);
            /* distinct dependencies below the clamp at 10: mostly small changes, some large */
            c->aug[at] = c->old[at] + (float)(rng_uniform(&r) < 0.15 ? rng_range(&r, -4.0, 2.0)
                                            : (rng_uniform(&r) < 0.5 ? 1 : -1) * rng_range(&r, 1e-3, 0.4));
            c->logp[at] = c->old[at] + (float)rng_range(&r, iv[k][0], iv[k][1]);
            if (!c->mask[at]) { c->old[at] = NAN; c->aug[at] = NAN; c->logp[at] = NAN; }   /* garbage padding */
        }
    }
    c->scores[0] = 1; c->scores[1] = 0;   /* neither group is constant */
    c->scores[8] = 1; c->scores[9] = 0;
    c->s.n_seqs = 16; c->s.offsets = c->offsets; c->s.mask = c->mask;
}

/* The released code breaks ties by an unstable sort: the comparison is meaningful only
   where the dependencies of a response are distinct, so the test asserts that they are. */
static int dependencies_distinct(const released_case *c)
{
    int b, t, u;
    for (b = 0; b < 16; ++b)
        for (t = 0; t < 48; ++t)
            for (u = 0; u < t; ++u)
                if (c->mask[b * 48 + t] && c->mask[b * 48 + u] &&
                    low_var_kl(c->old[b * 48 + t], c->aug[b * 48 + t]) == low_var_kl(c->old[b * 48 + u], c->aug[b * 48 + u]))
                    return 0;
    return 1;
}

static void finite_difference_check(const released_case *c, int micro, const float *dlogp)
{
    double x[16 * 48];
    released_out o;
    int t;
    for (t = 0; t < 16 * 48; ++t) x[t] = c->mask[t] ? c->logp[t] : 0.0;   /* padding logp unused */
    for (t = 0; t < 16 * 48; ++t) {
        const double h = 1e-5, keep = x[t];
        double up, down;
        if (!c->mask[t]) { CHECK(dlogp[t] == 0.0f); continue; }
        x[t] = keep + h; released_update(16, 48, c->mask, x, c->old, c->aug, c->scores, micro, &o); up = o.loss;
        x[t] = keep - h; released_update(16, 48, c->mask, x, c->old, c->aug, c->scores, micro, &o); down = o.loss;
        x[t] = keep;
        CHECK_NEAR((up - down) / (2 * h), dlogp[t], TOL_TOKEN);
    }
}

typedef struct pipeline_buffers {
    float dep[16 * 48], traj_dep[16], scale[16], adv[16 * 48], dlogp[16 * 48], adv_seq[16];
    int64_t count[16];
    uint8_t select[16 * 48];
    vppo_prepared p;
} pipeline_buffers;

static void buffers_bind(pipeline_buffers *pb)
{
    pb->p.dep = pb->dep; pb->p.traj_dep = pb->traj_dep; pb->p.count = pb->count;
    pb->p.scale = pb->scale; pb->p.adv = pb->adv; pb->p.select = pb->select;
}

/* A released case with its advantages (vppo_group_advantages on 2 groups of 8, checked
   against compute_grpo_outcome_advantage) and the released update over `micro`. */
static void released_setup(released_case *c, pipeline_buffers *pb, uint64_t seed, int micro, released_out *want)
{
    int64_t groups_off[3];
    vppo_seqs groups;
    double x[16 * 48];
    int t, b;
    released_case_make(c, seed);
    CHECK(dependencies_distinct(c));
    buffers_bind(pb);
    vppo_offsets_uniform(groups_off, 2, 8);
    groups.n_seqs = 2; groups.offsets = groups_off; groups.mask = NULL;
    CHECK_STATUS(VPPO_OK, vppo_group_advantages(&groups, c->scores, VPPO_ADV_GRPO, 1e-6f, pb->adv_seq));
    for (t = 0; t < 16 * 48; ++t) x[t] = c->mask[t] ? c->logp[t] : 0.0;
    released_update(16, 48, c->mask, x, c->old, c->aug, c->scores, micro, want);
    for (b = 0; b < 16; ++b) CHECK_NEAR(want->advantages[b], pb->adv_seq[b], TOL_TOKEN);
}

void step_reproduces_released_vppo_update(void)
{
    released_case c;
    released_out want;
    pipeline_buffers pb;
    vppo_config cfg = vppo_config_default();
    vppo_loss_out out;
    int t, b, wrong = 0;
    released_setup(&c, &pb, 800, 16, &want);
    CHECK_STATUS(VPPO_OK, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    for (t = 0; t < 16 * 48; ++t) wrong += pb.select[t] != want.select[t];
    CHECK_EQ_INT(0, wrong);                                      /* the same tokens carry gradient */
    for (b = 0; b < 16; ++b) CHECK_NEAR(want.scaling[b], pb.scale[b], TOL_TOKEN);
    CHECK_NEAR(want.threshold[0], pb.p.topk.threshold_mean, TOL_SCALAR);
    CHECK_NEAR(want.loss, out.loss, TOL_SCALAR);                 /* the same loss */
    finite_difference_check(&c, 16, pb.dlogp);                   /* the same gradient */
    CHECK(pb.scale[5] == 1.0f);                                  /* the empty response */
}

void step_reproduces_released_code_over_micro_batches(void)
{
    /* The released code: global min/max over the mini-batch, mean-preserving mu per
       micro-batch, each micro-batch loss scaled by its tokens / all tokens. Here:
       stats of the whole batch passed as `global`, denom = all valid tokens. */
    released_case c;
    released_out want;
    pipeline_buffers pb;
    vppo_config cfg = vppo_config_default();
    vppo_tas_stats global;
    vppo_loss_out out;
    double loss = 0;
    int64_t m0;
    int t, b, wrong = 0;
    released_setup(&c, &pb, 801, 8, &want);

    CHECK_STATUS(VPPO_OK, vppo_prepare(&cfg, &c.s, c.old, c.aug, NULL, pb.adv_seq, NULL, &pb.p));
    global = pb.p.stats;
    cfg.loss.denom = (double)pb.p.topk.n_valid;
    for (m0 = 0; m0 < 16; m0 += 8) {
        vppo_seqs micro;
        vppo_prepared pm = pb.p;   /* flat buffers shared, per-sequence ones offset */
        micro.n_seqs = 8; micro.offsets = c.offsets + m0; micro.mask = c.mask;
        pm.traj_dep = pb.traj_dep + m0; pm.count = pb.count + m0; pm.scale = pb.scale + m0;
        CHECK_STATUS(VPPO_OK, vppo_prepare(&cfg, &micro, c.old, c.aug, NULL, pb.adv_seq + m0, &global, &pm));
        CHECK(pm.stats.min == global.min && pm.stats.max == global.max && pm.stats.n == global.n);
        CHECK_NEAR(want.threshold[m0 / 8], pm.topk.threshold_mean, TOL_SCALAR);
        CHECK_STATUS(VPPO_OK, vppo_policy_loss(&cfg.loss, &micro, c.logp, c.old, NULL, pm.adv, pm.select, NULL, pb.dlogp, &out));
        loss += out.loss;
    }
    for (t = 0; t < 16 * 48; ++t) wrong += pb.select[t] != want.select[t];
    CHECK_EQ_INT(0, wrong);
    for (b = 0; b < 16; ++b) CHECK_NEAR(want.scaling[b], pb.scale[b], TOL_TOKEN);
    CHECK_NEAR(want.loss, loss, TOL_SCALAR);
    finite_difference_check(&c, 8, pb.dlogp);
    {   /* per-micro-batch mu: the scales differ from the single-call ones */
        pipeline_buffers whole;
        double max_diff = 0;
        buffers_bind(&whole);
        CHECK_STATUS(VPPO_OK, vppo_prepare(&cfg, &c.s, c.old, c.aug, NULL, pb.adv_seq, NULL, &whole.p));
        for (b = 0; b < 16; ++b) max_diff = fmax(max_diff, fabs(whole.scale[b] - pb.scale[b]));
        CHECK(max_diff > 1e-4);
    }
}

void step_without_tas_and_tgf_is_exactly_dapo(void)
{
    released_case c;
    pipeline_buffers pb;
    vppo_config cfg = vppo_config_default();
    vppo_loss_out out, direct;
    float adv_tok[16 * 48], dl_direct[16 * 48];
    double x[16 * 48];
    ref_loss_terms want;
    int t, b, differ = 0;
    released_case_make(&c, 802);
    buffers_bind(&pb);
    for (b = 0; b < 16; ++b) pb.adv_seq[b] = (float)(c.scores[b] - 0.5) * 1.5f;
    cfg.use_tas = 0;
    cfg.use_tgf = 0;
    /* DAPO needs no perturbed pass: logp_aug may be NULL */
    CHECK_STATUS(VPPO_OK, vppo_step(&cfg, &c.s, c.logp, c.old, NULL, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    for (t = 0; t < 16 * 48; ++t) {
        adv_tok[t] = c.mask[t] ? pb.adv_seq[t / 48] : 0.0f;
        differ += pb.select[t] != c.mask[t];
        differ += memcmp(&pb.adv[t], &adv_tok[t], sizeof(float)) != 0;
        differ += c.mask[t] && pb.dep[t] != 0.0f;
    }
    CHECK_EQ_INT(0, differ);
    for (b = 0; b < 16; ++b) CHECK(pb.scale[b] == 1.0f);
    /* bit for bit the plain policy loss with broadcast advantages and no mask */
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&cfg.loss, &c.s, c.logp, c.old, NULL, adv_tok, NULL, NULL, dl_direct, &direct));
    CHECK(memcmp(pb.dlogp, dl_direct, sizeof dl_direct) == 0);
    CHECK(out.loss == direct.loss && out.pg_loss == direct.pg_loss && out.entropy_loss == direct.entropy_loss);
    CHECK(out.clipfrac == direct.clipfrac && out.clipfrac_dual == direct.clipfrac_dual && out.ppo_kl == direct.ppo_kl);
    CHECK(out.n_valid == direct.n_valid && out.n_selected == direct.n_valid);
    /* and DAPO as written from docs/spec.md §7 (clip-higher, dual clip, token-mean, entropy penalty) */
    for (t = 0; t < 16 * 48; ++t) x[t] = c.mask[t] ? c.logp[t] : 0.0;
    want = ref_policy_loss(&cfg.loss, &c.s, x, x, c.old, NULL, adv_tok, NULL, NULL);
    CHECK_NEAR(want.loss, out.loss, TOL_SCALAR);
    /* and with the perturbed pass given, still DAPO: the dependency is computed but unused */
    CHECK_STATUS(VPPO_OK, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    CHECK(memcmp(pb.dlogp, dl_direct, sizeof dl_direct) == 0 && out.loss == direct.loss);
}

void config_default_is_released_recipe(void)
{
    vppo_config c = vppo_config_default();
    vppo_loss_config l = vppo_loss_config_default();
    CHECK(c.estimator == VPPO_EST_K3 && c.use_tas == 1 && c.use_tgf == 1 && c.topk_ratio == 0.4);
    CHECK(c.tas.mode == VPPO_TAS_MEAN_PRESERVING && c.tas.beta_min == 0.9f && c.tas.beta_max == 1.0f);
    CHECK(c.loss.clip_low == l.clip_low && c.loss.clip_high == l.clip_high && c.loss.clip_dual == l.clip_dual &&
          c.loss.pg_kind == l.pg_kind && c.loss.ratio_level == l.ratio_level && c.loss.agg == l.agg &&
          c.loss.agg_norm == l.agg_norm && c.loss.kl_kind == l.kl_kind && c.loss.kl_coef == l.kl_coef &&
          c.loss.entropy_coef == l.entropy_coef && c.loss.denom == l.denom);
}

void prepare_computes_every_stage(void)
{
    released_case c;
    pipeline_buffers pb;
    vppo_config cfg = vppo_config_default();
    float dep[16 * 48], traj[16], scale[16];
    int64_t count[16];
    uint8_t sel[16 * 48];
    vppo_tas_stats st;
    vppo_topk_info info;
    int t, b, differ = 0;
    released_case_make(&c, 803);
    buffers_bind(&pb);
    for (b = 0; b < 16; ++b) pb.adv_seq[b] = (float)(b % 3) - 1.0f;
    cfg.estimator = VPPO_EST_ABS;
    cfg.tas.mode = VPPO_TAS_LINEAR; cfg.tas.beta_min = 0.5f; cfg.tas.beta_max = 2.0f;
    cfg.topk_ratio = 0.25;
    CHECK_STATUS(VPPO_OK, vppo_prepare(&cfg, &c.s, c.old, c.aug, NULL, pb.adv_seq, NULL, &pb.p));
    /* each stage equals the public function of that stage */
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&c.s, c.old, c.aug, VPPO_EST_ABS, dep));
    CHECK_STATUS(VPPO_OK, vppo_seq_mean(&c.s, dep, traj, count));
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(traj, count, 16, &st));
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg.tas, &st, traj, count, 16, scale));
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&c.s, dep, 0.25, sel, &info));
    CHECK(memcmp(dep, pb.dep, sizeof dep) == 0);
    CHECK(memcmp(traj, pb.traj_dep, sizeof traj) == 0 && memcmp(count, pb.count, sizeof count) == 0);
    CHECK(st.min == pb.p.stats.min && st.max == pb.p.stats.max && st.n == pb.p.stats.n);
    CHECK(memcmp(scale, pb.scale, sizeof scale) == 0);
    CHECK(memcmp(sel, pb.select, sizeof sel) == 0);
    CHECK(info.n_selected == pb.p.topk.n_selected && info.threshold_mean == pb.p.topk.threshold_mean);
    for (t = 0; t < 16 * 48; ++t) {
        float want = c.mask[t] ? scale[t / 48] * pb.adv_seq[t / 48] : 0.0f;
        differ += memcmp(&want, &pb.adv[t], sizeof want) != 0;
    }
    CHECK_EQ_INT(0, differ);
    cfg.use_tas = 0;
    CHECK_STATUS(VPPO_OK, vppo_prepare(&cfg, &c.s, c.old, c.aug, NULL, pb.adv_seq, NULL, &pb.p));
    for (b = 0; b < 16; ++b) CHECK(pb.scale[b] == 1.0f);
}

/* vppo_prepare runs the dependency, its sequence means and the top-k in one pass over the
   sequences, then TAS and the advantages (streaming stores on the vector ISAs). Its outputs
   must be those of the stage functions, bit for bit: ragged sequences of 0 to 20000 tokens
   (around the top-k's 16-lane blocks, the sampled narrowing's 256, VPPO__TOPK_LOCAL = 4096,
   more than 256 sequences, over 65536 tokens so that OpenMP splits), the flat range starting
   at 7, masked and not (fully masked sequences too), the advantages 1, 6 or 11 floats off a
   64-byte boundary; sampled (every estimator), given and no dependency; every ISA and
   1, 2 and 3 threads against the scalar ISA at 1 thread; and nothing written outside the
   flat range. */
#define FUSED_LONG 16
static const int64_t fused_long[FUSED_LONG] = { 0, 1, 15, 17, 257, 300, 2048, 2049, 4095, 4096, 4097, 9000,
                                                20000, 16, 256, 20000 };
#define FUSED_B (FUSED_LONG + 300)

typedef struct fused_case { vppo_estimator est; int use_tas, use_tgf; vppo_tas_mode mode; double ratio; } fused_case;

/* The stages' results for one configuration into q (q's buffers), from the public functions. */
static void fused_stages(const vppo_config *cfg, const vppo_seqs *s, const float *old, const float *aug,
                         const float *dep_in, const float *adv_seq, vppo_prepared *q)
{
    const int64_t lo = s->offsets[0], hi = s->offsets[s->n_seqs];
    int64_t b, t;
    if (dep_in || (!old && !aug)) {
        for (t = lo; t < hi; ++t) q->dep[t] = dep_in && (!s->mask || s->mask[t]) ? dep_in[t] : 0.0f;
    } else {
        CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(s, old, aug, cfg->estimator, q->dep));
    }
    CHECK_STATUS(VPPO_OK, vppo_seq_mean(s, q->dep, q->traj_dep, q->count));
    CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(q->traj_dep, q->count, s->n_seqs, &q->stats));
    if (cfg->use_tas) CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg->tas, &q->stats, q->traj_dep, q->count, s->n_seqs, q->scale));
    else for (b = 0; b < s->n_seqs; ++b) q->scale[b] = 1.0f;
    memset(&q->topk, 0, sizeof q->topk);
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(s, q->dep, cfg->use_tgf ? cfg->topk_ratio : 1.0, q->select, &q->topk));
    for (b = 0; b < s->n_seqs; ++b) {
        const float a = q->scale[b] * adv_seq[b];
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t) q->adv[t] = !s->mask || s->mask[t] ? a : 0.0f;
    }
}

/* How many of the outputs of p and q differ (bits), over [0, n) for the per-token ones. */
static int64_t fused_differ(const vppo_prepared *p, const vppo_prepared *q, int64_t n, int64_t B)
{
    int64_t d = 0, i;
    for (i = 0; i < n; ++i)
        d += (memcmp(&p->dep[i], &q->dep[i], 4) != 0) + (memcmp(&p->adv[i], &q->adv[i], 4) != 0) +
             (p->select[i] != q->select[i]);
    for (i = 0; i < B; ++i)
        d += (memcmp(&p->traj_dep[i], &q->traj_dep[i], 4) != 0) + (memcmp(&p->scale[i], &q->scale[i], 4) != 0) +
             (p->count[i] != q->count[i]);
    d += memcmp(&p->stats, &q->stats, sizeof p->stats) != 0;
    return d + (memcmp(&p->topk, &q->topk, sizeof p->topk) != 0);
}

static vppo_prepared fused_buffers(int64_t n, int64_t B, float **adv_base)
{
    vppo_prepared p;
    memset(&p, 0, sizeof p);
    p.dep = floats_new(n, 0.0f); p.traj_dep = floats_new(B, 0.0f); p.scale = floats_new(B, 0.0f);
    p.count = (int64_t *)calloc((size_t)B, sizeof *p.count);
    p.select = (uint8_t *)calloc((size_t)n, 1);
    *adv_base = floats_new(n + 32, 0.0f);
    p.adv = (float *)(((uintptr_t)*adv_base + 63) & ~(uintptr_t)63) + 1;   /* 4 bytes past a 64-byte boundary */
    return p;
}

static void fused_buffers_free(vppo_prepared *p, float *adv_base)
{
    free(p->dep); free(p->traj_dep); free(p->scale); free(p->count); free(p->select); free(adv_base);
}

/* Fills the outputs with a pattern that no result has (a NaN's bits; select 0xa5). */
static void fused_poison(vppo_prepared *p, int64_t n, int64_t B)
{
    memset(p->dep, 0xff, (size_t)n * 4); memset(p->adv, 0xff, (size_t)n * 4); memset(p->select, 0xa5, (size_t)n);
    memset(p->traj_dep, 0xff, (size_t)B * 4); memset(p->scale, 0xff, (size_t)B * 4);
    memset(p->count, 0xff, (size_t)B * 8);
}

/* How many entries outside [lo, hi) are not the poison any more. */
static int64_t fused_outside(const vppo_prepared *p, int64_t lo, int64_t hi, int64_t n)
{
    int64_t d = 0, i;
    uint32_t bits;
    for (i = 0; i < n; ++i) {
        if (i >= lo && i < hi) continue;
        memcpy(&bits, &p->dep[i], 4); d += bits != 0xffffffffu;
        memcpy(&bits, &p->adv[i], 4); d += bits != 0xffffffffu;
        d += p->select[i] != 0xa5;
    }
    return d;
}

void prepare_fused_equals_its_stages_every_isa_and_thread_count(void)
{
    static const fused_case cases[] = {
        { VPPO_EST_K3, 1, 1, VPPO_TAS_MEAN_PRESERVING, 0.4 },
        { VPPO_EST_PROB_DROP, 1, 1, VPPO_TAS_LINEAR, 0.999 },
        { VPPO_EST_K1, 0, 0, VPPO_TAS_MEAN_PRESERVING, 0.4 },   /* ratio 1: TGF off */
        { VPPO_EST_ABS, 1, 1, VPPO_TAS_MEAN_PRESERVING, 0.0 },
        { VPPO_EST_K2, 0, 1, VPPO_TAS_LINEAR, 0.05 },
    };
    int64_t off[FUSED_B + 1], b, t, n;
    float *old, *aug, *given, adv_seq[FUSED_B], *adv_p, *adv_q, *adv_r;
    uint8_t *mask;
    vppo_prepared p, q, r1;
    rng r = rng_make(816);
    const vppo_isa before = vppo_isa_active();
    int isa, masked, src, thr, tested = 0, n_thr = 1;
    size_t c;
    int64_t differ = 0, outside = 0, vs_scalar = 0, runs = 0;
#ifdef _OPENMP
    const int threads_before = omp_get_max_threads();
    n_thr = 3;
#endif
    off[0] = 7;
    for (b = 0; b < FUSED_B; ++b)   /* 1 to 3 tokens at the ends of the fill's blocks of 64 sequences */
        off[b + 1] = off[b] + (b < FUSED_LONG ? fused_long[b] : b % 64 < 3 || b % 64 > 60 ? rng_int(&r, 1, 3) : rng_int(&r, 0, 40));
    n = off[FUSED_B] + 9;
    CHECK(off[FUSED_B] - off[0] > 65536);
    old = floats_new(n, NAN); aug = floats_new(n, NAN); given = floats_new(n, NAN);
    mask = (uint8_t *)calloc((size_t)n, 1);
    for (t = off[0]; t < off[FUSED_B]; ++t) {
        const double lo = log(0.01 + 0.99 * rng_uniform(&r));
        old[t] = (float)lo;
        aug[t] = t % 101 == 0 ? -INFINITY : (float)(lo + rng_range(&r, -0.4, 0.4));
        given[t] = t % 7 == 0 ? 0.125f : (float)rng_range(&r, -1.0, 3.0);   /* ties, negatives */
        mask[t] = (uint8_t)(rng_uniform(&r) < 0.85);
    }
    for (t = off[5]; t < off[6]; ++t) mask[t] = 0;     /* fully masked: 300 tokens */
    for (t = off[11]; t < off[12]; ++t) mask[t] = 0;   /* and 9000 */
    for (t = off[12]; t < off[13]; ++t) mask[t] = 1;   /* and 20000 all valid */
    for (b = 0; b < FUSED_B; ++b) adv_seq[b] = (float)rng_range(&r, -2.0, 2.0);
    p = fused_buffers(n, FUSED_B, &adv_p); q = fused_buffers(n, FUSED_B, &adv_q); r1 = fused_buffers(n, FUSED_B, &adv_r);
    for (masked = 0; masked < 2; ++masked)
        for (c = 0; c < sizeof cases / sizeof cases[0]; ++c)
            for (src = 0; src < 3; ++src) {   /* sampled, given, none */
                vppo_seqs s;
                vppo_config cfg = vppo_config_default();
                const float *lo_old = src == 0 ? old : NULL, *lo_aug = src == 0 ? aug : NULL;
                const float *din = src == 1 ? given : NULL;
                int first = 1;
                s.n_seqs = FUSED_B; s.offsets = off; s.mask = masked ? mask : NULL;
                cfg.estimator = cases[c].est; cfg.use_tas = cases[c].use_tas; cfg.use_tgf = cases[c].use_tgf;
                cfg.tas.mode = cases[c].mode; cfg.topk_ratio = cases[c].ratio;
                if (cfg.tas.mode == VPPO_TAS_LINEAR) cfg.tas.beta_max = 1.5f;
                if (src == 2 && (cfg.use_tas || cfg.use_tgf)) continue;   /* no dependency: only without both */
                p.adv = (float *)(((uintptr_t)adv_p + 63) & ~(uintptr_t)63) + 1 + (c + (size_t)src) % 3 * 5;   /* 1, 6, 11 floats past */
                for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
                    if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
                    tested += isa != VPPO_ISA_SCALAR && masked == 0 && c == 0 && src == 0;
                    fused_poison(&q, n, FUSED_B);
                    fused_stages(&cfg, &s, lo_old, lo_aug, din, adv_seq, &q);
                    for (thr = 1; thr <= n_thr; ++thr) {
#ifdef _OPENMP
                        omp_set_num_threads(thr);
#endif
                        fused_poison(&p, n, FUSED_B);
                        CHECK_STATUS(VPPO_OK, vppo_prepare(&cfg, &s, lo_old, lo_aug, din, adv_seq, NULL, &p));
                        differ += fused_differ(&p, &q, n, FUSED_B);
                        outside += fused_outside(&p, off[0], off[FUSED_B], n);
                        if (first) {   /* the scalar ISA at 1 thread: every later run must equal it */
                            memcpy(r1.dep, p.dep, (size_t)n * 4); memcpy(r1.adv, p.adv, (size_t)n * 4);
                            memcpy(r1.select, p.select, (size_t)n); memcpy(r1.traj_dep, p.traj_dep, sizeof adv_seq);
                            memcpy(r1.scale, p.scale, sizeof adv_seq); memcpy(r1.count, p.count, FUSED_B * 8);
                            r1.stats = p.stats; r1.topk = p.topk;
                            first = 0;
                        }
                        vs_scalar += fused_differ(&p, &r1, n, FUSED_B);
                        ++runs;
                    }
                }
            }
#ifdef _OPENMP
    omp_set_num_threads(threads_before);
#endif
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
    CHECK(runs >= 2 * 5 * 2 + 2);
    CHECK_EQ_INT(0, differ);
    CHECK_EQ_INT(0, outside);
    CHECK_EQ_INT(0, vs_scalar);
    test_check_vector_isas_tested(tested);
    fused_buffers_free(&p, adv_p); fused_buffers_free(&q, adv_q); fused_buffers_free(&r1, adv_r);
    free(old); free(aug); free(given); free(mask);
}

void prepare_with_global_stats_and_dep_in(void)
{
    released_case c;
    pipeline_buffers pb;
    vppo_config cfg = vppo_config_default();
    vppo_tas_stats global;
    float dep_in[16 * 48], scale[16];
    int t, differ = 0;
    rng r = rng_make(804);
    released_case_make(&c, 805);
    buffers_bind(&pb);
    for (t = 0; t < 16; ++t) pb.adv_seq[t] = 1.0f;
    for (t = 0; t < 16 * 48; ++t) dep_in[t] = c.mask[t] ? (float)rng_range(&r, 0, 1) : NAN;
    global.min = 0.1; global.max = 0.9; global.n = 64;   /* e.g. merged over 4 ranks */
    /* logp_old / logp_aug are not needed when the dependency is given */
    CHECK_STATUS(VPPO_OK, vppo_prepare(&cfg, &c.s, NULL, NULL, dep_in, pb.adv_seq, &global, &pb.p));
    for (t = 0; t < 16 * 48; ++t) differ += pb.dep[t] != (c.mask[t] ? dep_in[t] : 0.0f);
    CHECK_EQ_INT(0, differ);
    CHECK(pb.p.stats.min == 0.1 && pb.p.stats.max == 0.9 && pb.p.stats.n == 64);
    CHECK_STATUS(VPPO_OK, vppo_tas_scales(&cfg.tas, &global, pb.traj_dep, pb.count, 16, scale));
    CHECK(memcmp(scale, pb.scale, sizeof scale) == 0);
    dep_in[3] = INFINITY;   /* an infinite KL must be clamped by the caller */
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_prepare(&cfg, &c.s, NULL, NULL, dep_in, pb.adv_seq, &global, &pb.p));
    dep_in[3] = 0.5f;
    global.min = 2; global.max = 1;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_prepare(&cfg, &c.s, NULL, NULL, dep_in, pb.adv_seq, &global, &pb.p));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_prepare(&cfg, &c.s, NULL, NULL, NULL, pb.adv_seq, NULL, &pb.p));
}

void step_validates_before_writing(void)
{
    released_case c;
    pipeline_buffers pb, before;
    vppo_config cfg = vppo_config_default();
    vppo_loss_out out;
    released_case_make(&c, 806);
    buffers_bind(&pb);
    memset(pb.dep, 0x5a, sizeof pb.dep); memset(pb.traj_dep, 0x5a, sizeof pb.traj_dep);
    memset(pb.scale, 0x5a, sizeof pb.scale); memset(pb.adv, 0x5a, sizeof pb.adv);
    memset(pb.dlogp, 0x5a, sizeof pb.dlogp); memset(pb.select, 0x5a, sizeof pb.select);
    memset(pb.count, 0x5a, sizeof pb.count); memset(pb.adv_seq, 0, sizeof pb.adv_seq);
    before = pb;
    c.logp[15 * 48 + 1] = NAN;   /* late in the batch, in the *loss* input */
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    c.logp[15 * 48 + 1] = -1.0f;
    pb.adv_seq[9] = INFINITY;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    pb.adv_seq[9] = 0;
    cfg.loss.clip_dual = 0.5f;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    cfg = vppo_config_default(); cfg.loss.kl_kind = VPPO_KL_K3;
    CHECK_STATUS(VPPO_ERR_NULL, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    cfg = vppo_config_default(); cfg.topk_ratio = 1.5;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    cfg = vppo_config_default();
    CHECK_STATUS(VPPO_ERR_NULL, vppo_step(&cfg, &c.s, c.logp, c.old, NULL, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    pb.adv_seq[3] = 3.0e38f;   /* finite, but a TAS scale above 1.14 would overflow it */
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    pb.adv_seq[3] = 0;
    cfg.estimator = VPPO_EST_PROB_DROP;
    c.old[4 * 48 + 1] = 120.0f;   /* exp overflows: not a log-probability */
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
    c.old[4 * 48 + 1] = -1.0f;
    cfg = vppo_config_default();
    CHECK(memcmp(pb.dep, before.dep, sizeof pb.dep) == 0 && memcmp(pb.adv, before.adv, sizeof pb.adv) == 0);
    CHECK(memcmp(pb.dlogp, before.dlogp, sizeof pb.dlogp) == 0 && memcmp(pb.select, before.select, sizeof pb.select) == 0);
    CHECK(memcmp(pb.scale, before.scale, sizeof pb.scale) == 0 && memcmp(pb.count, before.count, sizeof pb.count) == 0);
    CHECK(memcmp(pb.traj_dep, before.traj_dep, sizeof pb.traj_dep) == 0);
    CHECK_STATUS(VPPO_OK, vppo_step(&cfg, &c.s, c.logp, c.old, c.aug, NULL, pb.adv_seq, &pb.p, pb.dlogp, &out));
}

/* The step's one check pass over several OpenMP blocks of tokens: NaN, +inf and -inf in
   each input at the first and last position of a block (and of the batch) and at a
   masked-out position; -inf is allowed in logp_aug only (logp_old is -inf-tolerant for
   the dependency but must be finite for the loss: it is checked once for both). Then the
   precedence of a loss argument error (checked after prepare's data) over the loss's data
   but not over prepare's. */
void step_checks_each_input_at_block_edges(void)
{
    enum { B = 4, N = 2 * 65536 + 37, NPOS = 7 };
    const int64_t pos[NPOS] = { 0, 65535, 65536, 2 * 65536 - 1, 2 * 65536, N - 1, 70001 };
    const float bad[3] = { NAN, HUGE_VALF, -HUGE_VALF };
    int64_t off[B + 1] = { 0, 40000, 65536 + 11, 2 * 65536 + 5, N };
    float *in[3], *dep = (float *)malloc(N * sizeof(float)), *adv = (float *)malloc(N * sizeof(float));
    float *dlogp = (float *)malloc(N * sizeof(float)), traj[B], scale[B], adv_seq[B] = { 1.0f, -1.0f, 0.5f, 2.0f };
    uint8_t *mask = (uint8_t *)malloc(N), *sel = (uint8_t *)malloc(N);
    int64_t count[B], t;
    vppo_config cfg = vppo_config_default();
    vppo_seqs s;
    vppo_prepared p;
    vppo_loss_out out;
    int a, i, v, wrong = 0, tried = 0;
    for (a = 0; a < 3; ++a) in[a] = (float *)malloc(N * sizeof(float));   /* logp, logp_old, logp_aug */
    for (t = 0; t < N; ++t) {
        mask[t] = (uint8_t)(t != 70001 && t % 7 != 3);
        in[0][t] = -1.0f - 0.001f * (float)(t % 13);
        in[1][t] = -1.05f - 0.001f * (float)(t % 11);
        in[2][t] = -1.3f - 0.002f * (float)(t % 5);
    }
    s.n_seqs = B; s.offsets = off; s.mask = mask;
    memset(&p, 0, sizeof p);
    p.dep = dep; p.traj_dep = traj; p.count = count; p.scale = scale; p.adv = adv; p.select = sel;
    CHECK_STATUS(VPPO_OK, vppo_step(&cfg, &s, in[0], in[1], in[2], NULL, adv_seq, &p, dlogp, &out));
    for (a = 0; a < 3; ++a)
        for (i = 0; i < NPOS; ++i)
            for (v = 0; v < 3; ++v) {
                const float keep = in[a][pos[i]];
                const int hidden = !mask[pos[i]], allowed = a == 2 && v == 2;
                const vppo_status want = hidden || allowed ? VPPO_OK : VPPO_ERR_NONFINITE;
                vppo_status got;
                in[a][pos[i]] = bad[v];
                got = vppo_step(&cfg, &s, in[0], in[1], in[2], NULL, adv_seq, &p, dlogp, &out);
                if (got != want) {
                    printf("        input %d at %lld = %g: %s, want %s\n", a, (long long)pos[i], (double)bad[v],
                           vppo_status_string(got), vppo_status_string(want));
                    ++wrong;
                }
                ++tried;
                in[a][pos[i]] = keep;
            }
    CHECK_EQ_INT(0, wrong);
    CHECK_EQ_INT(3 * NPOS * 3, tried);
    /* a loss argument error (the dual clip below 1) comes after prepare's data checks and
       before the loss's: logp_old = -inf fails only the loss's */
    cfg.loss.clip_dual = 0.5f;
    in[1][2 * 65536] = -HUGE_VALF;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_step(&cfg, &s, in[0], in[1], in[2], NULL, adv_seq, &p, dlogp, &out));
    in[1][2 * 65536] = NAN;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_step(&cfg, &s, in[0], in[1], in[2], NULL, adv_seq, &p, dlogp, &out));
    in[1][2 * 65536] = -1.0f;
    in[0][65535] = NAN;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_step(&cfg, &s, in[0], in[1], in[2], NULL, adv_seq, &p, dlogp, &out));
    in[0][65535] = -1.0f;
    in[2][N - 1] = HUGE_VALF;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_step(&cfg, &s, in[0], in[1], in[2], NULL, adv_seq, &p, dlogp, &out));
    in[2][N - 1] = -HUGE_VALF;
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_step(&cfg, &s, in[0], in[1], in[2], NULL, adv_seq, &p, dlogp, &out));
    for (a = 0; a < 3; ++a) free(in[a]);
    free(dep); free(adv); free(dlogp); free(mask); free(sel);
}
