"""The k_t controller and the convergence measure (BEGAN §3.4, §3.4.1): known sequences by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from began_lite.equilibrium import EquilibriumController, convergence_measure

# gamma = 0.5, lambda_k = 0.1, k_0 = 0. Each row: L(x), L(G(z)), error gamma L(x) - L(G(z)),
# and k after the update clip(k + 0.1 * error, 0, 1), worked out by hand.
SEQUENCE = [
    (1.0, 0.2, 0.3, 0.03),
    (2.0, 0.5, 0.5, 0.08),
    (1.0, 1.5, -1.0, 0.0),   # 0.08 - 0.1 = -0.02, clipped at 0
    (1.0, 0.2, 0.3, 0.03),   # restarts from the clipped 0 (not from -0.02, which would give 0.01)
    (4.0, 1.0, 1.0, 0.13),
    (20.0, 0.0, 10.0, 1.0),  # 0.13 + 1 = 1.13, clipped at 1
    (2.0, 2.0, -1.0, 0.9),   # restarts from the clipped 1
    (10.0, 5.0, 0.0, 0.9),   # at equilibrium k does not move
]


def test_known_sequence_by_hand():
    ctl = EquilibriumController(gamma=0.5, lambda_k=0.1, k=0.0)
    for real, fake, err, k in SEQUENCE:
        assert ctl.error(real, fake) == pytest.approx(err, abs=1e-12)
        assert ctl.update(real, fake) == pytest.approx(k, abs=1e-12)
        assert ctl.k == pytest.approx(k, abs=1e-12)


def test_clipping_is_exact():
    ctl = EquilibriumController(gamma=0.5, lambda_k=0.1, k=0.0)
    assert ctl.update(1.0, 100.0) == 0.0
    assert ctl.update(1000.0, 0.0) == 1.0


def test_accepts_0d_tensors_and_numpy_scalars():
    ctl = EquilibriumController(gamma=torch.tensor(0.5), lambda_k=np.float64(0.1), k=torch.tensor(0.0))
    for real, fake, _, k in SEQUENCE:
        assert ctl.update(torch.tensor(real), torch.tensor(fake, dtype=torch.float64)) == pytest.approx(k, abs=1e-6)
    assert isinstance(ctl.k, float)


def test_accepts_tensors_that_require_grad():
    ctl = EquilibriumController(gamma=0.5, lambda_k=0.1)
    real = torch.tensor(1.0, requires_grad=True) * 1.0
    assert ctl.update(real, torch.tensor(0.2)) == pytest.approx(0.03, abs=1e-7)


def test_paper_defaults():
    ctl = EquilibriumController()
    assert (ctl.gamma, ctl.lambda_k, ctl.k) == (0.5, 0.001, 0.0)


def test_lambda_zero_freezes_k():
    ctl = EquilibriumController(gamma=0.7, lambda_k=0.0, k=0.4)
    for real, fake, _, _ in SEQUENCE:
        assert ctl.update(real, fake) == 0.4


def test_state_dict_round_trip():
    ctl = EquilibriumController(gamma=0.5, lambda_k=0.1)
    for real, fake, _, _ in SEQUENCE[:2]:
        ctl.update(real, fake)
    state = ctl.state_dict()
    assert state == pytest.approx({"gamma": 0.5, "lambda_k": 0.1, "k": 0.08})
    other = EquilibriumController(gamma=1.0, lambda_k=0.0, k=1.0)
    other.load_state_dict(state)
    assert other.state_dict() == state
    # Both continue identically from there.
    for real, fake, _, k in SEQUENCE[2:]:
        assert other.update(real, fake) == ctl.update(real, fake) == pytest.approx(k, abs=1e-12)


def test_load_state_dict_validates():
    ctl = EquilibriumController()
    with pytest.raises(ValueError, match=r"^k must be in \[0, 1\]"):
        ctl.load_state_dict({"gamma": 0.5, "lambda_k": 0.1, "k": 2.0})
    assert ctl.state_dict() == {"gamma": 0.5, "lambda_k": 0.001, "k": 0.0}  # unchanged


@pytest.mark.parametrize("kwargs, pattern", [
    pytest.param(dict(gamma=0.0), r"^gamma must be in \(0, 1\]", id="gamma-0"),
    pytest.param(dict(gamma=1.5), r"^gamma must be in \(0, 1\]", id="gamma-1.5"),
    pytest.param(dict(gamma=-0.5), r"^gamma must be in \(0, 1\]", id="gamma-negative"),
    pytest.param(dict(gamma=float("nan")), r"^gamma must be finite", id="gamma-nan"),
    pytest.param(dict(lambda_k=-0.001), r"^lambda_k must be >= 0", id="lambda_k-negative"),
    pytest.param(dict(lambda_k=float("inf")), r"^lambda_k must be finite", id="lambda_k-inf"),
    pytest.param(dict(k=-0.1), r"^k must be in \[0, 1\]", id="k-negative"),
    pytest.param(dict(k=1.1), r"^k must be in \[0, 1\]", id="k-above-1"),
    pytest.param(dict(k=True), r"^k must be a number", id="k-bool"),
    pytest.param(dict(gamma="0.5"), r"^gamma must be a number", id="gamma-str"),
    pytest.param(dict(gamma=torch.tensor([0.5, 0.5])), r"^gamma must be a number or a 0-d tensor", id="gamma-vector"),
])
def test_constructor_bad_inputs(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        EquilibriumController(**kwargs)


@pytest.mark.parametrize("real, fake, pattern", [
    pytest.param(float("nan"), 0.1, r"^loss_real must be finite", id="real-nan"),
    pytest.param(1.0, float("inf"), r"^loss_fake must be finite", id="fake-inf"),
    pytest.param(torch.tensor(float("nan")), 0.1, r"^loss_real must be finite", id="real-tensor-nan"),
    pytest.param(torch.tensor([1.0, 2.0]), 0.1, r"^loss_real must be a number or a 0-d tensor", id="real-vector"),
    pytest.param(1.0, torch.zeros(2, 2), r"^loss_fake must be a number or a 0-d tensor", id="fake-matrix"),
    pytest.param(1.0, np.array([0.1, 0.2]), r"^loss_fake must be a number", id="fake-numpy-vector"),
    pytest.param(None, 0.1, r"^loss_real must be a number", id="real-none"),
])
def test_update_bad_inputs_leave_k_unchanged(real, fake, pattern):
    ctl = EquilibriumController(gamma=0.5, lambda_k=0.1, k=0.3)
    with pytest.raises(ValueError, match=pattern):
        ctl.update(real, fake)
    assert ctl.k == 0.3


# --------------------------------------------------------------------------- convergence measure
def test_convergence_measure_by_hand():
    assert convergence_measure(2.0, 0.5, 0.5) == pytest.approx(2.0 + abs(1.0 - 0.5))  # 2.5
    assert convergence_measure(1.0, 0.8, 0.5) == pytest.approx(1.0 + 0.3)  # |0.5 - 0.8| = 0.3
    assert convergence_measure(torch.tensor(3.0), torch.tensor(0.0), 1.0) == pytest.approx(6.0)


def test_convergence_measure_at_equilibrium_equals_loss_real():
    for real, gamma in [(0.8, 0.5), (1.25, 0.4), (3.0, 1.0)]:
        assert convergence_measure(real, gamma * real, gamma) == pytest.approx(real, abs=1e-12)


@pytest.mark.parametrize("args, pattern", [
    pytest.param((1.0, 0.5, 0.0), r"^gamma", id="gamma-0"),
    pytest.param((1.0, 0.5, 1.2), r"^gamma", id="gamma-above-1"),
    pytest.param((float("nan"), 0.5, 0.5), r"^loss_real", id="real-nan"),
    pytest.param((1.0, float("-inf"), 0.5), r"^loss_fake", id="fake-inf"),
])
def test_convergence_measure_bad_inputs(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        convergence_measure(*args)


def test_repr_mentions_state():
    r = repr(EquilibriumController(gamma=0.5, lambda_k=0.1, k=0.25))
    assert "gamma=0.5" in r and "lambda_k=0.1" in r and "k=0.25" in r


def test_simulated_controller_regimes():
    """Linearised loop: overdamped below lambda*a = b^2/4, unstable above lambda*a = b (a=push, b=pull)."""
    from began_lite.equilibrium import simulate_controller

    a, b = 0.003, 0.02
    slow = simulate_controller(0.5, 0.5 * b**2 / (4 * a), 3000, push=a, pull=b)
    ringing = simulate_controller(0.5, 0.3, 3000, push=a, pull=b)
    unstable = simulate_controller(0.5, 3 * b / a, 3000, push=a, pull=b)
    target = 0.5 * 0.1
    assert slow["loss_fake"].max() <= target * (1 + 1e-9)  # approaches from below, no overshoot
    assert ringing["loss_fake"].max() > 1.2 * target and abs(ringing["loss_fake"][-1] - target) < 1e-4
    assert abs(ringing["k"][-1] - ringing["k_star"]) < 1e-3 and ringing["k_star"] == b * target / a
    assert np.ptp(unstable["loss_fake"][-500:]) > 0.1 * target  # never settles


def test_simulated_controller_bad_input():
    from began_lite.equilibrium import simulate_controller

    with pytest.raises(ValueError, match="^steps"):
        simulate_controller(steps=0)
    with pytest.raises(ValueError, match="^pull"):
        simulate_controller(pull=2.0)
    with pytest.raises(ValueError, match="^gamma"):
        simulate_controller(gamma=0.0)
