"""The command line: ``python -m began_lite {train,sample,evaluate,experiment,bench} ...``.

``torchrun --nproc_per_node=N -m began_lite train ...`` trains one run on N processes
(:mod:`began_lite.distributed`).

Bad input ends with one line, ``error: ...`` naming the parameter, and exit code 2.

Exit codes: 0 done; 1 training diverged (a loss became NaN or inf: the last good checkpoint
is kept and named); 2 bad input; 130 (the shell's 128 + SIGINT) when Ctrl-C stopped
training: the step in progress was finished and saved, and ``train --resume DIR`` goes on.
"""
from __future__ import annotations

import argparse
import io
import re
import sys
import time
from pathlib import Path

DATASETS = ("digits", "faces", "folder", "mixture")
MIXTURES = ("ring", "grid")
MIXTURE_POINTS = 100_000  # training points drawn once (seed 0) from the mixture, as PacGAN's 100,000


# Options that set up a new run; `train --resume` continues with the checkpoint's own.
NEW_RUN_ONLY = ("dataset", "data", "mixture", "image_size", "channels", "out", "objective", "gamma", "lambda_k",
                "lr", "adam_betas", "eta", "batch_size", "z_dim", "h_dim", "filters", "seed", "profile",
                "tanh_output", "ema", "shift")
