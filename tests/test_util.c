/* tests/test_util.c - random inputs, conversions and the float64 references.
   The references are written from docs/spec.md for clarity, not speed: plain two-pass
   softmax, direct sums, no online tricks shared with the library. */
#include "test.h"
#include <stdarg.h>

/* ------------------------------------------------------------- checking
   Shared by the runners (test_main.c, test_cuda.c): they call test_set_current before
   each test and read test_checks / test_failed_now around it. */

long test_checks = 0;
int test_failed_now = 0;
static const char *test_current = "";

void test_set_current(const char *name) { test_current = name; }

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (test_failed_now < 10) {   /* the first few failures of a test are enough */
        fprintf(stderr, "FAIL %s (%s:%d): ", test_current, file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    ++test_failed_now;
}

int test_near(double ref, double got, double abs_tol, double rel_tol)
{
    if (isinf(ref) || isinf(got)) return ref == got;
    if (isnan(ref) || isnan(got)) return 0;
    return fabs(got - ref) <= abs_tol + rel_tol * fabs(ref);
}

/* ------------------------------------------------------------- random */

rng rng_make(uint64_t seed) { rng r; r.state = seed * 2654435761u + 12345; return r; }

uint64_t rng_next(rng *r)   /* xorshift64* : independent of the library's splitmix */
{
    uint64_t x = r->state ? r->state : 88172645463325252ull;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    r->state = x;
    return x * 2685821657736338717ull;
}

double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }
double rng_range(rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }
double rng_normal(rng *r)
{
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}
int64_t rng_int(rng *r, int64_t lo, int64_t hi) { return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1)); }

test_batch batch_make(rng *r, int64_t n_seqs, int64_t len, int64_t min_valid, int holes)
{
    test_batch b;
    int64_t i, t;
    b.n_seqs = n_seqs; b.len = len; b.n = n_seqs * len;
    b.offsets = (int64_t *)malloc((size_t)(n_seqs + 1) * sizeof(int64_t));
    b.mask = (uint8_t *)calloc((size_t)(b.n > 0 ? b.n : 1), 1);
    vppo_offsets_uniform(b.offsets, n_seqs, len);
    for (i = 0; i < n_seqs; ++i) {
        int64_t valid = rng_int(r, min_valid, len);
        for (t = 0; t < valid; ++t)
            b.mask[i * len + t] = (uint8_t)(holes ? rng_uniform(r) < 0.85 : 1);
    }
    b.s.n_seqs = n_seqs; b.s.offsets = b.offsets; b.s.mask = b.mask;
    return b;
}

void batch_free(test_batch *b) { free(b->offsets); free(b->mask); }

float *floats_new(int64_t n, float fill)
{
    int64_t i;
    float *x = (float *)malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (i = 0; i < n; ++i) x[i] = fill;
    return x;
}

double *doubles_new(int64_t n, double fill)
{
    int64_t i;
    double *x = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (i = 0; i < n; ++i) x[i] = fill;
    return x;
}

/* ------------------------------------------------------------- the hash of §3 */

/* splitmix64 as docs/spec.md §3 states it: add the golden-ratio constant, then three rounds
   of z ^= z >> shift, z *= multiplier (the last multiplier 1), mod 2^64. Written apart from
   the library's so that a slip in either shows. */
uint64_t test_splitmix64(uint64_t x)
{
    static const struct { int shift; uint64_t mul; } round[3] = {
        { 30, 0xBF58476D1CE4E5B9ull }, { 27, 0x94D049BB133111EBull }, { 31, 1 } };
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    int k;
    for (k = 0; k < 3; ++k) z = (z ^ (z >> round[k].shift)) * round[k].mul;
    return z;
}

/* The top 24 bits of splitmix64(seed ^ splitmix64(i)), as a fraction of 2^24. */
double test_uniform(uint64_t seed, uint64_t i)
{
    return ldexp((double)(test_splitmix64(seed ^ test_splitmix64(i)) >> 40), -24);
}

/* ------------------------------------------------------------- conversions */

uint16_t test_f32_to_bf16_trunc(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return (uint16_t)(bits >> 16);
}

/* Nearest bf16, ties to even, found by comparing the two candidates around f (finite f). */
uint16_t test_f32_to_bf16_round(float f)
{
    uint16_t lo = test_f32_to_bf16_trunc(f), hi = (uint16_t)(lo + 1);
    double dl = fabs(test_bf16_value(lo) - f), dh = fabs(test_bf16_value(hi) - f);
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return (lo & 1) ? hi : lo;
}

