/* tests/test_perturb.c - docs/spec.md §3: perturbations, pixel by pixel against the definition.
   The hash is re-implemented from the specification's formula (test_splitmix64 in
   tests/test_util.c), so a slip in either copy shows. */
#include "test.h"

/* A W x H x C image with `pad` extra bytes per row, random content, and a copy. */
typedef struct test_image { vppo_image img; uint8_t *orig; size_t bytes; } test_image;

static test_image image_make(rng *r, int W, int H, int C, int pad)
{
    test_image t;
    size_t i;
    t.img.width = W; t.img.height = H; t.img.channels = C;
    t.img.row_stride = (int64_t)W * C + pad;
    t.bytes = (size_t)(t.img.row_stride * H);
    t.img.pixels = (uint8_t *)malloc(t.bytes ? t.bytes : 1);
    t.orig = (uint8_t *)malloc(t.bytes ? t.bytes : 1);
    for (i = 0; i < t.bytes; ++i) t.img.pixels[i] = (uint8_t)(1 + rng_next(r) % 255);   /* never 0 */
    memcpy(t.orig, t.img.pixels, t.bytes);
    return t;
}

static void image_free(test_image *t) { free(t->img.pixels); free(t->orig); }

/* Row padding bytes are never touched. */
static int padding_untouched(const test_image *t)
{
    int64_t y, i;
    for (y = 0; y < t->img.height; ++y)
        for (i = (int64_t)t->img.width * t->img.channels; i < t->img.row_stride; ++i)
            if (t->img.pixels[y * t->img.row_stride + i] != t->orig[y * t->img.row_stride + i]) return 0;
    return 1;
}

void hash64_is_splitmix64(void)
{
    rng r = rng_make(1);
    int i;
    /* the first two outputs of the splitmix64 generator seeded with 0, which are the
       finaliser applied to 0 and to the golden-ratio increment (computed independently
       with Python integers) */
    CHECK(vppo_hash64(0) == 0xe220a8397b1dcdafull);
    CHECK(vppo_hash64(0x9E3779B97F4A7C15ull) == 0x6e789e6aa1b965f4ull);
    for (i = 0; i < 1000; ++i) {
        uint64_t x = rng_next(&r);
        ++test_checks;
        if (vppo_hash64(x) != test_splitmix64(x)) { test_fail(__FILE__, __LINE__, "hash64 differs at %d", i); break; }
    }
}

void uniform_is_top_24_bits_of_the_hash(void)
{
    rng r = rng_make(2);
    int i, bad = 0;
    double lo = 1, hi = 0;
    for (i = 0; i < 100000; ++i) {
        uint64_t seed = rng_next(&r), idx = (uint64_t)i;
        double u = vppo_uniform(seed, idx);
        if (u != test_uniform(seed, idx)) ++bad;
        if (u < lo) lo = u;
        if (u > hi) hi = u;
        if (u * 16777216.0 != floor(u * 16777216.0)) ++bad;   /* a multiple of 2^-24 */
    }
    CHECK_EQ_INT(0, bad);
    CHECK(lo >= 0.0 && lo < 1e-3 && hi < 1.0 && hi > 0.999);
}

static void check_blackening(int W, int H, int C, int pad, int patch, float prob, uint64_t seed)
{
    rng r = rng_make(seed);
    test_image t = image_make(&r, W, H, C, pad);
    int64_t x, y, c, cols = (W + patch - 1) / patch, wrong = 0, black = 0;
    CHECK_STATUS(VPPO_OK, vppo_perturb_patch_blackening(&t.img, patch, prob, seed));
    for (y = 0; y < H; ++y)
        for (x = 0; x < W; ++x) {
            uint64_t i = (uint64_t)((y / patch) * cols + x / patch);
            int blackened = test_uniform(seed, i) < (double)prob;
            black += blackened;
            for (c = 0; c < C; ++c) {
                uint8_t got = t.img.pixels[y * t.img.row_stride + x * C + c];
                uint8_t want = blackened ? 0 : t.orig[y * t.img.row_stride + x * C + c];
                wrong += got != want;
            }
        }
    CHECK_EQ_INT(0, wrong);
    CHECK(padding_untouched(&t));
    if (prob == 0.5f && W * H > 1000) CHECK(black > 0 && black < (int64_t)W * H);   /* both kinds occur */
    image_free(&t);
}

void patch_blackening_matches_the_hash_pixel_by_pixel(void)
{
    check_blackening(448, 336, 3, 0, 14, 0.5f, 11);      /* a Qwen2.5-VL sized image */
    check_blackening(45, 31, 3, 7, 14, 0.5f, 12);        /* clipped edge patches, padded rows */
    check_blackening(45, 31, 4, 0, 14, 0.3f, 13);        /* RGBA: alpha blackened too */
    check_blackening(17, 9, 1, 3, 5, 0.7f, 14);          /* gray */
    check_blackening(1, 1, 3, 0, 14, 0.5f, 15);
    check_blackening(100, 3, 3, 0, 1, 0.5f, 16);         /* patch 1 = per pixel */
}

