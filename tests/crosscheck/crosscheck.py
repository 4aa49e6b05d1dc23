#!/usr/bin/env python3
"""crosscheck.py - vppo.h against trusted implementations, through ctypes, on random batches.

    make crosscheck                      (builds build/xcheck/libvppo.so, then runs this)
    python3 tests/crosscheck/crosscheck.py [--seed S] [--batches N]
    python3 tests/crosscheck/crosscheck.py --write-golden tests/data      (make golden)

Four independent references, each a part that is skipped (with the reason, exit 0) when
what it needs is not installed:

  (a) verl   - the installed verl package's own verl.trainer.ppo.core_algos: GRPO, Dr.GRPO
               (norm_adv_by_std_in_grpo=False), RLOO and pass@k advantages; the vanilla
               clipped loss with dual clip in all four aggregation modes (with and without a
               global token / sequence count, with per-token weights); GSPO's token-level
               ratio (vppo.h VPPO_RATIO_SEQ_TOKEN); CISPO; the k1/abs/k2/k3 KL penalties.
               Gradients are torch autograd of verl's losses (float64).
  (b) release - vppo_release.py, a torch transcription of the VPPO authors' update_policy
               (k3 dependency with its clamps, the top-k mask by sorting with k = ceil(k*n),
               the mean-preserving TAS per micro-batch over a mini-batch range, the clipped
               token-mean loss with dual clip and the entropy penalty, GSPO-token, CISPO, KL,
               the entropy top-k OR'ed in, micro-batches and data-parallel ranks with the
               release's loss * n_micro * world / total scaling).
  (c) torch  - torch.nn.functional.log_softmax, torch.logsumexp, Categorical.entropy and
               F.kl_div (KL, reverse KL, JS) for the logits kernels, and autograd of
               sum(g logp + h H) for vppo_logprobs_backward, on f32, bf16 and f16 logits with
               temperatures, -inf entries and large logits.
  (d) rollout - the installed verl's verl.trainer.ppo.rollout_corr_helper against
               vppo_rollout_correction: token/sequence TIS and IcePop weights with and without
               batch normalization, every rollout_rs rejection option, their metrics and the
               off-policy metrics (compute_offpolicy_metrics). vppo's geometric IS level
               (RC_SEQ_MEAN) has no counterpart in this verl; tests/test_rollout.c covers it.

All references run in float64 on float64 copies of the float32 inputs that vppo.h gets.
Masks must match exactly except on the documented cases (see vppo_release.py): a float32
ceil of k (the release keeps exactly one more token: the next one in rank), and float32
near-ties (two dependencies within 4 float32 ulps, ordered differently by the float64
reference and by vppo.h's stored float32 values). vppo.h's own mask is in addition checked
exactly against the specification's rule applied to its own float32 dependency. Values must be within the
docs/spec.md section 12 bounds. Documented reference differences, each accounted for:
  * masked_mean's "+ 1e-8" (release and verl): the release transcription runs with eps = 0
    and, separately, the released eps is shown to move nothing by more than 1e-8 relative;
    verl's masked-mean metrics are multiplied back by (n + 1e-8)/n; verl's
    seq-mean-token-mean keeps its 1e-8 per sequence, allowed as 1e-8 (1 + |ref|) on top.
  * verl's sequence modes divide by the number of non-empty responses by default: the
    global_batch_size argument is passed as the specification's S (B, or denom).
  * verl's GSPO clamps the log-ratio at 10 from above only, its CISPO clipfrac counts
    ratio != clipped ratio, verl's ppo_kl clamps Delta to [-20, 20]: batches for those keep
    |log-ratio| < 10, and the CISPO clipfrac is not compared.
  * torch's kl_div gives NaN for terms where both p_i and q_i are 0 (-inf logits on both
    sides): those terms are 0 by docs/spec.md section 1, and are set to 0 in the reference.
It prints a table of the largest difference seen for every quantity and exits 1 on any
mismatch. With --write-golden DIR it writes a fixed set of these cases (inputs and the
references' expected outputs; the library is not used) as golden vectors for
tests/test_golden.c; format in tests/data/README.md.
"""
import argparse
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

TOL = {   # docs/spec.md section 12: (absolute, relative)
    "lse": (1e-5, 1e-5), "logp_k": (1e-5, 1e-5), "div": (1e-5, 1e-4), "dlogits": (1e-7, 1e-5),
    "token": (1e-6, 1e-6), "scalar": (1e-6, 1e-6),
    "eps": (1e-7, 1e-7),   # the effect of the released masked_mean + 1e-8: far below "token"/"scalar"
}
EPS_RELEASE = 1e-8


def f32(x):
    """The float32 value of a Python number, as a Python float (what a float field holds)."""
    import numpy as np
    return float(np.float32(x))


# ====================================================================== recording


class Recorder:
    """Largest differences per quantity, and failures."""

    def __init__(self):
        self.rows = {}
        self.failures = []
        self.skipped = []

    def _row(self, key, bound):
        if key not in self.rows:
            self.rows[key] = {"n": 0, "max_abs": 0.0, "max_ratio": 0.0, "bound": bound, "note": ""}
        return self.rows[key]

    def values(self, part, quantity, ref, got, tol, extra_rel=0.0, where=""):
        """|got - ref| <= abs + rel |ref| (+ extra_rel (1 + |ref|)); infinities exactly."""
        import numpy as np
        ref = np.asarray(ref, dtype=np.float64).reshape(-1)
        got = np.asarray(got, dtype=np.float64).reshape(-1)
        a, r = TOL[tol]
        bound = "%g + %g|ref|" % (a, r) + (" (+%g(1+|ref|))" % extra_rel if extra_rel else "")
        row = self._row((part, quantity), bound)
        if ref.shape != got.shape:
            self.failures.append("%s %s %s: shapes %s vs %s" % (part, quantity, where, ref.shape, got.shape))
            return
        row["n"] += ref.size
        inf = np.isinf(ref) | np.isinf(got)
        bad_inf = inf & (ref != got)
        nan = np.isnan(ref) | np.isnan(got)
        fin = ~inf & ~nan
        diff = np.abs(got[fin] - ref[fin])
        allowed = a + r * np.abs(ref[fin]) + extra_rel * (1.0 + np.abs(ref[fin]))
        if diff.size:
            row["max_abs"] = max(row["max_abs"], float(diff.max()))
            row["max_ratio"] = max(row["max_ratio"], float((diff / allowed).max()))
        n_bad = int(bad_inf.sum() + nan.sum() + (diff > allowed).sum())
        if n_bad:
            over = np.zeros(ref.size, bool)
            over[fin] = diff > allowed
            i = int(np.nonzero(bad_inf | nan | over)[0][0])
            self.failures.append("%s %s %s: %d of %d values out of bound (e.g. [%d] ref %.10g got %.10g)"
                                 % (part, quantity, where, n_bad, ref.size, i, ref[i], got[i]))

    def exact(self, part, quantity, ref, got, where=""):
        import numpy as np
        ref, got = np.asarray(ref).reshape(-1), np.asarray(got).reshape(-1)
        row = self._row((part, quantity), "exact")
        row["n"] += ref.size
        n_bad = int((ref != got).sum()) if ref.shape == got.shape else ref.size
        if n_bad:
            row["max_abs"] = max(row["max_abs"], float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64))))
                                 if ref.shape == got.shape else math.inf)
            row["max_ratio"] = math.inf
            self.failures.append("%s %s %s: %d of %d differ" % (part, quantity, where, n_bad, ref.size))

    def mask_note(self, part, quantity, n_exact, n_ceil, n_tie, n_bad, n_positions):
        row = self._row((part, quantity), "exact*")
        row["n"] += n_positions
        row["mask"] = [a + b for a, b in zip(row.get("mask", [0, 0, 0, 0]), (n_exact, n_ceil, n_tie, n_bad))]
        if n_bad:
            row["max_ratio"] = math.inf

    def skip(self, part, reason):
        self.skipped.append((part, reason))
        print("crosscheck (%s): skipped: %s" % (part, reason))

    def report(self):
        print()
        print("%-9s %-30s %9s %12s %10s  %s" % ("part", "quantity", "values", "max |diff|", "diff/bound", "bound"))
        print("-" * 100)
        for (part, q), row in self.rows.items():
            if "mask" in row:
                e, c, t, b = row["mask"]
                print("%-9s %-30s %9d %12s %10s  exact: %d responses equal, %d float32-ceil k, %d float32 "
                      "near-tie, %d other" % (part, q, row["n"], "-", "-" if not b else "FAIL", e, c, t, b))
                continue
            ratio = row["max_ratio"]
            print("%-9s %-30s %9d %12.3g %10s  %s" % (part, q, row["n"], row["max_abs"],
                                                     "%.3g" % ratio if math.isfinite(ratio) else "FAIL",
                                                     row["bound"]))
        print("-" * 100)
        for part, reason in self.skipped:
            print("skipped: (%s) %s" % (part, reason))
        if self.failures:
            print("\n%d MISMATCHES:" % len(self.failures))
            for f in self.failures[:40]:
                print("  " + f)
            return 1
        if not self.rows:
            print("crosscheck: nothing compared (every part skipped): not a pass, not a failure")
            return 0
        print("crosscheck: every compared value within docs/spec.md section 12, every mask as documented" +
              ("" if not self.skipped else " (parts skipped: %s)" % ", ".join(p for p, _ in self.skipped)))
        return 0


