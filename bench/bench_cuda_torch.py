#!/usr/bin/env python3
"""bench/bench_cuda_torch.py - vppo_cuda next to PyTorch eager on the same GPU tensors.

    make bench-cuda-torch               (builds build/libvppo_cuda.so, runs this)
    python3 bench/bench_cuda_torch.py --lib build/libvppo_cuda.so [--rows N] [--vocab V]
                                      [--reps R] [--quick] [--only NAME]
        NAME: dep, logprobs, backward, step

vppo_cuda (vppo_cuda.h) is called through ctypes on build/libvppo_cuda.so with the
pointers of torch CUDA tensors and torch's current stream; PyTorch runs the usual eager
code for the same quantities on the same tensors:

    dep        KL(P||Q) per row: torch.log_softmax on both, F.kl_div(logq, logp,
               log_target=True, reduction='none').sum(-1)    vs vppo_cuda_dependency_logits
               (bf16 also with the logits cast to float first, as training code often does)
    logprobs   log_softmax + gather + entropy -(p logp).sum(-1)  vs vppo_cuda_logprobs
    backward   torch.autograd.grad of sum(g logp) + sum(h H) with respect to the logits,
               given upstream grads g, h (graph kept, only the backward timed)
                                                              vs vppo_cuda_logprobs_backward
               (lse and entropy given; f32 -> f32 gradient, bf16 -> bf16 gradient)
    step       the released recipe (vppo_config_default) written in eager PyTorch on
               [B, L] tensors: K3 dependency, TAS, per-row top-k, the dual-clip PPO loss
               with the entropy penalty, dlogp by autograd       vs vppo_cuda_step

V = 151936 (Qwen2.5-VL), n = 4096 rows, f32 and bf16 (halved, with a note, when the GPU
runs out of memory). Times: torch.cuda.Event around each call on the current stream,
median of the repetitions after one warm-up call. Both results are compared with a
float64 evaluation on the same inputs (docs/spec.md §12 bounds for ours: a row outside them says
WRONG and the script exits 1) and with each other (max abs and max rel diff).

Needs torch with CUDA; without them it prints a message and exits 0.
"""
import argparse
import ctypes
import math
import os
import sys

# ----------------------------------------------------------------- ctypes side
# The struct layouts live in bench/vppo_ctypes.py (shared with bench/peers.py).
from vppo_ctypes import (VppoLogits, VppoGradOut, VppoSeqs, VppoConfig, VppoPrepared, VppoLossOut,  # noqa: E402
                         VPPO_F32, VPPO_BF16, VPPO_DIV_KL, STATUS_NAMES, check_sizes)


