/* examples/perturb.c - the image perturbations of VPPO (the I' of the paper), on a real image.

   VPPO measures how much each generated token depends on the image by running the
   rollout policy a second time on a perturbed image I'. The paper's default is random
   patch blackening (14x14 patches, probability 0.5); its ablations use Gaussian noise
   (std 189), a constant fill (128) and a Gaussian blur (radius 6). This program applies
   each of them (vppo_perturb_*, docs/spec.md §3) to one image and writes the results, plus one
   strip image: original | blackening | noise | fill | blur | patch rows.

       perturb [INPUT] [--out DIR] [--strip FILE] [--size N] [--seed S] [--ppm]

     INPUT     a binary PPM (P6, 8-bit) or, when built with libpng (-DHAVE_PNG -lpng), a
               PNG. Without INPUT a synthetic N x N test image is drawn (shapes, text-like
               stripes, gradients; N = 224 by default, the 16 x 16 patch grid of a 224 px
               vision-encoder input).
     --out     directory for original, blackening, noise, fill, blur, patch_rows
               (.png, or .ppm without libpng or with --ppm); default perturb_out
     --strip   path of the strip image; default DIR/strip.png (or .ppm)
     --seed    the perturbation seed (default 2510); every random decision is
               vppo_uniform(seed, index), the same on any machine and on the GPU

   The "patch rows" panel shows vppo_perturb_patch_rows, the call for inputs that are
   already patchified (a vision tower's pixel_values: one row per patch, normalised
   floats). The image is cut into 14 x 14 patches in raster order, each flattened into a
   row of 14*14*3 floats normalised with the CLIP mean and std (as Qwen2.5-VL does); the
   rows are "blackened" by replacing them with the normalised value of a black pixel
   (the `fill` argument: 0 would be the mean colour, not black); then the rows are put
   back into an image. Because the decision for row i is vppo_uniform(seed, i) < prob
   and patch i of vppo_perturb_patch_blackening is the same raster index, the two agree
   byte for byte; the program checks that and exits 1 if not. (Qwen2.5-VL itself orders
   its rows by 2x2 merge windows and repeats each patch over 2 frames: the same
   distribution of masks, but another index order, so another pattern for one seed.)
   It also checks that blackening zeroes exactly the patches docs/spec.md §3 says and leaves the
   others untouched, and that fill sets every byte.

   make gallery-perturb writes docs/img/perturb_strip.png with this program. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L          /* mkdir */
#endif
#define VPPO_IMPLEMENTATION
#include "../vppo.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <direct.h>
#define make_dir(path) _mkdir(path)
#else
#include <sys/stat.h>
#include <sys/types.h>
#define make_dir(path) mkdir(path, 0777)
#endif
#ifdef HAVE_PNG
#include <png.h>
#endif

#define PATCH 14
#define MAX_PATH 4096

static const char *program = "perturb";

/* An RGB image that owns its pixels. */
typedef struct rgb { int32_t w, h; uint8_t *px; } rgb;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "%s: out of memory\n", program); exit(1); }
    return p;
}

static rgb rgb_new(int32_t w, int32_t h)
{
    rgb im;
    im.w = w;
    im.h = h;
    im.px = (uint8_t *)xmalloc((size_t)w * (size_t)h * 3);
    memset(im.px, 0, (size_t)w * (size_t)h * 3);
    return im;
}

static rgb rgb_copy(const rgb *src)
{
    rgb im = rgb_new(src->w, src->h);
    memcpy(im.px, src->px, (size_t)src->w * (size_t)src->h * 3);
    return im;
}

static vppo_image as_vppo(rgb *im)
{
    vppo_image v;
    v.pixels = im->px;
    v.width = im->w;
    v.height = im->h;
    v.channels = 3;
    v.row_stride = (int64_t)im->w * 3;
    return v;
}

/* ------------------------------------------------------------------ PPM */

