"""The 2-D Gaussian mixtures of the mode-collapse literature (chapter 7): a ring of 8 and a grid of 25."""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["mixture_2d", "mixture_modes", "MIXTURE_KINDS", "MIXTURE_STD"]

MIXTURE_KINDS = ("ring", "grid")
# The standard deviation of every component of mixture_2d's two mixtures. The grid is PacGAN's
# (Lin et al. 2018, reference code: means {-4,-2,0,2,4}^2, std 0.05). The ring is PacGAN's ring
# of radius 1 and std 0.01 scaled by 2 (radius 2, std 0.02): the same shape, and the same
# scores, since mode coverage measures distances in standard deviations.
MIXTURE_STD = {"ring": 0.02, "grid": 0.05}


def mixture_2d(kind: str = "ring", n: int = 1000, *, std: float | None = None, seed: int = 0,
               return_labels: bool = False):
    """Samples of a 2-D Gaussian mixture with equal weights, shape ``(n, 2)`` (float32).

    ``ring``: 8 modes evenly spaced on a circle of radius 2, std 0.02 by default.
    ``grid``: 25 modes on the 5x5 grid {-4, -2, 0, 2, 4}^2, std 0.05 by default.
    These are the benchmarks of the mode-collapse literature (Unrolled GAN, VEEGAN, PacGAN);
    :func:`began_lite.evaluate.mixture_quality` scores samples against them.
    """
    if kind not in MIXTURE_KINDS:
        raise ValueError(f"kind must be 'ring' or 'grid', got {kind!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    centres = mixture_modes(kind)
    std = MIXTURE_STD[kind] if std is None else std
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not (std > 0 and math.isfinite(std)):
        raise ValueError(f"std must be a finite number > 0, got {std!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    g = torch.Generator().manual_seed(int(seed))
    labels = torch.randint(len(centres), (n,), generator=g)
    x = centres[labels] + std * torch.randn(n, 2, generator=g)
    return (x, labels) if return_labels else x


def mixture_modes(kind: str) -> torch.Tensor:
    """The mode centres of :func:`mixture_2d`'s ``kind``, shape ``(8, 2)`` or ``(25, 2)``."""
    if kind == "ring":
        angles = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
        return 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)
    if kind == "grid":
        g = torch.arange(-4.0, 5.0, 2.0)
        return torch.cartesian_prod(g, g)
    raise ValueError(f"kind must be 'ring' or 'grid', got {kind!r}")
