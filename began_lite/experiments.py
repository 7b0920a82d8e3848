"""Experiments the chapters run: train on digits for a budget, then score the samples.

Every chapter that trains a GAN goes through :func:`digit_run`, so a chapter's claim and
its number come from the same code the command line uses.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path

import torch

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import QUICK, TrainConfig
from .data import load_digits
from .metrics import DigitClassifier, evaluate_digits, load_digit_classifier, mean_pairwise_l1
from .train import Trainer

__all__ = ["check_rerun", "digit_classifier", "digit_run", "run_cache_dir", "score_digits", "RESULTS_DIR",
           "stored_result", "BEFORE_SHIFT", "WITH_SHIFT", "FACES"]

# Where the documented `python -m began_lite experiment NAME ...` commands store their records
# (README, "Stored results"); the chapters read them from here.
RESULTS_DIR = Path(__file__).resolve().parents[1] / "data" / "results"


def stored_result(name: str) -> dict:
    """The stored record ``data/results/NAME.json`` (plain data: config, seeds, provenance, runs)."""
    path = RESULTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no stored result {str(path)!r}; make it with `python -m began_lite experiment "
                                f"{name} ... --out data/results` (README, \"Stored results\")")
    return json.loads(path.read_text())


@functools.lru_cache(maxsize=1)
def digit_classifier() -> tuple[DigitClassifier, float]:
    """The evaluator's classifier and its held-out accuracy (the shipped weights, loaded once)."""
    return load_digit_classifier()


@functools.lru_cache(maxsize=4)
def _digits(image_size: int) -> torch.Tensor:
    return load_digits(image_size)


def score_digits(images: torch.Tensor) -> dict:
    """Frechet distance to the real digits, class coverage and balance, and the mean pairwise
    L1 distance (``diversity``, over the first 400) of generated digits."""
    classifier, _ = digit_classifier()
    report = evaluate_digits(images, classifier, real=_digits(images.shape[-1]))
    report["diversity"] = mean_pairwise_l1(images[:400])
    return report


