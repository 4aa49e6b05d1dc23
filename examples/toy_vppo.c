/* examples/toy_vppo.c - VPPO and its ablations against DAPO on a toy vision-language
   task in the paper's regime, in pure C: `make demo` (DAPO vs VPPO, a few seeds, the
   token heatmap) and `make study` (ten arms x sixteen seeds; rewrites docs/study.md).

   THE TASK ("how many <colour> cells?", with hints)
   The "image" is a 56 x 56 RGB picture of a 4 x 4 grid of coloured cells (red, green,
   blue, yellow, with pixel noise); each cell is one 14 x 14 patch, the patch size of the
   paper's perturbation. The question names a colour and, for each row independently with
   probability 1/2, states that row's count ("row two has 1 red"): a hint. A response is
   64 tokens, a chain of four row steps and an answer:

       let us count . the grid has four rows .
       row one has 1 cells , so the total is 1 .     row two holds 0 squares , thus the total becomes 1 .
       row three has 2 cells , so the total is 3 .   row four has 1 cells , so the total is 4 .
       so the answer is 4 .

   * readings: the count written for a row without a hint (0..4 per response, at most
     4/64 = 6% of the tokens) - the only tokens that need the image;
   * copies: the count of a hinted row (from the question);
   * chain: the running total after each row and the answer (from earlier tokens);
   * style: 14 free choices (has/holds, cells/squares, so/thus, is/becomes, has/shows)
     that the reward ignores; template: the other 40 words.
   So some trajectories can copy everything (all rows hinted), some must read four rows:
   trajectories differ in how much they look. Reward (outcome only, as the paper): 1 iff
   the format holds and the answer is the right count. A blind policy's best is to copy
   the hints and guess the mode of the rest: it earns far less (printed, exactly).

   THE POLICY (pure C, trained through vppo_step and vppo_logprobs_backward)
   A network with one hidden layer of 64 tanh units. At position t it adds the rows of
   weight tables selected by: the position, the previous token, the sum of the counts
   written so far (a stand-in for attention over the response), the question's colour,
   and - inside the block of row r - row r's hint (or "none") and what a frozen,
   question-aware vision encoder sees of row r's four cells (asked colour?, visible?): a
   stand-in for attention to the image region the step is about. A blackened cell is
   unseen. Logits over 41 tokens. The library gives dloss/dlogp (vppo_step) and the
   softmax backward (vppo_logprobs_backward); the network's backward is written out below.

   THE WARM START (the "SFT model")
   Supervised steps on responses whose hinted counts are copied, whose readings are right
   with probability 0.3 (random 0..4 otherwise), whose totals and answer follow the
   written counts, and whose style words are coin flips: it formats, copies and adds, but
   reads poorly. RL has to make it see.

   ARMS (docs/study.md holds the protocol). All start from the same warm start per seed
   and see the same prompts, perturbation masks and random numbers, with the same budget.
   DAPO = vppo_config_default() with use_tas = use_tgf = 0 (dynamic sampling, clip-higher,
   token-mean); TAS only; TGF only; VPPO (both); VPPO with TGF's score replaced by random
   numbers / by the old policy's entropy; VPPO with the soft mask of the paper's Appendix
   I; VPPO with k = 0.2, 0.6, 0.8 (0.4 is VPPO). The variants that replace TGF's rule are
   vppo_prepare (TAS) + vppo_topk_mask / vppo_soft_mask + vppo_policy_loss, which is what
   vppo_step does with the K3 score.

   RUN
       make demo     ./toy_vppo                 DAPO vs VPPO, 3 seeds, heatmap (docs/img/toy_*.svg)
       make study    ./toy_vppo --study         every arm, 16 seeds, rewrites docs/study.md
       ./toy_vppo [--study] [--seeds N] [--steps N] [--out DIR] [--no-write] [--simd] [--quick]
   --quick: tiny sizes; checks that every number is finite and in range and that a rerun
   gives the same bits; exits non-zero otherwise. --out DIR: where docs (study.md, img/)
   are written (default docs). The output is a pure function of the seeds: same bits with
   or without OpenMP (runs share nothing; each is computed by one thread). The library's
   scalar path is selected so the numbers do not depend on the CPU's vector units (--simd
   takes the fastest path; the last bits then differ between machines). */
#define VPPO_IMPLEMENTATION
#include "../vppo.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ============================================================ hyperparameters == */

#define HIDDEN        64      /* tanh units */
#define SFT_STEPS     150     /* warm start: supervised steps ... */
#define SFT_BATCH     64      /* ... of this many example responses ... */
#ifndef SFT_RIGHT
#define SFT_RIGHT     0.3     /* ... in which each reading is right with this probability */
#endif
#define SFT_LR        1e-2    /* Adam */
#define HINT_PROB     0.5     /* each row's count is given in the question with this probability */
#define N_PROMPTS     16      /* RL: prompts per step ... */
#define N_ROLLOUTS    8       /* ... and responses per prompt (the paper's 8) */
#define PPO_EPOCHS    2       /* optimiser updates per batch (the second one is off-policy) */
#ifndef RL_LR
#define RL_LR         8e-3    /* Adam (tuned on DAPO alone: 2e-3, 4e-3, 8e-3, 1.6e-2) */
#endif
#define RL_STEPS      120     /* RL steps per run */
#define STUDY_SEEDS   16      /* make study: seeds 0..15 per arm */
#define DEMO_SEEDS    3       /* make demo: seeds 0..2, DAPO and VPPO */
#define GRAD_CLIP     1.0     /* global gradient-norm clip, as EasyR1 */
#define N_EVAL        256     /* held-out prompts */
#define EVAL_EVERY    10      /* steps between held-out evaluations */
#define AVG_AT        4       /* held-out avg@4: 4 samples per prompt at temperature 1 */
#define BLACKEN_PROB  0.5f    /* the paper's patch blackening: patch 14, prob 0.5 */

/* ============================================================ image and question == */

#define GRID       4                      /* 4 x 4 cells */
#define N_CELLS    (GRID * GRID)
#define N_COLOURS  4
#define CELL_PX    14                     /* one cell = one 14 x 14 patch */
#define IMG_PX     (GRID * CELL_PX)       /* 56 x 56 pixels, RGB */
#define N_VIS      (2 * N_CELLS)          /* encoder output: 2 features per cell */
#define ROW_VIS    (2 * GRID)             /* ... of which one row's */
#define NO_HINT    (GRID + 1)             /* hint value "none" (values 0..4 are counts) */
#define OUTSIDE    (GRID + 2)             /* hint input outside the row blocks */

static const char *const colour_name[N_COLOURS] = { "red", "green", "blue", "yellow" };
static const char colour_letter[N_COLOURS] = { 'R', 'G', 'B', 'Y' };
static const int palette[N_COLOURS][3] = { { 220, 40, 40 }, { 40, 170, 60 }, { 40, 80, 220 }, { 230, 200, 40 } };

typedef struct prompt {
    uint8_t pixels[IMG_PX * IMG_PX * 3];  /* the image, row-major RGB */
    int colour[N_CELLS];                  /* ground truth: colour of each cell */
    int question;                         /* the colour asked about */
    int hint[GRID];                       /* the row's count when the question gives it, else NO_HINT */
    int row_count[GRID];                  /* cells of that colour in each row */
    int count;                            /* the answer */
    uint8_t vis[N_VIS];                   /* what the frozen encoder sees (question-aware) */
} prompt;

/* Independent random streams: stream(tag, a, b) is a seed for vppo_uniform. */
static uint64_t stream(uint64_t tag, uint64_t a, uint64_t b)
{
    return vppo_hash64(vppo_hash64(vppo_hash64(tag) ^ a) ^ b);
}
enum { TAG_PROMPT = 1, TAG_EVAL, TAG_SFT, TAG_STYLE, TAG_INIT, TAG_SAMPLE, TAG_PERTURB, TAG_SHOW, TAG_RANDOM };

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

/* A random grid, question (colour and hints) and its rendering, all from one seed. */
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
        pr->hint[r] = vppo_uniform(seed, N_CELLS + 1 + (uint64_t)r) < HINT_PROB ? pr->row_count[r] : NO_HINT;
    }
    vision_encode(pr->pixels, pr->question, pr->vis);
}

/* ============================================================ vocabulary, template == */

#define LEN        64    /* response length (tokens) */
#define INTRO      10    /* "let us count . the grid has four rows ." */
#define ROW_LEN    12    /* "row one has 1 cells , so the total is 1 ." */
#define MAX_NUMBER 16

enum { W_LET, W_US, W_COUNT, W_DOT, W_THE, W_GRID, W_HAS, W_SHOWS, W_FOUR, W_ROWS, W_ROW, W_ONE, W_TWO,
       W_THREE, W_HOLDS, W_CELLS, W_SQUARES, W_COMMA, W_SO, W_THUS, W_TOTAL, W_IS, W_BECOMES, W_ANSWER,
       W_NUM0 /* "0" .. "16" follow */ };
#define VOCAB (W_NUM0 + MAX_NUMBER + 1)   /* 41 tokens */
#define BOS   VOCAB                       /* "previous token" at position 0 (an input only) */

static const char *const word_text[VOCAB] = {
    "let", "us", "count", ".", "the", "grid", "has", "shows", "four", "rows", "row", "one", "two", "three",
    "holds", "cells", "squares", ",", "so", "thus", "total", "is", "becomes", "answer",
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"
};

/* What each position of a response must hold. SLOT_COUNT is a row's count: a reading
   (kind READING) when the question gives no hint for the row, else a copy (kind COPY). */
enum { SLOT_WORD, SLOT_STYLE /* word or alt, free */, SLOT_COUNT, SLOT_TOTAL, SLOT_ANSWER };
typedef struct slot { int kind, word, alt, row; } slot;
static slot tmpl[LEN];
#define ANSWER_POS (LEN - 2)

/* Token kinds, for the statistics. */
enum { K_TEMPLATE, K_STYLE, K_READING, K_COPY, K_CHAIN, K_ANSWER, N_KINDS };
static const char *const kind_name[N_KINDS] = { "template words", "style words", "readings (no hint)",
                                                 "copied counts (hint)", "running totals", "answer" };

static void set_slot(int t, int kind, int word, int alt, int row)
{
    tmpl[t].kind = kind; tmpl[t].word = word; tmpl[t].alt = alt; tmpl[t].row = row;
}

/* The template, built once before anything else runs. */
static void build_template(void)
{
    static const int intro[INTRO] = { W_LET, W_US, W_COUNT, W_DOT, W_THE, W_GRID, -1, W_FOUR, W_ROWS, W_DOT };
    static const int row_name[GRID] = { W_ONE, W_TWO, W_THREE, W_FOUR };
    int t, r;
    for (t = 0; t < INTRO; ++t) set_slot(t, SLOT_WORD, intro[t], 0, -1);
    set_slot(6, SLOT_STYLE, W_HAS, W_SHOWS, -1);
    for (r = 0; r < GRID; ++r) {
        const int o = INTRO + r * ROW_LEN;
        set_slot(o + 0, SLOT_WORD, W_ROW, 0, r);
        set_slot(o + 1, SLOT_WORD, row_name[r], 0, r);
        set_slot(o + 2, SLOT_STYLE, W_HAS, W_HOLDS, r);
        set_slot(o + 3, SLOT_COUNT, 0, 0, r);
        set_slot(o + 4, SLOT_STYLE, W_CELLS, W_SQUARES, r);
        set_slot(o + 5, SLOT_WORD, W_COMMA, 0, r);
        set_slot(o + 6, SLOT_STYLE, W_SO, W_THUS, r);
        set_slot(o + 7, SLOT_WORD, W_THE, 0, r);
        set_slot(o + 8, SLOT_WORD, W_TOTAL, 0, r);
        set_slot(o + 9, SLOT_STYLE, W_IS, W_BECOMES, r);
        set_slot(o + 10, SLOT_TOTAL, 0, 0, r);
        set_slot(o + 11, SLOT_WORD, W_DOT, 0, r);
    }
    t = INTRO + GRID * ROW_LEN;
    set_slot(t + 0, SLOT_STYLE, W_SO, W_THUS, -1);
    set_slot(t + 1, SLOT_WORD, W_THE, 0, -1);
    set_slot(t + 2, SLOT_WORD, W_ANSWER, 0, -1);
    set_slot(t + 3, SLOT_WORD, W_IS, 0, -1);
    set_slot(t + 4, SLOT_ANSWER, 0, 0, -1);
    set_slot(t + 5, SLOT_WORD, W_DOT, 0, -1);
}

