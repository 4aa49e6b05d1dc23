/* tests/test_big.c - indices beyond 2^31: every offset, stride and flat position of vppo.h
   is 64-bit. The matrices are anonymous read-only (or never-touched writable) mappings
   that the OS backs lazily, so a logits matrix of 8 GiB costs a few pages: all-zero
   logits are valid rows (p uniform, lse = log V, H = log V, logp = -log V).

   In the suite (tests/tests.def), milliseconds:
     big_flat_positions_past_2_31     per-token functions on positions 2^31 - 3 .. 2^31 + 9
     big_logits_rows_past_2_31        rows 2^30 + 7 (f32) and 2^32 + 3 (bf16) elements apart
     big_sizes_beyond_the_address_space_are_size_errors
                                      counts whose bytes do not fit in a pointer difference
                                      are VPPO_ERR_SIZE, never a crash (on 32-bit targets this
                                      is what the two tests above become)
   make test-big (a separate program, VPPO_TEST_BIG_MAIN; seconds): a single row of
   2^31 + 64 logits through vppo_logprobs and vppo_dependency_logits on every ISA, and a
   fused linear head with vocab 2^31 + 17 (a weight of 8 GiB, lazily zero). */
#define _DEFAULT_SOURCE 1          /* MAP_ANONYMOUS, MAP_NORESERVE */
#ifdef VPPO_TEST_BIG_MAIN
#define VPPO_IMPLEMENTATION
#endif
#include "test.h"
#include <float.h>

#if defined(__linux__) && UINTPTR_MAX > 0xffffffffu
#define BIG_MMAP 1
#include <sys/mman.h>

/* bytes of zeros, backed by the OS only where touched. */
static void *big_map(size_t bytes, int writable)
{
    void *p = mmap(NULL, bytes, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
static void big_unmap(void *p, size_t bytes) { if (p) munmap(p, bytes); }
#endif

#define TWO31 ((int64_t)1 << 31)

/* ------------------------------------------------------------ per-token positions */

void big_flat_positions_past_2_31(void)
{
#ifdef BIG_MMAP
    /* sequence 0 = [2^31 - 3, 2^31 + 5) straddles the int32 limit, sequence 1 = [2^31 + 5, 2^31 + 9) */
    const int64_t off[3] = { TWO31 - 3, TWO31 + 5, TWO31 + 9 }, end = TWO31 + 16;
    const size_t fbytes = (size_t)end * sizeof(float), bbytes = (size_t)end;
    float *logp = (float *)big_map(fbytes, 1), *aug = (float *)big_map(fbytes, 1), *dep = (float *)big_map(fbytes, 1);
    float *dlogp = (float *)big_map(fbytes, 1);
    uint8_t *mask = (uint8_t *)big_map(bbytes, 1), *sel = (uint8_t *)big_map(bbytes, 1);
    vppo_seqs s;
    vppo_loss_config lc = vppo_loss_config_default();
    vppo_loss_out out;
    vppo_topk_info info;
    float mean[2];
    int64_t count[2], t, n_sel0 = 0;
    CHECK(logp && aug && dep && dlogp && mask && sel);
    if (!(logp && aug && dep && dlogp && mask && sel)) {
        test_fail(__FILE__, __LINE__, "mmap of %zu bytes failed: cannot test 64-bit positions", fbytes);
        goto done;
    }
    s.n_seqs = 2; s.offsets = off; s.mask = mask;
    for (t = off[0] - 2; t < end; ++t) { dep[t] = 7.0f; dlogp[t] = 7.0f; sel[t] = 9; }   /* sentinels */
    for (t = off[0]; t < off[2]; ++t) {
        const int64_t k = t - off[0];                        /* 0 .. 11 */
        mask[t] = (uint8_t)(k != 4);                         /* one hole, at 2^31 + 1 */
        logp[t] = -1.0f - 0.25f * (float)k;
        aug[t] = logp[t] - 0.5f;                             /* d = -0.5 everywhere */
    }
    /* K3: exp(d) - d - 1 at d = -0.5 */
    CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K3, dep));
    for (t = off[0]; t < off[2]; ++t)
        CHECK_NEAR(mask[t] ? exp(-0.5) + 0.5 - 1.0 : 0.0, dep[t], TOL_TOKEN);
    CHECK(dep[off[0] - 1] == 7.0f && dep[off[2]] == 7.0f);   /* nothing outside [offsets[0], offsets[B]) */
    CHECK_STATUS(VPPO_OK, vppo_seq_mean(&s, logp, mean, count));
    CHECK_EQ_INT(7, count[0]);                               /* 8 positions, one hole */
    CHECK_EQ_INT(4, count[1]);
    CHECK_NEAR((-1.0 * 7 - 0.25 * (0 + 1 + 2 + 3 + 5 + 6 + 7)) / 7, mean[0], TOL_TOKEN);
    CHECK_NEAR(-1.0 - 0.25 * (8 + 9 + 10 + 11) / 4.0, mean[1], TOL_TOKEN);
    /* top-k on logp: the largest are the earliest; k = ceil(0.4 * 7) = 3 and ceil(0.4 * 4) = 2 */
    CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, logp, 0.4, sel, &info));
    for (t = off[0]; t < off[1]; ++t) n_sel0 += sel[t];
    CHECK_EQ_INT(3, n_sel0);
    CHECK(sel[off[0]] == 1 && sel[off[0] + 1] == 1 && sel[off[0] + 2] == 1 && sel[off[0] + 4] == 0);
    CHECK(sel[off[1]] == 1 && sel[off[1] + 1] == 1 && sel[off[1] + 2] == 0);
    CHECK(sel[off[0] - 1] == 9 && sel[off[2]] == 9);
    CHECK_EQ_INT(11, info.n_valid);
    CHECK_EQ_INT(5, info.n_selected);
    /* the default loss with logp = logp_old (r = 1) and A = logp (negative, inside the dual
       clip): dl/dlogp = (-A r - entropy_coef) / N_valid = (-logp - 0.06) / 11 */
    CHECK_STATUS(VPPO_OK, vppo_policy_loss(&lc, &s, logp, logp, NULL, logp, NULL, NULL, dlogp, &out));
    for (t = off[0]; t < off[2]; ++t)
        CHECK_NEAR(mask[t] ? (-(double)logp[t] - 0.06) / 11.0 : 0.0, dlogp[t], TOL_TOKEN);
    CHECK(dlogp[off[0] - 1] == 7.0f && dlogp[off[2]] == 7.0f);
    CHECK_EQ_INT(11, out.n_valid);
