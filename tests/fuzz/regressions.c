/* tests/fuzz/regressions.c - one test per defect the fuzzers (tests/fuzz/fuzz_*.c) found in
   vppo.h, part of the suite (tests/tests.def). Each states the property that failed, on
   the smallest input that showed it, on every ISA this machine runs. */
#include "../test.h"
#include <float.h>

/* Runs body once per ISA this build and CPU can run, then restores the ISA. */
#define FOR_EVERY_ISA(isa_var) for (isa_var = VPPO_ISA_SCALAR; isa_var <= VPPO_ISA_NEON; ++isa_var) \
    if (vppo_isa_select((vppo_isa)isa_var) == VPPO_OK)

/* fuzz_perception: with logits of 1e33 (or any |u| above ~1e11) the scalar path formed
   lse = max + log(sum) in double, where log(sum) vanishes next to max: a two-way tie read
   q = 1 for both entries, so JS came out as 1.5 ln 2 (above its bound ln 2) and logp of
   a tied token as 0 instead of -ln 2. */
void fuzz_found_huge_logits_keep_log_sum(void)
{
    /* P = one-hot on entry 0; Q = half on entry 1, half on entry 2: disjoint supports,
       so JS = ln 2 exactly; logp of entry 1 under Q = -ln 2, lse = 1e33 + ln 2 */
    static const float p[3] = { 1e33f, 0.0f, 0.0f }, q[3] = { 0.0f, 1e33f, 1e33f };
    const vppo_isa before = vppo_isa_active();
    const vppo_logits P = { p, VPPO_F32, 1, 3, 3, 1.0f }, Q = { q, VPPO_F32, 1, 3, 3, 1.0f };
    const int32_t id = 1;
    int isa;
    FOR_EVERY_ISA(isa) {
        float js, logp, ent;
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P, &Q, VPPO_DIV_JS, &js));
        CHECK_NEAR(log(2.0), js, TOL_DIV);
        CHECK_STATUS(VPPO_OK, vppo_logprobs(&Q, &id, &logp, NULL, &ent));
        CHECK_NEAR(-log(2.0), logp, TOL_LSE);
        CHECK_NEAR(log(2.0), ent, TOL_DIV);
    }
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

/* fuzz_perception: at a tiny temperature (here 1.5e-36, so u ~ 6e32) the vector paths
   formed logp as u_id - zmax * (1/T), two roundings of a huge number that differ by
   ~1e17: logp of the most likely token came out as +7.2e16; the backward took
   hi = float(lse T) != zmax, so exp((z - hi) / T) overflowed and g * p gave NaN even
   for g = 0. The fused linear head's backward had the same fault. */
void fuzz_found_tiny_temperature_gradients_are_numbers(void)
{
    static const float z[3] = { 0.00095564907f, 0.0005f, -1.0f };
    const float T = 1.49899072e-36f;
    const vppo_isa before = vppo_isa_active();
    const vppo_logits x = { z, VPPO_F32, 1, 3, 3, T };
    const int32_t id = 0;
    /* u differs by ~3e32 between entries: p = (1, 0, 0) to every precision, logp(0) = 0,
       and every gradient entry g (delta - p) / T is 0 (0 * 1/T for entry 0) */
    static const float h[2] = { 0.00095564907f, 1.0f }, w[6] = { 1.0f, 0.0f, 0.5f, 0.0f, -1.0f, 0.0f };
    float grad[3], logp, dh[2];
    const float g_one = 1.0f, g_zero = 0.0f;
    const size_t need = vppo_linear_workspace(1, 2, 3);
    void *work = malloc(need);
    vppo_grad_out go;
    int isa, k;
    go.data = grad; go.dtype = VPPO_F32; go.row_stride = 3;
    CHECK(work != NULL);
    FOR_EVERY_ISA(isa) {
        CHECK_STATUS(VPPO_OK, vppo_logprobs(&x, &id, &logp, NULL, NULL));
        CHECK(logp <= 0.0f && logp >= -1e-6f);
        for (k = 0; k < 2; ++k) {
            CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&x, &id, NULL, NULL, k ? &g_one : &g_zero, NULL, &go));
            CHECK(grad[0] == 0.0f && grad[1] == 0.0f && grad[2] == 0.0f);
            /* the same logits through the linear head: z_j = h . w_j */
            CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(h, w, 1, 2, 3, T, &id, NULL, NULL, k ? &g_one : &g_zero,
                                                                NULL, dh, NULL, work, need));
            CHECK(dh[0] == 0.0f && dh[1] == 0.0f);
        }
    }
    free(work);
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

