/* cuda_runtime.h - a CPU emulator of the CUDA runtime, for testing CUDA kernels on a
   machine without a GPU. Part of the vppo.h tests; MIT licence, see vppo.h.

   WHAT IT IS FOR
     vppo_cuda.cu is compiled as C++14 by the host compiler with this directory first
     on the include path:

       g++ -std=c++14 -x c++ -DVPPO_CUDA_EMULATE -Itests/cuda_emu -fno-strict-aliasing \
           -ffp-contract=off ... vppo_cuda.cu

     so that #include <cuda_runtime.h> lands here. The kernels are ordinary functions
     (__global__, __device__ expand to nothing) and are launched through

       template <class F> cudaError_t vppo_emu_launch(dim3 grid, dim3 block, cudaStream_t s, F body);

     where body is a callable, typically [=] { kernel(args...); }. The launch runs the
     whole grid before it returns, and checks what a GPU leaves undefined. It returns the
     launch's own error as cudaLaunchKernel does (a configuration error, or an injected
     or emulated launch failure; cudaSuccess for a launch recorded into a graph), so that
     code need not call cudaGetLastError, which would also take an error its caller left. A launch macro
     that works both ways:

       #ifdef VPPO_CUDA_EMULATE
       #define LAUNCH(k, g, b, s, ...) vppo_emu_launch((g), (b), (s), [=] { k(__VA_ARGS__); })
       #else
       #define LAUNCH(k, g, b, s, ...) k<<<(g), (b), 0, (s)>>>(__VA_ARGS__)
       #endif

     Also here: cuda_runtime_api.h, device_launch_parameters.h (both include this file),
     math_constants.h (CUDART_* constants), cuda_fp16.h and cuda_bf16.h (__half and
     __nv_bfloat16 storage types with their conversions).

   EXECUTION MODEL
     Blocks run one after another (x fastest, then y, then z). Within a block EVERY thread
     is a cooperative fiber with its own stack. A thread runs without interruption until it
     reaches a synchronisation point (__syncthreads*, a warp collective: __syncwarp,
     __shfl*_sync, __ballot_sync, __any/__all_sync, __match*_sync, __reduce*_sync) or
     returns; the threads that can run are then run in a fresh random order each round
     (seeded from VPPO_EMU_SEED), so a missing barrier changes results between seeds.
       threadIdx, blockIdx, blockDim, gridDim: per fiber; warpSize is 32; lane = linear
       thread id % 32, warp = linear id / 32, linear id = x + y*bx + z*bx*by.
       __syncthreads (and _count/_and/_or): every thread of the block must arrive, at the
       same __syncthreads of the source (file, line and column; VPPO_EMU_BARRIER_SITES=0
       lets different ones pair up, as sm_70+ hardware happens to). STRICT: a thread that
       returned while others wait at (or later reach) a __syncthreads is an error
       ("__syncthreads after some threads exited"), undefined on a GPU.
       Warp collectives: the calling lane must be in mask; all lanes named in mask must
       reach the same kind of collective with the same mask; each lane gets what the other
       lanes passed to that very call. A mask naming a lane that does not exist (partial
       last warp) or has exited is an error (VPPO_EMU_STRICT_MASK=0: such lanes are left
       out instead, as the CUDA documentation allows). A shuffle whose source lane is not
       in mask returns poison (a NaN pattern: 0x7FC0A5A5 / 0x7FF8A5A5A5A5A5A5 / 0x7EA5).
       __activemask() returns the lanes of the warp that exist and have not exited.
       Deadlock (no thread can run, e.g. some at __syncthreads and others at a warp
       collective that names them): an error naming the launch and the block.
       After any error inside a kernel the launch is abandoned: its remaining threads and
       blocks do not run and the launch reports cudaErrorLaunchFailure.
     __shared__ is `static` placed in a linker section (vppo_emu_shared): blocks run one
     at a time, so a function-local static IS block-shared memory. The whole section is
     filled before every block with 0xFF or 0x7F bytes (alternating; NaN/-1 or 3.4e38/
     2139062143 as floats/ints) because shared memory starts undefined on a GPU;
     VPPO_EMU_SHARED_FILL=none|<byte> changes that. Dynamic shared memory (extern
     __shared__) is NOT supported: it does not compile.
     Atomics are plain read-modify-writes (fibers never preempt one another).

   WHAT IT DOES NOT MODEL
     No preemption inside a segment (between two synchronisation points a thread's code
     runs as one piece), no memory model weaker than sequential consistency (a missing
     __threadfence or volatile is not found), no concurrency between blocks (a kernel that
     needs two blocks to run at the same time deadlocks on a GPU, not here), no texture or
     surface memory, no cooperative groups, no dynamic shared memory or clusters, no
     <<<>>> syntax, no separation between device and host address spaces beyond the checks
     below (host code may dereference a device pointer without complaint), no streams
     running concurrently (every operation completes when it is issued, except the
     deferred copies described below). Fast-math intrinsics mimic the hardware's
     formulas (__expf = exp2f(x * log2(e)) etc.), not its last bits;
     vppo_emu_ex2_approx_ftz(x) stands for PTX ex2.approx.ftz.f32 at its documented
     error bound (2^-22 relative) with its flush-to-zero. Host threads: one.

   DEVICE MEMORY
     Every device allocation (cudaMalloc, cudaMallocAsync) is host memory, 256-byte
     aligned, between two canary zones of a fixed pattern (256 bytes before, at least 64
     bytes right after the last byte), and its bytes start as 0xA5 (garbage). Metadata
     lives outside the block, in a sorted registry of live allocations.
       cudaFree/cudaFreeAsync check the canaries (corruption: an error naming the
       allocation by serial number and size), then fill the block with 0xDD and keep it
       in a quarantine (64 MiB, VPPO_EMU_QUARANTINE_MB): a write after free is reported
       when the block leaves the quarantine (vppo_emu_flush_quarantine() forces that).
       Freeing a pointer that is not a live allocation returns cudaErrorInvalidValue and
       is an error (a double free says so; NULL is fine).
       cudaMemcpy* and cudaMemset* check that every device-side range lies inside one live
       allocation and that host-side pointers are not device memory (kinds are checked,
       cudaMemcpyDefault infers them): else an error and cudaErrorInvalidValue.
       After every launch all canaries are checked (VPPO_EMU_CHECK_LAUNCH=0 turns it off),
       so an overflow is reported with the launch that did it.
       Under AddressSanitizer the canaries and freed blocks are also poisoned, so a kernel
       touching them stops at once with ASan's report.
     cudaMallocHost/cudaHostAlloc: host memory filled with 0xA5. A cudaMemcpyAsync from
     the device into such pinned memory is DEFERRED: the destination reads 0xA5 until the
     stream (or device, or a later event) is synchronised, as on a GPU where the copy has
     not happened yet (VPPO_EMU_DEFER_D2H=0: copy at once). Into pageable memory the copy
     is immediate, as in CUDA.

   STREAM CAPTURE AND GRAPHS
     cudaStreamBeginCapture(s, mode) on a created stream (the legacy and per-thread
     streams are refused: cudaErrorStreamCaptureUnsupported) records instead of running
     every launch (with a copy of its body), cudaMemsetAsync and cudaMemcpyAsync issued to
     s until cudaStreamEndCapture(s, &graph); cudaStreamIsCapturing reports it.
     cudaGraphInstantiate copies the operations; cudaGraphLaunch(exec, stream) runs them in
     order on that stream, each as if issued then (a copy reads its source at replay, a
     launch checks its configuration at replay). cudaGraphDestroy, cudaGraphExecDestroy.
     While any capture is active, what would synchronise or allocate outside the graph
     (cudaStreamSynchronize, cudaDeviceSynchronize, cudaEventSynchronize, cudaMemcpy,
     cudaMemset, cudaMalloc*, cudaFree*, cudaMallocHost; allocation and freeing are
     allowed in cudaStreamCaptureModeRelaxed) fails with cudaErrorStreamCaptureUnsupported
     and invalidates the capture: cudaStreamEndCapture then returns
     cudaErrorStreamCaptureInvalidated and no graph. Not emulated: event record/wait
     nodes, cross-stream capture, graphs launched into a capture, graph updates.

   HOST-WORK COUNTERS (for asserting that a call does none of it)
     vppo_emu_sync_count()            cudaStreamSynchronize/Query, cudaDeviceSynchronize,
                                      cudaEventSynchronize/Query calls
     vppo_emu_alloc_count()           cudaMalloc, cudaMallocAsync, cudaMallocHost/HostAlloc,
                                      cudaFree, cudaFreeAsync calls (not cudaFreeHost)
     vppo_emu_blocking_copy_count()   cudaMemcpy, cudaMemset, cudaMemcpy{To,From}Symbol, and
                                      cudaMemcpyAsync between device and pageable host memory
                                      (the host waits for those on a GPU)
     vppo_emu_graph_launch_count()    cudaGraphLaunch calls
     vppo_emu_graph_ops(graph)        operations recorded in a graph (or an executable graph)

   ERRORS AND cudaGetLastError
     Every runtime call that fails records its error; cudaGetLastError returns the last
     one and clears it (cudaPeekAtLastError does not clear). Launch configuration errors
     (cudaErrorInvalidConfiguration, cudaErrorInvalidResourceHandle for a bad stream)
     mean the kernel did not run. Execution failures (an emulator error in a kernel, an
     injected launch failure: cudaErrorLaunchFailure) are reported ONCE, by whichever
     comes first of cudaGetLastError and the next synchronising call (cudaMemcpy,
     cudaStreamSynchronize, cudaDeviceSynchronize, cudaEventSynchronize); they are not
     sticky as on a GPU.
     An emulator error (a bug in the code under test, found by a check above) prints
     "vppo-emu: error: ..." on stderr and calls abort(); with vppo_emu_set_abort(0) or
     VPPO_EMU_ABORT=0 it is counted and execution continues.

   TEST HOOKS (C++ inline functions)
     long   vppo_emu_live_allocations(void)   live device allocations
     size_t vppo_emu_live_bytes(void)         their requested bytes
     int    vppo_emu_check_canaries(void)     checks all live allocations; number corrupted
                                              (each one is also an emulator error)
     long   vppo_emu_error_count(void)        emulator errors so far
     void   vppo_emu_set_abort(int)           1 (default): abort on an emulator error
     void   vppo_emu_fail_alloc_after(long n) the (n+1)-th following device allocation fails
                                              with cudaErrorMemoryAllocation; -1 disables
     void   vppo_emu_fail_launch_after(long n) the (n+1)-th following valid launch does not
                                              run: cudaErrorLaunchFailure
     void   vppo_emu_fail_memcpy_after(long n) the (n+1)-th following cudaMemcpy* (also
                                              ToSymbol/FromSymbol) copies nothing and
                                              returns cudaErrorUnknown
     long   vppo_emu_launch_count(void)       calls of vppo_emu_launch so far
     int    vppo_emu_is_device_pointer(const void *p)  p inside a live device allocation
     void   vppo_emu_set_seed(unsigned long long) / vppo_emu_get_seed(void)
     unsigned long long vppo_emu_switch_count(void)   fiber resumptions so far
     int    vppo_emu_uses_ucontext(void)      1 if fibers switch with swapcontext
     int    vppo_emu_flush_quarantine(void)   checks and releases freed blocks; number
                                              written after free
     void   vppo_emu_set_strict_mask(int)     as VPPO_EMU_STRICT_MASK
     void   vppo_emu_set_barrier_sites(int)   as VPPO_EMU_BARRIER_SITES
     vppo_emu_launch_named(name, grid, block, stream, body): a launch with a name for the
     messages (otherwise the name is the lambda's type, e.g. "f(int)::{lambda()#1}").
     vppo_emu_launch(grid, block, shared_bytes, stream, body): shared_bytes must be 0.

   ENVIRONMENT
     VPPO_EMU_SEED=<n>          seed of the thread order (default 1); each launch derives
                                its own from the seed and its number
     VPPO_EMU_ABORT=0|1         as vppo_emu_set_abort
     VPPO_EMU_STACK_KB=<n>      fiber stack size (default 64, 256 under ASan), guard page below
     VPPO_EMU_STRICT_MASK=0|1   see warp collectives (default 1)
     VPPO_EMU_BARRIER_SITES=0|1 see __syncthreads (default 1)
     VPPO_EMU_SHARED_FILL=...   none | a byte value (default: 0xFF/0x7F alternating)
     VPPO_EMU_SHUFFLE_BLOCKS=1  run the blocks of a grid in a random order
     VPPO_EMU_CHECK_LAUNCH=0|1  canary check after every launch (default 1)
     VPPO_EMU_DEFER_D2H=0|1     deferred device-to-pinned copies (default 1)
     VPPO_EMU_QUARANTINE_MB=<n> freed-block quarantine (default 64)

   BUILD NOTES
     Fibers switch with a few lines of x86-64 assembly; elsewhere, with -DVPPO_EMU_UCONTEXT,
     or when the process runs with a CET shadow stack, they use makecontext/swapcontext
     (slower: a system call per switch). The switches are annotated for AddressSanitizer,
     which then also sees overflows of fiber stacks and of device allocations. A kernel
     that needs more stack than VPPO_EMU_STACK_KB dies with SIGSEGV on the guard page.
     Not supported: ThreadSanitizer, several host threads using the emulator at once,
     exceptions leaving a kernel (reported as an error), runtime calls from inside a
     kernel (fatal). Every translation unit of a program must be compiled with the same
     VPPO_EMU_* macros. __noinline__ is a macro (as in CUDA): standard headers that spell
     __attribute__((__noinline__)) must be included before this one; the usual ones are
     included here first. */
#ifndef VPPO_EMU_CUDA_RUNTIME_H
#define VPPO_EMU_CUDA_RUNTIME_H

#if !defined(__cplusplus) || __cplusplus < 201402L
#error "the vppo CUDA emulator (tests/cuda_emu) needs C++14 or later"
#endif

/* Standard headers first: some spell __noinline__, which is a macro below. */
#include <algorithm>
#include <chrono>
#include <cmath>
#include <math.h>
#include <cstdarg>
#include <cstddef>
#include <cfloat>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>
#include <cxxabi.h>
#include <sys/mman.h>
#include <unistd.h>

#define VPPO_CUDA_EMULATOR 1
#define VPPO_EMU_CUDA_ARCH 900   /* what the emulator pretends to be; __CUDA_ARCH__ stays undefined */
#ifndef CUDART_VERSION
#define CUDART_VERSION 13000
#endif

/* ---------------------------------------------------------------- build switches */

#if defined(__SANITIZE_ADDRESS__)
#define VPPO_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VPPO_EMU_ASAN 1
#endif
#endif
#ifdef VPPO_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/asan_interface.h>
#define VPPO_EMU_NO_ASAN __attribute__((no_sanitize_address))
#else
#define VPPO_EMU_NO_ASAN
#endif

