/* tests/test_errors.c - the bad-input matrix: every public function that can fail, each
   kind of bad input, the exact status. Each row starts from the shared fixture of valid
   arguments (test_fixture, tests/test_util.c) and breaks one thing. */
#include "test.h"

/* Every function called on the fixture: the fixture itself must be valid. */
#define CALL_DEP_SAMPLED   vppo_dependency_sampled(&f.s, f.logp, f.aug, VPPO_EST_K3, f.out)
#define CALL_DEP_LOGITS    vppo_dependency_logits(&f.x, &f.x, VPPO_DIV_KL, f.out)
#define CALL_LOGPROBS      vppo_logprobs(&f.x, f.ids, f.out, f.aug, NULL)
#define CALL_BACKWARD      vppo_logprobs_backward(&f.x, f.ids, NULL, NULL, f.logp, f.aug, &f.g)
#define CALL_GROUP_ADV     vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO, 1e-6f, f.out)
#define CALL_GROUP_FILTER  vppo_group_filter(&f.s, f.score, 0.01, 0.99, f.sel)
#define CALL_SEQ_MEAN      vppo_seq_mean(&f.s, f.score, f.mean, f.count)
#define CALL_TAS_STATS     vppo_tas_stats_compute(f.traj, f.count, 2, &f.st)
#define CALL_TAS_SCALES    vppo_tas_scales(&f.tas, &f.st, f.traj, f.count, 2, f.scale)
#define CALL_TOPK          vppo_topk_mask(&f.s, f.score, 0.4, f.sel, &f.info)
#define CALL_SOFT          vppo_soft_mask(&f.s, f.score, 0.4, f.out)
#define CALL_LOSS          vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, NULL, f.score, NULL, NULL, f.out, &f.lo)
#define CALL_PREPARE       vppo_prepare(&f.cfg, &f.s, f.logp, f.aug, NULL, f.adv_seq, NULL, &f.p)
#define CALL_STEP          vppo_step(&f.cfg, &f.s, f.logp, f.aug, f.logp, NULL, f.adv_seq, &f.p, f.out, &f.lo)
#define CALL_BLACKEN       vppo_perturb_patch_blackening(&f.img, 2, 0.5f, 1)
#define CALL_NOISE         vppo_perturb_gaussian_noise(&f.img, 0.0f, 10.0f, 1)
#define CALL_FILL          vppo_perturb_fill(&f.img, 128)
#define CALL_BLUR          vppo_perturb_gaussian_blur(&f.img, 1.0f, f.work, sizeof f.work)
#define CALL_ROWS          vppo_perturb_patch_rows(f.rows, 4, 2, 2, 0.5f, NULL, 1)

/* ROW(expected, break-one-thing statement, call): a fresh fixture per row. */
#define ROW(expected, breakage, call) do { test_fixture f; test_fixture_init(&f); breakage; CHECK_STATUS(expected, call); } while (0)

/* Sets buffer k (0..5: dep, traj_dep, count, scale, adv, select) of p to NULL. */
static void prepared_buffer_null(vppo_prepared *p, int k)
{
    switch (k) {
    case 0: p->dep = NULL; break;
    case 1: p->traj_dep = NULL; break;
    case 2: p->count = NULL; break;
    case 3: p->scale = NULL; break;
    case 4: p->adv = NULL; break;
    default: p->select = NULL; break;
    }
}

