"""The paper's networks (BEGAN §3.5, Fig. 1), for any power-of-two image size from 8 to 128.

* The **decoder** maps a vector (z for the generator, h inside the discriminator) through
  a fully connected layer to an 8x8 tensor of n channels, then per scale: ``repeat`` 3x3
  convolutions with ELU, nearest-neighbour upsampling by 2; at full size ``repeat`` more
  convolutions and a last 3x3 convolution to the image's channels (no activation; a tanh
  with ``tanh_output``).
* The **encoder** mirrors it: a 3x3 convolution to n channels, then per scale ``repeat``
  convolutions and a stride-2 3x3 convolution that halves the size while the width grows
  n, 2n, 3n, ...; at 8x8 ``repeat`` convolutions, then a fully connected map to h.
* No nonlinearity on the maps to and from h; no batch norm, no dropout. The **generator** is a
  decoder; the **discriminator** an autoencoder, encoder -> h -> decoder.

Options from §3.5: ``skip`` concatenates the upsampled first 8x8 tensor after every
upsampling; ``vanishing_residual`` makes each convolution after the first in a block
``x <- carry * x + (1 - carry) * elu(conv(x))`` where the trainer lowers ``carry`` from 1 to 0.

Deviation: ``tanh_output`` (on in the quick profile only) puts a tanh on the last convolution
of every decoder, G's and D's, so images and reconstructions lie in (-1, 1) like the data; the
paper's decoder ends without an activation. It was adopted when short runs without it collapsed
to 3-7 classes on an older profile; its arm was not remade on today's (data/results/README.md).

Points (chapter 7's 2-D mixtures) use MLPs in the same roles; :func:`build_generator` and
:func:`build_discriminator` pick by ``config.data_dim`` (0 = images).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig

__all__ = ["Generator", "Discriminator", "Encoder", "Decoder", "MLPGenerator", "MLPDiscriminator",
           "build_generator", "build_discriminator", "sample_z", "count_parameters", "num_scales"]


def num_scales(image_size: int) -> int:
    """How many times the 8x8 base is doubled to reach ``image_size`` (0 at 8, 4 at 128)."""
    s = int(math.log2(image_size // 8)) if image_size >= 8 else -1
    if image_size < 8 or 8 * 2**s != image_size:
        raise ValueError(f"image_size must be a power of two in [8, 128], got {image_size!r}")
    return s


def sample_z(n: int, z_dim: int, *, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """z ~ U[-1, 1]^{N_z} (BEGAN §3.5), shape ``(n, z_dim)``. Drawn on the CPU so seeds agree across devices."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or z_dim < 1:
        raise ValueError(f"z_dim must be an integer >= 1, got {z_dim!r}")
    z = torch.rand(n, z_dim, generator=generator) * 2 - 1
    return z.to(device)


def count_parameters(module: nn.Module) -> int:
    """The number of weights of ``module`` (every parameter's elements, trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def _positive(**sizes) -> None:
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        return torch.is_autocast_enabled()


def _check_input(name: str, x, weight: torch.Tensor, shape: str, ok_shape) -> None:
    """A clear ValueError, rather than a matmul error deep inside, for a wrong input."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor {shape}, got {type(x).__name__}")
    if not ok_shape(x):
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if x.device != weight.device:
        raise ValueError(f"{name} is on {x.device} but the network is on {weight.device}; move one of them with .to()")
    # Under autocast a bfloat16/float16 input is expected; otherwise the dtypes must agree.
    if x.dtype != weight.dtype and not (x.is_floating_point() and _autocast_on(x.device.type)):
        raise ValueError(f"{name} must have the network's dtype {weight.dtype}, got {x.dtype}")


def _check_config(config) -> None:
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")


class _Block(nn.Module):
    """``repeat`` 3x3 convolutions with ELU at one scale, optionally with vanishing residuals."""

    def __init__(self, c_in: int, c_out: int, repeat: int, vanishing_residual: bool):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1) for i in range(repeat))
        self.vanishing_residual = vanishing_residual

    def forward(self, x: torch.Tensor, carry: float) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            y = F.elu(conv(x))
            # The first convolution may change the width, so only later ones carry x over.
            x = carry * x + (1.0 - carry) * y if (self.vanishing_residual and i > 0 and carry > 0) else y
        return x


