"""The profiles: which settings a run starts from, for the hardware at hand.

* ``quick``: a laptop CPU and CI. 16x16 digits, small networks (n = 24 filters, chosen over 16 on
  seeds 0-4 and 10-14 by the digit verdict: ``data/results/candidates/filters-24``), 3000 steps
  (about 6 minutes on one core).
* ``full``: a GPU. The paper's sizes (64x64 RGB faces, N_z = N_h = 64) and n = 128 filters.
* ``paper-small``: the paper's BEGAN at the quick profile's sizes, every other field the paper's.
  Chapter 5 measures the way from it to ``quick``.
* :data:`MIXTURE`: applied on top of a profile for the 2-D mixtures of chapter 7.

A profile is a dict of :class:`~began_lite.config.TrainConfig` fields; the fields it leaves out
keep TrainConfig's defaults, which are the paper's. The profile comes from an argument, else the
``BEGAN_LITE_PROFILE`` environment variable (read when a function is called, never at import),
else ``full`` when a GPU is present and ``quick`` otherwise.

What the quick profile changes, each a ``Deviation:`` measured in chapter 5 (the profile with
that one change undone, three seeds, ``data/results/profile-minus-one.json``). The objective is
the paper's, L_D = L(T(x)) - k_t L(T(G(z_D))), L_G = L(T(G(z_G))) and the k_t update, nothing added.

* Deviation: N_z = N_h = 16 (the paper's 64); chapter 6 compares 16 with 64 (profile-minus-one).
* Deviation: gamma = 1.0 and lambda_k = 0.01 (the paper shows gamma 0.3-0.7 and uses lambda_k 0.001,
  which barely moves k_t in a few thousand steps of losses near 0.1: chapter 5).
* Deviation: a tanh on both decoders' outputs (the paper's last convolution has no activation).
* Deviation: Adam at 2e-4 with beta1 = 0.5 (DCGAN's) instead of 1e-4 with beta1 = 0.9.
* Deviation: batch 32 (the paper's 16).
* Deviation: the rate is held constant; the paper halves it when M_global stalls.
* Deviation: D sees every image, real and generated, in both updates, through T, a random shift of
  up to 3 px per axis (began_lite/augment.py; DiffAugment's translation): the distributions D
  compares are T#p_data and T#p_G instead of p_data and p_G. Chosen on seeds 0-4 (chapter 5).
* Deviation: samples come from a weight average of G (ema = 0.999, warmed up); training never reads it.
* Deviation: 3000 steps (the paper trains for 100k and more).
"""
from __future__ import annotations

import os

import torch

__all__ = ["PROFILES", "QUICK", "FULL", "PAPER_SMALL", "MIXTURE", "resolve_profile"]

PROFILES = ("quick", "full", "paper-small")

QUICK: dict = dict(
    image_size=16, channels=1, filters=24, repeat=2, z_dim=16, h_dim=16,
    gamma=1.0, lambda_k=0.01, lr=2e-4, adam_betas=(0.5, 0.999), batch_size=32,
    tanh_output=True, lr_decay=1.0, steps=3000, lr_patience=500,
    shift=3, ema=0.999, device="auto", dtype="float32",
)
# The paper's BEGAN on the quick profile's 16x16 digits and small networks (n = 24, two
# convolutions per scale) for the same 3000 steps; every other field at TrainConfig's default,
# the paper's: N_z = N_h = 64, gamma 0.5, lambda_k 0.001, Adam 1e-4 (beta1 0.9), batch 16, no
# output activation, the rate halved when M_global stalls, no shift, no weight average.
PAPER_SMALL: dict = dict(image_size=16, channels=1, filters=24, repeat=2, steps=3000, device="auto", dtype="float32")
# The paper's settings at 64x64 on a GPU (n = 128: we found no value in the paper; chapter 6).
FULL: dict = dict(image_size=64, channels=3, filters=128, steps=100_000)
# 2-D mixtures (chapter 7), applied on top of a profile by `train --dataset mixture` and
# chapters.runs.mixture_run: points of dimension 2 and MLPs of width 64 (G: 3 hidden layers; D: 2
# on each side of h), a run of 3000 steps in well under a minute on one CPU thread. The paper's
# BEGAN (gamma 0.5); lambda_k = 0.01 as in the quick profile, so that k moves within a few thousand
# steps; batch 256; Adam 1e-4, beta1 0.5; the paper's halving of the rate. D's bottleneck is
# N_h = 1, narrower than the data, so that D cannot learn the identity (a perfect autoencoder gives
# every point the same loss, chapter 4). Nothing here was tuned for coverage. The digit profile's
# tanh, shift and weight average are for images and do not apply.
MIXTURE: dict = dict(
    data_dim=2, mlp_hidden=64, z_dim=16, h_dim=1, gamma=0.5, lambda_k=0.01, lr=1e-4,
    adam_betas=(0.5, 0.999), batch_size=256, steps=3000, lr_patience=1000, lr_decay=0.5,
    tanh_output=False, shift=0, ema=0.0,
)
BY_NAME = {"quick": QUICK, "full": FULL, "paper-small": PAPER_SMALL}


def resolve_profile(profile: str | None = None) -> str:
    """``profile`` if given, else ``$BEGAN_LITE_PROFILE``, else ``full`` on a GPU and ``quick`` otherwise."""
    if profile is None:
        profile = os.environ.get("BEGAN_LITE_PROFILE") or None
        if profile is None:
            return "full" if torch.cuda.is_available() else "quick"
        source = "BEGAN_LITE_PROFILE"
    else:
        source = "profile"
    if profile not in PROFILES:
        raise ValueError(f"{source} must be one of {PROFILES}, got {profile!r}")
    return profile
