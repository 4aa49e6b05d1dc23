/* examples/engine_step.c - how a training engine calls vppo.h, with .npy files as the interface.

   A training engine (verl, EasyR1, OpenRLHF, your own loop) holds the rollout batch as
   padded [B, L] tensors. This program reads them from .npy files (save them with
   np.save, or torch: np.save(path, t.cpu().numpy())), runs one VPPO step and writes the
   gradient with respect to the log-probabilities (and, in logits mode, with respect to
   the logits) back as .npy files, ready to be fed to backward().

       engine_step make-inputs DIR [--prompts G] [--rollouts R] [--len L] [--vocab V] [--seed S]
       engine_step sampled DIR [--check]
       engine_step logits  DIR [--check] [--temperature T]

   make-inputs writes a consistent random batch into DIR (created if needed): G prompts
   with R rollouts each (B = G*R responses) of at most L tokens over a vocabulary of V.

   Inputs (DIR/...):                                                        used by
     mask.npy        |u1  [B, L]    response mask: 1 = generated token, 0 = padding   both
     rewards.npy     <f4  [B]       verifier reward per response                      both
     group.npy       <i8  [B]       prompt index of each response (<i4 accepted);     both
                                    a prompt's responses must be contiguous
     logp.npy        <f4  [B, L]    log pi_theta(o_t)      current policy              sampled
     logp_old.npy    <f4  [B, L]    log pi_old(o_t | I)    rollout policy, image I     sampled
     logp_aug.npy    <f4  [B, L]    log pi_old(o_t | I')   same, perturbed image I'    sampled
     ids.npy         <i4  [B, L]    sampled token ids (<i8 accepted; any value at     logits
                                    padding, e.g. -100)
     logits.npy      <u2  [B*L, V]  bf16 logits, current policy (rows at padding are  logits
                                    computed and ignored: they must be finite)
     logits_old.npy  <u2  [B*L, V]  bf16 logits, rollout policy, image I              logits
     logits_aug.npy  <u2  [B*L, V]  bf16 logits, rollout policy, perturbed image I'   logits
   (bf16 has no NumPy dtype: store its bits as uint16, e.g. t.view(torch.int16).numpy().view(np.uint16).)

   Outputs (DIR/<mode>_...):
     dlogp.npy    <f4 [B, L]  dloss/dlogp: backpropagate it into logp (0 at padding)
     adv.npy      <f4 [B, L]  shaped per-token advantage (TAS scale x GRPO advantage)
     dep.npy      <f4 [B, L]  token visual dependency (sampled: K3; logits: KL, Eq. 3)
     select.npy   |u1 [B, L]  TGF: the tokens that carry the policy gradient
     scale.npy    <f4 [B]     TAS scale per response
     adv_seq.npy  <f4 [B]     GRPO advantage per response (before TAS)
     dlogits.npy  <u2 [B*L, V]  logits mode: dloss/dlogits in bf16 (the softmax backward)

   sampled mode is the released code's measure: the dependency of each sampled token is
   the K3 estimate from log pi_old(o_t | I) and log pi_old(o_t | I'), and vppo_step does
   everything. logits mode is the paper's Eq. 3: full KL(pi(.|I) || pi(.|I')) from the
   logits (vppo_dependency_logits), log-probabilities from the logits (vppo_logprobs),
   vppo_prepare with that dependency, the loss (vppo_policy_loss), and the gradient
   through the softmax (vppo_logprobs_backward). Both use vppo_config_default() (the
   released 7B recipe). --check re-reads every file written and compares its dtype,
   shape and bytes with what was computed, then checks properties the specification
   fixes (zeros at padding, k = ceil(0.4 n) tokens selected per response, mean TAS scale
   1, gradient of unselected tokens = the entropy penalty's alone, ...).

   Exit status: 0 on success, 1 on a file, format or library error (the message names
   the file and the reason), 2 on bad arguments (usage is printed).

   make examples && build/examples/engine_step make-inputs /tmp/x &&
   build/examples/engine_step sampled /tmp/x --check && build/examples/engine_step logits /tmp/x --check */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L          /* mkdir */
#endif
#define VPPO_IMPLEMENTATION
#include "../vppo.h"
#define NPY_IMPLEMENTATION
#include "npy.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <direct.h>
#define make_dir(path) _mkdir(path)
#else
#include <sys/stat.h>
#include <sys/types.h>
#define make_dir(path) mkdir(path, 0777)
#endif

#define MAX_PATH 4096
#define ERR_SIZE 1024
#define MAX_OUTPUTS 8

static const char *program = "engine_step";

static void usage(void)
{
    fprintf(stderr,
        "usage: %s make-inputs DIR [--prompts G] [--rollouts R] [--len L] [--vocab V] [--seed S]\n"
        "       %s sampled DIR [--check]\n"
        "       %s logits  DIR [--check] [--temperature T]\n"
        "\n"
        "  make-inputs  write a consistent random batch into DIR (G=2 prompts x R=4 rollouts,\n"
        "               L=48 positions, vocabulary V=512, seed 1 by default)\n"
        "  sampled      one VPPO step from the sampled-token log-probabilities in DIR\n"
        "               (logp, logp_old, logp_aug, mask, rewards, group .npy); writes sampled_*.npy\n"
        "  logits       the same from full bf16 logits (logits, logits_old, logits_aug, ids .npy):\n"
        "               KL dependency, log-probs and the softmax backward; writes logits_*.npy\n"
        "  --check      re-read what was written and verify shapes, values and invariants\n"
        "The comment at the top of examples/engine_step.c describes every file.\n",
        program, program, program);
}

/* ------------------------------------------------------------------ helpers */

static void join(char *out, const char *dir, const char *name)
{
    snprintf(out, MAX_PATH, "%s/%s", dir, name);
}

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s: ", program);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 1;
}

