"""Figures the chapters share. Every function draws on a matplotlib Axes and returns it."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["image_grid", "show_images", "plot_gaussians_w2", "qq_plot", "plot_history"]


def image_grid(x: torch.Tensor, nrow: int = 8, pad: int = 1) -> np.ndarray:
    """Tile images ``(N, C, H, W)`` in [-1, 1] into one array ``(rows*(H+pad)-pad, nrow*(W+pad)-pad[, 3])`` in [0, 1]."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty tensor (N, 1 or 3, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"nrow must be an integer >= 1, got {nrow!r}")
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()
    n, c, h, w = x.shape
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    grid = np.ones((c, rows * (h + pad) - pad, ncol * (w + pad) - pad), dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, ncol)
        grid[:, r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = x[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def show_images(x: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None):
    """Show images in [-1, 1] as a grid (grey images in the 'gray' colour map)."""
    import matplotlib.pyplot as plt

    grid = image_grid(x, nrow)
    if ax is None:
        _, ax = plt.subplots(figsize=(min(12, 0.6 * grid.shape[1] / x.shape[-1] * 2 + 1),) * 2)
    ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_gaussians_w2(m1: float, s1: float, m2: float, s2: float, axes=None):
    """Two 1-D Gaussians N(m1, s1^2), N(m2, s2^2) and the two terms of their W2^2, side by side."""
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    from .wasserstein import gaussian_w2_terms

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [2, 1]})
    ax, bx = axes
    lo = min(m1 - 4 * s1, m2 - 4 * s2)
    hi = max(m1 + 4 * s1, m2 + 4 * s2)
    t = np.linspace(lo, hi, 400)
    ax.plot(t, norm.pdf(t, m1, s1), label=f"$N({m1:g}, {s1:g}^2)$")
    ax.plot(t, norm.pdf(t, m2, s2), label=f"$N({m2:g}, {s2:g}^2)$")
    ax.set_xlabel("value")
    ax.set_ylabel("density")
    ax.legend(loc="upper right")
    terms = gaussian_w2_terms(m1, s1**2, m2, s2**2)
    ax.set_title(f"$W_2$ = {terms.distance:.3f}")
    bx.bar(["$(m_1-m_2)^2$", r"$(\sigma_1-\sigma_2)^2$"], [terms.mean, terms.covariance], color=["C2", "C3"])
    bx.set_ylabel("contribution to $W_2^2$")
    bx.set_title(f"$W_2^2$ = {terms.squared:.3f}")
    return axes


def qq_plot(samples, ax=None, label: str | None = None, color=None):
    """Normal Q-Q plot of standardised ``samples``: points on the diagonal mean 'normal'."""
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    s = np.sort(np.asarray(samples, dtype=np.float64))
    if s.size < 3:
        raise ValueError(f"samples must hold at least 3 values, got {s.size}")
    z = (s - s.mean()) / s.std(ddof=1)
    q = norm.ppf((np.arange(1, s.size + 1) - 0.5) / s.size)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.plot(q, z, ".", ms=3, label=label, color=color)
    lim = max(abs(q).max(), abs(z).max())
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8)
    ax.set_xlabel("normal quantile")
    ax.set_ylabel("standardised loss quantile")
    return ax


def plot_history(history, keys, ax=None, smooth: int = 1, logy: bool = False):
    """Plot logged quantities (a mapping of name -> list of values per step) against the step."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    for key in keys:
        y = np.asarray(history[key], dtype=np.float64)
        if smooth > 1 and y.size >= smooth:
            y = np.convolve(y, np.ones(smooth) / smooth, mode="valid")
        ax.plot(np.arange(y.size) + (smooth - 1 if smooth > 1 else 0), y, label=key)
    ax.set_xlabel("step")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax
