/* tests/test_basics.c - docs/spec.md §1 conventions and §10 ISA selection. */
#include "test.h"

void status_strings_describe_every_code(void)
{
    const vppo_status all[] = { VPPO_OK, VPPO_ERR_NULL, VPPO_ERR_SIZE, VPPO_ERR_PARAM, VPPO_ERR_INDEX,
                                VPPO_ERR_NONFINITE, VPPO_ERR_WORKSPACE, VPPO_ERR_UNSUPPORTED,
                                VPPO_ERR_CUDA, VPPO_ERR_ALLOC };
    const int values[] = { 0, -1, -2, -3, -4, -5, -6, -7, -8, -9 };
    size_t i, j;
    for (i = 0; i < sizeof all / sizeof all[0]; ++i) {
        CHECK_EQ_INT(values[i], (int)all[i]);
        CHECK(vppo_status_string(all[i]) != NULL && strlen(vppo_status_string(all[i])) > 1);
        CHECK(strcmp(vppo_status_string(all[i]), "unknown vppo_status") != 0);
        for (j = 0; j < i; ++j) CHECK(strcmp(vppo_status_string(all[i]), vppo_status_string(all[j])) != 0);
    }
    CHECK(strcmp(vppo_status_string((vppo_status)-42), "unknown vppo_status") == 0);
    CHECK(strcmp(vppo_status_string((vppo_status)7), "unknown vppo_status") == 0);
}

/* The version macros are the version the header's first line states ("vppo.h - vX.Y.Z"). */
void version_macros_exist(void)
{
    FILE *f = fopen("vppo.h", "r");
    char line[256] = "";
    int major = -1, minor = -1, patch = -1;
    CHECK(f != NULL);   /* the suite runs from the repository root */
    if (!f) return;
    CHECK(fgets(line, sizeof line, f) != NULL);
    fclose(f);
    CHECK_EQ_INT(3, sscanf(line, "/* vppo.h - v%d.%d.%d", &major, &minor, &patch));
    CHECK_EQ_INT(VPPO_VERSION_MAJOR, major);
    CHECK_EQ_INT(VPPO_VERSION_MINOR, minor);
    CHECK_EQ_INT(VPPO_VERSION_PATCH, patch);
}

void offsets_uniform_is_b_times_len(void)
{
    int64_t off[6], b;
    CHECK_STATUS(VPPO_OK, vppo_offsets_uniform(off, 5, 7));
    for (b = 0; b <= 5; ++b) CHECK_EQ_INT(b * 7, off[b]);
    CHECK_STATUS(VPPO_OK, vppo_offsets_uniform(off, 0, 7));
    CHECK_EQ_INT(0, off[0]);
    CHECK_STATUS(VPPO_OK, vppo_offsets_uniform(off, 3, 0));
    CHECK(off[0] == 0 && off[1] == 0 && off[3] == 0);
}

void offsets_uniform_rejects_bad_sizes(void)
{
    int64_t off[4] = { 9, 9, 9, 9 };
    CHECK_STATUS(VPPO_ERR_NULL, vppo_offsets_uniform(NULL, 3, 2));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_offsets_uniform(off, -1, 2));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_offsets_uniform(off, 3, -2));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_offsets_uniform(off, 3, INT64_MAX / 2));   /* overflow */
    CHECK(off[0] == 9 && off[3] == 9);   /* nothing written */
}

