/* tests/fuzz/fuzz.h - what the libFuzzer harnesses of vppo.h share: decoding sizes,
   floats, masks and sequence layouts from the fuzz input, exact-size buffers, and the
   checks every call gets.

   Each harness (tests/fuzz/fuzz_*.c) is one translation unit that includes this file,
   so it compiles the implementation of vppo.h itself, and links tests/test_util.c for
   the suite's float64 references. Build: clang -fsanitize=fuzzer,address,undefined
   (make fuzz, make fuzz-quick; tests/reliability.mk).

   What every call is held to:
     * the status is a vppo_status the function can return;
     * the harness works out, from the documentation alone, which errors the arguments
       deserve (a set: the order of the checks is not part of the contract) and the
       call must return one of them, or VPPO_OK when there are none;
     * every buffer is its own allocation of exactly the size the call may use, so
       AddressSanitizer sees any access outside it, and bytes the call must not write
       (before offsets[0], from offsets[B] on, the stride gaps of a matrix) are checked
       to be unchanged;
     * on VPPO_OK, the invariants the mathematics gives cheaply. */
#ifndef VPPO_FUZZ_H
#define VPPO_FUZZ_H

#define VPPO_IMPLEMENTATION
#include "../../vppo.h"
#include "../test.h"
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Helpers: each harness uses a part of them. */
#define FZ_FN static __attribute__((unused))

/* ------------------------------------------------------------ failing loudly */

#define FZ_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

/* The status is one of the codes a CPU function can return (CUDA and ALLOC cannot). */
FZ_FN int fz_known_status(vppo_status st)
{
    return st == VPPO_OK || st == VPPO_ERR_NULL || st == VPPO_ERR_SIZE || st == VPPO_ERR_PARAM ||
           st == VPPO_ERR_INDEX || st == VPPO_ERR_NONFINITE || st == VPPO_ERR_WORKSPACE ||
           st == VPPO_ERR_UNSUPPORTED;
}

/* Deserved errors as a set of bits: bit (-status). */
typedef unsigned fz_reasons;
#define FZ_BIT(st) ((unsigned)(-(int)(st)) < 32u ? 1u << (unsigned)(-(int)(st)) : 0u)   /* 0 for no known code */

/* st must be VPPO_OK when nothing is wrong, else one of the deserved errors. */
#define FZ_EXPECT(reasons, st) do { vppo_status st_ = (st); fz_reasons r_ = (reasons); \
    FZ_ASSERT(fz_known_status(st_)); \
    if (r_ == 0 && st_ != VPPO_OK) { fprintf(stderr, "unexpected status %d (%s)\n", (int)st_, \
        vppo_status_string(st_)); FZ_ASSERT(st_ == VPPO_OK); } \
    if (r_ != 0 && (st_ == VPPO_OK || !(r_ & FZ_BIT(st_)))) { fprintf(stderr, \
        "status %d (%s), deserved set 0x%x\n", (int)st_, vppo_status_string(st_), r_); \
        FZ_ASSERT(st_ != VPPO_OK && (r_ & FZ_BIT(st_))); } } while (0)

/* The same, where `may` holds errors that the arguments may deserve (an overflow whose
   exact edge the documentation leaves open): VPPO_OK or one of them is fine too. */
#define FZ_EXPECT2(reasons, may, st) do { vppo_status st2_ = (st); fz_reasons m_ = (may); \
    if (st2_ != VPPO_OK && (m_ & FZ_BIT(st2_))) FZ_ASSERT(fz_known_status(st2_)); \
    else FZ_EXPECT(reasons, st2_); } while (0)

/* ------------------------------------------------------------ the input */

#define FZ_MAX_ALLOCS 96

typedef struct fz {
    const uint8_t *p;
    size_t n;
    uint64_t rng;                  /* for bulk values, seeded from the input */
    void *allocs[FZ_MAX_ALLOCS];
    int n_allocs;
} fz;

FZ_FN void fz_init(fz *f, const uint8_t *data, size_t size)
{
    memset(f, 0, sizeof *f);
    f->p = data;
    f->n = size;
    f->rng = 0x2545F4914F6CDD1DULL ^ (uint64_t)size;
}

