"""Is the downstream yardstick sound? Classic augmentation must help, and real-only must have converged.

    python benchmarks/yardstick.py            # the convergence curves, the sanity gate and the ablation (cached)
    python benchmarks/yardstick.py --resnet-steps 3000 --skip-ablation   # what BENCHMARKS.md shows

Fashion-MNIST, 60 real images per class, a fresh stratified subset per seed, the full 10,000-image
test set. Every run goes through ``synthaug.evaluation.downstream`` (cached under ``--cache``, shared
with ``examples/fashion_mnist_low_data.py``, so the default-recipe runs are computed once).

1. Convergence: test accuracy of real only and of real + classic augmentation (random horizontal
   flip and a shift of up to 3 pixels) against the number of steps (batch 64, the default recipe:
   AdamW, 5% warm-up, cosine decay to zero), for both yardstick classifiers.
2. The sanity gate at the default length: real + classic against real only, paired by seed.
3. Why the yardstick of synthaug 0.1 could not see classic augmentation help: the old recipe
   (constant learning rate, 1,000 steps, the global-average-pooled CNN) and each change alone.
"""

from __future__ import annotations

import argparse
import math

import torch

from synthaug.classifier import DEFAULT_STEPS, SmallCNN
from synthaug.data import load_fashion_mnist
from synthaug.evaluation import Arm, downstream

ARMS = [Arm("real"), Arm("real + classic", classic=True)]


def _gap_cnn() -> torch.nn.Module:
    return SmallCNN(1, 10, head="gap")


def _row(report, classifier: str) -> tuple[str, str, str]:
    real = report.row("real", classifier=classifier)["accuracy"]
    delta = report.row("real + classic", classifier=classifier)["vs_real"]["accuracy"]
    classic = report.row("real + classic", classifier=classifier)["accuracy"]
    fmt = lambda v: f"{100 * v[0]:.2f} ± {100 * (v[2] - v[0]):.2f}" if not math.isnan(v[1]) else f"{100 * v[0]:.2f}"  # noqa: E731
    return fmt(real), fmt(classic), f"{100 * delta[0]:+.2f} [{100 * delta[1]:+.2f}, {100 * delta[2]:+.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--ablation-steps", type=int, nargs=2, default=[1000, DEFAULT_STEPS], metavar=("OLD", "NEW"))
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--cnn-steps", type=int, nargs="+", default=[500, 1000, 2000, DEFAULT_STEPS])
    parser.add_argument("--resnet-steps", type=int, nargs="+", default=[1000, DEFAULT_STEPS])
    parser.add_argument("--cache", default="runs/downstream-cache")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-ablation", action="store_true", help="only the curves and the gate")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train, test = load_fashion_mnist(split="train"), load_fashion_mnist(split="test")
    common = {"arms": ARMS, "sizes": [args.per_class], "seeds": args.seeds, "cache_dir": args.cache}

    print(f"\nFashion-MNIST, {args.per_class} real images per class, seeds {args.seeds} (each its own subset), "
          f"{len(test):,} test images; accuracy (%) as mean ± half-width of the 95% t-interval; Δ: real + classic "
          "minus real only, paired by seed, [95% interval]\n")  # fmt: skip
    print("| classifier | steps | real only | real + classic | Δ classic |")
    print("|---|---:|---:|---:|---:|")
    for classifier, lengths in (("cnn", args.cnn_steps), ("resnet", args.resnet_steps)):
        for steps in lengths:
            report = downstream(train, test, classifiers=(classifier,), steps=steps, **common)
            print(f"| {classifier} | {steps} | " + " | ".join(_row(report, classifier)) + " |", flush=True)

    if args.skip_ablation:
        return
    print("\nWhat made classic augmentation look harmful in synthaug 0.1 (cnn-gap: the 0.1 network, global average "
          "pooling before one linear layer; cnn: the MLP head):\n")  # fmt: skip
    print("| network | schedule | steps | real only | real + classic | Δ classic |")
    print("|---|---|---:|---:|---:|---:|")
    old, new = args.ablation_steps
    ablations = [("cnn-gap", "constant", old), ("cnn-gap", "cosine", new), ("cnn", "constant", new), ("cnn", "cosine", new)]
    for network, schedule, steps in ablations:
        classifiers = {"cnn-gap": _gap_cnn} if network == "cnn-gap" else ("cnn",)
        report = downstream(train, test, classifiers=classifiers, steps=steps, schedule=schedule, **common)
        print(f"| {network} | {schedule} | {steps} | " + " | ".join(_row(report, network)) + " |", flush=True)


if __name__ == "__main__":
    main()
