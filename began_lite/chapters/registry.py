"""The stored experiments of chapters 2-7: each arm states its settings in full, one command remakes them.

An experiment is a set of *arms* (label -> settings) run at the same seeds and budget. An arm's
settings name a profile (``"profile": "quick"`` or ``"paper-small"``) and the fields it changes;
``fixed_k`` (pin BEGAN's k) and ``holdout`` (digits kept out of training) go to
:func:`~began_lite.chapters.runs.digit_run`, everything else to the :class:`TrainConfig`. Nothing
is added silently, so a record's configs are exactly what its arms say.

``python -m began_lite experiment NAME [NAME ...] --out data/results --jobs 2`` trains every run
the named experiments need, each once (runs shared by two experiments, such as the quick
profile's own, are trained once), ``--jobs`` at a time with one thread each, then writes one
record per experiment. ``experiment all`` remakes every record (about 3 hours on 2 cores).
Finished runs are kept in the run cache, so an interrupted command picks up where it stopped.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context

import torch

from ..checkpoint import atomic_write_bytes, output_folder, save_checkpoint
from ..config import TrainConfig
from ..plotting import grid_png
from ..step import TrainingDiverged
from .records import provenance
from .runs import GRID_SEED, SAMPLE_SEED, _digits, digit_run, faces_run, mixture_run

__all__ = ["Experiment", "EXPERIMENTS", "DEPARTURES", "SPECIAL", "run_key_of", "main"]


@dataclass(frozen=True)
class Experiment:
    """Arms (label -> settings) at ``seeds``, ``steps`` each, scored every ``eval_every`` steps."""

    chapter: str
    arms: dict
    steps: int = 3000
    seeds: tuple = (0, 1, 2)
    eval_every: int = 250
    about: str = ""
    run_args: tuple = field(default=("fixed_k", "holdout"), repr=False)  # settings that go to digit_run


QUICK_ARM = {"profile": "quick"}
PAPER_ARM = {"profile": "paper-small"}
_PAPER = TrainConfig.for_profile("paper-small")
# The quick profile's departures from the paper, by the config fields each one sets (config.py has
# a `Deviation:` line for each). The paper's values are the paper-small profile's.
DEPARTURES: dict[str, tuple[str, ...]] = {
    "h = z = 16": ("z_dim", "h_dim"), "gamma = 1": ("gamma",), "lambda_k = 0.01": ("lambda_k",),
    "Adam 2e-4, beta1 0.5": ("lr", "adam_betas"), "batch 32": ("batch_size",), "tanh": ("tanh_output",),
    "constant rate": ("lr_decay", "lr_patience"), "shift 3": ("shift",), "weight average": ("ema",),
}


def _undo(name: str) -> dict:
    """The quick profile with one departure undone: those fields back at the paper's values."""
    return {**QUICK_ARM, **{k: getattr(_PAPER, k) for k in DEPARTURES[name]}}


EXPERIMENTS: dict[str, Experiment] = {
    "gamma-sweep": Experiment(
        "5, 7", {f"gamma={g}": {**QUICK_ARM, "gamma": g} for g in (0.3, 0.5, 0.7, 1.0)}, seeds=(0, 1, 2, 3, 4),
        about="the paper's diversity ratio on today's profile; gamma = 1.0 is the profile itself"),
    "memorisation": Experiment(
        "5", {"shift 3": {**QUICK_ARM, "holdout": 297}, "shift 0": {**QUICK_ARM, "shift": 0, "holdout": 297}},
        about="297 digits held out: D's loss on them against digits it trains on, with and without the shift"),
    "k-pinned": Experiment(
        "4", {"controlled": QUICK_ARM, "k=0": {**QUICK_ARM, "fixed_k": 0.0}, "k=1": {**QUICK_ARM, "fixed_k": 1.0}},
        steps=1000, about="the controller against k pinned at 0 and at 1"),
    "gain": Experiment(
        "5", {"lambda_k=0.001": {**QUICK_ARM, "lambda_k": 0.001}, "lambda_k=0.01": QUICK_ARM},
        about="the paper's gain against the profile's"),
    "objectives": Experiment("3, 7", {"BEGAN": QUICK_ARM, "EBGAN": {**QUICK_ARM, "objective": "ebgan"}},
                             about="BEGAN and EBGAN on the same profile"),
    "ebgan-margins": Experiment(
        "3", {f"m={m}": {**QUICK_ARM, "objective": "ebgan", "margin": m, "pt_weight": 0.0} for m in (0.2, 0.6)},
        steps=600, eval_every=150, about="EBGAN's fixed margin at two values, no pulling-away term"),
    "ebgan-pt": Experiment(
        "3", {"pt_weight=0": {**QUICK_ARM, "objective": "ebgan", "pt_weight": 0.0},
              "pt_weight=0.1": {**QUICK_ARM, "objective": "ebgan"}},
        about="EBGAN with and without its pulling-away term, at its default margin m = 1"),
    "eta": Experiment("5", {"eta=2": {**QUICK_ARM, "eta": 2}, "eta=1": QUICK_ARM},
                      about="the squared pixel error with the profile's gain"),
    "profile-minus-one": Experiment(
        "5", {"quick profile": QUICK_ARM,
              **{f"quick profile - {name}": _undo(name) for name in DEPARTURES if name != "weight average"},
              "paper-small": PAPER_ARM},
        about="the profile with one departure undone; the weight average is measured in every run (raw_g)"),
    "architecture": Experiment(
        "6", {"plain": QUICK_ARM, "skip": {**QUICK_ARM, "skip": True},
              "vanishing residuals": {**QUICK_ARM, "vanishing_residual": True, "vanishing_steps": 1500}},
        about="the paper's two optional architecture changes (section 3.5)"),
    "latent-size": Experiment("6", {f"N_z=N_h={n}": {**QUICK_ARM, "z_dim": n, "h_dim": n} for n in (8, 16, 32, 64)},
                              about="the code sizes N_z = N_h"),
    "long-run": Experiment("7", {"quick profile": QUICK_ARM}, steps=12_000, seeds=(0,), eval_every=1000,
                           about="the quick profile trained four times as long, scored every 1000 steps"),
}
# Records that are not sweeps of digit runs: the LFW faces (one seed), the 2-D mixtures, and the
# showcase (the quick profile's seed 0: its weights and a picture, for the introduction).
FACES: dict[str, dict] = {"faces": {"flip": False}, "faces-flip": {"flip": True}}
FACE_STEPS = 1500
SPECIAL = (*FACES, "mixtures", "showcase")
MIXTURE_JOBS = [(kind, objective) for kind in ("ring", "grid") for objective in ("began", "ebgan")]


