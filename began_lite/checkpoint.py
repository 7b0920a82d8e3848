"""Checkpoints: plain data only, written atomically, read without running code.

A checkpoint is one dict of tensors and plain values (numbers, strings, lists, dicts):
model and optimizer states, k, the step, the config as a dict, RNG states and the
history. It is written to a temporary file in the same folder, flushed to disk, then
renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a crash at
any moment leaves either the old file or the new one, never half of one. It is read with
``torch.load(..., weights_only=True)``: a file that would need to run code (a crafted
pickle) is refused with :class:`CheckpointError`, and nothing in it runs.
"""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch

__all__ = ["CheckpointError", "atomic_write", "atomic_write_bytes", "output_folder", "save_checkpoint",
           "load_checkpoint", "resolve_checkpoint", "checkpoint_config", "remove_stale_temporaries", "FORMAT",
           "CHECKPOINT_NAME", "check_finite", "prepare_run_dir"]

FORMAT = "began_lite.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, foreign, or not plain data."""


def atomic_write(path, write) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file beside it, fsync, then rename over it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file stands where a folder is needed
        raise ValueError(f"path: cannot create the folder of {str(path)!r}: a file is in the way") from None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove_stale_temporaries(folder) -> list[Path]:
    """Delete the temporary files (``.NAME.XXXX.tmp``) that a crash during an atomic write left
    in ``folder`` and its ``samples/``; returns them. Call it only when no other process is
    writing there (resuming a run does)."""
    removed = []
    for sub in (Path(folder), Path(folder) / "samples"):
        for p in sub.glob(".*.tmp") if sub.is_dir() else ():
            if p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def output_folder(path) -> Path:
    """``path`` as a folder for a command's output, created if missing; a file there is refused (``out``)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, but {str(out)!r} is a file")
    out.mkdir(parents=True, exist_ok=True)
    return out


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    atomic_write(Path(path), lambda f: f.write(data))


def save_checkpoint(state: dict, path) -> Path:
    """Save ``state`` (tensors and plain values) atomically to ``path``; returns the path."""
    state = dict(state, format=FORMAT)
    atomic_write(Path(path), lambda f: torch.save(state, f))
    return Path(path)


def resolve_checkpoint(path) -> Path:
    """A checkpoint file, or a run directory holding ``checkpoint.pt``."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise CheckpointError(f"checkpoint: the path must be a non-empty str or os.PathLike, got {path!r}")
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
        if not p.exists():
            raise CheckpointError(f"checkpoint: run directory {str(path)!r} holds no {CHECKPOINT_NAME}")
    if not p.exists():
        raise CheckpointError(f"checkpoint: {str(path)!r} does not exist")
    if not p.is_file():
        raise CheckpointError(f"checkpoint: {str(path)!r} is not a file")
    return p


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`, as plain data (``weights_only=True``)."""
    p = resolve_checkpoint(path)
    if not zipfile.is_zipfile(p):  # torch.save writes a zip archive; anything else is never unpickled
        raise CheckpointError(f"checkpoint: {str(p)!r} is truncated or not a checkpoint (not the zip archive "
                              f"that torch.save writes)")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only refuses any object it would have to construct by running code. Keep
        # torch's reason (which global), not its advice to retry with weights_only=False.
        reason = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line or "Unsupported" in line),
                      "it holds objects other than tensors and plain values")
        raise CheckpointError(f"checkpoint: {str(p)!r} is not plain data and was refused unread "
                              f"(weights_only=True; nothing in it ran): {reason}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint: {str(p)!r} is truncated or not a checkpoint "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint: {str(p)!r} is not a began_lite checkpoint (format {FORMAT!r} expected)")
    return state


def checkpoint_config(state: dict, path=""):
    """The :class:`~began_lite.config.TrainConfig` stored in a loaded checkpoint ``state``.

    A checkpoint with our format tag but no valid config (edited, or written by other code)
    raises :class:`CheckpointError`, not a ``KeyError`` from deep inside.
    """
    from .config import TrainConfig

    try:
        return TrainConfig.from_dict(state["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint: {str(path)!r} holds no valid training config "
                              f"({type(err).__name__}: {err})") from None


def check_finite(state: dict, parts) -> str | None:
    """The first of ``parts`` of ``state`` that holds a NaN or inf float tensor, else None."""
    for part in parts:
        if any(t.is_floating_point() and not torch.isfinite(t).all() for t in _tensors(state.get(part, {}))):
            return part
    return None


def _tensors(obj):
    """Every tensor inside nested dicts and lists (a state dict, an optimizer state)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def prepare_run_dir(path) -> Path:
    """The run folder ``path``, created if needed and checked writable (by a private temporary file)."""
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise ValueError(f"out must be a directory, but {str(d)!r} is a file")
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=d, prefix=".write_test.")  # O_EXCL: never an existing file or link
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"out: cannot write to {str(d)!r} ({err.strerror})") from None
    return d
