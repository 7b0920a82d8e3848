"""Latent-space continuity (paper section 4.3): invert real images into z, then interpolate.

The paper finds, for a real image x, the z whose G(z) is closest to it by optimising
z with Adam against the L1 error |x - G(z)|, then shows G along the straight line between
two such z. A smooth row of images says the generator did not memorise the training set.
"""
from __future__ import annotations

import torch
from torch import nn

from .models import sample_z

__all__ = ["invert", "interpolate"]


def invert(generator: nn.Module, images: torch.Tensor, *, steps: int = 500, lr: float = 0.05,
           restarts: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """z* = argmin_z mean|x - G(z)| over z in [-1, 1]^Nz, by Adam from ``restarts`` seeded starts.

    Returns ``(z, error)``: the best z for each image (N, Nz) and its per-image L1 error (N,).
    G's weights are not changed. z is clipped to the prior's support [-1, 1] after each step.
    """
    if not isinstance(images, torch.Tensor) or images.ndim < 2 or len(images) == 0:
        raise ValueError(f"images must be a non-empty tensor (N, ...), got {getattr(images, 'shape', images)!r}")
    for name, v, lo in (("steps", steps, 1), ("restarts", restarts, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if not (isinstance(lr, (int, float)) and 0 < lr < float("inf")):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    param = next(generator.parameters())
    z_dim = generator.config.z_dim
    x = images.to(param.device, param.dtype)
    n = len(x)
    g = torch.Generator().manual_seed(seed)
    was_training, needs_grad = generator.training, [p.requires_grad for p in generator.parameters()]
    generator.eval().requires_grad_(False)
    try:
        z = sample_z(n * restarts, z_dim, generator=g).to(param.device).requires_grad_(True)
        target = x.repeat(restarts, *([1] * (x.ndim - 1)))
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            err = (generator(z) - target).abs().flatten(1).mean(1)
            opt.zero_grad(set_to_none=True)
            err.sum().backward()
            opt.step()
            with torch.no_grad():
                z.clamp_(-1, 1)
        with torch.no_grad():
            err = (generator(z) - target).abs().flatten(1).mean(1).view(restarts, n)
            best = err.argmin(0)
            z_best = z.detach().view(restarts, n, z_dim)[best, torch.arange(n)]
            return z_best, err[best, torch.arange(n)]
    finally:
        generator.train(was_training)
        for p, r in zip(generator.parameters(), needs_grad):
            p.requires_grad_(r)


def interpolate(z0: torch.Tensor, z1: torch.Tensor, n: int = 8) -> torch.Tensor:
    """The ``n`` points (1 - t) z0 + t z1, t = 0, 1/(n-1), ..., 1, stacked (n, Nz)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if z0.shape != z1.shape or z0.ndim != 1:
        raise ValueError(f"z0 and z1 must be vectors of the same length, got {tuple(z0.shape)} and {tuple(z1.shape)}")
    t = torch.linspace(0, 1, n, dtype=z0.dtype, device=z0.device)[:, None]
    return (1 - t) * z0 + t * z1
