/* tests/fuzz/fuzz_tgf.c - libFuzzer harness for Token-level Gradient Filtering (§6):
   vppo_topk_mask (with and without info) and vppo_soft_mask, on any sequence layout,
   mask, ratio and score bit pattern. */
#include "fuzz.h"

/* k_b = clamp(ceil(n_b * ratio - 1e-9), 0, n_b), docs/spec.md §6. */
static int64_t topk_count(int64_t n, double ratio)
{
    const double k = ceil((double)n * ratio - 1e-9);
    return k <= 0.0 ? 0 : k >= (double)n ? n : (int64_t)k;
}

static void run_topk(fz *f)
{
    fz_seqs q;
    const double ratio = fz_double(f);
    const unsigned null_sel = fz_u8(f) % 24, want_info = fz_u8(f) & 1;
    float *score;
    uint8_t *select, *before;
    vppo_topk_info info;
    fz_reasons why;
    vppo_status st;
    int64_t b, t, total_valid = 0, total_selected = 0, n_thr = 0, n_sel = 0, n_rej = 0;
    double sum_thr = 0.0, sum_sel = 0.0, sum_rej = 0.0;
    score = fz_seq_input(f, &q, 8, 300, null_sel, 4, &why);
    select = fz_out_mask_kept(f, q.n_alloc, &before);
    if (!(ratio >= 0.0 && ratio <= 1.0)) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (!q.bad)
        for (t = fz_begin(&q); t < fz_end(&q); ++t)
            if (fz_valid(&q, t) && score[t] != score[t]) why |= FZ_BIT(VPPO_ERR_NONFINITE);  /* +-inf are fine */
    if (null_sel == 1) q.s.offsets = NULL;
    st = vppo_topk_mask(null_sel == 0 ? NULL : &q.s, null_sel == 2 ? NULL : score, ratio,
                        null_sel == 3 ? NULL : select, want_info ? &info : NULL);
    if (!fz_per_token_outcome(&q, why, 0, st, select, before, 1)) return;
    for (b = 0; b < q.s.n_seqs; ++b) {
        const int64_t n = fz_count(&q, b), k = topk_count(n, ratio);
        int64_t taken = 0, last_sel_at_min = -1, first_rej_at_max = -1;
        float min_sel = HUGE_VALF, max_rej = -HUGE_VALF;
        for (t = q.offsets[b]; t < q.offsets[b + 1]; ++t) {
            if (!fz_valid(&q, t)) continue;
            FZ_ASSERT(select[t] == 0 || select[t] == 1);
            if (select[t]) {
                ++taken;
                if (score[t] <= min_sel) { min_sel = score[t]; last_sel_at_min = t; }
                if (fz_finite(score[t])) { sum_sel += score[t]; ++n_sel; }
            } else {
                if (score[t] > max_rej || first_rej_at_max < 0) { max_rej = score[t]; first_rej_at_max = t; }
                if (fz_finite(score[t])) { sum_rej += score[t]; ++n_rej; }
            }
        }
        FZ_ASSERT(taken == k);                                  /* exactly k_b */
        if (k > 0 && k < n) {
            FZ_ASSERT(min_sel >= max_rej);                      /* the largest scores */
            if (min_sel == max_rej) FZ_ASSERT(last_sel_at_min < first_rej_at_max);   /* ties: lower position */
        }
        if (k > 0 && fz_finite(min_sel)) { sum_thr += min_sel; ++n_thr; }
        total_valid += n;
        total_selected += k;
    }
    if (want_info) {
        FZ_ASSERT(info.n_valid == total_valid && info.n_selected == total_selected);
        FZ_ASSERT(fz_close(n_thr ? sum_thr / (double)n_thr : 0.0, info.threshold_mean, 1e-300, 1e-9));
        FZ_ASSERT(fz_close(n_sel ? sum_sel / (double)n_sel : 0.0, info.mean_selected, 1e-300, 1e-9));
        FZ_ASSERT(fz_close(n_rej ? sum_rej / (double)n_rej : 0.0, info.mean_rejected, 1e-300, 1e-9));
    }
}

static void run_soft(fz *f)
{
    fz_seqs q;
    const double ratio = fz_double(f);
    const unsigned null_sel = fz_u8(f) % 24;
    float *score, *weight, *before;
    fz_reasons why;
    vppo_status st;
    int64_t b, t, u;
    score = fz_seq_input(f, &q, 6, 200, null_sel, 4, &why);
    weight = fz_out_floats_kept(f, q.n_alloc, &before);
    if (!(ratio >= 0.0 && ratio <= 1.0)) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (!q.bad) why |= fz_values_reason(&q, score, 0);
    if (null_sel == 1) q.s.offsets = NULL;
    st = vppo_soft_mask(null_sel == 0 ? NULL : &q.s, null_sel == 2 ? NULL : score, ratio,
                        null_sel == 3 ? NULL : weight);
    if (!fz_per_token_outcome(&q, why, 0, st, weight, before, sizeof(float))) return;
    for (b = 0; b < q.s.n_seqs; ++b) {
        const int64_t n = fz_count(&q, b);
        double sum = 0.0;
        for (t = q.offsets[b]; t < q.offsets[b + 1]; ++t) {
            if (!fz_valid(&q, t)) continue;
            FZ_ASSERT(weight[t] >= 0.0f && weight[t] <= 1.0f);            /* a weight */
            if (ratio == 0.0) FZ_ASSERT(weight[t] == 0.0f);
            if (ratio == 1.0) FZ_ASSERT(weight[t] == 1.0f);
            sum += weight[t];
            if (n <= 64)                                                    /* monotone in the score */
                for (u = q.offsets[b]; u < q.offsets[b + 1]; ++u)
                    if (fz_valid(&q, u) && score[u] < score[t]) FZ_ASSERT(weight[u] <= weight[t]);
        }
        if (n > 0) {
            if (fz_debug()) fprintf(stderr, "seq %lld: n %lld ratio %.17g mean weight %.17g\n", (long long)b,
                                    (long long)n, ratio, sum / (double)n);
            FZ_ASSERT(fabs(sum / (double)n - ratio) <= 1e-6);              /* mean = ratio */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_run runs[] = { run_soft, run_topk };   /* odd byte: top-k */
    return fz_dispatch(data, size, 0, runs, 2);
}
