r"""The two objectives the one training step plugs in: BEGAN and EBGAN.

Both discriminators are autoencoders, and both objectives are written in D's per-image
reconstruction loss :math:`\mathcal{L}(v) = |v - D(v)|^\eta` (:func:`~began_lite.losses.reconstruction_loss`).
An objective answers, for :func:`~began_lite.step.gan_step`:

* ``losses(D, x, fake)``: L(x) and L(G(z_D)), one value per image, real and fake in one pass
  through D (the autoencoder treats every image on its own, no batch norm, so this is exact);
* ``loss_d(loss_real, loss_fake)``: D's loss from those, and the numbers to log;
* ``loss_g(D, fake)``: G's loss on a fresh fake batch (the gradient flows through D into G);
* ``after_step(logs)``: BEGAN's k_t update, from the step's mean losses (plain numbers);
* ``schedule_measure``: the logged number the learning-rate halving watches.
"""
from __future__ import annotations

import torch

from .config import TrainConfig
from .equilibrium import EquilibriumController, convergence_measure
from .losses import began_losses, ebgan_losses, pulling_away_term, reconstruction_loss

__all__ = ["BEGANObjective", "EBGANObjective", "make_objective"]


class _Autoencoder:
    """What both objectives share: the per-image losses of a real and a fake batch, in one pass through D."""

    def __init__(self, config: TrainConfig):
        self.config = config

    def losses(self, D, x: torch.Tensor, fake: torch.Tensor):
        both = torch.cat([x, fake])  # (2B, C, H, W): one pass through D
        per_image = reconstruction_loss(both, D(both), eta=self.config.eta)  # (2B,)
        return per_image[: len(x)], per_image[len(x):]


class BEGANObjective(_Autoencoder):
    r"""BEGAN (§3.4): :math:`\mathcal{L}_D = \mathcal{L}(x) - k_t \mathcal{L}(G(z_D))`,
    :math:`\mathcal{L}_G = \mathcal{L}(G(z_G))`,
    :math:`k_{t+1} = \operatorname{clip}(k_t + \lambda_k(\gamma \mathcal{L}(x) - \mathcal{L}(G(z_G))), 0, 1)`.

    ``fixed_k`` pins k (chapter 4: k = 0 and k = 1); ``None`` lets the controller move it.
    """

    name = "began"
    schedule_measure = "m_global"  # the paper halves the rate when M_global stalls (§4.1)

    def __init__(self, config: TrainConfig, fixed_k: float | None = None):
        super().__init__(config)
        self.controller = EquilibriumController(config.gamma, config.lambda_k, config.k0 if fixed_k is None else fixed_k)
        self.fixed_k = fixed_k

    @property
    def k(self) -> float:
        return self.controller.k

    def loss_d(self, loss_real, loss_fake):
        """L_D = L(x) - k_t L(G(z_D)), batch means; k_t is a plain number, no gradient flows into it."""
        parts = began_losses(loss_real, loss_fake, self.controller.k)
        return parts.loss_d, {"loss_d": parts.loss_d, "loss_real": parts.loss_real, "loss_fake_d": parts.loss_fake}

    def loss_g(self, D, fake):
        """L_G = L(G(z_G)), the batch mean on fresh samples."""
        loss_fake = reconstruction_loss(fake, D(fake), eta=self.config.eta).mean()
        return loss_fake, {"loss_g": loss_fake, "loss_fake": loss_fake}

    def after_step(self, logs: dict) -> dict:
        """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1); logs k_t (the k this step used),
        M_global = L(x) + |gamma L(x) - L(G(z_G))| and the realised ratio L(G(z_G)) / L(x)."""
        real, fake = logs["loss_real"], logs["loss_fake"]
        out = {"k": self.controller.k, "m_global": convergence_measure(real, fake, self.config.gamma),
               "gamma_realised": fake / real if real > 0 else float("nan")}
        if self.fixed_k is None:
            self.controller.update(real, fake)
        return out

    def state_dict(self) -> dict:
        return {"controller": self.controller.state_dict(), "fixed_k": self.fixed_k}

    def load_state_dict(self, state: dict) -> None:
        self.controller.load_state_dict(state["controller"])
        self.fixed_k = state.get("fixed_k")


class EBGANObjective(_Autoencoder):
    r"""EBGAN (Zhao et al. 2017): :math:`\mathcal{L}_D = D(x) + [m - D(G(z))]^+`,
    :math:`\mathcal{L}_G = D(G(z)) + w\, f_{PT}(\mathrm{Enc}(G(z)))`, the energy D(v) = L(v).

    Deviation: EBGAN's energy is the mean squared error (η = 2); we use ``config.eta`` so both
    models can be compared with the same loss. Set ``eta=2`` for the original.

    Deviation: EBGAN has no k_t and no convergence measure. The learning-rate halving needs a
    number to watch, so EBGAN runs log ``m_began`` = L(x) + |gamma L(x) - L(G(z))|, BEGAN's
    formula on EBGAN's energies; nothing else reads it (chapter 3 says so).
    """

    name = "ebgan"
    schedule_measure = "m_began"
    k = 0.0  # no controller: Trainer.k reads 0, and the history has no "k" column

    def loss_d(self, energy_real, energy_fake):
        """L_D = D(x) + [m - D(G(z_D))]^+, the hinge per sample, batch means."""
        parts = ebgan_losses(energy_real, energy_fake, self.config.margin)
        return parts.loss_d, {"loss_d": parts.loss_d, "loss_real": parts.energy_real,
                              "loss_fake_d": parts.energy_fake, "hinge": parts.hinge}

    def loss_g(self, D, fake):
        """L_G = D(G(z_G)) + w f_PT(Enc(G(z_G))), the pulling-away term on the encoder's embeddings."""
        h = D.encode(fake)  # (B, N_h): the embeddings the pulling-away term spreads out
        loss_fake = reconstruction_loss(fake, D.decode(h), eta=self.config.eta).mean()
        logs = {"loss_fake": loss_fake}
        loss = loss_fake
        if self.config.pt_weight > 0 and len(fake) >= 2:
            logs["pt"] = pt = pulling_away_term(h)
            loss = loss + self.config.pt_weight * pt
        logs["loss_g"] = loss
        return loss, logs

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