static int kind_of(int t, const prompt *pr)
{
    switch (tmpl[t].kind) {
    case SLOT_WORD: return K_TEMPLATE;
    case SLOT_STYLE: return K_STYLE;
    case SLOT_COUNT: return pr->hint[tmpl[t].row] == NO_HINT ? K_READING : K_COPY;
    case SLOT_TOTAL: return K_CHAIN;
    default: return K_ANSWER;
    }
}

static int number_of(int32_t tok) { return tok >= W_NUM0 ? tok - W_NUM0 : -1; }

/* The sum of the counts written so far, updated with the token just written at position
   t (clamped to 16): the context feature the policy gets in place of attention. */
static int running_sum(int sum, int t, int32_t tok)
{
    const int v = number_of(tok);
    if (tmpl[t].kind == SLOT_COUNT && v > 0) sum += v;
    return sum > MAX_NUMBER ? MAX_NUMBER : sum;
}

/* 1 iff every slot holds a token of its kind (the format). */
static int format_ok(const int32_t *tok)
{
    int t;
    for (t = 0; t < LEN; ++t) {
        const slot *s = &tmpl[t];
        if (s->kind == SLOT_WORD && tok[t] != s->word) return 0;
        if (s->kind == SLOT_STYLE && tok[t] != s->word && tok[t] != s->alt) return 0;
        if (s->kind >= SLOT_COUNT && number_of(tok[t]) < 0) return 0;
    }
    return 1;
}

/* 1 iff the format holds and the answer is the right count. */
static float reward_of(const int32_t *tok, const prompt *pr)
{
    return format_ok(tok) && number_of(tok[ANSWER_POS]) == pr->count ? 1.0f : 0.0f;
}

/* Readings (counts of rows without a hint) in tok: *n_read of them, the number right returned. */
static int readings_right(const int32_t *tok, const prompt *pr, int *n_read)
{
    int t, n = 0;
    *n_read = 0;
    for (t = 0; t < LEN; ++t)
        if (tmpl[t].kind == SLOT_COUNT && pr->hint[tmpl[t].row] == NO_HINT) {
            *n_read += 1;
            n += number_of(tok[t]) == pr->row_count[tmpl[t].row];
        }
    return n;
}

/* A warm-start target: the template with random style choices, hinted counts copied,
   readings right with probability SFT_RIGHT and random (0..4) otherwise, totals and
   answer following the written counts. */
static void sft_target(uint64_t seed, const prompt *pr, int32_t *tok)
{
    int t, sum = 0;
    for (t = 0; t < LEN; ++t) {
        const slot *s = &tmpl[t];
        const double u = vppo_uniform(seed, (uint64_t)t), u2 = vppo_uniform(seed, LEN + (uint64_t)t);
        if (s->kind == SLOT_WORD) tok[t] = s->word;
        else if (s->kind == SLOT_STYLE) tok[t] = u < 0.5 ? s->word : s->alt;
        else if (s->kind == SLOT_COUNT) {
            const int h = pr->hint[s->row];
            const int v = h != NO_HINT ? h : u2 < SFT_RIGHT ? pr->row_count[s->row] : (int)(5 * u);
            tok[t] = W_NUM0 + v;
            sum += v;
        } else tok[t] = W_NUM0 + sum;
    }
}

/* ============================================================ the blind baseline == */

/* The best a policy that never looks can do: copy the hints, and for the m rows without
   a hint write the most likely count (each cell is the asked colour with probability
   1/4, independently, so a row's count is Binomial(4, 1/4), mode 1) and answer the hinted
   sum plus the mode of Binomial(4m, 1/4). Returns the fraction of prompts of e it
   answers right; *read gets the fraction of its readings that are right. */
static int binomial_mode(int n) { return (int)floor((n + 1) * 0.25); }   /* (n + 1) / 4 not an integer for n = 4m */

/* ============================================================ the policy network == */

/* pre(t) = base[block(t)] + w_pos[t] + w_prev[previous token] + w_sum[sum so far]
   base[r] = b1 + w_q[question] + w_hint[hint of row r] + sum of w_vis over row r's set features
   base[GRID] (outside the row blocks) = b1 + w_q[question] + w_hint[OUTSIDE]
   h = tanh(pre), logits = b_out + W_out h. */
typedef struct policy {
    int64_t n_params;
    float *theta;                     /* every parameter, one block; the views below point into it */
    float *w_vis;                     /* [ROW_VIS][HIDDEN] shared by the four rows */
    float *w_hint;                    /* [OUTSIDE + 1][HIDDEN] */
    float *w_q;                       /* [N_COLOURS][HIDDEN] */
    float *w_pos;                     /* [LEN][HIDDEN] */
    float *w_prev;                    /* [VOCAB + 1][HIDDEN] (+1: BOS) */
    float *w_sum;                     /* [MAX_NUMBER + 1][HIDDEN] */
    float *b1;                        /* [HIDDEN] */
    float *w_out;                     /* [VOCAB][HIDDEN] */
    float *b_out;                     /* [VOCAB] */
} policy;

#define N_INPUT_ROWS (ROW_VIS + OUTSIDE + 1 + N_COLOURS + LEN + VOCAB + 1 + MAX_NUMBER + 1 + 1)
#define N_PARAMS ((int64_t)N_INPUT_ROWS * HIDDEN + (int64_t)VOCAB * HIDDEN + VOCAB)

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) { fprintf(stderr, "toy_vppo: out of memory\n"); exit(2); }
    return p;
}
#define ALLOC(type, n) ((type *)xcalloc((size_t)(n), sizeof(type)))

static int block_of(int t) { return t >= INTRO && t < INTRO + GRID * ROW_LEN ? (t - INTRO) / ROW_LEN : GRID; }

/* Point the views of p into block (N_PARAMS floats): parameters and gradients share it. */
static void policy_bind(policy *p, float *block)
{
    p->n_params = N_PARAMS;
    p->theta = block;
    p->w_vis = block;
    p->w_hint = p->w_vis + ROW_VIS * HIDDEN;
    p->w_q = p->w_hint + (OUTSIDE + 1) * HIDDEN;
    p->w_pos = p->w_q + N_COLOURS * HIDDEN;
    p->w_prev = p->w_pos + LEN * HIDDEN;
    p->w_sum = p->w_prev + (VOCAB + 1) * HIDDEN;
    p->b1 = p->w_sum + (MAX_NUMBER + 1) * HIDDEN;
    p->w_out = p->b1 + HIDDEN;
    p->b_out = p->w_out + VOCAB * HIDDEN;
}

static void policy_alloc(policy *p) { policy_bind(p, ALLOC(float, N_PARAMS)); }

/* Uniform init: about 10 active inputs per unit, so +-sqrt(3/10) gives unit variance. */
static void policy_init(policy *p, uint64_t seed)
{
    const double a_in = sqrt(3.0 / 10.0), a_out = sqrt(3.0 / HIDDEN);
    const int64_t n_in = (int64_t)N_INPUT_ROWS * HIDDEN, n_out = (int64_t)VOCAB * HIDDEN;
    int64_t i;
    for (i = 0; i < n_in; ++i) p->theta[i] = (float)(a_in * (2 * vppo_uniform(seed, (uint64_t)i) - 1));
    for (i = 0; i < HIDDEN; ++i) p->b1[i] = 0.0f;
    for (i = 0; i < n_out; ++i) p->w_out[i] = (float)(a_out * (2 * vppo_uniform(seed, (uint64_t)(n_in + i)) - 1));
    for (i = 0; i < VOCAB; ++i) p->b_out[i] = 0.0f;
}

/* What one response is conditioned on: the question, its hints and what the encoder sees. */
typedef struct context { const uint8_t *vis; const int *hint; int question; } context;

/* base [GRID + 1][HIDDEN]: the per-block part of the pre-activation. */
static void policy_bases(const policy *p, const context *c, float *base)
{
    int r, f, j;
    for (r = 0; r <= GRID; ++r) {
        const float *wh = p->w_hint + (r < GRID ? c->hint[r] : OUTSIDE) * HIDDEN, *wq = p->w_q + c->question * HIDDEN;
        float *b = base + r * HIDDEN;
        for (j = 0; j < HIDDEN; ++j) b[j] = p->b1[j] + wq[j] + wh[j];
        if (r < GRID)
            for (f = 0; f < ROW_VIS; ++f)
                if (c->vis[r * ROW_VIS + f])
                    for (j = 0; j < HIDDEN; ++j) b[j] += p->w_vis[f * HIDDEN + j];
    }
}

/* tanh(x) = 1 - 2 / (exp(2x) + 1): exact at the limits, and a few times faster than libm's tanhf. */
static float tanh_fast(float x) { return 1.0f - 2.0f / (expf(2.0f * x) + 1.0f); }

