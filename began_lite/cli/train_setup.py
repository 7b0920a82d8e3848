"""What ``train`` sets up before the first step: a new run's config, the data, and the data's check.

A run's data is tied to it: the checkpoint's config stores :func:`~began_lite.data.fingerprint`
of what it trained on (``config.extra["data_fingerprint"]``), and a resume refuses other data
unless ``--allow-data-change``. A folder's path is the one the user gives, each time: it is
stored for the record, never read back from a checkpoint.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

MIXTURE_POINTS = 100_000  # training points drawn once (seed 0) from the mixture, as PacGAN's 100,000

__all__ = ["new_config", "profile_notice", "load_data", "check_same_data", "MIXTURE_POINTS"]


def new_config(args):
    """The :class:`~began_lite.config.TrainConfig` of a new run: the profile, then the flags given."""
    from ..config import TrainConfig, field_names
    from ..profiles import MIXTURE

    if not args.dataset:
        raise ValueError("dataset: --dataset is required (or --resume PATH)")
    if not args.out:
        raise ValueError("out: --out DIR is required")
    for flag, value, only in (("mixture", args.mixture, "mixture"), ("data", args.data, "folder")):
        if value is not None and args.dataset != only:
            raise ValueError(f"{flag}: --{flag} applies to --dataset {only} only, not {args.dataset}")
    if args.dataset == "mixture":
        for name in ("image_size", "channels", "filters"):
            if getattr(args, name) is not None:
                flag = name.replace("_", "-")
                raise ValueError(f"{flag}: --{flag} does not apply to --dataset mixture (2-D points, MLP networks)")
    overrides = {n: getattr(args, n) for n in field_names(cli=True) if getattr(args, n) is not None}
    if "adam_betas" in overrides:
        overrides["adam_betas"] = tuple(overrides["adam_betas"])
    if args.dataset in ("digits", "faces"):
        if args.channels not in (None, 1):
            raise ValueError(f"channels: --dataset {args.dataset} is grey, so channels must be 1, got {args.channels}")
        overrides["channels"] = 1
    elif args.dataset == "folder":
        overrides["channels"] = args.channels or 3
    extra = {"dataset": args.dataset, "data": str(Path(args.data).resolve()) if args.data else None}
    if args.dataset == "mixture":  # the 2-D settings (profiles.MIXTURE), then the flags given
        overrides = {**MIXTURE, **overrides}
        extra.update(mixture=args.mixture or "ring", points=MIXTURE_POINTS)
    return TrainConfig.for_profile(args.profile, **overrides, extra=extra)


def profile_notice(args, config) -> str | None:
    """One line when the full profile was chosen because a GPU is present (no --profile, no
    $BEGAN_LITE_PROFILE): a much longer run than the same command on a CPU."""
    if args.profile is not None or os.environ.get("BEGAN_LITE_PROFILE") or config.profile != "full":
        return None
    return (f"notice: a GPU is present, so this run takes the full profile ({config.image_size}x{config.image_size}, "
            f"{config.steps} steps); --profile quick trains the small one")


def load_data(extra: dict, data_dir, config, *, progress: bool = False):
    """The training data of a run whose ``config.extra`` is ``extra``, and its fingerprint.

    ``data_dir`` is the folder the user gave (--data); a folder run needs it."""
    from ..data import fingerprint, load_digits, load_faces, load_image_folder
    from ..mixtures import mixture_2d

    dataset = extra.get("dataset", "digits")
    if dataset != "folder" and data_dir is not None:
        raise ValueError(f"data: --data applies to folder runs only; this run trains on {dataset}")
    if dataset == "digits":
        return load_digits(config.image_size), fingerprint("digits")
    if dataset == "faces":
        return load_faces(config.image_size), fingerprint("faces")
    if dataset == "mixture":
        kind, points = extra.get("mixture") or "ring", int(extra.get("points", MIXTURE_POINTS))
        return mixture_2d(kind, points, seed=0), fingerprint("mixture", mixture=kind, points=points, seed=0)
    if data_dir is None:
        stored = f" (it was {extra['data']!r})" if extra.get("data") else ""
        raise ValueError(f"data: this run trains on an image folder{stored}; give it with --data DIR (a path is "
                         f"never taken from a checkpoint)")
    # Decoded once, then read from data_dir/.began_lite_cache/ (keyed by the files' names, sizes, times).
    x = load_image_folder(data_dir, config.image_size, channels=config.channels, progress=progress, cache=True)
    return x, fingerprint("folder", data_dir)


def _describe(fp) -> str:
    if not isinstance(fp, dict):
        return "no fingerprint"
    if fp.get("dataset") == "folder":
        return f"{fp['files']} files, {fp['bytes']} bytes, sha256 {fp['sha256'][:12]}"
    if "sha256" in fp:
        return f"{fp['dataset']}: {fp['n']} images, sha256 {fp['sha256'][:12]}"
    return ", ".join(f"{k} {v}" for k, v in fp.items())


def check_same_data(stored, now: dict, *, allow: bool, where: str) -> None:
    """Refuse (ValueError) data whose fingerprint ``now`` differs from the run's ``stored`` one,
    unless ``allow``, which notes the change on stderr."""
    if stored == now:
        return
    change = f"{_describe(stored)} then; {_describe(now)} now"
    if not allow:
        raise ValueError(f"data: {where} is not the data this run trained on ({change}); resume with "
                         f"--allow-data-change to train on it anyway")
    print(f"note: the data differs from the run's ({change}); training on it (--allow-data-change)", file=sys.stderr)
