"""Does ``synthaug recommend`` pick well? Regret at 60 images per class, and an honest "no" at 600.

    python benchmarks/recommend.py --part regret --seeds 0 1 2 3 4 --budget 60 --threads 2
    python benchmarks/recommend.py --part honest --sizes 600 --seeds 0 --budget 60 --threads 2
    python benchmarks/recommend.py --part regret --seeds 0 --budget 60 --tables runs/fashion-mnist-low-data/downstream.json runs/baselines/downstream.json

For each size and seed: the seed's own stratified subset of the Fashion-MNIST training set (the
same subset as the low-data study's and the baselines study's), on which :func:`synthaug.recommend`
runs with ``--budget`` minutes (validation folds of the subset only; the test set is never seen).
Then the recommended recipe and the race's best baseline are trained on the whole subset with the
yardstick recipe (``--classifier-steps``, the studies' length, so runs the studies cached are reused)
and tested on the 10,000 test images. Each seed's result is kept (``row.json`` in its folder), so seeds
may run in separate processes into one ``--out`` and a last call with all of them prints the table.
Reported per seed:

* the recommendation, its validation gain [95% interval] and the race's wall time (goal: <= 60 min);
* its test accuracy, the best baseline's, and the test gain (the honest-no goal at 600 per class:
  the recommendation is a baseline, or its test gain is >= 0);
* regret: the best test accuracy of any arm in ``--tables`` (the studies' ``downstream.json``) for
  that seed's subset, minus the recommendation's (goal: <= 0.5 points on average, and the test gain
  never below 0 by more than its interval).

The recommendation is evaluated as a user would use it: the recipe's bank (from a generator trained on
the first fold's training part within the budget), not the studies' generators.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

import synthaug
from synthaug.classifier import DEFAULT_STEPS
from synthaug.data import load_fashion_mnist
from synthaug.evaluation import Arm, baseline_arms, downstream, mean_interval, real_copies
from synthaug.recipe import Recipe, load_recipe


def recipe_arm(recipe: Recipe, name: str | None = None) -> Arm:
    """The evaluation arm a recipe describes (its bank by path, real copies, or no source)."""
    options = {k: v for k, v in recipe.arm.items() if k != "source"}
    source: Any = {"bank": str(recipe.bank) if recipe.bank else None, "real": real_copies, None: None}[recipe.arm["source"]]
    return Arm(name or recipe.name, source, **options)


def best_in_tables(paths: list[str], size: int, seed: int, classifier: str = "cnn") -> tuple[str, float] | None:
    """The arm with the best test accuracy for (size, seed, classifier) across the studies' ``downstream.json``."""
    best = None
    for path in paths:
        if not Path(path).is_file():
            print(f"(no table at {path})")
            continue
        for run in json.loads(Path(path).read_text())["runs"]:
            if run["size"] == size and run["seed"] == seed and run.get("classifier", classifier) == classifier:
                if best is None or run["accuracy"] > best[1]:
                    best = (run["arm"], run["accuracy"])
    return best


