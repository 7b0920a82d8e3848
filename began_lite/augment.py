r"""Differentiable augmentation: D sees every image, real or generated, through the same random shift.

With few training images (the 1797 digits) the discriminator can learn them by heart: its
reconstruction loss on them, :math:`\mathcal{L}(x)`, keeps falling while it cannot fall as far
on anything new, so the controller lowers :math:`k_t` and the game drifts (chapter 7 shows a
long run's :math:`k_t` falling from 0.31 to 0.10 while the samples collapse). Differentiable
augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"; Karras et al. 2020, ADA) passes *every* image D sees through a random
transformation :math:`T`, real and generated alike, in D's step and in G's step:

.. math::

    \mathcal{L}_D = \mathcal{L}(T(x)) - k_t\,\mathcal{L}(T(G(z_D))), \qquad
    \mathcal{L}_G = \mathcal{L}(T(G(z_G))), \qquad
    \mathcal{L}(v) = |v - D(v)|^\eta .

The objective is the paper's, term for term; only what D looks at changes. Because :math:`T`
is applied to both sides, G is not asked to draw shifted digits (an augmentation of the real
images alone would leak into the samples), and because :math:`T` is differentiable in its
input, L_G's gradient reaches G through it.

:class:`RandomShift` moves each image by its own offset :math:`(\delta_y, \delta_x)`, each drawn
uniformly from :math:`\{-s, \dots, s\}`, and fills the uncovered border with ``fill`` (-1: black,
the digits' background). ``s = 0`` is the identity, the paper's BEGAN (and the full profile's).
Deviation when ``s > 0``: the quick profile's ``s = 3`` (``config.py`` says what it was measured to do).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["RandomShift"]


class RandomShift:
    """``T(x)``: every image of ``x`` (B, C, H, W) moved by its own random offset of up to ``shift`` pixels per axis.

    The offsets come from a CPU generator of its own, seeded with ``seed``, so a run is
    reproducible and its checkpoint can hold the generator's state (``state_dict``).
    """

    def __init__(self, shift: int, seed: int, fill: float = -1.0):
        if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
            raise ValueError(f"shift must be an integer >= 0, got {shift!r}")
        self.shift, self.fill = shift, float(fill)
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        s = self.shift
        if s == 0:
            return x
        if x.ndim != 4:
            raise ValueError(f"x must be images (B, C, H, W), got shape {tuple(x.shape)}")
        B, C, H, W = x.shape
        padded = F.pad(x, (s, s, s, s), value=self.fill)  # (B, C, H + 2s, W + 2s)
        # offsets in {0, ..., 2s} into the padded image: a window at s is the image unmoved
        dy, dx = torch.randint(0, 2 * s + 1, (2, B), generator=self.gen).to(x.device)
        rows = torch.arange(H, device=x.device)[None] + dy[:, None]  # (B, H)
        cols = torch.arange(W, device=x.device)[None] + dx[:, None]  # (B, W)
        batch = torch.arange(B, device=x.device)[:, None, None]
        # advanced indexing picks (B, H, W, C); the gradient flows back to the picked pixels of x
        return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)

    def state_dict(self) -> dict:
        """The offsets' generator state (shift and fill come from the config)."""
        return {"rng": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["rng"])
