"""A class-conditional GAN for small data: projection discriminator with spectral normalisation,
hinge loss, DiffAugment and an EMA generator.

Projection discriminator: Miyato & Koyama 2018 (https://arxiv.org/abs/1802.05637); spectral
normalisation: Miyato et al. 2018 (https://arxiv.org/abs/1802.05957); DiffAugment: Zhao et al. 2020
(https://arxiv.org/abs/2006.10738). Training alternates one discriminator and one generator step
through Lightning manual optimisation; samples come from the EMA copy of the generator.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from synthaug.generators.base import ConditionalGenerator, GeneratorConfig, Randomness, randn, register, update_ema
from synthaug.generators.diffaugment import POLICIES, diff_augment
from synthaug.generators.shapes import num_halvings


@dataclass
class GANConfig(GeneratorConfig):
    latent_dim: int = 64
    generator_channels: int = 32
    discriminator_channels: int = 32
    max_channels: int = 256
    #: comma-separated DiffAugment policy applied to everything the discriminator sees ("" for none)
    diffaugment: str = "color,translation,cutout"
    ema_decay: float = 0.999
    #: weight of the mode-seeking term (Mao et al. 2019): with a few images per class, a conditional
    #: generator otherwise learns to ignore its noise and draws one image per class
    mode_seeking: float = 0.1
    #: give the discriminator the minibatch standard deviation of its features (Karras et al. 2018),
    #: so that a batch of near-identical fakes is easy to tell from real images
    minibatch_std: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("latent_dim", "generator_channels", "discriminator_channels", "max_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.mode_seeking < 0:
            raise ValueError(f"mode_seeking must be >= 0, got {self.mode_seeking}")
        if self.generator_channels % 8:
            raise ValueError(f"generator_channels must be a multiple of 8 (GroupNorm), got {self.generator_channels}")
        unknown = [p for p in filter(None, (p.strip() for p in self.diffaugment.split(","))) if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown DiffAugment policies {unknown}; known: {list(POLICIES)}")
        if min(self.image_shape[1:]) < 4:
            raise ValueError(f"images must be at least 4x4, got {self.image_shape[1:]}")


class GeneratorNetwork(nn.Module):
    """The GAN's generator network, ``(z, labels) -> images in [-1, 1]``: a linear map to a small feature map, then nearest-neighbour
    upsampling blocks mirroring the VAE's halvings, so every supported size is reached exactly."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        c, h, w = config.image_shape
        ups = num_halvings(h, w)
        widths = [min(config.generator_channels * 2**i, config.max_channels) for i in range(ups + 1)][::-1]
        self.start = (widths[0], h >> ups, w >> ups)
        self.embed = nn.Embedding(config.num_classes, config.latent_dim)
        self.project = nn.Linear(2 * config.latent_dim, widths[0] * (h >> ups) * (w >> ups))
        blocks: list[nn.Module] = [nn.GroupNorm(8, widths[0]), nn.ReLU()]
        for w_in, w_out in zip(widths, widths[1:]):
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w_in, w_out, 3, padding=1),
                       nn.GroupNorm(8, w_out), nn.ReLU(), nn.Conv2d(w_out, w_out, 3, padding=1), nn.GroupNorm(8, w_out), nn.ReLU()]  # fmt: skip
        blocks += [nn.Conv2d(widths[-1], c, 3, padding=1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        h = self.project(torch.cat([z, self.embed(labels)], dim=1))
        return self.blocks(h.view(-1, *self.start))  # (B, C0, h0, w0) -> (B, C, H, W)


class ProjectionDiscriminator(nn.Module):
    """``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`` with spectrally normalised layers."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        c, h, w = config.image_shape
        downs = max(num_halvings(h, w), 1)
        widths = [min(config.discriminator_channels * 2**i, config.max_channels) for i in range(downs + 1)]
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(c, widths[0], 3, padding=1)), nn.LeakyReLU(0.2)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [spectral_norm(nn.Conv2d(w_in, w_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
                       spectral_norm(nn.Conv2d(w_out, w_out, 3, padding=1)), nn.LeakyReLU(0.2)]  # fmt: skip
        self.features = nn.Sequential(*layers)
        self.minibatch_std = config.minibatch_std
        self.final = nn.Sequential(
            spectral_norm(nn.Conv2d(widths[-1] + int(config.minibatch_std), widths[-1], 3, padding=1)), nn.LeakyReLU(0.2)
        )
        self.linear = spectral_norm(nn.Linear(widths[-1], 1))
        self.embed = spectral_norm(nn.Embedding(config.num_classes, widths[-1]))

    @staticmethod
    def _minibatch_std(h: Tensor, group: int = 4) -> Tensor:
        """Append one channel: the features' standard deviation across groups of samples, averaged."""
        b, c, height, width = h.shape
        group = max(g for g in range(1, min(group, b) + 1) if b % g == 0)
        std = h.view(group, -1, c, height, width).var(0, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/G,)
        return torch.cat([h, std.repeat(group)[:, None, None, None].expand(b, 1, height, width)], dim=1)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        h = self.features(x)
        if self.minibatch_std:
            h = self._minibatch_std(h)
        phi = self.final(h).sum(dim=(2, 3))  # (B, C) global sum pooling
        return self.linear(phi).squeeze(1) + (self.embed(labels) * phi).sum(1)  # (B,)


def _rename_generator_keys(state_dict: dict[str, Tensor], prefix: str, *args: Any) -> None:
    """Saves made before 0.2 call the generator network ``generator``; load them under its new name."""
    for key in [k for k in state_dict if k.startswith(prefix + "generator.")]:
        state_dict[prefix + "generator_network." + key[len(prefix + "generator.") :]] = state_dict.pop(key)


@register
class ConditionalGAN(ConditionalGenerator):
    """Class-conditional GAN trained with manual optimisation (see :meth:`manual_step`)."""

    family = "gan"
    config_class = GANConfig
    default_lr = 2e-4
    default_steps = 6000
    manual_optimization = True  # two optimisers, stepped in turn

    def __init__(self, config: GANConfig, class_names: Sequence[str] | None = None) -> None:
        super().__init__(config, class_names)
        self.generator_network = GeneratorNetwork(config)
        self.discriminator = ProjectionDiscriminator(config)
        self.ema = copy.deepcopy(self.generator_network).requires_grad_(False).eval()
        self._register_load_state_dict_pre_hook(_rename_generator_keys)

    @property
    def generator(self) -> GeneratorNetwork:
        """Deprecated: the generator network is ``generator_network``."""
        warnings.warn("ConditionalGAN.generator is deprecated; use generator_network", FutureWarning, stacklevel=2)
        return self.generator_network

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        """Generator and discriminator optimisers (Adam with beta1 = 0, as usual for hinge-loss GANs)."""
        return [torch.optim.Adam(self.generator_network.parameters(), lr=lr, betas=(0.0, 0.99)),
                torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.0, 0.99))]  # fmt: skip

    def _noise(self, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        return randn((len(labels), self.config.latent_dim), generator=generator, device=labels.device)

    def _fake(self, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.generator_network(self._noise(labels, generator), labels)

    def _discriminate(self, images: Tensor, labels: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.discriminator(diff_augment(images, self.config.diffaugment, generator), labels)

    def loss(self, images: Tensor, labels: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Both hinge losses for a batch (for monitoring; training goes through :meth:`manual_step`)."""
        fake = self._fake(labels, generator)
        d_loss = F.relu(1 - self._discriminate(images, labels, generator)).mean() + F.relu(
            1 + self._discriminate(fake.detach(), labels, generator)
        ).mean()
        g_loss = -self._discriminate(fake, labels, generator).mean()
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss}

    def manual_step(
        self,
        images: Tensor,
        labels: Tensor,
        optimizers: Sequence[torch.optim.Optimizer],
        backward: Callable[[Tensor], None],
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """One discriminator step, then one generator step (hinge loss, plus the mode-seeking term);
        returns the logged losses."""
        g_opt, d_opt = optimizers
        z = self._noise(labels, generator)
        fake = self.generator_network(z, labels)
        d_real = self._discriminate(images, labels, generator)
        d_fake = self._discriminate(fake.detach(), labels, generator)
        d_loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        d_opt.zero_grad(set_to_none=True)
        backward(d_loss)
        d_opt.step()

        g_loss = -self._discriminate(fake, labels, generator).mean()
        logged = {}
        if self.config.mode_seeking > 0:  # two noises, same labels: reward images that differ as the noises do
            z2 = self._noise(labels, generator)
            change = (fake - self.generator_network(z2, labels)).abs().mean() / (z - z2).abs().mean()
            g_loss = g_loss + self.config.mode_seeking / (change + 1e-5)
            logged["mode_seeking"] = change.detach()
        g_opt.zero_grad(set_to_none=True)
        backward(g_loss)
        g_opt.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "d_real": d_real.mean().detach(),
                "d_fake": d_fake.mean().detach(), **logged}  # fmt: skip

    @torch.no_grad()
    def on_train_step_end(self, step: int = 0) -> None:
        update_ema(self.ema, self.generator_network, self.config.ema_decay)

    @torch.no_grad()
    def sample(self, labels: Tensor | Sequence[int], *, generator: Randomness = None, **options: Any) -> Tensor:
        """Images of ``labels`` from the EMA generator network (the GAN takes no sampling options)."""
        self.check_sample_options(options)
        labels = self.check_labels(labels)
        z = randn((len(labels), self.config.latent_dim), generator=generator, device=self.device)
        return self.ema(z, labels)
