"""One training step of BEGAN or EBGAN: the function chapter 4 prints and walks through.

Everything else in :mod:`began_lite.train` is bookkeeping around it: drawing the batch and
the two z's, the k_t update, the learning-rate schedule, the history, checkpoints.
"""
from __future__ import annotations

import contextlib
import math

import torch

from . import distributed

__all__ = ["gan_step", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; nothing of that update was applied."""


def _update(name: str, loss: torch.Tensor, opt, scaler) -> None:
    """Refuse a non-finite loss (the mean over ranks, so all agree), then backward and one step."""
    value = distributed.all_reduce_mean(loss).item()
    if not math.isfinite(value):
        raise TrainingDiverged(f"{name} = {value}")
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        opt.step()
    else:  # float16: the loss is scaled up for backward, the step skipped if a gradient overflowed
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()


def gan_step(G, D, opt_d, opt_g, objective, real, z_d, z_g, ctx=contextlib.nullcontext(), scalers=(None, None),
             augment=None):
    r"""One D update, then one G update. Returns the step's numbers (tensors) for the log.

    With L(v) = |v - D(v)|^eta, D's reconstruction loss (EBGAN calls it the energy):
      BEGAN: L_D = L(x) - k_t L(G(z_D)),       L_G = L(G(z_G))                      (§3.4)
      EBGAN: L_D = L(x) + max(0, m - L(G(z_D))),  L_G = L(G(z_G)) + w f_PT(Enc(G(z_G)))
    ``objective.d_loss(D, real, fake)`` and ``objective.g_loss(D, fake)`` compute them; the
    caller then updates k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1).

    Where public implementations go wrong, and what this code does instead:
    1. L_D must not reach G: the fake batch of the D step is made under ``no_grad``.
    2. L_G must reach G *through* D without moving D: D is frozen (``requires_grad_(False)``),
       not skipped or detached, and only G's optimizer steps.
    ``augment`` is T of :mod:`began_lite.augment`: every image D sees, real or generated, in
    both updates, goes through it (``None``: the identity, the paper's BEGAN).
    ``ctx`` is the autocast context (nanoGPT's ``ctx``); ``scalers`` holds D's and G's
    float16 ``GradScaler`` (or ``None``). D may be wrapped in DistributedDataParallel: the
    frozen pass goes through its ``module``, since no gradient of D is wanted there.
    """
    scaler_d, scaler_g = scalers
    T = augment or (lambda x: x)
    with torch.no_grad(), ctx:
        fake = G(z_d)  # (B, C, H, W) without a graph: nothing of L_D can flow into G
    with ctx:
        loss_d, logs = objective.d_loss(D, T(real), T(fake))
    _update("L_D", loss_d, opt_d, scaler_d)

    D_frozen = getattr(D, "module", D)
    D_frozen.requires_grad_(False)
    try:
        with ctx:
            loss_g, logs_g = objective.g_loss(D_frozen, T(G(z_g)))  # the graph runs through D (and T) into G
        _update("L_G", loss_g, opt_g, scaler_g)
    finally:
        D_frozen.requires_grad_(True)
    return {**logs, **logs_g}