/* The next header token of a PPM file (skipping whitespace and # comments). */
static int ppm_token(FILE *f, long *value)
{
    int c, digits = 0;
    *value = 0;
    for (;;) {
        c = fgetc(f);
        if (c == '#') { while (c != '\n' && c != EOF) c = fgetc(f); continue; }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        break;
    }
    while (c >= '0' && c <= '9') {
        if (*value > 100000000L) return -1;
        *value = *value * 10 + (c - '0');
        ++digits;
        c = fgetc(f);
    }
    return digits > 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r') ? 0 : -1;
}

static int read_ppm(const char *path, FILE *f, rgb *im)
{
    long w, h, maxval;
    size_t n;
    char magic[2];
    if (fread(magic, 1, 2, f) != 2 || magic[0] != 'P' || magic[1] != '6') {
        fprintf(stderr, "%s: %s: not a binary PPM (P6)%s\n", program, path,
                magic[0] == 'P' && (magic[1] == '3' || magic[1] == '5') ? " (P3 and P5 are not supported)" : "");
        return 1;
    }
    if (ppm_token(f, &w) || ppm_token(f, &h) || ppm_token(f, &maxval) || w < 1 || h < 1 || w > 65535 || h > 65535) {
        fprintf(stderr, "%s: %s: malformed PPM header (width, height, maxval)\n", program, path);
        return 1;
    }
    if (maxval != 255) {
        fprintf(stderr, "%s: %s: maxval %ld: only 8-bit PPM (maxval 255) is supported\n", program, path, maxval);
        return 1;
    }
    *im = rgb_new((int32_t)w, (int32_t)h);
    n = (size_t)w * (size_t)h * 3;
    if (fread(im->px, 1, n, f) != n) {
        fprintf(stderr, "%s: %s: truncated PPM: %ld x %ld needs %lu bytes of pixels\n", program, path, w, h,
                (unsigned long)n);
        free(im->px);
        return 1;
    }
    return 0;
}

static int write_ppm(const char *path, const rgb *im)
{
    FILE *f = fopen(path, "wb");
    int ok;
    if (!f) { fprintf(stderr, "%s: %s: cannot create: %s\n", program, path, strerror(errno)); return 1; }
    ok = fprintf(f, "P6\n%d %d\n255\n", (int)im->w, (int)im->h) > 0 &&
         fwrite(im->px, 1, (size_t)im->w * (size_t)im->h * 3, f) == (size_t)im->w * (size_t)im->h * 3;
    if (fclose(f) != 0) ok = 0;
    if (!ok) { fprintf(stderr, "%s: %s: write failed\n", program, path); return 1; }
    return 0;
}

/* ------------------------------------------------------------------ PNG (libpng) */

#ifdef HAVE_PNG
static int read_png(const char *path, rgb *im)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        fprintf(stderr, "%s: %s: %s\n", program, path, img.message);
        return 1;
    }
    img.format = PNG_FORMAT_RGB;           /* grey, palette, 16-bit and alpha converted */
    *im = rgb_new((int32_t)img.width, (int32_t)img.height);
    if (!png_image_finish_read(&img, NULL, im->px, 0, NULL)) {
        fprintf(stderr, "%s: %s: %s\n", program, path, img.message);
        free(im->px);
        return 1;
    }
    return 0;
}

static int write_png(const char *path, const rgb *im)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)im->w;
    img.height = (png_uint_32)im->h;
    img.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&img, path, 0, im->px, 0, NULL)) {
        fprintf(stderr, "%s: %s: %s\n", program, path, img.message);
        return 1;
    }
    return 0;
}
#endif

static int read_image(const char *path, rgb *im)
{
    unsigned char magic[8] = { 0 };
    FILE *f = fopen(path, "rb");
    int rc;
    if (!f) { fprintf(stderr, "%s: %s: cannot open: %s\n", program, path, strerror(errno)); return 1; }
    if (fread(magic, 1, 8, f) < 2) magic[0] = 0;
    if (memcmp(magic, "\x89PNG", 4) == 0) {
        fclose(f);
#ifdef HAVE_PNG
        return read_png(path, im);
#else
        fprintf(stderr, "%s: %s: PNG input needs a build with libpng (make examples finds it; or "
                        "-DHAVE_PNG -lpng); or convert it: pngtopnm %s > in.ppm\n", program, path, path);
        return 1;
#endif
    }
    rewind(f);
    rc = read_ppm(path, f, im);
    fclose(f);
    return rc;
}

