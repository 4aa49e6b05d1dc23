#!/usr/bin/env python3
"""bench/peers.py - vppo.h next to PyTorch CPU on the same inputs, in one process.

    make bench-peers                        (builds build/libvppo_bench.so, runs this)
    python3 bench/peers.py --lib build/libvppo_bench.so [--quick] [--reps N]

vppo.h is called through ctypes on a shared library built from bench/vppo_so.c; PyTorch
runs the usual eager code for the same quantities:

    logp            torch.log_softmax + gather            vppo_logprobs(ids, logp)
    logp+lse+H      + entropy -(p * logp).sum(-1)          vppo_logprobs(ids, logp, lse, H)
    KL(P||Q)        log_softmax x2 + kl_div(log_target)    vppo_dependency_logits(KL)
    backward        autograd of sum(g*logp) + sum(h*H)     vppo_logprobs_backward (lse, H given)
                    w.r.t. the logits (graph kept; only
                    the backward is timed)

Inputs are the same numpy float32 arrays (torch.from_numpy shares them; bf16 is
torch's bf16 rounding, the same bits handed to vppo). V in {32000, 151936}, n = 256,
f32 and bf16, 1 and 2 threads: each thread count runs in its own subprocess with
OMP_NUM_THREADS set (and torch.set_num_threads), so both libraries use that many.
Times are medians after one warm-up. Both results are checked against a float64
evaluation of the same (rounded) inputs: the max |error| columns.

Needs numpy and torch; without them it prints a message and exits 0.
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import time

MARK = "@@PEERS_JSON@@ "


def missing_deps():
    missing = []
    for mod in ("numpy", "torch"):
        try:
            __import__(mod)
        except Exception:  # ImportError, or a broken install
            missing.append(mod)
    return missing


# ----------------------------------------------------------------- ctypes side

# The struct layouts live in bench/vppo_ctypes.py (shared with bench/bench_cuda_torch.py).
from vppo_ctypes import VppoLogits, VppoGradOut, VPPO_F32, VPPO_BF16, VPPO_DIV_KL  # noqa: E402


def load_lib(path):
    lib = ctypes.CDLL(os.path.abspath(path))
    P = ctypes.c_void_p
    lib.vppo_status_string.restype = ctypes.c_char_p
    lib.vppo_status_string.argtypes = [ctypes.c_int]
    lib.vppo_logprobs.restype = ctypes.c_int
    lib.vppo_logprobs.argtypes = [ctypes.POINTER(VppoLogits), P, P, P, P]
    lib.vppo_dependency_logits.restype = ctypes.c_int
    lib.vppo_dependency_logits.argtypes = [ctypes.POINTER(VppoLogits), ctypes.POINTER(VppoLogits),
                                           ctypes.c_int, P]
    lib.vppo_logprobs_backward.restype = ctypes.c_int
    lib.vppo_logprobs_backward.argtypes = [ctypes.POINTER(VppoLogits), P, P, P, P, P,
                                           ctypes.POINTER(VppoGradOut)]
    lib.vppo_isa_active.restype = ctypes.c_int
    lib.vppo_isa_name.restype = ctypes.c_char_p
    lib.vppo_isa_name.argtypes = [ctypes.c_int]
    lib.vppo_bench_threads.restype = ctypes.c_int
    lib.vppo_bench_threads.argtypes = [ctypes.c_int]
    lib.vppo_bench_sizeof.restype = ctypes.c_int
    lib.vppo_bench_sizeof.argtypes = [ctypes.c_int]
    if lib.vppo_bench_sizeof(0) != ctypes.sizeof(VppoLogits) or \
       lib.vppo_bench_sizeof(1) != ctypes.sizeof(VppoGradOut):
        raise SystemExit("peers.py: the ctypes layouts of vppo_logits / vppo_grad_out do not "
                         "match the library (%d/%d vs %d/%d bytes)" % (
                             lib.vppo_bench_sizeof(0), lib.vppo_bench_sizeof(1),
                             ctypes.sizeof(VppoLogits), ctypes.sizeof(VppoGradOut)))
    return lib


def check(lib, st, what):
    if st != 0:
        raise RuntimeError("%s: %s" % (what, lib.vppo_status_string(st).decode()))


def median_time(fn, reps, warm=1):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    m = len(ts)
    return ts[m // 2] if m % 2 else 0.5 * (ts[m // 2 - 1] + ts[m // 2])


# ------------------------------------------------------------------ one process

def child(args):
    import numpy as np
    import torch
    import torch.nn.functional as F

    threads = args.threads
    torch.set_num_threads(threads)
    lib = load_lib(args.lib)
    vppo_threads = lib.vppo_bench_threads(threads)
    rows = []
    n = 16 if args.quick else 256
    vocabs = [512, 2048] if args.quick else [32000, 151936]
    reps = 1 if args.quick else args.reps
    warm = 0 if args.quick else 1
    rng = np.random.default_rng(1234)

    def ptr(a):
        if isinstance(a, torch.Tensor):
            assert a.is_contiguous()
            return ctypes.c_void_p(a.data_ptr())
        assert a.flags["C_CONTIGUOUS"]
        return ctypes.c_void_p(a.ctypes.data)

    def maxerr(a, ref):
        a = a.detach().double() if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a)).double()
        return float((a.reshape(ref.shape) - ref).abs().max())

    for V in vocabs:
        orig = (3.0 * rng.standard_normal((n, V), dtype=np.float32)).astype(np.float32)
        aug = (orig + 0.1 * rng.standard_normal((n, V), dtype=np.float32)).astype(np.float32)
        ids = rng.integers(0, V, size=n, dtype=np.int32)
        g = rng.standard_normal(n, dtype=np.float32)
        h = (0.06 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)
        ids_t = torch.from_numpy(ids).long().unsqueeze(1)
        g_t, h_t = torch.from_numpy(g), torch.from_numpy(h)

        for dtype in ("f32", "bf16"):
            if dtype == "f32":
                xt, yt = torch.from_numpy(orig), torch.from_numpy(aug)
                vx_data, vy_data, vdt = xt, yt, VPPO_F32
            else:
                xt = torch.from_numpy(orig).to(torch.bfloat16).contiguous()
                yt = torch.from_numpy(aug).to(torch.bfloat16).contiguous()
                vx_data, vy_data, vdt = xt.view(torch.int16), yt.view(torch.int16), VPPO_BF16
            tdt = xt.dtype
            vx = VppoLogits(ptr(vx_data), vdt, n, V, V, 1.0)
            vy = VppoLogits(ptr(vy_data), vdt, n, V, V, 1.0)

            # float64 reference on exactly these values
            x64, y64 = xt.double(), yt.double()
            lp64 = torch.log_softmax(x64, -1)
            lq64 = torch.log_softmax(y64, -1)
            ref_logp = lp64.gather(1, ids_t).squeeze(1)
            ref_lse = torch.logsumexp(x64, -1)
            ref_ent = -(lp64.exp() * lp64).sum(-1)
            ref_kl = (lp64.exp() * (lp64 - lq64)).sum(-1)
            p64 = lp64.exp()
            ref_grad = -g_t.double().unsqueeze(1) * p64 \
                - h_t.double().unsqueeze(1) * p64 * (lp64 + ref_ent.unsqueeze(1))
            ref_grad.scatter_add_(1, ids_t, g_t.double().unsqueeze(1))
            del x64, y64, lq64, p64

            logp = np.zeros(n, np.float32)
            lse = np.zeros(n, np.float32)
            ent = np.zeros(n, np.float32)
            dep = np.zeros(n, np.float32)
            out = {}

            def row(op, t_torch, t_vppo, e_torch, e_vppo, agree):
                rows.append(dict(op=op, V=V, dtype=dtype, thr=threads, torch_ms=t_torch * 1e3,
                                 vppo_ms=t_vppo * 1e3, err_torch=e_torch, err_vppo=e_vppo, agree=agree))

            def dif(t, v):   # max |torch - vppo|
                return maxerr(t, torch.from_numpy(v).double() if isinstance(v, np.ndarray) else v.double())

            # logp only
            def t_logp():
                out["logp"] = torch.log_softmax(xt, -1).gather(1, ids_t).squeeze(1)

            def v_logp():
                check(lib, lib.vppo_logprobs(ctypes.byref(vx), ptr(ids), ptr(logp), None, None),
                      "vppo_logprobs")
            tt = median_time(t_logp, reps, warm)
            tv = median_time(v_logp, reps, warm)
            row("logp", tt, tv, maxerr(out["logp"], ref_logp), maxerr(logp, ref_logp), dif(out["logp"], logp))

            # logp + lse + entropy
            def t_full():
                ls = torch.log_softmax(xt, -1)
                out["logp"] = ls.gather(1, ids_t).squeeze(1)
                out["ent"] = -(ls.exp() * ls).sum(-1)

            def v_full():
                check(lib, lib.vppo_logprobs(ctypes.byref(vx), ptr(ids), ptr(logp), ptr(lse), ptr(ent)),
                      "vppo_logprobs")
            tt = median_time(t_full, reps, warm)
            tv = median_time(v_full, reps, warm)
            e_t = max(maxerr(out["logp"], ref_logp), maxerr(out["ent"], ref_ent))
            e_v = max(maxerr(logp, ref_logp), maxerr(ent, ref_ent), maxerr(lse, ref_lse))
            row("logp+lse+entropy", tt, tv, e_t, e_v, max(dif(out["logp"], logp), dif(out["ent"], ent)))

            # KL(P || Q)
            def t_kl():
                lp = torch.log_softmax(xt, -1)
                lq = torch.log_softmax(yt, -1)
                out["kl"] = F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1)

            def v_kl():
                check(lib, lib.vppo_dependency_logits(ctypes.byref(vx), ctypes.byref(vy), VPPO_DIV_KL,
                                                      ptr(dep)), "vppo_dependency_logits")
            tt = median_time(t_kl, reps, warm)
            tv = median_time(v_kl, reps, warm)
            row("KL(P||Q)", tt, tv, maxerr(out["kl"], ref_kl), maxerr(dep, ref_kl), dif(out["kl"], dep))

            # backward of L = sum g*logp + sum h*H with respect to the logits
            xg = xt.detach().clone().requires_grad_(True)
            ls = torch.log_softmax(xg, -1)
            loss = (g_t.to(tdt) * ls.gather(1, ids_t).squeeze(1)).sum() \
                + (h_t.to(tdt) * -(ls.exp() * ls).sum(-1)).sum()

            def t_bw():
                out["grad"] = torch.autograd.grad(loss, xg, retain_graph=True)[0]

            check(lib, lib.vppo_logprobs(ctypes.byref(vx), None, None, ptr(lse), ptr(ent)), "vppo_logprobs")
            grad = torch.empty((n, V), dtype=tdt)
            gout = VppoGradOut(ptr(grad), VPPO_F32 if dtype == "f32" else VPPO_BF16, V)

            def v_bw():
                check(lib, lib.vppo_logprobs_backward(ctypes.byref(vx), ptr(ids), ptr(lse), ptr(ent),
                                                      ptr(g), ptr(h), ctypes.byref(gout)),
                      "vppo_logprobs_backward")
            tt = median_time(t_bw, reps, warm)
            tv = median_time(v_bw, reps, warm)
            row("backward (dlogp+dH)", tt, tv, maxerr(out["grad"], ref_grad), maxerr(grad, ref_grad),
                dif(out["grad"], grad))
            del xg, ls, loss, out, grad, ref_grad

    info = dict(torch=torch.__version__, numpy=np.__version__, torch_threads=torch.get_num_threads(),
                vppo_threads=vppo_threads, isa=lib.vppo_isa_name(lib.vppo_isa_active()).decode(),
                rows=rows)
    print(MARK + json.dumps(info), flush=True)


# ------------------------------------------------------------------ the parent

def parent(args):
    missing = missing_deps()
    if missing:
        print("bench-peers: python module%s %s not found; skipped (pip install numpy torch)"
              % ("s" if len(missing) > 1 else "", " and ".join(missing)))
        return 0
    if not os.path.exists(args.lib):
        print("bench-peers: %s not found (make bench-peers builds it)" % args.lib)
        return 1
    all_rows, infos = [], []
    for t in args.thread_list:
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = str(t)
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--threads", str(t),
               "--lib", args.lib, "--reps", str(args.reps)] + (["--quick"] if args.quick else [])
        res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith(MARK)]
        if res.returncode != 0 or not lines:
            sys.stderr.write(res.stdout + res.stderr)
            print("bench-peers: the %d-thread run failed (exit %d)" % (t, res.returncode))
            return 1
        info = json.loads(lines[-1][len(MARK):])
        infos.append(info)
        all_rows.extend(info["rows"])

    i0 = infos[0]
    print("# vppo.h vs PyTorch CPU (one process per thread count)\n")
    print("torch %s, numpy %s, vppo ISA %s; threads per run: %s" % (
        i0["torch"], i0["numpy"], i0["isa"],
        ", ".join("torch %d / vppo %d" % (i["torch_threads"], i["vppo_threads"]) for i in infos)))
    print("n = %d rows; %s\n" % (16 if args.quick else 256,
          "--quick: tiny sizes, 1 repetition, no warm-up" if args.quick
          else "median of %d repetitions after one warm-up" % args.reps))
    print("| op                  |      V | dtype | thr | torch ms |  vppo ms | torch/vppo | torch max|err| | vppo max|err| | max|torch-vppo| |")
    print("|---------------------|-------:|-------|----:|---------:|---------:|-----------:|---------------:|--------------:|----------------:|")
    key = lambda r: (r["V"], ["f32", "bf16"].index(r["dtype"]), ["logp", "logp+lse+entropy", "KL(P||Q)",
                                          "backward (dlogp+dH)"].index(r["op"]), r["thr"])
    for r in sorted(all_rows, key=key):
        print("| %-19s | %6d | %-5s | %3d | %8.2f | %8.2f | %10.2f | %14.2e | %13.2e | %15.2e |" % (
            r["op"], r["V"], r["dtype"], r["thr"], r["torch_ms"], r["vppo_ms"],
            r["torch_ms"] / r["vppo_ms"] if r["vppo_ms"] > 0 else float("nan"),
            r["err_torch"], r["err_vppo"], r["agree"]))
    print("\nms: median wall time per call. torch/vppo: > 1 means vppo.h is faster. max|err|:")
    print("largest |result - float64 reference| on the same (bf16-rounded) inputs, over logp,")
    print("lse and entropy / the KL per row / every gradient entry; max|torch-vppo|: the two")
    print("results against each other (logp and entropy / KL / gradient). In bf16, torch returns bf16")
    print("values (and computes the entropy and the backward in bf16), vppo f32 values and a")
    print("bf16 gradient (round to nearest even). The torch backward is autograd through")
    print("log_softmax, gather, exp, mul and sum with the graph kept; only the backward is timed.")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", default="build/libvppo_bench.so")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1 repetition")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="(internal) the child's thread count")
    ap.add_argument("--thread-list", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2],
                    help="thread counts, comma separated (default 1,2)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