static int vppo_failed(const char *call, vppo_status st)
{
    fprintf(stderr, "%s: %s failed: %s\n", program, call, vppo_status_string(st));
    return 1;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) { fprintf(stderr, "%s: out of memory\n", program); exit(1); }
    return p;
}

/* float <-> bf16 bits (round to nearest even; the inputs here are finite). */
static uint16_t f32_to_bf16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A standard normal from two uniforms of a stream (Box-Muller). */
static double normal(uint64_t stream, uint64_t i)
{
    const double u1 = vppo_uniform(stream, 2 * i), u2 = vppo_uniform(stream, 2 * i + 1);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

/* Reads DIR/name and checks its dtype and rank. int64 and int32 files are accepted for
   each other (alt = the other one, or -1): the data are converted to `want`. */
static int load(const char *dir, const char *name, npy_dtype want, int alt, int ndim, npy_array *a)
{
    char path[MAX_PATH], err[ERR_SIZE], shape[128];
    join(path, dir, name);
    if (npy_read(path, a, err, sizeof err) != 0) return fail("%s%s", err, "");
    if (a->dtype != want && !(alt >= 0 && a->dtype == (npy_dtype)alt)) {
        fprintf(stderr, "%s: %s: dtype '%s', expected '%s'\n", program, path, npy_dtype_descr(a->dtype),
                npy_dtype_descr(want));
        npy_free(a);
        return 1;
    }
    if (a->ndim != ndim) {
        fprintf(stderr, "%s: %s: shape %s has %d dimensions, expected %d\n", program, path,
                npy_shape_string(a->ndim, a->shape, shape, sizeof shape), a->ndim, ndim);
        npy_free(a);
        return 1;
    }
    if (a->dtype != want) {            /* int32 <-> int64, range-checked */
        int64_t i;
        if (want == NPY_DT_I8) {
            int64_t *v = (int64_t *)xcalloc((size_t)a->count, sizeof *v);
            for (i = 0; i < a->count; ++i) v[i] = ((const int32_t *)a->data)[i];
            free(a->data);
            a->data = v;
        } else {
            int32_t *v = (int32_t *)xcalloc((size_t)a->count, sizeof *v);
            for (i = 0; i < a->count; ++i) {
                const int64_t x = ((const int64_t *)a->data)[i];
                if (x < INT32_MIN || x > INT32_MAX) {
                    fprintf(stderr, "%s: %s: value %lld at flat index %lld does not fit in int32\n",
                            program, path, (long long)x, (long long)i);
                    free(v);
                    npy_free(a);
                    return 1;
                }
                v[i] = (int32_t)x;
            }
            free(a->data);
            a->data = v;
        }
        a->dtype = want;
    }
    return 0;
}

static int same_shape(const npy_array *a, const npy_array *b)
{
    int i;
    if (a->ndim != b->ndim) return 0;
    for (i = 0; i < a->ndim; ++i)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

static int shape_mismatch(const char *dir, const char *name, const npy_array *a, const char *expected)
{
    char path[MAX_PATH], shape[128];
    join(path, dir, name);
    fprintf(stderr, "%s: %s: shape %s, expected %s\n", program, path,
            npy_shape_string(a->ndim, a->shape, shape, sizeof shape), expected);
    return 1;
}

/* ------------------------------------------------------------------ outputs */

/* What a mode wrote, kept to be re-read by --check. */
typedef struct output {
    char name[64];
    npy_dtype dtype;
    int ndim;
    int64_t shape[2];
    const void *data;
} output;

typedef struct outputs { output item[MAX_OUTPUTS]; int n; } outputs;

static int write_output(outputs *o, const char *dir, const char *mode, const char *what, npy_dtype dt,
                        int ndim, int64_t d0, int64_t d1, const void *data)
{
    char path[MAX_PATH], err[ERR_SIZE], shape[64];
    output *it = &o->item[o->n++];
    snprintf(it->name, sizeof it->name, "%s_%s.npy", mode, what);
    it->dtype = dt;
    it->ndim = ndim;
    it->shape[0] = d0;
    it->shape[1] = d1;
    it->data = data;
    join(path, dir, it->name);
    if (npy_write(path, dt, ndim, it->shape, data, err, sizeof err) != 0) return fail("%s%s", err, "");
    printf("  wrote %s  %s %s\n", path, npy_dtype_descr(dt), npy_shape_string(ndim, it->shape, shape, sizeof shape));
    return 0;
}

/* --check, part 1: every file re-read has the dtype, shape and bytes that were written. */
static int check_round_trip(const outputs *o, const char *dir)
{
    int k, bad = 0;
    for (k = 0; k < o->n; ++k) {
        const output *it = &o->item[k];
        char path[MAX_PATH], err[ERR_SIZE], shape[64];
        npy_array a;
        size_t bytes;
        join(path, dir, it->name);
        if (npy_read(path, &a, err, sizeof err) != 0) { fprintf(stderr, "check: %s\n", err); ++bad; continue; }
        bytes = (size_t)(it->ndim == 1 ? it->shape[0] : it->shape[0] * it->shape[1]) * npy_dtype_size(it->dtype);
        if (a.dtype != it->dtype || a.ndim != it->ndim || a.shape[0] != it->shape[0] ||
            (it->ndim == 2 && a.shape[1] != it->shape[1])) {
            fprintf(stderr, "check: %s: read back as %s %s, written as %s %s\n", path, npy_dtype_descr(a.dtype),
                    npy_shape_string(a.ndim, a.shape, shape, sizeof shape), npy_dtype_descr(it->dtype),
                    it->ndim == 1 ? "1-d" : "2-d");
            ++bad;
        } else if (memcmp(a.data, it->data, bytes) != 0) {
            fprintf(stderr, "check: %s: the values read back differ from those written\n", path);
            ++bad;
        }
        npy_free(&a);
    }
    printf("  check: %d files re-read: dtype, shape and every byte as written%s\n", o->n, bad ? ": FAILED" : "");
    return bad;
}

/* ------------------------------------------------------------------ the batch */

typedef struct batch {
    int64_t B, L, N;                 /* responses, positions per response, B*L */
    int64_t *offsets;                /* [B+1] = b*L */
    const uint8_t *mask;             /* [N] */
    const float *rewards;            /* [B] */
    int64_t n_groups, *group_offsets;/* prompts; responses [go[g], go[g+1]) */
    vppo_seqs seqs, groups;
    npy_array mask_a, rewards_a, group_a;
} batch;

/* Group ids [B] -> offsets of contiguous runs; a prompt whose responses are not
   contiguous is an error (sort the batch by prompt). */
static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int make_groups(batch *bt, const char *dir)
{
    const int64_t *gid = (const int64_t *)bt->group_a.data;
    int64_t b, g = 0, *run_ids;
    bt->group_offsets = (int64_t *)xcalloc((size_t)bt->B + 1, sizeof(int64_t));
    run_ids = (int64_t *)xcalloc((size_t)bt->B, sizeof(int64_t));
    for (b = 0; b < bt->B; ++b)
        if (b == 0 || gid[b] != gid[b - 1]) { bt->group_offsets[g] = b; run_ids[g] = gid[b]; ++g; }
    bt->group_offsets[g] = bt->B;
    bt->n_groups = g;
    qsort(run_ids, (size_t)g, sizeof *run_ids, cmp_i64);
    for (b = 1; b < g; ++b)
        if (run_ids[b] == run_ids[b - 1]) {
            char path[MAX_PATH];
            join(path, dir, "group.npy");
            fprintf(stderr, "%s: %s: the responses of prompt %lld are not contiguous; order the batch by prompt\n",
                    program, path, (long long)run_ids[b]);
            free(run_ids);
            return 1;
        }
    free(run_ids);
    bt->groups.n_seqs = bt->n_groups;
    bt->groups.offsets = bt->group_offsets;
    bt->groups.mask = NULL;
    return 0;
}

/* mask [B, L], rewards [B], group [B]: the parts both modes read. */
static int load_batch(batch *bt, const char *dir)
{
    char expected[64];
    memset(bt, 0, sizeof *bt);
    if (load(dir, "mask.npy", NPY_DT_U1, -1, 2, &bt->mask_a)) return 1;
    bt->B = bt->mask_a.shape[0];
    bt->L = bt->mask_a.shape[1];
    bt->N = bt->B * bt->L;
    bt->mask = (const uint8_t *)bt->mask_a.data;
    if (load(dir, "rewards.npy", NPY_DT_F4, -1, 1, &bt->rewards_a)) return 1;
    snprintf(expected, sizeof expected, "(%lld,) as mask.npy has %lld rows", (long long)bt->B, (long long)bt->B);
    if (bt->rewards_a.shape[0] != bt->B) return shape_mismatch(dir, "rewards.npy", &bt->rewards_a, expected);
    bt->rewards = (const float *)bt->rewards_a.data;
    if (load(dir, "group.npy", NPY_DT_I8, NPY_DT_I4, 1, &bt->group_a)) return 1;
    if (bt->group_a.shape[0] != bt->B) return shape_mismatch(dir, "group.npy", &bt->group_a, expected);
    if (make_groups(bt, dir)) return 1;
    bt->offsets = (int64_t *)xcalloc((size_t)bt->B + 1, sizeof(int64_t));
    vppo_offsets_uniform(bt->offsets, bt->B, bt->L);
    bt->seqs.n_seqs = bt->B;
    bt->seqs.offsets = bt->offsets;
    bt->seqs.mask = bt->mask;
    return 0;
}

static void free_batch(batch *bt)
{
    npy_free(&bt->mask_a);
    npy_free(&bt->rewards_a);
    npy_free(&bt->group_a);
    free(bt->offsets);
    free(bt->group_offsets);
}

/* Every array of one step. */
typedef struct step_buffers {
    float *dep, *traj_dep, *scale, *adv, *dlogp, *adv_seq;
    int64_t *count;
    uint8_t *select;
    vppo_prepared p;
    vppo_loss_out out;
} step_buffers;

static void alloc_step(step_buffers *sb, const batch *bt)
{
    const size_t N = (size_t)bt->N, B = (size_t)bt->B;
    memset(sb, 0, sizeof *sb);
    sb->dep = (float *)xcalloc(N, sizeof(float));
    sb->adv = (float *)xcalloc(N, sizeof(float));
    sb->dlogp = (float *)xcalloc(N, sizeof(float));
    sb->select = (uint8_t *)xcalloc(N, 1);
    sb->traj_dep = (float *)xcalloc(B, sizeof(float));
    sb->scale = (float *)xcalloc(B, sizeof(float));
    sb->adv_seq = (float *)xcalloc(B, sizeof(float));
    sb->count = (int64_t *)xcalloc(B, sizeof(int64_t));
    sb->p.dep = sb->dep;
    sb->p.traj_dep = sb->traj_dep;
    sb->p.count = sb->count;
    sb->p.scale = sb->scale;
    sb->p.adv = sb->adv;
    sb->p.select = sb->select;
}

static void free_step(step_buffers *sb)
{
    free(sb->dep); free(sb->adv); free(sb->dlogp); free(sb->select);
    free(sb->traj_dep); free(sb->scale); free(sb->adv_seq); free(sb->count);
}

/* GRPO advantages per prompt (the released recipe: eps 1e-6), and what DAPO's dynamic
   sampling would keep (engines drop those groups before the step; here it is reported). */
static int group_advantages(const batch *bt, step_buffers *sb, const char *dir)
{
    uint8_t *keep = (uint8_t *)xcalloc((size_t)bt->B, 1);
    int64_t g, kept = 0;
    vppo_status st = vppo_group_advantages(&bt->groups, bt->rewards, VPPO_ADV_GRPO, 1e-6f, sb->adv_seq);
    if (st == VPPO_ERR_SIZE) {
        fprintf(stderr, "%s: %s/group.npy: a prompt has a single response, so GRPO has no baseline for it "
                        "(use at least 2 rollouts per prompt)\n", program, dir);
        free(keep);
        return 1;
    }
    if (st != VPPO_OK) { free(keep); return vppo_failed("vppo_group_advantages", st); }
    st = vppo_group_filter(&bt->groups, bt->rewards, 0.01, 0.99, keep);
    if (st != VPPO_OK) { free(keep); return vppo_failed("vppo_group_filter", st); }
    for (g = 0; g < bt->n_groups; ++g) kept += keep[bt->group_offsets[g]] != 0;
    printf("  group advantages: GRPO over %lld prompts; dynamic sampling (0.01 < mean reward < 0.99) "
           "would keep %lld of them\n", (long long)bt->n_groups, (long long)kept);
    free(keep);
    return 0;
}

static void print_step(const batch *bt, const step_buffers *sb, const char *dep_name)
{
    const vppo_loss_out *o = &sb->out;
    int64_t b, g = 0;
    printf("  loss %.6f = pg %.6f + 0.06 x entropy term %.6f;  clipfrac %.4f, dual %.4f, ppo_kl %.6f\n",
           o->loss, o->pg_loss, o->entropy_loss, o->clipfrac, o->clipfrac_dual, o->ppo_kl);
    printf("  TGF: %lld of %lld response tokens carry gradient; TAS range of mean %s %.4f .. %.4f\n\n",
           (long long)o->n_selected, (long long)o->n_valid, dep_name, sb->p.stats.min, sb->p.stats.max);
    printf("  resp  prompt  tokens  reward  GRPO adv  traj dep  TAS scale  shaped adv\n");
    for (b = 0; b < bt->B && b < 16; ++b) {
        while (bt->group_offsets[g + 1] <= b) ++g;
        printf("  %4lld  %6lld  %6lld  %6.2f  %8.4f  %8.4f  %9.4f  %10.4f\n", (long long)b,
               (long long)((const int64_t *)bt->group_a.data)[b], (long long)sb->count[b], bt->rewards[b],
               sb->adv_seq[b], sb->traj_dep[b], sb->scale[b], sb->scale[b] * sb->adv_seq[b]);
    }
    if (bt->B > 16) printf("  ... (%lld more)\n", (long long)(bt->B - 16));
    printf("\n");
}

static int write_step(outputs *o, const char *dir, const char *mode, const batch *bt, const step_buffers *sb)
{
    return write_output(o, dir, mode, "dlogp", NPY_DT_F4, 2, bt->B, bt->L, sb->dlogp) ||
           write_output(o, dir, mode, "adv", NPY_DT_F4, 2, bt->B, bt->L, sb->adv) ||
           write_output(o, dir, mode, "dep", NPY_DT_F4, 2, bt->B, bt->L, sb->dep) ||
           write_output(o, dir, mode, "select", NPY_DT_U1, 2, bt->B, bt->L, sb->select) ||
           write_output(o, dir, mode, "scale", NPY_DT_F4, 1, bt->B, 0, sb->scale) ||
           write_output(o, dir, mode, "adv_seq", NPY_DT_F4, 1, bt->B, 0, sb->adv_seq);
}

/* --check, part 2: properties of one step that the specification fixes, recomputed here
   from the inputs (not from the library's intermediate results where avoidable). */
static int check_invariants(const batch *bt, const step_buffers *sb, const vppo_config *cfg)
{
    int64_t b, t, bad = 0, n_valid = 0, n_nonempty = 0;
    double scale_sum = 0.0, worst_adv = 0.0, worst_unselected = 0.0;
    for (b = 0; b < bt->B; ++b) n_valid += sb->count[b];
    for (b = 0; b < bt->B; ++b) {
        int64_t n = 0, k, selected = 0;
        for (t = b * bt->L; t < (b + 1) * bt->L; ++t) {
            if (!bt->mask[t]) {          /* padding: every per-token output is 0 */
                if (sb->dlogp[t] != 0.0f || sb->adv[t] != 0.0f || sb->dep[t] != 0.0f || sb->select[t] != 0) ++bad;
                continue;
            }
            ++n;
            selected += sb->select[t] != 0;
            {   /* shaped advantage = TAS scale x GRPO advantage */
                const double want = (double)sb->scale[b] * (double)sb->adv_seq[b];
                const double err = fabs((double)sb->adv[t] - want) / (1.0 + fabs(want));
                if (err > worst_adv) worst_adv = err;
            }
            if (!sb->select[t]) {       /* no policy gradient: only the entropy penalty, -0.06 / N_valid */
                const double want = -(double)cfg->loss.entropy_coef / (double)n_valid;
                const double err = fabs((double)sb->dlogp[t] - want) / (1.0 + fabs(want));
                if (err > worst_unselected) worst_unselected = err;
            }
        }
        if (n != sb->count[b]) ++bad;
        k = (int64_t)ceil((double)n * cfg->topk_ratio - 1e-9);     /* spec §6: k_b */
        if (selected != k) {
            fprintf(stderr, "check: response %lld selects %lld tokens, expected ceil(%g * %lld) = %lld\n",
                    (long long)b, (long long)selected, cfg->topk_ratio, (long long)n, (long long)k);
            ++bad;
        }
        if (n > 0) { scale_sum += sb->scale[b]; ++n_nonempty; }
    }
    if (worst_adv > 1e-6 || worst_unselected > 1e-6) ++bad;
    printf("  check: zeros at padding, k_b = ceil(0.4 n_b) selected per response, shaped adv = scale x adv "
           "(rel. err %.1e),\n         unselected dlogp = -0.06/N_valid (rel. err %.1e), mean TAS scale %.9f%s\n",
           worst_adv, worst_unselected, n_nonempty ? scale_sum / (double)n_nonempty : 1.0, bad ? ": FAILED" : "");
    if (n_nonempty > 0 && fabs(scale_sum / (double)n_nonempty - 1.0) > 1e-6) {
        fprintf(stderr, "check: the mean-preserving TAS scales do not average to 1\n");
        ++bad;
    }
    return bad != 0;
}

/* ------------------------------------------------------------------ sampled mode */

static int run_sampled(const char *dir, int check)
{
    batch bt;
    npy_array logp_a, old_a, aug_a;
    step_buffers sb;
    outputs o;
    vppo_config cfg = vppo_config_default();
    vppo_status st;
    int rc = 1;
    char expected[64];

    memset(&logp_a, 0, sizeof logp_a); memset(&old_a, 0, sizeof old_a); memset(&aug_a, 0, sizeof aug_a);
    memset(&o, 0, sizeof o);
    memset(&sb, 0, sizeof sb);
    if (load_batch(&bt, dir)) goto done;
    snprintf(expected, sizeof expected, "(%lld, %lld) as mask.npy", (long long)bt.B, (long long)bt.L);
    if (load(dir, "logp.npy", NPY_DT_F4, -1, 2, &logp_a)) goto done;
    if (!same_shape(&logp_a, &bt.mask_a)) { shape_mismatch(dir, "logp.npy", &logp_a, expected); goto done; }
    if (load(dir, "logp_old.npy", NPY_DT_F4, -1, 2, &old_a)) goto done;
    if (!same_shape(&old_a, &bt.mask_a)) { shape_mismatch(dir, "logp_old.npy", &old_a, expected); goto done; }
    if (load(dir, "logp_aug.npy", NPY_DT_F4, -1, 2, &aug_a)) goto done;
    if (!same_shape(&aug_a, &bt.mask_a)) { shape_mismatch(dir, "logp_aug.npy", &aug_a, expected); goto done; }

    printf("engine_step sampled: %lld responses x %lld positions from %s\n", (long long)bt.B, (long long)bt.L, dir);
    alloc_step(&sb, &bt);
    if (group_advantages(&bt, &sb, dir)) goto done;

    /* The whole VPPO step: K3 dependency, TAS, TGF, clipped loss and dloss/dlogp. */
    st = vppo_step(&cfg, &bt.seqs, (const float *)logp_a.data, (const float *)old_a.data,
                   (const float *)aug_a.data, NULL, sb.adv_seq, &sb.p, sb.dlogp, &sb.out);
    if (st != VPPO_OK) { vppo_failed("vppo_step", st); goto done; }
    print_step(&bt, &sb, "K3 dependency");

    if (write_step(&o, dir, "sampled", &bt, &sb)) goto done;
    rc = 0;
    if (check) rc = (check_round_trip(&o, dir) + check_invariants(&bt, &sb, &cfg)) != 0;
done:
    npy_free(&logp_a); npy_free(&old_a); npy_free(&aug_a);
    free_step(&sb);
    free_batch(&bt);
    return rc;
}

/* ------------------------------------------------------------------ logits mode */

/* A [n, V] bf16 logits file, as the library's view of it. */
static int load_logits(const char *dir, const char *name, int64_t n_rows, float temperature,
                       npy_array *a, vppo_logits *x)
{
    char expected[64];
    if (load(dir, name, NPY_DT_U2, -1, 2, a)) return 1;
    snprintf(expected, sizeof expected, "(%lld, V): one row per position of mask.npy", (long long)n_rows);
    if (a->shape[0] != n_rows || a->shape[1] < 1) return shape_mismatch(dir, name, a, expected);
    x->data = a->data;
    x->dtype = VPPO_BF16;
    x->n_rows = a->shape[0];
    x->vocab = a->shape[1];
    x->row_stride = a->shape[1];
    x->temperature = temperature;
    return 0;
}

/* logp.npy / logp_old.npy, when present, against the log-probabilities from the logits
   (make-inputs wrote them from the same logits: they agree exactly). */
static void compare_with_file(const char *dir, const char *name, const batch *bt, const float *logp)
{
    char path[MAX_PATH], err[ERR_SIZE];
    npy_array a;
    double worst = 0.0;
    int64_t t;
    join(path, dir, name);
    if (npy_read(path, &a, err, sizeof err) != 0) return;
    if (a.dtype == NPY_DT_F4 && a.count == bt->N) {
        for (t = 0; t < bt->N; ++t)
            if (bt->mask[t]) {
                const double d = fabs((double)((const float *)a.data)[t] - (double)logp[t]);
                if (d > worst) worst = d;
            }
        printf("  max |log-prob from the logits - %s| = %.3g\n", name, worst);
    }
    npy_free(&a);
}

static int check_dlogits(const batch *bt, const vppo_logits *x, const int32_t *ids, const uint16_t *dlogits,
                         const float *dlogp)
{
    int64_t r, j, bad = 0;
    double worst_sum = 0.0;
    for (r = 0; r < x->n_rows; ++r) {
        const uint16_t *row = dlogits + r * x->vocab;
        double sum = 0.0, abs_sum = 0.0, at_id;
        for (j = 0; j < x->vocab; ++j) {
            const double g = bf16_to_f32(row[j]);
            sum += g;
            abs_sum += fabs(g);
        }
        if (!bt->mask[r]) {                   /* padding rows: dlogp = 0, so the whole row is 0 */
            if (abs_sum != 0.0) ++bad;
            continue;
        }
        /* sum_j dlogp/dz_j = sum_j (delta_j - p_j) / T = 0: the row sums to 0 up to the
           bf16 rounding of each entry (relative 2^-9) */
        if (fabs(sum) > abs_sum * 0x1p-8 + 1e-30) ++bad;
        if (abs_sum > 0.0 && fabs(sum) / abs_sum > worst_sum) worst_sum = fabs(sum) / abs_sum;
        /* the sampled token's entry is g (1 - p_id) / T: the sign of dlogp (or 0) */
        at_id = bf16_to_f32(row[ids[r]]);
        if ((dlogp[r] > 0.0f && at_id < 0.0) || (dlogp[r] < 0.0f && at_id > 0.0)) ++bad;
    }
    printf("  check: dlogits rows of padding are 0, each row sums to 0 (worst |sum|/sum|.| %.2e, bf16 rounding),\n"
           "         the sampled token's entry has the sign of dlogp%s\n", worst_sum, bad ? ": FAILED" : "");
    return bad != 0;
}

static int run_logits(const char *dir, int check, float temperature)
{
    batch bt;
    npy_array ids_a, cur_a, old_a, aug_a;
    vppo_logits cur, old, aug;
    vppo_grad_out grad;
    step_buffers sb;
    outputs o;
    vppo_config cfg = vppo_config_default();
    vppo_status st;
    float *logp = NULL, *logp_old = NULL, *lse = NULL;
    uint16_t *dlogits = NULL;
    int64_t t, n_inf = 0;
    int rc = 1;
    char expected[64];

    memset(&ids_a, 0, sizeof ids_a); memset(&cur_a, 0, sizeof cur_a);
    memset(&old_a, 0, sizeof old_a); memset(&aug_a, 0, sizeof aug_a);
    memset(&o, 0, sizeof o);
    memset(&sb, 0, sizeof sb);
    if (load_batch(&bt, dir)) goto done;
    snprintf(expected, sizeof expected, "(%lld, %lld) as mask.npy", (long long)bt.B, (long long)bt.L);
    if (load(dir, "ids.npy", NPY_DT_I4, NPY_DT_I8, 2, &ids_a)) goto done;
    if (!same_shape(&ids_a, &bt.mask_a)) { shape_mismatch(dir, "ids.npy", &ids_a, expected); goto done; }
    for (t = 0; t < bt.N; ++t)            /* padding ids may be anything (HF uses -100): use 0 there */
        if (!bt.mask[t]) ((int32_t *)ids_a.data)[t] = 0;
    if (load_logits(dir, "logits.npy", bt.N, temperature, &cur_a, &cur)) goto done;
    if (load_logits(dir, "logits_old.npy", bt.N, temperature, &old_a, &old)) goto done;
    if (load_logits(dir, "logits_aug.npy", bt.N, temperature, &aug_a, &aug)) goto done;
    if (old.vocab != cur.vocab || aug.vocab != cur.vocab) {
        fprintf(stderr, "%s: %s: the three logits files must have the same vocabulary (%lld, %lld, %lld)\n",
                program, dir, (long long)cur.vocab, (long long)old.vocab, (long long)aug.vocab);
        goto done;
    }

    printf("engine_step logits: %lld responses x %lld positions, vocabulary %lld (bf16), temperature %g, from %s\n",
           (long long)bt.B, (long long)bt.L, (long long)cur.vocab, (double)temperature, dir);
    alloc_step(&sb, &bt);
    logp = (float *)xcalloc((size_t)bt.N, sizeof(float));
    logp_old = (float *)xcalloc((size_t)bt.N, sizeof(float));
    lse = (float *)xcalloc((size_t)bt.N, sizeof(float));
    dlogits = (uint16_t *)xcalloc((size_t)(bt.N * cur.vocab), sizeof(uint16_t));

    /* 1. token perception, paper Eq. 3: KL(pi_old(.|I) || pi_old(.|I')) per position.
          It is +inf where the perturbed policy rules out a token the original allows;
          dependencies must be finite for TAS, so it is capped at 10 (the cap of the
          released code's K3 estimator). Padding rows are computed too and ignored. */
    st = vppo_dependency_logits(&old, &aug, VPPO_DIV_KL, sb.dep);
    if (st == VPPO_ERR_INDEX || st == VPPO_ERR_NONFINITE || st == VPPO_ERR_PARAM) {
        fprintf(stderr, "%s: %s/logits_old.npy or logits_aug.npy: %s (NaN or +inf logits, or a row of only -inf)\n",
                program, dir, vppo_status_string(st));
        goto done;
    }
    if (st != VPPO_OK) { vppo_failed("vppo_dependency_logits", st); goto done; }
    for (t = 0; t < bt.N; ++t)
        if (!(sb.dep[t] <= 10.0f)) { sb.dep[t] = 10.0f; n_inf += bt.mask[t] != 0; }

    /* 2. log-probabilities of the sampled tokens: current policy (keeping lse for the
          backward) and rollout policy. */
    st = vppo_logprobs(&cur, (const int32_t *)ids_a.data, logp, lse, NULL);
    if (st == VPPO_OK) st = vppo_logprobs(&old, (const int32_t *)ids_a.data, logp_old, NULL, NULL);
    if (st == VPPO_ERR_INDEX) {
        fprintf(stderr, "%s: %s/ids.npy: a token id outside [0, %lld)\n", program, dir, (long long)cur.vocab);
        goto done;
    }
    if (st != VPPO_OK) { vppo_failed("vppo_logprobs", st); goto done; }
    compare_with_file(dir, "logp.npy", &bt, logp);
    compare_with_file(dir, "logp_old.npy", &bt, logp_old);

    /* 3. advantages, TAS and TGF on that dependency (vppo_prepare with dep_in), then the
          clipped loss with its gradient dloss/dlogp. */
    if (group_advantages(&bt, &sb, dir)) goto done;
    st = vppo_prepare(&cfg, &bt.seqs, NULL, NULL, sb.dep, sb.adv_seq, NULL, &sb.p);
    if (st != VPPO_OK) { vppo_failed("vppo_prepare", st); goto done; }
    st = vppo_policy_loss(&cfg.loss, &bt.seqs, logp, logp_old, NULL, sb.adv, sb.select, NULL, sb.dlogp, &sb.out);
    if (st != VPPO_OK) { vppo_failed("vppo_policy_loss", st); goto done; }
    if (n_inf) printf("  %lld response tokens had KL above 10 (or +inf), capped at 10\n", (long long)n_inf);
    print_step(&bt, &sb, "KL");

    /* 4. through the softmax: dloss/dz = (1/T) dlogp (onehot(id) - p), written as bf16. */
    grad.data = dlogits;
    grad.dtype = VPPO_BF16;
    grad.row_stride = cur.vocab;
    st = vppo_logprobs_backward(&cur, (const int32_t *)ids_a.data, lse, NULL, sb.dlogp, NULL, &grad);
    if (st != VPPO_OK) { vppo_failed("vppo_logprobs_backward", st); goto done; }

    if (write_step(&o, dir, "logits", &bt, &sb)) goto done;
    if (write_output(&o, dir, "logits", "dlogits", NPY_DT_U2, 2, bt.N, cur.vocab, dlogits)) goto done;
    rc = 0;
    if (check)
        rc = (check_round_trip(&o, dir) + check_invariants(&bt, &sb, &cfg) +
              check_dlogits(&bt, &cur, (const int32_t *)ids_a.data, dlogits, sb.dlogp)) != 0;
done:
    free(logp); free(logp_old); free(lse); free(dlogits);
    npy_free(&ids_a); npy_free(&cur_a); npy_free(&old_a); npy_free(&aug_a);
    free_step(&sb);
    free_batch(&bt);
    return rc;
}

/* ------------------------------------------------------------------ make-inputs */

typedef struct gen_params { int64_t prompts, rollouts, len, vocab; uint64_t seed; } gen_params;

/* A batch that looks like a VLM rollout: the rollout policy's logits are random with a
   few likely tokens; the perturbed image moves the logits of "visual" tokens (30% of
   them) a lot and the others a little; the current policy is the rollout policy after a
   few optimiser steps (a small change). Tokens are sampled from the rollout policy.
   Log-probabilities are computed from the bf16 logits with vppo_logprobs, so the two
   modes see the same numbers. Padding positions hold garbage logits, id 0 and logp 0. */
static int make_inputs(const char *dir, const gen_params *gp)
{
    const int64_t B = gp->prompts * gp->rollouts, L = gp->len, V = gp->vocab, N = B * L;
    const uint64_t s = gp->seed * 16;
    uint16_t *cur = (uint16_t *)xcalloc((size_t)(N * V), 2), *old = (uint16_t *)xcalloc((size_t)(N * V), 2),
             *aug = (uint16_t *)xcalloc((size_t)(N * V), 2);
    float *logp = (float *)xcalloc((size_t)N, 4), *logp_old = (float *)xcalloc((size_t)N, 4),
          *logp_aug = (float *)xcalloc((size_t)N, 4), *rewards = (float *)xcalloc((size_t)B, 4);
    double *prob = (double *)xcalloc((size_t)V, sizeof(double));
    int32_t *ids = (int32_t *)xcalloc((size_t)N, 4);
    int64_t *group = (int64_t *)xcalloc((size_t)B, 8), b, t, j;
    uint8_t *mask = (uint8_t *)xcalloc((size_t)N, 1);
    int64_t shape2[2], shape1[1];
    vppo_logits x;
    vppo_status st;
    int rc = 1;
    char path[MAX_PATH], err[ERR_SIZE];

    if (make_dir(dir) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s: cannot create the directory: %s\n", program, dir, strerror(errno));
        goto done;
    }
    for (b = 0; b < B; ++b) {
        const int64_t lo = L / 4 > 0 ? L / 4 : 1;
        const int64_t n = lo + (int64_t)(vppo_uniform(s + 1, (uint64_t)b) * (double)(L - lo + 1));
        group[b] = b / gp->rollouts;
        rewards[b] = vppo_uniform(s + 2, (uint64_t)b) < 0.5 ? 1.0f : 0.0f;
        if (b % gp->rollouts == 0) rewards[b] = 1.0f;      /* no prompt all right or all wrong */
        if (b % gp->rollouts == 1) rewards[b] = 0.0f;
        for (t = 0; t < L; ++t) mask[b * L + t] = (uint8_t)(t < n);
    }
    for (t = 0; t < N; ++t) {
        const int visual = vppo_uniform(s + 3, (uint64_t)t) < 0.3;
        const double shift = visual ? 1.0 + 3.0 * vppo_uniform(s + 4, (uint64_t)t) : 0.1;
        const int64_t peak = (int64_t)(vppo_uniform(s + 5, (uint64_t)t) * (double)V);
        double zmax = -1e300, sum = 0.0, u;
        for (j = 0; j < V; ++j) {
            const uint64_t i = (uint64_t)(t * V + j);
            const float z = (float)(1.5 * normal(s + 6, i) + (j == peak ? 6.0 : 0.0));
            old[t * V + j] = f32_to_bf16(z);
            aug[t * V + j] = f32_to_bf16((float)(z + shift * normal(s + 7, i)));
            cur[t * V + j] = f32_to_bf16((float)(z + 0.25 * normal(s + 8, i)));
        }
        /* o_t ~ pi_old(.|I): inverse CDF of the softmax of the stored (bf16) logits */
        for (j = 0; j < V; ++j) if (bf16_to_f32(old[t * V + j]) > zmax) zmax = bf16_to_f32(old[t * V + j]);
        for (j = 0; j < V; ++j) sum += prob[j] = exp(bf16_to_f32(old[t * V + j]) - zmax);
        u = vppo_uniform(s + 9, (uint64_t)t) * sum;
        for (j = 0; j < V - 1 && u >= prob[j]; ++j) u -= prob[j];
        ids[t] = mask[t] ? (int32_t)j : 0;
    }
    x.dtype = VPPO_BF16; x.n_rows = N; x.vocab = V; x.row_stride = V; x.temperature = 1.0f;
    x.data = cur; st = vppo_logprobs(&x, ids, logp, NULL, NULL);
    if (st == VPPO_OK) { x.data = old; st = vppo_logprobs(&x, ids, logp_old, NULL, NULL); }
    if (st == VPPO_OK) { x.data = aug; st = vppo_logprobs(&x, ids, logp_aug, NULL, NULL); }
    if (st != VPPO_OK) { vppo_failed("vppo_logprobs", st); goto done; }
    for (t = 0; t < N; ++t)
        if (!mask[t]) logp[t] = logp_old[t] = logp_aug[t] = 0.0f;

    shape2[0] = B; shape2[1] = L; shape1[0] = B;
#define WRITE(name, dt, nd, shape, data) \
    do { join(path, dir, name); \
         if (npy_write(path, dt, nd, shape, data, err, sizeof err) != 0) { fail("%s%s", err, ""); goto done; } } while (0)
    WRITE("mask.npy", NPY_DT_U1, 2, shape2, mask);
    WRITE("rewards.npy", NPY_DT_F4, 1, shape1, rewards);
    WRITE("group.npy", NPY_DT_I8, 1, shape1, group);
    WRITE("logp.npy", NPY_DT_F4, 2, shape2, logp);
    WRITE("logp_old.npy", NPY_DT_F4, 2, shape2, logp_old);
    WRITE("logp_aug.npy", NPY_DT_F4, 2, shape2, logp_aug);
    WRITE("ids.npy", NPY_DT_I4, 2, shape2, ids);
    shape2[0] = N; shape2[1] = V;
    WRITE("logits.npy", NPY_DT_U2, 2, shape2, cur);
    WRITE("logits_old.npy", NPY_DT_U2, 2, shape2, old);
    WRITE("logits_aug.npy", NPY_DT_U2, 2, shape2, aug);
#undef WRITE
    printf("engine_step make-inputs: wrote %s/{mask,rewards,group,logp,logp_old,logp_aug,ids,logits,logits_old,"
           "logits_aug}.npy\n  %lld prompts x %lld rollouts = %lld responses of at most %lld tokens, vocabulary %lld, "
           "seed %llu\n", dir, (long long)gp->prompts, (long long)gp->rollouts, (long long)B, (long long)L,
           (long long)V, (unsigned long long)gp->seed);
    rc = 0;
done:
    free(cur); free(old); free(aug); free(logp); free(logp_old); free(logp_aug); free(rewards);
    free(prob); free(ids); free(group); free(mask);
    return rc;
}

/* ------------------------------------------------------------------ main */

/* An integer option value in [1, max] into *out; 0, or 1 with a message. */
static int parse_count(const char *opt, const char *text, int64_t max, int64_t *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < 1 || v > max) {
        fprintf(stderr, "%s: %s needs an integer in [1, %lld], not '%s'\n", program, opt, (long long)max, text);
        return 1;
    }
    *out = (int64_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode, *dir;
    gen_params gp;
    int check = 0, i, k, is_make, is_logits;
    float temperature = 1.0f;
    /* the count options of make-inputs, with their largest value */
    struct { const char *name; int64_t max; int64_t *to; } counts[4];

    if (argc < 3) { usage(); return 2; }
    mode = argv[1];
    dir = argv[2];
    is_make = strcmp(mode, "make-inputs") == 0;
    is_logits = strcmp(mode, "logits") == 0;
    if (!is_make && !is_logits && strcmp(mode, "sampled") != 0) {
        fprintf(stderr, "%s: unknown mode '%s'\n\n", program, mode);
        usage();
        return 2;
    }
    gp.prompts = 2; gp.rollouts = 4; gp.len = 48; gp.vocab = 512; gp.seed = 1;
    counts[0].name = "--prompts";  counts[0].max = 1 << 20; counts[0].to = &gp.prompts;
    counts[1].name = "--rollouts"; counts[1].max = 1 << 16; counts[1].to = &gp.rollouts;
    counts[2].name = "--len";      counts[2].max = 1 << 24; counts[2].to = &gp.len;
    counts[3].name = "--vocab";    counts[3].max = 1 << 24; counts[3].to = &gp.vocab;
    for (i = 3; i < argc; ++i) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!is_make && strcmp(opt, "--check") == 0) { check = 1; continue; }
        for (k = 0; k < 4 && strcmp(opt, counts[k].name) != 0; ++k) {}
        if (!val) {
            /* every other option takes a value */
        } else if (is_make && k < 4) {
            if (parse_count(opt, val, counts[k].max, counts[k].to)) return 2;
            ++i; continue;
        } else if (is_make && strcmp(opt, "--seed") == 0) {
            errno = 0;
            gp.seed = strtoull(val, &end, 10);
            if (errno || *end || end == val || val[0] == '-') {
                fprintf(stderr, "%s: --seed needs a non-negative integer, not '%s'\n", program, val);
                return 2;
            }
            ++i; continue;
        } else if (is_logits && strcmp(opt, "--temperature") == 0) {
            temperature = strtof(val, &end);
            if (*end || end == val || !(temperature > 0.0f && temperature <= FLT_MAX)) {
                fprintf(stderr, "%s: --temperature needs a positive number, not '%s'\n", program, val);
                return 2;
            }
            ++i; continue;
        }
        fprintf(stderr, "%s: unknown option for %s, or a missing value: '%s'\n\n", program, mode, opt);
        usage();
        return 2;
    }
    if (is_make) {
        if (gp.rollouts < 2) {
            fprintf(stderr, "%s: --rollouts must be at least 2 (GRPO needs a baseline)\n", program);
            return 2;
        }
        if ((double)gp.prompts * (double)gp.rollouts * (double)gp.len * (double)gp.vocab > 2147483648.0) {
            fprintf(stderr, "%s: B*L*V is more than 2^31 logits per file, more than this example is meant for\n",
                    program);
            return 2;
        }
        return make_inputs(dir, &gp);
    }
    return is_logits ? run_logits(dir, check, temperature) : run_sampled(dir, check);
}
