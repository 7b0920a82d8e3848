"""What happens around the training loop, not in it: Ctrl-C, sample grids, periodic work.

A callback is any ``fn(trainer, logs)``; :meth:`Trainer.train <began_lite.train.Trainer.train>`
calls each after every step (minGPT's callbacks). The command line uses these three::

    with StopOnCtrlC() as stop:
        trainer.train(callbacks=[stop, every(500, write_samples)])
"""
from __future__ import annotations

import io
import signal
import threading
from pathlib import Path

import numpy as np

from .checkpoint import atomic_write_bytes

__all__ = ["StopOnCtrlC", "every", "write_samples"]


class StopOnCtrlC:
    """Turns the first Ctrl-C (SIGINT) into 'stop after this step'; a second one stops at once.

    Use it as a context manager around ``train`` and pass it as a callback: after the step in
    which Ctrl-C came it calls ``trainer.request_stop()``, and ``train`` then saves and returns
    with ``trainer.interrupted`` set.
    """

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                if self.requested:  # a second Ctrl-C: give up at once
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False

    def __call__(self, trainer, logs) -> None:
        if self.requested:
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


def write_samples(trainer, path=None) -> Path:
    """A PNG grid of G(fixed z) to ``path`` (default ``run_dir/samples/step_NNNNNNN.png``).

    For points: a scatter plot of 1000 samples (the same z at every step) over the mixture's
    modes when ``config.extra["mixture"]`` names them. Only rank 0 of several processes writes.
    """
    from PIL import Image

    from .plotting import image_grid, scatter_png

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
        grid = image_grid(trainer.sample(z=trainer.fixed_z), nrow=8)
        buf = io.BytesIO()
        Image.fromarray((grid * 255).round().astype(np.uint8)).save(buf, format="PNG")
        png = buf.getvalue()
    atomic_write_bytes(path, png)
    return Path(path)