static int write_image(const char *path, const rgb *im, int png)
{
#ifdef HAVE_PNG
    if (png) return write_png(path, im);
#else
    (void)png;
#endif
    return write_ppm(path, im);
}

/* ------------------------------------------------------------------ synthetic image */

static uint8_t clamp255(double v) { return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v + 0.5)); }

static void put(rgb *im, int32_t x, int32_t y, uint8_t r, uint8_t g, uint8_t b)
{
    uint8_t *p;
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    p = im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
    p[0] = r; p[1] = g; p[2] = b;
}

/* A test image that makes every perturbation visible: two gradients, a red disc, a blue
   square, a green triangle, a yellow ring, a fine checkerboard (for the blur) and a card
   of text-like stripes (rows of "words" of dark bars). Coordinates in units of size/224. */
static rgb synthetic(int32_t size)
{
    rgb im = rgb_new(size, size);
    const double k = size / 224.0;
    int32_t x, y;
    for (y = 0; y < size; ++y)
        for (x = 0; x < size; ++x) {
            const double u = (double)x / size, v = (double)y / size;
            const double fx = x / k, fy = y / k;
            double r = 150 + 90 * v, g = 190 + 50 * v - 40 * u, b = 235 - 30 * u;     /* sky-like gradient */
            if (fy > 150) { r = 120 + 60 * u; g = 160 - 40 * u; b = 90; }           /* ground */
            if ((fx - 58) * (fx - 58) + (fy - 58) * (fy - 58) < 30 * 30) { r = 220; g = 40; b = 40; }
            if (fx > 110 && fx < 160 && fy > 30 && fy < 80) { r = 40; g = 70; b = 200; }
            if (fy > 95 && fy < 140 && fabs(fx - 195) < (fy - 95) * 0.6) { r = 40; g = 170; b = 60; }
            {
                const double d = sqrt((fx - 190) * (fx - 190) + (fy - 45) * (fy - 45));
                if (d > 14 && d < 22) { r = 245; g = 205; b = 30; }
            }
            if (fx > 20 && fx < 60 && fy > 100 && fy < 140)
                r = g = b = (((int)(fx / 2) + (int)(fy / 2)) & 1) ? 250 : 20;
            if (fx > 70 && fx < 165 && fy > 160 && fy < 214) {                         /* a card of text */
                const int line = (int)((fy - 166) / 9), in_line = (int)(fy - 166) % 9;
                const int word_len = 5 + (int)(vppo_uniform(77, (uint64_t)(line * 64 + (int)(fx - 70) / 12)) * 6);
                r = g = b = 248;
                if (fy >= 166 && line < 5 && in_line < 5 && (int)(fx - 70) % 12 < word_len && fx > 76 && fx < 160)
                    r = g = b = 30;
            }
            put(&im, x, y, clamp255(r), clamp255(g), clamp255(b));
        }
    return im;
}

/* ------------------------------------------------------------------ labels (a 5x7 font) */

