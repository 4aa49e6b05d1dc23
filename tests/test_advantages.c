/* tests/test_advantages.c - docs/spec.md §4: group advantages and the dynamic-sampling filter. */
#include "test.h"

/* GRPO written from its definition: mean, unbiased std, per group. */
static void ref_group(const float *r, const uint8_t *include, int n, vppo_adv_kind kind, double eps, double *adv)
{
    double mean = 0, var = 0, sum = 0, best = -INFINITY, second = -INFINITY;
    int i, m = 0, best_i = -1;
    for (i = 0; i < n; ++i) if (!include || include[i]) { sum += r[i]; ++m; }
    mean = m ? sum / m : 0;
    for (i = 0; i < n; ++i) if (!include || include[i]) var += (r[i] - mean) * (r[i] - mean);
    var = m > 1 ? var / (m - 1) : 0;
    for (i = 0; i < n; ++i) if ((!include || include[i]) && r[i] > best) { best = r[i]; best_i = i; }
    for (i = 0; i < n; ++i) if ((!include || include[i]) && i != best_i && r[i] > second) second = r[i];
    for (i = 0; i < n; ++i) {
        if (include && !include[i]) { adv[i] = 0; continue; }
        switch (kind) {
        case VPPO_ADV_GRPO: adv[i] = (r[i] - mean) / (sqrt(var) + eps); break;
        case VPPO_ADV_GRPO_NO_STD: adv[i] = r[i] - mean; break;
        case VPPO_ADV_RLOO: adv[i] = r[i] - (sum - r[i]) / (m - 1); break;
        case VPPO_ADV_GRPO_PASSK: adv[i] = i == best_i ? (best - second) / (sqrt(var) + eps) : 0; break;
        }
    }
}

static void check_kind(vppo_adv_kind kind, int with_mask, uint64_t seed)
{
    rng r = rng_make(seed);
    const int G = 6, per = 8;
    int64_t off[7];
    float rewards[48], adv[48];
    uint8_t mask[48];
    double want[48];
    int g, i;
    vppo_seqs s;
    vppo_offsets_uniform(off, G, per);
    for (i = 0; i < G * per; ++i) {
        /* 0/1 accuracy rewards for half the groups, continuous for the rest */
        rewards[i] = (i / per) % 2 ? (float)(rng_uniform(&r) < 0.4) : (float)rng_range(&r, -1, 2);
        mask[i] = (uint8_t)(!with_mask || rng_uniform(&r) < 0.75 || i % per < 2);
    }
    s.n_seqs = G; s.offsets = off; s.mask = with_mask ? mask : NULL;
    CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, rewards, kind, 1e-6f, adv));
    for (g = 0; g < G; ++g) ref_group(rewards + g * per, with_mask ? mask + g * per : NULL, per, kind, (float)1e-6, want + g * per);
    for (i = 0; i < G * per; ++i) CHECK_NEAR(want[i], adv[i], TOL_TOKEN);
}

void group_advantages_grpo_matches_reference(void)
{
    check_kind(VPPO_ADV_GRPO, 0, 1);
    check_kind(VPPO_ADV_GRPO, 1, 2);
    {   /* a worked example: rewards 1,0,0,1 -> mean 0.5, std sqrt(1/3) */
        const int64_t off[] = { 0, 4 };
        const float r[4] = { 1, 0, 0, 1 };
        float adv[4];
        vppo_seqs s; s.n_seqs = 1; s.offsets = off; s.mask = NULL;
        CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, r, VPPO_ADV_GRPO, 0.0f, adv));
        CHECK_NEAR(0.5 / sqrt(1.0 / 3.0), adv[0], TOL_TOKEN);
        CHECK_NEAR(-0.5 / sqrt(1.0 / 3.0), adv[1], TOL_TOKEN);
    }
}

void group_advantages_no_std_rloo_passk(void)
{
    check_kind(VPPO_ADV_GRPO_NO_STD, 0, 3);
    check_kind(VPPO_ADV_GRPO_NO_STD, 1, 4);
    check_kind(VPPO_ADV_RLOO, 0, 5);
    check_kind(VPPO_ADV_RLOO, 1, 6);
    check_kind(VPPO_ADV_GRPO_PASSK, 0, 7);
    check_kind(VPPO_ADV_GRPO_PASSK, 1, 8);
    {   /* pass@k: ties for the best go to the first; r_max - r_2nd is then 0 */
        const int64_t off[] = { 0, 4, 8 };
        const float r[8] = { 0.2f, 0.9f, 0.9f, 0.1f, 3, 1, 2, 0 };
        float adv[8];
        vppo_seqs s; s.n_seqs = 2; s.offsets = off; s.mask = NULL;
        CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, r, VPPO_ADV_GRPO_PASSK, 0.0f, adv));
        CHECK(adv[0] == 0 && adv[1] == 0 && adv[2] == 0 && adv[3] == 0);
        CHECK_NEAR((3.0 - 2.0) / sqrt(5.0 / 3.0), adv[4], TOL_TOKEN);   /* std of 3,1,2,0 */
        CHECK(adv[5] == 0 && adv[6] == 0 && adv[7] == 0);
    }
    {   /* RLOO with two responses: r0 - r1 and r1 - r0 */
        const int64_t off[] = { 0, 2 };
        const float r[2] = { 0.75f, 0.25f };
        float adv[2];
        vppo_seqs s; s.n_seqs = 1; s.offsets = off; s.mask = NULL;
        CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, r, VPPO_ADV_RLOO, 1e-6f, adv));
        CHECK(adv[0] == 0.5f && adv[1] == -0.5f);
    }
}

