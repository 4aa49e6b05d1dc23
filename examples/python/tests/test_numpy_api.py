"""The numpy API of the vppo package: conversions, errors, rollout correction."""
import numpy as np
import pytest

import vppo
from conftest import padded


def test_installed_library_loads_and_layouts_match():
    assert vppo.status_string(0) == "ok"
    assert vppo.config_default().use_tas == 1


def test_bad_input_raises_with_the_library_status_text():
    B, L = 2, 4
    logp = np.full((B, L), -1.0, np.float32)
    logp[0, 1] = np.nan
    with pytest.raises(vppo.VppoError) as e:
        vppo.step(vppo.config_default(), vppo.offsets_uniform(B, L), None, logp, logp, logp, np.zeros(B, np.float32))
    assert e.value.status == -5 and "NaN, or an infinity where none is allowed" in str(e.value)
    cfg = vppo.config_default()
    cfg.loss.clip_low = 2.0
    good = np.full((B, L), -1.0, np.float32)
    with pytest.raises(vppo.VppoError, match="parameter outside its domain"):
        vppo.step(cfg, vppo.offsets_uniform(B, L), None, good, good, good, np.zeros(B, np.float32))


def test_conversions_are_exact_or_refused():
    B, L = 2, 3
    x = np.full((B, L), -0.5)                       # float64, exactly a float32
    dep = vppo.dependency_sampled(vppo.offsets_uniform(B, L), None, x, x - 0.25)
    assert dep.dtype == np.float32 and dep.shape == (B, L)
    with pytest.raises(ValueError, match="not exactly float32"):
        vppo.dependency_sampled(vppo.offsets_uniform(B, L), None, x + 1e-12, x)
    with pytest.raises(TypeError, match="integers"):
        vppo.dependency_sampled(np.array([0.0, 3.0]), None, x, x)
    with pytest.raises(ValueError, match="int32"):
        vppo.logprobs(np.zeros((1, 4), np.float32), np.array([2 ** 40]))
    with pytest.raises(vppo.VppoError, match=r"token id outside \[0, vocab\)"):
        vppo.logprobs(np.zeros((1, 4), np.float32), np.array([7], np.int64))
    # float16 widens exactly; a bool mask is 0/1
    dep16 = vppo.dependency_sampled(vppo.offsets_uniform(B, L), np.ones((B, L), bool), x.astype(np.float16),
                                    (x - 0.25).astype(np.float16))
    assert np.array_equal(dep16, dep)


def ref_rollout_token_tis(logp, logp_rollout, mask, upper):
    l = logp.astype(np.float64) - logp_rollout
    return np.where(mask != 0, np.minimum(np.exp(np.clip(l, -20, 20)), upper), 0.0)


def test_rollout_correction_token_tis_against_numpy(rng):
    B, L = 5, 9
    mask = padded(rng, B, L)
    lr = -rng.uniform(0.01, 4, (B, L)).astype(np.float32)
    lp = (lr + rng.normal(0, 0.6, (B, L))).astype(np.float32)
    cfg = vppo.rc_config_default()
    w, keep, m = vppo.rollout_correction(cfg, vppo.offsets_uniform(B, L), mask, lp, lr)
    ref = ref_rollout_token_tis(lp, lr, mask, 2.0)
    np.testing.assert_allclose(w, ref, rtol=1e-6, atol=1e-6)
    assert np.array_equal(keep, mask)
    assert m["n_valid"] == mask.sum()
    assert abs(m["is_mean"] - ref[mask != 0].mean()) < 1e-6
    assert 0.0 < m["is_frac_high"] < 1.0


def test_rollout_correction_rejects_bad_config():
    cfg = vppo.rc_config_default()
    cfg.is_upper = -1.0
    x = np.zeros((1, 2), np.float32)
    with pytest.raises(vppo.VppoError, match="parameter outside its domain"):
        vppo.rollout_correction(cfg, vppo.offsets_uniform(1, 2), None, x, x)
