"""The paper's networks (BEGAN §3.5, Fig. 1), for any power-of-two image size from 8 to 128.

* The **decoder** maps a vector (z for the generator, h inside the discriminator) through
  a fully connected layer to an 8x8 tensor of n channels, then per scale: ``repeat`` 3x3
  convolutions with ELU, nearest-neighbour upsampling by 2; at full size ``repeat`` more
  convolutions and a last 3x3 convolution to the image's channels (no activation).
* The **encoder** mirrors it: a 3x3 convolution to n channels, then per scale ``repeat``
  convolutions and a stride-2 3x3 convolution that halves the size while the width grows
  n, 2n, 3n, ...; at 8x8 ``repeat`` convolutions, then a fully connected map to h.
* The fully connected maps to and from h have no nonlinearity; no batch norm, no dropout.
* The **generator** is a decoder; the **discriminator** is an autoencoder, encoder -> h -> decoder.

Options from §3.5: ``skip`` concatenates the upsampled first 8x8 tensor after every
upsampling; ``vanishing_residual`` makes each convolution after the first in a block
``x <- carry * x + (1 - carry) * elu(conv(x))`` where the trainer lowers ``carry`` from 1 to 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig

__all__ = ["Generator", "Discriminator", "Encoder", "Decoder", "MLPGenerator", "MLPDiscriminator",
           "sample_z", "count_parameters", "num_scales"]


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
    return sum(p.numel() for p in module.parameters())


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

    def set_carry(self, carry: float) -> None:
        if not 0.0 <= float(carry) <= 1.0:
            raise ValueError(f"carry must be in [0, 1], got {carry!r}")
        self.carry.fill_(float(carry))


class Decoder(_Carry):
    """vector (B, in_dim) -> image (B, channels, image_size, image_size)."""

    def __init__(self, in_dim: int, *, image_size: int, channels: int, filters: int, repeat: int,
                 skip: bool = False, vanishing_residual: bool = False):
        super().__init__()
        self.scales, self.filters, self.skip = num_scales(image_size), filters, skip
        self.fc = nn.Linear(in_dim, filters * 8 * 8)  # no nonlinearity (§3.5)
        widths_in = [filters] + [2 * filters if skip else filters] * self.scales
        self.blocks = nn.ModuleList(_Block(c, filters, repeat, vanishing_residual) for c in widths_in)
        self.to_image = nn.Conv2d(filters, channels, 3, padding=1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        carry = float(self.carry)
        x = self.fc(v).view(v.shape[0], self.filters, 8, 8)  # (B, n, 8, 8)
        h0 = x
        for i, block in enumerate(self.blocks):
            x = block(x, carry)
            if i < self.scales:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, n, 2H, 2W)
                if self.skip:
                    x = torch.cat([x, F.interpolate(h0, size=x.shape[-2:], mode="nearest")], dim=1)
        return self.to_image(x)


class Encoder(_Carry):
    """image (B, channels, S, S) -> h (B, h_dim)."""

    def __init__(self, h_dim: int, *, image_size: int, channels: int, filters: int, repeat: int,
                 vanishing_residual: bool = False):
        super().__init__()
        self.scales, self.image_size, self.channels = num_scales(image_size), image_size, channels
        self.stem = nn.Conv2d(channels, filters, 3, padding=1)
        widths = [filters * (i + 1) for i in range(self.scales + 1)]  # n, 2n, 3n, ...
        self.blocks = nn.ModuleList(_Block(w, w, repeat, vanishing_residual) for w in widths)
        self.down = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1) for i in range(self.scales))
        self.fc = nn.Linear(widths[-1] * 8 * 8, h_dim)  # no nonlinearity (§3.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must have shape (B, {expected[0]}, {expected[1]}, {expected[2]}), got {tuple(x.shape)}")
        carry = float(self.carry)
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
        self.config = config
        self.decoder = Decoder(config.z_dim, image_size=config.image_size, channels=config.channels,
                               filters=config.filters, repeat=config.repeat, skip=config.skip,
                               vanishing_residual=config.vanishing_residual)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"z must have shape (B, {self.config.z_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def set_carry(self, carry: float) -> None:
        self.decoder.set_carry(carry)


class Discriminator(nn.Module):
    """D: the autoencoder, image -> h (B, N_h) -> reconstruction D(x) of the same shape as x."""

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config
        kw = dict(image_size=config.image_size, channels=config.channels, filters=config.filters,
                  repeat=config.repeat, vanishing_residual=config.vanishing_residual)
        self.encoder = Encoder(config.h_dim, **kw)
        self.decoder = Decoder(config.h_dim, skip=config.skip, **kw)

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


# --------------------------------------------------------------------------- 2-D toys
def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ELU())
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """G for 2-D point data: z (B, N_z) -> point (B, 2), ELU hidden layers."""

    def __init__(self, z_dim: int = 2, hidden: int = 128, depth: int = 3, out_dim: int = 2):
        super().__init__()
        self.z_dim = z_dim
        self.net = _mlp([z_dim] + [hidden] * depth + [out_dim])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """D for 2-D point data: an MLP autoencoder, point (B, 2) -> h (B, N_h) -> point (B, 2)."""

    def __init__(self, in_dim: int = 2, h_dim: int = 8, hidden: int = 128, depth: int = 2):
        super().__init__()
        self.encoder = _mlp([in_dim] + [hidden] * depth + [h_dim])
        self.decoder = _mlp([h_dim] + [hidden] * depth + [in_dim])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
