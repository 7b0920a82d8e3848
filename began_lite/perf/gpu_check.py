"""The GPU check (appendix "Measured on one GPU"): ``python -m began_lite.perf.gpu_check --out DIR``.

Five stages, each command in a process group of its own with a time limit
(:func:`~began_lite.perf.runner.run_command`), so that a failure or hang is recorded (with its last
lines) and the next stage still runs: ``versions`` (GPU, driver,
torch, CUDA, matmul peaks), ``bench`` (float32, then bf16 autocast, at 64/128 px, batch 16/64,
n = 128, beside the plain float32 step), ``train`` (the full profile at 64 px on the LFW faces that
scikit-image ships, for TRAIN_SECONDS), ``torchrun`` (an NCCL group, then ``train`` for 40 steps)
and ``compile`` (bf16 + torch.compile, one cold compile per size and batch; last, as the slowest,
in what ``--budget`` leaves). DIR gets 8 files, no folders: gpu_check.json (the summary, written
after every stage), versions.log, bench.log, bench.json, train.log, history.csv, samples.png and
torchrun.log. ``--cpu`` runs it all at toy sizes on the CPU, each command in this process
(:func:`~began_lite.perf.runner.run_here`; torchrun's launcher parsed, its one worker run here), so
that a typo cannot break the one GPU run; NCCL and compile, which need CUDA, are then skipped.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .runner import RESULT, judge, run_command, run_here

STAGES = ("versions", "bench", "train", "torchrun", "compile")
LIMITS = {"versions": 60, "bench": 90, "train": 120, "torchrun": 60, "compile": 120}  # seconds per GPU command
TRAIN_SECONDS = 75  # wall-clock training in the train stage on the GPU (CPU: 2)
GRID = ((64, 16), (128, 64), (64, 64), (128, 16))  # (image size, batch) of the bench rows; compile's order:
# the paper's batch at 64 px and the largest row first, in case the budget ends before the others


# --------------------------------------------------------------------------- the children's work
def _versions(cpu: bool) -> dict:
    import platform

    import skimage
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "skimage": skimage.__version__,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32}
    if cpu:
        info["device"] = "cpu"
    else:
        p, nccl = torch.cuda.get_device_properties(0), torch.cuda.nccl.version()
        smi = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        info.update(device=p.name, memory_gib=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count,
                    capability=f"{p.major}.{p.minor}",
                    nccl=".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl,
                    driver=subprocess.run(smi, capture_output=True, text=True).stdout.strip()
                    if shutil.which(smi[0]) else None)
    try:  # the versions above are kept if the bench module or the peak fails
        from .flops import measure_peak

        for t in (torch.float32,) if cpu else (torch.float32, torch.bfloat16):  # CPU: a small product, to run the code
            info[f"peak_{str(t)[6:]}_gflops"] = measure_peak("cpu" if cpu else "cuda", t, n=256 if cpu else None) / 1e9
    except Exception as err:  # noqa: BLE001
        info["peak_error"] = f"{type(err).__name__}: {err}"
    return {**info, "checks": {"peaks_measured": "peak_error" not in info}}


def _train(out: Path, seconds: float, cpu: bool) -> dict:
    """The full profile (toy sizes with ``cpu``) for ``seconds``; history.csv and samples.png to ``out``."""
    import numpy as np

    from ..callbacks import write_samples
    from ..config import TrainConfig
    from ..data import load_digits, load_faces
    from ..device import autocast_dtype
    from ..train import Trainer

    size = 16 if cpu else 64
    try:  # lfw_subset.npy ships inside scikit-image: nothing to download
        data, source = load_faces(size), f"skimage.data.lfw_subset: 100 grey 25x25 faces, bilinear to {size} px"
    except Exception as err:  # noqa: BLE001 (whatever failed: say so, and train on the digits)
        data, source = load_digits(size), f"load_digits, as lfw_subset failed: {type(err).__name__}: {err}"
    data = data.repeat(1, 3, 1, 1)  # (N, 3, S, S): the grey repeated, for the full profile's RGB networks
    toy = {"filters": 8, "batch_size": 8} if cpu else {}
    config = TrainConfig.for_profile("full", device="cpu" if cpu else "cuda", image_size=size, channels=3, **toy)
    trainer, warm = Trainer(config, data), 20  # the first steps (kernel choice, allocations) are not timed
    start = t_warm = time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.train_step()  # reads its losses on the host: the step has ended when it returns
        if trainer.step == warm:
            t_warm = time.perf_counter()
    end, timed = time.perf_counter(), trainer.step - warm
    (out / "history.csv").write_text(trainer.history.to_csv())
    write_samples(trainer, out / "samples.png")
    h, w = trainer.history, max(1, trainer.step // 10)
    m = h["m_global"]
    checks = {"losses_finite": bool(all(np.isfinite(h[c]).all() for c in ("loss_real", "loss_fake", "m_global"))),
              "k_moving": bool((h["k"] != config.k0).any())}  # it may end clipped at 0 again
    if trainer.step >= 500:  # fewer steps say nothing about M_global (the CPU form takes ~50)
        checks["m_global_falling"] = bool(m[-w:].mean() < m[:w].mean())
    return {"data": source, "channels": "3 (grey repeated)", "image_size": size, "filters": config.filters,
            "batch_size": config.batch_size, "autocast": str(autocast_dtype(config.dtype, trainer.device)),
            "steps": trainer.step,
            "seconds": end - start, "s_per_1000_steps": 1000 * (end - t_warm) / timed if timed > 0 else None,
            "k_final": trainer.k, "k_max": float(h["k"].max()),
            "loss_fake_distinct": len(set(h["loss_fake"].tolist())), "m_global_first_tenth": float(m[:w].mean()),
            "m_global_last_tenth": float(m[-w:].mean()), "checks": checks}


def _nccl() -> dict:
    import torch
    import torch.distributed as dist

    rank = int(os.environ.get("LOCAL_RANK", 0))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", device_id=torch.device("cuda", rank))
    t = torch.full((1024,), float(dist.get_rank() + 1), device="cuda")
    dist.all_reduce(t)
    dist.barrier()
    n = dist.get_world_size()
    result = {"backend": dist.get_backend(), "world_size": n,
              "checks": {"all_reduce": bool((t == n * (n + 1) / 2).all())}}
    dist.destroy_process_group()
    return result


# --------------------------------------------------------------------------- the parent
def _bench(cpu: bool, grid, variants, path: Path) -> list:
    """The `bench` command for ``grid`` and ``variants``, malloc tuned only (on a GPU the allocator is not
    the question); on the CPU with ``--quick`` too, for its small matrix-product peak."""
    return [sys.executable, "-m", "began_lite", "bench", "--device", "cpu" if cpu else "cuda",
            "--sizes", *sorted({s for s, _ in grid}), "--batches", *sorted({b for _, b in grid}),
            "--filters", 8 if cpu else 128, "--variants", *variants, "--seconds", 0.2 if cpu else 3,
            "--max-seconds", 60, "--malloc", "tuned", "--json", path] + ["--quick"] * cpu


def _commands(cpu: bool, me: list, tmp: Path) -> dict:
    """Each stage's commands, as (argv, log file, extra environment); None: needs CUDA, skipped on the CPU."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    flags = ["--profile", "quick", "--image-size", 16, "--device", "cpu", "--steps", 3] if cpu else \
        ["--profile", "full", "--image-size", 64, "--device", "cuda", "--steps", 40, "--checkpoint-every", 20]
    train = launch + ["-m", "began_lite", "train", "--dataset", "faces", *flags, "--no-progress", "--out", tmp / "run"]
    return {"versions": [(me + ["--stage", "versions"], "versions.log", None)],
            # On the GPU one process per variant, so that one failing leaves the other; on the CPU one, for time.
            "bench": [(_bench(cpu, [(16, 4)] if cpu else GRID, v, tmp / f"bench{i}.json"), "bench.log", None)
                      for i, v in enumerate([["float32", "ours"]] if cpu else [["float32"], ["ours"]])],
            "train": [(me + ["--stage", "train", "--seconds", 2 if cpu else TRAIN_SECONDS], "train.log", None)],
            "torchrun": [None if cpu else (launch + me[1:] + ["--stage", "nccl"], "torchrun.log",
                                           {"NCCL_DEBUG": "INFO"}),
                         (train, "torchrun.log", None)],
            "compile": [None if cpu else (_bench(cpu, [g], ["compile"], tmp / f"bench{i + 2}.json"), "bench.log", None)
                        for i, g in enumerate(GRID)]}