# ====================================================================== golden vectors


class Golden:
    """Cases for tests/data/*.txt: see tests/data/README.md for the format."""

    TYPES = {"f32": "%.9g", "f64": "%.15g", "i64": "%d", "i32": "%d", "u8": "%d", "u16": "%d"}

    def __init__(self, source):
        self.source = source
        self.cases = []

    def case(self, name, kind, items):
        self.cases.append((name, kind, items))

    def write(self, path, header):
        import numpy as np
        lines = ["# " + h for h in header.strip().splitlines()]
        lines.append("vppo-golden 1")
        for name, kind, items in self.cases:
            lines.append("case %s %s" % (name, kind))
            for typ, key, arr in items:
                arr = np.asarray(arr).reshape(-1)
                fmt = self.TYPES[typ]
                vals = [fmt % (float(v) if typ in ("f32", "f64") else int(v)) for v in arr]
                lines.append("%s %s %d" % (typ, key, arr.size))
                for i in range(0, len(vals), 8):
                    lines.append("  " + " ".join(vals[i:i + 8]))
            lines.append("end")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return os.path.getsize(path)


# ====================================================================== shared helpers


def padded_batch(rng, B, L, empty=0.1, holes=0.3, min_len=0):
    """Response mask [B, L] (uint8): a random length per response, some empty, some with
    holes (tool output inside a response)."""
    import numpy as np
    mask = np.zeros((B, L), np.uint8)
    for b in range(B):
        n = int(rng.integers(min_len, L + 1))
        if rng.random() < empty:
            n = 0
        mask[b, :n] = 1
        if n and rng.random() < holes:
            mask[b, :n] &= (rng.random(n) < 0.8).astype(np.uint8)
    return mask


def token_logps(rng, shape, outliers=True, max_abs_delta=None):
    """logp_old (<= 0), logp_aug (dependency: exact zeros, ordinary, and clamped ones),
    logp (current policy: small moves, some clipped, some beyond the +-20 ratio clamp)."""
    import numpy as np
    logp_old = (-np.exp(rng.normal(-1.0, 1.5, shape))).astype(np.float32)
    d = rng.normal(0.0, 0.4, shape)
    u = rng.random(shape)
    d[u < 0.05] = 0.0
    if outliers:
        big = (u > 0.95)
        d[big] = rng.choice([-1.0, 1.0], big.sum()) * rng.uniform(2.0, 25.0, big.sum())
    logp_aug = (logp_old + d).astype(np.float32)
    delta = rng.normal(0.0, 0.15, shape)
    if outliers:
        v = rng.random(shape)
        mid = v > 0.93
        delta[mid] = rng.choice([-1.0, 1.0], mid.sum()) * rng.uniform(0.3, 3.0, mid.sum())
        far = v > 0.985
        delta[far] = rng.choice([-1.0, 1.0], far.sum()) * rng.uniform(21.0, 25.0, far.sum())
    if max_abs_delta is not None:
        delta = np.clip(delta, -max_abs_delta, max_abs_delta)
    logp = (logp_old + delta).astype(np.float32)
    return logp, logp_old, logp_aug


def with_garbage(rng, x, mask):
    """Finite garbage at invalid positions (both sides ignore them)."""
    import numpy as np
    y = x.copy()
    bad = mask == 0
    y[bad] = rng.normal(0.0, 5.0, int(bad.sum())).astype(np.float32)
    return y


def spec_topk(score32, mask, ratio):
    """docs/spec.md section 6 on the given float32 scores: per row k = clamp(ceil(n ratio - 1e-9), 0, n),
    the k largest valid scores, ties to the lower position."""
    import numpy as np
    sel = np.zeros(mask.shape, np.uint8)
    ks = np.zeros(mask.shape[0], np.int64)
    for b in range(mask.shape[0]):
        pos = np.nonzero(mask[b])[0]
        n = pos.size
        k = min(max(int(math.ceil(n * ratio - 1e-9)), 0), n)
        ks[b] = k
        order = sorted(pos, key=lambda p: (-float(score32[b, p]), p))
        sel[b, order[:k]] = 1
    return sel, ks


def ulp32(x):
    import numpy as np
    return float(np.spacing(np.float32(abs(x)))) if math.isfinite(x) else math.inf


def classify_masks(lib_sel, ref_sel, ref_dep64, mask, k_ref, k_spec):
    """Per response: 'exact', 'ceil' (the reference's float32 k keeps extra tokens that rank
    right after vppo.h's), 'tie' (same k, the swapped tokens within 4 float32 ulps of each
    other), or 'bad'. Returns (counts dict, rows that differ in a documented way)."""
    import numpy as np
    counts = {"exact": 0, "ceil": 0, "tie": 0, "bad": 0}
    documented = []
    for b in range(mask.shape[0]):
        L = set(np.nonzero(lib_sel[b])[0].tolist())
        R = set(np.nonzero(ref_sel[b])[0].tolist())
        if L == R:
            counts["exact"] += 1
            continue
        if int(k_ref[b]) != int(k_spec[b]):
            small, large = (L, R) if k_ref[b] > k_spec[b] else (R, L)
            extra = large - small
            if small <= large and len(extra) == abs(int(k_ref[b]) - int(k_spec[b])) and \
                    max(ref_dep64[b, p] for p in extra) <= min([ref_dep64[b, p] for p in small] or [math.inf]):
                counts["ceil"] += 1
                documented.append(b)
                continue
        elif len(L) == len(R):
            ok = all(abs(ref_dep64[b, a] - ref_dep64[b, r]) <= 4 * ulp32(max(abs(ref_dep64[b, a]),
                                                                               abs(ref_dep64[b, r])))
                     for a in L - R for r in R - L)
            if ok:
                counts["tie"] += 1
                documented.append(b)
                continue
        counts["bad"] += 1
    return counts, documented


# ====================================================================== (a) verl


