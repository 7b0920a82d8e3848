r"""Losses: the autoencoder's pixel-wise loss, and the EBGAN and BEGAN objectives built on it.

The discriminator :math:`D` of both EBGAN and BEGAN is an autoencoder; its loss on an
image :math:`v \in \mathbb{R}^{N_x}` is (BEGAN §3.1)

.. math:: \mathcal{L}(v) = |v - D(v)|^\eta, \qquad \eta \in \{1, 2\},

averaged over pixels (over coordinates, for points (B, d)), one number per image. The
objectives (each returns its parts):

* EBGAN (Zhao et al. 2017, eq. 1-2, 4):
  :math:`\mathcal{L}_D = D(x) + [m - D(G(z))]^+`, :math:`\mathcal{L}_G = D(G(z)) + w\,f_{PT}(S)`,
  where the energy :math:`D(\cdot)` is the reconstruction loss and the hinge is per sample.
* BEGAN (§3.4): :math:`\mathcal{L}_D = \mathcal{L}(x) - k_t \mathcal{L}(G(z_D))`,
  :math:`\mathcal{L}_G = \mathcal{L}(G(z_G))`.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = [
    "reconstruction_loss", "pulling_away_term",
    "EBGANLosses", "ebgan_losses", "BEGANLosses", "began_losses",
]


def _check_pair(x: torch.Tensor, x_hat: torch.Tensor) -> None:
    for name, t in (("x", x), ("x_hat", x_hat)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{name} must have a batch dimension and at least one more, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    if x.device != x_hat.device:
        raise ValueError(f"x and x_hat must be on the same device, got {x.device} and {x_hat.device}")


def reconstruction_loss(x: torch.Tensor, x_hat: torch.Tensor, eta: int = 1) -> torch.Tensor:
    r""":math:`\mathcal{L}(v) = \operatorname{mean}_{\text{pixels}} |v - D(v)|^\eta`, one value per sample, shape ``(B,)``.

    ``x`` is :math:`v`, ``x_hat`` is :math:`D(v)`; ``eta`` is :math:`\eta` (1 or 2). Any shape
    ``(B, ...)`` works: images ``(B, C, H, W)`` average over pixels, points ``(B, d)`` over coordinates.
    Computed in float32 whatever the inputs' precision: under bfloat16 autocast the mean would
    otherwise be a bfloat16 number (3 significant digits), and k_t's update reads it.
    """
    if eta not in (1, 2) or isinstance(eta, bool):
        raise ValueError(f"eta must be 1 or 2, got {eta!r}")
    _check_pair(x, x_hat)
    diff = (x.float() - x_hat.float()).flatten(1)  # (B, N_x); .float() is a no-op on float32
    return (diff.abs() if eta == 1 else diff.square()).mean(dim=1)


def pulling_away_term(s: torch.Tensor) -> torch.Tensor:
    r"""EBGAN's pulling-away term (Zhao et al. 2017, eq. 4) on encoder embeddings ``s`` of shape ``(N, d)``:

    .. math:: f_{PT}(S) = \frac{1}{N(N-1)} \sum_i \sum_{j \ne i} \Big(\frac{S_i^\top S_j}{\|S_i\|\,\|S_j\|}\Big)^2.

    Each embedding is normalised on its own (not across the batch), the cosine is squared,
    and the diagonal (i = j, always 1) is left out. Needs N >= 2.
    """
    if not isinstance(s, torch.Tensor) or s.ndim != 2:
        raise ValueError(f"s must be a 2-D tensor (N, d) of embeddings, got {getattr(s, 'shape', type(s).__name__)}")
    if not s.is_floating_point():
        raise ValueError(f"s must be a floating-point tensor, got dtype {s.dtype}")
    n = s.shape[0]
    if n < 2:
        raise ValueError(f"s must hold at least 2 embeddings (N >= 2), got N={n}")
    unit = s / s.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (N, d), each row of length 1
    cos2 = (unit @ unit.T).square()  # (N, N)
    off_diagonal = cos2.sum() - cos2.diagonal().sum()
    return off_diagonal / (n * (n - 1))


class EBGANLosses(NamedTuple):
    loss_d: torch.Tensor  # L_D, scalar
    energy_real: torch.Tensor  # mean D(x)
    energy_fake: torch.Tensor  # mean D(G(z))
    hinge: torch.Tensor  # mean [m - D(G(z))]^+


class BEGANLosses(NamedTuple):
    loss_d: torch.Tensor  # L_D = L(x) - k L(G(z)), scalar
    loss_real: torch.Tensor  # L(x), batch mean
    loss_fake: torch.Tensor  # L(G(z)), batch mean


def _per_sample(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.ndim != 1 or len(t) == 0 or not t.is_floating_point():
        raise ValueError(f"{name} must be a non-empty 1-D float tensor of per-sample losses (B,), "
                         f"got {getattr(t, 'shape', type(t).__name__)} {getattr(t, 'dtype', '')}".rstrip())


def ebgan_losses(energy_real: torch.Tensor, energy_fake: torch.Tensor, margin: float) -> EBGANLosses:
    r"""EBGAN's discriminator loss :math:`\mathcal{L}_D = D(x) + [m - D(G(z))]^+`, hinge per sample, batch mean.

    ``energy_real`` is :math:`D(x)` and ``energy_fake`` is :math:`D(G(z))`, per sample (shape ``(B,)``);
    ``margin`` is :math:`m > 0`. The generator's loss is ``energy_fake.mean()`` plus the
    weighted :func:`pulling_away_term`.
    """
    _per_sample("energy_real", energy_real)
    _per_sample("energy_fake", energy_fake)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin < float("inf"):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    hinge = torch.relu(margin - energy_fake)  # (B,)
    return EBGANLosses(energy_real.mean() + hinge.mean(), energy_real.mean(), energy_fake.mean(), hinge.mean())


def began_losses(loss_real: torch.Tensor, loss_fake: torch.Tensor, k: float) -> BEGANLosses:
    r"""BEGAN's discriminator loss :math:`\mathcal{L}_D = \mathcal{L}(x) - k_t\,\mathcal{L}(G(z_D))`.

    ``loss_real`` is :math:`\mathcal{L}(x)` and ``loss_fake`` is :math:`\mathcal{L}(G(z_D))`, per sample
    (shape ``(B,)``); ``k`` is :math:`k_t \in [0, 1]`, a plain number (no gradient flows into it).
    The generator's loss is :math:`\mathcal{L}(G(z_G))`, the batch mean on fresh samples.
    """
    _per_sample("loss_real", loss_real)
    _per_sample("loss_fake", loss_fake)
    if isinstance(k, torch.Tensor) and k.numel() == 1:
        k = k.item()
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0.0 <= k <= 1.0:
        raise ValueError(f"k must be in [0, 1] (a number), got {k!r}")
    k = float(k)
    real, fake = loss_real.mean(), loss_fake.mean()
    return BEGANLosses(real - k * fake, real, fake)
