"""Which samples pay on top of the strongest cheap baseline: the guidance scale chosen for utility on a
validation split, and a bank ten times larger (fresher mixup partners).

    python examples/fashion_mnist_low_data.py --families ddpm --sizes 60 --seeds 0 1 2 --stage generators --out runs/low60
    python benchmarks/sample_utility.py --generators runs/low60 --seeds 0 1 2 --stage banks --part 1/2 --threads 1
    python benchmarks/sample_utility.py --generators runs/low60 --seeds 0 1 2 --threads 1

For each seed: the low-data study's ddpm, trained on that seed's stratified subset (``--size`` images
per class; ``--generators`` is the study's ``--out``), samples a bank of ``--bank-per-class`` per class
at each classifier-free guidance scale of ``--guidance`` (1: conditional, the default; below 1 more
diverse, above 1 more typical of the class; 0 would be unconditional, samples of no particular class),
and one bank ``--fresh-factor`` times larger at guidance 1. Each bank serves as the mixup partners of
half of each batch on top of the strongest real-only baseline at 60 per class on the CNN (flips, shifts and
RandAugment with real mixup, ``BENCHMARKS.md``), whose arm with real copies as partners is also the control.

The guidance scale is chosen per seed, as a user would choose it: by accuracy on a validation split of
``--validation-per-class`` images per class drawn from the training images outside that seed's subset (more
labelled images than a user of a 60-per-class dataset has, so the choice is an optimistic one). The test
set is never used for the choice; every arm is also tested, so the table shows what the choice cost
against the best scale in hindsight.

Everything is cached (banks next to the generators, one JSON per classifier run under ``--cache``), so an
interrupted run resumes and the last call with all seeds prints the tables from the cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

import synthaug
from synthaug.bank import SyntheticBank
from synthaug.classifier import CLASSIFIERS, DEFAULT_STEPS
from synthaug.data import LabeledImages, load_fashion_mnist
from synthaug.evaluation import Arm, DownstreamReport, downstream, mean_interval, policy_arm, real_copies
from synthaug.evaluation.arms import POLICY_NAMES, mixed_arm


def bank_path(run: Path, guidance: float, factor: int) -> Path:
    """Where the bank of guidance ``guidance`` and ``factor`` times the base size lives (the study's own bank at 1, 1)."""
    if guidance == 1 and factor == 1:
        return run / "bank"
    return run / (f"bank-guidance-{guidance:g}" + (f"-x{factor}" if factor != 1 else ""))


def make_bank(run: Path, guidance: float, factor: int, per_class: int) -> SyntheticBank:
    """The bank (resumed if interrupted): seed 1 as the study's, so that the scales start from the same noise."""
    generator_dir = run / "generator"
    if not (generator_dir / "config.json").is_file():
        raise SystemExit(f"no generator at {generator_dir}: train it first with examples/fashion_mnist_low_data.py "
                         "--stage generators and the same --sizes, --seeds and --out")  # fmt: skip
    options = {} if guidance == 1 else {"guidance": guidance}
    return SyntheticBank.generate(synthaug.load(generator_dir), path=bank_path(run, guidance, factor),
                                  per_class=per_class * factor, seed=1, sample_options=options)  # fmt: skip


def validation_split(train: LabeledImages, size: int, seed: int, per_class: int) -> LabeledImages:
    """``per_class`` images of every class from the training images outside the seed's subset."""
    _, rest = train.split(size, seed=seed)
    return rest.subset(per_class, seed=10_000 + seed)


def guidance_arm(base: Arm, guidance: float, source: Any, factor: int = 1, *, against: str | None = None) -> Arm:
    """``base`` with half of each batch mixed up with samples of guidance ``guidance`` (from the bank ``factor``
    times the base size), compared with ``against`` (the real-copies control on the test set; none on validation)."""
    label = f"ddpm g{guidance:g}" + (f" x{factor}" if factor != 1 else "")
    return dataclasses.replace(mixed_arm(base, label, source, "mixup"), against=against)


def _pct(interval: tuple[float, float, float]) -> str:
    return f"{100 * interval[0]:.2f} [{100 * interval[1]:.2f}, {100 * interval[2]:.2f}]"


def _delta(interval: tuple[float, float, float]) -> str:
    return f"{100 * interval[0]:+.2f} [{100 * interval[1]:+.2f}, {100 * interval[2]:+.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generators", default="runs/fashion-mnist-low-data", help="the low-data study's --out")
    parser.add_argument("--size", type=int, default=60, help="real images per class")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--guidance", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    parser.add_argument("--fresh-factor", type=int, default=10, help="the larger bank's size over --bank-per-class (1: none)")
    parser.add_argument("--bank-per-class", type=int, default=1000)
    parser.add_argument("--validation-per-class", type=int, default=500)
    parser.add_argument("--base", default="RA", choices=list(POLICY_NAMES), help="the real-only policy under the mixup")
    parser.add_argument("--classifier", default="cnn", choices=CLASSIFIERS)
    parser.add_argument("--classifier-steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--stage", choices=["banks", "all"], default="all", help="banks: sample only")
    parser.add_argument("--part", default="1/1", help="K/N: with --stage banks, this process samples the K-th of N shares")
    parser.add_argument("--cache", default="runs/downstream-cache")
    parser.add_argument("--out", default="runs/benchmarks/sample-utility")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if 1.0 not in args.guidance:
        parser.error("--guidance must include 1 (the default scale, whose bank the larger one is compared with)")
    if args.fresh_factor < 1:
        parser.error(f"--fresh-factor must be >= 1, got {args.fresh_factor}")
    k, n = (int(x) for x in args.part.split("/"))
    if not 1 <= k <= n:
        parser.error(f"--part {args.part}: K must be between 1 and N")

    runs_dir = Path(args.generators) / "generators" / f"size-{args.size}"
    wanted = [(seed, g, 1) for seed in args.seeds for g in args.guidance]
    wanted += [(seed, 1.0, args.fresh_factor) for seed in args.seeds if args.fresh_factor > 1]
    banks: dict[tuple[int, float, int], SyntheticBank] = {}
    for index, (seed, g, factor) in enumerate(wanted):
        if args.stage == "banks" and index % n != k - 1:
            continue
        banks[seed, g, factor] = make_bank(runs_dir / f"seed-{seed}" / "ddpm", g, factor, args.bank_per_class)
    if args.stage == "banks":
        return

    train, test = load_fashion_mnist(split="train"), load_fashion_mnist(split="test")
    base = policy_arm(args.base)
    control = mixed_arm(base, "real copies", real_copies, "mixup", against="real")
    common = {"sizes": [args.size], "classifiers": (args.classifier,), "steps": args.classifier_steps, "cache_dir": args.cache}
    rows, test_runs, choices = [], [], {}
    for seed in args.seeds:
        by_scale = {g: guidance_arm(base, g, banks[seed, g, 1]) for g in args.guidance}
        validation = validation_split(train, args.size, seed, args.validation_per_class)
        val = downstream(train, validation, arms=list(by_scale.values()), seeds=[seed], **common)
        val_acc = {g: val.row(arm.name)["accuracy"][0] for g, arm in by_scale.items()}
        chosen = max(args.guidance, key=lambda g: (val_acc[g], g == 1))  # ties keep the default
        choices[seed] = chosen
        arms = [control, *(dataclasses.replace(arm, against=control.name) for arm in by_scale.values())]
        if args.fresh_factor > 1:
            arms.append(guidance_arm(base, 1.0, banks[seed, 1.0, args.fresh_factor], args.fresh_factor, against=control.name))
        result = downstream(train, test, arms=arms, seeds=[seed], **common)
        test_runs += result.runs
        picked = next(r for r in result.runs if r["arm"] == by_scale[chosen].name)
        test_runs.append({**picked, "arm": f"{base.name} + ddpm mixup, guidance chosen on validation", "against": control.name})
        rows.append({"seed": seed, "validation": {f"{g:g}": val_acc[g] for g in args.guidance}, "chosen": chosen,
                     "test": {r["arm"]: r["accuracy"] for r in result.runs}})  # fmt: skip

    report = DownstreamReport(list(train.class_names), len(test), {"seeds": args.seeds, "steps": args.classifier_steps,
                                                                   "batch_size": 64, "subset_seed": None}, test_runs)  # fmt: skip
    out = Path(args.out)
    report.save(out)
    lines = [f"Validation accuracy (%, {args.validation_per_class}/class outside each subset) and the chosen scale", "",
             "| seed | " + " | ".join(f"g{g:g}" for g in args.guidance) + " | chosen |",
             "|---:|" + "---:|" * (len(args.guidance) + 1)]  # fmt: skip
    for row in rows:
        cells = " | ".join(f"{100 * row['validation'][f'{g:g}']:.2f}" for g in args.guidance)
        lines.append(f"| {row['seed']} | {cells} | {row['chosen']:g} |")
    strongest = control.name
    fixed = guidance_arm(base, 1.0, real_copies).name  # only its name
    lines += ["", f"Test accuracy (%, {len(test):,} images), mean over seeds {args.seeds} [95% CI], and paired differences", "",
              f"| arm | accuracy | vs {strongest} (control, strongest baseline) | vs {fixed} |", "|---|---:|---:|---:|"]  # fmt: skip
    for name in dict.fromkeys(r["arm"] for r in test_runs):
        accuracy = mean_interval([r["accuracy"] for r in test_runs if r["arm"] == name])
        cells = [_delta(report.compare(name, other, size=args.size, classifier=args.classifier)["accuracy"])
                 if name not in (other, "real") else "" for other in (strongest, fixed)]  # fmt: skip
        lines.append(f"| {name} | {_pct(accuracy)} | {cells[0]} | {cells[1]} |")
    table = "\n".join(lines) + "\n"
    (out / "sample_utility.md").write_text(table)
    (out / "sample_utility.json").write_text(json.dumps({"rows": rows, "choices": choices, "args": vars(args)}, indent=1))
    print(table)
    print(f"written: {out / 'sample_utility.md'}, {out / 'downstream.json'}")


if __name__ == "__main__":
    main()
