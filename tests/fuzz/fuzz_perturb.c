/* tests/fuzz/fuzz_perturb.c - libFuzzer harness for image perturbation (§3) and the small
   helpers: the four image perturbations, vppo_blur_workspace, vppo_perturb_patch_rows,
   vppo_hash64 / vppo_uniform, vppo_offsets_uniform, vppo_status_string and the ISA
   functions, with any geometry, stride, parameter and seed. */
#include "fuzz.h"

typedef struct fz_image {
    vppo_image img;
    uint8_t *pix;        /* the buffer (img.pixels may be set to NULL for a call) */
    size_t bytes;
    uint8_t *before;
    fz_reasons bad;
} fz_image;

static void make_image(fz *f, fz_image *m)
{
    int64_t y, row_bytes;
    size_t i;
    memset(m, 0, sizeof *m);
    m->img.width = (int32_t)fz_int(f, -1, 40);
    m->img.height = (int32_t)fz_int(f, -1, 40);
    m->img.channels = (int32_t)fz_int(f, 0, 5);
    if (fz_u8(f) % 40 == 0) m->img.width = INT32_MAX;
    row_bytes = (int64_t)m->img.width * m->img.channels;
    m->img.row_stride = row_bytes + fz_int(f, 0, 5);
    switch (fz_u8(f) % 30) {
    case 0: m->img.row_stride = row_bytes - fz_int(f, 1, 3); break;
    case 1: m->img.row_stride = INT64_MAX / 2; break;
    default: break;
    }
    if (m->img.width < 0 || m->img.height < 0 || m->img.channels < 1 || m->img.row_stride < row_bytes)
        m->bad |= FZ_BIT(VPPO_ERR_SIZE);
    else if (m->img.height > 0 && (double)m->img.row_stride * (double)m->img.height > (double)PTRDIFF_MAX / 8)
        m->bad |= FZ_BIT(VPPO_ERR_SIZE);
    if (!m->bad && (m->img.width > 4096 || (double)m->img.row_stride * m->img.height > 1e7)) {
        m->img.width = 3;   /* sizes this harness cannot hold: keep the shape small instead */
        row_bytes = 3 * (int64_t)m->img.channels;
        m->img.row_stride = row_bytes;
    }
    m->bytes = m->bad ? 1 : m->img.height > 0 ? (size_t)((m->img.height - 1) * m->img.row_stride + row_bytes) : 0;
    m->pix = m->img.pixels = (uint8_t *)fz_alloc(f, m->bytes);
    fz_reseed(f);
    for (i = 0; i < m->bytes; ++i) m->img.pixels[i] = (uint8_t)(fz_next(f) >> 56);
    if (fz_u8(f) % 4 == 0)   /* a flat image: blur must keep it */
        for (y = 0; y < (int64_t)m->bytes; ++y) m->img.pixels[y] = 77;
    m->before = (uint8_t *)fz_copy(f, m->img.pixels, m->bytes);
}

static int image_unchanged(const fz_image *m) { return memcmp(m->pix, m->before, m->bytes) == 0; }

/* Byte (x, y, c) of the image as it was and as it is; in_gap for bytes between rows. */
static uint8_t was(const fz_image *m, int64_t x, int64_t y, int c)
{
    return m->before[y * m->img.row_stride + x * m->img.channels + c];
}
static uint8_t now(const fz_image *m, int64_t x, int64_t y, int c)
{
    return m->pix[y * m->img.row_stride + x * m->img.channels + c];
}
static void check_gaps(const fz_image *m)
{
    int64_t y, b;
    const int64_t row_bytes = (int64_t)m->img.width * m->img.channels;
    for (y = 0; y + 1 < m->img.height; ++y)
        for (b = row_bytes; b < m->img.row_stride; ++b)
            FZ_ASSERT(m->pix[y * m->img.row_stride + b] == m->before[y * m->img.row_stride + b]);
}

