"""Wasserstein distances (chapter 1): every formula against an independent computation."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy import integrate, optimize, stats

from began_lite.wasserstein import (
    empirical_w1, empirical_w2, empirical_wasserstein, gaussian_w2, gaussian_w2_by_coupling_search,
    gaussian_w2_squared, gaussian_w2_terms, gelbrich_bound, jensen_bound, sqrtm_psd, w2_decomposition,
)


def random_spd(rng: np.random.Generator, d: int, floor: float = 0.1) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + floor * np.eye(d)


def random_gaussian(rng: np.random.Generator, d: int):
    return rng.normal(size=d), random_spd(rng, d)


def w2_by_nuclear_norm(m1, C1, m2, C2) -> float:
    """W2 via tr((C2^{1/2} C1 C2^{1/2})^{1/2}) = ||C1^{1/2} C2^{1/2}||_* (scipy sqrtm + numpy SVD)."""
    s1 = np.real(scipy.linalg.sqrtm(C1))
    s2 = np.real(scipy.linalg.sqrtm(C2))
    nuclear = np.linalg.svd(s1 @ s2, compute_uv=False).sum()
    w2sq = np.sum((m1 - m2) ** 2) + np.trace(C1) + np.trace(C2) - 2 * nuclear
    return math.sqrt(max(w2sq, 0.0))


# --------------------------------------------------------------------------- 1-D closed form
@pytest.mark.parametrize("m1, v1, m2, v2", [
    (0.0, 1.0, 3.0, 1.0),
    (0.0, 1.0, 0.0, 4.0),
    (-1.5, 0.3, 2.0, 2.5),
    (4.0, 9.0, 4.5, 0.04),
])
def test_1d_closed_form_matches_quantile_integral(m1, v1, m2, v2):
    # W2^2 = int_0^1 (F1^{-1}(u) - F2^{-1}(u))^2 du for 1-D measures, with F^{-1} the normal ppf.
    def integrand(u):
        return (stats.norm.ppf(u, m1, math.sqrt(v1)) - stats.norm.ppf(u, m2, math.sqrt(v2))) ** 2

    value = sum(integrate.quad(integrand, a, b, epsabs=0.0, epsrel=1e-11, limit=200)[0]
                for a, b in ((0.0, 0.5), (0.5, 1.0)))
    assert gaussian_w2_squared(m1, v1, m2, v2) == pytest.approx(value, rel=1e-6)
    assert gaussian_w2(m1, v1, m2, v2) == pytest.approx(math.sqrt(value), rel=1e-6)


def test_returns_w2_not_its_square():
    # N(0, 1) vs N(3, 1): a pure shift by 3.
    assert gaussian_w2(0.0, 1.0, 3.0, 1.0) == pytest.approx(3.0, abs=1e-12)
    assert gaussian_w2_squared(0.0, 1.0, 3.0, 1.0) == pytest.approx(9.0, abs=1e-12)


def test_1d_c_is_a_variance_not_a_standard_deviation():
    # N(0, 1) vs N(0, 4): standard deviations 1 and 2, so W2 = |1 - 2| = 1 (not |1 - 4| = 3).
    assert gaussian_w2(0.0, 1.0, 0.0, 4.0) == pytest.approx(1.0, abs=1e-12)


def test_terms_split_mean_and_covariance():
    t = gaussian_w2_terms(1.0, 4.0, -2.0, 1.0)  # (1 - (-2))^2 = 9, (2 - 1)^2 = 1
    assert t.mean == pytest.approx(9.0, abs=1e-12)
    assert t.covariance == pytest.approx(1.0, abs=1e-12)
    assert t.squared == pytest.approx(10.0, abs=1e-12)
    assert t.distance == pytest.approx(math.sqrt(10.0), abs=1e-12)


# --------------------------------------------------------------------------- n-D closed form
# Inputs for which the (slow) coupling search converges quickly; it is an independent check,
# so each case is one fixed draw per dimension.
SEARCH_CASES = [(2, 0), (3, 1), (4, 1)]


@pytest.mark.parametrize("d, seed", SEARCH_CASES)
def test_nd_closed_form_matches_coupling_search(d, seed):
    rng = np.random.default_rng([d, seed])
    m1, C1 = random_gaussian(rng, d)
    m2, C2 = random_gaussian(rng, d)
    w_search, joint = gaussian_w2_by_coupling_search(m1, C1, m2, C2, restarts=2)
    assert gaussian_w2(m1, C1, m2, C2) == pytest.approx(w_search, rel=1e-4)
    # The joint covariance it returns is a valid coupling with the right marginals ...
    assert np.linalg.eigvalsh(joint).min() > -1e-8
    np.testing.assert_allclose(joint[:d, :d], C1, atol=1e-12)
    np.testing.assert_allclose(joint[d:, d:], C2, atol=1e-12)
    # ... whose cost E||x - y||^2 = |dm|^2 + tr C1 + tr C2 - 2 tr K is the closed-form W2^2.
    K = joint[:d, d:]
    cost = np.sum((m1 - m2) ** 2) + np.trace(C1) + np.trace(C2) - 2 * np.trace(K)
    assert cost == pytest.approx(gaussian_w2_squared(m1, C1, m2, C2), rel=1e-6)


def test_coupling_search_1d():
    w, joint = gaussian_w2_by_coupling_search(1.0, 4.0, -1.0, 1.0)
    assert w == pytest.approx(math.sqrt(4.0 + 1.0), abs=1e-12)  # (1 - (-1))^2 + (2 - 1)^2
    np.testing.assert_allclose(joint, [[4.0, 2.0], [2.0, 1.0]], atol=1e-12)  # perfectly correlated


@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("seed", range(3))
def test_nd_closed_form_matches_nuclear_norm_identity(d, seed):
    rng = np.random.default_rng([10, d, seed])
    m1, C1 = random_gaussian(rng, d)
    m2, C2 = random_gaussian(rng, d)
    assert gaussian_w2(m1, C1, m2, C2) == pytest.approx(w2_by_nuclear_norm(m1, C1, m2, C2), rel=1e-8)


def test_singular_non_commuting_case_by_hand():
    # x = a e1 (variance 1 on the x-axis), y = b u with u = (1, 1)/sqrt 2 (variance 1 on the diagonal).
    # E||x - y||^2 = 2 - 2 corr(a, b) (e1 . u) is smallest at corr = 1: W2^2 = 2 - sqrt 2.
    C1 = np.diag([1.0, 0.0])
    C2 = np.full((2, 2), 0.5)
    assert gaussian_w2_squared(np.zeros(2), C1, np.zeros(2), C2) == pytest.approx(2 - math.sqrt(2), abs=1e-12)
    # The common slip tr(C1 + C2 - 2 C1^{1/2} C2^{1/2}) gives 2 - 2 * 0.5 = 1 here.
    assert gaussian_w2_squared(np.zeros(2), C1, np.zeros(2), C2) != pytest.approx(1.0, abs=1e-3)
    w_search, _ = gaussian_w2_by_coupling_search(np.zeros(2), C1, np.zeros(2), C2, restarts=2)
    assert w_search == pytest.approx(math.sqrt(2 - math.sqrt(2)), rel=1e-6)


def test_nd_is_at_most_the_product_of_roots_formula():
    # tr((C2^{1/2} C1 C2^{1/2})^{1/2}) = ||C1^{1/2} C2^{1/2}||_* >= tr(C1^{1/2} C2^{1/2}),
    # with equality only when they commute: the closed form must use the former.
    rng = np.random.default_rng(7)
    C1, C2 = random_spd(rng, 3), random_spd(rng, 3)
    wrong = np.trace(C1) + np.trace(C2) - 2 * np.trace(sqrtm_psd(C1) @ sqrtm_psd(C2))
    right = gaussian_w2_squared(np.zeros(3), C1, np.zeros(3), C2)
    assert right < wrong - 1e-3


def test_equal_distributions_give_zero():
    rng = np.random.default_rng(1)
    m, C = random_gaussian(rng, 4)
    assert gaussian_w2(m, C, m, C) == pytest.approx(0.0, abs=1e-6)
    assert gaussian_w2(2.0, 3.0, 2.0, 3.0) == 0.0


def test_commuting_covariances_reduce_to_sum_of_1d_terms():
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    by_hand = sum((a - b) ** 2 + (math.sqrt(c) - math.sqrt(e)) ** 2 for a, b, c, e in zip(m1, m2, v1, v2))
    # (1 + 4) + (0 + 1) + (6.25 + 0) = 12.25
    assert by_hand == pytest.approx(12.25)
    assert gaussian_w2_squared(m1, np.diag(v1), m2, np.diag(v2)) == pytest.approx(12.25, abs=1e-12)
    assert gaussian_w2(m1, np.diag(v1), m2, np.diag(v2)) == pytest.approx(3.5, abs=1e-12)


def test_pure_shift_gives_distance_between_means():
    rng = np.random.default_rng(2)
    m1, C = random_gaussian(rng, 3)
    m2 = m1 + np.array([3.0, 0.0, -4.0])
    assert gaussian_w2(m1, C, m2, C) == pytest.approx(5.0, rel=1e-9)


def test_symmetry():
    rng = np.random.default_rng(3)
    (m1, C1), (m2, C2) = random_gaussian(rng, 3), random_gaussian(rng, 3)
    assert gaussian_w2(m1, C1, m2, C2) == pytest.approx(gaussian_w2(m2, C2, m1, C1), rel=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_triangle_inequality(seed):
    rng = np.random.default_rng([20, seed])
    a, b, c = (random_gaussian(rng, 3) for _ in range(3))
    ab, bc, ac = gaussian_w2(*a, *b), gaussian_w2(*b, *c), gaussian_w2(*a, *c)
    assert ac <= ab + bc + 1e-10
    assert ab <= ac + bc + 1e-10
    assert bc <= ab + ac + 1e-10


@pytest.mark.parametrize("s", [0.5, 3.0])
def test_scaling(s):
    # x -> s x maps N(m, C) to N(s m, s^2 C), and W2 scales by s.
    rng = np.random.default_rng(4)
    (m1, C1), (m2, C2) = random_gaussian(rng, 3), random_gaussian(rng, 3)
    assert gaussian_w2(s * m1, s * s * C1, s * m2, s * s * C2) == pytest.approx(s * gaussian_w2(m1, C1, m2, C2),
                                                                                rel=1e-9)


def test_torch_inputs_match_numpy():
    rng = np.random.default_rng(5)
    (m1, C1), (m2, C2) = random_gaussian(rng, 3), random_gaussian(rng, 3)
    tensors = [torch.from_numpy(a) for a in (m1, C1, m2, C2)]
    assert gaussian_w2(*tensors) == pytest.approx(gaussian_w2(m1, C1, m2, C2), rel=1e-12)
    assert gaussian_w2(torch.tensor(0.0), torch.tensor(1.0), torch.tensor(3.0), torch.tensor(1.0)) == pytest.approx(3.0)


# --------------------------------------------------------------------------- sqrtm_psd
def test_sqrtm_psd_matches_scipy_and_squares_back():
    rng = np.random.default_rng(6)
    C = random_spd(rng, 4)
    S = sqrtm_psd(C)
    np.testing.assert_allclose(S, S.T, atol=1e-12)
    np.testing.assert_allclose(S @ S, C, atol=1e-10)
    np.testing.assert_allclose(S, np.real(scipy.linalg.sqrtm(C)), atol=1e-9)
    assert np.linalg.eigvalsh(S).min() > 0


def test_sqrtm_psd_singular_by_hand():
    # A projector is its own square root; diag(4, 0) has root diag(2, 0).
    P = np.full((2, 2), 0.5)
    np.testing.assert_allclose(sqrtm_psd(P), P, atol=1e-12)
    np.testing.assert_allclose(sqrtm_psd(np.diag([4.0, 0.0])), np.diag([2.0, 0.0]), atol=1e-12)


# --------------------------------------------------------------------------- empirical
@pytest.mark.parametrize("n, m", [(50, 50), (37, 80), (7, 3)])
def test_empirical_w1_1d_matches_scipy(n, m):
    rng = np.random.default_rng([n, m])
    x, y = rng.normal(size=n), rng.exponential(size=m) + 0.3
    assert empirical_w1(x, y) == pytest.approx(stats.wasserstein_distance(x, y), abs=1e-10, rel=1e-10)


def brute_force_1d_by_replication(x, y, p):
    """Repeat each point of x L/n times and of y L/m times (L = lcm(n, m)): the same measures,
    now with equal sizes, where sorted matching is optimal."""
    L = math.lcm(len(x), len(y))
    xr = np.sort(np.repeat(x, L // len(x)))
    yr = np.sort(np.repeat(y, L // len(y)))
    return float(np.mean(np.abs(xr - yr) ** p) ** (1 / p))


@pytest.mark.parametrize("n, m", [(4, 6), (5, 7), (12, 9), (1, 5)])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_empirical_1d_unequal_sizes_matches_replication(n, m, p):
    rng = np.random.default_rng([n, m, int(p)])
    x, y = rng.normal(size=n), rng.uniform(-1, 3, size=m)
    assert empirical_wasserstein(x, y, p=p) == pytest.approx(brute_force_1d_by_replication(x, y, p), rel=1e-10)


def test_empirical_w2_1d_unequal_sizes_matches_linear_program():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=4), rng.normal(1.0, 2.0, size=6)
    n, m = len(x), len(y)
    cost = (x[:, None] - y[None, :]) ** 2  # (n, m)
    # Plan pi >= 0 with row sums 1/n and column sums 1/m.
    A_eq = np.vstack([np.kron(np.eye(n), np.ones(m)), np.kron(np.ones(n), np.eye(m))])
    b_eq = np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)])
    res = optimize.linprog(cost.ravel(), A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    assert res.success
    assert empirical_w2(x, y) == pytest.approx(math.sqrt(res.fun), rel=1e-7)


@pytest.mark.parametrize("n", [2, 5, 6])
@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_empirical_nd_matches_all_permutations(n, d, p):
    rng = np.random.default_rng([n, d, int(p)])
    x, y = rng.normal(size=(n, d)), rng.normal(0.5, 1.5, size=(n, d))
    cost = np.linalg.norm(x[:, None, :] - y[None, :, :], axis=-1) ** p
    best = min(np.mean(cost[np.arange(n), list(perm)]) for perm in itertools.permutations(range(n)))
    assert empirical_wasserstein(x, y, p=p) == pytest.approx(best ** (1 / p), rel=1e-12)


def test_empirical_accepts_torch_and_column_vectors():
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=30), rng.normal(size=20)
    expected = empirical_w2(x, y)
    assert empirical_w2(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(expected, rel=1e-12)
    assert empirical_w2(torch.from_numpy(x).float(), torch.from_numpy(y).float()) == pytest.approx(expected, rel=1e-6)
    assert empirical_w2(x[:, None], y[:, None]) == pytest.approx(expected, rel=1e-12)
    xy = torch.from_numpy(rng.normal(size=(6, 2)))
    assert empirical_w1(xy, xy + torch.tensor([3.0, 4.0], dtype=torch.float64)) == pytest.approx(5.0, rel=1e-12)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_empirical_1d_shift(p):
    # Shifting a sample by c moves every quantile by c: W_p = |c| for every p.
    x = np.random.default_rng(10).normal(size=25)
    assert empirical_wasserstein(x, x - 2.5, p=p) == pytest.approx(2.5, rel=1e-12)
    assert empirical_wasserstein(x, x, p=p) == 0.0


def test_empirical_by_hand():
    # {0, 1} vs {0, 0, 3}: quantiles on (0,1/3], (1/3,1/2], (1/2,2/3], (2/3,1] are
    # (0,0), (0,0), (1,0), (1,3): W1 = 1/6 + 2/3 = 5/6, W2^2 = 1/6 + 4/3 = 3/2.
    assert empirical_w1([0.0, 1.0], [0.0, 0.0, 3.0]) == pytest.approx(5 / 6, rel=1e-12)
    assert empirical_w2([0.0, 1.0], [0.0, 0.0, 3.0]) == pytest.approx(math.sqrt(1.5), rel=1e-12)


# --------------------------------------------------------------------------- Jensen bound
def test_jensen_bound_by_hand():
    assert jensen_bound([0.0, 2.0], [1.0, 5.0]) == pytest.approx(2.0)  # |1 - 3|
    assert jensen_bound([[0.0, 0.0], [2.0, 2.0]], [[3.0, 5.0], [5.0, 5.0]]) == pytest.approx(5.0)  # |(1,1)-(4,5)|


@pytest.mark.parametrize("seed", range(4))
def test_jensen_bound_below_empirical_w1(seed):
    rng = np.random.default_rng([30, seed])
    x1, y1 = rng.exponential(size=200), rng.uniform(0.0, 2.5, size=150)
    assert jensen_bound(x1, y1) <= empirical_w1(x1, y1) + 1e-12
    x2 = rng.exponential(size=(60, 2))
    y2 = np.stack([rng.uniform(-1, 2, 60), rng.laplace(0.5, 1.0, 60)], axis=1)
    assert jensen_bound(x2, y2) <= empirical_w1(x2, y2) + 1e-12


# --------------------------------------------------------------------------- Gelbrich's bound
def skewed_sample(rng: np.random.Generator, n: int) -> np.ndarray:
    """n draws of one of seven non-normal shapes, at a random location and scale."""
    kind = rng.integers(7)
    x = [lambda: rng.lognormal(0.0, rng.uniform(0.2, 1.5), n), lambda: rng.exponential(size=n),
         lambda: rng.gamma(rng.uniform(0.3, 3.0), size=n), lambda: rng.pareto(rng.uniform(2.5, 6.0), n),
         lambda: rng.uniform(size=n), lambda: rng.beta(0.3, 0.3, n),
         lambda: np.where(rng.random(n) < 0.8, rng.normal(0, 1, n), rng.normal(4, 0.5, n))][kind]()
    return rng.normal() + rng.uniform(0.1, 3.0) * x


def test_gelbrich_bound_below_w2_on_2000_skewed_pairs():
    # (m1 - m2)^2 + (s1 - s2)^2 <= W2^2 for any two distributions; W2 here by two routes, sorting
    # (any sizes) and, for equal sizes, an exact assignment that knows nothing of sorting.
    rng = np.random.default_rng(40)
    margins = []
    for i in range(2000):
        x, y = skewed_sample(rng, 30), skewed_sample(rng, 30 if i % 2 else 45)
        w2 = empirical_w2(x, y)
        if i % 2:
            cost = (x[:, None] - y[None, :]) ** 2
            rows, cols = optimize.linear_sum_assignment(cost)
            assert w2 == pytest.approx(math.sqrt(cost[rows, cols].mean()), rel=1e-9)
        bound = gelbrich_bound(x, y)
        assert bound == pytest.approx(math.hypot(x.mean() - y.mean(), x.std() - y.std()), rel=1e-12)
        margins.append(w2**2 - bound**2)
    assert min(margins) >= -1e-12
    assert np.median(margins) > 1e-3  # different shapes: the bound is strict, not an identity


def test_gelbrich_bound_is_w2_for_a_location_scale_copy():
    rng = np.random.default_rng(41)
    x = rng.lognormal(0.0, 1.0, 500)  # skewness about 6: far from normal
    assert gelbrich_bound(x, 2.5 * x + 1.0) == pytest.approx(empirical_w2(x, 2.5 * x + 1.0), rel=1e-12)
    assert w2_decomposition(x, 2.5 * x + 1.0).shape == pytest.approx(0.0, abs=1e-12)
    # A mirror image is no location-scale copy: the bound is strict.
    assert gelbrich_bound(x, -x) < 0.9 * empirical_w2(x, -x)


def test_gelbrich_bound_nd_below_assignment_and_tight_for_an_spd_map():
    rng = np.random.default_rng(42)
    x = np.stack([rng.exponential(size=80), rng.beta(0.3, 0.3, 80)], axis=1)
    y = np.stack([rng.uniform(-1, 2, 80), rng.laplace(0.5, 1.0, 80)], axis=1)
    assert gelbrich_bound(x, y) <= empirical_w2(x, y) + 1e-12
    # y = A x + b with A symmetric positive definite is the gradient of a convex function, so it
    # is the optimal map, and the Gaussian closed form at the sample moments is exact.
    A = random_spd(rng, 2)
    z = x @ A + np.array([1.0, -2.0])
    assert gelbrich_bound(x, z) == pytest.approx(empirical_w2(x, z), rel=1e-9)


def test_w2_decomposition_by_hand():
    # x = {-1, 1}; y = {-1, -1, 2}: mean 0 both, spreads 1 and sqrt 2. Pairing quantiles:
    # W2^2 = 4 / 6 + 1 / 3 = 1 = 0 + (sqrt 2 - 1)^2 + (2 sqrt 2 - 2).
    parts = w2_decomposition([-1.0, 1.0], [-1.0, -1.0, 2.0])
    assert parts.mean == pytest.approx(0.0, abs=1e-15)
    assert parts.spread == pytest.approx((math.sqrt(2) - 1) ** 2, rel=1e-12)
    assert parts.shape == pytest.approx(2 * math.sqrt(2) - 2, rel=1e-12)
    assert parts.squared == pytest.approx(1.0, rel=1e-12)
    assert parts.gelbrich == pytest.approx(gelbrich_bound([-1.0, 1.0], [-1.0, -1.0, 2.0]) ** 2, rel=1e-12)


@pytest.mark.parametrize("d1, d2", [
    (stats.expon(), stats.norm(0.5, 2.0)),
    (stats.lognorm(0.5), stats.uniform(0, 3)),
    (stats.gamma(2.0), stats.gumbel_l(1.0, 0.5)),
])
def test_w2_decomposition_against_quadrature(d1, d2):
    # Each term of the distributions themselves, by quadrature of their quantile functions.
    def quad(f):
        return sum(integrate.quad(f, a, b, limit=400, epsabs=1e-12)[0] for a, b in ((0, 0.5), (0.5, 1)))

    s1, s2 = d1.std(), d2.std()
    w2sq = quad(lambda u: (d1.ppf(u) - d2.ppf(u)) ** 2)
    shape = s1 * s2 * quad(lambda u: ((d1.ppf(u) - d1.mean()) / s1 - (d2.ppf(u) - d2.mean()) / s2) ** 2)
    mean, spread = (d1.mean() - d2.mean()) ** 2, (s1 - s2) ** 2
    assert mean + spread + shape == pytest.approx(w2sq, rel=1e-6)  # the identity, independently
    assert shape > 0.01 * w2sq  # these shapes differ: the bound is strict
    rng = np.random.default_rng(43)
    parts = w2_decomposition(d1.rvs(400_000, random_state=rng), d2.rvs(400_000, random_state=rng))
    assert parts.squared == pytest.approx(w2sq, rel=0.02)
    assert parts.shape == pytest.approx(shape, rel=0.05)
    assert parts.gelbrich == pytest.approx(mean + spread, rel=0.02)


@pytest.mark.parametrize("fn, x, y, pattern", [
    pytest.param(gelbrich_bound, np.zeros((3, 2)), np.zeros((3, 3)), r"x and y.*dimension", id="gelbrich-dims"),
    pytest.param(gelbrich_bound, [], [1.0], r"^x\b", id="gelbrich-x-empty"),
    pytest.param(w2_decomposition, np.zeros((3, 2)), np.zeros((3, 2)), r"1-D", id="decomposition-2d"),
    pytest.param(w2_decomposition, [1.0, 1.0], [0.0, 2.0], r"spread > 0", id="decomposition-constant-x"),
    pytest.param(w2_decomposition, [1.0, 3.0], [np.nan, 2.0], r"^y\b.*NaN", id="decomposition-y-nan"),
])
def test_gelbrich_and_decomposition_bad_inputs(fn, x, y, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(x, y)


# --------------------------------------------------------------------------- bad inputs
I2 = np.eye(2)
Z2 = np.zeros(2)
NAN_C = np.array([[1.0, np.nan], [np.nan, 1.0]])
INF_C = np.array([[np.inf, 0.0], [0.0, 1.0]])

GAUSSIAN_BAD = [
    pytest.param((Z2, [[1.0, 0.5], [0.0, 1.0]], Z2, I2), r"\bC1\b.*symmetric", id="C1-not-symmetric"),
    pytest.param((Z2, I2, Z2, [[1.0, 0.0], [0.3, 1.0]]), r"\bC2\b.*symmetric", id="C2-not-symmetric"),
    pytest.param((Z2, I2, Z2, [[1.0, 2.0], [2.0, 1.0]]), r"\bC2\b.*positive semi-definite", id="C2-not-psd"),
    pytest.param((Z2, -I2, Z2, I2), r"\bC1\b.*positive semi-definite", id="C1-negative-definite"),
    pytest.param((Z2, I2, np.zeros(3), I2), r"\bm2\b", id="m2-vs-m1-shape"),
    pytest.param((Z2, np.eye(3), Z2, I2), r"\bC1\b", id="C1-vs-m-shape"),
    pytest.param((Z2, I2, Z2, np.eye(3)), r"\bC2\b", id="C2-vs-m-shape"),
    pytest.param((Z2, np.ones(2), Z2, I2), r"\bC1\b", id="C1-a-vector"),
    pytest.param((np.zeros((2, 2)), I2, Z2, I2), r"\bm1\b", id="m1-a-matrix"),
    pytest.param(([0.0, np.nan], I2, Z2, I2), r"\bm1\b.*NaN or inf", id="m1-nan"),
    pytest.param((Z2, I2, [np.inf, 0.0], I2), r"\bm2\b.*NaN or inf", id="m2-inf"),
    pytest.param((Z2, NAN_C, Z2, I2), r"\bC1\b.*NaN or inf", id="C1-nan"),
    pytest.param((Z2, I2, Z2, INF_C), r"\bC2\b.*NaN or inf", id="C2-inf"),
    pytest.param((0.0, -1.0, 0.0, 1.0), r"\bC1\b.*variance", id="1d-negative-variance-C1"),
    pytest.param((0.0, 1.0, 0.0, -0.5), r"\bC2\b.*variance", id="1d-negative-variance-C2"),
    pytest.param((0.0, 1.0, 0.0, I2), r"\bC2\b.*scalar", id="scalar-m1-matrix-C2"),
    pytest.param((0.0, 1.0, Z2, 1.0), r"\bm2\b.*scalar", id="scalar-m1-vector-m2"),
    pytest.param((float("nan"), 1.0, 0.0, 1.0), r"\bm1\b.*NaN or inf", id="1d-m1-nan"),
    pytest.param(("zero", 1.0, 0.0, 1.0), r"\bm1\b.*number", id="m1-not-a-number"),
]


@pytest.mark.parametrize("args, pattern", GAUSSIAN_BAD)
@pytest.mark.parametrize("fn", [gaussian_w2, gaussian_w2_squared, gaussian_w2_terms, gaussian_w2_by_coupling_search],
                         ids=lambda f: f.__name__)
def test_gaussian_bad_inputs(fn, args, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(*args)


X5 = np.arange(10.0).reshape(5, 2)
EMPIRICAL_BAD = [
    pytest.param(dict(x=[1.0, 2.0], y=[0.0], p=0.5), r"^p\b", id="p-below-1"),
    pytest.param(dict(x=[1.0, 2.0], y=[0.0], p=float("nan")), r"^p\b", id="p-nan"),
    pytest.param(dict(x=[1.0, 2.0], y=[0.0], p=float("inf")), r"^p\b", id="p-inf"),
    pytest.param(dict(x=[1.0, 2.0], y=[0.0], p=True), r"^p\b", id="p-bool"),
    pytest.param(dict(x=[1.0, 2.0], y=[0.0], p="2"), r"^p\b", id="p-string"),
    pytest.param(dict(x=[], y=[0.0]), r"^x\b.*non-empty", id="x-empty"),
    pytest.param(dict(x=[0.0], y=np.zeros((0, 2))), r"^y\b.*non-empty", id="y-empty"),
    pytest.param(dict(x=np.zeros((2, 2, 2)), y=[0.0]), r"^x\b", id="x-3d"),
    pytest.param(dict(x=[0.0, np.nan], y=[0.0]), r"^x\b.*NaN or inf", id="x-nan"),
    pytest.param(dict(x=[0.0], y=[np.inf]), r"^y\b.*NaN or inf", id="y-inf"),
    pytest.param(dict(x=X5, y=np.zeros((5, 3))), r"x and y.*dimension", id="dimension-mismatch"),
    pytest.param(dict(x=X5, y=X5[:4]), r"\bx\b.*\by\b.*equal sizes|equal sizes.*\bx\b.*\by\b",
                 id="nd-unequal-sizes-names-x-y"),
    pytest.param(dict(x=X5, y=X5[::-1], max_assignment=4), r"max_assignment", id="too-many-for-assignment"),
]


@pytest.mark.parametrize("kwargs, pattern", EMPIRICAL_BAD)
def test_empirical_bad_inputs(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        empirical_wasserstein(**kwargs)


def test_empirical_nd_unequal_sizes_refused():
    with pytest.raises(ValueError, match="equal sizes"):
        empirical_wasserstein(X5, X5[:4])


@pytest.mark.parametrize("x, y, pattern", [
    pytest.param([], [1.0], r"^x\b", id="x-empty"),
    pytest.param([1.0], [np.nan], r"^y\b", id="y-nan"),
    pytest.param(np.zeros((3, 2)), np.zeros((3, 3)), r"x and y", id="dimension-mismatch"),
])
def test_jensen_bound_bad_inputs(x, y, pattern):
    with pytest.raises(ValueError, match=pattern):
        jensen_bound(x, y)
