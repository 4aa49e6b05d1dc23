/* vppo_cuda.h - the CUDA translation unit of vppo.h (SPEC §11). MIT licence, see vppo.h.

   The functions below are the vppo.h functions of the same name (§2, §6, §7, §8 and
   vppo_perturb_patch_rows) on device pointers, with one more argument: the CUDA stream
   to run on (a cudaStream_t passed as void *; NULL is the legacy default stream).
   This header is plain C and includes no CUDA header; link libvppo_cuda.a (make cuda)
   and the CUDA runtime (-lcudart).

   WHAT LIVES WHERE
     Host memory: the argument structs themselves (vppo_seqs, vppo_logits, vppo_grad_out,
     vppo_config, vppo_loss_config, vppo_prepared, vppo_tas_stats), and the results
     that the CPU call returns in a struct (vppo_loss_out, vppo_topk_info, and the
     stats/topk fields of vppo_prepared), which are written after the stream has been
     synchronised.
     Device memory: every array the structs point to (offsets, mask, logits, ids, the
     per-token and per-sequence arrays, the vppo_prepared buffers) and every array
     argument.

   SEMANTICS
     The same as the CPU functions: the same argument checks and status codes, results
     within SPEC §12 of the CPU path, top-k masks exact, perturbations bit for bit. One
     difference: a logits temperature below about 4.2e-39 (a denormal, whose log2(e)/T
     is beyond the float range) is VPPO_ERR_PARAM here, where the CPU computes such rows
     in double.
     Every call is synchronous with respect to its stream: it enqueues its kernels,
     waits for the stream, and returns the status (data errors such as a NaN can only
     be known once the kernels ran). Work queued earlier on the stream finishes first.
     When several arguments are wrong at once, errors that the host can see (NULL
     pointers, parameters, sizes held in host structs) are reported before errors in
     device data (offsets, masks, values, token ids); among the device-data errors the
     CPU function's order of checks is kept.

   ERRORS
     VPPO_ERR_CUDA when a CUDA runtime call or a kernel launch fails;
     vppo_cuda_error_string() then returns CUDA's message (per host thread). A failed
     call leaves the CUDA error state of the runtime cleared where CUDA allows it.

   MEMORY
     The fixed signatures leave no room for a workspace, so each call takes a small
     scratch block from the device's stream-ordered memory pool (cudaMallocAsync) and
     returns it before it returns: 256 bytes plus, for the per-sequence functions, 144
     bytes per sequence. Nothing else is allocated and nothing is kept between calls;
     there is no global state apart from the per-thread error string.

   DETERMINISM
     Every reduction (per row, per sequence, over the batch) runs in a fixed order on a
     fixed launch shape, and no float atomics are used, so the same inputs give the same
     bits on every run on the same GPU model. Results agree with the CPU path within
     §12 but not bit for bit (different summation orders), except top-k masks given the
     same scores and the perturbations, which are exact.

   PERFORMANCE NOTES
     Logits rows: one thread block per row (a warp per row below 2048 entries), one pass
     with online max/sum, 16-byte loads when the row start allows it, bf16/f16 read in
     registers. Per-sequence work (seq means, top-k, soft mask, the loss): one block
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

#ifdef __cplusplus
}
#endif

#endif /* VPPO_CUDA_H */
