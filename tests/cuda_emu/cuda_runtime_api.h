/* cuda_runtime_api.h - the vppo CUDA emulator: everything is in cuda_runtime.h. */
#include "cuda_runtime.h"
