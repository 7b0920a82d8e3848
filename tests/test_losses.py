"""Losses: hand-computed values, and tests that fail for the common wrong versions."""
from __future__ import annotations

import math

import pytest
import torch

from began_lite.losses import began_losses, ebgan_losses, pulling_away_term, reconstruction_loss


# --------------------------------------------------------------------------- reconstruction_loss
# Two 1x2x2 images. Sample 0: diff = x - x_hat = (-1, 0, 2, 3); sample 1: diff = (-0.5, 0.5, -1, 1).
X = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
X_HAT = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]], [[[0.5, -0.5], [1.0, -1.0]]]])


def test_reconstruction_loss_eta1_by_hand():
    loss = reconstruction_loss(X, X_HAT, eta=1)
    assert loss.shape == (2,)
    # (1 + 0 + 2 + 3) / 4 = 1.5 and (0.5 + 0.5 + 1 + 1) / 4 = 0.75
    torch.testing.assert_close(loss, torch.tensor([1.5, 0.75]), rtol=0, atol=1e-7)


def test_reconstruction_loss_eta2_by_hand():
    loss = reconstruction_loss(X, X_HAT, eta=2)
    # (1 + 0 + 4 + 9) / 4 = 3.5 and (0.25 + 0.25 + 1 + 1) / 4 = 0.625
    torch.testing.assert_close(loss, torch.tensor([3.5, 0.625]), rtol=0, atol=1e-7)


def test_reconstruction_loss_default_eta_is_1():
    torch.testing.assert_close(reconstruction_loss(X, X_HAT), torch.tensor([1.5, 0.75]), rtol=0, atol=1e-7)


def test_reconstruction_loss_means_over_channels_too():
    # One image with 2 channels of 1x2 pixels: |diffs| = 1, 2, 3, 6 -> mean over all 4 values = 3
    # (a mean over H, W only, then a sum over channels, would give 6).
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 6.0]]]])  # (1, 2, 1, 2)
    loss = reconstruction_loss(x, torch.zeros_like(x), eta=1)
    assert loss.shape == (1,)
    assert loss.item() == pytest.approx(3.0)


def test_reconstruction_loss_is_per_sample_not_batch_mean():
    x = torch.zeros(3, 1, 2, 2)
    x_hat = torch.stack([torch.full((1, 2, 2), v) for v in (1.0, 2.0, -4.0)])
    torch.testing.assert_close(reconstruction_loss(x, x_hat, eta=1), torch.tensor([1.0, 2.0, 4.0]))
    torch.testing.assert_close(reconstruction_loss(x, x_hat, eta=2), torch.tensor([1.0, 4.0, 16.0]))


@pytest.mark.parametrize("eta", [1, 2])
def test_reconstruction_loss_gradient(eta):
    x_hat = X_HAT.clone().requires_grad_(True)
    reconstruction_loss(X, x_hat, eta=eta).sum().backward()
    diff = X_HAT - X  # d/dx_hat of mean |x_hat - x|^eta over 4 pixels
    expected = diff.sign() / 4 if eta == 1 else 2 * diff / 4
    torch.testing.assert_close(x_hat.grad, expected)


@pytest.mark.parametrize("x, x_hat, eta, pattern", [
    pytest.param(X, X_HAT, 3, r"\beta\b", id="eta-3"),
    pytest.param(X, X_HAT, 0, r"\beta\b", id="eta-0"),
    pytest.param(X, X_HAT, 1.5, r"\beta\b", id="eta-1.5"),
    pytest.param(X, X_HAT, True, r"\beta\b", id="eta-True"),
    pytest.param(X, X_HAT, "1", r"\beta\b", id="eta-str"),
    pytest.param(X, X_HAT[:1], 1, r"\bx\b and \bx_hat\b.*same shape", id="batch-mismatch"),
    pytest.param(X, X_HAT.transpose(2, 3).reshape(2, 1, 1, 4), 1, r"same shape", id="shape-mismatch"),
    pytest.param(X.numpy(), X_HAT, 1, r"^x must be a torch.Tensor", id="x-numpy"),
    pytest.param(X, X_HAT.tolist(), 1, r"^x_hat must be a torch.Tensor", id="x_hat-list"),
    pytest.param(X.long(), X_HAT.long(), 1, r"^x must be a floating-point", id="integer-dtype"),
    pytest.param(X, X_HAT.int(), 1, r"^x_hat must be a floating-point", id="x_hat-integer"),
    pytest.param(torch.zeros(4), torch.zeros(4), 1, r"^x must have a batch dimension", id="1d-input"),
])
def test_reconstruction_loss_bad_inputs(x, x_hat, eta, pattern):
    with pytest.raises(ValueError, match=pattern):
        reconstruction_loss(x, x_hat, eta=eta)


# --------------------------------------------------------------------------- pulling_away_term
# Three vectors in 2-D: (1, 0), (0, 2), (1, 1). Cosines: c12 = 0, c13 = c23 = 1/sqrt 2.
S3 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)


