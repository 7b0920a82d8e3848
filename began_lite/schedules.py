"""Learning-rate schedules of the GAN loop: the paper's halving on a stalled M_global, and a linear ramp.

Both are pure objects: they see numbers and return the next learning rate, and the
:class:`~began_lite.train.Trainer` applies it to both optimizers.
"""
from __future__ import annotations

import math

__all__ = ["PlateauHalver", "LinearRamp"]


class PlateauHalver:
    """Multiply the learning rate by ``decay`` when the mean of M_global over a window of
    ``patience`` steps is not at least 1% below the best window so far (BEGAN §4.1)."""

    def __init__(self, patience: int, decay: float, lr_min: float):
        self.patience, self.decay, self.lr_min = patience, decay, lr_min
        self.best, self.total, self.count = math.inf, 0.0, 0

    def observe(self, m_global: float, lr: float) -> float:
        self.total += m_global
        self.count += 1
        if self.count < self.patience:
            return lr
        mean, self.total, self.count = self.total / self.count, 0.0, 0
        if mean < 0.99 * self.best:
            self.best = mean
            return lr
        return max(self.lr_min, lr * self.decay)

    def state_dict(self) -> dict:
        return {"best": self.best, "total": self.total, "count": self.count}

    def load_state_dict(self, s: dict) -> None:
        self.best, self.total, self.count = float(s["best"]), float(s["total"]), int(s["count"])


class LinearRamp:
    """The learning rate after ``step`` steps: ``lr`` up to ``start``, then linearly down to
    ``lr_min`` at ``end``, and ``lr_min`` after. A deviation for short runs (off in both profiles;
    ``--lr-ramp`` on the command line): it freezes the game near where it stands instead of
    letting a constant rate drift on."""

    def __init__(self, lr: float, start: int, end: int, lr_min: float):
        self.lr, self.start, self.end, self.lr_min = lr, start, end, lr_min

    def at(self, step: int) -> float:
        if step >= self.end:
            return self.lr_min
        t = max(0.0, (step - self.start) / (self.end - self.start))
        return self.lr + (self.lr_min - self.lr) * t
