r"""Wasserstein distances: between Gaussians in closed form, and between samples exactly.

Chapter 1 of the book. For probability measures :math:`\mu_1, \mu_2` and :math:`p \ge 1`,

.. math:: W_p(\mu_1, \mu_2) = \Big(\inf_{\pi \in \Gamma(\mu_1, \mu_2)} \mathbb{E}_{(x, y) \sim \pi} \|x - y\|^p\Big)^{1/p}.

Between Gaussians :math:`N(m_1, C_1)` and :math:`N(m_2, C_2)` (Dowson & Landau 1982,
Olkin & Pukelsheim 1982, Givens & Shortt 1984):

.. math:: W_2^2 = \|m_1 - m_2\|^2 + \operatorname{tr}\big(C_1 + C_2 - 2 (C_2^{1/2} C_1 C_2^{1/2})^{1/2}\big),

which in 1-D (variances :math:`c_1, c_2`) is :math:`(m_1 - m_2)^2 + (\sqrt{c_1} - \sqrt{c_2})^2`.
The left-hand side is :math:`W_2` *squared*, and the outer square root sits on the matrix
product inside the trace: two places where explanations of BEGAN often slip.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "W2Terms", "gaussian_w2", "gaussian_w2_squared", "gaussian_w2_terms",
    "empirical_wasserstein", "empirical_w1", "empirical_w2", "jensen_bound", "sqrtm_psd",
    "gaussian_w2_by_coupling_search", "gelbrich_bound", "W2Parts", "w2_decomposition",
]

# Relative tolerances for "symmetric" and "positive semi-definite" on float64 input.
_SYM_TOL = 1e-8
_PSD_TOL = 1e-10


class W2Terms(NamedTuple):
    """The two parts of :math:`W_2^2`: ``mean`` = :math:`\\|m_1 - m_2\\|^2`, ``covariance`` = the trace term."""

    mean: float
    covariance: float

    @property
    def squared(self) -> float:
        return self.mean + self.covariance

    @property
    def distance(self) -> float:
        return float(np.sqrt(max(self.squared, 0.0)))


def _as_array(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().double().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number or an array of numbers, got {type(x).__name__}") from err
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def sqrtm_psd(C: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (by eigh)."""
    w, V = np.linalg.eigh((C + C.T) / 2)
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def _check_cov(C: np.ndarray, name: str, d: int) -> np.ndarray:
    if C.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}) to match the mean, got {C.shape}")
    scale = max(1.0, float(np.abs(C).max()))
    if not np.allclose(C, C.T, rtol=0.0, atol=_SYM_TOL * scale):
        raise ValueError(f"{name} must be symmetric (max |C - C^T| = {np.abs(C - C.T).max():.3g})")
    lo = float(np.linalg.eigvalsh(C).min())
    if lo < -_PSD_TOL * scale * d:
        raise ValueError(f"{name} must be positive semi-definite (smallest eigenvalue {lo:.3g} < 0)")
    return C


def _gaussian_args(m1, C1, m2, C2):
    m1, C1, m2, C2 = (_as_array(v, n) for v, n in ((m1, "m1"), (C1, "C1"), (m2, "m2"), (C2, "C2")))
    if m1.ndim == 0:  # 1-D: scalars, C is the variance
        for v, n in ((C1, "C1"), (m2, "m2"), (C2, "C2")):
            if v.ndim != 0:
                raise ValueError(f"m1 is a scalar (1-D case), so {n} must be a scalar too, got shape {v.shape}")
        for v, n in ((C1, "C1"), (C2, "C2")):
            if v < 0:
                raise ValueError(f"{n} is a variance and must be >= 0, got {float(v)}")
        return m1.reshape(1), C1.reshape(1, 1), m2.reshape(1), C2.reshape(1, 1)
    if m1.ndim != 1:
        raise ValueError(f"m1 must be a scalar or a vector, got shape {m1.shape}")
    d = m1.shape[0]
    if m2.shape != (d,):
        raise ValueError(f"m2 must have shape ({d},) like m1, got {m2.shape}")
    return m1, _check_cov(C1, "C1", d), m2, _check_cov(C2, "C2", d)