/* fuzz_loss: finite rewards near +-FLT_MAX gave advantages beyond the float range,
   returned as inf with VPPO_OK. Now VPPO_ERR_NONFINITE, found before anything is written. */
void fuzz_found_group_advantages_that_overflow_are_an_error(void)
{
    /* NO_STD: r - mean = 3e38 + 1e38 = 4e38 > FLT_MAX; RLOO: 3e38 - (-3e38) = 6e38 */
    static const float rewards[3] = { 3e38f, -3e38f, -3e38f };
    const int64_t offsets[2] = { 0, 3 }, two[2] = { 0, 2 };
    const vppo_seqs g3 = { 1, offsets, NULL }, g2 = { 1, two, NULL };
    float adv[3] = { 7.0f, 7.0f, 7.0f };
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_group_advantages(&g3, rewards, VPPO_ADV_GRPO_NO_STD, 1e-6f, adv));
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_group_advantages(&g2, rewards, VPPO_ADV_RLOO, 1e-6f, adv));
    CHECK(adv[0] == 7.0f && adv[1] == 7.0f && adv[2] == 7.0f);          /* nothing written */
    /* GRPO divides by the spread: (3e38 + 1e38) / sigma(= 3.46e38) = 1.1547 */
    CHECK_STATUS(VPPO_OK, vppo_group_advantages(&g3, rewards, VPPO_ADV_GRPO, 0.0f, adv));
    CHECK_NEAR(4.0 / sqrt(12.0), adv[0], TOL_TOKEN);
    /* a spread that fits: 1e38 and -1e38, mean 0 */
    {
        static const float fits[2] = { 1e38f, -1e38f };
        CHECK_STATUS(VPPO_OK, vppo_group_advantages(&g2, fits, VPPO_ADV_GRPO_NO_STD, 0.0f, adv));
        CHECK(adv[0] == fits[0] && adv[1] == fits[1]);   /* stored floats: exact under any FLT_EVAL_METHOD */
    }
}

/* fuzz_loss: denom (or agg_norm) a denormal like 5e-312 made 1 / divisor infinite: the
   loss came out NaN (0 * inf) with VPPO_OK, and a NaN gradient escaped the overflow check
   (fabs(NaN) > FLT_MAX is false). Now VPPO_ERR_NONFINITE, as for a gradient overflow. */
void fuzz_found_loss_with_a_vanishing_divisor_is_an_error(void)
{
    const int64_t offsets[2] = { 0, 2 };
    const vppo_seqs s = { 1, offsets, NULL };
    static const float logp[2] = { -1.0f, -2.0f }, adv[2] = { 0.0f, 0.0f };
    float dlogp[2];
    vppo_loss_out out;
    vppo_loss_config c = vppo_loss_config_default();
    c.entropy_coef = 0.0f;                /* every term 0: 0 / 5e-312 computed as 0 * inf */
    c.denom = 5e-312;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_policy_loss(&c, &s, logp, logp, NULL, adv, NULL, NULL, NULL, &out));
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_policy_loss(&c, &s, logp, logp, NULL, adv, NULL, NULL, dlogp, &out));
    c.denom = 0.0;
    c.agg = VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM;
    c.agg_norm = 5e-312;
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_policy_loss(&c, &s, logp, logp, NULL, adv, NULL, NULL, dlogp, &out));
    c.agg_norm = 1e-300;                  /* small but harmless: every term is 0 */
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&c, &s, logp, logp, NULL, adv, NULL, NULL, dlogp, &out));
    CHECK(out.loss == 0.0 && dlogp[0] == 0.0f && dlogp[1] == 0.0f);
}

/* fuzz_linear: vppo_linear_workspace (and every linear call before its size checks) formed
   4 * d, a signed overflow (undefined behaviour) for d above INT64_MAX / 4. The suite's
   sanitizer build (make test-sanitize) turns a recurrence into a failure. */
void fuzz_found_linear_workspace_with_huge_d_is_defined(void)
{
    static const float one[1] = { 1.0f };
    float lse[1];
    unsigned char work[64];
    const int64_t d = INT64_MAX / 2;
    CHECK(vppo_linear_workspace(1, d, 5) > 0);
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_linear_logprobs(one, one, 1, d, 5, 1.0f, NULL, NULL, lse, NULL, work, sizeof work));
}

/* fuzz_linear: the fused head's block kernels take 1/T as a float; for a temperature below
   1/FLT_MAX (a denormal such as 1e-40) it was inf, and the backward with a given lse
   returned NaN gradients with VPPO_OK (the forward calls failed as PARAM by accident).
   Now every linear call refuses such a temperature as VPPO_ERR_PARAM before writing. */