void patch_blackening_prob_0_and_1(void)
{
    rng r = rng_make(3);
    test_image t = image_make(&r, 30, 20, 3, 2);
    size_t i, zeros = 0;
    CHECK_STATUS(VPPO_OK, vppo_perturb_patch_blackening(&t.img, 14, 0.0f, 5));
    CHECK(memcmp(t.img.pixels, t.orig, t.bytes) == 0);
    CHECK_STATUS(VPPO_OK, vppo_perturb_patch_blackening(&t.img, 14, 1.0f, 5));
    for (i = 0; i < t.bytes; ++i) zeros += t.img.pixels[i] == 0;
    CHECK_EQ_INT(30 * 20 * 3, (int64_t)zeros);     /* every pixel, no padding byte */
    CHECK(padding_untouched(&t));
    image_free(&t);
}

void patch_blackening_respects_row_stride(void)
{
    check_blackening(29, 29, 3, 13, 14, 0.5f, 21);
    check_blackening(28, 28, 3, 1, 14, 0.5f, 22);    /* exact multiple of the patch */
}

static void check_noise(int W, int H, int C, int pad, float mean, float std, uint64_t seed)
{
    rng r = rng_make(seed);
    test_image t = image_make(&r, W, H, C, pad);
    int64_t x, y, c, wrong = 0, changed = 0;
    CHECK_STATUS(VPPO_OK, vppo_perturb_gaussian_noise(&t.img, mean, std, seed));
    for (y = 0; y < H; ++y)
        for (x = 0; x < W; ++x)
            for (c = 0; c < C; ++c) {
                int64_t at = y * t.img.row_stride + x * C + c;
                uint8_t want = t.orig[at];
                if (!(C == 4 && c == 3)) {
                    uint64_t j = (uint64_t)((y * W + x) * C + c);
                    double u1 = test_uniform(seed, 2 * j), u2 = test_uniform(seed, 2 * j + 1);
                    double n = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * 3.14159265358979323846 * u2);
                    double shifted = (double)t.orig[at] + (double)mean;
                    double noise = (double)std * n;
                    double v = shifted + noise;
                    v = v < 0 ? 0 : (v > 255 ? 255 : v);
                    want = (uint8_t)v;
                }
                wrong += t.img.pixels[at] != want;
                changed += t.img.pixels[at] != t.orig[at];
            }
    CHECK_EQ_INT(0, wrong);
    if (std > 0) CHECK(changed > 0);
    CHECK(padding_untouched(&t));
    image_free(&t);
}

void gaussian_noise_matches_box_muller_pixel_by_pixel(void)
{
    check_noise(64, 48, 3, 0, 0.0f, 189.0f, 31);    /* paper's std */
    check_noise(33, 17, 3, 5, 10.0f, 20.0f, 32);
    check_noise(20, 20, 1, 1, -5.0f, 3.5f, 33);
    check_noise(10, 10, 3, 0, 0.0f, 0.0f, 34);      /* std 0: unchanged (truncation of an integer) */
}

void gaussian_noise_keeps_alpha(void)
{
    check_noise(25, 13, 4, 3, 0.0f, 50.0f, 41);
}

void fill_sets_every_channel(void)
{
    rng r = rng_make(4);
    test_image t = image_make(&r, 23, 11, 4, 9);
    int64_t y, i, wrong = 0;
    CHECK_STATUS(VPPO_OK, vppo_perturb_fill(&t.img, 128));
    for (y = 0; y < 11; ++y)
        for (i = 0; i < 23 * 4; ++i) wrong += t.img.pixels[y * t.img.row_stride + i] != 128;
    CHECK_EQ_INT(0, wrong);
    CHECK(padding_untouched(&t));
    image_free(&t);
}

/* Direct Gaussian blur in double: every tap from -ceil(3 sigma) to +ceil(3 sigma) with the
   index clamped to the image (no folding), horizontal then vertical, rounded. */
