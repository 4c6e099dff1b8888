"""What ``recommend`` found: every candidate's validation gain over the best baseline, paired by unit, and the verdict."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from synthaug.evaluation.stats import mean_interval
from synthaug.io import atomic_write

Rule = Literal["interval", "mean"]


@dataclass
class RecommendReport:
    """The race's outcome.

    ``rows``: one per candidate, best first: ``name``, ``synthetic``, ``rung`` (the last it ran),
    ``steps``, ``units``, ``accuracy`` (mean validation accuracy there) and ``gain``, ``low``, ``high``
    (points over the best baseline at that rung, paired by unit; a 95% t-interval, ``nan`` from one unit).
    ``recommended`` is the candidate to use, ``baseline`` the best real-only one.
    """

    rows: list[dict[str, Any]]
    baseline: str
    recommended: str
    synthetic_helps: bool
    verdict: str
    seconds: float
    complete: bool = True
    plan: dict[str, Any] = field(default_factory=dict)
    recipe: str | None = None

    def row(self, name: str) -> dict[str, Any]:
        for row in self.rows:
            if row["name"] == name:
                return row
        raise KeyError(f"no candidate {name!r}; the candidates are {[r['name'] for r in self.rows]}")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str).replace("NaN", "null"))

    def to_markdown(self) -> str:
        status = "" if self.complete else " (partial: interrupted; rerun the same command to resume)"
        lines = [f"**{self.verdict}**{status}", "",
                 f"Validation accuracy and gain over the best baseline ({self.baseline}), points, paired by split "
                 f"and seed [95% interval]; {self.seconds / 60:.1f} min.", "",
                 "| candidate | kind | rung | steps | runs | accuracy | gain [95% CI] |", "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for row in self.rows:
            kind = "synthetic" if row["synthetic"] else "baseline"
            lines.append(f"| {row['name']} | {kind} | {row['rung'] + 1} | {row['steps']} | {row['units']} | "
                         f"{100 * row['accuracy']:.2f}% | {_gain(row)} |")  # fmt: skip
        return "\n".join(lines) + "\n"

    def save(self, out: str | os.PathLike) -> Path:
        """Writes ``report.json`` and ``report.md`` under ``out`` (each atomically); returns the Markdown's path."""
        out = Path(out)
        _write(out / "report.json", json.dumps(self.to_dict(), indent=2) + "\n")
        return _write(out / "report.md", self.to_markdown())


def _gain(row: Mapping[str, Any]) -> str:
    if row.get("gain") is None:
        return ""
    if row.get("low") is None or math.isnan(row["low"]):
        return f"{row['gain']:+.2f}"
    return f"{row['gain']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode())
    return path


def summarise(
    rungs: Sequence[Mapping[str, Sequence[float]]],
    plan_steps: Sequence[int],
    synthetic: Sequence[str],
    baselines: Sequence[str],
) -> tuple[list[dict[str, Any]], str]:
    """Rows (best first: last rung reached, then accuracy) and the best baseline, from each rung's per-unit accuracies."""
    last_rung = len(rungs) - 1
    final = rungs[last_rung]
    baseline = max((name for name in final if name in baselines), key=lambda n: _mean(final[n]))
    rows = []
    for name in rungs[0]:
        rung = max(r for r, results in enumerate(rungs) if name in results)
        mine, reference = rungs[rung][name], rungs[rung][baseline]
        diffs = [100 * (a - b) for a, b in zip(mine, reference)]
        gain, low, high = mean_interval(diffs)
        rows.append({"name": name, "synthetic": name in synthetic, "rung": rung, "steps": plan_steps[rung],
                     "units": len(mine), "accuracy": _mean(mine), "accuracies": list(mine),
                     "gain": gain, "low": low, "high": high})  # fmt: skip
    rows.sort(key=lambda row: (-row["rung"], -row["accuracy"]))
    return rows, baseline


def verdict(rows: Sequence[Mapping[str, Any]], baseline: str, rule: Rule = "interval") -> tuple[str, bool, str]:
    """``(recommended, synthetic helps, the verdict line)``.

    A synthetic candidate is recommended when it is the best at the last rung and its gain over the best
    baseline is above 0: its whole interval with ``rule="interval"`` (the default), its mean with ``"mean"``.
    """
    top = max(row["rung"] for row in rows)
    finalists = [row for row in rows if row["rung"] == top]
    best = max(finalists, key=lambda row: row["accuracy"])
    base = next(row for row in rows if row["name"] == baseline)
    at = f"{100 * base['accuracy']:.2f}% validation accuracy"
    if best["synthetic"]:
        low = best["low"] if best["low"] is not None and not math.isnan(best["low"]) else -math.inf
        if (low if rule == "interval" else best["gain"]) > 0:
            return best["name"], True, f"use recipe {best['name']!r} (expected {_gain(best)} points over {baseline!r})"
        why = "an interval that includes 0" if low > -math.inf else "from one validation run, so no interval (use more splits or repeats)"
        return baseline, False, (f"synthetic data does not clearly help here: use baseline {baseline!r} ({at}); the best "
                                 f"synthetic recipe, {best['name']!r}, gained {_gain(best)} points, {why}")  # fmt: skip
    return baseline, False, f"synthetic data does not help here: use baseline {baseline!r} ({at})"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
