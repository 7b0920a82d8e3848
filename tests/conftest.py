"""Shared test settings.

The unit tests run tiny models and tiny matrices. With several BLAS/OpenMP threads on a
2-core machine that is also doing something else, threads spin-wait on each other and a
0.1 s test can take 10 s; one thread is as fast for these sizes and immune to that.
"""
import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)
