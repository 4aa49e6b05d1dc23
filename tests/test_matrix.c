/* tests/test_matrix.c - the bad-input matrix as a table: every public function that returns
   a vppo_status, each kind of bad input, the status it must return. The same table is
   checked against the library (bad_input_matrix_table) and written as Markdown to
   docs/bad_input_matrix.md (run the suite with VPPO_WRITE_MATRIX=path, or make
   docs-matrix); bad_input_matrix_doc_is_current fails when the committed file and the
   table differ, so the documentation cannot drift.

   Every row starts from one fixture of valid arguments for every function and breaks one
   thing. The expected statuses are worked out from docs/spec.md §1 (NULL: a required pointer;
   SIZE: counts, offsets, strides, groups; PARAM: a parameter outside its domain; INDEX: a
   token id outside [0, vocab); NONFINITE: NaN, or an infinity where none is allowed;
   WORKSPACE; UNSUPPORTED) and the domains stated in the header, never from a run. Where
   the documentation is silent the row says what it assumes. */
#include "test.h"
#include <stdarg.h>

/* ------------------------------------------------------------ the calls, on the fixture */

#define C_OFFSETS      vppo_offsets_uniform(f.offsets_out, 3, 2)
#define C_BLACKEN      vppo_perturb_patch_blackening(&f.img, 2, 0.5f, 7)
#define C_NOISE        vppo_perturb_gaussian_noise(&f.img, 0.0f, 10.0f, 7)
#define C_FILL         vppo_perturb_fill(&f.img, 128)
#define C_BLUR         vppo_perturb_gaussian_blur(&f.img, 1.0f, f.work, f.blur_need)
#define C_ROWS         vppo_perturb_patch_rows(f.rows, 4, 2, 2, 0.5f, f.fillv, 7)
#define C_DEP_SAMPLED  vppo_dependency_sampled(&f.s, f.logp, f.aug, VPPO_EST_K3, f.out)
#define C_DEP_LOGITS   vppo_dependency_logits(&f.x, &f.y, VPPO_DIV_KL, f.out)
#define C_LOGPROBS     vppo_logprobs(&f.x, f.ids, f.out, f.lse, f.ent)
#define C_BACKWARD     vppo_logprobs_backward(&f.x, f.ids, f.lse, f.ent, f.dl, f.de, &f.g)
#define C_GROUP_ADV    vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO, 1e-6f, f.out)
#define C_GROUP_FILTER vppo_group_filter(&f.s, f.score, 0.01, 0.99, f.sel)
#define C_SEQ_MEAN     vppo_seq_mean(&f.s, f.score, f.mean, f.count)
#define C_TAS_STATS    vppo_tas_stats_compute(f.traj, f.count, 2, &f.st)
#define C_TAS_SCALES   vppo_tas_scales(&f.tas, &f.st, f.traj, f.count, 2, f.scale)
#define C_TOPK         vppo_topk_mask(&f.s, f.score, 0.4, f.sel, &f.info)
#define C_SOFT         vppo_soft_mask(&f.s, f.score, 0.4, f.out)
#define C_LOSS         vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, f.logp, f.score, f.sel, f.rows, f.out, &f.lo)
#define C_PREPARE      vppo_prepare(&f.cfg, &f.s, f.logp, f.aug, NULL, f.adv_seq, NULL, &f.p)
#define C_STEP         vppo_step(&f.cfg, &f.s, f.logp, f.aug, f.aug, f.logp, f.adv_seq, &f.p, f.out, &f.lo)
#define C_LIN_LOGP     vppo_linear_logprobs(f.hidden, f.weight, 2, 3, 5, 1.0f, f.lin_ids, f.lin_out, f.lse, f.ent, \
                                            f.work, f.lin_need)
#define C_LIN_DEP      vppo_linear_dependency(f.hidden, f.hidden_aug, f.weight, 2, 3, 5, 1.0f, VPPO_DIV_KL, f.lin_out, \
                                              f.work, f.lin_need)
#define C_LIN_BWD      vppo_linear_logprobs_backward(f.hidden, f.weight, 2, 3, 5, 1.0f, f.lin_ids, NULL, NULL, f.dl, \
                                                     f.de, f.dhidden, f.dweight, f.work, f.lin_need)

/* ------------------------------------------------------------ the table */

/* The kinds of bad input: the columns of the summary. */
enum {
    K_NULL, K_SIZE, K_PARAM, K_DTYPE, K_ID, K_NAN, K_PINF, K_NINF, K_ALLNEG, K_OVERFLOW, K_WORK,
    K_OVERLAP, K_EDGE, N_KINDS
};
static const char *const kind_names[N_KINDS] = {
    "NULL pointer", "size, offsets, stride", "parameter (NaN, inf too)", "dtype", "token id", "NaN in data",
    "+inf in data", "-inf in data", "row of only -inf", "result beyond float range", "workspace", "overlap, in place",
    "accepted (valid edge)"
};

typedef struct matrix_row {
    const char *fn, *what;
    int kind;
    vppo_status expected;
    int line;
} matrix_row;

#define MATRIX_MAX 400

/* Walks the table: checks each row against the library (check = 1) or only collects it. */
typedef struct matrix_walk {
    int check;
    int n;
    matrix_row rows[MATRIX_MAX];
} matrix_walk;

static void matrix_visit(matrix_walk *w, const char *fn, int kind, const char *what, vppo_status expected,
                         vppo_status got, int line)
{
    if (w->n < MATRIX_MAX) {
        matrix_row *r = &w->rows[w->n];
        r->fn = fn; r->what = what; r->kind = kind; r->expected = expected; r->line = line;
    }
    ++w->n;
    if (!w->check) return;
    ++test_checks;
    if (got != expected)
        test_fail(__FILE__, line, "%s, %s: expected %s, got %s (%s)", fn, what, vppo_status_string(expected),
                  vppo_status_string(got), kind_names[kind]);
}

/* ROW(function, kind, what is broken, expected, breakage, call): a fresh fixture, one
   thing broken, the call made only when checking. */
#define ROW(FN, KIND, WHAT, EXPECTED, BREAK, CALL) do { test_fixture_init(&f); BREAK; \
    matrix_visit(w, FN, KIND, WHAT, EXPECTED, w->check ? (CALL) : (EXPECTED), __LINE__); } while (0)
#define NOTHING (void)0

#define OK VPPO_OK
#define E_NULL VPPO_ERR_NULL
#define E_SIZE VPPO_ERR_SIZE
#define E_PARAM VPPO_ERR_PARAM
#define E_INDEX VPPO_ERR_INDEX
#define E_NONFINITE VPPO_ERR_NONFINITE
#define E_WORKSPACE VPPO_ERR_WORKSPACE
#define E_UNSUPPORTED VPPO_ERR_UNSUPPORTED