def load_lib(path):
    check_sizes("bench_cuda_torch.py")
    lib = ctypes.CDLL(os.path.abspath(path))
    P, I = ctypes.c_void_p, ctypes.c_int
    sig = {
        "vppo_cuda_error_string": (ctypes.c_char_p, []),
        "vppo_cuda_dependency_logits": (I, [ctypes.POINTER(VppoLogits), ctypes.POINTER(VppoLogits), I, P, P]),
        "vppo_cuda_logprobs": (I, [ctypes.POINTER(VppoLogits), P, P, P, P, P]),
        "vppo_cuda_logprobs_backward": (I, [ctypes.POINTER(VppoLogits), P, P, P, P, P,
                                            ctypes.POINTER(VppoGradOut), P]),
        "vppo_cuda_step": (I, [ctypes.POINTER(VppoConfig), ctypes.POINTER(VppoSeqs), P, P, P, P, P,
                               ctypes.POINTER(VppoPrepared), P, ctypes.POINTER(VppoLossOut), P]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    # CPU helpers, when the library exports them (vppo.h's implementation inside it)
    if hasattr(lib, "vppo_config_default"):
        lib.vppo_config_default.restype, lib.vppo_config_default.argtypes = VppoConfig, []
    return lib


def default_config(lib):
    """vppo_config_default() from the library, else the docs/spec.md §8 table by hand."""
    if hasattr(lib, "vppo_config_default"):
        return lib.vppo_config_default(), "vppo_config_default() of the library"
    c = VppoConfig()
    c.estimator, c.use_tas, c.use_tgf, c.topk_ratio = 0, 1, 1, 0.4          # K3, TAS, TGF 0.4
    c.tas.mode, c.tas.beta_min, c.tas.beta_max = 0, 0.9, 1.0                # mean-preserving
    L = c.loss
    L.clip_low, L.clip_high, L.clip_dual = 0.2, 0.28, 3.0
    L.pg_kind = L.ratio_level = L.agg = L.kl_kind = 0                      # CLIP, TOKEN, TOKEN_MEAN, none
    L.agg_norm, L.kl_coef, L.entropy_coef, L.denom = 1.0, 0.0, 0.06, 0.0
    return c, "the spec §8 defaults (the library exports no vppo_config_default)"


class Vppo:
    def __init__(self, lib, torch):
        self.lib, self.torch = lib, torch

    def stream(self):
        return ctypes.c_void_p(self.torch.cuda.current_stream().cuda_stream)

    def check(self, st, what):
        if st != 0:
            msg = STATUS_NAMES.get(st, str(st))
            if st == -8:
                msg += ": " + (self.lib.vppo_cuda_error_string() or b"").decode(errors="replace")
            raise SystemExit("bench_cuda_torch.py: %s returned %s" % (what, msg))


def ptr(t):
    if t is None:
        return None
    assert t.is_cuda and t.is_contiguous()
    return ctypes.c_void_p(t.data_ptr())


def logits_of(t):
    n, V = t.shape
    return VppoLogits(ptr(t), VPPO_BF16 if str(t.dtype) == "torch.bfloat16" else VPPO_F32, n, V, V, 1.0)


# ----------------------------------------------------------------- measurement

def median_ms(torch, fn, reps, warm):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    ts.sort()
    m = len(ts)
    return ts[m // 2] if m % 2 else 0.5 * (ts[m // 2 - 1] + ts[m // 2])


class Report:
    def __init__(self):
        self.rows = []
        self.wrong = 0
        self.notes = []

    def head(self):
        print("| op                     | dtype |     n |      V | torch ms |  vppo ms | torch/vppo | "
              "torch max|err| | vppo max|err| | max|diff| | max rel diff | check |")
        print("|------------------------|-------|------:|-------:|---------:|---------:|-----------:|"
              "---------------:|--------------:|----------:|-------------:|-------|")

    def row(self, op, dtype, n, V, t_torch, t_vppo, e_torch, e_vppo, diff, rdiff, ok):
        if not ok:
            self.wrong += 1
        self.rows.append(dict(op=op, dtype=dtype, n=n, V=V, t_torch=t_torch, t_vppo=t_vppo))
        print("| %-22s | %-5s | %5d | %6d | %8.3f | %8.3f | %10.2f | %14.3e | %13.3e | %9.3e | %12.3e | %-5s |" % (
            op, dtype, n, V, t_torch, t_vppo, t_torch / t_vppo, e_torch, e_vppo, diff, rdiff,
            "ok" if ok else "WRONG"), flush=True)


def within(torch, got, ref, abs_tol, rel_tol):
    """Every |got - ref| <= abs_tol + rel_tol |ref| (NaN fails), and the max |got - ref|."""
    d = (got.double() - ref).abs()
    ok = bool(((d <= abs_tol + rel_tol * ref.abs()) & ~torch.isnan(d)).all())
    return ok, float(d.max()) if d.numel() else 0.0


def diffs(a, b):
    """max |a - b| and max |a - b| / max(|b|, 1e-30)."""
    d = (a.double() - b.double()).abs()
    rel = d / b.double().abs().clamp_min(1e-30)
    return float(d.max()), float(rel.max())


# --------------------------------------------------------------- the logits ops

def bench_logits(torch, F, vp, args, n, V, rep):
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev)
    gen.manual_seed(1234)
    orig32 = 3.0 * torch.randn(n, V, device=dev, generator=gen)
    aug32 = orig32 + 0.1 * torch.randn(n, V, device=dev, generator=gen)
    ids = torch.randint(0, V, (n,), device=dev, generator=gen, dtype=torch.int32)
    ids64 = ids.long().unsqueeze(1)
    g = torch.randn(n, device=dev, generator=gen)
    h = 0.06 * torch.randn(n, device=dev, generator=gen)
    chunk = 256
    reps, warm = args.reps, args.warm

    for dtype in ("f32", "bf16"):
        if dtype == "f32":
            x, y = orig32, aug32
        else:
            x, y = orig32.to(torch.bfloat16), aug32.to(torch.bfloat16)
        vx, vy = logits_of(x), logits_of(y)

        # float64 references of this dtype's (rounded) values, row chunk by row chunk
        ref = dict(kl=torch.empty(n, dtype=torch.float64, device=dev),
                   logp=torch.empty(n, dtype=torch.float64, device=dev),
                   lse=torch.empty(n, dtype=torch.float64, device=dev),
                   ent=torch.empty(n, dtype=torch.float64, device=dev))
        for r0 in range(0, n, chunk):
            r1 = min(n, r0 + chunk)
            x64, y64 = x[r0:r1].double(), y[r0:r1].double()
            lp, lq = torch.log_softmax(x64, -1), torch.log_softmax(y64, -1)
            ref["kl"][r0:r1] = (lp.exp() * (lp - lq)).sum(-1)
            ref["logp"][r0:r1] = lp.gather(1, ids64[r0:r1]).squeeze(1)
            ref["lse"][r0:r1] = torch.logsumexp(x64, -1)
            ref["ent"][r0:r1] = -(lp.exp() * lp).sum(-1)
            del x64, y64, lp, lq

        out = {}
        dep = torch.empty(n, device=dev)
        logp = torch.empty(n, device=dev)
        lse = torch.empty(n, device=dev)
        ent = torch.empty(n, device=dev)

        # ---- (a) KL dependency
        if args.only in (None, "dep"):
            def t_kl():
                lp = torch.log_softmax(x, -1)
                lq = torch.log_softmax(y, -1)
                out["kl"] = F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1)

            def t_kl_float():
                lp = torch.log_softmax(x.float(), -1)
                lq = torch.log_softmax(y.float(), -1)
                out["klf"] = F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1)

            def v_kl():
                vp.check(vp.lib.vppo_cuda_dependency_logits(ctypes.byref(vx), ctypes.byref(vy), VPPO_DIV_KL,
                                                            ptr(dep), vp.stream()),
                         "vppo_cuda_dependency_logits")
            tt = median_ms(torch, t_kl, reps, warm)
            tv = median_ms(torch, v_kl, reps, warm)
            ok, ev = within(torch, dep, ref["kl"], 1e-5, 1e-4)       # spec §12: KL
            _, et = within(torch, out["kl"], ref["kl"], 0, 0)
            d, rd = diffs(dep, out["kl"])
            rep.row("KL dependency", dtype, n, V, tt, tv, et, ev, d, rd, ok)
            if dtype == "bf16":
                rep.kl_bf16 = tt / tv
                out.pop("kl", None)
                tf = median_ms(torch, t_kl_float, reps, warm)
                _, etf = within(torch, out["klf"], ref["kl"], 0, 0)
                d, rd = diffs(dep, out["klf"])
                rep.row("KL dep. (torch .float())", dtype, n, V, tf, tv, etf, ev, d, rd, ok)
                rep.kl_bf16_float = tf / tv
            out.clear()

        # ---- (b) logprobs: log_softmax + gather + entropy
        if args.only in (None, "logprobs", "backward"):
            def t_lp():
                ls = torch.log_softmax(x, -1)
                out["logp"] = ls.gather(1, ids64).squeeze(1)
                out["ent"] = -(ls.exp() * ls).sum(-1)

            def v_lp():
                vp.check(vp.lib.vppo_cuda_logprobs(ctypes.byref(vx), ptr(ids), ptr(logp), ptr(lse), ptr(ent),
                                                   vp.stream()), "vppo_cuda_logprobs")
            if args.only in (None, "logprobs"):
                tt = median_ms(torch, t_lp, reps, warm)
            else:
                t_lp()
                tt = float("nan")
            tv = median_ms(torch, v_lp, reps, warm)
            ok1, e1 = within(torch, logp, ref["logp"], 1e-5, 1e-5)   # spec §12: logp, lse
            ok2, e2 = within(torch, lse, ref["lse"], 1e-5, 1e-5)
            ok3, e3 = within(torch, ent, ref["ent"], 1e-5, 1e-4)     # entropy
            _, et1 = within(torch, out["logp"], ref["logp"], 0, 0)
            _, et3 = within(torch, out["ent"], ref["ent"], 0, 0)
            d1, rd1 = diffs(logp, out["logp"])
            d3, rd3 = diffs(ent, out["ent"])
            if args.only in (None, "logprobs"):
                rep.row("logp + lse + entropy", dtype, n, V, tt, tv, max(et1, et3), max(e1, e2, e3),
                        max(d1, d3), max(rd1, rd3), ok1 and ok2 and ok3)
            elif not (ok1 and ok2 and ok3):
                rep.row("logp + lse + entropy", dtype, n, V, tt, tv, max(et1, et3), max(e1, e2, e3),
                        max(d1, d3), max(rd1, rd3), False)
            out.clear()

        # ---- (c) the backward of (b) given upstream g, h (lse and entropy given to vppo)
        if args.only in (None, "backward"):
            xg = x.detach().clone().requires_grad_(True)
            ls = torch.log_softmax(xg, -1)
            loss = (g.to(x.dtype) * ls.gather(1, ids64).squeeze(1)).sum() \
                + (h.to(x.dtype) * -(ls.exp() * ls).sum(-1)).sum()

            def t_bw():
                out["grad"] = torch.autograd.grad(loss, xg, retain_graph=True)[0]

            grad = torch.empty_like(x)
            gout = VppoGradOut(ptr(grad), VPPO_F32 if dtype == "f32" else VPPO_BF16, V)

            def v_bw():
                vp.check(vp.lib.vppo_cuda_logprobs_backward(ctypes.byref(vx), ptr(ids), ptr(lse), ptr(ent), ptr(g),
                                                            ptr(h), ctypes.byref(gout), vp.stream()),
                         "vppo_cuda_logprobs_backward")
            tt = median_ms(torch, t_bw, reps, warm)
            del loss, ls
            tv = median_ms(torch, v_bw, reps, warm)
            # float64 gradient: g (delta_id - p) - h p (log p + H), row chunk by row chunk.
            # spec §12: 1e-7 + 1e-5 |ref| per element; a bf16 output adds its rounding
            # (at most 2^-9 |value|; 2^-8 |ref| allowed).
            rel = 1e-5 if dtype == "f32" else 1e-5 + 2.0 ** -8
            ok, ev, et, d, rd = True, 0.0, 0.0, 0.0, 0.0
            for r0 in range(0, n, chunk):
                r1 = min(n, r0 + chunk)
                lp = torch.log_softmax(x[r0:r1].double(), -1)
                p = lp.exp()
                H = -(p * lp).sum(-1, keepdim=True)
                gg, hh = g[r0:r1].double().unsqueeze(1), h[r0:r1].double().unsqueeze(1)
                rg = -gg * p - hh * p * (lp + H)
                rg.scatter_add_(1, ids64[r0:r1], gg)
                okc, evc = within(torch, grad[r0:r1], rg, 1e-7, rel)
                _, etc = within(torch, out["grad"][r0:r1], rg, 0, 0)
                dc, rdc = diffs(grad[r0:r1], out["grad"][r0:r1])
                ok, ev, et, d, rd = ok and okc, max(ev, evc), max(et, etc), max(d, dc), max(rd, rdc)
                del lp, p, rg
            rep.row("backward (dlogp + dH)", dtype, n, V, tt, tv, et, ev, d, rd, ok)
            del xg, grad
            out.clear()
        del x, y
        torch.cuda.empty_cache()


