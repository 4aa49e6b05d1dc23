/* tests/test_tsan.c - thread safety under ThreadSanitizer (make test-tsan).

   Several POSIX threads start at the same moment in a fresh process and call every kernel
   family of vppo.h at once, each on shared read-only inputs and its own outputs: the first
   calls race on the ISA choice (THREADING: it is atomic), and everything else must share
   nothing writable. Built with clang -fsanitize=thread and no OpenMP; TSan makes any data
   race fatal (halt_on_error=1), and each thread's output bytes must equal those of a serial
   run after the threads joined. Prints "N passed, M failed". */
#define _POSIX_C_SOURCE 200809L
#define VPPO_IMPLEMENTATION
#include "../vppo.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NTHREADS = 4, B = 8, LEN = 300, N = B * LEN, ROWS = 12, V = 700, D = 16, LV = 300,
       W = 19, H = 13, OUT_BYTES = 1 << 18 };

/* Shared inputs (written before the threads start, only read while they run). */
static int64_t g_off[B + 1], g_goff[3];
static uint8_t g_mask[N], g_pixels[W * H * 3];
static float g_logp[N], g_aug[N], g_ref[N], g_rewards[B], g_logits[ROWS * V], g_logits_aug[ROWS * V];
static float g_hidden[ROWS * D], g_hidden_aug[ROWS * D], g_weight[LV * D];
static int32_t g_ids[ROWS];

static uint64_t g_state = 12345;
static double unif(void)
{
    g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_state >> 11) * (1.0 / 9007199254740992.0);
}

/* Appends n bytes to a thread's output record. */
typedef struct rec { unsigned char *b; size_t n; int bad; } rec;
static void put(rec *r, const void *p, size_t n)
{
    if (r->n + n > OUT_BYTES) { r->bad = 1; return; }
    memcpy(r->b + r->n, p, n);
    r->n += n;
}
static void ok(rec *r, vppo_status st) { if (st != VPPO_OK) r->bad = 1; put(r, &st, sizeof st); }