INTERRUPTED = 130  # exit code after Ctrl-C (128 + SIGINT, as shells report it)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        # argparse says "invalid int value: 'x'"; say what is accepted instead.
        message = re.sub(r"invalid int value: (.*)$", r"must be an integer, got \1", message)
        message = re.sub(r"invalid float value: (.*)$", r"must be a number, got \1", message)
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m began_lite", description="BEGAN and EBGAN, small and complete.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train BEGAN or EBGAN, or resume a run")
    t.add_argument("--dataset", choices=DATASETS,
                   help="digits (bundled), faces (bundled LFW), folder (--data), mixture (2-D Gaussian mixture "
                        "points with MLP networks; see --mixture)")
    t.add_argument("--data", help="image folder for --dataset folder")
    t.add_argument("--mixture", choices=MIXTURES,
                   help="for --dataset mixture: ring (8 modes, radius 2, std 0.02; the default) or grid "
                        "(25 modes on {-4,-2,0,2,4}^2, std 0.05)")
    t.add_argument("--image-size", type=int, help="power of two in [8, 128] (profile default)")
    t.add_argument("--channels", type=int, help="1 or 3 (default: 1 for digits/faces, 3 for folder)")
    t.add_argument("--steps", type=int, help="the run's total number of steps (with --resume: continue up to this "
                                              "total, default the run's own; a finished run is left as it is)")
    t.add_argument("--out", help="run directory for checkpoint, history, samples")
    t.add_argument("--resume", metavar="PATH", help="continue a run (run directory or checkpoint file)")
    t.add_argument("--objective", choices=("began", "ebgan"))
    t.add_argument("--gamma", type=float)
    t.add_argument("--lambda-k", type=float, dest="lambda_k")
    t.add_argument("--lr", type=float)
    t.add_argument("--adam-betas", type=float, nargs=2, metavar=("BETA1", "BETA2"), dest="adam_betas",
                   help="Adam's two decay rates, each in [0, 1) (profile default; the paper keeps Adam's 0.9 0.999)")
    t.add_argument("--eta", type=int, help="the norm of the pixel-wise loss |v - D(v)|^eta: 1 (the paper's) or 2")
    t.add_argument("--tanh-output", action=argparse.BooleanOptionalAction, dest="tanh_output",
                   help="a tanh on the output of G and of D's decoder (profile default; the paper has none)")
    t.add_argument("--ema", type=float,
                   help="decay in [0, 1) of a moving average of G's weights that `sample` draws from, warmed up "
                        "as min(EMA, (1+t)/(10+t)) at step t (profile default; 0 = off, the paper's)")
    t.add_argument("--shift", type=int,
                   help="D sees every image, real or generated, moved by a random offset of up to SHIFT pixels per "
                        "axis, an integer in [0, image size / 4] (profile default; 0 = off, the paper's)")
    t.add_argument("--batch-size", type=int, dest="batch_size")
    t.add_argument("--z-dim", type=int, dest="z_dim")
    t.add_argument("--h-dim", type=int, dest="h_dim")
    t.add_argument("--filters", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    t.add_argument("--profile", choices=("quick", "full", "paper-small"), help="default: full with a GPU, quick without")
    t.add_argument("--compile", action="store_true", help="torch.compile G and D (a GPU run of many steps; the "
                                                          "first steps take longer)")
    t.add_argument("--checkpoint-every", type=int, default=500, dest="checkpoint_every")
    t.add_argument("--sample-every", type=int, default=500, dest="sample_every")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: one per core; 1 is faster when "
                                                "other programs keep the cores busy)")

    s = sub.add_parser("sample", help="draw samples from a trained generator")
    s.add_argument("--checkpoint", required=True, help="run directory or checkpoint file")
    s.add_argument("--n", type=int, default=64, help="number of samples (>= 1)")
    s.add_argument("--out", required=True,
                   help=".png for a grid (a scatter plot for a 2-D run), .npz for raw samples: array 'images', "
                        "(N, C, H, W) in [-1, 1]; for a 2-D run array 'points', (N, 2) float32 (unclamped), and "
                        "'mixture', the mixture's name")
    s.add_argument("--seed", type=int, default=0)

    e = sub.add_parser("evaluate", help="judge digit samples (.npz) with a classifier trained on the real digits, "
                                        "or 2-D points by modes covered and high-quality share")
    e.add_argument("--samples", required=True, help=".npz written by `sample`")
    e.add_argument("--mixture", choices=MIXTURES, help="for 'points': the mixture to score against "
                                                       "(default: the one stored in the file)")
    e.add_argument("--json", action="store_true", help="print the report as JSON")

    x = sub.add_parser("experiment", help="remake stored experiments of chapters 2-7 (data/results/NAME.json)")
    x.add_argument("names", nargs="+", metavar="NAME",
                   help="'all', or any of: gamma-sweep, memorisation, k-pinned, gain, objectives, ebgan-margins, eta, "
                        "profile-minus-one, architecture, latent-size (digit sweeps: each arm states its settings; "
                        "runs shared by two are trained once), faces, faces-flip (the LFW faces), mixtures (2-D), "
                        "showcase (the quick profile's seed 0: weights and pictures)")
    x.add_argument("--out", required=True, help="folder for NAME.json, e.g. data/results")
    x.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each (default 1)")
    x.add_argument("--no-progress", action="store_true", help="no line per finished run")

    v = sub.add_parser("verdict", help="train, sample and evaluate digits through the command line for several "
                                       "seeds: do all ten classes appear in roughly equal shares?",
                       description="For each seed: train --dataset digits --image-size 16 (the defaults, plus "
                                   "--train-args), sample --n N, evaluate. A seed passes with all ten classes covered "
                                   "and none above --max-share of the samples. Exit 0: every seed passes; 1: not; "
                                   "2: bad input.")
    v.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default: 0 1 2")
    v.add_argument("--out", required=True, help="a new folder for the runs, samples and verdict.json")
    v.add_argument("--n", type=int, default=1000, help="samples drawn per seed (>= 2)")
    v.add_argument("--train-args", dest="train_args", default="",
                   help='more flags for `train`, in one string after an equals sign, e.g. --train-args="--eta 2 --steps 1000" '
                        '(default: none, the command line\'s defaults)')
    v.add_argument("--max-share", type=float, default=0.2, dest="max_share",
                   help="largest share of the samples one class may take for a seed to pass (default 0.2)")

    b = sub.add_parser("bench", help="time training steps against a plain PyTorch step: steps/s, FLOPs, memory")
    _bench_arguments(b)
    return p


def _bench_arguments(b) -> None:
    """The options of `bench` (began_lite.bench.main reads them); here so that --help needs no torch."""
    b.add_argument("--quick", action="store_true",
                   help="the CI form (seconds): 16 px, batch 16, n = 32 filters, 3 timed steps")
    b.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                   help="all (default): the CPU, and the GPU where one is present")
    b.add_argument("--sizes", type=int, nargs="+", help="image sizes (default 16 32 64 128)")
    b.add_argument("--batches", type=int, nargs="+", help="batch sizes (default 16 64)")
    b.add_argument("--variants", nargs="+", default=["ours"],
                   help="our step as it is ('ours') and/or with one setting changed: float32, compile (each timed "
                        "beside the plain step)")
    b.add_argument("--malloc", choices=("both", "tuned", "default"), default="both",
                   help="each row with glibc's malloc tuned (began_lite.allocator) and/or as it comes (default: both, "
                        "each in a process of its own; only 'default' where the C library is not glibc)")
    b.add_argument("--compile", action="store_true",
                   help="add the variant 'compile' (torch.compile; its '1st s' column is the compile time)")
    b.add_argument("--filters", type=int, help="n, the width unit of the networks (default: the paper's 128; 32 with --quick)")
    b.add_argument("--steps", type=int, help="timed steps per implementation (default: about --seconds worth, "
                                              "at least 3)")
    b.add_argument("--seconds", type=float, default=10.0,
                   help="time for the timed steps of the slowest implementation of a row (default 10)")
    b.add_argument("--max-seconds", type=float, default=300.0, dest="max_seconds",
                   help="on a CPU, skip a row whose warm-up and 3 timed steps would take longer (default 300)")
    b.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: PyTorch's choice)")
    b.add_argument("--processes", type=int, nargs="?", const=0,
                   help="instead of the table: quick-profile steps/s of one process with P threads against P "
                        "one-thread processes at once (P: the number given, else the CPU count)")
    b.add_argument("--json", help="also write the results to this file")


