"""The training loop: gradient isolation, the objectives' wiring, exact resume, divergence."""
import copy
import math

import pytest
import torch

import began_lite as bl
from began_lite.callbacks import every, write_samples
from began_lite.checkpoint import CheckpointError, load_checkpoint
from began_lite.models import build_discriminator, build_generator
from began_lite.objectives import make_objective
from began_lite.history import History
from began_lite.train import Trainer, TrainingDiverged


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


# ----------------------------------------------------------------- the step's gradient isolation
# One step of gan_step with plain SGD, checked against gradients computed independently by
# autograd on copies of G and D: D's update is the gradient of L_D alone, with G's weights
# untouched; G's update is the gradient of L_G through the D that the D step left, and that
# D does not move. The checker is run against three broken steps too, so that it is seen to fail.
LR = 0.1


class Spy(torch.optim.SGD):
    """SGD that records, at each step, the gradients both networks hold."""

    def __init__(self, params, watched, log, name):
        super().__init__(params, lr=LR)
        self.watched, self.log, self.name = watched, log, name

    def step(self, closure=None):
        self.log[self.name] = {k: [None if p.grad is None else p.grad.clone() for p in m.parameters()]
                               for k, m in self.watched.items()}
        return super().step(closure)


def isolation_violations(digits, tiny_config, *, mutant: str | None = None) -> list[str]:
    cfg = tiny_config(k0=0.3)
    bl.seed_everything(0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    real = digits[:8]
    z_d, z_g = bl.sample_z(8, cfg.z_dim), bl.sample_z(8, cfg.z_dim)
    objective = make_objective(cfg)
    log = {}
    opt_d = Spy(D.parameters(), {"G": G, "D": D}, log, "d")
    opt_g = Spy(G.parameters(), {"G": G, "D": D}, log, "g")
    if mutant == "L_G leaks into D's step":  # L_D + L_G, as when one backward serves both
        loss_d = objective.loss_d
        objective.loss_d = lambda lr_, lf_: (lambda l, logs: (l + bl.reconstruction_loss(
            G(z_g), D(G(z_g))).mean(), logs))(*loss_d(lr_, lf_))
    elif mutant == "the G step moves D":  # one optimiser over both networks, D never frozen
        opt_g = Spy(list(G.parameters()) + list(D.parameters()), {"G": G, "D": D}, log, "g")
        D.requires_grad_ = lambda flag=True: D
    elif mutant == "G cut off from D's gradient":  # L_G on a detached reconstruction
        loss_g = objective.loss_g
        objective.loss_g = lambda D_, fake: loss_g(lambda v: D_(v).detach(), fake)
    bl.gan_step(G=G, D=D, opt_d=opt_d, opt_g=opt_g, objective=objective, x=real, z_d=z_d, z_g=z_g)

    # The same step, by hand: gradients of L_D on D0, then of L_G through D1 on G0.
    loss_d = bl.reconstruction_loss(real, D0(real)).mean() - 0.3 * bl.reconstruction_loss(
        G0(z_d).detach(), D0(G0(z_d).detach())).mean()
    grad_d = torch.autograd.grad(loss_d, list(D0.parameters()))
    D1 = copy.deepcopy(D0)
    with torch.no_grad():
        for p, g in zip(D1.parameters(), grad_d):
            p -= LR * g
    loss_g = bl.reconstruction_loss(G0(z_g), D1(G0(z_g))).mean()
    grad_g = torch.autograd.grad(loss_g, list(G0.parameters()), allow_unused=True)

    def close(got, want):
        return all(a is not None and torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(got, want))

    def none_or_zero(grads):
        return all(g is None or not g.any() for g in grads)

    found = []
    if not close(log["d"]["D"], grad_d):
        found.append("D's update is not the gradient of L_D alone")
    if not none_or_zero(log["d"]["G"]):
        found.append("G holds a gradient in the D step")
    if not close(log["g"]["G"], grad_g):
        found.append("G's update is not the gradient of L_G through D")
    # D keeps the gradient of its own step (nothing is added to it) and the weights that step gave it.
    if not close(log["g"]["D"], log["d"]["D"]) or not close([p.detach() for p in D.parameters()],
                                                            list(D1.parameters())):
        found.append("D moved in the G step")
    return found


def test_step_isolates_the_two_updates(digits8, tiny_config):
    assert isolation_violations(digits8, tiny_config) == []


@pytest.mark.parametrize("mutant, expected", [
    ("L_G leaks into D's step", "D's update is not the gradient of L_D alone"),
    ("the G step moves D", "D moved in the G step"),
    ("G cut off from D's gradient", "G's update is not the gradient of L_G through D"),
])
def test_isolation_check_catches_broken_steps(digits8, tiny_config, mutant, expected):
    assert expected in isolation_violations(digits8, tiny_config, mutant=mutant)


def test_d_update_matches_hand_computed_began_loss(digits8, tiny_config):
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


def test_controller_sequence_in_training(digits8, tiny_config):
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


def test_fixed_k_stays_put(digits8, tiny_config):
    tr = Trainer(tiny_config(), digits8, fixed_k=1.0)
    tr.train(5, progress=False)
    assert list(tr.history["k"]) == [1.0] * 5 and tr.k == 1.0


def test_ebgan_losses_match_a_hand_computation(digits8, tiny_config):
    """EBGAN's first step, recomputed: L_D = D(x) + [m - D(G(z_D))]^+ on the initial networks, and
    L_G = D(G(z_G)) + w f_PT on the updated D, with f_PT written out here from its definition."""
    cfg = tiny_config(objective="ebgan", margin=0.5, pt_weight=0.1)
    tr = Trainer(cfg, digits8)
    G0, D0 = copy.deepcopy(tr.G), copy.deepcopy(tr.D)
    gen = torch.Generator().manual_seed(cfg.seed)
    idx = torch.randint(len(digits8), (8,), generator=gen)
    z_d, z_g = bl.sample_z(8, 4, generator=gen), bl.sample_z(8, 4, generator=gen)
    logs = tr.train_step()
    with torch.no_grad():
        e_real = (digits8[idx] - D0(digits8[idx])).abs().flatten(1).mean(1)
        fake_d = G0(z_d)
        e_fake = (fake_d - D0(fake_d)).abs().flatten(1).mean(1)
        fake_g = G0(z_g)
        h = tr.D.encode(fake_g)
        e_g = (fake_g - tr.D.decode(h)).abs().flatten(1).mean(1).mean()
        n = len(h)
        cos = [[float(h[i] @ h[j] / (h[i].norm() * h[j].norm())) for j in range(n)] for i in range(n)]
        f_pt = sum(cos[i][j] ** 2 for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    assert logs["loss_real"] == pytest.approx(float(e_real.mean()), rel=1e-5)
    assert logs["hinge"] == pytest.approx(float((0.5 - e_fake).clamp_min(0).mean()), rel=1e-5, abs=1e-7)
    assert logs["loss_d"] == pytest.approx(float(e_real.mean() + (0.5 - e_fake).clamp_min(0).mean()), rel=1e-5)
    assert logs["pt"] == pytest.approx(f_pt, rel=1e-4)
    assert logs["loss_g"] == pytest.approx(float(e_g) + 0.1 * f_pt, rel=1e-4)
    assert "k" not in tr.history and "m_global" not in tr.history and "m_began" in tr.history


RESUME_CASES = {
    # the paper's halving acts across the resume point (patience 5), and so do the vanishing residuals
    "began": dict(vanishing_residual=True, vanishing_steps=30, lr_decay=0.5, lr_patience=5),
    "ebgan": dict(objective="ebgan", vanishing_residual=True, vanishing_steps=30),
    "began, shift and weight average": dict(shift=2, ema=0.9),
    "points, began": dict(data_dim=2, mlp_hidden=16, z_dim=4, h_dim=1, batch_size=32),
    "points, ebgan": dict(objective="ebgan", data_dim=2, mlp_hidden=16, z_dim=4, h_dim=1, batch_size=32),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_exact_resume(tmp_path, digits8, tiny_config, case):
    """40 steps straight equal 20 steps, a checkpoint, a fresh trainer and 20 more: bit for bit,
    weights, the average, k, the learning rate, the history and the samples."""
    cfg = tiny_config(**RESUME_CASES[case])
    data = bl.mixture_modes("ring").repeat(40, 1) if cfg.data_dim else digits8
    straight = Trainer(cfg, data)
    straight.train(40, progress=False)
    first = Trainer(cfg, data, run_dir=tmp_path / "run")
    first.train(20, progress=False)  # saves at the end
    resumed = Trainer.from_checkpoint(tmp_path / "run", data)
    assert resumed.step == 20
    resumed.train(40, progress=False)  # up to 40 steps in all
    a, b = straight.state_dict(), resumed.state_dict()
    for net in ("generator", "discriminator", "generator_ema"):
        assert all(torch.equal(a[net][n], b[net][n]) for n in a[net]), net
    assert (a["k"], a["lr"], a["step"]) == (b["k"], b["lr"], b["step"])
    assert torch.equal(straight.sample(16, seed=1), resumed.sample(16, seed=1))
    for key in straight.history.keys():
        x, y = straight.history[key], resumed.history[key]
        assert ((x == y) | (torch.tensor(x).isnan() & torch.tensor(y).isnan()).numpy()).all(), key
    if case == "began":
        assert min(straight.history["lr"]) < cfg.lr  # the halving did act


def test_run_dir_contents(tmp_path, digits8, tiny_config):
    tr = Trainer(tiny_config(), digits8, run_dir=tmp_path / "r")
    tr.train(6, progress=False, checkpoint_every=3, callbacks=[every(3, write_samples)])
    files = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"checkpoint.pt", "history.json", "history.csv", "config.json", "samples"} <= files
    assert {p.name for p in (tmp_path / "r" / "samples").iterdir()} == {"step_0000003.png", "step_0000006.png"}
    state = load_checkpoint(tmp_path / "r")
    assert state["step"] == 6 and len(state["history"]["k"]) == 6
    assert not [p for p in (tmp_path / "r").iterdir() if p.name.endswith(".tmp")]


def test_divergence_stops_before_anything_is_applied(tmp_path, digits8, tiny_config):
    tr = Trainer(tiny_config(), digits8, run_dir=tmp_path / "r")
    tr.train(3, progress=False)
    good = load_checkpoint(tmp_path / "r")
    before = params(tr.D)
    with torch.no_grad():
        tr.D.decoder.to_image.bias.fill_(float("nan"))
    poisoned = params(tr.D)
    with pytest.raises(TrainingDiverged, match=r"step 4.*checkpoint"):
        tr.train(6, progress=False)
    assert tr.step == 3
    assert same(params(tr.D)[:-1], poisoned[:-1]) and not same(before, poisoned)
    after = load_checkpoint(tmp_path / "r")
    assert after["step"] == good["step"] == 3
    assert all(torch.isfinite(v).all() for v in after["discriminator"].values())


def test_data_shape_and_range_checked(digits8, tiny_config):
    with pytest.raises(ValueError, match="data must have shape"):
        Trainer(tiny_config(image_size=16), digits8)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        Trainer(tiny_config(), digits8 * 3)
    with pytest.raises(ValueError, match="config must be a TrainConfig"):
        Trainer({"gamma": 0.5}, digits8)


def test_out_dir_that_is_a_file(tmp_path, digits8, tiny_config):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="out must be a folder"):
        Trainer(tiny_config(), digits8, run_dir=f)


def test_history_columns_align():
    h = History()
    h.append({"a": 1})
    h.append({"a": 2, "b": 3})
    assert len(h) == 2 and math.isnan(h["b"][0]) and h["b"][1] == 3
    with pytest.raises(KeyError, match="no column"):
        h["c"]


def test_sampling_is_seeded(digits8, tiny_config):
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


def test_checkpoint_truncated_real_file(tmp_path, digits8, tiny_config):
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
    from began_lite.schedules import PlateauHalver

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


def test_plateau_halver_state_round_trip_mid_window():
    from began_lite.schedules import PlateauHalver

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


def test_compile_wraps_the_step_modules_and_nothing_else(digits8, tiny_config):
    """compile=True hands gan_step compiled G and D; checkpoints and samples keep the plain modules."""
    plain, compiled = Trainer(tiny_config(), digits8), Trainer(tiny_config(compile=True), digits8)
    assert plain.G_step is plain.G and plain.D_step is plain.D
    assert isinstance(compiled.G_step, torch._dynamo.eval_frame.OptimizedModule)
    assert compiled.G_step._orig_mod is compiled.G and compiled.D_step._orig_mod is compiled.D
    assert all(not k.startswith("_orig_mod") for k in compiled.state_dict()["generator"])


def test_cli_compile_flag_reaches_the_config(tmp_path, monkeypatch):
    import began_lite.train as train_module
    from began_lite.__main__ import main

    seen = {}

    class Spy(train_module.Trainer):
        def __init__(self, config, data, **kw):
            seen["compile"] = config.compile
            super().__init__(config.replace(compile=False), data, **kw)  # compiling on a CPU takes a while

    monkeypatch.setattr(train_module, "Trainer", Spy)
    assert main(["train", "--dataset", "digits", "--image-size", "8", "--filters", "4", "--steps", "1", "--compile",
                 "--device", "cpu", "--profile", "quick", "--no-progress", "--out", str(tmp_path / "r")]) == 0
    assert seen["compile"] is True


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
    for e, p in zip(expected, averaged.sampler.parameters()):
        assert torch.allclose(e, p, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(plain.G.parameters(), averaged.G.parameters()))
