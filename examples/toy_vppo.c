/* examples/toy_vppo.c - VPPO against GRPO/DAPO on a toy vision-language task, in pure C.

   THE TASK
   The "image" is a 56 x 56 RGB picture of a 4 x 4 grid of coloured cells (red, green,
   blue, yellow, with pixel noise); each cell is exactly one 14 x 14 patch, the patch
   size of the paper's perturbation. The prompt asks "how many <colour> cells?" (answer
   0..16). A response is 32 tokens:

       the grid has four rows . row one has 1 , row two holds 0 , row three has 2 ,
       row four has 1 . so the answer is 4 .

   A frozen, question-aware "vision encoder" reduces each cell to two bits: does it show
   the asked colour, is it visible at all (a blackened cell is unseen). The policy is a
   network with one hidden layer (64 tanh units) that reads those 32 bits, the question,
   the position, the previous token and the running total of the numbers written so far
   (a stand-in for attention over the response), and outputs logits over 33 tokens. It
   is trained by its own backprop: the library gives dloss/dlogp (vppo_step) and the
   softmax backward (vppo_logprobs_backward); the network's backward is written out
   below, beside its forward. Reward: 1 iff the format holds and the final number is the
   right count. Nothing checks the row counts.

   THE MAPPING TO THE PAPER
   * image I and perturbed image I': the pixel buffer, and a copy passed through
     vppo_perturb_patch_blackening(img, 14, 0.5, seed), the paper's default, which hides
     about half of the cells (a fresh mask per response).
   * perception tokens: the four row counts (and the answer, if the policy learns to read
     it from the image rather than add up the rows).
   * language prior: 22 template words, and 5 free stylistic choices ("has"/"holds" in
     each row, "so"/"thus") that the warm start leaves at 50/50 and the reward ignores.
   * the SFT model: a short supervised warm start on responses whose row counts are right
     half of the time (random 0..4 otherwise) and whose answer is always the sum of the
     written counts: it formats and adds, but sees poorly. RL must make it see.
   Both methods start from the same warm-started weights, see the same prompts, the same
   perturbation masks and the same random numbers, and get the same budget: GRPO/DAPO is
   vppo_config_default() with use_tas = use_tgf = 0, VPPO is vppo_config_default().

   WHY THIS DESIGN (what did not work)
   With a colour-agnostic encoder (a one-hot colour per cell), reading "row r, colour c"
   needs a three-way interaction that this small network did not find: GRPO stayed at
   the prior (always answer 4, accuracy 0.25) for 300 steps, and even supervised training
   on the true counts took ~1500 steps of 64 examples to get 78% of the row counts right.
   With a warm start that cannot see at all, GRPO learned in jumps, one count value at a
   time, and after 400 steps the seeds were anywhere between 0.17 and 0.99. The choices
   above were made so that GRPO learns steadily within 200 steps; both methods share them.

   RUN
       make demo      (or: cc -std=c99 -O2 -ffp-contract=off examples/toy_vppo.c -lm
                       && ./a.out; add -fopenmp to spread the runs over the cores)
       ./toy_vppo [--seeds N] [--steps N] [--svg DIR | --no-svg] [--simd] [--quick]
   Defaults: 5 seeds, 200 steps, pictures into docs/img (toy_curves.svg, toy_heatmap.svg).
   --quick runs one seed for a few steps, checks that every number is finite and in
   range and that a rerun gives the same bits, and exits non-zero otherwise.
   The output is a pure function of the seeds: same seeds, same bits, with or without
   OpenMP (the runs share nothing; each is computed by one thread), with gcc or clang.
   The library's scalar path is selected so that its results do not depend on the CPU's
   vector units (--simd takes the fastest path instead; the last bits of the softmax then
   differ between machines, and so do the trajectories, not the picture). */
#define VPPO_IMPLEMENTATION
#include "../vppo.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================ hyperparameters == */

#define HIDDEN        64      /* tanh units */
#define SFT_STEPS     150     /* warm start: supervised steps ... */
#define SFT_BATCH     64      /* ... of this many example responses ... */
#define SFT_RIGHT     0.5     /* ... in which each row count is right with this probability */
#define SFT_LR        1e-2    /* Adam */
#define N_PROMPTS     16      /* RL: prompts per step ... */
#define N_ROLLOUTS    8       /* ... and responses per prompt (the paper's 8) */
#define PPO_EPOCHS    2       /* optimiser updates per batch (the second one is off-policy) */
#define RL_LR         2e-3    /* Adam */
#define GRAD_CLIP     1.0     /* global gradient-norm clip, as EasyR1 */
#define N_EVAL        256     /* held-out prompts */
#define EVAL_EVERY    10      /* steps between held-out evaluations */
#define AVG_AT        8       /* final held-out avg@8 (the paper's metric): 8 samples per prompt */
#define BLACKEN_PROB  0.5f    /* the paper's patch blackening: patch 14, prob 0.5 */

/* ============================================================ image and question == */

#define GRID       4                      /* 4 x 4 cells */
#define N_CELLS    (GRID * GRID)
#define N_COLOURS  4
#define CELL_PX    14                     /* one cell = one 14 x 14 patch */
#define IMG_PX     (GRID * CELL_PX)       /* 56 x 56 pixels, RGB */
#define N_VIS      (2 * N_CELLS)          /* encoder output: 2 features per cell */

static const char *const colour_name[N_COLOURS] = { "red", "green", "blue", "yellow" };
static const char colour_letter[N_COLOURS] = { 'R', 'G', 'B', 'Y' };
static const int palette[N_COLOURS][3] = { { 220, 40, 40 }, { 40, 170, 60 }, { 40, 80, 220 }, { 230, 200, 40 } };

typedef struct prompt {
    uint8_t pixels[IMG_PX * IMG_PX * 3];  /* the image, row-major RGB */
    int colour[N_CELLS];                  /* ground truth: colour of each cell */
    int question;                         /* the colour asked about */
    int row_count[GRID];                  /* cells of that colour in each row */
    int count;                            /* the answer */
    uint8_t vis[N_VIS];                   /* what the frozen encoder sees (question-aware) */
} prompt;

/* Independent random streams: stream(tag, a, b) is a seed for vppo_uniform. */
static uint64_t stream(uint64_t tag, uint64_t a, uint64_t b)
{
    return vppo_hash64(vppo_hash64(vppo_hash64(tag) ^ a) ^ b);
}
enum { TAG_PROMPT = 1, TAG_EVAL, TAG_SFT, TAG_STYLE, TAG_INIT, TAG_SAMPLE, TAG_PERTURB, TAG_SHOW };

static vppo_image image_of(uint8_t *pixels)
{
    vppo_image img;
    img.pixels = pixels; img.width = IMG_PX; img.height = IMG_PX; img.channels = 3;
    img.row_stride = IMG_PX * 3;
    return img;
}

/* The frozen, question-aware vision encoder: each cell's mean colour is matched to the
   nearest palette colour or black; vis [N_CELLS][2] = (the cell shows the asked colour,
   the cell is visible at all). A blackened cell is (0, 0): unseen. */
static void vision_encode(const uint8_t *pixels, int question, uint8_t *vis)
{
    int cell, k, x, y, ch;
    for (cell = 0; cell < N_CELLS; ++cell) {
        const int x0 = (cell % GRID) * CELL_PX, y0 = (cell / GRID) * CELL_PX;
        int sum[3] = { 0, 0, 0 }, best = -1;
        double mean[3], best_d;
        for (y = y0; y < y0 + CELL_PX; ++y)
            for (x = x0; x < x0 + CELL_PX; ++x)
                for (ch = 0; ch < 3; ++ch) sum[ch] += pixels[(y * IMG_PX + x) * 3 + ch];
        for (ch = 0; ch < 3; ++ch) mean[ch] = sum[ch] / (double)(CELL_PX * CELL_PX);
        best_d = mean[0] * mean[0] + mean[1] * mean[1] + mean[2] * mean[2];   /* to black */
        for (k = 0; k < N_COLOURS; ++k) {
            double d = 0;
            for (ch = 0; ch < 3; ++ch) d += (mean[ch] - palette[k][ch]) * (mean[ch] - palette[k][ch]);
            if (d < best_d) { best_d = d; best = k; }
        }
        vis[2 * cell] = (uint8_t)(best == question);
        vis[2 * cell + 1] = (uint8_t)(best >= 0);
    }
}

