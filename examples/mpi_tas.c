/* examples/mpi_tas.c - data-parallel Trajectory-level Advantage Shaping with MPI.

   In data-parallel training every rank holds a slice of the rollout batch. TAS scales
   each response's advantage by its mean visual dependency, min-max normalised over "the
   batch" - and which batch that is matters: the released code normalises over each
   device's slice (its all-reduce is commented out), the paper means the whole batch.
   vppo_tas_stats {double min, max; int64_t n} is built for the global version: reduce
   min with MPI_MIN, max with MPI_MAX and n with MPI_SUM, then pass the result to
   vppo_prepare / vppo_tas_scales on every rank.

       make mpi-demo        (mpicc; runs mpirun -np 2)
       mpicc -std=c99 -O2 examples/mpi_tas.c -lm -o mpi_tas && mpirun -np 3 ./mpi_tas [--seqs B] [--seed S]

   Every rank generates the whole batch from the seed (so that it can verify), keeps only
   its slice of responses for the data-parallel computation, and compares with the
   single-process result on the whole batch. What matches, and why:

   * LINEAR (paper Eq. 5) with all-reduced statistics: alpha_b depends only on S_b and
     the global (min, max), and S_b is computed from the same tokens in the same order
     on one rank as in one process: the scales are equal BIT FOR BIT.
   * MEAN_PRESERVING (the default, released code) divides by mu, the mean of
     x_b = (S_b - min)/(max - min) over the sequences *of the call*. With global min/max
     but one call per rank, mu is per rank, so the scales differ from the whole-batch
     ones (the mean scale is 1 on each rank rather than over the batch; the released
     code does the same per micro-batch). To get the whole batch's mu, all-reduce the
     sum of x_b as well (a second reduction: x needs the global min/max first) and use
     mu = sum / n. That is the formula of docs/spec.md §5 with the global mu, computed here (the
     library has no mu input); it equals the whole-batch scales up to the association
     of the double sum of x across ranks - at most one float ulp of alpha, and with 2
     ranks in practice bit for bit. This program counts and prints the differing bits.
   * Per-rank statistics (the released code): both modes differ; the table shows by how much.
   * The whole step (LINEAR, global statistics, denom = valid tokens over all ranks):
     each rank's dloss/dlogp equals the single-process one bit for bit, and the sum over
     ranks of the per-rank losses equals the single-process loss up to rounding of the
     final sum.

   Exit status 0 when every "must match" above holds, 1 otherwise. */
#define VPPO_IMPLEMENTATION
#include "../vppo.h"

#include <mpi.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define L_MAX 64                 /* positions per response (padded) */
#define GROUP 4                  /* rollouts per prompt */

typedef struct batch {
    int64_t B, N;                /* responses, B * L_MAX positions */
    int64_t *offsets;            /* [B+1] */
    uint8_t *mask;               /* [N] */
    float *logp, *logp_old, *logp_aug, *adv_seq;
    vppo_seqs seqs;
} batch;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) { fprintf(stderr, "mpi_tas: out of memory\n"); MPI_Abort(MPI_COMM_WORLD, 1); }
    return p;
}

static void alloc_batch(batch *bt, int64_t B)
{
    bt->B = B;
    bt->N = B * L_MAX;
    bt->offsets = (int64_t *)xcalloc((size_t)B + 1, sizeof(int64_t));
    bt->mask = (uint8_t *)xcalloc((size_t)bt->N, 1);
    bt->logp = (float *)xcalloc((size_t)bt->N, sizeof(float));
    bt->logp_old = (float *)xcalloc((size_t)bt->N, sizeof(float));
    bt->logp_aug = (float *)xcalloc((size_t)bt->N, sizeof(float));
    bt->adv_seq = (float *)xcalloc((size_t)B, sizeof(float));
    vppo_offsets_uniform(bt->offsets, B, L_MAX);
    bt->seqs.n_seqs = B;
    bt->seqs.offsets = bt->offsets;
    bt->seqs.mask = bt->mask;
}

static void free_batch(batch *bt)
{
    free(bt->offsets); free(bt->mask); free(bt->logp); free(bt->logp_old); free(bt->logp_aug); free(bt->adv_seq);
}

