"""``python -m began_lite train``: a new run (``--out DIR``) or the next steps of one (``--resume PATH``).

``torchrun --nproc_per_node=N -m began_lite train ...`` trains one run on N processes
(:mod:`began_lite.distributed`); rank 0 alone prints, locks and writes the run folder.

What a run folder holds, and the promises kept about it (:mod:`began_lite.runfolder`):
``checkpoint.pt`` (the last state) and ``checkpoint.prev.pt`` (the one before), ``best.pt``
on digits (the state whose samples scored best by the evaluator's Fréchet distance, checked at
every ``--sample-every``), ``history.json``/``.csv``, ``config.json``, ``samples/``. A folder
holding a run is refused as a new ``--out`` (``--overwrite`` replaces it); a folder being
trained is refused to any other writer; ``--resume FILE`` saves into FILE's own folder and
never over a newer checkpoint. SIGINT and SIGTERM finish the step, save, and exit.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

from .train_flags import EXAMPLES, add_train_flags, new_run_only

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="train BEGAN or EBGAN, or resume a run", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train BEGAN (or EBGAN) on digits, faces, an image folder or 2-D points, "
                                   "from a profile's settings and the flags given; or resume a run.")
    add_train_flags(t)
    t.set_defaults(run=run, tune_malloc=True)


def _check_bounds(args) -> None:
    """The run flags' ranges (the config checks its own fields)."""
    for name in ("checkpoint_every", "sample_every", "log_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.steps is not None and args.steps < 0:
        raise ValueError(f"steps must be >= 0, got {args.steps}")
    cpus = os.cpu_count() or 1
    if args.threads is not None and not 1 <= args.threads <= cpus:
        raise ValueError(f"threads must be an integer in [1, {cpus}] (this machine's CPU count), got {args.threads}")


def run(args) -> int:
    """`train`, alone or as one of the processes `torchrun` starts (WORLD_SIZE > 1 in the environment)."""
    import torch

    from .. import distributed

    _check_bounds(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    group = distributed.init_from_env(args.device)
    try:
        if group.is_main:
            return _train(args, group)
        args.no_progress = True
        with contextlib.redirect_stderr(io.StringIO()):  # errors still reach main(), outside this block
            return _train(args, group)
    finally:
        distributed.shutdown()


def _train(args, group) -> int:
    from ..checkpoint import resolve_checkpoint
    from ..runfolder import RunLock
    from .train_setup import new_config, profile_notice

    if args.resume:
        given = new_run_only(args)
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ValueError(f"{given[0]}: {flag} cannot be combined with --resume, which continues the run with "
                             f"its own settings; with --resume only --steps, --device, --compile, --data, "
                             f"--allow-data-change and the system flags apply")
        checkpoint = resolve_checkpoint(args.resume)
        folder, config = checkpoint.parent, None
    else:
        config = new_config(args)  # checked before anything is written
        notice = profile_notice(args, config)
        if notice:
            print(notice, file=sys.stderr)
        folder = args.out
    with RunLock(folder) if group.is_main else contextlib.nullcontext():
        trainer = _resume(args, checkpoint, group) if config is None else _start(args, config, group)
        return 0 if trainer is None else _fit(trainer, args)


def _start(args, config, group):
    from ..runfolder import claim
    from ..train import Trainer
    from .train_setup import load_data

    if group.is_main:
        claim(args.out, overwrite=bool(args.overwrite))
    data, fp = load_data(config.extra, args.data, config, progress=_bar(args))
    config = config.replace(extra={**config.extra, "data_fingerprint": fp})
    trainer = Trainer(config, data, run_dir=args.out)
    what = (f"mixture {config.extra['mixture']} ({len(data)} points)" if config.data_dim else
            f"{args.dataset} ({len(data)} images, {config.image_size}px)")
    print(f"training {config.objective} on {what} for {config.steps} steps on {trainer.device}, profile "
          f"{config.profile}; {args.malloc_note}", file=sys.stderr)
    return trainer


def _resume(args, checkpoint, group):
    """The trainer that continues ``checkpoint`` up to the total asked for, or None when it is there."""
    from ..checkpoint import checkpoint_config, load_checkpoint
    from ..runfolder import check_resume_target
    from ..train import Trainer
    from .train_setup import check_same_data, load_data

    state = load_checkpoint(checkpoint)
    config = checkpoint_config(state, checkpoint)
    target, done = (args.steps if args.steps is not None else config.steps), int(state.get("step", 0))
    if done >= target:  # idempotent: the same resume command run twice trains once
        print(f"{checkpoint} is at step {done}, the {target} steps asked for: nothing to do", file=sys.stderr)
        return None
    check_resume_target(checkpoint, state)
    extra = dict(config.extra)
    data, fp = load_data(extra, args.data, config, progress=_bar(args))
    check_same_data(extra.get("data_fingerprint"), fp, allow=bool(args.allow_data_change),
                    where=args.data or extra.get("dataset", "the data"))
    changes = {"steps": target, **({"device": args.device} if args.device else {}),
               **({"compile": args.compile} if args.compile is not None else {})}
    if extra.get("data_fingerprint") != fp:  # allowed above: the run now names the data it goes on with
        where = str(Path(args.data).resolve()) if args.data else None
        changes["extra"] = {**extra, "data_fingerprint": fp, "data": where}
    del state
    trainer = Trainer.from_checkpoint(checkpoint, data, **changes)
    print(f"resuming {checkpoint} at step {trainer.step} (k = {trainer.k:.4f}) up to step {target}; "
          f"{args.malloc_note}", file=sys.stderr)
    return trainer


def _bar(args) -> bool:
    """A progress bar only on a terminal: in a file its carriage-return updates pile up."""
    return not args.no_progress and sys.stderr.isatty()


def _on_sample(trainer, args):
    """What every --sample-every step does: the sample grid, and on digits the score that keeps best.pt."""
    from ..callbacks import KeepBest, write_samples

    keep = None
    if trainer.config.extra.get("dataset") == "digits" and trainer.run_dir is not None:
        from ..chapters.runs import SAMPLE_SEED  # the z every scored set of digit samples is drawn from

        keep = KeepBest(trainer.run_dir, trainer.config.image_size, seed=SAMPLE_SEED)

    def on_sample(tr) -> None:
        write_samples(tr)
        if keep is not None:
            keep(tr)

    return on_sample, keep


def _fit(trainer, args) -> int:
    """Train to the total, with the sample steps, progress and signals; one line says how it ended."""
    from ..callbacks import ProgressLines, StopOnSignal, every

    on_sample, keep = _on_sample(trainer, args)
    target = trainer.config.steps
    callbacks = [every(args.sample_every, on_sample)]
    if not args.no_progress and not _bar(args):
        callbacks.append(ProgressLines(args.log_every, target))
    start = time.perf_counter()
    with StopOnSignal() as stop:  # SIGINT, SIGTERM: finish the step, save, exit 130 or 143
        trainer.train(target, progress=_bar(args), checkpoint_every=args.checkpoint_every,
                      callbacks=[stop, *callbacks])
        if trainer.step % args.sample_every:  # the last step's grid and score (a sample step has them)
            on_sample(trainer)
    best = f"; best.pt Frechet {keep.best:.2f}" if keep is not None and keep.best < float("inf") else ""
    if stop.signal is not None:
        import signal

        where = trainer.last_checkpoint.parent if trainer.last_checkpoint else None
        print(f"interrupted: stopped after step {trainer.step} by {signal.Signals(stop.signal).name}; checkpoint "
              f"{trainer.last_checkpoint}{best}" + (f"; continue with: python -m began_lite train --resume {where}"
                                                     if where else ""), file=sys.stderr)
        return stop.exit_code
    last = {k: trainer.history[k][-1] for k in ("loss_real", "loss_fake", "k", "m_global")} if len(trainer.history) \
        else {}
    print(f"done: step {trainer.step} in {time.perf_counter() - start:.1f} s; "
          + ", ".join(f"{k} {v:.4f}" for k, v in last.items()) + f"; checkpoint {trainer.last_checkpoint}{best}",
          file=sys.stderr)
    return 0
