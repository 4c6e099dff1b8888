"""A class-conditional autoregressive image model: a gated PixelCNN over patches with a 256-way softmax.

Gated PixelCNN (van den Oord et al. 2016, https://arxiv.org/abs/1606.05328), with the blind spot
removed by two streams: a *vertical* stream that sees the rows above, and a *horizontal* stream
that sees the pixels to the left in the current row plus the vertical stream. On a CPU the
network runs on ``p x p`` patches (pixel unshuffle, as the ddpm does: 2x2 from 16 px up), a
quarter of the positions at 28x28; within a patch the ``p * p * C`` values come one after another
from a small head that also sees the values of the patch drawn so far. So the model is exactly
autoregressive over pixels (and channels) in raster order of patches:
``p(x) = prod_patches prod_values p(value | earlier patches, earlier values of the patch, class)``.

Sampling is incremental, which is what makes it fast enough to feed training: the vertical stream
is computed once per row of patches from the rows above (kept), and the horizontal stream one
patch at a time from each layer's previous output in the row (kept); the test
``test_incremental_sampling_matches_the_network`` checks that the cached computation gives the
full network's logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from synthaug.generators.base import ConditionalGenerator, GeneratorConfig, Randomness, register

LEVELS = 256


@dataclass
class ARConfig(GeneratorConfig):
    #: channels of both streams
    channels: int = 32
    #: gated layers; the vertical receptive field grows by one row of patches per layer
    layers: int = 6
    #: hidden units of the head that draws a patch's values
    head_hidden: int = 64
    #: fold p x p patches into channels; None picks 2 for images of 16 px and more, else 1
    patch_size: int | None = None
    #: default softmax temperature of sample(); below 1 sharpens, above 1 diversifies
    temperature: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _, h, w = self.image_shape
        if self.patch_size is None:
            self.patch_size = 2 if min(h, w) >= 16 else 1
        for name in ("channels", "layers", "head_hidden", "patch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f"patch_size {self.patch_size} does not divide the {h}x{w} images; valid choices: "
                f"{[p for p in range(1, min(h, w) + 1) if h % p == 0 and w % p == 0][:6]}"
            )
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")


def _gate(x: Tensor) -> Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One layer of both streams. Vertical: a (2 x 3) convolution over the row above and the current row
    of the vertical stream. Horizontal: a (1 x 2) convolution over the previous and the current position
    plus the vertical stream's output at the same position. Both gated, both residual, both class-conditioned."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        c = channels
        self.vertical = nn.Conv2d(c, 2 * c, (2, 3))
        self.vertical_out = nn.Conv2d(c, c, 1)
        self.horizontal = nn.Conv2d(c, 2 * c, (1, 2))
        self.v_to_h = nn.Conv2d(c, 2 * c, 1)
        self.horizontal_out = nn.Conv2d(c, c, 1)
        self.condition = nn.Embedding(num_classes, 4 * c)  # vertical and horizontal biases per class

    def forward(self, v: Tensor, h: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        cond_v, cond_h = self.condition(labels)[:, :, None, None].chunk(2, dim=1)  # (B, 2C, 1, 1) each
        v = v + self.vertical_out(_gate(self.vertical(F.pad(v, (1, 1, 1, 0))) + cond_v))  # rows i-1, i -> i
        h = h + self.horizontal_out(_gate(self.horizontal(F.pad(h, (1, 0, 0, 0))) + self.v_to_h(v) + cond_h))
        return v, h

    # --- incremental pieces (sampling) ---

    def vertical_row(self, above: Tensor, current: Tensor, cond_v: Tensor) -> Tensor:
        """Row ``i`` of the layer's vertical output from its input rows ``i-1`` (above) and ``i``; ``(B, C, 1, W)``."""
        rows = F.pad(torch.cat([above, current], dim=2), (1, 1, 0, 0))
        return current + self.vertical_out(_gate(self.vertical(rows) + cond_v))

    def horizontal_step(self, left: Tensor, here: Tensor, v_here: Tensor, cond_h: Tensor) -> Tensor:
        """One position of the horizontal output from the input at the previous and this position, ``(B, C)``."""
        w = self.horizontal.weight  # (2C, C, 1, 2)
        pre = left @ w[:, :, 0, 0].T + here @ w[:, :, 0, 1].T + self.horizontal.bias
        pre = pre + F.linear(v_here, self.v_to_h.weight[:, :, 0, 0], self.v_to_h.bias) + cond_h
        return here + F.linear(_gate(pre[:, :, None, None])[:, :, 0, 0], self.horizontal_out.weight[:, :, 0, 0],
                               self.horizontal_out.bias)  # fmt: skip


