"""Downstream accuracy: does a classifier trained with synthetic data beat one trained without?

:func:`downstream` trains the same classifier (same recipe, steps, batch size and seeds) on every
arm, for each real-data size, seed and yardstick classifier, tests every run on the same held-out
set and summarises it (:class:`~synthaug.evaluation.DownstreamReport`). Each seed draws its own
real subset, so the intervals include the variance of which images a user happens to have.

The loop, for one (size, seed, classifier):

1. take the seed's real subset;
2. for each arm, build its training set (:func:`build_training`): classic augmentation, the
   synthetic source mixed in by :class:`~synthaug.augment.SyntheticAugment` (filtered, relabelled by
   a teacher, weighted, fading) or by a mixup batch transform;
3. train (:func:`~synthaug.classifier.train_classifier`), optionally fine-tune on the real data, and
   test; the teacher arm's model (real + classic, say) labels and filters other arms' samples.

Every run is stored as JSON under ``cache_dir``, keyed by a fingerprint of everything that
determines it, so a rerun computes only what is missing and an interrupted study resumes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from synthaug.augment import ShareSchedule, SyntheticAugment
from synthaug.classifier import DEFAULT_STEPS, make_classifier, predict, train_classifier
from synthaug.curation import filter_samples, keep_confident
from synthaug.data.fingerprint import check_held_out
from synthaug.data.labeled import LabeledImages
from synthaug.evaluation.arms import Arm, resolve_source
from synthaug.evaluation.classic import Transformed, classic_augmentation
from synthaug.evaluation.downstream_report import DownstreamReport
from synthaug.evaluation.stats import confusion, scores
from synthaug.policies import AugmentPolicy
from synthaug.seeding import derive_seed
from synthaug.synthetic import as_source, is_pool, source_fingerprint, training_fingerprint
from synthaug.transforms import SyntheticMix

logger = logging.getLogger(__name__)

#: bumped when the training recipe changes, so that cached runs of an older recipe are not reused
RECIPE_VERSION = 2
Classifier = str | Callable[[], nn.Module]
Subsets = Callable[[LabeledImages, int | None, int], LabeledImages]
Groups = Mapping[str, Sequence[int] | Callable[[LabeledImages], Sequence[int]]]


def stratified(train: LabeledImages, size: int | None, seed: int) -> LabeledImages:
    """The default subsets: ``size`` images of every class, drawn with ``seed`` (all of ``train`` for ``None``)."""
    return train if size is None else train.subset(size, seed=seed)


def rarest(k: int) -> Callable[[LabeledImages], list[int]]:
    """A group of classes for :func:`downstream`'s ``groups``: the ``k`` classes with the fewest training images."""

    def classes(subset: LabeledImages) -> list[int]:
        counts = torch.tensor(subset.class_counts())
        return sorted(counts.argsort(stable=True)[:k].tolist())

    classes.__name__ = f"rarest_{k}"
    return classes


def _sha(data: LabeledImages) -> str:
    digest = hashlib.sha256(data.images.numpy().tobytes())
    digest.update(data.labels.numpy().tobytes())
    return digest.hexdigest()[:16]


def _fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_") or "arm"


@dataclass
class Recipe:
    """What every arm shares: the classifier's training recipe and the study's fixed choices."""

    steps: int = DEFAULT_STEPS
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    classic_options: dict[str, Any] = field(default_factory=dict)
    accelerator: str = "auto"

    def key(self) -> dict[str, Any]:
        return {"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "weight_decay": self.weight_decay,
                "schedule": self.schedule, "classic": self.classic_options, "recipe": RECIPE_VERSION}  # fmt: skip


@dataclass
class _Context:
    """One (size, seed, classifier): the real subset and, once trained, the teacher arm's model."""

    size: int | None
    seed: int
    classifier: str
    factory: Classifier
    subset: LabeledImages
    groups: dict[str, list[int]]
    teacher: nn.Module | None = None
    teacher_key: str | None = None


