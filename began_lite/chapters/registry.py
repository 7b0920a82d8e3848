"""The stored experiments of chapters 2-7: each arm states its settings in full, one command remakes them.

An experiment is a set of *arms* (label -> settings) run at the same seeds and budget. An arm's
settings name a profile (``"profile": "quick"`` or ``"paper-small"``) and the fields it changes;
``fixed_k`` (pin BEGAN's k) and ``holdout`` (digits kept out of training) go to
:func:`~began_lite.chapters.runs.digit_run`, everything else to the :class:`TrainConfig`. Nothing
is added silently, so a record's configs are exactly what its arms say.

``python -m began_lite experiment NAME [NAME ...] --out data/results --jobs 2`` (:mod:`.remake`) trains every run
the named experiments need, each once (runs shared by two experiments, such as the quick
profile's own, are trained once), ``--jobs`` at a time with one thread each, then writes one
record per experiment. ``experiment all`` remakes every record (about 3 hours on 2 cores).
Finished runs are kept in the run cache, so an interrupted command picks up where it stopped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..config import TrainConfig

__all__ = ["Experiment", "EXPERIMENTS", "DEPARTURES", "FACES", "FACE_STEPS", "SPECIAL", "MIXTURE_JOBS", "run_key_of",
           "digit_job", "jobs_for"]


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


# The departures profile-minus-one undoes. The optimiser, batch, tanh and rate arms were not remade on
# today's profile (CPU time went to the held-out verdicts); the weight average is measured in every
# run instead (raw_g).
REMADE_DEPARTURES = ("h = z = 16", "gamma = 1", "lambda_k = 0.01", "shift 3")


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
    "eta": Experiment("5", {"eta=2": {**QUICK_ARM, "eta": 2}, "eta=1": QUICK_ARM},
                      about="the squared pixel error with the profile's gain"),
    "profile-minus-one": Experiment(
        "5", {"quick profile": QUICK_ARM,
              **{f"quick profile - {name}": _undo(name) for name in REMADE_DEPARTURES},
              "paper-small": PAPER_ARM},
        about="the profile with one departure undone; the weight average is measured in every run (raw_g)"),
    "architecture": Experiment(
        "6", {"plain": QUICK_ARM, "skip": {**QUICK_ARM, "skip": True},
              "vanishing residuals": {**QUICK_ARM, "vanishing_residual": True, "vanishing_steps": 1500}},
        about="the paper's two optional architecture changes (section 3.5)"),
}
# Records that are not sweeps of digit runs: the LFW faces (one seed), the 2-D mixtures, and the
# showcase (the quick profile's seed 0: its weights and a picture, for the introduction).
FACES: dict[str, dict] = {"faces": {"flip": False}, "faces-flip": {"flip": True}}
FACE_STEPS = 1500
SPECIAL = (*FACES, "mixtures", "showcase")
MIXTURE_JOBS = [(kind, objective) for kind in ("ring", "grid") for objective in ("began", "ebgan")]


def split(exp: Experiment, settings: dict) -> tuple[str, dict, dict]:
    settings = dict(settings)
    profile = settings.pop("profile")
    run = {k: settings.pop(k) for k in exp.run_args if k in settings}
    return profile, run, settings


def digit_job(exp: Experiment, settings: dict, seed: int) -> dict:
    profile, run, overrides = split(exp, settings)
    return {"kind": "digit", "steps": exp.steps, "eval_every": exp.eval_every, "profile": profile,
            **run, "overrides": {**overrides, "seed": seed}}


def run_key_of(job: dict) -> str:
    """One key per computation: a digit run's resolved config (two arms that name the same settings
    in two ways, such as ``gamma=1.0`` and the quick profile itself, are one run)."""
    if job["kind"] == "digit":
        config = TrainConfig.for_profile(job["profile"], steps=job["steps"], **job["overrides"]).to_dict()
        job = {**{k: v for k, v in job.items() if k not in ("profile", "overrides")}, "config": config}
    return json.dumps(job, sort_keys=True)


def jobs_for(names) -> list[dict]:
    """Every run the named experiments need, each once, in the order the names give."""
    jobs: dict[str, dict] = {}
    for name in names:
        if name in EXPERIMENTS:
            exp = EXPERIMENTS[name]
            for settings in exp.arms.values():
                for seed in exp.seeds:
                    job = digit_job(exp, settings, seed)
                    jobs.setdefault(run_key_of(job), job)
        elif name in FACES:
            jobs.setdefault(name, {"kind": "faces", "name": name})
        elif name == "mixtures":
            for kind, objective in MIXTURE_JOBS:
                for seed in (0, 1, 2):
                    job = {"kind": "mixture", "mixture": kind, "objective": objective, "seed": seed}
                    jobs.setdefault(run_key_of(job), job)
        elif name == "showcase":
            job = digit_job(EXPERIMENTS["gamma-sweep"], QUICK_ARM, 0)
            jobs.setdefault(run_key_of(job), job)
    return list(jobs.values())