/* The assembly switch on x86-64 unless VPPO_EMU_UCONTEXT; makecontext/swapcontext otherwise,
   and at run time when a shadow stack is active (the assembly switch does not maintain one). */
#if !defined(VPPO_EMU_UCONTEXT) && defined(__x86_64__) && !defined(__ILP32__)
#define VPPO_EMU_ASM_SWITCH 1
#endif
#include <ucontext.h>

/* ---------------------------------------------------------------- qualifiers */

#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __shared__ static __attribute__((section("vppo_emu_shared"), used))
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __builtin_align__(n) __attribute__((aligned(n)))
#define __grid_constant__
#define __device_builtin__
#define CUDART_CB

/* ---------------------------------------------------------------- vector types */

#define VPPO_EMU_VEC2(T, N, A) \
    struct alignas(A) N##2 { T x, y; }; \
    inline N##2 make_##N##2(T x, T y) { N##2 v; v.x = x; v.y = y; return v; }
#define VPPO_EMU_VEC3(T, N) \
    struct N##3 { T x, y, z; }; \
    inline N##3 make_##N##3(T x, T y, T z) { N##3 v; v.x = x; v.y = y; v.z = z; return v; }
#define VPPO_EMU_VEC4(T, N, A) \
    struct alignas(A) N##4 { T x, y, z, w; }; \
    inline N##4 make_##N##4(T x, T y, T z, T w) { N##4 v; v.x = x; v.y = y; v.z = z; v.w = w; return v; }

VPPO_EMU_VEC2(signed char, char, 2)       VPPO_EMU_VEC4(signed char, char, 4)
VPPO_EMU_VEC2(unsigned char, uchar, 2)    VPPO_EMU_VEC4(unsigned char, uchar, 4)
VPPO_EMU_VEC2(short, short, 4)            VPPO_EMU_VEC4(short, short, 8)
VPPO_EMU_VEC2(unsigned short, ushort, 4)  VPPO_EMU_VEC4(unsigned short, ushort, 8)
VPPO_EMU_VEC2(int, int, 8)        VPPO_EMU_VEC3(int, int)        VPPO_EMU_VEC4(int, int, 16)
VPPO_EMU_VEC2(unsigned int, uint, 8) VPPO_EMU_VEC3(unsigned int, uint) VPPO_EMU_VEC4(unsigned int, uint, 16)
VPPO_EMU_VEC2(float, float, 8)    VPPO_EMU_VEC3(float, float)    VPPO_EMU_VEC4(float, float, 16)
VPPO_EMU_VEC2(double, double, 16)
VPPO_EMU_VEC2(long long, longlong, 16)
VPPO_EMU_VEC2(unsigned long long, ulonglong, 16)

#undef VPPO_EMU_VEC2
#undef VPPO_EMU_VEC3
#undef VPPO_EMU_VEC4

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

/* ---------------------------------------------------------------- runtime types */

enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidSymbol = 13,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorIllegalState = 401,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureImplicit = 906,
    cudaErrorUnknown = 999
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxBlockDimX = 2,
    cudaDevAttrMaxBlockDimY = 3,
    cudaDevAttrMaxBlockDimZ = 4,
    cudaDevAttrMaxGridDimX = 5,
    cudaDevAttrMaxGridDimY = 6,
    cudaDevAttrMaxGridDimZ = 7,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrTotalConstantMemory = 9,
    cudaDevAttrWarpSize = 10,
    cudaDevAttrMaxRegistersPerBlock = 12,
    cudaDevAttrClockRate = 13,
    cudaDevAttrGpuOverlap = 15,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrKernelExecTimeout = 17,
    cudaDevAttrIntegrated = 18,
    cudaDevAttrCanMapHostMemory = 19,
    cudaDevAttrComputeMode = 20,
    cudaDevAttrConcurrentKernels = 31,
    cudaDevAttrEccEnabled = 32,
    cudaDevAttrPciBusId = 33,
    cudaDevAttrPciDeviceId = 34,
    cudaDevAttrMemoryClockRate = 36,
    cudaDevAttrGlobalMemoryBusWidth = 37,
    cudaDevAttrL2CacheSize = 38,
    cudaDevAttrMaxThreadsPerMultiProcessor = 39,
    cudaDevAttrAsyncEngineCount = 40,
    cudaDevAttrUnifiedAddressing = 41,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerMultiprocessor = 81,
    cudaDevAttrMaxRegistersPerMultiprocessor = 82,
    cudaDevAttrManagedMemory = 83,
    cudaDevAttrPageableMemoryAccess = 88,
    cudaDevAttrConcurrentManagedAccess = 89,
    cudaDevAttrCooperativeLaunch = 95,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
    cudaDevAttrMaxBlocksPerMultiprocessor = 106,
    cudaDevAttrMemoryPoolsSupported = 115
};

enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9
};

enum cudaMemPoolAttr {
    cudaMemPoolReuseFollowEventDependencies = 1,
    cudaMemPoolReuseAllowOpportunistic = 2,
    cudaMemPoolReuseAllowInternalDependencies = 3,
    cudaMemPoolAttrReleaseThreshold = 4,
    cudaMemPoolAttrReservedMemCurrent = 5,
    cudaMemPoolAttrReservedMemHigh = 6,
    cudaMemPoolAttrUsedMemCurrent = 7,
    cudaMemPoolAttrUsedMemHigh = 8
};

struct CUstream_st;
struct CUevent_st;
struct CUmemPoolHandle_st;
typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
typedef struct CUmemPoolHandle_st *cudaMemPool_t;
struct CUgraph_st;
struct CUgraphExec_st;
typedef struct CUgraph_st *cudaGraph_t;
typedef struct CUgraphExec_st *cudaGraphExec_t;

enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2
};

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaHostAllocMapped 0x02
#define cudaHostAllocWriteCombined 0x04

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int regsPerBlock;
    int warpSize;
    size_t memPitch;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int clockRate;            /* kHz; gone from CUDA 13's struct: prefer cudaDeviceGetAttribute */
    size_t totalConstMem;
    int major;
    int minor;
    size_t textureAlignment;
    int multiProcessorCount;
    int integrated;
    int canMapHostMemory;
    int concurrentKernels;
    int ECCEnabled;
    int pciBusID;
    int pciDeviceID;
    int pciDomainID;
    int asyncEngineCount;
    int unifiedAddressing;
    int memoryClockRate;      /* kHz; gone from CUDA 13's struct: prefer cudaDeviceGetAttribute */
    int memoryBusWidth;
    int l2CacheSize;
    int persistingL2CacheMaxSize;
    int maxThreadsPerMultiProcessor;
    size_t sharedMemPerMultiprocessor;
    int regsPerMultiprocessor;
    int managedMemory;
    int cooperativeLaunch;
    size_t sharedMemPerBlockOptin;
    int maxBlocksPerMultiProcessor;
    int memoryPoolsSupported;
};

/* ---------------------------------------------------------------- fiber switch */

/* Linker-made bounds of the __shared__ section (weak: absent when nothing is __shared__). */
extern "C" char __start_vppo_emu_shared[] __attribute__((weak));
extern "C" char __stop_vppo_emu_shared[] __attribute__((weak));

