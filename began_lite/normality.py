"""Chapter 2's statistics: how normal is a loss distribution?"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["NormalityStats", "normality_stats", "effective_pixels"]


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