/* A random grid, question and its rendering, all from one seed. */
static void make_prompt(uint64_t seed, prompt *pr)
{
    int cell, x, y, ch, r;
    for (cell = 0; cell < N_CELLS; ++cell) pr->colour[cell] = (int)(N_COLOURS * vppo_uniform(seed, (uint64_t)cell));
    pr->question = (int)(N_COLOURS * vppo_uniform(seed, N_CELLS));
    for (y = 0; y < IMG_PX; ++y)
        for (x = 0; x < IMG_PX; ++x) {
            const int *rgb = palette[pr->colour[(y / CELL_PX) * GRID + x / CELL_PX]];
            const uint64_t noise = vppo_hash64(seed ^ vppo_hash64(100 + (uint64_t)(y * IMG_PX + x)));
            for (ch = 0; ch < 3; ++ch) {   /* pixel noise in -30..30, 8 random bits per channel */
                const int v = rgb[ch] + (int)((noise >> (8 * ch)) & 0xFF) * 61 / 256 - 30;
                pr->pixels[(y * IMG_PX + x) * 3 + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    pr->count = 0;
    for (r = 0; r < GRID; ++r) {
        pr->row_count[r] = 0;
        for (x = 0; x < GRID; ++x) pr->row_count[r] += pr->colour[r * GRID + x] == pr->question;
        pr->count += pr->row_count[r];
    }
    vision_encode(pr->pixels, pr->question, pr->vis);
}

/* ============================================================ vocabulary, template == */

#define LEN        32    /* response length (tokens) */
#define MAX_NUMBER 16

enum { W_THE, W_GRID, W_HAS, W_HOLDS, W_FOUR, W_ROWS, W_DOT, W_ROW, W_ONE, W_TWO, W_THREE, W_COMMA,
       W_SO, W_THUS, W_ANSWER, W_IS, W_NUM0 /* "0" .. "16" follow */ };
#define VOCAB (W_NUM0 + MAX_NUMBER + 1)   /* 33 tokens */
#define BOS   VOCAB                       /* "previous token" at position 0 (an input only) */

static const char *const word_text[VOCAB] = {
    "the", "grid", "has", "holds", "four", "rows", ".", "row", "one", "two", "three", ",", "so", "thus",
    "answer", "is", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"
};

/* What each position of a response must hold. */
enum { SLOT_WORD, SLOT_STYLE /* word or alt, free */, SLOT_ROW /* count of row `row` */, SLOT_ANSWER,
       N_KINDS };
typedef struct slot { int kind, word, alt, row; } slot;
static const slot tmpl[LEN] = {
    { SLOT_WORD, W_THE, 0, 0 }, { SLOT_WORD, W_GRID, 0, 0 }, { SLOT_WORD, W_HAS, 0, 0 },
    { SLOT_WORD, W_FOUR, 0, 0 }, { SLOT_WORD, W_ROWS, 0, 0 }, { SLOT_WORD, W_DOT, 0, 0 },
    { SLOT_WORD, W_ROW, 0, 0 }, { SLOT_WORD, W_ONE, 0, 0 }, { SLOT_STYLE, W_HAS, W_HOLDS, 0 },
    { SLOT_ROW, 0, 0, 0 }, { SLOT_WORD, W_COMMA, 0, 0 },
    { SLOT_WORD, W_ROW, 0, 0 }, { SLOT_WORD, W_TWO, 0, 0 }, { SLOT_STYLE, W_HAS, W_HOLDS, 0 },
    { SLOT_ROW, 0, 0, 1 }, { SLOT_WORD, W_COMMA, 0, 0 },
    { SLOT_WORD, W_ROW, 0, 0 }, { SLOT_WORD, W_THREE, 0, 0 }, { SLOT_STYLE, W_HAS, W_HOLDS, 0 },
    { SLOT_ROW, 0, 0, 2 }, { SLOT_WORD, W_COMMA, 0, 0 },
    { SLOT_WORD, W_ROW, 0, 0 }, { SLOT_WORD, W_FOUR, 0, 0 }, { SLOT_STYLE, W_HAS, W_HOLDS, 0 },
    { SLOT_ROW, 0, 0, 3 }, { SLOT_WORD, W_DOT, 0, 0 },
    { SLOT_STYLE, W_SO, W_THUS, 0 }, { SLOT_WORD, W_THE, 0, 0 }, { SLOT_WORD, W_ANSWER, 0, 0 },
    { SLOT_WORD, W_IS, 0, 0 }, { SLOT_ANSWER, 0, 0, 0 }, { SLOT_WORD, W_DOT, 0, 0 }
};
#define ANSWER_POS 30

static const char *const kind_name[N_KINDS] = { "template words", "style words", "row counts", "answer" };

static int number_of(int32_t tok) { return tok >= W_NUM0 ? tok - W_NUM0 : -1; }

/* The running total of the numbers written so far, updated with the token just written
   (clamped to 16): the context feature the policy gets in place of attention. */
static int running_sum(int sum, int32_t tok)
{
    const int v = number_of(tok);
    if (v > 0) sum += v;
    return sum > MAX_NUMBER ? MAX_NUMBER : sum;
}

/* 1 iff every slot holds what it must and the final number is the right count. */
static float reward_of(const int32_t *tok, const prompt *pr)
{
    int t;
    for (t = 0; t < LEN; ++t) {
        const slot *s = &tmpl[t];
        if (s->kind == SLOT_WORD && tok[t] != s->word) return 0.0f;
        if (s->kind == SLOT_STYLE && tok[t] != s->word && tok[t] != s->alt) return 0.0f;
        if ((s->kind == SLOT_ROW || s->kind == SLOT_ANSWER) && number_of(tok[t]) < 0) return 0.0f;
    }
    return number_of(tok[ANSWER_POS]) == pr->count ? 1.0f : 0.0f;
}

/* The number of row counts in tok that are right (0..4): the perception accuracy. */
static int rows_right(const int32_t *tok, const prompt *pr)
{
    int t, n = 0;
    for (t = 0; t < LEN; ++t)
        if (tmpl[t].kind == SLOT_ROW) n += number_of(tok[t]) == pr->row_count[tmpl[t].row];
    return n;
}

/* A warm-start target: the template with random style choices, row counts that are
   right with probability SFT_RIGHT and random (0..4) otherwise, and the answer = their
   sum: the responses of an SFT model that formats and adds well but sees poorly. */
static void sft_target(uint64_t seed, const prompt *pr, int32_t *tok)
{
    int t, sum = 0;
    for (t = 0; t < LEN; ++t) {
        const slot *s = &tmpl[t];
        const double u = vppo_uniform(seed, (uint64_t)t), u2 = vppo_uniform(seed, LEN + (uint64_t)t);
        if (s->kind == SLOT_WORD) tok[t] = s->word;
        else if (s->kind == SLOT_STYLE) tok[t] = u < 0.5 ? s->word : s->alt;
        else if (s->kind == SLOT_ROW) {
            const int v = u2 < SFT_RIGHT ? pr->row_count[s->row] : (int)(5 * u);
            tok[t] = W_NUM0 + v;
            sum += v;
        } else tok[t] = W_NUM0 + sum;
    }
}

/* ============================================================ the policy network == */

/* h = tanh(b1 + W_vis vis + w_q[question] + w_pos[t] + w_prev[previous token] + w_sum[running sum])
   logits = b_out + W_out h.  Every input but vis is one-hot, so its weight row is added. */
typedef struct policy {
    int64_t n_params;
    float *theta;                     /* every parameter, one block; the views below point into it */
    float *w_vis;                     /* [N_VIS][HIDDEN] */
    float *w_q;                       /* [N_COLOURS][HIDDEN] */
    float *w_pos;                     /* [LEN][HIDDEN] */
    float *w_prev;                    /* [VOCAB + 1][HIDDEN] (+1: BOS) */
    float *w_sum;                     /* [MAX_NUMBER + 1][HIDDEN] */
    float *b1;                        /* [HIDDEN] */
    float *w_out;                     /* [VOCAB][HIDDEN] */
    float *b_out;                     /* [VOCAB] */
} policy;

#define N_INPUT_ROWS (N_VIS + N_COLOURS + LEN + VOCAB + 1 + MAX_NUMBER + 1 + 1)
#define N_PARAMS ((int64_t)N_INPUT_ROWS * HIDDEN + (int64_t)VOCAB * HIDDEN + VOCAB)

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) { fprintf(stderr, "toy_vppo: out of memory\n"); exit(2); }
    return p;
}

/* Point the views of p into block (N_PARAMS floats): parameters and gradients share it. */
static void policy_bind(policy *p, float *block)
{
    p->n_params = N_PARAMS;
    p->theta = block;
    p->w_vis = block;
    p->w_q = p->w_vis + N_VIS * HIDDEN;
    p->w_pos = p->w_q + N_COLOURS * HIDDEN;
    p->w_prev = p->w_pos + LEN * HIDDEN;
    p->w_sum = p->w_prev + (VOCAB + 1) * HIDDEN;
    p->b1 = p->w_sum + (MAX_NUMBER + 1) * HIDDEN;
    p->w_out = p->b1 + HIDDEN;
    p->b_out = p->w_out + VOCAB * HIDDEN;
}

static void policy_alloc(policy *p) { policy_bind(p, (float *)xcalloc((size_t)N_PARAMS, sizeof(float))); }

/* Uniform init: about 25 active inputs per unit, so +-sqrt(3/25) gives unit variance. */
static void policy_init(policy *p, uint64_t seed)
{
    const double a_in = sqrt(3.0 / 25.0), a_out = sqrt(3.0 / HIDDEN);
    const int64_t n_in = (int64_t)N_INPUT_ROWS * HIDDEN, n_out = (int64_t)VOCAB * HIDDEN;
    int64_t i;
    for (i = 0; i < n_in; ++i) p->theta[i] = (float)(a_in * (2 * vppo_uniform(seed, (uint64_t)i) - 1));
    for (i = 0; i < HIDDEN; ++i) p->b1[i] = 0.0f;
    for (i = 0; i < n_out; ++i) p->w_out[i] = (float)(a_out * (2 * vppo_uniform(seed, (uint64_t)(n_in + i)) - 1));
    for (i = 0; i < VOCAB; ++i) p->b_out[i] = 0.0f;
}

/* vis_pre [HIDDEN] = b1 + W_vis vis: the image's part of the hidden pre-activation. */
static void policy_vision(const policy *p, const uint8_t *vis, float *vis_pre)
{
    int f, j;
    for (j = 0; j < HIDDEN; ++j) vis_pre[j] = p->b1[j];
    for (f = 0; f < N_VIS; ++f)
        if (vis[f])
            for (j = 0; j < HIDDEN; ++j) vis_pre[j] += p->w_vis[f * HIDDEN + j];
}

/* tanh(x) = 1 - 2 / (exp(2x) + 1): exact at the limits, and a few times faster than
   libm's tanhf, which is most of the run time otherwise. */
static float tanh_fast(float x) { return 1.0f - 2.0f / (expf(2.0f * x) + 1.0f); }

/* w . h over HIDDEN with four partial sums: a fixed order (the same bits everywhere)
   that the compiler can keep in one vector register. */
static float dot_hidden(const float *w, const float *h)
{
    float acc[4] = { 0, 0, 0, 0 };
    int j, l;
    for (j = 0; j < HIDDEN; j += 4)
        for (l = 0; l < 4; ++l) acc[l] += w[j + l] * h[j + l];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* One position: h [HIDDEN] and logits [VOCAB] from the context (q, t, prev, sum). */
static void policy_token(const policy *p, const float *vis_pre, int q, int t, int prev, int sum,
                         float *h, float *logits)
{
    const float *wq = p->w_q + q * HIDDEN, *wt = p->w_pos + t * HIDDEN;
    const float *wp = p->w_prev + prev * HIDDEN, *ws = p->w_sum + sum * HIDDEN;
    int j, v;
    for (j = 0; j < HIDDEN; ++j) h[j] = tanh_fast(vis_pre[j] + wq[j] + wt[j] + wp[j] + ws[j]);
    for (v = 0; v < VOCAB; ++v) logits[v] = p->b_out[v] + dot_hidden(p->w_out + v * HIDDEN, h);
}

/* A token drawn from softmax(z) with the uniform u (inverse CDF), or the argmax. */
static int32_t choose_token(const float *z, double u, int greedy)
{
    float e[VOCAB], m = z[0];
    double total = 0, acc = 0;
    int v, best = 0;
    for (v = 1; v < VOCAB; ++v) if (z[v] > m) { m = z[v]; best = v; }
    if (greedy) return best;
    for (v = 0; v < VOCAB; ++v) total += e[v] = expf(z[v] - m);
    for (v = 0; v < VOCAB; ++v) {
        acc += e[v];
        if (acc > u * total) return v;
    }
    return best;
}

enum { TEACHER_FORCED, SAMPLED, GREEDY };

/* One response through the policy, position by position: tokens [LEN], hidden
   [LEN][HIDDEN], logits [LEN][VOCAB]. TEACHER_FORCED reads the tokens (the forward pass
   of training); SAMPLED draws each one with vppo_uniform(seed, first + t), GREEDY takes
   the argmax. All go through policy_token, so the logits agree bit for bit. */
static void policy_sequence(const policy *p, const uint8_t *vis, int question, int mode, uint64_t seed,
                            int64_t first, int32_t *tokens, float *hidden, float *logits)
{
    float vis_pre[HIDDEN];
    int t, prev = BOS, sum = 0;
    policy_vision(p, vis, vis_pre);
    for (t = 0; t < LEN; ++t) {
        policy_token(p, vis_pre, question, t, prev, sum, hidden + t * HIDDEN, logits + t * VOCAB);
        if (mode != TEACHER_FORCED)
            tokens[t] = choose_token(logits + t * VOCAB, vppo_uniform(seed, (uint64_t)(first + t)), mode == GREEDY);
        prev = tokens[t];
        sum = running_sum(sum, tokens[t]);
    }
}

/* n responses: vis [n][N_VIS], question [n], tokens [n][LEN], hidden [n][LEN][HIDDEN],
   logits [n][LEN][VOCAB]. Sequences with active[b] == 0 (active NULL: none) are not
   computed: their logits are set to 0, a harmless uniform row for the library. */
static void policy_run(const policy *p, int64_t n, const uint8_t *vis, const int *question,
                       const uint8_t *active, int mode, uint64_t seed,
                       int32_t *tokens, float *hidden, float *logits)
{
    int64_t b;
    for (b = 0; b < n; ++b) {
        if (active && !active[b]) { memset(logits + b * LEN * VOCAB, 0, LEN * VOCAB * sizeof(float)); continue; }
        policy_sequence(p, vis + b * N_VIS, question[b], mode, seed, b * LEN,
                        tokens + b * LEN, hidden + b * LEN * HIDDEN, logits + b * LEN * VOCAB);
    }
}

/* The backward of policy_run (teacher forcing): dlogits [n][LEN][VOCAB] -> gradients
   added into g (a policy view of the gradient block). Sequences with active[b] == 0 are
   skipped (their dlogits are 0). The forward of each line is in policy_token. */
static void policy_backward(const policy *p, policy *g, int64_t n, const uint8_t *vis, const int *question,
                            const int32_t *tokens, const float *hidden, const float *dlogits,
                            const uint8_t *active)
{
    float h[HIDDEN], dh[HIDDEN], dpre[HIDDEN], dvis[HIDDEN];   /* local: the loops vectorise */
    int64_t b;
    int t, j, v, f;
    for (b = 0; b < n; ++b) {
        int prev = BOS, sum = 0;
        if (active && !active[b]) continue;
        for (j = 0; j < HIDDEN; ++j) dvis[j] = 0.0f;
        for (t = 0; t < LEN; ++t) {
            const int64_t i = b * LEN + t;
            const float *dz = dlogits + i * VOCAB;
            float *gq = g->w_q + question[b] * HIDDEN, *gt = g->w_pos + t * HIDDEN;
            float *gp = g->w_prev + prev * HIDDEN, *gs = g->w_sum + sum * HIDDEN;
            memcpy(h, hidden + i * HIDDEN, sizeof h);
            for (j = 0; j < HIDDEN; ++j) dh[j] = 0.0f;
            for (v = 0; v < VOCAB; ++v) {                 /* logits = b_out + W_out h */
                const float dzv = dz[v], *w = p->w_out + v * HIDDEN;
                float *gw = g->w_out + v * HIDDEN;
                g->b_out[v] += dzv;
                for (j = 0; j < HIDDEN; ++j) gw[j] += dzv * h[j];
                for (j = 0; j < HIDDEN; ++j) dh[j] += dzv * w[j];
            }
            for (j = 0; j < HIDDEN; ++j) {                /* h = tanh(pre) */
                dpre[j] = dh[j] * (1.0f - h[j] * h[j]);
                gq[j] += dpre[j]; gt[j] += dpre[j]; gp[j] += dpre[j]; gs[j] += dpre[j];
                dvis[j] += dpre[j];
            }
            prev = tokens[i];
            sum = running_sum(sum, tokens[i]);
        }
        for (j = 0; j < HIDDEN; ++j) g->b1[j] += dvis[j];   /* vis_pre = b1 + W_vis vis */
        for (f = 0; f < N_VIS; ++f)
            if (vis[b * N_VIS + f])
                for (j = 0; j < HIDDEN; ++j) g->w_vis[f * HIDDEN + j] += dvis[j];
    }
}

/* ============================================================ Adam ============== */

typedef struct adam { float *m, *v; int64_t t; } adam;

/* Clip the gradient to a global norm of GRAD_CLIP, then one Adam step (0.9, 0.999, 1e-8). */
static void adam_step(policy *p, const policy *g, adam *a, double lr)
{
    double norm2 = 0, scale, c1, c2;
    int64_t i;
    for (i = 0; i < p->n_params; ++i) norm2 += (double)g->theta[i] * g->theta[i];
    scale = sqrt(norm2) > GRAD_CLIP ? GRAD_CLIP / sqrt(norm2) : 1.0;
    a->t += 1;
    c1 = 1.0 - pow(0.9, (double)a->t);
    c2 = 1.0 - pow(0.999, (double)a->t);
    for (i = 0; i < p->n_params; ++i) {
        const float gi = (float)(g->theta[i] * scale);
        a->m[i] = 0.9f * a->m[i] + 0.1f * gi;
        a->v[i] = 0.999f * a->v[i] + 0.001f * gi * gi;
        p->theta[i] -= (float)(lr * (a->m[i] / c1) / (sqrt(a->v[i] / c2) + 1e-8));
    }
}

/* ============================================================ library helpers === */

static vppo_logits logits_of(const float *z, int64_t n_rows)
{
    vppo_logits x;
    x.data = z; x.dtype = VPPO_F32; x.n_rows = n_rows; x.vocab = VOCAB; x.row_stride = VOCAB;
    x.temperature = 1.0f;
    return x;
}

static void check(vppo_status st, const char *what)
{
    if (st != VPPO_OK) { fprintf(stderr, "toy_vppo: %s: %s\n", what, vppo_status_string(st)); exit(1); }
}

/* ============================================================ warm start (SFT) == */

/* sft_steps of cross-entropy on sft_target responses from a random init: the same
   weights for both methods. The loss is the mean NLL over the N tokens, so
   dloss/dlogp = -1/N per token and vppo_logprobs_backward gives dloss/dlogits. */
static void warm_start(policy *p, uint64_t seed, int sft_steps)
{
    const int64_t n = SFT_BATCH, N = n * LEN;
    prompt *pr = (prompt *)xcalloc((size_t)n, sizeof(prompt));
    uint8_t *vis = (uint8_t *)xcalloc((size_t)(n * N_VIS), 1);
    int *question = (int *)xcalloc((size_t)n, sizeof(int));
    int32_t *tokens = (int32_t *)xcalloc((size_t)N, sizeof(int32_t));
    float *hidden = (float *)xcalloc((size_t)(N * HIDDEN), sizeof(float));
    float *logits = (float *)xcalloc((size_t)(N * VOCAB), sizeof(float));
    float *lse = (float *)xcalloc((size_t)N, sizeof(float)), *dlogp = (float *)xcalloc((size_t)N, sizeof(float));
    policy g;
    adam a;
    vppo_grad_out dz;
    int step;
    int64_t b, i;
    policy_alloc(&g);
    a.m = (float *)xcalloc((size_t)N_PARAMS, sizeof(float));
    a.v = (float *)xcalloc((size_t)N_PARAMS, sizeof(float));
    a.t = 0;
    policy_init(p, stream(TAG_INIT, seed, 0));
    for (i = 0; i < N; ++i) dlogp[i] = -1.0f / (float)N;
    for (step = 0; step < sft_steps; ++step) {
        vppo_logits x;
        for (b = 0; b < n; ++b) {
            const uint64_t id = (uint64_t)(step * n + b);
            make_prompt(stream(TAG_SFT, seed, id), &pr[b]);
            memcpy(vis + b * N_VIS, pr[b].vis, N_VIS);
            question[b] = pr[b].question;
            sft_target(stream(TAG_STYLE, seed, id), &pr[b], tokens + b * LEN);
        }
        policy_run(p, n, vis, question, NULL, TEACHER_FORCED, 0, tokens, hidden, logits);
        x = logits_of(logits, N);
        check(vppo_logprobs(&x, tokens, NULL, lse, NULL), "sft logprobs");
        dz.data = logits; dz.dtype = VPPO_F32; dz.row_stride = VOCAB;   /* in place */
        check(vppo_logprobs_backward(&x, tokens, lse, NULL, dlogp, NULL, &dz), "sft backward");
        memset(g.theta, 0, (size_t)N_PARAMS * sizeof(float));
        policy_backward(p, &g, n, vis, question, tokens, hidden, logits, NULL);
        adam_step(p, &g, &a, SFT_LR);
    }
    free(pr); free(vis); free(question); free(tokens); free(hidden); free(logits); free(lse); free(dlogp);
    free(g.theta); free(a.m); free(a.v);
}

/* ============================================================ evaluation ======== */

typedef struct eval_set { int64_t n; prompt *pr; uint8_t *vis; int *question; } eval_set;

/* Every held-out prompt answered `repeats` times (sampled at temperature 1 with the
   stream `seed`, or greedy). Returns the mean reward; *row_acc (optional) gets the
   fraction of row counts that are right. */
static double evaluate(const policy *p, const eval_set *e, int repeats, int greedy, uint64_t seed, double *row_acc)
{
    const int64_t n = e->n * repeats, N = n * LEN;
    uint8_t *vis = (uint8_t *)xcalloc((size_t)(n * N_VIS), 1);
    int *question = (int *)xcalloc((size_t)n, sizeof(int));
    int32_t *tokens = (int32_t *)xcalloc((size_t)N, sizeof(int32_t));
    float *hidden = (float *)xcalloc((size_t)(N * HIDDEN), sizeof(float));
    float *logits = (float *)xcalloc((size_t)(N * VOCAB), sizeof(float));
    double right = 0, rows = 0;
    int64_t b;
    for (b = 0; b < n; ++b) {   /* response b answers prompt b / repeats */
        memcpy(vis + b * N_VIS, e->vis + (b / repeats) * N_VIS, N_VIS);
        question[b] = e->question[b / repeats];
    }
    policy_run(p, n, vis, question, NULL, greedy ? GREEDY : SAMPLED, seed, tokens, hidden, logits);
    for (b = 0; b < n; ++b) {
        right += reward_of(tokens + b * LEN, &e->pr[b / repeats]);
        rows += rows_right(tokens + b * LEN, &e->pr[b / repeats]);
    }
    if (row_acc) *row_acc = rows / (double)(n * GRID);
    free(vis); free(question); free(tokens); free(hidden); free(logits);
    return right / (double)n;
}

/* ============================================================ one RL run ========= */

#define N_RESP (N_PROMPTS * N_ROLLOUTS)   /* B = 128 responses per step */
#define N_TOK  (N_RESP * LEN)             /* N = 4096 token positions */

/* Everything one step needs, allocated once per run. Shapes: [B] per response,
   [N] per token position (B x LEN, row-major), [N][HIDDEN] hidden, [N][VOCAB] logits. */
typedef struct batch {
    prompt pr[N_PROMPTS];
    uint8_t vis[N_RESP * N_VIS], vis_aug[N_RESP * N_VIS];
    int question[N_RESP];
    float rewards[N_RESP], adv_seq[N_RESP], traj_dep[N_RESP], scale[N_RESP];
    int64_t count[N_RESP], offsets[N_RESP + 1], group_offsets[N_PROMPTS + 1];
    uint8_t keep[N_RESP];
    int32_t tokens[N_TOK];
    float logp_old[N_TOK], logp_aug[N_TOK], logp[N_TOK], lse[N_TOK], dlogp[N_TOK], dep[N_TOK], adv[N_TOK];
    uint8_t mask[N_TOK], select[N_TOK];
    float hidden[N_TOK * HIDDEN], logits[N_TOK * VOCAB];
    float hidden_aug[N_TOK * HIDDEN], logits_aug[N_TOK * VOCAB];
} batch;

/* What a run records. The per-kind sums are over the valid (kept) tokens of every step. */
typedef struct run_log {
    float *reward;              /* [steps] mean reward of the step's 128 rollouts */
    double *acc, *row_acc;      /* [n_evals] held-out greedy accuracy, row counts right */
    double avg8;                /* held-out avg@8 at the end */
    int all_finite;             /* every loss, dependency and gradient finite */
    double n_tok[N_KINDS], dep[N_KINDS], selected[N_KINDS], grad[N_KINDS];
    double scale_min, scale_max; int n_updates;   /* TAS scales, summed over steps */
} run_log;

/* One RL step: sample, score, perturb, and PPO_EPOCHS updates through vppo_step. */
static void rl_step(policy *p, policy *g, adam *a, const vppo_config *cfg, uint64_t seed, int step,
                    batch *bt, run_log *log)
{
    vppo_seqs seqs, groups;
    vppo_prepared prep;
    vppo_logits x, x_aug;
    vppo_grad_out dz;
    vppo_loss_out out;
    double reward_sum = 0, lo = 1e30, hi = -1e30;
    int64_t b, i;
    int epoch, n_kept = 0;

    /* 1. prompts and rollouts: 16 prompts x 8 responses, sampled at temperature 1 */
    for (b = 0; b < N_PROMPTS; ++b)
        make_prompt(stream(TAG_PROMPT, seed, (uint64_t)(step * N_PROMPTS + b)), &bt->pr[b]);
    for (b = 0; b < N_RESP; ++b) {
        memcpy(bt->vis + b * N_VIS, bt->pr[b / N_ROLLOUTS].vis, N_VIS);
        bt->question[b] = bt->pr[b / N_ROLLOUTS].question;
    }
    policy_run(p, N_RESP, bt->vis, bt->question, NULL, SAMPLED, stream(TAG_SAMPLE, seed, (uint64_t)step),
               bt->tokens, bt->hidden, bt->logits);

    /* 2. verifiable reward, GRPO advantages per group of 8, DAPO dynamic sampling (groups
          that are all right or all wrong carry no signal and are masked out) */
    for (b = 0; b < N_RESP; ++b) {
        bt->rewards[b] = reward_of(bt->tokens + b * LEN, &bt->pr[b / N_ROLLOUTS]);
        reward_sum += bt->rewards[b];
    }
    log->reward[step] = (float)(reward_sum / N_RESP);
    check(vppo_offsets_uniform(bt->group_offsets, N_PROMPTS, N_ROLLOUTS), "group offsets");
    groups.n_seqs = N_PROMPTS; groups.offsets = bt->group_offsets; groups.mask = NULL;
    check(vppo_group_advantages(&groups, bt->rewards, VPPO_ADV_GRPO, 1e-6f, bt->adv_seq), "advantages");
    check(vppo_group_filter(&groups, bt->rewards, 0.01, 0.99, bt->keep), "filter");
    for (b = 0; b < N_RESP; ++b) {
        n_kept += bt->keep[b];
        memset(bt->mask + b * LEN, bt->keep[b], LEN);
    }
    if (n_kept == 0) return;   /* nothing to learn from this batch */
    check(vppo_offsets_uniform(bt->offsets, N_RESP, LEN), "offsets");
    seqs.n_seqs = N_RESP; seqs.offsets = bt->offsets; seqs.mask = bt->mask;

    /* 3. log pi_old(o_t | I) from the rollout logits, and log pi_old(o_t | I') of the same
          tokens with each response's image blackened by its own random 14x14 patches */
    x = logits_of(bt->logits, N_TOK);
    check(vppo_logprobs(&x, bt->tokens, bt->logp_old, NULL, NULL), "logp_old");
    for (b = 0; b < N_RESP; ++b) {
        uint8_t pixels[IMG_PX * IMG_PX * 3];
        vppo_image img = image_of(pixels);
        memcpy(pixels, bt->pr[b / N_ROLLOUTS].pixels, sizeof pixels);
        check(vppo_perturb_patch_blackening(&img, CELL_PX, BLACKEN_PROB,
                                            stream(TAG_PERTURB, seed, (uint64_t)(step * N_RESP + b))), "perturb");
        vision_encode(pixels, bt->question[b], bt->vis_aug + b * N_VIS);
    }
    policy_run(p, N_RESP, bt->vis_aug, bt->question, bt->keep, TEACHER_FORCED, 0, bt->tokens, bt->hidden_aug,
               bt->logits_aug);
    x_aug = logits_of(bt->logits_aug, N_TOK);
    check(vppo_logprobs(&x_aug, bt->tokens, bt->logp_aug, NULL, NULL), "logp_aug");

    /* 4. PPO epochs: logp of the current policy; vppo_step (dependency, TAS, TGF and the
          clipped loss) gives dloss/dlogp; vppo_logprobs_backward gives dloss/dlogits; the
          network's backward and Adam do the rest */
    prep.dep = bt->dep; prep.traj_dep = bt->traj_dep; prep.count = bt->count; prep.scale = bt->scale;
    prep.adv = bt->adv; prep.select = bt->select;
    for (epoch = 0; epoch < PPO_EPOCHS; ++epoch) {
        if (epoch > 0)   /* epoch 0 reuses the rollout's forward: the policy has not moved yet */
            policy_run(p, N_RESP, bt->vis, bt->question, bt->keep, TEACHER_FORCED, 0, bt->tokens, bt->hidden,
                       bt->logits);
        check(vppo_logprobs(&x, bt->tokens, bt->logp, bt->lse, NULL), "logp");
        check(vppo_step(cfg, &seqs, bt->logp, bt->logp_old, bt->logp_aug, NULL, bt->adv_seq, &prep,
                        bt->dlogp, &out), "vppo_step");
        if (!isfinite(out.loss)) log->all_finite = 0;
        if (epoch == 0)   /* where the gradient goes: |dlogp| (1 - p) is half of |dloss/dlogits|_1 */
            for (i = 0; i < N_TOK; ++i) {
                const int kind = tmpl[i % LEN].kind;
                if (!bt->mask[i]) continue;
                if (!isfinite(bt->dep[i]) || bt->dep[i] < 0 || !isfinite(bt->dlogp[i])) log->all_finite = 0;
                log->n_tok[kind] += 1;
                log->dep[kind] += bt->dep[i];
                log->selected[kind] += bt->select[i];
                log->grad[kind] += fabs(bt->dlogp[i]) * (1.0 - exp(bt->logp[i]));
            }
        dz.data = bt->logits; dz.dtype = VPPO_F32; dz.row_stride = VOCAB;   /* in place */
        check(vppo_logprobs_backward(&x, bt->tokens, bt->lse, NULL, bt->dlogp, NULL, &dz), "backward");
        memset(g->theta, 0, (size_t)N_PARAMS * sizeof(float));
        policy_backward(p, g, N_RESP, bt->vis, bt->question, bt->tokens, bt->hidden, bt->logits, bt->keep);
        adam_step(p, g, a, RL_LR);
    }
    for (b = 0; b < N_RESP; ++b)
        if (bt->keep[b]) { lo = bt->scale[b] < lo ? bt->scale[b] : lo; hi = bt->scale[b] > hi ? bt->scale[b] : hi; }
    log->scale_min += lo; log->scale_max += hi; log->n_updates += 1;
}

/* The evaluation index of a step (evaluations at 0, 10, 20, ... and at the last step). */
static int eval_index(int step) { return (step + EVAL_EVERY - 1) / EVAL_EVERY; }

/* A whole run: RL from the warm-started weights theta0, with held-out evaluations. */
static void rl_run(const float *theta0, const vppo_config *cfg, uint64_t seed, int steps,
                   const eval_set *e, policy *p, run_log *log)
{
    policy g;
    adam a;
    batch *bt = (batch *)xcalloc(1, sizeof(batch));
    int step;
    policy_alloc(&g);
    a.m = (float *)xcalloc((size_t)N_PARAMS, sizeof(float));
    a.v = (float *)xcalloc((size_t)N_PARAMS, sizeof(float));
    a.t = 0;
    memcpy(p->theta, theta0, (size_t)N_PARAMS * sizeof(float));
    log->all_finite = 1;
    for (step = 0; step <= steps; ++step) {
        if (step % EVAL_EVERY == 0 || step == steps) {
            const int k = eval_index(step);
            log->acc[k] = evaluate(p, e, 1, 1, 0, &log->row_acc[k]);
        }
        if (step < steps) rl_step(p, &g, &a, cfg, seed, step, bt, log);
    }
    log->avg8 = evaluate(p, e, AVG_AT, 0, stream(TAG_EVAL, seed, 1), NULL);
    free(bt); free(g.theta); free(a.m); free(a.v);
}

/* ============================================================ token perception == */

/* The token perception of a policy on the held-out prompts: one sampled response per
   prompt, each scored under its own blackened copy of the image, by the sampled-token
   K3 (what training uses, §2.1) and by the full-logits KL of paper Eq. 3 (§2.2).
   Shapes: [n] per response, [n * LEN] per token. */
typedef struct perception {
    int64_t n;
    int32_t *tokens;
    float *k3, *kl;               /* dependency per token */
    float *traj;                  /* mean K3 per response: the trajectory dependency of TAS */
    uint8_t *top_k3, *top_kl;     /* each response's top 40% tokens by K3 (TGF) and by KL */
    float *reward;
    uint8_t *vis_aug;             /* [n][N_VIS] what the encoder saw of each perturbed image */
} perception;

static void perception_measure(const policy *p, const eval_set *e, perception *m)
{
    const int64_t n = e->n, N = n * LEN;
    float *hidden = (float *)xcalloc((size_t)(N * HIDDEN), sizeof(float));
    float *logits = (float *)xcalloc((size_t)(N * VOCAB), sizeof(float));
    float *logits_aug = (float *)xcalloc((size_t)(N * VOCAB), sizeof(float));
    float *logp = (float *)xcalloc((size_t)N, sizeof(float)), *logp_aug = (float *)xcalloc((size_t)N, sizeof(float));
    int64_t *offsets = (int64_t *)xcalloc((size_t)(n + 1), sizeof(int64_t)), b;
    vppo_logits x = logits_of(logits, N), x_aug = logits_of(logits_aug, N);
    vppo_seqs seqs;
    m->n = n;
    m->tokens = (int32_t *)xcalloc((size_t)N, sizeof(int32_t));
    m->k3 = (float *)xcalloc((size_t)N, sizeof(float));
    m->kl = (float *)xcalloc((size_t)N, sizeof(float));
    m->traj = (float *)xcalloc((size_t)n, sizeof(float));
    m->top_k3 = (uint8_t *)xcalloc((size_t)N, 1);
    m->top_kl = (uint8_t *)xcalloc((size_t)N, 1);
    m->reward = (float *)xcalloc((size_t)n, sizeof(float));
    m->vis_aug = (uint8_t *)xcalloc((size_t)(n * N_VIS), 1);
    policy_run(p, n, e->vis, e->question, NULL, SAMPLED, stream(TAG_SHOW, 0, 0), m->tokens, hidden, logits);
    for (b = 0; b < n; ++b) {
        uint8_t pixels[IMG_PX * IMG_PX * 3];
        vppo_image img = image_of(pixels);
        memcpy(pixels, e->pr[b].pixels, sizeof pixels);
        check(vppo_perturb_patch_blackening(&img, CELL_PX, BLACKEN_PROB, stream(TAG_SHOW, 1, (uint64_t)b)), "perturb");
        vision_encode(pixels, e->question[b], m->vis_aug + b * N_VIS);
        m->reward[b] = reward_of(m->tokens + b * LEN, &e->pr[b]);
    }
    policy_run(p, n, m->vis_aug, e->question, NULL, TEACHER_FORCED, 0, m->tokens, hidden, logits_aug);
    check(vppo_offsets_uniform(offsets, n, LEN), "offsets");
    seqs.n_seqs = n; seqs.offsets = offsets; seqs.mask = NULL;
    check(vppo_logprobs(&x, m->tokens, logp, NULL, NULL), "logp");
    check(vppo_logprobs(&x_aug, m->tokens, logp_aug, NULL, NULL), "logp_aug");
    check(vppo_dependency_sampled(&seqs, logp, logp_aug, VPPO_EST_K3, m->k3), "K3");
    check(vppo_dependency_logits(&x, &x_aug, VPPO_DIV_KL, m->kl), "KL");
    check(vppo_seq_mean(&seqs, m->k3, m->traj, NULL), "traj");
    check(vppo_topk_mask(&seqs, m->k3, 0.4, m->top_k3, NULL), "top-k K3");
    check(vppo_topk_mask(&seqs, m->kl, 0.4, m->top_kl, NULL), "top-k KL");
    free(hidden); free(logits); free(logits_aug); free(logp); free(logp_aug); free(offsets);
}

static void perception_free(perception *m)
{
    free(m->tokens); free(m->k3); free(m->kl); free(m->traj); free(m->top_k3); free(m->top_kl);
    free(m->reward); free(m->vis_aug);
}

typedef struct perception_summary {
    double kl_kind[N_KINDS];          /* mean KL per token kind */
    double top_kind[N_KINDS];         /* fraction of each kind in TGF's top 40% (by K3) */
    double share_kl, share_k3;        /* share of the total dependency on the top 40% */
    double share_numbers;             /* share of the total KL on the row counts and the answer */
    double mean_k3, mean_kl, corr;    /* over all tokens; Pearson r(K3, KL) */
    double traj_q[7];                 /* quantiles of traj: 0, 10, 25, 50, 75, 90, 100% */
    int finite;                       /* every value finite and >= 0 */
} perception_summary;

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted[n] (linear interpolation). */
static double quantile(const double *sorted, int64_t n, double q)
{
    const double pos = q * (double)(n - 1);
    const int64_t lo = (int64_t)pos;
    return lo + 1 < n ? sorted[lo] + (pos - (double)lo) * (sorted[lo + 1] - sorted[lo]) : sorted[n - 1];
}

static void perception_summarise(const perception *m, perception_summary *s)
{
    static const double qs[7] = { 0, 0.1, 0.25, 0.5, 0.75, 0.9, 1 };
    const int64_t N = m->n * LEN;
    double n_kind[N_KINDS] = { 0 }, tot_kl = 0, tot_k3 = 0, top_kl = 0, top_k3 = 0;
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    double *sorted = (double *)xcalloc((size_t)m->n, sizeof(double));
    int64_t i;
    int k;
    memset(s, 0, sizeof *s);
    s->finite = 1;
    for (i = 0; i < N; ++i) {
        const int kind = tmpl[i % LEN].kind;
        const double x = m->k3[i], y = m->kl[i];
        if (!(x >= 0 && y >= 0 && isfinite(x) && isfinite(y))) s->finite = 0;
        n_kind[kind] += 1;
        s->kl_kind[kind] += y;
        s->top_kind[kind] += m->top_k3[i];
        tot_kl += y; tot_k3 += x;
        top_kl += m->top_kl[i] ? y : 0; top_k3 += m->top_k3[i] ? x : 0;
        sx += x; sy += y; sxx += x * x; syy += y * y; sxy += x * y;
    }
    for (k = 0; k < N_KINDS; ++k) { s->kl_kind[k] /= n_kind[k]; s->top_kind[k] /= n_kind[k]; }
    s->share_kl = tot_kl > 0 ? top_kl / tot_kl : 0;
    s->share_numbers = tot_kl > 0 ? (s->kl_kind[SLOT_ROW] * n_kind[SLOT_ROW] + s->kl_kind[SLOT_ANSWER] * n_kind[SLOT_ANSWER]) / tot_kl : 0;
    s->share_k3 = tot_k3 > 0 ? top_k3 / tot_k3 : 0;
    s->mean_k3 = sx / (double)N;
    s->mean_kl = sy / (double)N;
    {
        const double cov = sxy - sx * sy / (double)N, vx = sxx - sx * sx / (double)N, vy = syy - sy * sy / (double)N;
        s->corr = vx > 0 && vy > 0 ? cov / sqrt(vx * vy) : 0;
    }
    for (i = 0; i < m->n; ++i) sorted[i] = m->traj[i];
    qsort(sorted, (size_t)m->n, sizeof(double), cmp_double);
    for (k = 0; k < 7; ++k) s->traj_q[k] = quantile(sorted, m->n, qs[k]);
    free(sorted);
}

/* " ###...": a bar of '#' proportional to x / max (width characters at max), or nothing. */
static void print_bar(double x, double max, int width)
{
    int k, n = max > 0 ? (int)(width * x / max + 0.5) : 0;
    if (n > 0) putchar(' ');
    for (k = 0; k < n; ++k) putchar('#');
}

/* The image as letters: the asked colour in capitals, others in lower case, and the
   perturbed copy beside it with '.' for a blackened cell. */
static void print_grids(const prompt *pr, const uint8_t *vis_aug)
{
    int r, c;
    printf("    image          perturbed (14x14 patches blackened with prob 0.5)\n");
    for (r = 0; r < GRID; ++r) {
        printf("    ");
        for (c = 0; c < GRID; ++c) {
            const int col = pr->colour[r * GRID + c];
            printf("%c ", col == pr->question ? colour_letter[col] : colour_letter[col] + 'a' - 'A');
        }
        printf("       ");
        for (c = 0; c < GRID; ++c) {
            const int cell = r * GRID + c, col = pr->colour[cell];
            printf("%c ", !vis_aug[2 * cell + 1] ? '.' : col == pr->question ? colour_letter[col]
                                                                              : colour_letter[col] + 'a' - 'A');
        }
        printf("     row %d: %d %s\n", r + 1, pr->row_count[r], colour_name[pr->question]);
    }
}

/* Insight 1 made visible: one response, token by token. */
static void print_heatmap(const perception *m, const eval_set *e, int64_t b)
{
    const int32_t *tok = m->tokens + b * LEN;
    const float *k3 = m->k3 + b * LEN, *kl = m->kl + b * LEN;
    double max = 0;
    int t;
    for (t = 0; t < LEN; ++t) max = kl[t] > max ? kl[t] : max;
    printf("  Held-out prompt %lld: \"how many %s cells?\" (answer %d)\n", (long long)b,
           colour_name[e->question[b]], e->pr[b].count);
    print_grids(&e->pr[b], m->vis_aug + b * N_VIS);
    printf("\n  Sampled response (reward %.0f):\n   ", m->reward[b]);
    for (t = 0; t < LEN; ++t) printf(" %s%s", word_text[tok[t]], t == 15 ? "\n   " : "");
    printf("\n\n  token     K3      KL      KL (bar; * = in the top 40%% by K3, the tokens TGF keeps)\n");
    for (t = 0; t < LEN; ++t) {
        const int sel = m->top_k3[b * LEN + t], bar = max > 0 && (int)(40 * kl[t] / max + 0.5) > 0;
        printf("  %-7s %6.3f  %6.3f%s", word_text[tok[t]], k3[t], kl[t], sel ? "  *" : bar ? "   " : "");
        print_bar(kl[t], max, 40);
        printf("\n");
    }
}

/* ============================================================ SVG =============== */

static const char *const method_colour[2] = { "#4c72b0", "#dd8452" };

/* One panel: axes with ticks, and per method a mean line with a +-sd band.
   y[m][s][i] is series i of seed s of method m, at x positions xs[i]. */
static void svg_panel(FILE *f, double x0, double y0, double w, double h, const char *title,
                      int n_points, const double *xs, double x_max, const double *const *y_mean,
                      const double *const *y_sd)
{
    int m, i, k;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n", x0 + w / 2, y0 - 10, title);
    for (k = 0; k <= 5; ++k) {   /* y grid and ticks: 0, 0.2, ..., 1 */
        const double y = y0 + h - h * k / 5.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x0, y, x0 + w, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%.1f</text>\n", x0 - 5, y + 4, k / 5.0);
    }
    for (k = 0; k <= 4; ++k) {   /* x ticks at quarters */
        const double x = x0 + w * k / 4.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\"/>\n", x, y0 + h, x, y0 + h + 4);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%.0f</text>\n", x, y0 + h + 16, x_max * k / 4.0);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">RL step</text>\n", x0 + w / 2, y0 + h + 32);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#000\"/>\n", x0, y0, w, h);
    for (m = 0; m < 2; ++m) {
#define SVG_X(i) (x0 + w * xs[i] / x_max)
#define SVG_Y(v) (y0 + h - h * ((v) < 0 ? 0 : (v) > 1 ? 1 : (v)))
        fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.2\" stroke=\"none\" points=\"", method_colour[m]);
        for (i = 0; i < n_points; ++i) fprintf(f, "%.1f,%.1f ", SVG_X(i), SVG_Y(y_mean[m][i] + y_sd[m][i]));
        for (i = n_points - 1; i >= 0; --i) fprintf(f, "%.1f,%.1f ", SVG_X(i), SVG_Y(y_mean[m][i] - y_sd[m][i]));
        fprintf(f, "\"/>\n<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", method_colour[m]);
        for (i = 0; i < n_points; ++i) fprintf(f, "%.1f,%.1f ", SVG_X(i), SVG_Y(y_mean[m][i]));
        fprintf(f, "\"/>\n");
#undef SVG_X
#undef SVG_Y
    }
}