done:
    big_unmap(logp, fbytes); big_unmap(aug, fbytes); big_unmap(dep, fbytes); big_unmap(dlogp, fbytes);
    big_unmap(mask, bbytes); big_unmap(sel, bbytes);
#else
    /* no lazily backed memory here (32-bit, or not Linux): positions past 2^31 need a
       buffer of 8 GiB; such offsets must be refused cleanly where they cannot exist */
    const int64_t off[3] = { TWO31 - 3, TWO31 + 5, TWO31 + 9 };
    vppo_seqs s;
    float x[1] = { 0.0f }, out[1];
    s.n_seqs = 2; s.offsets = off; s.mask = NULL;
    if ((double)(TWO31 + 9) * 4.0 > (double)PTRDIFF_MAX)
        CHECK_STATUS(VPPO_ERR_SIZE, vppo_dependency_sampled(&s, x, x, VPPO_EST_K3, out));
    else
        CHECK(sizeof(void *) >= 8);   /* a 64-bit target without mmap: nothing to map with */
#endif
}

/* ------------------------------------------------------------ logits rows far apart */

#ifdef BIG_MMAP
/* Checks rows of all-zero logits: lse = H = log V, logp = -log V,
   KL = 0, and the gradient (1/T) g (delta - 1/V) of every ISA. */