namespace vppo_emu {
namespace detail {

/* ---------------------------------------------------------------- state */

enum { TS_READY, TS_BARRIER, TS_WARP, TS_EXITED, TS_DEAD };

enum WarpOp {
    W_SYNC, W_SHFL_IDX, W_SHFL_UP, W_SHFL_DOWN, W_SHFL_XOR, W_BALLOT, W_ANY, W_ALL,
    W_MATCH_ANY, W_MATCH_ALL, W_RED_ADD, W_RED_MIN_U, W_RED_MAX_U, W_RED_MIN_S, W_RED_MAX_S,
    W_RED_AND, W_RED_OR, W_RED_XOR
};

struct Ctx {
    void *sp;          /* assembly switch */
    ucontext_t uc;     /* makecontext/swapcontext */
};

#ifdef VPPO_EMU_ASM_SWITCH
/* ctx_switch_asm(save_sp, load_sp): pushes the callee-saved registers, MXCSR and the x87
   control word on the current stack, stores the stack pointer in *save_sp, loads load_sp
   and pops the same from there. ctx_init prepares a new fiber's stack so that these pops
   end in ctx_trampoline, which calls r13(r12). Naked inline functions rather than
   top-level assembly, so that link-time optimisation keeps one copy. */
__attribute__((naked, noinline)) inline void ctx_switch_asm(void ** /*save_sp*/, void * /*load_sp*/)
{
    __asm__ volatile(
        "pushq %rbp\n\t"
        "pushq %rbx\n\t"
        "pushq %r12\n\t"
        "pushq %r13\n\t"
        "pushq %r14\n\t"
        "pushq %r15\n\t"
        "subq $8, %rsp\n\t"
        "stmxcsr (%rsp)\n\t"
        "fnstcw 4(%rsp)\n\t"
        "movq %rsp, (%rdi)\n\t"
        "movq %rsi, %rsp\n\t"
        "ldmxcsr (%rsp)\n\t"
        "fldcw 4(%rsp)\n\t"
        "addq $8, %rsp\n\t"
        "popq %r15\n\t"
        "popq %r14\n\t"
        "popq %r13\n\t"
        "popq %r12\n\t"
        "popq %rbx\n\t"
        "popq %rbp\n\t"
        "ret\n\t");
}

__attribute__((naked, noinline)) inline void ctx_trampoline()
{
    __asm__ volatile(
        ".cfi_undefined rip\n\t"   /* the outermost frame of a fiber */
        "movq %r12, %rdi\n\t"
        "callq *%r13\n\t"
        "ud2\n\t");
}

/* A shadow stack (CET) is active: RDSSP reads its pointer, and is a no-op leaving 0 when
   there is none (also on processors without CET). Only builds for shadow stacks check. */
inline bool shadow_stack_active()
{
#if defined(__CET__) && (__CET__ & 2)
    unsigned long long ssp = 0;
    __asm__ volatile("rdsspq %0" : "+r"(ssp));
    return ssp != 0;
#else
    return false;
#endif
}
#endif

struct Fiber {
    Ctx ctx;
    unsigned char *stack_lo;   /* usable stack, above the guard page */
    size_t stack_size;
    void *asan_fake;
    uint3 tid;
    unsigned linear, lane, warp;
    int state;
    bool dirty;                /* left mid-run (abandoned): unpoison the whole stack */
    int bkind, bpred, bresult; /* __syncthreads variant, predicate, result */
    const char *bfile;         /* where it waits */
    int bline, bcol;
    int wop, wsize, wparam, wwidth, wpred;   /* warp collective in progress */
    unsigned wmask;
    const char *wname;
    uint64_t wval, wresult;
};

struct Launch {
    long number;
    const char *name;
    const std::type_info *type;
    std::string name_buf;
    dim3 grid, block;
    uint3 block_idx;
    unsigned nthreads;
    void (*invoke)(void *);
    void *body;
    Ctx sched;
    const void *sched_bottom;
    size_t sched_size;
    int n_barrier, n_exited, n_warp_wait;
    bool abandon;
    int barrier_first;         /* a thread waiting at __syncthreads (its site is the barrier's) */
    uint64_t rng;
    Fiber **fibers;
};

struct Alloc {
    uintptr_t base;        /* user pointer */
    size_t size;           /* requested bytes */
    unsigned char *raw;    /* malloc'd block: front canary, user bytes, rear canary */
    size_t raw_size;
    long serial;
    long launch_at;        /* launches before it was made */
    bool async;
};

struct Deferred {
    unsigned char *dst;
    std::vector<unsigned char> data;
    cudaStream_t stream;
    long seq;
};

const size_t kFront = 256;
const unsigned kStreamMagic = 0x5354524du, kEventMagic = 0x45564e54u, kGraphMagic = 0x47524150u;
const unsigned char kFill = 0xA5, kFreed = 0xDD;

struct StreamObj { unsigned magic; unsigned flags; bool live; };

/* Stream capture: the operations issued to a capturing stream are recorded, not run; a
   graph replays them, in order, on the stream it is launched on. */
typedef std::function<void(cudaStream_t)> Op;
struct GraphObj { unsigned magic; bool live; std::vector<Op> ops; };
struct Capture { GraphObj *graph; cudaStreamCaptureMode mode; bool invalid; };
struct EventObj {
    unsigned magic; unsigned flags; bool live; bool recorded;
    std::chrono::steady_clock::time_point t;
    cudaStream_t stream; long seq;
};

inline long env_long(const char *name, long dflt)
{
    const char *v = std::getenv(name);
    if (!v || !*v) return dflt;
    char *end = nullptr;
    long r = std::strtol(v, &end, 0);
    return (end && *end == '\0') ? r : dflt;
}

struct State {
    bool abort_on_error, strict_mask, check_launch, defer_d2h, shuffle_blocks, use_ucontext, barrier_sites;
    int shared_fill;                     /* -1 alternate, -2 none, else a byte */
    uint64_t seed;
    size_t stack_size, quarantine_limit;
    long error_count = 0;
    cudaError_t last_error = cudaSuccess, pending_exec = cudaSuccess;
    long fail_alloc = -1, fail_launch = -1, fail_memcpy = -1;
    long launches = 0, alloc_serial = 0, op_seq = 0, blocks_run = 0;
    long syncs = 0, alloc_calls = 0, blocking_copies = 0, graph_launches = 0;   /* the test hooks' counters */
    std::map<cudaStream_t, Capture> captures;
    std::set<const void *> graphs;   /* ever created (GraphObj, also behind cudaGraphExec_t) */
    unsigned long long switches = 0;
    int device = 0;
    std::map<uintptr_t, Alloc> live;
    size_t live_bytes = 0;
    std::map<uintptr_t, Alloc> quarantine;
    std::deque<uintptr_t> quarantine_order;
    size_t quarantine_bytes = 0;
    std::set<uintptr_t> freed;
    std::map<uintptr_t, size_t> pinned;
    std::vector<Deferred> deferred;
    std::set<const void *> streams, events;   /* ever created (never freed, so stale handles stay recognisable) */
    std::vector<Fiber *> fibers;
    std::vector<unsigned> order;
    State()
    {
        abort_on_error = env_long("VPPO_EMU_ABORT", 1) != 0;
        strict_mask = env_long("VPPO_EMU_STRICT_MASK", 1) != 0;
        check_launch = env_long("VPPO_EMU_CHECK_LAUNCH", 1) != 0;
        defer_d2h = env_long("VPPO_EMU_DEFER_D2H", 1) != 0;
        shuffle_blocks = env_long("VPPO_EMU_SHUFFLE_BLOCKS", 0) != 0;
        barrier_sites = env_long("VPPO_EMU_BARRIER_SITES", 1) != 0;
        const char *sf = std::getenv("VPPO_EMU_SHARED_FILL");
        shared_fill = -1;
        if (sf && std::strcmp(sf, "none") == 0) shared_fill = -2;
        else if (sf && *sf) shared_fill = (int)(env_long("VPPO_EMU_SHARED_FILL", 0) & 0xff);
        seed = (uint64_t)env_long("VPPO_EMU_SEED", 1);
#ifdef VPPO_EMU_ASAN
        long kb = env_long("VPPO_EMU_STACK_KB", 256);
#else
        long kb = env_long("VPPO_EMU_STACK_KB", 64);
#endif
        if (kb < 16) kb = 16;
        stack_size = (size_t)kb * 1024;
        long qmb = env_long("VPPO_EMU_QUARANTINE_MB", 64);
        quarantine_limit = qmb < 0 ? 0 : (size_t)qmb << 20;
#ifdef VPPO_EMU_ASM_SWITCH
        use_ucontext = shadow_stack_active();
#else
        use_ucontext = true;
#endif
    }
};

/* Never destroyed: host code may free device memory from static destructors. */
inline State &st()
{
    static State *s = new State();
    return *s;
}

inline Fiber *&tl_fiber()
{
    static thread_local Fiber *f = nullptr;
    return f;
}
inline Launch *&tl_launch()
{
    static thread_local Launch *l = nullptr;
    return l;
}

/* ---------------------------------------------------------------- reporting */

/* "vppo-emu: <kind>: <message>" on stderr, after stdout has been flushed. */
inline void print_message(const char *kind, const char *fmt, va_list ap)
{
    std::fflush(stdout);
    std::fprintf(stderr, "vppo-emu: %s: ", kind);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
}

__attribute__((format(printf, 1, 2))) inline void report(const char *fmt, ...)
{
    State &s = st();
    s.error_count++;
    va_list ap;
    va_start(ap, fmt);
    print_message("error", fmt, ap);
    va_end(ap);
    if (s.abort_on_error) {
        std::fputs("vppo-emu: aborting (VPPO_EMU_ABORT=0 or vppo_emu_set_abort(0) counts errors and goes on)\n", stderr);
        std::fflush(stderr);
        std::abort();
    }
    std::fflush(stderr);
}

/* Misuse of the emulator itself (device function on the host, ...): always fatal. */
__attribute__((format(printf, 1, 2), noreturn)) inline void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_message("fatal", fmt, ap);
    va_end(ap);
    std::fflush(stderr);
    std::abort();
}

inline const char *launch_name(Launch *L)
{
    if (L->name) return L->name;
    if (L->name_buf.empty()) {
        L->name_buf = "kernel";
        if (L->type) {
            int status = 0;
            char *d = abi::__cxa_demangle(L->type->name(), nullptr, nullptr, &status);
            L->name_buf = (status == 0 && d) ? d : L->type->name();
            std::free(d);
        }
    }
    return L->name_buf.c_str();
}

inline cudaError_t api_error(cudaError_t e)
{
    if (e != cudaSuccess) st().last_error = e;
    return e;
}

/* Execution errors: reported once, by cudaGetLastError or the next synchronising call. */
inline void exec_error(cudaError_t e)
{
    st().last_error = e;
    st().pending_exec = e;
}

inline cudaError_t take_pending()
{
    State &s = st();
    cudaError_t e = s.pending_exec;
    if (e != cudaSuccess) {
        s.pending_exec = cudaSuccess;
        if (s.last_error == e) s.last_error = cudaSuccess;
    }
    return e;
}

/* ---------------------------------------------------------------- random order */

inline uint64_t splitmix(uint64_t &x)
{
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline void shuffle(unsigned *a, unsigned n, uint64_t &rng)
{
    for (unsigned i = n; i > 1; i--) {
        unsigned j = (unsigned)(((splitmix(rng) >> 32) * (uint64_t)i) >> 32);
        unsigned t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ---------------------------------------------------------------- fibers */

inline void asan_start(void **fake, const void *bottom, size_t size)
{
#ifdef VPPO_EMU_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake; (void)bottom; (void)size;
#endif
}
inline void asan_finish(void *fake, const void **bottom_old, size_t *size_old)
{
#ifdef VPPO_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom_old, size_old);
#else
    (void)fake; (void)bottom_old; (void)size_old;
#endif
}

inline void ctx_switch(Ctx *from, Ctx *to)
{
#ifdef VPPO_EMU_ASM_SWITCH
    if (!st().use_ucontext) {
        ctx_switch_asm(&from->sp, to->sp);
        return;
    }
#endif
    if (swapcontext(&from->uc, &to->uc) != 0) fatal("swapcontext failed");
}

[[noreturn]] inline void thread_exit(Launch *L, Fiber *f);

inline void fiber_main(void *arg)
{
    Fiber *f = static_cast<Fiber *>(arg);
    Launch *L = tl_launch();
    asan_finish(nullptr, &L->sched_bottom, &L->sched_size);
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
    try {
        L->invoke(L->body);
    } catch (...) {
        report("launch #%ld (%s), block (%u,%u,%u), thread (%u,%u,%u): an exception left the kernel",
               L->number, launch_name(L), L->block_idx.x, L->block_idx.y, L->block_idx.z,
               f->tid.x, f->tid.y, f->tid.z);
        L->abandon = true;
    }
#else
    L->invoke(L->body);
#endif
    thread_exit(L, f);
}

inline void fiber_main_uc() { fiber_main(tl_fiber()); }

inline void ctx_init(Fiber *f)
{
#ifdef VPPO_EMU_ASAN
    /* Frames that never returned (the previous run's fiber_main and what it called)
       leave poisoned redzones near the top; an abandoned run may leave them anywhere. */
    size_t n = f->dirty ? f->stack_size : std::min<size_t>(f->stack_size, 16384);
    __asan_unpoison_memory_region(f->stack_lo + f->stack_size - n, n);
#endif
    f->dirty = false;
    f->asan_fake = nullptr;
#ifdef VPPO_EMU_ASM_SWITCH
    if (!st().use_ucontext) {
        uintptr_t top = ((uintptr_t)(f->stack_lo + f->stack_size)) & ~(uintptr_t)15;
        uint64_t *sp = reinterpret_cast<uint64_t *>(top - 64);
        uint32_t mxcsr;
        uint16_t fpucw;
        __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
        __asm__ volatile("fnstcw %0" : "=m"(fpucw));
        sp[0] = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
        sp[1] = 0;                                                   /* r15 */
        sp[2] = 0;                                                   /* r14 */
        sp[3] = (uint64_t)reinterpret_cast<uintptr_t>(&fiber_main);  /* r13 */
        sp[4] = (uint64_t)reinterpret_cast<uintptr_t>(f);            /* r12 */
        sp[5] = 0;                                                   /* rbx */
        sp[6] = 0;                                                   /* rbp */
        sp[7] = (uint64_t)reinterpret_cast<uintptr_t>(&ctx_trampoline);
        f->ctx.sp = sp;
        return;
    }
#endif
    if (getcontext(&f->ctx.uc) != 0) fatal("getcontext failed");
    f->ctx.uc.uc_stack.ss_sp = f->stack_lo;
    f->ctx.uc.uc_stack.ss_size = f->stack_size;
    f->ctx.uc.uc_link = nullptr;
    makecontext(&f->ctx.uc, fiber_main_uc, 0);
}

inline Fiber *new_fiber(size_t stack_size)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    size_t size = (stack_size + page - 1) / page * page;
    void *m = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fatal("cannot map a %zu-byte fiber stack", size + page);
    if (mprotect(m, page, PROT_NONE) != 0) fatal("cannot protect a fiber stack guard page");
    Fiber *f = new Fiber();
    f->stack_lo = static_cast<unsigned char *>(m) + page;
    f->stack_size = size;
    f->state = TS_DEAD;
    f->dirty = false;
    return f;
}

/* Scheduler -> fiber f, until f yields. */
inline void resume(Launch *L, Fiber *f)
{
    tl_fiber() = f;
    st().switches++;
    void *fake = nullptr;
    asan_start(&fake, f->stack_lo, f->stack_size);
    ctx_switch(&L->sched, &f->ctx);
    asan_finish(fake, nullptr, nullptr);
    tl_fiber() = nullptr;
}

/* Fiber -> scheduler. final: the fiber never runs again. */
inline void yield(Launch *L, Fiber *f, bool final)
{
    asan_start(final ? nullptr : &f->asan_fake, L->sched_bottom, L->sched_size);
    ctx_switch(&f->ctx, &L->sched);
    asan_finish(f->asan_fake, &L->sched_bottom, &L->sched_size);
}

inline Fiber *cur(const char *what)
{
    Fiber *f = tl_fiber();
    if (!f) fatal("%s used outside a kernel launched with vppo_emu_launch", what);
    return f;
}

/* An error inside a kernel: report it, abandon the launch; never returns. */
__attribute__((format(printf, 2, 3), noreturn)) inline void device_error(Fiber *f, const char *fmt, ...)
{
    Launch *L = tl_launch();
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report("launch #%ld (%s), block (%u,%u,%u), thread (%u,%u,%u) [warp %u lane %u]: %s",
           L->number, launch_name(L), L->block_idx.x, L->block_idx.y, L->block_idx.z,
           f->tid.x, f->tid.y, f->tid.z, f->warp, f->lane, msg);
    L->abandon = true;
    f->state = TS_DEAD;
    f->dirty = true;
    yield(L, f, true);
    fatal("an abandoned fiber was resumed");
}

/* ---------------------------------------------------------------- warp collectives */

inline unsigned existing_lanes(Launch *L, unsigned warp)
{
    unsigned base = warp * 32u, n = L->nthreads - base;
    return n >= 32 ? 0xffffffffu : ((1u << n) - 1u);
}

inline unsigned exited_lanes(Launch *L, unsigned warp)
{
    unsigned m = 0, base = warp * 32u, ex = existing_lanes(L, warp);
    for (unsigned j = 0; j < 32; j++)
        if ((ex >> j & 1u) && (L->fibers[base + j]->state == TS_EXITED || L->fibers[base + j]->state == TS_DEAD))
            m |= 1u << j;
    return m;
}

/* Source lane of a shuffle, as PTX shfl.sync defines it (c = segment mask, clamp). */
inline int shfl_source(int op, int lane, int b, int width)
{
    int bval = b & 31, segmask = (32 - width) & 31;
    int cval = op == W_SHFL_UP ? 0 : 31;
    int max_lane = (lane & segmask) | (cval & ~segmask);
    int min_lane = lane & segmask;
    int j = lane;
    bool ok = false;
    switch (op) {
    case W_SHFL_UP: j = lane - bval; ok = j >= max_lane; break;
    case W_SHFL_DOWN: j = lane + bval; ok = j <= max_lane; break;
    case W_SHFL_XOR: j = lane ^ bval; ok = j <= max_lane; break;
    default: j = min_lane | (bval & ~segmask); ok = j <= max_lane; break;
    }
    return ok ? j : lane;
}

inline uint64_t poison_bits(int size)
{
    return size == 8 ? 0x7FF8A5A5A5A5A5A5ull : size == 4 ? 0x7FC0A5A5ull : 0x7EA5ull;
}

inline uint64_t sign_extend(uint64_t v, int size)
{
    if (size == 4) return (uint64_t)(int64_t)(int32_t)(uint32_t)v;
    return v;
}

/* All lanes of `eff` wait at this collective: compute every lane's result, wake them. */
inline void complete_warp(Launch *L, unsigned warp, unsigned eff)
{
    Fiber **w = L->fibers + warp * 32u;
    Fiber *first = nullptr;
    for (unsigned j = 0; j < 32; j++)
        if (eff >> j & 1u) { first = w[j]; break; }
    if (!first) return;
    int op = first->wop, size = first->wsize;
    uint64_t vmask = size == 8 ? ~0ull : ((1ull << (8 * size)) - 1ull);
    unsigned ballot = 0;
    uint64_t acc = 0;
    bool all_equal = true;
    for (unsigned j = 0; j < 32; j++) {
        if (!(eff >> j & 1u)) continue;
        uint64_t v = w[j]->wval & vmask;
        if (v != 0) ballot |= 1u << j;
        if ((w[j]->wval & vmask) != (first->wval & vmask)) all_equal = false;
        if (j == (unsigned)__builtin_ctz(eff)) { acc = v; continue; }
        switch (op) {
        case W_RED_ADD: acc = (acc + v) & vmask; break;
        case W_RED_MIN_U: acc = v < acc ? v : acc; break;
        case W_RED_MAX_U: acc = v > acc ? v : acc; break;
        case W_RED_MIN_S: acc = (int64_t)sign_extend(v, size) < (int64_t)sign_extend(acc, size) ? v : acc; break;
        case W_RED_MAX_S: acc = (int64_t)sign_extend(v, size) > (int64_t)sign_extend(acc, size) ? v : acc; break;
        case W_RED_AND: acc &= v; break;
        case W_RED_OR: acc |= v; break;
        case W_RED_XOR: acc ^= v; break;
        default: break;
        }
    }
    for (unsigned j = 0; j < 32; j++) {
        if (!(eff >> j & 1u)) continue;
        Fiber *f = w[j];
        switch (op) {
        case W_SHFL_IDX: case W_SHFL_UP: case W_SHFL_DOWN: case W_SHFL_XOR: {
            int src = shfl_source(op, (int)j, f->wparam, f->wwidth);
            f->wresult = (eff >> src & 1u) ? (w[src]->wval & vmask) : poison_bits(size);
            break;
        }
        case W_BALLOT: f->wresult = ballot; break;
        case W_ANY: f->wresult = ballot != 0; break;
        case W_ALL: f->wresult = ballot == eff; break;
        case W_MATCH_ANY: {
            unsigned m = 0;
            for (unsigned k = 0; k < 32; k++)
                if ((eff >> k & 1u) && (w[k]->wval & vmask) == (f->wval & vmask)) m |= 1u << k;
            f->wresult = m;
            break;
        }
        case W_MATCH_ALL: f->wresult = all_equal ? eff : 0u; f->wpred = all_equal; break;
        case W_SYNC: f->wresult = 0; break;
        default: f->wresult = acc; break;
        }
        f->state = TS_READY;
        L->n_warp_wait--;
    }
}

/* Lanes of `mask` that take part (strict: all of them; relaxed: those still running). */
inline unsigned effective_mask(Launch *L, unsigned warp, unsigned mask)
{
    if (st().strict_mask) return mask;
    return mask & existing_lanes(L, warp) & ~exited_lanes(L, warp);
}

inline void try_complete(Launch *L, unsigned warp, unsigned mask, int op, int size)
{
    unsigned eff = effective_mask(L, warp, mask);
    Fiber **w = L->fibers + warp * 32u;
    for (unsigned j = 0; j < 32; j++) {
        if (!(eff >> j & 1u)) continue;
        Fiber *g = w[j];
        if (g->state != TS_WARP || g->wmask != mask || g->wop != op || g->wsize != size) return;
    }
    complete_warp(L, warp, eff);
}

inline const char *state_name(int s)
{
    switch (s) {
    case TS_READY: return "running";
    case TS_BARRIER: return "waiting at __syncthreads";
    case TS_WARP: return "waiting at a warp collective";
    case TS_EXITED: return "exited";
    default: return "abandoned";
    }
}

inline uint64_t warp_collective(const char *name, int op, int size, unsigned mask, uint64_t val,
                                int param, int width)
{
    Fiber *f = cur(name);
    Launch *L = tl_launch();
    unsigned lane = f->lane, warp = f->warp;
    Fiber **w = L->fibers + warp * 32u;
    if (!(mask >> lane & 1u))
        device_error(f, "%s(mask=0x%08x): the calling lane %u is not in mask", name, mask, lane);
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
        device_error(f, "%s: width %d is not a power of two in [1, 32]", name, width);
    unsigned ex = existing_lanes(L, warp);
    if (st().strict_mask) {
        if (mask & ~ex)
            device_error(f, "%s(mask=0x%08x): the mask names lanes that do not exist (0x%08x; warp %u has %u threads, the block %u)",
                         name, mask, mask & ~ex, warp, (unsigned)__builtin_popcount(ex), L->nthreads);
        unsigned gone = exited_lanes(L, warp) & mask;
        if (gone)
            device_error(f, "%s(mask=0x%08x): the mask names lanes that have exited (0x%08x)", name, mask, gone);
    }
    unsigned eff = effective_mask(L, warp, mask);
    for (unsigned j = 0; j < 32; j++) {
        if (!(eff >> j & 1u) || j == lane) continue;
        Fiber *g = w[j];
        if (g->state == TS_WARP && (g->wmask != mask || g->wop != op || g->wsize != size))
            device_error(f, "%s(mask=0x%08x) meets lane %u waiting in %s(mask=0x%08x): all lanes of a mask must reach the same collective with the same mask",
                         name, mask, j, g->wname, g->wmask);
    }
    f->wop = op;
    f->wsize = size;
    f->wmask = mask;
    f->wval = val;
    f->wparam = param;
    f->wwidth = width;
    f->wname = name;
    f->wpred = 0;
    f->state = TS_WARP;
    L->n_warp_wait++;
    try_complete(L, warp, mask, op, size);
    yield(L, f, false);
    return f->wresult;
}

/* A lane of the warp has exited: strict, it must not be awaited; relaxed, it may complete a group. */
inline void warp_lane_exited(Launch *L, Fiber *f)
{
    Fiber **w = L->fibers + f->warp * 32u;
    for (unsigned j = 0; j < 32; j++) {
        if (w + j >= L->fibers + L->nthreads) break;
        Fiber *g = w[j];
        if (g->state != TS_WARP || !(g->wmask >> f->lane & 1u)) continue;
        if (st().strict_mask) {
            f->state = TS_DEAD;
            device_error(f, "exited while lane %u waits in %s(mask=0x%08x), whose mask names this lane",
                         j, g->wname, g->wmask);
        }
        try_complete(L, f->warp, g->wmask, g->wop, g->wsize);
    }
}

/* ---------------------------------------------------------------- block barrier */

inline int block_barrier(const char *name, int kind, int pred, const char *file, int line, int col)
{
    Fiber *f = cur(name);
    Launch *L = tl_launch();
    f->bfile = file;
    f->bline = line;
    f->bcol = col;
    if (L->n_exited > 0) {
        unsigned who = 0;
        for (unsigned i = 0; i < L->nthreads; i++)
            if (L->fibers[i]->state == TS_EXITED) { who = i; break; }
        Fiber *g = L->fibers[who];
        device_error(f, "__syncthreads after some threads exited: %s at %s:%d reached, but %d thread(s) of the block already returned (e.g. thread (%u,%u,%u))",
                     name, file, line, L->n_exited, g->tid.x, g->tid.y, g->tid.z);
    }
    if (L->n_barrier > 0 && st().barrier_sites) {
        Fiber *g = L->fibers[L->barrier_first];
        if (g->bline != line || g->bcol != col || std::strcmp(g->bfile, file) != 0)
            device_error(f, "%s at %s:%d:%d, while thread (%u,%u,%u) waits at the one at %s:%d:%d: all threads of a block must reach the same __syncthreads (VPPO_EMU_BARRIER_SITES=0 allows this)",
                         name, file, line, col, g->tid.x, g->tid.y, g->tid.z, g->bfile, g->bline, g->bcol);
        if (g->bkind != kind)
            device_error(f, "%s meets thread (%u,%u,%u) waiting in a different __syncthreads variant",
                         name, g->tid.x, g->tid.y, g->tid.z);
    }
    if (L->n_barrier == 0) L->barrier_first = (int)f->linear;
    f->bkind = kind;
    f->bpred = pred != 0;
    f->state = TS_BARRIER;
    L->n_barrier++;
    yield(L, f, false);
    return f->bresult;
}

[[noreturn]] inline void thread_exit(Launch *L, Fiber *f)
{
    if (L->abandon) {
        f->state = TS_DEAD;
        yield(L, f, true);
        fatal("an abandoned fiber was resumed");
    }
    f->state = TS_EXITED;
    L->n_exited++;
    if (L->n_barrier > 0) {
        unsigned who = 0;
        for (unsigned i = 0; i < L->nthreads; i++)
            if (L->fibers[i]->state == TS_BARRIER) { who = i; break; }
        Fiber *g = L->fibers[who];
        f->state = TS_DEAD;
        device_error(f, "__syncthreads after some threads exited: this thread returned while %d thread(s) wait at __syncthreads (e.g. thread (%u,%u,%u) at %s:%d)",
                     L->n_barrier, g->tid.x, g->tid.y, g->tid.z, g->bfile, g->bline);
    }
    warp_lane_exited(L, f);
    yield(L, f, true);
    fatal("an exited fiber was resumed");
}

/* ---------------------------------------------------------------- scheduler */

inline void deadlock(Launch *L)
{
    char detail[1024];
    size_t used = 0;
    int shown = 0;
    detail[0] = '\0';
    for (unsigned i = 0; i < L->nthreads && shown < 3; i++) {
        Fiber *f = L->fibers[i];
        if (f->state != TS_WARP) continue;
        unsigned missing = effective_mask(L, f->warp, f->wmask);
        Fiber **w = L->fibers + f->warp * 32u;
        for (unsigned j = 0; j < 32; j++)
            if ((missing >> j & 1u) && w[j]->state == TS_WARP && w[j]->wmask == f->wmask) missing &= ~(1u << j);
        unsigned first = missing ? (unsigned)__builtin_ctz(missing) : 0;
        int n = std::snprintf(detail + used, sizeof detail - used,
                              "; thread (%u,%u,%u) [warp %u lane %u] waits in %s(mask=0x%08x) for lanes 0x%08x (lane %u is %s)",
                              f->tid.x, f->tid.y, f->tid.z, f->warp, f->lane, f->wname, f->wmask, missing,
                              first, missing ? state_name(w[first]->state) : "?");
        if (n < 0 || (size_t)n >= sizeof detail - used) break;
        used += (size_t)n;
        shown++;
    }
    char site[300] = "";
    if (L->n_barrier > 0) {
        Fiber *g = L->fibers[L->barrier_first];
        std::snprintf(site, sizeof site, " (%s:%d)", g->bfile, g->bline);
    }
    report("launch #%ld (%s), block (%u,%u,%u): deadlock: no thread can go on (%d of %u at __syncthreads%s, %d at warp collectives, %d exited)%s",
           L->number, launch_name(L), L->block_idx.x, L->block_idx.y, L->block_idx.z,
           L->n_barrier, L->nthreads, site, L->n_warp_wait, L->n_exited, detail);
    for (unsigned i = 0; i < L->nthreads; i++)
        if (L->fibers[i]->state != TS_EXITED) L->fibers[i]->dirty = true;
    L->abandon = true;
}

inline void fill_shared(Launch *L)
{
    State &s = st();
    if (s.shared_fill == -2 || !__start_vppo_emu_shared || !__stop_vppo_emu_shared) return;
    int byte = s.shared_fill >= 0 ? s.shared_fill : (((uint64_t)L->number + (uint64_t)s.blocks_run) & 1u) ? 0x7F : 0xFF;
    size_t n = (size_t)(__stop_vppo_emu_shared - __start_vppo_emu_shared);
    std::memset(__start_vppo_emu_shared, byte, n);
}

/* Runs one block to the end; false when the launch was abandoned. */
inline bool run_block(Launch *L)
{
    State &s = st();
    unsigned n = L->nthreads;
    fill_shared(L);
    s.blocks_run++;
    for (unsigned i = 0; i < n; i++) {
        Fiber *f = L->fibers[i];
        ctx_init(f);
        f->state = TS_READY;
        f->linear = i;
        f->lane = i % 32u;
        f->warp = i / 32u;
        f->tid.x = i % L->block.x;
        f->tid.y = (i / L->block.x) % L->block.y;
        f->tid.z = i / (L->block.x * L->block.y);
    }
    L->n_barrier = L->n_exited = L->n_warp_wait = 0;
    unsigned *order = s.order.data();
    for (;;) {
        unsigned nready = 0;
        for (unsigned i = 0; i < n; i++)
            if (L->fibers[i]->state == TS_READY) order[nready++] = i;
        if (nready == 0) {
            if (L->n_exited == (int)n) return true;
            if (L->n_barrier == (int)n) {
                int count = 0;
                for (unsigned i = 0; i < n; i++) count += L->fibers[i]->bpred;
                for (unsigned i = 0; i < n; i++) {
                    Fiber *f = L->fibers[i];
                    f->bresult = f->bkind == 1 ? count : f->bkind == 2 ? (count == (int)n) : f->bkind == 3 ? (count > 0) : 0;
                    f->state = TS_READY;
                }
                L->n_barrier = 0;
                continue;
            }
            deadlock(L);
            return false;
        }
        shuffle(order, nready, L->rng);
        for (unsigned k = 0; k < nready; k++) {
            Fiber *f = L->fibers[order[k]];
            if (f->state != TS_READY) continue;
            resume(L, f);
            if (L->abandon) {
                for (unsigned i = 0; i < n; i++)
                    if (L->fibers[i]->state != TS_EXITED) L->fibers[i]->dirty = true;
                return false;
            }
        }
    }
}

inline bool valid_stream(cudaStream_t s)
{
    if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return true;
    if (!st().streams.count(s)) return false;
    const StreamObj *o = reinterpret_cast<const StreamObj *>(s);
    return o->magic == kStreamMagic && o->live;
}

inline int check_canaries_all(const char *when);

inline cudaError_t launch_impl(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                        void (*invoke)(void *), void *body, const char *name, const std::type_info *type)
{
    State &s = st();
    long number = ++s.launches;
    if (tl_fiber()) fatal("vppo_emu_launch called inside a kernel (dynamic parallelism is not emulated)");
    if (shared_bytes != 0) {
        report("launch #%ld (%s): %zu bytes of dynamic shared memory requested; the emulator does not support dynamic shared memory",
               number, name ? name : "kernel", shared_bytes);
        return api_error(cudaErrorNotSupported);
    }
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535u || grid.z > 65535u ||
        block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024u || block.y > 1024u || block.z > 64u ||
        (uint64_t)block.x * block.y * block.z > 1024u) {
        return api_error(cudaErrorInvalidConfiguration);
    }
    if (!valid_stream(stream)) {
        return api_error(cudaErrorInvalidResourceHandle);
    }
    if (s.fail_launch >= 0 && s.fail_launch-- == 0) {
        exec_error(cudaErrorLaunchFailure);
        return cudaErrorLaunchFailure;
    }
    Launch L;
    L.number = number;
    L.name = name;
    L.type = type;
    L.grid = grid;
    L.block = block;
    L.nthreads = block.x * block.y * block.z;
    L.invoke = invoke;
    L.body = body;
    L.sched_bottom = nullptr;
    L.sched_size = 0;
    L.abandon = false;
    uint64_t r = s.seed ^ (0xD1B54A32D192ED03ull * (uint64_t)number);
    L.rng = splitmix(r);
    while (s.fibers.size() < L.nthreads) s.fibers.push_back(new_fiber(s.stack_size));
    if (s.order.size() < L.nthreads) s.order.resize(L.nthreads);
    L.fibers = s.fibers.data();
    uint64_t nblocks = (uint64_t)grid.x * grid.y * grid.z;
    std::vector<unsigned> perm;
    if (s.shuffle_blocks && nblocks > 1 && nblocks <= 0xffffffffull) {
        perm.resize((size_t)nblocks);
        for (unsigned i = 0; i < (unsigned)nblocks; i++) perm[i] = i;
        shuffle(perm.data(), (unsigned)nblocks, L.rng);
    }
    tl_launch() = &L;
    bool ok = true;
    for (uint64_t b = 0; b < nblocks && ok; b++) {
        uint64_t lin = perm.empty() ? b : perm[(size_t)b];
        L.block_idx.x = (unsigned)(lin % grid.x);
        L.block_idx.y = (unsigned)((lin / grid.x) % grid.y);
        L.block_idx.z = (unsigned)(lin / ((uint64_t)grid.x * grid.y));
        ok = run_block(&L);
    }
    tl_launch() = nullptr;
    if (!ok) exec_error(cudaErrorLaunchFailure);
    if (s.check_launch) {
        char when[512];
        std::snprintf(when, sizeof when, "after launch #%ld (%s)", number, launch_name(&L));
        check_canaries_all(when);
    }
    return ok ? cudaSuccess : cudaErrorLaunchFailure;
}

template <class F>
void invoke_body(void *p)
{
    (*static_cast<F *>(p))();
}

template <class F>
const std::type_info *type_of()
{
#if defined(__GXX_RTTI) || defined(__cpp_rtti)
    return &typeid(F);
#else
    return nullptr;
#endif
}

/* ---------------------------------------------------------------- device memory */

inline unsigned char canary_byte(size_t k) { return (unsigned char)(0xC3u ^ (unsigned)(k * 0x9Du)); }

inline size_t rear_len(size_t size) { return (size + 63) / 64 * 64 - size + 64; }

/* Under AddressSanitizer: [p, p + n) made unaddressable (poisoned) or addressable again. */
inline void set_poisoned(const void *p, size_t n, bool poisoned)
{
#ifdef VPPO_EMU_ASAN
    if (poisoned) __asan_poison_memory_region(p, n);
    else __asan_unpoison_memory_region(p, n);
#else
    (void)p; (void)n; (void)poisoned;
#endif
}
inline void poison_region(const void *p, size_t n) { set_poisoned(p, n, true); }
inline void unpoison_region(const void *p, size_t n) { set_poisoned(p, n, false); }

inline void write_canaries(const Alloc &a)
{
    unpoison_region(a.raw, kFront);
    unpoison_region(a.raw + kFront + a.size, rear_len(a.size));
    for (size_t k = 0; k < kFront; k++) a.raw[k] = canary_byte(k);
    unsigned char *rear = a.raw + kFront + a.size;
    for (size_t k = 0; k < rear_len(a.size); k++) rear[k] = canary_byte(kFront + k);
    poison_region(a.raw, kFront);
    poison_region(rear, rear_len(a.size));
}

/* Offset of the first damaged canary byte relative to the user pointer, or 0 if intact
   (front damage gives a negative offset, rear damage an offset >= size). */
VPPO_EMU_NO_ASAN inline bool canary_damage(const Alloc &a, long long *where)
{
    for (size_t k = 0; k < kFront; k++)
        if (a.raw[k] != canary_byte(k)) { *where = (long long)k - (long long)kFront; return true; }
    const unsigned char *rear = a.raw + kFront + a.size;
    for (size_t k = 0; k < rear_len(a.size); k++)
        if (rear[k] != canary_byte(kFront + k)) { *where = (long long)(a.size + k); return true; }
    return false;
}

VPPO_EMU_NO_ASAN inline bool freed_damage(const Alloc &a, size_t *where)
{
    const unsigned char *u = a.raw + kFront;
    for (size_t k = 0; k < a.size; k++)
        if (u[k] != kFreed) { *where = k; return true; }
    return false;
}

inline bool check_one(const Alloc &a, const char *when)
{
    long long where = 0;
    if (!canary_damage(a, &where)) return true;
    report("device allocation #%ld (%zu bytes at %p, made after %ld launches%s): canary overwritten at byte offset %lld %s, detected %s",
           a.serial, a.size, (void *)a.base, a.launch_at, a.async ? ", cudaMallocAsync" : "", where,
           where < 0 ? "(before the start)" : "(past the end)", when);
    write_canaries(a);   /* report each corruption once */
    return false;
}

inline int check_canaries_all(const char *when)
{
    int bad = 0;
    for (auto &kv : st().live)
        if (!check_one(kv.second, when)) bad++;
    return bad;
}

inline void release_block(const Alloc &a)
{
    unpoison_region(a.raw, a.raw_size);
    std::free(a.raw);
}

/* Drops quarantined blocks until at most `keep` bytes remain; number written after free. */
inline int drain_quarantine(size_t keep)
{
    State &s = st();
    int bad = 0;
    while (!s.quarantine_order.empty() && (s.quarantine_bytes > keep || keep == 0)) {
        uintptr_t key = s.quarantine_order.front();
        s.quarantine_order.pop_front();
        auto it = s.quarantine.find(key);
        if (it == s.quarantine.end()) continue;
        Alloc a = it->second;
        s.quarantine.erase(it);
        s.quarantine_bytes -= a.raw_size;
        size_t where = 0;
        if (freed_damage(a, &where)) {
            report("device allocation #%ld (%zu bytes at %p) was written after cudaFree (byte offset %zu)",
                   a.serial, a.size, (void *)a.base, where);
            bad++;
        }
        check_one(a, "when it left the free quarantine");
        release_block(a);
    }
    return bad;
}

enum { MEM_HOST, MEM_DEVICE, MEM_NEAR, MEM_FREED };

struct Where {
    int kind;
    const Alloc *a;
};

inline Where classify(const void *p)
{
    State &s = st();
    uintptr_t u = (uintptr_t)p;
    Where w = {MEM_HOST, nullptr};
    auto it = s.live.upper_bound(u);
    if (it != s.live.begin()) {
        const Alloc &a = std::prev(it)->second;
        if (u < a.base + a.size || (a.size == 0 && u == a.base)) { w.kind = MEM_DEVICE; w.a = &a; return w; }
        if (u < a.base + a.size + rear_len(a.size)) { w.kind = MEM_NEAR; w.a = &a; return w; }
    }
    if (it != s.live.end() && u + kFront >= it->second.base) { w.kind = MEM_NEAR; w.a = &it->second; return w; }
    auto q = s.quarantine.upper_bound(u);
    if (q != s.quarantine.begin()) {
        const Alloc &a = std::prev(q)->second;
        if (u < a.base + a.size + rear_len(a.size)) { w.kind = MEM_FREED; w.a = &a; return w; }
    }
    return w;
}

/* Checks [p, p+n) for device use; false after reporting. */
inline bool device_range(const char *api, const char *role, const void *p, size_t n)
{
    if (!p) {
        report("%s: the %s pointer is NULL", api, role);
        return false;
    }
    Where w = classify(p);
    switch (w.kind) {
    case MEM_DEVICE:
        if ((uintptr_t)p + n <= w.a->base + w.a->size) return true;
        report("%s: the %s range [%p, +%zu) runs %zu bytes past the end of device allocation #%ld (%zu bytes at %p)",
               api, role, p, n, (size_t)((uintptr_t)p + n - (w.a->base + w.a->size)), w.a->serial, w.a->size,
               (void *)w.a->base);
        return false;
    case MEM_NEAR:
        report("%s: the %s pointer %p lies in the canary zone of device allocation #%ld (%zu bytes at %p)",
               api, role, p, w.a->serial, w.a->size, (void *)w.a->base);
        return false;
    case MEM_FREED:
        report("%s: the %s pointer %p is in device allocation #%ld (%zu bytes at %p), which was freed",
               api, role, p, w.a->serial, w.a->size, (void *)w.a->base);
        return false;
    default:
        report("%s: the %s pointer %p is not device memory", api, role, p);
        return false;
    }
}

inline bool host_range(const char *api, const char *role, const void *p)
{
    if (!p) {
        report("%s: the %s pointer is NULL", api, role);
        return false;
    }
    Where w = classify(p);
    if (w.kind == MEM_HOST) return true;
    report("%s: the %s pointer %p should be host memory but is (next to) device allocation #%ld (%zu bytes at %p): wrong cudaMemcpyKind?",
           api, role, p, w.a->serial, w.a->size, (void *)w.a->base);
    return false;
}

inline bool in_pinned(const void *p, size_t n)
{
    State &s = st();
    uintptr_t u = (uintptr_t)p;
    auto it = s.pinned.upper_bound(u);
    if (it == s.pinned.begin()) return false;
    --it;
    return u + n <= it->first + it->second && u >= it->first;
}

inline bool overlaps(const void *a, size_t na, const void *b, size_t nb)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y + nb && y < x + na;
}

/* Completes deferred copies: all (stream == nullptr && seq < 0), those of one stream, or
   those of one stream issued before seq. */
inline Capture *capture_of(cudaStream_t s)
{
    auto it = st().captures.find(s);
    return it == st().captures.end() ? nullptr : &it->second;
}

/* A call that a GPU forbids while a stream is being captured (it would synchronise, or
   allocate outside the graph): it fails and every capture is invalidated, as in the
   global capture mode (the relaxed mode allows allocation and freeing). */
inline bool refused_by_capture(bool allocation)
{
    State &s = st();
    bool refused = false;
    for (auto &c : s.captures)
        if (!(allocation && c.second.mode == cudaStreamCaptureModeRelaxed)) { c.second.invalid = true; refused = true; }
    if (refused) api_error(cudaErrorStreamCaptureUnsupported);
    return refused;
}

/* Records op if stream is capturing (then true: the caller does not run it now). */
inline bool recorded(cudaStream_t stream, Op op)
{
    Capture *c = capture_of(stream);
    if (!c) return false;
    if (!c->invalid) c->graph->ops.push_back(std::move(op));
    return true;
}

/* A copy between device memory and pageable host memory waits for the host. */
inline bool blocking_kind(const void *dst, const void *src, size_t count)
{
    const bool dst_host = classify(dst).kind == MEM_HOST, src_host = classify(src).kind == MEM_HOST;
    return (dst_host && !in_pinned(dst, count)) || (src_host && !in_pinned(src, count));
}

inline void flush_deferred(bool all, cudaStream_t stream, long before_seq)
{
    State &s = st();
    std::vector<Deferred> keep;
    for (auto &d : s.deferred) {
        bool go = all || (d.stream == stream && (before_seq < 0 || d.seq < before_seq));
        if (go) {
            if (!d.data.empty()) std::memcpy(d.dst, d.data.data(), d.data.size());
        } else {
            keep.push_back(std::move(d));
        }
    }
    s.deferred.swap(keep);
}

inline bool is_legacy(cudaStream_t s) { return s == nullptr || s == cudaStreamLegacy; }

inline void host_only(const char *api)
{
    if (tl_fiber()) fatal("%s called inside a kernel", api);
}

inline cudaError_t alloc_device(void **p, size_t size, bool async)
{
    host_only("cudaMalloc");
    State &s = st();
    if (!p) return api_error(cudaErrorInvalidValue);
    ++s.alloc_calls;
    if (refused_by_capture(true)) return cudaErrorStreamCaptureUnsupported;
    if (s.fail_alloc >= 0 && s.fail_alloc-- == 0) return api_error(cudaErrorMemoryAllocation);
    if (size > ((size_t)1 << 40)) return api_error(cudaErrorMemoryAllocation);
    size_t raw_size = kFront + size + rear_len(size);
    void *raw = nullptr;
    if (posix_memalign(&raw, 256, raw_size) != 0 || !raw) return api_error(cudaErrorMemoryAllocation);
    Alloc a;
    a.raw = static_cast<unsigned char *>(raw);
    a.raw_size = raw_size;
    a.base = (uintptr_t)(a.raw + kFront);
    a.size = size;
    a.serial = ++s.alloc_serial;
    a.launch_at = s.launches;
    a.async = async;
    std::memset(a.raw + kFront, kFill, size);
    write_canaries(a);
    s.live[a.base] = a;
    s.live_bytes += size;
    s.freed.erase(a.base);
    *p = (void *)a.base;
    return cudaSuccess;
}

inline cudaError_t free_device(const char *api, void *p)
{
    host_only(api);
    State &s = st();
    if (!p) return cudaSuccess;
    ++s.alloc_calls;
    if (refused_by_capture(true)) return cudaErrorStreamCaptureUnsupported;
    uintptr_t u = (uintptr_t)p;
    auto it = s.live.find(u);
    if (it == s.live.end()) {
        if (s.freed.count(u))
            report("%s(%p): double free of a device allocation", api, p);
        else {
            Where w = classify(p);
            if (w.kind == MEM_DEVICE || w.kind == MEM_NEAR)
                report("%s(%p): not the start of a device allocation (inside or next to allocation #%ld, %zu bytes at %p)",
                       api, p, w.a->serial, w.a->size, (void *)w.a->base);
            else
                report("%s(%p): not a device allocation", api, p);
        }
        return api_error(cudaErrorInvalidValue);
    }
    Alloc a = it->second;
    char when[64];
    std::snprintf(when, sizeof when, "at %s", api);
    check_one(a, when);
    s.live.erase(it);
    s.live_bytes -= a.size;
    s.freed.insert(u);
    std::memset(a.raw + kFront, kFreed, a.size);
    if (s.quarantine_limit == 0) {
        release_block(a);
        return cudaSuccess;
    }
    poison_region(a.raw + kFront, a.size);
    s.quarantine[a.base] = a;
    s.quarantine_order.push_back(a.base);
    s.quarantine_bytes += a.raw_size;
    drain_quarantine(s.quarantine_limit);
    return cudaSuccess;
}

inline cudaError_t memcpy_impl(const char *api, void *dst, const void *src, size_t count, cudaMemcpyKind kind,
                               bool async, cudaStream_t stream)
{
    host_only(api);
    State &s = st();
    if (async && !valid_stream(stream)) return api_error(cudaErrorInvalidResourceHandle);
    if ((int)kind < 0 || (int)kind > 4) return api_error(cudaErrorInvalidMemcpyDirection);
    if (!async && refused_by_capture(false)) return cudaErrorStreamCaptureUnsupported;
    if (async && recorded(stream, [=](cudaStream_t on) { memcpy_impl(api, dst, src, count, kind, true, on); }))
        return cudaSuccess;
    if (!async || blocking_kind(dst, src, count)) ++s.blocking_copies;
    if (!async) flush_deferred(true, nullptr, -1);
    if (s.fail_memcpy >= 0 && s.fail_memcpy-- == 0) return api_error(cudaErrorUnknown);
    if (count == 0) return cudaSuccess;
    bool dst_dev, src_dev;
    if (kind == cudaMemcpyDefault) {
        Where wd = classify(dst), ws = classify(src);
        dst_dev = wd.kind != MEM_HOST;
        src_dev = ws.kind != MEM_HOST;
    } else {
        dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
        src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    }
    bool ok = dst_dev ? device_range(api, "destination", dst, count) : host_range(api, "destination", dst);
    ok = (src_dev ? device_range(api, "source", src, count) : host_range(api, "source", src)) && ok;
    if (!ok) return api_error(cudaErrorInvalidValue);
    if (!src_dev) {
        /* a host source may be the target of a deferred copy issued earlier */
        for (auto &d : s.deferred)
            if (overlaps(d.dst, d.data.size(), src, count)) { flush_deferred(true, nullptr, -1); break; }
    }
    if (async && src_dev && !dst_dev && s.defer_d2h && in_pinned(dst, count)) {
        Deferred d;
        d.dst = static_cast<unsigned char *>(dst);
        d.data.assign(static_cast<const unsigned char *>(src), static_cast<const unsigned char *>(src) + count);
        d.stream = stream;
        d.seq = ++s.op_seq;
        std::memset(dst, kFill, count);
        s.deferred.push_back(std::move(d));
        return cudaSuccess;
    }
    std::memmove(dst, src, count);
    return cudaSuccess;
}

inline cudaError_t memset_impl(const char *api, void *p, int value, size_t count, bool async, cudaStream_t stream)
{
    host_only(api);
    if (async && !valid_stream(stream)) return api_error(cudaErrorInvalidResourceHandle);
    if (!async && refused_by_capture(false)) return cudaErrorStreamCaptureUnsupported;
    if (async && recorded(stream, [=](cudaStream_t on) { memset_impl(api, p, value, count, true, on); }))
        return cudaSuccess;
    if (!async) ++st().blocking_copies;
    if (count == 0) return cudaSuccess;
    if (!device_range(api, "destination", p, count)) return api_error(cudaErrorInvalidValue);
    std::memset(p, value, count);
    return cudaSuccess;
}

inline StreamObj *stream_obj(cudaStream_t s)
{
    if (!st().streams.count(s)) return nullptr;
    StreamObj *o = reinterpret_cast<StreamObj *>(s);
    return (o->magic == kStreamMagic && o->live) ? o : nullptr;
}

inline EventObj *event_obj(cudaEvent_t e)
{
    if (!st().events.count(e)) return nullptr;
    EventObj *o = reinterpret_cast<EventObj *>(e);
    return (o->magic == kEventMagic && o->live) ? o : nullptr;
}

template <class T>
inline T bits_to(uint64_t b)
{
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}
template <class T>
inline uint64_t to_bits(T v)
{
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}

template <class T>
inline T shfl(const char *name, int op, unsigned mask, T var, int b, int width)
{
    static_assert(sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8, "shuffles move 2, 4 or 8 bytes");
    return bits_to<T>(warp_collective(name, op, (int)sizeof(T), mask, to_bits(var), b, width));
}

} /* namespace detail */
} /* namespace vppo_emu */