def build_training(arm: Arm, context: _Context, source: Any, recipe: Recipe) -> tuple[Any, Any, Any]:
    """``(dataset, batch_transform, real dataset for a second stage)`` for ``arm``."""
    subset, seed = context.subset, context.seed
    transform = classic_augmentation(subset.image_shape, **{"seed": seed, **recipe.classic_options}) if arm.classic else None
    real = Transformed(subset, transform) if transform is not None else subset
    if source is None:
        return real, None, real
    if arm.keep is not None or arm.drop_wrong is not None or arm.drop_easy is not None:
        if not is_pool(source):
            raise ValueError(f"arm {arm.name!r}: filtering chooses among stored samples; give a SyntheticBank, not a generator")
        source = keep_confident(source, context.teacher, arm.keep) if arm.keep is not None else source
        if arm.drop_wrong is not None or arm.drop_easy is not None:
            source = filter_samples(source, context.teacher, drop_wrong=arm.drop_wrong, drop_easy=arm.drop_easy)
    if arm.mix_alpha is not None:
        mix = SyntheticMix(source, arm.ratio, mode=arm.mix_mode, alpha=arm.mix_alpha, seed=seed,
                           transform=_SampleAugment(arm, recipe, context) if arm.classic or arm.policy else None)
        return real, mix, real
    length = len(subset) + (round(arm.ratio * len(subset)) if arm.mode == "append" else 0)
    epochs = max(1, math.ceil(recipe.steps * recipe.batch_size / max(length, 1)))
    dataset = SyntheticAugment(
        subset, source, ratio=arm.ratio, mode=arm.mode, seed=seed, transform=transform,
        teacher=context.teacher if arm.teacher else None, temperature=arm.temperature, hard_labels=arm.teacher == "hard",
        synthetic_weight=arm.synthetic_weight, item="dict" if arm.synthetic_weight != 1 else "pair",
        schedule=ShareSchedule(1.0, arm.share_end, epochs=epochs) if arm.share_end is not None else None,
        draw="fresh" if arm.fresh else "random",
    )  # fmt: skip
    return dataset, None, real


class _SampleAugment:
    """What a real image goes through, for the samples a mixing transform draws: the arm's classic
    augmentation image by image, then its policy on the batch."""

    def __init__(self, arm: Arm, recipe: Recipe, context: _Context) -> None:
        seed = derive_seed(context.seed, "samples")  # a stream of their own, apart from the real images'
        options = {**recipe.classic_options, "seed": seed}
        self.classic = classic_augmentation(context.subset.image_shape, **options) if arm.classic else None
        self.policy = arm_policy(arm, seed)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.classic is not None:
            images = torch.stack([self.classic(image) for image in images.cpu()]).to(images.device)
        return self.policy(images, generator=generator) if self.policy is not None else images


def arm_policy(arm: Arm, seed: int) -> AugmentPolicy | None:
    """The arm's augmentation policy for a run with ``seed`` (``None`` without one)."""
    return AugmentPolicy(arm.policy, seed=seed) if arm.policy is not None else None


