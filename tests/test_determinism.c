/* tests/test_determinism.c - the DETERMINISM section of the header, tested as stated:
     * the same inputs give the same bits, call after call, for every function, on every
       ISA the machine runs;
     * under OpenMP, for a fixed ISA, the same bits with 1, 2 and 3 threads, for the logits
       kernels and the fused linear head at sizes where they do split their rows;
     * everything that is not a logits kernel (§3-§8) gives the same bits on every ISA;
     * different ISAs differ in the logits kernels by at most twice the docs/spec.md §12 bounds
       (each is within them of the float64 reference); the measured spread is printed. */
#include "test.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------ inputs */

/* n x V logits of one dtype, row stride V + 5, from a seed: N(0, scale) with some -inf. */
typedef struct det_mat { void *mem; vppo_logits x; } det_mat;

static det_mat det_logits(vppo_dtype dt, int64_t n, int64_t V, float T, double scale, double p_masked, uint64_t seed)
{
    det_mat m;
    rng r = rng_make(seed);
    const size_t es = dt == VPPO_F32 ? 4 : 2;
    int64_t i, j;
    m.mem = calloc((size_t)(n * (V + 5)), es);
    m.x.data = m.mem; m.x.dtype = dt; m.x.n_rows = n; m.x.vocab = V; m.x.row_stride = V + 5; m.x.temperature = T;
    for (i = 0; i < n; ++i)
        for (j = 0; j < V; ++j) {
            const int64_t at = i * (V + 5) + j;
            const float z = j != i % V && rng_uniform(&r) < p_masked ? -HUGE_VALF : (float)(rng_normal(&r) * scale);
            if (dt == VPPO_F32) ((float *)m.mem)[at] = z;
            else if (dt == VPPO_BF16) ((uint16_t *)m.mem)[at] = test_f32_to_bf16_trunc(z);
            else ((uint16_t *)m.mem)[at] = test_f32_to_f16_trunc(z);
        }
    return m;
}

/* Everything the logits kernels and the linear head compute, in one flat float array. */
typedef struct det_out { float *v; int64_t n; } det_out;

static void det_push(det_out *o, const float *x, int64_t n)
{
    memcpy(o->v + o->n, x, (size_t)n * sizeof(float));
    o->n += n;
}

static void logits_all(const det_mat *P, const det_mat *Q, det_out *o)
{
    const int64_t n = P->x.n_rows, V = P->x.vocab;
    float *buf = floats_new(n * (V + 1), 0.0f), dl[64], de[64];
    int32_t ids[64];
    vppo_grad_out g;
    int64_t i;
    int div;
    for (i = 0; i < n && i < 64; ++i) { ids[i] = (int32_t)(i % V); dl[i] = 0.5f - (float)i / 64; de[i] = (float)i / 128 - 0.2f; }
    for (div = 0; div < 3; ++div) {
        CHECK_STATUS(VPPO_OK, vppo_dependency_logits(&P->x, &Q->x, (vppo_divergence)div, buf));
        det_push(o, buf, n);
    }
    CHECK_STATUS(VPPO_OK, vppo_logprobs(&P->x, ids, buf, buf + n, buf + 2 * n));
    det_push(o, buf, 3 * n);
    g.data = buf; g.dtype = VPPO_F32; g.row_stride = V + 1;
    CHECK_STATUS(VPPO_OK, vppo_logprobs_backward(&P->x, ids, NULL, NULL, dl, de, &g));
    det_push(o, buf, n * (V + 1));
    free(buf);
}

typedef struct det_lin { float *hidden, *hidden_aug, *weight; int64_t n, d, V; } det_lin;

static det_lin det_linear(int64_t n, int64_t d, int64_t V, uint64_t seed)
{
    det_lin L;
    rng r = rng_make(seed);
    int64_t i;
    L.n = n; L.d = d; L.V = V;
    L.hidden = floats_new(n * d, 0.0f);
    L.hidden_aug = floats_new(n * d, 0.0f);
    L.weight = floats_new(V * d, 0.0f);
    for (i = 0; i < n * d; ++i) { L.hidden[i] = (float)rng_normal(&r); L.hidden_aug[i] = L.hidden[i] + (float)(0.3 * rng_normal(&r)); }
    for (i = 0; i < V * d; ++i) L.weight[i] = (float)(rng_normal(&r) / sqrt((double)d));
    return L;
}

