"""vppo_release.py - a torch transcription of the VPPO authors' released update_policy math.

Source read (not copied): github.com/huaixuheqing/VPPO-RL, verl/workers/actor/dp_actor.py
(DataParallelPPOActor.update_policy) and verl/trainer/core_algos.py (compute_policy_loss,
average_loss, compute_kl) and verl/utils/torch_functional.py (masked_mean) of that repository,
an EasyR1 fork. This file re-expresses that math in its own code, on padded [B, L] tensors
exactly as the released trainer holds them, so that crosscheck.py can compare vppo.h with it.

What the released code does, step by step, for one rank's mini-batch:

  1. total = number of response tokens of the mini-batch, all-reduced (SUM) over ranks.
  2. TAS range: per response, s_b = sum(low_var_kl * mask) / max(n_b, 1) over the whole
     mini-batch; min and max (torch.quantile at 0 and 1) over responses with n_b > 0, only
     when more than one such response exists. Not all-reduced: per device.
  3. For each micro-batch (consecutive responses):
     a. low_var_kl (k3): d = clamp(logp_aug - logp_old, -20, 20), v = clamp(exp(d) - d - 1, 0, 10)
     b. TGF: k_b = ceil(n_b * top_p) computed as int64 count times a Python float, i.e. in
        float32; invalid positions get -inf; sort descending; the first k_b ranks are kept;
        the mask is ANDed with the response mask.  (Optionally the same on token entropies,
        combined by OR.)
     c. TAS, "dynamic beta_max": x_b = clamp((s_b - min) / (max - min), 0, 1) over valid
        responses of the micro-batch, mu = mean x_b, beta_max' = beta_min + (1 - beta_min) /
        (mu + 1e-8), alpha_b = beta_min + x_b (beta_max' - beta_min); alpha = 1 for empty
        responses, and all alpha = 1 unless max - min > 1e-6. advantages *= alpha_b.
     d. policy loss: Delta = logp - logp_old; rho = Delta (default), or for "gspo_token"
        sg(masked_mean_b(Delta)) + logp - sg(logp); r = exp(clamp(rho, -20, 20)),
        rhat = exp(clamp(rho, ln(1 - clip_low), ln(1 + clip_high))); L1 = -A r, L2 = -A rhat,
        L3 = -A clip_dual; H = max(L1, L2); loss_t = A < 0 ? min(H, L3) : H. "cispo":
        loss_t = -A logp sg(rhat). loss_t *= token mask; then average_loss (token: masked
        mean; seq: mean over ALL responses of each response's masked mean).
     e. + kl_coef * average_loss(kl(logp, logp_ref)) when a KL loss is used (k1 "kl", "abs",
        k2 "mse", k3 "low_var_kl" with x = clamp(ref - logp, -20, 20), clamp(e^x-x-1, -10, 10));
        + entropy_coef * (-masked_mean(logp)) when the entropy penalty is on (always a token
        mean, whatever the averaging mode).
     f. loss *= n_micro * world_size / total; loss.backward() (gradients accumulate over the
        micro-batches; DDP then averages them over the ranks).

Where the released code differs from docs/spec.md (and how crosscheck.py accounts for it):

  * masked_mean divides by (count + 1e-8), and the "seq" mode by (n_b + 1e-8). The spec divides
    by the count. Every function below takes `eps` (the released value is MASKED_MEAN_EPS);
    crosscheck.py compares vppo.h with eps = 0 at the docs/spec.md §12 bounds, and separately
    checks that the released eps moves no result by more than 1e-8 relative.
  * k_b is ceil of a float32 product (the spec: ceil(n_b ratio - 1e-9) in double). For ratios
    0.4, 0.2, 0.5, 0.8, 0.1 the two agree for every n_b <= 8192; for 0.3 and 0.6 they do not
    (e.g. n_b = 50 at 0.3: float32 gives 16, the spec 15). transcription_k() returns the released
    k; crosscheck.py checks those cases as "one more token than the spec, the next in rank".
  * torch.sort is not stable: the order of equal dependencies is unspecified in the release.
    Here the sort is stable (ties to the lower position), which is the spec's rule, so masks can
    only differ on float32 near-ties (this file computes in float64, vppo.h sorts the stored
    float32 dependency).
  * The released "gspo" (sequence-level ratio) broadcasts a [B] tensor against [B, L] and
    is only well-formed when B == L: not transcribed (vppo.h's VPPO_RATIO_SEQ is checked by
    its own tests only). "gspo_token" and "cispo" are transcribed.
  * The entropy penalty is a token mean in every averaging mode (the spec: the configured agg);
    crosscheck.py uses it with the token mode only.
  * The TAS range is per device (the all-reduce is commented out), which is what vppo.h
    does when each rank calls vppo_prepare without `global`; vppo.h's global-stats path
    reproduces the mini-batch range used by every micro-batch.

(compute_kl's .float() casts of the release are not kept: they only lower the precision.)
All arithmetic follows the dtype of the inputs; crosscheck.py passes float64 copies of the
float32 arrays, so this is a float64 reference of the released algorithm (the k_b rule above
is the one place where float32 arithmetic is part of the released semantics, and it is kept).
"""
import math

