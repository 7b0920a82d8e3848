r"""One training step of BEGAN: the function chapter 4 prints and walks through.

With D an autoencoder and :math:`\mathcal{L}(v) = |v - D(v)|^\eta` its loss on an image (§3.1),
one step of BEGAN (§3.4) is

.. math::

    \mathcal{L}_D = \mathcal{L}(x) - k_t\,\mathcal{L}(G(z_D)), \qquad
    \mathcal{L}_G = \mathcal{L}(G(z_G)), \qquad
    k_{t+1} = \operatorname{clip}_{[0,1]}\big(k_t + \lambda_k(\gamma\mathcal{L}(x) - \mathcal{L}(G(z_G)))\big).

EBGAN plugs in another objective (:mod:`began_lite.objectives`) and the same step runs it.
Everything else of the loop, drawing x, z_D and z_G, the weight average, the learning rate,
the history and checkpoints, is bookkeeping in :class:`~began_lite.train.Trainer`.
"""
from __future__ import annotations

import contextlib
import math

import torch

from . import distributed

__all__ = ["gan_step", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; nothing of that update was applied."""


def gan_step(*, G, D, opt_d, opt_g, objective, x, z_d, z_g, T=None, autocast=contextlib.nullcontext()) -> dict:
    """One D update, one G update, then BEGAN's k_t update; returns the step's numbers (floats).

    ``x`` is a real batch, ``z_d`` and ``z_g`` are two latent batches; ``objective`` is BEGAN's
    (or EBGAN's); ``T`` transforms every image D sees (None: the identity, the paper's);
    ``autocast`` is the precision context chosen once by the trainer (nanoGPT's ``ctx``).
    """
    T = T or (lambda v: v)
    # ---- 1. D's update -------------------------------------------------------------------
    with torch.no_grad(), autocast:
        fake = G(z_d)  # G(z_D), made without a graph: nothing of L_D can flow into G
    with autocast:
        # L(x) and L(G(z_D)), one value per image: |v - D(v)|^eta, both batches in one pass through D.
        # Deviation (quick profile): D sees T(x) and T(G(z_D)), each image shifted at random (augment.py).
        loss_real, loss_fake_d = objective.losses(D, T(x), T(fake))
        loss_d, logs = objective.loss_d(loss_real, loss_fake_d)  # L_D = L(x) - k_t L(G(z_D))
    _guarded_step("L_D", loss_d, opt_d)
    # ---- 2. G's update, through D: D's weights frozen, only G's optimiser steps ---------------
    with _frozen(D) as D_frozen:
        with autocast:
            loss_g, logs_g = objective.loss_g(D_frozen, T(G(z_g)))  # L_G = L(G(z_G)), the graph runs through D
        _guarded_step("L_G", loss_g, opt_g)
    # ---- 3. the controller: k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1) ------
    logs = _mean_over_ranks({**logs, **logs_g})  # L(x) of D's update, L(G(z_G)) of G's: the paper's terms
    logs.update(objective.after_step(logs))  # BEGAN moves k_t (EBGAN has none); every rank the same k
    return logs


def _guarded_step(name: str, loss: torch.Tensor, opt) -> None:
    """Refuse a NaN or inf loss (its mean over ranks, so that all agree), then backward and one step."""
    value = distributed.all_reduce_mean(loss).item()
    if not math.isfinite(value):
        raise TrainingDiverged(f"{name} = {value}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@contextlib.contextmanager
def _frozen(D):
    """D without gradients of its own for the G update; DistributedDataParallel's wrapper is stepped
    around (its ``module``), since no gradient of D is wanted there."""
    D_plain = getattr(D, "module", D)
    D_plain.requires_grad_(False)
    try:
        yield D_plain
    finally:
        D_plain.requires_grad_(True)


def _mean_over_ranks(logs: dict) -> dict:
    """Every logged tensor as a float, the mean over ranks: one read from the device for all of them."""
    values = distributed.all_reduce_mean(torch.stack([v.detach().float() for v in logs.values()]))
    return dict(zip(logs, values.tolist()))