void fuzz_found_linear_head_refuses_a_denormal_temperature(void)
{
    static const float h[2] = { 0.5f, 1.0f }, w[6] = { 1.0f, 0.0f, 0.5f, 0.0f, -1.0f, 0.0f };
    const int32_t id = 0;
    const float lse = 3.0f, g = 1.0f, T = 1e-40f;
    float dh[2] = { 7.0f, 7.0f }, out = 7.0f;
    const size_t need = vppo_linear_workspace(1, 2, 3);
    void *work = malloc(need);
    CHECK(work != NULL && 1.0 / (double)T > FLT_MAX);
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_linear_logprobs_backward(h, w, 1, 2, 3, T, &id, &lse, NULL, &g, NULL, dh, NULL,
                                                               work, need));
    CHECK(dh[0] == 7.0f && dh[1] == 7.0f);
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_linear_logprobs(h, w, 1, 2, 3, T, NULL, NULL, &out, NULL, work, need));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_linear_dependency(h, h, w, 1, 2, 3, T, VPPO_DIV_KL, &out, work, need));
    /* the smallest temperature the head takes: 1/T just inside the float range */
    CHECK_STATUS(VPPO_OK, vppo_linear_logprobs(h, w, 1, 2, 3, 3e-39f, NULL, NULL, &out, NULL, work, need));
    free(work);
}

/* fuzz_linear: at a huge temperature (3e38, vocab 17) lse T = zmax + T log V leaves the
   float range; the fused head's backward handed it to the block kernels as a float (inf)
   and returned NaN gradients with VPPO_OK (even for dlogp = 0). It now takes the double
   formula for such rows, as the §2 backward does. */
void fuzz_found_linear_backward_at_a_huge_temperature(void)
{
    enum { V = 17 };
    const float h[2] = { 0.5f, 1.0f }, T = 3e38f, zero = 0.0f, one = 1.0f;
    const int32_t id = 0;
    float w[2 * V], dh[2];
    const size_t need = vppo_linear_workspace(1, 2, V);
    void *work = malloc(need);
    const vppo_isa before = vppo_isa_active();
    int isa, j;
    CHECK(work != NULL);
    for (j = 0; j < V; ++j) { w[2 * j] = (float)j / V; w[2 * j + 1] = 0.0f; }
    FOR_EVERY_ISA(isa) {
        CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(h, w, 1, 2, V, T, &id, NULL, NULL, &zero, NULL, dh, NULL,
                                                            work, need));
        CHECK(dh[0] == 0.0f && dh[1] == 0.0f);
        /* p uniform: dh_0 = sum_j (delta_j0 - 1/V) (j/V) / T = -(1/V) (sum_j j/V) / T = -(8/17) / T */
        CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(h, w, 1, 2, V, T, &id, NULL, NULL, &one, NULL, dh, NULL,
                                                            work, need));
        CHECK_NEAR(-(8.0 / 17.0) / (double)T, dh[0], 1e-44, 1e-5);
        CHECK(dh[1] == 0.0f);
    }
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
    free(work);
}

/* fuzz_linear (found by make fuzz-quick in CI): with weights near FLT_MAX the fused
   backward's dhidden = sum_j gz_j w_j left the float range and came back as -inf with
   VPPO_OK. Now VPPO_ERR_NONFINITE, as a loss gradient beyond the float range is. */
void fuzz_found_linear_backward_dhidden_beyond_float_range_is_an_error(void)
{
    /* z = h w = (3e38, -3e38): p = (1, 0); id 1, g = 10: gz = (-10, 10),
       dhidden = -10 * 3e38 + 10 * (-3e38) = -6e39 */
    static const float h[1] = { 1.0f }, w[2] = { 3e38f, -3e38f };
    const int32_t id = 1;
    const float g = 10.0f, small = 1e-30f;
    const size_t need = vppo_linear_workspace(1, 1, 2);
    void *work = malloc(need);
    float dh[1];
    CHECK(work != NULL);
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_linear_logprobs_backward(h, w, 1, 1, 2, 1.0f, &id, NULL, NULL, &g, NULL,
                                                                   dh, NULL, work, need));
    /* the same with a tiny upstream gradient stays in range: dhidden = -6e8 */
    CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(h, w, 1, 1, 2, 1.0f, &id, NULL, NULL, &small, NULL,
                                                        dh, NULL, work, need));
    CHECK_NEAR(-6e8, dh[0], 1e-7, 1e-5);
    free(work);
}
