"""Configuration: the paper's defaults, profiles, device choice, seeding, validation."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from began_lite.config import TrainConfig, default, field_names
from began_lite.device import pick_device, seed_everything
from began_lite.profiles import MIXTURE, PROFILES, resolve_profile

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No test sees the caller's BEGAN_LITE_* settings."""
    monkeypatch.delenv("BEGAN_LITE_DEVICE", raising=False)
    monkeypatch.delenv("BEGAN_LITE_PROFILE", raising=False)


# --------------------------------------------------------------------------- pick_device
@pytest.mark.skipif(HAS_CUDA or HAS_MPS, reason="auto picks an accelerator when one is present")
@pytest.mark.parametrize("device", [None, "auto"])
def test_pick_device_auto_is_cpu_without_accelerator(device):
    assert pick_device(device) == torch.device("cpu")


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("device", [None, "auto", "cuda", "cuda:0"])
def test_pick_device_cuda_when_present(device):
    assert pick_device(device).type == "cuda"


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_pick_device_cpu(device):
    assert pick_device(device) == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="only meaningful without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_pick_device_cuda_unavailable_refused(device):
    with pytest.raises(ValueError, match=r"device=.*cuda.*not available"):
        pick_device(device)


@pytest.mark.parametrize("device", ["banana", "gpu", 3])
def test_pick_device_nonsense_refused(device):
    with pytest.raises(ValueError, match=r"^device must be"):
        pick_device(device)


def test_pick_device_env_var_honoured(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_DEVICE", "cpu")
    assert pick_device(None) == torch.device("cpu")
    assert pick_device("auto") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="only meaningful without CUDA")
def test_pick_device_env_var_is_used_and_checked(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device(None)


def test_pick_device_explicit_argument_beats_env_var(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_DEVICE", "cuda:7")
    assert pick_device("cpu") == torch.device("cpu")


# --------------------------------------------------------------------------- seed_everything
def draw():
    return torch.rand(5), np.random.rand(5), [random.random() for _ in range(5)]


@pytest.mark.parametrize("seed", [0, 123, 2**40 + 3])
def test_seed_everything_reproducible(seed):
    g1 = seed_everything(seed)
    t1, n1, r1 = draw()
    from_g1 = torch.rand(3, generator=g1)
    g2 = seed_everything(seed)
    t2, n2, r2 = draw()
    from_g2 = torch.rand(3, generator=g2)
    assert torch.equal(t1, t2) and np.array_equal(n1, n2) and r1 == r2
    assert torch.equal(from_g1, from_g2)
    assert isinstance(g1, torch.Generator)


def test_seed_everything_different_seeds_differ():
    seed_everything(1)
    t1, n1, r1 = draw()
    seed_everything(2)
    t2, n2, r2 = draw()
    assert not torch.equal(t1, t2) and not np.array_equal(n1, n2) and r1 != r2


def test_seed_everything_accepts_numpy_integer():
    seed_everything(np.int64(7))
    a = torch.rand(3)
    seed_everything(7)
    assert torch.equal(a, torch.rand(3))


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, True, "0", None])
def test_seed_everything_bad_seed_refused(seed):
    with pytest.raises(ValueError, match=r"^seed must be an integer"):
        seed_everything(seed)


# --------------------------------------------------------------------------- resolve_profile
@pytest.mark.parametrize("profile", ["quick", "full"])
def test_resolve_profile_argument(profile):
    assert resolve_profile(profile) == profile