void group_advantages_mask_excludes_responses(void)
{
    const int64_t off[] = { 0, 5 };
    const float r[5] = { 1, 100, 0, -50, 1 };
    const uint8_t mask[5] = { 1, 0, 1, 0, 1 };   /* the outliers are excluded */
    float adv[5];
    vppo_seqs s; s.n_seqs = 1; s.offsets = off; s.mask = mask;
    CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, r, VPPO_ADV_GRPO_NO_STD, 1e-6f, adv));
    CHECK(adv[1] == 0.0f && adv[3] == 0.0f);
    CHECK_NEAR(1 - 2.0 / 3, adv[0], TOL_TOKEN);
    CHECK_NEAR(-2.0 / 3, adv[2], TOL_TOKEN);
    {   /* a fully excluded group is skipped (all 0), not an error */
        const uint8_t none[5] = { 0, 0, 0, 0, 0 };
        s.mask = none;
        memset(adv, 0x55, sizeof adv);
        CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, r, VPPO_ADV_GRPO, 1e-6f, adv));
        CHECK(adv[0] == 0 && adv[1] == 0 && adv[2] == 0 && adv[3] == 0 && adv[4] == 0);
    }
}

void group_advantages_constant_groups_are_zero(void)
{
    const int64_t off[] = { 0, 3, 6, 9 };
    const float r[9] = { 1, 1, 1, 0, 0, 0, 0.1f, 0.1f, 0.1f };
    float adv[9];
    int kind, i;
    vppo_seqs s; s.n_seqs = 3; s.offsets = off; s.mask = NULL;
    for (kind = VPPO_ADV_GRPO; kind <= VPPO_ADV_GRPO_PASSK; ++kind) {
        /* eps = 0 too: no 0/0 */
        CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, r, (vppo_adv_kind)kind, 0.0f, adv));
        for (i = 0; i < 9; ++i) CHECK(adv[i] == 0.0f);
    }
}

void group_advantages_singleton_group_is_an_error(void)
{
    const int64_t off[] = { 0, 3, 4 };
    const float r[4] = { 1, 0, 1, 1 };
    const uint8_t mask[4] = { 1, 0, 0, 1 };
    float adv[4] = { 9, 9, 9, 9 };
    uint8_t keep[4];
    vppo_seqs s; s.n_seqs = 2; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_group_advantages(&s, r, VPPO_ADV_GRPO, 1e-6f, adv));   /* group 1 has 1 */
    s.mask = mask;   /* group 0 now has one included response */
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_group_advantages(&s, r, VPPO_ADV_RLOO, 1e-6f, adv));
    CHECK(adv[0] == 9 && adv[3] == 9);            /* validated before writing */
    CHECK_STATUS(VPPO_OK, vppo_group_filter(&s, r, 0.01, 0.99, keep));   /* the filter needs no baseline */
}

void group_filter_keeps_groups_strictly_inside(void)
{
    const int64_t off[] = { 0, 4, 8, 12, 16 };
    const float acc[16] = { 1, 1, 1, 1,  0, 0, 0, 0,  1, 0, 0, 1,  1, 1, 1, 0 };
    const uint8_t mask[16] = { 1, 1, 1, 1,  1, 1, 1, 1,  1, 1, 1, 1,  1, 1, 1, 0 };
    uint8_t keep[16];
    int i;
    vppo_seqs s; s.n_seqs = 4; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_OK, vppo_group_filter(&s, acc, 0.01, 0.99, keep));
    for (i = 0; i < 16; ++i) CHECK_EQ_INT(i >= 8, keep[i]);   /* all-right and all-wrong groups dropped */
    s.mask = mask;   /* the last group's one wrong answer is excluded: mean 1, dropped */
    CHECK_STATUS(VPPO_OK, vppo_group_filter(&s, acc, 0.01, 0.99, keep));
    for (i = 0; i < 16; ++i) CHECK_EQ_INT(i >= 8 && i < 12, keep[i]);
    CHECK_STATUS(VPPO_OK, vppo_group_filter(&s, acc, 0.5, 0.99, keep));   /* mean exactly 0.5: not > lo */
    for (i = 0; i < 16; ++i) CHECK_EQ_INT(0, keep[i]);
    CHECK_STATUS(VPPO_OK, vppo_group_filter(&s, acc, -INFINITY, INFINITY, keep));
    for (i = 0; i < 16; ++i) CHECK_EQ_INT(mask[i], keep[i]);
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_group_filter(&s, acc, 0.9, 0.1, keep));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_group_filter(&s, acc, NAN, 0.1, keep));
}
