/* bitcheck.c - a fingerprint of every vector-kernel output, per ISA, for before/after
   comparisons of vppo.h's implementation (make bitcheck).

   Runs every public logits and linear-head entry point on a fixed, seeded input set
   (f32/bf16/f16 rows, odd vocabularies, strides, unaligned rows, huge/tiny/-inf entries,
   several temperatures), and the O(N) pipeline (vppo_prepare, vppo_step, vppo_topk_mask,
   vppo_dependency_sampled on ragged sequences, masked and not, many configurations) under
   every ISA this build and CPU run (vppo_isa_select), and
   prints one line per (function, ISA): an FNV-1a hash of the output bits and of the
   returned statuses. Built against two headers (BITCHECK_HEADER names one), the two
   outputs must be identical: `make bitcheck` builds it against `git show main:vppo.h`
   (or BITCHECK_BASE=<rev>) and against ./vppo.h and diffs them.

   Speed is not measured here and nothing is asserted: the diff is the check. */
#ifndef BITCHECK_HEADER
#define BITCHECK_HEADER "../vppo.h"
#endif
#define VPPO_IMPLEMENTATION
#include BITCHECK_HEADER

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* ------------------------------------------------------------------ hashing */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    size_t i;
    for (i = 0; i < n; ++i) { h ^= b[i]; h *= 1099511628211ull; }
    return h;
}

static uint64_t fnv_status(uint64_t h, vppo_status st) { int s = (int)st; return fnv(h, &s, sizeof s); }

/* ------------------------------------------------------------------ inputs */

static uint64_t rng_state = 0x1234567887654321ull;
static double rnd(void)   /* uniform [0, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static uint16_t to_bf16(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7fffu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

static uint16_t to_f16(float f)   /* round to nearest even; inputs here are in range */
{
    uint32_t b, sign, mant;
    int e;
    memcpy(&b, &f, 4);
    sign = (b >> 16) & 0x8000u;
    if ((b & 0x7fffffffu) == 0x7f800000u) return (uint16_t)(sign | 0x7c00u);
    e = (int)((b >> 23) & 0xff) - 127 + 15;
    mant = b & 0x7fffffu;
    if (e >= 31) return (uint16_t)(sign | 0x7bffu);               /* clamp to the largest */
    if (e <= 0) {                                                 /* subnormal or zero */
        uint32_t m = mant | 0x800000u, shift = (uint32_t)(14 - e), r;
        if (shift > 24) return (uint16_t)sign;
        r = m >> shift;
        if ((m & ((1u << shift) - 1)) > (1u << (shift - 1)) ||
            ((m & ((1u << shift) - 1)) == (1u << (shift - 1)) && (r & 1u))) ++r;
        return (uint16_t)(sign | r);
    }
    {
        uint32_t h = sign | ((uint32_t)e << 10) | (mant >> 13), rest = mant & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
        return (uint16_t)h;
    }
}

/* Row kinds: spread of the logits and special entries. */
enum { K_NORMAL, K_WIDE, K_HUGE, K_TINY, K_MASKED, K_ONEHOT, K_CONST, K_NKINDS };

static float gen(int kind, int64_t j, int64_t vocab)
{
    double g = (rnd() + rnd() + rnd() - 1.5) * 2.0;
    switch (kind) {
    case K_NORMAL: return (float)(3.0 * g);
    case K_WIDE:   return (float)(40.0 * g);
    case K_HUGE:   return (float)(1e30 * g + (j == vocab / 2 ? 3e30 : 0.0));
    case K_TINY:   return (float)(1e-30 * g);
    case K_MASKED: return rnd() < 0.4 && j != 1 ? -HUGE_VALF : (float)(5.0 * g);
    case K_ONEHOT: return j == vocab / 3 ? 25.0f : (float)(0.01 * g);
    default:       return 1.5f;
    }
}

/* One matrix: n_rows rows of kind (row % K_NKINDS) + kind_shift, vocab entries, stored
   with row_stride and an element offset off (unaligned rows), as dtype dt. */
typedef struct mat { void *buf; vppo_logits x; } mat;

