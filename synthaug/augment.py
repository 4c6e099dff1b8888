"""SyntheticAugment: a Dataset wrapper that mixes synthetic samples into a real dataset.

Items
-----
By default an item is what the wrapped dataset yields, ``(image, label)``, and a synthetic item
looks exactly like a real one. Two opt-ins change that, the same way in :class:`SyntheticAugment`,
:class:`~synthaug.transforms.SyntheticMix` and the Lightning callback:

* ``teacher=``: synthetic samples get the labels a classifier trained on real data gives them.
  With ``hard_labels=True`` the label is the teacher's class; otherwise it is the teacher's
  probability vector (softmax at ``temperature``), and every item's label becomes a ``float32``
  ``(num_classes,)`` tensor (one-hot for real items), as torchvision's ``MixUp`` produces.
  ``F.cross_entropy(logits, targets)`` takes such targets as they are.
* ``item="dict"``: each item is a dict ``{"image", "label", "target", "weight", "is_synthetic"}``:
  ``label`` the class the item stands for (an ``int``), ``target`` the ``float32``
  ``(num_classes,)`` training target (one-hot, or the teacher's), ``weight`` its ``float32`` loss
  weight (1 for real items, ``synthetic_weight`` for synthetic ones) and ``is_synthetic`` a ``bool``
  (the HuggingFace column's name too; ``item["synthetic"]`` still reads it, with a FutureWarning, until 0.3).
  The default collate turns a batch into the same keys with a leading batch dimension;
  :func:`synthaug.classifier.losses.cross_entropy` (or ``(weight * F.cross_entropy(logits, target,
  reduction="none")).mean()``) is the loss that reads it.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, get_worker_info

from synthaug.data.conventions import SyntheticFlagDict
from synthaug.data.labeled import LabeledImages, label_to_int
from synthaug.data.samplers import EpochTaggedSampler
from synthaug.generators.base import sample_uint8
from synthaug.inference import as_model_input, predict
from synthaug.recipe import as_recipe, not_buildable
from synthaug.seeding import numpy_generator, torch_generator
from synthaug.synthetic import ImageFormat, Source, as_source, check_classes, check_soft_labels, is_pool, label_like

#: warn when a bank's samples would each recur more than this many times per epoch
REPEAT_WARNING = 5

Mode = Literal["append", "replace", "balance"]
#: how a bank's or pool's samples are drawn across epochs
Draw = Literal["random", "fresh"]
ItemKind = Literal["pair", "dict"]
#: a classifier run on synthetic images, or its probabilities for every sample of a bank or pool
Teacher = nn.Module | Callable[[torch.Tensor], torch.Tensor] | torch.Tensor


def _proportional(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainder, ties to the lower class)."""
    exact = counts * total / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    remainder = total - quota.sum()
    quota[np.argsort(-(exact - quota), kind="stable")[:remainder]] += 1
    return quota


@dataclass(frozen=True)
class ShareSchedule:
    """The synthetic share of epoch ``e`` as a factor of the full share, from ``start`` to ``end`` over ``epochs``.

    ``shape="linear"`` or ``"cosine"``; after ``epochs`` the factor stays at ``end``. With
    ``SyntheticAugment(..., schedule=ShareSchedule(1.0, 0.0, epochs=40))`` the synthetic items fade
    out over 40 epochs: the slots they leave are filled with real items of the same classes, so the
    dataset's length (and a sampler's epoch) never changes.
    """

    start: float = 1.0
    end: float = 0.0
    epochs: int = 1
    shape: Literal["linear", "cosine"] = "linear"

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"a share schedule's {name} must lie in [0, 1], got {value}")
        if self.epochs < 1:
            raise ValueError(f"a share schedule needs epochs >= 1, got {self.epochs}")
        if self.shape not in ("linear", "cosine"):
            raise ValueError(f"shape must be 'linear' or 'cosine', got {self.shape!r}")

    def __call__(self, epoch: int) -> float:
        progress = min(max(epoch, 0) / self.epochs, 1.0)
        if self.shape == "cosine":
            progress = 0.5 * (1 - math.cos(math.pi * progress))
        return self.start + (self.end - self.start) * progress


