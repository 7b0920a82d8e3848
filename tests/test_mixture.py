"""The 2-D mixtures end to end: the mode-collapse score, the MLP trainer, exact resume, the CLI."""
import math

import numpy as np
import pytest
import torch

import began_lite as bl
from began_lite.__main__ import main
from began_lite.config import TrainConfig
from began_lite.evaluate import mixture_quality
from began_lite.mixtures import MIXTURE_STD, mixture_2d
from began_lite.profiles import MIXTURE
from began_lite.models import (Discriminator, Generator, MLPDiscriminator, MLPGenerator, build_discriminator,
                               build_generator)
from began_lite.callbacks import write_samples
from began_lite.train import Trainer

RING, GRID = bl.mixture_modes("ring"), bl.mixture_modes("grid")


# --------------------------------------------------------------------------- the score
def test_all_samples_at_the_modes_cover_every_mode():
    for kind, modes in (("ring", RING), ("grid", GRID)):
        q = mixture_quality(modes.repeat(3, 1), kind)
        assert q.modes_covered == q.n_modes == len(modes)
        assert q.high_quality_share == 1.0
        assert q.counts == [3] * len(modes)


def test_samples_at_one_mode_cover_one():
    q = mixture_quality(RING[2].expand(100, 2) + 0.01 * torch.randn(100, 2, generator=torch.Generator().manual_seed(0)),
                        "ring")
    assert q.modes_covered == 1 and q.high_quality_share == 1.0
    assert q.counts[2] == 100 and sum(q.counts) == 100


def test_far_points_are_not_high_quality():
    # The ring's centre and points between two grid modes are far (in std) from every mode.
    assert mixture_quality(torch.zeros(50, 2), "ring")[:3] == (0, 8, 0.0)
    assert mixture_quality(torch.full((50, 2), 1.0), "grid")[:3] == (0, 25, 0.0)
    assert mixture_quality(np.array([[100.0, -100.0]]), "grid").high_quality_share == 0.0


def test_three_standard_deviations_is_the_boundary():
    """High quality: nearest mode within 3 std (VEEGAN §5; PacGAN's code: distance < 3 std)."""
    std = MIXTURE_STD["ring"]
    direction = torch.tensor([0.6, 0.8])  # unit length
    inside = RING[0] + 2.99 * std * direction
    outside = RING[0] + 3.01 * std * direction
    q = mixture_quality(torch.stack([inside, outside]), "ring")
    assert q.high_quality_share == 0.5 and q.counts[0] == 1 and q.modes_covered == 1
    # A looser threshold or a wider std takes the second point in too.
    assert mixture_quality(torch.stack([inside, outside]), "ring", n_std=3.1).high_quality_share == 1.0
    assert mixture_quality(torch.stack([inside, outside]), "ring", std=2 * std).high_quality_share == 1.0


def test_min_count_rule():
    pts = torch.cat([GRID[0].expand(30, 2), GRID[7].expand(5, 2)])
    assert mixture_quality(pts, "grid").modes_covered == 2  # the papers' rule: one sample is enough
    assert mixture_quality(pts, "grid", min_count=20).modes_covered == 1


def test_real_samples_score_as_the_normal_distribution_predicts():
    """For N(0, std^2 I_2), P(|x| < 3 std) = 1 - exp(-9/2) = 0.9889; every mode is covered."""
    expected = 1 - math.exp(-4.5)
    for kind in ("ring", "grid"):
        q = mixture_quality(mixture_2d(kind, 20_000, seed=1), kind)
        assert q.modes_covered == q.n_modes
        assert q.high_quality_share == pytest.approx(expected, abs=0.003)