def verl_part(rec, rng, n_batches, golden=None, lib=True):
    import numpy as np
    import torch
    from verl.trainer.ppo import core_algos as ca
    from verl.workers.config import FSDPActorConfig
    if lib:
        import vppo
    t64 = lambda a: torch.tensor(np.asarray(a, np.float64))  # noqa: E731

    # --- group advantages: GRPO, Dr.GRPO, RLOO, pass@k
    eps = f32(1e-6)
    for it in range(n_batches):
        sizes = rng.integers(2, 9, int(rng.integers(3, 9)))
        groups = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        n = int(groups[-1])
        index = np.repeat(np.arange(sizes.size), sizes)
        binary = it % 2 == 0
        rewards = (rng.random(n) < 0.5).astype(np.float32) if binary else rng.normal(0, 1, n).astype(np.float32)
        if binary:
            rewards[groups[0]:groups[1]] = 1.0      # a constant group: sigma = 0
        cases = [("grpo", 0, lambda: ca.compute_grpo_outcome_advantage(t64(rewards)[:, None], torch.ones(n, 1,
                  dtype=torch.float64), index, epsilon=eps, norm_adv_by_std_in_grpo=True)[0]),
                 ("grpo_no_std", 1, lambda: ca.compute_grpo_outcome_advantage(t64(rewards)[:, None], torch.ones(
                     n, 1, dtype=torch.float64), index, epsilon=eps, norm_adv_by_std_in_grpo=False)[0]),
                 ("rloo", 2, lambda: ca.compute_rloo_outcome_advantage(t64(rewards)[:, None], torch.ones(
                     n, 1, dtype=torch.float64), index, epsilon=eps)[0])]
        if not binary:   # pass@k: distinct rewards, so that the best response is unambiguous
            cases.append(("passk", 3, lambda: ca.compute_grpo_passk_outcome_advantage(
                t64(rewards)[:, None], torch.ones(n, 1, dtype=torch.float64), index, epsilon=eps,
                config={"norm_adv_by_std_in_grpo": True})[0]))
        for name, kind, fn in cases:
            ref = fn().reshape(-1).numpy()
            if lib:
                got = vppo.group_advantages(rewards, groups, kind=kind, eps=eps)
                rec.values("verl", "adv " + name, ref, got, "token", where="batch %d" % it)
            if golden is not None and it < 2:
                golden.case("%s_%d" % (name, it), "group_adv",
                            [("f32", "rewards", rewards), ("i64", "groups", groups), ("i64", "kind", [kind]),
                             ("f32", "eps", [eps]), ("f64", "exp_adv", ref)])

    # --- policy losses
    def verl_cfg(clip_low, clip_high, clip_c, info):
        c = FSDPActorConfig(strategy="fsdp", clip_ratio=clip_low, clip_ratio_low=clip_low,
                            clip_ratio_high=clip_high, clip_ratio_c=clip_c, rollout_n=1,
                            ppo_micro_batch_size_per_gpu=1)
        c.global_batch_info.update(info)
        return c

    agg_names = {0: "token-mean", 1: "seq-mean-token-mean", 2: "seq-mean-token-sum", 3: "seq-mean-token-sum-norm"}
    kl_names = {1: "k1", 2: "abs", 3: "k2", 4: "k3"}
    configs = []
    for agg in range(4):
        configs.append(dict(name="vanilla " + agg_names[agg], loss="vanilla", agg=agg, denom=0.0, weight=False))
        configs.append(dict(name="vanilla " + agg_names[agg] + " denom", loss="vanilla", agg=agg, denom=-1.0,
                            weight=True))
    configs += [dict(name="vanilla token-mean select", loss="vanilla", agg=0, denom=0.0, weight="select"),
                dict(name="gspo token-mean", loss="gspo", agg=0, denom=0.0, weight=False),
                dict(name="gspo seq-mean-token-mean", loss="gspo", agg=1, denom=0.0, weight=False),
                dict(name="cispo token-mean", loss="cispo", agg=0, denom=0.0, weight=False),
                dict(name="cispo seq-mean-token-sum", loss="cispo", agg=2, denom=0.0, weight=True)]
    for kl in (1, 2, 3, 4):
        configs.append(dict(name="vanilla+kl " + kl_names[kl], loss="vanilla", agg=kl % 4, denom=0.0,
                            weight=False, kl=kl))
    for ci, c in enumerate(configs):
        for it in range(n_batches):
            B, L = int(rng.integers(3, 12)), int(rng.integers(8, 48))
            if golden is not None:     # small stored cases
                B, L = int(rng.integers(3, 7)), int(rng.integers(8, 25))
            mask = padded_batch(rng, B, L)
            mask[0, :3] = 1
            # |Delta| < 10: verl's ppo_kl clamps Delta to [-20, 20] and its GSPO the log-ratio at 10
            logp, logp_old, _ = token_logps(rng, (B, L), outliers=True, max_abs_delta=9.5)
            logp_ref = (logp - rng.normal(0, 0.5, (B, L)) - (rng.random((B, L)) < 0.1) * 4.0).astype(np.float32)
            adv = (rng.normal(0, 1, (B, 1)) * mask).astype(np.float32)
            adv[rng.random((B, L)) < 0.05] = 0.0
            adv *= mask
            clip_low, clip_high, clip_c = f32(rng.choice([0.2, 0.1])), f32(rng.choice([0.28, 0.2])), \
                f32(rng.choice([3.0, 2.5]))
            agg_norm = float(rng.choice([L, 7.5]))
            denom = 0.0
            if c["denom"] < 0:
                denom = float(mask.sum() + 5) if c["agg"] == 0 else float(B + 2)
            weight = None
            select = None
            if c["weight"] is True:
                weight = rng.random((B, L)).astype(np.float32)
                weight[rng.random((B, L)) < 0.2] = 0.0
            elif c["weight"] == "select":
                select = (rng.random((B, L)) < 0.4).astype(np.uint8)
            kl = c.get("kl", 0)
            kl_coef = f32(0.5) if kl else 0.0
            info = {"dp_size": 1,
                    "batch_num_tokens": denom if (denom > 0 and c["agg"] == 0) else None,
                    "global_batch_size": (denom if denom > 0 else B) if c["agg"] != 0 else None,
                    "loss_scale_factor": agg_norm}
            vc = verl_cfg(clip_low, clip_high, clip_c, info)
            lp = torch.tensor(logp.astype(np.float64), requires_grad=True)
            m64 = t64(mask)
            w = None if (weight is None and select is None) else t64(weight if weight is not None else select)
            fn = {"vanilla": ca.compute_policy_loss_vanilla, "gspo": ca.compute_policy_loss_gspo,
                  "cispo": ca.compute_policy_loss_cispo}[c["loss"]]
            pg, metrics = fn(t64(logp_old), lp, t64(adv), m64, loss_agg_mode=agg_names[c["agg"]], config=vc,
                             rollout_is_weights=w)
            total = pg
            kl_val = None
            if kl:
                kl_val = ca.agg_loss(ca.kl_penalty(lp, t64(logp_ref), kl_names[kl]), m64, agg_names[c["agg"]],
                                     **info)
                total = pg + kl_coef * kl_val
            total.backward()
            dlogp_ref = lp.grad.numpy()
            n_valid = float(mask.sum())
            fix = (n_valid + 1e-8) / n_valid          # verl's masked_mean metrics: undo the + 1e-8
            extra = 1e-8 if c["agg"] == 1 else 0.0     # verl's seq-mean-token-mean keeps n_b + 1e-8
            ref = {"pg_loss": float(pg), "loss": float(total), "ppo_kl": metrics["actor/ppo_kl"] * fix}
            if kl:
                ref["kl_loss"] = float(kl_val)
            if c["loss"] == "vanilla":
                ref["clipfrac"] = metrics["actor/pg_clipfrac"] * fix
                ref["clipfrac_dual"] = metrics["actor/pg_clipfrac_lower"] * fix
            elif c["loss"] == "gspo":
                ref["clipfrac"] = metrics["actor/pg_clipfrac"] * fix
                ref["clipfrac_dual"] = 0.0
            cfgv = [clip_low, clip_high, clip_c if c["loss"] == "vanilla" else 0.0,
                    1 if c["loss"] == "cispo" else 0, 2 if c["loss"] == "gspo" else 0, c["agg"], agg_norm,
                    kl, kl_coef, 0.0, denom]
            if lib:
                lc = vppo.config_default().loss
                (lc.clip_low, lc.clip_high, lc.clip_dual, lc.pg_kind, lc.ratio_level, lc.agg, lc.agg_norm,
                 lc.kl_kind, lc.kl_coef, lc.entropy_coef, lc.denom) = cfgv
                out, dlogp = vppo.policy_loss(lc, vppo.offsets_uniform(B, L), mask, with_garbage(rng, logp, mask),
                                              logp_old, adv, select=select, weight=weight,
                                              logp_ref=logp_ref if kl else None)
                where = "%s batch %d" % (c["name"], it)
                for key, val in ref.items():
                    rec.values("verl", key, [val], [out[key]], "scalar", extra_rel=extra, where=where)
                rec.values("verl", "dlogp", dlogp_ref, dlogp, "token", extra_rel=extra, where=where)
            if golden is not None and it == 0:
                items = [("i64", "offsets", np.arange(B + 1) * L), ("u8", "mask", mask),
                         ("f32", "logp", logp), ("f32", "logp_old", logp_old),
                         ("f32", "logp_ref", logp_ref if kl else []), ("f32", "adv", adv),
                         ("u8", "select", select if select is not None else []),
                         ("f32", "weight", weight if weight is not None else []),
                         ("f64", "cfg", cfgv)]
                items += [("f64", "exp_" + k, [v]) for k, v in ref.items()]
                items.append(("f64", "exp_dlogp", dlogp_ref))
                golden.case(c["name"].replace(" ", "_").replace("+", "_"), "policy_loss", items)