static void run_image(fz *f)
{
    fz_image m;
    const unsigned op = fz_u8(f) % 4, null_sel = fz_u8(f) % 20;
    const uint64_t seed = fz_bits(f, 8);
    fz_reasons why;
    vppo_status st = VPPO_OK;
    int64_t x, y;
    int c;
    make_image(f, &m);
    why = m.bad;
    if (null_sel < 2) why |= FZ_BIT(VPPO_ERR_NULL);
    if (null_sel == 1) m.img.pixels = NULL;
    if (op == 0) {
        const int32_t patch = fz_u8(f) % 16 == 0 ? (int32_t)fz_int(f, -3, 0) : fz_u8(f) % 16 == 0 ? INT32_MAX
                            : (int32_t)fz_int(f, 1, 20);
        const float prob = fz_u8(f) < 128 ? 0.5f : fz_float(f);
        if (patch < 1 || !(prob >= 0.0f && prob <= 1.0f)) why |= FZ_BIT(VPPO_ERR_PARAM);
        st = vppo_perturb_patch_blackening(null_sel == 0 ? NULL : &m.img, patch, prob, seed);
        FZ_EXPECT(why, st);
        if (st != VPPO_OK) goto done;
        {
            const int64_t cols = ((int64_t)m.img.width + patch - 1) / patch;
            for (y = 0; y < m.img.height; ++y)
                for (x = 0; x < m.img.width; ++x) {
                    const int black = test_uniform(seed, (uint64_t)((y / patch) * cols + x / patch)) < (double)prob;
                    for (c = 0; c < m.img.channels; ++c) FZ_ASSERT(now(&m, x, y, c) == (black ? 0 : was(&m, x, y, c)));
                }
        }
    } else if (op == 1) {
        const float mean = fz_u8(f) < 128 ? 0.0f : fz_float(f), sd = fz_u8(f) < 128 ? 30.0f : fz_float(f);
        if (!fz_finite(mean) || !fz_finite(sd) || sd < 0.0f) why |= FZ_BIT(VPPO_ERR_PARAM);
        st = vppo_perturb_gaussian_noise(null_sel == 0 ? NULL : &m.img, mean, sd, seed);
        FZ_EXPECT(why, st);
        if (st != VPPO_OK) goto done;
        for (y = 0; y < m.img.height; ++y)
            for (x = 0; x < m.img.width; ++x)
                for (c = 0; c < m.img.channels; ++c) {
                    const uint64_t j = (uint64_t)(y * m.img.width + x) * (uint64_t)m.img.channels + (uint64_t)c;
                    double u1, u2, radius, angle, normal, shifted, noise, value;
                    if (m.img.channels == 4 && c == 3) { FZ_ASSERT(now(&m, x, y, c) == was(&m, x, y, c)); continue; }
                    u1 = test_uniform(seed, 2 * j);
                    u2 = test_uniform(seed, 2 * j + 1);
                    radius = sqrt(-2.0 * log(1.0 - u1));
                    angle = 6.283185307179586 * u2;
                    normal = radius * cos(angle);
                    shifted = (double)was(&m, x, y, c) + (double)mean;
                    noise = (double)sd * normal;
                    value = shifted + noise;
                    value = value < 0 ? 0 : value > 255 ? 255 : value;
                    FZ_ASSERT(now(&m, x, y, c) == (uint8_t)value);
                }
    } else if (op == 2) {
        const uint8_t value = (uint8_t)fz_u8(f);
        st = vppo_perturb_fill(null_sel == 0 ? NULL : &m.img, value);
        FZ_EXPECT(why, st);
        if (st != VPPO_OK) goto done;
        for (y = 0; y < m.img.height; ++y)
            for (x = 0; x < m.img.width; ++x)
                for (c = 0; c < m.img.channels; ++c) FZ_ASSERT(now(&m, x, y, c) == value);
    } else {
        const float radius = fz_u8(f) < 160 ? (float)fz_int(f, 0, 8) * 0.75f : fz_float(f);
        const size_t need = vppo_blur_workspace(m.img.width, m.img.height, m.img.channels);
        const unsigned wsel = fz_u8(f) % 12, shift = fz_u8(f) % 8;
        size_t work_bytes = need;
        char *work;
        if (need == (size_t)-1 || need > ((size_t)1 << 26)) work_bytes = 64;
        else if (wsel == 0 && need > 0) work_bytes = need - 1;
        else if (wsel == 1) work_bytes = need + 3;
        work = (char *)fz_alloc(f, work_bytes + shift) + shift;    /* any alignment */
        if (!(radius >= 0.0f && radius <= 1e5f)) why |= FZ_BIT(VPPO_ERR_PARAM);
        if (wsel == 2) why |= FZ_BIT(VPPO_ERR_NULL);
        if (work_bytes < need) why |= FZ_BIT(VPPO_ERR_WORKSPACE);
        if (!m.bad && m.img.width > 0 && m.img.height > 0) FZ_ASSERT(need > 0);
        st = vppo_perturb_gaussian_blur(null_sel == 0 ? NULL : &m.img, radius, wsel == 2 ? NULL : work, work_bytes);
        FZ_EXPECT(why, st);
        if (st != VPPO_OK) goto done;
        for (c = 0; c < m.img.channels; ++c) {
            int lo = 255, hi = 0;
            for (y = 0; y < m.img.height; ++y)
                for (x = 0; x < m.img.width; ++x) {
                    if (was(&m, x, y, c) < lo) lo = was(&m, x, y, c);
                    if (was(&m, x, y, c) > hi) hi = was(&m, x, y, c);
                }
            for (y = 0; y < m.img.height; ++y)
                for (x = 0; x < m.img.width; ++x) {
                    if (radius == 0.0f || (m.img.channels == 4 && c == 3)) FZ_ASSERT(now(&m, x, y, c) == was(&m, x, y, c));
                    FZ_ASSERT(now(&m, x, y, c) >= lo && now(&m, x, y, c) <= hi);   /* a weighted mean */
                }
        }
    }
    check_gaps(&m);
    return;
done:
    FZ_ASSERT(image_unchanged(&m));      /* validated before anything is written */
}