def _split(exp: Experiment, settings: dict) -> tuple[str, dict, dict]:
    settings = dict(settings)
    profile = settings.pop("profile")
    run = {k: settings.pop(k) for k in exp.run_args if k in settings}
    return profile, run, settings


def _digit_job(exp: Experiment, settings: dict, seed: int) -> dict:
    profile, run, overrides = _split(exp, settings)
    return {"kind": "digit", "steps": exp.steps, "eval_every": exp.eval_every, "profile": profile,
            **run, "overrides": {**overrides, "seed": seed}}


def run_key_of(job: dict) -> str:
    """One key per computation: a digit run's resolved config (two arms that name the same settings
    in two ways, such as ``gamma=1.0`` and the quick profile itself, are one run)."""
    if job["kind"] == "digit":
        config = TrainConfig.for_profile(job["profile"], steps=job["steps"], **job["overrides"]).to_dict()
        job = {**{k: v for k, v in job.items() if k not in ("profile", "overrides")}, "config": config}
    return json.dumps(job, sort_keys=True)


def _jobs(names) -> list[dict]:
    """Every run the named experiments need, each once, in the order the names give."""
    jobs: dict[str, dict] = {}
    for name in names:
        if name in EXPERIMENTS:
            exp = EXPERIMENTS[name]
            for settings in exp.arms.values():
                for seed in exp.seeds:
                    job = _digit_job(exp, settings, seed)
                    jobs.setdefault(run_key_of(job), job)
        elif name in FACES:
            jobs.setdefault(name, {"kind": "faces", "name": name})
        elif name == "mixtures":
            for kind, objective in MIXTURE_JOBS:
                for seed in (0, 1, 2):
                    job = {"kind": "mixture", "mixture": kind, "objective": objective, "seed": seed}
                    jobs.setdefault(run_key_of(job), job)
        elif name == "showcase":
            job = _digit_job(EXPERIMENTS["gamma-sweep"], QUICK_ARM, 0)
            jobs.setdefault(run_key_of(job), job)
    return list(jobs.values())


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
            r = results[run_key_of(_digit_job(exp, settings, seed))]
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
        r = results[name]
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
    job = _digit_job(exp, QUICK_ARM, 0)
    trainer, report = digit_run(job["steps"], eval_every=job["eval_every"], **job["overrides"])
    real = _digits(16)[torch.randperm(1797, generator=torch.Generator().manual_seed(0))[:64]]
    record = {"experiment": "showcase", "steps": exp.steps, "seed": 0, "settings": QUICK_ARM,
              "config": trainer.config.to_dict(), "command": command, "provenance": provenance(),
              "final": {k: v for k, v in report.items() if k not in ("trajectory", "cached", "curves")},
              "trajectory": [{k: v for k, v in p.items() if k != "grid_png"} for p in report["trajectory"]],
              "wall_seconds": report["seconds"],
              "real_png": "showcase-real.png (64 real digits)", "samples_png": "showcase.png (64 samples, z seed 0)",
              "weights": "showcase.pt (the sampling generator: the weight average of G)"}
    save_checkpoint({"generator": trainer.sampler.state_dict(), "config": trainer.config.to_dict(),
                     "steps": exp.steps}, out / "showcase.pt")
    atomic_write_bytes(out / "showcase.png", grid_png(trainer.sample(64, seed=GRID_SEED), nrow=8, scale=3))
    atomic_write_bytes(out / "showcase-real.png", grid_png(real, nrow=8, scale=3))
    atomic_write_bytes(out / "showcase.json", json.dumps(record, indent=1).encode())
    return "showcase.json, showcase.pt, showcase.png and showcase-real.png"


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
    jobs = _jobs(names)
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