/* f16 bits of a float, rounding toward zero (subnormals included); beyond the f16 range
   +-inf, infinities kept, NaN kept (quiet). For making inputs: every kind of value. */
uint16_t test_f32_to_f16_trunc(float x)
{
    uint32_t bits, sign, e, m;
    memcpy(&bits, &x, sizeof bits);
    sign = (bits >> 16) & 0x8000u;
    e = (bits >> 23) & 0xffu;
    m = bits & 0x7fffffu;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0u));
    if ((int)e - 127 > 15) return (uint16_t)(sign | 0x7c00u);
    if ((int)e - 127 >= -14) return (uint16_t)(sign | ((e - 112u) << 10) | (m >> 13));
    if ((int)e - 127 >= -24) return (uint16_t)(sign | ((m | 0x800000u) >> (126u - e)));
    return (uint16_t)sign;
}

double test_bf16_value(uint16_t h)   /* sign, 8-bit exponent, 7-bit mantissa */
{
    int sign = h >> 15, e = (h >> 7) & 0xff, m = h & 0x7f;
    double v;
    if (e == 0xff) return m ? NAN : (sign ? -INFINITY : INFINITY);
    v = e == 0 ? ldexp((double)m, -126 - 7) : ldexp(1.0 + m / 128.0, e - 127);
    return sign ? -v : v;
}

double test_f16_value(uint16_t h)    /* sign, 5-bit exponent, 10-bit mantissa */
{
    int sign = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0x1f) return m ? NAN : (sign ? -INFINITY : INFINITY);
    v = e == 0 ? ldexp((double)m, -24) : ldexp(1.0 + m / 1024.0, e - 15);
    return sign ? -v : v;
}

uint16_t test_f32_to_f16_exact(double v)   /* search: slow, obviously right */
{
    uint32_t h;
    for (h = 0; h < 0x10000; ++h)
        if (test_f16_value((uint16_t)h) == v && !(v == 0 && (signbit(v) != 0) != ((h >> 15) != 0))) return (uint16_t)h;
    return 0x7e00;   /* NaN: not representable */
}

/* ------------------------------------------------------------- vector ISAs */

int test_vector_isas_selectable(void)
{
    const vppo_isa before = vppo_isa_active();
    int isa, n = 0;
    for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) n += vppo_isa_select((vppo_isa)isa) == VPPO_OK;
    if (vppo_isa_select(before) != VPPO_OK) test_fail(__FILE__, __LINE__, "cannot restore ISA %s", vppo_isa_name(before));
    return n;
}

void test_check_vector_isas_tested(int tested)
{
#if !defined(VPPO_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__aarch64__))
    CHECK(tested >= 1);                  /* x86-64 always has SSE2, aarch64 NEON */
#elif defined(VPPO_NO_SIMD) || !(defined(__GNUC__) || defined(__clang__)) || !defined(__i386__)
    CHECK_EQ_INT(0, tested);             /* no vector path is compiled */
#else
    (void)tested;                        /* 32-bit x86: SSE2 depends on the CPU */
#endif
}

/* ------------------------------------------------------------- the bad-input fixture */