def with_regret(row: dict[str, Any], tables: list[str]) -> dict[str, Any]:
    """``row`` with the best arm of ``tables`` for its subset and its regret: how far its test accuracy lies below it."""
    best = best_in_tables(tables, row["size"], row["seed"])
    row["best_in_tables"], row["best_test"] = best if best else (None, None)
    row["regret"] = 100 * (max(row["best_test"], row["test"]) - row["test"]) if best else None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["regret", "honest"], default="regret", help="names the output folder only")
    parser.add_argument("--sizes", nargs="+", type=int, default=None, help="real images per class (regret: 60, honest: 600)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=float, default=60.0, help="minutes per recommendation")
    parser.add_argument("--families", nargs="+", default=["ddpm"])
    parser.add_argument("--rule", choices=["interval", "mean"], default="interval")
    parser.add_argument("--splits", type=int, default=3, help="validation folds (each trains its own generator)")
    parser.add_argument("--eta", type=int, default=3, help="successive halving keeps 1/eta a rung")
    parser.add_argument("--min-rung-share", type=float, default=None,
                        help="the shortest rung's share of the last rung's steps (default: the library's, 1/3)")
    parser.add_argument("--bases", nargs="+", default=["classic", "TA"], help="baselines synthetic samples are added to")
    parser.add_argument("--guidance", nargs="+", type=float, default=None,
                        help="race the ddpm's samples at these guidance scales (default: its own scale only)")
    parser.add_argument("--classifier-steps", type=int, default=DEFAULT_STEPS, help="steps of the test-set runs")
    parser.add_argument("--tables", nargs="*", default=["runs/fashion-mnist-low-data/downstream.json", "runs/baselines/downstream.json"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", default="runs/downstream-cache")
    parser.add_argument("--out", default=None, help="default: runs/recommend-<part>")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.sizes or ([60] if args.part == "regret" else [600])
    out = Path(args.out or f"runs/recommend-{args.part}")
    train, test = load_fashion_mnist(split="train"), load_fashion_mnist(split="test")
    rows = []
    for size in sizes:
        for seed in args.seeds:
            folder = out / f"size-{size}" / f"seed-{seed}"
            if (folder / "row.json").is_file():  # done before (another process may run other seeds into the same --out)
                # regret is taken against the tables as they are now: a study table may be completed after the race
                rows.append(with_regret(json.loads((folder / "row.json").read_text()), args.tables))
                continue
            subset = train.subset(size, seed=seed)
            started = time.perf_counter()
            extra = {} if args.min_rung_share is None else {"min_rung_share": args.min_rung_share}
            report = synthaug.recommend(subset, budget_minutes=args.budget, families=args.families, seed=seed, rule=args.rule,
                                        splits=args.splits, eta=args.eta, bases=args.bases, guidance=args.guidance, out=folder,
                                        **extra)  # fmt: skip
            minutes = (time.perf_counter() - started) / 60
            recipe = load_recipe(report.recipe)
            chosen = recipe_arm(recipe, f"recommended: {recipe.name}")
            baseline_arm = dataclasses.replace({arm.name: arm for arm in baseline_arms()}[report.baseline], against=None)
            mine = report.row(recipe.name)
            arms = [chosen, baseline_arm] if recipe.name != report.baseline else [baseline_arm]
            tested = downstream(train, test, arms=arms, sizes=[size], seeds=[seed], classifiers=("cnn",),
                                steps=args.classifier_steps, classic_options=recipe.classic_options, cache_dir=args.cache)  # fmt: skip
            accuracy = {r["arm"]: r["accuracy"] for r in tested.runs}
            accuracy.setdefault(chosen.name, accuracy[baseline_arm.name])
            row = {"size": size, "seed": seed, "recommended": recipe.name, "synthetic": recipe.is_synthetic,
                   "validation_gain": [mine["gain"], mine["low"], mine["high"]],
                   "minutes": minutes, "baseline": report.baseline, "test": accuracy[chosen.name],
                   "baseline_test": accuracy[baseline_arm.name], "verdict": report.verdict}  # fmt: skip
            row["test_gain"] = 100 * (row["test"] - row["baseline_test"])
            row = with_regret(row, args.tables)
            (folder / "row.json").write_text(json.dumps(row, indent=2, default=str))
            rows.append(row)
            print(f"size {size} seed {seed}: {report.verdict} ({minutes:.1f} min); test {100 * row['test']:.2f}% vs "
                  f"baseline {100 * row['baseline_test']:.2f}% ({row['test_gain']:+.2f}); regret "
                  f"{row['regret'] if row['regret'] is None else round(row['regret'], 2)}")  # fmt: skip
    lines = ["| size | seed | recommended | validation gain [95% CI] | min | test | best baseline's test | test gain | "
             "best in the studies | regret |", "|---:|---:|---|---:|---:|---:|---:|---:|---|---:|"]  # fmt: skip
    for r in rows:
        gain, low, high = r["validation_gain"]
        interval = f"{gain:+.2f}" + (f" [{low:+.2f}, {high:+.2f}]" if low == low else "")
        best = f"{r['best_in_tables']} {100 * r['best_test']:.2f}%" if r["best_test"] is not None else "-"
        regret = f"{r['regret']:.2f}" if r["regret"] is not None else "-"
        lines.append(f"| {r['size']} | {r['seed']} | {r['recommended']} | {interval} | {r['minutes']:.0f} | "
                     f"{100 * r['test']:.2f}% | {100 * r['baseline_test']:.2f}% | {r['test_gain']:+.2f} | {best} | {regret} |")  # fmt: skip
    for size in sizes:
        mine = [r for r in rows if r["size"] == size]
        gains = mean_interval([r["test_gain"] for r in mine])
        regrets = [r["regret"] for r in mine if r["regret"] is not None]
        regret = f"mean regret {sum(regrets) / len(regrets):.2f} points" if regrets else "no study table to take regret against"
        lines.append(f"\nsize {size}: test gain of the recommendation over the race's best baseline "
                     f"{gains[0]:+.2f} [{gains[1]:+.2f}, {gains[2]:+.2f}] points over {len(mine)} seeds; {regret}")  # fmt: skip
        honest = all(not r["synthetic"] or r["test_gain"] >= 0 for r in mine)
        lines.append(f"size {size}: honest no (a baseline, or a synthetic recipe with test gain >= 0): {'yes' if honest else 'no'}; "
                     f"longest race {max(r['minutes'] for r in mine):.1f} min")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "recommend.json").write_text(json.dumps(rows, indent=2, default=str))
    (out / "recommend.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
