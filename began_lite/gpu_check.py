"""The GPU check (issue 18): one command that shows what ``began_lite`` does on one CUDA GPU.

``python -m began_lite.gpu_check --out DIR`` runs five stages, each in processes of its own with
a time limit, so that a failure or hang is recorded (status, the last lines of its output) and
the next stage still runs:

1. ``versions``: GPU, driver, torch, CUDA, cuDNN, NCCL; float32 and bfloat16 matmul peaks;
2. ``bench``: ``python -m began_lite bench --device cuda`` at 64 and 128 px, batch 16 and 64,
   n = 128: float32 and ``ours`` (bfloat16 autocast), each beside the plain float32 step;
3. ``train``: the full profile at 64 px for a wall-clock budget on the bundled LFW faces (the 100
   grey 25x25 faces of ``skimage.data.lfw_subset``, bilinear to 64 px, the grey repeated to 3
   channels so that the networks are the full profile's RGB ones); checks: losses finite, k_t
   moving, M_global falling (judged over 500 steps or more);
4. ``torchrun``: an NCCL process group (init, all_reduce), then ``train`` for a few steps, both
   started by ``python -m torch.distributed.run --standalone --nproc_per_node=1`` (= torchrun);
5. ``compile``: the bench variant ``compile`` (bfloat16 + torch.compile), one process per size
   and batch (a cold compile each, static shapes); last, as the slowest, within ``--budget``.

DIR gets 8 files, no folders: gpu_check.json (the summary), versions.log, bench.log, bench.json,
train.log, history.csv, samples.png, torchrun.log; a table is printed last. ``--cpu`` runs the
same stages at toy sizes on the CPU (tests/test_gpu_check.py), so that a typo cannot break the
GPU run; the stages that need CUDA (NCCL, compile) are then recorded as skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = "GPU_CHECK_RESULT "  # a child's last line: this prefix, then its result as JSON
STAGES = ("versions", "bench", "train", "torchrun", "compile")
LIMITS = {"versions": 60, "bench": 90, "train": 120, "torchrun": 60, "compile": 90}  # s per command, GPU; CPU: half
TRAIN_SECONDS = 75  # wall-clock training in the train stage on the GPU (CPU: 2)
GRID = ((64, 16), (64, 64), (128, 16), (128, 64))  # (image size, batch) of the bench rows


# --------------------------------------------------------------------------- the children's work
def _versions(cpu: bool) -> dict:
    import platform

    import numpy
    import skimage
    import torch

    from .bench import measure_peak

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "numpy": numpy.__version__, "skimage": skimage.__version__,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32}
    if cpu:  # a small product: the CPU form only shows that the code runs
        return {**info, "device": "cpu", "peak_gflops": {"float32": measure_peak("cpu", n=256, repeats=3) / 1e9}}
    p, nccl = torch.cuda.get_device_properties(0), torch.cuda.nccl.version()
    info.update(device=p.name, memory_gib=round(p.total_memory / 2**30, 1), multiprocessors=p.multi_processor_count,
                capability=f"{p.major}.{p.minor}", nccl=".".join(map(str, nccl)) if isinstance(nccl, tuple) else nccl)
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        info["driver"] = smi.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["driver"] = None
    info["peak_gflops"] = {str(t)[6:]: measure_peak("cuda", t) / 1e9 for t in (torch.float32, torch.bfloat16)}
    return info


def _train(out: Path, seconds: float, cpu: bool) -> dict:
    import numpy as np

    from .config import TrainConfig
    from .data import load_digits, load_faces
    from .train import Trainer

    size = 16 if cpu else 64
    try:  # lfw_subset.npy ships inside scikit-image: no download
        data, source = load_faces(size), "skimage.data.lfw_subset: 100 grey 25x25 faces, bilinear to the size"
    except Exception as err:  # noqa: BLE001 (whatever failed: say so, and train on the digits)
        data, source = load_digits(size), f"load_digits, as lfw_subset failed: {type(err).__name__}: {err}"
    data = data.repeat(1, 3, 1, 1)  # (N, 3, S, S): grey repeated, for the full profile's RGB networks
    toy = {"filters": 8, "batch_size": 8} if cpu else {}
    config = TrainConfig.for_profile("full", device="cpu" if cpu else "cuda", image_size=size, channels=3, **toy)
    trainer, warm = Trainer(config, data), 20  # the first steps (kernel choice, allocations) are not timed
    start = t_warm = time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.train_step()  # reads its losses on the host: the step has ended when it returns
        if trainer.step == warm:
            t_warm = time.perf_counter()
    end = time.perf_counter()
    timed = trainer.step - warm
    (out / "history.csv").write_text(trainer.history.to_csv())
    trainer.save_samples(out / "samples.png")
    h, w = trainer.history, max(1, trainer.step // 10)
    m = h["m_global"]
    checks = {"losses_finite": bool(all(np.isfinite(h[c]).all() for c in ("loss_real", "loss_fake", "m_global"))),
              "k_moving": trainer.k != config.k0}
    if trainer.step >= 500:  # fewer steps say nothing about M_global (the CPU form runs ~50)
        checks["m_global_falling"] = bool(m[-w:].mean() < m[:w].mean())
    return {"data": source, "channels": "3 (grey repeated)", "image_size": size, "filters": config.filters,
            "batch_size": config.batch_size, "autocast": str(trainer.autocast_dtype), "steps": trainer.step,
            "seconds": end - start, "s_per_1000_steps": 1000 * ((end - t_warm) / timed if timed > 0 else
                                                               (end - start) / max(1, trainer.step)),
            "k_final": trainer.k, "m_global_first_tenth": float(m[:w].mean()),
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
    result = {"backend": dist.get_backend(), "world_size": n, "checks": {"all_reduce": bool((t == n * (n + 1) / 2).all())}}
    dist.destroy_process_group()
    return result


# --------------------------------------------------------------------------- the parent
def _judge(record: dict) -> dict:
    """A command that ended well but whose result holds a failed check is a failure."""
    bad = [k for k, v in ((record.get("result") or {}).get("checks") or {}).items() if not v]
    if record["status"] == "ok" and bad:
        record.update(status="failed", error=f"check(s) failed: {', '.join(bad)}")
    return record


def _run(cmd: list, log: Path, limit: float, env: dict | None = None) -> dict:
    """Run ``cmd`` in a process group of its own, output appended to ``log``, killed after ``limit`` s;
    its record: status (ok, failed, timeout), seconds, the error's last lines, the child's RESULT."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [str(c) for c in cmd]
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        offset, start = f.tell(), time.perf_counter()
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        try:
            rc = p.wait(timeout=max(1.0, limit))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the group: torchrun's workers and compile workers too
            p.wait()
            rc = None
    with open(log, errors="replace") as f:
        f.seek(offset)
        lines = f.read().splitlines()
    results = [json.loads(line[len(RESULT):]) for line in lines if line.startswith(RESULT)]
    tail = "\n".join(line for line in lines[-15:] if not line.startswith(RESULT))
    record = {"status": "ok", "seconds": round(time.perf_counter() - start, 1), "limit_s": round(limit),
              "log": log.name, "error": None, "result": results[-1] if results else None}
    if rc is None:
        record.update(status="timeout", error=f"stopped at its limit of {limit:.0f} s; last lines:\n{tail}")
    elif rc != 0:
        record.update(status="failed", error=f"exit code {rc}; last lines:\n{tail}")
    return _judge(record)