def _load_data(dataset: str, data_dir, image_size: int, channels: int | None, progress: bool = False,
               mixture: str | None = None, points: int = MIXTURE_POINTS):
    from . import data as D
    from .mixtures import mixture_2d

    if dataset == "digits":
        return D.load_digits(image_size)
    if dataset == "faces":
        return D.load_faces(image_size)
    if dataset == "mixture":
        return mixture_2d(mixture or "ring", points, seed=0)
    if not data_dir:
        raise ValueError("data: --dataset folder needs --data DIR")
    # Decoded once, then read from data_dir/.began_lite_cache/ (keyed by the files' names, sizes, times).
    return D.load_image_folder(data_dir, image_size, channels=channels or 3, progress=progress, cache=True)


def _train(args) -> int:
    from .callbacks import StopOnCtrlC, every, write_samples
    from .config import TrainConfig
    from .profiles import MIXTURE
    from .train import Trainer

    for name in ("steps", "checkpoint_every", "sample_every"):
        v = getattr(args, name)
        lo = 0 if name == "steps" else 1
        if v is not None and v < lo:
            raise ValueError(f"{name.replace('_', '-')} must be >= {lo}, got {v}")
    if args.resume:
        from .checkpoint import checkpoint_config, load_checkpoint

        given = [n for n in NEW_RUN_ONLY if getattr(args, n, None) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ValueError(f"{given[0]}: {flag} cannot be combined with --resume, which continues the run with its "
                             f"own settings; with --resume only --steps, --device, --compile, "
                             f"--checkpoint-every, --sample-every and --no-progress apply")
        state = load_checkpoint(args.resume)
        config = checkpoint_config(state, args.resume)
        target, done = (args.steps if args.steps is not None else config.steps), int(state.get("step", 0))
        if done >= target:  # idempotent: the same resume command run twice trains once
            print(f"{args.resume} is at step {done}, the {target} steps asked for: nothing to do", file=sys.stderr)
            return 0
        meta = config.extra
        data = _load_data(meta.get("dataset", "digits"), meta.get("data"), config.image_size, config.channels,
                          progress=not args.no_progress, mixture=meta.get("mixture"),
                          points=meta.get("points", MIXTURE_POINTS))
        changes = {"steps": target, **({"device": args.device} if args.device else {}),
                   **({"compile": True} if args.compile else {})}
        trainer = Trainer.from_checkpoint(args.resume, data, **changes)
        steps = target  # Trainer.train takes the total, like --steps
        print(f"resuming {trainer.run_dir} at step {trainer.step} (k = {trainer.k:.4f}) up to step {target}; "
              f"{args.malloc_note}", file=sys.stderr)
    else:
        if not args.dataset:
            raise ValueError("dataset: --dataset is required (or --resume PATH)")
        if not args.out:
            raise ValueError("out: --out DIR is required")
        if args.mixture and args.dataset != "mixture":
            raise ValueError(f"mixture: --mixture applies to --dataset mixture only, not {args.dataset}")
        if args.dataset == "mixture":
            for name in ("image_size", "channels", "filters"):
                if getattr(args, name) is not None:
                    flag = name.replace("_", "-")
                    raise ValueError(f"{flag}: --{flag} does not apply to --dataset mixture (2-D points, MLP networks)")
        overrides = {k: getattr(args, k) for k in ("objective", "gamma", "lambda_k", "lr", "eta", "batch_size", "z_dim",
                                                   "h_dim", "filters", "seed", "device", "steps", "image_size",
                                                   "tanh_output", "ema", "shift")
                     if getattr(args, k) is not None}
        if args.adam_betas is not None:
            overrides["adam_betas"] = tuple(args.adam_betas)
        if args.compile:
            overrides["compile"] = True
        if args.dataset in ("digits", "faces"):
            overrides["channels"] = 1
        elif args.dataset == "folder":
            overrides["channels"] = args.channels or 3
        if args.channels is not None and args.channels != overrides.get("channels", args.channels):
            raise ValueError(f"channels: --dataset {args.dataset} is grey, so channels must be 1, got {args.channels}")
        overrides["extra"] = {"dataset": args.dataset, "data": str(Path(args.data).resolve()) if args.data else None}
        if args.dataset == "mixture":  # the 2-D settings (config.MIXTURE), then the flags given
            overrides = {**MIXTURE, **overrides}
            overrides["extra"].update(mixture=args.mixture or "ring", points=MIXTURE_POINTS)
        config = TrainConfig.for_profile(args.profile, **overrides)
        meta = config.extra
        data = _load_data(args.dataset, args.data, config.image_size, config.channels, progress=not args.no_progress,
                          mixture=meta.get("mixture"))
        trainer = Trainer(config, data, run_dir=args.out)
        steps = config.steps
        what = (f"mixture {meta['mixture']} ({len(data)} points)" if config.data_dim else
                f"{args.dataset} ({len(data)} images, {config.image_size}px)")
        print(f"training {config.objective} on {what} for {steps} steps on {trainer.device}, profile {config.profile}; "
              f"{args.malloc_note}", file=sys.stderr)
    start = time.perf_counter()
    with StopOnCtrlC() as stop:  # Ctrl-C: finish the step, save, exit 130
        trainer.train(steps, progress=not args.no_progress, checkpoint_every=args.checkpoint_every,
                      callbacks=[stop, every(args.sample_every, write_samples)])
    write_samples(trainer)
    took = time.perf_counter() - start
    if trainer.interrupted:
        where = trainer.last_checkpoint.parent if trainer.last_checkpoint else None
        print(f"interrupted: stopped after step {trainer.step}; checkpoint {trainer.last_checkpoint}"
              + (f"; continue with: python -m began_lite train --resume {where}" if where else ""), file=sys.stderr)
        return INTERRUPTED
    last = {k: trainer.history[k][-1] for k in ("loss_real", "loss_fake", "k", "m_global")} if len(trainer.history) else {}
    print(f"done: step {trainer.step} in {took:.1f} s; " + ", ".join(f"{k} {v:.4f}" for k, v in last.items())
          + f"; checkpoint {trainer.last_checkpoint}", file=sys.stderr)
    return 0


def _sample(args) -> int:
    from .sampling import sample_command

    return sample_command(args)


def _evaluate(args) -> int:
    from .sampling import evaluate_command

    return evaluate_command(args)


def _experiment(args) -> int:
    from .chapters.remake import main as experiments_main

    return experiments_main(args)


def _train_on_every_rank(args) -> int:
    """`train`, alone or as one of the processes `torchrun` starts (WORLD_SIZE > 1 in the environment).

    Every rank trains its slice of each batch (began_lite.distributed); rank 0 alone shows
    progress and reports, and writes the run directory.
    """
    import contextlib

    from . import distributed

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    group = distributed.init_from_env(args.device)
    try:
        if group.is_main:
            return _train(args)
        args.no_progress = True
        with contextlib.redirect_stderr(io.StringIO()):  # errors still reach main(), outside this block
            return _train(args)
    finally:
        distributed.shutdown()


def _verdict(args) -> int:
    from .verdict import main as verdict_main

    return verdict_main(args)


def _bench(args) -> int:
    from .perf.bench import main as bench_main

    return bench_main(args)


def main(argv=None) -> int:
    from .checkpoint import CheckpointError
    from .train import TrainingDiverged

    args = _parser().parse_args(argv)
    if args.command in ("train", "experiment", "verdict", "bench"):  # keep freed memory for reuse (allocator.py)
        from .perf.allocator import tune_malloc

        args.malloc_note = tune_malloc()
    try:
        return {"train": _train_on_every_rank, "sample": _sample, "evaluate": _evaluate,
                "experiment": _experiment, "verdict": _verdict, "bench": _bench}[args.command](args)
    except (ValueError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (loading data), or a second Ctrl-C
        print("error: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
