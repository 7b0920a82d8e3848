"""The one GAN loop of chapters 3-7: :class:`Trainer` runs BEGAN or EBGAN around :func:`~began_lite.step.gan_step`.

A step of :meth:`Trainer.train_step` is

1. draw a real batch x and two latent batches z_D, z_G from the run's seeded generator;
2. :func:`~began_lite.step.gan_step`: one D update on a detached G(z_D), one G update
   through a frozen D (the whole of the maths; chapter 4 prints it);
3. bookkeeping: the objective's ``after_step`` (BEGAN's k_t update), the learning-rate
   schedule, the weight average of G (when on), the history.

Device and precision are chosen once, at construction, the nanoGPT way: bfloat16 autocast on
a CUDA GPU that supports it (float16 with one GradScaler each for G and D when asked),
plain float32 elsewhere; channels-last tensors on CUDA; ``torch.compile`` when
``config.compile``. Processes started by ``torchrun`` train one run together: each keeps its
slice of the global batch and G and D are wrapped for gradient averaging
(:mod:`began_lite.distributed`). Checkpoints hold the whole state, so a resumed run
continues bit for bit on a CPU. Ctrl-C and sample grids are callbacks
(:mod:`began_lite.callbacks`).
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import time
from pathlib import Path

import torch
from torch import nn

from . import distributed
from .augment import RandomShift
from .autoencoder import check_images
from .checkpoint import CHECKPOINT_NAME, atomic_write_bytes, load_checkpoint, save_checkpoint
from .config import TrainConfig, pick_device, seed_everything
from .history import History
from .models import build_discriminator, build_generator, sample_z
from .objectives import make_objective
from .schedules import LinearRamp, PlateauHalver
from .step import TrainingDiverged, gan_step

__all__ = ["Trainer", "TrainingDiverged", "autocast_dtype"]


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
    check_images("data", data)
    expected = (config.channels, config.image_size, config.image_size)
    if tuple(data.shape[1:]) != expected:
        raise ValueError(f"data must have shape (N, {expected[0]}, {expected[1]}, {expected[2]}) to match the "
                         f"config (channels, image_size), got {tuple(data.shape)}")
    if not torch.isfinite(data).all() or data.min() < -1.0001 or data.max() > 1.0001:
        raise ValueError("data must be finite and scaled to [-1, 1]")


def autocast_dtype(config: TrainConfig, device: torch.device):
    """None for plain float32; else the autocast dtype (bf16 on CUDA when 'auto' and supported)."""
    if config.dtype == "float32" or device.type == "mps":
        return None
    if config.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    return {"bfloat16": torch.bfloat16, "float16": torch.float16}[config.dtype]


class Trainer:
    """BEGAN or EBGAN on a tensor of images ``data`` (N, C, S, S) in [-1, 1], or of points (N, d).

    ``config`` is a :class:`TrainConfig`; ``run_dir`` (optional) receives the checkpoint,
    the history (JSON and CSV) and the config. ``fixed_k`` pins BEGAN's k (chapter 4).
    Minibatches are drawn with replacement by a seeded generator whose state is
    checkpointed, which is what makes resuming exact.

    Points need ``config.data_dim = d`` and get the MLP networks (chapter 7's 2-D mixtures).
    Of the network fields only z_dim, h_dim and mlp_hidden apply to points.
    """

    def __init__(self, config: TrainConfig, data: torch.Tensor, *, run_dir=None,
                 fixed_k: float | None = None, n_fixed: int = 64):
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        _check_training_data(config, data)
        self.config, self.device = config, pick_device(config.device)
        seed_everything(config.seed)
        self.G = build_generator(config).to(self.device)
        # Deviation (optional): sample from a moving average of G's weights. Training never reads it.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if config.ema > 0 else None
        self.D = build_discriminator(config).to(self.device)
        betas = tuple(config.adam_betas)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)
        self.objective = make_objective(config, fixed_k=fixed_k)
        # Deviation (optional): D sees every image through a random shift (augment.py); None = the paper's.
        self.augment = RandomShift(config.shift, seed=config.seed + 3) if config.shift else None
        self.schedule = PlateauHalver(config.lr_patience, config.lr_decay, config.lr_min)
        self.ramp = (LinearRamp(config.lr, config.lr_ramp_start, config.lr_ramp_end, config.lr_min)
                     if config.lr_ramp_end else None)
        self.lr = config.lr
        self.gen = torch.Generator().manual_seed(config.seed)  # minibatches and z, on the CPU
        self.fixed_z = sample_z(n_fixed, config.z_dim, generator=torch.Generator().manual_seed(config.seed + 1))
        # Small datasets live on the device; large ones stay on the CPU (pinned when on CUDA).
        small = data.numel() * data.element_size() < 1 << 30
        cuda = self.device.type == "cuda"
        self.data = data.to(self.device) if small else (data.pin_memory() if cuda else data)
        self.step, self.history = 0, History()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.last_checkpoint: Path | None = None
        self.interrupted, self._stop = False, False
        # Device and precision, once (nanoGPT): the autocast context and float16's two scalers.
        dtype = autocast_dtype(config, self.device)
        self.ctx = contextlib.nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)
        self.scalers = (torch.amp.GradScaler(self.device.type), torch.amp.GradScaler(self.device.type)) \
            if dtype == torch.float16 else (None, None)
        self.channels_last = cuda and not config.data_dim
        if self.channels_last:
            for m in (self.G, self.D, self.G_ema):
                if m is not None:
                    m.to(memory_format=torch.channels_last)
        # The modules the step calls: compiled and/or wrapped for several processes. self.G and
        # self.D stay the plain modules that checkpoints and samples use; they share weights.
        self.process_group = distributed.current()
        G, D = (torch.compile(self.G), torch.compile(self.D)) if config.compile else (self.G, self.D)
        self.G_step, self.D_step = distributed.wrap(G, self.device), distributed.wrap(D, self.device)
        if self.run_dir is not None:
            self._prepare_run_dir()

    @property
    def k(self) -> float:
        """BEGAN's k_t (0 for EBGAN, which has none)."""
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

    def _batch(self):
        """x, z_D, z_G of this step, on the device (this rank's share of the global batch)."""
        cfg, dev = self.config, self.device
        n, mine = distributed.batch_share(cfg.batch_size, self.process_group)
        idx = torch.randint(len(self.data), (n,), generator=self.gen)[mine]
        z_d = sample_z(n, cfg.z_dim, generator=self.gen)[mine].to(dev, non_blocking=True)
        z_g = sample_z(n, cfg.z_dim, generator=self.gen)[mine].to(dev, non_blocking=True)
        real = self.data[idx.to(self.data.device)].to(dev, non_blocking=True)
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        return real, z_d, z_g

    def train_step(self) -> dict:
        """One step (:func:`~began_lite.step.gan_step`) and its bookkeeping; returns the logged numbers.

        A NaN or inf loss raises :class:`TrainingDiverged`, and the update it would have made
        (with L_D, both) is not applied.
        """
        cfg = self.config
        if cfg.vanishing_residual:
            carry = max(0.0, 1.0 - self.step / cfg.vanishing_steps)
            for m in (self.G, self.D, self.G_ema):
                if m is not None:
                    m.set_carry(carry)
        real, z_d, z_g = self._batch()
        try:
            logs = gan_step(self.G_step, self.D_step, self.opt_d, self.opt_g, self.objective, real, z_d, z_g,
                            self.ctx, self.scalers, self.augment)
        except TrainingDiverged as err:
            where = f"; the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else \
                "; no checkpoint was written before it"
            raise TrainingDiverged(f"training diverged at step {self.step + 1}: {err}{where}") from None
        # The controller reads global means, so k agrees on all ranks; one host read for all numbers.
        values = distributed.all_reduce_mean(torch.stack([v.detach().float() for v in logs.values()]))
        logs = dict(zip(logs, values.tolist()))
        if self.G_ema is not None:  # warm-up: decay min(ema, (1+t)/(10+t)), so the average forgets the init
            decay = min(cfg.ema, (1.0 + self.step) / (10.0 + self.step))
            with torch.no_grad():
                for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                    p_ema.lerp_(p, 1.0 - decay)
                for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                    b_ema.copy_(b)
        logs.update(self.objective.after_step(logs))
        logs["lr"] = self.lr
        self.step += 1
        logs["step"] = self.step
        new_lr = self.ramp.at(self.step) if self.ramp else \
            self.schedule.observe(logs[self.objective.schedule_measure], self.lr)
        if new_lr != self.lr:
            self.lr = new_lr
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = new_lr
        self.history.append(logs)
        return logs

    def request_stop(self) -> None:
        """Ask :meth:`train` to stop after the current step (callbacks call this; see StopOnCtrlC)."""
        self._stop = True

    def train(self, steps: int | None = None, *, progress: bool = True, checkpoint_every: int | None = None,
              callbacks=()) -> History:
        """Run ``steps`` more steps (default: up to ``config.steps``); returns the history.

        Each of ``callbacks`` is called as ``callback(trainer, logs)`` after every step; one
        may call :meth:`request_stop`, and the loop then ends after that step with
        :attr:`interrupted` set. With a run directory the checkpoint is written every
        ``checkpoint_every`` steps and at the end, however the loop ended. A NaN or inf loss
        raises :class:`TrainingDiverged` before anything of that step is applied or saved.
        """
        if steps is None:
            steps = max(0, self.config.steps - self.step)
        for name, v, lo in (("steps", steps, 0), ("checkpoint_every", checkpoint_every, 1)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < lo):
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        callbacks = list(callbacks)
        for cb in callbacks:
            if not callable(cb):
                raise ValueError(f"callbacks must be callable as callback(trainer, logs), got {type(cb).__name__}")
        self.interrupted, self._stop = False, False
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, desc=self.config.objective, leave=False, dynamic_ncols=True)
        start = time.perf_counter()
        try:
            for i in range(steps):
                logs = self.train_step()
                for cb in callbacks:
                    cb(self, logs)
                if bar is not None:
                    bar.update(1)
                    if i % 25 == 0:
                        bar.set_postfix({k: f"{logs[k]:.3f}" for k in ("loss_real", "loss_fake", "k", "m_global")
                                         if k in logs})
                if self.run_dir is not None and checkpoint_every and self.step % checkpoint_every == 0:
                    self.save()
                if self._stop:
                    self.interrupted = True
                    break
        finally:
            if bar is not None:
                bar.close()
        self.elapsed = time.perf_counter() - start
        if self.run_dir is not None:
            self.save()
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

    # -- checkpoints
    def state_dict(self) -> dict:
        return {
            "config": self.config.to_dict(), "step": self.step, "lr": self.lr,
            "generator": self.G.state_dict(), "discriminator": self.D.state_dict(),
            "generator_ema": self.G_ema.state_dict() if self.G_ema is not None else {},
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "objective": self.objective.state_dict(), "k": float(self.objective.k),
            "schedule": self.schedule.state_dict(),
            "scalers": [s.state_dict() if s is not None else {} for s in self.scalers],
            "rng": {"batches": self.gen.get_state(), "torch": torch.get_rng_state()},
            "augment": self.augment.state_dict() if self.augment is not None else {},
            "fixed_z": self.fixed_z, "history": self.history.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["generator_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for opt in (self.opt_g, self.opt_d):  # checkpoints of older versions may hold fused Adam's settings
            for group in opt.param_groups:
                group["fused"] = None
            for s in opt.state.values():
                if "step" in s:
                    s["step"] = s["step"].to(dtype=torch.float32, device="cpu")
        self.objective.load_state_dict(state["objective"])
        self.schedule.load_state_dict(state["schedule"])
        # older checkpoints hold one "scaler" shared by G and D
        saved = state.get("scalers") or [state.get("scaler") or {}] * 2
        for scaler, s in zip(self.scalers, saved):
            if scaler is not None and s:
                scaler.load_state_dict(s)
        self.gen.set_state(state["rng"]["batches"])
        if self.augment is not None:
            self.augment.load_state_dict(state["augment"])
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