/* w . h over HIDDEN with four partial sums: a fixed order (the same bits everywhere). */
static float dot_hidden(const float *w, const float *h)
{
    float acc[4] = { 0, 0, 0, 0 };
    int j, l;
    for (j = 0; j < HIDDEN; j += 4)
        for (l = 0; l < 4; ++l) acc[l] += w[j + l] * h[j + l];
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

/* One position: h [HIDDEN] and logits [VOCAB]. */
static void policy_token(const policy *p, const float *base, int t, int prev, int sum, float *h, float *logits)
{
    const float *bb = base + block_of(t) * HIDDEN, *wt = p->w_pos + t * HIDDEN;
    const float *wp = p->w_prev + prev * HIDDEN, *ws = p->w_sum + sum * HIDDEN;
    int j, v;
    for (j = 0; j < HIDDEN; ++j) h[j] = tanh_fast(bb[j] + wt[j] + wp[j] + ws[j]);
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

/* One response: tokens [LEN], hidden [LEN][HIDDEN], logits [LEN][VOCAB]. TEACHER_FORCED
   reads the tokens; SAMPLED draws each with vppo_uniform(seed, first + t); GREEDY takes
   the argmax. All go through policy_token, so the logits agree bit for bit. */
static void policy_sequence(const policy *p, const context *c, int mode, uint64_t seed, int64_t first,
                            int32_t *tokens, float *hidden, float *logits)
{
    float base[(GRID + 1) * HIDDEN];
    int t, prev = BOS, sum = 0;
    policy_bases(p, c, base);
    for (t = 0; t < LEN; ++t) {
        policy_token(p, base, t, prev, sum, hidden + t * HIDDEN, logits + t * VOCAB);
        if (mode != TEACHER_FORCED)
            tokens[t] = choose_token(logits + t * VOCAB, vppo_uniform(seed, (uint64_t)(first + t)), mode == GREEDY);
        prev = tokens[t];
        sum = running_sum(sum, t, tokens[t]);
    }
}

/* n responses, response b conditioned on ctx[b]. Responses with active[b] == 0 (active
   NULL: none) are skipped; their logits are set to 0, a harmless uniform row. */
static void policy_run(const policy *p, int64_t n, const context *ctx, const uint8_t *active, int mode,
                       uint64_t seed, int32_t *tokens, float *hidden, float *logits)
{
    int64_t b;
    for (b = 0; b < n; ++b) {
        if (active && !active[b]) { memset(logits + b * LEN * VOCAB, 0, LEN * VOCAB * sizeof(float)); continue; }
        policy_sequence(p, &ctx[b], mode, seed, b * LEN, tokens + b * LEN, hidden + b * LEN * HIDDEN,
                        logits + b * LEN * VOCAB);
    }
}

/* The backward of policy_run (teacher forcing): dlogits [n][LEN][VOCAB] -> gradients added
   into g. Responses with active[b] == 0 are skipped. The forward is in policy_token/_bases. */
static void policy_backward(const policy *p, policy *g, int64_t n, const context *ctx, const int32_t *tokens,
                            const float *hidden, const float *dlogits, const uint8_t *active)
{
    float h[HIDDEN], dh[HIDDEN], dpre[HIDDEN], dbase[(GRID + 1) * HIDDEN];
    int64_t b;
    int t, j, v, f, r;
    for (b = 0; b < n; ++b) {
        const context *c = &ctx[b];
        int prev = BOS, sum = 0;
        if (active && !active[b]) continue;
        memset(dbase, 0, sizeof dbase);
        for (t = 0; t < LEN; ++t) {
            const int64_t i = b * LEN + t;
            const float *dz = dlogits + i * VOCAB;
            float *gt = g->w_pos + t * HIDDEN, *gp = g->w_prev + prev * HIDDEN, *gs = g->w_sum + sum * HIDDEN;
            float *db = dbase + block_of(t) * HIDDEN;
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
                gt[j] += dpre[j]; gp[j] += dpre[j]; gs[j] += dpre[j]; db[j] += dpre[j];
            }
            prev = tokens[i];
            sum = running_sum(sum, t, tokens[i]);
        }
        for (r = 0; r <= GRID; ++r) {                     /* base = b1 + w_q + w_hint + w_vis . vis */
            const float *d = dbase + r * HIDDEN;
            float *gh = g->w_hint + (r < GRID ? c->hint[r] : OUTSIDE) * HIDDEN, *gq = g->w_q + c->question * HIDDEN;
            for (j = 0; j < HIDDEN; ++j) { g->b1[j] += d[j]; gq[j] += d[j]; gh[j] += d[j]; }
            if (r < GRID)
                for (f = 0; f < ROW_VIS; ++f)
                    if (c->vis[r * ROW_VIS + f])
                        for (j = 0; j < HIDDEN; ++j) g->w_vis[f * HIDDEN + j] += d[j];
        }
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

static void adam_init(adam *a) { a->m = ALLOC(float, N_PARAMS); a->v = ALLOC(float, N_PARAMS); a->t = 0; }

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

static context context_of(const prompt *pr, const uint8_t *vis)
{
    context c;
    c.vis = vis; c.hint = pr->hint; c.question = pr->question;
    return c;
}

/* ============================================================ warm start (SFT) == */

/* sft_steps of cross-entropy on sft_target responses from a random init: the mean NLL
   over the N tokens, so dloss/dlogp = -1/N and vppo_logprobs_backward gives dloss/dlogits. */
static void warm_start(policy *p, uint64_t seed, int sft_steps)
{
    const int64_t n = SFT_BATCH, N = n * LEN;
    prompt *pr = ALLOC(prompt, n);
    context *ctx = ALLOC(context, n);
    int32_t *tokens = ALLOC(int32_t, N);
    float *hidden = ALLOC(float, N * HIDDEN), *logits = ALLOC(float, N * VOCAB);
    float *lse = ALLOC(float, N), *dlogp = ALLOC(float, N);
    policy g;
    adam a;
    vppo_grad_out dz;
    int step;
    int64_t b, i;
    policy_alloc(&g);
    adam_init(&a);
    policy_init(p, stream(TAG_INIT, seed, 0));
    for (i = 0; i < N; ++i) dlogp[i] = -1.0f / (float)N;
    for (step = 0; step < sft_steps; ++step) {
        vppo_logits x;
        for (b = 0; b < n; ++b) {
            const uint64_t id = (uint64_t)(step * n + b);
            make_prompt(stream(TAG_SFT, seed, id), &pr[b]);
            ctx[b] = context_of(&pr[b], pr[b].vis);
            sft_target(stream(TAG_STYLE, seed, id), &pr[b], tokens + b * LEN);
        }
        policy_run(p, n, ctx, NULL, TEACHER_FORCED, 0, tokens, hidden, logits);
        x = logits_of(logits, N);
        check(vppo_logprobs(&x, tokens, NULL, lse, NULL), "sft logprobs");
        dz.data = logits; dz.dtype = VPPO_F32; dz.row_stride = VOCAB;   /* in place */
        check(vppo_logprobs_backward(&x, tokens, lse, NULL, dlogp, NULL, &dz), "sft backward");
        memset(g.theta, 0, (size_t)N_PARAMS * sizeof(float));
        policy_backward(p, &g, n, ctx, tokens, hidden, logits, NULL);
        adam_step(p, &g, &a, SFT_LR);
    }
    free(pr); free(ctx); free(tokens); free(hidden); free(logits); free(lse); free(dlogp);
    free(g.theta); free(a.m); free(a.v);
}

/* ============================================================ evaluation ======== */

typedef struct eval_set { int64_t n; prompt *pr; context *ctx; } eval_set;

static void eval_set_make(eval_set *e, int64_t n)
{
    int64_t b;
    e->n = n;
    e->pr = ALLOC(prompt, n);
    e->ctx = ALLOC(context, n);
    for (b = 0; b < n; ++b) {
        make_prompt(stream(TAG_EVAL, 0, (uint64_t)b), &e->pr[b]);
        e->ctx[b] = context_of(&e->pr[b], e->pr[b].vis);
    }
}

/* Every held-out prompt answered AVG_AT times, sampled at temperature 1 with the stream
   `seed` (the paper's avg@k): returns the mean reward; *read_acc gets the fraction of
   readings (rows without a hint) that are right, *format (optional) the fraction of
   responses whose format holds. */
static double evaluate(const policy *p, const eval_set *e, uint64_t seed, double *read_acc, double *format)
{
    const int64_t n = e->n * AVG_AT, N = n * LEN;
    context *ctx = ALLOC(context, n);
    int32_t *tokens = ALLOC(int32_t, N);
    float *hidden = ALLOC(float, N * HIDDEN), *logits = ALLOC(float, N * VOCAB);
    double right = 0;
    int64_t b, reads = 0, reads_right = 0, formats = 0;
    for (b = 0; b < n; ++b) ctx[b] = e->ctx[b / AVG_AT];
    policy_run(p, n, ctx, NULL, SAMPLED, seed, tokens, hidden, logits);
    for (b = 0; b < n; ++b) {
        int m;
        right += reward_of(tokens + b * LEN, &e->pr[b / AVG_AT]);
        formats += format_ok(tokens + b * LEN);
        reads_right += readings_right(tokens + b * LEN, &e->pr[b / AVG_AT], &m);
        reads += m;
    }
    *read_acc = reads > 0 ? (double)reads_right / (double)reads : 0.0;
    if (format) *format = (double)formats / (double)n;
    free(ctx); free(tokens); free(hidden); free(logits);
    return right / (double)n;
}

/* The blind baseline on e (see binomial_mode above). */
static double blind_accuracy(const eval_set *e, double *read_acc)
{
    int64_t b, right = 0, reads = 0, reads_right = 0;
    int r;
    for (b = 0; b < e->n; ++b) {
        const prompt *pr = &e->pr[b];
        int hinted = 0, m = 0;
        for (r = 0; r < GRID; ++r) {
            if (pr->hint[r] != NO_HINT) hinted += pr->hint[r];
            else { m += 1; reads += 1; reads_right += pr->row_count[r] == binomial_mode(GRID); }
        }
        right += hinted + binomial_mode(GRID * m) == pr->count;
    }
    *read_acc = reads > 0 ? (double)reads_right / (double)reads : 0.0;
    return (double)right / (double)e->n;
}

/* ============================================================ arms =============== */

enum { SEL_NONE, SEL_K3, SEL_RANDOM, SEL_ENTROPY, SEL_SOFT };
typedef struct arm { const char *name; int use_tas, selector; double ratio; } arm;
static const arm arms[] = {
    { "DAPO", 0, SEL_NONE, 0.4 },           /* the baseline */
    { "TAS only", 1, SEL_NONE, 0.4 },
    { "TGF only", 0, SEL_K3, 0.4 },
    { "VPPO", 1, SEL_K3, 0.4 },
    { "VPPO, TGF random 40%", 1, SEL_RANDOM, 0.4 },
    { "VPPO, TGF entropy 40%", 1, SEL_ENTROPY, 0.4 },
    { "VPPO, soft mask", 1, SEL_SOFT, 0.4 },
    { "VPPO k=0.2", 1, SEL_K3, 0.2 },
    { "VPPO k=0.6", 1, SEL_K3, 0.6 },
    { "VPPO k=0.8", 1, SEL_K3, 0.8 }
};
#define N_ARMS ((int)(sizeof arms / sizeof arms[0]))
enum { ARM_DAPO = 0, ARM_VPPO = 3 };

/* ============================================================ one RL run ========= */

#define N_RESP (N_PROMPTS * N_ROLLOUTS)   /* B = 128 responses per step */
#define N_TOK  (N_RESP * LEN)             /* N = 8192 token positions */

/* Everything one step needs, allocated once per run. */
typedef struct batch {
    prompt pr[N_PROMPTS];
    context ctx[N_RESP], ctx_aug[N_RESP];
    uint8_t vis_aug[N_RESP * N_VIS];
    float rewards[N_RESP], adv_seq[N_RESP], traj_dep[N_RESP], scale[N_RESP];
    int64_t count[N_RESP], offsets[N_RESP + 1], group_offsets[N_PROMPTS + 1];
    uint8_t keep[N_RESP];
    int32_t tokens[N_TOK];
    float logp_old[N_TOK], logp_aug[N_TOK], logp[N_TOK], lse[N_TOK], dlogp[N_TOK], dep[N_TOK], adv[N_TOK];
    float entropy[N_TOK], score[N_TOK], weight[N_TOK];
    uint8_t mask[N_TOK], select[N_TOK];
    float hidden[N_TOK * HIDDEN], logits[N_TOK * VOCAB];
    float hidden_aug[N_TOK * HIDDEN], logits_aug[N_TOK * VOCAB];
} batch;

/* What a run records. Per-kind sums are over the kept tokens of every step. */
typedef struct run_log {
    float *reward;              /* [steps] mean reward of the step's rollouts */
    double *acc, *read_acc;     /* [n_evals] held-out avg@4 accuracy, readings right */
    double format;              /* held-out fraction of responses whose format holds, last evaluation */
    int all_finite;             /* every loss, dependency and gradient finite */
    double n_tok[N_KINDS], dep[N_KINDS], selected[N_KINDS], grad[N_KINDS];
    double traj_lo, traj_hi, scale_lo, scale_hi; int n_updates;
    double seconds;
} run_log;

static void run_log_alloc(run_log *log, int steps, int n_evals)
{
    memset(log, 0, sizeof *log);
    log->reward = ALLOC(float, steps);
    log->acc = ALLOC(double, n_evals);
    log->read_acc = ALLOC(double, n_evals);
}

static void run_log_free(run_log *log) { free(log->reward); free(log->acc); free(log->read_acc); }

/* One RL step: sample, score, perturb, and PPO_EPOCHS updates. */
static void rl_step(policy *p, policy *g, adam *a, const arm *am, uint64_t seed, int step, batch *bt,
                    run_log *log)
{
    vppo_config cfg = vppo_config_default();
    vppo_seqs seqs, groups;
    vppo_prepared prep;
    vppo_logits x, x_aug;
    vppo_grad_out dz;
    vppo_loss_out out;
    double reward_sum = 0, lo = 1e30, hi = -1e30, tlo = 1e30, thi = -1e30;
    int64_t b, i;
    int epoch, n_kept = 0;
    const int custom = am->selector == SEL_RANDOM || am->selector == SEL_ENTROPY || am->selector == SEL_SOFT;

    cfg.use_tas = am->use_tas;
    cfg.use_tgf = am->selector == SEL_K3;
    cfg.topk_ratio = am->ratio;

    /* 1. prompts and rollouts: 16 prompts x 8 responses, sampled at temperature 1 */
    for (b = 0; b < N_PROMPTS; ++b)
        make_prompt(stream(TAG_PROMPT, seed, (uint64_t)(step * N_PROMPTS + b)), &bt->pr[b]);
    for (b = 0; b < N_RESP; ++b) bt->ctx[b] = context_of(&bt->pr[b / N_ROLLOUTS], bt->pr[b / N_ROLLOUTS].vis);
    policy_run(p, N_RESP, bt->ctx, NULL, SAMPLED, stream(TAG_SAMPLE, seed, (uint64_t)step), bt->tokens, bt->hidden,
               bt->logits);

    /* 2. outcome reward, GRPO advantages per group of 8, DAPO dynamic sampling */
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

    /* 3. log pi_old(o_t | I), its entropy, and log pi_old(o_t | I') of the same tokens with
          each response's image blackened by its own random 14x14 patches */
    x = logits_of(bt->logits, N_TOK);
    check(vppo_logprobs(&x, bt->tokens, bt->logp_old, NULL, bt->entropy), "logp_old");
    for (b = 0; b < N_RESP; ++b) {
        uint8_t pixels[IMG_PX * IMG_PX * 3];
        vppo_image img = image_of(pixels);
        bt->ctx_aug[b] = bt->ctx[b];
        if (!bt->keep[b]) continue;
        memcpy(pixels, bt->pr[b / N_ROLLOUTS].pixels, sizeof pixels);
        check(vppo_perturb_patch_blackening(&img, CELL_PX, BLACKEN_PROB,
                                            stream(TAG_PERTURB, seed, (uint64_t)(step * N_RESP + b))), "perturb");
        vision_encode(pixels, bt->ctx[b].question, bt->vis_aug + b * N_VIS);
        bt->ctx_aug[b].vis = bt->vis_aug + b * N_VIS;
    }
    policy_run(p, N_RESP, bt->ctx_aug, bt->keep, TEACHER_FORCED, 0, bt->tokens, bt->hidden_aug, bt->logits_aug);
    x_aug = logits_of(bt->logits_aug, N_TOK);
    check(vppo_logprobs(&x_aug, bt->tokens, bt->logp_aug, NULL, NULL), "logp_aug");

    /* 4. the arms that replace TGF's rule: TAS from vppo_prepare, then their own mask */
    prep.dep = bt->dep; prep.traj_dep = bt->traj_dep; prep.count = bt->count; prep.scale = bt->scale;
    prep.adv = bt->adv; prep.select = bt->select;
    if (custom) {
        check(vppo_prepare(&cfg, &seqs, bt->logp_old, bt->logp_aug, NULL, bt->adv_seq, NULL, &prep), "prepare");
        for (i = 0; i < N_TOK; ++i)
            bt->score[i] = am->selector == SEL_RANDOM ? (float)vppo_uniform(stream(TAG_RANDOM, seed, (uint64_t)step), (uint64_t)i)
                         : am->selector == SEL_ENTROPY ? bt->entropy[i] : bt->dep[i];
        if (am->selector == SEL_SOFT) check(vppo_soft_mask(&seqs, bt->score, am->ratio, bt->weight), "soft mask");
        else check(vppo_topk_mask(&seqs, bt->score, am->ratio, bt->select, NULL), "top-k");
    }

    /* 5. PPO epochs: logp of the current policy; vppo_step (or the loss with the arm's own
          mask) gives dloss/dlogp; vppo_logprobs_backward dloss/dlogits; then the network */
    for (epoch = 0; epoch < PPO_EPOCHS; ++epoch) {
        if (epoch > 0)   /* epoch 0 reuses the rollout's forward: the policy has not moved yet */
            policy_run(p, N_RESP, bt->ctx, bt->keep, TEACHER_FORCED, 0, bt->tokens, bt->hidden, bt->logits);
        check(vppo_logprobs(&x, bt->tokens, bt->logp, bt->lse, NULL), "logp");
        if (custom)
            check(vppo_policy_loss(&cfg.loss, &seqs, bt->logp, bt->logp_old, NULL, bt->adv,
                                   am->selector == SEL_SOFT ? NULL : bt->select,
                                   am->selector == SEL_SOFT ? bt->weight : NULL, bt->dlogp, &out), "loss");
        else
            check(vppo_step(&cfg, &seqs, bt->logp, bt->logp_old, bt->logp_aug, NULL, bt->adv_seq, &prep,
                            bt->dlogp, &out), "vppo_step");
        if (!isfinite(out.loss)) log->all_finite = 0;
        if (epoch == 0)   /* where the gradient goes: |dlogp| (1 - p) is half of |dloss/dlogits|_1 */
            for (i = 0; i < N_TOK; ++i) {
                const int kind = kind_of((int)(i % LEN), &bt->pr[i / LEN / N_ROLLOUTS]);
                const double w = am->selector == SEL_SOFT ? bt->weight[i] : bt->select[i];
                if (!bt->mask[i]) continue;
                if (!isfinite(bt->dep[i]) || bt->dep[i] < 0 || !isfinite(bt->dlogp[i])) log->all_finite = 0;
                log->n_tok[kind] += 1;
                log->dep[kind] += bt->dep[i];
                log->selected[kind] += w;
                log->grad[kind] += fabs(bt->dlogp[i]) * (1.0 - exp(bt->logp[i]));
            }
        dz.data = bt->logits; dz.dtype = VPPO_F32; dz.row_stride = VOCAB;   /* in place */
        check(vppo_logprobs_backward(&x, bt->tokens, bt->lse, NULL, bt->dlogp, NULL, &dz), "backward");
        memset(g->theta, 0, (size_t)N_PARAMS * sizeof(float));
        policy_backward(p, g, N_RESP, bt->ctx, bt->tokens, bt->hidden, bt->logits, bt->keep);
        adam_step(p, g, a, RL_LR);
    }
    for (b = 0; b < N_RESP; ++b)
        if (bt->keep[b]) {
            lo = bt->scale[b] < lo ? bt->scale[b] : lo; hi = bt->scale[b] > hi ? bt->scale[b] : hi;
            tlo = bt->traj_dep[b] < tlo ? bt->traj_dep[b] : tlo; thi = bt->traj_dep[b] > thi ? bt->traj_dep[b] : thi;
        }
    log->scale_lo += lo; log->scale_hi += hi; log->traj_lo += tlo; log->traj_hi += thi; log->n_updates += 1;
}

/* The evaluation index of a step (evaluations at 0, 10, 20, ... and at the last step). */
static int eval_index(int step) { return (step + EVAL_EVERY - 1) / EVAL_EVERY; }
static int eval_step(int k, int steps) { return k * EVAL_EVERY < steps ? k * EVAL_EVERY : steps; }

/* Wall-clock seconds (for the progress lines only; nothing computed depends on it). */
static double now_seconds(void)
{
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

/* A whole run: RL from the warm-started weights theta0, with held-out evaluations. */
static void rl_run(const float *theta0, const arm *am, uint64_t seed, int steps, const eval_set *e, policy *p,
                   run_log *log)
{
    policy g;
    adam a;
    batch *bt = ALLOC(batch, 1);
    const double t0 = now_seconds();
    int step;
    policy_alloc(&g);
    adam_init(&a);
    memcpy(p->theta, theta0, (size_t)N_PARAMS * sizeof(float));
    log->all_finite = 1;
    for (step = 0; step <= steps; ++step) {
        if (step % EVAL_EVERY == 0 || step == steps) {
            const int k = eval_index(step);
            log->acc[k] = evaluate(p, e, stream(TAG_EVAL, seed, (uint64_t)k), &log->read_acc[k], &log->format);
        }
        if (step < steps) rl_step(p, &g, &a, am, seed, step, bt, log);
    }
    log->seconds = now_seconds() - t0;
    free(bt); free(g.theta); free(a.m); free(a.v);
}

/* ============================================================ token perception == */

/* The token perception of a policy on the held-out prompts: one sampled response per
   prompt, each scored under its own blackened copy of the image, by the sampled-token
   K3 (what training uses, §2.1) and the full-logits KL of paper Eq. 3 (§2.2). */
typedef struct perception {
    int64_t n;
    int32_t *tokens;
    float *k3, *kl;               /* [n * LEN] dependency per token */
    uint8_t *top_k3;              /* each response's top 40% tokens by K3 (what TGF keeps) */
    float *reward;                /* [n] */
    uint8_t *vis_aug;             /* [n][N_VIS] what the encoder saw of each perturbed image */
} perception;

static void perception_measure(const policy *p, const eval_set *e, perception *m)
{
    const int64_t n = e->n, N = n * LEN;
    float *hidden = ALLOC(float, N * HIDDEN), *logits = ALLOC(float, N * VOCAB), *logits_aug = ALLOC(float, N * VOCAB);
    float *logp = ALLOC(float, N), *logp_aug = ALLOC(float, N);
    int64_t *offsets = ALLOC(int64_t, n + 1), b;
    context *ctx_aug = ALLOC(context, n);
    vppo_logits x = logits_of(logits, N), x_aug = logits_of(logits_aug, N);
    vppo_seqs seqs;
    m->n = n;
    m->tokens = ALLOC(int32_t, N);
    m->k3 = ALLOC(float, N);
    m->kl = ALLOC(float, N);
    m->top_k3 = ALLOC(uint8_t, N);
    m->reward = ALLOC(float, n);
    m->vis_aug = ALLOC(uint8_t, n * N_VIS);
    policy_run(p, n, e->ctx, NULL, SAMPLED, stream(TAG_SHOW, 0, 0), m->tokens, hidden, logits);
    for (b = 0; b < n; ++b) {
        uint8_t pixels[IMG_PX * IMG_PX * 3];
        vppo_image img = image_of(pixels);
        memcpy(pixels, e->pr[b].pixels, sizeof pixels);
        check(vppo_perturb_patch_blackening(&img, CELL_PX, BLACKEN_PROB, stream(TAG_SHOW, 1, (uint64_t)b)), "perturb");
        vision_encode(pixels, e->pr[b].question, m->vis_aug + b * N_VIS);
        ctx_aug[b] = context_of(&e->pr[b], m->vis_aug + b * N_VIS);
        m->reward[b] = reward_of(m->tokens + b * LEN, &e->pr[b]);
    }
    policy_run(p, n, ctx_aug, NULL, TEACHER_FORCED, 0, m->tokens, hidden, logits_aug);
    check(vppo_offsets_uniform(offsets, n, LEN), "offsets");
    seqs.n_seqs = n; seqs.offsets = offsets; seqs.mask = NULL;
    check(vppo_logprobs(&x, m->tokens, logp, NULL, NULL), "logp");
    check(vppo_logprobs(&x_aug, m->tokens, logp_aug, NULL, NULL), "logp_aug");
    check(vppo_dependency_sampled(&seqs, logp, logp_aug, VPPO_EST_K3, m->k3), "K3");
    check(vppo_dependency_logits(&x, &x_aug, VPPO_DIV_KL, m->kl), "KL");
    check(vppo_topk_mask(&seqs, m->k3, 0.4, m->top_k3, NULL), "top-k K3");
    free(hidden); free(logits); free(logits_aug); free(logp); free(logp_aug); free(offsets); free(ctx_aug);
}

static void perception_free(perception *m)
{
    free(m->tokens); free(m->k3); free(m->kl); free(m->top_k3); free(m->reward); free(m->vis_aug);
}

/* The held-out response to show: the first one that has at least two readings. */
static int64_t showcase(const eval_set *e)
{
    int64_t b;
    for (b = 0; b < e->n; ++b) {
        int r, m = 0;
        for (r = 0; r < GRID; ++r) m += e->pr[b].hint[r] == NO_HINT;
        if (m >= 2) return b;
    }
    return 0;
}

/* " ###...": a bar of '#' proportional to x / max (width characters at max), or nothing. */
static void print_bar(double x, double max, int width)
{
    int k, n = max > 0 ? (int)(width * x / max + 0.5) : 0;
    if (n > 0) putchar(' ');
    for (k = 0; k < n; ++k) putchar('#');
}

/* The image as letters (the asked colour in capitals), the perturbed copy beside it with
   '.' for a blackened cell, and each row's count and hint. */
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
        printf("     row %d: %d %s%s\n", r + 1, pr->row_count[r], colour_name[pr->question],
               pr->hint[r] == NO_HINT ? "  (must be read)" : "  (given in the question)");
    }
}

/* Insight 1 made visible: one response, token by token (tokens with a visible KL bar). */
static void print_heatmap(const perception *m, const eval_set *e, int64_t b)
{
    const int32_t *tok = m->tokens + b * LEN;
    const float *k3 = m->k3 + b * LEN, *kl = m->kl + b * LEN;
    double max = 0;
    int t, shown = 0;
    for (t = 0; t < LEN; ++t) max = kl[t] > max ? kl[t] : max;
    printf("  Held-out prompt %lld: \"how many %s cells?\" (answer %d)\n", (long long)b,
           colour_name[e->pr[b].question], e->pr[b].count);
    print_grids(&e->pr[b], m->vis_aug + b * N_VIS);
    printf("\n  Sampled response (reward %.0f):\n   ", m->reward[b]);
    for (t = 0; t < LEN; ++t) printf(" %s%s", word_text[tok[t]], t % 16 == 15 && t + 1 < LEN ? "\n   " : "");
    printf("\n\n  pos  token     kind                   K3      KL      (* = in TGF's top 40%% by K3)\n");
    for (t = 0; t < LEN; ++t) {
        const int sel = m->top_k3[b * LEN + t];
        if (!(max > 0 && 40 * kl[t] / max >= 0.5) && !sel) continue;
        printf("  %3d  %-8s  %-20s %6.3f  %6.3f %s", t, word_text[tok[t]], kind_name[kind_of(t, &e->pr[b])], k3[t], kl[t],
               sel ? "*" : " ");
        print_bar(kl[t], max, 30);
        printf("\n");
        shown += 1;
    }
    printf("  (%d of %d tokens shown; the others have KL below 1/80 of the largest and are not selected)\n",
           shown, LEN);
}

/* ============================================================ statistics ======== */

/* Mean and standard error of the mean (sample sd / sqrt(n)); se 0 when n < 2. */
static void mean_se(const double *x, int n, double *mean, double *se)
{
    double m = 0, s = 0;
    int i;
    for (i = 0; i < n; ++i) m += x[i];
    m /= n;
    for (i = 0; i < n; ++i) s += (x[i] - m) * (x[i] - m);
    *mean = m;
    *se = n > 1 ? sqrt(s / (n - 1) / n) : 0.0;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

/* ============================================================ a set of runs ===== */

/* Every (arm, seed) run of a demo or study: run r = seed * n_arms + a (the first seeds
   of every arm finish first). */
typedef struct runs {
    int n_arms, seeds, steps, n_evals;
    const int *arm_id;          /* [n_arms] indices into arms[] */
    eval_set e;
    float *theta_sft;           /* [seeds][N_PARAMS] */
    policy *final;              /* [n_arms * seeds] */
    run_log *logs;              /* [n_arms * seeds] */
} runs;

static run_log *log_of(const runs *R, int a, int s) { return &R->logs[s * R->n_arms + a]; }

/* One number per seed of arm a: what(log, R). */
typedef double (*metric_fn)(const run_log *log, const runs *R);
static double m_acc(const run_log *log, const runs *R) { return log->acc[R->n_evals - 1]; }
static double m_read(const run_log *log, const runs *R) { return log->read_acc[R->n_evals - 1]; }
static double m_format(const run_log *log, const runs *R) { (void)R; return log->format; }
static double m_auc(const run_log *log, const runs *R)
{
    double s = 0;
    int k;
    for (k = 0; k < R->n_evals; ++k) s += log->acc[k];
    return s / R->n_evals;
}

/* mean +- se over seeds of arm a; with base >= 0 the paired difference to arm base. */
static void arm_stat(const runs *R, metric_fn f, int a, int base, double *mean, double *se)
{
    double *x = ALLOC(double, R->seeds);
    int s;
    for (s = 0; s < R->seeds; ++s)
        x[s] = f(log_of(R, a, s), R) - (base >= 0 ? f(log_of(R, base, s), R) : 0.0);
    mean_se(x, R->seeds, mean, se);
    free(x);
}

static double mean_of(const runs *R, metric_fn f, int a)
{
    double m, se;
    arm_stat(R, f, a, -1, &m, &se);
    return m;
}

static void runs_execute(runs *R, int sft_steps, int quiet)
{
    const int n_runs = R->n_arms * R->seeds;
    const double t0 = now_seconds();
    int s, r, done = 0;
    R->n_evals = eval_index(R->steps) + 1;
    R->theta_sft = ALLOC(float, (int64_t)R->seeds * N_PARAMS);
    R->final = ALLOC(policy, n_runs);
    R->logs = ALLOC(run_log, n_runs);
    for (r = 0; r < n_runs; ++r) { policy_alloc(&R->final[r]); run_log_alloc(&R->logs[r], R->steps, R->n_evals); }
    /* the warm start, once per seed, shared by every arm */
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (s = 0; s < R->seeds; ++s) {
        policy p;
        policy_bind(&p, R->theta_sft + (int64_t)s * N_PARAMS);
        warm_start(&p, (uint64_t)s, sft_steps);
    }
    if (!quiet) { printf("  warm starts done (%d seed%s, %.0f s)\n", R->seeds, R->seeds > 1 ? "s" : "", now_seconds() - t0); fflush(stdout); }
    /* the runs share nothing: each is computed by one thread */
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (r = 0; r < n_runs; ++r) {
        const int a = r % R->n_arms, seed = r / R->n_arms;
        run_log *log = &R->logs[r];
        rl_run(R->theta_sft + (int64_t)seed * N_PARAMS, &arms[R->arm_id[a]], (uint64_t)seed, R->steps, &R->e,
               &R->final[r], log);
#ifdef _OPENMP
#pragma omp critical
#endif
        {
            const double el = now_seconds() - t0;
            done += 1;
            if (!quiet) {
                printf("  [%3d/%3d] %-22s seed %2d: accuracy %.3f, readings %.3f (%4.0f s); elapsed %2d:%02d, about %2d:%02d left\n",
                       done, n_runs, arms[R->arm_id[a]].name, seed, log->acc[R->n_evals - 1],
                       log->read_acc[R->n_evals - 1], log->seconds, (int)el / 60, (int)el % 60,
                       (int)(el / done * (n_runs - done)) / 60, (int)(el / done * (n_runs - done)) % 60);
                fflush(stdout);
            }
        }
    }
}

static void runs_free(runs *R)
{
    int r;
    for (r = 0; r < R->n_arms * R->seeds; ++r) { free(R->final[r].theta); run_log_free(&R->logs[r]); }
    free(R->final); free(R->logs); free(R->theta_sft); free(R->e.pr); free(R->e.ctx);
}

/* Per-kind statistics of arm a, pooled over its seeds. */
typedef struct kind_stats { double n[N_KINDS], dep[N_KINDS], sel[N_KINDS], grad[N_KINDS], grad_total, sel_total; } kind_stats;

static void arm_kinds(const runs *R, int a, kind_stats *ks)
{
    int s, k;
    memset(ks, 0, sizeof *ks);
    for (s = 0; s < R->seeds; ++s) {
        const run_log *log = log_of(R, a, s);
        for (k = 0; k < N_KINDS; ++k) {
            ks->n[k] += log->n_tok[k]; ks->dep[k] += log->dep[k]; ks->sel[k] += log->selected[k];
            ks->grad[k] += log->grad[k]; ks->grad_total += log->grad[k]; ks->sel_total += log->selected[k];
        }
    }
}

/* ============================================================ SVG =============== */

static const char *const series_colour[6] = { "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860" };

/* One panel at (x0, y0) of size w x h: per listed arm a mean line over seeds of
   log->acc (what 0) or log->read_acc (what 1), with a +- standard error band, and a legend. */
static void svg_panel(FILE *f, const runs *R, double x0, double y0, double w, double h, const char *title,
                      const int *list, int n_list, int what, double y_lo)
{
    double *x = ALLOC(double, R->seeds), *mean = ALLOC(double, R->n_evals), *se = ALLOC(double, R->n_evals);
    int i, k, s, n = R->n_evals;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n", x0 + w / 2, y0 - 8, title);
    for (k = 0; k <= 4; ++k) {   /* y grid: y_lo .. 1 in quarters */
        const double y = y0 + h - h * k / 4.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x0, y, x0 + w, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%.2f</text>\n", x0 - 4, y + 4,
                y_lo + (1 - y_lo) * k / 4.0);
    }
    for (k = 0; k <= 4; ++k) {
        const double xx = x0 + w * k / 4.0;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%.0f</text>\n", xx, y0 + h + 15,
                R->steps * k / 4.0);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">RL step</text>\n", x0 + w / 2, y0 + h + 29);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#000\"/>\n", x0, y0, w, h);
#define SVG_X(i) (x0 + w * eval_step(i, R->steps) / (double)R->steps)
#define SVG_Y(v) (y0 + h - h * (((v) < y_lo ? y_lo : (v) > 1 ? 1 : (v)) - y_lo) / (1 - y_lo))
    for (i = 0; i < n_list; ++i) {
        const int a = list[i];
        for (k = 0; k < n; ++k) {
            for (s = 0; s < R->seeds; ++s) x[s] = what ? log_of(R, a, s)->read_acc[k] : log_of(R, a, s)->acc[k];
            mean_se(x, R->seeds, &mean[k], &se[k]);
        }
        fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" points=\"", series_colour[i % 6]);
        for (k = 0; k < n; ++k) fprintf(f, "%.1f,%.1f ", SVG_X(k), SVG_Y(mean[k] + se[k]));
        for (k = n - 1; k >= 0; --k) fprintf(f, "%.1f,%.1f ", SVG_X(k), SVG_Y(mean[k] - se[k]));
        fprintf(f, "\"/>\n<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", series_colour[i % 6]);
        for (k = 0; k < n; ++k) fprintf(f, "%.1f,%.1f ", SVG_X(k), SVG_Y(mean[k]));
        fprintf(f, "\"/>\n");
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>"
                   "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\">%s</text>\n",
                x0 + w - 150, y0 + h - 12 - 13 * (n_list - 1 - i), x0 + w - 135, y0 + h - 12 - 13 * (n_list - 1 - i),
                series_colour[i % 6], x0 + w - 130, y0 + h - 8 - 13 * (n_list - 1 - i), arms[R->arm_id[a]].name);
    }
