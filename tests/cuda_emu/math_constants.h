/* math_constants.h - the vppo CUDA emulator: the usual CUDART_* constants. */
#ifndef VPPO_EMU_MATH_CONSTANTS_H
#define VPPO_EMU_MATH_CONSTANTS_H
#include "cuda_runtime.h"

#define CUDART_INF_F        __int_as_float(0x7f800000)
#define CUDART_NAN_F        __int_as_float(0x7fffffff)
#define CUDART_MIN_DENORM_F __int_as_float(0x00000001)
#define CUDART_MAX_NORMAL_F __int_as_float(0x7f7fffff)
#define CUDART_NEG_ZERO_F   __int_as_float((int)0x80000000u)
#define CUDART_ZERO_F       0.0f
#define CUDART_ONE_F        1.0f
#define CUDART_PI_F         3.141592654f
#define CUDART_L2E_F        1.442695041f
#define CUDART_L10E_F       0.4342944819f
#define CUDART_LN2_F        0.693147181f
#define CUDART_LNT_F        2.302585093f
#define CUDART_SQRT_HALF_F  0.707106781f
#define CUDART_INF          __longlong_as_double(0x7ff0000000000000LL)
#define CUDART_NAN          __longlong_as_double((long long)0xfff8000000000000ULL)
#define CUDART_NEG_ZERO     __longlong_as_double((long long)0x8000000000000000ULL)
#define CUDART_ZERO         0.0
#define CUDART_ONE          1.0
#define CUDART_PI           3.1415926535897931e+0
#define CUDART_L2E          1.4426950408889634e+0
#define CUDART_L10E         4.3429448190325182e-1
#define CUDART_LN2          6.9314718055994529e-1
#define CUDART_LNT          2.3025850929940459e+0
#define CUDART_SQRT_HALF    7.0710678118654757e-1
#endif
