"""Scores of generated samples: digits against the real digits, 2-D points against their mixture.

Digits (chapters 3-7) are judged in the feature space of a classifier trained on the real digits
(:mod:`began_lite.classifier`): the Fréchet distance of Gaussian fits (the formula behind FID),
improved precision and recall (Kynkäänniemi et al. 2019), the classes drawn and their balance.
2-D points (chapter 7) are judged as the mode-collapse literature does: modes covered and the
share of high-quality samples.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from .classifier import DigitClassifier, load_digit_classifier
from .data import load_digits
from .mixtures import MIXTURE_KINDS, MIXTURE_STD, mixture_modes
from .wasserstein import gaussian_w2_squared

__all__ = ["digit_probabilities", "digit_features", "frechet_distance", "precision_recall", "centroids",
           "mean_pairwise_l1", "CoverageReport", "mode_coverage", "evaluate_digits", "MixtureQuality",
           "mixture_quality", "COVERAGE_THRESHOLD", "COVERAGE_MIN_SHARE"]


@torch.no_grad()
def digit_probabilities(model: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's probability of each of the ten classes, per image (N, 10)."""
    return torch.softmax(model(images), dim=1)


@torch.no_grad()
def digit_features(model: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's 64 penultimate activations of each image: the space the scores work in."""
    return model.features(images)


def frechet_distance(real_features, fake_features) -> float:
    """Squared W2 between Gaussian fits of two feature sets: the formula behind FID (Heusel et al. 2017).

    Uses chapter 1's :func:`gaussian_w2_squared` on the sample means and covariances.
    """
    a = np.asarray(real_features.detach().cpu() if hasattr(real_features, "detach") else real_features, dtype=np.float64)
    b = np.asarray(fake_features.detach().cpu() if hasattr(fake_features, "detach") else fake_features, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"real_features and fake_features must be (n, d) with the same d, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < 2:
        raise ValueError("real_features and fake_features need at least 2 rows each")
    return gaussian_w2_squared(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def _kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's distance to its k-th nearest other row (the row itself excluded)."""
    d = torch.cdist(x, x)  # (n, n)
    return d.kthvalue(k + 1, dim=1).values  # the 0 on the diagonal is the first value


def precision_recall(real_features, fake_features, k: int = 3) -> tuple[float, float]:
    r"""Improved precision and recall (Kynkäänniemi et al. 2019) of ``fake_features`` against ``real_features``.

    Each set's manifold is the union of balls around its points, each ball reaching the point's
    k-th nearest neighbour in the same set (k = 3 in the paper). *Precision* is the share of
    generated points inside the real manifold (quality: how many samples look real); *recall* is
    the share of real points inside the generated manifold (diversity: how much of the data the
    samples cover):

    .. math::

        P = \frac{1}{M}\sum_j [\exists i: \lVert g_j - r_i\rVert \le \rho_k(r_i)], \qquad
        R = \frac{1}{N}\sum_i [\exists j: \lVert r_i - g_j\rVert \le \rho_k(g_j)] .

    Both are in [0, 1]; identical sets give 1 and 1, a generator that draws half the data's
    clusters well gives precision near 1 and recall near 1/2.
    """
    a = torch.as_tensor(np.asarray(real_features.detach().cpu() if hasattr(real_features, "detach") else real_features),
                        dtype=torch.float64)
    b = torch.as_tensor(np.asarray(fake_features.detach().cpu() if hasattr(fake_features, "detach") else fake_features),
                        dtype=torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"real_features and fake_features must be (n, d) with the same d, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < min(len(a), len(b)):
        raise ValueError(f"k must be an integer in [1, {min(len(a), len(b)) - 1}] (fewer than either set's rows), "
                         f"got {k!r}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("real_features and fake_features must be finite")
    d = torch.cdist(b, a)  # (M, N): generated to real
    precision = (d <= _kth_neighbour_radius(a, k)[None, :]).any(dim=1).double().mean()
    recall = (d <= _kth_neighbour_radius(b, k)[:, None]).any(dim=0).double().mean()
    return float(precision), float(recall)


def centroids(images: torch.Tensor) -> torch.Tensor:
    """Each image's centre of ink, (N, 2) as (row, column) in pixels: the mean position weighted by (x + 1) / 2.

    A leak test for augmentations: a generator that learned shifted digits draws centroids
    spread wider than the real digits' (chapter 5)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty tensor (N, C, H, W), got {getattr(images, 'shape', images)!r}")
    w = (images.detach().float().cpu().mean(1) + 1) / 2  # (N, H, W) ink in [0, 1]
    mass = w.sum((1, 2)).clamp_min(1e-12)
    rows = torch.arange(w.shape[1], dtype=w.dtype)
    cols = torch.arange(w.shape[2], dtype=w.dtype)
    return torch.stack([(w.sum(2) * rows).sum(1) / mass, (w.sum(1) * cols).sum(1) / mass], dim=1)


def mean_pairwise_l1(images: torch.Tensor) -> float:
    """Diversity: the mean over pairs i != j of mean_pixels |x_i - x_j| (0 = all samples equal)."""
    if not isinstance(images, torch.Tensor) or images.ndim < 2 or len(images) < 2:
        raise ValueError(f"images must be a tensor (N, ...) with N >= 2, got {getattr(images, 'shape', images)!r}")
    x = images.detach().flatten(1).double().cpu()
    n = len(x)
    return float(torch.cdist(x, x, p=1).sum() / (n * (n - 1)) / x.shape[1])


class CoverageReport(NamedTuple):
    counts: list  # samples assigned to each class
    classes_covered: int  # classes with at least `min_share` of the confident samples
    confident_share: float  # share of samples with top probability >= threshold
    kl_from_uniform: float  # KL(class histogram || uniform), in nats; 0 = perfectly balanced
    max_share: float  # share of the most common class


# A class is *covered* when at least COVERAGE_MIN_SHARE of the confident samples (top probability at
# least COVERAGE_THRESHOLD) fall in it: a blur the classifier is unsure of covers nothing.
COVERAGE_THRESHOLD, COVERAGE_MIN_SHARE = 0.9, 0.02


def mode_coverage(probs, threshold: float = COVERAGE_THRESHOLD, min_share: float = COVERAGE_MIN_SHARE) -> CoverageReport:
    """Classes the classifier assigns to samples, their balance, and the share of confident samples."""
    p = torch.as_tensor(probs, dtype=torch.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs must be a non-empty (N, classes) array, got shape {tuple(p.shape)}")
    if not (torch.isfinite(p).all() and p.min() >= 0 and p.max() <= 1):
        raise ValueError("probs must be probabilities: finite and in [0, 1]")
    for name, v, lo_open in (("threshold", threshold, True), ("min_share", min_share, False)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not ((0 < v) if lo_open else (0 <= v)) or not v <= 1:
            raise ValueError(f"{name} must be a number in {'(0, 1]' if lo_open else '[0, 1]'}, got {v!r}")
    top, cls = p.max(dim=1)
    confident = top >= threshold
    counts = torch.bincount(cls, minlength=p.shape[1]).double()
    shares = counts / counts.sum()
    kl = float(torch.sum(torch.where(shares > 0, shares * torch.log(shares * p.shape[1]), torch.zeros(()))))
    conf_counts = torch.bincount(cls[confident], minlength=p.shape[1]).double()
    covered = int((conf_counts / max(1.0, conf_counts.sum()) >= min_share).sum())
    return CoverageReport(counts.long().tolist(), covered, float(confident.double().mean()), kl, float(shares.max()))


def evaluate_digits(images: torch.Tensor, classifier: DigitClassifier | None = None, real: torch.Tensor | None = None) -> dict:
    """Frechet distance to the real digits, coverage and balance of ``images`` (N, 1, S, S) in [-1, 1]."""
    DigitClassifier.prepare(images)  # the shape and finiteness checks, before any work
    if len(images) < 2:
        raise ValueError(f"images must hold at least 2 samples for the Frechet distance, got {len(images)}")
    if classifier is None:
        classifier, _ = load_digit_classifier()
    if real is None:  # the real digits at the same size, so both pass through the same resizes
        real = load_digits(images.shape[-1])
    rep = mode_coverage(digit_probabilities(classifier, images))
    real_f, fake_f = digit_features(classifier, real), digit_features(classifier, images)
    fd = frechet_distance(real_f, fake_f)
    report = {"frechet": fd, **rep._asdict()}
    if len(images) > 3:
        report["precision"], report["recall"] = precision_recall(real_f, fake_f)
    c = centroids(images)
    report["centroid_std"] = c.std(0).tolist()  # (rows, columns), pixels: the spread of where the ink sits
    return report


class MixtureQuality(NamedTuple):
    modes_covered: int  # modes that are the nearest mode of at least `min_count` high-quality samples
    n_modes: int  # 8 for the ring, 25 for the grid
    high_quality_share: float  # share of all samples within `n_std` standard deviations of their nearest mode
    counts: list  # high-quality samples assigned to each mode (in mixture_modes' order)


def mixture_quality(samples, kind: str = "ring", *, std: float | None = None, n_std: float = 3.0,
                    min_count: int = 1) -> MixtureQuality:
    """Mode coverage and sample quality of 2-D ``samples`` (N, 2) against :func:`~began_lite.data.mixture_2d`'s ``kind``.

    The measure of the mode-collapse literature (VEEGAN, Srivastava et al. 2017, §5 "Synthetic
    datasets"; PacGAN, Lin et al. 2018, whose reference code computes the same): a sample is of
    *high quality* if it lies within three standard deviations of its nearest mode, and a mode
    is *covered* if it is the nearest mode of at least one high-quality sample. Both papers
    draw 2500 samples per trained model. ``std`` defaults to the mixture's own
    (:data:`~began_lite.data.MIXTURE_STD`); ``n_std`` and ``min_count`` (3 and 1 in the
    papers) are there for stricter variants, such as a mode counted only with 20 samples.

    Read the two numbers together: with one sample enough, a blur also "covers" modes.
    2500 points uniform on the square [-5, 5]^2 cover 22 of the 25 grid modes with 2.2% of
    high quality; 2500 points uniform on the ring's circle cover all 8 with 7.7%.
    """
    if kind not in MIXTURE_KINDS:
        raise ValueError(f"kind must be one of {MIXTURE_KINDS}, got {kind!r}")
    x = samples.detach().cpu() if isinstance(samples, torch.Tensor) else torch.as_tensor(np.asarray(samples))
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] == 0:
        raise ValueError(f"samples must be a non-empty array of 2-D points (N, 2), got shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"samples must hold numbers, got dtype {x.dtype}")
    x = x.double()
    if not torch.isfinite(x).all():
        raise ValueError("samples contains NaN or inf")
    std = MIXTURE_STD[kind] if std is None else std
    for name, v in (("std", std), ("n_std", n_std)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    modes = mixture_modes(kind).double()  # (M, 2)
    dist, nearest = torch.cdist(x, modes).min(dim=1)  # (N,), (N,): Euclidean, the components are isotropic
    high = dist < n_std * std
    counts = torch.bincount(nearest[high], minlength=len(modes))
    return MixtureQuality(int((counts >= min_count).sum()), len(modes), float(high.double().mean()),
                          counts.tolist())