import torch

MASKED_MEAN_EPS = 1e-8      # verl/utils/torch_functional.py masked_mean of the release


# ---------------------------------------------------------------- small pieces


def _count(m, dim, eps):
    """The released denominator sum(mask) + eps; with eps = 0, the spec's count where an empty
    sum is 0 (a count of 0 is replaced by 1: its numerator is 0)."""
    n = m.sum() if dim is None else m.sum(dim=dim)
    return n + eps if eps > 0 else n.clamp(min=1.0)


def masked_mean(values, mask, dim=None, eps=MASKED_MEAN_EPS):
    """sum(values * mask) / (sum(mask) + eps), over everything or along dim."""
    m = mask.to(values.dtype)
    if dim is None:
        return (values * m).sum() / _count(m, None, eps)
    return (values * m).sum(dim=dim) / _count(m, dim, eps)


def average_loss(values, mask, mode, eps=MASKED_MEAN_EPS):
    """The release's two averaging modes: 'token' = one masked mean over the batch; 'seq' =
    the mean over every response (empty ones included) of its own masked mean."""
    if mode == "token":
        return masked_mean(values, mask, eps=eps)
    if mode == "seq":
        m = mask.to(values.dtype)
        return ((values * m).sum(-1) / _count(m, -1, eps)).mean()
    raise ValueError("averaging mode %r" % (mode,))


def low_var_kl_dependency(logp_old, logp_aug):
    """Token visual dependency: k3 of the log-ratio aug/old with both released clamps."""
    d = (logp_aug - logp_old).clamp(-20.0, 20.0)
    return (torch.exp(d) - d - 1.0).clamp(0.0, 10.0)


def kl_penalty(logp, logp_ref, kind):
    """compute_kl of the release: 'kl' (k1), 'abs', 'mse' (k2), 'low_var_kl' (k3)."""
    if kind == "kl":
        return logp - logp_ref
    if kind == "abs":
        return (logp - logp_ref).abs()
    if kind == "mse":
        return 0.5 * (logp - logp_ref) ** 2
    if kind == "low_var_kl":
        x = (logp_ref - logp).clamp(-20.0, 20.0)
        return (torch.exp(x) - x - 1.0).clamp(-10.0, 10.0)
    raise ValueError("kl kind %r" % (kind,))


def transcription_k(response_mask, top_p):
    """k_b as the release computes it: an int64 count times a Python float promotes to
    torch's default float dtype (float32), then ceil, then int."""
    n = response_mask.to(torch.int64).sum(dim=1)
    return torch.ceil(n * top_p).to(torch.int32)


