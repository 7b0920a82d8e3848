"""The one GAN loop of chapters 3-7: :class:`Trainer` runs BEGAN or EBGAN around :func:`~began_lite.step.gan_step`.

A step of :meth:`Trainer.train_step` is

1. draw a real batch x and two latent batches z_D, z_G from the run's seeded generator;
2. :func:`~began_lite.step.gan_step`: D's update, G's update through a frozen D, and BEGAN's
   k_t update (the whole of the maths; chapter 4 prints it);
3. bookkeeping: the weight average of G (when on), the learning-rate halving, the history.

Device and precision are chosen once, at construction, the nanoGPT way (:mod:`began_lite.device`):
bfloat16 autocast on a CUDA GPU that supports it, plain float32 elsewhere; channels-last tensors
on CUDA; ``torch.compile`` when ``config.compile``. Processes started by ``torchrun`` train one
run together (:mod:`began_lite.distributed`). A checkpoint holds the whole state, so a resumed
run continues bit for bit on a CPU.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import torch

from . import distributed
from .augment import RandomShift
from .checkpoint import (CHECKPOINT_NAME, CheckpointError, atomic_write_bytes, check_finite, checkpoint_config,
                         load_checkpoint, output_folder, resolve_checkpoint, save_checkpoint)
from .config import TrainConfig, field_names
from .data import check_training_data
from .device import autocast_dtype, pick_device, seed_everything
from .ema import WeightAverage
from .history import History
from .models import build_discriminator, build_generator, sample_z
from .objectives import make_objective
from .schedules import PlateauHalver
from .step import TrainingDiverged, gan_step

__all__ = ["Trainer", "TrainingDiverged"]


class Trainer:
    """BEGAN or EBGAN on a tensor of images ``data`` (N, C, S, S) in [-1, 1], or of points (N, d).

    ``config`` is a :class:`TrainConfig`; ``run_dir`` (optional) receives the checkpoint, the
    history (JSON and CSV) and the config. ``fixed_k`` pins BEGAN's k (chapter 4). Minibatches
    and z are drawn by a seeded generator whose state is checkpointed: resuming is exact.
    Points need ``config.data_dim = d`` and get MLP networks (chapter 7's 2-D mixtures).
    """

    def __init__(self, config: TrainConfig, data: torch.Tensor, *, run_dir=None,
                 fixed_k: float | None = None, n_fixed: int = 64):
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        check_training_data(config, data)
        self.config, self.device = config, pick_device(config.device)
        seed_everything(config.seed)
        self.G = build_generator(config).to(self.device)
        # Deviation (optional): samples come from a moving average of G's weights (ema.py).
        self.G_avg = WeightAverage(self.G, config.ema) if config.ema > 0 else None
        self.D = build_discriminator(config).to(self.device)
        betas = tuple(config.adam_betas)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas)
        self.objective = make_objective(config, fixed_k=fixed_k)
        # Deviation (optional): D sees every image through a random shift (augment.py); None = the paper's.
        self.T = RandomShift(config.shift, seed=config.seed + 3) if config.shift else None
        self.schedule = PlateauHalver(config.lr_patience, config.lr_decay, config.lr_min)
        self.lr = config.lr
        self.gen = torch.Generator().manual_seed(config.seed)  # minibatches and z, on the CPU
        self.fixed_z = sample_z(n_fixed, config.z_dim, generator=torch.Generator().manual_seed(config.seed + 1))
        # Small datasets live on the device; large ones stay on the CPU (pinned when on CUDA).
        cuda = self.device.type == "cuda"
        small = data.numel() * data.element_size() < 1 << 30
        self.data = data.to(self.device) if small else (data.pin_memory() if cuda else data)
        self.step, self.history = 0, History()
        self.run_dir = output_folder(run_dir) if run_dir is not None else None
        self.last_checkpoint: Path | None = None
        self.interrupted, self._stop, self.elapsed = False, False, 0.0
        dtype = autocast_dtype(config.dtype, self.device)  # precision, once (nanoGPT's ctx)
        self.autocast = contextlib.nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)
        self.channels_last = cuda and not config.data_dim
        if self.channels_last:
            for m in (self.G, self.D, self.sampler):
                m.to(memory_format=torch.channels_last)
        # The modules the step calls, compiled and/or wrapped for several processes; self.G and
        # self.D stay the plain modules that checkpoints and samples use (they share weights).
        self.process_group = distributed.current()
        G, D = (torch.compile(self.G), torch.compile(self.D)) if config.compile else (self.G, self.D)
        self.G_step, self.D_step = distributed.wrap(G, self.device), distributed.wrap(D, self.device)

    @property
    def k(self) -> float:
        """BEGAN's k_t (0 for EBGAN, which has none)."""
        return self.objective.k

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator samples come from: the weight average when ``config.ema > 0``, else G."""
        return self.G_avg.module if self.G_avg is not None else self.G

    def _batch(self):
        """x, z_D, z_G of this step, on the device (this rank's share of the global batch)."""
        cfg, dev = self.config, self.device
        n, mine = distributed.batch_share(cfg.batch_size, self.process_group)
        idx = torch.randint(len(self.data), (n,), generator=self.gen)[mine]
        z_d = sample_z(n, cfg.z_dim, generator=self.gen)[mine].to(dev, non_blocking=True)
        z_g = sample_z(n, cfg.z_dim, generator=self.gen)[mine].to(dev, non_blocking=True)
        x = self.data[idx.to(self.data.device)].to(dev, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, z_d, z_g

    def train_step(self) -> dict:
        """One step (:func:`~began_lite.step.gan_step`) and its bookkeeping; returns the logged numbers.

        A NaN or inf loss raises :class:`TrainingDiverged`; the update it would have made is not applied.
        """
        cfg = self.config
        if cfg.vanishing_residual:
            for m in (self.G, self.D, self.sampler):
                m.set_carry(max(0.0, 1.0 - self.step / cfg.vanishing_steps))
        x, z_d, z_g = self._batch()
        try:
            logs = gan_step(G=self.G_step, D=self.D_step, opt_d=self.opt_d, opt_g=self.opt_g,
                            objective=self.objective, x=x, z_d=z_d, z_g=z_g, T=self.T, autocast=self.autocast)
        except TrainingDiverged as err:
            where = f"; the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else \
                "; no checkpoint was written before it"
            raise TrainingDiverged(f"training diverged at step {self.step + 1}: {err}{where}") from None
        if self.G_avg is not None:
            self.G_avg.update(self.G, self.step)
        logs["lr"] = self.lr
        self.step += 1
        logs["step"] = self.step
        new_lr = self.schedule.observe(logs[self.objective.schedule_measure], self.lr)
        if new_lr != self.lr:
            self.lr = new_lr
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = new_lr
        self.history.append(logs)
        return logs

    def request_stop(self) -> None:
        """Ask :meth:`train` to stop after the current step (callbacks call this; see StopOnSignal)."""
        self._stop = True

    def train(self, steps: int | None = None, *, progress: bool = True, checkpoint_every: int | None = None,
              callbacks=()) -> History:
        """Train until the run has made ``steps`` steps in all (default ``config.steps``); returns the history.

        Each of ``callbacks`` is called as ``callback(trainer, logs)`` after every step; one may call
        :meth:`request_stop`, and the loop then ends after that step with :attr:`interrupted` set.
        With a run directory the checkpoint is written every ``checkpoint_every`` steps and at the
        end, however the loop ended. A NaN or inf loss raises :class:`TrainingDiverged` before
        anything of that step is applied or saved.
        """
        steps = self.config.steps if steps is None else steps
        for name, v, lo in (("steps", steps, 0), ("checkpoint_every", checkpoint_every, 1)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < lo):
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        callbacks = list(callbacks)
        if not all(callable(cb) for cb in callbacks):
            raise ValueError("callbacks must be callable as callback(trainer, logs)")
        self.interrupted, self._stop = False, False
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, initial=min(self.step, steps), desc=self.config.objective, leave=False,
                       dynamic_ncols=True)
        start, saved_at = time.perf_counter(), None
        try:
            while self.step < steps and not self._stop:
                logs = self.train_step()
                for cb in callbacks:
                    cb(self, logs)
                if bar is not None:
                    bar.update(1)
                    if self.step % 25 == 1:
                        bar.set_postfix({k: f"{logs[k]:.3f}" for k in ("loss_real", "loss_fake", "k", "m_global")
                                         if k in logs})
                if self.run_dir is not None and checkpoint_every and self.step % checkpoint_every == 0:
                    self.save()
                    saved_at = self.step
            self.interrupted = self._stop
        finally:
            if bar is not None:
                bar.close()
        self.elapsed = time.perf_counter() - start
        if self.run_dir is not None and saved_at != self.step:  # saved twice, .prev.pt would be this step too
            self.save()
        return self.history

    @torch.no_grad()
    def sample(self, n: int = 64, *, seed: int | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        """G(z) for ``n`` new z (seeded) or for the given ``z``; on the CPU, images clamped to [-1, 1].

        Points (``config.data_dim >= 1``) come back as they are. Uses the weight average when on."""
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
            "generator_ema": self.G_avg.state_dict() if self.G_avg is not None else {},
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "objective": self.objective.state_dict(), "k": float(self.objective.k),
            "schedule": self.schedule.state_dict(),
            "rng": {"batches": self.gen.get_state(), "torch": torch.get_rng_state()},
            "augment": self.T.state_dict() if self.T is not None else {},
            "fixed_z": self.fixed_z, "history": self.history.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        if self.G_avg is not None:
            self.G_avg.load_state_dict(state["generator_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.objective.load_state_dict(state["objective"])
        self.schedule.load_state_dict(state["schedule"])
        self.gen.set_state(state["rng"]["batches"])
        if self.T is not None:
            self.T.load_state_dict(state["augment"])
        torch.set_rng_state(state["rng"]["torch"])
        self.fixed_z = state["fixed_z"]
        self.step, self.lr = int(state["step"]), float(state["lr"])
        self.history = History(state["history"])

    def save(self, path=None) -> Path:
        """Write the checkpoint (atomically), the history (JSON, CSV) and the config to the run directory.

        A NaN or inf weight (or optimiser moment) is never written over a good checkpoint; the
        checkpoint it replaces is kept as ``checkpoint.prev.pt``."""
        if path is None:
            if self.run_dir is None:
                raise ValueError("path is needed when the trainer has no run_dir")
            path = self.run_dir / CHECKPOINT_NAME
        state = self.state_dict()
        bad = check_finite(state, ("generator", "discriminator", "generator_ema", "opt_g", "opt_d"))
        if bad:
            where = f"; the last good checkpoint is {self.last_checkpoint}, left as it was" \
                if self.last_checkpoint else "; no checkpoint was written before it"
            raise TrainingDiverged(f"training diverged by step {self.step}: {bad} holds NaN or inf, "
                                   f"so it was not saved{where}")
        if self.process_group.is_main:  # ranks hold the same state: one writes, the others wait below
            save_checkpoint(state, path, keep_previous=Path(path).name == CHECKPOINT_NAME)  # and .prev.pt
            folder = Path(path).parent
            atomic_write_bytes(folder / "history.json", json.dumps(self.history.to_dict()).encode())
            atomic_write_bytes(folder / "history.csv", self.history.to_csv().encode())
            atomic_write_bytes(folder / "config.json", json.dumps(self.config.to_dict(), indent=1).encode())
        distributed.barrier(self.process_group)
        self.last_checkpoint = Path(path)
        return Path(path)

    @classmethod
    def from_checkpoint(cls, path, data: torch.Tensor, *, run_dir=None, **config_changes) -> "Trainer":
        """Rebuild a trainer from a checkpoint (file or run directory) and continue where it stopped.

        ``config_changes`` may change fields that do not shape the networks or the objective
        (``steps``, ``device``, ``lr``, ...); the others (``field_names(fixed=True)``) are refused.
        """
        state = load_checkpoint(path)
        config = checkpoint_config(state, path)
        fixed = sorted(set(config_changes) & set(field_names(fixed=True)))
        if fixed:
            raise ValueError(f"config_changes: {fixed} shape the networks and must stay as in the checkpoint; "
                             f"only other fields (steps, device, lr, ...) may change on resume")
        config = config.replace(**config_changes) if config_changes else config
        fixed_k = state["objective"].get("fixed_k") if isinstance(state.get("objective"), dict) else None
        ckpt = resolve_checkpoint(path)
        trainer = cls(config, data, run_dir=run_dir if run_dir is not None else ckpt.parent, fixed_k=fixed_k)
        try:
            trainer.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"checkpoint: {str(ckpt)!r} does not hold a complete training state for its "
                                  f"config ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
        trainer.last_checkpoint = ckpt  # verified by load_checkpoint: digests match, all finite
        return trainer
