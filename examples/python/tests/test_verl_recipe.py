"""The verl recipe (docs/verl_recipe.md), tested against verl itself: vppo prepares the
batch (dependency from the perturbed forward pass, TAS-shaped advantages, the TGF
selection, rollout-correction weights and masks), verl's own compute_policy_loss_vanilla
and agg_loss compute the loss, and loss and gradient equal vppo.torch.step's. The same for
the TRL/Liger GRPO formulation (Liger's ppo_loss_fn mirrors TRL's GRPOTrainer loss).
Skips without torch, verl or liger-kernel."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import vppo  # noqa: E402
import vppo.torch as vt  # noqa: E402
from conftest import padded  # noqa: E402


def _verl():
    pytest.importorskip("verl")
    try:
        from verl.trainer.ppo import core_algos, rollout_corr_helper
        from verl.workers.config import FSDPActorConfig
    except ImportError as e:   # verl installed without the few modules its imports need
        pytest.skip("verl is not importable: %s" % e)
    return core_algos, rollout_corr_helper, FSDPActorConfig


AGG = {vppo.AGG_TOKEN_MEAN: "token-mean", vppo.AGG_SEQ_MEAN_TOKEN_MEAN: "seq-mean-token-mean"}


def close(ref, got, tol=1e-6):
    ref, got = torch.as_tensor(ref).double(), torch.as_tensor(got).detach().double()
    bound = tol * (1 + ref.abs())
    assert bool(((got - ref).abs() <= bound).all()), "max |got - ref| %.3g" % float((got - ref).abs().max())


def batch(rng, B=8, L=24):
    mask = torch.from_numpy(padded(rng, B, L, min_len=4))
    old = torch.from_numpy(-np.exp(rng.normal(-1.0, 1.2, (B, L))).astype(np.float32))
    # the policy has moved a little since the rollout; some tokens beyond the clip range
    logp = (old + torch.from_numpy(rng.normal(0, 0.15, (B, L)))).float()
    # the perturbed forward pass: log-probs of the same tokens with the image perturbed
    aug = (old - torch.from_numpy(np.abs(rng.normal(0, 0.8, (B, L))))).float()
    # the inference engine's log-probs (vLLM, bf16): the trainer's, off by a little
    rollout = (old + torch.from_numpy(rng.normal(0, 0.45, (B, L)))).float()
    rewards = (rng.random(B) < 0.5).astype(np.float32)
    adv_seq = torch.from_numpy(vppo.group_advantages(rewards, vppo.offsets_uniform(B // 4, 4)))
    return mask, old, logp, aug, rollout, adv_seq


def verl_config(FSDPActorConfig, cfg):
    c = FSDPActorConfig(strategy="fsdp", clip_ratio=cfg.clip_low, clip_ratio_low=cfg.clip_low,
                        clip_ratio_high=cfg.clip_high, clip_ratio_c=cfg.clip_dual, rollout_n=1,
                        ppo_micro_batch_size_per_gpu=1)
    c.global_batch_info.update({"dp_size": 1, "batch_num_tokens": None, "global_batch_size": None,
                                "loss_scale_factor": None})
    return c


def verl_loss(ca, vc, cfg, old, logp, mask, prepared, weight=None):
    """The recipe's actor loss: verl's vanilla PPO loss on VPPO's shaped advantages, with the
    TGF selection (times any rollout weights) as verl's rollout_is_weights, plus the
    released code's entropy penalty entropy_coef * agg(-logp). Returns (loss, dloss/dlogp)."""
    lp = logp.double().requires_grad_(True)
    m = mask.double()
    w = prepared["select"].double()
    if weight is not None:
        w = w * weight.double()
    pg, _ = ca.compute_policy_loss_vanilla(old.double(), lp, prepared["adv"].double(), m,
                                           loss_agg_mode=AGG[cfg.agg], config=vc, rollout_is_weights=w)
    total = pg + cfg.entropy_coef * ca.agg_loss(-lp, m, AGG[cfg.agg], **vc.global_batch_info)
    total.backward()
    return total.detach(), lp.grad


def check_verl_equals_step(FSDPActorConfig, ca, cfg, old, logp, aug, adv_seq, mask, weight=None, weight_verl=None):
    """The recipe on one batch: vppo prepares, verl's loss on it equals vppo.torch.step
    (loss, and the gradient at every valid token). Returns the prepared dict."""
    p = vt.prepare(old, aug, adv_seq, mask=mask, cfg=cfg)
    ref, dref = verl_loss(ca, verl_config(FSDPActorConfig, cfg.loss), cfg.loss, old, logp, mask, p,
                          weight=weight_verl)
    x = logp.clone().requires_grad_(True)
    loss, info = vt.step(x, old, aug, adv_seq, mask=mask, cfg=cfg, weight=weight)
    loss.backward()
    close(ref, info["loss"])
    close(dref * mask, x.grad)
    assert torch.equal(info["prepared"]["select"], p["select"])
    return p


@pytest.mark.parametrize("agg", [vppo.AGG_TOKEN_MEAN, vppo.AGG_SEQ_MEAN_TOKEN_MEAN])
def test_verl_vanilla_loss_on_vppo_inputs_equals_vppo_step(rng, agg):
    ca, _, FSDPActorConfig = _verl()
    mask, old, logp, aug, _, adv_seq = batch(rng)
    cfg = vppo.config_default()
    cfg.loss.agg = agg
    p = check_verl_equals_step(FSDPActorConfig, ca, cfg, old, logp, aug, adv_seq, mask)
    assert 0 < int(p["select"].sum()) < int(mask.sum())


