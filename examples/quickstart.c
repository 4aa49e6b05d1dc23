/* examples/quickstart.c - one VPPO step on a synthetic batch, explained on the terminal.

   Eight responses to two image questions ("How many red circles are in the image?",
   4 rollouts each). Every response is a sentence of template words ("The", "image",
   "shows", ...) and a few words that can only come from looking at the image (the
   count, the colour, the shape). The policy's log-probabilities under the original and
   under a patch-blackened image are synthetic: perception-heavy tokens lose a lot of
   probability when the image is hidden, template tokens almost none. From there the
   library does the real work: group advantages (GRPO), token dependency (K3),
   trajectory shaping (TAS), top-40% token filtering (TGF) and the clipped loss.

   make demo    (or: cc -std=c99 -O2 examples/quickstart.c -lm && ./a.out) */
#define VPPO_IMPLEMENTATION
#include "../vppo.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_RESP 8
#define MAX_LEN 32

/* A deterministic pseudo-random number in [0, 1) for draw i of a stream. */
static double rnd(uint64_t stream, uint64_t i) { return vppo_uniform(0xC0FFEE + stream, i); }

/* The words of a response and how visual each one is (0 = language prior only). */
typedef struct word { const char *text; double visual; } word;

static const word templates[2][MAX_LEN] = {
    { { "The", 0 }, { "image", 0.1 }, { "shows", 0.1 }, { "a", 0 }, { "table", 0.7 }, { "with", 0 },
      { "several", 0.3 }, { "shapes", 0.4 }, { ".", 0 }, { "I", 0 }, { "count", 0.2 }, { "the", 0 },
      { "red", 0.9 }, { "circles", 0.9 }, { ":", 0 }, { "one", 0.6 }, { "near", 0.2 }, { "the", 0 },
      { "left", 0.8 }, { "edge", 0.5 }, { ",", 0 }, { "two", 0.8 }, { "in", 0 }, { "the", 0 },
      { "middle", 0.7 }, { ".", 0 }, { "So", 0 }, { "the", 0 }, { "answer", 0.05 }, { "is", 0 },
      { "3", 1.0 }, { ".", 0 } },
    { { "Looking", 0.1 }, { "at", 0 }, { "the", 0 }, { "picture", 0.1 }, { ",", 0 }, { "there", 0 },
      { "are", 0 }, { "blue", 0.9 }, { "squares", 0.8 }, { "and", 0 }, { "red", 0.9 }, { "circles", 0.9 },
      { ".", 0 }, { "The", 0 }, { "circles", 0.5 }, { "are", 0 }, { "on", 0 }, { "the", 0 },
      { "right", 0.8 }, { ".", 0 }, { "Counting", 0.2 }, { "them", 0.1 }, { "gives", 0 }, { "4", 1.0 },
      { ".", 0 }, { "Answer", 0 }, { ":", 0 }, { "4", 0.6 }, { ".", 0 }, { "", 0 }, { "", 0 }, { "", 0 } },
};