/* ---------------------------------------------------------------- launch */

namespace vppo_emu {
namespace detail {
/* A launch runs now, or, on a capturing stream, is recorded with a copy of its body. */
template <class F>
cudaError_t launch_or_record(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, F &body, const char *name)
{
    std::shared_ptr<F> kept = std::make_shared<F>(body);
    if (recorded(stream, [=](cudaStream_t on) {
            F copy = *kept;
            (void)launch_impl(grid, block, shared_bytes, on, &invoke_body<F>, &copy, name, type_of<F>());
        }))
        return cudaSuccess;
    return launch_impl(grid, block, shared_bytes, stream, &invoke_body<F>, &body, name, type_of<F>());
}
} /* namespace detail */
} /* namespace vppo_emu */

template <class F>
cudaError_t vppo_emu_launch(dim3 grid, dim3 block, cudaStream_t stream, F body)
{
    return vppo_emu::detail::launch_or_record(grid, block, 0, stream, body, nullptr);
}
template <class F>
cudaError_t vppo_emu_launch(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, F body)
{
    return vppo_emu::detail::launch_or_record(grid, block, shared_bytes, stream, body, nullptr);
}
template <class F>
cudaError_t vppo_emu_launch_named(const char *name, dim3 grid, dim3 block, cudaStream_t stream, F body)
{
    return vppo_emu::detail::launch_or_record(grid, block, 0, stream, body, name);
}

