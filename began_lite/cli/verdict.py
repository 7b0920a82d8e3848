"""The digit verdict: does the command line, with its defaults, train a BEGAN that draws all ten digits?

``python -m began_lite verdict --seeds 0 1 2 --out runs/verdict`` runs, for every seed, the
three commands a reader would type, each as its own process, exactly as typed::

    python -m began_lite train --dataset digits --image-size 16 --out DIR/seedS --seed S --no-progress
    python -m began_lite sample --checkpoint DIR/seedS --n 1000 --out DIR/seedS.npz
    python -m began_lite evaluate --samples DIR/seedS.npz --json

and prints, per seed, the wall time of the whole ``train`` command (start-up and data loading
included), the classes the evaluator's classifier finds, their balance and the Fréchet
distance. ``--train-args="..."`` adds flags to ``train`` (a recipe to compare with the
defaults; a flag given twice counts once, the later). The record, with the commands and
:func:`~began_lite.chapters.records.provenance`, is written to ``DIR/verdict.json``.

A seed *passes* when all ten classes are covered (at least 2% of the confidently classified
samples each, :func:`~began_lite.evaluate.mode_coverage`) and no class takes more than
``max_share`` of all samples (default 0.2, twice an equal share): "all ten classes in
roughly equal shares" made a rule. The rule is ours; the numbers beside it let a reader
apply another. The command exits with 0 when every seed passes, 1 when one does not, and 2
on bad input. Library functions print nothing; :func:`run` does.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["add_parser", "run", "run_verdict", "seed_passes"]

# Flags the verdict sets itself: a recipe given with --train-args cannot move them.
_OWN_FLAGS = ("--out", "--seed", "--resume", "--dataset", "--data", "--overwrite")


def add_parser(sub) -> None:
    v = sub.add_parser("verdict", help="train, sample and evaluate digits through the command line for several "
                                       "seeds: do all ten classes appear in roughly equal shares?",
                       description="For each seed: train --dataset digits --image-size 16 (the defaults, plus "
                                   "--train-args), sample --n N, evaluate. A seed passes with all ten classes "
                                   "covered and none above --max-share of the samples. Exit 0: every seed passes; "
                                   "1: not; 2: bad input.")
    v.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default: 0 1 2")
    v.add_argument("--out", required=True, help="a new folder for the runs, samples and verdict.json")
    v.add_argument("--n", type=int, default=1000, help="samples drawn per seed (>= 2)")
    v.add_argument("--train-args", dest="train_args", default="",
                   help='more flags for `train`, in one string after an equals sign, e.g. '
                        '--train-args="--eta 2 --steps 1000" (default: none, the command line\'s defaults)')
    v.add_argument("--max-share", type=float, default=0.2, dest="max_share",
                   help="largest share of the samples one class may take for a seed to pass (default 0.2)")
    v.set_defaults(run=run, tune_malloc=True)


def seed_passes(report: dict, max_share: float = 0.2) -> bool:
    """All ten classes covered and none above ``max_share`` of the samples."""
    return report["classes_covered"] == len(report["counts"]) == 10 and report["max_share"] <= max_share


def _check(seeds, n: int, train_args, max_share: float) -> tuple[list[int], list[str]]:
    """The seeds as a list and the extra flags of ``train``, after the checks."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (list, tuple)) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seeds must be integers >= 0, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (the Fréchet distance needs two samples), got {n!r}")
    if isinstance(max_share, bool) or not isinstance(max_share, (int, float)) or not 0.1 <= max_share <= 1:
        raise ValueError(f"max_share must be a number in [0.1, 1] (0.1 is an exactly equal share), got {max_share!r}")
    try:
        args = shlex.split(train_args) if isinstance(train_args, str) else [str(a) for a in train_args]
    except ValueError as err:  # an unclosed quote
        raise ValueError(f"train_args: cannot be split into flags ({err}): {train_args!r}") from None
    own = [f for f in (a.split("=")[0] for a in args) if f in _OWN_FLAGS]  # `train` takes no abbreviations
    if own:
        raise ValueError(f"train_args: {own[0]} is set by the verdict itself; give the other flags of "
                         f"`train` only (got {' '.join(args)!r})")
    return list(seeds), args