static void run_patch_rows(fz *f)
{
    int64_t n_rows = fz_int(f, -1, 20), row_len = fz_int(f, -1, 30), stride, i, j, elems;
    const float prob = fz_u8(f) < 128 ? 0.5f : fz_float(f);
    const uint64_t seed = fz_bits(f, 8);
    const unsigned null_sel = fz_u8(f) % 16;
    float *rows, *before, *fill = NULL;
    fz_reasons why = 0;
    vppo_status st;
    stride = row_len + fz_int(f, 0, 4);
    switch (fz_u8(f) % 24) {
    case 0: stride = row_len - 1; break;
    case 1: if (n_rows < 1) n_rows = 1; stride = INT64_MAX / 2; break;
    default: break;
    }
    if (n_rows < 0 || row_len < 0 || stride < row_len) why |= FZ_BIT(VPPO_ERR_SIZE);
    else if (n_rows > 0 && (double)stride * (double)n_rows > (double)PTRDIFF_MAX / 8) why |= FZ_BIT(VPPO_ERR_SIZE);
    elems = why ? 1 : n_rows > 0 ? (n_rows - 1) * stride + row_len : 0;
    rows = fz_floats(f, elems);
    before = (float *)fz_copy(f, rows, (size_t)elems * sizeof(float));
    if (fz_u8(f) & 1) {
        fill = fz_floats(f, row_len > 0 ? row_len : 0);
        for (j = 0; j < row_len; ++j) if (!fz_finite(fill[j])) why |= FZ_BIT(VPPO_ERR_NONFINITE);
    }
    if (!(prob >= 0.0f && prob <= 1.0f)) why |= FZ_BIT(VPPO_ERR_PARAM);
    if (null_sel == 0) why |= FZ_BIT(VPPO_ERR_NULL);
    st = vppo_perturb_patch_rows(null_sel == 0 ? NULL : rows, n_rows, row_len, stride, prob, fill, seed);
    FZ_EXPECT(why, st);
    if (st != VPPO_OK) {
        FZ_ASSERT(memcmp(rows, before, (size_t)elems * sizeof(float)) == 0);
        return;
    }
    for (i = 0; i < n_rows; ++i) {
        const int replaced = test_uniform(seed, (uint64_t)i) < (double)prob;
        for (j = 0; j < (i == n_rows - 1 ? row_len : stride); ++j) {
            const int64_t at = i * stride + j;
            const float want = j >= row_len || !replaced ? before[at] : fill ? fill[j] : 0.0f;
            FZ_ASSERT(memcmp(&rows[at], &want, 4) == 0);
        }
    }
}