#undef SVG_X
#undef SVG_Y
    free(x); free(mean); free(se);
}

/* Learning curves: n_panels panels (columns) of arm lists, accuracy above, readings below. */
static int svg_curves(const char *path, const runs *R, const int *const *lists, const int *n_list,
                      const char *const *titles, int n_panels, double read_lo)
{
    FILE *f = fopen(path, "w");
    const int W = 40 + 330 * n_panels, H = 560;
    int i;
    char title[160];
    if (!f) return 0;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\">\n<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, H, W, H, W, H);
    for (i = 0; i < n_panels; ++i) {
        snprintf(title, sizeof title, "%s: held-out accuracy", titles[i]);
        svg_panel(f, R, 60 + 330 * i, 30, 280, 200, title, lists[i], n_list[i], 0, 0.0);
        snprintf(title, sizeof title, "%s: readings right", titles[i]);
        svg_panel(f, R, 60 + 330 * i, 300, 280, 200, title, lists[i], n_list[i], 1, read_lo);
    }
    fprintf(f, "<text x=\"20\" y=\"%d\" font-size=\"11\" fill=\"#555\">avg@4 (temperature 1), %lld held-out prompts; line: mean over %d seeds, "
               "band: &#177; one standard error</text>\n</svg>\n", H - 12, (long long)R->e.n, R->seeds);
    return fclose(f) == 0;
}

