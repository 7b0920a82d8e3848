"""The discriminator as an autoencoder, trained on its own (chapter 2): fit it, read its losses L(v)."""
from __future__ import annotations

import math

import torch
from torch import nn

from .data import check_images
from .device import pick_device, seed_everything
from .losses import reconstruction_loss

__all__ = ["fit_autoencoder", "reconstruction_losses"]


def fit_autoencoder(model: nn.Module, data: torch.Tensor, *, steps: int, batch_size: int = 64,
                    lr: float = 1e-3, eta: int = 1, seed: int = 0, device=None,
                    progress: bool = False) -> list[float]:
    """Train an autoencoder ``model`` to minimise the batch mean of L(v) = |v - D(v)|^eta on ``data``.

    Minibatches are drawn with replacement from a generator seeded with ``seed``; Adam
    with learning rate ``lr``. Returns the loss of every step. The model is left on ``device``.
    """
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise ValueError(f"model must be a torch.nn.Module with parameters, got {type(model).__name__}")
    check_images("data", data)
    if not torch.isfinite(data).all():
        raise ValueError("data must be finite (it holds NaN or inf)")
    for name, v, lo in (("steps", steps, 0), ("batch_size", batch_size, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if eta not in (1, 2) or isinstance(eta, bool):
        raise ValueError(f"eta must be 1 or 2, got {eta!r}")
    device = pick_device(device)
    gen = seed_everything(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    data = data.to(device)
    history: list[float] = []
    steps_iter = range(steps)
    if progress:
        from tqdm.auto import tqdm
        steps_iter = tqdm(steps_iter, desc="autoencoder", leave=False)
    for _ in steps_iter:
        idx = torch.randint(len(data), (batch_size,), generator=gen).to(device)
        x = data[idx]
        loss = reconstruction_loss(x, model(x), eta=eta).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.item())
    model.eval()
    return history


@torch.no_grad()
def reconstruction_losses(model: nn.Module, x: torch.Tensor, *, eta: int = 1, batch_size: int = 256) -> torch.Tensor:
    """L(v) for every image in ``x`` (shape ``(N,)``, on the CPU), in evaluation mode and without gradients."""
    check_images("x", x)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for chunk in x.split(batch_size):
        chunk = chunk.to(device)
        out.append(reconstruction_loss(chunk, model(chunk), eta=eta).cpu())
    model.train(was_training)
    return torch.cat(out)