class PatchHead(nn.Module):
    """Draws a patch's ``S = C * p * p`` values one after another: value ``s`` from the patch's features and
    the values ``< s`` (those of later positions are masked out)."""

    def __init__(self, channels: int, values: int, hidden: int) -> None:
        super().__init__()
        self.values = values
        self.features = nn.Linear(channels, hidden)
        self.previous = nn.Linear(values, hidden, bias=False)
        self.which = nn.Embedding(values, hidden)
        self.out = nn.Linear(hidden, LEVELS)

    def forward(self, features: Tensor, previous: Tensor) -> Tensor:
        """Logits ``(N, S, 256)`` for every value of ``N`` patches, teacher-forced with ``previous`` ``(N, S)``."""
        mask = torch.ones(self.values, self.values, device=features.device).tril(-1)  # value s sees values < s
        hidden = self.features(features)[:, None, :] + self.previous(previous[:, None, :] * mask) + self.which.weight
        return self.out(F.relu(hidden))

    def step(self, features: Tensor, previous: Tensor, s: int) -> Tensor:
        """Logits ``(N, 256)`` of value ``s``, where ``previous`` holds the values drawn so far (zeros beyond)."""
        hidden = self.features(features) + self.previous(previous) + self.which.weight[s]
        return self.out(F.relu(hidden))


