"""Stored results: where they live, what made them, and how a chapter checks a rerun against one.

A record in ``data/results/NAME.json`` holds the configuration of every run in full, the
command that made it, and :func:`provenance` (software, processor, kernels, threads, date).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..device import cpu_id

__all__ = ["RESULTS_DIR", "stored_result", "load_showcase", "load_showcase_run", "provenance", "cpu_id",
           "same_computation", "check_rerun", "kernel_switches", "KERNEL_SWITCHES", "save_run", "restore_run"]

# Where the documented `python -m began_lite experiment NAME ...` commands store their records
# (data/results/README.md); the chapters read them from here.
RESULTS_DIR = Path(__file__).resolve().parents[2] / "data" / "results"


def stored_result(name: str) -> dict:
    """The stored record ``data/results/NAME.json`` (plain data: config, seeds, provenance, runs)."""
    path = RESULTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no stored result {str(path)!r}; make it with `python -m began_lite experiment "
                                f"{name} --out data/results` (data/results/README.md)")
    return json.loads(path.read_text())


def load_showcase(path=None):
    """The stored showcase generator (``data/results/showcase.pt``, a ``weights_only`` load), in eval mode, on the CPU:
    the sampling generator of the quick profile's seed 0, the run the introduction shows."""
    from ..checkpoint import load_checkpoint
    from ..config import TrainConfig
    from ..models import build_generator

    state = load_checkpoint(RESULTS_DIR / "showcase.pt" if path is None else path)
    G = build_generator(TrainConfig.from_dict(state["config"]))
    G.load_state_dict(state["generator"])
    return G.eval()


def save_run(trainer, report: dict, path) -> None:
    """A finished run whole: the trainer's state and its report, in one checkpoint (run cache, showcase-run.pt)."""
    from ..checkpoint import save_checkpoint

    save_checkpoint({**trainer.state_dict(), "report": json.dumps(report)}, path)


def restore_run(state: dict, trainer) -> dict:
    """Load a :func:`save_run` checkpoint's ``state`` into ``trainer``; return its report, marked cached."""
    trainer.load_state_dict(state)
    return {**json.loads(state["report"]), "cached": True}


def load_showcase_run():
    """The showcase run whole (``data/results/showcase-run.pt``, a ``weights_only`` load): ``(trainer, report)``.

    The trainer stands at step 3000 with G, D, the weight average, k_t, the optimisers and the history
    of every step, as :func:`~began_lite.chapters.runs.digit_run` left it; the report is the one
    ``digit_run(3000, seed=0, eval_every=250)`` returns. Chapter 4 reads the run instead of training it
    again (about 6 minutes of one core, three times that under slower kernels) and retrains its first
    500 steps to check it (:func:`check_rerun`).
    """
    from ..checkpoint import load_checkpoint
    from ..config import TrainConfig
    from ..train import Trainer
    from .runs import real_digits

    state = load_checkpoint(RESULTS_DIR / "showcase-run.pt")
    trainer = Trainer(TrainConfig.from_dict(state["config"]), real_digits(state["config"]["image_size"]))
    return trainer, restore_run(state, trainer)


def provenance() -> dict:
    """What a stored result needs to be trusted: software, machine, commit and date."""
    from .. import __version__
    from ..device import pick_device

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"began_lite": __version__, "git_commit": commit, "torch": str(torch.__version__),
            "python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            # the CPU kernels torch picked (AVX512, AVX2, ...) and the processor MKL and oneDNN pick theirs
            # by, and MKL's own switch: another changes the last bits of a sum (same_computation)
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_id(),
            "mkl_instructions": os.environ.get("MKL_ENABLE_INSTRUCTIONS") or None,
            "kernel_switches": kernel_switches(),
            "device": str(pick_device("auto")),
            "load_average": os.getloadavg()[0],  # other work on the machine inflates wall times
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


KERNEL_SWITCHES = ("MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")


def kernel_switches() -> dict[str, str | None]:
    """The variables that make MKL and oneDNN take another code path on the same processor."""
    return {name: os.environ.get(name) or None for name in KERNEL_SWITCHES}