static void check_zero_rows(const vppo_logits *x, void *grad_mem, const vppo_grad_out *g)
{
    const int64_t n = x->n_rows, V = x->vocab;
    const double T = x->temperature, logV = log((double)V);
    float lse[4], ent[4], logp[4], dep[4], dl[4];
    int32_t ids[4];
    int64_t r;
    int isa, div;
    const vppo_isa before = vppo_isa_active();
    for (r = 0; r < n; ++r) { ids[r] = (int32_t)(r == 0 ? 0 : V - 1 - r); dl[r] = 1.0f + (float)r; }
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        CHECK_STATUS(VPPO_OK, vppo_logprobs(x, ids, logp, lse, ent));
        for (div = 0; div < 3; ++div) {
            CHECK_STATUS(VPPO_OK, vppo_dependency_logits(x, x, (vppo_divergence)div, dep));
            for (r = 0; r < n; ++r) CHECK(dep[r] == 0.0f);   /* identical rows: exactly 0 */
        }
        for (r = 0; r < n; ++r) {
            CHECK_NEAR(logV, lse[r], TOL_LSE);
            CHECK_NEAR(logV, ent[r], TOL_DIV);
            CHECK_NEAR(-logV, logp[r], TOL_LSE);
        }
        if (g) {
            CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(x, ids, NULL, NULL, dl, NULL, g));
            for (r = 0; r < n; ++r) {
                const float *row = (const float *)grad_mem + r * g->row_stride;
                const int64_t probe[3] = { 0, ids[r], V - 1 };
                int k;
                for (k = 0; k < 3; ++k)
                    CHECK_NEAR(((double)dl[r] * ((probe[k] == ids[r] ? 1.0 : 0.0) - 1.0 / (double)V)) / T,
                               row[probe[k]], TOL_DLOGITS);
            }
        }
    }
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}
#endif

void big_logits_rows_past_2_31(void)
{
#ifdef BIG_MMAP
    {   /* f32: 3 rows of 1000, 2^30 + 7 apart: the last row starts past element 2^31 */
        vppo_logits x;
        vppo_grad_out g;
        const int64_t S = ((int64_t)1 << 30) + 7, n = 3, V = 1000;
        const size_t bytes = (size_t)((n - 1) * S + V) * sizeof(float);
        void *z = big_map(bytes, 0), *gmem = big_map(bytes, 1);
        CHECK(z != NULL && gmem != NULL);
        if (z && gmem) {
            x.data = z; x.dtype = VPPO_F32; x.n_rows = n; x.vocab = V; x.row_stride = S; x.temperature = 0.7f;
            g.data = gmem; g.dtype = VPPO_F32; g.row_stride = S;
            check_zero_rows(&x, gmem, &g);
            CHECK(((const float *)gmem)[S - 1] == 0.0f && ((const float *)gmem)[V] == 0.0f);   /* gaps untouched */
        } else {
            test_fail(__FILE__, __LINE__, "mmap of %zu bytes failed", bytes);
        }
        big_unmap(z, bytes); big_unmap(gmem, bytes);
    }
    {   /* bf16: 3 rows of 300, 2^32 + 3 apart: offsets past 2^33 elements, 2^34 bytes */
        vppo_logits x;
        const int64_t S = ((int64_t)1 << 32) + 3, n = 3, V = 300;
        const size_t bytes = (size_t)((n - 1) * S + V) * 2;
        void *z = big_map(bytes, 0);
        CHECK(z != NULL);
        if (z) {
            x.data = z; x.dtype = VPPO_BF16; x.n_rows = n; x.vocab = V; x.row_stride = S; x.temperature = 1.3f;
            check_zero_rows(&x, NULL, NULL);
        } else {
            test_fail(__FILE__, __LINE__, "mmap of %zu bytes failed", bytes);
        }
        big_unmap(z, bytes);
    }
#else
    {   /* no 8 GiB here: the same shape must be refused, not read */
        float z[4] = { 0 }, lse[3];
        vppo_logits x;
        x.data = z; x.dtype = VPPO_F32; x.n_rows = 3; x.vocab = 1000; x.row_stride = ((int64_t)1 << 30) + 7; x.temperature = 1.0f;
        if ((double)x.row_stride * 3.0 * 4.0 > (double)PTRDIFF_MAX)
            CHECK_STATUS(VPPO_ERR_SIZE, vppo_logprobs(&x, NULL, NULL, lse, NULL));
        else
            CHECK(sizeof(void *) >= 8);
    }
#endif
}

