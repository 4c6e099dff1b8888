"""DataLoader speed of SyntheticAugment (bank source) against the plain dataset, side by side.

    python benchmarks/augment_speed.py            # about 3 minutes on 2 CPU cores

For digits and (when installed) Fashion-MNIST: iterate a DataLoader over the plain dataset and over
SyntheticAugment(dataset, bank, ratio=0.5), with 0 and 2 workers, alternating the two in each of
--repeats rounds; report the median time per item of each and the median of the per-round ratios.
Then the live-generator throughput of the VAE (items/s through SyntheticAugment with no bank).

The generator behind each bank is a VAE trained for --generator-steps on a 60-per-class subset and
cached under --cache with its bank, so a rerun only measures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import synthaug
from synthaug import SyntheticAugment, SyntheticBank
from synthaug.data import load_digits, load_fashion_mnist
from synthaug.data.samplers import EpochShuffleSampler


def seconds_per_item(dataset, sampler, workers: int, batch_size: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
    start, items = time.perf_counter(), 0
    for _, labels in loader:
        items += len(labels)
    return (time.perf_counter() - start) / items


def generator_and_bank(name: str, data, cache: Path, steps: int):
    run = cache / name
    if (run / "generator" / "config.json").is_file():
        generator = synthaug.load(run / "generator")
    else:
        generator = synthaug.fit(data.subset(60, seed=0), "vae", out=run, max_steps=steps, enable_progress_bar=False, logger=False)
    return generator, SyntheticBank.generate(generator, path=run / "bank", per_class=1000, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="runs/benchmarks/augment_speed")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--generator-steps", type=int, default=300)
    parser.add_argument("--live", metavar="GENERATOR", help="also time training with live samples from this saved ddpm")
    parser.add_argument("--live-steps", type=int, default=200, help="classifier steps per live-sampling run")
    args = parser.parse_args()

    datasets = {"digits": load_digits()}
    try:
        datasets["fashion-mnist"] = load_fashion_mnist()
    except FileNotFoundError as err:
        print(f"skipping Fashion-MNIST: {err}")

    rows, live = [], []
    for name, data in datasets.items():
        generator, bank = generator_and_bank(name, data, Path(args.cache), args.generator_steps)
        augmented = SyntheticAugment(data, bank, ratio=0.5, seed=0)
        for workers in (0, 2):
            plain_times, aug_times, ratios = [], [], []
            for _ in range(args.repeats):
                plain = seconds_per_item(data, EpochShuffleSampler(len(data), seed=0), workers, args.batch_size)
                mixed = seconds_per_item(augmented, augmented.sampler(seed=0), workers, args.batch_size)
                plain_times.append(plain)
                aug_times.append(mixed)
                ratios.append(mixed / plain)
            rows.append((name, len(data), workers, statistics.median(plain_times), statistics.median(aug_times),
                         statistics.median(ratios), min(ratios), max(ratios)))  # fmt: skip
        few = data.subset(20, seed=0)
        live_aug = SyntheticAugment(few, generator, ratio=4.0, seed=0)  # 80% of the items sampled live
        synthetic = int(live_aug.synthetic_mask().sum())
        start = time.perf_counter()
        for _ in DataLoader(live_aug, batch_size=64, sampler=live_aug.sampler(seed=0)):
            pass
        live.append((name, synthetic, synthetic / (time.perf_counter() - start)))

    print(f"\nDataLoader over SyntheticAugment(ratio=0.5, append, bank) vs the plain dataset; batch {args.batch_size}, "
          f"median of {args.repeats} alternating rounds, torch {torch.__version__}, {torch.get_num_threads()} threads\n")  # fmt: skip
    print("| dataset | items | workers | plain µs/item | augmented µs/item | ratio (median) | ratio (min–max) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, workers, plain, mixed, ratio, low, high in rows:
        print(f"| {name} | {n} | {workers} | {plain * 1e6:.2f} | {mixed * 1e6:.2f} | {ratio:.2f} | {low:.2f}–{high:.2f} |")
    print("\nLive VAE source (no bank), SyntheticAugment items through a DataLoader, 0 workers:\n")
    print("| dataset | synthetic items | synthetic items/s |")
    print("| --- | ---: | ---: |")
    for name, count, rate in live:
        print(f"| {name} | {count} | {rate:.0f} |")
    if args.live:
        live_training(args)


def live_training(args) -> None:
    """Training the yardstick classifier with fresh samples every epoch from a (compressed) ddpm sampled in 2
    DataLoader workers, against training on the real images alone with the same loader settings."""
    from synthaug.classifier import train_classifier

    generator = synthaug.load(args.live)
    real = load_fashion_mnist().subset(60, seed=0)
    augmented = SyntheticAugment(real, generator, ratio=0.5, seed=0)  # a third of every batch sampled live
    common = {"image_shape": real.image_shape, "num_classes": 10, "steps": args.live_steps, "batch_size": 64,
              "num_workers": 2, "accelerator": "cpu"}  # fmt: skip
    plain_times, live_times = [], []
    for _ in range(args.repeats):
        for dataset, times in ((real, plain_times), (augmented, live_times)):
            start = time.perf_counter()
            train_classifier(dataset, **common)
            times.append(time.perf_counter() - start)
    plain, mixed = statistics.median(plain_times), statistics.median(live_times)
    print(f"\nLive sampling from {args.live} ({generator.config.steps} {generator.config.sampler} steps) in 2 DataLoader "
          f"workers while the yardstick CNN trains {args.live_steps} steps at batch 64 on 600 Fashion-MNIST images "
          f"(+ 300 fresh samples per epoch); median of {args.repeats}\n")  # fmt: skip
    print("| training on | s | ms per step | vs real only |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| real only | {plain:.1f} | {1000 * plain / args.live_steps:.1f} | 1.00 |")
    print(f"| real + live samples | {mixed:.1f} | {1000 * mixed / args.live_steps:.1f} | {mixed / plain:.2f} |")


if __name__ == "__main__":
    main()