static mat make_mat(vppo_dtype dt, int64_t n_rows, int64_t vocab, int64_t stride, int64_t off,
                    float temperature, int kind_shift)
{
    mat m;
    const size_t es = dt == VPPO_F32 ? 4 : 2, total = (size_t)(off + n_rows * stride);
    int64_t r, j;
    char *base = (char *)calloc(total, es);
    for (r = 0; r < n_rows; ++r)
        for (j = 0; j < stride; ++j) {
            const size_t at = (size_t)(off + r * stride + j);
            const float z = j < vocab ? gen((int)((r + kind_shift) % K_NKINDS), j, vocab) : 7.0f;
            if (dt == VPPO_F32) memcpy(base + at * 4, &z, 4);
            else {
                const uint16_t h = dt == VPPO_BF16 ? to_bf16(z) : to_f16(z);
                memcpy(base + at * 2, &h, 2);
            }
        }
    m.buf = base;
    m.x.data = base + (size_t)off * es;
    m.x.dtype = dt;
    m.x.n_rows = n_rows;
    m.x.vocab = vocab;
    m.x.row_stride = stride;
    m.x.temperature = temperature;
    return m;
}

/* ------------------------------------------------------------------ cases */

#define N_ROWS 14

typedef struct shape { int64_t vocab, stride, off; } shape;
static const shape shapes[] = {
    { 1, 1, 0 }, { 7, 7, 0 }, { 16, 16, 0 }, { 33, 40, 1 }, { 100, 103, 3 },
    { 512, 512, 0 }, { 515, 515, 1 }, { 1000, 1031, 0 }, { 1537, 1600, 5 }, { 4099, 4099, 0 }
};
static const float temps[] = { 1.0f, 0.7f, 1.3f, 1e-3f };
static const vppo_dtype dtypes[] = { VPPO_F32, VPPO_BF16, VPPO_F16 };
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum { F_DEP_KL, F_DEP_RKL, F_DEP_JS, F_LOGPROBS, F_BWD_F32, F_BWD_F32_LSE, F_BWD_BF16, F_BWD_INPLACE,
       F_LIN_LOGPROBS, F_LIN_DEP_KL, F_LIN_DEP_RKL, F_LIN_DEP_JS, F_LIN_BWD, F_N };
static const char *fname[F_N] = {
    "dependency_logits KL", "dependency_logits rKL", "dependency_logits JS", "logprobs logp/lse/entropy",
    "logprobs_backward F32 (lse recomputed)", "logprobs_backward F32 (lse given)", "logprobs_backward BF16",
    "logprobs_backward in place", "linear_logprobs", "linear_dependency KL", "linear_dependency rKL",
    "linear_dependency JS", "linear_logprobs_backward"
};

