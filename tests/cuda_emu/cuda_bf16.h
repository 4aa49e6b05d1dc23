/* cuda_bf16.h - the vppo CUDA emulator: see vppo_emu_half.h. */
#include "vppo_emu_half.h"
