/* vppo_so.c - vppo.h as a shared library for bench/peers.py (ctypes).
   Built by bench/bench.mk as build/libvppo_bench.so (-shared -fPIC, -fopenmp when the
   compiler has it). Besides every vppo_ function it exports two helpers. */
#define VPPO_IMPLEMENTATION
#include "../vppo.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Sets the OpenMP thread count when built with OpenMP (n > 0) and returns the count in
   use: omp_get_max_threads(), or 1 without OpenMP. */
int vppo_bench_threads(int n);
int vppo_bench_threads(int n)
{
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
    return omp_get_max_threads();
#else
    (void)n;
    return 1;
#endif
}

/* sizeof(vppo_logits) and sizeof(vppo_grad_out), so that peers.py can check its ctypes
   layouts against the compiler's. */
int vppo_bench_sizeof(int which);
int vppo_bench_sizeof(int which)
{
    return which == 0 ? (int)sizeof(vppo_logits) : (int)sizeof(vppo_grad_out);
}
