"""The command line's verdict, stored: do the defaults draw all ten digits, seed after seed?

``python -m began_lite.chapters.verdicts --runs runs/verdicts --out data/results --jobs 2`` runs
``python -m began_lite verdict`` for every arm of :data:`VERDICTS` whose folder under ``--runs`` holds no
complete ``verdict.json`` yet, ``--jobs`` arms at a time with one thread each (``OMP_NUM_THREADS=1``, as
the stored records were made; about 6 minutes a seed per core at n = 24), then writes ``verdicts.json``:
each arm's command, seeds and result. The quick profile's shift, weight average and 3000 steps were chosen on seeds
0-4, its n = 24 filters on seeds 0-4 and 10-14 (against n = 16); seeds 5-9 were never looked at before, so they
report the recipe out of sample, with the shift of 3 px (the defaults) beside DiffAugment's 2 px. The defaults'
verdicts on seeds 10-14 and on the fresh seeds 15-24 were run as ``--train-args="--filters 24"`` before n = 24
became the default, and are stored in ``data/results/candidates/filters-24`` (chapter 5 reads them beside this
record, and checks that the seeds both hold are the same runs).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ..checkpoint import atomic_write_bytes, output_folder

__all__ = ["VERDICTS", "verdicts_record", "main"]

# arm -> the seeds, the flags given to `train` beyond the defaults, and whether the recipe was chosen on these seeds
VERDICTS: dict[str, dict] = {
    "defaults, seeds 0-4": {"seeds": [0, 1, 2, 3, 4], "train_args": "", "chosen_on_these_seeds": True},
    "defaults, seeds 5-9": {"seeds": [5, 6, 7, 8, 9], "train_args": "", "chosen_on_these_seeds": False},
    "shift 2, seeds 5-9": {"seeds": [5, 6, 7, 8, 9], "train_args": "--shift 2", "chosen_on_these_seeds": False},
    # the record at n = 16 also held shift 2 on seeds 0-4 and both shifts on seeds 10-14; at n = 24 they were not
    # remade (the defaults on 10-14 are the candidate's runs, read from data/results/candidates/filters-24)
}


def _slug(arm: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in arm).strip("-")


def _command(arm: str, folder: Path) -> list[str]:
    spec = VERDICTS[arm]
    cmd = ["verdict", "--seeds", *map(str, spec["seeds"]), "--out", str(folder)]
    return cmd + ([f"--train-args={spec['train_args']}"] if spec["train_args"] else [])


def verdicts_record(runs: Path) -> dict:
    """The record of every arm whose ``runs/<arm>/verdict.json`` is complete; the others are named
    in ``not_run`` (a record never holds an arm's partial seeds)."""
    arms, not_run = {}, []
    for arm, spec in VERDICTS.items():
        path = runs / _slug(arm) / "verdict.json"
        result = json.loads(path.read_text()) if path.exists() else {}
        if not result.get("complete"):
            not_run.append(arm)
            continue
        arms[arm] = {**spec, "command": "python -m began_lite " + shlex.join(_command(arm, Path("runs") / _slug(arm))),
                     "result": result}
    return {"experiment": "verdicts", "rule": next(iter(arms.values()))["result"]["rule"], "arms": arms,
            "not_run": not_run,
            "command": "python -m began_lite.chapters.verdicts --runs runs/verdicts --out data/results --jobs 2"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m began_lite.chapters.verdicts", allow_abbrev=False,
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True, help="a folder for the verdicts' runs (kept: a rerun skips the complete "
                                                 "arms and starts an interrupted one again, its folder set aside)")
    p.add_argument("--out", required=True, help="the folder for verdicts.json, e.g. data/results")
    p.add_argument("--jobs", type=int, default=1,
                   help="arms run at a time, each train with one thread (OMP_NUM_THREADS=1); default 1")
    args = p.parse_args(argv)
    if not 1 <= args.jobs <= 64:
        p.error(f"--jobs must be an integer in [1, 64], got {args.jobs}")
    runs, out = Path(args.runs), output_folder(args.out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running: list[subprocess.Popen] = []
    for arm in VERDICTS:
        folder = runs / _slug(arm)
        done = folder / "verdict.json"
        if done.exists() and json.loads(done.read_text()).get("complete"):
            continue
        if folder.exists():  # interrupted: `verdict` trains fresh runs only, so keep this one aside
            aside = folder.with_name(f"{folder.name}.interrupted-{time.strftime('%Y%m%d-%H%M%S')}")
            folder.rename(aside)
            print(f"{arm}: an interrupted attempt, moved to {aside}", flush=True)
        while len(running) >= args.jobs:  # wait for a free slot
            running = [proc for proc in running if proc.poll() is None]
            time.sleep(0 if len(running) < args.jobs else 2)
        print(f"{arm}: OMP_NUM_THREADS=1 python -m began_lite {shlex.join(_command(arm, folder))}", flush=True)
        running.append(subprocess.Popen([sys.executable, "-m", "began_lite", *_command(arm, folder)], env=env))
    for proc in running:
        proc.wait()
    atomic_write_bytes(out / "verdicts.json", json.dumps(verdicts_record(runs), indent=1).encode())
    print(f"wrote {out / 'verdicts.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