/* Bytes of the input, little endian; zeros once it is used up. */
FZ_FN uint64_t fz_bits(fz *f, int nbytes)
{
    uint64_t v = 0;
    int i;
    for (i = 0; i < nbytes; ++i) {
        uint64_t byte = 0;
        if (f->n > 0) { byte = *f->p++; --f->n; }
        v |= byte << (8 * i);
    }
    return v;
}
FZ_FN unsigned fz_u8(fz *f) { return (unsigned)fz_bits(f, 1); }

/* An integer in [lo, hi]; lo when the input is used up. */
FZ_FN int64_t fz_int(fz *f, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)(hi - lo) + 1, v = fz_bits(f, span <= 256 ? 1 : span <= 65536 ? 2 : 4);
    return lo + (int64_t)(span ? v % span : v);
}

/* xorshift64*, for filling large arrays from a few input bytes. */
FZ_FN uint64_t fz_next(fz *f)
{
    f->rng ^= f->rng >> 12;
    f->rng ^= f->rng << 25;
    f->rng ^= f->rng >> 27;
    return f->rng * 2685821657736338717ULL;
}
FZ_FN double fz_unit(fz *f) { return (double)(fz_next(f) >> 11) * (1.0 / 9007199254740992.0); }
FZ_FN double fz_gauss(fz *f)   /* rough normal: sum of four uniforms, centred and scaled */
{
    return (fz_unit(f) + fz_unit(f) + fz_unit(f) + fz_unit(f) - 2.0) * 1.7320508075688772;
}
FZ_FN void fz_reseed(fz *f) { f->rng ^= fz_bits(f, 8) | 1u; fz_next(f); }

/* Floats that sit on the edges of what the library handles. */
FZ_FN float fz_special(unsigned i)
{
    static const float t[] = {
        0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 2.0f, 20.0f, -20.0f, 20.5f, -20.5f, 88.0f, -88.0f,
        89.0f, -89.0f, 100.0f, -100.0f, 1e-6f, 1e-7f, 1e-30f, 1e-38f, 1e-45f, FLT_MIN, FLT_MAX, -FLT_MAX,
        3e38f, -3e38f, 1e30f, -1e30f, 1e10f, -1e10f, 65504.0f, 3.0f, 0.2f, 0.28f, 0.9f, 1.28f, 0.8f,
        1e5f, 1e6f, 4e-39f, 9e37f, 2e38f, HUGE_VALF, -HUGE_VALF, NAN, -NAN };
    return t[i % (sizeof t / sizeof t[0])];
}

/* A float of any kind: mostly moderate values, often an edge value, sometimes raw bits. */
FZ_FN float fz_float(fz *f)
{
    unsigned sel = fz_u8(f);
    if (sel < 150) return (float)(int16_t)fz_bits(f, 2) / 256.0f;      /* [-128, 128) */
    if (sel < 230) return fz_special(fz_u8(f));
    {
        uint32_t bits = (uint32_t)fz_bits(f, 4);
        float x;
        memcpy(&x, &bits, sizeof x);
        return x;
    }
}

/* A double parameter (ratios, lo/hi, agg_norm, denom): moderate, edge or raw. */
FZ_FN double fz_double(fz *f)
{
    static const double t[] = { 0.0, -0.0, 1.0, 0.4, 0.5, 0.01, 0.99, 1e-9, 1.0 - 1e-9, 1.0 + 1e-12, -1e-300,
                                2.0, -1.0, 1e300, -1e300, HUGE_VAL, -HUGE_VAL, NAN, 3.0, 1e6 };
    unsigned sel = fz_u8(f);
    if (sel < 128) return (double)fz_bits(f, 2) / 65535.0;                /* [0, 1] */
    if (sel < 230) return t[fz_u8(f) % (sizeof t / sizeof t[0])];
    {
        uint64_t bits = fz_bits(f, 8);
        double x;
        memcpy(&x, &bits, sizeof x);
        return x;
    }
}

FZ_FN int fz_finite(double x) { return x - x == 0.0; }

/* ------------------------------------------------------------ buffers */