/* Mean and sample (n - 1) standard deviation; sd 0 when n < 2. */
static void mean_sd(const double *x, int n, double *mean, double *sd)
{
    double m = 0, s = 0;
    int i;
    for (i = 0; i < n; ++i) m += x[i];
    m /= n;
    for (i = 0; i < n; ++i) s += (x[i] - m) * (x[i] - m);
    *mean = m;
    *sd = n > 1 ? sqrt(s / (n - 1)) : 0.0;
}

/* The mean training reward of a run over the 10 steps before `step` (step 0: of step 0). */
static double recent_reward(const run_log *log, int step)
{
    double sum = 0;
    int t, lo = step - EVAL_EVERY < 0 ? 0 : step - EVAL_EVERY, hi = step == 0 ? 1 : step;
    for (t = lo; t < hi; ++t) sum += log->reward[t];
    return sum / (hi - lo);
}

enum { GRPO = 0, VPPO = 1, N_METHODS = 2 };
static const char *const method_name[N_METHODS] = { "GRPO/DAPO", "VPPO" };

/* docs/img/toy_curves.svg: training reward and held-out accuracy, mean +- sd over seeds.
   logs[seed * 2 + method]. */
static int svg_curves(const char *path, const run_log *logs, int n_seeds, int steps, int n_evals)
{
    FILE *f = fopen(path, "w");
    double *xs = (double *)xcalloc((size_t)steps, sizeof(double)), *xe = (double *)xcalloc((size_t)n_evals, sizeof(double));
    double *mean[2][2], *sd[2][2], *tmp = (double *)xcalloc((size_t)n_seeds, sizeof(double));
    int m, s, i, panel;
    if (!f) { free(xs); free(xe); free(tmp); return 0; }
    for (panel = 0; panel < 2; ++panel)
        for (m = 0; m < 2; ++m) {
            const int n = panel == 0 ? steps : n_evals;
            mean[panel][m] = (double *)xcalloc((size_t)n, sizeof(double));
            sd[panel][m] = (double *)xcalloc((size_t)n, sizeof(double));
            for (i = 0; i < n; ++i) {
                for (s = 0; s < n_seeds; ++s) {
                    const run_log *log = &logs[s * N_METHODS + m];
                    if (panel == 0) {   /* trailing 10-step moving average */
                        double sum = 0;
                        int t, lo = i - EVAL_EVERY + 1 < 0 ? 0 : i - EVAL_EVERY + 1;
                        for (t = lo; t <= i; ++t) sum += log->reward[t];
                        tmp[s] = sum / (i - lo + 1);
                    } else tmp[s] = log->acc[i];
                }
                mean_sd(tmp, n_seeds, &mean[panel][m][i], &sd[panel][m][i]);
            }
        }
    for (i = 0; i < steps; ++i) xs[i] = i;
    for (i = 0; i < n_evals; ++i) xe[i] = i * EVAL_EVERY < steps ? i * EVAL_EVERY : steps;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"860\" height=\"340\" viewBox=\"0 0 860 340\" "
               "font-family=\"sans-serif\">\n<rect width=\"860\" height=\"340\" fill=\"#fff\"/>\n");
    svg_panel(f, 60, 40, 340, 230, "training reward (128 rollouts, 10-step mean)", steps, xs, steps,
              (const double *const *)mean[0], (const double *const *)sd[0]);
    svg_panel(f, 490, 40, 340, 230, "held-out accuracy (256 prompts, greedy)", n_evals, xe, steps,
              (const double *const *)mean[1], (const double *const *)sd[1]);
    for (m = 0; m < 2; ++m) {
        fprintf(f, "<line x1=\"%d\" y1=\"325\" x2=\"%d\" y2=\"325\" stroke=\"%s\" stroke-width=\"3\"/>\n",
                160 + 260 * m, 185 + 260 * m, method_colour[m]);
        fprintf(f, "<text x=\"%d\" y=\"329\" font-size=\"12\">%s</text>\n", 190 + 260 * m,
                m == GRPO ? "GRPO/DAPO (use_tas = use_tgf = 0)" : "VPPO (vppo_config_default)");
    }
    fprintf(f, "<text x=\"690\" y=\"329\" font-size=\"11\" fill=\"#555\">mean &#177; sd over %d seeds</text>\n</svg>\n", n_seeds);
    for (panel = 0; panel < 2; ++panel)
        for (m = 0; m < 2; ++m) { free(mean[panel][m]); free(sd[panel][m]); }
    free(xs); free(xe); free(tmp);
    return fclose(f) == 0;
}

