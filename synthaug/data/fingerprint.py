"""Provenance: a cheap fingerprint of a :class:`~synthaug.data.LabeledImages`, so that what a generator was
trained on is recorded and a "held-out" set can be checked against it.

A fingerprint keeps one 64-bit hash per image (blake2b of the image's bytes; the labels are kept beside
them) and a digest of the sorted hashes, the labels and the image shape: two datasets with the same images
and labels, in any order, have the same digest. Counting the images two sets share is a sorted lookup.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

log = logging.getLogger(__name__)

#: how each image is hashed (recorded with every fingerprint, so that another scheme is never compared with this one)
HASH = "blake2b-64"


class LabeledImages(Protocol):
    """What a fingerprint reads (a :class:`~synthaug.data.LabeledImages`; named here without importing it)."""

    images: torch.Tensor
    labels: torch.Tensor

    @property
    def image_shape(self) -> tuple[int, int, int]: ...

    @property
    def num_classes(self) -> int: ...

    def __len__(self) -> int: ...


class DataLeakError(ValueError):
    """A held-out set shares images with the images a generator (or a classifier) was trained on."""


def image_hashes(images: np.ndarray) -> np.ndarray:
    """``(N,)`` uint64: the blake2b-64 hash of each image's bytes (``images``: ``(N, ...)`` uint8)."""
    rows = np.ascontiguousarray(images).reshape(len(images), -1)
    digests = b"".join(hashlib.blake2b(row, digest_size=8).digest() for row in rows)  # ~0.1 s for 60,000 28x28 images
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


