"""The yardstick networks: a small CNN and a small ResNet, for 1 or 3 channels and any size >= 8x8.

Both use GroupNorm rather than BatchNorm: trained for hundreds of epochs on a few hundred images,
BatchNorm's running statistics stop matching the test data (seen on 600 Fashion-MNIST images:
eval-mode accuracy collapsed while batch statistics still classified well); GroupNorm has no running
statistics to go stale. Each has a ``head`` submodule (the last layers), which two-stage training
can fine-tune alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SmallCNN(nn.Module):
    """Three conv blocks (the first two pool by 2) and a head.

    ``head="gap"``: global average pooling and one linear layer, ``2 * width`` features (the domain
    classifier behind the metrics' features uses this). ``head="mlp"``: the flattened
    ``2 * width x H/4 x W/4`` map through a 128-unit hidden layer, which keeps where things are in
    the image; it needs ``image_size``. Pooling comes before normalisation, which gives the same
    function class as pooling after it at a quarter of the normalisation's cost.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int = 32,
        *,
        head: str = "gap",
        image_size: tuple[int, int] | None = None,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.MaxPool2d(2), nn.GroupNorm(8, width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.MaxPool2d(2), nn.GroupNorm(8, 2 * width), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.GroupNorm(8, 2 * width), nn.ReLU(),
        )  # fmt: skip
        if head == "gap":
            self.features.extend([nn.AdaptiveAvgPool2d(1), nn.Flatten()])
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, num_classes))
        elif head == "mlp":
            if image_size is None:
                raise ValueError("head='mlp' needs image_size=(H, W)")
            flat = 2 * width * (image_size[0] // 4) * (image_size[1] // 4)
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, 128), nn.ReLU(),
                                      nn.Dropout(dropout), nn.Linear(128, num_classes))  # fmt: skip
        else:
            raise ValueError(f"head must be 'gap' or 'mlp', got {head!r}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))  # (B, num_classes) logits


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (He et al. 2016, https://arxiv.org/abs/1512.03385)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(8, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(8, out_channels)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.GroupNorm(8, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(h)) + self.skip(x))


class SmallResNet(nn.Module):
    """A CIFAR-style ResNet: a stem, three stages of ``blocks`` basic blocks (``width``, ``2 width``,
    ``4 width`` channels; the last two halve the resolution), global pooling and a linear head.

    ``blocks=1`` is ResNet-8 (8 weighted layers), ``blocks=2`` ResNet-14.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, *, blocks: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if blocks < 1 or width % 8:
            raise ValueError(f"blocks must be >= 1 and width a multiple of 8, got {blocks} and {width}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.GroupNorm(8, width), nn.ReLU())
        stages, channels = [], width
        for stage, out in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks):
                stages.append(BasicBlock(channels, out, 2 if stage and not block else 1))
                channels = out
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(images)))  # (B, C, H, W) -> (B, num_classes)
