"""The `sample` and `evaluate` commands: draw from a trained generator's checkpoint, and judge what it drew.

Digits are judged by :func:`~began_lite.evaluate.evaluate_digits` (a classifier trained on
the real digits: classes covered, their balance, the Frechet distance); 2-D points by
:func:`~began_lite.evaluate.mixture_quality`. Both print; the library functions they call do not.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

MIXTURES = ("ring", "grid")

__all__ = ["sample_command", "evaluate_command"]


def sample_command(args) -> int:
    """`python -m began_lite sample`: G(z) for --n seeded z, to a PNG grid or an .npz."""
    import numpy as np
    import torch

    from .checkpoint import CheckpointError, atomic_write_bytes, checkpoint_config, load_checkpoint
    from .models import build_generator, sample_z

    if args.n < 1:
        raise ValueError(f"n must be >= 1, got {args.n}")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npz"):
        raise ValueError(f"out must end in .png or .npz, got {str(out)!r}")
    if out.is_dir():
        raise ValueError(f"out must be a file path, but {str(out)!r} is a directory")
    blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise ValueError(f"out: {str(out)!r} cannot be created because {str(blocked)!r} is a file, not a folder")
    state = load_checkpoint(args.checkpoint)
    config = checkpoint_config(state, args.checkpoint)
    G = build_generator(config)
    # The weight average when the run kept one (config.ema > 0), else the generator itself.
    try:
        G.load_state_dict(state.get("generator_ema") or state["generator"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint: {args.checkpoint!r} holds no generator matching its config "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    G.eval()
    z = sample_z(args.n, config.z_dim, generator=torch.Generator().manual_seed(args.seed))
    with torch.no_grad():
        images = torch.cat([G(c) for c in z.split(256)])
    buf = io.BytesIO()
    if config.data_dim:  # points, as they are: (N, data_dim)
        from .plotting import scatter_png

        kind = config.extra.get("mixture") if config.extra.get("mixture") in MIXTURES else None
        if out.suffix.lower() == ".npz":
            arrays = {"points": images.numpy().astype(np.float32)}
            if kind is not None:
                arrays["mixture"] = np.array(kind)
            np.savez_compressed(buf, **arrays)
        else:
            buf.write(scatter_png(images, mixture=kind if config.data_dim == 2 else None,
                                  title=f"{config.objective}: {args.n} samples"))
    elif out.suffix.lower() == ".npz":
        np.savez_compressed(buf, images=images.clamp(-1, 1).numpy().astype(np.float32))
    else:
        from PIL import Image

        from .plotting import image_grid

        grid = image_grid(images.clamp(-1, 1), nrow=max(1, int(round(args.n ** 0.5))))
        Image.fromarray((grid * 255).round().astype(np.uint8)).save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {args.n} samples to {out}", file=sys.stderr)
    return 0


def evaluate_command(args) -> int:
    """`python -m began_lite evaluate`: digits by a classifier trained on the real ones, 2-D points by modes."""
    import numpy as np
    import torch

    from .classifier import load_digit_classifier
    from .evaluate import evaluate_digits

    path = Path(args.samples)
    if not path.exists():
        raise ValueError(f"samples: {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"samples: {str(path)!r} is not a file (an .npz written by `sample` is expected)")
    points = None
    import zipfile

    if not zipfile.is_zipfile(path):  # an .npz is a zip archive; np.load would take anything else for a pickle
        raise ValueError(f"samples: {str(path)!r} is not an .npz (the zip archive that `sample` writes)")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "points" in f.files:  # a 2-D run
                points = np.asarray(f["points"], dtype=np.float64)
                stored_kind = str(f["mixture"]) if "mixture" in f.files else None
            else:
                images = torch.from_numpy(np.asarray(f["images"], dtype=np.float32))
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"samples: {str(path)!r} is not an .npz with an 'images' or 'points' array ({err})") from None
    if points is not None:
        return _evaluate_points(args, points, stored_kind)
    classifier, acc = load_digit_classifier()
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


def _evaluate_points(args, points, stored_kind) -> int:
    """Modes covered and high-quality share (metrics.mixture_quality) of a 2-D run's samples."""
    from .evaluate import mixture_quality

    kind = args.mixture or stored_kind
    if kind not in MIXTURES:
        raise ValueError(f"mixture: the file names no mixture ({stored_kind!r}); give --mixture ring or grid")
    try:
        report = mixture_quality(points, kind)._asdict()
    except ValueError as err:
        raise ValueError(f"samples: {err}") from None
    report["mixture"] = kind
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{kind}: {report['modes_covered']}/{report['n_modes']} modes covered, high-quality share "
              f"{report['high_quality_share']:.3f} (within 3 std of the nearest mode; {len(points)} samples)\n"
              f"high-quality samples per mode {report['counts']}")
    return 0