@pytest.mark.parametrize("args, kwargs, pattern", [
    ((torch.zeros(4, 2), "spiral"), {}, r"^kind must be one of"),
    ((torch.zeros(4, 3), "ring"), {}, r"^samples must be .*\(N, 2\), got shape \(4, 3\)"),
    ((torch.zeros(4), "ring"), {}, r"^samples must be"),
    ((torch.zeros(0, 2), "ring"), {}, r"^samples must be"),
    ((torch.tensor([[0.0, float("nan")]]), "ring"), {}, r"^samples contains NaN"),
    ((torch.zeros(4, 2), "ring"), {"std": 0.0}, r"^std must be"),
    ((torch.zeros(4, 2), "ring"), {"n_std": -1}, r"^n_std must be"),
    ((torch.zeros(4, 2), "ring"), {"min_count": 0}, r"^min_count must be"),
])
def test_mixture_quality_bad_input(args, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        mixture_quality(*args, **kwargs)


# --------------------------------------------------------------------------- the loss on points
def test_reconstruction_loss_averages_over_coordinates():
    """L(v) = mean over the d coordinates of |v - D(v)|^eta, one value per point (as over pixels)."""
    v = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    d_v = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    torch.testing.assert_close(bl.reconstruction_loss(v, d_v, eta=1), torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(bl.reconstruction_loss(v, d_v, eta=2), torch.tensor([2.5, 1.0]))


# --------------------------------------------------------------------------- config and networks
def point_config(**kw):
    base = dict(data_dim=2, mlp_hidden=16, z_dim=4, h_dim=3, batch_size=32, steps=40, gamma=0.5,
                lambda_k=0.05, lr=1e-3, device="cpu", dtype="float32", profile="quick", extra={"mixture": "ring"})
    base.update(kw)
    return TrainConfig(**base)


def test_images_stay_the_default():
    cfg = TrainConfig(image_size=8, channels=1, filters=4, z_dim=4, h_dim=4)
    assert cfg.data_dim == 0
    assert type(build_generator(cfg)) is Generator and type(build_discriminator(cfg)) is Discriminator


def test_points_get_the_mlps():
    cfg = point_config()
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert isinstance(G, MLPGenerator) and isinstance(D, MLPDiscriminator)
    x = G(torch.rand(5, 4))
    assert x.shape == (5, 2) and D(x).shape == (5, 2)
    h = D.encode(x)
    assert h.shape == (5, 3)
    torch.testing.assert_close(D.decode(h), D(x))


@pytest.mark.parametrize("kw, pattern", [
    (dict(data_dim=-1), r"^data_dim must be >= 0"),
    (dict(data_dim=1.5), r"^data_dim must be an integer"),
    (dict(mlp_hidden=0), r"^mlp_hidden must be >= 1"),
    (dict(skip=True), r"^skip must be False when data_dim >= 1"),
    (dict(vanishing_residual=True), r"^vanishing_residual must be False when data_dim >= 1"),
])
def test_point_config_validation(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        point_config(**kw)


def test_mixture_settings_are_a_valid_config():
    cfg = TrainConfig.for_profile("quick", **MIXTURE)
    assert cfg.data_dim == 2 and cfg.batch_size == 256
    assert cfg.h_dim == 1 < cfg.data_dim  # D's bottleneck narrower than the data: no identity to learn


# --------------------------------------------------------------------------- the trainer on points
@pytest.fixture(scope="module")
def ring_points():
    return mixture_2d("ring", 1000, seed=0)


def test_trainer_on_points(ring_points, tmp_path):
    tr = Trainer(point_config(), ring_points, run_dir=tmp_path / "run")
    g0 = [p.detach().clone() for p in tr.G.parameters()]
    tr.train(5, progress=False)
    assert tr.step == 5 and len(tr.history) == 5
    assert all(math.isfinite(v) for k in ("loss_real", "loss_fake", "k", "m_global") for v in tr.history[k])
    assert not all(torch.equal(a, b) for a, b in zip(g0, tr.G.parameters()))
    pts = tr.sample(300, seed=3)
    assert pts.shape == (300, 2) and pts.dtype == torch.float32
    z = bl.sample_z(300, 4, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(pts, tr.G(z))  # unclamped: the grid reaches +-4
    png = write_samples(tr).read_bytes()  # the scatter plot the command line writes
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_ebgan_on_points_uses_the_embedding(ring_points):
    tr = Trainer(point_config(objective="ebgan"), ring_points)
    logs = tr.train_step()
    assert {"hinge", "pt"} <= set(logs) and 0.0 <= logs["pt"] <= 1.0


@pytest.mark.parametrize("cfg_kw, data, pattern", [
    (dict(), torch.zeros(10, 3), r"^data must have shape \(N, 2\) to match the config \(data_dim\), got \(10, 3\)"),
    (dict(), torch.zeros(10, 1, 8, 8), r"^data must be a non-empty float tensor of points \(N, 2\)"),
    (dict(), torch.zeros(0, 2), r"^data must be a non-empty float tensor of points"),
    (dict(), torch.zeros(10, 2, dtype=torch.int64), r"^data must be a non-empty float tensor of points"),
    (dict(), torch.tensor([[0.0, float("inf")]]), r"^data must be finite"),
])
def test_wrong_data_for_a_point_config(cfg_kw, data, pattern):
    with pytest.raises(ValueError, match=pattern):
        Trainer(point_config(**cfg_kw), data)


def test_points_for_an_image_config_are_refused(ring_points):
    cfg = TrainConfig(image_size=8, channels=1, filters=4, z_dim=4, h_dim=4, device="cpu")
    with pytest.raises(ValueError, match=r"^data must be images \(N, C, H, W\).*set data_dim=d"):
        Trainer(cfg, ring_points)


def test_mixture_run_reports_the_score():
    from began_lite.chapters.runs import mixture_run

    tr, report = mixture_run("grid", 3, objective="ebgan", seed=1, n_eval=200, n_points=500, mlp_hidden=8,
                             batch_size=16, device="cpu")
    assert tr.step == 3 and tr.config.data_dim == 2 and tr.config.extra["mixture"] == "grid"
    assert report["n_modes"] == 25 and 0 <= report["modes_covered"] <= 25
    assert 0.0 <= report["high_quality_share"] <= 1.0 and report["seconds"] > 0
    assert sum(report["counts"]) == round(report["high_quality_share"] * 200)
    assert report["objective"] == "ebgan" and report["k"] == 0.0  # EBGAN has no k
    assert report["gamma_realised"] == pytest.approx(float(tr.history["gamma_realised"][-3:].mean()))
    with pytest.raises(ValueError, match=r"^kind must be one of"):
        mixture_run("spiral", 1)


# --------------------------------------------------------------------------- the command line
TINY = ["--z-dim", "4", "--h-dim", "3", "--batch-size", "16", "--device", "cpu", "--no-progress"]


def test_cli_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "mixture", "--mixture", "grid", "--steps", "6", "--out", str(run), *TINY]) == 0
    assert (run / "checkpoint.pt").is_file() and any((run / "samples").glob("*.png"))
    npz = tmp_path / "p.npz"
    assert main(["sample", "--checkpoint", str(run), "--n", "100", "--out", str(npz)]) == 0
    with np.load(npz, allow_pickle=False) as f:
        assert f["points"].shape == (100, 2) and f["points"].dtype == np.float32
        assert str(f["mixture"]) == "grid"
    png = tmp_path / "p.png"
    assert main(["sample", "--checkpoint", str(run), "--n", "100", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["evaluate", "--samples", str(npz), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["mixture"] == "grid" and report["n_modes"] == 25


def test_cli_resume_continues_exactly(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["train", "--dataset", "mixture", "--steps", "8", "--out", str(straight), *TINY]) == 0
    assert main(["train", "--dataset", "mixture", "--steps", "4", "--out", str(split), *TINY]) == 0
    assert main(["train", "--resume", str(split), "--steps", "8", "--no-progress"]) == 0  # the total
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(split / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 8 and a["k"] == b["k"]
    assert a["config"]["extra"]["mixture"] == "ring"  # the default
    assert all(torch.equal(a["generator"][n], b["generator"][n]) for n in a["generator"])


def test_cli_points_without_a_mixture_name(tmp_path, capsys):
    npz = tmp_path / "p.npz"
    np.savez(npz, points=np.zeros((5, 2), np.float32))
    assert main(["evaluate", "--samples", str(npz)]) == 2
    assert "mixture: the file names no mixture" in capsys.readouterr().err
    assert main(["evaluate", "--samples", str(npz), "--mixture", "ring"]) == 0
    assert "0/8 modes covered" in capsys.readouterr().out


@pytest.mark.parametrize("args, expected", [
    (["train", "--dataset", "mixture", "--mixture", "spiral"], "--mixture"),
    (["train", "--dataset", "digits", "--mixture", "grid"], "mixture: --mixture applies to --dataset mixture only"),
    (["train", "--dataset", "mixture", "--image-size", "16"], "image-size: --image-size does not apply"),
    (["train", "--dataset", "mixture", "--filters", "8"], "filters: --filters does not apply"),
    (["train", "--dataset", "mixture", "--h-dim", "0"], "h_dim must be >= 1"),
])
def test_cli_bad_mixture_input(tmp_path, capsys, args, expected):
    try:
        code = main([*args, "--out", str(tmp_path / "r"), "--no-progress"])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and expected in err[0], err


def test_a_blur_covers_modes_but_is_not_high_quality():
    """The caveat in mixture_quality's docstring, pinned: coverage alone rewards spreading out."""
    g = torch.Generator().manual_seed(0)
    square = torch.rand(2500, 2, generator=g) * 10 - 5
    q = mixture_quality(square, "grid")
    assert q.modes_covered == 22 and q.high_quality_share == pytest.approx(0.0224)
    angle = torch.rand(2500, generator=g) * 2 * math.pi
    circle = 2 * torch.stack([angle.cos(), angle.sin()], dim=1)
    q = mixture_quality(circle, "ring")
    assert q.modes_covered == 8 and q.high_quality_share == pytest.approx(0.0768)


@pytest.mark.parametrize("call, pattern", [
    (lambda G, D: G(torch.rand(3, 5)), r"^z must have shape \(B, 4\), got \(3, 5\)"),
    (lambda G, D: D(torch.rand(3, 1, 2)), r"^x must have shape \(B, 2\)"),
    (lambda G, D: D.decode(torch.rand(3, 2)), r"^h must have shape \(B, 3\)"),
    (lambda G, D: D(torch.rand(3, 2, dtype=torch.float64)), r"^x must have the network's dtype"),
    (lambda G, D: MLPGenerator(z_dim=0), r"^z_dim must be an integer >= 1"),
])
def test_mlps_refuse_wrong_input(call, pattern):
    cfg = point_config()
    with pytest.raises(ValueError, match=pattern):
        call(build_generator(cfg), build_discriminator(cfg))
