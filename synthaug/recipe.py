"""``recipe.json``: what ``synthaug recommend`` chose, in a file the mixing objects build from.

A recipe names one way of training on the user's images: a real-only augmentation (flips and
shifts, an automatic policy, in-batch mixup or CutMix, label smoothing) and, when synthetic data
helped, where its samples come from (a bank, with the generator that made it) and how they are
mixed in (appended to the dataset, or blended into batches). It is written by
:func:`synthaug.recommend` and read by :func:`load_recipe` and the ``from_recipe`` constructors
(:meth:`SyntheticAugment.from_recipe <synthaug.augment.SyntheticAugment.from_recipe>`,
:meth:`SyntheticMix.from_recipe <synthaug.transforms.SyntheticMix.from_recipe>`, the Lightning
callback and the HuggingFace map), so that the recommendation is one line to use.

The file is versioned (``{"format": "synthaug.recipe", "version": 1, ...}``) and validated like a
bank's manifest: every field carries a checksum, so a field edited by hand is refused by name (pass
``verify=False`` to accept the edit); an unknown or missing field, another version, or a bank that is
not where the recipe says (paths are relative to the recipe file) is one clear error. It is written
atomically (a temporary file, then ``os.replace``), so a crash never leaves half a recipe.

Example:
    >>> recipe = load_recipe("runs/recommend/recipe.json")  # doctest: +SKIP
    >>> print(recipe.verdict)  # doctest: +SKIP
    >>> dataset = SyntheticAugment.from_recipe(recipe, train)  # a recipe that appends samples  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synthaug.bank import SyntheticBank
from synthaug.classic import classic_augmentation
from synthaug.data.labeled import LabeledImages
from synthaug.io import atomic_write
from synthaug.policies import POLICIES, AugmentPolicy
from synthaug.seeding import derive_seed

FORMAT = "synthaug.recipe"
VERSION = 1
#: the training options a recipe holds (a subset of an evaluation ``Arm``'s), with their defaults
ARM_DEFAULTS: dict[str, Any] = {
    "classic": False, "policy": None, "label_smoothing": 0.0, "cutmix_alpha": 0.0, "mixup_alpha": 0.0,
    "source": None, "ratio": None, "mode": "append", "mix_alpha": None, "mix_mode": "mixup",
}  # fmt: skip
#: the top-level fields of a recipe file, in file order
FIELDS = ("format", "version", "name", "arm", "bank", "generator", "classic_options", "class_names", "image_shape",
          "synthetic_helps", "verdict", "baseline", "gains", "settings", "checksums")  # fmt: skip
_UNCHECKED = ("format", "version", "checksums")


class RecipeError(ValueError):
    """A recipe file that cannot be used as it is (the message names the field and the fix)."""


def _checksum(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def check_arm(arm: Mapping[str, Any], where: str = "recipe") -> dict[str, Any]:
    """The recipe's training options, checked (every key of :data:`ARM_DEFAULTS`, values in range)."""
    if not isinstance(arm, Mapping):
        raise RecipeError(f"{where}: field 'arm' must be an object of training options, got {type(arm).__name__}")
    unknown, missing = sorted(set(arm) - set(ARM_DEFAULTS)), sorted(set(ARM_DEFAULTS) - set(arm))
    if unknown or missing:
        raise RecipeError(f"{where}: field 'arm' has unknown options {unknown} and lacks {missing}; the options are "
                          f"{sorted(ARM_DEFAULTS)}")  # fmt: skip

    def number(key: str, low: float, high: float, optional: bool = False) -> None:
        value = arm[key]
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value < high and math.isfinite(value)):
            raise RecipeError(f"{where}: arm option {key!r} must be a number in [{low:g}, {high:g}), got {value!r}")

    if not isinstance(arm["classic"], bool):
        raise RecipeError(f"{where}: arm option 'classic' must be true or false, got {arm['classic']!r}")
    if arm["policy"] not in (None, *POLICIES):
        raise RecipeError(f"{where}: arm option 'policy' must be null or one of {list(POLICIES)}, got {arm['policy']!r}")
    number("label_smoothing", 0, 1)
    number("cutmix_alpha", 0, math.inf)
    number("mixup_alpha", 0, math.inf)
    number("ratio", 0, math.inf, optional=True)
    number("mix_alpha", 0, math.inf, optional=True)
    choices = {"source": (None, "bank", "real"), "mode": ("append", "replace", "balance"), "mix_mode": ("mixup", "cutmix")}
    for key, allowed in choices.items():
        if arm[key] not in allowed:
            raise RecipeError(f"{where}: arm option {key!r} must be one of {list(allowed)}, got {arm[key]!r}")
    if arm["source"] is None and (arm["ratio"] is not None or arm["mix_alpha"] is not None):
        raise RecipeError(f"{where}: arm options 'ratio' and 'mix_alpha' need a 'source' ('bank' or 'real')")
    if arm["source"] is not None and arm["ratio"] is None and arm["mode"] != "balance":
        raise RecipeError(f"{where}: arm option 'source' is {arm['source']!r} but 'ratio' is null")
    if arm["source"] == "real" and arm["mix_alpha"] is None:
        raise RecipeError(f"{where}: a 'real' source (real copies) is only mixed into batches: it needs 'mix_alpha'")
    return dict(arm)


