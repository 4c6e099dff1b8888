"""``synthaug.evaluate``: every fidelity, diversity and memorization number for a synthetic set, in one report."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from synthaug.bank import SyntheticBank
from synthaug.checks import check_int
from synthaug.classifier import accuracy, train_classifier
from synthaug.data.fingerprint import check_held_out
from synthaug.data.labeled import LabeledImages
from synthaug.metrics.features import FeatureExtractor, domain_classifier
from synthaug.metrics.functional import (
    NEAR_COPY_THRESHOLD,
    fid,
    kid,
    memorization_ratios,
    near_copy_share,
    prdc,
)
from synthaug.visualize import save_image_grid

log = logging.getLogger(__name__)

METRICS = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage")
LOWER_IS_BETTER = {"fid", "kid"}


def feature_metrics(real: Tensor, fake: Tensor, *, kid_subsets: int = 100, seed: int = 0) -> dict[str, float]:
    """FID, KID (mean and std), precision/recall (k=3) and density/coverage (k=5) of two feature sets."""
    kid_mean, kid_std = kid(real, fake, subsets=kid_subsets, seed=seed)
    knn = prdc(real, fake, k_precision_recall=3, k_density_coverage=5)
    values = {"fid": fid(real, fake), "kid": kid_mean, "kid_std": kid_std, **knn}
    return {name: float(values[name]) for name in METRICS}


@dataclass
class EvaluationReport:
    """The result of :func:`evaluate`; ``to_dict()`` / ``to_json()`` / ``to_markdown()`` serialise it."""

    extractor: dict[str, Any]
    sizes: dict[str, int]
    class_names: list[str]
    overall: dict[str, float]
    floor: dict[str, float] | None
    per_class: dict[str, dict[str, float]]
    cas: dict[str, float] | None = None
    memorization: dict[str, Any] | None = None
    figures: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def to_markdown(self) -> str:
        lines = ["# synthaug evaluation report", ""]
        ext = self.extractor
        lines.append(f"Features: **{ext['name']}**, {ext['num_features']} dimensions"
                     + (f", {ext['accuracy']:.2%} accuracy on the real test images." if ext.get("accuracy") is not None else "."))  # fmt: skip
        lines.append("Values are comparable only with others computed with the same extractor (not with Inception FIDs).")
        lines.append("")
        lines.append("Sizes: " + ", ".join(f"{k} {v}" for k, v in self.sizes.items()) + ".")
        lines += ["", "## Overall", ""]
        floor_note = "as many real training images as synthetic ones vs real test: what real data scores"
        lines.append(f"| metric | synthetic vs real test | floor ({floor_note}) |" if self.floor else "| metric | synthetic vs real test |")
        lines.append("| --- | ---: | ---: |" if self.floor else "| --- | ---: |")
        for name in METRICS:
            arrow = "↓" if name in LOWER_IS_BETTER else ("" if name == "kid_std" else "↑")
            row = f"| {name} {arrow} | {_fmt(self.overall[name])} |"
            lines.append(row + (f" {_fmt(self.floor[name])} |" if self.floor else ""))
        if self.cas:
            lines += ["", "## Classification accuracy score (train on synthetic, test on real)", ""]
            lines.append("| trained on | test accuracy |")
            lines.append("| --- | ---: |")
            lines.append(f"| synthetic only | {self.cas['synthetic']:.2%} |")
            if "real" in self.cas:
                lines.append(f"| the generator's {self.cas['real_images']} real training images (same classifier and steps) "
                             f"| {self.cas['real']:.2%} |")  # fmt: skip
        if self.memorization:
            mem = self.memorization
            lines += ["", "## Memorization", ""]
            lines.append(f"{mem['near_copy_share']:.2%} of synthetic samples are near-copies (closer to their nearest "
                         f"training image than {mem['threshold']:.2f} x that image's distance to its own nearest "
                         f"neighbour), against {mem['train_size']} training images; median ratio "
                         f"{mem['median_ratio']:.2f}.")  # fmt: skip
        lines += ["", "## Per class", ""]
        lines.append("| class | " + " | ".join(METRICS) + (" | near-copies |" if self.memorization else " |"))
        lines.append("| --- |" + " ---: |" * (len(METRICS) + (1 if self.memorization else 0)))
        for name, values in self.per_class.items():
            cells = [_fmt(values[m]) for m in METRICS]
            if self.memorization:
                cells.append(f"{self.memorization['per_class'][name]:.2%}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        for title, path in self.figures.items():
            lines += ["", f"## {title}", "", f"![{title}]({Path(path).name})"]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def _summarise(messages: Any) -> list[str]:
    """Warnings as report notes, the per-class KID subset-size ones folded into one line."""
    notes, kid_sizes = [], []
    for message in dict.fromkeys(messages):
        found = re.match(r"KID subset size lowered from (\d+) to (\d+)", message)
        if found:
            kid_sizes.append(int(found.group(2)))
        else:
            notes.append(message)
    if kid_sizes:
        notes.append(f"KID used subsets of the smaller set's size where a set had fewer than 1000 samples "
                     f"({min(kid_sizes)} to {max(kid_sizes)} samples).")  # fmt: skip
    return notes


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4g}"


def _as_images(synthetic: SyntheticBank | LabeledImages) -> LabeledImages:
    if isinstance(synthetic, LabeledImages):
        return synthetic
    if isinstance(synthetic, SyntheticBank):
        keep = torch.tensor([c for c in range(synthetic.num_classes) if synthetic.class_counts()[c] > 0])
        if len(keep) != synthetic.num_classes:
            raise ValueError(f"the bank lacks classes {sorted(set(range(synthetic.num_classes)) - set(keep.tolist()))}; "
                             "per-class metrics need every class of the real data")  # fmt: skip
        return LabeledImages(synthetic.images(range(len(synthetic))), synthetic.labels.clone(), synthetic.class_names)
    raise TypeError(f"synthetic must be a SyntheticBank or LabeledImages, got {type(synthetic).__name__}")


def evaluate(
    real_test: LabeledImages,
    synthetic: SyntheticBank | LabeledImages,
    *,
    real_train: LabeledImages | None = None,
    generator_train: LabeledImages | None = None,
    feature_extractor: nn.Module | None = None,
    cas_steps: int | None = 1000,
    feature_steps: int = 1500,
    kid_subsets: int = 100,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    allow_overlap: bool = False,
) -> EvaluationReport:
    """Compare a synthetic set with real test images.

    Args:
        real_test: real images the synthetic set is compared with.
        synthetic: a :class:`~synthaug.bank.SyntheticBank` or :class:`~synthaug.data.LabeledImages`.
        real_train: real training images: trains the default feature extractor (a domain classifier)
            and gives the real-vs-real floor next to every distance.
        generator_train: the images the generator was trained on (default: ``real_train``): the
            memorization check compares with them, and CAS's real baseline trains on them.
        feature_extractor: any module mapping images in ``[-1, 1]`` to ``(N, d)``, instead of the
            domain classifier.
        cas_steps: classifier steps for CAS (train on synthetic, test on real); ``None`` skips CAS.
        feature_steps: training steps of the default domain classifier (cached per data and steps).
        out: a directory for ``report.json``, ``report.md`` and the figures.
        allow_overlap: go on (with a warning, and a note in the report) when ``real_test`` shares images
            with the generator's training images; by default that is refused (:class:`~synthaug.data.DataLeakError`).
            A bank records what its generator was trained on; ``generator_train`` (or ``real_train``) is checked too.
            When a bank records it and ``generator_train`` is not given, the memorization check and CAS's real
            baseline use the images of ``real_train`` that the generator was trained on.
    """
    check_int("cas_steps", cas_steps, optional=True)  # None skips CAS; 0 is not a way to say so
    check_int("feature_steps", feature_steps)
    check_int("kid_subsets", kid_subsets)
    check_int("seed", seed, minimum=0)
    generator_train, leaks = _provenance(real_test, synthetic, real_train, generator_train, allow_overlap)
    synthetic = _as_images(synthetic)
    if tuple(synthetic.class_names) != tuple(real_test.class_names):
        raise ValueError(f"class sets differ: synthetic {list(synthetic.class_names)} vs real {list(real_test.class_names)}; "
                         "per-class metrics need the same classes in the same order")  # fmt: skip
    if synthetic.image_shape != real_test.image_shape:
        raise ValueError(f"image shapes differ: synthetic {synthetic.image_shape} vs real {real_test.image_shape}")
    memorization_set = generator_train if generator_train is not None else real_train
    extractor = _extractor(feature_extractor, real_train, real_test, feature_steps, seed, cache_dir)
    f_test, f_syn = extractor(real_test.images), extractor(synthetic.images)
    f_train = extractor(real_train.images) if real_train is not None else None
    overall, floor, per_class, notes = _distances(f_test, f_syn, f_train, real_test, synthetic, kid_subsets, seed)
    notes = leaks + notes
    cas = _cas(synthetic, memorization_set, real_test, cas_steps, seed) if cas_steps else None
    memorization, ratios, nearest = None, None, None
    if memorization_set is not None:
        f_mem = f_train if memorization_set is real_train else extractor(memorization_set.images)
        memorization, ratios, nearest = _memorization(f_mem, f_syn, synthetic, len(memorization_set))
    report = EvaluationReport(
        extractor={"name": extractor.name, "num_features": int(f_syn.shape[1]), "accuracy": extractor.accuracy},
        sizes={"real test": len(real_test), "synthetic": len(synthetic),
               **({"real train": len(real_train)} if real_train is not None else {})},  # fmt: skip
        class_names=list(real_test.class_names),
        overall=overall,
        floor=floor,
        per_class=per_class,
        cas=cas,
        memorization=memorization,
        notes=notes,
    )
    if out is not None:
        _write(report, Path(out), synthetic, memorization_set, ratios, nearest, seed)
    return report


def _provenance(real_test: LabeledImages, synthetic: SyntheticBank | LabeledImages, real_train: LabeledImages | None,
                generator_train: LabeledImages | None, allow_overlap: bool) -> tuple[LabeledImages | None, list[str]]:  # fmt: skip
    """Refuse a ``real_test`` that shares images with what the generator was trained on; pick ``generator_train``
    from ``real_train`` by the bank's record when it is not given. Returns it and the report's notes on overlaps."""
    notes, trained = [], None
    if isinstance(synthetic, SyntheticBank):
        trained = synthetic.training_data
        shared = check_held_out(real_test, trained, allow_overlap=allow_overlap, held_out_name="the test set",
                                trained_name="the bank's generator")  # fmt: skip
        if shared:
            notes.append(f"LEAK: {shared} of the {len(real_test)} test images are training images of the bank's generator "
                         "(allow_overlap=True): every score here is flattered.")  # fmt: skip
        if trained is not None and generator_train is None and real_train is not None:
            mask = trained.shared(real_train)
            if int(mask.sum()) == trained.count and trained.count < len(real_train):
                generator_train = real_train.select(torch.from_numpy(mask.nonzero()[0]))
                log.info("generator_train: the %d images of real_train the bank's generator was trained on", trained.count)
    given = generator_train if generator_train is not None else real_train
    if given is not None:
        name = "generator_train" if generator_train is not None else "real_train"
        fingerprint = given.fingerprint()
        shared = check_held_out(real_test, fingerprint, allow_overlap=allow_overlap, held_out_name="the test set",
                                trained_name=f"the generator ({name})")  # fmt: skip
        if shared:
            notes.append(f"LEAK: {shared} of the {len(real_test)} test images are in {name} (allow_overlap=True).")
        if trained is not None and fingerprint.digest != trained.digest and generator_train is not None:
            message = (f"generator_train ({len(given)} images) is not what the bank's generator was trained on "
                       f"({trained.describe()}): the memorization check and CAS's real baseline compare with other images")  # fmt: skip
            log.warning(message)
            notes.append(message + ".")
    return generator_train, notes


def _extractor(module: nn.Module | None, real_train: LabeledImages | None, real_test: LabeledImages, steps: int, seed: int,
               cache_dir: str | os.PathLike | None) -> FeatureExtractor:  # fmt: skip
    """The given feature extractor, or the domain classifier trained (cached) on ``real_train``."""
    if module is None:
        if real_train is None:
            raise ValueError("pass real_train= (to train the default domain-classifier features) or feature_extractor=")
        return domain_classifier(real_train, real_test=real_test, steps=steps, seed=seed, cache_dir=cache_dir)
    return module if isinstance(module, FeatureExtractor) else FeatureExtractor(module, type(module).__name__)


def _distances(f_test: Tensor, f_syn: Tensor, f_train: Tensor | None, real_test: LabeledImages, synthetic: LabeledImages,
               kid_subsets: int, seed: int) -> tuple[dict, dict | None, dict, list[str]]:  # fmt: skip
    """Every feature metric overall, for the real floor at the same size, and per class; warnings become notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        overall = feature_metrics(f_test, f_syn, kid_subsets=kid_subsets, seed=seed)
        floor = None
        if f_train is not None:
            # As many real training images as synthetic ones: k-NN radii and covariance estimates
            # depend on set sizes, so a floor from a larger set would be unfairly low.
            same_size = torch.randperm(len(f_train), generator=torch.Generator().manual_seed(seed))[: len(f_syn)]
            floor = feature_metrics(f_test, f_train[same_size], kid_subsets=kid_subsets, seed=seed)
        per_class = {name: feature_metrics(f_test[real_test.labels == c], f_syn[synthetic.labels == c],
                                           kid_subsets=kid_subsets, seed=seed)
                     for c, name in enumerate(real_test.class_names)}  # fmt: skip
    return overall, floor, per_class, _summarise(str(w.message) for w in caught)


