"""check_step.py - vppo.h's VPPO step against an independent numpy implementation of SPEC.md.

    make python-check                         (builds build/libvppo.so, then runs this)
    python3 examples/python/check_step.py [--batches N] [--seed S]

On random batches (packed sequences with a nonzero first offset, masks, empty
sequences, NaN garbage at invalid positions, forced ties, clamped estimators, dual-clip
cases) it computes, in float64 numpy, straight from the formulas of SPEC.md:

  * the K3 dependency (§2.1), per-sequence means (§5), the TAS batch statistics and
    scales, mean-preserving and linear (§5), shaped per-token advantages (§8);
  * the top-k selection with k_b = ceil(ratio*n_b - 1e-9) and ties to the lower
    position (§6);
  * the clipped token-mean loss with dual clip and the entropy penalty, its metrics, and
    dloss/dlogp analytically (§7) - and checks that analytic gradient against central
    finite differences of the reference loss itself;
  * GRPO and RLOO group advantages (§4), log-probabilities, entropies, KL/JS from f32
    and bf16 logits with -inf entries and their backward (§2.2, §2.3);

and compares with what vppo.py returns from the C library (vppo_step, vppo_prepare with
a given dependency and global statistics, vppo_group_advantages, vppo_logprobs,
vppo_dependency_logits, vppo_logprobs_backward). Selections and counts must agree
exactly; values within 1e-6 relative, i.e. |lib - ref| <= 1e-6 (1 + |ref|), and the
logits kernels within the SPEC §12 bounds. It prints the largest difference seen for
every quantity and exits 1 if any bound is exceeded.

The reference rounds to float32 exactly where SPEC stores a float (dep [N], traj_dep,
scale [B], adv [N]) - the selection is made on the stored float dependency - and
computes everything else in float64.
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vppo  # noqa: E402

f32, f64 = np.float32, np.float64


# ====================================================================== references


def ref_group_advantages(rewards, group_offsets, kind, eps):
    """§4 GRPO: (r - mu)/(sigma + eps), sigma unbiased; RLOO: r - (sum r - r)/(n - 1)."""
    r_all = np.asarray(rewards, f64)
    adv = np.zeros(r_all.size)
    for g in range(len(group_offsets) - 1):
        lo, hi = group_offsets[g], group_offsets[g + 1]
        r = r_all[lo:hi]
        n = r.size
        if n == 0:
            continue
        assert n >= 2
        if kind == vppo.ADV_GRPO:
            mu = r.sum() / n
            sigma = math.sqrt(((r - mu) ** 2).sum() / (n - 1))
            adv[lo:hi] = (r - mu) / (sigma + eps)
        else:
            adv[lo:hi] = r - (r.sum() - r) / (n - 1)
    return adv


def valid_positions(offsets, mask, b):
    pos = np.arange(offsets[b], offsets[b + 1])
    return pos if mask is None else pos[mask[pos] != 0]


def ref_k3(logp_old, logp_aug):
    """§2.1: d = clamp(logp_aug - logp, -20, 20), dep = clamp(exp(d) - d - 1, 0, 10)
    (expm1(d) - d is the same number without the cancellation)."""
    d = np.clip(logp_aug.astype(f64) - logp_old.astype(f64), -20.0, 20.0)
    return np.clip(np.expm1(d) - d, 0.0, 10.0)


def ref_tas(cfg, traj, count, stats=None):
    """§5: statistics over sequences with count > 0, then the scales."""
    valid = count > 0
    if stats is None:
        stats = (traj[valid].min(), traj[valid].max(), int(valid.sum())) if valid.any() else (np.inf, -np.inf, 0)
    lo, hi, n = stats
    scale = np.ones(traj.size)
    if cfg.use_tas and n >= 2 and hi - lo > 1e-6 and valid.any():
        x = np.clip((traj[valid] - lo) / (hi - lo), 0.0, 1.0)
        bmin, bmax = f64(f32(cfg.tas.beta_min)), f64(f32(cfg.tas.beta_max))
        if cfg.tas.mode == vppo.TAS_LINEAR:
            scale[valid] = bmin + (bmax - bmin) * x
        else:
            scale[valid] = bmin + (1.0 - bmin) * x / (x.mean() + 1e-8)
    return scale, stats


def ref_prepare(cfg, offsets, mask, dep32, adv_seq, stats=None):
    """§8 prepare from a stored (float32) dependency."""
    B, n_tok = len(offsets) - 1, dep32.size
    traj, count = np.zeros(B), np.zeros(B, np.int64)
    adv, select = np.zeros(n_tok), np.zeros(n_tok, np.uint8)
    for b in range(B):
        pos = valid_positions(offsets, mask, b)
        count[b] = pos.size
        traj[b] = dep32[pos].astype(f64).mean() if pos.size else 0.0
    traj32 = traj.astype(f32).astype(f64)                 # SPEC stores traj_dep as float
    scale, stats = ref_tas(cfg, traj32, count, stats)
    scale32 = scale.astype(f32).astype(f64)
    ratio = cfg.topk_ratio if cfg.use_tgf else 1.0
    for b in range(B):
        pos = valid_positions(offsets, mask, b)
        adv[pos] = scale32[b] * f64(adv_seq[b])
        k = int(min(max(math.ceil(pos.size * ratio - 1e-9), 0), pos.size))
        order = np.lexsort((pos, -dep32[pos].astype(f64)))   # score descending, then lower position
        select[pos[order[:k]]] = 1
    return {"traj_dep": traj32, "count": count, "scale": scale32, "adv": adv.astype(f32).astype(f64),
            "select": select, "stats": stats}


def ref_loss(lcfg, offsets, mask, logp, logp_old, adv, select):
    """§7 with TOKEN ratio, PG_CLIP, TOKEN_MEAN, no KL: value, metrics and dloss/dlogp."""
    pos = np.concatenate([valid_positions(offsets, mask, b) for b in range(len(offsets) - 1)] +
                         [np.zeros(0, np.int64)])
    n_valid = pos.size
    lp, lo, A = logp[pos].astype(f64), logp_old[pos].astype(f64), adv[pos]
    w = select[pos].astype(f64)
    clip_low, clip_high, dual = f64(f32(lcfg.clip_low)), f64(f32(lcfg.clip_high)), f64(f32(lcfg.clip_dual))
    ent_coef = f64(f32(lcfg.entropy_coef))
    rho = lp - lo
    r = np.exp(np.clip(rho, -20, 20))
    rhat = np.exp(np.clip(rho, math.log(1 - clip_low), math.log(1 + clip_high)))
    L1, L2, L3 = -A * r, -A * rhat, -A * dual
    H = np.maximum(L1, L2)
    dual_on = (A < 0) & (dual > 0)
    dual_taken = dual_on & (H > L3)
    ell = np.where(dual_taken, L3, H)
    l1_taken = (L1 >= L2) & ~dual_taken
    dl_drho = np.where(l1_taken & (rho > -20) & (rho < 20), -A * r, 0.0)
    D = max(n_valid, 1)
    out = {"pg_loss": (w * ell).sum() / D if n_valid else 0.0,
           "entropy_loss": (-lp).sum() / D if n_valid else 0.0,
           "clipfrac": (L1 < L2).mean() if n_valid else 0.0,
           "clipfrac_dual": dual_taken.mean() if n_valid else 0.0,
           "ppo_kl": (-rho).mean() if n_valid else 0.0,
           "n_valid": n_valid, "n_selected": int((w != 0).sum())}
    out["loss"] = out["pg_loss"] + ent_coef * out["entropy_loss"]
    dlogp = np.zeros(logp.size)
    dlogp[pos] = (w * dl_drho - ent_coef) / D
    return out, dlogp, pos


def log_softmax64(z, temperature):
    u = z.astype(f64) / temperature
    m = u.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(u - m).sum(axis=1, keepdims=True))
    return u - lse, lse[:, 0]


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(f32)


def f32_to_bf16_bits(x):
    b = np.ascontiguousarray(x, f32).view(np.uint32).astype(np.uint64)
    return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)


# ====================================================================== comparison


class Report:
    def __init__(self):
        self.worst = {}
        self.failures = []

    def close(self, name, lib, ref, rel=1e-6, abs_=None, where=""):
        """|lib - ref| <= abs_ + rel |ref| (abs_ defaults to rel: 1e-6 (1 + |ref|))."""
        lib, ref = np.asarray(lib, f64), np.asarray(ref, f64)
        abs_ = rel if abs_ is None else abs_
        if lib.shape != ref.shape:
            self.failures.append("%s %s: shapes %s vs %s" % (name, where, lib.shape, ref.shape))
            return
        both_inf = np.isinf(ref) & (lib == ref)
        err = np.where(both_inf, 0.0, np.abs(lib - ref))
        bound = abs_ + rel * np.where(np.isinf(ref), 0.0, np.abs(ref))
        d = float(err.max()) if err.size else 0.0
        self.worst[name] = max(self.worst.get(name, 0.0), d)
        if err.size and not (err <= bound).all():
            i = int(np.argmax(err - bound))
            self.failures.append("%s %s: lib %.9g ref %.9g at %d (bound %.3g)" % (
                name, where, lib.reshape(-1)[i], ref.reshape(-1)[i], i, bound.reshape(-1)[i]))

    def exact(self, name, lib, ref, where=""):
        lib, ref = np.asarray(lib), np.asarray(ref)
        n = int((lib.reshape(-1) != ref.reshape(-1)).sum()) if lib.shape == ref.shape else -1
        self.worst[name] = max(self.worst.get(name, 0), abs(n))
        if n != 0:
            self.failures.append("%s %s: %s" % (name, where, "shape differs" if n < 0 else "%d entries differ" % n))


# ====================================================================== random batches


def random_batch(rng):
    G, R = int(rng.integers(1, 5)), int(rng.integers(2, 7))
    B = G * R
    lengths = rng.integers(0, 70, B)
    lengths[rng.random(B) < 0.1] = 0                     # some empty responses
    start = int(rng.integers(0, 5))
    offsets = vppo.offsets_from_lengths(lengths, start)
    n_tok = int(offsets[-1]) + int(rng.integers(0, 4))   # room before and after the sequences
    mask = None if rng.random() < 0.2 else (rng.random(n_tok) < 0.85).astype(np.uint8)
    logp_old = (-rng.exponential(1.0, n_tok)).astype(f32)
    visual = rng.random(n_tok) < 0.3
    logp_aug = (logp_old - np.where(visual, rng.exponential(1.5, n_tok), 0.05 * rng.standard_normal(n_tok)))
    p_tie = rng.choice([0.2, 0.7])
    logp_aug = np.where(rng.random(n_tok) < p_tie, logp_old, logp_aug)      # dependency exactly 0: ties
    logp_aug = np.where(rng.random(n_tok) < 0.02, logp_old - 25.0, logp_aug)  # d clamped at -20, dep at 10
    logp_aug = logp_aug.astype(f32)
    logp = logp_old + 0.2 * rng.standard_normal(n_tok)
    logp = np.where(rng.random(n_tok) < 0.05, logp + 1.5 * rng.standard_normal(n_tok), logp)   # clipped, dual
    logp = np.minimum(logp, 0.0).astype(f32)
    # garbage where nothing may be read: NaN at invalid positions and outside the sequences
    inside = np.zeros(n_tok, bool)
    inside[start:int(offsets[-1])] = True
    invalid = ~inside if mask is None else (~inside | (mask == 0))
    for a in (logp_old, logp_aug, logp):
        a[invalid] = np.nan
    rewards = rng.integers(0, 2, B).astype(f32) if rng.random() < 0.7 else rng.random(B).astype(f32)
    group_offsets = vppo.offsets_uniform(G, R)
    return dict(offsets=offsets, mask=mask, logp=logp, logp_old=logp_old, logp_aug=logp_aug,
                rewards=rewards, group_offsets=group_offsets)


def configs():
    out = []
    c = vppo.config_default()                               # the released recipe
    out.append(("default", c))
    c = vppo.config_default()
    c.tas.mode, c.tas.beta_min, c.tas.beta_max, c.topk_ratio = vppo.TAS_LINEAR, 0.5, 1.5, 0.25
    out.append(("linear TAS 0.5..1.5, top 25%", c))
    c = vppo.config_default()
    c.use_tas, c.use_tgf = 0, 0                             # DAPO/GRPO
    out.append(("no TAS, no TGF (DAPO)", c))
    c = vppo.config_default()
    c.tas.beta_min, c.topk_ratio, c.loss.clip_dual, c.loss.entropy_coef = 0.0, 1.0, 0.0, 0.0
    out.append(("beta_min 0, top 100%, no dual clip, no entropy", c))
    return out


# ====================================================================== the checks


def check_step(rep, rng, n_batches):
    fd_checked = 0
    for i in range(n_batches):
        bt = random_batch(rng)
        off, mask = bt["offsets"], bt["mask"]
        B = len(off) - 1
        adv_ref = ref_group_advantages(bt["rewards"], bt["group_offsets"], vppo.ADV_GRPO, f64(f32(1e-6)))
        rep.close("group advantages GRPO", vppo.group_advantages(bt["rewards"], bt["group_offsets"]), adv_ref)
        rep.close("group advantages RLOO", vppo.group_advantages(bt["rewards"], bt["group_offsets"], vppo.ADV_RLOO),
                  ref_group_advantages(bt["rewards"], bt["group_offsets"], vppo.ADV_RLOO, 0.0))
        adv_seq = adv_ref.astype(f32)                        # both sides get the same float input

        dep64 = np.zeros(bt["logp"].size)
        valid = np.concatenate([valid_positions(off, mask, b) for b in range(B)] + [np.zeros(0, np.int64)])
        dep64[valid] = ref_k3(bt["logp_old"][valid], bt["logp_aug"][valid])
        dep32 = dep64.astype(f32)

        for name, cfg in configs():
            where = "(batch %d, %s)" % (i, name)
            out, dlogp, prep = vppo.step(cfg, off, mask, bt["logp"], bt["logp_old"], bt["logp_aug"], adv_seq)
            ref = ref_prepare(cfg, off, mask, dep32, adv_seq)
            rout, rdlogp, _ = ref_loss(cfg.loss, off, mask, bt["logp"], bt["logp_old"], ref["adv"], ref["select"])
            rep.close("dep (K3)", prep["dep"][valid], dep64[valid], where=where)
            rep.close("traj_dep", prep["traj_dep"], ref["traj_dep"], where=where)
            rep.exact("count", prep["count"], ref["count"], where=where)
            rep.close("TAS stats min/max", [prep["stats"]["min"], prep["stats"]["max"]], list(ref["stats"][:2]),
                      where=where)
            rep.exact("TAS stats n", prep["stats"]["n"], ref["stats"][2], where=where)
            rep.close("TAS scale", prep["scale"], ref["scale"], where=where)
            rep.close("shaped adv", prep["adv"][valid], ref["adv"][valid], where=where)
            rep.exact("select (top-k)", prep["select"][valid], ref["select"][valid], where=where)
            rep.exact("topk n_selected", prep["topk"]["n_selected"], int(ref["select"].sum()), where=where)
            for key in ("loss", "pg_loss", "entropy_loss", "clipfrac", "clipfrac_dual", "ppo_kl"):
                rep.close("loss_out." + key, out[key], rout[key], where=where)
            rep.exact("loss_out.n_valid/n_selected", [out["n_valid"], out["n_selected"]],
                      [rout["n_valid"], rout["n_selected"]], where=where)
            rep.close("dlogp", dlogp[valid], rdlogp[valid], where=where)
            inside = np.arange(off[0], off[-1])
            invalid = inside[~np.isin(inside, valid)]          # in a sequence but masked: written as 0
            rep.exact("zeros at invalid positions", [dlogp[invalid], prep["dep"][invalid], prep["adv"][invalid],
                                                     prep["select"][invalid]], np.zeros((4, invalid.size)),
                      where=where)

            # vppo_prepare with the dependency given and global statistics from "other ranks"
            if ref["stats"][2] >= 2:
                lo, hi, n = ref["stats"]
                wider = (lo - 0.1 * (hi - lo), hi + 0.2 * (hi - lo), n + 5)
                g = vppo.TasStats(wider[0], wider[1], wider[2])
                p2 = vppo.prepare(cfg, off, mask, None, None, adv_seq, dep_in=dep32, global_stats=g)
                r2 = ref_prepare(cfg, off, mask, dep32, adv_seq, stats=wider)
                rep.close("prepare(dep_in, global) scale", p2["scale"], r2["scale"], where=where)
                rep.exact("prepare(dep_in, global) select", p2["select"][valid], r2["select"][valid], where=where)

            # the analytic reference gradient against central differences of the reference loss
            if name == "default" and valid.size:
                lp = bt["logp"].astype(f64)
                rho = lp - bt["logp_old"].astype(f64)
                smooth = valid[(np.abs(rho[valid] - math.log(0.8)) > 1e-3) & (np.abs(rho[valid] - math.log(1.28)) > 1e-3)
                               & (np.abs(np.exp(rho[valid]) - 3.0) > 1e-3)]
                for t in smooth[:8]:
                    h = 1e-6
                    lp_p, lp_m = lp.copy(), lp.copy()
                    lp_p[t] += h
                    lp_m[t] -= h
                    fp = ref_loss(cfg.loss, off, mask, lp_p, bt["logp_old"], ref["adv"], ref["select"])[0]["loss"]
                    fm = ref_loss(cfg.loss, off, mask, lp_m, bt["logp_old"], ref["adv"], ref["select"])[0]["loss"]
                    rep.close("reference dlogp vs finite differences", (fp - fm) / (2 * h), rdlogp[t], rel=1e-5,
                              abs_=1e-8, where=where)
                    fd_checked += 1
    return fd_checked


def check_logits(rep, rng, n_batches):
    for i in range(n_batches):
        n, V = int(rng.integers(1, 40)), int(rng.integers(2, 300))
        T = float(rng.choice([1.0, 0.7, 1.3]))
        z = (2.0 * rng.standard_normal((n, V))).astype(f32)
        za = (z + rng.exponential(1.0, (n, 1)) * rng.standard_normal((n, V))).astype(f32)
        z[rng.random((n, V)) < 0.05] = -np.inf                     # masked vocabulary entries
        z[:, 0] = np.maximum(z[:, 0], 0.0)                          # no row of only -inf
        ids = rng.integers(0, V, n).astype(np.int32)
        ids = np.where(np.isinf(z[np.arange(n), ids]), 0, ids).astype(np.int32)
        for kind, zz, zza in (("f32", z, za), ("bf16", f32_to_bf16_bits(z), f32_to_bf16_bits(za))):
            zf = zz if kind == "f32" else bf16_bits_to_f32(zz)
            zaf = zza if kind == "f32" else bf16_bits_to_f32(zza)
            lq, lse_ref = log_softmax64(zf, T)
            la, _ = log_softmax64(zaf, T)
            p = np.exp(lq)
            where = "(logits %d, %s)" % (i, kind)
            logp, lse, ent = vppo.logprobs(zz, ids, T)
            rep.close("logp from logits", logp, lq[np.arange(n), ids], rel=1e-5, abs_=1e-5, where=where)
            rep.close("lse", lse, lse_ref, rel=1e-5, abs_=1e-5, where=where)
            ent_ref = -np.where(p > 0, p * np.where(p > 0, lq, 0.0), 0.0).sum(axis=1)
            rep.close("entropy", ent, ent_ref, rel=1e-4, abs_=1e-5, where=where)
            kl_ref = np.where(p > 0, p * (np.where(p > 0, lq, 0.0) - la), 0.0).sum(axis=1)
            rep.close("KL (Eq. 3)", vppo.dependency_logits(zz, zza, vppo.DIV_KL, T), np.maximum(kl_ref, 0.0),
                      rel=1e-4, abs_=1e-5, where=where)
            q = np.exp(la)
            m = 0.5 * (p + q)
            js_ref = 0.5 * np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - np.log(np.where(m > 0, m, 1))), 0).sum(1) \
                + 0.5 * np.where(q > 0, q * (np.log(np.where(q > 0, q, 1)) - np.log(np.where(m > 0, m, 1))), 0).sum(1)
            rep.close("JS", vppo.dependency_logits(zz, zza, vppo.DIV_JS, T), np.maximum(js_ref, 0.0),
                      rel=1e-4, abs_=1e-5, where=where)
            g = rng.standard_normal(n).astype(f32)
            grad = vppo.logprobs_backward(zz, ids, dlogp=g, temperature=T)
            onehot = np.zeros((n, V))
            onehot[np.arange(n), ids] = 1.0
            rep.close("dlogits", grad, g[:, None].astype(f64) * (onehot - p) / T, rel=1e-5, abs_=1e-7, where=where)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=40, help="random batches for the step (default 40)")
    ap.add_argument("--seed", type=int, default=2510, help="random seed (default 2510)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rep = Report()
    np.seterr(over="ignore", invalid="ignore", divide="ignore")
    fd = check_step(rep, rng, args.batches)
    check_logits(rep, rng, max(4, args.batches // 4))
    print("check_step.py: vppo.h (%s) against numpy float64 references of SPEC.md, %d random batches x %d configs,"
          "\n%d finite-difference checks of the reference gradient\n" % (
              os.path.basename(os.environ.get("VPPO_LIB", "build/libvppo.so")), args.batches, len(configs()), fd))
    print("  %-44s %s" % ("quantity", "max |lib - ref| (exact: entries that differ)"))
    for name, worst in rep.worst.items():
        print("  %-44s %s" % (name, ("%d" % worst) if isinstance(worst, (int, np.integer)) else "%.3g" % worst))
    if rep.failures:
        print("\nFAILED (%d):" % len(rep.failures))
        for f in rep.failures[:30]:
            print("  " + f)
        return 1
    print("\ncheck_step.py: all agree (selections exact, values within 1e-6 (1 + |ref|), logits kernels within SPEC 12)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
