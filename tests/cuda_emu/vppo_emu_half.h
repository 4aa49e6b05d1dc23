/* vppo_emu_half.h - the vppo CUDA emulator: __half and __nv_bfloat16 (cuda_fp16.h and
   cuda_bf16.h include this file).

   Storage types of 2 bytes (pairs of 4 bytes, 4-byte aligned) with CUDA's conversions:
   float -> half/bf16 rounds to nearest even (overflow to infinity, NaN stays NaN), half/
   bf16 -> float is exact. Arithmetic operators compute in float and round the result,
   which for + - * / gives the correctly rounded half/bf16 result, as the GPU does. The
   half shuffles (__shfl*_sync) are provided too. Not provided: the packed half2 math
   intrinsics beyond those below, __hfma, and the rz/rd/ru conversion variants. */
#ifndef VPPO_EMU_HALF_H
#define VPPO_EMU_HALF_H
#include "cuda_runtime.h"

namespace vppo_emu {
namespace detail {

inline unsigned short float_to_half_bits(float f)
{
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));   /* NaN, quiet */
    if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);                           /* >= 65520: inf */
    if (ax < 0x38800000u) {                                                                   /* < 2^-14: subnormal */
        if (ax < 0x33000000u) return (unsigned short)sign;                                    /* < 2^-25: zero */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126u - e;
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (unsigned short)(sign | r);
    }
    uint32_t r = (ax - 0x38000000u) >> 13, rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (unsigned short)(sign | r);
}

inline float half_bits_to_float(unsigned short h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 0x3ffu, x;
    if (e == 0) {
        float v = (float)m * 5.9604644775390625e-08f;   /* 2^-24, exact */
        return sign ? -v : v;
    }
    if (e == 31) x = sign | 0x7f800000u | (m << 13);
    else x = sign | ((e + 112u) << 23) | (m << 13);
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

inline unsigned short float_to_bf16_bits(float f)
{
    uint32_t x;
    std::memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((x >> 16) | 0x40u);   /* NaN, quiet */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (unsigned short)(x >> 16);
}

inline float bf16_bits_to_float(unsigned short b)
{
    uint32_t x = (uint32_t)b << 16;
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

} /* namespace detail */
} /* namespace vppo_emu */

/* A 2-byte storage type H (and its pair H2) converting through TO_BITS / TO_FLOAT. */
#define VPPO_EMU_HALF_TYPE(H, H2, TO_BITS, TO_FLOAT)                                                 \
    struct __align__(2) H {                                                                          \
        unsigned short __x;                                                                          \
        H() = default;                                                                               \
        H(float f) : __x(vppo_emu::detail::TO_BITS(f)) {}                                             \
        operator float() const { return vppo_emu::detail::TO_FLOAT(__x); }                           \
    };                                                                                               \
    struct __align__(4) H2 { H x, y; };

VPPO_EMU_HALF_TYPE(__half, __half2, float_to_half_bits, half_bits_to_float)
VPPO_EMU_HALF_TYPE(__nv_bfloat16, __nv_bfloat162, float_to_bf16_bits, bf16_bits_to_float)
#undef VPPO_EMU_HALF_TYPE
typedef __half half;
typedef __half2 half2;
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;

#define VPPO_EMU_HALF_COMMON(H, H2, F2H, H2F)                                                         \
    inline H operator+(H a, H b) { return H((float)a + (float)b); }                                   \
    inline H operator-(H a, H b) { return H((float)a - (float)b); }                                   \
    inline H operator*(H a, H b) { return H((float)a * (float)b); }                                   \
    inline H operator/(H a, H b) { return H((float)a / (float)b); }                                   \
    inline H operator-(H a) { H r; r.__x = (unsigned short)(a.__x ^ 0x8000u); return r; }             \
    inline H &operator+=(H &a, H b) { return a = a + b; }                                             \
    inline H &operator-=(H &a, H b) { return a = a - b; }                                             \
    inline H &operator*=(H &a, H b) { return a = a * b; }                                             \
    inline H &operator/=(H &a, H b) { return a = a / b; }                                             \
    inline bool operator==(H a, H b) { return (float)a == (float)b; }                                 \
    inline bool operator!=(H a, H b) { return (float)a != (float)b; }                                 \
    inline bool operator<(H a, H b) { return (float)a < (float)b; }                                   \
    inline bool operator>(H a, H b) { return (float)a > (float)b; }                                   \
    inline bool operator<=(H a, H b) { return (float)a <= (float)b; }                                 \
    inline bool operator>=(H a, H b) { return (float)a >= (float)b; }                                 \
    inline H __hadd(H a, H b) { return a + b; }                                                       \
    inline H __hsub(H a, H b) { return a - b; }                                                       \
    inline H __hmul(H a, H b) { return a * b; }                                                       \
    inline H __hdiv(H a, H b) { return a / b; }                                                       \
    inline H __hneg(H a) { return -a; }                                                               \
    inline H __habs(H a) { H r; r.__x = (unsigned short)(a.__x & 0x7fffu); return r; }                \
    inline H __hmax(H a, H b) { return H(std::fmax((float)a, (float)b)); }                            \
    inline H __hmin(H a, H b) { return H(std::fmin((float)a, (float)b)); }                            \
    inline bool __hisnan(H a) { return std::isnan((float)a); }                                        \
    inline int __hisinf(H a) { float f = (float)a; return std::isinf(f) ? (f < 0 ? -1 : 1) : 0; }     \
    inline bool __heq(H a, H b) { return a == b; }                                                    \
    inline bool __hlt(H a, H b) { return a < b; }                                                     \
    inline bool __hgt(H a, H b) { return a > b; }                                                     \
    inline float __low2float(H2 a) { return (float)a.x; }                                            \
    inline float __high2float(H2 a) { return (float)a.y; }                                           \
    inline H __low2##F2H(H2 a) { return a.x; }                                                        \
    inline H __high2##F2H(H2 a) { return a.y; }                                                       \
    inline float2 H2F##2float2(H2 a) { return make_float2((float)a.x, (float)a.y); }                   \
    VPPO_EMU_SHUFFLES(H)                                                                              \
    VPPO_EMU_SHUFFLES(H2)                                                                             \
    inline H __float2##F2H(float f) { return H(f); }                                                 \
    inline H __float2##F2H##_rn(float f) { return H(f); }                                            \
    inline float __##F2H##2float(H h) { return (float)h; }                                           \
    inline unsigned short __##F2H##_as_ushort(H h) { return h.__x; }                                 \
    inline short __##F2H##_as_short(H h) { return (short)h.__x; }                                    \
    inline H __ushort_as_##F2H(unsigned short u) { H h; h.__x = u; return h; }                       \
    inline H __short_as_##F2H(short s) { H h; h.__x = (unsigned short)s; return h; }                \
    inline H2 __halves2##F2H##2(H a, H b) { H2 r; r.x = a; r.y = b; return r; }                      \
    inline H2 __floats2##F2H##2_rn(float a, float b) { return __halves2##F2H##2(H(a), H(b)); }       \
    inline H2 __float2##F2H##2_rn(float a) { return __floats2##F2H##2_rn(a, a); }                    \
    inline H2 __float22##F2H##2_rn(float2 a) { return __floats2##F2H##2_rn(a.x, a.y); }

VPPO_EMU_HALF_COMMON(__half, __half2, half, __half2)
VPPO_EMU_HALF_COMMON(__nv_bfloat16, __nv_bfloat162, bfloat16, __bfloat162)
#undef VPPO_EMU_HALF_COMMON

#endif /* VPPO_EMU_HALF_H */