@dataclass
class _Plan:
    """Epoch ``epoch``: for each index, its synthetic class (-1: real), its bank index or sample seed,
    and (for real items) the index in the wrapped dataset."""

    epoch: int
    classes: np.ndarray
    picks: np.ndarray
    real_index: np.ndarray


class SyntheticAugment(Dataset):
    """Wraps a map-style dataset of ``(image, label)`` and mixes in synthetic items of the same classes.

    Args:
        dataset: the real dataset; its items are ``(image, label)`` with PIL, numpy or tensor images.
        source: a :class:`~synthaug.bank.SyntheticBank` (fast), a live generator, the path of either, or
            a :class:`~synthaug.data.LabeledImages` read as a pool of images.
        ratio: ``"append"``: add ``round(ratio * len(dataset))`` synthetic items (``ratio >= 0``), with
            classes in the real data's proportions (stratified); ``"replace"``: swap that share of the items
            (``0 <= ratio <= 1``) for synthetic items of the same class, a fresh choice every epoch.
            ``"balance"`` takes no ratio: it tops every class up to the size of the largest.
        seed: with the epoch and the index, determines every item.
        transform: applied to the image of every item, real and synthetic.
        normalize: ``(mean, std)`` if the dataset's images are normalised float tensors.
        labels: the real labels, if the dataset has no ``labels``/``targets`` attribute (else it is read once).
        match_class_names: when the dataset names its classes (``class_names`` or ``classes``), require the
            source's names to be the same, in the same order, so that label ``i`` means the same class.
        sample_options: a live generator's sampling options (e.g. ``{"steps": 4}``).
        teacher: label synthetic items with this classifier (a module or callable taking float images in
            ``[-1, 1]`` and returning logits), or with these probabilities, one row per sample of a bank
            or pool. See the module docstring for the item format.
        temperature: softmax temperature of the teacher's labels.
        hard_labels: use the teacher's class instead of its probabilities.
        synthetic_weight: loss weight of synthetic items (needs ``item="dict"``), apart from their share.
        schedule: a factor in ``[0, 1]`` on the synthetic share per epoch, e.g. :class:`ShareSchedule`;
            freed slots hold real items of the same classes (for ``"balance"``: real oversampling).
        item: ``"pair"`` (the real items' form) or ``"dict"`` (see the module docstring).
        draw: how synthetic slots pick bank (or pool) samples. ``"random"``: a fresh permutation of each
            class's pool every epoch (no repeats within an epoch until the pool runs out, but epochs reuse
            samples). ``"fresh"``: every sample is used at most once over training: each epoch takes the
            next unused samples of each class (one fixed permutation per class), so a bank 10x the
            synthetic share per epoch lasts 10 epochs; once a class's pool is used up its samples repeat
            (another permutation per pass) and a warning says so once. A live generator draws new
            samples for every slot of every epoch either way (each from its own seed).

    Synthetic images come out in the real items' type, dtype, layout and value range, and labels in
    the real labels' type. Item ``i`` of epoch ``e`` depends only on ``(seed, e, i)``: the same for any
    number of DataLoader workers. Give the epoch with :meth:`set_epoch`, or use :meth:`sampler`,
    whose indices carry it (needed with ``persistent_workers=True``).

    Example:
        >>> aug = SyntheticAugment(train_set, SyntheticBank.open("banks/fm"), ratio=0.5)  # doctest: +SKIP
        >>> loader = DataLoader(aug, batch_size=64, sampler=aug.sampler(seed=0), num_workers=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: Any,
        source: Source,
        *,
        ratio: float | None = None,
        mode: Mode = "append",
        seed: int = 0,
        transform: Callable[[Any], Any] | None = None,
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
        labels: Sequence[int] | torch.Tensor | None = None,
        match_class_names: bool = True,
        sample_options: dict[str, Any] | None = None,
        teacher: Teacher | None = None,
        temperature: float = 1.0,
        hard_labels: bool = False,
        synthetic_weight: float = 1.0,
        schedule: Callable[[int], float] | None = None,
        item: ItemKind = "pair",
        draw: Draw = "random",
    ) -> None:
        if draw not in ("random", "fresh"):
            raise ValueError(f"draw must be 'random' or 'fresh' (each bank sample used at most once), got {draw!r}")
        self.draw, self._fresh_counts, self._fresh_orders, self._warned_exhausted = draw, [], {}, False
        self.mode, self.ratio = mode, _check_ratio(ratio, mode)
        self.dataset, self.seed, self.transform, self.epoch = dataset, seed, transform, 0
        self.source = as_source(source)
        self.sample_options = dict(sample_options or {})
        if self.sample_options:
            if is_pool(self.source):
                raise ValueError("sample_options apply to a live generator; a bank was sampled with its own options")
            self.source.check_sample_options(self.sample_options)
        if item not in ("pair", "dict"):
            raise ValueError(f"item must be 'pair' or 'dict', got {item!r}")
        if not (synthetic_weight >= 0 and math.isfinite(synthetic_weight)):
            raise ValueError(f"synthetic_weight must be a finite number >= 0, got {synthetic_weight}")
        if synthetic_weight != 1.0 and item != "dict":
            raise ValueError("synthetic_weight needs item='dict': a weight travels in the item's 'weight' entry")
        self.item, self.synthetic_weight, self.schedule = item, float(synthetic_weight), schedule
        n = len(dataset)
        if n == 0:
            raise ValueError("the wrapped dataset is empty")
        image, label = self._real(0)
        self.format = ImageFormat.of(image, normalize=normalize, where="dataset item 0")
        self._label_reference = label
        if self.format.shape != tuple(self.source.image_shape):
            raise ValueError(
                f"the dataset's images have shape (C, H, W) = {self.format.shape} but the synthetic source makes "
                f"{tuple(self.source.image_shape)}; train the generator on images of the dataset's size"
            )
        self.real_labels = self._read_labels(labels)
        check_classes(self.source, self.real_labels, "the dataset")
        names = getattr(dataset, "class_names", None) or getattr(dataset, "classes", None)
        if match_class_names and names is not None and tuple(map(str, names)) != tuple(self.source.class_names):
            raise ValueError(
                f"the dataset's classes {list(names)[:12]} differ from the synthetic source's "
                f"{list(self.source.class_names)[:12]}: label i must mean the same class in both; use a source "
                "trained on this dataset, or pass match_class_names=False if only the names differ"
            )
        self._teacher, self._pool_targets = self._init_teacher(teacher, temperature, hard_labels)
        self.temperature, self.hard_labels = temperature, hard_labels

        counts = np.bincount(self.real_labels, minlength=self.source.num_classes)
        if mode == "append":
            self._extra_classes = np.repeat(np.arange(len(counts)), _proportional(counts, round(self.ratio * n)))
        elif mode == "balance":
            self._extra_classes = np.repeat(np.arange(len(counts)), counts.max() - counts)
        else:
            self._extra_classes = np.zeros(0, np.int64)
        check_classes(self.source, self._extra_classes, "the synthetic share")
        self._warn_if_repeated(n)
        self._length = n + len(self._extra_classes)
        self._by_class = [np.flatnonzero(self.real_labels == c) for c in range(self.source.num_classes)]
        self._plan_cache: _Plan | None = None

    @classmethod
    def from_recipe(cls, recipe: Any, dataset: Any, *, seed: int = 0, **options: Any) -> SyntheticAugment:
        """``dataset`` with the synthetic samples of a recipe that appends them (``recipe.json`` written by
        :func:`synthaug.recommend`, or a loaded :class:`~synthaug.recipe.Recipe`): its bank at its ratio and
        mode, and its per-image augmentation as ``transform``. ``options`` are the constructor's others.

        The rest of a recipe (an augmentation policy, label smoothing) belongs to the training loop:
        ``synthaug.recipe_training(recipe, real)`` builds everything at once.

        Example:
            >>> train_set = SyntheticAugment.from_recipe("runs/recommend/recipe.json", real)  # doctest: +SKIP
        """
        recipe = as_recipe(recipe)
        if not recipe.is_synthetic or recipe.mixes_batches:
            raise ValueError(not_buildable(recipe, "SyntheticAugment"))
        return cls(dataset, recipe.source(), ratio=recipe.arm["ratio"], mode=recipe.arm["mode"], seed=seed,
                   transform=options.pop("transform", recipe.transform(seed=seed)), **options)  # fmt: skip

    # --- construction helpers ------------------------------------------------------------------

    def _warn_if_repeated(self, real: int) -> None:
        """Warn when a bank is too small for the synthetic share: each sample would recur many times an epoch."""
        if not is_pool(self.source) or self.draw != "random":
            return
        if self.mode == "replace":  # that share of each class's items is synthetic
            wanted = np.round(self.ratio * np.bincount(self.real_labels, minlength=self.source.num_classes)).astype(int)
        else:
            wanted = np.bincount(self._extra_classes, minlength=self.source.num_classes)
        if not wanted.any():
            return
        have = np.asarray(self.source.class_counts())
        used = wanted > 0
        repeats = wanted[used] / np.maximum(have[used], 1)
        if repeats.max() <= REPEAT_WARNING:
            return
        share = "balance" if self.mode == "balance" else f"ratio {self.ratio:g}"
        warnings.warn(
            f"a source of {int(have.sum())} synthetic samples fills {int(wanted.sum())} synthetic items per epoch "
            f"({real} real images, {share}): each sample recurs about {wanted.sum() / max(have[used].sum(), 1):.1f} "
            f"times an epoch (up to {repeats.max():.1f} in one class); generate a larger bank or lower the ratio",
            UserWarning,
            stacklevel=3,
        )

    def _real(self, index: int) -> tuple[Any, Any]:
        item = self.dataset[index]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(
                f"dataset item {index} must be an (image, label) pair, got {type(item).__name__}"
                f"{f' of length {len(item)}' if isinstance(item, (tuple, list)) else ''}"
            )
        return item[0], item[1]

    def _read_labels(self, labels: Sequence[int] | torch.Tensor | None) -> np.ndarray:
        if labels is None:
            for name in ("labels", "targets"):
                candidate = getattr(self.dataset, name, None)
                if candidate is not None and not callable(candidate) and len(candidate) == len(self.dataset):
                    labels = candidate
                    break
        if labels is None:  # read every item once
            labels = [label_to_int(self._real(i)[1], f"dataset item {i}") for i in range(len(self.dataset))]
        out = np.asarray(torch.as_tensor(np.asarray(labels)), dtype=np.int64)
        if out.shape != (len(self.dataset),):
            raise ValueError(f"labels must have one entry per item ({len(self.dataset)}), got shape {out.shape}")
        return out

    def _init_teacher(self, teacher: Teacher | None, temperature: float, hard: bool) -> tuple[Any, torch.Tensor | None]:
        """The teacher to run on live samples, or the targets of every pool sample, computed once."""
        if teacher is None:
            return None, None
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        k = self.source.num_classes
        if isinstance(teacher, torch.Tensor):
            if not is_pool(self.source):
                raise ValueError("teacher probabilities label the samples of a bank or pool; a live generator needs a "
                                 "teacher model (teacher=classifier)")  # fmt: skip
            targets = check_soft_labels(teacher, k, len(self.source), what="teacher probabilities")
        elif is_pool(self.source):
            targets = teacher_targets(teacher, self.source.images(torch.arange(len(self.source))), k, temperature)
        else:
            return teacher, None
        return None, _one_hot(targets.argmax(1), k) if hard else targets

    # --- epochs and plans ----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._length

    # --- what torchvision users and train_classifier read -----------------------------------

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.source.class_names)

    @property
    def classes(self) -> list[str]:
        """The class names as torchvision datasets name them (``dataset.classes``); read-only."""
        return list(self.class_names)

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.source.image_shape
        return (c, h, w)

    @property
    def targets(self) -> torch.Tensor:
        """The class each item of the current epoch (:meth:`set_epoch`) stands for, ``int64`` ``(len(self),)``;
        read-only (torchvision's name; synthetic items change from epoch to epoch)."""
        plan = self._plan(self.epoch)
        real = self.real_labels[plan.real_index.clip(0, len(self.real_labels) - 1)]  # synthetic slots: overwritten below
        return torch.from_numpy(np.where(plan.classes >= 0, plan.classes, real))

    def set_epoch(self, epoch: int) -> None:
        """The epoch for plain integer indices (the :meth:`sampler`'s indices carry their own)."""
        self.epoch = epoch

    def sampler(
        self, *, shuffle: bool = True, seed: int = 0, num_replicas: int | None = None, rank: int | None = None
    ) -> EpochTaggedSampler:
        """A sampler (with ``set_epoch``, sharded for DDP when ``num_replicas``/``rank`` are given or
        a process group is up) whose indices carry the epoch to the workers."""
        if num_replicas is None or rank is None:
            dist = torch.distributed.is_available() and torch.distributed.is_initialized()
            num_replicas = torch.distributed.get_world_size() if dist else 1
            rank = torch.distributed.get_rank() if dist else 0
        return EpochTaggedSampler(len(self), seed=seed, rank=rank, world_size=num_replicas, shuffle=shuffle)

    def share(self, epoch: int) -> float:
        """The factor on the synthetic share in ``epoch`` (1 without a schedule)."""
        if self.schedule is None:
            return 1.0
        factor = float(self.schedule(epoch))
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"the share schedule gave {factor} for epoch {epoch}; it must stay in [0, 1]")
        return factor

    def _plan(self, epoch: int) -> _Plan:
        if self._plan_cache is not None and self._plan_cache.epoch == epoch:
            return self._plan_cache
        classes, real_index, rng = self._layout(epoch)
        picks = np.zeros(self._length, dtype=np.int64)
        synthetic = np.flatnonzero(classes >= 0)
        if is_pool(self.source) and self.draw == "fresh":
            for label in np.unique(classes[synthetic]):
                slots = synthetic[classes[synthetic] == label]
                picks[slots] = self._fresh_picks(int(label), epoch, len(slots))
        elif is_pool(self.source):
            # Each class's slots walk through a fresh permutation of its pool: no repeats until it runs out.
            for label in np.unique(classes[synthetic]):
                slots = synthetic[classes[synthetic] == label]
                pool = self.source.indices_of(int(label)).numpy()
                picks[slots] = np.resize(pool[rng.permutation(len(pool))], len(slots))
        else:
            picks[synthetic] = rng.integers(0, 2**62, size=len(synthetic))
        self._plan_cache = _Plan(epoch, classes, picks, real_index)
        return self._plan_cache

    def _layout(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """Epoch ``epoch``'s synthetic class per index (-1: real), real index per index, and the epoch's
        random stream after drawing them (the random draw of bank samples continues it)."""
        rng = numpy_generator(self.seed, epoch)
        n, factor = len(self.dataset), self.share(epoch)
        classes = np.full(self._length, -1, dtype=np.int64)
        real_index = np.arange(self._length, dtype=np.int64)
        if self.mode == "replace":
            replaced = round(factor * self.ratio * n)
            if replaced:
                chosen = rng.choice(n, replaced, replace=False)
                classes[chosen] = self.real_labels[chosen]
        elif len(self._extra_classes):
            extra = self._extra_classes.copy()
            kept = round(factor * len(extra))
            if kept < len(extra):  # the schedule frees slots: real items of the same classes fill them
                freed = np.sort(rng.choice(len(extra), len(extra) - kept, replace=False))
                real_index[n + freed] = [self._by_class[c][rng.integers(len(self._by_class[c]))] for c in extra[freed]]
                extra[freed] = -1
            classes[n:] = extra
        return classes, real_index, rng

    def _fresh_offset(self, label: int, epoch: int) -> int:
        """How many samples of class ``label`` the epochs before ``epoch`` used (``draw="fresh"``)."""
        if self.mode != "replace" and self.schedule is None:  # the same slots every epoch
            return epoch * int(np.count_nonzero(self._extra_classes == label))
        k = self.source.num_classes
        while len(self._fresh_counts) < epoch:  # cumulative per-class counts, one row per epoch, computed once
            classes = self._layout(len(self._fresh_counts))[0]
            used = np.bincount(classes[classes >= 0], minlength=k)
            self._fresh_counts.append(used + (self._fresh_counts[-1] if self._fresh_counts else 0))
        return int(self._fresh_counts[epoch - 1][label]) if epoch > 0 else 0

    def _fresh_picks(self, label: int, epoch: int, count: int) -> np.ndarray:
        """Bank indices for ``count`` slots of class ``label`` in ``epoch``: the next unused samples of the class's
        stream, which runs through one permutation of its pool per pass (pass ``p`` seeded by ``(seed, label, p)``)."""
        pool = self.source.indices_of(label).numpy()
        positions = self._fresh_offset(label, epoch) + np.arange(count)
        passes = positions // len(pool)
        picks = np.empty(count, dtype=np.int64)
        for p in np.unique(passes).tolist():
            if (label, p) not in self._fresh_orders:
                # passes of this class before the previous one are never read again: keep memory flat
                self._fresh_orders = {key: v for key, v in self._fresh_orders.items() if key[0] != label or key[1] >= p - 1}
                self._fresh_orders[label, p] = numpy_generator(self.seed, "fresh", label, p).permutation(len(pool))
            where = passes == p
            picks[where] = pool[self._fresh_orders[label, p][positions[where] % len(pool)]]
        if passes[-1] > 0 and not self._warned_exhausted:
            self._warned_exhausted = True
            warnings.warn(
                f"SyntheticAugment(draw='fresh'): epoch {epoch} used up the {len(pool)} samples of class {label} "
                f"({self.source.class_names[label]!r}) in the synthetic source; its samples repeat from here on. "
                "Generate a larger bank for more epochs of fresh samples",
                stacklevel=2,
            )
        return picks

    def is_synthetic(self, index: int, epoch: int | None = None) -> bool:
        """Whether item ``index`` of ``epoch`` (default: the current epoch) is synthetic."""
        return bool(self._plan(self.epoch if epoch is None else epoch).classes[index] >= 0)

    def synthetic_mask(self, epoch: int | None = None) -> torch.Tensor:
        """A boolean tensor over all indices: which items of ``epoch`` are synthetic."""
        return torch.from_numpy(self._plan(self.epoch if epoch is None else epoch).classes >= 0)

    # --- items ---------------------------------------------------------------------------------

    def __getitem__(self, index: int | tuple[int, int]) -> Any:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int | tuple[int, int]]) -> list[Any]:
        """A batch of items (the DataLoader calls this): plan lookups, bank reads and conversions run once
        per batch, and a wrapped :class:`~synthaug.data.LabeledImages` is gathered in one indexing operation."""
        if not len(indices):
            return []
        tagged = np.asarray(indices, dtype=np.int64)  # (B, 2) of (epoch, index) from sampler(), else (B,)
        epochs = tagged[:, 0] if tagged.ndim == 2 else np.full(len(tagged), self.epoch)
        positions = tagged[:, 1] if tagged.ndim == 2 else tagged
        if (epochs != epochs[0]).any():  # never from one sampler; possible from a hand-made batch
            return [item for i in indices for item in self.__getitems__([i])]
        bad = positions[(positions < 0) | (positions >= self._length)]
        if len(bad):
            raise IndexError(f"indices {bad[:5].tolist()} out of range for {self._length} items")
        plan = self._plan(int(epochs[0]))
        labels, picks = plan.classes[positions], plan.picks[positions]
        real, synthetic = np.flatnonzero(labels < 0), np.flatnonzero(labels >= 0)
        images = self._synthetic_images(labels[synthetic], picks[synthetic])
        sources = plan.real_index[positions[real]]
        if isinstance(self.dataset, LabeledImages) and self.transform is None and self.item == "pair" and not self._labels_by_teacher:
            return self._gather(sources, real, synthetic, labels, images)
        items = self._pairs(sources, real, synthetic, labels, images)
        if self.transform is not None:
            items = [(self.transform(image), label) for image, label in items]
        if self.item == "pair" and not self._labels_by_teacher:
            return items
        true_labels = labels.copy()
        true_labels[real] = self.real_labels[sources]
        targets = self._targets(true_labels, picks, synthetic, images)
        if self.item == "pair":
            if self.hard_labels:
                return [(image, label_like(self._label_reference, int(t.argmax()))) for (image, _), t in zip(items, targets)]
            return [(image, t) for (image, _), t in zip(items, targets)]
        weights = np.where(labels >= 0, self.synthetic_weight, 1.0).astype(np.float32)
        return [
            SyntheticFlagDict(image=image, label=int(y), target=t, weight=torch.tensor(w), is_synthetic=bool(c >= 0))
            for (image, _), y, t, w, c in zip(items, true_labels, targets, weights, labels)
        ]

    @property
    def _labels_by_teacher(self) -> bool:
        return self._teacher is not None or self._pool_targets is not None

    def _pairs(
        self, sources: np.ndarray, real: np.ndarray, synthetic: np.ndarray, labels: np.ndarray, images: torch.Tensor
    ) -> list[tuple[Any, Any]]:
        """``(image, label)`` items in the real items' format, real ones fetched from the dataset."""
        items: list[Any] = [None] * len(labels)
        if len(real):
            fetch = getattr(self.dataset, "__getitems__", None)
            fetched = fetch(sources.tolist()) if fetch else [self.dataset[int(i)] for i in sources]
            for slot, source_index, item in zip(real.tolist(), sources.tolist(), fetched):
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    raise TypeError(f"dataset item {source_index} must be an (image, label) pair, got {type(item).__name__}")
                items[slot] = item
        if len(synthetic):
            if self.format.kind == "tensor":
                converted = self.format.convert_batch(images).unbind(0)
            else:
                converted = [self.format.convert(image) for image in images]
            for slot, image in zip(synthetic.tolist(), converted):
                items[slot] = (image, label_like(self._label_reference, int(labels[slot])))
        return items

    def _targets(self, true_labels: np.ndarray, picks: np.ndarray, synthetic: np.ndarray, images: torch.Tensor) -> list[torch.Tensor]:
        """``float32`` ``(num_classes,)`` targets: one-hot, or the teacher's for synthetic items."""
        k = self.source.num_classes
        targets = _one_hot(torch.from_numpy(true_labels), k)
        if len(synthetic) and self._labels_by_teacher:
            where = torch.from_numpy(synthetic)
            if self._pool_targets is not None:
                targets[where] = self._pool_targets[torch.from_numpy(picks[synthetic])]
            else:
                soft = teacher_targets(self._teacher, images, k, self.temperature)
                targets[where] = _one_hot(soft.argmax(1), k) if self.hard_labels else soft
        return list(targets.unbind(0))

    def _synthetic_images(self, labels: np.ndarray, picks: np.ndarray) -> torch.Tensor:
        """``uint8`` images for synthetic slots: pool reads, or live samples from each slot's seed."""
        if is_pool(self.source):
            return self.source.images(picks)
        generator = self.source
        if len(labels) and generator.device.type == "cuda" and get_worker_info() is not None:
            if torch.multiprocessing.get_start_method(allow_none=True) in (None, "fork"):
                raise RuntimeError(
                    "a CUDA generator cannot sample inside forked DataLoader workers (CUDA does not survive fork); "
                    "pre-generate a SyntheticBank, use num_workers=0, or DataLoader(multiprocessing_context='spawn')"
                )
        # One generator per slot: each sample depends on its own seed only, and the batch samples in one call.
        rngs = [torch_generator(int(seed)) for seed in picks]
        return sample_uint8(generator, torch.from_numpy(labels), generator=rngs, **self.sample_options)

    def _gather(
        self, sources: np.ndarray, real: np.ndarray, synthetic: np.ndarray, labels: np.ndarray, images: torch.Tensor
    ) -> list[tuple[torch.Tensor, int]]:
        """Items of a wrapped LabeledImages, assembled as whole tensors: the same items as its ``__getitem__``."""
        data: LabeledImages = self.dataset
        # Gathered real images, then the synthetic ones, put in slot order by one more gather: cheaper than
        # writing either into place (index_put_ is several times slower than index_select on the CPU).
        stacked = torch.cat([data.images.index_select(0, torch.from_numpy(sources)), images])
        batch = stacked.index_select(0, torch.from_numpy(np.argsort(np.concatenate([real, synthetic]))))
        targets = labels.copy()
        targets[real] = self.real_labels[sources]
        return list(zip(batch.unbind(0), targets.tolist()))