# ------------------------------------------------------------------ the step

def bench_step(torch, vp, args, rep):
    dev = torch.device("cuda")
    B, L = (16, 256) if args.quick else (1024, 2048)
    N = B * L
    cfg, cfg_from = default_config(vp.lib)
    gen = torch.Generator(device=dev)
    gen.manual_seed(99)
    logp_old = torch.log(0.01 + 0.99 * torch.rand(B, L, device=dev, generator=gen))
    logp = logp_old + 0.02 * torch.randn(B, L, device=dev, generator=gen)
    logp_aug = logp_old + 0.3 * torch.randn(B, L, device=dev, generator=gen)
    rewards = (torch.rand(B, device=dev, generator=gen) < 0.5).float().view(B // 8, 8)
    adv_seq = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)).reshape(B)
    offsets = torch.arange(0, N + 1, L, device=dev, dtype=torch.int64)

    beta_min = float(cfg.tas.beta_min)
    clip_low, clip_high, clip_dual = float(cfg.loss.clip_low), float(cfg.loss.clip_high), float(cfg.loss.clip_dual)
    ent_coef, ratio = float(cfg.loss.entropy_coef), float(cfg.topk_ratio)
    k = min(L, max(0, math.ceil(L * ratio - 1e-9)))
    out = {}

    def torch_step():
        lp = logp.detach().requires_grad_(True)
        with torch.no_grad():
            d = (logp_aug - logp_old).clamp(-20, 20)
            dep = (d.exp() - d - 1).clamp(0, 10)                          # K3
            traj = dep.mean(1)
            lo, hi = traj.min(), traj.max()
            xs = ((traj - lo) / (hi - lo)).clamp(0, 1)
            alpha = beta_min + (1 - beta_min) * xs / (xs.mean() + 1e-8)   # mean-preserving TAS
            alpha = torch.where(hi - lo > 1e-6, alpha, torch.ones_like(alpha))
            adv = (alpha * adv_seq).unsqueeze(1).expand(B, L)
            sel = torch.zeros_like(dep).scatter_(1, dep.topk(k, dim=1).indices, 1.0)   # TGF
        rho = lp - logp_old
        r = rho.clamp(-20, 20).exp()
        r_hat = rho.clamp(math.log(1 - clip_low), math.log(1 + clip_high)).exp()
        l1, l2 = -adv * r, -adv * r_hat
        hmax = torch.maximum(l1, l2)
        pg = torch.where(adv < 0, torch.minimum(hmax, -adv * clip_dual), hmax)
        loss = (sel * pg).sum() / N + ent_coef * (-lp).sum() / N
        out["dlogp"], = torch.autograd.grad(loss, lp)
        out["loss"] = loss.detach()
        out["sel"] = sel

    dep = torch.empty(N, device=dev)
    traj = torch.empty(B, device=dev)
    count = torch.empty(B, device=dev, dtype=torch.int64)
    scale = torch.empty(B, device=dev)
    adv = torch.empty(N, device=dev)
    select = torch.empty(N, device=dev, dtype=torch.uint8)
    dlogp = torch.empty(N, device=dev)
    prep = VppoPrepared(ptr(dep), ptr(traj), ptr(count), ptr(scale), ptr(adv), ptr(select))
    seqs = VppoSeqs(B, ptr(offsets), None)
    lout = VppoLossOut()
    flat = [t.reshape(N).contiguous() for t in (logp, logp_old, logp_aug)]

    def v_step():
        vp.check(vp.lib.vppo_cuda_step(ctypes.byref(cfg), ctypes.byref(seqs), ptr(flat[0]), ptr(flat[1]),
                                       ptr(flat[2]), None, ptr(adv_seq), ctypes.byref(prep), ptr(dlogp),
                                       ctypes.byref(lout), vp.stream()), "vppo_cuda_step")
    tt = median_ms(torch, torch_step, args.reps, args.warm)
    tv = median_ms(torch, v_step, args.reps, args.warm)
    # torch and vppo against each other (no float64 reference here: the CUDA benchmark
    # checks the step against the CPU library, masks exactly). The two dependencies may
    # differ in their last bits (different exp), which can swap two nearly equal scores
    # at a row's top-k boundary: a few select mismatches are allowed, the loss must agree
    # within 2e-6 (1 + |loss|), and dlogp within 1e-4 of its largest value where the
    # masks agree.
    t_loss = float(out["loss"])
    dl = abs(lout.loss - t_loss)
    t_sel = out["sel"].reshape(N).to(torch.uint8)
    agree = t_sel == select
    mism = int((~agree).sum())
    t_dlogp = out["dlogp"].reshape(N)
    d, rd = diffs(dlogp[agree], t_dlogp[agree])
    ok = dl <= 2e-6 * (1 + abs(t_loss)) and mism <= max(2, N // 100000) and \
        d <= 1e-4 * float(t_dlogp.abs().max())
    rep.row("VPPO step (B x L)", "f32", B, L, tt, tv, 0.0, dl, d, rd, ok)
    rep.notes.append("step: B = %d sequences x L = %d tokens, config: %s; loss vppo %.8f, torch %.8f; "
                     "select mismatches %d; the step row's vppo max|err| column is |loss_vppo - loss_torch|, "
                     "its V column is L." % (B, L, cfg_from, lout.loss, t_loss, mism))


# ------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default="build/libvppo_cuda.so")
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=151936)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1 repetition, no warm-up")
    ap.add_argument("--only", choices=["dep", "logprobs", "backward", "step"])
    args = ap.parse_args()
    args.warm = 1
    if args.quick:
        args.rows, args.vocab, args.reps, args.warm = min(args.rows, 8), min(args.vocab, 1003), 1, 0
    if args.reps < 1 or args.rows < 1 or args.vocab < 1:
        ap.error("--reps, --rows and --vocab must be positive")

    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # ImportError, or a broken install
        print("bench_cuda_torch.py: PyTorch is not available (%s); skipped" % e)
        return 0
    if not torch.cuda.is_available():
        print("bench_cuda_torch.py: torch %s sees no CUDA device; skipped" % torch.__version__)
        return 0
    if not os.path.exists(args.lib):
        print("bench_cuda_torch.py: %s not found (make cuda builds it)" % args.lib, file=sys.stderr)
        return 2
    vp = Vppo(load_lib(args.lib), torch)

    p = torch.cuda.get_device_properties(0)
    print("# vppo_cuda vs PyTorch eager%s\n" % (" (--quick: tiny sizes, 1 repetition)" if args.quick else ""))
    print("device:  %s, %d SMs, %.1f GiB" % (p.name, p.multi_processor_count, p.total_memory / 2 ** 30))
    print("torch:   %s (CUDA %s)" % (torch.__version__, torch.version.cuda))
    print("library: %s" % os.path.abspath(args.lib))
    print("timing:  torch.cuda.Event, median of %d repetitions after %d warm-up call%s\n"
          % (args.reps, args.warm, "" if args.warm == 1 else "s"))

    rep = Report()
    rep.kl_bf16 = rep.kl_bf16_float = None
    rep.head()
    if args.only != "step":
        n = args.rows
        while True:
            try:
                bench_logits(torch, F, vp, args, n, args.vocab, rep)
                break
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if n <= 1:
                    raise
                rep.notes.append("out of GPU memory at n = %d rows; the rows after the last printed one "
                                 "ran again with n = %d" % (n, n // 2))
                n //= 2
    if args.only in (None, "step"):
        bench_step(torch, vp, args, rep)

    print("\ntorch/vppo: torch eager time / vppo time (the speed-up). max|err|: largest |value - float64|"
          "\nover the row's outputs (logp, lse, entropy / KL / the gradient), each side against a float64"
          "\nevaluation of the same rounded inputs. max|diff|, max rel diff: vppo vs torch. check: vppo"
          "\nwithin the spec §12 bounds of the float64 values (bf16 gradients: plus 2^-8 |ref| for the"
          "\nrounding). Backward rows time only the backward; vppo is given lse and entropy.")
    for note in rep.notes:
        print("note: " + note)
    print()
    if rep.kl_bf16 is not None:
        print("target: >= 3x PyTorch eager for dependency_logits bf16: %.2fx (%s); %.2fx against torch with "
              "the logits cast to float first" % (rep.kl_bf16, "met" if rep.kl_bf16 >= 3.0 else "MISSED",
                                                  rep.kl_bf16_float))
    else:
        print("target: >= 3x PyTorch eager for dependency_logits bf16: not measured in this run (--only)")
    if args.quick:
        print("(--quick: tiny sizes; the ratios say nothing about the target)")
    if rep.wrong:
        print("bench_cuda_torch.py: %d row%s outside the bounds (WRONG)" % (rep.wrong, "" if rep.wrong == 1 else "s"),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
