"""Data-parallel training: two CPU processes (gloo) against one process on the combined batch.

Each rank draws the same global minibatch and z from the shared seeded generator and keeps
its half; DDP averages the gradients of the two half-batch means, which is the gradient of
the mean over the whole batch. So two processes with batch B must match one process with
batch 2B up to float rounding (the order of the sums differs), and the ranks must agree
exactly with each other: same k, same weights.
"""
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import began_lite as bl
from began_lite.checkpoint import load_checkpoint
from began_lite.train import Trainer

WORLD = 2
B = 4  # per rank; the single-process reference uses WORLD * B
STEPS, MORE = 4, 3
# Measured: the largest weight difference after 7 steps is 3e-8 (float32 rounding of the two
# summation orders, which Adam's division by sqrt(v) can amplify); 1e-6 leaves room.
ATOL = 1e-6


def tiny_config(batch_size):
    return bl.TrainConfig(image_size=8, channels=1, filters=4, repeat=1, z_dim=4, h_dim=4, batch_size=batch_size,
                          steps=STEPS + MORE, gamma=0.5, lambda_k=0.05, lr=1e-3, device="cpu", dtype="float32",
                          profile="quick", ema=0.9)


def _data():
    return torch.rand(256, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _state(tr):
    return {"G": [p.detach().clone() for p in tr.G.parameters()], "D": [p.detach().clone() for p in tr.D.parameters()],
            "ema": [p.detach().clone() for p in tr.sampler.parameters()], "k": tr.k,
            "loss_real": [float(v) for v in tr.history["loss_real"]], "k_hist": [float(v) for v in tr.history["k"]]}


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        out = Path(out_dir)
        data = _data()
        tr = Trainer(tiny_config(B), data, run_dir=out / "run")
        tr.train(STEPS, progress=False)  # rank 0 writes the checkpoint, rank 1 waits
        resumed = Trainer.from_checkpoint(out / "run", data, run_dir=out / "resumed")  # every rank loads it
        tr.train(STEPS + MORE, progress=False)
        resumed.train(STEPS + MORE, progress=False)  # the total, like --steps
        torch.save({"straight": _state(tr), "resumed": _state(resumed),
                    "files": sorted(p.name for p in (out / "run").iterdir())}, out / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(_worker, args=(str(out / "init"), str(out)), nprocs=WORLD, join=True, start_method="spawn")
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)], out


def test_ranks_agree_exactly(two_ranks):
    (r0, r1), _ = two_ranks
    for part in ("G", "D", "ema"):
        assert all(torch.equal(a, b) for a, b in zip(r0["straight"][part], r1["straight"][part])), part
    assert r0["straight"]["k"] == r1["straight"]["k"] > 0
    assert r0["straight"]["k_hist"] == r1["straight"]["k_hist"]


def test_matches_one_process_on_the_combined_batch(two_ranks):
    (r0, _), _ = two_ranks
    single = Trainer(tiny_config(WORLD * B), _data())
    single.train(STEPS + MORE, progress=False)
    ref = _state(single)
    for part in ("G", "D", "ema"):
        worst = max((a - b).abs().max().item() for a, b in zip(r0["straight"][part], ref[part]))
        assert worst < ATOL, (part, worst)
    # The controller read the averaged L(x), L(G(z)): the same k sequence as one process.
    assert r0["straight"]["k_hist"] == pytest.approx(ref["k_hist"], abs=1e-6)
    assert r0["straight"]["loss_real"] == pytest.approx(ref["loss_real"], rel=1e-5)


def test_resume_on_every_rank_is_exact(two_ranks):
    (r0, r1), _ = two_ranks
    for r in (r0, r1):
        for part in ("G", "D", "ema"):
            assert all(torch.equal(a, b) for a, b in zip(r["straight"][part], r["resumed"][part])), part
        assert r["straight"]["k"] == r["resumed"]["k"]


def test_rank_zero_writes_one_checkpoint(two_ranks):
    (r0, _), out = two_ranks
    assert {"checkpoint.pt", "history.json", "config.json"} <= set(r0["files"])
    assert not [n for n in r0["files"] if n.endswith(".tmp") or n.startswith(".write_test")]
    state = load_checkpoint(out / "run")
    assert state["step"] == STEPS + MORE and math.isclose(state["k"], r0["straight"]["k"])


def test_torchrun_cli(tmp_path):
    """`torchrun --nproc_per_node=2 -m began_lite train ...` on the CPU: rank 0 reports and writes the run."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "began_lite",
         "train", "--dataset", "digits", "--image-size", "8", "--filters", "4", "--z-dim", "4", "--h-dim", "4",
         "--batch-size", "4", "--device", "cpu", "--profile", "quick", "--no-progress", "--steps", "3",
         "--out", str(tmp_path / "r")], env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stderr.count("done: step 3") == 1  # rank 0 reports, rank 1 is quiet
    state = load_checkpoint(tmp_path / "r")
    assert state["step"] == 3 and len(state["history"]["k"]) == 3


ONE_RANK = """
import began_lite as bl
from began_lite import distributed
group = distributed.init_from_env("cpu")
cfg = bl.TrainConfig(image_size=8, channels=1, filters=4, repeat=1, z_dim=4, h_dim=4, batch_size=8, steps=2,
                     device="cpu", dtype="float32", profile="quick")
trainer = bl.Trainer(cfg, bl.load_digits(8)[:64])
trainer.train(2, progress=False)
print(type(trainer.G_step).__name__, type(trainer.D_step).__name__, group.world_size)
distributed.shutdown()
"""


def test_one_process_under_torchrun_runs_the_ddp_path():
    """torchrun with one process still forms the group and wraps G and D, so one GPU tests the NCCL path."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCHELASTIC_RUN_ID": "test", "RANK": "0", "LOCAL_RANK": "0",
           "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    r = subprocess.run([sys.executable, "-c", ONE_RANK], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["DistributedDataParallel", "DistributedDataParallel", "1"]
    env.pop("TORCHELASTIC_RUN_ID")  # alone, not under torchrun: no group, plain modules
    r = subprocess.run([sys.executable, "-c", ONE_RANK], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["Generator", "Discriminator", "1"]
