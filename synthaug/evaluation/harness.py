"""Downstream accuracy: does a classifier trained with synthetic data beat one trained without?

:func:`downstream` trains the same classifier (same steps, batch size and seeds) on several *arms*
(real images only; with classic augmentation; with synthetic samples at some ratio; both) for a few
real-data sizes, tests every run on the same held-out set, and reports mean accuracy with a 95%
confidence interval over seeds, the paired difference to real-only (same seed, same subset) with
its interval, and per-class deltas. Per-run results are cached, so a rerun computes only what is
missing and an interrupted study resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from scipy import stats
from torch import nn
from torch.utils.data import Dataset, get_worker_info

from synthaug.augment import Mode, SyntheticAugment
from synthaug.bank import SyntheticBank
from synthaug.classifier import predict, train_classifier
from synthaug.data.labeled import LabeledImages
from synthaug.generators.base import ConditionalGenerator
from synthaug.io import weights_sha256
from synthaug.synthetic import as_source

#: a source for an arm: a bank, a generator or the path of either; or one per size; or a function
#: of the real subset (e.g. one that trains a generator on exactly those images)
ArmSource = Any


@dataclass(frozen=True)
class Arm:
    """One way of building the training set.

    Args:
        name: the arm's label in tables and plots (and its cache key).
        source: synthetic samples: a :class:`~synthaug.bank.SyntheticBank`, a generator, the path of
            either, a ``{real images per class: source}`` mapping, or a callable that receives the real
            subset and returns a source. ``None``: no synthetic data.
        ratio, mode: how :class:`~synthaug.augment.SyntheticAugment` mixes the source in.
        classic: apply classic augmentation (flips, shifts; see :func:`classic_augmentation`) to every image.
        keep: keep only this share of each class's synthetic samples, the ones a classifier trained on
            the real subset is most confident belong to their class (needs a bank).
    """

    name: str
    source: ArmSource = None
    ratio: float | None = None
    mode: Mode = "append"
    classic: bool = False
    keep: float | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"an arm needs a non-empty name without '/', got {self.name!r}")
        if self.source is None and (self.ratio is not None or self.keep is not None):
            raise ValueError(f"arm {self.name!r} sets ratio or keep but has no synthetic source")
        if self.source is not None and self.ratio is None and self.mode != "balance":
            raise ValueError(f"arm {self.name!r} has a synthetic source but no ratio; give ratio= (e.g. 0.5)")
        if self.keep is not None and not 0 < self.keep <= 1:
            raise ValueError(f"keep must lie in (0, 1], got {self.keep}")

    @property
    def is_real_only(self) -> bool:
        return self.source is None and not self.classic


def standard_arms(
    sources: Mapping[str, ArmSource],
    *,
    ratios: Sequence[float] = (0.25, 0.5, 1.0),
    mode: Mode = "append",
    classic_ratio: float | None = 0.5,
) -> list[Arm]:
    """Real only, real + classic, real + each source at each ratio, and real + classic + each source."""
    arms = [Arm("real"), Arm("real + classic", classic=True)]
    for name, source in sources.items():
        arms += [Arm(f"real + {name} {ratio:g}", source, ratio=ratio, mode=mode) for ratio in ratios]
    if classic_ratio is not None:
        arms += [Arm(f"real + classic + {name} {classic_ratio:g}", source, ratio=classic_ratio, mode=mode, classic=True)
                 for name, source in sources.items()]  # fmt: skip
    return arms


# --- classic augmentation ------------------------------------------------------------------------


class _TorchAugment:
    """Random horizontal flip and a random shift (zero padding, then a crop) of a uint8 ``(C, H, W)`` tensor."""

    def __init__(self, hflip: bool, shift: float, seed: int) -> None:
        self.hflip, self.shift, self.seed = hflip, shift, seed
        self._rng: torch.Generator | None = None
        self._worker: int | None = None

    def _generator(self) -> torch.Generator:
        info = get_worker_info()
        worker = info.id if info is not None else -1
        if self._rng is None or worker != self._worker:  # each DataLoader worker draws its own stream
            self._rng, self._worker = torch.Generator().manual_seed(hash((self.seed, worker)) % 2**63), worker
        return self._rng

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        rng = self._generator()
        if self.hflip and torch.rand((), generator=rng) < 0.5:
            image = image.flip(-1)
        _, h, w = image.shape
        dy, dx = round(self.shift * h), round(self.shift * w)
        if dy or dx:
            padded = torch.nn.functional.pad(image, (dx, dx, dy, dy))
            top = int(torch.randint(2 * dy + 1, (), generator=rng))
            left = int(torch.randint(2 * dx + 1, (), generator=rng))
            image = padded[:, top : top + h, left : left + w]
        return image


class _AlbumentationsAugment:
    def __init__(self, hflip: bool, shift: float, seed: int, image_shape: Sequence[int]) -> None:
        import albumentations as A
        import cv2

        _, h, w = image_shape
        dy, dx = round(shift * h), round(shift * w)
        self.pipeline = A.Compose(
            [A.HorizontalFlip(p=0.5 if hflip else 0.0),
             A.PadIfNeeded(h + 2 * dy, w + 2 * dx, border_mode=cv2.BORDER_CONSTANT, fill=0),
             A.RandomCrop(h, w)],
            seed=seed,
        )  # fmt: skip

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        out = self.pipeline(image=image.permute(1, 2, 0).numpy())["image"]
        return torch.from_numpy(np.ascontiguousarray(out.reshape(out.shape[0], out.shape[1], -1))).permute(2, 0, 1)


def classic_augmentation(
    image_shape: Sequence[int], *, hflip: bool = True, shift: float = 0.1, seed: int = 0, backend: str = "auto"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Flips and shifts of uint8 ``(C, H, W)`` tensors, seeded.

    ``shift`` is the largest translation as a share of the side (pad with zeros, crop back). The
    ``"albumentations"`` backend is used when the package is installed (``"auto"``), else ``"torch"``;
    both apply the same operations. Set ``hflip=False`` for data that mirroring changes (digits, text).
    """
    if not 0 <= shift < 0.5:
        raise ValueError(f"shift must lie in [0, 0.5), got {shift}")
    if backend == "auto":
        try:
            import albumentations  # noqa: F401

            backend = "albumentations"
        except ImportError:
            backend = "torch"
    if backend == "torch":
        return _TorchAugment(hflip, shift, seed)
    if backend == "albumentations":
        return _AlbumentationsAugment(hflip, shift, seed, image_shape)
    raise ValueError(f"backend must be 'auto', 'torch' or 'albumentations', got {backend!r}")