def _run(arm: Arm, context: _Context, source: Any, recipe: Recipe, test: LabeledImages) -> tuple[dict[str, Any], nn.Module]:
    dataset, batch_transform, real = build_training(arm, context, source, recipe)
    shape, k = context.subset.image_shape, context.subset.num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        model = context.factory() if callable(context.factory) else make_classifier(context.factory, shape, k)
    common = {"image_shape": shape, "num_classes": k, "batch_size": recipe.batch_size, "seed": context.seed,
              "accelerator": recipe.accelerator, "weight_decay": recipe.weight_decay, "schedule": recipe.schedule}  # fmt: skip
    model = train_classifier(dataset, model=model, steps=recipe.steps, lr=recipe.lr, sampler=arm.sampler,
                             mixup_alpha=arm.mixup_alpha, cutmix_alpha=arm.cutmix_alpha, label_smoothing=arm.label_smoothing,
                             policy=arm_policy(arm, context.seed), logit_adjust=arm.logit_adjust, reweight=arm.reweight,
                             batch_transform=batch_transform, **common)  # fmt: skip
    if arm.finetune_steps:
        model = train_classifier(real, model=model, steps=arm.finetune_steps, lr=arm.finetune_lr or recipe.lr / 10,
                                 trainable=arm.finetune_part, logit_adjust=arm.logit_adjust, label_smoothing=arm.label_smoothing,
                                 policy=arm_policy(arm, context.seed), **common)  # fmt: skip
    predictions = predict(model, test.images).argmax(1)
    matrix = confusion(predictions, test.labels, k)
    return {"confusion": matrix, "groups": context.groups, **scores(matrix, context.groups)}, model


class _Cache:
    """Per-run results (JSON) and the teacher arms' weights (safetensors) under ``root``; in memory without one."""

    def __init__(self, root: str | os.PathLike | None) -> None:
        self.root = Path(root) if root is not None else None
        self.models: dict[str, dict[str, torch.Tensor]] = {}

    def _path(self, context: _Context, arm: Arm, key: str, suffix: str) -> Path | None:
        """One file per fingerprint, so that runs of other settings (say, other step counts) live side by side."""
        if self.root is None:
            return None
        size = context.size if context.size is not None else "all"
        return self.root / f"size-{size}" / context.classifier / _slug(arm.name) / f"seed-{context.seed}-{key}{suffix}"

    def result(self, context: _Context, arm: Arm, key: str) -> dict[str, Any] | None:
        path = self._path(context, arm, key, ".json")
        if path is None or not path.is_file():
            return None
        stored = json.loads(path.read_text())
        return stored["result"] if stored.get("fingerprint") == key else None

    def store(self, context: _Context, arm: Arm, key: str, settings: dict[str, Any], result: dict[str, Any]) -> None:
        path = self._path(context, arm, key, ".json")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"fingerprint": key, "settings": settings, "result": result}, default=str))

    def store_model(self, key: str, context: _Context, arm: Arm, model: nn.Module) -> None:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        self.models[key] = state
        path = self._path(context, arm, key, ".safetensors")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file(state, path)

    def model(self, key: str, context: _Context, arm: Arm) -> dict[str, torch.Tensor] | None:
        if key in self.models:
            return self.models[key]
        path = self._path(context, arm, key, ".safetensors")
        return load_file(path) if path is not None and path.is_file() else None


def _ordered(arms: Sequence[Arm], teacher_arm: str | None) -> list[Arm]:
    """Arms with the real-only arm first (every difference is taken against it) and the teacher arm next."""
    arms = list(arms)
    if not any(arm.is_real_only for arm in arms):
        arms.insert(0, Arm("real"))
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be unique, got {names}")
    unknown = sorted({a.against for a in arms if a.against is not None} - set(names))
    if unknown:
        raise ValueError(f"arms are compared against {unknown}, which are not arms of this study")
    if any(arm.needs_teacher for arm in arms) and teacher_arm not in names:
        raise ValueError(f"arms that use a teacher need the teacher arm {teacher_arm!r} among the arms ({names})")
    return sorted(arms, key=lambda a: (not a.is_real_only, a.name != teacher_arm))


