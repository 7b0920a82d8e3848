"""The training loop: gradient isolation, the objectives' wiring, exact resume, divergence."""
import math

import pytest
import torch

import began_lite as bl
from began_lite.checkpoint import CheckpointError, load_checkpoint
from began_lite.train import History, Trainer, TrainingDiverged


def tiny_config(**kw):
    base = dict(image_size=8, channels=1, filters=4, repeat=1, z_dim=4, h_dim=4, batch_size=8,
                steps=40, gamma=0.5, lambda_k=0.05, lr=1e-3, device="cpu", dtype="float32", profile="quick")
    base.update(kw)
    return bl.TrainConfig(**base)


@pytest.fixture(scope="module")
def digits8():
    return bl.load_digits(8)[:256]


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_d_step_gives_g_no_gradient_and_g_step_leaves_d_alone(digits8):
    tr = Trainer(tiny_config(), digits8)
    g0, d0 = params(tr.G), params(tr.D)
    cfg = tr.config
    real = digits8[:8]
    with torch.no_grad():
        fake = tr.G(bl.sample_z(8, cfg.z_dim))
    loss_d, _ = tr.objective.d_loss(tr.D, real, fake)
    loss_d.backward()
    assert all(p.grad is None for p in tr.G.parameters()), "the D loss must not reach G"
    tr.D.zero_grad(set_to_none=True)
    # A full step: G's weights change only in the G step, D's only in the D step.
    tr.train_step()
    g1, d1 = params(tr.G), params(tr.D)
    assert not same(g0, g1) and not same(d0, d1)


def test_g_loss_backpropagates_through_d(digits8):
    tr = Trainer(tiny_config(), digits8)
    z = bl.sample_z(8, 4)
    tr.D.requires_grad_(False)
    loss_g, _ = tr.objective.g_loss(tr.D, tr.G(z))
    loss_g.backward()
    grads = [p.grad for p in tr.G.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in tr.D.parameters())


def test_d_update_matches_hand_computed_began_loss(digits8):
    """One D step equals Adam on L(x) - k L(G(z_D)) computed by hand with the same batch."""
    cfg = tiny_config(k0=0.3)
    tr = Trainer(cfg, digits8)
    ref = Trainer(cfg, digits8)
    gen = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randint(len(digits8), (cfg.batch_size,), generator=gen)
    z_d = bl.sample_z(cfg.batch_size, cfg.z_dim, generator=gen)
    real = digits8[idx]
    with torch.no_grad():
        fake = ref.G(z_d)
    l_real = bl.reconstruction_loss(real, ref.D(real)).mean()
    l_fake = bl.reconstruction_loss(fake, ref.D(fake)).mean()
    (l_real - 0.3 * l_fake).backward()
    ref.opt_d.step()
    logs = tr.train_step()
    # One batched pass vs two: equal up to float summation order.
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(params(tr.D), params(ref.D)))
    assert math.isclose(logs["loss_real"], l_real.item(), rel_tol=1e-6)
    assert logs["k"] == pytest.approx(0.3)


def test_controller_sequence_in_training(digits8):
    cfg = tiny_config(gamma=0.7, lambda_k=0.02)
    tr = Trainer(cfg, digits8)
    tr.train(15, progress=False)
    h = tr.history
    k = 0.0
    for step in range(15):
        assert h["k"][step] == pytest.approx(k)  # the k used in the step
        k = min(1.0, max(0.0, k + 0.02 * (0.7 * h["loss_real"][step] - h["loss_fake"][step])))
        m = h["loss_real"][step] + abs(0.7 * h["loss_real"][step] - h["loss_fake"][step])
        assert h["m_global"][step] == pytest.approx(m)
    assert tr.k == pytest.approx(k)


def test_fixed_k_stays_put(digits8):
    tr = Trainer(tiny_config(), digits8, fixed_k=1.0)
    tr.train(5, progress=False)
    assert list(tr.history["k"]) == [1.0] * 5 and tr.k == 1.0


def test_ebgan_wiring(digits8):
    cfg = tiny_config(objective="ebgan", margin=0.5, pt_weight=0.1)
    tr = Trainer(cfg, digits8)
    logs = tr.train_step()
    assert logs["loss_d"] == pytest.approx(logs["loss_real"] + logs["hinge"], rel=1e-5)
    assert logs["loss_g"] == pytest.approx(logs["loss_fake"] + 0.1 * logs["pt"], rel=1e-5)
    assert 0.0 <= logs["pt"] <= 1.0


