"""The Fashion-MNIST low-data study: does synthaug's synthetic data make a better classifier?

    python examples/fashion_mnist_low_data.py                  # everything missing, then the table and plot
    python examples/fashion_mnist_low_data.py --sizes 60 --families ddpm --seeds 0 1 2

For each size (real images per class, a stratified subset with seed 0 of the 60,000 training
images), each generator family is trained with its defaults on exactly those images (at most
``--budget-minutes`` of wall time), a bank of ``--bank-per-class`` samples per class is drawn, and
``synthaug.evaluation.downstream`` trains the same small CNN on every arm: real only; real +
classic augmentation; real + each bank at ratios 0.25 / 0.5 / 1.0; real + classic + each bank;
and the filtered variant for ``--keep-families`` (keep the half of each class that a classifier
trained on the real subset finds most convincing). Every run is tested on the full 10,000-image test set.

All of it is cached under ``--out`` (generators with their checkpoints, banks, one JSON per run),
so an interrupted study resumes and a rerun computes only what is missing. The generators are
shared with ``benchmarks/generator_quality.py`` (same directory layout, same training call).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import synthaug
from synthaug.bank import SyntheticBank
from synthaug.data import load_fashion_mnist
from synthaug.evaluation import Arm, downstream, standard_arms


def trained_generator(family: str, subset, run: Path, budget_minutes: float):
    """``family`` trained on ``subset`` with its defaults; resumed from its last checkpoint if interrupted."""
    if not (run / "generator" / "config.json").is_file():
        last = run / "checkpoints" / "last.ckpt"
        synthaug.fit(subset, family, out=run, seed=0, progress_bar=False, ckpt_path=last if last.exists() else None,
                     trainer_kwargs={"max_time": {"minutes": budget_minutes}})  # fmt: skip
    return synthaug.load(run / "generator")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 60], help="real images per class")
    parser.add_argument("--families", nargs="*", default=["vae", "gan", "ddpm"])
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000, help="classifier steps (batch 64), the same for every arm")
    parser.add_argument("--keep", type=float, default=0.5, help="share kept by the confidence filter (0 to skip)")
    parser.add_argument("--keep-families", nargs="*", default=["ddpm"], help="families that get a filtered arm too")
    parser.add_argument("--budget-minutes", type=float, default=30.0, help="wall-time cap of each generator's training")
    parser.add_argument("--bank-per-class", type=int, default=1000)
    parser.add_argument("--generators", default="runs/benchmarks/generator_quality", help="where generators are trained")
    parser.add_argument("--out", default="runs/fashion-mnist-low-data")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    train, test = load_fashion_mnist(split="train"), load_fashion_mnist(split="test")
    banks: dict[str, dict[int, SyntheticBank]] = {family: {} for family in args.families}
    for size in args.sizes:
        subset = train.subset(size, seed=0)
        for family in args.families:
            run = Path(args.generators) / f"fashion-mnist-{size}" / family
            generator = trained_generator(family, subset, run, args.budget_minutes)
            banks[family][size] = SyntheticBank.generate(generator, path=run / "bank", per_class=args.bank_per_class, seed=1)

    arms = standard_arms(banks, ratios=args.ratios)
    if args.keep:
        arms += [Arm(f"real + {family} 0.5 kept {args.keep:g}", per_size, ratio=0.5, keep=args.keep)
                 for family, per_size in banks.items() if family in args.keep_families]  # fmt: skip
    out = Path(args.out)
    report = downstream(train, test, arms=arms, sizes=args.sizes, seeds=args.seeds, steps=args.steps,
                        cache_dir=out / "cache", out=out)  # fmt: skip
    print()
    print(report.to_markdown())
    print(f"written: {out / 'downstream.md'}, {out / 'downstream.json'}, {out / 'downstream.png'}")


if __name__ == "__main__":
    main()