static const char font_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789 .,/_=()-";
static const uint8_t font_rows[][9] = {   /* 5 x 7, descenders 2 rows below */
    {0x00,0x00,0x0E,0x01,0x0F,0x11,0x0F}, {0x10,0x10,0x16,0x19,0x11,0x11,0x1E}, {0x00,0x00,0x0E,0x10,0x10,0x11,0x0E},
    {0x01,0x01,0x0D,0x13,0x11,0x11,0x0F}, {0x00,0x00,0x0E,0x11,0x1F,0x10,0x0E}, {0x06,0x09,0x08,0x1C,0x08,0x08,0x08},
    {0x00,0x00,0x0F,0x11,0x11,0x0F,0x01,0x11,0x0E}, {0x10,0x10,0x16,0x19,0x11,0x11,0x11}, {0x04,0x00,0x0C,0x04,0x04,0x04,0x0E},
    {0x02,0x00,0x06,0x02,0x02,0x02,0x02,0x12,0x0C}, {0x10,0x10,0x12,0x14,0x18,0x14,0x12}, {0x0C,0x04,0x04,0x04,0x04,0x04,0x0E},
    {0x00,0x00,0x1A,0x15,0x15,0x11,0x11}, {0x00,0x00,0x16,0x19,0x11,0x11,0x11}, {0x00,0x00,0x0E,0x11,0x11,0x11,0x0E},
    {0x00,0x00,0x1E,0x11,0x11,0x1E,0x10,0x10,0x10}, {0x00,0x00,0x0F,0x11,0x11,0x0F,0x01,0x01,0x01}, {0x00,0x00,0x16,0x19,0x10,0x10,0x10},
    {0x00,0x00,0x0E,0x10,0x0E,0x01,0x1E}, {0x08,0x08,0x1C,0x08,0x08,0x09,0x06}, {0x00,0x00,0x11,0x11,0x11,0x13,0x0D},
    {0x00,0x00,0x11,0x11,0x11,0x0A,0x04}, {0x00,0x00,0x11,0x11,0x15,0x15,0x0A}, {0x00,0x00,0x11,0x0A,0x04,0x0A,0x11},
    {0x00,0x00,0x11,0x11,0x11,0x0F,0x01,0x11,0x0E}, {0x00,0x00,0x1F,0x02,0x04,0x08,0x1F},
    {0x0E,0x11,0x13,0x15,0x19,0x11,0x0E}, {0x04,0x0C,0x04,0x04,0x04,0x04,0x0E}, {0x0E,0x11,0x01,0x02,0x04,0x08,0x1F},
    {0x1F,0x02,0x04,0x02,0x01,0x11,0x0E}, {0x02,0x06,0x0A,0x12,0x1F,0x02,0x02}, {0x1F,0x10,0x1E,0x01,0x01,0x11,0x0E},
    {0x06,0x08,0x10,0x1E,0x11,0x11,0x0E}, {0x1F,0x01,0x02,0x04,0x08,0x08,0x08}, {0x0E,0x11,0x11,0x0E,0x11,0x11,0x0E},
    {0x0E,0x11,0x11,0x0F,0x01,0x02,0x0C},
    {0x00,0x00,0x00,0x00,0x00,0x00,0x00}, {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C}, {0x00,0x00,0x00,0x00,0x00,0x0C,0x0C,0x04,0x08},
    {0x01,0x01,0x02,0x04,0x08,0x10,0x10}, {0x00,0x00,0x00,0x00,0x00,0x00,0x1F}, {0x00,0x00,0x1F,0x00,0x1F,0x00,0x00},
    {0x02,0x04,0x08,0x08,0x08,0x04,0x02}, {0x08,0x04,0x02,0x02,0x02,0x04,0x08}, {0x00,0x00,0x00,0x0E,0x00,0x00,0x00},
};

/* Draws text centred on (cx, y0) in dark grey; characters outside the font are skipped. */
static void draw_text(rgb *im, int32_t cx, int32_t y0, const char *text)
{
    const int32_t width = (int32_t)strlen(text) * 6 - 1;
    int32_t i, r, c, x0 = cx - width / 2;
    for (i = 0; text[i]; ++i) {
        const char *at = strchr(font_chars, text[i]);
        if (!at) continue;
        for (r = 0; r < 9; ++r)
            for (c = 0; c < 5; ++c)
                if (font_rows[at - font_chars][r] & (0x10 >> c)) put(im, x0 + i * 6 + c, y0 + r, 40, 40, 40);
    }
}

/* ------------------------------------------------------------------ patch rows */

static const float clip_mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
static const float clip_std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };

/* The image as rows of PATCH*PATCH*3 normalised floats, patches in raster order (edge
   patches padded with the mean colour, i.e. 0); and back. */
