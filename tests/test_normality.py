"""Dependence among pixel errors (chapter 2): each statistic on data with a known answer."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import began_lite as bl
from began_lite.normality import design_effect, shuffle_pixels


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
