#!/usr/bin/env python3
"""bench/peers_liger.py - the fused linear head end to end against Liger-Kernel on PyTorch CPU.

    make bench-peers        (runs bench/peers.py, then this with build/libvppo_bench.so and,
                             when OpenBLAS is installed, build/libvppo_bench_cblas.so)
    python3 bench/peers_liger.py --lib build/libvppo_bench.so [--lib-cblas PATH] [--quick]

One GRPO/DAPO step of the output layer, n = 512 tokens (8 sequences of 64, the last
tokens of some masked), d = 1024, V = 32,000, temperature 1, one thread for everybody
(torch.set_num_threads(1), OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, set before anything
loads):

    vppo.h   vppo_linear_logprobs (ids -> logp, lse) -> vppo_policy_loss (PG_CLIP, token
             ratio, token mean, clip 0.2 / 0.28, no dual clip, no KL, no entropy term)
             -> vppo_linear_logprobs_backward (dhidden, dweight; dweight zeroed first,
             inside the timed region, as a caller must)
    Liger    LigerFusedLinearGRPOLoss(beta=0, compiled=False, use_ref_model=False,
             loss_type="dapo", epsilon 0.2 / 0.28, chunk_size default) forward +
             loss.backward() (input and weight gradients)

Both get the same float32 arrays (torch.from_numpy shares them). Times are medians of
--reps (>= 5) after one warm-up, the runners interleaved within every repetition. Correctness, checked on the same call: the loss of both
against a float64 evaluation (logits in float64 from the same inputs) within SPEC §12's
batch-scalar bound widened by the f32 GEMM (the logits are f32 GEMM results: |loss err|
<= 1e-6 (1 + |ref|) + 1e-5 is asserted for both), and vppo's dhidden and dweight against
Liger's: max |vppo - liger| <= 1e-5 * max |liger| + 1e-7. A failed check exits 1.
Without numpy, torch or liger_kernel the script says so and exits 0.
"""
import argparse
import ctypes
import os
import sys
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (bench/peers.py: missing_deps)


def missing_deps():
    missing = peers.missing_deps()        # numpy, torch
    try:
        __import__("liger_kernel")
    except Exception:  # ImportError, or a broken install
        missing.append("liger_kernel")
    return missing


def load(path):
    from vppo_ctypes import VppoSeqs, VppoLossConfig
    lib = ctypes.CDLL(os.path.abspath(path))
    P, I64, F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
    lib.vppo_status_string.restype = ctypes.c_char_p
    lib.vppo_status_string.argtypes = [ctypes.c_int]
    lib.vppo_linear_workspace.restype = ctypes.c_size_t
    lib.vppo_linear_workspace.argtypes = [I64, I64, I64]
    lib.vppo_linear_logprobs.restype = ctypes.c_int
    lib.vppo_linear_logprobs.argtypes = [P, P, I64, I64, I64, F, P, P, P, P, P, ctypes.c_size_t]
    lib.vppo_linear_logprobs_backward.restype = ctypes.c_int
    lib.vppo_linear_logprobs_backward.argtypes = [P, P, I64, I64, I64, F, P, P, P, P, P, P, P, P,
                                                  ctypes.c_size_t]
    lib.vppo_loss_config_default.restype = VppoLossConfig
    lib.vppo_policy_loss.restype = ctypes.c_int
    lib.vppo_policy_loss.argtypes = [ctypes.POINTER(VppoLossConfig), ctypes.POINTER(VppoSeqs),
                                     P, P, P, P, P, P, P, P]
    lib.vppo_isa_active.restype = ctypes.c_int
    lib.vppo_isa_name.restype = ctypes.c_char_p
    lib.vppo_isa_name.argtypes = [ctypes.c_int]
    lib.vppo_bench_threads.restype = ctypes.c_int
    lib.vppo_bench_threads.argtypes = [ctypes.c_int]
    return lib


