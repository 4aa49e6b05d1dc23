/* tests/test.h - the test framework of vppo.h, random inputs and float64 references.

   A test is a void function listed in tests/tests.def. Checks record a failure (with
   file, line, what was expected and what came) and let the test go on; the runner in
   test_main.c counts a test as passed when none of its checks failed, prints
   "N passed, M failed" and exits non-zero on any failure. */
#ifndef VPPO_TEST_H
#define VPPO_TEST_H

#include "../vppo.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- checking */

extern long test_checks;       /* assertions evaluated, whole run */
extern int test_failed_now;    /* failures in the running test */

void test_fail(const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void test_set_current(const char *name);   /* the runners name the running test for test_fail */

#define CHECK(cond) do { ++test_checks; if (!(cond)) \
    test_fail(__FILE__, __LINE__, "expected %s", #cond); } while (0)

#define CHECK_STATUS(expected, call) do { vppo_status got_ = (call); ++test_checks; \
    if (got_ != (expected)) test_fail(__FILE__, __LINE__, "%s: expected %s (%d), got %s (%d)", \
        #call, vppo_status_string(expected), (int)(expected), vppo_status_string(got_), (int)got_); } while (0)

#define CHECK_EQ_INT(expected, got) do { long long e_ = (long long)(expected), g_ = (long long)(got); \
    ++test_checks; if (e_ != g_) test_fail(__FILE__, __LINE__, "%s: expected %lld, got %lld", #got, e_, g_); } while (0)

/* |got - ref| <= abs_tol + rel_tol |ref|; infinities must match exactly. */
int test_near(double ref, double got, double abs_tol, double rel_tol);
#define CHECK_NEAR(ref, got, ...) CHECK_NEAR_(ref, got, __VA_ARGS__)   /* lets TOL_* expand to two */
#define CHECK_NEAR_(ref, got, abs_tol, rel_tol) do { double r_ = (ref), g_ = (got); ++test_checks; \
    if (!test_near(r_, g_, abs_tol, rel_tol)) test_fail(__FILE__, __LINE__, \
        "%s: expected %.10g, got %.10g (diff %.3g, allowed %.3g + %.3g*|ref|)", #got, r_, g_, \
        g_ - r_, (double)(abs_tol), (double)(rel_tol)); } while (0)

/* Same value, same bits (distinguishes -0 from +0 and compares NaN payloads). */
#define CHECK_SAME_FLOAT(expected, got) do { float e_ = (expected), g_ = (got); ++test_checks; \
    if (memcmp(&e_, &g_, sizeof e_) != 0) test_fail(__FILE__, __LINE__, \
        "%s: expected %.9g, got %.9g (bits differ)", #got, (double)e_, (double)g_); } while (0)

/* docs/spec.md §12 tolerances, as (absolute, relative) pairs for CHECK_NEAR. */
#define TOL_LSE           1e-5, 1e-5     /* |err| <= 1e-5 (1 + |ref|) */
#define TOL_DIV           1e-5, 1e-4     /* entropy, KL, JS */
#define TOL_DLOGITS       1e-7, 1e-5
#define TOL_TOKEN         1e-6, 1e-6     /* per-token O(N) math */
#define TOL_SCALAR        1e-6, 1e-6     /* batch scalars */

/* ------------------------------------------------------------- random inputs */

typedef struct rng { uint64_t state; } rng;
rng rng_make(uint64_t seed);
uint64_t rng_next(rng *r);
double rng_uniform(rng *r);                    /* [0, 1) */
double rng_range(rng *r, double lo, double hi);
double rng_normal(rng *r);
int64_t rng_int(rng *r, int64_t lo, int64_t hi);   /* [lo, hi] */

/* ------------------------------------------------------------- helpers */

/* vppo_hash64 and vppo_uniform written from docs/spec.md §3, apart from the library's. */
uint64_t test_splitmix64(uint64_t x);
double test_uniform(uint64_t seed, uint64_t i);

/* Random padded batch: n_seqs sequences of length len, sequence b with a random number
   of valid positions in [min_valid, len] at the front and random holes if holes != 0;
   offsets (n_seqs+1) and mask (n_seqs*len) allocated with malloc. */
typedef struct test_batch { int64_t n_seqs, len, n; int64_t *offsets; uint8_t *mask; vppo_seqs s; } test_batch;
test_batch batch_make(rng *r, int64_t n_seqs, int64_t len, int64_t min_valid, int holes);
void batch_free(test_batch *b);

float *floats_new(int64_t n, float fill);      /* malloc'd, every entry = fill */
double *doubles_new(int64_t n, double fill);

uint16_t test_f32_to_bf16_trunc(float f);      /* exact for values with 8 mantissa bits */
uint16_t test_f32_to_bf16_round(float f);      /* nearest, ties to even */
uint16_t test_f32_to_f16_trunc(float x);       /* toward zero; beyond the range +-inf */
uint16_t test_f32_to_f16_exact(double v);      /* v must be exactly representable in f16 */
double test_bf16_value(uint16_t h);
double test_f16_value(uint16_t h);

/* ------------------------------------------------------------- vector ISAs */

/* How many vector ISAs (not scalar) vppo_isa_select accepts in this build on this CPU; the
   active ISA is restored. */
int test_vector_isas_selectable(void);
/* Checks what the build promises about `tested`, the number of vector ISAs a test ran:
   at least one on x86-64 (SSE2) and aarch64 (NEON), none in a build without vector paths;
   on 32-bit x86 it depends on the CPU and nothing is checked. */
void test_check_vector_isas_tested(int tested);

/* ------------------------------------------------------------- the bad-input fixture */

/* Valid arguments for every public function that returns a vppo_status, shared by the
   bad-input tests (test_errors.c, test_matrix.c): each of their rows starts from a fresh
   fixture and breaks one thing. test_fixture_init fills it; every call on it succeeds. */
typedef struct test_fixture {
    /* two sequences (or groups) of 4 positions, every position valid */
    int64_t off[3];
    uint8_t mask[8];
    vppo_seqs s;
    float logp[8], aug[8], score[8], out[8], traj[2], mean[2], rows[8], fillv[2];
    int32_t ids[8];
    uint8_t sel[8];
    int64_t count[2], offsets_out[4];
    /* 8 rows of 5 logits and a gradient of the same shape */
    float z[40], z2[40], dz[40];
    vppo_logits x, y;
    vppo_grad_out g;
    float lse[8], ent[8], dl[8], de[8];
    /* TAS, loss, pipeline */
    vppo_tas_config tas;
    vppo_tas_stats st, global;
    vppo_loss_config loss;
    vppo_loss_out lo;
    vppo_topk_info info;
    vppo_config cfg;
    float dep[8], traj_dep[2], scale[2], adv[8], adv_seq[2];
    uint8_t psel[8];
    int64_t pcount[2];
    vppo_prepared p;
    /* a 4 x 4 RGB image */
    uint8_t px[4 * 4 * 3];
    vppo_image img;
    unsigned char work[4096];
    size_t blur_need;
    /* linear head: n = 2, d = 3, vocab = 5 */
    float hidden[6], hidden_aug[6], weight[15], dhidden[6], dweight[15], lin_out[2];
    int32_t lin_ids[2];
    size_t lin_need;
} test_fixture;
void test_fixture_init(test_fixture *f);

/* ------------------------------------------------------------- float64 references */

/* log-softmax of u[0..V) (u = z / T, already divided), -inf entries allowed: plain
   two-pass max, then sum. Returns lse; logp[i] = u[i] - lse. */
double ref_log_softmax(const double *u, int64_t V, double *logp);
double ref_entropy(const double *logp, int64_t V);
double ref_kl(const double *logp, const double *logq, int64_t V);     /* KL(P || Q) */
double ref_js(const double *logp, const double *logq, int64_t V);

/* The released code's low_var_kl and the other §2.1 estimators, one token. */
double ref_dependency(vppo_estimator est, double logp, double logp_aug);

/* The policy loss written from docs/spec.md §7 for clarity, in double, over logp with the
   stop-gradient parts (CISPO's rhat, SEQ_TOKEN's sequence ratio) taken from `frozen`
   (pass logp itself for the value). dloss/dlogp of the library is compared with
   finite differences of this function in its first argument. */
typedef struct ref_loss_terms { double loss, pg, kl, ent, clipfrac, clipfrac_dual, ppo_kl; long n_valid, n_selected; } ref_loss_terms;
ref_loss_terms ref_policy_loss(const vppo_loss_config *cfg, const vppo_seqs *s,
    const double *logp, const double *frozen, const float *logp_old, const float *logp_ref,
    const float *adv, const uint8_t *select, const float *weight);

/* ------------------------------------------------------------- the runner */

/* One runner for both suites (test_main.c, test_cuda.c; in test_util.c). */
typedef struct test_entry { const char *name; void (*fn)(void); } test_entry;
/* Runs the tests whose name contains filter (every test when NULL), each named for
   test_fail; a test that makes no check fails; after_each (or NULL) runs after every test,
   as part of it (the CUDA suite's leak and error-state checks). Prints a line per test, the
   number of checks and "N passed, M failed"; returns the number of failed tests. */
int test_run(const test_entry *tests, size_t n_tests, const char *filter, void (*after_each)(void));

#ifdef __cplusplus
}
#endif
#endif
