r"""How far the pixel errors of an image move together (chapter 2).

The central-limit argument for a normal per-image loss :math:`\mathcal{L}(v) = \frac{1}{N_x}
\sum_j e_j` treats the :math:`N_x` pixel errors :math:`e_j` as independent. Two measurements
of that premise on a matrix of errors ``errors[i, j]`` (image i, pixel j):

* :func:`design_effect`: how much more the per-image sum varies than it would with
  independent pixels of the same variances (Kish's design effect);
* :func:`shuffle_pixels`: the same errors with each pixel's column permuted across images on
  its own, which keeps every pixel's distribution and destroys every dependence between
  pixels. The skewness of the per-image mean of shuffled errors is what independent but
  non-identical pixels give; comparing it with the real one isolates what dependence adds.
"""
from __future__ import annotations

import numpy as np

__all__ = ["design_effect", "shuffle_pixels"]


def _errors(errors) -> np.ndarray:
    try:
        e = np.asarray(errors, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"errors must be an array of numbers, got {type(errors).__name__}") from None
    if e.ndim != 2 or e.shape[0] < 3 or e.shape[1] < 1:
        raise ValueError(f"errors must have shape (images >= 3, pixels >= 1), got {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("errors contains NaN or inf")
    return e


def design_effect(errors) -> float:
    r"""Kish's design effect of the per-image sum of pixel errors.

    .. math:: \mathrm{deff} = \frac{\operatorname{Var}(\sum_j e_j)}{\sum_j \operatorname{Var}(e_j)}
              = \frac{\mathbf{1}^\top C\, \mathbf{1}}{\operatorname{tr} C},

    with :math:`C` the pixels' covariance over images. 1 for independent pixels, whatever their
    variances; :math:`N_x` when all pixels move as one; :math:`1 + (N_x - 1)\rho` for pixels with
    equal variances and pairwise correlation :math:`\rho`. :math:`N_x / \mathrm{deff}` is the
    number of independent pixels of the same total variance whose mean varies as much.
    """
    e = _errors(errors)
    total_variance = float(e.var(axis=0).sum())
    if total_variance == 0:
        raise ValueError("errors must vary over images at some pixel (every column is constant)")
    return float(e.sum(axis=1).var() / total_variance)


def shuffle_pixels(errors, seed: int = 0) -> np.ndarray:
    """``errors`` with every column (pixel) permuted across rows (images), each by its own permutation.

    Every pixel keeps its own values, so its distribution is unchanged; which image a value
    belongs to is drawn afresh for each pixel, so no two pixels depend on each other.
    """
    e = _errors(errors)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random(e.shape), axis=0)  # an independent permutation per column
    return np.take_along_axis(e, order, axis=0)
