"""vppo.torch on CUDA tensors (through vppo_cuda, on the current stream) against the CPU
path on the same inputs. Skips without a CUDA build of the package or without a GPU."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import vppo  # noqa: E402
import vppo.torch as vt  # noqa: E402
from conftest import padded  # noqa: E402


def test_cuda_library_binds_every_function_when_built():
    if vppo.cuda_lib is None:
        pytest.skip("CUDA library: %s" % vppo.cuda_error)
    for name in vppo._CUDA_FUNCS:
        assert getattr(vppo.cuda_lib, name.replace("vppo_", "vppo_cuda_", 1)).argtypes[-1] is not None


needs_gpu = pytest.mark.skipif(vppo.cuda_lib is None or not torch.cuda.is_available(),
                               reason="needs the CUDA build of vppo and a GPU")


def close(ref, got, tol):
    ref, got = torch.as_tensor(ref).double().cpu(), torch.as_tensor(got).detach().double().cpu()
    assert bool(((got - ref).abs() <= tol * (1 + ref.abs())).all()), float((got - ref).abs().max())


@needs_gpu
def test_cuda_step_and_logprobs_match_the_cpu(rng):
    B, L, V = 6, 40, 300
    mask = torch.from_numpy(padded(rng, B, L))
    logits = torch.from_numpy(rng.normal(0, 2, (B * L, V)).astype(np.float32))
    ids = torch.from_numpy(rng.integers(0, V, B * L))
    old = torch.from_numpy(-rng.uniform(0.05, 3, (B, L)).astype(np.float32))
    aug = (old - torch.from_numpy(rng.uniform(0, 1, (B, L)).astype(np.float32)))
    adv = torch.from_numpy(rng.normal(0, 1, B).astype(np.float32))
    grads, infos = [], []
    for dev in ("cpu", "cuda"):
        x = logits.to(dev).requires_grad_(True)
        logp, _ = vt.logprobs(x, ids.to(dev))
        loss, info = vt.step(logp.view(B, L), old.to(dev), aug.to(dev), adv.to(dev), mask=mask.to(dev))
        loss.backward()
        grads.append(x.grad)
        infos.append(info)
    close(infos[0]["loss"], infos[1]["loss"], 2e-6)
    assert torch.equal(infos[0]["prepared"]["select"], infos[1]["prepared"]["select"].cpu())
    close(grads[0], grads[1], 2e-5)


@needs_gpu
def test_cuda_rollout_correction_matches_the_cpu(rng):
    B, L = 8, 50
    mask = torch.from_numpy(padded(rng, B, L))
    old = torch.from_numpy(-rng.uniform(0.05, 3, (B, L)).astype(np.float32))
    rollout = old + torch.from_numpy(rng.normal(0, 0.4, (B, L)).astype(np.float32))
    cfg = vppo.rc_config_default()
    cfg.is_level, cfg.rs_kind, cfg.rs_level, cfg.rs_upper = vppo.RC_SEQ_MEAN, vppo.RC_RS_K3, vppo.RC_SEQ_MAX, 0.3
    w0, k0, m0 = vt.rollout_correction(old, rollout, mask=mask, cfg=cfg)
    w1, k1, m1 = vt.rollout_correction(old.cuda(), rollout.cuda(), mask=mask.cuda(), cfg=cfg)
    assert torch.equal(k0, k1.cpu())
    close(w0, w1, 2e-6)
    for key in m0:
        close(m0[key], m1[key], 2e-6)