def topk_token_mask(score, response_mask, top_p):
    """The release's per-response top-k by sorting (perception or entropy variant):
    invalid positions sort last as -inf, the first k_b ranks are kept, then ANDed with the
    response mask. Stable sort: ties go to the lower position (see the module notes).
    Returns (mask as bool [B, L], k [B], threshold = mean over k_b > 0 of the k_b-th value)."""
    valid = response_mask.bool()
    keyed = score.clone()
    keyed[~valid] = -math.inf
    k = transcription_k(response_mask, top_p)
    sorted_vals, order = torch.sort(keyed, dim=1, descending=True, stable=True)
    ranks = torch.arange(score.shape[1]).expand_as(score)
    keep_sorted = ranks < k.unsqueeze(1).to(torch.int64)
    keep = torch.zeros_like(valid)
    keep.scatter_(1, order, keep_sorted)
    keep = keep & valid
    kth = torch.gather(sorted_vals, 1, (k.clamp(min=1) - 1).to(torch.int64).unsqueeze(1)).squeeze(1)
    threshold = kth[k > 0].mean() if bool((k > 0).any()) else torch.tensor(0.0, dtype=score.dtype)
    return keep, k, threshold


def sensitivity_scores(dep, response_mask):
    """s_b = sum of the valid dependencies / max(n_b, 1)."""
    m = response_mask.to(dep.dtype)
    return (dep * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def score_range(dep, response_mask):
    """(min, max) of s_b over responses with n_b > 0, or (None, None) with fewer than two."""
    s = sensitivity_scores(dep, response_mask)
    has = response_mask.to(torch.int64).sum(dim=1) > 0
    vals = s[has]
    if vals.numel() <= 1:
        return None, None
    return torch.quantile(vals, 0.0), torch.quantile(vals, 1.0)


def tas_scaling(dep, response_mask, lo, hi, beta_min):
    """The mean-preserving ("dynamic beta_max") scale of each response of a micro-batch."""
    s = sensitivity_scores(dep, response_mask)
    scale = torch.ones_like(s)
    if lo is None or hi is None or not bool(hi - lo > 1e-6):
        return scale
    has = response_mask.to(torch.int64).sum(dim=1) > 0
    x = ((s[has] - lo) / (hi - lo)).clamp(0.0, 1.0)
    mu = x.mean()
    beta_max_dyn = beta_min + (1.0 - beta_min) / (mu + 1e-8)
    scale[has] = beta_min + x * (beta_max_dyn - beta_min)
    return scale


def policy_loss(logp_old, logp, adv, response_mask, clip_low, clip_high, clip_dual, loss_type,
                mode, token_mask=None, eps=MASKED_MEAN_EPS):
    """The release's compute_policy_loss: (pg_loss, metrics as 0-d tensors)."""
    delta = logp - logp_old
    if loss_type == "gspo_token":
        seq = masked_mean(delta, response_mask, dim=-1, eps=eps)
        rho = seq.detach().unsqueeze(-1) + logp - logp.detach()
    elif loss_type in ("default", "cispo"):
        rho = delta
    else:
        raise ValueError("loss type %r is not transcribed" % (loss_type,))
    ratio = torch.exp(rho.clamp(-20.0, 20.0))
    rhat = torch.exp(rho.clamp(math.log(1.0 - clip_low), math.log(1.0 + clip_high)))
    metrics = {"ppo_kl": masked_mean(-delta, response_mask, eps=eps),
               "entropy_loss": average_loss(-logp, response_mask, mode, eps=eps)}
    if loss_type == "cispo":
        per_token = -adv * logp * rhat.detach()
    else:
        l1, l2, l3 = -adv * ratio, -adv * rhat, -adv * clip_dual
        higher = torch.max(l1, l2)
        lower = torch.min(higher, l3)
        per_token = torch.where(adv < 0, lower, higher)
        metrics["clipfrac"] = masked_mean((l1 < l2).to(logp.dtype), response_mask, eps=eps)
        metrics["clipfrac_dual"] = masked_mean(((higher > l3) & (adv < 0)).to(logp.dtype), response_mask,
                                               eps=eps)
    if token_mask is not None:
        per_token = per_token * token_mask.detach().to(logp.dtype)
    return average_loss(per_token, response_mask, mode, eps=eps), metrics


# ---------------------------------------------------------------- update_policy


def update_policy(ranks, cfg, eps=MASKED_MEAN_EPS):
    """One mini-batch of the released update_policy on every simulated rank.

    ranks: a list (one per data-parallel rank) of dicts of [B_r, L] tensors: 'logp' (a leaf
    with requires_grad, the current policy's log-probabilities), 'logp_old', 'logp_aug',
    'adv' (per-token advantages, as the GRPO estimator leaves them: adv_seq[:, None] * mask),
    'mask' (int64 response mask), optionally 'logp_ref' and 'entropy'.
    cfg: dict with micro (responses per micro-batch), top_p (perception), top_p_entropy
    (None: no entropy variant), use_tgf, use_tas, beta_min, clip_low, clip_high, clip_dual,
    loss_type, mode, kl (None or a kind), kl_coef, entropy_coef (None: no penalty).

    Returns, per rank, a dict of what the release computes: dep, select (bool), scale [B_r],
    adv_shaped, the (lo, hi) TAS range, k, and per micro-batch the scaled losses; the
    gradients are left in each rank's logp.grad (summed over its micro-batches). The DDP
    average over ranks is the caller's: it divides every rank's gradient by world_size."""
    world = len(ranks)
    total = sum(int(r["mask"].sum()) for r in ranks)           # all-reduce SUM of token counts
    results = []
    for r in ranks:
        mask, n_seq = r["mask"], r["mask"].shape[0]
        lo = hi = None
        if cfg["use_tas"]:
            with torch.no_grad():
                lo, hi = score_range(low_var_kl_dependency(r["logp_old"], r["logp_aug"]), mask)
        out = {"range": (lo, hi), "micro": [], "dep": [], "select": [], "scale": [], "adv_shaped": [], "k": []}
        for start in range(0, n_seq, cfg["micro"]):
            sl = slice(start, min(start + cfg["micro"], n_seq))
            mb_mask, logp, logp_old = mask[sl], r["logp"][sl], r["logp_old"][sl]
            adv = r["adv"][sl]
            token_mask = None
            if cfg.get("top_p_entropy") is not None:
                token_mask, _, _ = topk_token_mask(r["entropy"][sl], mb_mask, cfg["top_p_entropy"])
            dep = low_var_kl_dependency(logp_old, r["logp_aug"][sl])
            if cfg["use_tgf"]:
                keep, k, _ = topk_token_mask(dep, mb_mask, cfg["top_p"])
                token_mask = keep if token_mask is None else (token_mask | keep)
            else:
                k = transcription_k(mb_mask, 1.0)
            scale = torch.ones(mb_mask.shape[0], dtype=logp.dtype)
            if cfg["use_tas"]:
                with torch.no_grad():
                    scale = tas_scaling(dep, mb_mask, lo, hi, cfg["beta_min"])
                adv = adv * scale.unsqueeze(1)
            pg, metrics = policy_loss(logp_old, logp, adv, mb_mask, cfg["clip_low"], cfg["clip_high"],
                                      cfg["clip_dual"], cfg["loss_type"], cfg["mode"], token_mask, eps=eps)
            loss = pg
            kl = None
            if cfg.get("kl") is not None:
                kl = average_loss(kl_penalty(logp, r["logp_ref"][sl], cfg["kl"]), mb_mask, cfg["mode"], eps=eps)
                loss = loss + kl * cfg["kl_coef"]
            ent = None
            if cfg.get("entropy_coef") is not None:
                ent = -masked_mean(logp, mb_mask, eps=eps)
                loss = loss + ent * cfg["entropy_coef"]
            n_micro = int(mb_mask.sum())
            factor = n_micro * world / total
            (loss * factor).backward()
            val = lambda x: None if x is None else float(x.detach())  # noqa: E731
            out["micro"].append({"rows": sl, "n": n_micro, "factor": factor, "loss": val(loss), "pg": val(pg),
                                 "kl": val(kl), "ent": val(ent),
                                 "metrics": {k_: val(v) for k_, v in metrics.items()}})
            out["dep"].append(dep.detach())
            out["select"].append(token_mask if token_mask is not None else mb_mask.bool())
            out["scale"].append(scale.detach())
            out["adv_shaped"].append((adv * mb_mask.to(adv.dtype)).detach())
            out["k"].append(k)
        for key in ("dep", "select", "adv_shaped"):
            out[key] = torch.cat(out[key], dim=0)
        out["scale"] = torch.cat(out["scale"])
        out["k"] = torch.cat(out["k"])
        out["total"] = total
        results.append(out)
    return results