/* An allocation of exactly `bytes` (never padded, so ASan sees one byte past it). */
FZ_FN void *fz_alloc(fz *f, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    FZ_ASSERT(p != NULL && f->n_allocs < FZ_MAX_ALLOCS);
    if (bytes == 0) {   /* a zero-size buffer: ASan flags any access to a realloc'd 0 */
        free(p);
        p = malloc(0);
        FZ_ASSERT(p != NULL);
    }
    f->allocs[f->n_allocs++] = p;
    return p;
}

FZ_FN void fz_free_all(fz *f)
{
    int i;
    for (i = 0; i < f->n_allocs; ++i) free(f->allocs[i]);
    f->n_allocs = 0;
}

/* A copy of n bytes (for "unchanged" checks). */
FZ_FN void *fz_copy(fz *f, const void *src, size_t n)
{
    void *p = fz_alloc(f, n);
    if (n) memcpy(p, src, n);
    return p;
}

/* Fill x[0..n) with floats. Modes: every value from the input; a random normal cloud of
   input-chosen centre and scale; a constant; log-probability-like values in [-12, 0];
   then a few input-chosen positions overwritten with input-chosen floats. */
FZ_FN void fz_fill_floats(fz *f, float *x, int64_t n)
{
    unsigned mode = fz_u8(f) % 5, k, n_over;
    int64_t i;
    float centre, scale;
    fz_reseed(f);
    switch (mode) {
    case 0:
        for (i = 0; i < n; ++i) x[i] = fz_float(f);
        break;
    case 1:
        centre = fz_float(f);
        scale = fz_float(f);
        for (i = 0; i < n; ++i) x[i] = centre + scale * (float)fz_gauss(f);
        break;
    case 2:
        centre = fz_float(f);
        for (i = 0; i < n; ++i) x[i] = centre;
        break;
    default:
        for (i = 0; i < n; ++i) x[i] = (float)(-12.0 * fz_unit(f));
        break;
    }
    n_over = fz_u8(f) % 4;
    for (k = 0; k < n_over && n > 0; ++k) x[fz_int(f, 0, n - 1)] = fz_float(f);
}

FZ_FN float *fz_floats(fz *f, int64_t n)
{
    float *x = (float *)fz_alloc(f, (size_t)n * sizeof(float));
    fz_fill_floats(f, x, n);
    return x;
}

/* An output buffer of n bytes holding a recognisable pattern; with `before`, also a copy
   of it there (an error must leave the buffer as it was). */
FZ_FN void *fz_out_bytes(fz *f, size_t n, void **before)
{
    void *x = fz_alloc(f, n);
    if (n) memset(x, 0xA5, n);
    if (before) *before = fz_copy(f, x, n);
    return x;
}

FZ_FN float *fz_out_floats(fz *f, int64_t n) { return (float *)fz_out_bytes(f, (size_t)n * sizeof(float), NULL); }

/* Output floats or mask bytes, and their copy in *before. */
FZ_FN float *fz_out_floats_kept(fz *f, int64_t n, float **before)
{
    void *copy;
    float *x = (float *)fz_out_bytes(f, (size_t)n * sizeof(float), &copy);
    *before = (float *)copy;
    return x;
}

FZ_FN uint8_t *fz_out_mask_kept(fz *f, int64_t n, uint8_t **before)
{
    void *copy;
    uint8_t *x = (uint8_t *)fz_out_bytes(f, (size_t)n, &copy);
    *before = (uint8_t *)copy;
    return x;
}

/* ------------------------------------------------------------ sequence layouts */

/* A vppo_seqs with its deserved errors. Per-token arrays have n_alloc entries: offsets[B]
   plus an input-chosen slack of 0 to 2 (0 makes one past the end an ASan error). When
   the layout is broken on purpose (`bad` holds SIZE), arrays are one entry long: the
   call must fail before it reads them. */
typedef struct fz_seqs {
    vppo_seqs s;
    int64_t *offsets;
    uint8_t *mask;
    int64_t n_alloc;   /* entries of every per-token array */
    fz_reasons bad;    /* FZ_BIT(VPPO_ERR_SIZE) when the layout is invalid */
} fz_seqs;

