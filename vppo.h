/* vppo.h - v0.1.0 - the reinforcement-learning math of VPPO on plain float buffers.
   MIT licence (see the end of this file). No warranty.

   Do this:
       #define VPPO_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes it without the define. Link with -lm.

WHAT VPPO IS
   VPPO (Visually-Perceptive Policy Optimization, arXiv 2510.09285, ICLR 2026) is
   GRPO/DAPO-style RL for vision-language models with three additions:
     1. token perception: each generated token's *visual dependency* is how much the
        policy's next-token distribution changes when the image is perturbed (random
        14x14 patch blackening): KL(pi(.|I) || pi(.|I')), paper Eq. 3;
     2. Trajectory-level Advantage Shaping (TAS): each response's advantage is scaled
        by its mean dependency, min-max normalised over the batch (paper Eq. 5);
     3. Token-level Gradient Filtering (TGF): only the top 40% most dependent tokens
        of each response carry the policy gradient.
   The rest is the DAPO objective: clip 0.2/0.28, dual clip 3, token-mean, plus the
   released code's entropy penalty 0.06. The authors' released training code differs
   from the paper's equations in places; both are here, and the defaults reproduce the
   released code. The contract this file implements is docs/spec.md (sections cited as §).

ONE TRAINING STEP
   Per-token arrays are flat: sequence b (one response) owns positions
   [offsets[b], offsets[b+1]); an optional mask marks padding with 0.

       #define VPPO_IMPLEMENTATION
       #include "vppo.h"

       int64_t offsets[B + 1];
       vppo_offsets_uniform(offsets, B, L);               // padded [B, L] tensors
       vppo_seqs s = { B, offsets, response_mask };       // mask: uint8_t [B*L]

       vppo_config cfg = vppo_config_default();           // released 7B recipe
       vppo_prepared p = { dep, traj_dep, count, scale, adv, select };
       vppo_loss_out out;
       vppo_status st = vppo_step(&cfg, &s,
           logp,        // log pi_theta(o_t)          (current policy)   [B*L]
           logp_old,    // log pi_old(o_t | I)        (rollout policy)   [B*L]
           logp_aug,    // log pi_old(o_t | I')       (perturbed image)  [B*L]
           NULL,        // logp_ref: only with a KL penalty
           adv_seq,     // one GRPO advantage per response               [B]
           &p, dlogp, &out);                              // dlogp = dloss/dlogp [B*L]
       if (st != VPPO_OK) fprintf(stderr, "vppo: %s\n", vppo_status_string(st));
       // backpropagate dlogp into your model; vppo_logprobs_backward does the
       // softmax part if you hold the logits.

   Group advantages come from vppo_group_advantages (§4); dependency from full logits
   from vppo_dependency_logits (§2.2); perturbed images from vppo_perturb_* (§3).

CONFIGURATION MACROS
   VPPO_IMPLEMENTATION  compile the implementation into this translation unit
   VPPO_STATIC          make every function static (private to one translation unit)
   VPPO_NO_SIMD         compile the scalar paths only
   VPPO_USE_CBLAS       the fused linear head (§9) calls cblas_sgemm (include <cblas.h>,
                        link a CBLAS such as OpenBLAS: -lopenblas)
   -fopenmp             (a compiler flag) OpenMP over rows; results do not change

MEMORY
   No function allocates. The caller owns every buffer; sizes are stated at each
   declaration ([N] = one entry per flat position up to offsets[B], [B] = one per
   sequence, [n_rows] = one per logits row). Functions that need scratch space take
   it as (work, work_bytes) with a *_workspace() query for the size.

ERRORS
   Every function that can fail returns a vppo_status (VPPO_OK = 0, errors < 0);
   vppo_status_string() describes it. Pointers, sizes, offsets, strides, ids and
   parameters are validated before anything is written. Per-token values (NaN, or an
   infinity where none is allowed) are validated before anything is written as well,
   with two exceptions found while writing: the logits kernels (§2.2, §2.3) meet bad
   logits in their single pass, and vppo_policy_loss reports a gradient beyond the
   float range (absurd advantages), or a loss beyond the double range (a denom or
   agg_norm near 0), as it stores them. There an error leaves the outputs
   unspecified (for the in-place backward: the logits), and never touches memory
   outside the buffers. Inputs are never modified except by the documented in-place
   calls (perturbations, in-place backward). Required pointers must be non-NULL even
   when there is nothing to do.

THREADING
   Built without OpenMP the library owns no threads. Built with -fopenmp, the logits
   kernels (§2.2, §2.3) and the fused linear head (§9) split their rows (the head's
   GEMMs: whole output tiles) over OpenMP threads when a call has at least 65536 logits (OMP_NUM_THREADS / omp_set_num_threads
   choose how many); each row is computed by one thread in a fixed order, so the thread
   count never changes a bit, and an error reports the lowest failing row's status, as a
   serial run would. Likewise, at 65536 tokens or more, vppo_dependency_sampled,
   vppo_seq_mean, vppo_topk_mask, vppo_soft_mask, vppo_policy_loss, vppo_prepare and vppo_step split
   their sequences (their input checks, their tokens) over threads: each sequence's
   sums are computed by one thread and combined in sequence order, so these too give the
   same bits for any thread count (tested with 1, 2 and 3 threads). The only global mutable state is the ISA selection
   (vppo_isa_select; the first call of any kernel picks the best ISA). It is an atomic
   int (gcc/clang __atomic builtins, else C11 <stdatomic.h>), so first calls from many
   threads at once are safe: each may detect, all store the same choice (tested under
   ThreadSanitizer: make test-tsan). Only on a compiler with neither (a bare C99 one) is
   it a plain int: there, call vppo_isa_active() once before starting threads. Calling
   vppo_isa_select() while other threads run kernels is safe but makes which ISA a
   running call uses unspecified. Every function is reentrant: concurrent calls on
   disjoint outputs are safe.

DETERMINISM
   Every reduction runs in a fixed order (per-sequence partial sums combined in
   sequence order), so the same inputs give the same bits, run after run. Batch
   scalars and O(N) per-token math are computed in double and rounded once. Random
   perturbation decisions are pure functions of (seed, index): vppo_uniform() below.
   The library must not be built with -ffast-math/-Ofast (NaN checks and exact masks
   depend on IEEE semantics); build with -ffp-contract=off (the default of gcc in ISO
   modes) for the same bits from every compiler.
   For a fixed ISA, every result is bitwise identical across runs and thread counts
   (tested with 1, 2 and 3 threads). Different ISAs differ in the last bits of the
   logits kernels only (float lanes, FMA or not): each is within §12 of the float64
   reference, and so within twice those bounds of each other; measured
   (tests/test_determinism.c, f32/bf16/f16, vocab 17-4099): SSE2, AVX2 and AVX-512 are
   within one float ulp of the scalar path, under 4% of that allowance (x87 arithmetic,
   gcc -m32 without -mfpmath=sse, is not covered). The fused linear head's GEMM
   (§9) sums each entry in one fixed order on every ISA, with a rounded product and add
   on the scalar path and SSE2 (computed alike) and one FMA per term on AVX2, AVX-512
   and NEON: each entry of a k-term product is within about k 2^-24 sum|a b| of the
   exact value (the classical bound for this order; FMA only lowers the error), so
   ISAs differ in the last bits there too. Everything else (§3-§8) gives the same bits on
   every ISA: the O(N) kernels (VPPO__ON_KERNELS: §2.1's sampled estimators, §5's
   sequence sums, §7's loss and gradient, the per-token input checks) compute in double
   (the loss's common case partly in float, docs/spec.md §12), with the same IEEE
   operations in every vector lane and in the plain C path (no FMA,
   the library's own exp: within 3 ulp of libm's on [-708, 709], 2 measured; sums in 16
   position-indexed partial sums folded in a fixed order), given -ffp-contract=off and,
   on 32-bit x86, SSE2 arithmetic (tested: determinism_non_logits_functions_same_bits_
   on_every_isa and the on_* white-box tests). With VPPO_USE_CBLAS the GEMM is the BLAS's own, whose bits may depend on
   its thread count.

SIMD
   The logits kernels have four vector paths beside the scalar reference (double
   arithmetic, the one the others are tested against): SSE2, AVX2 (with FMA and F16C),
   AVX-512F and NEON. On x86 (gcc, clang) each vector kernel carries its own
   target attribute, so one binary built without -march runs on any x86-64 and picks,
   at its first call, the best path that CPUID and XGETBV (OS support of the AVX
   registers) allow; NEON is chosen at compile time on aarch64. Other compilers and
   targets get the scalar path. vppo_isa_select() forces a path (VPPO_TEST_ISA=name runs
   the test suite on one). bf16 and f16 are converted in registers (F16C on AVX2 and
   AVX-512; bit arithmetic on SSE2). The scalar path is also used for a temperature
   below about 3e-39 or above about 8.5e37 (where 1/T is not a normal float). How the vector
   path works is described above vppo__kernels; the kernels, written once over a table
   that maps each vector operation to each ISA's intrinsic, and the error bound of their
   exp are in the last section of the implementation (see its file map).

CUDA
   vppo_cuda.h / vppo_cuda.cu (§11) are a separate, optional translation unit.

DEFAULTS (the released 7B recipe, vppo_config_default)
   dependency estimator     K3 (low_var_kl), d = logp_aug - logp clamped to [-20, 20],
                            dependency clamped to [0, 10]
   TGF                      top 40% per response, k = ceil(0.4 * n_b)
   TAS                      mean-preserving ("dynamic beta_max"), beta_min 0.9
   clip low / high / dual   0.2 / 0.28 / 3.0, PPO clip, token-level ratio
   aggregation              token-mean; no KL penalty; entropy penalty 0.06
   GRPO eps; rollouts       1e-6; 8 per prompt
   perturbation             patch blackening, patch 14, prob 0.5
   dynamic sampling         keep groups with 0.01 < mean accuracy < 0.99
*/

#ifndef VPPO_H_INCLUDED
#define VPPO_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define VPPO_VERSION_MAJOR 0
#define VPPO_VERSION_MINOR 1
#define VPPO_VERSION_PATCH 0

#ifndef VPPODEF
#  ifdef VPPO_STATIC
#    if defined(__GNUC__) || defined(__clang__)
#      define VPPODEF static __attribute__((unused))
#    else
#      define VPPODEF static
#    endif
#  else
#    define VPPODEF extern
#  endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================================================== types == */

typedef enum vppo_status {
    VPPO_OK = 0,
    VPPO_ERR_NULL = -1,        /* a required pointer is NULL */
    VPPO_ERR_SIZE = -2,        /* count/offset/stride/group inconsistent */
    VPPO_ERR_PARAM = -3,       /* parameter outside its domain */
    VPPO_ERR_INDEX = -4,       /* token id outside [0, vocab) */
    VPPO_ERR_NONFINITE = -5,   /* NaN, or an infinity where none is allowed */
    VPPO_ERR_WORKSPACE = -6,   /* work buffer too small */
    VPPO_ERR_UNSUPPORTED = -7, /* not built in, or not supported by this CPU */
    VPPO_ERR_CUDA = -8,        /* a CUDA call failed (vppo_cuda.h) */
    VPPO_ERR_ALLOC = -9        /* an allocating helper ran out of memory */
} vppo_status;

/* A fixed English description of s; "unknown vppo_status" for other values. */
VPPODEF const char *vppo_status_string(vppo_status s);

/* Sequences (responses). Sequence b owns flat positions [offsets[b], offsets[b+1]).
   offsets has n_seqs+1 entries, offsets[0] >= 0, nondecreasing (else VPPO_ERR_SIZE).
   A position is *valid* if it lies in a sequence and its mask byte is nonzero (mask
   NULL: every position counts); n_b = number of valid positions of sequence b.
   Per-token functions read valid positions only and write every position of
   [offsets[0], offsets[n_seqs]): the value at valid positions, 0 elsewhere; nothing
   before offsets[0] or from offsets[n_seqs] on is touched. Garbage (even NaN) at
   invalid positions is ignored.
   A padded [B, L] tensor pair (values, response_mask) is offsets b*L (see
   vppo_offsets_uniform) with mask = response_mask. */
typedef struct vppo_seqs {
    int64_t n_seqs;          /* B trajectories (responses) */
    const int64_t *offsets;  /* B+1 entries */
    const uint8_t *mask;     /* optional, indexed by flat position; 0 = not a response token */
} vppo_seqs;

/* offsets[b] = b*len for b = 0..n_seqs (n_seqs+1 entries). VPPO_ERR_SIZE for a negative
   count or length, or when n_seqs*len overflows. */
VPPODEF vppo_status vppo_offsets_uniform(int64_t *offsets, int64_t n_seqs, int64_t len);

/* Logit matrices. Row r holds the logits z of one token position, `vocab` entries,
   rows `row_stride` elements apart (row_stride >= vocab). u = z / temperature,
   p = softmax(u), lse = log sum exp(u). bf16 and f16 are converted exactly to float.
   -inf logits are masked vocabulary entries (probability 0, contributing exactly 0 to
   every sum); NaN or +inf is VPPO_ERR_NONFINITE; a row of only -inf is VPPO_ERR_PARAM.
   temperature must be finite and > 0 (VPPO_ERR_PARAM). */
typedef enum vppo_dtype { VPPO_F32 = 0, VPPO_BF16 = 1, VPPO_F16 = 2 } vppo_dtype;
typedef struct vppo_logits {
    const void *data; vppo_dtype dtype;
    int64_t n_rows, vocab, row_stride;   /* stride in elements, >= vocab */
    float temperature;                   /* logits are divided by it; must be > 0 */
} vppo_logits;

/* ============================================ image perturbation (the I' of §3) == */

/* An 8-bit image, interleaved channels, rows row_stride bytes apart
   (row_stride >= width*channels). width, height >= 0, channels >= 1. */
typedef struct vppo_image {
    uint8_t *pixels; int32_t width, height, channels;
    int64_t row_stride; /* bytes */
} vppo_image;

/* splitmix64 finaliser: z = x + 0x9E3779B97F4A7C15; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;
   z = (z ^ z>>27) * 0x94D049BB133111EB; return z ^ z>>31 (mod 2^64). */
VPPODEF uint64_t vppo_hash64(uint64_t x);
/* (vppo_hash64(seed ^ vppo_hash64(i)) >> 40) * 2^-24: a uniform in [0, 1) that is a pure
   function of (seed, i), so every random decision agrees across threads, CPU and CUDA. */
VPPODEF double vppo_uniform(uint64_t seed, uint64_t i);

/* The paper's perturbation (default patch 14, prob 0.5): the image is cut into a grid
   of patch x patch squares anchored at (0,0), edge patches clipped; patch
   i = py*ceil(width/patch) + px is set to 0 in all channels iff vppo_uniform(seed, i) < prob.
   In place. patch >= 1 and prob in [0, 1], else VPPO_ERR_PARAM. */
VPPODEF vppo_status vppo_perturb_patch_blackening(vppo_image *img, int32_t patch, float prob, uint64_t seed);
/* Additive Gaussian noise (paper ablation: std 189). For pixel p = y*width + x and channel
   c (channels 0..2 only when channels == 4: alpha is kept), with j = p*channels + c,
   u1 = vppo_uniform(seed, 2j), u2 = vppo_uniform(seed, 2j+1),
   n = sqrt(-2 ln(1 - u1)) cos(2 pi u2) (Box-Muller, in double);
   value = clamp((v + mean) + std*n, 0, 255) truncated to uint8. In place.
   mean finite, std finite and >= 0, else VPPO_ERR_PARAM. */
VPPODEF vppo_status vppo_perturb_gaussian_noise(vppo_image *img, float mean, float std, uint64_t seed);
/* Every channel of every pixel set to value (paper ablation: 128). In place. */
VPPODEF vppo_status vppo_perturb_fill(vppo_image *img, uint8_t value);
/* Bytes of work that vppo_perturb_gaussian_blur needs for an image of this size
   (0 for an empty image or negative sizes, (size_t)-1 when it would not fit in memory).
   Any alignment of the work pointer is accepted. */
VPPODEF size_t vppo_blur_workspace(int32_t width, int32_t height, int32_t channels);
/* Separable Gaussian blur (paper ablation: radius 6): sigma = radius, taps
   -ceil(3 sigma)..+ceil(3 sigma), weights normalised to sum 1, edges replicated, each
   output rounded to nearest. The alpha channel of a 4-channel image is kept. In place.
   radius in [0, 1e5] (0 leaves the image unchanged), else VPPO_ERR_PARAM; a work buffer
   smaller than vppo_blur_workspace() is VPPO_ERR_WORKSPACE. */
VPPODEF vppo_status vppo_perturb_gaussian_blur(vppo_image *img, float radius, void *work, size_t work_bytes);
/* For already-patchified vision inputs (e.g. Qwen2.5-VL pixel_values rows): row i of
   `rows` (row_len floats, rows row_stride floats apart) is replaced by `fill` (row_len
   floats, or zeros when NULL) iff vppo_uniform(seed, i) < prob. In place. prob in [0, 1]
   (VPPO_ERR_PARAM); fill must be finite (VPPO_ERR_NONFINITE). */
VPPODEF vppo_status vppo_perturb_patch_rows(float *rows, int64_t n_rows, int64_t row_len,
    int64_t row_stride, float prob, const float *fill, uint64_t seed);

/* ============================================ token perception (§2) ============ */

/* The dependency estimators from sampled-token log-probabilities (§2.1). */
typedef enum vppo_estimator {
    VPPO_EST_K3 = 0,     /* clamp(exp(d) - d - 1, 0, 10): the released code's low_var_kl */
    VPPO_EST_K1,         /* -d */
    VPPO_EST_K2,         /* d^2 / 2 */
    VPPO_EST_ABS,        /* |d| */
    VPPO_EST_PROB_DROP   /* exp(logp) - exp(logp_aug): paper Table 12, "top-1 drop" */
} vppo_estimator;

/* Visual dependency of each sampled token, as the released code measures it.
   logp [N]     = log pi_old(o_t | I), logp_aug [N] = log pi_old(o_t | I'),
   d = clamp(logp_aug - logp, -20, 20), dep [N] written per the estimator table.
   K3 with o_t sampled under the original image is an unbiased estimate of
   KL(pi(.|I) || pi(.|I')). Log-probabilities may be -inf (the token is impossible), not
   NaN or +inf; a NaN d (both -inf) is VPPO_ERR_NONFINITE, and so is a PROB_DROP value
   outside the float range (log-probabilities above ~88, which are not log-probabilities). */
VPPODEF vppo_status vppo_dependency_sampled(const vppo_seqs *s, const float *logp,
    const float *logp_aug, vppo_estimator est, float *dep);

typedef enum vppo_divergence {
    VPPO_DIV_KL = 0,       /* KL(P || Q) = sum p (log p - log q): paper Eq. 3 */
    VPPO_DIV_KL_REVERSE,   /* KL(Q || P) */
    VPPO_DIV_JS            /* 1/2 KL(P || M) + 1/2 KL(Q || M), M = (P + Q)/2 */
} vppo_divergence;

/* The paper's token perception (Eq. 3) from full logits: P = softmax(orig row / T_orig),
   Q = softmax(aug row / T_aug), dep[r] = divergence of row r, natural log, [n_rows].
   Shapes (n_rows, vocab) must match (VPPO_ERR_SIZE); dtypes and strides may differ.
   KL is +inf when some p_i > 0 has q_i = 0 (returned, not an error); tiny negative
   results from rounding are returned as 0. One pass over each pair of rows for KL (online
   max and sum), two for JS. */
VPPODEF vppo_status vppo_dependency_logits(const vppo_logits *orig, const vppo_logits *aug,
    vppo_divergence div, float *dep);

/* Per row: lse = log sum exp(u); logp = u[ids[r]] - lse (needs ids; -inf when that
   logit is -inf); entropy H = -sum p log p = lse - sum p u. Every output is optional
   (NULL); ids is needed only with logp and must lie in [0, vocab) (VPPO_ERR_INDEX). */
VPPODEF vppo_status vppo_logprobs(const vppo_logits *x, const int32_t *ids,
    float *logp, float *lse, float *entropy);

/* Gradient output: F32 or BF16 (round to nearest even) rows, row_stride >= vocab. */
typedef struct vppo_grad_out { void *data; vppo_dtype dtype; int64_t row_stride; } vppo_grad_out;

/* The backward of vppo_logprobs for L = sum_r g_r logp_r + h_r H_r:
       dL/dz_j = (1/T) [ g_r (delta(j, ids[r]) - p_j) - h_r p_j (log p_j + H_r) ]
   with g = dlogp and h = dentropy ([n_rows] each; NULL = 0). lse and entropy may be
   given (as vppo_logprobs wrote them) or NULL to be recomputed in an extra pass over the
   row. ids is needed when dlogp is given. In place is allowed: dlogits->data == x->data
   with both F32 and equal row strides; any other overlap is VPPO_ERR_PARAM. An F16
   output is VPPO_ERR_UNSUPPORTED. */
VPPODEF vppo_status vppo_logprobs_backward(const vppo_logits *x, const int32_t *ids,
    const float *lse, const float *entropy, const float *dlogp, const float *dentropy,
    const vppo_grad_out *dlogits);

/* ============================================ group advantages (§4) ============== */

typedef enum vppo_adv_kind {
    VPPO_ADV_GRPO = 0,      /* (r - mu) / (sigma + eps) */
    VPPO_ADV_GRPO_NO_STD,   /* r - mu (Dr. GRPO) */
    VPPO_ADV_RLOO,          /* r - (sum r - r) / (n - 1) */
    VPPO_ADV_GRPO_PASSK     /* the group's best (first on ties): (r_max - r_2nd) / (sigma + eps); others 0 */
} vppo_adv_kind;

/* Outcome advantages per response. Groups use the sequence layout over the per-response
   arrays: group g is responses [offsets[g], offsets[g+1]) (vppo_offsets_uniform(offsets,
   G, 8) for 8 per prompt); the optional mask excludes responses (e.g. ones already
   filtered out) from their group's statistics, and they get advantage 0. mu and sigma
   are the mean and unbiased (n-1) standard deviation of the included rewards. A group
   with exactly one included response is VPPO_ERR_SIZE (no baseline exists); one with
   none is all 0; a group of equal rewards is all 0 (even with eps = 0). An advantage
   beyond the float range is VPPO_ERR_NONFINITE, found before anything is written.
   rewards [N] finite; eps finite and >= 0 (official 1e-6); adv [N] written. */
VPPODEF vppo_status vppo_group_advantages(const vppo_seqs *groups, const float *rewards,
    vppo_adv_kind kind, float eps, float *adv);

/* DAPO dynamic sampling: keep[i] = 1 for the included responses of every group whose
   mean score lies strictly between lo and hi (official 0.01, 0.99: drop groups that are
   all right or all wrong), 0 for everything else. lo <= hi, neither NaN (VPPO_ERR_PARAM);
   scores [N] finite; keep [N] written. */
VPPODEF vppo_status vppo_group_filter(const vppo_seqs *groups, const float *scores,
    double lo, double hi, uint8_t *keep);

/* ============================== Trajectory-level Advantage Shaping (§5) ========= */

/* mean[b] = S_b = sum of x over the valid positions of b / n_b (0 when n_b = 0), the
   trajectory dependency of the paper; count[b] = n_b (optional). x finite at valid
   positions (VPPO_ERR_NONFINITE): clamp an infinite KL before averaging it. */
VPPODEF vppo_status vppo_seq_mean(const vppo_seqs *s, const float *x,
    float *mean, int64_t *count);

/* Batch statistics of trajectory dependencies: min, max and number of the sequences with
   count > 0 (all when count is NULL). With none, {+inf, -inf, 0}: the identity of merge. */
typedef struct vppo_tas_stats { double min, max; int64_t n; } vppo_tas_stats;
VPPODEF vppo_status vppo_tas_stats_compute(const float *traj_dep, const int64_t *count,
    int64_t n_seqs, vppo_tas_stats *st);
/* into = {min of mins, max of maxes, sum of n}: what an all-reduce (MIN, MAX, SUM) over
   data-parallel ranks gives, so the normalisation can be global. NULLs are ignored. */
VPPODEF void vppo_tas_stats_merge(vppo_tas_stats *into, const vppo_tas_stats *other);

typedef enum vppo_tas_mode {
    VPPO_TAS_MEAN_PRESERVING = 0,  /* released code ("dynamic beta_max"): mean scale 1 */
    VPPO_TAS_LINEAR                /* paper Eq. 5 */
} vppo_tas_mode;
typedef struct vppo_tas_config { vppo_tas_mode mode; float beta_min, beta_max; } vppo_tas_config;
VPPODEF vppo_tas_config vppo_tas_config_default(void);   /* MEAN_PRESERVING, 0.9, 1.0 */

/* Advantage scales alpha_b [n_seqs]. If st->n < 2 or max - min <= 1e-6 every scale is 1.
   Otherwise for every valid b (count > 0, or all when count is NULL)
   x_b = clamp((S_b - min) / (max - min), 0, 1) and
     LINEAR:           alpha_b = beta_min + (beta_max - beta_min) x_b
     MEAN_PRESERVING:  alpha_b = beta_min + (1 - beta_min) x_b / (mu + 1e-8),
                       mu = mean of x_b over the valid sequences of this call,
   so the mean scale over the call is 1 (the released code calls it per micro-batch with
   min/max of the whole mini-batch). Sequences with count 0 get 1. The shaped advantage
   is alpha_b * A_b. Domain (VPPO_ERR_PARAM): LINEAR 0 <= beta_min <= beta_max,
   MEAN_PRESERVING 0 <= beta_min <= 1 (beta_max unused), all finite; stats with n >= 2
   need finite min <= max. traj_dep finite at valid sequences. */
VPPODEF vppo_status vppo_tas_scales(const vppo_tas_config *cfg, const vppo_tas_stats *st,
    const float *traj_dep, const int64_t *count, int64_t n_seqs, float *scale);

/* ================================= Token-level Gradient Filtering (§6) ========== */

/* Totals and logging statistics of a selection. The three means are taken over finite
   values only (an infinite score is selected or rejected like any other, but would make
   a mean infinite or NaN); each is 0 when there is nothing to average. */
typedef struct vppo_topk_info {
    int64_t n_valid, n_selected;
    double threshold_mean;  /* mean over sequences with k_b > 0 of the k_b-th largest score */
    double mean_selected;   /* mean score of the selected positions */
    double mean_rejected;   /* mean score of the valid positions not selected */
} vppo_topk_info;

/* Per sequence, k_b = clamp(ceil(n_b * ratio - 1e-9), 0, n_b); select [N] = 1 on the k_b
   valid positions with the largest scores, ties broken by lower position, 0 elsewhere.
   ratio in [0, 1] (VPPO_ERR_PARAM); +-inf scores are ordered normally (-0 equals +0),
   NaN is VPPO_ERR_NONFINITE. O(n) per sequence (radix select on the order-preserving
   integer image of the float, digits sized to the spread of the keys), no allocation.
   The mask is the same on every ISA; so is info, bit for bit (its sums run in 16 fixed
   lanes per sequence, added in a fixed tree, whatever the vector width), and on every
   thread count. The released code's entropy variant is the same call on entropies;
   masks combine by OR. info optional. */
VPPODEF vppo_status vppo_topk_mask(const vppo_seqs *s, const float *score, double ratio,
    uint8_t *select, vppo_topk_info *info);

/* Paper Appendix I's soft filter: within a sequence z = (s - mean) / (std + 1e-6)
   (population std over the valid positions), c solves mean(sigmoid(z - c)) = ratio
   (a bracket shrunk to 1e-7, by Newton steps inside it where they help, else bisection;
   c is its midpoint), weight [N] = sigmoid(z - c); ratio 0 gives all 0, ratio 1 all 1.
   Double precision and libm's exp on every ISA (the same bits on each, and on every
   thread count).
   Scores finite (VPPO_ERR_NONFINITE), ratio in [0, 1] (VPPO_ERR_PARAM). */
VPPODEF vppo_status vppo_soft_mask(const vppo_seqs *s, const float *score, double ratio,
    float *weight);

/* ========================================== the policy objective (§7) =========== */

typedef enum vppo_agg {
    VPPO_AGG_TOKEN_MEAN = 0,            /* sum_valid x / D, D = denom > 0 ? denom : N_valid */
    VPPO_AGG_SEQ_MEAN_TOKEN_MEAN,       /* (1/S) sum_b (sum_{t in b} x / n_b) */
    VPPO_AGG_SEQ_MEAN_TOKEN_SUM,        /* (1/S) sum_b sum_{t in b} x */
    VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM    /* sum_b sum_{t in b} x / (S agg_norm) (Dr. GRPO) */
} vppo_agg;                             /* S = denom > 0 ? denom : B; empty sums are 0 */
typedef enum vppo_ratio_level {
    VPPO_RATIO_TOKEN = 0,   /* rho_t = logp_t - logp_old_t */
    VPPO_RATIO_SEQ,         /* GSPO: rho_t = mean over b of (logp - logp_old) */
    VPPO_RATIO_SEQ_TOKEN    /* GSPO-token: value of SEQ, gradient of TOKEN */
} vppo_ratio_level;
typedef enum vppo_pg_kind { VPPO_PG_CLIP = 0, VPPO_PG_CISPO } vppo_pg_kind;
typedef enum vppo_kl_kind { VPPO_KL_NONE = 0, VPPO_KL_K1, VPPO_KL_ABS, VPPO_KL_K2,
                            VPPO_KL_K3 } vppo_kl_kind;

typedef struct vppo_loss_config {
    float clip_low, clip_high, clip_dual;   /* 0.2, 0.28, 3.0; clip_dual 0 disables, else > 1 */
    vppo_pg_kind pg_kind; vppo_ratio_level ratio_level;
    vppo_agg agg; double agg_norm;          /* agg_norm: constant for SEQ_MEAN_TOKEN_SUM_NORM */
    vppo_kl_kind kl_kind; float kl_coef;    /* needs logp_ref */
    float entropy_coef;                     /* official entropy penalty, 0.06 */
    double denom;                           /* > 0: divide by this instead of the local count */
} vppo_loss_config;
/* {0.2, 0.28, 3.0, PG_CLIP, RATIO_TOKEN, AGG_TOKEN_MEAN, 1.0, KL_NONE, 0, 0.06, 0}.
   Domain (else VPPO_ERR_PARAM): clip_low in [0, 1], clip_high >= 0, clip_dual 0 or > 1,
   enums in range, agg_norm > 0 with SEQ_MEAN_TOKEN_SUM_NORM, kl_coef >= 0, denom >= 0,
   all finite. */
VPPODEF vppo_loss_config vppo_loss_config_default(void);

typedef struct vppo_loss_out {
    double loss, pg_loss, kl_loss, entropy_loss;
    double clipfrac, clipfrac_dual, ppo_kl;   /* means over the valid tokens */
    int64_t n_valid, n_selected;
} vppo_loss_out;

/* The clipped surrogate with its analytic gradient. For a valid token t of sequence b,
   Delta_t = logp_t - logp_old_t, A = adv_t (per token: broadcast the sequence advantage):
     rho_t   TOKEN: Delta_t; SEQ, SEQ_TOKEN: mean of Delta over the valid tokens of b
     r = exp(clamp(rho, -20, 20)),  rhat = exp(clamp(rho, ln(1 - clip_low), ln(1 + clip_high)))
     PG_CLIP:  L1 = -A r, L2 = -A rhat, L3 = -A clip_dual, H = max(L1, L2),
               l = (A < 0 and clip_dual > 0) ? min(H, L3) : H; the gradient flows through
               L1 only where it is the value taken (on L1 = L2 it is L1's; on H = L3 it is
               H's) and |rho| < 20: dl/drho = -A r. SEQ spreads it as 1/n_b over b.
     PG_CISPO: l = -A sg(rhat) logp_t, dl/dlogp_t = -A rhat
     token factor w_t = select_t * weight_t (absent = 1); pg term w_t l_t
     KL to the reference, k = logp - logp_ref: K1 k; ABS |k|; K2 k^2/2; K3 x = clamp(-k,
       -20, 20), v = clamp(exp(x) - x - 1, -10, 10), dv/dlogp = 1 - exp(x) where neither
       clamp is active (|x| < 20, exp(x) - x - 1 < 10), else 0
     entropy penalty e_t = -logp_t over all valid tokens, ignoring w (as released)
   loss = agg(w l) + kl_coef agg(kl) + entropy_coef agg(e); dlogp [N] (optional) =
   dloss/dlogp, 0 at invalid positions. out (required): the three aggregated terms, and
   over the valid tokens the means of [L1 < L2] (clipfrac), [A < 0, clip_dual > 0,
   H > L3] (clipfrac_dual) and -Delta (ppo_kl); n_valid; n_selected = number of valid
   tokens with w_t != 0. To reproduce the released code's gradient accumulation over
   micro-batches and ranks, set denom = valid tokens of the whole mini-batch, all ranks.
   logp, logp_old, adv, logp_ref (when used) and weight finite at valid positions. The
   loss is computed in double and always finite; a gradient beyond the float range
   (advantages of 1e29 and more) is VPPO_ERR_NONFINITE, found as dlogp is written. */
VPPODEF vppo_status vppo_policy_loss(const vppo_loss_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_old, const float *logp_ref,
    const float *adv, const uint8_t *select, const float *weight,
    float *dlogp, vppo_loss_out *out);

/* ================================ rollout correction (feeds §7's weight) ========= */

/* The inference engine that sampled a response (vLLM, SGLang: bf16, other kernels) and
   the trainer disagree on its probabilities. Rollout correction turns the per-token
   log-ratio l_t = logp_t - logp_rollout_t (logp: the trainer's log-probability of the
   sampled token, verl's old_log_prob; logp_rollout: the engine's) into importance
   weights and a rejection mask, for vppo_policy_loss's `weight` input and the mask of
   its vppo_seqs. Both are computed from valid positions only (see vppo_seqs).

   Aggregation level of a log-ratio or a divergence (verl's token/sequence/geometric): */
typedef enum vppo_rc_level {
    VPPO_RC_TOKEN = 0,      /* per token: x_t */
    VPPO_RC_SEQ_SUM,        /* per sequence: sum over its valid tokens (IS: product of ratios) */
    VPPO_RC_SEQ_MEAN,       /* per sequence: mean (IS: geometric mean of the ratios) */
    VPPO_RC_SEQ_MAX         /* per sequence: max (rejection with K2 or K3 only) */
} vppo_rc_level;
typedef enum vppo_rc_is {
    VPPO_RC_IS_NONE = 0,    /* no importance weight: 1 */
    VPPO_RC_IS_TRUNCATE,    /* TIS: w = min(ratio, is_upper) */
    VPPO_RC_IS_MASK         /* IcePop: w = ratio inside [is_lower, is_upper], else 0 */
} vppo_rc_is;
typedef enum vppo_rc_rs {   /* rejection statistic of a token, lc = clamp(l, -20, 20) */
    VPPO_RC_RS_NONE = 0,    /* no rejection */
    VPPO_RC_RS_K1,          /* -lc;  kept when ln(rs_lower) <= stat <= ln(rs_upper) */
    VPPO_RC_RS_K2,          /* lc^2 / 2;          kept when stat <= rs_upper */
    VPPO_RC_RS_K3           /* exp(lc) - 1 - lc;  kept when stat <= rs_upper */
} vppo_rc_rs;

typedef struct vppo_rc_config {
    vppo_rc_is is_mode; vppo_rc_level is_level;   /* TRUNCATE, TOKEN */
    double is_upper, is_lower;                    /* 2.0, 0 */
    int is_batch_normalize;                       /* 0; nonzero: divide by the batch mean */
    vppo_rc_rs rs_kind; vppo_rc_level rs_level;   /* NONE, TOKEN */
    double rs_upper, rs_lower;                    /* 0, 0 */
} vppo_rc_config;
/* {TRUNCATE, TOKEN, 2.0, 0, 0, RS_NONE, TOKEN, 0, 0}: verl's token-level TIS at 2.
   Domain (else VPPO_ERR_PARAM), fields of a disabled part unchecked: enums in range;
   is_level not SEQ_MAX; is_upper finite > 0; is_lower 0 (TRUNCATE only: read as
   1/is_upper, used by the is_frac_low metric alone) or finite in (0, is_upper];
   rs_upper finite > 0; K1: rs_lower 0 (read as 1/rs_upper) or finite in (0, rs_upper],
   rs_level not SEQ_MAX. */
VPPODEF vppo_rc_config vppo_rc_config_default(void);

typedef struct vppo_rc_out {
    int64_t n_valid, n_seqs_valid, n_kept;   /* valid tokens, non-empty sequences, kept tokens */
    /* importance weights (before batch normalization, rejected tokens included), means
       over valid tokens: */
    double is_mean, is_std, is_min, is_max;
    double is_ess;            /* effective sample size mean(w)^2 / mean(w^2); 0 if all w = 0 */
    double is_frac_high, is_frac_low;   /* above is_upper / below is_lower: the clamped ratio of
                                           each valid token (TOKEN), the unclamped ln-ratio of
                                           each non-empty sequence against ln of the bound (SEQ_*) */
    double is_norm;           /* the batch normalizer divided by (1 when not normalizing) */
    /* rejection: the statistic over valid tokens (a sequence's value at each of its tokens) */
    double rs_mean, rs_min, rs_max;
    double rs_frac_token;     /* rejected valid tokens / valid tokens */
    double rs_frac_seq;       /* non-empty sequences with a rejected token / non-empty sequences */
    /* off-policy diagnostics, lc = clamp(l, -20, 20): */
    double kl;                /* mean over valid tokens of -l (KL(rollout || trainer), k1) */
    double k3_kl;             /* mean of exp(lc) - 1 - lc */
    double chi2_token;        /* mean of exp(2 lc) - 1 */
    double chi2_seq;          /* mean over non-empty sequences of exp(2 clamp(sum_b l, -20, 20)) - 1 */
    double log_ppl_diff;      /* mean over non-empty sequences of (mean_b logp_rollout - mean_b logp) */
} vppo_rc_out;

/* Rollout correction of one batch (verl's compute_rollout_correction_and_rejection_mask
   with one rejection option). For a valid token t of sequence b, with the level's
   aggregate L of l (l_t, sum_b l or mean_b l):
     ratio = exp(clamp(L, -20, 20)); w = 1 (IS_NONE), min(ratio, is_upper) (TRUNCATE),
     [is_lower <= ratio <= is_upper] ratio (MASK); with is_batch_normalize, w /= m where
     m = mean of w over valid tokens (TOKEN) or over non-empty sequences (SEQ_*), when
     m > 1e-8 (else w is kept and is_norm = 1).
     keep_t = rs_kind == NONE or the level's aggregate S of the token statistic passes
     its threshold (all kept tokens of a sequence stand or fall together at SEQ_*).
   Writes (each optional, [N] like every per-token output, 0 at invalid positions):
     weight[t] = keep_t ? w : 0   -> vppo_policy_loss's weight (float; w <= e^20 / m)
     keep[t]   = keep_t (0/1)     -> the mask of the loss's vppo_seqs, which also removes
                                     rejected tokens from the token counts (verl's
                                     modified response_mask); weight alone keeps them in.
   out (required): the metrics above. One rejection criterion per call; for verl's
   comma-separated list call once per criterion and AND the keep masks. logp and
   logp_rollout must be finite at valid positions (VPPO_ERR_NONFINITE). Differences
   from verl (documented, not bugs): sequence metrics are over non-empty sequences (verl
   averages sequence fractions and chi2_seq over all rows); is_min/is_max are the
   applied weights at every level (verl reports the unclamped ratios at sequence level);
   k3_kl clamps l to [-20, 20]; is_ess has no 1e-8 in its denominator. */
VPPODEF vppo_status vppo_rollout_correction(const vppo_rc_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_rollout, float *weight, uint8_t *keep, vppo_rc_out *out);

/* ================================================== the pipeline (§8) =========== */

typedef struct vppo_config {
    vppo_estimator estimator;        /* K3 */
    int use_tas; vppo_tas_config tas;
    int use_tgf; double topk_ratio;  /* 1, 0.4 */
    vppo_loss_config loss;
} vppo_config;
VPPODEF vppo_config vppo_config_default(void);  /* the released 7B recipe, see DEFAULTS */

typedef struct vppo_prepared {       /* caller-owned buffers, all required */
    float *dep;        /* [N] token dependency */
    float *traj_dep;   /* [B] mean dependency per response */
    int64_t *count;    /* [B] valid tokens per response */
    float *scale;      /* [B] TAS scale */
    float *adv;        /* [N] shaped per-token advantage */
    uint8_t *select;   /* [N] TGF selection */
    vppo_tas_stats stats; vppo_topk_info topk;   /* filled */
} vppo_prepared;

/* Everything before the loss: dep (a copy of dep_in if given, else §2.1 with
   cfg->estimator from logp_old and logp_aug), traj_dep and count (§5), stats from this
   batch unless `global` is given (e.g. merged over ranks), scale (§5; 1 when use_tas is
   0), adv_t = scale_b * adv_seq_b at valid positions, select by TGF on dep (every valid
   position when use_tgf is 0; topk is filled either way). When dep_in is NULL and
   use_tas = use_tgf = 0, logp_old and logp_aug may be NULL and dep is 0. Only the
   config fields in use are validated. dep_in must be finite at valid positions (clamp
   an infinite KL from vppo_dependency_logits first). adv_seq [B] must be finite for
   non-empty sequences and small enough that the largest possible TAS scale times it is
   a finite float (the scale is at most beta_max for LINEAR, beta_min + (1 - beta_min) *
   B for MEAN_PRESERVING), else VPPO_ERR_NONFINITE. */
VPPODEF vppo_status vppo_prepare(const vppo_config *cfg, const vppo_seqs *s,
    const float *logp_old, const float *logp_aug, const float *dep_in,
    const float *adv_seq, const vppo_tas_stats *global, vppo_prepared *p);

/* One VPPO step: vppo_prepare(cfg, s, logp_old, logp_aug, NULL, adv_seq, NULL, p), then
   vppo_policy_loss(&cfg->loss, s, logp, logp_old, logp_ref, p->adv, p->select, NULL,
   dlogp, out). All inputs are validated before anything is written. With
   use_tas = use_tgf = 0 this is exactly DAPO/GRPO. */
VPPODEF vppo_status vppo_step(const vppo_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_old, const float *logp_aug, const float *logp_ref,
    const float *adv_seq, vppo_prepared *p, float *dlogp, vppo_loss_out *out);

/* ============================================ fused linear head (§9) ============= */

/* The logits kernels of §2 applied to logits = hidden · weightᵀ / temperature without ever
   holding the n x vocab matrix: the vocabulary is walked in chunks (a chunk of weight rows
   times a chunk of hidden rows at a time) while each row keeps an online-softmax state.
   hidden is [n, d] and weight [vocab, d], both row-major f32 and finite. work must hold
   vppo_linear_workspace(n, d, vocab) bytes (any alignment); VPPO_ERR_WORKSPACE otherwise.
   The GEMMs are cblas_sgemm when built with VPPO_USE_CBLAS (link a CBLAS, e.g. OpenBLAS),
   else the library's own (packed, cache-blocked, a microkernel per ISA; each entry
   summed in one order whatever the tiling and thread count, see DETERMINISM). The
   workspace holds two logits tiles of up to 256 rows, the GEMM's packed blocks (at most
   1.2 MiB) and a small state per row. Results equal materialising the logits and calling
   vppo_logprobs / vppo_dependency_logits / vppo_logprobs_backward, within §12 (the
   logits themselves are f32 GEMM results either way). temperature >= 1/FLT_MAX (about
   2.9e-39; the block kernels take 1/T as a float), else VPPO_ERR_PARAM. A dhidden beyond
   the float range (gradients times weights near FLT_MAX) is VPPO_ERR_NONFINITE. */
VPPODEF size_t vppo_linear_workspace(int64_t n, int64_t d, int64_t vocab);
VPPODEF vppo_status vppo_linear_logprobs(const float *hidden /* [n,d] */, const float *weight /* [V,d] */,
    int64_t n, int64_t d, int64_t vocab, float temperature, const int32_t *ids /* [n] or NULL */,
    float *logp /* [n] or NULL, needs ids */, float *lse /* [n] or NULL */, float *entropy /* [n] or NULL */,
    void *work, size_t work_bytes);
/* dep[r] = divergence between the rows of hidden and hidden_aug through the same head. */
VPPODEF vppo_status vppo_linear_dependency(const float *hidden, const float *hidden_aug,
    const float *weight, int64_t n, int64_t d, int64_t vocab, float temperature,
    vppo_divergence div, float *dep /* [n] */, void *work, size_t work_bytes);
/* dhidden [n, d] is written (= dlogits · weight); dweight [V, d], if not NULL, is
   accumulated (+= dlogitsᵀ · hidden), so that micro-batches can add into it. lse and
   entropy may be NULL (recomputed by an extra pass). ids is needed with dlogp. */
VPPODEF vppo_status vppo_linear_logprobs_backward(const float *hidden, const float *weight,
    int64_t n, int64_t d, int64_t vocab, float temperature, const int32_t *ids,
    const float *lse, const float *entropy, const float *dlogp, const float *dentropy,
    float *dhidden /* [n,d] written */, float *dweight /* [V,d] accumulated, or NULL */,
    void *work, size_t work_bytes);

/* ============================================ ISA selection (§10) ================ */

typedef enum vppo_isa { VPPO_ISA_SCALAR = 0, VPPO_ISA_SSE2, VPPO_ISA_AVX2,
                        VPPO_ISA_AVX512, VPPO_ISA_NEON } vppo_isa;
/* The path the kernels use now. */
VPPODEF vppo_isa vppo_isa_active(void);
/* Force a path: VPPO_ERR_UNSUPPORTED if this build or this CPU lacks it, VPPO_ERR_PARAM
   for a value outside the enum. Not thread-safe: call it before starting threads. */
VPPODEF vppo_status vppo_isa_select(vppo_isa isa);
/* "scalar", "sse2", "avx2", "avx512", "neon"; "unknown" otherwise. */
VPPODEF const char *vppo_isa_name(vppo_isa isa);

#ifdef __cplusplus
}
#endif
#endif /* VPPO_H_INCLUDED */

/* ======================================================================= */
/* ============================ IMPLEMENTATION =========================== */
/* ======================================================================= */

#if defined(VPPO_IMPLEMENTATION) && !defined(VPPO_IMPLEMENTATION_INCLUDED)
#define VPPO_IMPLEMENTATION_INCLUDED

/* File map of the implementation, in the order of the declarations above (data flow);
   search for the quoted heading.

    1. "private helpers"        limits (VPPO__MAX_INDEX), sequence and value checks
    2. "status"                 vppo_status_string, vppo_offsets_uniform
    3. "image perturbation"     §3: hash, uniform, the four perturbations, patch rows
    4. "token perception"       §2
       4a.                      the sampled estimators (vppo_dependency_sampled)
       4b. "logits rows"        float formats, the scalar reference: u in double, the
                                online-softmax accumulator vppo__acc, lse/entropy, KL, JS
       4c. "vector path: ..."   blocks, the leaf-kernel contract vppo__kernels and its
                                argument structs (vppo__kl_args, _js_args, _bwd_args)
       4d. "row drivers ..."    a row through the kernels: vppo__acc_push, the pair walk
                                (KL, then JS), the backward's arguments
       4e. "rows, threads ..."  OpenMP over rows; vppo_dependency_logits, vppo_logprobs,
                                vppo_logprobs_backward
    5. "group advantages"       §4
    6. "Trajectory-level Advantage Shaping (TAS)"   §5
    7. "Token-level Gradient Filtering (TGF)"       §6
    8. "the policy objective"   §7
    9. "the pipeline"           §8: vppo_prepare, vppo_step
   10. "fused linear head"      §9: tiles, the GEMM driver (vppo__gemm: packing, cache
                                blocks, fixed sum order; vppo__gemm_nt, vppo__gemm_acc),
                                the three vppo_linear_* functions
   11. "kernels and ISA dispatch"  §10: everything that depends on the instruction set:
       a. the vector exp/log recipe and constants
       b. "the mapping layer"   one row per vector operation, one column per ISA
       c. "the leaf kernels"    VPPO__KERNELS: each kernel once, instantiated for SSE2,
                                AVX2, AVX-512 (x86, run-time) and NEON (compile-time);
                                VPPO__GEMM_KERNELS: the linear head's GEMM microkernel
                                and its table (vppo__gemm_kernels), the same four ISAs;
                                VPPO__SELECT_KERNELS: the top-k keys, mask and NaN
                                kernels (vppo__select_kernels, §6), the same four ISAs
       b2/c2. the O(N) kernels  a double mapping layer (columns: plain C, SSE2, AVX2,
                                AVX-512F, NEON) and VPPO__ON_KERNELS (dexp, K3, the
                                estimators, sums, loss, checks; vppo__on_kernels),
                                instantiated for the plain C path and the four ISAs
       d. "portable C kernels"  the same contract in C (the linear head's scalar path),
                                the GEMM microkernel in C
       e. "detection, ..."      CPUID/XGETBV, vppo__kernels_for, vppo_isa_active/
                                select/name
*/

#include <float.h>
#include <math.h>
#include <string.h>

/* Vector paths: x86 with gcc/clang (per-function target attributes, chosen at run time)
   and aarch64 NEON (compile time). Other compilers and targets get the scalar path. */
#if !defined(VPPO_NO_SIMD) && (defined(__GNUC__) || defined(__clang__)) && \
    (defined(__x86_64__) || defined(__i386__))
#define VPPO__X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif
#if !defined(VPPO_NO_SIMD) && defined(__aarch64__) && defined(__ARM_NEON)
#define VPPO__NEON 1
#include <arm_neon.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ private helpers */

#define VPPO__INF HUGE_VAL
/* The largest element count or flat position accepted anywhere: keeps every byte
   offset (up to 8 bytes per element) inside ptrdiff_t, on 32-bit targets too. */
#define VPPO__MAX_INDEX ((int64_t)(PTRDIFF_MAX / 8))
/* Logits rows are processed in chunks of this many entries (a stack buffer). */
#define VPPO__CHUNK 256

/* VPPO_HD marks the functions that also run on the GPU: vppo_cuda.cu compiles this file
   into its unit, so that its kernels and the CPU share one copy of these rules. */
#ifdef __CUDACC__
#define VPPO_HD __host__ __device__
#else
#define VPPO_HD
#endif
/* Marks the VPPO_HD helpers that only the CUDA unit calls (the CPU runs VPPO__ON_KERNELS):
   no unused-function warning in the CPU-only builds. */
#if defined(__GNUC__) || defined(__clang__)
#define VPPO__DEVICE_ONLY __attribute__((unused))
#else
#define VPPO__DEVICE_ONLY
#endif

static VPPO_HD int vppo__finite(double x) { return x - x == 0.0; }   /* false for NaN and +-inf */
/* Whether an enum argument lies in [lo, hi]. A function rather than `(int)e < lo` in place:
   where enums are short and unsigned (arm-none-eabi), that comparison is always false for
   lo = 0 and -Wtype-limits says so; through a parameter the check is the same everywhere. */
static int vppo__enum_in(int v, int lo, int hi) { return v >= lo && v <= hi; }
static VPPO_HD double vppo__clamp(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }
static VPPO_HD double vppo__max(double a, double b) { return a > b ? a : b; }
static int64_t vppo__min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Is flat position t a valid (response) position? */
static int vppo__valid(const vppo_seqs *s, int64_t t) { return !s->mask || s->mask[t] != 0; }

/* The checks of s; with read_offsets = 0 only those that do not read the offsets (the
   CUDA unit's host side, where the kernels check the offsets). */
static vppo_status vppo__check_seqs_in(const vppo_seqs *s, int read_offsets)
{
    int64_t b;
    if (!s || !s->offsets) return VPPO_ERR_NULL;
    if (s->n_seqs < 0 || s->n_seqs >= VPPO__MAX_INDEX) return VPPO_ERR_SIZE;
    if (!read_offsets) return VPPO_OK;
    if (s->offsets[0] < 0) return VPPO_ERR_SIZE;
    for (b = 0; b < s->n_seqs; ++b)
        if (s->offsets[b + 1] < s->offsets[b]) return VPPO_ERR_SIZE;
    if (s->offsets[s->n_seqs] > VPPO__MAX_INDEX) return VPPO_ERR_SIZE;
    return VPPO_OK;
}

static vppo_status vppo__check_seqs(const vppo_seqs *s) { return vppo__check_seqs_in(s, 1); }

/* The number of nonzero bytes of m[0..n): eight at a time in a 64-bit word (each byte
   folded to its lowest bit, the bits added by one multiply), the rest one by one. */
static int64_t vppo__count_nonzero(const uint8_t *m, int64_t n)
{
    const uint64_t ones = 0x0101010101010101u;
    int64_t i = 0, k = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, m + i, 8);
        w |= w >> 4;
        w |= w >> 2;
        w |= w >> 1;
        k += (int64_t)(((w & ones) * ones) >> 56);
    }
    for (; i < n; ++i) k += m[i] != 0;
    return k;
}

/* n_b: the number of valid positions of sequence b. */
static int64_t vppo__count_valid(const vppo_seqs *s, int64_t b)
{
    if (!s->mask) return s->offsets[b + 1] - s->offsets[b];
    return vppo__count_nonzero(s->mask + s->offsets[b], s->offsets[b + 1] - s->offsets[b]);
}

/* Whether sequence b has a valid position (it stops at the first one). */
static int vppo__any_valid(const vppo_seqs *s, int64_t b)
{
    int64_t t;
    if (!s->mask) return s->offsets[b + 1] > s->offsets[b];
    for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
        if (s->mask[t]) return 1;
    return 0;
}

/* Below this many tokens (or logits), threads cost more than they bring. */
#define VPPO__OMP_MIN_WORK 65536

/* --- the O(N) kernels' contract (instances in "kernels and ISA dispatch", c2) ----- */
/* Tokens go in chunks of VPPO__ON_CH; the sums of a call keep VPPO__ON_CH partial sums
   (token i of a range into slot i mod VPPO__ON_CH) folded in one fixed order, whatever the
   vector width, so every ISA and the plain C path give the same bits. */
#define VPPO__ON_CH 16
#define VPPO__ON_NCHECK 6
#define VPPO__ON_SUM (-1)          /* the op of vppo__on_kernels.map that only sums */

/* The per-token checks of one call, on up to VPPO__ON_NCHECK arrays (NULL: unused): x[j]
   must be finite, or -inf where ninf_ok[j]; pair: x[0] and x[1] are not both -inf;
   prob_drop: exp(x[0]) - exp(x[1]) is a finite float. A failure reports group[j] (the
   pair and prob_drop ones group[0]). */
typedef struct vppo__on_check {
    const float *x[VPPO__ON_NCHECK];
    int ninf_ok[VPPO__ON_NCHECK], group[VPPO__ON_NCHECK];
    int pair, prob_drop;
    const uint8_t *mask;
} vppo__on_check;

/* The loss of the tokens of one sequence (§7): the arrays, then the call's constants. */
typedef struct vppo__on_loss {
    const float *logp, *logp_old, *logp_ref, *adv, *weight;
    const uint8_t *mask, *select;
    float *dlogp;                   /* NULL: sums only */
    double log_lo, log_hi, r_lo, r_hi, dual, kl_coef, ent_coef;
    double coef;                    /* the sequence's coefficient in the gradient */
    double rho;                     /* the sequence's log-ratio when seq_rho */
    double dpg;                     /* every token's dpg in the gradient when fixed_dpg (GSPO) */
    int pg_kind, kl_kind, seq_rho, far, fixed_dpg;
    int fast;                       /* the common case may run on float lanes (vppo__policy_loss_run) */
} vppo__on_loss;

/* The sums of vppo__on_loss, in this order. */
enum { VPPO__ON_PG, VPPO__ON_KL, VPPO__ON_ENT, VPPO__ON_DPG, VPPO__ON_PPO_KL, VPPO__ON_CLIP,
       VPPO__ON_CLIP_DUAL, VPPO__ON_SEL, VPPO__ON_NSUMS };

typedef struct vppo__on_kernels {
    /* op an estimator: out[t0..t1) = its dependency from logp (a) and logp_aug (b), 0 where
       masked, and the sum over valid positions of the stored floats returned; op =
       VPPO__ON_SUM (out NULL): the sum over valid positions of a (b NULL) or of a - b */
    double (*map)(const float *a, const float *b, const uint8_t *mask, int64_t t0, int64_t t1, int op,
                  float *out);
    /* the loss sums of [t0, t1) into sums[VPPO__ON_NSUMS], the gradient into L->dlogp;
       returns 1 when a gradient left the float range */
    int (*loss)(const vppo__on_loss *L, int64_t t0, int64_t t1, double *sums);
    /* the groups of the checks that failed in [t0, t1); 0 when none */
    int (*check)(const vppo__on_check *c, int64_t t0, int64_t t1);
    double (*exp)(double x);        /* the exp of these kernels, one value (tests, constants) */
    double (*exp20)(double x);      /* the loss's exp for |x| <= 20, one value (tests) */
} vppo__on_kernels;

/* The active ISA's O(N) kernels (the plain C ones for the scalar ISA). */
static const vppo__on_kernels *vppo__on_active(void);

/* The groups of c's checks (vppo__on_check) that fail at some valid position of s: each
   distinct array read once, its float lanes tested without branches (errors are rare, and
   a pass that stops at the first one would keep the common case from vectorising; see
   vppo__on_check_drive), OpenMP over blocks of tokens in large calls. */
static int vppo__on_check_run(const vppo_seqs *s, vppo__on_check *c)
{
    const vppo__on_kernels *k = vppo__on_active();
    const int64_t lo = s->offsets[0], hi = s->offsets[s->n_seqs];
    const int64_t nblk = (hi - lo + VPPO__OMP_MIN_WORK - 1) / VPPO__OMP_MIN_WORK;
    int64_t i;
    int bits = 0;
    c->mask = s->mask;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(|:bits) if (nblk > 1)
#endif
    for (i = 0; i < nblk; ++i)
        bits |= k->check(c, lo + i * VPPO__OMP_MIN_WORK, vppo__min64(hi, lo + (i + 1) * VPPO__OMP_MIN_WORK));
    return bits;
}

/* Slot j of c checks x (NULL: no check): finite, or -inf too when allow_neg_inf; a failure
   reports group. */
static void vppo__on_check_add(vppo__on_check *c, int j, const float *x, int allow_neg_inf, int group)
{
    c->x[j] = x;
    c->ninf_ok[j] = allow_neg_inf;
    c->group[j] = group;
}

/* VPPO_OK when x is finite at every valid position (-inf also allowed when asked). */
static vppo_status vppo__check_values(const vppo_seqs *s, const float *x, int allow_neg_inf)
{
    vppo__on_check c;
    memset(&c, 0, sizeof c);
    vppo__on_check_add(&c, 0, x, allow_neg_inf, 1);
    return vppo__on_check_run(s, &c) ? VPPO_ERR_NONFINITE : VPPO_OK;
}

static int vppo__bad_prob(float prob) { return !(prob >= 0.0f && prob <= 1.0f); }   /* NaN too */

/* ------------------------------------------------------------------- status */

VPPODEF const char *vppo_status_string(vppo_status s)
{
    switch (s) {
    case VPPO_OK:              return "ok";
    case VPPO_ERR_NULL:        return "a required pointer is NULL";
    case VPPO_ERR_SIZE:        return "inconsistent count, offset, stride or group size";
    case VPPO_ERR_PARAM:       return "parameter outside its domain";
    case VPPO_ERR_INDEX:       return "token id outside [0, vocab)";
    case VPPO_ERR_NONFINITE:   return "NaN, or an infinity where none is allowed";
    case VPPO_ERR_WORKSPACE:   return "work buffer too small";
    case VPPO_ERR_UNSUPPORTED: return "not supported by this build or CPU";
    case VPPO_ERR_CUDA:        return "a CUDA call failed";
    case VPPO_ERR_ALLOC:       return "out of memory";
    }
    return "unknown vppo_status";
}

VPPODEF vppo_status vppo_offsets_uniform(int64_t *offsets, int64_t n_seqs, int64_t len)
{
    int64_t b;
    if (!offsets) return VPPO_ERR_NULL;
    if (n_seqs < 0 || len < 0 || n_seqs >= VPPO__MAX_INDEX) return VPPO_ERR_SIZE;
    if (len > 0 && n_seqs > VPPO__MAX_INDEX / len) return VPPO_ERR_SIZE;
    for (b = 0; b <= n_seqs; ++b) offsets[b] = b * len;
    return VPPO_OK;
}

/* ===================================================== image perturbation == */

VPPODEF uint64_t vppo_hash64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

VPPODEF double vppo_uniform(uint64_t seed, uint64_t i)
{
    return (double)(vppo_hash64(seed ^ vppo_hash64(i)) >> 40) * (1.0 / 16777216.0);
}

static vppo_status vppo__check_image(const vppo_image *img)
{
    int64_t row_bytes;
    if (!img || !img->pixels) return VPPO_ERR_NULL;
    if (img->width < 0 || img->height < 0 || img->channels < 1) return VPPO_ERR_SIZE;
    row_bytes = (int64_t)img->width * img->channels;
    if (img->row_stride < row_bytes) return VPPO_ERR_SIZE;
    if (img->height > 0 && img->row_stride > (VPPO__MAX_INDEX - row_bytes) / img->height)
        return VPPO_ERR_SIZE;
    return VPPO_OK;
}

static uint8_t *vppo__pixel(const vppo_image *img, int64_t x, int64_t y)
{
    return img->pixels + y * img->row_stride + x * img->channels;
}

/* The channels a perturbation changes: all, but alpha of a 4-channel image. */
static int vppo__color_channels(const vppo_image *img) { return img->channels == 4 ? 3 : img->channels; }

VPPODEF vppo_status vppo_perturb_patch_blackening(vppo_image *img, int32_t patch, float prob, uint64_t seed)
{
    int64_t cols, rows, px, py, y;
    vppo_status st = vppo__check_image(img);
    if (st != VPPO_OK) return st;
    if (patch < 1 || vppo__bad_prob(prob)) return VPPO_ERR_PARAM;
    cols = ((int64_t)img->width + patch - 1) / patch;
    rows = ((int64_t)img->height + patch - 1) / patch;
    for (py = 0; py < rows; ++py) {
        int64_t y0 = py * patch, y1 = vppo__min64(y0 + patch, img->height);
        for (px = 0; px < cols; ++px) {
            int64_t x0 = px * patch, x1 = vppo__min64(x0 + patch, img->width);
            if (!(vppo_uniform(seed, (uint64_t)(py * cols + px)) < (double)prob)) continue;
            for (y = y0; y < y1; ++y)
                memset(vppo__pixel(img, x0, y), 0, (size_t)((x1 - x0) * img->channels));
        }
    }
    return VPPO_OK;
}

VPPODEF vppo_status vppo_perturb_gaussian_noise(vppo_image *img, float mean, float std, uint64_t seed)
{
    int64_t x, y;
    int c, n_color;
    vppo_status st = vppo__check_image(img);
    if (st != VPPO_OK) return st;
    if (!vppo__finite(mean) || !vppo__finite(std) || std < 0.0f) return VPPO_ERR_PARAM;
    n_color = vppo__color_channels(img);
    for (y = 0; y < img->height; ++y) {
        for (x = 0; x < img->width; ++x) {
            uint8_t *px = vppo__pixel(img, x, y);
            uint64_t p = (uint64_t)(y * img->width + x);
            for (c = 0; c < n_color; ++c) {
                /* Box-Muller; one operation per statement so no compiler fuses them */
                uint64_t j = p * (uint64_t)img->channels + (uint64_t)c;
                double u1 = vppo_uniform(seed, 2 * j), u2 = vppo_uniform(seed, 2 * j + 1);
                double radius = sqrt(-2.0 * log(1.0 - u1));
                double angle = 6.283185307179586 * u2;
                double normal = radius * cos(angle);
                double shifted = (double)px[c] + (double)mean;
                double noise = (double)std * normal;
                double value = vppo__clamp(shifted + noise, 0.0, 255.0);
                px[c] = (uint8_t)value;   /* truncation */
            }
        }
    }
    return VPPO_OK;
}

VPPODEF vppo_status vppo_perturb_fill(vppo_image *img, uint8_t value)
{
    int64_t y;
    vppo_status st = vppo__check_image(img);
    if (st != VPPO_OK) return st;
    for (y = 0; y < img->height; ++y)
        memset(vppo__pixel(img, 0, y), value, (size_t)img->width * (size_t)img->channels);
    return VPPO_OK;
}

/* Blur workspace: 64 bytes of alignment slack, the folded tap weights (doubles, one per
   distance 0..max(width, height)), and the horizontally blurred image as floats. */
VPPODEF size_t vppo_blur_workspace(int32_t width, int32_t height, int32_t channels)
{
    size_t taps, pixels;
    if (width <= 0 || height <= 0 || channels < 1) return 0;   /* nothing to blur */
    /* the size in double first: with a 32-bit size_t, width * height alone can wrap */
    if (64.0 + 8.0 * ((double)(width > height ? width : height) + 1.0) +
        4.0 * (double)width * (double)height * (double)channels > (double)PTRDIFF_MAX)
        return (size_t)-1;   /* cannot be allocated */
    taps = (size_t)(width > height ? width : height) + 1;
    pixels = (size_t)width * (size_t)height;
    return 64 + taps * sizeof(double) + pixels * (size_t)channels * sizeof(float);
}

/* Normalised Gaussian weights w[0..K] for distances 0..K along a line of length len, where
   K = min(ceil(3 sigma), len - 1) and w[K] also carries every tap beyond it: all those
   taps read the replicated edge pixel, whatever the output position. */
static int64_t vppo__blur_weights(double sigma, int64_t len, double *w)
{
    int64_t R = (int64_t)ceil(3.0 * sigma), K = vppo__min64(R, len - 1), k;
    double total = 0.0;
    if (K == 0) { w[0] = 1.0; return 0; }   /* a line of one pixel keeps its value */
    for (k = 0; k <= K; ++k) w[k] = 0.0;
    for (k = 0; k <= R; ++k) {
        double g = exp(-(double)k * (double)k / (2.0 * sigma * sigma));
        w[k < K ? k : K] += g;
        total += k == 0 ? g : 2.0 * g;
    }
    for (k = 0; k <= K; ++k) w[k] /= total;
    return K;
}

VPPODEF vppo_status vppo_perturb_gaussian_blur(vppo_image *img, float radius, void *work, size_t work_bytes)
{
    int64_t W, H, C, x, y, k, K;
    int c, n_color;
    double *w;
    float *mid;
    size_t need;
    vppo_status st = vppo__check_image(img);
    if (st != VPPO_OK) return st;
    if (!(radius >= 0.0f && radius <= 1e5f)) return VPPO_ERR_PARAM;
    need = vppo_blur_workspace(img->width, img->height, img->channels);
    if (!work) return VPPO_ERR_NULL;
    if (work_bytes < need) return VPPO_ERR_WORKSPACE;
    W = img->width; H = img->height; C = img->channels;
    if (radius == 0.0f || W == 0 || H == 0) return VPPO_OK;
    w = (double *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    mid = (float *)(w + (W > H ? W : H) + 1);
    n_color = vppo__color_channels(img);

    /* horizontal pass: pixels -> mid (unrounded) */
    K = vppo__blur_weights(radius, W, w);
    for (y = 0; y < H; ++y)
        for (x = 0; x < W; ++x)
            for (c = 0; c < n_color; ++c) {
                double acc = w[0] * vppo__pixel(img, x, y)[c];
                for (k = 1; k <= K; ++k) {
                    int64_t xl = x - k < 0 ? 0 : x - k, xr = x + k >= W ? W - 1 : x + k;
                    acc += w[k] * ((double)vppo__pixel(img, xl, y)[c] + (double)vppo__pixel(img, xr, y)[c]);
                }
                mid[(y * W + x) * C + c] = (float)acc;
            }
    /* vertical pass: mid -> pixels, rounded to nearest */
    K = vppo__blur_weights(radius, H, w);
    for (y = 0; y < H; ++y)
        for (x = 0; x < W; ++x)
            for (c = 0; c < n_color; ++c) {
                double acc = w[0] * mid[(y * W + x) * C + c];
                for (k = 1; k <= K; ++k) {
                    int64_t yu = y - k < 0 ? 0 : y - k, yd = y + k >= H ? H - 1 : y + k;
                    acc += w[k] * ((double)mid[(yu * W + x) * C + c] + (double)mid[(yd * W + x) * C + c]);
                }
                vppo__pixel(img, x, y)[c] = (uint8_t)vppo__clamp(floor(acc + 0.5), 0.0, 255.0);
            }
    return VPPO_OK;
}

/* The checks of vppo_perturb_patch_rows that read no array (shared with vppo_cuda.cu). */
static vppo_status vppo__check_patch_rows_args(const float *rows, int64_t n_rows, int64_t row_len,
    int64_t row_stride, float prob)
{
    if (!rows) return VPPO_ERR_NULL;
    if (n_rows < 0 || row_len < 0 || row_stride < row_len) return VPPO_ERR_SIZE;
    if (n_rows > 0 && row_stride > (VPPO__MAX_INDEX - row_len) / n_rows) return VPPO_ERR_SIZE;
    if (vppo__bad_prob(prob)) return VPPO_ERR_PARAM;
    return VPPO_OK;
}

VPPODEF vppo_status vppo_perturb_patch_rows(float *rows, int64_t n_rows, int64_t row_len,
    int64_t row_stride, float prob, const float *fill, uint64_t seed)
{
    int64_t i, j;
    const vppo_status st = vppo__check_patch_rows_args(rows, n_rows, row_len, row_stride, prob);
    if (st != VPPO_OK) return st;
    if (fill)
        for (j = 0; j < row_len; ++j)
            if (!vppo__finite(fill[j])) return VPPO_ERR_NONFINITE;
    for (i = 0; i < n_rows; ++i) {
        float *row = rows + i * row_stride;
        if (!(vppo_uniform(seed, (uint64_t)i) < (double)prob)) continue;
        if (fill) memcpy(row, fill, (size_t)row_len * sizeof(float));
        else for (j = 0; j < row_len; ++j) row[j] = 0.0f;
    }
    return VPPO_OK;
}

/* ========================================================= token perception == */

/* The data checks of the sampled estimators (slots 0 and 1 of c, group 1): log-probabilities
   may be -inf, never NaN or +inf; d must not be NaN (both -inf); PROB_DROP's exp(logp) -
   exp(logp_aug) must be a finite float (it is not for absurd log-probabilities above ~88).
   The other estimators are bounded by their clamps. */
static void vppo__sampled_checks(vppo__on_check *c, const float *logp, const float *logp_aug, vppo_estimator est)
{
    vppo__on_check_add(c, 0, logp, 1, 1);
    vppo__on_check_add(c, 1, logp_aug, 1, 1);
    c->pair = 1;
    c->prob_drop = est == VPPO_EST_PROB_DROP;
}

static vppo_status vppo__check_sampled(const vppo_seqs *s, const float *logp, const float *logp_aug,
                                       vppo_estimator est)
{
    vppo__on_check c;
    if (!vppo__enum_in((int)est, VPPO_EST_K3, VPPO_EST_PROB_DROP)) return VPPO_ERR_PARAM;
    memset(&c, 0, sizeof c);
    vppo__sampled_checks(&c, logp, logp_aug, est);
    return vppo__on_check_run(s, &c) ? VPPO_ERR_NONFINITE : VPPO_OK;
}

/* The dependency of one valid token (docs/spec.md §2.1), in libm: the device's (vppo_cuda.cu)
   and the suite's reference; the CPU runs the kernels' est (VPPO__ON_KERNELS). */
VPPO__DEVICE_ONLY static VPPO_HD double vppo__sampled_dep(vppo_estimator est, float logp, float logp_aug)
{
    const double d = vppo__clamp((double)logp_aug - (double)logp, -20.0, 20.0);
    switch (est) {
    case VPPO_EST_K3:        return vppo__clamp(expm1(d) - d, 0.0, 10.0);
    case VPPO_EST_K1:        return -d;
    case VPPO_EST_K2:        return 0.5 * d * d;
    case VPPO_EST_ABS:       return fabs(d);
    case VPPO_EST_PROB_DROP: return exp((double)logp) - exp((double)logp_aug);
    }
    return 0.0;
}

/* mean[b] = sum / n (0 when n = 0; n: the valid positions of sequence b), and count[b] = n
   when count is not NULL. */
static void vppo__mean_store(int64_t b, double sum, int64_t n, float *mean, int64_t *count)
{
    mean[b] = n > 0 ? (float)(sum / (double)n) : 0.0f;
    if (count) count[b] = n;
}

/* The estimators on inputs already checked, one sequence at a time (OpenMP over
   sequences). vppo_prepare runs the same kernel call per sequence in vppo__prepare_seq. */
static void vppo__dependency_sampled_run(const vppo_seqs *s, const float *logp,
    const float *logp_aug, vppo_estimator est, float *dep)
{
    const vppo__on_kernels *k = vppo__on_active();
    int64_t b;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (s->n_seqs > 1 && s->offsets[s->n_seqs] - s->offsets[0] >= VPPO__OMP_MIN_WORK)
#endif
    for (b = 0; b < s->n_seqs; ++b)
        (void)k->map(logp, logp_aug, s->mask, s->offsets[b], s->offsets[b + 1], (int)est, dep);
}

VPPODEF vppo_status vppo_dependency_sampled(const vppo_seqs *s, const float *logp,
    const float *logp_aug, vppo_estimator est, float *dep)
{
    vppo_status st = vppo__check_seqs(s);
    if (st != VPPO_OK) return st;
    if (!logp || !logp_aug || !dep) return VPPO_ERR_NULL;
    if ((st = vppo__check_sampled(s, logp, logp_aug, est)) != VPPO_OK) return st;
    vppo__dependency_sampled_run(s, logp, logp_aug, est, dep);
    return VPPO_OK;
}

/* --- logits rows ---------------------------------------------------------- */

static float vppo__bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float vppo__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    float f;
    if (exponent == 0) {                    /* zero or subnormal: mant * 2^-24, exact */
        f = (float)mant * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    if (exponent == 31) bits = sign | 0x7f800000u | (mant << 13);      /* inf, NaN */
    else bits = sign | ((exponent + 112u) << 23) | (mant << 13);
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint16_t vppo__f32_to_bf16(float f)    /* round to nearest even; no NaN arrives here */
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static size_t vppo__dtype_size(vppo_dtype dt) { return dt == VPPO_F32 ? 4 : 2; }

static vppo_status vppo__check_logits(const vppo_logits *x)
{
    if (!x || !x->data) return VPPO_ERR_NULL;
    if (!vppo__enum_in((int)x->dtype, VPPO_F32, VPPO_F16)) return VPPO_ERR_PARAM;
    if (x->n_rows < 0 || x->vocab < 1 || x->row_stride < x->vocab) return VPPO_ERR_SIZE;
    if (x->n_rows > 0 && x->row_stride > (VPPO__MAX_INDEX - x->vocab) / x->n_rows) return VPPO_ERR_SIZE;
    if (!(x->temperature > 0.0f) || !vppo__finite(x->temperature)) return VPPO_ERR_PARAM;
    return VPPO_OK;
}

/* u[i] = z[r][j0 + i] / temperature for i < n, in double. */
static void vppo__load_u(const vppo_logits *x, int64_t r, int64_t j0, int64_t n, double *u)
{
    const double t = (double)x->temperature;
    int64_t i, base = r * x->row_stride + j0;
    if (x->dtype == VPPO_F32) {
        const float *z = (const float *)x->data + base;
        for (i = 0; i < n; ++i) u[i] = (double)z[i] / t;
    } else if (x->dtype == VPPO_BF16) {
        const uint16_t *z = (const uint16_t *)x->data + base;
        for (i = 0; i < n; ++i) u[i] = (double)vppo__bf16_to_f32(z[i]) / t;
    } else {
        const uint16_t *z = (const uint16_t *)x->data + base;
        for (i = 0; i < n; ++i) u[i] = (double)vppo__f16_to_f32(z[i]) / t;
    }
}

/* The largest entry of u[0..n), or VPPO_ERR_NONFINITE for a NaN or +inf among them. */
static vppo_status vppo__chunk_max(const double *u, int64_t n, double *max)
{
    int64_t i;
    double m = -VPPO__INF;
    for (i = 0; i < n; ++i) {
        if (!(u[i] < VPPO__INF)) return VPPO_ERR_NONFINITE;
        if (u[i] > m) m = u[i];
    }
    *max = m;
    return VPPO_OK;
}

/* Online softmax state of one row, on both paths: m is the reference max (of u on the
   scalar path, of the raw logits z on the vector path), sum = sum exp(d) and
   cen = sum exp(d) d over the entries seen so far, with d = (x - m) invt (invt = 1 on the
   scalar path, 1/T on the vector one). */
typedef struct vppo__acc { double m, sum, cen; } vppo__acc;

static void vppo__acc_init(vppo__acc *a) { a->m = -VPPO__INF; a->sum = 0.0; a->cen = 0.0; }

/* Raise the reference to new_max (if above a->m), rescaling what was summed. */
static void vppo__acc_rebase(vppo__acc *a, double new_max, double invt)
{
    if (!(new_max > a->m)) return;
    if (a->sum > 0.0) {
        const double delta = (new_max - a->m) * invt, scale = exp(-delta);
        a->cen = scale * (a->cen - delta * a->sum);
        a->sum *= scale;
    }
    a->m = new_max;
}

/* One entry u of the scalar path (invt = 1); -inf has probability 0 and adds nothing. */
static void vppo__acc_add(vppo__acc *a, double u)
{
    double d, e;
    if (u == -VPPO__INF) return;
    d = u - a->m;
    e = exp(d);
    a->sum += e;
    a->cen += e * d;
}

/* *zmax = m, *logsum = log sum and the entropy; VPPO_ERR_PARAM for a row of only -inf. */
static vppo_status vppo__acc_end(const vppo__acc *a, double *zmax, double *logsum, double *entropy)
{
    if (!(a->sum > 0.0)) return VPPO_ERR_PARAM;
    *zmax = a->m;
    *logsum = log(a->sum);
    /* H = lse - E[u] = log(sum) - E[u - max] */
    if (entropy) *entropy = vppo__max(0.0, *logsum - a->cen / a->sum);
    return VPPO_OK;
}

/* lse = *max + *logsum and entropy of row r in one pass; VPPO_ERR_PARAM for a row of only
   -inf. The two parts of lse are kept apart: against huge logits (|u| above ~1e11) their
   sum in double loses log(sum), and u - lse must be formed as (u - max) - logsum. */
static vppo_status vppo__row_lse_entropy(const vppo_logits *x, int64_t r, double *max, double *logsum,
                                         double *entropy)
{
    double u[VPPO__CHUNK], cmax;
    vppo__acc a;
    int64_t j0, i, n;
    vppo_status st;
    vppo__acc_init(&a);
    for (j0 = 0; j0 < x->vocab; j0 += n) {
        n = vppo__min64(VPPO__CHUNK, x->vocab - j0);
        vppo__load_u(x, r, j0, n, u);
        if ((st = vppo__chunk_max(u, n, &cmax)) != VPPO_OK) return st;
        vppo__acc_rebase(&a, cmax, 1.0);
        for (i = 0; i < n; ++i) vppo__acc_add(&a, u[i]);
    }
    return vppo__acc_end(&a, max, logsum, entropy);
}

/* KL(P || Q) of row rp of P and row rq of Q in one pass over both:
   KL = sum p_i (u_i - v_i) - lse_u + lse_v, with the expectation kept relative to the
   running max of u, so that identical rows give exactly 0. */
static vppo_status vppo__row_kl(const vppo_logits *P, int64_t rp, const vppo_logits *Q, int64_t rq, double *kl)
{
    double u[VPPO__CHUNK], v[VPPO__CHUNK], umax, vmax, diff = 0.0;   /* diff = sum exp(u-max)(u-v) */
    vppo__acc a, b;
    int64_t j0, i, n;
    int infinite = 0;
    vppo_status st;
    vppo__acc_init(&a);
    vppo__acc_init(&b);
    for (j0 = 0; j0 < P->vocab; j0 += n) {
        n = vppo__min64(VPPO__CHUNK, P->vocab - j0);
        vppo__load_u(P, rp, j0, n, u);
        vppo__load_u(Q, rq, j0, n, v);
        if ((st = vppo__chunk_max(u, n, &umax)) != VPPO_OK) return st;
        if ((st = vppo__chunk_max(v, n, &vmax)) != VPPO_OK) return st;
        if (umax > a.m && a.sum > 0.0) diff *= exp(a.m - umax);
        vppo__acc_rebase(&a, umax, 1.0);
        vppo__acc_rebase(&b, vmax, 1.0);
        for (i = 0; i < n; ++i) {
            vppo__acc_add(&b, v[i]);
            if (u[i] == -VPPO__INF) continue;              /* p_i = 0 */
            vppo__acc_add(&a, u[i]);
            if (v[i] == -VPPO__INF) infinite = 1;          /* p_i > 0, q_i = 0 */
            else diff += exp(u[i] - a.m) * (u[i] - v[i]);
        }
    }
    if (a.sum == 0.0 || b.sum == 0.0) return VPPO_ERR_PARAM;
    if (infinite) { *kl = VPPO__INF; return VPPO_OK; }
    *kl = vppo__max(0.0, diff / a.sum - (a.m - b.m) - log(a.sum) + log(b.sum));
    return VPPO_OK;
}

/* JS(P, Q) = 1/2 sum p log(p/m) + 1/2 sum q log(q/m), m = (p+q)/2: the lse of both rows,
   then a second pass over the pair. */
static vppo_status vppo__row_js(const vppo_logits *P, int64_t rp, const vppo_logits *Q, int64_t rq, double *js)
{
    const double ln2 = 0.69314718055994530942;
    double u[VPPO__CHUNK], v[VPPO__CHUNK], max_p, max_q, logsum_p, logsum_q, sum = 0.0;
    int64_t j0, i, n;
    vppo_status st;
    if ((st = vppo__row_lse_entropy(P, rp, &max_p, &logsum_p, NULL)) != VPPO_OK) return st;
    if ((st = vppo__row_lse_entropy(Q, rq, &max_q, &logsum_q, NULL)) != VPPO_OK) return st;
    for (j0 = 0; j0 < P->vocab; j0 += n) {
        n = vppo__min64(VPPO__CHUNK, P->vocab - j0);
        vppo__load_u(P, rp, j0, n, u);
        vppo__load_u(Q, rq, j0, n, v);
        for (i = 0; i < n; ++i) {
            double lp = (u[i] - max_p) - logsum_p, lq = (v[i] - max_q) - logsum_q, hi, lo, c;
            if (u[i] == -VPPO__INF && v[i] == -VPPO__INF) continue;
            hi = vppo__max(lp, lq);
            lo = lp < lq ? lp : lq;
            /* log m = hi + log1p(exp(lo - hi)) - ln2, so lp - log m = (lp - hi) + c:
               exactly 0 for identical rows */
            c = ln2 - log1p(exp(lo - hi));
            if (u[i] != -VPPO__INF) sum += exp(lp) * ((lp - hi) + c);
            if (v[i] != -VPPO__INF) sum += exp(lq) * ((lq - hi) + c);
        }
    }
    *js = vppo__max(0.0, 0.5 * sum);
    return VPPO_OK;
}

/* --- vector path: one pass per row and the leaf-kernel contract -------------- */
/*
   How the vector paths work. The reductions of a row (sum of exp and centred sum for
   lse and entropy; both rows' sums and the KL term) and the backward read the row where
   it lies, once, in groups of 4 W entries (2 W per row for KL; W for the backward)
   converted to float in registers (f32, bf16 or f16), prefetching ahead; the last
   partial group is converted into a -inf-padded buffer.
   The reductions keep a reference m of each row (a float entry of the row) and
   d = (z - m) * (1/T); they stop at the first group that holds an entry above
   th = m + VPPO__RESCALE * T (or a NaN or +inf, whose test is the same comparison), and
   the row driver raises m to that group's max, rescales what was summed (in double) and
   calls again from that group: a lazy online softmax whose d never exceeds about
   VPPO__RESCALE, so no exp overflows, with about log(V) rescales on a random row and few
   on a sorted one. Leaf kernels accumulate in float over at most VPPO__SUM_TERMS terms
   per lane; the driver adds the partial sums in double. JS (a second pass with log and
   three exp per entry) and the fused linear head's backward use blocks: "scan"
   converts a block to float in a stack buffer and finds its max and whether it holds a
   NaN or +inf, then the leaf kernel runs on the buffer (in L1).

   Inside a kernel, 1/T is rounded to float; d is floored at VPPO__DFLOOR where it
   enters a difference (KL), so that -inf entries give exp(d) = 0 and e * d = 0, never
   NaN, and at VPPO__DLOW where it only enters exp and e * d (entropy, backward).
   Everything that meets the row's reference in an offset (lse, logp) is formed in
   double by the driver.
*/

#define VPPO__BLOCK 512
#define VPPO__PAD 16
#define VPPO__DFLOOR (-1e30f)
#define VPPO__DLOW (-87.0f)        /* below VPPO__EXP_FLUSH: exp gives exactly 0 there */
/* exp_core's floor where it gives exactly 0 itself: n = round(x log2 e) = -127 there, so
   2^n's exponent field is 0 (KL kernel: the flush of exp_in saved) */
#define VPPO__DZERO (-88.0f)
#define VPPO__RESCALE 1.0          /* d may exceed 0 by this much before a rescale */
#define VPPO__PREFETCH 512         /* f32 entries ahead that the one-pass kernels prefetch */
#define VPPO__SUM_TERMS 32         /* float terms per accumulator lane between double sums */
/* An out-of-place F32 gradient of at least this many bytes is written with streaming
   stores: it cannot stay in the caches, and they save reading each line before writing it
   (measured, 256 x 151,936, AVX-512: from f32 logits 48 ms against 54-59 ms; from bf16
   logits, side by side in one program after the prefetch of VPPO__PREFETCH_AT, 14.3-16.0
   ms against 22.0-22.5 ms). */
#define VPPO__STREAM_BYTES ((size_t)32 << 20)
enum { VPPO__OUT_F32, VPPO__OUT_BF16, VPPO__OUT_STREAM };   /* how a backward kernel stores */

/* The arguments of the pair and backward kernels. m: a reference of the raw logits,
   s: 1/T, t: the rescale threshold (see above), l: the log of the normaliser relative to
   m, so that log p = (z - m) s - l. */
typedef struct vppo__kl_args { float mu, su, tu, mv, sv, tv; } vppo__kl_args;
/* What the KL kernel adds of a stretch: su = sum eu, sv = sum ev, diff = sum eu (du - dv);
   infinite is set if some u > -inf meets v = -inf (KL is +inf). */
typedef struct vppo__kl_sums { double su, sv, diff; int infinite; } vppo__kl_sums;
typedef struct vppo__js_args { float mu, su, lu, mv, sv, lv; } vppo__js_args;
/* lse T = hi + lo (hi exact where it matters), s = 1/T, g = dlogp, h = dentropy, H = entropy;
   a = -(g + h H) s and b = -h s (finite floats: the kernels' form
   grad = p (a + b lp) of -(g p + h p (lp + H)) s) */
typedef struct vppo__bwd_args { float hi, lo, s, g, h, H, a, b; } vppo__bwd_args;

/* Leaf kernels of one ISA. For js and bwd, n is a multiple of VPPO__PAD. */
typedef struct vppo__kernels {
    /* entries per group of stats and kl (the rescale granularity) */
    int64_t group;
    /* dst[0..n) = float(src[0..n)), padded with -inf to a multiple of 16; *max = the
       largest entry (-inf if none); returns nonzero if an entry is NaN or +inf.
       dst = NULL: f32 input with n a multiple of 16, only scanned (no copy). */
    int (*scan)(const void *src, vppo_dtype dt, int64_t n, float *dst, float *max);
    /* Entries [i, n) of src (dtype dt; i a multiple of group), group by group until a
       group holds an entry z > th or a NaN: adds out[0] += sum e, out[1] += sum e d,
       d = max((z - m) s, DLOW), e = vexp(d) over the groups before it; returns its first
       entry, or n. */
    int64_t (*stats)(const void *src, vppo_dtype dt, int64_t i, int64_t n, float m, float th, float s,
                     double out[2]);
    /* The same for a pair of rows u, v (thresholds tu, tv): du = max((u - mu) su, DLOW),
       dv = max((v - mv) sv, DFLOOR), eu = vexp(du), ev = vexp(dv): the sums of
       vppo__kl_sums. */
    int64_t (*kl)(const void *u, vppo_dtype udt, const void *v, vppo_dtype vdt, int64_t i, int64_t n,
                  const vppo__kl_args *c, vppo__kl_sums *out);
    /* lp = du - lu, lq = dv - lv, lm = log((p + q)/2)
       = max(lp, lq) + log(1 + exp(-|lp - lq|)) - log 2:
       returns sum p (lp - lm) + q (lq - lm). */
    double (*js)(const float *u, const float *v, int64_t n, const vppo__js_args *c);
    /* The gradient of entries [0, n) of src (dtype dt) into dst (F32 or BF16, odt; dst may
       be src when both are F32): lp = max((z - hi - lo) s, DLOW), p = vexp(lp),
       grad = p (a + b lp) (the one-hot term is added by the driver). stream: dst will not
       be read soon (F32 stores may bypass the caches). Returns bit 0 if an entry is NaN or
       +inf (the output is then unspecified), bit 1 if one is above -inf. */
    int (*bwd)(const void *src, vppo_dtype dt, int64_t n, const vppo__bwd_args *c, void *dst, vppo_dtype odt,
               int stream);
} vppo__kernels;

/* src[i..n) as floats in buf, padded with -inf up to g entries (n - i <= g). */
static void vppo__tail_f32(const void *src, vppo_dtype dt, int64_t i, int64_t n, float *buf, int64_t g)
{
    int64_t k;
    for (k = 0; k < g; ++k)
        buf[k] = i + k >= n ? -HUGE_VALF
               : dt == VPPO_F32 ? ((const float *)src)[i + k]
               : dt == VPPO_BF16 ? vppo__bf16_to_f32(((const uint16_t *)src)[i + k])
               : vppo__f16_to_f32(((const uint16_t *)src)[i + k]);
}

/* The common tail of every scan: entries [i, n) one by one, then the -inf padding. */
static int vppo__scan_finish(const void *src, vppo_dtype dt, int64_t i, int64_t n, float *dst,
    float vmax, int bad, float *max)
{
    for (; i < n; ++i) {
        float x = dt == VPPO_F32 ? ((const float *)src)[i]
                : dt == VPPO_BF16 ? vppo__bf16_to_f32(((const uint16_t *)src)[i])
                : vppo__f16_to_f32(((const uint16_t *)src)[i]);
        if (!(x < HUGE_VALF)) bad = 1;         /* NaN or +inf */
        else if (x > vmax) vmax = x;
        dst[i] = x;
    }
    if (dst)
        for (; i % VPPO__PAD; ++i) dst[i] = -HUGE_VALF;
    *max = vmax;
    return bad;
}

static void vppo__to_bf16_tail(const float *g, int64_t i, int64_t n, uint16_t *dst)
{
    for (; i < n; ++i) dst[i] = vppo__f32_to_bf16(g[i]);
}

/* From the kernels and ISA dispatch section (at the end): the active ISA's kernels for
   rows at this temperature, or NULL for the scalar reference; the kernels of the fused
   linear head (never NULL). */
static const vppo__kernels *vppo__kernels_for_temperature(float temperature);
static const vppo__kernels *vppo__lin_kernels(float temperature);

/* --- row drivers of the vector path ------------------------------------------ */

static int64_t vppo__padded(int64_t n) { return (n + VPPO__PAD - 1) / VPPO__PAD * VPPO__PAD; }

static const char *vppo__row_ptr(const vppo_logits *x, int64_t r)
{
    return (const char *)x->data + (size_t)(r * x->row_stride) * vppo__dtype_size(x->dtype);
}

/* Entries [0, n) of a row as floats for the leaf kernels: f32 blocks of a multiple of 16
   entries are used where they lie (scanned only); anything else is converted into buf.
   *bad is set for a NaN or +inf. */
static const float *vppo__block(const vppo__kernels *k, const char *src, vppo_dtype dt, int64_t n,
    float *buf, float *max, int *bad)
{
    const int direct = dt == VPPO_F32 && n % VPPO__PAD == 0;
    *bad |= k->scan(src, dt, n, direct ? NULL : buf, max);
    return direct ? (const float *)src : buf;
}

/* The rescale threshold of a row with reference m (a float, or -inf) and 1/T = invt. */
static float vppo__threshold(double m, double invt)
{
    const double th = m + VPPO__RESCALE / invt;
    return th < (double)FLT_MAX ? (float)th : FLT_MAX;   /* +inf must stay above it */
}

/* The max of entries [i, min(i + g, n)) at src (dtype dt), g <= 64; nonzero if one is
   NaN or +inf. */
static int vppo__group_max(const void *src, vppo_dtype dt, int64_t i, int64_t n, int64_t g, double *max)
{
    float buf[64];
    int64_t k;
    double m = -VPPO__INF;
    vppo__tail_f32(src, dt, i, vppo__min64(n, i + g), buf, g);
    for (k = 0; k < g; ++k) {
        if (!(buf[k] < HUGE_VALF)) return 1;
        if (buf[k] > m) m = buf[k];
    }
    *max = m;
    return 0;
}

/* Adds entries [0, n) at src (dtype dt); nonzero if one is NaN or +inf. */
static int vppo__acc_push(const vppo__kernels *k, vppo__acc *a, const char *src, vppo_dtype dt, int64_t n,
    double invt)
{
    const float s = (float)invt;
    int64_t i = 0;
    while (i < n) {
        double blk[2] = { 0.0, 0.0 }, gmax;
        const int finite = a->m > -VPPO__INF;
        i = k->stats(src, dt, i, n, finite ? (float)a->m : 0.0f,   /* any finite reference while all are -inf */
                     finite ? vppo__threshold(a->m, invt) : -HUGE_VALF, s, blk);
        a->sum += blk[0];
        a->cen += blk[1];
        if (i >= n) break;
        if (vppo__group_max(src, dt, i, n, k->group, &gmax)) return 1;   /* the group that stopped it */
        vppo__acc_rebase(a, gmax, invt);
    }
    return 0;
}

/* One pass over row r: its max z (raw), log sum exp((z - max)/T) and entropy. */
static vppo_status vppo__vrow_stats(const vppo__kernels *k, const vppo_logits *x, int64_t r,
    double *zmax, double *logsum, double *entropy)
{
    vppo__acc a;
    vppo__acc_init(&a);
    if (vppo__acc_push(k, &a, vppo__row_ptr(x, r), x->dtype, x->vocab, 1.0 / (double)x->temperature))
        return VPPO_ERR_NONFINITE;
    return vppo__acc_end(&a, zmax, logsum, entropy);
}

/* The same for a pair of rows (P, Q), with diff = sum eu (du - dv) for KL(P || Q). */
typedef struct vppo__pair { double mu, mv, su, sv, diff, js; int infinite; } vppo__pair;

static void vppo__pair_init(vppo__pair *a)
{
    a->mu = a->mv = -VPPO__INF;
    a->su = a->sv = a->diff = a->js = 0.0;
    a->infinite = 0;
}

/* Adds entries [0, n) of a pair of rows (1/T = tu, tv): with js NULL to the normalisers
   and the KL sum (one pass), else (a second pass, js from vppo__js_args_of) the JS terms
   to a->js. Nonzero if an entry is NaN or +inf. */
static int vppo__pair_push(const vppo__kernels *k, vppo__pair *a, const char *up, vppo_dtype udt,
    const char *vp, vppo_dtype vdt, int64_t n, double tu, double tv, const vppo__js_args *js)
{
    vppo__kl_args c;
    int64_t i = 0;
    if (js) {
        const size_t eu = vppo__dtype_size(udt), ev = vppo__dtype_size(vdt);
        float bu[VPPO__BLOCK], bv[VPPO__BLOCK], bmu, bmv;
        int64_t b;
        int bad = 0;
        for (; i < n; i += b) {
            const float *u, *v;
            b = vppo__min64(VPPO__BLOCK, n - i);
            u = vppo__block(k, up + (size_t)i * eu, udt, b, bu, &bmu, &bad);
            v = vppo__block(k, vp + (size_t)i * ev, vdt, b, bv, &bmv, &bad);
            if (bad) return 1;
            a->js += k->js(u, v, vppo__padded(b), js);
        }
        return 0;
    }
    c.su = (float)tu;
    c.sv = (float)tv;
    while (i < n) {
        vppo__kl_sums blk;
        double bmu, bmv;
        blk.su = blk.sv = blk.diff = 0.0;
        blk.infinite = 0;
        c.mu = a->mu > -VPPO__INF ? (float)a->mu : 0.0f;   /* any finite reference while all are -inf */
        c.mv = a->mv > -VPPO__INF ? (float)a->mv : 0.0f;
        c.tu = a->mu > -VPPO__INF ? vppo__threshold(a->mu, tu) : -HUGE_VALF;
        c.tv = a->mv > -VPPO__INF ? vppo__threshold(a->mv, tv) : -HUGE_VALF;
        i = k->kl(up, udt, vp, vdt, i, n, &c, &blk);
        a->su += blk.su;
        a->sv += blk.sv;
        a->diff += blk.diff;
        a->infinite |= blk.infinite;
        if (i >= n) break;
        if (vppo__group_max(up, udt, i, n, k->group, &bmu) || vppo__group_max(vp, vdt, i, n, k->group, &bmv))
            return 1;
        if (bmu > a->mu || bmv > a->mv) {
            /* A reference rose: what was summed had du (dv) larger by delta_u (delta_v)
               than it has now, so su scales by exp(-delta_u), sv by exp(-delta_v), and
               diff = sum eu (du - dv) becomes exp(-delta_u) diff - (delta_u - delta_v) su,
               exactly unchanged when both references moved alike. */
            const double delta_u = bmu > a->mu && a->su > 0.0 ? (bmu - a->mu) * tu : 0.0;
            const double delta_v = bmv > a->mv && a->sv > 0.0 ? (bmv - a->mv) * tv : 0.0;
            const double scale_u = exp(-delta_u);
            a->su *= scale_u;
            a->sv *= exp(-delta_v);
            a->diff = scale_u * a->diff - (delta_u - delta_v) * a->su;
            if (bmu > a->mu) a->mu = bmu;
            if (bmv > a->mv) a->mv = bmv;
        }
    }
    return 0;
}

/* VPPO_OK once both rows had an entry above -inf; KL(P || Q) then if kl is not NULL. */
static vppo_status vppo__pair_end(const vppo__pair *a, double *kl)
{
    if (!(a->su > 0.0) || !(a->sv > 0.0)) return VPPO_ERR_PARAM;
    /* KL = sum p (du - dv) - log su + log sv: the maxima cancel */
    if (kl) *kl = a->infinite ? VPPO__INF : vppo__max(0.0, a->diff / a->su - log(a->su) + log(a->sv));
    return VPPO_OK;
}

/* One pass over the rows r of P and Q into *a; KL(P || Q) if kl is not NULL. */
static vppo_status vppo__vrow_pair(const vppo__kernels *k, const vppo_logits *P, const vppo_logits *Q,
    int64_t r, vppo__pair *a, double *kl)
{
    vppo__pair_init(a);
    if (vppo__pair_push(k, a, vppo__row_ptr(P, r), P->dtype, vppo__row_ptr(Q, r), Q->dtype, P->vocab,
                        1.0 / (double)P->temperature, 1.0 / (double)Q->temperature, NULL))
        return VPPO_ERR_NONFINITE;
    return vppo__pair_end(a, kl);
}

/* The JS kernel's arguments from a finished pair pass and 1/T of each side. */
static vppo__js_args vppo__js_args_of(const vppo__pair *a, double tu, double tv)
{
    vppo__js_args c;
    c.mu = (float)a->mu; c.su = (float)tu; c.lu = (float)log(a->su);
    c.mv = (float)a->mv; c.sv = (float)tv; c.lv = (float)log(a->sv);
    return c;
}

/* JS: the pair pass for both normalisers, then a second pass for the terms. */
static vppo_status vppo__vrow_js(const vppo__kernels *k, const vppo_logits *P, const vppo_logits *Q,
    int64_t r, double *js)
{
    const double tu = 1.0 / (double)P->temperature, tv = 1.0 / (double)Q->temperature;
    vppo__pair a;
    vppo__js_args c;
    vppo_status status = vppo__vrow_pair(k, P, Q, r, &a, NULL);
    if (status != VPPO_OK) return status;
    c = vppo__js_args_of(&a, tu, tv);
    if (vppo__pair_push(k, &a, vppo__row_ptr(P, r), P->dtype, vppo__row_ptr(Q, r), Q->dtype, P->vocab, tu, tv, &c))
        return VPPO_ERR_NONFINITE;
    *js = vppo__max(0.0, 0.5 * a.js);
    return VPPO_OK;
}

/* The backward kernel's arguments of a row: u - lse = (z - hi - lo) / T with hi + lo =
   lse T, so that z - hi is exact where p is not negligible. lse recomputed (split) is
   (zmax, logsum) and hi the raw max itself; lse given: hi = lse T rounded, lo the rest. */
static vppo__bwd_args vppo__bwd_args_of(int split, double zmax, double logsum, double lse, double t,
    double g, double h, double entropy)
{
    const double lt = lse * t;
    vppo__bwd_args c;
    c.hi = split ? (float)zmax : (float)lt;
    c.lo = split ? (float)(logsum * t) : (float)(lt - (double)c.hi);
    c.s = (float)(1.0 / t);
    c.g = (float)g;
    c.h = (float)h;
    c.H = (float)entropy;
    c.a = (float)(-(g + h * entropy) / t);
    c.b = (float)(-h / t);
    return c;
}

/* Can the vector kernels take these arguments? All finite, and a + b lp finite for lp in
   [DLOW, 88] (else the scalar formula in double runs). */
static int vppo__bwd_args_ok(const vppo__bwd_args *c)
{
    return vppo__finite(c->hi) && vppo__finite(c->lo) && vppo__finite(c->s) &&
           fabs((double)c->a) + 88.0 * fabs((double)c->b) < (double)FLT_MAX;
}

/* --- rows, threads and the public logits functions --------------------------- */

/* Everything a row function needs; each public function fills the fields it uses. */
typedef struct vppo__rows_job {
    const vppo__kernels *k;                      /* NULL: the scalar reference */
    const vppo_logits *x, *y;
    vppo_divergence div;
    const int32_t *ids;
    const float *lse, *entropy, *dlogp, *dentropy;
    float *out_a, *out_b, *out_c;
    const vppo_grad_out *grad;
    int stream;                                  /* the backward's stores may bypass the caches */
} vppo__rows_job;

typedef vppo_status (*vppo__row_fn)(const vppo__rows_job *job, int64_t r);

/* A job over the rows of x with the kernels k (NULL: scalar) and ids; the rest zero. */
static vppo__rows_job vppo__job(const vppo__kernels *k, const vppo_logits *x, const int32_t *ids)
{
    vppo__rows_job job;
    memset(&job, 0, sizeof job);
    job.k = k;
    job.x = x;
    job.ids = ids;
    return job;
}


/* The O(N) functions (§4-§8) go over sequences in blocks of this many: each block's
   sequences in parallel (OpenMP), their per-sequence parts kept on the stack and combined
   in sequence order, so that the results do not depend on the thread count. */
#define VPPO__SEQ_BLOCK 256

/* fn(job, b, part) for the nb sequences b0.. of one block, part i at parts + i * part_size;
   OpenMP over them when the block holds enough tokens. */
typedef void (*vppo__seq_fn)(const void *job, int64_t b, void *part);

static void vppo__seq_block(const vppo_seqs *s, int64_t b0, int64_t nb, vppo__seq_fn fn, const void *job,
                            void *parts, size_t part_size)
{
    int64_t i;
#ifdef _OPENMP
    const int64_t work = s->offsets[b0 + nb] - s->offsets[b0];
#pragma omp parallel for schedule(static) if (nb > 1 && work >= VPPO__OMP_MIN_WORK)
#else
    (void)s;
#endif
    for (i = 0; i < nb; ++i) fn(job, b0 + i, (char *)parts + (size_t)i * part_size);
}

/* Runs fn on rows 0..n_rows-1 (OpenMP over rows when built with -fopenmp). Rows are
   independent, so the results do not depend on the thread count. On errors, the status
   of the lowest failing row is returned, as in a serial run. */
static vppo_status vppo__run_rows(vppo__row_fn fn, const vppo__rows_job *job, int64_t n_rows, int64_t per_row)
{
    int64_t r;
#ifdef _OPENMP
    if (n_rows > 1 && n_rows * per_row >= VPPO__OMP_MIN_WORK) {
        vppo_status first = VPPO_OK;
        int64_t first_row = n_rows;
#pragma omp parallel for schedule(static)
        for (r = 0; r < n_rows; ++r) {
            vppo_status st = fn(job, r);
            if (st != VPPO_OK) {
#pragma omp critical(vppo__first_error)
                if (r < first_row) { first_row = r; first = st; }
            }
        }
        return first;
    }
#else
    (void)per_row;
#endif
    for (r = 0; r < n_rows; ++r) {
        vppo_status st = fn(job, r);
        if (st != VPPO_OK) return st;
    }
    return VPPO_OK;
}

static vppo_status vppo__dependency_row(const vppo__rows_job *j, int64_t r)
{
    const vppo_logits *P = j->div == VPPO_DIV_KL_REVERSE ? j->y : j->x;
    const vppo_logits *Q = j->div == VPPO_DIV_KL_REVERSE ? j->x : j->y;
    double d = 0.0;
    vppo__pair a;
    vppo_status status;
    if (j->div == VPPO_DIV_JS)
        status = j->k ? vppo__vrow_js(j->k, P, Q, r, &d) : vppo__row_js(P, r, Q, r, &d);
    else
        status = j->k ? vppo__vrow_pair(j->k, P, Q, r, &a, &d) : vppo__row_kl(P, r, Q, r, &d);
    if (status == VPPO_OK) j->out_a[r] = (float)d;
    return status;
}

/* The checks of vppo_dependency_logits that read no array (shared with vppo_cuda.cu). */
static vppo_status vppo__check_dependency_logits_args(const vppo_logits *orig, const vppo_logits *aug,
    vppo_divergence div, const float *dep)
{
    vppo_status st;
    if ((st = vppo__check_logits(orig)) != VPPO_OK) return st;
    if ((st = vppo__check_logits(aug)) != VPPO_OK) return st;
    if (!dep) return VPPO_ERR_NULL;
    if (orig->n_rows != aug->n_rows || orig->vocab != aug->vocab) return VPPO_ERR_SIZE;
    if (!vppo__enum_in((int)div, VPPO_DIV_KL, VPPO_DIV_JS)) return VPPO_ERR_PARAM;
    return VPPO_OK;
}

VPPODEF vppo_status vppo_dependency_logits(const vppo_logits *orig, const vppo_logits *aug,
    vppo_divergence div, float *dep)
{
    vppo__rows_job job;
    vppo_status st = vppo__check_dependency_logits_args(orig, aug, div, dep);
    if (st != VPPO_OK) return st;
    job = vppo__job(vppo__kernels_for_temperature(aug->temperature) ? vppo__kernels_for_temperature(orig->temperature) : NULL, orig, NULL);
    job.y = aug;
    job.div = div;
    job.out_a = dep;
    return vppo__run_rows(vppo__dependency_row, &job, orig->n_rows, 2 * orig->vocab);
}

/* z[r][j], the raw logit (no temperature), in double. */
static double vppo__load_z(const vppo_logits *x, int64_t r, int64_t j)
{
    const int64_t at = r * x->row_stride + j;
    if (x->dtype == VPPO_F32) return ((const float *)x->data)[at];
    if (x->dtype == VPPO_BF16) return vppo__bf16_to_f32(((const uint16_t *)x->data)[at]);
    return vppo__f16_to_f32(((const uint16_t *)x->data)[at]);
}

/* u[ids[r]] of row r, in double. */
static double vppo__load_one(const vppo_logits *x, int64_t r, int64_t j)
{
    double u;
    vppo__load_u(x, r, j, 1, &u);
    return u;
}

static vppo_status vppo__check_ids(const int32_t *ids, int64_t n_rows, int64_t vocab)
{
    int64_t r;
    for (r = 0; r < n_rows; ++r)
        if (ids[r] < 0 || ids[r] >= vocab) return VPPO_ERR_INDEX;
    return VPPO_OK;
}

/* lse and entropy of row r, by the job's path; the vector path also gives logp of id. */
static vppo_status vppo__row_stats(const vppo__rows_job *j, int64_t r, int64_t id,
    double *lse, double *entropy, double *logp)
{
    vppo_status st;
    if (j->k) {
        const double invt = 1.0 / (double)j->x->temperature;
        double zmax, logsum;
        if ((st = vppo__vrow_stats(j->k, j->x, r, &zmax, &logsum, entropy)) != VPPO_OK) return st;
        *lse = zmax * invt + logsum;
        /* formed around the max, on the raw logits, so that huge u (tiny temperatures)
           keep logp's precision: z/T and zmax * (1/T) round differently */
        if (id >= 0) *logp = (vppo__load_z(j->x, r, id) - zmax) * invt - logsum;
        return VPPO_OK;
    }
    {
        double max, logsum;
        if ((st = vppo__row_lse_entropy(j->x, r, &max, &logsum, entropy)) != VPPO_OK) return st;
        *lse = max + logsum;
        if (id >= 0) *logp = (vppo__load_one(j->x, r, id) - max) - logsum;
    }
    return VPPO_OK;
}

static vppo_status vppo__logprobs_row(const vppo__rows_job *j, int64_t r)
{
    double l, h, lp = 0.0;
    vppo_status st = vppo__row_stats(j, r, j->out_a ? (int64_t)j->ids[r] : -1, &l, &h, &lp);
    if (st != VPPO_OK) return st;
    if (j->out_a) j->out_a[r] = (float)lp;
    if (j->out_b) j->out_b[r] = (float)l;
    if (j->out_c) j->out_c[r] = (float)h;
    return VPPO_OK;
}

VPPODEF vppo_status vppo_logprobs(const vppo_logits *x, const int32_t *ids,
    float *logp, float *lse, float *entropy)
{
    vppo__rows_job job;
    vppo_status st;
    if ((st = vppo__check_logits(x)) != VPPO_OK) return st;
    if (logp && !ids) return VPPO_ERR_NULL;
    if (logp && (st = vppo__check_ids(ids, x->n_rows, x->vocab)) != VPPO_OK) return st;
    job = vppo__job(vppo__kernels_for_temperature(x->temperature), x, ids);
    job.out_a = logp;
    job.out_b = lse;
    job.out_c = entropy;
    return vppo__run_rows(vppo__logprobs_row, &job, x->n_rows, x->vocab);
}

/* Are byte ranges [a, a+na) and [b, b+nb) overlapping? */
static int vppo__overlap(const void *a, size_t na, const void *b, size_t nb)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return na > 0 && nb > 0 && a0 < b0 + nb && b0 < a0 + na;
}

static vppo_status vppo__check_finite_array(const float *x, int64_t n)
{
    int64_t i;
    if (x)
        for (i = 0; i < n; ++i)
            if (!vppo__finite(x[i])) return VPPO_ERR_NONFINITE;
    return VPPO_OK;
}

/* dL/dz of one entry, in double: (1/T)[g (onehot - p) - h p (logp + H)]. */
static double vppo__grad_entry(double u, double row_lse, double row_h, double g, double h, int onehot, double t)
{
    double logp_j, p;
    if (u == -VPPO__INF) return onehot ? g / t : 0.0;          /* p = 0: no p log p term */
    logp_j = u - row_lse;
    p = exp(logp_j);
    return (g * ((onehot ? 1.0 : 0.0) - p) - h * p * (logp_j + row_h)) / t;
}

static void vppo__store_grad_row(const vppo_grad_out *out, int64_t r, int64_t j0, int64_t n, const float *g)
{
    if (out->dtype == VPPO_F32) memcpy((float *)out->data + r * out->row_stride + j0, g, (size_t)n * sizeof(float));
    else vppo__to_bf16_tail(g, 0, n, (uint16_t *)out->data + r * out->row_stride + j0);
}

static vppo_status vppo__backward_row(const vppo__rows_job *j, int64_t r)
{
    const vppo_logits *x = j->x;
    const int64_t V = x->vocab, id = j->dlogp ? (int64_t)j->ids[r] : -1;
    const double g = j->dlogp ? (double)j->dlogp[r] : 0.0, h = j->dentropy ? (double)j->dentropy[r] : 0.0;
    const double t = (double)x->temperature;
    double row_lse = j->lse ? (double)j->lse[r] : 0.0, row_h = j->entropy ? (double)j->entropy[r] : 0.0;
    double z_id = 0.0, lt, zraw = 0.0, umax = 0.0, logsum = 0.0;
    vppo__bwd_args c;
    int split = 0;
    vppo_status st;
    if (!j->lse || (j->dentropy && !j->entropy)) {   /* pass 1: what was not given */
        double e;
        /* lse recomputed is kept in two parts, the row's max (of the raw logits on the
           vector path, of u on the scalar one) and logsum, so that u - lse keeps its
           precision next to huge u (tiny temperatures) */
        if (j->k) {
            if ((st = vppo__vrow_stats(j->k, x, r, &zraw, &logsum, &e)) != VPPO_OK) return st;
            umax = zraw / t;
        } else if ((st = vppo__row_lse_entropy(x, r, &umax, &logsum, &e)) != VPPO_OK) {
            return st;
        }
        if (!j->lse) { row_lse = umax + logsum; split = 1; }
        if (!j->entropy) row_h = e;
    }
    if (id >= 0) z_id = vppo__load_z(x, r, id);       /* read before any write (in place) */
    lt = row_lse * t;
    c = vppo__bwd_args_of(split, zraw, logsum, row_lse, t, g, h, row_h);
    if (j->k && vppo__finite((float)lt) && vppo__bwd_args_ok(&c)) {       /* the vector path */
        const vppo_grad_out *out = j->grad;
        void *dst = (char *)out->data + (size_t)(r * out->row_stride) * vppo__dtype_size(out->dtype);
        const int flags = j->k->bwd(vppo__row_ptr(x, r), x->dtype, V, &c, dst, out->dtype, j->stream);
        if (flags & 1) return VPPO_ERR_NONFINITE;
        if (id >= 0) {
            const float gid = (float)(split ? vppo__grad_entry((z_id - zraw) / t, logsum, row_h, g, h, 1, t)
                                            : vppo__grad_entry(z_id / t, row_lse, row_h, g, h, 1, t));
            if (out->dtype == VPPO_F32) ((float *)dst)[id] = gid;
            else ((uint16_t *)dst)[id] = vppo__f32_to_bf16(gid);
        }
        return flags & 2 ? VPPO_OK : VPPO_ERR_PARAM;
    }
    {   /* the scalar reference: read a chunk, write its gradient */
        const double sub = split ? umax : 0.0, base = split ? logsum : row_lse;
        double u[VPPO__CHUNK];
        float grad[VPPO__CHUNK];
        int64_t j0, i, n;
        int any_finite = 0;
        for (j0 = 0; j0 < V; j0 += n) {
            n = vppo__min64(VPPO__CHUNK, V - j0);
            vppo__load_u(x, r, j0, n, u);
            for (i = 0; i < n; ++i) {
                if (!(u[i] < VPPO__INF)) return VPPO_ERR_NONFINITE;
                if (u[i] > -VPPO__INF) any_finite = 1;
                grad[i] = (float)vppo__grad_entry(u[i] - sub, base, row_h, g, h, j0 + i == id, t);
            }
            vppo__store_grad_row(j->grad, r, j0, n, grad);
        }
        return any_finite ? VPPO_OK : VPPO_ERR_PARAM;
    }
}

/* The argument checks of the backward that read no array (shared with vppo_cuda.cu). */
static vppo_status vppo__check_backward_args(const vppo_logits *x, const int32_t *ids, const float *dlogp,
    const vppo_grad_out *dlogits)
{
    int64_t V;
    size_t in_bytes, out_bytes;
    vppo_status st;
    if ((st = vppo__check_logits(x)) != VPPO_OK) return st;
    if (!dlogits || !dlogits->data) return VPPO_ERR_NULL;
    if (dlogp && !ids) return VPPO_ERR_NULL;
    if (dlogits->dtype == VPPO_F16) return VPPO_ERR_UNSUPPORTED;
    if (dlogits->dtype != VPPO_F32 && dlogits->dtype != VPPO_BF16) return VPPO_ERR_PARAM;
    V = x->vocab;
    if (dlogits->row_stride < V) return VPPO_ERR_SIZE;
    if (x->n_rows > 0 && dlogits->row_stride > (VPPO__MAX_INDEX - V) / x->n_rows) return VPPO_ERR_SIZE;
    /* in place only as documented: same start, both F32, same stride */
    in_bytes = x->n_rows ? (size_t)((x->n_rows - 1) * x->row_stride + V) * vppo__dtype_size(x->dtype) : 0;
    out_bytes = x->n_rows ? (size_t)((x->n_rows - 1) * dlogits->row_stride + V) * vppo__dtype_size(dlogits->dtype) : 0;
    if (vppo__overlap(x->data, in_bytes, dlogits->data, out_bytes) &&
        !(x->data == dlogits->data && x->dtype == VPPO_F32 && dlogits->dtype == VPPO_F32 &&
          x->row_stride == dlogits->row_stride))
        return VPPO_ERR_PARAM;
    return VPPO_OK;
}

VPPODEF vppo_status vppo_logprobs_backward(const vppo_logits *x, const int32_t *ids,
    const float *lse, const float *entropy, const float *dlogp, const float *dentropy,
    const vppo_grad_out *dlogits)
{
    vppo__rows_job job;
    const int64_t V = x ? x->vocab : 0;
    vppo_status st;
    if ((st = vppo__check_backward_args(x, ids, dlogp, dlogits)) != VPPO_OK) return st;
    if (dlogp && (st = vppo__check_ids(ids, x->n_rows, V)) != VPPO_OK) return st;
    if ((st = vppo__check_finite_array(lse, x->n_rows)) != VPPO_OK) return st;
    if ((st = vppo__check_finite_array(entropy, x->n_rows)) != VPPO_OK) return st;
    if ((st = vppo__check_finite_array(dlogp, x->n_rows)) != VPPO_OK) return st;
    if ((st = vppo__check_finite_array(dentropy, x->n_rows)) != VPPO_OK) return st;
    job = vppo__job(vppo__kernels_for_temperature(x->temperature), x, ids);
    job.lse = lse;
    job.entropy = entropy;
    job.dlogp = dlogp;
    job.dentropy = dentropy;
    job.grad = dlogits;
    job.stream = dlogits->data != x->data && dlogits->dtype == VPPO_F32 &&
                 (size_t)(x->n_rows * V) >= VPPO__STREAM_BYTES / sizeof(float);
    return vppo__run_rows(vppo__backward_row, &job, x->n_rows, V);
}

/* ========================================================= group advantages == */

/* Shared checks of the group functions: per-response values finite where included;
   with need_baseline, no group may have exactly one included response. */
static vppo_status vppo__check_groups(const vppo_seqs *g, const float *values, int need_baseline)
{
    int64_t k;
    vppo_status st = vppo__check_values(g, values, 0);
    if (st != VPPO_OK) return st;
    if (need_baseline)
        for (k = 0; k < g->n_seqs; ++k)
            if (vppo__count_valid(g, k) == 1) return VPPO_ERR_SIZE;
    return VPPO_OK;
}

/* Sum, mean and unbiased standard deviation of the n included values of group k, and
   whether they are all equal. */
typedef struct vppo__moments { double sum, mean, std; int constant; } vppo__moments;

static vppo__moments vppo__group_moments(const vppo_seqs *g, const float *x, int64_t k, int64_t n)
{
    vppo__moments m;
    int64_t t;
    double ss = 0.0, lo = VPPO__INF, hi = -VPPO__INF;
    m.sum = 0.0;
    for (t = g->offsets[k]; t < g->offsets[k + 1]; ++t)
        if (vppo__valid(g, t)) {
            m.sum += x[t];
            if (x[t] < lo) lo = x[t];
            if (x[t] > hi) hi = x[t];
        }
    m.mean = n > 0 ? m.sum / (double)n : 0.0;
    for (t = g->offsets[k]; t < g->offsets[k + 1]; ++t)
        if (vppo__valid(g, t)) ss += (x[t] - m.mean) * (x[t] - m.mean);
    m.std = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
    m.constant = n == 0 || lo == hi;
    return m;
}

VPPODEF vppo_status vppo_group_advantages(const vppo_seqs *groups, const float *rewards,
    vppo_adv_kind kind, float eps, float *adv)
{
    int64_t k, t;
    int pass;
    vppo_status st = vppo__check_seqs(groups);
    if (st != VPPO_OK) return st;
    if (!rewards || !adv) return VPPO_ERR_NULL;
    if (!vppo__enum_in((int)kind, VPPO_ADV_GRPO, VPPO_ADV_GRPO_PASSK)) return VPPO_ERR_PARAM;
    if (!vppo__finite(eps) || eps < 0.0f) return VPPO_ERR_PARAM;
    if ((st = vppo__check_groups(groups, rewards, 1)) != VPPO_OK) return st;

    /* pass 0 only checks that every advantage is a float (r - mean of rewards near
       +-FLT_MAX is not), so that nothing is written on that error; pass 1 writes */
    for (pass = 0; pass < 2; ++pass)
        for (k = 0; k < groups->n_seqs; ++k) {
            const int64_t n = vppo__count_valid(groups, k);
            const vppo__moments m = vppo__group_moments(groups, rewards, k, n);
            int64_t best = -1;
            double second = -VPPO__INF;
            if (kind == VPPO_ADV_GRPO_PASSK) {      /* best: first index of the maximum */
                for (t = groups->offsets[k]; t < groups->offsets[k + 1]; ++t)
                    if (vppo__valid(groups, t) && (best < 0 || rewards[t] > rewards[best])) best = t;
                for (t = groups->offsets[k]; t < groups->offsets[k + 1]; ++t)
                    if (vppo__valid(groups, t) && t != best && rewards[t] > second) second = rewards[t];
            }
            for (t = groups->offsets[k]; t < groups->offsets[k + 1]; ++t) {
                const double r = rewards[t];
                double a = 0.0;
                if (!vppo__valid(groups, t) || m.constant) { if (pass) adv[t] = 0.0f; continue; }
                switch (kind) {
                case VPPO_ADV_GRPO:        a = (r - m.mean) / (m.std + (double)eps); break;
                case VPPO_ADV_GRPO_NO_STD: a = r - m.mean; break;
                case VPPO_ADV_RLOO:        a = r - (m.sum - r) / (double)(n - 1); break;
                case VPPO_ADV_GRPO_PASSK:  a = t == best ? (r - second) / (m.std + (double)eps) : 0.0; break;
                }
                if (!pass && fabs(a) > FLT_MAX) return VPPO_ERR_NONFINITE;
                if (pass) adv[t] = (float)a;
            }
        }
    return VPPO_OK;
}

VPPODEF vppo_status vppo_group_filter(const vppo_seqs *groups, const float *scores,
    double lo, double hi, uint8_t *keep)
{
    int64_t k, t;
    vppo_status st = vppo__check_seqs(groups);
    if (st != VPPO_OK) return st;
    if (!scores || !keep) return VPPO_ERR_NULL;
    if (lo != lo || hi != hi || lo > hi) return VPPO_ERR_PARAM;
    if ((st = vppo__check_groups(groups, scores, 0)) != VPPO_OK) return st;
    for (k = 0; k < groups->n_seqs; ++k) {
        const int64_t n = vppo__count_valid(groups, k);
        const double mean = vppo__group_moments(groups, scores, k, n).mean;
        const int kept = n > 0 && lo < mean && mean < hi;
        for (t = groups->offsets[k]; t < groups->offsets[k + 1]; ++t)
            keep[t] = (uint8_t)(kept && vppo__valid(groups, t));
    }
    return VPPO_OK;
}

/* ================================ Trajectory-level Advantage Shaping (TAS) == */

/* Per-sequence means of x, already checked (count may be NULL); the kernels' sum, so the
   same bits on every ISA. */
static void vppo__seq_mean_run(const vppo_seqs *s, const float *x, float *mean, int64_t *count)
{
    const vppo__on_kernels *k = vppo__on_active();
    int64_t b;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (s->n_seqs > 1 && s->offsets[s->n_seqs] - s->offsets[0] >= VPPO__OMP_MIN_WORK)
#endif
    for (b = 0; b < s->n_seqs; ++b)
        vppo__mean_store(b, k->map(x, NULL, s->mask, s->offsets[b], s->offsets[b + 1], VPPO__ON_SUM, NULL),
                         vppo__count_valid(s, b), mean, count);
}

VPPODEF vppo_status vppo_seq_mean(const vppo_seqs *s, const float *x, float *mean, int64_t *count)
{
    vppo_status st = vppo__check_seqs(s);
    if (st != VPPO_OK) return st;
    if (!x || !mean) return VPPO_ERR_NULL;
    if ((st = vppo__check_values(s, x, 0)) != VPPO_OK) return st;
    vppo__seq_mean_run(s, x, mean, count);
    return VPPO_OK;
}

/* Does sequence b take part in TAS (count > 0, or every sequence without counts)? */
static int vppo__tas_valid(const int64_t *count, int64_t b) { return !count || count[b] > 0; }

static vppo_status vppo__check_traj(const float *traj_dep, const int64_t *count, int64_t n_seqs)
{
    int64_t b;
    if (n_seqs < 0 || n_seqs > VPPO__MAX_INDEX) return VPPO_ERR_SIZE;
    if (count)
        for (b = 0; b < n_seqs; ++b)
            if (count[b] < 0) return VPPO_ERR_SIZE;
    for (b = 0; b < n_seqs; ++b)
        if (vppo__tas_valid(count, b) && !vppo__finite(traj_dep[b])) return VPPO_ERR_NONFINITE;
    return VPPO_OK;
}

VPPODEF vppo_status vppo_tas_stats_compute(const float *traj_dep, const int64_t *count,
    int64_t n_seqs, vppo_tas_stats *st)
{
    int64_t b;
    vppo_status err;
    if (!traj_dep || !st) return VPPO_ERR_NULL;
    if ((err = vppo__check_traj(traj_dep, count, n_seqs)) != VPPO_OK) return err;
    st->min = VPPO__INF; st->max = -VPPO__INF; st->n = 0;
    for (b = 0; b < n_seqs; ++b) {
        if (!vppo__tas_valid(count, b)) continue;
        if (traj_dep[b] < st->min) st->min = traj_dep[b];
        if (traj_dep[b] > st->max) st->max = traj_dep[b];
        st->n += 1;
    }
    return VPPO_OK;
}

VPPODEF void vppo_tas_stats_merge(vppo_tas_stats *into, const vppo_tas_stats *other)
{
    if (!into || !other) return;
    if (other->min < into->min) into->min = other->min;
    if (other->max > into->max) into->max = other->max;
    into->n += other->n;
}

VPPODEF vppo_tas_config vppo_tas_config_default(void)
{
    vppo_tas_config c;
    c.mode = VPPO_TAS_MEAN_PRESERVING;
    c.beta_min = 0.9f;
    c.beta_max = 1.0f;
    return c;
}

static vppo_status vppo__check_tas_config(const vppo_tas_config *c)
{
    if (!c) return VPPO_ERR_NULL;
    if (!vppo__finite(c->beta_min) || !vppo__finite(c->beta_max) || c->beta_min < 0.0f)
        return VPPO_ERR_PARAM;
    if (c->mode == VPPO_TAS_LINEAR) return c->beta_max >= c->beta_min ? VPPO_OK : VPPO_ERR_PARAM;
    if (c->mode == VPPO_TAS_MEAN_PRESERVING) return c->beta_min <= 1.0f ? VPPO_OK : VPPO_ERR_PARAM;
    return VPPO_ERR_PARAM;
}

static VPPO_HD vppo_status vppo__check_tas_stats(const vppo_tas_stats *st)
{
    if (!st) return VPPO_ERR_NULL;
    if (st->n < 0) return VPPO_ERR_SIZE;
    if (st->n >= 2 && !(vppo__finite(st->min) && vppo__finite(st->max) && st->min <= st->max))
        return VPPO_ERR_PARAM;
    return VPPO_OK;
}

/* The TAS scale of a response whose normalised dependency is x (the batch mean is x_mean). */
static VPPO_HD double vppo__tas_alpha(const vppo_tas_config *cfg, double x, double x_mean)
{
    if (cfg->mode == VPPO_TAS_LINEAR) return cfg->beta_min + ((double)cfg->beta_max - (double)cfg->beta_min) * x;
    return cfg->beta_min + (1.0 - (double)cfg->beta_min) * x / (x_mean + 1e-8);
}

/* Scales without re-validation (vppo_prepare validates once). */
static void vppo__tas_scales_run(const vppo_tas_config *cfg, const vppo_tas_stats *st,
    const float *traj_dep, const int64_t *count, int64_t n_seqs, float *scale)
{
    int64_t b, n_valid = 0;
    double range = st->max - st->min, x_sum = 0.0, x_mean;
    for (b = 0; b < n_seqs; ++b) scale[b] = 1.0f;
    if (st->n < 2 || range <= 1e-6) return;
    for (b = 0; b < n_seqs; ++b)
        if (vppo__tas_valid(count, b)) {
            x_sum += vppo__clamp((traj_dep[b] - st->min) / range, 0.0, 1.0);
            ++n_valid;
        }
    if (n_valid == 0) return;
    x_mean = x_sum / (double)n_valid;
    for (b = 0; b < n_seqs; ++b)
        if (vppo__tas_valid(count, b))
            scale[b] = (float)vppo__tas_alpha(cfg, vppo__clamp((traj_dep[b] - st->min) / range, 0.0, 1.0), x_mean);
}

VPPODEF vppo_status vppo_tas_scales(const vppo_tas_config *cfg, const vppo_tas_stats *st,
    const float *traj_dep, const int64_t *count, int64_t n_seqs, float *scale)
{
    vppo_status err;
    if ((err = vppo__check_tas_config(cfg)) != VPPO_OK) return err;
    if ((err = vppo__check_tas_stats(st)) != VPPO_OK) return err;
    if (!traj_dep || !scale) return VPPO_ERR_NULL;
    if ((err = vppo__check_traj(traj_dep, count, n_seqs)) != VPPO_OK) return err;
    vppo__tas_scales_run(cfg, st, traj_dep, count, n_seqs, scale);
    return VPPO_OK;
}

/* ==================================== Token-level Gradient Filtering (TGF) == */

/* The signed order-preserving image of a float: for non-NaN a and b, a < b as floats iff
   key(a) < key(b). The magnitude's bits, negated where the sign bit is set: so -0 and +0
   both map to 0 and tie, as they compare; +-inf -> +-0x7f800000; NaN lies outside that
   range. Signed, so that SSE2 and AVX2 (which have no unsigned 32-bit compare) can
   compare keys; the vector kernels compute the same. */
#define VPPO__KEY_INF 0x7f800000
#define VPPO__KEY_NONE INT32_MIN   /* below every key: where a position is not valid */
static int32_t vppo__key(float f)
{
    uint32_t bits;
    int32_t mag;
    memcpy(&bits, &f, sizeof bits);
    mag = (int32_t)(bits & 0x7fffffffu);
    return (bits >> 31) ? -mag : mag;
}

static float vppo__unkey(int32_t key)
{
    const uint32_t bits = key < 0 ? (uint32_t)-key | 0x80000000u : (uint32_t)key;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* k_b = clamp(ceil(n_b ratio - 1e-9), 0, n_b). */
static int64_t vppo__topk_count(int64_t n, double ratio)
{
    double k = ceil((double)n * ratio - 1e-9);
    return k <= 0.0 ? 0 : (k >= (double)n ? n : (int64_t)k);
}

/* The select kernels' info sums of one sequence: position i of the sequence (counted from
   its start) adds to lane i % 16, every ISA in the same order, and vppo__sum16 adds the
   lanes in a fixed tree; so the sums have the same bits on every ISA and thread count. */
typedef struct vppo__topk_acc {
    double sel[16], rej[16];   /* finite selected / finite rejected valid scores */
    int64_t n_sel, n_rej;
} vppo__topk_acc;

static double vppo__sum16(const double *a)
{
    double q[8];
    int i;
    for (i = 0; i < 8; ++i) q[i] = a[2 * i] + a[2 * i + 1];
    return ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
}

/* A window of keys, [lo, hi], holding m of a sequence's keys, the need-th largest of
   which is sought. */
typedef struct vppo__window { int32_t lo, hi; int64_t m, need; } vppo__window;

/* What a partition pass (vppo__select_kernels.part) finds. */
typedef struct vppo__part { int64_t mid, above, m; int32_t lo, hi; } vppo__part;

/* Kernels of the selection (one table per ISA; the portable C ones are the reference). */
typedef struct vppo__select_kernels {
    /* key[i] = vppo__key(x[i]) at the valid i < n (no NaN among them), VPPO__KEY_NONE at
       the others (valid NULL = all valid); w->m = how many are valid, w->lo, w->hi their
       least and greatest key (INT32_MAX and INT32_MIN when none) */
    void (*keys)(const float *x, const uint8_t *valid, int64_t n, int32_t *key, vppo__window *w);
    /* Positions a <= i < b of one sequence (x, valid: its scores and mask, valid NULL = all
       valid): select[i] = valid and key(x[i]) > thr; the finite valid scores go to acc. */
    void (*mask)(const float *x, const uint8_t *valid, int64_t a, int64_t b, int32_t thr,
                 uint8_t *select, vppo__topk_acc *acc);
    /* Is x[i] NaN at a valid i < n? */
    int (*nan)(const float *x, const uint8_t *valid, int64_t n);
    /* One partition pass, added to *o: the keys of positions i < n (those of the scores x at
       the valid i, valid NULL = all valid; x NULL: the keys src[i], all valid) that lie in
       [lo, hi] (lo <= hi) go to dst[o->mid..] (in any order; dst may be src, or a buffer of n keys:
       dst[o->mid + n - 1] may be overwritten, never anything above); o->above counts those
       > hi, o->m the valid ones, o->lo, o->hi the least and greatest moved. */
    void (*part)(const float *x, const uint8_t *valid, const int32_t *src, int64_t n, int32_t lo, int32_t hi,
                 int32_t *dst, struct vppo__part *o);
    /* vppo_prepare's advantages of sequences b0 <= b < b1 (off: their offsets): adv[t] =
       scale[b] * adv_seq[b] at the valid t of sequence b (valid NULL = all), +0 at the
       others (vppo__c_fill_seqs is the reference); nothing else is written. */
    void (*fill)(float *adv, const uint8_t *valid, const int64_t *off, int64_t b0, int64_t b1,
                 const float *scale, const float *adv_seq);
} vppo__select_kernels;

/* From the ISA section: the selection kernels of the active ISA (never NULL). */
static const vppo__select_kernels *vppo__select_kernels_active(void);

static void vppo__c_topk_keys(const float *x, const uint8_t *valid, int64_t n, int32_t *key, vppo__window *w)
{
    int32_t lo = INT32_MAX, hi = INT32_MIN;
    int64_t i, m = 0;
    for (i = 0; i < n; ++i) {   /* without branches */
        const int ok = !valid || valid[i] != 0;
        const int32_t k = ok ? vppo__key(x[i]) : VPPO__KEY_NONE;
        key[i] = k;
        m += ok;
        lo = ok && k < lo ? k : lo;
        hi = k > hi ? k : hi;
    }
    w->lo = lo;
    w->hi = hi;
    w->m = m;
}

static void vppo__c_topk_mask(const float *x, const uint8_t *valid, int64_t a, int64_t b, int32_t thr,
                              uint8_t *select, vppo__topk_acc *acc)
{
    int64_t i;
    for (i = a; i < b; ++i) {
        const int32_t key = vppo__key(x[i]);
        const int ok = !valid || valid[i] != 0, take = ok && key > thr;
        select[i] = (uint8_t)take;
        if (ok && key > -VPPO__KEY_INF && key < VPPO__KEY_INF) {   /* the means are over finite scores */
            if (take) { acc->sel[i & 15] += (double)x[i]; ++acc->n_sel; }
            else { acc->rej[i & 15] += (double)x[i]; ++acc->n_rej; }
        }
    }
}

static int vppo__c_topk_nan(const float *x, const uint8_t *valid, int64_t n)
{
    int64_t i;
    int bad = 0;
    for (i = 0; i < n; ++i) bad |= (!valid || valid[i] != 0) && x[i] != x[i];
    return bad;
}

static void vppo__c_topk_part(const float *x, const uint8_t *valid, const int32_t *src, int64_t n, int32_t lo,
                              int32_t hi, int32_t *dst, vppo__part *o)
{
    const uint32_t width = (uint32_t)hi - (uint32_t)lo;   /* k in [lo, hi]: (uint32) (k - lo) <= width */
    int64_t i, j = o->mid, j0 = o->mid, a = 0, m = n;
    int32_t l = o->lo, h = o->hi;
    if (!x) {   /* three loops without branches inside: the tests are unpredictable */
        for (i = 0; i < n; ++i) {
            const int32_t k = src[i];
            dst[j] = k;
            j += (uint32_t)k - (uint32_t)lo <= width;
            a += k > hi;
        }
    } else if (!valid) {
        for (i = 0; i < n; ++i) {
            const int32_t k = vppo__key(x[i]);
            dst[j] = k;
            j += (uint32_t)k - (uint32_t)lo <= width;
            a += k > hi;
        }
    } else {
        for (i = m = 0; i < n; ++i) {
            const int32_t k = vppo__key(x[i]);
            const int ok = valid[i] != 0;
            dst[j] = k;
            j += ok & ((uint32_t)k - (uint32_t)lo <= width);
            a += ok & (k > hi);
            m += ok;
        }
    }
    for (i = j0; i < j; ++i) {
        l = dst[i] < l ? dst[i] : l;
        h = dst[i] > h ? dst[i] : h;
    }
    o->mid = j;
    o->above += a;
    o->m += m;
    o->lo = l;
    o->hi = h;
}

/* The fill kernel in C (the plain C path's, and the vector kernels' head and tail):
   adv[t0, t1) = a at valid positions, +0 at masked-out ones, 16 at a time through the bits
   of a and a lane mask (a fixed-length loop with no branch, which the compilers vectorise at
   -O2 for the build's own ISA; a plain per-token loop was a 4-byte store at a time). */
static void vppo__c_fill_adv(float *adv, const uint8_t *mask, int64_t t0, int64_t t1, float a)
{
    uint32_t ab, w[16];
    int64_t t = t0;
    int i;
    memcpy(&ab, &a, sizeof ab);
    if (!mask)
        for (; t + 16 <= t1; t += 16) {
            for (i = 0; i < 16; ++i) w[i] = ab;
            memcpy(adv + t, w, sizeof w);
        }
    else
        for (; t + 16 <= t1; t += 16) {
            for (i = 0; i < 16; ++i) w[i] = ab & (0u - (uint32_t)(mask[t + i] != 0));
            memcpy(adv + t, w, sizeof w);
        }
    for (; t < t1; ++t) adv[t] = !mask || mask[t] ? a : 0.0f;
}

static void vppo__c_fill_seqs(float *adv, const uint8_t *valid, const int64_t *off, int64_t b0, int64_t b1,
                              const float *scale, const float *adv_seq)
{
    int64_t b;
    for (b = b0; b < b1; ++b) vppo__c_fill_adv(adv, valid, off[b], off[b + 1], scale[b] * adv_seq[b]);
}

static const vppo__select_kernels vppo__select_kernels_c = {
    vppo__c_topk_keys, vppo__c_topk_mask, vppo__c_topk_nan, vppo__c_topk_part, vppo__c_fill_seqs
};

/* Radix select: the histogram of up to 2^11 digits of (key - lo) >> shift over the m keys
   in the window [lo, hi], and the digit that holds the need-th largest of them. */
#define VPPO__TOPK_BITS 11

static int vppo__window_shift(const vppo__window *w)
{
    const uint32_t range = (uint32_t)((int64_t)w->hi - w->lo);
    uint32_t bins = 4;   /* about as many digits as keys, 4 to 2^11 */
    int shift = 0;
    while (bins < (1u << VPPO__TOPK_BITS) && (int64_t)bins < w->m) bins <<= 1;
    while ((range >> shift) >= bins) ++shift;
    return shift;
}

/* Narrows w to the digit of hist (w's histogram at this shift) that holds the need-th
   largest key; need and m become those of the keys inside it. */
static void vppo__window_pick(vppo__window *w, const int64_t *hist, int shift)
{
    int64_t d = (int64_t)((uint32_t)((int64_t)w->hi - w->lo) >> shift), need = w->need;
    int64_t lo;
    while (hist[d] < need) need -= hist[d--];
    lo = (int64_t)w->lo + (d << shift);
    w->hi = (int32_t)vppo__min64(w->hi, lo + ((int64_t)1 << shift) - 1);
    w->lo = (int32_t)lo;
    w->m = hist[d];
    w->need = need;
}

/* The need-th largest (1 <= need <= w.m) of the w.m keys in [w.lo, w.hi] among key[0..m)
   (the others are below w.lo: VPPO__KEY_NONE): after each pass the keys of the chosen digit
   move to the front and the window shrinks to their least and greatest. Returns the key;
   *n_eq is how many of the keys equal it (all of those lie in every window), *n_take how
   many of them the top need take. */
static int32_t vppo__select_local(const vppo__select_kernels *kern, int32_t *key, int64_t m, vppo__window w,
                                  int64_t *n_eq, int64_t *n_take)
{
    int64_t hist[(1 << VPPO__TOPK_BITS) + 1], i;
    while (w.lo < w.hi) {
        const int shift = vppo__window_shift(&w);
        const int32_t lo = w.lo;
        const uint32_t top = (uint32_t)((int64_t)w.hi - lo) >> shift;
        vppo__part o;
        memset(hist, 0, ((size_t)top + 2) * sizeof hist[0]);
        for (i = 0; i < m; ++i) {   /* keys below the window count in digit top + 1 */
            const int32_t k = key[i];
            hist[k >= lo ? (uint32_t)((int64_t)k - lo) >> shift : top + 1] += 1;
        }
        vppo__window_pick(&w, hist, shift);
        o.mid = o.above = o.m = 0;   /* the keys of the digit to the front; the window: their least and greatest */
        o.lo = INT32_MAX;
        o.hi = INT32_MIN;
        kern->part(NULL, NULL, key, m, w.lo, w.hi, key, &o);
        m = o.mid;
        w.lo = o.lo;
        w.hi = o.hi;
    }
    *n_eq = w.m;
    *n_take = w.need;
    return w.lo;
}

/* Sample-guided narrowing (sequences of at most VPPO__TOPK_LOCAL positions): while more
   than VPPO__TOPK_FEW keys remain, a histogram of VPPO__TOPK_SAMPLE of them (every n / S-th)
   gives a key range that holds the sought one with high probability (its expected sample
   rank +- 3 standard deviations + 2), and one pass of the part kernel keeps the keys inside
   it. The first pass makes the keys from the scores at the same time. If a range misses
   (rare: a sample unlike the whole), the keys are made again and vppo__select_local does
   all. Only the speed depends on the sample: the result is the need-th largest key. */
#define VPPO__TOPK_SAMPLE 128
#define VPPO__TOPK_FEW 256

/* The range [*plo, *phi] (open-ended at the extremes) in which the s sampled keys smp (all
   in [lo, hi]) put the key with q of them above it; 0 if that is every key. Two histograms taken turn about,
   so that runs of one digit do not wait on each other. */
static int vppo__sample_range(const int32_t *smp, int64_t s, int32_t lo, int32_t hi, double q, int32_t *plo,
                              int32_t *phi)
{
    uint32_t hist[2][VPPO__TOPK_SAMPLE];
    int64_t t, c = 0, d, d_hi = -1, top;
    const double r = q * (double)s, dev = 3.0 * sqrt((double)s * q * (1.0 - q)) + 2.0;
    int shift = 0;
    if (lo >= hi) return 0;
    while (((uint32_t)((int64_t)hi - lo) >> shift) >= VPPO__TOPK_SAMPLE) ++shift;
    top = (int64_t)((uint32_t)((int64_t)hi - lo) >> shift);
    memset(hist, 0, sizeof hist);
    for (t = 0; t < s; ++t) hist[t & 1][(uint32_t)((int64_t)smp[t] - lo) >> shift] += 1;
    for (d = top; d > 0; --d) {
        c += hist[0][d] + hist[1][d];
        if (d_hi < 0 && (double)c > r - dev) d_hi = d;
        if ((double)c >= r + dev) break;
    }
    d_hi = d_hi < 0 ? d : d_hi;
    if (d_hi == top && d == 0) return 0;
    *phi = d_hi == top ? INT32_MAX : (int32_t)((int64_t)lo + ((d_hi + 1) << shift) - 1);
    *plo = d == 0 ? INT32_MIN + 1 : (int32_t)((int64_t)lo + (d << shift));
    return 1;
}

/* The first pass of a sequence of len <= VPPO__TOPK_LOCAL scores x (valid: their mask) at a
   ratio below 1: sampled scores, then the keys of the range made and kept in key at once.
   1 with *w the window of the *n_keys kept (need: the rank in it of the k-th largest of
   the *n valid) when the range holds it; 0 otherwise (key then holds nothing usable). */
static int vppo__topk_first(const vppo__select_kernels *kern, const float *x, const uint8_t *valid, int64_t len,
                            double ratio, int32_t *key, vppo__window *w, int64_t *n_keys, int64_t *n)
{
    int32_t smp[VPPO__TOPK_SAMPLE], plo, phi, lo = INT32_MAX, hi = INT32_MIN;
    int64_t t, s = 0, k;
    vppo__part o;
    for (t = 0; t < VPPO__TOPK_SAMPLE; ++t) {
        const int64_t i = t * len / VPPO__TOPK_SAMPLE;
        const int32_t key_i = vppo__key(x[i]);
        const int ok = !valid || valid[i] != 0;
        smp[s] = key_i;
        s += ok;
        lo = ok && key_i < lo ? key_i : lo;
        hi = ok && key_i > hi ? key_i : hi;
    }
    if (!vppo__sample_range(smp, s, lo, hi, ratio, &plo, &phi)) return 0;
    o.mid = o.above = o.m = 0;
    o.lo = INT32_MAX;
    o.hi = INT32_MIN;
    kern->part(x, valid, NULL, len, plo, phi, key, &o);
    *n = o.m;
    k = vppo__topk_count(o.m, ratio);
    if (!(k > o.above && k <= o.above + o.mid && k < o.m)) return 0;
    w->lo = o.lo;
    w->hi = o.hi;
    w->m = *n_keys = o.mid;
    w->need = k - o.above;
    return 1;
}

/* The need-th largest of the w.m keys in [w.lo, w.hi] among key[0..n) (the others below
   w.lo), as vppo__select_local, narrowed first by samples; if a range misses, the keys of
   the len scores x (valid: their mask) are made again and k_all, the rank among all of
   them, is sought. */
static int32_t vppo__select_sampled(const vppo__select_kernels *kern, const float *x, const uint8_t *valid,
                                    int64_t len, int64_t k_all, int32_t *key, int64_t n, vppo__window w,
                                    int64_t *n_eq, int64_t *n_take)
{
    int32_t smp[VPPO__TOPK_SAMPLE], plo, phi;
    while (w.lo < w.hi && w.m > VPPO__TOPK_FEW) {
        int64_t t, s = 0;
        vppo__part o;
        for (t = 0; t < VPPO__TOPK_SAMPLE; ++t) {
            smp[s] = key[t * n / VPPO__TOPK_SAMPLE];
            s += smp[s] >= w.lo;
        }
        if (!vppo__sample_range(smp, s, w.lo, w.hi, (double)w.need / (double)w.m, &plo, &phi)) break;
        o.mid = o.above = o.m = 0;
        o.lo = INT32_MAX;
        o.hi = INT32_MIN;
        kern->part(NULL, NULL, key, n, plo < w.lo ? w.lo : plo, phi, key, &o);
        if (w.need <= o.above || w.need > o.above + o.mid) {   /* missed: start again, without samples */
            kern->keys(x, valid, len, key, &w);
            w.need = k_all;
            n = len;
            break;
        }
        n = o.mid;
        w.need -= o.above;
        w.lo = o.lo;
        w.hi = o.hi;
        if (4 * o.mid > 3 * w.m) { w.m = o.mid; break; }   /* the keys bunch: samples narrow little */
        w.m = o.mid;
    }
    return vppo__select_local(kern, key, n, w, n_eq, n_take);
}

/* Sequences whose span is at most this many positions are selected in a local copy of
   their keys (16 KiB of stack); longer ones by passes over the scores until the window
   holds at most this many keys, which then move to the local copy. */
#define VPPO__TOPK_LOCAL 4096

/* The need-th largest valid key (1 <= need <= w.m = number of valid positions) of the len
   scores x (valid: their mask or NULL), as vppo__select_local; local: VPPO__TOPK_LOCAL keys. */
static int32_t vppo__select_scores(const vppo__select_kernels *kern, const float *x, const uint8_t *valid,
                                   int64_t len, vppo__window w, int32_t *local, int64_t *n_eq, int64_t *n_take)
{
    int64_t hist[1 << VPPO__TOPK_BITS], i, j;
    w.lo = INT32_MAX; w.hi = INT32_MIN;
    for (i = 0; i < len; ++i)
        if (!valid || valid[i]) {
            const int32_t k = vppo__key(x[i]);
            w.lo = k < w.lo ? k : w.lo;
            w.hi = k > w.hi ? k : w.hi;
        }
    while (w.lo < w.hi && w.m > VPPO__TOPK_LOCAL) {
        const int shift = vppo__window_shift(&w);
        memset(hist, 0, ((size_t)((uint32_t)((int64_t)w.hi - w.lo) >> shift) + 1) * sizeof hist[0]);
        for (i = 0; i < len; ++i) {
            const int32_t k = vppo__key(x[i]);
            if ((!valid || valid[i]) && k >= w.lo && k <= w.hi) hist[(uint32_t)((int64_t)k - w.lo) >> shift] += 1;
        }
        vppo__window_pick(&w, hist, shift);
    }
    if (w.lo == w.hi) {
        *n_eq = w.m;
        *n_take = w.need;
        return w.lo;
    }
    for (i = j = 0; i < len; ++i) {
        const int32_t k = vppo__key(x[i]);
        if ((!valid || valid[i]) && k >= w.lo && k <= w.hi) local[j++] = k;
    }
    return vppo__select_local(kern, local, j, w, n_eq, n_take);
}

/* One past the position of the n_take-th valid score whose key is t: the ties up to there
   are selected (the lower positions win). */
static int64_t vppo__tie_end(const float *x, const uint8_t *valid, int64_t len, int32_t t, int64_t n_take)
{
    int64_t i, c = 0;
    for (i = 0; i < len; ++i) {
        c += (!valid || valid[i]) && vppo__key(x[i]) == t;
        if (c == n_take) return i + 1;
    }
    return len;
}

/* What one sequence adds to vppo_topk_info; the parts are summed in sequence order. */
typedef struct vppo__topk_part {
    double sum_threshold, sum_selected, sum_rejected;
    int64_t n, k, n_thresholds, n_sel_finite, n_rej_finite;
} vppo__topk_part;

/* The arguments of one top-k call. */
typedef struct vppo__topk_job {
    const vppo_seqs *s; const float *score; double ratio; uint8_t *select;
    const vppo__select_kernels *kern;
} vppo__topk_job;

/* The mask of sequence b (scores already checked for NaN) and its part of the info
   (a vppo__seq_fn: job is a vppo__topk_job, part a vppo__topk_part). With t the k-th
   largest key, the mask is key > t - 1 (key >= t) up to the last tie taken and key > t
   after it, both by the mask kernel. */
static void vppo__topk_seq(const void *job, int64_t b, void *part)
{
    const vppo__topk_job *j = (const vppo__topk_job *)job;
    const vppo_seqs *s = j->s;
    const int64_t lo = s->offsets[b], len = s->offsets[b + 1] - lo;
    const float *x = j->score + lo;
    const uint8_t *valid = s->mask ? s->mask + lo : NULL;
    uint8_t *select = j->select + lo;
    vppo__topk_part *p = (vppo__topk_part *)part;
    int32_t local[VPPO__TOPK_LOCAL], thr = INT32_MAX;
    int64_t n = 0, cut = 0, n_keys = len;
    int narrowed = 0;
    vppo__topk_acc acc;
    vppo__window w;
    memset(p, 0, sizeof *p);
    memset(&acc, 0, sizeof acc);
    w.lo = INT32_MAX;
    w.hi = INT32_MIN;
    if (len <= VPPO__TOPK_LOCAL && j->ratio < 1.0 && len > VPPO__TOPK_FEW)
        narrowed = vppo__topk_first(j->kern, x, valid, len, j->ratio, local, &w, &n_keys, &n);
    if (narrowed) {
        /* w: the window of the n_keys keys in local that the first pass kept; n: all valid */
    } else if (len > VPPO__TOPK_LOCAL && j->ratio >= 1.0) {   /* the least valid key: by the keys kernel in chunks */
        int64_t a;
        for (a = 0; a < len; a += VPPO__TOPK_LOCAL) {
            vppo__window c;
            j->kern->keys(x + a, valid ? valid + a : NULL, vppo__min64(VPPO__TOPK_LOCAL, len - a), local, &c);
            n += c.m;
            w.lo = c.lo < w.lo ? c.lo : w.lo;
        }
    } else if (len > VPPO__TOPK_LOCAL) {
        n = vppo__count_valid(s, b);
    } else {
        j->kern->keys(x, valid, len, local, &w);
        n = w.m;
    }
    p->n = n;
    p->k = vppo__topk_count(n, j->ratio);
    if (p->k > 0) {
        int64_t n_eq = 1, n_take = 1;
        if (!narrowed) {
            w.m = n;
            w.need = p->k;
        }
        if (p->k == n && (len <= VPPO__TOPK_LOCAL || j->ratio >= 1.0))
            thr = w.lo;   /* all valid taken (ratio 1): the least key, with every tie of it */
        else if (len > VPPO__TOPK_LOCAL)
            thr = vppo__select_scores(j->kern, x, valid, len, w, local, &n_eq, &n_take);
        else
            thr = vppo__select_sampled(j->kern, x, valid, len, p->k, local, n_keys, w, &n_eq, &n_take);
        if (vppo__finite(vppo__unkey(thr))) {
            p->sum_threshold = vppo__unkey(thr);
            p->n_thresholds = 1;
        }
        cut = n_take < n_eq ? vppo__tie_end(x, valid, len, thr, n_take) : len;
        j->kern->mask(x, valid, 0, cut, thr - 1, select, &acc);
    }
    j->kern->mask(x, valid, cut, len, thr, select, &acc);
    p->sum_selected = vppo__sum16(acc.sel);
    p->sum_rejected = vppo__sum16(acc.rej);
    p->n_sel_finite = acc.n_sel;
    p->n_rej_finite = acc.n_rej;
}

/* Does x hold a NaN at a valid position? (in chunks, OpenMP over them) */
#define VPPO__NAN_CHUNK 16384
static int vppo__has_nan(const vppo_seqs *s, const float *x)
{
    const vppo__select_kernels *kern = vppo__select_kernels_active();
    const int64_t lo = s->offsets[0], hi = s->offsets[s->n_seqs];
    const int64_t n_chunks = (hi - lo + VPPO__NAN_CHUNK - 1) / VPPO__NAN_CHUNK;
    int64_t c;
    int bad = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(|:bad) if (hi - lo >= VPPO__OMP_MIN_WORK)
#endif
    for (c = 0; c < n_chunks; ++c) {
        const int64_t a = lo + c * VPPO__NAN_CHUNK, e = vppo__min64(hi, a + VPPO__NAN_CHUNK);
        bad |= kern->nan(x + a, s->mask ? s->mask + a : NULL, e - a);
    }
    return bad;
}

static void vppo__topk_job_init(vppo__topk_job *j, const vppo_seqs *s, const float *score, double ratio,
                                uint8_t *select)
{
    j->s = s; j->score = score; j->ratio = ratio; j->select = select; j->kern = vppo__select_kernels_active();
}

/* Runs fn (vppo__topk_seq, or a function that calls it last) on every sequence of s in
   blocks of VPPO__SEQ_BLOCK (OpenMP over the sequences of a block) and sums the parts in
   sequence order into info (may be NULL). */
static void vppo__topk_blocks(const vppo_seqs *s, vppo__seq_fn fn, const void *job, vppo_topk_info *info)
{
    int64_t b0, i, n_valid = 0, n_selected = 0, n_thresholds = 0, n_sel_finite = 0, n_rej_finite = 0;
    double sum_threshold = 0.0, sum_selected = 0.0, sum_rejected = 0.0;
    for (b0 = 0; b0 < s->n_seqs; b0 += VPPO__SEQ_BLOCK) {
        vppo__topk_part part[VPPO__SEQ_BLOCK];
        const int64_t nb = vppo__min64(VPPO__SEQ_BLOCK, s->n_seqs - b0);
        vppo__seq_block(s, b0, nb, fn, job, part, sizeof part[0]);
        for (i = 0; i < nb; ++i) {
            sum_threshold += part[i].sum_threshold;
            n_thresholds += part[i].n_thresholds;
            sum_selected += part[i].sum_selected;
            n_sel_finite += part[i].n_sel_finite;
            sum_rejected += part[i].sum_rejected;
            n_rej_finite += part[i].n_rej_finite;
            n_valid += part[i].n;
            n_selected += part[i].k;
        }
    }
    if (info) {
        info->n_valid = n_valid;
        info->n_selected = n_selected;
        info->threshold_mean = n_thresholds > 0 ? sum_threshold / (double)n_thresholds : 0.0;
        info->mean_selected = n_sel_finite > 0 ? sum_selected / (double)n_sel_finite : 0.0;
        info->mean_rejected = n_rej_finite > 0 ? sum_rejected / (double)n_rej_finite : 0.0;
    }
}

/* The mask and info of scores already checked (no NaN at a valid position). */
static void vppo__topk_run(const vppo_seqs *s, const float *score, double ratio, uint8_t *select,
                           vppo_topk_info *info)
{
    vppo__topk_job j;
    vppo__topk_job_init(&j, s, score, ratio, select);
    vppo__topk_blocks(s, vppo__topk_seq, &j, info);
}

VPPODEF vppo_status vppo_topk_mask(const vppo_seqs *s, const float *score, double ratio,
    uint8_t *select, vppo_topk_info *info)
{
    vppo_status st = vppo__check_seqs(s);
    if (st != VPPO_OK) return st;
    if (!score || !select) return VPPO_ERR_NULL;
    if (!(ratio >= 0.0 && ratio <= 1.0)) return VPPO_ERR_PARAM;
    if (vppo__has_nan(s, score)) return VPPO_ERR_NONFINITE;
    vppo__topk_run(s, score, ratio, select, info);
    return VPPO_OK;
}

/* The soft mask's sums at c over sequence b's valid scores, z = (x - mean) inv - c:
   sum sigmoid(z) (returned) and sum sigmoid'(z) = s (1 - s) (*slope); one exp per score. */
static double vppo__soft_sums(const vppo_seqs *s, const float *score, int64_t b, double mean, double inv,
                              double c, double *slope)
{
    double f = 0.0, d = 0.0;
    int64_t t;
    for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
        if (vppo__valid(s, t)) {
            const double z = (score[t] - mean) * inv - c, e = exp(-fabs(z)), r = 1.0 / (1.0 + e);
            f += z >= 0.0 ? r : e * r;
            d += e * r * r;
        }
    *slope = d;
    return f;
}

/* The arguments of one soft-mask call. */
typedef struct vppo__soft_job { const vppo_seqs *s; const float *score; double ratio; float *weight; } vppo__soft_job;

/* The weights of sequence b (a vppo__seq_fn; no part). c is bracketed as in plain
   bisection, [lo, hi] holding the root and shrinking to 1e-7, but the next point is
   Newton's (f' = -sum s (1 - s) / n) where it falls inside the bracket and at least halves
   the previous step, else the midpoint; once Newton's step is below 5e-8 the point goes
   4e-8 past it, so that the root is caught between two points less than 1e-7 apart.
   Typically 5 to 8 passes over the scores instead of bisection's 25 to 30; the answer
   is the same kind (the midpoint of a bracket of width <= 1e-7). */
static void vppo__soft_seq(const void *job, int64_t b, void *part)
{
    const vppo__soft_job *j = (const vppo__soft_job *)job;
    const vppo_seqs *s = j->s;
    const float *score = j->score;
    const double ratio = j->ratio;
    float *weight = j->weight;
    const int64_t n = vppo__count_valid(s, b);
    double mean = 0.0, var = 0.0, inv, zmin = VPPO__INF, zmax = -VPPO__INF, lo, hi, logit, c, step_old = VPPO__INF;
    int64_t t;
    int iter;
    (void)part;
    for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
        if (vppo__valid(s, t)) mean += score[t];
    mean = n > 0 ? mean / (double)n : 0.0;
    for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
        if (vppo__valid(s, t)) var += (score[t] - mean) * (score[t] - mean);
    inv = 1.0 / (sqrt(n > 0 ? var / (double)n : 0.0) + 1e-6);
    for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
        if (vppo__valid(s, t)) {
            double z = (score[t] - mean) * inv;
            if (z < zmin) zmin = z;
            if (z > zmax) zmax = z;
        }
    if (n == 0 || ratio == 0.0 || ratio == 1.0) {
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
            weight[t] = (float)(vppo__valid(s, t) && ratio == 1.0);
        return;
    }
    /* f(c) = mean sigmoid(z - c) falls with c; sigmoid(zmin - c) <= f <= sigmoid(zmax - c)
       brackets the root between zmin - logit(ratio) and zmax - logit(ratio). */
    logit = log(ratio / (1.0 - ratio));
    lo = zmin - logit;
    hi = zmax - logit;
    c = vppo__clamp(-logit, lo, hi);   /* the root when every z is 0 (z has mean 0) */
    for (iter = 0; iter < 200 && hi - lo > 1e-7; ++iter) {
        double slope, f = vppo__soft_sums(s, score, b, mean, inv, c, &slope) / (double)n, step, next;
        if (f > ratio) lo = c;
        else hi = c;
        step = (f - ratio) / (slope / (double)n);
        if (step > -5e-8 && step < 5e-8) step += step >= 0.0 ? 4e-8 : -4e-8;
        next = c + step;
        if (!(next > lo && next < hi) || !(fabs(step) <= 0.5 * step_old)) next = 0.5 * (lo + hi);
        step_old = fabs(next - c);
        c = next;
    }
    c = 0.5 * (lo + hi);
    for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
        if (vppo__valid(s, t)) {
            const double z = (score[t] - mean) * inv - c, e = exp(-fabs(z)), r = 1.0 / (1.0 + e);
            weight[t] = (float)(z >= 0.0 ? r : e * r);
        } else {
            weight[t] = 0.0f;
        }
}

VPPODEF vppo_status vppo_soft_mask(const vppo_seqs *s, const float *score, double ratio, float *weight)
{
    int64_t b0;
    vppo__soft_job j;
    vppo_status st = vppo__check_seqs(s);
    if (st != VPPO_OK) return st;
    if (!score || !weight) return VPPO_ERR_NULL;
    if (!(ratio >= 0.0 && ratio <= 1.0)) return VPPO_ERR_PARAM;
    if ((st = vppo__check_values(s, score, 0)) != VPPO_OK) return st;
    j.s = s; j.score = score; j.ratio = ratio; j.weight = weight;
    for (b0 = 0; b0 < s->n_seqs; b0 += VPPO__SEQ_BLOCK) {
        char none[VPPO__SEQ_BLOCK];
        vppo__seq_block(s, b0, vppo__min64(VPPO__SEQ_BLOCK, s->n_seqs - b0), vppo__soft_seq, &j, none, 1);
    }
    return VPPO_OK;
}

/* ===================================================== the policy objective == */

VPPODEF vppo_loss_config vppo_loss_config_default(void)
{
    vppo_loss_config c;
    c.clip_low = 0.2f;
    c.clip_high = 0.28f;
    c.clip_dual = 3.0f;
    c.pg_kind = VPPO_PG_CLIP;
    c.ratio_level = VPPO_RATIO_TOKEN;
    c.agg = VPPO_AGG_TOKEN_MEAN;
    c.agg_norm = 1.0;
    c.kl_kind = VPPO_KL_NONE;
    c.kl_coef = 0.0f;
    c.entropy_coef = 0.06f;
    c.denom = 0.0;
    return c;
}

static vppo_status vppo__check_loss_config(const vppo_loss_config *c)
{
    if (!c) return VPPO_ERR_NULL;
    if (!(c->clip_low >= 0.0f && c->clip_low <= 1.0f)) return VPPO_ERR_PARAM;
    if (!(c->clip_high >= 0.0f) || !vppo__finite(c->clip_high)) return VPPO_ERR_PARAM;
    if (!(c->clip_dual == 0.0f || (c->clip_dual > 1.0f && vppo__finite(c->clip_dual)))) return VPPO_ERR_PARAM;
    if (!vppo__enum_in((int)c->pg_kind, VPPO_PG_CLIP, VPPO_PG_CISPO)) return VPPO_ERR_PARAM;
    if (!vppo__enum_in((int)c->ratio_level, VPPO_RATIO_TOKEN, VPPO_RATIO_SEQ_TOKEN))
        return VPPO_ERR_PARAM;
    if (!vppo__enum_in((int)c->agg, VPPO_AGG_TOKEN_MEAN, VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM))
        return VPPO_ERR_PARAM;
    if (c->agg == VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM && !(c->agg_norm > 0.0 && vppo__finite(c->agg_norm)))
        return VPPO_ERR_PARAM;
    if (!vppo__enum_in((int)c->kl_kind, VPPO_KL_NONE, VPPO_KL_K3)) return VPPO_ERR_PARAM;
    if (!(c->kl_coef >= 0.0f) || !vppo__finite(c->kl_coef)) return VPPO_ERR_PARAM;
    if (!vppo__finite(c->entropy_coef)) return VPPO_ERR_PARAM;
    if (!(c->denom >= 0.0) || !vppo__finite(c->denom)) return VPPO_ERR_PARAM;
    return VPPO_OK;
}

/* The argument checks of vppo_policy_loss that read no per-token array (read_offsets: as
   in vppo__check_seqs_in). check_adv = 0 skips adv, which vppo_step computes itself. */
static vppo_status vppo__check_loss_args(const vppo_loss_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_old, const float *logp_ref, const float *adv,
    const vppo_loss_out *out, int check_adv, int read_offsets)
{
    vppo_status st;
    if ((st = vppo__check_loss_config(cfg)) != VPPO_OK) return st;
    if ((st = vppo__check_seqs_in(s, read_offsets)) != VPPO_OK) return st;
    if (!logp || !logp_old || !out || (check_adv && !adv)) return VPPO_ERR_NULL;
    if (cfg->kl_kind != VPPO_KL_NONE && !logp_ref) return VPPO_ERR_NULL;
    return VPPO_OK;
}

/* The per-token checks of the loss's inputs into slots from, from + 1, ... of c, reporting
   group: logp, logp_old, logp_ref (with a KL term), adv and weight (when not NULL) finite. */
static void vppo__loss_checks(const vppo_loss_config *cfg, const float *logp, const float *logp_old,
    const float *logp_ref, const float *adv, const float *weight, vppo__on_check *c, int from, int group)
{
    vppo__on_check_add(c, from++, logp, 0, group);
    vppo__on_check_add(c, from++, logp_old, 0, group);
    if (cfg->kl_kind != VPPO_KL_NONE) vppo__on_check_add(c, from++, logp_ref, 0, group);
    if (adv) vppo__on_check_add(c, from++, adv, 0, group);
    if (weight) vppo__on_check_add(c, from, weight, 0, group);
}

/* Pointer and per-token checks of vppo_policy_loss (one pass over its arrays). */
static vppo_status vppo__check_loss_inputs(const vppo_loss_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_old, const float *logp_ref, const float *adv,
    const float *weight, const vppo_loss_out *out)
{
    vppo__on_check c;
    vppo_status st;
    if ((st = vppo__check_loss_args(cfg, s, logp, logp_old, logp_ref, adv, out, 1, 1)) != VPPO_OK) return st;
    memset(&c, 0, sizeof c);
    vppo__loss_checks(cfg, logp, logp_old, logp_ref, adv, weight, &c, 0, 1);
    return vppo__on_check_run(s, &c) ? VPPO_ERR_NONFINITE : VPPO_OK;
}

/* The KL penalty term of one token and its derivative in logp (k = logp - logp_ref). */
static VPPO_HD double vppo__kl_term(vppo_kl_kind kind, double k, double *grad)
{
    double x, raw;
    switch (kind) {
    case VPPO_KL_K1:  *grad = 1.0; return k;
    case VPPO_KL_ABS: *grad = k > 0.0 ? 1.0 : (k < 0.0 ? -1.0 : 0.0); return fabs(k);
    case VPPO_KL_K2:  *grad = k; return 0.5 * k * k;
    case VPPO_KL_K3:
        x = vppo__clamp(-k, -20.0, 20.0);
        raw = expm1(x) - x;                               /* exp(x) - x - 1 >= 0 */
        *grad = (-k > -20.0 && -k < 20.0 && raw < 10.0) ? -expm1(x) : 0.0;
        return vppo__clamp(raw, -10.0, 10.0);
    case VPPO_KL_NONE: break;
    }
    *grad = 0.0;
    return 0.0;
}

/* Everything of one token that does not depend on the rest of its sequence. */
typedef struct vppo__token {
    double pg;        /* w * l */
    double dpg;       /* w * dl/drho (PG_CLIP) or w * dl/dlogp (PG_CISPO) */
    double kl, dkl;   /* KL term and d/dlogp */
    int clipped, clipped_dual, selected;
} vppo__token;

/* The clip bounds of a configuration, in log space and as ratios: computed once per call
   on the CPU (vppo__token_add, the device's entry, computes them per token). */
typedef struct vppo__clip { double log_lo, log_hi, r_lo, r_hi; } vppo__clip;

static VPPO_HD vppo__clip vppo__clip_of(const vppo_loss_config *cfg)
{
    vppo__clip c;
    c.log_lo = log1p(-(double)cfg->clip_low);
    c.log_hi = log1p((double)cfg->clip_high);
    c.r_lo = exp(c.log_lo);
    c.r_hi = exp(c.log_hi);
    return c;
}

static VPPO_HD void vppo__token_terms(const vppo_loss_config *cfg, const vppo__clip *clip, double rho,
                                      double logp, double adv, double w, double k_ref, vppo__token *tk)
{
    const double dual = cfg->clip_dual;
    const double r = exp(vppo__clamp(rho, -20.0, 20.0));
    /* exp(clamp(rho, log_lo, log_hi)), with the exps of the bounds and of rho reused */
    const double rhat = rho < clip->log_lo ? clip->r_lo : rho > clip->log_hi ? clip->r_hi
                      : rho >= -20.0 && rho <= 20.0 ? r : exp(rho);
    const double L1 = -adv * r, L2 = -adv * rhat, L3 = -adv * dual, H = vppo__max(L1, L2);
    const int dual_on = adv < 0.0 && dual > 0.0;
    tk->clipped = L1 < L2;
    tk->clipped_dual = dual_on && H > L3;
    tk->selected = w != 0.0;
    if (cfg->pg_kind == VPPO_PG_CISPO) {
        tk->pg = w * (-adv * rhat * logp);
        tk->dpg = w * (-adv * rhat);
    } else {
        const int l1_taken = !tk->clipped_dual && L1 >= L2;
        tk->pg = w * (tk->clipped_dual ? L3 : H);
        tk->dpg = (l1_taken && rho > -20.0 && rho < 20.0) ? w * (-adv * r) : 0.0;
    }
    tk->kl = vppo__kl_term(cfg->kl_kind, k_ref, &tk->dkl);
}

/* Sums over tokens: of one sequence (pg, kl, ent unweighted), or of the batch (pg, kl, ent
   weighted by each sequence's coefficient; dpg unused). */
typedef struct vppo__loss_sums {
    double pg, kl, ent, dpg, ppo_kl;
    int64_t n_clip, n_clip_dual, n_selected;
} vppo__loss_sums;

/* Valid token t: its terms into tk, added to *sum; rho is *mean_delta for sequence-level
   ratios (mean_delta not NULL), else its own log-ratio. */
static VPPO_HD void vppo__token_add_at(const vppo_loss_config *cfg, const vppo__clip *clip, const float *logp,
    const float *logp_old, const float *logp_ref, const float *adv, const uint8_t *select, const float *weight,
    int64_t t, const double *mean_delta, vppo__token *tk, vppo__loss_sums *sum)
{
    const double delta = (double)logp[t] - (double)logp_old[t];
    const double w = (select ? (double)(select[t] != 0) : 1.0) * (weight ? (double)weight[t] : 1.0);
    const double k_ref = cfg->kl_kind != VPPO_KL_NONE ? (double)logp[t] - (double)logp_ref[t] : 0.0;
    vppo__token_terms(cfg, clip, mean_delta ? *mean_delta : delta, logp[t], adv[t], w, k_ref, tk);
    sum->pg += tk->pg;
    sum->kl += tk->kl;
    sum->ent += -(double)logp[t];
    sum->dpg += tk->dpg;
    sum->ppo_kl += -delta;
    sum->n_clip += tk->clipped;
    sum->n_clip_dual += tk->clipped_dual;
    sum->n_selected += tk->selected;
}

/* vppo__token_add_at with the clip bounds of cfg: the device's per-token entry (vppo_cuda.cu);
   unused by the CPU path. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((unused))
#endif
static VPPO_HD void vppo__token_add(const vppo_loss_config *cfg, const float *logp, const float *logp_old,
    const float *logp_ref, const float *adv, const uint8_t *select, const float *weight, int64_t t,
    const double *mean_delta, vppo__token *tk, vppo__loss_sums *sum)
{
    const vppo__clip clip = vppo__clip_of(cfg);
    vppo__token_add_at(cfg, &clip, logp, logp_old, logp_ref, adv, select, weight, t, mean_delta, tk, sum);
}

/* The gradient in logp of a token of a sequence with coefficient coef. */
VPPO__DEVICE_ONLY static VPPO_HD double vppo__token_grad(const vppo_loss_config *cfg, double coef, double dpg, double dkl)
{
    return coef * (dpg + (double)cfg->kl_coef * dkl - (double)cfg->entropy_coef);
}

/* agg(x) = sum_b m_b sum_{t in b} x / divisor, with m_b = 1/n_b for seq-mean-token-mean */
static VPPO_HD double vppo__loss_divisor(const vppo_loss_config *cfg, int64_t n_total, int64_t n_seqs)
{
    double divisor;
    if (cfg->agg == VPPO_AGG_TOKEN_MEAN) divisor = cfg->denom > 0.0 ? cfg->denom : (double)n_total;
    else divisor = cfg->denom > 0.0 ? cfg->denom : (double)n_seqs;
    if (cfg->agg == VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM) divisor *= cfg->agg_norm;
    return divisor;
}

static VPPO_HD double vppo__seq_coef(const vppo_loss_config *cfg, int64_t n, double divisor)
{
    return (cfg->agg == VPPO_AGG_SEQ_MEAN_TOKEN_MEAN ? 1.0 / (double)n : 1.0) / divisor;
}

/* *out from the batch sums; 0 when its loss is finite, else 1 (a divisor near 0). */
static VPPO_HD int vppo__loss_out_fill(vppo_loss_out *out, const vppo_loss_config *cfg, const vppo__loss_sums *tot,
                                       int64_t n_total)
{
    out->pg_loss = tot->pg;
    out->kl_loss = tot->kl;
    out->entropy_loss = tot->ent;
    out->loss = tot->pg + (double)cfg->kl_coef * tot->kl + (double)cfg->entropy_coef * tot->ent;
    out->clipfrac = n_total ? (double)tot->n_clip / (double)n_total : 0.0;
    out->clipfrac_dual = n_total ? (double)tot->n_clip_dual / (double)n_total : 0.0;
    out->ppo_kl = n_total ? tot->ppo_kl / (double)n_total : 0.0;
    out->n_valid = n_total;
    out->n_selected = tot->n_selected;
    return !vppo__finite(out->loss);
}

/* dlogp[t] = g; the gradient can leave the float range only for absurd inputs
   (advantages around 1e29 and beyond), which *overflow records. */
VPPO__DEVICE_ONLY static VPPO_HD void vppo__store_grad(float *dlogp, int64_t t, double g, int *overflow)
{
    if (!(fabs(g) <= FLT_MAX)) *overflow = 1;   /* NaN too: 0 * (1 / a denormal divisor) */
    dlogp[t] = (float)g;
}

/* One sequence's part of the batch: its sums, its coefficient in the aggregation, and
   whether one of its gradients left the float range. */
typedef struct vppo__loss_part { vppo__loss_sums sum; double coef; int overflow; } vppo__loss_part;

/* The loss inputs of one call, as the per-sequence pass reads them: the kernels' arguments
   (on: the arrays and the call's constants) and the kernels. */
typedef struct vppo__loss_job {
    const vppo_loss_config *cfg;
    const vppo_seqs *s;
    const vppo__on_kernels *k;
    vppo__on_loss on;
    double divisor;
} vppo__loss_job;

/* Sequence b: its part into *part, its gradient into dlogp (when asked); a vppo__seq_fn
   (job is a vppo__loss_job, part_ a vppo__loss_part). The per-token terms are the kernels'
   loss (vppo__token_add_at is the device's and the reference's form of the same rules). */
static void vppo__loss_seq(const void *job, int64_t b, void *part_)
{
    const vppo__loss_job *j = (const vppo__loss_job *)job;
    vppo__loss_part *part = (vppo__loss_part *)part_;
    const vppo_loss_config *cfg = j->cfg;
    const vppo_seqs *s = j->s;
    const int64_t t0 = s->offsets[b], t1 = s->offsets[b + 1];
    const int spread = cfg->ratio_level == VPPO_RATIO_SEQ && cfg->pg_kind == VPPO_PG_CLIP;
    const int64_t n = vppo__count_valid(s, b);
    vppo__on_loss L = j->on;
    double sums[VPPO__ON_NSUMS];
    memset(part, 0, sizeof *part);
    if (n == 0) {
        if (L.dlogp) memset(L.dlogp + t0, 0, (size_t)(t1 - t0) * sizeof *L.dlogp);
        return;
    }
    L.coef = part->coef = vppo__seq_coef(cfg, n, j->divisor);
    if (L.seq_rho) L.rho = j->k->map(L.logp, L.logp_old, s->mask, t0, t1, VPPO__ON_SUM, NULL) / (double)n;
    if (spread) L.dlogp = NULL;
    part->overflow = j->k->loss(&L, t0, t1, sums);
    part->sum.pg = sums[VPPO__ON_PG];
    part->sum.kl = sums[VPPO__ON_KL];
    part->sum.ent = sums[VPPO__ON_ENT];
    part->sum.dpg = sums[VPPO__ON_DPG];
    part->sum.ppo_kl = sums[VPPO__ON_PPO_KL];
    part->sum.n_clip = (int64_t)sums[VPPO__ON_CLIP];
    part->sum.n_clip_dual = (int64_t)sums[VPPO__ON_CLIP_DUAL];
    part->sum.n_selected = (int64_t)sums[VPPO__ON_SEL];
    if (spread && j->on.dlogp) {     /* GSPO: drho/dlogp_u = 1/n_b for every valid u of b */
        L.dlogp = j->on.dlogp;
        L.fixed_dpg = 1;
        L.dpg = part->sum.dpg / (double)n;
        part->overflow = j->k->loss(&L, t0, t1, sums);
    }
}

static vppo_status vppo__policy_loss_run(const vppo_loss_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_old, const float *logp_ref, const float *adv,
    const uint8_t *select, const float *weight, float *dlogp, vppo_loss_out *out)
{
    int64_t b, b0, i, n_total = 0;
    vppo__loss_sums tot;
    int overflow = 0;
    vppo__loss_job j;
    const vppo__clip clip = vppo__clip_of(cfg);

    memset(&tot, 0, sizeof tot);
    memset(&j, 0, sizeof j);
    for (b = 0; b < s->n_seqs; ++b) n_total += vppo__count_valid(s, b);
    j.cfg = cfg; j.s = s; j.k = vppo__on_active();
    j.on.logp = logp; j.on.logp_old = logp_old; j.on.logp_ref = logp_ref; j.on.adv = adv; j.on.weight = weight;
    j.on.mask = s->mask; j.on.select = select; j.on.dlogp = dlogp;
    j.on.log_lo = clip.log_lo; j.on.log_hi = clip.log_hi; j.on.r_lo = clip.r_lo; j.on.r_hi = clip.r_hi;
    j.on.dual = cfg->clip_dual; j.on.kl_coef = cfg->kl_coef; j.on.ent_coef = cfg->entropy_coef;
    j.on.pg_kind = (int)cfg->pg_kind; j.on.kl_kind = (int)cfg->kl_kind;
    j.on.seq_rho = cfg->ratio_level != VPPO_RATIO_TOKEN;
    j.on.far = clip.log_lo < -20.0 || clip.log_hi > 20.0;   /* exp(rho) beyond the clamp can be needed */
    j.divisor = vppo__loss_divisor(cfg, n_total, s->n_seqs);
    /* The common case's float path (vppo__<I>_on_lossf) where its per-token error bound
       (docs/spec.md §12) carries to the loss: the sequences' coefficients times their
       token counts sum to at most 1 (so every coefficient is at most 1), and no token it
       takes can be dual-clipped (|rho| <= VPPO__LF_RMAX < log 1.5). */
    j.on.fast = (double)(cfg->agg == VPPO_AGG_SEQ_MEAN_TOKEN_MEAN ? s->n_seqs : n_total) <= j.divisor &&
                (cfg->clip_dual == 0.0f || cfg->clip_dual >= 1.5f);

    for (b0 = 0; b0 < s->n_seqs; b0 += VPPO__SEQ_BLOCK) {
        vppo__loss_part part[VPPO__SEQ_BLOCK];
        const int64_t nb = vppo__min64(VPPO__SEQ_BLOCK, s->n_seqs - b0);
        vppo__seq_block(s, b0, nb, vppo__loss_seq, &j, part, sizeof part[0]);
        for (i = 0; i < nb; ++i) {       /* in sequence order: the same bits for any thread count */
            tot.pg += part[i].coef * part[i].sum.pg;
            tot.kl += part[i].coef * part[i].sum.kl;
            tot.ent += part[i].coef * part[i].sum.ent;
            tot.ppo_kl += part[i].sum.ppo_kl;
            tot.n_clip += part[i].sum.n_clip;
            tot.n_clip_dual += part[i].sum.n_clip_dual;
            tot.n_selected += part[i].sum.n_selected;
            overflow |= part[i].overflow;
        }
    }
    overflow |= vppo__loss_out_fill(out, cfg, &tot, n_total);   /* a divisor (denom, agg_norm) near 0 */
    return overflow ? VPPO_ERR_NONFINITE : VPPO_OK;
}

VPPODEF vppo_status vppo_policy_loss(const vppo_loss_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_old, const float *logp_ref,
    const float *adv, const uint8_t *select, const float *weight,
    float *dlogp, vppo_loss_out *out)
{
    vppo_status st = vppo__check_loss_inputs(cfg, s, logp, logp_old, logp_ref, adv, weight, out);
    if (st != VPPO_OK) return st;
    return vppo__policy_loss_run(cfg, s, logp, logp_old, logp_ref, adv, select, weight, dlogp, out);
}

/* ======================================================= rollout correction == */

VPPODEF vppo_rc_config vppo_rc_config_default(void)
{
    vppo_rc_config c;
    c.is_mode = VPPO_RC_IS_TRUNCATE;
    c.is_level = VPPO_RC_TOKEN;
    c.is_upper = 2.0;
    c.is_lower = 0.0;
    c.is_batch_normalize = 0;
    c.rs_kind = VPPO_RC_RS_NONE;
    c.rs_level = VPPO_RC_TOKEN;
    c.rs_upper = 0.0;
    c.rs_lower = 0.0;
    return c;
}

/* The rc enums start at 0: one unsigned comparison checks both ends (a negative value wraps
   around), and stays meaningful where enums are short and unsigned (no -Wtype-limits). */
static int vppo__rc_level_ok(vppo_rc_level v) { return (unsigned)v <= (unsigned)VPPO_RC_SEQ_MAX; }
static int vppo__positive(double x) { return x > 0.0 && vppo__finite(x); }
/* A lower bound: 0 (the reciprocal of upper is meant) or finite in (0, upper]. */
static int vppo__rc_lower_ok(double lower, double upper) { return lower == 0.0 || (vppo__positive(lower) && lower <= upper); }
static VPPO_HD double vppo__rc_lower(double lower, double upper) { return lower > 0.0 ? lower : 1.0 / upper; }

/* The config's domain (vppo_rollout_correction's first check; vppo_cuda.cu's too). */
static vppo_status vppo__check_rc_config(const vppo_rc_config *c)
{
    if (!c) return VPPO_ERR_NULL;
    if ((unsigned)c->is_mode > (unsigned)VPPO_RC_IS_MASK) return VPPO_ERR_PARAM;
    if (c->is_mode != VPPO_RC_IS_NONE) {
        if (!vppo__rc_level_ok(c->is_level) || c->is_level == VPPO_RC_SEQ_MAX) return VPPO_ERR_PARAM;
        if (!vppo__positive(c->is_upper) || !vppo__rc_lower_ok(c->is_lower, c->is_upper)) return VPPO_ERR_PARAM;
        if (c->is_mode == VPPO_RC_IS_MASK && c->is_lower == 0.0) return VPPO_ERR_PARAM;
    }
    if ((unsigned)c->rs_kind > (unsigned)VPPO_RC_RS_K3) return VPPO_ERR_PARAM;
    if (c->rs_kind != VPPO_RC_RS_NONE) {
        if (!vppo__rc_level_ok(c->rs_level) || !vppo__positive(c->rs_upper)) return VPPO_ERR_PARAM;
        if (c->rs_kind == VPPO_RC_RS_K1 &&
            (c->rs_level == VPPO_RC_SEQ_MAX || !vppo__rc_lower_ok(c->rs_lower, c->rs_upper))) return VPPO_ERR_PARAM;
    }
    return VPPO_OK;
}

/* The rejection statistic of one token from its log-ratio l (verl's k1, k2, k3). */
static VPPO_HD double vppo__rc_stat(vppo_rc_rs kind, double l)
{
    const double lc = vppo__clamp(l, -20.0, 20.0);
    switch (kind) {
    case VPPO_RC_RS_K1: return -lc;
    case VPPO_RC_RS_K2: return 0.5 * lc * lc;
    case VPPO_RC_RS_K3: return expm1(lc) - lc;
    case VPPO_RC_RS_NONE: break;
    }
    return 0.0;
}

/* One sequence's sums over its valid tokens, which the sequence levels aggregate. The
   functions below, down to vppo__rc_out_fill, run on the CPU and in vppo_cuda.cu. */
typedef struct vppo__rc_seq {
    int64_t n;
    double sum_l, sum_stat, max_stat;   /* of l and of the rejection statistic */
    double sum_logp, sum_logp_rollout;
} vppo__rc_seq;

static VPPO_HD void vppo__rc_seq_init(vppo__rc_seq *q)
{
    q->n = 0;
    q->sum_l = q->sum_stat = q->sum_logp = q->sum_logp_rollout = 0.0;
    q->max_stat = -VPPO__INF;
}

static VPPO_HD void vppo__rc_seq_add(const vppo_rc_config *c, vppo__rc_seq *q, float logp, float logp_rollout)
{
    const double l = (double)logp - (double)logp_rollout, stat = vppo__rc_stat(c->rs_kind, l);
    q->n += 1;
    q->sum_l += l;
    q->sum_stat += stat;
    if (stat > q->max_stat) q->max_stat = stat;
    q->sum_logp += logp;
    q->sum_logp_rollout += logp_rollout;
}

/* The level's aggregate for a token: its own x, or its sequence's sum, mean or max. */
static VPPO_HD double vppo__rc_aggregate(vppo_rc_level level, double x, double sum, double max, int64_t n)
{
    switch (level) {
    case VPPO_RC_TOKEN:    return x;
    case VPPO_RC_SEQ_SUM:  return sum;
    case VPPO_RC_SEQ_MEAN: return sum / (double)n;
    case VPPO_RC_SEQ_MAX:  return max;
    }
    return x;
}

/* The ratio of an aggregated log-ratio L, and its importance weight (before batch
   normalization). */
static VPPO_HD double vppo__rc_ratio(double L) { return exp(vppo__clamp(L, -20.0, 20.0)); }
static VPPO_HD double vppo__rc_weight(const vppo_rc_config *c, double ratio)
{
    switch (c->is_mode) {
    case VPPO_RC_IS_TRUNCATE: return ratio < c->is_upper ? ratio : c->is_upper;
    case VPPO_RC_IS_MASK:     return (ratio >= c->is_lower && ratio <= c->is_upper) ? ratio : 0.0;
    case VPPO_RC_IS_NONE:     break;
    }
    return 1.0;
}

static VPPO_HD int vppo__rc_keep(const vppo_rc_config *c, double stat)
{
    if (c->rs_kind == VPPO_RC_RS_NONE) return 1;
    if (c->rs_kind == VPPO_RC_RS_K1)
        return stat >= log(vppo__rc_lower(c->rs_lower, c->rs_upper)) && stat <= log(c->rs_upper);
    return stat <= c->rs_upper;
}

/* The sums behind the metrics, over one sequence or the batch. */
typedef struct vppo__rc_sums {
    int64_t n, kept;                            /* valid and kept tokens */
    double w, w2, w_min, w_max, high, low;      /* weights; ratios beyond the IS bounds */
    double stat, stat_min, stat_max;            /* the rejection statistic */
    double kl, k3, chi2;                        /* token off-policy terms */
    double seq_w, chi2_seq, ppl;                /* per non-empty sequence */
} vppo__rc_sums;

static VPPO_HD void vppo__rc_sums_init(vppo__rc_sums *a)
{
    a->n = a->kept = 0;
    a->w = a->w2 = a->high = a->low = a->stat = a->kl = a->k3 = a->chi2 = 0.0;
    a->seq_w = a->chi2_seq = a->ppl = 0.0;
    a->w_min = a->stat_min = VPPO__INF;
    a->w_max = a->stat_max = -VPPO__INF;
}

/* One valid token of sequence q: adds it to a, returns keep_t and sets *w (unnormalized). */
static VPPO_HD int vppo__rc_token(const vppo_rc_config *c, const vppo__rc_seq *q, float logp, float logp_rollout,
                                  double *w, vppo__rc_sums *a)
{
    const double l = (double)logp - (double)logp_rollout, lc = vppo__clamp(l, -20.0, 20.0);
    const double stat = vppo__rc_aggregate(c->rs_level, vppo__rc_stat(c->rs_kind, l), q->sum_stat, q->max_stat, q->n);
    const int keep = vppo__rc_keep(c, stat);
    const double ratio = vppo__rc_ratio(vppo__rc_aggregate(c->is_level, l, q->sum_l, 0.0, q->n));
    *w = vppo__rc_weight(c, ratio);
    a->n += 1;
    a->kept += keep;
    a->w += *w;
    a->w2 += *w * *w;
    if (*w < a->w_min) a->w_min = *w;
    if (*w > a->w_max) a->w_max = *w;
    if (c->is_level == VPPO_RC_TOKEN) {   /* the clamped ratio against the bounds, as verl */
        a->high += ratio > c->is_upper;
        a->low += ratio < vppo__rc_lower(c->is_lower, c->is_upper);
    }
    a->stat += stat;
    if (stat < a->stat_min) a->stat_min = stat;
    if (stat > a->stat_max) a->stat_max = stat;
    a->kl += -l;
    a->k3 += expm1(lc) - lc;
    a->chi2 += expm1(2.0 * lc);
    return keep;
}

/* After the tokens of a non-empty sequence: its sequence-level terms. */
static VPPO_HD void vppo__rc_seq_close(const vppo_rc_config *c, const vppo__rc_seq *q, vppo__rc_sums *a)
{
    if (q->n == 0) return;
    if (c->is_level != VPPO_RC_TOKEN) {
        const double L = vppo__rc_aggregate(c->is_level, 0.0, q->sum_l, 0.0, q->n);
        a->high += L > log(c->is_upper);
        a->low += L < log(vppo__rc_lower(c->is_lower, c->is_upper));
        a->seq_w += vppo__rc_weight(c, vppo__rc_ratio(L));
    }
    a->chi2_seq += expm1(2.0 * vppo__clamp(q->sum_l, -20.0, 20.0));
    a->ppl += (q->sum_logp_rollout - q->sum_logp) / (double)q->n;
}

static VPPO_HD void vppo__rc_sums_merge(vppo__rc_sums *into, const vppo__rc_sums *b)
{
    into->n += b->n; into->kept += b->kept;
    into->w += b->w; into->w2 += b->w2; into->high += b->high; into->low += b->low;
    into->stat += b->stat; into->kl += b->kl; into->k3 += b->k3; into->chi2 += b->chi2;
    into->seq_w += b->seq_w; into->chi2_seq += b->chi2_seq; into->ppl += b->ppl;
    if (b->w_min < into->w_min) into->w_min = b->w_min;
    if (b->w_max > into->w_max) into->w_max = b->w_max;
    if (b->stat_min < into->stat_min) into->stat_min = b->stat_min;
    if (b->stat_max > into->stat_max) into->stat_max = b->stat_max;
}

/* Divides a sum by a count; 0 for an empty count. */
static VPPO_HD double vppo__mean_of(double sum, int64_t n) { return n > 0 ? sum / (double)n : 0.0; }

/* The metrics from the batch sums; nseq non-empty sequences, seq_rejected of them with a
   rejected token. */
static VPPO_HD void vppo__rc_out_fill(const vppo_rc_config *c, const vppo__rc_sums *t, int64_t nseq,
                                      int64_t seq_rejected, vppo_rc_out *o)
{
    const int seq_is = c->is_level != VPPO_RC_TOKEN;
    const int64_t n = t->n;
    o->n_valid = n; o->n_seqs_valid = nseq; o->n_kept = t->kept;
    o->is_mean = vppo__mean_of(t->w, n);
    o->is_std = sqrt(vppo__max(vppo__mean_of(t->w2, n) - o->is_mean * o->is_mean, 0.0));
    o->is_min = n ? t->w_min : 0.0;
    o->is_max = n ? t->w_max : 0.0;
    o->is_ess = t->w2 > 0.0 ? o->is_mean * o->is_mean / vppo__mean_of(t->w2, n) : 0.0;
    o->is_frac_high = vppo__mean_of(t->high, seq_is ? nseq : n);
    o->is_frac_low = vppo__mean_of(t->low, seq_is ? nseq : n);
    o->is_norm = 1.0;
    if (c->is_batch_normalize) {
        const double m = seq_is ? vppo__mean_of(t->seq_w, nseq) : o->is_mean;
        if (m > 1e-8) o->is_norm = m;
    }
    o->rs_mean = vppo__mean_of(t->stat, n);
    o->rs_min = n ? t->stat_min : 0.0;
    o->rs_max = n ? t->stat_max : 0.0;
    o->rs_frac_token = vppo__mean_of((double)(n - t->kept), n);
    o->rs_frac_seq = vppo__mean_of((double)seq_rejected, nseq);
    o->kl = vppo__mean_of(t->kl, n);
    o->k3_kl = vppo__mean_of(t->k3, n);
    o->chi2_token = vppo__mean_of(t->chi2, n);
    o->chi2_seq = vppo__mean_of(t->chi2_seq, nseq);
    o->log_ppl_diff = vppo__mean_of(t->ppl, nseq);
}

static void vppo__rc_seq_scan(const vppo_rc_config *c, const vppo_seqs *s, int64_t b, const float *logp,
                              const float *logp_rollout, vppo__rc_seq *q)
{
    int64_t t;
    vppo__rc_seq_init(q);
    for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
        if (vppo__valid(s, t)) vppo__rc_seq_add(c, q, logp[t], logp_rollout[t]);
}

VPPODEF vppo_status vppo_rollout_correction(const vppo_rc_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_rollout, float *weight, uint8_t *keep, vppo_rc_out *out)
{
    vppo_status st;
    vppo__rc_sums tot;
    int64_t b, nseq = 0, seq_rejected = 0;
    if ((st = vppo__check_rc_config(cfg)) != VPPO_OK) return st;
    if ((st = vppo__check_seqs(s)) != VPPO_OK) return st;
    if (!logp || !logp_rollout || !out) return VPPO_ERR_NULL;
    if ((st = vppo__check_values(s, logp, 0)) != VPPO_OK) return st;
    if ((st = vppo__check_values(s, logp_rollout, 0)) != VPPO_OK) return st;
    vppo__rc_sums_init(&tot);
    for (b = 0; b < s->n_seqs; ++b) {   /* pass 1: the metrics and the batch normalizer */
        vppo__rc_seq q;
        vppo__rc_sums a;
        int64_t t;
        double w;
        vppo__rc_seq_scan(cfg, s, b, logp, logp_rollout, &q);
        if (q.n == 0) continue;
        vppo__rc_sums_init(&a);
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t)
            if (vppo__valid(s, t)) (void)vppo__rc_token(cfg, &q, logp[t], logp_rollout[t], &w, &a);
        vppo__rc_seq_close(cfg, &q, &a);
        vppo__rc_sums_merge(&tot, &a);
        nseq += 1;
        seq_rejected += a.kept < a.n;
    }
    vppo__rc_out_fill(cfg, &tot, nseq, seq_rejected, out);
    if (!weight && !keep) return VPPO_OK;
    for (b = 0; b < s->n_seqs; ++b) {   /* pass 2: the per-token outputs */
        vppo__rc_seq q;
        vppo__rc_sums unused;
        int64_t t;
        vppo__rc_seq_scan(cfg, s, b, logp, logp_rollout, &q);
        for (t = s->offsets[b]; t < s->offsets[b + 1]; ++t) {
            double w = 0.0;
            const int k = vppo__valid(s, t) ? vppo__rc_token(cfg, &q, logp[t], logp_rollout[t], &w, &unused) : 0;
            if (weight) weight[t] = k ? (float)(w / out->is_norm) : 0.0f;
            if (keep) keep[t] = (uint8_t)k;
        }
    }
    return VPPO_OK;
}

/* =========================================================== the pipeline == */

VPPODEF vppo_config vppo_config_default(void)
{
    vppo_config c;
    c.estimator = VPPO_EST_K3;
    c.use_tas = 1;
    c.tas = vppo_tas_config_default();
    c.use_tgf = 1;
    c.topk_ratio = 0.4;
    c.loss = vppo_loss_config_default();
    return c;
}

/* Where prepare takes the dependency from. */
typedef enum vppo__dep_source { VPPO__DEP_GIVEN, VPPO__DEP_SAMPLED, VPPO__DEP_ZERO } vppo__dep_source;

/* The checks of vppo_prepare that read no per-token array (read_offsets: as in
   vppo__check_seqs_in); *source says where the dependency comes from. */
static vppo_status vppo__check_prepare_args(const vppo_config *cfg, const vppo_seqs *s,
    const float *logp_old, const float *logp_aug, const float *dep_in, const float *adv_seq,
    const vppo_tas_stats *global, const vppo_prepared *p, vppo__dep_source *source, int read_offsets)
{
    vppo_status st;
    if (!cfg) return VPPO_ERR_NULL;
    if ((st = vppo__check_seqs_in(s, read_offsets)) != VPPO_OK) return st;
    if (!p || !adv_seq) return VPPO_ERR_NULL;
    if (!p->dep || !p->traj_dep || !p->count || !p->scale || !p->adv || !p->select) return VPPO_ERR_NULL;
    if (dep_in) *source = VPPO__DEP_GIVEN;
    else if (logp_old && logp_aug) *source = VPPO__DEP_SAMPLED;
    else if (!cfg->use_tas && !cfg->use_tgf) *source = VPPO__DEP_ZERO;
    else return VPPO_ERR_NULL;
    if (*source == VPPO__DEP_SAMPLED &&
        (!vppo__enum_in((int)cfg->estimator, VPPO_EST_K3, VPPO_EST_PROB_DROP)))
        return VPPO_ERR_PARAM;
    if (cfg->use_tas && (st = vppo__check_tas_config(&cfg->tas)) != VPPO_OK) return st;
    if (cfg->use_tgf && !(cfg->topk_ratio >= 0.0 && cfg->topk_ratio <= 1.0)) return VPPO_ERR_PARAM;
    if (global && (st = vppo__check_tas_stats(global)) != VPPO_OK) return st;
    return VPPO_OK;
}

/* adv_seq finite, and small enough that scale * adv stays a finite float: a TAS scale is at
   most beta_max (LINEAR) or beta_min + (1 - beta_min) * (sequences in the call)
   (MEAN_PRESERVING, since x_b / mean(x) <= number of sequences). */
static vppo_status vppo__check_adv_seq(const vppo_config *cfg, const vppo_seqs *s, const float *adv_seq)
{
    int64_t b, n_nonempty = 0;
    double max_scale = 1.0;
    for (b = 0; b < s->n_seqs; ++b) n_nonempty += vppo__any_valid(s, b);
    if (cfg->use_tas)
        max_scale = cfg->tas.mode == VPPO_TAS_LINEAR ? vppo__max(1.0, cfg->tas.beta_max)
                  : cfg->tas.beta_min + (1.0 - (double)cfg->tas.beta_min) * (double)n_nonempty;
    for (b = 0; b < s->n_seqs; ++b) {
        if ((!vppo__finite(adv_seq[b]) || fabs((double)adv_seq[b]) * max_scale * (1.0 + 1e-6) > FLT_MAX) &&
            vppo__any_valid(s, b))
            return VPPO_ERR_NONFINITE;
    }
    return VPPO_OK;
}

/* The per-token checks of prepare's data into slots 0 and 1 of c (group 1). */
static void vppo__prepare_checks(const vppo_config *cfg, vppo__dep_source source, const float *logp_old,
                                 const float *logp_aug, const float *dep_in, vppo__on_check *c)
{
    if (source == VPPO__DEP_GIVEN) vppo__on_check_add(c, 0, dep_in, 0, 1);
    if (source == VPPO__DEP_SAMPLED) vppo__sampled_checks(c, logp_old, logp_aug, cfg->estimator);
}

/* Everything vppo_prepare checks; vppo_step also passes its loss's arguments (step = 1),
   whose per-token checks (group 2) go in the same pass over the data. The statuses
   are those of prepare's checks followed by the loss's: prepare's arguments, prepare's
   data, adv_seq, the loss's arguments, the loss's data. */
static vppo_status vppo__check_prepare(const vppo_config *cfg, const vppo_seqs *s,
    const float *logp_old, const float *logp_aug, const float *dep_in, const float *adv_seq,
    const vppo_tas_stats *global, const vppo_prepared *p, vppo__dep_source *source,
    int step, const float *logp, const float *logp_ref, const vppo_loss_out *out)
{
    vppo__on_check c;
    vppo_status loss_st = VPPO_OK;
    int bits;
    vppo_status st = vppo__check_prepare_args(cfg, s, logp_old, logp_aug, dep_in, adv_seq, global, p, source, 1);
    if (st != VPPO_OK) return st;
    memset(&c, 0, sizeof c);
    vppo__prepare_checks(cfg, *source, logp_old, logp_aug, dep_in, &c);
    if (step) {
        loss_st = vppo__check_loss_args(&cfg->loss, s, logp, logp_old, logp_ref, NULL, out, 0, 1);
        if (loss_st == VPPO_OK) vppo__loss_checks(&cfg->loss, logp, logp_old, logp_ref, NULL, NULL, &c, 2, 2);
    }
    bits = vppo__on_check_run(s, &c);
    if (bits & 1) return VPPO_ERR_NONFINITE;
    if ((st = vppo__check_adv_seq(cfg, s, adv_seq)) != VPPO_OK) return st;
    if (loss_st != VPPO_OK) return loss_st;
    return bits & 2 ? VPPO_ERR_NONFINITE : VPPO_OK;
}

/* vppo_prepare's dependency and top-k of one sequence (a vppo__seq_fn run by
   vppo__topk_blocks; part: a vppo__topk_part): the sequence's dependency into dep (sampled
   by the estimator kernel, or dep_in at the valid positions, or 0) with its sum, then its
   top-k mask by vppo__topk_seq on that dep while it is still in L1/L2 (8 KiB for 2048
   tokens), instead of one pass over all of dep and a second one for the top-k. Each step is
   the call the separate passes make on this sequence, so the bits are theirs; the count of
   valid positions is the top-k's (vppo__topk_seq counts them on every path). */
typedef struct vppo__prep_job {
    vppo__topk_job topk;             /* topk.score is dep */
    const vppo__on_kernels *k;
    const float *logp_old, *logp_aug, *dep_in;
    vppo__dep_source source;
    int est;
    float *dep, *mean;
    int64_t *count;
} vppo__prep_job;

static void vppo__prepare_seq(const void *job, int64_t b, void *part)
{
    const vppo__prep_job *j = (const vppo__prep_job *)job;
    const vppo_seqs *s = j->topk.s;
    const int64_t t0 = s->offsets[b], t1 = s->offsets[b + 1];
    double sum;
    int64_t t;
    if (j->source == VPPO__DEP_SAMPLED) {
        sum = j->k->map(j->logp_old, j->logp_aug, s->mask, t0, t1, j->est, j->dep);
    } else {
        for (t = t0; t < t1; ++t)
            j->dep[t] = j->source == VPPO__DEP_GIVEN && vppo__valid(s, t) ? j->dep_in[t] : 0.0f;
        sum = j->k->map(j->dep, NULL, s->mask, t0, t1, VPPO__ON_SUM, NULL);
    }
    vppo__topk_seq(&j->topk, b, part);
    vppo__mean_store(b, sum, ((const vppo__topk_part *)part)->n, j->mean, j->count);
}

/* The advantages are filled VPPO__FILL_SEQS sequences per kernel call (OpenMP over them). */
#define VPPO__FILL_SEQS 64

/* Runs after vppo__check_prepare passed: the dependency is then finite (every estimator
   clamps, PROB_DROP was checked, a given one was checked), so the steps below run without
   checking their inputs again (no second read for validation, no NaN pass before the
   top-k). The dependency, its sequence means and the top-k come out of one pass over the
   sequences (vppo__prepare_seq); TAS needs every sequence's mean, so the advantages follow. */
static vppo_status vppo__prepare_run(const vppo_config *cfg, const vppo_seqs *s,
    const float *logp_old, const float *logp_aug, const float *dep_in, const float *adv_seq,
    const vppo_tas_stats *global, vppo_prepared *p, vppo__dep_source source)
{
    int64_t b;
    vppo_status st;
    vppo__prep_job j;
    vppo__topk_job_init(&j.topk, s, p->dep, cfg->use_tgf ? cfg->topk_ratio : 1.0, p->select);
    j.k = vppo__on_active();
    j.logp_old = logp_old; j.logp_aug = logp_aug; j.dep_in = dep_in;
    j.source = source; j.est = (int)cfg->estimator;
    j.dep = p->dep; j.mean = p->traj_dep; j.count = p->count;
    vppo__topk_blocks(s, vppo__prepare_seq, &j, &p->topk);
    if (global) p->stats = *global;
    else if ((st = vppo_tas_stats_compute(p->traj_dep, p->count, s->n_seqs, &p->stats)) != VPPO_OK) return st;
    if (cfg->use_tas) vppo__tas_scales_run(&cfg->tas, &p->stats, p->traj_dep, p->count, s->n_seqs, p->scale);
    else for (b = 0; b < s->n_seqs; ++b) p->scale[b] = 1.0f;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (s->n_seqs > VPPO__FILL_SEQS && s->offsets[s->n_seqs] - s->offsets[0] >= VPPO__OMP_MIN_WORK)
#endif
    for (b = 0; b < s->n_seqs; b += VPPO__FILL_SEQS)
        j.topk.kern->fill(p->adv, s->mask, s->offsets, b, vppo__min64(s->n_seqs, b + VPPO__FILL_SEQS), p->scale, adv_seq);
    return VPPO_OK;
}

VPPODEF vppo_status vppo_prepare(const vppo_config *cfg, const vppo_seqs *s,
    const float *logp_old, const float *logp_aug, const float *dep_in,
    const float *adv_seq, const vppo_tas_stats *global, vppo_prepared *p)
{
    vppo__dep_source source;
    vppo_status st = vppo__check_prepare(cfg, s, logp_old, logp_aug, dep_in, adv_seq, global, p, &source,
                                         0, NULL, NULL, NULL);
    if (st != VPPO_OK) return st;
    return vppo__prepare_run(cfg, s, logp_old, logp_aug, dep_in, adv_seq, global, p, source);
}

VPPODEF vppo_status vppo_step(const vppo_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_old, const float *logp_aug, const float *logp_ref,
    const float *adv_seq, vppo_prepared *p, float *dlogp, vppo_loss_out *out)
{
    vppo__dep_source source;
    vppo_status st;
    if (!cfg) return VPPO_ERR_NULL;
    if ((st = vppo__check_prepare(cfg, s, logp_old, logp_aug, NULL, adv_seq, NULL, p, &source,
                                  1, logp, logp_ref, out)) != VPPO_OK)
        return st;
    if ((st = vppo__prepare_run(cfg, s, logp_old, logp_aug, NULL, adv_seq, NULL, p, source)) != VPPO_OK)
        return st;
    return vppo__policy_loss_run(&cfg->loss, s, logp, logp_old, logp_ref, p->adv, p->select, NULL, dlogp, out);
}

/* ====================================================== fused linear head == */

#ifdef VPPO_USE_CBLAS
#include <cblas.h>
#endif

#define VPPO__LIN_ROWS 256           /* hidden rows per tile */
#define VPPO__LIN_BYTES (1 << 20)    /* a weight chunk of about this many bytes per tile */

/* Per-row state kept across vocabulary chunks. */
typedef struct vppo__linrow { vppo__pair pair; vppo__acc acc; double zid, lse, entropy; } vppo__linrow;

typedef struct vppo__linplan {
    int64_t rows, cols;              /* tile: rows x cols logits */
    float *tile_a, *tile_b;          /* rows x cols each */
    vppo__linrow *row;               /* [n] */
    float *pack;                     /* the GEMMs' packed blocks (vppo__gemm_pack_floats) */
    int64_t pack_a;                  /* floats of the A block at the start of pack */
} vppo__linplan;

static int64_t vppo__lin_cols(int64_t d, int64_t vocab)
{
    int64_t c = VPPO__LIN_BYTES / 4 / d;   /* = bytes / (4 d), without overflowing 4 d */
    if (c < 64) c = 64;
    if (c > 4096) c = 4096;
    return c < vocab ? c : vocab;
}

/* The fused head's GEMMs: C (+)= A B with A m x k, B k x n, any strides, C row-major.
   Blocked as usual for caches (k in slices of VPPO__GEMM_KC, n in blocks of VPPO__GEMM_NC
   packed as k-major panels of NR columns, m in blocks of VPPO__GEMM_MC packed as panels
   of MR rows) and computed by a per-ISA microkernel on MR x NR register tiles
   (VPPO__GEMM_KERNELS in the ISA section; the portable C one on the scalar path).
   The order of every sum is fixed whatever the blocking and the thread count: entry
   C(i,j) is one float accumulator that starts at 0 (or at C(i,j) when accumulating) and
   takes a(i,p) b(p,j) for p = 0, 1, ..., k-1 in turn, one fused multiply-add each
   (SSE2 and the portable C: a rounded product then a rounded add). Between k slices the
   accumulator is stored to C as the float it is and reloaded; edge tiles run the same
   microkernel on a zero-padded copy. So an entry does not depend on where the tiles or
   the threads fall, and threads only split whole tiles. */
#define VPPO__GEMM_KC 256
#define VPPO__GEMM_MC 144            /* a multiple of every MR (4, 6, 8) */
#define VPPO__GEMM_NC 1024           /* a multiple of every NR (8, 16, 32) */
#define VPPO__GEMM_MRLCM 24
#define VPPO__GEMM_NRMAX 32
#define VPPO__GEMM_MRMAX 8

/* OpenMP inside a GEMM only where a parallel region has enough work to pay for its
   barrier: about 0.25 ms of multiply-adds per tile region, a 4 MiB block per packing
   region. Each region ends in a barrier, and on an oversubscribed machine a barrier
   waits for a descheduled thread (milliseconds): small regions then cost more than they
   save (measured: a 2-thread head 25x slower than 1 thread at 1 << 18 on a loaded
   2-core machine). */
#define VPPO__GEMM_OMP_TILES ((int64_t)1 << 24)
#define VPPO__GEMM_OMP_PACK ((int64_t)1 << 20)

static int64_t vppo__gemm_max(int64_t a, int64_t b) { return a > b ? a : b; }

typedef struct vppo__gemm_kernels {
    int mr, nr;
    /* the MR x NR tile at c (row stride ldc) = (load ? c : 0) + sum over p < kc of
       pa[p mr + i] pb[p nr + j], in that order */
    void (*micro)(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int load);
} vppo__gemm_kernels;

typedef struct vppo__mat { const float *p; int64_t rs, cs; } vppo__mat;   /* X(i,j) = p[i rs + j cs] */

/* From the ISA section: the microkernel of the active ISA (never NULL). */
static const vppo__gemm_kernels *vppo__gemm_kernels_active(void);

/* Pack floats the GEMMs of a head with these tile sizes need: an A block and a B block. */
static int64_t vppo__gemm_pack_a(int64_t rows, int64_t cols, int64_t d)
{
    const int64_t m = vppo__gemm_max(rows, cols), k = vppo__gemm_max(vppo__gemm_max(rows, cols), d);
    const int64_t mc = vppo__min64(VPPO__GEMM_MC, (m + VPPO__GEMM_MRLCM - 1) / VPPO__GEMM_MRLCM * VPPO__GEMM_MRLCM);
    return (mc * vppo__min64(VPPO__GEMM_KC, k) + 15) / 16 * 16;
}

static int64_t vppo__gemm_pack_floats(int64_t rows, int64_t cols, int64_t d)
{
    const int64_t nmax = vppo__gemm_max(cols, d), k = vppo__gemm_max(vppo__gemm_max(rows, cols), d);
    const int64_t nc = vppo__min64(VPPO__GEMM_NC, (nmax + VPPO__GEMM_NRMAX - 1) / VPPO__GEMM_NRMAX * VPPO__GEMM_NRMAX);
    return vppo__gemm_pack_a(rows, cols, d) + vppo__min64(VPPO__GEMM_KC, k) * nc;
}

/* dst[p w + i] = X(i0 + i, p0 + p) for i < w, p < np; rows at or past ni are zeros. */
static void vppo__gemm_pack(const vppo__mat *x, int64_t i0, int64_t ni, int64_t p0, int64_t np, int w, float *dst)
{
    const int64_t have = vppo__min64(w, ni - i0);
    int64_t i, p;
    if (x->rs == 1) {                      /* contiguous along i: copy rows of w */
        for (p = 0; p < np; ++p) {
            const float *s = x->p + i0 + (p0 + p) * x->cs;
            memcpy(dst + p * w, s, (size_t)have * sizeof(float));
            for (i = have; i < w; ++i) dst[p * w + i] = 0.0f;
        }
        return;
    }
    for (i = 0; i < have; ++i) {           /* contiguous along p (or neither) */
        const float *s = x->p + (i0 + i) * x->rs + p0 * x->cs;
        for (p = 0; p < np; ++p) dst[p * w + i] = s[p * x->cs];
    }
    for (; i < w; ++i)
        for (p = 0; p < np; ++p) dst[p * w + i] = 0.0f;
}

static void vppo__gemm_tile(const vppo__gemm_kernels *g, int64_t kc, const float *pa, const float *pb,
    float *c, int64_t ldc, int64_t rows, int64_t cols, int load)
{
    float t[VPPO__GEMM_MRMAX * VPPO__GEMM_NRMAX];
    int64_t i, j;
    if (rows == g->mr && cols == g->nr) { g->micro(kc, pa, pb, c, ldc, load); return; }
    for (i = 0; i < g->mr * g->nr; ++i) t[i] = 0.0f;
    if (load)
        for (i = 0; i < rows; ++i)
            for (j = 0; j < cols; ++j) t[i * g->nr + j] = c[i * ldc + j];
    g->micro(kc, pa, pb, t, g->nr, load);
    for (i = 0; i < rows; ++i)
        for (j = 0; j < cols; ++j) c[i * ldc + j] = t[i * g->nr + j];
}

VPPODEF size_t vppo_linear_workspace(int64_t n, int64_t d, int64_t vocab)
{
    int64_t rows, cols;
    if (n < 0 || d < 1 || vocab < 1 || n > VPPO__MAX_INDEX / (int64_t)sizeof(vppo__linrow)) return 0;
    rows = n < VPPO__LIN_ROWS ? (n > 0 ? n : 1) : VPPO__LIN_ROWS;
    cols = vppo__lin_cols(d, vocab);
    return (size_t)(2 * rows * cols + vppo__gemm_pack_floats(rows, cols, d)) * sizeof(float)
           + (size_t)n * sizeof(vppo__linrow) + 64;
}

static vppo_status vppo__lin_check(const float *hidden, const float *weight, int64_t n, int64_t d,
    int64_t vocab, float temperature, void *work, size_t work_bytes, vppo__linplan *plan)
{
    size_t need;
    uintptr_t at;
    if (!hidden || !weight || !work) return VPPO_ERR_NULL;
    if (n < 0 || d < 1 || vocab < 1) return VPPO_ERR_SIZE;
    if ((n > 0 && d > VPPO__MAX_INDEX / n) || vocab > VPPO__MAX_INDEX / d) return VPPO_ERR_SIZE;
    if (!(temperature > 0.0f) || !vppo__finite(temperature)) return VPPO_ERR_PARAM;
    /* the block kernels take 1/T as a float: below 1/FLT_MAX (~2.9e-39) it would be inf */
    if (!(1.0 / (double)temperature <= FLT_MAX)) return VPPO_ERR_PARAM;
    need = vppo_linear_workspace(n, d, vocab);
    if (need == 0) return VPPO_ERR_SIZE;
    if (work_bytes < need) return VPPO_ERR_WORKSPACE;
    if (vppo__check_finite_array(hidden, n * d) != VPPO_OK) return VPPO_ERR_NONFINITE;
    if (vppo__check_finite_array(weight, vocab * d) != VPPO_OK) return VPPO_ERR_NONFINITE;
    plan->rows = n < VPPO__LIN_ROWS ? (n > 0 ? n : 1) : VPPO__LIN_ROWS;
    plan->cols = vppo__lin_cols(d, vocab);
    at = ((uintptr_t)work + 63) & ~(uintptr_t)63;
    plan->row = (vppo__linrow *)at;
    plan->tile_a = (float *)(at + (size_t)n * sizeof(vppo__linrow));
    plan->tile_b = plan->tile_a + plan->rows * plan->cols;
    plan->pack = plan->tile_b + plan->rows * plan->cols;
    plan->pack_a = vppo__gemm_pack_a(plan->rows, plan->cols, d);
    return VPPO_OK;
}

/* C (+)= A B (accumulate: acc), A m x k, B k x n, C(i,j) = c[i ldc + j]; pack holds
   vppo__gemm_pack_floats of the head, the A block first (pack_a floats). */
static void vppo__gemm(int64_t m, int64_t n, int64_t k, const vppo__mat *a, const vppo__mat *b,
    float *c, int64_t ldc, int acc, float *pack, int64_t pack_a)
{
    const vppo__gemm_kernels *g = vppo__gemm_kernels_active();
    const vppo__mat bt = { b->p, b->cs, b->rs };      /* B transposed: panels of columns */
    float *pa = pack, *pb = pack + pack_a;
    int64_t jc, pc, ic;
    if (k == 0 && !acc) {
        for (ic = 0; ic < m; ++ic) memset(c + ic * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    for (jc = 0; jc < n; jc += VPPO__GEMM_NC) {
        const int64_t nc = vppo__min64(VPPO__GEMM_NC, n - jc), nb = (nc + g->nr - 1) / g->nr;
        for (pc = 0; pc < k; pc += VPPO__GEMM_KC) {
            const int64_t kc = vppo__min64(VPPO__GEMM_KC, k - pc);
            const int load = acc || pc > 0;
            int64_t jp;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (nc * kc >= VPPO__GEMM_OMP_PACK)
#endif
            for (jp = 0; jp < nb; ++jp) vppo__gemm_pack(&bt, jc + jp * g->nr, n, pc, kc, g->nr, pb + jp * g->nr * kc);
            for (ic = 0; ic < m; ic += VPPO__GEMM_MC) {
                const int64_t mcb = vppo__min64(VPPO__GEMM_MC, m - ic), na = (mcb + g->mr - 1) / g->mr;
                int64_t ip, t;
                for (ip = 0; ip < na; ++ip) vppo__gemm_pack(a, ic + ip * g->mr, m, pc, kc, g->mr, pa + ip * g->mr * kc);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (mcb * nc * kc >= VPPO__GEMM_OMP_TILES)
#endif
                for (t = 0; t < nb * na; ++t) {   /* panel of B outer: its kc x nr stays in L1 */
                    const int64_t jb = t / na, ib = t % na, i = ic + ib * g->mr, j = jc + jb * g->nr;
                    vppo__gemm_tile(g, kc, pa + ib * g->mr * kc, pb + jb * g->nr * kc, c + i * ldc + j, ldc,
                                    vppo__min64(g->mr, m - i), vppo__min64(g->nr, n - j), load);
                }
            }
        }
    }
}

/* out[i][j] = sum_k a[i][k] b[j][k] for i < m, j < nb (rows of length d; out stride nb). */
static void vppo__gemm_nt(const float *a, int64_t m, const float *b, int64_t nb, int64_t d, float *out,
    const vppo__linplan *pl)
{
#ifdef VPPO_USE_CBLAS
    if (m <= 0x7fffffff && nb <= 0x7fffffff && d <= 0x7fffffff) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nb, (int)d, 1.0f, a, (int)d,
                    b, (int)d, 0.0f, out, (int)nb);
        return;
    }
#endif
    {
        const vppo__mat am = { a, d, 1 }, bm = { b, 1, d };
        vppo__gemm(m, nb, d, &am, &bm, out, nb, 0, pl->pack, pl->pack_a);
    }
}

/* c[r][k] += sum_s G[r][s] x[s][k] for r < R, s < S, k < d: (R x S)(S x d), where G is g
   (trans = 0) or its transpose (trans = 1), g stored with row stride ld. */
static void vppo__gemm_acc(const float *g, int64_t ld, int trans, int64_t R, int64_t S, const float *x, int64_t d,
    float *c, const vppo__linplan *pl)
{
#ifdef VPPO_USE_CBLAS
    if (R <= 0x7fffffff && S <= 0x7fffffff && d <= 0x7fffffff) {
        cblas_sgemm(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)R, (int)d, (int)S, 1.0f,
                    g, (int)ld, x, (int)d, 1.0f, c, (int)d);
        return;
    }
#endif
    {
        const vppo__mat gm = { g, trans ? 1 : ld, trans ? ld : 1 }, xm = { x, d, 1 };
        vppo__gemm(R, d, S, &gm, &xm, c, d, 1, pl->pack, pl->pack_a);
    }
}

/* Pass over all chunks accumulating lse/entropy (and z of ids) in plan->row. */
static vppo_status vppo__lin_stats(const vppo__kernels *k, const float *hidden, const float *weight,
    int64_t n, int64_t d, int64_t vocab, float temperature, const int32_t *ids, const vppo__linplan *pl)
{
    const double invt = 1.0 / (double)temperature;
    int64_t c0, r0, i;
    int bad = 0;
    for (i = 0; i < n; ++i) { vppo__acc_init(&pl->row[i].acc); pl->row[i].zid = 0.0; }
    for (c0 = 0; c0 < vocab; c0 += pl->cols) {
        const int64_t cw = vppo__min64(pl->cols, vocab - c0);
        for (r0 = 0; r0 < n; r0 += pl->rows) {
            const int64_t rh = vppo__min64(pl->rows, n - r0);
            vppo__gemm_nt(hidden + r0 * d, rh, weight + c0 * d, cw, d, pl->tile_a, pl);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(|:bad) if (rh * cw > 65536)
#endif
            for (i = 0; i < rh; ++i) {
                const float *z = pl->tile_a + i * cw;
                vppo__linrow *row = &pl->row[r0 + i];
                bad |= vppo__acc_push(k, &row->acc, (const char *)z, VPPO_F32, cw, invt);
                if (ids && ids[r0 + i] >= c0 && ids[r0 + i] < c0 + cw) row->zid = (double)z[ids[r0 + i] - c0];
            }
            if (bad) return VPPO_ERR_NONFINITE;
        }
    }
    for (i = 0; i < n; ++i) {
        double zmax, logsum;
        vppo__linrow *row = &pl->row[i];
        vppo_status st = vppo__acc_end(&row->acc, &zmax, &logsum, &row->entropy);
        if (st != VPPO_OK) return st;
        row->lse = zmax * invt + logsum;
        row->zid = (row->zid - zmax) * invt - logsum;          /* now logp of ids[i] */
    }
    return VPPO_OK;
}

VPPODEF vppo_status vppo_linear_logprobs(const float *hidden, const float *weight, int64_t n, int64_t d,
    int64_t vocab, float temperature, const int32_t *ids, float *logp, float *lse, float *entropy,
    void *work, size_t work_bytes)
{
    vppo__linplan pl;
    int64_t i;
    vppo_status st = vppo__lin_check(hidden, weight, n, d, vocab, temperature, work, work_bytes, &pl);
    if (st != VPPO_OK) return st;
    if (logp && !ids) return VPPO_ERR_NULL;
    if (logp && (st = vppo__check_ids(ids, n, vocab)) != VPPO_OK) return st;
    st = vppo__lin_stats(vppo__lin_kernels(temperature), hidden, weight, n, d, vocab, temperature,
                         logp ? ids : NULL, &pl);
    if (st != VPPO_OK) return st;
    for (i = 0; i < n; ++i) {
        if (logp) logp[i] = (float)pl.row[i].zid;
        if (lse) lse[i] = (float)pl.row[i].lse;
        if (entropy) entropy[i] = (float)pl.row[i].entropy;
    }
    return VPPO_OK;
}

VPPODEF vppo_status vppo_linear_dependency(const float *hidden, const float *hidden_aug,
    const float *weight, int64_t n, int64_t d, int64_t vocab, float temperature,
    vppo_divergence div, float *dep, void *work, size_t work_bytes)
{
    const vppo__kernels *k = vppo__lin_kernels(temperature);
    const double invt = 1.0 / (double)temperature;
    vppo__linplan pl;
    int64_t c0, r0, i;
    int bad = 0, pass;
    vppo_status st = vppo__lin_check(hidden, weight, n, d, vocab, temperature, work, work_bytes, &pl);
    if (st != VPPO_OK) return st;
    if (!hidden_aug || !dep) return VPPO_ERR_NULL;
    if (!vppo__enum_in((int)div, VPPO_DIV_KL, VPPO_DIV_JS)) return VPPO_ERR_PARAM;
    if (vppo__check_finite_array(hidden_aug, n * d) != VPPO_OK) return VPPO_ERR_NONFINITE;
    for (i = 0; i < n; ++i) vppo__pair_init(&pl.row[i].pair);
    /* pass 0: both normalisers (and KL); pass 1, JS only: the terms */
    for (pass = 0; pass < (div == VPPO_DIV_JS ? 2 : 1); ++pass) {
        for (c0 = 0; c0 < vocab; c0 += pl.cols) {
            const int64_t cw = vppo__min64(pl.cols, vocab - c0);
            for (r0 = 0; r0 < n; r0 += pl.rows) {
                const int64_t rh = vppo__min64(pl.rows, n - r0);
                vppo__gemm_nt(hidden + r0 * d, rh, weight + c0 * d, cw, d, pl.tile_a, &pl);
                vppo__gemm_nt(hidden_aug + r0 * d, rh, weight + c0 * d, cw, d, pl.tile_b, &pl);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(|:bad) if (rh * cw > 65536)
#endif
                for (i = 0; i < rh; ++i) {
                    const char *zo = (const char *)(pl.tile_a + i * cw), *za = (const char *)(pl.tile_b + i * cw);
                    vppo__linrow *row = &pl.row[r0 + i];
                    const char *u = div == VPPO_DIV_KL_REVERSE ? za : zo, *v = div == VPPO_DIV_KL_REVERSE ? zo : za;
                    if (pass == 0) bad |= vppo__pair_push(k, &row->pair, u, VPPO_F32, v, VPPO_F32, cw, invt, invt, NULL);
                    else {
                        const vppo__js_args c = vppo__js_args_of(&row->pair, invt, invt);
                        bad |= vppo__pair_push(k, &row->pair, u, VPPO_F32, v, VPPO_F32, cw, invt, invt, &c);
                    }
                }
                if (bad) return VPPO_ERR_NONFINITE;
            }
        }
        for (i = 0; i < n && pass == 0; ++i) {
            double kl = 0.0;
            if ((st = vppo__pair_end(&pl.row[i].pair, div == VPPO_DIV_JS ? NULL : &kl)) != VPPO_OK) return st;
            dep[i] = (float)kl;
        }
    }
    if (div == VPPO_DIV_JS)
        for (i = 0; i < n; ++i) dep[i] = (float)vppo__max(0.0, 0.5 * pl.row[i].pair.js);
    return VPPO_OK;
}

VPPODEF vppo_status vppo_linear_logprobs_backward(const float *hidden, const float *weight,
    int64_t n, int64_t d, int64_t vocab, float temperature, const int32_t *ids,
    const float *lse, const float *entropy, const float *dlogp, const float *dentropy,
    float *dhidden, float *dweight, void *work, size_t work_bytes)
{
    const vppo__kernels *k = vppo__lin_kernels(temperature);
    const double t = (double)temperature;
    vppo__linplan pl;
    int64_t c0, r0, i;
    int bad = 0;
    vppo_status st = vppo__lin_check(hidden, weight, n, d, vocab, temperature, work, work_bytes, &pl);
    if (st != VPPO_OK) return st;
    if (!dhidden) return VPPO_ERR_NULL;
    if (dlogp && !ids) return VPPO_ERR_NULL;
    if (dlogp && (st = vppo__check_ids(ids, n, vocab)) != VPPO_OK) return st;
    if ((st = vppo__check_finite_array(lse, n)) != VPPO_OK) return st;
    if ((st = vppo__check_finite_array(entropy, n)) != VPPO_OK) return st;
    if ((st = vppo__check_finite_array(dlogp, n)) != VPPO_OK) return st;
    if ((st = vppo__check_finite_array(dentropy, n)) != VPPO_OK) return st;
    if (!lse || (dentropy && !entropy)) {        /* the pass that was not done by the caller */
        if ((st = vppo__lin_stats(k, hidden, weight, n, d, vocab, temperature, NULL, &pl)) != VPPO_OK) return st;
    }
    for (i = 0; i < n; ++i) {
        if (lse) pl.row[i].lse = (double)lse[i];
        if (entropy) pl.row[i].entropy = (double)entropy[i];
        if (!dentropy) pl.row[i].entropy = 0.0;
    }
    memset(dhidden, 0, (size_t)(n * d) * sizeof(float));
    for (c0 = 0; c0 < vocab; c0 += pl.cols) {
        const int64_t cw = vppo__min64(pl.cols, vocab - c0);
        for (r0 = 0; r0 < n; r0 += pl.rows) {
            const int64_t rh = vppo__min64(pl.rows, n - r0);
            vppo__gemm_nt(hidden + r0 * d, rh, weight + c0 * d, cw, d, pl.tile_a, &pl);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) reduction(|:bad) if (rh * cw > 65536)
#endif
            for (i = 0; i < rh; ++i) {
                const int64_t r = r0 + i, id = dlogp ? (int64_t)ids[r] : -1;
                const double g = dlogp ? (double)dlogp[r] : 0.0, h = dentropy ? (double)dentropy[r] : 0.0;
                /* u - lse = (z - shift) / T - base; lse recomputed is kept as (raw max, logsum),
                   as in vppo__backward_row */
                const double shift = lse ? 0.0 : pl.row[r].acc.m, base = lse ? pl.row[r].lse : log(pl.row[r].acc.sum);
                const float *z = pl.tile_a + i * cw;
                const vppo__bwd_args c = vppo__bwd_args_of(!lse, shift, base, pl.row[r].lse, t, g, h, pl.row[r].entropy);
                float *gout = pl.tile_b + i * cw;
                int64_t j0;
                if (vppo__bwd_args_ok(&c)) {
                    bad |= k->bwd(z, VPPO_F32, cw, &c, gout, VPPO_F32, 0) & 1;
                } else {   /* lse T beyond the float range (a huge temperature): the double formula */
                    for (j0 = 0; j0 < cw; ++j0) {
                        if (!(z[j0] < HUGE_VALF)) bad = 1;
                        gout[j0] = (float)vppo__grad_entry(((double)z[j0] - shift) / t, base, pl.row[r].entropy, g, h, 0, t);
                    }
                }
                if (id >= c0 && id < c0 + cw)
                    gout[id - c0] = (float)vppo__grad_entry(((double)z[id - c0] - shift) / t, base, pl.row[r].entropy,
                                                            g, h, 1, t);
            }
            if (bad) return VPPO_ERR_NONFINITE;
            vppo__gemm_acc(pl.tile_b, cw, 0, rh, cw, weight + c0 * d, d, dhidden + r0 * d, &pl);          /* dlogits W */
            if (dweight) vppo__gemm_acc(pl.tile_b, cw, 1, cw, rh, hidden + r0 * d, d, dweight + c0 * d, &pl);   /* dlogitsT H */
        }
    }
    /* dhidden beyond the float range (huge gradients times huge weights) is an error, as a
       loss gradient beyond it is (found by fuzz_linear) */
    return vppo__check_finite_array(dhidden, n * d);
}

/* ============================================= kernels and ISA dispatch (§10) == */
/*
   Everything that depends on the instruction set, in one place:
     a. the numeric recipe of the vector exp/log (constants below, and the note)
     b. the mapping layer: one row per vector operation, one column per ISA
     c. the leaf kernels, written once (VPPO__KERNELS, VPPO__GEMM_KERNELS) and
        instantiated per ISA
     d. the portable C kernels (the fused linear head's scalar path)
     e. detection, selection and the dispatch table (vppo__kernels_for, vppo_isa_*)
   The row drivers that call the kernels are in the logits section (contract there:
   vppo__kernels). A new ISA is one column of the table, its target attribute, one
   VPPO__KERNELS line and one VPPO__GEMM_KERNELS line (with its VPPO__GEMM_MR column);
   a change to a kernel is made once for every ISA.

   vexp(x): n = round(x / ln2) by adding 1.5 * 2^23 + 127 (so that the low bits of the sum
   hold n + 127 and 2^n is one shift of them into the exponent field), Cody-Waite
   reduction x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial by Horner's rule (six
   FMAs; the kernels interleave 2 to 4 independent vectors, so its dependency chain costs
   no throughput). Degree 6 is the least that keeps exp(0) = 1 exactly (c0 = 1) with a
   relative error under 2e-7: a degree-5 fit with c0 free measured 2.0e-7 (AVX-512) and
   2.2e-7 (SSE2) and lost exp(0) = 1, which keeps the lse and entropy of one-hot rows
   exact. For x in
   [VPPO__EXP_FLUSH, 88] its relative error is below 2e-7, under 2 ulp (the suite checks it
   on a 1/1024 grid for every ISA the machine runs, through two kernels; measured: 1.0e-7
   SSE2, 8.3e-8 AVX2 and AVX-512); below VPPO__EXP_FLUSH it returns exactly 0 (the true
   value is below 2.7e-38, and no denormal is ever produced), -inf gives 0, and no NaN can
   come out. The kernels call it in three forms: exp_core (no range handling; x in
   [-87.3, 88.7]), exp_in (x in [DLOW, 88]: the flush to 0 below VPPO__EXP_FLUSH) and exp
   (any x: clamped first), each kernel the cheapest its inputs allow.
   vlog(x) (JS only, for log(1 + y), y in [0, 1]): exponent split, mantissa in
   [sqrt(1/2), sqrt(2)), log(1+f) = 2 atanh(f/(2+f)) to the 9th power, error a few ulp.
   SSE2 has no FMA: there, fma(a, b, c) is a rounded product plus c, which is why its
   results differ from the other ISAs' in the last bits.
*/
#define VPPO__EXP_FLUSH (-86.5f)
#define VPPO__LN2_HI 0.693359375f           /* 355/512: n * LN2_HI is exact for |n| < 2^15 */
#define VPPO__LN2_LO (-2.12194440e-4f)      /* ln 2 - LN2_HI */
#define VPPO__LOG2E 1.44269504f
#define VPPO__EXP_MAGIC 12582912.0f          /* 1.5 * 2^23: adding it rounds to an integer */
/* e^r on |r| <= ln2/2: a degree-6 polynomial fitted for relative error (iteratively
   reweighted least squares, our own fit; 1.7e-8 with these float coefficients),
   evaluated as c0 + r (c1 + r (c2 + ...)). */
/* The KL kernel's exp (exp_kl): degree 5 with c0 = 1 (exp(0) = 1 and one FMA less; our
   own fit as above, 9.5e-8 with these float coefficients) and a one-step reduction,
   r = x - n LN2 with LN2 = ln 2 rounded to float (1.9e-9 above it; the FMA rounds
   x - n LN2 once): e^r 2^n = e^x e^(-1.9e-9 n), at most 2.8e-9 |x| more. Relative error
   e(x) <= 2e-7 + 3e-9 |x| (the suite checks it on every ISA; measured 1.5e-7 on [-1, 1],
   3.9e-7 at x = -87, where e^x < 2e-38). SSE2 has no FMA, so n LN2 would round: it keeps
   exp_core's two-step reduction. Why that is enough for KL = sum p (du - dv) - log su
   + log sv (SPEC 12: |err| <= 1e-5 + 1e-4 |KL|): with relative errors e_i in the terms,
   log su and log sv move by at most sum p_i e_i <= 2e-7 + 3e-9 sum p_i |d_i| each (q
   for sv), and sum p (du - dv) by at most 2 max-weighted e_i times sum p |du - dv|, each
   e_i weighing its own term: for any rows about 1e-6 (1 + sum p |du - dv|), far under
   the bound (sum p |d| is the entropy-like sum, at most log V + 1 = 13 at V = 151,936;
   sum p |du - dv| is at most a few times KL + 2 log V). The -1.9e-9 n part is a change
   of 1/T by 2.7e-9 relative, which moves KL by far less. Two equal rows still give KL = 0
   exactly: equal d give equal terms. */
#define VPPO__EXPK_LN2 0.693147182f
#define VPPO__EXPK_C1 0.99999970f
#define VPPO__EXPK_C2 0.49999151f
#define VPPO__EXPK_C3 0.16667636f
#define VPPO__EXPK_C4 0.041897930f
#define VPPO__EXPK_C5 0.0082903141f
#define VPPO__EXP_C0 1.0f
#define VPPO__EXP_C1 1.0f
#define VPPO__EXP_C2 0.49999991f
#define VPPO__EXP_C3 0.16666420f
#define VPPO__EXP_C4 0.041668225f
#define VPPO__EXP_C5 0.0083747972f
#define VPPO__EXP_C6 0.0013836717f

/* --- b2. the mapping layer in double, for the O(N) functions -------------------- */
/* The O(N) functions (§2.1 sampled dependency, §5 sequence sums, §7 loss, the per-token
   checks) compute in double on every path, through VPPO__ON_KERNELS below (the loss's
   common case partly on float lanes, b3). Its columns:
   c (plain C, one lane: the portable path, also built without SIMD), SSE2, AVX2, AVX-512F,
   NEON (aarch64). Only IEEE add, subtract, multiply, compare/select and exact bit and
   conversion steps are used, never an FMA, so each lane of every column computes the same
   bits as the plain C one (given no floating-point contraction: -ffp-contract=off, which
   the Makefile sets; see docs/spec.md §12). VD: double vector; VDM: comparison result. */
#define VPPO__DPICK(I, c, s, a, z, n) VPPO__DPICK_##I(c, s, a, z, n)
#define VPPO__DPICK_c(c, s, a, z, n) c
#define VPPO__DPICK_sse2(c, s, a, z, n) s
#define VPPO__DPICK_avx2(c, s, a, z, n) a
#define VPPO__DPICK_avx512(c, s, a, z, n) z
#define VPPO__DPICK_neon(c, s, a, z, n) n

#define VPPO__VD(I)       VPPO__DPICK(I, double,           __m128d,            __m256d,             __m512d,             float64x2_t)
#define VPPO__VDM(I)      VPPO__DPICK(I, int,              __m128d,            __m256d,             __mmask8,            uint64x2_t)
#define VPPO__DW(I)       VPPO__DPICK(I, 1,                2,                  4,                   8,                   2)
#define VPPO__DSET1(I)    VPPO__DPICK(I, (double),         _mm_set1_pd,        _mm256_set1_pd,      _mm512_set1_pd,      vdupq_n_f64)
#define VPPO__DLOADU(I)   VPPO__DPICK(I, *,                _mm_loadu_pd,       _mm256_loadu_pd,     _mm512_loadu_pd,     vld1q_f64)
#define VPPO__DSTOREU(I)  VPPO__DPICK(I, vppo__c_dstore,   _mm_storeu_pd,      _mm256_storeu_pd,    _mm512_storeu_pd,    vst1q_f64)
#define VPPO__DLOADF(I)   VPPO__DPICK(I, (double)*,        VPPO__SSE2_DLOADF,  VPPO__AVX2_DLOADF,   VPPO__AVX512_DLOADF, VPPO__NEON_DLOADF)
#define VPPO__DSTOREF(I)  VPPO__DPICK(I, vppo__c_dstoref,  VPPO__SSE2_DSTOREF, VPPO__AVX2_DSTOREF,  VPPO__AVX512_DSTOREF, VPPO__NEON_DSTOREF)
#define VPPO__DROUNDF(I)  VPPO__DPICK(I, vppo__c_droundf,  VPPO__SSE2_DROUNDF, VPPO__AVX2_DROUNDF,  VPPO__AVX512_DROUNDF, VPPO__NEON_DROUNDF)
#define VPPO__DADD(I)     VPPO__DPICK(I, vppo__c_dadd,     _mm_add_pd,         _mm256_add_pd,       _mm512_add_pd,       vaddq_f64)
#define VPPO__DSUB(I)     VPPO__DPICK(I, vppo__c_dsub,     _mm_sub_pd,         _mm256_sub_pd,       _mm512_sub_pd,       vsubq_f64)
#define VPPO__DMUL(I)     VPPO__DPICK(I, vppo__c_dmul,     _mm_mul_pd,         _mm256_mul_pd,       _mm512_mul_pd,       vmulq_f64)
/* a < b ? a : b and a > b ? a : b exactly (the x86 instructions' rule; NEON by select) */
#define VPPO__DMIN(I)     VPPO__DPICK(I, vppo__c_dmin,     _mm_min_pd,         _mm256_min_pd,       _mm512_min_pd,       VPPO__NEON_DMIN)
#define VPPO__DMAX(I)     VPPO__DPICK(I, vppo__c_dmax,     _mm_max_pd,         _mm256_max_pd,       _mm512_max_pd,       VPPO__NEON_DMAX)
#define VPPO__DABS(I)     VPPO__DPICK(I, fabs,             VPPO__SSE2_DABS,    VPPO__AVX2_DABS,     _mm512_abs_pd,       vabsq_f64)
#define VPPO__DLT(I)      VPPO__DPICK(I, vppo__c_dlt,      _mm_cmplt_pd,       VPPO__AVX2_DLT,      VPPO__AVX512_DLT,    vcltq_f64)
#define VPPO__DLE(I)      VPPO__DPICK(I, vppo__c_dle,      _mm_cmple_pd,       VPPO__AVX2_DLE,      VPPO__AVX512_DLE,    vcleq_f64)
#define VPPO__DGT(I)      VPPO__DPICK(I, vppo__c_dgt,      _mm_cmpgt_pd,       VPPO__AVX2_DGT,      VPPO__AVX512_DGT,    vcgtq_f64)
#define VPPO__DGE(I)      VPPO__DPICK(I, vppo__c_dge,      _mm_cmpge_pd,       VPPO__AVX2_DGE,      VPPO__AVX512_DGE,    vcgeq_f64)
#define VPPO__DEQ(I)      VPPO__DPICK(I, vppo__c_deq,      _mm_cmpeq_pd,       VPPO__AVX2_DEQ,      VPPO__AVX512_DEQ,    vceqq_f64)
#define VPPO__DMAND(I)    VPPO__DPICK(I, vppo__c_mand,     _mm_and_pd,         _mm256_and_pd,       VPPO__AVX512_DMAND,  vandq_u64)
#define VPPO__DSEL(I)     VPPO__DPICK(I, vppo__c_dsel,     VPPO__SSE2_DSEL,    VPPO__AVX2_DSEL,     VPPO__AVX512_DSEL,   vbslq_f64)
/* the lanes where byte p[i] != 0 (i < the width) */
#define VPPO__DFLAG(I)    VPPO__DPICK(I, vppo__c_dflag,    VPPO__SSE2_DFLAG,   VPPO__AVX2_DFLAG,    VPPO__AVX512_DFLAG,  VPPO__NEON_DFLAG)
/* the lanes of a comparison result as the bits of an int (lane i: bit i) */
#define VPPO__DBITS(I)    VPPO__DPICK(I, (int),            _mm_movemask_pd,    _mm256_movemask_pd,  (int),               VPPO__NEON_DBITS)
/* 2^n from t = x log2(e) + 1.5 * 2^52 (n in t's low mantissa bits, -1022 <= n <= 1023) */
#define VPPO__DPOW2(I)    VPPO__DPICK(I, vppo__c_dpow2,    VPPO__SSE2_DPOW2,   VPPO__AVX2_DPOW2,    VPPO__AVX512_DPOW2,  VPPO__NEON_DPOW2)

#define VPPO__SSE2_DLOADF(p) _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(const void *)(p))))
#define VPPO__SSE2_DSTOREF(p, x) _mm_storel_epi64((__m128i *)(void *)(p), _mm_castps_si128(_mm_cvtpd_ps(x)))
#define VPPO__SSE2_DFLAG(p) _mm_cmpneq_pd(_mm_cvtepi32_pd(_mm_set_epi32(0, 0, (p)[1], (p)[0])), _mm_setzero_pd())
#define VPPO__SSE2_DROUNDF(x) _mm_cvtps_pd(_mm_cvtpd_ps(x))
#define VPPO__SSE2_DABS(x) _mm_andnot_pd(_mm_set1_pd(-0.0), x)
#define VPPO__SSE2_DSEL(m, a, b) _mm_or_pd(_mm_and_pd(m, a), _mm_andnot_pd(m, b))
#define VPPO__SSE2_DPOW2(t) _mm_castsi128_pd(_mm_slli_epi64(_mm_add_epi64(_mm_castpd_si128(t), _mm_set1_epi64x(1023)), 52))
#define VPPO__AVX2_DLOADF(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define VPPO__AVX2_DSTOREF(p, x) _mm_storeu_ps(p, _mm256_cvtpd_ps(x))
#define VPPO__AVX2_DFLAG(p) _mm256_cmp_pd(_mm256_cvtepi32_pd(_mm_set_epi32((p)[3], (p)[2], (p)[1], (p)[0])), \
                                            _mm256_setzero_pd(), _CMP_NEQ_OQ)
#define VPPO__AVX2_DROUNDF(x) _mm256_cvtps_pd(_mm256_cvtpd_ps(x))
#define VPPO__AVX2_DABS(x) _mm256_andnot_pd(_mm256_set1_pd(-0.0), x)
#define VPPO__AVX2_DLT(a, b) _mm256_cmp_pd(a, b, _CMP_LT_OQ)
#define VPPO__AVX2_DLE(a, b) _mm256_cmp_pd(a, b, _CMP_LE_OQ)
#define VPPO__AVX2_DGT(a, b) _mm256_cmp_pd(a, b, _CMP_GT_OQ)
#define VPPO__AVX2_DGE(a, b) _mm256_cmp_pd(a, b, _CMP_GE_OQ)
#define VPPO__AVX2_DEQ(a, b) _mm256_cmp_pd(a, b, _CMP_EQ_OQ)
#define VPPO__AVX2_DSEL(m, a, b) _mm256_blendv_pd(b, a, m)
#define VPPO__AVX2_DPOW2(t) _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_castpd_si256(t), _mm256_set1_epi64x(1023)), 52))
#define VPPO__AVX512_DLOADF(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define VPPO__AVX512_DSTOREF(p, x) _mm256_storeu_ps(p, _mm512_cvtpd_ps(x))
#define VPPO__AVX512_DFLAG(p) _mm512_cmpneq_epi64_mask(_mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(const void *)(p))), \
                                                      _mm512_setzero_si512())
#define VPPO__AVX512_DROUNDF(x) _mm512_cvtps_pd(_mm512_cvtpd_ps(x))
#define VPPO__AVX512_DLT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ)
#define VPPO__AVX512_DLE(a, b) _mm512_cmp_pd_mask(a, b, _CMP_LE_OQ)
#define VPPO__AVX512_DGT(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ)
#define VPPO__AVX512_DGE(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ)
#define VPPO__AVX512_DEQ(a, b) _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ)
#define VPPO__AVX512_DMAND(a, b) ((__mmask8)((a) & (b)))
#define VPPO__AVX512_DSEL(m, a, b) _mm512_mask_blend_pd(m, b, a)
#define VPPO__AVX512_DPOW2(t) _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_add_epi64(_mm512_castpd_si512(t), _mm512_set1_epi64(1023)), 52))
#define VPPO__NEON_DLOADF(p) vcvt_f64_f32(vld1_f32(p))
#define VPPO__NEON_DSTOREF(p, x) vst1_f32(p, vcvt_f32_f64(x))
#define VPPO__NEON_DFLAG(p) vcgtq_u64(vcombine_u64(vcreate_u64((p)[0]), vcreate_u64((p)[1])), vdupq_n_u64(0))
#define VPPO__NEON_DROUNDF(x) vcvt_f64_f32(vcvt_f32_f64(x))
#define VPPO__NEON_DMIN(a, b) vbslq_f64(vcltq_f64(a, b), a, b)
#define VPPO__NEON_DMAX(a, b) vbslq_f64(vcgtq_f64(a, b), a, b)
#define VPPO__NEON_DBITS(m) ((int)(vgetq_lane_u64(m, 0) & 1u) | (int)(vgetq_lane_u64(m, 1) & 1u) << 1)
#define VPPO__NEON_DPOW2(t) vreinterpretq_f64_u64(vshlq_n_u64(vaddq_u64(vreinterpretq_u64_f64(t), vdupq_n_u64(1023)), 52))

/* The c column: one lane in plain C. */
static void vppo__c_dstore(double *p, double x) { *p = x; }
static void vppo__c_dstoref(float *p, double x) { *p = (float)x; }
static double vppo__c_droundf(double x) { return (double)(float)x; }
static double vppo__c_dadd(double a, double b) { return a + b; }
static double vppo__c_dsub(double a, double b) { return a - b; }
static double vppo__c_dmul(double a, double b) { return a * b; }
static double vppo__c_dmin(double a, double b) { return a < b ? a : b; }
static double vppo__c_dmax(double a, double b) { return a > b ? a : b; }
static int vppo__c_dlt(double a, double b) { return a < b; }
static int vppo__c_dle(double a, double b) { return a <= b; }
static int vppo__c_dgt(double a, double b) { return a > b; }
static int vppo__c_dge(double a, double b) { return a >= b; }
static int vppo__c_deq(double a, double b) { return a == b; }
static int vppo__c_mand(int a, int b) { return a & b; }
static double vppo__c_dsel(int m, double a, double b) { return m ? a : b; }
static int vppo__c_dflag(const uint8_t *p) { return *p != 0; }
static double vppo__c_dpow2(double t)
{
    uint64_t u;
    memcpy(&u, &t, sizeof u);
    u = (u + 1023u) << 52;
    memcpy(&t, &u, sizeof t);
    return t;
}

/* --- b3. float lanes in every column, for the loss's float path (vppo__<I>_on_lossf) --- */
/* The same five columns as b2 (c, SSE2, AVX2, AVX-512F, NEON) on float lanes: FV a float
   vector of FW lanes, FM a comparison result. Only IEEE float add, subtract, multiply,
   compare/select and conversions to double: each lane of every column computes the same
   bits as the plain C one (no contraction, as in b2). FFLAG(I, p): the lanes where byte p[i]
   != 0; FBITS: a result's lanes as the bits of an int; FLO, FHI: the low and the high
   FW / 2 lanes as doubles (the c column: its one lane, FLO only). Each row is the float
   layer's (section b: VPPO__ADD, ...) with a c column added, but FABS and FBITS. */
#define VPPO__FPICK(I, c, v) VPPO__FPICK_##I(c, v)   /* c: the c column; v: the float layer's row */
#define VPPO__FPICK_c(c, v) c
#define VPPO__FPICK_sse2(c, v) v
#define VPPO__FPICK_avx2(c, v) v
#define VPPO__FPICK_avx512(c, v) v
#define VPPO__FPICK_neon(c, v) v
#define VPPO__FV(I)       VPPO__FPICK(I, float,            VPPO__V(I))
#define VPPO__FM(I)       VPPO__FPICK(I, int,              VPPO__VM(I))
#define VPPO__FW(I)       VPPO__FPICK(I, 1,                VPPO__W(I))
#define VPPO__FSET1(I)    VPPO__FPICK(I, (float),          VPPO__SET1(I))
#define VPPO__FLOADU(I)   VPPO__FPICK(I, *,                VPPO__LOADU(I))
#define VPPO__FSTOREU(I)  VPPO__FPICK(I, vppo__c_fstore,   VPPO__STOREU(I))
#define VPPO__FADD(I)     VPPO__FPICK(I, vppo__c_fadd,     VPPO__ADD(I))
#define VPPO__FSUB(I)     VPPO__FPICK(I, vppo__c_fsub,     VPPO__SUB(I))
#define VPPO__FMUL(I)     VPPO__FPICK(I, vppo__c_fmul,     VPPO__MUL(I))
#define VPPO__FGT(I)      VPPO__FPICK(I, vppo__c_fgt,      VPPO__GT(I))
#define VPPO__FGE(I)      VPPO__FPICK(I, vppo__c_fge,      VPPO__GE(I))
#define VPPO__FMAND(I)    VPPO__FPICK(I, vppo__c_mand,     VPPO__MAND(I))
#define VPPO__FMOR(I)     VPPO__FPICK(I, vppo__c_mor,      VPPO__MOR(I))
/* FMANDNOT(a, b) = b and not a; FKEEP(m, a) = m ? a : +0; FSEL(m, a, b) = m ? a : b */
#define VPPO__FMANDNOT(I) VPPO__FPICK(I, vppo__c_mandnot,  VPPO__MANDNOT(I))
#define VPPO__FKEEP(I)    VPPO__FPICK(I, vppo__c_fkeep,    VPPO__KEEP(I))
#define VPPO__FSEL(I)     VPPO__FPICK(I, vppo__c_fsel,     VPPO__SELECT(I))
#define VPPO__FLO(I)      VPPO__FPICK(I, (double),         VPPO__DLO(I))
#define VPPO__FHI(I)      VPPO__FPICK(I, (double),         VPPO__DHI(I))
#define VPPO__FFLAG(I, p) VPPO__FPICK(I, vppo__c_dflag(p), VPPO__IGT(I)(VPPO__LOAD8(I)(p), VPPO__ISET1(I)(0)))
/* the two rows the float layer does not have */
#define VPPO__FABS(I)     VPPO__DPICK(I, fabsf,            VPPO__SSE2_FABS,    VPPO__AVX2_FABS,     _mm512_abs_ps,       vabsq_f32)
#define VPPO__FBITS(I)    VPPO__DPICK(I, (int),            _mm_movemask_ps,    _mm256_movemask_ps,  (int),               VPPO__NEON_FBITS)

#define VPPO__SSE2_FABS(x) _mm_andnot_ps(_mm_set1_ps(-0.0f), x)
#define VPPO__AVX2_FABS(x) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x)
#define VPPO__NEON_FBITS(m) ((int)(vgetq_lane_u32(m, 0) & 1u) | (int)(vgetq_lane_u32(m, 1) & 1u) << 1 | \
                             (int)(vgetq_lane_u32(m, 2) & 1u) << 2 | (int)(vgetq_lane_u32(m, 3) & 1u) << 3)
static void vppo__c_fstore(float *p, float x) { *p = x; }
static float vppo__c_fadd(float a, float b) { return a + b; }
static float vppo__c_fsub(float a, float b) { return a - b; }
static float vppo__c_fmul(float a, float b) { return a * b; }
static int vppo__c_fgt(float a, float b) { return a > b; }
static int vppo__c_fge(float a, float b) { return a >= b; }
static int vppo__c_mor(int a, int b) { return a | b; }
static int vppo__c_mandnot(int a, int b) { return b & ~a; }
static float vppo__c_fkeep(int m, float a) { return m ? a : 0.0f; }
static float vppo__c_fsel(int m, float a, float b) { return m ? a : b; }

/* --- c2. the O(N) kernels, once for every ISA and the plain C path ---------------- */
/* vexp in double (VPPO__ON_KERNELS' dexp): n = round(x log2 e) by adding 1.5 * 2^52,
   Cody-Waite reduction x = n ln2 + r with ln2 split in two (n * VPPO__DLN2_HI is exact),
   |r| <= ln2/2, e^r by its Taylor polynomial of degree 13 in Estrin form (short chains of
   dependent operations; truncation below 5e-18 relative), 2^n put in the exponent field.
   No FMA: the same operations in every column. Against libm's exp on [-708, 709] it is
   within VPPO__DEXP_ULP = 3 ulp of a double (the suite checks it on every ISA the machine
   runs; measured 2 ulp on the plain C path, SSE2, AVX2, AVX-512 and NEON); 0 below -708
   (and for -inf), +inf above 709. NaN never reaches it (the inputs are checked first).
   Double, not float: see docs/spec.md §12. */
#define VPPO__DEXP_LO (-708.0)
#define VPPO__DEXP_HI 709.0
#define VPPO__DEXP_MAGIC 6755399441055744.0          /* 1.5 * 2^52 */
#define VPPO__DLOG2E 1.4426950408889634
#define VPPO__DLN2_HI 6.93147180369123816490e-01     /* 32 significant bits */
#define VPPO__DLN2_LO 1.90821492927058770002e-10     /* ln 2 - VPPO__DLN2_HI */
#define VPPO__DEXP_ULP 3
/* 1/0!, 1/1!, ..., 1/13! */
static const double vppo__dexp_c[14] = {
    1.0, 1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0, 1.0 / 40320.0,
    1.0 / 362880.0, 1.0 / 3628800.0, 1.0 / 39916800.0, 1.0 / 479001600.0, 1.0 / 6227020800.0
};
/* 1/2!, ..., 1/13!: e^r - 1 - r = r^2 (1/2! + r/3! + ...) */
static const double vppo__k3g_c[12] = {
    0.5, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0, 1.0 / 40320.0, 1.0 / 362880.0,
    1.0 / 3628800.0, 1.0 / 39916800.0, 1.0 / 479001600.0, 1.0 / 6227020800.0
};

#if defined(__GNUC__) || defined(__clang__)
#define VPPO__ON_INLINE static __inline__ __attribute__((always_inline))
#else
#define VPPO__ON_INLINE static
#endif

/* The flags of a chunk of n tokens at t, for VPPO__DFLAG: flags + t for a whole chunk
   (NULL stays NULL); a short one copied to buf with zeros after it, or with valid = 1 and
   flags NULL, buf[i] = 1 for i < n and 0 after (the lanes that exist). */
VPPO__ON_INLINE const uint8_t *vppo__on_bytes(const uint8_t *flags, int64_t t, int n, int valid, uint8_t *buf)
{
    int i;
    if (n == VPPO__ON_CH) return flags ? flags + t : NULL;
    if (!flags && !valid) return NULL;
    for (i = 0; i < VPPO__ON_CH; ++i) buf[i] = (uint8_t)(i < n && (!flags || flags[t + i] != 0));
    return buf;
}

/* x + t for a whole chunk; a short one copied to buf with zeros after it; NULL stays NULL. */
VPPO__ON_INLINE const float *vppo__on_src(const float *x, int64_t t, int n, float *buf)
{
    if (!x || n == VPPO__ON_CH) return x ? x + t : NULL;
    memcpy(buf, x + t, (size_t)n * sizeof *buf);
    memset(buf + n, 0, (size_t)(VPPO__ON_CH - n) * sizeof *buf);
    return buf;
}

/* The distinct arrays of a check (an array in two slots, like logp_old in vppo_step's, is
   read once): x[0..n), and of[j], the index of slot j's array (-1: none); pair: the
   pair and PROB_DROP checks have both their arrays (indices of[0], of[1]). */
typedef struct vppo__on_arrays {
    const float *x[VPPO__ON_NCHECK];
    int of[VPPO__ON_NCHECK], n, pair;
} vppo__on_arrays;

static void vppo__on_check_arrays(const vppo__on_check *c, vppo__on_arrays *A)
{
    int j, a;
    A->n = 0;
    for (j = 0; j < VPPO__ON_NCHECK; ++j) {
        A->of[j] = -1;
        if (!c->x[j]) continue;
        for (a = 0; a < A->n && A->x[a] != c->x[j]; ++a) {}
        if (a == A->n) A->x[A->n++] = c->x[j];
        A->of[j] = a;
    }
    A->pair = (c->pair || c->prob_drop) && c->x[0] && c->x[1];
}

/* The groups that fail, from what a check kernel saw at the valid positions of each
   distinct array: pos[a], NaN or +inf; ninf[a], -inf; pair, both of the pair -inf at one
   position; drop, the PROB_DROP check failed. */
static int vppo__on_check_groups(const vppo__on_check *c, const vppo__on_arrays *A, const int *pos,
                                 const int *ninf, int pair, int drop)
{
    int j, bits = 0;
    for (j = 0; j < VPPO__ON_NCHECK; ++j) {
        const int a = A->of[j];
        if (a >= 0 && (pos[a] || (ninf[a] && !c->ninf_ok[j]))) bits |= c->group[j];
    }
    if ((c->pair && pair) || drop) bits |= c->group[0];
    return bits;
}

/* What a scan (vppo__<I>_on_scan) saw at the valid positions of [t0, t1) of one array: */
#define VPPO__ON_POS  1            /* NaN or +inf */
#define VPPO__ON_NINF 2            /* -inf */
#define VPPO__ON_BIG  4            /* above 88, or NaN (only when asked: hi) */
#define VPPO__ON_SUB  1024         /* the tokens of one sub-block of vppo__on_check_drive */

/* A short run of n tokens at t of x and mask, padded to w lanes: buf with zeros after x's,
   mbuf 1 at the valid ones (every one without a mask), 0 after them. */
static void vppo__on_tail(const float *x, const uint8_t *mask, int64_t t, int n, int w, float *buf, uint8_t *mbuf)
{
    int i;
    for (i = 0; i < w; ++i) {
        buf[i] = i < n ? x[t + i] : 0.0f;
        mbuf[i] = (uint8_t)(i < n && (!mask || mask[t + i]));
    }
}

typedef int (*vppo__on_scan_fn)(const float *x, const uint8_t *mask, int64_t t0, int64_t t1, int hi);
typedef int (*vppo__on_pdrop_fn)(const float *a, const float *b, const uint8_t *pm);

/* The check kernel of every ISA over its scan and PROB_DROP test: sub-blocks of
   VPPO__ON_SUB tokens, and in each, one scan per distinct array (each array read once from
   memory), first without the mask: only when that finds something (a bad value, or
   garbage at a masked-out position) is the sub-block, still in cache, scanned again with
   it. The pair and PROB_DROP checks look at the two arrays together only in a
   sub-block where both scans saw -inf (the pair) or one saw a value above 88 (PROB_DROP,
   in the ISA's double exponentials, 16 tokens at a time): rare in real data, and the
   sub-block is then still in cache. */
static int vppo__on_check_drive(const vppo__on_check *c, int64_t t0, int64_t t1, vppo__on_scan_fn scan,
                                vppo__on_pdrop_fn pdrop)
{
    vppo__on_arrays A;
    int a, pos[VPPO__ON_NCHECK] = { 0 }, ninf[VPPO__ON_NCHECK] = { 0 }, pair = 0, drop = 0;
    int64_t s0, t;
    vppo__on_check_arrays(c, &A);
    for (s0 = t0; s0 < t1; s0 += VPPO__ON_SUB) {
        const int64_t s1 = vppo__min64(t1, s0 + VPPO__ON_SUB);
        int f[VPPO__ON_NCHECK];
        for (a = 0; a < A.n; ++a) {
            const int hi = c->prob_drop && A.pair && (a == A.of[0] || a == A.of[1]);
            f[a] = scan(A.x[a], NULL, s0, s1, hi);   /* masked-out positions are rarely suspect */
            if (f[a] && c->mask) f[a] = scan(A.x[a], c->mask, s0, s1, hi);
            pos[a] |= f[a] & VPPO__ON_POS;
            ninf[a] |= f[a] & VPPO__ON_NINF;
        }
        if (!A.pair) continue;
        if (c->pair && (f[A.of[0]] & f[A.of[1]] & VPPO__ON_NINF))
            for (t = s0; t < s1; ++t)
                pair |= (!c->mask || c->mask[t]) && A.x[A.of[0]][t] < -FLT_MAX && A.x[A.of[1]][t] < -FLT_MAX;
        if (c->prob_drop && ((f[A.of[0]] | f[A.of[1]]) & VPPO__ON_BIG))
            for (t = s0; t < s1; t += VPPO__ON_CH) {
                const int n = (int)vppo__min64(VPPO__ON_CH, s1 - t);
                float ba[VPPO__ON_CH], bb[VPPO__ON_CH];
                uint8_t mb[VPPO__ON_CH];
                if (n == VPPO__ON_CH) {
                    drop |= pdrop(A.x[A.of[0]] + t, A.x[A.of[1]] + t, c->mask ? c->mask + t : NULL);
                } else {
                    vppo__on_tail(A.x[A.of[0]], c->mask, t, n, VPPO__ON_CH, ba, mb);
                    vppo__on_tail(A.x[A.of[1]], c->mask, t, n, VPPO__ON_CH, bb, mb);
                    drop |= pdrop(ba, bb, mb);
                }
            }
    }
    return vppo__on_check_groups(c, &A, pos, ninf, pair, drop);
}

/* vppo__popc[b]: the number of bits set in b (the loss's counts, from the lane bits). */
#define VPPO__POPC2(n) n, n + 1, n + 1, n + 2
#define VPPO__POPC4(n) VPPO__POPC2(n), VPPO__POPC2(n + 1), VPPO__POPC2(n + 1), VPPO__POPC2(n + 2)
#define VPPO__POPC6(n) VPPO__POPC4(n), VPPO__POPC4(n + 1), VPPO__POPC4(n + 1), VPPO__POPC4(n + 2)
static const unsigned char vppo__popc[256] = { VPPO__POPC6(0), VPPO__POPC6(1), VPPO__POPC6(1), VPPO__POPC6(2) };
static int vppo__popc16(int b) { return vppo__popc[b & 255] + vppo__popc[(b >> 8) & 255]; }

/* The VPPO__ON_CH partial sums, added pairwise in a fixed order. */
static double vppo__on_fold(double *slot)
{
    int step, k;
    for (step = 1; step < VPPO__ON_CH; step *= 2)
        for (k = 0; k + step < VPPO__ON_CH; k += 2 * step) slot[k] += slot[k + step];
    return slot[0];
}

/* VPPO__ON_KERNELS(I, ATTR) defines vppo__<I>_dexp, _k3g, the three kernels of
   vppo__on_kernels for ISA I (c: plain C) with the target attribute ATTR, and the table
   vppo__on_kernels_<I>. */
/* The loss's float path (vppo__<I>_on_lossf): the largest |rho| and |adv| it takes, and
   the least distance of rho from a clip bound (docs/spec.md §12 derives its error). */
#define VPPO__LF_RMAX 0.34f
#define VPPO__LF_AMAX 4.0f
#define VPPO__LF_GAP 2.384185791015625e-07f          /* 2^-22 */

#define VPPO__ON_KERNELS(I, ATTR) \
/* c[0] + c[1] x + c[2] x^2 + c[3] x^3, in Estrin form (x2 = x^2) */ \
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_estrin3(const double *c, VPPO__VD(I) x, VPPO__VD(I) x2) \
{ \
    return VPPO__DADD(I)(VPPO__DADD(I)(VPPO__DSET1(I)(c[0]), VPPO__DMUL(I)(VPPO__DSET1(I)(c[1]), x)), \
                         VPPO__DMUL(I)(VPPO__DADD(I)(VPPO__DSET1(I)(c[2]), VPPO__DMUL(I)(VPPO__DSET1(I)(c[3]), x)), x2)); \
} \
\
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_dexp(VPPO__VD(I) x) \
{ \
    const VPPO__VD(I) lo = VPPO__DSET1(I)(VPPO__DEXP_LO), hi = VPPO__DSET1(I)(VPPO__DEXP_HI); \
    const VPPO__VD(I) magic = VPPO__DSET1(I)(VPPO__DEXP_MAGIC); \
    const VPPO__VDM(I) keep = VPPO__DGE(I)(x, lo), big = VPPO__DGT(I)(x, hi); \
    const VPPO__VD(I) xc = VPPO__DMIN(I)(VPPO__DMAX(I)(x, lo), hi); \
    const VPPO__VD(I) t = VPPO__DADD(I)(VPPO__DMUL(I)(xc, VPPO__DSET1(I)(VPPO__DLOG2E)), magic); \
    const VPPO__VD(I) n = VPPO__DSUB(I)(t, magic); \
    const VPPO__VD(I) r = VPPO__DSUB(I)(VPPO__DSUB(I)(xc, VPPO__DMUL(I)(n, VPPO__DSET1(I)(VPPO__DLN2_HI))), \
                                        VPPO__DMUL(I)(n, VPPO__DSET1(I)(VPPO__DLN2_LO))); \
    const VPPO__VD(I) r2 = VPPO__DMUL(I)(r, r), r4 = VPPO__DMUL(I)(r2, r2), r8 = VPPO__DMUL(I)(r4, r4); \
    VPPO__VD(I) p = VPPO__DADD(I)(vppo__##I##_on_estrin3(vppo__dexp_c, r, r2), \
                                  VPPO__DMUL(I)(vppo__##I##_on_estrin3(vppo__dexp_c + 4, r, r2), r4)); \
    p = VPPO__DADD(I)(p, VPPO__DMUL(I)(VPPO__DADD(I)(vppo__##I##_on_estrin3(vppo__dexp_c + 8, r, r2), \
        VPPO__DMUL(I)(VPPO__DADD(I)(VPPO__DSET1(I)(vppo__dexp_c[12]), VPPO__DMUL(I)(VPPO__DSET1(I)(vppo__dexp_c[13]), r)), \
                      r4)), r8)); \
    p = VPPO__DMUL(I)(p, VPPO__DPOW2(I)(t)); \
    p = VPPO__DSEL(I)(keep, p, VPPO__DSET1(I)(0.0)); \
    return VPPO__DSEL(I)(big, VPPO__DSET1(I)(HUGE_VAL), p); \
} \
\
/* q = e^r - 1 - r = r^2 (1/2! + r/3! + ...) for |r| <= ln2/2, to the term r^10/10! (full \
   = 0: truncation below 4e-12 relative to q, for K3's float results) or r^13/13! (full: \
   below 1e-17 relative to e^r). */ \
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_q(VPPO__VD(I) r, int full) \
{ \
    const VPPO__VD(I) r2 = VPPO__DMUL(I)(r, r), r4 = VPPO__DMUL(I)(r2, r2); \
    VPPO__VD(I) q = vppo__##I##_on_estrin3(vppo__k3g_c + 4, r, r2); \
    if (full) \
        q = VPPO__DADD(I)(q, VPPO__DMUL(I)(vppo__##I##_on_estrin3(vppo__k3g_c + 8, r, r2), r4)); \
    else \
        q = VPPO__DADD(I)(q, VPPO__DMUL(I)(VPPO__DSET1(I)(vppo__k3g_c[8]), r4)); \
    q = VPPO__DADD(I)(vppo__##I##_on_estrin3(vppo__k3g_c, r, r2), VPPO__DMUL(I)(q, r4)); \
    return VPPO__DMUL(I)(q, r2); \
} \
\
/* The reduction of vexp for |x| <= 20 (the callers clamp; no range checks): \
   t = x log2 e + 1.5 * 2^52, n = round(x log2 e) (+0 when it rounds to 0). */ \
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_round(VPPO__VD(I) x, VPPO__VD(I) *t) \
{ \
    const VPPO__VD(I) magic = VPPO__DSET1(I)(VPPO__DEXP_MAGIC); \
    *t = VPPO__DADD(I)(VPPO__DMUL(I)(x, VPPO__DSET1(I)(VPPO__DLOG2E)), magic); \
    return VPPO__DSUB(I)(*t, magic); \
} \
\
/* x - n ln2 with ln2 in two parts (n * VPPO__DLN2_HI exact): |r| <= ln2/2; x itself when \
   n = +0. */ \
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_reduce(VPPO__VD(I) x, VPPO__VD(I) n) \
{ \
    return VPPO__DSUB(I)(VPPO__DSUB(I)(x, VPPO__DMUL(I)(n, VPPO__DSET1(I)(VPPO__DLN2_HI))), \
                         VPPO__DMUL(I)(n, VPPO__DSET1(I)(VPPO__DLN2_LO))); \
} \
\
/* e^x - 1 - x for |x| <= 20, branch-free and without cancellation: q(x) where n = 0 (there \
   r = x exactly), else 2^n (r + q(r)) + (2^n - 1) - x (|x| >= ~0.35 there: the result is \
   >= 0.05, a few bits at most lost to the last subtraction). The one-lane column skips \
   the second formula where n = 0: the same operations on what it returns. */ \
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_k3g(VPPO__VD(I) x) \
{ \
    VPPO__VD(I) t, r, q, s; \
    const VPPO__VD(I) n = vppo__##I##_on_round(x, &t); \
    const VPPO__VDM(I) n0 = VPPO__DEQ(I)(n, VPPO__DSET1(I)(0.0)); \
    if (VPPO__DW(I) == 1 && VPPO__DBITS(I)(n0)) return vppo__##I##_on_q(x, 0); \
    r = vppo__##I##_on_reduce(x, n); \
    q = vppo__##I##_on_q(r, 0); \
    s = VPPO__DPOW2(I)(t); \
    return VPPO__DSEL(I)(n0, q, VPPO__DSUB(I)(VPPO__DADD(I)(VPPO__DMUL(I)(s, VPPO__DADD(I)(r, q)), \
                                                             VPPO__DSUB(I)(s, VPPO__DSET1(I)(1.0))), x)); \
} \
\
/* e^x for |x| <= 20 (the loss's clamped log-ratios): 2^n (1 + (r + q)); within \
   VPPO__DEXP_ULP ulp of libm's exp like vexp, fewer operations (no range checks). */ \
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_exp20(VPPO__VD(I) x) \
{ \
    VPPO__VD(I) t; \
    const VPPO__VD(I) r = vppo__##I##_on_reduce(x, vppo__##I##_on_round(x, &t)); \
    return VPPO__DMUL(I)(VPPO__DPOW2(I)(t), VPPO__DADD(I)(VPPO__DSET1(I)(1.0), VPPO__DADD(I)(r, vppo__##I##_on_q(r, 1)))); \
} \
\
/* lane 0 of v */ \
ATTR VPPO__ON_INLINE double vppo__##I##_on_lane0(VPPO__VD(I) v) \
{ \
    double lane[VPPO__DW(I)]; \
    VPPO__DSTOREU(I)(lane, v); \
    return lane[0]; \
} \
\
/* vexp and the loss's exp of one value (the table's exp and exp20: tests, constants) */ \
ATTR static double vppo__##I##_on_exp1(double x) { return vppo__##I##_on_lane0(vppo__##I##_on_dexp(VPPO__DSET1(I)(x))); } \
ATTR static double vppo__##I##_on_exp20_1(double x) { return vppo__##I##_on_lane0(vppo__##I##_on_exp20(VPPO__DSET1(I)(x))); } \
\
/* vppo__clamp(x, lo, hi) of §2.1 and §7 as min(max(x, lo), hi): the same for every \
   non-NaN x */ \
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_clamp(VPPO__VD(I) x, double lo, double hi) \
{ \
    return VPPO__DMIN(I)(VPPO__DMAX(I)(x, VPPO__DSET1(I)(lo)), VPPO__DSET1(I)(hi)); \
} \
\
/* One vector of the sampled dependency (§2.1; vppo__sampled_dep is the reference). */ \
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_est(int est, VPPO__VD(I) a, VPPO__VD(I) b) \
{ \
    const VPPO__VD(I) d = vppo__##I##_on_clamp(VPPO__DSUB(I)(b, a), -20.0, 20.0); \
    switch (est) { \
    case VPPO_EST_K1:  return VPPO__DMUL(I)(d, VPPO__DSET1(I)(-1.0)); \
    case VPPO_EST_K2:  return VPPO__DMUL(I)(VPPO__DMUL(I)(VPPO__DSET1(I)(0.5), d), d); \
    case VPPO_EST_ABS: return VPPO__DABS(I)(d); \
    case VPPO_EST_PROB_DROP: return VPPO__DSUB(I)(vppo__##I##_on_dexp(a), vppo__##I##_on_dexp(b)); \
    default: return vppo__##I##_on_clamp(vppo__##I##_on_k3g(d), 0.0, 10.0); \
    } \
} \
\
ATTR static double vppo__##I##_on_fold(VPPO__VD(I) *acc) \
{ \
    double slot[VPPO__ON_CH]; \
    int k; \
    for (k = 0; k < VPPO__ON_CH / VPPO__DW(I); ++k) VPPO__DSTOREU(I)(slot + k * VPPO__DW(I), acc[k]); \
    return vppo__on_fold(slot); \
} \
\
/* The sampled estimator op of a and b into out (0 where masked), returning the sum of the \
   stored floats; or, op = VPPO__ON_SUM (out NULL), the sum of a (b NULL) or of a - b. \
   Inlined with a constant op for K3 (the default) and the sums. */ \
ATTR VPPO__ON_INLINE double vppo__##I##_on_map_body(const float *a, const float *b, const uint8_t *mask, int64_t t0, \
    int64_t t1, const int op, float *out) \
{ \
    const VPPO__VD(I) zero = VPPO__DSET1(I)(0.0); \
    VPPO__VD(I) acc[VPPO__ON_CH / VPPO__DW(I)]; \
    uint8_t bv[VPPO__ON_CH]; \
    float ba[VPPO__ON_CH], bb[VPPO__ON_CH], bo[VPPO__ON_CH]; \
    int64_t t; \
    int k; \
    for (k = 0; k < VPPO__ON_CH / VPPO__DW(I); ++k) acc[k] = zero; \
    for (t = t0; t < t1; t += VPPO__ON_CH) { \
        const int n = (int)vppo__min64(VPPO__ON_CH, t1 - t); \
        const uint8_t *ok = vppo__on_bytes(mask, t, n, 1, bv); \
        const float *pa = vppo__on_src(a, t, n, ba), *pb = vppo__on_src(b, t, n, bb); \
        float *po = n == VPPO__ON_CH && out ? out + t : bo; \
        for (k = 0; k < VPPO__ON_CH / VPPO__DW(I); ++k) { \
            VPPO__VD(I) v = VPPO__DLOADF(I)(pa + k * VPPO__DW(I)); \
            if (op != VPPO__ON_SUM) v = vppo__##I##_on_est(op, v, VPPO__DLOADF(I)(pb + k * VPPO__DW(I))); \
            else if (pb) v = VPPO__DSUB(I)(v, VPPO__DLOADF(I)(pb + k * VPPO__DW(I))); \
            if (ok) v = VPPO__DSEL(I)(VPPO__DFLAG(I)(ok + k * VPPO__DW(I)), v, zero); \
            if (out) { \
                VPPO__DSTOREF(I)(po + k * VPPO__DW(I), v); \
                v = VPPO__DROUNDF(I)(v); \
            } \
            acc[k] = VPPO__DADD(I)(acc[k], v); \
        } \
        if (out && n < VPPO__ON_CH) memcpy(out + t, bo, (size_t)n * sizeof *bo); \
    } \
    return vppo__##I##_on_fold(acc); \
} \
\
ATTR static double vppo__##I##_on_map(const float *a, const float *b, const uint8_t *mask, int64_t t0, int64_t t1, \
    int op, float *out) \
{ \
    if (op == VPPO_EST_K3) return vppo__##I##_on_map_body(a, b, mask, t0, t1, VPPO_EST_K3, out); \
    if (op == VPPO__ON_SUM) return vppo__##I##_on_map_body(a, b, mask, t0, t1, VPPO__ON_SUM, out); \
    return vppo__##I##_on_map_body(a, b, mask, t0, t1, op, out); \
} \
\
/* The KL penalty of one vector and its derivative (vppo__kl_term is the reference). */ \
ATTR VPPO__ON_INLINE VPPO__VD(I) vppo__##I##_on_kl(int kind, VPPO__VD(I) k, VPPO__VD(I) *grad) \
{ \
    const VPPO__VD(I) zero = VPPO__DSET1(I)(0.0), one = VPPO__DSET1(I)(1.0), mone = VPPO__DSET1(I)(-1.0); \
    VPPO__VD(I) nk, x, raw; \
    switch (kind) { \
    case VPPO_KL_K1: *grad = one; return k; \
    case VPPO_KL_ABS: \
        *grad = VPPO__DSEL(I)(VPPO__DGT(I)(k, zero), one, VPPO__DSEL(I)(VPPO__DLT(I)(k, zero), mone, zero)); \
        return VPPO__DABS(I)(k); \
    case VPPO_KL_K2: *grad = k; return VPPO__DMUL(I)(VPPO__DMUL(I)(VPPO__DSET1(I)(0.5), k), k); \
    case VPPO_KL_K3: \
        nk = VPPO__DMUL(I)(k, mone); \
        x = vppo__##I##_on_clamp(nk, -20.0, 20.0); \
        raw = vppo__##I##_on_k3g(x); \
        *grad = VPPO__DSEL(I)(VPPO__DMAND(I)(VPPO__DMAND(I)(VPPO__DGT(I)(nk, VPPO__DSET1(I)(-20.0)), \
                                                            VPPO__DLT(I)(nk, VPPO__DSET1(I)(20.0))), \
                                             VPPO__DLT(I)(raw, VPPO__DSET1(I)(10.0))), \
                              VPPO__DMUL(I)(VPPO__DADD(I)(raw, x), mone), zero); \
        return vppo__##I##_on_clamp(raw, -10.0, 10.0); \
    default: *grad = zero; return zero; \
    } \
} \
\
/* The loss of [t0, t1); gen = 0 (a constant) compiles the common case alone: PG_CLIP or \
   PG_DUAL_CLIP at token level, no KL, no weight, clip bounds inside the clamp, the token's \
   own gradient (the same bits as gen = 1 on the same input). */ \
ATTR VPPO__ON_INLINE int vppo__##I##_on_loss_body(const vppo__on_loss *L, int64_t t0, int64_t t1, double *sums, \
                                                  const int gen) \
{ \
    enum { NV = VPPO__ON_CH / VPPO__DW(I), W = VPPO__DW(I) }; \
    const VPPO__VD(I) zero = VPPO__DSET1(I)(0.0), one = VPPO__DSET1(I)(1.0), mone = VPPO__DSET1(I)(-1.0); \
    const VPPO__VD(I) m20 = VPPO__DSET1(I)(-20.0), p20 = VPPO__DSET1(I)(20.0); \
    const VPPO__VD(I) log_lo = VPPO__DSET1(I)(L->log_lo), log_hi = VPPO__DSET1(I)(L->log_hi); \
    const VPPO__VD(I) r_lo = VPPO__DSET1(I)(L->r_lo), r_hi = VPPO__DSET1(I)(L->r_hi); \
    const VPPO__VD(I) dual = VPPO__DSET1(I)(L->dual), vrho = VPPO__DSET1(I)(L->rho), vdpg = VPPO__DSET1(I)(L->dpg); \
    const VPPO__VD(I) coef = VPPO__DSET1(I)(L->coef), kc = VPPO__DSET1(I)(L->kl_coef), ec = VPPO__DSET1(I)(L->ent_coef); \
    const VPPO__VD(I) fmax = VPPO__DSET1(I)(FLT_MAX); \
    const VPPO__VDM(I) dual_on = VPPO__DLT(I)(zero, dual); \
    const int cispo = gen && L->pg_kind == VPPO_PG_CISPO, kl_on = gen && L->kl_kind != VPPO_KL_NONE; \
    const int seq_rho = gen && L->seq_rho, far = gen && L->far, fixed = gen && L->fixed_dpg; \
    const float *weight = gen ? L->weight : NULL; \
    VPPO__VD(I) a_pg[NV], a_kl[NV], a_ent[NV], a_dpg[NV], a_ppo[NV]; \
    int64_t n_clip = 0, n_cd = 0, n_sel = 0;     /* exact: counted from the lane bits */ \
    int bad = 0; \
    uint8_t b_ok[VPPO__ON_CH], b_sel[VPPO__ON_CH]; \
    float b_lp[VPPO__ON_CH], b_lo[VPPO__ON_CH], b_ref[VPPO__ON_CH], b_adv[VPPO__ON_CH], b_w[VPPO__ON_CH], b_g[VPPO__ON_CH]; \
    int64_t t; \
    int k; \
    for (k = 0; k < NV; ++k) a_pg[k] = a_kl[k] = a_ent[k] = a_dpg[k] = a_ppo[k] = zero; \
    for (t = t0; t < t1; t += VPPO__ON_CH) { \
        const int n = (int)vppo__min64(VPPO__ON_CH, t1 - t); \
        const uint8_t *ok_ = vppo__on_bytes(L->mask, t, n, 1, b_ok), *sel_ = vppo__on_bytes(L->select, t, n, 0, b_sel); \
        const float *lp_ = vppo__on_src(L->logp, t, n, b_lp), *lo_ = vppo__on_src(L->logp_old, t, n, b_lo); \
        const float *ref_ = kl_on ? vppo__on_src(L->logp_ref, t, n, b_ref) : NULL; \
        const float *adv_ = vppo__on_src(L->adv, t, n, b_adv), *w_ = vppo__on_src(weight, t, n, b_w); \
        float *g_ = n == VPPO__ON_CH && L->dlogp ? L->dlogp + t : b_g; \
        for (k = 0; k < NV; ++k) { \
            const VPPO__VD(I) lp = VPPO__DLOADF(I)(lp_ + k * W), adv = VPPO__DLOADF(I)(adv_ + k * W); \
            const VPPO__VD(I) delta = VPPO__DSUB(I)(lp, VPPO__DLOADF(I)(lo_ + k * W)); \
            const VPPO__VD(I) rho = seq_rho ? vrho : delta; \
            const VPPO__VD(I) r = vppo__##I##_on_exp20(vppo__##I##_on_clamp(rho, -20.0, 20.0)); \
            const VPPO__VD(I) rmid = far ? VPPO__DSEL(I)(VPPO__DMAND(I)(VPPO__DGE(I)(rho, m20), VPPO__DLE(I)(rho, p20)), \
                                                         r, vppo__##I##_on_dexp(rho)) : r; \
            const VPPO__VD(I) rhat = VPPO__DSEL(I)(VPPO__DLT(I)(rho, log_lo), r_lo, \
                                                   VPPO__DSEL(I)(VPPO__DGT(I)(rho, log_hi), r_hi, rmid)); \
            const VPPO__VD(I) nadv = VPPO__DMUL(I)(adv, mone); \
            const VPPO__VD(I) L1 = VPPO__DMUL(I)(nadv, r), L2 = VPPO__DMUL(I)(nadv, rhat), L3 = VPPO__DMUL(I)(nadv, dual); \
            const VPPO__VD(I) H = VPPO__DMAX(I)(L1, L2); \
            const VPPO__VDM(I) cdual = VPPO__DMAND(I)(VPPO__DMAND(I)(VPPO__DLT(I)(adv, zero), dual_on), VPPO__DGT(I)(H, L3)); \
            VPPO__VD(I) w = sel_ ? VPPO__DSEL(I)(VPPO__DFLAG(I)(sel_ + k * W), one, zero) : one; \
            VPPO__VD(I) v_pg, v_kl = zero, v_ent, v_dpg, v_ppo, dkl = zero; \
            int okb = (1 << W) - 1; \
            if (w_) w = VPPO__DMUL(I)(w, VPPO__DLOADF(I)(w_ + k * W)); \
            if (kl_on) v_kl = vppo__##I##_on_kl(L->kl_kind, VPPO__DSUB(I)(lp, VPPO__DLOADF(I)(ref_ + k * W)), &dkl); \
            if (cispo) { \
                v_pg = VPPO__DMUL(I)(w, VPPO__DMUL(I)(L2, lp)); \
                v_dpg = VPPO__DMUL(I)(w, L2); \
            } else { \
                const VPPO__VDM(I) open = VPPO__DMAND(I)(VPPO__DGT(I)(rho, m20), VPPO__DLT(I)(rho, p20)); \
                v_pg = VPPO__DMUL(I)(w, VPPO__DSEL(I)(cdual, L3, H)); \
                v_dpg = VPPO__DSEL(I)(cdual, zero, VPPO__DSEL(I)(VPPO__DMAND(I)(VPPO__DGE(I)(L1, L2), open), \
                                                                     VPPO__DMUL(I)(w, L1), zero)); \
            } \
            v_ent = VPPO__DMUL(I)(lp, mone); \
            v_ppo = VPPO__DMUL(I)(delta, mone); \
            if (ok_) { \
                const VPPO__VDM(I) ok = VPPO__DFLAG(I)(ok_ + k * W); \
                okb = VPPO__DBITS(I)(ok); \
                v_pg = VPPO__DSEL(I)(ok, v_pg, zero); v_kl = VPPO__DSEL(I)(ok, v_kl, zero); \
                v_ent = VPPO__DSEL(I)(ok, v_ent, zero); v_dpg = VPPO__DSEL(I)(ok, v_dpg, zero); \
                v_ppo = VPPO__DSEL(I)(ok, v_ppo, zero); dkl = VPPO__DSEL(I)(ok, dkl, zero); \
            } \
            n_clip += vppo__popc[VPPO__DBITS(I)(VPPO__DLT(I)(L1, L2)) & okb]; \
            n_cd += vppo__popc[VPPO__DBITS(I)(cdual) & okb]; \
            n_sel += vppo__popc[~VPPO__DBITS(I)(VPPO__DEQ(I)(w, zero)) & okb]; \
            a_pg[k] = VPPO__DADD(I)(a_pg[k], v_pg); \
            if (kl_on) a_kl[k] = VPPO__DADD(I)(a_kl[k], v_kl); \
            a_ent[k] = VPPO__DADD(I)(a_ent[k], v_ent); a_dpg[k] = VPPO__DADD(I)(a_dpg[k], v_dpg); \
            a_ppo[k] = VPPO__DADD(I)(a_ppo[k], v_ppo); \
            if (L->dlogp) { \
                VPPO__VD(I) g = VPPO__DMUL(I)(coef, VPPO__DSUB(I)(VPPO__DADD(I)(fixed ? vdpg : v_dpg, \
                                                                              VPPO__DMUL(I)(kc, dkl)), ec)); \
                if (ok_) g = VPPO__DSEL(I)(VPPO__DFLAG(I)(ok_ + k * W), g, zero); \
                bad |= VPPO__DBITS(I)(VPPO__DLE(I)(VPPO__DABS(I)(g), fmax)) ^ ((1 << W) - 1); \
                VPPO__DSTOREF(I)(g_ + k * W, g); \
            } \
        } \
        if (L->dlogp && n < VPPO__ON_CH) memcpy(L->dlogp + t, b_g, (size_t)n * sizeof *b_g); \
    } \
    sums[VPPO__ON_PG] = vppo__##I##_on_fold(a_pg); sums[VPPO__ON_KL] = vppo__##I##_on_fold(a_kl); \
    sums[VPPO__ON_ENT] = vppo__##I##_on_fold(a_ent); sums[VPPO__ON_DPG] = vppo__##I##_on_fold(a_dpg); \
    sums[VPPO__ON_PPO_KL] = vppo__##I##_on_fold(a_ppo); sums[VPPO__ON_CLIP] = (double)n_clip; \
    sums[VPPO__ON_CLIP_DUAL] = (double)n_cd; sums[VPPO__ON_SEL] = (double)n_sel; \
    return bad != 0; \
} \
\
/* The common case on float lanes (L->fast: set by vppo__policy_loss_run, which says when): per chunk of \
   VPPO__ON_CH tokens, rho = logp - logp_old in float; the chunk goes through the double \
   loop (vppo__<I>_on_loss0) when one of its valid tokens has |rho| > VPPO__LF_RMAX, rho \
   within VPPO__LF_GAP of log_lo or log_hi, or |adv| > VPPO__LF_AMAX (rare; the decisions \
   of the others are then those of the double loop and of the reference, docs/spec.md §12). Otherwise, with A \
   the advantage and w the selection: m = e^rho - 1 = rho + rho^2 p(rho) (Taylor, degree 7), \
   clipped = (A > 0, rho > log_hi) or (A < 0, rho < log_lo) (no dual clip: |rho| <= \
   RMAX < log clip_dual), u = r_hi - 1, r_lo - 1 or m, and -A w + -A u w summed in double \
   for the policy term (-A r w, r = 1 + u); the gradient coef ((-A m + -A) - ent_coef) in \
   float (0 for a clipped or unselected token but the entropy term); the entropy and PPO-KL \
   sums from the floats in double exactly as the double loop makes them (the same bits); \
   the counts from the lane bits. The DPG sum (used only by sequence-level ratios) is not \
   made (0). */ \
ATTR static int vppo__##I##_on_loss0(const vppo__on_loss *L, int64_t t0, int64_t t1, double *sums) \
{ \
    return vppo__##I##_on_loss_body(L, t0, t1, sums, 0); \
} \
\
ATTR static int vppo__##I##_on_lossf(const vppo__on_loss *L, int64_t t0, int64_t t1, double *sums) \
{ \
    enum { NF = VPPO__ON_CH / VPPO__FW(I), NV = VPPO__ON_CH / VPPO__DW(I), R = VPPO__FW(I) / VPPO__DW(I) }; \
    const VPPO__FV(I) zero = VPPO__FSET1(I)(0.0f), mone = VPPO__FSET1(I)(-1.0f); \
    const VPPO__FV(I) rmax = VPPO__FSET1(I)(VPPO__LF_RMAX), gap = VPPO__FSET1(I)(VPPO__LF_GAP); \
    const VPPO__FV(I) amax = VPPO__FSET1(I)(VPPO__LF_AMAX); \
    const VPPO__FV(I) lhi = VPPO__FSET1(I)((float)L->log_hi), llo = VPPO__FSET1(I)((float)L->log_lo); \
    const VPPO__FV(I) uhi = VPPO__FSET1(I)((float)(L->r_hi - 1.0)), ulo = VPPO__FSET1(I)((float)(L->r_lo - 1.0)); \
    const VPPO__FV(I) coef = VPPO__FSET1(I)((float)L->coef), ec = VPPO__FSET1(I)((float)L->ent_coef); \
    const VPPO__FV(I) c2 = VPPO__FSET1(I)(0.5f), c3 = VPPO__FSET1(I)(1.0f / 6.0f), c4 = VPPO__FSET1(I)(1.0f / 24.0f); \
    const VPPO__FV(I) c5 = VPPO__FSET1(I)(1.0f / 120.0f), c6 = VPPO__FSET1(I)(1.0f / 720.0f); \
    const VPPO__FV(I) c7 = VPPO__FSET1(I)(1.0f / 5040.0f); \
    const int all = (1 << VPPO__FW(I)) - 1; \
    VPPO__VD(I) a_pg[NV], a_lp[NV], a_ppo[NV]; \
    double fb[VPPO__ON_NSUMS], part[VPPO__ON_NSUMS]; \
    int64_t t, n_clip = 0, n_sel = 0; \
    int k, j, bad = 0; \
    for (k = 0; k < NV; ++k) a_pg[k] = a_lp[k] = a_ppo[k] = VPPO__DSET1(I)(0.0); \
    for (j = 0; j < VPPO__ON_NSUMS; ++j) fb[j] = 0.0; \
    for (t = t0; t < t1; t += VPPO__ON_CH) { \
        VPPO__FV(I) lp[NF], lo[NF], a[NF], rho[NF]; \
        VPPO__FM(I) ok[NF]; \
        int fail = 0; \
        if (t1 - t >= VPPO__ON_CH) \
            for (k = 0; k < NF; ++k) { \
                VPPO__FM(I) good; \
                lp[k] = VPPO__FLOADU(I)(L->logp + t + k * VPPO__FW(I)); \
                lo[k] = VPPO__FLOADU(I)(L->logp_old + t + k * VPPO__FW(I)); \
                a[k] = VPPO__FLOADU(I)(L->adv + t + k * VPPO__FW(I)); \
                rho[k] = VPPO__FSUB(I)(lp[k], lo[k]); \
                good = VPPO__FMAND(I)(VPPO__FGE(I)(rmax, VPPO__FABS(I)(rho[k])), VPPO__FGE(I)(amax, VPPO__FABS(I)(a[k]))); \
                good = VPPO__FMAND(I)(good, VPPO__FGT(I)(VPPO__FABS(I)(VPPO__FSUB(I)(rho[k], lhi)), gap)); \
                good = VPPO__FMAND(I)(good, VPPO__FGT(I)(VPPO__FABS(I)(VPPO__FSUB(I)(rho[k], llo)), gap)); \
                if (L->mask) { \
                    ok[k] = VPPO__FFLAG(I, L->mask + t + k * VPPO__FW(I)); \
                    fail |= VPPO__FBITS(I)(VPPO__FMANDNOT(I)(good, ok[k])); \
                } else { \
                    ok[k] = VPPO__FGE(I)(zero, zero); \
                    fail |= VPPO__FBITS(I)(good) ^ all; \
                } \
            } \
        if (fail || t1 - t < VPPO__ON_CH) {   /* a rare chunk, or the tail: the double loop */ \
            const int64_t e = vppo__min64(t1, t + VPPO__ON_CH); \
            bad |= vppo__##I##_on_loss0(L, t, e, part); \
            for (j = 0; j < VPPO__ON_NSUMS; ++j) fb[j] += part[j]; \
            continue; \
        } \
        for (k = 0; k < NF; ++k) { \
            const VPPO__FV(I) x = rho[k], na = VPPO__FMUL(I)(a[k], mone), x2 = VPPO__FMUL(I)(x, x); \
            VPPO__FV(I) p = VPPO__FADD(I)(c6, VPPO__FMUL(I)(c7, x)), m, u, pa, pu, g, lpk = lp[k], lok = lo[k]; \
            VPPO__FM(I) chi, clo, clip; \
            int okb = all, wb; \
            p = VPPO__FADD(I)(c5, VPPO__FMUL(I)(p, x)); \
            p = VPPO__FADD(I)(c4, VPPO__FMUL(I)(p, x)); \
            p = VPPO__FADD(I)(c3, VPPO__FMUL(I)(p, x)); \
            p = VPPO__FADD(I)(c2, VPPO__FMUL(I)(p, x)); \
            m = VPPO__FADD(I)(x, VPPO__FMUL(I)(x2, p)); \
            chi = VPPO__FMAND(I)(VPPO__FGT(I)(x, lhi), VPPO__FGT(I)(a[k], zero)); \
            clo = VPPO__FMAND(I)(VPPO__FGT(I)(llo, x), VPPO__FGT(I)(zero, a[k])); \
            clip = VPPO__FMOR(I)(chi, clo); \
            u = VPPO__FSEL(I)(chi, uhi, VPPO__FSEL(I)(clo, ulo, m)); \
            pa = na; \
            pu = VPPO__FMUL(I)(na, u); \
            g = VPPO__FSEL(I)(clip, zero, VPPO__FADD(I)(VPPO__FMUL(I)(na, m), na)); \
            if (L->select || L->mask) { \
                VPPO__FM(I) w; \
                if (L->select) { \
                    w = VPPO__FFLAG(I, L->select + t + k * VPPO__FW(I)); \
                    if (L->mask) w = VPPO__FMAND(I)(w, ok[k]); \
                } else { \
                    w = ok[k]; \
                } \
                pa = VPPO__FKEEP(I)(w, pa); \
                pu = VPPO__FKEEP(I)(w, pu); \
                g = VPPO__FKEEP(I)(w, g); \
                wb = VPPO__FBITS(I)(w); \
            } else { \
                wb = all; \
            } \
            g = VPPO__FMUL(I)(coef, VPPO__FSUB(I)(g, ec)); \
            if (L->mask) { \
                g = VPPO__FKEEP(I)(ok[k], g); \
                lpk = VPPO__FKEEP(I)(ok[k], lpk); \
                lok = VPPO__FKEEP(I)(ok[k], lok); \
                okb = VPPO__FBITS(I)(ok[k]); \
            } \
            if (L->dlogp) VPPO__FSTOREU(I)(L->dlogp + t + k * VPPO__FW(I), g); \
            n_clip += vppo__popc16(VPPO__FBITS(I)(clip) & okb); \
            n_sel += vppo__popc16(wb); \
            a_pg[R * k] = VPPO__DADD(I)(VPPO__DADD(I)(a_pg[R * k], VPPO__FLO(I)(pa)), VPPO__FLO(I)(pu)); \
            a_lp[R * k] = VPPO__DADD(I)(a_lp[R * k], VPPO__FLO(I)(lpk)); \
            a_ppo[R * k] = VPPO__DADD(I)(a_ppo[R * k], VPPO__DSUB(I)(VPPO__FLO(I)(lok), VPPO__FLO(I)(lpk))); \
            if (R == 2) { \
                a_pg[R * k + R - 1] = VPPO__DADD(I)(VPPO__DADD(I)(a_pg[R * k + R - 1], VPPO__FHI(I)(pa)), VPPO__FHI(I)(pu)); \
                a_lp[R * k + R - 1] = VPPO__DADD(I)(a_lp[R * k + R - 1], VPPO__FHI(I)(lpk)); \
                a_ppo[R * k + R - 1] = VPPO__DADD(I)(a_ppo[R * k + R - 1], VPPO__DSUB(I)(VPPO__FHI(I)(lok), VPPO__FHI(I)(lpk))); \
            } \
        } \
    } \
    sums[VPPO__ON_PG] = vppo__##I##_on_fold(a_pg) + fb[VPPO__ON_PG]; \
    sums[VPPO__ON_KL] = fb[VPPO__ON_KL]; \
    sums[VPPO__ON_ENT] = (0.0 - vppo__##I##_on_fold(a_lp)) + fb[VPPO__ON_ENT]; \
    sums[VPPO__ON_DPG] = 0.0; \
    sums[VPPO__ON_PPO_KL] = vppo__##I##_on_fold(a_ppo) + fb[VPPO__ON_PPO_KL]; \
    sums[VPPO__ON_CLIP] = (double)n_clip + fb[VPPO__ON_CLIP]; \
    sums[VPPO__ON_CLIP_DUAL] = fb[VPPO__ON_CLIP_DUAL]; \
    sums[VPPO__ON_SEL] = (double)n_sel + fb[VPPO__ON_SEL]; \
    return bad; \
} \
\
ATTR static int vppo__##I##_on_loss(const vppo__on_loss *L, int64_t t0, int64_t t1, double *sums) \
{ \
    if (L->pg_kind == VPPO_PG_CISPO || L->kl_kind != VPPO_KL_NONE || L->seq_rho || L->far || L->fixed_dpg || L->weight) \
        return vppo__##I##_on_loss_body(L, t0, t1, sums, 1); \
    if (L->fast) return vppo__##I##_on_lossf(L, t0, t1, sums); \
    return vppo__##I##_on_loss_body(L, t0, t1, sums, 0); \
} \
\
/* PROB_DROP's check of one chunk (VPPO__ON_CH floats of a and b; mask bytes pm, NULL: \
   every lane valid): nonzero when exp(a) - exp(b) is not a finite float at a valid lane. \
   The check kernels call it only for a chunk with a valid lane above 88 (or NaN): below, \
   both exponentials are at most e^88 < FLT_MAX / 2 and the difference is finite. */ \
ATTR static int vppo__##I##_on_pdrop(const float *a, const float *b, const uint8_t *pm) \
{ \
    const VPPO__VD(I) zero = VPPO__DSET1(I)(0.0); \
    VPPO__VD(I) acc = zero; \
    double lane[VPPO__DW(I)]; \
    int k, bad = 0; \
    for (k = 0; k < VPPO__ON_CH / VPPO__DW(I); ++k) { \
        const VPPO__VD(I) d = VPPO__DSUB(I)(vppo__##I##_on_dexp(VPPO__DLOADF(I)(a + k * VPPO__DW(I))), \
                                            vppo__##I##_on_dexp(VPPO__DLOADF(I)(b + k * VPPO__DW(I)))); \
        VPPO__VD(I) v = VPPO__DSEL(I)(VPPO__DLE(I)(VPPO__DABS(I)(d), VPPO__DSET1(I)(FLT_MAX)), zero, \
                                      VPPO__DSET1(I)(NAN)); \
        if (pm) v = VPPO__DSEL(I)(VPPO__DFLAG(I)(pm + k * VPPO__DW(I)), v, zero); \
        acc = VPPO__DADD(I)(acc, v); \
    } \
    VPPO__DSTOREU(I)(lane, acc); \
    for (k = 0; k < VPPO__DW(I); ++k) bad |= lane[k] != lane[k]; \
    return bad; \
} \
\
/* the check kernel, on float lanes (VPPO__ON_CHECK_KERNEL; plain C for the scalar ISA) */ \
ATTR static int vppo__##I##_on_check(const vppo__on_check *c, int64_t t0, int64_t t1); \
\
static const vppo__on_kernels vppo__on_kernels_##I = { \
    vppo__##I##_on_map, vppo__##I##_on_loss, vppo__##I##_on_check, vppo__##I##_on_exp1, vppo__##I##_on_exp20_1 \
};

/* VPPO__ON_CHECK_KERNEL(I, ATTR) defines vppo__<I>_on_check, the check kernel of
   vppo__on_kernels for a vector ISA I (the scalar ISA's is plain C): vppo__on_check_drive
   over vppo__<I>_on_scan, which tests the float lanes of one array directly (NaN or +inf:
   !(x <= FLT_MAX); -inf: x < -FLT_MAX; above 88 or NaN: !(x <= 88)) and or-s the
   results into lane masks, one compare per test and vector. */
/* The hint for float t + VPPO__ON_SUB of x, the same place in the array's next sub-block
   (the scans of a sub-block go array by array, a 4 KiB page each, and each page started
   cold). Measured with perf over 60 vppo_step calls (1 thread, AVX-512, 1024 x 2048): the
   scans' CPU time 2.2 ms per step instead of 2.8 (two runs each); two sub-blocks ahead, or
   sub-blocks of 2048 or 4096 tokens, were no better. An address past the array is harmless
   (formed as an integer; a prefetch never faults). */
#define VPPO__ON_SCAN_PREFETCH(x, t) \
    __builtin_prefetch((const void *)((uintptr_t)(x) + (uintptr_t)((t) + VPPO__ON_SUB) * sizeof(float)))
#define VPPO__ON_CHECK_KERNEL(I, ATTR) \
ATTR VPPO__ON_INLINE void vppo__##I##_on_lanes(const float *x, const uint8_t *m, int hi, VPPO__VM(I) *pos, \
                                               VPPO__VM(I) *ninf, VPPO__VM(I) *big) \
{ \
    const VPPO__V(I) v = VPPO__LOADU(I)(x); \
    VPPO__VM(I) bp = VPPO__NLE(I)(v, VPPO__SET1(I)(FLT_MAX)), bn = VPPO__GT(I)(VPPO__SET1(I)(-FLT_MAX), v); \
    VPPO__VM(I) bh = hi ? VPPO__NLE(I)(v, VPPO__SET1(I)(88.0f)) : VPPO__MNONE(I); \
    if (m) { \
        const VPPO__VM(I) valid = VPPO__IGT(I)(VPPO__LOAD8(I)(m), VPPO__ISET1(I)(0)); \
        bp = VPPO__MAND(I)(bp, valid); bn = VPPO__MAND(I)(bn, valid); bh = VPPO__MAND(I)(bh, valid); \
    } \
    *pos = VPPO__MOR(I)(*pos, bp); *ninf = VPPO__MOR(I)(*ninf, bn); *big = VPPO__MOR(I)(*big, bh); \
} \
\
ATTR static int vppo__##I##_on_scan(const float *x, const uint8_t *mask, int64_t t0, int64_t t1, int hi) \
{ \
    enum { W = VPPO__W(I) }; \
    VPPO__VM(I) pos = VPPO__MNONE(I), ninf = VPPO__MNONE(I), big = VPPO__MNONE(I); \
    float buf[W]; \
    uint8_t mbuf[W]; \
    int64_t t = t0; \
    int r; \
    if (mask) \
        for (; t + W <= t1; t += W) vppo__##I##_on_lanes(x + t, mask + t, hi, &pos, &ninf, &big); \
    else if (hi) \
        for (; t + W <= t1; t += W) { \
            VPPO__ON_SCAN_PREFETCH(x, t); \
            vppo__##I##_on_lanes(x + t, NULL, 1, &pos, &ninf, &big); \
        } \
    else \
        for (; t + W <= t1; t += W) { \
            VPPO__ON_SCAN_PREFETCH(x, t); \
            vppo__##I##_on_lanes(x + t, NULL, 0, &pos, &ninf, &big); \
        } \
    if (t < t1) { \
        vppo__on_tail(x, mask, t, (int)(t1 - t), W, buf, mbuf); \
        vppo__##I##_on_lanes(buf, mbuf, hi, &pos, &ninf, &big); \
    } \
    r = (VPPO__MANY(I)(pos) ? VPPO__ON_POS : 0) | (VPPO__MANY(I)(ninf) ? VPPO__ON_NINF : 0) | \
        (VPPO__MANY(I)(big) ? VPPO__ON_BIG : 0); \
    VPPO__ZEROUPPER(I)(); \
    return r; \
} \
\
ATTR static int vppo__##I##_on_check(const vppo__on_check *c, int64_t t0, int64_t t1) \
{ \
    return vppo__on_check_drive(c, t0, t1, vppo__##I##_on_scan, vppo__##I##_on_pdrop); \
}

#if defined(VPPO__X86) || defined(VPPO__NEON)
#define VPPO__INLINE static __inline__ __attribute__((always_inline))   /* gcc, clang */
/* A hint to fetch the byte VPPO__PREFETCH * 4 past entry i of a row of dtype dt: the
   same distance in bytes for every dtype (512 entries of f32, 1024 of bf16 or f16: a
   distance in entries fetched 2-byte rows half as far ahead; side by side, 256 x 151,936,
   AVX-512, three runs at load 3.5-4: bf16 KL 0.93-1.03, backward -> F32 0.90-0.96,
   logprobs 0.88-0.98 of the time before; f32 unchanged). An address past the row is
   harmless: a prefetch never faults; formed as an integer, not a pointer. Measured on
   the loaded development machine (AVX-512, 64 x 151,936): bf16 KL 31 -> 17 ms, in-place
   backward 30 -> 16 ms; the hardware prefetcher alone kept the loops waiting. */
#define VPPO__PREFETCH_AT(p, i, dt) \
    __builtin_prefetch((const void *)((uintptr_t)(p) + (uintptr_t)((i) * (int64_t)vppo__dtype_size(dt) + VPPO__PREFETCH * 4)))
/* The hint for every 64-byte line of the n entries from i on, VPPO__PREFETCH * 4 bytes ahead:
   a loop step that reads several lines asks for each of them (one hint per step, for a
   step of four AVX-512 vectors, left three lines in four to the hardware prefetcher:
   measured, f32 lse + entropy, 128 x 151,936, AVX-512, best of 7, three runs side by side:
   1.3-1.55x the read-once loop with one hint per step, 0.8-0.9x with one per line). */
#define VPPO__PREFETCH_SPAN(p, i, dt, n) do { \
        int64_t vppo__o_; \
        for (vppo__o_ = 0; vppo__o_ < (int64_t)(n) * (int64_t)vppo__dtype_size(dt); vppo__o_ += 64) \
            __builtin_prefetch((const void *)((uintptr_t)(p) + (uintptr_t)vppo__o_ + \
                               (uintptr_t)((i) * (int64_t)vppo__dtype_size(dt) + VPPO__PREFETCH * 4))); \
    } while (0)

static float vppo__hmax_lanes(const float *lane, int w)
{
    float m = lane[0];
    int i;
    for (i = 1; i < w; ++i) if (lane[i] > m) m = lane[i];
    return m;
}

static double vppo__hsum_lanes(const float *lane, int w)
{
    double s = 0.0;
    int i;
    for (i = 0; i < w; ++i) s += (double)lane[i];
    return s;
}

/* --- b. the mapping layer ----------------------------------------------------- */
/* VPPO__PICK(I, sse2, avx2, avx512, neon) is the column of ISA I. An operation that is
   one intrinsic on an ISA names it; one that is not is a VPPO__<ISA>_<OP> macro (or, for
   the f16 conversion without F16C, a function) below the table. V: float vector, VI: the
   same bits as 32-bit integers, VM: a comparison result. Every kernel reads and writes
   whole vectors of VPPO__W(I) lanes. */
#define VPPO__PICK(I, s, a, z, n) VPPO__PICK_##I(s, a, z, n)
#define VPPO__PICK_sse2(s, a, z, n) s
#define VPPO__PICK_avx2(s, a, z, n) a
#define VPPO__PICK_avx512(s, a, z, n) z
#define VPPO__PICK_neon(s, a, z, n) n
/*                                   SSE2                 AVX2 + FMA + F16C     AVX-512F               NEON */
#define VPPO__V(I)        VPPO__PICK(I, __m128,              __m256,               __m512,                float32x4_t)
#define VPPO__VI(I)       VPPO__PICK(I, __m128i,             __m256i,              __m512i,               uint32x4_t)
#define VPPO__VM(I)       VPPO__PICK(I, __m128,              __m256,               __mmask16,             uint32x4_t)
#define VPPO__W(I)        VPPO__PICK(I, 4,                   8,                    16,                    4)
#define VPPO__SET1(I)     VPPO__PICK(I, _mm_set1_ps,         _mm256_set1_ps,       _mm512_set1_ps,        vdupq_n_f32)
#define VPPO__LOADU(I)    VPPO__PICK(I, _mm_loadu_ps,        _mm256_loadu_ps,      _mm512_loadu_ps,       vld1q_f32)
#define VPPO__ILOADU(I)   VPPO__PICK(I, VPPO__SSE2_ILOADU,   VPPO__AVX2_ILOADU,    VPPO__AVX512_ILOADU,   VPPO__NEON_ILOADU)
#define VPPO__STOREU(I)   VPPO__PICK(I, _mm_storeu_ps,       _mm256_storeu_ps,     _mm512_storeu_ps,      vst1q_f32)
/* a store of W floats at a 4 W-byte aligned address that need not stay in the caches;
   x86 orders such stores with VPPO__SFENCE() */
#define VPPO__STREAM(I)   VPPO__PICK(I, _mm_stream_ps,       _mm256_stream_ps,     _mm512_stream_ps,      vst1q_f32)
#define VPPO__ADD(I)      VPPO__PICK(I, _mm_add_ps,          _mm256_add_ps,        _mm512_add_ps,         vaddq_f32)
#define VPPO__SUB(I)      VPPO__PICK(I, _mm_sub_ps,          _mm256_sub_ps,        _mm512_sub_ps,         vsubq_f32)
#define VPPO__MUL(I)      VPPO__PICK(I, _mm_mul_ps,          _mm256_mul_ps,        _mm512_mul_ps,         vmulq_f32)
#define VPPO__DIV(I)      VPPO__PICK(I, _mm_div_ps,          _mm256_div_ps,        _mm512_div_ps,         vdivq_f32)
#define VPPO__MAX(I)      VPPO__PICK(I, _mm_max_ps,          _mm256_max_ps,        _mm512_max_ps,         vmaxq_f32)
#define VPPO__MIN(I)      VPPO__PICK(I, _mm_min_ps,          _mm256_min_ps,        _mm512_min_ps,         vminq_f32)
/* a b + c, c - a b, -(a b) - c: fused but on SSE2 (VPPO__FUSED(I): 1 where fused) */
#define VPPO__FUSED(I)    VPPO__PICK(I, 0,                   1,                    1,                     1)
#define VPPO__FMA(I)      VPPO__PICK(I, VPPO__SSE2_FMA,      _mm256_fmadd_ps,      _mm512_fmadd_ps,       VPPO__NEON_FMA)
#define VPPO__FNMA(I)     VPPO__PICK(I, VPPO__SSE2_FNMA,     _mm256_fnmadd_ps,     _mm512_fnmadd_ps,      VPPO__NEON_FNMA)
#define VPPO__NFMS(I)     VPPO__PICK(I, VPPO__SSE2_NFMS,     _mm256_fnmsub_ps,     _mm512_fnmsub_ps,      VPPO__NEON_NFMS)
/* comparisons (ordered; NLT "not less than" and NLE "not less or equal" are true for NaN) and masks */
#define VPPO__GE(I)       VPPO__PICK(I, _mm_cmpge_ps,        VPPO__AVX2_GE,        VPPO__AVX512_GE,       vcgeq_f32)
#define VPPO__GT(I)       VPPO__PICK(I, _mm_cmpgt_ps,        VPPO__AVX2_GT,        VPPO__AVX512_GT,       vcgtq_f32)
#define VPPO__EQ(I)       VPPO__PICK(I, _mm_cmpeq_ps,        VPPO__AVX2_EQ,        VPPO__AVX512_EQ,       vceqq_f32)
#define VPPO__NLT(I)      VPPO__PICK(I, _mm_cmpnlt_ps,       VPPO__AVX2_NLT,       VPPO__AVX512_NLT,      VPPO__NEON_NLT)
#define VPPO__NLE(I)      VPPO__PICK(I, _mm_cmpnle_ps,       VPPO__AVX2_NLE,       VPPO__AVX512_NLE,      VPPO__NEON_NLE)
#define VPPO__MNONE(I)    VPPO__PICK(I, _mm_setzero_ps(),    _mm256_setzero_ps(),  0,                     vdupq_n_u32(0))
#define VPPO__MAND(I)     VPPO__PICK(I, _mm_and_ps,          _mm256_and_ps,        VPPO__AVX512_MAND,     vandq_u32)
#define VPPO__MOR(I)      VPPO__PICK(I, _mm_or_ps,           _mm256_or_ps,         VPPO__AVX512_MOR,      vorrq_u32)
#define VPPO__MANY(I)     VPPO__PICK(I, _mm_movemask_ps,     _mm256_movemask_ps,   (int),                 vmaxvq_u32)
/* KEEP(m, a) = m ? a : 0; SELECT(m, a, b) = m ? a : b */
#define VPPO__KEEP(I)     VPPO__PICK(I, _mm_and_ps,          _mm256_and_ps,        _mm512_maskz_mov_ps,   VPPO__NEON_KEEP)
#define VPPO__SELECT(I)   VPPO__PICK(I, VPPO__SSE2_SELECT,   VPPO__AVX2_SELECT,    VPPO__AVX512_SELECT,   vbslq_f32)
/* the bits of a float vector as integers, and back; integer arithmetic and shifts */
#define VPPO__BITS(I)     VPPO__PICK(I, _mm_castps_si128,    _mm256_castps_si256,  _mm512_castps_si512,   vreinterpretq_u32_f32)
#define VPPO__FLOAT(I)    VPPO__PICK(I, _mm_castsi128_ps,    _mm256_castsi256_ps,  _mm512_castsi512_ps,   vreinterpretq_f32_u32)
#define VPPO__ISET1(I)    VPPO__PICK(I, _mm_set1_epi32,      _mm256_set1_epi32,    _mm512_set1_epi32,     vdupq_n_u32)
#define VPPO__IADD(I)     VPPO__PICK(I, _mm_add_epi32,       _mm256_add_epi32,     _mm512_add_epi32,      vaddq_u32)
#define VPPO__ISUB(I)     VPPO__PICK(I, _mm_sub_epi32,       _mm256_sub_epi32,     _mm512_sub_epi32,      vsubq_u32)
#define VPPO__IAND(I)     VPPO__PICK(I, _mm_and_si128,       _mm256_and_si256,     _mm512_and_si512,      vandq_u32)
#define VPPO__IOR(I)      VPPO__PICK(I, _mm_or_si128,        _mm256_or_si256,      _mm512_or_si512,       vorrq_u32)
#define VPPO__SHL(I)      VPPO__PICK(I, _mm_slli_epi32,      _mm256_slli_epi32,    _mm512_slli_epi32,     vshlq_n_u32)
#define VPPO__SHR(I)      VPPO__PICK(I, _mm_srli_epi32,      _mm256_srli_epi32,    _mm512_srli_epi32,     vshrq_n_u32)
#define VPPO__ITOF(I)     VPPO__PICK(I, _mm_cvtepi32_ps,     _mm256_cvtepi32_ps,   _mm512_cvtepi32_ps,    VPPO__NEON_ITOF)
/* 16-bit data: W bf16 or W f16 to float; the high halves of W 32-bit lanes stored as W halves */
#define VPPO__LOADBF16(I) VPPO__PICK(I, VPPO__SSE2_LOADBF16, VPPO__AVX2_LOADBF16,  VPPO__AVX512_LOADBF16, VPPO__NEON_LOADBF16)
#define VPPO__LOADF16(I)  VPPO__PICK(I, VPPO__SSE2_LOADF16,  VPPO__AVX2_LOADF16,   VPPO__AVX512_LOADF16,  VPPO__NEON_LOADF16)
#define VPPO__STHIGH16(I) VPPO__PICK(I, VPPO__SSE2_STHIGH16, VPPO__AVX2_STHIGH16,  VPPO__AVX512_STHIGH16, VPPO__NEON_STHIGH16)

#ifdef VPPO__X86
#define VPPO__SFENCE() _mm_sfence()
#else
#define VPPO__SFENCE() ((void)0)
#endif
/* The operations that are not one intrinsic, by ISA. ILOADU(p): the W 32-bit words at p
   (2 W 16-bit entries, entry 2k in the low half of word k). */
#define VPPO__SSE2_ILOADU(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define VPPO__AVX2_ILOADU(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define VPPO__AVX512_ILOADU(p) _mm512_loadu_si512((const void *)(p))
#define VPPO__NEON_ILOADU(p) vreinterpretq_u32_u16(vld1q_u16((const uint16_t *)(const void *)(p)))
#define VPPO__SSE2_FMA(a, b, c) _mm_add_ps(_mm_mul_ps(a, b), c)
#define VPPO__SSE2_FNMA(a, b, c) _mm_sub_ps(c, _mm_mul_ps(a, b))
#define VPPO__SSE2_NFMS(a, b, c) _mm_sub_ps(_mm_setzero_ps(), _mm_add_ps(c, _mm_mul_ps(a, b)))
#define VPPO__SSE2_SELECT(m, a, b) _mm_or_ps(_mm_andnot_ps(m, b), _mm_and_ps(m, a))
#define VPPO__SSE2_LOADBF16(p) _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), _mm_loadl_epi64((const __m128i *)(p))))
#define VPPO__SSE2_LOADF16(p) vppo__sse2_f16(_mm_unpacklo_epi16(_mm_loadl_epi64((const __m128i *)(p)), _mm_setzero_si128()))
#define VPPO__SSE2_STHIGH16(p, x) \
    _mm_storel_epi64((__m128i *)(p), _mm_packs_epi32(_mm_srai_epi32(x, 16), _mm_srai_epi32(x, 16)))
#define VPPO__AVX2_GE(a, b) _mm256_cmp_ps(a, b, _CMP_GE_OQ)
#define VPPO__AVX2_GT(a, b) _mm256_cmp_ps(a, b, _CMP_GT_OQ)
#define VPPO__AVX2_EQ(a, b) _mm256_cmp_ps(a, b, _CMP_EQ_OQ)
#define VPPO__AVX2_NLT(a, b) _mm256_cmp_ps(a, b, _CMP_NLT_UQ)
#define VPPO__AVX2_NLE(a, b) _mm256_cmp_ps(a, b, _CMP_NLE_UQ)
#define VPPO__AVX2_SELECT(m, a, b) _mm256_blendv_ps(b, a, m)
#define VPPO__AVX2_LOADBF16(p) \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#define VPPO__AVX2_LOADF16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define VPPO__AVX2_STHIGH16(p, x) _mm_storeu_si128((__m128i *)(p), \
    _mm_packs_epi32(_mm256_castsi256_si128(_mm256_srai_epi32(x, 16)), _mm256_extracti128_si256(_mm256_srai_epi32(x, 16), 1)))
#define VPPO__AVX512_GE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
#define VPPO__AVX512_GT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ)
#define VPPO__AVX512_EQ(a, b) _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ)
#define VPPO__AVX512_NLT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_NLT_UQ)
#define VPPO__AVX512_NLE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_NLE_UQ)
#define VPPO__AVX512_MAND(a, b) ((__mmask16)((a) & (b)))
#define VPPO__AVX512_MOR(a, b) ((__mmask16)((a) | (b)))
#define VPPO__AVX512_SELECT(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define VPPO__AVX512_LOADBF16(p) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define VPPO__AVX512_LOADF16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define VPPO__AVX512_STHIGH16(p, x) _mm256_storeu_si256((__m256i *)(p), _mm512_cvtepi32_epi16(_mm512_srli_epi32(x, 16)))
#define VPPO__NEON_FMA(a, b, c) vfmaq_f32(c, a, b)
#define VPPO__NEON_FNMA(a, b, c) vfmsq_f32(c, a, b)
#define VPPO__NEON_NFMS(a, b, c) vnegq_f32(vfmaq_f32(c, a, b))
#define VPPO__NEON_NLT(a, b) vmvnq_u32(vcltq_f32(a, b))
#define VPPO__NEON_NLE(a, b) vmvnq_u32(vcleq_f32(a, b))
#define VPPO__NEON_KEEP(m, a) vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(a)))
#define VPPO__NEON_ITOF(x) vcvtq_f32_s32(vreinterpretq_s32_u32(x))
#define VPPO__NEON_LOADBF16(p) vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16))
#define VPPO__NEON_LOADF16(p) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)))
#define VPPO__NEON_STHIGH16(p, x) vst1_u16(p, vshrn_n_u32(x, 16))

/* Rows of the selection kernels (§6, VPPO__SELECT_KERNELS): 32-bit integer lanes
   (signed compare, min, max, arithmetic shift, store), W mask bytes in and out, and
   the float-to-double halves of W / 2 lanes (the info sums). */
#define VPPO__ISTOREU(I)  VPPO__PICK(I, VPPO__SSE2_ISTOREU,  VPPO__AVX2_ISTOREU,   _mm512_storeu_si512,   VPPO__NEON_ISTOREU)
#define VPPO__SRA(I)      VPPO__PICK(I, _mm_srai_epi32,      _mm256_srai_epi32,    _mm512_srai_epi32,     VPPO__NEON_SRA)
#define VPPO__IXOR(I)     VPPO__PICK(I, _mm_xor_si128,       _mm256_xor_si256,     _mm512_xor_si512,      veorq_u32)
#define VPPO__IGT(I)      VPPO__PICK(I, VPPO__SSE2_IGT,      VPPO__AVX2_IGT,       _mm512_cmpgt_epi32_mask, VPPO__NEON_IGT)
#define VPPO__IMIN(I)     VPPO__PICK(I, VPPO__SSE2_IMIN,     _mm256_min_epi32,     _mm512_min_epi32,      VPPO__NEON_IMIN)
#define VPPO__IMAX(I)     VPPO__PICK(I, VPPO__SSE2_IMAX,     _mm256_max_epi32,     _mm512_max_epi32,      VPPO__NEON_IMAX)
#define VPPO__MANDNOT(I)  VPPO__PICK(I, _mm_andnot_ps,       _mm256_andnot_ps,     VPPO__AVX512_MANDNOT,  VPPO__NEON_MANDNOT)
/* LOAD8: W bytes to W lanes (zero-extended); ST8: the low bytes of W lanes to W bytes */
#define VPPO__LOAD8(I)    VPPO__PICK(I, vppo__sse2_load8,    VPPO__AVX2_LOAD8,     VPPO__AVX512_LOAD8,    vppo__neon_load8)
#define VPPO__ST8(I)      VPPO__PICK(I, vppo__sse2_st8,      vppo__avx2_st8,       VPPO__AVX512_ST8,      vppo__neon_st8)
/* the double vectors themselves (VD, DLOADU, DSTOREU, DADD) are the O(N) kernels' rows
   (VPPO__DPICK, section 11 b2) */
/* DLO, DHI: the low and the high W / 2 lanes of a float vector, as doubles */
#define VPPO__DLO(I)      VPPO__PICK(I, _mm_cvtps_pd,        VPPO__AVX2_DLO,       VPPO__AVX512_DLO,      VPPO__NEON_DLO)
#define VPPO__DHI(I)      VPPO__PICK(I, VPPO__SSE2_DHI,      VPPO__AVX2_DHI,       VPPO__AVX512_DHI,      vcvt_high_f64_f32)
/* clears the upper halves of the vector registers where plain SSE code would pay for them */
#define VPPO__ZEROUPPER(I) VPPO__PICK(I, VPPO__NOTHING,      _mm256_zeroupper,     _mm256_zeroupper,      VPPO__NOTHING)
/* ICOUNT: c + 1 in the lanes of mask m (one: the float whose bits are the integer 1);
   TOPK_SUMS: the W float lanes v as doubles added to ds[0..1] where sel, to dr[0..1]
   where rej. AVX-512 converts once and adds under the masks: the lanes left alone are the
   lanes that the others add +0.0 to, the same bits (a sum that starts at +0.0 never is -0.0). */
#define VPPO__ICOUNT(I)   VPPO__PICK(I, VPPO__GEN_ICOUNT_sse2, VPPO__GEN_ICOUNT_avx2, VPPO__AVX512_ICOUNT, VPPO__GEN_ICOUNT_neon)
#define VPPO__TOPK_SUMS(I) VPPO__PICK(I, VPPO__GEN_SUMS_sse2, VPPO__GEN_SUMS_avx2,  VPPO__AVX512_SUMS,     VPPO__GEN_SUMS_neon)
#define VPPO__GEN_ICOUNT_(I, c, m, one) VPPO__IADD(I)(c, VPPO__BITS(I)(VPPO__KEEP(I)(m, one)))
#define VPPO__GEN_SUMS_(I, ds, dr, sel, rej, v) do { \
        const VPPO__V(I) sv_ = VPPO__KEEP(I)(sel, v), rv_ = VPPO__KEEP(I)(rej, v); \
        (ds)[0] = VPPO__DADD(I)((ds)[0], VPPO__DLO(I)(sv_)); \
        (ds)[1] = VPPO__DADD(I)((ds)[1], VPPO__DHI(I)(sv_)); \
        (dr)[0] = VPPO__DADD(I)((dr)[0], VPPO__DLO(I)(rv_)); \
        (dr)[1] = VPPO__DADD(I)((dr)[1], VPPO__DHI(I)(rv_)); \
    } while (0)
#define VPPO__GEN_ICOUNT_sse2(c, m, one) VPPO__GEN_ICOUNT_(sse2, c, m, one)
#define VPPO__GEN_ICOUNT_avx2(c, m, one) VPPO__GEN_ICOUNT_(avx2, c, m, one)
#define VPPO__GEN_ICOUNT_neon(c, m, one) VPPO__GEN_ICOUNT_(neon, c, m, one)
#define VPPO__GEN_SUMS_sse2(ds, dr, sel, rej, v) VPPO__GEN_SUMS_(sse2, ds, dr, sel, rej, v)
#define VPPO__GEN_SUMS_avx2(ds, dr, sel, rej, v) VPPO__GEN_SUMS_(avx2, ds, dr, sel, rej, v)
#define VPPO__GEN_SUMS_neon(ds, dr, sel, rej, v) VPPO__GEN_SUMS_(neon, ds, dr, sel, rej, v)
#define VPPO__AVX512_ICOUNT(c, m, one) _mm512_mask_add_epi32(c, m, c, _mm512_castps_si512(one))
#define VPPO__AVX512_SUMS(ds, dr, sel, rej, v) do { \
        const __m512d lo_ = VPPO__AVX512_DLO(v), hi_ = VPPO__AVX512_DHI(v); \
        (ds)[0] = _mm512_mask_add_pd((ds)[0], (__mmask8)(sel), (ds)[0], lo_); \
        (ds)[1] = _mm512_mask_add_pd((ds)[1], (__mmask8)((sel) >> 8), (ds)[1], hi_); \
        (dr)[0] = _mm512_mask_add_pd((dr)[0], (__mmask8)(rej), (dr)[0], lo_); \
        (dr)[1] = _mm512_mask_add_pd((dr)[1], (__mmask8)((rej) >> 8), (dr)[1], hi_); \
    } while (0)
/* the partition of the top-k keys (vppo__select_kernels.part): a compress on AVX-512, a
   permutation on AVX2, C elsewhere */
#define VPPO__TOPK_PART(I) VPPO__PICK(I, vppo__c_topk_part,  vppo__avx2_topk_part, vppo__avx512_topk_part, vppo__c_topk_part)

#define VPPO__NOTHING() ((void)0)
#define VPPO__SSE2_ISTOREU(p, x) _mm_storeu_si128((__m128i *)(void *)(p), x)
#define VPPO__SSE2_IGT(a, b) _mm_castsi128_ps(_mm_cmpgt_epi32(a, b))
#define VPPO__SSE2_IMIN(a, b) vppo__sse2_iselect(_mm_cmpgt_epi32(a, b), b, a)
#define VPPO__SSE2_IMAX(a, b) vppo__sse2_iselect(_mm_cmpgt_epi32(a, b), a, b)
#define VPPO__SSE2_DHI(x) _mm_cvtps_pd(_mm_movehl_ps(x, x))
#define VPPO__AVX2_ISTOREU(p, x) _mm256_storeu_si256((__m256i *)(void *)(p), x)
#define VPPO__AVX2_IGT(a, b) _mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b))
#define VPPO__AVX2_LOAD8(p) _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p)))
#define VPPO__AVX2_DLO(x) _mm256_cvtps_pd(_mm256_castps256_ps128(x))
#define VPPO__AVX2_DHI(x) _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))
#define VPPO__AVX512_MANDNOT(a, b) ((__mmask16)(~(a) & (b)))
#define VPPO__AVX512_LOAD8(p) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p)))
#define VPPO__AVX512_ST8(p, x) _mm_storeu_si128((__m128i *)(void *)(p), _mm512_cvtepi32_epi8(x))
#define VPPO__AVX512_DLO(x) _mm512_cvtps_pd(_mm512_castps512_ps256(x))
#define VPPO__AVX512_DHI(x) _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))
#define VPPO__NEON_ISTOREU(p, x) vst1q_s32(p, vreinterpretq_s32_u32(x))
#define VPPO__NEON_SRA(x, n) vreinterpretq_u32_s32(vshrq_n_s32(vreinterpretq_s32_u32(x), n))
#define VPPO__NEON_IGT(a, b) vcgtq_s32(vreinterpretq_s32_u32(a), vreinterpretq_s32_u32(b))
#define VPPO__NEON_IMIN(a, b) vreinterpretq_u32_s32(vminq_s32(vreinterpretq_s32_u32(a), vreinterpretq_s32_u32(b)))
#define VPPO__NEON_IMAX(a, b) vreinterpretq_u32_s32(vmaxq_s32(vreinterpretq_s32_u32(a), vreinterpretq_s32_u32(b)))
#define VPPO__NEON_MANDNOT(a, b) vbicq_u32(b, a)
#define VPPO__NEON_DLO(x) vcvt_f64_f32(vget_low_f32(x))

/* VPPO__GEMM_KERNELS(I, ATTR) defines the GEMM microkernel of the fused head (§9) for ISA
   I and its table vppo__gemm_kernels_<I>: an MR x NR tile, MR = VPPO__GEMM_MR(I) rows of
   two vectors (NR = 2 W), held in registers over the whole k slice; per p, two vector
   loads of the B panel and MR broadcasts of the A panel, one FMA per vector (the sum
   order of the driver's comment: p ascending, one accumulator per entry). */
#define VPPO__GEMM_MR(I) VPPO__PICK(I, 4, 6, 8, 6)
#define VPPO__GEMM_ROW(I, r) \
    if ((r) < VPPO__GEMM_MR(I)) { \
        const VPPO__V(I) x = VPPO__SET1(I)(pa[r]); \
        c##r##a = VPPO__FMA(I)(x, b0, c##r##a); \
        c##r##b = VPPO__FMA(I)(x, b1, c##r##b); \
    }
#define VPPO__GEMM_LOAD(I, r) \
    if ((r) < VPPO__GEMM_MR(I)) { c##r##a = VPPO__LOADU(I)(c + (r) * ldc); c##r##b = VPPO__LOADU(I)(c + (r) * ldc + VPPO__W(I)); }
#define VPPO__GEMM_STORE(I, r) \
    if ((r) < VPPO__GEMM_MR(I)) { VPPO__STOREU(I)(c + (r) * ldc, c##r##a); VPPO__STOREU(I)(c + (r) * ldc + VPPO__W(I), c##r##b); }
#define VPPO__GEMM_ROWS(M, I) M(I, 0) M(I, 1) M(I, 2) M(I, 3) M(I, 4) M(I, 5) M(I, 6) M(I, 7)
#define VPPO__GEMM_KERNELS(I, ATTR) \
ATTR static void vppo__##I##_gemm_micro(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, \
    int load) \
{ \
    const VPPO__V(I) zero = VPPO__SET1(I)(0.0f); \
    VPPO__V(I) c0a = zero, c0b = zero, c1a = zero, c1b = zero, c2a = zero, c2b = zero, c3a = zero, c3b = zero; \
    VPPO__V(I) c4a = zero, c4b = zero, c5a = zero, c5b = zero, c6a = zero, c6b = zero, c7a = zero, c7b = zero; \
    int64_t p; \
    if (load) { VPPO__GEMM_ROWS(VPPO__GEMM_LOAD, I) } \
    for (p = 0; p < kc; ++p, pa += VPPO__GEMM_MR(I), pb += 2 * VPPO__W(I)) { \
        const VPPO__V(I) b0 = VPPO__LOADU(I)(pb), b1 = VPPO__LOADU(I)(pb + VPPO__W(I)); \
        VPPO__GEMM_ROWS(VPPO__GEMM_ROW, I) \
    } \
    VPPO__GEMM_ROWS(VPPO__GEMM_STORE, I) \
} \
static const vppo__gemm_kernels vppo__gemm_kernels_##I = { VPPO__GEMM_MR(I), 2 * VPPO__W(I), vppo__##I##_gemm_micro };

/* --- c. the leaf kernels, once for every ISA ------------------------------------ */
/* VPPO__KERNELS(I, ATTR) defines vppo__<I>_exp, _log, _load and the six kernels of
   vppo__kernels for ISA I, each with the target attribute ATTR, and the table
   vppo__kernels_<I>. Sums run in VPPO__PAD / W accumulators of W lanes, added
   pairwise ((a0 + a1) + (a2 + a3)) and then lane by lane in double. */
#define VPPO__KERNELS(I, ATTR) \
/* e^x without the range handling, for x in [-87.3, 88.7] (2^n stays a normal float). \
   The rounding constant carries the exponent bias: t's low bits hold n + 127, and the \
   shift by 23 drops everything above them, so 2^n costs one shift. */ \
ATTR VPPO__INLINE VPPO__V(I) vppo__##I##_exp_core(VPPO__V(I) x) \
{ \
    const VPPO__V(I) magic = VPPO__SET1(I)(VPPO__EXP_MAGIC + 127.0f); \
    VPPO__V(I) t, n, r, p; \
    t = VPPO__FMA(I)(x, VPPO__SET1(I)(VPPO__LOG2E), magic);           /* n + 127 in the low bits */ \
    n = VPPO__SUB(I)(t, magic); \
    r = VPPO__FNMA(I)(n, VPPO__SET1(I)(VPPO__LN2_HI), x); \
    r = VPPO__FNMA(I)(n, VPPO__SET1(I)(VPPO__LN2_LO), r); \
    p = VPPO__FMA(I)(VPPO__SET1(I)(VPPO__EXP_C6), r, VPPO__SET1(I)(VPPO__EXP_C5)); \
    p = VPPO__FMA(I)(p, r, VPPO__SET1(I)(VPPO__EXP_C4)); \
    p = VPPO__FMA(I)(p, r, VPPO__SET1(I)(VPPO__EXP_C3)); \
    p = VPPO__FMA(I)(p, r, VPPO__SET1(I)(VPPO__EXP_C2)); \
    p = VPPO__FMA(I)(p, r, VPPO__SET1(I)(VPPO__EXP_C1)); \
    p = VPPO__FMA(I)(p, r, VPPO__SET1(I)(VPPO__EXP_C0)); \
    return VPPO__MUL(I)(p, VPPO__FLOAT(I)(VPPO__SHL(I)(VPPO__BITS(I)(t), 23))); \
} \
\
/* exp_core with the degree-5 polynomial (VPPO__EXPK_C1..C5: the KL kernel's exp); for x \
   in [DZERO, 88.7]: exactly 0 at DZERO */ \
ATTR VPPO__INLINE VPPO__V(I) vppo__##I##_exp_kl(VPPO__V(I) x) \
{ \
    const VPPO__V(I) magic = VPPO__SET1(I)(VPPO__EXP_MAGIC + 127.0f); \
    VPPO__V(I) t, n, r, p; \
    t = VPPO__FMA(I)(x, VPPO__SET1(I)(VPPO__LOG2E), magic); \
    n = VPPO__SUB(I)(t, magic); \
    if (VPPO__FUSED(I)) { \
        r = VPPO__FNMA(I)(n, VPPO__SET1(I)(VPPO__EXPK_LN2), x);   /* one step: see VPPO__EXPK_LN2 */ \
    } else {                                                    /* SSE2: n ln2 rounds, so two */ \
        r = VPPO__FNMA(I)(n, VPPO__SET1(I)(VPPO__LN2_HI), x); \
        r = VPPO__FNMA(I)(n, VPPO__SET1(I)(VPPO__LN2_LO), r); \
    } \
    p = VPPO__FMA(I)(VPPO__SET1(I)(VPPO__EXPK_C5), r, VPPO__SET1(I)(VPPO__EXPK_C4)); \
    p = VPPO__FMA(I)(p, r, VPPO__SET1(I)(VPPO__EXPK_C3)); \
    p = VPPO__FMA(I)(p, r, VPPO__SET1(I)(VPPO__EXPK_C2)); \
    p = VPPO__FMA(I)(p, r, VPPO__SET1(I)(VPPO__EXPK_C1)); \
    p = VPPO__FMA(I)(p, r, VPPO__SET1(I)(1.0f)); \
    return VPPO__MUL(I)(p, VPPO__FLOAT(I)(VPPO__SHL(I)(VPPO__BITS(I)(t), 23))); \
} \
\
/* e^x for x in [DLOW, 88]: exactly 0 below VPPO__EXP_FLUSH */ \
ATTR VPPO__INLINE VPPO__V(I) vppo__##I##_exp_in(VPPO__V(I) x) \
{ \
    return VPPO__KEEP(I)(VPPO__GE(I)(x, VPPO__SET1(I)(VPPO__EXP_FLUSH)), vppo__##I##_exp_core(x)); \
} \
\
/* e^x for any x (the note above) */ \
ATTR VPPO__INLINE VPPO__V(I) vppo__##I##_exp(VPPO__V(I) x) \
{ \
    return vppo__##I##_exp_in(VPPO__MIN(I)(VPPO__MAX(I)(x, VPPO__SET1(I)(VPPO__DLOW)), VPPO__SET1(I)(88.0f))); \
} \
\
ATTR VPPO__INLINE VPPO__V(I) vppo__##I##_log(VPPO__V(I) x)     /* x normal and > 0 */ \
{ \
    const VPPO__VI(I) bits = VPPO__BITS(I)(x); \
    VPPO__V(I) m = VPPO__FLOAT(I)(VPPO__IOR(I)(VPPO__IAND(I)(bits, VPPO__ISET1(I)(0x007fffff)), \
                                               VPPO__ISET1(I)(0x3f800000))); \
    VPPO__V(I) e = VPPO__ITOF(I)(VPPO__ISUB(I)(VPPO__SHR(I)(bits, 23), VPPO__ISET1(I)(127))); \
    const VPPO__VM(I) big = VPPO__GT(I)(m, VPPO__SET1(I)(1.41421356f)); \
    VPPO__V(I) f, s, s2, p; \
    m = VPPO__SELECT(I)(big, VPPO__MUL(I)(m, VPPO__SET1(I)(0.5f)), m); \
    e = VPPO__ADD(I)(e, VPPO__KEEP(I)(big, VPPO__SET1(I)(1.0f))); \
    f = VPPO__SUB(I)(m, VPPO__SET1(I)(1.0f)); \
    s = VPPO__DIV(I)(f, VPPO__ADD(I)(f, VPPO__SET1(I)(2.0f))); \
    s2 = VPPO__MUL(I)(s, s); \
    p = VPPO__SET1(I)(1.0f / 9.0f); \
    p = VPPO__FMA(I)(p, s2, VPPO__SET1(I)(1.0f / 7.0f)); \
    p = VPPO__FMA(I)(p, s2, VPPO__SET1(I)(1.0f / 5.0f)); \
    p = VPPO__FMA(I)(p, s2, VPPO__SET1(I)(1.0f / 3.0f)); \
    p = VPPO__FMA(I)(p, s2, VPPO__SET1(I)(1.0f)); \
    p = VPPO__MUL(I)(VPPO__ADD(I)(s, s), p); \
    return VPPO__FMA(I)(e, VPPO__SET1(I)(VPPO__LN2_HI), VPPO__FMA(I)(e, VPPO__SET1(I)(VPPO__LN2_LO), p)); \
} \
\
/* The lanes of the na accumulators a[], added pairwise, then in double. */ \
ATTR static double vppo__##I##_hsum(VPPO__V(I) *a, int na) \
{ \
    float lane[VPPO__W(I)]; \
    int step, k; \
    for (step = 1; step < na; step *= 2) \
        for (k = 0; k + step < na; k += 2 * step) a[k] = VPPO__ADD(I)(a[k], a[k + step]); \
    VPPO__STOREU(I)(lane, a[0]); \
    return vppo__hsum_lanes(lane, VPPO__W(I)); \
} \
\
/* The lanes of a double vector, added in order. */ \
ATTR static double vppo__##I##_dhsum(VPPO__VD(I) a) \
{ \
    double lane[VPPO__DW(I)], s = 0.0; \
    int k; \
    VPPO__DSTOREU(I)(lane, a); \
    for (k = 0; k < VPPO__DW(I); ++k) s += lane[k]; \
    return s; \
} \
\
ATTR VPPO__INLINE VPPO__V(I) vppo__##I##_load(const void *src, vppo_dtype dt, int64_t i) \
{ \
    if (dt == VPPO_F32) return VPPO__LOADU(I)((const float *)src + i); \
    if (dt == VPPO_BF16) return VPPO__LOADBF16(I)((const uint16_t *)src + i); \
    return VPPO__LOADF16(I)((const uint16_t *)src + i); \
} \
\
/* 2 W entries from i for a reduction: a = [i, i + W), b = the next W; with perm and bf16 \
   data, a = the even entries and b = the odd ones (one load, a shift and a mask: the \
   order of a sum's terms does not matter, but both rows of a pair must agree). */ \
ATTR VPPO__INLINE void vppo__##I##_load2(const void *src, vppo_dtype dt, int64_t i, int perm, VPPO__V(I) *a, \
    VPPO__V(I) *b) \
{ \
    if (perm && dt == VPPO_BF16) { \
        const VPPO__VI(I) w = VPPO__ILOADU(I)((const uint16_t *)src + i); \
        *a = VPPO__FLOAT(I)(VPPO__SHL(I)(w, 16)); \
        *b = VPPO__FLOAT(I)(VPPO__IAND(I)(w, VPPO__ISET1(I)(0xffff0000u))); \
        return; \
    } \
    *a = vppo__##I##_load(src, dt, i); \
    *b = vppo__##I##_load(src, dt, i + VPPO__W(I)); \
} \
\
/* Whole vectors of a scan; dt and store are constants at every call, so each call \
   becomes its own loop. Returns the first entry not scanned. */ \
ATTR VPPO__INLINE int64_t vppo__##I##_scan_run(const void *src, vppo_dtype dt, int64_t n, float *dst, \
    int store, VPPO__V(I) *mx, VPPO__VM(I) *bad) \
{ \
    const VPPO__V(I) inf = VPPO__SET1(I)(HUGE_VALF); \
    int64_t i; \
    for (i = 0; i + VPPO__W(I) <= n; i += VPPO__W(I)) { \
        const VPPO__V(I) x = vppo__##I##_load(src, dt, i); \
        *mx = VPPO__MAX(I)(*mx, x); \
        *bad = VPPO__MOR(I)(*bad, VPPO__NLT(I)(x, inf)); \
        if (store) VPPO__STOREU(I)(dst + i, x); \
    } \
    return i; \
} \
\
ATTR static int vppo__##I##_scan(const void *src, vppo_dtype dt, int64_t n, float *dst, float *max) \
{ \
    VPPO__V(I) mx = VPPO__SET1(I)(-HUGE_VALF); \
    VPPO__VM(I) bad = VPPO__MNONE(I); \
    float lane[VPPO__W(I)]; \
    int64_t i; \
    if (!dst) i = vppo__##I##_scan_run(src, VPPO_F32, n, dst, 0, &mx, &bad); \
    else if (dt == VPPO_F32) i = vppo__##I##_scan_run(src, VPPO_F32, n, dst, 1, &mx, &bad); \
    else if (dt == VPPO_BF16) i = vppo__##I##_scan_run(src, VPPO_BF16, n, dst, 1, &mx, &bad); \
    else i = vppo__##I##_scan_run(src, VPPO_F16, n, dst, 1, &mx, &bad); \
    VPPO__STOREU(I)(lane, mx); \
    return vppo__scan_finish(src, dt, i, n, dst, vppo__hmax_lanes(lane, VPPO__W(I)), VPPO__MANY(I)(bad) != 0, max); \
} \
\
/* y s; unit (a constant at every call: 1/T = 1, the usual temperature) skips the \
   product, which changes no bit. */ \
ATTR VPPO__INLINE VPPO__V(I) vppo__##I##_scaled(VPPO__V(I) y, VPPO__V(I) s, int unit) \
{ \
    return unit ? y : VPPO__MUL(I)(y, s); \
} \
\
/* One vector of stats: W entries x against reference m, 1/T = s. */ \
ATTR VPPO__INLINE void vppo__##I##_stats_one(VPPO__V(I) x, VPPO__V(I) m, VPPO__V(I) s, int unit, VPPO__V(I) *sum, \
    VPPO__V(I) *cen) \
{ \
    const VPPO__V(I) d = VPPO__MAX(I)(vppo__##I##_scaled(VPPO__SUB(I)(x, m), s, unit), VPPO__SET1(I)(VPPO__DLOW)); \
    const VPPO__V(I) e = vppo__##I##_exp_in(d);                       /* d <= about RESCALE */ \
    *sum = VPPO__ADD(I)(*sum, e); \
    *cen = VPPO__FMA(I)(e, d, *cen); \
} \
\
/* Groups of 4 W entries from i to n (n - i a multiple of 4 W) into the accumulators, \
   until a group holds an entry above th or a NaN; returns where it stopped. dt is a \
   constant at every call, so each call becomes its own loop. */ \
ATTR VPPO__INLINE int64_t vppo__##I##_stats_run(const void *src, vppo_dtype dt, int64_t i, int64_t n, \
    VPPO__V(I) m, VPPO__V(I) th, VPPO__V(I) s, int unit, VPPO__V(I) *sum, VPPO__V(I) *cen) \
{ \
    for (; i < n; i += 4 * VPPO__W(I)) { \
        VPPO__V(I) x0, x1, x2, x3; \
        VPPO__PREFETCH_SPAN(src, i, dt, 4 * VPPO__W(I)); \
        vppo__##I##_load2(src, dt, i, 1, &x0, &x1); \
        vppo__##I##_load2(src, dt, i + 2 * VPPO__W(I), 1, &x2, &x3); \
        if (VPPO__MANY(I)(VPPO__MOR(I)(VPPO__MOR(I)(VPPO__NLE(I)(x0, th), VPPO__NLE(I)(x1, th)), \
                                       VPPO__MOR(I)(VPPO__NLE(I)(x2, th), VPPO__NLE(I)(x3, th))))) break; \
        vppo__##I##_stats_one(x0, m, s, unit, &sum[0], &cen[0]); \
        vppo__##I##_stats_one(x1, m, s, unit, &sum[1], &cen[1]); \
        vppo__##I##_stats_one(x2, m, s, unit, &sum[2], &cen[2]); \
        vppo__##I##_stats_one(x3, m, s, unit, &sum[3], &cen[3]); \
    } \
    return i; \
} \
\
/* stats_run with dt made a constant: one loop per dtype (and per unit) */ \
ATTR VPPO__INLINE int64_t vppo__##I##_stats_dt(const void *src, vppo_dtype dt, int64_t i, int64_t n, \
    VPPO__V(I) m, VPPO__V(I) th, VPPO__V(I) s, int unit, VPPO__V(I) *sum, VPPO__V(I) *cen) \
{ \
    if (dt == VPPO_F32) return vppo__##I##_stats_run(src, VPPO_F32, i, n, m, th, s, unit, sum, cen); \
    if (dt == VPPO_BF16) return vppo__##I##_stats_run(src, VPPO_BF16, i, n, m, th, s, unit, sum, cen); \
    return vppo__##I##_stats_run(src, VPPO_F16, i, n, m, th, s, unit, sum, cen); \
} \
\
ATTR static int64_t vppo__##I##_stats(const void *src, vppo_dtype dt, int64_t i, int64_t n, float m, float th, \
    float s, double out[2]) \
{ \
    const VPPO__V(I) vm = VPPO__SET1(I)(m), vt = VPPO__SET1(I)(th), vs = VPPO__SET1(I)(s); \
    const int64_t g = 4 * VPPO__W(I), full = n - n % g; \
    while (i < n) { \
        VPPO__V(I) sum[4], cen[4]; \
        float buf[4 * VPPO__W(I)]; \
        int64_t end = vppo__min64(full, i + VPPO__SUM_TERMS * g), j; \
        int k; \
        for (k = 0; k < 4; ++k) sum[k] = cen[k] = VPPO__SET1(I)(0.0f); \
        if (i < full) { \
            j = s != 1.0f ? vppo__##I##_stats_dt(src, dt, i, end, vm, vt, vs, 0, sum, cen) \
                          : vppo__##I##_stats_dt(src, dt, i, end, vm, vt, vs, 1, sum, cen); \
        } else {                                   /* the last partial group, padded */ \
            vppo__tail_f32(src, dt, i, n, buf, g); \
            j = vppo__##I##_stats_run(buf, VPPO_F32, 0, g, vm, vt, vs, 0, sum, cen) ? n : i; \
            end = n; \
        } \
        out[0] += vppo__##I##_hsum(sum, 4); \
        out[1] += vppo__##I##_hsum(cen, 4); \
        if (j < end) return j; \
        i = end; \
    } \
    return n; \
} \
\
/* One vector of the KL pair kernel. du, dv <= about RESCALE; floored at VPPO__DZERO, \
   exp_kl gives exactly 0 (no flush to pay for); du - dv is only used where eu > 0, so \
   du >= DZERO will do, while dv keeps DFLOOR there. The floors come first in MAX, so a \
   NaN or +inf entry reaches the sums as NaN (x86 max returns its second operand then; \
   NEON returns the NaN): the unchecked pass below relies on it. */ \
ATTR VPPO__INLINE void vppo__##I##_kl_one(VPPO__V(I) zu, VPPO__V(I) zv, const VPPO__V(I) *c, int unit, \
    VPPO__V(I) *acc) \
{ \
    const VPPO__V(I) zero = VPPO__SET1(I)(VPPO__DZERO); \
    const VPPO__V(I) du = VPPO__MAX(I)(zero, vppo__##I##_scaled(VPPO__SUB(I)(zu, c[0]), c[1], unit)); \
    const VPPO__V(I) dv = VPPO__MAX(I)(VPPO__SET1(I)(VPPO__DFLOOR), \
                                       vppo__##I##_scaled(VPPO__SUB(I)(zv, c[2]), c[3], unit)); \
    const VPPO__V(I) eu = vppo__##I##_exp_kl(du); \
    acc[0] = VPPO__ADD(I)(acc[0], eu); \
    acc[1] = VPPO__ADD(I)(acc[1], vppo__##I##_exp_kl(VPPO__MAX(I)(zero, dv))); \
    acc[2] = VPPO__FMA(I)(eu, VPPO__SUB(I)(du, dv), acc[2]); \
} \
\
/* Groups of 2 W entries of both rows, as stats_run; c: mu, su, mv, sv, tu, tv as vectors. \
   check (a constant at every call) 0: no threshold test per group; the running maxima of \
   both rows go to mx[0], mx[1] instead, and the caller tests them (and the sums, for a \
   NaN) once per stretch, running the stretch again with check 1 if they fail. */ \
ATTR VPPO__INLINE int64_t vppo__##I##_kl_run(const void *u, vppo_dtype udt, const void *v, vppo_dtype vdt, \
    int64_t i, int64_t n, const VPPO__V(I) *c, int unit, int check, VPPO__V(I) *mx, VPPO__V(I) *acc, \
    VPPO__VM(I) *inf) \
{ \
    for (; i < n; i += 2 * VPPO__W(I)) { \
        VPPO__V(I) u0, u1, v0, v1; \
        VPPO__PREFETCH_SPAN(u, i, udt, 2 * VPPO__W(I)); \
        VPPO__PREFETCH_SPAN(v, i, vdt, 2 * VPPO__W(I)); \
        vppo__##I##_load2(u, udt, i, udt == vdt, &u0, &u1); \
        vppo__##I##_load2(v, vdt, i, udt == vdt, &v0, &v1); \
        if (!check) { \
            mx[0] = VPPO__MAX(I)(mx[0], VPPO__MAX(I)(u0, u1)); \
            mx[1] = VPPO__MAX(I)(mx[1], VPPO__MAX(I)(v0, v1)); \
        } else if (VPPO__MANY(I)(VPPO__MOR(I)(VPPO__MOR(I)(VPPO__NLE(I)(u0, c[4]), VPPO__NLE(I)(u1, c[4])), \
                                              VPPO__MOR(I)(VPPO__NLE(I)(v0, c[5]), VPPO__NLE(I)(v1, c[5]))))) { \
            break; \
        } \
        { /* KL is +inf where u > -inf meets v = -inf: looked at when the group has a v = -inf */ \
            const VPPO__V(I) ninf = VPPO__SET1(I)(-HUGE_VALF); \
            const VPPO__VM(I) q0 = VPPO__EQ(I)(v0, ninf), q1 = VPPO__EQ(I)(v1, ninf); \
            if (VPPO__MANY(I)(VPPO__MOR(I)(q0, q1))) \
                *inf = VPPO__MOR(I)(*inf, VPPO__MOR(I)(VPPO__MAND(I)(q0, VPPO__GT(I)(u0, ninf)), \
                                                       VPPO__MAND(I)(q1, VPPO__GT(I)(u1, ninf)))); \
        } \
        vppo__##I##_kl_one(u0, v0, c, unit, acc);    /* one set of sums: fewer registers */ \
        vppo__##I##_kl_one(u1, v1, c, unit, acc); \
    } \
    return i; \
} \
\
/* kl_run for two rows of dtype dt, made a constant: one loop per dtype (and per unit) */ \
ATTR VPPO__INLINE int64_t vppo__##I##_kl_dt(const void *u, const void *v, vppo_dtype dt, int64_t i, int64_t n, \
    const VPPO__V(I) *c, int unit, int check, VPPO__V(I) *mx, VPPO__V(I) *acc, VPPO__VM(I) *inf) \
{ \
    if (dt == VPPO_F32) return vppo__##I##_kl_run(u, VPPO_F32, v, VPPO_F32, i, n, c, unit, check, mx, acc, inf); \
    if (dt == VPPO_BF16) return vppo__##I##_kl_run(u, VPPO_BF16, v, VPPO_BF16, i, n, c, unit, check, mx, acc, inf); \
    return vppo__##I##_kl_run(u, VPPO_F16, v, VPPO_F16, i, n, c, unit, check, mx, acc, inf); \
} \
\
/* One stretch [i, n) of two rows of dtype dt: first unchecked (check 0), then, if an \
   entry lay above its row's threshold or a sum is NaN (a NaN or +inf entry), again from \
   i with the test per group, which stops at the first group that fails. */ \
ATTR VPPO__INLINE int64_t vppo__##I##_kl_stretch(const void *u, const void *v, vppo_dtype dt, int64_t i, \
    int64_t n, const VPPO__V(I) *c, int unit, VPPO__V(I) *acc, VPPO__VM(I) *inf) \
{ \
    VPPO__V(I) mx[2], all; \
    VPPO__VM(I) q = VPPO__MNONE(I); \
    int k; \
    mx[0] = mx[1] = VPPO__SET1(I)(-HUGE_VALF); \
    vppo__##I##_kl_dt(u, v, dt, i, n, c, unit, 0, mx, acc, &q); \
    all = VPPO__ADD(I)(VPPO__ADD(I)(acc[0], acc[1]), acc[2]); \
    if (!VPPO__MANY(I)(VPPO__MOR(I)(VPPO__MOR(I)(VPPO__NLE(I)(mx[0], c[4]), VPPO__NLE(I)(mx[1], c[5])), \
                                    VPPO__NLE(I)(all, all)))) { \
        *inf = VPPO__MOR(I)(*inf, q); \
        return n; \
    } \
    for (k = 0; k < 3; ++k) acc[k] = VPPO__SET1(I)(0.0f); \
    return vppo__##I##_kl_dt(u, v, dt, i, n, c, unit, 1, mx, acc, inf); \
} \
\
ATTR static int64_t vppo__##I##_kl(const void *u, vppo_dtype udt, const void *v, vppo_dtype vdt, int64_t i, \
    int64_t n, const vppo__kl_args *ca, vppo__kl_sums *out) \
{ \
    const int64_t g = 2 * VPPO__W(I), full = n - n % g; \
    VPPO__V(I) c[6]; \
    VPPO__VD(I) d[3]; \
    VPPO__VM(I) inf = VPPO__MNONE(I); \
    int k; \
    c[0] = VPPO__SET1(I)(ca->mu); c[1] = VPPO__SET1(I)(ca->su); c[2] = VPPO__SET1(I)(ca->mv); \
    c[3] = VPPO__SET1(I)(ca->sv); c[4] = VPPO__SET1(I)(ca->tu); c[5] = VPPO__SET1(I)(ca->tv); \
    for (k = 0; k < 3; ++k) d[k] = VPPO__DSET1(I)(0.0); \
    while (i < n) { \
        VPPO__V(I) a[3]; \
        float bu[2 * VPPO__W(I)], bv[2 * VPPO__W(I)]; \
        int64_t end = vppo__min64(full, i + VPPO__SUM_TERMS * g), j; \
        for (k = 0; k < 3; ++k) a[k] = VPPO__SET1(I)(0.0f); \
        if (i < full) { \
            j = udt != vdt ? vppo__##I##_kl_run(u, udt, v, vdt, i, end, c, 0, 1, NULL, a, &inf) \
              : ca->su != 1.0f || ca->sv != 1.0f ? vppo__##I##_kl_stretch(u, v, udt, i, end, c, 0, a, &inf) \
              : vppo__##I##_kl_stretch(u, v, udt, i, end, c, 1, a, &inf); \
        } else {                                   /* the last partial group, padded */ \
            vppo__tail_f32(u, udt, i, n, bu, g); \
            vppo__tail_f32(v, vdt, i, n, bv, g); \
            j = vppo__##I##_kl_run(bu, VPPO_F32, bv, VPPO_F32, 0, g, c, 0, 1, NULL, a, &inf) ? n : i; \
            end = n; \
        } \
        for (k = 0; k < 3; ++k)                /* in double lanes; across lanes once, below */ \
            d[k] = VPPO__DADD(I)(d[k], VPPO__DADD(I)(VPPO__DLO(I)(a[k]), VPPO__DHI(I)(a[k]))); \
        if (j < end) { i = j; break; } \
        i = end; \
    } \
    out->su += vppo__##I##_dhsum(d[0]); \
    out->sv += vppo__##I##_dhsum(d[1]); \
    out->diff += vppo__##I##_dhsum(d[2]); \
    out->infinite |= VPPO__MANY(I)(inf) != 0; \
    return i; \
} \
\
ATTR static double vppo__##I##_js(const float *u, const float *v, int64_t n, const vppo__js_args *c) \
{ \
    const VPPO__V(I) mu = VPPO__SET1(I)(c->mu), su = VPPO__SET1(I)(c->su), lu = VPPO__SET1(I)(c->lu); \
    const VPPO__V(I) mv = VPPO__SET1(I)(c->mv), sv = VPPO__SET1(I)(c->sv), lv = VPPO__SET1(I)(c->lv); \
    const VPPO__V(I) fl = VPPO__SET1(I)(VPPO__DFLOOR), one = VPPO__SET1(I)(1.0f); \
    const VPPO__V(I) ln2 = vppo__##I##_log(VPPO__SET1(I)(2.0f));   /* so that lp = lq gives lm = lp exactly */ \
    VPPO__V(I) acc[VPPO__PAD / VPPO__W(I)]; \
    int64_t i; \
    int k; \
    for (k = 0; k < VPPO__PAD / VPPO__W(I); ++k) acc[k] = VPPO__SET1(I)(0.0f); \
    for (i = 0; i < n; i += VPPO__PAD) \
        for (k = 0; k < VPPO__PAD / VPPO__W(I); ++k) { \
            const VPPO__V(I) lp = VPPO__SUB(I)(VPPO__MAX(I)(VPPO__MUL(I)(VPPO__SUB(I)( \
                VPPO__LOADU(I)(u + i + VPPO__W(I) * k), mu), su), fl), lu); \
            const VPPO__V(I) lq = VPPO__SUB(I)(VPPO__MAX(I)(VPPO__MUL(I)(VPPO__SUB(I)( \
                VPPO__LOADU(I)(v + i + VPPO__W(I) * k), mv), sv), fl), lv); \
            const VPPO__V(I) p = vppo__##I##_exp(lp), q = vppo__##I##_exp(lq); \
            const VPPO__V(I) hi = VPPO__MAX(I)(lp, lq), lo = VPPO__MIN(I)(lp, lq); \
            const VPPO__V(I) lm = VPPO__ADD(I)(hi, VPPO__SUB(I)(vppo__##I##_log(VPPO__ADD(I)(one, \
                vppo__##I##_exp(VPPO__SUB(I)(lo, hi)))), ln2)); \
            acc[k] = VPPO__FMA(I)(p, VPPO__SUB(I)(lp, lm), acc[k]); \
            acc[k] = VPPO__FMA(I)(q, VPPO__SUB(I)(lq, lm), acc[k]); \
        } \
    return vppo__##I##_hsum(acc, VPPO__PAD / VPPO__W(I)); \
} \
\
/* One vector of the backward: the gradient of W entries x; marks NaN/+inf in *bad and \
   keeps the running max in *mx. c: hi, lo, s, a, b as vectors. */ \
ATTR VPPO__INLINE VPPO__V(I) vppo__##I##_bwd_one(VPPO__V(I) x, const VPPO__V(I) *c, int unit, VPPO__V(I) *mx, \
    VPPO__VM(I) *bad) \
{ \
    const VPPO__V(I) lp = VPPO__MAX(I)(vppo__##I##_scaled(VPPO__SUB(I)(VPPO__SUB(I)(x, c[0]), c[1]), c[2], unit), \
                                       VPPO__SET1(I)(VPPO__DLOW)); \
    *mx = VPPO__MAX(I)(*mx, x); \
    *bad = VPPO__MOR(I)(*bad, VPPO__NLT(I)(x, VPPO__SET1(I)(HUGE_VALF))); \
    return VPPO__MUL(I)(vppo__##I##_exp_in(VPPO__MIN(I)(lp, VPPO__SET1(I)(88.0f))), VPPO__FMA(I)(c[4], lp, c[3])); \
} \
\
/* W floats g stored as bf16 at dst, rounded to nearest even */ \
ATTR VPPO__INLINE void vppo__##I##_store_bf16(uint16_t *dst, VPPO__V(I) g) \
{ \
    VPPO__VI(I) b = VPPO__BITS(I)(g); \
    b = VPPO__IADD(I)(b, VPPO__IADD(I)(VPPO__ISET1(I)(0x7fff), VPPO__IAND(I)(VPPO__SHR(I)(b, 16), VPPO__ISET1(I)(1)))); \
    VPPO__STHIGH16(I)(dst, b); \
} \
\
/* Whole vectors of the backward; dt and odt are constants at every call. */ \
ATTR VPPO__INLINE int64_t vppo__##I##_bwd_run(const void *src, vppo_dtype dt, int64_t n, const VPPO__V(I) *c, \
    int unit, void *dst, int how, VPPO__V(I) *mx, VPPO__VM(I) *bad) \
{ \
    int64_t i; \
    for (i = 0; i + VPPO__W(I) <= n; i += VPPO__W(I)) { \
        VPPO__V(I) g; \
        VPPO__PREFETCH_AT(src, i, dt); \
        g = vppo__##I##_bwd_one(vppo__##I##_load(src, dt, i), c, unit, mx, bad); \
        if (how == VPPO__OUT_F32) VPPO__STOREU(I)((float *)dst + i, g); \
        else if (how == VPPO__OUT_STREAM) VPPO__STREAM(I)((float *)dst + i, g); \
        else vppo__##I##_store_bf16((uint16_t *)dst + i, g); \
    } \
    return i; \
} \
\
/* Entries [i, n) (fewer than W) of the backward, through a padded buffer. */ \
ATTR static void vppo__##I##_bwd_part(const void *src, vppo_dtype dt, int64_t i, int64_t n, const VPPO__V(I) *c, \
    void *dst, vppo_dtype odt, VPPO__V(I) *mx, VPPO__VM(I) *bad) \
{ \
    float buf[VPPO__W(I)]; \
    vppo__tail_f32(src, dt, i, n, buf, VPPO__W(I)); \
    VPPO__STOREU(I)(buf, vppo__##I##_bwd_one(VPPO__LOADU(I)(buf), c, 0, mx, bad)); \
    if (odt == VPPO_F32) memcpy((float *)dst + i, buf, (size_t)(n - i) * sizeof(float)); \
    else vppo__to_bf16_tail(buf, 0, n - i, (uint16_t *)dst + i); \
} \
\
/* bwd_run with dt and how made constants: one loop per pair (and per unit) */ \
ATTR VPPO__INLINE int64_t vppo__##I##_bwd_dt(const void *src, vppo_dtype dt, int64_t n, const VPPO__V(I) *c, \
    int unit, void *dst, int how, VPPO__V(I) *mx, VPPO__VM(I) *bad) \
{ \
    if (how == VPPO__OUT_F32) { \
        if (dt == VPPO_F32) return vppo__##I##_bwd_run(src, VPPO_F32, n, c, unit, dst, VPPO__OUT_F32, mx, bad); \
        if (dt == VPPO_BF16) return vppo__##I##_bwd_run(src, VPPO_BF16, n, c, unit, dst, VPPO__OUT_F32, mx, bad); \
        return vppo__##I##_bwd_run(src, VPPO_F16, n, c, unit, dst, VPPO__OUT_F32, mx, bad); \
    } \
    if (how == VPPO__OUT_STREAM) { \
        if (dt == VPPO_F32) return vppo__##I##_bwd_run(src, VPPO_F32, n, c, unit, dst, VPPO__OUT_STREAM, mx, bad); \
        if (dt == VPPO_BF16) return vppo__##I##_bwd_run(src, VPPO_BF16, n, c, unit, dst, VPPO__OUT_STREAM, mx, bad); \
        return vppo__##I##_bwd_run(src, VPPO_F16, n, c, unit, dst, VPPO__OUT_STREAM, mx, bad); \
    } \
    if (dt == VPPO_F32) return vppo__##I##_bwd_run(src, VPPO_F32, n, c, unit, dst, VPPO__OUT_BF16, mx, bad); \
    if (dt == VPPO_BF16) return vppo__##I##_bwd_run(src, VPPO_BF16, n, c, unit, dst, VPPO__OUT_BF16, mx, bad); \
    return vppo__##I##_bwd_run(src, VPPO_F16, n, c, unit, dst, VPPO__OUT_BF16, mx, bad); \
} \
\
ATTR static int vppo__##I##_bwd(const void *src, vppo_dtype dt, int64_t n, const vppo__bwd_args *ca, void *dst, \
    vppo_dtype odt, int stream) \
{ \
    const size_t es = vppo__dtype_size(dt); \
    VPPO__V(I) c[5], mx = VPPO__SET1(I)(-HUGE_VALF); \
    VPPO__VM(I) bad = VPPO__MNONE(I); \
    float lane[VPPO__W(I)]; \
    int64_t h = 0, i; \
    int how = odt == VPPO_F32 ? VPPO__OUT_F32 : VPPO__OUT_BF16; \
    c[0] = VPPO__SET1(I)(ca->hi); c[1] = VPPO__SET1(I)(ca->lo); c[2] = VPPO__SET1(I)(ca->s); \
    c[3] = VPPO__SET1(I)(ca->a); c[4] = VPPO__SET1(I)(ca->b); \
    if (stream && odt == VPPO_F32 && (uintptr_t)dst % sizeof(float) == 0) {   /* aligned stores after a head */ \
        h = (int64_t)((0u - (uintptr_t)dst) % (VPPO__W(I) * sizeof(float)) / sizeof(float)); \
        if (h < n) { \
            how = VPPO__OUT_STREAM; \
            if (h) vppo__##I##_bwd_part(src, dt, 0, h, c, dst, odt, &mx, &bad); \
        } else { \
            h = 0; \
        } \
    } \
    i = h + (ca->s != 1.0f \
             ? vppo__##I##_bwd_dt((const char *)src + h * es, dt, n - h, c, 0, (float *)dst + h, how, &mx, &bad) \
             : vppo__##I##_bwd_dt((const char *)src + h * es, dt, n - h, c, 1, (float *)dst + h, how, &mx, &bad)); \
    if (how == VPPO__OUT_STREAM) VPPO__SFENCE(); \
    if (i < n) vppo__##I##_bwd_part(src, dt, i, n, c, dst, odt, &mx, &bad);   /* the last partial vector */ \
    VPPO__STOREU(I)(lane, mx); \
    return (VPPO__MANY(I)(bad) != 0) | (vppo__hmax_lanes(lane, VPPO__W(I)) > -HUGE_VALF) << 1; \
} \
\
static const vppo__kernels vppo__kernels_##I = { \
    4 * VPPO__W(I), vppo__##I##_scan, vppo__##I##_stats, vppo__##I##_kl, vppo__##I##_js, vppo__##I##_bwd \
};

/* VPPO__SELECT_KERNELS(I, ATTR) defines the selection kernels of §6 for ISA I (the
   contract at vppo__select_kernels) and their table vppo__select_kernels_<I>. The mask
   kernel (_topk_mask: the C kernel up to the first multiple of 16, then _topk_body) runs
   blocks of 16 positions aligned to the sequence start (16 / W vectors each) and hands
   the tail to the C kernel; position i's score adds to double lane i % 16 as in the C
   kernel, so the sums have the same bits on every ISA. Counts: 32-bit lanes, flushed
   every 2^30 positions. */
#define VPPO__SELECT_KERNELS(I, ATTR) \
ATTR VPPO__INLINE VPPO__VI(I) vppo__##I##_key(VPPO__V(I) v, VPPO__VI(I) *mag) \
{ \
    const VPPO__VI(I) neg = VPPO__SRA(I)(VPPO__BITS(I)(v), 31); \
    *mag = VPPO__IAND(I)(VPPO__BITS(I)(v), VPPO__ISET1(I)(0x7fffffff)); \
    return VPPO__ISUB(I)(VPPO__IXOR(I)(*mag, neg), neg); \
} \
\
ATTR static void vppo__##I##_topk_keys(const float *x, const uint8_t *valid, int64_t n, int32_t *key, \
    vppo__window *w) \
{ \
    const VPPO__VI(I) none = VPPO__ISET1(I)(VPPO__KEY_NONE), top = VPPO__ISET1(I)(INT32_MAX), zero = VPPO__ISET1(I)(0); \
    const VPPO__V(I) one = VPPO__FLOAT(I)(VPPO__ISET1(I)(1)); \
    VPPO__VI(I) lo = top, hi = none, cnt = zero, mag; \
    int32_t l[VPPO__W(I)], h[VPPO__W(I)], c[VPPO__W(I)]; \
    int64_t i, m = 0; \
    int j; \
    for (i = 0; i + VPPO__W(I) <= n; i += VPPO__W(I)) { \
        VPPO__VI(I) k = vppo__##I##_key(VPPO__LOADU(I)(x + i), &mag); \
        if (valid) { /* the not valid: VPPO__KEY_NONE (a bitwise select, no arithmetic on them) */ \
            const VPPO__VM(I) ok = VPPO__IGT(I)(VPPO__LOAD8(I)(valid + i), zero); \
            k = VPPO__BITS(I)(VPPO__SELECT(I)(ok, VPPO__FLOAT(I)(k), VPPO__FLOAT(I)(none))); \
            lo = VPPO__IMIN(I)(lo, VPPO__BITS(I)(VPPO__SELECT(I)(ok, VPPO__FLOAT(I)(k), VPPO__FLOAT(I)(top)))); \
            cnt = VPPO__IADD(I)(cnt, VPPO__BITS(I)(VPPO__KEEP(I)(ok, one))); \
        } else { \
            lo = VPPO__IMIN(I)(lo, k); \
        } \
        VPPO__ISTOREU(I)(key + i, k); \
        hi = VPPO__IMAX(I)(hi, k); \
    } \
    VPPO__ISTOREU(I)(l, lo); \
    VPPO__ISTOREU(I)(h, hi); \
    VPPO__ISTOREU(I)(c, cnt); \
    for (j = 0; j < VPPO__W(I); ++j) m += c[j]; \
    m = valid ? m : i; \
    vppo__c_topk_keys(x + i, valid ? valid + i : NULL, n - i, key + i, w); \
    w->m += m; \
    for (j = 0; j < VPPO__W(I); ++j) { \
        w->lo = l[j] < w->lo ? l[j] : w->lo; \
        w->hi = h[j] > w->hi ? h[j] : w->hi; \
    } \
} \
\
ATTR static void vppo__##I##_topk_body(const float *x, const uint8_t *valid, int64_t i, int64_t b, int32_t thr, \
    uint8_t *select, vppo__topk_acc *acc); \
ATTR static void vppo__##I##_topk_mask(const float *x, const uint8_t *valid, int64_t a, int64_t b, int32_t thr, \
    uint8_t *select, vppo__topk_acc *acc) \
{ \
    const int64_t i0 = vppo__min64(b, (a + 15) & ~(int64_t)15); \
    vppo__c_topk_mask(x, valid, a, i0, thr, select, acc); \
    vppo__##I##_topk_body(x, valid, i0, b, thr, select, acc); \
} \
\
ATTR static void vppo__##I##_topk_body(const float *x, const uint8_t *valid, int64_t i, int64_t b, int32_t thr, \
    uint8_t *select, vppo__topk_acc *acc) \
{ \
    const VPPO__VI(I) t = VPPO__ISET1(I)(thr), inf = VPPO__ISET1(I)(VPPO__KEY_INF), zero = VPPO__ISET1(I)(0); \
    const VPPO__V(I) one = VPPO__FLOAT(I)(VPPO__ISET1(I)(1)); \
    VPPO__VD(I) ds[32 / VPPO__W(I)], dr[32 / VPPO__W(I)]; \
    int32_t c[VPPO__W(I)]; \
    int q; \
    for (q = 0; q < 32 / VPPO__W(I); ++q) { \
        ds[q] = VPPO__DLOADU(I)(acc->sel + q * (VPPO__W(I) / 2)); \
        dr[q] = VPPO__DLOADU(I)(acc->rej + q * (VPPO__W(I) / 2)); \
    } \
    while (b - i >= 16) { \
        const int64_t stop = i + vppo__min64(b - i, (int64_t)1 << 30); \
        VPPO__VI(I) cs = zero, cr = zero; \
        for (; i + 16 <= stop; i += 16) \
            for (q = 0; q < 16 / VPPO__W(I); ++q) { \
                const VPPO__V(I) v = VPPO__LOADU(I)(x + i + q * VPPO__W(I)); \
                VPPO__VI(I) mag; \
                const VPPO__VI(I) key = vppo__##I##_key(v, &mag); \
                VPPO__VM(I) take = VPPO__IGT(I)(key, t), fin = VPPO__IGT(I)(inf, mag), sel, rej; \
                if (valid) { \
                    const VPPO__VM(I) ok = VPPO__IGT(I)(VPPO__LOAD8(I)(valid + i + q * VPPO__W(I)), zero); \
                    take = VPPO__MAND(I)(take, ok); \
                    fin = VPPO__MAND(I)(fin, ok); \
                } \
                sel = VPPO__MAND(I)(take, fin); \
                rej = VPPO__MANDNOT(I)(take, fin); \
                VPPO__ST8(I)(select + i + q * VPPO__W(I), VPPO__BITS(I)(VPPO__KEEP(I)(take, one))); \
                cs = VPPO__ICOUNT(I)(cs, sel, one); \
                cr = VPPO__ICOUNT(I)(cr, rej, one); \
                VPPO__TOPK_SUMS(I)(ds + 2 * q, dr + 2 * q, sel, rej, v); \
            } \
        VPPO__ISTOREU(I)(c, cs); \
        for (q = 0; q < VPPO__W(I); ++q) acc->n_sel += c[q]; \
        VPPO__ISTOREU(I)(c, cr); \
        for (q = 0; q < VPPO__W(I); ++q) acc->n_rej += c[q]; \
    } \
    for (q = 0; q < 32 / VPPO__W(I); ++q) { \
        VPPO__DSTOREU(I)(acc->sel + q * (VPPO__W(I) / 2), ds[q]); \
        VPPO__DSTOREU(I)(acc->rej + q * (VPPO__W(I) / 2), dr[q]); \
    } \
    VPPO__ZEROUPPER(I)();   /* gcc 12 leaves it out here: scalar code after us would pay */ \
    vppo__c_topk_mask(x, valid, i, b, thr, select, acc); \
} \
\
ATTR static int vppo__##I##_topk_nan(const float *x, const uint8_t *valid, int64_t n) \
{ \
    const VPPO__VI(I) inf = VPPO__ISET1(I)(VPPO__KEY_INF), abs = VPPO__ISET1(I)(0x7fffffff), zero = VPPO__ISET1(I)(0); \
    VPPO__VM(I) bad = VPPO__MNONE(I); \
    int64_t i; \
    for (i = 0; i + VPPO__W(I) <= n; i += VPPO__W(I)) { \
        VPPO__VM(I) m = VPPO__IGT(I)(VPPO__IAND(I)(VPPO__BITS(I)(VPPO__LOADU(I)(x + i)), abs), inf); \
        if (valid) m = VPPO__MAND(I)(m, VPPO__IGT(I)(VPPO__LOAD8(I)(valid + i), zero)); \
        bad = VPPO__MOR(I)(bad, m); \
    } \
    return VPPO__MANY(I)(bad) != 0 || vppo__c_topk_nan(x + i, valid ? valid + i : NULL, n - i); \
} \
\
/* The fill kernel: streaming stores over the whole span of the sequences, from its first \
   W-float boundary to its last (the advantages are written once and read by the loss after \
   the whole prepare: ordinary stores first read every line they write); a vector across \
   sequence ends is made lane by lane; one fence at the end. Measured side by side, 1 \
   thread, AVX-512: per sequence, vppo_prepare 0.92-0.95 and vppo_step 0.97-0.98 of the \
   time with the C kernel's 4-float stores (0.96 and 0.985 of that with ordinary 16-float \
   stores); over the span instead of per sequence (no fence and no ordinary stores at each \
   sequence end) 0.96 of that again. */ \
ATTR static void vppo__##I##_fill(float *adv, const uint8_t *valid, const int64_t *off, int64_t b0, int64_t b1, \
    const float *scale, const float *adv_seq) \
{ \
    const VPPO__VI(I) zero = VPPO__ISET1(I)(0); \
    const int64_t e = off[b1], t0 = off[b0]; \
    const uintptr_t head = ((uintptr_t)0 - (uintptr_t)(adv + t0)) % (VPPO__W(I) * sizeof(float)) / sizeof(float); \
    const int64_t h = t0 + vppo__min64((int64_t)head, e - t0); \
    int64_t t = h, b = b0; \
    float lane[VPPO__W(I)]; \
    int i; \
    while (b < b1 && off[b + 1] <= h) ++b; \
    vppo__c_fill_seqs(adv, valid, off, b0, b, scale, adv_seq); /* the sequences that end in the head */ \
    if (b < b1) vppo__c_fill_adv(adv, valid, off[b], h, scale[b] * adv_seq[b]); \
    while (t + VPPO__W(I) <= e) { \
        while (off[b + 1] <= t) ++b; \
        if (off[b + 1] >= t + VPPO__W(I)) {   /* whole vectors inside sequence b */ \
            const VPPO__V(I) v = VPPO__SET1(I)(scale[b] * adv_seq[b]); \
            const int64_t stop = off[b + 1] < e ? off[b + 1] : e; \
            if (!valid) \
                for (; t + VPPO__W(I) <= stop; t += VPPO__W(I)) VPPO__STREAM(I)(adv + t, v); \
            else \
                for (; t + VPPO__W(I) <= stop; t += VPPO__W(I)) \
                    VPPO__STREAM(I)(adv + t, VPPO__KEEP(I)(VPPO__IGT(I)(VPPO__LOAD8(I)(valid + t), zero), v)); \
        } else {   /* a vector across sequence ends */ \
            int64_t c = b; \
            for (i = 0; i < VPPO__W(I); ++i) { \
                while (off[c + 1] <= t + i) ++c; \
                lane[i] = !valid || valid[t + i] ? scale[c] * adv_seq[c] : 0.0f; \
            } \
            VPPO__STREAM(I)(adv + t, VPPO__LOADU(I)(lane)); \
            t += VPPO__W(I); \
        } \
    } \
    VPPO__SFENCE(); \
    VPPO__ZEROUPPER(I)(); \
    while (b < b1 && off[b + 1] <= t) ++b; /* the tail: ordinary stores */ \
    if (b < b1) { \
        vppo__c_fill_adv(adv, valid, t, off[b + 1], scale[b] * adv_seq[b]); \
        vppo__c_fill_seqs(adv, valid, off, b + 1, b1, scale, adv_seq); \
    } \
} \
\
static const vppo__select_kernels vppo__select_kernels_##I = { \
    vppo__##I##_topk_keys, vppo__##I##_topk_mask, vppo__##I##_topk_nan, VPPO__TOPK_PART(I), vppo__##I##_fill \
};

#ifdef VPPO__X86
/* f16 -> f32 without F16C: the 15 magnitude bits moved to a float's place and scaled by
   2^112 (exact for normals and subnormals), then inf/NaN and the sign put back. */
__attribute__((target("sse2"))) VPPO__INLINE __m128 vppo__sse2_f16(__m128i h32)
{
    const __m128i mag = _mm_slli_epi32(_mm_and_si128(h32, _mm_set1_epi32(0x7fff)), 13);
    const __m128i sign = _mm_slli_epi32(_mm_and_si128(h32, _mm_set1_epi32(0x8000)), 16);
    const __m128i special = _mm_cmpeq_epi32(_mm_and_si128(h32, _mm_set1_epi32(0x7c00)), _mm_set1_epi32(0x7c00));
    const __m128i scaled = _mm_castps_si128(_mm_mul_ps(_mm_castsi128_ps(mag), _mm_castsi128_ps(_mm_set1_epi32(0x77800000))));
    const __m128i infnan = _mm_or_si128(mag, _mm_set1_epi32(0x7f800000));
    return _mm_castsi128_ps(_mm_or_si128(sign, _mm_or_si128(_mm_andnot_si128(special, scaled), _mm_and_si128(special, infnan))));
}

/* 4 bytes to 4 zero-extended lanes (VPPO__LOAD8; the loss's float path reads its flags with it) */
__attribute__((target("sse2"))) VPPO__INLINE __m128i vppo__sse2_load8(const uint8_t *p)
{
    int32_t w;
    memcpy(&w, p, 4);
    return _mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(w), _mm_setzero_si128()), _mm_setzero_si128());
}

VPPO__KERNELS(sse2, __attribute__((target("sse2"))))
VPPO__ON_KERNELS(sse2, __attribute__((target("sse2"))))
VPPO__KERNELS(avx2, __attribute__((target("avx2,fma,f16c"))))
VPPO__ON_KERNELS(avx2, __attribute__((target("avx2,fma,f16c"))))
VPPO__GEMM_KERNELS(sse2, __attribute__((target("sse2"))))
VPPO__GEMM_KERNELS(avx2, __attribute__((target("avx2,fma,f16c"))))

/* The byte moves of the selection kernels that are more than one intrinsic. */
__attribute__((target("sse2"))) VPPO__INLINE __m128i vppo__sse2_iselect(__m128i m, __m128i a, __m128i b)
{
    return _mm_or_si128(_mm_and_si128(m, a), _mm_andnot_si128(m, b));
}
__attribute__((target("sse2"))) VPPO__INLINE void vppo__sse2_st8(uint8_t *p, __m128i x)
{
    const __m128i h = _mm_packs_epi32(x, x);
    const int32_t w = _mm_cvtsi128_si32(_mm_packus_epi16(h, h));
    memcpy(p, &w, 4);
}
__attribute__((target("avx2"))) VPPO__INLINE void vppo__avx2_st8(uint8_t *p, __m256i x)
{
    const __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
    _mm_storel_epi64((__m128i *)(void *)p, _mm_packus_epi16(h, h));
}

/* vppo__select_kernels.part on AVX2: 8 keys at a time, the ones in [lo, hi] moved to the
   front of the vector by a permutation from vppo__compact8 and stored whole at dst + j (j
   <= i, as on AVX-512); vppo__compact8[m]: the positions of the set bits of the 8-bit mask
   m in order, 3 bits each, and their count in bits 24-27. */
static const uint32_t vppo__compact8[256] = {
    0x0000000, 0x1000000, 0x1000001, 0x2000008, 0x1000002, 0x2000010, 0x2000011, 0x3000088,
    0x1000003, 0x2000018, 0x2000019, 0x30000c8, 0x200001a, 0x30000d0, 0x30000d1, 0x4000688,
    0x1000004, 0x2000020, 0x2000021, 0x3000108, 0x2000022, 0x3000110, 0x3000111, 0x4000888,
    0x2000023, 0x3000118, 0x3000119, 0x40008c8, 0x300011a, 0x40008d0, 0x40008d1, 0x5004688,
    0x1000005, 0x2000028, 0x2000029, 0x3000148, 0x200002a, 0x3000150, 0x3000151, 0x4000a88,
    0x200002b, 0x3000158, 0x3000159, 0x4000ac8, 0x300015a, 0x4000ad0, 0x4000ad1, 0x5005688,
    0x200002c, 0x3000160, 0x3000161, 0x4000b08, 0x3000162, 0x4000b10, 0x4000b11, 0x5005888,
    0x3000163, 0x4000b18, 0x4000b19, 0x50058c8, 0x4000b1a, 0x50058d0, 0x50058d1, 0x602c688,
    0x1000006, 0x2000030, 0x2000031, 0x3000188, 0x2000032, 0x3000190, 0x3000191, 0x4000c88,
    0x2000033, 0x3000198, 0x3000199, 0x4000cc8, 0x300019a, 0x4000cd0, 0x4000cd1, 0x5006688,
    0x2000034, 0x30001a0, 0x30001a1, 0x4000d08, 0x30001a2, 0x4000d10, 0x4000d11, 0x5006888,
    0x30001a3, 0x4000d18, 0x4000d19, 0x50068c8, 0x4000d1a, 0x50068d0, 0x50068d1, 0x6034688,
    0x2000035, 0x30001a8, 0x30001a9, 0x4000d48, 0x30001aa, 0x4000d50, 0x4000d51, 0x5006a88,
    0x30001ab, 0x4000d58, 0x4000d59, 0x5006ac8, 0x4000d5a, 0x5006ad0, 0x5006ad1, 0x6035688,
    0x30001ac, 0x4000d60, 0x4000d61, 0x5006b08, 0x4000d62, 0x5006b10, 0x5006b11, 0x6035888,
    0x4000d63, 0x5006b18, 0x5006b19, 0x60358c8, 0x5006b1a, 0x60358d0, 0x60358d1, 0x71ac688,
    0x1000007, 0x2000038, 0x2000039, 0x30001c8, 0x200003a, 0x30001d0, 0x30001d1, 0x4000e88,
    0x200003b, 0x30001d8, 0x30001d9, 0x4000ec8, 0x30001da, 0x4000ed0, 0x4000ed1, 0x5007688,
    0x200003c, 0x30001e0, 0x30001e1, 0x4000f08, 0x30001e2, 0x4000f10, 0x4000f11, 0x5007888,
    0x30001e3, 0x4000f18, 0x4000f19, 0x50078c8, 0x4000f1a, 0x50078d0, 0x50078d1, 0x603c688,
    0x200003d, 0x30001e8, 0x30001e9, 0x4000f48, 0x30001ea, 0x4000f50, 0x4000f51, 0x5007a88,
    0x30001eb, 0x4000f58, 0x4000f59, 0x5007ac8, 0x4000f5a, 0x5007ad0, 0x5007ad1, 0x603d688,
    0x30001ec, 0x4000f60, 0x4000f61, 0x5007b08, 0x4000f62, 0x5007b10, 0x5007b11, 0x603d888,
    0x4000f63, 0x5007b18, 0x5007b19, 0x603d8c8, 0x5007b1a, 0x603d8d0, 0x603d8d1, 0x71ec688,
    0x200003e, 0x30001f0, 0x30001f1, 0x4000f88, 0x30001f2, 0x4000f90, 0x4000f91, 0x5007c88,
    0x30001f3, 0x4000f98, 0x4000f99, 0x5007cc8, 0x4000f9a, 0x5007cd0, 0x5007cd1, 0x603e688,
    0x30001f4, 0x4000fa0, 0x4000fa1, 0x5007d08, 0x4000fa2, 0x5007d10, 0x5007d11, 0x603e888,
    0x4000fa3, 0x5007d18, 0x5007d19, 0x603e8c8, 0x5007d1a, 0x603e8d0, 0x603e8d1, 0x71f4688,
    0x30001f5, 0x4000fa8, 0x4000fa9, 0x5007d48, 0x4000faa, 0x5007d50, 0x5007d51, 0x603ea88,
    0x4000fab, 0x5007d58, 0x5007d59, 0x603eac8, 0x5007d5a, 0x603ead0, 0x603ead1, 0x71f5688,
    0x4000fac, 0x5007d60, 0x5007d61, 0x603eb08, 0x5007d62, 0x603eb10, 0x603eb11, 0x71f5888,
    0x5007d63, 0x603eb18, 0x603eb19, 0x71f58c8, 0x603eb1a, 0x71f58d0, 0x71f58d1, 0x8fac688
};
__attribute__((target("avx2,fma,f16c")))
static void vppo__avx2_topk_part(const float *x, const uint8_t *valid, const int32_t *src, int64_t n, int32_t lo,
                                 int32_t hi, int32_t *dst, vppo__part *o)
{
    const __m256i vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi), abs = _mm256_set1_epi32(0x7fffffff);
    const __m256i top = _mm256_set1_epi32(INT32_MAX), bottom = _mm256_set1_epi32(INT32_MIN), zero = _mm256_setzero_si256();
    const __m256i slot = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21), seven = _mm256_set1_epi32(7);
    __m256i mn = _mm256_set1_epi32(o->lo), mx = _mm256_set1_epi32(o->hi), n_up = zero, n_ok = zero;
    int32_t l[8], h[8], c[8];
    int64_t i, j = o->mid;
    int q;
    for (i = 0; i + 8 <= n; i += 8) {
        __m256i k, ok = _mm256_cmpeq_epi32(zero, zero), up, in;
        uint32_t e;
        if (x) {
            const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(x + i)), neg = _mm256_srai_epi32(bits, 31);
            k = _mm256_sub_epi32(_mm256_xor_si256(_mm256_and_si256(bits, abs), neg), neg);
            if (valid) ok = _mm256_cmpgt_epi32(VPPO__AVX2_LOAD8(valid + i), zero);
        } else {
            k = _mm256_loadu_si256((const __m256i *)(const void *)(src + i));
        }
        up = _mm256_and_si256(ok, _mm256_cmpgt_epi32(k, vhi));
        in = _mm256_andnot_si256(_mm256_or_si256(up, _mm256_cmpgt_epi32(vlo, k)), ok);
        e = vppo__compact8[_mm256_movemask_ps(_mm256_castsi256_ps(in))];
        _mm256_storeu_si256((__m256i *)(void *)(dst + j), _mm256_permutevar8x32_epi32(k,
            _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int32_t)e), slot), seven)));
        mn = _mm256_min_epi32(mn, _mm256_blendv_epi8(top, k, in));
        mx = _mm256_max_epi32(mx, _mm256_blendv_epi8(bottom, k, in));
        n_up = _mm256_sub_epi32(n_up, up);
        n_ok = _mm256_sub_epi32(n_ok, ok);
        j += e >> 24;
    }
    _mm256_storeu_si256((__m256i *)(void *)l, mn);
    _mm256_storeu_si256((__m256i *)(void *)h, mx);
    _mm256_storeu_si256((__m256i *)(void *)c, n_up);
    for (q = 0; q < 8; ++q) {
        o->lo = l[q] < o->lo ? l[q] : o->lo;
        o->hi = h[q] > o->hi ? h[q] : o->hi;
        o->above += c[q];
    }
    _mm256_storeu_si256((__m256i *)(void *)c, n_ok);
    for (q = 0; q < 8; ++q) o->m += c[q];
    o->mid = j;
    _mm256_zeroupper();
    vppo__c_topk_part(x ? x + i : NULL, valid && x ? valid + i : NULL, src ? src + i : NULL, n - i, lo, hi, dst, o);
}

VPPO__SELECT_KERNELS(sse2, __attribute__((target("sse2"))))
VPPO__ON_CHECK_KERNEL(sse2, __attribute__((target("sse2"))))
VPPO__SELECT_KERNELS(avx2, __attribute__((target("avx2,fma,f16c"))))
VPPO__ON_CHECK_KERNEL(avx2, __attribute__((target("avx2,fma,f16c"))))
/* g++ 12 flags the deliberate self-initialisation inside _mm512_undefined_*() of its own
   intrinsic headers once they are inlined here; nothing of ours is uninitialised. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
VPPO__KERNELS(avx512, __attribute__((target("avx512f,avx2,fma,f16c"))))
VPPO__ON_KERNELS(avx512, __attribute__((target("avx512f,avx2,fma,f16c"))))
VPPO__GEMM_KERNELS(avx512, __attribute__((target("avx512f,avx2,fma,f16c"))))
/* vppo__select_kernels.part on AVX-512: 16 keys at a time (made from the scores, or
   loaded), the ones in [lo, hi] compressed in a register and stored whole at dst + j (j <=
   i: in place it overwrites only keys already read), the counts by popcount; the tail in C. */
__attribute__((target("avx512f,avx2,fma,f16c,popcnt")))
static void vppo__avx512_topk_part(const float *x, const uint8_t *valid, const int32_t *src, int64_t n, int32_t lo,
                                   int32_t hi, int32_t *dst, vppo__part *o)
{
    const __m512i vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi), abs = _mm512_set1_epi32(0x7fffffff);
    __m512i mn = _mm512_set1_epi32(o->lo), mx = _mm512_set1_epi32(o->hi);
    int64_t i, j = o->mid, a = 0, m = 0;
    for (i = 0; i + 16 <= n; i += 16) {
        __mmask16 ok = 0xffff, up, in;
        __m512i k;
        if (x) {
            const __m512i bits = _mm512_castps_si512(_mm512_loadu_ps(x + i)), neg = _mm512_srai_epi32(bits, 31);
            k = _mm512_sub_epi32(_mm512_xor_si512(_mm512_and_si512(bits, abs), neg), neg);
            if (valid) {
                const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(valid + i)));
                ok = _mm512_test_epi32_mask(v, v);
            }
        } else {
            k = _mm512_loadu_si512(src + i);
        }
        up = _mm512_mask_cmpgt_epi32_mask(ok, k, vhi);
        in = _mm512_mask_cmpge_epi32_mask((__mmask16)(ok & ~up), k, vlo);
        _mm512_storeu_si512(dst + j, _mm512_maskz_compress_epi32(in, k));
        mn = _mm512_mask_min_epi32(mn, in, mn, k);
        mx = _mm512_mask_max_epi32(mx, in, mx, k);
        j += _mm_popcnt_u32(in);
        a += _mm_popcnt_u32(up);
        m += _mm_popcnt_u32(ok);
    }
    o->mid = j;
    o->above += a;
    o->m += m;
    o->lo = _mm512_reduce_min_epi32(mn);
    o->hi = _mm512_reduce_max_epi32(mx);
    _mm256_zeroupper();
    vppo__c_topk_part(x ? x + i : NULL, valid && x ? valid + i : NULL, src ? src + i : NULL, n - i, lo, hi, dst, o);
}
VPPO__SELECT_KERNELS(avx512, __attribute__((target("avx512f,avx2,fma,f16c"))))
VPPO__ON_CHECK_KERNEL(avx512, __attribute__((target("avx512f,avx2,fma,f16c"))))
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif /* VPPO__X86 */
#ifdef VPPO__NEON
/* 4 bytes to 4 zero-extended lanes (VPPO__LOAD8) */
VPPO__INLINE uint32x4_t vppo__neon_load8(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(w)))));
}
VPPO__KERNELS(neon, )
VPPO__ON_KERNELS(neon, )
VPPO__GEMM_KERNELS(neon, )
VPPO__INLINE void vppo__neon_st8(uint8_t *p, uint32x4_t x)
{
    const uint16x4_t h = vmovn_u32(x);
    const uint32_t w = vget_lane_u32(vreinterpret_u32_u8(vmovn_u16(vcombine_u16(h, h))), 0);
    memcpy(p, &w, 4);
}
VPPO__SELECT_KERNELS(neon, )
VPPO__ON_CHECK_KERNEL(neon, )
#endif
#endif /* VPPO__X86 || VPPO__NEON */

/* --- d. portable C kernels ----------------------------------------------------- */
/* The same leaf-kernel contract in plain C with double arithmetic per entry: what the
   fused linear head (§9) uses when the active ISA is scalar. */
static int vppo__c_scan(const void *src, vppo_dtype dt, int64_t n, float *dst, float *max)
{
    if (!dst) {                                   /* f32, scanned where it lies */
        const float *z = (const float *)src;
        float m = -HUGE_VALF;
        int64_t i;
        int bad = 0;
        for (i = 0; i < n; ++i) {
            if (!(z[i] < HUGE_VALF)) bad = 1;
            else if (z[i] > m) m = z[i];
        }
        *max = m;
        return bad;
    }
    return vppo__scan_finish(src, dt, 0, n, dst, -HUGE_VALF, 0, max);
}

static double vppo__c_at(const void *src, vppo_dtype dt, int64_t i)
{
    return dt == VPPO_F32 ? ((const float *)src)[i]
         : dt == VPPO_BF16 ? vppo__bf16_to_f32(((const uint16_t *)src)[i])
         : vppo__f16_to_f32(((const uint16_t *)src)[i]);
}

static int64_t vppo__c_stats(const void *src, vppo_dtype dt, int64_t i, int64_t n, float m, float th, float s,
    double out[2])
{
    for (; i < n; ++i) {
        const double z = vppo__c_at(src, dt, i);
        double d, e;
        if (!(z <= th)) return i;
        if (z == -VPPO__INF) continue;
        d = (z - m) * s;
        e = exp(d);
        out[0] += e;
        out[1] += e * d;
    }
    return n;
}

static int64_t vppo__c_kl(const void *u, vppo_dtype udt, const void *v, vppo_dtype vdt, int64_t i, int64_t n,
    const vppo__kl_args *c, vppo__kl_sums *out)
{
    for (; i < n; ++i) {
        const double zu = vppo__c_at(u, udt, i), zv = vppo__c_at(v, vdt, i);
        const double du = (zu - c->mu) * c->su, dv = (zv - c->mv) * c->sv;
        if (!(zu <= c->tu) || !(zv <= c->tv)) return i;
        if (zv > -VPPO__INF) out->sv += exp(dv);
        if (zu == -VPPO__INF) continue;
        out->su += exp(du);
        if (zv == -VPPO__INF) out->infinite = 1;
        else out->diff += exp(du) * (du - dv);
    }
    return n;
}

static double vppo__c_js(const float *u, const float *v, int64_t n, const vppo__js_args *c)
{
    const double ln2 = 0.69314718055994530942;
    double acc = 0.0;
    int64_t i;
    for (i = 0; i < n; ++i) {
        const double lp = u[i] == -HUGE_VALF ? -VPPO__INF : ((double)u[i] - c->mu) * c->su - c->lu;
        const double lq = v[i] == -HUGE_VALF ? -VPPO__INF : ((double)v[i] - c->mv) * c->sv - c->lv;
        double hi, lm;
        if (lp == -VPPO__INF && lq == -VPPO__INF) continue;
        hi = vppo__max(lp, lq);
        lm = hi + log1p(exp((lp < lq ? lp : lq) - hi)) - ln2;
        if (lp > -VPPO__INF) acc += exp(lp) * (lp - lm);
        if (lq > -VPPO__INF) acc += exp(lq) * (lq - lm);
    }
    return acc;
}

static int vppo__c_bwd(const void *src, vppo_dtype dt, int64_t n, const vppo__bwd_args *c, void *dst,
    vppo_dtype odt, int stream)
{
    int64_t i;
    int flags = 0;
    (void)stream;
    for (i = 0; i < n; ++i) {
        const double z = vppo__c_at(src, dt, i);
        double lp, p;
        float g = 0.0f;
        if (!(z < VPPO__INF)) flags |= 1;
        else if (z > -VPPO__INF) {
            flags |= 2;
            lp = (z - c->hi - c->lo) * c->s;
            p = exp(lp);
            g = (float)(-(c->g * p + c->h * p * (lp + c->H)) * c->s);
        }
        if (odt == VPPO_F32) ((float *)dst)[i] = g;
        else ((uint16_t *)dst)[i] = vppo__f32_to_bf16(g);
    }
    return flags;
}

static const vppo__kernels vppo__kernels_c = {
    1, vppo__c_scan, vppo__c_stats, vppo__c_kl, vppo__c_js, vppo__c_bwd
};

/* The GEMM microkernel in C: 4 x 8 tiles, a rounded product then a rounded add per term. */
static void vppo__c_gemm_micro(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int load)
{
    float s[32];
    int64_t p, i, j;
    for (i = 0; i < 4; ++i)
        for (j = 0; j < 8; ++j) s[i * 8 + j] = load ? c[i * ldc + j] : 0.0f;
    for (p = 0; p < kc; ++p, pa += 4, pb += 8)
        for (i = 0; i < 4; ++i)
            for (j = 0; j < 8; ++j) s[i * 8 + j] += pa[i] * pb[j];
    for (i = 0; i < 4; ++i)
        for (j = 0; j < 8; ++j) c[i * ldc + j] = s[i * 8 + j];
}

static const vppo__gemm_kernels vppo__gemm_kernels_c = { 4, 8, vppo__c_gemm_micro };

/* The O(N) kernels in plain C: the scalar ISA's, and the reference of every other one's bits. */
VPPO__ON_KERNELS(c, )

/* The check kernel of the scalar ISA: VPPO__ON_CHECK_KERNEL's tests one float at a time. */
static int vppo__c_on_scan(const float *x, const uint8_t *mask, int64_t t0, int64_t t1, int hi)
{
    int64_t t;
    int pos = 0, ninf = 0, big = 0;
    for (t = t0; t < t1; ++t) {
        if (mask && !mask[t]) continue;
        pos |= !(x[t] <= FLT_MAX);
        ninf |= x[t] < -FLT_MAX;
        big |= hi && !(x[t] <= 88.0f);
    }
    return (pos ? VPPO__ON_POS : 0) | (ninf ? VPPO__ON_NINF : 0) | (big ? VPPO__ON_BIG : 0);
}

static int vppo__c_on_check(const vppo__on_check *c, int64_t t0, int64_t t1)
{
    return vppo__on_check_drive(c, t0, t1, vppo__c_on_scan, vppo__c_on_pdrop);
}

/* --- e. detection, selection and the dispatch table ------------------------------ */

#ifdef VPPO__X86
static unsigned vppo__xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return lo;
}
#endif

/* Does this build and this CPU (and its OS, for the AVX register state) run isa? */
static int vppo__isa_supported(vppo_isa isa)
{
#ifdef VPPO__X86
    unsigned a, b, c = 0, d = 0, b7 = 0, xcr0 = 0, top = __get_cpuid_max(0, 0);
    int avx2;
    if (top >= 1) __cpuid(1, a, b, c, d);
    if (top >= 7) { unsigned c7, d7; __cpuid_count(7, 0, a, b7, c7, d7); (void)c7; (void)d7; }
    if (c & (1u << 27)) xcr0 = vppo__xgetbv0();                 /* OSXSAVE */
    avx2 = (c & (1u << 28)) && (c & (1u << 12)) && (c & (1u << 29)) &&   /* AVX, FMA, F16C */
           (b7 & (1u << 5)) && (xcr0 & 6u) == 6u;                     /* AVX2; XMM+YMM state */
    if (isa == VPPO_ISA_SSE2) return (d >> 26) & 1u;
    if (isa == VPPO_ISA_AVX2) return avx2;
    if (isa == VPPO_ISA_AVX512) return avx2 && (b7 & (1u << 16)) && (xcr0 & 0xe6u) == 0xe6u;   /* F; opmask+ZMM */
#endif
#ifdef VPPO__NEON
    if (isa == VPPO_ISA_NEON) return 1;
#endif
    return isa == VPPO_ISA_SCALAR;
}

static const vppo__kernels *vppo__kernels_for(vppo_isa isa)
{
    switch (isa) {
#ifdef VPPO__X86
    case VPPO_ISA_SSE2:   return &vppo__kernels_sse2;
    case VPPO_ISA_AVX2:   return &vppo__kernels_avx2;
    case VPPO_ISA_AVX512: return &vppo__kernels_avx512;
#endif
#ifdef VPPO__NEON
    case VPPO_ISA_NEON:   return &vppo__kernels_neon;
#endif
    default:              return NULL;
    }
}

/* The one piece of global mutable state: -1 until the first use picks the best path.
   It is read and written atomically (relaxed order: it is a lone int that guards no other
   data; the kernel tables are constant), so concurrent first calls are safe: each may run
   the detection, and each stores the same value. gcc and clang: the __atomic builtins;
   other C11 compilers: <stdatomic.h>; anything else (a C99 compiler without either) gets
   a plain int, on which concurrent first calls are a data race (THREADING). */
#if defined(__GNUC__) || defined(__clang__)
static int vppo__isa_current = -1;
#define VPPO__ISA_LOAD() __atomic_load_n(&vppo__isa_current, __ATOMIC_RELAXED)
#define VPPO__ISA_STORE(v) __atomic_store_n(&vppo__isa_current, (v), __ATOMIC_RELAXED)
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && \
    !defined(__STDC_NO_ATOMICS__)
#include <stdatomic.h>
static _Atomic int vppo__isa_current = -1;
#define VPPO__ISA_LOAD() atomic_load_explicit(&vppo__isa_current, memory_order_relaxed)
#define VPPO__ISA_STORE(v) atomic_store_explicit(&vppo__isa_current, (v), memory_order_relaxed)
#else
static int vppo__isa_current = -1;
#define VPPO__ISA_LOAD() vppo__isa_current
#define VPPO__ISA_STORE(v) (vppo__isa_current = (v))
#endif

static vppo_isa vppo__isa_best(void)
{
    static const vppo_isa order[] = { VPPO_ISA_AVX512, VPPO_ISA_AVX2, VPPO_ISA_NEON, VPPO_ISA_SSE2 };
    size_t i;
    for (i = 0; i < sizeof order / sizeof order[0]; ++i)
        if (vppo__kernels_for(order[i]) && vppo__isa_supported(order[i])) return order[i];
    return VPPO_ISA_SCALAR;
}

/* The active ISA's kernels, or NULL for the scalar reference: the scalar path is also
   taken when 1/temperature is not a normal float (temperature below ~3e-39 or above
   ~8.5e37), where the float block arithmetic would lose its accuracy. */
static const vppo__kernels *vppo__kernels_for_temperature(float temperature)
{
    const double s = 1.0 / (double)temperature;
    return s >= FLT_MIN && s <= FLT_MAX ? vppo__kernels_for(vppo_isa_active()) : NULL;
}

/* The linear head always runs the block kernels: the portable C ones when the active
   ISA (or the temperature) calls for the scalar path. */
static const vppo__kernels *vppo__lin_kernels(float temperature)
{
    const vppo__kernels *k = vppo__kernels_for_temperature(temperature);
    return k ? k : &vppo__kernels_c;
}

VPPODEF vppo_isa vppo_isa_active(void)
{
    int isa = VPPO__ISA_LOAD();
    if (isa < 0) {
        isa = (int)vppo__isa_best();
        VPPO__ISA_STORE(isa);
    }
    return (vppo_isa)isa;
}

static const vppo__on_kernels *vppo__on_kernels_for(vppo_isa isa)
{
    switch (isa) {
#ifdef VPPO__X86
    case VPPO_ISA_SSE2:   return &vppo__on_kernels_sse2;
    case VPPO_ISA_AVX2:   return &vppo__on_kernels_avx2;
    case VPPO_ISA_AVX512: return &vppo__on_kernels_avx512;
#endif
#ifdef VPPO__NEON
    case VPPO_ISA_NEON:   return &vppo__on_kernels_neon;
#endif
    default:              return &vppo__on_kernels_c;
    }
}

static const vppo__on_kernels *vppo__on_active(void) { return vppo__on_kernels_for(vppo_isa_active()); }

static const vppo__gemm_kernels *vppo__gemm_kernels_active(void)
{
    switch (vppo_isa_active()) {
#ifdef VPPO__X86
    case VPPO_ISA_SSE2:   return &vppo__gemm_kernels_sse2;
    case VPPO_ISA_AVX2:   return &vppo__gemm_kernels_avx2;
    case VPPO_ISA_AVX512: return &vppo__gemm_kernels_avx512;
#endif
#ifdef VPPO__NEON
    case VPPO_ISA_NEON:   return &vppo__gemm_kernels_neon;
#endif
    default:              return &vppo__gemm_kernels_c;
    }
}

static const vppo__select_kernels *vppo__select_kernels_active(void)
{
    switch (vppo_isa_active()) {
#ifdef VPPO__X86
    case VPPO_ISA_SSE2:   return &vppo__select_kernels_sse2;
    case VPPO_ISA_AVX2:   return &vppo__select_kernels_avx2;
    case VPPO_ISA_AVX512: return &vppo__select_kernels_avx512;
#endif
#ifdef VPPO__NEON
    case VPPO_ISA_NEON:   return &vppo__select_kernels_neon;
#endif
    default:              return &vppo__select_kernels_c;
    }
}

VPPODEF vppo_status vppo_isa_select(vppo_isa isa)
{
    if (!vppo__enum_in((int)isa, VPPO_ISA_SCALAR, VPPO_ISA_NEON)) return VPPO_ERR_PARAM;
    if (isa != VPPO_ISA_SCALAR && (!vppo__kernels_for(isa) || !vppo__isa_supported(isa)))
        return VPPO_ERR_UNSUPPORTED;
    VPPO__ISA_STORE((int)isa);
    return VPPO_OK;
}

VPPODEF const char *vppo_isa_name(vppo_isa isa)
{
    switch (isa) {
    case VPPO_ISA_SCALAR: return "scalar";
    case VPPO_ISA_SSE2:   return "sse2";
    case VPPO_ISA_AVX2:   return "avx2";
    case VPPO_ISA_AVX512: return "avx512";
    case VPPO_ISA_NEON:   return "neon";
    }
    return "unknown";
}

#ifdef __cplusplus
}
#endif
#endif /* VPPO_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the vppo.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
