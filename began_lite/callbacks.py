"""What happens around the training loop, not in it: signals, sample grids, progress, the best checkpoint.

A callback is any ``fn(trainer, logs)``; :meth:`Trainer.train <began_lite.train.Trainer.train>`
calls each after every step (minGPT's callbacks). The command line uses them so::

    with StopOnSignal() as stop:
        trainer.train(callbacks=[stop, every(500, write_samples), ProgressLines(500, total)])
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from pathlib import Path

import torch

from .checkpoint import CheckpointError, atomic_write_bytes, check_finite, load_checkpoint, save_checkpoint

__all__ = ["StopOnSignal", "every", "write_samples", "readable_scale", "ProgressLines", "KeepBest"]


class StopOnSignal:
    """Turns SIGINT (Ctrl-C) and SIGTERM (``kill``, ``docker stop``, a batch scheduler) into
    'stop after this step'.

    Use it as a context manager around ``train`` and pass it as a callback: after the step in
    which the signal came it calls ``trainer.request_stop()``, and ``train`` then saves and
    returns with ``trainer.interrupted`` set. Later signals are noted and ignored, so a second
    Ctrl-C waits for the step and the save instead of cutting the save short (SIGKILL still
    stops at once, and the last checkpoint stays whole). :attr:`exit_code` is what a shell
    reports for the signal, 128 + its number: 130 for SIGINT, 143 for SIGTERM.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal: int | None = None
        self._old: dict = {}

    def _handler(self, signum, frame) -> None:
        if self.signal is None:
            self.signal = signum

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self._old = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> bool:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}
        return False

    @property
    def exit_code(self) -> int:
        """0 when no signal came, else 128 + the signal's number."""
        return 0 if self.signal is None else 128 + int(self.signal)

    def __call__(self, trainer, logs) -> None:
        if self.signal is not None:
            trainer.request_stop()


def every(n: int, fn):
    """A callback that calls ``fn(trainer)`` after every ``n``-th step (by the run's step count)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"every: n must be an integer >= 1, got {n!r}")
    if not callable(fn):
        raise ValueError(f"every: fn must be callable as fn(trainer), got {type(fn).__name__}")

    def callback(trainer, logs) -> None:
        if trainer.step % n == 0:
            fn(trainer)

    return callback


def readable_scale(image_size: int, at_least: int = 48) -> int:
    """The nearest-neighbour upscaling that shows an image of ``image_size`` px at ``at_least`` px or more."""
    return max(1, math.ceil(at_least / image_size))


def write_samples(trainer, path=None) -> Path:
    """A PNG grid of G(fixed z) to ``path`` (default ``run_dir/samples/step_NNNNNNN.png``), upscaled
    (nearest) so that every image shows at 48 px or more (:func:`readable_scale`).

    For points: a scatter plot of 1000 samples (the same z at every step) over the mixture's
    modes when ``config.extra["mixture"]`` names them. Only rank 0 of several processes writes.
    """
    from .plotting import grid_png, scatter_png

    if path is None:
        if trainer.run_dir is None:
            raise ValueError("path is needed when the trainer has no run_dir")
        path = trainer.run_dir / "samples" / f"step_{trainer.step:07d}.png"
    if not trainer.process_group.is_main:  # rank 0 draws the samples for everyone
        return Path(path)
    cfg = trainer.config
    if cfg.data_dim:
        points = trainer.sample(1000, seed=cfg.seed + 1)
        png = scatter_png(points, mixture=cfg.extra.get("mixture"), title=f"{cfg.objective}, step {trainer.step}")
    else:
        png = grid_png(trainer.sample(z=trainer.fixed_z), nrow=8, scale=readable_scale(cfg.image_size))
    atomic_write_bytes(path, png)
    return Path(path)


class ProgressLines:
    """A plain line to ``stream`` (default stderr) every ``n`` steps and at step ``total``: progress
    that suits a log file, where a progress bar writes a carriage-return update per step."""

    KEYS = ("loss_real", "loss_fake", "k", "m_global")

    def __init__(self, n: int, total: int, stream=None):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        self.n, self.total, self.stream = n, total, stream
        self._start: tuple[float, int] | None = None

    def __call__(self, trainer, logs) -> None:
        if self._start is None:
            self._start = (time.perf_counter(), trainer.step - 1)
        if trainer.step % self.n and trainer.step != self.total:
            return
        seconds, done = time.perf_counter() - self._start[0], trainer.step - self._start[1]
        shown = ", ".join(f"{k} {logs[k]:.4f}" for k in self.KEYS if k in logs)
        print(f"step {trainer.step}/{self.total}: {shown}; {done / max(seconds, 1e-9):.1f} steps/s",
              file=self.stream or sys.stderr, flush=True)


class KeepBest:
    """Keeps the best state of a digit run as ``run_dir/best.pt``, by the evaluator's score.

    Each call scores ``n`` samples of the sampling generator (z seeded by ``seed``) by their
    Fréchet distance to the real digits in the evaluator's feature space (what ``evaluate``
    reports, :func:`~began_lite.evaluate.evaluate_digits`; lower is better) and saves the
    trainer's whole state, with ``state["score"]``, when it beats the best so far (read back from
    an existing ``best.pt`` on resume). Returns the score.
    """

    def __init__(self, run_dir, image_size: int, *, seed: int, n: int = 1000):
        from .classifier import load_digit_classifier
        from .data import load_digits
        from .evaluate import digit_features
        from .runfolder import BEST_NAME

        self.path, self.seed, self.n = Path(run_dir) / BEST_NAME, seed, n
        with torch.random.fork_rng(devices=[]):  # without the shipped file it trains one, seeding torch
            self.classifier, _ = load_digit_classifier()
        self.real = digit_features(self.classifier, load_digits(image_size))  # once: the real side is fixed
        self.best = self._stored()

    def _stored(self) -> float:
        try:
            return float(load_checkpoint(self.path)["score"]["frechet"]) if self.path.exists() else math.inf
        except (CheckpointError, KeyError, TypeError, ValueError):  # a damaged best.pt is replaced by the next best
            return math.inf

    def __call__(self, trainer, logs=None) -> float:
        from .evaluate import digit_features, frechet_distance

        images = trainer.sample(self.n, seed=self.seed)
        score = frechet_distance(self.real, digit_features(self.classifier, images))
        if score < self.best and trainer.process_group.is_main:
            state = trainer.state_dict()
            if check_finite(state, ("generator", "discriminator", "generator_ema")) is None:
                state["score"] = {"frechet": score, "step": trainer.step, "n": self.n, "seed": self.seed}
                save_checkpoint(state, self.path)
                self.best = score
        return score