FZ_FN void fz_make_seqs(fz *f, fz_seqs *q, int64_t max_seqs, int64_t max_len)
{
    const int64_t B = fz_int(f, 0, max_seqs);
    const unsigned corrupt = fz_u8(f) % 24, mask_mode = fz_u8(f) % 5;
    int64_t b, t, hi = 0;
    memset(q, 0, sizeof *q);
    q->offsets = (int64_t *)fz_alloc(f, (size_t)(B + 1) * sizeof(int64_t));
    q->offsets[0] = fz_int(f, 0, 3);
    for (b = 0; b < B; ++b) {
        unsigned shape = fz_u8(f) % 8;    /* empty, short and long sequences */
        int64_t len = shape == 0 ? 0 : shape < 6 ? fz_int(f, 1, 12) : fz_int(f, 1, max_len);
        q->offsets[b + 1] = q->offsets[b] + len;
    }
    q->s.n_seqs = B;
    q->s.offsets = q->offsets;
    switch (corrupt) {
    case 0:                                              /* offsets[0] < 0 */
        q->offsets[0] = -fz_int(f, 1, 1000);
        q->bad = FZ_BIT(VPPO_ERR_SIZE);
        break;
    case 1:                                              /* one offset decreases */
        if (B > 0) {
            b = fz_int(f, 1, B);
            q->offsets[b] = q->offsets[b - 1] - fz_int(f, 1, 5);
            q->bad = FZ_BIT(VPPO_ERR_SIZE);
        }
        break;
    case 2:                                              /* the end is past any buffer */
        if (B > 0) {
            q->offsets[B] = fz_u8(f) & 1 ? INT64_MAX : (int64_t)(PTRDIFF_MAX / 4) + 1;
            q->bad = FZ_BIT(VPPO_ERR_SIZE);
        }
        break;
    case 3:                                              /* negative count */
        q->s.n_seqs = -fz_int(f, 1, 3);
        q->bad = FZ_BIT(VPPO_ERR_SIZE);
        break;
    default: break;
    }
    if (q->bad) {
        q->n_alloc = 1;
        q->s.mask = NULL;
        return;
    }
    hi = q->offsets[B];
    q->n_alloc = hi + fz_int(f, 0, 2);
    if (mask_mode == 0) return;                          /* no mask: every position counts */
    q->mask = (uint8_t *)fz_alloc(f, (size_t)hi);        /* exactly offsets[B] bytes */
    fz_reseed(f);
    for (t = 0; t < hi; ++t) {
        switch (mask_mode) {
        case 1:  q->mask[t] = 1; break;
        case 2:  q->mask[t] = (uint8_t)(fz_next(f) >> 63); break;                  /* half */
        case 3:  q->mask[t] = (uint8_t)((fz_next(f) & 7) == 0 ? 0 : 0x80); break;  /* nonzero != 1 */
        default: q->mask[t] = (uint8_t)fz_u8(f); break;
        }
    }
    q->s.mask = q->mask;
}

FZ_FN int fz_valid(const fz_seqs *q, int64_t t) { return !q->s.mask || q->s.mask[t] != 0; }
FZ_FN int64_t fz_begin(const fz_seqs *q) { return q->offsets[0]; }
FZ_FN int64_t fz_end(const fz_seqs *q) { return q->offsets[q->s.n_seqs]; }

FZ_FN int64_t fz_count(const fz_seqs *q, int64_t b)
{
    int64_t t, n = 0;
    for (t = q->offsets[b]; t < q->offsets[b + 1]; ++t) n += fz_valid(q, t);
    return n;
}

/* VPPO_ERR_NONFINITE deserved when x is not finite (or, allow_neg_inf, -inf) at a valid
   position. */
FZ_FN fz_reasons fz_values_reason(const fz_seqs *q, const float *x, int allow_neg_inf)
{
    int64_t t;
    for (t = fz_begin(q); t < fz_end(q); ++t)
        if (fz_valid(q, t) && !fz_finite(x[t]) && !(allow_neg_inf && x[t] == -HUGE_VALF))
            return FZ_BIT(VPPO_ERR_NONFINITE);
    return 0;
}

/* A per-token output after VPPO_OK: entries outside [offsets[0], offsets[B]) are as they
   were, and invalid positions inside hold 0. */
