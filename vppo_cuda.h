/* vppo_cuda.h - the CUDA translation unit of vppo.h (docs/spec.md §11). MIT licence, see vppo.h.

   The functions below are the vppo.h functions of the same name (§2, §6, §7, §8,
   vppo_perturb_patch_rows and vppo_rollout_correction) on device pointers, with one more argument: the CUDA stream
   to run on (a cudaStream_t passed as void *; NULL is the legacy default stream), or,
   in the asynchronous form, a vppo_cuda_launch (stream, workspace, status word).
   This header is plain C and includes no CUDA header; link libvppo_cuda.a (make cuda)
   and the CUDA runtime (-lcudart).

   TWO MODES (docs/spec.md §11)
     vppo_cuda_<name>(..., void *stream)                          synchronous
     vppo_cuda_<name>_async(..., const vppo_cuda_launch *launch)  asynchronous
   The asynchronous functions are the base; each synchronous one is a thin layer that
   takes a scratch block from the stream-ordered pool, calls its _async sibling, copies
   the status and the scalar results back and waits for the stream.

   ASYNCHRONOUS MODE (for engines: CUDA graphs, no stalls)
     An _async call only enqueues work on launch->stream: no host synchronisation, no
     device or host allocation, no blocking copy, no host read of device memory. So a
     sequence of _async calls can be captured into a CUDA graph (cudaStreamBeginCapture
     ... cudaStreamEndCapture) and replayed; a replay computes what the direct calls
     compute, bit for bit. What the call needs besides its arguments is in one plain
     struct, filled by the caller (no handle, no create/destroy, no state kept), and the
     other arguments are those of the synchronous sibling, with device pointers where
     that one takes host results: one name per operation, two visibly different entry
     points, so a host struct is never mistaken for a device one:

       vppo_cuda_launch L;
       L.stream = stream;                 (cudaStream_t; NULL: the legacy default stream)
       L.workspace = ws;                  (device, 16-byte aligned, not shared by calls
       L.workspace_bytes = ws_bytes;       that may run at the same time)
       L.status = d_status;               (device int32_t: the call's vppo_status)

     Workspace: vppo_cuda_workspace_size(n_seqs) bytes, from the shape alone (no device
     access): n_seqs is the batch's number of sequences, 0 for the functions without a
     vppo_seqs (the logits rows, the perturbation). One workspace sized for the largest
     batch serves every call; calls on one stream may share it, since they run in order.
     The workspace holds nothing between calls.

     Returned at once, with nothing enqueued: every error that the host can see from the
     arguments (NULL pointers, sizes held in host structs, enums, config domains), then
     from the launch struct (launch or launch->status NULL: VPPO_ERR_NULL; workspace NULL,
     misaligned or smaller than vppo_cuda_workspace_size: VPPO_ERR_WORKSPACE; a batch
     whose workspace size does not fit in a size_t: VPPO_ERR_SIZE), and VPPO_ERR_CUDA
     when enqueueing fails (vppo_cuda_error_string() says why; the status word is then
     not written).
     Written to *launch->status when the kernels have run: VPPO_OK or the data error that
     only the device can see (bad offsets, NaN/inf values, token ids outside the
     vocabulary, ...), with the CPU function's code and, when several are present, the
     CPU function's priority. Every call that returns VPPO_OK writes the word (it is not
     sticky: give each call of a graph its own word to keep all of them). When it holds
     an error, the call's outputs are unspecified, except as the CPU documents (a
     gradient beyond the float range: VPPO_ERR_NONFINITE with every output written).
     Scalar results go to device memory: vppo_topk_info, vppo_loss_out and the TAS
     statistics of prepare/step (vppo_tas_stats), each written when the status is VPPO_OK
     (and, for the loss, on an overflowing gradient as above). In _async prepare the
     global statistics are read from device memory too, so that a captured step can take
     them from an all-reduce; their domain is then a device check, reported before the
     per-token checks as the CPU does.
     A later call on the same stream works normally after a data error.

   SYNCHRONOUS MODE (simple callers, tests)
     The call waits for its stream and returns the status of the data checks too.
     Host memory: the argument structs themselves (vppo_seqs, vppo_logits, vppo_grad_out,
     vppo_config, vppo_loss_config, vppo_prepared, vppo_tas_stats), and the results
     that the CPU call returns in a struct (vppo_loss_out, vppo_topk_info, and the
     stats/topk fields of vppo_prepared), which are written after the stream has been
     synchronised. It takes a scratch block of vppo_cuda_workspace_size(n_seqs) plus at
     most 256 bytes from the device's stream-ordered memory pool (cudaMallocAsync) and returns it
     before it returns; it must not be called while its stream is being captured.

   BOTH MODES
     Device memory: every array the structs point to (offsets, mask, logits, ids, the
     per-token and per-sequence arrays, the vppo_prepared buffers) and every array
     argument. There is no global state apart from the per-thread error string.

   SEMANTICS
     The same as the CPU functions: the same argument checks and status codes, results
     within docs/spec.md §12 of the CPU path, top-k masks exact, perturbations bit for bit. The
     host checks and the per-token loss and KL terms are vppo.h's own functions, compiled
     into this unit (host and device). One difference: a logits temperature below about
     4.2e-39 (a denormal, whose log2(e)/T is beyond the float range) is VPPO_ERR_PARAM
     here, where the CPU computes such rows in double.
     Work queued earlier on the stream finishes first. When several arguments are wrong
     at once, errors that the host can see are reported before errors in device data;
     among the device-data errors the CPU function's order of checks is kept.

   ALIGNMENT
     Every device pointer must be aligned to its element type, checked on the host after
     vppo.h's own checks (VPPO_ERR_PARAM, nothing enqueued): logits data (vppo_logits)
     and gradient data (vppo_grad_out) to their dtype's size (4 for F32, 2 for BF16 and
     F16; rows need not be 16-byte aligned, any row_stride is accepted); every float and
     int32_t array (logp, ids, lse, entropy, dlogp, dentropy, dep, score, weight, adv,
     rows, fill, the vppo_prepared float buffers, launch->status) to 4; offsets and
     vppo_prepared.count to 8; device result structs of the _async forms (vppo_loss_out,
     vppo_tas_stats, vppo_topk_info, vppo_rc_out, global) to 8; uint8_t arrays (mask,
     select, keep): any. On a GPU a misaligned access is cudaErrorMisalignedAddress,
     which is sticky and ends the caller's CUDA context: it is refused before any launch.

   STREAMS
     stream (or launch->stream) NULL is the legacy default stream, whatever the caller's
     build: libvppo_cuda is compiled without --default-stream per-thread. Its work then
     waits for all earlier work on the device's blocking streams, and their later work
     waits for it. Pass cudaStreamPerThread for the calling thread's default stream, or a
     created stream to overlap with other work (one created with cudaStreamNonBlocking
     does not synchronise with the legacy stream).

   ERRORS
     VPPO_ERR_CUDA when a CUDA runtime call or a kernel launch of this call fails;
     vppo_cuda_error_string() then returns CUDA's message (per host thread). A failed
     call leaves the CUDA error state of the runtime cleared where CUDA allows it.
     Launch errors are taken from the launch's own return (cudaLaunchKernel), never from
     cudaGetLastError: an error that the caller left pending before the call is neither
     reported as this call's nor cleared by a call that succeeds.

   DETERMINISM
     Every reduction (per row, per sequence, over the batch) runs in a fixed order on a
     fixed launch shape, and no float atomics are used, so the same inputs give the same
     bits on every run on the same GPU model, in both modes and in graph replays. Results
     agree with the CPU path within §12 but not bit for bit (different summation orders),
     except top-k masks given the same scores and the perturbations, which are exact.

   PERFORMANCE NOTES
     Logits rows: one thread block per row (a warp per row below 2048 entries), one pass
     with online max/sum, 16-byte loads after a scalar head up to 16-byte alignment,
     bf16/f16 read in registers. logprobs (and the statistics pass of the backward): two
     16-byte loads in flight per thread, float sums with a lazily raised reference, the
     approximate exponent (docs/spec.md §12), no FP64 in the loop, max-first reduction.
     `make cuda-budget` prints each kernel's instruction budget (docs/cuda_budget.md). Per-sequence work (seq means, top-k, soft mask, the loss): one block
     per sequence, so a batch needs many sequences to fill the GPU.
*/
#ifndef VPPO_CUDA_H
#define VPPO_CUDA_H