static void run_helpers(fz *f)
{
    const uint64_t x = fz_bits(f, 8), seed = fz_bits(f, 8), i = fz_bits(f, 8);
    const int code = (int)fz_int(f, -12, 3), isa = (int)fz_int(f, -2, 6);
    const vppo_isa before = vppo_isa_active();
    int64_t n = fz_int(f, -2, 40), len = fz_int(f, -2, 1000), b;
    const unsigned huge = fz_u8(f) % 8;
    const char *s;
    vppo_status st;
    double u;
    /* hash and uniform: the formulas of docs/spec.md §3 */
    FZ_ASSERT(vppo_hash64(x) == test_splitmix64(x));
    u = vppo_uniform(seed, i);
    FZ_ASSERT(u == test_uniform(seed, i) && u >= 0.0 && u < 1.0);
    /* every status has a description; the known ones a real one */
    s = vppo_status_string((vppo_status)code);
    FZ_ASSERT(s != NULL && s[0] != '\0');
    if (code <= 0 && code >= -9) FZ_ASSERT(strcmp(s, "unknown vppo_status") != 0);
    else FZ_ASSERT(strcmp(s, "unknown vppo_status") == 0);
    /* ISA functions: a name for anything, PARAM outside the enum, never a change on refusal */
    FZ_ASSERT(vppo_isa_name((vppo_isa)isa) != NULL);
    st = vppo_isa_select((vppo_isa)isa);
    if (isa < 0 || isa > 4) FZ_ASSERT(st == VPPO_ERR_PARAM);
    else FZ_ASSERT(st == VPPO_OK || st == VPPO_ERR_UNSUPPORTED);
    if (st == VPPO_OK) FZ_ASSERT(vppo_isa_active() == (vppo_isa)isa);
    else FZ_ASSERT(vppo_isa_active() == before);
    FZ_ASSERT(vppo_isa_select(before) == VPPO_OK);
    /* offsets_uniform: b * len, SIZE for negative or overflowing sizes */
    if (huge == 0) { n = INT64_MAX / 3; len = fz_int(f, 4, 1000); }   /* n * len overflows int64 */
    if (huge == 1) { n = fz_int(f, 2, 40); len = INT64_MAX / 2; }
    {
        const int overflow = n > 0 && len > 0 && n > INT64_MAX / len;
        int64_t *offsets = (int64_t *)fz_alloc(f, (size_t)(n >= 0 && n <= 40 ? n + 1 : 1) * sizeof(int64_t));
        st = vppo_offsets_uniform(offsets, n, len);
        if (n < 0 || len < 0 || overflow) FZ_ASSERT(st == VPPO_ERR_SIZE);
        else if ((double)n * (double)len > (double)PTRDIFF_MAX / 8) FZ_ASSERT(st == VPPO_ERR_SIZE || st == VPPO_OK);
        else FZ_ASSERT(st == VPPO_OK);
        if (st == VPPO_OK) for (b = 0; b <= n; ++b) FZ_ASSERT(offsets[b] == b * len);
        st = vppo_offsets_uniform(NULL, n, len);
        FZ_ASSERT(st == VPPO_ERR_NULL || (st == VPPO_ERR_SIZE && (n < 0 || len < 0 || overflow)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_run runs[] = { run_image, run_image, run_patch_rows, run_helpers };
    return fz_dispatch(data, size, 0, runs, 4);
}
