"""Where and how precisely a run computes, chosen once at the top of training (the nanoGPT way).

* :func:`pick_device`: cuda, then mps, then cpu (``BEGAN_LITE_DEVICE`` overrides the automatic choice);
* :func:`autocast_dtype`: bfloat16 autocast on a CUDA GPU that supports it, plain float32 elsewhere;
* :func:`seed_everything`: Python, NumPy and torch seeded alike;
* :func:`cpu_id`: which processor this is (stored results and benchmarks name it).
"""
from __future__ import annotations

import functools
import hashlib
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["pick_device", "autocast_dtype", "seed_everything", "cpu_id"]


def _accelerator() -> str | None:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return None


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: ``device`` if given, else cuda, then mps, then cpu.

    ``device`` may be ``None`` or ``"auto"`` (choose), or any torch device string such as
    ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. ``BEGAN_LITE_DEVICE`` in the environment
    overrides the automatic choice (not an explicit argument).
    """
    if isinstance(device, torch.device):
        requested = device
    else:
        if device is None or device == "auto":
            device = os.environ.get("BEGAN_LITE_DEVICE") or "auto"
        if not isinstance(device, str):
            raise ValueError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {device!r}")
        if device == "auto":
            return torch.device(_accelerator() or "cpu")
        try:
            requested = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:i]' or 'mps', got {device!r}") from err
    if requested.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={str(requested)!r} was asked for, but CUDA is not available here; "
                             f"use 'cpu' or 'auto'")
        if requested.index is not None and requested.index >= torch.cuda.device_count():
            raise ValueError(f"device={str(requested)!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif requested.type == "mps":
        if _accelerator() != "mps":
            raise ValueError("device='mps' was asked for, but MPS is not available here; use 'cpu' or 'auto'")
    elif requested.type != "cpu":
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:i]' or 'mps', got {str(requested)!r}")
    return requested


def autocast_dtype(dtype: str, device: torch.device):
    """None for plain float32; else the autocast dtype: bfloat16 on CUDA for "auto" when supported."""
    if dtype == "float32" or device.type == "mps":
        return None
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return torch.bfloat16


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and all GPUs); return a CPU generator seeded alike."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@functools.lru_cache(maxsize=1)
def cpu_id() -> str | None:
    """The processor's model name and a digest of its feature flags (Linux), else ``platform.processor()``.

    MKL and oneDNN choose their kernels by these flags, below what ``get_cpu_capability()``
    reports: two AVX512 machines of another model compute different last bits.
    """
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or None
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = " ".join(sorted(fields.get("flags", "").split()))
    return f"{fields.get('model name', '?')} (flags {hashlib.sha256(flags.encode()).hexdigest()[:12]})"
