"""``python -m began_lite bench``: time training steps against a plain PyTorch step (:mod:`began_lite.perf.bench`).

The options live here, so that ``--help`` needs nothing of the speed tools; the work is theirs.
"""
from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="time training steps against a plain PyTorch step: steps/s, FLOPs, memory",
                       description="Steps per second, FLOPs and memory of our training step beside a plain "
                                   "PyTorch step, on the CPU and the GPU where one is present.")
    b.add_argument("--quick", action="store_true",
                   help="the CI form (seconds): 16 px, batch 16, n = 32 filters, 3 timed steps")
    b.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                   help="all (default): the CPU, and the GPU where one is present")
    b.add_argument("--sizes", type=int, nargs="+", help="image sizes (default 16 32 64 128)")
    b.add_argument("--batches", type=int, nargs="+", help="batch sizes (default 16 64)")
    b.add_argument("--variants", nargs="+", default=["ours"],
                   help="our step as it is ('ours') and/or with one setting changed: float32, compile (each timed "
                        "beside the plain step)")
    b.add_argument("--malloc", choices=("both", "tuned", "default"), default="both",
                   help="each row with glibc's malloc tuned (began_lite.perf.allocator) and/or as it comes "
                        "(default: both, each in a process of its own; only 'default' where the C library is not "
                        "glibc)")
    b.add_argument("--compile", action="store_true",
                   help="add the variant 'compile' (torch.compile; its '1st s' column is the compile time)")
    b.add_argument("--filters", type=int,
                   help="n, the width unit of the networks (default: the paper's 128; 32 with --quick)")
    b.add_argument("--steps", type=int, help="timed steps per implementation (default: about --seconds worth, "
                                              "at least 3)")
    b.add_argument("--seconds", type=float, default=10.0,
                   help="time for the timed steps of the slowest implementation of a row (default 10)")
    b.add_argument("--max-seconds", type=float, default=300.0, dest="max_seconds",
                   help="on a CPU, skip a row whose warm-up and 3 timed steps would take longer (default 300)")
    b.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: PyTorch's choice)")
    b.add_argument("--processes", type=int, nargs="?", const=0,
                   help="instead of the table: quick-profile steps/s of one process with P threads against P "
                        "one-thread processes at once (P: the number given, else the CPU count)")
    b.add_argument("--json", help="also write the results to this file")
    b.set_defaults(run=run, tune_malloc=True)


def run(args) -> int:
    from ..perf.bench import main

    return main(args)