def gaussian_w2_terms(m1, C1, m2, C2) -> W2Terms:
    """:math:`W_2^2` between :math:`N(m_1, C_1)` and :math:`N(m_2, C_2)`, split into its mean and covariance terms.

    Scalars mean 1-D (``C`` is then the variance); vectors and matrices mean n-D.
    Accepts numbers, NumPy arrays or torch tensors; computes in float64.
    """
    m1, C1, m2, C2 = _gaussian_args(m1, C1, m2, C2)
    mean = float(np.sum((m1 - m2) ** 2))
    s2 = sqrtm_psd(C2)
    cross = np.linalg.eigvalsh(s2 @ C1 @ s2)  # eigenvalues of C2^{1/2} C1 C2^{1/2}, all >= 0
    cov = float(np.trace(C1) + np.trace(C2) - 2.0 * np.sum(np.sqrt(np.clip(cross, 0.0, None))))
    return W2Terms(mean, max(cov, 0.0))  # cov >= 0 in exact arithmetic; clip rounding noise


def gaussian_w2_squared(m1, C1, m2, C2) -> float:
    """:math:`W_2^2 = \\|m_1 - m_2\\|^2 + \\operatorname{tr}(C_1 + C_2 - 2 (C_2^{1/2} C_1 C_2^{1/2})^{1/2})`."""
    return gaussian_w2_terms(m1, C1, m2, C2).squared


def gaussian_w2(m1, C1, m2, C2) -> float:
    """:math:`W_2` (not squared) between :math:`N(m_1, C_1)` and :math:`N(m_2, C_2)`.

    1-D: ``gaussian_w2(m1, c1, m2, c2)`` with variances ``c1, c2`` gives
    :math:`\\sqrt{(m_1 - m_2)^2 + (\\sqrt{c_1} - \\sqrt{c_2})^2}`.
    """
    return gaussian_w2_terms(m1, C1, m2, C2).distance


