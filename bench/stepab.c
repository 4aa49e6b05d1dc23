/* stepab.c - vppo_step of two builds of vppo.h side by side in one process (make bench-step-ab).

   Compiled three times like abcompare.c: AB_SIDE=base (AB_HEADER: BITCHECK_BASE's vppo.h) and
   AB_SIDE=new (AB_HEADER: ./vppo.h), each with VPPODEF static, and AB_MAIN for the driver.
   The driver times, at 1024 x 2048 tokens with vppo_config_default (inputs like those of
   bench.c's step table, no mask), calls alternating base, new, new, base, ... and prints the median of each side:
     step    the whole vppo_step
     check   vppo_step with a NaN in logp at the last token: the argument and data checks
             only (it returns VPPO_ERR_NONFINITE after the one pass over the data)
     step+m, check+m  the same with a mask (every 8th token masked out)
     prep, prep+m  vppo_prepare alone (the step's first half: dependency, TAS, advantages, top-k)
     memcpy  one memcpy of the inputs (bench.c's "memcpy of the inputs")
   at 1 thread, and at 2 when built with OpenMP. Nothing is asserted: speed is measured here. */
#include <stdint.h>
#include <stddef.h>

typedef struct sab_data {
    const float *logp, *logp_old, *logp_aug, *logp_bad, *adv_seq;
    int64_t B, L;
    float *dep, *traj, *scale, *adv, *dlogp;
    int64_t *count;
    unsigned char *select;
    const unsigned char *mask;    /* the masked rows' mask (every 8th token out) */
} sab_data;

#ifdef AB_SIDE
#define VPPODEF static
#define VPPO_IMPLEMENTATION
#include AB_HEADER                /* the side's vppo.h (bench.mk names both) */
#define SAB_CAT2(a, b) a##b
#define SAB_CAT(a, b) SAB_CAT2(a, b)

/* One vppo_step on d (what: bit 0, logp with a NaN at the last token; bit 1, with d->mask;
   bit 2, vppo_prepare alone instead of the step); its status. */
int SAB_CAT(sab_step_, AB_SIDE)(const sab_data *d, int what)
{
    static int64_t off[4097];
    vppo_config cfg = vppo_config_default();
    vppo_seqs s;
    vppo_prepared p;
    vppo_loss_out out;
    vppo_offsets_uniform(off, d->B, d->L);
    s.n_seqs = d->B; s.offsets = off; s.mask = what & 2 ? d->mask : NULL;
    memset(&p, 0, sizeof p);
    p.dep = d->dep; p.traj_dep = d->traj; p.count = d->count; p.scale = d->scale; p.adv = d->adv;
    p.select = d->select;
    if (what & 4) return (int)vppo_prepare(&cfg, &s, d->logp_old, d->logp_aug, NULL, d->adv_seq, NULL, &p);
    return (int)vppo_step(&cfg, &s, what & 1 ? d->logp_bad : d->logp, d->logp_old, d->logp_aug, NULL, d->adv_seq,
                          &p, d->dlogp, &out);
}
#endif /* AB_SIDE */

#ifdef AB_MAIN
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ab_main.h"
#ifdef _OPENMP
#include <omp.h>
#endif
int sab_step_base(const sab_data *d, int what);
int sab_step_new(const sab_data *d, int what);

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static double unif(void)
{
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    return p;
}

