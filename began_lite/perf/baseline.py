"""The baseline the benchmark measures our step against: a BEGAN step written the plain way.

:class:`PlainStep` is how most public implementations write the step; ``bench`` reports our
step's speed as a ratio to it (appendix "Benchmarks"), and a test checks that both compute the
same training.
"""
from __future__ import annotations

import torch

from ..config import TrainConfig
from ..device import pick_device, seed_everything
from ..models import Discriminator, Generator

__all__ = ["PlainStep"]


class PlainStep:
    """A BEGAN step written the straightforward way, as in most public implementations: the baseline.

    Real and fake batches go through D in two passes; the G step back-propagates into D's
    weights too (D is not frozen; the next ``zero_grad`` discards them); the losses are read
    with ``.item()`` every step to update k; float32, no fusion, no compilation. Networks, Adam
    and the z_D / z_G draws are the same as :class:`~began_lite.train.Trainer`'s."""

    def __init__(self, config: TrainConfig, data: torch.Tensor):
        self.config, self.device = config, pick_device(config.device)
        seed_everything(config.seed)
        self.G = Generator(config).to(self.device)
        self.D = Discriminator(config).to(self.device)
        self.opt_g, self.opt_d = (torch.optim.Adam(m.parameters(), lr=config.lr, betas=tuple(config.adam_betas))
                                  for m in (self.G, self.D))
        self.data = data.to(self.device)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.k = config.k0

    def __call__(self) -> dict:
        cfg, dev, B = self.config, self.device, self.config.batch_size
        x = self.data[torch.randint(len(self.data), (B,), generator=self.gen).to(dev)]
        z_d = (torch.rand(B, cfg.z_dim, generator=self.gen) * 2 - 1).to(dev)
        z_g = (torch.rand(B, cfg.z_dim, generator=self.gen) * 2 - 1).to(dev)
        self.opt_d.zero_grad()
        fake = self.G(z_d).detach()
        loss_real = torch.mean(torch.abs(x - self.D(x)))
        loss_fake = torch.mean(torch.abs(fake - self.D(fake)))
        (loss_real - self.k * loss_fake).backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        fake = self.G(z_g)
        loss_g = torch.mean(torch.abs(fake - self.D(fake)))
        loss_g.backward()
        self.opt_g.step()
        balance = cfg.gamma * loss_real.item() - loss_g.item()
        self.k = min(max(self.k + cfg.lambda_k * balance, 0.0), 1.0)
        return {"loss_real": loss_real.item(), "loss_fake": loss_g.item(), "k": self.k,
                "m_global": loss_real.item() + abs(balance)}
