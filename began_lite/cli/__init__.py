"""The command line: ``python -m began_lite {train,sample,evaluate,experiment,verdict,bench} ...``.

One module per command, each with ``add_parser(subparsers)`` and ``run(args) -> int``; this one
builds the parser (no abbreviations: ``--step`` is not ``--steps``), dispatches, and turns every
expected failure into one line on stderr, ``error: ...``, and an exit code:

== ====================================================================================
 0 done
 1 ``train``: training diverged (a loss or weight became NaN or inf; the last good,
   verified checkpoint is kept and named). ``verdict``: a seed fails the rule.
   ``experiment``: a record could not be made
 2 bad input: a flag, a path, a file or checkpoint refused (truncated, damaged, not plain
   data, not finite), a folder that holds another run, data that is not the run's
 3 the run folder is in use: another process trains it (its pid is named)
 4 a write failed: disk full, file too large, read-only file system, permission denied,
   name too long (the path is named; what was saved before stays as it was)
130 stopped by Ctrl-C (SIGINT): the step was finished and saved; ``train --resume`` goes on
143 stopped by SIGTERM (``kill``, ``docker stop``, a batch scheduler): as Ctrl-C
== ====================================================================================
"""
from __future__ import annotations

import argparse
import re
import signal
import sys
import threading

from . import bench, evaluate, experiment, sample, train, verdict

__all__ = ["main", "build_parser", "EXIT_CODES"]

EXIT_CODES = {0: "done", 1: "train: diverged (verdict: a seed fails; experiment: a record not made)",
              2: "bad input", 3: "run folder in use by another process", 4: "a write failed (disk, permissions)",
              130: "stopped by Ctrl-C, saved", 143: "stopped by SIGTERM, saved"}
COMMANDS = (train, sample, evaluate, experiment, verdict, bench)


class Terminated(BaseException):
    """SIGTERM outside the training loop (which stops at the end of a step instead)."""


class Parser(argparse.ArgumentParser):
    """No abbreviated flags; bad input ends with one line, exit code 2, no usage dump."""

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message):
        # argparse says "invalid int value: 'x'"; say what is accepted instead.
        message = re.sub(r"invalid int value: (.*)$", r"must be an integer, got \1", message)
        message = re.sub(r"invalid float value: (.*)$", r"must be a number, got \1", message)
        self.exit(2, f"error: {message}\n")


def build_parser() -> Parser:
    from .. import __version__

    p = Parser(prog="python -m began_lite", description="BEGAN and EBGAN, small and complete.",
               formatter_class=argparse.RawDescriptionHelpFormatter,
               epilog="exit codes:\n" + "".join(f"  {k:>3}  {v}\n" for k, v in EXIT_CODES.items()) +
                      "`python -m began_lite COMMAND --help` lists a command's flags.")
    p.add_argument("--version", action="version", version=f"began_lite {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def _terminate(signum, frame):
    raise Terminated


def _dispatch(args) -> int:
    from ..checkpoint import CheckpointError, WriteError
    from ..runfolder import RunFolderBusy
    from ..step import TrainingDiverged

    try:
        return args.run(args)
    except RunFolderBusy as err:
        code, message = 3, err
    except WriteError as err:
        code, message = 4, err
    except (ValueError, CheckpointError) as err:
        code, message = 2, err
    except TrainingDiverged as err:
        code, message = 1, err
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (loading data), or in another command
        code, message = 130, "interrupted (Ctrl-C); nothing half-written was left"
    except Terminated:
        code, message = 143, "stopped (SIGTERM); nothing half-written was left"
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    """Run one command; returns its exit code (the module's table)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        sys.stderr.write(parser.format_usage())
        print("error: no command given; try `python -m began_lite --help`", file=sys.stderr)
        return 2
    if getattr(args, "tune_malloc", False):  # keep freed memory for reuse (began_lite.perf.allocator)
        from ..perf.allocator import tune_malloc

        args.malloc_note = tune_malloc()
    main_thread = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return _dispatch(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old)