/* The whole batch, a pure function of the seed: responses of 8..64 tokens (response 3
   is empty, to show that it keeps scale 1), a response-level "visual" strength so that
   trajectory dependencies spread, GRPO advantages over groups of 4. Group advantages
   need every response of a prompt: compute them before sharding (as EasyR1's driver
   does) or keep each prompt's rollouts on one rank. */
static int make_batch(batch *bt, int64_t B, uint64_t seed)
{
    int64_t b, t, groups_offsets[1024 + 1];
    float rewards[4096];
    vppo_seqs groups;
    alloc_batch(bt, B);
    for (b = 0; b < B; ++b) {
        const int64_t len = b == 3 ? 0 : 8 + (int64_t)(vppo_uniform(seed + 1, (uint64_t)b) * (L_MAX - 8 + 1));
        const double strength = 0.2 + 2.0 * vppo_uniform(seed + 2, (uint64_t)b);
        rewards[b] = vppo_uniform(seed + 3, (uint64_t)b) < 0.5 ? 1.0f : 0.0f;
        if (b % GROUP == 0) rewards[b] = 1.0f;
        if (b % GROUP == 1) rewards[b] = 0.0f;
        for (t = 0; t < L_MAX; ++t) {
            const int64_t i = b * L_MAX + t;
            const int visual = vppo_uniform(seed + 4, (uint64_t)i) < 0.3;
            bt->mask[i] = (uint8_t)(t < len);
            bt->logp_old[i] = (float)(-0.05 - 2.0 * vppo_uniform(seed + 5, (uint64_t)i));
            bt->logp_aug[i] = bt->logp_old[i] -
                (float)((visual ? strength : 0.02) * (0.2 + vppo_uniform(seed + 6, (uint64_t)i)));
            bt->logp[i] = bt->logp_old[i] + (float)(0.4 * (vppo_uniform(seed + 7, (uint64_t)i) - 0.5));
        }
    }
    vppo_offsets_uniform(groups_offsets, B / GROUP, GROUP);
    groups.n_seqs = B / GROUP;
    groups.offsets = groups_offsets;
    groups.mask = NULL;
    return vppo_group_advantages(&groups, rewards, VPPO_ADV_GRPO, 1e-6f, bt->adv_seq) != VPPO_OK;
}

/* Responses [b0, b1) of the whole batch as this rank's own batch (what a data-parallel
   rank would hold: its slice only, offsets starting at 0). */
static void slice_batch(batch *local, const batch *whole, int64_t b0, int64_t b1)
{
    const size_t n = (size_t)((b1 - b0) * L_MAX), at = (size_t)(b0 * L_MAX);
    alloc_batch(local, b1 - b0);
    memcpy(local->mask, whole->mask + at, n);
    memcpy(local->logp, whole->logp + at, n * sizeof(float));
    memcpy(local->logp_old, whole->logp_old + at, n * sizeof(float));
    memcpy(local->logp_aug, whole->logp_aug + at, n * sizeof(float));
    memcpy(local->adv_seq, whole->adv_seq + b0, (size_t)(b1 - b0) * sizeof(float));
}