@pytest.mark.parametrize("objective", ["began", "ebgan"])
def test_exact_resume(tmp_path, digits8, objective):
    # the lr ramp runs across the resume point (steps 10 to 30), so it must continue exactly too
    cfg = tiny_config(objective=objective, vanishing_residual=True, vanishing_steps=30, lr_ramp_start=10, lr_ramp_end=30)
    straight = Trainer(cfg, digits8)
    straight.train(40, progress=False)
    first = Trainer(cfg, digits8, run_dir=tmp_path / "run")
    first.train(20, progress=False)  # saves at the end
    resumed = Trainer.from_checkpoint(tmp_path / "run", digits8)
    assert resumed.step == 20
    resumed.train(20, progress=False)
    assert same(params(straight.G), params(resumed.G))
    assert same(params(straight.D), params(resumed.D))
    assert resumed.k == straight.k
    for key in straight.history.keys():
        a, b = straight.history[key], resumed.history[key]
        assert ((a == b) | (torch.tensor(a).isnan() & torch.tensor(b).isnan()).numpy()).all(), key


def test_run_dir_contents(tmp_path, digits8):
    tr = Trainer(tiny_config(), digits8, run_dir=tmp_path / "r")
    tr.train(6, progress=False, checkpoint_every=3, sample_every=3)
    files = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"checkpoint.pt", "history.json", "history.csv", "config.json", "samples"} <= files
    assert {p.name for p in (tmp_path / "r" / "samples").iterdir()} == {"step_0000003.png", "step_0000006.png"}
    state = load_checkpoint(tmp_path / "r")
    assert state["step"] == 6 and len(state["history"]["k"]) == 6
    assert not [p for p in (tmp_path / "r").iterdir() if p.name.endswith(".tmp")]


def test_divergence_stops_before_anything_is_applied(tmp_path, digits8):
    tr = Trainer(tiny_config(), digits8, run_dir=tmp_path / "r")
    tr.train(3, progress=False)
    good = load_checkpoint(tmp_path / "r")
    before = params(tr.D)
    with torch.no_grad():
        tr.D.decoder.to_image.bias.fill_(float("nan"))
    poisoned = params(tr.D)
    with pytest.raises(TrainingDiverged, match=r"step 4.*checkpoint"):
        tr.train(3, progress=False)
    assert tr.step == 3
    assert same(params(tr.D)[:-1], poisoned[:-1]) and not same(before, poisoned)
    after = load_checkpoint(tmp_path / "r")
    assert after["step"] == good["step"] == 3
    assert all(torch.isfinite(v).all() for v in after["discriminator"].values())


def test_data_shape_and_range_checked(digits8):
    with pytest.raises(ValueError, match="data must have shape"):
        Trainer(tiny_config(image_size=16), digits8)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        Trainer(tiny_config(), digits8 * 3)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        Trainer({"gamma": 0.5}, digits8)


def test_out_dir_that_is_a_file(tmp_path, digits8):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="out must be a directory"):
        Trainer(tiny_config(), digits8, run_dir=f)


def test_history_columns_align():
    h = History()
    h.append({"a": 1})
    h.append({"a": 2, "b": 3})
    assert len(h) == 2 and math.isnan(h["b"][0]) and h["b"][1] == 3
    with pytest.raises(KeyError, match="no column"):
        h["c"]


def test_sampling_is_seeded(digits8):
    tr = Trainer(tiny_config(), digits8)
    assert torch.equal(tr.sample(5, seed=3), tr.sample(5, seed=3))
    assert not torch.equal(tr.sample(5, seed=3), tr.sample(5, seed=4))
    assert tr.sample(5).abs().max() <= 1


def test_checkpoint_refuses_code(tmp_path):
    """A pickle that would run code on load is refused, and the code does not run."""
    import os

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "began_lite.checkpoint/1", "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="not plain data"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content,match", [(b"", "truncated"), (b"not a zip at all", "truncated")])
def test_checkpoint_truncated_or_foreign(tmp_path, content, match):
    p = tmp_path / "c.pt"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(p)


def test_checkpoint_truncated_real_file(tmp_path, digits8):
    tr = Trainer(tiny_config(), digits8, run_dir=tmp_path / "r")
    tr.train(2, progress=False)
    data = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(cut)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a began_lite checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="holds no checkpoint.pt"):
        load_checkpoint(tmp_path)


