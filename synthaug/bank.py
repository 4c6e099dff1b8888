"""SyntheticBank: a pre-generated pool of class-conditional samples on disk, memory-mapped for reading.

Layout of a bank directory::

    plan.json                  what is being generated (written first; a resumed run must match it)
    training_data.safetensors  the hashes of the generator's training images (when it recorded them)
    shards/00000.images.npy    uint8 (n, C, H, W)
    shards/00000.labels.npy    int64 (n,)
    ...
    manifest.json              written last, once every shard is on disk, with each file's sha256
                               and a checksum of each of its own fields

Shard ``k`` holds a fixed slice of the (class-sorted) labels and is sampled from a
``torch.Generator`` seeded by ``(seed, k)``, so its bytes do not depend on which process wrote it,
how many processes there were, or whether the run was interrupted and resumed. Generation runs
through Lightning's ``Trainer.predict`` with a prediction writer: on several devices or nodes each
rank samples and writes its own share of the shards.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader

from synthaug.console import quiet_lightning
from synthaug.data.conventions import renamed_argument
from synthaug.data.fingerprint import DataFingerprint
from synthaug.generators.base import ConditionalGenerator, sample_uint8
from synthaug.io import atomic_write, weights_sha256
from synthaug.seeding import torch_generator

#: 2: the manifest carries a checksum of each of its fields; 1 (no checksums) still opens, with a warning
FORMAT_VERSION = 2
PLAN_NAME = "plan.json"
#: banks up to this many bytes of images are read into memory on first use (per process)
RESIDENT_BYTES = 256 * 2**20
MANIFEST_NAME = "manifest.json"
#: the per-image hashes of the generator's training data (the manifest records their count, digest and sha256)
TRAINING_DATA_NAME = "training_data.safetensors"


class BankError(ValueError):
    """A bank directory is incomplete, modified, or does not match what was asked of it."""


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shard_files(index: int) -> tuple[str, str]:
    return f"shards/{index:05d}.images.npy", f"shards/{index:05d}.labels.npy"


class _Plan:
    """Which labels go in which shard."""

    def __init__(self, counts: Sequence[int], shard_size: int) -> None:
        self.labels = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        self.shard_size = shard_size
        self.num_shards = -(-len(self.labels) // shard_size)

    def shard_labels(self, index: int) -> np.ndarray:
        return self.labels[index * self.shard_size : (index + 1) * self.shard_size]


class _SampleShards(L.LightningModule):
    """``predict_step`` turns a shard index into that shard's uint8 samples."""

    def __init__(
        self, model: ConditionalGenerator, plan: _Plan, seed: int, batch_size: int, options: Mapping[str, Any]
    ) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.plan, self.seed, self.batch_size, self.options = plan, seed, batch_size, dict(options)

    def predict_step(self, batch: Any, batch_idx: int) -> tuple[int, np.ndarray, np.ndarray]:
        index = int(batch)
        labels = self.plan.shard_labels(index)
        images = sample_uint8(self.model, torch.from_numpy(labels), generator=torch_generator(self.seed, index),
                              batch_size=self.batch_size, **self.options)  # fmt: skip
        return index, images.numpy(), labels


class _ShardWriter(BasePredictionWriter):
    def __init__(self, root: Path) -> None:
        super().__init__(write_interval="batch")
        self.root = root

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):  # noqa: ANN001
        index, images, labels = prediction
        images_file, labels_file = _shard_files(index)
        # Images first, labels last: a shard counts as finished once its labels file exists.
        atomic_write(self.root / images_file, _npy_bytes(images))
        atomic_write(self.root / labels_file, _npy_bytes(labels))


def _shard_is_complete(root: Path, index: int, count: int, image_shape: Sequence[int]) -> bool:
    images_file, labels_file = (root / name for name in _shard_files(index))
    if not (images_file.is_file() and labels_file.is_file()):
        return False
    try:
        images = np.load(images_file, mmap_mode="r", allow_pickle=False)
        labels = np.load(labels_file, mmap_mode="r", allow_pickle=False)
    except ValueError:
        return False
    return images.shape == (count, *image_shape) and images.dtype == np.uint8 and labels.shape == (count,)