#include "vppo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CUDA's message for the last VPPO_ERR_CUDA of the calling host thread ("" if none). */
const char *vppo_cuda_error_string(void);

/* ------------------------------------------------------------- synchronous mode */

/* §2 */
vppo_status vppo_cuda_dependency_sampled(const vppo_seqs *s, const float *logp,
    const float *logp_aug, vppo_estimator est, float *dep, void *stream);
vppo_status vppo_cuda_dependency_logits(const vppo_logits *orig, const vppo_logits *aug,
    vppo_divergence div, float *dep, void *stream);
vppo_status vppo_cuda_logprobs(const vppo_logits *x, const int32_t *ids,
    float *logp, float *lse, float *entropy, void *stream);
vppo_status vppo_cuda_logprobs_backward(const vppo_logits *x, const int32_t *ids,
    const float *lse, const float *entropy, const float *dlogp, const float *dentropy,
    const vppo_grad_out *dlogits, void *stream);

/* §3 */
vppo_status vppo_cuda_perturb_patch_rows(float *rows, int64_t n_rows, int64_t row_len,
    int64_t row_stride, float prob, const float *fill, uint64_t seed, void *stream);

/* §6 */
vppo_status vppo_cuda_topk_mask(const vppo_seqs *s, const float *score, double ratio,
    uint8_t *select, vppo_topk_info *info /* host, or NULL */, void *stream);
vppo_status vppo_cuda_soft_mask(const vppo_seqs *s, const float *score, double ratio,
    float *weight, void *stream);