static void patchify(const rgb *im, float *rows, int64_t px_count)
{
    int64_t i, y, x, c;
    const int64_t row_len = PATCH * PATCH * 3;
    for (i = 0; i < px_count * row_len; ++i) rows[i] = 0.0f;
    for (y = 0; y < im->h; ++y)
        for (x = 0; x < im->w; ++x)
            for (c = 0; c < 3; ++c) {
                const int64_t patch = (y / PATCH) * ((im->w + PATCH - 1) / PATCH) + x / PATCH;
                const int64_t at = patch * row_len + ((y % PATCH) * PATCH + x % PATCH) * 3 + c;
                const float v = im->px[(y * im->w + x) * 3 + c] / 255.0f;
                rows[at] = (v - clip_mean[c]) / clip_std[c];
            }
}

static void unpatchify(const float *rows, rgb *im)
{
    int64_t y, x, c;
    const int64_t row_len = PATCH * PATCH * 3;
    for (y = 0; y < im->h; ++y)
        for (x = 0; x < im->w; ++x)
            for (c = 0; c < 3; ++c) {
                const int64_t patch = (y / PATCH) * ((im->w + PATCH - 1) / PATCH) + x / PATCH;
                const int64_t at = patch * row_len + ((y % PATCH) * PATCH + x % PATCH) * 3 + c;
                im->px[(y * im->w + x) * 3 + c] = clamp255(((double)rows[at] * clip_std[c] + clip_mean[c]) * 255.0);
            }
}

/* ------------------------------------------------------------------ checks */

/* docs/spec.md §3: patch i = py * ceil(W/patch) + px is all 0 iff vppo_uniform(seed, i) < prob,
   every other byte unchanged. Returns the number of blackened patches, or -1. */
static int64_t check_blackening(const rgb *orig, const rgb *black, int32_t patch, float prob, uint64_t seed)
{
    const int64_t gx = (orig->w + patch - 1) / patch;
    int64_t y, x, c, n_black = 0, bad = 0, i;
    for (y = 0; y < orig->h; ++y)
        for (x = 0; x < orig->w; ++x) {
            const int64_t pi = (y / patch) * gx + x / patch;
            const int dark = vppo_uniform(seed, (uint64_t)pi) < (double)prob;
            for (c = 0; c < 3; ++c) {
                const int64_t at = (y * orig->w + x) * 3 + c;
                bad += dark ? black->px[at] != 0 : black->px[at] != orig->px[at];
            }
        }
    for (i = 0; i < gx * ((orig->h + patch - 1) / patch); ++i) n_black += vppo_uniform(seed, (uint64_t)i) < (double)prob;
    return bad ? -1 : n_black;
}

static double mean_abs_diff(const rgb *a, const rgb *b, double *changed)
{
    const size_t n = (size_t)a->w * (size_t)a->h * 3;
    size_t i, n_changed = 0;
    double sum = 0.0;
    for (i = 0; i < n; ++i) {
        sum += fabs((double)a->px[i] - (double)b->px[i]);
        n_changed += a->px[i] != b->px[i];
    }
    *changed = n ? (double)n_changed / (double)n : 0.0;
    return n ? sum / (double)n : 0.0;
}

/* ------------------------------------------------------------------ main */

/* The strip's format follows its extension (.png or .ppm), else the other files';
   -1 for .png in a build without libpng. */
static int strip_is_png(const char *path, int use_png)
{
    const size_t n = strlen(path);
    if (n > 4 && strcmp(path + n - 4, ".ppm") == 0) return 0;
    if (n > 4 && strcmp(path + n - 4, ".png") == 0) {
#ifndef HAVE_PNG
        fprintf(stderr, "%s: %s: writing PNG needs a build with libpng (-DHAVE_PNG -lpng); name it .ppm\n",
                program, path);
        return -1;
#else
        return 1;
#endif
    }
    return use_png;
}

static void usage(void)
{
    fprintf(stderr, "usage: %s [INPUT.ppm%s] [--out DIR] [--strip FILE] [--size N] [--seed S] [--ppm]\n"
                    "  Without INPUT a synthetic N x N image is used (N = 224). See examples/perturb.c.\n",
            program,
#ifdef HAVE_PNG
            "|INPUT.png"
#else
            ""
#endif
    );
}

