"""How much arithmetic a training step is, and how fast a device does arithmetic (appendix "Benchmarks").

:func:`count_step_flops` runs the real :func:`~began_lite.step.gan_step` once, on the meta device
(shapes only, no arithmetic), under PyTorch's ``FlopCounterMode``: whatever the step does, its
count follows. :func:`measure_peak` times a large matrix product, the ceiling that
:mod:`began_lite.perf.bench` reports each step's rate against; :func:`timed` times anything, the
device's queued work included.
"""
from __future__ import annotations

import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ..augment import RandomShift
from ..config import TrainConfig
from ..device import pick_device
from ..models import build_discriminator, build_generator
from ..objectives import make_objective
from ..step import gan_step

__all__ = ["count_step_flops", "measure_peak", "timed"]


def timed(device: torch.device, fn, *args) -> float:
    """Seconds that ``fn(*args)`` takes, its work on the device included."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    sync()
    t0 = time.perf_counter()
    fn(*args)
    sync()
    return time.perf_counter() - t0


def measure_peak(device, dtype: torch.dtype = torch.float32, *, n: int | None = None, repeats: int = 10) -> float:
    """The FLOP rate (2 n^3 / s) of an ``n`` x ``n`` matrix product on ``device``, the best of ``repeats``;
    ``n`` is 2048 on a CPU and 8192 on a GPU by default, enough for the BLAS library's best rate."""
    device = pick_device(device)
    n = n or (8192 if device.type == "cuda" else 2048)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device, dtype) for _ in range(2))
    torch.mm(a, b)  # warm-up: threads, kernels, caches
    return 2 * n**3 / min(timed(device, torch.mm, a, b) for _ in range(repeats))


class _ZerosForMetaValues(TorchDispatchMode):
    """Answer every read of a meta tensor's values on the host with zeros.

    The step reads its losses on the host (the NaN guard, the logs, BEGAN's k_t update); a meta
    tensor has no values to read. Which operations run, and so the FLOPs, do not depend on them.
    """

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not any(isinstance(a, torch.Tensor) and a.is_meta for a in args):
            return func(*args, **kwargs)
        if func is torch.ops.aten._local_scalar_dense.default:  # .item()
            return 0
        to = kwargs.get("device")
        if func is torch.ops.aten._to_copy.default and to is not None and torch.device(to).type != "meta":
            out = func(*args, **{**kwargs, "device": "meta"})  # .tolist(), .cpu(): the shape and dtype
            return torch.zeros(out.shape, dtype=out.dtype, device=to)
        return func(*args, **kwargs)


def count_step_flops(config: TrainConfig) -> int:
    """FLOPs of one training step of ``config``: one call of :func:`~began_lite.step.gan_step` (D's update,
    G's update, the k_t update) counted by ``FlopCounterMode``, with networks, batches and optimisers on
    the meta device, so that even the largest step is counted in seconds (:func:`run_benchmark`
    estimates a row's time from it). Convolutions and matrix products count, element-wise work not;
    the count does not depend on the precision."""
    B = config.batch_size
    with torch.device("meta"):
        G, D = build_generator(config), build_discriminator(config)
        shape = (config.data_dim,) if config.data_dim else (config.channels, config.image_size, config.image_size)
        x, z = torch.zeros(B, *shape), torch.zeros(B, config.z_dim)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=config.lr) for m in (G, D))
    T = RandomShift(config.shift, seed=config.seed) if config.shift else None
    with _ZerosForMetaValues(), FlopCounterMode(display=False) as counter:
        gan_step(G=G, D=D, opt_d=opt_d, opt_g=opt_g, objective=make_objective(config), x=x, z_d=z, z_g=z, T=T)
    return int(counter.get_total_flops())