static void linear_all(const det_lin *L, det_out *o)
{
    const size_t need = vppo_linear_workspace(L->n, L->d, L->V);
    void *work = malloc(need);
    float *buf = floats_new(3 * L->n + L->n * L->d + L->V * L->d, 0.0f), dl[128], de[128];
    int32_t ids[128];
    int64_t i;
    int div;
    CHECK(work != NULL && L->n <= 128);
    for (i = 0; i < L->n; ++i) { ids[i] = (int32_t)((i * 37) % L->V); dl[i] = 1.0f - (float)i / 64; de[i] = 0.1f; }
    for (div = 0; div < 3; ++div) {
        CHECK_STATUS(VPPO_OK, vppo_linear_dependency(L->hidden, L->hidden_aug, L->weight, L->n, L->d, L->V, 0.9f,
                                                     (vppo_divergence)div, buf, work, need));
        det_push(o, buf, L->n);
    }
    CHECK_STATUS(VPPO_OK, vppo_linear_logprobs(L->hidden, L->weight, L->n, L->d, L->V, 0.9f, ids, buf, buf + L->n,
                                               buf + 2 * L->n, work, need));
    det_push(o, buf, 3 * L->n);
    CHECK_STATUS(VPPO_OK, vppo_linear_logprobs_backward(L->hidden, L->weight, L->n, L->d, L->V, 0.9f, ids, NULL, NULL,
                                                        dl, de, buf, buf + L->n * L->d, work, need));
    det_push(o, buf, L->n * L->d + L->V * L->d);
    free(work);
    free(buf);
}

static void det_lin_free(det_lin *L) { free(L->hidden); free(L->hidden_aug); free(L->weight); }

/* ------------------------------------------------------------ the tests */

/* Threads: 1, 2, 3 under OpenMP; without it, three more runs. On every ISA. */
void determinism_same_bits_across_threads_and_runs_every_isa(void)
{
    /* 41 x 3001 logits, a linear head of 66 rows (two row tiles), d 32, vocab 4200 (two
       vocabulary chunks): both above the sizes at which rows are split over threads */
    det_mat P = det_logits(VPPO_F32, 41, 3001, 1.0f, 3.0, 0.1, 11), Q = det_logits(VPPO_F32, 41, 3001, 1.0f, 3.0, 0.1, 12);
    det_mat Pb = det_logits(VPPO_BF16, 41, 3001, 0.8f, 3.0, 0.1, 13);
    det_mat Qb = det_logits(VPPO_BF16, 41, 3001, 0.8f, 3.0, 0.1, 14);
    det_lin L = det_linear(66, 32, 4200, 15);
    const int64_t cap = 2 * (3 * 41 + 3 * 41 + 41 * 3002) + 3 * 66 + 3 * 66 + 66 * 32 + 4200 * 32;
    det_out first, now;
    const vppo_isa before = vppo_isa_active();
    int isa, pass, tested = 0;
#ifdef _OPENMP
    const int threads_before = omp_get_max_threads();
#endif
    first.v = floats_new(cap, 0.0f);
    now.v = floats_new(cap, 0.0f);
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        ++tested;
        for (pass = 0; pass < 4; ++pass) {   /* pass 0: 1 thread, the reference; then 1, 2, 3 */
            det_out *o = pass == 0 ? &first : &now;
#ifdef _OPENMP
            omp_set_num_threads(pass == 0 ? 1 : pass);
#endif
            o->n = 0;
            logits_all(&P, &Q, o);
            logits_all(&Pb, &Qb, o);
            linear_all(&L, o);
            CHECK(o->n <= cap);
            if (pass > 0) {
                CHECK_EQ_INT(first.n, now.n);
                CHECK(memcmp(first.v, now.v, (size_t)first.n * sizeof(float)) == 0);
            }
        }
    }
#ifdef _OPENMP
    omp_set_num_threads(threads_before);
#endif
    CHECK(tested >= 1);
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
    free(first.v); free(now.v);
    free(P.mem); free(Q.mem); free(Pb.mem); free(Qb.mem);
    det_lin_free(&L);
}

/* Appends n bytes at p to buf (cap bytes) at *at. */
static void keep_bytes(unsigned char *buf, size_t cap, size_t *at, const void *p, size_t n)
{
    CHECK(*at + n <= cap);
    if (*at + n <= cap) memcpy(buf + *at, p, n);
    *at += n;
}