FZ_FN void fz_check_per_token(const fz_seqs *q, const void *out, const void *before, size_t es)
{
    int64_t t;
    const uint8_t *o = (const uint8_t *)out, *w = (const uint8_t *)before;
    static const uint8_t zero[8] = { 0 };
    for (t = 0; t < q->n_alloc; ++t) {
        if (t < fz_begin(q) || t >= fz_end(q)) FZ_ASSERT(memcmp(o + t * es, w + t * es, es) == 0);
        else if (!fz_valid(q, t)) FZ_ASSERT(memcmp(o + t * es, zero, es) == 0);
    }
}

/* After a per-token call: the status is one that `why` (or `may`) allows; after an error
   the output is as it was (validated before anything is written), after VPPO_OK
   fz_check_per_token holds. Returns whether the call succeeded. */
FZ_FN int fz_per_token_outcome(const fz_seqs *q, fz_reasons why, fz_reasons may, vppo_status st,
                               const void *out, const void *before, size_t es)
{
    FZ_EXPECT2(why, may, st);
    if (st != VPPO_OK) {
        FZ_ASSERT(memcmp(out, before, (size_t)q->n_alloc * es) == 0);
        return 0;
    }
    fz_check_per_token(q, out, before, es);
    return 1;
}

/* The start that the per-token harnesses share: a layout of at most max_seqs sequences
   of max_len positions, then one input of floats over it (in this order: the bytes of the
   input are consumed as the corpus was made). *why starts as the reasons the layout
   deserves, plus VPPO_ERR_NULL when null_sel < n_null (the harness then passes NULL for
   the pointer null_sel picks). */
FZ_FN float *fz_seq_input(fz *f, fz_seqs *q, int64_t max_seqs, int64_t max_len, unsigned null_sel,
                          unsigned n_null, fz_reasons *why)
{
    float *x;
    fz_make_seqs(f, q, max_seqs, max_len);
    x = fz_floats(f, q->n_alloc);
    *why = q->bad;
    if (null_sel < n_null) *why |= FZ_BIT(VPPO_ERR_NULL);
    return x;
}

/* ------------------------------------------------------------ logits matrices */

/* FZ_DEBUG=1 in the environment: harnesses describe what they are about to assert. */
FZ_FN int fz_debug(void)
{
    static int on = -1;
    if (on < 0) on = getenv("FZ_DEBUG") != NULL;
    return on;
}


/* Independent decoders (tests/test_util.c). */
FZ_FN double fz_decode(vppo_dtype dt, const void *data, int64_t i)
{
    if (dt == VPPO_F32) return ((const float *)data)[i];
    if (dt == VPPO_BF16) return test_bf16_value(((const uint16_t *)data)[i]);
    return test_f16_value(((const uint16_t *)data)[i]);
}

typedef struct fz_mat {
    vppo_logits x;
    size_t bytes;            /* of the allocation */
    fz_reasons bad;          /* argument errors the matrix deserves on its own */
    int64_t alloc_elems;
} fz_mat;

FZ_FN size_t fz_dtype_size(vppo_dtype dt) { return dt == VPPO_F32 ? 4 : 2; }

