"""Measurements the chapters report: normality of loss distributions (chapter 2).

The evaluator for generated images (classifier features, Frechet distance, mode
coverage) joins this module in chapter 7.
"""
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


def normality_stats(samples) -> NormalityStats:
    """Moments and two normality tests of a 1-D sample (at least 20 finite values)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
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
    s_pix = float(stats.skew(np.asarray(pixel_values, dtype=np.float64).ravel()))
    s_img = float(stats.skew(np.asarray(image_values, dtype=np.float64).ravel()))
    if s_img == 0 or np.sign(s_img) != np.sign(s_pix):
        return float("nan")
    return (s_pix / s_img) ** 2


# --------------------------------------------------------------------------- the digit evaluator
import torch  # noqa: E402
from torch import nn  # noqa: E402

from .wasserstein import gaussian_w2_squared  # noqa: E402

__all__ += ["DigitClassifier", "train_digit_classifier", "digit_probabilities", "digit_features",
            "frechet_distance", "mode_coverage", "CoverageReport", "evaluate_digits"]


class DigitClassifier(nn.Module):
    """A small MLP on 8x8 digits in [-1, 1]: 64 -> 256 -> 64 (features) -> 10 classes."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ELU(), nn.Linear(256, 64), nn.ELU())
        self.head = nn.Linear(64, 10)

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """Any (N, 1, S, S) digits in [-1, 1] -> (N, 1, 8, 8), by the same resize the data uses."""
        from .data import resize

        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be a tensor (N, 1, S, S), got {getattr(images, 'shape', type(images).__name__)}")
        return resize(images.float().cpu().clamp(-1, 1), 8)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def train_digit_classifier(seed: int = 0, epochs: int = 60, held_out: int = 500):
    """Train :class:`DigitClassifier` on the real digits (all but ``held_out``, a seeded split).

    Returns ``(model, held_out_accuracy)``. A few seconds on a CPU; deterministic for a seed.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: one thread is fastest, and immune to oversubscription
    try:
        return _train_classifier(seed, epochs, held_out)
    finally:
        torch.set_num_threads(threads)


def _train_classifier(seed: int, epochs: int, held_out: int):
    from .data import load_digits

    x, y = load_digits(8, return_labels=True)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    tr, te = perm[held_out:], perm[:held_out]
    torch.manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(epochs):
        for idx in tr[torch.randperm(len(tr), generator=g)].split(64):
            xb = x[idx] + 0.1 * torch.randn(x[idx].shape, generator=g)  # mild noise: robustness to generated strokes
            loss = nn.functional.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x[te]).argmax(1) == y[te]).float().mean().item()
    return model, acc


@torch.no_grad()
def digit_probabilities(model: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
    return torch.softmax(model(images), dim=1)


@torch.no_grad()
def digit_features(model: DigitClassifier, images: torch.Tensor) -> torch.Tensor:
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


class CoverageReport(NamedTuple):
    counts: list  # samples assigned to each class
    classes_covered: int  # classes with at least `min_share` of the confident samples
    confident_share: float  # share of samples with top probability >= threshold
    kl_from_uniform: float  # KL(class histogram || uniform), in nats; 0 = perfectly balanced
    max_share: float  # share of the most common class


def mode_coverage(probs, threshold: float = 0.9, min_share: float = 0.02) -> CoverageReport:
    """Classes the classifier assigns to samples, their balance, and the share of confident samples."""
    p = torch.as_tensor(probs, dtype=torch.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs must be a non-empty (N, classes) array, got shape {tuple(p.shape)}")
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
    from .data import load_digits

    if classifier is None:
        classifier, _ = train_digit_classifier()
    if real is None:  # the real digits at the same size, so both pass through the same resizes
        real = load_digits(images.shape[-1])
    rep = mode_coverage(digit_probabilities(classifier, images))
    fd = frechet_distance(digit_features(classifier, real), digit_features(classifier, images))
    return {"frechet": fd, **rep._asdict()}