def run_cache_dir() -> Path | None:
    """Where finished runs are memoised: ``$BEGAN_LITE_CACHE``, else ``~/.cache/began_lite/runs``.

    Set ``BEGAN_LITE_CACHE=off`` to always train. A cached run is the complete checkpoint
    of the same computation (same config, steps, ``fixed_k``, package source and torch
    version), so loading it gives the very tensors that training would: chapters that
    show the same run (chapters 4-7 share their default run) train it once.
    """
    value = os.environ.get("BEGAN_LITE_CACHE", "")
    if value.lower() in ("off", "0", "no"):
        return None
    return Path(value) if value else Path.home() / ".cache" / "began_lite" / "runs"


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    h = hashlib.sha256(torch.__version__.encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def _run_key(config: TrainConfig, steps: int, fixed_k, n_eval: int, eval_every) -> str:
    # The thread count and the CPU kernels are part of the computation: they change the last bits of sums.
    spec = json.dumps({"config": config.to_dict(), "steps": steps, "fixed_k": fixed_k, "n_eval": n_eval,
                       "eval_every": eval_every, "threads": torch.get_num_threads(),
                       "cpu_capability": torch.backends.cpu.get_cpu_capability(), "source": _source_digest()},
                      sort_keys=True, default=str)
    return hashlib.sha256(spec.encode()).hexdigest()[:24]


# The stored digit and face experiments (chapters 2-7) were recorded on the quick profile as it was
# before the shift (began_lite.augment) and the weight average of G became its defaults (config.QUICK).
# digit_run and faces_run put those two back unless an arm sets them, so that each stored result is
# still the computation its chapter reruns; chapter 5 measures what the two add (claim 8). Remaking
# the stored results on today's profile: README, "Stored results".
BEFORE_SHIFT: dict = {"shift": 0, "ema": 0.0}
WITH_SHIFT: dict = {k: QUICK[k] for k in BEFORE_SHIFT}  # the same two fields as today's profile has them


def digit_run(steps: int, *, profile: str = "quick", fixed_k: float | None = None, n_eval: int = 1000,
              eval_every: int | None = None, progress: bool = False, **overrides) -> tuple[Trainer, dict]:
    """Train on the real digits for ``steps`` with the profile's settings, :data:`BEFORE_SHIFT`, then ``overrides``.

    Returns the trainer (its ``history`` holds every logged number) and the score of
    ``n_eval`` samples drawn with a fixed seed (see :func:`score_digits`), with the wall
    time of training added as ``seconds``. With ``eval_every``, the same score is also
    taken every ``eval_every`` steps during training (``report["trajectory"]``, each point
    with the mean M_global and realised gamma of the steps since the last one); scoring
    draws no random numbers from training, so it changes nothing in the run. Finished
    runs are memoised on disk (see :func:`run_cache_dir`); ``report["cached"]`` says
    whether this one was.
    """
    if eval_every is not None and (isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1):
        raise ValueError(f"eval_every must be an integer >= 1 or None, got {eval_every!r}")
    config = TrainConfig.for_profile(profile, steps=steps, **{**BEFORE_SHIFT, **overrides})
    data = _digits(config.image_size)
    cache = run_cache_dir()
    key = _run_key(config, steps, fixed_k, n_eval, eval_every)
    if cache is not None and (cache / f"{key}.pt").exists():
        try:
            state = load_checkpoint(cache / f"{key}.pt")
            trainer = Trainer(config, data, fixed_k=fixed_k)
            trainer.load_state_dict(state)
            report = json.loads(state["report"])
            report["cached"] = True
            return trainer, report
        except (CheckpointError, KeyError, ValueError, RuntimeError):  # a damaged entry is recomputed
            pass
    trainer = Trainer(config, data, fixed_k=fixed_k)
    trajectory = []

    def checkpoint_score(tr: Trainer, logs: dict) -> None:
        if eval_every and tr.step % eval_every == 0:
            h = tr.history
            m = tr.objective.schedule_measure  # EBGAN has no M_global: BEGAN's formula on its energies
            point = {"step": tr.step, "m_global": float(h[m][-eval_every:].mean()),
                     "gamma_realised": float(h["gamma_realised"][-eval_every:].mean()), "k": logs.get("k", 0.0),
                     "loss_real": float(h["loss_real"][-eval_every:].mean()),
                     "loss_fake": float(h["loss_fake"][-eval_every:].mean())}
            point.update(score_digits(tr.sample(n_eval, seed=12345)))
            trajectory.append(point)

    start = time.perf_counter()
    trainer.train(steps, progress=progress, callbacks=[checkpoint_score] if eval_every else [])
    seconds = time.perf_counter() - start
    report = score_digits(trainer.sample(n_eval, seed=12345))
    report["seconds"] = seconds
    if eval_every:
        report["trajectory"] = trajectory
    if cache is not None:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            save_checkpoint({**trainer.state_dict(), "report": json.dumps(report)}, cache / f"{key}.pt")
        except OSError:
            pass  # a read-only home: nothing is memoised, nothing else changes
    report["cached"] = False
    return trainer, report


# The stored digit experiments: a label for each arm and the overrides of the profile it runs.
# gamma-sweep and objectives: chapter 7. eta: chapter 5, the squared-error loss with the quick
# profile's lambda_k and with a ten times larger one (the quick profile itself, eta = 1, is the
# gamma=1.0 arm of gamma-sweep).
# The quick profile's departures from the paper, by the config fields each one sets. The paper's
# values are TrainConfig's defaults and the profile's are config.QUICK, so both are read from there.
_DEPARTURES: dict[str, tuple[str, ...]] = {
    "h = z = 16": ("z_dim", "h_dim"), "gamma = 1": ("gamma",), "lambda_k = 0.01": ("lambda_k",),
    "Adam 2e-4, beta1 0.5": ("lr", "adam_betas"), "batch 32": ("batch_size",), "tanh": ("tanh_output",),
}
# The paper's settings on the quick profile's 16x16 digits and networks (n = 16, two convolutions per
# scale), and the quick profile's departures from them, one entry per deviation of config.QUICK.
PAPER_DIGITS: dict = {k: getattr(TrainConfig(), k) for keys in _DEPARTURES.values() for k in keys}
QUICK_CHANGES: dict[str, dict] = {name: {k: QUICK[k] for k in keys} for name, keys in _DEPARTURES.items()}
EXPERIMENTS: dict[str, dict[str, dict]] = {
    "gamma-sweep": {f"gamma={g}": {"gamma": g} for g in (0.3, 0.5, 0.7, 1.0)},
    "objectives": {"BEGAN": {}, "EBGAN": {"objective": "ebgan"}},
    "eta": {"eta=2": {"eta": 2}, "eta=2 lambda_k=0.1": {"eta": 2, "lambda_k": 0.1}},
    # chapter 4: the controller against k pinned at 0 and at 1 (an arm's "fixed_k" goes to digit_run)
    "k-pinned": {"controlled": {}, "k=0": {"fixed_k": 0.0}, "k=1": {"fixed_k": 1.0}},
    # chapter 5: the paper's gain against the quick profile's, at the chapter's 600 steps
    "gain": {"lambda_k=0.001": {"lambda_k": 0.001}, "lambda_k=0.01": {}},
    # chapter 3: EBGAN's fixed margin, at two values (no pulling-away term), at the chapter's 600 steps
    "ebgan-margins": {f"m={m}": {"objective": "ebgan", "margin": m, "pt_weight": 0.0} for m in (0.2, 0.6)},
    # chapter 6: the paper's two optional architecture changes (§3.5), at the chapter's 600 steps
    "architecture": {"plain": {}, "skip": {"skip": True},
                     "vanishing residuals": {"vanishing_residual": True, "vanishing_steps": 600}},
    # chapter 6: from the paper's settings (§4.1, no output activation) to the quick profile, each change alone
    "paper-ablation": {"paper": PAPER_DIGITS, "quick profile": {},
                       **{f"paper + {name}": {**PAPER_DIGITS, **change} for name, change in QUICK_CHANGES.items()}},
    # chapter 5: the same departures one at a time, cumulatively (path k: the first k changes together;
    # path 1 is "paper + h = z = 16" and path 6 the quick profile, both in paper-ablation)
    "paper-path": {f"path {i}: + {name}": {**PAPER_DIGITS, **{k: v for n in list(QUICK_CHANGES)[:i] for k, v in QUICK_CHANGES[n].items()}}
                   for i, name in enumerate(QUICK_CHANGES, 1) if 1 < i < len(QUICK_CHANGES)},
    # chapter 5: the quick profile with one departure undone (the paper's value of that field back)
    "profile-minus-one": {f"quick profile - {name}": {k: PAPER_DIGITS[k] for k in keys} for name, keys in _DEPARTURES.items()},
    # chapter 6: the code sizes N_z = N_h
    "latent-size": {f"N_z=N_h={n}": {"z_dim": n, "h_dim": n} for n in (4, 8, 16, 32, 64)},
}


def provenance() -> dict:
    """What a stored result needs to be trusted: software, machine, commit and date."""
    import platform
    import subprocess
    import sys
    from datetime import datetime, timezone

    from . import __version__
    from .config import pick_device

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"began_lite": __version__, "git_commit": commit, "torch": str(torch.__version__),
            "python": sys.version.split()[0], "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            # the CPU kernels torch picked (AVX512, AVX2, ...) and the processor MKL and oneDNN pick theirs
            # by: another changes the last bits of a sum (same_computation)
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_id(),
            "device": str(pick_device("auto")),
            "load_average": os.getloadavg()[0],  # other work on the machine inflates wall times
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def cpu_id() -> str | None:
    """The processor's model name and a digest of its feature flags (Linux), else ``platform.processor()``.

    MKL and oneDNN choose their kernels by these flags, below what ``get_cpu_capability()``
    reports: two AVX512 machines of another model computed different last bits here (issue 16).
    """
    import platform

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or None
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = " ".join(sorted(fields.get("flags", "").split()))
    return f"{fields.get('model name', '?')} (flags {hashlib.sha256(flags.encode()).hexdigest()[:12]})"


def same_computation(provenance: dict) -> tuple[bool, str]:
    """Whether this process computes what the record's did, bit for bit, and why (or why not).

    A CPU run is reproducible to the last bit only with the same CPU kernels
    (``torch.backends.cpu.get_cpu_capability()``: AVX512, AVX2, ...; ``ATEN_CPU_CAPABILITY``
    picks another), the same processor (:func:`cpu_id`: MKL and oneDNN pick their own
    kernels by it), the same thread count and the same torch version: each changes how a
    sum is split, and a GAN run carries the last-bit difference forward until it shows in
    the second digit. A record without one of these (``cpu_capability`` and ``cpu`` were
    not recorded before issue 16) is unknown, so not the same.
    """
    here = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_id(),
            "torch_threads": torch.get_num_threads(), "torch": str(torch.__version__)}
    missing = [key for key in here if provenance.get(key) is None]
    differ = [f"{key} {provenance[key]}, here {value}" for key, value in here.items()
              if key not in missing and provenance[key] != value]
    if missing or differ:
        why = ([f"not recorded: {', '.join(missing)}"] if missing else []) + (["recorded with " + "; ".join(differ)]
                                                                             if differ else [])
        if "cpu_capability" in missing:
            why.append(f"here {here['cpu_capability']} kernels")
        return False, "; ".join(why)
    threads = f"{here['torch_threads']} thread" + ("s" if here["torch_threads"] != 1 else "")
    return True, f"{here['cpu_capability']} kernels, {threads}, torch {here['torch']}, as recorded"