# --------------------------------------------------------------------------- samples
def _samples(x, name: str) -> np.ndarray:
    a = _as_array(x, name)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty array of shape (n,) or (n, d), got shape {a.shape}")
    return a


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _samples(x, "x"), _samples(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    return x, y


def _quantile_wasserstein_1d(x: np.ndarray, y: np.ndarray, p: float) -> float:
    """Exact :math:`W_p^p` between two 1-D empirical measures: integrate |F^{-1}(u) - G^{-1}(u)|^p over u."""
    x, y = np.sort(x), np.sort(y)
    if x.size == y.size:  # the optimal plan pairs the i-th smallest with the i-th smallest
        return float(np.mean(np.abs(x - y) ** p))
    # Unequal sizes: both quantile functions are step functions; merge their breakpoints.
    u = np.union1d(np.arange(1, x.size + 1) / x.size, np.arange(1, y.size + 1) / y.size)
    widths = np.diff(np.concatenate(([0.0], u)))
    mid = u - widths / 2
    qx = x[np.minimum((mid * x.size).astype(int), x.size - 1)]
    qy = y[np.minimum((mid * y.size).astype(int), y.size - 1)]
    return float(np.sum(widths * np.abs(qx - qy) ** p))


def empirical_wasserstein(x, y, p: float = 2.0, max_assignment: int = 3000) -> float:
    """Exact :math:`W_p` between the empirical measures of samples ``x`` and ``y``.

    1-D (shape ``(n,)`` or ``(n, 1)``): by sorting (any sizes). n-D (shape ``(n, d)``):
    by an exact assignment (``scipy.optimize.linear_sum_assignment``) on the
    :math:`n \\times n` cost matrix :math:`\\|x_i - y_j\\|^p`, which needs equal sizes and
    ``n <= max_assignment`` (memory and time grow as n^2 and n^3).
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not (p >= 1 and np.isfinite(p)):
        raise ValueError(f"p must be a finite number >= 1, got {p!r}")
    x, y = _pair(x, y)
    if x.shape[1] == 1:
        return _quantile_wasserstein_1d(x[:, 0], y[:, 0], p) ** (1.0 / p)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have equal sizes for the n-D exact assignment, got {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] > max_assignment:
        raise ValueError(f"x has {x.shape[0]} samples; the exact assignment allows at most max_assignment={max_assignment}")
    cost = np.linalg.norm(x[:, None, :] - y[None, :, :], axis=-1) ** p  # (n, n)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean() ** (1.0 / p))


def empirical_w1(x, y, **kw) -> float:
    """:math:`W_1` between the empirical measures of ``x`` and ``y`` (see :func:`empirical_wasserstein`)."""
    return empirical_wasserstein(x, y, p=1.0, **kw)


def empirical_w2(x, y, **kw) -> float:
    """:math:`W_2` between the empirical measures of ``x`` and ``y`` (see :func:`empirical_wasserstein`)."""
    return empirical_wasserstein(x, y, p=2.0, **kw)


def jensen_bound(x, y) -> float:
    r"""The lower bound :math:`W_1(\mu_1, \mu_2) \ge \|\mathbb{E}[x] - \mathbb{E}[y]\|` (Jensen), from samples.

    It holds for any two distributions with finite means (no normality needed): for every
    coupling :math:`\pi`, :math:`\mathbb{E}_\pi\|x - y\| \ge \|\mathbb{E}_\pi[x - y]\| = \|m_1 - m_2\|`.
    BEGAN's objective uses exactly this bound on the distributions of autoencoder losses.
    """
    x, y = _pair(x, y)
    return float(np.linalg.norm(x.mean(0) - y.mean(0)))


def gelbrich_bound(x, y) -> float:
    r"""Gelbrich's lower bound on :math:`W_2`: the Gaussian closed form at two samples' moments.

    :math:`W_2^2 \ge \|m_1 - m_2\|^2 + \operatorname{tr}(C_1 + C_2 - 2 (C_2^{1/2} C_1 C_2^{1/2})^{1/2})`
    for *any* two distributions with finite second moments (Gelbrich 1990): every coupling costs
    :math:`\|m_1 - m_2\|^2 + \operatorname{tr} C_1 + \operatorname{tr} C_2 - 2 \operatorname{tr} K`
    for a cross-covariance :math:`K`, and the Gaussian closed form takes the largest admissible
    :math:`\operatorname{tr} K`. 1-D: :math:`(m_1 - m_2)^2 + (\sigma_1 - \sigma_2)^2 \le W_2^2`, ddof=0.
    """
    x, y = _pair(x, y)
    cov = [np.atleast_2d(np.cov(v, rowvar=False, ddof=0)) for v in (x, y)]
    return gaussian_w2_terms(x.mean(0), cov[0], y.mean(0), cov[1]).distance


class W2Parts(NamedTuple):
    """1-D :math:`W_2^2` = mean + spread + shape (:func:`w2_decomposition`); ``gelbrich``: all but shape."""
    mean: float
    spread: float
    shape: float

    @property
    def squared(self) -> float:
        return self.mean + self.spread + self.shape

    @property
    def gelbrich(self) -> float:
        return self.mean + self.spread


def w2_decomposition(x, y) -> W2Parts:
    r"""Split :math:`W_2^2` between two 1-D samples into a mean, a spread and a shape term.

    .. math:: W_2^2 = (m_1 - m_2)^2 + (\sigma_1 - \sigma_2)^2 + \sigma_1 \sigma_2\,
              W_2^2\big(\tfrac{x - m_1}{\sigma_1}, \tfrac{y - m_2}{\sigma_2}\big).

    The 1-D optimal plan pairs quantiles :math:`F_i^{-1} = m_i + \sigma_i Z_i` (:math:`Z_i`
    standardised); expand :math:`\int (F_1^{-1} - F_2^{-1})^2` with :math:`\int (Z_1 - Z_2)^2 =
    2 - 2 \int Z_1 Z_2`. The first two terms are Gelbrich's bound (:func:`gelbrich_bound`); the
    third is zero exactly when the two have one shape up to location and scale (both normal, ...).
    """
    x, y = _pair(x, y)
    if x.shape[1] != 1:
        raise ValueError(f"x and y must be 1-D samples, got dimension {x.shape[1]}")
    x, y = x[:, 0], y[:, 0]
    s1, s2 = x.std(), y.std()
    if not (s1 > 0 and s2 > 0):
        raise ValueError(f"x and y must each have a spread > 0 (a shape needs one), got std {s1} and {s2}")
    shape = empirical_w2((x - x.mean()) / s1, (y - y.mean()) / s2) ** 2
    return W2Parts(float((x.mean() - y.mean()) ** 2), float((s1 - s2) ** 2), float(s1 * s2 * shape))


def gaussian_w2_by_coupling_search(m1, C1, m2, C2, restarts: int = 8, seed: int = 0):
    r"""W2 between Gaussians by brute-force search over couplings: a slow, independent check.

    For any coupling of :math:`x \sim N(m_1, C_1)` and :math:`y \sim N(m_2, C_2)` with
    cross-covariance :math:`K`, :math:`\mathbb{E}\|x - y\|^2 = \|m_1 - m_2\|^2 + \operatorname{tr} C_1
    + \operatorname{tr} C_2 - 2 \operatorname{tr} K`, so :math:`W_2^2` needs the largest
    :math:`\operatorname{tr} K` that a joint covariance allows. Every admissible :math:`K` is
    :math:`C_1^{1/2} R\, C_2^{1/2}` with :math:`\|R\|_2 \le 1`; a linear function is largest on
    the extreme points, the orthogonal matrices. So we maximise over :math:`R = e^{A}`
    (:math:`A` skew-symmetric, and its reflection) with BFGS from several random starts.
    No matrix square root of a product and no closed form are used.

    Returns ``(w2, joint)``: the distance and the optimal joint covariance (2d x 2d).
    """
    from scipy.linalg import expm
    from scipy.optimize import minimize

    m1, C1, m2, C2 = _gaussian_args(m1, C1, m2, C2)
    d = m1.shape[0]
    s1, s2 = sqrtm_psd(C1), sqrtm_psd(C2)
    iu = np.triu_indices(d, 1)
    flip = np.eye(d)
    flip[0, 0] = -1.0  # the other connected component of O(d)

    def rotation(a, reflect):
        A = np.zeros((d, d))
        A[iu] = a
        R = expm(A - A.T)
        return R @ flip if reflect else R

    def neg_trace(a, reflect):
        return -np.trace(s1 @ rotation(a, reflect) @ s2)

    rng = np.random.default_rng(seed)
    best, best_R = -np.inf, np.eye(d)
    for r in range(restarts):
        reflect = bool(r % 2)
        a0 = rng.normal(scale=np.pi, size=len(iu[0]))
        if len(a0) == 0:  # d == 1: R is +1 or -1
            R = flip if reflect else np.eye(1)
            val = np.trace(s1 @ R @ s2)
        else:
            res = minimize(neg_trace, a0, args=(reflect,), method="BFGS", options={"gtol": 1e-9})
            R, val = rotation(res.x, reflect), -res.fun
        if val > best:
            best, best_R = val, R
    K = s1 @ best_R @ s2
    joint = np.block([[C1, K], [K.T, C2]])
    w2sq = float(np.sum((m1 - m2) ** 2) + np.trace(C1) + np.trace(C2) - 2 * best)
    return float(np.sqrt(max(w2sq, 0.0))), joint