static void logits_cases(uint64_t h[F_N])
{
    size_t si, ti, di, dj;
    float dep[N_ROWS], logp[N_ROWS], lse[N_ROWS], ent[N_ROWS], g[N_ROWS], hh[N_ROWS];
    int32_t ids[N_ROWS];
    int r;
    for (si = 0; si < COUNT(shapes); ++si)
        for (ti = 0; ti < COUNT(temps); ++ti)
            for (di = 0; di < COUNT(dtypes); ++di) {
                const shape sh = shapes[si];
                mat a = make_mat(dtypes[di], N_ROWS, sh.vocab, sh.stride, sh.off, temps[ti], 0);
                for (r = 0; r < N_ROWS; ++r) {
                    ids[r] = (int32_t)((r * 7919 + (int)si) % sh.vocab);
                    g[r] = (float)(rnd() - 0.5);
                    hh[r] = r % 3 ? (float)(rnd() - 0.5) : 0.0f;
                }
                for (dj = 0; dj < COUNT(dtypes); ++dj) {
                    mat b = make_mat(dtypes[dj], N_ROWS, sh.vocab, sh.stride + (int64_t)dj, (int64_t)dj,
                                     temps[(ti + dj) % COUNT(temps)], (int)dj);
                    vppo_divergence dv;
                    for (dv = VPPO_DIV_KL; dv <= VPPO_DIV_JS; dv = (vppo_divergence)(dv + 1)) {
                        memset(dep, 0, sizeof dep);
                        h[F_DEP_KL + dv] = fnv_status(h[F_DEP_KL + dv], vppo_dependency_logits(&a.x, &b.x, dv, dep));
                        h[F_DEP_KL + dv] = fnv(h[F_DEP_KL + dv], dep, sizeof dep);
                    }
                    free(b.buf);
                }
                memset(logp, 0, sizeof logp); memset(lse, 0, sizeof lse); memset(ent, 0, sizeof ent);
                h[F_LOGPROBS] = fnv_status(h[F_LOGPROBS], vppo_logprobs(&a.x, ids, logp, lse, ent));
                h[F_LOGPROBS] = fnv(h[F_LOGPROBS], logp, sizeof logp);
                h[F_LOGPROBS] = fnv(h[F_LOGPROBS], lse, sizeof lse);
                h[F_LOGPROBS] = fnv(h[F_LOGPROBS], ent, sizeof ent);
                {
                    const int64_t gs = sh.vocab + 3;
                    float *gf = (float *)calloc((size_t)(N_ROWS * gs), 4);
                    uint16_t *gb = (uint16_t *)calloc((size_t)(N_ROWS * gs), 2);
                    vppo_grad_out of, ob;
                    of.data = gf; of.dtype = VPPO_F32; of.row_stride = gs;
                    ob.data = gb; ob.dtype = VPPO_BF16; ob.row_stride = gs;
                    h[F_BWD_F32] = fnv_status(h[F_BWD_F32], vppo_logprobs_backward(&a.x, ids, NULL, NULL, g, hh, &of));
                    h[F_BWD_F32] = fnv(h[F_BWD_F32], gf, (size_t)(N_ROWS * gs) * 4);
                    memset(gf, 0, (size_t)(N_ROWS * gs) * 4);
                    h[F_BWD_F32_LSE] = fnv_status(h[F_BWD_F32_LSE], vppo_logprobs_backward(&a.x, ids, lse, ent, g, hh, &of));
                    h[F_BWD_F32_LSE] = fnv(h[F_BWD_F32_LSE], gf, (size_t)(N_ROWS * gs) * 4);
                    h[F_BWD_BF16] = fnv_status(h[F_BWD_BF16], vppo_logprobs_backward(&a.x, ids, NULL, NULL, g, hh, &ob));
                    h[F_BWD_BF16] = fnv(h[F_BWD_BF16], gb, (size_t)(N_ROWS * gs) * 2);
                    free(gf);
                    free(gb);
                }
                if (dtypes[di] == VPPO_F32) {                  /* in place: the logits become the gradient */
                    vppo_grad_out oi;
                    oi.data = (void *)a.x.data; oi.dtype = VPPO_F32; oi.row_stride = a.x.row_stride;
                    h[F_BWD_INPLACE] = fnv_status(h[F_BWD_INPLACE], vppo_logprobs_backward(&a.x, ids, NULL, NULL, g, hh, &oi));
                    h[F_BWD_INPLACE] = fnv(h[F_BWD_INPLACE], a.x.data, (size_t)(N_ROWS * sh.stride) * 4);
                }
                free(a.buf);
            }
}

