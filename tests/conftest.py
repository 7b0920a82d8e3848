"""Shared test settings and helpers.

The unit tests run tiny models and tiny matrices. With several BLAS/OpenMP threads on a
2-core machine that is also doing something else, threads spin-wait on each other and a
0.1 s test can take 10 s; one thread is as fast for these sizes and immune to that.
"""
import pytest
import torch
from threadpoolctl import threadpool_limits

import began_lite as bl


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


def tiny_config(**kw) -> bl.TrainConfig:
    """8x8 grey images, 4 filters, z = h = 4, batch 8, 40 steps on the CPU: a run in well under a second."""
    base = dict(image_size=8, channels=1, filters=4, repeat=1, z_dim=4, h_dim=4, batch_size=8,
                steps=40, gamma=0.5, lambda_k=0.05, lr=1e-3, device="cpu", dtype="float32", profile="quick")
    return bl.TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def digits8():
    return bl.load_digits(8)[:256]