def _skipped(why: str) -> dict:
    return {"status": "skipped", "seconds": 0.0, "error": why, "result": None}


def _worst(records: list[dict]) -> dict:
    """One record for several commands: the first failure or timeout, else the first that ran."""
    ran = [r for r in records if r["status"] != "skipped"] or records
    bad = [r for r in ran if r["status"] != "ok"]
    return {**(bad or ran)[0], "seconds": round(sum(r["seconds"] for r in records), 1)}


def _bench(cpu: bool, grid, variants, path: Path) -> list:
    return [sys.executable, "-m", "began_lite", "bench", "--device", "cpu" if cpu else "cuda",
            "--sizes", *sorted({s for s, _ in grid}), "--batches", *sorted({b for _, b in grid}),
            "--filters", 8 if cpu else 128, "--variants", *variants, "--seconds", 0.2 if cpu else 3,
            "--max-seconds", 60, "--json", path]


def _bench_rows(runs: list[dict]) -> list[dict]:
    """Every run's rows, each with its ratio to the plain float32 step of the same run (each
    compile run times the plain step again: only the first run's plain rows are kept)."""
    out = []
    for i, run in enumerate(runs):
        rows = run.get("rows", [])
        plain = {(r.get("image_size"), r.get("batch_size")): r.get("steps_per_s") for r in rows if r.get("impl") == "plain"}
        for r in rows:
            p, s = plain.get((r.get("image_size"), r.get("batch_size"))), r.get("steps_per_s")
            if r.get("impl") != "plain" or i == 0:
                out.append({**r, "ratio_to_plain": s / p if s and p else None})
    return out