def _run_dir(run_dir: Path, steps: int) -> dict:
    """What `train` under torchrun left: its checkpoint, and how many steps its history holds."""
    history, ckpt = run_dir / "history.json", run_dir / "checkpoint.pt"
    done = int(json.loads(history.read_text())["step"][-1]) if history.exists() else 0
    return {"steps": done, "checkpoint_bytes": ckpt.stat().st_size if ckpt.exists() else None,
            "checks": {"checkpoint_written": ckpt.exists(), "trained_all_steps": done == steps}}


def _bench_rows(runs: list[dict]) -> list[dict]:
    """Every run's rows, each with its ratio to the plain float32 step of the same run (each run
    times the plain step again: only the first run's plain rows are kept), by size, batch, variant."""
    out = []
    for i, run in enumerate(runs):
        rows, key = run.get("rows", []), lambda r: (r.get("image_size"), r.get("batch_size"))
        plain = {key(r): r.get("steps_per_s") for r in rows if r.get("impl") == "plain"}
        for r in (r for r in rows if r.get("impl") != "plain" or i == 0):
            p, s = plain.get(key(r)), r.get("steps_per_s")
            out.append({**r, "ratio_to_plain": s / p if s and p else None})
    order = {"plain": 0, "float32": 1, "ours": 2, "compile": 3}
    return sorted(out, key=lambda r: (r.get("image_size") or 0, r.get("batch_size") or 0, order.get(r.get("impl"), 4)))


