"""Configuration: one dataclass, :class:`TrainConfig`, whose defaults are the paper's.

Every field carries its documentation (the command line's help is made from it), the group it
belongs to, and whether it shapes the networks or the objective (such a field is fixed for the
life of a run: a checkpoint's weights fit only its own). The section of Berthelot, Schumm &
Metz (2017, arXiv:1703.10717) is cited where the paper gives the value. ``config.to_dict()``
goes into every checkpoint and log. The profiles (:mod:`began_lite.profiles`) pick sizes for
the hardware at hand.
"""
from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from .profiles import BY_NAME, PROFILES, resolve_profile

__all__ = ["TrainConfig", "OBJECTIVES", "DTYPES", "GROUPS"]

OBJECTIVES = ("began", "ebgan")
DTYPES = ("auto", "float32", "bfloat16")
GROUPS = ("objective", "model", "optimisation", "system")


def param(default, doc: str, *, group: str, fixed: bool = False, cli: bool = True):
    """A TrainConfig field: its default, its documentation, its group; ``fixed``: shapes the networks
    or the objective, so it cannot change on resume; ``cli``: a flag of ``train``."""
    meta = {"doc": doc, "group": group, "fixed": fixed, "cli": cli}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a BEGAN or EBGAN run needs. Defaults are the paper's (section cited).

    Build one with ``TrainConfig(...)`` or :meth:`for_profile`; invalid values raise
    ``ValueError`` naming the field and the accepted range.
    """

    # -- the objective
    objective: str = param("began", "'began' (BEGAN §3.3-3.4) or 'ebgan' (Zhao et al. 2017 §2.2)",
                           group="objective", fixed=True)
    gamma: float = param(0.5, "diversity ratio γ = E[L(G(z))] / E[L(x)] the controller holds (BEGAN §3.4; "
                              "the paper shows 0.3, 0.5, 0.7)", group="objective")
    lambda_k: float = param(0.001, "gain λ_k of the k_t update (BEGAN §3.4)", group="objective")
    k0: float = param(0.0, "k_0, the initial weight of L(G(z)) in L_D (BEGAN §3.4)", group="objective", cli=False)
    eta: int = param(1, "η, the norm of the pixel loss L(v) = |v - D(v)|^η (BEGAN §3.1; the paper trains with 1)",
                     group="objective")
    margin: float = param(1.0, "m, EBGAN's hinge margin on L(G(z)) (EBGAN §2.2); not used by BEGAN", group="objective")
    pt_weight: float = param(0.1, "weight of EBGAN's pulling-away term (EBGAN §2.4 uses 0.1)", group="objective")

    # -- the networks (BEGAN §3.5, Fig. 1)
    image_size: int = param(64, "side of the square images, a power of two in [8, 128] (BEGAN §4.1: 32 to 256)",
                            group="model", fixed=True)
    channels: int = param(3, "1 (grey) or 3 (RGB, the paper's CelebA)", group="model", fixed=True, cli=False)
    filters: int = param(128, "n, the width unit of Fig. 1 (scale i has i*n filters; we found no n in the paper)",
                         group="model", fixed=True)
    repeat: int = param(2, "3x3 convolutions per scale (Fig. 1 draws two)", group="model", fixed=True, cli=False)
    z_dim: int = param(64, "N_z, the size of z (BEGAN §4.1: 64)", group="model", fixed=True)
    h_dim: int = param(64, "N_h, the autoencoder's bottleneck (BEGAN §4.1: 64)", group="model", fixed=True)
    skip: bool = param(False, "skip connections: the first 8x8 tensor upsampled into every scale (BEGAN §3.5)",
                       group="model", fixed=True)
    vanishing_residual: bool = param(False, "vanishing residuals in early training (BEGAN §3.5)", group="model",
                                     fixed=True, cli=False)
    vanishing_steps: int = param(16_000, "steps over which the residual carry falls from 1 to 0 (our choice)",
                                 group="model", cli=False)
    tanh_output: bool = param(False, "a tanh on both decoders' outputs (a deviation: the paper's last convolution "
                                     "has no activation)", group="model", fixed=True)
    data_dim: int = param(0, "0 = images; d >= 1 = points (N, d) with MLP networks (chapter 7's mixtures)",
                          group="model", fixed=True, cli=False)
    mlp_hidden: int = param(128, "width of the MLPs' hidden layers when data_dim >= 1 (our choice)", group="model",
                            fixed=True, cli=False)

    # -- optimisation (BEGAN §4.1)
    lr: float = param(1e-4, "Adam's learning rate (the paper: 5e-5 to 1e-4)", group="optimisation")
    adam_betas: tuple[float, float] = param((0.9, 0.999), "Adam's beta1 and beta2 (the paper keeps Adam's defaults)",
                                            group="optimisation")
    lr_decay: float = param(0.5, "multiply lr by this when M_global stalls (BEGAN §4.1: halving); 1 = constant",
                            group="optimisation", cli=False)
    lr_patience: int = param(2000, "steps per window of M_global for the halving (not in the paper)",
                             group="optimisation", cli=False)
    lr_min: float = param(1e-6, "floor of the halved learning rate (not in the paper)", group="optimisation",
                          cli=False)
    batch_size: int = param(16, "images per step (BEGAN §4.1: 16)", group="optimisation")
    shift: int = param(0, "D sees every image, real and generated, moved by a random offset of up to this many "
                          "pixels per axis, so its losses compare T#p_data with T#p_G (a deviation when > 0: "
                          "began_lite.augment); 0 = the paper's", group="optimisation")
    ema: float = param(0.0, "decay of a moving average of G's weights used for samples (a deviation when > 0); "
                            "0 = off, the paper's", group="optimisation", fixed=True)
    steps: int = param(100_000, "total updates of G and D (the paper trains for 100k and more)",
                       group="optimisation")

    # -- the run
    seed: int = param(0, "seeds the networks, the batches, z and T", group="system")
    device: str = param("auto", "'auto' (cuda, then mps, then cpu), 'cpu', 'cuda[:i]' or 'mps'", group="system")
    dtype: str = param("auto", "'auto' (bfloat16 autocast on CUDA when supported, else float32), 'float32' or "
                               "'bfloat16'", group="system")
    compile: bool = param(False, "torch.compile G and D (the first steps take longer; changes no maths)",
                          group="system")
    profile: str = param("full", "the profile the values came from (for the record)", group="system", cli=False)
    extra: dict = param({}, "free-form notes stored with checkpoints (plain values only)", group="system", cli=False)

    def __post_init__(self) -> None:
        self.validate()
        # NumPy numbers (a sweep over np.linspace) become Python ones: torch's seeding wants an
        # int, and a checkpoint must hold plain data to load with weights_only=True.
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (np.generic, tuple, dict)):
                object.__setattr__(self, f.name, _to_python(v))

    def validate(self) -> None:
        """Raise ValueError naming the first field out of range (:data:`_RULES` holds the ranges)."""
        for name, kind, ok, rng in _RULES:
            v = getattr(self, name)
            if not _is(kind, v):
                what = {"number": f"a finite number {rng}", "integer": "an integer", "bool": "True or False"}[kind]
                raise ValueError(f"{name} must be {what}, got {v!r}")
            if not ok(self, v):
                raise ValueError(f"{name} must be {rng(self) if callable(rng) else rng}, got {v!r}")

    # -- construction helpers ---------------------------------------------------------------
    @classmethod
    def for_profile(cls, profile: str | None = None, **overrides: Any) -> "TrainConfig":
        """The profile's settings (:mod:`began_lite.profiles`), then ``overrides``."""
        name = resolve_profile(profile)
        unknown = sorted(set(overrides) - set(field_names()))
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; the fields are {sorted(field_names())}")
        base = dict(BY_NAME[name])
        if "shift" not in overrides and isinstance(overrides.get("image_size"), int):  # at most a quarter of the image
            base["shift"] = min(base.get("shift", 0), overrides["image_size"] // 4)
        return cls(**{**base, **overrides, "profile": name})

    def replace(self, **changes: Any) -> "TrainConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain Python values only (NumPy scalars such as ``np.float64(0.5)`` become floats),
        so that a checkpoint holding this dict loads with ``weights_only=True``."""
        d = _to_python(asdict(self))
        d["adam_betas"] = list(d["adam_betas"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        if not isinstance(d, dict):
            raise ValueError(f"config must be a dict of fields, got {type(d).__name__}")
        unknown = sorted(set(d) - set(field_names()))
        if unknown:
            raise ValueError(f"config has unknown fields {unknown}")
        return cls(**{**d, **({"adam_betas": tuple(d["adam_betas"])} if "adam_betas" in d else {})})


def field_names(*, fixed: bool | None = None, cli: bool | None = None) -> list[str]:
    """TrainConfig's field names, optionally only those that are (or are not) fixed on resume or CLI flags."""
    return [f.name for f in fields(TrainConfig)
            if (fixed is None or f.metadata["fixed"] == fixed) and (cli is None or f.metadata["cli"] == cli)]


def default(name: str):
    """TrainConfig's default for ``name`` (the paper's value where the paper gives one)."""
    f = {f.name: f for f in fields(TrainConfig)}[name]
    return f.default_factory() if f.default is MISSING else f.default


def _to_python(v):
    """NumPy scalars to Python numbers, recursively through lists, tuples and dicts."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return type(v)(_to_python(x) for x in v)
    if isinstance(v, dict):
        return {k: _to_python(x) for k, x in v.items()}
    return v


def _plain(v) -> bool:
    """True for what ``torch.load(weights_only=True)`` reads back: numbers, strings, None, lists, str-keyed dicts."""
    if v is None or isinstance(v, (bool, int, float, str, np.number, np.bool_)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    return False


def _is(kind: str, v) -> bool:
    """Whether ``v`` is of the kind a rule checks (a bool is no number, NaN and inf are none)."""
    if kind == "number":
        return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v)
    if kind == "integer":
        return not isinstance(v, bool) and isinstance(v, (int, np.integer))
    if kind == "bool":
        return isinstance(v, bool)
    return True  # "any": the rule's test says everything


def _power_of_two(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


def _shift_range(c) -> str:
    if isinstance(c.data_dim, int) and c.data_dim:
        return "0 when data_dim >= 1 (points are not images)"
    return f"an integer in [0, image_size / 4 = {c.image_size // 4}]"


# (field, kind, test(config, value), accepted range): checked in this order by TrainConfig.validate.
_RULES = [
    ("objective", "any", lambda c, v: v in OBJECTIVES, f"one of {OBJECTIVES}"),
    ("gamma", "number", lambda c, v: 0 < v <= 1, "in (0, 1]"),
    ("lambda_k", "number", lambda c, v: v >= 0, ">= 0"),
    ("k0", "number", lambda c, v: 0 <= v <= 1, "in [0, 1]"),
    ("eta", "any", lambda c, v: not isinstance(v, bool) and v in (1, 2), "1 or 2"),
    ("margin", "number", lambda c, v: v > 0, "> 0"),
    ("pt_weight", "number", lambda c, v: v >= 0, ">= 0"),
    ("image_size", "integer", lambda c, v: _power_of_two(v) and 8 <= v <= 128, "a power of two in [8, 128]"),
    ("channels", "integer", lambda c, v: v in (1, 3), "1 or 3"),
    *[(name, "integer", lambda c, v: v >= 1, ">= 1")
      for name in ("filters", "repeat", "z_dim", "h_dim", "vanishing_steps", "mlp_hidden", "lr_patience",
                   "batch_size")],
    ("skip", "bool", lambda c, v: not (v and c.data_dim), "False when data_dim >= 1 (the MLP networks have no skip "
                                                           "connections)"),
    ("vanishing_residual", "bool", lambda c, v: not (v and c.data_dim),
     "False when data_dim >= 1 (the MLP networks have no residual blocks)"),
    ("data_dim", "integer", lambda c, v: v >= 0, ">= 0 (0 = images, d >= 1 = points of dimension d)"),
    ("tanh_output", "bool", lambda c, v: not (v and c.data_dim),
     "False when data_dim >= 1 (points are unbounded; the MLP networks have no tanh)"),
    ("lr", "number", lambda c, v: v > 0, "> 0"),
    ("adam_betas", "any", lambda c, v: isinstance(v, (tuple, list)) and len(v) == 2 and all(
        _is("number", b) and 0 <= b < 1 for b in v), "two numbers in [0, 1)"),
    ("lr_decay", "number", lambda c, v: 0 < v <= 1, "in (0, 1]"),
    ("lr_min", "number", lambda c, v: v >= 0, ">= 0"),
    ("shift", "integer", lambda c, v: 0 <= v <= (0 if c.data_dim else c.image_size // 4), _shift_range),
    ("ema", "number", lambda c, v: 0 <= v < 1, "in [0, 1)"),
    ("steps", "integer", lambda c, v: v >= 0, ">= 0"),
    ("seed", "integer", lambda c, v: 0 <= v < 2**63, "an integer in [0, 2**63)"),
    ("device", "any", lambda c, v: isinstance(v, str), "a string ('auto', 'cpu', 'cuda', 'mps')"),
    ("dtype", "any", lambda c, v: v in DTYPES, f"one of {DTYPES}"),
    ("compile", "bool", lambda c, v: True, "True or False"),
    ("profile", "any", lambda c, v: v in PROFILES, f"one of {PROFILES}"),
    ("extra", "any", lambda c, v: isinstance(v, dict) and _plain(v),
     "a dict of plain values (str keys; numbers, strings, bools, None, lists, dicts), so that checkpoints stay "
     "data only"),
]
