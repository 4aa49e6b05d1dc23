/* npy.h - read and write NumPy .npy files, for the vppo.h examples.

   Do this:
       #define NPY_IMPLEMENTATION
   before you include this file in *one* C file. C99, libc only.

   What it handles: version 1.0, 2.0 and 3.0 files holding one little-endian, C-order
   (row-major) array of one of

       '<f4'  float32                 NPY_DT_F4
       '<i8'  int64                   NPY_DT_I8
       '<i4'  int32                   NPY_DT_I4
       '|u1'  uint8                   NPY_DT_U1
       '<u2'  uint16 (and bf16: the 16 high bits of a float32, stored as uint16)  NPY_DT_U2

   NumPy has no bf16 dtype; save a bf16 tensor as its bits:
       torch:      t.view(torch.int16).numpy().view(np.uint16)
       ml_dtypes:  a.view(np.uint16)
   Anything else (another dtype, big-endian '>f4', Fortran order, a structured dtype, a
   pickled object array, a file too short or too long) is refused with a message that
   names the file and the reason, and usually the NumPy one-liner that fixes it. The
   data are converted to the host's byte order on big-endian machines.

   API (every function returns 0 on success, -1 with a message "PATH: reason" in err):
       int  npy_read(const char *path, npy_array *a, char *err, size_t err_size);
       int  npy_write(const char *path, npy_dtype dt, int ndim, const int64_t *shape,
                      const void *data, char *err, size_t err_size);
       void npy_free(npy_array *a);                     -- frees a->data
   npy_read allocates a->data (malloc, count elements of the dtype, 1 byte for an empty
   array). The header format is NumPy's own: "\x93NUMPY", major, minor, header length,
   then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (4, 16), }
   padded with spaces and a final '\n' so that the data start at a multiple of 64. */
#ifndef NPY_H_INCLUDED
#define NPY_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 8

typedef enum npy_dtype { NPY_DT_F4 = 0, NPY_DT_I8, NPY_DT_I4, NPY_DT_U1, NPY_DT_U2 } npy_dtype;

typedef struct npy_array {
    npy_dtype dtype;
    int ndim;                        /* 0 (a scalar) to NPY_MAX_DIMS */
    int64_t shape[NPY_MAX_DIMS];
    int64_t count;                   /* product of the shape (1 for ndim 0) */
    void *data;                      /* count elements, malloc'd by npy_read */
} npy_array;

/* "<f4", "<i8", "<i4", "|u1", "<u2"; "?" for other values. */
const char *npy_dtype_descr(npy_dtype dt);
/* 4, 8, 4, 1, 2; 0 for other values. */
size_t npy_dtype_size(npy_dtype dt);
/* Writes the shape as NumPy prints it, "(4, 16)", "(5,)", "()", into buf; returns buf. */
const char *npy_shape_string(int ndim, const int64_t *shape, char *buf, size_t size);

int  npy_read(const char *path, npy_array *a, char *err, size_t err_size);
int  npy_write(const char *path, npy_dtype dt, int ndim, const int64_t *shape,
               const void *data, char *err, size_t err_size);
void npy_free(npy_array *a);

#endif /* NPY_H_INCLUDED */

#if defined(NPY_IMPLEMENTATION) && !defined(NPY_IMPLEMENTATION_INCLUDED)
#define NPY_IMPLEMENTATION_INCLUDED

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char npy__magic[6] = { '\x93', 'N', 'U', 'M', 'P', 'Y' };
#define NPY__MAX_BYTES ((int64_t)1 << 46)   /* 64 TiB: a bound that keeps every product exact */

const char *npy_dtype_descr(npy_dtype dt)
{
    switch (dt) {
    case NPY_DT_F4: return "<f4";
    case NPY_DT_I8: return "<i8";
    case NPY_DT_I4: return "<i4";
    case NPY_DT_U1: return "|u1";
    case NPY_DT_U2: return "<u2";
    }
    return "?";
}

size_t npy_dtype_size(npy_dtype dt)
{
    switch (dt) {
    case NPY_DT_F4: return 4;
    case NPY_DT_I8: return 8;
    case NPY_DT_I4: return 4;
    case NPY_DT_U1: return 1;
    case NPY_DT_U2: return 2;
    }
    return 0;
}

const char *npy_shape_string(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t used = 0;
    int i;
    if (size == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "(");
    for (i = 0; i < ndim && used < size; ++i)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, ndim == 1 ? ",)" : ")");
    return buf;
}