def _cas(synthetic: LabeledImages, generator_train: LabeledImages | None, real_test: LabeledImages, steps: int, seed: int) -> dict:
    """Train on synthetic, test on real; and the same classifier on the generator's own training images."""
    kwargs = {"image_shape": real_test.image_shape, "num_classes": real_test.num_classes, "steps": steps, "seed": seed}
    cas: dict[str, Any] = {"synthetic": accuracy(train_classifier(synthetic, **kwargs), real_test)}
    if generator_train is not None:  # what synthetic data stands in for
        cas["real"] = accuracy(train_classifier(generator_train, **kwargs), real_test)
        cas["real_images"] = len(generator_train)
    return cas


def _memorization(f_train: Tensor, f_syn: Tensor, synthetic: LabeledImages, train_size: int) -> tuple[dict, Tensor, Tensor]:
    ratios, nearest = memorization_ratios(f_train, f_syn)
    summary = {
        "threshold": NEAR_COPY_THRESHOLD,
        "train_size": train_size,
        "near_copy_share": float(near_copy_share(ratios)),
        "median_ratio": float(ratios.median()),
        "per_class": {name: float(near_copy_share(ratios[synthetic.labels == c]))
                      for c, name in enumerate(synthetic.class_names)},  # fmt: skip
    }
    return summary, ratios, nearest


def _write(report: EvaluationReport, out: Path, synthetic: LabeledImages, train: LabeledImages | None,
           ratios: Tensor | None, nearest: Tensor | None, seed: int) -> None:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    per_class = 8
    rng = torch.Generator().manual_seed(seed)
    picks = torch.cat([
        members[torch.randperm(len(members), generator=rng)[:per_class]]
        for members in (torch.nonzero(synthetic.labels == c).flatten() for c in range(synthetic.num_classes))
    ])  # fmt: skip
    report.figures["Synthetic samples (one row per class)"] = str(
        save_image_grid(synthetic.images[picks], out / "samples.png", nrow=per_class)
    )
    if ratios is not None and train is not None:
        closest = ratios.argsort()[:16]  # the synthetic samples most like a training image
        pairs = torch.stack([torch.stack([synthetic.images[i], train.images[nearest[i]]]) for i in closest.tolist()])
        report.figures["Closest to a training image (each synthetic sample, then its nearest training image)"] = str(
            save_image_grid(pairs.flatten(0, 1), out / "nearest_neighbours.png", nrow=8)
        )
    report.to_json(out / "report.json")
    (out / "report.md").write_text(report.to_markdown())