static void ref_blur(const uint8_t *in, int64_t stride, int W, int H, int C, double sigma, uint8_t *out)
{
    int R = (int)ceil(3 * sigma), x, y, c, k;
    double *w = (double *)malloc((size_t)(2 * R + 1) * sizeof(double)), total = 0;
    double *mid = (double *)malloc((size_t)W * H * C * sizeof(double));
    for (k = -R; k <= R; ++k) total += w[k + R] = exp(-(double)k * k / (2 * sigma * sigma));
    for (k = 0; k <= 2 * R; ++k) w[k] /= total;
    for (y = 0; y < H; ++y) for (x = 0; x < W; ++x) for (c = 0; c < C; ++c) {
        double acc = 0;
        for (k = -R; k <= R; ++k) {
            int xx = x + k < 0 ? 0 : (x + k >= W ? W - 1 : x + k);
            acc += w[k + R] * in[y * stride + xx * C + c];
        }
        mid[(y * W + x) * C + c] = acc;
    }
    for (y = 0; y < H; ++y) for (x = 0; x < W; ++x) for (c = 0; c < C; ++c) {
        double acc = 0;
        for (k = -R; k <= R; ++k) {
            int yy = y + k < 0 ? 0 : (y + k >= H ? H - 1 : y + k);
            acc += w[k + R] * mid[(yy * W + x) * C + c];
        }
        out[y * stride + x * C + c] = (uint8_t)floor(acc + 0.5);
    }
    free(w); free(mid);
}

static void check_blur(int W, int H, int C, int pad, float radius, uint64_t seed)
{
    rng r = rng_make(seed);
    test_image t = image_make(&r, W, H, C, pad);
    size_t need = vppo_blur_workspace(W, H, C);
    unsigned char *work = (unsigned char *)malloc(need + 3);
    uint8_t *want = (uint8_t *)malloc(t.bytes);
    int64_t x, y, c, off_by_more = 0, off_by_one = 0, alpha_changed = 0;
    memcpy(want, t.orig, t.bytes);
    ref_blur(t.orig, t.img.row_stride, W, H, C, radius, want);
    /* an odd work pointer: any alignment is accepted */
    CHECK_STATUS(VPPO_OK, vppo_perturb_gaussian_blur(&t.img, radius, work + 3, need));
    for (y = 0; y < H; ++y) for (x = 0; x < W; ++x) for (c = 0; c < C; ++c) {
        int64_t at = y * t.img.row_stride + x * C + c;
        if (C == 4 && c == 3) { alpha_changed += t.img.pixels[at] != t.orig[at]; continue; }
        int d = abs((int)t.img.pixels[at] - (int)want[at]);
        off_by_more += d > 1;
        off_by_one += d == 1;
    }
    CHECK_EQ_INT(0, off_by_more);            /* docs/spec.md §12: blur within +-1 per byte */
    CHECK(off_by_one * 100 <= (int64_t)W * H * C);   /* and rarely even that */
    CHECK_EQ_INT(0, alpha_changed);
    CHECK(padding_untouched(&t));
    free(work); free(want); image_free(&t);
}

void blur_matches_double_reference_within_one(void)
{
    check_blur(64, 48, 3, 0, 6.0f, 51);     /* paper's radius */
    check_blur(37, 29, 3, 5, 2.5f, 52);
    check_blur(20, 30, 4, 1, 1.0f, 53);
    check_blur(16, 16, 1, 0, 0.4f, 54);
}

void blur_preserves_constant_images_and_radius_0(void)
{
    rng r = rng_make(5);
    test_image t = image_make(&r, 30, 20, 3, 4);
    size_t need = vppo_blur_workspace(30, 20, 3), i;
    void *work = malloc(need);
    int64_t y, x, wrong = 0;
    CHECK_STATUS(VPPO_OK, vppo_perturb_gaussian_blur(&t.img, 0.0f, work, need));
    CHECK(memcmp(t.img.pixels, t.orig, t.bytes) == 0);
    for (y = 0; y < 20; ++y) for (x = 0; x < 30 * 3; ++x) t.img.pixels[y * t.img.row_stride + x] = 77;
    CHECK_STATUS(VPPO_OK, vppo_perturb_gaussian_blur(&t.img, 6.0f, work, need));
    for (y = 0; y < 20; ++y) for (x = 0; x < 30 * 3; ++x) wrong += t.img.pixels[y * t.img.row_stride + x] != 77;
    CHECK_EQ_INT(0, wrong);     /* weights sum to 1 */
    for (i = 0; i < 4; ++i) CHECK(t.img.pixels[30 * 3 + i] == t.orig[30 * 3 + i]);
    free(work); image_free(&t);
}

void blur_handles_radius_larger_than_image(void)
{
    check_blur(8, 5, 3, 2, 20.0f, 61);     /* taps far beyond the image fold onto the edges */
    check_blur(1, 7, 3, 0, 3.0f, 62);
    check_blur(7, 1, 1, 0, 3.0f, 63);
}

