/* The implementation in its own C translation unit. */
#define VPPO_IMPLEMENTATION
#include "../../vppo.h"
