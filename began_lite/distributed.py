"""Several processes, one run: data-parallel training with ``torchrun`` (appendix "Several GPUs").

``torchrun --nproc_per_node=N -m began_lite train ...`` starts N processes and tells each
its place through the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``). :func:`init_from_env` joins them into one process
group: NCCL between GPUs, gloo between CPU processes. The :class:`~began_lite.train.Trainer`
notices the group and then, through the two helpers here (:func:`batch_share` and
:func:`wrap`), and never inside :func:`~began_lite.step.gan_step`,

* draws, on every rank, the same *global* minibatch of ``world_size * batch_size`` images
  and z vectors from the shared seeded generator, and keeps its own slice of
  ``batch_size``. Concatenated, the slices are the batch a single process with batch size
  ``world_size * batch_size`` would draw;
* wraps G and D in ``DistributedDataParallel``, which averages gradients over the ranks.
  The losses are batch means, so the average of the ranks' gradients is the gradient of the
  mean over the global batch: one step of N processes is one step on the combined batch,
  up to float rounding;
* averages the logged losses over the ranks before anything reads them, so the k_t
  controller reads the global L(x) and L(G(z)), and k stays identical on every rank;
* writes checkpoints and samples from rank 0 only (the others wait at a barrier); a resumed
  run loads the checkpoint on every rank.

Deviation: the pulling-away term (EBGAN, and BEGAN with ``began_pt_weight > 0``) compares
the embeddings of one batch pairwise, so with N processes it is computed over each rank's
own batch, not over the global batch.

Nothing here runs at import, and nothing changes a single-process run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["ProcessGroup", "init_from_env", "current", "batch_share", "wrap", "all_reduce_mean", "barrier", "shutdown"]


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands: ``rank`` in ``0 .. world_size - 1`` (``world_size == 1``: alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files and prints."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer (as torchrun sets it), got {value!r}") from None


def init_from_env(device: str | None = None) -> ProcessGroup:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    With ``WORLD_SIZE`` unset, or 1 outside ``torchrun``, nothing happens and a one-process :class:`ProcessGroup` is
    returned. Otherwise the backend is NCCL when this process will train on a CUDA GPU
    (``device`` is None, ``"auto"`` or starts with ``"cuda"``, and CUDA is present; each
    process then takes the GPU ``LOCAL_RANK``) and gloo otherwise.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world < 1:
        raise ValueError(f"WORLD_SIZE must be >= 1, got {world}")
    if world == 1 and not os.environ.get("TORCHELASTIC_RUN_ID"):  # alone, not started by torchrun
        return ProcessGroup()
    if dist.is_initialized():
        return current()
    local_rank = _env_int("LOCAL_RANK", 0)
    on_gpu = torch.cuda.is_available() and (device in (None, "auto") or str(device).startswith("cuda"))
    if on_gpu:
        torch.cuda.set_device(local_rank)  # before the group forms, so NCCL binds this GPU
    if on_gpu:
        dist.init_process_group(backend="nccl", device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group(backend="gloo")
    return current()


def current() -> ProcessGroup:
    """The process group this process belongs to (one process when none was initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return ProcessGroup()
    return ProcessGroup(rank=dist.get_rank(), world_size=dist.get_world_size(),
                        local_rank=_env_int("LOCAL_RANK", dist.get_rank()))


def batch_share(batch_size: int, group: ProcessGroup | None = None) -> tuple[int, slice]:
    """The global batch size and this rank's slice of it: every rank draws the same
    ``world_size * batch_size`` samples from the shared generator and keeps its own part."""
    group = group or current()
    return group.world_size * batch_size, slice(group.rank * batch_size, (group.rank + 1) * batch_size)


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` in DistributedDataParallel when a process group was formed (gradients are averaged
    over the ranks in backward; also for one process started by ``torchrun``, so that a single GPU
    runs the NCCL path); ``module`` itself otherwise."""
    if not (dist.is_available() and dist.is_initialized()):
        return module
    import inspect

    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    # Every rank sets the same vanishing-residual carry, so buffers need no broadcast at each forward.
    no_sync = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters \
        else "broadcast_buffers"  # the older name
    for p in module.parameters():
        p.register_post_accumulate_grad_hook(_grad_strides_as_param)  # runs before DDP reads the gradient
    return DDP(module, device_ids=ids, **{no_sync: False})


def _grad_strides_as_param(p: torch.Tensor) -> None:
    """Give ``p.grad`` exactly ``p``'s strides where the two differ only on dimensions of size 1.

    DDP copies each gradient into a bucket view with its parameter's strides, and warns ("Grad
    strides do not match bucket view strides") when the strides differ, even on a dimension of
    size 1, where a stride addresses nothing. A channels-last weight with one input channel,
    (n, 1, 3, 3), is such a case: cuDNN returned its gradient with strides (9, 9, 3, 1), the
    parameter has (9, 1, 3, 1) (torchrun on an H200). Same memory, same order: a view costs nothing.
    """
    g = p.grad
    if g is None or g.stride() == p.stride():
        return
    if all(a == b for n, a, b in zip(p.shape, g.stride(), p.stride()) if n != 1):
        p.grad = g.as_strided(p.shape, p.stride(), g.storage_offset())


def all_reduce_mean(t: torch.Tensor, group: ProcessGroup | None = None) -> torch.Tensor:
    """The mean of ``t`` over all ranks (a new tensor; ``t`` detached and unchanged when alone).

    Sum then divide, because gloo has no averaging reduction. No host-device sync.
    """
    group = group or current()
    t = t.detach()
    if group.world_size == 1:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / group.world_size


def barrier(group: ProcessGroup | None = None) -> None:
    """Wait until every rank gets here (nothing when alone)."""
    if (group or current()).world_size > 1:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group (nothing when none was initialised)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