def downstream(
    real_train: LabeledImages,
    real_test: LabeledImages,
    *,
    arms: Sequence[Arm] | None = None,
    sizes: Sequence[int | None] = (None,),
    seeds: Sequence[int] = (0, 1, 2),
    classifiers: Sequence[str] | Mapping[str, Classifier] = ("cnn",),
    classifier: Callable[[], nn.Module] | None = None,
    steps: int = DEFAULT_STEPS,
    batch_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 5e-4,
    schedule: str = "cosine",
    subset_seed: int | None = None,
    subsets: Subsets | None = None,
    groups: Groups | None = None,
    teacher_arm: str = "real + classic",
    classic_options: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    accelerator: str = "auto",
    log: Callable[[str], None] | None = None,
    allow_overlap: bool = False,
) -> DownstreamReport:
    """Train a classifier on each arm for each size, seed and classifier, test it on ``real_test``, summarise.

    Args:
        real_train: the real labelled images each run draws its subset from.
        real_test: held-out images every run is tested on (never used for any choice).
        arms: the training sets to compare (:class:`Arm`, :func:`standard_arms`, :func:`technique_arms`); a
            real-only arm is added when missing, since every difference is taken against it.
        sizes: real images per class; ``None`` for all of ``real_train``.
        seeds: one run per seed, arm and classifier. A seed fixes the real subset (unless ``subset_seed``),
            the classifier's initialisation, the batch order and the synthetic draws, and is shared by all
            arms (paired comparison).
        classifiers: yardstick networks by name (``"cnn"``, ``"resnet"``) or ``{name: factory}``.
        classifier: deprecated single factory (use ``classifiers={"name": factory}``).
        steps, batch_size, lr, weight_decay, schedule: the recipe (see :func:`~synthaug.classifier.train_classifier`),
            the same for every arm.
        subset_seed: one subset for all seeds (the old behaviour; the intervals then miss the split variance).
        subsets: ``subsets(real_train, size, seed) -> LabeledImages``, e.g. a long-tailed subset
            (default: :func:`stratified`).
        groups: named groups of classes whose accuracy is reported, a list or a function of the subset
            (e.g. ``{"rarest 3": rarest(3)}``).
        teacher_arm: the arm whose trained model labels (``teacher=``) and filters other arms' samples.
        classic_options: keyword arguments of :func:`classic_augmentation`, e.g. ``{"hflip": False}`` for digits.
        cache_dir: per-run results (and the teacher's weights) are stored here and reused.
        out: writes ``downstream.json``, ``downstream.md`` and ``downstream.png`` (if matplotlib is installed).
        allow_overlap: go on, with a warning, when ``real_test`` shares images with what a source's generator
            was trained on (or with a pool's images); by default that is refused before anything trains
            (:class:`~synthaug.data.DataLeakError`; a source given as a function is checked when it is built).
    """
    if log is not None:
        warnings.warn("downstream(log=...) is deprecated: progress goes to the 'synthaug' logger", FutureWarning, stacklevel=2)
    if not seeds:
        raise ValueError("give at least one seed")
    if tuple(real_train.class_names) != tuple(real_test.class_names):
        raise ValueError(f"train and test classes differ: {list(real_train.class_names)} vs {list(real_test.class_names)}")
    if classifier is not None:
        warnings.warn("downstream(classifier=f) is deprecated; use classifiers={'name': f}", FutureWarning, stacklevel=2)
        classifiers = {getattr(classifier, "__name__", type(classifier).__name__): classifier}
    named = dict(classifiers) if isinstance(classifiers, Mapping) else {c: c for c in classifiers}
    ordered = _ordered(arms if arms is not None else [Arm("real"), Arm("real + classic", classic=True)], teacher_arm)
    recipe = Recipe(steps, batch_size, lr, weight_decay, schedule, dict(classic_options or {}), accelerator)
    make_subset = subsets or (lambda train, size, seed: stratified(train, size, subset_seed if subset_seed is not None else seed))
    cache = _Cache(cache_dir)
    held_out = _HeldOut(real_test, allow_overlap)
    for arm in ordered:  # every source given as an object or a path, before anything trains
        raw = arm.source
        for candidate in (raw.values() if isinstance(raw, Mapping) else [raw] if raw is not None else []):
            if not callable(candidate) or isinstance(candidate, nn.Module):
                held_out.check(arm, as_source(candidate))
    runs = []
    for size in sizes:
        for seed in seeds:
            subset = make_subset(real_train, size, seed)
            named_groups = {g: sorted(int(c) for c in (v(subset) if callable(v) else v)) for g, v in (groups or {}).items()}
            for name, factory in named.items():
                context = _Context(size, seed, name, factory, subset, named_groups)
                for arm in ordered:
                    result = _one(arm, context, recipe, real_test, cache, teacher_arm, held_out)
                    runs.append({"size": size if size is not None else len(real_train) // real_train.num_classes,
                                 "seed": seed, "classifier": name, "arm": arm.name, "real_only": arm.is_real_only,
                                 "against": arm.against, "counts": subset.class_counts(), **result})  # fmt: skip
                    message = f"{runs[-1]['size']:>5} / class  {name:<7} {arm.name:<44} seed {seed}: {100 * result['accuracy']:.2f}%"
                    if log is not None:
                        log(message)
                    logger.info(message)
    settings = {**recipe.key(), "seeds": list(seeds), "sizes": list(sizes), "subset_seed": subset_seed,
                "classifiers": list(named), "teacher_arm": teacher_arm, "test": len(real_test)}  # fmt: skip
    report = DownstreamReport(list(real_train.class_names), len(real_test), settings, runs)
    if out is not None:
        report.save(out)
    return report