int main(int argc, char **argv)
{
    enum { ORIG, BLACK, NOISE, FILL, BLUR, ROWS, N_PANELS };
    static const char *names[N_PANELS] = { "original", "blackening", "noise", "fill", "blur", "patch_rows" };
    static const char *labels[N_PANELS] = { "original", "blackening 14, p 0.5", "noise std 189", "fill 128",
                                            "blur radius 6", "patch rows (= blackening)" };
    const char *input = NULL, *out_dir = "perturb_out", *strip_path = NULL, *ext;
    int32_t size = 224;
    uint64_t seed = 2510;
    int use_png = 0, i, rc = 0;
    rgb panel[N_PANELS], strip;
    char path[MAX_PATH], strip_buf[MAX_PATH];
    vppo_image v;
    vppo_status st;

#ifdef HAVE_PNG
    use_png = 1;
#endif
    for (i = 1; i < argc; ++i) {
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (strcmp(argv[i], "--ppm") == 0) use_png = 0;
        else if (strcmp(argv[i], "--out") == 0 && val) { out_dir = val; ++i; }
        else if (strcmp(argv[i], "--strip") == 0 && val) { strip_path = val; ++i; }
        else if (strcmp(argv[i], "--size") == 0 && val) {
            long n = strtol(val, &end, 10);
            if (*end || n < 1 || n > 8192) { fprintf(stderr, "%s: --size needs 1..8192, not '%s'\n", program, val); return 2; }
            size = (int32_t)n;
            ++i;
        } else if (strcmp(argv[i], "--seed") == 0 && val) {
            seed = strtoull(val, &end, 10);
            if (*end || val[0] == '-') { fprintf(stderr, "%s: --seed needs an integer, not '%s'\n", program, val); return 2; }
            ++i;
        } else if (argv[i][0] != '-' && !input) input = argv[i];
        else { usage(); return 2; }
    }
    ext = use_png ? "png" : "ppm";

    if (input) { if (read_image(input, &panel[ORIG])) return 1; }
    else panel[ORIG] = synthetic(size);
    printf("perturb: %s, %d x %d, seed %llu\n", input ? input : "synthetic test image", (int)panel[ORIG].w,
           (int)panel[ORIG].h, (unsigned long long)seed);
    for (i = 1; i < N_PANELS; ++i) panel[i] = rgb_copy(&panel[ORIG]);

    /* the paper's default and its three ablations, in place on copies */
    v = as_vppo(&panel[BLACK]);
    st = vppo_perturb_patch_blackening(&v, PATCH, 0.5f, seed);
    if (st == VPPO_OK) { v = as_vppo(&panel[NOISE]); st = vppo_perturb_gaussian_noise(&v, 0.0f, 189.0f, seed); }
    if (st == VPPO_OK) { v = as_vppo(&panel[FILL]); st = vppo_perturb_fill(&v, 128); }
    if (st == VPPO_OK) {
        const size_t work_bytes = vppo_blur_workspace(panel[BLUR].w, panel[BLUR].h, 3);
        void *work = xmalloc(work_bytes);
        v = as_vppo(&panel[BLUR]);
        st = vppo_perturb_gaussian_blur(&v, 6.0f, work, work_bytes);
        free(work);
    }
    /* the same blackening on patchified, normalised rows: fill = the normalised black pixel */
    if (st == VPPO_OK) {
        const int64_t n_rows = (int64_t)((panel[ROWS].w + PATCH - 1) / PATCH) * ((panel[ROWS].h + PATCH - 1) / PATCH);
        const int64_t row_len = PATCH * PATCH * 3;
        float *rows = (float *)xmalloc((size_t)(n_rows * row_len) * sizeof(float)), fill[PATCH * PATCH * 3];
        int64_t j;
        for (j = 0; j < row_len; ++j) fill[j] = (0.0f - clip_mean[j % 3]) / clip_std[j % 3];
        patchify(&panel[ORIG], rows, n_rows);
        st = vppo_perturb_patch_rows(rows, n_rows, row_len, row_len, 0.5f, fill, seed);
        unpatchify(rows, &panel[ROWS]);
        free(rows);
    }
    if (st != VPPO_OK) { fprintf(stderr, "%s: vppo_perturb_*: %s\n", program, vppo_status_string(st)); return 1; }

    /* what changed, and the checks */
    {
        const int64_t n_patches = (int64_t)((panel[ORIG].w + PATCH - 1) / PATCH) * ((panel[ORIG].h + PATCH - 1) / PATCH);
        const int64_t n_black = check_blackening(&panel[ORIG], &panel[BLACK], PATCH, 0.5f, seed);
        const size_t n_bytes = (size_t)panel[ORIG].w * (size_t)panel[ORIG].h * 3;
        size_t j, fill_bad = 0;
        int rows_equal = memcmp(panel[ROWS].px, panel[BLACK].px, n_bytes) == 0;
        for (j = 0; j < n_bytes; ++j) fill_bad += panel[FILL].px[j] != 128;
        for (i = 1; i < N_PANELS; ++i) {
            double changed, mad = mean_abs_diff(&panel[ORIG], &panel[i], &changed);
            printf("  %-11s mean |change| %6.2f per byte, %5.1f%% of bytes changed\n", names[i], mad, 100.0 * changed);
        }
        if (n_black >= 0)
            printf("  check: blackening zeroes exactly the patches i with vppo_uniform(seed, i) < 0.5 "
                   "(%lld of %lld), nothing else\n", (long long)n_black, (long long)n_patches);
        else
            fprintf(stderr, "%s: check FAILED: blackening does not follow spec §3\n", program);
        printf("  check: patch_rows on normalised 14x14 rows, put back = blackening: %s\n",
               rows_equal ? "identical, byte for byte" : "DIFFERENT");
        if (fill_bad) fprintf(stderr, "%s: check FAILED: %lu bytes of the fill are not 128\n", program,
                              (unsigned long)fill_bad);
        if (n_black < 0 || !rows_equal || fill_bad) rc = 1;
    }

    /* the files */
    if (make_dir(out_dir) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: %s: cannot create the directory: %s\n", program, out_dir, strerror(errno));
        return 1;
    }
    for (i = 0; i < N_PANELS; ++i) {
        snprintf(path, sizeof path, "%s/%s.%s", out_dir, names[i], ext);
        if (write_image(path, &panel[i], use_png)) return 1;
    }
    printf("  wrote %s/{%s,%s,%s,%s,%s,%s}.%s\n", out_dir, names[0], names[1], names[2], names[3], names[4],
           names[5], ext);
    {
        const int32_t gap = 6, label_h = 15, w = panel[ORIG].w, h = panel[ORIG].h;
        int32_t y;
        strip = rgb_new(N_PANELS * w + (N_PANELS + 1) * gap, h + 2 * gap + label_h);
        memset(strip.px, 255, (size_t)strip.w * (size_t)strip.h * 3);
        for (i = 0; i < N_PANELS; ++i) {
            const int32_t x0 = gap + i * (w + gap);
            for (y = 0; y < h; ++y)
                memcpy(strip.px + ((size_t)(gap + y) * (size_t)strip.w + (size_t)x0) * 3,
                       panel[i].px + (size_t)y * (size_t)w * 3, (size_t)w * 3);
            if (w >= 6 * (int32_t)strlen(labels[i])) draw_text(&strip, x0 + w / 2, gap + h + 4, labels[i]);
            else draw_text(&strip, x0 + w / 2, gap + h + 4, names[i]);
        }
        if (!strip_path) {
            snprintf(strip_buf, sizeof strip_buf, "%s/strip.%s", out_dir, ext);
            strip_path = strip_buf;
        }
        {
            const int strip_png = strip_is_png(strip_path, use_png);
            if (strip_png < 0 || write_image(strip_path, &strip, strip_png)) return 1;
        }
        printf("  wrote %s (%d x %d: %s)\n", strip_path, (int)strip.w, (int)strip.h,
               "original | blackening | noise | fill | blur | patch rows");
        free(strip.px);
    }
    for (i = 0; i < N_PANELS; ++i) free(panel[i].px);
    return rc;
}
