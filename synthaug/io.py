"""Saving and loading generators without pickle: ``config.json`` + ``model.safetensors``.

The JSON records the family, its hyper-parameters, the class names, the library and format
versions and the sha256 of the weights file. :func:`load` checks all of them before it builds the
model, so a truncated, edited or foreign directory is refused with a message that says why.
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
from synthaug.generators.base import ConditionalGenerator, get_family

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CorruptSaveError(ValueError):
    """A saved generator directory is incomplete, modified, or not one synthaug can read."""


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see all or nothing."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
    meta = {
        "library": "synthaug",
        "library_version": __version__,
        "format_version": FORMAT_VERSION,
        "family": generator.family,
        "config": generator.config.to_dict(),
        "class_names": list(generator.class_names),
        "weights": {"file": WEIGHTS_NAME, "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest()},
    }
    atomic_write(path / CONFIG_NAME, (json.dumps(meta, indent=2) + "\n").encode())
    _remember_sha256(generator, meta["weights"]["sha256"])
    return path


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The validated ``config.json`` of a saved generator directory."""
    path = Path(path)
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
    return meta


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
    if not weights_file.is_file():
        raise CorruptSaveError(f"{weights_file} is missing; the save is incomplete")
    blob = weights_file.read_bytes()
    if len(blob) != weights["bytes"]:
        raise CorruptSaveError(
            f"{weights_file} has {len(blob)} bytes but {weights['bytes']} were saved; it is truncated or was replaced"
        )
    digest = hashlib.sha256(blob).hexdigest()
    if digest != weights["sha256"]:
        raise CorruptSaveError(
            f"{weights_file} does not match its recorded sha256 ({digest[:12]}... != {str(weights['sha256'])[:12]}...); "
            "the file was modified or corrupted: do not use it, re-save the generator"
        )
    try:
        state = load_safetensors(blob)
    except SafetensorError as err:
        raise CorruptSaveError(f"{weights_file} is not a valid safetensors file: {err}") from err
    try:
        config = cls.config_class.from_dict(meta["config"])
        generator = cls(config, meta["class_names"])
    except (TypeError, ValueError) as err:
        raise CorruptSaveError(f"{path / CONFIG_NAME} describes an invalid {meta['family']} generator: {err}") from err
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CorruptSaveError(f"the weights in {weights_file} do not fit the saved config: {err}") from err
    generator = generator.to(map_location).eval()
    _remember_sha256(generator, digest)
    return generator