static void linear_cases(uint64_t h[F_N])
{
    static const int64_t dims[][3] = { { 5, 8, 7 }, { 9, 33, 515 }, { 3, 64, 1537 }, { 70, 16, 300 } };
    size_t ci, ti;
    for (ci = 0; ci < COUNT(dims); ++ci)
        for (ti = 0; ti < COUNT(temps); ++ti) {
            const int64_t n = dims[ci][0], d = dims[ci][1], V = dims[ci][2];
            const float T = temps[ti];
            float *hid = (float *)malloc((size_t)(n * d) * 4), *hid2 = (float *)malloc((size_t)(n * d) * 4);
            float *w = (float *)malloc((size_t)(V * d) * 4), *dh = (float *)calloc((size_t)(n * d), 4);
            float *dw = (float *)calloc((size_t)(V * d), 4);
            float *logp = (float *)calloc((size_t)n, 4), *lse = (float *)calloc((size_t)n, 4);
            float *ent = (float *)calloc((size_t)n, 4), *dep = (float *)calloc((size_t)n, 4);
            float *g = (float *)malloc((size_t)n * 4), *hh = (float *)malloc((size_t)n * 4);
            int32_t *ids = (int32_t *)malloc((size_t)n * 4);
            size_t wb = vppo_linear_workspace(n, d, V);
            void *work = malloc(wb);
            int64_t i;
            vppo_divergence dv;
            for (i = 0; i < n * d; ++i) { hid[i] = (float)(rnd() * 2 - 1); hid2[i] = hid[i] + (float)(0.3 * (rnd() - 0.5)); }
            for (i = 0; i < V * d; ++i) w[i] = (float)((rnd() * 2 - 1) * (ci == 2 ? 4.0 : 0.5));
            for (i = 0; i < n; ++i) { ids[i] = (int32_t)((i * 131 + 7) % V); g[i] = (float)(rnd() - 0.5); hh[i] = (float)(rnd() - 0.5); }
            h[F_LIN_LOGPROBS] = fnv_status(h[F_LIN_LOGPROBS],
                vppo_linear_logprobs(hid, w, n, d, V, T, ids, logp, lse, ent, work, wb));
            h[F_LIN_LOGPROBS] = fnv(h[F_LIN_LOGPROBS], logp, (size_t)n * 4);
            h[F_LIN_LOGPROBS] = fnv(h[F_LIN_LOGPROBS], lse, (size_t)n * 4);
            h[F_LIN_LOGPROBS] = fnv(h[F_LIN_LOGPROBS], ent, (size_t)n * 4);
            for (dv = VPPO_DIV_KL; dv <= VPPO_DIV_JS; dv = (vppo_divergence)(dv + 1)) {
                h[F_LIN_DEP_KL + dv] = fnv_status(h[F_LIN_DEP_KL + dv],
                    vppo_linear_dependency(hid, hid2, w, n, d, V, T, dv, dep, work, wb));
                h[F_LIN_DEP_KL + dv] = fnv(h[F_LIN_DEP_KL + dv], dep, (size_t)n * 4);
            }
            h[F_LIN_BWD] = fnv_status(h[F_LIN_BWD], vppo_linear_logprobs_backward(hid, w, n, d, V, T, ids,
                ti % 2 ? lse : NULL, ti % 2 ? ent : NULL, g, hh, dh, dw, work, wb));
            h[F_LIN_BWD] = fnv(h[F_LIN_BWD], dh, (size_t)(n * d) * 4);
            h[F_LIN_BWD] = fnv(h[F_LIN_BWD], dw, (size_t)(V * d) * 4);
            free(hid); free(hid2); free(w); free(dh); free(dw); free(logp); free(lse); free(ent);
            free(dep); free(g); free(hh); free(ids); free(work);
        }
}

/* ------------------------------------------------------------------ pipeline */

enum { P_PREPARE, P_PREPARE_GIVEN, P_STEP, P_TOPK, P_DEP_SAMPLED, P_N };
static const char *pname[P_N] = {
    "prepare (sampled dependency)", "prepare (given dependency / none)", "step", "topk_mask",
    "dependency_sampled"
};

static uint64_t fnv_prepared(uint64_t h, const vppo_prepared *p, int64_t n, int64_t b)
{
    h = fnv(h, p->dep, (size_t)n * 4);
    h = fnv(h, p->traj_dep, (size_t)b * 4);
    h = fnv(h, p->count, (size_t)b * 8);
    h = fnv(h, p->scale, (size_t)b * 4);
    h = fnv(h, p->adv, (size_t)n * 4);
    h = fnv(h, p->select, (size_t)n);
    h = fnv(h, &p->stats.min, 8); h = fnv(h, &p->stats.max, 8); h = fnv(h, &p->stats.n, 8);
    h = fnv(h, &p->topk.n_valid, 8); h = fnv(h, &p->topk.n_selected, 8);
    h = fnv(h, &p->topk.threshold_mean, 8); h = fnv(h, &p->topk.mean_selected, 8);
    return fnv(h, &p->topk.mean_rejected, 8);
}

/* vppo_prepare (sampled, given and no dependency), vppo_step, vppo_topk_mask and
   vppo_dependency_sampled on sequences of 0 to 9000 tokens (around the top-k's 16-lane
   blocks, VPPO__TOPK_LOCAL = 4096 and the sampled narrowing's 256), with and without a
   mask (some sequences fully masked), every estimator, TAS mode and a range of ratios. */