void bad_input_matrix_null_pointers(void)
{
    int k;
    /* the fixture is valid for every call */
    ROW(VPPO_OK, (void)0, CALL_DEP_SAMPLED);  ROW(VPPO_OK, (void)0, CALL_DEP_LOGITS);
    ROW(VPPO_OK, (void)0, CALL_LOGPROBS);     ROW(VPPO_OK, (void)0, CALL_BACKWARD);
    ROW(VPPO_OK, (void)0, CALL_GROUP_ADV);    ROW(VPPO_OK, (void)0, CALL_GROUP_FILTER);
    ROW(VPPO_OK, (void)0, CALL_SEQ_MEAN);     ROW(VPPO_OK, (void)0, CALL_TAS_STATS);
    ROW(VPPO_OK, (void)0, CALL_TAS_SCALES);   ROW(VPPO_OK, (void)0, CALL_TOPK);
    ROW(VPPO_OK, (void)0, CALL_SOFT);         ROW(VPPO_OK, (void)0, CALL_LOSS);
    ROW(VPPO_OK, (void)0, CALL_PREPARE);      ROW(VPPO_OK, (void)0, CALL_STEP);
    ROW(VPPO_OK, (void)0, CALL_BLACKEN);      ROW(VPPO_OK, (void)0, CALL_NOISE);
    ROW(VPPO_OK, (void)0, CALL_FILL);         ROW(VPPO_OK, (void)0, CALL_BLUR);
    ROW(VPPO_OK, (void)0, CALL_ROWS);
    /* NULL where a pointer is required */
    ROW(VPPO_ERR_NULL, f.s.offsets = NULL, CALL_DEP_SAMPLED);
    ROW(VPPO_ERR_NULL, (void)0, vppo_dependency_sampled(NULL, f.logp, f.aug, VPPO_EST_K3, f.out));
    ROW(VPPO_ERR_NULL, (void)0, vppo_dependency_sampled(&f.s, NULL, f.aug, VPPO_EST_K3, f.out));
    ROW(VPPO_ERR_NULL, (void)0, vppo_dependency_sampled(&f.s, f.logp, NULL, VPPO_EST_K3, f.out));
    ROW(VPPO_ERR_NULL, (void)0, vppo_dependency_sampled(&f.s, f.logp, f.aug, VPPO_EST_K3, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_dependency_logits(NULL, &f.x, VPPO_DIV_KL, f.out));
    ROW(VPPO_ERR_NULL, (void)0, vppo_dependency_logits(&f.x, NULL, VPPO_DIV_KL, f.out));
    ROW(VPPO_ERR_NULL, f.x.data = NULL, CALL_DEP_LOGITS);
    ROW(VPPO_ERR_NULL, (void)0, vppo_logprobs(NULL, f.ids, f.out, NULL, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_logprobs(&f.x, NULL, f.out, NULL, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_logprobs_backward(NULL, f.ids, NULL, NULL, f.logp, NULL, &f.g));
    ROW(VPPO_ERR_NULL, (void)0, vppo_logprobs_backward(&f.x, NULL, NULL, NULL, f.logp, NULL, &f.g));
    ROW(VPPO_ERR_NULL, (void)0, vppo_logprobs_backward(&f.x, f.ids, NULL, NULL, f.logp, NULL, NULL));
    ROW(VPPO_ERR_NULL, f.g.data = NULL, CALL_BACKWARD);
    ROW(VPPO_ERR_NULL, (void)0, vppo_group_advantages(NULL, f.score, VPPO_ADV_GRPO, 1e-6f, f.out));
    ROW(VPPO_ERR_NULL, (void)0, vppo_group_advantages(&f.s, NULL, VPPO_ADV_GRPO, 1e-6f, f.out));
    ROW(VPPO_ERR_NULL, (void)0, vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO, 1e-6f, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_group_filter(&f.s, NULL, 0.01, 0.99, f.sel));
    ROW(VPPO_ERR_NULL, (void)0, vppo_group_filter(&f.s, f.score, 0.01, 0.99, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_seq_mean(&f.s, NULL, f.mean, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_seq_mean(&f.s, f.score, NULL, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_tas_stats_compute(NULL, NULL, 2, &f.st));
    ROW(VPPO_ERR_NULL, (void)0, vppo_tas_stats_compute(f.traj, NULL, 2, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_tas_scales(NULL, &f.st, f.traj, NULL, 2, f.scale));
    ROW(VPPO_ERR_NULL, (void)0, vppo_tas_scales(&f.tas, NULL, f.traj, NULL, 2, f.scale));
    ROW(VPPO_ERR_NULL, (void)0, vppo_tas_scales(&f.tas, &f.st, NULL, NULL, 2, f.scale));
    ROW(VPPO_ERR_NULL, (void)0, vppo_tas_scales(&f.tas, &f.st, f.traj, NULL, 2, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_topk_mask(&f.s, NULL, 0.4, f.sel, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_topk_mask(&f.s, f.score, 0.4, NULL, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_soft_mask(&f.s, NULL, 0.4, f.out));
    ROW(VPPO_ERR_NULL, (void)0, vppo_soft_mask(&f.s, f.score, 0.4, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_policy_loss(NULL, &f.s, f.logp, f.aug, NULL, f.score, NULL, NULL, f.out, &f.lo));
    ROW(VPPO_ERR_NULL, (void)0, vppo_policy_loss(&f.loss, NULL, f.logp, f.aug, NULL, f.score, NULL, NULL, f.out, &f.lo));
    ROW(VPPO_ERR_NULL, (void)0, vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, NULL, f.score, NULL, NULL, f.out, NULL));
    ROW(VPPO_ERR_NULL, f.loss.kl_kind = VPPO_KL_K1, CALL_LOSS);   /* KL needs logp_ref */
    ROW(VPPO_ERR_NULL, (void)0, vppo_prepare(NULL, &f.s, f.logp, f.aug, NULL, f.adv_seq, NULL, &f.p));
    ROW(VPPO_ERR_NULL, (void)0, vppo_prepare(&f.cfg, &f.s, f.logp, f.aug, NULL, NULL, NULL, &f.p));
    ROW(VPPO_ERR_NULL, (void)0, vppo_prepare(&f.cfg, &f.s, f.logp, f.aug, NULL, f.adv_seq, NULL, NULL));
    for (k = 0; k < 6; ++k)   /* every buffer of vppo_prepared is required (select: through vppo_step) */
        ROW(VPPO_ERR_NULL, prepared_buffer_null(&f.p, k), k < 5 ? CALL_PREPARE : CALL_STEP);
    ROW(VPPO_ERR_NULL, (void)0, vppo_prepare(&f.cfg, &f.s, NULL, f.aug, NULL, f.adv_seq, NULL, &f.p));   /* TAS/TGF need the dependency */
    ROW(VPPO_ERR_NULL, (void)0, vppo_step(&f.cfg, &f.s, NULL, f.aug, f.logp, NULL, f.adv_seq, &f.p, f.out, &f.lo));
    ROW(VPPO_ERR_NULL, (void)0, vppo_step(&f.cfg, &f.s, f.logp, NULL, f.logp, NULL, f.adv_seq, &f.p, f.out, &f.lo));
    ROW(VPPO_ERR_NULL, (void)0, vppo_step(&f.cfg, &f.s, f.logp, f.aug, f.logp, NULL, f.adv_seq, &f.p, f.out, NULL));
    ROW(VPPO_ERR_NULL, (void)0, vppo_perturb_patch_blackening(NULL, 2, 0.5f, 1));
    ROW(VPPO_ERR_NULL, f.img.pixels = NULL, CALL_NOISE);
    ROW(VPPO_ERR_NULL, (void)0, vppo_perturb_gaussian_blur(&f.img, 1.0f, NULL, 4096));
    ROW(VPPO_ERR_NULL, (void)0, vppo_perturb_patch_rows(NULL, 4, 2, 2, 0.5f, NULL, 1));
    ROW(VPPO_ERR_NULL, (void)0, vppo_offsets_uniform(NULL, 2, 4));
    /* optional pointers really are optional */
    ROW(VPPO_OK, f.s.mask = NULL, CALL_SOFT);
    ROW(VPPO_OK, (void)0, vppo_seq_mean(&f.s, f.score, f.mean, NULL));
    ROW(VPPO_OK, (void)0, vppo_tas_stats_compute(f.traj, NULL, 2, &f.st));
    ROW(VPPO_OK, (void)0, vppo_topk_mask(&f.s, f.score, 0.4, f.sel, NULL));
    ROW(VPPO_OK, (void)0, vppo_logprobs(&f.x, NULL, NULL, NULL, NULL));
    ROW(VPPO_OK, (void)0, vppo_logprobs_backward(&f.x, NULL, NULL, NULL, NULL, NULL, &f.g));
    ROW(VPPO_OK, (void)0, vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, NULL, f.score, NULL, NULL, NULL, &f.lo));
    ROW(VPPO_OK, (f.cfg.use_tas = 0, f.cfg.use_tgf = 0), vppo_step(&f.cfg, &f.s, f.logp, f.aug, NULL, NULL, f.adv_seq, &f.p, NULL, &f.lo));
}

void bad_input_matrix_sizes(void)
{
    static const int64_t decreasing[3] = { 0, 5, 4 }, negative_first[3] = { -2, 0, 4 };
    ROW(VPPO_ERR_SIZE, f.s.offsets = decreasing, CALL_DEP_SAMPLED);
    ROW(VPPO_ERR_SIZE, f.s.offsets = negative_first, CALL_GROUP_ADV);
    ROW(VPPO_ERR_SIZE, f.s.n_seqs = -1, CALL_SEQ_MEAN);
    ROW(VPPO_ERR_SIZE, f.s.offsets = decreasing, CALL_TOPK);
    ROW(VPPO_ERR_SIZE, f.s.offsets = decreasing, CALL_SOFT);
    ROW(VPPO_ERR_SIZE, f.s.offsets = decreasing, CALL_LOSS);
    ROW(VPPO_ERR_SIZE, f.s.offsets = decreasing, CALL_PREPARE);
    ROW(VPPO_ERR_SIZE, f.s.offsets = negative_first, CALL_STEP);
    ROW(VPPO_ERR_SIZE, f.s.offsets = decreasing, CALL_GROUP_FILTER);
    ROW(VPPO_ERR_SIZE, f.x.row_stride = 4, CALL_LOGPROBS);            /* stride < vocab */
    ROW(VPPO_ERR_SIZE, f.x.vocab = 0, CALL_DEP_LOGITS);
    ROW(VPPO_ERR_SIZE, f.x.n_rows = -3, CALL_BACKWARD);
    ROW(VPPO_ERR_SIZE, f.x.n_rows = INT64_MAX / 4, CALL_LOGPROBS);    /* n_rows * stride overflows */
    ROW(VPPO_ERR_SIZE, f.g.row_stride = 4, CALL_BACKWARD);
    ROW(VPPO_ERR_SIZE, (void)0, vppo_tas_stats_compute(f.traj, NULL, -1, &f.st));
    ROW(VPPO_ERR_SIZE, f.count[1] = -4, CALL_TAS_STATS);
    ROW(VPPO_ERR_SIZE, f.count[1] = -4, CALL_TAS_SCALES);
    ROW(VPPO_ERR_SIZE, f.st.n = -1, CALL_TAS_SCALES);
    ROW(VPPO_ERR_SIZE, f.mask[4] = f.mask[5] = f.mask[6] = 0, CALL_GROUP_ADV);   /* a singleton group */
    ROW(VPPO_ERR_SIZE, f.img.row_stride = 11, CALL_BLACKEN);
    ROW(VPPO_ERR_SIZE, f.img.height = -1, CALL_FILL);
    ROW(VPPO_ERR_SIZE, f.img.channels = 0, CALL_BLUR);
    ROW(VPPO_ERR_SIZE, (void)0, vppo_perturb_patch_rows(f.rows, 4, 3, 2, 0.5f, NULL, 1));
    ROW(VPPO_ERR_SIZE, (void)0, vppo_offsets_uniform(f.off, -1, 4));
    ROW(VPPO_ERR_WORKSPACE, (void)0, vppo_perturb_gaussian_blur(&f.img, 1.0f, f.work, 8));
    /* empty things are sizes too, and valid */
    ROW(VPPO_OK, f.s.n_seqs = 0, CALL_STEP);
    ROW(VPPO_OK, f.x.n_rows = 0, CALL_BACKWARD);
    ROW(VPPO_OK, (f.off[1] = 0, f.off[2] = 0), CALL_LOSS);
}

void bad_input_matrix_parameters(void)
{
    ROW(VPPO_ERR_PARAM, (void)0, vppo_dependency_sampled(&f.s, f.logp, f.aug, (vppo_estimator)5, f.out));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_dependency_logits(&f.x, &f.x, (vppo_divergence)-1, f.out));
    ROW(VPPO_ERR_PARAM, f.x.temperature = 0.0f, CALL_DEP_LOGITS);
    ROW(VPPO_ERR_PARAM, f.x.temperature = -0.5f, CALL_LOGPROBS);
    ROW(VPPO_ERR_PARAM, f.x.dtype = (vppo_dtype)3, CALL_BACKWARD);
    ROW(VPPO_ERR_PARAM, f.g.data = f.z + 1, CALL_BACKWARD);           /* partial overlap */
    ROW(VPPO_ERR_UNSUPPORTED, f.g.dtype = VPPO_F16, CALL_BACKWARD);
    ROW(VPPO_ERR_PARAM, (void)0, vppo_group_advantages(&f.s, f.score, (vppo_adv_kind)4, 1e-6f, f.out));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO, -1e-6f, f.out));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO, NAN, f.out));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_group_filter(&f.s, f.score, 0.99, 0.01, f.sel));
    ROW(VPPO_ERR_PARAM, f.tas.beta_min = 2.0f, CALL_TAS_SCALES);
    ROW(VPPO_ERR_PARAM, f.tas.mode = (vppo_tas_mode)2, CALL_TAS_SCALES);
    ROW(VPPO_ERR_PARAM, f.st.max = -1.0, CALL_TAS_SCALES);
    ROW(VPPO_ERR_PARAM, (void)0, vppo_topk_mask(&f.s, f.score, 1.5, f.sel, NULL));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_topk_mask(&f.s, f.score, -0.5, f.sel, NULL));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_soft_mask(&f.s, f.score, 2.0, f.out));
    ROW(VPPO_ERR_PARAM, f.loss.clip_dual = 0.9f, CALL_LOSS);
    ROW(VPPO_ERR_PARAM, f.loss.clip_low = 1.2f, CALL_LOSS);
    ROW(VPPO_ERR_PARAM, f.loss.agg = (vppo_agg)9, CALL_LOSS);
    ROW(VPPO_ERR_PARAM, f.cfg.estimator = (vppo_estimator)9, CALL_PREPARE);
    ROW(VPPO_ERR_PARAM, f.cfg.topk_ratio = 1.01, CALL_PREPARE);
    ROW(VPPO_ERR_PARAM, f.cfg.tas.beta_min = -1.0f, CALL_STEP);
    ROW(VPPO_ERR_PARAM, f.cfg.loss.denom = -5.0, CALL_STEP);
    ROW(VPPO_OK, (f.cfg.use_tgf = 0, f.cfg.topk_ratio = 7.0), CALL_STEP);   /* unused fields are not checked */
    ROW(VPPO_OK, (f.cfg.use_tas = 0, f.cfg.tas.beta_min = -7.0f), CALL_STEP);
    ROW(VPPO_ERR_PARAM, (void)0, vppo_perturb_patch_blackening(&f.img, 0, 0.5f, 1));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_perturb_patch_blackening(&f.img, 2, 1.5f, 1));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_perturb_gaussian_noise(&f.img, 0.0f, -2.0f, 1));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_perturb_gaussian_blur(&f.img, -1.0f, f.work, sizeof f.work));
    ROW(VPPO_ERR_PARAM, (void)0, vppo_perturb_patch_rows(f.rows, 4, 2, 2, -0.5f, NULL, 1));
    ROW(VPPO_ERR_INDEX, f.ids[7] = 5, CALL_LOGPROBS);
    ROW(VPPO_ERR_INDEX, f.ids[0] = -1, CALL_BACKWARD);
}