/* Counts whose byte size does not fit in ptrdiff_t (on this target, 32- or 64-bit) are
   VPPO_ERR_SIZE before anything is read: tiny buffers stand in for impossible ones. */
void big_sizes_beyond_the_address_space_are_size_errors(void)
{
    const int64_t too_many = (int64_t)(PTRDIFF_MAX / 4) + 1;   /* floats: more bytes than PTRDIFF_MAX */
    const int64_t off[2] = { 0, too_many }, off_start[2] = { too_many, too_many };
    float x[4] = { 0 }, out[4];
    uint8_t sel[4], px[4] = { 0 };
    vppo_seqs s;
    vppo_logits L;
    vppo_grad_out g;
    vppo_image img;
    vppo_loss_config lc = vppo_loss_config_default();
    vppo_loss_out lo;
    int64_t offs[4];
    unsigned char work[256];
    s.n_seqs = 1; s.offsets = off; s.mask = NULL;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_dependency_sampled(&s, x, x, VPPO_EST_K3, out));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_topk_mask(&s, x, 0.5, sel, NULL));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_policy_loss(&lc, &s, x, x, NULL, x, NULL, NULL, out, &lo));
    s.offsets = off_start;                                     /* an empty batch that starts out there */
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_seq_mean(&s, x, out, NULL));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_offsets_uniform(offs, 2, too_many));
    /* logits: one row of too_many entries, or 2 rows that far apart */
    L.data = x; L.dtype = VPPO_F32; L.n_rows = 1; L.vocab = too_many; L.row_stride = too_many; L.temperature = 1.0f;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_logprobs(&L, NULL, NULL, out, NULL));
    L.n_rows = 2; L.vocab = 1;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_dependency_logits(&L, &L, VPPO_DIV_KL, out));
    L.n_rows = 2; L.vocab = 1; L.row_stride = 1;
    g.data = out; g.dtype = VPPO_F32; g.row_stride = too_many;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_logprobs_backward(&L, NULL, NULL, NULL, NULL, NULL, &g));
    /* images and patch rows */
    img.pixels = px; img.width = 1; img.height = 2; img.channels = 1; img.row_stride = (int64_t)(PTRDIFF_MAX / 2) + 1;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_perturb_fill(&img, 1));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_perturb_patch_rows(x, 2, 1, too_many, 0.5f, NULL, 1));
    /* an image whose blur workspace cannot exist: the query says so, the blur refuses it */
    CHECK(vppo_blur_workspace(INT32_MAX, INT32_MAX, INT32_MAX) == (size_t)-1 ||
          vppo_blur_workspace(INT32_MAX, INT32_MAX, INT32_MAX) > (size_t)PTRDIFF_MAX / 2);
    /* the linear head: n * d or vocab * d past the limit */
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_linear_logprobs(x, x, too_many, 1, 1, 1.0f, NULL, NULL, out, NULL, work, sizeof work));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_linear_logprobs(x, x, 1, 1, too_many, 1.0f, NULL, NULL, out, NULL, work, sizeof work));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_linear_logprobs(x, x, 1, too_many, 1, 1.0f, NULL, NULL, out, NULL, work, sizeof work));
    /* on 32-bit, width * height itself leaves size_t: the query must say so, not wrap */
    if (sizeof(size_t) == 4) CHECK(vppo_blur_workspace(65536, 65537, 1) == (size_t)-1);
    else CHECK(vppo_blur_workspace(65536, 65537, 1) >= (size_t)65536 * 65537 * sizeof(float));
}

/* ------------------------------------------------------------ make test-big */

#ifdef VPPO_TEST_BIG_MAIN
#include <time.h>

#ifdef __cplusplus
extern "C"
#endif
void test_set_current(const char *name);

/* One row of 2^31 + 64 zero logits (8 GiB, lazily zero): lse = H = log V and logp of id
   INT32_MAX = -log V on every ISA (one pass each); KL = 0 on the default ISA. */
