"""The flags of ``train``, made from :class:`~began_lite.config.TrainConfig`'s fields.

Every field marked ``cli`` becomes a flag (``lambda_k`` -> ``--lambda-k``) whose help is the
field's documentation followed by the value it takes in each profile, so there is no list of
names or defaults to keep by hand. The flags are grouped by the fields' groups, after the
essential ones that say what to train on, where, and for how long.
"""
from __future__ import annotations

import argparse
from dataclasses import fields

DATASETS = ("digits", "faces", "folder", "mixture")
MIXTURES = ("ring", "grid")
# Fields a newcomer needs first; the others appear under their own group (config.GROUPS).
ESSENTIAL_FIELDS = ("steps", "seed")
# Flags that may go with --resume (the run keeps its own settings otherwise).
RESUME_FLAGS = ("steps", "device", "compile", "data", "allow_data_change", "checkpoint_every", "sample_every",
                "log_every", "no_progress", "threads")
# Run flags that are not config fields: (group, flags, argparse keywords).
RUN_FLAGS = [
    ("essential", ("--dataset",), dict(choices=DATASETS, help="digits (bundled), faces (bundled LFW), folder "
                                       "(--data), mixture (2-D Gaussian mixture points, MLP networks)")),
    ("essential", ("--data",), dict(metavar="DIR", help="the image folder of --dataset folder; a folder run's "
                                    "--resume needs it again (a path is never taken from a checkpoint)")),
    ("essential", ("--mixture",), dict(choices=MIXTURES, help="for --dataset mixture: ring (8 modes, radius 2, "
                                       "std 0.02; the default) or grid (25 modes on {-4,-2,0,2,4}^2, std 0.05)")),
    ("essential", ("--out",), dict(metavar="DIR", help="a new run folder: checkpoint.pt (and .prev.pt), best.pt "
                                   "(digits), history, samples/")),
    ("essential", ("--resume",), dict(metavar="PATH", help="continue a run: its folder, or a checkpoint file in "
                                      "it (best.pt, checkpoint.prev.pt); saves go into that file's folder")),
    ("essential", ("--overwrite",), dict(action="store_true", default=None,
                                         help="with --out: delete the run that folder holds and start a new one")),
    ("essential", ("--allow-data-change",), dict(action="store_true", dest="allow_data_change",
                                                 help="with --resume: train on data that differs from the "
                                                      "run's (refused otherwise)")),
    ("essential", ("--profile",), dict(choices=("quick", "full", "paper-small"),
                                       help="the settings a run starts from (default: $BEGAN_LITE_PROFILE, else "
                                            "full with a GPU, quick without)")),
    ("model", ("--channels",), dict(type=int, choices=(1, 3), help="for --dataset folder: 1 (grey) or 3 (RGB, "
                                    "the default); digits and faces are grey")),
    ("system", ("--checkpoint-every",), dict(type=int, default=500, dest="checkpoint_every", metavar="N",
                                             help="save every N steps, and at the end (default 500)")),
    ("system", ("--sample-every",), dict(type=int, default=500, dest="sample_every", metavar="N",
                                         help="a sample grid every N steps; on digits also the evaluator's "
                                              "score, which keeps best.pt (default 500)")),
    ("system", ("--log-every",), dict(type=int, default=500, dest="log_every", metavar="N",
                                      help="when stderr is not a terminal: a progress line every N steps "
                                           "(default 500; a terminal gets a progress bar)")),
    ("system", ("--no-progress",), dict(action="store_true", dest="no_progress", help="no progress bar or lines")),
    ("system", ("--threads",), dict(type=int, metavar="N", help="CPU threads for PyTorch, 1 to the CPU count "
                                    "(default: one per core; 1 is faster when other programs keep the cores "
                                    "busy)")),
]
GROUP_TITLES = {
    "essential": "essential: what to train on, where, for how long",
    "objective": "the objective (BEGAN section 3; EBGAN's margin and pulling-away term)",
    "model": "the networks (BEGAN section 3.5, Fig. 1): fixed for the life of a run",
    "optimisation": "optimisation (BEGAN section 4.1)",
    "system": "system: device, precision, saving, progress",
}
EXAMPLES = """examples:
  python -m began_lite train --dataset digits --out runs/d          # the quick profile on a CPU
  python -m began_lite train --resume runs/d --steps 6000           # on to 6000 steps in all
  python -m began_lite train --dataset digits --out runs/g --gamma 0.7 --shift 0 --steps 2000
  python -m began_lite train --dataset folder --data ~/celeba --out runs/c --profile full
  python -m began_lite train --resume runs/c --data ~/celeba        # a folder run names its data again
  torchrun --standalone --nproc_per_node=2 -m began_lite train --dataset digits --out runs/d2
Values in brackets are each profile's; a flag given wins over the profile."""


def _shown(v) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (tuple, list)):
        return " ".join(_shown(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def profile_values(name: str) -> str:
    """``[quick 16, full 64, paper-small 16; mixture 2]``: the field's value in each profile."""
    from ..config import TrainConfig
    from ..profiles import MIXTURE, PROFILES

    values = {p: _shown(getattr(TrainConfig.for_profile(p), name)) for p in PROFILES}
    text = (f"every profile {values['quick']}" if len(set(values.values())) == 1
            else ", ".join(f"{p} {v}" for p, v in values.items()))
    if name in MIXTURE:
        text += f"; --dataset mixture {_shown(MIXTURE[name])}"
    return f"[{text}]"


def _field_flag(f) -> tuple[str, dict]:
    """The flag of one config field and its argparse keywords (the type from the field's default)."""
    from ..config import DTYPES, OBJECTIVES, default

    value, name = default(f.name), f.name
    kw: dict = {"dest": name, "default": None,
                "help": f"{f.metadata['doc']} {profile_values(name)}".replace("%", "%%")}
    if isinstance(value, bool):
        kw["action"] = argparse.BooleanOptionalAction
    elif isinstance(value, tuple):
        kw.update(type=float, nargs=len(value), metavar=("BETA1", "BETA2") if name == "adam_betas" else None)
    else:
        kw.update(type=type(value), metavar=name.upper())
        choices = {"objective": OBJECTIVES, "dtype": DTYPES}.get(name)
        if choices:
            kw.update(choices=choices, metavar=None)
    return "--" + name.replace("_", "-"), kw


def add_train_flags(t: argparse.ArgumentParser) -> None:
    """Every flag of ``train``: the run flags and one per config field marked ``cli``, in groups."""
    from ..config import GROUPS, TrainConfig

    groups = {g: t.add_argument_group(GROUP_TITLES[g]) for g in ("essential", *GROUPS)}
    for group, flags, kw in RUN_FLAGS:
        if group == "essential":  # first: what a newcomer needs
            groups[group].add_argument(*flags, **kw)
    for f in fields(TrainConfig):
        if f.metadata["cli"]:
            flag, kw = _field_flag(f)
            groups["essential" if f.name in ESSENTIAL_FIELDS else f.metadata["group"]].add_argument(flag, **kw)
    for group, flags, kw in RUN_FLAGS:
        if group != "essential":
            groups[group].add_argument(*flags, **kw)


def new_run_only(args) -> list[str]:
    """The flags given that set up a new run (refused with --resume, which keeps the run's own), by name."""
    from ..config import field_names

    names = [*field_names(cli=True), "dataset", "mixture", "channels", "out", "overwrite", "profile"]
    return [n for n in names if n not in RESUME_FLAGS and getattr(args, n, None) is not None]
