"""The result of a downstream study: per-run scores, their summary, and Markdown, JSON and a plot."""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthaug.evaluation.stats import METRICS, mean_interval

LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced acc.", "macro_f1": "macro-F1"}


def _metric_names(runs: list[dict[str, Any]]) -> list[str]:
    groups = dict.fromkeys(k for r in runs for k in r if k.startswith("group:"))
    return [*METRICS, *groups]


@dataclass
class DownstreamReport:
    """Per-run scores (``runs``) and their summary per size, classifier and arm (``summary``).

    Each summary row has, for every metric, the mean over seeds with its 95% t-interval, and the
    paired difference (same seed) to the real-only arm and to the arm's ``against`` arm, with theirs.
    """

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
        metrics = _metric_names(self.runs)
        for size in dict.fromkeys(r["size"] for r in self.runs):
            for classifier in dict.fromkeys(r.get("classifier", "") for r in self.runs):
                group = [r for r in self.runs if r["size"] == size and r.get("classifier", "") == classifier]
                by_arm = {arm: {r["seed"]: r for r in group if r["arm"] == arm} for arm in dict.fromkeys(r["arm"] for r in group)}
                real = next((runs for runs in by_arm.values() if next(iter(runs.values()))["real_only"]), {})
                for arm, runs in by_arm.items():
                    first = next(iter(runs.values()))
                    row: dict[str, Any] = {"size": size, "classifier": classifier, "arm": arm, "seeds": sorted(runs),
                                           "against": first.get("against")}  # fmt: skip
                    for metric in metrics:
                        row[metric] = mean_interval([r[metric] for r in runs.values()])
                    if not first["real_only"] and real:
                        row["vs_real"] = _paired(runs, real, metrics)
                        row["per_class_vs_real"] = _per_class(runs, real)
                    if first.get("against") in by_arm:
                        row["vs_against"] = _paired(runs, by_arm[first["against"]], metrics)
                    rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    def save(self, out: str | os.PathLike) -> Path:
        """Write ``downstream.json``, ``downstream.md`` and, with matplotlib, ``downstream.png`` to ``out``."""
        out = Path(out)
        self.to_json(out / "downstream.json")
        (out / "downstream.md").write_text(self.to_markdown())
        try:
            self.plot(out / "downstream.png")
        except ImportError as err:
            logging.getLogger(__name__).info("no plot: %s", err)
        self.to_json(out / "downstream.json")  # with the figure's path
        return out

    def row(self, arm: str, *, size: int | None = None, classifier: str | None = None) -> dict[str, Any]:
        """The summary row of ``arm`` (at ``size`` and for ``classifier`` when there are several)."""
        for r in self.summary:
            if r["arm"] == arm and size in (None, r["size"]) and classifier in (None, r["classifier"]):
                return r
        raise KeyError(f"no summary row for arm {arm!r} (size {size}, classifier {classifier})")

    def compare(
        self, arm: str, other: str, *, size: int | None = None, classifier: str | None = None
    ) -> dict[str, Any]:
        """The paired difference (same seed) of ``arm`` minus ``other`` for every metric, as ``(mean, low, high)``
        with its 95% t-interval, and the seeds both have under ``"seeds"``; e.g. a technique against its control."""
        metrics = _metric_names(self.runs)

        def by_seed(name: str) -> dict[int, dict[str, Any]]:
            runs = [r for r in self.runs if r["arm"] == name and size in (None, r["size"])
                    and classifier in (None, r.get("classifier", ""))]  # fmt: skip
            if not runs:
                raise KeyError(f"no runs of arm {name!r} (size {size}, classifier {classifier})")
            if len({(r["size"], r.get("classifier", "")) for r in runs}) > 1:
                raise ValueError(f"arm {name!r} has runs at several sizes or classifiers: pass size= and classifier=")
            return {r["seed"]: r for r in runs}

        runs, reference = by_seed(arm), by_seed(other)
        if not set(runs) & set(reference):
            raise ValueError(f"arms {arm!r} and {other!r} share no seed")
        return _paired(runs, reference, metrics)

    def to_markdown(self) -> str:
        s = self.settings
        seeds = s.get("seeds")
        lines = [
            f"Scores (%) on {self.test_size:,} held-out images: mean over seeds {seeds} with the 95% t-interval. "
            f"Δ: paired difference (same seed: same real subset, initialisation and batch order) to real only, and "
            f"to the arm named under 'vs'. {s.get('steps')} steps, batch {s.get('batch_size')}"
            + (", a fresh stratified subset per seed." if s.get("subset_seed") is None else f", one subset (seed {s.get('subset_seed')}).")
        ]
        metrics = _metric_names(self.runs)
        for classifier in dict.fromkeys(r["classifier"] for r in self.summary):
            rows = [r for r in self.summary if r["classifier"] == classifier]
            lines += ["", f"**{classifier}**", "",
                      "| real / class | arm | accuracy | Δ vs real [95% CI] | vs | Δ [95% CI] |",
                      "|---:|---|---:|---:|---|---:|"]  # fmt: skip
            for r in rows:
                vs_real = _delta(r.get("vs_real", {}).get("accuracy"))
                vs = _delta(r.get("vs_against", {}).get("accuracy")) if "vs_against" in r else ""
                lines.append(f"| {r['size']} | {r['arm']} | {_pct(r['accuracy'])} | {vs_real} | {r['against'] or ''} | {vs} |")
            others = [m for m in metrics if m != "accuracy"]
            lines += ["", "| real / class | arm | " + " | ".join(f"{_label(m)} | Δ vs real" for m in others) + " |",
                      "|---:|---|" + "---:|---:|" * len(others)]  # fmt: skip
            for r in rows:
                cells = [f"{_pct(r[m])} | {_delta(r.get('vs_real', {}).get(m))}" for m in others]
                lines.append(f"| {r['size']} | {r['arm']} | " + " | ".join(cells) + " |")
        deltas = [r for r in self.summary if "per_class_vs_real" in r]
        if deltas:
            lines += ["", "Per-class accuracy Δ vs real only (points, mean over seeds):", "",
                      "| real / class | classifier | arm | " + " | ".join(self.class_names) + " |",
                      "|---:|---|---|" + "---:|" * len(self.class_names)]  # fmt: skip
            for r in deltas:
                cells = " | ".join("n/a" if math.isnan(v) else f"{100 * v:+.1f}" for v in r["per_class_vs_real"])
                lines.append(f"| {r['size']} | {r['classifier']} | {r['arm']} | {cells} |")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | os.PathLike) -> Path:
        """Δ accuracy vs real only with 95% intervals, one bar per arm, one panel per size and classifier
        (needs matplotlib)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ImportError("plotting needs matplotlib: pip install 'synthaug[plot]'") from err
        panels = list(dict.fromkeys((r["size"], r["classifier"]) for r in self.summary))
        arms = list(dict.fromkeys(r["arm"] for r in self.summary if "vs_real" in r))
        fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels) + 2, 0.32 * len(arms) + 1.6), sharey=True, squeeze=False)
        for ax, (size, classifier) in zip(axes[0], panels):
            rows = {r["arm"]: r for r in self.summary if r["size"] == size and r["classifier"] == classifier and "vs_real" in r}
            y = np.arange(len(arms))
            mean = [100 * rows[a]["vs_real"]["accuracy"][0] if a in rows else np.nan for a in arms]
            low = [100 * rows[a]["vs_real"]["accuracy"][1] if a in rows else np.nan for a in arms]
            high = [100 * rows[a]["vs_real"]["accuracy"][2] if a in rows else np.nan for a in arms]
            err = np.nan_to_num([np.subtract(mean, low), np.subtract(high, mean)])
            colours = ["tab:green" if lo > 0 else "tab:red" if hi < 0 else "tab:gray" for lo, hi in zip(low, high)]
            ax.barh(y, mean, xerr=err, color=colours, capsize=2)
            ax.axvline(0, color="black", linewidth=0.8)
            ax.set_title(f"{size} real / class, {classifier}", fontsize=9)
            ax.set_xlabel("Δ accuracy vs real only (points)")
            ax.grid(axis="x", alpha=0.3)
        axes[0][0].set_yticks(np.arange(len(arms)), arms, fontsize=7)
        axes[0][0].invert_yaxis()
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        self.figures["plot"] = str(path)
        return path


def _paired(runs: dict[int, dict[str, Any]], reference: dict[int, dict[str, Any]], metrics: list[str]) -> dict[str, Any]:
    seeds = sorted(set(runs) & set(reference))
    return {m: mean_interval([runs[s][m] - reference[s][m] for s in seeds]) for m in metrics} | {"seeds": seeds}


def _per_class(runs: dict[int, dict[str, Any]], reference: dict[int, dict[str, Any]]) -> list[float]:
    seeds = sorted(set(runs) & set(reference))
    return [float(v) for v in np.mean([np.subtract(runs[s]["per_class"], reference[s]["per_class"]) for s in seeds], axis=0)]


def _label(metric: str) -> str:
    return LABELS.get(metric, metric.removeprefix("group:") + " acc.")


def _pct(value: tuple[float, float, float]) -> str:
    mean, low, high = value
    if math.isnan(low):
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} [{100 * low:.2f}, {100 * high:.2f}]"


def _delta(value: tuple[float, float, float] | None) -> str:
    if value is None:
        return ""
    mean, low, high = value
    if math.isnan(low):
        return f"{100 * mean:+.2f}"
    return f"{100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"
