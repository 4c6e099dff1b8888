"""A small CNN classifier trained through Lightning: the yardstick for synthetic data.

Used by the demo, the examples and (later) CAS and the downstream benchmark: the same network,
steps, batch size and seed for every arm, so accuracy differences come from the data alone.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from synthaug.augment import SyntheticAugment
from synthaug.data.labeled import LabeledImages, to_signed_unit


class SmallCNN(nn.Module):
    """Three conv blocks and a linear head; works for 1 or 3 channels and any size >= 8x8.

    GroupNorm, not BatchNorm: trained for many epochs on a few hundred images, BatchNorm's running
    statistics stop matching test data (seen on 600 Fashion-MNIST images: eval-mode accuracy collapsed
    while batch statistics still classified well); GroupNorm has no running statistics to go stale.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.GroupNorm(8, width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.GroupNorm(8, 2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.GroupNorm(8, 2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(2 * width, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))  # (B, num_classes) logits


def _as_input(images: torch.Tensor) -> torch.Tensor:
    return to_signed_unit(images) if images.dtype == torch.uint8 else images.float()


class ClassifierModule(L.LightningModule):
    """Cross-entropy training of any ``nn.Module`` on ``(images, labels)`` batches (uint8 images are scaled)."""

    def __init__(self, model: nn.Module, *, lr: float = 2e-3, weight_decay: float = 5e-4) -> None:
        super().__init__()
        self.model, self.lr, self.weight_decay = model, lr, weight_decay

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        images, labels = batch[0], batch[1]
        loss = F.cross_entropy(self.model(_as_input(images)), labels)
        self.log("train/loss", loss.detach(), prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def train_classifier(
    dataset: Any,
    *,
    image_shape: tuple[int, int, int],
    num_classes: int,
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    model: nn.Module | L.LightningModule | None = None,
    num_workers: int = 0,
    accelerator: str = "auto",
) -> nn.Module:
    """Train ``model`` (default :class:`SmallCNN`) for ``steps`` on ``dataset``; returns it in eval mode.

    ``dataset`` yields ``(image, label)`` tensors: a :class:`~synthaug.data.LabeledImages`, a
    :class:`~synthaug.augment.SyntheticAugment` over one, or any dataset of the same form. A plain
    module is trained with AdamW (``lr``) and cross-entropy; a ``LightningModule`` trains itself
    (its ``training_step`` and ``configure_optimizers``) and its ``forward`` must return logits.
    """
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = SmallCNN(image_shape[0], num_classes)
    if isinstance(dataset, SyntheticAugment):
        sampler = dataset.sampler(seed=seed)  # carries the epoch to the workers
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=len(dataset) > batch_size,
        num_workers=num_workers, generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    trainer = L.Trainer(
        max_steps=steps, max_epochs=-1, accelerator=accelerator, devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    # The Dropout masks draw from the global RNG; fork it so that training leaves no trace there.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        trainer.fit(model if isinstance(model, L.LightningModule) else ClassifierModule(model, lr=lr), loader)
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, *, probabilities: bool = False, batch_size: int = 1024) -> torch.Tensor:
    """``model``'s logits (or softmax probabilities) for ``images`` (uint8, or floats in ``[-1, 1]``), on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    for start in range(0, len(images), batch_size):
        logits = model(_as_input(images[start : start + batch_size].to(device))).float()
        outputs.append((logits.softmax(1) if probabilities else logits).cpu())
    return torch.cat(outputs) if outputs else torch.empty(0)


def accuracy(model: nn.Module, data: LabeledImages, *, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``data``."""
    predictions = predict(model, data.images, batch_size=batch_size).argmax(1)
    return float((predictions == data.labels).double().mean())
