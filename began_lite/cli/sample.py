"""``python -m began_lite sample``: G(z) for ``--n`` seeded z from a checkpoint, to a PNG grid or an .npz.

Which checkpoint: ``--checkpoint RUN`` is the run's last (``RUN/checkpoint.pt``); ``--checkpoint
RUN --best``, or ``--checkpoint RUN/best.pt``, the state whose samples scored best by the
evaluator (digit runs keep it); any checkpoint file works (``RUN/checkpoint.prev.pt``). Samples
come from the weight average of G when the run kept one. Readers take no lock: a checkpoint is
only ever replaced whole.
"""
from __future__ import annotations

import io
import os
import sys
from pathlib import Path

MAX_N = {".npz": 100_000, ".png": 4096}  # a grid of more is unreadable; more raw samples, a memory hazard

__all__ = ["add_parser", "add_checkpoint_flags", "checkpoint_path", "draw", "run", "MAX_N"]


def add_checkpoint_flags(p, *, group=None) -> None:
    """``--checkpoint`` and ``--best``, as ``sample`` and ``evaluate`` take them."""
    (group or p).add_argument("--checkpoint", required=group is None, metavar="PATH",
                              help="a run folder (its last checkpoint) or a checkpoint file, such as RUN/best.pt "
                                   "(the best by the evaluator's score, kept on digits) or RUN/checkpoint.prev.pt")
    p.add_argument("--best", action="store_true", help="with a run folder: its best.pt, not its last checkpoint")


def add_parser(sub) -> None:
    s = sub.add_parser("sample", help="draw samples from a trained generator",
                       description="G(z) for --n seeded z, from a run's last checkpoint (--checkpoint RUN), its best "
                                   "by the evaluator's score (--checkpoint RUN --best, or RUN/best.pt) or any "
                                   "checkpoint file; from the weight average of G when the run kept one.")
    add_checkpoint_flags(s)
    s.add_argument("--n", type=int, default=64,
                   help=f"number of samples: 1 to {MAX_N['.npz']} for an .npz, 1 to {MAX_N['.png']} for a .png "
                        f"(default 64)")
    s.add_argument("--out", required=True,
                   help=".png for a grid (a scatter plot for a 2-D run), .npz for raw samples: array 'images', "
                        "(N, C, H, W) float32 in [-1, 1]; for a 2-D run array 'points', (N, 2) float32 (unclamped), "
                        "and 'mixture', the mixture's name")
    s.add_argument("--seed", type=int, default=0, help="seeds z: an integer in [0, 2**63) (default 0)")
    s.add_argument("--scale", type=int,
                   help="for a .png grid: each pixel repeated SCALE times per axis (nearest), 1 to 64 (default: "
                        "the least that shows an image at 48 px or more, 3 for 16 px digits)")
    s.set_defaults(run=run)


def checkpoint_path(args) -> Path:
    """The checkpoint file ``--checkpoint`` (and ``--best``) name."""
    from ..checkpoint import CheckpointError, resolve_checkpoint
    from ..runfolder import BEST_NAME

    if not args.best:
        return resolve_checkpoint(args.checkpoint)
    folder = Path(args.checkpoint)
    if not folder.is_dir():
        raise ValueError(f"best: --best takes a run folder, but {str(folder)!r} is not one")
    if not (folder / BEST_NAME).is_file():
        raise CheckpointError(f"checkpoint: {str(folder)!r} holds no {BEST_NAME} (digit runs keep one, "
                              f"scored at every --sample-every)")
    return folder / BEST_NAME


def draw(path: Path, n: int, seed: int):
    """(config, samples): ``n`` samples of the checkpoint's generator, on the CPU; images unclamped."""
    import torch

    from ..checkpoint import CheckpointError, checkpoint_config, load_checkpoint
    from ..models import build_generator, sample_z

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    state = load_checkpoint(path)
    config = checkpoint_config(state, path)
    G = build_generator(config)
    try:  # the weight average when the run kept one (config.ema > 0), else the generator itself
        G.load_state_dict(state.get("generator_ema") or state["generator"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint: {str(path)!r} holds no generator matching its config "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    G.eval()
    z = sample_z(n, config.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return config, torch.cat([G(c) for c in z.split(256)])


def _check(args, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix not in MAX_N:
        raise ValueError(f"out must end in .png or .npz, got {str(out)!r}")
    if not 1 <= args.n <= MAX_N[suffix]:
        raise ValueError(f"n must be >= 1 and at most {MAX_N[suffix]} for a {suffix}, got {args.n}")
    if args.scale is not None and not 1 <= args.scale <= 64:
        raise ValueError(f"scale must be an integer in [1, 64], got {args.scale}")
    if os.path.isdir(out):  # os.path: a name too long is left to the write, which names it
        raise ValueError(f"out must be a file path, but {str(out)!r} is a directory")
    blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ValueError(f"out: {str(out)!r} cannot be created because {str(blocked)!r} is a file, not a folder")


def _encode(config, samples, args, suffix: str) -> bytes:
    import numpy as np

    from ..callbacks import readable_scale
    from ..plotting import grid_png, scatter_png

    buf = io.BytesIO()
    kind = config.extra.get("mixture") if config.extra.get("mixture") in ("ring", "grid") else None
    if config.data_dim and suffix == ".npz":  # points, as they are: (N, data_dim)
        np.savez_compressed(buf, points=samples.numpy().astype(np.float32),
                            **({"mixture": np.array(kind)} if kind else {}))
    elif config.data_dim:
        buf.write(scatter_png(samples, mixture=kind if config.data_dim == 2 else None,
                              title=f"{config.objective}: {args.n} samples"))
    elif suffix == ".npz":
        np.savez_compressed(buf, images=samples.clamp(-1, 1).numpy().astype(np.float32))
    else:
        scale = args.scale or readable_scale(config.image_size)
        buf.write(grid_png(samples.clamp(-1, 1), nrow=max(1, round(args.n ** 0.5)), scale=scale))
    return buf.getvalue()


def run(args) -> int:
    from ..checkpoint import atomic_write_bytes

    out = Path(args.out)
    _check(args, out)
    path = checkpoint_path(args)
    config, samples = draw(path, args.n, args.seed)
    atomic_write_bytes(out, _encode(config, samples, args, out.suffix.lower()))
    print(f"wrote {args.n} samples of {path} to {out}", file=sys.stderr)
    return 0
