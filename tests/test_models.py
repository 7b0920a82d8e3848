"""The paper's networks (BEGAN §3.5, Fig. 1): shapes at every size, architecture by hand, options."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from began_lite.config import TrainConfig
from began_lite.models import (Decoder, Discriminator, Encoder, Generator, MLPDiscriminator, MLPGenerator,
                               count_parameters, num_scales, sample_z)

SIZES = [8, 16, 32, 64, 128]
N, H, Z = 4, 8, 8  # small filters n and N_h = N_z to keep the tests fast


def small_config(size: int = 16, channels: int = 1, **kw) -> TrainConfig:
    return TrainConfig(image_size=size, channels=channels, filters=N, h_dim=H, z_dim=Z, repeat=2, **kw)


def scales_of(size: int) -> int:
    return {8: 0, 16: 1, 32: 2, 64: 3, 128: 4}[size]


def up2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling by 2, written out: every pixel becomes a 2x2 block."""
    return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


# --------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_every_size(size, channels):
    torch.manual_seed(0)
    cfg = small_config(size, channels)
    G, D = Generator(cfg), Discriminator(cfg)
    z = sample_z(2, Z)
    x = G(z)
    assert x.shape == (2, channels, size, size)
    assert D(x).shape == x.shape
    assert D.encode(x).shape == (2, H)
    assert D.decode(D.encode(x)).shape == x.shape
    assert torch.isfinite(D(x)).all()


@pytest.mark.parametrize("size", [8, 16, 32])
def test_parameter_count_by_hand(size):
    # Derived from Fig. 1, not from the code: a 3x3 conv c_in -> c_out has 9 c_in c_out + c_out parameters.
    s, n, C = scales_of(size), N, 3
    conv = lambda cin, cout: 9 * cin * cout + cout  # noqa: E731
    decoder = (Z + 1) * 64 * n + (s + 1) * 2 * conv(n, n) + conv(n, C)
    widths = [n * (i + 1) for i in range(s + 1)]
    encoder = (conv(C, n) + sum(2 * conv(w, w) for w in widths)
               + sum(conv(widths[i], widths[i + 1]) for i in range(s)) + (widths[-1] * 64 + 1) * H)
    cfg = small_config(size, C)
    assert count_parameters(Generator(cfg)) == decoder
    assert count_parameters(Discriminator(cfg)) == encoder + decoder  # N_h = N_z here


def test_parameter_count_8x8_by_hand():
    # Generator at 8x8, n=4, N_z=8, one channel: fc 8*256+256, two convs 4->4 (148 each), last conv 4->1 (37).
    assert count_parameters(Generator(small_config(8, 1))) == 2304 + 2 * 148 + 37


# --------------------------------------------------------------------------- architecture
@pytest.mark.parametrize("size", [16, 32, 64])
def test_encoder_width_grows_n_2n_3n(size):
    enc = Discriminator(small_config(size)).encoder
    s = scales_of(size)
    assert enc.stem.out_channels == N
    for i, block in enumerate(enc.blocks):
        assert [c.out_channels for c in block.convs] == [(i + 1) * N] * 2
    assert [d.out_channels for d in enc.down] == [(i + 2) * N for i in range(s)]
    assert all(d.stride == (2, 2) for d in enc.down)
    assert enc.fc.in_features == (s + 1) * N * 8 * 8 and enc.fc.out_features == H


@pytest.mark.parametrize("size", SIZES)
def test_no_normalisation_or_dropout_anywhere(size):
    cfg = small_config(size, skip=True, vanishing_residual=True)
    forbidden = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm,
                 nn.LayerNorm, nn.modules.dropout._DropoutNd)
    for model in (Generator(cfg), Discriminator(cfg), MLPGenerator(), MLPDiscriminator()):
        kinds = {type(m) for m in model.modules()}
        assert not any(issubclass(k, forbidden) for k in kinds), kinds


