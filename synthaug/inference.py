"""Running a trained classifier over uint8 images: the one place that converts them for a model.

Every model synthaug runs on images (the yardstick classifier, a teacher that labels synthetic
samples, a judge that filters them, a feature extractor) receives float images in ``[-1, 1]``,
``(N, C, H, W)``; ``uint8`` images are converted here.
"""

from __future__ import annotations

import torch
from torch import nn

from synthaug.data.labeled import to_signed_unit


def as_model_input(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` images as floats in ``[-1, 1]``; float images pass through as ``float32``."""
    return to_signed_unit(images) if images.dtype == torch.uint8 else images.float()


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    *,
    probabilities: bool = False,
    temperature: float = 1.0,
    batch_size: int = 1024,
) -> torch.Tensor:
    """``model``'s logits (or softmax probabilities at ``temperature``) for ``images``, on the CPU.

    The model runs in eval mode on its own device, ``batch_size`` images at a time.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    outputs = []
    for start in range(0, len(images), batch_size):
        logits = model(as_model_input(images[start : start + batch_size].to(device))).float()
        if logits.ndim != 2:
            raise ValueError(f"the model must return (N, num_classes) logits, got shape {tuple(logits.shape)}")
        outputs.append((logits / temperature).softmax(1).cpu() if probabilities else logits.cpu())
    return torch.cat(outputs) if outputs else torch.empty(0)