/* docs/img/toy_heatmap.svg: the tokens of one response shaded by their KL dependency;
   a thick outline marks the top 40% by K3 that TGF keeps. */
static int svg_heatmap(const char *path, const perception *m, const eval_set *e, int64_t b)
{
    FILE *f = fopen(path, "w");
    const int32_t *tok = m->tokens + b * LEN;
    const float *kl = m->kl + b * LEN;
    double max = 0;
    int t;
    if (!f) return 0;
    for (t = 0; t < LEN; ++t) max = kl[t] > max ? kl[t] : max;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"880\" height=\"170\" viewBox=\"0 0 880 170\" "
               "font-family=\"sans-serif\">\n<rect width=\"880\" height=\"170\" fill=\"#fff\"/>\n");
    fprintf(f, "<text x=\"20\" y=\"22\" font-size=\"13\">Token perception of one sampled response (VPPO, held-out "
               "prompt %lld: how many %s cells? answer %d): KL(&#960;(&#183;|I) &#8741; &#960;(&#183;|I&#8242;))</text>\n",
            (long long)b, colour_name[e->question[b]], e->pr[b].count);
    for (t = 0; t < LEN; ++t) {
        const double x = 20 + (t % 16) * 52, y = 38 + (t / 16) * 62;
        const int sel = m->top_k3[b * LEN + t];
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"50\" height=\"34\" fill=\"#d62728\" fill-opacity=\"%.3f\" "
                   "stroke=\"#000\" stroke-width=\"%s\"/>\n", x, y, max > 0 ? kl[t] / max : 0.0, sel ? "2" : "0.3");
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n", x + 25, y + 22, word_text[tok[t]]);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">%.3f</text>\n", x + 25, y + 48, kl[t]);
    }
    fprintf(f, "<text x=\"20\" y=\"164\" font-size=\"11\" fill=\"#555\">shade and number: KL per token; thick outline: "
               "top 40%% by the sampled-token K3 estimate (what TGF keeps)</text>\n</svg>\n");
    return fclose(f) == 0;
}