@pytest.mark.parametrize("level", ["token", "sequence"])
def test_verl_loss_with_tis_weights_equals_vppo_step(rng, level):
    ca, rc, FSDPActorConfig = _verl()
    mask, old, logp, aug, rollout, adv_seq = batch(rng)
    cfg = vppo.config_default()
    rcc = vppo.rc_config_default()
    rcc.is_level = vppo.RC_TOKEN if level == "token" else vppo.RC_SEQ_SUM
    rcc.is_upper = 2.0 if level == "token" else 3.0
    w, keep, m = vt.rollout_correction(old, rollout, mask=mask, cfg=rcc)
    wv, mv = rc.compute_rollout_correction_weights(log_ratio=old.double() - rollout.double(),
                                                   response_mask=mask.double(), rollout_is=level,
                                                   rollout_is_threshold=rcc.is_upper)
    close(wv, w)
    assert 0 < m["is_frac_high"] < 1
    close(mv["rollout_is_mean"], m["is_mean"])
    close(mv["rollout_is_eff_sample_size"], m["is_ess"], 1e-5)
    check_verl_equals_step(FSDPActorConfig, ca, cfg, old, logp, aug, adv_seq, mask, weight=w, weight_verl=wv)


def test_verl_rejection_mask_then_loss_equals_vppo_step(rng):
    """Rejection (verl's rollout_rs seq_mean_k3) changes the response mask; the recipe uses
    vppo's keep as the mask of every later stage, as verl does with its modified mask."""
    ca, rc, FSDPActorConfig = _verl()
    mask, old, logp, aug, rollout, adv_seq = batch(rng)
    rcc = vppo.rc_config_default()
    rcc.is_mode, rcc.rs_kind, rcc.rs_level, rcc.rs_upper = vppo.RC_IS_NONE, vppo.RC_RS_K3, vppo.RC_SEQ_MEAN, 0.04
    _, keep, m = vt.rollout_correction(old, rollout, mask=mask, cfg=rcc)
    mask_v, mv = rc.compute_rollout_rejection_mask(old.double() - rollout.double(), mask.double(),
                                                   rollout_rs="seq_mean_k3", rollout_rs_threshold=0.04)
    assert torch.equal(mask_v.to(torch.uint8), keep)
    assert 0 < m["rs_frac_seq"] < 1
    close(mv["rollout_rs_masked_fraction"], m["rs_frac_token"])
    check_verl_equals_step(FSDPActorConfig, ca, vppo.config_default(), old, logp, aug, adv_seq, keep)


LIGER = {"grpo": vppo.AGG_SEQ_MEAN_TOKEN_MEAN, "bnpo": vppo.AGG_TOKEN_MEAN, "dapo": vppo.AGG_TOKEN_MEAN,
         "dr_grpo": vppo.AGG_SEQ_MEAN_TOKEN_SUM_NORM}


@pytest.mark.parametrize("loss_type", sorted(LIGER))
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_trl_liger_grpo_loss_on_vppo_inputs_equals_vppo_step(rng, loss_type, beta):
    """TRL's GRPO loss as Liger computes it (no dual clip, KL k3 inside the per-token loss,
    vLLM IS ratio on the policy term) on VPPO-prepared inputs: advantages scale_b * A_b per
    response, TGF selection times TIS weights as vllm_is_ratio."""
    pytest.importorskip("liger_kernel")
    from liger_kernel.chunked_loss.grpo_loss import LigerFusedLinearGRPOFunction
    mask, old, logp, aug, rollout, adv_seq = batch(rng)
    B, L = mask.shape
    ref_lp = (old + torch.from_numpy(rng.normal(0, 0.2, (B, L)))).float()
    cfg = vppo.config_default()
    cfg.loss.clip_dual, cfg.loss.entropy_coef = 0.0, 0.0
    cfg.loss.clip_low, cfg.loss.clip_high = 0.2, 0.28
    cfg.loss.agg, cfg.loss.agg_norm = LIGER[loss_type], float(L)
    if beta:
        cfg.loss.kl_kind, cfg.loss.kl_coef = vppo.KL_K3, beta
    w, _, _ = vt.rollout_correction(old, rollout, mask=mask)
    p = vt.prepare(old, aug, adv_seq, mask=mask, cfg=cfg)
    lp = logp.double().requires_grad_(True)
    ref, _ = LigerFusedLinearGRPOFunction.ppo_loss_fn(
        lp, mask.double(), (p["scale"] * adv_seq).double(), mask.double(),
        ref_per_token_logps=ref_lp.double(), old_per_token_logps=old.double(),
        epsilon_low=float(np.float32(0.2)), epsilon_high=float(np.float32(0.28)), beta=float(np.float32(beta)),
        loss_type=loss_type, max_completion_length=L, vllm_is_ratio=p["select"].double() * w.double())
    ref.backward()
    x = logp.clone().requires_grad_(True)
    loss, info = vt.step(x, old, aug, adv_seq, mask=mask, cfg=cfg, logp_ref=ref_lp if beta else None, weight=w)
    loss.backward()
    close(ref.detach(), info["loss"])
    close(lp.grad * mask, x.grad)