@dataclass(frozen=True)
class Recipe:
    """A recipe: the training options (``arm``), the synthetic samples' bank (``None`` for a real-only
    baseline) and what ``recommend`` found (``verdict``, ``gains``). The mixing objects build from it
    (``SyntheticAugment.from_recipe``, ``SyntheticMix.from_recipe``); :meth:`transform`, :meth:`policy` and
    the ``arm`` options give the real-only pieces."""

    name: str
    arm: dict[str, Any]
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    bank: Path | None = None
    generator: Path | None = None
    classic_options: dict[str, Any] = field(default_factory=dict)
    synthetic_helps: bool = False
    verdict: str = ""
    baseline: str | None = None
    gains: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arm", check_arm({**ARM_DEFAULTS, **self.arm}, f"recipe {self.name!r}"))
        if self.arm["source"] == "bank" and self.bank is None:
            raise RecipeError(f"recipe {self.name!r} takes its samples from a bank but names none")

    @property
    def is_synthetic(self) -> bool:
        """Whether the recipe uses synthetic samples (else it is a real-only baseline)."""
        return self.arm["source"] == "bank"

    @property
    def mixes_batches(self) -> bool:
        """Whether samples (synthetic or real copies) are blended into batches rather than appended to the dataset."""
        return self.arm["mix_alpha"] is not None

    def source(self, real: LabeledImages | None = None) -> SyntheticBank | LabeledImages | None:
        """The samples the recipe mixes in: its bank, the real images (real copies), or ``None``."""
        if self.arm["source"] == "bank":
            return SyntheticBank.open(_existing(self.bank, "bank", self.name))
        if self.arm["source"] == "real":
            if not isinstance(real, LabeledImages):
                raise TypeError(f"recipe {self.name!r} mixes batches with copies of the real images: pass them as a "
                                "synthaug LabeledImages (synthaug.data.from_dataset / from_arrays)")  # fmt: skip
            return real
        return None

    def transform(self, *, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """The per-image augmentation (classic flips and shifts of uint8 ``(C, H, W)`` tensors), or ``None``."""
        if not self.arm["classic"]:
            return None
        return classic_augmentation(self.image_shape, **{"seed": seed, **self.classic_options})

    def policy(self, *, seed: int = 0) -> AugmentPolicy | None:
        """The batch policy (TrivialAugment or RandAugment), or ``None``."""
        return AugmentPolicy(self.arm["policy"], seed=seed) if self.arm["policy"] is not None else None

    def sample_transform(self, *, seed: int = 0) -> Callable[..., torch.Tensor] | None:
        """What a real image goes through, for the samples a batch transform draws (``SyntheticMix(transform=)``):
        the classic augmentation image by image, then the policy on the batch; ``None`` if neither."""
        sample_seed = derive_seed(seed, "samples")
        classic, policy = self.transform(seed=sample_seed), self.policy(seed=sample_seed)
        return _SampleAugment(classic, policy) if classic is not None or policy is not None else None

    def to_dict(self, relative_to: str | os.PathLike) -> dict[str, Any]:
        """The file's content, paths relative to the folder ``relative_to``, with checksums."""
        base = Path(relative_to).resolve()
        body = {
            "format": FORMAT, "version": VERSION, "name": self.name, "arm": self.arm,
            "bank": _relative(self.bank, base), "generator": _relative(self.generator, base),
            "classic_options": self.classic_options, "class_names": list(self.class_names),
            "image_shape": list(self.image_shape), "synthetic_helps": self.synthetic_helps, "verdict": self.verdict,
            "baseline": self.baseline, "gains": self.gains, "settings": self.settings,
        }  # fmt: skip
        body = json.loads(json.dumps(body))  # the checksums are of what the file holds
        body["checksums"] = {key: _checksum(value) for key, value in body.items() if key not in _UNCHECKED}
        return body

    def save(self, path: str | os.PathLike) -> Path:
        """Writes ``path`` atomically; returns it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, (json.dumps(self.to_dict(path.parent), indent=2) + "\n").encode())
        return path


class _SampleAugment:
    """What a real image goes through, for the samples a batch transform draws: the classic augmentation
    image by image, then the policy on the batch (as :func:`~synthaug.evaluation.downstream` trains)."""

    def __init__(self, classic: Callable[[torch.Tensor], torch.Tensor] | None, policy: AugmentPolicy | None) -> None:
        self.classic, self.policy = classic, policy

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.classic is not None:
            images = torch.stack([self.classic(image) for image in images.cpu()]).to(images.device)
        return self.policy(images, generator=generator) if self.policy is not None else images


def _relative(path: Path | None, base: Path) -> str | None:
    if path is None:
        return None
    return os.path.relpath(Path(path).resolve(), base)


def _existing(path: Path | None, what: str, name: str) -> Path:
    if path is None or not (Path(path) / "manifest.json" if what == "bank" else Path(path) / "config.json").is_file():
        raise RecipeError(f"recipe {name!r} takes its samples from the {what} {path}, which is missing (moved or deleted?): "
                          f"keep it where the recipe says (paths are relative to recipe.json), or rerun synthaug recommend")  # fmt: skip
    return Path(path)


def load_recipe(path: str | os.PathLike, *, verify: bool = True) -> Recipe:
    """Reads and validates a ``recipe.json`` written by :func:`synthaug.recommend`.

    Refused, each with one line naming the problem: a file that is not a recipe, another format
    version, a missing or unknown field, a field changed since it was written (``verify=False``
    accepts hand edits), and a bank or generator that is not where the recipe says.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no recipe at {path}: run synthaug recommend first (it writes OUT/recipe.json)")
    try:
        body = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RecipeError(f"{path} is not a recipe: not JSON ({err})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        found = body.get("format") if isinstance(body, dict) else type(body).__name__
        raise RecipeError(f"{path} is not a synthaug recipe (format {found!r}, expected {FORMAT!r})")
    version = body.get("version")
    if version != VERSION:
        fix = "upgrade synthaug" if isinstance(version, int) and version > VERSION else "rerun synthaug recommend"
        raise RecipeError(f"{path}: recipe format version {version!r} is not the one this synthaug reads ({VERSION}): {fix}")
    missing, unknown = [k for k in FIELDS if k not in body], sorted(set(body) - set(FIELDS))
    if missing or unknown:
        what = f"lacks the field {missing[0]!r}" if missing else f"has an unknown field {unknown[0]!r}"
        raise RecipeError(f"{path} {what} (edited by hand?): rerun synthaug recommend")
    checksums = body["checksums"]
    if verify:
        for key in FIELDS:
            if key not in _UNCHECKED and (not isinstance(checksums, dict) or checksums.get(key) != _checksum(body[key])):
                raise RecipeError(f"{path}: field {key!r} differs from what recommend wrote (its checksum does not match; "
                                  "edited by hand?): rerun synthaug recommend, or load_recipe(path, verify=False) to accept the edit")  # fmt: skip
    base = path.parent
    arm = check_arm(body["arm"], str(path))
    paths = {key: (base / body[key]).resolve() if isinstance(body[key], str) else None for key in ("bank", "generator")}
    if arm["source"] == "bank":
        _existing(paths["bank"], "bank", body["name"])
    if paths["generator"] is not None:
        _existing(paths["generator"], "generator", body["name"])
    shape = body["image_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise RecipeError(f"{path}: field 'image_shape' must be [C, H, W], got {shape!r}")
    return Recipe(name=str(body["name"]), arm=arm, class_names=tuple(body["class_names"]), image_shape=tuple(shape),  # type: ignore[arg-type]
                  bank=paths["bank"], generator=paths["generator"], classic_options=dict(body["classic_options"] or {}),
                  synthetic_helps=bool(body["synthetic_helps"]), verdict=str(body["verdict"]), baseline=body["baseline"],
                  gains=list(body["gains"]), settings=dict(body["settings"]))  # fmt: skip


def recipe_of(
    name: str, options: Mapping[str, Any], *, class_names: Sequence[str], image_shape: Sequence[int], **fields: Any
) -> Recipe:
    """A :class:`Recipe` from an arm's options (``Arm.options()`` or its dict), keeping the recipe's keys
    and refusing any other option that is not at its default (a recipe could not reproduce it)."""
    arm = {key: options.get(key, default) for key, default in ARM_DEFAULTS.items()}
    return Recipe(name=name, arm=arm, class_names=tuple(class_names), image_shape=tuple(image_shape), **fields)  # type: ignore[arg-type]


def as_recipe(recipe: Recipe | str | os.PathLike) -> Recipe:
    """A :class:`Recipe` as it is, or loaded (and validated) from its path."""
    return recipe if isinstance(recipe, Recipe) else load_recipe(recipe)


def not_buildable(recipe: Recipe, builder: str) -> str:
    """The one-line reason why ``builder`` cannot build ``recipe``, naming what can."""
    if not recipe.is_synthetic and not recipe.mixes_batches:
        what = "is a real-only baseline (no samples to mix in)"
    elif recipe.mixes_batches:
        what = f"blends {'synthetic samples' if recipe.is_synthetic else 'real copies'} into batches ({recipe.arm['mix_mode']})"
    else:
        what = "appends synthetic samples to the dataset"
    fixes = "SyntheticMix.from_recipe (or the Lightning callback's)" if recipe.mixes_batches else "SyntheticAugment.from_recipe"
    if not recipe.is_synthetic and not recipe.mixes_batches:
        fixes = "synthaug.recipe_training(recipe, real) for its augmentation and training options"
    return f"recipe {recipe.name!r} {what}, which {builder} does not do: use {fixes}"
