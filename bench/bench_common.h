/* bench/bench_common.h - what bench/bench.c and bench/bench_cuda.cu share. */
#ifndef VPPO_BENCH_COMMON_H
#define VPPO_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>

/* Host memory that is never NULL: running out ends the benchmark with a message that names
   the program and the size asked for. */
static void *bench_alloc(const char *program, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "%s: out of host memory (%.1f MiB)\n", program, (double)bytes / 1048576.0);
        exit(1);
    }
    return p;
}

#endif
