"""Speed and peak memory of synthaug's metrics against torchmetrics + prdc, side by side, and the
Fashion-MNIST real-vs-real floors under the default feature extractor.

    python benchmarks/metrics_speed.py        # about 10 minutes on 2 CPU cores

Each measurement runs in a fresh subprocess (peak memory = the rise of its max RSS over the
features it starts with), alternating ours and the reference, --repeats times; the table shows
medians. Both get the same float32 feature matrices: 10,000 real x 10,000 synthetic, from
Fashion-MNIST test and train images projected to d dimensions with a seeded random matrix.
Ours: FID + KID + precision/recall (k=3) + density/coverage (k=5). Reference: torchmetrics FID +
KID (same subsets) and prdc.compute_prdc at k=3 and at k=5.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

N = 10_000


def features(d: int) -> tuple[torch.Tensor, torch.Tensor]:
    from synthaug.data import load_fashion_mnist

    real = load_fashion_mnist(split="test").images[:N].flatten(1).float() / 255
    fake = load_fashion_mnist(split="train").images[:N].flatten(1).float() / 255
    projection = torch.randn(real.shape[1], d, generator=torch.Generator().manual_seed(0)) / real.shape[1] ** 0.5
    return real @ projection, fake @ projection


def run_ours(real: torch.Tensor, fake: torch.Tensor) -> None:
    from synthaug.metrics.functional import fid, kid, prdc

    fid(real, fake)
    kid(real, fake, subsets=100, subset_size=1000)
    prdc(real, fake, k_precision_recall=3, k_density_coverage=5)  # all four from one pass per distance block


def run_reference(real: torch.Tensor, fake: torch.Tensor) -> None:
    import prdc
    from torch import nn
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    class Identity(nn.Module):
        num_features = real.shape[1]

        def forward(self, x):
            return x

    for metric in (FrechetInceptionDistance(feature=Identity(), normalize=True),
                   KernelInceptionDistance(feature=Identity(), subsets=100, subset_size=1000, normalize=True)):  # fmt: skip
        metric.update(real, real=True)
        metric.update(fake, real=False)
        metric.compute()
    prdc.compute_prdc(real_features=real.numpy(), fake_features=fake.numpy(), nearest_k=3)
    prdc.compute_prdc(real_features=real.numpy(), fake_features=fake.numpy(), nearest_k=5)


def child(which: str, d: int) -> None:
    """One measurement, printed as JSON: seconds and peak memory above the loaded features."""
    import warnings

    warnings.simplefilter("ignore")
    real, fake = features(d)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    (run_ours if which == "ours" else run_reference)(real, fake)
    seconds = time.perf_counter() - start
    peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib}))


def measure(which: str, d: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", which, "--dim", str(d)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def floors(cache: str) -> dict[str, float]:
    """Real train (10,000 of them) vs real test under the default extractor (trained on all 60,000)."""
    from synthaug.data import load_fashion_mnist
    from synthaug.evaluation import feature_metrics
    from synthaug.metrics import domain_classifier

    train, test = load_fashion_mnist(split="train"), load_fashion_mnist(split="test")
    extractor = domain_classifier(train, real_test=test, cache_dir=cache)
    values = feature_metrics(extractor(test.images), extractor(train.subset(1000, seed=0).images))
    return {"extractor": extractor.name, "accuracy": extractor.accuracy, **values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--cache", default="runs/benchmarks/cache", help="where the domain classifier is cached")
    parser.add_argument("--child", choices=("ours", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dim)
        return

    rows = []
    for d in args.dims:
        ours, reference = [], []
        for _ in range(args.repeats):
            ours.append(measure("ours", d))
            reference.append(measure("reference", d))
        ratios = [r["seconds"] / o["seconds"] for o, r in zip(ours, reference)]
        rows.append((d, *(statistics.median(x["seconds"] for x in s) for s in (ours, reference)), statistics.median(ratios),
                     *(statistics.median(x["peak_mib"] for x in s) for s in (ours, reference))))  # fmt: skip
    print(f"\n{N:,} real x {N:,} synthetic features, FID + KID (100 x 1000) + P/R (k=3) + D/C (k=5); median of "
          f"{args.repeats}; torch {torch.__version__}, {torch.get_num_threads()} threads\n")  # fmt: skip
    print("| d | ours s | torchmetrics + prdc s | speed-up (median ratio) | ours peak MiB | reference peak MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for d, ours_s, ref_s, ratio, ours_mib, ref_mib in rows:
        print(f"| {d} | {ours_s:.1f} | {ref_s:.1f} | {ratio:.2f}x | {ours_mib:.0f} | {ref_mib:.0f} |")

    floor = floors(args.cache)
    print(f"\nFashion-MNIST real-vs-real floor (1,000 train per class vs the 10,000 test images), features: "
          f"{floor['extractor']}, test accuracy {floor['accuracy']:.2%}\n")  # fmt: skip
    print("| " + " | ".join(k for k in floor if k not in ("extractor", "accuracy")) + " |")
    print("|" + " ---: |" * (len(floor) - 2))
    print("| " + " | ".join(f"{v:.4g}" for k, v in floor.items() if k not in ("extractor", "accuracy")) + " |")


if __name__ == "__main__":
    main()