@pytest.mark.parametrize("size", [8, 16, 32])
def test_elu_count(size, monkeypatch):
    # ELU after every 3x3 conv except the last one of the decoder: decoder (s+1)*repeat,
    # encoder 1 (stem) + (s+1)*repeat + s (the stride-2 convs).
    calls = []
    real_elu = F.elu

    def counting_elu(x, *a, **k):
        calls.append(x.shape)
        return real_elu(x, *a, **k)

    monkeypatch.setattr(F, "elu", counting_elu)
    s = scales_of(size)
    cfg = small_config(size)
    G, D = Generator(cfg), Discriminator(cfg)
    G(sample_z(2, Z))
    assert len(calls) == (s + 1) * 2
    calls.clear()
    D(torch.zeros(2, 1, size, size))
    assert len(calls) == (1 + (s + 1) * 2 + s) + (s + 1) * 2


def test_elu_changes_the_output(monkeypatch):
    # The nonlinearity really is ELU: swapping it for ReLU changes the output.
    torch.manual_seed(0)
    G = Generator(small_config(16))
    z = sample_z(3, Z, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = G(z)
        manual_relu = F.relu
        monkeypatch.setattr(F, "elu", lambda x, *a, **k: manual_relu(x))
        assert not torch.allclose(G(z), out)


def test_last_layer_has_no_activation():
    torch.manual_seed(0)
    G = Generator(small_config(16))
    seen = {}
    G.decoder.to_image.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    out = G(sample_z(2, Z))
    assert torch.equal(out, seen["out"])


def test_upsampling_is_nearest():
    torch.manual_seed(0)
    dec = Generator(small_config(32)).decoder
    outs, ins = [], []
    for b in dec.blocks[:-1]:
        b.register_forward_hook(lambda m, i, o: outs.append(o))
    for b in dec.blocks[1:]:
        b.register_forward_pre_hook(lambda m, i: ins.append(i[0]))
    dec(sample_z(2, Z))
    assert len(outs) == len(ins) == 2
    for o, i in zip(outs, ins):
        assert torch.equal(i, up2(o))


# --------------------------------------------------------------------------- tanh output (a deviation)
def test_tanh_output_bounds_both_decoders_and_leaves_the_weights_alone():
    torch.manual_seed(0)
    plain_G, plain_D = Generator(small_config(16)), Discriminator(small_config(16))
    tanh_G, tanh_D = Generator(small_config(16, tanh_output=True)), Discriminator(small_config(16, tanh_output=True))
    tanh_G.load_state_dict(plain_G.state_dict())  # same parameters: the tanh adds none
    tanh_D.load_state_dict(plain_D.state_dict())
    with torch.no_grad():  # scale the last layers up so that the plain outputs leave [-1, 1]
        for m in (plain_G, plain_D, tanh_G, tanh_D):
            m.decoder.to_image.weight.mul_(50.0)
    z, x = sample_z(8, Z), torch.rand(8, 1, 16, 16) * 2 - 1
    g, d = plain_G(z), plain_D(x)
    assert g.abs().max() > 1 and d.abs().max() > 1  # without the flag: unbounded, as before
    assert torch.equal(tanh_G(z), torch.tanh(g)) and torch.equal(tanh_D(x), torch.tanh(d))
    assert tanh_G(z).abs().max() < 1 and tanh_D(x).abs().max() < 1


def test_tanh_output_is_off_by_default_and_not_on_the_encoder():
    assert TrainConfig().tanh_output is False
    assert Generator(small_config(8)).decoder.tanh_output is False
    D = Discriminator(small_config(8, tanh_output=True))
    assert D.decoder.tanh_output is True and not hasattr(D.encoder, "tanh_output")


def test_decoder_tanh_output_must_be_a_bool():
    with pytest.raises(ValueError, match=r"^tanh_output must be True or False"):
        Decoder(4, image_size=8, channels=1, filters=4, repeat=1, tanh_output="yes")


# --------------------------------------------------------------------------- skip connections
@pytest.mark.parametrize("size", [8, 16, 32, 64])
def test_skip_adds_n_input_channels_per_scale(size):
    s = scales_of(size)
    plain, skip = small_config(size), small_config(size, skip=True)
    extra = s * 9 * N * N  # the first conv of each upsampled scale sees 2n channels instead of n
    assert count_parameters(Generator(skip)) - count_parameters(Generator(plain)) == extra
    assert count_parameters(Discriminator(skip)) - count_parameters(Discriminator(plain)) == extra
    dec = Generator(skip).decoder
    assert [b.convs[0].in_channels for b in dec.blocks] == [N] + [2 * N] * s


def test_skip_concatenates_upsampled_first_tensor():
    torch.manual_seed(0)
    dec = Generator(small_config(32, skip=True)).decoder
    z = sample_z(2, Z)
    h0 = dec.fc(z).view(2, N, 8, 8)
    ins = []
    for b in dec.blocks[1:]:
        b.register_forward_pre_hook(lambda m, i: ins.append(i[0]))
    dec(z)
    assert torch.equal(ins[0][:, N:], up2(h0))
    assert torch.equal(ins[1][:, N:], up2(up2(h0)))


# --------------------------------------------------------------------------- vanishing residual
def manual_decoder(dec: Decoder, v: torch.Tensor, carry: float) -> torch.Tensor:
    """The decoder written out with x <- carry x + (1 - carry) elu(conv(x)) after each block's first conv."""
    x = dec.fc(v).view(v.shape[0], N, 8, 8)
    for i, block in enumerate(dec.blocks):
        for j, conv in enumerate(block.convs):
            y = F.elu(conv(x))
            x = y if j == 0 else carry * x + (1 - carry) * y
        if i < len(dec.blocks) - 1:
            x = up2(x)
    return dec.to_image(x)


def manual_encoder(enc: Encoder, x: torch.Tensor, carry: float) -> torch.Tensor:
    x = F.elu(enc.stem(x))
    for i, block in enumerate(enc.blocks):
        for j, conv in enumerate(block.convs):
            y = F.elu(conv(x))
            x = y if j == 0 else carry * x + (1 - carry) * y
        if i < len(enc.blocks) - 1:
            x = F.elu(enc.down[i](x))
    return enc.fc(x.flatten(1))


@pytest.mark.parametrize("carry", [0.0, 0.25, 1.0])
def test_vanishing_residual_matches_manual_computation(carry):
    torch.manual_seed(0)
    cfg = small_config(32, vanishing_residual=True)
    G, D = Generator(cfg), Discriminator(cfg)
    G.set_carry(carry)
    D.set_carry(carry)
    z = sample_z(2, Z)
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(G(z), manual_decoder(G.decoder, z, carry))
        torch.testing.assert_close(D.encode(x), manual_encoder(D.encoder, x, carry))
        torch.testing.assert_close(D(x), manual_decoder(D.decoder, manual_encoder(D.encoder, x, carry), carry))


def test_vanishing_residual_carry_one_skips_later_convs():
    # With carry = 1 each block is its first conv: the second conv's weights do not matter.
    torch.manual_seed(0)
    G = Generator(small_config(16, vanishing_residual=True))
    G.set_carry(1.0)
    z = sample_z(2, Z)
    with torch.no_grad():
        before = G(z)
        for block in G.decoder.blocks:
            block.convs[1].weight.add_(1.0)
        assert torch.equal(G(z), before)
        G.set_carry(0.0)
        assert not torch.allclose(G(z), before)


def test_vanishing_residual_carry_zero_is_the_plain_network():
    torch.manual_seed(0)
    vr = Discriminator(small_config(16, vanishing_residual=True))
    plain = Discriminator(small_config(16))
    plain.load_state_dict(vr.state_dict())
    assert count_parameters(vr) == count_parameters(plain)  # the option adds no parameters
    x = torch.rand(2, 1, 16, 16)
    vr.set_carry(0.0)
    with torch.no_grad():
        reference = plain(x)
        assert torch.equal(vr(x), reference)
        vr.set_carry(1.0)
        assert not torch.allclose(vr(x), reference)
        plain.set_carry(1.0)  # without the option, carry is ignored
        assert torch.equal(plain(x), reference)


def test_carry_is_checkpointed():
    D = Discriminator(small_config(16, vanishing_residual=True))
    D.set_carry(0.75)
    state = D.state_dict()
    assert state["encoder.carry"].item() == 0.75 and state["decoder.carry"].item() == 0.75
    other = Discriminator(small_config(16, vanishing_residual=True))
    other.load_state_dict(state)
    assert other.encoder.carry.item() == 0.75


@pytest.mark.parametrize("carry", [-0.1, 1.5, float("nan")])
def test_set_carry_bad_values(carry):
    with pytest.raises(ValueError, match=r"^carry must be in \[0, 1\]"):
        Generator(small_config(8)).set_carry(carry)


# --------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (2, 1, 8, 8), (2, 1, 16, 8), (1, 16, 16), (2, 1, 32, 32)])
def test_encoder_wrong_input_shape_refused(shape):
    D = Discriminator(small_config(16, channels=1))
    with pytest.raises(ValueError, match=r"^x must have shape \(B, 1, 16, 16\)"):
        D.encode(torch.zeros(shape))
    with pytest.raises(ValueError, match=r"^x must have shape"):
        D(torch.zeros(shape))


@pytest.mark.parametrize("shape", [(2, Z + 1), (Z,), (2, Z, 1)])
def test_generator_wrong_z_shape_refused(shape):
    with pytest.raises(ValueError, match=r"^z must have shape"):
        Generator(small_config(8))(torch.zeros(shape))


@pytest.mark.parametrize("size", [4, 12, 48, 7])
def test_num_scales_bad_size(size):
    with pytest.raises(ValueError, match=r"^image_size"):
        num_scales(size)


def test_num_scales_by_hand():
    assert [num_scales(s) for s in SIZES] == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- sample_z
def test_sample_z_shape_range_and_distribution():
    z = sample_z(5000, 4, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5000, 4) and z.dtype == torch.float32
    assert z.min() >= -1.0 and z.max() <= 1.0
    # U[-1, 1]: mean 0, variance 1/3
    assert abs(z.mean().item()) < 0.02
    assert z.var().item() == pytest.approx(1 / 3, rel=0.03)
    assert z.min() < -0.99 and z.max() > 0.99


def test_sample_z_seeded_reproducible():
    a = sample_z(7, 3, generator=torch.Generator().manual_seed(42))
    b = sample_z(7, 3, generator=torch.Generator().manual_seed(42))
    c = sample_z(7, 3, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("n, z_dim, pattern", [
    (0, 4, r"^n must"), (-1, 4, r"^n must"), (2.0, 4, r"^n must"), (True, 4, r"^n must"),
    (2, 0, r"^z_dim must"), (2, 1.5, r"^z_dim must"),
])
def test_sample_z_bad_arguments(n, z_dim, pattern):
    with pytest.raises(ValueError, match=pattern):
        sample_z(n, z_dim)


# --------------------------------------------------------------------------- 2-D toys
def test_mlp_shapes():
    torch.manual_seed(0)
    G = MLPGenerator(z_dim=3, hidden=16, depth=2)
    D = MLPDiscriminator(h_dim=5, hidden=16, depth=2)
    pts = G(torch.rand(10, 3))
    assert pts.shape == (10, 2)
    assert D(pts).shape == (10, 2)
    assert D.encode(pts).shape == (10, 5)
    # depth hidden layers of width hidden, ELU between, none after the last linear map
    linears = [m for m in G.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 16), (16, 16), (16, 2)]
    assert [type(m) for m in G.net].count(nn.ELU) == 2 and not isinstance(G.net[-1], nn.ELU)


# --------------------------------------------------------------------------- GPU
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_models_run_on_cuda():
    torch.manual_seed(0)
    cfg = small_config(32, 3, skip=True, vanishing_residual=True)
    G, D = Generator(cfg), Discriminator(cfg)
    cpu_z = sample_z(2, Z, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu_out = D(G(cpu_z))
        G.cuda(), D.cuda()
        z = sample_z(2, Z, generator=torch.Generator().manual_seed(0), device="cuda")
        out = D(G(z))
    assert out.device.type == "cuda" and out.shape == (2, 3, 32, 32)
    torch.testing.assert_close(out.cpu(), cpu_out, rtol=1e-2, atol=1e-2)  # TF32 convs on GPU
