"""vppo.torch: forward values and gradients against torch autograd of plain torch
implementations of the same formulas (float64), on CPU tensors."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import vppo  # noqa: E402
import vppo.torch as vt  # noqa: E402
from conftest import padded  # noqa: E402


def close(ref, got, tol=1e-6):
    ref = ref.detach().double()
    got = got.detach().double()
    err = (got - ref).abs() - tol * (1 + ref.abs())
    assert float(err.max()) <= 0, "max |got - ref| %.3g" % float((got - ref).abs().max())


def torch_policy_loss(logp, logp_old, adv, mask, cfg, select=None, weight=None, logp_ref=None):
    """SPEC §7, TOKEN ratio, PG_CLIP (with dual clip), K3 KL, entropy term -logp; agg TOKEN_MEAN
    or SEQ_MEAN_TOKEN_MEAN; written for clarity, autograd does the gradient."""
    m = mask.double()
    rho = logp - logp_old
    r = torch.exp(rho.clamp(-20, 20))
    rhat = torch.exp(rho.clamp(np.log1p(-cfg.clip_low), np.log1p(cfg.clip_high)))
    L1, L2 = -adv * r, -adv * rhat
    H = torch.maximum(L1, L2)
    ell = torch.where((adv < 0) & (cfg.clip_dual > 0), torch.minimum(H, -adv * cfg.clip_dual), H)
    w = torch.ones_like(m)
    if select is not None:
        w = w * select.double()
    if weight is not None:
        w = w * weight.double()

    def agg(x):
        if cfg.agg == vppo.AGG_TOKEN_MEAN:
            return (x * m).sum() / m.sum()
        n = m.sum(-1)
        return ((x * m).sum(-1) / n.clamp(min=1)).sum() / m.shape[0]
    loss = agg(w * ell) + cfg.entropy_coef * agg(-logp)
    if cfg.kl_kind == vppo.KL_K3:
        x = (logp_ref - logp).clamp(-20, 20)
        loss = loss + cfg.kl_coef * agg((torch.exp(x) - x - 1).clamp(-10, 10))
    return loss


def batch(rng, B=6, L=13, V=17):
    mask = torch.from_numpy(padded(rng, B, L))
    logits = torch.from_numpy(rng.normal(0, 2, (B * L, V)).astype(np.float32))
    ids = torch.from_numpy(rng.integers(0, V, B * L))
    logp0 = torch.log_softmax(logits.double(), -1).gather(1, ids[:, None])[:, 0].reshape(B, L)
    old = (logp0 + torch.from_numpy(rng.normal(0, 0.3, (B, L)))).float()
    aug = (old - torch.from_numpy(rng.uniform(0, 1.5, (B, L)))).float()
    ref = (logp0 + torch.from_numpy(rng.normal(0, 0.3, (B, L)))).float()
    adv_seq = torch.from_numpy(rng.normal(0, 1, B).astype(np.float32))
    return mask, logits, ids, old, aug, ref, adv_seq


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_and_entropy_gradient_match_torch(rng, dtype, temperature):
    _, logits, ids, *_ = batch(rng)
    x = logits.to(dtype)
    a = x.clone().requires_grad_(True)
    logp, ent = vt.logprobs(a, ids, temperature=temperature)
    b = x.double().requires_grad_(True)
    ls = torch.log_softmax(b / np.float32(temperature), -1)
    logp_ref = ls.gather(1, ids[:, None])[:, 0]
    ent_ref = -(ls.exp() * ls).sum(-1)
    close(logp_ref, logp, 1e-5)
    close(ent_ref, ent, 1e-5)
    g1, g2 = torch.from_numpy(rng.normal(0, 1, ids.numel())), torch.from_numpy(rng.normal(0, 1, ids.numel()))
    (logp.double() * g1 + ent.double() * g2).sum().backward()
    (logp_ref * g1 + ent_ref * g2).sum().backward()
    assert a.grad.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-2     # a bf16/f16 gradient is rounded to 8/11 bits
    close(b.grad, a.grad, tol)


def test_logprobs_in_place_backward_equals_the_out_of_place_one(rng):
    _, logits, ids, *_ = batch(rng)
    w = torch.from_numpy(rng.normal(0, 1, (logits.shape[1], 8)).astype(np.float32))
    h = torch.from_numpy(rng.normal(0, 1, (logits.shape[0], 8)).astype(np.float32)).requires_grad_(True)
    grads = []
    for inplace in (False, True):
        h.grad = None
        z = h @ w.T                                      # a non-leaf logits tensor, like an lm_head output
        logp, ent = vt.logprobs(z, ids, inplace_backward=inplace)
        (logp.sum() + 0.5 * ent.sum()).backward()
        grads.append(h.grad.clone())
    assert torch.equal(grads[0], grads[1])
    with pytest.raises(ValueError, match="in-place"):
        vt.logprobs(logits.bfloat16().requires_grad_(True), ids, inplace_backward=True)


@pytest.mark.parametrize("agg", [vppo.AGG_TOKEN_MEAN, vppo.AGG_SEQ_MEAN_TOKEN_MEAN])
@pytest.mark.parametrize("kl", [False, True])
def test_policy_loss_value_and_gradient_match_torch(rng, agg, kl):
    mask, logits, ids, old, aug, ref, adv_seq = batch(rng)
    B, L = mask.shape
    logp0 = torch.log_softmax(logits.double(), -1).gather(1, ids[:, None])[:, 0].reshape(B, L).float()
    adv = (adv_seq[:, None] * torch.from_numpy(rng.uniform(0.8, 1.2, (B, L)))).float()
    select = torch.from_numpy(rng.random((B, L)) < 0.5)
    weight = torch.from_numpy(rng.uniform(0.2, 1.5, (B, L)).astype(np.float32))
    cfg = vppo.config_default().loss
    cfg.agg = agg
    if kl:
        cfg.kl_kind, cfg.kl_coef = vppo.KL_K3, 0.1
    a = logp0.clone().requires_grad_(True)
    loss, info = vt.policy_loss(a, old, adv, mask=mask, cfg=cfg, select=select, weight=weight,
                                logp_ref=ref if kl else None)
    loss.backward()
    b = logp0.double().requires_grad_(True)
    lr = torch_policy_loss(b, old.double(), adv.double(), mask, cfg, select, weight.double(),
                           ref.double() if kl else None)
    lr.backward()
    close(lr, torch.tensor(info["loss"], dtype=torch.float64))
    close(lr, loss)
    close(b.grad * mask, a.grad)
    assert info["n_valid"] == int(mask.sum())


def test_full_step_from_logits_matches_torch_autograd(rng):
    """logits -> vt.logprobs -> vt.step -> backward, against log_softmax -> the plain torch
    loss on the prepared advantages and TGF selection -> backward."""
    mask, logits, ids, old, aug, _, adv_seq = batch(rng)
    B, L = mask.shape
    cfg = vppo.config_default()
    a = logits.clone().requires_grad_(True)
    logp, _ = vt.logprobs(a, ids)
    loss, info = vt.step(logp.reshape(B, L), old, aug, adv_seq, mask=mask, cfg=cfg)
    loss.backward()
    p = info["prepared"]
    assert p["select"].shape == (B, L) and 0 < int(p["select"].sum()) < int(mask.sum())
    b = logits.double().requires_grad_(True)
    logp_ref = torch.log_softmax(b, -1).gather(1, ids[:, None])[:, 0].reshape(B, L)
    lr = torch_policy_loss(logp_ref, old.double(), p["adv"].double(), mask, cfg.loss, p["select"])
    lr.backward()
    close(lr, loss)
    close(b.grad, a.grad, 1e-5)
    # step == prepare + policy_loss on the same batch
    p2 = vt.prepare(old, aug, adv_seq, mask=mask, cfg=cfg)
    assert torch.equal(p2["select"], p["select"]) and torch.equal(p2["adv"], p["adv"])
    loss2, _ = vt.policy_loss(logp.detach().reshape(B, L), old, p2["adv"], mask=mask, cfg=cfg.loss,
                              select=p2["select"])
    assert float(loss2.detach()) == float(loss.detach())


def test_packed_batches_with_offsets(rng):
    lengths = [3, 5, 2]
    offsets = vppo.offsets_from_lengths(lengths)
    n = int(offsets[-1])
    old = torch.from_numpy(-rng.uniform(0.1, 3, n).astype(np.float32))
    logp = (old + 0.05).requires_grad_(True)
    loss, info = vt.step(logp, old, old - 0.5, torch.tensor([1.0, -1.0, 0.5]), offsets=offsets)
    loss.backward()
    assert info["n_valid"] == n and logp.grad.shape == (n,)
    with pytest.raises(ValueError, match="give offsets"):
        vt.step(logp, old, old, torch.zeros(3))


def test_torch_errors_are_python_exceptions(rng):
    mask, logits, ids, old, aug, _, adv_seq = batch(rng)
    B, L = mask.shape
    bad = old.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(vppo.VppoError, match="NaN"):
        vt.step(bad, old, aug, adv_seq, mask=mask)
    with pytest.raises(ValueError, match="not exactly float32"):
        vt.step(old.double() + 1e-10, old, aug, adv_seq, mask=mask)
    with pytest.raises(ValueError, match="need"):
        vt.step(old, old, aug, adv_seq[:2], mask=mask)
    with pytest.raises(TypeError, match="ids must be integers"):
        vt.logprobs(logits, ids.float())
    # float64 that is exactly float32 is accepted and gives the float32 result
    l1, i1 = vt.step(old.double(), old, aug, adv_seq, mask=mask)
    l2, i2 = vt.step(old, old, aug, adv_seq, mask=mask)
    assert l1.dtype == torch.float64 and l2.dtype == torch.float32 and i1["loss"] == i2["loss"]


def test_rollout_correction_weight_feeds_the_loss(rng):
    mask, logits, ids, old, aug, _, adv_seq = batch(rng)
    rollout = (old + torch.from_numpy(rng.normal(0, 0.4, old.shape)).float())
    w, keep, m = vt.rollout_correction(old, rollout, mask=mask)
    assert w.dtype == torch.float32 and keep.dtype == torch.uint8 and m["n_valid"] == int(mask.sum())
    assert float(w.max()) == 2.0
    logp = old.clone().requires_grad_(True)
    adv = (adv_seq[:, None] * mask).float()
    loss, _ = vt.policy_loss(logp, old, adv, mask=keep, weight=w)
    loss.backward()
    b = old.double().requires_grad_(True)
    lr = torch_policy_loss(b, old.double(), adv.double(), keep, vppo.config_default().loss, weight=w.double())
    lr.backward()
    close(lr, loss)
    close(b.grad * keep, logp.grad)