class _HeldOut:
    """Checks the test set against the images each source was trained on (once per source)."""

    def __init__(self, test: LabeledImages, allow_overlap: bool) -> None:
        self.test, self.allow_overlap = test.fingerprint(), allow_overlap
        self.checked: set[str] = set()

    def check(self, arm: Arm, source: Any) -> None:
        key = source_fingerprint(source)
        if key not in self.checked:
            check_held_out(self.test, training_fingerprint(source), allow_overlap=self.allow_overlap,
                           held_out_name="the test set", trained_name=f"the source of arm {arm.name!r}")  # fmt: skip
            self.checked.add(key)


def _one(arm: Arm, context: _Context, recipe: Recipe, test: LabeledImages, cache: _Cache, teacher_arm: str,
         held_out: _HeldOut) -> dict[str, Any]:  # fmt: skip
    """One run's result: from the cache, or trained now (after the teacher it needs, from the cache or trained)."""
    raw = resolve_source(arm, context.size, context.seed, context.subset) if arm.source is not None else None
    source = as_source(raw) if raw is not None else None
    if source is not None:
        held_out.check(arm, source)
    settings = {**recipe.key(), "classifier": context.classifier, "size": context.size, "seed": context.seed,
                "subset": _sha(context.subset), "test": _sha(test), "groups": context.groups, "arm": arm.options(),
                "source": source_fingerprint(source) if source is not None else None,
                "teacher": context.teacher_key if arm.needs_teacher else None}  # fmt: skip
    key = _fingerprint(settings)
    is_teacher = arm.name == teacher_arm
    result = cache.result(context, arm, key)
    if result is not None and is_teacher:
        state = cache.model(key, context, arm)
        if state is None:
            result = None  # the teacher's weights are needed again: train it anew
        else:
            context.teacher = _load(context, state)
    if result is None:
        if arm.needs_teacher and context.teacher is None:
            raise RuntimeError(f"arm {arm.name!r} needs the teacher arm {teacher_arm!r}, which has not run")
        result, model = _run(arm, context, source, recipe, test)
        cache.store(context, arm, key, settings, result)
        if is_teacher:
            cache.store_model(key, context, arm, model)
            context.teacher = model
    if is_teacher:
        context.teacher_key = key
    return result


def _load(context: _Context, state: dict[str, torch.Tensor]) -> nn.Module:
    shape, k = context.subset.image_shape, context.subset.num_classes
    model = context.factory() if callable(context.factory) else make_classifier(context.factory, shape, k)
    model.load_state_dict(state)
    return model.eval()