def test_resolve_profile_env(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_PROFILE", "full")
    assert resolve_profile() == "full"
    monkeypatch.setenv("BEGAN_LITE_PROFILE", "quick")
    assert resolve_profile(None) == "quick"


def test_resolve_profile_argument_beats_env(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_PROFILE", "full")
    assert resolve_profile("quick") == "quick"
    monkeypatch.setenv("BEGAN_LITE_PROFILE", "bogus")  # not even read when the argument is given
    assert resolve_profile("full") == "full"


def test_resolve_profile_default_follows_gpu():
    assert resolve_profile() == ("full" if HAS_CUDA else "quick")


def test_resolve_profile_empty_env_is_unset(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_PROFILE", "")
    assert resolve_profile() == ("full" if HAS_CUDA else "quick")


@pytest.mark.parametrize("profile", ["fast", "QUICK", ""])
def test_resolve_profile_bad_argument_names_it(profile):
    with pytest.raises(ValueError, match=r"^profile must be one of"):
        resolve_profile(profile)


def test_resolve_profile_bad_env_names_the_variable(monkeypatch):
    monkeypatch.setenv("BEGAN_LITE_PROFILE", "turbo")
    with pytest.raises(ValueError, match=r"^BEGAN_LITE_PROFILE must be one of.*turbo"):
        resolve_profile()


# --------------------------------------------------------------------------- TrainConfig
def test_defaults_are_the_papers():
    c = TrainConfig()
    assert c.objective == "began"
    assert c.gamma == 0.5
    assert c.lambda_k == 0.001
    assert c.k0 == 0.0
    assert c.lr == 1e-4
    assert c.z_dim == 64 and c.h_dim == 64
    assert c.batch_size == 16
    assert c.eta == 1
    assert c.skip is False and c.vanishing_residual is False


def test_for_profile_quick():
    c = TrainConfig.for_profile("quick")
    assert c.image_size == 16 and c.channels == 1
    assert c.profile == "quick"


def test_quick_profile_shift_fits_the_image():
    # the profile's shift of up to 3 px, at most a quarter of the side: 8x8 images get 2, larger ones 3
    assert TrainConfig.for_profile("quick").shift == 3
    assert TrainConfig.for_profile("quick", image_size=8).shift == 2
    assert TrainConfig.for_profile("quick", image_size=32).shift == 3
    assert TrainConfig.for_profile("quick", image_size=8, shift=1).shift == 1  # a given shift is kept ...
    with pytest.raises(ValueError, match=r"^shift must be an integer in \[0, image_size / 4 = 2\]"):
        TrainConfig.for_profile("quick", image_size=8, shift=3)  # ... and checked
    assert TrainConfig.for_profile("full").shift == 0  # the paper's: no shift


def test_mixture_settings_have_no_shift_or_average():
    c = TrainConfig.for_profile("quick", **MIXTURE)
    assert (c.shift, c.ema) == (0, 0.0)


def test_for_profile_full():
    c = TrainConfig.for_profile("full")
    assert c.image_size == 64 and c.channels == 3
    assert c.profile == "full"


def test_for_profile_overrides_and_env(monkeypatch):
    c = TrainConfig.for_profile("quick", image_size=8, gamma=0.3)
    assert (c.image_size, c.gamma, c.channels) == (8, 0.3, 1)
    monkeypatch.setenv("BEGAN_LITE_PROFILE", "quick")
    assert TrainConfig.for_profile().image_size == 16
    with pytest.raises(ValueError, match=r"^image_size"):
        TrainConfig.for_profile("quick", image_size=12)


def test_to_dict_from_dict_round_trip():
    c = TrainConfig.for_profile("quick", objective="ebgan", skip=True, extra={"note": "x"})
    d = c.to_dict()
    assert d["gamma"] == c.gamma and d["adam_betas"] == list(c.adam_betas)
    assert TrainConfig.from_dict(d) == c
    assert TrainConfig.from_dict(json.loads(json.dumps(d))) == c  # survives a JSON checkpoint


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        TrainConfig().gamma = 0.7


def test_replace_validates():
    assert TrainConfig().replace(gamma=0.7).gamma == 0.7
    with pytest.raises(ValueError, match=r"^gamma"):
        TrainConfig().replace(gamma=2.0)


BAD_FIELDS = [
    ("gamma", 0.0), ("gamma", 1.5), ("gamma", float("nan")), ("gamma", -0.1), ("gamma", "0.5"),
    ("lambda_k", -1.0), ("lambda_k", float("inf")),
    ("k0", -0.1), ("k0", 1.5),
    ("lr", 0.0), ("lr", -1e-4),
    ("image_size", 12), ("image_size", 4), ("image_size", 256), ("image_size", 16.0), ("image_size", True),
    ("batch_size", 0),
    ("z_dim", 0), ("h_dim", 0),
    ("steps", -1),
    ("eta", 3), ("eta", True), ("eta", 1.5),
    ("objective", "wgan"),
    ("dtype", "float64"),
    ("adam_betas", (1.0, 0.9)), ("adam_betas", (0.9,)), ("adam_betas", (0.9, -0.1)),
    ("channels", 2),
    ("filters", 0),
    ("repeat", 0),
    ("margin", 0.0),
    ("pt_weight", -0.1),
    ("lr_decay", 0.0), ("lr_decay", 1.5),
    ("lr_patience", 0),
    ("vanishing_steps", 0),
    ("lr_min", -1.0),
    ("seed", -1),
    ("device", 0),
    ("profile", "medium"),
]


@pytest.mark.parametrize("name, value", BAD_FIELDS, ids=[f"{n}={v!r}" for n, v in BAD_FIELDS])
def test_invalid_field_names_the_field(name, value):
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        TrainConfig(**{name: value})


@pytest.mark.parametrize("value", ["no", 1, 0, None])
def test_tanh_output_must_be_a_bool(value):
    with pytest.raises(ValueError, match=r"^tanh_output must be True or False"):
        TrainConfig(tanh_output=value)


def test_tanh_output_refused_for_points():
    with pytest.raises(ValueError, match=r"^tanh_output must be False when data_dim >= 1"):
        TrainConfig(data_dim=2, tanh_output=True)


@pytest.mark.parametrize("name, value", BAD_FIELDS[:8], ids=[f"{n}={v!r}" for n, v in BAD_FIELDS[:8]])
def test_from_dict_validates_fields(name, value):
    d = TrainConfig().to_dict()
    d[name] = value
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        TrainConfig.from_dict(d)


def test_from_dict_unknown_keys_refused():
    d = TrainConfig().to_dict()
    d["gama"] = 0.5
    d["zz_extra"] = 1
    with pytest.raises(ValueError, match=r"unknown fields.*'gama'.*'zz_extra'"):
        TrainConfig.from_dict(d)


@pytest.mark.parametrize("size", [8, 16, 32, 64, 128])
def test_valid_image_sizes(size):
    assert TrainConfig(image_size=size).image_size == size


def test_paper_small_is_the_paper_at_the_quick_sizes():
    """paper-small: the quick profile's image and network sizes, every other field the paper's."""
    paper, quick, small = TrainConfig(), TrainConfig.for_profile("quick"), TrainConfig.for_profile("paper-small")
    sizes = ("image_size", "channels", "filters", "repeat")
    assert all(getattr(small, f) == getattr(quick, f) for f in sizes)
    others = [f for f in field_names() if f not in (*sizes, "steps", "profile", "device", "dtype")]
    assert [f for f in others if getattr(small, f) != getattr(paper, f)] == []
    assert small.steps == quick.steps  # the same budget as the quick profile
    assert set(PROFILES) == {"quick", "full", "paper-small"}


def test_every_field_has_a_doc_a_group_and_a_default():
    from began_lite.config import GROUPS
    from dataclasses import fields
    for f in fields(TrainConfig):
        assert f.metadata["doc"] and f.metadata["group"] in GROUPS, f.name
        assert default(f.name) == getattr(TrainConfig(), f.name)


def test_fixed_fields_are_those_that_shape_the_networks_or_the_objective():
    # a checkpoint's weights fit only its own sizes, objective and weight average
    assert set(field_names(fixed=True)) == {"objective", "image_size", "channels", "filters", "repeat", "z_dim",
                                            "h_dim", "skip", "vanishing_residual", "tanh_output", "data_dim",
                                            "mlp_hidden", "ema"}


def test_a_removed_field_is_refused_by_name():
    d = TrainConfig().to_dict()
    d["began_pt_weight"] = 0.0  # gone: nothing kept for history
    with pytest.raises(ValueError, match=r"unknown fields \['began_pt_weight'\]"):
        TrainConfig.from_dict(d)