void test_fixture_init(test_fixture *f)
{
    int i;
    memset(f, 0, sizeof *f);
    vppo_offsets_uniform(f->off, 2, 4);
    for (i = 0; i < 8; ++i) {
        f->mask[i] = 1;
        f->logp[i] = -1.0f - 0.1f * (float)i;      /* log-probabilities */
        f->aug[i] = -1.3f - 0.05f * (float)i;
        f->score[i] = 0.5f - 0.13f * (float)i;     /* rewards, scores, advantages: distinct */
        f->ids[i] = i % 5;
        f->sel[i] = (uint8_t)(i % 3 != 1);        /* a TGF selection for the loss */
        f->rows[i] = 1.0f;
        f->dl[i] = 0.5f;
        f->de[i] = -0.25f;
    }
    for (i = 0; i < 40; ++i) { f->z[i] = (float)(i % 7) * 0.3f; f->z2[i] = (float)(i % 5) * 0.2f; }
    f->s.n_seqs = 2; f->s.offsets = f->off; f->s.mask = f->mask;
    f->x.data = f->z; f->x.dtype = VPPO_F32; f->x.n_rows = 8; f->x.vocab = 5; f->x.row_stride = 5; f->x.temperature = 1.0f;
    f->y = f->x;
    f->y.data = f->z2;
    f->g.data = f->dz; f->g.dtype = VPPO_F32; f->g.row_stride = 5;
    vppo_logprobs(&f->x, NULL, NULL, f->lse, f->ent);   /* the caller's lse and entropy, valid */
    f->tas = vppo_tas_config_default();
    f->st.min = 0.2; f->st.max = 0.7; f->st.n = 2;
    f->global = f->st;
    f->traj[0] = 0.2f; f->traj[1] = 0.7f;
    f->count[0] = 4; f->count[1] = 4;
    f->loss = vppo_loss_config_default();
    f->cfg = vppo_config_default();
    f->p.dep = f->dep; f->p.traj_dep = f->traj_dep; f->p.count = f->pcount; f->p.scale = f->scale;
    f->p.adv = f->adv; f->p.select = f->psel;
    f->adv_seq[0] = 1.0f; f->adv_seq[1] = -1.0f;
    f->fillv[0] = 0.5f; f->fillv[1] = -0.5f;
    for (i = 0; i < 48; ++i) f->px[i] = (uint8_t)(i * 5);
    f->img.pixels = f->px; f->img.width = 4; f->img.height = 4; f->img.channels = 3; f->img.row_stride = 12;
    f->blur_need = vppo_blur_workspace(4, 4, 3);
    for (i = 0; i < 6; ++i) { f->hidden[i] = 0.1f * (float)(i + 1); f->hidden_aug[i] = 0.1f * (float)(6 - i); }
    for (i = 0; i < 15; ++i) f->weight[i] = 0.05f * (float)(i % 4) - 0.07f;
    f->lin_ids[0] = 1; f->lin_ids[1] = 4;
    f->lin_need = vppo_linear_workspace(2, 3, 5);
}

/* ------------------------------------------------------------- references */

double ref_log_softmax(const double *u, int64_t V, double *logp)
{
    double m = -INFINITY, sum = 0.0, lse;
    int64_t i;
    for (i = 0; i < V; ++i) if (u[i] > m) m = u[i];
    for (i = 0; i < V; ++i) sum += exp(u[i] - m);   /* exp(-inf) = 0 */
    lse = m + log(sum);
    if (logp) for (i = 0; i < V; ++i) logp[i] = u[i] - lse;
    return lse;
}

double ref_entropy(const double *logp, int64_t V)
{
    double h = 0.0;
    int64_t i;
    for (i = 0; i < V; ++i) if (logp[i] > -INFINITY) h -= exp(logp[i]) * logp[i];
    return h;
}

double ref_kl(const double *logp, const double *logq, int64_t V)
{
    double kl = 0.0;
    int64_t i;
    for (i = 0; i < V; ++i) {
        if (logp[i] == -INFINITY) continue;
        if (logq[i] == -INFINITY) return INFINITY;
        kl += exp(logp[i]) * (logp[i] - logq[i]);
    }
    return kl;
}

double ref_js(const double *logp, const double *logq, int64_t V)
{
    double js = 0.0;
    int64_t i;
    for (i = 0; i < V; ++i) {
        double p = exp(logp[i]), q = exp(logq[i]), m = 0.5 * (p + q);
        if (p > 0) js += 0.5 * p * log(p / m);
        if (q > 0) js += 0.5 * q * log(q / m);
    }
    return js;
}

