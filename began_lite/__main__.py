"""The command line: ``python -m began_lite {train,sample,evaluate} ...``.

Bad input ends with one line, ``error: ...`` naming the parameter, and exit code 2.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

DATASETS = ("digits", "faces", "folder", "mixture")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m began_lite", description="BEGAN and EBGAN, small and complete.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train BEGAN or EBGAN, or resume a run")
    t.add_argument("--dataset", choices=DATASETS, help="digits (bundled), faces (bundled LFW), folder (--data), mixture (2-D ring)")
    t.add_argument("--data", help="image folder for --dataset folder")
    t.add_argument("--image-size", type=int, help="power of two in [8, 128] (profile default)")
    t.add_argument("--channels", type=int, help="1 or 3 (default: 1 for digits/faces, 3 for folder)")
    t.add_argument("--steps", type=int, help="steps to train (with --resume: steps to add)")
    t.add_argument("--out", help="run directory for checkpoint, history, samples")
    t.add_argument("--resume", metavar="PATH", help="continue a run (run directory or checkpoint file)")
    t.add_argument("--objective", choices=("began", "ebgan"))
    t.add_argument("--gamma", type=float)
    t.add_argument("--lambda-k", type=float, dest="lambda_k")
    t.add_argument("--lr", type=float)
    t.add_argument("--batch-size", type=int, dest="batch_size")
    t.add_argument("--z-dim", type=int, dest="z_dim")
    t.add_argument("--h-dim", type=int, dest="h_dim")
    t.add_argument("--filters", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    t.add_argument("--profile", choices=("quick", "full"), help="default: full with a GPU, quick without")
    t.add_argument("--checkpoint-every", type=int, default=500, dest="checkpoint_every")
    t.add_argument("--sample-every", type=int, default=500, dest="sample_every")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="draw samples from a trained generator")
    s.add_argument("--checkpoint", required=True, help="run directory or checkpoint file")
    s.add_argument("--n", type=int, default=64, help="number of samples (>= 1)")
    s.add_argument("--out", required=True, help=".png for a grid, .npz for raw images (array 'images', (N, C, H, W) in [-1, 1])")
    s.add_argument("--seed", type=int, default=0)

    e = sub.add_parser("evaluate", help="judge digit samples (.npz) with a classifier trained on the real digits")
    e.add_argument("--samples", required=True, help=".npz written by `sample`")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _load_data(dataset: str, data_dir, image_size: int, channels: int | None, progress: bool = False):
    from . import data as D

    if dataset == "digits":
        return D.load_digits(image_size)
    if dataset == "faces":
        return D.load_faces(image_size)
    if dataset == "mixture":
        return D.mixture_2d("ring", 20_000)
    if not data_dir:
        raise ValueError("data: --dataset folder needs --data DIR")
    return D.load_image_folder(data_dir, image_size, channels=channels or 3, progress=progress)


def _train(args) -> int:
    from .config import TrainConfig
    from .train import Trainer

    for name in ("steps", "checkpoint_every", "sample_every"):
        v = getattr(args, name)
        lo = 0 if name == "steps" else 1
        if v is not None and v < lo:
            raise ValueError(f"{name.replace('_', '-')} must be >= {lo}, got {v}")
    if args.resume:
        from .checkpoint import load_checkpoint

        state = load_checkpoint(args.resume)
        config = TrainConfig.from_dict(state["config"])
        meta = config.extra
        data = _load_data(meta.get("dataset", "digits"), meta.get("data"), config.image_size, config.channels,
                          progress=not args.no_progress)
        changes = {"device": args.device} if args.device else {}
        trainer = Trainer.from_checkpoint(args.resume, data, **changes)
        steps = args.steps if args.steps is not None else max(0, config.steps - trainer.step)
        print(f"resuming {trainer.run_dir} at step {trainer.step} (k = {trainer.k:.4f}) for {steps} steps", file=sys.stderr)
    else:
        if not args.dataset:
            raise ValueError("dataset: --dataset is required (or --resume PATH)")
        if not args.out:
            raise ValueError("out: --out DIR is required")
        overrides = {k: getattr(args, k) for k in ("objective", "gamma", "lambda_k", "lr", "batch_size", "z_dim",
                                                   "h_dim", "filters", "seed", "device", "steps", "image_size")
                     if getattr(args, k) is not None}
        if args.dataset in ("digits", "faces"):
            overrides["channels"] = 1
        elif args.dataset == "folder":
            overrides["channels"] = args.channels or 3
        if args.channels is not None and args.channels != overrides.get("channels", args.channels):
            raise ValueError(f"channels: --dataset {args.dataset} is grey, so channels must be 1, got {args.channels}")
        overrides["extra"] = {"dataset": args.dataset, "data": str(Path(args.data).resolve()) if args.data else None}
        config = TrainConfig.for_profile(args.profile, **overrides)
        data = _load_data(args.dataset, args.data, config.image_size, config.channels, progress=not args.no_progress)
        trainer = Trainer(config, data, run_dir=args.out)
        steps = config.steps
        print(f"training {config.objective} on {args.dataset} ({len(data)} images, {config.image_size}px) "
              f"for {steps} steps on {trainer.device}, profile {config.profile}", file=sys.stderr)
    start = time.perf_counter()
    trainer.train(steps, progress=not args.no_progress, checkpoint_every=args.checkpoint_every,
                  sample_every=args.sample_every)
    took = time.perf_counter() - start
    last = {k: trainer.history[k][-1] for k in ("loss_real", "loss_fake", "k", "m_global")} if len(trainer.history) else {}
    print(f"done: step {trainer.step} in {took:.1f} s; " + ", ".join(f"{k} {v:.4f}" for k, v in last.items())
          + f"; checkpoint {trainer.last_checkpoint}", file=sys.stderr)
    return 0


def _sample(args) -> int:
    import numpy as np
    import torch

    from .checkpoint import atomic_write_bytes, load_checkpoint
    from .config import TrainConfig
    from .models import Generator, sample_z

    if args.n < 1:
        raise ValueError(f"n must be >= 1, got {args.n}")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise ValueError(f"out must end in .png or .npz, got {str(out)!r}")
    if out.is_dir():
        raise ValueError(f"out must be a file path, but {str(out)!r} is a directory")
    state = load_checkpoint(args.checkpoint)
    config = TrainConfig.from_dict(state["config"])
    G = Generator(config)
    # The weight average when the run kept one (config.ema > 0), else the generator itself.
    G.load_state_dict(state.get("generator_ema") or state["generator"])
    G.eval()
    z = sample_z(args.n, config.z_dim, generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        images = torch.cat([G(c) for c in z.split(256)]).clamp(-1, 1)
    buf = io.BytesIO()
    if out.suffix.lower() == ".npz":
        np.savez_compressed(buf, images=images.numpy().astype(np.float32))
    else:
        from PIL import Image

        from .plotting import image_grid

        grid = image_grid(images, nrow=max(1, int(round(args.n ** 0.5))))
        Image.fromarray((grid * 255).round().astype(np.uint8)).save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {args.n} samples to {out}", file=sys.stderr)
    return 0


def _evaluate(args) -> int:
    import numpy as np
    import torch

    from .metrics import evaluate_digits, train_digit_classifier

    path = Path(args.samples)
    if not path.is_file():
        raise ValueError(f"samples: {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            images = torch.from_numpy(np.asarray(f["images"], dtype=np.float32))
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"samples: {str(path)!r} is not an .npz with an 'images' array ({err})") from None
    classifier, acc = train_digit_classifier()
    report = evaluate_digits(images, classifier)
    report["classifier_held_out_accuracy"] = acc
    if args.json:
        print(json.dumps(report))
    else:
        share = [round(c / sum(report["counts"]), 3) for c in report["counts"]]
        print(f"classifier held-out accuracy {acc:.3f}\nFrechet distance to real digits {report['frechet']:.2f}\n"
              f"class shares {share}\nclasses covered {report['classes_covered']}/10, confident share "
              f"{report['confident_share']:.2f}, KL from uniform {report['kl_from_uniform']:.3f}")
    return 0


def main(argv=None) -> int:
    from .checkpoint import CheckpointError
    from .train import TrainingDiverged

    args = _parser().parse_args(argv)
    try:
        return {"train": _train, "sample": _sample, "evaluate": _evaluate}[args.command](args)
    except (ValueError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
