"""The digit evaluator's classifier: a small MLP trained on the real digits, shipped as data/digit_classifier.pt.

Every chapter and every user scores generated digits with the same network
(:mod:`began_lite.evaluate`), so nobody retrains it. ``python -m began_lite.classifier``
remakes the file (seed 0, a few seconds).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_checkpoint, save_checkpoint
from .data import load_digits, resize

__all__ = ["DigitClassifier", "train_digit_classifier", "save_digit_classifier", "load_digit_classifier",
           "CLASSIFIER_PATH"]


class DigitClassifier(nn.Module):
    """A small MLP on 8x8 digits in [-1, 1]: 64 -> 256 -> 64 (features) -> 10 classes."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ELU(), nn.Linear(256, 64), nn.ELU())
        self.head = nn.Linear(64, 10)

    @staticmethod
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """Any (N, 1, S, S) digits in [-1, 1] -> (N, 1, 8, 8), by the same resize the data uses."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1 or len(images) == 0:
            raise ValueError(f"images must be a non-empty tensor (N, 1, S, S), got {getattr(images, 'shape', type(images).__name__)}")
        if not torch.isfinite(images).all():
            raise ValueError("images must be finite (they hold NaN or inf)")
        return resize(images.float().cpu().clamp(-1, 1), 8)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def train_digit_classifier(seed: int = 0, epochs: int = 60, held_out: int = 500):
    """Train :class:`DigitClassifier` on the real digits (all but ``held_out``, a seeded split).

    Returns ``(model, held_out_accuracy)``. A few seconds on a CPU; deterministic for a seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    if isinstance(held_out, bool) or not isinstance(held_out, int) or not 1 <= held_out <= 1697:
        raise ValueError(f"held_out must be an integer in [1, 1697] (the 1797 digits less 100 to train on), got {held_out!r}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: one thread is fastest, and immune to oversubscription
    try:
        return _train_classifier(seed, epochs, held_out)
    finally:
        torch.set_num_threads(threads)


def _train_classifier(seed: int, epochs: int, held_out: int):
    x, y = load_digits(8, return_labels=True)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    tr, te = perm[held_out:], perm[:held_out]
    torch.manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(epochs):
        for idx in tr[torch.randperm(len(tr), generator=g)].split(64):
            xb = x[idx] + 0.1 * torch.randn(x[idx].shape, generator=g)  # mild noise: robustness to generated strokes
            loss = nn.functional.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x[te]).argmax(1) == y[te]).float().mean().item()
    return model, acc


# The shipped evaluator: weights trained by `python -m began_lite.classifier` (seed 0), so every
# chapter and every user scores with the same network without retraining it.
CLASSIFIER_PATH = Path(__file__).resolve().parents[1] / "data" / "digit_classifier.pt"


def save_digit_classifier(path=CLASSIFIER_PATH, seed: int = 0) -> dict:
    """Train the evaluator (seed ``seed``) and save its weights and provenance atomically."""
    start = time.perf_counter()
    model, acc = train_digit_classifier(seed=seed)
    record = {"state": model.state_dict(), "held_out_accuracy": acc, "seed": seed,
              "command": "python -m began_lite.classifier", "torch": str(torch.__version__),
              "seconds": time.perf_counter() - start}
    save_checkpoint(record, path)
    return record


def load_digit_classifier(path=CLASSIFIER_PATH) -> tuple[DigitClassifier, float]:
    """The shipped evaluator and its held-out accuracy (``weights_only`` load).

    Without the file (a non-editable install) it trains the same network from seed 0."""
    if not Path(path).exists():
        return train_digit_classifier(seed=0)
    record = load_checkpoint(path)
    model = DigitClassifier()
    model.load_state_dict(record["state"])
    return model.eval(), float(record["held_out_accuracy"])


if __name__ == "__main__":  # python -m began_lite.classifier: regenerate data/digit_classifier.pt
    rec = save_digit_classifier()
    print(f"wrote {CLASSIFIER_PATH}: held-out accuracy {rec['held_out_accuracy']:.3f} "
          f"(seed {rec['seed']}, torch {rec['torch']}, {rec['seconds']:.1f} s)")