double ref_dependency(vppo_estimator est, double logp, double logp_aug)
{
    double d = logp_aug - logp;
    if (d < -20) d = -20;
    if (d > 20) d = 20;
    switch (est) {
    case VPPO_EST_K3: { double v = exp(d) - d - 1; return v < 0 ? 0 : (v > 10 ? 10 : v); }
    case VPPO_EST_K1: return -d;
    case VPPO_EST_K2: return d * d / 2;
    case VPPO_EST_ABS: return fabs(d);
    case VPPO_EST_PROB_DROP: return exp(logp) - exp(logp_aug);
    }
    return NAN;
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

ref_loss_terms ref_policy_loss(const vppo_loss_config *cfg, const vppo_seqs *s,
    const double *logp, const double *frozen, const float *logp_old, const float *logp_ref,
    const float *adv, const uint8_t *select, const float *weight)
{
    ref_loss_terms R;
    int64_t b, t, N = 0;
    double S, D;
    memset(&R, 0, sizeof R);
    for (b = 0; b < s->n_seqs; ++b)
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t) N += !s->mask || s->mask[t];
    D = cfg->denom > 0 ? cfg->denom : (double)N;
    S = cfg->denom > 0 ? cfg->denom : (double)s->n_seqs;
    for (b = 0; b < s->n_seqs; ++b) {
        double n = 0, mean_delta = 0, mean_delta_frozen = 0, pg = 0, kl = 0, ent = 0, factor = 0;
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
            if (!s->mask || s->mask[t]) {
                n += 1;
                mean_delta += logp[t] - logp_old[t];
                mean_delta_frozen += frozen[t] - logp_old[t];
            }
        if (n == 0) continue;
        mean_delta /= n;
        mean_delta_frozen /= n;
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t) {
            double delta, rho, r, rhat, A, L1, L2, L3, H, l, w;
            if (s->mask && !s->mask[t]) continue;
            delta = logp[t] - logp_old[t];
            A = adv[t];
            if (cfg->ratio_level == VPPO_RATIO_TOKEN) rho = delta;
            else if (cfg->ratio_level == VPPO_RATIO_SEQ) rho = mean_delta;
            else rho = mean_delta_frozen + logp[t] - frozen[t];    /* sg(mean) + logp - sg(logp) */
            r = exp(clampd(rho, -20, 20));
            rhat = exp(clampd(rho, log(1 - (double)cfg->clip_low), log(1 + (double)cfg->clip_high)));
            L1 = -A * r; L2 = -A * rhat; L3 = -A * cfg->clip_dual;
            H = L1 > L2 ? L1 : L2;
            if (cfg->pg_kind == VPPO_PG_CISPO) {
                double rho_f = cfg->ratio_level == VPPO_RATIO_TOKEN ? frozen[t] - logp_old[t] : mean_delta_frozen;
                double rhat_f = exp(clampd(rho_f, log(1 - (double)cfg->clip_low), log(1 + (double)cfg->clip_high)));
                l = -A * rhat_f * logp[t];
            } else {
                l = (A < 0 && cfg->clip_dual > 0 && H > L3) ? L3 : H;
            }
            w = (select ? (select[t] != 0) : 1) * (weight ? weight[t] : 1.0);
            pg += w * l;
            if (cfg->kl_kind != VPPO_KL_NONE) {
                double k = logp[t] - logp_ref[t];
                switch (cfg->kl_kind) {
                case VPPO_KL_K1: kl += k; break;
                case VPPO_KL_ABS: kl += fabs(k); break;
                case VPPO_KL_K2: kl += k * k / 2; break;
                case VPPO_KL_K3: { double x = clampd(-k, -20, 20); kl += clampd(exp(x) - x - 1, -10, 10); break; }
                default: break;
                }
            }
            ent += -logp[t];
            R.clipfrac += L1 < L2;
            R.clipfrac_dual += A < 0 && cfg->clip_dual > 0 && H > L3;
            R.ppo_kl += -delta;
            R.n_selected += w != 0;
        }
        switch (cfg->agg) {
        case VPPO_AGG_TOKEN_MEAN: factor = 1 / D; break;
        case VPPO_AGG_SEQ_MEAN_TOKEN_MEAN: factor = 1 / (n * S); break;
        case VPPO_AGG_SEQ_MEAN_TOKEN_SUM: factor = 1 / S; break;
        case VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM: factor = 1 / (S * cfg->agg_norm); break;
        }
        R.pg += pg * factor;
        R.kl += kl * factor;
        R.ent += ent * factor;
    }
    R.loss = R.pg + cfg->kl_coef * R.kl + cfg->entropy_coef * R.ent;
    R.n_valid = (long)N;
    if (N > 0) { R.clipfrac /= N; R.clipfrac_dual /= N; R.ppo_kl /= N; }
    return R;
}

/* ------------------------------------------------------------- the runner */

#include <time.h>

int test_run(const test_entry *tests, size_t n_tests, const char *filter, void (*after_each)(void))
{
    size_t i;
    int passed = 0, failed = 0;
    for (i = 0; i < n_tests; ++i) {
        const long before = test_checks;
        const clock_t t0 = clock();
        if (filter && !strstr(tests[i].name, filter)) continue;
        test_set_current(tests[i].name);
        test_failed_now = 0;
        tests[i].fn();
        if (test_checks == before) {   /* a test that checks nothing cannot fail: a defect */
            fprintf(stderr, "FAIL %s: made no checks\n", tests[i].name);
            test_failed_now = 1;
        }
        if (after_each) after_each();
        if (test_failed_now) {
            ++failed;
            printf("  FAIL  %s (%d failed checks)\n", tests[i].name, test_failed_now);
        } else {
            ++passed;
            printf("  ok    %s (%ld checks, %.1f s)\n", tests[i].name, test_checks - before,
                   (double)(clock() - t0) / CLOCKS_PER_SEC);
        }
        fflush(stdout);
    }
    printf("%ld checks\n", test_checks);
    printf("%d passed, %d failed\n", passed, failed);
    return failed;
}