# ====================================================================== (b) the release


RELEASE_CONFIGS = [
    # name, per-rank responses, L, ranks, micro, transcription cfg (the library cfg follows)
    dict(name="recipe 7B", B=16, L=64, ranks=1, micro=16, top_p=0.4, use_tgf=True, use_tas=True,
         loss_type="default", mode="token", kl=None, entropy_coef=0.06),
    dict(name="recipe 2 ranks x 3 micro", B=12, L=48, ranks=2, micro=4, top_p=0.4, use_tgf=True, use_tas=True,
         loss_type="default", mode="token", kl=None, entropy_coef=0.06),
    dict(name="gspo_token + k3 kl", B=10, L=40, ranks=1, micro=10, top_p=0.4, use_tgf=True, use_tas=True,
         loss_type="gspo_token", mode="token", kl="low_var_kl", entropy_coef=0.06),
    dict(name="cispo seq + mse kl", B=10, L=40, ranks=1, micro=10, top_p=0.4, use_tgf=True, use_tas=True,
         loss_type="cispo", mode="seq", kl="mse", entropy_coef=None),
    dict(name="default seq + abs kl", B=10, L=40, ranks=1, micro=10, top_p=0.4, use_tgf=True, use_tas=True,
         loss_type="default", mode="seq", kl="abs", entropy_coef=None),
    dict(name="entropy OR perception", B=12, L=48, ranks=1, micro=12, top_p=0.4, top_p_entropy=0.2,
         use_tgf=True, use_tas=True, loss_type="default", mode="token", kl="kl", entropy_coef=0.06),
    dict(name="TAS only", B=12, L=48, ranks=1, micro=12, top_p=1.0, use_tgf=False, use_tas=True,
         loss_type="default", mode="token", kl=None, entropy_coef=0.06),
    dict(name="TGF only, 3 micro", B=12, L=48, ranks=1, micro=4, top_p=0.4, use_tgf=True, use_tas=False,
         loss_type="default", mode="token", kl=None, entropy_coef=0.06),
    dict(name="ratio 0.6 (float32 ceil)", B=12, L=100, ranks=1, micro=12, top_p=0.6, use_tgf=True,
         use_tas=True, loss_type="default", mode="token", kl=None, entropy_coef=0.06, ceil_lengths=True,
         documented=True),
    dict(name="crafted float32 near-tie", B=8, L=32, ranks=1, micro=8, top_p=0.4, use_tgf=True, use_tas=True,
         loss_type="default", mode="token", kl=None, entropy_coef=0.06, craft_tie=True, documented=True),
]

# Two tokens whose float64 dependencies differ (5.438280632e-01 < 5.438280992e-01) but round to
# the same float32: the float64 release ranks the second first, vppo.h's float32 tie goes to
# the lower position (found by a search over random float32 log-probabilities).
TIE_A = (-2.595416784286499, -3.8556597232818604)     # (logp_old, logp_aug), the smaller dep
TIE_B = (-0.9134722352027893, -0.024379856884479523)  # the larger dep, same float32


def release_inputs(rng, c):
    """One mini-batch per rank of padded [B, L] arrays (float32, what vppo.h gets)."""
    import numpy as np
    ranks = []
    for _ in range(c["ranks"]):
        B, L = c["B"], c["L"]
        mask = padded_batch(rng, B, L, empty=0.1, holes=0.25)
        if c.get("ceil_lengths"):   # lengths where float32 ceil(n * 0.6) exceeds the specification's k
            for b, n in enumerate([25, 45, 50, 85, 90, 95, 100]):
                mask[b] = 0
                mask[b, :n] = 1
        mask[0, :4] = 1
        logp, logp_old, logp_aug = token_logps(rng, (B, L))
        if c.get("craft_tie"):     # response 1: 5 tokens, k = 2: one clear winner, then the tie
            mask[1] = 0
            mask[1, :5] = 1
            pairs = [(-1.0, -4.0), TIE_A, TIE_B, (-1.0, -1.0), (-1.0, -1.0)]
            logp_old[1, :5] = [a for a, _ in pairs]
            logp_aug[1, :5] = [b for _, b in pairs]
        logp_ref = (logp - rng.normal(0, 0.5, (B, L)) - (rng.random((B, L)) < 0.1) * 4.0).astype(np.float32)
        adv_seq = rng.normal(0, 1, B).astype(np.float32)
        adv_seq[rng.random(B) < 0.1] = 0.0
        entropy = rng.gamma(1.5, 1.0, (B, L)).astype(np.float32)
        entropy[rng.random((B, L)) < 0.05] = 0.0           # ties at 0
        ranks.append(dict(mask=mask, logp=logp, logp_old=logp_old, logp_aug=logp_aug, logp_ref=logp_ref,
                          adv_seq=adv_seq, entropy=entropy))
    return ranks


def run_release(c, ranks, eps):
    import numpy as np
    import torch
    import vppo_release as rel
    tr = []
    for r in ranks:
        m = torch.tensor(r["mask"].astype(np.int64))
        t = {k: torch.tensor(r[k].astype(np.float64)) for k in ("logp_old", "logp_aug", "logp_ref", "entropy")}
        t["logp"] = torch.tensor(r["logp"].astype(np.float64), requires_grad=True)
        t["adv"] = torch.tensor(r["adv_seq"].astype(np.float64))[:, None] * m.to(torch.float64)
        t["mask"] = m
        tr.append(t)
    cfg = dict(micro=c["micro"], top_p=c["top_p"], top_p_entropy=c.get("top_p_entropy"), use_tgf=c["use_tgf"],
               use_tas=c["use_tas"], beta_min=f32(0.9), clip_low=f32(0.2), clip_high=f32(0.28), clip_dual=f32(3.0),
               loss_type=c["loss_type"], mode=c["mode"], kl=c["kl"], kl_coef=f32(0.01),
               entropy_coef=None if c["entropy_coef"] is None else f32(c["entropy_coef"]))
    out = rel.update_policy(tr, cfg, eps=eps)
    world = len(ranks)
    for o, t in zip(out, tr):
        o["dlogp"] = (t["logp"].grad / world).numpy()     # the DDP average of the gradients
    return out


def library_config(c, denom):
    import vppo
    cfg = vppo.config_default()
    cfg.use_tas, cfg.use_tgf, cfg.topk_ratio = int(c["use_tas"]), int(c["use_tgf"]), c["top_p"]
    lc = cfg.loss
    lc.pg_kind = 1 if c["loss_type"] == "cispo" else 0
    lc.ratio_level = 2 if c["loss_type"] == "gspo_token" else 0
    lc.agg = 0 if c["mode"] == "token" else 1
    lc.kl_kind = {None: 0, "kl": 1, "abs": 2, "mse": 3, "low_var_kl": 4}[c["kl"]]
    lc.kl_coef = 0.01 if c["kl"] else 0.0
    lc.entropy_coef = 0.0 if c["entropy_coef"] is None else c["entropy_coef"]
    lc.denom = denom
    return cfg


