"""Differentiable augmentation (began_lite.augment): the shift against a loop, its gradient, its
wiring into the step (D sees T of every image, G's gradient goes through T) and exact resume."""
import pytest
import torch

import began_lite as bl
from began_lite.augment import RandomShift
from began_lite.train import Trainer


def shifted_by_loop(x, dy, dx, s, fill):
    """out[b, :, i, j] = x[b, :, i + dy_b - s, j + dx_b - s] where that pixel exists, else fill."""
    B, C, H, W = x.shape
    out = torch.full_like(x, fill)
    for b in range(B):
        for i in range(H):
            for j in range(W):
                si, sj = i + int(dy[b]) - s, j + int(dx[b]) - s
                if 0 <= si < H and 0 <= sj < W:
                    out[b, :, i, j] = x[b, :, si, sj]
    return out


@pytest.mark.parametrize("s", [1, 2, 3])
def test_shift_moves_each_image_by_its_own_offset(s):
    x = torch.randn(6, 2, 8, 8)
    T = RandomShift(s, seed=7, fill=-1.0)
    dy, dx = torch.randint(0, 2 * s + 1, (2, 6), generator=torch.Generator().manual_seed(7))  # T's offsets
    assert torch.equal(T(x), shifted_by_loop(x, dy, dx, s, -1.0))
    assert len({(int(a), int(b)) for a, b in zip(dy, dx)}) > 1  # the images move differently


def test_shift_zero_is_the_identity_and_draws_nothing():
    x = torch.randn(4, 1, 8, 8)
    T = RandomShift(0, seed=0)
    before = T.gen.get_state()
    assert T(x) is x and torch.equal(T.gen.get_state(), before)


def test_gradient_reaches_exactly_the_pixels_that_stay_in_view():
    x = torch.randn(5, 1, 8, 8, requires_grad=True)
    T = RandomShift(2, seed=3)
    dy, dx = torch.randint(0, 5, (2, 5), generator=torch.Generator().manual_seed(3))
    T(x).sum().backward()
    for b in range(5):  # a pixel is in view when its moved position is inside the image
        rows = torch.arange(8) - (int(dy[b]) - 2)
        cols = torch.arange(8) - (int(dx[b]) - 2)
        seen = ((rows >= 0) & (rows < 8))[:, None] & ((cols >= 0) & (cols < 8))[None, :]
        assert torch.equal(x.grad[b, 0], seen.float()), b


def test_state_round_trip_repeats_the_offsets():
    x = torch.randn(4, 1, 8, 8)
    T = RandomShift(2, seed=1)
    T(x)
    state = T.state_dict()
    a = T(x)
    U = RandomShift(2, seed=99)
    U.load_state_dict(state)
    assert torch.equal(U(x), a)


@pytest.mark.parametrize("shift", [-1, 1.5, True, "2"])
def test_bad_shift_is_refused(shift):
    with pytest.raises(ValueError, match=r"^shift must be an integer >= 0"):
        RandomShift(shift, seed=0)


def test_points_are_refused():
    with pytest.raises(ValueError, match=r"^x must be images \(B, C, H, W\), got shape \(4, 2\)"):
        RandomShift(1, seed=0)(torch.randn(4, 2))


def test_step_feeds_d_the_augmented_images_and_g_learns_through_them(digits8, tiny_config):
    """With T = a left-right flip, one D step is Adam on L(T(x)) - k L(T(G(z_D))) by hand, and
    G's gradient is the gradient of L(T(G(z_G))) through T."""
    cfg = tiny_config(k0=0.3)
    flip = lambda v: v.flip(-1)  # noqa: E731  a deterministic T, so both sides see the same images
    ref = Trainer(cfg, digits8)
    real, z_d, z_g = ref._batch()
    D, G, objective = ref.D, ref.G, ref.objective
    with torch.no_grad():
        fake = G(z_d)
    L = lambda v: bl.reconstruction_loss(v, D(v)).mean()  # noqa: E731
    l_real, l_fake = L(flip(real)), L(flip(fake))
    assert abs(l_real.item() - L(real).item()) > 1e-4  # the flip changes what D is scored on
    d_grads = torch.autograd.grad(l_real - 0.3 * l_fake, list(D.parameters()))
    for p in G.parameters():
        p.grad = None
    logs = bl.gan_step(G=G, D=D, opt_d=torch.optim.SGD(D.parameters(), lr=0.0),
                       opt_g=torch.optim.SGD(G.parameters(), lr=0.0), objective=objective, x=real, z_d=z_d, z_g=z_g,
                       T=flip)
    assert logs["loss_real"] == pytest.approx(l_real.item(), rel=1e-6)
    assert logs["loss_fake_d"] == pytest.approx(l_fake.item(), rel=1e-6)
    assert all(torch.allclose(p.grad, g, rtol=1e-5, atol=1e-8) for p, g in zip(D.parameters(), d_grads))
    g_ref = torch.autograd.grad(L(flip(G(z_g))), list(G.parameters()))
    g_plain = torch.autograd.grad(L(G(z_g)), list(G.parameters()))
    assert all(torch.allclose(p.grad, g, rtol=1e-5, atol=1e-8) for p, g in zip(G.parameters(), g_ref))
    assert not all(torch.allclose(p.grad, g, rtol=1e-5, atol=1e-8) for p, g in zip(G.parameters(), g_plain))


def test_shift_zero_changes_nothing_in_a_run(digits8, tiny_config):
    """The paper's BEGAN (shift 0) draws no offsets: the run is the run without augmentation."""
    a = Trainer(tiny_config(), digits8)
    b = Trainer(tiny_config(shift=0), digits8)
    a.train(10, progress=False), b.train(10, progress=False)
    assert a.T is None and b.T is None
    assert all(torch.equal(p, q) for p, q in zip(a.G.parameters(), b.G.parameters()))
    c = Trainer(tiny_config(shift=1), digits8)
    c.train(10, progress=False)
    assert not all(torch.equal(p, q) for p, q in zip(a.G.parameters(), c.G.parameters()))
