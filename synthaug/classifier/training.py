"""Training the yardstick classifier through Lightning, with a recipe that converges.

The recipe (the defaults of :func:`train_classifier`): AdamW with decoupled weight decay on the
weights (not on norms and biases), a linear warm-up over the first 5% of the steps, then a cosine
decay to zero, and the last iterate. BENCHMARKS.md shows accuracy against steps for real data
with and without classic augmentation: at the default length real-only has converged, so an arm
that adds data is not starved of real images.

The same function trains with every technique synthaug measures: per-item weights and soft targets
(from :class:`~synthaug.augment.SyntheticAugment`'s dict items or teacher labels), a batch
transform (e.g. :class:`~synthaug.transforms.SyntheticMix`), mixup, a class-balanced sampler,
class-balanced re-weighting deferred to late training (DRW), a logit-adjusted loss, and
fine-tuning only the head of a trained model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, WeightedRandomSampler

from synthaug.classifier.losses import class_balanced_weights, cross_entropy, logit_adjustment
from synthaug.classifier.networks import SmallCNN, SmallResNet
from synthaug.console import quiet_lightning
from synthaug.inference import as_model_input
from synthaug.mixup import beta_weights, cutmix, cutmix_boxes, mixup
from synthaug.seeding import torch_generator

#: steps of the default recipe (batch 64); see BENCHMARKS.md for the convergence curve behind it
DEFAULT_STEPS = 3000
CLASSIFIERS = ("cnn", "resnet")


def make_classifier(name: str, image_shape: Sequence[int], num_classes: int) -> nn.Module:
    """A fresh yardstick network: ``"cnn"`` (:class:`SmallCNN` with the MLP head) or ``"resnet"`` (ResNet-8)."""
    c, h, w = image_shape
    if name == "cnn":
        return SmallCNN(c, num_classes, head="mlp", image_size=(h, w))
    if name == "resnet":
        return SmallResNet(c, num_classes)
    raise ValueError(f"unknown yardstick classifier {name!r}; choose from {CLASSIFIERS} or pass a model")


def _split(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(images, target, weight)`` from a pair batch or a dict batch (see :mod:`synthaug.augment`)."""
    if isinstance(batch, Mapping):
        target = batch["target"] if "target" in batch else batch["label"]
        return batch["image"], target, batch.get("weight")
    return batch[0], batch[1], None


def _images_of(batch: Any) -> torch.Tensor:
    return batch["image"] if isinstance(batch, Mapping) else batch[0]


def _with_images(batch: Any, images: torch.Tensor) -> Any:
    if isinstance(batch, Mapping):
        return {**batch, "image": images}
    return type(batch)([images, *batch[1:]]) if isinstance(batch, (list, tuple)) else (images, *batch[1:])


def _check_batch_options(label_smoothing: float, mixup_alpha: float, cutmix_alpha: float) -> None:
    """Label smoothing in [0, 1), mixup and CutMix weights finite and >= 0, and at most one of the two."""
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) or not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be a number in [0, 1), got {label_smoothing!r}")
    for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number >= 0 (0: off), got {value!r}")
    if mixup_alpha > 0 and cutmix_alpha > 0:
        raise ValueError("give mixup_alpha or cutmix_alpha, not both: each replaces the batch's targets")


