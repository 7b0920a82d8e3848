"""A run folder belongs to one run, and to one process at a time while it trains.

* :class:`RunLock`: an exclusive advisory lock (``fcntl.flock``) on ``FOLDER/.lock`` for as long
  as a process trains or resumes the run. A second writer is refused at once with
  :class:`RunFolderBusy`, which names the holder's pid (written into the lock file). The lock
  goes with the process, however it ends (even SIGKILL), so a stale lock cannot block a resume.
  Readers (``sample``, ``evaluate``) take no lock: every file is replaced by an atomic rename,
  so they always see a whole one. Half-written temporary files of a killed save are removed
  only under the lock, never while another process may be writing them.
* :func:`claim`: a new run refuses a folder that holds a run, unless asked to replace it.
* :func:`check_resume_target`: resuming from a checkpoint *file* writes into that file's own
  folder, and never replaces a newer checkpoint there with an older one.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from .checkpoint import (CHECKPOINT_NAME, CheckpointError, WriteError, load_checkpoint, output_folder,
                         previous_path)

__all__ = ["RunLock", "RunFolderBusy", "LOCK_NAME", "RUN_FILES", "run_files", "claim", "check_resume_target",
           "remove_stale_temporaries", "BEST_NAME"]

LOCK_NAME = ".lock"
BEST_NAME = "best.pt"
# What a run writes into its folder (a folder holding any of them holds a run).
RUN_FILES = (CHECKPOINT_NAME, previous_path(CHECKPOINT_NAME).name, BEST_NAME, "history.json", "history.csv",
             "config.json", "samples")


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder's lock: it is training that run."""


class RunLock:
    """``with RunLock(folder):`` holds ``folder/.lock`` exclusively, or raises :class:`RunFolderBusy`.

    The folder is created if needed (:func:`~began_lite.checkpoint.output_folder`), and removed
    again when the block fails before anything but the lock was written there. On entering, the
    temporary files that a killed save left behind are removed: the lock says nobody else is
    writing. Where ``fcntl`` does not exist (Windows) the lock is not taken.
    """

    def __init__(self, folder):
        self.folder, self.fd = Path(folder), None
        self.created = not os.path.lexists(self.folder)

    def __enter__(self) -> "RunLock":
        output_folder(self.folder)
        try:
            import fcntl
        except ImportError:  # no advisory locks on this system
            return self
        path = self.folder / LOCK_NAME
        try:  # O_NOFOLLOW: a planted link is refused, never followed
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as err:
            if os.path.islink(path):
                raise ValueError(f"out: {str(path)!r} is a symbolic link, not a lock file; remove it") from None
            raise WriteError(path, err) from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            self.fd = None
            raise RunFolderBusy(f"run folder {str(self.folder)!r} is in use: process {holder} is training it "
                                f"(it holds {str(path)!r}); wait for it to end, or stop it with Ctrl-C or "
                                f"`kill -TERM {holder}` (it saves, then exits)") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        remove_stale_temporaries(self.folder)
        return self

    def __exit__(self, exc_type, *exc) -> bool:
        if self.fd is None:
            return False
        lock = self.folder / LOCK_NAME
        failed_empty = exc_type is not None and self.created and [p.name for p in self.folder.iterdir()] == [LOCK_NAME]
        if failed_empty:  # a run refused before its first file: leave no folder behind
            lock.unlink(missing_ok=True)
        os.close(self.fd)  # otherwise the file stays: deleting a lock file lets two processes lock two files
        self.fd = None
        if failed_empty:
            with contextlib.suppress(OSError):
                self.folder.rmdir()
        return False


def remove_stale_temporaries(folder) -> list[Path]:
    """Delete the temporary files (``.NAME.XXXX.tmp``) that a crash during an atomic write left in
    ``folder`` and its ``samples/``; returns them. Call it only under the folder's :class:`RunLock`."""
    removed = []
    for sub in (Path(folder), Path(folder) / "samples"):
        for p in sub.glob(".*.tmp") if sub.is_dir() else ():
            if p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def run_files(folder) -> list[str]:
    """The names of what a run wrote that ``folder`` holds (empty: no run there)."""
    return [name for name in RUN_FILES if (Path(folder) / name).exists()]


def claim(folder, *, overwrite: bool = False) -> None:
    """Make ``folder`` (locked by the caller) ready for a new run: refuse it when it holds a run,
    unless ``overwrite``, which deletes that run's files (and only those)."""
    folder = Path(folder)
    found = run_files(folder)
    if not found:
        return
    if not overwrite:
        raise ValueError(f"out: {str(folder)!r} holds a run ({', '.join(found)}); continue it with "
                         f"`train --resume {folder}`, or start a new run there with --overwrite (which deletes "
                         f"that run's files), or give another --out")
    for name in found:
        p = folder / name
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        except OSError as err:
            raise WriteError(p, err) from None


def check_resume_target(checkpoint, state: dict) -> None:
    """Resuming from the file ``checkpoint`` (loaded as ``state``) saves into its folder's
    ``checkpoint.pt``: refuse when that file is newer (a later step) or cannot be read."""
    checkpoint = Path(checkpoint)
    own = checkpoint.parent / CHECKPOINT_NAME
    if not own.exists() or own.resolve() == checkpoint.resolve():
        return
    try:
        newer = int(load_checkpoint(own)["step"])
    except CheckpointError as err:
        raise CheckpointError(f"resume: resuming {str(checkpoint)!r} would replace {str(own)!r}, which cannot "
                              f"be read ({err}); move that file away first") from None
    if newer > int(state["step"]):
        raise ValueError(f"resume: {str(own)!r} is at step {newer}, newer than {str(checkpoint)!r} (step "
                         f"{int(state['step'])}), and resuming saves over it; continue the run with "
                         f"`train --resume {checkpoint.parent}`, or copy {checkpoint.name} into a new folder "
                         f"to branch from it")