def check_rerun(record: dict, rerun, stored, seed_values, *, rel_tol: float = 1e-4, what: str = "rerun") -> str:
    """Check a rerun of part of a stored run against its record; return the rule that applied.

    ``record`` is the stored record (:func:`stored_result`; its ``provenance`` says where it was
    computed), ``rerun`` is a number (or array) computed now, ``stored`` the same number of the stored
    run, and ``seed_values`` that number for every stored seed of the same arm at the same
    step (``stored`` among them). Where this process computes as the record's did (same CPU
    kernels and processor, threads and torch version: :func:`same_computation`), the rerun must agree
    exactly, to ``rel_tol``: a stored result the code no longer produces fails. Elsewhere
    the rerun is another draw of the same computation, and it must lie within twice the
    stored seed spread of ``stored``: ``|rerun - stored| <= 2 (max(seed_values) - min(seed_values))``.
    Twice, because the range of three draws is a short ruler: a fourth draw falls outside the
    range of three half the time (measured: chapter 5's collapsed runs at the paper's gain,
    seeds within 11 of each other, and seed 0 rerun on AVX2 kernels 11.4 from its stored value).
    That catches a change of the code that moves a result by more than seed noise; a smaller
    one is caught only on a machine like the record's (``make test`` there, or CI's).

    Returns the rule and why it applied, for the chapter to print: ``"exact to a relative
    0.0001 (AVX512 kernels, 1 thread, torch 2.13.0+cpu, as recorded)"`` or ``"within twice the
    stored seeds' spread (recorded with cpu_capability AVX512, here AVX2)"``. Raises
    ``AssertionError`` when the rerun fails the rule.
    """
    import numpy as np

    rerun, stored = np.asarray(rerun, dtype=float), np.asarray(stored, dtype=float)
    same, why = same_computation(record["provenance"])
    if same:
        if not np.allclose(rerun, stored, rtol=rel_tol, atol=0.0):
            worst = float(np.max(np.abs(rerun - stored) / np.maximum(np.abs(stored), 1e-300)))
            raise AssertionError(f"{what}: not the stored result on the record's kernels ({why}): largest relative "
                                 f"difference {worst:.2e} > {rel_tol:g}")
        return f"exact to a relative {rel_tol:g} ({why})"
    seeds = np.asarray(seed_values, dtype=float)
    if len(seeds) < 2:
        raise ValueError(f"{what}: a seed spread needs the values of at least 2 stored seeds, got {len(seeds)}")
    spread = seeds.max(0) - seeds.min(0)
    gap = np.abs(rerun - stored)
    if not np.all(gap <= 2 * spread):
        raise AssertionError(f"{what}: {rerun} is {np.max(gap - 2 * spread):.4g} outside twice the stored seed "
                             f"spread (stored {stored}, seeds {seed_values}); computed elsewhere: {why}")
    return f"within twice the stored seeds' spread ({why})"


