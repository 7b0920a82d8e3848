"""The two objectives that plug into the one training loop: BEGAN and EBGAN.

Each objective answers three questions for the loop in :mod:`began_lite.train`:

* ``d_loss(D, real, fake)``: the discriminator's loss on a real batch and a *detached*
  fake batch, and the numbers to log;
* ``g_loss(D, fake)``: the generator's loss on a fake batch (gradients flow through D
  into G; D's own parameters are frozen by the loop during this step);
* ``after_step(logs)``: bookkeeping after both updates (BEGAN's k_t update);
* ``schedule_measure``: the logged number the learning-rate schedule watches.

:func:`~began_lite.step.gan_step` calls the first two.

Real and fake images go through D in one batched pass: the autoencoder treats every
image independently (no batch norm), so this is exactly equivalent and faster.
"""
from __future__ import annotations

import torch

from .config import TrainConfig
from .equilibrium import EquilibriumController, convergence_measure
from .losses import began_losses, ebgan_losses, pulling_away_term, reconstruction_loss

__all__ = ["BEGANObjective", "EBGANObjective", "make_objective"]


def _per_image_losses(D, real: torch.Tensor, fake: torch.Tensor, eta: int):
    both = torch.cat([real, fake])  # (2B, C, H, W): one pass through D
    per_image = reconstruction_loss(both, D(both), eta=eta)  # (2B,)
    return per_image[: len(real)], per_image[len(real):]


def _g_loss_with_pt(D, fake, eta: int, weight: float):
    """L(G(z)) + weight * f_PT(Enc(G(z))): the generator's loss with EBGAN's pulling-away term."""
    h = D.encode(fake)  # (B, N_h): the embedding the pulling-away term spreads out
    loss_fake = reconstruction_loss(fake, D.decode(h), eta=eta).mean()
    logs = {"loss_fake": loss_fake}
    loss = loss_fake
    if weight > 0 and len(fake) >= 2:
        pt = pulling_away_term(h)
        loss = loss + weight * pt
        logs["pt"] = pt
    logs["loss_g"] = loss
    return loss, logs


class BEGANObjective:
    r"""BEGAN (§3.4): :math:`\mathcal{L}_D = \mathcal{L}(x) - k_t \mathcal{L}(G(z_D))`,
    :math:`\mathcal{L}_G = \mathcal{L}(G(z_G))`,
    :math:`k_{t+1} = \operatorname{clip}(k_t + \lambda_k(\gamma \mathcal{L}(x) - \mathcal{L}(G(z_G))), 0, 1)`.

    ``fixed_k`` pins k (chapter 4's experiments with k = 0 and k = 1); ``None`` lets the
    controller move it. The k update reads L(x) from the D step and L(G(z_G)) from the G
    step, as in the paper's equations.
    """

    name = "began"
    schedule_measure = "m_global"  # the logged number the lr schedule halves on (§4.1)

    def __init__(self, config: TrainConfig, fixed_k: float | None = None):
        self.config = config
        self.controller = EquilibriumController(config.gamma, config.lambda_k, config.k0 if fixed_k is None else fixed_k)
        self.fixed_k = fixed_k

    @property
    def k(self) -> float:
        return self.controller.k

    def d_loss(self, D, real, fake):
        loss_real, loss_fake = _per_image_losses(D, real, fake, self.config.eta)
        parts = began_losses(loss_real, loss_fake, self.controller.k)
        return parts.loss_d, {"loss_d": parts.loss_d, "loss_real": parts.loss_real, "loss_fake_d": parts.loss_fake}

    def g_loss(self, D, fake):
        if self.config.began_pt_weight == 0:
            loss_fake = reconstruction_loss(fake, D(fake), eta=self.config.eta).mean()
            return loss_fake, {"loss_g": loss_fake, "loss_fake": loss_fake}
        # Deviation (began_pt_weight > 0): EBGAN's pulling-away term on Enc(G(z)) joins L_G.
        return _g_loss_with_pt(D, fake, self.config.eta, self.config.began_pt_weight)

    def after_step(self, logs: dict) -> dict:
        real, fake = logs["loss_real"], logs["loss_fake"]
        out = {"k": self.controller.k,  # the k used in this step's L_D
               "m_global": convergence_measure(real, fake, self.config.gamma),
               "gamma_realised": fake / real if real > 0 else float("nan")}
        if self.fixed_k is None:
            self.controller.update(real, fake)
        return out

    def state_dict(self) -> dict:
        return {"controller": self.controller.state_dict(), "fixed_k": self.fixed_k}

    def load_state_dict(self, state: dict) -> None:
        self.controller.load_state_dict(state["controller"])
        self.fixed_k = state.get("fixed_k")


class EBGANObjective:
    r"""EBGAN (Zhao et al. 2017): :math:`\mathcal{L}_D = D(x) + [m - D(G(z))]^+`,
    :math:`\mathcal{L}_G = D(G(z)) + w\, f_{PT}(\mathrm{Enc}(G(z)))`, energy = reconstruction loss.

    Deviation: EBGAN's energy is the mean squared error (η = 2); we use ``config.eta``
    so both models can be compared with the same loss. Set ``eta=2`` for the original.

    Deviation: EBGAN has no k_t and no convergence measure, and its history has neither. Our
    learning-rate schedule (BEGAN §4.1's halving when M_global stalls) needs a number to watch,
    so EBGAN runs log ``m_began`` = L(x) + |gamma L(x) - L(G(z))|, BEGAN's formula applied to
    EBGAN's energies with ``config.gamma``, and the schedule halves the rate when it stalls.
    Nothing else reads it (chapter 3 says so).
    """

    name = "ebgan"
    schedule_measure = "m_began"
    k = 0.0  # no controller: Trainer.k reads 0, and the history has no "k" column

    def __init__(self, config: TrainConfig):
        self.config = config

    def d_loss(self, D, real, fake):
        energy_real, energy_fake = _per_image_losses(D, real, fake, self.config.eta)
        parts = ebgan_losses(energy_real, energy_fake, self.config.margin)
        return parts.loss_d, {"loss_d": parts.loss_d, "loss_real": parts.energy_real,
                              "loss_fake_d": parts.energy_fake, "hinge": parts.hinge}

    def g_loss(self, D, fake):
        return _g_loss_with_pt(D, fake, self.config.eta, self.config.pt_weight)

    def after_step(self, logs: dict) -> dict:
        real, fake = logs["loss_real"], logs["loss_fake"]
        return {"m_began": convergence_measure(real, fake, self.config.gamma),
                "gamma_realised": fake / real if real > 0 else float("nan")}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def make_objective(config: TrainConfig, fixed_k: float | None = None):
    if config.objective == "began":
        return BEGANObjective(config, fixed_k=fixed_k)
    if fixed_k is not None:
        raise ValueError("fixed_k applies to the 'began' objective only")
    return EBGANObjective(config)
