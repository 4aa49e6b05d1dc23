/* abcompare.c - two builds of vppo.h side by side in one process (make bench-ab).

   The file is compiled three times: with AB_SIDE=base (against the header AB_HEADER,
   by default main's, see bench.mk) and AB_SIDE=new (./vppo.h), each with VPPODEF static
   so that the two implementations do not clash, and once with AB_MAIN for the driver.
   For each logits kernel, ISA and size the driver alternates the two sides call by call
   (base, new, new, base, ...) and keeps the fastest call of each: on a loaded machine the
   minimum of many interleaved calls is the least disturbed estimate, and both sides see
   the same conditions. It prints new/base per row and the geometric mean per ISA.
   Nothing is asserted: speed is measured here, never tested. */
#include <stdint.h>
#include <stddef.h>

/* What the driver hands each side: the inputs of every case, allocated once. */
typedef struct ab_data {
    const void *z, *z_aug;        /* [rows, V] logits (dtype dt) */
    int dt, rows;
    int64_t V;
    const int32_t *ids;
    const float *g, *h;           /* upstream gradients [rows] */
    float *out, *lse, *ent;       /* [rows] */
    float *grad;                  /* [rows, V] (also the BF16 output) */
} ab_data;

enum { AB_DEP_KL, AB_DEP_JS, AB_LOGPROBS, AB_BACKWARD, AB_BACKWARD_BF16, AB_NKERNELS };

#ifdef AB_SIDE
#define VPPODEF static
#define VPPO_IMPLEMENTATION
#ifdef AB_HEADER
#include AB_HEADER
#else
#include "../vppo.h"
#endif

#define AB_CAT2(a, b) a##b
#define AB_CAT(a, b) AB_CAT2(a, b)

/* Selects isa; nonzero if this build or CPU lacks it. */
int AB_CAT(ab_select_, AB_SIDE)(int isa) { return vppo_isa_select((vppo_isa)isa) != VPPO_OK; }

/* One call of kernel on d; returns its status. */
int AB_CAT(ab_call_, AB_SIDE)(int kernel, const ab_data *d)
{
    vppo_logits x, y;
    vppo_grad_out go;
    x.data = d->z; x.dtype = (vppo_dtype)d->dt; x.n_rows = d->rows; x.vocab = d->V; x.row_stride = d->V;
    x.temperature = 1.0f;
    y = x;
    y.data = d->z_aug;
    go.data = d->grad; go.dtype = VPPO_F32; go.row_stride = d->V;
    switch (kernel) {
    case AB_DEP_KL:   return (int)vppo_dependency_logits(&x, &y, VPPO_DIV_KL, d->out);
    case AB_DEP_JS:   return (int)vppo_dependency_logits(&x, &y, VPPO_DIV_JS, d->out);
    case AB_LOGPROBS: return (int)vppo_logprobs(&x, d->ids, d->out, d->lse, d->ent);
    case AB_BACKWARD: return (int)vppo_logprobs_backward(&x, d->ids, d->lse, d->ent, d->g, d->h, &go);
    default:          go.dtype = VPPO_BF16;
                      return (int)vppo_logprobs_backward(&x, d->ids, d->lse, d->ent, d->g, d->h, &go);
    }
}
#endif /* AB_SIDE */

#ifdef AB_MAIN
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ab_select_base(int isa);
int ab_select_new(int isa);
int ab_call_base(int kernel, const ab_data *d);
int ab_call_new(int kernel, const ab_data *d);

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static uint16_t bf16_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7fffu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

