"""Training: the autoencoder on its own (chapter 2), and the one GAN loop (chapters 3-7).

:class:`Trainer` runs BEGAN or EBGAN; the objective (:mod:`began_lite.objectives`) is the
only difference. One step is

1. **D step**: a real batch x and a fake batch G(z_D), *detached* so that no gradient
   reaches G, go through D in one pass; D takes one Adam step on L_D.
2. **G step**: a fresh fake batch G(z_G) goes through D with D's parameters frozen, so the
   gradient of L_G flows *through* D into G and D is left untouched; G takes one Adam step.
3. **Bookkeeping**: the objective's ``after_step`` (BEGAN's k_t update), the logged numbers,
   the learning-rate schedule (halve when M_global stalls), the vanishing-residual carry.

Every logged number of every step is in :attr:`Trainer.history`. Checkpoints hold the
whole state, so a resumed run continues bit for bit on a CPU. Device and precision are
chosen once, at construction: bfloat16 autocast on a CUDA GPU that supports it, plain
float32 elsewhere; so are the speed settings (``memory_format``, ``compile``, ``sync``),
which on a CPU default to the path the book's outputs were computed with. Processes
started by ``torchrun`` train one run together (:mod:`began_lite.distributed`).
"""
from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import distributed
from .checkpoint import CHECKPOINT_NAME, atomic_write_bytes, load_checkpoint, save_checkpoint
from .config import TrainConfig, pick_device, seed_everything
from .losses import reconstruction_loss
from .models import build_discriminator, build_generator, sample_z
from .objectives import make_objective

__all__ = ["fit_autoencoder", "reconstruction_losses", "Trainer", "History", "PlateauHalver", "LinearRamp", "TrainingDiverged", "train"]


def _check_images(name: str, x) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] == 0 or not x.is_floating_point():
        raise ValueError(f"{name} must be a non-empty float tensor (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")


def _check_training_data(config: TrainConfig, data) -> None:
    """Images (N, C, S, S) in [-1, 1] matching channels and image_size, or points (N, data_dim) when data_dim >= 1."""
    d = config.data_dim
    shape = tuple(getattr(data, "shape", ())) or type(data).__name__
    if isinstance(data, torch.Tensor) and data.is_floating_point() and data.dtype != torch.float32:
        raise ValueError(f"data must be float32 like the networks, got {data.dtype} (use data.float())")
    if d:
        if not isinstance(data, torch.Tensor) or data.ndim != 2 or data.shape[0] == 0 or not data.is_floating_point():
            raise ValueError(f"data must be a non-empty float tensor of points (N, {d}) to match the config "
                             f"(data_dim={d}), got {shape}")
        if data.shape[1] != d:
            raise ValueError(f"data must have shape (N, {d}) to match the config (data_dim), got {shape}")
        if not torch.isfinite(data).all():
            raise ValueError("data must be finite (it holds NaN or inf)")
        return
    if isinstance(data, torch.Tensor) and data.ndim == 2:
        raise ValueError(f"data must be images (N, C, H, W) for a config with data_dim=0; for points (N, d) "
                         f"set data_dim=d, got {shape}")
    _check_images("data", data)
    expected = (config.channels, config.image_size, config.image_size)
    if tuple(data.shape[1:]) != expected:
        raise ValueError(f"data must have shape (N, {expected[0]}, {expected[1]}, {expected[2]}) to match the "
                         f"config (channels, image_size), got {tuple(data.shape)}")
    if not torch.isfinite(data).all() or data.min() < -1.0001 or data.max() > 1.0001:
        raise ValueError("data must be finite and scaled to [-1, 1]")


