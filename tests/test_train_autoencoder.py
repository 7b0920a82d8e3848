"""fit_autoencoder and reconstruction_losses (chapter 2): learning, reproducibility, agreement.

(The GAN loop of ``began_lite.train`` is tested in ``test_train.py``.)
"""
from __future__ import annotations

import pytest
import torch

from began_lite.config import TrainConfig
from began_lite.data import load_digits
from began_lite.losses import reconstruction_loss
from began_lite.models import Discriminator
from began_lite.autoencoder import fit_autoencoder, reconstruction_losses

CFG = TrainConfig(image_size=8, channels=1, filters=8, h_dim=8, z_dim=8)


@pytest.fixture(scope="module")
def digits():
    return load_digits(8)[:200]


def fresh_model(seed: int = 0) -> Discriminator:
    torch.manual_seed(seed)
    return Discriminator(CFG)


def test_fit_autoencoder_loss_decreases(digits):
    history = fit_autoencoder(fresh_model(), digits, steps=60, batch_size=32, lr=1e-3, device="cpu")
    assert len(history) == 60 and all(isinstance(v, float) for v in history)
    first, last = sum(history[:10]) / 10, sum(history[-10:]) / 10
    assert last < 0.7 * first


def test_fit_autoencoder_same_seed_same_history(digits):
    a = fit_autoencoder(fresh_model(), digits, steps=15, batch_size=16, seed=3, device="cpu")
    b = fit_autoencoder(fresh_model(), digits, steps=15, batch_size=16, seed=3, device="cpu")
    c = fit_autoencoder(fresh_model(), digits, steps=15, batch_size=16, seed=4, device="cpu")
    assert a == b
    assert a != c


def test_fit_autoencoder_zero_steps_leaves_model_unchanged(digits):
    model = fresh_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert fit_autoencoder(model, digits, steps=0, device="cpu") == []
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training  # left in evaluation mode


@pytest.mark.parametrize("kwargs, pattern", [
    pytest.param(dict(steps=-1), r"^steps must", id="steps-negative"),
    pytest.param(dict(steps=1.5), r"^steps must", id="steps-float"),
    pytest.param(dict(steps=True), r"^steps must", id="steps-bool"),
    pytest.param(dict(steps=1, batch_size=0), r"^batch_size must", id="batch-0"),
    pytest.param(dict(steps=1, batch_size=8.0), r"^batch_size must", id="batch-float"),
    pytest.param(dict(steps=1, lr=0.0), r"^lr must", id="lr-0"),
    pytest.param(dict(steps=1, lr=-1e-3), r"^lr must", id="lr-negative"),
    pytest.param(dict(steps=1, lr="1e-3"), r"^lr must", id="lr-str"),
])
def test_fit_autoencoder_bad_arguments(digits, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        fit_autoencoder(fresh_model(), digits, device="cpu", **kwargs)


@pytest.mark.parametrize("data", [torch.zeros(5, 8, 8), torch.zeros(0, 1, 8, 8),
                                  torch.zeros(5, 1, 8, 8, dtype=torch.long)], ids=["3d", "empty", "integer"])
def test_fit_autoencoder_bad_data(data):
    with pytest.raises(ValueError, match=r"^data must be"):
        fit_autoencoder(fresh_model(), data, steps=1, device="cpu")


@pytest.mark.parametrize("eta", [1, 2])
def test_reconstruction_losses_equal_direct_computation(digits, eta):
    model = fresh_model()
    model.train()
    x = digits[:50]
    out = reconstruction_losses(model, x, eta=eta, batch_size=16)  # chunks of 16, 16, 16, 2
    assert out.shape == (50,)
    with torch.no_grad():
        expected = reconstruction_loss(x, model(x), eta=eta)
    torch.testing.assert_close(out, expected)
    assert not out.requires_grad
    assert model.training  # mode restored


def test_reconstruction_losses_bad_input():
    with pytest.raises(ValueError, match=r"^x must be"):
        reconstruction_losses(fresh_model(), torch.zeros(3, 64))