def sweep(arms: dict[str, dict], seeds, steps: int, *, eval_every: int | None = None, profile: str = "quick",
          n_eval: int = 1000, progress: bool = False) -> dict:
    """Every arm (label -> overrides) at every seed, same budget: one :func:`digit_run` each.

    Returns a plain-data record: the arms, seeds, budget, :func:`provenance`, and per run
    its config, wall time, final score and (with ``eval_every``) its score trajectory.
    """
    seeds = list(seeds)
    if not arms or not seeds:
        raise ValueError("arms and seeds must be non-empty")
    runs, start = [], time.perf_counter()
    jobs = [(label, over, seed) for label, over in arms.items() for seed in seeds]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(jobs), desc="runs", leave=False)
    for label, over, seed in jobs:
        trainer, report = digit_run(steps, profile=profile, n_eval=n_eval, eval_every=eval_every, seed=seed, **over)
        h = trainer.history
        final = {k: v for k, v in report.items() if k != "trajectory"}
        final.update(k=float(h["k"][-1]) if "k" in h else 0.0, gamma_realised=float(h["gamma_realised"][-min(100, len(h)):].mean()))
        runs.append({"arm": label, "seed": seed, "overrides": over, "config": trainer.config.to_dict(),
                     "final": final, "trajectory": report.get("trajectory", [])})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return {"arms": arms, "seeds": seeds, "steps": steps, "eval_every": eval_every, "profile": profile,
            "n_eval": n_eval, "wall_seconds": time.perf_counter() - start, "provenance": provenance(), "runs": runs}


