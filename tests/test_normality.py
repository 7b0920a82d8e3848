"""Normality statistics (chapter 2) against scipy, and the effective-pixel count on known data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from began_lite.normality import effective_pixels, normality_stats


def test_normality_stats_on_a_normal_sample():
    x = np.random.default_rng(0).normal(5.0, 2.0, size=1000)
    s = normality_stats(x)
    assert s.n == 1000
    assert s.mean == pytest.approx(x.mean(), rel=1e-12)
    assert s.cv == pytest.approx(x.std(ddof=1) / x.mean(), rel=1e-12)
    assert s.skewness == pytest.approx(stats.skew(x), rel=1e-12)
    assert s.excess_kurtosis == pytest.approx(stats.kurtosis(x), rel=1e-12)
    assert s.shapiro_p == pytest.approx(stats.shapiro(x).pvalue, rel=1e-12)
    assert s.dagostino_p == pytest.approx(stats.normaltest(x).pvalue, rel=1e-12)
    # Normal data: moments near 0, no rejection at the 1% level.
    assert abs(s.skewness) < 0.3 and abs(s.excess_kurtosis) < 0.6
    assert s.shapiro_p > 0.01 and s.dagostino_p > 0.01
    assert s.cv == pytest.approx(0.4, rel=0.1)  # 2 / 5


def test_normality_stats_on_an_exponential_sample():
    x = np.random.default_rng(1).exponential(3.0, size=4000)
    s = normality_stats(x)
    assert s.shapiro_p == pytest.approx(stats.shapiro(x).pvalue, rel=1e-9, abs=1e-300)
    assert s.dagostino_p == pytest.approx(stats.normaltest(x).pvalue, rel=1e-9, abs=1e-300)
    # The exponential distribution: skewness 2, excess kurtosis 6, coefficient of variation 1.
    assert s.skewness == pytest.approx(2.0, abs=0.4)
    assert s.cv == pytest.approx(1.0, abs=0.1)
    assert s.shapiro_p < 1e-10 and s.dagostino_p < 1e-10


def test_normality_stats_accepts_torch_and_any_shape():
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(10, 5)))
    assert normality_stats(x) == normality_stats(x.numpy().ravel())


def test_normality_stats_zero_mean_gives_nan_cv():
    x = np.concatenate([np.arange(1.0, 16.0), -np.arange(1.0, 16.0)])  # mean exactly 0
    assert math.isnan(normality_stats(x).cv)


@pytest.mark.parametrize("x, pattern", [
    pytest.param(np.ones(19), r"^samples must hold at least 20", id="too-few"),
    pytest.param(np.r_[np.ones(25), np.nan], r"^samples contains NaN", id="nan"),
    pytest.param(np.r_[np.ones(25), np.inf], r"^samples contains NaN or inf", id="inf"),
])
def test_normality_stats_bad_inputs(x, pattern):
    with pytest.raises(ValueError, match=pattern):
        normality_stats(x)


def test_effective_pixels_recovers_n_for_iid_pixels():
    # Per-image mean of N = 16 iid exponential pixels: skewness 2 / sqrt(16) = 0.5, so N_eff = (2 / 0.5)^2 = 16.
    pixels = np.random.default_rng(3).exponential(size=(20000, 16))
    n_eff = effective_pixels(pixels, pixels.mean(axis=1))
    assert n_eff == pytest.approx(16.0, rel=0.25)


def test_effective_pixels_fully_correlated_pixels_count_once():
    # Every pixel of an image the same: the image mean is the pixel, N_eff = 1 exactly.
    per_image = np.random.default_rng(4).exponential(size=5000)
    pixels = np.repeat(per_image[:, None], 16, axis=1)
    assert effective_pixels(pixels, per_image) == pytest.approx(1.0, rel=1e-9)


def test_effective_pixels_undefined_cases_give_nan():
    skewed = np.random.default_rng(5).exponential(size=500)
    assert math.isnan(effective_pixels(skewed, [-1.0, 0.0, 1.0]))  # symmetric image values: skew 0
    assert math.isnan(effective_pixels(skewed, -skewed))  # opposite signs of skewness