/* Every kernel family once; everything it writes goes into r. */
static void run_all(rec *r)
{
    vppo_seqs s, g;
    vppo_logits P, Q;
    vppo_grad_out gout;
    vppo_image img;
    vppo_config cfg = vppo_config_default();
    vppo_loss_out out;
    vppo_prepared p;
    vppo_tas_stats st;
    vppo_topk_info info;
    vppo_tas_config tc = vppo_tas_config_default();
    static const float fill[W] = { 0 };
    float *dep = (float *)malloc(N * sizeof *dep), *buf = (float *)malloc(N * sizeof *buf);
    float *adv = (float *)malloc(N * sizeof *adv), *dl = (float *)malloc(N * sizeof *dl);
    float *grad = (float *)malloc((size_t)ROWS * V * sizeof *grad);
    float *rows = (float *)malloc((size_t)ROWS * W * sizeof *rows);
    float *lin = (float *)malloc((size_t)(3 * ROWS + ROWS * D + LV * D) * sizeof *lin);
    float scale[B], mean[B], adv_b[B], lp[ROWS], lse[ROWS], ent[ROWS], dlp[ROWS], dent[ROWS];
    int64_t count[B], pcount[B];
    float ptraj[B], pscale[B];
    uint8_t *sel = (uint8_t *)malloc(N), *psel = (uint8_t *)malloc(N), pixels[W * H * 3], keep[B];
    float *pdep = (float *)malloc(N * sizeof *pdep), *padv = (float *)malloc(N * sizeof *padv);
    const size_t lw = vppo_linear_workspace(ROWS, D, LV), bw = vppo_blur_workspace(W, H, 3);
    void *work = malloc(lw > bw ? lw : bw);
    int i, div;
    if (!dep || !buf || !adv || !dl || !grad || !rows || !lin || !sel || !psel || !pdep || !padv || !work) {
        r->bad = 1;
        goto done;
    }
    memset(&st, 0, sizeof st);
    memset(&info, 0, sizeof info);
    memset(&p, 0, sizeof p);
    s.n_seqs = B; s.offsets = g_off; s.mask = g_mask;
    g.n_seqs = 2; g.offsets = g_goff; g.mask = NULL;
    /* §2.1, §4, §5, §6, §7, §8 */
    ok(r, vppo_dependency_sampled(&s, g_logp, g_aug, VPPO_EST_K3, dep)); put(r, dep, N * 4);
    ok(r, vppo_group_advantages(&g, g_rewards, VPPO_ADV_GRPO, 1e-6f, adv_b)); put(r, adv_b, sizeof adv_b);
    ok(r, vppo_group_filter(&g, g_rewards, 0.1, 0.9, keep)); put(r, keep, sizeof keep);
    ok(r, vppo_seq_mean(&s, dep, mean, count)); put(r, mean, sizeof mean); put(r, count, sizeof count);
    ok(r, vppo_tas_stats_compute(mean, count, B, &st)); put(r, &st, sizeof st);
    ok(r, vppo_tas_scales(&tc, &st, mean, count, B, scale)); put(r, scale, sizeof scale);
    ok(r, vppo_topk_mask(&s, dep, 0.4, sel, &info)); put(r, sel, N); put(r, &info, sizeof info);
    ok(r, vppo_soft_mask(&s, dep, 0.4, buf)); put(r, buf, N * 4);
    for (i = 0; i < N; ++i) adv[i] = adv_b[i / LEN];
    memset(&out, 0, sizeof out);
    ok(r, vppo_policy_loss(&cfg.loss, &s, g_logp, g_aug, g_ref, adv, sel, NULL, dl, &out));
    put(r, dl, N * 4); put(r, &out, sizeof out);
    p.dep = pdep; p.traj_dep = ptraj; p.count = pcount; p.scale = pscale; p.adv = padv; p.select = psel;
    ok(r, vppo_step(&cfg, &s, g_logp, g_aug, g_ref, NULL, adv_b, &p, dl, &out));
    put(r, dl, N * 4); put(r, &out, sizeof out); put(r, pdep, N * 4); put(r, padv, N * 4); put(r, psel, N);
    /* §2.2, §2.3 */
    P.data = g_logits; P.dtype = VPPO_F32; P.n_rows = ROWS; P.vocab = V; P.row_stride = V; P.temperature = 1.0f;
    Q = P; Q.data = g_logits_aug;
    for (div = 0; div < 3; ++div) {
        ok(r, vppo_dependency_logits(&P, &Q, (vppo_divergence)div, lp)); put(r, lp, sizeof lp);
    }
    ok(r, vppo_logprobs(&P, g_ids, lp, lse, ent)); put(r, lp, sizeof lp); put(r, lse, sizeof lse); put(r, ent, sizeof ent);
    for (i = 0; i < ROWS; ++i) { dlp[i] = 0.5f - (float)i / ROWS; dent[i] = 0.1f; }
    gout.data = grad; gout.dtype = VPPO_F32; gout.row_stride = V;
    ok(r, vppo_logprobs_backward(&P, g_ids, NULL, NULL, dlp, dent, &gout)); put(r, grad, (size_t)ROWS * V * 4);
    /* §9 */
    ok(r, vppo_linear_dependency(g_hidden, g_hidden_aug, g_weight, ROWS, D, LV, 1.0f, VPPO_DIV_KL, lin, work, lw));
    put(r, lin, ROWS * 4);
    ok(r, vppo_linear_logprobs(g_hidden, g_weight, ROWS, D, LV, 1.0f, g_ids, lin, lin + ROWS, lin + 2 * ROWS, work, lw));
    put(r, lin, 3 * ROWS * 4);
    memset(lin + ROWS * D, 0, (size_t)LV * D * 4);   /* dweight is accumulated */
    ok(r, vppo_linear_logprobs_backward(g_hidden, g_weight, ROWS, D, LV, 1.0f, g_ids, NULL, NULL, dlp, dent,
                                        lin, lin + ROWS * D, work, lw));
    put(r, lin, (size_t)(ROWS * D + LV * D) * 4);
    /* §3 */
    memcpy(pixels, g_pixels, sizeof pixels);
    img.pixels = pixels; img.width = W; img.height = H; img.channels = 3; img.row_stride = W * 3;
    ok(r, vppo_perturb_patch_blackening(&img, 4, 0.5f, 7));
    ok(r, vppo_perturb_gaussian_noise(&img, 0.0f, 10.0f, 8));
    ok(r, vppo_perturb_gaussian_blur(&img, 1.5f, work, bw));
    put(r, pixels, sizeof pixels);
    for (i = 0; i < ROWS * W; ++i) rows[i] = (float)i;
    ok(r, vppo_perturb_patch_rows(rows, ROWS, W, W, 0.5f, fill, 9)); put(r, rows, (size_t)ROWS * W * 4);
done:
    free(dep); free(buf); free(adv); free(dl); free(grad); free(rows); free(lin);
    free(sel); free(psel); free(pdep); free(padv); free(work);
}