# --------------------------------------------------------------------------- 2-D mixtures (chapter 7)
__all__ += ["mixture_run"]


@functools.lru_cache(maxsize=4)
def _mixture_points(kind: str, n: int) -> torch.Tensor:
    from .data import mixture_2d

    return mixture_2d(kind, n, seed=0)  # one fixed training set per mixture, as the command line draws it


def mixture_run(kind: str = "ring", steps: int | None = None, *, objective: str = "began", seed: int = 0,
                n_eval: int = 2500, n_points: int = 100_000, profile: str = "quick", progress: bool = False,
                **overrides) -> tuple[Trainer, dict]:
    """Train BEGAN or EBGAN on the 2-D ``kind`` mixture ("ring" or "grid") and score it.

    Settings: the profile, then :data:`began_lite.config.MIXTURE` (MLP networks, batch 256, ...),
    then ``overrides``; ``steps`` defaults to MIXTURE's. The training set is ``n_points`` points
    drawn once with seed 0 (what ``train --dataset mixture`` uses). Returns the trainer and
    :func:`~began_lite.metrics.mixture_quality` of ``n_eval`` samples (2500, as VEEGAN and
    PacGAN draw) from a fixed z, plus ``seconds`` (wall time of training), ``kind``,
    ``objective`` and ``seed``.
    """
    from .config import MIXTURE
    from .data import MIXTURE_KINDS
    from .metrics import mixture_quality

    if kind not in MIXTURE_KINDS:
        raise ValueError(f"kind must be one of {MIXTURE_KINDS}, got {kind!r}")
    settings = {**MIXTURE, "objective": objective, "seed": seed, **overrides}
    if steps is not None:
        settings["steps"] = steps
    settings["extra"] = {**settings.get("extra", {}), "dataset": "mixture", "mixture": kind, "points": n_points}
    config = TrainConfig.for_profile(profile, **settings)
    trainer = Trainer(config, _mixture_points(kind, n_points))
    start = time.perf_counter()
    trainer.train(config.steps, progress=progress)
    seconds = time.perf_counter() - start
    report = mixture_quality(trainer.sample(n_eval, seed=12345), kind)._asdict()
    report.update(seconds=seconds, kind=kind, objective=objective, seed=seed)
    return trainer, report


