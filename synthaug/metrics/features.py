"""Feature extractors for the metrics: a domain classifier trained on the user's real data, or any module.

Published FIDs use Inception-v3 features from ImageNet and are not comparable with values computed
here: synthaug works offline on small, unusual images, so its default features come from a small
CNN trained on the real training data (its held-out accuracy is reported next to every result).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from synthaug.classifier import SmallCNN, accuracy, train_classifier
from synthaug.data.labeled import LabeledImages, to_signed_unit


class FeatureExtractor(nn.Module):
    """Maps images to ``(N, num_features)`` features, in batches, under a ``name`` that reports cite.

    ``module`` receives float images in ``[-1, 1]`` (``uint8`` input is converted) and returns
    ``(N, d)``. ``accuracy`` is the held-out accuracy of a domain classifier, when there is one.
    """

    def __init__(self, module: nn.Module, name: str, *, accuracy: float | None = None, batch_size: int = 1024) -> None:
        super().__init__()
        self.module = module.eval().requires_grad_(False)
        self.name, self.accuracy, self.batch_size = name, accuracy, batch_size
        self.num_features: int | None = None

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        device = next(self.module.parameters(), torch.empty(0)).device
        chunks = []
        for start in range(0, len(images), self.batch_size):
            x = images[start : start + self.batch_size]
            x = to_signed_unit(x) if x.dtype == torch.uint8 else x.float()
            try:
                features = self.module(x.to(device))
            except RuntimeError as err:
                raise ValueError(f"the feature extractor {self.name!r} does not accept images of shape "
                                 f"{tuple(images.shape[1:])}: {err}") from err  # fmt: skip
            if features.ndim != 2:
                raise ValueError(f"the feature extractor {self.name!r} returned shape {tuple(features.shape)}, not (N, d)")
            chunks.append(features.double().cpu())
        out = torch.cat(chunks) if chunks else torch.empty(0, self.num_features or 0, dtype=torch.float64)
        self.num_features = out.shape[1]
        return out


def _data_key(data: LabeledImages, config: dict) -> str:
    digest = hashlib.sha256()
    digest.update(data.images.numpy().tobytes())
    digest.update(data.labels.numpy().tobytes())
    digest.update(json.dumps({**config, "class_names": list(data.class_names)}, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(os.environ.get("SYNTHAUG_CACHE", Path.home() / ".cache" / "synthaug"))


def domain_classifier(
    real_train: LabeledImages,
    *,
    real_test: LabeledImages | None = None,
    steps: int = 1500,
    batch_size: int = 128,
    width: int = 32,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> FeatureExtractor:
    """Features from a :class:`~synthaug.evaluation.SmallCNN` trained on ``real_train`` (global-pooled
    last conv block, ``2 * width`` dimensions), cached by a hash of the data and settings.

    With ``real_test`` its accuracy there is measured and recorded (``extractor.accuracy``).
    """
    # v3: pooling before normalisation, and the warm-up + cosine recipe of train_classifier
    config = {"steps": steps, "batch_size": batch_size, "width": width, "seed": seed, "model": "SmallCNN-v3"}
    key = _data_key(real_train, config)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / "features" / key
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = SmallCNN(real_train.image_shape[0], real_train.num_classes, width=width)
    if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
        network.load_state_dict(load_file(folder / "model.safetensors"))
        network.to(memory_format=torch.channels_last)  # as train_classifier leaves it: the same kernels, the same features
        meta = json.loads((folder / "config.json").read_text())
    else:
        train_classifier(real_train, image_shape=real_train.image_shape, num_classes=real_train.num_classes,
                         steps=steps, batch_size=batch_size, seed=seed, model=network)  # fmt: skip
        meta = {**config, "trained_on": len(real_train), "accuracies": {}}
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in network.state_dict().items()}, folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps(meta, indent=2))
    held_out = None
    if real_test is not None:
        test_key = _data_key(real_test, {})
        if test_key not in meta["accuracies"]:
            meta["accuracies"][test_key] = accuracy(network.eval(), real_test)
            (folder / "config.json").write_text(json.dumps(meta, indent=2))
        held_out = meta["accuracies"][test_key]
    name = f"domain-cnn[{key}] ({len(real_train)} real images, {steps} steps)"
    return FeatureExtractor(network.features, name, accuracy=held_out)