@register
class ConditionalPixelCNN(ConditionalGenerator):
    """Class-conditional gated PixelCNN over patches (see the module docstring).

    Example:
        >>> import torch
        >>> from synthaug.generators import create
        >>> ar = create("ar", num_classes=10, image_shape=(1, 8, 8), channels=16, layers=2, head_hidden=16)
        >>> ar.sample([3, 4], generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 1, 8, 8])
    """

    family = "ar"
    config_class = ARConfig
    default_lr = 1e-3
    default_steps = 3000

    def __init__(self, config: ARConfig, class_names: Sequence[str] | None = None) -> None:
        super().__init__(config, class_names)
        c_img, p = config.image_shape[0], config.patch_size
        self.values = c_img * p * p
        self.stem_v = nn.Conv2d(self.values, config.channels, 1)
        self.stem_h = nn.Conv2d(self.values, config.channels, 1)
        self.layers = nn.ModuleList(GatedLayer(config.channels, config.num_classes) for _ in range(config.layers))
        self.head = PatchHead(config.channels, self.values, config.head_hidden)

    # --- layout: (B, C, H, W) pixels <-> (B, S, H/p, W/p) patches, values raster-ordered within a patch ---

    def _patches(self, images: Tensor) -> Tensor:
        c, p = self.image_shape[0], self.config.patch_size
        b, _, h, w = images.shape
        x = images.view(b, c, h // p, p, w // p, p).permute(0, 3, 5, 1, 2, 4)  # (B, p, p, C, H/p, W/p): row, col, channel
        return x.reshape(b, p * p * c, h // p, w // p)

    def _pixels(self, patches: Tensor) -> Tensor:
        c, p = self.image_shape[0], self.config.patch_size
        b, _, hp, wp = patches.shape
        x = patches.view(b, p, p, c, hp, wp).permute(0, 3, 4, 1, 5, 2)  # (B, C, H/p, p, W/p, p)
        return x.reshape(b, c, hp * p, wp * p)

    def features(self, x: Tensor, labels: Tensor) -> Tensor:
        """Each patch's features ``(B, channels, H/p, W/p)`` from the patches before it (``x`` in [-1, 1], patched)."""
        v = F.pad(self.stem_v(x), (0, 0, 1, 0))[:, :, :-1]  # down: row i sees rows < i
        h = F.pad(self.stem_h(x), (1, 0, 0, 0))[:, :, :, :-1]  # right: position j sees positions < j
        for layer in self.layers:
            v, h = layer(v, h, labels)
        return h

    def logits(self, images: Tensor, labels: Tensor) -> Tensor:
        """``(B, H/p, W/p, S, 256)`` logits of every value given everything before it."""
        x = self._patches(images)
        features = self.features(x, labels).permute(0, 2, 3, 1)  # (B, H/p, W/p, channels)
        b, hp, wp, c = features.shape
        previous = x.permute(0, 2, 3, 1).reshape(-1, self.values)
        return self.head(features.reshape(-1, c), previous).view(b, hp, wp, self.values, LEVELS)

    def loss(self, images: Tensor, labels: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Negative log-likelihood of the 8-bit values, in nats per value (``bits`` per value is logged too)."""
        targets = self._patches(((images + 1) * 127.5).round().clamp(0, LEVELS - 1)).permute(0, 2, 3, 1).long()
        nll = F.cross_entropy(self.logits(images, labels).reshape(-1, LEVELS), targets.reshape(-1))
        return {"loss": nll, "bits": nll.detach() / torch.log(torch.tensor(2.0))}

    def sample_defaults(self) -> dict[str, Any]:
        return {"temperature": self.config.temperature}

    @torch.no_grad()
    def sample(self, labels: Tensor | Sequence[int], *, generator: Randomness = None, **options: Any) -> Tensor:
        """Images of ``labels`` in ``[-1, 1]``, drawn value by value with the incremental network."""
        temperature = self.check_sample_options(options)["temperature"]
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        labels = self.check_labels(labels)
        b, (_, h, w), p, c = len(labels), self.image_shape, self.config.patch_size, self.config.channels
        hp, wp = h // p, w // p
        x = torch.zeros(b, self.values, hp, wp, device=self.device)
        conds = [layer.condition(labels).chunk(2, dim=1) for layer in self.layers]  # per layer: (B, 2C) twice
        above = [torch.zeros(b, c, 1, wp, device=self.device) for _ in range(len(self.layers) + 1)]
        for i in range(hp):
            # The vertical stream for row i: from row i-1 of the image and each layer's row i-1 (kept).
            rows = [torch.zeros(b, c, 1, wp, device=self.device) if i == 0 else self.stem_v(x[:, :, i - 1 : i])]
            for index, layer in enumerate(self.layers):
                rows.append(layer.vertical_row(above[index], rows[-1], conds[index][0][:, :, None, None]))
            above = rows
            left = [torch.zeros(b, c, device=self.device) for _ in self.layers]  # each layer's input at position j-1
            for j in range(wp):
                here = torch.zeros(b, c, device=self.device) if j == 0 else F.linear(
                    x[:, :, i, j - 1], self.stem_h.weight[:, :, 0, 0], self.stem_h.bias)  # fmt: skip
                for index, layer in enumerate(self.layers):
                    out = layer.horizontal_step(left[index], here, rows[index + 1][:, :, 0, j], conds[index][1])
                    left[index], here = here, out
                x[:, :, i, j] = self._draw(here, temperature, generator)
        return self._pixels(x)

    def _draw(self, features: Tensor, temperature: float, generator: Randomness) -> Tensor:
        """A patch's values in [-1, 1], one after another."""
        values = torch.zeros(len(features), self.values, device=features.device)
        for s in range(self.values):
            probabilities = (self.head.step(features, values, s) / temperature).softmax(1)
            values[:, s] = _categorical(probabilities, generator).to(values.dtype) / 127.5 - 1
        return values


def _categorical(probabilities: Tensor, generator: Randomness) -> Tensor:
    """One draw per row of ``probabilities`` (N, K), from one generator or one per row."""
    if isinstance(generator, (list, tuple)):
        draws = [torch.multinomial(row.cpu(), 1, generator=g) for row, g in zip(probabilities, generator)]
        return torch.cat(draws).to(probabilities.device)
    source = generator.device if generator is not None else probabilities.device
    return torch.multinomial(probabilities.to(source), 1, generator=generator).squeeze(1).to(probabilities.device)