static void matrix_table(matrix_walk *w)
{
    static test_fixture f;   /* static: one fixture re-initialised per row */
    static const int64_t decreasing[3] = { 0, 5, 4 }, negative_first[3] = { -2, 0, 4 };
    static const int64_t past_any_buffer[3] = { 0, 4, (int64_t)(PTRDIFF_MAX / 4) + 1 };
    const vppo_isa isa_before = vppo_isa_active();
    int i;

    /* --- vppo_offsets_uniform ------------------------------------------------ */
    ROW("vppo_offsets_uniform", K_EDGE, "the fixture (3 sequences of 2)", OK, NOTHING, C_OFFSETS);
    ROW("vppo_offsets_uniform", K_NULL, "offsets = NULL", E_NULL, NOTHING, vppo_offsets_uniform(NULL, 3, 2));
    ROW("vppo_offsets_uniform", K_SIZE, "n_seqs = -1", E_SIZE, NOTHING, vppo_offsets_uniform(f.offsets_out, -1, 2));
    ROW("vppo_offsets_uniform", K_SIZE, "len = -1", E_SIZE, NOTHING, vppo_offsets_uniform(f.offsets_out, 3, -1));
    ROW("vppo_offsets_uniform", K_SIZE, "n_seqs * len overflows int64", E_SIZE, NOTHING,
        vppo_offsets_uniform(f.offsets_out, 3, INT64_MAX / 2));
    ROW("vppo_offsets_uniform", K_EDGE, "n_seqs = 0 (one entry, 0)", OK, NOTHING,
        vppo_offsets_uniform(f.offsets_out, 0, 2));
    ROW("vppo_offsets_uniform", K_EDGE, "len = 0 (every sequence empty)", OK, NOTHING,
        vppo_offsets_uniform(f.offsets_out, 3, 0));

    /* --- image perturbations (§3): image geometry is a size, parameters a domain ---- */
    ROW("vppo_perturb_patch_blackening", K_EDGE, "the fixture (4x4 RGB, patch 2, prob 0.5)", OK, NOTHING, C_BLACKEN);
    ROW("vppo_perturb_patch_blackening", K_NULL, "img = NULL", E_NULL, NOTHING,
        vppo_perturb_patch_blackening(NULL, 2, 0.5f, 7));
    ROW("vppo_perturb_patch_blackening", K_NULL, "img->pixels = NULL", E_NULL, f.img.pixels = NULL, C_BLACKEN);
    ROW("vppo_perturb_patch_blackening", K_SIZE, "width = -1", E_SIZE, f.img.width = -1, C_BLACKEN);
    ROW("vppo_perturb_patch_blackening", K_SIZE, "channels = 0", E_SIZE, f.img.channels = 0, C_BLACKEN);
    ROW("vppo_perturb_patch_blackening", K_SIZE, "row_stride < width * channels", E_SIZE, f.img.row_stride = 11, C_BLACKEN);
    ROW("vppo_perturb_patch_blackening", K_SIZE, "row_stride * height beyond any buffer", E_SIZE,
        f.img.row_stride = INT64_MAX / 2, C_BLACKEN);
    ROW("vppo_perturb_patch_blackening", K_PARAM, "patch = 0", E_PARAM, NOTHING,
        vppo_perturb_patch_blackening(&f.img, 0, 0.5f, 7));
    ROW("vppo_perturb_patch_blackening", K_PARAM, "prob = 1.5", E_PARAM, NOTHING,
        vppo_perturb_patch_blackening(&f.img, 2, 1.5f, 7));
    ROW("vppo_perturb_patch_blackening", K_PARAM, "prob = -0.1", E_PARAM, NOTHING,
        vppo_perturb_patch_blackening(&f.img, 2, -0.1f, 7));
    ROW("vppo_perturb_patch_blackening", K_PARAM, "prob = NaN", E_PARAM, NOTHING,
        vppo_perturb_patch_blackening(&f.img, 2, NAN, 7));
    ROW("vppo_perturb_patch_blackening", K_EDGE, "prob = 0 and 1", OK, NOTHING,
        vppo_perturb_patch_blackening(&f.img, 2, 0.0f, 7) == OK
            ? vppo_perturb_patch_blackening(&f.img, 2, 1.0f, 7) : E_PARAM);
    ROW("vppo_perturb_patch_blackening", K_EDGE, "patch larger than the image", OK, NOTHING,
        vppo_perturb_patch_blackening(&f.img, 1000, 0.5f, 7));
    ROW("vppo_perturb_patch_blackening", K_EDGE, "an empty image (width 0)", OK, f.img.width = 0, C_BLACKEN);

    ROW("vppo_perturb_gaussian_noise", K_EDGE, "the fixture (mean 0, std 10)", OK, NOTHING, C_NOISE);
    ROW("vppo_perturb_gaussian_noise", K_NULL, "img = NULL", E_NULL, NOTHING,
        vppo_perturb_gaussian_noise(NULL, 0.0f, 10.0f, 7));
    ROW("vppo_perturb_gaussian_noise", K_NULL, "img->pixels = NULL", E_NULL, f.img.pixels = NULL, C_NOISE);
    ROW("vppo_perturb_gaussian_noise", K_SIZE, "height = -1", E_SIZE, f.img.height = -1, C_NOISE);
    ROW("vppo_perturb_gaussian_noise", K_PARAM, "std = -2", E_PARAM, NOTHING,
        vppo_perturb_gaussian_noise(&f.img, 0.0f, -2.0f, 7));
    ROW("vppo_perturb_gaussian_noise", K_PARAM, "mean = NaN", E_PARAM, NOTHING,
        vppo_perturb_gaussian_noise(&f.img, NAN, 10.0f, 7));
    ROW("vppo_perturb_gaussian_noise", K_PARAM, "std = +inf", E_PARAM, NOTHING,
        vppo_perturb_gaussian_noise(&f.img, 0.0f, INFINITY, 7));
    ROW("vppo_perturb_gaussian_noise", K_PARAM, "mean = -inf", E_PARAM, NOTHING,
        vppo_perturb_gaussian_noise(&f.img, -INFINITY, 10.0f, 7));
    ROW("vppo_perturb_gaussian_noise", K_EDGE, "std = 0 (a shift by mean)", OK, NOTHING,
        vppo_perturb_gaussian_noise(&f.img, 3.0f, 0.0f, 7));
    ROW("vppo_perturb_gaussian_noise", K_EDGE, "values clamped at 0 and 255 (mean +-1e30)", OK, NOTHING,
        vppo_perturb_gaussian_noise(&f.img, 1e30f, 189.0f, 7) == OK
            ? vppo_perturb_gaussian_noise(&f.img, -1e30f, 189.0f, 7) : E_PARAM);

    ROW("vppo_perturb_fill", K_EDGE, "the fixture (value 128)", OK, NOTHING, C_FILL);
    ROW("vppo_perturb_fill", K_NULL, "img = NULL", E_NULL, NOTHING, vppo_perturb_fill(NULL, 128));
    ROW("vppo_perturb_fill", K_NULL, "img->pixels = NULL", E_NULL, f.img.pixels = NULL, C_FILL);
    ROW("vppo_perturb_fill", K_SIZE, "row_stride < width * channels", E_SIZE, f.img.row_stride = 2, C_FILL);
    ROW("vppo_perturb_fill", K_EDGE, "an empty image (height 0)", OK, f.img.height = 0, C_FILL);

    ROW("vppo_perturb_gaussian_blur", K_EDGE, "the fixture (radius 1, work of vppo_blur_workspace bytes)", OK, NOTHING,
        C_BLUR);
    ROW("vppo_perturb_gaussian_blur", K_NULL, "img = NULL", E_NULL, NOTHING,
        vppo_perturb_gaussian_blur(NULL, 1.0f, f.work, f.blur_need));
    ROW("vppo_perturb_gaussian_blur", K_NULL, "work = NULL (required even when it would not be used)", E_NULL, NOTHING,
        vppo_perturb_gaussian_blur(&f.img, 1.0f, NULL, f.blur_need));
    ROW("vppo_perturb_gaussian_blur", K_SIZE, "channels = 0", E_SIZE, f.img.channels = 0, C_BLUR);
    ROW("vppo_perturb_gaussian_blur", K_PARAM, "radius = -1", E_PARAM, NOTHING,
        vppo_perturb_gaussian_blur(&f.img, -1.0f, f.work, f.blur_need));
    ROW("vppo_perturb_gaussian_blur", K_PARAM, "radius = 2e5 (domain [0, 1e5])", E_PARAM, NOTHING,
        vppo_perturb_gaussian_blur(&f.img, 2e5f, f.work, f.blur_need));
    ROW("vppo_perturb_gaussian_blur", K_PARAM, "radius = NaN", E_PARAM, NOTHING,
        vppo_perturb_gaussian_blur(&f.img, NAN, f.work, f.blur_need));
    ROW("vppo_perturb_gaussian_blur", K_PARAM, "radius = +inf", E_PARAM, NOTHING,
        vppo_perturb_gaussian_blur(&f.img, INFINITY, f.work, f.blur_need));
    ROW("vppo_perturb_gaussian_blur", K_WORK, "work_bytes = vppo_blur_workspace() - 1", E_WORKSPACE, NOTHING,
        vppo_perturb_gaussian_blur(&f.img, 1.0f, f.work, f.blur_need - 1));
    ROW("vppo_perturb_gaussian_blur", K_EDGE, "radius = 0 (unchanged)", OK, NOTHING,
        vppo_perturb_gaussian_blur(&f.img, 0.0f, f.work, f.blur_need));
    ROW("vppo_perturb_gaussian_blur", K_EDGE, "work not aligned", OK, NOTHING,
        vppo_perturb_gaussian_blur(&f.img, 1.0f, f.work + 3, f.blur_need));

    ROW("vppo_perturb_patch_rows", K_EDGE, "the fixture (4 rows of 2, fill given)", OK, NOTHING, C_ROWS);
    ROW("vppo_perturb_patch_rows", K_NULL, "rows = NULL", E_NULL, NOTHING,
        vppo_perturb_patch_rows(NULL, 4, 2, 2, 0.5f, f.fillv, 7));
    ROW("vppo_perturb_patch_rows", K_SIZE, "n_rows = -1", E_SIZE, NOTHING,
        vppo_perturb_patch_rows(f.rows, -1, 2, 2, 0.5f, f.fillv, 7));
    ROW("vppo_perturb_patch_rows", K_SIZE, "row_stride < row_len", E_SIZE, NOTHING,
        vppo_perturb_patch_rows(f.rows, 4, 2, 1, 0.5f, f.fillv, 7));
    ROW("vppo_perturb_patch_rows", K_SIZE, "n_rows * row_stride beyond any buffer", E_SIZE, NOTHING,
        vppo_perturb_patch_rows(f.rows, INT64_MAX / 4, 2, 2, 0.5f, f.fillv, 7));
    ROW("vppo_perturb_patch_rows", K_PARAM, "prob = 2", E_PARAM, NOTHING,
        vppo_perturb_patch_rows(f.rows, 4, 2, 2, 2.0f, f.fillv, 7));
    ROW("vppo_perturb_patch_rows", K_NAN, "fill[1] = NaN", E_NONFINITE, f.fillv[1] = NAN, C_ROWS);
    ROW("vppo_perturb_patch_rows", K_PINF, "fill[0] = +inf", E_NONFINITE, f.fillv[0] = INFINITY, C_ROWS);
    ROW("vppo_perturb_patch_rows", K_NINF, "fill[0] = -inf", E_NONFINITE, f.fillv[0] = -INFINITY, C_ROWS);
    ROW("vppo_perturb_patch_rows", K_EDGE, "fill = NULL (zeros)", OK, NOTHING,
        vppo_perturb_patch_rows(f.rows, 4, 2, 2, 0.5f, NULL, 7));
    ROW("vppo_perturb_patch_rows", K_EDGE, "NaN in the rows themselves (data, not read)", OK, f.rows[3] = NAN, C_ROWS);

    /* --- §2.1 vppo_dependency_sampled --------------------------------------- */
    ROW("vppo_dependency_sampled", K_EDGE, "the fixture (K3)", OK, NOTHING, C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_NULL, "s = NULL", E_NULL, NOTHING,
        vppo_dependency_sampled(NULL, f.logp, f.aug, VPPO_EST_K3, f.out));
    ROW("vppo_dependency_sampled", K_NULL, "s->offsets = NULL", E_NULL, f.s.offsets = NULL, C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_NULL, "logp = NULL", E_NULL, NOTHING,
        vppo_dependency_sampled(&f.s, NULL, f.aug, VPPO_EST_K3, f.out));
    ROW("vppo_dependency_sampled", K_NULL, "logp_aug = NULL", E_NULL, NOTHING,
        vppo_dependency_sampled(&f.s, f.logp, NULL, VPPO_EST_K3, f.out));
    ROW("vppo_dependency_sampled", K_NULL, "dep = NULL", E_NULL, NOTHING,
        vppo_dependency_sampled(&f.s, f.logp, f.aug, VPPO_EST_K3, NULL));
    ROW("vppo_dependency_sampled", K_SIZE, "offsets decrease", E_SIZE, f.s.offsets = decreasing, C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_SIZE, "offsets[0] < 0", E_SIZE, f.s.offsets = negative_first, C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_SIZE, "n_seqs = -1", E_SIZE, f.s.n_seqs = -1, C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_SIZE, "offsets[B] beyond any float buffer", E_SIZE, f.s.offsets = past_any_buffer,
        C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_PARAM, "est = 5 (outside the enum)", E_PARAM, NOTHING,
        vppo_dependency_sampled(&f.s, f.logp, f.aug, (vppo_estimator)5, f.out));
    ROW("vppo_dependency_sampled", K_NAN, "logp NaN at a valid position", E_NONFINITE, f.logp[6] = NAN, C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_PINF, "logp_aug = +inf", E_NONFINITE, f.aug[2] = INFINITY, C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_NINF, "logp and logp_aug both -inf (d = NaN)", E_NONFINITE,
        (f.logp[3] = -INFINITY, f.aug[3] = -INFINITY), C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_OVERFLOW, "PROB_DROP with logp = 100 (exp(100) > FLT_MAX)", E_NONFINITE,
        f.logp[4] = 100.0f, vppo_dependency_sampled(&f.s, f.logp, f.aug, VPPO_EST_PROB_DROP, f.out));
    ROW("vppo_dependency_sampled", K_EDGE, "logp = -inf alone (an impossible token: d clamped)", OK, f.logp[3] = -INFINITY,
        C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_EDGE, "NaN at an invalid (mask 0) position", OK, (f.logp[5] = NAN, f.mask[5] = 0),
        C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_EDGE, "K3 with logp = 100 (clamped to 10)", OK, f.logp[4] = 100.0f, C_DEP_SAMPLED);
    ROW("vppo_dependency_sampled", K_EDGE, "no sequences (n_seqs = 0)", OK, f.s.n_seqs = 0, C_DEP_SAMPLED);

    /* --- §2.2 vppo_dependency_logits ---------------------------------------- */
    ROW("vppo_dependency_logits", K_EDGE, "the fixture (8 x 5 f32, KL)", OK, NOTHING, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_NULL, "orig = NULL", E_NULL, NOTHING,
        vppo_dependency_logits(NULL, &f.y, VPPO_DIV_KL, f.out));
    ROW("vppo_dependency_logits", K_NULL, "aug = NULL", E_NULL, NOTHING,
        vppo_dependency_logits(&f.x, NULL, VPPO_DIV_KL, f.out));
    ROW("vppo_dependency_logits", K_NULL, "aug->data = NULL", E_NULL, f.y.data = NULL, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_NULL, "dep = NULL", E_NULL, NOTHING,
        vppo_dependency_logits(&f.x, &f.y, VPPO_DIV_KL, NULL));
    ROW("vppo_dependency_logits", K_SIZE, "vocab = 0", E_SIZE, (f.x.vocab = 0, f.y.vocab = 0), C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_SIZE, "n_rows = -1", E_SIZE, (f.x.n_rows = -1, f.y.n_rows = -1), C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_SIZE, "row_stride < vocab", E_SIZE, f.y.row_stride = 4, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_SIZE, "n_rows differ", E_SIZE, f.y.n_rows = 7, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_SIZE, "vocab differ", E_SIZE, (f.y.vocab = 4, f.y.row_stride = 4), C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_SIZE, "n_rows * row_stride beyond any buffer", E_SIZE,
        (f.x.row_stride = INT64_MAX / 4, f.y.row_stride = INT64_MAX / 4), C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_DTYPE, "dtype = 3 (outside the enum: PARAM)", E_PARAM, f.y.dtype = (vppo_dtype)3,
        C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_PARAM, "temperature = 0", E_PARAM, f.x.temperature = 0.0f, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_PARAM, "temperature = -1", E_PARAM, f.y.temperature = -1.0f, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_PARAM, "temperature = NaN", E_PARAM, f.x.temperature = NAN, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_PARAM, "temperature = +inf", E_PARAM, f.x.temperature = INFINITY, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_PARAM, "div = 3 (outside the enum)", E_PARAM, NOTHING,
        vppo_dependency_logits(&f.x, &f.y, (vppo_divergence)3, f.out));
    ROW("vppo_dependency_logits", K_NAN, "a NaN logit in orig", E_NONFINITE, f.z[13] = NAN, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_PINF, "a +inf logit in aug", E_NONFINITE, f.z2[21] = INFINITY, C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_ALLNEG, "a row of aug all -inf", E_PARAM, for (i = 5; i < 10; ++i) f.z2[i] = -INFINITY,
        C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_EDGE, "-inf entries (masked vocabulary) on both sides", OK,
        (f.z[7] = -INFINITY, f.z2[7] = -INFINITY), C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_EDGE, "q_i = 0 where p_i > 0 (KL = +inf, returned)", OK, f.z2[7] = -INFINITY,
        C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_EDGE, "NaN in the stride gap between rows", OK,
        (f.x.n_rows = 4, f.y.n_rows = 4, f.x.row_stride = 6, f.y.row_stride = 6, f.z[5] = NAN, f.z2[11] = NAN),
        C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_EDGE, "dtypes, strides and temperatures differ between sides", OK,
        (f.y.dtype = VPPO_BF16, f.y.n_rows = 4, f.x.n_rows = 4, f.y.row_stride = 9, f.x.temperature = 0.7f), C_DEP_LOGITS);
    ROW("vppo_dependency_logits", K_EDGE, "n_rows = 0", OK, (f.x.n_rows = 0, f.y.n_rows = 0), C_DEP_LOGITS);

    /* --- §2.3 vppo_logprobs ------------------------------------------------- */
    ROW("vppo_logprobs", K_EDGE, "the fixture (ids, logp, lse, entropy)", OK, NOTHING, C_LOGPROBS);
    ROW("vppo_logprobs", K_NULL, "x = NULL", E_NULL, NOTHING, vppo_logprobs(NULL, f.ids, f.out, f.lse, f.ent));
    ROW("vppo_logprobs", K_NULL, "x->data = NULL", E_NULL, f.x.data = NULL, C_LOGPROBS);
    ROW("vppo_logprobs", K_NULL, "logp given, ids = NULL", E_NULL, NOTHING, vppo_logprobs(&f.x, NULL, f.out, f.lse, f.ent));
    ROW("vppo_logprobs", K_SIZE, "row_stride < vocab", E_SIZE, f.x.row_stride = 4, C_LOGPROBS);
    ROW("vppo_logprobs", K_SIZE, "n_rows * row_stride overflows", E_SIZE, f.x.n_rows = INT64_MAX / 4, C_LOGPROBS);
    ROW("vppo_logprobs", K_DTYPE, "dtype = -1 (outside the enum: PARAM)", E_PARAM, f.x.dtype = (vppo_dtype)-1, C_LOGPROBS);
    ROW("vppo_logprobs", K_PARAM, "temperature = -0.5", E_PARAM, f.x.temperature = -0.5f, C_LOGPROBS);
    ROW("vppo_logprobs", K_ID, "ids[7] = vocab", E_INDEX, f.ids[7] = 5, C_LOGPROBS);
    ROW("vppo_logprobs", K_ID, "ids[0] = -1", E_INDEX, f.ids[0] = -1, C_LOGPROBS);
    ROW("vppo_logprobs", K_NAN, "a NaN logit", E_NONFINITE, f.z[0] = NAN, C_LOGPROBS);
    ROW("vppo_logprobs", K_PINF, "a +inf logit", E_NONFINITE, f.z[39] = INFINITY, C_LOGPROBS);
    ROW("vppo_logprobs", K_ALLNEG, "row 1 all -inf", E_PARAM, for (i = 5; i < 10; ++i) f.z[i] = -INFINITY, C_LOGPROBS);
    ROW("vppo_logprobs", K_EDGE, "ids out of range but logp = NULL (ids unused)", OK, f.ids[7] = 99,
        vppo_logprobs(&f.x, f.ids, NULL, f.lse, f.ent));
    ROW("vppo_logprobs", K_EDGE, "ids[r] on a -inf logit (logp = -inf)", OK, f.z[0] = -INFINITY, C_LOGPROBS);
    ROW("vppo_logprobs", K_EDGE, "every output NULL", OK, NOTHING, vppo_logprobs(&f.x, NULL, NULL, NULL, NULL));
    ROW("vppo_logprobs", K_EDGE, "bf16 and f16 data", OK, f.x.dtype = VPPO_BF16,
        vppo_logprobs(&f.x, f.ids, f.out, NULL, NULL) == OK
            ? (f.x.dtype = VPPO_F16, vppo_logprobs(&f.x, f.ids, f.out, NULL, NULL)) : E_PARAM);

    /* --- §2.3 vppo_logprobs_backward ---------------------------------------- */
    ROW("vppo_logprobs_backward", K_EDGE, "the fixture (lse, entropy, dlogp, dentropy given)", OK, NOTHING, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_NULL, "x = NULL", E_NULL, NOTHING,
        vppo_logprobs_backward(NULL, f.ids, f.lse, f.ent, f.dl, f.de, &f.g));
    ROW("vppo_logprobs_backward", K_NULL, "dlogits = NULL", E_NULL, NOTHING,
        vppo_logprobs_backward(&f.x, f.ids, f.lse, f.ent, f.dl, f.de, NULL));
    ROW("vppo_logprobs_backward", K_NULL, "dlogits->data = NULL", E_NULL, f.g.data = NULL, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_NULL, "dlogp given, ids = NULL", E_NULL, NOTHING,
        vppo_logprobs_backward(&f.x, NULL, f.lse, f.ent, f.dl, f.de, &f.g));
    ROW("vppo_logprobs_backward", K_SIZE, "dlogits->row_stride < vocab", E_SIZE, f.g.row_stride = 4, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_SIZE, "n_rows = -3", E_SIZE, f.x.n_rows = -3, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_DTYPE, "x->dtype = 3", E_PARAM, f.x.dtype = (vppo_dtype)3, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_DTYPE, "output dtype F16 (UNSUPPORTED: F32 or BF16 only)", E_UNSUPPORTED,
        f.g.dtype = VPPO_F16, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_DTYPE, "output dtype 7 (outside the enum: PARAM)", E_PARAM, f.g.dtype = (vppo_dtype)7,
        C_BACKWARD);
    ROW("vppo_logprobs_backward", K_OVERLAP, "output overlaps x one element in", E_PARAM, f.g.data = f.z + 1, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_OVERLAP, "in place with another row_stride", E_PARAM,
        (f.x.row_stride = 5, f.x.n_rows = 4, f.g.data = f.z, f.g.row_stride = 6), C_BACKWARD);
    ROW("vppo_logprobs_backward", K_OVERLAP, "in place into BF16", E_PARAM, (f.g.data = f.z, f.g.dtype = VPPO_BF16),
        C_BACKWARD);
    ROW("vppo_logprobs_backward", K_EDGE, "in place: F32, equal strides (allowed)", OK, f.g.data = f.z, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_ID, "ids[3] = vocab (with dlogp)", E_INDEX, f.ids[3] = 5, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_NAN, "lse[2] = NaN", E_NONFINITE, f.lse[2] = NAN, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_PINF, "entropy[0] = +inf", E_NONFINITE, f.ent[0] = INFINITY, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_NAN, "dlogp[1] = NaN", E_NONFINITE, f.dl[1] = NAN, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_NINF, "dentropy[4] = -inf", E_NONFINITE, f.de[4] = -INFINITY, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_NAN, "a NaN logit", E_NONFINITE, f.z[17] = NAN, C_BACKWARD);
    ROW("vppo_logprobs_backward", K_PINF, "a +inf logit (lse recomputed)", E_NONFINITE, f.z[17] = INFINITY,
        vppo_logprobs_backward(&f.x, f.ids, NULL, NULL, f.dl, f.de, &f.g));
    ROW("vppo_logprobs_backward", K_ALLNEG, "row 0 all -inf", E_PARAM, for (i = 0; i < 5; ++i) f.z[i] = -INFINITY,
        vppo_logprobs_backward(&f.x, f.ids, NULL, NULL, f.dl, f.de, &f.g));
    ROW("vppo_logprobs_backward", K_EDGE, "ids out of range but dlogp = NULL (ids unused)", OK, f.ids[3] = 99,
        vppo_logprobs_backward(&f.x, f.ids, f.lse, f.ent, NULL, f.de, &f.g));
    ROW("vppo_logprobs_backward", K_EDGE, "every optional input NULL (a zero gradient)", OK, NOTHING,
        vppo_logprobs_backward(&f.x, NULL, NULL, NULL, NULL, NULL, &f.g));
    ROW("vppo_logprobs_backward", K_EDGE, "BF16 output", OK, f.g.dtype = VPPO_BF16, C_BACKWARD);

    /* --- §4 vppo_group_advantages, vppo_group_filter ------------------------- */
    ROW("vppo_group_advantages", K_EDGE, "the fixture (GRPO, 2 groups of 4)", OK, NOTHING, C_GROUP_ADV);
    ROW("vppo_group_advantages", K_NULL, "groups = NULL", E_NULL, NOTHING,
        vppo_group_advantages(NULL, f.score, VPPO_ADV_GRPO, 1e-6f, f.out));
    ROW("vppo_group_advantages", K_NULL, "rewards = NULL", E_NULL, NOTHING,
        vppo_group_advantages(&f.s, NULL, VPPO_ADV_GRPO, 1e-6f, f.out));
    ROW("vppo_group_advantages", K_NULL, "adv = NULL", E_NULL, NOTHING,
        vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO, 1e-6f, NULL));
    ROW("vppo_group_advantages", K_SIZE, "offsets[0] < 0", E_SIZE, f.s.offsets = negative_first, C_GROUP_ADV);
    ROW("vppo_group_advantages", K_SIZE, "a group with one included response (no baseline)", E_SIZE,
        (f.mask[4] = 0, f.mask[5] = 0, f.mask[6] = 0), C_GROUP_ADV);
    ROW("vppo_group_advantages", K_PARAM, "kind = 4 (outside the enum)", E_PARAM, NOTHING,
        vppo_group_advantages(&f.s, f.score, (vppo_adv_kind)4, 1e-6f, f.out));
    ROW("vppo_group_advantages", K_PARAM, "eps = -1e-6", E_PARAM, NOTHING,
        vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO, -1e-6f, f.out));
    ROW("vppo_group_advantages", K_PARAM, "eps = NaN", E_PARAM, NOTHING,
        vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO, NAN, f.out));
    ROW("vppo_group_advantages", K_NAN, "a NaN reward", E_NONFINITE, f.score[0] = NAN, C_GROUP_ADV);
    ROW("vppo_group_advantages", K_PINF, "a +inf reward", E_NONFINITE, f.score[5] = INFINITY, C_GROUP_ADV);
    ROW("vppo_group_advantages", K_NINF, "a -inf reward", E_NONFINITE, f.score[2] = -INFINITY, C_GROUP_ADV);
    ROW("vppo_group_advantages", K_OVERFLOW, "GRPO_NO_STD on rewards 3e38, -3e38, -3e38 (r - mean = 4e38)", E_NONFINITE,
        (f.score[0] = 3e38f, f.score[1] = -3e38f, f.score[2] = -3e38f, f.score[3] = -3e38f),
        vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO_NO_STD, 1e-6f, f.out));
    ROW("vppo_group_advantages", K_EDGE, "a group with no included response (all 0)", OK,
        (f.mask[4] = 0, f.mask[5] = 0, f.mask[6] = 0, f.mask[7] = 0), C_GROUP_ADV);
    ROW("vppo_group_advantages", K_EDGE, "equal rewards with eps = 0 (all 0)", OK,
        for (i = 0; i < 8; ++i) f.score[i] = 1.0f, vppo_group_advantages(&f.s, f.score, VPPO_ADV_GRPO, 0.0f, f.out));
    ROW("vppo_group_advantages", K_EDGE, "NaN reward of an excluded response", OK, (f.score[1] = NAN, f.mask[1] = 0),
        C_GROUP_ADV);

    ROW("vppo_group_filter", K_EDGE, "the fixture (lo 0.01, hi 0.99)", OK, NOTHING, C_GROUP_FILTER);
    ROW("vppo_group_filter", K_NULL, "scores = NULL", E_NULL, NOTHING, vppo_group_filter(&f.s, NULL, 0.01, 0.99, f.sel));
    ROW("vppo_group_filter", K_NULL, "keep = NULL", E_NULL, NOTHING, vppo_group_filter(&f.s, f.score, 0.01, 0.99, NULL));
    ROW("vppo_group_filter", K_SIZE, "offsets decrease", E_SIZE, f.s.offsets = decreasing, C_GROUP_FILTER);
    ROW("vppo_group_filter", K_PARAM, "lo > hi", E_PARAM, NOTHING, vppo_group_filter(&f.s, f.score, 0.99, 0.01, f.sel));
    ROW("vppo_group_filter", K_PARAM, "lo = NaN", E_PARAM, NOTHING,
        vppo_group_filter(&f.s, f.score, NAN, 0.99, f.sel));
    ROW("vppo_group_filter", K_NAN, "a NaN score", E_NONFINITE, f.score[3] = NAN, C_GROUP_FILTER);
    ROW("vppo_group_filter", K_PINF, "a +inf score", E_NONFINITE, f.score[7] = INFINITY, C_GROUP_FILTER);
    ROW("vppo_group_filter", K_EDGE, "lo = hi (nothing kept)", OK, NOTHING,
        vppo_group_filter(&f.s, f.score, 0.5, 0.5, f.sel));
    ROW("vppo_group_filter", K_EDGE, "lo = -inf, hi = +inf (everything kept)", OK, NOTHING,
        vppo_group_filter(&f.s, f.score, -INFINITY, INFINITY, f.sel));

    /* --- §5 TAS ----------------------------------------------------------------- */
    ROW("vppo_seq_mean", K_EDGE, "the fixture (with count)", OK, NOTHING, C_SEQ_MEAN);
    ROW("vppo_seq_mean", K_NULL, "x = NULL", E_NULL, NOTHING, vppo_seq_mean(&f.s, NULL, f.mean, f.count));
    ROW("vppo_seq_mean", K_NULL, "mean = NULL", E_NULL, NOTHING, vppo_seq_mean(&f.s, f.score, NULL, f.count));
    ROW("vppo_seq_mean", K_SIZE, "n_seqs = -1", E_SIZE, f.s.n_seqs = -1, C_SEQ_MEAN);
    ROW("vppo_seq_mean", K_NAN, "x NaN at a valid position", E_NONFINITE, f.score[1] = NAN, C_SEQ_MEAN);
    ROW("vppo_seq_mean", K_PINF, "x = +inf (an infinite KL: clamp it first)", E_NONFINITE, f.score[4] = INFINITY,
        C_SEQ_MEAN);
    ROW("vppo_seq_mean", K_NINF, "x = -inf", E_NONFINITE, f.score[4] = -INFINITY, C_SEQ_MEAN);
    ROW("vppo_seq_mean", K_EDGE, "count = NULL", OK, NOTHING, vppo_seq_mean(&f.s, f.score, f.mean, NULL));
    ROW("vppo_seq_mean", K_EDGE, "an empty sequence (mean 0)", OK, f.off[1] = 0, C_SEQ_MEAN);

    ROW("vppo_tas_stats_compute", K_EDGE, "the fixture", OK, NOTHING, C_TAS_STATS);
    ROW("vppo_tas_stats_compute", K_NULL, "traj_dep = NULL", E_NULL, NOTHING,
        vppo_tas_stats_compute(NULL, f.count, 2, &f.st));
    ROW("vppo_tas_stats_compute", K_NULL, "st = NULL", E_NULL, NOTHING, vppo_tas_stats_compute(f.traj, f.count, 2, NULL));
    ROW("vppo_tas_stats_compute", K_SIZE, "n_seqs = -1", E_SIZE, NOTHING,
        vppo_tas_stats_compute(f.traj, f.count, -1, &f.st));
    ROW("vppo_tas_stats_compute", K_SIZE, "count[1] = -4", E_SIZE, f.count[1] = -4, C_TAS_STATS);
    ROW("vppo_tas_stats_compute", K_NAN, "traj_dep NaN where count > 0", E_NONFINITE, f.traj[1] = NAN, C_TAS_STATS);
    ROW("vppo_tas_stats_compute", K_PINF, "traj_dep +inf, count NULL (every sequence counts)", E_NONFINITE,
        f.traj[0] = INFINITY, vppo_tas_stats_compute(f.traj, NULL, 2, &f.st));
    ROW("vppo_tas_stats_compute", K_EDGE, "NaN where count = 0 (not a member)", OK, (f.traj[1] = NAN, f.count[1] = 0),
        C_TAS_STATS);
    ROW("vppo_tas_stats_compute", K_EDGE, "n_seqs = 0 ({+inf, -inf, 0})", OK, NOTHING,
        vppo_tas_stats_compute(f.traj, f.count, 0, &f.st));

    ROW("vppo_tas_scales", K_EDGE, "the fixture (mean-preserving, 0.9)", OK, NOTHING, C_TAS_SCALES);
    ROW("vppo_tas_scales", K_NULL, "cfg = NULL", E_NULL, NOTHING,
        vppo_tas_scales(NULL, &f.st, f.traj, f.count, 2, f.scale));
    ROW("vppo_tas_scales", K_NULL, "st = NULL", E_NULL, NOTHING,
        vppo_tas_scales(&f.tas, NULL, f.traj, f.count, 2, f.scale));
    ROW("vppo_tas_scales", K_NULL, "traj_dep = NULL", E_NULL, NOTHING,
        vppo_tas_scales(&f.tas, &f.st, NULL, f.count, 2, f.scale));
    ROW("vppo_tas_scales", K_NULL, "scale = NULL", E_NULL, NOTHING,
        vppo_tas_scales(&f.tas, &f.st, f.traj, f.count, 2, NULL));
    ROW("vppo_tas_scales", K_SIZE, "st->n = -1", E_SIZE, f.st.n = -1, C_TAS_SCALES);
    ROW("vppo_tas_scales", K_SIZE, "n_seqs = -1", E_SIZE, NOTHING,
        vppo_tas_scales(&f.tas, &f.st, f.traj, f.count, -1, f.scale));
    ROW("vppo_tas_scales", K_SIZE, "count[0] = -1", E_SIZE, f.count[0] = -1, C_TAS_SCALES);
    ROW("vppo_tas_scales", K_PARAM, "mode = 2 (outside the enum)", E_PARAM, f.tas.mode = (vppo_tas_mode)2, C_TAS_SCALES);
    ROW("vppo_tas_scales", K_PARAM, "beta_min = -0.1", E_PARAM, f.tas.beta_min = -0.1f, C_TAS_SCALES);
    ROW("vppo_tas_scales", K_PARAM, "MEAN_PRESERVING with beta_min = 1.5 (domain [0, 1])", E_PARAM, f.tas.beta_min = 1.5f,
        C_TAS_SCALES);
    ROW("vppo_tas_scales", K_PARAM, "LINEAR with beta_max < beta_min", E_PARAM,
        (f.tas.mode = VPPO_TAS_LINEAR, f.tas.beta_min = 1.0f, f.tas.beta_max = 0.5f), C_TAS_SCALES);
    ROW("vppo_tas_scales", K_PARAM, "stats with n >= 2 and min > max", E_PARAM, f.st.max = -1.0, C_TAS_SCALES);
    ROW("vppo_tas_scales", K_PARAM, "beta_max = NaN, even where unused (\"all finite\")", E_PARAM, f.tas.beta_max = NAN,
        C_TAS_SCALES);
    ROW("vppo_tas_scales", K_PARAM, "stats min = NaN with n >= 2", E_PARAM, f.st.min = NAN, C_TAS_SCALES);
    ROW("vppo_tas_scales", K_PINF, "traj_dep = +inf at a member", E_NONFINITE, f.traj[1] = INFINITY, C_TAS_SCALES);
    ROW("vppo_tas_scales", K_EDGE, "stats with n = 1 and min = NaN (unused: every scale 1)", OK,
        (f.st.n = 1, f.st.min = NAN), C_TAS_SCALES);
    ROW("vppo_tas_scales", K_EDGE, "LINEAR with beta_max = beta_min", OK,
        (f.tas.mode = VPPO_TAS_LINEAR, f.tas.beta_min = 0.8f, f.tas.beta_max = 0.8f), C_TAS_SCALES);

    /* --- §6 TGF ----------------------------------------------------------------- */
    ROW("vppo_topk_mask", K_EDGE, "the fixture (ratio 0.4, info)", OK, NOTHING, C_TOPK);
    ROW("vppo_topk_mask", K_NULL, "s = NULL", E_NULL, NOTHING, vppo_topk_mask(NULL, f.score, 0.4, f.sel, &f.info));
    ROW("vppo_topk_mask", K_NULL, "score = NULL", E_NULL, NOTHING, vppo_topk_mask(&f.s, NULL, 0.4, f.sel, &f.info));
    ROW("vppo_topk_mask", K_NULL, "select = NULL", E_NULL, NOTHING, vppo_topk_mask(&f.s, f.score, 0.4, NULL, &f.info));
    ROW("vppo_topk_mask", K_SIZE, "offsets decrease", E_SIZE, f.s.offsets = decreasing, C_TOPK);
    ROW("vppo_topk_mask", K_PARAM, "ratio = 1.5", E_PARAM, NOTHING, vppo_topk_mask(&f.s, f.score, 1.5, f.sel, &f.info));
    ROW("vppo_topk_mask", K_PARAM, "ratio = -0.5", E_PARAM, NOTHING, vppo_topk_mask(&f.s, f.score, -0.5, f.sel, &f.info));
    ROW("vppo_topk_mask", K_PARAM, "ratio = NaN", E_PARAM, NOTHING,
        vppo_topk_mask(&f.s, f.score, NAN, f.sel, &f.info));
    ROW("vppo_topk_mask", K_NAN, "a NaN score", E_NONFINITE, f.score[2] = NAN, C_TOPK);
    ROW("vppo_topk_mask", K_EDGE, "+inf and -inf scores (ordered normally)", OK,
        (f.score[2] = INFINITY, f.score[3] = -INFINITY), C_TOPK);
    ROW("vppo_topk_mask", K_EDGE, "info = NULL", OK, NOTHING, vppo_topk_mask(&f.s, f.score, 0.4, f.sel, NULL));
    ROW("vppo_topk_mask", K_EDGE, "ratio 0 and ratio 1", OK, NOTHING,
        vppo_topk_mask(&f.s, f.score, 0.0, f.sel, NULL) == OK
            ? vppo_topk_mask(&f.s, f.score, 1.0, f.sel, NULL) : E_PARAM);

    ROW("vppo_soft_mask", K_EDGE, "the fixture (ratio 0.4)", OK, NOTHING, C_SOFT);
    ROW("vppo_soft_mask", K_NULL, "score = NULL", E_NULL, NOTHING, vppo_soft_mask(&f.s, NULL, 0.4, f.out));
    ROW("vppo_soft_mask", K_NULL, "weight = NULL", E_NULL, NOTHING, vppo_soft_mask(&f.s, f.score, 0.4, NULL));
    ROW("vppo_soft_mask", K_SIZE, "offsets[0] < 0", E_SIZE, f.s.offsets = negative_first, C_SOFT);
    ROW("vppo_soft_mask", K_PARAM, "ratio = 2", E_PARAM, NOTHING, vppo_soft_mask(&f.s, f.score, 2.0, f.out));
    ROW("vppo_soft_mask", K_NAN, "a NaN score", E_NONFINITE, f.score[6] = NAN, C_SOFT);
    ROW("vppo_soft_mask", K_PINF, "a +inf score (scores finite)", E_NONFINITE, f.score[2] = INFINITY, C_SOFT);
    ROW("vppo_soft_mask", K_NINF, "a -inf score", E_NONFINITE, f.score[2] = -INFINITY, C_SOFT);
    ROW("vppo_soft_mask", K_EDGE, "mask = NULL", OK, f.s.mask = NULL, C_SOFT);

    /* --- §7 vppo_policy_loss ------------------------------------------------------
       The header fixes clip_dual (0, or > 1) and denom (> 0 divides, 0 does not); the
       other domains are what the formulas need: ln(1 - clip_low) with clip_low in [0, 1],
       clip_high >= 0, enums inside their range, agg_norm > 0 where it divides,
       coefficients finite with kl_coef >= 0, denom finite and >= 0. */
    ROW("vppo_policy_loss", K_EDGE, "the fixture (KL none, select, weight, dlogp)", OK, NOTHING, C_LOSS);
    ROW("vppo_policy_loss", K_NULL, "cfg = NULL", E_NULL, NOTHING,
        vppo_policy_loss(NULL, &f.s, f.logp, f.aug, f.logp, f.score, f.sel, f.rows, f.out, &f.lo));
    ROW("vppo_policy_loss", K_NULL, "s = NULL", E_NULL, NOTHING,
        vppo_policy_loss(&f.loss, NULL, f.logp, f.aug, f.logp, f.score, f.sel, f.rows, f.out, &f.lo));
    ROW("vppo_policy_loss", K_NULL, "logp = NULL", E_NULL, NOTHING,
        vppo_policy_loss(&f.loss, &f.s, NULL, f.aug, f.logp, f.score, f.sel, f.rows, f.out, &f.lo));
    ROW("vppo_policy_loss", K_NULL, "logp_old = NULL", E_NULL, NOTHING,
        vppo_policy_loss(&f.loss, &f.s, f.logp, NULL, f.logp, f.score, f.sel, f.rows, f.out, &f.lo));
    ROW("vppo_policy_loss", K_NULL, "adv = NULL", E_NULL, NOTHING,
        vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, f.logp, NULL, f.sel, f.rows, f.out, &f.lo));
    ROW("vppo_policy_loss", K_NULL, "out = NULL", E_NULL, NOTHING,
        vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, f.logp, f.score, f.sel, f.rows, f.out, NULL));
    ROW("vppo_policy_loss", K_NULL, "logp_ref = NULL with a KL penalty", E_NULL, f.loss.kl_kind = VPPO_KL_K3,
        vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, NULL, f.score, f.sel, f.rows, f.out, &f.lo));
    ROW("vppo_policy_loss", K_SIZE, "offsets decrease", E_SIZE, f.s.offsets = decreasing, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "clip_low = 1.2", E_PARAM, f.loss.clip_low = 1.2f, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "clip_low = -0.1", E_PARAM, f.loss.clip_low = -0.1f, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "clip_high = -0.1", E_PARAM, f.loss.clip_high = -0.1f, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "clip_dual = 0.9 (0, or > 1)", E_PARAM, f.loss.clip_dual = 0.9f, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "clip_dual = 1", E_PARAM, f.loss.clip_dual = 1.0f, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "pg_kind = 2", E_PARAM, f.loss.pg_kind = (vppo_pg_kind)2, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "ratio_level = 3", E_PARAM, f.loss.ratio_level = (vppo_ratio_level)3, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "agg = 9", E_PARAM, f.loss.agg = (vppo_agg)9, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "kl_kind = 5", E_PARAM, f.loss.kl_kind = (vppo_kl_kind)5, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "SEQ_MEAN_TOKEN_SUM_NORM with agg_norm = 0", E_PARAM,
        (f.loss.agg = VPPO_AGG_SEQ_MEAN_TOKEN_SUM_NORM, f.loss.agg_norm = 0.0), C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "kl_coef = -1", E_PARAM, f.loss.kl_coef = -1.0f, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "denom = -5", E_PARAM, f.loss.denom = -5.0, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "entropy_coef = NaN", E_PARAM, f.loss.entropy_coef = NAN, C_LOSS);
    ROW("vppo_policy_loss", K_PARAM, "clip_high = +inf", E_PARAM, f.loss.clip_high = INFINITY, C_LOSS);
    ROW("vppo_policy_loss", K_NAN, "logp NaN at a valid position", E_NONFINITE, f.logp[5] = NAN, C_LOSS);
    ROW("vppo_policy_loss", K_NINF, "logp = -inf (finite here: it is differentiated)", E_NONFINITE, f.logp[5] = -INFINITY,
        C_LOSS);
    ROW("vppo_policy_loss", K_PINF, "logp_old = +inf", E_NONFINITE, f.aug[0] = INFINITY, C_LOSS);
    ROW("vppo_policy_loss", K_NAN, "adv NaN", E_NONFINITE, f.score[1] = NAN, C_LOSS);
    ROW("vppo_policy_loss", K_NAN, "weight NaN", E_NONFINITE, f.rows[2] = NAN, C_LOSS);
    ROW("vppo_policy_loss", K_NAN, "logp_ref NaN with a KL penalty", E_NONFINITE,
        (f.loss.kl_kind = VPPO_KL_K1, f.loss.kl_coef = 0.1f, f.ent[2] = NAN),
        vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, f.ent, f.score, f.sel, f.rows, f.out, &f.lo));
    ROW("vppo_policy_loss", K_OVERFLOW, "a gradient beyond the float range (A = -2e38, r = e^3, no dual clip)", E_NONFINITE,
        (f.score[0] = -2e38f, f.logp[0] = 0.0f, f.aug[0] = -3.0f, f.loss.clip_dual = 0.0f), C_LOSS);   /* 2e38 e^3 / 8 */
    ROW("vppo_policy_loss", K_OVERFLOW, "denom = 5e-312 (the loss leaves the double range)", E_NONFINITE,
        f.loss.denom = 5e-312, C_LOSS);
    ROW("vppo_policy_loss", K_EDGE, "logp_ref NaN without a KL penalty (unused)", OK, f.ent[2] = NAN,
        vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, f.ent, f.score, f.sel, f.rows, f.out, &f.lo));
    ROW("vppo_policy_loss", K_EDGE, "agg_norm = 0 with TOKEN_MEAN (unused)", OK, f.loss.agg_norm = 0.0, C_LOSS);
    ROW("vppo_policy_loss", K_EDGE, "NaN at an invalid position", OK, (f.logp[4] = NAN, f.mask[4] = 0), C_LOSS);
    ROW("vppo_policy_loss", K_EDGE, "select bytes other than 0 and 1 (nonzero = 1)", OK, (f.sel[0] = 0x80, f.sel[1] = 7),
        C_LOSS);
    ROW("vppo_policy_loss", K_EDGE, "an empty batch (every sequence empty)", OK, (f.off[1] = 0, f.off[2] = 0), C_LOSS);
    ROW("vppo_policy_loss", K_EDGE, "dlogp = NULL, select = NULL, weight = NULL", OK, NOTHING,
        vppo_policy_loss(&f.loss, &f.s, f.logp, f.aug, NULL, f.score, NULL, NULL, NULL, &f.lo));

    /* --- §8 vppo_prepare, vppo_step ---------------------------------------------- */
    ROW("vppo_prepare", K_EDGE, "the fixture (the released recipe)", OK, NOTHING, C_PREPARE);
    ROW("vppo_prepare", K_NULL, "cfg = NULL", E_NULL, NOTHING,
        vppo_prepare(NULL, &f.s, f.logp, f.aug, NULL, f.adv_seq, NULL, &f.p));
    ROW("vppo_prepare", K_NULL, "adv_seq = NULL", E_NULL, NOTHING,
        vppo_prepare(&f.cfg, &f.s, f.logp, f.aug, NULL, NULL, NULL, &f.p));
    ROW("vppo_prepare", K_NULL, "p = NULL", E_NULL, NOTHING,
        vppo_prepare(&f.cfg, &f.s, f.logp, f.aug, NULL, f.adv_seq, NULL, NULL));
    ROW("vppo_prepare", K_NULL, "p->dep = NULL", E_NULL, f.p.dep = NULL, C_PREPARE);
    ROW("vppo_prepare", K_NULL, "p->traj_dep = NULL", E_NULL, f.p.traj_dep = NULL, C_PREPARE);
    ROW("vppo_prepare", K_NULL, "p->count = NULL", E_NULL, f.p.count = NULL, C_PREPARE);
    ROW("vppo_prepare", K_NULL, "p->scale = NULL", E_NULL, f.p.scale = NULL, C_PREPARE);
    ROW("vppo_prepare", K_NULL, "p->adv = NULL", E_NULL, f.p.adv = NULL, C_PREPARE);
    ROW("vppo_prepare", K_NULL, "p->select = NULL", E_NULL, f.p.select = NULL, C_PREPARE);
    ROW("vppo_prepare", K_NULL, "logp_old = NULL, no dep_in, TAS on (the dependency is needed)", E_NULL, NOTHING,
        vppo_prepare(&f.cfg, &f.s, NULL, f.aug, NULL, f.adv_seq, NULL, &f.p));
    ROW("vppo_prepare", K_SIZE, "offsets decrease", E_SIZE, f.s.offsets = decreasing, C_PREPARE);
    ROW("vppo_prepare", K_SIZE, "global stats with n = -1", E_SIZE, f.global.n = -1,
        vppo_prepare(&f.cfg, &f.s, f.logp, f.aug, NULL, f.adv_seq, &f.global, &f.p));
    ROW("vppo_prepare", K_PARAM, "estimator = 9", E_PARAM, f.cfg.estimator = (vppo_estimator)9, C_PREPARE);
    ROW("vppo_prepare", K_PARAM, "tas.beta_min = -1 with use_tas", E_PARAM, f.cfg.tas.beta_min = -1.0f, C_PREPARE);
    ROW("vppo_prepare", K_PARAM, "topk_ratio = 1.01 with use_tgf", E_PARAM, f.cfg.topk_ratio = 1.01, C_PREPARE);
    ROW("vppo_prepare", K_PARAM, "global stats with min > max", E_PARAM, (f.global.min = 1.0, f.global.max = 0.0),
        vppo_prepare(&f.cfg, &f.s, f.logp, f.aug, NULL, f.adv_seq, &f.global, &f.p));
    ROW("vppo_prepare", K_NAN, "logp_old NaN", E_NONFINITE, f.logp[2] = NAN, C_PREPARE);
    ROW("vppo_prepare", K_NINF, "logp_old and logp_aug both -inf (d = NaN)", E_NONFINITE,
        (f.logp[2] = -INFINITY, f.aug[2] = -INFINITY), C_PREPARE);
    ROW("vppo_prepare", K_PINF, "dep_in = +inf (clamp an infinite KL first)", E_NONFINITE, f.z2[3] = INFINITY,
        vppo_prepare(&f.cfg, &f.s, NULL, NULL, f.z2, f.adv_seq, NULL, &f.p));
    ROW("vppo_prepare", K_NAN, "adv_seq NaN", E_NONFINITE, f.adv_seq[1] = NAN, C_PREPARE);
    ROW("vppo_prepare", K_OVERFLOW, "adv_seq = 3.2e38 with TAS (scale up to 1.1: beyond FLT_MAX)", E_NONFINITE,
        f.adv_seq[0] = 3.2e38f, C_PREPARE);
    ROW("vppo_prepare", K_OVERFLOW, "PROB_DROP estimator with logp_old = 100", E_NONFINITE,
        (f.cfg.estimator = VPPO_EST_PROB_DROP, f.logp[4] = 100.0f), C_PREPARE);
    ROW("vppo_prepare", K_EDGE, "use_tas = use_tgf = 0 and no log-probabilities (dep = 0)", OK,
        (f.cfg.use_tas = 0, f.cfg.use_tgf = 0), vppo_prepare(&f.cfg, &f.s, NULL, NULL, NULL, f.adv_seq, NULL, &f.p));
    ROW("vppo_prepare", K_EDGE, "dep_in given, log-probabilities NULL", OK, NOTHING,
        vppo_prepare(&f.cfg, &f.s, NULL, NULL, f.z2, f.adv_seq, NULL, &f.p));
    ROW("vppo_prepare", K_EDGE, "estimator = 9 with dep_in (unused)", OK, f.cfg.estimator = (vppo_estimator)9,
        vppo_prepare(&f.cfg, &f.s, NULL, NULL, f.z2, f.adv_seq, NULL, &f.p));
    ROW("vppo_prepare", K_EDGE, "a bad TAS config with use_tas = 0 (unused)", OK,
        (f.cfg.use_tas = 0, f.cfg.tas.beta_min = -7.0f), C_PREPARE);
    ROW("vppo_prepare", K_EDGE, "topk_ratio = 7 with use_tgf = 0 (unused)", OK, (f.cfg.use_tgf = 0, f.cfg.topk_ratio = 7.0),
        C_PREPARE);
    ROW("vppo_prepare", K_EDGE, "a bad loss config (prepare does not use it)", OK, f.cfg.loss.clip_dual = 0.5f, C_PREPARE);
    ROW("vppo_prepare", K_EDGE, "adv_seq NaN for an empty sequence (unused)", OK, (f.adv_seq[1] = NAN, f.off[2] = 4),
        C_PREPARE);

    ROW("vppo_step", K_EDGE, "the fixture (the released recipe, KL to logp_ref off)", OK, NOTHING, C_STEP);
    ROW("vppo_step", K_NULL, "cfg = NULL", E_NULL, NOTHING,
        vppo_step(NULL, &f.s, f.logp, f.aug, f.aug, f.logp, f.adv_seq, &f.p, f.out, &f.lo));
    ROW("vppo_step", K_NULL, "logp = NULL", E_NULL, NOTHING,
        vppo_step(&f.cfg, &f.s, NULL, f.aug, f.aug, f.logp, f.adv_seq, &f.p, f.out, &f.lo));
    ROW("vppo_step", K_NULL, "logp_old = NULL", E_NULL, NOTHING,
        vppo_step(&f.cfg, &f.s, f.logp, NULL, f.aug, f.logp, f.adv_seq, &f.p, f.out, &f.lo));
    ROW("vppo_step", K_NULL, "logp_aug = NULL with TAS", E_NULL, NOTHING,
        vppo_step(&f.cfg, &f.s, f.logp, f.aug, NULL, f.logp, f.adv_seq, &f.p, f.out, &f.lo));
    ROW("vppo_step", K_NULL, "p->select = NULL", E_NULL, f.p.select = NULL, C_STEP);
    ROW("vppo_step", K_NULL, "out = NULL", E_NULL, NOTHING,
        vppo_step(&f.cfg, &f.s, f.logp, f.aug, f.aug, f.logp, f.adv_seq, &f.p, f.out, NULL));
    ROW("vppo_step", K_NULL, "logp_ref = NULL with a KL penalty", E_NULL, f.cfg.loss.kl_kind = VPPO_KL_K2,
        vppo_step(&f.cfg, &f.s, f.logp, f.aug, f.aug, NULL, f.adv_seq, &f.p, f.out, &f.lo));
    ROW("vppo_step", K_SIZE, "offsets[0] < 0", E_SIZE, f.s.offsets = negative_first, C_STEP);
    ROW("vppo_step", K_PARAM, "loss.clip_dual = 0.5", E_PARAM, f.cfg.loss.clip_dual = 0.5f, C_STEP);
    ROW("vppo_step", K_PARAM, "tas.beta_min = -1", E_PARAM, f.cfg.tas.beta_min = -1.0f, C_STEP);
    ROW("vppo_step", K_PARAM, "loss.denom = -5", E_PARAM, f.cfg.loss.denom = -5.0, C_STEP);
    ROW("vppo_step", K_NAN, "logp NaN", E_NONFINITE, f.logp[7] = NAN, C_STEP);
    ROW("vppo_step", K_NINF, "logp_old = -inf (allowed for the dependency, not in the loss)", E_NONFINITE,
        f.aug[1] = -INFINITY, vppo_step(&f.cfg, &f.s, f.logp, f.aug, f.z2, f.logp, f.adv_seq, &f.p, f.out, &f.lo));
    ROW("vppo_step", K_PINF, "logp_aug = +inf", E_NONFINITE, f.aug[3] = INFINITY,
        vppo_step(&f.cfg, &f.s, f.logp, f.logp, f.aug, f.logp, f.adv_seq, &f.p, f.out, &f.lo));
    ROW("vppo_step", K_OVERFLOW, "adv_seq = 3.2e38 (the shaped advantage overflows)", E_NONFINITE, f.adv_seq[0] = 3.2e38f,
        C_STEP);
    ROW("vppo_step", K_EDGE, "use_tas = use_tgf = 0, logp_aug = NULL (DAPO)", OK, (f.cfg.use_tas = 0, f.cfg.use_tgf = 0),
        vppo_step(&f.cfg, &f.s, f.logp, f.aug, NULL, NULL, f.adv_seq, &f.p, NULL, &f.lo));
    ROW("vppo_step", K_EDGE, "no sequences (n_seqs = 0)", OK, f.s.n_seqs = 0, C_STEP);

    /* --- §9 fused linear head: sizes n, d, vocab; hidden, weight finite ------------- */
    ROW("vppo_linear_logprobs", K_EDGE, "the fixture (n 2, d 3, vocab 5)", OK, NOTHING, C_LIN_LOGP);
    ROW("vppo_linear_logprobs", K_NULL, "hidden = NULL", E_NULL, NOTHING,
        vppo_linear_logprobs(NULL, f.weight, 2, 3, 5, 1.0f, f.lin_ids, f.lin_out, NULL, NULL, f.work, f.lin_need));
    ROW("vppo_linear_logprobs", K_NULL, "work = NULL", E_NULL, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 2, 3, 5, 1.0f, f.lin_ids, f.lin_out, NULL, NULL, NULL, f.lin_need));
    ROW("vppo_linear_logprobs", K_NULL, "logp given, ids = NULL", E_NULL, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 2, 3, 5, 1.0f, NULL, f.lin_out, NULL, NULL, f.work, f.lin_need));
    ROW("vppo_linear_logprobs", K_SIZE, "d = 0", E_SIZE, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 2, 0, 5, 1.0f, f.lin_ids, f.lin_out, NULL, NULL, f.work, f.lin_need));
    ROW("vppo_linear_logprobs", K_SIZE, "n = -1", E_SIZE, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, -1, 3, 5, 1.0f, f.lin_ids, f.lin_out, NULL, NULL, f.work, f.lin_need));
    ROW("vppo_linear_logprobs", K_SIZE, "vocab * d beyond any buffer", E_SIZE, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 2, 3, INT64_MAX / 2, 1.0f, f.lin_ids, f.lin_out, NULL, NULL, f.work,
            f.lin_need));
    ROW("vppo_linear_logprobs", K_PARAM, "temperature = 0", E_PARAM, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 2, 3, 5, 0.0f, f.lin_ids, f.lin_out, NULL, NULL, f.work, f.lin_need));
    ROW("vppo_linear_logprobs", K_PARAM, "temperature = 1e-40 (1/T beyond the float range: the fused head's limit)",
        E_PARAM, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 2, 3, 5, 1e-40f, f.lin_ids, f.lin_out, NULL, NULL, f.work, f.lin_need));
    ROW("vppo_linear_logprobs", K_WORK, "work_bytes = vppo_linear_workspace() - 1", E_WORKSPACE, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 2, 3, 5, 1.0f, f.lin_ids, f.lin_out, NULL, NULL, f.work, f.lin_need - 1));
    ROW("vppo_linear_logprobs", K_ID, "ids[1] = vocab", E_INDEX, f.lin_ids[1] = 5, C_LIN_LOGP);
    ROW("vppo_linear_logprobs", K_NAN, "hidden NaN", E_NONFINITE, f.hidden[4] = NAN, C_LIN_LOGP);
    ROW("vppo_linear_logprobs", K_PINF, "weight +inf", E_NONFINITE, f.weight[14] = INFINITY, C_LIN_LOGP);
    ROW("vppo_linear_logprobs", K_OVERFLOW, "logits beyond the float range (hidden, weight 1e20: +inf)", E_NONFINITE,
        (f.hidden[0] = 1e20f, f.weight[0] = 1e20f), C_LIN_LOGP);
    ROW("vppo_linear_logprobs", K_EDGE, "every output NULL", OK, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 2, 3, 5, 1.0f, NULL, NULL, NULL, NULL, f.work, f.lin_need));
    ROW("vppo_linear_logprobs", K_EDGE, "n = 0", OK, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 0, 3, 5, 1.0f, f.lin_ids, f.lin_out, NULL, NULL, f.work, f.lin_need));
    ROW("vppo_linear_logprobs", K_EDGE, "work not aligned, larger than needed", OK, NOTHING,
        vppo_linear_logprobs(f.hidden, f.weight, 2, 3, 5, 1.0f, f.lin_ids, f.lin_out, NULL, NULL, f.work + 1,
            f.lin_need + 8));

    ROW("vppo_linear_dependency", K_EDGE, "the fixture (KL)", OK, NOTHING, C_LIN_DEP);
    ROW("vppo_linear_dependency", K_NULL, "hidden_aug = NULL", E_NULL, NOTHING,
        vppo_linear_dependency(f.hidden, NULL, f.weight, 2, 3, 5, 1.0f, VPPO_DIV_KL, f.lin_out, f.work, f.lin_need));
    ROW("vppo_linear_dependency", K_NULL, "dep = NULL", E_NULL, NOTHING,
        vppo_linear_dependency(f.hidden, f.hidden_aug, f.weight, 2, 3, 5, 1.0f, VPPO_DIV_KL, NULL, f.work, f.lin_need));
    ROW("vppo_linear_dependency", K_NULL, "weight = NULL", E_NULL, NOTHING,
        vppo_linear_dependency(f.hidden, f.hidden_aug, NULL, 2, 3, 5, 1.0f, VPPO_DIV_KL, f.lin_out, f.work, f.lin_need));
    ROW("vppo_linear_dependency", K_SIZE, "vocab = 0", E_SIZE, NOTHING,
        vppo_linear_dependency(f.hidden, f.hidden_aug, f.weight, 2, 3, 0, 1.0f, VPPO_DIV_KL, f.lin_out, f.work,
            f.lin_need));
    ROW("vppo_linear_dependency", K_PARAM, "div = 3", E_PARAM, NOTHING,
        vppo_linear_dependency(f.hidden, f.hidden_aug, f.weight, 2, 3, 5, 1.0f, (vppo_divergence)3, f.lin_out, f.work,
            f.lin_need));
    ROW("vppo_linear_dependency", K_PARAM, "temperature = NaN", E_PARAM, NOTHING,
        vppo_linear_dependency(f.hidden, f.hidden_aug, f.weight, 2, 3, 5, NAN, VPPO_DIV_KL, f.lin_out, f.work, f.lin_need));
    ROW("vppo_linear_dependency", K_WORK, "work_bytes = 0", E_WORKSPACE, NOTHING,
        vppo_linear_dependency(f.hidden, f.hidden_aug, f.weight, 2, 3, 5, 1.0f, VPPO_DIV_KL, f.lin_out, f.work, 0));
    ROW("vppo_linear_dependency", K_NAN, "hidden_aug NaN", E_NONFINITE, f.hidden_aug[1] = NAN, C_LIN_DEP);
    ROW("vppo_linear_dependency", K_NINF, "hidden -inf", E_NONFINITE, f.hidden[1] = -INFINITY, C_LIN_DEP);
    ROW("vppo_linear_dependency", K_EDGE, "JS", OK, NOTHING,
        vppo_linear_dependency(f.hidden, f.hidden_aug, f.weight, 2, 3, 5, 1.0f, VPPO_DIV_JS, f.lin_out, f.work,
            f.lin_need));

    ROW("vppo_linear_logprobs_backward", K_EDGE, "the fixture (lse, entropy recomputed; dweight accumulated)", OK, NOTHING,
        C_LIN_BWD);
    ROW("vppo_linear_logprobs_backward", K_NULL, "dhidden = NULL", E_NULL, NOTHING,
        vppo_linear_logprobs_backward(f.hidden, f.weight, 2, 3, 5, 1.0f, f.lin_ids, NULL, NULL, f.dl, f.de, NULL,
            f.dweight, f.work, f.lin_need));
    ROW("vppo_linear_logprobs_backward", K_NULL, "dlogp given, ids = NULL", E_NULL, NOTHING,
        vppo_linear_logprobs_backward(f.hidden, f.weight, 2, 3, 5, 1.0f, NULL, NULL, NULL, f.dl, f.de, f.dhidden,
            f.dweight, f.work, f.lin_need));
    ROW("vppo_linear_logprobs_backward", K_SIZE, "n = -2", E_SIZE, NOTHING,
        vppo_linear_logprobs_backward(f.hidden, f.weight, -2, 3, 5, 1.0f, f.lin_ids, NULL, NULL, f.dl, f.de, f.dhidden,
            f.dweight, f.work, f.lin_need));
    ROW("vppo_linear_logprobs_backward", K_PARAM, "temperature = -1", E_PARAM, NOTHING,
        vppo_linear_logprobs_backward(f.hidden, f.weight, 2, 3, 5, -1.0f, f.lin_ids, NULL, NULL, f.dl, f.de, f.dhidden,
            f.dweight, f.work, f.lin_need));
    ROW("vppo_linear_logprobs_backward", K_WORK, "work_bytes = vppo_linear_workspace() - 1", E_WORKSPACE, NOTHING,
        vppo_linear_logprobs_backward(f.hidden, f.weight, 2, 3, 5, 1.0f, f.lin_ids, NULL, NULL, f.dl, f.de, f.dhidden,
            f.dweight, f.work, f.lin_need - 1));
    ROW("vppo_linear_logprobs_backward", K_ID, "ids[0] = -1", E_INDEX, f.lin_ids[0] = -1, C_LIN_BWD);
    ROW("vppo_linear_logprobs_backward", K_NAN, "lse NaN", E_NONFINITE, f.lse[1] = NAN,
        vppo_linear_logprobs_backward(f.hidden, f.weight, 2, 3, 5, 1.0f, f.lin_ids, f.lse, NULL, f.dl, f.de, f.dhidden,
            f.dweight, f.work, f.lin_need));
    ROW("vppo_linear_logprobs_backward", K_PINF, "dlogp +inf", E_NONFINITE, f.dl[0] = INFINITY, C_LIN_BWD);
    ROW("vppo_linear_logprobs_backward", K_NAN, "weight NaN", E_NONFINITE, f.weight[3] = NAN, C_LIN_BWD);
    ROW("vppo_linear_logprobs_backward", K_EDGE, "dweight = NULL", OK, NOTHING,
        vppo_linear_logprobs_backward(f.hidden, f.weight, 2, 3, 5, 1.0f, f.lin_ids, NULL, NULL, f.dl, f.de, f.dhidden,
            NULL, f.work, f.lin_need));

    /* --- §10 vppo_isa_select: the scalar path always exists -------------------------- */
    ROW("vppo_isa_select", K_EDGE, "VPPO_ISA_SCALAR (always present)", OK, NOTHING, vppo_isa_select(VPPO_ISA_SCALAR));
    ROW("vppo_isa_select", K_PARAM, "isa = 99 (outside the enum)", E_PARAM, NOTHING, vppo_isa_select((vppo_isa)99));
    ROW("vppo_isa_select", K_PARAM, "isa = -1", E_PARAM, NOTHING, vppo_isa_select((vppo_isa)-1));

    if (w->check) CHECK_STATUS(VPPO_OK, vppo_isa_select(isa_before));
}