/* ---------------------------------------------------------------- built-in variables */

constexpr int warpSize = 32;   /* a constant, not a macro: cudaDeviceProp has a field of that name */

namespace vppo_emu {
namespace detail {
inline uint3 thread_idx() { return cur("threadIdx")->tid; }
inline uint3 block_idx() { cur("blockIdx"); return tl_launch()->block_idx; }
inline dim3 block_dim() { cur("blockDim"); return tl_launch()->block; }
inline dim3 grid_dim() { cur("gridDim"); return tl_launch()->grid; }
} /* namespace detail */
} /* namespace vppo_emu */

#define threadIdx (::vppo_emu::detail::thread_idx())
#define blockIdx (::vppo_emu::detail::block_idx())
#define blockDim (::vppo_emu::detail::block_dim())
#define gridDim (::vppo_emu::detail::grid_dim())

/* ---------------------------------------------------------------- synchronisation */

/* The defaulted arguments record where in the source each thread waits. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_COLUMN)
#define VPPO_EMU_COLUMN __builtin_COLUMN()
#endif
#endif
#ifndef VPPO_EMU_COLUMN
#define VPPO_EMU_COLUMN 0   /* gcc < 13: lines only */
#endif
#define VPPO_EMU_SITE const char *file_ = __builtin_FILE(), int line_ = __builtin_LINE(), int col_ = VPPO_EMU_COLUMN
inline void __syncthreads(VPPO_EMU_SITE)
{
    vppo_emu::detail::block_barrier("__syncthreads", 0, 0, file_, line_, col_);
}
inline int __syncthreads_count(int pred, VPPO_EMU_SITE)
{
    return vppo_emu::detail::block_barrier("__syncthreads_count", 1, pred, file_, line_, col_);
}
inline int __syncthreads_and(int pred, VPPO_EMU_SITE)
{
    return vppo_emu::detail::block_barrier("__syncthreads_and", 2, pred, file_, line_, col_);
}
inline int __syncthreads_or(int pred, VPPO_EMU_SITE)
{
    return vppo_emu::detail::block_barrier("__syncthreads_or", 3, pred, file_, line_, col_);
}
#undef VPPO_EMU_SITE
#undef VPPO_EMU_COLUMN
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}
inline void __nanosleep(unsigned) {}

