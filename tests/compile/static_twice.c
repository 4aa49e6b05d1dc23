/* VPPO_STATIC with the implementation, included twice, using only a few functions: must
   compile without a warning about the unused static functions, in C and in C++. */
#define VPPO_STATIC
#define VPPO_IMPLEMENTATION
#include "../../vppo.h"
#include "../../vppo.h"
#include <stdio.h>

int main(void)
{
    if (vppo_hash64(0) != 0xe220a8397b1dcdafull) { printf("static_twice: wrong hash\n"); return 1; }
    printf("VPPO_STATIC, included twice: ok (%s)\n", vppo_status_string(VPPO_OK));
    return 0;
}
