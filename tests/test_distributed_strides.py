"""DDP and channels-last weights: no "Grad strides do not match bucket view strides" (distributed.wrap).

On an H200, torchrun's one worker warned for D's first convolution, a channels-last weight
(128, 1, 3, 3) with strides (9, 1, 3, 1) whose gradient cuDNN returned with the contiguous
strides (9, 9, 3, 1): the same memory, since a dimension of size 1 has no stride that matters,
but DDP compares strides exactly. The CPU's convolutions return the parameter's own strides, so
here a function in the graph hands the gradient back the way cuDNN did, and two gloo ranks run
plain DDP (which must warn: the case is real) and distributed.wrap (which must not).
"""
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

from began_lite import distributed

WORLD = 2
WARNING = "Grad strides do not match bucket view strides"


class GradAsCudnnGaveIt(torch.autograd.Function):
    """The identity on a weight; its gradient comes back with the plain contiguous strides."""

    @staticmethod
    def forward(ctx, w):
        return w.view_as(w)

    @staticmethod
    def backward(ctx, grad):
        return torch.empty(grad.shape).copy_(grad)  # (9, 9, 3, 1) for (n, 1, 3, 3)


class Stem(torch.nn.Module):
    """D's first convolution on grey images: one input channel."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        return torch.nn.functional.conv2d(x, GradAsCudnnGaveIt.apply(self.conv.weight), self.conv.bias, padding=1)


def _step(wrapped, x) -> list[str]:
    """One backward through ``wrapped``; the warnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wrapped(x).square().mean().backward()
    return [str(w.message) for w in caught if WARNING in str(w.message)]


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(rank))  # each rank its own batch
        result = {}
        # distributed.wrap first: the warning is given once per process, so plain DDP after it still can.
        for name, wrap in (("wrap", lambda m: distributed.wrap(m, torch.device("cpu"))), ("plain", DDP)):
            torch.manual_seed(0)
            stem = Stem().to(memory_format=torch.channels_last)
            assert stem.conv.weight.stride() == (9, 1, 3, 1)
            result[name] = {"warnings": _step(wrap(stem), x), "grad": stem.conv.weight.grad.clone(),
                            "grad_strides": stem.conv.weight.grad.stride()}
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_wrap_gives_ddp_gradients_with_the_parameters_strides(tmp_path):
    mp.start_processes(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True,
                       start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for r in ranks:
        assert r["wrap"]["warnings"] == [] and r["wrap"]["grad_strides"] == (9, 1, 3, 1)
        assert r["plain"]["warnings"] and r["plain"]["grad_strides"] == (9, 9, 3, 1)  # the H200's case
        assert torch.equal(r["wrap"]["grad"], r["plain"]["grad"])  # the same averaged gradient
    assert torch.equal(ranks[0]["wrap"]["grad"], ranks[1]["wrap"]["grad"])
