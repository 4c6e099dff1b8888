"""Saving and loading generators without pickle: ``config.json`` + ``model.safetensors`` (+ ``data.safetensors``).

The JSON records the family, its hyper-parameters, the class names, the library and format
versions and the sha256 of the weights file; for a generator trained by :func:`synthaug.fit`, also
the fingerprint of its training images (count, per-class counts, digest), whose per-image hashes
are in ``data.safetensors`` with its own sha256. :func:`load` checks all of them before it builds
the model, so a truncated, edited or foreign directory is refused with a message that says why.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from synthaug._version import __version__
from synthaug.data.fingerprint import DataFingerprint
from synthaug.generators.base import ConditionalGenerator, get_family

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
#: the per-image hashes of the training data (the fingerprint's summary is in config.json)
DATA_NAME = "data.safetensors"


class CorruptSaveError(ValueError):
    """A saved generator directory is incomplete, modified, or not one synthaug can read."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see all or nothing."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # nothing half-written left behind, whatever stopped us
        tmp.unlink(missing_ok=True)
        raise


def _serialize(generator: ConditionalGenerator) -> bytes:
    state = {name: t.detach().cpu().contiguous() for name, t in generator.state_dict().items()}
    return save_safetensors(state, metadata={"family": generator.family})


def _state_token(generator: ConditionalGenerator) -> tuple[tuple[int, int], ...]:
    """Changes whenever a weight changes: every tensor's storage and in-place version counter."""
    return tuple((t.data_ptr(), t._version) for t in generator.state_dict().values())


def _remember_sha256(generator: ConditionalGenerator, digest: str) -> None:
    generator._saved_weights = (digest, _state_token(generator))


def weights_sha256(generator: ConditionalGenerator) -> str:
    """sha256 of the generator's weights file, as :func:`save` records it in ``config.json``.

    A generator loaded or saved since its weights last changed answers from the recorded value;
    otherwise its weights are serialised and hashed.
    """
    saved = getattr(generator, "_saved_weights", None)
    if saved is not None and saved[1] == _state_token(generator):
        return saved[0]
    digest = hashlib.sha256(_serialize(generator)).hexdigest()
    _remember_sha256(generator, digest)
    return digest


