"""``python -m began_lite evaluate``: judge samples, from an .npz that ``sample`` wrote or from a checkpoint.

Digits are judged by a classifier trained on the real digits (:mod:`began_lite.evaluate`): the
Fréchet distance of Gaussian fits in its feature space (lower is better), the classes drawn and
their balance. A class is *covered* when at least 2% of the confident samples (those the
classifier gives p >= 0.9) fall in it. Beside the distance stand two references: two disjoint
halves of the real digits, one against the other (computed here), and the median of the quick
profile's stored verdict (``data/results/verdicts.json``, held-out seeds 5-9, when present). 2-D points are
judged by the modes they cover and the share of high-quality samples.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .sample import add_checkpoint_flags, checkpoint_path, draw

MAX_SAMPLES, MAX_VALUES = 100_000, 2**27  # what an .npz may declare before it is loaded (0.5 GB of float32)
DESCRIPTION = ("Digits are judged by a classifier trained on the real digits: the Frechet distance of Gaussian "
               "fits in its feature space (lower is better), the classes drawn and their balance. A class is "
               "covered when at least 2% of the confident samples (those the classifier gives p >= 0.9) fall in "
               "it. Beside the distance stand two references: two disjoint halves of the real digits, one against "
               "the other (computed here), and the median of the quick profile's stored verdict "
               "(data/results/verdicts.json, held-out seeds 5-9, when present). 2-D points are judged by the modes they cover "
               "and the share of high-quality samples.")

__all__ = ["add_parser", "run", "read_samples", "references"]


def add_parser(sub) -> None:
    e = sub.add_parser("evaluate", help="judge digit samples with a classifier trained on the real digits, or "
                                        "2-D points by modes covered and high-quality share",
                       description=DESCRIPTION)
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--samples", help=".npz written by `sample`: 'images' (N, 1, S, S) float in [-1, 1], "
                                          "or 'points' (N, 2)")
    add_checkpoint_flags(e, group=source)
    e.add_argument("--n", type=int, default=1000, help=f"with --checkpoint: samples drawn, 2 to {MAX_SAMPLES} "
                                                      f"(default 1000, as the verdict)")
    e.add_argument("--seed", type=int, default=0, help="with --checkpoint: seeds z (default 0, as `sample`)")
    e.add_argument("--mixture", choices=("ring", "grid"), help="for points: the mixture to score against "
                                                               "(default: the one the file or run names)")
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.set_defaults(run=run)


def _header(z: zipfile.ZipFile, member: str):
    """(shape, dtype) of one array of an .npz, from its header alone."""
    import numpy as np

    with z.open(member) as f:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read:
            raise ValueError(f"array format {version} is not one numpy writes")
        shape, _, dtype = read[version](f)
    return shape, dtype


def _check_header(name: str, shape, dtype) -> None:
    import math

    kinds = "f" if name == "images" else "fiu"
    if dtype.kind not in kinds:
        raise ValueError(f"samples: {name!r} must hold floats {'in [-1, 1] ' if name == 'images' else ''}"
                         f"(float32, as `sample` writes), got {dtype}")
    count = math.prod(shape)
    if (shape[0] if shape else 0) > MAX_SAMPLES or count > MAX_VALUES:
        raise ValueError(f"samples: {name!r} declares shape {tuple(shape)}: more than {MAX_SAMPLES} samples or "
                         f"{MAX_VALUES} values, refused before loading")


def read_samples(path) -> tuple[str, object, str | None]:
    """``("images", tensor, None)`` or ``("points", array, mixture)`` from an .npz, its headers checked first."""
    import numpy as np
    import torch

    path = Path(path)
    if not path.exists():
        raise ValueError(f"samples: {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"samples: {str(path)!r} is not a file (an .npz written by `sample` is expected)")
    if not zipfile.is_zipfile(path):  # an .npz is a zip archive; np.load would take anything else for a pickle
        raise ValueError(f"samples: {str(path)!r} is not an .npz (the zip archive that `sample` writes)")
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in ("points", "images") if f"{n}.npy" in z.namelist()]
            if not names:
                raise KeyError("no array 'images' or 'points'")
            _check_header(names[0], *_header(z, f"{names[0]}.npy"))
        with np.load(path, allow_pickle=False) as f:
            array = np.asarray(f[names[0]])
            kind = str(f["mixture"]) if "mixture" in f.files else None
    except (OSError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"samples: {str(path)!r} is not an .npz with an 'images' or 'points' array ({err})") from None
    if names[0] == "points":
        return "points", array.astype(np.float64), kind
    if np.isfinite(array).all() and array.size and not -1 <= array.min() <= array.max() <= 1:
        raise ValueError(f"samples: images must lie in [-1, 1] (as `sample` writes them), got values in "
                         f"[{array.min():g}, {array.max():g}]")
    return "images", torch.from_numpy(array.astype(np.float32)), None


def references(image_size: int, classifier) -> dict:
    """What the Fréchet distance means: two disjoint halves of the real digits, one against the other
    (seeded split, at ``image_size``), and the quick profile's stored verdict when the record is there."""
    import statistics

    import torch

    from ..data import load_digits
    from ..evaluate import digit_features, frechet_distance

    real = load_digits(image_size)
    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    a, b = real[perm[: len(real) // 2]], real[perm[len(real) // 2:]]
    ref = {"real_halves_frechet": frechet_distance(digit_features(classifier, a), digit_features(classifier, b)),
           "real_halves_sizes": [len(a), len(b)]}
    try:
        from ..chapters.records import stored_result

        arm = "defaults, seeds 5-9"
        scores = [float(r["report"]["frechet"]) for r in stored_result("verdicts")["arms"][arm]["result"]["runs"]]
        ref["quick_profile_verdict"] = {"arm": arm, "seeds": len(scores), "image_size": 16,
                                        "median_frechet": statistics.median(scores),
                                        "range": [min(scores), max(scores)]}
    except (OSError, KeyError, TypeError, ValueError, statistics.StatisticsError):  # no record here: omitted
        pass
    return ref


def _print_digits(report: dict) -> None:
    from ..evaluate import COVERAGE_MIN_SHARE, COVERAGE_THRESHOLD

    ref = report["reference"]
    share = [round(c / sum(report["counts"]), 3) for c in report["counts"]]
    verdict = ref.get("quick_profile_verdict")
    stored = (f"; the quick profile's stored verdict ({verdict['seeds']} seeds, 16 px): median "
              f"{verdict['median_frechet']:.2f}, range {verdict['range'][0]:.2f}-{verdict['range'][1]:.2f}"
              if verdict else "")
    print(f"classifier held-out accuracy {report['classifier_held_out_accuracy']:.3f}\n"
          f"Frechet distance to real digits {report['frechet']:.2f} (lower is better; two disjoint halves of the "
          f"real digits, {ref['real_halves_sizes'][0]} and {ref['real_halves_sizes'][1]}, score "
          f"{ref['real_halves_frechet']:.2f} against each other{stored})\n"
          f"class shares {share}\n"
          f"classes covered {report['classes_covered']}/10: a class is covered when at least "
          f"{COVERAGE_MIN_SHARE:.0%} of the confident samples (classifier p >= {COVERAGE_THRESHOLD}; "
          f"{report['confident_share']:.0%} of these samples) fall in it\n"
          f"largest share {report['max_share']:.3f}, KL from uniform {report['kl_from_uniform']:.3f}")


def _evaluate_points(args, points, stored_kind) -> int:
    """Modes covered and high-quality share (evaluate.mixture_quality) of a 2-D run's samples."""
    from ..evaluate import mixture_quality

    kind = args.mixture or stored_kind
    if kind not in ("ring", "grid"):
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


def _from_checkpoint(args) -> tuple[str, object, str | None]:
    if not 2 <= args.n <= MAX_SAMPLES:
        raise ValueError(f"n must be >= 2 and at most {MAX_SAMPLES}, got {args.n}")
    config, samples = draw(checkpoint_path(args), args.n, args.seed)
    if config.data_dim:
        return "points", samples.double().numpy(), config.extra.get("mixture")
    return "images", samples.clamp(-1, 1), None


def run(args) -> int:
    from ..classifier import load_digit_classifier
    from ..evaluate import evaluate_digits

    kind, samples, stored = _from_checkpoint(args) if args.checkpoint else read_samples(args.samples)
    if kind == "points":
        return _evaluate_points(args, samples, stored)
    classifier, acc = load_digit_classifier()
    report = evaluate_digits(samples, classifier)
    report.update(classifier_held_out_accuracy=acc, reference=references(samples.shape[-1], classifier))
    if args.json:
        print(json.dumps(report))
    else:
        _print_digits(report)
    return 0
