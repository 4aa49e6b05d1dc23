/* examples/engine_graph.cu - a whole VPPO step inside one CUDA graph, as an engine runs it.

   The step, on device buffers that stay where they are from one replay to the next:
     1. logprobs of the sampled tokens under the original inputs' logits (with lse and
        entropy, kept for the backward) and under the perturbed inputs' logits: the two
        logits matrices give the token dependency (SPEC §2.1, inside vppo_cuda_step);
     2. vppo_cuda_step: dependency, TAS, TGF, the loss and dlogp;
     3. the backward of the logprobs into the original logits (dlogits, bf16).
   Each call is the asynchronous form: no synchronisation, allocation or copy inside, the
   scratch from one workspace, the statuses and the loss in device memory. The four calls
   are captured once into a graph; each training step then writes new logits into the
   same buffers and launches the graph. The program checks that a replay gives the bits of
   the synchronous calls, and exits 0 when it does.

   Build: make cuda (with nvcc: build/engine_graph); on the CPU emulator of tests/cuda_emu
   it runs in make test (build/engine_graph_emu). usage: engine_graph */
#define VPPO_NO_SIMD           /* the CPU part of vppo.h, here for vppo_config_default & co. */
#define VPPO_STATIC
#define VPPO_IMPLEMENTATION
#include "../vppo.h"
#include "../vppo_cuda.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B 8        /* sequences (responses) */
#define T 24       /* tokens per sequence */
#define V 600      /* vocabulary */
#define N (B * T)  /* tokens = logits rows */

static void must(cudaError_t e, const char *what)
{
    if (e == cudaSuccess) return;
    fprintf(stderr, "engine_graph: %s: %s\n", what, cudaGetErrorString(e));
    exit(1);
}
#define MUST(call) must((call), #call)

static void vppo_must(vppo_status st, const char *what)
{
    if (st == VPPO_OK) return;
    fprintf(stderr, "engine_graph: %s: %s %s\n", what, vppo_status_string(st), vppo_cuda_error_string());
    exit(1);
}
#define VPPO_MUST(call) vppo_must((call), #call)

static void *dev(size_t bytes)
{
    void *p = NULL;
    MUST(cudaMalloc(&p, bytes));
    return p;
}

static void *upload(const void *host, size_t bytes)
{
    void *p = dev(bytes);
    MUST(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice));
    return p;
}

static float uniform(unsigned *state) { *state = *state * 1664525u + 1013904223u; return (float)(*state >> 8) / 16777216.0f; }