class _Carry(nn.Module):
    """Holds the vanishing-residual carry (1 -> 0 during early training; 0 = plain network)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("carry", torch.zeros(()), persistent=True)
        # forward reads this Python copy of the buffer: reading a GPU tensor's value would
        # stall the host until the GPU catches up, several times a step.
        self._carry = 0.0
        self.register_load_state_dict_post_hook(_Carry._after_load)

    @staticmethod
    def _after_load(module: "_Carry", incompatible_keys) -> None:
        module._carry = float(module.carry)

    def set_carry(self, carry: float) -> None:
        if not 0.0 <= float(carry) <= 1.0:
            raise ValueError(f"carry must be in [0, 1], got {carry!r}")
        self.carry.fill_(float(carry))
        self._carry = float(np.float32(carry))  # the value the float32 buffer holds


class Decoder(_Carry):
    """vector (B, in_dim) -> image (B, channels, image_size, image_size)."""

    def __init__(self, in_dim: int, *, image_size: int, channels: int, filters: int, repeat: int,
                 skip: bool = False, vanishing_residual: bool = False, tanh_output: bool = False):
        super().__init__()
        _positive(in_dim=in_dim, channels=channels, filters=filters, repeat=repeat)
        if not isinstance(tanh_output, bool):
            raise ValueError(f"tanh_output must be True or False, got {tanh_output!r}")
        self.in_dim, self.tanh_output = in_dim, tanh_output
        self.scales, self.filters, self.skip = num_scales(image_size), filters, skip
        self.fc = nn.Linear(in_dim, filters * 8 * 8)  # no nonlinearity (§3.5)
        widths_in = [filters] + [2 * filters if skip else filters] * self.scales
        self.blocks = nn.ModuleList(_Block(c, filters, repeat, vanishing_residual) for c in widths_in)
        self.to_image = nn.Conv2d(filters, channels, 3, padding=1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        _check_input("v", v, self.fc.weight, f"(B, {self.in_dim})", lambda t: t.ndim == 2 and t.shape[1] == self.in_dim)
        carry = self._carry
        x = self.fc(v).view(v.shape[0], self.filters, 8, 8)  # (B, n, 8, 8)
        h0 = x
        for i, block in enumerate(self.blocks):
            x = block(x, carry)
            if i < self.scales:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, n, 2H, 2W)
                if self.skip:
                    x = torch.cat([x, F.interpolate(h0, size=x.shape[-2:], mode="nearest")], dim=1)
        x = self.to_image(x)  # (B, C, S, S)
        return torch.tanh(x) if self.tanh_output else x


class Encoder(_Carry):
    """image (B, channels, S, S) -> h (B, h_dim)."""

    def __init__(self, h_dim: int, *, image_size: int, channels: int, filters: int, repeat: int,
                 vanishing_residual: bool = False):
        super().__init__()
        _positive(h_dim=h_dim, channels=channels, filters=filters, repeat=repeat)
        self.scales, self.image_size, self.channels = num_scales(image_size), image_size, channels
        self.stem = nn.Conv2d(channels, filters, 3, padding=1)
        widths = [filters * (i + 1) for i in range(self.scales + 1)]  # n, 2n, 3n, ...
        self.blocks = nn.ModuleList(_Block(w, w, repeat, vanishing_residual) for w in widths)
        self.down = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1) for i in range(self.scales))
        self.fc = nn.Linear(widths[-1] * 8 * 8, h_dim)  # no nonlinearity (§3.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        _check_input("x", x, self.stem.weight, f"(B, {expected[0]}, {expected[1]}, {expected[2]})",
                     lambda t: t.ndim == 4 and tuple(t.shape[1:]) == expected)
        carry = self._carry
        x = F.elu(self.stem(x))
        for i, block in enumerate(self.blocks):
            x = block(x, carry)
            if i < self.scales:
                x = F.elu(self.down[i](x))  # stride-2 subsampling, width grows by n
        return self.fc(x.flatten(1))  # (B, h_dim)


class Generator(nn.Module):
    """G: z (B, N_z) in [-1, 1] -> image (B, C, S, S). The paper's decoder (Fig. 1)."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        _check_config(config)
        self.config = config
        self.decoder = Decoder(config.z_dim, image_size=config.image_size, channels=config.channels,
                               filters=config.filters, repeat=config.repeat, skip=config.skip,
                               vanishing_residual=config.vanishing_residual, tanh_output=config.tanh_output)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_input("z", z, self.decoder.fc.weight, f"(B, {self.config.z_dim})",
                     lambda t: t.ndim == 2 and t.shape[1] == self.config.z_dim)
        return self.decoder(z)

    def set_carry(self, carry: float) -> None:
        self.decoder.set_carry(carry)