/* The first run's bytes are kept in first (first_n of them); every later run's bytes must
   equal them. */
static void same_as_first(unsigned char *first, size_t *first_n, const unsigned char *now,
                          size_t at, int is_first)
{
    if (is_first) {
        memcpy(first, now, at);
        *first_n = at;
    } else {
        CHECK(at == *first_n);
        CHECK(memcmp(first, now, *first_n) == 0);
    }
}

/* Random per-token inputs of the O(N) functions: a mask valid with probability mask_p,
   log-probabilities in (-3, 0], a perturbed copy (aug <= 0), a reference, token
   advantages and 0/1 rewards. */
static void fill_token_inputs(rng *r, int64_t n, double mask_p, uint8_t *mask, float *logp,
                              float *aug, float *ref, float *adv, float *rewards)
{
    int64_t t;
    for (t = 0; t < n; ++t) {
        mask[t] = (uint8_t)(rng_uniform(r) < mask_p);
        logp[t] = (float)(-3.0 * rng_uniform(r));
        aug[t] = logp[t] + (float)(0.5 * rng_normal(r));
        if (aug[t] > 0) aug[t] = 0;
        ref[t] = logp[t] + (float)(0.1 * rng_normal(r));
        adv[t] = (float)rng_normal(r);
        rewards[t] = (float)(rng_uniform(r) < 0.5);
    }
}

/* §3-§8 are the same code on every ISA: the same bits whatever is selected, call after call. */
void determinism_non_logits_functions_same_bits_on_every_isa(void)
{
    enum { B = 6, LEN = 37, N = B * LEN };
    rng r = rng_make(77);
    int64_t offsets[B + 1], count[B];
    uint8_t mask[N], sel[N], keep[N], select2[N];
    float logp[N], aug[N], ref[N], adv_tok[N], rewards[N], dep[N], w[N], dl[N], mean[B], scale[B], adv_seq[B];
    float pdep[N], ptraj[B], pscale[B], padv[N], rows[64 * 7];
    int64_t pcount[B];
    uint8_t psel[N], img_px[21 * 17 * 4], work[1 << 16];
    vppo_seqs s;
    vppo_tas_stats st;
    vppo_topk_info info;
    vppo_loss_out out;
    vppo_prepared p;
    vppo_config cfg = vppo_config_default();
    vppo_loss_config lc = vppo_loss_config_default();
    vppo_tas_config tc = vppo_tas_config_default();
    vppo_image img;
    unsigned char first[1 << 15], now[1 << 15];
    size_t first_n = 0;
    const vppo_isa before = vppo_isa_active();
    int64_t t;
    int isa, rep, tested = 0;
    vppo_offsets_uniform(offsets, B, LEN);
    fill_token_inputs(&r, N, 0.85, mask, logp, aug, ref, adv_tok, rewards);
    for (t = 0; t < N; ++t) {
        w[t] = (float)rng_uniform(&r);
        sel[t] = (uint8_t)(rng_uniform(&r) < 0.5);
    }
    for (t = 0; t < B; ++t) adv_seq[t] = (float)rng_normal(&r);
    s.n_seqs = B; s.offsets = offsets; s.mask = mask;
    lc.kl_kind = VPPO_KL_K3; lc.kl_coef = 0.05f; lc.ratio_level = VPPO_RATIO_SEQ;
    p.dep = pdep; p.traj_dep = ptraj; p.count = pcount; p.scale = pscale; p.adv = padv; p.select = psel;
    img.pixels = img_px; img.width = 21; img.height = 17; img.channels = 4; img.row_stride = 21 * 4;
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        ++tested;
        for (rep = 0; rep < 2; ++rep) {
            size_t at = 0;
#define KEEP(ptr, bytes) keep_bytes(now, sizeof now, &at, (ptr), (size_t)(bytes))
            CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K3, dep));
            KEEP(dep, sizeof dep);
            CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, rewards, VPPO_ADV_GRPO, 1e-6f, dl));
            KEEP(dl, sizeof dl);
            CHECK_STATUS(VPPO_OK, vppo_group_filter(&s, rewards, 0.01, 0.99, keep));
            KEEP(keep, sizeof keep);
            CHECK_STATUS(VPPO_OK, vppo_seq_mean(&s, dep, mean, count));
            KEEP(mean, sizeof mean);
            CHECK_STATUS(VPPO_OK, vppo_tas_stats_compute(mean, count, B, &st));
            KEEP(&st, sizeof st);
            CHECK_STATUS(VPPO_OK, vppo_tas_scales(&tc, &st, mean, count, B, scale));
            KEEP(scale, sizeof scale);
            CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, dep, 0.4, select2, &info));
            KEEP(select2, sizeof select2);
            KEEP(&info, sizeof info);
            CHECK_STATUS(VPPO_OK, vppo_soft_mask(&s, dep, 0.4, w));
            KEEP(w, sizeof w);
            CHECK_STATUS(VPPO_OK, vppo_policy_loss(&lc, &s, logp, aug, ref, adv_tok, sel, w, dl, &out));
            KEEP(dl, sizeof dl);
            KEEP(&out, sizeof out);
            CHECK_STATUS(VPPO_OK, vppo_step(&cfg, &s, logp, aug, ref, NULL, adv_seq, &p, dl, &out));
            KEEP(dl, sizeof dl); KEEP(&out, sizeof out); KEEP(pdep, sizeof pdep); KEEP(padv, sizeof padv);
            KEEP(psel, sizeof psel); KEEP(pscale, sizeof pscale);
            for (t = 0; t < (int64_t)sizeof img_px; ++t) img_px[t] = (uint8_t)(t * 7 + 3);
            CHECK_STATUS(VPPO_OK, vppo_perturb_gaussian_noise(&img, 2.0f, 40.0f, 5));
            CHECK_STATUS(VPPO_OK, vppo_perturb_gaussian_blur(&img, 2.5f, work, sizeof work));
            CHECK_STATUS(VPPO_OK, vppo_perturb_patch_blackening(&img, 5, 0.5f, 9));
            KEEP(img_px, sizeof img_px);
            for (t = 0; t < 64 * 7; ++t) rows[t] = (float)t;
            CHECK_STATUS(VPPO_OK, vppo_perturb_patch_rows(rows, 64, 6, 7, 0.3f, NULL, 4));
            KEEP(rows, sizeof rows);