void bad_input_matrix_nonfinite(void)
{
    ROW(VPPO_ERR_NONFINITE, f.logp[6] = NAN, CALL_DEP_SAMPLED);
    ROW(VPPO_ERR_NONFINITE, f.aug[2] = INFINITY, CALL_DEP_SAMPLED);
    ROW(VPPO_ERR_NONFINITE, (f.logp[3] = -INFINITY, f.aug[3] = -INFINITY), CALL_DEP_SAMPLED);
    ROW(VPPO_OK, (f.logp[3] = NAN, f.mask[3] = 0), CALL_DEP_SAMPLED);    /* garbage at invalid positions */
    ROW(VPPO_ERR_NONFINITE, f.z[13] = NAN, CALL_DEP_LOGITS);
    ROW(VPPO_ERR_NONFINITE, f.z[39] = INFINITY, CALL_LOGPROBS);
    ROW(VPPO_ERR_NONFINITE, f.z[0] = NAN, CALL_BACKWARD);
    ROW(VPPO_ERR_PARAM, (f.z[5] = f.z[6] = f.z[7] = f.z[8] = f.z[9] = -INFINITY), CALL_LOGPROBS);   /* all -inf row */
    ROW(VPPO_ERR_NONFINITE, f.logp[1] = NAN, CALL_BACKWARD);            /* dlogp */
    ROW(VPPO_ERR_NONFINITE, f.score[0] = NAN, CALL_GROUP_ADV);
    ROW(VPPO_ERR_NONFINITE, f.score[7] = INFINITY, CALL_GROUP_FILTER);
    ROW(VPPO_ERR_NONFINITE, f.score[4] = -INFINITY, CALL_SEQ_MEAN);
    ROW(VPPO_ERR_NONFINITE, f.traj[1] = NAN, CALL_TAS_STATS);
    ROW(VPPO_ERR_NONFINITE, f.traj[0] = INFINITY, CALL_TAS_SCALES);
    ROW(VPPO_ERR_NONFINITE, f.score[2] = NAN, CALL_TOPK);
    ROW(VPPO_OK, (f.score[2] = INFINITY, f.score[3] = -INFINITY), CALL_TOPK);   /* infinities are ordered */
    ROW(VPPO_ERR_NONFINITE, f.score[2] = INFINITY, CALL_SOFT);
    ROW(VPPO_ERR_NONFINITE, f.logp[5] = NAN, CALL_LOSS);
    ROW(VPPO_ERR_NONFINITE, f.logp[5] = -INFINITY, CALL_LOSS);          /* logp must be finite here */
    ROW(VPPO_ERR_NONFINITE, f.aug[0] = INFINITY, CALL_LOSS);
    ROW(VPPO_ERR_NONFINITE, f.score[1] = NAN, CALL_LOSS);
    ROW(VPPO_ERR_NONFINITE, f.aug[4] = NAN, CALL_PREPARE);
    ROW(VPPO_ERR_NONFINITE, f.adv_seq[1] = NAN, CALL_PREPARE);
    ROW(VPPO_OK, (f.adv_seq[1] = NAN, f.off[2] = 4), CALL_PREPARE);   /* unused: empty sequence */
    ROW(VPPO_ERR_NONFINITE, f.logp[7] = NAN, CALL_STEP);
    ROW(VPPO_ERR_NONFINITE, (f.logp[2] = -INFINITY, f.aug[2] = -INFINITY), CALL_PREPARE);   /* d = NaN */
    ROW(VPPO_ERR_NONFINITE, f.aug[2] = INFINITY, CALL_STEP);
    /* finite inputs whose results leave the float range */
    ROW(VPPO_ERR_NONFINITE, f.logp[4] = 100.0f, vppo_dependency_sampled(&f.s, f.logp, f.aug, VPPO_EST_PROB_DROP, f.out));
    ROW(VPPO_OK, f.logp[4] = 100.0f, CALL_DEP_SAMPLED);                  /* K3 clamps it */
    ROW(VPPO_ERR_NONFINITE, (f.cfg.estimator = VPPO_EST_PROB_DROP, f.logp[4] = 100.0f), CALL_PREPARE);
    ROW(VPPO_ERR_NONFINITE, f.adv_seq[0] = 3.2e38f, CALL_STEP);       /* 1.1 x 3.2e38 > FLT_MAX */
    ROW(VPPO_OK, (f.adv_seq[0] = 3.2e38f, f.cfg.use_tas = 0), CALL_PREPARE);   /* scale 1 */
    /* A = -2e38, r = e^3, no dual clip: dl/dlogp = 2e38 e^3 / 8 tokens > FLT_MAX */
    ROW(VPPO_ERR_NONFINITE, (f.score[0] = -2e38f, f.logp[0] = 0.0f, f.aug[0] = -3.0f, f.loss.clip_dual = 0.0f), CALL_LOSS);
    ROW(VPPO_OK, (f.score[0] = -2e38f, f.logp[0] = 0.0f, f.aug[0] = -3.0f), CALL_LOSS);   /* the dual clip caps it: no gradient */
    ROW(VPPO_ERR_NONFINITE, f.score[1] = NAN, vppo_perturb_patch_rows(f.rows, 4, 2, 2, 0.5f, f.score, 1));   /* fill */
}