static void pipeline_cases(uint64_t h[P_N])
{
    static const int64_t lens[] = { 0, 1, 15, 17, 300, 2048, 0, 2049, 4096, 4097, 9000, 257, 256, 5 };
    static const double ratios[] = { 0.4, 1.0, 0.0, 0.999, 0.05 };
    enum { B = (int)COUNT(lens) };
    int64_t off[B + 1], n, t, b;
    float *logp, *old, *aug, *ref, *given, *dep, *adv, *dlogp, traj[B], scale[B], adv_seq[B];
    int64_t count[B];
    uint8_t *mask, *sel;
    size_t ri;
    int use_mask, est, cfg_i;
    off[0] = 0;
    for (b = 0; b < B; ++b) off[b + 1] = off[b] + lens[b];
    n = off[B];
    logp = (float *)malloc((size_t)n * 4); old = (float *)malloc((size_t)n * 4); aug = (float *)malloc((size_t)n * 4);
    ref = (float *)malloc((size_t)n * 4); given = (float *)malloc((size_t)n * 4); dep = (float *)malloc((size_t)n * 4);
    adv = (float *)malloc((size_t)n * 4); dlogp = (float *)malloc((size_t)n * 4);
    mask = (uint8_t *)malloc((size_t)n); sel = (uint8_t *)malloc((size_t)n);
    for (t = 0; t < n; ++t) {
        const double lo = log(0.01 + 0.99 * rnd());
        old[t] = (float)lo;
        logp[t] = (float)(lo + 0.02 * (rnd() - 0.5));
        aug[t] = t % 97 == 3 ? -HUGE_VALF : (float)(lo + 0.6 * (rnd() - 0.5));
        ref[t] = (float)(lo + 0.05 * (rnd() - 0.5));
        given[t] = t % 5 == 0 ? 0.25f : t % 11 == 0 ? -0.0f : (float)(rnd() * 2.0 - 0.5);   /* ties, -0 */
        mask[t] = (uint8_t)(rnd() < 0.8);
    }
    for (t = off[9]; t < off[10]; ++t) mask[t] = 0;   /* a long sequence with no valid token */
    for (b = 0; b < B; ++b) adv_seq[b] = (float)(rnd() * 2.0 - 1.0);
    for (use_mask = 0; use_mask < 2; ++use_mask)
        for (cfg_i = 0; cfg_i < 4; ++cfg_i)
            for (ri = 0; ri < COUNT(ratios); ++ri) {
                vppo_seqs s;
                vppo_config cfg = vppo_config_default();
                vppo_prepared p;
                vppo_topk_info info;
                vppo_loss_out out;
                s.n_seqs = B; s.offsets = off; s.mask = use_mask ? mask : NULL;
                cfg.topk_ratio = ratios[ri];
                cfg.use_tgf = cfg_i != 1;
                cfg.use_tas = cfg_i != 2;
                if (cfg_i == 3) cfg.tas.mode = VPPO_TAS_LINEAR;
                p.dep = dep; p.traj_dep = traj; p.count = count; p.scale = scale; p.adv = adv; p.select = sel;
                for (est = VPPO_EST_K3; est <= VPPO_EST_PROB_DROP; ++est) {
                    cfg.estimator = (vppo_estimator)est;
                    memset(dep, 0, (size_t)n * 4); memset(adv, 0, (size_t)n * 4); memset(sel, 7, (size_t)n);
                    h[P_PREPARE] = fnv_status(h[P_PREPARE], vppo_prepare(&cfg, &s, old, aug, NULL, adv_seq, NULL, &p));
                    h[P_PREPARE] = fnv_prepared(h[P_PREPARE], &p, n, B);
                    h[P_DEP_SAMPLED] = fnv_status(h[P_DEP_SAMPLED], vppo_dependency_sampled(&s, old, aug, cfg.estimator, dep));
                    h[P_DEP_SAMPLED] = fnv(h[P_DEP_SAMPLED], dep, (size_t)n * 4);
                }
                cfg.estimator = VPPO_EST_K3;
                h[P_PREPARE_GIVEN] = fnv_status(h[P_PREPARE_GIVEN], vppo_prepare(&cfg, &s, NULL, NULL, given, adv_seq, NULL, &p));
                h[P_PREPARE_GIVEN] = fnv_prepared(h[P_PREPARE_GIVEN], &p, n, B);
                if (cfg_i == 1) {   /* with TGF on (cfg_i 0): a status; here both off, no dependency at all */
                    cfg.use_tas = 0;
                    h[P_PREPARE_GIVEN] = fnv_status(h[P_PREPARE_GIVEN], vppo_prepare(&cfg, &s, NULL, NULL, NULL, adv_seq, NULL, &p));
                    h[P_PREPARE_GIVEN] = fnv_prepared(h[P_PREPARE_GIVEN], &p, n, B);
                    cfg.use_tas = 1;
                }
                {
                    vppo_tas_stats g;
                    g.min = 0.01; g.max = 0.4; g.n = 64;
                    h[P_PREPARE_GIVEN] = fnv_status(h[P_PREPARE_GIVEN], vppo_prepare(&cfg, &s, NULL, NULL, given, adv_seq, &g, &p));
                    h[P_PREPARE_GIVEN] = fnv_prepared(h[P_PREPARE_GIVEN], &p, n, B);
                }
                if (ri < 2) {
                    memset(dlogp, 0, (size_t)n * 4);
                    cfg.loss.kl_kind = cfg_i == 3 ? VPPO_KL_K3 : VPPO_KL_NONE;
                    cfg.loss.kl_coef = cfg_i == 3 ? 0.01f : 0.0f;
                    h[P_STEP] = fnv_status(h[P_STEP], vppo_step(&cfg, &s, logp, old, aug, cfg_i == 3 ? ref : NULL,
                                                                adv_seq, &p, dlogp, &out));
                    h[P_STEP] = fnv_prepared(h[P_STEP], &p, n, B);
                    h[P_STEP] = fnv(h[P_STEP], dlogp, (size_t)n * 4);
                    h[P_STEP] = fnv(h[P_STEP], &out.loss, 8); h[P_STEP] = fnv(h[P_STEP], &out.pg_loss, 8);
                    h[P_STEP] = fnv(h[P_STEP], &out.kl_loss, 8); h[P_STEP] = fnv(h[P_STEP], &out.clipfrac, 8);
                    h[P_STEP] = fnv(h[P_STEP], &out.n_selected, 8);
                }
                memset(&info, 0, sizeof info);
                h[P_TOPK] = fnv_status(h[P_TOPK], vppo_topk_mask(&s, cfg_i % 2 ? given : aug, ratios[ri], sel, &info));
                h[P_TOPK] = fnv(h[P_TOPK], sel, (size_t)n);
                h[P_TOPK] = fnv(h[P_TOPK], &info.n_valid, 8); h[P_TOPK] = fnv(h[P_TOPK], &info.n_selected, 8);
                h[P_TOPK] = fnv(h[P_TOPK], &info.threshold_mean, 8); h[P_TOPK] = fnv(h[P_TOPK], &info.mean_selected, 8);
                h[P_TOPK] = fnv(h[P_TOPK], &info.mean_rejected, 8);
            }
    free(logp); free(old); free(aug); free(ref); free(given); free(dep); free(adv); free(dlogp); free(mask); free(sel);
}

int main(void)
{
    int isa, f, ran = 0;
    for (isa = VPPO_ISA_SCALAR; isa <= VPPO_ISA_NEON; ++isa) {
        uint64_t h[F_N], hp[P_N];
        if (vppo_isa_select((vppo_isa)isa) != VPPO_OK) {
            printf("%-8s not run here\n", vppo_isa_name((vppo_isa)isa));
            continue;
        }
        for (f = 0; f < F_N; ++f) h[f] = 14695981039346656037ull;
        for (f = 0; f < P_N; ++f) hp[f] = 14695981039346656037ull;
        rng_state = 0x1234567887654321ull;              /* the same inputs for every ISA */
        logits_cases(h);
        linear_cases(h);
        pipeline_cases(hp);
        for (f = 0; f < F_N; ++f)
            printf("%-8s %-40s %016llx\n", vppo_isa_name((vppo_isa)isa), fname[f], (unsigned long long)h[f]);
        for (f = 0; f < P_N; ++f)
            printf("%-8s %-40s %016llx\n", vppo_isa_name((vppo_isa)isa), pname[f], (unsigned long long)hp[f]);
        ++ran;
    }
    printf("%d ISAs hashed\n", ran);
    return 0;
}
