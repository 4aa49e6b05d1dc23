/* topk_ab.c - vppo_topk_mask of two builds of vppo.h side by side in one process
   (make bench-ab-topk).

   Compiled three times like abcompare.c: AB_SIDE=base and AB_SIDE=new, each against the
   header AB_HEADER (main's vppo.h by default and ./vppo.h, see bench.mk) with VPPODEF
   static, and AB_MAIN for the driver. For each ISA, thread count and case (1024 x 2048 K3-like
   scores at ratio 0.4 and 1.0, with and without a mask) the driver alternates the sides
   call by call (base, new, new, base, ...), takes the median of each side, prints
   new/base, and counts the positions and info fields where the two outputs differ (they
   must not). Nothing is asserted: speed is measured here, never tested. */
#include <stdint.h>
#include <stddef.h>

typedef struct ab_topk {
    int64_t n_seqs;
    const int64_t *offsets;
    const uint8_t *mask;
    const float *score;
    double ratio;
    uint8_t *select;
    double info[5];   /* n_valid, n_selected, threshold_mean, mean_selected, mean_rejected */
} ab_topk;

#ifdef AB_SIDE   /* one side: AB_HEADER (bench.mk names main's copy or ./vppo.h), its names prefixed */
#define VPPODEF static
#define VPPO_IMPLEMENTATION
#include AB_HEADER
#define TOPK_NAME_(what, side) topk_##what##_##side
#define TOPK_NAME(what, side) TOPK_NAME_(what, side)

int TOPK_NAME(select, AB_SIDE)(int isa) { return vppo_isa_select((vppo_isa)isa) != VPPO_OK; }

int TOPK_NAME(call, AB_SIDE)(ab_topk *a)
{
    vppo_seqs s;
    vppo_topk_info info;
    vppo_status st;
    s.n_seqs = a->n_seqs; s.offsets = a->offsets; s.mask = a->mask;
    st = vppo_topk_mask(&s, a->score, a->ratio, a->select, &info);
    a->info[0] = (double)info.n_valid; a->info[1] = (double)info.n_selected;
    a->info[2] = info.threshold_mean; a->info[3] = info.mean_selected; a->info[4] = info.mean_rejected;
    return (int)st;
}
#endif

#ifdef AB_MAIN
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ab_main.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int topk_select_base(int isa);
int topk_select_new(int isa);
int topk_call_base(ab_topk *a);
int topk_call_new(ab_topk *a);

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static double unif(void)
{
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}

int main(int argc, char **argv)
{
    static const char *isa_names[] = { "scalar", "sse2", "avx2", "avx512" };
    const int reps = argc > 1 ? atoi(argv[1]) : 11;
    const int64_t B = 1024, L = 2048, N = B * L;
    int64_t *off = (int64_t *)malloc((size_t)(B + 1) * sizeof *off), b, t;
    float *score = (float *)malloc((size_t)N * sizeof *score);
    uint8_t *mask = (uint8_t *)malloc((size_t)N), *sel_base = (uint8_t *)malloc((size_t)N);
    uint8_t *sel_new = (uint8_t *)malloc((size_t)N);
    double *tb = (double *)malloc((size_t)reps * sizeof *tb), *tn = (double *)malloc((size_t)reps * sizeof *tn);
    int isa, c, r, th, n_threads = 1;
    if (!off || !score || !mask || !sel_base || !sel_new || !tb || !tn || reps < 1) return 1;
#ifdef _OPENMP
    n_threads = omp_get_max_threads() >= 2 ? 2 : 1;
#endif
    for (b = 0; b <= B; ++b) off[b] = b * L;
    for (t = 0; t < N; ++t) {   /* K3-like dependencies as bench.c's: mostly small, a long tail */
        score[t] = (float)(-log(1.0 - unif()) * 0.05);
        mask[t] = (uint8_t)(unif() < 0.9);
    }
    printf("## vppo_topk_mask, %lld x %lld, new (./vppo.h) vs base, median of %d alternated calls each\n\n",
           (long long)B, (long long)L, reps);
    printf("| isa    | thr | case            |  base ms |   new ms | new/base | diff pos | diff info |\n");
    printf("|--------|----:|-----------------|---------:|---------:|---------:|---------:|----------:|\n");
    for (isa = 3; isa >= 0; --isa) {
        if (topk_select_base(isa) || topk_select_new(isa)) continue;
        for (th = 1; th <= n_threads; ++th) {
#ifdef _OPENMP
            omp_set_num_threads(th);
#endif
            for (c = 0; c < 4; ++c) {
                ab_topk a, z;
                int64_t diff = 0;
                int k, dinfo = 0;
                a.n_seqs = B; a.offsets = off; a.score = score;
                a.mask = (c & 1) ? mask : NULL;
                a.ratio = (c & 2) ? 1.0 : 0.4;
                z = a;
                a.select = sel_base; z.select = sel_new;
                if (topk_call_base(&a) || topk_call_new(&z)) { printf("error\n"); return 1; }
                for (r = 0; r < reps; ++r) {
                    double t0;
                    if (r % 2 == 0) {
                        t0 = now(); topk_call_base(&a); tb[r] = now() - t0;
                        t0 = now(); topk_call_new(&z); tn[r] = now() - t0;
                    } else {
                        t0 = now(); topk_call_new(&z); tn[r] = now() - t0;
                        t0 = now(); topk_call_base(&a); tb[r] = now() - t0;
                    }
                }
                for (t = 0; t < N; ++t) diff += sel_base[t] != sel_new[t];
                for (k = 0; k < 5; ++k) dinfo += memcmp(&a.info[k], &z.info[k], sizeof a.info[k]) != 0;
                {
                    const double mb = median(tb, reps), mn = median(tn, reps);
                    char name[32];
                    snprintf(name, sizeof name, "ratio %.1f%s", a.ratio, a.mask ? " masked" : "");
                    printf("| %-6s | %3d | %-15s | %8.3f | %8.3f | %8.3f | %8lld | %9d |\n", isa_names[isa], th, name,
                           mb * 1e3, mn * 1e3, mn / mb, (long long)diff, dinfo);
                }
            }
        }
    }
    printf("\nnew/base < 1: ./vppo.h is faster. diff pos / diff info: positions of the mask and fields\n"
           "of vppo_topk_info (bitwise) where the two builds differ: must be 0.\n");
    free(off); free(score); free(mask); free(sel_base); free(sel_new); free(tb); free(tn);
    return 0;
}
#endif