class Discriminator(nn.Module):
    """D: the autoencoder, image -> h (B, N_h) -> reconstruction D(x) of the same shape as x."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        _check_config(config)
        self.config = config
        kw = dict(image_size=config.image_size, channels=config.channels, filters=config.filters,
                  repeat=config.repeat, vanishing_residual=config.vanishing_residual)
        self.encoder = Encoder(config.h_dim, **kw)
        self.decoder = Decoder(config.h_dim, skip=config.skip, tanh_output=config.tanh_output, **kw)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """h = Enc(x), shape (B, N_h): the embedding EBGAN's pulling-away term uses."""
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def set_carry(self, carry: float) -> None:
        self.encoder.set_carry(carry)
        self.decoder.set_carry(carry)


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers between ``sizes``, an ELU after each but the last."""
    layers = [m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ELU())]
    return nn.Sequential(*layers[:-1])


class MLPGenerator(nn.Module):
    """G for point data: z (B, N_z) -> point (B, out_dim), ``depth`` ELU hidden layers, a linear output."""

    def __init__(self, z_dim: int = 2, hidden: int = 128, depth: int = 3, out_dim: int = 2):
        super().__init__()
        _positive(z_dim=z_dim, hidden=hidden, depth=depth, out_dim=out_dim)
        self.z_dim = z_dim
        self.net = _mlp([z_dim] + [hidden] * depth + [out_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_input("z", z, self.net[0].weight, f"(B, {self.z_dim})", lambda t: t.ndim == 2 and t.shape[1] == self.z_dim)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """D for point data: an MLP autoencoder, point (B, in_dim) -> h (B, N_h) -> point (B, in_dim).

    Encoder and decoder each have ``depth`` ELU hidden layers; the maps into and out of h are
    linear, as in the paper's networks (§3.5)."""

    def __init__(self, in_dim: int = 2, h_dim: int = 8, hidden: int = 128, depth: int = 2):
        super().__init__()
        _positive(in_dim=in_dim, h_dim=h_dim, hidden=hidden, depth=depth)
        self.in_dim, self.h_dim = in_dim, h_dim
        self.encoder = _mlp([in_dim] + [hidden] * depth + [h_dim])
        self.decoder = _mlp([h_dim] + [hidden] * depth + [in_dim])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """h = Enc(x), shape (B, N_h): the embedding EBGAN's pulling-away term uses."""
        _check_input("x", x, self.encoder[0].weight, f"(B, {self.in_dim})",
                     lambda t: t.ndim == 2 and t.shape[1] == self.in_dim)
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        _check_input("h", h, self.decoder[0].weight, f"(B, {self.h_dim})",
                     lambda t: t.ndim == 2 and t.shape[1] == self.h_dim)
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def build_generator(config: TrainConfig) -> nn.Module:
    """G for ``config``: the paper's decoder for images (``data_dim == 0``), else an MLP to points (B, data_dim)."""
    if config.data_dim:
        return MLPGenerator(z_dim=config.z_dim, hidden=config.mlp_hidden, depth=3, out_dim=config.data_dim)
    return Generator(config)


def build_discriminator(config: TrainConfig) -> nn.Module:
    """D for ``config``: the paper's autoencoder for images, else an MLP autoencoder with an N_h bottleneck."""
    if config.data_dim:
        return MLPDiscriminator(in_dim=config.data_dim, h_dim=config.h_dim, hidden=config.mlp_hidden, depth=2)
    return Discriminator(config)