/* Paired differences to DAPO (arm 0 of R) per arm: dot and +- 2 s.e. whiskers, for the
   final accuracy (left) and the readings (right). */
static int svg_differences(const char *path, const runs *R)
{
    FILE *f = fopen(path, "w");
    const int H = 70 + 26 * (R->n_arms - 1);
    const metric_fn fn[2] = { m_acc, m_read };
    static const char *const name[2] = { "held-out accuracy", "readings right" };
    double lim[2] = { 0.02, 0.02 }, m, se;
    int a, c;
    if (!f) return 0;
    for (c = 0; c < 2; ++c)
        for (a = 1; a < R->n_arms; ++a) {
            arm_stat(R, fn[c], a, 0, &m, &se);
            if (fabs(m) + 2 * se > lim[c]) lim[c] = fabs(m) + 2 * se;
        }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"860\" height=\"%d\" viewBox=\"0 0 860 %d\" "
               "font-family=\"sans-serif\">\n<rect width=\"860\" height=\"%d\" fill=\"#fff\"/>\n", H, H, H);
    for (c = 0; c < 2; ++c) {
        const double x0 = 190 + 340 * c, w = 300, mid = x0 + w / 2;
        fprintf(f, "<text x=\"%.0f\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">arm &#8722; DAPO, %s</text>\n", mid, name[c]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"28\" x2=\"%.1f\" y2=\"%d\" stroke=\"#888\"/>\n", mid, mid, H - 30);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%+.3f</text>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">0</text>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%+.3f</text>\n",
                x0, H - 18, -lim[c], mid, H - 18, x0 + w, H - 18, lim[c]);
        for (a = 1; a < R->n_arms; ++a) {
            const double y = 40 + 26 * (a - 1);
            arm_stat(R, fn[c], a, 0, &m, &se);
            if (c == 0) fprintf(f, "<text x=\"180\" y=\"%.0f\" text-anchor=\"end\" font-size=\"11\">%s</text>\n", y + 4, arms[R->arm_id[a]].name);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#333\"/>"
                       "<circle cx=\"%.1f\" cy=\"%.0f\" r=\"4\" fill=\"%s\"/>\n",
                    mid + w / 2 * (m - 2 * se) / lim[c], y, mid + w / 2 * (m + 2 * se) / lim[c], y,
                    mid + w / 2 * m / lim[c], y, m - 2 * se > 0 ? "#55a868" : m + 2 * se < 0 ? "#c44e52" : "#888");
        }
    }
    fprintf(f, "<text x=\"20\" y=\"%d\" font-size=\"11\" fill=\"#555\">paired over %d seeds (same warm start, prompts, "
               "masks); dot: mean difference, whiskers: &#177; 2 standard errors</text>\n</svg>\n", H - 4, R->seeds);
    return fclose(f) == 0;
}