/* "path: message" into err (which may be NULL); always returns -1. */
static int npy__fail(char *err, size_t err_size, const char *path, const char *fmt, ...)
{
    va_list ap;
    size_t used;
    if (!err || err_size == 0) return -1;
    used = (size_t)snprintf(err, err_size, "%s: ", path);
    if (used < err_size) {
        va_start(ap, fmt);
        vsnprintf(err + used, err_size - used, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int npy__host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Reverses the bytes of each of the n elements of size bytes (big-endian hosts only). */
static void npy__swap(void *data, int64_t n, size_t size)
{
    unsigned char *p = (unsigned char *)data;
    int64_t i;
    size_t j;
    if (size < 2) return;
    for (i = 0; i < n; ++i, p += size)
        for (j = 0; j < size / 2; ++j) {
            unsigned char tmp = p[j];
            p[j] = p[size - 1 - j];
            p[size - 1 - j] = tmp;
        }
}

/* ------------------------------------------------------------- header parsing */

typedef struct npy__parser { const char *s, *end; } npy__parser;

static void npy__skip_space(npy__parser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) ++p->s;
}

/* A Python string literal in single or double quotes (no escapes needed for our keys). */
static int npy__string(npy__parser *p, char *out, size_t size)
{
    char quote;
    size_t n = 0;
    npy__skip_space(p);
    if (p->s >= p->end || (*p->s != '\'' && *p->s != '"')) return -1;
    quote = *p->s++;
    while (p->s < p->end && *p->s != quote) {
        if (n + 1 < size) out[n++] = *p->s;
        ++p->s;
    }
    if (p->s >= p->end) return -1;
    ++p->s;
    out[n] = '\0';
    return 0;
}

static int npy__expect(npy__parser *p, char c)
{
    npy__skip_space(p);
    if (p->s >= p->end || *p->s != c) return -1;
    ++p->s;
    return 0;
}

static int npy__word(npy__parser *p, const char *w)
{
    size_t n = strlen(w);
    npy__skip_space(p);
    if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n) != 0) return -1;
    p->s += n;
    return 0;
}

/* The shape tuple: "()", "(5,)", "(4, 16)", Python ints (an optional trailing L of
   Python 2 files is accepted). */
static int npy__shape(npy__parser *p, int *ndim, int64_t *shape, const char *path, char *err, size_t err_size)
{
    *ndim = 0;
    if (npy__expect(p, '(') != 0) return npy__fail(err, err_size, path, "malformed header: 'shape' is not a tuple");
    for (;;) {
        int64_t v = 0;
        int digits = 0;
        npy__skip_space(p);
        if (p->s < p->end && *p->s == ')') { ++p->s; return 0; }
        if (*ndim == NPY_MAX_DIMS)
            return npy__fail(err, err_size, path, "more than %d dimensions are not supported", NPY_MAX_DIMS);
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
            if (v > (NPY__MAX_BYTES - 9) / 10)
                return npy__fail(err, err_size, path, "a dimension of the shape is too large");
            v = v * 10 + (*p->s - '0');
            ++p->s;
            ++digits;
        }
        if (!digits) return npy__fail(err, err_size, path, "malformed header: the shape holds something that is not a non-negative integer");
        if (p->s < p->end && *p->s == 'L') ++p->s;
        shape[(*ndim)++] = v;
        npy__skip_space(p);
        if (p->s < p->end && *p->s == ',') { ++p->s; continue; }
        if (p->s < p->end && *p->s == ')') { ++p->s; return 0; }
        return npy__fail(err, err_size, path, "malformed header: the shape tuple is not closed");
    }
}

static int npy__dtype_from_descr(const char *descr, npy_dtype *dt)
{
    static const struct { const char *descr; npy_dtype dt; } table[] = {
        { "<f4", NPY_DT_F4 }, { "<i8", NPY_DT_I8 }, { "<i4", NPY_DT_I4 }, { "|u1", NPY_DT_U1 },
        { "<u1", NPY_DT_U1 }, { "<u2", NPY_DT_U2 },
    };
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; ++i)
        if (strcmp(descr, table[i].descr) == 0) { *dt = table[i].dt; return 0; }
    return -1;
}

/* A hint for the dtypes people meet most often. */
static const char *npy__descr_hint(const char *descr)
{
    if (descr[0] == '>') return " (big-endian: save a.astype(a.dtype.newbyteorder('<')))";
    if (strcmp(descr, "<f8") == 0) return " (float64: save a.astype(np.float32))";
    if (strcmp(descr, "<f2") == 0) return " (float16: save a.astype(np.float32), or bf16 bits as '<u2')";
    if (strcmp(descr, "|b1") == 0) return " (bool: save a.astype(np.uint8))";
    if (strcmp(descr, "|i1") == 0 || strcmp(descr, "<i2") == 0) return " (save a.astype(np.int32))";
    if (strcmp(descr, "<u4") == 0 || strcmp(descr, "<u8") == 0) return " (save a.astype(np.int64))";
    if (strcmp(descr, "|O") == 0) return " (an object array: pickled Python objects cannot be read from C)";
    return "";
}

