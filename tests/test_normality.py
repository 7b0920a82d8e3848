"""Normality statistics (chapter 2) against scipy, the effective-pixel count and the dependence among
pixel errors, each on data with a known answer."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import began_lite as bl
from began_lite.normality import design_effect, effective_pixels, normality_stats, shuffle_pixels


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


def test_design_effect_independent_pixels_is_one():
    # Independent columns of very different variances and shapes: deff = 1 up to sampling noise
    # (its standard error here is about sqrt(2 / n) ~ 0.016).
    rng = np.random.default_rng(0)
    n, d = 8000, 30
    scales = rng.uniform(0.1, 3.0, d)
    e = rng.exponential(scales, size=(n, d))
    assert design_effect(e) == pytest.approx(1.0, abs=0.06)


def test_design_effect_pixels_moving_as_one_is_the_pixel_count():
    rng = np.random.default_rng(1)
    common = rng.normal(size=(500, 1))
    e = common * np.linspace(1.0, 2.0, 12)  # every pixel a multiple of one variable
    # Var(sum) = (sum of the scales)^2 Var(z); sum of variances = sum of squared scales Var(z).
    scales = np.linspace(1.0, 2.0, 12)
    assert design_effect(e) == pytest.approx(scales.sum() ** 2 / (scales**2).sum(), rel=1e-12)
    assert design_effect(np.repeat(common, 12, axis=1)) == pytest.approx(12.0, rel=1e-12)


@pytest.mark.parametrize("rho", [0.1, 0.5])
def test_design_effect_equicorrelated_pixels(rho):
    # e_j = sqrt(rho) z + sqrt(1 - rho) u_j: unit variances, pairwise correlation rho.
    rng = np.random.default_rng(2)
    n, d = 20000, 16
    e = np.sqrt(rho) * rng.normal(size=(n, 1)) + np.sqrt(1 - rho) * rng.normal(size=(n, d))
    assert design_effect(e) == pytest.approx(1 + (d - 1) * rho, rel=0.05)


def test_shuffle_keeps_every_pixel_and_destroys_dependence():
    rng = np.random.default_rng(3)
    e = np.repeat(rng.exponential(size=(2000, 1)), 20, axis=1) + 0.01 * rng.normal(size=(2000, 20))
    s = shuffle_pixels(e, seed=4)
    np.testing.assert_array_equal(np.sort(s, axis=0), np.sort(e, axis=0))  # same values per pixel
    assert design_effect(e) > 19  # the pixels move as one ...
    assert design_effect(s) == pytest.approx(1.0, abs=0.15)  # ... and not after the shuffle
    assert not np.array_equal(s, shuffle_pixels(e, seed=5))  # the seed picks the permutations
    np.testing.assert_array_equal(s, shuffle_pixels(e, seed=4))


def test_shuffle_skewness_isolates_dependence():
    # A skewed common factor: the image mean keeps its skewness (about 2, the exponential's),
    # while independent pixels of the same marginals average it away (about 2 / sqrt(20)).
    rng = np.random.default_rng(6)
    e = np.repeat(rng.exponential(size=(4000, 1)), 20, axis=1) + 0.01 * rng.normal(size=(4000, 20))
    real = stats.skew(e.mean(axis=1))
    shuffled = stats.skew(shuffle_pixels(e, seed=0).mean(axis=1))
    assert real == pytest.approx(2.0, abs=0.3)
    assert shuffled == pytest.approx(2.0 / np.sqrt(20), abs=0.15)
    # Independent pixels to begin with: shuffling changes nothing but the noise.
    f = rng.exponential(size=(4000, 20))
    assert stats.skew(f.mean(axis=1)) == pytest.approx(
        stats.skew(shuffle_pixels(f, seed=0).mean(axis=1)), abs=0.15)


def test_public_names():
    assert bl.design_effect is design_effect and bl.shuffle_pixels is shuffle_pixels


@pytest.mark.parametrize("errors, pattern", [
    (np.ones(10), r"^errors must have shape \(images >= 3, pixels >= 1\)"),
    (np.ones((2, 4)), r"^errors must have shape"),
    ([[1.0, np.nan]] * 4, r"^errors contains NaN or inf"),
    ("abc", r"^errors must"),
])
def test_bad_errors(errors, pattern):
    with pytest.raises(ValueError, match=pattern):
        design_effect(errors)
    with pytest.raises(ValueError, match=pattern):
        shuffle_pixels(errors)


def test_constant_errors_and_bad_seed():
    with pytest.raises(ValueError, match=r"^errors must vary over images"):
        design_effect(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"^seed must be an integer"):
        shuffle_pixels(np.ones((5, 3)), seed=1.5)