/* The MPI all-reduce of vppo_tas_stats: one operation per field. */
static void allreduce_stats(const vppo_tas_stats *local, vppo_tas_stats *global)
{
    MPI_Allreduce(&local->min, &global->min, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&local->max, &global->max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&local->n, &global->n, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
}

/* MEAN_PRESERVING with the mean of x over all ranks (docs/spec.md §5 with a global mu): a second
   all-reduce for the sum of x_b, which needs the global min and max first. */
static void scales_global_mu(const vppo_tas_config *cfg, const vppo_tas_stats *g, const float *traj_dep,
                             const int64_t *count, int64_t n_seqs, float *scale)
{
    const double range = g->max - g->min;
    double x_sum = 0.0, x_sum_all = 0.0, mu;
    int64_t b;
    for (b = 0; b < n_seqs; ++b) scale[b] = 1.0f;
    for (b = 0; b < n_seqs; ++b)
        if (count[b] > 0 && range > 1e-6) {
            const double x = (traj_dep[b] - g->min) / range;
            x_sum += x < 0.0 ? 0.0 : (x > 1.0 ? 1.0 : x);
        }
    MPI_Allreduce(&x_sum, &x_sum_all, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (g->n < 2 || range <= 1e-6) return;
    mu = x_sum_all / (double)g->n;
    for (b = 0; b < n_seqs; ++b)
        if (count[b] > 0) {
            double x = (traj_dep[b] - g->min) / range;
            x = x < 0.0 ? 0.0 : (x > 1.0 ? 1.0 : x);
            scale[b] = (float)(cfg->beta_min + (1.0 - (double)cfg->beta_min) * x / (mu + 1e-8));
        }
}

/* Gathers each rank's [n_local] floats into whole[B] on every rank. */
static void allgather(const float *mine, int n_local, float *whole, const int *counts, const int *displs)
{
    MPI_Allgatherv(mine, n_local, MPI_FLOAT, whole, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
}

/* Compares a gathered table with the single-process one: max |diff|, how many differ in
   any bit, how many by more than one float ulp. */
static void compare(const float *got, const float *want, int64_t B, double *max_diff, int *n_bits, int *n_ulps)
{
    int64_t b;
    *max_diff = 0.0;
    *n_bits = *n_ulps = 0;
    for (b = 0; b < B; ++b) {
        const double d = fabs((double)got[b] - (double)want[b]);
        if (d > *max_diff) *max_diff = d;
        *n_bits += memcmp(&got[b], &want[b], sizeof(float)) != 0;
        *n_ulps += got[b] != want[b] && got[b] != nextafterf(want[b], 0.0f) && got[b] != nextafterf(want[b], 1e30f);
    }
}

enum { LIN_WHOLE, LIN_GLOBAL, LIN_RANK, MP_WHOLE, MP_GLOBAL_MU, MP_GLOBAL, MP_RANK, N_TABLES };

int main(int argc, char **argv)
{
    int rank, n_ranks, i, ok = 1, counts[1024], displs[1024];
    int64_t B = 16, b, b0, b1, t;
    uint64_t seed = 7;
    batch whole, local;
    vppo_tas_config lin, mp = vppo_tas_config_default();
    vppo_tas_stats st_whole, st_local, st_global;
    float *traj_whole, *traj_local, *table[N_TABLES], *mine;
    int64_t *count_whole, *count_local;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--seqs") == 0 && i + 1 < argc) B = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else {
            if (rank == 0) fprintf(stderr, "usage: mpirun -np P mpi_tas [--seqs B] [--seed S]\n");
            MPI_Finalize();
            return 2;
        }
    }
    if (B < GROUP || B % GROUP != 0 || B > 4096 || n_ranks > 1024) {
        if (rank == 0) fprintf(stderr, "mpi_tas: --seqs must be a multiple of %d in [%d, 4096], ranks <= 1024\n",
                               GROUP, GROUP);
        MPI_Finalize();
        return 2;
    }
    lin = mp;
    lin.mode = VPPO_TAS_LINEAR;

    /* ---- every rank: the whole batch (for verification) and its own slice ----------- */
    if (make_batch(&whole, B, seed)) { fprintf(stderr, "mpi_tas: group advantages failed\n"); MPI_Abort(MPI_COMM_WORLD, 1); }
    b0 = B * rank / n_ranks;
    b1 = B * (rank + 1) / n_ranks;
    slice_batch(&local, &whole, b0, b1);
    for (i = 0; i < n_ranks; ++i) {
        displs[i] = (int)(B * i / n_ranks);
        counts[i] = (int)(B * (i + 1) / n_ranks) - displs[i];
    }
    traj_whole = (float *)xcalloc((size_t)B, sizeof(float));
    count_whole = (int64_t *)xcalloc((size_t)B, sizeof(int64_t));
    traj_local = (float *)xcalloc((size_t)local.B, sizeof(float));
    count_local = (int64_t *)xcalloc((size_t)local.B, sizeof(int64_t));
    mine = (float *)xcalloc((size_t)local.B, sizeof(float));
    for (i = 0; i < N_TABLES; ++i) table[i] = (float *)xcalloc((size_t)B, sizeof(float));

    /* ---- single process, whole batch: the reference -------------------------------- */
    {
        float *dep = (float *)xcalloc((size_t)whole.N, sizeof(float));
        vppo_dependency_sampled(&whole.seqs, whole.logp_old, whole.logp_aug, VPPO_EST_K3, dep);
        vppo_seq_mean(&whole.seqs, dep, traj_whole, count_whole);
        vppo_tas_stats_compute(traj_whole, count_whole, B, &st_whole);
        vppo_tas_scales(&lin, &st_whole, traj_whole, count_whole, B, table[LIN_WHOLE]);
        vppo_tas_scales(&mp, &st_whole, traj_whole, count_whole, B, table[MP_WHOLE]);
        free(dep);
    }

    /* ---- data parallel: this rank's slice only -------------------------------------- */
    {
        float *dep = (float *)xcalloc((size_t)local.N, sizeof(float));
        vppo_dependency_sampled(&local.seqs, local.logp_old, local.logp_aug, VPPO_EST_K3, dep);
        vppo_seq_mean(&local.seqs, dep, traj_local, count_local);
        vppo_tas_stats_compute(traj_local, count_local, local.B, &st_local);
        allreduce_stats(&st_local, &st_global);                    /* MIN, MAX, SUM */
        free(dep);
    }
#define GATHER(which) allgather(mine, (int)local.B, table[which], counts, displs)
    vppo_tas_scales(&lin, &st_global, traj_local, count_local, local.B, mine); GATHER(LIN_GLOBAL);
    vppo_tas_scales(&lin, &st_local, traj_local, count_local, local.B, mine);  GATHER(LIN_RANK);
    scales_global_mu(&mp, &st_global, traj_local, count_local, local.B, mine); GATHER(MP_GLOBAL_MU);
    vppo_tas_scales(&mp, &st_global, traj_local, count_local, local.B, mine);  GATHER(MP_GLOBAL);
    vppo_tas_scales(&mp, &st_local, traj_local, count_local, local.B, mine);   GATHER(MP_RANK);
#undef GATHER

    if (rank == 0) {
        printf("mpi_tas: TAS over %lld responses on %d ranks (seed %llu); whole batch: min %.4f max %.4f n %lld\n\n",
               (long long)B, n_ranks, (unsigned long long)seed, st_whole.min, st_whole.max, (long long)st_whole.n);
        printf("                        |  LINEAR (beta 0.9..1.0)     |  MEAN_PRESERVING (beta_min 0.9)\n");
        printf("  resp rank tokens  S_b |  whole  global  per-rank    |  whole  global+mu  global  per-rank\n");
        for (b = 0; b < B && b < 32; ++b) {
            int r = 0;
            while (r + 1 < n_ranks && b >= displs[r + 1]) ++r;
            printf("  %4lld %4d %6lld %5.3f | %6.4f  %6.4f  %8.4f    | %6.4f  %9.4f  %6.4f  %8.4f\n", (long long)b, r,
                   (long long)count_whole[b], traj_whole[b], table[LIN_WHOLE][b], table[LIN_GLOBAL][b],
                   table[LIN_RANK][b], table[MP_WHOLE][b], table[MP_GLOBAL_MU][b], table[MP_GLOBAL][b],
                   table[MP_RANK][b]);
        }
        if (B > 32) printf("  ... (%lld more)\n", (long long)(B - 32));
        printf("\n  against the single process on the whole batch:        max |diff|   scales differing in any bit\n");
    }
    for (i = 0; i < N_TABLES; ++i) {
        const int ref = i < MP_WHOLE ? LIN_WHOLE : MP_WHOLE;
        double d;
        int bits, ulps;
        if (i == LIN_WHOLE || i == MP_WHOLE) continue;
        compare(table[i], table[ref], B, &d, &bits, &ulps);
        if (i == LIN_GLOBAL && bits != 0) ok = 0;                        /* must be bit for bit */
        if (i == MP_GLOBAL_MU && ulps != 0) ok = 0;                      /* at most one float ulp */
        if (rank == 0) {
            static const char *rows[] = {
                "", "LINEAR, stats all-reduced (MIN/MAX/SUM)", "LINEAR, per-rank stats (released code)", "",
                "MEAN_PRESERVING, stats and sum of x all-reduced", "MEAN_PRESERVING, stats all-reduced, mu per rank",
                "MEAN_PRESERVING, per-rank stats (released code)" };
            printf("  %-52s %10.3g   %2d of %lld%s\n", rows[i], d, bits, (long long)B,
                   i == LIN_GLOBAL ? "  (must be 0)" : i == MP_GLOBAL_MU ? "  (<= 1 ulp)" : "");
        }
    }

    /* ---- the whole step, LINEAR: prepare with the global stats, loss with the global
            token count as denominator, loss summed over ranks ---------------------------- */
    {
        vppo_config cfg = vppo_config_default();
        vppo_prepared pw, pl;
        vppo_loss_out ow, ol;
        float *w_dep = (float *)xcalloc((size_t)whole.N, 4), *w_adv = (float *)xcalloc((size_t)whole.N, 4),
              *w_dlogp = (float *)xcalloc((size_t)whole.N, 4), *w_scale = (float *)xcalloc((size_t)B, 4),
              *w_traj = (float *)xcalloc((size_t)B, 4);
        float *l_dep = (float *)xcalloc((size_t)local.N, 4), *l_adv = (float *)xcalloc((size_t)local.N, 4),
              *l_dlogp = (float *)xcalloc((size_t)local.N, 4), *l_scale = (float *)xcalloc((size_t)local.B, 4),
              *l_traj = (float *)xcalloc((size_t)local.B, 4);
        uint8_t *w_sel = (uint8_t *)xcalloc((size_t)whole.N, 1), *l_sel = (uint8_t *)xcalloc((size_t)local.N, 1);
        int64_t *w_count = (int64_t *)xcalloc((size_t)B, 8), *l_count = (int64_t *)xcalloc((size_t)local.B, 8);
        int64_t n_valid_local = 0, n_valid_all = 0, n_diff = 0, n_diff_all = 0;
        double loss_all = 0.0;
        vppo_status st;

        cfg.tas.mode = VPPO_TAS_LINEAR;
        pw.dep = w_dep; pw.traj_dep = w_traj; pw.count = w_count; pw.scale = w_scale; pw.adv = w_adv; pw.select = w_sel;
        pl.dep = l_dep; pl.traj_dep = l_traj; pl.count = l_count; pl.scale = l_scale; pl.adv = l_adv; pl.select = l_sel;
        st = vppo_step(&cfg, &whole.seqs, whole.logp, whole.logp_old, whole.logp_aug, NULL, whole.adv_seq, &pw,
                       w_dlogp, &ow);
        for (t = 0; t < local.N; ++t) n_valid_local += local.mask[t] != 0;
        MPI_Allreduce(&n_valid_local, &n_valid_all, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        cfg.loss.denom = (double)n_valid_all;   /* token-mean over all ranks' tokens */
        if (st == VPPO_OK)
            st = vppo_prepare(&cfg, &local.seqs, local.logp_old, local.logp_aug, NULL, local.adv_seq, &st_global, &pl);
        if (st == VPPO_OK)
            st = vppo_policy_loss(&cfg.loss, &local.seqs, local.logp, local.logp_old, NULL, pl.adv, pl.select, NULL,
                                  l_dlogp, &ol);
        if (st != VPPO_OK) {
            fprintf(stderr, "mpi_tas: rank %d: %s\n", rank, vppo_status_string(st));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        for (t = 0; t < local.N; ++t) n_diff += memcmp(&l_dlogp[t], &w_dlogp[b0 * L_MAX + t], sizeof(float)) != 0;
        MPI_Allreduce(&n_diff, &n_diff_all, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(&ol.loss, &loss_all, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        if (n_diff_all != 0 || fabs(loss_all - ow.loss) > 1e-12 * (1.0 + fabs(ow.loss))) ok = 0;
        if (rank == 0)
            printf("\n  whole step, LINEAR TAS with all-reduced stats, loss denom = %lld tokens of all ranks:\n"
                   "    dloss/dlogp: %lld of %lld positions differ in any bit from the single process (must be 0)\n"
                   "    loss: sum over ranks %.12f, single process %.12f, |diff| %.2g (order of the final sum)\n",
                   (long long)n_valid_all, (long long)n_diff_all, (long long)whole.N, loss_all, ow.loss,
                   fabs(loss_all - ow.loss));
        free(w_dep); free(w_adv); free(w_dlogp); free(w_scale); free(w_traj); free(w_sel); free(w_count);
        free(l_dep); free(l_adv); free(l_dlogp); free(l_scale); free(l_traj); free(l_sel); free(l_count);
    }

    if (rank == 0) printf("\nmpi_tas: %s\n", ok ? "every must-match holds" : "FAILED");
    for (i = 0; i < N_TABLES; ++i) free(table[i]);
    free(traj_whole); free(count_whole); free(traj_local); free(count_local); free(mine);
    free_batch(&whole);
    free_batch(&local);
    MPI_Finalize();
    return ok ? 0 : 1;
}