def test_pulling_away_term_by_hand():
    # sum over i != j of cos^2 = 2 * (0 + 1/2 + 1/2) = 2; divided by N(N-1) = 6.
    assert pulling_away_term(S3).item() == pytest.approx(1 / 3, abs=1e-12)


def test_pulling_away_term_is_not_a_common_wrong_version():
    value = pulling_away_term(S3).item()
    # Wrong 1, unsquared cosine: 2 * (0 + 2 / sqrt 2) / 6 = sqrt(2) / 3.
    assert value != pytest.approx(math.sqrt(2) / 3, abs=1e-3)
    # Wrong 2, normalised across the batch (S / ||S||_F, ||S||_F^2 = 7): dot products 0, 1, 2,
    # so 2 * (0 + 1 + 4) / 49 / 6 = 5 / 147.
    assert value != pytest.approx(5 / 147, abs=1e-3)
    # Wrong 3, diagonal included: (2 + 3) / 6 = 5/6, or (2 + 3) / 9 = 5/9.
    assert value != pytest.approx(5 / 6, abs=1e-3)
    assert value != pytest.approx(5 / 9, abs=1e-3)


def test_pulling_away_term_squares_negative_cosines():
    # (1, 0) and (-1, 1): cosine -1/sqrt 2. Squared: 1/2; unsquared it would be -1/sqrt 2.
    s = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    assert pulling_away_term(s).item() == pytest.approx(0.5, abs=1e-12)


def brute_force_pt(s: torch.Tensor) -> float:
    n = s.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                cos = float(s[i] @ s[j]) / (float(s[i].norm()) * float(s[j].norm()))
                total += cos ** 2
    return total / (n * (n - 1))


@pytest.mark.parametrize("n, d", [(2, 3), (5, 4), (9, 2)])
def test_pulling_away_term_matches_double_loop(n, d):
    s = torch.randn(n, d, generator=torch.Generator().manual_seed(n * 10 + d), dtype=torch.float64)
    assert pulling_away_term(s).item() == pytest.approx(brute_force_pt(s), rel=1e-12)


def test_pulling_away_term_invariant_to_per_row_scaling():
    # Each row normalised on its own: scaling rows by different factors changes nothing
    # (a batch normalisation would change it).
    s = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    scale = torch.tensor([0.01, 1.0, 5.0, 100.0, 0.3, 2.0], dtype=torch.float64)[:, None]
    assert pulling_away_term(s * scale).item() == pytest.approx(pulling_away_term(s).item(), rel=1e-12)
    assert pulling_away_term(-s).item() == pytest.approx(pulling_away_term(s).item(), rel=1e-12)


def test_pulling_away_term_orthogonal_rows_give_zero():
    # Diagonal excluded: orthogonal rows give exactly 0 (with the diagonal it would be 1/(N-1)).
    s = torch.diag(torch.tensor([1.0, 3.0, 0.5, 2.0]))
    assert pulling_away_term(s).item() == pytest.approx(0.0, abs=1e-7)


def test_pulling_away_term_identical_rows_give_one():
    s = torch.tensor([[1.0, -2.0, 3.0]]).repeat(5, 1)
    assert pulling_away_term(s).item() == pytest.approx(1.0, abs=1e-6)


