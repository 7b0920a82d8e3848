"""Run one command of the GPU check and record how it went: status, seconds, error, result.

A command is a ``python -m MODULE ARGS...`` line. :func:`run_command` runs it in a process group
of its own with a time limit (the GPU form: a hang or crash is recorded with its last lines, and
the next stage still runs); :func:`run_here` runs the same line in this process, as ``python -m``
would but without a new interpreter (the CPU form: seconds instead of a minute of imports).
Either way the output goes to a log file, and a line ``GPU_CHECK_RESULT {json}`` in it is the
command's result; a result holding a failed check makes the command a failure.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import runpy
import signal
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

__all__ = ["RESULT", "ROOT", "run_command", "run_here", "judge"]

ROOT = Path(__file__).resolve().parents[2]  # the repository: children run there, and import began_lite from it
RESULT = "GPU_CHECK_RESULT "  # a child's last line: this prefix, then its result as JSON


def judge(record: dict) -> dict:
    """A command that ended well but whose result holds a failed check is a failure."""
    bad = [k for k, v in ((record.get("result") or {}).get("checks") or {}).items() if not v]
    if record["status"] == "ok" and bad:
        record.update(status="failed", error=f"check(s) failed: {', '.join(bad)}")
    return record


def _record(cmd: list, log: Path, offset: int, rc, limit: float, seconds: float) -> dict:
    """The record of a command whose output is in ``log`` from ``offset`` on; ``rc`` None: stopped at ``limit``."""
    with open(log, errors="replace") as f:
        f.seek(offset)
        lines = f.read().splitlines()
    results = [json.loads(line[len(RESULT):]) for line in lines if line.startswith(RESULT)]
    tail = "\n".join(line for line in lines[-40:] if not line.startswith(RESULT))
    # The cause: the last exception or `error:` line (torchrun prints its own report after the worker's).
    cause = next((ln.strip() for ln in reversed(lines) if re.match(r"\s*(\w+\.)*\w*(Error|Exception)\b|error:", ln)
                  and "ChildFailedError" not in ln),
                 next((ln for ln in reversed(lines) if ln.strip()), ""))
    record = {"status": "ok", "seconds": round(seconds, 1), "limit_s": round(limit), "log": log.name,
              "command": " ".join(cmd), "error": None, "result": results[-1] if results else None}
    if rc is None:
        record.update(status="timeout", error=f"stopped at its limit of {limit:.0f} s; last lines:\n{tail}")
    elif rc != 0:
        record.update(status="failed", error=f"exit code {rc}: {cause[:300]}\nlast lines:\n{tail}")
    return judge(record)


def _begin(log: Path, cmd: list) -> int:
    """Write the command line to ``log``; return where its output starts."""
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        return f.tell()


def run_command(cmd: list, log: Path, limit: float, env: dict | None = None) -> dict:
    """Run ``cmd`` in a process group of its own, output appended to ``log``, killed after ``limit`` s;
    its record: status (ok, failed, timeout), seconds, the error's last lines, the child's RESULT."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [str(c) for c in cmd]
    offset, start = _begin(log, cmd), time.perf_counter()
    with open(log, "a") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        try:
            rc = p.wait(timeout=max(1.0, limit))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the group: torchrun's workers and compile workers too
            p.wait()
            rc = None
    return _record(cmd, log, offset, rc, limit, time.perf_counter() - start)


def _module_and_args(cmd: list) -> tuple[str, list]:
    """``python -m MODULE ARGS`` -> (MODULE, ARGS); under torchrun's launcher, the module it would start
    (parsed by torchrun's own parser: here one process takes the place of its one worker)."""
    if cmd[1] != "-m":
        raise ValueError(f"cmd must be a `python -m MODULE ...` line, got {' '.join(cmd)!r}")
    if cmd[2] != "torch.distributed.run":
        return cmd[2], cmd[3:]
    from torch.distributed.run import get_args_parser

    launcher = get_args_parser().parse_args(cmd[3:])
    if not launcher.module or launcher.nproc_per_node != "1":
        raise ValueError("run_here runs one torchrun worker started with -m, as `--nproc_per_node=1 -m MODULE`")
    return launcher.training_script, launcher.training_script_args


def run_here(cmd: list, log: Path, limit: float, env: dict | None = None) -> dict:
    """Run ``cmd`` in this process (``runpy``, as ``python -m`` runs a module), output appended to ``log``;
    recorded as :func:`run_command` records it. Nothing stops it: a run past ``limit`` is recorded as
    a timeout when it ends. ``env`` must be empty (the environment of this process is not changed)."""
    if env:
        raise ValueError(f"env: run_here leaves the environment as it is, got {env!r}")
    cmd = [str(c) for c in cmd]
    module, args = _module_and_args(cmd)
    offset, start, argv, rc = _begin(log, cmd), time.perf_counter(), sys.argv, 0
    with open(log, "a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        try:
            sys.argv = [module, *args]
            with warnings.catch_warnings():  # the module may be imported already; running it again is the point
                warnings.filterwarnings("ignore", message=".*found in sys.modules", category=RuntimeWarning)
                runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            rc = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except Exception:  # noqa: BLE001  (recorded with its traceback, as a child's would be)
            traceback.print_exc()
            rc = 1
        finally:
            sys.argv = argv
    seconds = time.perf_counter() - start
    record = _record(cmd, log, offset, rc, limit, seconds)
    if record["status"] == "ok" and seconds > limit:
        record.update(status="timeout", error=f"ran {seconds:.0f} s, past its limit of {limit:.0f} s (in this "
                                              f"process, so not stopped)")
    return record
