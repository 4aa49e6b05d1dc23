/* bench/ab_main.h - the clock and the median the A/B drivers share (bench/stepab.c,
   bench/topk_ab.c: their AB_MAIN part, compiled with _POSIX_C_SOURCE for clock_gettime). */
#ifndef VPPO_BENCH_AB_MAIN_H
#define VPPO_BENCH_AB_MAIN_H

#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int ab_cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n), n >= 1 (v is sorted in place). */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, ab_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#endif