class _Transformed(Dataset):
    def __init__(self, data: LabeledImages, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.data[index]
        return self.transform(image), label


# --- statistics ----------------------------------------------------------------------------------


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: Student's t interval for the mean of ``values`` (NaN bounds for one value)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("no values")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


# --- the report ----------------------------------------------------------------------------------


@dataclass
class DownstreamReport:
    """Per-run accuracies (``runs``) and their summary per size and arm (``summary``)."""

    class_names: list[str]
    test_size: int
    settings: dict[str, Any]
    runs: list[dict[str, Any]]
    summary: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.summary:
            self.summary = self._summarise()

    def _summarise(self) -> list[dict[str, Any]]:
        rows = []
        for size in dict.fromkeys(r["size"] for r in self.runs):
            at_size = [r for r in self.runs if r["size"] == size]
            real = {r["seed"]: r for r in at_size if r["real_only"]}
            for arm in dict.fromkeys(r["arm"] for r in at_size):
                runs = sorted((r for r in at_size if r["arm"] == arm), key=lambda r: r["seed"])
                mean, low, high = mean_interval([r["accuracy"] for r in runs])
                row = {"size": size, "arm": arm, "seeds": [r["seed"] for r in runs], "accuracy": mean,
                       "low": low, "high": high}  # fmt: skip
                paired = [r for r in runs if r["seed"] in real]
                if paired and not runs[0]["real_only"]:
                    diff, diff_low, diff_high = mean_interval([r["accuracy"] - real[r["seed"]]["accuracy"] for r in paired])
                    per_class = np.mean([np.subtract(r["per_class"], real[r["seed"]]["per_class"]) for r in paired], axis=0)
                    row.update(difference=diff, difference_low=diff_low, difference_high=diff_high,
                               per_class_difference=[float(v) for v in per_class])  # fmt: skip
                rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    def to_markdown(self) -> str:
        pct = lambda v: "n/a" if math.isnan(v) else f"{100 * v:.2f}"  # noqa: E731
        s = self.settings
        lines = [
            f"Test accuracy (%) on {self.test_size:,} held-out images; mean over seeds {s['seeds']} with the 95% t-interval; "
            f"Δ: paired difference to real only (same seed), with its 95% interval. {s['classifier']}, {s['steps']} steps, "
            f"batch {s['batch_size']}.",
            "",
            "| real / class | arm | accuracy | 95% CI | Δ vs real | Δ 95% CI |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for r in self.summary:
            diff = (f"{100 * r['difference']:+.2f} | [{pct(r['difference_low'])}, {pct(r['difference_high'])}]"
                    if "difference" in r else " | ")  # fmt: skip
            lines.append(f"| {r['size']} | {r['arm']} | {pct(r['accuracy'])} | [{pct(r['low'])}, {pct(r['high'])}] | {diff} |")
        deltas = [r for r in self.summary if "per_class_difference" in r]
        if deltas:
            lines += ["", "Per-class Δ (accuracy points, mean over seeds):", "",
                      "| real / class | arm | " + " | ".join(self.class_names) + " |",
                      "|---:|---|" + "---:|" * len(self.class_names)]  # fmt: skip
            for r in deltas:
                lines.append(f"| {r['size']} | {r['arm']} | " + " | ".join(f"{100 * v:+.1f}" for v in r["per_class_difference"]) + " |")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | os.PathLike) -> Path:
        """Accuracy against real images per class, one line per arm, with the 95% intervals (needs matplotlib)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ImportError("plotting needs matplotlib: pip install 'synthaug[plot]'") from err
        fig, ax = plt.subplots(figsize=(9, 4.8))
        colours = plt.get_cmap("tab20").colors
        for i, arm in enumerate(dict.fromkeys(r["arm"] for r in self.summary)):
            rows = sorted((r for r in self.summary if r["arm"] == arm), key=lambda r: r["size"])
            x, y = [r["size"] for r in rows], [100 * r["accuracy"] for r in rows]
            err = [[100 * (r["accuracy"] - r["low"]) if not math.isnan(r["low"]) else 0 for r in rows],
                   [100 * (r["high"] - r["accuracy"]) if not math.isnan(r["high"]) else 0 for r in rows]]  # fmt: skip
            real_only = rows[0].get("difference") is None
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=arm, color="black" if real_only else colours[i % 20],
                        linewidth=2.5 if real_only else 1.2, linestyle="-" if i < 20 else "--")  # fmt: skip
        ax.set_xscale("log")
        sizes = sorted({r["size"] for r in self.summary})
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("real training images per class")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        self.figures["plot"] = str(path)
        return path


# --- the harness ---------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_") or "arm"


def _source_id(source: SyntheticBank | ConditionalGenerator) -> str:
    if isinstance(source, SyntheticBank):
        return f"bank:{source.sha256}"
    return f"{source.family}:{weights_sha256(source)}"


def _fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def keep_confident(bank: SyntheticBank, judge: nn.Module, keep: float, *, batch_size: int = 1024) -> SyntheticBank:
    """The ``keep`` share of each class's samples that ``judge`` (a classifier) gives the highest
    probability of their own label, as a view of ``bank``."""
    scores = torch.empty(len(bank))
    for start in range(0, len(bank), batch_size):
        index = torch.arange(start, min(start + batch_size, len(bank)))
        probabilities = predict(judge, bank.images(index), probabilities=True)
        scores[index] = probabilities[torch.arange(len(index)), bank.labels[index]]
    kept = []
    for c in range(bank.num_classes):
        members = bank.indices_of(c)
        top = scores[members].argsort(descending=True)[: max(1, round(keep * len(members)))] if len(members) else members
        kept.append(members[top])
    return bank.select(torch.cat(kept).sort().values)


def downstream(
    real_train: LabeledImages,
    real_test: LabeledImages,
    *,
    arms: Sequence[Arm] | None = None,
    sizes: Sequence[int | None] = (None,),
    seeds: Sequence[int] = (0, 1, 2),
    classifier: Callable[[], nn.Module | L.LightningModule] | None = None,
    steps: int = 1000,
    batch_size: int = 64,
    lr: float = 2e-3,
    subset_seed: int = 0,
    classic_options: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    accelerator: str = "auto",
    log: Callable[[str], None] | None = print,
) -> DownstreamReport:
    """Train a classifier on each arm for each size and seed, test it on ``real_test``, summarise.

    Args:
        real_train: the real labelled images; each size takes a stratified subset of it.
        real_test: held-out images every run is tested on.
        arms: the training sets to compare (see :class:`Arm` and :func:`standard_arms`); a real-only
            arm is added when missing, since every difference is taken against it.
        sizes: real images per class (``subset(n, seed=subset_seed)``); ``None`` for all of ``real_train``.
        seeds: one run per seed and arm; a seed fixes the classifier's initialisation, the batch
            order, dropout and the synthetic draws, and is shared by all arms (paired comparison).
        classifier: a factory returning a fresh ``nn.Module`` (logits out; trained with AdamW and
            cross-entropy) or ``LightningModule`` (trained as it is); default :class:`SmallCNN`.
        steps, batch_size, lr: the same for every arm.
        classic_options: keyword arguments of :func:`classic_augmentation` for the classic arms,
            e.g. ``{"hflip": False}`` for digits.
        cache_dir: per-run results are stored here and reused when the run's settings (arm, source
            fingerprint, classifier, steps, ...) are unchanged.
        out: writes ``downstream.json``, ``downstream.md`` and ``downstream.png``.
    """
    arms = list(arms) if arms is not None else [Arm("real"), Arm("real + classic", classic=True)]
    if not any(arm.is_real_only for arm in arms):
        arms.insert(0, Arm("real"))
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be unique, got {names}")
    if not seeds:
        raise ValueError("give at least one seed")
    if tuple(real_train.class_names) != tuple(real_test.class_names):
        raise ValueError(f"train and test classes differ: {list(real_train.class_names)} vs {list(real_test.class_names)}")
    classifier_name = getattr(classifier, "__name__", type(classifier).__name__) if classifier else "SmallCNN"
    settings = {"seeds": list(seeds), "sizes": list(sizes), "steps": steps, "batch_size": batch_size, "lr": lr,
                "subset_seed": subset_seed, "classifier": classifier_name, "classic_options": dict(classic_options or {})}  # fmt: skip
    cache = Path(cache_dir) if cache_dir is not None else None
    shape, num_classes = real_train.image_shape, real_train.num_classes

    def fit_and_test(dataset: Any, seed: int) -> dict[str, Any]:
        model = None
        if classifier is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = classifier()
        model = train_classifier(dataset, image_shape=shape, num_classes=num_classes, steps=steps, batch_size=batch_size,
                                 lr=lr, seed=seed, model=model, accelerator=accelerator)  # fmt: skip
        predictions = predict(model, real_test.images).argmax(1)
        correct = (predictions == real_test.labels).double()
        per_class = [float(correct[real_test.labels == c].mean()) for c in range(num_classes)]
        return {"accuracy": float(correct.mean()), "per_class": per_class}

    runs: list[dict[str, Any]] = []
    for size in sizes:
        subset = real_train.subset(size, seed=subset_seed) if size is not None else real_train
        size_label = size if size is not None else len(real_train) // num_classes
        judge: nn.Module | None = None
        for arm in arms:
            source = None
            if arm.source is not None:
                raw = arm.source
                if isinstance(raw, Mapping):
                    if size not in raw:
                        raise ValueError(f"arm {arm.name!r} has sources for sizes {sorted(raw)} but not for {size}")
                    raw = raw[size]
                elif callable(raw) and not isinstance(raw, (SyntheticBank, ConditionalGenerator)):
                    raw = raw(subset)
                source = as_source(raw)
                if arm.keep is not None and not isinstance(source, SyntheticBank):
                    raise ValueError(f"arm {arm.name!r}: keep= filters a pool of samples; give a SyntheticBank, not a generator")
            # The key names the unfiltered source: keep's judge is itself determined by the settings.
            key = {**settings, "seeds": None, "sizes": None, "size": size, "test": len(real_test),
                   "arm": {"ratio": arm.ratio, "mode": arm.mode, "classic": arm.classic, "keep": arm.keep},
                   "source": _source_id(source) if source is not None else None}  # fmt: skip
            filtered = None
            for seed in seeds:
                path = cache / f"size-{size_label}" / _slug(arm.name) / f"seed-{seed}.json" if cache else None
                result = None
                if path is not None and path.is_file():
                    stored = json.loads(path.read_text())
                    if stored.get("fingerprint") == _fingerprint(key):
                        result = stored["result"]
                if result is None:
                    if arm.keep is not None and filtered is None:
                        if judge is None:  # a classifier trained on the real subset alone, fixed seed
                            judge = train_classifier(subset, image_shape=shape, num_classes=num_classes, steps=steps,
                                                     batch_size=batch_size, lr=lr, seed=10_007, accelerator=accelerator)  # fmt: skip
                        filtered = keep_confident(source, judge, arm.keep)
                    transform = classic_augmentation(shape, **{"seed": seed, **(classic_options or {})}) if arm.classic else None
                    if source is not None:
                        pool = filtered if filtered is not None else source
                        dataset: Any = SyntheticAugment(subset, pool, ratio=arm.ratio, mode=arm.mode, seed=seed, transform=transform)
                    else:
                        dataset = _Transformed(subset, transform) if transform is not None else subset
                    result = fit_and_test(dataset, seed)
                    if path is not None:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(json.dumps({"fingerprint": _fingerprint(key), "settings": key, "result": result}))
                runs.append({"size": size_label, "arm": arm.name, "seed": seed, "real_only": arm.is_real_only, **result})
                if log is not None:
                    log(f"  {size_label:>5} / class  {arm.name:<36} seed {seed}: {100 * result['accuracy']:.2f}%")

    report = DownstreamReport(list(real_train.class_names), len(real_test), settings, runs)
    if out is not None:
        out = Path(out)
        report.to_json(out / "downstream.json")
        (out / "downstream.md").write_text(report.to_markdown())
        try:
            report.plot(out / "downstream.png")
        except ImportError as err:
            if log is not None:
                log(f"  no plot: {err}")
        report.to_json(out / "downstream.json")  # with the figure's path
    return report