inline void __syncwarp(unsigned mask = 0xffffffffu)
{
    vppo_emu::detail::warp_collective("__syncwarp", vppo_emu::detail::W_SYNC, 4, mask, 0, 0, 32);
}

inline unsigned __activemask()
{
    using namespace vppo_emu::detail;
    Fiber *f = cur("__activemask");
    Launch *L = tl_launch();
    return existing_lanes(L, f->warp) & ~exited_lanes(L, f->warp);
}

/* The four shuffles of a type T (also used by vppo_emu_half.h), and with the two match
   collectives for the built-in types. */
#define VPPO_EMU_SHUFFLES(T) \
    inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32) \
    { return vppo_emu::detail::shfl<T>("__shfl_sync", vppo_emu::detail::W_SHFL_IDX, mask, var, srcLane, width); } \
    inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) \
    { return vppo_emu::detail::shfl<T>("__shfl_up_sync", vppo_emu::detail::W_SHFL_UP, mask, var, (int)(delta & 31u), width); } \
    inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) \
    { return vppo_emu::detail::shfl<T>("__shfl_down_sync", vppo_emu::detail::W_SHFL_DOWN, mask, var, (int)(delta & 31u), width); } \
    inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32) \
    { return vppo_emu::detail::shfl<T>("__shfl_xor_sync", vppo_emu::detail::W_SHFL_XOR, mask, var, laneMask, width); }
#define VPPO_EMU_SHFL(T) \
    VPPO_EMU_SHUFFLES(T) \
    inline unsigned __match_any_sync(unsigned mask, T value) \
    { return (unsigned)vppo_emu::detail::warp_collective("__match_any_sync", vppo_emu::detail::W_MATCH_ANY, (int)sizeof(T), mask, vppo_emu::detail::to_bits(value), 0, 32); } \
    inline unsigned __match_all_sync(unsigned mask, T value, int *pred) \
    { unsigned r = (unsigned)vppo_emu::detail::warp_collective("__match_all_sync", vppo_emu::detail::W_MATCH_ALL, (int)sizeof(T), mask, vppo_emu::detail::to_bits(value), 0, 32); \
      *pred = vppo_emu::detail::cur("__match_all_sync")->wpred; return r; }

VPPO_EMU_SHFL(int)
VPPO_EMU_SHFL(unsigned int)
VPPO_EMU_SHFL(long)
VPPO_EMU_SHFL(unsigned long)
VPPO_EMU_SHFL(long long)
VPPO_EMU_SHFL(unsigned long long)
VPPO_EMU_SHFL(float)
VPPO_EMU_SHFL(double)

inline unsigned __ballot_sync(unsigned mask, int pred)
{
    return (unsigned)vppo_emu::detail::warp_collective("__ballot_sync", vppo_emu::detail::W_BALLOT, 4, mask,
                                                       pred != 0, 0, 32);
}
inline int __any_sync(unsigned mask, int pred)
{
    return (int)vppo_emu::detail::warp_collective("__any_sync", vppo_emu::detail::W_ANY, 4, mask, pred != 0, 0, 32);
}
inline int __all_sync(unsigned mask, int pred)
{
    return (int)vppo_emu::detail::warp_collective("__all_sync", vppo_emu::detail::W_ALL, 4, mask, pred != 0, 0, 32);
}
inline int __uni_sync(unsigned mask, int pred)
{
    int p = pred != 0;
    return (int)vppo_emu::detail::warp_collective("__uni_sync", vppo_emu::detail::W_MATCH_ALL, 4, mask,
                                                  (uint64_t)p, 0, 32) != 0;
}