def release_part(rec, rng, n_batches, golden=None, lib=True):
    import numpy as np
    if lib:
        import ctypes
        import vppo
        vppo._lib.vppo_topk_mask.restype = ctypes.c_int
        vppo._lib.vppo_topk_mask.argtypes = [ctypes.POINTER(vppo.Seqs), ctypes.POINTER(ctypes.c_float),
                                             ctypes.c_double, ctypes.POINTER(ctypes.c_uint8),
                                             ctypes.POINTER(vppo.TopkInfo)]
    for c in RELEASE_CONFIGS:
        stored = 0
        if golden is not None:     # small stored cases: 8 x 24 tokens, micro-batches of 2
            c = dict(c, B=c["B"] if c["B"] <= 8 // c["ranks"] else 8 // c["ranks"], L=24,
                     micro=2 if c["micro"] < c["B"] else 8 // c["ranks"])
        for it in range(n_batches if golden is None else 40):
            ranks = release_inputs(rng, c)
            out = run_release(c, ranks, eps=0.0)
            out_eps = run_release(c, ranks, eps=EPS_RELEASE)
            where = "%s batch %d" % (c["name"], it)
            # the released + 1e-8 moves nothing by more than 1e-7 (1 + |value|), a tenth of the specification's bound
            for o, oe in zip(out, out_eps):
                if rec is None:
                    break
                rec.values("release", "effect of released eps", o["dlogp"], oe["dlogp"], "eps", where=where)
                rec.values("release", "effect of released eps", [m["loss"] for m in o["micro"]],
                           [m["loss"] for m in oe["micro"]], "eps", where=where)
            total = out[0]["total"]
            multi = c["ranks"] > 1 or c["micro"] < c["B"]
            if lib:
                release_compare(rec, c, ranks, out, total, multi, where, vppo, np)
            if golden is not None and stored < (2 if c["name"] == "recipe 7B" else 1) and \
                    not c.get("documented"):
                # only cases whose mask does not depend on float32 rounding of the dependency
                stable = True
                for r, o in zip(ranks, out):
                    dep64 = o["dep"].numpy()
                    if c["use_tgf"]:
                        sel32, _ = spec_topk(dep64.astype(np.float32), r["mask"], c["top_p"])
                        sel64, _ = spec_topk(dep64, r["mask"], c["top_p"])
                        if c.get("top_p_entropy") is not None:
                            e_sel, _ = spec_topk(r["entropy"], r["mask"], c["top_p_entropy"])
                            sel32, sel64 = sel32 | e_sel, sel64 | e_sel
                        stable &= bool((sel32 == sel64).all()) and \
                            bool((sel64 == o["select"].numpy().astype(np.uint8)).all())
                if stable:
                    golden_release_case(golden, c, ranks, out, total, stored)
                    stored += 1
                if stored == (2 if c["name"] == "recipe 7B" else 1) or c.get("documented"):
                    break
        if golden is not None and stored == 0 and not c.get("documented"):
            raise RuntimeError("no rounding-stable batch for %s" % c["name"])


def release_compare(rec, c, ranks, out, total, multi, where, vppo, np):
    import ctypes
    lib_loss = {"loss": 0.0, "pg_loss": 0.0, "kl_loss": 0.0, "entropy_loss": 0.0}
    ref_loss = {"loss": 0.0, "pg_loss": 0.0, "kl_loss": 0.0, "entropy_loss": 0.0}
    for r, o in zip(ranks, out):
        B, L = r["mask"].shape
        offsets = vppo.offsets_uniform(B, L)
        mask = r["mask"]
        logp_g, old_g, aug_g = (with_garbage(np.random.default_rng(1), r[k], mask).reshape(-1)
                                for k in ("logp", "logp_old", "logp_aug"))
        cfg = library_config(c, float(total) if multi else 0.0)
        # TAS range: the whole rank's mini-batch (the release's pre-pass), through vppo_prepare
        whole = vppo.prepare(library_config(c, 0.0), offsets, mask, old_g, aug_g, r["adv_seq"])
        stats = vppo.tas_stats(whole["traj_dep"], whole["count"])
        dep64 = o["dep"].numpy()
        dlogp = np.zeros(B * L, np.float32)
        scale = np.zeros(B, np.float32)
        adv = np.zeros(B * L, np.float32)
        dep = np.zeros(B * L, np.float32)
        for mi, mref in enumerate(o["micro"]):
            rows = mref["rows"]
            sub = offsets[rows.start:rows.stop + 1]
            step_out = None
            if multi:   # every micro-batch normalised by the rank's mini-batch range, denom = total
                p = vppo.prepare(cfg, sub, mask, old_g, aug_g, r["adv_seq"][rows], global_stats=stats)
            else:       # one micro-batch: vppo_step itself
                lout, dl, p = vppo.step(cfg, sub, mask, logp_g, old_g, aug_g, r["adv_seq"][rows],
                                        logp_ref=r["logp_ref"] if c["kl"] else None)
                step_out = (lout, dl)
            sel = p["select"].reshape(B, L).copy()
            if c.get("top_p_entropy") is not None:
                e = np.zeros(B * L, np.uint8)
                s = vppo._SeqsArg(sub, mask)
                ent = np.ascontiguousarray(r["entropy"].reshape(-1))
                st = vppo._lib.vppo_topk_mask(s.ref, ent.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                              c["top_p_entropy"], e.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
                                              None)
                assert st == 0, st
                sel = sel | e.reshape(B, L)
            # vppo.h's own mask against the specification's rule on its own float32 dependency
            p_dep = p["dep"].reshape(B, L)
            sub_mask = np.zeros_like(mask)
            sub_mask[rows] = mask[rows]
            if c["use_tgf"]:
                spec_sel, k_spec = spec_topk(p_dep, sub_mask, c["top_p"])
            else:
                spec_sel, k_spec = sub_mask.copy(), sub_mask.sum(1)
            if c.get("top_p_entropy") is not None:
                spec_sel |= spec_topk(r["entropy"], sub_mask, c["top_p_entropy"])[0]
            rec.exact("release", "select vs the spec rule (own dep)", spec_sel[rows], sel[rows], where=where)
            # against the release
            ref_sel = o["select"].numpy()[rows]
            k_ref = o["k"].numpy()[rows]
            counts, documented = classify_masks(sel[rows], ref_sel.astype(np.uint8), dep64[rows], mask[rows],
                                                k_ref, k_spec[rows])
            rec.mask_note("release", "select vs release", counts["exact"], counts["ceil"], counts["tie"],
                          counts["bad"], int(mask[rows].sum()))
            if counts["bad"]:
                rec.failures.append("%s: micro %d: masks differ outside the documented cases" % (where, mi))
            use_sel = sel.copy()
            if documented:      # loss and gradient on the release's own mask for those rows
                for b in documented:
                    use_sel[rows.start + b] = ref_sel[b].astype(np.uint8)
            if step_out is not None and not documented and c.get("top_p_entropy") is None:
                lout, dl = step_out
            else:
                lout, dl = vppo.policy_loss(cfg.loss, sub, mask, logp_g, old_g, p["adv"], select=use_sel,
                                            logp_ref=r["logp_ref"] if c["kl"] else None)
            dlogp += dl
            scale[rows] = p["scale"]
            flat = slice(rows.start * L, rows.stop * L)
            adv[flat] = p["adv"][flat]
            dep[flat] = p["dep"][flat]
            rec.exact("release", "n_selected", [int(use_sel[rows][mask[rows] != 0].sum())], [lout["n_selected"]],
                      where=where)
            for key, rkey in (("loss", "loss"), ("pg_loss", "pg"), ("kl_loss", "kl"), ("entropy_loss", "ent")):
                if mref[rkey] is None:
                    continue
                rv = mref[rkey] * (mref["n"] / total if multi else 1.0)
                ref_loss[key] += rv
                lib_loss[key] += lout[key]
            if not multi:
                for key in ("clipfrac", "clipfrac_dual", "ppo_kl"):
                    if key in mref["metrics"]:
                        rec.values("release", key, [mref["metrics"][key]], [lout[key]], "scalar", where=where)
                if mref["ent"] is None:     # no penalty: the release's logged entropy_loss, in its mode
                    rec.values("release", "entropy_loss (metric)", [mref["metrics"]["entropy_loss"]],
                               [lout["entropy_loss"]], "scalar", where=where)
                if c["use_tgf"] and not documented and c.get("top_p_entropy") is None:
                    thr = o_threshold(o, dep64, mask, c["top_p"])
                    rec.values("release", "topk threshold_mean", [thr], [p["topk"]["threshold_mean"]], "scalar",
                               where=where)
        valid = mask.reshape(-1) != 0
        rec.values("release", "dep (k3)", dep64.reshape(-1)[valid], dep[valid], "token", where=where)
        rec.exact("release", "dep = 0 at invalid", np.zeros(int((~valid).sum())), dep[~valid], where=where)
        rec.values("release", "tas scale", o["scale"].numpy(), scale, "token", where=where)
        rec.values("release", "traj_dep", vppo_release_scores(o, mask), whole["traj_dep"], "token", where=where)
        rec.values("release", "shaped adv", o["adv_shaped"].numpy().reshape(-1), adv, "token", where=where)
        rec.values("release", "dlogp", o["dlogp"].reshape(-1), dlogp, "token", where=where)
    for key in lib_loss:
        if ref_loss[key] or lib_loss[key]:
            rec.values("release", key, [ref_loss[key]], [lib_loss[key]], "scalar", where=where)


def vppo_release_scores(o, mask):
    import numpy as np
    import torch
    import vppo_release as rel
    return rel.sensitivity_scores(o["dep"], torch.tensor(mask.astype(np.int64))).numpy()


def o_threshold(o, dep64, mask, top_p):
    """The release's logged threshold for one micro-batch (mean over k_b > 0 of the k_b-th)."""
    import numpy as np
    import torch
    import vppo_release as rel
    _, _, thr = rel.topk_token_mask(torch.tensor(dep64), torch.tensor(mask.astype(np.int64)), top_p)
    return float(thr)


def golden_release_case(golden, c, ranks, out, total, idx):
    """A release case as stored: the ranks concatenated (rank r = responses [ranks[r], ranks[r+1])),
    the expected values with eps = 0 (the specification's mean)."""
    import numpy as np
    mask = np.concatenate([r["mask"] for r in ranks])
    B, L = mask.shape
    cat = lambda k: np.concatenate([r[k] for r in ranks])  # noqa: E731
    multi = c["ranks"] > 1 or c["micro"] < c["B"]
    lib = {"use_tas": int(c["use_tas"]), "beta_min": f32(0.9), "use_tgf": int(c["use_tgf"]),
           "topk_ratio": c["top_p"], "topk_ratio_entropy": c.get("top_p_entropy") or 0.0}
    loss_cfg = [f32(0.2), f32(0.28), f32(3.0), 1 if c["loss_type"] == "cispo" else 0,
                2 if c["loss_type"] == "gspo_token" else 0, 0 if c["mode"] == "token" else 1, 1.0,
                {None: 0, "kl": 1, "abs": 2, "mse": 3, "low_var_kl": 4}[c["kl"]], f32(0.01) if c["kl"] else 0.0,
                0.0 if c["entropy_coef"] is None else f32(c["entropy_coef"]), float(total) if multi else 0.0]
    exp = {"loss": 0.0, "pg_loss": 0.0, "kl_loss": 0.0, "entropy_loss": 0.0}
    for o in out:
        for m in o["micro"]:
            w = m["n"] / total if multi else 1.0
            for key, rkey in (("loss", "loss"), ("pg_loss", "pg"), ("kl_loss", "kl"), ("entropy_loss", "ent")):
                if m[rkey] is not None:
                    exp[key] += m[rkey] * w
    sel = np.concatenate([o["select"].numpy() for o in out]).astype(np.uint8)
    items = [("i64", "shape", [B, L]), ("i64", "ranks", np.arange(c["ranks"] + 1) * c["B"]),
             ("i64", "micro", [c["micro"]]), ("u8", "mask", mask),
             ("f32", "logp", cat("logp")), ("f32", "logp_old", cat("logp_old")), ("f32", "logp_aug", cat("logp_aug")),
             ("f32", "logp_ref", cat("logp_ref") if c["kl"] else []), ("f32", "adv_seq", cat("adv_seq")),
             ("f32", "entropy", cat("entropy") if c.get("top_p_entropy") else []),
             ("f64", "vppo", [lib["use_tas"], lib["beta_min"], lib["use_tgf"], lib["topk_ratio"],
                              lib["topk_ratio_entropy"]]),
             ("f64", "cfg", loss_cfg),
             ("f64", "exp_dep", np.concatenate([o["dep"].numpy() for o in out]) * mask),
             ("f64", "exp_traj_dep", np.concatenate([vppo_release_scores(o, r["mask"]) for o, r in zip(out, ranks)])),
             ("f64", "exp_scale", np.concatenate([o["scale"].numpy() for o in out])),
             ("f64", "exp_adv", np.concatenate([o["adv_shaped"].numpy() for o in out])),
             ("u8", "exp_select", sel)]
    items += [("f64", "exp_" + k, [v]) for k, v in exp.items()
              if not (k == "kl_loss" and not c["kl"]) and not (k == "entropy_loss" and c["entropy_coef"] is None)]
    items.append(("f64", "exp_dlogp", np.concatenate([o["dlogp"] for o in out])))
    name = c["name"].replace(" ", "_").replace("+", "").replace("(", "").replace(")", "").replace(",", "")
    golden.case("%s_%d" % (name, idx), "vppo_step", items)


# ====================================================================== (c) torch.nn.functional


def torch_refs(z, za, ids, T, Ta, g, h):
    """float64 torch references for one pair of logit matrices (numpy float64 inputs), row by
    row on the support of each row (its finite logits): -inf logits have probability 0 and
    gradient 0 by docs/spec.md section 1, and torch's Categorical.entropy / kl_div would turn the
    0 * -inf of those entries into NaN in the backward pass or the sum."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.distributions import Categorical

    def kl(lp, lq):   # KL(P || Q) with F.kl_div; terms with p_i = 0 are 0 (docs/spec.md section 1)
        terms = F.kl_div(lq, lp, log_target=True, reduction="none")
        return torch.where(torch.isneginf(lp), torch.zeros_like(terms), terms).sum(-1)

    R, V = z.shape
    out = {k: np.zeros(R) for k in ("logp", "lse", "entropy", "kl", "kl_rev", "js")}
    out["dlogits"] = np.zeros((R, V))
    for r in range(R):
        cols = np.nonzero(np.isfinite(z[r]) | np.isfinite(za[r]))[0]
        own = np.nonzero(np.isfinite(z[r]))[0]
        zt = torch.tensor(z[r, own], requires_grad=True)
        u = zt / T
        logp_all = F.log_softmax(u, dim=-1)
        ent = Categorical(logits=u).entropy()
        pos = int(np.nonzero(own == ids[r])[0][0])
        (float(g[r]) * logp_all[pos] + float(h[r]) * ent).backward()
        out["dlogits"][r, own] = zt.grad.numpy()
        out["logp"][r] = float(logp_all[pos])
        out["lse"][r] = float(torch.logsumexp(u, dim=-1))
        out["entropy"][r] = float(ent)
        with torch.no_grad():
            lp = F.log_softmax(torch.tensor(z[r, cols]) / T, dim=-1)
            lq = F.log_softmax(torch.tensor(za[r, cols]) / Ta, dim=-1)
            lm = torch.logsumexp(torch.stack([lp, lq]), dim=0) - math.log(2.0)
            out["kl"][r], out["kl_rev"][r] = float(kl(lp, lq)), float(kl(lq, lp))
            out["js"][r] = float(0.5 * kl(lp, lm) + 0.5 * kl(lq, lm))
    return out


def logits_cases(rng, n):
    """(name, dtype, z as stored (float32 / float16 / uint16 bf16 bits), its float64 value, aug,
    ids, T, Ta) for n random rounds."""
    import numpy as np
    import torch
    out = []
    for it in range(n):
        R, V = int(rng.integers(2, 12)), int(rng.choice([5, 33, 64, 257, 1000]))
        for dtype in ("f32", "bf16", "f16"):
            scale = rng.choice([1.0, 3.0, 10.0])
            z = rng.normal(0, scale, (R, V))
            za = z + rng.normal(0, rng.choice([0.05, 0.5, 2.0]), (R, V))
            if dtype == "f32" and it % 3 == 2:
                z[0] += 3e4         # large logits: the max subtraction matters
                za[0] += 3e4
            ids = rng.integers(0, V, R).astype(np.int32)
            if it % 2 == 1:     # -inf entries (masked vocabulary) on both sides, never at the id
                inf_mask = rng.random((R, V)) < 0.2
                inf_mask[np.arange(R), ids] = False
                z[inf_mask] = -np.inf
                za[inf_mask] = -np.inf
                if it % 4 == 3:     # and some only in the perturbed row: KL(P || Q) = +inf there
                    za[0, rng.random(V) < 0.1] = -np.inf
                    za[0, ids[0]] = 0.0 if np.isneginf(za[0, ids[0]]) else za[0, ids[0]]
            T, Ta = f32(rng.choice([1.0, 0.7, 1.3])), f32(rng.choice([1.0, 0.6]))
            if dtype == "f32":
                zs, zas = z.astype(np.float32), za.astype(np.float32)
                zv, zav = zs.astype(np.float64), zas.astype(np.float64)
            elif dtype == "f16":
                zs, zas = z.astype(np.float16), za.astype(np.float16)   # |z| << 65504; -inf stays -inf
                zv, zav = zs.astype(np.float64), zas.astype(np.float64)
            else:
                tb = torch.tensor(z, dtype=torch.float32).to(torch.bfloat16)
                tab = torch.tensor(za, dtype=torch.float32).to(torch.bfloat16)
                zs = tb.view(torch.int16).numpy().view(np.uint16).copy()
                zas = tab.view(torch.int16).numpy().view(np.uint16).copy()
                zv, zav = tb.to(torch.float64).numpy(), tab.to(torch.float64).numpy()
            out.append(("%s_%dx%d_%d" % (dtype, R, V, it), dtype, zs, zv, zas, zav, ids, T, Ta))
    return out


def torch_part(rec, rng, n_batches, golden=None, lib=True):
    import numpy as np
    if lib:
        import vppo
    stored = set()
    for name, dtype, zs, zv, zas, zav, ids, T, Ta in logits_cases(rng, n_batches):
        R, V = zv.shape
        g = rng.normal(0, 1, R).astype(np.float32)
        h = rng.normal(0, 1, R).astype(np.float32)
        ref = torch_refs(zv, zav, ids, T, Ta, g.astype(np.float64), h.astype(np.float64))
        if lib:
            logp, lse, ent = vppo.logprobs(zs, ids, temperature=T)
            rec.values("torch", "logp (log_softmax)", ref["logp"], logp, "logp_k", where=name)
            rec.values("torch", "lse (logsumexp)", ref["lse"], lse, "lse", where=name)
            rec.values("torch", "entropy (Categorical)", ref["entropy"], ent, "div", where=name)
            for key, div in (("kl", vppo.DIV_KL), ("kl_rev", vppo.DIV_KL_REVERSE), ("js", vppo.DIV_JS)):
                got = vppo.dependency_logits(zs, zas, div=div, temperature=T, temperature_aug=Ta)
                rec.values("torch", key + " (F.kl_div)", ref[key], got, "div", where=name)
            dz = vppo.logprobs_backward(zs, ids, dlogp=g, dentropy=h, temperature=T)
            rec.values("torch", "dlogits (autograd)", ref["dlogits"], dz, "dlogits", where=name)
        key = (dtype, "-inf" if np.isinf(zv).any() else "finite")
        if golden is not None and key not in stored and R * V <= 600:
            stored.add(key)
            typ = "f32" if dtype == "f32" else "u16"      # bf16 and f16 logits as their 16-bit patterns
            zsv = zs.view(np.uint16) if dtype == "f16" else zs
            zasv = zas.view(np.uint16) if dtype == "f16" else zas
            golden.case(name, "logits",
                        [("i64", "dims", [R, V]), ("i64", "dtype", [{"f32": 0, "bf16": 1, "f16": 2}[dtype]]),
                         ("f32", "temp", [T]), ("f32", "temp_aug", [Ta]), (typ, "logits", zsv), (typ, "aug", zasv),
                         ("i32", "ids", ids), ("f32", "dlogp", g), ("f32", "dentropy", h)] +
                        [("f64", "exp_" + k, ref[k]) for k in ("logp", "lse", "entropy", "kl", "kl_rev", "js",
                                                               "dlogits")])
    if golden is not None and len(stored) < 6:
        raise RuntimeError("torch part: only %d of 6 logits golden cases found" % len(stored))


# ====================================================================== (d) verl rollout correction


def rollout_part(rec, rng, n_batches):
    """vppo_rollout_correction against verl's rollout_corr_helper: IS weights (token and
    sequence TIS, IcePop, batch normalization), rejection masks (every rollout_rs option)
    and their metrics, on batches without empty responses (verl averages its sequence
    metrics over all rows, vppo over non-empty ones; see vppo.h)."""
    import numpy as np
    import torch
    from verl.trainer.ppo import rollout_corr_helper as rc
    import vppo
    t64 = lambda a: torch.tensor(np.asarray(a, np.float64))  # noqa: E731
    is_cases = [("token", "2.0", vppo.RC_IS_TRUNCATE, vppo.RC_TOKEN, 2.0, 0.0, False),
                ("token", "1.5", vppo.RC_IS_TRUNCATE, vppo.RC_TOKEN, 1.5, 0.0, True),
                ("token", "0.5_2.0", vppo.RC_IS_MASK, vppo.RC_TOKEN, 2.0, 0.5, False),
                ("sequence", "3.0", vppo.RC_IS_TRUNCATE, vppo.RC_SEQ_SUM, 3.0, 0.0, False),
                ("sequence", "3.0", vppo.RC_IS_TRUNCATE, vppo.RC_SEQ_SUM, 3.0, 0.0, True),
                ("sequence", "0.3_3.0", vppo.RC_IS_MASK, vppo.RC_SEQ_SUM, 3.0, 0.3, False)]
    levels = {"token": vppo.RC_TOKEN, "seq_sum": vppo.RC_SEQ_SUM, "seq_mean": vppo.RC_SEQ_MEAN,
              "seq_max": vppo.RC_SEQ_MAX}
    rs_cases = [("token_k1", "0.6_1.5", 1.5, 0.6), ("token_k1", "1.6", 1.6, 0.0), ("token_k2", "0.1", 0.1, 0.0),
                ("token_k3", "0.05", 0.05, 0.0), ("seq_sum_k1", "0.2_4.0", 4.0, 0.2), ("seq_sum_k2", "1.0", 1.0, 0.0),
                ("seq_sum_k3", "0.8", 0.8, 0.0), ("seq_mean_k1", "0.9_1.1", 1.1, 0.9),
                ("seq_mean_k2", "0.06", 0.06, 0.0), ("seq_mean_k3", "0.05", 0.05, 0.0),
                ("seq_max_k2", "0.5", 0.5, 0.0), ("seq_max_k3", "0.4", 0.4, 0.0)]
    for it in range(n_batches):
        B, L = int(rng.integers(4, 12)), int(rng.integers(6, 40))
        mask = padded_batch(rng, B, L, empty=0.0, min_len=1)
        old = (-np.exp(rng.normal(-1.0, 1.2, (B, L)))).astype(np.float32)
        l = rng.normal(0.0, 0.35, (B, L))
        far = rng.random((B, L)) < 0.03
        l[far] = rng.uniform(-5, 5, int(far.sum()))
        rollout = (old - l).astype(np.float32)
        offs = vppo.offsets_uniform(B, L)
        lr = t64(old) - t64(rollout)
        m64 = t64(mask)
        where = "batch %d" % it
        for level, spec, mode, vlevel, upper, lower, norm in is_cases:
            cfg = vppo.rc_config_default()
            cfg.is_mode, cfg.is_level, cfg.is_upper, cfg.is_lower, cfg.is_batch_normalize = \
                mode, vlevel, upper, lower, int(norm)
            w, keep, m = vppo.rollout_correction(cfg, offs, mask, with_garbage(rng, old, mask), rollout)
            wv, mv = rc.compute_rollout_correction_weights(lr, m64, rollout_is=level, rollout_is_threshold=spec,
                                                           rollout_is_batch_normalize=norm)
            name = "IS %s %s%s" % (level, spec, " norm" if norm else "")
            rec.values("rollout", name + " weight", wv.numpy(), w, "token", where=where)
            rec.exact("rollout", name + " keep", mask, keep, where=where)
            pairs = [("rollout_is_mean", "is_mean"), ("rollout_is_std", "is_std"),
                     ("rollout_is_ratio_fraction_high", "is_frac_high"),
                     ("rollout_is_ratio_fraction_low", "is_frac_low")]
            if level == "token":
                pairs += [("rollout_is_max", "is_max"), ("rollout_is_min", "is_min")]
            if norm:
                pairs.append(("rollout_is_batch_norm_factor", "is_norm"))
            for kv, kc in pairs:
                rec.values("rollout", "IS " + kv[11:], [mv[kv]], [m[kc]], "scalar", where=name + " " + where)
            # verl's ESS divides by mean + 1e-8
            rec.values("rollout", "IS eff_sample_size", [mv["rollout_is_eff_sample_size"]], [m["is_ess"]], "scalar",
                       extra_rel=1e-7, where=name + " " + where)
        for opt, spec, upper, lower in rs_cases:
            cfg = vppo.rc_config_default()
            cfg.is_mode = vppo.RC_IS_NONE
            kind = {"k1": vppo.RC_RS_K1, "k2": vppo.RC_RS_K2, "k3": vppo.RC_RS_K3}[opt[-2:]]
            cfg.rs_kind, cfg.rs_level, cfg.rs_upper, cfg.rs_lower = kind, levels[opt[:-3]], upper, lower
            w, keep, m = vppo.rollout_correction(cfg, offs, mask, old, rollout)
            mask_v, mv = rc.compute_rollout_rejection_mask(lr, m64, rollout_rs=opt, rollout_rs_threshold=spec)
            name = "RS %s %s" % (opt, spec)
            rec.exact("rollout", "RS keep", mask_v.numpy().astype(np.uint8), keep, where=name + " " + where)
            rec.exact("rollout", "RS weight", mask_v.numpy().astype(np.float32), w, where=name + " " + where)
            for kv, kc in (("rollout_rs_masked_fraction", "rs_frac_token"),
                           ("rollout_rs_seq_masked_fraction", "rs_frac_seq"),
                           ("rollout_rs_%s_mean" % opt, "rs_mean"), ("rollout_rs_%s_max" % opt, "rs_max"),
                           ("rollout_rs_%s_min" % opt, "rs_min")):
                rec.values("rollout", "RS " + kc, [mv[kv]], [m[kc]], "scalar", where=name + " " + where)
        mv = rc.compute_offpolicy_metrics(t64(old), t64(rollout), m64)
        _, _, m = vppo.rollout_correction(vppo.rc_config_default(), offs, mask, old, rollout)
        for k in ("kl", "k3_kl", "chi2_token", "chi2_seq", "log_ppl_diff"):
            rec.values("rollout", "off-policy " + k, [mv[k]], [m[k]], "scalar", where=where)


# ====================================================================== main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20251010)
    ap.add_argument("--batches", type=int, default=6, help="random batches per configuration")
    ap.add_argument("--write-golden", metavar="DIR", help="write the golden vectors (needs numpy, torch, verl)")
    args = ap.parse_args()

    try:
        import numpy as np
    except ImportError:
        print("crosscheck: skipped: numpy not found (pip install numpy)")
        return 0
    sys.path.insert(0, HERE)
    have_torch, why_torch = True, ""
    try:
        import torch
        torch.set_num_threads(1)
    except Exception as e:  # noqa: BLE001 - any import failure means: no torch here
        have_torch, why_torch = False, "torch not importable (%s): pip install torch" % e
    have_verl, why_verl = have_torch, why_torch
    if have_torch:
        try:
            import warnings
            warnings.filterwarnings("ignore")
            import verl.trainer.ppo.core_algos  # noqa: F401
            import verl.workers.config  # noqa: F401
        except Exception as e:  # noqa: BLE001
            have_verl, why_verl = False, ("verl.trainer.ppo.core_algos not importable (%s: %s): pip install "
                                          "--no-deps verl, then its imports (packaging ray tensordict omegaconf "
                                          "transformers codetiming)" % (type(e).__name__, e))

    if args.write_golden:
        missing = [w for ok, w in ((have_torch, why_torch), (have_verl, why_verl)) if not ok]
        if missing:
            print("golden: cannot write the golden vectors without every reference:\n  " + "\n  ".join(missing))
            return 2
        return write_golden(args.write_golden, args.seed, np, torch)

    sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
    if not os.environ.get("VPPO_LIB"):
        os.environ["VPPO_LIB"] = os.path.join(ROOT, "build", "xcheck", "libvppo.so")
    import importlib
    importlib.import_module("vppo")     # loads the library and checks the struct layouts against it

    rec = Recorder()
    rng = np.random.default_rng(args.seed)
    print("crosscheck: vppo.h (%s) against trusted implementations, seed %d, %d batches per configuration"
          % (os.environ["VPPO_LIB"], args.seed, args.batches))
    if have_verl:
        import verl
        print("(a) verl %s, verl.trainer.ppo.core_algos" % getattr(verl, "__version__", "?"))
        verl_part(rec, rng, args.batches)
        print("(d) verl.trainer.ppo.rollout_corr_helper (rollout correction)")
        rollout_part(rec, rng, args.batches)
    else:
        rec.skip("a: verl", why_verl)
        rec.skip("d: rollout", why_verl)
    if have_torch:
        print("(b) torch %s, tests/crosscheck/vppo_release.py (the released update_policy)" % torch.__version__)
        release_part(rec, rng, args.batches)
        print("(c) torch.nn.functional")
        torch_part(rec, rng, 2 * args.batches)
    else:
        rec.skip("b: release", why_torch)
        rec.skip("c: torch", why_torch)
    return rec.report()


def write_golden(out_dir, seed, np, torch):
    import verl
    os.makedirs(out_dir, exist_ok=True)
    fmt = "format: tests/data/README.md. Regenerate with `make golden` (tests/crosscheck/crosscheck.py)."
    headers = {
        "verl": "vppo.h golden vectors from verl %s (verl.trainer.ppo.core_algos), torch %s, float64.\n"
                "Group advantages (GRPO, Dr.GRPO, RLOO, pass@k) and policy losses (vanilla clip with dual clip\n"
                "in the four aggregation modes, GSPO token ratio, CISPO, k1/abs/k2/k3 KL) with autograd dlogp.\n"
                "Masked-mean metrics are corrected for verl's + 1e-8; seq-mean-token-mean keeps it (<= 1e-8 rel).\n"
                % (getattr(verl, "__version__", "?"), torch.__version__),
        "release": "vppo.h golden vectors from tests/crosscheck/vppo_release.py, a torch %s transcription of\n"
                   "the VPPO release's update_policy (huaixuheqing/VPPO-RL dp_actor.py), float64, masked means\n"
                   "without the release's + 1e-8 (docs/spec.md's mean). Only batches whose top-k mask is the same on the\n"
                   "float64 and the float32-rounded dependency are stored.\n" % torch.__version__,
        "torch": "vppo.h golden vectors from torch %s: F.log_softmax, torch.logsumexp, Categorical.entropy,\n"
                 "F.kl_div (KL, reverse KL, JS; p_i = 0 terms as 0) and autograd of sum(g logp + h H), float64\n"
                 "on the exact values of f32 / bf16 / f16 logits (the 16-bit ones stored as their bit patterns).\n"
                 % torch.__version__,
    }
    total = 0
    # (name, part, batches); the seed offsets 1, 2, 3 and the files are those of the stored vectors
    for k, (name, part, batches) in enumerate((("verl", verl_part, 2), ("release", release_part, 1),
                                               ("torch", torch_part, 12)), 1):
        g = Golden(name)
        part(None, np.random.default_rng(seed + k), batches, golden=g, lib=False)
        total += g.write(os.path.join(out_dir, "golden_%s.txt" % name), headers[name] + fmt)
    print("golden: wrote %s/golden_{verl,release,torch}.txt, %d bytes in all" % (out_dir, total))
    return 0 if total < 1000000 else 1


if __name__ == "__main__":
    sys.exit(main())