/* The tokens of one response shaded by their KL dependency; a thick outline marks TGF's top 40% by K3. */
static int svg_heatmap(const char *path, const perception *m, const eval_set *e, int64_t b)
{
    FILE *f = fopen(path, "w");
    const int32_t *tok = m->tokens + b * LEN;
    const float *kl = m->kl + b * LEN;
    double max = 0;
    int t, r;
    if (!f) return 0;
    for (t = 0; t < LEN; ++t) max = kl[t] > max ? kl[t] : max;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"880\" height=\"300\" viewBox=\"0 0 880 300\" "
               "font-family=\"sans-serif\">\n<rect width=\"880\" height=\"300\" fill=\"#fff\"/>\n");
    fprintf(f, "<text x=\"20\" y=\"20\" font-size=\"13\">Token perception of one sampled response (VPPO, held-out prompt %lld: "
               "how many %s cells? answer %d; rows", (long long)b, colour_name[e->pr[b].question], e->pr[b].count);
    for (r = 0; r < GRID; ++r) if (e->pr[b].hint[r] == NO_HINT) fprintf(f, " %d", r + 1);
    fprintf(f, " must be read)</text>\n");
    for (t = 0; t < LEN; ++t) {
        const double x = 20 + (t % 16) * 52, y = 34 + (t / 16) * 62;
        const int sel = m->top_k3[b * LEN + t];
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"50\" height=\"34\" fill=\"#d62728\" fill-opacity=\"%.3f\" "
                   "stroke=\"#000\" stroke-width=\"%s\"/>\n", x, y, max > 0 ? kl[t] / max : 0.0, sel ? "2" : "0.3");
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"13\">%s</text>\n", x + 25, y + 22, word_text[tok[t]]);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"9\" fill=\"#555\">%.3f</text>\n", x + 25, y + 47, kl[t]);
    }
    fprintf(f, "<text x=\"20\" y=\"292\" font-size=\"11\" fill=\"#555\">shade and number: KL(&#960;(&#183;|I) &#8741; "
               "&#960;(&#183;|I&#8242;)) per token, paper Eq. 3; thick outline: top 40%% by the sampled-token K3 estimate "
               "(what TGF keeps)</text>\n</svg>\n");
    return fclose(f) == 0;
}

/* ============================================================ reports =========== */

typedef struct options {
    int study, seeds, steps, sft_steps, quick, simd, write, n_eval;
    const char *out;            /* docs directory: study.md and img/ */
    const char *arm_list;       /* --arms 0,3,...: a subset (tuning) */
} options;

static void print_task(const options *o, const runs *R)
{
    int a;
    printf("vppo.h %d.%d.%d toy study: VPPO and its ablations against DAPO, \"how many <colour> cells?\"\n\n",
           VPPO_VERSION_MAJOR, VPPO_VERSION_MINOR, VPPO_VERSION_PATCH);
    printf("  image       56x56 RGB, 4x4 cells of 4 colours, one cell = one 14x14 patch; each row's count is\n"
           "              given in the question with probability %.1f (a hint), else it must be read\n", HINT_PROB);
    printf("  response    %d tokens: \"let us count . the grid has four rows . row one has 1 cells , so the\n"
           "              total is 1 . ... so the answer is 4 .\": 0-4 readings (<= %.0f%% of the tokens), 0-4\n"
           "              copied hints, 4 running totals, the answer, 14 free style words, 40 template words\n",
           LEN, 100.0 * GRID / LEN);
    printf("  policy      one hidden layer of %d tanh units; inside row r's block it sees row r's four\n"
           "              cells (asked colour?, visible?) and hint; %d-token vocabulary; %lld parameters\n",
           HIDDEN, VOCAB, (long long)N_PARAMS);
    printf("  warm start  %d SFT steps x %d responses: hints copied, readings right w.p. %.1f (random 0..4\n"
           "              otherwise): it formats, copies and adds, but reads about as well as a guess\n", o->sft_steps, SFT_BATCH, SFT_RIGHT);
    printf("  reward      1 iff the format holds and the answer is the right count (outcome only)\n");
    printf("  RL          %d seed%s x %d steps x %d prompts x %d rollouts, %d Adam updates per batch (lr %g),\n"
           "              clip 0.2/0.28, dual clip 3, entropy penalty 0.06, DAPO dynamic sampling;\n"
           "              I' = patch blackening (14 px, p = 0.5), a fresh mask per response\n",
           R->seeds, R->seeds > 1 ? "s" : "", R->steps, N_PROMPTS, N_ROLLOUTS, PPO_EPOCHS, RL_LR);
    printf("  arms       ");
    for (a = 0; a < R->n_arms; ++a) printf(" %s%s", arms[R->arm_id[a]].name, a + 1 < R->n_arms ? ";" : "\n");
#ifdef _OPENMP
    printf("  threads     %d (OpenMP over runs; the numbers do not depend on it)\n\n", omp_get_max_threads());
#else
    printf("  threads     1 (built without OpenMP)\n\n");
#endif
    fflush(stdout);
}

/* "0.812 +- 0.013" */
static void print_stat(const runs *R, metric_fn f, int a, int base)
{
    double m, se;
    arm_stat(R, f, a, base, &m, &se);
    printf(base >= 0 ? "%+.3f +- %.3f" : "%.3f +- %.3f", m, se);
}

/* The verdict of a paired difference: +1 ahead, -1 behind (beyond 2 s.e.), 0 not separated. */
static int verdict(const runs *R, metric_fn f, int a)
{
    double m, se;
    arm_stat(R, f, a, 0, &m, &se);
    return R->seeds < 3 ? 0 : m - 2 * se > 0 ? 1 : m + 2 * se < 0 ? -1 : 0;
}

/* What the token rule of arm a did, from the numbers: the kinds it kept, where the
   gradient went, and whether the arm's difference to DAPO (arm 0) is in the readings or
   after them. */
static void explain_rule(FILE *f, const runs *R, int a, const char *bullet)
{
    kind_stats ks, k0;
    double ma, sa, mr, sr, mf, sf, mf0, sf0;
    arm_kinds(R, a, &ks);
    arm_kinds(R, 0, &k0);
    arm_stat(R, m_format, a, -1, &mf, &sf);
    arm_stat(R, m_format, 0, -1, &mf0, &sf0);
    arm_stat(R, m_acc, a, 0, &ma, &sa);
    arm_stat(R, m_read, a, 0, &mr, &sr);
    fprintf(f, "%s%s: the token rule kept %.0f%% of the readings, %.0f%% of the copied counts, %.0f%% of the running\n"
               "  totals, %.0f%% of the answers, %.0f%% of the style words and %.0f%% of the template words; the totals and the\n"
               "  answer got %.1f%% of |dloss/dlogits| (DAPO: %.1f%%), the style words %.1f%% (DAPO: %.1f%%).\n"
               "  Against DAPO: readings %+.3f +- %.3f, accuracy %+.3f +- %.3f", bullet, arms[R->arm_id[a]].name,
            100 * ratio(ks.sel[K_READING], ks.n[K_READING]), 100 * ratio(ks.sel[K_COPY], ks.n[K_COPY]),
            100 * ratio(ks.sel[K_CHAIN], ks.n[K_CHAIN]), 100 * ratio(ks.sel[K_ANSWER], ks.n[K_ANSWER]),
            100 * ratio(ks.sel[K_STYLE], ks.n[K_STYLE]), 100 * ratio(ks.sel[K_TEMPLATE], ks.n[K_TEMPLATE]),
            100 * ratio(ks.grad[K_CHAIN] + ks.grad[K_ANSWER], ks.grad_total),
            100 * ratio(k0.grad[K_CHAIN] + k0.grad[K_ANSWER], k0.grad_total),
            100 * ratio(ks.grad[K_STYLE], ks.grad_total), 100 * ratio(k0.grad[K_STYLE], k0.grad_total), mr, sr, ma, sa);
    if (R->seeds < 3) { fprintf(f, " (too few seeds to tell).\n"); return; }
    fprintf(f, ":\n  readings %s DAPO, accuracy %s DAPO", mr - 2 * sr > 0 ? "ahead of" : mr + 2 * sr < 0 ? "behind" : "not separated from",
            ma - 2 * sa > 0 ? "ahead of" : ma + 2 * sa < 0 ? "behind" : "not separated from");
    fprintf(f, ".\n  The format held in %.3f +- %.3f of its held-out responses (DAPO %.3f +- %.3f); its answers were right in\n"
               "  %.3f of the responses whose format held (DAPO %.3f)", mf, sf, mf0, sf0,
            ratio(mean_of(R, m_acc, a), mf), ratio(mean_of(R, m_acc, 0), mf0));
    if (ma + 2 * sa < 0 && -ma > 3 * fabs(mr))
        fprintf(f, ";\n  the accuracy lost is more than three times the readings lost: most of it is lost after the\n"
                   "  readings (answers kept by the rule: %.0f%%; template words: %.0f%%).\n",
                100 * ratio(ks.sel[K_ANSWER], ks.n[K_ANSWER]), 100 * ratio(ks.sel[K_TEMPLATE], ks.n[K_TEMPLATE]));
    else fprintf(f, ".\n");
}