class SyntheticBank:
    """A memory-mapped pool of synthetic samples; items are ``(uint8 (C, H, W) tensor, int label)``.

    Images are ``uint8`` in ``[0, 255]``, as in ``LabeledImages`` (docs/design.md, "Conventions");
    ``classes`` and ``targets`` are torchvision's names for ``class_names`` and ``labels``.

    Create one with :meth:`generate`, read one with :meth:`open`.

    Example:
        >>> bank = SyntheticBank.generate(generator, per_class=500, path="banks/fm", seed=0)  # doctest: +SKIP
        >>> image, label = bank[0]  # doctest: +SKIP
    """

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path, self.manifest = path, manifest
        shards = manifest["shards"]
        self.labels = torch.from_numpy(
            np.concatenate([np.load(path / s["labels"], allow_pickle=False) for s in shards])
        )
        self._offsets = np.cumsum([0] + [s["count"] for s in shards])
        self._images: list[np.ndarray] | None = None
        self._resident: torch.Tensor | None = None  # every image in memory, for a bank of at most RESIDENT_BYTES
        self._selection: torch.Tensor | None = None  # positions in the files, for a view made by select()
        self._training_data: DataFingerprint | None = None  # read on first use
        self._by_class = [torch.nonzero(self.labels == c).flatten() for c in range(self.num_classes)]

    # --- metadata -----------------------------------------------------------------------------

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.manifest["class_names"])

    @property
    def num_classes(self) -> int:
        return len(self.manifest["class_names"])

    @property
    def classes(self) -> list[str]:
        """The class names as torchvision datasets name them (``dataset.classes``); read-only, same as ``class_names``."""
        return list(self.class_names)

    @property
    def targets(self) -> torch.Tensor:
        """Every sample's label as torchvision datasets name them (``dataset.targets``); read-only, same as ``labels``."""
        return self.labels

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.manifest["image_shape"]
        return (c, h, w)

    def class_counts(self) -> list[int]:
        """Number of samples of each class, in class order (as :meth:`LabeledImages.class_counts`)."""
        return [len(indices) for indices in self._by_class]

    @property
    def counts(self) -> list[int]:
        """Deprecated: use :meth:`class_counts`, which ``LabeledImages`` has too."""
        warnings.warn("SyntheticBank.counts is deprecated; use SyntheticBank.class_counts()", FutureWarning, stacklevel=2)
        return self.class_counts()

    @property
    def generator_sha256(self) -> str:
        return self.manifest["generator"]["sha256"]

    @property
    def training_data(self) -> DataFingerprint | None:
        """The fingerprint of the images the bank's generator was trained on (``None`` if it recorded none), checked."""
        entry = self.manifest.get("training_data")
        if entry is None:
            return None
        if self._training_data is None:
            file = self.path / TRAINING_DATA_NAME
            blob = file.read_bytes() if file.is_file() else b""
            if len(blob) != entry["bytes"] or hashlib.sha256(blob).hexdigest() != entry["sha256"]:
                raise BankError(f"{file} is missing or does not match the sha256 in the manifest; regenerate the bank")
            fingerprint = DataFingerprint.from_bytes(blob, str(file))
            if fingerprint.digest != entry["digest"]:
                raise BankError(f"{file} does not hold the training data the manifest names; regenerate the bank")
            self._training_data = fingerprint
        return self._training_data

    @property
    def sha256(self) -> str:
        """Fingerprint of the bank (its manifest, which lists every shard's sha256, and a view's selection)."""
        digest = hashlib.sha256((self.path / MANIFEST_NAME).read_bytes())
        if self._selection is not None:
            digest.update(self._selection.numpy().tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return f"SyntheticBank({str(self.path)!r}, n={len(self)}, image_shape={self.image_shape}, classes={self.num_classes})"

    # --- reading ------------------------------------------------------------------------------

    def _shards(self) -> list[np.ndarray]:
        if self._images is None:  # mapped lazily, so that pickled copies (DataLoader workers) re-map
            self._images = [
                np.load(self.path / s["images"], mmap_mode="r", allow_pickle=False) for s in self.manifest["shards"]
            ]
        return self._images

    def _resident_images(self) -> torch.Tensor | None:
        """All images as one tensor, read once, when the bank is small enough: a random batch is then one gather."""
        if self._resident is None:
            size = int(self._offsets[-1]) * int(np.prod(self.image_shape))
            if size > RESIDENT_BYTES:
                return None
            self._resident = torch.from_numpy(np.concatenate([np.asarray(a) for a in self._shards()]) if self._shards()
                                              else np.empty((0, *self.image_shape), np.uint8))  # fmt: skip
        return self._resident

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_images": None, "_resident": None}

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"bank index {index} out of range for {len(self)} samples")
        index %= len(self)
        position = int(self._selection[index]) if self._selection is not None else index  # in the files
        shard = int(np.searchsorted(self._offsets, position, side="right")) - 1
        image = np.array(self._shards()[shard][position - self._offsets[shard]])
        return torch.from_numpy(image), int(self.labels[index])

    def select(self, indices: torch.Tensor | Sequence[int]) -> SyntheticBank:
        """A view of the samples at ``indices`` (say, those a filter kept), indexed ``0..len(indices)-1``;
        nothing is copied and the files stay as they are."""
        indices = torch.as_tensor(indices, dtype=torch.int64).flatten()
        if len(indices) and not (0 <= int(indices.min()) and int(indices.max()) < len(self)):
            raise IndexError(f"select() indices must lie in [0, {len(self)}), got {int(indices.min())}..{int(indices.max())}")
        view = copy.copy(self)
        view._selection = self._selection[indices] if self._selection is not None else indices
        view.labels = self.labels[indices]
        view._by_class = [torch.nonzero(view.labels == c).flatten() for c in range(self.num_classes)]
        return view

    def images(self, indices: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """``uint8`` images ``(len(indices), C, H, W)`` at ``indices``, read shard by shard."""
        indices = torch.as_tensor(indices, dtype=torch.int64)
        if self._selection is not None:
            indices = self._selection[indices]
        resident = self._resident_images()
        if resident is not None:
            return resident.index_select(0, indices)
        indices = np.asarray(indices)
        out = np.empty((len(indices), *self.image_shape), dtype=np.uint8)
        shards = np.searchsorted(self._offsets, indices, side="right") - 1
        for shard in np.unique(shards):
            where = shards == shard
            out[where] = self._shards()[shard][indices[where] - self._offsets[shard]]
        return torch.from_numpy(out)

    def indices_of(self, label: int) -> torch.Tensor:
        """Indices of the samples of class ``label``."""
        if not 0 <= label < self.num_classes:
            raise ValueError(f"label {label} is not a class of this bank (0..{self.num_classes - 1})")
        return self._by_class[label]

    def to_hf_dataset(self) -> Any:
        """The bank as a ``datasets.Dataset`` with ``image`` (PIL), ``label`` (ClassLabel) and ``is_synthetic``."""
        try:
            import datasets
        except ImportError as err:
            raise ImportError("to_hf_dataset needs the `datasets` package: pip install 'synthaug[hf]'") from err
        from PIL import Image

        features = datasets.Features(
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(self.class_names)),
             "is_synthetic": datasets.Value("bool")}
        )  # fmt: skip
        images = self.images(range(len(self))).permute(0, 2, 3, 1).numpy()
        pil = [Image.fromarray(x[:, :, 0] if x.shape[2] == 1 else x) for x in images]
        rows = {"image": pil, "label": self.labels.tolist(), "is_synthetic": [True] * len(self)}
        return datasets.Dataset.from_dict(rows, features=features)

    # --- opening and generating -----------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify: bool = True) -> SyntheticBank:
        """Open a finished bank; ``verify`` checks every shard's size and sha256 against the manifest.

        The manifest's own fields are always checked against their checksums, and the labels in the
        shards against the manifest's counts, so an edited manifest is refused with the field it changed.
        """
        path = Path(path)
        manifest_file = path / MANIFEST_NAME
        if not path.exists():
            raise BankError(f"no bank at {path}: the directory does not exist; write one with SyntheticBank.generate "
                            "(synthaug sample GENERATOR --bank DIR)")  # fmt: skip
        if not path.is_dir():
            raise BankError(f"{path} is a file, not a bank: a bank is a directory written by SyntheticBank.generate "
                            "(synthaug sample GENERATOR --bank DIR)")  # fmt: skip
        if not manifest_file.is_file():
            hint = (
                "its generation has not finished: call SyntheticBank.generate again with the same arguments to resume"
                if (path / PLAN_NAME).is_file()
                else "it is not a synthaug bank"
            )
            raise BankError(f"{path} has no {MANIFEST_NAME}; {hint}")
        try:
            manifest = json.loads(manifest_file.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BankError(f"{manifest_file} is not valid JSON ({err}); the bank is corrupt") from err
        _check_manifest(manifest, manifest_file)
        for shard in manifest["shards"]:
            for kind in ("images", "labels"):
                _check_shard_file(path, shard, kind, verify)
        bank = cls(path, manifest)
        if bank.class_counts() != _listed_counts(manifest):
            raise BankError(
                f"{manifest_file}: its shards hold {bank.class_counts()} samples per class but the manifest lists "
                f"{_listed_counts(manifest)}; the bank is inconsistent: regenerate it"
            )
        return bank

    @classmethod
    def generate(
        cls,
        generator: ConditionalGenerator,
        *,
        path: str | os.PathLike,
        per_class: int | None = None,
        counts: Mapping[int, int] | Sequence[int] | None = None,
        seed: int = 0,
        sample_options: Mapping[str, Any] | None = None,
        batch_size: int = 256,
        shard_size: int = 4096,
        accelerator: str = "auto",
        devices: int | str | list[int] = 1,
        strategy: str | Any = "auto",
        enable_progress_bar: bool | None = None,
        trainer_kwargs: dict[str, Any] | None = None,
        progress_bar: bool | None = None,
    ) -> SyntheticBank:
        """Sample ``per_class`` images of every class (or ``counts[c]`` of class ``c``) into ``path``.

        ``sample_options`` go to ``generator.sample`` (e.g. ``{"steps": 20, "guidance": 1.5}`` for a
        ddpm); the manifest records every option with the value used (a ddpm's ``feedback`` classifier as
        the sha256 of its weights). Interrupted runs resume:
        shards already on disk are kept and only the missing ones are sampled, giving the same bytes
        as an uninterrupted run. A finished bank with the same request is opened as it is.
        ``accelerator``/``devices``/``strategy`` go to ``lightning.Trainer``; with several devices each
        rank writes its own shards. ``enable_progress_bar=True`` shows one on a terminal (Lightning's
        name; ``progress_bar`` is its deprecated alias, removed in 0.3).
        """
        progress_bar = renamed_argument(enable_progress_bar, progress_bar, new_name="enable_progress_bar",
                                        old_name="progress_bar", default=False, where="SyntheticBank.generate")  # fmt: skip
        if not isinstance(generator, ConditionalGenerator):
            raise TypeError(f"generator must be a synthaug ConditionalGenerator, got {type(generator).__name__}")
        if batch_size < 1 or shard_size < 1:
            raise ValueError(f"batch_size and shard_size must be >= 1, got {batch_size} and {shard_size}")
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise BankError(f"{root} is a file; a bank is a directory of shards: give a new or empty directory as path")
        if root.is_dir() and not (root / PLAN_NAME).is_file() and any(root.iterdir()):
            raise BankError(f"{root} holds other files and no bank; give a new or empty directory as path")
        options = generator.check_sample_options(sample_options or {})
        plan_meta = _plan_meta(generator, _class_counts(generator.num_classes, per_class, counts), seed, shard_size,
                               generator.sample_options_record(options))  # fmt: skip
        if _claim(root, plan_meta):
            return cls.open(root)
        if generator.training_data is not None:
            atomic_write(root / TRAINING_DATA_NAME, generator.training_data.to_bytes())
        plan = _Plan(plan_meta["counts"], shard_size)
        sizes = [len(plan.shard_labels(k)) for k in range(plan.num_shards)]
        missing = [k for k in range(plan.num_shards) if not _shard_is_complete(root, k, sizes[k], generator.image_shape)]
        trainer = None
        if missing:
            with quiet_lightning():
                trainer = L.Trainer(accelerator=accelerator, devices=devices, strategy=strategy, logger=False,
                                    callbacks=[_ShardWriter(root)], enable_progress_bar=progress_bar and sys.stderr.isatty(),
                                    enable_model_summary=False, **(trainer_kwargs or {}))  # fmt: skip
            module = _SampleShards(generator, plan, seed, batch_size, options)
            with quiet_lightning(), warnings.catch_warnings():
                # The writer needs no batch indices: each item (a shard index, batch_size=None) names its shard.
                warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")
                trainer.predict(module, DataLoader(missing, batch_size=None), return_predictions=False)
        if trainer is None or trainer.is_global_zero:
            _write_manifest(root, plan_meta, sizes, generator.image_shape)
        if trainer is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            trainer.strategy.barrier("synthaug-bank-manifest")
        return cls.open(root, verify=False)


def _plan_meta(
    generator: ConditionalGenerator, counts: list[int], seed: int, shard_size: int, sample_options: dict[str, Any]
) -> dict[str, Any]:
    """What a bank is a function of; written to ``plan.json`` first, and into the manifest."""
    meta = {
        "library": "synthaug",
        "format_version": FORMAT_VERSION,
        "generator": {"family": generator.family, "sha256": weights_sha256(generator), "config": generator.config.to_dict()},
        "class_names": list(generator.class_names),
        "image_shape": list(generator.image_shape),
        "counts": counts,
        "seed": seed,
        "sample_options": sample_options,
        "shard_size": shard_size,
    }
    if generator.training_data is not None:  # what the generator saw, so that evaluations can refuse it as a test set
        blob = generator.training_data.to_bytes()
        meta["training_data"] = {**generator.training_data.summary(), "file": TRAINING_DATA_NAME, "bytes": len(blob),
                                 "sha256": hashlib.sha256(blob).hexdigest()}  # fmt: skip
    return json.loads(json.dumps(meta))  # as JSON gives it back: tuples become lists


def _claim(root: Path, plan_meta: dict[str, Any]) -> bool:
    """Write the plan (or check an existing one against it); True if the bank is already finished."""
    plan_file = root / PLAN_NAME
    if plan_file.is_file():
        existing = json.loads(plan_file.read_text())
        if existing != plan_meta:
            changed = sorted(k for k in set(plan_meta) | set(existing) if existing.get(k) != plan_meta.get(k))
            raise BankError(
                f"{root} holds a bank generated with other settings ({', '.join(changed)} differ); "
                "choose another path, or delete it to start over"
            )
        if (root / MANIFEST_NAME).is_file():
            return True
    (root / "shards").mkdir(parents=True, exist_ok=True)
    atomic_write(plan_file, (json.dumps(plan_meta, indent=2) + "\n").encode())
    return False


def _write_manifest(root: Path, plan_meta: dict[str, Any], sizes: list[int], image_shape: Sequence[int]) -> None:
    shards = []
    for k, count in enumerate(sizes):
        if not _shard_is_complete(root, k, count, image_shape):
            raise BankError(f"shard {k} of {root} was not written; generate again to resume")
        images_file, labels_file = _shard_files(k)
        shards.append({
            "index": k, "count": count, "images": images_file, "labels": labels_file,
            "images_bytes": (root / images_file).stat().st_size, "images_sha256": _sha256(root / images_file),
            "labels_bytes": (root / labels_file).stat().st_size, "labels_sha256": _sha256(root / labels_file),
        })  # fmt: skip
    manifest = {**plan_meta, "total": int(sum(plan_meta["counts"])), "shards": shards}
    manifest["checksums"] = {key: _field_sha256(value) for key, value in manifest.items()}
    atomic_write(root / MANIFEST_NAME, (json.dumps(manifest, indent=2) + "\n").encode())


def _field_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _listed_counts(manifest: dict[str, Any]) -> list[int]:
    return [int(n) for n in manifest["counts"]]


def _check_manifest(manifest: Any, where: Path) -> None:
    """Refuse a manifest that is not one, is too new, or whose fields no longer match their checksums."""
    if not isinstance(manifest, dict) or manifest.get("library") != "synthaug":
        raise BankError(f"{where} was not written by synthaug (no 'library': 'synthaug' entry)")
    version = manifest.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise BankError(f"{where} uses bank format {version}; upgrade synthaug to read it")
    required = ("class_names", "image_shape", "counts", "shards", "total")
    missing = [key for key in required if key not in manifest]
    if missing:
        raise BankError(f"{where} lacks the field(s) {missing}; the bank is corrupt: regenerate it")
    checksums = manifest.get("checksums")
    if checksums is None:
        if version >= 2:
            raise BankError(f"{where} has no 'checksums' field; the manifest was edited: regenerate the bank")
        warnings.warn(f"{where} is a format-1 bank: its manifest has no checksums, so edits to it go unnoticed; "
                      "regenerate it to protect it", UserWarning, stacklevel=3)  # fmt: skip
    else:
        fields = [key for key in manifest if key != "checksums"]
        for key in sorted(set(fields) | set(checksums)):
            if key not in manifest:
                raise BankError(f"{where}: the field {key!r} was removed from the manifest; regenerate the bank")
            if checksums.get(key) != _field_sha256(manifest[key]):
                raise BankError(
                    f"{where}: the field {key!r} does not match its checksum: the manifest was edited "
                    "(a bank's class names, counts and shards must stay as generated); regenerate the bank"
                )
    counts, names = manifest["counts"], manifest["class_names"]
    if len(counts) != len(names) or not manifest["total"] == sum(counts) == sum(s["count"] for s in manifest["shards"]):
        raise BankError(f"{where}: its class_names, counts, total and shard counts disagree; regenerate the bank")


def _check_shard_file(path: Path, shard: dict[str, Any], kind: str, verify: bool) -> None:
    file = path / shard[kind]
    if not file.is_file():
        raise BankError(f"shard file {file} is missing; regenerate the bank")
    if file.stat().st_size != shard[f"{kind}_bytes"]:
        raise BankError(
            f"shard file {file} has {file.stat().st_size} bytes, the manifest says "
            f"{shard[f'{kind}_bytes']}: it is truncated or was replaced"
        )
    if verify and _sha256(file) != shard[f"{kind}_sha256"]:
        raise BankError(f"shard file {file} does not match the sha256 in the manifest; it was modified")


def _class_counts(
    num_classes: int, per_class: int | None, counts: Mapping[int, int] | Sequence[int] | None
) -> list[int]:
    if (per_class is None) == (counts is None):
        raise ValueError("give exactly one of per_class= or counts=")
    if per_class is not None:
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        return [int(per_class)] * num_classes
    if isinstance(counts, Mapping):
        unknown = sorted(c for c in counts if not 0 <= int(c) < num_classes)
        if unknown:
            raise ValueError(f"counts names classes {unknown} that the generator does not have (0..{num_classes - 1})")
        values = [int(counts.get(c, 0)) for c in range(num_classes)]
    else:
        values = [int(n) for n in counts]
        if len(values) != num_classes:
            raise ValueError(f"counts has {len(values)} entries for {num_classes} classes")
    if any(n < 0 for n in values) or sum(values) == 0:
        raise ValueError(f"counts must be >= 0 with at least one sample, got {values}")
    return values