/* Every function that takes a vppo_seqs rejects the same malformed layouts. */
void seqs_reject_bad_offsets_everywhere(void)
{
    const int64_t decreasing[] = { 0, 4, 2 }, negative[] = { -1, 2, 4 };
    const int64_t ok_off[] = { 0, 2, 4 };
    float x[8] = { 0 }, out[8], mean[2];
    uint8_t sel[8];
    int64_t count[2];
    vppo_loss_out lo;
    vppo_loss_config lc = vppo_loss_config_default();
    vppo_seqs bad[3];
    int i;
    bad[0].n_seqs = 2; bad[0].offsets = decreasing; bad[0].mask = NULL;
    bad[1].n_seqs = 2; bad[1].offsets = negative; bad[1].mask = NULL;
    bad[2].n_seqs = -1; bad[2].offsets = ok_off; bad[2].mask = NULL;
    for (i = 0; i < 3; ++i) {
        const vppo_seqs *s = &bad[i];
        CHECK_STATUS(VPPO_ERR_SIZE, vppo_dependency_sampled(s, x, x, VPPO_EST_K3, out));
        CHECK_STATUS(VPPO_ERR_SIZE, vppo_group_advantages(s, x, VPPO_ADV_GRPO, 1e-6f, out));
        CHECK_STATUS(VPPO_ERR_SIZE, vppo_group_filter(s, x, 0.01, 0.99, sel));
        CHECK_STATUS(VPPO_ERR_SIZE, vppo_seq_mean(s, x, mean, count));
        CHECK_STATUS(VPPO_ERR_SIZE, vppo_topk_mask(s, x, 0.4, sel, NULL));
        CHECK_STATUS(VPPO_ERR_SIZE, vppo_soft_mask(s, x, 0.4, out));
        CHECK_STATUS(VPPO_ERR_SIZE, vppo_policy_loss(&lc, s, x, x, NULL, x, NULL, NULL, out, &lo));
    }
    {   /* offsets itself NULL */
        vppo_seqs s; s.n_seqs = 2; s.offsets = NULL; s.mask = NULL;
        CHECK_STATUS(VPPO_ERR_NULL, vppo_seq_mean(&s, x, mean, count));
        CHECK_STATUS(VPPO_ERR_NULL, vppo_topk_mask(&s, x, 0.4, sel, NULL));
        CHECK_STATUS(VPPO_ERR_NULL, vppo_seq_mean(NULL, x, mean, count));
    }
}

/* Per-token functions write [offsets[0], offsets[B]) (0 at invalid positions) and
   nothing outside it. */
void per_token_outputs_write_exactly_the_flat_range(void)
{
    const int64_t off[] = { 2, 5, 5, 9 };          /* starts at 2, an empty sequence in the middle */
    const uint8_t mask[12] = { 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1 };
    float logp[12], aug[12], dep[12], w[12], adv[12], dl[12];
    uint8_t sel[12];
    vppo_seqs s;
    vppo_loss_config lc = vppo_loss_config_default();
    vppo_loss_out lo;
    int i;
    s.n_seqs = 3; s.offsets = off; s.mask = mask;
    for (i = 0; i < 12; ++i) { logp[i] = -1.0f - 0.1f * i; aug[i] = -1.5f - 0.05f * i; adv[i] = 0.5f; }
#define CHECK_AROUND(arr, sentinel) CHECK(arr[0] == sentinel && arr[1] == sentinel && arr[9] == sentinel && \
                                          arr[10] == sentinel && arr[11] == sentinel)
    for (i = 0; i < 12; ++i) dep[i] = 77.0f;
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K3, dep));
    CHECK_AROUND(dep, 77.0f);
    CHECK(dep[3] == 0.0f && dep[8] == 0.0f && dep[2] > 0.0f);   /* masked -> 0, valid -> value */

    for (i = 0; i < 12; ++i) w[i] = 77.0f;
    CHECK_STATUS(VPPO_OK, vppo_soft_mask(&s, logp, 0.5, w));
    CHECK_AROUND(w, 77.0f);
    CHECK(w[3] == 0.0f && w[8] == 0.0f);

    for (i = 0; i < 12; ++i) sel[i] = 77;
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, logp, 0.5, sel, NULL));
    CHECK_AROUND(sel, 77);
    CHECK(sel[3] == 0 && sel[8] == 0);

    for (i = 0; i < 12; ++i) dl[i] = 77.0f;
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&lc, &s, logp, aug, NULL, adv, NULL, NULL, dl, &lo));
    CHECK_AROUND(dl, 77.0f);
    CHECK(dl[3] == 0.0f && dl[8] == 0.0f && dl[2] != 0.0f);
}