/* §7 */
vppo_status vppo_cuda_policy_loss(const vppo_loss_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_old, const float *logp_ref,
    const float *adv, const uint8_t *select, const float *weight,
    float *dlogp, vppo_loss_out *out /* host */, void *stream);

/* §8 (p: a host struct of device buffers; p->stats and p->topk are written on the host;
   global: a host struct, or NULL) */
vppo_status vppo_cuda_prepare(const vppo_config *cfg, const vppo_seqs *s,
    const float *logp_old, const float *logp_aug, const float *dep_in,
    const float *adv_seq, const vppo_tas_stats *global, vppo_prepared *p, void *stream);
vppo_status vppo_cuda_step(const vppo_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_old, const float *logp_aug, const float *logp_ref,
    const float *adv_seq, vppo_prepared *p, float *dlogp, vppo_loss_out *out /* host */,
    void *stream);

/* rollout correction (vppo.h's vppo_rollout_correction; out: host) */
vppo_status vppo_cuda_rollout_correction(const vppo_rc_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_rollout, float *weight, uint8_t *keep,
    vppo_rc_out *out /* host */, void *stream);

/* ------------------------------------------------------------ asynchronous mode */

/* Where and with what an _async call is enqueued (see ASYNCHRONOUS MODE above). */
typedef struct vppo_cuda_launch {
    void *stream;             /* cudaStream_t; NULL: the legacy default stream */
    void *workspace;          /* device, 16-byte aligned */
    size_t workspace_bytes;   /* at least vppo_cuda_workspace_size(n_seqs) */
    int32_t *status;          /* device: receives the call's vppo_status */
} vppo_cuda_launch;

/* Workspace bytes that every _async call on a batch of up to n_seqs sequences needs
   (0 for the functions without a vppo_seqs). From the shape alone; 0 when n_seqs is
   negative or the size does not fit in a size_t. */
size_t vppo_cuda_workspace_size(int64_t n_seqs);

/* Each is its synchronous sibling with launch in place of stream; pointers marked
   "device" are host pointers in the synchronous form. */
vppo_status vppo_cuda_dependency_sampled_async(const vppo_seqs *s, const float *logp,
    const float *logp_aug, vppo_estimator est, float *dep, const vppo_cuda_launch *launch);
vppo_status vppo_cuda_dependency_logits_async(const vppo_logits *orig, const vppo_logits *aug,
    vppo_divergence div, float *dep, const vppo_cuda_launch *launch);
vppo_status vppo_cuda_logprobs_async(const vppo_logits *x, const int32_t *ids,
    float *logp, float *lse, float *entropy, const vppo_cuda_launch *launch);
vppo_status vppo_cuda_logprobs_backward_async(const vppo_logits *x, const int32_t *ids,
    const float *lse, const float *entropy, const float *dlogp, const float *dentropy,
    const vppo_grad_out *dlogits, const vppo_cuda_launch *launch);
vppo_status vppo_cuda_perturb_patch_rows_async(float *rows, int64_t n_rows, int64_t row_len,
    int64_t row_stride, float prob, const float *fill, uint64_t seed,
    const vppo_cuda_launch *launch);
vppo_status vppo_cuda_topk_mask_async(const vppo_seqs *s, const float *score, double ratio,
    uint8_t *select, vppo_topk_info *info /* device, or NULL */, const vppo_cuda_launch *launch);
vppo_status vppo_cuda_soft_mask_async(const vppo_seqs *s, const float *score, double ratio,
    float *weight, const vppo_cuda_launch *launch);
vppo_status vppo_cuda_policy_loss_async(const vppo_loss_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_old, const float *logp_ref,
    const float *adv, const uint8_t *select, const float *weight,
    float *dlogp, vppo_loss_out *out /* device */, const vppo_cuda_launch *launch);
/* p: a host struct of device buffers; its stats and topk fields are not touched: the
   TAS statistics go to *stats and the top-k summary to *topk (device, each may be NULL);
   global: device, or NULL */
vppo_status vppo_cuda_prepare_async(const vppo_config *cfg, const vppo_seqs *s,
    const float *logp_old, const float *logp_aug, const float *dep_in,
    const float *adv_seq, const vppo_tas_stats *global, const vppo_prepared *p,
    vppo_tas_stats *stats, vppo_topk_info *topk, const vppo_cuda_launch *launch);
vppo_status vppo_cuda_step_async(const vppo_config *cfg, const vppo_seqs *s, const float *logp,
    const float *logp_old, const float *logp_aug, const float *logp_ref,
    const float *adv_seq, const vppo_prepared *p, float *dlogp, vppo_loss_out *out /* device */,
    vppo_tas_stats *stats, vppo_topk_info *topk, const vppo_cuda_launch *launch);
vppo_status vppo_cuda_rollout_correction_async(const vppo_rc_config *cfg, const vppo_seqs *s,
    const float *logp, const float *logp_rollout, float *weight, uint8_t *keep,
    vppo_rc_out *out /* device */, const vppo_cuda_launch *launch);

#ifdef __cplusplus
}
#endif

#endif /* VPPO_CUDA_H */