def test_pulling_away_term_gradient_flows():
    s = torch.randn(4, 3, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    pulling_away_term(s).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


@pytest.mark.parametrize("s, pattern", [
    pytest.param(torch.ones(1, 3), r"N >= 2", id="one-row"),
    pytest.param(torch.ones(0, 3), r"N >= 2", id="no-rows"),
    pytest.param(torch.ones(3), r"^s must be a 2-D", id="1d"),
    pytest.param(torch.ones(2, 3, 4), r"^s must be a 2-D", id="3d"),
    pytest.param([[1.0, 0.0], [0.0, 1.0]], r"^s must be a 2-D", id="list"),
])
def test_pulling_away_term_bad_inputs(s, pattern):
    with pytest.raises(ValueError, match=pattern):
        pulling_away_term(s)


# --------------------------------------------------------------------------- ebgan_losses
def test_ebgan_losses_by_hand():
    real = torch.tensor([0.2, 0.4])
    fake = torch.tensor([0.5, 1.5])
    out = ebgan_losses(real, fake, margin=1.0)
    # per-sample hinge [1 - 0.5]^+ = 0.5, [1 - 1.5]^+ = 0 -> mean 0.25; L_D = 0.3 + 0.25
    assert out.hinge.item() == pytest.approx(0.25)
    assert out.loss_d.item() == pytest.approx(0.55)
    assert out.energy_real.item() == pytest.approx(0.3)
    assert out.energy_fake.item() == pytest.approx(1.0)


def test_ebgan_hinge_is_per_sample_not_of_the_mean():
    # The mean of D(G(z)) is exactly m, so the hinge of the mean would be 0; per sample it is 0.25.
    fake = torch.tensor([0.5, 1.5])
    out = ebgan_losses(torch.zeros(2), fake, margin=1.0)
    hinge_of_mean = max(0.0, 1.0 - fake.mean().item())
    assert hinge_of_mean == 0.0
    assert out.hinge.item() == pytest.approx(0.25)
    assert out.loss_d.item() == pytest.approx(0.25)


def test_ebgan_losses_gradient_stops_above_margin():
    fake = torch.tensor([0.5, 1.5, 3.0], requires_grad=True)
    ebgan_losses(torch.zeros(3), fake, margin=2.0).loss_d.backward()
    # d/dfake_i of mean_i [2 - fake_i]^+ = -1/3 where fake_i < 2, else 0
    torch.testing.assert_close(fake.grad, torch.tensor([-1 / 3, -1 / 3, 0.0]))


@pytest.mark.parametrize("real, fake, margin, pattern", [
    pytest.param(torch.zeros(2), torch.zeros(2), 0.0, r"^margin", id="margin-0"),
    pytest.param(torch.zeros(2), torch.zeros(2), -1.0, r"^margin", id="margin-negative"),
    pytest.param(torch.zeros(2), torch.zeros(2), float("nan"), r"^margin", id="margin-nan"),
    pytest.param(torch.zeros(2), torch.zeros(2), True, r"^margin", id="margin-bool"),
    pytest.param(torch.zeros(2), torch.zeros(2), "1", r"^margin", id="margin-str"),
    pytest.param(torch.zeros(2, 1), torch.zeros(2), 1.0, r"^energy_real", id="real-2d"),
    pytest.param(torch.zeros(2), [0.0, 0.0], 1.0, r"^energy_fake", id="fake-list"),
])
def test_ebgan_losses_bad_inputs(real, fake, margin, pattern):
    with pytest.raises(ValueError, match=pattern):
        ebgan_losses(real, fake, margin)


# --------------------------------------------------------------------------- began_losses
def test_began_losses_by_hand():
    real = torch.tensor([1.0, 3.0])  # mean 2
    fake = torch.tensor([0.5, 1.5])  # mean 1
    out = began_losses(real, fake, k=0.25)
    assert out.loss_d.item() == pytest.approx(2.0 - 0.25 * 1.0)
    assert out.loss_real.item() == pytest.approx(2.0)
    assert out.loss_fake.item() == pytest.approx(1.0)


@pytest.mark.parametrize("k", [0.0, 1.0])
def test_began_losses_k_at_the_ends(k):
    out = began_losses(torch.tensor([1.0, 3.0]), torch.tensor([0.5, 1.5]), k=k)
    assert out.loss_d.item() == pytest.approx(2.0 - k)


def test_began_losses_gradient():
    real = torch.tensor([1.0, 3.0], requires_grad=True)
    fake = torch.tensor([0.5, 1.5], requires_grad=True)
    began_losses(real, fake, k=0.25).loss_d.backward()
    torch.testing.assert_close(real.grad, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(fake.grad, torch.tensor([-0.125, -0.125]))


def test_began_losses_accepts_0d_tensor_k():
    out = began_losses(torch.tensor([1.0, 3.0]), torch.tensor([0.5, 1.5]), k=torch.tensor(0.5))
    assert out.loss_d.item() == pytest.approx(1.5)


@pytest.mark.parametrize("k", [-0.01, 1.01, float("nan"), float("inf"), -float("inf")])
def test_began_losses_k_outside_unit_interval_refused(k):
    with pytest.raises(ValueError, match=r"^k must be in \[0, 1\]"):
        began_losses(torch.tensor([1.0]), torch.tensor([1.0]), k=k)


@pytest.mark.parametrize("k", [None, True, "0.5"])
def test_began_losses_k_not_a_number_refused(k):
    with pytest.raises(ValueError, match=r"^k must"):
        began_losses(torch.tensor([1.0]), torch.tensor([1.0]), k=k)


@pytest.mark.parametrize("real, fake, pattern", [
    pytest.param(torch.zeros(2, 2), torch.zeros(2), r"^loss_real", id="real-2d"),
    pytest.param(torch.zeros(2), torch.tensor(0.0), r"^loss_fake", id="fake-0d"),
])
def test_began_losses_bad_shapes(real, fake, pattern):
    with pytest.raises(ValueError, match=pattern):
        began_losses(real, fake, k=0.5)


def test_reconstruction_loss_is_float32_under_low_precision():
    """bf16 images and reconstructions (as under autocast) give a float32 loss, equal to the loss of
    the same bf16 values computed in float32: k_t's update must not read a 3-digit number."""
    g = torch.Generator().manual_seed(0)
    x, x_hat = (torch.rand(4, 1, 8, 8, generator=g) * 2 - 1).bfloat16(), (torch.rand(4, 1, 8, 8, generator=g) * 2 - 1).bfloat16()
    for eta in (1, 2):
        loss = reconstruction_loss(x, x_hat, eta=eta)
        assert loss.dtype == torch.float32
        assert torch.equal(loss, reconstruction_loss(x.float(), x_hat.float(), eta=eta))
        assert not torch.equal(loss, loss.bfloat16().float())  # more digits than bf16 holds
