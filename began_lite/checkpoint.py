"""Checkpoints: plain data only, written atomically, verified when read.

A checkpoint is one dict of tensors and plain values (numbers, strings, lists, dicts):
model and optimizer states, k, the step, the config as a dict, RNG states and the history.

Writing: the bytes go to a temporary file in the same folder (``mkstemp``: a new file, never an
existing one or a link), are flushed to disk, then renamed over the target (``os.replace`` is
atomic), and the folder itself is flushed so that the rename survives a power cut. A crash at
any moment leaves the old file or the new one, never half of one. ``keep_previous`` first
links the file being replaced to ``NAME.prev.pt``. A write the operating system refuses (disk
full, file too large, read-only, permission, name too long) raises :class:`WriteError`, which
names the path; the file that was there is untouched.

Reading: the archive's directory is checked before anything is unpacked (``torch.save`` writes
uncompressed entries, so an entry may not be compressed nor larger than the file: a small file
cannot make a large allocation); then ``torch.load(..., weights_only=True)``, so a crafted
pickle runs nothing; then every tensor is checked against the sha256 digest stored with it at
save time, and every float tensor and ``k`` must be finite. Whatever fails is a
:class:`CheckpointError` naming the file and the part.
"""
from __future__ import annotations

import errno
import hashlib
import io
import math
import os
import pickle
import secrets
import tempfile
import zipfile
from pathlib import Path

import torch

__all__ = ["CheckpointError", "WriteError", "atomic_write", "atomic_write_bytes", "output_folder",
           "save_checkpoint", "load_checkpoint", "resolve_checkpoint", "checkpoint_config", "digests",
           "FORMAT", "CHECKPOINT_NAME", "check_finite", "previous_path", "fsync_folder"]

FORMAT = "began_lite.checkpoint/2"  # /2: every tensor's sha256 is stored beside it ("digests")
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint that is missing, truncated, damaged, foreign, or not plain data."""


class WriteError(OSError):
    """The operating system refused a write (ENOSPC, EFBIG, EROFS, ENAMETOOLONG, EACCES, ...).

    Raised with the path that could not be written; the file that was there is left as it was."""

    def __init__(self, path, err: OSError):
        super().__init__(err.errno, err.strerror, str(path))
        code = errno.errorcode.get(err.errno, str(err.errno)) if err.errno else type(err).__name__
        self.message = f"cannot write {str(path)!r}: {err.strerror or err} ({code})"

    def __str__(self) -> str:
        return self.message


def fsync_folder(folder) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as err:  # some file systems cannot fsync a folder; the rename stands anyway
        if err.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file stands where a folder is needed
        raise ValueError(f"path: cannot create the folder of {str(path)!r}: a file is in the way") from None
    except OSError as err:
        raise WriteError(path.parent, err) from None


def atomic_write(path, write) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file beside it, fsync, rename, fsync the folder."""
    path = Path(path)
    _make_parent(path)
    try:  # a short prefix: a long name must not make the temporary name too long
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    except OSError as err:
        raise WriteError(path, err) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, WriteError) and err.errno:
            raise WriteError(path, err) from None
        raise


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    atomic_write(Path(path), lambda f: f.write(data))