/* ------------------------------------------------------------ the document */

static const char *status_name(vppo_status s)
{
    switch (s) {
    case VPPO_OK: return "OK";
    case VPPO_ERR_NULL: return "NULL";
    case VPPO_ERR_SIZE: return "SIZE";
    case VPPO_ERR_PARAM: return "PARAM";
    case VPPO_ERR_INDEX: return "INDEX";
    case VPPO_ERR_NONFINITE: return "NONFINITE";
    case VPPO_ERR_WORKSPACE: return "WORKSPACE";
    case VPPO_ERR_UNSUPPORTED: return "UNSUPPORTED";
    default: return "?";
    }
}

/* A growing string. */
typedef struct text { char *s; size_t n, cap; } text;

static void text_add(text *t, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void text_add(text *t, const char *fmt, ...)
{
    va_list ap;
    int len;
    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0) return;
    if (t->n + (size_t)len + 1 > t->cap) {
        size_t cap = (t->cap ? 2 * t->cap : 4096) + (size_t)len;
        char *s = (char *)realloc(t->s, cap);
        if (!s) return;
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    t->n += (size_t)len;
}

/* The Markdown of docs/bad_input_matrix.md, from the table alone. */
static text matrix_markdown(const matrix_walk *w)
{
    text t = { NULL, 0, 0 };
    int i, j, k;
    text_add(&t, "# The bad-input matrix of vppo.h\n\n");
    text_add(&t, "Generated from the table in `tests/test_matrix.c` by `make docs-matrix`; do not edit by hand.\n");
    text_add(&t, "The suite checks every row against the library (`bad_input_matrix_table`) and fails when this\n");
    text_add(&t, "file differs from the table (`bad_input_matrix_doc_is_current`).\n\n");
    text_add(&t, "Each row starts from valid arguments for every function and breaks one thing. The expected\n");
    text_add(&t, "statuses follow docs/spec.md section 1 and the domains stated in the header (NULL: a required pointer;\n");
    text_add(&t, "SIZE: counts, offsets, strides, groups; PARAM: a parameter outside its domain, NaN included;\n");
    text_add(&t, "INDEX: a token id outside [0, vocab); NONFINITE: NaN, or an infinity where none is allowed, in\n");
    text_add(&t, "the data or in a result; WORKSPACE; UNSUPPORTED). On any error nothing outside the output\n");
    text_add(&t, "buffers is touched; errors found while validating leave the outputs as they were.\n\n");
    /* summary: functions x kinds */
    text_add(&t,
        "## Summary\n\nFunctions by kind of bad input: the status returned (`-`: not applicable; the last column\n");
    text_add(&t, "counts the unusual but valid inputs that must be accepted).\n\n| function |");
    for (k = 0; k < N_KINDS; ++k) text_add(&t, " %s |", kind_names[k]);
    text_add(&t, "\n|---|");
    for (k = 0; k < N_KINDS; ++k) text_add(&t, "---|");
    text_add(&t, "\n");
    for (i = 0; i < w->n; ++i) {
        int first = 1;
        for (j = 0; j < i; ++j) if (strcmp(w->rows[j].fn, w->rows[i].fn) == 0) first = 0;
        if (!first) continue;
        text_add(&t, "| `%s` |", w->rows[i].fn);
        for (k = 0; k < N_KINDS; ++k) {
            int seen[16] = { 0 }, any = 0, count = 0;
            for (j = 0; j < w->n; ++j)
                if (strcmp(w->rows[j].fn, w->rows[i].fn) == 0 && w->rows[j].kind == k) {
                    seen[-(int)w->rows[j].expected] = 1;
                    ++count;
                }
            text_add(&t, " ");
            if (k == K_EDGE) {
                if (count) text_add(&t, "%d |", count);
                else text_add(&t, "- |");
                continue;
            }
            for (j = 0; j < 16; ++j)
                if (seen[j]) { text_add(&t, "%s%s", any ? ", " : "", status_name((vppo_status)-j)); any = 1; }
            text_add(&t, any ? " |" : "- |");
        }
        text_add(&t, "\n");
    }
    /* the rows, by function */
    text_add(&t, "\n## Every row\n");
    for (i = 0; i < w->n; ++i) {
        if (i == 0 || strcmp(w->rows[i - 1].fn, w->rows[i].fn) != 0)
            text_add(&t, "\n### `%s`\n\n| kind | what is broken | status |\n|---|---|---|\n", w->rows[i].fn);
        text_add(&t, "| %s | %s | %s |\n", kind_names[w->rows[i].kind], w->rows[i].what, status_name(w->rows[i].expected));
    }
    return t;
}

/* ------------------------------------------------------------ the tests */

static matrix_walk matrix_state;
static test_fixture matrix_fixture_probe;

/* Every row of the table against the library. */
void bad_input_matrix_table(void)
{
    matrix_walk *w = &matrix_state;
    memset(w, 0, sizeof *w);
    w->check = 1;
    matrix_table(w);
    CHECK(w->n <= MATRIX_MAX);
    test_fixture_init(&matrix_fixture_probe);
    CHECK(matrix_fixture_probe.lin_need > 0 && matrix_fixture_probe.lin_need + 8 <= sizeof matrix_fixture_probe.work);
    CHECK(matrix_fixture_probe.blur_need > 0 && matrix_fixture_probe.blur_need + 3 <= sizeof matrix_fixture_probe.work);
    CHECK(w->n >= 300);
}

/* docs/bad_input_matrix.md is what the table generates. With VPPO_WRITE_MATRIX=path the
   file is written first (make docs-matrix); VPPO_MATRIX_DOC=path reads another copy. */
void bad_input_matrix_doc_is_current(void)
{
    matrix_walk *w = &matrix_state;
    const char *write_to = getenv("VPPO_WRITE_MATRIX"), *read_from = getenv("VPPO_MATRIX_DOC");
    text doc;
    FILE *file;
    char *have = NULL;
    long size = -1;
    memset(w, 0, sizeof *w);
    matrix_table(w);
    doc = matrix_markdown(w);
    CHECK(doc.s != NULL);
    if (!doc.s) return;
    if (write_to) {
        file = fopen(write_to, "wb");
        CHECK(file != NULL);
        if (file) {
            CHECK(fwrite(doc.s, 1, doc.n, file) == doc.n);
            CHECK(fclose(file) == 0);
            printf("        wrote %s (%d rows)\n", write_to, w->n);
        }
    }
    if (!read_from) read_from = write_to ? write_to : "docs/bad_input_matrix.md";
    file = fopen(read_from, "rb");
    if (!file) {
        test_fail(__FILE__, __LINE__, "cannot read %s: run the suite from the repository root, or make docs-matrix",
            read_from);
        free(doc.s);
        return;
    }
    if (fseek(file, 0, SEEK_END) == 0) size = ftell(file);
    rewind(file);
    if (size >= 0) have = (char *)malloc((size_t)size + 1);
    CHECK(have != NULL && fread(have, 1, (size_t)size, file) == (size_t)size);
    fclose(file);
    ++test_checks;   /* one check, with a message that says how to fix it */
    if (!(have && (size_t)size == doc.n && memcmp(have, doc.s, doc.n) == 0))
        test_fail(__FILE__, __LINE__, "%s differs from the table in tests/test_matrix.c: run make docs-matrix", read_from);
    free(have);
    free(doc.s);
}