/* ============================================================ main ============== */

typedef struct options { int seeds, steps, sft_steps, quick, simd; const char *svg_dir; } options;

static void usage(void)
{
    fprintf(stderr, "usage: toy_vppo [--seeds N] [--steps N] [--svg DIR | --no-svg] [--simd] [--quick]\n");
    exit(2);
}

static options parse_options(int argc, char **argv)
{
    options o;
    int i;
    o.seeds = 5; o.steps = 200; o.sft_steps = SFT_STEPS; o.quick = 0; o.simd = 0; o.svg_dir = "docs/img";
    for (i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--quick")) { o.quick = 1; o.seeds = 1; o.steps = 4; o.sft_steps = 30; o.svg_dir = NULL; }
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) o.seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) o.steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--svg") && i + 1 < argc) o.svg_dir = argv[++i];
        else if (!strcmp(argv[i], "--no-svg")) o.svg_dir = NULL;
        else if (!strcmp(argv[i], "--simd")) o.simd = 1;
        else usage();
    }
    if (o.seeds < 1 || o.seeds > 100 || o.steps < 1 || o.steps > 100000) usage();
    return o;
}

static void print_task(const options *o)
{
    printf("vppo.h %d.%d.%d toy: VPPO against GRPO/DAPO on \"how many <colour> cells?\" over a 4x4 grid\n\n",
           VPPO_VERSION_MAJOR, VPPO_VERSION_MINOR, VPPO_VERSION_PATCH);
    printf("  image       56x56 RGB, 4x4 cells of 4 colours, one cell = one 14x14 patch; a frozen\n"
           "              question-aware encoder gives 2 features per cell (asked colour?, visible?)\n");
    printf("  response    %d tokens: \"the grid has four rows . row one has 1 , ... so the answer is 4 .\"\n"
           "              perception: the 4 row counts (and the answer, if the policy learns to read it);\n"
           "              language prior: 22 template words, 5 free style words (has/holds, so/thus)\n", LEN);
    printf("  policy      one hidden layer of %d tanh units over image, question, position, previous\n"
           "              token and running total; %d-token vocabulary; %lld parameters\n",
           HIDDEN, VOCAB, (long long)N_PARAMS);
    printf("  warm start  %d SFT steps x %d responses whose row counts are right half of the time\n"
           "              (the answer is always their sum): formats and adds, sees poorly\n", o->sft_steps, SFT_BATCH);
    printf("  reward      1 iff the format holds and the final number is the right count\n");
    printf("  RL          %d seed%s x %d steps x %d prompts x %d rollouts, %d Adam updates per batch (lr %g),\n"
           "              DAPO dynamic sampling, clip 0.2/0.28, dual clip 3, entropy penalty 0.06;\n"
           "              I' = patch blackening (14 px, p = 0.5), a fresh mask per response\n",
           o->seeds, o->seeds > 1 ? "s" : "", o->steps, N_PROMPTS, N_ROLLOUTS, PPO_EPOCHS, RL_LR);
    printf("  methods     GRPO/DAPO = vppo_config_default() with use_tas = use_tgf = 0;\n"
           "              VPPO = vppo_config_default() (K3, TAS mean-preserving 0.9, TGF top 40%%);\n"
           "              same warm start, prompts, masks and random numbers per seed\n\n");
    fflush(stdout);
}