void patch_rows_replace_rows_by_the_hash(void)
{
    rng r = rng_make(6);
    const int64_t n_rows = 300, len = 13, stride = 16;
    float *rows = floats_new(n_rows * stride, 0), *orig = floats_new(n_rows * stride, 0), fill[13];
    int64_t i, j, wrong = 0, replaced = 0;
    int pass;
    for (j = 0; j < len; ++j) fill[j] = (float)(j - 6) * 0.25f;
    for (pass = 0; pass < 2; ++pass) {
        const float *f = pass ? fill : NULL;
        for (i = 0; i < n_rows * stride; ++i) orig[i] = rows[i] = (float)rng_normal(&r);
        CHECK_STATUS(VPPO_OK, vppo_perturb_patch_rows(rows, n_rows, len, stride, 0.5f, f, 99));
        for (i = 0; i < n_rows; ++i) {
            int rep = test_uniform(99, (uint64_t)i) < 0.5;
            replaced += rep;
            for (j = 0; j < stride; ++j) {
                float want = (j < len && rep) ? (f ? f[j] : 0.0f) : orig[i * stride + j];
                wrong += memcmp(&want, &rows[i * stride + j], sizeof want) != 0;
            }
        }
    }
    CHECK_EQ_INT(0, wrong);
    CHECK(replaced > 200 && replaced < 400);
    free(rows); free(orig);
}

void perturbations_validate_arguments(void)
{
    uint8_t px[12 * 10 * 3];
    vppo_image img;
    float rows[8], nanfill[2];
    unsigned char work[64];
    img.pixels = px; img.width = 12; img.height = 10; img.channels = 3; img.row_stride = 36;
    memset(px, 9, sizeof px);
    CHECK_STATUS(VPPO_ERR_NULL, vppo_perturb_patch_blackening(NULL, 14, 0.5f, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_patch_blackening(&img, 0, 0.5f, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_patch_blackening(&img, -3, 0.5f, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_patch_blackening(&img, 14, 1.5f, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_patch_blackening(&img, 14, -0.1f, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_patch_blackening(&img, 14, NAN, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_gaussian_noise(&img, 0.0f, -1.0f, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_gaussian_noise(&img, NAN, 1.0f, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_gaussian_noise(&img, 0.0f, INFINITY, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_gaussian_blur(&img, -1.0f, work, sizeof work));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_gaussian_blur(&img, NAN, work, sizeof work));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_gaussian_blur(&img, 2e5f, work, sizeof work));
    CHECK_STATUS(VPPO_ERR_WORKSPACE, vppo_perturb_gaussian_blur(&img, 2.0f, work, sizeof work));
    CHECK_STATUS(VPPO_ERR_NULL, vppo_perturb_gaussian_blur(&img, 2.0f, NULL, 100000));
    CHECK(vppo_blur_workspace(-1, 4, 3) == 0 && vppo_blur_workspace(4, 4, 0) == 0);
    CHECK(vppo_blur_workspace(12, 10, 3) >= 12 * 10 * 3 * sizeof(float));
    img.row_stride = 35;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_perturb_fill(&img, 0));
    img.row_stride = 36; img.width = -1;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_perturb_fill(&img, 0));
    img.width = 12; img.channels = 0;
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_perturb_gaussian_noise(&img, 0.0f, 1.0f, 1));
    img.channels = 3; img.pixels = NULL;
    CHECK_STATUS(VPPO_ERR_NULL, vppo_perturb_fill(&img, 0));
    { size_t i; int same = 1; for (i = 0; i < sizeof px; ++i) same &= px[i] == 9; CHECK(same); }
    /* an empty image is fine */
    img.pixels = px; img.width = 0; img.height = 0; img.row_stride = 0;
    CHECK_STATUS(VPPO_OK, vppo_perturb_patch_blackening(&img, 14, 0.5f, 1));
    CHECK_STATUS(VPPO_OK, vppo_perturb_gaussian_blur(&img, 3.0f, work, sizeof work));
    /* patch rows */
    nanfill[0] = 1.0f; nanfill[1] = NAN;
    CHECK_STATUS(VPPO_ERR_NULL, vppo_perturb_patch_rows(NULL, 4, 2, 2, 0.5f, NULL, 1));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_perturb_patch_rows(rows, 4, 3, 2, 0.5f, NULL, 1));
    CHECK_STATUS(VPPO_ERR_SIZE, vppo_perturb_patch_rows(rows, -4, 2, 2, 0.5f, NULL, 1));
    CHECK_STATUS(VPPO_ERR_PARAM, vppo_perturb_patch_rows(rows, 4, 2, 2, 2.0f, NULL, 1));
    CHECK_STATUS(VPPO_ERR_NONFINITE, vppo_perturb_patch_rows(rows, 4, 2, 2, 0.5f, nanfill, 1));
    CHECK_STATUS(VPPO_OK, vppo_perturb_patch_rows(rows, 0, 2, 2, 0.5f, NULL, 1));
}