int main(int argc, char **argv)
{
    static const char *isa_name[] = { "scalar", "sse2", "avx2", "avx512", "neon" };
    static const char *kname[] = { "dependency KL", "dependency JS", "logprobs ids+lse+H", "backward -> F32", "backward -> BF16" };
    static const int64_t vocab[] = { 32000, 151936 };
    /* argv: calls per side (30), rows per call (8: in cache; 256 measures memory), a
       substring of the kernel names and an ISA name to run only those rows */
    const int calls = argc > 1 ? atoi(argv[1]) : 30, rows = argc > 2 ? atoi(argv[2]) : 8;
    const char *only = argc > 3 ? argv[3] : "", *only_isa = argc > 4 ? argv[4] : "";
    double lg[5] = { 0 };
    int cnt[5] = { 0 }, isa, dt, vi, kernel, i;
    printf("vppo.h base vs new, one process, %d interleaved calls per side per row, %d rows per call\n",
           calls, rows);
    printf("%-20s %7s %5s %-7s %10s %10s %8s\n", "kernel", "V", "dtype", "isa", "base ms", "new ms", "new/base");
    for (vi = 0; vi < 2; ++vi)
        for (dt = 0; dt < 2; ++dt) {       /* f32, bf16 */
            const int64_t V = vocab[vi], n = rows * V;
            const size_t es = dt ? 2 : 4;
            char *z = (char *)malloc((size_t)n * es), *za = (char *)malloc((size_t)n * es);
            float *grad = (float *)malloc((size_t)n * 4), *out = (float *)malloc((size_t)rows * 5 * sizeof(float));
            float *lse = out + rows, *ent = out + 2 * rows, *g = out + 3 * rows, *h = g + rows;
            int32_t *ids = (int32_t *)malloc((size_t)rows * sizeof(int32_t));
            ab_data d;
            int64_t j;
            uint64_t s = 12345;
            for (j = 0; j < n; ++j) {
                float a, b;
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                a = (float)((double)(s >> 40) / 16777216.0 * 8.0 - 4.0);
                b = a + (float)((double)((s >> 20) & 0xfffff) / 1048576.0 - 0.5);
                if (dt) { uint16_t ha = bf16_of(a), hb = bf16_of(b); memcpy(z + j * 2, &ha, 2); memcpy(za + j * 2, &hb, 2); }
                else { memcpy(z + j * 4, &a, 4); memcpy(za + j * 4, &b, 4); }
            }
            for (i = 0; i < rows; ++i) { ids[i] = (int32_t)((i * 7919) % V); g[i] = 0.5f; h[i] = 0.25f; }
            d.z = z; d.z_aug = za; d.dt = dt; d.rows = rows; d.V = V; d.ids = ids; d.g = g; d.h = h;
            d.out = out; d.lse = lse; d.ent = ent; d.grad = grad;
            for (kernel = 0; kernel < AB_NKERNELS; ++kernel)
                for (isa = 0; isa < 5; ++isa) {
                    double best[2] = { 1e300, 1e300 };
                    int c;
                    if (!strstr(kname[kernel], only) || !strstr(isa_name[isa], only_isa)) continue;
                    if (ab_select_base(isa) || ab_select_new(isa)) continue;
                    ab_call_base(AB_LOGPROBS, &d);                   /* lse, entropy for the backward */
                    for (c = 0; c < 2 * calls; ++c) {
                        const int side = (c & 1) ^ ((c >> 1) & 1);  /* base, new, new, base, ... */
                        const double t0 = now_ms();
                        const int st = side ? ab_call_new(kernel, &d) : ab_call_base(kernel, &d);
                        const double t = now_ms() - t0;
                        if (st != 0) { printf("status %d\n", st); return 1; }
                        if (t < best[side]) best[side] = t;
                    }
                    printf("%-20s %7lld %5s %-7s %10.3f %10.3f %8.3f\n", kname[kernel], (long long)V, dt ? "bf16" : "f32",
                           isa_name[isa], best[0], best[1], best[1] / best[0]);
                    fflush(stdout);
                    lg[isa] += log(best[1] / best[0]);
                    ++cnt[isa];
                }
            free(z); free(za); free(grad); free(out); free(ids);
        }
    for (isa = 0; isa < 5; ++isa)
        if (cnt[isa]) printf("geometric mean new/base, %-7s %.3f over %d rows\n", isa_name[isa], exp(lg[isa] / cnt[isa]), cnt[isa]);
    return 0;
}
#endif /* AB_MAIN */