#undef KEEP
            same_as_first(first, &first_n, now, at, tested == 1 && rep == 0);
        }
    }
    CHECK(tested >= 1);
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}

/* The O(N) functions (§2.1, §4-§8) at a size where they split their sequences over OpenMP
   threads (more than one block of sequences, more than 65536 tokens): the same bits with 1,
   2 and 3 threads, on every ISA. Without OpenMP: three more runs. */
void determinism_o_n_functions_same_bits_across_threads(void)
{
    enum { B = 300 };
    rng r = rng_make(4711);
    int64_t offsets[B + 1], count[B], pcount[B], t, N;
    float mean[B], adv_seq[B], ptraj[B], pscale[B], *logp, *aug, *ref, *adv, *w, *dep, *dl, *rewards;
    float *pdep, *padv;
    uint8_t *mask, *sel, *psel;
    unsigned char *first, *now;
    size_t cap, first_n = 0;
    vppo_seqs s;
    vppo_topk_info info;
    vppo_loss_out out;
    vppo_prepared p;
    vppo_config cfg = vppo_config_default();
    vppo_loss_config lc[3];
    const vppo_isa before = vppo_isa_active();
    int isa, pass, c, tested = 0;
#ifdef _OPENMP
    const int threads_before = omp_get_max_threads();
#endif
    offsets[0] = 0;
    for (t = 0; t < B; ++t) offsets[t + 1] = offsets[t] + 1 + (int64_t)(rng_uniform(&r) * 600.0);
    N = offsets[B];
    CHECK(N > 65536);
    logp = floats_new(N, 0.0f); aug = floats_new(N, 0.0f); ref = floats_new(N, 0.0f); adv = floats_new(N, 0.0f);
    w = floats_new(N, 0.0f); dep = floats_new(N, 0.0f); dl = floats_new(N, 0.0f); rewards = floats_new(N, 0.0f);
    pdep = floats_new(N, 0.0f); padv = floats_new(N, 0.0f);
    mask = (uint8_t *)calloc((size_t)N, 1); sel = (uint8_t *)calloc((size_t)N, 1); psel = (uint8_t *)calloc((size_t)N, 1);
    cap = (size_t)N * 64 + 4096;
    first = (unsigned char *)malloc(cap); now = (unsigned char *)malloc(cap);
    CHECK(mask && sel && psel && first && now);
    fill_token_inputs(&r, N, 0.9, mask, logp, aug, ref, adv, rewards);
    for (t = 0; t < B; ++t) adv_seq[t] = (float)rng_normal(&r);
    s.n_seqs = B; s.offsets = offsets; s.mask = mask;
    for (c = 0; c < 3; ++c) lc[c] = vppo_loss_config_default();
    lc[1].kl_kind = VPPO_KL_K3; lc[1].kl_coef = 0.05f; lc[1].ratio_level = VPPO_RATIO_SEQ;   /* GSPO spread */
    lc[2].pg_kind = VPPO_PG_CISPO; lc[2].agg = VPPO_AGG_SEQ_MEAN_TOKEN_MEAN; lc[2].entropy_coef = 0.01f;
    p.dep = pdep; p.traj_dep = ptraj; p.count = pcount; p.scale = pscale; p.adv = padv; p.select = psel;
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        ++tested;
        for (pass = 0; pass < 4; ++pass) {   /* pass 0: 1 thread, the reference; then 1, 2, 3 */
            size_t at = 0;
#ifdef _OPENMP
            omp_set_num_threads(pass == 0 ? 1 : pass);
#endif
#define KEEP(ptr, bytes) keep_bytes(now, cap, &at, (ptr), (size_t)(bytes))
            CHECK_STATUS(VPPO_OK, vppo_dependency_sampled(&s, logp, aug, VPPO_EST_K3, dep));
            KEEP(dep, N * 4);
            CHECK_STATUS(VPPO_OK, vppo_group_advantages(&s, rewards, VPPO_ADV_GRPO, 1e-6f, dl));
            KEEP(dl, N * 4);
            CHECK_STATUS(VPPO_OK, vppo_seq_mean(&s, dep, mean, count));
            KEEP(mean, sizeof mean);
            memset(&info, 0, sizeof info);
            CHECK_STATUS(VPPO_OK, vppo_topk_mask(&s, dep, 0.4, sel, &info));
            KEEP(sel, N); KEEP(&info, sizeof info);
            CHECK_STATUS(VPPO_OK, vppo_soft_mask(&s, dep, 0.4, w));
            KEEP(w, N * 4);
            for (c = 0; c < 3; ++c) {
                memset(&out, 0, sizeof out);
                CHECK_STATUS(VPPO_OK, vppo_policy_loss(&lc[c], &s, logp, aug, ref, adv, sel, c ? w : NULL, dl, &out));
                KEEP(dl, N * 4); KEEP(&out, sizeof out);
            }
            memset(&out, 0, sizeof out);
            memset(&p.stats, 0, sizeof p.stats); memset(&p.topk, 0, sizeof p.topk);
            CHECK_STATUS(VPPO_OK, vppo_step(&cfg, &s, logp, aug, ref, NULL, adv_seq, &p, dl, &out));
            KEEP(dl, N * 4); KEEP(&out, sizeof out); KEEP(pdep, N * 4); KEEP(padv, N * 4); KEEP(psel, N);
            KEEP(pscale, sizeof pscale); KEEP(&p.topk, sizeof p.topk);
#undef KEEP
            same_as_first(first, &first_n, now, at, tested == 1 && pass == 0);
        }
    }
