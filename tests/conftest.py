"""Every fixture the tests share, the environment they run in, and the order they run in.

* One thread: the unit tests run tiny models and tiny matrices. With several BLAS/OpenMP threads
  on a 2-core machine that is also doing something else, threads spin-wait on each other and a
  0.1 s test can take 10 s; one thread is as fast for these sizes and immune to that.
* A clean environment: the library reads ``BEGAN_LITE_DEVICE`` (pick_device), ``BEGAN_LITE_PROFILE``
  (resolve_profile) and ``BEGAN_LITE_CACHE`` (the chapters' run cache). Every test starts with
  none of them set, except a run cache of the session's own (never the user's home).
* Order: ``pytest -n 2 --dist loadscope`` hands whole files (and notebooks) to the two workers in
  the order collected. The chapters go first, longest first (by the run time their last
  execution recorded), then the files that hold a test marked ``slow``, then the rest, which
  fill the gaps at the end. Mark a test ``@pytest.mark.slow`` when it takes more than ~10 s.
"""
from __future__ import annotations

import os

import pytest
import torch
from threadpoolctl import threadpool_limits

import began_lite as bl
from began_lite.chapters.kernels import notebook_seconds


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~10 s (its file is scheduled early)")


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("run-cache")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, session_cache):
    for name in [n for n in os.environ if n.startswith("BEGAN_LITE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BEGAN_LITE_CACHE", str(session_cache))


def _tiny(**kw) -> bl.TrainConfig:
    base = dict(image_size=8, channels=1, filters=4, repeat=1, z_dim=4, h_dim=4, batch_size=8,
                steps=40, gamma=0.5, lambda_k=0.05, lr=1e-3, device="cpu", dtype="float32", profile="quick")
    return bl.TrainConfig(**{**base, **kw})


@pytest.fixture(scope="session")
def tiny_config():
    """A factory: 8x8 grey images, 4 filters, z = h = 4, batch 8, 40 steps on the CPU (a run in well
    under a second), with any field changed by keyword."""
    return _tiny


@pytest.fixture(scope="module")
def digits8():
    return bl.load_digits(8)[:256]


def _sweep_record(gammas=(0.5, 1.0), seeds=(0, 1), steps=(5, 10, 15, 20)) -> dict:
    """A gamma sweep's record in miniature, in the layout of data/results/gamma-sweep.json.

    Each run scores ``steps``; the first seed of each arm stores a grid of 36 random 8x8 "samples"
    per scored step (``grid_png``, base64), as ``experiment gamma-sweep`` stores real ones; every
    run has ``curves`` (k_t, M_global, ... every 5 steps). The numbers are made up but distinct,
    so that a test can tell which run and step a slider shows.
    """
    import base64

    runs = []
    for g in gammas:
        for seed in seeds:
            gen = torch.Generator().manual_seed(1000 * seed + int(100 * g))
            trajectory = []
            for i, step in enumerate(steps):
                point = {"step": step, "k": round(0.01 * (i + 1) * g + 0.001 * seed, 6), "m_global": 1.0 / (i + 2),
                         "gamma_realised": g, "frechet": 400.0 - 10 * i - seed, "classes_covered": i,
                         "precision": 0.1 * i, "recall": 0.05 * i}
                if seed == seeds[0]:
                    grid = bl.plotting.grid_png(torch.rand(36, 1, 8, 8, generator=gen) * 2 - 1, nrow=6)
                    point["grid_png"] = base64.b64encode(grid).decode()
                trajectory.append(point)
            every_5 = list(range(5, steps[-1] + 1, 5))
            curves = {"every": 5, "step": every_5, "k": [round(0.002 * s * g + 0.001 * seed, 6) for s in every_5],
                      "loss_real": [0.1] * len(every_5), "loss_fake": [0.1 * g] * len(every_5),
                      "m_global": [round(1.0 / s + 0.01 * seed, 6) for s in every_5], "gamma_realised": [g] * len(every_5)}
            runs.append({"arm": f"gamma={g}", "seed": seed, "settings": {"profile": "quick", "gamma": g},
                         "config": {"gamma": g, "seed": seed, "steps": steps[-1]}, "final": {"frechet": 300.0},
                         "trajectory": trajectory, "curves": curves})
    return {"experiment": "gamma-sweep", "arms": {f"gamma={g}": {"profile": "quick", "gamma": g} for g in gammas},
            "seeds": list(seeds), "steps": steps[-1], "eval_every": steps[0], "runs": runs}


@pytest.fixture(scope="session")
def sweep_record():
    """A factory of miniature gamma-sweep records (see :func:`_sweep_record`)."""
    return _sweep_record


def pytest_collection_modifyitems(session, config, items):
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    seconds = {p: notebook_seconds(p) for p in {item.path for item in items if item.path.suffix == ".ipynb"}}

    def rank(item):
        if item.path.suffix == ".ipynb":
            return (0, -seconds[item.path])
        return (1 if item.path in slow_files else 2, 0.0)

    items.sort(key=rank)  # stable: each file's tests stay in their order