class LossOut(ctypes.Structure):
    # vppo_loss_out: { double loss, pg_loss, kl_loss, entropy_loss, clipfrac, clipfrac_dual,
    #                  ppo_kl; int64_t n_valid, n_selected; }
    _fields_ = [(f, ctypes.c_double) for f in ("loss", "pg_loss", "kl_loss", "entropy_loss", "clipfrac",
                                              "clipfrac_dual", "ppo_kl")] + \
               [("n_valid", ctypes.c_int64), ("n_selected", ctypes.c_int64)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--lib-cblas", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    miss = missing_deps()
    if miss:
        print("## Fused head vs Liger-Kernel: skipped (python3 lacks %s; pip install --no-deps "
              "liger-kernel for the last)\n" % ", ".join(miss))
        return 0
    import numpy as np
    import torch
    from liger_kernel.chunked_loss import LigerFusedLinearGRPOLoss
    from vppo_ctypes import VppoSeqs
    torch.set_num_threads(1)
    B, T, d, V = (4, 16, 64, 3000) if a.quick else (8, 64, 1024, 32000)
    n = B * T
    reps = 1 if a.quick else max(5, a.reps)
    rng = np.random.default_rng(16)
    H = rng.standard_normal((n, d), dtype=np.float32)
    W = (rng.standard_normal((V, d), dtype=np.float32) * np.float32(2.0 / np.sqrt(d))).astype(np.float32)
    ids = rng.integers(0, V, size=n).astype(np.int32)
    mask = np.ones((B, T), dtype=np.uint8)
    for b in range(0, B, 2):
        mask[b, T - 1 - b:] = 0                         # ragged ends on some sequences
    adv_seq = rng.standard_normal(B).astype(np.float32)
    adv = np.repeat(adv_seq, T).astype(np.float32)
    # float64 reference of the current log-probs; the old ones differ so that clipping happens
    z64 = torch.from_numpy(H).double() @ torch.from_numpy(W).double().T
    lp64 = torch.log_softmax(z64, dim=-1).gather(1, torch.from_numpy(ids).long()[:, None])[:, 0]
    del z64
    old = (lp64.numpy() + 0.2 * rng.standard_normal(n)).astype(np.float32)
    m = mask.reshape(-1).astype(np.float64)
    r = np.exp(lp64.numpy() - old.astype(np.float64))
    A = adv.astype(np.float64)
    ref_loss = float(np.sum(-np.minimum(A * r, A * np.clip(r, 0.8, 1.28)) * m) / m.sum())

    # ---- Liger
    Ht = torch.from_numpy(H).view(B, T, d).requires_grad_(True)   # Liger takes [B, T, d]
    Wt = torch.from_numpy(W).requires_grad_(True)
    liger = LigerFusedLinearGRPOLoss(beta=0.0, compiled=False, use_ref_model=False, epsilon_low=0.2,
                                     epsilon_high=0.28, loss_type="dapo", temperature=1.0)
    ids_t = torch.from_numpy(ids).long().view(B, T)
    mask_t = torch.from_numpy(mask).long()
    adv_t = torch.from_numpy(adv_seq)
    old_t = torch.from_numpy(old).view(B, T)
    res = {}

    def run_liger():
        Ht.grad = None
        Wt.grad = None
        out = liger(Ht, Wt, ids_t, mask_t, adv_t, old_per_token_logps=old_t)
        loss = out[0] if isinstance(out, (tuple, list)) else out
        loss.backward()
        res["liger_loss"] = float(loss.detach())

    def setup_vppo(label, path):
        lib = load(path)
        lib.vppo_bench_threads(1)
        ws = lib.vppo_linear_workspace(n, d, V)
        v = {"label": label, "lib": lib, "work": np.empty(ws, dtype=np.uint8), "logp": np.empty(n, np.float32),
             "lse": np.empty(n, np.float32), "dlogp": np.empty(n, np.float32), "dh": np.empty((n, d), np.float32),
             "dw": np.empty((V, d), np.float32), "offs": np.arange(B + 1, dtype=np.int64) * T,
             "mask": mask.reshape(-1).copy(), "out": LossOut(), "cfg": lib.vppo_loss_config_default()}
        v["seqs"] = VppoSeqs(B, v["offs"].ctypes.data, v["mask"].ctypes.data)
        v["cfg"].clip_low, v["cfg"].clip_high, v["cfg"].clip_dual, v["cfg"].entropy_coef = 0.2, 0.28, 0.0, 0.0
        p = lambda x: x.ctypes.data  # noqa: E731

        def check(st, what):
            if st != 0:
                raise SystemExit("peers_liger.py: %s: %s" % (what, lib.vppo_status_string(st).decode()))

        def run():
            check(lib.vppo_linear_logprobs(p(H), p(W), n, d, V, 1.0, p(ids), p(v["logp"]), p(v["lse"]), None,
                                           p(v["work"]), ws), "vppo_linear_logprobs")
            check(lib.vppo_policy_loss(ctypes.byref(v["cfg"]), ctypes.byref(v["seqs"]), p(v["logp"]), p(old), None,
                                       p(adv), None, None, p(v["dlogp"]), ctypes.byref(v["out"])), "vppo_policy_loss")
            v["dw"].fill(0.0)
            check(lib.vppo_linear_logprobs_backward(p(H), p(W), n, d, V, 1.0, p(ids), p(v["lse"]), None,
                                                    p(v["dlogp"]), None, p(v["dh"]), p(v["dw"]), p(v["work"]), ws),
                  "vppo_linear_logprobs_backward")
        v["run"] = run
        return v

    libs = [setup_vppo("no BLAS", a.lib)] + ([setup_vppo("VPPO_USE_CBLAS", a.lib_cblas)] if a.lib_cblas else [])
    # side by side: every repetition runs Liger and each vppo build in turn, so that the load
    # of a shared machine falls on all of them alike; the medians are taken per runner
    runners = [run_liger] + [v["run"] for v in libs]
    times = [[] for _ in runners]
    for f in runners:
        f()                                              # warm-up
    for _ in range(reps):
        for i, f in enumerate(runners):
            t0 = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t0)
    med = [float(np.median(t)) for t in times]
    t_liger = med[0]
    l_dh, l_dw = Ht.grad.numpy().reshape(n, d).copy(), Wt.grad.numpy().copy()

    print("## Fused linear head end to end vs Liger-Kernel (LigerFusedLinearGRPOLoss, PyTorch %s CPU), "
          "1 thread\n" % torch.__version__)
    print("n = %d (%d x %d), d = %d, V = %d; medians of %d repetitions, the runners interleaved, after a "
          "warm-up; loss (float64 reference) %.6f\n" % (n, B, T, d, V, reps, ref_loss))
    print("| build | ISA | vppo ms | Liger ms | speed-up | loss err vppo | loss err Liger | dhidden max diff | "
          "dweight max diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    ok = abs(res["liger_loss"] - ref_loss) <= 1e-6 * (1 + abs(ref_loss)) + 1e-5
    for v, t_vppo in zip(libs, med[1:]):
        e_v, e_l = abs(v["out"].loss - ref_loss), abs(res["liger_loss"] - ref_loss)
        d_h = float(np.max(np.abs(v["dh"] - l_dh)))
        d_w = float(np.max(np.abs(v["dw"] - l_dw)))
        ok_row = e_v <= 1e-6 * (1 + abs(ref_loss)) + 1e-5 and \
            d_h <= 1e-5 * float(np.max(np.abs(l_dh))) + 1e-7 and d_w <= 1e-5 * float(np.max(np.abs(l_dw))) + 1e-7
        ok = ok and ok_row
        lib = v["lib"]
        print("| %s | %s | %.1f | %.1f | %.2fx | %.1e | %.1e | %.1e | %.1e |%s" % (
            v["label"], lib.vppo_isa_name(lib.vppo_isa_active()).decode(), t_vppo * 1e3, t_liger * 1e3,
            t_liger / t_vppo, e_v, e_l, d_h, d_w, "" if ok_row else " CHECK FAILED"))
    print("\n(speed-up: Liger time / vppo time; the diffs are max |vppo - Liger| over the gradients)\n")
    if not ok:
        print("peers_liger.py: a correctness check failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
