"""Determinism on the CPU: the same seed gives the same samples, run after run.

Two separate Python processes train the same small model with the same seed and draw
samples; the bytes must be equal, not merely close. (What is and is not deterministic on a
GPU is written in book/appendix_gpu.md, "Determinism".)
"""
import os
import subprocess
import sys
import textwrap

import torch

import began_lite as bl
from began_lite.train import Trainer

SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import began_lite as bl
    from began_lite.train import Trainer

    seed = int(sys.argv[1])
    cfg = bl.TrainConfig(image_size=8, channels=1, filters=4, repeat=1, z_dim=4, h_dim=4, batch_size=8,
                         steps=15, seed=seed, device="cpu", dtype="float32", profile="quick")
    tr = Trainer(cfg, bl.load_digits(8)[:256])
    tr.train(progress=False)
    x = tr.sample(16, seed=seed).numpy()
    print(hashlib.sha256(x.tobytes()).hexdigest(), float(x.sum()))
""")


def run(seed: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(seed)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_same_seed_same_samples_in_two_processes():
    first, second = run(3), run(3)  # side by side, as two runs on the same machine
    outs = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(out.split())
    assert outs[0][0] == outs[1][0], outs  # the SHA-256 of the sample bytes


def test_different_seed_different_samples():
    def samples(seed):
        cfg = bl.TrainConfig(image_size=8, channels=1, filters=4, repeat=1, z_dim=4, h_dim=4, batch_size=8,
                             steps=3, seed=seed, device="cpu", dtype="float32", profile="quick")
        tr = Trainer(cfg, bl.load_digits(8)[:256])
        tr.train(progress=False)
        return tr.sample(8, seed=0)

    assert torch.equal(samples(1), samples(1))
    assert not torch.equal(samples(1), samples(2))
