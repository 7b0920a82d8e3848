"""``python -m began_lite experiment NAME ... --out DIR``: remake the stored experiments of chapters 2-7.

The experiments and what each arm trains are :mod:`began_lite.chapters.registry`'s; this module
only reads the command line. ``--out`` is checked writable before anything trains.
"""
from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    from ..chapters.registry import EXPERIMENTS

    x = sub.add_parser("experiment", help="remake stored experiments of chapters 2-7 (data/results/NAME.json)",
                       description="Train what the stored records of chapters 2-7 need and write them as "
                                   "OUT/NAME.json; --out is checked writable before anything trains.")
    x.add_argument("names", nargs="+", metavar="NAME",
                   help="'all', or any of the digit sweeps (each arm states its settings; runs shared by two are "
                        "trained once): " + ", ".join(EXPERIMENTS) + "; and faces, faces-flip (the LFW faces), "
                        "mixtures (2-D), showcase (the quick profile's seed 0: weights and pictures)")
    x.add_argument("--out", required=True, help="folder for NAME.json, e.g. data/results")
    x.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each (default 1)")
    x.add_argument("--no-progress", action="store_true", dest="no_progress", help="no line per finished run")
    x.set_defaults(run=run, tune_malloc=True)


def run(args) -> int:
    from ..chapters.remake import main

    return main(args)