def _dense(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    return target.float() if target.is_floating_point() else nn.functional.one_hot(target.long(), num_classes).float()


class ClassifierModule(L.LightningModule):
    """Trains any ``nn.Module`` returning logits on pair or dict batches (uint8 images are scaled).

    Args:
        model: the network.
        lr, weight_decay: AdamW; weight decay applies to weights with more than one dimension.
        steps: the run's length, for the schedule (default: the trainer's ``estimated_stepping_batches``).
        warmup: share of ``steps`` with a linear warm-up.
        schedule: ``"cosine"`` (to zero at ``steps``) or ``"constant"``.
        label_smoothing: as in ``F.cross_entropy``.
        class_weights: ``(K,)`` per-class loss weights, switched on at step ``reweight_from`` (DRW).
        adjustment: ``(K,)`` logit adjustment added in the loss (see :func:`~synthaug.classifier.losses.logit_adjustment`).
        mixup_alpha: mixup with a Beta(alpha, alpha) weight per batch (0: off).
        cutmix_alpha: CutMix within the batch, a Beta(alpha, alpha) weight per batch (0: off; not with mixup).
        policy: an augmentation policy (e.g. :class:`~synthaug.policies.AugmentPolicy`), called as
            ``policy(images, generator=...)`` on every training batch's images before the batch transform.
        batch_transform: called as ``batch_transform(batch, generator=...)`` on every training batch
            (e.g. a :class:`~synthaug.transforms.SyntheticMix`), with a generator seeded by the step.
        trainable: ``"all"``, or ``"head"`` to train only ``model.head`` (the rest frozen).
        seed: the seed of mixup's and the batch transform's draws.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float = 2e-3,
        weight_decay: float = 5e-4,
        steps: int | None = None,
        warmup: float = 0.05,
        schedule: Literal["cosine", "constant"] = "cosine",
        label_smoothing: float = 0.0,
        class_weights: torch.Tensor | None = None,
        reweight_from: int = 0,
        adjustment: torch.Tensor | None = None,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        policy: Callable[..., torch.Tensor] | None = None,
        batch_transform: Callable[..., Any] | None = None,
        trainable: Literal["all", "head"] = "all",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
        if not 0 <= warmup < 1 or lr <= 0 or weight_decay < 0 or mixup_alpha < 0:
            raise ValueError(f"need 0 <= warmup < 1, lr > 0, weight_decay >= 0 and mixup_alpha >= 0; got "
                             f"{warmup}, {lr}, {weight_decay}, {mixup_alpha}")  # fmt: skip
        _check_batch_options(label_smoothing, mixup_alpha, cutmix_alpha)
        if trainable not in ("all", "head"):
            raise ValueError(f"trainable must be 'all' or 'head', got {trainable!r}")
        if trainable == "head" and not isinstance(getattr(model, "head", None), nn.Module):
            raise ValueError(f"trainable='head' needs a model with a `head` submodule; {type(model).__name__} has none")
        self.model = model
        self.lr, self.weight_decay, self.steps, self.warmup, self.schedule = lr, weight_decay, steps, warmup, schedule
        self.label_smoothing, self.mixup_alpha, self.trainable, self.seed = label_smoothing, mixup_alpha, trainable, seed
        self.batch_transform, self.reweight_from = batch_transform, reweight_from
        self.cutmix_alpha, self.policy = cutmix_alpha, policy
        self.register_buffer("class_weights", class_weights, persistent=False)
        self.register_buffer("adjustment", adjustment, persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.policy is not None:  # every image passes through the policy once, before any mixing
            rng = torch_generator(self.seed, "policy", self.global_step)
            batch = _with_images(batch, self.policy(_images_of(batch), generator=rng))
        if self.batch_transform is not None:
            batch = self.batch_transform(batch, generator=torch_generator(self.seed, "batch", self.global_step))
        images, target, weight = _split(batch)
        x = as_model_input(images)
        if x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.mixup_alpha > 0:
            rng = torch_generator(self.seed, "mixup", self.global_step)
            order = torch.randperm(len(x), generator=rng).to(x.device)
            lam = beta_weights(self.mixup_alpha, 1, rng).to(x.device).expand(len(x))
            dense = _dense(target, self._num_classes(target))
            x, target = mixup(x, dense, x[order], dense[order], lam)
            if weight is not None:
                weight = lam * weight + (1 - lam) * weight[order]
        elif self.cutmix_alpha > 0:
            rng = torch_generator(self.seed, "cutmix", self.global_step)
            order = torch.randperm(len(x), generator=rng).to(x.device)
            lam = beta_weights(self.cutmix_alpha, 1, rng).expand(len(x))
            boxes, kept = cutmix_boxes(lam, x.shape[-2], x.shape[-1], rng)
            dense = _dense(target, self._num_classes(target))
            x, target = cutmix(x, dense, x[order], dense[order], boxes, kept)
            if weight is not None:
                kept = kept.to(weight)
                weight = kept * weight + (1 - kept) * weight[order]
        class_weights = self.class_weights if self.global_step >= self.reweight_from else None
        loss = cross_entropy(self.model(x), target, weight, class_weights=class_weights, adjustment=self.adjustment,
                             label_smoothing=self.label_smoothing)  # fmt: skip
        if self.logger is not None:  # logging costs a millisecond a step, which a study pays hundreds of thousands of times
            self.log("train/loss", loss.detach())
        return loss

    def _num_classes(self, target: torch.Tensor) -> int:
        if target.is_floating_point():
            return target.shape[1]
        head = [m for m in self.model.modules() if isinstance(m, nn.Linear)]
        return head[-1].out_features

    def configure_optimizers(self) -> Any:
        params = self.model.head.parameters() if self.trainable == "head" else self.model.parameters()
        params = [p for p in params if p.requires_grad]
        groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": self.weight_decay},
                  {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]  # fmt: skip
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=self.lr, foreach=True)
        if self.schedule == "constant":
            return optimizer
        total = self.steps or int(self.trainer.estimated_stepping_batches)
        warm = max(1, round(self.warmup * total)) if self.warmup else 0

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(step - warm, total - warm) / max(1, total - warm)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_fit_start(self) -> None:
        if self.trainable == "head":
            self.model.requires_grad_(False)
            self.model.head.requires_grad_(True)

    def on_fit_end(self) -> None:
        self.model.requires_grad_(True)


def class_counts_of(dataset: Any, num_classes: int) -> np.ndarray:
    """How many items of each class ``dataset`` yields per epoch (a SyntheticAugment's synthetic share included)."""
    extra = getattr(dataset, "_extra_classes", None)
    labels = getattr(dataset, "real_labels", None)
    if labels is None:
        labels = getattr(dataset, "labels", None)
    if labels is None:
        labels = getattr(dataset, "targets", None)
    if labels is None:
        raise ValueError(f"cannot read the class labels of a {type(dataset).__name__}: give it a `labels` attribute")
    counts = np.bincount(np.asarray(labels), minlength=num_classes)
    if extra is not None:
        counts = counts + np.bincount(extra, minlength=num_classes)
    return counts


def _sampler(dataset: Any, kind: str, seed: int, num_classes: int) -> Any:
    if kind == "balanced":
        if hasattr(dataset, "sampler") and callable(dataset.sampler):
            raise ValueError("sampler='balanced' draws plain indices; a SyntheticAugment balances classes with mode='balance'")
        found = getattr(dataset, "labels", getattr(dataset, "targets", None))
        if found is None:
            raise ValueError(f"sampler='balanced' needs the labels of the dataset ({type(dataset).__name__} has no `labels`)")
        labels = np.asarray(found)
        counts = np.bincount(labels, minlength=num_classes)
        weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.float64)
        return WeightedRandomSampler(weights, len(dataset), replacement=True, generator=torch_generator(seed, "sampler"))
    if kind != "random":
        raise ValueError(f"sampler must be 'random' or 'balanced', got {kind!r}")
    if hasattr(dataset, "sampler") and callable(dataset.sampler):  # SyntheticAugment: its indices carry the epoch
        return dataset.sampler(seed=seed)
    return RandomSampler(dataset, generator=torch_generator(seed, "sampler"))


def _shape_and_classes(
    dataset: Any, image_shape: tuple[int, int, int] | None, num_classes: int | None
) -> tuple[tuple[int, int, int], int]:
    """``image_shape`` and ``num_classes`` as given, else read from the dataset (``LabeledImages``, ``SyntheticAugment``, ...)."""
    image_shape = image_shape if image_shape is not None else getattr(dataset, "image_shape", None)
    num_classes = num_classes if num_classes is not None else getattr(dataset, "num_classes", None)
    missing = [name for name, value in (("image_shape", image_shape), ("num_classes", num_classes)) if value is None]
    if missing:
        raise TypeError(f"train_classifier cannot read {' and '.join(missing)} from a {type(dataset).__name__}: pass "
                        f"{', '.join(f'{m}=' for m in missing)} (e.g. image_shape=(1, 28, 28), num_classes=10)")  # fmt: skip
    return tuple(image_shape), int(num_classes)


def train_classifier(
    dataset: Any,
    *,
    image_shape: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    steps: int = DEFAULT_STEPS,
    batch_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 5e-4,
    warmup: float = 0.05,
    schedule: Literal["cosine", "constant"] = "cosine",
    label_smoothing: float = 0.0,
    seed: int = 0,
    model: nn.Module | L.LightningModule | str | None = None,
    trainable: Literal["all", "head"] = "all",
    sampler: Literal["random", "balanced"] = "random",
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    policy: Callable[..., torch.Tensor] | None = None,
    logit_adjust: float | None = None,
    reweight: Literal["cb", "drw"] | None = None,
    drw_start: float = 2 / 3,
    batch_transform: Callable[..., Any] | None = None,
    num_workers: int = 0,
    accelerator: str = "auto",
) -> nn.Module:
    """Train ``model`` for ``steps`` on ``dataset`` with the yardstick recipe; returns it in eval mode.

    ``dataset`` yields ``(image, label)`` pairs, ``(image, soft target)`` pairs or dict items (see
    :mod:`synthaug.augment`): a :class:`~synthaug.data.LabeledImages`, a
    :class:`~synthaug.augment.SyntheticAugment` over one, or any dataset of the same form.
    ``model`` is a network (an ``nn.Module`` returning logits), the name of a yardstick network
    (``"cnn"``, the default, or ``"resnet"``; see :func:`make_classifier`), or a ``LightningModule``,
    which trains itself (its ``training_step`` and ``configure_optimizers``; the recipe's options
    then do not apply).

    Techniques (each off by default): ``trainable="head"`` fine-tunes only ``model.head`` (the second
    stage of two-stage training); ``sampler="balanced"`` draws items with probability inversely
    proportional to their class's count; ``mixup_alpha`` or ``cutmix_alpha`` (within the batch);
    ``label_smoothing``; ``policy`` (e.g. ``AugmentPolicy("trivial")``, applied to every batch's images
    before ``batch_transform``, so give a :class:`~synthaug.transforms.SyntheticMix` the same policy as its
    ``transform`` for its samples); ``logit_adjust=tau`` trains with the
    logit-adjusted loss for the training set's class counts; ``reweight="cb"`` weights classes by
    their effective number throughout, ``"drw"`` from ``drw_start`` of the steps on;
    ``batch_transform`` (e.g. ``SyntheticMix(bank, 0.5, mode="mixup")``) edits every batch.

    ``image_shape`` and ``num_classes`` default to the dataset's own (``LabeledImages``, ``SyntheticAugment``).
    """
    image_shape, num_classes = _shape_and_classes(dataset, image_shape, num_classes)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    if reweight not in (None, "cb", "drw") or not 0 <= drw_start < 1:
        raise ValueError(f"reweight must be None, 'cb' or 'drw' and drw_start in [0, 1), got {reweight!r} and {drw_start}")
    if model is None or isinstance(model, str):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = make_classifier(model or "cnn", image_shape, num_classes)
    if not isinstance(model, L.LightningModule):
        model = model.to(memory_format=torch.channels_last)
        counts = class_counts_of(dataset, num_classes) if (logit_adjust is not None or reweight) else None
        module: L.LightningModule = ClassifierModule(
            model, lr=lr, weight_decay=weight_decay, steps=steps, warmup=warmup, schedule=schedule,
            label_smoothing=label_smoothing, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, policy=policy,
            batch_transform=batch_transform,
            trainable=trainable, seed=seed,
            adjustment=logit_adjustment(counts, logit_adjust) if logit_adjust is not None else None,
            class_weights=class_balanced_weights(counts) if reweight else None,
            reweight_from=round(drw_start * steps) if reweight == "drw" else 0,
        )  # fmt: skip
    else:
        module = model
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=_sampler(dataset, sampler, seed, num_classes),
        drop_last=len(dataset) > batch_size, num_workers=num_workers, generator=torch_generator(seed, "loader"),
    )  # fmt: skip
    module.train()  # a model handed back by an earlier train_classifier is in eval mode
    # Dropout masks draw from the global RNG; fork it so that training leaves no trace there.
    with torch.random.fork_rng(devices=[]), quiet_lightning(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        trainer = L.Trainer(
            max_steps=steps, max_epochs=-1, accelerator=accelerator, devices=1, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        torch.manual_seed(seed)
        trainer.fit(module, loader)
    return (model if isinstance(model, L.LightningModule) else module.model).eval()