def faces_run(steps: int, *, image_size: int = 32, profile: str = "quick", progress: bool = False,
              flip: bool = False, **overrides) -> Trainer:
    """BEGAN on the 100 bundled LFW faces (chapter 6) with the profile's settings, :data:`BEFORE_SHIFT`, then ``overrides``.

    ``flip=True`` trains on the 100 faces and their 100 mirror images (left and right swapped),
    the one augmentation a face keeps its meaning under; the default is the faces alone.
    """
    from .data import load_faces

    if not isinstance(flip, bool):
        raise ValueError(f"flip must be True or False, got {flip!r}")
    config = TrainConfig.for_profile(profile, steps=steps, image_size=image_size, channels=1, **{**BEFORE_SHIFT, **overrides})
    faces = load_faces(image_size)  # (100, 1, S, S)
    trainer = Trainer(config, torch.cat([faces, faces.flip(-1)]) if flip else faces)
    trainer.train(steps, progress=progress)
    return trainer


# The stored faces runs (chapter 6): the faces alone, with their mirror images, and with the mirror
# images on today's whole quick profile (the shift of what D sees and the weight average of G).
FACES: dict[str, dict] = {"faces": {}, "faces-flip": {"flip": True},
                          "faces-shift": {"flip": True, **WITH_SHIFT}}


def faces_record(steps: int, *, seed: int = 0, image_size: int = 32, profile: str = "quick",
                 progress: bool = False, name: str = "faces") -> tuple[dict, bytes]:
    """A stored faces run: config, full history, wall time and provenance, plus a PNG grid of 64 samples.

    ``name`` is one of :data:`FACES`, whose settings (``flip`` as in :func:`faces_run`, and overrides) it runs."""
    import io

    import numpy as np
    from PIL import Image

    from .plotting import image_grid

    if name not in FACES:
        raise ValueError(f"name must be one of {sorted(FACES)}, got {name!r}")
    settings = FACES[name]
    start = time.perf_counter()
    trainer = faces_run(steps, image_size=image_size, profile=profile, progress=progress, seed=seed, **settings)
    seconds = time.perf_counter() - start
    grid = image_grid(trainer.sample(64, seed=0), nrow=8)
    buf = io.BytesIO()
    Image.fromarray((grid * 255).round().astype(np.uint8)).save(buf, format="PNG")
    record = {"experiment": name, "steps": steps, "seed": seed, "flip": settings.get("flip", False),
              "settings": settings, "config": trainer.config.to_dict(),
              "wall_seconds": seconds, "provenance": provenance(), "history": trainer.history.to_dict(),
              "samples_png": f"{name}.png (64 samples, z seed 0)"}
    return record, buf.getvalue()


# --------------------------------------------------------------------------- the showcase (introduction, chapter 7)
__all__ += ["SHOWCASE", "showcase_record", "load_showcase"]

# The best digits of this package on a CPU within 20 minutes of one thread: the whole quick profile
# (the paper's objective; with the shift and the weight average of G that digit_run leaves out
# unless asked, BEFORE_SHIFT). Before the shift, four candidates trained for up to 20 minutes
# (data/results/showcase-candidates.json: a constant rate and three linear decays) all scored
# best after 1000 steps, and trained longer k_t fell and the samples collapsed to 3-4 classes.
SHOWCASE: dict = dict(WITH_SHIFT)
SHOWCASE_PATH = Path(__file__).resolve().parents[1] / "data" / "results" / "showcase.pt"