#define VPPO_EMU_REDUCE(NAME, OP, T) \
    inline T NAME(unsigned mask, T value) \
    { return vppo_emu::detail::bits_to<T>(vppo_emu::detail::warp_collective(#NAME, vppo_emu::detail::OP, 4, mask, vppo_emu::detail::to_bits(value), 0, 32)); }
VPPO_EMU_REDUCE(__reduce_add_sync, W_RED_ADD, unsigned)
VPPO_EMU_REDUCE(__reduce_add_sync, W_RED_ADD, int)
VPPO_EMU_REDUCE(__reduce_min_sync, W_RED_MIN_U, unsigned)
VPPO_EMU_REDUCE(__reduce_min_sync, W_RED_MIN_S, int)
VPPO_EMU_REDUCE(__reduce_max_sync, W_RED_MAX_U, unsigned)
VPPO_EMU_REDUCE(__reduce_max_sync, W_RED_MAX_S, int)
VPPO_EMU_REDUCE(__reduce_and_sync, W_RED_AND, unsigned)
VPPO_EMU_REDUCE(__reduce_or_sync, W_RED_OR, unsigned)
VPPO_EMU_REDUCE(__reduce_xor_sync, W_RED_XOR, unsigned)
#undef VPPO_EMU_REDUCE

/* ---------------------------------------------------------------- atomics */

#define VPPO_EMU_ATOMIC(NAME, T, EXPR) \
    inline T NAME(T *address, T val) { T old = *address; *address = (EXPR); return old; }

VPPO_EMU_ATOMIC(atomicAdd, int, (int)((unsigned)old + (unsigned)val))
VPPO_EMU_ATOMIC(atomicAdd, unsigned int, old + val)
VPPO_EMU_ATOMIC(atomicAdd, unsigned long long, old + val)
VPPO_EMU_ATOMIC(atomicAdd, float, old + val)
VPPO_EMU_ATOMIC(atomicAdd, double, old + val)
VPPO_EMU_ATOMIC(atomicSub, int, (int)((unsigned)old - (unsigned)val))
VPPO_EMU_ATOMIC(atomicSub, unsigned int, old - val)
VPPO_EMU_ATOMIC(atomicExch, int, val)
VPPO_EMU_ATOMIC(atomicExch, unsigned int, val)
VPPO_EMU_ATOMIC(atomicExch, unsigned long long, val)
VPPO_EMU_ATOMIC(atomicExch, float, val)
VPPO_EMU_ATOMIC(atomicMin, int, val < old ? val : old)
VPPO_EMU_ATOMIC(atomicMin, unsigned int, val < old ? val : old)
VPPO_EMU_ATOMIC(atomicMin, long long, val < old ? val : old)
VPPO_EMU_ATOMIC(atomicMin, unsigned long long, val < old ? val : old)
VPPO_EMU_ATOMIC(atomicMax, int, val > old ? val : old)
VPPO_EMU_ATOMIC(atomicMax, unsigned int, val > old ? val : old)
VPPO_EMU_ATOMIC(atomicMax, long long, val > old ? val : old)
VPPO_EMU_ATOMIC(atomicMax, unsigned long long, val > old ? val : old)
VPPO_EMU_ATOMIC(atomicAnd, int, old & val)
VPPO_EMU_ATOMIC(atomicAnd, unsigned int, old & val)
VPPO_EMU_ATOMIC(atomicAnd, unsigned long long, old & val)
VPPO_EMU_ATOMIC(atomicOr, int, old | val)
VPPO_EMU_ATOMIC(atomicOr, unsigned int, old | val)
VPPO_EMU_ATOMIC(atomicOr, unsigned long long, old | val)
VPPO_EMU_ATOMIC(atomicXor, int, old ^ val)
VPPO_EMU_ATOMIC(atomicXor, unsigned int, old ^ val)
VPPO_EMU_ATOMIC(atomicXor, unsigned long long, old ^ val)
VPPO_EMU_ATOMIC(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
VPPO_EMU_ATOMIC(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
#undef VPPO_EMU_ATOMIC

#define VPPO_EMU_CAS(T) \
    inline T atomicCAS(T *address, T compare, T val) { T old = *address; if (old == compare) *address = val; return old; }
VPPO_EMU_CAS(int)
VPPO_EMU_CAS(unsigned int)
VPPO_EMU_CAS(unsigned long long)
VPPO_EMU_CAS(unsigned short)
#undef VPPO_EMU_CAS

/* ---------------------------------------------------------------- intrinsics */

template <class T> inline T __ldg(const T *p) { return *p; }
template <class T> inline T __ldcg(const T *p) { return *p; }
template <class T> inline T __ldca(const T *p) { return *p; }
template <class T> inline T __ldcs(const T *p) { return *p; }
template <class T> inline T __ldlu(const T *p) { return *p; }
template <class T> inline T __ldcv(const T *p) { return *p; }
template <class T> inline void __stwb(T *p, T v) { *p = v; }
template <class T> inline void __stcg(T *p, T v) { *p = v; }
template <class T> inline void __stcs(T *p, T v) { *p = v; }
template <class T> inline void __stwt(T *p, T v) { *p = v; }

inline unsigned int __float_as_uint(float x) { unsigned int r; std::memcpy(&r, &x, 4); return r; }
inline float __uint_as_float(unsigned int x) { float r; std::memcpy(&r, &x, 4); return r; }
inline int __float_as_int(float x) { int r; std::memcpy(&r, &x, 4); return r; }
inline float __int_as_float(int x) { float r; std::memcpy(&r, &x, 4); return r; }
inline long long __double_as_longlong(double x) { long long r; std::memcpy(&r, &x, 8); return r; }
inline double __longlong_as_double(long long x) { double r; std::memcpy(&r, &x, 8); return r; }
inline int __double2hiint(double x) { return (int)(__double_as_longlong(x) >> 32); }
inline int __double2loint(double x) { return (int)(unsigned)((unsigned long long)__double_as_longlong(x) & 0xffffffffull); }
inline double __hiloint2double(int hi, int lo)
{
    return __longlong_as_double((long long)(((unsigned long long)(unsigned)hi << 32) | (unsigned)lo));
}

/* -ffp-contract=off makes these single roundings, as on the GPU. */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __drcp_rn(double a) { return 1.0 / a; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float rsqrtf(float a) { return 1.0f / std::sqrt(a); }
inline double rsqrt(double a) { return 1.0 / std::sqrt(a); }
inline float __frsqrt_rn(float a) { return 1.0f / std::sqrt(a); }
inline float __saturatef(float a) { return a >= 1.0f ? 1.0f : a > 0.0f ? a : 0.0f; }  /* NaN -> 0 */

/* Fast-math intrinsics, by the formulas the hardware uses (ex2/lg2 of a scaled argument):
   their errors grow with |x| as on the GPU, unlike expf/logf. */
inline float __expf(float x) { return std::exp2(x * 1.44269504f); }
inline float __exp10f(float x) { return std::exp2(x * 3.32192809f); }
inline float __logf(float x) { return std::log2(x) * 0.693147181f; }
inline float __log2f(float x) { return std::log2(x); }
inline float __log10f(float x) { return std::log2(x) * 0.301029996f; }
inline float __powf(float x, float y) { return std::exp2(y * std::log2(x)); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline void __sincosf(float x, float *s, float *c) { *s = std::sin(x); *c = std::cos(x); }
/* PTX ex2.approx.ftz.f32 (code for a GPU reaches it through inline asm; code built for the
   emulator calls this): 2^x within the instruction's documented maximum relative error of
   2^-22 (PTX ISA, ex2), modelled AT that bound so that tolerances are tested against what
   the GPU may compute: the exact value times 1 + 2^-22 or 1 - 2^-22 (the sign from a hash
   of x's bits: repeatable), rounded to float; exact for an integral x (a power of two: a
   zero fraction, as the hardware's table-and-polynomial unit gives; to confirm on a GPU
   with bench/run_gpu.sh). .ftz: a subnormal input is read as zero (result 1), a result
   below FLT_MIN is flushed to +0. */
inline float vppo_emu_ex2_approx_ftz(float x)
{
    if (std::fpclassify(x) == FP_SUBNORMAL) x = 0.0f;
    double r = std::exp2((double)x);
    if (!(r > 0.0) || std::isinf(r) || x == std::floor(x)) return (float)r < FLT_MIN ? 0.0f : (float)r;
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    bits *= 0x9E3779B1u;
    r *= (bits >> 31) ? 1.0 + std::ldexp(1.0, -22) : 1.0 - std::ldexp(1.0, -22);
    const float f = (float)r;
    return f < FLT_MIN ? 0.0f : f;
}

inline float __fdividef(float x, float y)
{
    float ay = std::fabs(y);
    if (ay > 8.50705917e37f && ay <= 3.40282347e38f) return 0.0f;   /* 2^126 < |y| < 2^128 */
    return x * (1.0f / y);
}

namespace vppo_emu {
namespace detail {
/* Float to integer as the GPU converts: saturating, NaN gives 0. */
template <class I, class F>
inline I sat_int(F v)
{
    if (v != v) return 0;
    if (v <= (F)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
    if (v >= (F)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
    return (I)v;
}
} /* namespace detail */
} /* namespace vppo_emu */

inline int __float2int_rn(float x) { return vppo_emu::detail::sat_int<int>(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return vppo_emu::detail::sat_int<int>(std::trunc(x)); }
inline int __float2int_rd(float x) { return vppo_emu::detail::sat_int<int>(std::floor(x)); }
inline int __float2int_ru(float x) { return vppo_emu::detail::sat_int<int>(std::ceil(x)); }
inline unsigned __float2uint_rn(float x) { return vppo_emu::detail::sat_int<unsigned>(std::nearbyint(x)); }
inline unsigned __float2uint_rz(float x) { return vppo_emu::detail::sat_int<unsigned>(std::trunc(x)); }
inline long long __float2ll_rn(float x) { return vppo_emu::detail::sat_int<long long>(std::nearbyint(x)); }
inline long long __float2ll_rz(float x) { return vppo_emu::detail::sat_int<long long>(std::trunc(x)); }
inline float __int2float_rn(int x) { return (float)x; }
inline float __uint2float_rn(unsigned x) { return (float)x; }
inline float __ll2float_rn(long long x) { return (float)x; }
inline double __int2double_rn(int x) { return (double)x; }
inline float __double2float_rn(double x) { return (float)x; }
inline int __double2int_rn(double x) { return vppo_emu::detail::sat_int<int>(std::nearbyint(x)); }
inline int __double2int_rz(double x) { return vppo_emu::detail::sat_int<int>(std::trunc(x)); }
inline long long __double2ll_rn(double x) { return vppo_emu::detail::sat_int<long long>(std::nearbyint(x)); }

inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x)
{
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
    x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
    return (x >> 16) | (x << 16);
}
inline unsigned long long __brevll(unsigned long long x)
{
    return ((unsigned long long)__brev((unsigned)(x & 0xffffffffu)) << 32) | __brev((unsigned)(x >> 32));
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b)
{
    __extension__ typedef unsigned __int128 u128;
    return (unsigned long long)(((u128)a * b) >> 64);
}
inline long long __mul64hi(long long a, long long b)
{
    __extension__ typedef __int128 i128;
    return (long long)(((i128)a * b) >> 64);
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned shift)
{
    unsigned long long v = ((unsigned long long)hi << 32) | lo;
    return (unsigned)((v << (shift & 31u)) >> 32);
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned shift)
{
    unsigned long long v = ((unsigned long long)hi << 32) | lo;
    return (unsigned)(v >> (shift & 31u));
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s)
{
    unsigned long long v = ((unsigned long long)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7u))) & 0xffu) << (8 * i);
    return r;
}
inline long long clock64()
{
    return (long long)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

/* ---------------------------------------------------------------- runtime API: errors */

inline const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidSymbol: return "cudaErrorInvalidSymbol";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    case cudaErrorUnknown: return "cudaErrorUnknown";
    }
    return "unrecognized error code";
}

inline const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorUnknown: return "unknown error";
    }
    return "unrecognized error code";
}

inline cudaError_t cudaGetLastError()
{
    vppo_emu::detail::State &s = vppo_emu::detail::st();
    cudaError_t e = s.last_error;
    s.last_error = cudaSuccess;
    s.pending_exec = cudaSuccess;
    return e;
}
inline cudaError_t cudaPeekAtLastError() { return vppo_emu::detail::st().last_error; }

/* ---------------------------------------------------------------- runtime API: device */

inline cudaError_t cudaGetDeviceCount(int *count)
{
    if (!count) return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int device)
{
    if (device != 0) return vppo_emu::detail::api_error(cudaErrorInvalidDevice);
    vppo_emu::detail::st().device = device;
    return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int *device)
{
    if (!device) return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    *device = vppo_emu::detail::st().device;
    return cudaSuccess;
}
inline cudaError_t cudaRuntimeGetVersion(int *v)
{
    if (!v) return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    *v = CUDART_VERSION;
    return cudaSuccess;
}
inline cudaError_t cudaDriverGetVersion(int *v)
{
    if (!v) return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    *v = CUDART_VERSION;
    return cudaSuccess;
}
inline cudaError_t cudaDeviceReset() { return cudaSuccess; }
inline cudaError_t cudaSetDeviceFlags(unsigned) { return cudaSuccess; }

namespace vppo_emu {
namespace detail {
const size_t kTotalMem = (size_t)16 << 30;
inline int attribute(cudaDeviceAttr a, bool *ok)
{
    *ok = true;
    switch (a) {
    case cudaDevAttrMaxThreadsPerBlock: return 1024;
    case cudaDevAttrMaxBlockDimX: return 1024;
    case cudaDevAttrMaxBlockDimY: return 1024;
    case cudaDevAttrMaxBlockDimZ: return 64;
    case cudaDevAttrMaxGridDimX: return 0x7fffffff;
    case cudaDevAttrMaxGridDimY: return 65535;
    case cudaDevAttrMaxGridDimZ: return 65535;
    case cudaDevAttrMaxSharedMemoryPerBlock: return 49152;
    case cudaDevAttrTotalConstantMemory: return 65536;
    case cudaDevAttrWarpSize: return 32;
    case cudaDevAttrMaxRegistersPerBlock: return 65536;
    case cudaDevAttrClockRate: return 1000000;
    case cudaDevAttrGpuOverlap: return 1;
    case cudaDevAttrMultiProcessorCount: return 4;
    case cudaDevAttrKernelExecTimeout: return 0;
    case cudaDevAttrIntegrated: return 0;
    case cudaDevAttrCanMapHostMemory: return 1;
    case cudaDevAttrComputeMode: return 0;
    case cudaDevAttrConcurrentKernels: return 1;
    case cudaDevAttrEccEnabled: return 0;
    case cudaDevAttrPciBusId: return 0;
    case cudaDevAttrPciDeviceId: return 0;
    case cudaDevAttrMemoryClockRate: return 1000000;
    case cudaDevAttrGlobalMemoryBusWidth: return 256;
    case cudaDevAttrL2CacheSize: return 4 << 20;
    case cudaDevAttrMaxThreadsPerMultiProcessor: return 2048;
    case cudaDevAttrAsyncEngineCount: return 1;
    case cudaDevAttrUnifiedAddressing: return 1;
    case cudaDevAttrComputeCapabilityMajor: return 9;
    case cudaDevAttrComputeCapabilityMinor: return 0;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: return 49152 * 2;
    case cudaDevAttrMaxRegistersPerMultiprocessor: return 65536;
    case cudaDevAttrManagedMemory: return 0;
    case cudaDevAttrPageableMemoryAccess: return 0;
    case cudaDevAttrConcurrentManagedAccess: return 0;
    case cudaDevAttrCooperativeLaunch: return 0;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: return 49152;
    case cudaDevAttrMaxBlocksPerMultiprocessor: return 32;
    case cudaDevAttrMemoryPoolsSupported: return 1;
    }
    *ok = false;
    return 0;
}
} /* namespace detail */
} /* namespace vppo_emu */

inline cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device)
{
    if (!value) return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    if (device != 0) return vppo_emu::detail::api_error(cudaErrorInvalidDevice);
    bool ok = false;
    int v = vppo_emu::detail::attribute(attr, &ok);
    if (!ok) return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    *value = v;
    return cudaSuccess;
}

inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device)
{
    using namespace vppo_emu::detail;
    if (!p) return api_error(cudaErrorInvalidValue);
    if (device != 0) return api_error(cudaErrorInvalidDevice);
    std::memset(p, 0, sizeof *p);
    std::snprintf(p->name, sizeof p->name, "vppo-emulator");
    bool ok;
    p->totalGlobalMem = kTotalMem;
    p->sharedMemPerBlock = (size_t)attribute(cudaDevAttrMaxSharedMemoryPerBlock, &ok);
    p->regsPerBlock = attribute(cudaDevAttrMaxRegistersPerBlock, &ok);
    p->warpSize = 32;
    p->memPitch = (size_t)0x7fffffff;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024; p->maxThreadsDim[1] = 1024; p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff; p->maxGridSize[1] = 65535; p->maxGridSize[2] = 65535;
    p->clockRate = attribute(cudaDevAttrClockRate, &ok);
    p->totalConstMem = 65536;
    p->major = 9;
    p->minor = 0;
    p->textureAlignment = 512;
    p->multiProcessorCount = attribute(cudaDevAttrMultiProcessorCount, &ok);
    p->canMapHostMemory = 1;
    p->concurrentKernels = 1;
    p->asyncEngineCount = 1;
    p->unifiedAddressing = 1;
    p->memoryClockRate = attribute(cudaDevAttrMemoryClockRate, &ok);
    p->memoryBusWidth = attribute(cudaDevAttrGlobalMemoryBusWidth, &ok);
    p->l2CacheSize = attribute(cudaDevAttrL2CacheSize, &ok);
    p->maxThreadsPerMultiProcessor = 2048;
    p->sharedMemPerMultiprocessor = (size_t)attribute(cudaDevAttrMaxSharedMemoryPerMultiprocessor, &ok);
    p->regsPerMultiprocessor = 65536;
    p->sharedMemPerBlockOptin = 49152;
    p->maxBlocksPerMultiProcessor = 32;
    p->memoryPoolsSupported = 1;
    return cudaSuccess;
}

inline cudaError_t cudaDeviceSynchronize()
{
    ++vppo_emu::detail::st().syncs;
    if (vppo_emu::detail::refused_by_capture(false)) return cudaErrorStreamCaptureUnsupported;
    vppo_emu::detail::flush_deferred(true, nullptr, -1);
    return vppo_emu::detail::take_pending();
}

inline cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    using namespace vppo_emu::detail;
    if (!free_bytes || !total_bytes) return api_error(cudaErrorInvalidValue);
    *total_bytes = kTotalMem;
    *free_bytes = st().live_bytes < kTotalMem ? kTotalMem - st().live_bytes : 0;
    return cudaSuccess;
}

template <class T>
inline cudaError_t cudaFuncSetAttribute(T *, cudaFuncAttribute, int) { return cudaSuccess; }
inline cudaError_t cudaFuncSetAttribute(const void *, cudaFuncAttribute, int) { return cudaSuccess; }

template <class T>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *num_blocks, T, int block_size, size_t dyn_smem)
{
    if (!num_blocks || block_size <= 0 || block_size > 1024 || dyn_smem != 0)
        return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    int n = 2048 / block_size;
    *num_blocks = n > 32 ? 32 : n;
    return cudaSuccess;
}

/* ---------------------------------------------------------------- runtime API: memory */

inline cudaError_t cudaMalloc(void **p, size_t size) { return vppo_emu::detail::alloc_device(p, size, false); }
template <class T>
inline cudaError_t cudaMalloc(T **p, size_t size) { return cudaMalloc(reinterpret_cast<void **>(p), size); }

inline cudaError_t cudaMallocAsync(void **p, size_t size, cudaStream_t stream)
{
    if (!vppo_emu::detail::valid_stream(stream)) return vppo_emu::detail::api_error(cudaErrorInvalidResourceHandle);
    return vppo_emu::detail::alloc_device(p, size, true);
}
template <class T>
inline cudaError_t cudaMallocAsync(T **p, size_t size, cudaStream_t stream)
{
    return cudaMallocAsync(reinterpret_cast<void **>(p), size, stream);
}

inline cudaError_t cudaFree(void *p)
{
    vppo_emu::detail::flush_deferred(true, nullptr, -1);
    return vppo_emu::detail::free_device("cudaFree", p);
}
inline cudaError_t cudaFreeAsync(void *p, cudaStream_t stream)
{
    if (!vppo_emu::detail::valid_stream(stream)) return vppo_emu::detail::api_error(cudaErrorInvalidResourceHandle);
    return vppo_emu::detail::free_device("cudaFreeAsync", p);
}

inline cudaError_t cudaMallocHost(void **p, size_t size)
{
    using namespace vppo_emu::detail;
    if (!p) return api_error(cudaErrorInvalidValue);
    ++st().alloc_calls;
    if (refused_by_capture(true)) return cudaErrorStreamCaptureUnsupported;
    void *m = nullptr;
    if (posix_memalign(&m, 256, size ? size : 1) != 0 || !m) return api_error(cudaErrorMemoryAllocation);
    std::memset(m, kFill, size);
    st().pinned[(uintptr_t)m] = size;
    *p = m;
    return cudaSuccess;
}
template <class T>
inline cudaError_t cudaMallocHost(T **p, size_t size) { return cudaMallocHost(reinterpret_cast<void **>(p), size); }
inline cudaError_t cudaHostAlloc(void **p, size_t size, unsigned int) { return cudaMallocHost(p, size); }
template <class T>
inline cudaError_t cudaHostAlloc(T **p, size_t size, unsigned int flags)
{
    return cudaHostAlloc(reinterpret_cast<void **>(p), size, flags);
}