/* Geometry and type from the input, with the errors they deserve. */
FZ_FN void fz_make_logits_shape(fz *f, fz_mat *m, int64_t n_rows, int64_t vocab)
{
    static const int64_t vocabs[] = { 1, 2, 3, 5, 15, 16, 17, 31, 32, 33, 100, 255, 256, 257, 511, 512, 513, 700,
                                      1024, 1025 };
    static const float temps[] = { 1.0f, 0.7f, 1.3f, 0.5f, 2.0f, 1e-3f, 100.0f, 0.9f };
    const unsigned dsel = fz_u8(f) % 20, tsel = fz_u8(f);
    memset(m, 0, sizeof *m);
    m->x.dtype = dsel < 7 ? VPPO_F32 : dsel < 13 ? VPPO_BF16 : dsel < 19 ? VPPO_F16 : (vppo_dtype)(fz_u8(f) & 1 ? 3 : -1);
    if ((int)m->x.dtype < 0 || (int)m->x.dtype > 2) m->bad |= FZ_BIT(VPPO_ERR_PARAM);
    m->x.n_rows = n_rows >= 0 ? n_rows : fz_int(f, 0, 5);
    if (vocab > 0) m->x.vocab = vocab;
    else {
        unsigned v = fz_u8(f);
        m->x.vocab = v < 128 ? vocabs[v % (sizeof vocabs / sizeof vocabs[0])]
                   : v < 250 ? fz_int(f, 1, 1100) : -fz_int(f, 0, 2);
    }
    m->x.row_stride = m->x.vocab + fz_int(f, 0, 9);
    switch (fz_u8(f) % 40) {                             /* broken geometry, now and then */
    case 0: m->x.row_stride = m->x.vocab - fz_int(f, 1, 3); break;
    case 1: if (m->x.n_rows == 0) m->x.n_rows = 1; m->x.row_stride = INT64_MAX / 2; break;
    case 2: m->x.n_rows = -fz_int(f, 1, 4); break;
    case 3: m->x.n_rows = INT64_MAX / 3; break;
    default: break;
    }
    if (m->x.n_rows < 0 || m->x.vocab < 1 || m->x.row_stride < m->x.vocab) m->bad |= FZ_BIT(VPPO_ERR_SIZE);
    else if (m->x.n_rows > 0 && (double)m->x.row_stride * (double)m->x.n_rows * 4.0 > (double)PTRDIFF_MAX)
        m->bad |= FZ_BIT(VPPO_ERR_SIZE);
    m->x.temperature = tsel < 180 ? temps[tsel % 8] : fz_float(f);
    if (!(m->x.temperature > 0.0f) || !fz_finite(m->x.temperature)) m->bad |= FZ_BIT(VPPO_ERR_PARAM);
}

/* Allocates and fills the matrix: exactly (n_rows - 1) * row_stride + vocab elements
   (one element when the geometry is broken: the call must not read it). The stride gaps
   hold NaN, which every call must ignore. */
FZ_FN void fz_fill_logits(fz *f, fz_mat *m)
{
    const int geometry_ok = !(m->bad & FZ_BIT(VPPO_ERR_SIZE));
    const int64_t n = m->x.n_rows, V = m->x.vocab, S = m->x.row_stride;
    const vppo_dtype dt = (int)m->x.dtype >= 0 && (int)m->x.dtype <= 2 ? m->x.dtype : VPPO_F32;
    const size_t es = fz_dtype_size(dt);
    static const float scales[] = { 1.0f, 3.0f, 0.001f, 30.0f, 1e4f, 0.0f };
    const float scale = scales[fz_u8(f) % 6], centre = fz_u8(f) < 200 ? 0.0f : fz_float(f);
    const double p_masked = (double)(fz_u8(f) % 5) * 0.23;   /* share of -inf entries */
    int64_t r, j, k, n_over;
    m->alloc_elems = geometry_ok ? (n > 0 ? (n - 1) * S + V : 0) : 1;
    m->bytes = (size_t)m->alloc_elems * es;
    m->x.data = fz_alloc(f, m->bytes);
    fz_reseed(f);
    for (r = 0; r < (geometry_ok ? n : 0); ++r)
        for (j = 0; j < (r == n - 1 ? V : S); ++j) {
            float z = j >= V ? NAN : fz_unit(f) < p_masked ? -HUGE_VALF : centre + scale * (float)fz_gauss(f);
            const int64_t at = r * S + j;
            if (dt == VPPO_F32) ((float *)m->x.data)[at] = z;
            else if (dt == VPPO_BF16) ((uint16_t *)m->x.data)[at] = test_f32_to_bf16_trunc(z);
            else ((uint16_t *)m->x.data)[at] = test_f32_to_f16_trunc(z);
        }
    if (!geometry_ok || m->alloc_elems == 0) return;
    n_over = fz_u8(f) % 6;                               /* a few entries from the input */
    for (k = 0; k < n_over; ++k) {
        const int64_t at = fz_int(f, 0, m->alloc_elems - 1);
        if (dt == VPPO_F32) ((float *)m->x.data)[at] = fz_float(f);
        else ((uint16_t *)m->x.data)[at] = (uint16_t)fz_bits(f, 2);
    }
    if (fz_u8(f) % 12 == 0 && n > 0) {                   /* a row of only -inf */
        r = fz_int(f, 0, n - 1);
        for (j = 0; j < V; ++j) {
            if (dt == VPPO_F32) ((float *)m->x.data)[r * S + j] = -HUGE_VALF;
            else ((uint16_t *)m->x.data)[r * S + j] = dt == VPPO_BF16 ? 0xff80u : 0xfc00u;
        }
    }
}