def same_computation(record_provenance: dict) -> tuple[bool, str]:
    """Whether this process computes what the record's did, bit for bit, and why (or why not).

    A CPU run is reproducible to the last bit only with the same CPU kernels
    (``torch.backends.cpu.get_cpu_capability()``; ``ATEN_CPU_CAPABILITY`` picks another), the
    same processor (:func:`cpu_id`: MKL and oneDNN pick their own kernels by it), the same switches
    of MKL's and oneDNN's paths (:data:`KERNEL_SWITCHES`), the same thread count and the same torch version: each
    changes how a sum is split, and a GAN run carries the last-bit difference forward until it
    shows in the second digit. A record without one of these is unknown, so not the same.
    """
    here = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_id(),
            "torch_threads": torch.get_num_threads(), "torch": str(torch.__version__)}
    missing = [key for key in here if record_provenance.get(key) is None]
    differ = [key for key, value in here.items() if key not in missing and record_provenance[key] != value]
    # Records made before the switches were stored name MKL_ENABLE_INSTRUCTIONS alone; the others were
    # unset when they were made (every record of data/results: `experiment` run with none of them set).
    recorded = record_provenance.get("kernel_switches") or {
        "MKL_ENABLE_INSTRUCTIONS": record_provenance.get("mkl_instructions")}
    differ += [name for name, value in kernel_switches().items() if recorded.get(name) != value]
    if missing or differ:
        # Which fields differ, never their values: the reason is printed by chapters that nbval compares.
        why = ([f"not recorded: {', '.join(missing)}"] if missing else []) + \
            ([f"recorded with another {', '.join(differ)}"] if differ else [])
        return False, "; ".join(why)
    return True, "the record's processor, kernels, threads and torch"


def check_rerun(record: dict, rerun, stored, seed_values, *, rel_tol: float = 1e-4, what: str = "rerun") -> str:
    """Check a rerun of part of a stored run against its record; return the rule that applied.

    ``record`` is the stored record (its ``provenance`` says where it was computed), ``rerun``
    a number (or array) computed now, ``stored`` the same number of the stored run, and
    ``seed_values`` that number for every stored seed of the same arm at the same step
    (``stored`` among them). Where this process computes as the record's did
    (:func:`same_computation`), the rerun must agree exactly, to ``rel_tol``: a stored result
    the code no longer produces fails. Elsewhere the rerun is another draw of the same
    computation, and it must lie within twice the stored seeds' spread of ``stored``:
    ``|rerun - stored| <= 2 (max(seed_values) - min(seed_values))``. Twice, because the range
    of three draws is a short ruler: a fourth draw falls outside it half the time.

    Returns the rule that applied, in words that do not depend on the machine (so that a
    chapter can print it): ``"exact"`` or ``"within twice the stored seeds' spread"``.
    Raises ``AssertionError`` when the rerun fails the rule.
    """
    rerun, stored = np.asarray(rerun, dtype=float), np.asarray(stored, dtype=float)
    same, why = same_computation(record["provenance"])
    if same:
        if not np.allclose(rerun, stored, rtol=rel_tol, atol=0.0):
            worst = float(np.max(np.abs(rerun - stored) / np.maximum(np.abs(stored), 1e-300)))
            raise AssertionError(f"{what}: not the stored result on the record's machine ({why}): largest relative "
                                 f"difference {worst:.2e} > {rel_tol:g}")
        return "exact"
    seeds = np.asarray(seed_values, dtype=float)
    if len(seeds) < 2:
        raise ValueError(f"{what}: a seed spread needs the values of at least 2 stored seeds, got {len(seeds)}")
    spread = seeds.max(0) - seeds.min(0)
    gap = np.abs(rerun - stored)
    if not np.all(gap <= 2 * spread):
        raise AssertionError(f"{what}: {rerun} is {np.max(gap - 2 * spread):.4g} outside twice the stored seed "
                             f"spread (stored {stored}, seeds {seed_values}); computed elsewhere: {why}")
    return "within twice the stored seeds' spread"