int main(void)
{
    /* --- the batch, made up on the host (an engine has it on the device already) */
    static float z[N * V], z_aug[N * V], logp_old[N], adv_seq[B];
    static int32_t ids[N];
    static int64_t offsets[B + 1];
    unsigned rs = 12345u;
    int64_t i;
    for (i = 0; i < N * V; ++i) { z[i] = 4.0f * uniform(&rs) - 2.0f; z_aug[i] = z[i] + 0.5f * uniform(&rs); }
    for (i = 0; i < N; ++i) { ids[i] = (int32_t)(uniform(&rs) * V); logp_old[i] = -6.4f - 0.1f * uniform(&rs); }
    for (i = 0; i < B; ++i) adv_seq[i] = uniform(&rs) - 0.5f;
    VPPO_MUST(vppo_offsets_uniform(offsets, B, T));

    /* --- device buffers, allocated once */
    vppo_seqs s = { B, (const int64_t *)upload(offsets, sizeof offsets), NULL };
    vppo_logits orig = { upload(z, sizeof z), VPPO_F32, N, V, V, 1.0f }, aug = orig;
    aug.data = upload(z_aug, sizeof z_aug);
    const int32_t *d_ids = (const int32_t *)upload(ids, sizeof ids);
    float *d_logp_old = (float *)upload(logp_old, sizeof logp_old), *d_adv = (float *)upload(adv_seq, sizeof adv_seq);
    float *d_logp = (float *)dev(N * 4), *d_lse = (float *)dev(N * 4), *d_ent = (float *)dev(N * 4);
    float *d_logp_aug = (float *)dev(N * 4), *d_dlogp = (float *)dev(N * 4);
    vppo_grad_out dlogits = { dev((size_t)N * V * 2), VPPO_BF16, V };
    vppo_prepared p;
    memset(&p, 0, sizeof p);
    p.dep = (float *)dev(N * 4); p.traj_dep = (float *)dev(B * 4); p.count = (int64_t *)dev(B * 8);
    p.scale = (float *)dev(B * 4); p.adv = (float *)dev(N * 4); p.select = (uint8_t *)dev(N);
    vppo_loss_out *d_out = (vppo_loss_out *)dev(sizeof(vppo_loss_out));
    int32_t *d_status = (int32_t *)dev(4 * sizeof(int32_t));
    const vppo_config cfg = vppo_config_default();
    cudaStream_t stream;
    MUST(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

    /* --- the ten lines an engine writes: one workspace, a launch struct per call (its own
       status word), the step captured once, replayed every training step */
    vppo_cuda_launch L = { stream, NULL, vppo_cuda_workspace_size(B), NULL };
    L.workspace = dev(L.workspace_bytes);
    vppo_cuda_launch L0 = L, L1 = L, L2 = L, L3 = L;
    L0.status = d_status; L1.status = d_status + 1; L2.status = d_status + 2; L3.status = d_status + 3;
    cudaGraph_t graph;
    cudaGraphExec_t step_graph;
    MUST(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    VPPO_MUST(vppo_cuda_logprobs_async(&orig, d_ids, d_logp, d_lse, d_ent, &L0));
    VPPO_MUST(vppo_cuda_logprobs_async(&aug, d_ids, d_logp_aug, NULL, NULL, &L1));
    VPPO_MUST(vppo_cuda_step_async(&cfg, &s, d_logp, d_logp_old, d_logp_aug, NULL, d_adv, &p, d_dlogp, d_out, NULL,
                                   NULL, &L2));
    VPPO_MUST(vppo_cuda_logprobs_backward_async(&orig, d_ids, d_lse, d_ent, d_dlogp, NULL, &dlogits, &L3));
    MUST(cudaStreamEndCapture(stream, &graph));
    MUST(cudaGraphInstantiate(&step_graph, graph, 0));

    /* --- training steps: (new logits into orig.data and aug.data,) launch, later read back */
    int32_t status[4];
    vppo_loss_out out;
    int step;
    for (step = 0; step < 3; ++step) MUST(cudaGraphLaunch(step_graph, stream));
    MUST(cudaMemcpyAsync(status, d_status, sizeof status, cudaMemcpyDeviceToHost, stream));
    MUST(cudaMemcpyAsync(&out, d_out, sizeof out, cudaMemcpyDeviceToHost, stream));
    MUST(cudaStreamSynchronize(stream));
    for (i = 0; i < 4; ++i) vppo_must((vppo_status)status[i], "a status word of the graph");
    printf("engine_graph: 3 replays of a 4-call graph: loss %.6f (pg %.6f, entropy %.6f), %lld of %lld tokens "
           "selected\n", out.loss, out.pg_loss, out.entropy_loss, (long long)out.n_selected, (long long)out.n_valid);

    /* --- the same step by the synchronous calls: the same bits */
    static uint16_t g_graph[N * V], g_sync[N * V];
    vppo_loss_out out_sync;
    MUST(cudaMemcpy(g_graph, dlogits.data, sizeof g_graph, cudaMemcpyDeviceToHost));
    VPPO_MUST(vppo_cuda_logprobs(&orig, d_ids, d_logp, d_lse, d_ent, NULL));
    VPPO_MUST(vppo_cuda_logprobs(&aug, d_ids, d_logp_aug, NULL, NULL, NULL));
    VPPO_MUST(vppo_cuda_step(&cfg, &s, d_logp, d_logp_old, d_logp_aug, NULL, d_adv, &p, d_dlogp, &out_sync, NULL));
    VPPO_MUST(vppo_cuda_logprobs_backward(&orig, d_ids, d_lse, d_ent, d_dlogp, NULL, &dlogits, NULL));
    MUST(cudaMemcpy(g_sync, dlogits.data, sizeof g_sync, cudaMemcpyDeviceToHost));
    const int same = memcmp(&out, &out_sync, sizeof out) == 0 && memcmp(g_graph, g_sync, sizeof g_sync) == 0;
    printf("engine_graph: graph replay %s the synchronous calls bit for bit\n", same ? "equals" : "DIFFERS FROM");

    MUST(cudaGraphExecDestroy(step_graph));
    MUST(cudaGraphDestroy(graph));
    MUST(cudaStreamDestroy(stream));
    void *bufs[] = { (void *)s.offsets, (void *)orig.data, (void *)aug.data, (void *)d_ids, d_logp_old, d_adv, d_logp,
                     d_lse, d_ent, d_logp_aug, d_dlogp, dlogits.data, p.dep, p.traj_dep, p.count, p.scale, p.adv,
                     p.select, d_out, d_status, L.workspace };
    for (i = 0; i < (int64_t)(sizeof bufs / sizeof bufs[0]); ++i) MUST(cudaFree(bufs[i]));
    return same ? 0 : 1;
}