/* Training statistics per method, pooled over seeds; [N_METHODS][N_KINDS]. */
typedef struct training_stats {
    double n_tok[N_METHODS][N_KINDS], dep[N_METHODS][N_KINDS], sel[N_METHODS][N_KINDS];
    double grad[N_METHODS][N_KINDS], grad_total[N_METHODS];
    double scale_lo[N_METHODS], scale_hi[N_METHODS], n_up[N_METHODS];
} training_stats;

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

/* "0.123 +- 0.045" of x[0..n) */
static void print_mean_sd(const double *x, int n)
{
    double m, s;
    mean_sd(x, n, &m, &s);
    printf("%.3f +- %.3f", m, s);
}

/* The paired comparison of VPPO and GRPO over seeds, in words, from the numbers. */
static void print_verdict(const char *what, const double *grpo, const double *vppo, int n)
{
    double d[100], md, sd, se;
    int s, ahead = 0, behind = 0;
    for (s = 0; s < n; ++s) {
        d[s] = vppo[s] - grpo[s];
        ahead += d[s] > 0;
        behind += d[s] < 0;
    }
    mean_sd(d, n, &md, &sd);
    se = sd / sqrt((double)n);
    printf("  %s: VPPO - GRPO/DAPO = %+.3f (sd %.3f, standard error %.3f;\n"
           "    VPPO ahead on %d, behind on %d of %d seeds): ", what, md, sd, se, ahead, behind, n);
    if (n < 3) printf("too few seeds to tell.\n");
    else if (fabs(md) > 2 * se && se > 0)
        printf("more than twice its standard error,\n    so VPPO is %s on this toy.\n", md > 0 ? "ahead" : "behind");
    else printf("within two standard errors of zero,\n    so the seeds do not separate the two methods.\n");
}

