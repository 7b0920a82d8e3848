"""Training runs the chapters make, scored the same way everywhere: digits, faces and 2-D mixtures.

Every chapter that trains a GAN on digits goes through :func:`digit_run`, so a chapter's claim
and its number come from the same code the stored experiments (:mod:`.registry`) and the
command line use. The settings are a profile's (``TrainConfig.for_profile``) and the
overrides the caller gives: nothing else is changed silently.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from ..augment import RandomShift
from ..checkpoint import CheckpointError, load_checkpoint
from ..classifier import DigitClassifier, load_digit_classifier
from ..config import TrainConfig
from ..data import load_digits, load_faces
from ..evaluate import evaluate_digits, mean_pairwise_l1, mixture_quality
from ..mixtures import MIXTURE_KINDS, mixture_2d
from ..profiles import MIXTURE
from ..plotting import grid_png
from ..train import Trainer
from ..wasserstein import empirical_w1
from .records import kernel_switches, restore_run, save_run

__all__ = ["SAMPLE_SEED", "GRID_SEED", "digit_classifier", "real_digits", "score_digits", "run_cache_dir", "digit_run",
           "holdout_split", "mixture_run", "faces_run"]

SAMPLE_SEED = 12345  # the z of every scored set of samples (1000 digits, 2500 points)
GRID_SEED = 0  # the z of every stored grid of samples


@functools.lru_cache(maxsize=1)
def digit_classifier() -> tuple[DigitClassifier, float]:
    """The evaluator's classifier and its held-out accuracy (the shipped weights, loaded once)."""
    return load_digit_classifier()


@functools.lru_cache(maxsize=4)
def real_digits(image_size: int, labels: bool = False):
    """The 1797 real digits at ``image_size`` (and their labels), loaded once."""
    return load_digits(image_size, return_labels=labels)


def score_digits(images: torch.Tensor) -> dict:
    """Frechet distance to the real digits, class coverage and balance, precision and recall
    (Kynkäänniemi et al. 2019) in the evaluator's feature space, the spread of the ink's centre,
    and the mean pairwise L1 distance (``diversity``, over the first 400) of generated digits."""
    classifier, _ = digit_classifier()
    report = evaluate_digits(images, classifier, real=real_digits(images.shape[-1]))
    report["diversity"] = mean_pairwise_l1(images[:400])
    return report


def run_cache_dir() -> Path | None:
    """Where finished runs are memoised: ``$BEGAN_LITE_CACHE``, else ``~/.cache/began_lite/runs``.

    Set ``BEGAN_LITE_CACHE=off`` to always train. A cached run is the complete checkpoint
    of the same computation (same config, steps, ``fixed_k``, held-out digits, package source,
    torch version, threads and CPU kernels), so loading it gives the very tensors that
    training would: chapters that show the same run train it once.
    """
    value = os.environ.get("BEGAN_LITE_CACHE", "")
    if value.lower() in ("off", "0", "no"):
        return None
    return Path(value) if value else Path.home() / ".cache" / "began_lite" / "runs"


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    h = hashlib.sha256(torch.__version__.encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + path.read_bytes())
    return h.hexdigest()