def save(generator: ConditionalGenerator, path: str | os.PathLike) -> Path:
    """Write ``generator`` to the directory ``path`` (created if needed) and return it.

    The weights are written first and the config last, each atomically, so a crash never leaves a
    directory that loads into a different model than the one saved.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    blob = _serialize(generator)
    atomic_write(path / WEIGHTS_NAME, blob)
    training = getattr(generator, "training_data", None)
    if training is not None:
        data_blob = training.to_bytes()
        atomic_write(path / DATA_NAME, data_blob)
    else:
        (path / DATA_NAME).unlink(missing_ok=True)  # an earlier save's, which would describe another model
    meta = {
        "library": "synthaug",
        "library_version": __version__,
        "format_version": FORMAT_VERSION,
        "family": generator.family,
        "config": generator.config.to_dict(),
        "class_names": list(generator.class_names),
        "weights": {"file": WEIGHTS_NAME, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()},
    }
    if training is not None:
        meta["training_data"] = {**training.summary(), "file": DATA_NAME, "bytes": len(data_blob),
                                 "sha256": hashlib.sha256(data_blob).hexdigest()}  # fmt: skip
    atomic_write(path / CONFIG_NAME, (json.dumps(meta, indent=2) + "\n").encode())
    _remember_sha256(generator, meta["weights"]["sha256"])
    return path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The validated ``config.json`` of a saved generator directory."""
    path = Path(path)
    if path.is_file():
        if path.suffix == ".ckpt":
            raise CorruptSaveError(
                f"{path} is a Lightning training checkpoint, not a saved generator: load the directory fit saved "
                f"(synthaug.load('{path.parent.parent / 'generator'}')), or continue training from the checkpoint "
                "with fit(..., ckpt_path=...) (synthaug fit --resume)"
            )
        if path.name in (CONFIG_NAME, WEIGHTS_NAME):
            raise CorruptSaveError(f"{path} is one file of a saved generator: give its directory, {path.parent}")
        raise CorruptSaveError(f"{path} is a file; a saved generator is a directory holding {CONFIG_NAME} and {WEIGHTS_NAME}")
    if not path.is_dir():
        raise FileNotFoundError(f"no saved generator at {path}: the directory does not exist")
    config_file = path / CONFIG_NAME
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} is not a saved synthaug generator: {CONFIG_NAME} is missing")
    try:
        meta = json.loads(config_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptSaveError(f"{config_file} is not valid JSON ({err}); the save is corrupt") from err
    if not isinstance(meta, dict) or meta.get("library") != "synthaug":
        raise CorruptSaveError(f"{config_file} was not written by synthaug (no 'library': 'synthaug' entry)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CorruptSaveError(f"{config_file} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CorruptSaveError(
            f"{path} uses save format {version} (written by synthaug {meta.get('library_version')}); this synthaug "
            f"{__version__} reads format {FORMAT_VERSION} at most: upgrade synthaug to load it"
        )
    missing = [key for key in ("family", "config", "class_names", "weights") if key not in meta]
    weights = meta.get("weights")
    if missing or not isinstance(weights, dict) or not {"file", "bytes", "sha256"} <= set(weights):
        raise CorruptSaveError(f"{config_file} lacks required entries {missing or ['weights.file/bytes/sha256']}")
    training = meta.get("training_data")
    if training is not None and (not isinstance(training, dict) or not {"file", "bytes", "sha256", "digest"} <= set(training)):
        raise CorruptSaveError(f"{config_file} has an invalid training_data entry (it needs file, bytes, sha256 and digest)")
    return meta


def _checked_file(path: Path, entry: dict[str, Any], what: str) -> bytes:
    """The bytes of the file ``entry`` names in ``path``, checked against its recorded size and sha256."""
    file = path / Path(entry["file"]).name
    if not file.is_file():
        raise CorruptSaveError(f"{file} ({what}) is missing; the save is incomplete")
    blob = file.read_bytes()
    if len(blob) != entry["bytes"]:
        raise CorruptSaveError(f"{file} has {len(blob)} bytes but {entry['bytes']} were saved; it is truncated or was replaced")
    digest = hashlib.sha256(blob).hexdigest()
    if digest != entry["sha256"]:
        raise CorruptSaveError(
            f"{file} does not match its recorded sha256 ({digest[:12]}... != {str(entry['sha256'])[:12]}...); "
            "the file was modified or corrupted: do not use it, re-save the generator"
        )
    return blob


def read_training_data(path: str | os.PathLike) -> DataFingerprint | None:
    """The fingerprint of the images the generator saved in ``path`` was trained on (``None`` if not recorded), checked."""
    path = Path(path)
    return _training_data(path, read_config(path))


def _training_data(path: Path, meta: dict[str, Any]) -> DataFingerprint | None:
    entry = meta.get("training_data")
    if entry is None:
        return None
    blob = _checked_file(path, entry, "the training data's fingerprint")
    try:
        fingerprint = DataFingerprint.from_bytes(blob, str(path / DATA_NAME))
    except ValueError as err:
        raise CorruptSaveError(str(err)) from err
    if fingerprint.digest != entry["digest"]:
        raise CorruptSaveError(f"{path / DATA_NAME} does not hold the training data {CONFIG_NAME} names; re-save the generator")
    return fingerprint


def load(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> ConditionalGenerator:
    """Load a generator saved by :func:`save` (or ``generator.save``), in eval mode.

    Nothing is unpickled: the config is JSON and the weights are safetensors, checked against the
    sha256 recorded at save time.

    Example:
        >>> gen = synthaug.load("runs/digits/generator")  # doctest: +SKIP
        >>> images = gen.sample([3, 3, 7])  # doctest: +SKIP
    """
    path = Path(path)
    meta = read_config(path)
    cls = get_family(meta["family"])
    weights = meta["weights"]
    weights_file = path / Path(weights["file"]).name
    blob = _checked_file(path, weights, "the weights")
    digest = weights["sha256"]
    training = _training_data(path, meta)
    try:
        state = load_safetensors(blob)
    except SafetensorError as err:
        raise CorruptSaveError(f"{weights_file} is not a valid safetensors file: {err}") from err
    try:
        config = cls.config_class.from_saved(meta["config"])
        generator = cls(config, meta["class_names"])
    except (TypeError, ValueError) as err:
        raise CorruptSaveError(f"{path / CONFIG_NAME} describes an invalid {meta['family']} generator: {err}") from err
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CorruptSaveError(f"the weights in {weights_file} do not fit the saved config: {err}") from err
    generator = generator.to(map_location).eval()
    generator.training_data = training
    _remember_sha256(generator, digest)
    return generator
