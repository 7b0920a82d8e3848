"""Latent inversion and interpolation (paper section 4.3, chapter 7)."""
from __future__ import annotations

import pytest
import torch

from began_lite.config import TrainConfig
from began_lite.latent import interpolate, invert
from began_lite.models import Generator, sample_z


@pytest.fixture(scope="module")
def tiny_generator():
    torch.manual_seed(0)
    return Generator(TrainConfig(image_size=8, channels=1, filters=8, repeat=1, z_dim=4, h_dim=4))


def test_invert_recovers_an_image_the_generator_can_make(tiny_generator):
    G = tiny_generator
    z_true = sample_z(3, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = G(z_true)
        random_error = (G(sample_z(3, 4, generator=torch.Generator().manual_seed(2))) - x).abs().flatten(1).mean(1)
    before = [p.clone() for p in G.parameters()]
    z, err = invert(G, x, steps=300, lr=0.05, restarts=3)
    assert z.shape == (3, 4) and err.shape == (3,)
    assert z.abs().max() <= 1.0  # stays in the prior's support
    with torch.no_grad():  # the reported error is the L1 error of the returned z, recomputed
        assert torch.allclose(err, (G(z) - x).abs().flatten(1).mean(1), atol=1e-6)
    assert (err < 0.1 * random_error).all()
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))  # G untouched
    assert all(p.requires_grad for p in G.parameters()) and G.training


def test_interpolate_is_the_straight_line():
    z0, z1 = torch.tensor([-1.0, 0.0, 0.5]), torch.tensor([1.0, 1.0, -0.5])
    path = interpolate(z0, z1, 5)
    assert path.shape == (5, 3)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    assert torch.allclose(path[2], (z0 + z1) / 2)
    assert torch.allclose(path[2:] - 2 * path[1:-1] + path[:-2], torch.zeros(3, 3), atol=1e-7)  # constant steps


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=0), "steps must be an integer >= 1"),
    (dict(restarts=0), "restarts must be an integer >= 1"),
    (dict(lr=-1.0), "lr must be a positive finite number"),
    (dict(lr=float("nan")), "lr must be a positive finite number"),
])
def test_invert_refuses_bad_settings(tiny_generator, kwargs, match):
    with pytest.raises(ValueError, match=match):
        invert(tiny_generator, torch.zeros(1, 1, 8, 8), **kwargs)


def test_invert_refuses_empty_images(tiny_generator):
    with pytest.raises(ValueError, match="images must be a non-empty tensor"):
        invert(tiny_generator, torch.zeros(0, 1, 8, 8))


@pytest.mark.parametrize("n, z0, z1, match", [
    (1, torch.zeros(3), torch.zeros(3), "n must be an integer >= 2"),
    (4, torch.zeros(3), torch.zeros(2), "same length"),
    (4, torch.zeros(1, 3), torch.zeros(1, 3), "same length"),
])
def test_interpolate_refuses_bad_input(n, z0, z1, match):
    with pytest.raises(ValueError, match=match):
        interpolate(z0, z1, n)
