"""Figures the chapters share. Every function draws on a matplotlib Axes and returns it."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["image_grid", "show_images", "plot_gaussians_w2", "qq_plot", "plot_history", "plot_points",
           "scatter_png", "grid_png"]


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


def grid_png(x: torch.Tensor, nrow: int = 8, *, scale: int = 1, pad: int = 1) -> bytes:
    """:func:`image_grid` encoded as a PNG (grey or RGB), each pixel repeated ``scale`` times per axis (nearest)."""
    import io

    from PIL import Image

    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 64:
        raise ValueError(f"scale must be an integer in [1, 64], got {scale!r}")
    grid = image_grid(x, nrow=nrow, pad=pad)
    image = Image.fromarray((grid * 255).round().astype(np.uint8))
    if scale > 1:
        image = image.resize((scale * image.width, scale * image.height), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


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


def plot_points(points, mixture: str | None = None, ax=None, title: str | None = None, color="C0"):
    """Scatter 2-D ``points`` (N, 2); with ``mixture`` ("ring" or "grid"), over its modes and their 3-std circles.

    The frame is fixed by the mixture (so frames of one run line up); points outside it are
    counted in the legend rather than silently dropped.
    """
    from matplotlib.patches import Circle

    from .mixtures import MIXTURE_KINDS, MIXTURE_STD, mixture_modes

    x = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"points must be an array (N, 2), got shape {x.shape}")
    if mixture is not None and mixture not in MIXTURE_KINDS:
        raise ValueError(f"mixture must be None or one of {MIXTURE_KINDS}, got {mixture!r}")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4.5, 4.5))
    label = f"samples ({len(x)})"
    if mixture is not None:
        modes = mixture_modes(mixture).numpy()
        lim = float(np.abs(modes).max()) + 1.5
        outside = int((~np.all(np.abs(x) <= lim, axis=1)).sum())
        if outside:
            label += f"; {outside} outside the frame"
        radius = 3 * MIXTURE_STD[mixture]
        for m in modes:  # the high-quality zone of mixture_quality
            ax.add_patch(Circle(m, radius, fill=False, color="0.4", lw=0.6))
        ax.plot(modes[:, 0], modes[:, 1], "k+", ms=8, label="modes (circle: 3 std)")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.plot(x[:, 0], x[:, 1], ".", ms=2, alpha=0.5, color=color, label=label)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title)
    return ax


def scatter_png(points, mixture: str | None = None, title: str | None = None) -> bytes:
    """:func:`plot_points` rendered to PNG bytes, without touching pyplot's global figures."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    plot_points(points, mixture, ax=fig.add_subplot(), title=title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
