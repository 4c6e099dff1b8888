"""SyntheticAugment: a Dataset wrapper that mixes synthetic samples into a real dataset."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from synthaug.bank import SyntheticBank
from synthaug.data.labeled import LabeledImages
from synthaug.data.sources import label_to_int
from synthaug.sampling import EpochTaggedSampler
from synthaug.synthetic import ImageFormat, Source, as_source, check_classes, draw, label_like

Mode = Literal["append", "replace", "balance"]


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch])


def _proportional(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` (largest remainder, ties to the lower class)."""
    exact = counts * total / counts.sum()
    quota = np.floor(exact).astype(np.int64)
    remainder = total - quota.sum()
    quota[np.argsort(-(exact - quota), kind="stable")[:remainder]] += 1
    return quota


class SyntheticAugment(Dataset):
    """Wraps a map-style dataset of ``(image, label)`` and mixes in synthetic items of the same classes.

    Args:
        dataset: the real dataset; its items are ``(image, label)`` with PIL, numpy or tensor images.
        source: a :class:`~synthaug.bank.SyntheticBank` (fast), a live generator, or the path of either.
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
    ) -> None:
        if mode not in ("append", "replace", "balance"):
            raise ValueError(f"mode must be 'append', 'replace' or 'balance', got {mode!r}")
        if mode == "balance":
            if ratio is not None:
                raise ValueError("mode='balance' sets the synthetic share itself; leave ratio unset")
        else:
            ratio = 0.5 if ratio is None else float(ratio)
            upper = 1.0 if mode == "replace" else math.inf
            if not (0.0 <= ratio <= upper) or math.isnan(ratio):
                raise ValueError(
                    f"ratio must lie in [0, {upper:g}] for mode={mode!r}, got {ratio}"
                    + ("; use mode='append' to add more synthetic items than real ones" if mode == "replace" else "")
                )
        self.dataset, self.mode, self.ratio, self.seed = dataset, mode, ratio, seed
        self.transform, self.epoch = transform, 0
        self.source = as_source(source)
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

        counts = np.bincount(self.real_labels, minlength=self.source.num_classes)
        if mode == "append":
            quota = _proportional(counts, round(ratio * n))
            self._extra_classes = np.repeat(np.arange(len(counts)), quota)
        elif mode == "balance":
            deficits = counts.max() - counts
            self._extra_classes = np.repeat(np.arange(len(counts)), deficits)
        else:
            self._extra_classes = np.zeros(0, np.int64)
            self._num_replaced = round(ratio * n)
        check_classes(self.source, self._extra_classes, "the synthetic share")
        self._length = n + len(self._extra_classes)
        self._plan_cache: tuple[int, np.ndarray, np.ndarray] | None = None

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

    def __len__(self) -> int:
        return self._length

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

    def _plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """For every index of ``epoch``: its synthetic class (-1 for a real item) and the bank index or seed."""
        if self._plan_cache is not None and self._plan_cache[0] == epoch:
            return self._plan_cache[1], self._plan_cache[2]
        rng = _epoch_rng(self.seed, epoch)
        n = len(self.dataset)
        classes = np.full(self._length, -1, dtype=np.int64)
        classes[n:] = self._extra_classes
        if self.mode == "replace" and self._num_replaced:
            chosen = rng.choice(n, self._num_replaced, replace=False)
            classes[chosen] = self.real_labels[chosen]
        picks = np.zeros(self._length, dtype=np.int64)
        synthetic = np.flatnonzero(classes >= 0)
        if isinstance(self.source, SyntheticBank):
            # Each class's slots walk through a fresh permutation of its pool: no repeats until it runs out.
            for label in np.unique(classes[synthetic]):
                slots = synthetic[classes[synthetic] == label]
                pool = self.source.indices_of(int(label)).numpy()
                picks[slots] = np.resize(pool[rng.permutation(len(pool))], len(slots))
        else:
            picks[synthetic] = rng.integers(0, 2**62, size=len(synthetic))
        self._plan_cache = (epoch, classes, picks)
        return classes, picks

    def is_synthetic(self, index: int, epoch: int | None = None) -> bool:
        """Whether item ``index`` of ``epoch`` (default: the current epoch) is synthetic."""
        return bool(self._plan(self.epoch if epoch is None else epoch)[0][index] >= 0)

    def synthetic_mask(self, epoch: int | None = None) -> torch.Tensor:
        """A boolean tensor over all indices: which items of ``epoch`` are synthetic."""
        return torch.from_numpy(self._plan(self.epoch if epoch is None else epoch)[0] >= 0)

    def __getitem__(self, index: int | tuple[int, int]) -> tuple[Any, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int | tuple[int, int]]) -> list[tuple[Any, Any]]:
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
        classes, picks = self._plan(int(epochs[0]))
        labels = classes[positions]
        real, synthetic = np.flatnonzero(labels < 0), np.flatnonzero(labels >= 0)
        images = self._synthetic_images(labels[synthetic], picks[positions[synthetic]])
        if isinstance(self.dataset, LabeledImages) and self.transform is None:
            return self._gather(positions, real, synthetic, labels, images)
        items: list[Any] = [None] * len(positions)
        if len(real):
            fetch = getattr(self.dataset, "__getitems__", None)
            fetched = fetch(positions[real].tolist()) if fetch else [self.dataset[int(i)] for i in positions[real]]
            for slot, item in zip(real.tolist(), fetched):
                if not isinstance(item, (tuple, list)) or len(item) != 2:
                    raise TypeError(f"dataset item {positions[slot]} must be an (image, label) pair, got {type(item).__name__}")
                items[slot] = item
        if len(synthetic):
            if self.format.kind == "tensor":
                converted = self.format.convert_batch(images).unbind(0)
            else:
                converted = [self.format.convert(image) for image in images]
            for slot, image in zip(synthetic.tolist(), converted):
                items[slot] = (image, label_like(self._label_reference, int(labels[slot])))
        if self.transform is not None:
            items = [(self.transform(image), label) for image, label in items]
        return items

    def _synthetic_images(self, labels: np.ndarray, picks: np.ndarray) -> torch.Tensor:
        """``uint8`` images for synthetic slots: bank reads, or live samples from each slot's seed."""
        if isinstance(self.source, SyntheticBank):
            return self.source.images(picks)
        if not len(labels):
            return torch.empty((0, *self.source.image_shape), dtype=torch.uint8)
        return torch.stack([self._sample(int(label), int(seed)) for label, seed in zip(labels, picks)])

    def _gather(
        self, positions: np.ndarray, real: np.ndarray, synthetic: np.ndarray, labels: np.ndarray, images: torch.Tensor
    ) -> list[tuple[torch.Tensor, int]]:
        """Items of a wrapped LabeledImages, assembled as whole tensors: the same items as its ``__getitem__``."""
        data: LabeledImages = self.dataset
        batch = torch.empty((len(positions), *data.image_shape), dtype=torch.uint8)
        targets = torch.empty(len(positions), dtype=torch.int64)
        index = torch.from_numpy(positions[real])
        batch[torch.from_numpy(real)] = data.images[index]
        targets[torch.from_numpy(real)] = data.labels[index]
        batch[torch.from_numpy(synthetic)] = images
        targets[torch.from_numpy(synthetic)] = torch.from_numpy(labels[synthetic])
        return list(zip(batch.unbind(0), targets.tolist()))

    def _sample(self, label: int, seed: int) -> torch.Tensor:
        """One live sample of ``label`` from the seed the plan gave its slot."""
        generator = self.source
        if generator.device.type == "cuda" and get_worker_info() is not None:
            if torch.multiprocessing.get_start_method(allow_none=True) in (None, "fork"):
                raise RuntimeError(
                    "a CUDA generator cannot sample inside forked DataLoader workers (CUDA does not survive fork); "
                    "pre-generate a SyntheticBank, use num_workers=0, or DataLoader(multiprocessing_context='spawn')"
                )
        return draw(generator, torch.tensor([label]), torch.Generator().manual_seed(seed))[0]
