"""A convolutional conditional VAE (Kingma & Welling 2014; Sohn et al. 2015, https://arxiv.org/abs/1312.6114).

The encoder halves the resolution while both sides are even and at least 8 pixels (28 -> 14 -> 7,
64 -> 32 -> 16 -> 8 -> 4, 8 -> 4); the decoder mirrors it with stride-2 transposed convolutions, so
any size from 8x8 to 64x64 (and beyond) round-trips exactly. The class enters as a learned embedding
next to the flattened encoder features and next to the latent code.

``augment_p > 0`` trains on geometrically augmented images (flips, 90-degree rotations, shifts: the
ddpm's non-leaking augmentation, :mod:`synthaug.generators.diffusion.augment`) with the augmentation's
parameters added to the class embedding on both sides; sampling passes "no augmentation" (zeros), so
the decoder learns from the augmented images without drawing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthaug.generators.base import ConditionalGenerator, GeneratorConfig, Randomness, randn, register
from synthaug.generators.diffusion.augment import AUGMENT_DIM, augment, check_augment_options
from synthaug.generators.shapes import num_halvings


@dataclass
class VAEConfig(GeneratorConfig):
    latent_dim: int = 32
    #: channels at full resolution, doubled at each halving up to max_channels; 16 keeps a
    #: 28x28 step near 0.15 s on 2 CPU cores.
    base_channels: int = 16
    max_channels: int = 128
    embed_dim: int = 32
    #: weight of the KL term (beta-VAE, Higgins et al. 2017); 1 is the true ELBO.
    beta: float = 1.0
    #: nats per latent dimension that cost nothing (free bits, Kingma et al. 2016, https://arxiv.org/abs/1606.04934):
    #: the KL of each dimension, averaged over the batch, counts only above this floor, so the decoder cannot
    #: leave the latent code unused and draw one image per class from the label alone (posterior collapse)
    free_bits: float = 1.0
    #: scale of the prior noise at sampling time; < 1 trades diversity for sharper samples.
    temperature: float = 1.0
    #: probability of each augmentation per training image (0: off), in [0, 1); see the module docstring
    augment_p: float = 0.0
    augmentations: tuple[str, ...] = ("xflip", "rot90", "translate")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.augmentations = check_augment_options(self.augment_p, self.augmentations, self.image_shape)
        for name in ("latent_dim", "base_channels", "max_channels", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.base_channels % 8 or self.max_channels % 8:
            raise ValueError(f"base_channels and max_channels must be multiples of 8 (GroupNorm), got "
                             f"{self.base_channels} and {self.max_channels}")  # fmt: skip
        if min(self.image_shape[1:]) < 4:
            raise ValueError(f"images must be at least 4x4, got {self.image_shape[1:]}")
        if self.beta < 0 or self.temperature <= 0 or self.free_bits < 0:
            raise ValueError(f"beta and free_bits must be >= 0 and temperature > 0, got {self.beta}, {self.free_bits} "
                             f"and {self.temperature}")  # fmt: skip


def _norm_act(channels: int) -> list[nn.Module]:
    return [nn.GroupNorm(8, channels), nn.SiLU()]


@register
class ConditionalVAE(ConditionalGenerator):
    """Conditional VAE with a Bernoulli-style likelihood on pixel intensities in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from synthaug.generators import create
        >>> vae = create("vae", num_classes=10, image_shape=(1, 8, 8))
        >>> vae.sample([0, 1, 2], generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3, 1, 8, 8])
    """

    family = "vae"
    config_class = VAEConfig
    default_lr = 1e-3

    def __init__(self, config: VAEConfig, class_names: Sequence[str] | None = None) -> None:
        super().__init__(config, class_names)
        c, h, w = config.image_shape
        downs = num_halvings(h, w)
        widths = [min(config.base_channels * 2**i, config.max_channels) for i in range(downs + 1)]
        self.bottom_shape = (widths[-1], h >> downs, w >> downs)
        flat = widths[-1] * (h >> downs) * (w >> downs)

        encoder: list[nn.Module] = [nn.Conv2d(c, widths[0], 3, padding=1), *_norm_act(widths[0])]
        for w_in, w_out in zip(widths, widths[1:]):
            encoder += [nn.Conv2d(w_in, w_out, 4, stride=2, padding=1), *_norm_act(w_out)]
            encoder += [nn.Conv2d(w_out, w_out, 3, padding=1), *_norm_act(w_out)]
        self.encoder = nn.Sequential(*encoder)
        self.encoder_embed = nn.Embedding(config.num_classes, config.embed_dim)
        self.to_posterior = nn.Linear(flat + config.embed_dim, 2 * config.latent_dim)

        self.decoder_embed = nn.Embedding(config.num_classes, config.embed_dim)
        self.from_latent = nn.Linear(config.latent_dim + config.embed_dim, flat)
        decoder: list[nn.Module] = [*_norm_act(widths[-1])]
        for w_in, w_out in zip(widths[::-1], widths[::-1][1:]):
            decoder += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1), *_norm_act(w_out)]
            decoder += [nn.Conv2d(w_out, w_out, 3, padding=1), *_norm_act(w_out)]
        decoder.append(nn.Conv2d(widths[0], c, 3, padding=1))
        self.decoder = nn.Sequential(*decoder)
        # created last, and only when used, so that augment_p=0 initialises (and trains) exactly as without it
        self.augment_embed = nn.Linear(AUGMENT_DIM, 2 * config.embed_dim, bias=False) if config.augment_p > 0 else None

    def _embeddings(self, labels: torch.Tensor, augment: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's and the decoder's class embeddings, each with the augmentation's added (none: zeros)."""
        enc, dec = self.encoder_embed(labels), self.decoder_embed(labels)
        if self.augment_embed is not None and augment is not None:
            a_enc, a_dec = self.augment_embed(augment.to(enc.dtype)).chunk(2, dim=1)
            enc, dec = enc + a_enc, dec + a_dec
        return enc, dec

    def encode(
        self, images: torch.Tensor, labels: torch.Tensor, augment: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x, y), each ``(B, latent_dim)``; ``augment``: the images' augmentation
        conditioning ``(B, AUGMENT_DIM)`` (None: not augmented)."""
        features = self.encoder(images).flatten(1)  # (B, C' * h * w)
        stats = self.to_posterior(torch.cat([features, self._embeddings(labels, augment)[0]], dim=1))
        mean, logvar = stats.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor, labels: torch.Tensor, augment: torch.Tensor | None = None) -> torch.Tensor:
        """Pixel logits ``(B, C, H, W)``; ``sigmoid`` of them is the mean intensity in ``[0, 1]``. Sampling
        passes no ``augment``: the decoder draws unaugmented images."""
        h = self.from_latent(torch.cat([z, self._embeddings(labels, augment)[1]], dim=1))
        return self.decoder(h.view(-1, *self.bottom_shape))  # (B, C', h, w) -> (B, C, H, W)

    def loss(
        self, images: torch.Tensor, labels: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        conditioning = None
        if self.config.augment_p > 0:  # no random draw when off: augment_p=0 trains exactly as without the option
            images, conditioning = augment(images, self.config.augment_p, generator=generator, kinds=self.config.augmentations)
        mean, logvar = self.encode(images, labels, conditioning)
        eps = randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + eps * torch.exp(0.5 * logvar)  # reparameterisation trick
        logits = self.decode(z, labels, conditioning)
        target = (images + 1.0) / 2.0
        # Per-image sums, averaged over the batch: the negative ELBO in nats.
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1).mean()
        kl_per_dim = (0.5 * (mean.square() + logvar.exp() - 1.0 - logvar)).mean(0)  # (latent_dim,), batch-averaged
        kl = kl_per_dim.sum()
        penalty = kl_per_dim.clamp(min=self.config.free_bits).sum() if self.config.free_bits else kl
        return {"loss": recon + self.config.beta * penalty, "recon": recon, "kl": kl}

    def sample_defaults(self) -> dict[str, Any]:
        return {"temperature": self.config.temperature}

    @torch.no_grad()
    def sample(
        self, labels: torch.Tensor | Sequence[int], *, generator: Randomness = None, **options: Any
    ) -> torch.Tensor:
        """Decoded prior samples; ``temperature`` (default: the config's) scales the prior noise."""
        temperature = self.check_sample_options(options)["temperature"]
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        labels = self.check_labels(labels)
        z = randn((len(labels), self.config.latent_dim), generator=generator, device=self.device)
        return torch.sigmoid(self.decode(z * temperature, labels)) * 2.0 - 1.0