static int npy__parse_header(const char *h, size_t len, npy_array *a, const char *path, char *err, size_t err_size)
{
    npy__parser p;
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    p.s = h;
    p.end = h + len;
    if (npy__expect(&p, '{') != 0) return npy__fail(err, err_size, path, "malformed header: not a Python dict");
    for (;;) {
        char key[32];
        npy__skip_space(&p);
        if (p.s < p.end && *p.s == '}') break;
        if (npy__string(&p, key, sizeof key) != 0 || npy__expect(&p, ':') != 0)
            return npy__fail(err, err_size, path, "malformed header: expected a quoted key and ':'");
        if (strcmp(key, "descr") == 0) {
            char descr[64];
            npy__skip_space(&p);
            if (p.s < p.end && *p.s == '[')
                return npy__fail(err, err_size, path, "a structured dtype (record array) is not supported");
            if (npy__string(&p, descr, sizeof descr) != 0)
                return npy__fail(err, err_size, path, "malformed header: 'descr' is not a string");
            if (npy__dtype_from_descr(descr, &a->dtype) != 0)
                return npy__fail(err, err_size, path, "dtype '%s' is not supported%s; supported: "
                                 "'<f4', '<i8', '<i4', '|u1', '<u2' (bf16 as uint16)", descr, npy__descr_hint(descr));
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (npy__word(&p, "True") == 0) fortran = 1;
            else if (npy__word(&p, "False") == 0) fortran = 0;
            else return npy__fail(err, err_size, path, "malformed header: 'fortran_order' is not True or False");
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (npy__shape(&p, &a->ndim, a->shape, path, err, err_size) != 0) return -1;
            have_shape = 1;
        } else {
            return npy__fail(err, err_size, path, "malformed header: unexpected key '%s'", key);
        }
        npy__skip_space(&p);
        if (p.s < p.end && *p.s == ',') { ++p.s; continue; }
        if (p.s < p.end && *p.s == '}') break;
        return npy__fail(err, err_size, path, "malformed header: expected ',' or '}'");
    }
    if (!have_descr || !have_order || !have_shape)
        return npy__fail(err, err_size, path, "malformed header: it lacks %s",
                         !have_descr ? "'descr'" : !have_order ? "'fortran_order'" : "'shape'");
    if (fortran) {
        int i, more_than_one = 0;
        for (i = 0; i < a->ndim; ++i) more_than_one += a->shape[i] > 1;
        if (more_than_one > 1)   /* a vector is the same in either order */
            return npy__fail(err, err_size, path, "Fortran-order (column-major) arrays are not supported: "
                             "save np.ascontiguousarray(a)");
    }
    return 0;
}

/* ------------------------------------------------------------------- read */

int npy_read(const char *path, npy_array *a, char *err, size_t err_size)
{
    unsigned char pre[12];
    size_t header_len, prefix_len, got, item;
    char *header = NULL;
    FILE *f;
    int64_t bytes, i;
    long end_pos;

    if (!path || !a) return npy__fail(err, err_size, path ? path : "(null)", "npy_read: NULL argument");
    memset(a, 0, sizeof *a);
    f = fopen(path, "rb");
    if (!f) return npy__fail(err, err_size, path, "cannot open: %s", strerror(errno));

    got = fread(pre, 1, 8, f);
    if (got < 8 || memcmp(pre, npy__magic, 6) != 0) {
        fclose(f);
        return npy__fail(err, err_size, path, "not a .npy file (it does not start with \\x93NUMPY)");
    }
    if (pre[6] == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) goto truncated_header;
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8;
        prefix_len = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 8, 1, 4, f) != 4) goto truncated_header;
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        prefix_len = 12;
        if (header_len > ((size_t)1 << 24)) {
            fclose(f);
            return npy__fail(err, err_size, path, "the header claims %lu bytes: not a sane .npy file",
                             (unsigned long)header_len);
        }
    } else {
        fclose(f);
        return npy__fail(err, err_size, path, "unknown .npy format version %d.%d (known: 1.0, 2.0, 3.0)",
                         pre[6], pre[7]);
    }
    header = (char *)malloc(header_len + 1);
    if (!header) { fclose(f); return npy__fail(err, err_size, path, "out of memory for the header"); }
    if (fread(header, 1, header_len, f) != header_len) { free(header); goto truncated_header; }
    header[header_len] = '\0';
    if (npy__parse_header(header, header_len, a, path, err, err_size) != 0) {
        free(header);
        fclose(f);
        return -1;
    }
    free(header);

    item = npy_dtype_size(a->dtype);
    a->count = 1;
    for (i = 0; i < a->ndim; ++i) {
        if (a->shape[i] != 0 && a->count > NPY__MAX_BYTES / (int64_t)item / a->shape[i]) {
            fclose(f);
            return npy__fail(err, err_size, path, "the array is too large (more than 2^46 bytes)");
        }
        a->count *= a->shape[i];
    }
    bytes = a->count * (int64_t)item;
    if ((uint64_t)bytes > (uint64_t)SIZE_MAX - 1) {
        fclose(f);
        return npy__fail(err, err_size, path, "the array does not fit in this machine's address space");
    }
    a->data = malloc(bytes > 0 ? (size_t)bytes : 1);
    if (!a->data) {
        fclose(f);
        return npy__fail(err, err_size, path, "out of memory for %lld bytes of data", (long long)bytes);
    }
    got = fread(a->data, 1, (size_t)bytes, f);
    if ((int64_t)got != bytes) {
        char shape[128];
        fclose(f);
        npy_free(a);
        return npy__fail(err, err_size, path, "truncated: shape %s of %s needs %lld bytes of data, the file holds %lld after its header",
                         npy_shape_string(a->ndim, a->shape, shape, sizeof shape), npy_dtype_descr(a->dtype),
                         (long long)bytes, (long long)got);
    }
    if (fgetc(f) != EOF) {
        fseek(f, 0, SEEK_END);
        end_pos = ftell(f);
        fclose(f);
        npy_free(a);
        return npy__fail(err, err_size, path, "%ld bytes after the array's data: not one array as np.save writes it",
                         end_pos - (long)(prefix_len + header_len) - (long)bytes);
    }
    fclose(f);
    if (!npy__host_is_little_endian()) npy__swap(a->data, a->count, item);
    return 0;

