"""Properties that hold for every input, checked on many drawn by Hypothesis.

Each is a statement of the book: the controller keeps k in [0, 1] and moves it by exactly
lambda_k (gamma L(x) - L(G(z))) when not clipped (chapter 5); the pulling-away term is a
mean of squared cosines, so it lies in [0, 1] and ignores the embeddings' scale, order and
rotation (chapter 3); M_global >= L(x) (chapter 5); a config survives the dict a checkpoint
stores; the learning-rate schedules never raise the rate.
"""
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import began_lite as bl
from began_lite.equilibrium import convergence_measure

loss = st.floats(0.0, 10.0, allow_nan=False)
unit = st.floats(0.0, 1.0)


@given(gamma=st.floats(0.01, 1.0), lambda_k=st.floats(0.0, 1.0), k=unit, real=loss, fake=loss)
def test_k_stays_in_unit_interval_and_moves_by_the_error(gamma, lambda_k, k, real, fake):
    c = bl.EquilibriumController(gamma, lambda_k, k)
    new = c.update(real, fake)
    assert 0.0 <= new <= 1.0
    step = lambda_k * (gamma * real - fake)
    if 0.0 <= k + step <= 1.0:  # not clipped: exactly the proportional step
        assert new == k + step
    else:
        assert new == (0.0 if k + step < 0 else 1.0)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 12), d=st.integers(1, 8), seed=st.integers(0, 2**31 - 1),
       scale=st.floats(1e-3, 1e3), data=st.data())
def test_pulling_away_term_bounds_and_invariances(n, d, seed, scale, data):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, d, generator=g, dtype=torch.float64)
    pt = float(bl.pulling_away_term(s))
    assert 0.0 <= pt <= 1.0 + 1e-12
    # Each row scaled by its own positive factor, the rows permuted, the space rotated: unchanged.
    factors = scale * (1 + torch.rand(n, 1, generator=g, dtype=torch.float64))
    perm = torch.tensor(data.draw(st.permutations(range(n))))
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    for t in (s * factors, s[perm], s @ q):
        assert math.isclose(float(bl.pulling_away_term(t)), pt, rel_tol=1e-9, abs_tol=1e-12)


@given(real=loss, fake=loss, gamma=st.floats(0.01, 1.0))
def test_m_global_is_at_least_the_real_loss(real, fake, gamma):
    m = convergence_measure(real, fake, gamma)
    assert m >= real and math.isclose(m, real + abs(gamma * real - fake))


@settings(deadline=None)
@given(gamma=st.floats(0.01, 1.0), lambda_k=st.floats(0.0, 1.0), lr=st.floats(1e-6, 1e-2),
       batch=st.integers(1, 256), betas=st.tuples(st.floats(0.0, 0.999), st.floats(0.0, 0.999)),
       objective=st.sampled_from(["began", "ebgan"]), compile_=st.booleans(), extra=st.dictionaries(
           st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=3))
def test_config_survives_its_dict(gamma, lambda_k, lr, batch, betas, objective, compile_, extra):
    cfg = bl.TrainConfig(gamma=gamma, lambda_k=lambda_k, lr=lr, batch_size=batch, adam_betas=betas,
                         objective=objective, compile=compile_, extra=extra)
    assert bl.TrainConfig.from_dict(cfg.to_dict()) == cfg


@given(measures=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=300), patience=st.integers(1, 20),
       decay=st.floats(0.1, 1.0))
def test_plateau_halver_never_increases(measures, patience, decay):
    halver, lr = bl.PlateauHalver(patience, decay, lr_min=1e-6), 1e-3
    for m in measures:
        new = halver.observe(m, lr)
        assert new <= lr and new >= 1e-6
        lr = new