@dataclass(frozen=True, eq=False)
class DataFingerprint:
    """What a labelled image set holds: one hash per image, sorted, with its label, and their digest.

    Get one with :meth:`LabeledImages.fingerprint`; ``generator.training_data`` is the fingerprint of the
    images a generator was trained on (``None`` when it was saved before synthaug recorded it).

    Example:
        >>> from synthaug.data import load_digits
        >>> train, test = load_digits(split="train"), load_digits(split="test")
        >>> train.fingerprint().overlap(test)
        0
    """

    hashes: np.ndarray
    labels: np.ndarray
    image_shape: tuple[int, int, int]
    num_classes: int

    @classmethod
    def of(cls, data: LabeledImages) -> DataFingerprint:
        """The fingerprint of ``data`` (see :meth:`LabeledImages.fingerprint`)."""
        return cls.from_tensors(data.images, data.labels, data.num_classes)

    @classmethod
    def from_tensors(cls, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> DataFingerprint:
        """The fingerprint of ``uint8`` images ``(N, C, H, W)`` and their labels (any device)."""
        hashes = image_hashes(images.detach().cpu().numpy())
        labels_np = labels.detach().cpu().numpy().astype(np.int64)
        order = np.lexsort((labels_np, hashes))
        c, h, w = images.shape[1:]
        return cls(hashes[order], labels_np[order], (int(c), int(h), int(w)), int(num_classes))

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def count(self) -> int:
        return len(self.hashes)

    def class_counts(self) -> list[int]:
        """Number of images of each class, in class order."""
        return np.bincount(self.labels, minlength=self.num_classes).tolist()

    @cached_property
    def digest(self) -> str:
        """sha256 (hex) of the image shape, the sorted hashes and their labels: the same for the same images in any order."""
        digest = hashlib.sha256(json.dumps([HASH, list(self.image_shape), self.num_classes]).encode())
        digest.update(self.hashes.astype("<u8").tobytes())
        digest.update(self.labels.astype("<i8").tobytes())
        return digest.hexdigest()

    def describe(self) -> str:
        """A short name for messages: ``'500 images (digest 1a2b3c4d5e6f)'``."""
        return f"{self.count:,} images (digest {self.digest[:12]})"

    def summary(self) -> dict[str, Any]:
        """The JSON-able part (what ``config.json`` and a bank's manifest record; the hashes go to a file)."""
        return {"hash": HASH, "count": self.count, "class_counts": self.class_counts(),
                "image_shape": list(self.image_shape), "digest": self.digest}  # fmt: skip

    def shared(self, other: DataFingerprint | LabeledImages) -> np.ndarray:
        """A boolean mask over ``other``'s images (in ``other``'s own order): which of them are among these images."""
        theirs = other if isinstance(other, DataFingerprint) else None
        hashes = theirs.hashes if theirs is not None else image_hashes(other.images.detach().cpu().numpy())
        shape = theirs.image_shape if theirs is not None else other.image_shape
        if tuple(shape) != tuple(self.image_shape):
            return np.zeros(len(hashes), dtype=bool)  # images of another shape are never byte-equal
        return np.isin(hashes, self.hashes)

    def overlap(self, other: DataFingerprint | LabeledImages) -> int:
        """How many of ``other``'s images are among these images (byte-equal; duplicates in ``other`` count each time)."""
        return int(self.shared(other).sum())

    def union(self, other: DataFingerprint) -> DataFingerprint:
        """The fingerprint of the images of either set, each distinct (image, label) once (e.g. a generator fine-tuned on more images)."""
        if other.digest == self.digest:
            return self
        if tuple(other.image_shape) != tuple(self.image_shape) or other.num_classes != self.num_classes:
            raise ValueError(f"cannot join fingerprints of {self.image_shape} images of {self.num_classes} classes and "
                             f"{other.image_shape} images of {other.num_classes} classes")  # fmt: skip
        hashes, labels = np.concatenate([self.hashes, other.hashes]), np.concatenate([self.labels, other.labels])
        order = np.lexsort((labels, hashes))
        hashes, labels = hashes[order], labels[order]
        first = np.ones(len(hashes), dtype=bool)
        first[1:] = (hashes[1:] != hashes[:-1]) | (labels[1:] != labels[:-1])
        return DataFingerprint(hashes[first], labels[first], self.image_shape, self.num_classes)

    def to_bytes(self) -> bytes:
        """A safetensors file: the hashes and labels, the shape and digest in its metadata (no pickle)."""
        # One metadata entry: safetensors writes several in a random order, and the bytes must not change.
        meta = json.dumps({"hash": HASH, "image_shape": list(self.image_shape), "num_classes": self.num_classes,
                           "digest": self.digest}, sort_keys=True)  # fmt: skip
        tensors = {"hashes": self.hashes.astype(np.uint64), "labels": self.labels.astype(np.int32)}
        return save_safetensors(tensors, metadata={"synthaug_fingerprint": meta})

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "the fingerprint") -> DataFingerprint:
        """Read :meth:`to_bytes`' output; refuse a file that is not one or whose digest does not match its content."""
        try:
            tensors = load_safetensors(data)
            meta = json.loads(_metadata(data)["synthaug_fingerprint"])
            fingerprint = cls(tensors["hashes"].astype(np.uint64), tensors["labels"].astype(np.int64),
                              tuple(meta["image_shape"]), int(meta["num_classes"]))  # fmt: skip
        except (SafetensorError, KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{where} is not a synthaug data fingerprint ({type(err).__name__}: {err})") from err
        if meta.get("hash") != HASH or fingerprint.digest != meta.get("digest"):
            raise ValueError(f"{where} does not match its recorded digest; it was modified: re-save it")
        return fingerprint


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob (its JSON header)."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]).get("__metadata__") or {}


def check_held_out(
    held_out: LabeledImages | DataFingerprint,
    trained_on: DataFingerprint | None,
    *,
    allow_overlap: bool = False,
    held_out_name: str = "the held-out set",
    trained_name: str = "the generator",
) -> int:
    """Refuse (:class:`DataLeakError`) a ``held_out`` set that shares images with ``trained_on``; return how many it shares.

    With ``allow_overlap=True`` the overlap is logged as a warning instead. ``trained_on=None`` (what a
    generator saved before synthaug recorded its training data gives) cannot be checked: a warning says so.
    """
    if trained_on is None:
        log.warning("%s records no training data (saved before synthaug recorded it): cannot check that %s is held out; "
                    "re-fit it to record what it saw", trained_name, held_out_name)  # fmt: skip
        return 0
    shared = trained_on.overlap(held_out)
    if shared:
        total = len(held_out)
        message = (f"{held_out_name} shares {shared:,} of its {total:,} images with the {trained_on.describe()} "
                   f"{trained_name} was trained on, so its scores would be flattered")  # fmt: skip
        if not allow_overlap:
            raise DataLeakError(f"{message}: test on images it never saw, or pass allow_overlap=True (--allow-overlap) "
                                "to go on with a warning")  # fmt: skip
        log.warning("LEAK: %s (allow_overlap=True)", message)
    return shared
