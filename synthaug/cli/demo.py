"""``synthaug demo``: the whole path on the bundled digits, in a couple of minutes on a CPU."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from synthaug.cli.parsing import DefaultsFormatter, non_negative_int, positive_int

if TYPE_CHECKING:  # imported when the demo runs, not when the parser is built
    from synthaug.bank import SyntheticBank
    from synthaug.data import LabeledImages
    from synthaug.generators import ConditionalGenerator


def sample_recognition(generator: ConditionalGenerator, data: LabeledImages, *, per_class: int = 100, seed: int = 1) -> float:
    """Share of samples that a logistic regression trained on the real images assigns to their own class."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from synthaug.generators.base import sample_uint8
    from synthaug.seeding import torch_generator

    clf = LogisticRegression(max_iter=2000).fit(data.images.flatten(1).numpy() / 255.0, data.labels.numpy())
    labels = torch.arange(data.num_classes).repeat_interleave(per_class)
    fake = sample_uint8(generator, labels, generator=torch_generator(seed)).flatten(1).numpy() / 255.0
    return float((clf.predict(fake) == labels.numpy()).mean())


def resume_command(args: argparse.Namespace) -> str:
    """The ``synthaug fit`` command that continues the demo's training run: the same data, seed and options."""
    return (f"synthaug fit --data digits --per-class {args.per_class} --subset-seed {args.seed} --max-steps {args.steps} "
            f"--seed {args.seed} --out {args.out} --resume last")


def add_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="train a VAE on the bundled digits and use its samples (about two minutes)",
                          formatter_class=DefaultsFormatter,
                          description="End-to-end demo on scikit-learn's digits: train a generator on a training "
                                      "split, save it, build a bank, evaluate it, and train a classifier with and without it.")  # fmt: skip
    demo.add_argument("--out", default="synthaug-demo", help="run directory (the demo owns it: a rerun replaces its bank)")
    demo.add_argument("--per-class", type=positive_int, default=50,
                      help="training images per class, from the digits' fixed training split (at most 50)")
    demo.add_argument("--steps", type=positive_int, default=1500, help="generator training steps")
    demo.add_argument("--bank-per-class", type=positive_int, default=200, help="bank size per class")
    demo.add_argument("--classifier-steps", type=positive_int, default=500, help="classifier steps per run")
    demo.add_argument("--seed", type=non_negative_int, default=0, help="seed of the split, the training and the sampling")
    demo.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    demo.set_defaults(func=run)


def _bank(generator: ConditionalGenerator, path: Path, per_class: int, seed: int) -> SyntheticBank:
    from synthaug.bank import BankError, SyntheticBank

    try:
        return SyntheticBank.generate(generator, path=path, per_class=per_class, seed=seed)
    except BankError:  # an earlier demo's bank with other settings: the demo owns its directory
        shutil.rmtree(path)
        return SyntheticBank.generate(generator, path=path, per_class=per_class, seed=seed)


def run(args: argparse.Namespace) -> int:
    from synthaug.data import load_digits
    from synthaug.evaluation import Arm, downstream, evaluate
    from synthaug.training import fit

    out = Path(args.out)
    # The CLI's own split (fit --data digits --per-class K --subset-seed S trains on the same images), so that
    # the resume command below continues on the same data and evaluate --data digits tests on the same 1,297.
    digits_train, test = load_digits(split="train"), load_digits(split="test")
    if args.per_class > min(digits_train.class_counts()):
        raise ValueError(f"--per-class {args.per_class} is more than the digits' training split holds "
                         f"({min(digits_train.class_counts())} per class; the other {len(test):,} are the test set)")  # fmt: skip
    train = digits_train.subset(args.per_class, seed=args.seed)
    print(f"synthaug demo: scikit-learn digits (8x8, 10 classes), {len(train)} images to train on "
          f"({args.per_class} per class), {len(test)} held out")  # fmt: skip
    print(f"\n1. training a conditional VAE ({args.steps} steps)")
    start = time.perf_counter()
    generator = fit(train, "vae", out=out, max_steps=args.steps, batch_size=64, seed=args.seed, enable_progress_bar=args.progress)
    recognised = sample_recognition(generator, train)
    print(f"   {time.perf_counter() - start:.0f} s; a classifier fitted to the training images puts {recognised:.1%} "
          "of 1,000 samples in their intended class")  # fmt: skip

    print(f"\n2. sampling a bank of {args.bank_per_class} images per class")
    bank = _bank(generator, out / "bank", args.bank_per_class, args.seed)

    print("\n3. the bank against the held-out digits (features: a CNN trained on the training split)")
    report = evaluate(test, bank, real_train=train, cas_steps=args.classifier_steps, feature_steps=5 * args.classifier_steps,
                      kid_subsets=20, seed=args.seed, out=out / "report", cache_dir=out / "cache")  # fmt: skip
    print(f"   {'':<10} {'synthetic':>10} {'real floor':>11}")
    for name in ("fid", "precision", "recall", "coverage"):
        print(f"   {name:<10} {report.overall[name]:>10.4g} {report.floor[name]:>11.4g}")
    print(f"   CAS (train on synthetic, test on real) {report.cas['synthetic']:.1%}, trained on real {report.cas['real']:.1%}; "
          f"near-copies {report.memorization['near_copy_share']:.1%}")  # fmt: skip

    print(f"\n4. downstream: the yardstick CNN ({args.classifier_steps} steps) on real vs real + synthetic, 2 seeds")
    arms = [Arm("real"), Arm("real + synthetic", bank, ratio=1.0)]
    result = downstream(train, test, arms=arms, seeds=[0, 1], steps=args.classifier_steps, out=out / "downstream")
    row = result.row("real + synthetic")
    real = result.row("real")
    diff, low, high = row["vs_real"]["accuracy"]
    print(f"   real only {100 * real['accuracy'][0]:.2f}%, real + synthetic {100 * row['accuracy'][0]:.2f}% "
          f"(Δ {100 * diff:+.2f} points, 95% interval [{100 * low:+.2f}, {100 * high:+.2f}])")
    print(f"   2 seeds on {len(train)} digits: a smoke test of the harness, not a measurement (BENCHMARKS.md has the studies)")

    plot = (out / "downstream" / "downstream.png").is_file()
    print("\nwhere everything went:")
    print(f"  saved generator   {out / 'generator'}   (synthaug.load)")
    print(f"  sample grid       {out / 'samples.png'}   (one row per class; one per stage in {out / 'samples'}/)")
    print(f"  synthetic bank    {out / 'bank'}   (synthaug.SyntheticBank.open)")
    print(f"  evaluation        {out / 'report' / 'report.md'}   (+ report.json and figures)")
    print(f"  downstream        {out / 'downstream' / 'downstream.md'}   (+ downstream.json"
          + (" and downstream.png)" if plot else "; a plot needs matplotlib: pip install 'synthaug[plot]')"))
    print(f"  checkpoints, logs {out / 'checkpoints'}/, {out / 'logs'}/")
    print(f"  resume training   {resume_command(args)}   (with a larger --max-steps)")
    return 0