def output_folder(path) -> Path:
    """``path`` as a folder for a command's output: created if missing, a file there refused (``out``),
    and checked writable by a private temporary file (``mkstemp``: never an existing file or link)."""
    out = Path(path)
    if os.path.lexists(out) and not os.path.isdir(out):  # os.path: a name too long is no exception here
        raise ValueError(f"out must be a folder, but {str(out)!r} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"out: cannot create {str(out)!r}: a file is in the way") from None
    except OSError as err:
        raise WriteError(out, err) from None
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write_test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise WriteError(out, err) from None
    return out


def previous_path(path) -> Path:
    """Where :func:`save_checkpoint` keeps the file it replaces: ``checkpoint.pt`` -> ``checkpoint.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def _keep_previous(path: Path) -> None:
    """Link ``path`` to :func:`previous_path` (atomically: a new link renamed over the old one)."""
    prev, tmp = previous_path(path), path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    if os.path.isfile(prev) and os.path.samefile(path, prev):  # a save killed after this step: already kept
        return
    try:
        os.link(path, tmp)  # fails if tmp exists: never follows a planted name
        os.replace(tmp, prev)
    except OSError:  # a file system without hard links: a copy
        tmp.unlink(missing_ok=True)
        atomic_write_bytes(prev, path.read_bytes())


def save_checkpoint(state: dict, path, *, keep_previous: bool = False) -> Path:
    """Save ``state`` (tensors and plain values) with its :func:`digests`, atomically, to ``path``.

    The bytes are made in memory first, so that a full disk surfaces as a :class:`WriteError`
    from the write itself. ``keep_previous``: the file being replaced becomes ``NAME.prev.pt``."""
    state = dict(state, format=FORMAT)
    state.pop("digests", None)
    state["digests"] = digests(state)
    buf = io.BytesIO()
    torch.save(state, buf)
    path = Path(path)
    if keep_previous and path.is_file():
        _keep_previous(path)
    atomic_write_bytes(path, buf.getbuffer())
    return path


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


def _check_archive(p: Path) -> None:
    """Refuse, from the zip directory alone, an archive that would unpack to more than the file holds."""
    size = p.stat().st_size
    with zipfile.ZipFile(p) as z:
        for info in z.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise CheckpointError(f"checkpoint: {str(p)!r} holds a compressed entry {info.filename!r} "
                                      f"({info.file_size} bytes unpacked; torch.save writes none), refused unread")
            if info.file_size > size:
                raise CheckpointError(f"checkpoint: {str(p)!r} declares an entry {info.filename!r} of "
                                      f"{info.file_size} bytes in a file of {size}, refused unread")


def _load(p: Path, map_location) -> dict:
    if not zipfile.is_zipfile(p):  # torch.save writes a zip archive; anything else is never unpickled
        raise CheckpointError(f"checkpoint: {str(p)!r} is truncated or not a checkpoint (not the zip archive "
                              f"that torch.save writes)")
    try:
        _check_archive(p)
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # weights_only refuses any object it would have to construct by running code. Keep
        # torch's reason (which global), not its advice to retry with weights_only=False.
        reason = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line or "Unsupported" in line),
                      "it holds objects other than tensors and plain values")
        raise CheckpointError(f"checkpoint: {str(p)!r} is not plain data and was refused unread "
                              f"(weights_only=True; nothing in it ran): {reason}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint: {str(p)!r} is truncated or not a checkpoint "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`, as plain data, verified (see the module)."""
    p = resolve_checkpoint(path)
    state = _load(p, map_location)
    if not isinstance(state, dict) or not str(state.get("format", "")).startswith("began_lite.checkpoint/"):
        raise CheckpointError(f"checkpoint: {str(p)!r} is not a began_lite checkpoint (format {FORMAT!r} expected)")
    if state["format"] != FORMAT or not isinstance(state.get("digests"), dict):
        raise CheckpointError(f"checkpoint: {str(p)!r} was written by an earlier began_lite ({state['format']}, "
                              f"without the digests of {FORMAT}) and cannot be verified")
    actual = digests(state)
    bad = next((k for k in sorted(actual.keys() | state["digests"].keys())
                if actual.get(k) != state["digests"].get(k)), None)
    if bad is not None:
        raise CheckpointError(f"checkpoint: {str(p)!r} is damaged: {bad} does not match the sha256 digest "
                              f"stored with it")
    nonfinite = check_finite(state, list(state)) or ("k" if not math.isfinite(float(state.get("k", 0.0))) else None)
    if nonfinite:
        raise CheckpointError(f"checkpoint: {str(p)!r} holds NaN or inf in {nonfinite} (began_lite never "
                              f"saves one), refused")
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


def _leaves(obj, path: str = ""):
    """(path, value) for every tensor and plain value inside nested dicts, lists and tuples."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{path}/{k}" if path else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{path}/{i}")
    else:
        yield path, obj


def _tensor_digest(t: torch.Tensor) -> str:
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype} {tuple(t.shape)} ".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy())  # the bytes as stored, any dtype
    return h.hexdigest()


def digests(state: dict) -> dict:
    """sha256 of every tensor of ``state`` by its path (``"generator/fc.weight"``), and one of all
    its plain values together (``"plain values"``); the entry ``"digests"`` itself is left out."""
    out, plain = {}, hashlib.sha256()
    for path, v in _leaves({k: v for k, v in state.items() if k != "digests"}):
        if isinstance(v, torch.Tensor):
            out[path] = _tensor_digest(v)
        else:
            plain.update(f"{path}={v!r};".encode())
    out["plain values"] = plain.hexdigest()
    return out


def check_finite(state: dict, parts) -> str | None:
    """The first of ``parts`` of ``state`` that holds a NaN or inf float tensor, else None."""
    for part in parts:
        for _, t in _leaves(state.get(part, {})):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all():
                return part
    return None