def fit_autoencoder(model: nn.Module, data: torch.Tensor, *, steps: int, batch_size: int = 64,
                    lr: float = 1e-3, eta: int = 1, seed: int = 0, device=None,
                    progress: bool = False) -> list[float]:
    """Train an autoencoder ``model`` to minimise the batch mean of L(v) = |v - D(v)|^eta on ``data``.

    Minibatches are drawn with replacement from a generator seeded with ``seed``; Adam
    with learning rate ``lr``. Returns the loss of every step. The model is left on ``device``.
    """
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise ValueError(f"model must be a torch.nn.Module with parameters, got {type(model).__name__}")
    _check_images("data", data)
    if not torch.isfinite(data).all():
        raise ValueError("data must be finite (it holds NaN or inf)")
    for name, v, lo in (("steps", steps, 0), ("batch_size", batch_size, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if eta not in (1, 2) or isinstance(eta, bool):
        raise ValueError(f"eta must be 1 or 2, got {eta!r}")
    device = pick_device(device)
    gen = seed_everything(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    data = data.to(device)
    history: list[float] = []
    steps_iter = range(steps)
    if progress:
        from tqdm.auto import tqdm
        steps_iter = tqdm(steps_iter, desc="autoencoder", leave=False)
    for _ in steps_iter:
        idx = torch.randint(len(data), (batch_size,), generator=gen).to(device)
        x = data[idx]
        loss = reconstruction_loss(x, model(x), eta=eta).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append(loss.item())
    model.eval()
    return history


@torch.no_grad()
def reconstruction_losses(model: nn.Module, x: torch.Tensor, *, eta: int = 1, batch_size: int = 256) -> torch.Tensor:
    """L(v) for every image in ``x`` (shape ``(N,)``, on the CPU), in evaluation mode and without gradients."""
    _check_images("x", x)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for chunk in x.split(batch_size):
        chunk = chunk.to(device)
        out.append(reconstruction_loss(chunk, model(chunk), eta=eta).cpu())
    model.train(was_training)
    return torch.cat(out)


# --------------------------------------------------------------------------- the GAN loop
class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; nothing of that step was applied or saved."""


class History:
    """Every logged quantity, one value per step: ``history["k"]`` is a list of floats."""

    def __init__(self, columns: dict | None = None):
        self.columns: dict[str, list[float]] = {k: list(v) for k, v in (columns or {}).items()}

    def append(self, row: dict) -> None:
        n = len(self)
        for key, value in row.items():
            col = self.columns.setdefault(key, [float("nan")] * n)
            col.append(float(value))
        for key, col in self.columns.items():  # a column missing from this row
            if len(col) < n + 1:
                col.append(float("nan"))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.columns:
            raise KeyError(f"history has no column {key!r}; it has {sorted(self.columns)}")
        return np.asarray(self.columns[key], dtype=np.float64)

    def __contains__(self, key: str) -> bool:
        return key in self.columns

    def keys(self):
        return self.columns.keys()

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.columns.items()}

    def to_csv(self) -> str:
        buf = io.StringIO()
        keys = list(self.columns)
        w = csv.writer(buf)
        w.writerow(keys)
        for row in zip(*(self.columns[k] for k in keys)):
            w.writerow([repr(v) for v in row])
        return buf.getvalue()


class PlateauHalver:
    """Multiply the learning rate by ``decay`` when the mean of M_global over a window of
    ``patience`` steps is not at least 1% below the best window so far (BEGAN §4.1)."""

    def __init__(self, patience: int, decay: float, lr_min: float):
        self.patience, self.decay, self.lr_min = patience, decay, lr_min
        self.best, self.total, self.count = math.inf, 0.0, 0

    def observe(self, m_global: float, lr: float) -> float:
        self.total += m_global
        self.count += 1
        if self.count < self.patience:
            return lr
        mean, self.total, self.count = self.total / self.count, 0.0, 0
        if mean < 0.99 * self.best:
            self.best = mean
            return lr
        return max(self.lr_min, lr * self.decay)

    def state_dict(self) -> dict:
        return {"best": self.best, "total": self.total, "count": self.count}

    def load_state_dict(self, s: dict) -> None:
        self.best, self.total, self.count = float(s["best"]), float(s["total"]), int(s["count"])


class LinearRamp:
    """The learning rate after ``step`` steps: ``lr`` up to ``start``, then linearly down to
    ``lr_min`` at ``end``, and ``lr_min`` after. A deviation for short runs (off in both profiles;
    ``--lr-ramp`` on the command line): it freezes the game near where it stands instead of
    letting a constant rate drift on."""

    def __init__(self, lr: float, start: int, end: int, lr_min: float):
        self.lr, self.start, self.end, self.lr_min = lr, start, end, lr_min

    def at(self, step: int) -> float:
        if step >= self.end:
            return self.lr_min
        t = max(0.0, (step - self.start) / (self.end - self.start))
        return self.lr + (self.lr_min - self.lr) * t


def _use_fused_adam(opt: torch.optim.Adam, fused: bool) -> None:
    """Switch ``opt`` to the fused Adam kernel (which can skip an update on the device) or back.

    Fused Adam keeps its step count on the parameters' device; the default keeps it on the CPU.
    """
    for group in opt.param_groups:
        group["fused"] = True if fused else None  # None: PyTorch's default choice
        if fused:
            group["foreach"] = None
        for p in group["params"]:
            state = opt.state.get(p)
            if state and "step" in state:
                state["step"] = state["step"].to(dtype=torch.float32, device=p.device if fused else "cpu")


def _autocast_dtype(config: TrainConfig, device: torch.device):
    """None for plain float32; else the autocast dtype (bf16 on CUDA when 'auto' and supported)."""
    if config.dtype == "float32" or device.type == "mps":
        return None
    if config.dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}[config.dtype]


class _StopFlag:
    """Turns the first Ctrl-C (SIGINT) during training into 'stop after this step'."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):
                if self.requested:  # a second Ctrl-C: give up at once
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Trainer:
    """BEGAN or EBGAN on a tensor of images ``data`` (N, C, S, S) in [-1, 1], or of points (N, d).

    ``config`` is a :class:`TrainConfig`; ``run_dir`` (optional) receives the checkpoint,
    the history (JSON and CSV), the config and sample grids. ``fixed_k`` pins BEGAN's k
    (chapter 4). Minibatches are drawn with replacement by a seeded generator whose state
    is checkpointed, which is what makes resuming exact.

    Points need ``config.data_dim = d`` and get the MLP networks (chapter 7's 2-D mixtures);
    their sample "grids" are scatter plots, over the modes of ``config.extra["mixture"]``
    (``"ring"`` or ``"grid"``) when it names one. Of the network fields only z_dim, h_dim and
    mlp_hidden apply to points (image_size, channels, filters, repeat do not).
    """

    def __init__(self, config: TrainConfig, data: torch.Tensor, *, run_dir=None,
                 fixed_k: float | None = None, n_fixed: int = 64):
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        _check_training_data(config, data)
        self.config = config
        self.device = pick_device(config.device)
        seed_everything(config.seed)
        self.G = build_generator(config).to(self.device)
        # Deviation (optional): sample from a moving average of G's weights, which smooths
        # out the mode hopping of short runs. Training never reads it.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if config.ema > 0 else None
        self.D = build_discriminator(config).to(self.device)
        betas = tuple(config.adam_betas)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)
        self.objective = make_objective(config, fixed_k=fixed_k)
        self.schedule = PlateauHalver(config.lr_patience, config.lr_decay, config.lr_min)
        self.ramp = (LinearRamp(config.lr, config.lr_ramp_start, config.lr_ramp_end, config.lr_min)
                     if config.lr_ramp_end else None)
        self.lr = config.lr
        self.gen = torch.Generator().manual_seed(config.seed)  # minibatches and z, on the CPU
        self.fixed_z = sample_z(n_fixed, config.z_dim, generator=torch.Generator().manual_seed(config.seed + 1))
        # Small datasets live on the device; large ones stay on the CPU (pinned when on CUDA).
        small = data.numel() * data.element_size() < 1 << 30
        self.data = data.to(self.device) if small else (data.pin_memory() if self.device.type == "cuda" else data)
        self.step = 0
        self.history = History()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.last_checkpoint: Path | None = None
        self.autocast_dtype = _autocast_dtype(config, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.autocast_dtype == torch.float16)
        self._setup_speed_and_scale()
        if self.run_dir is not None:
            self._prepare_run_dir()

    # -- properties readers use
    @property
    def k(self) -> float:
        return self.objective.k

    def _prepare_run_dir(self) -> None:
        d = self.run_dir
        if d.exists() and not d.is_dir():
            raise ValueError(f"out must be a directory, but {str(d)!r} is a file")
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / f".write_test.{os.getpid()}"  # one per process: ranks of a torchrun share the folder
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise ValueError(f"out: cannot write to {str(d)!r} ({err.strerror})") from None

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _setup_speed_and_scale(self) -> None:
        """Choices that change how fast a step runs, not what it computes (appendix "Benchmarks").

        The modules a step calls: ``_G_train``/``_D_train`` take the gradient steps (wrapped in
        DistributedDataParallel when several processes train together), ``_G_plain`` makes
        the detached fakes and ``_D_plain`` is the frozen D of the G step; all four are
        ``torch.compile``-d when ``config.compile`` asks. ``self.G``/``self.D`` stay the plain
        modules that checkpoints and samples use.
        """
        cfg, cuda = self.config, self.device.type == "cuda"
        self.process_group = distributed.current()
        # "step": one host read a step; fused Adam skips a non-finite update on the device.
        # float16's GradScaler skips steps its own way, so it keeps the per-loss reads.
        self.sync_mode = ("step" if cuda else "loss") if cfg.sync == "auto" else cfg.sync
        if self.scaler.is_enabled():
            self.sync_mode = "loss"
        for opt in (self.opt_g, self.opt_d):
            _use_fused_adam(opt, self.sync_mode == "step")
        images = not getattr(cfg, "data_dim", 0)
        self.channels_last = images and (cfg.memory_format == "channels_last" or (cfg.memory_format == "auto" and cuda))
        if self.channels_last:
            for m in (self.G, self.D, self.G_ema):
                if m is not None:
                    m.to(memory_format=torch.channels_last)
        G_train, D_train = self.G, self.D
        if self.process_group.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] if cuda else None
            # Every rank sets the same vanishing-residual carry, so buffers need no broadcast at each forward.
            import inspect

            no_sync = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters \
                else "broadcast_buffers"  # the older name
            G_train = DDP(self.G, device_ids=ids, **{no_sync: False})
            D_train = DDP(self.D, device_ids=ids, **{no_sync: False})
        G_plain, D_plain = self.G, self.D
        if cfg.compile != "off":
            mode = None if cfg.compile == "default" else cfg.compile
            G_train, D_train = torch.compile(G_train, mode=mode), torch.compile(D_train, mode=mode)
            if self.process_group.world_size > 1:
                G_plain, D_plain = torch.compile(self.G, mode=mode), torch.compile(self.D, mode=mode)
            else:
                G_plain, D_plain = G_train, D_train
        self._G_train, self._D_train, self._G_plain, self._D_plain = G_train, D_train, G_plain, D_plain

    def _to(self, t: torch.Tensor, device: torch.device) -> torch.Tensor:
        """``t`` on ``device``; from the CPU to a GPU through pinned memory, without waiting for the GPU."""
        if t.device == device:
            return t
        if device.type == "cuda" and t.device.type == "cpu":
            return t.pin_memory().to(device, non_blocking=True)
        return t.to(device)

    def _backward_step(self, loss, opt, skip=None) -> None:
        """Backward and one optimizer step; ``skip`` (a bool tensor, sync "step") skips it on the device."""
        opt.zero_grad(set_to_none=True)
        if skip is None:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()
            return
        loss.backward()
        opt.found_inf, opt.grad_scale = skip.float(), None  # read by fused Adam: 1 = leave everything as it was
        opt.step()

    def _check_finite(self, name: str, value: float) -> None:
        if not math.isfinite(value):
            where = f"; the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else \
                "; no checkpoint was written before it"
            raise TrainingDiverged(f"training diverged at step {self.step + 1}: {name} = {value}{where}")

    def _guard(self, name: str, loss: torch.Tensor):
        """Before an update: with sync "loss", raise if ``loss`` (averaged over ranks) is not
        finite; with sync "step", return a device flag that the update reads instead."""
        loss = distributed.all_reduce_mean(loss, self.process_group)  # loss.detach() when alone
        if self.sync_mode == "step":
            return ~torch.isfinite(loss)
        self._check_finite(name, loss.item())
        return None

    def train_step(self) -> dict:
        """One D update and one G update; returns the logged numbers of the step.

        A NaN or inf loss raises :class:`TrainingDiverged`, and the update it would have made
        (with L_D, both) is not applied. With ``sync="loss"`` (the default on a CPU) each
        loss is read on the host before its update; with ``sync="step"`` (on CUDA) the host
        reads the step's numbers once, at the end, and fused Adam skips a non-finite update
        on the device. With several processes each
        draws the global batch and keeps its slice (:mod:`began_lite.distributed`).
        """
        cfg, dev, pg = self.config, self.device, self.process_group
        if cfg.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # CUDA graphs: the previous step's outputs are done with
        if cfg.vanishing_residual:
            carry = max(0.0, 1.0 - self.step / cfg.vanishing_steps)
            self.G.set_carry(carry)
            self.D.set_carry(carry)
        # The global batch of world_size * batch_size, drawn alike on every rank; this rank's slice.
        n, mine = pg.world_size * cfg.batch_size, slice(pg.rank * cfg.batch_size, (pg.rank + 1) * cfg.batch_size)
        idx = torch.randint(len(self.data), (n,), generator=self.gen)[mine]
        z_d = self._to(sample_z(n, cfg.z_dim, generator=self.gen)[mine], dev)
        z_g = self._to(sample_z(n, cfg.z_dim, generator=self.gen)[mine], dev)
        real = self._to(self.data[self._to(idx, self.data.device)], dev)
        if self.channels_last and real.ndim == 4:
            real = real.contiguous(memory_format=torch.channels_last)

        # D step: the fake batch is made without a graph, so no gradient can reach G.
        with torch.no_grad(), self._autocast():
            fake = self._G_plain(z_d)
        with self._autocast():
            loss_d, logs_d = self.objective.d_loss(self._D_train, real, fake)
        skip_d = self._guard("L_D", loss_d)
        self._backward_step(loss_d, self.opt_d, skip_d)

        # G step: D frozen, so L_G flows through D into G and leaves D's weights alone.
        self.D.requires_grad_(False)
        try:
            with self._autocast():
                loss_g, logs_g = self.objective.g_loss(self._D_plain, self._G_train(z_g))
            skip_g = self._guard("L_G", loss_g)
            self._backward_step(loss_g, self.opt_g, None if skip_g is None else skip_g | skip_d)
        finally:
            self.D.requires_grad_(True)

        names = list(logs_d) + list(logs_g)
        values = torch.stack([v.detach().float() for v in list(logs_d.values()) + list(logs_g.values())])
        values = distributed.all_reduce_mean(values, pg)  # the controller reads global means: k agrees on all ranks
        logs = dict(zip(names, values.tolist()))  # one host-device sync for all of them
        if self.sync_mode == "step":  # the updates of a non-finite step were skipped; now say so
            self._check_finite("L_D", logs["loss_d"])
            self._check_finite("L_G", logs["loss_g"])
        if self.G_ema is not None:
            # Warm-up: the decay is min(ema, (1 + t) / (10 + t)) at step t, so that the average
            # forgets the random initial weights within the first few hundred steps instead of
            # keeping them for ~1/(1 - ema) steps (an average started at init made every seed worse).
            decay = min(self.config.ema, (1.0 + self.step) / (10.0 + self.step))
            with torch.no_grad():
                for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                    p_ema.lerp_(p, 1.0 - decay)
                for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                    b_ema.copy_(b)
                if cfg.vanishing_residual:
                    self.G_ema.set_carry(carry)  # the Python copy of the carry that forward reads
        logs.update(self.objective.after_step(logs))
        logs["lr"] = self.lr
        self.step += 1
        logs["step"] = self.step
        new_lr = self.ramp.at(self.step) if self.ramp else self.schedule.observe(logs["m_global"], self.lr)
        if new_lr != self.lr:
            self.lr = new_lr
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = new_lr
        self.history.append(logs)
        return logs

    def train(self, steps: int | None = None, *, progress: bool = True, checkpoint_every: int | None = None,
              sample_every: int | None = None, callback=None) -> History:
        """Run ``steps`` more steps (default: up to ``config.steps``); returns the history.

        Ctrl-C stops at the end of the current step, saves a checkpoint (with a run
        directory), sets :attr:`interrupted` and returns the history so far. A NaN or inf loss raises
        :class:`TrainingDiverged` before anything of that step is applied or saved.
        ``callback(trainer, logs)`` is called after every step.
        """
        if steps is None:
            steps = max(0, self.config.steps - self.step)
        for name, v in (("steps", steps), ("checkpoint_every", checkpoint_every), ("sample_every", sample_every)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "steps" else 1)):
                raise ValueError(f"{name} must be an integer >= {0 if name == 'steps' else 1}, got {v!r}")
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable as callback(trainer, logs), got {type(callback).__name__}")
        self.interrupted = False
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, desc=f"{self.config.objective}", leave=False, dynamic_ncols=True)
        start = time.perf_counter()
        try:
            with _StopFlag() as stop:
                for i in range(steps):
                    logs = self.train_step()
                    if callback is not None:
                        callback(self, logs)
                    if bar is not None:
                        bar.update(1)
                        if i % 25 == 0:
                            bar.set_postfix(L_x=f"{logs['loss_real']:.3f}", L_G=f"{logs['loss_fake']:.3f}",
                                            k=f"{logs['k']:.3f}", M=f"{logs['m_global']:.3f}")
                    if self.run_dir is not None:
                        if sample_every and self.step % sample_every == 0:
                            self.save_samples()
                        if checkpoint_every and self.step % checkpoint_every == 0:
                            self.save()
                    if stop.requested:
                        self.interrupted = True  # Ctrl-C: the caller may tell a finished run from a stopped one
                        break
        finally:
            if bar is not None:
                bar.close()
        self.elapsed = time.perf_counter() - start
        if self.run_dir is not None:
            self.save()
            self.save_samples()
        return self.history

    # -- sampling
    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples: the weight average when ``config.ema > 0``, else G."""
        return self.G_ema if self.G_ema is not None else self.G

    @torch.no_grad()
    def sample(self, n: int = 64, *, seed: int | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        """G(z) for ``n`` new z (seeded) or for the given ``z``; on the CPU, images clamped to [-1, 1].

        Points (``config.data_dim >= 1``) come back as they are, shape (n, data_dim). Uses the
        weight average of G when ``config.ema > 0``."""
        if z is None:
            g = torch.Generator().manual_seed(self.config.seed + 2 if seed is None else seed)
            z = sample_z(n, self.config.z_dim, generator=g)
        G = self.sampler
        was = G.training
        G.eval()
        out = torch.cat([G(chunk.to(self.device)).float().cpu() for chunk in z.split(256)])
        G.train(was)
        return out if self.config.data_dim else out.clamp(-1, 1)

    def save_samples(self, path=None) -> Path:
        """A PNG grid of G(fixed z) to ``path`` (default ``run_dir/samples/step_NNNNNN.png``).

        For points: a scatter plot of 1000 samples (the same z at every step) over the mixture's
        modes when ``config.extra["mixture"]`` names them."""
        from PIL import Image

        from .plotting import image_grid, scatter_png

        if path is None:
            if self.run_dir is None:
                raise ValueError("path is needed when the trainer has no run_dir")
            path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        if not self.process_group.is_main:  # rank 0 draws the samples for everyone
            return Path(path)
        if self.config.data_dim:
            points = self.sample(1000, seed=self.config.seed + 1)
            png = scatter_png(points, mixture=self.config.extra.get("mixture"),
                              title=f"{self.config.objective}, step {self.step}")
            atomic_write_bytes(path, png)
            return Path(path)
        grid = image_grid(self.sample(z=self.fixed_z), nrow=8)
        buf = io.BytesIO()
        Image.fromarray((grid * 255).round().astype(np.uint8)).save(buf, format="PNG")
        atomic_write_bytes(path, buf.getvalue())
        return Path(path)

    # -- checkpoints
    def state_dict(self) -> dict:
        return {
            "config": self.config.to_dict(), "step": self.step, "lr": self.lr,
            "generator": self.G.state_dict(), "discriminator": self.D.state_dict(),
            "generator_ema": self.G_ema.state_dict() if self.G_ema is not None else {},
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "objective": self.objective.state_dict(), "k": float(self.objective.k),
            "schedule": self.schedule.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": {"batches": self.gen.get_state(), "torch": torch.get_rng_state()},
            "fixed_z": self.fixed_z, "history": self.history.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["generator_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for opt in (self.opt_g, self.opt_d):  # the checkpoint's run may have chosen otherwise
            _use_fused_adam(opt, self.sync_mode == "step")
        self.objective.load_state_dict(state["objective"])
        self.schedule.load_state_dict(state["schedule"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.gen.set_state(state["rng"]["batches"])
        torch.set_rng_state(state["rng"]["torch"])
        self.fixed_z = state["fixed_z"]
        self.step, self.lr = int(state["step"]), float(state["lr"])
        self.history = History(state["history"])

    def save(self, path=None) -> Path:
        """Write the checkpoint (atomically), the history (JSON, CSV) and the config to the run directory."""
        if path is None:
            if self.run_dir is None:
                raise ValueError("path is needed when the trainer has no run_dir")
            path = self.run_dir / CHECKPOINT_NAME
        state = self.state_dict()
        self._check_state_finite(state)
        if self.process_group.is_main:  # ranks hold the same state: one writes, the others wait below
            path = save_checkpoint(state, path)
            folder = Path(path).parent
            atomic_write_bytes(folder / "history.json", json.dumps(self.history.to_dict()).encode())
            atomic_write_bytes(folder / "history.csv", self.history.to_csv().encode())
            atomic_write_bytes(folder / "config.json", json.dumps(self.config.to_dict(), indent=1).encode())
        distributed.barrier(self.process_group)
        self.last_checkpoint = Path(path)
        return Path(path)

    def _check_state_finite(self, state: dict) -> None:
        """A NaN or inf weight (or optimizer moment) is never written over a good checkpoint."""
        for part in ("generator", "discriminator", "generator_ema", "opt_g", "opt_d"):
            for t in _tensors(state[part]):
                if t.is_floating_point() and not torch.isfinite(t).all():
                    where = f"; the last good checkpoint is {self.last_checkpoint}, left as it was" \
                        if self.last_checkpoint else "; no checkpoint was written before it"
                    raise TrainingDiverged(f"training diverged by step {self.step}: {part} holds NaN or inf, "
                                           f"so it was not saved{where}")

    interrupted = False  # True after train() stopped early on Ctrl-C (SIGINT)

    # Fields that shape the networks or the objective: a checkpoint's weights only fit its own.
    FIXED_ON_RESUME = ("objective", "image_size", "channels", "filters", "repeat", "z_dim", "h_dim", "skip",
                       "vanishing_residual", "data_dim", "mlp_hidden", "ema", "tanh_output")

    @classmethod
    def from_checkpoint(cls, path, data: torch.Tensor, *, run_dir=None, **config_changes) -> "Trainer":
        """Rebuild a trainer from a checkpoint (file or run directory) and continue where it stopped.

        ``config_changes`` may change fields that do not alter the networks (``steps``, ``device``, ...);
        those in :attr:`FIXED_ON_RESUME` are refused.
        """
        from .checkpoint import CheckpointError, checkpoint_config, remove_stale_temporaries, resolve_checkpoint

        state = load_checkpoint(path)
        config = checkpoint_config(state, path)
        fixed = sorted(set(config_changes) & set(cls.FIXED_ON_RESUME))
        if fixed:
            raise ValueError(f"config_changes: {fixed} shape the networks and must stay as in the checkpoint; "
                             f"only other fields (steps, device, lr, ...) may change on resume")
        if config_changes:
            config = config.replace(**config_changes)
        fixed_k = state["objective"].get("fixed_k") if isinstance(state.get("objective"), dict) else None
        ckpt = resolve_checkpoint(path)
        trainer = cls(config, data, run_dir=run_dir if run_dir is not None else ckpt.parent, fixed_k=fixed_k)
        try:
            trainer.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"checkpoint: {str(ckpt)!r} does not hold a complete training state for its "
                                  f"config ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
        trainer.last_checkpoint = ckpt
        if trainer.run_dir is not None and trainer.run_dir.resolve() == ckpt.parent.resolve():
            remove_stale_temporaries(ckpt.parent)  # continuing in place: half-written files of a killed save
        return trainer


def _tensors(obj):
    """Every tensor inside nested dicts and lists (a state dict, an optimizer state)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def train(config: TrainConfig, data: torch.Tensor, *, steps: int | None = None, progress: bool = True,
          **kwargs) -> Trainer:
    """Build a :class:`Trainer`, train it for ``steps`` (default ``config.steps``) and return it."""
    trainer = Trainer(config, data, **kwargs)
    trainer.train(steps, progress=progress)
    return trainer