int main(void)
{
    int64_t offsets[N_RESP + 1], groups_offsets[3];
    uint8_t mask[N_RESP * MAX_LEN], select[N_RESP * MAX_LEN];
    float logp_old[N_RESP * MAX_LEN], logp_aug[N_RESP * MAX_LEN], logp[N_RESP * MAX_LEN];
    float dep[N_RESP * MAX_LEN], adv[N_RESP * MAX_LEN], dlogp[N_RESP * MAX_LEN];
    float rewards[N_RESP], adv_seq[N_RESP], traj_dep[N_RESP], scale[N_RESP];
    int64_t count[N_RESP];
    const char *words[N_RESP * MAX_LEN];
    vppo_seqs seqs, groups;
    vppo_config cfg = vppo_config_default();
    vppo_prepared p;
    vppo_loss_out out;
    vppo_status st;
    int b, t;

    /* ---- the batch: padded [8, 32] arrays with a response mask ---------------- */
    vppo_offsets_uniform(offsets, N_RESP, MAX_LEN);
    for (b = 0; b < N_RESP; ++b) {
        const word *tpl = templates[b % 2];
        int len = 0;
        while (len < MAX_LEN && tpl[len].text[0]) ++len;
        len -= (int)(rnd(1, (uint64_t)b) * 6);                 /* some responses stop early */
        rewards[b] = rnd(2, (uint64_t)b) < 0.5 ? 1.0f : 0.0f;  /* verifier: right or wrong */
        for (t = 0; t < MAX_LEN; ++t) {
            const int64_t i = b * MAX_LEN + t;
            const double visual = tpl[t].visual;
            mask[i] = (uint8_t)(t < len);
            words[i] = tpl[t].text;
            /* log pi_old(o_t | I): confident on template words, less on the rest */
            logp_old[i] = (float)(-0.05 - 1.5 * visual * rnd(3, (uint64_t)i));
            /* log pi_old(o_t | I'): hiding patches of the image hurts visual words */
            logp_aug[i] = logp_old[i] - (float)(visual * (0.5 + 3.0 * rnd(4, (uint64_t)i)) + 0.02 * rnd(5, (uint64_t)i));
            /* log pi_theta(o_t): the policy after a few optimiser steps */
            logp[i] = logp_old[i] + (float)(0.3 * (rnd(6, (uint64_t)i) - 0.5));
        }
    }
    rewards[0] = 1.0f; rewards[1] = 0.0f; rewards[4] = 1.0f; rewards[5] = 0.0f;   /* no constant group */
    seqs.n_seqs = N_RESP; seqs.offsets = offsets; seqs.mask = mask;

    /* ---- group advantages: 2 prompts x 4 rollouts ------------------------------- */
    vppo_offsets_uniform(groups_offsets, 2, 4);
    groups.n_seqs = 2; groups.offsets = groups_offsets; groups.mask = NULL;
    st = vppo_group_advantages(&groups, rewards, VPPO_ADV_GRPO, 1e-6f, adv_seq);
    if (st != VPPO_OK) { fprintf(stderr, "group advantages: %s\n", vppo_status_string(st)); return 1; }

    /* ---- one VPPO step ------------------------------------------------------------ */
    memset(&p, 0, sizeof p);
    p.dep = dep; p.traj_dep = traj_dep; p.count = count; p.scale = scale; p.adv = adv; p.select = select;
    st = vppo_step(&cfg, &seqs, logp, logp_old, logp_aug, NULL, adv_seq, &p, dlogp, &out);
    if (st != VPPO_OK) { fprintf(stderr, "vppo_step: %s\n", vppo_status_string(st)); return 1; }

    /* ---- what happened ------------------------------------------------------------ */
    printf("vppo.h %d.%d.%d quickstart: one VPPO step on %d synthetic responses (%lld tokens)\n\n",
           VPPO_VERSION_MAJOR, VPPO_VERSION_MINOR, VPPO_VERSION_PATCH, N_RESP, (long long)out.n_valid);
    printf("Token perception of response 0 (dependency = K3 estimate of KL(pi(.|I) || pi(.|I')),\n"
           "bar = dependency, * = among the top 40%% that carry gradient):\n\n");
    {
        static const char *bars[9] = { " ", "\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
                                       "\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88" };
        float max_dep = 1e-6f;
        for (t = 0; t < count[0]; ++t) if (dep[t] > max_dep) max_dep = dep[t];
        for (t = 0; t < count[0]; ++t) {
            const int eighths = (int)(8 * 30 * dep[t] / max_dep + 0.5f);   /* 30 cells at the maximum */
            int k;
            printf("  %-9s %s %6.3f ", words[t], select[t] ? "*" : " ", dep[t]);
            for (k = 0; k < eighths / 8; ++k) printf("%s", bars[8]);
            if (eighths % 8) printf("%s", bars[eighths % 8]);
            printf("\n");
        }
    }
    printf("\nDependency is sparse: %lld of %lld tokens selected, mean dependency %.3f selected vs %.3f rejected\n"
           "(threshold, mean k-th largest: %.3f).\n\n",
           (long long)p.topk.n_selected, (long long)p.topk.n_valid, p.topk.mean_selected,
           p.topk.mean_rejected, p.topk.threshold_mean);

    printf("Trajectory-level Advantage Shaping (mean-preserving, beta_min 0.9; batch range %.3f..%.3f):\n\n",
           p.stats.min, p.stats.max);
    printf("  resp  tokens  reward  GRPO adv  traj dep  TAS scale  shaped adv  selected\n");
    for (b = 0; b < N_RESP; ++b) {
        int n_sel = 0;
        for (t = 0; t < MAX_LEN; ++t) n_sel += select[b * MAX_LEN + t];
        printf("  %4d  %6lld  %6.0f  %8.3f  %8.3f  %9.3f  %10.3f  %8d\n", b, (long long)count[b], rewards[b],
               adv_seq[b], traj_dep[b], scale[b], scale[b] * adv_seq[b], n_sel);
    }
    printf("\nLoss (clip 0.2/0.28, dual clip 3, token-mean, entropy penalty 0.06):\n\n");
    printf("  loss %.6f = pg %.6f + 0.06 x entropy term %.6f\n", out.loss, out.pg_loss, out.entropy_loss);
    printf("  clipfrac %.3f, dual-clip fraction %.3f, ppo_kl %.5f\n", out.clipfrac, out.clipfrac_dual, out.ppo_kl);
    printf("  dloss/dlogp written for %lld tokens; gradient-carrying tokens: %lld\n",
           (long long)out.n_valid, (long long)out.n_selected);
    return 0;
}
