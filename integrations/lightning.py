"""Lightning integration: mix synthetic samples into training batches.

Two ways, same result:

* :class:`SyntheticMixCallback` edits list or dict batches in place in ``on_train_batch_start``;
  no change to the model.
* :class:`SyntheticMixMixin` for a LightningModule: mixes in ``on_after_batch_transfer`` (the
  documented hook for changing a batch), which also works for tuple batches.

The synthetic source is frozen and never becomes part of the model: it is not a submodule, so it
stays out of ``state_dict`` and the optimiser. Randomness for batch ``global_step`` on rank ``r``
comes from ``(seed, global_step, r)``, so a resumed run mixes exactly as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from synthaug.data.conventions import DEPRECATED_SYNTHETIC_KEY, IS_SYNTHETIC, SyntheticFlagDict
from synthaug.generators.base import ConditionalGenerator
from synthaug.recipe import as_recipe, not_buildable
from synthaug.seeding import torch_generator
from synthaug.synthetic import Source
from synthaug.transforms import IMAGE_KEY, LABEL_KEY, SyntheticMix

__all__ = ["SyntheticMixCallback", "SyntheticMixMixin"]


def _freeze(mix: SyntheticMix, device: torch.device) -> None:
    if isinstance(mix.source, ConditionalGenerator):
        mix.source.requires_grad_(False).eval().to(device)


def _mix(mix: SyntheticMix, batch: Any, image_key: Any, label_key: Any, trainer: L.Trainer) -> dict[Any, Any]:
    """The entries of ``batch`` that mixing changes or adds, for this step and rank (same keys as the batch,
    plus ``"target"``, ``"weight"`` and ``"is_synthetic"`` for dict batches)."""
    image_key = image_key if image_key is not None else (IMAGE_KEY if isinstance(batch, dict) else 0)
    label_key = label_key if label_key is not None else (LABEL_KEY if isinstance(batch, dict) else 1)
    try:
        images, labels = batch[image_key], batch[label_key]
    except (KeyError, IndexError, TypeError) as err:
        raise TypeError(
            f"cannot find images at {image_key!r} and labels at {label_key!r} in a {type(batch).__name__} batch; "
            "set image_key= and label_key="
        ) from err
    generator = torch_generator(mix.seed, trainer.global_step, trainer.global_rank)
    if isinstance(batch, dict):
        out = mix({IMAGE_KEY: images, LABEL_KEY: labels}, generator=generator)
        return {image_key: out.pop(IMAGE_KEY), label_key: out.pop(LABEL_KEY), **out}
    images, labels = mix(images, labels, generator=generator)
    return {image_key: images, label_key: labels}


class SyntheticMixCallback(Callback):
    """Replaces (or appends) a ``ratio`` share of every training batch with synthetic samples.

    Batches must be lists ``[images, labels, ...]`` or dicts (``image_key``/``label_key``); a tuple
    cannot be edited in place, so it raises a ``TypeError`` naming :class:`SyntheticMixMixin`.

    Example:
        >>> trainer = L.Trainer(callbacks=[SyntheticMixCallback(bank, ratio=0.25)])  # doctest: +SKIP
    """

    def __init__(
        self, source: Source, ratio: float = 0.5, *, image_key: Any = None, label_key: Any = None, **options: Any
    ) -> None:
        self.mix = SyntheticMix(source, ratio, **options)
        self.image_key, self.label_key = image_key, label_key
        self.batches_mixed = 0
        self.synthetic_items = 0

    @classmethod
    def from_recipe(
        cls, recipe: Any, real: Any = None, *, seed: int = 0, image_key: Any = None, label_key: Any = None
    ) -> SyntheticMixCallback:
        """A callback that mixes batches as a recipe says (``recipe.json`` written by :func:`synthaug.recommend`,
        or a loaded :class:`~synthaug.recipe.Recipe`): its samples blended into ``ratio`` of each batch (mixup,
        CutMix; pass ``real``, a ``LabeledImages``, for a real-copies recipe), or appended, ``ratio`` of each
        batch; the samples pass through the recipe's augmentation. A policy and label smoothing belong to the
        model's training step (``synthaug.recipe_training`` lists them).

        Example:
            >>> trainer = L.Trainer(callbacks=[SyntheticMixCallback.from_recipe("runs/recommend/recipe.json")])  # doctest: +SKIP
        """
        recipe = as_recipe(recipe)
        if not recipe.mixes_batches and not recipe.is_synthetic:
            raise ValueError(not_buildable(recipe, "SyntheticMixCallback"))
        mode = recipe.arm["mix_mode"] if recipe.mixes_batches else "append"
        alpha = recipe.arm["mix_alpha"] if recipe.mixes_batches else 1.0
        return cls(recipe.source(real), recipe.arm["ratio"], image_key=image_key, label_key=label_key, mode=mode,
                   alpha=alpha, seed=seed, transform=recipe.sample_transform(seed=seed))  # fmt: skip

    @property
    def state_key(self) -> str:
        return self._generate_state_key(ratio=self.mix.ratio, mode=self.mix.mode, seed=self.mix.seed)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        _freeze(self.mix, pl_module.device)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        _freeze(self.mix, pl_module.device)  # the module is on its device by now

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if isinstance(batch, tuple):
            raise TypeError(
                "SyntheticMixCallback edits batches in place, which a tuple does not allow: make the DataLoader's "
                "collate_fn return a list or dict, or use synthaug.integrations.lightning.SyntheticMixMixin "
                "(it mixes in on_after_batch_transfer and accepts tuples)"
            )
        changed = _mix(self.mix, batch, self.image_key, self.label_key, trainer)
        if IS_SYNTHETIC in changed and not isinstance(batch, SyntheticFlagDict):
            # The user's own dict cannot warn when read: it carries the deprecated key as a plain entry until 0.3.
            changed[DEPRECATED_SYNTHETIC_KEY] = changed[IS_SYNTHETIC]
        for key, value in changed.items():
            batch[key] = value  # a list batch holds images and labels at their positions; a dict gains keys
        self.batches_mixed += 1
        self.synthetic_items += int(self.mix.last_synthetic_mask.sum())

    def state_dict(self) -> dict[str, Any]:
        return {
            "ratio": self.mix.ratio,
            "mode": self.mix.mode,
            "seed": self.mix.seed,
            "batches_mixed": self.batches_mixed,
            "synthetic_items": self.synthetic_items,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches_mixed = state_dict["batches_mixed"]
        self.synthetic_items = state_dict["synthetic_items"]


class SyntheticMixMixin:
    """Mixin for a ``LightningModule`` that mixes synthetic samples into training batches.

    Put it before ``LightningModule`` in the bases and call :meth:`configure_synthetic_mix` in
    ``__init__``. Batches may be tuples, lists (images and labels first) or dicts.

    Example:
        >>> class Classifier(SyntheticMixMixin, L.LightningModule):  # doctest: +SKIP
        ...     def __init__(self, bank):
        ...         super().__init__()
        ...         self.configure_synthetic_mix(bank, ratio=0.25)
    """

    def configure_synthetic_mix(
        self, source: Source, ratio: float = 0.5, *, image_key: Any = None, label_key: Any = None, **options: Any
    ) -> None:
        """``options`` are :class:`~synthaug.transforms.SyntheticMix`'s (``mode``, ``seed``, ``normalize``,
        ``teacher``, ``synthetic_weight``, ...)."""
        # object.__setattr__ keeps the mixer (and its generator) out of nn.Module registration.
        object.__setattr__(self, "_synthetic_mix", SyntheticMix(source, ratio, **options))
        object.__setattr__(self, "_synthetic_keys", (image_key, label_key))

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        batch = super().on_after_batch_transfer(batch, dataloader_idx)  # type: ignore[misc]
        mix: SyntheticMix | None = getattr(self, "_synthetic_mix", None)
        trainer = self._trainer  # type: ignore[attr-defined]
        if mix is None or trainer is None or not trainer.training:
            return batch
        _freeze(mix, self.device)  # type: ignore[attr-defined]
        changed = _mix(mix, batch, *self._synthetic_keys, trainer)
        if isinstance(batch, dict):
            return SyntheticFlagDict({**batch, **changed})  # "synthetic" reads "is_synthetic", with a FutureWarning
        items = list(batch)
        for key, value in changed.items():
            items[key] = value
        return type(batch)(items)
