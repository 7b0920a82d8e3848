r"""Equilibrium: the k_t controller and the convergence measure (BEGAN §3.4, §3.4.1).

BEGAN wants the generator's and the autoencoder's losses in a fixed ratio,

.. math:: \gamma = \frac{\mathbb{E}[\mathcal{L}(G(z))]}{\mathbb{E}[\mathcal{L}(x)]}, \qquad \gamma \in (0, 1],

and keeps it there with proportional control of the weight :math:`k_t` on
:math:`\mathcal{L}(G(z))` in the discriminator's loss:

.. math:: k_{t+1} = \operatorname{clip}_{[0, 1]}\big(k_t + \lambda_k (\gamma \mathcal{L}(x) - \mathcal{L}(G(z)))\big).

The gain acts on the error at each step, so :math:`k_t` is the (clipped) running sum of
the errors: seen from the loop, the controller integrates the equilibrium error.
The convergence measure is
:math:`\mathcal{M}_{global} = \mathcal{L}(x) + |\gamma \mathcal{L}(x) - \mathcal{L}(G(z))|`.
"""
from __future__ import annotations

import math

__all__ = ["EquilibriumController", "convergence_measure", "simulate_controller"]


def _scalar(name: str, value, rng: str = "") -> float:
    """A float from a Python number or a one-element tensor/array; NaN and inf refused (``rng`` names the range)."""
    if hasattr(value, "numel"):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a number or a 0-d tensor, got shape {tuple(value.shape)}")
        value = value.detach().item() if hasattr(value, "detach") else value.item()
    elif hasattr(value, "item") and getattr(value, "size", 1) == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number or a 0-d tensor, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite{' and ' + rng if rng else ''}, got {value}")
    return value


class EquilibriumController:
    """Proportional control of k_t: ``update(L(x), L(G(z)))`` returns the new k in [0, 1].

    ``gamma`` is γ in (0, 1], ``lambda_k`` is λ_k >= 0 (0.001 in the paper), ``k`` is k_0.
    A tiny pure object: no tensors kept, so it is cheap to checkpoint (``state_dict``).
    """

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001, k: float = 0.0):
        self.gamma = _scalar("gamma", gamma, "in (0, 1]")
        self.lambda_k = _scalar("lambda_k", lambda_k, ">= 0")
        self.k = _scalar("k", k, "in [0, 1]")
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        if self.lambda_k < 0.0:
            raise ValueError(f"lambda_k must be >= 0, got {lambda_k!r}")
        if not 0.0 <= self.k <= 1.0:
            raise ValueError(f"k must be in [0, 1], got {k!r}")

    def error(self, loss_real, loss_fake) -> float:
        """The equilibrium error γ L(x) - L(G(z)) (positive: the generator is 'winning')."""
        return self.gamma * _scalar("loss_real", loss_real) - _scalar("loss_fake", loss_fake)

    def update(self, loss_real, loss_fake) -> float:
        """k <- clip(k + λ_k (γ L(x) - L(G(z))), 0, 1); returns the new k."""
        self.k = min(1.0, max(0.0, self.k + self.lambda_k * self.error(loss_real, loss_fake)))
        return self.k

    def state_dict(self) -> dict:
        return {"gamma": self.gamma, "lambda_k": self.lambda_k, "k": self.k}

    def load_state_dict(self, state: dict) -> None:
        fresh = EquilibriumController(state["gamma"], state["lambda_k"], state["k"])
        self.gamma, self.lambda_k, self.k = fresh.gamma, fresh.lambda_k, fresh.k

    def __repr__(self) -> str:
        return f"EquilibriumController(gamma={self.gamma}, lambda_k={self.lambda_k}, k={self.k:.6g})"


def convergence_measure(loss_real, loss_fake, gamma: float) -> float:
    """M_global = L(x) + |γ L(x) - L(G(z))| (BEGAN §3.4.1)."""
    real, fake, g = _scalar("loss_real", loss_real), _scalar("loss_fake", loss_fake), _scalar("gamma", gamma, "in (0, 1]")
    if not 0.0 < g <= 1.0:
        raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
    return real + abs(g * real - fake)


def simulate_controller(gamma: float = 0.5, lambda_k: float = 0.001, steps: int = 3000, *,
                        loss_real: float = 0.1, push: float = 0.05, pull: float = 0.02,
                        noise: float = 0.0, k0: float = 0.0, seed: int = 0) -> dict:
    r"""The k_t controller driving a toy 'plant' that stands in for the two networks.

    The generator pulls its loss down at rate ``pull`` (a first-order lag) and the
    discriminator pushes it up in proportion to k:

    .. math:: \mathcal{L}_{t+1}(G) = (1 - b)\,\mathcal{L}_t(G) + a\,k_t + \epsilon_t, \qquad
              k_{t+1} = \operatorname{clip}(k_t + \lambda_k(\gamma \mathcal{L}(x) - \mathcal{L}_t(G)), 0, 1),

    with ``a = push``, ``b = pull``, ``L(x) = loss_real`` fixed and Gaussian noise of std
    ``noise``. The balance point is :math:`\mathcal{L}(G) = \gamma \mathcal{L}(x)`, reached with
    :math:`k^* = b \gamma \mathcal{L}(x) / a` when that is in [0, 1]. A small :math:`\lambda_k`
    gets there slowly and without overshoot (for the linearised loop, when
    :math:`\lambda_k a < b^2/4`); a larger one overshoots and rings; beyond :math:`\lambda_k a > b`
    the loop is unstable and only the clipping of k to [0, 1] bounds the oscillation, because
    the controller integrates the error while the plant lags behind.
    Returns arrays ``k``, ``loss_fake``, ``m_global`` (one value per step) and ``k_star``.
    """
    import numpy as np

    ctl = EquilibriumController(gamma, lambda_k, k0)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    for name, v in (("loss_real", loss_real), ("push", push), ("pull", pull)):
        if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    if not 0 < pull <= 1:
        raise ValueError(f"pull must be in (0, 1], got {pull!r}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not (0 <= noise < math.inf):
        raise ValueError(f"noise must be a finite number >= 0 (a standard deviation), got {noise!r}")
    rng = np.random.default_rng(seed)
    fake = gamma * loss_real * 0.2  # the generator starts 'winning': its samples are easy to reconstruct
    ks, fakes, ms = np.empty(steps), np.empty(steps), np.empty(steps)
    for t in range(steps):
        ks[t], fakes[t], ms[t] = ctl.k, fake, convergence_measure(loss_real, fake, gamma)
        k_now = ctl.k  # the networks react to the k of this step; the controller's update acts next step
        ctl.update(loss_real, fake)
        fake = max(0.0, (1 - pull) * fake + push * k_now + (noise * rng.standard_normal() if noise else 0.0))
    return {"k": ks, "loss_fake": fakes, "m_global": ms, "k_star": pull * gamma * loss_real / push}