static void big_row_of_more_than_2_31_logits(void)
{
#ifdef BIG_MMAP
    const int64_t V = TWO31 + 64;
    const size_t bytes = (size_t)V * sizeof(float);
    void *z = big_map(bytes, 0);
    const vppo_isa before = vppo_isa_active();
    const int32_t id = INT32_MAX;
    vppo_logits x;
    float dep;
    int isa;
    CHECK(z != NULL);
    if (!z) { test_fail(__FILE__, __LINE__, "mmap of %zu bytes failed", bytes); return; }
    x.data = z; x.dtype = VPPO_F32; x.n_rows = 1; x.vocab = V; x.row_stride = V; x.temperature = 1.0f;
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        float lse, ent, logp;
        clock_t t0 = clock();
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        CHECK_STATUS(VPPO_OK, vppo_logprobs(&x, &id, &logp, &lse, &ent));
        CHECK_NEAR(log((double)V), lse, TOL_LSE);
        CHECK_NEAR(log((double)V), ent, TOL_DIV);
        CHECK_NEAR(-log((double)V), logp, TOL_LSE);
        printf("        %s: a row of %lld logits: lse %.9g (log V %.9g), %.1f s\n", vppo_isa_name((vppo_isa)isa),
               (long long)V, (double)lse, log((double)V), (double)(clock() - t0) / CLOCKS_PER_SEC);
    }
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
    CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&x, &x, VPPO_DIV_KL, &dep));
    CHECK(dep == 0.0f);
    big_unmap(z, bytes);
#else
    CHECK(sizeof(void *) < 8);
#endif
}

/* The fused linear head with vocab 2^31 + 17 and d = 1: weight [V, 1] of zeros. */
static void big_linear_head_vocab_past_2_31(void)
{
#ifdef BIG_MMAP
    const int64_t V = TWO31 + 17;
    const size_t bytes = (size_t)V * sizeof(float), need = vppo_linear_workspace(1, 1, V);
    void *w = big_map(bytes, 0);
    void *work = malloc(need);
    const float hidden[1] = { 3.0f };
    float lse, ent;
    clock_t t0 = clock();
    CHECK(w != NULL && work != NULL);
    if (!w || !work) {
        test_fail(__FILE__, __LINE__, "mmap of %zu bytes failed", bytes);
        free(work);
        big_unmap(w, bytes);
        return;
    }
    CHECK_STATUS(VPPO_OK, vppo_linear_logprobs(hidden, (const float *)w, 1, 1, V, 1.0f, NULL, NULL, &lse, &ent,
                                               work, need));
    CHECK_NEAR(log((double)V), lse, TOL_LSE);
    CHECK_NEAR(log((double)V), ent, TOL_DIV);
    printf("        linear head, vocab %lld: lse %.9g (log V %.9g), %.1f s\n", (long long)V, (double)lse,
           log((double)V), (double)(clock() - t0) / CLOCKS_PER_SEC);
    free(work);
    big_unmap(w, bytes);
#else
    CHECK(sizeof(void *) < 8);
#endif
}

int main(void)
{
    static const struct { const char *name; void (*fn)(void); } tests[] = {
        { "big_flat_positions_past_2_31", big_flat_positions_past_2_31 },
        { "big_logits_rows_past_2_31", big_logits_rows_past_2_31 },
        { "big_sizes_beyond_the_address_space_are_size_errors", big_sizes_beyond_the_address_space_are_size_errors },
        { "big_row_of_more_than_2_31_logits", big_row_of_more_than_2_31_logits },
        { "big_linear_head_vocab_past_2_31", big_linear_head_vocab_past_2_31 },
    };
    size_t i;
    int failed = 0;
    printf("vppo.h large-index tests, %d-bit pointers\n", (int)(8 * sizeof(void *)));
    for (i = 0; i < sizeof tests / sizeof tests[0]; ++i) {
        const long before = test_checks;
        test_set_current(tests[i].name);
        test_failed_now = 0;
        tests[i].fn();
        if (test_checks == before) { fprintf(stderr, "FAIL %s: made no checks\n", tests[i].name); test_failed_now = 1; }
        printf("  %s  %s (%ld checks)\n", test_failed_now ? "FAIL" : "ok  ", tests[i].name, test_checks - before);
        failed += test_failed_now != 0;
    }
    printf("%d passed, %d failed\n", (int)(sizeof tests / sizeof tests[0]) - failed, failed);
    return failed ? 1 : 0;
}
#endif