inline cudaError_t cudaFreeHost(void *p)
{
    using namespace vppo_emu::detail;
    State &s = st();
    if (!p) return cudaSuccess;
    auto it = s.pinned.find((uintptr_t)p);
    if (it == s.pinned.end()) {
        report("cudaFreeHost(%p): not a live cudaMallocHost/cudaHostAlloc allocation", p);
        return api_error(cudaErrorInvalidValue);
    }
    for (auto &d : s.deferred)
        if (overlaps(d.dst, d.data.size(), p, it->second)) {
            report("cudaFreeHost(%p): an asynchronous copy into this buffer has not been synchronised", p);
            flush_deferred(true, nullptr, -1);
            break;
        }
    s.pinned.erase(it);
    std::free(p);
    return cudaSuccess;
}

inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, cudaMemcpyKind kind)
{
    cudaError_t e = vppo_emu::detail::memcpy_impl("cudaMemcpy", dst, src, count, kind, false, nullptr);
    if (e != cudaSuccess) return e;
    return vppo_emu::detail::take_pending();
}
inline cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, cudaMemcpyKind kind,
                                   cudaStream_t stream = nullptr)
{
    return vppo_emu::detail::memcpy_impl("cudaMemcpyAsync", dst, src, count, kind, true, stream);
}
inline cudaError_t cudaMemset(void *p, int value, size_t count)
{
    return vppo_emu::detail::memset_impl("cudaMemset", p, value, count, false, nullptr);
}
inline cudaError_t cudaMemsetAsync(void *p, int value, size_t count, cudaStream_t stream = nullptr)
{
    return vppo_emu::detail::memset_impl("cudaMemsetAsync", p, value, count, true, stream);
}

namespace vppo_emu {
namespace detail {
/* cudaMemcpyToSymbol / FromSymbol: count bytes at offset of a symbol of `size` bytes. */
inline cudaError_t symbol_copy(void *dst, const void *src, size_t count, size_t offset, size_t size,
                               cudaMemcpyKind kind, cudaMemcpyKind host_kind)
{
    if (offset > size || count > size - offset) return api_error(cudaErrorInvalidValue);
    if (kind != host_kind && kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault)
        return api_error(cudaErrorInvalidMemcpyDirection);
    State &s = st();
    if (s.fail_memcpy >= 0 && s.fail_memcpy-- == 0) return api_error(cudaErrorUnknown);
    ++s.blocking_copies;
    std::memcpy(dst, src, count);
    return cudaSuccess;
}
} /* namespace detail */
} /* namespace vppo_emu */

template <class T>
inline cudaError_t cudaMemcpyToSymbol(const T &symbol, const void *src, size_t count, size_t offset = 0,
                                      cudaMemcpyKind kind = cudaMemcpyHostToDevice)
{
    return vppo_emu::detail::symbol_copy(reinterpret_cast<unsigned char *>(const_cast<T *>(&symbol)) + offset, src,
                                         count, offset, sizeof(T), kind, cudaMemcpyHostToDevice);
}
template <class T>
inline cudaError_t cudaMemcpyFromSymbol(void *dst, const T &symbol, size_t count, size_t offset = 0,
                                        cudaMemcpyKind kind = cudaMemcpyDeviceToHost)
{
    return vppo_emu::detail::symbol_copy(dst, reinterpret_cast<const unsigned char *>(&symbol) + offset, count, offset,
                                         sizeof(T), kind, cudaMemcpyDeviceToHost);
}

inline cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int device)
{
    static int the_pool;
    if (!pool) return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    if (device != 0) return vppo_emu::detail::api_error(cudaErrorInvalidDevice);
    *pool = reinterpret_cast<cudaMemPool_t>(&the_pool);
    return cudaSuccess;
}
inline cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr, void *value)
{
    if (!pool || !value) return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    return cudaSuccess;
}
inline cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void *value)
{
    if (!pool || !value) return vppo_emu::detail::api_error(cudaErrorInvalidValue);
    if (attr == cudaMemPoolReuseFollowEventDependencies || attr == cudaMemPoolReuseAllowOpportunistic ||
        attr == cudaMemPoolReuseAllowInternalDependencies)
        *static_cast<int *>(value) = 1;
    else if (attr == cudaMemPoolAttrUsedMemCurrent || attr == cudaMemPoolAttrReservedMemCurrent)
        *static_cast<unsigned long long *>(value) = vppo_emu::detail::st().live_bytes;
    else
        *static_cast<unsigned long long *>(value) = 0;
    return cudaSuccess;
}
inline cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t)
{
    return pool ? cudaSuccess : vppo_emu::detail::api_error(cudaErrorInvalidValue);
}

/* ---------------------------------------------------------------- runtime API: streams, events */

namespace vppo_emu {
namespace detail {
/* A new stream or event object (zeroed, live), registered. */
template <class Obj>
Obj *new_handle(unsigned magic, unsigned flags, std::set<const void *> &registry)
{
    Obj *o = new Obj();
    o->magic = magic;
    o->flags = flags;
    o->live = true;
    registry.insert(o);
    return o;
}
} /* namespace detail */
} /* namespace vppo_emu */

inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags)
{
    using namespace vppo_emu::detail;
    if (!s || flags > 1u) return api_error(cudaErrorInvalidValue);
    *s = reinterpret_cast<cudaStream_t>(new_handle<StreamObj>(kStreamMagic, flags, st().streams));
    return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }

inline cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    using namespace vppo_emu::detail;
    StreamObj *o = stream_obj(s);
    if (!o) return api_error(cudaErrorInvalidResourceHandle);
    flush_deferred(false, s, -1);
    o->live = false;   /* kept, so a stale handle is recognised */
    return cudaSuccess;
}

inline cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    using namespace vppo_emu::detail;
    if (!valid_stream(s)) return api_error(cudaErrorInvalidResourceHandle);
    ++st().syncs;
    if (refused_by_capture(false)) return cudaErrorStreamCaptureUnsupported;
    if (is_legacy(s)) flush_deferred(true, nullptr, -1);
    else flush_deferred(false, s, -1);
    return take_pending();
}
inline cudaError_t cudaStreamQuery(cudaStream_t s) { return cudaStreamSynchronize(s); }

inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags)
{
    using namespace vppo_emu::detail;
    if (!e || flags > 7u) return api_error(cudaErrorInvalidValue);
    *e = reinterpret_cast<cudaEvent_t>(new_handle<EventObj>(kEventMagic, flags, st().events));
    return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }

inline cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr)
{
    using namespace vppo_emu::detail;
    EventObj *o = event_obj(e);
    if (!o || !valid_stream(s)) return api_error(cudaErrorInvalidResourceHandle);
    o->recorded = true;
    o->t = std::chrono::steady_clock::now();
    o->stream = s;
    o->seq = ++st().op_seq;
    return cudaSuccess;
}

inline cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    using namespace vppo_emu::detail;
    EventObj *o = event_obj(e);
    if (!o) return api_error(cudaErrorInvalidResourceHandle);
    ++st().syncs;
    if (refused_by_capture(false)) return cudaErrorStreamCaptureUnsupported;
    if (o->recorded) {
        if (is_legacy(o->stream)) flush_deferred(true, nullptr, -1);
        else flush_deferred(false, o->stream, o->seq);
    }
    return take_pending();
}
inline cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }

inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    using namespace vppo_emu::detail;
    if (!ms) return api_error(cudaErrorInvalidValue);
    EventObj *a = event_obj(start), *b = event_obj(end);
    if (!a || !b || !a->recorded || !b->recorded || (a->flags & cudaEventDisableTiming) ||
        (b->flags & cudaEventDisableTiming))
        return api_error(cudaErrorInvalidResourceHandle);
    *ms = (float)std::chrono::duration<double, std::milli>(b->t - a->t).count();
    return cudaSuccess;
}

inline cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    using namespace vppo_emu::detail;
    EventObj *o = event_obj(e);
    if (!o) return api_error(cudaErrorInvalidResourceHandle);
    o->live = false;
    return cudaSuccess;
}

inline cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned int flags = 0)
{
    using namespace vppo_emu::detail;
    (void)flags;
    if (!valid_stream(s) || !event_obj(e)) return api_error(cudaErrorInvalidResourceHandle);
    return cudaSuccess;
}

/* ---------------------------------------------------------------- runtime API: graphs */

inline cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode)
{
    using namespace vppo_emu::detail;
    if (!valid_stream(s)) return api_error(cudaErrorInvalidResourceHandle);
    if (is_legacy(s) || s == cudaStreamPerThread) return api_error(cudaErrorStreamCaptureUnsupported);
    if (capture_of(s) || (int)mode < 0 || (int)mode > 2) return api_error(cudaErrorInvalidValue);
    GraphObj *g = new GraphObj();
    g->magic = kGraphMagic;
    g->live = true;
    st().graphs.insert(g);
    Capture c;
    c.graph = g;
    c.mode = mode;
    c.invalid = false;
    st().captures[s] = c;
    return cudaSuccess;
}

inline cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph)
{
    using namespace vppo_emu::detail;
    Capture *c = capture_of(s);
    if (!graph) return api_error(cudaErrorInvalidValue);
    if (!c) return api_error(cudaErrorIllegalState);
    const Capture done = *c;
    st().captures.erase(s);
    if (done.invalid) {
        done.graph->live = false;
        *graph = nullptr;
        return api_error(cudaErrorStreamCaptureInvalidated);
    }
    *graph = reinterpret_cast<cudaGraph_t>(done.graph);
    return cudaSuccess;
}

inline cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status)
{
    using namespace vppo_emu::detail;
    if (!status) return api_error(cudaErrorInvalidValue);
    if (!valid_stream(s)) return api_error(cudaErrorInvalidResourceHandle);
    const Capture *c = capture_of(s);
    *status = !c ? cudaStreamCaptureStatusNone : (c->invalid ? cudaStreamCaptureStatusInvalidated
                                                               : cudaStreamCaptureStatusActive);
    return cudaSuccess;
}

namespace vppo_emu {
namespace detail {
inline GraphObj *graph_obj(const void *g)
{
    if (!st().graphs.count(g)) return nullptr;
    GraphObj *o = static_cast<GraphObj *>(const_cast<void *>(g));
    return (o->magic == kGraphMagic && o->live) ? o : nullptr;
}
} /* namespace detail */
} /* namespace vppo_emu */

/* The executable graph is a copy of the graph's operations (a later change to the graph
   does not reach it, as in CUDA). */
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags = 0)
{
    using namespace vppo_emu::detail;
    GraphObj *g = graph_obj(graph);
    if (!exec || !g || flags != 0) return api_error(cudaErrorInvalidValue);
    GraphObj *e = new GraphObj(*g);
    st().graphs.insert(e);
    *exec = reinterpret_cast<cudaGraphExec_t>(e);
    return cudaSuccess;
}

inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s)
{
    using namespace vppo_emu::detail;
    GraphObj *e = graph_obj(exec);
    if (!e || !valid_stream(s)) return api_error(cudaErrorInvalidResourceHandle);
    if (capture_of(s)) return api_error(cudaErrorNotSupported);   /* graphs in graphs: not emulated */
    ++st().graph_launches;
    for (const Op &op : e->ops) op(s);
    return cudaSuccess;
}

inline cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    using namespace vppo_emu::detail;
    GraphObj *g = graph_obj(graph);
    if (!g) return api_error(cudaErrorInvalidValue);
    g->live = false;   /* kept, so a stale handle is recognised */
    g->ops.clear();
    return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) { return cudaGraphDestroy(reinterpret_cast<cudaGraph_t>(exec)); }

/* ---------------------------------------------------------------- test hooks */

inline long vppo_emu_live_allocations(void) { return (long)vppo_emu::detail::st().live.size(); }
inline size_t vppo_emu_live_bytes(void) { return vppo_emu::detail::st().live_bytes; }
inline int vppo_emu_check_canaries(void) { return vppo_emu::detail::check_canaries_all("by vppo_emu_check_canaries"); }
inline long vppo_emu_error_count(void) { return vppo_emu::detail::st().error_count; }
inline void vppo_emu_set_abort(int on) { vppo_emu::detail::st().abort_on_error = on != 0; }
inline void vppo_emu_fail_alloc_after(long n) { vppo_emu::detail::st().fail_alloc = n < 0 ? -1 : n; }
inline void vppo_emu_fail_launch_after(long n) { vppo_emu::detail::st().fail_launch = n < 0 ? -1 : n; }
inline void vppo_emu_fail_memcpy_after(long n) { vppo_emu::detail::st().fail_memcpy = n < 0 ? -1 : n; }
inline long vppo_emu_launch_count(void) { return vppo_emu::detail::st().launches; }
inline int vppo_emu_is_device_pointer(const void *p)
{
    vppo_emu::detail::Where w = vppo_emu::detail::classify(p);
    return w.kind == vppo_emu::detail::MEM_DEVICE && (uintptr_t)p < w.a->base + w.a->size;
}
inline void vppo_emu_set_seed(unsigned long long seed) { vppo_emu::detail::st().seed = seed; }
inline unsigned long long vppo_emu_get_seed(void) { return vppo_emu::detail::st().seed; }
inline unsigned long long vppo_emu_switch_count(void) { return vppo_emu::detail::st().switches; }
inline int vppo_emu_uses_ucontext(void) { return vppo_emu::detail::st().use_ucontext; }
inline int vppo_emu_flush_quarantine(void) { return vppo_emu::detail::drain_quarantine(0); }
inline void vppo_emu_set_strict_mask(int on) { vppo_emu::detail::st().strict_mask = on != 0; }
inline void vppo_emu_set_barrier_sites(int on) { vppo_emu::detail::st().barrier_sites = on != 0; }
inline long vppo_emu_sync_count(void) { return vppo_emu::detail::st().syncs; }
inline long vppo_emu_alloc_count(void) { return vppo_emu::detail::st().alloc_calls; }
inline long vppo_emu_blocking_copy_count(void) { return vppo_emu::detail::st().blocking_copies; }
inline long vppo_emu_graph_launch_count(void) { return vppo_emu::detail::st().graph_launches; }
inline size_t vppo_emu_graph_ops(cudaGraph_t g)
{
    const vppo_emu::detail::GraphObj *o = vppo_emu::detail::graph_obj(g);
    return o ? o->ops.size() : 0;
}

#endif /* VPPO_EMU_CUDA_RUNTIME_H */
