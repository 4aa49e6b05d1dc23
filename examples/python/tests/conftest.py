"""pytest configuration: the vppo package under test is the installed one (make python-test
installs it into a fresh virtual environment); tests needing torch, verl or Liger skip
cleanly without them."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1807)


def padded(rng, B, L, min_len=1):
    """A response mask [B, L]: each row a random length >= min_len, a few holes."""
    lengths = rng.integers(min_len, L + 1, B)
    mask = (np.arange(L)[None, :] < lengths[:, None]).astype(np.uint8)
    mask[rng.random((B, L)) < 0.05] = 0
    mask[:, 0] = 1
    return mask
