r"""Chapter 2's statistics: how normal is a loss distribution, and how far do the pixel errors of
an image move together?

:func:`normality_stats` gives moments and two normality tests of a sample of losses.

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

from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["NormalityStats", "normality_stats", "effective_pixels", "design_effect", "shuffle_pixels"]


class NormalityStats(NamedTuple):
    n: int  # sample size
    mean: float
    cv: float  # coefficient of variation, std / mean
    skewness: float  # 0 for a normal distribution
    excess_kurtosis: float  # 0 for a normal distribution
    shapiro_p: float  # Shapiro-Wilk test of normality (Shapiro & Wilk 1965)
    dagostino_p: float  # D'Agostino-Pearson K^2 test, from skewness and kurtosis (D'Agostino & Pearson 1973)


def _numbers(name: str, values) -> np.ndarray:
    """``values`` as a flat float64 array, or a ValueError naming ``name``."""
    try:
        return np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {type(values).__name__}") from None


def normality_stats(samples) -> NormalityStats:
    """Moments and two normality tests of a 1-D sample (at least 20 finite values)."""
    x = _numbers("samples", samples)
    if x.size < 20:
        raise ValueError(f"samples must hold at least 20 values for the normality tests, got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contains NaN or inf")
    mean = float(x.mean())
    return NormalityStats(
        n=int(x.size), mean=mean, cv=float(x.std(ddof=1) / mean) if mean != 0 else float("nan"),
        skewness=float(stats.skew(x)), excess_kurtosis=float(stats.kurtosis(x)),
        shapiro_p=float(stats.shapiro(x).pvalue), dagostino_p=float(stats.normaltest(x).pvalue),
    )


def effective_pixels(pixel_values, image_values) -> float:
    """How many *independent* pixels would explain the skewness of per-image means.

    The mean of N independent copies of a variable with skewness s has skewness s / sqrt(N),
    so N_eff = (s_pixel / s_image)^2. Compare with the real pixel count: N_eff much smaller
    than N says the pixels' errors are far from independent.
    """
    pix, img = _numbers("pixel_values", pixel_values), _numbers("image_values", image_values)
    for name, v in (("pixel_values", pix), ("image_values", img)):
        if v.size < 3 or not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must hold at least 3 finite values (a skewness needs them), got {v.size}")
    s_pix, s_img = float(stats.skew(pix)), float(stats.skew(img))
    if s_img == 0 or np.sign(s_img) != np.sign(s_pix):
        return float("nan")
    return (s_pix / s_img) ** 2


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
