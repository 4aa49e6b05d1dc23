/* device_launch_parameters.h - the vppo CUDA emulator: threadIdx & co. are in cuda_runtime.h. */
#include "cuda_runtime.h"
