"""Remake stored records: train every run the named experiments need, each once, ``--jobs`` at a time.

``python -m began_lite experiment NAME ... --out data/results --jobs 2`` calls :func:`main`. The runs go to
worker processes with one thread each; a finished digit run is kept in the run cache
(:func:`~began_lite.chapters.runs.run_cache_dir`), so an interrupted command picks up where it stopped.
Then one record per experiment is written from the finished runs (:mod:`.registry` says what each holds).
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import torch

from ..checkpoint import atomic_write_bytes, output_folder, save_checkpoint
from ..config import TrainConfig
from ..plotting import grid_png
from ..step import TrainingDiverged
from .records import provenance, save_run
from .registry import (EXPERIMENTS, FACE_STEPS, FACES, MIXTURE_JOBS, QUICK_ARM, SPECIAL, digit_job, jobs_for,
                       run_key_of)
from .runs import GRID_SEED, SAMPLE_SEED, digit_run, faces_run, mixture_run, real_digits

__all__ = ["run_all", "sweep_record", "main"]


def _run_job(job: dict) -> dict:
    """Train one run (a worker process, one thread) and return what its records keep of it."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    if job["kind"] == "digit":
        try:
            trainer, report = digit_run(job["steps"], profile=job["profile"], fixed_k=job.get("fixed_k"),
                                        holdout=job.get("holdout", 0), eval_every=job["eval_every"],
                                        **job["overrides"])
        except TrainingDiverged as err:  # a run whose loss became NaN is a result too: kept, marked
            config = TrainConfig.for_profile(job["profile"], steps=job["steps"], **job["overrides"]).to_dict()
            return {"config": config, "final": {"diverged": str(err)}, "trajectory": [], "curves": {},
                    "cached": False, "wall": time.perf_counter() - start}
        final = {k: v for k, v in report.items() if k not in ("trajectory", "curves", "cached")}
        final.update(k=float(trainer.k), gamma_realised=float(trainer.history["gamma_realised"][-100:].mean()))
        return {"config": trainer.config.to_dict(), "final": final, "trajectory": report.get("trajectory", []),
                "curves": report["curves"], "cached": report["cached"], "wall": time.perf_counter() - start}
    if job["kind"] == "mixture":
        trainer, report = mixture_run(job["mixture"], objective=job["objective"], seed=job["seed"])
        return {**report, "config": trainer.config.to_dict(),
                "first_losses": [float(v) for v in trainer.history["loss_real"][:100]],
                "points": trainer.sample(500, seed=SAMPLE_SEED).round(decimals=4).tolist(),
                "wall": time.perf_counter() - start}
    settings = FACES[job["name"]]
    trainer = faces_run(FACE_STEPS, seed=0, **settings)
    return {"config": trainer.config.to_dict(), "history": trainer.history.to_dict(),
            "png": grid_png(trainer.sample(64, seed=GRID_SEED), nrow=8).hex(), "wall": time.perf_counter() - start}


def _init_worker() -> None:
    torch.set_num_threads(1)


def run_all(jobs: list[dict], workers: int, progress: bool = True) -> dict[str, dict]:
    """Every job, ``workers`` at a time (one thread each); job key -> result. Prints a line per job."""
    results: dict[str, dict] = {}
    start = time.perf_counter()
    if workers == 1:
        for i, job in enumerate(jobs, 1):
            results[run_key_of(job)] = r = _run_job(job)
            if progress:
                print(f"[{i}/{len(jobs)}] {_describe(job)}: {r['wall']:.0f} s", flush=True)
        return results
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        futures = {pool.submit(_run_job, job): job for job in jobs}
        for i, future in enumerate(as_completed(futures), 1):
            job = futures[future]
            try:
                results[run_key_of(job)] = r = future.result()
            except Exception as err:  # noqa: BLE001 (one broken run must not cost the others)
                results[run_key_of(job)] = r = {"error": f"{type(err).__name__}: {err}", "wall": 0.0}
                print(f"FAILED {_describe(job)}: {r['error']}", flush=True)
            if progress:
                print(f"[{i}/{len(jobs)}, {time.perf_counter() - start:.0f} s] {_describe(job)}: {r['wall']:.0f} s",
                      flush=True)
    return results


def _describe(job: dict) -> str:
    if job["kind"] == "digit":
        extra = {k: job[k] for k in ("fixed_k", "holdout") if k in job}
        return f"digits {job['profile']} {job['steps']} steps {job['overrides']} {extra or ''}".rstrip()
    if job["kind"] == "mixture":
        return f"mixture {job['mixture']} {job['objective']} seed {job['seed']}"
    return f"faces {job['name']}"


def _command(names, args) -> str:
    return f"python -m began_lite experiment {' '.join(names)} --out {args.out} --jobs {args.jobs}"


def sweep_record(name: str, results: dict[str, dict], command: str) -> dict:
    """The record of one digit experiment, from the finished runs."""
    exp = EXPERIMENTS[name]
    runs = []
    for label, settings in exp.arms.items():
        for seed in exp.seeds:
            r = results[run_key_of(digit_job(exp, settings, seed))]
            if "error" in r:
                raise RuntimeError(f"{name}: the run of {label}, seed {seed} failed: {r['error']}")
            # grids of samples (for the book's sliders) are kept for the gamma sweep's first seed only
            keep = name == "gamma-sweep" and seed == exp.seeds[0]
            trajectory = [p if keep else {k: v for k, v in p.items() if k != "grid_png"} for p in r["trajectory"]]
            runs.append({"arm": label, "seed": seed, "settings": settings, "config": r["config"],
                         "final": r["final"], "trajectory": trajectory, "curves": r["curves"]})
    return {"experiment": name, "chapter": exp.chapter, "about": exp.about, "arms": exp.arms,
            "seeds": list(exp.seeds), "steps": exp.steps, "eval_every": exp.eval_every, "n_eval": 1000,
            "sample_seed": SAMPLE_SEED, "command": command, "provenance": provenance(),
            "wall_seconds": sum(r["final"]["seconds"] for r in runs), "runs": runs}