static pthread_barrier_t g_start;

static void *worker(void *arg)
{
    rec *r = (rec *)arg;
    pthread_barrier_wait(&g_start);   /* every first call at the same moment */
    run_all(r);
    return NULL;
}

int main(void)
{
    pthread_t th[NTHREADS];
    rec r[NTHREADS], serial;
    int i, passed = 0, failed = 0;
    vppo_offsets_uniform(g_off, B, LEN);
    vppo_offsets_uniform(g_goff, 2, B / 2);
    for (i = 0; i < N; ++i) {
        g_mask[i] = (uint8_t)(unif() < 0.9);
        g_logp[i] = (float)(-3.0 * unif());
        g_aug[i] = (float)fmin(0.0, g_logp[i] + 0.5 * (unif() - 0.5));
        g_ref[i] = g_logp[i] + (float)(0.1 * (unif() - 0.5));
    }
    for (i = 0; i < B; ++i) g_rewards[i] = (float)(i % 3 == 0);
    for (i = 0; i < ROWS * V; ++i) { g_logits[i] = (float)(4.0 * unif() - 2.0); g_logits_aug[i] = g_logits[i] + (float)(unif() - 0.5); }
    for (i = 0; i < ROWS * D; ++i) { g_hidden[i] = (float)(unif() - 0.5); g_hidden_aug[i] = g_hidden[i] + (float)(0.2 * unif()); }
    for (i = 0; i < LV * D; ++i) g_weight[i] = (float)(unif() - 0.5);
    for (i = 0; i < ROWS; ++i) g_ids[i] = (int32_t)((i * 37) % LV);
    for (i = 0; i < W * H * 3; ++i) g_pixels[i] = (uint8_t)(unif() * 256.0);

    if (pthread_barrier_init(&g_start, NULL, NTHREADS) != 0) { printf("0 passed, 1 failed\n"); return 1; }
    for (i = 0; i < NTHREADS; ++i) {
        r[i].b = (unsigned char *)malloc(OUT_BYTES); r[i].n = 0; r[i].bad = !r[i].b;
        if (pthread_create(&th[i], NULL, worker, &r[i]) != 0) { printf("0 passed, 1 failed\n"); return 1; }
    }
    for (i = 0; i < NTHREADS; ++i) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&g_start);

    serial.b = (unsigned char *)malloc(OUT_BYTES); serial.n = 0; serial.bad = !serial.b;
    run_all(&serial);
    printf("  isa %s; %lu bytes of results per thread\n", vppo_isa_name(vppo_isa_active()), (unsigned long)serial.n);
    if (serial.bad || serial.n == 0) { printf("FAIL serial run: a call failed\n"); ++failed; } else ++passed;
    for (i = 0; i < NTHREADS; ++i) {
        const int same = !r[i].bad && r[i].n == serial.n && memcmp(r[i].b, serial.b, serial.n) == 0;
        if (same) ++passed;
        else {
            size_t at = 0;
            while (at < serial.n && at < r[i].n && r[i].b[at] == serial.b[at]) ++at;
            printf("FAIL thread %d: results differ from the serial run at byte %lu of %lu (or a call failed: %d)\n",
                   i, (unsigned long)at, (unsigned long)serial.n, r[i].bad);
            ++failed;
        }
        free(r[i].b);
    }
    free(serial.b);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
