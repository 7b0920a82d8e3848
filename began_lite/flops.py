"""How much arithmetic a training step is, and how fast a device does arithmetic (appendix "Benchmarks").

:func:`count_step_flops` counts one step's FLOPs on the meta device (no arithmetic);
:func:`measure_peak` times a large matrix product, the ceiling that :mod:`began_lite.bench`
reports each step's rate against.
"""
from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import TrainConfig
from .device import pick_device
from .models import Discriminator, Generator
from .objectives import make_objective

__all__ = ["count_step_flops", "measure_peak"]


def _timed(device: torch.device, fn, *args) -> float:
    """Seconds that ``fn(*args)`` takes, its work on the device included."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    sync()
    t0 = time.perf_counter()
    fn(*args)
    sync()
    return time.perf_counter() - t0


def _first_step(device: torch.device, step, config: TrainConfig, *, compiled: bool) -> tuple[float, int]:
    """The first step's seconds (compiling, with ``compiled``) and one step's FLOPs. Under FlopCounterMode
    torch.compile would run the step eagerly, and keep doing so: count a compiled step's maths apart."""
    if compiled:
        return _timed(device, step), count_step_flops(config)
    with FlopCounterMode(display=False) as counter:
        seconds = _timed(device, step)
    return seconds, counter.get_total_flops()


def measure_peak(device, dtype: torch.dtype = torch.float32, *, n: int | None = None, repeats: int = 10) -> float:
    """The FLOP rate (2 n^3 / s) of an ``n`` x ``n`` matrix product on ``device``, the best of ``repeats``;
    ``n`` is 2048 on a CPU and 8192 on a GPU by default, enough for the BLAS library's best rate."""
    device = pick_device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device, dtype) for _ in range(2))
    torch.mm(a, b)  # warm-up: threads, kernels, caches
    return 2 * n**3 / min(_timed(device, torch.mm, a, b) for _ in range(repeats))


def count_step_flops(config: TrainConfig) -> int:
    """FLOPs of one training step of ``config``'s networks, counted on the meta device (no arithmetic),
    so that the largest is counted in a second: :func:`run_benchmark` estimates a row's time from it.
    The same D and G steps as the trainer's (a test checks it against a count over a real step)."""
    with torch.device("meta"):
        G, D = Generator(config), Discriminator(config)
        real = torch.zeros(config.batch_size, config.channels, config.image_size, config.image_size)
        z = torch.zeros(config.batch_size, config.z_dim)
    objective = make_objective(config)
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            fake = G(z)
        objective.d_loss(D, real, fake)[0].backward()
        D.requires_grad_(False)
        objective.g_loss(D, G(z))[0].backward()
    return int(counter.get_total_flops())
