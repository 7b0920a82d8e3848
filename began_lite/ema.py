r"""A moving average of G's weights, the generator samples come from (a deviation; off in the paper).

After every step, each weight of the average moves towards G's:
:math:`\bar\theta \leftarrow \beta_t \bar\theta + (1 - \beta_t)\,\theta` with
:math:`\beta_t = \min(\beta, (1 + t) / (10 + t))`, a warm-up so that the average forgets the
random initialisation within the first steps (Yazıcı et al. 2019 study this average for GANs).
Buffers are copied. Training never reads the average: it changes samples, not the game.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """The average of ``G``'s weights with decay ``beta`` (in (0, 1)); :attr:`module` is a frozen copy of G."""

    def __init__(self, G: nn.Module, beta: float):
        if isinstance(beta, bool) or not isinstance(beta, float) or not 0.0 < beta < 1.0:
            raise ValueError(f"beta must be a number in (0, 1), got {beta!r}")
        self.beta = beta
        self.module = copy.deepcopy(G).requires_grad_(False)

    @torch.no_grad()
    def update(self, G: nn.Module, step: int) -> None:
        """Move the average towards G after step ``step`` (0 for the first)."""
        beta = min(self.beta, (1.0 + step) / (10.0 + step))
        for p_avg, p in zip(self.module.parameters(), G.parameters()):
            p_avg.lerp_(p, 1.0 - beta)
        for b_avg, b in zip(self.module.buffers(), G.buffers()):
            b_avg.copy_(b)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
