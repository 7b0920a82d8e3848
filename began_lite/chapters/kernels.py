"""The chapters' checks under other CPU kernels: what each assert saw, kernel set by kernel set.

PyTorch picks its kernels by processor, so a reader's machine computes the last bits of every result
differently, and a training run carries them into the printed digits. ``make nbval-foreign`` says
*whether* the chapters pass under another set of kernels; this records *what the checks saw*, so that
the margin each assert keeps can be read beside the values it took on another CPU.

``python -m began_lite.chapters.kernels run --name NAME [VAR=VALUE ...]`` executes every chapter
(two at a time, one thread each, a fresh run cache, as ``make execute`` does) with the variables given
and writes ``data/results/kernel-sets/NAME.json``: the kernel set (the variables, the capability torch
reports under them, the processor, torch), and for every code cell that asserts something, its printed
output, whether it passed and its time. ``python -m began_lite.chapters.kernels table`` prints the
stored sets side by side, the assert cells whose printed output differs between sets. ``--chapters``
runs some chapters again and keeps the others' entries (each entry names its commit and date).
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from ..checkpoint import atomic_write_bytes
from ..device import cpu_id

__all__ = ["assert_cells", "notebook_seconds", "run_set", "table", "main"]

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "data" / "results" / "kernel-sets"
CHAPTER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "BEGAN_LITE_PROFILE": "quick",
               "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736"}


def _asserts(source: str) -> bool:
    return any(line.lstrip().startswith("assert ") for line in source.splitlines())


def _text(outputs: list[dict]) -> tuple[str, str | None]:
    """(printed text, the error's name and message or None) of one cell's outputs."""
    text, error = [], None
    for out in outputs:
        if out.get("output_type") == "stream":
            text.append("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
        elif out.get("output_type") == "execute_result":
            plain = out.get("data", {}).get("text/plain", "")
            text.append("".join(plain) if isinstance(plain, list) else plain)
        elif out.get("output_type") == "error":
            error = f"{out['ename']}: {out['evalue']}"
    return "".join(text), error


def assert_cells(notebook: dict) -> list[dict]:
    """Every code cell of an executed notebook that holds an ``assert``: index, output, error, seconds."""
    cells = []
    for index, cell in enumerate(notebook["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] != "code" or not _asserts(source):
            continue
        text, error = _text(cell.get("outputs", []))
        seconds = _span([cell])
        cells.append({"cell": index, "passed": error is None, "error": error, "output": text,
                      "seconds": None if seconds is None else round(seconds, 1)})
    return cells


def _span(cells: list[dict]) -> float | None:
    """Seconds from the first cell's start to the last one's reply, from the timestamps Jupyter stores."""
    times = [c.get("metadata", {}).get("execution", {}) for c in cells]
    starts = [t["iopub.execute_input"] for t in times if "iopub.execute_input" in t]
    ends = [t["shell.execute_reply"] for t in times if "shell.execute_reply" in t]
    if not starts or not ends:
        return None
    start, end = (datetime.fromisoformat(min(starts).rstrip("Z")), datetime.fromisoformat(max(ends).rstrip("Z")))
    return (end - start).total_seconds()


def notebook_seconds(path) -> float:
    """How long a notebook's last execution took (0 where it records none or cannot be read)."""
    try:
        return _span(json.loads(Path(path).read_text())["cells"]) or 0.0
    except (OSError, KeyError, ValueError):
        return 0.0


_EXECUTE = """
import json, sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=3600, allow_errors=True, record_timing=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def _execute(chapter: Path, env: dict[str, str], folder: Path) -> tuple[dict, float]:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        out = folder / chapter.name
        subprocess.run([sys.executable, "-c", _EXECUTE, str(chapter), str(chapter.parent), str(out)],
                       env={**os.environ, **CHAPTER_ENV, "BEGAN_LITE_CACHE": cache, **env}, check=True)
    return json.loads(out.read_text()), time.perf_counter() - start


def _machine(env: dict[str, str]) -> dict:
    probe = ("import torch; print(torch.backends.cpu.get_cpu_capability()); "
             "print(torch.__version__)")
    capability, torch_version = subprocess.run(
        [sys.executable, "-c", probe], env={**os.environ, **env}, capture_output=True, text=True,
        check=True).stdout.split()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return {"capability": capability, "torch": torch_version, "processor": cpu_id(),
            "cores": os.cpu_count(), "git_commit": commit}


def run_set(name: str, env: dict[str, str], chapters: list[Path], jobs: int = 2, out: Path = OUT,
            inplace: bool = False) -> dict:
    """Execute ``chapters`` under ``env``, ``jobs`` at a time, and store what their asserts saw.

    ``inplace``: also write each executed chapter over its file (for the native set: one execution
    serves as ``make execute`` and as the record)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    machine, date = _machine(env), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    record = {"name": name, "env": env, **machine, "date": date,
              "command": "python -m began_lite.chapters.kernels run --name " + name
              + "".join(f" {k}={v}" for k, v in env.items()), "chapters": {}}
    stored = out / f"{name}.json"

    def others() -> dict:  # a set run again on some chapters keeps the others (read when writing)
        if not stored.exists():
            return {}
        old = json.loads(stored.read_text())
        if old["env"] != env or old["capability"] != machine["capability"]:
            raise ValueError(f"{stored} holds the set {old['env']} ({old['capability']}), not {env}: "
                             "name this set otherwise")
        return old["chapters"]

    others()  # refuse a clash before hours of work
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(jobs) as pool:
        done = pool.map(lambda c: (c, *_execute(c, env, Path(folder))), chapters)
        for chapter, notebook, seconds in done:
            if inplace:  # the executed chapter replaces the stored one, as `make execute` would
                atomic_write_bytes(chapter, (Path(folder) / chapter.name).read_bytes())
            cells = assert_cells(notebook)
            record["chapters"][chapter.name] = {"seconds": round(seconds), "git_commit": machine["git_commit"],
                                                "date": date, "cells": cells}
            failed = [c["cell"] for c in cells if not c["passed"]]
            print(f"{name}: {chapter.name} in {seconds:.0f} s, {len(cells)} assert cells, "
                  f"failed: {failed or 'none'}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    record["chapters"] = {**others(), **record["chapters"]}
    atomic_write_bytes(out / f"{name}.json", (json.dumps(record, indent=1) + "\n").encode())
    return record


def table(records: list[dict]) -> str:
    """Markdown: per chapter, time and failures per set; then every assert cell whose output differs."""
    names = [r["name"] for r in records]
    lines = ["| chapter | " + " | ".join(f"{n} ({r['capability']})" for n, r in zip(names, records)) + " |",
             "|---" * (len(records) + 1) + "|"]
    chapters = sorted(set().union(*(r["chapters"] for r in records)))
    for chapter in chapters:
        row = []
        for r in records:
            c = r["chapters"].get(chapter)
            failed = [x["cell"] for x in c["cells"] if not x["passed"]] if c else None
            row.append("-" if c is None else f"{c['seconds']} s, " + (f"failed {failed}" if failed else "passed"))
        lines.append(f"| {chapter} | " + " | ".join(row) + " |")
    for chapter in chapters:
        first = records[0]["chapters"].get(chapter)
        for cell in first["cells"] if first else []:
            outputs = [next((x for x in r["chapters"].get(chapter, {}).get("cells", [])
                             if x["cell"] == cell["cell"]), None) for r in records]
            texts = [o["output"] if o else "" for o in outputs]
            if len(set(texts)) == 1:
                continue
            lines += ["", f"### {chapter}, cell {cell['cell']}"]
            base = texts[0].splitlines()
            for name, text in zip(names[1:], texts[1:]):
                if text == texts[0]:
                    lines.append(f"{name}: the same as {names[0]}")
                    continue
                diff = [d for d in difflib.unified_diff(base, text.splitlines(), names[0], name, n=0, lineterm="")
                        if not d.startswith("@@")]
                lines += ["```", *diff, "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m began_lite.chapters.kernels", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute every chapter under a kernel set and store what its asserts saw")
    run.add_argument("--name", required=True, help="the set's name (the record's file name)")
    run.add_argument("env", nargs="*", help="VAR=VALUE settings, e.g. ATEN_CPU_CAPABILITY=default")
    run.add_argument("--jobs", type=int, default=2, help="chapters at a time (default 2)")
    run.add_argument("--chapters", nargs="*", type=Path, help="default: every book/0*.ipynb")
    run.add_argument("--inplace", action="store_true", help="write the executed chapters over their files")
    show = sub.add_parser("table", help="print the stored kernel sets side by side")
    show.add_argument("names", nargs="*", help="the sets, in order (default: all stored, native first)")
    args = parser.parse_args(argv)
    if args.command == "run":
        bad = [e for e in args.env if "=" not in e]
        if bad:
            parser.error(f"env settings must be VAR=VALUE, got {bad}")
        missing = [str(c) for c in args.chapters or () if c.suffix != ".ipynb" or not c.is_file()]
        if missing:
            parser.error(f"--chapters takes notebook files, got {missing} (VAR=VALUE settings go before --chapters)")
        # longest first, so that two at a time finish together
        chapters = sorted(args.chapters or (ROOT / "book").glob("0*.ipynb"), key=notebook_seconds, reverse=True)
        run_set(args.name, dict(e.split("=", 1) for e in args.env), chapters, args.jobs, inplace=args.inplace)
        return 0
    names = args.names or sorted((p.stem for p in OUT.glob("*.json")), key=lambda n: (n != "native", n))
    if not names:
        parser.error(f"no stored kernel sets in {OUT}")
    print(table([json.loads((OUT / f"{n}.json").read_text()) for n in names]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