def _write_special(name: str, results: dict, out, command: str) -> str:
    if name in FACES:
        r = results[run_key_of({"kind": "faces", "name": name})]  # the key run_all stored it under
        record = {"experiment": name, "steps": FACE_STEPS, "seed": 0, "settings": {**QUICK_ARM, **FACES[name]},
                  "config": r["config"], "wall_seconds": r["wall"], "provenance": provenance(),
                  "history": r["history"], "command": command, "samples_png": f"{name}.png (64 samples, z seed 0)"}
        atomic_write_bytes(out / f"{name}.png", bytes.fromhex(r["png"]))
        atomic_write_bytes(out / f"{name}.json", json.dumps(record).encode())
        return f"{name}.json and {name}.png"
    if name == "mixtures":
        runs = [results[run_key_of({"kind": "mixture", "mixture": k, "objective": o, "seed": s})]
                for k, o in MIXTURE_JOBS for s in (0, 1, 2)]
        record = {"experiment": "mixtures", "steps": runs[0]["config"]["steps"], "seeds": [0, 1, 2],
                  "kinds": ["ring", "grid"], "objectives": ["began", "ebgan"], "check_steps": 100,
                  "command": command, "provenance": provenance(),
                  "wall_seconds": sum(r["seconds"] for r in runs), "runs": runs}
        atomic_write_bytes(out / "mixtures.json", json.dumps(record, indent=1).encode())
        return "mixtures.json"
    # the showcase: the quick profile's seed 0, exactly as gamma-sweep and `train` make it (from the run cache)
    exp = EXPERIMENTS["gamma-sweep"]
    job = digit_job(exp, QUICK_ARM, 0)
    trainer, report = digit_run(job["steps"], eval_every=job["eval_every"], **job["overrides"])
    real = real_digits(16)[torch.randperm(1797, generator=torch.Generator().manual_seed(0))[:64]]
    record = {"experiment": "showcase", "steps": exp.steps, "seed": 0, "settings": QUICK_ARM,
              "config": trainer.config.to_dict(), "command": command, "provenance": provenance(),
              "final": {k: v for k, v in report.items() if k not in ("trajectory", "cached", "curves")},
              "trajectory": [{k: v for k, v in p.items() if k != "grid_png"} for p in report["trajectory"]],
              "wall_seconds": report["seconds"],
              "real_png": "showcase-real.png (64 real digits)", "samples_png": "showcase.png (64 samples, z seed 0)",
              "weights": "showcase.pt (the sampling generator: the weight average of G)",
              "run": "showcase-run.pt (the whole trainer at the last step, and the report: load_showcase_run)"}
    save_checkpoint({"generator": trainer.sampler.state_dict(), "config": trainer.config.to_dict(),
                     "steps": exp.steps}, out / "showcase.pt")
    save_run(trainer, report, out / "showcase-run.pt")
    atomic_write_bytes(out / "showcase.png", grid_png(trainer.sample(64, seed=GRID_SEED), nrow=8, scale=3))
    atomic_write_bytes(out / "showcase-real.png", grid_png(real, nrow=8, scale=3))
    atomic_write_bytes(out / "showcase.json", json.dumps(record, indent=1).encode())
    return "showcase.json, showcase.pt, showcase-run.pt, showcase.png and showcase-real.png"


def main(args) -> int:
    """`python -m began_lite experiment NAME ... --out DIR --jobs N`: train what the records need, write them."""
    names = list(dict.fromkeys(n for name in args.names for n in ((*EXPERIMENTS, *SPECIAL) if name == "all"
                                                                 else (name,))))
    unknown = [n for n in names if n not in EXPERIMENTS and n not in SPECIAL]
    if unknown:
        raise ValueError(f"NAME must be 'all' or among {sorted((*EXPERIMENTS, *SPECIAL))}, got {unknown}")
    if isinstance(args.jobs, bool) or not isinstance(args.jobs, int) or args.jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {args.jobs!r}")
    out = output_folder(args.out)
    torch.set_num_threads(1)  # the run cache's key holds the thread count: the same as the workers'
    jobs = jobs_for(names)
    print(f"{len(jobs)} runs for {', '.join(names)}; {args.jobs} at a time", flush=True)
    results = run_all(jobs, args.jobs, progress=not args.no_progress)
    failed = []
    for name in names:
        command = _command([name], args)
        try:
            if name in EXPERIMENTS:
                record = sweep_record(name, results, command)
                atomic_write_bytes(out / f"{name}.json", json.dumps(record).encode())
                wrote = f"{name}.json"
            else:
                wrote = _write_special(name, results, out, command)
        except (RuntimeError, KeyError) as err:
            failed.append(name)
            print(f"not written: {name} ({err})", flush=True)
            continue
        print(f"wrote {out / wrote}", flush=True)
    return 1 if failed else 0