def _run(cmd: list[str], label: str) -> tuple[float, subprocess.CompletedProcess]:
    """Run one command; its wall time and the finished process (its stdout and stderr apart, so a
    warning cannot garble the JSON `evaluate` prints). A failure is a ValueError quoting its last line."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        last = ((done.stderr or done.stdout).strip().splitlines() or ["(no output)"])[-1]
        raise ValueError(f"{label}: `{shlex.join(cmd[2:])}` failed with exit code {done.returncode}: {last}")
    return seconds, done


def run_verdict(seeds, out, *, n: int = 1000, train_args=(), max_share: float = 0.2, progress=None) -> dict:
    """Train, sample and evaluate through the command line for every seed; return the record.

    ``progress``, if given, is called with each seed's result as it finishes.
    """
    from ..chapters.records import provenance
    from ..checkpoint import atomic_write_bytes, output_folder

    seeds, extra = _check(seeds, n, train_args, max_share)
    out = Path(out)
    taken = [str(out / f"seed{s}") for s in seeds if (out / f"seed{s}").exists() or (out / f"seed{s}.npz").exists()]
    if taken:
        raise ValueError(f"out: {taken[0]} exists already; the verdict trains fresh runs, so give a new folder")
    output_folder(out)  # refuses a file
    cli = [sys.executable, "-m", "began_lite"]
    machine = provenance()  # once: it asks git for the commit, and the machine does not change between seeds
    results, start = [], time.perf_counter()
    for s in seeds:
        run_dir, npz = out / f"seed{s}", out / f"seed{s}.npz"
        train = [*cli, "train", "--dataset", "digits", "--image-size", "16", "--out", str(run_dir), "--seed", str(s),
                 "--no-progress", *extra]
        train_seconds, trained = _run(train, "train_args" if extra else "train")
        sample = [*cli, "sample", "--checkpoint", str(run_dir), "--n", str(n), "--out", str(npz)]
        _run(sample, "sample")
        evaluate = [*cli, "evaluate", "--samples", str(npz), "--json"]
        report = json.loads(_run(evaluate, "evaluate")[1].stdout)
        done = [line for line in trained.stderr.splitlines() if line.startswith("done: step")]  # train's summary
        result = {"seed": s, "train_command": shlex.join(train), "train_wall_seconds": train_seconds,
                  "train_summary": done[-1] if done else None, "report": report,
                  "passes": seed_passes(report, max_share)}
        results.append(result)
        # written after every seed, so an interrupted verdict keeps the seeds it finished
        record = {"experiment": "verdict", "seeds": seeds, "n": n, "train_args": extra, "max_share": max_share,
                  "rule": f"all 10 classes covered and no class above {max_share:.0%} of the samples",
                  "runs": results, "complete": len(results) == len(seeds),
                  "all_pass": all(r["passes"] for r in results), "wall_seconds": time.perf_counter() - start,
                  "provenance": machine}
        atomic_write_bytes(out / "verdict.json", json.dumps(record, indent=1).encode())
        if progress is not None:
            progress(result)
    return record


def format_result(r: dict) -> str:
    rep = r["report"]
    return (f"seed {r['seed']}: train {r['train_wall_seconds']:6.1f} s   classes {rep['classes_covered']:2d}/10   "
            f"largest share {rep['max_share']:.3f}   KL {rep['kl_from_uniform']:.3f}   Frechet {rep['frechet']:6.1f}   "
            f"{'passes' if r['passes'] else 'fails'}")


def run(args) -> int:
    record = run_verdict(args.seeds, args.out, n=args.n, train_args=args.train_args or "", max_share=args.max_share,
                         progress=lambda r: print(format_result(r), flush=True))
    walls = [r["train_wall_seconds"] for r in record["runs"]]
    print(f"rule: {record['rule']}\n{sum(r['passes'] for r in record['runs'])} of {len(walls)} seeds pass; "
          f"slowest train command {max(walls):.1f} s; wrote {Path(args.out) / 'verdict.json'}")
    return 0 if record["all_pass"] else 1