int main(int argc, char **argv)
{
    const options o = parse_options(argc, argv);
    const int n_evals = eval_index(o.steps) + 1, n_runs = N_METHODS * o.seeds;
    vppo_config cfg[N_METHODS];
    eval_set e;
    float *theta_sft = (float *)xcalloc((size_t)(o.seeds * N_PARAMS), sizeof(float));
    policy *final = (policy *)xcalloc((size_t)n_runs, sizeof(policy));
    run_log *logs = (run_log *)xcalloc((size_t)n_runs, sizeof(run_log));
    double *col[N_METHODS], *row_col[N_METHODS], *avg_col[N_METHODS], *auc_col[N_METHODS];
    perception pm[N_METHODS];
    perception_summary ps[N_METHODS];
    training_stats tr;
    int s, r, k, m, ok = 1, n_free = 0;
    int64_t b;

    memset(&tr, 0, sizeof tr);
    for (k = 0; k < LEN; ++k) n_free += tmpl[k].kind != SLOT_WORD;
    if (!o.simd) check(vppo_isa_select(VPPO_ISA_SCALAR), "isa");
    (void)vppo_isa_active();   /* settle the ISA before any thread starts */
    cfg[VPPO] = vppo_config_default();
    cfg[GRPO] = cfg[VPPO];
    cfg[GRPO].use_tas = 0;
    cfg[GRPO].use_tgf = 0;
    print_task(&o);

    /* the held-out prompts: one fixed set for every run */
    e.n = o.quick ? 32 : N_EVAL;
    e.pr = (prompt *)xcalloc((size_t)e.n, sizeof(prompt));
    e.vis = (uint8_t *)xcalloc((size_t)(e.n * N_VIS), 1);
    e.question = (int *)xcalloc((size_t)e.n, sizeof(int));
    for (b = 0; b < e.n; ++b) {
        make_prompt(stream(TAG_EVAL, 0, (uint64_t)b), &e.pr[b]);
        memcpy(e.vis + b * N_VIS, e.pr[b].vis, N_VIS);
        e.question[b] = e.pr[b].question;
    }

    /* the warm start, once per seed, shared by both methods; then the runs, (seed,
       method) pairs that share nothing: each is computed by one thread, in order */
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (s = 0; s < o.seeds; ++s) {
        policy p;
        policy_bind(&p, theta_sft + (int64_t)s * N_PARAMS);
        warm_start(&p, (uint64_t)s, o.sft_steps);
    }
    for (r = 0; r < n_runs; ++r) {
        policy_alloc(&final[r]);
        logs[r].reward = (float *)xcalloc((size_t)o.steps, sizeof(float));
        logs[r].acc = (double *)xcalloc((size_t)n_evals, sizeof(double));
        logs[r].row_acc = (double *)xcalloc((size_t)n_evals, sizeof(double));
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (r = 0; r < n_runs; ++r)
        rl_run(theta_sft + (int64_t)(r / N_METHODS) * N_PARAMS, &cfg[r % N_METHODS], (uint64_t)(r / N_METHODS),
               o.steps, &e, &final[r], &logs[r]);

    /* ---- learning curves ---------------------------------------------------------- */
    for (m = 0; m < N_METHODS; ++m) {
        col[m] = (double *)xcalloc((size_t)o.seeds, sizeof(double));
        row_col[m] = (double *)xcalloc((size_t)o.seeds, sizeof(double));
        avg_col[m] = (double *)xcalloc((size_t)o.seeds, sizeof(double));
        auc_col[m] = (double *)xcalloc((size_t)o.seeds, sizeof(double));
    }
    printf("Learning curves (mean +- sd over %d seed%s):\n\n", o.seeds, o.seeds > 1 ? "s" : "");
    printf("   step   training reward (mean of the 10 steps before)   held-out accuracy (greedy, %lld prompts)\n",
           (long long)e.n);
    printf("          GRPO/DAPO          VPPO                          GRPO/DAPO          VPPO\n");
    {
        const int stride = n_evals > 11 ? (n_evals - 1 + 9) / 10 : 1;
        for (k = 0; k < n_evals; ++k) {
            const int step = k * EVAL_EVERY < o.steps ? k * EVAL_EVERY : o.steps;
            if (k % stride != 0 && k != n_evals - 1) continue;
            printf("  %5d   ", step);
            for (m = 0; m < N_METHODS; ++m) {
                for (s = 0; s < o.seeds; ++s) col[m][s] = recent_reward(&logs[s * N_METHODS + m], step);
                print_mean_sd(col[m], o.seeds);
                printf(m == 0 ? "    " : "              ");
            }
            for (m = 0; m < N_METHODS; ++m) {
                for (s = 0; s < o.seeds; ++s) col[m][s] = logs[s * N_METHODS + m].acc[k];
                print_mean_sd(col[m], o.seeds);
                printf(m == 0 ? "    " : "\n");
            }
        }
    }

    /* ---- final numbers ------------------------------------------------------------ */
    for (m = 0; m < N_METHODS; ++m)
        for (s = 0; s < o.seeds; ++s) {
            const run_log *log = &logs[s * N_METHODS + m];
            col[m][s] = log->acc[n_evals - 1];
            row_col[m][s] = log->row_acc[n_evals - 1];
            avg_col[m][s] = log->avg8;
            auc_col[m][s] = 0;
            for (k = 0; k < n_evals; ++k) auc_col[m][s] += log->acc[k] / n_evals;
        }
    printf("\nAfter %d steps, on the %lld held-out prompts (mean +- sd over seeds):\n\n", o.steps, (long long)e.n);
    printf("                                   GRPO/DAPO          VPPO\n");
    printf("  accuracy, greedy                 "); print_mean_sd(col[GRPO], o.seeds); printf("    "); print_mean_sd(col[VPPO], o.seeds); printf("\n");
    printf("  accuracy, avg@%d (temperature 1)  ", AVG_AT); print_mean_sd(avg_col[GRPO], o.seeds); printf("    "); print_mean_sd(avg_col[VPPO], o.seeds); printf("\n");
    printf("  row counts right, greedy         "); print_mean_sd(row_col[GRPO], o.seeds); printf("    "); print_mean_sd(row_col[VPPO], o.seeds);
    {   /* the blind baseline: "1" for every row */
        int ones = 0;
        for (b = 0; b < e.n; ++b) for (k = 0; k < GRID; ++k) ones += e.pr[b].row_count[k] == 1;
        printf("   (writing 1 for every row: %.3f)\n", ones / (double)(e.n * GRID));
    }
    printf("  accuracy over the whole run      "); print_mean_sd(auc_col[GRPO], o.seeds); printf("    "); print_mean_sd(auc_col[VPPO], o.seeds); printf("\n");
    for (m = 0; m < N_METHODS; ++m) {
        printf("  per seed, greedy, %-9s     ", method_name[m]);
        for (s = 0; s < o.seeds; ++s) printf(" %.3f", col[m][s]);
        printf("\n");
    }

    /* ---- where the gradient went (training rollouts, all steps, seeds pooled) ------- */
    for (r = 0; r < n_runs; ++r) {
        m = r % N_METHODS;
        for (k = 0; k < N_KINDS; ++k) {
            tr.n_tok[m][k] += logs[r].n_tok[k]; tr.dep[m][k] += logs[r].dep[k];
            tr.sel[m][k] += logs[r].selected[k]; tr.grad[m][k] += logs[r].grad[k];
            tr.grad_total[m] += logs[r].grad[k];
        }
        tr.scale_lo[m] += logs[r].scale_min; tr.scale_hi[m] += logs[r].scale_max; tr.n_up[m] += logs[r].n_updates;
    }
    printf("\nDuring training (kept rollouts of every step, seeds pooled):\n\n");
    printf("                          mean K3 dependency       kept by TGF         share of |dloss/dlogits|\n");
    printf("                          GRPO/DAPO   VPPO        GRPO/DAPO  VPPO      GRPO/DAPO  VPPO\n");
    for (k = 0; k < N_KINDS; ++k)
        printf("  %-22s  %8.4f   %8.4f     %6.1f%%   %6.1f%%    %6.1f%%   %6.1f%%\n", kind_name[k],
               ratio(tr.dep[GRPO][k], tr.n_tok[GRPO][k]), ratio(tr.dep[VPPO][k], tr.n_tok[VPPO][k]),
               100 * ratio(tr.sel[GRPO][k], tr.n_tok[GRPO][k]), 100 * ratio(tr.sel[VPPO][k], tr.n_tok[VPPO][k]),
               100 * ratio(tr.grad[GRPO][k], tr.grad_total[GRPO]), 100 * ratio(tr.grad[VPPO][k], tr.grad_total[VPPO]));
    printf("  TAS scales within a batch: GRPO/DAPO %.2f..%.2f, VPPO %.2f..%.2f (mean lowest..highest)\n",
           ratio(tr.scale_lo[GRPO], tr.n_up[GRPO]), ratio(tr.scale_hi[GRPO], tr.n_up[GRPO]),
           ratio(tr.scale_lo[VPPO], tr.n_up[VPPO]), ratio(tr.scale_hi[VPPO], tr.n_up[VPPO]));

    /* ---- the conclusion, computed --------------------------------------------------- */
    {
        double mg, sg, mv, sv;
        mean_sd(col[GRPO], o.seeds, &mg, &sg);
        mean_sd(col[VPPO], o.seeds, &mv, &sv);
        printf("\nConclusion: after %d steps VPPO reaches a held-out accuracy of %.3f +- %.3f and GRPO/DAPO\n"
               "%.3f +- %.3f (greedy, %d seed%s, identical warm start, prompts and budget).\n",
               o.steps, mv, sv, mg, sg, o.seeds, o.seeds > 1 ? "s" : "");
        print_verdict("At the last step", col[GRPO], col[VPPO], o.seeds);
        print_verdict("Averaged over the whole run", auc_col[GRPO], auc_col[VPPO], o.seeds);
        print_verdict("With avg@8 at the last step", avg_col[GRPO], avg_col[VPPO], o.seeds);
        printf("What VPPO changed: TGF keeps the top %d of the %d tokens of a response, and %d tokens are\n"
               "not fixed by the template. In training it dropped %.1f%% of the template words and %.1f%% of\n"
               "the other tokens; the template words carried %.1f%% of GRPO/DAPO's |dloss/dlogits|. TAS\n"
               "scaled the advantages by %.2f..%.2f within a batch (mean lowest..highest).\n",
               (int)ceil(0.4 * LEN - 1e-9), LEN, n_free,
               100 * (1 - ratio(tr.sel[VPPO][SLOT_WORD], tr.n_tok[VPPO][SLOT_WORD])),
               100 * (1 - ratio(tr.sel[VPPO][SLOT_STYLE] + tr.sel[VPPO][SLOT_ROW] + tr.sel[VPPO][SLOT_ANSWER],
                                tr.n_tok[VPPO][SLOT_STYLE] + tr.n_tok[VPPO][SLOT_ROW] + tr.n_tok[VPPO][SLOT_ANSWER])),
               100 * ratio(tr.grad[GRPO][SLOT_WORD], tr.grad_total[GRPO]),
               ratio(tr.scale_lo[VPPO], tr.n_up[VPPO]), ratio(tr.scale_hi[VPPO], tr.n_up[VPPO]));
    }

    /* ---- token perception of the final policies (seed 0) ------------------------------ */
    for (m = 0; m < N_METHODS; ++m) {
        perception_measure(&final[m], &e, &pm[m]);
        perception_summarise(&pm[m], &ps[m]);
        ok &= ps[m].finite;
    }
    printf("\nToken perception of the final policies of seed 0: one sampled response per held-out\n"
           "prompt, each scored under its own blackened image; KL = full-logits KL(pi(.|I) || pi(.|I')),\n"
           "paper Eq. 3 (vppo_dependency_logits); K3 = the sampled-token estimate that training uses.\n\n");
    print_heatmap(&pm[VPPO], &e, 0);
    printf("\n                                            GRPO/DAPO      VPPO\n");
    for (k = 0; k < N_KINDS; ++k)
        printf("  mean KL, %-22s            %8.4f   %8.4f\n", kind_name[k], ps[GRPO].kl_kind[k], ps[VPPO].kl_kind[k]);
    printf("  insight 1, sparse: share of all KL on each\n"
           "    response's top 40%% tokens (by KL)          %6.1f%%    %6.1f%%\n", 100 * ps[GRPO].share_kl, 100 * ps[VPPO].share_kl);
    printf("    the same with K3 (top 40%% by K3)           %6.1f%%    %6.1f%%\n", 100 * ps[GRPO].share_k3, 100 * ps[VPPO].share_k3);
    printf("    share of all KL on the 5 numbers (16%% of\n"
           "    the tokens: row counts and answer)          %6.1f%%    %6.1f%%\n", 100 * ps[GRPO].share_numbers, 100 * ps[VPPO].share_numbers);
    for (k = 0; k < N_KINDS; ++k)
        printf("    %-22s in TGF's top 40%%      %6.1f%%    %6.1f%%\n", kind_name[k], 100 * ps[GRPO].top_kind[k], 100 * ps[VPPO].top_kind[k]);
    printf("  K3 against KL: mean K3 / mean KL            %.4f/%.4f  %.4f/%.4f\n",
           ps[GRPO].mean_k3, ps[GRPO].mean_kl, ps[VPPO].mean_k3, ps[VPPO].mean_kl);
    printf("    Pearson r(K3, KL) per token                %6.3f     %6.3f\n", ps[GRPO].corr, ps[VPPO].corr);
    printf("  insight 2, trajectories differ: trajectory dependency (mean K3 per response) quantiles\n");
    {
        static const char *const qname[7] = { "min", "10%", "25%", "50%", "75%", "90%", "max" };
        for (k = 0; k < 7; ++k)
            printf("    %-40s  %8.4f   %8.4f\n", qname[k], ps[GRPO].traj_q[k], ps[VPPO].traj_q[k]);
    }
    {   /* histogram of the VPPO policy's trajectory dependencies */
        int hist[10] = { 0 }, most = 1;
        const double hi = ps[VPPO].traj_q[6] > 0 ? ps[VPPO].traj_q[6] : 1;
        for (b = 0; b < pm[VPPO].n; ++b) {
            int bin = (int)(10 * pm[VPPO].traj[b] / hi);
            hist[bin > 9 ? 9 : bin] += 1;
        }
        for (k = 0; k < 10; ++k) most = hist[k] > most ? hist[k] : most;
        printf("\n  VPPO trajectory dependency, histogram of the %lld responses:\n", (long long)pm[VPPO].n);
        for (k = 0; k < 10; ++k) {
            printf("    %.4f..%.4f %4d", hi * k / 10, hi * (k + 1) / 10, hist[k]);
            print_bar(hist[k], most, 40);
            printf("\n");
        }
    }

    /* ---- pictures ------------------------------------------------------------------- */
    if (o.svg_dir) {
        char path[1024];
        snprintf(path, sizeof path, "%s/toy_curves.svg", o.svg_dir);
        if (svg_curves(path, logs, o.seeds, o.steps, n_evals)) printf("\nwrote %s\n", path);
        else fprintf(stderr, "toy_vppo: cannot write %s\n", path);
        snprintf(path, sizeof path, "%s/toy_heatmap.svg", o.svg_dir);
        if (svg_heatmap(path, &pm[VPPO], &e, 0)) printf("wrote %s\n", path);
        else fprintf(stderr, "toy_vppo: cannot write %s\n", path);
    }

    /* ---- sanity: every number finite and in range; --quick also reruns a run -------- */
    for (r = 0; r < n_runs; ++r) {
        ok &= logs[r].all_finite;
        for (s = 0; s < o.steps; ++s) ok &= logs[r].reward[s] >= 0 && logs[r].reward[s] <= 1;
        for (k = 0; k < n_evals; ++k) ok &= logs[r].acc[k] >= 0 && logs[r].acc[k] <= 1;
    }
    if (o.quick) {
        policy again;
        run_log log2;
        memset(&log2, 0, sizeof log2);
        policy_alloc(&again);
        log2.reward = (float *)xcalloc((size_t)o.steps, sizeof(float));
        log2.acc = (double *)xcalloc((size_t)n_evals, sizeof(double));
        log2.row_acc = (double *)xcalloc((size_t)n_evals, sizeof(double));
        rl_run(theta_sft, &cfg[VPPO], 0, o.steps, &e, &again, &log2);
        if (memcmp(again.theta, final[VPPO].theta, (size_t)N_PARAMS * sizeof(float)) != 0) {
            fprintf(stderr, "toy_vppo: a rerun of the same seed gave different weights\n");
            ok = 0;
        } else printf("\nquick check: a rerun of VPPO seed 0 gives the same weights, bit for bit\n");
        free(again.theta); free(log2.reward); free(log2.acc); free(log2.row_acc);
    }
    printf("%s\n", ok ? "sanity checks passed (losses, dependencies and rewards finite and in range)"
                      : "SANITY CHECK FAILED");

    for (m = 0; m < N_METHODS; ++m) {
        perception_free(&pm[m]);
        free(col[m]); free(row_col[m]); free(avg_col[m]); free(auc_col[m]);
    }
    for (r = 0; r < n_runs; ++r) { free(final[r].theta); free(logs[r].reward); free(logs[r].acc); free(logs[r].row_acc); }
    free(final); free(logs); free(theta_sft); free(e.pr); free(e.vis); free(e.question);
    return ok ? 0 : 1;
}