def test_plateau_halver_halves_only_when_the_window_mean_stalls():
    """Windows of `patience` steps: a window mean not 1% below the best so far halves lr (floored)."""
    from began_lite.train import PlateauHalver

    h = PlateauHalver(patience=4, decay=0.5, lr_min=0.1)
    lrs, lr = [], 1.0
    # windows means: 10, 5 (better), 4.98 (< 1% better: halve), 2 (better), 2 (stall: halve), 2 (halve, floored)
    for m in [10] * 4 + [5] * 4 + [4.98] * 4 + [2] * 4 + [2] * 4 + [2] * 4:
        lr = h.observe(m, lr)
        lrs.append(lr)
    assert lrs[3] == 1.0 and lrs[7] == 1.0  # first window sets the best; second improves
    assert lrs[11] == 0.5 and lrs[10] == 1.0  # decided only at the end of a window
    assert lrs[15] == 0.5 and lrs[19] == 0.25 and lrs[23] == 0.125
    h2 = PlateauHalver(patience=4, decay=0.5, lr_min=0.2)
    lr = 1.0
    for m in [1.0] * 40:
        lr = h2.observe(m, lr)
    assert lr == 0.2  # the floor


def test_linear_ramp_holds_then_falls_to_the_floor():
    """lr after `step` steps: lr up to `start`, a straight line to lr_min at `end`, lr_min after."""
    from began_lite.train import LinearRamp

    ramp = LinearRamp(lr=2e-4, start=500, end=1500, lr_min=1e-6)
    expected = {0: 2e-4, 500: 2e-4, 1000: (2e-4 + 1e-6) / 2, 1250: 2e-4 - 0.75 * (2e-4 - 1e-6), 1500: 1e-6, 4000: 1e-6}
    for step, lr in expected.items():
        assert ramp.at(step) == pytest.approx(lr, rel=1e-12), step


def test_trainer_follows_the_ramp_and_ignores_stalls(digits8):
    """With lr_ramp_end > 0 the optimisers' rate is the ramp's at every step; the plateau halver is off."""
    from began_lite.train import LinearRamp

    cfg = tiny_config(lr=1e-3, lr_ramp_start=2, lr_ramp_end=6, lr_min=1e-5, lr_patience=1)  # patience 1: would halve often
    tr = Trainer(cfg, digits8)
    tr.train(8, progress=False)
    ramp = LinearRamp(1e-3, 2, 6, 1e-5)
    assert list(tr.history["lr"]) == pytest.approx([ramp.at(s) for s in range(8)], rel=1e-12)
    assert tr.opt_g.param_groups[0]["lr"] == tr.opt_d.param_groups[0]["lr"] == pytest.approx(1e-5)


def test_plateau_halver_state_round_trip_mid_window():
    from began_lite.train import PlateauHalver

    seq = [3, 2, 2, 2, 2.5, 2, 2, 2, 2, 2, 2, 2]
    a = PlateauHalver(3, 0.5, 1e-3)
    lr_a = 1.0
    for m in seq:
        lr_a = a.observe(m, lr_a)
    b = PlateauHalver(3, 0.5, 1e-3)
    lr_b = 1.0
    for m in seq[:5]:
        lr_b = b.observe(m, lr_b)
    c = PlateauHalver(3, 0.5, 1e-3)
    c.load_state_dict(b.state_dict())
    for m in seq[5:]:
        lr_b = c.observe(m, lr_b)
    assert lr_a == lr_b


def test_ema_warms_up_and_leaves_training_alone():
    """The average's decay is min(ema, (1 + t) / (10 + t)) at step t, and keeping it changes no trained weight."""
    data = bl.load_digits(8)
    cfg = bl.TrainConfig(image_size=8, channels=1, filters=4, z_dim=4, h_dim=4, batch_size=8, device="cpu", steps=3)
    plain, averaged = Trainer(cfg, data), Trainer(cfg.replace(ema=0.999), data)
    expected = [p.detach().clone() for p in averaged.G.parameters()]
    for t in range(3):
        plain.train_step()
        averaged.train_step()
        decay = min(0.999, (1 + t) / (10 + t))
        expected = [e + (1 - decay) * (p.detach() - e) for e, p in zip(expected, averaged.G.parameters())]
    for e, p in zip(expected, averaged.G_ema.parameters()):
        assert torch.allclose(e, p, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(plain.G.parameters(), averaged.G.parameters()))