def _torchrun(cpu: bool, me: list, run_dir: Path, log: Path, left) -> dict:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
    nccl = _skipped("needs CUDA") if cpu else _run(launch + me[1:] + ["--stage", "nccl"], log, left(),
                                                    env={"NCCL_DEBUG": "INFO"})
    steps = 3 if cpu else 40
    flags = ["--profile", "quick", "--image-size", 16, "--device", "cpu"] if cpu else \
        ["--profile", "full", "--image-size", 64, "--device", "cuda"]
    train = _run(launch + ["-m", "began_lite", "train", "--dataset", "faces", *flags, "--steps", steps,
                           "--checkpoint-every", 2 if cpu else 20, "--no-progress", "--out", run_dir], log, left())
    history, ckpt = run_dir / "history.json", run_dir / "checkpoint.pt"
    done = int(json.loads(history.read_text())["step"][-1]) if history.exists() else 0
    train["result"] = {"steps": done, "checkpoint_bytes": ckpt.stat().st_size if ckpt.exists() else None,
                       "checks": {"checkpoint_written": ckpt.exists(), "trained_all_steps": done == steps}}
    return {**_worst([nccl, _judge(train)]), "result": {"nccl": nccl["result"] or nccl["error"], "train": train["result"]}}


def check(out: Path, *, cpu: bool, budget: float, only=STAGES) -> dict:
    """Run the stages named in ``only`` into ``out``; return the summary, also written to gpu_check.json."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    left = lambda name: min(LIMITS[name] / (2 if cpu else 1), budget - (time.perf_counter() - t0))  # noqa: E731
    me = [sys.executable, "-m", "began_lite.gpu_check", "--out", out] + (["--cpu"] if cpu else [])
    summary = {"mode": "cpu" if cpu else "cuda", "command": " ".join(["python -m began_lite.gpu_check"] + sys.argv[1:]),
               "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "budget_s": budget,
               "stages": {}, "bench": []}
    runs = []
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for name in (n for n in STAGES if n in only):
            print(f"gpu_check: {name} ...", file=sys.stderr, flush=True)
            json_path = Path(tmp) / f"{name}.json"
            if left(name) < 10:
                rec = _skipped(f"out of time: the budget of {budget:.0f} s (--budget) was spent")
            elif name == "versions":
                rec = _run(me + ["--stage", "versions"], out / "versions.log", left(name))
            elif name == "bench":
                rec = _run(_bench(cpu, ((16, 4),) if cpu else GRID, ["ours", "float32"], json_path), out / "bench.log",
                           left(name))
            elif name == "train":
                rec = _run(me + ["--stage", "train", "--seconds", 2 if cpu else TRAIN_SECONDS], out / "train.log",
                           left(name))
            elif name == "torchrun":
                rec = _torchrun(cpu, me, Path(tmp) / "run", out / "torchrun.log", lambda: left("torchrun"))
            elif cpu:
                rec = _skipped("needs CUDA (torch.compile on a CPU takes minutes)")
            else:  # compile: one process per size and batch, while the budget lasts
                recs = []
                for size, batch in GRID:
                    path = Path(tmp) / f"compile{size}x{batch}.json"
                    recs.append(_skipped("out of time (--budget)") if left(name) < 20 else
                                _run(_bench(cpu, ((size, batch),), ["compile"], path), out / "bench.log", left(name)))
                    runs += [json.loads(path.read_text())] if path.exists() else []
                rec = {**_worst(recs), "result": {f"{s}x{b}": r["status"] for (s, b), r in zip(GRID, recs)}}
            runs += [json.loads(json_path.read_text())] if json_path.exists() else []
            summary["stages"][name] = rec
            summary["bench"], summary["wall_s"] = _bench_rows(runs), round(time.perf_counter() - t0, 1)
            if runs:
                (out / "bench.json").write_text(json.dumps({"runs": runs}, indent=1))
            (out / "gpu_check.json").write_text(json.dumps(summary, indent=1))  # after every stage
            print(f"gpu_check: {name} {rec['status']} in {rec['seconds']:.0f} s", file=sys.stderr, flush=True)
    summary["files"] = sorted({p.name for p in out.iterdir()} | {"gpu_check.json"})
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=1))
    return summary


def _note(name: str, r: dict) -> str:
    """One line on what a stage found, or the first line of its error."""
    x = r.get("result") or {}
    if r["status"] != "ok" or not x:
        return (r.get("error") or "").split("\n")[0][:110]
    if name == "versions":
        return (f"{x['device']}, driver {x.get('driver')}, torch {x['torch']}, CUDA {x['cuda']}; matmul peak "
                + ", ".join(f"{k} {v:,.0f}" for k, v in x["peak_gflops"].items()) + " GFLOP/s")
    if name == "train":
        return (f"{x['steps']} steps, {x['s_per_1000_steps']:.1f} s per 1000, k_t {x['k_final']:.4f}, "
                f"M_global {x['m_global_first_tenth']:.3f} -> {x['m_global_last_tenth']:.3f}")
    if name == "torchrun":
        nccl = x["nccl"] if isinstance(x["nccl"], str) else f"{x['nccl']['backend']}, all_reduce ok"
        return f"nccl: {nccl}; train: {x['train']['steps']} steps, checkpoint {x['train']['checkpoint_bytes']} bytes"
    return ", ".join(f"{k} {v}" for k, v in x.items()) if name == "compile" else ""


def format_summary(summary: dict) -> str:
    """The stages (status, seconds, what each found) and the bench rows, as a text table."""
    lines = [f"{'stage':9s} {'status':8s} {'s':>5s}  note"]
    lines += [f"{n:9s} {r['status']:8s} {r['seconds']:5.0f}  {_note(n, r)}" for n, r in summary["stages"].items()]
    lines += ["", f"{'size':>4s} {'batch':>5s} {'variant':13s} {'steps/s':>8s} {'img/s':>8s} {'MiB':>7s} {'%peak':>6s} "
                  f"{'1st s':>6s} {'x plain':>7s}"]
    for r in summary["bench"]:
        impl = {"plain": "plain fp32", "float32": "fp32"}.get(r.get("impl"), str(r.get("impl")))
        impl += " bf16" if r.get("impl") in ("ours", "compile") and r.get("peak_name") == "bfloat16" else ""
        cells = [(r.get("steps_per_s"), "8.1f"), (r.get("images_per_s"), "8.0f"), (r.get("memory_mib"), "7.0f"),
                 (r["peak_fraction"] * 100 if r.get("peak_fraction") else None, "6.1f"),
                 (r.get("first_step_s"), "6.1f"), (r.get("ratio_to_plain"), "7.2f")]
        lines.append(f"{r.get('image_size', 0):4d} {r.get('batch_size', 0):5d} {impl:13s} "
                     + " ".join(format(v, s) if v is not None else "-".rjust(int(s.split(".")[0])) for v, s in cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m began_lite.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the results (made if missing)")
    p.add_argument("--cpu", action="store_true", help="the CPU form: toy sizes, tens of seconds")
    p.add_argument("--budget", type=float, default=420, help="seconds for all stages together (default 420)")
    p.add_argument("--only", nargs="+", choices=STAGES, default=STAGES, help="run only these stages")
    p.add_argument("--stage", choices=("versions", "train", "nccl"), help=argparse.SUPPRESS)  # a child's work
    p.add_argument("--seconds", type=float, default=TRAIN_SECONDS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.stage:
        work = {"versions": lambda: _versions(args.cpu), "train": lambda: _train(out, args.seconds, args.cpu),
                "nccl": _nccl}
        print(RESULT + json.dumps(work[args.stage]()), flush=True)
        return 0
    import torch

    if not args.cpu and not torch.cuda.is_available():
        print("error: no CUDA GPU here; --cpu runs the CPU form", file=sys.stderr)
        return 2
    summary = check(out, cpu=args.cpu, budget=args.budget, only=args.only)
    print(format_summary(summary))
    print(f"{summary['wall_s']:.0f} s; in {out}: {', '.join(summary['files'])}")
    return 0 if all(r["status"] in ("ok", "skipped") for r in summary["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
