"""Keep freed memory for reuse: glibc's malloc tuned for training on a CPU (appendix "Benchmarks").

glibc's ``malloc`` serves every request above its mmap threshold (128 KiB at first, rising
with the sizes freed up to 32 MiB) with a fresh ``mmap`` and gives it back with ``munmap``
when freed, and it hands the top of its heap back to the kernel once more than the trim
threshold (128 KiB at first) is free there. A training step allocates and frees the same
large activation buffers every step, so every step maps new pages, and the kernel
zero-fills each 4 KiB page on first touch: a minor page fault. At 64 px a CPU step takes
hundreds of thousands of them (appendix "Benchmarks").

:func:`tune_malloc` sets two ``mallopt`` parameters through ``ctypes``:

* ``M_MMAP_MAX = 0``: no request is served by ``mmap``; large buffers come from the heap;
* ``M_TRIM_THRESHOLD = -1``: freed heap memory is kept, never handed back (mallopt(3)).

Freed buffers are then reused by the next step, already mapped: no page faults. The cost:
the process keeps its peak heap resident until it ends (its resident set no longer falls
between steps), and big blocks freed in the middle of the heap cannot be returned. It is
the same as starting Python with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736``
in the environment (the Makefile does that for the chapters). It applies to allocations
made after the call, so calling it after ``import torch`` works.

Importing this module changes nothing: the command line calls :func:`tune_malloc`, a
notebook may opt in with one call (``from began_lite.perf.allocator import tune_malloc;
tune_malloc()``). Where the C library is not glibc (macOS, musl, Windows) it does nothing and
says so. Setting it cannot be undone reliably (glibc then
stops adapting its mmap threshold), so the benchmark compares the two in separate processes.
"""
from __future__ import annotations

import ctypes
import platform

__all__ = ["tune_malloc", "TUNED_ENV", "glibc", "libc_name"]

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's <malloc.h>
# The same settings as environment variables, read by glibc when a process starts (64 GiB: never trim).
TUNED_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(64 * 2**30)}


def glibc():
    """The running C library when it is glibc (it has ``gnu_get_libc_version``), else None."""
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this process already runs on
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        return libc
    except (OSError, AttributeError):  # musl has no gnu_get_libc_version
        return None


def libc_name() -> str:
    """The C library this process runs on, for a report: ``"glibc 2.36"``, else what Python can tell."""
    libc = glibc()
    if libc is not None:
        return f"glibc {libc.gnu_get_libc_version().decode()}"
    return platform.libc_ver()[0] or "not glibc"


def tune_malloc() -> str:
    """Make glibc's malloc keep and reuse freed memory (no mmap, no trimming); returns a one-line note.

    A no-op with a note where the C library is not glibc. Calling it twice is harmless.
    """
    libc = glibc()
    if libc is None:
        return f"malloc: left as it is ({platform.system()}, not glibc: the fix applies to glibc only)"
    if libc.mallopt(M_MMAP_MAX, 0) != 1 or libc.mallopt(M_TRIM_THRESHOLD, -1) != 1:
        return "malloc: left as it is (glibc refused mallopt)"
    version = libc.gnu_get_libc_version().decode()
    return f"malloc: glibc {version} tuned to reuse freed memory (no mmap, no trim; began_lite.perf.allocator)"