def _stage(commands: list, run, left, budget: float) -> list[dict]:
    """Each of a stage's commands run by ``run`` within ``left()`` seconds (a record each); skipped, and
    why, when it needs CUDA (None) or when less than 15 s of the budget is left."""
    recs = []
    for c in commands:
        if c is None or left() < 15:
            recs.append({"status": "skipped", "seconds": 0.0, "result": None, "command": c and " ".join(map(str, c[0])),
                         "error": "needs CUDA" if c is None else f"out of time: --budget {budget:.0f} s was spent"})
        else:
            recs.append(run(c[0], Path(c[1]), left(), c[2]))
    return recs


def _summarise(recs: list[dict]) -> dict:
    """A stage's record: its first failure, else its first command that ran; seconds summed; with
    several commands (bench, torchrun, compile) each one's status and result."""
    ran = [r for r in recs if r["status"] != "skipped"] or recs
    rec = {**([r for r in ran if r["status"] != "ok"] or ran)[0], "seconds": round(sum(r["seconds"] for r in recs))}
    if len(recs) > 1:
        rec["result"] = [{"status": r["status"], **(r["result"] or {}), "error": r["error"],
                          "command": r.get("command")} for r in recs]
    return rec


def check(out: Path, *, cpu: bool, budget: float, only=STAGES, command: str = "") -> dict:
    """Run the stages named in ``only`` into ``out`` (``cpu``: the CPU form, every command in this
    process); return the summary, also written to gpu_check.json after every stage. ``command`` is
    the command line the summary names."""
    out = Path(out).resolve()  # the children run in the repository's root
    out.mkdir(parents=True, exist_ok=True)
    t0, run = time.perf_counter(), run_here if cpu else run_command
    me = [sys.executable, "-m", "began_lite.perf.gpu_check", "--out", out] + ["--cpu"] * cpu
    summary = {"mode": "cpu" if cpu else "cuda", "command": command, "budget_s": budget, "stages": {},
               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        plan = _commands(cpu, me, Path(tmp))
        for name in (n for n in STAGES if n in only):
            print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
            # A stage's limit keeps a hang from spending the GPU's time; the CPU form checks commands, not times.
            left = lambda: min(math.inf if cpu else LIMITS[name], budget - (time.perf_counter() - t0))  # noqa: E731
            recs = _stage([c and (c[0], out / c[1], c[2]) for c in plan[name]], run, left, budget)
            if name == "torchrun" and recs[-1]["status"] != "skipped":
                recs[-1] = judge({**recs[-1], "result": _run_dir(Path(tmp) / "run", 3 if cpu else 40)})
            summary["stages"][name] = rec = _summarise(recs)
            runs = [json.loads(f.read_text()) for f in sorted(Path(tmp).glob("bench*.json"))]
            summary["bench"], summary["wall_s"] = _bench_rows(runs), round(time.perf_counter() - t0, 1)
            if runs:
                (out / "bench.json").write_text(json.dumps({"runs": runs}, indent=1))
            (out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
            print(f"gpu_check: {name} {rec['status']} in {rec['seconds']:.0f} s", file=sys.stderr, flush=True)
    summary["files"] = sorted({p.name for p in out.iterdir()} | {"gpu_check.json"})
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
    return summary


NOTES = {"versions": ("device", "driver", "torch", "cuda", "peak_float32_gflops", "peak_bfloat16_gflops"),
         "train": ("steps", "s_per_1000_steps", "k_final", "k_max", "loss_fake_distinct", "m_global_first_tenth",
                   "m_global_last_tenth")}


def _note(name: str, r: dict) -> str:
    x, first = r.get("result"), lambda e: (e or "").split("\n")[0][:100]
    if isinstance(x, list):  # several commands
        return "; ".join(c["status"] + (f" ({first(c['error'])})" if c["error"] else f" ({c['steps']} steps)"
                                        if "steps" in c else "") for c in x)
    if r["status"] != "ok" or not x:
        return first(r.get("error"))
    return ", ".join(f"{k} {x[k]:.4g}" if isinstance(x[k], float) else f"{k} {x[k]}"
                     for k in NOTES.get(name, ()) if k in x)


def format_summary(summary: dict) -> str:
    """The stages (status, seconds, what each found or its error's first line) and the bench rows."""
    lines = [f"{'stage':9s} {'status':8s} {'s':>5s}  note"]
    lines += [f"{n:9s} {r['status']:8s} {r['seconds']:5.0f}  {_note(n, r)}" for n, r in summary["stages"].items()]
    lines += ["", f"{'size':>4s} {'batch':>5s} {'variant':13s} {'steps/s':>8s} {'img/s':>8s} {'MiB':>7s} {'%peak':>6s} "
                  f"{'1st s':>6s} {'x plain':>7s}"] * bool(summary.get("bench"))
    for r in summary.get("bench", []):
        impl = {"plain": "plain fp32", "float32": "fp32"}.get(r.get("impl"), str(r.get("impl")))
        impl += " bf16" if r.get("impl") in ("ours", "compile") and r.get("peak_name") == "bfloat16" else ""
        cells = [(r.get("steps_per_s"), "8.1f"), (r.get("images_per_s"), "8.0f"), (r.get("memory_mib"), "7.0f"),
                 (r["peak_fraction"] * 100 if r.get("peak_fraction") else None, "6.1f"),
                 (r.get("first_step_s"), "6.1f"), (r.get("ratio_to_plain"), "7.2f")]
        lines.append(f"{r.get('image_size') or 0:4d} {r.get('batch_size') or 0:5d} {impl:13s} "
                     + " ".join(format(v, s) if v is not None else "-".rjust(int(s.split(".")[0])) for v, s in cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    p = argparse.ArgumentParser(prog="python -m began_lite.perf.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the results (made if missing)")
    p.add_argument("--cpu", action="store_true", help="the CPU form: toy sizes, in this process, seconds")
    p.add_argument("--budget", type=float, default=420, help="seconds for all stages together (default 420)")
    p.add_argument("--only", nargs="+", choices=STAGES, default=STAGES, help="run only these stages")
    p.add_argument("--stage", choices=("versions", "train", "nccl"), help=argparse.SUPPRESS)  # a child's work
    p.add_argument("--seconds", type=float, default=TRAIN_SECONDS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.stage:
        work = {"versions": lambda: _versions(args.cpu), "train": lambda: _train(out, args.seconds, args.cpu),
                "nccl": _nccl}[args.stage]
        print(RESULT + json.dumps(work()), flush=True)
        return 0
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("error: no CUDA GPU here; --cpu runs the CPU form", file=sys.stderr)
        return 2
    summary = check(out, cpu=args.cpu, budget=args.budget, only=args.only,
                    command=" ".join(["python -m began_lite.perf.gpu_check", *argv]))
    print(format_summary(summary))
    print(f"{summary['wall_s']:.0f} s; in {out}: {', '.join(summary['files'])}")
    return 0 if all(r["status"] in ("ok", "skipped") for r in summary["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