def _check_ratio(ratio: float | None, mode: str) -> float | None:
    if mode not in ("append", "replace", "balance"):
        raise ValueError(f"mode must be 'append', 'replace' or 'balance', got {mode!r}")
    if mode == "balance":
        if ratio is not None:
            raise ValueError("mode='balance' sets the synthetic share itself; leave ratio unset")
        return None
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, numbers.Real)):
        raise TypeError(f"ratio must be a number (synthetic items per real item), got {ratio!r} of type {type(ratio).__name__}")
    ratio = 0.5 if ratio is None else float(ratio)
    if mode == "replace" and not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must lie in [0, 1] for mode='replace', got {ratio}; "
                         "use mode='append' to add more synthetic items than real ones")  # fmt: skip
    if not (ratio >= 0.0 and math.isfinite(ratio)):
        raise ValueError(f"ratio must be a finite number >= 0 for mode={mode!r}, got {ratio}")
    return ratio


def _one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


def teacher_targets(teacher: Teacher, images: torch.Tensor, num_classes: int, temperature: float = 1.0) -> torch.Tensor:
    """A teacher's softmax probabilities (at ``temperature``) for ``uint8`` images, ``(N, num_classes)``.

    ``teacher`` is a module or callable taking float images in ``[-1, 1]``; a class count that differs
    from the data's is refused.
    """
    if isinstance(teacher, nn.Module):
        probabilities = predict(teacher, images, probabilities=True, temperature=temperature)
    else:
        with torch.no_grad():
            probabilities = (torch.as_tensor(teacher(as_model_input(images))).float() / temperature).softmax(1)
    if probabilities.ndim != 2 or probabilities.shape[1] != num_classes:
        raise ValueError(
            f"the teacher outputs {probabilities.shape[1] if probabilities.ndim == 2 else 'no'} class scores per image but the data has "
            f"{num_classes} classes; use a teacher trained on the same classes"
        )
    return probabilities