static void print_results(const runs *R)
{
    double blind_read, blind = blind_accuracy(&R->e, &blind_read), sft_read, sft;
    policy p0;
    int a, k;
    policy_bind(&p0, R->theta_sft);
    sft = evaluate(&p0, &R->e, stream(TAG_EVAL, 0, 0), &sft_read, NULL);
    printf("\nAfter %d steps, avg@4 (temperature 1) on %lld held-out prompts (mean +- standard error over %d seeds):\n\n",
           R->steps, (long long)R->e.n, R->seeds);
    printf("  %-24s %-16s %-16s %-16s %-16s %s\n", "arm", "accuracy", "readings right", "acc. over run",
           "accuracy - DAPO", "readings - DAPO");
    for (a = 0; a < R->n_arms; ++a) {
        printf("  %-24s ", arms[R->arm_id[a]].name);
        print_stat(R, m_acc, a, -1); printf("   ");
        print_stat(R, m_read, a, -1); printf("   ");
        print_stat(R, m_auc, a, -1); printf("   ");
        if (a > 0) { print_stat(R, m_acc, a, 0); printf("  "); print_stat(R, m_read, a, 0); }
        printf("\n");
    }
    printf("  %-24s %.3f            %.3f             (seed 0's warm start, before RL)\n", "warm start", sft, sft_read);
    printf("  %-24s %.3f            %.3f             (copy the hints, guess the mode: the best without the image)\n",
           "blind policy", blind, blind_read);
    printf("\nDuring training (kept rollouts of every step, seeds pooled): share of |dloss/dlogits| by kind\n");
    printf("  %-24s", "arm");
    for (k = 0; k < N_KINDS; ++k) printf(" %9.9s", kind_name[k]);
    printf("\n  %-24s", "(share of the tokens)");
    {
        kind_stats ks;
        double tot = 0;
        arm_kinds(R, 0, &ks);
        for (k = 0; k < N_KINDS; ++k) tot += ks.n[k];
        for (k = 0; k < N_KINDS; ++k) printf(" %8.1f%%", 100 * ratio(ks.n[k], tot));
        printf("\n  %-24s", "(mean K3, DAPO)");
        for (k = 0; k < N_KINDS; ++k) printf(" %9.4f", ratio(ks.dep[k], ks.n[k]));
        printf("\n");
    }
    for (a = 0; a < R->n_arms; ++a) {
        kind_stats ks;
        arm_kinds(R, a, &ks);
        printf("  %-24s", arms[R->arm_id[a]].name);
        for (k = 0; k < N_KINDS; ++k) printf(" %8.1f%%", 100 * ratio(ks.grad[k], ks.grad_total));
        printf("\n");
    }
    printf("Fraction of each kind that TGF keeps (soft mask: mean weight)\n");
    for (a = 0; a < R->n_arms; ++a) {
        kind_stats ks;
        if (arms[R->arm_id[a]].selector == SEL_NONE) continue;
        arm_kinds(R, a, &ks);
        printf("  %-24s", arms[R->arm_id[a]].name);
        for (k = 0; k < N_KINDS; ++k) printf(" %8.1f%%", 100 * ratio(ks.sel[k], ks.n[k]));
        printf("\n");
    }
    printf("\n");
    for (a = 1; a < R->n_arms; ++a)
        if (arms[R->arm_id[a]].selector == SEL_K3 && arms[R->arm_id[a]].ratio == 0.4) explain_rule(stdout, R, a, "");
    fflush(stdout);
}

/* ============================================================ docs/study.md ===== */

#define RESULTS_MARK "<!-- results: everything below this line is written by make study -->"

/* The paper's claims, as directions: arm `better` should beat arm `worse` (indices into
   arms[]). Only the direction is compared; the paper's own numbers are in docs/study.md. */
typedef struct claim { int better, worse; const char *text; } claim;
static const claim claims[] = {
    { 1, 0, "TAS alone improves on DAPO" },
    { 2, 0, "TGF alone improves on DAPO" },
    { 3, 0, "VPPO improves on DAPO" },
    { 3, 1, "VPPO (both) beats TAS alone" },
    { 3, 2, "VPPO (both) beats TGF alone" },
    { 3, 4, "visual dependency beats random token selection" },
    { 3, 5, "visual dependency beats highest-entropy selection" },
    { 3, 6, "the hard top-k mask is at least as good as the soft mask (the paper keeps the hard one)" },
    { 3, 7, "k = 0.4 beats k = 0.2" },
    { 3, 8, "k = 0.4 beats k = 0.6" },
    { 3, 9, "k = 0.4 beats k = 0.8" }
};
#define N_CLAIMS ((int)(sizeof claims / sizeof claims[0]))

static void md_stat(FILE *f, const runs *R, metric_fn fn, int a, int base)
{
    double m, se;
    arm_stat(R, fn, a, base, &m, &se);
    fprintf(f, base >= 0 ? "%+.3f ± %.3f" : "%.3f ± %.3f", m, se);
}

static const char *verdict_word(int v) { return v > 0 ? "ahead" : v < 0 ? "behind" : "not separated"; }

/* One table row per arm of a per-kind percentage: the share of |dloss/dlogits|
   (KIND_GRAD, every arm), the fraction of the kind kept by the token rule (KIND_KEPT) or
   the kind's share of the selection (KIND_SELECTION), the last two for arms with a rule. */
enum { KIND_GRAD, KIND_KEPT, KIND_SELECTION };
static void md_kind_rows(FILE *f, const runs *R, int which)
{
    int a, k;
    for (a = 0; a < R->n_arms; ++a) {
        kind_stats ks;
        if (which != KIND_GRAD && arms[R->arm_id[a]].selector == SEL_NONE) continue;
        arm_kinds(R, a, &ks);
        fprintf(f, "\n| %s | ", arms[R->arm_id[a]].name);
        for (k = 0; k < N_KINDS; ++k)
            fprintf(f, "%.1f%% | ", 100 * (which == KIND_GRAD ? ratio(ks.grad[k], ks.grad_total)
                                          : which == KIND_KEPT ? ratio(ks.sel[k], ks.n[k]) : ratio(ks.sel[k], ks.sel_total)));
    }
}