FZ_FN void fz_dump_row(const char *name, const fz_mat *m, int64_t r)
{
    int64_t j;
    fprintf(stderr, "%s: isa %s dtype %d rows %lld vocab %lld stride %lld T %.9g row %lld:", name,
            vppo_isa_name(vppo_isa_active()), (int)m->x.dtype, (long long)m->x.n_rows, (long long)m->x.vocab,
            (long long)m->x.row_stride, (double)m->x.temperature, (long long)r);
    for (j = 0; j < m->x.vocab; ++j) fprintf(stderr, " %.9g", fz_decode(m->x.dtype, m->x.data, r * m->x.row_stride + j));
    fputc('\n', stderr);
}

/* What row r deserves: NONFINITE for a NaN or +inf entry, PARAM when every entry is -inf. */
FZ_FN fz_reasons fz_row_reason(const fz_mat *m, int64_t r)
{
    int64_t j;
    int any = 0;
    for (j = 0; j < m->x.vocab; ++j) {
        const double z = fz_decode(m->x.dtype, m->x.data, r * m->x.row_stride + j);
        if (!(z < HUGE_VAL)) return FZ_BIT(VPPO_ERR_NONFINITE);
        if (z > -HUGE_VAL) any = 1;
    }
    return any ? 0 : FZ_BIT(VPPO_ERR_PARAM);
}

/* u = z / T of row r in double, and its log-softmax (tests/test_util.c). */
FZ_FN double fz_row_logsoftmax(const fz_mat *m, int64_t r, double *u, double *logp)
{
    int64_t j;
    for (j = 0; j < m->x.vocab; ++j)
        u[j] = fz_decode(m->x.dtype, m->x.data, r * m->x.row_stride + j) / (double)m->x.temperature;
    return ref_log_softmax(u, m->x.vocab, logp);
}

/* Is the row ordinary enough that docs/spec.md §12 accuracy must hold (times a margin)? Finite
   entries of moderate size, a moderate temperature. Outside it only sanity is checked. */
FZ_FN int fz_row_tame(const fz_mat *m, int64_t r)
{
    int64_t j;
    if (!(m->x.temperature >= 0.01f && m->x.temperature <= 100.0f)) return 0;
    for (j = 0; j < m->x.vocab; ++j) {
        const double z = fz_decode(m->x.dtype, m->x.data, r * m->x.row_stride + j);
        if (z != -HUGE_VAL && !(fabs(z) <= 1e4)) return 0;
    }
    return 1;
}

FZ_FN int fz_close(double ref, double got, double abs_tol, double rel_tol)
{
    if (isinf(ref) || isinf(got)) return ref == got;
    return fabs(got - ref) <= abs_tol + rel_tol * fabs(ref);
}

/* Picks the ISA for this input (any the machine runs; the scalar path otherwise). */
FZ_FN void fz_pick_isa(fz *f)
{
    if (vppo_isa_select((vppo_isa)fz_int(f, 0, 4)) != VPPO_OK) FZ_ASSERT(vppo_isa_select(VPPO_ISA_SCALAR) == VPPO_OK);
}

/* A harness's entry point in one call: LLVMFuzzerTestOneInput returns
   fz_dispatch(data, size, pick_isa, runs, n). The input picks the ISA first (when
   pick_isa), then one of the n runs, which gets the rest of it. */
typedef void (*fz_run)(fz *f);
FZ_FN int fz_dispatch(const uint8_t *data, size_t size, int pick_isa, const fz_run *runs, unsigned n)
{
    fz f;
    fz_init(&f, data, size);
    if (pick_isa) fz_pick_isa(&f);
    runs[fz_u8(&f) % n](&f);
    fz_free_all(&f);
    return 0;
}

#endif