#ifdef _OPENMP
    omp_set_num_threads(threads_before);
#endif
    CHECK(tested >= 1);
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
    free(logp); free(aug); free(ref); free(adv); free(w); free(dep); free(dl); free(rewards); free(pdep); free(padv);
    free(mask); free(sel); free(psel); free(first); free(now);
}

/* --- the spread between ISAs ------------------------------------------------ */

/* Worst |a - b| / (abs + rel |b|) over pairs, and the worst |a - b| itself. */
typedef struct spread { double ratio, diff; } spread;

static void spread_add(spread *s, double got, double ref, double abs_tol, double rel_tol)
{
    double d, r;
    if (isinf(ref) || isinf(got)) { CHECK(got == ref); return; }
    d = fabs(got - ref);
    r = d / (abs_tol + rel_tol * fabs(ref));
    if (d > s->diff) s->diff = d;
    if (r > s->ratio) s->ratio = r;
}

/* Every ISA against the scalar reference on the logits kernels and the linear head: the
   header says each is within docs/spec.md §12 of float64, so within twice those bounds of each
   other. The largest spread, as a share of that allowance, is printed per quantity. */
void determinism_isa_spread_within_twice_spec(void)
{
    static const int64_t vocabs[] = { 17, 513, 4099 };
    static const vppo_dtype dts[] = { VPPO_F32, VPPO_BF16, VPPO_F16 };
    static const double scales[] = { 3.0, 1e-3, 30.0 };
    static const char *const names[] = { "KL", "KL_REVERSE", "JS", "logp", "lse", "entropy", "dlogits", "linear" };
    const vppo_isa before = vppo_isa_active();
    int isa;
    for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
        spread sp[8];
        size_t vi, di, si;
        int q;
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) continue;
        memset(sp, 0, sizeof sp);
        for (vi = 0; vi < 3; ++vi)
            for (di = 0; di < 3; ++di)
                for (si = 0; si < 3; ++si) {
                    const int64_t n = 5, V = vocabs[vi];
                    const uint64_t seed = 1000 + 100 * vi + 10 * di + si;
                    det_mat P = det_logits(dts[di], n, V, 0.9f, scales[si], 0.05, seed);
                    det_mat Q = det_logits(dts[di], n, V, 1.1f, scales[si], 0.05, seed + 5);
                    const int64_t cap = 6 * n + n * (V + 1);
                    det_out ref, got;
                    int64_t i, j;
                    ref.v = floats_new(cap, 0.0f); got.v = floats_new(cap, 0.0f);
                    ref.n = got.n = 0;
                    CHECK_STATUS(VPPO_OK, vppo_isa_select(VPPO_ISA_SCALAR));
                    logits_all(&P, &Q, &ref);
                    CHECK_STATUS(VPPO_OK, vppo_isa_select((vppo_isa)isa));
                    logits_all(&P, &Q, &got);
                    for (i = 0; i < n; ++i) {
                        for (q = 0; q < 3; ++q) spread_add(&sp[q], got.v[q * n + i], ref.v[q * n + i], 2e-5, 2e-4);
                        spread_add(&sp[3], got.v[3 * n + i], ref.v[3 * n + i], 2e-5, 2e-5);
                        spread_add(&sp[4], got.v[4 * n + i], ref.v[4 * n + i], 2e-5, 2e-5);
                        spread_add(&sp[5], got.v[5 * n + i], ref.v[5 * n + i], 2e-5, 2e-4);
                        for (j = 0; j < V; ++j)
                            spread_add(&sp[6], got.v[6 * n + i * (V + 1) + j], ref.v[6 * n + i * (V + 1) + j], 2e-7, 2e-5);
                    }
                    free(ref.v); free(got.v); free(P.mem); free(Q.mem);
                }
        {   /* the linear head: dep, logp, lse, entropy (the per-row quantities) */
            det_lin L = det_linear(9, 24, 700, 4242);
            det_out ref, got;
            int64_t i;
            ref.v = floats_new(6 * 9 + 9 * 24 + 700 * 24, 0.0f); got.v = floats_new(6 * 9 + 9 * 24 + 700 * 24, 0.0f);
            ref.n = got.n = 0;
            CHECK_STATUS(VPPO_OK, vppo_isa_select(VPPO_ISA_SCALAR));
            linear_all(&L, &ref);
            CHECK_STATUS(VPPO_OK, vppo_isa_select((vppo_isa)isa));
            linear_all(&L, &got);
            for (i = 0; i < 6 * 9; ++i) spread_add(&sp[7], got.v[i], ref.v[i], 2e-5, 2e-4);
            free(ref.v); free(got.v);
            det_lin_free(&L);
        }
        printf("        %s vs scalar, largest |difference| / (2 x spec §12 bound), and |difference|:\n",
               vppo_isa_name((vppo_isa)isa));
        for (q = 0; q < 8; ++q) {
            printf("          %-10s %.3f  %.3g\n", names[q], sp[q].ratio, sp[q].diff);
            CHECK(sp[q].ratio <= 1.0);
        }
    }
    CHECK_STATUS(VPPO_OK, vppo_isa_select(before));
}