int main(int argc, char **argv)
{
    const int reps = argc > 1 ? atoi(argv[1]) : 11;
    const int64_t B = 1024, L = 2048, N = B * L;
    sab_data d;
    float *logp = (float *)xmalloc((size_t)N * 4), *old = (float *)xmalloc((size_t)N * 4);
    float *aug = (float *)xmalloc((size_t)N * 4), *bad = (float *)xmalloc((size_t)N * 4);
    float *adv_seq = (float *)xmalloc((size_t)B * 4);
    const size_t in_bytes = (size_t)N * 12 + (size_t)B * 4 + (size_t)(B + 1) * 8;
    unsigned char *copy = (unsigned char *)xmalloc(in_bytes), *mask = (unsigned char *)xmalloc((size_t)N);
    static const char *names[] = { "step", "check", "step+m", "check+m", "prep", "", "prep+m" };
    static const int whats[] = { 0, 1, 2, 3, 4, 6 };
    int nthr = 1, ti, wi, r;
    int64_t t;
    for (t = 0; t < N; ++t) {
        const double lo = log(0.01 + 0.99 * unif());
        old[t] = (float)lo;
        logp[t] = (float)(lo + 0.02 * (unif() - 0.5));
        aug[t] = (float)(lo + 0.3 * (unif() - 0.5));
    }
    for (t = 0; t < N; ++t) mask[t] = (unsigned char)(t % 8 != 5);
    memcpy(bad, logp, (size_t)N * 4);
    bad[N - 1] = NAN;
    for (t = 0; t < B; ++t) adv_seq[t] = (t % 3) ? 0.5f : -1.0f;
    memset(&d, 0, sizeof d);
    d.logp = logp; d.logp_old = old; d.logp_aug = aug; d.logp_bad = bad; d.adv_seq = adv_seq; d.B = B; d.L = L;
    d.mask = mask;
    d.dep = (float *)xmalloc((size_t)N * 4); d.adv = (float *)xmalloc((size_t)N * 4);
    d.dlogp = (float *)xmalloc((size_t)N * 4); d.select = (unsigned char *)xmalloc((size_t)N);
    d.traj = (float *)xmalloc((size_t)B * 4); d.scale = (float *)xmalloc((size_t)B * 4);
    d.count = (int64_t *)xmalloc((size_t)B * 8);
    memset(copy, 1, in_bytes);
    if (sab_step_base(&d, 0) != 0 || sab_step_new(&d, 0) != 0 || sab_step_base(&d, 1) == 0 || sab_step_new(&d, 1) == 0 ||
        sab_step_base(&d, 3) == 0 || sab_step_new(&d, 3) == 0 || sab_step_base(&d, 2) != 0 ||
        sab_step_new(&d, 2) != 0 || sab_step_base(&d, 4) != 0 || sab_step_new(&d, 6) != 0) {
        printf("unexpected status\n");
        return 1;
    }
#ifdef _OPENMP
    nthr = 2;
#endif
    printf("## vppo_step, base vs new (one process, alternating calls; median of %d each)\n\n", reps);
    printf("| what    | thr | base ms | new ms | new/base | new x memcpy |\n|---|--:|--:|--:|--:|--:|\n");
    {
        double *tc = (double *)xmalloc((size_t)reps * sizeof(double)), mc;
        for (r = 0; r < reps; ++r) {
            const double t0 = now();
            memcpy(copy, logp, (size_t)N * 4);
            memcpy(copy + (size_t)N * 4, old, (size_t)N * 4);
            memcpy(copy + (size_t)N * 8, aug, (size_t)N * 4);
            memcpy(copy + (size_t)N * 12, adv_seq, (size_t)B * 4);
            tc[r] = now() - t0;
        }
        mc = median(tc, reps);
        printf("| memcpy  |   1 | %7.3f | %6.3f |     1.00 |         1.00 |\n", mc * 1e3, mc * 1e3);
        for (ti = 1; ti <= nthr; ++ti) {
#ifdef _OPENMP
            omp_set_num_threads(ti);
#endif
            for (wi = 0; wi < (int)(sizeof whats / sizeof whats[0]); ++wi) {
                const int w = whats[wi];
                double *tb = (double *)xmalloc((size_t)reps * sizeof(double));
                double *tn = (double *)xmalloc((size_t)reps * sizeof(double)), mb, mn;
                (void)sab_step_base(&d, w); (void)sab_step_new(&d, w);   /* warm */
                for (r = 0; r < reps; ++r) {
                    double t0;
                    if (r % 2 == 0) {
                        t0 = now(); (void)sab_step_base(&d, w); tb[r] = now() - t0;
                        t0 = now(); (void)sab_step_new(&d, w); tn[r] = now() - t0;
                    } else {
                        t0 = now(); (void)sab_step_new(&d, w); tn[r] = now() - t0;
                        t0 = now(); (void)sab_step_base(&d, w); tb[r] = now() - t0;
                    }
                }
                mb = median(tb, reps); mn = median(tn, reps);
                printf("| %-7s | %3d | %7.3f | %6.3f | %8.3f | %12.2f |\n", names[w], ti, mb * 1e3,
                       mn * 1e3, mn / mb, mn / mc);
                free(tb); free(tn);
            }
        }
        free(tc);
    }
    printf("\ncheck: vppo_step with a NaN in logp at the last token (arguments and the data pass only);\n"
           "+m: with a mask (every 8th token masked out); prep: vppo_prepare alone.\n");
    return 0;
}
#endif /* AB_MAIN */