def showcase_record(steps: int, *, seed: int = 0, eval_every: int = 1000, check_steps: int = 200,
                    check_seeds=(0, 1, 2), progress: bool = False, **overrides) -> tuple[dict, dict, bytes]:
    """Train the showcase (:data:`SHOWCASE` plus ``overrides`` on the quick profile) for ``steps``.

    Returns ``(record, weights, png)``: the record (config, score every ``eval_every`` steps,
    wall time, provenance, and the first ``check_steps`` steps of ``check_seeds`` scored, for a
    short rerun to check against), the sampling generator's weights with its config (a
    ``weights_only`` checkpoint), and a PNG of 64 samples beside 64 real digits.
    """
    import io

    import numpy as np
    from PIL import Image

    from .plotting import image_grid

    settings = {**SHOWCASE, **overrides}
    trainer, report = digit_run(steps, seed=seed, eval_every=eval_every, progress=progress, **settings)
    first = []
    for s in check_seeds:  # the short runs a rerun checks (the first steps of the same settings)
        _, short = digit_run(check_steps, seed=s, **settings)
        first.append({"seed": s, **{k: v for k, v in short.items() if k not in ("cached",)}})
    real = _digits(trainer.config.image_size)[torch.randperm(1797, generator=torch.Generator().manual_seed(0))[:64]]
    real_grid = image_grid(real, nrow=8)
    grid = np.concatenate([real_grid, np.ones((real_grid.shape[0], 4)), image_grid(trainer.sample(64, seed=0), nrow=8)], axis=1)
    buf = io.BytesIO()
    image = Image.fromarray((grid * 255).round().astype(np.uint8))
    image.resize((3 * image.width, 3 * image.height), Image.Resampling.NEAREST).save(buf, format="PNG")  # crisp pixels
    record = {"experiment": "showcase", "steps": steps, "seed": seed, "settings": settings,
              "config": trainer.config.to_dict(), "final": {k: v for k, v in report.items() if k not in ("trajectory", "cached")},
              "trajectory": report["trajectory"], "wall_seconds": report["seconds"],
              "check_steps": check_steps, "first_steps": first, "provenance": provenance(),
              "samples_png": "showcase.png (64 real digits, left; 64 samples, z seed 0, right)",
              "weights": "showcase.pt (the sampling generator: the weight average of G)"}
    weights = {"generator": trainer.sampler.state_dict(), "config": trainer.config.to_dict(), "steps": steps}
    return record, weights, buf.getvalue()


def load_showcase(path=SHOWCASE_PATH):
    """The stored showcase generator (``weights_only`` load), in eval mode, on the CPU."""
    from .models import build_generator

    state = load_checkpoint(path)
    G = build_generator(TrainConfig.from_dict(state["config"]))
    G.load_state_dict(state["generator"])
    return G.eval()


def mixture_record(steps: int | None = None, *, seeds=(0, 1, 2), kinds=("ring", "grid"),
                   objectives=("began", "ebgan"), check_steps: int = 100, progress: bool = False) -> dict:
    """Every (mixture, objective, seed) of :func:`mixture_run`: scores, wall times, provenance,
    and each run's first ``check_steps`` logged losses (a short rerun must reproduce them)."""
    jobs = [(kind, objective, seed) for kind in kinds for objective in objectives for seed in seeds]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(jobs), desc="runs", leave=False)
    runs, start = [], time.perf_counter()
    for kind, objective, seed in jobs:
        trainer, report = mixture_run(kind, steps, objective=objective, seed=seed)
        runs.append({**report, "config": trainer.config.to_dict(),
                     "first_losses": [float(v) for v in trainer.history["loss_real"][:check_steps]],
                     "points": trainer.sample(500, seed=12345).round(decimals=4).tolist()})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return {"experiment": "mixtures", "steps": runs[0]["config"]["steps"], "seeds": list(seeds), "kinds": list(kinds),
            "objectives": list(objectives), "check_steps": check_steps, "wall_seconds": time.perf_counter() - start,
            "provenance": provenance(), "runs": runs}


