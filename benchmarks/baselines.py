"""The strongest cheap baseline on Fashion-MNIST: which real-only recipe must synthetic data beat?

    python benchmarks/baselines.py                                   # the grid, label smoothing, the curve
    python benchmarks/baselines.py --classifiers cnn --sizes 60 --seeds 0 1 2 --threads 1

For each size (real images per class), seed (its own stratified subset) and yardstick classifier,
trains on every arm of :func:`synthaug.evaluation.baseline_arms` — flips and shifts ("classic"),
plus TrivialAugment ("TA") or RandAugment ("RA"), each with no mixing, mixup or CutMix of half of
each batch with other real images — and real only; tests on the full 10,000-image test set. Then,
per (size, classifier), the winner (highest mean accuracy) gets label smoothing 0.1, and the winner
and real + classic are retrained at ``--curve-steps`` to show whether the recipe's length is enough
for the stronger augmentation. Every run is cached (``--cache``, shared with the other studies), so
a rerun computes only what is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from synthaug.classifier import CLASSIFIERS, DEFAULT_STEPS
from synthaug.data import load_fashion_mnist
from synthaug.evaluation import Arm, DownstreamReport, baseline_arms, downstream


def winner(report: DownstreamReport, size: int, classifier: str, arms: list[Arm]) -> Arm:
    """The arm of ``arms`` with the highest mean accuracy at (size, classifier)."""
    means = {r["arm"]: r["accuracy"][0] for r in report.summary if r["size"] == size and r["classifier"] == classifier}
    return max((arm for arm in arms if arm.name in means), key=lambda arm: means[arm.name])


def smoothed(arm: Arm, amount: float) -> Arm:
    return dataclasses.replace(arm, name=f"{arm.name} + LS {amount:g}", label_smoothing=amount, against=arm.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[60, 10], help="real images per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--classifiers", nargs="+", default=list(CLASSIFIERS), choices=CLASSIFIERS)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="classifier steps (batch 64)")
    parser.add_argument("--label-smoothing", type=float, default=0.1, help="tried on each winner (0: skip)")
    parser.add_argument("--curve-steps", nargs="*", type=int, default=[1500, 6000],
                        help="other lengths for the winner and real + classic (none: skip)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", default="runs/downstream-cache")
    parser.add_argument("--out", default="runs/baselines")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, test = load_fashion_mnist(split="train"), load_fashion_mnist(split="test")
    grid = baseline_arms()
    common = {"seeds": args.seeds, "cache_dir": args.cache}
    runs, lines = [], []
    for classifier in args.classifiers:
        for size in args.sizes:
            report = downstream(train, test, arms=grid, sizes=[size], classifiers=(classifier,), steps=args.steps, **common)
            runs += report.runs
            # compared with real + classic in the follow-up studies, which hold no other base arm
            best = dataclasses.replace(winner(report, size, classifier, grid), against="real + classic")
            lines.append(f"{size}/class {classifier}: strongest real-only arm: {best.name}")
            extra = [Arm("real + classic", classic=True), best]
            if args.label_smoothing:
                extra.append(smoothed(best, args.label_smoothing))
            extra_report = downstream(train, test, arms=extra, sizes=[size], classifiers=(classifier,), steps=args.steps, **common)
            runs += [r for r in extra_report.runs if r["arm"] not in {arm.name for arm in grid} | {"real"}]
            for steps in args.curve_steps:
                curve = downstream(train, test, arms=[Arm("real + classic", classic=True), best], sizes=[size],
                                   classifiers=(classifier,), steps=steps, **common)  # fmt: skip
                for run in curve.runs:
                    runs.append({**run, "arm": f"{run['arm']} @ {steps} steps", "real_only": False, "against": None})
    out = Path(args.out)
    settings = {"seeds": args.seeds, "steps": args.steps, "batch_size": 64, "subset_seed": None}
    report = DownstreamReport(list(train.class_names), len(test), settings, runs)
    report.save(out)
    print(report.to_markdown())
    print("\n".join(lines))
    print(f"written: {out / 'downstream.md'}, {out / 'downstream.json'}")


if __name__ == "__main__":
    main()