truncated_header:
    fclose(f);
    return npy__fail(err, err_size, path, "truncated inside the header");
}

void npy_free(npy_array *a)
{
    if (!a) return;
    free(a->data);
    a->data = NULL;
}

/* ------------------------------------------------------------------- write */

int npy_write(const char *path, npy_dtype dt, int ndim, const int64_t *shape,
              const void *data, char *err, size_t err_size)
{
    char header[64 + 24 * NPY_MAX_DIMS + 64], shape_text[24 * NPY_MAX_DIMS + 8];
    unsigned char prefix[10];
    size_t len, total, item = npy_dtype_size(dt);
    int64_t count = 1, i;
    FILE *f;
    int ok;

    if (!path) return npy__fail(err, err_size, "(null)", "npy_write: NULL path");
    if (item == 0) return npy__fail(err, err_size, path, "npy_write: unknown dtype %d", (int)dt);
    if (ndim < 0 || ndim > NPY_MAX_DIMS || (ndim > 0 && !shape))
        return npy__fail(err, err_size, path, "npy_write: bad number of dimensions %d", ndim);
    for (i = 0; i < ndim; ++i) {
        if (shape[i] < 0 || (shape[i] != 0 && count > NPY__MAX_BYTES / (int64_t)item / shape[i]))
            return npy__fail(err, err_size, path, "npy_write: bad shape");
        count *= shape[i];
    }
    if (count > 0 && !data) return npy__fail(err, err_size, path, "npy_write: NULL data");

    len = (size_t)snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                           npy_dtype_descr(dt), npy_shape_string(ndim, shape, shape_text, sizeof shape_text));
    total = (10 + len + 1 + 63) / 64 * 64;        /* prefix + dict + '\n', padded to 64 */
    while (10 + len + 1 < total) header[len++] = ' ';
    header[len++] = '\n';
    memcpy(prefix, npy__magic, 6);
    prefix[6] = 1;
    prefix[7] = 0;
    prefix[8] = (unsigned char)(len & 0xff);
    prefix[9] = (unsigned char)(len >> 8);

    f = fopen(path, "wb");
    if (!f) return npy__fail(err, err_size, path, "cannot create: %s", strerror(errno));
    ok = fwrite(prefix, 1, 10, f) == 10 && fwrite(header, 1, len, f) == len;
    if (ok && npy__host_is_little_endian()) {
        ok = fwrite(data, item, (size_t)count, f) == (size_t)count;
    } else if (ok) {                                   /* big-endian host: swap a chunk at a time */
        unsigned char chunk[4096];
        const int64_t per = (int64_t)(sizeof chunk / item);
        for (i = 0; ok && i < count; i += per) {
            const int64_t n = count - i < per ? count - i : per;
            memcpy(chunk, (const unsigned char *)data + (size_t)i * item, (size_t)n * item);
            npy__swap(chunk, n, item);
            ok = fwrite(chunk, item, (size_t)n, f) == (size_t)n;
        }
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) return npy__fail(err, err_size, path, "write failed: %s", strerror(errno));
    return 0;
}

#endif /* NPY_IMPLEMENTATION */
