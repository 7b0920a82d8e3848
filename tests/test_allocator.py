"""The allocator fix (began_lite.perf.allocator): opt-in, a no-op off glibc, and it stops the page faults.

The page-fault counts are the measurement the fix rests on (issue 19): a 64 MiB buffer
allocated, written and freed again maps fresh pages each time with glibc's defaults (16,384
faults of 4 KiB), and, after a few rounds, none once malloc is tuned, whether by the
environment at start-up or by tune_malloc() called after torch is imported. Each case runs
in a fresh process.
"""
import re
import subprocess
import sys

import pytest

from began_lite.perf import allocator
from began_lite.perf.allocator import TUNED_ENV, glibc

CHILD = """
import resource, sys, torch
import began_lite, began_lite.perf.bench, began_lite.perf.allocator as a  # importing must change nothing ("none")
if sys.argv[1] == "call":
    print(a.tune_malloc(), file=sys.stderr)
for i in range(16):
    if i == 12:  # a tuned heap reaches its steady state within a few rounds (memalign's padding)
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.empty(16 * 2**20).fill_(1.0)  # 64 MiB, written: every page touched
    del x
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 4)
"""


def faults_per_buffer(how: str) -> float:
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": ":".join(sys.path)}
    env.update(TUNED_ENV if how == "env" else {})
    run = subprocess.run([sys.executable, "-c", CHILD, how], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return float(run.stdout.split()[-1])


@pytest.mark.skipif(glibc() is None, reason="the fix applies to glibc only")
def test_tuned_malloc_reuses_freed_memory():
    default, env, call = (faults_per_buffer(how) for how in ("none", "env", "call"))
    assert default > 10_000  # 64 MiB / 4 KiB = 16,384 pages mapped afresh each time: importing tuned nothing
    assert env < 100 and call < 100  # tune_malloc() after `import torch` does what the environment does


def test_not_glibc_is_a_no_op_with_a_note(monkeypatch):
    monkeypatch.setattr(allocator, "glibc", lambda: None)
    note = allocator.tune_malloc()
    assert note.startswith("malloc: left as it is") and "\n" not in note


def test_train_reports_the_fix_in_its_first_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "began_lite", "train", "--dataset", "digits", "--image-size", "8",
                          "--filters", "4", "--steps", "1", "--out", str(tmp_path / "r"), "--no-progress",
                          "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    first = run.stderr.splitlines()[0]
    assert first.startswith("training began on digits") and "; malloc: " in first
    assert ("tuned to reuse freed memory" in first) == (glibc() is not None)


@pytest.mark.skipif(glibc() is None, reason="glibc only")
def test_libc_name_names_glibc_and_its_version():
    assert re.fullmatch(r"glibc \d+\.\d+", allocator.libc_name())
