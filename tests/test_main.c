/* tests/test_main.c - the test runner; also the one translation unit of the suite that
   compiles the implementation (the others only include the declarations, so the suite
   itself links two kinds of translation unit together).

   usage: test_vppo [substring]   runs the tests whose name contains substring
          test_vppo --list-isas    prints the ISAs this build and CPU can run
   VPPO_TEST_ISA=name runs the suite on that ISA (an error if it cannot run here). */
#define VPPO_IMPLEMENTATION
#include "test.h"

#define T(name) void name(void);
#include "tests.def"
#undef T

static const test_entry tests[] = {
#define T(name) { #name, name },
#include "tests.def"
#undef T
};

/* White-box: the vector exp of every ISA this machine runs, seen through two kernels.
   The stats kernel (its exp without range handling, floored at DLOW): a row holding x and
   -inf padding, reference 0, scale 1 and no rescale sums to vexp(x). The backward kernel
   (the exp with the upper clamp): hi = lo = 0, s = 1, a = 1, b = 0 gives p = vexp(x). */
static double vexp_through_kernel(const vppo__kernels *k, float x, int via_bwd)
{
    float row[VPPO__PAD], g[VPPO__PAD];
    double out[2] = { 0.0, 0.0 };
    vppo__bwd_args c;
    int i;
    for (i = 0; i < VPPO__PAD; ++i) row[i] = -HUGE_VALF;
    row[0] = x;
    if (!via_bwd) {
        if (k->stats(row, VPPO_F32, 0, VPPO__PAD, 0.0f, FLT_MAX, 1.0f, out) != VPPO__PAD) return -1.0;
        return out[0];
    }
    memset(&c, 0, sizeof c);
    c.s = 1.0f;
    c.a = 1.0f;
    if (k->bwd(row, VPPO_F32, VPPO__PAD, &c, g, VPPO_F32, 0) & 1) return -1.0;
    return g[0];
}

void vexp_error_bound_every_isa(void)
{
    int isa, tested = 0;
    for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
        const vppo__kernels *k = vppo__kernels_for((vppo_isa)isa);
        double worst = 0.0, x;
        long bad = 0;
        int via;
        if (!k || !vppo__isa_supported((vppo_isa)isa)) continue;
        ++tested;
        for (x = -100.0; x <= 88.0; x += 1.0 / 1024) {
            const float xf = (float)x;
            const double want = exp((double)xf);
            int via;
            for (via = 0; via < 2; ++via) {
                const double got = vexp_through_kernel(k, xf, via);
                if (xf < VPPO__EXP_FLUSH) { bad += got != 0.0; continue; }
                if (fabs(got - want) / want > worst) worst = fabs(got - want) / want;
                bad += !(got >= FLT_MIN);                /* never a denormal, never 0 above the flush */
            }
        }
        CHECK_EQ_INT(0, bad);
        CHECK(worst <= 2e-7);
        for (via = 0; via < 2; ++via) {
            CHECK(vexp_through_kernel(k, -HUGE_VALF, via) == 0.0);
            CHECK(vexp_through_kernel(k, -1e30f, via) == 0.0);
            CHECK(vexp_through_kernel(k, 0.0f, via) == 1.0);
        }
        printf("        vexp (%s): max relative error %.3g over [%g, 88]\n", vppo_isa_name((vppo_isa)isa),
               worst, (double)VPPO__EXP_FLUSH);
    }
    CHECK_EQ_INT(test_vector_isas_selectable(), tested);   /* every ISA the library offers */
    test_check_vector_isas_tested(tested);
}

/* White-box: the backward kernel of every ISA with streaming stores (an aligned body after
   a head) writes the same bits, and reports the same, as with ordinary stores: lengths
   around the vector widths, destinations at every float offset from a 64-byte boundary,
   -inf entries, a NaN, temperatures 1 and 0.7. */
void backward_streaming_stores_every_isa(void)
{
    static float src[300], a[300 + 64], b[300 + 64];
    int isa, tested = 0, n, off, t, bad;
    for (n = 0; n < 300; ++n) src[n] = n % 11 == 3 ? -HUGE_VALF : (float)((n * 37 % 101) - 50) * 0.05f;
    for (isa = VPPO_ISA_SSE2; isa <= VPPO_ISA_NEON; ++isa) {
        const vppo__kernels *k = vppo__kernels_for((vppo_isa)isa);
        if (!k || !vppo__isa_supported((vppo_isa)isa)) continue;
        ++tested;
        for (t = 0; t < 2; ++t)
            for (bad = 0; bad < 2; ++bad)
                for (n = 1; n <= 300; n += n < 70 ? 1 : 23)
                    for (off = 0; off < 16; off += 1 + (n > 70) * 4) {
                        const vppo__bwd_args c = vppo__bwd_args_of(0, 0.0, 0.0, 2.5, t ? 0.7 : 1.0, 0.5, -0.25, 1.5);
                        float *pa = (float *)((uintptr_t)(a + 16) / 64 * 64) + off, *pb = b + off;
                        const float keep = src[n / 2];
                        int fa, fb;
                        if (bad) src[n / 2] = NAN;
                        memset(a, 0, sizeof a);
                        memset(b, 0, sizeof b);
                        fa = k->bwd(src, VPPO_F32, n, &c, pa, VPPO_F32, 1);
                        fb = k->bwd(src, VPPO_F32, n, &c, pb, VPPO_F32, 0);
                        CHECK_EQ_INT(bad ? 1 : 0, fa & 1);    /* with a NaN, bit 1 is not defined */
                        CHECK_EQ_INT(bad ? 1 : fb, bad ? fb & 1 : fa);
                        if (!bad) CHECK(memcmp(pa, pb, (size_t)n * sizeof(float)) == 0);
                        CHECK(pa[n] == 0.0f && pa[-1] == 0.0f);   /* nothing outside [0, n) */
                        src[n / 2] = keep;
                    }
    }
    CHECK_EQ_INT(test_vector_isas_selectable(), tested);
    test_check_vector_isas_tested(tested);
}

/* The runner (test_run), test_checks and test_fail live in test_util.c, shared with the
   CUDA suite (tests/test_cuda.c). */

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL, *isa = getenv("VPPO_TEST_ISA");
    int k;
    if (filter && strcmp(filter, "--list-isas") == 0) {
        for (k = VPPO_ISA_SCALAR; k <= VPPO_ISA_NEON; ++k)
            if (vppo_isa_select((vppo_isa)k) == VPPO_OK) printf("%s\n", vppo_isa_name((vppo_isa)k));
        return 0;
    }
    if (isa) {
        for (k = VPPO_ISA_SCALAR; k <= VPPO_ISA_NEON; ++k)
            if (strcmp(isa, vppo_isa_name((vppo_isa)k)) == 0) break;
        if (k > VPPO_ISA_NEON || vppo_isa_select((vppo_isa)k) != VPPO_OK) {
            fprintf(stderr, "VPPO_TEST_ISA=%s: not an ISA this build and CPU run\n", isa);
            return 2;
        }
    }
    printf("vppo.h %d.%d.%d tests, isa %s\n", VPPO_VERSION_MAJOR, VPPO_VERSION_MINOR,
           VPPO_VERSION_PATCH, vppo_isa_name(vppo_isa_active()));
    return test_run(tests, sizeof tests / sizeof tests[0], filter, NULL) ? 1 : 0;
}
