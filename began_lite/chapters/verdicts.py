"""The command line's verdict, stored: do the defaults draw all ten digits, seed after seed?

``python -m began_lite.chapters.verdicts --runs runs/verdicts --out data/results`` runs
``python -m began_lite verdict`` for every arm of :data:`VERDICTS` whose folder under ``--runs`` holds no
complete ``verdict.json`` yet (about 3 minutes a seed on 2 cores), then writes ``verdicts.json``: each arm's
command, seeds and result. The quick profile's shift, weight average and 3000 steps were chosen on seeds
0-4; seeds 5-14 were never looked at before, so they report the recipe out of sample, with the shift of
3 px (the defaults) beside DiffAugment's 2 px on every seed.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from ..checkpoint import atomic_write_bytes, output_folder

__all__ = ["VERDICTS", "verdicts_record", "main"]

# arm -> the seeds, the flags given to `train` beyond the defaults, and whether the recipe was chosen on these seeds
VERDICTS: dict[str, dict] = {
    "defaults, seeds 0-4": {"seeds": [0, 1, 2, 3, 4], "train_args": "", "chosen_on_these_seeds": True},
    "defaults, seeds 5-9": {"seeds": [5, 6, 7, 8, 9], "train_args": "", "chosen_on_these_seeds": False},
    "shift 2, seeds 5-9": {"seeds": [5, 6, 7, 8, 9], "train_args": "--shift 2", "chosen_on_these_seeds": False},
    # added after the three above: shift 2 on the seeds the recipe was chosen on, and both shifts on seeds
    # 10-14, fresh for both (no setting was chosen on them)
    "shift 2, seeds 0-4": {"seeds": [0, 1, 2, 3, 4], "train_args": "--shift 2", "chosen_on_these_seeds": True},
    "defaults, seeds 10-14": {"seeds": [10, 11, 12, 13, 14], "train_args": "", "chosen_on_these_seeds": False},
    "shift 2, seeds 10-14": {"seeds": [10, 11, 12, 13, 14], "train_args": "--shift 2", "chosen_on_these_seeds": False},
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
            "command": "python -m began_lite.chapters.verdicts --runs runs/verdicts --out data/results"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m began_lite.chapters.verdicts", allow_abbrev=False,
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", required=True, help="a folder for the verdicts' runs (kept: a rerun resumes)")
    p.add_argument("--out", required=True, help="the folder for verdicts.json, e.g. data/results")
    args = p.parse_args(argv)
    runs, out = Path(args.runs), output_folder(args.out)
    for arm in VERDICTS:
        folder = runs / _slug(arm)
        done = folder / "verdict.json"
        if done.exists() and json.loads(done.read_text()).get("complete"):
            continue
        print(f"{arm}: python -m began_lite {shlex.join(_command(arm, folder))}", flush=True)
        subprocess.run([sys.executable, "-m", "began_lite", *_command(arm, folder)], check=False)
    atomic_write_bytes(out / "verdicts.json", json.dumps(verdicts_record(runs), indent=1).encode())
    print(f"wrote {out / 'verdicts.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