static int write_study(const char *dir, const runs *R, double minutes)
{
    char path[1024], *prefix = NULL, line[4096];
    size_t len = 0;
    FILE *in, *f;
    double blind_read, blind = blind_accuracy(&R->e, &blind_read), sft_read, sft, m, se;
    policy p0;
    int a, k, found = 0, ahead = 0, behind = 0, agree = 0, disagree = 0;
    static const int g1[] = { 0, 1, 2, 3 }, g2[] = { 0, 3, 4, 5, 6 }, g3[] = { 0, 7, 3, 8, 9 };
    const int *lists[3]; int n_list[3];
    static const char *const titles[3] = { "mechanisms", "token rule", "TGF ratio k" };

    policy_bind(&p0, R->theta_sft);
    sft = evaluate(&p0, &R->e, stream(TAG_EVAL, 0, 0), &sft_read, NULL);
    snprintf(path, sizeof path, "%s/study.md", dir);
    if ((in = fopen(path, "r")) != NULL) {   /* keep the protocol: everything up to the mark */
        while (fgets(line, sizeof line, in)) {
            const size_t n = strlen(line);
            prefix = (char *)realloc(prefix, len + n + 1);
            if (!prefix) { fclose(in); return 0; }
            memcpy(prefix + len, line, n + 1);
            len += n;
            if (!strncmp(line, RESULTS_MARK, strlen(RESULTS_MARK))) { found = 1; break; }
        }
        fclose(in);
    }
    if (!(f = fopen(path, "w"))) { free(prefix); return 0; }
    if (found) fputs(prefix, f);
    else fprintf(f, "# Toy study\n\n%s\n", RESULTS_MARK);
    free(prefix);
    fprintf(f, "\n## Results\n\n");
    fprintf(f, "Written by `make study` (`build/toy_vppo --study`, %d arms × %d seeds × %d RL steps, %.1f min wall on "
               "this machine). Held-out accuracy is avg@4 (four samples per prompt at temperature 1, the paper's avg@k) on the %lld held-out prompts after the last step; mean ± standard error over "
               "seeds; differences are paired by seed (same warm start, prompts, masks and random numbers).\n\n",
            R->n_arms, R->seeds, R->steps, minutes, (long long)R->e.n);
    fprintf(f, "| arm | accuracy | readings right | accuracy over the run | accuracy − DAPO | readings − DAPO | verdict (accuracy) |\n");
    fprintf(f, "|---|---|---|---|---|---|---|\n");
    for (a = 0; a < R->n_arms; ++a) {
        fprintf(f, "| %s | ", arms[R->arm_id[a]].name);
        md_stat(f, R, m_acc, a, -1); fprintf(f, " | ");
        md_stat(f, R, m_read, a, -1); fprintf(f, " | ");
        md_stat(f, R, m_auc, a, -1); fprintf(f, " | ");
        if (a > 0) {
            const int v = verdict(R, m_acc, a);
            md_stat(f, R, m_acc, a, 0); fprintf(f, " | ");
            md_stat(f, R, m_read, a, 0); fprintf(f, " | %s |\n", verdict_word(v));
            ahead += v > 0; behind += v < 0;
        } else fprintf(f, "— | — | baseline |\n");
    }
    fprintf(f, "| warm start (before RL, seed 0) | %.3f | %.3f | | | | |\n", sft, sft_read);
    fprintf(f, "| blind policy (copy hints, guess the mode) | %.3f | %.3f | | | | |\n\n", blind, blind_read);
    fprintf(f, "Accuracy per seed (seeds 0, 1, ...):\n\n");
    for (a = 0; a < R->n_arms; ++a) {
        fprintf(f, "* %s:", arms[R->arm_id[a]].name);
        for (k = 0; k < R->seeds; ++k) fprintf(f, " %.3f", log_of(R, a, k)->acc[R->n_evals - 1]);
        fprintf(f, "\n");
    }
    lists[0] = g1; n_list[0] = 4; lists[1] = g2; n_list[1] = 5; lists[2] = g3; n_list[2] = 5;
    if (R->n_arms == N_ARMS) {
        char svg[1024];
        snprintf(svg, sizeof svg, "%s/img/study_curves.svg", dir);
        if (!svg_curves(svg, R, lists, n_list, titles, 3, 0.4)) fprintf(stderr, "toy_vppo: cannot write %s\n", svg);
        snprintf(svg, sizeof svg, "%s/img/study_differences.svg", dir);
        if (!svg_differences(svg, R)) fprintf(stderr, "toy_vppo: cannot write %s\n", svg);
        fprintf(f, "\n![learning curves](img/study_curves.svg)\n\n![paired differences](img/study_differences.svg)\n");
    }
    fprintf(f, "\n### Where the gradient and TGF's selection go (training rollouts of every step, seeds pooled)\n\n");
    fprintf(f, "| | ");
    for (k = 0; k < N_KINDS; ++k) fprintf(f, "%s | ", kind_name[k]);
    fprintf(f, "\n|---|");
    for (k = 0; k < N_KINDS; ++k) fprintf(f, "---|");
    {
        kind_stats ks;
        double tot = 0;
        arm_kinds(R, 0, &ks);
        for (k = 0; k < N_KINDS; ++k) tot += ks.n[k];
        fprintf(f, "\n| share of the tokens | ");
        for (k = 0; k < N_KINDS; ++k) fprintf(f, "%.1f%% | ", 100 * ratio(ks.n[k], tot));
        fprintf(f, "\n| mean K3 dependency (DAPO) | ");
        for (k = 0; k < N_KINDS; ++k) fprintf(f, "%.4f | ", ratio(ks.dep[k], ks.n[k]));
        fprintf(f, "\n| *share of \\|dloss/dlogits\\|:* | | | | | | |");
    }
    md_kind_rows(f, R, KIND_GRAD);
    fprintf(f, "\n| *kept by the token rule (soft: mean weight):* | | | | | | |");
    md_kind_rows(f, R, KIND_KEPT);
    fprintf(f, "\n| *share of the selection:* | | | | | | |");
    md_kind_rows(f, R, KIND_SELECTION);
    {
        double lo = 0, hi = 0, tlo = 0, thi = 0, n = 0;
        for (k = 0; k < R->seeds; ++k) {
            const run_log *log = log_of(R, ARM_VPPO < R->n_arms ? ARM_VPPO : 0, k);
            lo += log->scale_lo; hi += log->scale_hi; tlo += log->traj_lo; thi += log->traj_hi; n += log->n_updates;
        }
        fprintf(f, "\n\nTAS in the VPPO arm: trajectory dependency within a batch %.4f..%.4f, scales %.2f..%.2f "
                   "(mean lowest..highest over the updates).\n", ratio(tlo, n), ratio(thi, n), ratio(lo, n), ratio(hi, n));
    }
    fprintf(f, "\n### The paper's claims at toy scale (direction only)\n\n| claim (paper) | ours: better − worse, accuracy | readings | at toy scale |\n|---|---|---|---|\n");
    if (R->n_arms == N_ARMS)
        for (k = 0; k < N_CLAIMS; ++k) {
            double mr, ser;
            arm_stat(R, m_acc, claims[k].better, claims[k].worse, &m, &se);
            arm_stat(R, m_read, claims[k].better, claims[k].worse, &mr, &ser);
            fprintf(f, "| %s | %+.3f ± %.3f | %+.3f ± %.3f | %s |\n", claims[k].text, m, se, mr, ser,
                    R->seeds < 3 ? "too few seeds" : m - 2 * se > 0 ? "holds" : m + 2 * se < 0 ? "reversed" : "not separated");
            agree += R->seeds >= 3 && m - 2 * se > 0;
            disagree += R->seeds >= 3 && m + 2 * se < 0;
        }
    fprintf(f, "\n### Conclusion (computed from the numbers above)\n\n");
    arm_stat(R, m_read, 0, -1, &m, &se);
    fprintf(f, "* Perception: DAPO's readings are right %.3f ± %.3f of the time after RL against %.3f for the best blind "
               "strategy and %.3f for the warm start: %s.\n", m, se, blind_read, sft_read,
            m - 2 * se > blind_read ? "the policy learned to read the image, beyond two standard errors"
                                    : "the policy did NOT clearly beat the blind strategy");
    fprintf(f, "* Of the %d arms compared with DAPO on final held-out accuracy, %d are ahead and %d behind by more than "
               "two standard errors of the paired difference; %d are not separated from DAPO at %d seeds.\n",
            R->n_arms - 1, ahead, behind, R->n_arms - 1 - ahead - behind, R->seeds);
    fprintf(f, "* Of the paper's %d claims above, %d hold, %d are reversed and %d are not separated at toy scale "
               "(2 standard errors of the paired difference).\n", N_CLAIMS, agree, disagree, N_CLAIMS - agree - disagree);
    for (a = 1; a < R->n_arms; ++a) {
        double mr, ser;
        arm_stat(R, m_acc, a, 0, &m, &se);
        arm_stat(R, m_read, a, 0, &mr, &ser);
        fprintf(f, "* %s: accuracy %+.3f ± %.3f, readings %+.3f ± %.3f against DAPO — %s.\n", arms[R->arm_id[a]].name,
                m, se, mr, ser, verdict_word(verdict(R, m_acc, a)));
    }
    fprintf(f, "\nWhat TGF did (computed):\n\n```\n");
    for (a = 1; a < R->n_arms; ++a)
        if (arms[R->arm_id[a]].selector == SEL_K3 && arms[R->arm_id[a]].ratio == 0.4) explain_rule(f, R, a, "");
    fprintf(f, "```\n");
    fprintf(f, "\nNo correction for the nine comparisons was made; at the 2-s.e. rule about one in twenty "
               "differences of zero would be called by chance per comparison.\n");
    return fclose(f) == 0;
}

/* ============================================================ main ============== */

static void usage(void)
{
    fprintf(stderr, "usage: toy_vppo [--study] [--seeds N] [--steps N] [--arms i,j,...] [--out DIR] [--no-write]\n"
                    "                [--simd] [--quick]\n");
    exit(2);
}

static options parse_options(int argc, char **argv)
{
    options o;
    int i;
    memset(&o, 0, sizeof o);
    o.seeds = -1; o.steps = RL_STEPS; o.sft_steps = SFT_STEPS; o.write = 1; o.out = "docs"; o.n_eval = N_EVAL;
    for (i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--quick")) o.quick = 1;
        else if (!strcmp(argv[i], "--study")) o.study = 1;
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) o.seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) o.steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--arms") && i + 1 < argc) o.arm_list = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) o.out = argv[++i];
        else if (!strcmp(argv[i], "--no-write")) o.write = 0;
        else if (!strcmp(argv[i], "--simd")) o.simd = 1;
        else usage();
    }
    if (o.seeds < 0) o.seeds = o.study ? STUDY_SEEDS : DEMO_SEEDS;
    if (o.quick) { o.seeds = 1; o.steps = 3; o.n_eval = 32; }
    if (o.seeds < 1 || o.seeds > 100 || o.steps < 1 || o.steps > 100000) usage();
    return o;
}

int main(int argc, char **argv)
{
    const options o = parse_options(argc, argv);
    static const int demo_arms[2] = { ARM_DAPO, ARM_VPPO };
    int all_arms[N_ARMS], chosen[N_ARMS];
    runs R;
    int a, r, s, k, ok = 1;
    double t0;

    build_template();
    if (!o.simd) check(vppo_isa_select(VPPO_ISA_SCALAR), "isa");
    (void)vppo_isa_active();   /* settle the ISA before any thread starts */
    memset(&R, 0, sizeof R);
    for (a = 0; a < N_ARMS; ++a) all_arms[a] = a;
    if (o.arm_list) {          /* a subset, for tuning: arm 0 must be DAPO for the differences */
        const char *p = o.arm_list;
        R.n_arms = 0;
        while (*p && R.n_arms < N_ARMS) {
            const int id = atoi(p);
            if (id < 0 || id >= N_ARMS) usage();
            chosen[R.n_arms++] = id;
            while (*p && *p != ',') ++p;
            if (*p == ',') ++p;
        }
        R.arm_id = chosen;
    } else if (o.study) { R.n_arms = N_ARMS; R.arm_id = all_arms; }
    else { R.n_arms = 2; R.arm_id = demo_arms; }
    R.seeds = o.seeds; R.steps = o.steps;
    eval_set_make(&R.e, o.n_eval);
    print_task(&o, &R);
    t0 = now_seconds();
    runs_execute(&R, o.sft_steps, 0);
    print_results(&R);

    if (!o.study) {   /* the demo: where VPPO's mechanisms act, on one held-out response */
        perception pm;
        const int64_t b = showcase(&R.e);
        const int vppo_run = R.n_arms > 1 ? 1 : 0;
        perception_measure(&R.final[vppo_run], &R.e, &pm);
        printf("\nToken perception of %s's final policy (seed 0): one sampled response, scored under its own\n"
               "blackened image; KL = full-logits KL(pi(.|I) || pi(.|I')) (paper Eq. 3); K3 = the sampled-token\n"
               "estimate that training uses; * = TGF's top 40%% by K3.\n\n", arms[R.arm_id[vppo_run]].name);
        print_heatmap(&pm, &R.e, b);
        for (k = 0; k < pm.n * LEN; ++k) ok &= pm.k3[k] >= 0 && pm.kl[k] >= 0 && isfinite(pm.k3[k]) && isfinite(pm.kl[k]);
        if (o.write && !o.quick) {
            char path[1024];
            static const int both[2] = { 0, 1 };
            const int *lists[1]; int n_list[1];
            static const char *const titles[1] = { "DAPO vs VPPO" };
            lists[0] = both; n_list[0] = R.n_arms > 1 ? 2 : 1;
            snprintf(path, sizeof path, "%s/img/toy_curves.svg", o.out);
            if (svg_curves(path, &R, lists, n_list, titles, 1, 0.4)) printf("\nwrote %s\n", path);
            else fprintf(stderr, "toy_vppo: cannot write %s\n", path);
            snprintf(path, sizeof path, "%s/img/toy_heatmap.svg", o.out);
            if (svg_heatmap(path, &pm, &R.e, b)) printf("wrote %s\n", path);
            else fprintf(stderr, "toy_vppo: cannot write %s\n", path);
        }
        perception_free(&pm);
    } else if (o.write) {
        if (write_study(o.out, &R, (now_seconds() - t0) / 60)) printf("\nwrote %s/study.md (results) and %s/img/study_*.svg\n", o.out, o.out);
        else { fprintf(stderr, "toy_vppo: cannot write %s/study.md\n", o.out); ok = 0; }
    }

    /* sanity: every number finite and in range; --quick also reruns a run */
    for (r = 0; r < R.n_arms * R.seeds; ++r) {
        ok &= R.logs[r].all_finite;
        for (s = 0; s < R.steps; ++s) ok &= R.logs[r].reward[s] >= 0 && R.logs[r].reward[s] <= 1;
        for (k = 0; k < R.n_evals; ++k) ok &= R.logs[r].acc[k] >= 0 && R.logs[r].acc[k] <= 1;
    }
    if (o.quick) {   /* the update path must have run: some batch had a group with signal */
        policy again;
        run_log log2;
        const int last = R.n_arms - 1;
        int updates = 0;
        for (r = 0; r < R.n_arms * R.seeds; ++r) updates += R.logs[r].n_updates;
        if (updates == 0) { fprintf(stderr, "toy_vppo: no batch had a group with signal: nothing was updated\n"); ok = 0; }
        policy_alloc(&again);
        run_log_alloc(&log2, R.steps, R.n_evals);
        rl_run(R.theta_sft, &arms[R.arm_id[last]], 0, R.steps, &R.e, &again, &log2);
        if (memcmp(again.theta, R.final[last].theta, (size_t)N_PARAMS * sizeof(float)) != 0) {
            fprintf(stderr, "toy_vppo: a rerun of the same seed gave different weights\n");
            ok = 0;
        } else printf("\nquick check: a rerun of %s seed 0 gives the same weights, bit for bit\n", arms[R.arm_id[last]].name);
        free(again.theta); run_log_free(&log2);
    }
    printf("%s\n", ok ? "sanity checks passed (losses, dependencies and rewards finite and in range)"
                      : "SANITY CHECK FAILED");
    if (!o.study && !o.quick)
        printf("\nThe full study (%d arms x %d seeds: the paper's ablations; about 10-20 min on 2 cores): make study\n", N_ARMS, STUDY_SEEDS);
    runs_free(&R);
    return ok ? 0 : 1;
}