def main(args) -> int:
    """`python -m began_lite experiment NAME ...`: run stored experiments and write NAME.json (prints progress)."""
    from .checkpoint import atomic_write_bytes, output_folder

    for name, v in (("steps", args.steps), ("eval-every", args.eval_every)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    out = output_folder(args.out)
    for name in dict.fromkeys(args.names):
        if name in FACES:
            record, png = faces_record(args.steps, seed=args.seeds[0], profile=args.profile,
                                       progress=not args.no_progress, name=name)
            record["command"] = (f"python -m began_lite experiment {name} --steps {args.steps} --seeds {args.seeds[0]} "
                                 f"--profile {args.profile} --out {args.out}")
            atomic_write_bytes(out / f"{name}.png", png)
            atomic_write_bytes(out / f"{name}.json", json.dumps(record).encode())
            print(f"wrote {out / (name + '.json')} and {name}.png ({record['wall_seconds']:.0f} s)")
            continue
        if name == "showcase":
            record, weights, png = showcase_record(args.steps, seed=args.seeds[0], eval_every=args.eval_every,
                                                   progress=not args.no_progress)
            record["command"] = (f"python -m began_lite experiment showcase --steps {args.steps} --seeds {args.seeds[0]} "
                                 f"--eval-every {args.eval_every} --out {args.out}")
            save_checkpoint(weights, out / "showcase.pt")
            atomic_write_bytes(out / "showcase.png", png)
            atomic_write_bytes(out / "showcase.json", json.dumps(record, indent=1).encode())
            f = record["final"]
            print(f"showcase seed {args.seeds[0]}: {args.steps} steps in {record['wall_seconds']:.0f} s; Frechet "
                  f"{f['frechet']:.1f}, classes {f['classes_covered']}/10, largest share {f['max_share']:.3f}; "
                  f"wrote {out / 'showcase.json'}, showcase.pt and showcase.png")
            continue
        if name == "mixtures":
            record = mixture_record(seeds=args.seeds, progress=not args.no_progress)
            record["command"] = (f"python -m began_lite experiment mixtures --seeds {' '.join(map(str, args.seeds))} "
                                 f"--out {args.out}")
            atomic_write_bytes(out / "mixtures.json", json.dumps(record, indent=1).encode())
            for r in record["runs"]:
                print(f"{r['objective']:6s} {r['kind']:5s} seed {r['seed']}  modes {r['modes_covered']:2d}/{r['n_modes']}  "
                      f"high quality {100 * r['high_quality_share']:5.1f}%  [{r['seconds']:.0f} s]")
            print(f"wrote {out / 'mixtures.json'} ({record['wall_seconds']:.0f} s)")
            continue
        result = sweep(EXPERIMENTS[name], args.seeds, args.steps, eval_every=args.eval_every,
                       profile=args.profile, progress=not args.no_progress)
        result["experiment"] = name
        result["command"] = (f"python -m began_lite experiment {name} --steps {args.steps} --seeds "
                             f"{' '.join(map(str, args.seeds))} --eval-every {args.eval_every} "
                             f"--profile {args.profile} --out {args.out}")
        atomic_write_bytes(out / f"{name}.json", json.dumps(result, indent=1).encode())
        for run in result["runs"]:
            f = run["final"]
            print(f"{run['arm']:10s} seed {run['seed']}  Frechet {f['frechet']:7.1f}  classes {f['classes_covered']:2d}/10  "
                  f"KL {f['kl_from_uniform']:.3f}  diversity {f['diversity']:.3f}  [{f['seconds']:.0f} s]")
        print(f"wrote {out / (name + '.json')} ({result['wall_seconds']:.0f} s)")
    return 0