def _run_key(spec: dict) -> str:
    # The thread count and the CPU kernels are part of the computation: they change the last bits of sums.
    spec = {**spec, "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "switches": kernel_switches(), "source": _source_digest()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:24]


def holdout_split(n_heldout: int, image_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The real digits split once (seed 0) into ``(training, held_out)``, ``n_heldout`` held out."""
    x = real_digits(image_size)
    if isinstance(n_heldout, bool) or not isinstance(n_heldout, int) or not 1 <= n_heldout <= len(x) - 100:
        raise ValueError(f"holdout must be an integer in [1, {len(x) - 100}], got {n_heldout!r}")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return x[perm[n_heldout:]], x[perm[:n_heldout]]


@torch.no_grad()
def _d_losses(trainer: Trainer, images: torch.Tensor, T=None) -> torch.Tensor:
    """L(v) = mean |v - D(v)|^eta of every image (through T when given), in chunks, on the CPU."""
    D, eta = trainer.D, trainer.config.eta
    was = D.training
    D.eval()
    out = []
    for chunk in images.split(500):
        v = chunk.to(trainer.device)
        v = T(v) if T is not None else v
        out.append((v - D(v)).abs().pow(eta).flatten(1).mean(1).float().cpu())
    D.train(was)
    return torch.cat(out)


@torch.no_grad()
def _raw_samples(trainer: Trainer, n: int, seed: int) -> torch.Tensor:
    """G(z) of the trained G itself (not the weight average), clamped like ``Trainer.sample``."""
    from ..models import sample_z

    z = sample_z(n, trainer.config.z_dim, generator=torch.Generator().manual_seed(seed))
    was = trainer.G.training
    trainer.G.eval()
    out = torch.cat([trainer.G(c.to(trainer.device)).float().cpu() for c in z.split(256)])
    trainer.G.train(was)
    return out.clamp(-1, 1)


def _point(trainer: Trainer, n_eval: int, window: int, heldout) -> dict:
    """Everything measured at one step: the losses since the last point, k_t, the scores, a grid."""
    h, cfg = trainer.history, trainer.config
    m = trainer.objective.schedule_measure  # EBGAN has no M_global: BEGAN's formula on its energies
    point = {"step": trainer.step, "m_global": float(h[m][-window:].mean()),
             "gamma_realised": float(h["gamma_realised"][-window:].mean()), "k": float(trainer.k),
             "loss_real": float(h["loss_real"][-window:].mean()), "loss_fake": float(h["loss_fake"][-window:].mean())}
    samples = trainer.sample(n_eval, seed=SAMPLE_SEED)
    point.update(score_digits(samples))
    if cfg.ema > 0:  # what the weight average adds: the same z through G itself
        raw = score_digits(_raw_samples(trainer, n_eval, SAMPLE_SEED))
        point["raw_g"] = {k: raw[k] for k in ("frechet", "classes_covered", "max_share", "precision", "recall")}
    point["grid_png"] = base64.b64encode(grid_png(trainer.sample(36, seed=GRID_SEED), nrow=6)).decode()
    if heldout is not None:  # D's reconstruction of digits it trains on against digits it never saw
        train_part, held = heldout
        point["loss_d_train"] = float(_d_losses(trainer, train_part).mean())
        point["loss_d_heldout"] = float(_d_losses(trainer, held).mean())
    return point


def _final_measures(trainer: Trainer, samples: torch.Tensor) -> dict:
    """At the end of a run: D's loss on real digits per class, and the whole loss distributions
    of real and generated digits as D sees them (through T), which the controller balances."""
    cfg = trainer.config
    x, labels = real_digits(cfg.image_size, True)
    T = RandomShift(cfg.shift, seed=999) if cfg.shift else None
    loss_real = _d_losses(trainer, x, T)
    T = RandomShift(cfg.shift, seed=999) if cfg.shift else None
    loss_fake = _d_losses(trainer, _raw_samples(trainer, len(samples), SAMPLE_SEED), T)
    q = np.linspace(0, 1, 21)
    nearest = torch.cdist(samples.flatten(1), x.flatten(1), p=1).min(1).values / x[0].numel()
    return {"class_loss_real": [float(loss_real[labels == c].mean()) for c in range(10)],
            "loss_dist": {"mean_real": float(loss_real.mean()), "mean_fake": float(loss_fake.mean()),
                          "w1": empirical_w1(loss_real, loss_fake),
                          "quantiles_real": np.quantile(loss_real.numpy(), q).tolist(),
                          "quantiles_fake": np.quantile(loss_fake.numpy(), q).tolist()},
            "nearest_digit_l1_median": float(nearest.median())}


def _curves(trainer: Trainer, every: int = 10) -> dict:
    """The history as means over blocks of ``every`` steps: k_t, the two losses, M_global, the ratio."""
    h = trainer.history
    n = len(h) // every * every
    keys = [k for k in ("k", "loss_real", "loss_fake", "m_global", "m_began", "gamma_realised") if k in h]
    out = {"every": every, "step": list(range(every, n + 1, every))}
    for k in keys:
        out[k] = [round(float(v), 6) for v in h[k][:n].reshape(-1, every).mean(1)]
    return out


def digit_run(steps: int, *, profile: str = "quick", fixed_k: float | None = None, holdout: int = 0,
              n_eval: int = 1000, eval_every: int | None = None, progress: bool = False,
              **overrides) -> tuple[Trainer, dict]:
    """Train on the real digits for ``steps`` with ``profile``'s settings and ``overrides``; score the samples.

    Returns the trainer (its ``history`` holds every logged number) and a report: the score of
    ``n_eval`` samples drawn with z seed :data:`SAMPLE_SEED` (:func:`score_digits`), D's loss per
    class and the loss distributions (:func:`_final_measures`), the history's curves every 10
    steps and the wall time of training (``seconds``). With ``eval_every``, the same score (and
    a grid of 36 samples) is also taken every ``eval_every`` steps (``report["trajectory"]``);
    scoring draws no random numbers from training, so it changes nothing in the run.
    ``holdout`` > 0 trains on the digits less ``holdout`` held out (:func:`holdout_split`) and
    measures D's loss on both at every scored step. ``fixed_k`` pins BEGAN's k. Finished runs
    are memoised on disk (:func:`run_cache_dir`); ``report["cached"]`` says whether this one was.
    """
    if eval_every is not None and (isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1):
        raise ValueError(f"eval_every must be an integer >= 1 or None, got {eval_every!r}")
    config = TrainConfig.for_profile(profile, steps=steps, **overrides)
    heldout = None
    if holdout:
        data, held = holdout_split(holdout, config.image_size)
        heldout = (data[:holdout], held)
    else:
        data = real_digits(config.image_size)
    key = _run_key({"config": config.to_dict(), "steps": steps, "fixed_k": fixed_k, "holdout": holdout,
                    "n_eval": n_eval, "eval_every": eval_every})
    report = _recall(key, trainer := Trainer(config, data, fixed_k=fixed_k))
    if report is not None:
        return trainer, report
    trainer = Trainer(config, data, fixed_k=fixed_k)  # afresh (seeded again): a damaged entry may have half-loaded
    trajectory = []

    def score_now(tr: Trainer, logs: dict) -> None:
        if eval_every and tr.step % eval_every == 0:
            trajectory.append(_point(tr, n_eval, eval_every, heldout))

    start = time.perf_counter()
    trainer.train(steps, progress=progress, callbacks=[score_now] if eval_every else [])
    seconds = time.perf_counter() - start
    samples = trainer.sample(n_eval, seed=SAMPLE_SEED)
    report = score_digits(samples)
    report.update(_final_measures(trainer, samples), seconds=seconds, curves=_curves(trainer, max(10, steps // 120)))
    if eval_every:
        report["trajectory"] = trajectory
    _memoise(key, trainer, report)
    report["cached"] = False
    return trainer, report


def _recall(key: str, trainer: Trainer) -> dict | None:
    """The memoised run ``key`` loaded into ``trainer``, and its report; None if there is none."""
    cache = run_cache_dir()
    if cache is None or not (cache / f"{key}.pt").exists():
        return None
    try:
        return restore_run(load_checkpoint(cache / f"{key}.pt"), trainer)
    except (CheckpointError, KeyError, ValueError, RuntimeError):  # a damaged entry is recomputed
        return None


def _memoise(key: str, trainer: Trainer, report: dict) -> None:
    cache = run_cache_dir()
    if cache is None:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        save_run(trainer, report, cache / f"{key}.pt")
    except OSError:
        pass  # a read-only home: nothing is memoised, nothing else changes


@functools.lru_cache(maxsize=4)
def _mixture_points(kind: str, n: int) -> torch.Tensor:
    return mixture_2d(kind, n, seed=0)  # one fixed training set per mixture, as the command line draws it


def mixture_run(kind: str = "ring", steps: int | None = None, *, objective: str = "began", seed: int = 0,
                n_eval: int = 2500, n_points: int = 100_000, profile: str = "quick", progress: bool = False,
                **overrides) -> tuple[Trainer, dict]:
    """Train BEGAN or EBGAN on the 2-D ``kind`` mixture ("ring" or "grid") and score it.

    Settings: the profile, then :data:`began_lite.profiles.MIXTURE` (MLP networks, batch 256, ...),
    then ``overrides``; ``steps`` defaults to MIXTURE's. The training set is ``n_points`` points
    drawn once with seed 0 (what ``train --dataset mixture`` uses). Returns the trainer and
    :func:`~began_lite.evaluate.mixture_quality` of ``n_eval`` samples (2500, as VEEGAN and
    PacGAN draw) from a fixed z, plus ``seconds`` (wall time of training), ``kind``,
    ``objective``, ``seed``, the final k_t and the realised ratio of the last 100 steps.
    """
    if kind not in MIXTURE_KINDS:
        raise ValueError(f"kind must be one of {MIXTURE_KINDS}, got {kind!r}")
    settings = {**MIXTURE, "objective": objective, "seed": seed, **overrides}
    if steps is not None:
        settings["steps"] = steps
    settings["extra"] = {**settings.get("extra", {}), "dataset": "mixture", "mixture": kind, "points": n_points}
    config = TrainConfig.for_profile(profile, **settings)
    trainer = Trainer(config, _mixture_points(kind, n_points))
    start = time.perf_counter()
    trainer.train(config.steps, progress=progress)
    seconds = time.perf_counter() - start
    report = mixture_quality(trainer.sample(n_eval, seed=SAMPLE_SEED), kind)._asdict()
    h = trainer.history
    report.update(seconds=seconds, kind=kind, objective=objective, seed=seed, k=float(trainer.k),
                  gamma_realised=float(h["gamma_realised"][-100:].mean()), curves=_curves(trainer, every=30))
    return trainer, report


def faces_run(steps: int, *, image_size: int = 32, profile: str = "quick", progress: bool = False,
              flip: bool = False, **overrides) -> Trainer:
    """BEGAN on the 100 bundled LFW faces (chapter 6) with the profile's settings and ``overrides``.

    ``flip=True`` trains on the 100 faces and their 100 mirror images (left and right swapped),
    the one augmentation a face keeps its meaning under; the default is the faces alone.
    """
    if not isinstance(flip, bool):
        raise ValueError(f"flip must be True or False, got {flip!r}")
    config = TrainConfig.for_profile(profile, steps=steps, image_size=image_size, channels=1, **overrides)
    faces = load_faces(image_size)  # (100, 1, S, S)
    trainer = Trainer(config, torch.cat([faces, faces.flip(-1)]) if flip else faces)
    trainer.train(steps, progress=progress)
    return trainer