/* Errors found while validating leave every output as it was. */
void errors_leave_outputs_untouched(void)
{
    test_fixture f;
    float out_before[8];
    uint8_t sel_before[8];
    test_fixture_init(&f);
    memset(f.out, 0x33, sizeof f.out); memcpy(out_before, f.out, sizeof f.out);
    memset(f.sel, 0x33, sizeof f.sel); memcpy(sel_before, f.sel, sizeof f.sel);
    f.logp[7] = NAN;   /* the last valid position */
    CHECK_STATUS(VPPO_ERR_NONFINITE, CALL_DEP_SAMPLED);
    CHECK_STATUS(VPPO_ERR_NONFINITE, CALL_LOSS);
    f.logp[7] = -1.0f; f.score[7] = NAN;
    CHECK_STATUS(VPPO_ERR_NONFINITE, CALL_GROUP_ADV);
    CHECK_STATUS(VPPO_ERR_NONFINITE, CALL_SOFT);
    CHECK_STATUS(VPPO_ERR_NONFINITE, CALL_TOPK);
    CHECK_STATUS(VPPO_ERR_NONFINITE, CALL_GROUP_FILTER);
    CHECK(memcmp(out_before, f.out, sizeof f.out) == 0);
    CHECK(memcmp(sel_before, f.sel, sizeof f.sel) == 0);
    f.score[7] = 0.0f; f.ids[7] = 99;
    CHECK_STATUS(VPPO_ERR_INDEX, CALL_LOGPROBS);
    CHECK(memcmp(out_before, f.out, sizeof f.out) == 0);
}
